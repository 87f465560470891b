/* The waiting machinery every primitive of the sync module shares: the small
 * queue lock, intrusive waiter queues, the waiter operation (its future,
 * cancellation, timeout) and the allocation-free settled futures that
 * uncontended calls return. */
#include <limits.h>
#include <stdlib.h>

#include "internal.h"

#define SPINS 100

void async__slock_lock_slow(async__slock_t *l) {
    for (int i = 0; i < SPINS; i++) {
        uint32_t z = 0;
        if (atomic_load_explicit(l, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(l, &z, 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return;
        async__cpu_relax();
    }
    while (atomic_exchange_explicit(l, 2, memory_order_acquire) != 0) async__futex_wait(l, 2);
}

void async__slock_wake(async__slock_t *l) { async__futex_wake(l, 1); }

/* ---- settled futures without allocation -------------------------------------
 * async_await() of a settled future reads its value and drops a reference;
 * these futures start with a huge count and their release puts it back, so
 * they are never freed. One pair per thread keeps the count's cache line
 * private to the thread on the uncontended path. */
#define DONE_REFS (1 << 30)

static void done_release(async_future_t *f) {
    atomic_fetch_add_explicit(&f->refs, DONE_REFS, memory_order_relaxed);
    atomic_store_explicit(&f->owner, 0, memory_order_relaxed); /* unref marked it freed */
}
static const async__future_ops_t done_ops = {NULL, done_release, NULL};

static __thread async_future_t done_futures[2] = {
    {.waiter = W_SETTLED,
     .refs = DONE_REFS,
     .flags = F_CLAIMED | F_STATIC,
     .value = 0,
     .ops = &done_ops},
    {.waiter = W_SETTLED,
     .refs = DONE_REFS,
     .flags = F_CLAIMED | F_STATIC,
     .value = 1,
     .ops = &done_ops},
};

async_future_t *async__sync_done(intptr_t value) {
    if (ASYNC_LIKELY(value == 0 || value == 1)) return &done_futures[value];
    return async__future_done(value);
}

static __thread char thread_identity;

void *async__sync_self(void) {
    async__task_t *t = async__task_current();
    return t ? (void *)t : (void *)&thread_identity;
}

bool async__abstime_bad(const struct timespec *abstime) {
    return !abstime || abstime->tv_nsec < 0 || abstime->tv_nsec > 999999999L;
}

int64_t async__abstime_ms(clockid_t clock, const struct timespec *abstime) {
    if (async__abstime_bad(abstime)) {
        errno = EINVAL;
        return -1;
    }
    struct timespec now;
    clock_gettime(clock, &now);
    if (abstime->tv_sec < now.tv_sec ||
        (abstime->tv_sec == now.tv_sec && abstime->tv_nsec <= now.tv_nsec))
        return 0;
    int64_t sec = (int64_t)abstime->tv_sec - (int64_t)now.tv_sec;
    if (sec > INT64_MAX / 2000) return INT64_MAX / 2000;
    int64_t ns = sec * 1000000000LL + (abstime->tv_nsec - now.tv_nsec);
    return (ns + 999999) / 1000000;
}

/* ---- the waiter operation -------------------------------------------------------- */

static void sw_release(async_future_t *f) { async__obj_free(ASYNC_OBJ_SMALL, f); }

static void sw_cancel(async_future_t *f) {
    async__sw_t *w = (async__sw_t *)f;
    w->abort(w, ECANCELED);
}

static void sw_describe(const async_future_t *f, async__wait_t *out) {
    const async__sw_t *w = (const async__sw_t *)f;
    async__wait_set(out, ASYNC_WAIT_PRIM, w->what ? w->what : "sync", NULL, w->prim, NULL, 0);
}

static const async__future_ops_t sw_ops = {sw_cancel, sw_release, sw_describe};

async__sw_t *async__sw_new(void *prim, async__slock_t *lock, async__wq_t *q,
                           void (*removed)(async__sw_t *, async__sw_t **)) {
    _Static_assert(sizeof(async__sw_t) <= ASYNC_OBJ_SMALL_SIZE, "async__sw_t outgrew its class");
    async__sw_t *w = async__obj_alloc(ASYNC_OBJ_SMALL);
    if (!w) {
        errno = ENOMEM;
        return NULL;
    }
    async__future_init(&w->future, &sw_ops);
    w->node.next = w->node.prev = NULL;
    w->gnext = NULL;
    w->lock = lock;
    w->q = q;
    w->prim = prim;
    w->removed = removed;
    w->abort = async__sw_abort;
    w->timer = NULL;
    w->value = 0;
    w->err = 0;
    w->state = SW_INIT;
    w->kind = 0;
    w->what = NULL;
    w->count = 0;
    w->buf = w->owner = w->extra = NULL;
    w->home = async__task_current() ? async__tls_worker : NULL;
    w->gops = NULL;
    w->gkind = 0;
    w->since = 0;
    return w;
}

/* The timer's then-callback: runs on a worker when the timer settles. */
static void on_timer(intptr_t value, int err, void *arg) {
    async__sw_t *w = arg;
    (void)value;
    if (err == 0) w->abort(w, ETIMEDOUT);
    async__future_unref(&w->future); /* the timer's hold on the waiter */
}

void async__sw_arm(async__sw_t *w, uint64_t ms) {
    async_future_t *t = async__timer(ms, NULL);
    if (!t) return;                /* no memory for a timer: wait without limit rather than fail */
    async__future_ref(t);          /* ours, so that we may cancel it after it fired */
    async__future_ref(&w->future); /* the callback's */
    w->timer = t;
    async_future_then(t, on_timer, w); /* consumes the owner's role of t */
}

bool async__sw_enqueue(async__sw_t *w) {
    if (w->state == SW_EXPIRED) return false;
    w->state = SW_QUEUED;
    async__wq_push(w->q, w);
    return true;
}

void async__sw_complete(async__sw_t *w) {
    async_future_t *t = w->timer;
    async__future_settle_exclusive(&w->future, w->value, w->err); /* see the lock rule */
    if (t) {
        async_cancel(t);
        async__future_unref(t);
    }
    async__future_unref(&w->future); /* the settler's role */
}

async__sw_t *async__sw_grant_order(async__sw_t *grants) {
    /* async__sw_grant pushes in front: reversed */
    async__sw_t *rev = NULL;
    while (grants) {
        async__sw_t *n = grants->gnext;
        grants->gnext = rev;
        rev = grants;
        grants = n;
    }
    return rev;
}

void async__sw_complete_list(async__sw_t *grants) {
    async__sw_t *rev = async__sw_grant_order(grants);
    while (rev) {
        async__sw_t *n = rev->gnext;
        async__sw_complete(rev);
        rev = n;
    }
}

void async__sw_abort(async__sw_t *w, int err) {
    async__sw_t *grants = NULL;
    async__slock_lock(w->lock);
    if (w->state == SW_INIT) { /* a timer that fired before the enqueue */
        w->state = SW_EXPIRED;
        w->err = err;
        async__slock_unlock(w->lock);
        return;
    }
    if (w->state == SW_WOKEN) { /* out of the queue to retry: the retry reports it */
        w->state = SW_WOKEN_ABORTED;
        w->err = err;
        async__slock_unlock(w->lock);
        return;
    }
    if (w->state != SW_QUEUED) { /* already granted: the grant wins */
        async__slock_unlock(w->lock);
        return;
    }
    async__wq_remove(w->q, w);
    w->state = SW_DONE;
    w->value = -1;
    w->err = err;
    if (w->removed) w->removed(w, &grants);
    async__slock_unlock(w->lock);
    async__sw_complete(w);
    async__sw_complete_list(grants);
}
