/* Tests of the runtime's life cycle: async_runtime_init (config, environment,
 * bad settings, EBUSY), starting on first use, async_runtime_shutdown with
 * work still pending, restarting, and shutdown from the wrong context. */
#include "helpers.h"

#include <criterion/redirect.h>
#include <sched.h>

TestSuite(runtime, .timeout = 30);

static intptr_t return_arg(void *arg) { return (intptr_t)arg; }

static intptr_t my_worker(void *arg) { return (intptr_t)async_worker_id(); }

/* Each worker 1..n runs a task pinned to it; n + 1 is refused. */
static void check_workers(int n) {
    cr_assert_eq(async_worker_count(), n);
    for (int k = 1; k <= n; k++) ASSERT_VAL(async_await(spawn_on(my_worker, NULL, (unsigned)k)), k);
    ASSERT_ERR(async_await(spawn_on(my_worker, NULL, (unsigned)n + 1)), EINVAL);
}

/* ---- init ------------------------------------------------------------------------- */

Test(runtime, init_default_and_ebusy) {
    cr_assert_eq(async_runtime_init(NULL), 0);
    int n = async_worker_count();
    cr_assert_geq(n, 1);
    if (env_threads()) cr_assert_eq(n, (int)env_threads());
    ASSERT_ERR(async_runtime_init(NULL), EBUSY);
    async_config_t c = {.threads = 2};
    ASSERT_ERR(async_runtime_init(&c), EBUSY);
    cr_assert_eq(async_worker_count(), n, "a refused init changed the runtime");
    cr_assert_eq(async_worker_id(), 0);
    cr_assert_null(async_self());
    rt_stop();
    ASSERT_ERR(async_runtime_shutdown(), EINVAL);
}

Test(runtime, default_threads_are_the_available_cpus) {
    unsetenv("ASYNCSTD_THREADS");
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    cr_assert_eq(async_runtime_init(NULL), 0);
    cr_assert_eq(async_worker_count(), CPU_COUNT(&set));
    rt_stop();
}

Test(runtime, shutdown_when_not_running) {
    ASSERT_ERR(async_runtime_shutdown(), EINVAL);
    checks_ok();
}

Test(runtime, config_threads) {
    async_config_t c = {.threads = 3};
    cr_assert_eq(async_runtime_init(&c), 0);
    check_workers(3);
    rt_stop();
}

Test(runtime, config_wins_over_env) {
    setenv("ASYNCSTD_THREADS", "2", 1);
    async_config_t c = {.threads = 1};
    cr_assert_eq(async_runtime_init(&c), 0);
    check_workers(1);
    rt_stop();
}

Test(runtime, env_threads) {
    setenv("ASYNCSTD_THREADS", "2", 1);
    cr_assert_eq(async_runtime_init(NULL), 0);
    check_workers(2);
    rt_stop();

    /* a zero field in a config takes the environment too */
    setenv("ASYNCSTD_THREADS", "3", 1);
    async_config_t c = {.pool_threads = 8, .pool_reserved = 2};
    cr_assert_eq(async_runtime_init(&c), 0);
    check_workers(3);
    rt_stop();
}

static intptr_t recurse(int depth) __attribute__((noinline));
static intptr_t recurse(int depth) {
    volatile char frame[1024];
    frame[0] = (char)depth;
    if (depth == 0) return 0;
    intptr_t r = recurse(depth - 1);
    return r + 1 + (frame[0] - (char)depth);
}

static intptr_t recurse_task(void *arg) { return recurse((int)(intptr_t)arg); }

Test(runtime, config_default_stack_size) {
    /* ~600 KiB of frames: needs the configured 1 MiB default, not 256 KiB */
    async_config_t c = {.stack_size = 1 << 20};
    cr_assert_eq(async_runtime_init(&c), 0);
    ASSERT_VAL(async_await(async_spawn(recurse_task, (void *)600)), 600);
    rt_stop();
}

Test(runtime, env_default_stack_size) {
    setenv("ASYNCSTD_STACK_SIZE", "1048576", 1);
    cr_assert_eq(async_runtime_init(NULL), 0);
    ASSERT_VAL(async_await(async_spawn(recurse_task, (void *)600)), 600);
    rt_stop();
}

Test(runtime, bad_config_is_einval) {
    async_config_t c = {.threads = 1025};
    ASSERT_ERR(async_runtime_init(&c), EINVAL);
    c = (async_config_t){.pool_threads = 4, .pool_reserved = 4};
    ASSERT_ERR(async_runtime_init(&c), EINVAL);
    c = (async_config_t){.pool_threads = 2, .pool_reserved = 5};
    ASSERT_ERR(async_runtime_init(&c), EINVAL);
    /* a reserve only conflicts with the default pool size when it reaches it */
    c = (async_config_t){.pool_reserved = 64};
    ASSERT_ERR(async_runtime_init(&c), EINVAL);
    /* nothing was started */
    ASSERT_ERR(async_runtime_shutdown(), EINVAL);
    cr_assert_eq(async_runtime_init(NULL), 0);
    ASSERT_VAL(async_await(async_spawn(return_arg, (void *)1)), 1);
    rt_stop();
}

/* ---- malformed environment ------------------------------------------------------- */

static int available_cpus(void) {
    cpu_set_t set;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    return CPU_COUNT(&set);
}

static intptr_t job_value(void *arg) { return (intptr_t)arg; }

/* The runtime starts with the defaults, and works: tasks and pool jobs. */
static void check_runs_with_defaults(void) {
    int r = async_runtime_init(NULL);
    cr_assert_eq(r, 0, "async_runtime_init: %s", ename(errno));
    cr_assert_eq(async_worker_count(), available_cpus());
    ASSERT_VAL(async_await(async_spawn(return_arg, (void *)5)), 5);
    ASSERT_VAL(async_await(async_spawn_blocking(job_value, (void *)6)), 6);
    rt_stop();
}

/* How many times `needle` occurs in what the test wrote to stderr (read once:
 * reading the redirected stream consumes it). */
static int stderr_count(const char *needle) {
    static char buf[8192];
    static bool read_done;
    if (!read_done) {
        fflush(stderr);
        size_t n = fread(buf, 1, sizeof buf - 1, cr_get_redirected_stderr());
        buf[n] = '\0';
        read_done = true;
    }
    int count = 0;
    for (const char *p = buf; (p = strstr(p, needle)) != NULL; p += strlen(needle)) count++;
    return count;
}

/* A bad ASYNCSTD_* value is named on stderr once per process and the default is
 * used, instead of every call failing with EINVAL. */
Test(runtime, malformed_env_is_named_once_and_ignored, .init = cr_redirect_stderr) {
    setenv("ASYNCSTD_THREADS", "abc", 1);
    setenv("ASYNCSTD_POOL_THREADS", "0", 1);
    setenv("ASYNCSTD_POOL_RESERVED", "-1", 1);
    setenv("ASYNCSTD_STACK_SIZE", "99999999999999999999999", 1);
    check_runs_with_defaults();
    check_runs_with_defaults();                                     /* again: no second message */
    ASSERT_VAL(async_await(async_spawn(return_arg, (void *)7)), 7); /* started on first use */
    rt_stop();
    cr_assert_eq(stderr_count("ASYNCSTD_THREADS=\"abc\""), 1);
    cr_assert_eq(stderr_count("ASYNCSTD_POOL_THREADS=\"0\""), 1);
    cr_assert_eq(stderr_count("ASYNCSTD_POOL_RESERVED=\"-1\""), 1);
    cr_assert_eq(stderr_count("ASYNCSTD_STACK_SIZE=\"9999"), 1);
}

Test(runtime, malformed_env_threads_values) {
    const char *bad[] = {"0",
                         "-1",
                         " 2",
                         "+2",
                         "2x",
                         "1025",
                         "2k",
                         "18446744073709551616",
                         "99999999999999999999999999"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        setenv("ASYNCSTD_THREADS", bad[k], 1);
        check_runs_with_defaults();
    }
    setenv("ASYNCSTD_THREADS", "", 1); /* empty is unset */
    check_runs_with_defaults();
}

Test(runtime, malformed_env_sizes) {
    unsetenv("ASYNCSTD_THREADS");
    const char *bad[] = {"1", "16383", "2g", "1k1", "k", "1048577k", "17592186044416m"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        setenv("ASYNCSTD_STACK_SIZE", bad[k], 1);
        check_runs_with_defaults();
    }
    unsetenv("ASYNCSTD_STACK_SIZE");
    /* a reserve that does not fit the pool is the bad one: the pool size stays */
    setenv("ASYNCSTD_POOL_THREADS", "2", 1);
    setenv("ASYNCSTD_POOL_RESERVED", "2", 1);
    check_runs_with_defaults();
    /* a pool size that does not fit the reserve the caller chose is ignored */
    async_config_t c = {.pool_reserved = 8};
    cr_assert_eq(async_runtime_init(&c), 0, "%s", ename(errno));
    ASSERT_VAL(async_await(async_spawn_blocking(job_value, (void *)8)), 8);
    rt_stop();
}

Test(runtime, env_sizes_with_suffixes) {
    setenv("ASYNCSTD_STACK_SIZE", "1m", 1);
    cr_assert_eq(async_runtime_init(NULL), 0);
    ASSERT_VAL(async_await(async_spawn(recurse_task, (void *)600)), 600);
    rt_stop();
    setenv("ASYNCSTD_STACK_SIZE", "1024K", 1);
    cr_assert_eq(async_runtime_init(NULL), 0);
    ASSERT_VAL(async_await(async_spawn(recurse_task, (void *)600)), 600);
    rt_stop();
}

/* ---- start on first use --------------------------------------------------------------- */

Test(runtime, starts_on_first_use) {
    ASSERT_VAL(async_await(async_spawn(return_arg, (void *)4)), 4);
    int n = async_worker_count();
    cr_assert_geq(n, 1);
    if (env_threads()) cr_assert_eq(n, (int)env_threads());
    ASSERT_ERR(async_runtime_init(NULL), EBUSY);
    rt_stop();
}

Test(runtime, worker_count_starts_it) {
    cr_assert_geq(async_worker_count(), 1);
    ASSERT_ERR(async_runtime_init(NULL), EBUSY);
    rt_stop();
}

Test(runtime, sleep_starts_it) {
    ASSERT_VAL(async_await(async_usleep(1000)), 0);
    rt_stop();
}

/* ---- restart ----------------------------------------------------------------------------- */

static intptr_t sleepy_value(void *arg) {
    if (async_await(async_usleep(2000)) != 0) return -1;
    return (intptr_t)arg;
}

Test(runtime, init_again_after_shutdown) {
    for (int round = 0; round < 4; round++) {
        async_config_t c = {.threads = (unsigned)(round % 3) + 1};
        cr_assert_eq(async_runtime_init(&c), 0, "round %d: %s", round, ename(errno));
        cr_assert_eq(async_worker_count(), (int)c.threads);
        async_future_t *fs[20];
        intptr_t res[20];
        for (intptr_t i = 0; i < 20; i++) fs[i] = async_spawn(sleepy_value, (void *)(i + round));
        cr_assert_eq(async_await_all(fs, 20, res, NULL), 0);
        for (intptr_t i = 0; i < 20; i++) cr_assert_eq(res[i], i + round);
        ASSERT_VAL(async_await(async_spawn_blocking(return_arg, (void *)7)), 7);
        cr_assert_eq(async_runtime_shutdown(), 0, "round %d: %s", round, ename(errno));
    }
    /* and once more on first use */
    ASSERT_VAL(async_await(async_spawn(sleepy_value, (void *)3)), 3);
    rt_stop();
}

/* ---- shutdown with work pending ----------------------------------------------------------- */

struct victim {
    async_future_t *user; /* NULL: sleep instead */
    atomic_int started, ended;
    intptr_t r;
    int e;
};

static intptr_t victim_task(void *arg) {
    struct victim *v = arg;
    atomic_store(&v->started, 1);
    errno = 0;
    v->r = v->user ? async_await(v->user) : async_await(async_sleep(60));
    v->e = errno;
    atomic_store(&v->ended, 1);
    errno = v->e;
    return v->r;
}

static intptr_t any_victim_task(void *arg) {
    struct victim *v = arg;
    async_future_t *fs[2] = {v->user, async_sleep(60)};
    atomic_store(&v->started, 1);
    errno = 0;
    v->r = async_await_any(fs, 2);
    v->e = errno;
    async_future_free(fs[0]);
    async_future_free(fs[1]);
    atomic_store(&v->ended, 1);
    errno = v->e;
    return -1;
}

static intptr_t yield_loop_task(void *arg) {
    struct victim *v = arg;
    atomic_store(&v->started, 1);
    while (async_yield() == 0) {
    }
    v->r = -1;
    v->e = errno;
    atomic_store(&v->ended, 1);
    errno = v->e;
    return -1;
}

struct then_rec {
    atomic_int calls;
    intptr_t value;
    int err;
};

static void then_cb(intptr_t value, int err, void *arg) {
    struct then_rec *r = arg;
    r->value = value;
    r->err = err;
    atomic_fetch_add(&r->calls, 1);
}

struct blocked_main {
    async_future_t *f;
    intptr_t r;
    int e;
};

static void *block_on_sleep(void *arg) {
    struct blocked_main *b = arg;
    errno = 0;
    b->r = async_await(b->f);
    b->e = errno;
    return NULL;
}

Test(runtime, shutdown_with_pending_work) {
    enum { S = 10, U = 10 };
    rt_start();
    struct victim sleepers[S], users[U], any = {.user = async_future_new()}, yl = {0};
    async_future_t *st[S], *ut[U];
    for (int i = 0; i < S; i++) {
        sleepers[i] = (struct victim){0};
        st[i] = async_spawn(victim_task, &sleepers[i]);
    }
    for (int i = 0; i < U; i++) {
        users[i] = (struct victim){.user = async_future_new()};
        ut[i] = async_spawn(victim_task, &users[i]);
    }
    async_future_t *at = async_spawn(any_victim_task, &any);
    async_future_t *yt = async_spawn(yield_loop_task, &yl);
    static struct victim detached[20];
    for (int i = 0; i < 20; i++) async_future_free(async_spawn(victim_task, &detached[i]));
    async_future_t *timers[3] = {async_sleep(60), async_usleep(30 * 1000 * 1000), NULL};
    struct timespec req = {60, 0}, rem = {0, 0};
    timers[2] = async_nanosleep(&req, &rem);
    struct then_rec cb = {0};
    cr_assert_eq(async_future_then(async_sleep(60), then_cb, &cb), 0);
    async_future_t *mine = async_future_new(); /* never settled by anyone */
    struct blocked_main bm = {.f = async_sleep(60)};
    pthread_t th = thread_start(block_on_sleep, &bm);

    bool started = true;
    for (int i = 0; i < S; i++)
        started = started && WAIT_UNTIL(atomic_load(&sleepers[i].started), 5000);
    for (int i = 0; i < U; i++)
        started = started && WAIT_UNTIL(atomic_load(&users[i].started), 5000);
    started = started && WAIT_UNTIL(atomic_load(&any.started) && atomic_load(&yl.started), 5000);
    cr_assert(started, "the tasks did not start");
    sleep_ms(30);

    double t0 = now_ms();
    cr_assert_eq(async_runtime_shutdown(), 0, "shutdown: %s", ename(errno));
    double dt = now_ms() - t0;
    cr_assert_lt(dt, 10000, "shutdown took %.0f ms", dt);
    pthread_join(th, NULL);

    /* every task saw its await fail with ECANCELED and ended */
    for (int i = 0; i < S; i++) {
        cr_assert_eq(atomic_load(&sleepers[i].ended), 1);
        cr_assert(sleepers[i].r == -1 && sleepers[i].e == ECANCELED, "sleeper %d: %jd/%s", i,
                  (intmax_t)sleepers[i].r, ename(sleepers[i].e));
        cr_assert_eq(async_future_settled(st[i]), 1);
        ASSERT_ERR(async_await(st[i]), ECANCELED);
    }
    for (int i = 0; i < U; i++) {
        cr_assert_eq(atomic_load(&users[i].ended), 1);
        cr_assert(users[i].r == -1 && users[i].e == ECANCELED, "user waiter %d: %jd/%s", i,
                  (intmax_t)users[i].r, ename(users[i].e));
        ASSERT_ERR(async_await(ut[i]), ECANCELED);
        /* the user futures were cancelled with their tasks' awaits */
        ASSERT_ERR(async_future_resolve(users[i].user, 1), ECANCELED);
    }
    cr_assert(any.ended && any.r == -1 && any.e == ECANCELED, "await_any: %jd/%s", (intmax_t)any.r,
              ename(any.e));
    ASSERT_ERR(async_await(at), ECANCELED);
    async_future_resolve(any.user, 1);
    cr_assert(yl.ended && yl.e == ECANCELED, "yield loop: %s", ename(yl.e));
    ASSERT_ERR(async_await(yt), ECANCELED);

    /* futures held here settled with ECANCELED and can still be awaited */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(async_future_settled(timers[i]), 1, "timer %d still pending", i);
        ASSERT_ERR(async_await(timers[i]), ECANCELED);
    }
    cr_assert_gt(rem.tv_sec, 30, "nanosleep's rem after shutdown: %ld s", (long)rem.tv_sec);
    cr_assert_eq(atomic_load(&cb.calls), 1, "a then-callback on a timer must run at shutdown");
    cr_assert(cb.value == -1 && cb.err == ECANCELED);
    cr_assert(bm.r == -1 && bm.e == ECANCELED, "a thread blocked on a timer got %jd/%s",
              (intmax_t)bm.r, ename(bm.e));
    /* a user future nobody settled is still ours to release */
    async_future_free(mine);
    cr_assert_eq(async_future_resolve(mine, 0), 0);
    checks_ok();
}

static intptr_t sleeper_in_group(void *arg) { return async_await(async_sleep(60)); }

static intptr_t waits_for_group(void *arg) { return async_await(async_group_wait(arg)); }

Test(runtime, shutdown_with_a_waiting_group) {
    rt_start();
    async_group_t *g = async_group_new();
    for (int i = 0; i < 4; i++) cr_assert_eq(async_group_spawn(g, sleeper_in_group, NULL, NULL), 0);
    async_future_t *w = async_spawn(waits_for_group, g);
    sleep_ms(30);
    double t0 = now_ms();
    cr_assert_eq(async_runtime_shutdown(), 0);
    cr_assert_lt(now_ms() - t0, 10000);
    ASSERT_ERR(async_await(w), ECANCELED);
    async_group_free(g);
    checks_ok();
}

Test(runtime, shutdown_right_after_spawns) {
    /* tasks that have not started yet when shutdown begins */
    rt_start();
    async_future_t *fs[100];
    for (int i = 0; i < 100; i++) fs[i] = async_spawn(sleepy_value, (void *)1);
    cr_assert_eq(async_runtime_shutdown(), 0);
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(async_future_settled(fs[i]), 1);
        errno = 0;
        intptr_t r = async_await(fs[i]);
        cr_assert(r == 1 || (r == -1 && errno == ECANCELED), "task %d: %jd/%s", i, (intmax_t)r,
                  ename(errno));
    }
    checks_ok();
}

/* ---- shutdown from the wrong place ---------------------------------------------------------- */

static intptr_t shutdown_from_task(void *arg) {
    errno = 0;
    int r = async_runtime_shutdown();
    CHECK(r == -1 && errno == EPERM);
    errno = 0;
    r = async_runtime_init(NULL);
    CHECK(r == -1 && (errno == EBUSY || errno == EPERM));
    return 0;
}

Test(runtime, shutdown_from_a_task_is_eperm) {
    rt_start();
    ASSERT_VAL(async_await(async_spawn(shutdown_from_task, NULL)), 0);
    /* the runtime still works */
    ASSERT_VAL(async_await(async_spawn(sleepy_value, (void *)2)), 2);
    rt_stop();
}

static intptr_t shutdown_from_pool(void *arg) {
    errno = 0;
    int r = async_runtime_shutdown();
    return r == -1 && errno == EPERM ? 0 : (r == 0 ? 1 : errno);
}

Test(runtime, shutdown_from_a_pool_thread_is_eperm) {
    rt_start();
    ASSERT_VAL(async_await(async_spawn_blocking(shutdown_from_pool, NULL)), 0);
    ASSERT_VAL(async_await(async_spawn(sleepy_value, (void *)2)), 2);
    rt_stop();
}

static void *shutdown_thread(void *arg) {
    errno = 0;
    *(int *)arg = async_runtime_shutdown() == 0 ? 0 : errno;
    return NULL;
}

Test(runtime, shutdown_from_another_thread) {
    rt_start();
    ASSERT_VAL(async_await(async_spawn(sleepy_value, (void *)2)), 2);
    int err = -1;
    pthread_t th = thread_start(shutdown_thread, &err);
    pthread_join(th, NULL);
    cr_assert_eq(err, 0, "shutdown from a plain thread: %s", ename(err));
    ASSERT_ERR(async_runtime_shutdown(), EINVAL);
    checks_ok();
}
