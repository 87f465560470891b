/* The virtual clock (async_config_t.clock, ASYNCSTD_CLOCK): timers that do not
 * wait for real time. Under it every timer of the library (the sleeps, the
 * timeouts of awaits, polls, lock and condition waits) is an entry in one
 * heap owned by the runtime, ordered by deadline and then by creation, instead
 * of a libuv timer on a worker's loop. The clock moves only when nothing but a
 * timer can make progress; it then jumps to the earliest deadline, and firing
 * posts a message to each due timer's home worker (the worker that made it, or
 * the waiter for a plain thread), which settles it there, so callbacks and
 * hooks run where they would under the real clock.
 *
 * Deciding that nothing can make progress. A worker about to block looks at
 * its I/O once more without blocking and then "parks" here. The clock may move
 * when every worker (the waiter too) is parked with an empty inbox and no
 * unstarted task, no pool job is queued or running, and someone wants it to
 * move: a plain thread blocked in an await (auto mode only; a plain thread
 * that runs is invisible to the runtime and may be about to spawn or settle
 * something), an async_clock_advance() in progress, or a shutdown waiting for
 * tasks. That alone is not enough: a worker that has just taken socket
 * readiness from its epoll, sent by a task of another worker, still looks
 * parked until it runs the woken task. So the move also needs a quiet round:
 * when all are parked, the one that parked last starts a round (snapshots
 * every worker's count of task runs and rings the others that have io ops
 * parked); each wakes, looks at its I/O, parks again and acknowledges the
 * round if it ran no task since the snapshot. Only a round acknowledged by
 * all, with nothing run anywhere, moves the clock. I/O from outside the process (a peer, a child,
 * a file) does not hold the clock back, as with Tokio's paused time.
 *
 * The real clock's path pays one predictable branch in async__timer and in a
 * worker about to block, and none elsewhere on a task's hot path. Lock order:
 * the clock's lock is taken alone, and nothing that runs user code (settling)
 * is called while holding it; posting a message and ringing a worker are. */
#include <stdlib.h>

#include "internal.h"

#define NOT_QUEUED ((size_t)-1)
#define TIMER_MS_MAX (UINT64_MAX / 2 / 1000000) /* as timer.c: about 292 years */

typedef struct vtimer {
    async_future_t future; /* first */
    async__msg_t fire_msg, cancel_msg;
    async__worker_t *home;
    uint64_t due, seq;
    size_t slot; /* index in the heap, or NOT_QUEUED once taken out */
    struct timespec *rem;
} vtimer_t;

typedef struct advance {
    async_future_t future; /* first */
    uint64_t target;
} advance_t;

static struct {
    pthread_mutex_t lock;
    _Atomic uint64_t now; /* written under the lock */
    vtimer_t **heap;
    size_t len, cap;
    uint64_t seq;
    bool autoadvance;         /* ASYNC_CLOCK_VIRTUAL: moves when idle and someone waits */
    bool down;                /* shutdown: the workers are exiting, nothing moves */
    advance_t *adv;           /* the async_clock_advance() in progress, or NULL */
    atomic_int plain_waiting; /* plain threads blocked in an await */
    atomic_long holds;        /* pool jobs queued or running */
} vc = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ---- the heap: (due, seq) order ------------------------------------------- */

static bool before(const vtimer_t *a, const vtimer_t *b) {
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void place(size_t i, vtimer_t *t) {
    vc.heap[i] = t;
    t->slot = i;
}

static void sift_up(size_t i) {
    vtimer_t *t = vc.heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(t, vc.heap[p])) break;
        place(i, vc.heap[p]);
        i = p;
    }
    place(i, t);
}

static void sift_down(size_t i) {
    vtimer_t *t = vc.heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= vc.len) break;
        if (c + 1 < vc.len && before(vc.heap[c + 1], vc.heap[c])) c++;
        if (!before(vc.heap[c], t)) break;
        place(i, vc.heap[c]);
        i = c;
    }
    place(i, t);
}

static void heap_remove(vtimer_t *t) {
    size_t i = t->slot;
    t->slot = NOT_QUEUED;
    vtimer_t *last = vc.heap[--vc.len];
    if (last == t) return;
    place(i, last);
    if (i > 0 && before(last, vc.heap[(i - 1) / 2]))
        sift_up(i);
    else
        sift_down(i);
}

/* ---- timers --------------------------------------------------------------- */

static void vtimer_release(async_future_t *f) { async__obj_free(ASYNC_OBJ_SMALL, f); }

static void set_rem(vtimer_t *t, uint64_t left_ns) {
    if (!t->rem) return;
    t->rem->tv_sec = (time_t)(left_ns / 1000000000u);
    t->rem->tv_nsec = (long)(left_ns % 1000000000u);
}

/* On the home worker: the timer was taken from the heap by a move of the clock. */
static void on_fire(async__worker_t *w, async__msg_t *m) {
    vtimer_t *t = ASYNC_CONTAINER_OF(m, vtimer_t, fire_msg);
    /* the metrics' timer count is the home worker's own, so a timer is counted
     * where it ends (fired, cancelled, or swept at exit), not where it was made */
    async__count(&w->count.timers, 1);
    async__future_complete(&t->future, 0, 0); /* rem untouched, as by nanosleep(2) */
}

/* Must hold the lock: takes `t` out and has its home settle it. */
static void fire_locked(vtimer_t *t) {
    if (t->slot != NOT_QUEUED) heap_remove(t);
    t->fire_msg.run = on_fire;
    async__worker_post(t->home, &t->fire_msg);
}

/* On the home worker (or any thread at shutdown): a cancel that finds the timer
 * still in the heap settles it; one that finds it fired leaves it to on_fire. */
static void cancel_here(vtimer_t *t) {
    pthread_mutex_lock(&vc.lock);
    bool queued = t->slot != NOT_QUEUED;
    uint64_t now = atomic_load_explicit(&vc.now, memory_order_relaxed);
    if (queued) heap_remove(t);
    pthread_mutex_unlock(&vc.lock);
    if (!queued) return;
    async__count(&t->home->count.timers, 1); /* on the home worker (see on_fire) */
    set_rem(t, t->due > now ? t->due - now : 0);
    async__future_complete(&t->future, -1, ECANCELED);
}

static void on_cancel_msg(async__worker_t *w, async__msg_t *m) {
    (void)w;
    vtimer_t *t = ASYNC_CONTAINER_OF(m, vtimer_t, cancel_msg);
    cancel_here(t);
    async__future_unref(&t->future); /* the message's hold */
}

static void vtimer_cancel(async_future_t *f) {
    vtimer_t *t = (vtimer_t *)f;
    if (async__tls_worker == t->home) {
        cancel_here(t);
        return;
    }
    async__future_ref(f);
    t->cancel_msg.run = on_cancel_msg;
    async__worker_post(t->home, &t->cancel_msg);
}

static void vtimer_describe(const async_future_t *f, async__wait_t *out) {
    const vtimer_t *t = (const vtimer_t *)f;
    /* the deadline on the virtual clock, which a dump reads through async_clock_now() */
    async__wait_set(out, ASYNC_WAIT_TIMER, "sleep", NULL, NULL, NULL, (int64_t)t->due);
}

static const async__future_ops_t vtimer_ops = {vtimer_cancel, vtimer_release, vtimer_describe};

async_future_t *async__vclock_timer(uint64_t ms, struct timespec *rem) {
    vtimer_t *t = async__obj_alloc(ASYNC_OBJ_SMALL);
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    _Static_assert(sizeof(vtimer_t) <= ASYNC_OBJ_SMALL_SIZE, "vtimer_t outgrew its class");
    async__future_init(&t->future, &vtimer_ops);
    t->home = async__tls_worker ? async__tls_worker : async__runtime_waiter();
    t->rem = rem;
    t->slot = NOT_QUEUED;
    if (ms > TIMER_MS_MAX) ms = TIMER_MS_MAX;
    pthread_mutex_lock(&vc.lock);
    uint64_t now = atomic_load_explicit(&vc.now, memory_order_relaxed);
    t->due = now + ms * 1000000 < now ? UINT64_MAX : now + ms * 1000000;
    t->seq = vc.seq++;
    if (t->home->vc_closed) { /* a plain thread's timer during shutdown */
        pthread_mutex_unlock(&vc.lock);
        set_rem(t, ms * 1000000);
        async__future_complete(&t->future, -1, ECANCELED);
        return &t->future;
    }
    if (ms == 0) { /* due now: the clock need not move */
        fire_locked(t);
        pthread_mutex_unlock(&vc.lock);
        return &t->future;
    }
    if (vc.len == vc.cap) {
        size_t cap = vc.cap ? vc.cap * 2 : 64;
        vtimer_t **h = realloc(vc.heap, cap * sizeof *h);
        if (!h) {
            pthread_mutex_unlock(&vc.lock);
            async__obj_free(ASYNC_OBJ_SMALL, t);
            errno = ENOMEM;
            return NULL;
        }
        vc.heap = h;
        vc.cap = cap;
    }
    vc.heap[vc.len] = t;
    t->slot = vc.len++;
    sift_up(t->slot);
    pthread_mutex_unlock(&vc.lock);
    return &t->future;
}

/* ---- deciding to move ----------------------------------------------------- */

static unsigned long task_runs(async__worker_t *w) {
    return atomic_load_explicit(&w->ticks, memory_order_relaxed);
}

/* Must hold the lock. Whether anyone wants the clock to move, and it has somewhere to go. */
static bool wanted(void) {
    if (vc.down || atomic_load(&vc.holds) > 0) return false;
    if (vc.adv) return true;
    if (vc.len == 0) return false;
    /* a shutdown waits for the last tasks, in either mode */
    return atomic_load_explicit(&async__rt.stopping, memory_order_relaxed) ||
           (vc.autoadvance && atomic_load(&vc.plain_waiting) > 0);
}

enum { NOTHING, ROUND, MOVE };

/* Must hold the lock. `self` is the parking worker, or NULL for another thread. */
static int decide(async__worker_t *self) {
    if (!wanted()) return NOTHING;
    async__runtime_t *rt = &async__rt;
    bool acked = true;
    for (unsigned i = 0; i <= rt->nworkers; i++) {
        async__worker_t *w = &rt->workers[i];
        if (!w->vc_parked || atomic_load(&w->inbox) || atomic_load(&w->newq_len))
            return NOTHING; /* it is running, or will: its park decides again */
        if (!w->vc_acked) acked = false;
    }
    return acked && self ? MOVE : ROUND;
}

/* Must hold the lock: every worker but `self` that waits for readiness must
 * wake, look at its I/O and park again without running a task. One without
 * parked io ops has nothing to look at: its inbox, which is empty, is all
 * that could wake it. Started by another thread, the round rings at least
 * one worker, which then moves the clock if nobody else needs to look. */
static void start_round(async__worker_t *self) {
    async__runtime_t *rt = &async__rt;
    bool rang = false;
    for (unsigned i = 0; i <= rt->nworkers; i++) {
        async__worker_t *w = &rt->workers[i];
        w->vc_snapshot = task_runs(w);
        w->vc_acked = w == self || !w->vc_io;
        if (!w->vc_acked) {
            async__worker_ring(w);
            rang = true;
        }
    }
    if (!self && !rang) {
        rt->workers[0].vc_acked = false;
        async__worker_ring(&rt->workers[0]);
    }
}

/* Must hold the lock: moves to the next deadline and fires the timer due then,
 * or ends the advance in progress; returns that advance for the caller to
 * settle outside the lock. */
static advance_t *move(void) {
    if (vc.len > 0 && (!vc.adv || vc.heap[0]->due <= vc.adv->target)) {
        /* One timer per move, even when others are due at the same time: the
         * tasks it wakes run (on whatever worker) before the next fires, so
         * ties too wake in one order, the order the timers were made. */
        atomic_store_explicit(&vc.now, vc.heap[0]->due, memory_order_relaxed);
        fire_locked(vc.heap[0]);
        return NULL;
    }
    advance_t *a = vc.adv;
    vc.adv = NULL;
    if (a->target > atomic_load_explicit(&vc.now, memory_order_relaxed))
        atomic_store_explicit(&vc.now, a->target, memory_order_relaxed);
    return a;
}

bool async__vclock_park(async__worker_t *w) {
    pthread_mutex_lock(&vc.lock);
    w->vc_parked = true;
    w->vc_acked = task_runs(w) == w->vc_snapshot;
    w->vc_io = w->io_parked != 0;
    advance_t *done = NULL;
    bool moved = false;
    int next = decide(w);
    if (next == ROUND) {
        start_round(w);
        next = decide(w); /* nobody else may need to look */
    }
    if (next == MOVE) {
        done = move();
        moved = true;
        w->vc_parked = false;
    }
    pthread_mutex_unlock(&vc.lock);
    if (done) async__future_complete(&done->future, 0, 0);
    return moved;
}

void async__vclock_unpark(async__worker_t *w) {
    pthread_mutex_lock(&vc.lock);
    w->vc_parked = false;
    pthread_mutex_unlock(&vc.lock);
}

/* Something outside the workers became idle: if the workers are all parked,
 * they must look again (a round), since what that thread did may have made
 * one of them runnable in a way it has not yet shown. */
void async__vclock_kick(void) {
    if (atomic_load_explicit(&async__rt_state, memory_order_acquire) != 2) return;
    pthread_mutex_lock(&vc.lock);
    if (decide(NULL) != NOTHING) start_round(NULL);
    pthread_mutex_unlock(&vc.lock);
}

void async__vclock_plain_wait_begin(void) { atomic_fetch_add(&vc.plain_waiting, 1); }

void async__vclock_plain_done(void) { atomic_fetch_sub(&vc.plain_waiting, 1); }

void async__vclock_hold(void) { atomic_fetch_add(&vc.holds, 1); }

void async__vclock_release(void) {
    if (atomic_fetch_sub(&vc.holds, 1) == 1) async__vclock_kick();
}

/* ---- the runtime's life --------------------------------------------------- */

void async__vclock_start(bool autoadvance) {
    pthread_mutex_lock(&vc.lock);
    atomic_store(&vc.now, uv_hrtime()); /* it starts where the real clock is */
    vc.autoadvance = autoadvance;
    vc.down = false;
    vc.seq = 0;
    atomic_store(&vc.plain_waiting, 0);
    atomic_store(&vc.holds, 0);
    pthread_mutex_unlock(&vc.lock);
}

void async__vclock_down(void) {
    pthread_mutex_lock(&vc.lock);
    vc.down = true;
    advance_t *a = vc.adv;
    vc.adv = NULL;
    pthread_mutex_unlock(&vc.lock);
    if (a) async__future_complete(&a->future, -1, ECANCELED);
}

void async__vclock_worker_exit(async__worker_t *w) {
    vtimer_t *mine = NULL; /* linked through fire_msg.next, which is free now */
    pthread_mutex_lock(&vc.lock);
    w->vc_closed = true;
    size_t kept = 0;
    for (size_t i = 0; i < vc.len; i++) {
        vtimer_t *t = vc.heap[i];
        if (t->home == w) {
            t->slot = NOT_QUEUED;
            t->fire_msg.next = (async__msg_t *)mine;
            mine = t;
        } else {
            place(kept++, t);
        }
    }
    vc.len = kept;
    for (size_t i = kept / 2; i-- > 0;) sift_down(i); /* the others, in heap order again */
    uint64_t now = atomic_load_explicit(&vc.now, memory_order_relaxed);
    pthread_mutex_unlock(&vc.lock);
    while (mine) {
        vtimer_t *t = mine;
        mine = (vtimer_t *)t->fire_msg.next;
        async__count(&w->count.timers, 1);
        set_rem(t, t->due > now ? t->due - now : 0);
        async__future_complete(&t->future, -1, ECANCELED);
    }
}

void async__vclock_stop(void) {
    pthread_mutex_lock(&vc.lock);
    free(vc.heap); /* empty: each worker took its own out as it exited */
    vc.heap = NULL;
    vc.len = vc.cap = 0;
    pthread_mutex_unlock(&vc.lock);
}

/* ---- the public calls ----------------------------------------------------- */

uint64_t async_clock_now(void) {
    if (atomic_load_explicit(&async__rt_state, memory_order_acquire) == 2 && async__rt.vclock)
        return atomic_load_explicit(&vc.now, memory_order_relaxed);
    return uv_hrtime();
}

static void advance_release(async_future_t *f) { free(f); }

static void advance_cancel(async_future_t *f) {
    pthread_mutex_lock(&vc.lock);
    bool mine = vc.adv == (advance_t *)f;
    if (mine) vc.adv = NULL;
    pthread_mutex_unlock(&vc.lock);
    if (mine) async__future_complete(f, -1, ECANCELED);
}

static const async__future_ops_t advance_ops = {advance_cancel, advance_release, NULL};

async_future_t *async_clock_advance(uint64_t ns) {
    async__runtime_t *rt = async__runtime();
    if (!rt) return async__future_failed(errno);
    if (!rt->vclock) return async__future_failed(EINVAL);
    advance_t *a = malloc(sizeof *a);
    if (!a) {
        errno = ENOMEM;
        return NULL;
    }
    async__future_init(&a->future, &advance_ops);
    pthread_mutex_lock(&vc.lock);
    if (vc.adv || vc.down) {
        int err = vc.adv ? EBUSY : ECANCELED;
        pthread_mutex_unlock(&vc.lock);
        async__future_complete(&a->future, -1, err);
        return &a->future;
    }
    uint64_t now = atomic_load_explicit(&vc.now, memory_order_relaxed);
    a->target = now + ns < now ? UINT64_MAX : now + ns;
    vc.adv = a;
    pthread_mutex_unlock(&vc.lock);
    async__vclock_kick();
    return &a->future;
}
