/* Tests of the blocking-offload pool (async_spawn_blocking): results and
 * errno, concurrency, the reserved threads, cancelling queued jobs and bad input. */
#include "helpers.h"

#include <sys/resource.h>

TestSuite(pool, .timeout = 30);

/* Most tests take the environment's settings; a few set the pool's size. */
static void pool_start(unsigned pool_threads, unsigned reserved) {
    async_config_t c = {.pool_threads = pool_threads, .pool_reserved = reserved};
    int r = async_runtime_init(&c);
    cr_assert_eq(r, 0, "async_runtime_init(pool %u/%u): %s", pool_threads, reserved, ename(errno));
}

static intptr_t job_value(void *arg) { return (intptr_t)arg; }

static intptr_t job_fail(void *arg) {
    errno = (int)(intptr_t)arg;
    return -1;
}

struct where {
    unsigned worker;
    async_task_t *self;
    pthread_t thread;
};

static intptr_t job_where(void *arg) {
    struct where *w = arg;
    w->worker = async_worker_id();
    w->self = async_self();
    w->thread = pthread_self();
    return 0;
}

Test(pool, value_and_errno, .init = rt_start) {
    ASSERT_VAL(async_await(async_spawn_blocking(job_value, (void *)42)), 42);
    ASSERT_VAL(async_await(async_spawn_blocking(job_value, (void *)-3)), -3);
    ASSERT_ERR(async_await(async_spawn_blocking(job_fail, (void *)EIO)), EIO);
    ASSERT_ERR(async_await(async_spawn_blocking(job_fail, (void *)ENOTCONN)), ENOTCONN);
    rt_stop();
}

Test(pool, runs_on_a_pool_thread, .init = rt_start) {
    struct where w = {.worker = 99, .self = (async_task_t *)1};
    ASSERT_VAL(async_await(async_spawn_blocking(job_where, &w)), 0);
    cr_assert_eq(w.worker, 0, "a pool thread is not a worker");
    cr_assert_null(w.self, "a pool job is not a task");
    cr_assert(!pthread_equal(w.thread, pthread_self()));
    rt_stop();
}

static intptr_t await_jobs_in_task(void *arg) {
    errno = 0;
    intptr_t a = async_await(async_spawn_blocking(job_value, (void *)5));
    intptr_t b = async_await(async_spawn_blocking(job_fail, (void *)EACCES));
    CHECK(b == -1 && errno == EACCES);
    return a;
}

Test(pool, awaited_from_a_task, .init = rt_start) {
    ASSERT_VAL(async_await(async_spawn(await_jobs_in_task, NULL)), 5);
    rt_stop();
}

Test(pool, null_fn_is_einval, .init = rt_start) {
    async_future_t *f = async_spawn_blocking(NULL, NULL);
    cr_assert_not_null(f, "EINVAL comes as a failed future");
    ASSERT_ERR(async_await(f), EINVAL);
    rt_stop();
}

/* ---- concurrency ------------------------------------------------------------------- */

struct crowd {
    atomic_int running, peak, total;
    int want;
    atomic_int release;
};

/* Runs until `want` jobs run at once (or it is released, or 10 s pass). */
static intptr_t crowd_job(void *arg) {
    struct crowd *c = arg;
    int now = atomic_fetch_add(&c->running, 1) + 1;
    int peak = atomic_load(&c->peak);
    while (now > peak && !atomic_compare_exchange_weak(&c->peak, &peak, now)) {
    }
    double deadline = now_ms() + 10000;
    while (atomic_load(&c->running) < c->want && !atomic_load(&c->release) && now_ms() < deadline)
        sleep_ms(1);
    while (!atomic_load(&c->release) && now_ms() < deadline) sleep_ms(1);
    atomic_fetch_sub(&c->running, 1);
    atomic_fetch_add(&c->total, 1);
    return 1;
}

Test(pool, jobs_run_concurrently, .init = rt_start) {
    enum { N = 16 }; /* well under the default 64 - 4 user threads */
    struct crowd c = {.want = N};
    async_future_t *fs[N];
    for (int i = 0; i < N; i++) fs[i] = async_spawn_blocking(crowd_job, &c);
    bool all = WAIT_UNTIL(atomic_load(&c.running) == N, 10000);
    atomic_store(&c.release, 1);
    intptr_t res[N];
    ASSERT_VAL(async_await_all(fs, N, res, NULL), 0);
    cr_assert(all, "only %d of %d jobs ran at once", atomic_load(&c.peak), N);
    cr_assert_eq(atomic_load(&c.total), N);
    rt_stop();
}

static intptr_t square(void *arg) {
    intptr_t x = (intptr_t)arg;
    return x * x;
}

Test(pool, many_jobs, .init = rt_start) {
    enum { N = 2000 };
    static async_future_t *fs[N];
    static intptr_t res[N];
    for (intptr_t i = 0; i < N; i++) fs[i] = async_spawn_blocking(square, (void *)i);
    ASSERT_VAL(async_await_all(fs, N, res, NULL), 0);
    for (intptr_t i = 0; i < N; i++) cr_assert_eq(res[i], i * i);
    rt_stop();
}

static intptr_t spawn_jobs_from_task(void *arg) {
    intptr_t base = (intptr_t)arg;
    async_future_t *fs[20];
    intptr_t res[20];
    for (intptr_t i = 0; i < 20; i++) fs[i] = async_spawn_blocking(square, (void *)(base + i));
    if (async_await_all(fs, 20, res, NULL) != 0) return -1;
    intptr_t sum = 0;
    for (int i = 0; i < 20; i++) sum += res[i];
    return sum;
}

Test(pool, jobs_from_many_tasks, .init = rt_start) {
    enum { T = 50 };
    async_future_t *ts[T];
    intptr_t res[T];
    for (intptr_t t = 0; t < T; t++) ts[t] = async_spawn(spawn_jobs_from_task, (void *)(t * 20));
    ASSERT_VAL(async_await_all(ts, T, res, NULL), 0);
    for (intptr_t t = 0; t < T; t++) {
        intptr_t want = 0;
        for (intptr_t i = t * 20; i < t * 20 + 20; i++) want += i * i;
        cr_assert_eq(res[t], want);
    }
    rt_stop();
}

struct flag_wait {
    atomic_int flag;
    int saw;
};

static intptr_t job_waits_for_flag(void *arg) {
    struct flag_wait *f = arg;
    double deadline = now_ms() + 5000;
    while (!atomic_load(&f->flag) && now_ms() < deadline) sleep_ms(1);
    f->saw = atomic_load(&f->flag);
    return 0;
}

static intptr_t awaits_job(void *arg) {
    return async_await(async_spawn_blocking(job_waits_for_flag, arg));
}

static intptr_t sets_flag_later(void *arg) {
    struct flag_wait *f = arg;
    if (async_yield() != 0 || async_await(async_usleep(20000)) != 0) return -1;
    atomic_store(&f->flag, 1);
    return 0;
}

Test(pool, awaiting_a_job_does_not_block_the_worker, .init = rt_start) {
    /* Both tasks on worker 1: the second can only run if the first's await
     * of a blocking job suspended the task, not the worker. */
    struct flag_wait f = {0};
    async_future_t *a = spawn_on(awaits_job, &f, 1);
    async_future_t *b = spawn_on(sets_flag_later, &f, 1);
    ASSERT_VAL(async_await(a), 0);
    ASSERT_VAL(async_await(b), 0);
    cr_assert_eq(f.saw, 1);
    rt_stop();
}

/* ---- the reserved threads ------------------------------------------------------------- */

Test(pool, user_jobs_leave_the_reserved_threads) {
    /* 3 threads, 1 reserved for files: at most 2 user jobs at once. */
    pool_start(3, 1);
    struct crowd c = {.want = 3};
    async_future_t *fs[3];
    for (int i = 0; i < 3; i++) fs[i] = async_spawn_blocking(crowd_job, &c);
    cr_assert(WAIT_UNTIL(atomic_load(&c.running) == 2, 10000));
    sleep_ms(200);
    int peak = atomic_load(&c.peak);
    atomic_store(&c.release, 1);
    ASSERT_VAL(async_await_all(fs, 3, NULL, NULL), 0);
    cr_assert_eq(peak, 2, "%d user jobs ran at once on a pool of 3 with 1 reserved", peak);
    cr_assert_eq(atomic_load(&c.total), 3);
    rt_stop();
}

/* ---- cancellation ---------------------------------------------------------------------- */

static atomic_int queued_ran;

static intptr_t mark_job(void *arg) {
    atomic_store(&queued_ran, 1);
    return 5;
}

Test(pool, cancel_queued_job) {
    pool_start(3, 1);                /* 2 user threads */
    struct crowd c = {.want = 1000}; /* hold until released */
    async_future_t *busy[2] = {async_spawn_blocking(crowd_job, &c),
                               async_spawn_blocking(crowd_job, &c)};
    cr_assert(WAIT_UNTIL(atomic_load(&c.running) == 2, 10000), "the pool did not fill up");
    async_future_t *queued = async_spawn_blocking(mark_job, NULL);
    sleep_ms(20);
    cr_assert_eq(async_future_settled(queued), 0);
    async_cancel(queued);
    /* the queued job is removed at once, while the pool is still full */
    cr_assert(WAIT_UNTIL(async_future_settled(queued), 5000),
              "a cancelled queued job must settle without waiting for a thread");
    ASSERT_ERR(async_await(queued), ECANCELED);
    atomic_store(&c.release, 1);
    ASSERT_VAL(async_await_all(busy, 2, NULL, NULL), 0);
    sleep_ms(20);
    cr_assert_eq(atomic_load(&queued_ran), 0, "a cancelled queued job ran");
    rt_stop();
}

static intptr_t await_queued(void *arg) {
    return async_await(async_spawn_blocking(mark_job, NULL));
}

Test(pool, cancel_task_awaiting_a_queued_job) {
    pool_start(3, 1);
    struct crowd c = {.want = 1000};
    async_future_t *busy[2] = {async_spawn_blocking(crowd_job, &c),
                               async_spawn_blocking(crowd_job, &c)};
    cr_assert(WAIT_UNTIL(atomic_load(&c.running) == 2, 10000));
    async_future_t *t = async_spawn(await_queued, NULL);
    sleep_ms(30);
    async_cancel(t);
    cr_assert(WAIT_UNTIL(async_future_settled(t), 5000),
              "the task must not wait for its queued job to get a thread");
    ASSERT_ERR(async_await(t), ECANCELED);
    atomic_store(&c.release, 1);
    ASSERT_VAL(async_await_all(busy, 2, NULL, NULL), 0);
    cr_assert_eq(atomic_load(&queued_ran), 0);
    rt_stop();
}

struct slow {
    atomic_int started, done;
};

static intptr_t slow_job(void *arg) {
    struct slow *s = arg;
    atomic_store(&s->started, 1);
    sleep_ms(100);
    atomic_store(&s->done, 1);
    return 8;
}

Test(pool, cancel_started_job_runs_to_the_end, .init = rt_start) {
    struct slow s = {0};
    async_future_t *f = async_spawn_blocking(slow_job, &s);
    cr_assert(WAIT_UNTIL(atomic_load(&s.started), 5000));
    async_cancel(f);
    errno = 0;
    intptr_t r = async_await(f);
    int e = errno;
    cr_assert_eq(atomic_load(&s.done), 1, "the await returned while the job still ran");
    cr_assert(r == 8 || (r == -1 && e == ECANCELED), "got %jd/%s", (intmax_t)r, ename(e));
    rt_stop();
}

Test(pool, detached_jobs_finish, .init = rt_start) {
    struct slow s = {0};
    async_future_free(async_spawn_blocking(slow_job, &s));
    cr_assert(WAIT_UNTIL(atomic_load(&s.done), 5000), "a detached job must still run");
    rt_stop();
}

Test(pool, shutdown_waits_for_running_jobs, .init = rt_start) {
    struct slow s = {0};
    async_future_t *f = async_spawn_blocking(slow_job, &s);
    cr_assert(WAIT_UNTIL(atomic_load(&s.started), 5000));
    cr_assert_eq(async_runtime_shutdown(), 0);
    cr_assert_eq(atomic_load(&s.done), 1, "shutdown must wait for running jobs");
    cr_assert_eq(async_future_settled(f), 1);
    errno = 0;
    intptr_t r = async_await(f);
    cr_assert(r == 8 || (r == -1 && errno == ECANCELED));
    checks_ok();
}

static void *release_later(void *arg) {
    sleep_ms(300);
    atomic_store(&((struct crowd *)arg)->release, 1);
    return NULL;
}

Test(pool, shutdown_cancels_queued_jobs) {
    pool_start(3, 1);
    struct crowd c = {.want = 1000};
    async_future_t *busy[2] = {async_spawn_blocking(crowd_job, &c),
                               async_spawn_blocking(crowd_job, &c)};
    cr_assert(WAIT_UNTIL(atomic_load(&c.running) == 2, 10000));
    async_future_t *queued = async_spawn_blocking(mark_job, NULL);
    /* the running jobs end 300 ms into the shutdown, which waits for them */
    pthread_t th = thread_start(release_later, &c);
    double t0 = now_ms();
    cr_assert_eq(async_runtime_shutdown(), 0);
    double dt = now_ms() - t0;
    pthread_join(th, NULL);
    cr_assert(dt >= 250 && dt < 8000, "shutdown took %.1f ms", dt);
    cr_assert_eq(atomic_load(&c.total), 2, "shutdown returned before the running jobs ended");
    cr_assert_eq(async_future_settled(queued), 1);
    ASSERT_ERR(async_await(queued), ECANCELED);
    cr_assert_eq(atomic_load(&queued_ran), 0, "a queued job ran after shutdown began");
    ASSERT_VAL(async_await_all(busy, 2, NULL, NULL), 0);
    checks_ok();
}

static intptr_t resolve_arg_task(void *arg) { return async_future_resolve(arg, 66) == 0 ? 0 : -1; }

struct pool_cb {
    async_future_t *done;
    unsigned worker;
    intptr_t value;
};

static void spawn_from_pool_cb(intptr_t value, int err, void *arg) {
    struct pool_cb *c = arg;
    c->worker = async_worker_id();
    c->value = value;
    async_future_free(async_spawn(resolve_arg_task, c->done)); /* callbacks may spawn */
}

Test(pool, then_callback_on_a_job_may_spawn, .init = rt_start) {
    struct pool_cb c = {.done = async_future_new(), .worker = 99};
    async_future_t *done = c.done;
    cr_assert_eq(async_future_then(async_spawn_blocking(square, (void *)7), spawn_from_pool_cb, &c),
                 0);
    ASSERT_VAL(async_await(done), 66);
    cr_assert_eq(c.value, 49);
    rt_stop();
}

/* ---- no thread can be started -------------------------------------------------- */

/* Makes pthread_create fail with a real limit: RLIMIT_NPROC, which binds only
 * a user without CAP_SYS_RESOURCE, so root takes another real uid meanwhile
 * (the saved uid 0 gives root back afterwards). */
struct thread_cap {
    uid_t ruid;
    struct rlimit old;
};

static void *nothing(void *arg) { return arg; }

static void threads_capped(struct thread_cap *c) {
    c->ruid = getuid();
    cr_assert_eq(getrlimit(RLIMIT_NPROC, &c->old), 0);
    if (c->ruid == 0) cr_assert_eq(setresuid(65534, 65534, 0), 0, "setresuid: %s", ename(errno));
    struct rlimit cap = {1, c->old.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_NPROC, &cap), 0, "setrlimit: %s", ename(errno));
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) == 0) {
        pthread_join(t, NULL);
        cr_skip_test("RLIMIT_NPROC does not bind here: pthread_create still works");
    }
}

static void threads_uncapped(struct thread_cap *c) {
    cr_assert_eq(setrlimit(RLIMIT_NPROC, &c->old), 0, "setrlimit: %s", ename(errno));
    if (c->ruid == 0) cr_assert_eq(setresuid(0, 0, 0), 0, "setresuid: %s", ename(errno));
}

static intptr_t spawn_blocking_in_task(void *arg) {
    return async_await(async_spawn_blocking(job_value, arg));
}

/* With no pool thread yet and none able to start, a job fails with EAGAIN at
 * once instead of waiting in the queue for ever; once threads can start again,
 * jobs run. */
Test(pool, no_thread_can_start_is_eagain, .init = rt_start) {
    struct thread_cap c;
    threads_capped(&c);
    double t0 = now_ms();
    async_future_t *f = async_spawn_blocking(job_value, (void *)1);
    int settled = async_future_settled(f);
    errno = 0;
    intptr_t r = async_await(f);
    int e = errno;
    /* and from a task, whose worker thread submits the job */
    errno = 0;
    intptr_t rt = async_await(async_spawn(spawn_blocking_in_task, (void *)2));
    int et = errno;
    threads_uncapped(&c);
    cr_assert(r == -1 && e == EAGAIN, "spawn_blocking: %jd/%s", (intmax_t)r, ename(e));
    cr_assert_eq(settled, 1, "the job was queued instead of failed");
    cr_assert(rt == -1 && et == EAGAIN, "spawn_blocking in a task: %jd/%s", (intmax_t)rt,
              ename(et));
    cr_assert_lt(now_ms() - t0, 5000);
    ASSERT_VAL(async_await(async_spawn_blocking(job_value, (void *)42)), 42);
    ASSERT_VAL(async_await(async_spawn(spawn_blocking_in_task, (void *)43)), 43);
    rt_stop();
}
