/* Cancellation of tasks that use the sync primitives, against pthreads(7):
 * lock waits (async_mutex_lock, the rwlock locks) and barrier waits are not
 * cancellation points and complete in a cancelled task; cond waits, semaphore waits, sleeps and
 * joins are, and a cancelled cond wait holds the mutex again when it fails.
 * A lock future cancelled on its own (async_cancel on it, a timeout) still
 * stops waiting. async_setcancelstate() holds a cancellation back. */
#include "helpers.h"

TestSuite(sync_cancel, .timeout = 30);

/* ---- the header's own pattern in a cancelled task ------------------------
 * `async_await(async_mutex_lock(&m)); counter++; async_mutex_unlock(&m);`
 * must never let two tasks inside at once, whoever is cancelled. */

typedef struct {
    async_mutex_t m;
    atomic_int inside;  /* tasks between their lock and unlock */
    atomic_int overlap; /* times a task found another inside */
    atomic_int held;    /* the holder is inside */
    atomic_int started; /* entrants that have begun to run */
    async_future_t *gate;
} section_t;

static void enter(section_t *s) {
    if (atomic_fetch_add(&s->inside, 1) != 0) atomic_fetch_add(&s->overlap, 1);
}

static void leave(section_t *s) { atomic_fetch_sub(&s->inside, 1); }

static intptr_t holder(void *arg) {
    section_t *s = arg;
    CHECK_EQ(async_await(async_mutex_lock(&s->m)), 0);
    enter(s);
    atomic_store(&s->held, 1);
    CHECK_EQ(async_await(s->gate), 0); /* stays inside until the test opens the gate */
    if (atomic_load(&s->inside) != 1) atomic_fetch_add(&s->overlap, 1);
    leave(s);
    CHECK_EQ(async_mutex_unlock(&s->m), 0);
    return 0;
}

/* Written as the header's example: the lock's result is not looked at. */
static intptr_t entrant(void *arg) {
    section_t *s = arg;
    atomic_fetch_add(&s->started, 1);
    intptr_t r = async_await(async_mutex_lock(&s->m));
    int e = errno;
    enter(s);
    leave(s);
    async_mutex_unlock(&s->m);
    errno = e;
    return r;
}

Test(sync_cancel, cancelled_lock_wait_never_lets_two_in, .init = rt_start) {
    static section_t s = {.m = ASYNC_MUTEX_INITIALIZER};
    s.gate = async_future_new();
    cr_assert_not_null(s.gate);
    async_future_t *gate = s.gate;
    async_future_t *h = async_spawn(holder, &s);
    cr_assert(WAIT_UNTIL(atomic_load(&s.held), 5000));
    async_future_t *b = async_spawn(entrant, &s);
    /* b runs and queues behind the holder (a task cancelled before its first
     * run never runs, which is not what this test is about) */
    cr_assert(WAIT_UNTIL(atomic_load(&s.started) == 1, 5000));
    sleep_ms(20);
    async_cancel(b);
    sleep_ms(20); /* a cancelled b must still be waiting, not inside */
    async_future_t *c = async_spawn(entrant, &s);
    cr_assert(WAIT_UNTIL(atomic_load(&s.started) == 2, 5000));
    sleep_ms(20);
    cr_expect_eq(atomic_load(&s.overlap), 0, "a task entered while the holder was inside");
    cr_assert_eq(async_future_resolve(gate, 0), 0);
    /* the lock wait completes although b was cancelled */
    ASSERT_VAL(async_await(b), 0);
    ASSERT_VAL(async_await(c), 0);
    ASSERT_VAL(async_await(h), 0);
    cr_assert_eq(atomic_load(&s.overlap), 0, "two tasks were inside at once");
    ASSERT_VAL(async_mutex_trylock(&s.m), 0);
    ASSERT_VAL(async_mutex_unlock(&s.m), 0);
    rt_stop();
}

/* ---- each call against the pthreads(7) list ------------------------------- */

typedef struct {
    async_mutex_t m;
    async_cond_t c;
    async_rwlock_t rw;
    async_sem_t sem;
    atomic_int stage;
    int lock_result, unlock_result, wait_errno;
} subject_t;

static void subject_init(subject_t *s) {
    memset(s, 0, sizeof *s);
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    cr_assert_eq(async_mutex_init(&s->m, &a), 0);
    pthread_mutexattr_destroy(&a);
    cr_assert_eq(async_cond_init(&s->c, NULL), 0);
    cr_assert_eq(async_rwlock_init(&s->rw, NULL), 0);
    cr_assert_eq(async_sem_init(&s->sem, 0, 0), 0);
}

/* cond_wait is a cancellation point, and it fails holding the mutex again. */
static intptr_t cond_waiter(void *arg) {
    subject_t *s = arg;
    CHECK_EQ(async_await(async_mutex_lock(&s->m)), 0);
    atomic_store(&s->stage, 1);
    intptr_t r = async_await(async_cond_wait(&s->c, &s->m));
    s->wait_errno = r == -1 ? errno : 0;
    /* an error-checking mutex says EPERM unless this task holds it */
    s->unlock_result = async_mutex_unlock(&s->m);
    return r;
}

Test(sync_cancel, cond_wait_fails_holding_the_mutex, .init = rt_start) {
    static subject_t s;
    subject_init(&s);
    async_future_t *t = async_spawn(cond_waiter, &s);
    cr_assert(WAIT_UNTIL(atomic_load(&s.stage) == 1, 5000));
    /* the wait released the mutex: take it, so that the cancelled wait must wait for it */
    ASSERT_VAL(async_await(async_mutex_lock(&s.m)), 0);
    async_cancel(t);
    sleep_ms(20);
    cr_assert(!async_future_settled(t), "the cancelled cond_wait returned without the mutex");
    ASSERT_VAL(async_mutex_unlock(&s.m), 0);
    ASSERT_ERR(async_await(t), ECANCELED);
    cr_assert_eq(s.wait_errno, ECANCELED);
    cr_assert_eq(s.unlock_result, 0, "the cancelled cond_wait did not hold the mutex again");
    ASSERT_VAL(async_mutex_trylock(&s.m), 0);
    ASSERT_VAL(async_mutex_unlock(&s.m), 0);
    rt_stop();
}

/* rwlock locks are no cancellation points either. */
static intptr_t rw_writer(void *arg) {
    subject_t *s = arg;
    atomic_store(&s->stage, 1);
    intptr_t r = async_await(async_rwlock_wrlock(&s->rw));
    if (r == 0) CHECK_EQ(async_rwlock_unlock(&s->rw), 0);
    return r;
}

Test(sync_cancel, rwlock_wait_completes, .init = rt_start) {
    static subject_t s;
    subject_init(&s);
    ASSERT_VAL(async_await(async_rwlock_rdlock(&s.rw)), 0);
    async_future_t *t = async_spawn(rw_writer, &s);
    cr_assert(WAIT_UNTIL(atomic_load(&s.stage) == 1, 5000));
    sleep_ms(20);
    async_cancel(t);
    sleep_ms(20);
    cr_assert(!async_future_settled(t), "a cancelled task stopped waiting for the write lock");
    ASSERT_VAL(async_rwlock_unlock(&s.rw), 0);
    ASSERT_VAL(async_await(t), 0);
    rt_stop();
}

static intptr_t rw_reader(void *arg) {
    subject_t *s = arg;
    atomic_store(&s->stage, 1);
    intptr_t r = async_await(async_rwlock_rdlock(&s->rw));
    if (r == 0) CHECK_EQ(async_rwlock_unlock(&s->rw), 0);
    return r;
}

Test(sync_cancel, rwlock_read_wait_completes, .init = rt_start) {
    static subject_t s;
    subject_init(&s);
    ASSERT_VAL(async_await(async_rwlock_wrlock(&s.rw)), 0);
    async_future_t *t = async_spawn(rw_reader, &s);
    cr_assert(WAIT_UNTIL(atomic_load(&s.stage) == 1, 5000));
    sleep_ms(20);
    async_cancel(t);
    sleep_ms(20);
    cr_assert(!async_future_settled(t), "a cancelled task stopped waiting for the read lock");
    ASSERT_VAL(async_rwlock_unlock(&s.rw), 0);
    ASSERT_VAL(async_await(t), 0);
    ASSERT_VAL(async_rwlock_destroy(&s.rw), 0);
    rt_stop();
}

/* pthread_barrier_wait is no cancellation point (pthreads(7) does not list
 * it): a cancelled task's arrival keeps waiting for the round. Its own future
 * cancelled still stops it (tests/test_sync_misc.c, barrier.rounds_and_cancel). */
typedef struct {
    async_barrier_t b;
    atomic_int stage;
    intptr_t result;
} arrival_t;

static intptr_t arriver(void *arg) {
    arrival_t *a = arg;
    atomic_store(&a->stage, 1);
    a->result = async_await(async_barrier_wait(&a->b));
    atomic_store(&a->stage, 2);
    return async_await(async_sleep(1000)); /* the next cancellation point */
}

Test(sync_cancel, barrier_wait_is_no_cancellation_point, .init = rt_start) {
    static arrival_t a;
    ASSERT_VAL(async_barrier_init(&a.b, NULL, 2), 0);
    async_future_t *t = async_spawn(arriver, &a);
    cr_assert(WAIT_UNTIL(atomic_load(&a.stage) == 1, 5000));
    sleep_ms(20);
    async_cancel(t);
    sleep_ms(20);
    cr_assert_eq(atomic_load(&a.stage), 1, "a cancelled task left the barrier");
    ASSERT_ERR(async_barrier_destroy(&a.b), EBUSY); /* still an arrival of this round */
    ASSERT_VAL(async_await(async_barrier_wait(&a.b)), ASYNC_BARRIER_SERIAL_THREAD);
    ASSERT_ERR(async_await(t), ECANCELED); /* at the sleep after it */
    cr_assert_eq(a.result, 0, "the cancelled task's barrier wait completed the round");
    ASSERT_VAL(async_barrier_destroy(&a.b), 0);
    rt_stop();
}

/* sem_wait, sleeps and joins are cancellation points. */
static intptr_t sem_waiter(void *arg) {
    subject_t *s = arg;
    atomic_store(&s->stage, 1);
    return async_await(async_sem_wait(&s->sem));
}

static intptr_t sleeper(void *arg) {
    atomic_store((atomic_int *)arg, 1);
    return async_await(async_sleep(60));
}

static intptr_t joiner(void *arg) {
    atomic_int *stage = arg;
    async_future_t *inner = async_spawn(sleeper, stage);
    intptr_t r = async_await(inner); /* the join is cancelled, and so is the joined */
    int e = errno;
    CHECK(r == -1 && e == ECANCELED);
    errno = e;
    return r;
}

Test(sync_cancel, sem_wait_sleep_and_join_are_cancellation_points, .init = rt_start) {
    static subject_t s;
    subject_init(&s);
    async_future_t *t = async_spawn(sem_waiter, &s);
    cr_assert(WAIT_UNTIL(atomic_load(&s.stage) == 1, 5000));
    async_cancel(t);
    ASSERT_ERR(async_await(t), ECANCELED);
    int v = -1;
    ASSERT_VAL(async_sem_getvalue(&s.sem, &v), 0);
    cr_assert_eq(v, 0, "a cancelled sem_wait took a unit");

    static atomic_int slept;
    t = async_spawn(sleeper, &slept);
    cr_assert(WAIT_UNTIL(atomic_load(&slept) == 1, 5000));
    async_cancel(t);
    ASSERT_ERR(async_await(t), ECANCELED);

    static atomic_int joined;
    t = async_spawn(joiner, &joined);
    cr_assert(WAIT_UNTIL(atomic_load(&joined) == 1, 5000));
    async_cancel(t);
    ASSERT_ERR(async_await(t), ECANCELED);
    rt_stop();
}

/* A lock future of its own still stops: by async_cancel on it, or a timeout,
 * even in a task whose cancellation does not stop lock waits. */
static intptr_t timed_locker(void *arg) {
    subject_t *s = arg;
    async_future_t *f = async_mutex_lock(&s->m);
    atomic_store(&s->stage, 1);
    CHECK_ERR(async_await_timeout(f, 100), ETIMEDOUT);
    f = async_mutex_lock(&s->m);
    async_cancel(f);
    CHECK_ERR(async_await(f), ECANCELED);
    return 0;
}

Test(sync_cancel, lock_future_cancelled_on_its_own_stops, .init = rt_start) {
    static subject_t s;
    subject_init(&s);
    ASSERT_VAL(async_await(async_mutex_lock(&s.m)), 0);
    async_future_t *t = async_spawn(timed_locker, &s);
    cr_assert(WAIT_UNTIL(atomic_load(&s.stage) == 1, 5000));
    async_cancel(t); /* the task's cancellation neither ends the timed wait early... */
    double t0 = now_ms();
    ASSERT_VAL(async_await(t), 0); /* ...nor keeps the timeout and the cancel from working */
    cr_expect_geq(now_ms() - t0, 50.0, "the timed lock ended early");
    ASSERT_VAL(async_mutex_unlock(&s.m), 0);
    ASSERT_VAL(async_mutex_trylock(&s.m), 0);
    ASSERT_VAL(async_mutex_unlock(&s.m), 0);
    rt_stop();
}

/* ---- async_setcancelstate ------------------------------------------------ */

static intptr_t uninterrupted(void *arg) {
    atomic_int *stage = arg;
    int old = -1;
    CHECK_EQ(async_setcancelstate(ASYNC_CANCEL_DISABLE, &old), 0);
    CHECK_EQ(old, ASYNC_CANCEL_ENABLE);
    atomic_store(stage, 1);
    TASK_WAIT_UNTIL(atomic_load(stage) == 2, 5000); /* sleeps go on while disabled */
    CHECK_EQ(async_await(async_usleep(1000)), 0);
    CHECK_EQ(async_testcancel(), 0);
    CHECK_EQ(async_yield(), 0);
    CHECK_EQ(async_setcancelstate(ASYNC_CANCEL_ENABLE, &old), 0);
    CHECK_EQ(old, ASYNC_CANCEL_DISABLE);
    /* the pending request acts at the next cancellation point */
    CHECK_ERR(async_testcancel(), ECANCELED);
    return async_await(async_usleep(1000));
}

Test(sync_cancel, setcancelstate_holds_a_cancel_back, .init = rt_start) {
    static atomic_int stage;
    async_future_t *t = async_spawn(uninterrupted, &stage);
    cr_assert(WAIT_UNTIL(atomic_load(&stage) == 1, 5000));
    async_cancel(t);
    atomic_store(&stage, 2);
    ASSERT_ERR(async_await(t), ECANCELED);
    rt_stop();
}

static intptr_t disabled_while_waiting(void *arg) {
    async_future_t *gate = arg;
    CHECK_EQ(async_setcancelstate(ASYNC_CANCEL_DISABLE, NULL), 0);
    intptr_t r = async_await(gate); /* not woken by the cancel */
    CHECK_EQ(async_setcancelstate(ASYNC_CANCEL_ENABLE, NULL), 0);
    return r;
}

Test(sync_cancel, setcancelstate_keeps_a_wait_going, .init = rt_start) {
    async_future_t *gate = async_future_new();
    cr_assert_not_null(gate);
    async_future_t *t = async_spawn(disabled_while_waiting, gate);
    sleep_ms(20);
    async_cancel(t);
    sleep_ms(20);
    cr_assert(!async_future_settled(t), "a wait ended by a cancel while cancellation was off");
    cr_assert_eq(async_future_resolve(gate, 7), 0);
    ASSERT_VAL(async_await(t), 7);
    rt_stop();
}

Test(sync_cancel, setcancelstate_bad_input_and_outside_a_task, .init = rt_start) {
    int old = -1;
    ASSERT_ERR(async_setcancelstate(2, &old), EINVAL);
    ASSERT_ERR(async_setcancelstate(-1, NULL), EINVAL);
    cr_assert_eq(old, -1, "a refused call changed *oldstate");
    ASSERT_VAL(async_setcancelstate(ASYNC_CANCEL_DISABLE, &old), 0);
    cr_assert_eq(old, ASYNC_CANCEL_ENABLE);
    ASSERT_VAL(async_setcancelstate(ASYNC_CANCEL_ENABLE, NULL), 0);
    rt_stop();
}
