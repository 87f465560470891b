/* The virtual clock under cross-thread pressure, in plain C (CI runs it in the
 * TSan build, where Criterion cannot start; see stress.h): sleepers on every
 * worker with cancels from a plain thread, ping-pong between workers whose
 * waits time out after 1 ms of virtual time (and so must never, since data
 * sent by a task is seen before the clock moves), plain threads sleeping on
 * the clock at once, and pool jobs, which hold it.
 *
 *   stress_vclock [SCALE]   SCALE divides the iteration counts (default 1) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "stress.h"

#define MS 1000000ull

static async_future_t *spawn_on(async_task_fn fn, void *arg, unsigned worker) {
    async_spawn_opts_t o = {0};
    o.worker = worker;
    return async_spawn_opts(fn, arg, &o);
}

/* ---- sleepers on every worker, some cancelled ------------------------------- */

#define SLEEPERS_MAX 4000

static uint64_t t0;
static unsigned dur[SLEEPERS_MAX];
static atomic_int nwoken;
static unsigned woke_dur[SLEEPERS_MAX];

static intptr_t sleeper(void *arg) {
    int i = (int)(intptr_t)arg;
    if (async_await(async_usleep((unsigned long)dur[i] * 1000)) != 0) return -1;
    CHECK(async_clock_now() - t0 == (uint64_t)dur[i] * MS);
    woke_dur[atomic_fetch_add(&nwoken, 1)] = dur[i];
    return 0;
}

static void sleepers(void) {
    int n = SLEEPERS_MAX / scale;
    int workers = async_worker_count();
    atomic_store(&nwoken, 0);
    for (int i = 0; i < n; i++) dur[i] = (unsigned)((i * 7919u) % (unsigned)n) * 10 + 10;
    static async_future_t *fs[SLEEPERS_MAX];
    t0 = async_clock_now();
    for (int i = 0; i < n; i++) fs[i] = spawn_on(sleeper, (void *)(intptr_t)i, i % workers + 1);
    int cancelled = 0;
    for (int i = 0; i < n; i += 7) { /* the clock stands still while this thread runs */
        async_cancel(fs[i]);
        cancelled++;
    }
    int ok = 0, ecanceled = 0;
    for (int i = 0; i < n; i++) {
        intptr_t r = async_await(fs[i]);
        if (r == 0)
            ok++;
        else if (errno == ECANCELED)
            ecanceled++;
    }
    CHECK(ecanceled == cancelled);
    CHECK(ok == n - cancelled);
    CHECK(atomic_load(&nwoken) == ok);
    for (int k = 1; k < ok; k++) CHECK(woke_dur[k - 1] < woke_dur[k]);
}

/* ---- ping-pong between workers with 1 ms timeouts --------------------------------- */

struct pair {
    int to_b[2], to_a[2];
    int rounds;
};

static atomic_bool pingpong_done;

static int recv_one(int fd) {
    for (;;) {
        char c;
        ssize_t n = read(fd, &c, 1);
        if (n == 1) return 0;
        if (n < 0 && errno != EAGAIN) return -1;
        if (async_await(async_fd_wait(fd, POLLIN, 1)) <= 0) return -1; /* 0: timed out */
    }
}

static intptr_t side_a(void *arg) {
    struct pair *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        if (write(p->to_b[1], "x", 1) != 1 || recv_one(p->to_a[0]) != 0) return -1;
    }
    return 0;
}

static intptr_t side_b(void *arg) {
    struct pair *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        if (recv_one(p->to_b[0]) != 0 || write(p->to_a[1], "y", 1) != 1) return -1;
    }
    return 0;
}

static intptr_t ticker(void *arg) {
    (void)arg;
    while (!atomic_load(&pingpong_done))
        if (async_await(async_usleep(1000)) != 0) return -1;
    return 0;
}

static void pingpong(void) {
    enum { PAIRS = 4 };
    int workers = async_worker_count();
    struct pair ps[PAIRS];
    async_future_t *fs[2 * PAIRS + 1];
    atomic_store(&pingpong_done, false);
    fs[2 * PAIRS] = async_spawn(ticker, NULL);
    for (int i = 0; i < PAIRS; i++) {
        CHECK(pipe2(ps[i].to_b, O_NONBLOCK | O_CLOEXEC) == 0);
        CHECK(pipe2(ps[i].to_a, O_NONBLOCK | O_CLOEXEC) == 0);
        ps[i].rounds = 2000 / scale;
        fs[2 * i] = spawn_on(side_a, &ps[i], (unsigned)(i % workers) + 1);
        fs[2 * i + 1] = spawn_on(side_b, &ps[i], (unsigned)((i + 1) % workers) + 1);
    }
    for (int i = 0; i < 2 * PAIRS; i++) CHECK(async_await(fs[i]) == 0);
    atomic_store(&pingpong_done, true);
    CHECK(async_await(fs[2 * PAIRS]) == 0);
    for (int i = 0; i < PAIRS; i++) {
        close(ps[i].to_b[0]);
        close(ps[i].to_b[1]);
        close(ps[i].to_a[0]);
        close(ps[i].to_a[1]);
    }
}

/* ---- plain threads sleeping on the clock, and pool jobs ---------------------------- */

static void *plain_sleeper(void *arg) {
    unsigned ms = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < 50 / scale + 1; i++) {
        uint64_t before = async_clock_now();
        CHECK(async_await(async_usleep(ms * 1000)) == 0);
        CHECK(async_clock_now() - before >= ms * MS);
    }
    return NULL;
}

static intptr_t real_work(void *arg) {
    (void)arg;
    usleep(200);
    return 0;
}

static intptr_t job_then_sleep(void *arg) {
    (void)arg;
    for (int i = 0; i < 20; i++) {
        uint64_t before = async_clock_now();
        if (async_await(async_spawn_blocking(real_work, NULL)) != 0) return -1;
        /* a job holds the clock, but plain threads' sleeps may have moved it before the job
         * was queued; what it cannot do is pass a sleep of ours */
        uint64_t mid = async_clock_now();
        if (async_await(async_usleep(3000)) != 0) return -1;
        CHECK(async_clock_now() - mid >= 3 * MS);
        CHECK(mid >= before);
    }
    return 0;
}

static void plain_threads_and_jobs(void) {
    enum { THREADS = 4, TASKS = 4 };
    pthread_t th[THREADS];
    async_future_t *fs[TASKS];
    for (int i = 0; i < TASKS; i++) fs[i] = async_spawn(job_then_sleep, NULL);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&th[i], NULL, plain_sleeper, (void *)(uintptr_t)(i + 1)) == 0);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < TASKS; i++) CHECK(async_await(fs[i]) == 0);
}

/* ---- advance from a task while plain threads sleep --------------------------------- */

static intptr_t advancer(void *arg) {
    (void)arg;
    for (int i = 0; i < 100 / scale + 1; i++) {
        uint64_t before = async_clock_now();
        intptr_t r = async_await(async_clock_advance(5 * MS));
        CHECK(r == 0 || errno == EBUSY);
        CHECK(async_clock_now() >= before + (r == 0 ? 5 * MS : 0));
    }
    return 0;
}

static void advance_beside_sleepers(void) {
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, plain_sleeper, (void *)(uintptr_t)(7 + i)) == 0);
    async_future_t *a = async_spawn(advancer, NULL), *b = async_spawn(advancer, NULL);
    CHECK(async_await(a) == 0);
    CHECK(async_await(b) == 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
}

int main(int argc, char **argv) {
    setenv("ASYNCSTD_CLOCK", "virtual", 1);
    static const stress_scenario_t scenarios[] = {
        {"sleepers_on_every_worker", sleepers},
        {"pingpong_with_1ms_timeouts", pingpong},
        {"plain_threads_and_pool_jobs", plain_threads_and_jobs},
        {"advance_beside_sleepers", advance_beside_sleepers},
    };
    return stress_main(argc, argv, scenarios, sizeof scenarios / sizeof *scenarios,
                       STRESS_FRESH_RUNTIME);
}
