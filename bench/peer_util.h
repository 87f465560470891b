/* Helpers every workload file of asyncstd-peer uses (peer.c, peer_fs.c). */
#ifndef ASYNCSTD_BENCH_PEER_UTIL_H
#define ASYNCSTD_BENCH_PEER_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline void fail(const char *what) {
    fprintf(stderr, "asyncstd-peer: %s\n", what);
    exit(1);
}

static inline void fail_errno(const char *what) {
    fprintf(stderr, "asyncstd-peer: %s: %s\n", what, strerror(errno));
    exit(1);
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline double ms_since(uint64_t t0) { return (double)(now_ns() - t0) / 1e6; }

/* argv[i] as a positive number, or `def` when absent; exits 2 on anything else. */
static inline long param(int argc, char **argv, int i, long def) {
    if (i >= argc) return def;
    char *end;
    long v = strtol(argv[i], &end, 10);
    if (*end || v <= 0) {
        fprintf(stderr, "asyncstd-peer: bad parameter %d: %s\n", i, argv[i]);
        exit(2);
    }
    return v;
}

#endif
