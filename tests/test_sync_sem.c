/* Tests of async_sem_*: values and errors, units handed to waiters on plain
 * threads in order, cancellation and timeouts (including a cancel racing a
 * post), producers and consumers on every worker and on plain threads, units
 * never over-granted nor lost under contention, and a waiter that does not
 * starve behind tasks that keep taking units. */
#include "helpers.h"

TestSuite(sem, .timeout = 30);

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

static int value(async_sem_t *s) {
    int v = -1;
    cr_assert_eq(async_sem_getvalue(s, &v), 0);
    return v;
}

Test(sem, values, .init = rt_start) {
    async_sem_t s;
    ASSERT_VAL(async_sem_init(&s, 0, 2), 0);
    cr_assert_eq(value(&s), 2);
    async_future_t *f = async_sem_wait(&s);
    cr_assert(async_future_settled(f), "a positive semaphore is taken at once");
    ASSERT_VAL(async_await(f), 0);
    ASSERT_VAL(async_sem_trywait(&s), 0);
    ASSERT_ERR(async_sem_trywait(&s), EAGAIN);
    cr_assert_eq(value(&s), 0);
    ASSERT_VAL(async_sem_post(&s), 0);
    ASSERT_VAL(async_sem_post(&s), 0);
    cr_assert_eq(value(&s), 2);
    ASSERT_VAL(async_sem_destroy(&s), 0);
    ASSERT_VAL(async_sem_init(&s, 0, ASYNC_SEM_VALUE_MAX), 0);
    ASSERT_ERR(async_sem_post(&s), EOVERFLOW);
    cr_assert_eq(value(&s), ASYNC_SEM_VALUE_MAX);
    rt_stop();
}

Test(sem, bad_input, .init = rt_start) {
    async_sem_t s;
    int v;
    ASSERT_ERR(async_sem_init(NULL, 0, 0), EINVAL);
    ASSERT_ERR(async_sem_init(&s, 0, (unsigned)ASYNC_SEM_VALUE_MAX + 1), EINVAL);
    ASSERT_ERR(async_sem_init(&s, 1, 0), ENOSYS);
    ASSERT_ERR(async_await(async_sem_wait(NULL)), EINVAL);
    ASSERT_ERR(async_await(async_sem_timedwait(NULL, NULL)), EINVAL);
    ASSERT_ERR(async_sem_trywait(NULL), EINVAL);
    ASSERT_ERR(async_sem_post(NULL), EINVAL);
    ASSERT_ERR(async_sem_getvalue(NULL, &v), EINVAL);
    ASSERT_ERR(async_sem_getvalue(&s, NULL), EINVAL);
    ASSERT_ERR(async_sem_destroy(NULL), EINVAL);
    ASSERT_VAL(async_sem_init(&s, 0, 0), 0);
    struct timespec bad = {0, -1};
    ASSERT_ERR(async_await(async_sem_timedwait(&s, &bad)), EINVAL);
    ASSERT_ERR(async_await(async_sem_timedwait(&s, NULL)), EINVAL);
    ASSERT_VAL(async_sem_post(&s), 0);
    /* looked at first, as by glibc: EINVAL with a unit free, which stays */
    ASSERT_ERR(async_await(async_sem_timedwait(&s, &bad)), EINVAL);
    ASSERT_VAL(async_sem_trywait(&s), 0);
    ASSERT_VAL(async_sem_destroy(&s), 0);
    ASSERT_ERR(async_await(async_sem_wait(&s)), EINVAL);
    ASSERT_ERR(async_sem_post(&s), EINVAL);
    ASSERT_ERR(async_sem_trywait(&s), EINVAL);
    ASSERT_ERR(async_sem_getvalue(&s, &v), EINVAL);
    ASSERT_ERR(async_sem_destroy(&s), EINVAL);
    rt_stop();
}

/* Waiters on a plain thread have no worker to retry on: a post hands its unit
 * to the oldest one directly. */
Test(sem, plain_thread_waiters_are_handed_units_in_order, .init = rt_start) {
    async_sem_t s = {{0}}; /* all-zero: value 0 */
    async_future_t *f[4];
    for (int i = 0; i < 4; i++) f[i] = async_sem_wait(&s);
    ASSERT_ERR(async_sem_destroy(&s), EBUSY);
    for (int i = 0; i < 4; i++) {
        cr_assert(!async_future_settled(f[i]));
        ASSERT_VAL(async_sem_post(&s), 0);
        cr_assert(async_future_settled(f[i]), "post serves waiter %d first", i);
        cr_assert_eq(value(&s), 0, "the unit went to the waiter, not the count");
        ASSERT_ERR(async_sem_trywait(&s), EAGAIN);
        ASSERT_VAL(async_await(f[i]), 0);
    }
    ASSERT_VAL(async_sem_post(&s), 0);
    cr_assert_eq(value(&s), 1);
    ASSERT_VAL(async_sem_destroy(&s), 0);
    rt_stop();
}

Test(sem, cancel_and_timeout, .init = rt_start) {
    async_sem_t s;
    ASSERT_VAL(async_sem_init(&s, 0, 0), 0);
    async_future_t *a = async_sem_wait(&s), *b = async_sem_wait(&s);
    async_cancel(a);
    ASSERT_ERR(async_await(a), ECANCELED);
    ASSERT_VAL(async_sem_post(&s), 0);
    ASSERT_VAL(async_await(b), 0);
    cr_assert_eq(value(&s), 0);
    /* the last waiter cancelled: posts count again */
    a = async_sem_wait(&s);
    async_cancel(a);
    ASSERT_ERR(async_await(a), ECANCELED);
    ASSERT_VAL(async_sem_post(&s), 0);
    cr_assert_eq(value(&s), 1);
    ASSERT_VAL(async_sem_trywait(&s), 0);
    double t0 = now_ms();
    struct timespec ts = in_ms(40);
    ASSERT_ERR(async_await(async_sem_timedwait(&s, &ts)), ETIMEDOUT);
    double dt = now_ms() - t0;
    cr_assert(dt >= 35 && dt < 2000, "timed out after %.1f ms", dt);
    ts = in_ms(-5);
    ASSERT_ERR(async_await(async_sem_timedwait(&s, &ts)), ETIMEDOUT);
    ts = in_ms(5000);
    a = async_sem_timedwait(&s, &ts);
    ASSERT_VAL(async_sem_post(&s), 0);
    ASSERT_VAL(async_await(a), 0);
    cr_assert_eq(value(&s), 0);
    /* a post after a waiter was granted and then cancelled is not lost */
    a = async_sem_wait(&s);
    ASSERT_VAL(async_sem_post(&s), 0);
    async_cancel(a);
    ASSERT_VAL(async_await(a), 0);
    rt_stop();
}

static intptr_t wait_in_task(void *arg) { return async_await(async_sem_wait(arg)); }

Test(sem, cancelled_task, .init = rt_start) {
    async_sem_t s;
    ASSERT_VAL(async_sem_init(&s, 0, 0), 0);
    async_future_t *t = async_spawn(wait_in_task, &s);
    sleep_ms(20);
    async_cancel(t);
    ASSERT_ERR(async_await(t), ECANCELED);
    ASSERT_VAL(async_sem_post(&s), 0);
    cr_assert_eq(value(&s), 1);
    rt_stop();
}

/* ---- producers and consumers ------------------------------------------------------- */

struct pc {
    async_sem_t items;
    atomic_long consumed;
    int per_producer;
};

static intptr_t producer(void *arg) {
    struct pc *p = arg;
    for (int i = 0; i < p->per_producer; i++) {
        CHECK(async_sem_post(&p->items) == 0);
        if (i % 16 == 0) async_yield();
    }
    return 0;
}

static intptr_t consumer(void *arg) {
    struct pc *p = arg;
    for (int i = 0; i < p->per_producer; i++) {
        if (async_await(async_sem_wait(&p->items)) != 0) return -1;
        atomic_fetch_add(&p->consumed, 1);
    }
    return 0;
}

static void *consumer_thread(void *arg) { return (void *)consumer(arg); }
static void *producer_thread(void *arg) { return (void *)producer(arg); }

Test(sem, producers_consumers, .init = rt_start) {
    static struct pc p = {.per_producer = 3000};
    ASSERT_VAL(async_sem_init(&p.items, 0, 0), 0);
    unsigned nw = (unsigned)async_worker_count();
    async_future_t *t[12];
    for (int i = 0; i < 6; i++) t[i] = spawn_on(consumer, &p, 1 + (unsigned)i % nw);
    for (int i = 6; i < 12; i++) t[i] = spawn_on(producer, &p, 1 + (unsigned)i % nw);
    pthread_t c = thread_start(consumer_thread, &p), q = thread_start(producer_thread, &p);
    ASSERT_VAL(async_await_all(t, 12, NULL, NULL), 0);
    pthread_join(c, NULL);
    pthread_join(q, NULL);
    cr_assert_eq(atomic_load(&p.consumed), 7L * p.per_producer);
    cr_assert_eq(value(&p.items), 0);
    ASSERT_VAL(async_sem_destroy(&p.items), 0);
    rt_stop();
}

struct race {
    async_sem_t *s;
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

Test(sem, cancel_races_post, .init = rt_start) {
    async_sem_t s;
    ASSERT_VAL(async_sem_init(&s, 0, 0), 0);
    for (int i = 0; i < 300; i++) {
        struct race r = {.s = &s, .f = async_sem_wait(&s)};
        pthread_t th = thread_start(race_cancel, &r);
        atomic_store(&r.go, 1);
        ASSERT_VAL(async_sem_post(&s), 0);
        pthread_join(th, NULL);
        errno = 0;
        intptr_t v = async_await(r.f);
        /* either the waiter took the unit, or the unit is still counted */
        if (v == 0)
            cr_assert_eq(value(&s), 0);
        else {
            cr_assert_eq(errno, ECANCELED);
            cr_assert_eq(value(&s), 1);
            ASSERT_VAL(async_sem_trywait(&s), 0);
        }
    }
    rt_stop();
}

/* ---- contention -------------------------------------------------------------
 * 50 tasks on every worker share 4 units, holding one across a yield now and
 * then: never more than 4 holders, and no unit lost (every task finishes and
 * the count is 4 again). */
typedef struct {
    async_sem_t s;
    atomic_int holders, most;
    atomic_long holds;
    atomic_int stop;
} units_t;

static intptr_t unit_user(void *arg) {
    units_t *u = arg;
    for (int i = 0; i < 400; i++) {
        if (async_await(async_sem_wait(&u->s)) != 0) return -1;
        int in = atomic_fetch_add(&u->holders, 1) + 1;
        int most = atomic_load(&u->most);
        while (in > most && !atomic_compare_exchange_weak(&u->most, &most, in))
            ;
        atomic_fetch_add(&u->holds, 1);
        if (i % 3 == 0 && async_yield() != 0) return -1;
        atomic_fetch_sub(&u->holders, 1);
        CHECK_EQ(async_sem_post(&u->s), 0);
    }
    return 0;
}

Test(sem, four_units_fifty_tasks, .init = rt_start) {
    static units_t u;
    ASSERT_VAL(async_sem_init(&u.s, 0, 4), 0);
    unsigned nw = (unsigned)async_worker_count();
    async_future_t *t[50];
    for (int i = 0; i < 50; i++) t[i] = spawn_on(unit_user, &u, 1 + (unsigned)i % nw);
    ASSERT_VAL(async_await_all(t, 50, NULL, NULL), 0);
    cr_assert_eq(atomic_load(&u.holds), 50L * 400);
    cr_assert_leq(atomic_load(&u.most), 4, "more holders than units");
    cr_assert_eq(value(&u.s), 4, "a unit was lost or made up");
    ASSERT_VAL(async_sem_destroy(&u.s), 0);
    rt_stop();
}

/* Tasks that post and wait again at once take units ahead of a woken waiter,
 * but a waiter passed over for a millisecond is handed the next unit. */
static intptr_t unit_hammer(void *arg) {
    units_t *u = arg;
    while (!atomic_load(&u->stop)) {
        for (int k = 0; k < 64; k++) {
            if (async_await(async_sem_wait(&u->s)) != 0) return -1;
            atomic_fetch_add(&u->holds, 1);
            CHECK_EQ(async_sem_post(&u->s), 0);
        }
        if (async_yield() != 0) return -1;
    }
    return 0;
}

static intptr_t unit_latecomer(void *arg) {
    units_t *u = arg;
    intptr_t r = async_await(async_sem_wait(&u->s));
    if (r == 0) CHECK_EQ(async_sem_post(&u->s), 0);
    return r;
}

Test(sem, a_waiter_does_not_starve_behind_barging_tasks, .init = rt_start) {
    static units_t u;
    ASSERT_VAL(async_sem_init(&u.s, 0, 1), 0);
    unsigned nw = (unsigned)async_worker_count();
    async_future_t *t[8];
    for (int i = 0; i < 8; i++) t[i] = spawn_on(unit_hammer, &u, 1 + (unsigned)i % nw);
    cr_assert(WAIT_UNTIL(atomic_load(&u.holds) > 10000, 5000));
    for (int round = 0; round < 20; round++) {
        async_future_t *late = spawn_on(unit_latecomer, &u, nw);
        /* a generous bound: a starved waiter is handed a unit after about 1 ms */
        ASSERT_VAL(async_await_timeout(late, 10000), 0);
    }
    atomic_store(&u.stop, 1);
    ASSERT_VAL(async_await_all(t, 8, NULL, NULL), 0);
    cr_assert_eq(value(&u.s), 1);
    ASSERT_VAL(async_sem_destroy(&u.s), 0);
    rt_stop();
}
