/* Tests of tasks (task.h): spawning and joining, options, detaching,
 * cooperative cancellation at every kind of await, yielding, sleeping,
 * per-task errno, stack depth, and 100,000 live tasks. */
#include "helpers.h"

#include <limits.h>

TestSuite(task, .init = rt_start, .timeout = 120);

static intptr_t return_arg(void *arg) { return (intptr_t)arg; }

/* ---- spawn and join ------------------------------------------------------------ */

static intptr_t add_one(void *arg) { return *(int *)arg + 1; }

Test(task, spawn_join_value) {
    ASSERT_VAL(async_await(async_spawn(return_arg, (void *)42)), 42);
    int x = 9;
    ASSERT_VAL(async_await(async_spawn(add_one, &x)), 10);
    ASSERT_VAL(async_await(async_spawn(return_arg, (void *)0)), 0);
    /* Only -1 is an error: other negative values are values. */
    ASSERT_VAL(async_await(async_spawn(return_arg, (void *)-7)), -7);
    ASSERT_VAL(async_await(async_spawn(return_arg, (void *)(intptr_t)-ECANCELED)), -ECANCELED);
    ASSERT_VAL(async_await(async_spawn(return_arg, (void *)INTPTR_MAX)), INTPTR_MAX);
    rt_stop();
}

static intptr_t fail_with(void *arg) {
    errno = (int)(intptr_t)arg;
    return -1;
}

static intptr_t fail_through_await(void *arg) {
    async_future_t *f = async_future_new();
    async_future_reject(f, EPROTO);
    return async_await(f); /* -1 with errno EPROTO */
}

Test(task, spawn_errno_propagates) {
    ASSERT_ERR(async_await(async_spawn(fail_with, (void *)EXDEV)), EXDEV);
    ASSERT_ERR(async_await(async_spawn(fail_with, (void *)ENOTSUP)), ENOTSUP);
    ASSERT_ERR(async_await(async_spawn(fail_through_await, NULL)), EPROTO);
    rt_stop();
}

static intptr_t join_in_task(void *arg) {
    errno = 0;
    intptr_t v = async_await(async_spawn(fail_with, (void *)ENOLINK));
    CHECK(v == -1 && errno == ENOLINK);
    return async_await(async_spawn(return_arg, arg));
}

Test(task, spawn_and_join_inside_task) {
    ASSERT_VAL(async_await(async_spawn(join_in_task, (void *)5)), 5);
    rt_stop();
}

static intptr_t fib(void *arg) {
    intptr_t n = (intptr_t)arg;
    if (n < 2) return n;
    async_future_t *a = async_spawn(fib, (void *)(n - 1));
    async_future_t *b = async_spawn(fib, (void *)(n - 2));
    intptr_t x = async_await(a), y = async_await(b);
    if (x < 0 || y < 0) return -1;
    return x + y;
}

Test(task, recursive_spawn_fib) {
    ASSERT_VAL(async_await(async_spawn(fib, (void *)16)), 987); /* ~3,200 tasks */
    rt_stop();
}

/* A task that awaits its own future would wait for ever (it settles when the
 * task ends): like pthread_join(pthread_self()), EDEADLK, and nothing is
 * consumed: the spawner still joins it. */
static _Atomic(async_future_t *) own_future;

static intptr_t await_own_future(void *arg) {
    (void)arg;
    CHECK(TASK_WAIT_UNTIL(atomic_load(&own_future) != NULL, 10000));
    async_future_t *self = atomic_load(&own_future);
    CHECK_ERR(async_await(self), EDEADLK);
    errno = 0;
    CHECK(async_await_ptr(self) == NULL && errno == EDEADLK);
    CHECK_ERR(async_await_timeout(self, 10), EDEADLK);
    CHECK_ERR(async_await_timeout(self, -1), EDEADLK);
    async_future_t *both[2] = {async_sleep(60), self};
    CHECK_ERR(async_await_any(both, 2), EDEADLK);
    async_future_free(both[0]);
    CHECK_EQ(async_future_settled(self), 0);
    return 77;
}

Test(task, awaiting_its_own_future_is_edeadlk) {
    async_future_t *f = async_spawn(await_own_future, NULL);
    cr_assert_not_null(f);
    atomic_store(&own_future, f);
    ASSERT_VAL(async_await(f), 77);
    rt_stop();
}

Test(task, spawn_null_fn_is_einval) {
    async_future_t *f = async_spawn(NULL, NULL);
    cr_assert_not_null(f, "a NULL fn gives a failed future, not NULL");
    cr_assert_eq(async_future_settled(f), 1);
    ASSERT_ERR(async_await(f), EINVAL);

    async_spawn_opts_t o = {0};
    f = async_spawn_opts(NULL, NULL, &o);
    cr_assert_not_null(f);
    ASSERT_ERR(async_await(f), EINVAL);
    rt_stop();
}

/* ---- options --------------------------------------------------------------------- */

struct name_probe {
    async_future_t *gate;
    char name[64];
    char via_self[64];
    bool null_name;
};

static intptr_t name_task(void *arg) {
    struct name_probe *p = arg;
    if (p->gate) (void)async_await(p->gate);
    const char *n = async_task_name(NULL);
    const char *m = async_task_name(async_self());
    p->null_name = n == NULL || m == NULL;
    snprintf(p->name, sizeof p->name, "%s", n ? n : "(null)");
    snprintf(p->via_self, sizeof p->via_self, "%s", m ? m : "(null)");
    return 0;
}

Test(task, spawn_opts_name) {
    struct name_probe p = {0};
    async_spawn_opts_t o = {.name = "fetcher-3"};
    ASSERT_VAL(async_await(async_spawn_opts(name_task, &p, &o)), 0);
    cr_assert(!p.null_name);
    cr_assert_str_eq(p.name, "fetcher-3");
    cr_assert_str_eq(p.via_self, "fetcher-3");

    /* Long names keep their first 15 bytes; the caller's buffer is copied. */
    char buf[64] = "abcdefghijklmnopqrstuvwxyz";
    struct name_probe q = {.gate = async_future_new()};
    async_future_t *gate = q.gate;
    o.name = buf;
    async_future_t *t = async_spawn_opts(name_task, &q, &o);
    memset(buf, 'X', sizeof buf - 1);
    async_future_resolve(gate, 0);
    ASSERT_VAL(async_await(t), 0);
    cr_assert_str_eq(q.name, "abcdefghijklmno");

    /* Unnamed tasks have the empty name. */
    struct name_probe u = {0};
    ASSERT_VAL(async_await(async_spawn(name_task, &u)), 0);
    cr_assert(!u.null_name);
    cr_assert_str_eq(u.name, "");
    o.name = NULL;
    ASSERT_VAL(async_await(async_spawn_opts(name_task, &u, &o)), 0);
    cr_assert_str_eq(u.name, "");
    rt_stop();
}

Test(task, self_and_name_outside_a_task) {
    cr_assert_null(async_self());
    cr_assert_null(async_task_name(NULL));
    cr_assert_eq(async_worker_id(), 0);
    cr_assert_eq(async_testcancel(), 0);
    cr_assert_eq(async_yield(), 0);
    rt_stop();
}

struct self_probe {
    async_future_t *gate;
    async_task_t *before, *after;
};

static intptr_t self_task(void *arg) {
    struct self_probe *p = arg;
    p->before = async_self();
    (void)async_await(p->gate);
    (void)async_await(async_usleep(1000));
    p->after = async_self();
    return 0;
}

Test(task, self_is_stable_and_distinct) {
    struct self_probe a = {.gate = async_future_new()}, b = {.gate = async_future_new()};
    async_future_t *ga = a.gate, *gb = b.gate;
    async_future_t *ta = async_spawn(self_task, &a), *tb = async_spawn(self_task, &b);
    /* both tasks are alive at once: each is blocked on its gate */
    cr_assert(WAIT_UNTIL(a.before && b.before, 5000));
    async_future_resolve(ga, 0);
    async_future_resolve(gb, 0);
    ASSERT_VAL(async_await(ta), 0);
    ASSERT_VAL(async_await(tb), 0);
    cr_assert_not_null(a.before);
    cr_assert_neq(a.before, b.before);
    cr_assert_eq(a.before, a.after);
    cr_assert_eq(b.before, b.after);
    rt_stop();
}

static intptr_t recurse(int depth) __attribute__((noinline));
static intptr_t recurse(int depth) {
    volatile char frame[1024];
    frame[0] = (char)depth;
    frame[sizeof frame - 1] = (char)depth;
    if (depth == 0) return 0;
    intptr_t r = recurse(depth - 1);
    return r + 1 + (frame[0] - (char)depth) + (frame[sizeof frame - 1] - (char)depth);
}

static intptr_t recurse_task(void *arg) { return recurse((int)(intptr_t)arg); }

static intptr_t printf_task(void *arg) {
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%.3f %s %d %p %Lg", 3.14159, "str", 42, arg, 1.5L);
    return n > 0 && strstr(buf, "3.142 str 42") ? 0 : -1;
}

Test(task, deep_recursion_in_default_stack) {
    /* ~150 KiB of frames fits the 256 KiB default stack. */
    ASSERT_VAL(async_await(async_spawn(recurse_task, (void *)150)), 150);
    ASSERT_VAL(async_await(async_spawn(printf_task, NULL)), 0);
    rt_stop();
}

Test(task, spawn_opts_stack_size) {
    async_spawn_opts_t big = {.stack_size = 1 << 20};
    /* ~600 KiB of frames needs more than the default. */
    ASSERT_VAL(async_await(async_spawn_opts(recurse_task, (void *)600, &big)), 600);

    /* Tiny sizes are rounded up to at least 16 KiB. */
    async_spawn_opts_t tiny = {.stack_size = 1};
    ASSERT_VAL(async_await(async_spawn_opts(recurse_task, (void *)6, &tiny)), 6);
    async_spawn_opts_t odd = {.stack_size = 20000};
    ASSERT_VAL(async_await(async_spawn_opts(recurse_task, (void *)8, &odd)), 8);
    rt_stop();
}

Test(task, spawn_opts_bad_is_einval) {
    async_spawn_opts_t o = {.stack_size = ((size_t)1 << 30) + 1};
    async_future_t *f = async_spawn_opts(return_arg, NULL, &o);
    cr_assert_not_null(f);
    ASSERT_ERR(async_await(f), EINVAL);
    o.stack_size = SIZE_MAX;
    ASSERT_ERR(async_await(async_spawn_opts(return_arg, NULL, &o)), EINVAL);

    int n = async_worker_count();
    cr_assert_geq(n, 1);
    async_spawn_opts_t w = {.worker = (unsigned)n + 1};
    f = async_spawn_opts(return_arg, NULL, &w);
    cr_assert_not_null(f);
    ASSERT_ERR(async_await(f), EINVAL);
    w.worker = UINT_MAX;
    ASSERT_ERR(async_await(async_spawn_opts(return_arg, NULL, &w)), EINVAL);

    /* NULL opts are the defaults */
    ASSERT_VAL(async_await(async_spawn_opts(return_arg, (void *)3, NULL)), 3);
    rt_stop();
}

static intptr_t worker_ids(void *arg) {
    unsigned a = async_worker_id();
    (void)async_await(async_usleep(2000));
    CHECK_EQ(async_yield(), 0);
    (void)async_await(async_spawn(return_arg, NULL));
    unsigned b = async_worker_id();
    return (intptr_t)a * 1000 + b;
}

Test(task, worker_count_and_pinning) {
    int n = async_worker_count();
    cr_assert_geq(n, 1);
    if (env_threads())
        cr_assert_eq(n, (int)env_threads(), "ASYNCSTD_THREADS=%u but %d workers", env_threads(), n);
    cr_assert_eq(async_worker_id(), 0, "main is not a worker");
    for (int k = 1; k <= n; k++) {
        intptr_t v = async_await(spawn_on(worker_ids, NULL, (unsigned)k));
        cr_assert_eq(v, k * 1000 + k, "pinned to %d: ran on %jd then %jd", k, (intmax_t)v / 1000,
                     (intmax_t)v % 1000);
    }
    rt_stop();
}

Test(task, unpinned_tasks_stay_on_their_worker) {
    int n = async_worker_count();
    enum { T = 64 };
    async_future_t *fs[T];
    intptr_t res[T];
    for (int i = 0; i < T; i++) fs[i] = async_spawn(worker_ids, NULL);
    ASSERT_VAL(async_await_all(fs, T, res, NULL), 0);
    for (int i = 0; i < T; i++) {
        intptr_t a = res[i] / 1000, b = res[i] % 1000;
        cr_assert(a >= 1 && a <= n, "worker id %jd out of 1..%d", (intmax_t)a, n);
        cr_assert_eq(a, b, "task moved from worker %jd to %jd", (intmax_t)a, (intmax_t)b);
    }
    rt_stop();
}

/* ---- detach ------------------------------------------------------------------------- */

struct detach_probe {
    async_future_t *gate, *done;
};

static intptr_t detached_task(void *arg) {
    struct detach_probe *p = arg;
    intptr_t v = async_await(p->gate);
    (void)async_await(async_usleep(5000));
    CHECK_EQ(async_future_resolve(p->done, v + 1), 0);
    return 0;
}

Test(task, detach_by_free_keeps_running) {
    struct detach_probe p = {.gate = async_future_new(), .done = async_future_new()};
    async_future_t *done = p.done;
    async_future_free(async_spawn(detached_task, &p));
    cr_assert_eq(async_future_resolve(p.gate, 40), 0);
    ASSERT_VAL(async_await(done), 41);
    rt_stop();
}

static intptr_t detached_sleeper(void *arg) { return async_await(async_sleep(60)); }

Test(task, detached_tasks_at_shutdown) {
    for (int i = 0; i < 50; i++) async_future_free(async_spawn(detached_sleeper, NULL));
    double t0 = now_ms();
    rt_stop();
    cr_assert_lt(now_ms() - t0, 10000);
}

/* ---- cancellation ----------------------------------------------------------------------- */

static intptr_t mark_ran(void *arg) {
    atomic_store((atomic_int *)arg, 1);
    return 0;
}

static intptr_t cancel_before_start_in_task(void *arg) {
    /* Tasks are cooperative: a child pinned to our worker cannot start
     * before we await, so this cancel lands before it starts. */
    async_future_t *c = spawn_on(mark_ran, arg, async_worker_id());
    async_cancel(c);
    errno = 0;
    intptr_t r = async_await(c);
    CHECK(r == -1 && errno == ECANCELED);
    return 0;
}

Test(task, cancel_before_start_never_runs) {
    static atomic_int ran;
    ASSERT_VAL(async_await(spawn_on(cancel_before_start_in_task, &ran, 1)), 0);
    sleep_ms(50);
    cr_assert_eq(atomic_load(&ran), 0, "a task cancelled before it started ran");
    rt_stop();
}

struct spinner {
    atomic_int spinning, release;
};

static intptr_t spin_task(void *arg) {
    struct spinner *s = arg;
    atomic_store(&s->spinning, 1);
    double deadline = now_ms() + 10000;
    while (!atomic_load(&s->release) && now_ms() < deadline) {
    }
    return 0;
}

Test(task, cancel_before_start_from_main) {
    static atomic_int ran;
    struct spinner s = {0};
    async_future_t *busy = spawn_on(spin_task, &s, 1); /* occupies worker 1 */
    cr_assert(WAIT_UNTIL(atomic_load(&s.spinning), 5000));
    async_future_t *c = spawn_on(mark_ran, &ran, 1);
    async_cancel(c);
    atomic_store(&s.release, 1);
    ASSERT_VAL(async_await(busy), 0);
    ASSERT_ERR(async_await(c), ECANCELED);
    sleep_ms(20);
    cr_assert_eq(atomic_load(&ran), 0);
    rt_stop();
}

/* What a task saw when cancelled while waiting, and afterwards. */
struct cprobe {
    async_future_t *ready; /* resolved by the task just before it waits */
    async_future_t *user;  /* a user future the task may wait on */
    intptr_t r;            /* the interrupted await */
    int e;
    intptr_t later_r; /* a later await: must fail at once */
    int later_e;
    double later_ms;
    int tc, tc_e; /* async_testcancel() afterwards */
    int y, y_e;   /* async_yield() afterwards */
};

static void cprobe_ready(struct cprobe *p) { CHECK_EQ(async_future_resolve(p->ready, 0), 0); }

/* Records the interrupted await's result, probes later awaits, and returns
 * that result so the join reports it too. */
static intptr_t cprobe_finish(struct cprobe *p, intptr_t r, int e) {
    p->r = r;
    p->e = e;
    double t0 = now_ms();
    errno = 0;
    p->later_r = async_await(async_sleep(30));
    p->later_e = errno;
    p->later_ms = now_ms() - t0;
    errno = 0;
    p->tc = async_testcancel();
    p->tc_e = errno;
    errno = 0;
    p->y = async_yield();
    p->y_e = errno;
    errno = e;
    return r;
}

static void cprobe_check_later(const struct cprobe *p) {
    cr_assert(p->later_r == -1 && p->later_e == ECANCELED,
              "an await after cancellation gave %jd/%s", (intmax_t)p->later_r, ename(p->later_e));
    cr_assert_lt(p->later_ms, 5000, "an await after cancellation must fail at once");
    cr_assert(p->tc == -1 && p->tc_e == ECANCELED, "async_testcancel gave %d/%s", p->tc,
              ename(p->tc_e));
    cr_assert(p->y == -1 && p->y_e == ECANCELED, "async_yield gave %d/%s", p->y, ename(p->y_e));
}

/* Spawns fn(p), waits until it is about to block, cancels it, joins it. */
static void cancel_waiting_task(async_task_fn fn, struct cprobe *p) {
    p->ready = async_future_new();
    async_future_t *ready = p->ready;
    async_future_t *t = async_spawn(fn, p);
    ASSERT_VAL(async_await(ready), 0);
    sleep_ms(20); /* let it reach the await (if it has not, the await fails at once anyway) */
    cr_assert_eq(async_future_settled(t), 0, "the task should be waiting");
    double t0 = now_ms();
    async_cancel(t);
    ASSERT_ERR(async_await(t), ECANCELED);
    cr_assert_lt(now_ms() - t0, 5000);
    cr_assert(p->r == -1 && p->e == ECANCELED, "the interrupted await gave %jd/%s", (intmax_t)p->r,
              ename(p->e));
    cprobe_check_later(p);
}

static intptr_t wait_sleep(void *arg) {
    struct cprobe *p = arg;
    cprobe_ready(p);
    errno = 0;
    intptr_t r = async_await(async_sleep(60));
    return cprobe_finish(p, r, errno);
}

Test(task, cancel_at_sleep) {
    struct cprobe p = {0};
    cancel_waiting_task(wait_sleep, &p);
    rt_stop();
}

static intptr_t wait_user(void *arg) {
    struct cprobe *p = arg;
    cprobe_ready(p);
    errno = 0;
    intptr_t r = async_await(p->user);
    return cprobe_finish(p, r, errno);
}

Test(task, cancel_at_user_future) {
    struct cprobe p = {.user = async_future_new()};
    cancel_waiting_task(wait_user, &p);
    /* The task's await cancelled the user future: the settler hears so. */
    ASSERT_ERR(async_future_resolve(p.user, 1), ECANCELED);
    rt_stop();
}

struct any_probe {
    struct cprobe c;
    int pending0, pending1;
};

static intptr_t wait_any(void *arg) {
    struct any_probe *p = arg;
    async_future_t *fs[2] = {p->c.user, async_sleep(60)};
    cprobe_ready(&p->c);
    errno = 0;
    int r = async_await_any(fs, 2);
    int e = errno;
    p->pending0 = !async_future_settled(fs[0]);
    p->pending1 = !async_future_settled(fs[1]);
    async_future_free(fs[0]);
    async_future_free(fs[1]);
    return cprobe_finish(&p->c, r, e);
}

Test(task, cancel_at_await_any) {
    struct any_probe p = {.c.user = async_future_new()};
    async_future_t *user = p.c.user;
    cancel_waiting_task(wait_any, &p.c);
    cr_assert(p.pending0 && p.pending1, "await_any must leave the futures pending");
    async_future_resolve(user, 1); /* the settler's role */
    rt_stop();
}

static intptr_t wait_timeout(void *arg) {
    struct cprobe *p = arg;
    cprobe_ready(p);
    errno = 0;
    intptr_t r = async_await_timeout(p->user, 30000);
    return cprobe_finish(p, r, errno);
}

Test(task, cancel_at_await_timeout) {
    struct cprobe p = {.user = async_future_new()};
    cancel_waiting_task(wait_timeout, &p); /* ECANCELED, not ETIMEDOUT */
    ASSERT_ERR(async_future_resolve(p.user, 1), ECANCELED);
    rt_stop();
}

static intptr_t wait_nested_child(void *arg) {
    struct cprobe *child = arg;
    cprobe_ready(child);
    errno = 0;
    intptr_t r = async_await(async_sleep(60));
    child->r = r;
    child->e = errno;
    return r;
}

struct nested_probe {
    struct cprobe c;
    struct cprobe child;
};

static intptr_t wait_nested(void *arg) {
    struct nested_probe *p = arg;
    p->child.ready = p->c.ready; /* the child signals when it waits */
    errno = 0;
    intptr_t r = async_await(async_spawn(wait_nested_child, &p->child));
    return cprobe_finish(&p->c, r, errno);
}

Test(task, cancel_at_nested_join) {
    struct nested_probe p = {0};
    cancel_waiting_task(wait_nested, &p.c);
    cr_assert(p.child.r == -1 && p.child.e == ECANCELED,
              "the child must be cancelled through its parent's await: got %jd/%s",
              (intmax_t)p.child.r, ename(p.child.e));
    rt_stop();
}

struct blocker {
    atomic_int started, release, done;
};

static intptr_t blocking_job(void *arg) {
    struct blocker *b = arg;
    atomic_store(&b->started, 1);
    double deadline = now_ms() + 10000;
    while (!atomic_load(&b->release) && now_ms() < deadline) sleep_ms(1);
    atomic_store(&b->done, 1);
    return 17;
}

struct blocking_probe {
    struct cprobe c;
    struct blocker b;
    int done_at_return;
};

static intptr_t wait_blocking(void *arg) {
    struct blocking_probe *p = arg;
    errno = 0;
    intptr_t r = async_await(async_spawn_blocking(blocking_job, &p->b));
    int e = errno;
    p->done_at_return = atomic_load(&p->b.done);
    return cprobe_finish(&p->c, r, e);
}

Test(task, cancel_at_blocking_job) {
    struct blocking_probe p = {0};
    async_future_t *t = async_spawn(wait_blocking, &p);
    cr_assert(WAIT_UNTIL(atomic_load(&p.b.started), 5000));
    async_cancel(t);
    /* A started job runs to the end, and the cancelled await waits for it
     * (its buffers stay in use until then). */
    sleep_ms(50);
    cr_assert_eq(async_future_settled(t), 0, "the task returned while its job still ran");
    atomic_store(&p.b.release, 1);
    errno = 0;
    intptr_t r = async_await(t);
    int e = errno;
    cr_assert_eq(p.done_at_return, 1, "the await returned before the job finished");
    cr_assert(r == 17 || (r == -1 && e == ECANCELED), "join gave %jd/%s", (intmax_t)r, ename(e));
    cr_assert(p.c.r == 17 || (p.c.r == -1 && p.c.e == ECANCELED));
    cprobe_check_later(&p.c);
    rt_stop();
}

struct tc_probe {
    atomic_int started;
    long iters_before;
    int saw, e;
};

static intptr_t testcancel_loop(void *arg) {
    struct tc_probe *p = arg;
    atomic_store(&p->started, 1);
    double deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
        errno = 0;
        if (async_testcancel() != 0) {
            p->saw = 1;
            p->e = errno;
            errno = ECANCELED;
            return -1;
        }
        p->iters_before++;
    }
    return 0;
}

Test(task, testcancel_in_a_loop_without_awaits) {
    struct tc_probe p = {0};
    async_future_t *t = async_spawn(testcancel_loop, &p);
    cr_assert(WAIT_UNTIL(atomic_load(&p.started), 5000));
    sleep_ms(20);
    async_cancel(t);
    double t0 = now_ms();
    ASSERT_ERR(async_await(t), ECANCELED);
    cr_assert_lt(now_ms() - t0, 5000);
    cr_assert_eq(p.saw, 1);
    cr_assert_eq(p.e, ECANCELED);
    cr_assert_gt(p.iters_before, 0, "async_testcancel must give 0 before the cancel");
    rt_stop();
}

static intptr_t finish_fast(void *arg) {
    atomic_store((atomic_int *)arg, 1);
    return 9;
}

Test(task, cancel_after_finish_keeps_result) {
    static atomic_int done;
    async_future_t *t = async_spawn(finish_fast, &done);
    cr_assert(WAIT_UNTIL(async_future_settled(t), 5000));
    async_cancel(t);
    ASSERT_VAL(async_await(t), 9);
    cr_assert_eq(atomic_load(&done), 1);
    rt_stop();
}

static intptr_t cancel_other(void *arg) {
    async_cancel(arg);
    return 0;
}

Test(task, cancel_from_another_task) {
    struct cprobe p = {0};
    p.ready = async_future_new();
    async_future_t *ready = p.ready;
    async_future_t *t = async_spawn(wait_sleep, &p);
    ASSERT_VAL(async_await(ready), 0);
    ASSERT_VAL(async_await(async_spawn(cancel_other, t)), 0);
    ASSERT_ERR(async_await(t), ECANCELED);
    cr_assert(p.r == -1 && p.e == ECANCELED);
    rt_stop();
}

/* ---- yield ----------------------------------------------------------------------------- */

struct ylog {
    char buf[64];
    int n;
};

struct yarg {
    struct ylog *log;
    char ch;
};

static intptr_t yielder(void *arg) {
    struct yarg *a = arg;
    for (int i = 0; i < 6; i++) {
        a->log->buf[a->log->n++] = a->ch; /* one worker: no race */
        if (async_yield() != 0) return -1;
    }
    return 0;
}

static intptr_t yield_parent(void *arg) {
    struct ylog *log = arg;
    struct yarg a = {log, 'A'}, b = {log, 'B'};
    unsigned w = async_worker_id();
    async_future_t *fs[2] = {spawn_on(yielder, &a, w), spawn_on(yielder, &b, w)};
    return async_await_all(fs, 2, NULL, NULL);
}

Test(task, yield_alternates_tasks_on_a_worker) {
    struct ylog log = {0};
    ASSERT_VAL(async_await(spawn_on(yield_parent, &log, 1)), 0);
    cr_assert_eq(log.n, 12);
    for (int i = 1; i < log.n; i++)
        cr_assert_neq(log.buf[i], log.buf[i - 1], "yield did not let the other task run: %.*s",
                      log.n, log.buf);
    rt_stop();
}

struct yflag {
    atomic_int flag;
    long spins;
};

static intptr_t yield_until_flag(void *arg) {
    struct yflag *f = arg;
    double deadline = now_ms() + 10000;
    while (!atomic_load(&f->flag) && now_ms() < deadline) {
        if (async_yield() != 0) return -1;
        f->spins++;
    }
    return atomic_load(&f->flag) ? 0 : -1;
}

static intptr_t set_flag(void *arg) {
    atomic_store(&((struct yflag *)arg)->flag, 1);
    return 0;
}

Test(task, yield_lets_later_spawns_run) {
    /* The spinner yields on worker 1; the setter, sent later from this
     * thread, can only arrive through the worker's inbox, i.e. if yielding
     * also lets the worker's I/O run. */
    struct yflag f = {0};
    async_future_t *spin = spawn_on(yield_until_flag, &f, 1);
    sleep_ms(20);
    async_future_t *set = spawn_on(set_flag, &f, 1);
    ASSERT_VAL(async_await(spin), 0);
    ASSERT_VAL(async_await(set), 0);
    rt_stop();
}

/* ---- sleeping ------------------------------------------------------------------------ */

static intptr_t timed_sleeps(void *arg) {
    double t0 = now_ms();
    CHECK_EQ(async_await(async_usleep(50000)), 0);
    double t1 = now_ms();
    CHECK(t1 - t0 >= 49.5 && t1 - t0 < 5000);
    struct timespec req = {0, 30 * 1000 * 1000};
    CHECK_EQ(async_await(async_nanosleep(&req, NULL)), 0);
    double t2 = now_ms();
    CHECK(t2 - t1 >= 29.5 && t2 - t1 < 5000);
    CHECK_EQ(async_await(async_usleep(1500)), 0); /* rounded up, never down */
    double t3 = now_ms();
    CHECK(t3 - t2 >= 1.4);
    CHECK_EQ(async_await(async_sleep(0)), 0);
    CHECK_EQ(async_await(async_usleep(0)), 0);
    return 0;
}

Test(task, sleep_durations_in_task) {
    ASSERT_VAL(async_await(async_spawn(timed_sleeps, NULL)), 0);
    /* the same on every worker at once */
    int n = async_worker_count();
    async_future_t *fs[64];
    cr_assert_leq(n, 64);
    for (int k = 0; k < n; k++) fs[k] = spawn_on(timed_sleeps, NULL, (unsigned)k + 1);
    ASSERT_VAL(async_await_all(fs, (size_t)n, NULL, NULL), 0);
    rt_stop();
}

Test(task, sleep_durations_on_main) {
    double t0 = now_ms();
    ASSERT_VAL(async_await(async_sleep(1)), 0);
    double dt = now_ms() - t0;
    cr_assert(dt >= 999 && dt < 6000, "sleep(1) took %.1f ms", dt);
    t0 = now_ms();
    ASSERT_VAL(async_await(async_usleep(50000)), 0);
    dt = now_ms() - t0;
    cr_assert(dt >= 49.5 && dt < 5000, "usleep(50000) took %.1f ms", dt);
    struct timespec req = {0, 50 * 1000 * 1000};
    t0 = now_ms();
    ASSERT_VAL(async_await(async_nanosleep(&req, NULL)), 0);
    dt = now_ms() - t0;
    cr_assert(dt >= 49.5 && dt < 5000, "nanosleep(50 ms) took %.1f ms", dt);
    rt_stop();
}

Test(task, nanosleep_bad_input) {
    struct timespec ts;
    async_future_t *f = async_nanosleep(NULL, NULL);
    cr_assert_not_null(f);
    ASSERT_ERR(async_await(f), EFAULT);
    ts = (struct timespec){0, 1000000000L};
    ASSERT_ERR(async_await(async_nanosleep(&ts, NULL)), EINVAL);
    ts = (struct timespec){0, -1};
    ASSERT_ERR(async_await(async_nanosleep(&ts, NULL)), EINVAL);
    ts = (struct timespec){-1, 0};
    ASSERT_ERR(async_await(async_nanosleep(&ts, NULL)), EINVAL);
    ts = (struct timespec){0, 999999999L}; /* the largest valid tv_nsec */
    ASSERT_VAL(async_await(async_nanosleep(&ts, NULL)), 0);
    rt_stop();
}

Test(task, nanosleep_rem_on_cancel) {
    struct timespec req = {30, 0}, rem = {-1, -1};
    async_future_t *f = async_nanosleep(&req, &rem);
    sleep_ms(50);
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    cr_assert(rem.tv_nsec >= 0 && rem.tv_nsec < 1000000000L, "rem.tv_nsec = %ld", rem.tv_nsec);
    double left = rem.tv_sec + rem.tv_nsec / 1e9;
    cr_assert(left > 20 && left <= 30, "rem = %.3f s after ~0.05 s of 30 s", left);
    rt_stop();
}

/* ---- clock_nanosleep ------------------------------------------------------------- */

static struct timespec clock_read(clockid_t c) {
    struct timespec ts;
    cr_assert_eq(clock_gettime(c, &ts), 0, "clock_gettime(%d): %s", (int)c, ename(errno));
    return ts;
}

static struct timespec ts_add_ms(struct timespec ts, long ms) {
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += ms % 1000 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static bool ts_before(struct timespec a, struct timespec b) {
    return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

static const clockid_t wall_clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI};

/* Each wall clock, relative and absolute: never over before its time. */
static void clock_sleeps_end_on_time(void) {
    for (size_t i = 0; i < sizeof wall_clocks / sizeof *wall_clocks; i++) {
        clockid_t c = wall_clocks[i];
        struct timespec req = {0, 30 * 1000000L}, rem = {77, 77};
        struct timespec want = ts_add_ms(clock_read(c), 30);
        CHECK_EQ(async_await(async_clock_nanosleep(c, 0, &req, &rem)), 0);
        CHECK(!ts_before(clock_read(c), want));
        CHECK(rem.tv_sec == 77 && rem.tv_nsec == 77); /* a completed sleep leaves rem alone */

        struct timespec at = ts_add_ms(clock_read(c), 40);
        CHECK_EQ(async_await(async_clock_nanosleep(c, TIMER_ABSTIME, &at, &rem)), 0);
        CHECK(!ts_before(clock_read(c), at));
        /* a time already past: settled at the call */
        async_future_t *f = async_clock_nanosleep(c, TIMER_ABSTIME, &at, NULL);
        CHECK(f && async_future_settled(f));
        CHECK_EQ(async_await(f), 0);
    }
}

static intptr_t clock_sleeps_in_task(void *arg) {
    (void)arg;
    clock_sleeps_end_on_time();
    return 0;
}

Test(task, clock_nanosleep_ends_when_the_clock_reads_its_time) {
    clock_sleeps_end_on_time();
    cr_assert_eq(async_await(async_spawn(clock_sleeps_in_task, NULL)), 0);
    checks_ok();
    rt_stop();
}

Test(task, clock_nanosleep_cancelled_writes_rem_only_when_relative) {
    struct timespec req = {30, 0}, rem = {-1, -1};
    async_future_t *f = async_clock_nanosleep(CLOCK_REALTIME, 0, &req, &rem);
    sleep_ms(50);
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    double left = rem.tv_sec + rem.tv_nsec / 1e9;
    cr_assert(left > 20 && left <= 30, "rem = %.3f s after ~0.05 s of 30 s", left);

    struct timespec at = ts_add_ms(clock_read(CLOCK_MONOTONIC), 30000);
    rem = (struct timespec){77, 77};
    f = async_clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, &rem);
    sleep_ms(20);
    cr_assert_eq(async_future_settled(f), 0);
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    cr_assert(rem.tv_sec == 77 && rem.tv_nsec == 77, "an absolute sleep wrote rem");
    rt_stop();
}

static atomic_bool burn_stop;
static void *burn(void *arg) {
    (void)arg;
    while (!atomic_load_explicit(&burn_stop, memory_order_relaxed)) {
    }
    return NULL;
}

static double cpu_s(clockid_t c) {
    struct timespec ts = clock_read(c);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU-time clocks move only while something runs: a thread burns CPU, and
 * sleeps on the process's clock and on that thread's clock end once it has
 * used the time. */
Test(task, clock_nanosleep_on_cpu_clocks_waits_for_cpu_time) {
    atomic_store(&burn_stop, false);
    pthread_t t = thread_start(burn, NULL);
    clockid_t thread_clock, process_clock;
    cr_assert_eq(pthread_getcpuclockid(t, &thread_clock), 0);
    cr_assert_eq(clock_getcpuclockid(0, &process_clock), 0);
    const clockid_t clocks[] = {CLOCK_PROCESS_CPUTIME_ID, process_clock, thread_clock};
    for (size_t i = 0; i < 3; i++) {
        double c0 = cpu_s(clocks[i]);
        struct timespec req = {0, 60 * 1000000L};
        ASSERT_VAL(async_await(async_clock_nanosleep(clocks[i], 0, &req, NULL)), 0);
        double used = cpu_s(clocks[i]) - c0;
        cr_assert_geq(used, 0.060, "clock %zu: over after %.3f s of CPU", i, used);
        struct timespec at = clock_read(clocks[i]);
        at = ts_add_ms(at, 40);
        ASSERT_VAL(async_await(async_clock_nanosleep(clocks[i], TIMER_ABSTIME, &at, NULL)), 0);
        cr_assert(!ts_before(clock_read(clocks[i]), at), "clock %zu: absolute sleep early", i);
    }
    /* cancelled, rem is the CPU time left */
    atomic_store(&burn_stop, true);
    pthread_join(t, NULL);
    struct timespec req = {5, 0}, rem = {-1, -1};
    async_future_t *f = async_clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &req, &rem);
    sleep_ms(30);
    cr_assert_eq(async_future_settled(f), 0, "an idle process's CPU clock moved 5 s");
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    double left = rem.tv_sec + rem.tv_nsec / 1e9;
    cr_assert(left > 4 && left <= 5, "rem = %.3f s of CPU time", left);
    rt_stop();
}

/* Durations too long to represent are clamped, never wrapped to zero: each
 * sleep below is still pending after 50 ms, and cancelling ends it. */
static void huge_sleep_is_pending_and_cancellable(async_future_t *f, const char *what) {
    cr_assert_not_null(f, "%s", what);
    sleep_ms(50);
    cr_assert_eq(async_future_settled(f), 0, "%s ended at once: the duration wrapped", what);
    async_cancel(f);
    errno = 0;
    intptr_t r = async_await(f);
    cr_assert(r == -1 && errno == ECANCELED, "%s: %jd/%s", what, (intmax_t)r, ename(errno));
}

Test(task, huge_durations_do_not_wrap) {
    huge_sleep_is_pending_and_cancellable(async_usleep(ULONG_MAX), "usleep(ULONG_MAX)");
    huge_sleep_is_pending_and_cancellable(async_usleep(ULONG_MAX - 500), "usleep(ULONG_MAX - 500)");
    huge_sleep_is_pending_and_cancellable(async_sleep(UINT_MAX), "sleep(UINT_MAX)");
    struct timespec req = {(time_t)((~(uintmax_t)0) >> 1 >> (64 - 8 * sizeof(time_t))),
                           999999999L}; /* the largest time_t */
    struct timespec rem = {-1, -1};
    huge_sleep_is_pending_and_cancellable(async_nanosleep(&req, &rem), "nanosleep(TIME_T_MAX)");
    cr_assert(rem.tv_sec > 100L * 365 * 24 * 3600 && rem.tv_nsec >= 0 && rem.tv_nsec < 1000000000L,
              "rem = %jd s %ld ns", (intmax_t)rem.tv_sec, rem.tv_nsec);
    req = (struct timespec){(time_t)(UINT64_MAX / 1000 / 2), 0}; /* seconds * 1000 used to wrap */
    huge_sleep_is_pending_and_cancellable(async_nanosleep(&req, NULL), "nanosleep(2^63 ms)");
    req =
        (struct timespec){(time_t)((~(uintmax_t)0) >> 1 >> (64 - 8 * sizeof(time_t))), 999999999L};
    huge_sleep_is_pending_and_cancellable(
        async_clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &req, NULL),
        "clock_nanosleep(REALTIME, until TIME_T_MAX)");
    huge_sleep_is_pending_and_cancellable(
        async_clock_nanosleep(CLOCK_PROCESS_CPUTIME_ID, 0, &req, NULL),
        "clock_nanosleep(PROCESS_CPUTIME, TIME_T_MAX)");
    rt_stop();
}

static intptr_t await_timeout_max(void *arg) {
    return async_await_timeout((async_future_t *)arg, INT64_MAX);
}

Test(task, huge_await_timeout_does_not_expire) {
    /* on a plain thread the timeout races a user future; in a task, the same */
    async_future_t *u = async_future_new();
    cr_assert_not_null(u);
    async_future_t *t = async_spawn(await_timeout_max, u);
    cr_assert_not_null(t);
    sleep_ms(50);
    cr_assert_eq(async_future_settled(t), 0, "await_timeout(INT64_MAX) expired at once");
    cr_assert_eq(async_future_resolve(u, 5), 0);
    ASSERT_VAL(async_await(t), 5);

    u = async_future_new();
    cr_assert_not_null(u);
    t = async_spawn(await_timeout_max, u);
    sleep_ms(50);
    cr_assert_eq(async_future_settled(t), 0);
    async_cancel(t); /* cancels the awaiting task, and with it the wait */
    ASSERT_ERR(async_await(t), ECANCELED);
    ASSERT_ERR(async_future_resolve(u, 1), ECANCELED);
    rt_stop();
}

struct rem_probe {
    struct cprobe c;
    struct timespec rem;
};

static intptr_t wait_nanosleep(void *arg) {
    struct rem_probe *p = arg;
    struct timespec req = {30, 0};
    p->rem = (struct timespec){-1, -1};
    cprobe_ready(&p->c);
    errno = 0;
    intptr_t r = async_await(async_nanosleep(&req, &p->rem));
    return cprobe_finish(&p->c, r, errno);
}

Test(task, cancel_at_nanosleep_reports_rem) {
    struct rem_probe p = {0};
    cancel_waiting_task(wait_nanosleep, &p.c);
    double left = p.rem.tv_sec + p.rem.tv_nsec / 1e9;
    cr_assert(left > 20 && left <= 30, "rem = %.3f s", left);
    rt_stop();
}

static intptr_t sleep_200ms(void *arg) { return async_await(async_usleep(200000)); }

Test(task, sleeps_suspend_only_the_task) {
    enum { N = 200 };
    async_future_t *fs[N];
    double t0 = now_ms();
    for (int i = 0; i < N; i++) fs[i] = spawn_on(sleep_200ms, NULL, 1);
    ASSERT_VAL(async_await_all(fs, N, NULL, NULL), 0);
    double dt = now_ms() - t0;
    /* 200 x 200 ms one after the other would be 40 s */
    cr_assert(dt >= 199 && dt < 10000, "200 concurrent 200 ms sleeps took %.1f ms", dt);
    rt_stop();
}

/* ---- errno per task ------------------------------------------------------------------ */

static intptr_t errno_keeper(void *arg) {
    int mine = (int)(intptr_t)arg;
    for (int i = 0; i < 200; i++) {
        errno = mine;
        if (async_yield() != 0) return -1;
        if (errno != mine) {
            CHECK_EQ(errno, mine);
            return -2;
        }
        async_future_t *f = async_future_new();
        async_future_reject(f, mine + 1);
        if (async_await(f) != -1 || errno != mine + 1) {
            CHECK_EQ(errno, mine + 1);
            return -3;
        }
        if ((i & 15) == 0) (void)async_await(async_usleep(100));
        errno = mine + 2;
        (void)async_await(async_spawn(return_arg, NULL)); /* a switch away and back */
        if (errno != mine + 2) {
            CHECK_EQ(errno, mine + 2);
            return -4;
        }
    }
    return 0;
}

Test(task, errno_is_per_task) {
    enum { P = 8, U = 8 };
    async_future_t *fs[P + U];
    for (int i = 0; i < P; i++) /* all on one worker: save/restore matters most */
        fs[i] = spawn_on(errno_keeper, (void *)(intptr_t)(1000 + 10 * i), 1);
    for (int i = 0; i < U; i++)
        fs[P + i] = async_spawn(errno_keeper, (void *)(intptr_t)(2000 + 10 * i));
    intptr_t res[P + U];
    int r = async_await_all(fs, P + U, res, NULL);
    for (int i = 0; i < P + U; i++)
        cr_assert_eq(res[i], 0, "task %d: step %jd lost its errno", i, (intmax_t)-res[i]);
    cr_assert_eq(r, 0);
    rt_stop();
}

/* ---- 100,000 live tasks -------------------------------------------------------------- */

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif
/* 100,000 at once; under valgrind (some 50 times slower) a tenth, to fit CI's time */
#define MANY (RUNNING_ON_VALGRIND ? 10000 : 100000)

static async_future_t **many_gates;
static atomic_int many_alive, many_peak;
static atomic_int many_release;

static intptr_t gated_task(void *arg) {
    intptr_t i = (intptr_t)arg;
    atomic_fetch_add(&many_alive, 1);
    intptr_t v = async_await(many_gates[i]);
    return v == i ? v : -1;
}

Test(task, many_tasks_awaiting_user_futures) {
    many_gates = calloc(MANY, sizeof *many_gates);
    async_future_t **tasks = calloc(MANY, sizeof *tasks);
    intptr_t *res = calloc(MANY, sizeof *res);
    cr_assert(many_gates && tasks && res);
    for (intptr_t i = 0; i < MANY; i++) {
        many_gates[i] = async_future_new();
        cr_assert_not_null(many_gates[i]);
    }
    for (intptr_t i = 0; i < MANY; i++) {
        tasks[i] = async_spawn(gated_task, (void *)i);
        cr_assert_not_null(tasks[i], "spawn %jd: %s", (intmax_t)i, ename(errno));
    }
    cr_assert(WAIT_UNTIL(atomic_load(&many_alive) == MANY, 60000), "only %d of %d tasks started",
              atomic_load(&many_alive), MANY);
    for (int k = 0; k < 20; k++) cr_assert_eq(async_future_settled(tasks[k * (MANY / 20)]), 0);
    for (intptr_t i = 0; i < MANY; i++) async_future_resolve(many_gates[i], i);
    int r = async_await_all(tasks, MANY, res, NULL);
    cr_assert_eq(r, 0, "await_all: %s", ename(errno));
    for (intptr_t i = 0; i < MANY; i++) cr_assert_eq(res[i], i);
    free(many_gates);
    free(tasks);
    free(res);
    rt_stop();
}

static intptr_t sleeping_task(void *arg) {
    int now = atomic_fetch_add(&many_alive, 1) + 1;
    int peak = atomic_load(&many_peak);
    while (now > peak && !atomic_compare_exchange_weak(&many_peak, &peak, now)) {
    }
    while (!atomic_load(&many_release))
        if (async_await(async_sleep(1)) != 0) return -1;
    atomic_fetch_sub(&many_alive, 1);
    return 1;
}

static intptr_t spawn_many_sleepers(void *arg) {
    async_future_t **fs = arg;
    for (int i = 0; i < MANY; i++) fs[i] = async_spawn(sleeping_task, NULL);
    intptr_t sum = 0;
    for (int i = 0; i < MANY; i++) {
        intptr_t v = async_await(fs[i]);
        if (v != 1) return -1;
        sum += v;
    }
    return sum;
}

Test(task, many_tasks_sleeping) {
    async_future_t **fs = calloc(MANY, sizeof *fs);
    cr_assert_not_null(fs);
    async_future_t *parent = async_spawn(spawn_many_sleepers, fs);
    cr_assert(WAIT_UNTIL(atomic_load(&many_peak) == MANY, 60000), "peak of %d live tasks, not %d",
              atomic_load(&many_peak), MANY);
    cr_assert_eq(async_future_settled(parent), 0);
    atomic_store(&many_release, 1);
    ASSERT_VAL(async_await(parent), MANY);
    cr_assert_eq(atomic_load(&many_alive), 0);
    free(fs);
    rt_stop();
}
