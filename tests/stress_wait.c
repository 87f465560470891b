/* async_poll, async_fd_wait and the signal waits under cross-thread pressure,
 * in plain C (CI runs it in the TSan build, where Criterion cannot start; see
 * stress.h): fd ping-pong between tasks on different workers and plain
 * threads, waits cancelled from other threads while data flows, many waiters
 * on one eventfd, and signals raised on one worker awaited on others.
 *
 *   stress_wait [SCALE]   SCALE divides the iteration counts (default 1) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "stress.h"

static void nb_pipe(int p[2]) {
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
        perror("pipe2");
        exit(2);
    }
}

static async_future_t *spawn_on(async_task_fn fn, void *arg, unsigned worker) {
    async_spawn_opts_t o = {0};
    o.worker = worker;
    return async_spawn_opts(fn, arg, &o);
}

/* ---- ping-pong over pipes, waiting with async_fd_wait / async_poll ------------- */

struct pair {
    int to_b[2], to_a[2];
    int rounds;
};

static int wait_read(int fd, bool with_poll) {
    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n == 1) return 0;
        if (n < 0 && errno != EAGAIN) return -1;
        if (with_poll) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (async_await(async_poll(&p, 1, 10000)) != 1) return -1;
        } else if (async_await(async_fd_wait(fd, POLLIN, 10000)) <= 0) {
            return -1;
        }
    }
}

static intptr_t side_a(void *arg) {
    struct pair *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        if (write(p->to_b[1], "x", 1) != 1) return -1;
        if (wait_read(p->to_a[0], i % 2) != 0) return -1;
    }
    return 0;
}

static intptr_t side_b(void *arg) {
    struct pair *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        if (wait_read(p->to_b[0], i % 2 == 0) != 0) return -1;
        if (write(p->to_a[1], "y", 1) != 1) return -1;
    }
    return 0;
}

static void *side_b_thread(void *arg) { return (void *)side_b(arg); }

static void pingpong(void) {
    enum { PAIRS = 8 };
    unsigned nw = (unsigned)async_worker_count();
    struct pair pairs[PAIRS + 1];
    async_future_t *fs[2 * PAIRS + 1];
    for (int i = 0; i <= PAIRS; i++) {
        nb_pipe(pairs[i].to_a);
        nb_pipe(pairs[i].to_b);
        pairs[i].rounds = 2000 / scale;
    }
    for (int i = 0; i < PAIRS; i++) {
        fs[2 * i] = spawn_on(side_a, &pairs[i], 1 + (unsigned)i % nw);
        fs[2 * i + 1] = spawn_on(side_b, &pairs[i], 1 + (unsigned)(i + 1) % nw);
    }
    /* one pair with its B side on a plain thread */
    fs[2 * PAIRS] = async_spawn(side_a, &pairs[PAIRS]);
    pthread_t t;
    pthread_create(&t, NULL, side_b_thread, &pairs[PAIRS]);
    for (int i = 0; i <= 2 * PAIRS; i++) CHECK(async_await(fs[i]) == 0);
    void *r;
    pthread_join(t, &r);
    CHECK(r == NULL);
    for (int i = 0; i <= PAIRS; i++)
        for (int k = 0; k < 2; k++) {
            close(pairs[i].to_a[k]);
            close(pairs[i].to_b[k]);
        }
}

/* ---- waits cancelled from other threads while data arrives --------------------- */

/* The canceller cancels whatever wait is published; the task takes its wait
 * back (under the lock) only once it has settled, then awaits it, so a cancel
 * never touches a consumed future. */
struct canceller {
    pthread_mutex_t lock;
    async_future_t *target;
    atomic_int stop;
};

static void *cancel_loop(void *arg) {
    struct canceller *c = arg;
    while (!atomic_load(&c->stop)) {
        pthread_mutex_lock(&c->lock);
        if (c->target) async_cancel(c->target);
        pthread_mutex_unlock(&c->lock);
        usleep(50);
    }
    return NULL;
}

static intptr_t cancelled_waits(void *arg) {
    struct canceller *c = arg;
    int p[2];
    nb_pipe(p);
    int n = 1000 / scale, ok = 0, cancelled = 0;
    for (int i = 0; i < n; i++) {
        if (i % 3 == 0 && write(p[1], "z", 1) != 1) return -1;
        struct pollfd pfd[2] = {{.fd = p[0], .events = POLLIN}, {.fd = p[1], .events = POLLPRI}};
        async_future_t *f = i % 2 ? async_poll(pfd, 2, 1000) : async_fd_wait(p[0], POLLIN, 1000);
        pthread_mutex_lock(&c->lock);
        c->target = f;
        pthread_mutex_unlock(&c->lock);
        CHECK(async_await_any(&f, 1) == 0); /* settled; not consumed */
        pthread_mutex_lock(&c->lock);
        c->target = NULL;
        pthread_mutex_unlock(&c->lock);
        intptr_t r = async_await(f);
        if (r >= 1) {
            char b[8];
            CHECK(read(p[0], b, sizeof b) >= 1);
            ok++;
        } else {
            CHECK(r == -1 && errno == ECANCELED);
            cancelled++;
        }
    }
    CHECK(ok + cancelled == n);
    close(p[0]);
    close(p[1]);
    return 0;
}

static void cancel_while_waiting(void) {
    struct canceller c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    pthread_t t;
    pthread_create(&t, NULL, cancel_loop, &c);
    CHECK(async_await(async_spawn(cancelled_waits, &c)) == 0);
    atomic_store(&c.stop, 1);
    pthread_join(t, NULL);
}

/* ---- many waiters on one eventfd --------------------------------------------- */

static intptr_t eventfd_waiter(void *arg) {
    int fd = *(int *)arg;
    return async_await(async_fd_wait(fd, POLLIN, 10000)) == POLLIN ? 0 : -1;
}

static void many_waiters(void) {
    enum { WAITERS = 64 };
    unsigned nw = (unsigned)async_worker_count();
    int rounds = 50 / scale + 1;
    for (int r = 0; r < rounds; r++) {
        int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        async_future_t *fs[WAITERS];
        for (int i = 0; i < WAITERS; i++) fs[i] = spawn_on(eventfd_waiter, &fd, 1 + i % nw);
        async_future_t *plain = async_fd_wait(fd, POLLIN, 10000);
        uint64_t one = 1;
        CHECK(write(fd, &one, 8) == 8);
        for (int i = 0; i < WAITERS; i++) CHECK(async_await(fs[i]) == 0);
        CHECK(async_await(plain) == POLLIN);
        close(fd);
    }
}

/* ---- signals raised on one worker, awaited on the others ----------------------- */

static atomic_int taken;

static intptr_t signal_waiter(void *arg) {
    int n = (int)(intptr_t)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    for (int i = 0; i < n; i++) {
        struct timespec ts = {10, 0};
        if (async_await(async_sigtimedwait(&s, NULL, &ts)) != SIGUSR1) return -1;
        atomic_fetch_add(&taken, 1);
    }
    return 0;
}

static intptr_t signal_raiser(void *arg) {
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++) {
        /* one at a time: a second raise before the first is taken would merge */
        while (atomic_load(&taken) < i) async_await(async_usleep(100));
        raise(SIGUSR1);
    }
    return 0;
}

static void signals_across_workers(void) {
    unsigned nw = (unsigned)async_worker_count();
    int n = 400 / scale + 1;
    atomic_store(&taken, 0);
    /* catching starts at the first wait: before the raiser can run */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    struct timespec zero = {0, 0};
    CHECK(async_await(async_sigtimedwait(&s, NULL, &zero)) == -1 && errno == EAGAIN);
    async_future_t *w = spawn_on(signal_waiter, (void *)(intptr_t)n, 1);
    async_future_t *r = spawn_on(signal_raiser, (void *)(intptr_t)n, nw);
    CHECK(async_await(r) == 0);
    CHECK(async_await(w) == 0);
    CHECK(atomic_load(&taken) == n);
    /* and a plain thread's waits while a task raises */
    atomic_store(&taken, 0);
    r = spawn_on(signal_raiser, (void *)(intptr_t)n, nw);
    CHECK(signal_waiter((void *)(intptr_t)n) == 0);
    CHECK(async_await(r) == 0);
}

int main(int argc, char **argv) {
    static const stress_scenario_t scenarios[] = {
        {"pingpong", pingpong},
        {"cancel_while_waiting", cancel_while_waiting},
        {"many_waiters", many_waiters},
        {"signals_across_workers", signals_across_workers},
    };
    return stress_main(argc, argv, scenarios, sizeof scenarios / sizeof *scenarios,
                       STRESS_FRESH_RUNTIME);
}
