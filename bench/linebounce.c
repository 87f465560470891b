/* asyncstd-linebounce: what one cache line costs to move between two CPUs,
 * the floor under any hand-off between workers (docs/design.md, "Numbers").
 * Two threads pinned to CPUs 0 and 1 take turns incrementing one counter;
 * each turn moves the line once. Prints ns per one-way transfer.
 *
 *   asyncstd-linebounce [TURNS]   (default 2,000,000) */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Alignas(64) atomic_long turn;
static long turns;

static int pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* Waits for the counter to reach `from` (its parity says whose turn it is),
 * then passes the turn on. */
static void play(long from) {
    for (long i = from; i < turns; i += 2) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != i) {
        }
        atomic_store_explicit(&turn, i + 1, memory_order_release);
    }
}

static void *second(void *arg) {
    (void)arg;
    if (pin(1) != 0) {
        fprintf(stderr, "asyncstd-linebounce: cannot pin to CPU 1\n");
        exit(1);
    }
    play(1);
    return NULL;
}

int main(int argc, char **argv) {
    turns = argc > 1 && atol(argv[1]) > 0 ? atol(argv[1]) : 2000000;
    if (pin(0) != 0) {
        fprintf(stderr, "asyncstd-linebounce: cannot pin to CPU 0\n");
        return 1;
    }
    pthread_t th;
    if (pthread_create(&th, NULL, second, NULL) != 0) return 1;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    play(0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    pthread_join(th, NULL);
    double ns = (double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec);
    printf("RESULT linebounce ns_per_transfer=%.1f turns=%ld\n", ns / (double)turns, turns);
    return 0;
}
