/* asyncstd-peer: asyncstd's implementation of the peer benchmark workloads
 * (peers/SPEC.md), so that peers/run.sh can set it beside tokio, Go, Node and
 * raw libuv. It takes the workload name first, then its parameters, and prints
 * one line: `RESULT <workload> asyncstd key=value ... threads=N`.
 *
 * Env THREADS (default 1) is the number of worker threads, passed to
 * async_runtime_init(). Every workload runs inside one root task that main()
 * spawns and awaits, so every await below is a task await (a fiber switch),
 * never a blocked thread; this matches the Rust peers, whose workload is a
 * task spawned on the runtime.
 *
 * What is timed mirrors the peers (peer-libuv.c, go/main.go, peer-tokio.rs):
 *   spawn     N tasks, each bumps a shared atomic and returns its index; joined
 *             in spawn order; the time covers spawning, running and joining.
 *   pingpong  the root task is A, B is spawned; R round trips over two
 *             capacity-1 async_chan_t channels, timed from after B's spawn.
 *   sleep     N tasks each await async_usleep(100 ms); wall time includes
 *             spawning; peak RSS is getrusage's ru_maxrss (runtime included).
 *   idle      N tasks each await their own never-settled async_future_new();
 *             RSS from /proc/self/statm before spawning and once all are parked.
 * fileread, pread and stat are in peer_fs.c; echo-server is in peer_net.c.
 * Every workload checks its results and exits 1 with a message when they are
 * wrong. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <asyncstd/asyncstd.h>

#include "peer_fs.h"
#include "peer_net.h"
#include "peer_proc.h"
#include "peer_util.h"

#define IMPL "asyncstd"

static unsigned nthreads = 1;

/* Resident set size now, in bytes (the second field of /proc/self/statm). */
static long rss_bytes(void) {
    long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) fail_errno("/proc/self/statm");
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) fail("/proc/self/statm: unreadable");
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

/* ---------------- spawn ---------------- */
static atomic_long spawn_counter;

static intptr_t spawn_task(void *arg) {
    atomic_fetch_add_explicit(&spawn_counter, 1, memory_order_relaxed);
    return (intptr_t)arg;
}

static void spawn_wl(int argc, char **argv) {
    long n = param(argc, argv, 0, 200000);
    async_future_t **tasks = malloc((size_t)n * sizeof *tasks);
    if (!tasks) fail("spawn: out of memory");
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        tasks[i] = async_spawn(spawn_task, (void *)(intptr_t)i);
        if (!tasks[i]) fail_errno("spawn: async_spawn");
    }
    long sum = 0;
    for (long i = 0; i < n; i++) { /* join in spawn order */
        intptr_t v = async_await(tasks[i]);
        if (v != i) {
            fprintf(stderr, "asyncstd-peer: spawn: task %ld returned %ld (errno %d)\n", i, (long)v,
                    errno);
            exit(1);
        }
        sum += v;
    }
    double ms = ms_since(t0);
    long counter = atomic_load(&spawn_counter);
    if (counter != n || sum != n * (n - 1) / 2) {
        fprintf(stderr, "asyncstd-peer: spawn: counter %ld, sum %ld, want %ld and %ld\n", counter,
                sum, n, n * (n - 1) / 2);
        exit(1);
    }
    printf("RESULT spawn " IMPL " ns_per_task=%.1f total_ms=%.1f threads=%u\n", ms * 1e6 / n, ms,
           nthreads);
    free(tasks);
}

/* ---------------- pingpong ---------------- */
/* Two capacity-1 channels (async_chan_*) of intptr_t, as the peers use
 * capacity-1 (or unbuffered) channels. */
static void chan_send(async_chan_t *c, intptr_t v) {
    if (async_await(async_chan_send(c, &v)) != 0) fail_errno("pingpong: async_chan_send");
}

static intptr_t chan_recv(async_chan_t *c) {
    intptr_t v;
    if (async_await(async_chan_recv(c, &v)) != 1) fail_errno("pingpong: async_chan_recv");
    return v;
}

typedef struct {
    async_chan_t *ab, *ba; /* A -> B, B -> A */
    long rounds;
} pingpong_t;

static intptr_t pong_task(void *arg) { /* B: echo every message back */
    pingpong_t *p = arg;
    for (long i = 0; i < p->rounds; i++) chan_send(p->ba, chan_recv(p->ab));
    return 0;
}

static void pingpong_wl(int argc, char **argv) {
    static pingpong_t p;
    p.rounds = param(argc, argv, 0, 1000000);
    p.ab = async_chan_new(sizeof(intptr_t), 1);
    p.ba = async_chan_new(sizeof(intptr_t), 1);
    if (!p.ab || !p.ba) fail_errno("pingpong: async_chan_new");
    async_future_t *b = async_spawn(pong_task, &p);
    if (!b) fail_errno("pingpong: async_spawn");
    uint64_t t0 = now_ns();
    for (long i = 0; i < p.rounds; i++) { /* this task is A */
        chan_send(p.ab, i);
        if (chan_recv(p.ba) != i) fail("pingpong: wrong echo");
    }
    double ms = ms_since(t0);
    if (async_await(b) != 0) fail_errno("pingpong: task B");
    if (async_chan_free(p.ab) != 0 || async_chan_free(p.ba) != 0) fail_errno("pingpong: free");
    printf("RESULT pingpong " IMPL " ns_per_roundtrip=%.1f threads=%u\n", ms * 1e6 / p.rounds,
           nthreads);
}

/* ---------------- sleep ---------------- */
static intptr_t sleep_task(void *arg) {
    (void)arg;
    return async_await(async_usleep(100000));
}

static void sleep_wl(int argc, char **argv) {
    long n = param(argc, argv, 0, 100000);
    uint64_t t0 = now_ns();
    async_future_t **tasks = malloc((size_t)n * sizeof *tasks);
    if (!tasks) fail("sleep: out of memory");
    for (long i = 0; i < n; i++) {
        tasks[i] = async_spawn(sleep_task, NULL);
        if (!tasks[i]) fail_errno("sleep: async_spawn");
    }
    for (long i = 0; i < n; i++)
        if (async_await(tasks[i]) != 0) fail_errno("sleep: a task's sleep failed");
    double ms = ms_since(t0);
    if (ms < 100) fail("sleep: returned before 100 ms");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("RESULT sleep " IMPL " wall_ms=%.1f overhead_ms=%.1f peak_rss_mb=%.1f threads=%u\n", ms,
           ms - 100, ru.ru_maxrss / 1024.0, nthreads);
    free(tasks);
}

/* ---------------- idle ---------------- */
static atomic_long idle_parked;

/* Counts itself as parked just before it awaits its own future (as the Go and
 * tokio peers do); the root then yields until all have really suspended. */
static intptr_t idle_task(void *arg) {
    atomic_fetch_add_explicit(&idle_parked, 1, memory_order_relaxed);
    return async_await(arg);
}

static void idle_wl(int argc, char **argv) {
    long n = param(argc, argv, 0, 100000);
    /* The two handle arrays are allocated (not touched) before the first reading,
     * like the peers' vectors: their pages count toward the per-task cost. */
    async_future_t **waits = malloc((size_t)n * sizeof *waits);
    async_future_t **tasks = malloc((size_t)n * sizeof *tasks);
    if (!waits || !tasks) fail("idle: out of memory");
    long before = rss_bytes();
    for (long i = 0; i < n; i++) {
        waits[i] = async_future_new();
        if (!waits[i]) fail("idle: async_future_new: out of memory");
        tasks[i] = async_spawn(idle_task, waits[i]);
        if (!tasks[i]) fail_errno("idle: async_spawn");
    }
    while (atomic_load(&idle_parked) < n)
        if (async_yield() != 0) fail_errno("idle: async_yield");
    for (int i = 0; i < 10; i++) async_yield();
    long after = rss_bytes();
    for (long i = 0; i < n; i++)
        if (async_future_resolve(waits[i], i) != 0) fail_errno("idle: async_future_resolve");
    for (long i = 0; i < n; i++) {
        intptr_t v = async_await(tasks[i]);
        if (v != i) {
            fprintf(stderr, "asyncstd-peer: idle: task %ld returned %ld (errno %d)\n", i, (long)v,
                    errno);
            exit(1);
        }
    }
    printf("RESULT idle " IMPL " bytes_per_task=%.0f threads=%u\n", (double)(after - before) / n,
           nthreads);
    free(waits);
    free(tasks);
}

/* ---------------- fileread, pread, stat (peer_fs.c) ---------------- */
static void fileread_wl(int argc, char **argv) { peer_fileread(argc, argv, nthreads); }
static void pread_wl(int argc, char **argv) { peer_pread(argc, argv, nthreads); }
static void stat_wl(int argc, char **argv) { peer_stat(argc, argv, nthreads); }
static void procspawn_wl(int argc, char **argv) { peer_procspawn(argc, argv, nthreads); }

/* ---------------- main ---------------- */
typedef struct {
    void (*fn)(int, char **);
    int argc;
    char **argv;
} root_t;

static intptr_t root_task(void *arg) {
    root_t *r = arg;
    r->fn(r->argc, r->argv);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s WORKLOAD [params...]   (see peers/SPEC.md)\n", argv[0]);
        return 2;
    }
    const char *wl = argv[1];
    root_t root = {NULL, argc - 2, argv + 2};
    if (!strcmp(wl, "spawn"))
        root.fn = spawn_wl;
    else if (!strcmp(wl, "pingpong"))
        root.fn = pingpong_wl;
    else if (!strcmp(wl, "sleep"))
        root.fn = sleep_wl;
    else if (!strcmp(wl, "idle"))
        root.fn = idle_wl;
    else if (!strcmp(wl, "fileread"))
        root.fn = fileread_wl;
    else if (!strcmp(wl, "pread"))
        root.fn = pread_wl;
    else if (!strcmp(wl, "stat"))
        root.fn = stat_wl;
    else if (!strcmp(wl, "echo-server"))
        root.fn = peer_echo_server;
    else if (!strcmp(wl, "procspawn"))
        root.fn = procspawn_wl;
    else { /* a workload this program does not know */
        printf("RESULT %s " IMPL " skipped=1\n", wl);
        return 0;
    }

    const char *t = getenv("THREADS");
    if (t && atoi(t) > 0) nthreads = (unsigned)atoi(t);
    async_config_t cfg = {0};
    cfg.threads = nthreads;
    if (async_runtime_init(&cfg) != 0) fail_errno("async_runtime_init");
    if (async_worker_count() != (int)nthreads) fail("async_worker_count() differs from THREADS");

    errno = 0;
    if (async_await(async_spawn(root_task, &root)) != 0) fail_errno("root task");
    fflush(stdout);
    if (async_runtime_shutdown() != 0) fail_errno("async_runtime_shutdown");
    return 0;
}
