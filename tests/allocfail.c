/* allocfail: one pass through every module, written so that any single failed
 * allocation is survivable. tests/allocfail.sh runs it once per allocation it
 * makes, with that allocation failing (tests/allocfail_shim.c).
 *
 * The rule each step follows: a call that fails with ENOMEM (or EAGAIN, when
 * a thread could not be created) is retried, at most three times; only one
 * allocation of the run fails, so the retry must succeed and every result
 * must then be right. A helper task that never ran (its stack could not be
 * had) is run inline instead. Calls that consume their argument (close,
 * closedir, fclose) are never retried, as close(2) must not be, and must
 * succeed: closing needs no memory it could lack. At the end the runtime is
 * shut down and every fd the program opened must be closed; leaks are
 * LeakSanitizer's to find.
 *
 * Messages go to stderr, which is unbuffered: stdout's buffer would be one
 * more allocation to fail. Exit status 0: every check held. */
#define _GNU_SOURCE
#include <asyncstd/asyncstd.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

static atomic_int failures, transients;

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "allocfail.c:%d: check failed: %s (errno %d %s)\n", __LINE__, #cond, \
                    errno, strerror(errno));                                                     \
            atomic_fetch_add(&failures, 1);                                                      \
        }                                                                                        \
    } while (0)

static int transient(int e) { return e == ENOMEM || e == EAGAIN; }

/* VAR = EXPR until it is not -1 with a transient errno (at most 4 tries). */
#define RETRY(var, expr)                                            \
    do {                                                            \
        for (int try_ = 0;; try_++) {                               \
            errno = 0;                                              \
            var = (expr);                                           \
            if (var != -1 || !transient(errno) || try_ == 3) break; \
            atomic_fetch_add(&transients, 1);                       \
        }                                                           \
    } while (0)

/* The same for a pointer result: NULL with a transient errno is retried. */
#define RETRY_PTR(var, expr)                                          \
    do {                                                              \
        for (int try_ = 0;; try_++) {                                 \
            errno = 0;                                                \
            var = (expr);                                             \
            if (var != NULL || !transient(errno) || try_ == 3) break; \
            atomic_fetch_add(&transients, 1);                         \
        }                                                             \
    } while (0)

/* ---- helper tasks: started, then finished or run inline ------------------------------ */

typedef struct helper {
    atomic_int ran;
    intptr_t (*fn)(struct helper *);
    async_future_t *task;
    void *p;
    intptr_t v;
} helper_t;

static intptr_t helper_entry(void *arg) {
    helper_t *h = arg;
    atomic_store(&h->ran, 1);
    return h->fn(h);
}

static void start(helper_t *h, intptr_t (*fn)(helper_t *), void *p) {
    h->fn = fn;
    h->p = p;
    atomic_init(&h->ran, 0);
    RETRY_PTR(h->task, async_spawn(helper_entry, h));
}

/* The helper's result; when its task could not run, it runs here instead. */
static intptr_t finish(helper_t *h) {
    intptr_t r = async_await(h->task);
    if (r == -1 && !atomic_load(&h->ran)) {
        CHECK(transient(errno));
        atomic_fetch_add(&transients, 1);
        r = h->fn(h);
    }
    return r;
}

/* For close, closedir and fclose, which consume their argument and are not retried (after
 * any result but ENOMEM the fd is released, as close(2) on Linux releases it even when it
 * fails). With one allocation failing they must return 0: async_close keeps a spare op, a
 * stream holds its fclose op from the start, and nothing is left to flush here. The fd
 * count at the end checks that each fd is gone. */
#define CHECK_CLOSED(expr)    \
    do {                      \
        errno = 0;            \
        intptr_t r_ = (expr); \
        CHECK(r_ == 0);       \
    } while (0)

static void pause_ms(int ms) {
    intptr_t r;
    RETRY(r, async_await(async_usleep((unsigned long)ms * 1000)));
    CHECK(r == 0);
}

/* ---- core: tasks, timers, user futures, the blocking pool ---------------------------- */

static intptr_t answer(helper_t *h) {
    (void)h;
    return 42;
}

static void step_task(void) {
    helper_t h;
    start(&h, answer, NULL);
    CHECK(finish(&h) == 42);
}

static void step_timer(void) { pause_ms(1); }

static intptr_t resolver(helper_t *h) { return async_future_resolve(h->p, 7); }

static void step_future(void) {
    async_future_t *f;
    RETRY_PTR(f, async_future_new());
    CHECK(f != NULL);
    if (!f) return;
    helper_t h;
    start(&h, resolver, f);
    CHECK(finish(&h) == 0);
    CHECK(async_await(f) == 7);
}

static intptr_t blocking_job(void *arg) { return *(int *)arg + 1; }

static void step_pool(void) {
    int ten = 10;
    intptr_t r;
    RETRY(r, async_await(async_spawn_blocking(blocking_job, &ten)));
    CHECK(r == 11);
}

/* ---- sync: each primitive with a task that really waits on it ------------------------- */

typedef struct sync_state {
    async_mutex_t m;
    async_cond_t c;
    async_sem_t s;
    async_chan_t *ch;
    int flag, count;
} sync_state_t;

static intptr_t locker(helper_t *h) {
    sync_state_t *st = h->p;
    intptr_t r;
    RETRY(r, async_await(async_mutex_lock(&st->m)));
    if (r != 0) return -1;
    st->count++;
    return async_mutex_unlock(&st->m);
}

static intptr_t cond_waiter(helper_t *h) {
    sync_state_t *st = h->p;
    intptr_t r;
    RETRY(r, async_await(async_mutex_lock(&st->m)));
    if (r != 0) return -1;
    while (!st->flag) {
        /* a NULL future (ENOMEM) never released the mutex: waiting again is safe */
        RETRY(r, async_await(async_cond_wait(&st->c, &st->m)));
        if (r != 0) break;
    }
    async_mutex_unlock(&st->m);
    return r;
}

static intptr_t sem_waiter(helper_t *h) {
    sync_state_t *st = h->p;
    intptr_t r;
    RETRY(r, async_await(async_sem_wait(&st->s)));
    return r;
}

static intptr_t chan_receiver(helper_t *h) {
    sync_state_t *st = h->p;
    int x = 0;
    intptr_t r;
    RETRY(r, async_await(async_chan_recv(st->ch, &x)));
    return r == 1 ? x : -1;
}

static void step_sync(void) {
    sync_state_t st = {.flag = 0};
    helper_t h;
    intptr_t r;
    CHECK(async_mutex_init(&st.m, NULL) == 0);
    CHECK(async_cond_init(&st.c, NULL) == 0);
    CHECK(async_sem_init(&st.s, 0, 0) == 0);

    /* mutex: the helper queues behind us, and gets it when we unlock */
    RETRY(r, async_await(async_mutex_lock(&st.m)));
    CHECK(r == 0);
    start(&h, locker, &st);
    pause_ms(2);
    CHECK(async_mutex_unlock(&st.m) == 0);
    CHECK(finish(&h) == 0);
    CHECK(st.count == 1);

    /* condition variable */
    start(&h, cond_waiter, &st);
    pause_ms(2);
    RETRY(r, async_await(async_mutex_lock(&st.m)));
    CHECK(r == 0);
    st.flag = 1;
    CHECK(async_cond_signal(&st.c) == 0);
    CHECK(async_mutex_unlock(&st.m) == 0);
    CHECK(finish(&h) == 0);

    /* semaphore */
    start(&h, sem_waiter, &st);
    pause_ms(2);
    CHECK(async_sem_post(&st.s) == 0);
    CHECK(finish(&h) == 0);

    /* channel: one item handed to a waiting receiver, one buffered */
    RETRY_PTR(st.ch, async_chan_new(sizeof(int), 1));
    CHECK(st.ch != NULL);
    if (st.ch) {
        int five = 5, six = 6, x = 0;
        start(&h, chan_receiver, &st);
        pause_ms(2);
        RETRY(r, async_await(async_chan_send(st.ch, &five)));
        CHECK(r == 0);
        CHECK(finish(&h) == 5);
        RETRY(r, async_await(async_chan_send(st.ch, &six)));
        CHECK(r == 0);
        CHECK(async_chan_tryrecv(st.ch, &x) == 1 && x == 6);
        CHECK(async_chan_close(st.ch) == 0);
        CHECK(async_chan_free(st.ch) == 0);
    }
    CHECK(async_sem_destroy(&st.s) == 0);
    CHECK(async_cond_destroy(&st.c) == 0);
    CHECK(async_mutex_destroy(&st.m) == 0);
}

/* ---- fs: a file, a directory, a stream ------------------------------------------------ */

static char dir[64], file[96], text[96];

static void step_file(void) {
    intptr_t fd, r;
    RETRY(fd, async_await(async_open(file, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600)));
    CHECK(fd >= 0);
    if (fd < 0) return;
    RETRY(r, async_await(async_write((int)fd, "hello\n", 6)));
    CHECK(r == 6);
    char buf[16] = {0};
    RETRY(r, async_await(async_pread((int)fd, buf, sizeof buf, 0)));
    CHECK(r == 6 && memcmp(buf, "hello\n", 6) == 0);
    struct stat a, b;
    RETRY(r, async_await(async_fstat((int)fd, &a)));
    CHECK(r == 0 && a.st_size == 6);
    RETRY(r, async_await(async_stat(file, &b)));
    CHECK(r == 0 && b.st_ino == a.st_ino);
    CHECK_CLOSED(async_await(async_close((int)fd)));
}

static void step_dir(void) {
    async_dir_t *d;
    RETRY_PTR(d, async_await_ptr(async_opendir(dir)));
    CHECK(d != NULL);
    if (!d) return;
    int seen = 0;
    for (;;) {
        struct dirent *e;
        RETRY_PTR(e, async_await_ptr(async_readdir(d)));
        if (!e) {
            CHECK(errno == 0); /* the end, not an error */
            break;
        }
        if (!strcmp(e->d_name, "file")) seen++;
    }
    CHECK(seen == 1);
    CHECK_CLOSED(async_await(async_closedir(d)));
}

static void step_stream(void) {
    async_file_t *f;
    intptr_t r;
    RETRY_PTR(f, async_await_ptr(async_fopen(text, "w+")));
    CHECK(f != NULL);
    if (!f) return;
    RETRY(r, async_await(async_fputs("line one\n", f)));
    CHECK(r >= 0);
    RETRY(r, async_await(async_fflush(f)));
    CHECK(r == 0);
    CHECK_CLOSED(async_await(async_fclose(f)));

    RETRY_PTR(f, async_await_ptr(async_fopen(text, "r")));
    CHECK(f != NULL);
    if (!f) return;
    char line[32] = {0};
    char *s;
    RETRY_PTR(s, async_await_ptr(async_fgets(line, sizeof line, f)));
    CHECK(s == line && !strcmp(line, "line one\n"));
    CHECK_CLOSED(async_await(async_fclose(f)));
}

/* ---- net: a socket pair, loopback TCP, the resolver ----------------------------------- */

static intptr_t pair_reader(helper_t *h) {
    int fd = *(int *)h->p;
    char buf[8] = {0};
    intptr_t r;
    RETRY(r, async_await(async_recv(fd, buf, 4, MSG_WAITALL)));
    return r == 4 && !memcmp(buf, "ping", 4) ? 0 : -1;
}

static void step_socketpair(void) {
    int sv[2];
    intptr_t r;
    RETRY(r, async_await(async_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)));
    CHECK(r == 0);
    if (r != 0) return;
    helper_t h;
    start(&h, pair_reader, &sv[1]); /* it parks on an empty socket */
    pause_ms(2);
    RETRY(r, async_await(async_send(sv[0], "ping", 4, 0)));
    CHECK(r == 4);
    CHECK(finish(&h) == 0);
    CHECK_CLOSED(async_await(async_close(sv[0])));
    CHECK_CLOSED(async_await(async_close(sv[1])));
}

static intptr_t tcp_server(helper_t *h) {
    int lfd = *(int *)h->p;
    intptr_t fd, r;
    RETRY(fd, async_await(async_accept(lfd, NULL, NULL)));
    if (fd < 0) return -1;
    char buf[8];
    RETRY(r, async_await(async_recv((int)fd, buf, 5, MSG_WAITALL)));
    intptr_t ok = r == 5 ? 0 : -1;
    if (ok == 0) {
        RETRY(r, async_await(async_send((int)fd, buf, 5, 0)));
        if (r != 5) ok = -1;
    }
    CHECK_CLOSED(async_await(async_close((int)fd)));
    return ok;
}

static void step_tcp(void) {
    intptr_t lfd, fd, r;
    RETRY(lfd, async_await(async_tcp_listen("127.0.0.1", "0", 8)));
    CHECK(lfd >= 0);
    if (lfd < 0) return;
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    CHECK(getsockname((int)lfd, (struct sockaddr *)&a, &len) == 0);
    char port[8];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    int l = (int)lfd;
    helper_t h;
    start(&h, tcp_server, &l); /* it parks in accept */
    pause_ms(2);
    RETRY(fd, async_await(async_tcp_connect("127.0.0.1", port, 5000)));
    CHECK(fd >= 0);
    if (fd >= 0) {
        RETRY(r, async_await(async_send((int)fd, "hello", 5, 0)));
        CHECK(r == 5);
    }
    CHECK(finish(&h) == 0);
    if (fd >= 0) {
        char buf[8] = {0};
        RETRY(r, async_await(async_recv((int)fd, buf, 5, MSG_WAITALL)));
        CHECK(r == 5 && !memcmp(buf, "hello", 5));
        CHECK_CLOSED(async_await(async_close((int)fd)));
    }
    CHECK_CLOSED(async_await(async_close(l)));
}

static void step_dns(void) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    intptr_t r;
    for (int try_ = 0;; try_++) { /* EAI_MEMORY is getaddrinfo's ENOMEM */
        RETRY(r, async_await(async_getaddrinfo("127.0.0.1", "80", &hints, &ai)));
        if (r != EAI_MEMORY || try_ == 3) break;
        atomic_fetch_add(&transients, 1);
    }
    CHECK(r == 0);
    if (r != 0) return;
    CHECK(ai && ai->ai_family == AF_INET &&
          ((struct sockaddr_in *)ai->ai_addr)->sin_port == htons(80));
    async_freeaddrinfo(ai);
}

/* ---- waiting on any fd, and signals ------------------------------------------------- */

static intptr_t fd_waiter(helper_t *h) {
    int fd = *(int *)h->p;
    intptr_t r;
    RETRY(r, async_await(async_fd_wait(fd, POLLIN, 5000)));
    return r == POLLIN ? 0 : -1;
}

static void step_poll(void) {
    int p[2];
    CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
    helper_t h;
    start(&h, fd_waiter, &p[0]); /* it parks on an empty pipe */
    pause_ms(2);
    CHECK(write(p[1], "x", 1) == 1);
    CHECK(finish(&h) == 0);
    struct pollfd pfd[2] = {{.fd = p[0], .events = POLLIN}, {.fd = p[1], .events = POLLOUT}};
    intptr_t r;
    RETRY(r, async_await(async_poll(pfd, 2, 1000)));
    CHECK(r == 2 && pfd[0].revents == POLLIN && pfd[1].revents == POLLOUT);
    char c;
    CHECK(read(p[0], &c, 1) == 1);
    pfd[1].events = POLLPRI; /* nothing will come: the timer ends the race */
    RETRY(r, async_await(async_poll(pfd, 2, 2)));
    CHECK(r == 0);
    close(p[0]);
    close(p[1]);
}

/* RETRY for a call whose expected result is EAGAIN: only ENOMEM is retried. */
#define RETRY_NOMEM(var, expr)                                    \
    do {                                                          \
        for (int try_ = 0;; try_++) {                             \
            errno = 0;                                            \
            var = (expr);                                         \
            if (var != -1 || errno != ENOMEM || try_ == 3) break; \
            atomic_fetch_add(&transients, 1);                     \
        }                                                         \
    } while (0)

static void step_signal(void) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    struct timespec zero = {0, 0}, short_wait = {0, 2000000};
    intptr_t r;
    RETRY_NOMEM(r, async_await(async_sigtimedwait(&s, NULL, &zero))); /* catching starts */
    CHECK(r == -1 && errno == EAGAIN);
    raise(SIGUSR1);
    int sig = 0;
    RETRY(r, async_await(async_sigwait(&s, &sig)));
    CHECK(r == 0 && sig == SIGUSR1);
    RETRY_NOMEM(r, async_await(async_sigtimedwait(&s, NULL, &short_wait)));
    CHECK(r == -1 && errno == EAGAIN);
}

/* ---- the program -------------------------------------------------------------------- */

static intptr_t body(void *arg) {
    (void)arg;
    step_task();
    step_timer();
    step_future();
    step_pool();
    step_sync();
    step_file();
    step_dir();
    step_stream();
    step_socketpair();
    step_tcp();
    step_dns();
    step_poll();
    step_signal();
    return 0;
}

/* Open fds, counted without allocating (opendir("/proc/self/fd") would). */
static int count_fds(void) {
    int n = 0;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) != -1) n++;
    return n;
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/allocfail.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(file, sizeof file, "%s/file", dir);
    snprintf(text, sizeof text, "%s/text", dir);
    int fds = count_fds();

    int r;
    RETRY(r, async_runtime_init(NULL));
    CHECK(r == 0);
    if (r == 0) {
        intptr_t v;
        RETRY(v, async_await(async_spawn(body, NULL)));
        CHECK(v == 0);
        step_timer(); /* an await on a plain thread */
        CHECK(async_runtime_shutdown() == 0);
    }
    uv_library_shutdown(); /* libuv keeps a global pipe (its signal lock) until exit */
    CHECK(count_fds() == fds);

    unlink(file);
    unlink(text);
    rmdir(dir);
    fprintf(stderr, "allocfail: %s, %d failed checks, %d transient failures retried\n",
            failures ? "FAILED" : "ok", atomic_load(&failures), atomic_load(&transients));
    return failures ? 1 : 0;
}
