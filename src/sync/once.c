/* async_once: one-time initialisation. The first caller runs the routine
 * inside the call; callers arriving meanwhile queue and are released when it
 * returns; afterwards a call is one acquire load. */
#include <stdlib.h>

#include "internal.h"

enum { O_NEW, O_RUNNING, O_DONE };

typedef struct once {
    _Atomic uint32_t state;
    async__slock_t lock;
    async__wq_t q;
} once_t;

_Static_assert(sizeof(once_t) <= sizeof(async_once_t), "async_once_t is too small");

async_future_t *async_once(async_once_t *once, void (*init_routine)(void)) {
    if (!once || !init_routine) return async__future_failed(EINVAL);
    once_t *o = (once_t *)once;
    if (ASYNC_LIKELY(atomic_load_explicit(&o->state, memory_order_acquire) == O_DONE))
        return async__sync_done(0);
    async__sw_t *w = NULL;
    for (;;) {
        async__slock_lock(&o->lock);
        uint32_t s = atomic_load_explicit(&o->state, memory_order_relaxed);
        if (s == O_NEW) {
            atomic_store_explicit(&o->state, O_RUNNING, memory_order_relaxed);
            async__slock_unlock(&o->lock);
            init_routine();
            async__sw_t *grants = NULL;
            async__slock_lock(&o->lock);
            atomic_store_explicit(&o->state, O_DONE, memory_order_release);
            while (async__wq_head(&o->q)) async__sw_grant(async__wq_head(&o->q), 0, 0, &grants);
            async__slock_unlock(&o->lock);
            async__sw_complete_list(grants);
            break;
        }
        if (s == O_RUNNING && w) {
            async__sw_enqueue(w);
            async__slock_unlock(&o->lock);
            return &w->future;
        }
        async__slock_unlock(&o->lock);
        if (s == O_DONE) break;
        w = async__sw_new(o, &o->lock, &o->q, NULL);
        if (!w) return NULL;
        w->what = "once";
    }
    if (w) { /* allocated for a wait that turned out unneeded */
        w->state = SW_DONE;
        async__sw_complete(w);
        return &w->future;
    }
    return async__sync_done(0);
}
