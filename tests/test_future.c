/* Tests of future.h: awaiting (in tasks and on plain threads), composition,
 * cancellation, callbacks and user-settled futures, with their bad inputs. */
#include "helpers.h"

TestSuite(future, .init = rt_start, .timeout = 30);

/* ---- helpers ---------------------------------------------------------------- */

/* A pthread that settles or cancels a future after a delay. */
struct later {
    async_future_t *f;
    double delay_ms;
    intptr_t value;
    int err;     /* reject with this when not 0 */
    bool cancel; /* cancel instead of settling */
    int rc;      /* what resolve/reject returned */
    int rc_errno;
    pthread_t self;
};

static void *later_main(void *arg) {
    struct later *l = arg;
    l->self = pthread_self();
    sleep_ms(l->delay_ms);
    errno = 0;
    if (l->cancel)
        async_cancel(l->f);
    else if (l->err)
        l->rc = async_future_reject(l->f, l->err);
    else
        l->rc = async_future_resolve(l->f, l->value);
    l->rc_errno = errno;
    return NULL;
}

static intptr_t task_await_arg(void *arg) { return async_await(arg); }

/* ---- async_await / async_await_ptr ------------------------------------------- */

Test(future, await_null_is_enomem) {
    ASSERT_ERR(async_await(NULL), ENOMEM);
    ASSERT_NULL_ERR(async_await_ptr(NULL), ENOMEM);
    ASSERT_ERR(async_await_timeout(NULL, 10), ENOMEM);
    ASSERT_ERR(async_await_timeout(NULL, -1), ENOMEM);
    rt_stop();
}

Test(future, resolve_then_await) {
    async_future_t *f = async_future_new();
    cr_assert_not_null(f);
    cr_assert_eq(async_future_settled(f), 0);
    cr_assert_eq(async_future_resolve(f, 42), 0);
    cr_assert_eq(async_future_settled(f), 1);
    ASSERT_VAL(async_await(f), 42);

    /* Values other than -1 are values, even negative ones and extremes. */
    ASSERT_VAL(async_await(resolved(-5)), -5);
    ASSERT_VAL(async_await(resolved(-4095)), -4095);
    ASSERT_VAL(async_await(resolved(INTPTR_MAX)), INTPTR_MAX);
    ASSERT_VAL(async_await(resolved(INTPTR_MIN)), INTPTR_MIN);
    ASSERT_VAL(async_await(resolved(0)), 0);
    rt_stop();
}

Test(future, reject_then_await) {
    async_future_t *f = async_future_new();
    cr_assert_not_null(f);
    cr_assert_eq(async_future_reject(f, EPIPE), 0);
    cr_assert_eq(async_future_settled(f), 1);
    ASSERT_ERR(async_await(f), EPIPE);

    f = async_future_new();
    cr_assert_eq(async_future_reject(f, 4000), 0); /* any positive number travels */
    ASSERT_ERR(async_await(f), 4000);
    rt_stop();
}

Test(future, reject_bad_error_settles_with_einval) {
    async_future_t *f = async_future_new();
    ASSERT_ERR(async_future_reject(f, 0), EINVAL);
    cr_assert_eq(async_future_settled(f), 1);
    ASSERT_ERR(async_await(f), EINVAL);

    f = async_future_new();
    ASSERT_ERR(async_future_reject(f, -EIO), EINVAL);
    ASSERT_ERR(async_await(f), EINVAL);
    rt_stop();
}

Test(future, settle_null_is_einval) {
    ASSERT_ERR(async_future_resolve(NULL, 1), EINVAL);
    ASSERT_ERR(async_future_reject(NULL, EIO), EINVAL);
    cr_assert_eq(async_future_settled(NULL), 1);
    async_cancel(NULL);
    async_future_free(NULL);
    rt_stop();
}

static intptr_t return_seven(void *arg) {
    (void)arg;
    return 7;
}

/* Only async_future_new's futures have a settler role to give: a task's
 * future, or a settled library future, is refused and left intact. */
Test(future, settle_foreign_future_is_einval) {
    async_future_t *t = async_spawn(return_seven, NULL);
    cr_assert_not_null(t);
    ASSERT_ERR(async_future_resolve(t, 1), EINVAL);
    ASSERT_ERR(async_future_reject(t, EIO), EINVAL);
    ASSERT_VAL(async_await(t), 7);
    async_future_t *s = async_sleep(0);
    cr_assert_not_null(s);
    ASSERT_ERR(async_future_resolve(s, 1), EINVAL);
    ASSERT_VAL(async_await(s), 0);
    rt_stop();
}

/* The settler's role is played once: a second resolve or reject is refused
 * and touches nothing (it used to drop the owner's reference and free the
 * future under its owner). */
Test(future, second_settle_is_einval_and_harmless) {
    async_future_t *f = async_future_new();
    cr_assert_not_null(f);
    cr_assert_eq(async_future_resolve(f, 1), 0);
    ASSERT_ERR(async_future_resolve(f, 2), EINVAL);
    ASSERT_ERR(async_future_reject(f, EIO), EINVAL);
    ASSERT_ERR(async_future_reject(f, 0), EINVAL);
    ASSERT_VAL(async_await(f), 1);

    f = async_future_new();
    cr_assert_eq(async_future_reject(f, EPIPE), 0);
    ASSERT_ERR(async_future_resolve(f, 2), EINVAL);
    ASSERT_ERR(async_await(f), EPIPE);

    /* cancelled: the first settle reports ECANCELED and ends the role, the next is refused */
    f = async_future_new();
    async_cancel(f);
    ASSERT_ERR(async_future_resolve(f, 1), ECANCELED);
    ASSERT_ERR(async_future_resolve(f, 1), EINVAL);
    ASSERT_ERR(async_future_reject(f, EIO), EINVAL);
    ASSERT_ERR(async_await(f), ECANCELED);
    rt_stop();
}

/* While a task waits on a user future, a second resolve must not free it. */
Test(future, second_settle_while_awaited) {
    async_future_t *u = async_future_new();
    async_future_t *t = async_spawn(task_await_arg, u);
    cr_assert_not_null(t);
    sleep_ms(20);
    cr_assert_eq(async_future_resolve(u, 9), 0);
    ASSERT_ERR(async_future_resolve(u, 10), EINVAL);
    ASSERT_VAL(async_await(t), 9);
    rt_stop();
}

/* Once both roles are over the future is gone: a settle that comes later is
 * refused while the memory has not been reused (best effort: nothing can tell
 * a reused one apart). */
Test(future, settle_after_both_roles_ended_is_einval) {
    async_future_t *f = async_future_new(); /* owner first, then the settler */
    async_future_free(f);
    cr_assert_eq(async_future_resolve(f, 1), 0);
    ASSERT_ERR(async_future_resolve(f, 2), EINVAL);
    ASSERT_ERR(async_future_reject(f, EIO), EINVAL);

    f = async_future_new(); /* settler first, then the owner */
    cr_assert_eq(async_future_reject(f, EIO), 0);
    async_future_free(f);
    ASSERT_ERR(async_future_resolve(f, 2), EINVAL);

    f = async_future_new(); /* settled, then awaited */
    cr_assert_eq(async_future_resolve(f, 3), 0);
    ASSERT_VAL(async_await(f), 3);
    ASSERT_ERR(async_future_resolve(f, 4), EINVAL);
    rt_stop();
}

Test(future, await_ptr) {
    static int x;
    void *p = async_await_ptr(resolved((intptr_t)&x));
    cr_assert_eq(p, &x);

    async_future_t *f = async_future_new();
    async_future_reject(f, ENOENT);
    ASSERT_NULL_ERR(async_await_ptr(f), ENOENT);
    rt_stop();
}

Test(future, settled_while_pending_and_after) {
    async_future_t *f = async_future_new();
    cr_assert_eq(async_future_settled(f), 0);
    cr_assert_eq(async_future_settled(f), 0, "settled() must not consume or change the future");
    async_future_resolve(f, 1);
    cr_assert_eq(async_future_settled(f), 1);
    ASSERT_VAL(async_await(f), 1);
    rt_stop();
}

/* ---- awaiting on plain threads and across threads ---------------------------- */

Test(future, main_blocks_until_pthread_resolves) {
    async_future_t *f = async_future_new();
    struct later l = {.f = f, .delay_ms = 100, .value = 7};
    double t0 = now_ms();
    pthread_t th = thread_start(later_main, &l);
    intptr_t v = async_await(f);
    double dt = now_ms() - t0;
    pthread_join(th, NULL);
    cr_assert_eq(v, 7);
    cr_assert_eq(l.rc, 0);
    cr_assert(dt >= 99 && dt < 5000, "await returned after %.1f ms", dt);
    rt_stop();
}

Test(future, main_blocks_until_pthread_rejects) {
    async_future_t *f = async_future_new();
    struct later l = {.f = f, .delay_ms = 50, .err = ECONNRESET};
    pthread_t th = thread_start(later_main, &l);
    ASSERT_ERR(async_await(f), ECONNRESET);
    pthread_join(th, NULL);
    rt_stop();
}

Test(future, task_awaits_future_resolved_by_pthread) {
    async_future_t *f = async_future_new();
    async_future_t *t = async_spawn(task_await_arg, f);
    struct later l = {.f = f, .delay_ms = 50, .value = 99};
    pthread_t th = thread_start(later_main, &l);
    ASSERT_VAL(async_await(t), 99);
    pthread_join(th, NULL);
    cr_assert_eq(l.rc, 0);
    rt_stop();
}

struct foreign_await {
    async_future_t *f;
    intptr_t v;
    int err;
};

static void *foreign_await_main(void *arg) {
    struct foreign_await *a = arg;
    errno = 0;
    a->v = async_await(a->f);
    a->err = errno;
    return NULL;
}

static intptr_t task_sleep_then_return(void *arg) {
    if (async_await(async_usleep(20000)) != 0) return -1;
    return (intptr_t)arg;
}

Test(future, foreign_thread_awaits_task) {
    struct foreign_await a = {.f = async_spawn(task_sleep_then_return, (void *)31)};
    pthread_t th = thread_start(foreign_await_main, &a);
    pthread_join(th, NULL);
    cr_assert_eq(a.v, 31, "got %jd/%s", (intmax_t)a.v, ename(a.err));
    rt_stop();
}

Test(future, foreign_thread_awaits_future_resolved_by_main) {
    struct foreign_await a = {.f = async_future_new()};
    pthread_t th = thread_start(foreign_await_main, &a);
    sleep_ms(30);
    cr_assert_eq(async_future_resolve(a.f, 12), 0);
    pthread_join(th, NULL);
    cr_assert_eq(a.v, 12);
    rt_stop();
}

/* Many threads settle many futures while tasks on every worker await them. */
#define XT_THREADS 4
#define XT_PER 500
static async_future_t *xt_futs[XT_THREADS * XT_PER];

static void *xt_settler(void *arg) {
    intptr_t k = (intptr_t)arg;
    for (int i = 0; i < XT_PER; i++) {
        int idx = (int)k * XT_PER + i;
        if (idx % 7 == 0)
            CHECK_EQ(async_future_reject(xt_futs[idx], EAGAIN), 0);
        else
            CHECK_EQ(async_future_resolve(xt_futs[idx], idx), 0);
    }
    return NULL;
}

static intptr_t xt_waiter(void *arg) {
    intptr_t idx = (intptr_t)arg;
    errno = 0;
    intptr_t v = async_await(xt_futs[idx]);
    if (idx % 7 == 0) {
        CHECK(v == -1 && errno == EAGAIN);
        return 0;
    }
    CHECK_EQ(v, idx);
    return v == idx ? 0 : -1;
}

Test(future, many_futures_settled_from_many_threads) {
    enum { N = XT_THREADS * XT_PER };
    static async_future_t *tasks[N];
    for (int i = 0; i < N; i++) {
        xt_futs[i] = async_future_new();
        cr_assert_not_null(xt_futs[i]);
    }
    for (int i = 0; i < N; i++) tasks[i] = async_spawn(xt_waiter, (void *)(intptr_t)i);
    pthread_t th[XT_THREADS];
    for (intptr_t k = 0; k < XT_THREADS; k++) th[k] = thread_start(xt_settler, (void *)k);
    for (int k = 0; k < XT_THREADS; k++) pthread_join(th[k], NULL);
    cr_assert_eq(async_await_all(tasks, N, NULL, NULL), 0);
    rt_stop();
}

/* ---- async_cancel -------------------------------------------------------------- */

Test(future, cancel_user_future_settles_at_once) {
    async_future_t *f = async_future_new();
    async_cancel(f);
    cr_assert_eq(async_future_settled(f), 1, "a cancelled user future settles at once");
    ASSERT_ERR(async_future_resolve(f, 5), ECANCELED);
    ASSERT_ERR(async_await(f), ECANCELED);

    /* The other order: await first, the settler comes later. */
    f = async_future_new();
    async_cancel(f);
    async_cancel(f); /* twice is harmless */
    ASSERT_ERR(async_await(f), ECANCELED);
    ASSERT_ERR(async_future_reject(f, EIO), ECANCELED);
    rt_stop();
}

Test(future, cancel_settled_future_keeps_result) {
    async_future_t *f = resolved(3);
    async_cancel(f);
    ASSERT_VAL(async_await(f), 3);

    f = async_future_new();
    async_future_reject(f, EIO);
    async_cancel(f);
    ASSERT_ERR(async_await(f), EIO);
    rt_stop();
}

Test(future, cancel_from_pthread_wakes_blocked_await) {
    async_future_t *f = async_future_new();
    struct later l = {.f = f, .delay_ms = 50, .cancel = true};
    double t0 = now_ms();
    pthread_t th = thread_start(later_main, &l);
    ASSERT_ERR(async_await(f), ECANCELED);
    cr_assert_lt(now_ms() - t0, 5000);
    pthread_join(th, NULL);
    ASSERT_ERR(async_future_resolve(f, 1), ECANCELED);
    rt_stop();
}

Test(future, cancel_sleep) {
    async_future_t *s = async_sleep(60);
    cr_assert_not_null(s);
    double t0 = now_ms();
    async_cancel(s);
    ASSERT_ERR(async_await(s), ECANCELED);
    cr_assert_lt(now_ms() - t0, 5000);
    rt_stop();
}

/* ---- async_future_free ------------------------------------------------------------ */

Test(future, free_pending_user_future_then_resolve) {
    async_future_t *f = async_future_new();
    async_future_free(f); /* owner done first: the settler still may settle */
    ASSERT_VAL(async_future_resolve(f, 1), 0);

    f = async_future_new();
    async_future_free(f);
    ASSERT_VAL(async_future_reject(f, EIO), 0);

    f = async_future_new();
    cr_assert_eq(async_future_resolve(f, 1), 0); /* settler first, then owner */
    async_future_free(f);
    rt_stop();
}

Test(future, free_pending_sleep_detaches) {
    async_future_free(async_sleep(60));
    async_future_free(async_usleep(1000));
    /* shutdown must neither wait 60 s nor leak the timer */
    double t0 = now_ms();
    rt_stop();
    cr_assert_lt(now_ms() - t0, 10000);
}

/* ---- async_await_any ------------------------------------------------------------- */

Test(future, await_any_bad_input) {
    async_future_t *f = async_future_new();
    ASSERT_ERR(async_await_any(NULL, 1), EINVAL);
    ASSERT_ERR(async_await_any(&f, 0), EINVAL);
    ASSERT_ERR(async_await_any(NULL, 0), EINVAL);
    cr_assert_eq(async_future_settled(f), 0, "a failed await_any leaves the futures alone");
    async_future_resolve(f, 1);
    ASSERT_VAL(async_await(f), 1);
    rt_stop();
}

Test(future, await_any_null_entry_counts_as_settled) {
    async_future_t *fs[2] = {async_future_new(), NULL};
    ASSERT_VAL(async_await_any(fs, 2), 1);
    ASSERT_ERR(async_await(fs[1]), ENOMEM);
    cr_assert_eq(async_future_settled(fs[0]), 0);
    async_future_resolve(fs[0], 2);
    ASSERT_VAL(async_await(fs[0]), 2);
    rt_stop();
}

Test(future, await_any_lowest_settled_index_and_not_consumed) {
    async_future_t *fs[4];
    for (int i = 0; i < 4; i++) fs[i] = async_future_new();
    async_future_resolve(fs[3], 30);
    async_future_reject(fs[1], EIO);
    ASSERT_VAL(async_await_any(fs, 4), 1);
    ASSERT_VAL(async_await_any(fs, 4), 1); /* nothing was consumed */
    cr_assert_eq(async_future_settled(fs[0]), 0);
    cr_assert_eq(async_future_settled(fs[2]), 0);
    ASSERT_VAL(async_await_any(fs + 2, 2), 1);
    async_future_resolve(fs[0], 0);
    async_future_resolve(fs[2], 20);
    ASSERT_VAL(async_await(fs[0]), 0);
    ASSERT_ERR(async_await(fs[1]), EIO);
    ASSERT_VAL(async_await(fs[2]), 20);
    ASSERT_VAL(async_await(fs[3]), 30);
    rt_stop();
}

Test(future, await_any_blocks_main_until_pthread_settles) {
    async_future_t *fs[3] = {async_future_new(), async_future_new(), async_future_new()};
    struct later l = {.f = fs[2], .delay_ms = 60, .value = 5};
    double t0 = now_ms();
    pthread_t th = thread_start(later_main, &l);
    ASSERT_VAL(async_await_any(fs, 3), 2);
    double dt = now_ms() - t0;
    pthread_join(th, NULL);
    cr_assert(dt >= 59 && dt < 5000, "await_any returned after %.1f ms", dt);
    ASSERT_VAL(async_await(fs[2]), 5);
    async_future_free(fs[0]);
    async_future_free(fs[1]);
    async_future_resolve(fs[0], 0);
    async_future_resolve(fs[1], 0);
    rt_stop();
}

struct any_in_task {
    async_future_t *user;
    int idx;
    intptr_t sleep_result;
    int sleep_errno;
};

static intptr_t any_in_task_fn(void *arg) {
    struct any_in_task *a = arg;
    async_future_t *fs[2] = {async_sleep(60), a->user};
    a->idx = async_await_any(fs, 2);
    CHECK_EQ(async_future_settled(fs[0]), 0);
    async_cancel(fs[0]);
    errno = 0;
    a->sleep_result = async_await(fs[0]);
    a->sleep_errno = errno;
    return async_await(fs[1]);
}

Test(future, await_any_in_task) {
    struct any_in_task a = {.user = async_future_new()};
    async_future_t *t = async_spawn(any_in_task_fn, &a);
    sleep_ms(20);
    cr_assert_eq(async_future_settled(t), 0, "the task must be waiting");
    cr_assert_eq(async_future_resolve(a.user, 77), 0);
    ASSERT_VAL(async_await(t), 77);
    cr_assert_eq(a.idx, 1);
    cr_assert(a.sleep_result == -1 && a.sleep_errno == ECANCELED, "sleep gave %jd/%s",
              (intmax_t)a.sleep_result, ename(a.sleep_errno));
    rt_stop();
}

/* ---- async_await_all ---------------------------------------------------------------- */

Test(future, await_all_results_and_first_error) {
    async_future_t *fs[5] = {resolved(1), async_future_new(), async_future_new(), NULL,
                             resolved(-7)};
    async_future_reject(fs[1], EPIPE);
    async_future_reject(fs[2], EIO);
    intptr_t results[5];
    int errors[5];
    memset(results, 0x55, sizeof results);
    memset(errors, 0x55, sizeof errors);
    ASSERT_ERR(async_await_all(fs, 5, results, errors), EPIPE);
    cr_assert_eq(results[0], 1);
    cr_assert_eq(errors[0], 0);
    cr_assert_eq(results[1], -1);
    cr_assert_eq(errors[1], EPIPE);
    cr_assert_eq(results[2], -1);
    cr_assert_eq(errors[2], EIO);
    cr_assert_eq(results[3], -1);
    cr_assert_eq(errors[3], ENOMEM);
    cr_assert_eq(results[4], -7);
    cr_assert_eq(errors[4], 0);
    rt_stop();
}

Test(future, await_all_success_and_null_arrays) {
    async_future_t *fs[3] = {resolved(1), resolved(2), resolved(3)};
    intptr_t results[3];
    ASSERT_VAL(async_await_all(fs, 3, results, NULL), 0);
    cr_assert(results[0] == 1 && results[1] == 2 && results[2] == 3);

    async_future_t *gs[2] = {resolved(1), async_future_new()};
    async_future_reject(gs[1], ENOSPC);
    ASSERT_ERR(async_await_all(gs, 2, NULL, NULL), ENOSPC);
    rt_stop();
}

Test(future, await_all_empty_and_bad_input) {
    ASSERT_VAL(async_await_all(NULL, 0, NULL, NULL), 0);
    async_future_t *none[1] = {NULL};
    ASSERT_VAL(async_await_all(none, 0, NULL, NULL), 0);
    ASSERT_ERR(async_await_all(NULL, 2, NULL, NULL), EINVAL);
    rt_stop();
}

Test(future, await_all_blocks_main_until_pthreads_settle) {
    async_future_t *fs[3] = {async_future_new(), async_future_new(), async_usleep(30000)};
    struct later l0 = {.f = fs[0], .delay_ms = 80, .value = 10};
    struct later l1 = {.f = fs[1], .delay_ms = 40, .value = 11};
    double t0 = now_ms();
    pthread_t a = thread_start(later_main, &l0), b = thread_start(later_main, &l1);
    intptr_t results[3];
    ASSERT_VAL(async_await_all(fs, 3, results, NULL), 0);
    double dt = now_ms() - t0;
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    cr_assert(dt >= 79 && dt < 5000, "await_all returned after %.1f ms", dt);
    cr_assert(results[0] == 10 && results[1] == 11 && results[2] == 0);
    rt_stop();
}

static intptr_t all_sleeps_fn(void *arg) {
    async_future_t *fs[3] = {async_usleep(10000), async_usleep(40000), async_usleep(20000)};
    double t0 = now_ms();
    int r = async_await_all(fs, 3, NULL, NULL);
    double dt = now_ms() - t0;
    CHECK(dt >= 39 && dt < 5000);
    return r;
}

Test(future, await_all_in_task) {
    ASSERT_VAL(async_await(async_spawn(all_sleeps_fn, NULL)), 0);
    rt_stop();
}

/* ---- async_await_timeout ------------------------------------------------------------- */

Test(future, await_timeout_expires_and_cancels) {
    async_future_t *f = async_future_new();
    double t0 = now_ms();
    ASSERT_ERR(async_await_timeout(f, 50), ETIMEDOUT);
    double dt = now_ms() - t0;
    cr_assert(dt >= 49 && dt < 5000, "timed out after %.1f ms", dt);
    /* The timeout cancelled the future: its settler learns that. */
    ASSERT_ERR(async_future_resolve(f, 1), ECANCELED);
    rt_stop();
}

Test(future, await_timeout_on_sleep) {
    double t0 = now_ms();
    ASSERT_ERR(async_await_timeout(async_sleep(60), 50), ETIMEDOUT);
    cr_assert_lt(now_ms() - t0, 5000);
    ASSERT_VAL(async_await_timeout(async_usleep(1000), 5000), 0);
    rt_stop();
}

Test(future, await_timeout_settled_in_time) {
    ASSERT_VAL(async_await_timeout(resolved(8), 0), 8);
    ASSERT_VAL(async_await_timeout(resolved(9), 1000), 9);

    async_future_t *f = async_future_new();
    async_future_reject(f, EBADF);
    ASSERT_ERR(async_await_timeout(f, 0), EBADF);

    f = async_future_new();
    struct later l = {.f = f, .delay_ms = 20, .value = 4};
    pthread_t th = thread_start(later_main, &l);
    ASSERT_VAL(async_await_timeout(f, 5000), 4);
    pthread_join(th, NULL);
    rt_stop();
}

Test(future, await_timeout_negative_waits_without_limit) {
    async_future_t *f = async_future_new();
    struct later l = {.f = f, .delay_ms = 100, .value = 6};
    double t0 = now_ms();
    pthread_t th = thread_start(later_main, &l);
    ASSERT_VAL(async_await_timeout(f, -1), 6);
    cr_assert_geq(now_ms() - t0, 99);
    pthread_join(th, NULL);
    rt_stop();
}

struct timeout_in_task {
    async_future_t *user;
    double ms;
};

static intptr_t timeout_in_task_fn(void *arg) {
    struct timeout_in_task *a = arg;
    double t0 = now_ms();
    intptr_t r = async_await_timeout(a->user, 50);
    int e = errno;
    a->ms = now_ms() - t0;
    errno = e;
    return r;
}

Test(future, await_timeout_in_task) {
    struct timeout_in_task a = {.user = async_future_new()};
    ASSERT_ERR(async_await(async_spawn(timeout_in_task_fn, &a)), ETIMEDOUT);
    cr_assert(a.ms >= 49 && a.ms < 5000, "timed out after %.1f ms", a.ms);
    ASSERT_ERR(async_future_resolve(a.user, 1), ECANCELED);

    a.user = resolved(13);
    ASSERT_VAL(async_await(async_spawn(timeout_in_task_fn, &a)), 13);
    rt_stop();
}

/* ---- async_future_then ------------------------------------------------------------------ */

struct then_rec {
    atomic_int calls;
    intptr_t value;
    int err;
    pthread_t thread;
    unsigned worker;
    async_future_t *forward; /* resolved with value + 100 when set */
};

static void then_cb(intptr_t value, int err, void *arg) {
    struct then_rec *r = arg;
    r->value = value;
    r->err = err;
    r->thread = pthread_self();
    r->worker = async_worker_id();
    atomic_fetch_add(&r->calls, 1);
    if (r->forward) CHECK_EQ(async_future_resolve(r->forward, err ? -err : value + 100), 0);
}

Test(future, then_on_settled_runs_at_once_on_caller) {
    struct then_rec r = {0};
    cr_assert_eq(async_future_then(resolved(5), then_cb, &r), 0);
    cr_assert_eq(atomic_load(&r.calls), 1, "callback must have run before then() returned");
    cr_assert_eq(r.value, 5);
    cr_assert_eq(r.err, 0);
    cr_assert(pthread_equal(r.thread, pthread_self()));

    struct then_rec q = {0};
    async_future_t *f = async_future_new();
    async_future_reject(f, EIO);
    cr_assert_eq(async_future_then(f, then_cb, &q), 0);
    cr_assert_eq(atomic_load(&q.calls), 1);
    cr_assert_eq(q.value, -1);
    cr_assert_eq(q.err, EIO);
    rt_stop();
}

Test(future, then_on_pending_runs_on_settling_thread) {
    struct then_rec r = {0};
    async_future_t *f = async_future_new();
    cr_assert_eq(async_future_then(f, then_cb, &r), 0);
    sleep_ms(20);
    cr_assert_eq(atomic_load(&r.calls), 0, "callback ran before the future settled");
    struct later l = {.f = f, .delay_ms = 10, .value = 21};
    pthread_t th = thread_start(later_main, &l);
    pthread_join(th, NULL);
    cr_assert_eq(l.rc, 0);
    cr_assert_eq(atomic_load(&r.calls), 1);
    cr_assert_eq(r.value, 21);
    cr_assert_eq(r.err, 0);
    cr_assert(pthread_equal(r.thread, l.self), "the callback runs on the thread that settles");
    rt_stop();
}

Test(future, then_on_pending_rejected) {
    struct then_rec r = {0};
    async_future_t *f = async_future_new();
    cr_assert_eq(async_future_then(f, then_cb, &r), 0);
    cr_assert_eq(atomic_load(&r.calls), 0);
    cr_assert_eq(async_future_reject(f, ETIMEDOUT), 0);
    cr_assert_eq(atomic_load(&r.calls), 1);
    cr_assert(r.value == -1 && r.err == ETIMEDOUT);
    rt_stop();
}

Test(future, then_on_cancelled_sleep) {
    struct then_rec r = {.forward = async_future_new()};
    async_future_t *fwd = r.forward;
    async_future_t *s = async_sleep(60);
    async_cancel(s); /* cancel does not consume: then() still may take it */
    cr_assert_eq(async_future_then(s, then_cb, &r), 0);
    ASSERT_VAL(async_await(fwd), -ECANCELED);
    cr_assert(r.value == -1 && r.err == ECANCELED);
    rt_stop();
}

static intptr_t then_on_timer_in_task(void *arg) {
    struct then_rec *r = arg;
    CHECK_EQ(async_future_then(async_usleep(20000), then_cb, r), 0);
    return async_worker_id();
}

/* A timer settles on the thread that holds it: the task's worker for a task's,
 * the runtime's own thread for a plain thread's (never the caller's). */
Test(future, then_on_timer_runs_on_the_runtime) {
    struct then_rec r = {.forward = async_future_new()};
    async_future_t *fwd = r.forward;
    cr_assert_eq(async_future_then(async_usleep(20000), then_cb, &r), 0);
    ASSERT_VAL(async_await(fwd), 100);
    cr_assert_eq(atomic_load(&r.calls), 1);
    cr_assert(!pthread_equal(r.thread, pthread_self()));
    cr_assert_eq(r.worker, 0, "a plain thread's timer is not on a task worker");

    struct then_rec q = {.forward = async_future_new()};
    fwd = q.forward;
    intptr_t w = async_await(async_spawn(then_on_timer_in_task, &q));
    cr_assert_geq(w, 1);
    ASSERT_VAL(async_await(fwd), 100);
    cr_assert_eq(q.worker, (unsigned)w, "a task's timer settles on its worker");
    rt_stop();
}

static intptr_t return_arg(void *arg) { return (intptr_t)arg; }

Test(future, then_on_task_future) {
    struct then_rec r = {.forward = async_future_new()};
    async_future_t *fwd = r.forward;
    cr_assert_eq(async_future_then(async_spawn(return_arg, (void *)23), then_cb, &r), 0);
    ASSERT_VAL(async_await(fwd), 123);
    rt_stop();
}

static intptr_t resolve_arg_task(void *arg) { return async_future_resolve(arg, 55) == 0 ? 0 : -1; }

static void spawning_cb(intptr_t value, int err, void *arg) {
    CHECK_EQ(err, 0);
    async_future_free(async_spawn(resolve_arg_task, arg)); /* callbacks may spawn */
}

Test(future, then_callback_may_spawn) {
    async_future_t *done = async_future_new();
    cr_assert_eq(async_future_then(async_usleep(1000), spawning_cb, done), 0);
    ASSERT_VAL(async_await(done), 55);

    done = async_future_new();
    cr_assert_eq(async_future_then(resolved(0), spawning_cb, done), 0);
    ASSERT_VAL(async_await(done), 55);
    rt_stop();
}

Test(future, then_null_callback_is_einval_and_frees) {
    ASSERT_ERR(async_future_then(resolved(1), NULL, NULL), EINVAL);
    /* a pending one is freed too (detached); its settler may still settle */
    async_future_t *f = async_future_new();
    ASSERT_ERR(async_future_then(f, NULL, NULL), EINVAL);
    cr_assert_eq(async_future_resolve(f, 1), 0);
    rt_stop();
}

Test(future, then_null_future_calls_back_with_enomem) {
    struct then_rec r = {0};
    ASSERT_ERR(async_future_then(NULL, then_cb, &r), ENOMEM);
    cr_assert_eq(atomic_load(&r.calls), 1, "cb must be called with ENOMEM before returning");
    cr_assert_eq(r.value, -1);
    cr_assert_eq(r.err, ENOMEM);
    rt_stop();
}

/* ---- errno across a successful wait -------------------------------------------- */

/* While one task waits, another on the same worker fails a call: the waiter
 * must come back with the errno it had, as from a libc call that succeeds
 * (`errno = 0; while ((e = readdir(d))) ...; if (errno)` depends on it). */
static intptr_t clobber_errno(void *arg) {
    (void)arg;
    errno = 0;
    close(-1); /* EBADF on this worker's thread */
    return errno;
}

static intptr_t errno_kept_fn(void *arg) {
    (void)arg;
    intptr_t fails = 0;
    for (int round = 0; round < 4; round++) {
        async_spawn_opts_t here = {.worker = async_worker_id()};
        async_future_t *other = async_spawn_opts(clobber_errno, NULL, &here);
        errno = 4321;
        intptr_t v;
        switch (round) {
        case 0:
            v = async_await(async_sleep(5));
            break;
        case 1: {
            async_future_t *fs[1] = {async_sleep(5)};
            v = async_await_any(fs, 1);
            async_future_free(fs[0]);
            break;
        }
        case 2: {
            async_future_t *fs[1] = {async_sleep(5)};
            v = async_await_all(fs, 1, NULL, NULL);
            break;
        }
        default:
            v = async_await_timeout(async_sleep(5), 5000);
            break;
        }
        if (v != 0 || errno != 4321) fails++;
        if (async_await(other) != EBADF) fails += 100; /* the clobber really ran */
    }
    return fails;
}

Test(future, errno_kept_across_a_successful_wait_in_a_task) {
    async_spawn_opts_t o = {.worker = 1};
    ASSERT_VAL(async_await(async_spawn_opts(errno_kept_fn, NULL, &o)), 0);
    rt_stop();
}

Test(future, errno_kept_across_a_successful_wait_on_a_thread) {
    for (int i = 0; i < 20; i++) {
        errno = 4321;
        intptr_t v = async_await(async_usleep(200));
        cr_assert_eq(v, 0);
        cr_assert_eq(errno, 4321, "round %d: errno %d", i, errno);
        async_future_t *fs[1] = {async_usleep(200)};
        errno = 4321;
        cr_assert_eq(async_await_all(fs, 1, NULL, NULL), 0);
        cr_assert_eq(errno, 4321, "round %d: errno %d after await_all", i, errno);
    }
    rt_stop();
}
