/* Private machinery of the sync module: the small lock that guards each
 * primitive's waiter queue, the queue itself, and the waiter operation whose
 * future a blocked call returns. Never installed.
 *
 * Lock rule: a primitive's `slock` is held only to look at or change the
 * primitive's state and queues, never across a future settle (a settle may
 * run a then-callback, i.e. user code, which may call back into the same
 * primitive). Whoever takes a waiter out of a queue (a grant, a cancel, a
 * timeout) owns its completion: it records the result under the lock and
 * settles it after dropping the lock. So a waiter is completed exactly once,
 * and a cancel that finds its waiter already out of the queue does nothing:
 * the grant wins and reports success. */
#ifndef ASYNC_SYNC_INTERNAL_H
#define ASYNC_SYNC_INTERNAL_H

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "../task/internal.h"
#include "asyncstd/sync.h"

/* ---- the small lock --------------------------------------------------------
 * 0 free, 1 held, 2 held with sleepers. Spins briefly (critical sections are a
 * few list operations), then sleeps on a futex, so a holder preempted on an
 * oversubscribed machine costs the others a sleep, not a time slice of spinning. */
typedef _Atomic uint32_t async__slock_t;

void async__slock_lock_slow(async__slock_t *l);
void async__slock_wake(async__slock_t *l);

static inline void async__slock_lock(async__slock_t *l) {
    uint32_t z = 0;
    if (ASYNC_LIKELY(atomic_compare_exchange_weak_explicit(l, &z, 1, memory_order_acquire,
                                                           memory_order_relaxed)))
        return;
    async__slock_lock_slow(l);
}

static inline void async__slock_unlock(async__slock_t *l) {
    if (ASYNC_UNLIKELY(atomic_exchange_explicit(l, 0, memory_order_release) == 2))
        async__slock_wake(l);
}


/* ---- waiters ------------------------------------------------------------- */
typedef struct async__sw async__sw_t;

typedef async__list_t async__wq_t; /* of async__sw_t, by `node`, oldest first */

enum {
    SW_INIT,    /* allocated, not yet queued: only a timer can see it */
    SW_EXPIRED, /* its timer fired before it was queued: the enqueuer completes it */
    SW_QUEUED,  /* in a queue: whoever unlinks it completes it */
    SW_DONE,    /* out of every queue, result recorded */
    /* gate.c: taken out of the queue to try again on its own worker; the
     * retry message completes it (or queues it again) */
    SW_WOKEN,
    SW_WOKEN_ABORTED, /* cancelled or expired meanwhile: the retry reports `err` */
};

/* One blocked call. The future comes first (the op is its memory); the op is
 * an ASYNC_OBJ_SMALL object, freed when owner and settler are both done. */
struct async__sw {
    async_future_t future; /* first */
    async__node_t node;    /* in `q` while SW_QUEUED */
    async__sw_t *gnext;    /* list of waiters to complete after unlocking */
    async__slock_t *lock;  /* the lock of the queue it waits in */
    async__wq_t *q;        /* that queue */
    void *prim;            /* the primitive */
    /* After a cancel or timeout unlinked it, under the lock: fix the primitive's
     * state; may grant other waiters by pushing them on *grants. Or NULL. */
    void (*removed)(async__sw_t *w, async__sw_t **grants);
    /* How a cancel or timeout takes it back (async__sw_abort, or cond's own). */
    void (*abort)(async__sw_t *w, int err);
    async_future_t *timer; /* the timeout's timer (one extra reference), or NULL */
    intptr_t value;        /* the result to settle with */
    int err;
    int state;        /* SW_*, changed under `lock` */
    int kind;         /* per primitive: read/write, send/recv */
    const char *what; /* the primitive, for dumps: "mutex", "channel recv" */
    unsigned count;
    void *buf;                  /* channels: the item */
    void *owner;                /* mutexes and rwlocks: the caller's identity */
    void *extra;                /* cond: the mutex */
    struct async__worker *home; /* the waiting task's worker, NULL for a plain thread */
    /* gate.c (mutexes, rwlocks, semaphores): */
    const struct async__gate_ops *gops; /* the primitive's rules */
    int gkind;        /* what it waits for, as `take` sees it: 0, or a writer (see starve_check) */
    async__msg_t msg; /* the retry sent to `home` */
    uint64_t since;   /* when it first queued (ns, monotonic) */
};

/* The first waiter of a queue, or NULL. */
static inline async__sw_t *async__wq_head(async__wq_t *q) {
    return async__list_entry(q->head, async__sw_t, node);
}
static inline void async__wq_push(async__wq_t *q, async__sw_t *w) {
    async__list_push_back(q, &w->node);
}
static inline void async__wq_remove(async__wq_t *q, async__sw_t *w) {
    async__list_remove(q, &w->node);
}
static inline async__sw_t *async__wq_pop(async__wq_t *q) {
    return async__list_entry(async__list_pop_front(q), async__sw_t, node);
}

/* A waiter for `prim`, queue `q` guarded by `lock`, in state SW_INIT. NULL
 * (errno ENOMEM) if out of memory. */
async__sw_t *async__sw_new(void *prim, async__slock_t *lock, async__wq_t *q,
                           void (*removed)(async__sw_t *, async__sw_t **));
/* Arms a timeout of `ms` milliseconds on a waiter in SW_INIT (before it is
 * queued). On expiry w->abort(w, ETIMEDOUT) runs. */
void async__sw_arm(async__sw_t *w, uint64_t ms);
/* Under the lock: queue a waiter in SW_INIT. Returns false if its timer has
 * already fired (state SW_EXPIRED): the caller then completes it. */
bool async__sw_enqueue(async__sw_t *w);
/* Under the lock: take a queued waiter out with a result (a grant). */
static inline void async__sw_grant(async__sw_t *w, intptr_t value, int err, async__sw_t **grants) {
    async__wq_remove(w->q, w);
    w->state = SW_DONE;
    w->value = err ? -1 : value;
    w->err = err;
    w->gnext = *grants;
    *grants = w;
}
/* Without the lock: settle a waiter taken out of its queue, stop its timer and
 * drop the settler's reference. */
void async__sw_complete(async__sw_t *w);
/* A list built by async__sw_grant (newest first), in grant order. */
async__sw_t *async__sw_grant_order(async__sw_t *grants);
/* Completes a list built by async__sw_grant (in grant order). */
void async__sw_complete_list(async__sw_t *grants);
/* Default abort: unlink if still queued, record `err`, run `removed`, complete. */
void async__sw_abort(async__sw_t *w, int err);
/* Under the lock: record the result of a waiter that was never queued (it got
 * what it wanted at once, or its timer fired first); complete it after unlocking. */
static inline void async__sw_done_unqueued(async__sw_t *w, intptr_t value, int err) {
    w->state = SW_DONE;
    w->value = err ? -1 : value;
    w->err = err;
}

/* An already settled future with value 0 or 1, without allocation: one per
 * thread, whose reference count never lets it be released. */
async_future_t *async__sync_done(intptr_t value);

/* The caller's identity for owner checks: its task, or its thread. */
void *async__sync_self(void);

/* Milliseconds from now until `abstime` on `clock`, rounded up; 0 if past.
 * -1 with errno EINVAL for a bad timespec. */
int64_t async__abstime_ms(clockid_t clock, const struct timespec *abstime);

/* Whether `abstime` is NULL or its tv_nsec out of range: the calls that glibc
 * checks before they try (rwlock, semaphore and condition waits) ask first. */
bool async__abstime_bad(const struct timespec *abstime);

/* The clocks the *clock* calls (pthread_mutex_clocklock, sem_clockwait, ...)
 * take, as glibc's: any other is EINVAL before anything else. */
static inline bool async__clock_ok(clockid_t clock) {
    return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC;
}

/* A waiter whose await in a task is no cancellation point (lock waits, as
 * pthread_mutex_lock is none); cancelling its future still works. */
static inline void async__sw_no_cancel_point(async__sw_t *w) {
    atomic_fetch_or_explicit(&w->future.flags, F_NOCANCEL, memory_order_relaxed);
}

/* ---- the gate: barging with a starvation hand-off ----------------------------
 * The contended path of mutexes, rwlocks and semaphores (gate.c). A
 * primitive's state is one 64-bit word: its own bits below G_FLAGS (the
 * mutex's LOCKED bit, the rwlock's writer bit and reader count, the
 * semaphore's count) and the gate's flags above, so that one compare-and-swap
 * both takes the primitive and sees whether anyone waits. The primitive says,
 * through async__gate_ops_t, whether a waiter of a given kind may take it in
 * a given state and what the state becomes; the gate does the rest:
 *
 * - a newcomer takes the primitive whenever `take` allows (it "barges" past
 *   queued waiters), unless the gate is STARVING;
 * - a release that finds waiters and no retry on its way wakes the head of
 *   the queue, if `take` would let it in, by a retry message to the head's
 *   own worker (WOKEN marks the one retry in flight), where the head takes
 *   it or goes back to the front of the queue; a head that takes it wakes the
 *   next head if that one may also take it (readers, semaphore units);
 * - a head overtaken after waiting STARVE_NS (found so by its retry, or, for
 *   a writer that readers keep out, by a release) marks the gate STARVING:
 *   newcomers stop barging and the next release hands the primitive straight
 *   to the head, which ends the mode (one hand-off per starved waiter);
 * - a waiter on a plain thread (no worker to retry on) is always handed the
 *   primitive directly.
 *
 * Invariants. The primitive's bits change without `lock` (fast paths) and
 * under it; WAITERS (the queue is not empty), WOKEN and STARVING change only
 * under `lock`. STARVING implies WAITERS and no WOKEN. A queue whose head
 * `take` would admit implies WOKEN (a retry will look) or a release about to
 * take `lock` and look: so no wake-up is lost. */
#define G_WAITERS (1ull << 32)
#define G_WOKEN (1ull << 33)
#define G_STARVING (1ull << 34)
#define G_DEAD (1ull << 35)
#define G_FLAGS (~0ull << 32)

typedef struct async__gate {
    _Atomic uint64_t state;
    async__slock_t lock;
    async__wq_t q;
} async__gate_t;

typedef struct async__gate_ops {
    /* Whether a caller of `kind` may take the primitive in state `s`, and the
     * state after it did (*n). Pure: called in compare-and-swap loops. */
    bool (*take)(uint64_t s, int kind, uint64_t *n);
    /* Under `lock`: waiter `w` has taken the primitive (record its owner), or NULL. */
    void (*granted)(async__gate_t *g, async__sw_t *w);
} async__gate_ops_t;

/* Takes the primitive for a newcomer of `kind` if it may (never while
 * STARVING): 1 taken, 0 not, -1 destroyed. */
static inline int async__gate_try(async__gate_t *g, const async__gate_ops_t *ops, int kind) {
    uint64_t s = atomic_load_explicit(&g->state, memory_order_relaxed), n;
    for (;;) {
        if (s & (G_DEAD | G_STARVING)) return (s & G_DEAD) ? -1 : 0;
        if (!ops->take(s, kind, &n)) return 0;
        if (atomic_compare_exchange_weak_explicit(&g->state, &s, n, memory_order_acquire,
                                                  memory_order_relaxed))
            return 1;
    }
}
/* Like async__gate_try after a short spin, when the holder may be running on
 * another thread meanwhile. `settle`: take the primitive only if it is still
 * free a moment after it was seen free (gate.c), which keeps it on the worker
 * that uses it (the mutex's task callers; not the rwlock). */
int async__gate_spin(async__gate_t *g, const async__gate_ops_t *ops, int kind, bool settle);
/* A waiter of `kind` for the gate (`prim` is the gate), with its timeout armed
 * (ms > 0). NULL (errno ENOMEM) if out of memory. */
async__sw_t *async__gate_waiter(async__gate_t *g, int kind, int64_t ms);
/* Takes the primitive for `w` or queues it; returns its future (settled when
 * taken at once or on an error: EINVAL destroyed, or its timer's error). */
async_future_t *async__gate_wait(async__gate_t *g, const async__gate_ops_t *ops, async__sw_t *w);
/* Under g->lock: the same for a waiter made elsewhere (cond.c's). True if it
 * is done (taken, or *err set: EINVAL destroyed, or its timer's error). */
bool async__gate_enter(async__gate_t *g, const async__gate_ops_t *ops, async__sw_t *w, int *err);
/* After a release left state `s`: whether the gate must look at its queue. */
static inline bool async__gate_must_look(uint64_t s) {
    return (s & G_STARVING) || (s & (G_WAITERS | G_WOKEN)) == G_WAITERS;
}
/* A release that must look (async__gate_must_look of the state it leaves),
 * under the gate's lock: adds `delta` to the state (letting the primitive
 * go), then looks. Letting go only once the lock is held keeps bargers from
 * taking the primitive in the window before the look, which woke the head
 * for nothing: the mutex's 50 ns + await row ran 1.5x pthread's time that
 * way, 1.0x this way (bench/RESULTS.md). */
void async__gate_release(async__gate_t *g, int64_t delta);

/* Internal entry points shared between primitives. */
async_future_t *async__sem_wait_ms(async_sem_t *sem, int64_t ms); /* ms < 0: no limit */
/* cond.c moves its waiters into a mutex's queue: acquire for `w` or queue it;
 * true if acquired at once (w is then not queued). */
bool async__mutex_acquire_for(async_mutex_t *m, async__sw_t *w);
/* Unlock for a cond wait: fully releases the mutex (any recursion count is
 * returned in *count, and given back when the waiter retakes it). 0, or -1
 * with async_mutex_unlock()'s errno. */
int async__mutex_release_all(async_mutex_t *m, unsigned *count);
/* 0 if the caller may wait on a cond with `m` (it holds it), else the errno
 * to settle the wait with: EPERM (not held, or held by another), EINVAL
 * (destroyed). */
int async__mutex_check_held(async_mutex_t *m);

#endif
