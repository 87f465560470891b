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
 *    no pool thread waits for the peer. */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "internal.h"

#define MAX_RW 0x7ffff000 /* the most one sendfile(2) moves (Linux's MAX_RW_COUNT) */
#define COPY_BUF (128 * 1024)

enum { ROUTE_POOL, ROUTE_SOCKET, ROUTE_PIPE, ROUTE_COPY };

/* ---- pool jobs ------------------------------------------------------------ */

static intptr_t run_sendfile(fs_op_t *op) { return sendfile(op->fd, op->fd2, op->buf, op->count); }

/* sendfile(2) to a socket whose peer has gone raises SIGPIPE and takes no
 * MSG_NOSIGNAL: the signal is blocked for the call and one it raised is taken
 * back, so that no socket call of the library raises it (net.h). A positive
 * count may come with it too (an error after some bytes). */
static intptr_t run_sendfile_nosig(fs_op_t *op) {
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    bool had = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    ssize_t n = sendfile(op->fd, op->fd2, op->buf, op->count);
    int err = errno;
    if (!had) {
        struct timespec zero = {0, 0};
        (void)sigtimedwait(&pipe_set, NULL, &zero); /* EAGAIN when none was raised */
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return n;
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

/* A zero-timeout poll is the kernel's own "would block": the edge the worker
 * then waits for comes when the reader has made room. POLLERR and POLLHUP
 * count as ready, so that the next step meets the error. */
static bool writable_attempt(async__io_op_t *op, intptr_t *value, int *err) {
    struct pollfd p = {.fd = op->fd, .events = POLLOUT};
    int r = poll(&p, 1, 0);
    if (r == 0) return false;
    *err = r < 0 ? errno : (p.revents & POLLNVAL) ? EBADF : 0;
    *value = *err ? -1 : 0;
    return true;
}

static int wait_writable(int fd) {
    async__io_op_t *op = async__io_op_new(sizeof *op, fd, ASYNC_IO_WRITE, writable_attempt);
    if (!op) {
        errno = ENOMEM;
        return -1;
    }
    return (int)async_await(async__io_start(op));
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
    size_t done = 0;
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

/* ---- routing ------------------------------------------------------------------ */

/* An fd's file type (S_IFSOCK, ...), or 0 when it has none (a bad fd). Only
 * the type, from cached attributes, is asked for: fstat(2) of a file on NFS
 * may write back its dirty pages or ask the server first. */
static unsigned file_type(int fd) {
    struct statx st;
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &st) < 0) return 0;
    return st.stx_mode & S_IFMT;
}

static int route_of(int out_fd, int in_fd, size_t count) {
    if (count == 0) return ROUTE_POOL; /* nothing to wait for: sendfile(2)'s own checks */
    unsigned out = file_type(out_fd);
    if (out != S_IFSOCK && out != S_IFIFO) return ROUTE_POOL;
    /* Any other source sendfile(2) to a socket refuses before sending a
     * byte, and its errno comes from the pool at once. Into a pipe, a pipe
     * or socket source could make splice(2) say EAGAIN for want of input,
     * which no writability wait would cure: it stays on the pool, as before. */
    unsigned in = file_type(in_fd);
    if (in != S_IFREG && in != S_IFBLK) return ROUTE_POOL;
    if (out == S_IFIFO) return ROUTE_PIPE;
    int fl = fcntl(out_fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK) ? ROUTE_SOCKET : ROUTE_COPY;
}

async_future_t *async_sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
    int route = route_of(out_fd, in_fd, count);
    if (route == ROUTE_POOL) {
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
        errno = ENOMEM;
        return NULL;
    }
    s->route = route;
    s->out = out_fd;
    s->in = in_fd;
    s->offset = offset;
    s->pos = offset ? *offset : 0; /* read now, as sendfile(2) would */
    s->count = count > MAX_RW ? MAX_RW : count;
    async_spawn_opts_t opts = {.name = "sendfile"};
    return async__spawn_owned(sendfile_task, s, free, &opts); /* s is freed however it ends */
}
