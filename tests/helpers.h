/* Helpers shared by the asyncstd Criterion tests: starting and stopping the
 * runtime, checks that are safe inside tasks and foreign threads, and clocks.
 *
 * cr_assert() must only run on the test's own thread: on failure it longjmps
 * back into Criterion's runner, which from a worker thread or a fiber stack
 * would be undefined behaviour. Code running in tasks, pool jobs, callbacks
 * and threads of our own therefore uses CHECK*(), which prints and counts the
 * failure; rt_stop() (called at the end of every test) then fails the test. */
#ifndef ASYNCSTD_TESTS_HELPERS_H
#define ASYNCSTD_TESTS_HELPERS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <asyncstd/asyncstd.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TESTS_HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TESTS_HAVE_LSAN 1
#endif
#endif
#ifdef TESTS_HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* ---- checks usable from any thread ------------------------------------- */

static atomic_int check_failures;

/* errno's symbolic name ("ECANCELED"), or its number when it has none. */
static inline const char *ename(int e) {
    static __thread char buf[16];
    const char *n = e ? strerrorname_np(e) : "0";
    if (n) return n;
    snprintf(buf, sizeof buf, "%d", e);
    return buf;
}

static inline void __attribute__((format(printf, 3, 4)))
check_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    atomic_fetch_add(&check_failures, 1);
    flockfile(stderr);
    fprintf(stderr, "%s:%d: check failed: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    funlockfile(stderr);
}

#define CHECK(cond)                                               \
    do {                                                          \
        if (!(cond)) check_fail(__FILE__, __LINE__, "%s", #cond); \
    } while (0)

#define CHECK_EQ(a, b)                                                                         \
    do {                                                                                       \
        intmax_t a_ = (intmax_t)(a), b_ = (intmax_t)(b);                                       \
        if (a_ != b_) check_fail(__FILE__, __LINE__, "%s == %s (%jd vs %jd)", #a, #b, a_, b_); \
    } while (0)

/* `expr` must give -1 with errno `err`. */
#define CHECK_ERR(expr, err)                                                                    \
    do {                                                                                        \
        errno = 0;                                                                              \
        intmax_t r_ = (intmax_t)(expr);                                                         \
        int e_ = errno;                                                                         \
        if (r_ != -1 || e_ != (err))                                                            \
            check_fail(__FILE__, __LINE__, "%s: expected -1/%s, got %jd/%s", #expr, ename(err), \
                       r_, ename(e_));                                                          \
    } while (0)

/* ---- assertions on the test's own thread --------------------------------- */

/* `expr` must give -1 with errno `err`. */
#define ASSERT_ERR(expr, err)                                                                   \
    do {                                                                                        \
        errno = 0;                                                                              \
        intmax_t r_ = (intmax_t)(expr);                                                         \
        int e_ = errno;                                                                         \
        cr_assert(r_ == -1 && e_ == (err), "%s: expected -1/%s, got %jd/%s", #expr, ename(err), \
                  r_, ename(e_));                                                               \
    } while (0)

/* `expr` (a pointer) must give NULL with errno `err`. */
#define ASSERT_NULL_ERR(expr, err)                                                                 \
    do {                                                                                           \
        errno = 0;                                                                                 \
        void *p_ = (void *)(expr);                                                                 \
        int e_ = errno;                                                                            \
        cr_assert(p_ == NULL && e_ == (err), "%s: expected NULL/%s, got %p/%s", #expr, ename(err), \
                  p_, ename(e_));                                                                  \
    } while (0)

/* `expr` must succeed with value `val`. */
#define ASSERT_VAL(expr, val)                                                           \
    do {                                                                                \
        errno = 0;                                                                      \
        intmax_t r_ = (intmax_t)(expr);                                                 \
        int e_ = errno;                                                                 \
        cr_assert(r_ == (intmax_t)(val), "%s: expected %jd, got %jd (errno %s)", #expr, \
                  (intmax_t)(val), r_, ename(e_));                                      \
    } while (0)

/* ---- runtime ------------------------------------------------------------- */

/* Starts the runtime from the environment (ASYNCSTD_THREADS etc.). */
static inline void rt_start(void) {
    int r = async_runtime_init(NULL);
    cr_assert_eq(r, 0, "async_runtime_init: %s", ename(errno));
}

/* No check may have failed in a task or thread, and (under ASan) nothing may
 * have leaked. Leaks found at a test process's exit would not fail the test,
 * because Criterion has already recorded the result by then: check now. */
static inline void checks_ok(void) {
    cr_assert_eq(atomic_load(&check_failures), 0,
                 "%d check(s) failed in tasks/threads (see stderr)", atomic_load(&check_failures));
#ifdef TESTS_HAVE_LSAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked (see stderr)");
#endif
}

/* Ends every test: the runtime must shut down cleanly, then checks_ok(). */
static inline void rt_stop(void) {
    int r = async_runtime_shutdown();
    int e = errno;
    cr_assert_eq(r, 0, "async_runtime_shutdown: %d/%s", r, ename(e));
    checks_ok();
}

/* ASYNCSTD_THREADS as a number, or 0 when unset. */
static inline unsigned env_threads(void) {
    const char *s = getenv("ASYNCSTD_THREADS");
    return s ? (unsigned)strtoul(s, NULL, 10) : 0;
}

/* ---- time ---------------------------------------------------------------- */

static inline double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Blocks the calling OS thread (never use it inside a task). */
static inline void sleep_ms(double ms) {
    struct timespec ts = {(time_t)(ms / 1e3), (long)((ms - (time_t)(ms / 1e3) * 1e3) * 1e6)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* Polls `cond` on a plain thread until it holds or `ms` pass; gives whether it held. */
#define WAIT_UNTIL(cond, ms)                                  \
    __extension__({                                           \
        double d_ = now_ms() + (ms);                          \
        bool ok_;                                             \
        while (!(ok_ = (cond)) && now_ms() < d_) sleep_ms(1); \
        ok_;                                                  \
    })

/* The same inside a task: sleeps with async_usleep between polls. */
#define TASK_WAIT_UNTIL(cond, ms)                                                       \
    __extension__({                                                                     \
        double d_ = now_ms() + (ms);                                                    \
        bool ok_;                                                                       \
        while (!(ok_ = (cond)) && now_ms() < d_) (void)async_await(async_usleep(1000)); \
        ok_;                                                                            \
    })

/* ---- small conveniences --------------------------------------------------- */

static inline async_future_t *spawn_on(async_task_fn fn, void *arg, unsigned worker) {
    async_spawn_opts_t o = {0};
    o.worker = worker;
    return async_spawn_opts(fn, arg, &o);
}

/* A user future that is already resolved with `v`. */
static inline async_future_t *resolved(intptr_t v) {
    async_future_t *f = async_future_new();
    cr_assert_not_null(f);
    cr_assert_eq(async_future_resolve(f, v), 0);
    return f;
}

/* async_dump() as a string (free it), or NULL with errno. */
static inline char *dump_string(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    int r = async_dump(f);
    int e = errno;
    fclose(f);
    if (r != 0) {
        free(buf);
        errno = e;
        return NULL;
    }
    return buf;
}

/* Runs fn(arg) on a new pthread; join it with pthread_join. */
static inline pthread_t thread_start(void *(*fn)(void *), void *arg) {
    pthread_t t;
    int r = pthread_create(&t, NULL, fn, arg);
    cr_assert_eq(r, 0, "pthread_create: %s", strerror(r));
    return t;
}

/* Forks a child that exits with `code` (through /bin/sh, which valgrind does
 * not trace). A forked child of the threaded test that just called _exit()
 * would be leak-checked under valgrind, which then finds lost what only the
 * parent's other threads pointed to, and exits 99 instead. */
static inline pid_t fork_exit(int code) {
    char cmd[32];
    snprintf(cmd, sizeof cmd, "exit %d", code);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    cr_assert_gt(pid, 0, "fork: %s", strerror(errno));
    return pid;
}

/* Around a call handed a bad pointer on purpose, which the library passes on
 * to the kernel as glibc would: valgrind would report the kernel's EFAULT
 * check as the test's error. Reporting is switched off on this thread only,
 * so the call must make its system call here (bad input is refused inline). */
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define QUIET_BEGIN() VALGRIND_DISABLE_ERROR_REPORTING
#define QUIET_END() VALGRIND_ENABLE_ERROR_REPORTING
#else
#define QUIET_BEGIN() ((void)0)
#define QUIET_END() ((void)0)
#endif
#define QUIETLY(stmt)  \
    do {               \
        QUIET_BEGIN(); \
        stmt;          \
        QUIET_END();   \
    } while (0)

#endif
