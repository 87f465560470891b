/* Tests of task groups (async_group_*): waiting for all, first failure
 * cancelling the rest, explicit cancel, EBUSY, freeing with live tasks and
 * bad input. */
#include "helpers.h"

#include <dlfcn.h>
#include <unistd.h>

TestSuite(group, .init = rt_start, .timeout = 30);

static atomic_int counter;

static intptr_t count_task(void *arg) {
    if (async_await(async_usleep(1000 * (unsigned long)(intptr_t)arg)) != 0) return -1;
    atomic_fetch_add(&counter, 1);
    return (intptr_t)arg;
}

/* A task that waits "forever" and records how the wait ended. */
struct sleeper {
    atomic_int *started;
    atomic_int ended;
    intptr_t r;
    int e;
};

static intptr_t sleeper_task(void *arg) {
    struct sleeper *s = arg;
    atomic_fetch_add(s->started, 1);
    errno = 0;
    intptr_t r = async_await(async_sleep(60));
    s->e = errno;
    s->r = r;
    atomic_store(&s->ended, 1);
    errno = s->e;
    return r;
}

static void check_sleepers_cancelled(struct sleeper *s, int n) {
    for (int i = 0; i < n; i++) {
        cr_assert_eq(atomic_load(&s[i].ended), 1, "sleeper %d did not end", i);
        cr_assert(s[i].r == -1 && s[i].e == ECANCELED, "sleeper %d saw %jd/%s", i, (intmax_t)s[i].r,
                  ename(s[i].e));
    }
}

Test(group, all_succeed) {
    async_group_t *g = async_group_new();
    cr_assert_not_null(g);
    for (intptr_t i = 0; i < 20; i++)
        cr_assert_eq(async_group_spawn(g, count_task, (void *)(i % 5), NULL), 0);
    ASSERT_VAL(async_await(async_group_wait(g)), 0);
    cr_assert_eq(atomic_load(&counter), 20);
    async_group_free(g);
    rt_stop();
}

static intptr_t negative_value(void *arg) { return -7; /* a value, not a failure */ }

Test(group, values_other_than_minus_one_are_success) {
    async_group_t *g = async_group_new();
    cr_assert_eq(async_group_spawn(g, negative_value, NULL, NULL), 0);
    cr_assert_eq(async_group_spawn(g, count_task, (void *)0, NULL), 0);
    ASSERT_VAL(async_await(async_group_wait(g)), 0);
    async_group_free(g);
    rt_stop();
}

Test(group, empty_group) {
    async_group_t *g = async_group_new();
    double t0 = now_ms();
    ASSERT_VAL(async_await(async_group_wait(g)), 0);
    cr_assert_lt(now_ms() - t0, 5000);
    async_group_free(g);

    g = async_group_new();
    async_group_free(g); /* never used */
    rt_stop();
}

static intptr_t group_in_task(void *arg) {
    async_group_t *g = async_group_new();
    if (!g) return -1;
    for (intptr_t i = 0; i < 10; i++)
        if (async_group_spawn(g, count_task, (void *)(i % 3), NULL) != 0) return -1;
    intptr_t r = async_await(async_group_wait(g));
    async_group_free(g);
    return r;
}

Test(group, wait_inside_a_task) {
    ASSERT_VAL(async_await(async_spawn(group_in_task, NULL)), 0);
    cr_assert_eq(atomic_load(&counter), 10);
    rt_stop();
}

/* ---- failure --------------------------------------------------------------------- */

struct failer {
    atomic_int *started;
    int want; /* start failing once this many sleepers run */
    int err;
    unsigned delay_ms;
};

static intptr_t failer_task(void *arg) {
    struct failer *f = arg;
    CHECK(TASK_WAIT_UNTIL(atomic_load(f->started) >= f->want, 5000));
    if (f->delay_ms && async_await(async_usleep(f->delay_ms * 1000UL)) != 0)
        return -1; /* cancelled first: errno is ECANCELED */
    errno = f->err;
    return -1;
}

Test(group, first_failure_cancels_the_rest) {
    enum { N = 8 };
    static atomic_int started;
    struct sleeper s[N];
    async_group_t *g = async_group_new();
    for (int i = 0; i < N; i++) {
        s[i] = (struct sleeper){.started = &started};
        cr_assert_eq(async_group_spawn(g, sleeper_task, &s[i], NULL), 0);
    }
    struct failer first = {.started = &started, .want = N, .err = EPIPE};
    struct failer second = {.started = &started, .want = N, .err = EIO, .delay_ms = 300};
    cr_assert_eq(async_group_spawn(g, failer_task, &second, NULL), 0);
    cr_assert_eq(async_group_spawn(g, failer_task, &first, NULL), 0);
    double t0 = now_ms();
    ASSERT_ERR(async_await(async_group_wait(g)), EPIPE);
    cr_assert_lt(now_ms() - t0, 10000);
    check_sleepers_cancelled(s, N);
    async_group_free(g);
    rt_stop();
}

Test(group, failure_before_wait_is_kept) {
    static atomic_int started;
    async_group_t *g = async_group_new();
    struct failer f = {.started = &started, .want = 0, .err = ENOSPC};
    /* the failer last: once it has failed, the group takes no new task, and
     * on another worker it may fail before a second spawn */
    cr_assert_eq(async_group_spawn(g, count_task, (void *)0, NULL), 0);
    cr_assert_eq(async_group_spawn(g, failer_task, &f, NULL), 0);
    sleep_ms(50); /* everything has finished before anyone waits */
    ASSERT_ERR(async_await(async_group_wait(g)), ENOSPC);
    async_group_free(g);
    rt_stop();
}

/* ---- cancel ------------------------------------------------------------------------ */

Test(group, cancel_stops_tasks_and_refuses_new_ones) {
    enum { N = 6 };
    static atomic_int started;
    struct sleeper s[N];
    async_group_t *g = async_group_new();
    for (int i = 0; i < N; i++) {
        s[i] = (struct sleeper){.started = &started};
        cr_assert_eq(async_group_spawn(g, sleeper_task, &s[i], NULL), 0);
    }
    cr_assert(WAIT_UNTIL(atomic_load(&started) == N, 5000));
    async_future_t *w = async_group_wait(g);
    cr_assert_not_null(w);
    sleep_ms(10);
    cr_assert_eq(async_future_settled(w), 0);
    async_group_cancel(g);
    ASSERT_ERR(async_await(w), ECANCELED);
    check_sleepers_cancelled(s, N);

    ASSERT_ERR(async_group_spawn(g, count_task, (void *)0, NULL), ECANCELED);
    async_group_cancel(g); /* twice is harmless */
    sleep_ms(20);
    cr_assert_eq(atomic_load(&counter), 0, "a task spawned after cancel ran");
    async_group_free(g);
    rt_stop();
}

Test(group, cancel_before_wait) {
    enum { N = 4 };
    static atomic_int started;
    struct sleeper s[N];
    async_group_t *g = async_group_new();
    for (int i = 0; i < N; i++) {
        s[i] = (struct sleeper){.started = &started};
        cr_assert_eq(async_group_spawn(g, sleeper_task, &s[i], NULL), 0);
    }
    cr_assert(WAIT_UNTIL(atomic_load(&started) == N, 5000));
    async_group_cancel(g);
    ASSERT_ERR(async_await(async_group_wait(g)), ECANCELED);
    check_sleepers_cancelled(s, N);
    async_group_free(g);
    rt_stop();
}

Test(group, cancel_empty_group) {
    async_group_t *g = async_group_new();
    async_group_cancel(g);
    ASSERT_ERR(async_await(async_group_wait(g)), ECANCELED);
    ASSERT_ERR(async_group_spawn(g, count_task, NULL, NULL), ECANCELED);
    async_group_free(g);
    rt_stop();
}

/* ---- waiting ------------------------------------------------------------------------ */

static intptr_t gated_task(void *arg) { return async_await(arg); }

Test(group, second_pending_wait_is_ebusy) {
    async_group_t *g = async_group_new();
    async_future_t *gate = async_future_new();
    cr_assert_eq(async_group_spawn(g, gated_task, gate, NULL), 0);
    async_future_t *w1 = async_group_wait(g);
    async_future_t *w2 = async_group_wait(g);
    cr_assert_not_null(w2, "EBUSY comes as a failed future");
    ASSERT_ERR(async_await(w2), EBUSY);
    cr_assert_eq(async_future_settled(w1), 0, "the first wait must go on");
    async_future_resolve(gate, 3);
    ASSERT_VAL(async_await(w1), 0);
    async_group_free(g);
    rt_stop();
}

struct late_spawn {
    async_group_t *g;
    atomic_int late_done;
};

static intptr_t late_child(void *arg) {
    struct late_spawn *l = arg;
    if (async_await(async_usleep(50000)) != 0) return -1;
    atomic_store(&l->late_done, 1);
    return 0;
}

static intptr_t spawns_later(void *arg) {
    struct late_spawn *l = arg;
    if (async_await(async_usleep(50000)) != 0) return -1;
    return async_group_spawn(l->g, late_child, l, NULL);
}

Test(group, wait_covers_tasks_spawned_while_waiting) {
    struct late_spawn l = {.g = async_group_new()};
    cr_assert_eq(async_group_spawn(l.g, spawns_later, &l, NULL), 0);
    ASSERT_VAL(async_await(async_group_wait(l.g)), 0);
    cr_assert_eq(atomic_load(&l.late_done), 1,
                 "wait returned before a task spawned meanwhile ended");
    async_group_free(l.g);
    rt_stop();
}

static intptr_t check_opts(void *arg) {
    const char *n = async_task_name(NULL);
    if (!n || strcmp(n, "grouped") != 0 || async_worker_id() != 1) {
        errno = EDOM;
        return -1;
    }
    return 0;
}

Test(group, spawn_options_are_honoured) {
    async_group_t *g = async_group_new();
    unsigned n = (unsigned)async_worker_count();
    async_spawn_opts_t o = {.name = "grouped", .worker = 1};
    for (unsigned i = 0; i < 2 * n; i++)
        cr_assert_eq(async_group_spawn(g, check_opts, NULL, &o), 0);
    ASSERT_VAL(async_await(async_group_wait(g)), 0);
    async_group_free(g);
    rt_stop();
}

/* Many threads spawn into one group at once. */
struct race {
    async_group_t *g;
    atomic_int failures;
};

static void *spawner_thread(void *arg) {
    struct race *r = arg;
    for (int i = 0; i < 250; i++)
        if (async_group_spawn(r->g, count_task, (void *)(intptr_t)(i % 2), NULL) != 0)
            atomic_fetch_add(&r->failures, 1);
    return NULL;
}

Test(group, concurrent_spawners) {
    struct race r = {.g = async_group_new()};
    /* a gate keeps the group non-empty until every spawner is done */
    async_future_t *gate = async_future_new();
    cr_assert_eq(async_group_spawn(r.g, gated_task, gate, NULL), 0);
    pthread_t th[4];
    for (int i = 0; i < 4; i++) th[i] = thread_start(spawner_thread, &r);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    async_future_resolve(gate, 0);
    ASSERT_VAL(async_await(async_group_wait(r.g)), 0);
    cr_assert_eq(atomic_load(&r.failures), 0);
    cr_assert_eq(atomic_load(&counter), 1000);
    async_group_free(r.g);
    rt_stop();
}

/* ---- free --------------------------------------------------------------------------- */

Test(group, free_with_running_tasks_cancels_them) {
    enum { N = 5 };
    static atomic_int started;
    struct sleeper s[N];
    async_group_t *g = async_group_new();
    for (int i = 0; i < N; i++) {
        s[i] = (struct sleeper){.started = &started};
        cr_assert_eq(async_group_spawn(g, sleeper_task, &s[i], NULL), 0);
    }
    cr_assert(WAIT_UNTIL(atomic_load(&started) == N, 5000));
    async_group_free(g);
    bool all = true;
    for (int i = 0; i < N; i++) all = all && WAIT_UNTIL(atomic_load(&s[i].ended), 5000);
    cr_assert(all, "tasks of a freed group must be cancelled and finish");
    check_sleepers_cancelled(s, N);
    rt_stop();
}

Test(group, free_with_tasks_then_shutdown) {
    static atomic_int started;
    struct sleeper s[3];
    async_group_t *g = async_group_new();
    for (int i = 0; i < 3; i++) {
        s[i] = (struct sleeper){.started = &started};
        cr_assert_eq(async_group_spawn(g, sleeper_task, &s[i], NULL), 0);
    }
    async_group_free(g); /* some may not even have started */
    double t0 = now_ms();
    rt_stop();
    cr_assert_lt(now_ms() - t0, 10000);
}

Test(group, free_with_a_pending_wait) {
    static atomic_int started;
    struct sleeper s[3];
    async_group_t *g = async_group_new();
    for (int i = 0; i < 3; i++) {
        s[i] = (struct sleeper){.started = &started};
        cr_assert_eq(async_group_spawn(g, sleeper_task, &s[i], NULL), 0);
    }
    cr_assert(WAIT_UNTIL(atomic_load(&started) == 3, 5000));
    async_future_t *w = async_group_wait(g);
    async_group_free(g); /* the wait's future stays ours and settles */
    cr_assert(WAIT_UNTIL(async_future_settled(w), 5000), "the pending wait never settled");
    ASSERT_ERR(async_await(w), ECANCELED);
    bool all = true;
    for (int i = 0; i < 3; i++) all = all && WAIT_UNTIL(atomic_load(&s[i].ended), 5000);
    cr_assert(all, "tasks of a freed group must be cancelled and finish");
    check_sleepers_cancelled(s, 3);
    rt_stop();
}

/* ---- bad input ----------------------------------------------------------------------- */

Test(group, null_and_bad_arguments) {
    async_group_t *g = async_group_new();
    ASSERT_ERR(async_group_spawn(NULL, count_task, NULL, NULL), EINVAL);
    ASSERT_ERR(async_group_spawn(g, NULL, NULL, NULL), EINVAL);
    async_spawn_opts_t bad = {.worker = (unsigned)async_worker_count() + 1};
    ASSERT_ERR(async_group_spawn(g, count_task, NULL, &bad), EINVAL);
    async_spawn_opts_t huge = {.stack_size = SIZE_MAX};
    ASSERT_ERR(async_group_spawn(g, count_task, NULL, &huge), EINVAL);

    async_future_t *w = async_group_wait(NULL);
    cr_assert_not_null(w, "EINVAL comes as a failed future");
    ASSERT_ERR(async_await(w), EINVAL);
    async_group_cancel(NULL);
    async_group_free(NULL);

    /* the failed spawns left the group empty and usable */
    ASSERT_VAL(async_await(async_group_wait(g)), 0);
    cr_assert_eq(atomic_load(&counter), 0);
    async_group_free(g);
    rt_stop();
}

static intptr_t fails_with_einval(void *arg) {
    (void)arg;
    errno = EINVAL;
    return -1;
}

/* While set, a wakeup posted to a sleeping worker is followed by a pause of
 * the poster, so that a task spawned from a plain thread has ended before
 * async_group_spawn() goes on. Interposes libuv's call, as no public hook
 * can stretch that window. */
static atomic_bool slow_wakeups;

int uv_async_send(void *a); /* libuv's, with its argument opaque here */
int uv_async_send(void *a) {
    static int (*real)(void *);
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "uv_async_send"); /* POSIX's idiom */
    int r = real(a);
    if (atomic_load(&slow_wakeups)) usleep(20000);
    return r;
}

/* A task that fails with EINVAL at once is a member that failed, not bad
 * options, even when it has ended before async_group_spawn() looks at it. */
Test(group, quick_einval_task_from_a_plain_thread_is_a_member) {
    atomic_store(&slow_wakeups, true);
    for (int i = 0; i < 20; i++) {
        async_group_t *g = async_group_new();
        cr_assert_not_null(g);
        cr_assert_eq(async_group_spawn(g, fails_with_einval, NULL, NULL), 0,
                     "round %d: the task was dropped (%s)", i, ename(errno));
        /* its failure cancels the group, as any failure does */
        ASSERT_ERR(async_await(async_group_wait(g)), EINVAL);
        ASSERT_ERR(async_group_spawn(g, count_task, NULL, NULL), ECANCELED);
        async_group_free(g);
    }
    atomic_store(&slow_wakeups, false);
    rt_stop();
}
