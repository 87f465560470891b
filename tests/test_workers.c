/* Several workers: stealing of unstarted tasks, pinning, wake-ups across
 * workers under stress, an idle runtime that burns no CPU, and I/O (timers)
 * that a task which keeps yielding cannot starve. Run with 1, 2 and 8
 * workers (tests/meson.build); where the answer depends on the count, the
 * test asserts the answer for that count. */
#include "helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

/* The stress test's size: a million wake-ups, a tenth of that under valgrind or TSan. */
#if defined(__SANITIZE_THREAD__)
#define STRESS_SCALE 10
#else
#define STRESS_SCALE (RUNNING_ON_VALGRIND ? 10 : 1)
#endif

TestSuite(workers, .timeout = 120);

/* ---- waking a worker that has been asleep since it started -------------------------------- */

static intptr_t my_worker(void *arg) {
    (void)arg;
    return async_worker_id();
}

/* Every worker blocks on its own epoll right after it starts; a spawn from a plain
 * thread must still wake it (its wake-up fd must be in the epoll it blocks on), and a
 * timer must still fire on it. */
Test(workers, workers_asleep_since_start_wake_up) {
    cr_assert_eq(async_runtime_init(NULL), 0);
    sleep_ms(100); /* every worker has gone to sleep */
    int n = async_worker_count();
    for (int i = 1; i <= n; i++) {
        async_spawn_opts_t o = {.worker = (unsigned)i};
        ASSERT_VAL(async_await(async_spawn_opts(my_worker, NULL, &o)), i);
    }
    sleep_ms(50);
    ASSERT_VAL(async_await(async_usleep(2000)), 0);
    rt_stop();
}

/* ---- stealing ---------------------------------------------------------------------------- */

static atomic_int seen[65];

/* Busy for ~2 ms without awaiting, so the spawner's worker cannot run them all quickly. */
static intptr_t busy_then_report(void *arg) {
    double t0 = now_ms();
    while (now_ms() - t0 < 2.0) {
    }
    unsigned id = async_worker_id();
    CHECK(id >= 1 && id <= 64);
    if (id <= 64) atomic_fetch_add(&seen[id], 1);
    return 0;
}

static intptr_t spawn_burst(void *arg) {
    enum { N = 400 };
    async_future_t *fs[N];
    for (int i = 0; i < N; i++) fs[i] = async_spawn(busy_then_report, NULL);
    CHECK_EQ(async_await_all(fs, N, NULL, NULL), 0);
    return 0;
}

Test(workers, idle_workers_steal_unstarted_tasks) {
    rt_start();
    unsigned n = (unsigned)async_worker_count();
    async_spawn_opts_t o = {.worker = 1};
    ASSERT_VAL(async_await(async_spawn_opts(spawn_burst, NULL, &o)), 0);
    int total = 0, workers_used = 0;
    for (unsigned i = 1; i <= 64; i++) {
        int c = atomic_load(&seen[i]);
        total += c;
        workers_used += c > 0;
    }
    cr_assert_eq(total, 400);
    if (n == 1)
        cr_assert_eq(workers_used, 1);
    else /* 800 ms of work spawned on worker 1: the others must have taken some */
        cr_assert_geq(workers_used, 2, "only %d of %u workers ran tasks", workers_used, n);
    rt_stop();
}

static intptr_t report_worker(void *arg) { return (intptr_t)async_worker_id(); }

static intptr_t spawn_pinned(void *arg) {
    unsigned n = (unsigned)async_worker_count();
    enum { N = 200 };
    async_future_t *fs[N];
    for (int i = 0; i < N; i++) {
        async_spawn_opts_t o = {.worker = (unsigned)(i % n) + 1};
        fs[i] = async_spawn_opts(report_worker, NULL, &o);
    }
    for (int i = 0; i < N; i++) CHECK_EQ(async_await(fs[i]), (i % n) + 1);
    return 0;
}

Test(workers, pinned_tasks_are_never_stolen) {
    rt_start();
    ASSERT_VAL(async_await(async_spawn(spawn_pinned, NULL)), 0);
    rt_stop();
}

/* A started task stays on its worker across every await. */
static intptr_t stay_put(void *arg) {
    unsigned id = async_worker_id();
    for (int i = 0; i < 50; i++) {
        if (i % 2)
            async_yield();
        else
            async_await(async_usleep(100));
        CHECK_EQ(async_worker_id(), id);
    }
    return 0;
}

Test(workers, started_tasks_never_migrate) {
    rt_start();
    enum { N = 64 };
    async_future_t *fs[N];
    for (int i = 0; i < N; i++) fs[i] = async_spawn(stay_put, NULL);
    ASSERT_VAL(async_await_all(fs, N, NULL, NULL), 0);
    rt_stop();
}

/* ---- wake-ups across workers ------------------------------------------------------------- */

typedef struct {
    async_future_t **to_a, **to_b;
    int rounds;
} pair_t;

static intptr_t ping(void *arg) {
    pair_t *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        CHECK_EQ(async_future_resolve(p->to_b[i], i), 0);
        CHECK_EQ(async_await(p->to_a[i]), i);
    }
    return 0;
}

static intptr_t pong(void *arg) {
    pair_t *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        CHECK_EQ(async_await(p->to_b[i]), i);
        CHECK_EQ(async_future_resolve(p->to_a[i], i), 0);
    }
    return 0;
}

/* Pairs of tasks on different workers (where there are several) wake each other through
 * futures made beforehand: every round trip is two cross-worker wake-ups. */
Test(workers, stress_wakeups_across_workers) {
    rt_start();
    unsigned n = (unsigned)async_worker_count();
    enum { PAIRS = 4 };
    const int ROUNDS = 125000 / STRESS_SCALE; /* 1,000,000 wake-ups in a plain build */
    pair_t pairs[PAIRS];
    async_future_t *fs[2 * PAIRS];
    for (int k = 0; k < PAIRS; k++) {
        pairs[k].rounds = ROUNDS;
        pairs[k].to_a = malloc(ROUNDS * sizeof(async_future_t *));
        pairs[k].to_b = malloc(ROUNDS * sizeof(async_future_t *));
        cr_assert(pairs[k].to_a && pairs[k].to_b);
        for (int i = 0; i < ROUNDS; i++) {
            pairs[k].to_a[i] = async_future_new();
            pairs[k].to_b[i] = async_future_new();
            cr_assert(pairs[k].to_a[i] && pairs[k].to_b[i]);
        }
        async_spawn_opts_t oa = {.worker = (unsigned)(2 * k) % n + 1};
        async_spawn_opts_t ob = {.worker = (unsigned)(2 * k + 1) % n + 1};
        fs[2 * k] = async_spawn_opts(pong, &pairs[k], &ob);
        fs[2 * k + 1] = async_spawn_opts(ping, &pairs[k], &oa);
    }
    ASSERT_VAL(async_await_all(fs, 2 * PAIRS, NULL, NULL), 0);
    for (int k = 0; k < PAIRS; k++) {
        free(pairs[k].to_a);
        free(pairs[k].to_b);
    }
    rt_stop();
}

/* Many plain threads resolve futures that tasks on every worker await. */
typedef struct {
    async_future_t **fs;
    int from, to;
} slice_t;

static void *resolve_slice(void *arg) {
    slice_t *s = arg;
    for (int i = s->from; i < s->to; i++) CHECK_EQ(async_future_resolve(s->fs[i], i), 0);
    return NULL;
}

static intptr_t await_one(void *arg) { return async_await(arg); }

Test(workers, plain_threads_wake_tasks_on_every_worker) {
    rt_start();
    enum { N = 20000, THREADS = 4 };
    async_future_t **fs = malloc(N * sizeof *fs), **tasks = malloc(N * sizeof *tasks);
    cr_assert(fs && tasks);
    for (int i = 0; i < N; i++) {
        fs[i] = async_future_new();
        cr_assert(fs[i]);
        tasks[i] = async_spawn(await_one, fs[i]);
    }
    pthread_t th[THREADS];
    slice_t sl[THREADS];
    for (int t = 0; t < THREADS; t++) {
        sl[t] = (slice_t){fs, t * N / THREADS, (t + 1) * N / THREADS};
        cr_assert_eq(pthread_create(&th[t], NULL, resolve_slice, &sl[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    for (int i = 0; i < N; i++) cr_assert_eq(async_await(tasks[i]), i);
    free(fs);
    free(tasks);
    rt_stop();
}

/* Cancels from plain threads race with the tasks' own progress. */
static intptr_t sleeps_long(void *arg) { return async_await(async_sleep(30)); }

Test(workers, cancel_from_other_threads) {
    rt_start();
    enum { N = 2000 };
    async_future_t *fs[N];
    for (int i = 0; i < N; i++) fs[i] = async_spawn(sleeps_long, NULL);
    for (int i = 0; i < N; i++) async_cancel(fs[i]);
    for (int i = 0; i < N; i++) ASSERT_ERR(async_await(fs[i]), ECANCELED);
    rt_stop();
}

/* ---- idle and fairness ------------------------------------------------------------------- */

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static intptr_t tiny(void *arg) { return 1; }

Test(workers, an_idle_runtime_burns_no_cpu) {
    rt_start();
    /* some activity first, so that every worker has run and gone idle */
    for (int i = 0; i < 100; i++) ASSERT_VAL(async_await(async_spawn(tiny, NULL)), 1);
    sleep_ms(100);
    double c0 = cpu_seconds(), t0 = now_ms();
    sleep_ms(1000);
    double used = cpu_seconds() - c0, wall = (now_ms() - t0) / 1000;
    /* a spinning worker would use about `wall` seconds of CPU each */
    cr_assert_lt(used, 0.05 * wall, "an idle runtime used %.3f s of CPU in %.3f s", used, wall);
    rt_stop();
}

static atomic_bool stop_yielding;

static intptr_t yield_forever(void *arg) {
    long n = 0;
    while (!atomic_load(&stop_yielding)) {
        async_yield();
        n++;
    }
    return n > 0;
}

static intptr_t timed_sleep(void *arg) {
    double t0 = now_ms();
    async_await(async_usleep(20000));
    atomic_store(&stop_yielding, true);
    return (intptr_t)(now_ms() - t0);
}

/* A task that never awaits, only yields, shares its worker with a sleeping task: the worker
 * must keep polling its timers, so the sleep ends on time (not when the yielder stops). */
Test(workers, a_yielding_task_does_not_starve_timers) {
    rt_start();
    async_spawn_opts_t o = {.worker = 1};
    async_future_t *y = async_spawn_opts(yield_forever, NULL, &o);
    async_future_t *s = async_spawn_opts(timed_sleep, NULL, &o);
    intptr_t ms = async_await_timeout(s, 10000);
    atomic_store(&stop_yielding, true);
    cr_assert(ms >= 20 && ms < 5000, "a 20 ms sleep beside a yielding task took %" PRIdPTR " ms",
              ms);
    ASSERT_VAL(async_await(y), 1);
    rt_stop();
}

/* Task groups whose members run on every worker, one of which fails. */
static intptr_t member(void *arg) {
    intptr_t i = (intptr_t)arg;
    if (i == 137) {
        async_await(async_usleep(5000));
        errno = EPROTO;
        return -1;
    }
    return async_await(async_sleep(30));
}

Test(workers, a_group_across_workers_cancels_on_first_failure) {
    rt_start();
    unsigned n = (unsigned)async_worker_count();
    async_group_t *g = async_group_new();
    cr_assert(g);
    for (intptr_t i = 0; i < 500; i++) {
        async_spawn_opts_t o = {.worker = (unsigned)(i % n) + 1};
        cr_assert_eq(async_group_spawn(g, member, (void *)i, &o), 0);
    }
    double t0 = now_ms();
    ASSERT_ERR(async_await(async_group_wait(g)), EPROTO);
    cr_assert_lt(now_ms() - t0, 10000);
    async_group_free(g);
    rt_stop();
}

/* ---- a task that never awaits holds only its own worker -------------------------------- */

static atomic_bool spin_release;
static atomic_int spinning, spin_ran_out;

static intptr_t spinner(void *arg) {
    (void)arg;
    atomic_fetch_add(&spinning, 1);
    double end = now_ms() + 20000; /* a bound, never reached when the waits work */
    while (!atomic_load(&spin_release))
        if (now_ms() > end) {
            atomic_fetch_add(&spin_ran_out, 1);
            break;
        }
    return 0;
}

static int stuck_port;

static void *connect_and_send(void *arg) {
    (void)arg;
    sleep_ms(30);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)stuck_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    sleep_ms(30);
    CHECK_EQ(send(fd, "hi", 2, 0), 2);
    return (void *)(intptr_t)fd;
}

/* Every worker runs a task that never awaits; the plain thread's accept, recv
 * and sleep still complete, while the tasks are still spinning. */
Test(workers, a_stuck_task_holds_only_its_own_worker) {
    rt_start();
    unsigned n = (unsigned)async_worker_count();
    async_future_t *spinners[64];
    cr_assert_leq(n, 64);
    for (unsigned i = 0; i < n; i++) spinners[i] = spawn_on(spinner, NULL, i + 1);
    cr_assert(WAIT_UNTIL(atomic_load(&spinning) == (int)n, 5000));

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(lfd, 4), 0);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    stuck_port = ntohs(a.sin_port);
    pthread_t t = thread_start(connect_and_send, NULL);

    int fd = (int)async_await(async_accept(lfd, NULL, NULL));
    cr_assert_geq(fd, 0, "accept: %s", ename(errno));
    char b[2];
    ASSERT_VAL(async_await(async_recv(fd, b, sizeof b, MSG_WAITALL)), 2);
    ASSERT_VAL(async_await(async_usleep(10000)), 0);
    cr_assert_eq(atomic_load(&spin_ran_out), 0, "the waits completed only when the tasks let go");

    atomic_store(&spin_release, true);
    for (unsigned i = 0; i < n; i++) ASSERT_VAL(async_await(spinners[i]), 0);
    void *client;
    pthread_join(t, &client);
    close((int)(intptr_t)client);
    ASSERT_VAL(async_await(async_close(fd)), 0);
    close(lfd);
    rt_stop();
}
