/* Runtime metrics: async_runtime_stats sums the counters each worker keeps in
 * its own words (async__worker_counters_t, written with plain stores by that
 * worker alone), adds what plain threads counted on the runtime, and asks the
 * pool for its state under the pool's lock. Nothing here slows a worker: the
 * reader only loads, and never takes a lock a worker takes. */
#include "internal.h"

pthread_rwlock_t async__stats_lock = PTHREAD_RWLOCK_INITIALIZER;

void async__count_cancel(void) {
    async__worker_t *w = async__tls_worker;
    if (w)
        async__count(&w->count.cancels, 1);
    else
        atomic_fetch_add_explicit(&async__rt.foreign_cancels, 1, memory_order_relaxed);
}

static uint64_t load(_Atomic uint64_t *c) { return atomic_load_explicit(c, memory_order_relaxed); }

/* One worker's counters as the public struct; its spawns, cancels and timers go to the totals. */
static void read_worker(async__worker_t *w, uint64_t now, uint64_t uptime, async_worker_stats_t *o,
                        async_runtime_stats_t *s) {
    async__worker_counters_t *c = &w->count;
    o->tasks_live = load(&c->tasks_live);
    o->ready = atomic_load_explicit(&w->runq_len, memory_order_relaxed) +
               atomic_load_explicit(&w->newq_len, memory_order_relaxed);
    /* two ticks per run; an odd count: one is running now */
    unsigned long ticks = atomic_load_explicit(&w->ticks, memory_order_relaxed);
    o->tasks_run = (ticks + 1) / 2;
    o->steals = load(&c->steals);
    o->polls = load(&c->polls);
    o->parks = load(&c->parks);
    o->unparks = load(&c->unparks);
    uint64_t parked = load(&c->parked_ns);
    uint64_t since = load(&c->parked_since);
    if (since && since < now) parked += now - since;
    /* the two words are read apart: a sleep that just ended may be counted twice */
    o->busy_ns = parked < uptime ? uptime - parked : 0;
    s->spawns += load(&c->spawns);
    s->cancels += load(&c->cancels);
    s->timers += load(&c->timers);
}

static void add(async_worker_stats_t *sum, const async_worker_stats_t *o) {
    sum->tasks_live += o->tasks_live;
    sum->ready += o->ready;
    sum->tasks_run += o->tasks_run;
    sum->steals += o->steals;
    sum->polls += o->polls;
    sum->parks += o->parks;
    sum->unparks += o->unparks;
    sum->busy_ns += o->busy_ns;
}

int async_runtime_stats(async_runtime_stats_t *stats, async_worker_stats_t *workers,
                        size_t nworkers) {
    if (!stats || (!workers && nworkers > 0)) {
        errno = EINVAL;
        return -1;
    }
    pthread_rwlock_rdlock(&async__stats_lock);
    async__runtime_t *rt = &async__rt;
    if (atomic_load_explicit(&async__rt_state, memory_order_acquire) != 2 || !rt->workers) {
        pthread_rwlock_unlock(&async__stats_lock);
        errno = ESRCH;
        return -1;
    }
    async_runtime_stats_t s = {0};
    uint64_t now = uv_hrtime();
    s.workers = rt->nworkers;
    s.uptime_ns = now - rt->started_ns;
    for (unsigned i = 0; i <= rt->nworkers; i++) { /* the waiter too, last */
        async_worker_stats_t o;
        read_worker(&rt->workers[i], now, s.uptime_ns, &o, &s);
        add(&s.all, &o);
        if (i < rt->nworkers && i < nworkers) workers[i] = o;
    }
    long live = atomic_load_explicit(&rt->live_tasks, memory_order_relaxed);
    s.tasks_live = live > 0 ? (uint64_t)live : 0;
    s.spawns += atomic_load_explicit(&rt->foreign_spawns, memory_order_relaxed);
    s.cancels += atomic_load_explicit(&rt->foreign_cancels, memory_order_relaxed);
    pthread_rwlock_unlock(&async__stats_lock);
    async__pool_stats(&s.pool);
    *stats = s;
    return 0;
}
