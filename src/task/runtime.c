/* The runtime: settings (async_config_t, then ASYNCSTD_* variables, then
 * defaults), start on first use, and an orderly shutdown:
 *   1. refuse new tasks, ask every worker to cancel its tasks;
 *   2. wait until the last task has ended (tasks may still spawn helpers'
 *      awaits and wake tasks on other workers, so every worker keeps running);
 *   3. tell the workers to close their loops (cancelling timers left over),
 *      join them, stop the pool, unmap the stacks. */
#define _GNU_SOURCE
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump.h"
#include "internal.h"

#define WORKERS_MAX 1024
#define POOL_MAX 99999
#define DEFAULT_STACK (256 * 1024)
#define DEFAULT_POOL 64
#define DEFAULT_RESERVED 4

async__runtime_t async__rt;
atomic_int async__rt_state; /* 0 down, 1 changing, 2 up */
static pthread_mutex_t rt_lock = PTHREAD_MUTEX_INITIALIZER;


static unsigned cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n < WORKERS_MAX ? (unsigned)n : WORKERS_MAX;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (n < WORKERS_MAX ? (unsigned)n : WORKERS_MAX) : 1;
}

/* The ASYNC_ENV_* bits of the variables reported so far: each at most once
 * per process, even when the runtime is started again. */
static atomic_uint warned;

/* A malformed or out-of-range value gives 0, so the default applies: a typo
 * in the environment must not make every later call fail with EINVAL, which
 * is all the runtime could report otherwise. */
unsigned long long async__env_setting(const char *name, unsigned bit, unsigned long long min,
                                      unsigned long long max, bool sized) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    unsigned long long v = 0;
    bool ok = *s >= '0' && *s <= '9'; /* strtoull would take a sign or spaces */
    if (ok) {
        char *end;
        errno = 0;
        v = strtoull(s, &end, 10);
        ok = errno == 0;
        unsigned long long unit = 1;
        if (sized && (*end == 'k' || *end == 'K'))
            unit = 1024, end++;
        else if (sized && (*end == 'm' || *end == 'M'))
            unit = 1024 * 1024, end++;
        ok = ok && *end == '\0' && v <= max / unit;
        v *= unit;
        ok = ok && v >= min;
    }
    if (ok) return v;
    if (!(atomic_fetch_or(&warned, bit) & bit))
        fprintf(stderr,
                "asyncstd: ignoring %s=\"%.32s%s\": not a whole number from %llu to %llu%s; "
                "using the default\n",
                name, s, strlen(s) > 32 ? "..." : "", min, max, sized ? " (k or m suffix)" : "");
    return 0;
}

/* ASYNCSTD_CLOCK: real, virtual or manual; 0 when unset or empty. Another
 * value is named on stderr once, and the default (real) is used. */
static int env_clock(void) {
    const char *s = getenv("ASYNCSTD_CLOCK");
    if (!s || !*s) return 0;
    if (strcmp(s, "real") == 0) return ASYNC_CLOCK_REAL;
    if (strcmp(s, "virtual") == 0) return ASYNC_CLOCK_VIRTUAL;
    if (strcmp(s, "manual") == 0) return ASYNC_CLOCK_MANUAL;
    if (!(atomic_fetch_or(&warned, ASYNC_ENV_CLOCK) & ASYNC_ENV_CLOCK))
        fprintf(stderr,
                "asyncstd: ignoring ASYNCSTD_CLOCK=\"%.32s%s\": not real, virtual or manual; "
                "using the real clock\n",
                s, strlen(s) > 32 ? "..." : "");
    return 0;
}

/* The settings: the caller's fields, checked strictly (EINVAL); zero fields
 * from the environment, where bad values fall back to the default. */
static int resolve(const async_config_t *in, async_config_t *out) {
    async_config_t c = in ? *in : (async_config_t){0};
    if (c.threads > WORKERS_MAX || c.pool_threads > POOL_MAX || c.pool_reserved >= POOL_MAX ||
        (c.stack_size && (c.stack_size < ASYNC_STACK_MIN || c.stack_size > ASYNC_STACK_MAX)) ||
        (c.pool_threads && c.pool_reserved >= c.pool_threads) || c.clock < 0 ||
        c.clock > ASYNC_CLOCK_MANUAL) {
        errno = EINVAL;
        return -1;
    }
    if (!c.threads)
        c.threads = (unsigned)async__env_setting("ASYNCSTD_THREADS", ASYNC_ENV_THREADS, 1,
                                                 WORKERS_MAX, false);
    if (!c.threads) c.threads = cpu_count();
    if (!c.stack_size)
        c.stack_size = (size_t)async__env_setting("ASYNCSTD_STACK_SIZE", ASYNC_ENV_STACK_SIZE,
                                                  ASYNC_STACK_MIN, ASYNC_STACK_MAX, true);
    if (!c.stack_size) c.stack_size = DEFAULT_STACK;
    if (!c.pool_threads) /* above a reserve the caller chose */
        c.pool_threads =
            (unsigned)async__env_setting("ASYNCSTD_POOL_THREADS", ASYNC_ENV_POOL_THREADS,
                                         c.pool_reserved + 1ull, POOL_MAX, false);
    if (!c.pool_threads) c.pool_threads = DEFAULT_POOL;
    if (!c.pool_reserved && c.pool_threads > 1)
        c.pool_reserved = (unsigned)async__env_setting(
            "ASYNCSTD_POOL_RESERVED", ASYNC_ENV_POOL_RESERVED, 1, c.pool_threads - 1, false);
    if (!c.pool_reserved)
        c.pool_reserved = c.pool_threads > DEFAULT_RESERVED ? DEFAULT_RESERVED : c.pool_threads - 1;
    /* a reserve the caller chose, against the default pool */
    if (c.pool_reserved >= c.pool_threads) {
        errno = EINVAL;
        return -1;
    }
    if (!c.clock) c.clock = env_clock();
    if (!c.clock) c.clock = ASYNC_CLOCK_REAL;
    c.stack_size = (c.stack_size + 4095) & ~(size_t)4095;
    *out = c;
    return 0;
}

static int start(const async_config_t *config) {
    async_config_t c;
    if (resolve(config, &c) != 0) return -1;
    async__runtime_t *rt = &async__rt;
    rt->workers = calloc(c.threads + 1, sizeof *rt->workers); /* + the waiter */
    if (!rt->workers) {
        errno = ENOMEM;
        return -1;
    }
    rt->nworkers = c.threads;
    rt->stack_size = c.stack_size;
    atomic_store(&rt->next_worker, 0);
    atomic_store(&rt->live_tasks, 0);
    atomic_store(&rt->sleepers, 0);
    atomic_store(&rt->stopping, 0);
    atomic_store(&rt->all_done, 0);
    atomic_store(&rt->foreign_spawns, 0);
    atomic_store(&rt->foreign_cancels, 0);
    rt->started_ns = uv_hrtime();
    rt->vclock = c.clock != ASYNC_CLOCK_REAL;
    if (rt->vclock) async__vclock_start(c.clock == ASYNC_CLOCK_VIRTUAL);
    async__stack_configure(c.stack_size);
    if (async__pool_init(c.pool_threads, c.pool_reserved) != 0) {
        free(rt->workers);
        rt->workers = NULL;
        return -1;
    }
    async__stall_setup(); /* the signal its handler uses must be chosen before the workers start */
    async__registry_init(); /* before any worker changes its registry */
    for (unsigned i = 0; i <= c.threads; i++) {
        if (async__worker_start(&rt->workers[i], i + 1, i == c.threads) != 0) {
            int err = errno;
            for (unsigned j = 0; j < i; j++) async__worker_exit(&rt->workers[j]);
            for (unsigned j = 0; j < i; j++) async__worker_join(&rt->workers[j]);
            async__pool_shutdown();
            async__stall_teardown();
            free(rt->workers);
            rt->workers = NULL;
            errno = err;
            return -1;
        }
    }
    async__stall_start();
    async__dump_signal_start();
    return 0;
}

int async_runtime_init(const async_config_t *config) {
    pthread_mutex_lock(&rt_lock);
    int r;
    if (atomic_load(&async__rt_state) == 2) {
        errno = EBUSY;
        r = -1;
    } else {
        r = start(config);
        if (r == 0) atomic_store_explicit(&async__rt_state, 2, memory_order_release);
    }
    pthread_mutex_unlock(&rt_lock);
    return r;
}

async__runtime_t *async__runtime(void) {
    if (ASYNC_LIKELY(atomic_load_explicit(&async__rt_state, memory_order_acquire) == 2))
        return &async__rt;
    pthread_mutex_lock(&rt_lock);
    int r = 0;
    if (atomic_load(&async__rt_state) != 2) {
        r = start(NULL);
        if (r == 0) atomic_store_explicit(&async__rt_state, 2, memory_order_release);
    }
    pthread_mutex_unlock(&rt_lock);
    return r == 0 ? &async__rt : NULL;
}

async__worker_t *async__runtime_pick_worker(void) {
    async__runtime_t *rt = &async__rt;
    unsigned i = atomic_fetch_add_explicit(&rt->next_worker, 1, memory_order_relaxed);
    return &rt->workers[i % rt->nworkers];
}

void async__runtime_wake_sleeper(void) {
    async__runtime_t *rt = &async__rt;
    for (unsigned i = 0; i < rt->nworkers; i++) {
        async__worker_t *w = &rt->workers[i];
        int expected = 1;
        if (w != async__tls_worker && atomic_compare_exchange_strong(&w->sleeping, &expected, 0)) {
            atomic_fetch_sub_explicit(&rt->sleepers, 1, memory_order_relaxed);
            async__worker_ring(w);
            return;
        }
    }
}

void async__runtime_task_ended(void) {
    async__runtime_t *rt = &async__rt;
    if (atomic_fetch_sub_explicit(&rt->live_tasks, 1, memory_order_acq_rel) == 1 &&
        atomic_load_explicit(&rt->stopping, memory_order_acquire)) {
        atomic_store_explicit(&rt->all_done, 1, memory_order_release);
        async__futex_wake(&rt->all_done, 1);
    }
}

int async_runtime_shutdown(void) {
    if (async__tls_worker || async__pool_is_current_thread()) {
        errno = EPERM;
        return -1;
    }
    pthread_mutex_lock(&rt_lock);
    if (atomic_load(&async__rt_state) != 2) {
        pthread_mutex_unlock(&rt_lock);
        errno = EINVAL;
        return -1;
    }
    async__runtime_t *rt = &async__rt;
    async__dump_signal_stop(); /* a dump in progress ends before the workers do */
    atomic_store_explicit(&rt->stopping, 1, memory_order_release);
    for (unsigned i = 0; i <= rt->nworkers; i++) async__worker_stop(&rt->workers[i]);
    while (atomic_load_explicit(&rt->live_tasks, memory_order_acquire) != 0) {
        atomic_store(&rt->all_done, 0);
        if (atomic_load_explicit(&rt->live_tasks, memory_order_acquire) == 0) break;
        async__futex_wait(&rt->all_done, 0);
    }
    async__stall_stop();                  /* no task runs any more: nothing to watch */
    if (rt->vclock) async__vclock_down(); /* before the workers it would ring go */
    for (unsigned i = 0; i <= rt->nworkers; i++) async__worker_exit(&rt->workers[i]);
    for (unsigned i = 0; i <= rt->nworkers; i++) async__worker_join(&rt->workers[i]);
    if (rt->vclock) async__vclock_stop();
    async__pool_shutdown();
    async__signal_shutdown();
    /* after the joins (a stall signal still pending died with its thread), and after
     * signal.c gave back what it replaced, which may be the stall handler */
    async__stall_teardown();
    async__io_global_free();
    async__stack_global_free();
    pthread_rwlock_wrlock(&async__stats_lock);
    free(rt->workers);
    rt->workers = NULL;
    rt->nworkers = 0;
    atomic_store_explicit(&async__rt_state, 0, memory_order_release);
    pthread_rwlock_unlock(&async__stats_lock);
    async__obj_runtime_down();
    async__key_thread_cleanup(); /* main never exits through pthread_exit: free its table here */
    pthread_mutex_unlock(&rt_lock);
    return 0;
}
