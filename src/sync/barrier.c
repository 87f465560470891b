/* async_barrier_*: a reusable barrier. Arrivals queue under the small lock;
 * the arrival that completes a round releases the queued ones (value 0) and
 * itself gets a settled future with ASYNC_BARRIER_SERIAL_THREAD. The wait is
 * no cancellation point (pthread_barrier_wait is none): a cancelled task's
 * arrival waits on. A cancelled future (its own cancel, a timeout) is taken
 * back, so the round waits for a replacement. */
#include <limits.h>
#include <stdlib.h>

#include "internal.h"

typedef struct barrier {
    async__slock_t lock;
    uint32_t count;   /* arrivals per round; 0 once destroyed */
    uint32_t arrived; /* arrivals queued in this round */
    async__wq_t q;
} barrier_t;

_Static_assert(sizeof(barrier_t) <= sizeof(async_barrier_t), "async_barrier_t is too small");

int async_barrier_init(async_barrier_t *b, const void *attr, unsigned count) {
    /* glibc refuses counts from UINT_MAX / 2 (INT_MAX) up, which its round
     * counter needs: so do we, so that a count works in both or in neither */
    if (!b || count == 0 || count >= UINT_MAX / 2) {
        errno = EINVAL;
        return -1;
    }
    if (attr) {
        int pshared;
        if (pthread_barrierattr_getpshared(attr, &pshared) == 0 &&
            pshared != PTHREAD_PROCESS_PRIVATE) {
            errno = ENOTSUP;
            return -1;
        }
    }
    memset(b, 0, sizeof *b);
    ((barrier_t *)b)->count = count;
    return 0;
}

static void waiter_removed(async__sw_t *w, async__sw_t **grants) {
    barrier_t *br = w->prim;
    (void)grants;
    br->arrived--;
}

/* Under the lock: if this arrival completes the round, release the others
 * onto *grants and return true. */
static bool last_arrival(barrier_t *br, async__sw_t **grants) {
    if (br->arrived + 1 < br->count) return false;
    while (async__wq_head(&br->q)) async__sw_grant(async__wq_head(&br->q), 0, 0, grants);
    br->arrived = 0;
    return true;
}

async_future_t *async_barrier_wait(async_barrier_t *b) {
    if (!b) return async__future_failed(EINVAL);
    barrier_t *br = (barrier_t *)b;
    async__sw_t *grants = NULL;
    async__slock_lock(&br->lock);
    if (br->count == 0) {
        async__slock_unlock(&br->lock);
        return async__future_failed(EINVAL);
    }
    bool last = last_arrival(br, &grants);
    async__slock_unlock(&br->lock);
    if (last) {
        async__sw_complete_list(grants);
        return async__sync_done(ASYNC_BARRIER_SERIAL_THREAD);
    }
    async__sw_t *w = async__sw_new(br, &br->lock, &br->q, waiter_removed);
    if (!w) return NULL;
    w->what = "barrier";
    async__sw_no_cancel_point(w); /* pthreads(7) does not list pthread_barrier_wait */
    async__slock_lock(&br->lock);
    if (br->count == 0) {
        async__sw_done_unqueued(w, -1, EINVAL);
        last = true;
    } else if ((last = last_arrival(br, &grants))) { /* others arrived meanwhile */
        async__sw_done_unqueued(w, ASYNC_BARRIER_SERIAL_THREAD, 0);
    } else {
        async__sw_enqueue(w);
        br->arrived++;
    }
    async__slock_unlock(&br->lock);
    if (last) {
        async__sw_complete_list(grants);
        async__sw_complete(w);
    }
    return &w->future;
}

int async_barrier_destroy(async_barrier_t *b) {
    if (!b) {
        errno = EINVAL;
        return -1;
    }
    barrier_t *br = (barrier_t *)b;
    async__slock_lock(&br->lock);
    int err = br->count == 0 ? EINVAL : async__wq_head(&br->q) ? EBUSY : 0;
    if (!err) br->count = 0;
    async__slock_unlock(&br->lock);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}
