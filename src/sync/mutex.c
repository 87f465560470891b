/* async_mutex_*: a mutex whose lock is a future. One atomic word carries the
 * fast path (0 -> LOCKED by compare-and-swap, returning a settled future
 * without allocation, and LOCKED -> 0 to unlock); contention goes through the
 * gate (gate.c): newcomers may take a free mutex before queued waiters
 * ("barge"), an unlock sends the oldest waiter a retry to its own worker, and
 * a waiter overtaken for over a millisecond is handed the mutex by the next
 * unlock. Waiters on plain threads are always handed the mutex directly.
 *
 * The state word is the gate's: LOCKED is the mutex's own bit; the gate's
 * flags sit above it. */
#include <stdlib.h>

#include "internal.h"

enum { M_LOCKED = 1 };
enum { T_NORMAL, T_ERRORCHECK, T_RECURSIVE };

typedef struct mutex {
    async__gate_t g;     /* first: a waiter's `prim` is the gate */
    void *_Atomic owner; /* error-checking and recursive mutexes only */
    uint32_t type;
    uint32_t count; /* recursion depth, written by the holder */
} mutex_t;

_Static_assert(sizeof(mutex_t) <= sizeof(async_mutex_t), "async_mutex_t is too small");
_Static_assert(_Alignof(mutex_t) <= _Alignof(async_mutex_t), "async_mutex_t is misaligned");

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

/* The caller now holds the mutex (an owner-tracking one records it). */
static void take_ownership(mutex_t *mx, void *self, unsigned count) {
    if (mx->type == T_NORMAL) return;
    atomic_store_explicit(&mx->owner, self, memory_order_relaxed);
    mx->count = count ? count : 1;
}

static bool take(uint64_t s, int kind, uint64_t *n) {
    (void)kind;
    if (s & M_LOCKED) return false;
    *n = s | M_LOCKED;
    return true;
}

static void granted(async__gate_t *g, async__sw_t *w) {
    take_ownership((mutex_t *)g, w->owner, w->count);
}

static const async__gate_ops_t ops = {take, granted};

static async_future_t *lock_slow(mutex_t *mx, const struct timespec *abstime, bool timed,
                                 clockid_t clock) {
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
    int r = async__gate_try(&mx->g, &ops, 0);
    /* a task settles (gate.c); a plain thread barges as with a pthread mutex: the
     * settle keeps the mutex on a worker's tasks, and a plain thread that
     * queues sleeps on a futex and is handed the mutex */
    if (r == 0) r = async__gate_spin(&mx->g, &ops, 0, async__task_current() != NULL);
    if (r < 0) return async__future_failed(EINVAL);
    if (r > 0) {
        take_ownership(mx, self, 1);
        return async__sync_done(0);
    }
    int64_t ms = -1;
    if (timed) {
        /* as glibc, whose futex wait times out a negative tv_sec before the
         * kernel would look at tv_nsec */
        if (abstime && abstime->tv_sec < 0) return async__future_failed(ETIMEDOUT);
        ms = async__abstime_ms(clock, abstime);
        if (ms < 0) return async__future_failed(EINVAL);
        if (ms == 0) return async__future_failed(ETIMEDOUT);
    }
    async__sw_t *w = async__gate_waiter(&mx->g, 0, ms);
    if (!w) return NULL;
    w->what = "mutex";
    async__sw_no_cancel_point(w);
    w->owner = self;
    return async__gate_wait(&mx->g, &ops, w);
}

async_future_t *async_mutex_lock(async_mutex_t *m) {
    if (ASYNC_UNLIKELY(!m)) return async__future_failed(EINVAL);
    mutex_t *mx = (mutex_t *)m;
    uint64_t s = 0;
    if (ASYNC_LIKELY(mx->type == T_NORMAL &&
                     atomic_compare_exchange_strong_explicit(
                         &mx->g.state, &s, M_LOCKED, memory_order_acquire, memory_order_relaxed)))
        return async__sync_done(0);
    return lock_slow(mx, NULL, false, CLOCK_REALTIME);
}

async_future_t *async_mutex_timedlock(async_mutex_t *m, const struct timespec *abstime) {
    if (!m) return async__future_failed(EINVAL);
    return lock_slow((mutex_t *)m, abstime, true, CLOCK_REALTIME);
}

async_future_t *async_mutex_clocklock(async_mutex_t *m, clockid_t clock,
                                      const struct timespec *abstime) {
    if (!m || !async__clock_ok(clock)) return async__future_failed(EINVAL);
    return lock_slow((mutex_t *)m, abstime, true, clock);
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
    int r = async__gate_try(&mx->g, &ops, 0);
    if (r > 0) {
        take_ownership(mx, self, 1);
        return 0;
    }
    errno = r < 0 ? EINVAL : EBUSY;
    return -1;
}

/* Releases a held mutex; the gate wakes or hands it to a waiter if one should look. */
static int release(mutex_t *mx) {
    uint64_t s = M_LOCKED;
    if (ASYNC_LIKELY(atomic_compare_exchange_strong_explicit(
            &mx->g.state, &s, 0, memory_order_release, memory_order_relaxed)))
        return 0;
    for (;;) {
        if (s & G_DEAD) {
            errno = EINVAL;
            return -1;
        }
        if (!(s & M_LOCKED)) {
            errno = EPERM;
            return -1;
        }
        uint64_t n = s & ~(uint64_t)M_LOCKED;
        if (async__gate_must_look(n)) break;
        if (atomic_compare_exchange_weak_explicit(&mx->g.state, &s, n, memory_order_release,
                                                  memory_order_relaxed))
            return 0;
    }
    async__gate_release(&mx->g, -M_LOCKED); /* LOCKED is ours: nobody else clears it */
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
    uint64_t s = 0;
    if (!atomic_compare_exchange_strong_explicit(&mx->g.state, &s, G_DEAD, memory_order_acq_rel,
                                                 memory_order_relaxed)) {
        errno = (s & G_DEAD) ? EINVAL : EBUSY;
        return -1;
    }
    return 0;
}

/* ---- for cond.c ---------------------------------------------------------------- */

int async__mutex_check_held(async_mutex_t *m) {
    mutex_t *mx = (mutex_t *)m;
    uint64_t s = atomic_load_explicit(&mx->g.state, memory_order_relaxed);
    if (s & G_DEAD) return EINVAL;
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
    async__slock_lock(&mx->g.lock);
    w->lock = &mx->g.lock;
    w->q = &mx->g.q;
    w->removed = NULL;
    w->state = SW_INIT;
    w->gkind = 0;
    /* a destroyed mutex (EINVAL) is the caller's bug: the waiter settles with the error */
    bool done = async__gate_enter(&mx->g, &ops, w, &err);
    async__slock_unlock(&mx->g.lock);
    return done;
}
