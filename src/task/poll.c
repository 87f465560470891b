/* async_poll and async_fd_wait: poll(2) on the workers' readiness machinery.
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
 * waits for the other fds or the timeout, as with poll(2). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* POLLRDHUP */
#endif
#include <poll.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "internal.h"

#define READ_EVENTS (POLLIN | POLLRDNORM | POLLRDBAND | POLLPRI | POLLRDHUP)
#define WRITE_EVENTS (POLLOUT | POLLWRNORM | POLLWRBAND)

typedef struct poll_op {
    async__race_t race; /* first */
    struct pollfd *fds;
    nfds_t nfds;
    struct pollfd one; /* async_fd_wait's own */
    bool single;       /* async_fd_wait: the value is one.revents */
    async__race_kid_t kids[];
} poll_op_t;

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

/* EPERM: epoll cannot watch the fd, and it has nothing else to report. */
static bool poll_decides(async__race_t *r, async__race_kid_t *k) {
    (void)r;
    return k->err != EPERM;
}

static void poll_end(async__race_t *r, intptr_t *value, int *err) {
    poll_op_t *p = (poll_op_t *)r;
    async__race_kid_t *w = r->winner;
    *value = -1;
    if (r->how == RACE_CANCELLED || (w && w->err == ECANCELED)) { /* ECANCELED: worker exiting */
        *err = ECANCELED;
        return;
    }
    if (w && w->err && w->err != EBADF) { /* EBADF: closed through the library meanwhile */
        *err = w->err;
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
    if (p->single)
        async__wait_set(out, ASYNC_WAIT_FD, "fd_wait", NULL, r, NULL, p->one.fd);
    else
        async__wait_set(out, ASYNC_WAIT_TEXT, "poll(%lld fds)", NULL, r, NULL, (int64_t)p->nfds);
}

static const async__race_ops_t poll_ops = {poll_start, poll_decides, poll_end, poll_release,
                                           poll_describe};

static async_future_t *wait_for(struct pollfd *fds, nfds_t nfds, int timeout, bool single, int fd,
                                short events) {
    size_t cap = 2 * (size_t)nfds;
    poll_op_t *p = calloc(1, sizeof *p + cap * sizeof p->kids[0]);
    if (!p) return NULL;
    async__race_init(&p->race, &poll_ops, p->kids, cap, timeout < 0 ? -1 : timeout);
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
