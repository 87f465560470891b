/* async_waitgroup_*: a counter of outstanding work; waiters queue under the
 * small lock and are all released when the counter returns to zero. */
#include <stdlib.h>

#include "internal.h"

typedef struct waitgroup {
    async__slock_t lock;
    int64_t counter;
    async__wq_t q;
} waitgroup_t;

_Static_assert(sizeof(waitgroup_t) <= sizeof(async_waitgroup_t), "async_waitgroup_t is too small");

int async_waitgroup_init(async_waitgroup_t *wg) {
    if (!wg) {
        errno = EINVAL;
        return -1;
    }
    memset(wg, 0, sizeof *wg);
    return 0;
}

int async_waitgroup_add(async_waitgroup_t *wg, long delta) {
    if (!wg) {
        errno = EINVAL;
        return -1;
    }
    waitgroup_t *g = (waitgroup_t *)wg;
    async__sw_t *grants = NULL;
    int err = 0;
    async__slock_lock(&g->lock);
    if (delta > 0 && g->counter > INT64_MAX - delta)
        err = EOVERFLOW;
    else if (g->counter + delta < 0)
        err = EINVAL;
    else {
        g->counter += delta;
        if (g->counter == 0)
            while (async__wq_head(&g->q)) async__sw_grant(async__wq_head(&g->q), 0, 0, &grants);
    }
    async__slock_unlock(&g->lock);
    if (err) {
        errno = err;
        return -1;
    }
    async__sw_complete_list(grants);
    return 0;
}

int async_waitgroup_done(async_waitgroup_t *wg) { return async_waitgroup_add(wg, -1); }

async_future_t *async_waitgroup_wait(async_waitgroup_t *wg) {
    if (!wg) return async__future_failed(EINVAL);
    waitgroup_t *g = (waitgroup_t *)wg;
    async__slock_lock(&g->lock);
    int64_t n = g->counter;
    async__slock_unlock(&g->lock);
    if (n == 0) return async__sync_done(0);
    async__sw_t *w = async__sw_new(g, &g->lock, &g->q, NULL);
    if (!w) return NULL;
    w->what = "waitgroup";
    async__slock_lock(&g->lock);
    bool queued = g->counter != 0;
    if (queued)
        async__sw_enqueue(w);
    else
        async__sw_done_unqueued(w, 0, 0);
    async__slock_unlock(&g->lock);
    if (!queued) async__sw_complete(w);
    return &w->future;
}

int async_waitgroup_destroy(async_waitgroup_t *wg) {
    if (!wg) {
        errno = EINVAL;
        return -1;
    }
    waitgroup_t *g = (waitgroup_t *)wg;
    async__slock_lock(&g->lock);
    bool busy = async__wq_head(&g->q) != NULL;
    async__slock_unlock(&g->lock);
    if (busy) {
        errno = EBUSY;
        return -1;
    }
    return 0;
}
