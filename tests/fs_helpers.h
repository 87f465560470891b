/* Helpers shared by the fs suites: a scratch directory per test, and a check
 * that an async call gives what the libc call gives. */
#ifndef ASYNCSTD_TESTS_FS_HELPERS_H
#define ASYNCSTD_TESTS_FS_HELPERS_H

#include "helpers.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>

static char scratch[256];

/* Bad arguments the compiler must not see through (it warns about them). */
static void *volatile null_ptr = NULL;
static volatile int neg_one = -1;
static volatile int huge_cnt = 100000;

/* A path inside the scratch directory, in one of a few rotating buffers. */
static inline const char *P(const char *name) {
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 512, "%s/%s", scratch, name);
    return b;
}

static inline void scratch_make(void) {
    snprintf(scratch, sizeof scratch, "/tmp/asyncstd-fs-test.XXXXXX");
    cr_assert_not_null(mkdtemp(scratch), "mkdtemp: %s", strerror(errno));
    chmod(scratch, 0755); /* some tests drop to an unprivileged euid */
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static inline void scratch_remove(void) {
    if (scratch[0]) nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A file with `len` bytes of a known pattern; returns the path. */
static inline const char *make_file(const char *name, size_t len) {
    const char *p = P(name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(fd >= 0);
    char *data = malloc(len + 1);
    for (size_t i = 0; i < len; i++) data[i] = (char)('a' + i % 26);
    cr_assert_eq(write(fd, data, len), (ssize_t)len);
    free(data);
    close(fd);
    return p;
}

/* ---- a pool held busy -------------------------------------------------------------------
 * A runtime whose pool has two threads, both held in open(2) of a FIFO with
 * no writer, so that the next file operation waits in the queue (to cancel
 * it there, or to see that a call needs no pool thread at all). */

static inline void small_pool_init(void) {
    async_config_t c = {.pool_threads = 2, .pool_reserved = 1};
    cr_assert_eq(async_runtime_init(&c), 0, "init: %s", strerror(errno));
}

typedef struct held_pool {
    char fifo[512]; /* its own copy: P()'s rotating buffers may still be in the caller's use */
    async_future_t *opens[2];
} held_pool_t;

static inline void pool_hold(held_pool_t *h) {
    snprintf(h->fifo, sizeof h->fifo, "%s/fifo", scratch);
    if (mkfifo(h->fifo, 0600) != 0) cr_assert_eq(errno, EEXIST);
    h->opens[0] = async_open(h->fifo, O_RDONLY);
    h->opens[1] = async_open(h->fifo, O_RDONLY);
    sleep_ms(50);
    cr_assert(!async_future_settled(h->opens[0]) && !async_future_settled(h->opens[1]),
              "the open of a FIFO waits for a writer, on the pool");
}

static inline void pool_release(held_pool_t *h) {
    int w = open(h->fifo, O_WRONLY);
    cr_assert_geq(w, 0);
    for (int i = 0; i < 2; i++) {
        int fd = (int)async_await(h->opens[i]);
        cr_assert_geq(fd, 0);
        close(fd);
    }
    close(w);
}

static inline void fs_init(void) {
    scratch_make();
    rt_start();
}

static inline void fs_fini(void) { scratch_remove(); }

/* The async call must give the libc call's value and errno. */
#define SAME(libc_expr, async_expr)                                                      \
    do {                                                                                 \
        errno = 0;                                                                       \
        intmax_t a_ = (intmax_t)(libc_expr);                                             \
        int ea_ = errno;                                                                 \
        errno = 0;                                                                       \
        intmax_t b_ = (intmax_t)async_await(async_expr);                                 \
        int eb_ = errno;                                                                 \
        cr_assert(a_ == b_ && (a_ != -1 || ea_ == eb_), "%s: libc %jd/%s, async %jd/%s", \
                  #async_expr, a_, ename(ea_), b_, ename(eb_));                          \
    } while (0)

/* SAME() for a call handed a bad buffer on purpose: valgrind would report the
 * kernel's EFAULT check as an error. Both calls run on this thread (the bad
 * pointer is refused before any hop), where reporting is switched off. */
#define SAME_BAD(libc_expr, async_expr) \
    do {                                \
        QUIET_BEGIN();                  \
        SAME(libc_expr, async_expr);    \
        QUIET_END();                    \
    } while (0)

#endif
