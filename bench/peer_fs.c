/* asyncstd-peer's file workloads (peers/SPEC.md): fileread, pread and stat,
 * each through the fs module's own calls, run inside peer.c's root task.
 *   fileread  one task: async_open, then async_read of 64 KiB at a time to the end.
 *   pread     C tasks, each async_pread of 4 KiB at random 4 KiB-aligned
 *             offsets (a per-task xorshift, seeded as the libuv peer seeds its
 *             chains) until OPS reads have been issued in all.
 *   stat      C tasks async_stat the files of DIR round-robin until OPS.
 * The directory listing of stat is setup and not timed, as in the peers. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <asyncstd/asyncstd.h>

#include "peer_fs.h"
#include "peer_util.h"

#define IMPL "asyncstd"

void peer_fileread(int argc, char **argv, unsigned nthreads) {
    const char *path = argc > 0 ? argv[0] : "/tmp/peerdata/big.bin";
    int fd = (int)async_await(async_open(path, O_RDONLY | O_CLOEXEC));
    if (fd < 0) fail_errno(path);
    enum { CHUNK = 64 * 1024 };
    char *buf = malloc(CHUNK);
    if (!buf) fail_errno("malloc");
    uint64_t bytes = 0, t0 = now_ns();
    for (;;) {
        intptr_t n = async_await(async_read(fd, buf, CHUNK));
        if (n < 0) fail_errno("async_read");
        if (n == 0) break;
        bytes += (uint64_t)n;
    }
    double ms = ms_since(t0);
    if (async_await(async_close(fd)) != 0) fail_errno("async_close");
    struct stat st;
    if (stat(path, &st) == 0 && (uint64_t)st.st_size != bytes) {
        fprintf(stderr, "asyncstd-peer: fileread: read %llu of %lld bytes\n",
                (unsigned long long)bytes, (long long)st.st_size);
        exit(1);
    }
    printf("RESULT fileread " IMPL " mb_per_s=%.1f bytes=%llu threads=%u\n", bytes / 1e3 / ms,
           (unsigned long long)bytes, nthreads);
    free(buf);
}

typedef struct chain {
    uint64_t rng;
    long done;
} chain_t;

static atomic_long ops_issued;
static long ops_total;
static int pr_fd;
static uint64_t pr_blocks;
static char **paths;
static long npaths;

static uint64_t xorshift(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static intptr_t pread_task(void *arg) {
    chain_t *c = arg;
    char buf[4096];
    while (atomic_fetch_add_explicit(&ops_issued, 1, memory_order_relaxed) < ops_total) {
        off_t off = (off_t)(xorshift(&c->rng) % pr_blocks) * 4096;
        if (async_await(async_pread(pr_fd, buf, sizeof buf, off)) <= 0) fail_errno("async_pread");
        c->done++;
    }
    return 0;
}

static intptr_t stat_task(void *arg) {
    chain_t *c = arg;
    struct stat st;
    long i;
    while ((i = atomic_fetch_add_explicit(&ops_issued, 1, memory_order_relaxed)) < ops_total) {
        if (async_await(async_stat(paths[i % npaths], &st)) != 0) fail_errno("async_stat");
        c->done++;
    }
    return 0;
}

static void run_tasks(const char *wl, int conc, async_task_fn fn, unsigned nthreads) {
    chain_t *chains = calloc((size_t)conc, sizeof *chains);
    async_future_t **fs = calloc((size_t)conc, sizeof *fs);
    if (!chains || !fs) fail_errno("calloc");
    uint64_t t0 = now_ns();
    for (int i = 0; i < conc; i++) {
        chains[i].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        if (!(fs[i] = async_spawn(fn, &chains[i]))) fail_errno("async_spawn");
    }
    long done = 0;
    for (int i = 0; i < conc; i++) {
        if (async_await(fs[i]) != 0) fail_errno(wl);
        done += chains[i].done;
    }
    double ms = ms_since(t0);
    if (done != ops_total) {
        fprintf(stderr, "asyncstd-peer: %s: %ld ops done, want %ld\n", wl, done, ops_total);
        exit(1);
    }
    printf("RESULT %s " IMPL " ops_per_s=%.0f ops=%ld c=%d threads=%u\n", wl, ops_total * 1e3 / ms,
           ops_total, conc, nthreads);
    free(chains);
    free(fs);
}

void peer_pread(int argc, char **argv, unsigned nthreads) {
    const char *path = argc > 0 ? argv[0] : "/tmp/peerdata/big.bin";
    int conc = (int)param(argc, argv, 1, 64);
    ops_total = param(argc, argv, 2, 200000);
    pr_fd = (int)async_await(async_open(path, O_RDONLY | O_CLOEXEC));
    if (pr_fd < 0) fail_errno(path);
    struct stat st;
    if (async_await(async_fstat(pr_fd, &st)) != 0) fail_errno("async_fstat");
    pr_blocks = (uint64_t)st.st_size / 4096;
    if (pr_blocks == 0) {
        fprintf(stderr, "asyncstd-peer: pread: file too small\n");
        exit(1);
    }
    run_tasks("pread", conc, pread_task, nthreads);
    (void)async_await(async_close(pr_fd));
}

void peer_stat(int argc, char **argv, unsigned nthreads) {
    const char *dir = argc > 0 ? argv[0] : "/tmp/peerdata/many";
    int conc = (int)param(argc, argv, 1, 64);
    ops_total = param(argc, argv, 2, 200000);
    DIR *d = opendir(dir);
    if (!d) fail_errno(dir);
    struct dirent *e;
    long cap = 1024;
    paths = malloc((size_t)cap * sizeof *paths);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (npaths == cap) paths = realloc(paths, (size_t)(cap *= 2) * sizeof *paths);
        if (!paths || asprintf(&paths[npaths++], "%s/%s", dir, e->d_name) < 0)
            fail_errno("asprintf");
    }
    closedir(d);
    if (npaths == 0) {
        fprintf(stderr, "asyncstd-peer: stat: empty dir\n");
        exit(1);
    }
    run_tasks("stat", conc, stat_task, nthreads);
    for (long i = 0; i < npaths; i++) free(paths[i]);
    free(paths);
}
