/* async_sem_*: a counting semaphore whose wait is a future. The value lives in
 * one atomic word, changed by compare-and-swap while nobody waits; once a
 * waiter is queued the word holds the WAITERS mark instead (the value is then
 * 0), and posts hand their unit straight to the oldest waiter under the small
 * lock. So waiters are served in order and a newcomer never takes a unit a
 * waiter was owed. */
#include <stdlib.h>

#include "internal.h"

#define S_WAITERS 0x80000000u
#define S_DEAD 0xffffffffu /* destroyed (its own value: never a count, never WAITERS alone) */

typedef struct sem {
    _Atomic uint32_t value; /* a count, S_WAITERS or S_DEAD */
    async__slock_t lock;
    async__wq_t q;
} sem_impl_t;

_Static_assert(sizeof(sem_impl_t) <= sizeof(async_sem_t), "async_sem_t is too small");

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
    atomic_store(&((sem_impl_t *)sem)->value, value);
    return 0;
}

/* Takes a unit if one is free and nobody waits. 1 taken, 0 not, -1 destroyed. */
static int try_take(sem_impl_t *s) {
    uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    for (;;) {
        if (v == S_DEAD) return -1;
        if (v == 0 || (v & S_WAITERS)) return 0;
        if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return 1;
    }
}

static void waiter_removed(async__sw_t *w, async__sw_t **grants) {
    sem_impl_t *s = w->prim;
    (void)grants;
    if (!async__wq_head(&s->q)) atomic_store_explicit(&s->value, 0, memory_order_relaxed);
}

async_future_t *async__sem_wait_ms(async_sem_t *sem, int64_t ms) {
    sem_impl_t *s = (sem_impl_t *)sem;
    int r = try_take(s);
    if (ASYNC_LIKELY(r > 0)) return async__sync_done(0);
    if (r < 0) return async__future_failed(EINVAL);
    if (ms == 0) return async__future_failed(ETIMEDOUT);
    async__sw_t *w = async__sw_new(s, &s->lock, &s->q, waiter_removed);
    if (!w) return NULL;
    w->what = "sem";
    if (ms > 0) async__sw_arm(w, (uint64_t)ms);
    bool queued = false;
    async__slock_lock(&s->lock);
    for (;;) {
        uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
        if (v == S_DEAD) {
            async__sw_done_unqueued(w, -1, EINVAL);
            break;
        }
        if (v != 0 && !(v & S_WAITERS)) {
            if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - 1, memory_order_acquire,
                                                      memory_order_relaxed)) {
                async__sw_done_unqueued(w, 0, 0);
                break;
            }
            continue;
        }
        if (w->state == SW_EXPIRED) {
            async__sw_done_unqueued(w, -1, w->err);
            break;
        }
        if (v == 0 && !atomic_compare_exchange_weak_explicit(
                          &s->value, &v, S_WAITERS, memory_order_relaxed, memory_order_relaxed))
            continue;
        async__sw_enqueue(w);
        queued = true;
        break;
    }
    async__slock_unlock(&s->lock);
    if (!queued) async__sw_complete(w);
    return &w->future;
}

async_future_t *async_sem_wait(async_sem_t *sem) {
    if (!sem) return async__future_failed(EINVAL);
    return async__sem_wait_ms(sem, -1);
}

async_future_t *async_sem_timedwait(async_sem_t *sem, const struct timespec *abstime) {
    if (!sem) return async__future_failed(EINVAL);
    sem_impl_t *s = (sem_impl_t *)sem;
    int r = try_take(s);
    if (r > 0) return async__sync_done(0);
    if (r < 0) return async__future_failed(EINVAL);
    int64_t ms = async__abstime_ms(CLOCK_REALTIME, abstime);
    if (ms < 0) return async__future_failed(EINVAL);
    return async__sem_wait_ms(sem, ms);
}

int async_sem_trywait(async_sem_t *sem) {
    if (!sem) {
        errno = EINVAL;
        return -1;
    }
    int r = try_take((sem_impl_t *)sem);
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
    uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    for (;;) {
        if (v == S_DEAD) {
            errno = EINVAL;
            return -1;
        }
        if (v & S_WAITERS) break;
        if (v == ASYNC_SEM_VALUE_MAX) {
            errno = EOVERFLOW;
            return -1;
        }
        if (atomic_compare_exchange_weak_explicit(&s->value, &v, v + 1, memory_order_release,
                                                  memory_order_relaxed))
            return 0;
    }
    async__sw_t *w = NULL;
    async__slock_lock(&s->lock);
    v = atomic_load_explicit(&s->value, memory_order_relaxed);
    if (v & S_WAITERS) {
        w = async__wq_pop(&s->q);
        if (!async__wq_head(&s->q)) atomic_store_explicit(&s->value, 0, memory_order_relaxed);
        w->state = SW_DONE;
        w->value = 0;
    } else {
        /* the last waiter left (cancelled) since we looked: a plain increment */
        atomic_fetch_add_explicit(&s->value, 1, memory_order_release);
    }
    async__slock_unlock(&s->lock);
    if (w) async__sw_complete(w);
    return 0;
}

int async_sem_getvalue(async_sem_t *sem, int *sval) {
    if (!sem || !sval) {
        errno = EINVAL;
        return -1;
    }
    uint32_t v = atomic_load_explicit(&((sem_impl_t *)sem)->value, memory_order_relaxed);
    if (v == S_DEAD) {
        errno = EINVAL;
        return -1;
    }
    *sval = (v & S_WAITERS) ? 0 : (int)v;
    return 0;
}

int async_sem_destroy(async_sem_t *sem) {
    if (!sem) {
        errno = EINVAL;
        return -1;
    }
    sem_impl_t *s = (sem_impl_t *)sem;
    async__slock_lock(&s->lock);
    uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
    int err = v == S_DEAD ? EINVAL : (v & S_WAITERS) ? EBUSY : 0;
    if (!err) atomic_store_explicit(&s->value, S_DEAD, memory_order_relaxed);
    async__slock_unlock(&s->lock);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}
