/* async_poll and async_fd_wait against glibc's poll on the same fds: nfds 0,
 * negative fds (ignored), closed fds (POLLNVAL), events 0, hung-up and broken
 * pipes, regular files, NULL arrays, negative and huge timeouts, and an fd
 * that becomes ready during the wait; from a plain thread and from a task.
 * Each table entry is polled by glibc and by asyncstd on copies of the same
 * array: the count and every revents must agree. */
#include "glibc_compare.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

/* NULL arrays are among the inputs compared, on purpose */
#pragma GCC diagnostic ignored "-Wnonnull"
#pragma GCC diagnostic ignored "-Wstringop-overflow"

TestSuite(poll_glibc, .init = rt_start, .fini = rt_stop, .timeout = 60);

/* The fds the table refers to, made afresh for each context. */
enum { EMPTY_R, EMPTY_W, FULL_R, HUNG_R, BROKEN_W, FILE_FD, SOCK_A, CLOSED, NFDS };
static int fds[NFDS];

static void make_fds(void) {
    int p[2];
    CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    fds[EMPTY_R] = p[0];
    fds[EMPTY_W] = p[1];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    CHECK_EQ(write(p[1], "x", 1), 1);
    fds[FULL_R] = p[0];
    fds[HUNG_R] = p[0]; /* replaced below */
    close(p[1]);        /* FULL_R: data and a hang-up */
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    fds[HUNG_R] = p[0];
    close(p[1]);
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    fds[BROKEN_W] = p[1];
    close(p[0]);
    fds[FILE_FD] = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    CHECK(fds[FILE_FD] >= 0);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(shutdown(sv[1], SHUT_WR), 0); /* SOCK_A sees POLLRDHUP */
    fds[SOCK_A] = sv[0];
    close(sv[1]);
    fds[CLOSED] = dup(0);
    close(fds[CLOSED]);
}

static void close_fds(void) {
    for (int i = 0; i < NFDS; i++)
        if (i != CLOSED) close(fds[i]);
}

#define ALL (POLLIN | POLLOUT | POLLPRI | POLLRDHUP | POLLRDNORM | POLLWRNORM)
#define MAXE 4

typedef struct pcase {
    int n;
    struct {
        int which; /* an fd of fds[], or -1 for a negative fd */
        short events;
    } e[MAXE];
} pcase_t;

static const pcase_t cases[] = {
    {0, {{0, 0}}},
    {1, {{EMPTY_R, POLLIN}}},
    {1, {{EMPTY_W, POLLOUT}}},
    {1, {{EMPTY_W, 0}}},
    {1, {{FULL_R, POLLIN}}},
    {1, {{FULL_R, 0}}}, /* POLLHUP comes unasked */
    {1, {{HUNG_R, POLLIN}}},
    {1, {{HUNG_R, POLLOUT}}},
    {1, {{BROKEN_W, POLLOUT}}}, /* POLLERR */
    {1, {{BROKEN_W, 0}}},
    {1, {{FILE_FD, ALL}}},
    {1, {{FILE_FD, POLLPRI}}},
    {1, {{SOCK_A, ALL}}},
    {1, {{SOCK_A, POLLRDHUP}}},
    {1, {{CLOSED, POLLIN}}}, /* POLLNVAL */
    {1, {{CLOSED, 0}}},
    {1, {{-1, POLLIN}}}, /* ignored: revents 0 */
    {2, {{-1, POLLIN}, {FULL_R, POLLIN}}},
    {3, {{EMPTY_R, POLLIN}, {-1, ALL}, {CLOSED, POLLOUT}}},
    {4, {{EMPTY_R, POLLIN}, {EMPTY_W, POLLOUT}, {HUNG_R, POLLIN}, {SOCK_A, POLLIN}}},
    {2, {{EMPTY_R, POLLIN}, {EMPTY_R, POLLIN}}}, /* the same fd twice */
};

/* Polls case `c` with glibc and asyncstd, `timeout` ms: the same count and revents. */
static void compare(const pcase_t *c, int timeout, int index) {
    struct pollfd g[MAXE], a[MAXE];
    for (int i = 0; i < c->n; i++) {
        int fd = c->e[i].which < 0 ? -7 : fds[c->e[i].which];
        g[i] = a[i] = (struct pollfd){.fd = fd, .events = c->e[i].events, .revents = 0x5a5a};
    }
    errno = 0;
    int gn = poll(c->n ? g : NULL, (nfds_t)c->n, timeout);
    int ge = errno;
    errno = 0;
    int an = (int)async_await(async_poll(c->n ? a : NULL, (nfds_t)c->n, timeout));
    int ae = errno;
    if (gn != an || (gn < 0 && ge != ae))
        check_fail(__FILE__, __LINE__, "case %d timeout %d [%s]: glibc %d/%s, async %d/%s", index,
                   timeout, compare_where, gn, ename(ge), an, ename(ae));
    for (int i = 0; i < c->n; i++)
        if (g[i].revents != a[i].revents)
            check_fail(__FILE__, __LINE__, "case %d entry %d timeout %d [%s]: revents %#x vs %#x",
                       index, i, timeout, compare_where, (unsigned)g[i].revents,
                       (unsigned)a[i].revents);
    /* and async_fd_wait on each entry alone, against poll of that one */
    for (int i = 0; i < c->n && timeout == 0; i++) {
        if (g[i].fd < 0) continue;
        struct pollfd one = {.fd = g[i].fd, .events = g[i].events};
        int n1 = poll(&one, 1, 0);
        intptr_t w = async_await(async_fd_wait(one.fd, one.events, 0));
        CHECK_EQ(w, n1 > 0 ? one.revents : 0);
    }
}

static void table(void) {
    make_fds();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        compare(&cases[i], 0, (int)i);
        compare(&cases[i], 15, (int)i); /* the ones with nothing ready time out */
    }
    /* a negative timeout other than -1 waits without limit too: ready ones return */
    compare(&cases[4], -5, 4);
    compare(&cases[4], INT_MIN, 4);
    compare(&cases[14], -1, 14);
    compare(&cases[4], INT_MAX, 4);
    close_fds();
}

Test(poll_glibc, table) { both_contexts(table); }

static void bad_arrays(void) {
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    SAME_BADPTR(poll(NULL, 1, 0), async_poll(NULL, 1, 0));
    SAME_BADPTR(poll(NULL, 1, 10), async_poll(NULL, 1, 10));
    if (KERNEL_ONLY) {
        SAME(poll(NULL, (nfds_t)rl.rlim_cur + 1, 0), async_poll(NULL, (nfds_t)rl.rlim_cur + 1, 0));
        SAME(poll(NULL, (nfds_t)-1, 0), async_poll(NULL, (nfds_t)-1, 0));
    }
    SAME(poll(NULL, 0, 0), async_poll(NULL, 0, 0));
    struct pollfd p = {.fd = -1, .events = POLLIN};
    SAME(poll(&p, 1, 0), async_poll(&p, 1, 0));
    CHECK_EQ(p.revents, 0);
    /* nfds 0 with a timeout is a sleep of at least that long */
    double t0 = now_ms();
    SAME(poll(NULL, 0, 20), async_poll(NULL, 0, 20));
    CHECK(now_ms() - t0 >= 39);
}

Test(poll_glibc, bad_arrays) { both_contexts(bad_arrays); }

/* poll(NULL, 0, -1) waits for ever (for a signal, which asyncstd's wait does
 * not take): the future is still pending after a while, and is cancelled. */
static void waits_for_ever(void) {
    struct pollfd p = {.fd = -1, .events = POLLIN};
    async_future_t *fs[2] = {async_poll(NULL, 0, -1), async_poll(&p, 1, -1)};
    (void)async_await(async_usleep(50000));
    cancel_all_pending(fs, 2);
}

Test(poll_glibc, nothing_to_wait_for_waits_for_ever) { both_contexts(waits_for_ever); }

/* Ready during the wait: a thread writes after 20 ms; both see the same revents. */
static void *write_later(void *arg) {
    sleep_ms(20);
    CHECK_EQ(write(*(int *)arg, "y", 1), 1);
    return NULL;
}

static void ready_later(void) {
    for (int round = 0; round < 2; round++) {
        int p[2];
        CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
        struct pollfd g[2] = {{.fd = p[0], .events = POLLIN}, {.fd = -1}},
                      a[2] = {{.fd = p[0], .events = POLLIN}, {.fd = -1}};
        pthread_t t;
        pthread_create(&t, NULL, write_later, &p[1]);
        int gn = round == 0 ? poll(g, 2, 5000) : 0;
        pthread_join(t, NULL);
        char c;
        CHECK_EQ(read(p[0], &c, 1), 1); /* the first byte: the pipe is empty again */
        pthread_create(&t, NULL, write_later, &p[1]);
        int an = round == 0 ? (int)async_await(async_poll(a, 2, 5000))
                            : (int)async_await(async_fd_wait(p[0], POLLIN, 5000));
        pthread_join(t, NULL);
        if (round == 0) {
            CHECK_EQ(gn, an);
            CHECK_EQ(g[0].revents, a[0].revents);
            CHECK_EQ(a[1].revents, 0);
        } else {
            CHECK_EQ(an, POLLIN);
        }
        close(p[0]);
        close(p[1]);
    }
}

Test(poll_glibc, ready_during_the_wait) { both_contexts(ready_later); }

/* async_fd_wait's documented deviation: a negative fd is EBADF, where poll
 * would ignore the entry (and wait for nothing). */
static void fd_wait_negative(void) {
    CHECK_ERR(async_await(async_fd_wait(-1, POLLIN, 0)), EBADF);
    CHECK_ERR(async_await(async_fd_wait(-1, POLLIN, -1)), EBADF);
}

Test(poll_glibc, fd_wait_negative_fd) { both_contexts(fd_wait_negative); }

/* ---- select ------------------------------------------------------------------------- */

/* A select row: which of fds[] go in each set (a bit per fds[] index), nfds
 * past the highest or cut short, and the timeout (tv_usec -1: NULL). */
typedef struct scase {
    unsigned sets[3];
    int nfds_delta; /* nfds = highest fd + 1 + this; INT_MIN: nfds is -1 */
    struct timeval timeout;
} scase_t;

#define BIT(i) (1u << (i))
#define TV_NULL \
    { 0, -1 }

static const scase_t scases[] = {
    {{0, 0, 0}, 0, {0, 0}},
    {{BIT(EMPTY_R), 0, 0}, 0, {0, 0}},
    {{BIT(EMPTY_R), 0, 0}, 0, {0, 15000}}, /* times out: the sets come back empty */
    {{0, BIT(EMPTY_W), 0}, 0, {0, 0}},
    {{BIT(FULL_R), BIT(FULL_R), BIT(FULL_R)}, 0, {0, 15000}},
    {{BIT(HUNG_R), 0, BIT(HUNG_R)}, 0, TV_NULL},
    {{0, BIT(BROKEN_W), 0}, 0, TV_NULL}, /* an error: writable */
    {{BIT(BROKEN_W), 0, 0}, 0, {0, 0}},
    {{BIT(FILE_FD), BIT(FILE_FD), BIT(FILE_FD)}, 0, {0, 0}},
    {{BIT(SOCK_A), BIT(SOCK_A), BIT(SOCK_A)}, 0, {0, 0}},
    {{0, 0, BIT(SOCK_A)}, 0, {0, 15000}},
    {{BIT(EMPTY_R) | BIT(FULL_R) | BIT(HUNG_R), BIT(EMPTY_W) | BIT(BROKEN_W), BIT(EMPTY_R)},
     0,
     {1, 0}},
    {{BIT(CLOSED), 0, 0}, 0, {0, 0}},                /* EBADF, the sets as given */
    {{BIT(EMPTY_R), 0, BIT(CLOSED)}, 0, {0, 15000}}, /* EBADF before any wait */
    {{BIT(FULL_R), 0, 0}, -1, {0, 15000}},           /* nfds stops short of it: a wait */
    {{BIT(FULL_R), 0, 0}, 100, {0, 0}},              /* past it: unchanged */
    {{BIT(FULL_R), 0, 0}, INT_MIN, {0, 0}},          /* EINVAL */
    {{BIT(CLOSED), 0, 0}, 0, {-1, 0}},               /* the timeout's EINVAL first */
    {{BIT(FULL_R), 0, 0}, 0, {0, -2}},
    {{BIT(FULL_R), 0, 0}, 0, {0, 1000000}},
    {{BIT(FULL_R), 0, 0}, 0, {0, 999999}},
    {{BIT(FULL_R), 0, 0}, 0, {0, 2000000}},  /* whole seconds of tv_usec carried over */
    {{BIT(FULL_R), 0, 0}, 0, {-1, 1000000}}, /* but only after the check: EINVAL */
    {{BIT(FULL_R), 0, 0}, 0, {1, -2}},       /* EINVAL */
    {{BIT(FULL_R), 0, 0}, 0, {LONG_MAX, 999999}},
    {{BIT(FULL_R), 0, 0}, 0, {LONG_MAX, 1000000}},            /* saturates */
    {{BIT(FULL_R), 0, 0}, 0, {0, (long)INT_MAX + 1}},         /* tv_usec as 32 bits: EINVAL */
    {{BIT(EMPTY_R), 0, 0}, 0, {0, (long)UINT32_MAX + 15001}}, /* 15 ms in 32 bits */
    {{0, 0, 0}, 0, {0, 15000}},                               /* nothing to wait for: a sleep */
};

static int sets_of(const scase_t *c, fd_set *s[3], fd_set store[3]) {
    int hi = -1;
    for (int i = 0; i < 3; i++) {
        FD_ZERO(&store[i]);
        s[i] = c->sets[i] || i == 0 ? &store[i] : NULL; /* an empty readfds, a NULL other */
        for (int k = 0; k < NFDS; k++)
            if (c->sets[i] & BIT(k)) {
                FD_SET(fds[k], &store[i]);
                if (fds[k] > hi) hi = fds[k];
            }
    }
    return c->nfds_delta == INT_MIN ? -1 : hi + 1 + c->nfds_delta < 0 ? 0 : hi + 1 + c->nfds_delta;
}

static void compare_select(const scase_t *c, int index) {
    fd_set gstore[3], astore[3], *g[3], *a[3];
    int n = sets_of(c, g, gstore);
    sets_of(c, a, astore);
    bool null_tv = c->timeout.tv_usec == -1;
    struct timeval gtv = c->timeout, atv = c->timeout;
    errno = 0;
    int gn = select(n, g[0], g[1], g[2], null_tv ? NULL : &gtv);
    int ge = errno;
    errno = 0;
    int an = (int)async_await(async_select(n, a[0], a[1], a[2], null_tv ? NULL : &atv));
    int ae = errno;
    if (gn != an || (gn < 0 && ge != ae))
        check_fail(__FILE__, __LINE__, "select case %d [%s]: glibc %d/%s, async %d/%s", index,
                   compare_where, gn, ename(ge), an, ename(ae));
    for (int i = 0; i < 3; i++)
        if (g[i] && memcmp(g[i], a[i], sizeof(fd_set)) != 0)
            check_fail(__FILE__, __LINE__, "select case %d [%s]: set %d differs", index,
                       compare_where, i);
    /* the time left: 0 after a timeout; after an answer at once, within what was asked */
    if (!null_tv && gn >= 0) {
        double gleft = gtv.tv_sec + gtv.tv_usec / 1e6, aleft = atv.tv_sec + atv.tv_usec / 1e6;
        double asked = c->timeout.tv_sec + c->timeout.tv_usec / 1e6;
        if (gn == 0 ? aleft != gleft : (aleft > asked || aleft < asked - 0.5))
            check_fail(__FILE__, __LINE__, "select case %d [%s]: time left %.6f vs glibc %.6f",
                       index, compare_where, aleft, gleft);
    }
}

static void select_table(void) {
    make_fds();
    for (size_t i = 0; i < sizeof scases / sizeof *scases; i++) {
        /* valgrind reads the sets for a negative nfds as a huge one */
        if (scases[i].nfds_delta == INT_MIN && !KERNEL_ONLY) continue;
        compare_select(&scases[i], (int)i);
    }
    close_fds();
}

Test(poll_glibc, select_table) { both_contexts(select_table); }

/* Ready during the wait: the same sets and count as glibc's, and time left. */
static void select_ready_later(void) {
    int p[2];
    CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    fd_set g, a;
    int n[2];
    struct timeval tv[2];
    for (int side = 0; side < 2; side++) {
        fd_set *s = side ? &a : &g;
        FD_ZERO(s);
        FD_SET(p[0], s);
        tv[side] = (struct timeval){5, 0};
        pthread_t t;
        pthread_create(&t, NULL, write_later, &p[1]);
        n[side] = side ? (int)async_await(async_select(p[0] + 1, s, NULL, NULL, &tv[side]))
                       : select(p[0] + 1, s, NULL, NULL, &tv[side]);
        pthread_join(t, NULL);
        char c;
        CHECK_EQ(read(p[0], &c, 1), 1);
    }
    CHECK_EQ(n[0], 1);
    CHECK_EQ(n[1], 1);
    CHECK(FD_ISSET(p[0], &a));
    CHECK(memcmp(&g, &a, sizeof g) == 0);
    CHECK(tv[1].tv_sec >= 1 && tv[1].tv_sec < 5); /* about 20 ms went: less than 5 s left */
    close(p[0]);
    close(p[1]);
}

Test(poll_glibc, select_ready_during_the_wait) { both_contexts(select_ready_later); }
