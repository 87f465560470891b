/* Tests of async_mutex_*: results and errors, the settled fast path, FIFO
 * hand-off, cancellation and timeouts (including a cancel racing a hand-off),
 * the error-checking and recursive types, and contention between tasks on
 * every worker and plain threads. */
#include "helpers.h"

TestSuite(mutex, .timeout = 30);

static struct timespec in_ms(long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    } else if (ts.tv_nsec < 0) {
        ts.tv_sec--;
        ts.tv_nsec += 1000000000L;
    }
    return ts;
}

Test(mutex, lock_trylock_unlock, .init = rt_start) {
    async_mutex_t m = ASYNC_MUTEX_INITIALIZER;
    async_future_t *f = async_mutex_lock(&m);
    cr_assert(async_future_settled(f), "an uncontended lock is settled at once");
    ASSERT_VAL(async_await(f), 0);
    ASSERT_ERR(async_mutex_trylock(&m), EBUSY);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_ERR(async_mutex_unlock(&m), EPERM);
    ASSERT_VAL(async_mutex_trylock(&m), 0);
    ASSERT_ERR(async_mutex_destroy(&m), EBUSY);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_mutex_destroy(&m), 0);
    rt_stop();
}

Test(mutex, bad_input, .init = rt_start) {
    async_mutex_t m;
    ASSERT_ERR(async_mutex_init(NULL, NULL), EINVAL);
    ASSERT_ERR(async_await(async_mutex_lock(NULL)), EINVAL);
    ASSERT_ERR(async_await(async_mutex_timedlock(NULL, NULL)), EINVAL);
    ASSERT_ERR(async_mutex_trylock(NULL), EINVAL);
    ASSERT_ERR(async_mutex_unlock(NULL), EINVAL);
    ASSERT_ERR(async_mutex_destroy(NULL), EINVAL);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    ASSERT_ERR(async_mutex_init(&m, &a), ENOTSUP);
    pthread_mutexattr_destroy(&a);
    /* a destroyed mutex refuses every use until it is initialised again */
    ASSERT_VAL(async_mutex_init(&m, NULL), 0);
    ASSERT_VAL(async_mutex_destroy(&m), 0);
    ASSERT_ERR(async_await(async_mutex_lock(&m)), EINVAL);
    ASSERT_ERR(async_mutex_trylock(&m), EINVAL);
    ASSERT_ERR(async_mutex_unlock(&m), EINVAL);
    ASSERT_ERR(async_mutex_destroy(&m), EINVAL);
    ASSERT_VAL(async_mutex_init(&m, NULL), 0);
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    /* a bad abstime is only looked at when the lock must wait */
    struct timespec bad = {0, 2000000000L};
    ASSERT_ERR(async_await(async_mutex_timedlock(&m, &bad)), EINVAL);
    ASSERT_ERR(async_await(async_mutex_timedlock(&m, NULL)), EINVAL);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_await(async_mutex_timedlock(&m, &bad)), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    rt_stop();
}

/* Waiters queued from this thread (lock only returns a future) are served in order. */
Test(mutex, fifo_hand_off, .init = rt_start) {
    async_mutex_t m = ASYNC_MUTEX_INITIALIZER;
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    async_future_t *f[5];
    for (int i = 0; i < 5; i++) {
        f[i] = async_mutex_lock(&m);
        cr_assert_not_null(f[i]);
        cr_assert(!async_future_settled(f[i]));
    }
    ASSERT_ERR(async_mutex_trylock(&m), EBUSY);
    for (int i = 0; i < 5; i++) {
        ASSERT_VAL(async_mutex_unlock(&m), 0);
        cr_assert(async_future_settled(f[i]), "unlock hands the mutex to waiter %d", i);
        for (int j = i + 1; j < 5; j++) cr_assert(!async_future_settled(f[j]));
        ASSERT_ERR(async_mutex_trylock(&m), EBUSY); /* the mutex stayed locked */
        ASSERT_VAL(async_await(f[i]), 0);
    }
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_mutex_trylock(&m), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    rt_stop();
}

Test(mutex, cancel_queued_waiter, .init = rt_start) {
    async_mutex_t m = ASYNC_MUTEX_INITIALIZER;
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    async_future_t *a = async_mutex_lock(&m), *b = async_mutex_lock(&m), *c = async_mutex_lock(&m);
    async_cancel(b);
    ASSERT_ERR(async_await(b), ECANCELED);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_await(a), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    async_cancel(c); /* already granted: nothing happens */
    ASSERT_VAL(async_await(c), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    /* the last waiter cancelled: the mutex is free after the holder's unlock */
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    a = async_mutex_lock(&m);
    async_cancel(a);
    ASSERT_ERR(async_await(a), ECANCELED);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_mutex_trylock(&m), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_mutex_destroy(&m), 0);
    rt_stop();
}

/* Granted, then cancelled: the grant wins and the waiter holds the mutex. */
Test(mutex, cancel_after_grant_keeps_it, .init = rt_start) {
    async_mutex_t m = ASYNC_MUTEX_INITIALIZER;
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    async_future_t *a = async_mutex_lock(&m);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    async_cancel(a);
    ASSERT_VAL(async_await(a), 0);
    ASSERT_ERR(async_mutex_trylock(&m), EBUSY);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    rt_stop();
}

Test(mutex, timedlock, .init = rt_start) {
    async_mutex_t m = ASYNC_MUTEX_INITIALIZER;
    struct timespec ts = in_ms(50);
    ASSERT_VAL(async_await(async_mutex_timedlock(&m, &ts)), 0);
    double t0 = now_ms();
    ts = in_ms(50);
    ASSERT_ERR(async_await(async_mutex_timedlock(&m, &ts)), ETIMEDOUT);
    double dt = now_ms() - t0;
    cr_assert(dt >= 45 && dt < 2000, "timed out after %.1f ms", dt);
    struct timespec past = in_ms(-10);
    ASSERT_ERR(async_await(async_mutex_timedlock(&m, &past)), ETIMEDOUT);
    /* a waiter that times out leaves the queue: the next one is served */
    ts = in_ms(30);
    async_future_t *a = async_mutex_timedlock(&m, &ts);
    async_future_t *b = async_mutex_lock(&m);
    ASSERT_ERR(async_await(a), ETIMEDOUT);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_await(b), 0);
    /* a timed waiter granted in time succeeds and its timer is dropped */
    ts = in_ms(5000);
    a = async_mutex_timedlock(&m, &ts);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_await(a), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    /* async_await_timeout on a plain lock does the same */
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    ASSERT_ERR(async_await_timeout(async_mutex_lock(&m), 20), ETIMEDOUT);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_mutex_trylock(&m), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    rt_stop();
}

static intptr_t lock_in_task(void *arg) { return async_await(async_mutex_lock(arg)); }

/* pthread_mutex_lock is no cancellation point: a cancelled task's lock wait
 * goes on and completes (test_sync_cancel.c has the rest of the list). */
Test(mutex, cancelled_task_still_gets_the_lock, .init = rt_start) {
    async_mutex_t m = ASYNC_MUTEX_INITIALIZER;
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    async_future_t *t = async_spawn(lock_in_task, &m);
    sleep_ms(20);
    async_cancel(t);
    sleep_ms(20);
    cr_assert(!async_future_settled(t), "the cancelled task stopped waiting for the lock");
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_await(t), 0);
    ASSERT_ERR(async_mutex_trylock(&m), EBUSY); /* the task ended holding it */
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_mutex_trylock(&m), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    rt_stop();
}

static intptr_t errorcheck_other(void *arg) {
    CHECK_ERR(async_mutex_unlock(arg), EPERM);
    CHECK_ERR(async_mutex_trylock(arg), EBUSY);
    return 0;
}

Test(mutex, errorcheck_and_recursive, .init = rt_start) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    async_mutex_t m;
    ASSERT_VAL(async_mutex_init(&m, &a), 0);
    ASSERT_ERR(async_mutex_unlock(&m), EPERM);
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    ASSERT_ERR(async_await(async_mutex_lock(&m)), EDEADLK);
    ASSERT_ERR(async_mutex_trylock(&m), EBUSY);
    ASSERT_VAL(async_await(async_spawn(errorcheck_other, &m)), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_mutex_destroy(&m), 0);

    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    ASSERT_VAL(async_mutex_init(&m, &a), 0);
    pthread_mutexattr_destroy(&a);
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    ASSERT_VAL(async_mutex_trylock(&m), 0);
    ASSERT_VAL(async_await(async_spawn(errorcheck_other, &m)), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_ERR(async_mutex_destroy(&m), EBUSY);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_ERR(async_mutex_unlock(&m), EPERM);
    /* another task can take it now, and hand-off records the new owner */
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    async_future_t *t = async_spawn(lock_in_task, &m);
    sleep_ms(10);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_await(t), 0); /* the task ended holding it */
    ASSERT_ERR(async_mutex_unlock(&m), EPERM);
    rt_stop();
}

/* ---- contention ------------------------------------------------------------------- */

struct counter {
    async_mutex_t m;
    long value;
    atomic_int inside;
    int iters;
};

static intptr_t bump(void *arg) {
    struct counter *c = arg;
    for (int i = 0; i < c->iters; i++) {
        if (async_await(async_mutex_lock(&c->m)) != 0) return -1;
        CHECK(atomic_fetch_add(&c->inside, 1) == 0);
        long v = c->value;
        if (i % 7 == 0) async_yield(); /* hold it across a switch now and then */
        c->value = v + 1;
        atomic_fetch_sub(&c->inside, 1);
        CHECK(async_mutex_unlock(&c->m) == 0);
    }
    return 0;
}

static void *bump_thread(void *arg) { return (void *)bump(arg); }

Test(mutex, contention_tasks_and_threads, .init = rt_start) {
    static struct counter c = {.m = ASYNC_MUTEX_INITIALIZER, .iters = 2000};
    unsigned nw = (unsigned)async_worker_count();
    async_future_t *t[16];
    for (int i = 0; i < 16; i++) t[i] = spawn_on(bump, &c, 1 + (unsigned)i % nw);
    pthread_t th[2];
    for (int i = 0; i < 2; i++) th[i] = thread_start(bump_thread, &c);
    ASSERT_VAL(async_await_all(t, 16, NULL, NULL), 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    cr_assert_eq(c.value, 18L * c.iters);
    ASSERT_VAL(async_mutex_destroy(&c.m), 0);
    rt_stop();
}

/* A cancel racing an unlock's hand-off: the waiter either holds the mutex
 * (success) or does not (ECANCELED), and the mutex is never lost. */
struct race {
    async_mutex_t *m;
    async_future_t *f;
    atomic_int go;
};

static void *race_cancel(void *arg) {
    struct race *r = arg;
    while (!atomic_load(&r->go)) {
    }
    async_cancel(r->f);
    return NULL;
}

Test(mutex, cancel_races_hand_off, .init = rt_start) {
    async_mutex_t m = ASYNC_MUTEX_INITIALIZER;
    int granted = 0, cancelled = 0;
    for (int i = 0; i < 300; i++) {
        ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
        struct race r = {.m = &m, .f = async_mutex_lock(&m)};
        pthread_t th = thread_start(race_cancel, &r);
        atomic_store(&r.go, 1);
        ASSERT_VAL(async_mutex_unlock(&m), 0);
        pthread_join(th, NULL);
        errno = 0;
        intptr_t v = async_await(r.f);
        if (v == 0) {
            granted++;
            ASSERT_VAL(async_mutex_unlock(&m), 0);
        } else {
            cr_assert_eq(errno, ECANCELED);
            cancelled++;
        }
        ASSERT_VAL(async_mutex_trylock(&m), 0);
        ASSERT_VAL(async_mutex_unlock(&m), 0);
    }
    cr_assert_eq(granted + cancelled, 300);
    rt_stop();
}

/* ---- barging and starvation ------------------------------------------------
 * Running tasks may take the mutex ahead of a woken waiter, but a waiter passed
 * over for a millisecond turns the mutex FIFO: it cannot starve. */

typedef struct {
    async_mutex_t m;
    atomic_int stop;
    atomic_long holds;
} hammer_t;

static intptr_t hammer(void *arg) {
    hammer_t *h = arg;
    while (!atomic_load(&h->stop)) {
        for (int k = 0; k < 64; k++) { /* back-to-back holds, as a pipelined client makes */
            if (async_await(async_mutex_lock(&h->m)) != 0) return -1;
            atomic_fetch_add(&h->holds, 1);
            CHECK_EQ(async_mutex_unlock(&h->m), 0);
        }
        if (async_yield() != 0) return -1;
    }
    return 0;
}

static intptr_t latecomer(void *arg) {
    hammer_t *h = arg;
    intptr_t r = async_await(async_mutex_lock(&h->m));
    if (r == 0) CHECK_EQ(async_mutex_unlock(&h->m), 0);
    return r;
}

Test(mutex, a_waiter_does_not_starve_behind_barging_tasks, .init = rt_start) {
    static hammer_t h = {.m = ASYNC_MUTEX_INITIALIZER};
    unsigned nw = (unsigned)async_worker_count();
    async_future_t *t[8];
    for (int i = 0; i < 8; i++) t[i] = spawn_on(hammer, &h, 1 + (unsigned)i % nw);
    cr_assert(WAIT_UNTIL(atomic_load(&h.holds) > 10000, 5000));
    for (int round = 0; round < 20; round++) {
        async_future_t *late = spawn_on(latecomer, &h, nw);
        /* a generous bound: starvation mode hands it over after about 1 ms */
        ASSERT_VAL(async_await_timeout(late, 10000), 0);
    }
    atomic_store(&h.stop, 1);
    ASSERT_VAL(async_await_all(t, 8, NULL, NULL), 0);
    ASSERT_VAL(async_mutex_trylock(&h.m), 0);
    ASSERT_VAL(async_mutex_unlock(&h.m), 0);
    rt_stop();
}

/* Timed lock waits on every worker expire while unlocks wake them to retry:
 * a waiter cancelled between its wake-up and its retry must pass the wake-up
 * on, or the mutex would be left free with waiters queued. */
typedef struct {
    async_mutex_t m;
    long value;
    atomic_long got, timed_out;
} timed_t;

static intptr_t timed_bump(void *arg) {
    timed_t *c = arg;
    for (int i = 0; i < 300; i++) {
        async_future_t *f = async_mutex_lock(&c->m);
        if (async_await_timeout(f, i % 3) == 0) {
            c->value++;
            atomic_fetch_add(&c->got, 1);
            if (i % 5 == 0) async_yield(); /* hold it across a switch now and then */
            CHECK_EQ(async_mutex_unlock(&c->m), 0);
        } else {
            CHECK_EQ(errno, ETIMEDOUT);
            atomic_fetch_add(&c->timed_out, 1);
        }
    }
    return 0;
}

Test(mutex, timed_waits_racing_wake_ups, .init = rt_start) {
    static timed_t c = {.m = ASYNC_MUTEX_INITIALIZER};
    unsigned nw = (unsigned)async_worker_count();
    async_future_t *t[16];
    for (int i = 0; i < 16; i++) t[i] = spawn_on(timed_bump, &c, 1 + (unsigned)i % nw);
    ASSERT_VAL(async_await_all(t, 16, NULL, NULL), 0);
    cr_assert_eq(c.value, atomic_load(&c.got), "a timed-out waiter held the mutex");
    cr_assert_eq(atomic_load(&c.got) + atomic_load(&c.timed_out), 16 * 300);
    ASSERT_VAL(async_mutex_trylock(&c.m), 0); /* free, with nobody left queued */
    ASSERT_VAL(async_mutex_unlock(&c.m), 0);
    rt_stop();
}
