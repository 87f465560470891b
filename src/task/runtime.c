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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define WORKERS_MAX 1024
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
        if (n > 0) return (unsigned)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

/* An ASYNCSTD_* variable as a positive number; 0 if unset; -1 if malformed. */
static long long env_number(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || v <= 0) return -1;
    if (*end == 'k' || *end == 'K')
        v *= 1024, end++;
    else if (*end == 'm' || *end == 'M')
        v *= 1024 * 1024, end++;
    return *end ? -1 : v;
}

static int resolve(const async_config_t *in, async_config_t *out) {
    async_config_t c = in ? *in : (async_config_t){0};
    long long v;
    if (!c.threads && (v = env_number("ASYNCSTD_THREADS")) != 0)
        c.threads = v > 0 && v <= WORKERS_MAX ? (unsigned)v : UINT_MAX;
    if (!c.pool_threads && (v = env_number("ASYNCSTD_POOL_THREADS")) != 0)
        c.pool_threads = v > 0 && v < 100000 ? (unsigned)v : UINT_MAX;
    if (!c.pool_reserved && (v = env_number("ASYNCSTD_POOL_RESERVED")) != 0)
        c.pool_reserved = v > 0 && v < 100000 ? (unsigned)v : UINT_MAX;
    if (!c.stack_size && (v = env_number("ASYNCSTD_STACK_SIZE")) != 0)
        c.stack_size = v > 0 ? (size_t)v : SIZE_MAX;
    if (!c.threads) c.threads = cpu_count();
    if (!c.pool_threads) c.pool_threads = DEFAULT_POOL;
    if (!c.pool_reserved)
        c.pool_reserved = c.pool_threads > DEFAULT_RESERVED ? DEFAULT_RESERVED : c.pool_threads - 1;
    if (!c.stack_size) c.stack_size = DEFAULT_STACK;
    if (c.threads > WORKERS_MAX || c.pool_threads >= 100000 || c.pool_reserved >= c.pool_threads ||
        c.stack_size < 16 * 1024 || c.stack_size > ((size_t)1 << 30)) {
        errno = EINVAL;
        return -1;
    }
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
    async__stack_configure(c.stack_size);
    if (async__pool_init(c.pool_threads, c.pool_reserved) != 0) {
        free(rt->workers);
        rt->workers = NULL;
        return -1;
    }
    for (unsigned i = 0; i <= c.threads; i++) {
        if (async__worker_start(&rt->workers[i], i + 1, i == c.threads) != 0) {
            int err = errno;
            for (unsigned j = 0; j < i; j++) async__worker_exit(&rt->workers[j]);
            for (unsigned j = 0; j < i; j++) async__worker_join(&rt->workers[j]);
            async__pool_shutdown();
            free(rt->workers);
            rt->workers = NULL;
            errno = err;
            return -1;
        }
    }
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
            uv_async_send(&w->wakeup);
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
    atomic_store_explicit(&rt->stopping, 1, memory_order_release);
    for (unsigned i = 0; i <= rt->nworkers; i++) async__worker_stop(&rt->workers[i]);
    while (atomic_load_explicit(&rt->live_tasks, memory_order_acquire) != 0) {
        atomic_store(&rt->all_done, 0);
        if (atomic_load_explicit(&rt->live_tasks, memory_order_acquire) == 0) break;
        async__futex_wait(&rt->all_done, 0);
    }
    for (unsigned i = 0; i <= rt->nworkers; i++) async__worker_exit(&rt->workers[i]);
    for (unsigned i = 0; i <= rt->nworkers; i++) async__worker_join(&rt->workers[i]);
    async__pool_shutdown();
    async__io_global_free();
    async__stack_global_free();
    free(rt->workers);
    rt->workers = NULL;
    rt->nworkers = 0;
    atomic_store_explicit(&async__rt_state, 0, memory_order_release);
    async__obj_runtime_down();
    async__key_thread_cleanup(); /* main never exits through pthread_exit: free its table here */
    pthread_mutex_unlock(&rt_lock);
    return 0;
}
