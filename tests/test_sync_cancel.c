/* Cancellation of tasks that use the sync primitives, against pthreads(7):
 * lock waits (async_mutex_lock, the rwlock locks) are not cancellation points
 * and complete in a cancelled task; cond waits, semaphore waits, sleeps and
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
    sleep_ms(20); /* b queues behind the holder */
    async_cancel(b);
    sleep_ms(20); /* a cancelled b must still be waiting, not inside */
    async_future_t *c = async_spawn(entrant, &s);
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
