/* splice(2) and tee(2) as futures.
 *
 * Each try passes SPLICE_F_NONBLOCK, so the pipe side answers EAGAIN instead
 * of waiting (whatever the pipes' own O_NONBLOCK). On EAGAIN the call waits
 * for the side that is not ready — the input to have data, the output to
 * have room — on the worker's readiness machinery (async_fd_wait), then
 * tries again: straight-line code in a task. The flag does not reach the
 * side that is a file: reading or writing a file may wait for the disk, so
 * a splice with a file on one side tries on the pool; one between pipes and
 * sockets tries on the calling thread.
 *
 * Nor does the flag reach a socket that is not O_NONBLOCK: the kernel reads
 * a TCP socket and writes any socket by the socket's own flag, so a try on a
 * blocking socket with nothing to read (or no room) would block the thread
 * until the peer acts. Such a splice first waits, cancellably, for the
 * socket to be ready, and then tries on the pool, where a send that waits
 * for room for the rest holds no worker. The socket's flags stay the
 * caller's: changing them would change them for every holder of the file. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "internal.h"

typedef struct splice_req {
    bool tee;
    bool on_pool;  /* a side is a file or a blocking socket */
    bool sock_in;  /* fd_in is a blocking socket: wait until it is readable first */
    bool sock_out; /* fd_out is a blocking socket: wait until it is writable first */
    int in, out;
    loff_t *off_in, *off_out;
    size_t len;
    unsigned flags;
} splice_req_t;

static ssize_t try_once(const splice_req_t *r) {
    unsigned flags = r->flags | SPLICE_F_NONBLOCK;
    return r->tee ? tee(r->in, r->out, r->len, flags)
                  : splice(r->in, r->off_in, r->out, r->off_out, r->len, flags);
}

static intptr_t run_try(fs_op_t *op) { return try_once(op->buf); }

/* One try, on the pool when a side is a file. */
static intptr_t attempt(splice_req_t *r) {
    if (!r->on_pool) return try_once(r);
    fs_op_t *op = async__fs_op_new(run_try, NULL, NULL);
    if (!op) return -1;
    op->buf = r;
    return async_await(async__fs_submit(op));
}

/* After EAGAIN: waits for whichever side is not ready (both, in turn, if the
 * look finds both ready again: the next try tells). */
static int wait_for_sides(const splice_req_t *r) {
    struct pollfd p[2] = {{.fd = r->in, .events = POLLIN}, {.fd = r->out, .events = POLLOUT}};
    if (poll(p, 2, 0) < 0) return -1;
    int side = !(p[0].revents & (POLLIN | POLLHUP | POLLERR)) ? 0 : 1;
    intptr_t v = async_await(async_fd_wait(p[side].fd, p[side].events, -1));
    return v < 0 ? -1 : 0;
}

/* Waits until each blocking socket side is ready; with SPLICE_F_NONBLOCK,
 * EAGAIN when one is not ready now (where a blocking TCP socket would hold
 * glibc's caller until data came: see the header). */
static int socket_ready(const splice_req_t *r) {
    bool nowait = r->flags & SPLICE_F_NONBLOCK;
    for (int d = 0; d < 2; d++) {
        if (!(d ? r->sock_out : r->sock_in)) continue;
        intptr_t v =
            async_await(async_fd_wait(d ? r->out : r->in, d ? POLLOUT : POLLIN, nowait ? 0 : -1));
        if (v < 0) return -1;
        if (v == 0) {
            errno = EAGAIN;
            return -1;
        }
    }
    return 0;
}

static intptr_t splice_task(void *arg) {
    splice_req_t *r = arg;
    for (;;) {
        if (socket_ready(r) < 0) return -1;
        intptr_t n = attempt(r);
        if (n >= 0 || errno != EAGAIN || (r->flags & SPLICE_F_NONBLOCK)) return n;
        if (wait_for_sides(r) < 0) return -1;
    }
}

static bool is_file(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode);
}

static bool is_blocking_socket(int fd) {
    struct stat st;
    int fl;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && (fl = fcntl(fd, F_GETFL)) >= 0 &&
           !(fl & O_NONBLOCK);
}

static async_future_t *start(splice_req_t *req) {
    if (!req->tee) { /* tee takes pipes only: the kernel says EINVAL to the rest at once */
        req->sock_in = is_blocking_socket(req->in);
        req->sock_out = is_blocking_socket(req->out);
    }
    req->on_pool =
        !req->tee && (is_file(req->in) || is_file(req->out) || req->sock_in || req->sock_out);
    if (!req->on_pool) { /* the first try costs no task when it succeeds */
        ssize_t n = try_once(req);
        if (n >= 0 || errno != EAGAIN || (req->flags & SPLICE_F_NONBLOCK))
            return n >= 0 ? async__future_done(n) : async__future_failed(errno);
    }
    splice_req_t *r = malloc(sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    *r = *req;
    return async__spawn_owned(splice_task, r, free, NULL);
}

_Static_assert(sizeof(off_t) == sizeof(loff_t), "the header's off_t stands for splice's loff_t");

async_future_t *async_splice(int fd_in, off_t *off_in, int fd_out, off_t *off_out, size_t len,
                             unsigned int flags) {
    splice_req_t r = {.in = fd_in,
                      .out = fd_out,
                      .off_in = (loff_t *)off_in,
                      .off_out = (loff_t *)off_out,
                      .len = len,
                      .flags = flags};
    return start(&r);
}

async_future_t *async_tee(int fd_in, int fd_out, size_t len, unsigned int flags) {
    splice_req_t r = {.tee = true, .in = fd_in, .out = fd_out, .len = len, .flags = flags};
    return start(&r);
}
