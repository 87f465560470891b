/* Tests of async_sendfile to sockets and pipes: everything is sent however
 * slow the reader (a blocking sendfile(2)'s answer), from a task and from a
 * plain thread, on the library's non-blocking sockets and on a caller's
 * blocking ones; the offset rules; cancellation; no pool thread held while a
 * reader is slow; and libc's errors for bad input. */
#include "fs_helpers.h"
#include "net_helpers.h"

#include <sys/sendfile.h>

TestSuite(fs_sendfile, .init = fs_init, .fini = fs_fini, .timeout = 60);

#define BIG ((size_t)16 << 20)

/* ---- a reader on a plain thread ------------------------------------------------
 * Reads until end of file, checking each byte against make_file's pattern,
 * optionally after a delay and pausing as it goes (a slow client). */

typedef struct reader {
    int fd;
    off_t start;     /* file offset of the first byte expected */
    int delay_ms;    /* before the first read */
    int pause_every; /* sleep 1 ms after this many reads; 0: never */
    size_t got;
    size_t bad; /* bytes that differed from the pattern */
    pthread_t th;
} reader_t;

static void *reader_main(void *arg) {
    reader_t *r = arg;
    sleep_ms(r->delay_ms);
    static __thread char buf[16384];
    size_t reads = 0;
    for (;;) {
        ssize_t n = read(r->fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != (char)('a' + (size_t)(r->start + (off_t)(r->got + (size_t)i)) % 26))
                r->bad++;
        r->got += (size_t)n;
        if (r->pause_every && ++reads % (size_t)r->pause_every == 0) sleep_ms(1);
    }
    return NULL;
}

static void reader_start(reader_t *r, int fd, off_t start, int delay_ms, int pause_every) {
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->start = start;
    r->delay_ms = delay_ms;
    r->pause_every = pause_every;
    r->th = thread_start(reader_main, r);
}

/* Joins the reader, which must have read `want` good bytes. */
static void reader_join(reader_t *r, size_t want) {
    pthread_join(r->th, NULL);
    cr_assert_eq(r->got, want, "reader got %zu bytes, want %zu", r->got, want);
    cr_assert_eq(r->bad, 0, "%zu bytes differ from the file", r->bad);
}

/* ---- connections ------------------------------------------------------------------ */

/* Closes an fd that the library may have waited on through the library, as
 * net.h asks. */
static void close_out(int fd) { ASSERT_VAL(async_await(async_close(fd)), 0); }

/* A TCP connection: *server from async_accept (so non-blocking, as the
 * library makes it), *client a plain blocking socket. */
static void tcp_pair(int *server, int *client) {
    int lfd = listener(AF_INET, SOCK_STREAM);
    *client = connect_blocking(AF_INET, local_port(lfd));
    *server = (int)async_await(async_accept(lfd, NULL, NULL));
    cr_assert_geq(*server, 0, "accept: %s", ename(errno));
    cr_assert(fcntl(*server, F_GETFL) & O_NONBLOCK);
    close_out(lfd);
}

static void small_buffers(int fd) {
    int sz = 64 * 1024;
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz), 0);
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz), 0);
}

/* ---- 16 MiB to a slow reader --------------------------------------------------------- */

typedef struct send_args {
    int out, in;
    off_t *offset;
    size_t count;
} send_args_t;

static intptr_t send_task(void *arg) {
    send_args_t *a = arg;
    return async_await(async_sendfile(a->out, a->in, a->offset, a->count));
}

/* Today's bug: a socket from async_accept is non-blocking, and a sendfile that
 * met a full socket buffer came back short (about 4 MB of 16 MiB). */
Test(fs_sendfile, big_file_to_accepted_socket_from_a_task) {
    int in = open(make_file("big", BIG), O_RDONLY);
    int server, client;
    tcp_pair(&server, &client);
    reader_t r;
    reader_start(&r, client, 0, 100, 8);
    send_args_t a = {server, in, NULL, BIG};
    ASSERT_VAL(async_await(async_spawn(send_task, &a)), BIG);
    ASSERT_VAL(lseek(in, 0, SEEK_CUR), BIG);
    close_out(server);
    reader_join(&r, BIG);
    close(client);
    close(in);
    rt_stop();
}

Test(fs_sendfile, big_file_to_accepted_socket_from_a_thread) {
    int in = open(make_file("big", BIG + 1000), O_RDONLY);
    int server, client;
    tcp_pair(&server, &client);
    reader_t r;
    reader_start(&r, client, 1000, 100, 8);
    off_t off = 1000;
    ASSERT_VAL(async_await(async_sendfile(server, in, &off, BIG)), BIG);
    cr_assert_eq(off, (off_t)(BIG + 1000));
    ASSERT_VAL(lseek(in, 0, SEEK_CUR), 0); /* an explicit offset leaves the file position */
    close(server);
    reader_join(&r, BIG);
    close(client);
    close(in);
    rt_stop();
}

/* A blocking socket of the caller's own is left blocking, and still sent in full. */
Test(fs_sendfile, big_file_to_a_blocking_socket) {
    int in = open(make_file("big", BIG), O_RDONLY);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    reader_t r;
    reader_start(&r, sv[1], 0, 50, 8);
    send_args_t a = {sv[0], in, NULL, BIG};
    ASSERT_VAL(async_await(async_spawn(send_task, &a)), BIG);
    ASSERT_VAL(lseek(in, 0, SEEK_CUR), BIG);
    cr_assert_eq(fcntl(sv[0], F_GETFL) & O_NONBLOCK, 0, "the caller's socket was not changed");
    close_out(sv[0]);
    reader_join(&r, BIG);
    close(sv[1]);
    close(in);
    rt_stop();
}

/* sendfile(2) to a pipe returns at most what the pipe holds: the whole count
 * comes back here, blocking pipe or not. */
Test(fs_sendfile, big_file_to_pipes) {
    int in = open(make_file("big", BIG), O_RDONLY);
    for (int nonblock = 0; nonblock < 2; nonblock++) {
        int p[2];
        cr_assert_eq(pipe2(p, nonblock ? O_NONBLOCK : 0), 0);
        reader_t r;
        if (nonblock) fcntl(p[0], F_SETFL, 0); /* the reader blocks; the writer's end does not */
        reader_start(&r, p[0], 0, 50, 8);
        off_t off = 0;
        ASSERT_VAL(async_await(async_sendfile(p[1], in, &off, BIG)), BIG);
        cr_assert_eq(off, (off_t)BIG);
        close_out(p[1]);
        reader_join(&r, BIG);
        close(p[0]);
    }
    close(in);
    rt_stop();
}

/* ---- offsets ------------------------------------------------------------------------- */

/* NULL uses and moves the file position; a pointer is read and updated and the
 * position stays; the count is short only at the end of the file. */
static void offsets_on(int out, int rfd) {
    int in = open(make_file("hundredk", 100000), O_RDONLY);
    reader_t r;
    reader_start(&r, rfd, 1000, 20, 0);
    cr_assert_eq(lseek(in, 1000, SEEK_SET), 1000);
    ASSERT_VAL(async_await(async_sendfile(out, in, NULL, 50000)), 50000);
    ASSERT_VAL(lseek(in, 0, SEEK_CUR), 51000);
    off_t off = 51000;
    ASSERT_VAL(async_await(async_sendfile(out, in, &off, 1000000)), 49000); /* to the end */
    cr_assert_eq(off, 100000);
    ASSERT_VAL(lseek(in, 0, SEEK_CUR), 51000);
    ASSERT_VAL(async_await(async_sendfile(out, in, &off, 10)), 0); /* at the end */
    cr_assert_eq(off, 100000);
    cr_assert_eq(lseek(in, 99990, SEEK_SET), 99990);
    ASSERT_VAL(async_await(async_sendfile(out, in, NULL, 100)), 10);
    ASSERT_VAL(lseek(in, 0, SEEK_CUR), 100000);
    close_out(out);
    pthread_join(r.th, NULL);
    cr_assert_eq(r.got, 99010);
    close(rfd);
    close(in);
}

Test(fs_sendfile, offsets_on_a_library_socket) {
    int sv[2];
    ASSERT_VAL(async_await(async_socketpair(AF_UNIX, SOCK_STREAM, 0, sv)), 0);
    fcntl(sv[1], F_SETFL, 0);
    offsets_on(sv[0], sv[1]);
    rt_stop();
}

Test(fs_sendfile, offsets_on_a_blocking_socket) {
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    offsets_on(sv[0], sv[1]);
    rt_stop();
}

Test(fs_sendfile, offsets_on_a_pipe) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    offsets_on(p[1], p[0]);
    rt_stop();
}

/* ---- cancellation ---------------------------------------------------------------------- */

/* Cancelled while waiting for a reader that does not read: the count sent so
 * far comes back (as write(2) after a signal), the offset says the same, and
 * the reader gets exactly those bytes. */
static void cancel_mid_transfer(int out, int rfd, bool use_offset) {
    int in = open(make_file("big", BIG), O_RDONLY);
    off_t off = 0;
    async_future_t *f = async_sendfile(out, in, use_offset ? &off : NULL, BIG);
    sleep_ms(100);
    cr_assert_eq(async_future_settled(f), 0, "the reader has not read: it must still wait");
    async_cancel(f);
    intptr_t n = async_await(f);
    cr_assert(n > 0 && (size_t)n < BIG, "sent %jd", (intmax_t)n);
    if (use_offset) {
        cr_assert_eq(off, n);
        ASSERT_VAL(lseek(in, 0, SEEK_CUR), 0);
    } else {
        ASSERT_VAL(lseek(in, 0, SEEK_CUR), n);
    }
    close_out(out);
    reader_t r;
    reader_start(&r, rfd, 0, 0, 0);
    reader_join(&r, (size_t)n);
    close(rfd);
    close(in);
}

Test(fs_sendfile, cancel_mid_transfer_on_tcp) {
    int server, client;
    tcp_pair(&server, &client);
    small_buffers(server);
    cancel_mid_transfer(server, client, true);
    rt_stop();
}

Test(fs_sendfile, cancel_mid_transfer_on_a_blocking_socket) {
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cancel_mid_transfer(sv[0], sv[1], false);
    rt_stop();
}

Test(fs_sendfile, cancel_mid_transfer_on_a_pipe) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cancel_mid_transfer(p[1], p[0], true);
    rt_stop();
}

/* Nothing could be sent before the cancel: -1/ECANCELED, offset untouched. */
Test(fs_sendfile, cancel_before_any_byte) {
    int in = open(make_file("f", 100000), O_RDONLY);
    int sv[2];
    ASSERT_VAL(async_await(async_socketpair(AF_UNIX, SOCK_STREAM, 0, sv)), 0);
    char junk[4096] = {0};
    size_t filled = 0;
    ssize_t w;
    while ((w = send(sv[0], junk, sizeof junk, MSG_DONTWAIT)) > 0) filled += (size_t)w;
    cr_assert_eq(errno, EAGAIN);
    off_t off = 7;
    async_future_t *f = async_sendfile(sv[0], in, &off, 1000);
    sleep_ms(50);
    cr_assert_eq(async_future_settled(f), 0);
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    cr_assert_eq(off, 7);
    /* and cancelled from inside a task that is itself cancelled */
    send_args_t a = {sv[0], in, &off, 1000};
    async_future_t *t = async_spawn(send_task, &a);
    sleep_ms(50);
    async_cancel(t);
    ASSERT_ERR(async_await(t), ECANCELED);
    cr_assert_eq(off, 7);
    close_out(sv[0]);
    close(sv[1]);
    close(in);
    rt_stop();
}

/* ---- slow readers hold no pool thread ------------------------------------------------- */

/* With a pool of two threads, eight transfers to readers that do not read yet
 * (library sockets, a caller's blocking sockets, pipes) all wait at once, a
 * stat still runs meanwhile, and all finish once the readers read. Before,
 * a blocking socket or pipe held a pool thread until its reader caught up. */
Test(fs_sendfile_pool, slow_readers_hold_no_pool_thread, .init = scratch_make,
     .fini = scratch_remove, .timeout = 60) {
    small_pool_init();
    enum { N = 8 };
    const size_t len = (size_t)2 << 20;
    int in = open(make_file("two", len), O_RDONLY);
    int out[N], rfd[N];
    for (int i = 0; i < N; i++) {
        if (i < 3) {
            tcp_pair(&out[i], &rfd[i]);
            small_buffers(out[i]);
            small_buffers(rfd[i]);
        } else if (i < 6) {
            int sv[2];
            cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
            out[i] = sv[0];
            rfd[i] = sv[1];
        } else {
            int p[2];
            cr_assert_eq(pipe(p), 0);
            out[i] = p[1];
            rfd[i] = p[0];
        }
    }
    off_t offs[N] = {0};
    async_future_t *fs[N];
    for (int i = 0; i < N; i++) fs[i] = async_sendfile(out[i], in, &offs[i], len);
    sleep_ms(100);
    for (int i = 0; i < N; i++) cr_assert_eq(async_future_settled(fs[i]), 0, "transfer %d", i);
    struct stat st;
    double t0 = now_ms();
    ASSERT_VAL(async_await(async_stat(scratch, &st)), 0);
    cr_assert_lt(now_ms() - t0, 1000.0, "the stat waited for a pool thread");
    reader_t rs[N];
    for (int i = 0; i < N; i++) reader_start(&rs[i], rfd[i], 0, 0, 16);
    for (int i = 0; i < N; i++) {
        ASSERT_VAL(async_await(fs[i]), len);
        close_out(out[i]);
    }
    for (int i = 0; i < N; i++) {
        reader_join(&rs[i], len);
        close(rfd[i]);
    }
    close(in);
    rt_stop();
}

/* ---- errors ----------------------------------------------------------------------------- */

/* Bad input gets sendfile(2)'s own errno, on every route. */
static void errors_on(int out) {
    int in = open(make_file("f", 100), O_RDONLY);
    int wr = open(P("w"), O_WRONLY | O_CREAT, 0644);
    int dir = open(scratch, O_RDONLY | O_DIRECTORY);
    int sv[2]; /* non-blocking: a pipe's sendfile(2) would wait for it to have data */
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    SAME(sendfile(out, -1, NULL, 10), async_sendfile(out, -1, NULL, 10));       /* EBADF */
    SAME(sendfile(out, wr, NULL, 10), async_sendfile(out, wr, NULL, 10));       /* EBADF */
    SAME(sendfile(out, sv[1], NULL, 10), async_sendfile(out, sv[1], NULL, 10)); /* EINVAL */
    SAME(sendfile(out, dir, NULL, 10), async_sendfile(out, dir, NULL, 10));     /* EINVAL */
    off_t o1 = -1, o2 = -1;
    SAME(sendfile(out, in, &o1, 10), async_sendfile(out, in, &o2, 10)); /* EINVAL */
    SAME(sendfile(out, in, NULL, 0), async_sendfile(out, in, NULL, 0));
    o1 = o2 = 100;
    SAME(sendfile(out, in, &o1, 10), async_sendfile(out, in, &o2, 10)); /* at the end: 0 */
    close(sv[0]);
    close(sv[1]);
    close(dir);
    close(wr);
    close(in);
}

Test(fs_sendfile, errors_match_libc) {
    int sv[2];
    ASSERT_VAL(async_await(async_socketpair(AF_UNIX, SOCK_STREAM, 0, sv)), 0);
    errors_on(sv[0]);
    close_out(sv[0]);
    close(sv[1]);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    errors_on(sv[0]);
    close_out(sv[0]);
    close(sv[1]);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    errors_on(p[1]);
    int in = open(make_file("g", 100), O_RDONLY);
    SAME(sendfile(p[0], in, NULL, 10), async_sendfile(p[0], in, NULL, 10)); /* EBADF */
    SAME(sendfile(-1, in, NULL, 10), async_sendfile(-1, in, NULL, 10));
    close(in);
    close(p[0]);
    close_out(p[1]);
    rt_stop();
}

static atomic_int sigpipes;
static void on_sigpipe(int sig) {
    (void)sig;
    atomic_fetch_add(&sigpipes, 1);
}

/* A socket whose peer has gone gives EPIPE without SIGPIPE, as every socket
 * call of the library does (net.h); sendfile(2) itself would raise it. */
Test(fs_sendfile, peer_gone_is_epipe_without_sigpipe) {
    struct sigaction sa = {.sa_handler = on_sigpipe};
    sigaction(SIGPIPE, &sa, NULL);
    int in = open(make_file("f", 100000), O_RDONLY);
    for (int blocking = 0; blocking < 2; blocking++) {
        int sv[2];
        if (blocking)
            cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        else
            ASSERT_VAL(async_await(async_socketpair(AF_UNIX, SOCK_STREAM, 0, sv)), 0);
        close(sv[1]);
        ASSERT_ERR(async_await(async_sendfile(sv[0], in, NULL, 1000)), EPIPE);
        cr_assert_eq(atomic_load(&sigpipes), 0, "SIGPIPE raised");
        close_out(sv[0]);
    }
    close(in);
    rt_stop();
}

/* A regular file is still one pool job, with sendfile(2)'s answers. */
Test(fs_sendfile, regular_file_out) {
    int in = open(make_file("src", BIG), O_RDONLY);
    int out = open(P("dst"), O_RDWR | O_CREAT, 0644);
    ASSERT_VAL(async_await(async_sendfile(out, in, NULL, BIG + 10)), BIG);
    ASSERT_VAL(lseek(out, 0, SEEK_CUR), BIG);
    SAME(sendfile(in, out, NULL, 10), async_sendfile(in, out, NULL, 10)); /* EBADF both ways */
    close(in);
    close(out);
    rt_stop();
}
