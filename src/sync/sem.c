/* async_sem_*: a counting semaphore whose wait is a future. The count lives
 * in the low half of the gate's state word (gate.c) and changes by
 * compare-and-swap: a wait takes a unit whenever one is free, even past
 * queued waiters, and a post adds one and, when waiters are queued, lets the
 * gate wake the oldest (by a retry on its own worker) or, if it has been
 * overtaken for over a millisecond, hand the unit straight to it. A woken
 * waiter that takes a unit wakes the next if units remain. */
#include <stdlib.h>

#include "internal.h"

#define S_COUNT 0xffffffffull

typedef struct sem {
    async__gate_t g;
} sem_impl_t;

_Static_assert(sizeof(sem_impl_t) <= sizeof(async_sem_t), "async_sem_t is too small");
_Static_assert(_Alignof(sem_impl_t) <= _Alignof(async_sem_t), "async_sem_t is misaligned");

int async_sem_init(async_sem_t *sem, int pshared, unsigned value) {
    if (!sem || value > ASYNC_SEM_VALUE_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (pshared) {
        errno = ENOSYS;
        return -1;
    }
    memset(sem, 0, sizeof *sem);
    atomic_store(&((sem_impl_t *)sem)->g.state, value);
    return 0;
}

static bool take(uint64_t s, int kind, uint64_t *n) {
    (void)kind;
    if (!(s & S_COUNT)) return false;
    *n = s - 1;
    return true;
}

static const async__gate_ops_t ops = {take, NULL};

async_future_t *async__sem_wait_ms(async_sem_t *sem, int64_t ms) {
    sem_impl_t *s = (sem_impl_t *)sem;
    /* no spin before queueing, unlike the locks: a semaphore is as often an
     * event that nobody is about to post, and a spinning task on the poster's
     * worker delays the post (the mutex bench's same-worker hand-off, which
     * waits on one between rounds, went from 1 to 3 us) */
    int r = async__gate_try(&s->g, &ops, 0);
    if (ASYNC_LIKELY(r > 0)) return async__sync_done(0);
    if (r < 0) return async__future_failed(EINVAL);
    if (ms == 0) return async__future_failed(ETIMEDOUT);
    async__sw_t *w = async__gate_waiter(&s->g, 0, ms);
    if (!w) return NULL;
    w->what = "sem";
    return async__gate_wait(&s->g, &ops, w);
}

async_future_t *async_sem_wait(async_sem_t *sem) {
    if (!sem) return async__future_failed(EINVAL);
    return async__sem_wait_ms(sem, -1);
}

static async_future_t *timed_wait(async_sem_t *sem, clockid_t clock,
                                  const struct timespec *abstime) {
    /* a bad abstime is EINVAL even with a unit free, as glibc checks it first */
    if (!sem || async__abstime_bad(abstime)) return async__future_failed(EINVAL);
    sem_impl_t *s = (sem_impl_t *)sem;
    int r = async__gate_try(&s->g, &ops, 0);
    if (r > 0) return async__sync_done(0);
    if (r < 0) return async__future_failed(EINVAL);
    int64_t ms = async__abstime_ms(clock, abstime);
    if (ms < 0) return async__future_failed(EINVAL);
    return async__sem_wait_ms(sem, ms);
}

async_future_t *async_sem_timedwait(async_sem_t *sem, const struct timespec *abstime) {
    return timed_wait(sem, CLOCK_REALTIME, abstime);
}

async_future_t *async_sem_clockwait(async_sem_t *sem, clockid_t clock,
                                    const struct timespec *abstime) {
    if (!async__clock_ok(clock)) return async__future_failed(EINVAL);
    return timed_wait(sem, clock, abstime);
}

int async_sem_trywait(async_sem_t *sem) {
    if (!sem) {
        errno = EINVAL;
        return -1;
    }
    int r = async__gate_try(&((sem_impl_t *)sem)->g, &ops, 0);
    if (r > 0) return 0;
    errno = r < 0 ? EINVAL : EAGAIN;
    return -1;
}

int async_sem_post(async_sem_t *sem) {
    if (!sem) {
        errno = EINVAL;
        return -1;
    }
    sem_impl_t *s = (sem_impl_t *)sem;
    uint64_t v = atomic_load_explicit(&s->g.state, memory_order_relaxed);
    for (;;) {
        if (v & G_DEAD) {
            errno = EINVAL;
            return -1;
        }
        /* (with waiters queued the count is about 0, far from the maximum) */
        if ((v & S_COUNT) == ASYNC_SEM_VALUE_MAX) {
            errno = EOVERFLOW;
            return -1;
        }
        if (async__gate_must_look(v + 1)) break;
        if (atomic_compare_exchange_weak_explicit(&s->g.state, &v, v + 1, memory_order_release,
                                                  memory_order_relaxed))
            return 0;
    }
    async__gate_release(&s->g, 1);
    return 0;
}

int async_sem_getvalue(async_sem_t *sem, int *sval) {
    if (!sem || !sval) {
        errno = EINVAL;
        return -1;
    }
    uint64_t v = atomic_load_explicit(&((sem_impl_t *)sem)->g.state, memory_order_relaxed);
    if (v & G_DEAD) {
        errno = EINVAL;
        return -1;
    }
    *sval = (int)(v & S_COUNT);
    return 0;
}

int async_sem_destroy(async_sem_t *sem) {
    if (!sem) {
        errno = EINVAL;
        return -1;
    }
    sem_impl_t *s = (sem_impl_t *)sem;
    uint64_t v = atomic_load_explicit(&s->g.state, memory_order_relaxed);
    do {
        if (v & (G_DEAD | G_WAITERS | G_WOKEN)) {
            errno = (v & G_DEAD) ? EINVAL : EBUSY;
            return -1;
        }
    } while (!atomic_compare_exchange_weak_explicit(&s->g.state, &v, v | G_DEAD,
                                                    memory_order_relaxed, memory_order_relaxed));
    return 0;
}
