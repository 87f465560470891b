/* async_rwlock_*: a readers-writer lock whose locks are futures. Everything
 * happens under the small lock (the common read path is two atomic operations
 * on it). One queue holds readers and writers in arrival order: a request
 * waits whenever anyone is queued before it, so writers do not starve; an
 * unlock grants the head of the queue, and with it every reader that follows
 * before the next writer. */
#include <stdlib.h>

#include "internal.h"

enum { RW_READ, RW_WRITE };

typedef struct rwlock {
    async__slock_t lock;
    uint32_t readers; /* read locks held */
    void *writer;     /* the write lock's holder, or NULL */
    async__wq_t q;
    uint32_t dead;
} rwlock_t;

_Static_assert(sizeof(rwlock_t) <= sizeof(async_rwlock_t), "async_rwlock_t is too small");

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

/* Under the lock: grant what the head of the queue allows. */
static void dispatch(rwlock_t *r, async__sw_t **grants) {
    while (async__wq_head(&r->q) && !r->writer) {
        async__sw_t *h = async__wq_head(&r->q);
        if (h->kind == RW_WRITE) {
            if (r->readers) return;
            r->writer = h->owner;
            async__sw_grant(h, 0, 0, grants);
            return;
        }
        r->readers++;
        async__sw_grant(h, 0, 0, grants);
    }
}

static void waiter_removed(async__sw_t *w, async__sw_t **grants) { dispatch(w->prim, grants); }

/* Under the lock: 0 granted, -1 must wait, or a positive errno. */
static int try_locked(rwlock_t *r, int kind, void *self) {
    if (r->dead) return EINVAL;
    if (r->writer == self) return EDEADLK;
    if (r->writer || async__wq_head(&r->q)) return -1;
    if (kind == RW_READ) {
        if (r->readers == UINT32_MAX) return EAGAIN;
        r->readers++;
        return 0;
    }
    if (r->readers) return -1;
    r->writer = self;
    return 0;
}

static async_future_t *lock_common(async_rwlock_t *rw, int kind, bool timed,
                                   const struct timespec *abstime) {
    if (!rw) return async__future_failed(EINVAL);
    rwlock_t *r = (rwlock_t *)rw;
    void *self = async__sync_self();
    async__slock_lock(&r->lock);
    int res = try_locked(r, kind, self);
    async__slock_unlock(&r->lock);
    if (res == 0) return async__sync_done(0);
    if (res > 0) return async__future_failed(res);
    int64_t ms = -1;
    if (timed) {
        ms = async__abstime_ms(CLOCK_REALTIME, abstime);
        if (ms < 0) return async__future_failed(EINVAL);
        if (ms == 0) return async__future_failed(ETIMEDOUT);
    }
    async__sw_t *w = async__sw_new(r, &r->lock, &r->q, waiter_removed);
    if (!w) return NULL;
    async__sw_no_cancel_point(w);
    w->what = kind == RW_READ ? "rwlock read" : "rwlock write";
    w->kind = kind;
    w->owner = self;
    if (ms > 0) async__sw_arm(w, (uint64_t)ms);
    bool queued = false;
    async__slock_lock(&r->lock);
    res = try_locked(r, kind, self);
    if (res == 0)
        async__sw_done_unqueued(w, 0, 0);
    else if (res > 0)
        async__sw_done_unqueued(w, -1, res);
    else if (!async__sw_enqueue(w))
        async__sw_done_unqueued(w, -1, w->err);
    else
        queued = true;
    async__slock_unlock(&r->lock);
    if (!queued) async__sw_complete(w);
    return &w->future;
}

async_future_t *async_rwlock_rdlock(async_rwlock_t *rw) {
    return lock_common(rw, RW_READ, false, NULL);
}

async_future_t *async_rwlock_wrlock(async_rwlock_t *rw) {
    return lock_common(rw, RW_WRITE, false, NULL);
}

async_future_t *async_rwlock_timedrdlock(async_rwlock_t *rw, const struct timespec *abstime) {
    return lock_common(rw, RW_READ, true, abstime);
}

async_future_t *async_rwlock_timedwrlock(async_rwlock_t *rw, const struct timespec *abstime) {
    return lock_common(rw, RW_WRITE, true, abstime);
}

static int trylock(async_rwlock_t *rw, int kind) {
    if (!rw) {
        errno = EINVAL;
        return -1;
    }
    rwlock_t *r = (rwlock_t *)rw;
    async__slock_lock(&r->lock);
    int res = try_locked(r, kind, async__sync_self());
    async__slock_unlock(&r->lock);
    if (res == 0) return 0;
    errno = res < 0 ? EBUSY : res;
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
    async__sw_t *grants = NULL;
    int err = 0;
    async__slock_lock(&r->lock);
    if (r->dead)
        err = EINVAL;
    else if (r->writer)
        err = r->writer == async__sync_self() ? 0 : EPERM;
    else if (!r->readers)
        err = EPERM;
    if (!err) {
        if (r->writer)
            r->writer = NULL;
        else
            r->readers--;
        dispatch(r, &grants);
    }
    async__slock_unlock(&r->lock);
    if (err) {
        errno = err;
        return -1;
    }
    async__sw_complete_list(grants);
    return 0;
}

int async_rwlock_destroy(async_rwlock_t *rw) {
    if (!rw) {
        errno = EINVAL;
        return -1;
    }
    rwlock_t *r = (rwlock_t *)rw;
    async__slock_lock(&r->lock);
    int err = r->dead ? EINVAL : (r->writer || r->readers || async__wq_head(&r->q)) ? EBUSY : 0;
    if (!err) r->dead = 1;
    async__slock_unlock(&r->lock);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}
