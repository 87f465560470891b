/* async_sendfile. To a regular file it is one pool job: sendfile(2) there
 * waits only for the disk. To a socket or a pipe, sendfile(2) also waits for
 * the reader, for as long as the reader likes; that wait must hold no pool
 * thread (one slow client per thread would starve the file module, which
 * shares the pool), and the disk side must not run on a worker (an uncached
 * file would stall every task there). So the transfer is an internal task,
 * straight-line code: a pool job moves what the kernel takes without waiting
 * for the reader; on EAGAIN the task waits for writability on its worker's
 * readiness machinery (io.c), holding nothing; and again, until the count is
 * sent, the file ends or an error comes.
 *
 * "Without waiting for the reader" needs a per-call non-blocking flag, which
 * sendfile(2) lacks:
 *  - a socket with O_NONBLOCK (every socket the library makes): sendfile(2);
 *  - a pipe: splice(2) with SPLICE_F_NONBLOCK, the kernel's own path for
 *    sendfile(2) to a pipe;
 *  - a socket without O_NONBLOCK: setting the flag would change it for every
 *    holder of the open file description, so the file is read into a buffer
 *    (async_pread) and sent with async_write (MSG_DONTWAIT): one copy, but
 *    no pool thread waits for the peer.
 *
 * Before any of that, a short transfer to a stream socket is tried on the
 * calling thread: preadv2(2) with RWF_NOWAIT, which says EAGAIN
 * rather than wait for the disk, into a buffer on the stack, then send(2)
 * with MSG_DONTWAIT. Cached data the socket takes at once is then sent with
 * no task and no pool hop (two system calls instead of a spawn and a pool
 * round trip: docs/fs.md). The transfer task takes over whatever is left.
 * Rejected: sendfile(2) inline after cachestat(2) said the pages were
 * cached, which saves the copy but may still wait for the disk if the pages
 * go in between. */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cached.h"

#define MAX_RW 0x7ffff000 /* the most one sendfile(2) moves (Linux's MAX_RW_COUNT) */
#define COPY_BUF (128 * 1024)
#define INLINE_BUF (16 * 1024) /* the most copied inline, from a buffer on the caller's stack */

enum { ROUTE_POOL, ROUTE_SOCKET, ROUTE_PIPE, ROUTE_COPY };

/* ---- pool jobs ------------------------------------------------------------ */

static intptr_t run_sendfile(fs_op_t *op) { return sendfile(op->fd, op->fd2, op->buf, op->count); }

/* sendfile(2) to a socket whose peer has gone raises SIGPIPE and takes no
 * MSG_NOSIGNAL: the signal is blocked for the call and one it raised is taken
 * back, so that no socket call of the library raises it (net.h). Only a
 * failed or short call can have raised it (a short count may hide an EPIPE
 * after some bytes). A signal that was unblocked cannot have been pending
 * before; one that was blocked and already pending is left alone. So a call
 * that sends the whole count costs two pthread_sigmask calls and no more. */
static ssize_t sendfile_nosig(int out, int in, off_t *offset, size_t count) {
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    bool had =
        sigismember(&old, SIGPIPE) && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    ssize_t n = sendfile(out, in, offset, count);
    int err = errno;
    bool may_have_raised = n < 0 ? err == EPIPE : (size_t)n < count;
    if (may_have_raised && !had) {
        struct timespec zero = {0, 0};
        (void)sigtimedwait(&pipe_set, NULL, &zero); /* EAGAIN when none was raised */
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return n;
}

static intptr_t run_sendfile_nosig(fs_op_t *op) {
    return sendfile_nosig(op->fd, op->fd2, op->buf, op->count);
}

/* sendfile(2) to a pipe is splice(2) from the file; SPLICE_F_NONBLOCK makes
 * the pipe side say EAGAIN when full, whatever the pipe's O_NONBLOCK. */
static intptr_t run_splice(fs_op_t *op) {
    loff_t off, *offp = NULL;
    if (op->buf) {
        off = *(off_t *)op->buf;
        offp = &off;
    }
    ssize_t n = splice(op->fd2, offp, op->fd, NULL, op->count, SPLICE_F_NONBLOCK);
    if (offp) *(off_t *)op->buf = (off_t)off;
    return n;
}

/* ---- the transfer task -------------------------------------------------------- */

typedef struct sendfile_op {
    int route;
    int out, in;
    off_t *offset; /* the caller's, written when the task ends; NULL: in's file position */
    off_t pos;     /* the next byte's offset in `in`, when `offset` is given or copying */
    size_t count;
    char *buf; /* ROUTE_COPY: bytes read, [head, tail) not yet sent */
    size_t head, tail;
    size_t done; /* sent inline before the task started */
} sendfile_op_t;

/* One pool job: what the kernel takes at once; -1/EAGAIN when the reader must
 * catch up first. */
static intptr_t pool_step(sendfile_op_t *s, size_t want) {
    fs_op_t *op =
        async__fs_op_new(s->route == ROUTE_PIPE ? run_splice : run_sendfile_nosig, NULL, NULL);
    if (!op) return -1;
    op->fd = s->out;
    op->fd2 = s->in;
    op->buf = s->offset ? &s->pos : NULL;
    op->count = want;
    return async_await(async__fs_submit(op));
}

/* Reads a buffer (page cache inline, else the pool) and sends what the socket
 * takes; async_write waits for writability itself. */
static intptr_t copy_step(sendfile_op_t *s, size_t want) {
    if (s->head == s->tail) {
        intptr_t n =
            async_await(async_pread(s->in, s->buf, want < COPY_BUF ? want : COPY_BUF, s->pos));
        if (n <= 0) return n;
        s->head = 0;
        s->tail = (size_t)n;
    }
    intptr_t n = async_await(async_write(s->out, s->buf + s->head, s->tail - s->head));
    if (n > 0) {
        s->head += (size_t)n;
        s->pos += n;
    }
    return n;
}

/* Waits until the reader has made room. POLLERR and POLLHUP count as ready,
 * so that the next step meets the error; a closed fd is EBADF. */
static int wait_writable(int fd) {
    intptr_t revents = async_await(async_fd_wait(fd, POLLOUT, -1));
    if (revents < 0) return -1;
    if (revents & POLLNVAL) {
        errno = EBADF;
        return -1;
    }
    return 0;
}

/* ROUTE_COPY's start: 0, or -1 with errno. */
static int copy_begin(sendfile_op_t *s) {
    if (!s->offset && (s->pos = lseek(s->in, 0, SEEK_CUR)) < 0) return -1;
    if (!(s->buf = malloc(COPY_BUF))) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* Sends until the count is out, `in` ends, an error comes or the caller
 * cancels. Bytes already sent are reported as a count, as write(2) does when
 * an error (or a signal) follows some progress. */
static intptr_t sendfile_task(void *arg) {
    sendfile_op_t *s = arg;
    if (s->route == ROUTE_COPY && copy_begin(s) < 0) return -1;
    size_t done = s->done;
    int err = 0;
    while (done < s->count) {
        if (async_testcancel() < 0) {
            err = ECANCELED;
            break;
        }
        size_t want = s->count - done;
        intptr_t n = s->route == ROUTE_COPY ? copy_step(s, want) : pool_step(s, want);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n == 0) break; /* the end of in_fd */
        if (errno != EAGAIN || wait_writable(s->out) < 0) {
            err = errno;
            break;
        }
    }
    if (s->buf) {
        if (!s->offset) lseek(s->in, s->pos, SEEK_SET);
        free(s->buf);
    }
    if (s->offset) *s->offset = s->pos;
    if (done || !err) return (intptr_t)done;
    errno = err;
    return -1;
}

/* ---- inline ---------------------------------------------------------------------- */

enum { INLINE_MORE, INLINE_END };

/* Sends what is cached and what the socket takes at once, from `pos`, up to
 * INLINE_BUF bytes: INLINE_END when the call is answered (*result: the count,
 * or -1 with errno), else INLINE_MORE with *sent bytes gone, the rest for
 * the task. Errors before any byte is sent are left to the task, which meets
 * them again and reports them as sendfile(2) would. */
static int send_inline(int out, int in, off_t pos, size_t count, size_t *sent, intptr_t *result) {
    char buf[INLINE_BUF];
    *sent = 0;
    if (count > INLINE_BUF) return INLINE_MORE;
    ssize_t n = preadv2(in, &(struct iovec){buf, count}, 1, pos, RWF_NOWAIT);
    if (n < 0) return INLINE_MORE; /* EAGAIN (the disk), or an error the task reports */
    if (n == 0) {
        *result = 0; /* the end of the file */
        return INLINE_END;
    }
    ssize_t m = send(out, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (m <= 0) return INLINE_MORE; /* full, or an error the task meets again */
    *sent = (size_t)m;
    /* a short read is the end of the file or pages not cached: the task tells which */
    if ((size_t)m == count) {
        *result = m;
        return INLINE_END;
    }
    return INLINE_MORE;
}

/* A stream socket: a datagram socket would get one datagram per send(2),
 * where sendfile(2) makes its own. */
static bool stream_socket(int fd) {
    int type;
    socklen_t len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

/* ---- routing ------------------------------------------------------------------ */

static int route_of(int out_fd, int in_fd, size_t count) {
    if (count == 0) return ROUTE_POOL; /* nothing to wait for: sendfile(2)'s own checks */
    unsigned out = async__fs_file_type(out_fd);
    if (out != S_IFSOCK && out != S_IFIFO) return ROUTE_POOL;
    /* Any other source sendfile(2) to a socket refuses before sending a
     * byte, and its errno comes from the pool at once. Into a pipe, a pipe
     * or socket source could make splice(2) say EAGAIN for want of input,
     * which no writability wait would cure: it stays on the pool, as before. */
    unsigned in = async__fs_file_type(in_fd);
    if (in != S_IFREG && in != S_IFBLK) return ROUTE_POOL;
    if (out == S_IFIFO) return ROUTE_PIPE;
    int fl = fcntl(out_fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK) ? ROUTE_SOCKET : ROUTE_COPY;
}

/* A regular file or a block device: what the inline attempt reads from. */
static bool file_source(int fd) {
    unsigned t = async__fs_file_type(fd);
    return t == S_IFREG || t == S_IFBLK;
}

async_future_t *async_sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
    if (count > MAX_RW) count = MAX_RW;
    off_t pos = offset ? *offset : 0; /* read now, as sendfile(2) would */
    size_t sent = 0;
    async_future_t *res = NULL;
    /* Inline first: MSG_DONTWAIT, so the socket's own O_NONBLOCK does not matter. */
    if (count && count <= INLINE_BUF && pos >= 0 && stream_socket(out_fd) && file_source(in_fd) &&
        (offset || (pos = lseek(in_fd, 0, SEEK_CUR)) >= 0)) {
        /* the result's future first: bytes sent inline must be reported */
        if (!(res = async__future_reserve())) return NULL;
        intptr_t result;
        int how = send_inline(out_fd, in_fd, pos, count, &sent, &result);
        if (sent) {
            pos += (off_t)sent;
            if (offset)
                *offset = pos;
            else
                lseek(in_fd, pos, SEEK_SET);
        }
        if (how == INLINE_END) return async__future_fill(res, result, 0);
    }
    int route = route_of(out_fd, in_fd, count - sent);
    if (route == ROUTE_POOL) {
        if (sent) return async__future_fill(res, (intptr_t)sent, 0);
        if (res) async__future_unreserve(res);
        fs_op_t *op = async__fs_op_new(run_sendfile, NULL, NULL);
        if (!op) return NULL;
        op->fd = out_fd;
        op->fd2 = in_fd;
        op->buf = offset;
        op->count = count;
        return async__fs_submit(op);
    }
    sendfile_op_t *s = calloc(1, sizeof *s);
    if (!s) {
        /* bytes sent inline are the result, as a short count */
        if (sent) return async__future_fill(res, (intptr_t)sent, 0);
        if (res) async__future_unreserve(res);
        errno = ENOMEM;
        return NULL;
    }
    s->route = route;
    s->out = out_fd;
    s->in = in_fd;
    s->offset = offset;
    s->pos = offset ? *offset : 0;
    s->count = count;
    s->done = sent;
    async_spawn_opts_t opts = {.name = "sendfile"};
    async_future_t *f =
        async__spawn_owned(sendfile_task, s, free, &opts); /* frees s however it ends */
    if (sent && (!f || !async__future_is_task(f))) {
        /* no task to send the rest: the bytes sent inline are the result, a short count */
        async_future_free(f);
        return async__future_fill(res, (intptr_t)sent, 0);
    }
    if (res) async__future_unreserve(res);
    return f;
}
