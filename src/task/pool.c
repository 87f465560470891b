/* The blocking-offload pool: threads that run blocking calls (file system
 * work, user jobs from async_spawn_blocking) and settle their futures.
 *
 * Policy (docs/design.md has the reasons): threads are started on demand up
 * to `max`; file jobs are taken first, and user jobs never occupy more than
 * `max - reserved` threads, so a flood of slow user jobs cannot starve file
 * operations. Idle threads stay until shutdown. One mutex guards the queues
 * and the counts; a job's future is settled outside it, and a thread is
 * created outside it too (pthread_create maps a stack and clones, which can
 * take milliseconds on a loaded machine, while every submitter, pool thread
 * and stats reader waits for the mutex). libuv's own threadpool was not used
 * because its size is fixed per process and its user work (uv_queue_work)
 * competes with file work without limit. */
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "internal.h"

enum { J_QUEUED, J_RUNNING, J_DONE };

/* A thread's place: FREE, STARTING (claimed under the lock, its thread being
 * created outside it), RUNNING (created: joined at shutdown). */
enum { S_FREE, S_STARTING, S_RUNNING };

/* One pool thread. `state` and `tid` are under the lock. What it runs, for
 * dumps: written by that thread as a job starts and ends (relaxed stores),
 * read by a dump on any thread. */
typedef struct slot {
    int state;
    pthread_t tid;
    atomic_bool busy;
    _Atomic uintptr_t fn;
    _Atomic(const char *) path;
    _Atomic int64_t since_ms;
} slot_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;    /* idle threads wait here for a job */
    pthread_cond_t created; /* shutdown waits here for `starting` to reach 0 */
    async__list_t q[2];     /* queued jobs by kind, oldest first */
    size_t queued[2];       /* their lengths, for async_runtime_stats */
    unsigned max, reserved;
    unsigned threads;  /* RUNNING slots */
    unsigned starting; /* STARTING slots: pthread_create in progress */
    unsigned span;     /* slots ever claimed since init: [0, span) */
    unsigned idle, running_user;
    unsigned signalled;        /* idle threads already woken for a job, not yet running */
    _Atomic uint64_t jobs_run; /* counted before the job's future settles: its awaiter sees it */
    bool stopping;
    slot_t *slots; /* `max` of them */
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .cond = PTHREAD_COND_INITIALIZER,
          .created = PTHREAD_COND_INITIALIZER};

static __thread bool on_pool_thread;
static __thread slot_t *my_slot;

bool async__pool_is_current_thread(void) { return on_pool_thread; }

/* Must hold the lock. The next job this thread may take, or NULL. */
static async__job_t *take(void) {
    async__node_t *n = async__list_pop_front(&pool.q[ASYNC_POOL_FS]);
    if (n) {
        pool.queued[ASYNC_POOL_FS]--;
        return async__list_entry(n, async__job_t, node);
    }
    if (!async__list_empty(&pool.q[ASYNC_POOL_USER]) &&
        pool.running_user < pool.max - pool.reserved) {
        async__job_t *j =
            async__list_entry(async__list_pop_front(&pool.q[ASYNC_POOL_USER]), async__job_t, node);
        pool.queued[ASYNC_POOL_USER]--;
        pool.running_user++;
        return j;
    }
    return NULL;
}

static void note(slot_t *s, uintptr_t fn, const char *path) {
    atomic_store_explicit(&s->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&s->path, path, memory_order_relaxed);
    atomic_store_explicit(&s->since_ms, async__coarse_ms(), memory_order_relaxed);
}

void async__pool_note(uintptr_t fn, const char *path) {
    if (my_slot) note(my_slot, fn, path);
}

static uintptr_t job_fn(const async__job_t *j);

static void *pool_main(void *arg) {
    on_pool_thread = true;
    my_slot = arg;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        async__job_t *j = take();
        if (!j) {
            if (pool.stopping) break;
            pool.idle++;
            pthread_cond_wait(&pool.cond, &pool.lock);
            pool.idle--;
            if (pool.signalled) pool.signalled--;
            continue;
        }
        j->state = J_RUNNING;
        pthread_mutex_unlock(&pool.lock);
        note(my_slot, job_fn(j), NULL);
        atomic_store_explicit(&my_slot->busy, true, memory_order_relaxed);
        errno = 0;
        intptr_t v = j->work(j);
        atomic_store_explicit(&my_slot->busy, false, memory_order_relaxed);
        int err = v == -1 ? (errno ? errno : EIO) : 0;
        int kind = j->kind;
        atomic_fetch_add_explicit(&pool.jobs_run, 1, memory_order_relaxed);
        async__future_complete(&j->future, v, err);
        if (ASYNC_UNLIKELY(async__rt.vclock)) async__vclock_release();
        pthread_mutex_lock(&pool.lock);
        if (kind == ASYNC_POOL_USER) {
            pool.running_user--;
            /* a user job may have been waiting for this slot */
            if (!async__list_empty(&pool.q[ASYNC_POOL_USER]) && pool.idle)
                pthread_cond_signal(&pool.cond);
        }
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

int async__pool_init(unsigned max_threads, unsigned reserved) {
    pthread_mutex_lock(&pool.lock);
    pool.slots = calloc(max_threads, sizeof *pool.slots); /* all S_FREE */
    if (!pool.slots) {
        pthread_mutex_unlock(&pool.lock);
        errno = ENOMEM;
        return -1;
    }
    pool.max = max_threads;
    pool.reserved = reserved;
    pool.threads = pool.starting = pool.span = 0;
    pool.idle = pool.running_user = pool.signalled = 0;
    atomic_store(&pool.jobs_run, 0);
    pool.stopping = false;
    memset(pool.q, 0, sizeof pool.q);
    memset(pool.queued, 0, sizeof pool.queued);
    pthread_mutex_unlock(&pool.lock);
    return 0;
}

/* Must hold the lock. Wakes an idle thread for a job just queued, or claims
 * a slot for a new thread if the job needs one and the pool may grow; the
 * caller starts it with the lock released (start_thread). NULL if no thread
 * is to be started. */
static slot_t *need_thread(int kind) {
    if (pool.idle > pool.signalled) {
        pool.signalled++;
        pthread_cond_signal(&pool.cond);
        return NULL;
    }
    if (kind == ASYNC_POOL_USER && pool.running_user >= pool.max - pool.reserved) return NULL;
    if (pool.threads + pool.starting >= pool.max) return NULL;
    /* the lowest free slot: there is one, since fewer than max are taken */
    unsigned i = 0;
    while (pool.slots[i].state != S_FREE) i++;
    if (i >= pool.span) pool.span = i + 1;
    pool.slots[i].state = S_STARTING;
    pool.starting++;
    return &pool.slots[i];
}

/* Must hold the lock: moves every queued job to `out`, for the caller to
 * settle once it has released the lock. */
static void take_all_queued(async__list_t *out) {
    for (int k = 0; k < 2; k++) {
        async__node_t *n;
        while ((n = async__list_pop_front(&pool.q[k]))) {
            async__list_entry(n, async__job_t, node)->state = J_DONE;
            async__list_push_back(out, n);
        }
        pool.queued[k] = 0;
    }
}

/* Without the lock: creates the thread of slot `s` (claimed by need_thread). */
static void start_thread(slot_t *s) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    pthread_t tid;
    int err = pthread_create(&tid, &attr, pool_main, s);
    pthread_attr_destroy(&attr);
    async__list_t failed = {0};
    pthread_mutex_lock(&pool.lock);
    pool.starting--;
    if (err == 0) {
        s->tid = tid;
        s->state = S_RUNNING;
        pool.threads++;
    } else {
        s->state = S_FREE;
        /* With a thread alive or being created, the queued jobs wait for it.
         * With none (RLIMIT_NPROC or RLIMIT_AS reached before the first),
         * they would wait forever: fail them all instead (the last creation
         * to fail sees them); a later job tries to start a thread again. */
        if (pool.threads == 0 && pool.starting == 0) take_all_queued(&failed);
    }
    if (pool.starting == 0 && pool.stopping) pthread_cond_broadcast(&pool.created);
    pthread_mutex_unlock(&pool.lock);
    async__node_t *n;
    while ((n = async__list_pop_front(&failed))) {
        async__future_complete(&async__list_entry(n, async__job_t, node)->future, -1, err);
        if (ASYNC_UNLIKELY(async__rt.vclock)) async__vclock_release();
    }
}

async_future_t *async__pool_submit(async__job_t *j) {
    pthread_mutex_lock(&pool.lock);
    if (pool.stopping || pool.max == 0) {
        pthread_mutex_unlock(&pool.lock);
        async__future_complete(&j->future, -1, ECANCELED);
        return &j->future;
    }
    j->state = J_QUEUED;
    async__list_push_back(&pool.q[j->kind], &j->node);
    pool.queued[j->kind]++;
    /* the virtual clock waits for the job (vclock.c): held before any thread can take it */
    if (ASYNC_UNLIKELY(async__rt.vclock)) async__vclock_hold();
    slot_t *s = need_thread(j->kind);
    pthread_mutex_unlock(&pool.lock);
    /* may fail the job (and the others queued) when no thread can run it: it
     * is then settled before this returns */
    if (s) start_thread(s);
    return &j->future;
}

void async__job_cancel(async_future_t *f) {
    async__job_t *j = (async__job_t *)f;
    pthread_mutex_lock(&pool.lock);
    bool queued = j->state == J_QUEUED;
    if (queued) {
        async__list_remove(&pool.q[j->kind], &j->node);
        pool.queued[j->kind]--;
        j->state = J_DONE;
    }
    pthread_mutex_unlock(&pool.lock);
    if (queued) async__future_complete(f, -1, ECANCELED);
    if (queued && ASYNC_UNLIKELY(async__rt.vclock)) async__vclock_release();
}

void async__pool_shutdown(void) {
    pthread_mutex_lock(&pool.lock);
    pool.stopping = true;
    /* queued jobs will not run: settle them */
    async__list_t cancelled = {0};
    take_all_queued(&cancelled);
    pthread_cond_broadcast(&pool.cond);
    /* a thread being created (by a plain thread's submit) is joined too */
    while (pool.starting) pthread_cond_wait(&pool.created, &pool.lock);
    unsigned span = pool.span;
    pthread_mutex_unlock(&pool.lock);
    async__node_t *n;
    while ((n = async__list_pop_front(&cancelled))) {
        async__future_complete(&async__list_entry(n, async__job_t, node)->future, -1, ECANCELED);
        if (async__rt.vclock) async__vclock_release();
    }
    /* no slot changes any more: nothing claims one while stopping */
    for (unsigned i = 0; i < span; i++)
        if (pool.slots[i].state == S_RUNNING) pthread_join(pool.slots[i].tid, NULL);
    pthread_mutex_lock(&pool.lock);
    free(pool.slots);
    pool.slots = NULL;
    pool.threads = pool.span = 0;
    pool.max = 0;
    pthread_mutex_unlock(&pool.lock);
}

void async__pool_stats(async_pool_stats_t *out) {
    pthread_mutex_lock(&pool.lock);
    out->threads = pool.threads;
    out->busy = pool.threads - pool.idle;
    out->queued_fs = pool.queued[ASYNC_POOL_FS];
    out->queued_user = pool.queued[ASYNC_POOL_USER];
    out->jobs_run = atomic_load_explicit(&pool.jobs_run, memory_order_relaxed);
    pthread_mutex_unlock(&pool.lock);
}

/* ---- async_spawn_blocking ------------------------------------------------- */

typedef struct user_job {
    async__job_t job;
    async_task_fn fn;
    void *arg;
} user_job_t;

static void job_release(async_future_t *f) { free(f); }

static intptr_t run_user_job(async__job_t *j);

static void job_describe(const async_future_t *f, async__wait_t *out) {
    const async__job_t *j = (const async__job_t *)f;
    void (*fn)(void) = (void (*)(void))j->work;
    if (j->work == run_user_job) fn = (void (*)(void))((const user_job_t *)j)->fn;
    async__wait_set(out, ASYNC_WAIT_JOB, NULL, fn, f, NULL, 0);
}

const async__future_ops_t async__job_ops = {async__job_cancel, job_release, job_describe};

static uintptr_t job_fn(const async__job_t *j) {
    if (j->work == run_user_job) return (uintptr_t)((const user_job_t *)j)->fn;
    return (uintptr_t)j->work;
}

unsigned async__pool_view(async__pool_view_t *v, async__pool_thread_view_t *threads, unsigned cap) {
    pthread_mutex_lock(&pool.lock);
    v->threads = pool.threads;
    v->max = pool.max;
    v->idle = pool.idle;
    for (int k = 0; k < 2; k++) {
        size_t n = 0;
        for (async__node_t *j = pool.q[k].head; j && n < ASYNC_DUMP_QUEUE_COUNT; j = j->next) n++;
        v->queued[k] = n;
    }
    unsigned n = 0;
    for (unsigned i = 0; i < pool.span && n < cap; i++) {
        slot_t *s = &pool.slots[i];
        if (s->state != S_RUNNING) continue;
        threads[n].busy = atomic_load_explicit(&s->busy, memory_order_relaxed);
        threads[n].fn = atomic_load_explicit(&s->fn, memory_order_relaxed);
        threads[n].path = atomic_load_explicit(&s->path, memory_order_relaxed);
        threads[n].since_ms = atomic_load_explicit(&s->since_ms, memory_order_relaxed);
        n++;
    }
    pthread_mutex_unlock(&pool.lock);
    return n;
}

static intptr_t run_user_job(async__job_t *j) {
    user_job_t *u = (user_job_t *)j;
    return u->fn(u->arg);
}

async_future_t *async_spawn_blocking(async_task_fn fn, void *arg) {
    if (!fn) return async__future_failed(EINVAL);
    if (!async__runtime()) return async__future_failed(errno);
    user_job_t *u = malloc(sizeof *u);
    if (!u) {
        errno = ENOMEM;
        return NULL;
    }
    async__future_init(&u->job.future, &async__job_ops);
    u->job.work = run_user_job;
    u->job.kind = ASYNC_POOL_USER;
    u->fn = fn;
    u->arg = arg;
    return async__pool_submit(&u->job);
}
