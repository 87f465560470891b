/* async_poll, async_fd_wait and async_select: poll(2) on the workers'
 * readiness machinery.
 *
 * First poll(fds, nfds, 0) on the calling thread: what is ready costs that one
 * system call. Otherwise the wait is a race (race.c) of probes, one io op per
 * fd and direction asked for, whose attempt is poll(2) of that one fd with no
 * timeout, plus a timer for the timeout. A probe parks with the fd's other ops
 * (io.c re-arms the fd, so readiness that is already there is reported) and
 * consumes nothing, so it shares an fd with the library's own reads and
 * writes, and with other waits. When one wins, the others are ended and a last
 * poll(fds, nfds, 0) fills in every revents, as poll(2) reports all that is
 * ready; if that finds nothing (another reader took the data meanwhile), the
 * winner's own revents are reported: it was true when seen.
 *
 * An fd that epoll cannot watch (a regular file, some devices: EPERM) is
 * always readable and writable for poll(2); waiting on it for anything else
 * waits for the other fds or the timeout, as with poll(2).
 *
 * select(2) is the same wait over a pollfd array made from its sets: it
 * first asks select(2) itself with a zero timeout, and its last look is
 * select(2) again, on the sets as given, so what is ready and every error
 * are the kernel's. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* POLLRDHUP */
#endif
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>

#include "internal.h"

#define READ_EVENTS (POLLIN | POLLRDNORM | POLLRDBAND | POLLPRI | POLLRDHUP)
#define WRITE_EVENTS (POLLOUT | POLLWRNORM | POLLWRBAND)

/* async_select's sets: the caller's, and copies of them as given. */
typedef struct select_sets {
    int nfds;
    fd_set *user[3];         /* readfds, writefds, exceptfds (each may be NULL) */
    unsigned long *given[3]; /* nfds bits each, or NULL */
    struct timeval *timeout; /* written back with the time left, or NULL */
    uint64_t start_ns, limit_ns;
} select_sets_t;

typedef struct poll_op {
    async__race_t race; /* first */
    struct pollfd *fds;
    nfds_t nfds;
    struct pollfd one;  /* async_fd_wait's own */
    bool single;        /* async_fd_wait: the value is one.revents */
    select_sets_t *sel; /* async_select's, or NULL */
    async__race_kid_t kids[];
} poll_op_t;

static void select_given_back(struct select_sets *s);
static void select_end(poll_op_t *p, intptr_t *value, int *err);

typedef struct probe {
    async__io_op_t io; /* first */
    struct pollfd pfd;
    nfds_t index;
} probe_t;

static bool probe_attempt(async__io_op_t *op, intptr_t *value, int *err) {
    probe_t *p = (probe_t *)op;
    p->pfd.revents = 0;
    int n = poll(&p->pfd, 1, 0);
    if (n == 0 || (n < 0 && errno == EINTR)) return false;
    *value = n > 0 ? p->pfd.revents : -1;
    *err = n > 0 ? 0 : errno;
    return true;
}

static int poll_start(async__race_t *r) {
    poll_op_t *p = (poll_op_t *)r;
    for (nfds_t i = 0; i < p->nfds && r->how == RACE_RUNNING; i++) {
        struct pollfd *pfd = &p->fds[i];
        if (pfd->fd < 0) continue;
        bool want_write = pfd->events & WRITE_EVENTS;
        /* POLLHUP and POLLERR come in either direction: without a write, wait as a reader */
        bool want_read = (pfd->events & READ_EVENTS) || !want_write;
        for (int d = 0; d < 2; d++) {
            if (!(d == 0 ? want_read : want_write) || r->how != RACE_RUNNING) continue;
            async__io_op_t *op = async__io_op_new(
                sizeof(probe_t), pfd->fd, d == 0 ? ASYNC_IO_READ : ASYNC_IO_WRITE, probe_attempt);
            if (!op) return ENOMEM;
            probe_t *pr = (probe_t *)op;
            pr->pfd = (struct pollfd){.fd = pfd->fd, .events = pfd->events};
            pr->index = i;
            op->probe = true;
            int err = async__race_add(r, async__io_start(op));
            if (err) return err;
        }
    }
    return 0;
}

static bool select_counts(const struct select_sets *s, int fd, intptr_t revents);

/* EPERM: epoll cannot watch the fd, and it has nothing else to report. For
 * select, readiness no set of the fd counts (a hang-up, for exceptfds) is
 * nothing either: the kernel's select sleeps on through it. */
static bool poll_decides(async__race_t *r, async__race_kid_t *k) {
    const poll_op_t *p = (const poll_op_t *)r;
    if (k->err) return k->err != EPERM;
    return !p->sel || select_counts(p->sel, ((const probe_t *)k->f)->pfd.fd, k->value);
}

static void poll_end(async__race_t *r, intptr_t *value, int *err) {
    poll_op_t *p = (poll_op_t *)r;
    async__race_kid_t *w = r->winner;
    *value = -1;
    if (p->sel) select_given_back(p->sel); /* what an error leaves, as select(2) */
    if (r->how == RACE_CANCELLED || (w && w->err == ECANCELED)) { /* ECANCELED: worker exiting */
        *err = ECANCELED;
        return;
    }
    if (w && w->err && w->err != EBADF) { /* EBADF: closed through the library meanwhile */
        *err = w->err;
        return;
    }
    if (p->sel) {
        select_end(p, value, err);
        return;
    }
    int n = poll(p->fds, p->nfds, 0);
    if (n < 0) {
        *err = errno;
        return;
    }
    if (n == 0 && w) {
        probe_t *pr = (probe_t *)w->f;
        p->fds[pr->index].revents = w->err ? POLLNVAL : (short)w->value;
        n = 1;
    }
    *err = 0;
    *value = p->single ? p->one.revents : n;
}

static void poll_release(async__race_t *r) { free(r); }

static void poll_describe(const async__race_t *r, async__wait_t *out) {
    const poll_op_t *p = (const poll_op_t *)r;
    if (p->sel)
        async__wait_set(out, ASYNC_WAIT_TEXT, "select(%lld fds)", NULL, r, NULL, (int64_t)p->nfds);
    else if (p->single)
        async__wait_set(out, ASYNC_WAIT_FD, "fd_wait", NULL, r, NULL, p->one.fd);
    else
        async__wait_set(out, ASYNC_WAIT_TEXT, "poll(%lld fds)", NULL, r, NULL, (int64_t)p->nfds);
}

static const async__race_ops_t poll_ops = {poll_start, poll_decides, poll_end, poll_release,
                                           poll_describe};

/* The race of a poll; `extra` bytes after its kids are the caller's. */
static poll_op_t *poll_op_new(nfds_t nfds, int64_t timeout, size_t extra) {
    size_t cap = 2 * (size_t)nfds;
    poll_op_t *p = calloc(1, sizeof *p + cap * sizeof p->kids[0] + extra);
    if (!p) return NULL;
    async__race_init(&p->race, &poll_ops, p->kids, cap, timeout < 0 ? -1 : timeout);
    return p;
}

static async_future_t *wait_for(struct pollfd *fds, nfds_t nfds, int timeout, bool single, int fd,
                                short events) {
    poll_op_t *p = poll_op_new(nfds, timeout, 0);
    if (!p) return NULL;
    p->single = single;
    if (single) {
        p->one = (struct pollfd){.fd = fd, .events = events};
        fds = &p->one;
    }
    p->fds = fds;
    p->nfds = nfds;
    return async__race_run(&p->race);
}

async_future_t *async_poll(struct pollfd *fds, nfds_t nfds, int timeout) {
    if (!fds && nfds) { /* poll(2) would say so too, but a sanitizer's poll reads the array */
        struct rlimit rl;
        bool over = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
                    nfds > rl.rlim_cur;
        return async__future_failed(over ? EINVAL : EFAULT);
    }
    int n = poll(fds, nfds, 0); /* EINVAL over RLIMIT_NOFILE, EFAULT for an unreadable array */
    if (n != 0) return n > 0 ? async__future_done(n) : async__future_failed(errno);
    if (timeout == 0) return async__future_done(0);
    return wait_for(fds, nfds, timeout, false, -1, 0);
}

async_future_t *async_fd_wait(int fd, short events, int timeout_ms) {
    if (fd < 0) return async__future_failed(EBADF);
    struct pollfd pfd = {.fd = fd, .events = events};
    int n = poll(&pfd, 1, 0);
    if (n != 0) return n > 0 ? async__future_done(pfd.revents) : async__future_failed(errno);
    if (timeout_ms == 0) return async__future_done(0);
    return wait_for(NULL, 1, timeout_ms, true, fd, events);
}

/* ---- select ------------------------------------------------------------------ */

#define WORD_BITS (8 * sizeof(unsigned long))
#define SET_WORDS(n) (((size_t)(n) + WORD_BITS - 1) / WORD_BITS)

/* The bits of a set, read as the kernel reads them (an fd_set is an array of
 * longs), past FD_SETSIZE too: FD_ISSET's check would stop there. */
static bool bit(const unsigned long *set, int fd) {
    return set && (set[fd / WORD_BITS] >> (fd % WORD_BITS)) & 1;
}

static void set_bit(fd_set *set, int fd) {
    if (set) ((unsigned long *)set)[fd / WORD_BITS] |= 1ul << (fd % WORD_BITS);
}

/* What each set waits for, and what counts as ready in it: the kernel's
 * POLLIN_SET, POLLOUT_SET and POLLEX_SET. */
static const short set_asks[3] = {POLLIN | POLLRDNORM | POLLRDBAND,
                                  POLLOUT | POLLWRNORM | POLLWRBAND, POLLPRI};
static const short set_ready[3] = {POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR,
                                   POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR, POLLPRI};

/* How many fds the kernel reads of the sets: nfds, cut to the size of the
 * process's fd table (FDSize in /proc/self/status), which only an nfds over
 * FD_SETSIZE can pass. */
static int select_span(int nfds) {
    if (nfds <= FD_SETSIZE) return nfds;
    FILE *f = fopen("/proc/self/status", "re");
    if (!f) return FD_SETSIZE;
    char line[128];
    long size = FD_SETSIZE;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "FDSize: %ld", &size) == 1) break;
    fclose(f);
    return size < nfds ? (int)size : nfds;
}

static bool select_counts(const select_sets_t *s, int fd, intptr_t revents) {
    for (int i = 0; i < 3; i++)
        if (bit(s->given[i], fd) && (revents & set_ready[i])) return true;
    return false;
}

/* The sets as given (the first look cleared them), and the time left. */
static void select_given_back(select_sets_t *s) {
    for (int i = 0; i < 3; i++)
        if (s->user[i]) memcpy(s->user[i], s->given[i], SET_WORDS(s->nfds) * sizeof(unsigned long));
    if (!s->timeout) return;
    uint64_t spent = async_clock_now() - s->start_ns;
    uint64_t left = spent < s->limit_ns ? s->limit_ns - spent : 0;
    s->timeout->tv_sec = (time_t)(left / 1000000000);
    s->timeout->tv_usec = (suseconds_t)(left % 1000000000 / 1000);
}

/* The last look: select(2) on the sets as given. When it finds nothing (the
 * data was taken meanwhile), the winner's revents are the answer. */
static void select_end(poll_op_t *p, intptr_t *value, int *err) {
    select_sets_t *s = p->sel;
    struct timeval zero = {0, 0};
    int n = select(s->nfds, s->user[0], s->user[1], s->user[2], &zero);
    if (n < 0) {
        *value = -1;
        *err = errno;
        return;
    }
    async__race_kid_t *w = p->race.winner;
    if (n == 0 && w && w->err) { /* EBADF: async_close() ends the wait before the fd closes */
        select_given_back(s);
        *value = -1;
        *err = w->err;
        return;
    }
    if (n == 0 && w) {
        const probe_t *pr = (const probe_t *)w->f;
        for (int i = 0; i < 3; i++) {
            if (bit(s->given[i], pr->pfd.fd) && (w->value & set_ready[i])) {
                set_bit(s->user[i], pr->pfd.fd);
                n++;
            }
        }
    }
    *value = n;
    *err = 0;
}

async_future_t *async_select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds,
                             struct timeval *timeout) {
    /* glibc's order: the timeout, then nfds and the sets (select(2) below).
     * It reads tv_usec as 32 bits, refuses either field negative, then
     * carries whole seconds of tv_usec into tv_sec (saturating). */
    int64_t sec = 0, usec = 0;
    if (timeout) {
        sec = (int64_t)timeout->tv_sec;
        usec = (int32_t)timeout->tv_usec;
        if (sec < 0 || usec < 0) return async__future_failed(EINVAL);
        if (usec / 1000000 > INT64_MAX - sec) {
            sec = INT64_MAX;
            usec = 999999;
        } else {
            sec += usec / 1000000;
            usec %= 1000000;
        }
    }
    fd_set *user[3] = {readfds, writefds, exceptfds};
    int span = nfds > 0 ? select_span(nfds) : 0;
    size_t words = SET_WORDS(span);
    nfds_t asked = 0;
    for (int fd = 0; fd < span; fd++)
        for (int i = 0; i < 3; i++)
            if (bit((const unsigned long *)user[i], fd)) {
                asked++;
                break;
            }
    int64_t ms = -1;
    uint64_t limit = 0;
    if (timeout) { /* past 2^63 ns (292 years): for ever */
        limit = (uint64_t)sec > INT64_MAX / 1000000000 - 1
                    ? UINT64_MAX
                    : (uint64_t)sec * 1000000000 + (uint64_t)usec * 1000;
        ms = limit == UINT64_MAX ? -1 : (int64_t)async__ms_up(limit);
    }
    /* the race, then its sets, pollfds and the copies of the sets as given */
    poll_op_t *p = poll_op_new(asked, ms,
                               sizeof(select_sets_t) + asked * sizeof(struct pollfd) +
                                   3 * words * sizeof(unsigned long));
    if (!p) return async__future_failed(ENOMEM);
    select_sets_t *sel = (select_sets_t *)(p->kids + 2 * asked);
    struct pollfd *fds = (struct pollfd *)(sel + 1);
    unsigned long *given = (unsigned long *)(fds + asked);
    *sel = (select_sets_t){.nfds = span, .timeout = timeout, .limit_ns = limit};
    for (int i = 0; i < 3; i++) {
        sel->user[i] = user[i];
        sel->given[i] = user[i] ? given + i * words : NULL;
        if (user[i]) memcpy(sel->given[i], user[i], words * sizeof *given);
    }

    struct timeval zero = {0, 0};
    int n = select(nfds, readfds, writefds, exceptfds, &zero);
    if (n != 0 || (timeout && limit == 0)) {
        if (timeout) *timeout = (struct timeval){(time_t)sec, (suseconds_t)usec}; /* none spent */
        free(p);
        return n >= 0 ? async__future_done(n) : async__future_failed(errno);
    }
    nfds_t k = 0;
    for (int fd = 0; fd < span; fd++) {
        short events = 0;
        for (int i = 0; i < 3; i++)
            if (bit(sel->given[i], fd)) events |= set_asks[i];
        if (events) fds[k++] = (struct pollfd){.fd = fd, .events = events};
    }
    sel->start_ns = async_clock_now();
    p->sel = sel;
    p->fds = fds;
    p->nfds = asked;
    return async__race_run(&p->race);
}
