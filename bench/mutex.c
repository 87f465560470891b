/* asyncstd-mutex: async_mutex_t against pthread_mutex_t, side by side in one
 * run. Prints ns per lock+unlock:
 *   uncontended   one plain thread, lock+unlock in a loop (for async_mutex:
 *                 async_await(async_mutex_lock(&m)) then async_mutex_unlock);
 *   contended     T plain threads hammering one mutex with a tiny critical
 *                 section (total time / total lock+unlock pairs);
 *   tasks         T tasks on the runtime's workers doing the same with
 *                 async_mutex (pthread has no counterpart: a task blocking in
 *                 pthread_mutex_lock would stall its worker).
 *
 *   asyncstd-mutex [ITERS]   (default 2,000,000 uncontended; a tenth under contention)
 * Env THREADS: workers and contending threads (default 2). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <asyncstd/asyncstd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(const char *what) {
    fprintf(stderr, "asyncstd-mutex: %s: %s\n", what, strerror(errno));
    exit(1);
}

static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
static async_mutex_t am = ASYNC_MUTEX_INITIALIZER;
static long counter;
static long iters;

static double pthread_loop(long n) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&pm);
        counter++;
        pthread_mutex_unlock(&pm);
    }
    return (double)(now_ns() - t0);
}

static double async_loop(long n) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (async_await(async_mutex_lock(&am)) != 0) fail("async_mutex_lock");
        counter++;
        async_mutex_unlock(&am);
    }
    return (double)(now_ns() - t0);
}

static void *pthread_thread(void *arg) {
    (void)arg;
    pthread_loop(iters);
    return NULL;
}

static void *async_thread(void *arg) {
    (void)arg;
    async_loop(iters);
    return NULL;
}

static double contended(void *(*fn)(void *), unsigned t) {
    pthread_t th[64];
    counter = 0;
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < t; i++) pthread_create(&th[i], NULL, fn, NULL);
    for (unsigned i = 0; i < t; i++) pthread_join(th[i], NULL);
    double ns = (double)(now_ns() - t0);
    if (counter != (long)t * iters) {
        fprintf(stderr, "asyncstd-mutex: lost updates (%ld of %ld)\n", counter, (long)t * iters);
        exit(1);
    }
    return ns / ((double)t * iters);
}

static intptr_t task_fn(void *arg) {
    (void)arg;
    async_loop(iters);
    return 0;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    if (n <= 0) n = 2000000;
    const char *e = getenv("THREADS");
    unsigned t = e && atoi(e) > 0 ? (unsigned)atoi(e) : 2;
    if (t > 64) t = 64;
    async_config_t cfg = {.threads = t};
    if (async_runtime_init(&cfg) != 0) fail("async_runtime_init");

    pthread_loop(n / 10); /* warm up both */
    async_loop(n / 10);
    double p_unc = pthread_loop(n) / (double)n;
    double a_unc = async_loop(n) / (double)n;

    iters = n / 10;
    double p_con = contended(pthread_thread, t);
    double a_con = contended(async_thread, t);

    async_future_t *tasks[64];
    counter = 0;
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < t; i++) {
        async_spawn_opts_t o = {.worker = 1 + i % t};
        tasks[i] = async_spawn_opts(task_fn, NULL, &o);
    }
    if (async_await_all(tasks, t, NULL, NULL) != 0) fail("tasks");
    double a_tasks = (double)(now_ns() - t0) / ((double)t * iters);
    if (counter != (long)t * iters) fail("tasks lost updates");

    printf("RESULT mutex uncontended pthread_ns=%.1f async_ns=%.1f ratio=%.2f\n", p_unc, a_unc,
           a_unc / p_unc);
    printf("RESULT mutex contended threads=%u pthread_ns=%.1f async_ns=%.1f ratio=%.2f\n", t, p_con,
           a_con, a_con / p_con);
    printf("RESULT mutex tasks workers=%u async_ns=%.1f\n", t, a_tasks);
    if (async_runtime_shutdown() != 0) fail("async_runtime_shutdown");
    return 0;
}
