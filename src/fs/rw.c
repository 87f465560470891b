/* read, write, pread, pwrite, readv, writev, preadv, pwritev, write_all and
 * lseek, on any kind of fd.
 *
 * Regular files and block devices: preadv2()/pwritev2() with RWF_NOWAIT
 * first, on the calling thread; data in the page cache comes back from that
 * one system call, with no hop to the pool (a hop costs microseconds, more
 * than copying 64 KiB; docs/fs.md has the numbers). EAGAIN means the
 * kernel would have to wait for the disk, and the call goes to the pool. A
 * short inline read of a regular file is asked again inline for the rest,
 * since callers of read(2) on files take a short count for the end of the
 * file: 0 confirms the end, EAGAIN sends the rest to the pool.
 *
 * Pipes, FIFOs, sockets, terminals and other character devices never take a
 * pool thread: they wait for readiness on a worker's loop. */
#define _GNU_SOURCE
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cached.h"

enum { RW_READ = 0, RW_WRITE = 1 };

/* ---- the pool route (regular files) --------------------------------------
 * op->buf: the iovec array; op->count: iovcnt; op->off: the offset, or -1 for
 * the file position; op->flags: RW_*; op->len: bytes done inline already (only
 * with one iovec, whose copy then lives in op->tv's place: see rw_pool). */

static intptr_t run_rw(fs_op_t *op) {
    const struct iovec *iov = op->buf;
    int cnt = (int)op->count;
    size_t done = (size_t)op->len;
    struct iovec rest;
    if (done) { /* finish a short inline transfer: one iovec only */
        rest.iov_base = (char *)iov[0].iov_base + done;
        rest.iov_len = iov[0].iov_len - done;
        iov = &rest;
    }
    off_t off = op->off >= 0 ? op->off + (off_t)done : -1;
    ssize_t n;
    if (op->flags == RW_WRITE)
        n = off >= 0 ? pwritev(op->fd, iov, cnt, off) : writev(op->fd, iov, cnt);
    else
        n = off >= 0 ? preadv(op->fd, iov, cnt, off) : readv(op->fd, iov, cnt);
    if (n < 0) return done ? (intptr_t)done : -1; /* what went through counts, as in read(2) */
    return (intptr_t)(done + (size_t)n);
}

/* The rest of a short inline transfer never ran (cancelled while queued, or
 * no runner): what went through inline is the result, as in run_rw. */
static intptr_t unrun_rw(fs_op_t *op) { return (intptr_t)op->len; }

static async_future_t *rw_pool(int fd, const struct iovec *iov, int cnt, off_t off, int dir,
                               size_t done) {
    /* The single-buffer calls keep their iovec in the op, since the caller's
     * lives on its stack frame only for the call. */
    struct iovec *copy = NULL;
    fs_op_t *op = async__fs_op_new_extra(run_rw, NULL, NULL, cnt == 1 ? sizeof *copy : 0,
                                         cnt == 1 ? (void **)&copy : NULL);
    if (!op) return NULL;
    if (cnt == 1) {
        *copy = iov[0];
        iov = copy;
    }
    op->fd = fd;
    op->buf = (void *)iov;
    op->count = (size_t)cnt;
    op->off = off;
    op->flags = dir;
    op->len = (off_t)done;
    if (done) op->unrun = unrun_rw;
    return async__fs_submit(op);
}

/* ---- the readiness route (pipes, sockets, ttys) --------------------------- */

enum { HOW_NOWAIT, HOW_SOCKET, HOW_POLL };

/* One attempt that never blocks: EAGAIN (returned as -1/EAGAIN) when the fd
 * is not ready. Sockets use sendmsg with MSG_NOSIGNAL, so a closed peer is
 * EPIPE and never SIGPIPE. Files without RWF_NOWAIT support (terminals, some
 * character devices) are asked with poll() first: a zero-timeout poll is the
 * kernel's own "not ready", as good as EAGAIN for the edge the loop waits for. */
static ssize_t attempt_rw(int fd, const struct iovec *iov, int cnt, int dir, int how) {
    if (how == HOW_SOCKET && dir == RW_WRITE) {
        struct msghdr m = {0};
        m.msg_iov = (struct iovec *)iov;
        m.msg_iovlen = (size_t)cnt;
        return sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    if (how == HOW_POLL) {
        struct pollfd p = {fd, dir == RW_WRITE ? POLLOUT : POLLIN, 0};
        int r = poll(&p, 1, 0);
        if (r < 0) return -1;
        if (r == 0) {
            errno = EAGAIN;
            return -1;
        }
        return dir == RW_WRITE ? writev(fd, iov, cnt) : readv(fd, iov, cnt);
    }
    return dir == RW_WRITE ? pwritev2(fd, iov, cnt, -1, RWF_NOWAIT)
                           : preadv2(fd, iov, cnt, -1, RWF_NOWAIT);
}

/* attempt_rw, learning on the way that the fd lacks RWF_NOWAIT (*how becomes HOW_POLL). */
static ssize_t attempt_learn(int fd, const struct iovec *iov, int cnt, int dir, int *how) {
    ssize_t n = attempt_rw(fd, iov, cnt, dir, *how);
    if (n < 0 && errno == EOPNOTSUPP && *how == HOW_NOWAIT) {
        *how = HOW_POLL;
        n = attempt_rw(fd, iov, cnt, dir, *how);
    }
    return n;
}

/* A read or write parked on the core's readiness machinery (io.c): tried at
 * once, and again on the worker each time the fd becomes ready. */
typedef struct ready_op {
    async__io_op_t io; /* first */
    struct iovec one;  /* the single-buffer calls' iovec, which lived on their frame */
    const struct iovec *iov;
    int cnt, dir, how;
    /* a write to a socket: bytes sent so far, and where they end (entry `at`,
     * `off` bytes into it) */
    size_t done, off;
    int at;
} ready_op_t;

/* Moves the write position of r past `n` more bytes sent. */
static void advance(ready_op_t *r, size_t n) {
    r->done += n;
    r->io.progress = r->done;
    while (r->at < r->cnt) {
        size_t room = r->iov[r->at].iov_len - r->off;
        if (n < room) {
            r->off += n;
            return;
        }
        n -= room;
        r->at++;
        r->off = 0;
    }
}

/* A write to a socket sends all of it, waiting for room as often as needed,
 * as write(2) and writev(2) do on a blocking stream socket and as
 * async_send() does: they agree. A vector goes out from where the last send
 * stopped: the rest of a part-sent entry alone, then the entries after it in
 * one sendmsg. An error after some bytes reports the count (the error comes
 * again on the next call). */
static bool send_rest(ready_op_t *r, intptr_t *value, int *err) {
    advance(r, 0); /* steps over empty entries */
    while (r->at < r->cnt) {
        const struct iovec *v = &r->iov[r->at];
        ssize_t n;
        if (r->off) {
            n = send(r->io.fd, (char *)v->iov_base + r->off, v->iov_len - r->off,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
        } else {
            struct msghdr m = {0};
            m.msg_iov = (struct iovec *)v;
            m.msg_iovlen = (size_t)(r->cnt - r->at);
            n = sendmsg(r->io.fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
        if (n < 0) {
            *value = r->done ? (intptr_t)r->done : -1;
            *err = r->done ? 0 : errno;
            return true;
        }
        advance(r, (size_t)n);
    }
    *value = (intptr_t)r->done;
    *err = 0;
    return true;
}

static bool ready_attempt(async__io_op_t *o, intptr_t *value, int *err) {
    ready_op_t *r = (ready_op_t *)o;
    if (r->dir == RW_WRITE && r->how == HOW_SOCKET) return send_rest(r, value, err);
    ssize_t n = attempt_learn(o->fd, r->iov, r->cnt, r->dir, &r->how);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    *value = n;
    *err = n < 0 ? errno : 0;
    return true;
}

static async_future_t *rw_ready(int fd, const struct iovec *iov, int cnt, int dir, int how,
                                size_t done) {
    ready_op_t *r = (ready_op_t *)async__io_op_new(
        sizeof *r, fd, dir == RW_WRITE ? ASYNC_IO_WRITE : ASYNC_IO_READ, ready_attempt);
    if (!r) return NULL;
    r->io.name = dir == RW_WRITE ? "write" : "read";
    if (cnt == 1) {
        r->one = iov[0];
        iov = &r->one;
    }
    r->iov = iov;
    r->cnt = cnt;
    r->dir = dir;
    r->how = how;
    r->done = r->off = 0;
    r->at = 0;
    if (how == HOW_SOCKET) advance(r, done);
    r->io.progress = done;
    return async__io_start(&r->io);
}

/* ---- routing -------------------------------------------------------------- */

static bool is_file(const struct stat *st) { return S_ISREG(st->st_mode) || S_ISBLK(st->st_mode); }

/* A short inline read of a file is the end of the file or pages that are
 * not cached: asked again for the rest, inline, 0 says which. Returns the
 * bytes read when the rest must come from the pool (or all were read), or
 * minus the count when the file ended (a file of a page or less, read whole,
 * needs no pool round trip). */
static ssize_t read_rest(int fd, const struct iovec *iov, off_t off, size_t done) {
    while (done < iov[0].iov_len) {
        struct iovec rest = {(char *)iov[0].iov_base + done, iov[0].iov_len - done};
        ssize_t k = preadv2(fd, &rest, 1, off >= 0 ? off + (off_t)done : -1, RWF_NOWAIT);
        if (k == 0) return -(ssize_t)done;
        if (k < 0) break; /* EAGAIN, or an error the pool meets again */
        done += (size_t)k;
    }
    return (ssize_t)done;
}

/* The bytes of a vector the kernel has accepted (so its entries are valid). */
static size_t iov_total(const struct iovec *iov, int cnt) {
    size_t total = 0;
    for (int i = 0; i < cnt; i++) total += iov[i].iov_len;
    return total;
}

/* The result's future is reserved before the first system call, not
 * allocated after it: once bytes have moved, the call must report them
 * (read from a pipe or a socket, or from the file position, they are gone
 * from the fd; written, they cannot be taken back), and an ENOMEM then would
 * lose them. A call that cannot report its result does not start. Rejected:
 * seeking back by the count read when the report fails, which serves only a
 * read at the position of a seekable file, undoes no write and races with
 * other holders of the open file description. The common path pays nothing
 * more (the future was allocated anyway, now before rather than after); a
 * call that goes on to the pool or to a worker's loop gives it back. */
static async_future_t *rw_start(int fd, const struct iovec *iov, int cnt, off_t off, int dir) {
    async_future_t *res = async__future_reserve();
    if (!res) return NULL;
    if (dir == RW_WRITE && off < 0 && cnt >= 0 && cnt <= IOV_MAX) {
        /* A write to a socket must not go through pwritev2, whose EPIPE would
         * come with SIGPIPE: try it as a socket first. Anything else answers
         * ENOTSOCK, which costs what the fstat that used to pick the route did,
         * and a socket is written in one system call instead of two. A count
         * writev(2) refuses with EINVAL goes to pwritev2, which refuses it
         * alike (sendmsg would say EMSGSIZE). */
        struct msghdr m = {0};
        m.msg_iov = (struct iovec *)iov;
        m.msg_iovlen = (size_t)cnt;
        ssize_t n = sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0 && (size_t)n == iov_total(iov, cnt)) return async__future_fill(res, n, 0);
        if (n >= 0 || errno == EAGAIN || errno == EWOULDBLOCK) {
            /* the rest waits for room, as on a blocking socket (send_rest) */
            async_future_t *rest = rw_ready(fd, iov, cnt, dir, HOW_SOCKET, n > 0 ? (size_t)n : 0);
            if (!rest && n > 0) return async__future_fill(res, n, 0); /* report what went */
            async__future_unreserve(res);
            return rest;
        }
        if (errno != ENOTSOCK) return async__future_fill(res, -1, errno);
    }
    ssize_t n = dir == RW_WRITE ? pwritev2(fd, iov, cnt, off, RWF_NOWAIT)
                                : preadv2(fd, iov, cnt, off, RWF_NOWAIT);
    if (n >= 0) {
        /* full, end of file, or a pipe's ordinary short read or write: only a
         * regular file's short count is finished on the pool */
        if (cnt != 1 || n == 0 || (size_t)n == iov[0].iov_len) return async__future_fill(res, n, 0);
        struct stat st;
        if (fstat(fd, &st) < 0 || !is_file(&st)) return async__future_fill(res, n, 0);
        if (dir == RW_READ && (n = read_rest(fd, iov, off, (size_t)n)) == (ssize_t)iov[0].iov_len)
            return async__future_fill(res, n, 0);
        if (n < 0) return async__future_fill(res, -n, 0); /* the end of the file */
        async_future_t *rest = rw_pool(fd, iov, cnt, off, dir, (size_t)n);
        /* no memory for the rest: the short count is the result, as read(2)
         * and write(2) may give, rather than an ENOMEM that hides it */
        if (!rest) return async__future_fill(res, n, 0);
        async__future_unreserve(res);
        return rest;
    }
    int err = errno;
    if (err != EAGAIN && err != EOPNOTSUPP) return async__future_fill(res, -1, err);
    struct stat st;
    if (fstat(fd, &st) < 0) return async__future_fill(res, -1, errno);
    if (off >= 0 && !is_file(&st) && !S_ISDIR(st.st_mode))
        return async__future_fill(res, -1, ESPIPE);
    async__future_unreserve(res); /* nothing has moved: the routes below report their own */
    if (is_file(&st) || S_ISDIR(st.st_mode)) return rw_pool(fd, iov, cnt, off, dir, 0);
    return rw_ready(fd, iov, cnt, dir, err == EOPNOTSUPP ? HOW_POLL : HOW_NOWAIT, 0);
}

/* read(2) and its kin check what the vector calls, which these go through,
 * do not: a count past SSIZE_MAX is a range no address space holds (EFAULT,
 * after EBADF and ESPIPE, where a vector entry that long is EINVAL), and a
 * read of 0 bytes still reaches the file's own read (EISDIR for a
 * directory, EINVAL for an eventfd), where a vector of 0 bytes is 0 at once.
 * Neither waits for anything, so the libc call itself answers them on the
 * calling thread; but not on a character device, whose driver may wait
 * even for no bytes, nor on a regular file, which the vector answers as
 * read(2) does (0) and whose read on NFS or FUSE may ask the server first.
 * A bad fd (type 0) is the libc call's to answer too. */
static bool libc_answers(int fd, size_t count, int dir) {
    if (count > SSIZE_MAX) return true;
    if (count || dir != RW_READ) return false;
    unsigned type = async__fs_file_type(fd);
    return type != S_IFCHR && type != S_IFREG;
}

/* The libc call for libc_answers(); off -1 for the file position. Its count
 * may be past SSIZE_MAX on purpose, which GCC warns of. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
static async_future_t *libc_rw(int fd, void *buf, size_t count, off_t off, int dir) {
    if (dir == RW_WRITE)
        return async__future_result(off < 0 ? write(fd, buf, count) : pwrite(fd, buf, count, off));
    return async__future_result(off < 0 ? read(fd, buf, count) : pread(fd, buf, count, off));
}
#pragma GCC diagnostic pop

async_future_t *async_read(int fd, void *buf, size_t count) {
    if (libc_answers(fd, count, RW_READ)) return libc_rw(fd, buf, count, -1, RW_READ);
    struct iovec iov = {buf, count};
    return rw_start(fd, &iov, 1, -1, RW_READ);
}

async_future_t *async_write(int fd, const void *buf, size_t count) {
    if (libc_answers(fd, count, RW_WRITE)) return libc_rw(fd, (void *)buf, count, -1, RW_WRITE);
    struct iovec iov = {(void *)buf, count};
    return rw_start(fd, &iov, 1, -1, RW_WRITE);
}

async_future_t *async_pread(int fd, void *buf, size_t count, off_t offset) {
    if (offset < 0)
        return async__future_failed(EINVAL); /* checked before the fd, as the kernel does */
    if (libc_answers(fd, count, RW_READ)) return libc_rw(fd, buf, count, offset, RW_READ);
    struct iovec iov = {buf, count};
    return rw_start(fd, &iov, 1, offset, RW_READ);
}

async_future_t *async_pwrite(int fd, const void *buf, size_t count, off_t offset) {
    if (offset < 0) return async__future_failed(EINVAL);
    if (libc_answers(fd, count, RW_WRITE)) return libc_rw(fd, (void *)buf, count, offset, RW_WRITE);
    struct iovec iov = {(void *)buf, count};
    return rw_start(fd, &iov, 1, offset, RW_WRITE);
}

/* The vectored calls hand the kernel the caller's array untouched, so a bad
 * count or pointer gets the kernel's own EINVAL or EFAULT. */
async_future_t *async_readv(int fd, const struct iovec *iov, int iovcnt) {
    return rw_start(fd, iov, iovcnt, -1, RW_READ);
}

async_future_t *async_writev(int fd, const struct iovec *iov, int iovcnt) {
    return rw_start(fd, iov, iovcnt, -1, RW_WRITE);
}

async_future_t *async_preadv(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
    if (offset < 0) return async__future_failed(EINVAL);
    return rw_start(fd, iov, iovcnt, offset, RW_READ);
}

async_future_t *async_pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
    if (offset < 0) return async__future_failed(EINVAL);
    return rw_start(fd, iov, iovcnt, offset, RW_WRITE);
}

async_future_t *async_lseek(int fd, off_t offset, int whence) {
    return async__future_result((intptr_t)lseek(fd, offset, whence));
}

/* ---- write_all -------------------------------------------------------------- */

typedef struct write_all {
    int fd;
    const char *buf;
    size_t count, done;
    async_future_t *first; /* the first write, in flight, until the task awaits it */
} write_all_t;

/* Writes the rest, one write after another. Bytes already out are reported
 * on an error or cancellation, since they cannot be taken back. */
static intptr_t write_all_task(void *arg) {
    write_all_t *w = arg;
    while (w->done < w->count) {
        async_future_t *f =
            w->first ? w->first : async_write(w->fd, w->buf + w->done, w->count - w->done);
        w->first = NULL;
        intptr_t n = async_await(f);
        if (n < 0) return w->done ? (intptr_t)w->done : -1;
        w->done += (size_t)n;
        if (w->done < w->count && async_testcancel() < 0) break;
    }
    return (intptr_t)w->done;
}

/* Only a task that got no stack leaves the first write unawaited: it is
 * cancelled and let go (its result dropped). */
static void write_all_free(void *arg) {
    write_all_t *w = arg;
    if (w->first) {
        async_cancel(w->first);
        async_future_free(w->first);
    }
    free(w);
}

async_future_t *async_write_all(int fd, const void *buf, size_t count) {
    async_future_t *first = async_write(fd, buf, count);
    if (!first) return NULL;
    if (async__future_is_settled(first) && (first->err || (size_t)first->value == count))
        return first; /* the common case: everything went out at once */
    write_all_t *w = malloc(sizeof *w);
    if (!w) {
        async_cancel(first);
        (void)async_await(first);
        errno = ENOMEM;
        return NULL;
    }
    w->fd = fd;
    w->buf = buf;
    w->count = count;
    w->done = 0;
    w->first = first;
    return async__spawn_owned(write_all_task, w, write_all_free, NULL);
}
