/* async_respool_*: a pool of costly objects (connections), the resource pool
 * of the sync module. A semaphore of max_size "slots" does the waiting: an
 * acquire holds a slot from the moment it is granted until the object is
 * released, so objects in use plus objects being created never exceed
 * max_size, waiters are served in arrival order, and timeouts and
 * cancellation are the semaphore's. Idle objects hold no slot; they sit on a
 * LIFO list (the most recently used is reused first, so the surplus ages out).
 *
 * An acquire that finds an idle object and has no health check is a settled
 * future; anything else (waiting, checking, creating; the callbacks may await)
 * runs in a task whose future is the acquire's. The small lock guards only the
 * lists and counters and is never held across a callback. */
#include <stdlib.h>

#include "internal.h"

typedef struct idle_obj {
    struct idle_obj *next;
    void *obj;
    uint64_t since_ms;
} idle_obj_t;

/* One acquire that needed a task (async__spawn_owned): counted in the pool's
 * `acquires` from the call until its task has ended, run or not, so that
 * free says EBUSY while any task may still use the pool. */
typedef struct request {
    async_respool_t *pool;
    int64_t timeout_ms;
} request_t;

struct async_respool {
    async_respool_config_t cfg;
    async_sem_t slots;
    async__slock_t lock;
    idle_obj_t *idle; /* most recently released first */
    unsigned nidle, size, in_use, waiting;
    unsigned acquires; /* acquires whose task has not ended */
    async_respool_stats_t st;
    async_future_t *maint;
};

/* Idle ages on the runtime's clock, which the maintenance task's sleeps use:
 * under a virtual clock both move together. */
static uint64_t now_ms(void) { return async_clock_now() / 1000000; }

/* Under the lock: the most recently released idle object, or NULL. */
static void *pop_idle(async_respool_t *p) {
    idle_obj_t *n = p->idle;
    if (!n) return NULL;
    p->idle = n->next;
    p->nidle--;
    void *obj = n->obj;
    free(n);
    return obj;
}

static void destroy_obj(async_respool_t *p, void *obj) { p->cfg.destroy(obj, p->cfg.ctx); }

/* Holding a slot: an idle object that passes the check, or a new one. */
static intptr_t checkout(async_respool_t *p) {
    for (;;) {
        async__slock_lock(&p->lock);
        void *obj = pop_idle(p);
        if (!obj) p->size++; /* reserve the place of the object we create */
        async__slock_unlock(&p->lock);
        if (obj) {
            if (p->cfg.check && p->cfg.check(obj, p->cfg.ctx) != 0) {
                async__slock_lock(&p->lock);
                p->size--;
                p->st.check_failures++;
                p->st.destroyed++;
                async__slock_unlock(&p->lock);
                destroy_obj(p, obj);
                continue;
            }
        } else {
            errno = 0;
            obj = p->cfg.create(p->cfg.ctx);
            if (!obj) {
                int err = errno ? errno : EIO;
                async__slock_lock(&p->lock);
                p->size--;
                p->st.create_failures++;
                async__slock_unlock(&p->lock);
                async_sem_post(&p->slots);
                errno = err;
                return -1;
            }
            async__slock_lock(&p->lock);
            p->st.created++;
            async__slock_unlock(&p->lock);
        }
        async__slock_lock(&p->lock);
        p->in_use++;
        p->st.acquired++;
        async__slock_unlock(&p->lock);
        return (intptr_t)obj;
    }
}

static intptr_t acquire_task(void *arg) {
    request_t *r = arg;
    async_respool_t *p = r->pool;
    int64_t timeout = r->timeout_ms;
    if (async_testcancel() < 0) return -1; /* cancelled before it started */
    async__slock_lock(&p->lock);
    p->waiting++;
    async__slock_unlock(&p->lock);
    intptr_t res = async_await(async__sem_wait_ms(&p->slots, timeout));
    int err = errno;
    async__slock_lock(&p->lock);
    p->waiting--;
    if (res < 0 && err == ETIMEDOUT) p->st.timeouts++;
    async__slock_unlock(&p->lock);
    if (res == 0) {
        res = checkout(p);
        err = errno;
    }
    errno = err;
    return res;
}

/* Runs as the acquire's task ends, however it ended; the pool's last use by it. */
static void acquire_done(void *arg) {
    request_t *r = arg;
    async_respool_t *p = r->pool;
    free(r);
    async__slock_lock(&p->lock);
    p->acquires--;
    async__slock_unlock(&p->lock);
}

async_future_t *async_respool_acquire(async_respool_t *p, int64_t timeout_ms) {
    if (!p) return async__future_failed(EINVAL);
    if (!p->cfg.check && async_sem_trywait(&p->slots) == 0) {
        async__slock_lock(&p->lock);
        void *obj = pop_idle(p);
        if (obj) {
            p->in_use++;
            p->st.acquired++;
        }
        async__slock_unlock(&p->lock);
        if (obj) return async__future_done((intptr_t)obj);
        async_sem_post(&p->slots); /* a creation: done in a task, as it may await */
    }
    request_t *r = malloc(sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    r->pool = p;
    r->timeout_ms = timeout_ms < 0 ? -1 : timeout_ms;
    async__slock_lock(&p->lock);
    p->acquires++;
    async__slock_unlock(&p->lock);
    return async__spawn_owned(acquire_task, r, acquire_done, NULL); /* no task: done already */
}

int async_respool_release(async_respool_t *p, void *obj, int broken) {
    if (!p || !obj) {
        errno = EINVAL;
        return -1;
    }
    idle_obj_t *n = broken ? NULL : malloc(sizeof *n);
    async__slock_lock(&p->lock);
    if (p->in_use == 0) {
        async__slock_unlock(&p->lock);
        free(n);
        errno = EINVAL;
        return -1;
    }
    p->in_use--;
    if (n) {
        n->obj = obj;
        n->since_ms = now_ms();
        n->next = p->idle;
        p->idle = n;
        p->nidle++;
    } else { /* broken, or no memory to keep it */
        p->size--;
        p->st.destroyed++;
        if (broken) p->st.broken++;
    }
    async__slock_unlock(&p->lock);
    if (!n) destroy_obj(p, obj);
    async_sem_post(&p->slots); /* the oldest waiter takes the place */
    return 0;
}

/* ---- maintenance: idle expiry and min_idle --------------------------------------- */

static void expire(async_respool_t *p) {
    if (p->cfg.idle_timeout_ms <= 0) return;
    uint64_t cut = now_ms() - (uint64_t)p->cfg.idle_timeout_ms;
    idle_obj_t *dead = NULL;
    async__slock_lock(&p->lock);
    /* the list is newest first: keep the first min_idle, drop the old ones after */
    idle_obj_t **pp = &p->idle;
    unsigned kept = 0;
    while (*pp) {
        idle_obj_t *n = *pp;
        if (kept >= p->cfg.min_idle && n->since_ms <= cut) {
            *pp = n->next;
            n->next = dead;
            dead = n;
            p->nidle--;
            p->size--;
            p->st.expired++;
            p->st.destroyed++;
        } else {
            kept++;
            pp = &n->next;
        }
    }
    async__slock_unlock(&p->lock);
    while (dead) {
        idle_obj_t *n = dead;
        dead = n->next;
        destroy_obj(p, n->obj);
        free(n);
    }
}

/* Tops the idle list up to min_idle, each creation under a free slot. */
static void replenish(async_respool_t *p) {
    for (;;) {
        async__slock_lock(&p->lock);
        bool need = p->nidle < p->cfg.min_idle && p->size < p->cfg.max_size;
        async__slock_unlock(&p->lock);
        if (!need || async_sem_trywait(&p->slots) != 0) return;
        async__slock_lock(&p->lock);
        p->size++;
        async__slock_unlock(&p->lock);
        errno = 0;
        void *obj = p->cfg.create(p->cfg.ctx);
        idle_obj_t *n = obj ? malloc(sizeof *n) : NULL;
        async__slock_lock(&p->lock);
        if (n) {
            n->obj = obj;
            n->since_ms = now_ms();
            n->next = p->idle;
            p->idle = n;
            p->nidle++;
            p->st.created++;
        } else {
            p->size--;
            p->st.create_failures += obj ? 0 : 1;
        }
        async__slock_unlock(&p->lock);
        async_sem_post(&p->slots);
        if (!n) {
            if (obj) destroy_obj(p, obj);
            return; /* try again next round */
        }
    }
}

static intptr_t maintain(void *arg) {
    async_respool_t *p = arg;
    uint64_t period = 1000;
    if (p->cfg.idle_timeout_ms > 0 && (uint64_t)p->cfg.idle_timeout_ms / 2 < period)
        period = (uint64_t)p->cfg.idle_timeout_ms / 2;
    if (period < 5) period = 5;
    for (;;) {
        expire(p);
        replenish(p);
        if (async_await(async_usleep((unsigned long)period * 1000)) != 0) return 0; /* cancelled */
    }
}

async_respool_t *async_respool_new(const async_respool_config_t *config) {
    if (!config || !config->create || !config->destroy ||
        config->min_idle > (config->max_size ? config->max_size : 10) ||
        config->idle_timeout_ms < 0 || config->max_size > ASYNC_SEM_VALUE_MAX) {
        errno = EINVAL;
        return NULL;
    }
    async_respool_t *p = calloc(1, sizeof *p);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    p->cfg = *config;
    if (!p->cfg.max_size) p->cfg.max_size = 10;
    async_sem_init(&p->slots, 0, p->cfg.max_size);
    if (p->cfg.min_idle || p->cfg.idle_timeout_ms) {
        p->maint = async_spawn(maintain, p);
        if (!p->maint || async_future_settled(p->maint)) {
            int err = p->maint ? (async_await(p->maint), errno) : ENOMEM;
            free(p);
            errno = err ? err : ENOMEM;
            return NULL;
        }
    }
    return p;
}

int async_respool_stats(async_respool_t *p, async_respool_stats_t *st) {
    if (!p || !st) {
        errno = EINVAL;
        return -1;
    }
    async__slock_lock(&p->lock);
    *st = p->st;
    st->size = p->size;
    st->idle = p->nidle;
    st->in_use = p->in_use;
    st->waiting = p->waiting;
    async__slock_unlock(&p->lock);
    return 0;
}

int async_respool_free(async_respool_t *p) {
    if (!p) return 0;
    async__slock_lock(&p->lock);
    bool busy = p->in_use || p->acquires; /* an acquire's task may still use the pool */
    async__slock_unlock(&p->lock);
    if (busy) {
        errno = EBUSY;
        return -1;
    }
    if (p->maint) {
        async_cancel(p->maint);
        async_await(p->maint);
    }
    void *obj;
    while ((obj = pop_idle(p)) != NULL) destroy_obj(p, obj);
    free(p);
    return 0;
}
