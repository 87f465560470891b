/* The gate: the contended path that mutexes, rwlocks and semaphores share
 * (the rules are at async__gate_t in internal.h). Barging after Go's
 * sync.Mutex: a release lets the primitive go and sends the head of the
 * queue a retry to its own worker, while running tasks may take it meanwhile.
 * Handing it straight to a waiter on another worker would leave it held by
 * nobody running for the few microseconds a wake-up through the inbox takes,
 * and every task that wants it would queue behind: a convoy, at a fraction
 * of one worker's throughput.
 *
 * Starvation: a head overtaken after waiting STARVE_NS marks the gate
 * STARVING and gets the next release by hand-off, which ends the mode. One
 * hand-off per starved waiter, not FIFO until the queue empties (Go's rule):
 * with tasks that lock again right after unlocking the queue never empties,
 * every waiter in it has waited long, and under wake-up latency (a loaded
 * machine) the gate stayed in hand-off mode, a convoy again (one run of the
 * mutex benchmark took 197 us per hold instead of 3 us). */
#include <stdlib.h>

#include "internal.h"

/* Spinning pays off only when the holder runs on another thread; with one
 * worker and a task caller, the holder cannot run meanwhile. A spin lasts at
 * most LOCK_SPINS pauses (about 3 us here), settle pauses included. */
#define LOCK_SPINS 128
/* A spinner that sees the primitive free waits this many pauses (about 0.4 us
 * here) and takes it only if it is still free: see async__gate_spin. */
#define SETTLE_PAUSES 16
/* A woken waiter's spin on its own worker: a queued waiter takes the primitive
 * the moment it is free, without the settle pause. */
#define RETRY_SPINS 64
/* How long a waiter may be overtaken before it is handed the primitive (Go's figure). */
#define STARVE_NS 1000000u

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool can_spin(void) { return async__rt.nworkers > 1 || !async__task_current(); }

/* The settle pause keeps the primitive on the worker that uses it. A
 * spinner on another worker that took it the moment it was let go stole it
 * between two holds of the holder's worker (its next lock, or a yield to its
 * next task, comes within tens of nanoseconds): with tasks on two workers
 * taking one mutex, nearly every hold changed worker, and each move carries
 * the lock's and the critical section's cache lines across. A primitive still
 * free after the pause is not wanted where it was. The rwlock does not
 * settle (`settle` false): a writer that paused let readers in first, and
 * then starved into a hand-off, which took the read-mostly row of the
 * benchmark from 0.8 to 1.3 us per hold (bench/RESULTS.md, "lock affinity").
 * A settling spinner also looks less and less often (1, 2, 4, 8, then every 16
 * pauses): each look pulls the gate's cache line to the spinner's core, and
 * the holder's worker, which takes and lets go of the primitive every few
 * tens of nanoseconds, then pays a miss for each. That took the mutex's
 * 50ns+await row at two workers from about 142 to 111 ns per hold and
 * pipeline16 from 82 to 64 (bench/RESULTS.md, "Spinners that look less
 * often"); the rwlock's readers, who may share it, look every pause (with
 * the back-off, the read-mostly row went from 0.8 to 1.2-1.6 us). */
int async__gate_spin(async__gate_t *g, const async__gate_ops_t *ops, int kind, bool settle) {
    if (!can_spin()) return 0;
    for (int i = 0, gap = 1; i < LOCK_SPINS; i += gap, gap = settle && gap < 16 ? gap * 2 : gap) {
        for (int k = 0; k < gap; k++) async__cpu_relax();
        uint64_t s = atomic_load_explicit(&g->state, memory_order_relaxed), n;
        if (s & (G_STARVING | G_DEAD)) return 0; /* a dead gate: the caller's wait reports it */
        if (!ops->take(s, kind, &n)) continue;
        if (settle) {
            for (int k = 0; k < SETTLE_PAUSES; k++) async__cpu_relax();
            i += SETTLE_PAUSES;
            s = atomic_load_explicit(&g->state, memory_order_relaxed);
            if (s & (G_STARVING | G_DEAD)) return 0;
        }
        if (ops->take(s, kind, &n) &&
            atomic_compare_exchange_weak_explicit(&g->state, &s, n, memory_order_acquire,
                                                  memory_order_relaxed))
            return 1;
    }
    return 0;
}

/* ---- under g->lock ------------------------------------------------------------- */

/* The waiter holds the primitive now: record its result and owner. */
static void finish(async__gate_t *g, async__sw_t *w) {
    w->state = SW_DONE;
    w->value = w->err ? -1 : 0; /* a cond waiter may carry ETIMEDOUT/ECANCELED */
    if (w->gops->granted) w->gops->granted(g, w);
}


static void on_retry(async__worker_t *wk, async__msg_t *m);

/* The gate a waiter waits at, found from its queue: a cond waiter moved into
 * a mutex's queue keeps `prim` (its condition, which a dump of its task may be
 * reading meanwhile). */
static async__gate_t *gate_of(async__sw_t *w) { return ASYNC_CONTAINER_OF(w->q, async__gate_t, q); }

/* The head `w` may not take the primitive in state `s`, at a release. A head
 * of kind 0 (a mutex or semaphore waiter, a reader) is let in by the release
 * of what it waits for, so it is woken and its retry finds out whether it
 * starves (Go's rule). A writer among readers whose holds keep overlapping is
 * never woken, and a plain thread is never retried (a barger can take what a
 * release freed before the release hands it over), yet each must get its
 * turn: once it has waited STARVE_NS, the gate starves for it. */
static void starve_check(async__gate_t *g, async__sw_t *w, uint64_t s) {
    if ((w->gkind || !w->home) && !(s & (G_STARVING | G_WOKEN)) && now_ns() - w->since >= STARVE_NS)
        atomic_fetch_or_explicit(&g->state, G_STARVING, memory_order_relaxed);
}

/* Serves the head of the queue while it may take the primitive: a task
 * waiter gets a retry (`*retry`, to post after unlocking; none while one is
 * on its way), a plain thread or a starved head is handed the primitive
 * (pushed on *grants). At a release (`release`), a writer or plain thread at
 * the head that may not take it and has waited STARVE_NS marks the gate
 * STARVING. */
static void dispatch(async__gate_t *g, async__sw_t **grants, async__sw_t **retry, bool release) {
    async__sw_t *w;
    while ((w = async__wq_head(&g->q))) {
        uint64_t s = atomic_load_explicit(&g->state, memory_order_relaxed), n;
        uint64_t empty = w->node.next ? 0 : G_WAITERS; /* WAITERS goes when w leaves */
        if ((s & G_STARVING) || !w->home) {
            do {
                if (!w->gops->take(s, w->gkind, &n)) {
                    if (release) starve_check(g, w, s);
                    return;
                }
                n &= ~(G_STARVING | empty);
            } while (!atomic_compare_exchange_weak_explicit(&g->state, &s, n, memory_order_acquire,
                                                            memory_order_relaxed));
            async__wq_remove(&g->q, w);
            finish(g, w);
            w->gnext = *grants;
            *grants = w;
            continue;
        }
        do {
            if (s & G_WOKEN) return;
            if (!w->gops->take(s, w->gkind, &n)) {
                if (release) starve_check(g, w, s);
                return;
            }
            n = (s | G_WOKEN) & ~empty;
        } while (!atomic_compare_exchange_weak_explicit(&g->state, &s, n, memory_order_relaxed,
                                                        memory_order_relaxed));
        async__wq_remove(&g->q, w);
        w->state = SW_WOKEN;
        w->msg.run = on_retry;
        *retry = w;
        return;
    }
}

/* ---- without the lock ------------------------------------------------------------ */

/* Settles a waiter the gate let in so that its task runs next on its worker:
 * until it runs, it holds the primitive, and every other ready task there
 * would find it taken, spin and queue (a queued task comes back only by a
 * retry, one at a time: bench/RESULTS.md, "lock affinity"). */
static void settle_first(async__worker_t *wk, async__sw_t *w) {
    wk->ready_first = true;
    async__sw_complete(w);
    wk->ready_first = false; /* if the settle made no task ready here */
}

static void on_granted(async__worker_t *wk, async__msg_t *m) {
    settle_first(wk, ASYNC_CONTAINER_OF(m, async__sw_t, msg));
}

static void complete_all(async__sw_t *w, async__sw_t *grants, async__sw_t *retry) {
    if (w) async__sw_complete(w);
    async__sw_t *rev = async__sw_grant_order(grants);
    while (rev) {
        async__sw_t *next = rev->gnext;
        if (!rev->home) { /* a plain thread */
            async__sw_complete(rev);
        } else if (rev->home == async__tls_worker) {
            settle_first(rev->home, rev);
        } else { /* settled on its worker: one message, as the task's wake-up would be */
            rev->msg.run = on_granted;
            async__worker_post(rev->home, &rev->msg);
        }
        rev = next;
    }
    if (retry) async__worker_post(retry->home, &retry->msg);
}

/* On the waiter's own worker: take the primitive if it may, else go back to
 * the front of the queue (and mark the gate STARVING if it waited too long). */
static void on_retry(async__worker_t *wk, async__msg_t *m) {
    async__sw_t *w = ASYNC_CONTAINER_OF(m, async__sw_t, msg);
    async__gate_t *g = gate_of(w);
    const async__gate_ops_t *ops = w->gops;
    uint64_t s, n;
    /* the holder runs on another worker, or the primitive would be free now:
     * it may be about to let go */
    if (async__rt.nworkers > 1)
        for (int i = 0; i < RETRY_SPINS; i++) {
            s = atomic_load_explicit(&g->state, memory_order_relaxed);
            if (ops->take(s, w->gkind, &n)) break;
            async__cpu_relax();
        }
    async__sw_t *grants = NULL, *retry = NULL;
    bool done = false, took = false;
    async__slock_lock(&g->lock);
    if (w->state == SW_WOKEN_ABORTED) {
        w->state = SW_DONE;
        w->value = -1;
        done = true;
        /* the release that woke us left the queue to us */
        atomic_fetch_and_explicit(&g->state, ~G_WOKEN, memory_order_relaxed);
        dispatch(g, &grants, &retry, false);
    } else {
        bool starved = now_ns() - w->since >= STARVE_NS;
        s = atomic_load_explicit(&g->state, memory_order_relaxed);
        do {
            took = ops->take(s, w->gkind, &n);
            if (took)
                n &= ~G_WOKEN;
            else
                n = (s | G_WAITERS | (starved ? G_STARVING : 0)) & ~G_WOKEN;
        } while (!atomic_compare_exchange_weak_explicit(&g->state, &s, n, memory_order_acquire,
                                                        memory_order_relaxed));
        if (took) {
            finish(g, w);
            done = true;
            dispatch(g, &grants, &retry, false); /* the next head may take it too */
        } else {
            async__list_push_front(&g->q, &w->node);
            w->state = SW_QUEUED;
        }
    }
    async__slock_unlock(&g->lock);
    if (took) {
        settle_first(wk, w);
        w = NULL;
    }
    complete_all(done ? w : NULL, grants, retry);
}

/* A gate waiter's cancel or timeout. */
static void gate_abort(async__sw_t *w, int err) {
    async__gate_t *g = gate_of(w);
    async__sw_t *grants = NULL, *retry = NULL;
    async__slock_lock(&g->lock);
    switch (w->state) {
    case SW_INIT: /* a timer that fired before the enqueue */
        w->state = SW_EXPIRED;
        w->err = err;
        async__slock_unlock(&g->lock);
        return;
    case SW_WOKEN: /* out of the queue to retry: the retry reports it */
        w->state = SW_WOKEN_ABORTED;
        w->err = err;
        async__slock_unlock(&g->lock);
        return;
    case SW_QUEUED:
        break;
    default: /* already granted: the grant wins */
        async__slock_unlock(&g->lock);
        return;
    }
    async__wq_remove(&g->q, w);
    w->state = SW_DONE;
    w->value = -1;
    w->err = err;
    if (async__list_empty(&g->q))
        atomic_fetch_and_explicit(&g->state, ~(G_WAITERS | G_STARVING), memory_order_relaxed);
    else
        dispatch(g, &grants, &retry, false); /* a reader behind a writer that left may go */
    async__slock_unlock(&g->lock);
    complete_all(w, grants, retry);
}

async__sw_t *async__gate_waiter(async__gate_t *g, int kind, int64_t ms) {
    async__sw_t *w = async__sw_new(g, &g->lock, &g->q, NULL);
    if (!w) return NULL;
    w->abort = gate_abort;
    w->gkind = kind;
    if (ms > 0) async__sw_arm(w, (uint64_t)ms);
    return w;
}

bool async__gate_enter(async__gate_t *g, const async__gate_ops_t *ops, async__sw_t *w, int *err) {
    w->gops = ops;
    for (;;) {
        uint64_t s = atomic_load_explicit(&g->state, memory_order_relaxed), n;
        if (s & G_DEAD) {
            *err = EINVAL;
            break;
        }
        if (!(s & G_STARVING) && ops->take(s, w->gkind, &n)) {
            if (!atomic_compare_exchange_weak_explicit(&g->state, &s, n, memory_order_acquire,
                                                       memory_order_relaxed))
                continue;
            *err = 0;
            finish(g, w);
            return true;
        }
        if (w->state == SW_EXPIRED) {
            *err = w->err;
            break;
        }
        if (!(s & G_WAITERS) &&
            !atomic_compare_exchange_weak_explicit(&g->state, &s, s | G_WAITERS,
                                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        if (!w->since) w->since = now_ns();
        async__sw_enqueue(w);
        *err = 0;
        return false;
    }
    w->state = SW_DONE;
    w->value = -1;
    w->err = *err;
    return true;
}

async_future_t *async__gate_wait(async__gate_t *g, const async__gate_ops_t *ops, async__sw_t *w) {
    int err;
    async__slock_lock(&g->lock);
    bool done = async__gate_enter(g, ops, w, &err);
    async__slock_unlock(&g->lock);
    if (done) async__sw_complete(w);
    return &w->future;
}

void async__gate_release(async__gate_t *g, int64_t delta) {
    async__sw_t *grants = NULL, *retry = NULL;
    async__slock_lock(&g->lock);
    atomic_fetch_add_explicit(&g->state, (uint64_t)delta, memory_order_release);
    dispatch(g, &grants, &retry, true);
    async__slock_unlock(&g->lock);
    complete_all(NULL, grants, retry);
}
