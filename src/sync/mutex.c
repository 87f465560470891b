/* async_mutex_*: a mutex whose lock is a future. One atomic word carries the
 * fast path (0 -> LOCKED by compare-and-swap, returning a settled future
 * without allocation); contention queues a waiter under the small lock, and
 * unlock hands the mutex straight to the oldest waiter (it stays LOCKED
 * throughout), so a waiter never loses its turn to a newcomer.
 *
 * Invariant: WAITERS is set only while LOCKED, and only under `lock`; it is
 * cleared (under `lock`) when the queue empties. So the lock-free paths, which
 * only ever change 0 <-> LOCKED, cannot race with the queue. */
#include <stdlib.h>

#include "internal.h"

enum { M_LOCKED = 1, M_WAITERS = 2, M_DEAD = 4 };
enum { T_NORMAL, T_ERRORCHECK, T_RECURSIVE };

typedef struct mutex {
    _Atomic uint32_t state;
    async__slock_t lock;
    async__wq_t q;
    void *_Atomic owner; /* error-checking and recursive mutexes only */
    uint32_t type;
    uint32_t count; /* recursion depth, written by the holder */
} mutex_t;

_Static_assert(sizeof(mutex_t) <= sizeof(async_mutex_t), "async_mutex_t is too small");
_Static_assert(_Alignof(mutex_t) <= _Alignof(async_mutex_t), "async_mutex_t is misaligned");

/* Spinning before queueing pays off only when the holder runs on another
 * thread; with one worker and a task caller, the holder cannot run meanwhile. */
#define LOCK_SPINS 64

int async_mutex_init(async_mutex_t *m, const pthread_mutexattr_t *attr) {
    if (!m) {
        errno = EINVAL;
        return -1;
    }
    uint32_t type = T_NORMAL;
    if (attr) {
        int kind, pshared, robust, proto;
        if (pthread_mutexattr_gettype(attr, &kind) != 0) {
            errno = EINVAL;
            return -1;
        }
        if ((pthread_mutexattr_getpshared(attr, &pshared) == 0 &&
             pshared != PTHREAD_PROCESS_PRIVATE) ||
            (pthread_mutexattr_getrobust(attr, &robust) == 0 && robust != PTHREAD_MUTEX_STALLED) ||
            (pthread_mutexattr_getprotocol(attr, &proto) == 0 && proto != PTHREAD_PRIO_NONE)) {
            errno = ENOTSUP;
            return -1;
        }
        if (kind == PTHREAD_MUTEX_ERRORCHECK)
            type = T_ERRORCHECK;
        else if (kind == PTHREAD_MUTEX_RECURSIVE)
            type = T_RECURSIVE;
    }
    memset(m, 0, sizeof *m);
    ((mutex_t *)m)->type = type;
    return 0;
}

/* The waiter now holds the mutex (an owner-tracking one records it). */
static void take_ownership(mutex_t *mx, void *self, unsigned count) {
    if (mx->type == T_NORMAL) return;
    atomic_store_explicit(&mx->owner, self, memory_order_relaxed);
    mx->count = count ? count : 1;
}

static bool can_spin(void) { return async__rt.nworkers > 1 || !async__task_current(); }

/* Under mx->lock: take the mutex for w, or queue w. Returns true if taken. */
static bool acquire_or_queue(mutex_t *mx, async__sw_t *w, int *err) {
    for (;;) {
        uint32_t s = atomic_load_explicit(&mx->state, memory_order_relaxed);
        if (s & M_DEAD) {
            *err = EINVAL;
            return false;
        }
        if (!(s & M_LOCKED)) {
            if (atomic_compare_exchange_weak_explicit(&mx->state, &s, s | M_LOCKED,
                                                      memory_order_acquire, memory_order_relaxed))
                return true;
            continue;
        }
        if (w->state == SW_EXPIRED) {
            *err = w->err;
            return false;
        }
        if (!(s & M_WAITERS) &&
            !atomic_compare_exchange_weak_explicit(&mx->state, &s, s | M_WAITERS,
                                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        async__sw_enqueue(w);
        *err = 0;
        return false;
    }
}

/* A cancelled or expired waiter left the queue. */
static void waiter_removed(async__sw_t *w, async__sw_t **grants) {
    mutex_t *mx = w->prim;
    (void)grants;
    if (!mx->q.head)
        atomic_fetch_and_explicit(&mx->state, ~(uint32_t)M_WAITERS, memory_order_relaxed);
}

static async_future_t *lock_slow(mutex_t *mx, const struct timespec *abstime, bool timed) {
    void *self = NULL;
    if (mx->type != T_NORMAL) {
        self = async__sync_self();
        if (atomic_load_explicit(&mx->owner, memory_order_relaxed) == self) {
            if (mx->type == T_ERRORCHECK) return async__future_failed(EDEADLK);
            if (mx->count == UINT32_MAX) return async__future_failed(EAGAIN);
            mx->count++;
            return async__sync_done(0);
        }
    }
    uint32_t s = 0;
    if (atomic_compare_exchange_strong_explicit(&mx->state, &s, M_LOCKED, memory_order_acquire,
                                                memory_order_relaxed)) {
        take_ownership(mx, self, 1);
        return async__sync_done(0);
    }
    if (s & M_DEAD) return async__future_failed(EINVAL);
    if (!(s & M_WAITERS) && can_spin()) {
        /* a newcomer may take a mutex nobody waits for; it never overtakes a waiter */
        for (int i = 0; i < LOCK_SPINS; i++) {
            async__cpu_relax();
            s = atomic_load_explicit(&mx->state, memory_order_relaxed);
            if (s & M_WAITERS) break;
            if (s == 0 &&
                atomic_compare_exchange_weak_explicit(&mx->state, &s, M_LOCKED,
                                                      memory_order_acquire, memory_order_relaxed)) {
                take_ownership(mx, self, 1);
                return async__sync_done(0);
            }
        }
    }
    int64_t ms = -1;
    if (timed) {
        ms = async__abstime_ms(CLOCK_REALTIME, abstime);
        if (ms < 0) return async__future_failed(EINVAL);
        if (ms == 0) return async__future_failed(ETIMEDOUT);
    }
    async__sw_t *w = async__sw_new(mx, &mx->lock, &mx->q, waiter_removed);
    if (!w) return NULL;
    w->owner = self;
    if (ms > 0) async__sw_arm(w, (uint64_t)ms);
    int err;
    async__slock_lock(&mx->lock);
    bool taken = acquire_or_queue(mx, w, &err);
    bool queued = !taken && err == 0;
    if (taken) {
        take_ownership(mx, self, 1);
        async__sw_done_unqueued(w, 0, 0);
    } else if (!queued) {
        async__sw_done_unqueued(w, -1, err);
    }
    async__slock_unlock(&mx->lock);
    if (!queued) async__sw_complete(w);
    return &w->future;
}

async_future_t *async_mutex_lock(async_mutex_t *m) {
    if (ASYNC_UNLIKELY(!m)) return async__future_failed(EINVAL);
    mutex_t *mx = (mutex_t *)m;
    uint32_t s = 0;
    if (ASYNC_LIKELY(mx->type == T_NORMAL &&
                     atomic_compare_exchange_strong_explicit(
                         &mx->state, &s, M_LOCKED, memory_order_acquire, memory_order_relaxed)))
        return async__sync_done(0);
    return lock_slow(mx, NULL, false);
}

async_future_t *async_mutex_timedlock(async_mutex_t *m, const struct timespec *abstime) {
    if (!m) return async__future_failed(EINVAL);
    return lock_slow((mutex_t *)m, abstime, true);
}

int async_mutex_trylock(async_mutex_t *m) {
    if (!m) {
        errno = EINVAL;
        return -1;
    }
    mutex_t *mx = (mutex_t *)m;
    void *self = NULL;
    if (mx->type != T_NORMAL) {
        self = async__sync_self();
        if (atomic_load_explicit(&mx->owner, memory_order_relaxed) == self) {
            if (mx->type == T_ERRORCHECK) {
                errno = EBUSY;
                return -1;
            }
            if (mx->count == UINT32_MAX) {
                errno = EAGAIN;
                return -1;
            }
            mx->count++;
            return 0;
        }
    }
    uint32_t s = 0;
    if (atomic_compare_exchange_strong_explicit(&mx->state, &s, M_LOCKED, memory_order_acquire,
                                                memory_order_relaxed)) {
        take_ownership(mx, self, 1);
        return 0;
    }
    errno = (s & M_DEAD) ? EINVAL : EBUSY;
    return -1;
}

/* Releases a held mutex: hands it to the oldest waiter, if any. */
static int release(mutex_t *mx) {
    uint32_t s = M_LOCKED;
    if (ASYNC_LIKELY(atomic_compare_exchange_strong_explicit(
            &mx->state, &s, 0, memory_order_release, memory_order_relaxed)))
        return 0;
    if (s & M_DEAD) {
        errno = EINVAL;
        return -1;
    }
    if (!(s & M_LOCKED)) {
        errno = EPERM;
        return -1;
    }
    async__sw_t *w = NULL;
    async__slock_lock(&mx->lock);
    s = atomic_load_explicit(&mx->state, memory_order_relaxed);
    if (!(s & M_WAITERS)) {
        /* only lock holders set WAITERS, and nobody takes a LOCKED mutex: a plain store will do */
        atomic_store_explicit(&mx->state, 0, memory_order_release);
    } else {
        w = async__wq_pop(&mx->q);
        if (!mx->q.head) atomic_store_explicit(&mx->state, M_LOCKED, memory_order_relaxed);
        w->state = SW_DONE;
        w->value = w->err ? -1 : 0; /* a cond waiter may carry ETIMEDOUT/ECANCELED */
        take_ownership(mx, w->owner, w->count);
    }
    async__slock_unlock(&mx->lock);
    if (w) async__sw_complete(w);
    return 0;
}

int async_mutex_unlock(async_mutex_t *m) {
    if (ASYNC_UNLIKELY(!m)) {
        errno = EINVAL;
        return -1;
    }
    mutex_t *mx = (mutex_t *)m;
    if (mx->type != T_NORMAL) {
        if (atomic_load_explicit(&mx->owner, memory_order_relaxed) != async__sync_self()) {
            errno = EPERM;
            return -1;
        }
        if (mx->count > 1) {
            mx->count--;
            return 0;
        }
        mx->count = 0;
        atomic_store_explicit(&mx->owner, NULL, memory_order_relaxed);
    }
    return release(mx);
}

int async_mutex_destroy(async_mutex_t *m) {
    if (!m) {
        errno = EINVAL;
        return -1;
    }
    mutex_t *mx = (mutex_t *)m;
    uint32_t s = 0;
    if (!atomic_compare_exchange_strong_explicit(&mx->state, &s, M_DEAD, memory_order_acq_rel,
                                                 memory_order_relaxed)) {
        errno = (s & M_DEAD) ? EINVAL : EBUSY;
        return -1;
    }
    return 0;
}

/* ---- for cond.c ---------------------------------------------------------------- */

int async__mutex_check_held(async_mutex_t *m) {
    mutex_t *mx = (mutex_t *)m;
    uint32_t s = atomic_load_explicit(&mx->state, memory_order_relaxed);
    if (s & M_DEAD) return EINVAL;
    if (!(s & M_LOCKED)) return EPERM;
    if (mx->type != T_NORMAL &&
        atomic_load_explicit(&mx->owner, memory_order_relaxed) != async__sync_self())
        return EPERM;
    return 0;
}

int async__mutex_release_all(async_mutex_t *m, unsigned *count) {
    mutex_t *mx = (mutex_t *)m;
    *count = 1;
    if (mx->type != T_NORMAL) {
        *count = mx->count;
        mx->count = 0;
        atomic_store_explicit(&mx->owner, NULL, memory_order_relaxed);
    }
    return release(mx);
}

bool async__mutex_acquire_for(async_mutex_t *m, async__sw_t *w) {
    mutex_t *mx = (mutex_t *)m;
    int err;
    async__slock_lock(&mx->lock);
    w->lock = &mx->lock;
    w->q = &mx->q;
    w->prim = mx;
    w->removed = waiter_removed;
    w->state = SW_INIT;
    bool taken = acquire_or_queue(mx, w, &err);
    if (taken) {
        take_ownership(mx, w->owner, w->count);
        w->state = SW_DONE;
        w->value = w->err ? -1 : 0;
    }
    async__slock_unlock(&mx->lock);
    /* a destroyed mutex (err EINVAL) is the caller's bug: the waiter stays
     * unqueued and settles with the error */
    if (!taken && err) {
        w->state = SW_DONE;
        w->value = -1;
        w->err = err;
        return true;
    }
    return taken;
}
