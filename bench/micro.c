/* Microbenchmarks of the core's hot paths, for docs/design.md: what one
 * yield, one await of a settled future, one spawn+join, one wake-up across
 * workers and one blocking-pool round trip cost. Each figure is the best of
 * ROUNDS runs (the machine is shared; the minimum is the least disturbed).
 *
 *   build/bench/asyncstd-micro [ROUNDS] [cross|local]
 *
 * With "cross", only the round trip between two workers runs, once per round,
 * each printed (bench/RESULTS.md: it is bimodal after the other phases). With
 * "local", only the lines that stay on one worker.
 */
#include <asyncstd/asyncstd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

#define YIELDS 1000000
#define AWAITS 1000000
#define SPAWNS 100000
#define WAKES 200000
#define JOBS 20000

/* ---- yield: two tasks on one worker take turns --------------------------------------------- */
static intptr_t yielder(void *arg) {
    for (int i = 0; i < YIELDS; i++) async_yield();
    return 0;
}

static double bench_yield(void) {
    async_spawn_opts_t o = {.worker = 1};
    double t0 = now_ns();
    async_future_t *a = async_spawn_opts(yielder, NULL, &o);
    async_future_t *b = async_spawn_opts(yielder, NULL, &o);
    async_await(a);
    async_await(b);
    return (now_ns() - t0) / (2.0 * YIELDS); /* per switch to the other task */
}

/* ---- await of an already settled future ---------------------------------------------------- */
static intptr_t awaiter(void *arg) {
    double t0 = now_ns();
    for (int i = 0; i < AWAITS; i++) {
        async_future_t *f = async_future_new();
        async_future_resolve(f, i);
        if (async_await(f) != i) return -1;
    }
    *(double *)arg = (now_ns() - t0) / AWAITS;
    return 0;
}

/* ---- spawn + join of a trivial task, one at a time (warm stack and objects) ----------------- */
static intptr_t trivial(void *arg) { return (intptr_t)arg; }

static intptr_t spawner(void *arg) {
    double t0 = now_ns();
    for (int i = 0; i < SPAWNS; i++)
        if (async_await(async_spawn(trivial, (void *)(intptr_t)i)) != i) return -1;
    *(double *)arg = (now_ns() - t0) / SPAWNS;
    return 0;
}

/* ---- wake-up round trip: A wakes B, B wakes A, through futures made beforehand --------------- */
typedef struct {
    async_future_t **to_a, **to_b;
} pair_t;

static intptr_t ping(void *arg) {
    pair_t *p = arg;
    for (int i = 0; i < WAKES; i++) {
        async_future_resolve(p->to_b[i], i);
        if (async_await(p->to_a[i]) != i) return -1;
    }
    return 0;
}

static intptr_t pong(void *arg) {
    pair_t *p = arg;
    for (int i = 0; i < WAKES; i++) {
        if (async_await(p->to_b[i]) != i) return -1;
        async_future_resolve(p->to_a[i], i);
    }
    return 0;
}

static double bench_pingpong(unsigned wa, unsigned wb) {
    pair_t p = {malloc(WAKES * sizeof(async_future_t *)), malloc(WAKES * sizeof(async_future_t *))};
    if (!p.to_a || !p.to_b) return -1;
    for (int i = 0; i < WAKES; i++) {
        p.to_a[i] = async_future_new();
        p.to_b[i] = async_future_new();
    }
    async_spawn_opts_t oa = {.worker = wa}, ob = {.worker = wb};
    double t0 = now_ns();
    async_future_t *b = async_spawn_opts(pong, &p, &ob);
    async_future_t *a = async_spawn_opts(ping, &p, &oa);
    if (async_await(a) != 0 || async_await(b) != 0) return -1;
    double ns = (now_ns() - t0) / WAKES; /* per round trip */
    free(p.to_a);
    free(p.to_b);
    return ns;
}

/* ---- blocking pool round trip ------------------------------------------------------------- */
static intptr_t nothing(void *arg) { return 1; }

static intptr_t pool_user(void *arg) {
    double t0 = now_ns();
    for (int i = 0; i < JOBS; i++)
        if (async_await(async_spawn_blocking(nothing, NULL)) != 1) return -1;
    *(double *)arg = (now_ns() - t0) / JOBS;
    return 0;
}

static double best(double a, double b) { return a < b || b <= 0 ? a : b; }

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    async_config_t cfg = {.threads = 2};
    if (async_runtime_init(&cfg) != 0) return 1;
    if (argc > 2 && strcmp(argv[2], "cross") == 0) {
        for (int r = 0; r < rounds; r++) printf("%.1f ns\n", bench_pingpong(1, 2));
        return async_runtime_shutdown();
    }
    /* "local": the one-worker lines only (switch, spawn, same-worker wake-up), in seconds
     * where the cross-worker and pool lines take minutes on a loaded machine */
    bool local = argc > 2 && strcmp(argv[2], "local") == 0;
    double y = 0, aw = 0, sp = 0, pp1 = 0, pp2 = 0, pool = 0;
    for (int r = 0; r < rounds; r++) {
        double v;
        async_spawn_opts_t o = {.worker = 1};
        y = best(bench_yield(), y);
        async_await(async_spawn_opts(awaiter, &v, &o));
        aw = best(v, aw);
        async_await(async_spawn_opts(spawner, &v, &o));
        sp = best(v, sp);
        pp1 = best(bench_pingpong(1, 1), pp1);
        if (local) continue;
        pp2 = best(bench_pingpong(1, 2), pp2);
        async_await(async_spawn_opts(pool_user, &v, &o));
        pool = best(v, pool);
    }
    printf("yield (switch to another task)        %8.1f ns\n", y);
    printf("await of a settled future (new+resolve+await) %8.1f ns\n", aw);
    printf("spawn + join, one at a time           %8.1f ns\n", sp);
    printf("round trip, both tasks on one worker  %8.1f ns\n", pp1);
    if (local) return async_runtime_shutdown();
    printf("round trip, tasks on two workers      %8.1f ns\n", pp2);
    printf("blocking pool round trip              %8.1f ns\n", pool);
    return async_runtime_shutdown();
}
