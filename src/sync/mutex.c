/* async_mutex_*: a mutex whose lock is a future. One atomic word carries the
 * fast path (0 -> LOCKED by compare-and-swap, returning a settled future
 * without allocation, and LOCKED -> 0 to unlock); contention queues a waiter
 * under the small lock.
 *
 * Two modes, after Go's sync.Mutex. Normal: an unlock lets the mutex go and
 * sends the oldest waiter a retry message to its own worker, where it takes
 * the mutex if it is still free or goes back to the front of the queue;
 * meanwhile a running task may take it ("barge"). Handing it straight to a
 * waiter on another worker would leave it held by nobody running for the
 * few microseconds a wake-up through the inbox takes, and every task that
 * wants it would queue behind: a convoy, at a fraction of one worker's
 * throughput. Starving: a waiter that finds itself overtaken after waiting
 * STARVE_NS goes back to the head of the queue and marks the mutex STARVING:
 * newcomers neither spin nor barge, and the next unlock hands the mutex
 * straight to that waiter, which ends the mode. One hand-off per starved
 * waiter, not FIFO until the queue empties (Go's rule): with tasks that
 * lock again right after unlocking the queue never empties, every waiter in
 * it has waited long, and under wake-up latency (a loaded machine) the mutex
 * stayed in hand-off mode, a convoy again (one run of the benchmark's table
 * took 197 us per hold instead of 3 us). Waiters on plain threads are always
 * handed the mutex directly (they have no worker to retry on).
 *
 * Invariants. Only LOCKED changes without `lock`, and only by the paths
 * above: 0 -> LOCKED, (free) -> | LOCKED, LOCKED -> 0, and clearing LOCKED
 * while WOKEN is set. WAITERS (the queue is not empty), WOKEN (one retry is
 * on its way, at most one) and STARVING change under `lock`. STARVING implies
 * WAITERS and LOCKED. A queue that is not empty with LOCKED clear implies
 * WOKEN: somebody will look at the queue again, so no wake-up is lost. */
#include <stdlib.h>

#include "internal.h"

enum { M_LOCKED = 1, M_WAITERS = 2, M_DEAD = 4, M_STARVING = 8, M_WOKEN = 16 };
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
/* How long a waiter may be overtaken before the mutex turns FIFO (Go's figure). */
#define STARVE_NS 1000000u

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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

/* Takes a free mutex (a barge: queued waiters may exist); false if it is held,
 * starving or destroyed. */
static bool try_take(mutex_t *mx) {
    uint32_t s = atomic_load_explicit(&mx->state, memory_order_relaxed);
    while (!(s & (M_LOCKED | M_STARVING | M_DEAD)))
        if (atomic_compare_exchange_weak_explicit(&mx->state, &s, s | M_LOCKED,
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    return false;
}

/* Under mx->lock: the waiter holds the mutex now; record its result. */
static void grant(mutex_t *mx, async__sw_t *w) {
    w->state = SW_DONE;
    w->value = w->err ? -1 : 0; /* a cond waiter may carry ETIMEDOUT/ECANCELED */
    take_ownership(mx, w->owner, w->count);
}

/* Under mx->lock: take mx for w, or queue w at the back. True if taken. */
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
        if (!w->since) w->since = now_ns();
        async__sw_enqueue(w);
        *err = 0;
        return false;
    }
}

/* A cancelled or expired waiter left the queue. */
static void waiter_removed(async__sw_t *w, async__sw_t **grants) {
    mutex_t *mx = w->prim;
    (void)grants;
    if (!async__wq_head(&mx->q))
        atomic_fetch_and_explicit(&mx->state, ~(uint32_t)(M_WAITERS | M_STARVING),
                                  memory_order_relaxed);
}

static void on_retry(async__worker_t *wk, async__msg_t *m);

/* Under mx->lock, by the holder letting go (nothing else changes the state
 * meanwhile): wakes the head of the queue, unless a retry is on its way. A
 * task waiter is sent a retry (WOKEN set; the caller posts `*retry`); a plain
 * thread is handed the mutex (the caller completes `*granted`). `s` is the
 * state the caller will store, LOCKED clear; returns it updated. */
static uint32_t wake_head(mutex_t *mx, uint32_t s, async__sw_t **retry, async__sw_t **granted) {
    async__sw_t *w = async__wq_head(&mx->q);
    if (!w || (s & M_WOKEN)) return s;
    if (!w->home) {
        async__wq_remove(&mx->q, w);
        grant(mx, w);
        *granted = w;
        s |= M_LOCKED;
    } else {
        async__wq_remove(&mx->q, w);
        w->state = SW_WOKEN;
        w->msg.run = on_retry;
        *retry = w;
        s |= M_WOKEN;
    }
    if (!async__wq_head(&mx->q)) s &= ~(uint32_t)M_WAITERS;
    return s;
}

/* On the waiter's own worker: take the mutex if it is free, else queue again
 * in front (and turn the mutex FIFO if this waiter has waited too long). */
static void on_retry(async__worker_t *wk, async__msg_t *m) {
    async__sw_t *w = ASYNC_CONTAINER_OF(m, async__sw_t, msg);
    mutex_t *mx = w->prim;
    (void)wk;
    /* the holder runs on another worker, or the mutex would not be held now:
     * it may be about to let go */
    for (int i = 0;
         i < LOCK_SPINS && (atomic_load_explicit(&mx->state, memory_order_relaxed) & M_LOCKED); i++)
        async__cpu_relax();
    async__sw_t *retry = NULL, *granted = NULL;
    bool done = false;
    async__slock_lock(&mx->lock);
    uint32_t s = atomic_load_explicit(&mx->state, memory_order_relaxed);
    if (w->state == SW_WOKEN_ABORTED) {
        w->state = SW_DONE;
        w->value = -1;
        done = true;
        /* the unlock that woke us left the queue to us: if the mutex is still
         * free, nobody else will look at it, so wake the next waiter */
        uint32_t old =
            atomic_fetch_and_explicit(&mx->state, ~(uint32_t)M_WOKEN, memory_order_relaxed);
        async__sw_t *h = async__wq_head(&mx->q);
        if (h && !(old & M_LOCKED)) {
            if (h->home) {
                async__wq_remove(&mx->q, h);
                h->state = SW_WOKEN;
                h->msg.run = on_retry;
                retry = h;
                atomic_fetch_or_explicit(&mx->state, M_WOKEN, memory_order_relaxed);
            } else if (try_take(mx)) { /* else the barger's unlock wakes it */
                async__wq_remove(&mx->q, h);
                grant(mx, h);
                granted = h;
            }
            if (!async__wq_head(&mx->q))
                atomic_fetch_and_explicit(&mx->state, ~(uint32_t)M_WAITERS, memory_order_relaxed);
        }
    } else {
        bool starved = now_ns() - w->since >= STARVE_NS;
        for (;;) {
            uint32_t n;
            if (!(s & M_LOCKED))
                n = (s | M_LOCKED) & ~(uint32_t)M_WOKEN;
            else
                n = (s | M_WAITERS | (starved ? M_STARVING : 0)) & ~(uint32_t)M_WOKEN;
            if (atomic_compare_exchange_weak_explicit(&mx->state, &s, n, memory_order_acquire,
                                                      memory_order_relaxed))
                break;
        }
        if (!(s & M_LOCKED)) {
            grant(mx, w);
            done = true;
        } else {
            async__list_push_front(&mx->q, &w->node);
            w->state = SW_QUEUED;
        }
    }
    async__slock_unlock(&mx->lock);
    if (done) async__sw_complete(w);
    if (granted) async__sw_complete(granted);
    if (retry) async__worker_post(retry->home, &retry->msg);
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
    if (try_take(mx)) {
        take_ownership(mx, self, 1);
        return async__sync_done(0);
    }
    uint32_t s = atomic_load_explicit(&mx->state, memory_order_relaxed);
    if (s & M_DEAD) return async__future_failed(EINVAL);
    if (!(s & M_STARVING) && can_spin()) {
        /* a newcomer may overtake waiters, unless one is starving */
        for (int i = 0; i < LOCK_SPINS; i++) {
            async__cpu_relax();
            s = atomic_load_explicit(&mx->state, memory_order_relaxed);
            if (s & M_STARVING) break;
            if (!(s & M_LOCKED) && try_take(mx)) {
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
    w->what = "mutex";
    async__sw_no_cancel_point(w);
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
    if (try_take(mx)) {
        take_ownership(mx, self, 1);
        return 0;
    }
    errno = (atomic_load_explicit(&mx->state, memory_order_relaxed) & M_DEAD) ? EINVAL : EBUSY;
    return -1;
}

/* Releases a held mutex: lets it go and wakes the oldest waiter, or, when the
 * mutex is starving, hands it to that waiter. */
static int release(mutex_t *mx) {
    uint32_t s = M_LOCKED;
    if (ASYNC_LIKELY(atomic_compare_exchange_strong_explicit(
            &mx->state, &s, 0, memory_order_release, memory_order_relaxed)))
        return 0;
    for (;;) {
        if (s & M_DEAD) {
            errno = EINVAL;
            return -1;
        }
        if (!(s & M_LOCKED)) {
            errno = EPERM;
            return -1;
        }
        /* a retry is on its way (its waiter will look), or nobody waits: let go */
        if (!(s & M_STARVING) && ((s & M_WOKEN) || !(s & M_WAITERS))) {
            if (atomic_compare_exchange_weak_explicit(&mx->state, &s, s & ~(uint32_t)M_LOCKED,
                                                      memory_order_release, memory_order_relaxed))
                return 0;
            continue;
        }
        break;
    }
    async__sw_t *handed = NULL, *retry = NULL;
    async__slock_lock(&mx->lock);
    /* LOCKED is ours and every other bit changes under the lock: plain stores will do */
    s = atomic_load_explicit(&mx->state, memory_order_relaxed);
    if (s & M_STARVING) { /* the head starved: it gets the mutex, and the mode ends */
        handed = async__wq_pop(&mx->q);
        s &= ~(uint32_t)M_STARVING;
        if (!async__wq_head(&mx->q)) s &= ~(uint32_t)M_WAITERS;
        grant(mx, handed);
        atomic_store_explicit(&mx->state, s, memory_order_relaxed);
    } else {
        s = wake_head(mx, s & ~(uint32_t)M_LOCKED, &retry, &handed);
        atomic_store_explicit(&mx->state, s, memory_order_release);
    }
    async__slock_unlock(&mx->lock);
    if (handed) async__sw_complete(handed);
    if (retry) async__worker_post(retry->home, &retry->msg);
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
