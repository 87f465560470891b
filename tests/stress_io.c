/* fd readiness under cross-thread pressure, in plain C (CI runs it in the TSan
 * build, where Criterion cannot start; see stress.h): many pipes read and
 * written by tasks on different workers, buffered streams over pipes, closes
 * that wake readers parked on other workers, cancels from plain threads
 * racing with data, and cached file calls from every worker while pool
 * threads learn the mounts (src/fs/cached.c).
 *
 *   stress_io [SCALE]   SCALE divides the iteration counts (default 1) */
#define _GNU_SOURCE
#include <asyncstd/fs.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include <sys/wait.h>

#include "stress.h"


typedef struct pipe_op {
    async__io_op_t io; /* first */
    void *buf;
    size_t len;
} pipe_op_t;

static bool attempt(async__io_op_t *io, intptr_t *value, int *err) {
    pipe_op_t *op = (pipe_op_t *)io;
    ssize_t n = io->events == ASYNC_IO_READ ? read(io->fd, op->buf, op->len)
                                            : write(io->fd, op->buf, op->len);
    if (n < 0 && errno == EAGAIN) return false;
    *value = n;
    *err = n < 0 ? errno : 0;
    return true;
}

static async_future_t *op(int fd, int events, void *buf, size_t len) {
    pipe_op_t *p = (pipe_op_t *)async__io_op_new(sizeof *p, fd, events, attempt);
    if (!p) return NULL;
    p->buf = buf;
    p->len = len;
    return async__io_start(&p->io);
}

static void nb_pipe(int p[2]) {
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
        perror("pipe2");
        exit(2);
    }
    async__io_fd_new(p[0]);
    async__io_fd_new(p[1]);
}

static async_future_t *spawn_on(async_task_fn fn, void *arg, unsigned worker) {
    async_spawn_opts_t o = {0};
    o.worker = worker;
    return async_spawn_opts(fn, arg, &o);
}

/* ---- 1. streams through pipes, writer and reader on different workers ----------- */

typedef struct {
    int fd;
    int count;
} stream_t;

static intptr_t stream_writer(void *arg) {
    stream_t *s = arg;
    for (int i = 0; i < s->count; i++)
        if (async_await(op(s->fd, ASYNC_IO_WRITE, &i, sizeof i)) != sizeof i) return -1;
    return 0;
}

static intptr_t stream_reader(void *arg) {
    stream_t *s = arg;
    for (int i = 0; i < s->count; i++) {
        int v = -1;
        if (async_await(op(s->fd, ASYNC_IO_READ, &v, sizeof v)) != sizeof v || v != i) return -1;
    }
    return 0;
}

static void streams(void) {
    enum { PIPES = 16 };
    unsigned n = (unsigned)async_worker_count();
    int p[PIPES][2];
    stream_t r[PIPES], w[PIPES];
    async_future_t *fs[2 * PIPES];
    for (int i = 0; i < PIPES; i++) {
        nb_pipe(p[i]);
        r[i] = (stream_t){p[i][0], 20000 / scale};
        w[i] = (stream_t){p[i][1], 20000 / scale};
        fs[2 * i] = spawn_on(stream_reader, &r[i], (unsigned)i % n + 1);
        fs[2 * i + 1] = spawn_on(stream_writer, &w[i], (unsigned)(i + 1) % n + 1);
    }
    for (int i = 0; i < 2 * PIPES; i++) CHECK(async_await(fs[i]) == 0);
    for (int i = 0; i < PIPES; i++) {
        CHECK(async_await(async__io_close(p[i][0])) == 0);
        CHECK(async_await(async__io_close(p[i][1])) == 0);
    }
}

/* ---- 1b. buffered streams: lines through pipes, each end on its own worker, while
 * a plain thread keeps asking the reading stream its position (each ask claims the
 * stream for a moment, so the reader meets EBUSY and asks again) ------------------- */

typedef struct {
    async_file_t *f;
    int count;
    atomic_int done;
} line_end_t;

static intptr_t line_writer(void *arg) {
    line_end_t *e = arg;
    for (int i = 0; i < e->count; i++) {
        if (async_await(async_fprintf(e->f, "line %d\n", i)) < 0) return -1;
        if (i % 64 == 63 && async_await(async_fflush(e->f)) != 0) return -1;
    }
    return async_await(async_fclose(e->f));
}

static intptr_t line_reader(void *arg) {
    line_end_t *e = arg;
    char buf[64], want[32];
    for (int i = 0; i < e->count;) {
        char *s = async_await_ptr(async_fgets(buf, sizeof buf, e->f));
        if (!s && errno == EBUSY) {
            async_yield();
            continue;
        }
        snprintf(want, sizeof want, "line %d\n", i++);
        if (!s || strcmp(s, want) != 0) return -1;
    }
    atomic_store(&e->done, 1);
    return 0;
}

static void *position_asker(void *arg) {
    line_end_t *e = arg;
    while (!atomic_load(&e->done)) {
        errno = 0;
        if (async_ftell(e->f) != -1 || (errno != EBUSY && errno != ESPIPE))
            atomic_store(&e->done, 2);
        sched_yield();
    }
    return NULL;
}

static void line_streams(void) {
    enum { PIPES = 4 };
    unsigned n = (unsigned)async_worker_count();
    int p[PIPES][2];
    line_end_t r[PIPES], w[PIPES];
    async_future_t *fs[2 * PIPES];
    pthread_t askers[PIPES];
    for (int i = 0; i < PIPES; i++) {
        nb_pipe(p[i]);
        r[i] = (line_end_t){async_fdopen(p[i][0], "r"), 20000 / scale, 0};
        w[i] = (line_end_t){async_fdopen(p[i][1], "w"), 20000 / scale, 0};
        CHECK(r[i].f && w[i].f);
        fs[2 * i] = spawn_on(line_reader, &r[i], (unsigned)i % n + 1);
        fs[2 * i + 1] = spawn_on(line_writer, &w[i], (unsigned)(i + 1) % n + 1);
        pthread_create(&askers[i], NULL, position_asker, &r[i]);
    }
    for (int i = 0; i < 2 * PIPES; i++) CHECK(async_await(fs[i]) == 0);
    for (int i = 0; i < PIPES; i++) {
        pthread_join(askers[i], NULL);
        CHECK(atomic_load(&r[i].done) == 1);
        CHECK(async_await(async_fclose(r[i].f)) == 0);
    }
}

/* ---- 2. close wakes readers parked on every worker ---------------------------------- */

static atomic_int parked;

static intptr_t parked_reader(void *arg) {
    int fd = (int)(intptr_t)arg;
    char c;
    async_future_t *f = op(fd, ASYNC_IO_READ, &c, 1);
    atomic_fetch_add(&parked, 1);
    return async_await(f) == -1 && errno == EBADF ? 0 : -1;
}

static void closes(void) {
    unsigned n = (unsigned)async_worker_count();
    for (int round = 0; round < 200 / scale; round++) {
        int p[2];
        nb_pipe(p);
        atomic_store(&parked, 0);
        async_future_t *fs[16];
        unsigned k = n < 16 ? n : 16;
        for (unsigned i = 0; i < k; i++)
            fs[i] = spawn_on(parked_reader, (void *)(intptr_t)p[0], i + 1);
        while (atomic_load(&parked) < (int)k) usleep(100);
        CHECK(async_await(async__io_close(p[0])) == 0);
        for (unsigned i = 0; i < k; i++) CHECK(async_await(fs[i]) == 0);
        close(p[1]);
    }
}

/* ---- 3. plain-thread cancels racing with data ---------------------------------------- */

static void cancels(void) {
    int p[2];
    nb_pipe(p);
    for (int i = 0; i < 2000 / scale; i++) {
        char c = 0;
        async_future_t *f = op(p[0], ASYNC_IO_READ, &c, 1);
        if (i % 2) CHECK(write(p[1], "x", 1) == 1);
        async_cancel(f);
        intptr_t r = async_await(f);
        if (r == -1) {
            CHECK(errno == ECANCELED);
            if (i % 2) { /* the byte is still there: take it */
                char d;
                while (read(p[0], &d, 1) != 1) usleep(10);
            }
        } else {
            CHECK(r == 1 && c == 'x');
        }
    }
    CHECK(async_await(async__io_close(p[0])) == 0);
    CHECK(async_await(async__io_close(p[1])) == 0);
}

/* ---- 4. cached file calls from every worker at once ------------------------------ */

#define FILES 8
static char file_dir[64];

static intptr_t file_user(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    char path[128], buf[1024];
    for (int i = 0; i < 2000 / scale; i++) {
        seed = seed * 1103515245u + 12345u;
        snprintf(path, sizeof path, "%s/f%u", file_dir, (seed >> 16) % FILES);
        int fd = (int)async_await(async_open(path, O_RDONLY | O_CLOEXEC));
        CHECK(fd >= 0);
        if (fd < 0) continue;
        struct stat st;
        CHECK(async_await(async_fstat(fd, &st)) == 0 && st.st_size == 4096);
        CHECK(async_await(async_read(fd, buf, sizeof buf)) == sizeof buf && buf[0] == 'c');
        CHECK(async_await(async_close(fd)) == 0);
    }
    return 0;
}

static void cached_files(void) {
    snprintf(file_dir, sizeof file_dir, "/tmp/asyncstd-stress-io.XXXXXX");
    CHECK(mkdtemp(file_dir) != NULL);
    char path[128], data[4096];
    memset(data, 'c', sizeof data);
    for (int i = 0; i < FILES; i++) {
        snprintf(path, sizeof path, "%s/f%d", file_dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        CHECK(fd >= 0 && write(fd, data, sizeof data) == sizeof data);
        close(fd);
    }
    unsigned n = (unsigned)async_worker_count();
    async_future_t *users[2 * 64];
    unsigned k = 0;
    for (unsigned w = 1; w <= n && k + 2 <= 2 * 64; w++) {
        users[k] = spawn_on(file_user, (void *)(uintptr_t)(k + 1), w);
        k++;
        users[k] = spawn_on(file_user, (void *)(uintptr_t)(k + 1), w);
        k++;
    }
    file_user((void *)(uintptr_t)999); /* and a plain thread */
    for (unsigned i = 0; i < k; i++) CHECK(async_await(users[i]) == 0);
    for (int i = 0; i < FILES; i++) {
        snprintf(path, sizeof path, "%s/f%d", file_dir, i);
        unlink(path);
    }
    rmdir(file_dir);
}

/* Children spawned and awaited from tasks on every worker at once, half the
 * waits cancelled and done again: proc.c's tasks, pidfd waits and the pool's
 * spawns under TSan. */
extern char **environ;

static intptr_t child_task(void *arg) {
    intptr_t i = (intptr_t)arg;
    char *argv[] = {"true", NULL};
    pid_t pid;
    CHECK(async_await(async_posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ)) == 0);
    int st = -1;
    if (i % 2) {
        async_future_t *w = async_waitpid(pid, &st, 0);
        async_cancel(w);
        intptr_t r = async_await(w);
        CHECK(r == pid || (r == -1 && errno == ECANCELED));
        if (r == pid) return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
    }
    CHECK(async_await(async_waitpid(pid, &st, 0)) == pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    return 0;
}

static void children(void) {
    int n = 400 / scale;
    async_future_t **fs = calloc((size_t)n, sizeof *fs);
    for (int i = 0; i < n; i++) fs[i] = async_spawn(child_task, (void *)(intptr_t)i);
    for (int i = 0; i < n; i++) CHECK(async_await(fs[i]) == 0);
    free(fs);
    int st;
    CHECK(waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD);
}

/* popen streams read and closed from tasks on every worker: the stream
 * layer's owned tasks, the popen list and the waits together under TSan. */
static intptr_t popen_task(void *arg) {
    int i = (int)(intptr_t)arg;
    char cmd[32], line[32] = "";
    snprintf(cmd, sizeof cmd, "echo %d", i);
    async_file_t *f = async_await_ptr(async_popen(cmd, "r"));
    CHECK(f != NULL);
    if (!f) return -1;
    CHECK(async_await_ptr(async_fgets(line, sizeof line, f)) != NULL);
    CHECK(atoi(line) == i);
    CHECK(async_await(async_pclose(f)) == 0);
    return 0;
}

static void popens(void) {
    int n = 200 / scale < 8 ? 8 : 200 / scale;
    async_future_t **fs = calloc((size_t)n, sizeof *fs);
    for (int i = 0; i < n; i++) fs[i] = async_spawn(popen_task, (void *)(intptr_t)i);
    for (int i = 0; i < n; i++) CHECK(async_await(fs[i]) == 0);
    free(fs);
}

int main(int argc, char **argv) {
    static const stress_scenario_t scenarios[] = {
        {"streams", streams},          {"line_streams", line_streams}, {"closes", closes},
        {"cancels", cancels},          {"children", children},         {"popens", popens},
        {"cached_files", cached_files}};
    return stress_main(argc, argv, scenarios, sizeof scenarios / sizeof *scenarios,
                       STRESS_FRESH_RUNTIME);
}
