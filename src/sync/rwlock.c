/* async_rwlock_*: a readers-writer lock whose locks are futures. The state is
 * the gate's word (gate.c): a writer bit and a reader count in its low half,
 * each lock and unlock one compare-and-swap when nobody waits. Contention
 * goes through the gate, as for the mutex: newcomers may take the lock before
 * queued waiters, an unlock sends the oldest waiter a retry to its own
 * worker, and a waiter overtaken for over a millisecond is handed the lock by
 * the next unlock. A woken reader that takes the lock wakes the next waiter if
 * it is a reader too.
 *
 * Preference: readers, as glibc's default, but bounded. A read lock joins the
 * readers whenever no writer holds the lock, even while writers wait (asking
 * new readers to queue behind a waiting writer cost a queued wait, and a
 * wake-up hop, for every read lock that arrived meanwhile: the write-heavy
 * row of bench/mutex.c ran 1.5-4x slower); a write lock takes a free lock
 * before queued readers. A waiter of either kind that has waited over a
 * millisecond turns the gate STARVING: new locks queue, the holders drain,
 * and the waiter is handed the lock. */
#include <stdlib.h>

#include "internal.h"

enum { RW_READ, RW_WRITE };

#define RW_WRITER (1ull << 31)
#define RW_READERS (RW_WRITER - 1) /* the reader count's bits */

typedef struct rwlock {
    async__gate_t g;      /* first: a waiter's `prim` is the gate */
    void *_Atomic writer; /* the write lock's holder, written by it */
} rwlock_t;

_Static_assert(sizeof(rwlock_t) <= sizeof(async_rwlock_t), "async_rwlock_t is too small");
_Static_assert(_Alignof(rwlock_t) <= _Alignof(async_rwlock_t), "async_rwlock_t is misaligned");

int async_rwlock_init(async_rwlock_t *rw, const void *attr) {
    if (!rw) {
        errno = EINVAL;
        return -1;
    }
    if (attr) {
        int pshared;
        if (pthread_rwlockattr_getpshared(attr, &pshared) == 0 &&
            pshared != PTHREAD_PROCESS_PRIVATE) {
            errno = ENOTSUP;
            return -1;
        }
    }
    memset(rw, 0, sizeof *rw);
    return 0;
}

static bool take(uint64_t s, int kind, uint64_t *n) {
    if (kind == RW_WRITE) {
        if (s & (RW_WRITER | RW_READERS)) return false;
        *n = s | RW_WRITER;
        return true;
    }
    if ((s & RW_WRITER) || (s & RW_READERS) == RW_READERS) return false;
    *n = s + 1;
    return true;
}

static void granted(async__gate_t *g, async__sw_t *w) {
    if (w->gkind == RW_WRITE)
        atomic_store_explicit(&((rwlock_t *)g)->writer, w->owner, memory_order_relaxed);
}

static const async__gate_ops_t ops = {take, granted};

/* 1 taken, 0 not, or a negative errno. */
static int try_lock(rwlock_t *r, int kind, void *self) {
    void *wr = atomic_load_explicit(&r->writer, memory_order_relaxed);
    if (wr && wr == self) return -EDEADLK;
    int res = async__gate_try(&r->g, &ops, kind);
    if (res < 0) return -EINVAL;
    if (res > 0 && kind == RW_WRITE) atomic_store_explicit(&r->writer, self, memory_order_relaxed);
    if (res == 0 && kind == RW_READ &&
        (atomic_load_explicit(&r->g.state, memory_order_relaxed) & RW_READERS) == RW_READERS)
        return -EAGAIN;
    return res;
}

static async_future_t *lock_common(async_rwlock_t *rw, int kind, bool timed, clockid_t clock,
                                   const struct timespec *abstime) {
    if (!rw) return async__future_failed(EINVAL);
    rwlock_t *r = (rwlock_t *)rw;
    void *self = async__sync_self();
    int res = try_lock(r, kind, self);
    if (ASYNC_LIKELY(res > 0)) return async__sync_done(0);
    if (res < 0) return async__future_failed(-res);
    if (async__gate_spin(&r->g, &ops, kind, false)) {
        if (kind == RW_WRITE) atomic_store_explicit(&r->writer, self, memory_order_relaxed);
        return async__sync_done(0);
    }
    int64_t ms = -1;
    if (timed) {
        ms = async__abstime_ms(clock, abstime);
        if (ms < 0) return async__future_failed(EINVAL);
        if (ms == 0) return async__future_failed(ETIMEDOUT);
    }
    async__sw_t *w = async__gate_waiter(&r->g, kind, ms);
    if (!w) return NULL;
    w->what = kind == RW_READ ? "rwlock read" : "rwlock write";
    async__sw_no_cancel_point(w);
    w->owner = self;
    return async__gate_wait(&r->g, &ops, w);
}

async_future_t *async_rwlock_rdlock(async_rwlock_t *rw) {
    return lock_common(rw, RW_READ, false, CLOCK_REALTIME, NULL);
}

async_future_t *async_rwlock_wrlock(async_rwlock_t *rw) {
    return lock_common(rw, RW_WRITE, false, CLOCK_REALTIME, NULL);
}

/* A bad abstime is EINVAL even when the lock is free or the caller's own, as
 * glibc checks it first (unlike its mutex, which looks only when it waits). */
async_future_t *async_rwlock_timedrdlock(async_rwlock_t *rw, const struct timespec *abstime) {
    if (async__abstime_bad(abstime)) return async__future_failed(EINVAL);
    return lock_common(rw, RW_READ, true, CLOCK_REALTIME, abstime);
}

async_future_t *async_rwlock_timedwrlock(async_rwlock_t *rw, const struct timespec *abstime) {
    if (async__abstime_bad(abstime)) return async__future_failed(EINVAL);
    return lock_common(rw, RW_WRITE, true, CLOCK_REALTIME, abstime);
}

async_future_t *async_rwlock_clockrdlock(async_rwlock_t *rw, clockid_t clock,
                                         const struct timespec *abstime) {
    if (!async__clock_ok(clock) || async__abstime_bad(abstime)) return async__future_failed(EINVAL);
    return lock_common(rw, RW_READ, true, clock, abstime);
}

async_future_t *async_rwlock_clockwrlock(async_rwlock_t *rw, clockid_t clock,
                                         const struct timespec *abstime) {
    if (!async__clock_ok(clock) || async__abstime_bad(abstime)) return async__future_failed(EINVAL);
    return lock_common(rw, RW_WRITE, true, clock, abstime);
}

static int trylock(async_rwlock_t *rw, int kind) {
    if (!rw) {
        errno = EINVAL;
        return -1;
    }
    int res = try_lock((rwlock_t *)rw, kind, async__sync_self());
    if (res > 0) return 0;
    /* the write owner's try is EBUSY, not EDEADLK: it cannot deadlock, and
     * POSIX and glibc say EBUSY */
    errno = res < 0 && res != -EDEADLK ? -res : EBUSY;
    return -1;
}

int async_rwlock_tryrdlock(async_rwlock_t *rw) { return trylock(rw, RW_READ); }

int async_rwlock_trywrlock(async_rwlock_t *rw) { return trylock(rw, RW_WRITE); }

int async_rwlock_unlock(async_rwlock_t *rw) {
    if (!rw) {
        errno = EINVAL;
        return -1;
    }
    rwlock_t *r = (rwlock_t *)rw;
    uint64_t s = atomic_load_explicit(&r->g.state, memory_order_relaxed), n;
    if (s & G_DEAD) {
        errno = EINVAL;
        return -1;
    }
    uint64_t mine;       /* what this unlock gives back */
    if (s & RW_WRITER) { /* only its holder clears the writer bit */
        if (atomic_load_explicit(&r->writer, memory_order_relaxed) != async__sync_self()) {
            errno = EPERM;
            return -1;
        }
        atomic_store_explicit(&r->writer, NULL, memory_order_relaxed);
        mine = RW_WRITER;
    } else {
        mine = 1;
    }
    for (;;) {
        if (!(s & (mine == 1 ? RW_READERS : RW_WRITER))) {
            errno = EPERM;
            return -1;
        }
        n = s - mine;
        if (async__gate_must_look(n)) break;
        if (atomic_compare_exchange_weak_explicit(&r->g.state, &s, n, memory_order_release,
                                                  memory_order_relaxed))
            return 0;
    }
    async__gate_release(&r->g, -(int64_t)mine);
    return 0;
}

int async_rwlock_destroy(async_rwlock_t *rw) {
    if (!rw) {
        errno = EINVAL;
        return -1;
    }
    rwlock_t *r = (rwlock_t *)rw;
    uint64_t s = 0;
    if (!atomic_compare_exchange_strong_explicit(&r->g.state, &s, G_DEAD, memory_order_acq_rel,
                                                 memory_order_relaxed)) {
        errno = (s & G_DEAD) ? EINVAL : EBUSY;
        return -1;
    }
    return 0;
}
