/* The core's fd readiness (src/task/io.c), through its internal API: a read or
 * write op on a pipe, tried at once and parked on EAGAIN; cancellation, close
 * waking parked ops on any worker, plain-thread callers, FIFO order and many
 * fds at once. The fs and net modules build their waiting calls on it. */
#include "helpers.h"

#include <fcntl.h>

#include "internal.h"

typedef struct pipe_op {
    async__io_op_t io; /* first */
    void *buf;
    size_t len;
    atomic_int *attempts;
} pipe_op_t;

static bool read_attempt(async__io_op_t *io, intptr_t *value, int *err) {
    pipe_op_t *op = (pipe_op_t *)io;
    if (op->attempts) atomic_fetch_add(op->attempts, 1);
    ssize_t n = read(io->fd, op->buf, op->len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    *value = n;
    *err = n < 0 ? errno : 0;
    return true;
}

static bool write_attempt(async__io_op_t *io, intptr_t *value, int *err) {
    pipe_op_t *op = (pipe_op_t *)io;
    ssize_t n = write(io->fd, op->buf, op->len);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    *value = n;
    *err = n < 0 ? errno : 0;
    return true;
}

static async_future_t *op_start(int fd, int events, void *buf, size_t len, atomic_int *attempts) {
    pipe_op_t *op = (pipe_op_t *)async__io_op_new(
        sizeof *op, fd, events, events == ASYNC_IO_READ ? read_attempt : write_attempt);
    if (!op) return NULL;
    op->buf = buf;
    op->len = len;
    op->attempts = attempts;
    async__io_fd_new(-1); /* a negative fd is ignored */
    return async__io_start(&op->io);
}

static async_future_t *rd(int fd, void *buf, size_t len) {
    return op_start(fd, ASYNC_IO_READ, buf, len, NULL);
}
static async_future_t *wr(int fd, const void *buf, size_t len) {
    return op_start(fd, ASYNC_IO_WRITE, (void *)buf, len, NULL);
}

static void nb_pipe(int p[2]) {
    cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    async__io_fd_new(p[0]);
    async__io_fd_new(p[1]);
}

/* ---- ready and parked ----------------------------------------------------- */

static int ready_pipe[2];

static intptr_t ready_read_task(void *arg) {
    (void)arg;
    char buf[8] = {0};
    atomic_int attempts = 0;
    async_future_t *f = op_start(ready_pipe[0], ASYNC_IO_READ, buf, sizeof buf, &attempts);
    CHECK(async_future_settled(f)); /* data waiting: done inline, one system call */
    CHECK_EQ(async_await(f), 3);
    CHECK_EQ(attempts, 1);
    CHECK(memcmp(buf, "abc", 3) == 0);
    return 0;
}

Test(io, ready_fd_completes_inline) {
    rt_start();
    nb_pipe(ready_pipe);
    cr_assert_eq(write(ready_pipe[1], "abc", 3), 3);
    ASSERT_VAL(async_await(async_spawn(ready_read_task, NULL)), 0);
    close(ready_pipe[0]);
    close(ready_pipe[1]);
    rt_stop();
}

static int park_pipe[2];

static intptr_t park_writer(void *arg) {
    (void)arg;
    (void)async_await(async_usleep(20000));
    return async_await(wr(park_pipe[1], "hello", 5));
}

static intptr_t park_reader(void *arg) {
    unsigned worker = (unsigned)(uintptr_t)arg;
    char buf[16] = {0};
    async_future_t *f = rd(park_pipe[0], buf, sizeof buf);
    CHECK(!async_future_settled(f));
    async_future_t *w = spawn_on(park_writer, NULL, worker);
    CHECK_EQ(async_await(f), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(async_await(w), 5);
    /* the next read on the same fd parks without a system call, then completes */
    f = rd(park_pipe[0], buf, sizeof buf);
    CHECK(!async_future_settled(f));
    CHECK_EQ(async_await(wr(park_pipe[1], "x", 1)), 1);
    CHECK_EQ(async_await(f), 1);
    return 0;
}

static void parked_read(bool other_worker) {
    rt_start();
    unsigned writer_worker = other_worker && async_worker_count() > 1 ? 2 : 1;
    nb_pipe(park_pipe);
    ASSERT_VAL(async_await(spawn_on(park_reader, (void *)(uintptr_t)writer_worker, 1)), 0);
    ASSERT_VAL(async_await(async__io_close(park_pipe[0])), 0);
    ASSERT_VAL(async_await(async__io_close(park_pipe[1])), 0);
    rt_stop();
}

Test(io, parked_read_wakes_on_data_same_worker) { parked_read(false); }

Test(io, parked_read_wakes_on_data_from_another_worker) { parked_read(true); }

static int full_pipe[2];

static intptr_t full_writer(void *arg) {
    (void)arg;
    static char chunk[4096];
    size_t filled = 0;
    for (;;) { /* fill the pipe to EAGAIN */
        ssize_t n = write(full_pipe[1], chunk, sizeof chunk);
        if (n < 0) break;
        filled += (size_t)n;
    }
    CHECK(errno == EAGAIN);
    async_future_t *f = wr(full_pipe[1], "z", 1);
    CHECK(!async_future_settled(f));
    /* drain everything from another task; the parked write then goes through */
    char *sink = malloc(filled + 1);
    size_t got = 0;
    while (got < filled) {
        ssize_t n = async_await(rd(full_pipe[0], sink, filled + 1));
        if (n <= 0) break;
        got += (size_t)n;
    }
    CHECK_EQ(got, filled);
    CHECK_EQ(async_await(f), 1);
    CHECK_EQ(async_await(rd(full_pipe[0], sink, 1)), 1);
    CHECK_EQ(sink[0], 'z');
    free(sink);
    return 0;
}

Test(io, parked_write_wakes_when_pipe_drains) {
    rt_start();
    nb_pipe(full_pipe);
    ASSERT_VAL(async_await(async_spawn(full_writer, NULL)), 0);
    close(full_pipe[0]);
    close(full_pipe[1]);
    rt_stop();
}

/* ---- order ---------------------------------------------------------------- */

static int fifo_pipe[2];

static intptr_t fifo_task(void *arg) {
    (void)arg;
    char b[3];
    async_future_t *f[3];
    for (int i = 0; i < 3; i++) f[i] = rd(fifo_pipe[0], &b[i], 1);
    CHECK_EQ(async_await(wr(fifo_pipe[1], "123", 3)), 3);
    for (int i = 0; i < 3; i++) CHECK_EQ(async_await(f[i]), 1);
    CHECK(memcmp(b, "123", 3) == 0); /* parked readers are served in the order they came */
    return 0;
}

Test(io, parked_ops_are_served_in_order) {
    rt_start();
    nb_pipe(fifo_pipe);
    ASSERT_VAL(async_await(async_spawn(fifo_task, NULL)), 0);
    close(fifo_pipe[0]);
    close(fifo_pipe[1]);
    rt_stop();
}

/* ---- cancellation --------------------------------------------------------- */

static int cancel_pipe[2];

static intptr_t cancel_task(void *arg) {
    (void)arg;
    char buf[4];
    async_future_t *f = rd(cancel_pipe[0], buf, sizeof buf);
    async_cancel(f);
    CHECK_ERR(async_await(f), ECANCELED);
    /* nothing was consumed by the cancelled op */
    CHECK_EQ(async_await(wr(cancel_pipe[1], "ab", 2)), 2);
    CHECK_EQ(async_await(rd(cancel_pipe[0], buf, sizeof buf)), 2);
    /* a timeout cancels too */
    CHECK_ERR(async_await_timeout(rd(cancel_pipe[0], buf, sizeof buf), 20), ETIMEDOUT);
    return 0;
}

Test(io, cancel_parked_op) {
    rt_start();
    nb_pipe(cancel_pipe);
    ASSERT_VAL(async_await(async_spawn(cancel_task, NULL)), 0);
    close(cancel_pipe[0]);
    close(cancel_pipe[1]);
    rt_stop();
}

static int cancelled_task_pipe[2];

static intptr_t blocked_reader(void *arg) {
    (void)arg;
    char buf[4];
    return async_await(rd(cancelled_task_pipe[0], buf, sizeof buf));
}

Test(io, cancel_task_waiting_on_fd_from_plain_thread) {
    rt_start();
    nb_pipe(cancelled_task_pipe);
    async_future_t *t = async_spawn(blocked_reader, NULL);
    sleep_ms(20);
    async_cancel(t);
    ASSERT_ERR(async_await(t), ECANCELED);
    close(cancelled_task_pipe[0]);
    close(cancelled_task_pipe[1]);
    rt_stop();
}

/* ---- close ---------------------------------------------------------------- */

static int close_pipe[2];
static atomic_uint close_parked;

static intptr_t close_reader(void *arg) {
    (void)arg;
    char buf[4];
    async_future_t *f = rd(close_pipe[0], buf, sizeof buf);
    CHECK(!async_future_settled(f));
    atomic_fetch_add(&close_parked, 1);
    return async_await(f);
}

static intptr_t close_closer(void *arg) {
    unsigned nr = (unsigned)(uintptr_t)arg;
    /* every reader must be parked first: once closed, the number may name another file */
    CHECK(TASK_WAIT_UNTIL(atomic_load(&close_parked) == nr, 10000));
    return async_await(async__io_close(close_pipe[0]));
}

/* Readers parked on fd on up to `most` workers, then the close: each gets EBADF. */
static void close_wakes_readers(unsigned most) {
    nb_pipe(close_pipe);
    unsigned n = async_worker_count();
    async_future_t *readers[32];
    unsigned nr = n < most ? n : most;
    cr_assert(nr <= 32);
    for (unsigned i = 0; i < nr; i++) readers[i] = spawn_on(close_reader, NULL, i + 1);
    ASSERT_VAL(async_await(spawn_on(close_closer, (void *)(uintptr_t)nr, 1)), 0);
    for (unsigned i = 0; i < nr; i++) ASSERT_ERR(async_await(readers[i]), EBADF);
    /* the fd number can be reused at once, and waits on the new file work */
    int p[2];
    nb_pipe(p);
    char c = 0;
    async_future_t *f = rd(p[0], &c, 1);
    cr_assert_eq(write(p[1], "q", 1), 1);
    ASSERT_VAL(async_await(f), 1);
    cr_assert_eq(c, 'q');
    close(p[0]);
    close(p[1]);
    close(close_pipe[1]);
}

Test(io, close_wakes_parked_ops_on_every_worker) {
    rt_start();
    close_wakes_readers(8);
    rt_stop();
}

/* A close op with a message for each of 21 workers outgrows the object cache's
 * class and comes from malloc (io.c's close_op_new): the same result. */
Test(io, close_wakes_parked_ops_on_twenty_workers, .timeout = 60) {
    cr_assert_eq(async_runtime_init(&(async_config_t){.threads = 20}), 0);
    cr_assert_eq(async_worker_count(), 20);
    close_wakes_readers(20);
    rt_stop();
}

Test(io, close_bad_fd) {
    rt_start();
    ASSERT_ERR(async_await(async__io_close(-1)), EBADF);
    int p[2];
    nb_pipe(p);
    close(p[1]);
    ASSERT_ERR(async_await(async__io_close(p[1])), EBADF); /* already closed */
    ASSERT_VAL(async_await(async__io_close(p[0])), 0);
    rt_stop();
}

Test(io, close_without_runtime) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    ASSERT_VAL(async_await(async__io_close(p[0])), 0);
    ASSERT_VAL(async_await(async__io_close(p[1])), 0);
    ASSERT_ERR(async_await(async__io_close(p[1])), EBADF);
    checks_ok();
}

/* ---- errors through the attempt --------------------------------------------- */

Test(io, attempt_error_is_the_result) {
    rt_start();
    char buf[4];
    ASSERT_ERR(async_await(rd(-1, buf, sizeof buf)), EBADF);
    int p[2];
    nb_pipe(p);
    ASSERT_ERR(async_await(rd(p[1], buf, sizeof buf)), EBADF); /* the write end */
    close(p[0]);
    close(p[1]);
    rt_stop();
}

/* A regular file never says EAGAIN; an fd epoll refuses must fail, not hang. */
static bool always_would_block(async__io_op_t *io, intptr_t *value, int *err) {
    (void)io;
    (void)value;
    (void)err;
    return false;
}

Test(io, unwatchable_fd_fails_with_epolls_errno) {
    rt_start();
    char path[] = "/tmp/asyncstd-io-XXXXXX";
    int file = mkstemp(path);
    cr_assert_geq(file, 0);
    unlink(path);
    async__io_op_t *op = async__io_op_new(sizeof *op, file, ASYNC_IO_READ, always_would_block);
    cr_assert_not_null(op);
    ASSERT_ERR(async_await(async__io_start(op)), EPERM);
    close(file);
    rt_stop();
}

/* ---- plain threads ------------------------------------------------------------ */

static int plain_pipe[2];

static void *late_writer(void *arg) {
    (void)arg;
    sleep_ms(20);
    CHECK_EQ(write(plain_pipe[1], "pt", 2), 2);
    return NULL;
}

Test(io, plain_thread_waits_through_a_worker) {
    rt_start();
    nb_pipe(plain_pipe);
    char buf[4] = {0};
    async_future_t *f = rd(plain_pipe[0], buf, sizeof buf);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, late_writer, NULL), 0);
    ASSERT_VAL(async_await(f), 2);
    cr_assert_eq(memcmp(buf, "pt", 2), 0);
    pthread_join(th, NULL);
    /* and a plain-thread cancel of an op parked on a worker */
    f = rd(plain_pipe[0], buf, sizeof buf);
    sleep_ms(5);
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    /* cancelled before its start message ran */
    f = rd(plain_pipe[0], buf, sizeof buf);
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    close(plain_pipe[0]);
    close(plain_pipe[1]);
    rt_stop();
}

/* ---- shutdown and scale ----------------------------------------------------- */

Test(io, shutdown_with_detached_parked_ops) {
    rt_start();
    int p[2];
    nb_pipe(p);
    static char buf[4];
    for (int i = 0; i < 10; i++) async_future_free(rd(p[0], buf, sizeof buf));
    async_future_t *held = rd(p[0], buf, sizeof buf);
    sleep_ms(10);
    rt_stop(); /* detached ops end cancelled, nothing leaks */
    ASSERT_ERR(async_await(held), ECANCELED);
    close(p[0]);
    close(p[1]);
    checks_ok();
}

#define MANY_PIPES 500

static int many[MANY_PIPES][2];

static intptr_t many_reader(void *arg) {
    int i = (int)(intptr_t)arg;
    int v = -1;
    CHECK_EQ(async_await(rd(many[i][0], &v, sizeof v)), sizeof v);
    CHECK_EQ(v, i);
    return 0;
}

static intptr_t many_writer(void *arg) {
    int i = (int)(intptr_t)arg;
    async_yield();
    return async_await(wr(many[i][1], &i, sizeof i)) == sizeof i ? 0 : -1;
}

Test(io, many_fds_across_workers, .timeout = 60) {
    rt_start();
    for (int i = 0; i < MANY_PIPES; i++) nb_pipe(many[i]);
    static async_future_t *fs[2 * MANY_PIPES];
    for (int i = 0; i < MANY_PIPES; i++) fs[i] = async_spawn(many_reader, (void *)(intptr_t)i);
    for (int i = 0; i < MANY_PIPES; i++)
        fs[MANY_PIPES + i] = async_spawn(many_writer, (void *)(intptr_t)i);
    for (int i = 0; i < 2 * MANY_PIPES; i++) ASSERT_VAL(async_await(fs[i]), 0);
    for (int i = 0; i < MANY_PIPES; i++) {
        ASSERT_VAL(async_await(async__io_close(many[i][0])), 0);
        ASSERT_VAL(async_await(async__io_close(many[i][1])), 0);
    }
    rt_stop();
}
