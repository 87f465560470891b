/* The frame the plain-C stress programs share (stress.c, stress_io.c,
 * stress_sync.c, stress_net.c): a CHECK that counts failures instead of
 * aborting, the SCALE argument that divides iteration counts, and a main loop
 * that runs named scenarios and prints one line each.
 *
 * These programs exist because Criterion's runner cannot start under
 * ThreadSanitizer (its boxfort arena collides with TSan's memory layout): CI
 * runs them in its TSan build, and every other build runs them as ordinary
 * tests. Usage of each program:
 *
 *   PROGRAM [SCALE]   SCALE divides the iteration counts (default 1; at least 10
 *                     under valgrind, which is some 50 times slower)
 *   STRESS_ONLY=NAME  runs one scenario, for debugging
 *
 * Prints "ok"/"FAIL" per scenario, then "N passed, M failed"; exits non-zero
 * when any check failed. */
#ifndef ASYNC_TESTS_STRESS_H
#define ASYNC_TESTS_STRESS_H

#include <asyncstd/asyncstd.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

static int scale = 1;
static atomic_int failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            atomic_fetch_add(&failures, 1);                                          \
        }                                                                            \
    } while (0)

typedef struct {
    const char *name;
    void (*fn)(void);
} stress_scenario_t;

enum {
    STRESS_SHARED_RUNTIME = 0, /* one runtime for every scenario (a scenario may shut it down) */
    STRESS_FRESH_RUNTIME = 1,  /* init before each scenario, shut down (checked) after it */
};

static inline int stress_main(int argc, char **argv, const stress_scenario_t *s, size_t n,
                              int mode) {
    if (argc > 1) scale = atoi(argv[1]) > 0 ? atoi(argv[1]) : 1;
    if (RUNNING_ON_VALGRIND && scale < 10) scale = 10;
    const char *only = getenv("STRESS_ONLY");
    if (mode == STRESS_SHARED_RUNTIME && async_runtime_init(NULL) != 0) {
        perror("async_runtime_init");
        return 2;
    }
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (only && strcmp(only, s[i].name) != 0) continue;
        if (mode == STRESS_FRESH_RUNTIME && async_runtime_init(NULL) != 0) {
            perror("async_runtime_init");
            return 2;
        }
        int workers = async_worker_count(); /* before the scenario: it may shut down */
        int before = atomic_load(&failures);
        s[i].fn();
        if (mode == STRESS_FRESH_RUNTIME) CHECK(async_runtime_shutdown() == 0);
        bool bad = atomic_load(&failures) != before;
        failed += bad;
        passed += !bad;
        printf("%s %s (%d workers)\n", bad ? "FAIL" : "ok  ", s[i].name, workers);
        fflush(stdout);
    }
    if (mode == STRESS_SHARED_RUNTIME && async_runtime_shutdown() != 0 && errno != EINVAL) {
        perror("async_runtime_shutdown");
        failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#endif
