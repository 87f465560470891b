/* async_cond_*: condition variables. A waiter queues on the condition, then
 * releases the mutex; a signal moves it from the condition's queue straight
 * into the mutex's (it is not woken only to find the mutex taken), and its
 * future settles once the mutex is handed to it. A cancel or timeout takes it
 * out of the condition's queue and sends it to the mutex the same way, with
 * the error recorded: whatever the result, the caller holds the mutex again
 * when the future settles, as pthread_cond_wait does.
 *
 * The waiter's phase (kind) is guarded by the condition's lock; once it is in
 * the mutex's queue, cancels and timeouts no longer touch it. */
#include <stdlib.h>

#include "internal.h"

enum { CW_NEW, CW_EXPIRED, CW_WAITING, CW_LEFT };

typedef struct cond {
    async__slock_t lock;
    uint32_t clock : 31; /* 0 CLOCK_REALTIME, 1 CLOCK_MONOTONIC */
    uint32_t dead : 1;
    async__wq_t q;
} cond_t;

_Static_assert(sizeof(cond_t) <= sizeof(async_cond_t), "async_cond_t is too small");
_Static_assert(CLOCK_REALTIME == 0 && CLOCK_MONOTONIC == 1, "cond_t stores the clock id as is");

int async_cond_init(async_cond_t *c, const pthread_condattr_t *attr) {
    if (!c) {
        errno = EINVAL;
        return -1;
    }
    clockid_t clock = CLOCK_REALTIME;
    if (attr) {
        int pshared;
        if (pthread_condattr_getpshared(attr, &pshared) == 0 &&
            pshared != PTHREAD_PROCESS_PRIVATE) {
            errno = ENOTSUP;
            return -1;
        }
        if (pthread_condattr_getclock(attr, &clock) != 0 ||
            (clock != CLOCK_REALTIME && clock != CLOCK_MONOTONIC)) {
            errno = EINVAL;
            return -1;
        }
    }
    memset(c, 0, sizeof *c);
    ((cond_t *)c)->clock = (uint32_t)clock;
    return 0;
}

/* Without any lock: the waiter left the condition; now it waits for the mutex. */
static void to_mutex(async__sw_t *w) {
    if (async__mutex_acquire_for(w->extra, w)) async__sw_complete(w);
}

static void cond_abort(async__sw_t *w, int err) {
    cond_t *c = w->buf;
    async__slock_lock(&c->lock);
    if (w->kind == CW_NEW) { /* the timer fired before the waiter was queued */
        w->kind = CW_EXPIRED;
        w->err = err;
        async__slock_unlock(&c->lock);
        return;
    }
    if (w->kind != CW_WAITING) { /* signalled already: the signal wins */
        async__slock_unlock(&c->lock);
        return;
    }
    async__wq_remove(&c->q, w);
    w->kind = CW_LEFT;
    w->err = err;
    async__slock_unlock(&c->lock);
    to_mutex(w);
}

/* `clock` -1: the condition variable's own (pthread_condattr_setclock). */
static async_future_t *wait_common(async_cond_t *cv, async_mutex_t *m, bool timed, clockid_t clock,
                                   const struct timespec *abstime) {
    if (!cv || !m) return async__future_failed(EINVAL);
    cond_t *c = (cond_t *)cv;
    if (c->dead) return async__future_failed(EINVAL);
    if (clock == -1) clock = (clockid_t)c->clock;
    /* glibc looks at the abstime before the mutex: a bad one is EINVAL even
     * when the mutex is not held */
    int64_t ms = timed ? async__abstime_ms(clock, abstime) : -1;
    if (timed && ms < 0) return async__future_failed(EINVAL);
    int err = async__mutex_check_held(m);
    if (err) return async__future_failed(err);
    if (timed && ms == 0) return async__future_failed(ETIMEDOUT); /* the mutex stays held */
    async__sw_t *w = async__sw_new(c, &c->lock, &c->q, NULL);
    if (!w) return NULL;
    w->what = "cond";
    w->abort = cond_abort;
    w->buf = c;
    w->extra = m;
    w->owner = async__sync_self();
    w->kind = CW_NEW;
    if (ms > 0) async__sw_arm(w, (uint64_t)ms);
    async__slock_lock(&c->lock);
    bool expired = w->kind == CW_EXPIRED;
    if (!expired) {
        w->kind = CW_WAITING;
        async__wq_push(&c->q, w);
    }
    async__slock_unlock(&c->lock);
    if (expired) { /* the mutex was never released */
        w->state = SW_DONE;
        w->value = -1;
        async__sw_complete(w);
        return &w->future;
    }
    /* queued before the release: a signal sent after it cannot be missed */
    async__mutex_release_all(m, &w->count);
    return &w->future;
}

async_future_t *async_cond_wait(async_cond_t *c, async_mutex_t *m) {
    return wait_common(c, m, false, -1, NULL);
}

async_future_t *async_cond_timedwait(async_cond_t *c, async_mutex_t *m,
                                     const struct timespec *abstime) {
    return wait_common(c, m, true, -1, abstime);
}

async_future_t *async_cond_clockwait(async_cond_t *c, async_mutex_t *m, clockid_t clock,
                                     const struct timespec *abstime) {
    if (!async__clock_ok(clock)) return async__future_failed(EINVAL);
    return wait_common(c, m, true, clock, abstime);
}

int async_cond_signal(async_cond_t *cv) {
    if (!cv) {
        errno = EINVAL;
        return -1;
    }
    cond_t *c = (cond_t *)cv;
    async__slock_lock(&c->lock);
    async__sw_t *w = async__wq_pop(&c->q);
    if (w) w->kind = CW_LEFT;
    async__slock_unlock(&c->lock);
    if (w) to_mutex(w);
    return 0;
}

int async_cond_broadcast(async_cond_t *cv) {
    if (!cv) {
        errno = EINVAL;
        return -1;
    }
    cond_t *c = (cond_t *)cv;
    async__slock_lock(&c->lock);
    async__sw_t *all = NULL, **tail = &all;
    for (async__sw_t *w; (w = async__wq_pop(&c->q));) {
        w->kind = CW_LEFT;
        w->gnext = NULL;
        *tail = w;
        tail = &w->gnext;
    }
    async__slock_unlock(&c->lock);
    /* in waiting order, so that they take the mutex in that order */
    while (all) {
        async__sw_t *n = all->gnext;
        all->gnext = NULL;
        to_mutex(all);
        all = n;
    }
    return 0;
}

int async_cond_destroy(async_cond_t *cv) {
    if (!cv) {
        errno = EINVAL;
        return -1;
    }
    cond_t *c = (cond_t *)cv;
    async__slock_lock(&c->lock);
    int err = c->dead ? EINVAL : async__wq_head(&c->q) ? EBUSY : 0;
    if (!err) c->dead = 1;
    async__slock_unlock(&c->lock);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}
