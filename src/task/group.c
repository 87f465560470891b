/* Task groups: structured concurrency on top of task futures. The group
 * keeps a reference to every task it spawned (to cancel them) and watches
 * each through async_future_then, whose callback runs on the task's worker
 * when the task ends. The first failure is recorded and cancels the rest.
 * The group's memory is reference counted: the user's handle plus one per
 * task still running. */
#include <stdlib.h>

#include "internal.h"

typedef struct member {
    async__node_t node; /* in the group's members */
    async_future_t *task;
    struct async_group *group;
} member_t;

struct async_group {
    pthread_mutex_t lock;
    async__list_t members; /* tasks still running */
    size_t running;
    int refs;
    int first_err;
    bool cancelled;
    async_future_t *waiter; /* the pending async_group_wait future, or NULL */
};

async_group_t *async_group_new(void) {
    async_group_t *g = calloc(1, sizeof *g);
    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&g->lock, NULL);
    g->refs = 1;
    return g;
}

static void group_unref_locked(async_group_t *g) {
    if (--g->refs == 0) {
        pthread_mutex_unlock(&g->lock);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return;
    }
    pthread_mutex_unlock(&g->lock);
}

/* Must hold the lock. */
static void cancel_members(async_group_t *g) {
    async__list_foreach(n, &g->members) async_cancel(async__list_entry(n, member_t, node)->task);
}

static void on_member_done(intptr_t value, int err, void *arg) {
    member_t *m = arg;
    async_group_t *g = m->group;
    (void)value;
    pthread_mutex_lock(&g->lock);
    async__list_remove(&g->members, &m->node);
    if (err && !g->first_err) {
        g->first_err = err;
        cancel_members(g);
    }
    g->running--;
    async_future_t *waiter = NULL;
    int result_err = g->first_err;
    if (g->running == 0 && g->waiter) {
        waiter = g->waiter;
        g->waiter = NULL;
    }
    async__future_unref(m->task); /* the group's reference */
    free(m);
    group_unref_locked(g);
    if (waiter) {
        if (result_err)
            async_future_reject(waiter, result_err);
        else
            async_future_resolve(waiter, 0);
    }
}

int async_group_spawn(async_group_t *g, async_task_fn fn, void *arg,
                      const async_spawn_opts_t *opts) {
    if (!g || !fn) {
        errno = EINVAL;
        return -1;
    }
    member_t *m = malloc(sizeof *m);
    if (!m) {
        errno = ENOMEM;
        return -1;
    }
    pthread_mutex_lock(&g->lock);
    if (g->cancelled || g->first_err) {
        pthread_mutex_unlock(&g->lock);
        free(m);
        errno = ECANCELED;
        return -1;
    }
    async_future_t *t = async_spawn_opts(fn, arg, opts);
    if (!t) {
        pthread_mutex_unlock(&g->lock);
        free(m);
        return -1;
    }
    /* Bad options give a settled future that is no task; a task's own quick
     * EINVAL is its result, so it stays a member like any failing task. */
    if (!async__future_is_task(t) && async__future_is_settled(t) && t->err == EINVAL) {
        pthread_mutex_unlock(&g->lock);
        async_future_free(t);
        free(m);
        errno = EINVAL;
        return -1;
    }
    m->task = t;
    m->group = g;
    async__list_push_front(&g->members, &m->node);
    g->running++;
    g->refs++;
    async__future_ref(t); /* kept to cancel it; then() consumes the owner's */
    pthread_mutex_unlock(&g->lock);
    /* the callback may run right here if the task has already ended */
    async_future_then(t, on_member_done, m);
    return 0;
}

async_future_t *async_group_wait(async_group_t *g) {
    if (!g) return async__future_failed(EINVAL);
    pthread_mutex_lock(&g->lock);
    if (g->waiter) {
        pthread_mutex_unlock(&g->lock);
        return async__future_failed(EBUSY);
    }
    if (g->running == 0) {
        int err = g->first_err;
        pthread_mutex_unlock(&g->lock);
        return err ? async__future_failed(err) : async__future_done(0);
    }
    async_future_t *f = async_future_new();
    if (f) g->waiter = f;
    pthread_mutex_unlock(&g->lock);
    return f;
}

void async_group_cancel(async_group_t *g) {
    if (!g) return;
    pthread_mutex_lock(&g->lock);
    g->cancelled = true;
    if (!g->first_err) g->first_err = ECANCELED;
    cancel_members(g);
    pthread_mutex_unlock(&g->lock);
}

void async_group_free(async_group_t *g) {
    if (!g) return;
    pthread_mutex_lock(&g->lock);
    g->cancelled = true;
    if (!g->first_err) g->first_err = ECANCELED;
    cancel_members(g);
    async_future_t *waiter = g->waiter;
    g->waiter = NULL;
    group_unref_locked(g);
    if (waiter) async_future_reject(waiter, ECANCELED);
}
