/* Reading the test's own stderr, where the library writes its reports (stall
 * reports, dumps on a signal, warnings about settings): capture_start() puts
 * a pipe on fd 2, capture_drain() reads what has come into `cap.buf` without
 * blocking (a test that spins or waits calls it as it goes), and
 * capture_end() puts stderr back and copies what was captured there, for the
 * test log. One capture at a time. */
#ifndef ASYNCSTD_TESTS_CAPTURE_HELPERS_H
#define ASYNCSTD_TESTS_CAPTURE_HELPERS_H

#include "helpers.h"

#include <fcntl.h>

static struct capture {
    int saved_fd; /* the real stderr */
    int rfd;
    char buf[1 << 18];
    size_t len;
} cap;

static inline void capture_start(void) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    fflush(stderr);
    cap.saved_fd = dup(2);
    cr_assert_geq(cap.saved_fd, 0);
    cr_assert_eq(dup2(p[1], 2), 2);
    close(p[1]);
    cap.rfd = p[0];
    fcntl(cap.rfd, F_SETFL, O_NONBLOCK);
    cap.len = 0;
    cap.buf[0] = '\0';
}

static inline void capture_drain(void) {
    for (;;) {
        if (cap.len >= sizeof cap.buf - 1) return;
        ssize_t n = read(cap.rfd, cap.buf + cap.len, sizeof cap.buf - 1 - cap.len);
        if (n <= 0) return;
        cap.len += (size_t)n;
        cap.buf[cap.len] = '\0';
    }
}

/* Drains until `needle` has come or `ms` pass; gives whether it came. */
static inline bool capture_wait_for(const char *needle, double ms) {
    return WAIT_UNTIL((capture_drain(), strstr(cap.buf, needle) != NULL), ms);
}

/* How many times `needle` is in what was captured. */
static inline int capture_count(const char *needle) {
    int n = 0;
    for (const char *p = cap.buf; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* Puts stderr back, and shows what was captured there (for the test log). */
static inline void capture_end(void) {
    fflush(stderr);
    dup2(cap.saved_fd, 2);
    close(cap.saved_fd);
    capture_drain();
    close(cap.rfd);
    fprintf(stderr, "---- captured stderr ----\n%s---- end ----\n", cap.buf);
}

#endif
