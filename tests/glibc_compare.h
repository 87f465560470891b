/* Helpers of the *_glibc suites, which run a glibc call and its async twin on
 * the same inputs (bad ones included) and require the same result and errno.
 * Each table of cases runs twice: on the test's own thread (a plain thread,
 * not a worker) and inside a task, because the calls take different paths
 * there. The checks are CHECK*() ones, valid on both. */
#ifndef ASYNCSTD_TESTS_GLIBC_COMPARE_H
#define ASYNCSTD_TESTS_GLIBC_COMPARE_H

#include "helpers.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#define VALGRIND_DISABLE_ERROR_REPORTING ((void)0)
#define VALGRIND_ENABLE_ERROR_REPORTING ((void)0)
#endif

/* Rows valgrind answers itself, before the kernel and in another order
 * (unknown fcntl commands are EINVAL before a bad fd's EBADF; a NULL poll
 * array is EFAULT before a huge count's EINVAL, and a huge one is walked):
 * there the comparison would be with valgrind, so they run without it only
 * (the plain and ASan runs). */
#define KERNEL_ONLY (!RUNNING_ON_VALGRIND)

/* Where the cases run now: "thread" or "task", for the failure messages. */
static const char *compare_where = "thread";

/* An int-valued glibc call and the async twin's value `aval` (its text
 * `what`, for the message): the same value, and the same errno when the value
 * is -1. SAME awaits the twin's future; SAME_NOW takes a twin that answers at
 * once (an int, no future). */
#define SAME_VALUE_(gexpr, aval, what)                                                  \
    do {                                                                                \
        errno = 0;                                                                      \
        intmax_t g_ = (intmax_t)(gexpr);                                                \
        int ge_ = errno;                                                                \
        errno = 0;                                                                      \
        intmax_t a_ = (intmax_t)(aval);                                                 \
        int ae_ = errno;                                                                \
        if (g_ != a_ || (g_ == -1 && ge_ != ae_))                                       \
            check_fail(__FILE__, __LINE__, "%s [%s]: glibc %jd/%s, async %jd/%s", what, \
                       compare_where, g_, ename(ge_), a_, ename(ae_));                  \
    } while (0)
#define SAME(gexpr, aexpr) SAME_VALUE_(gexpr, async_await(aexpr), #aexpr)
#define SAME_NOW(gexpr, aexpr) SAME_VALUE_(gexpr, aexpr, #aexpr)

/* As SAME, for a row that hands glibc a bad pointer on purpose, which
 * valgrind would report as the test's error. */
#define SAME_BADPTR(gexpr, aexpr)         \
    do {                                  \
        VALGRIND_DISABLE_ERROR_REPORTING; \
        SAME(gexpr, aexpr);               \
        VALGRIND_ENABLE_ERROR_REPORTING;  \
    } while (0)

/* As SAME and SAME_NOW, for glibc calls that return an error number
 * (posix_spawn, sigwait, the pthread calls): 0, or the error the async twin
 * must give as -1 and errno. */
#define SAME_ERRNUM_VALUE_(gexpr, aval, what)                                                      \
    do {                                                                                           \
        int g_ = (gexpr);                                                                          \
        errno = 0;                                                                                 \
        intmax_t a_ = (intmax_t)(aval);                                                            \
        int ae_ = errno;                                                                           \
        if (g_ ? (a_ != -1 || ae_ != g_) : a_ != 0)                                                \
            check_fail(__FILE__, __LINE__, "%s [%s]: glibc %s, async %jd/%s", what, compare_where, \
                       ename(g_), a_, ename(ae_));                                                 \
    } while (0)
#define SAME_ERRNUM(gexpr, aexpr) SAME_ERRNUM_VALUE_(gexpr, async_await(aexpr), #aexpr)
#define SAME_ERRNUM_NOW(gexpr, aexpr) SAME_ERRNUM_VALUE_(gexpr, aexpr, #aexpr)

/* Each of the n futures is still pending (it waits for something that never
 * comes); each is then cancelled and must end with -1/ECANCELED. */
static inline void cancel_all_pending(async_future_t **fs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        CHECK(fs[i] && !async_future_settled(fs[i]));
        async_cancel(fs[i]);
        errno = 0;
        CHECK_EQ(async_await(fs[i]), -1);
        CHECK_EQ(errno, ECANCELED);
    }
}

static intptr_t compare_in_task(void *arg) {
    void (**fn)(void) = arg;
    (*fn)();
    return 0;
}

/* Runs the cases on this (plain) thread, then in a task. */
static inline void both_contexts(void (*fn)(void)) {
    compare_where = "thread";
    fn();
    compare_where = "task";
    cr_assert_eq(async_await(async_spawn(compare_in_task, &fn)), 0);
    compare_where = "thread";
    checks_ok();
}

#endif
