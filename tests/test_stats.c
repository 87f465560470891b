/* async_runtime_stats: the counters for known workloads, read from a plain
 * thread and from a task; the gauges back at their baseline afterwards; bad
 * input; a runtime that is not running. */
#include "helpers.h"

#include <semaphore.h>

#define WORKERS_MAX 64

typedef struct snapshot {
    async_runtime_stats_t s;
    async_worker_stats_t w[WORKERS_MAX];
} snapshot_t;

static void take(snapshot_t *snap) {
    memset(snap, 0, sizeof *snap);
    cr_assert_eq(async_runtime_stats(&snap->s, snap->w, WORKERS_MAX), 0, "%s", ename(errno));
    cr_assert_leq(snap->s.workers, WORKERS_MAX);
}

static intptr_t nap(void *arg) {
    (void)arg;
    return async_await(async_usleep(1000));
}

static bool idle_again(void) {
    async_runtime_stats_t s;
    return async_runtime_stats(&s, NULL, 0) == 0 && s.tasks_live == 0 && s.all.tasks_live == 0;
}

Test(stats, spawns_runs_and_timers_from_a_plain_thread) {
    rt_start();
    snapshot_t a, b;
    take(&a);
    cr_assert_eq(a.s.workers, (unsigned)async_worker_count());
    enum { N = 300 };
    async_future_t *f[N];
    for (int i = 0; i < N; i++) f[i] = async_spawn(nap, NULL);
    cr_assert_eq(async_await_all(f, N, NULL, NULL), 0);
    cr_assert(WAIT_UNTIL(idle_again(), 5000), "live tasks back to 0");
    take(&b);
    cr_assert_geq(b.s.spawns - a.s.spawns, N);
    /* each task runs twice: to its sleep, and after it */
    cr_assert_geq(b.s.all.tasks_run - a.s.all.tasks_run, 2 * N);
    cr_assert_geq(b.s.timers - a.s.timers, N);
    cr_assert_eq(b.s.tasks_live, 0);
    uint64_t runs = 0, live = 0;
    for (unsigned i = 0; i < b.s.workers; i++) {
        runs += b.w[i].tasks_run;
        live += b.w[i].tasks_live;
        cr_assert_leq(b.w[i].busy_ns, b.s.uptime_ns,
                      "a worker cannot be busy longer than it lived");
    }
    cr_assert_eq(live, 0);
    cr_assert_eq(runs, b.s.all.tasks_run, "the waiter runs no task: the workers' runs are all");
    cr_assert_gt(b.s.all.polls, 0);
    cr_assert_gt(b.s.all.parks, 0);
    cr_assert_geq(b.s.uptime_ns, a.s.uptime_ns);
    rt_stop();
}

/* Inside a task: its own worker has a live task (the caller) and has run it. */
static intptr_t read_from_task(void *arg) {
    snapshot_t *snap = arg;
    if (async_runtime_stats(&snap->s, snap->w, WORKERS_MAX) != 0) return -1;
    unsigned me = async_worker_id();
    CHECK(me >= 1 && me <= snap->s.workers);
    CHECK(snap->w[me - 1].tasks_live >= 1);
    CHECK(snap->w[me - 1].tasks_run >= 1);
    CHECK(snap->s.tasks_live >= 1);
    return 0;
}

Test(stats, read_from_a_task) {
    rt_start();
    snapshot_t snap;
    cr_assert_eq(async_await(async_spawn(read_from_task, &snap)), 0, "%s", ename(errno));
    cr_assert_eq(snap.s.workers, (unsigned)async_worker_count());
    cr_assert_geq(snap.s.spawns, 1);
    rt_stop();
}

static intptr_t count_one(void *arg) {
    atomic_fetch_add((atomic_int *)arg, 1);
    return 0;
}

Test(stats, pool_jobs) {
    rt_start();
    snapshot_t a, b;
    take(&a);
    enum { K = 20 };
    atomic_int ran = 0;
    for (int i = 0; i < K; i++) cr_assert_eq(async_await(async_spawn_blocking(count_one, &ran)), 0);
    take(&b);
    cr_assert_eq(atomic_load(&ran), K);
    cr_assert_geq(b.s.pool.jobs_run - a.s.pool.jobs_run, K);
    cr_assert_geq(b.s.pool.threads, 1);
    /* (file calls are pool jobs only when they cannot be answered inline or by
     * io_uring, so they give no count to check against) */
    cr_assert(WAIT_UNTIL((take(&a), a.s.pool.busy == 0), 5000));
    cr_assert_eq(a.s.pool.queued_fs + a.s.pool.queued_user, 0);
    rt_stop();
}

/* User jobs beyond the user lane's share wait in its queue: one user thread here. */
static sem_t gate;

static intptr_t wait_at_gate(void *arg) {
    (void)arg;
    while (sem_wait(&gate) == -1 && errno == EINTR) {
    }
    return 0;
}

Test(stats, queued_user_jobs) {
    async_config_t c = {.pool_threads = 2, .pool_reserved = 1};
    cr_assert_eq(async_runtime_init(&c), 0);
    sem_init(&gate, 0, 0);
    async_future_t *f[3];
    for (int i = 0; i < 3; i++) f[i] = async_spawn_blocking(wait_at_gate, NULL);
    snapshot_t s;
    cr_assert(WAIT_UNTIL((take(&s), s.s.pool.busy == 1 && s.s.pool.queued_user == 2), 5000),
              "busy %u, queued %zu", s.s.pool.busy, s.s.pool.queued_user);
    cr_assert_eq(s.s.pool.queued_fs, 0);
    for (int i = 0; i < 3; i++) sem_post(&gate);
    cr_assert_eq(async_await_all(f, 3, NULL, NULL), 0);
    cr_assert(WAIT_UNTIL((take(&s), s.s.pool.busy == 0 && s.s.pool.queued_user == 0), 5000));
    sem_destroy(&gate);
    rt_stop();
}

Test(stats, cancels_are_counted) {
    rt_start();
    snapshot_t a, b;
    take(&a);
    async_future_t *sleeper = async_sleep(60);
    async_cancel(sleeper);
    cr_assert_eq(async_await(sleeper), -1);
    cr_assert_eq(errno, ECANCELED);
    async_future_t *t = async_spawn(nap, NULL);
    async_cancel(t);
    (void)async_await(t);
    take(&b);
    cr_assert_geq(b.s.cancels - a.s.cancels, 2);
    rt_stop();
}

/* A task that computes for 60 ms makes its worker busy at least that long. */
static intptr_t compute(void *arg) {
    double until = now_ms() + *(double *)arg;
    volatile unsigned long x = 0;
    while (now_ms() < until) x++;
    return 0;
}

Test(stats, busy_time) {
    rt_start();
    snapshot_t a, b;
    take(&a);
    double ms = 60;
    cr_assert_eq(async_await(spawn_on(compute, &ms, 1)), 0);
    take(&b);
    cr_assert_geq(b.w[0].busy_ns - a.w[0].busy_ns, 50 * 1000000ull, "%llu ns",
                  (unsigned long long)(b.w[0].busy_ns - a.w[0].busy_ns));
    cr_assert_leq(b.w[0].busy_ns, b.s.uptime_ns);
    rt_stop();
}

Test(stats, bad_input_and_small_arrays) {
    ASSERT_ERR(async_runtime_stats(NULL, NULL, 0), EINVAL);
    rt_start();
    async_runtime_stats_t s;
    ASSERT_ERR(async_runtime_stats(NULL, NULL, 0), EINVAL);
    ASSERT_ERR(async_runtime_stats(&s, NULL, 1), EINVAL);
    cr_assert_eq(async_runtime_stats(&s, NULL, 0), 0);
    cr_assert_eq(s.workers, (unsigned)async_worker_count());
    /* one entry asked for: the next one is never written, however many workers there are */
    async_worker_stats_t w[2];
    memset(w, 0xA5, sizeof w);
    cr_assert_eq(async_runtime_stats(&s, w, 1), 0);
    cr_assert_neq(w[0].tasks_run, 0xA5A5A5A5A5A5A5A5ull);
    const unsigned char *canary = (const unsigned char *)&w[1];
    for (size_t i = 0; i < sizeof w[1]; i++) cr_assert_eq(canary[i], 0xA5);
    rt_stop();
}

Test(stats, not_running) {
    async_runtime_stats_t s;
    ASSERT_ERR(async_runtime_stats(&s, NULL, 0), ESRCH);
    rt_start();
    cr_assert_eq(async_runtime_stats(&s, NULL, 0), 0);
    rt_stop();
    ASSERT_ERR(async_runtime_stats(&s, NULL, 0), ESRCH);
    /* a new start counts from 0 again */
    rt_start();
    cr_assert_eq(async_runtime_stats(&s, NULL, 0), 0);
    cr_assert_eq(s.spawns, 0);
    rt_stop();
}

/* Readers on a plain thread while tasks spawn and sleep, and a shutdown in the
 * middle: reads either succeed or say ESRCH, never touch freed workers. */
static atomic_bool reading;

static void *reader(void *arg) {
    (void)arg;
    async_worker_stats_t w[WORKERS_MAX];
    while (atomic_load(&reading)) {
        async_runtime_stats_t s;
        if (async_runtime_stats(&s, w, WORKERS_MAX) != 0) CHECK_EQ(errno, ESRCH);
    }
    return NULL;
}

Test(stats, read_while_shutting_down) {
    rt_start();
    atomic_store(&reading, true);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, reader, NULL), 0);
    enum { N = 100 };
    async_future_t *f[N];
    for (int i = 0; i < N; i++) f[i] = async_spawn(nap, NULL);
    cr_assert_eq(async_await_all(f, N, NULL, NULL), 0);
    cr_assert_eq(async_runtime_shutdown(), 0);
    rt_start();
    atomic_store(&reading, false);
    pthread_join(th, NULL);
    rt_stop();
}
