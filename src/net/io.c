/* The socket calls that may wait: accept, connect and the send and receive
 * families, sendmmsg and recvmmsg among them. Each is one op (the core's async__io_op_t followed by
 * the call's arguments) whose attempt function makes the system call without blocking; the core
 * runs it at once and again on each readiness (see task/io.c).
 *
 * Non-blocking per call: send and receive pass MSG_DONTWAIT, so they work on
 * blocking sockets without changing them; accept and connect have no such
 * flag and set O_NONBLOCK on the socket (async__net_set_nonblock).
 * A stream send goes on until every byte is queued, as a blocking send(2)
 * does; MSG_WAITALL on a stream receive waits for the whole length. With the
 * caller's own MSG_DONTWAIT, EAGAIN is reported, never waited out.
 *
 * Bad input is the kernel's to judge: an input an op cannot hold (a negative
 * fd, a NULL message, an address longer than any) is handed to the system
 * call at once, which refuses it without waiting, so that the error and the
 * order of the checks are the kernel's (a bad fd before a bad address, ...);
 * a NULL buffer goes to the kernel with the op. */
#define _GNU_SOURCE /* accept4, SOCK_NONBLOCK */
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "internal.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

static inline bool would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

/* Whether fd is a Unix-domain socket. The others' error queues are read
 * without blocking (EAGAIN when empty) even on a blocking socket; Unix
 * sockets have none and ignore MSG_ERRQUEUE, so they block as usual. */
static bool unix_socket(int fd) {
    int domain = 0;
    socklen_t len = sizeof domain;
    return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_UNIX;
}

/* A receive that reports EAGAIN instead of waiting: MSG_DONTWAIT, or a read of
 * an error queue, which the kernel never waits on (recv(2) would say EAGAIN,
 * and no readiness announces an entry: it raises POLLERR, not POLLIN). */
static bool recv_nowait(int fd, int flags) {
    return (flags & MSG_DONTWAIT) || ((flags & MSG_ERRQUEUE) && !unix_socket(fd));
}

/* Sets the result of a finished attempt. */
static inline bool done(intptr_t *value, int *err, intptr_t v, int e) {
    *value = e ? -1 : v;
    *err = e;
    return true;
}

/* A datagram sent to a Unix address whose receiver is full fails with EAGAIN,
 * but the sending socket stays writable: no readiness would ever come, so
 * such a send reports EAGAIN instead of waiting (see net.h). */
static inline bool unix_dest(const struct sockaddr_storage *to, socklen_t len) {
    return len && to->ss_family == AF_UNIX;
}

/* ---- accept ------------------------------------------------------------------ */

typedef struct accept_op {
    async__io_op_t io; /* first */
    struct sockaddr *addr;
    socklen_t *addrlen;
    int flags;
} accept_op_t;

static bool accept_attempt(async__io_op_t *io, intptr_t *value, int *err) {
    accept_op_t *op = (accept_op_t *)io;
    for (;;) {
        int fd = accept4(io->fd, op->addr, op->addrlen, op->flags);
        if (fd >= 0) {
            async__io_fd_new(fd);
            return done(value, err, fd, 0);
        }
        if (errno == EINTR) continue;
        if (would_block(errno)) return false;
        return done(value, err, -1, errno);
    }
}

async_future_t *async_accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags) {
    /* accept4(2) checks its flags before the fd */
    if (sockfd < 0 || (flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK)))
        return async__future_result(accept4(sockfd, addr, addrlen, flags));
    int e = async__net_set_nonblock(sockfd);
    if (e) return async__future_failed(e);
    accept_op_t *op =
        (accept_op_t *)async__io_op_new(sizeof *op, sockfd, ASYNC_IO_READ, accept_attempt);
    if (!op) return NULL; /* errno is ENOMEM */
    op->io.name = "accept";
    op->addr = addr;
    op->addrlen = addr ? addrlen : NULL;
    op->flags = flags | SOCK_NONBLOCK;
    return async__io_start(&op->io);
}

async_future_t *async_accept(int sockfd, struct sockaddr *addr, socklen_t *addrlen) {
    return async_accept4(sockfd, addr, addrlen, 0);
}

/* ---- connect ----------------------------------------------------------------- */

typedef struct connect_op {
    async__io_op_t io; /* first */
    bool started;
    socklen_t addrlen;
    struct sockaddr_storage addr;
} connect_op_t;

static bool connect_attempt(async__io_op_t *io, intptr_t *value, int *err) {
    connect_op_t *op = (connect_op_t *)io;
    if (!op->started) {
        op->started = true;
        if (connect(io->fd, (struct sockaddr *)&op->addr, op->addrlen) == 0)
            return done(value, err, 0, 0);
        /* EINTR: the connection goes on in the background, as with EINPROGRESS.
         * EAGAIN (a Unix listener's full backlog) is reported: no readiness
         * would ever announce room in the backlog. */
        if (errno == EINPROGRESS || errno == EINTR) return false;
        return done(value, err, -1, errno);
    }
    /* Woken: asking connect(2) again gives the outcome without a guess: EALREADY
     * while the handshake goes on, 0 once connected (and only then does the socket
     * count as connected for the kernel, so that a later connect says EISCONN, as
     * after a blocking connect), or the error that ended it. */
    for (;;) {
        if (connect(io->fd, (struct sockaddr *)&op->addr, op->addrlen) == 0)
            return done(value, err, 0, 0);
        if (errno == EINTR) continue;
        if (errno == EALREADY || errno == EINPROGRESS) return false;
        return done(value, err, 0, errno == EISCONN ? 0 : errno);
    }
}

async_future_t *async_connect(int sockfd, const struct sockaddr *addr, socklen_t addrlen) {
    /* refused before any connecting: the kernel copies the address first */
    if (sockfd < 0 || (!addr && addrlen) || addrlen > sizeof(struct sockaddr_storage))
        return async__future_result(connect(sockfd, addr, addrlen));
    int e = async__net_set_nonblock(sockfd);
    if (e) return async__future_failed(e);
    connect_op_t *op =
        (connect_op_t *)async__io_op_new(sizeof *op, sockfd, ASYNC_IO_WRITE, connect_attempt);
    if (!op) return NULL; /* errno is ENOMEM */
    op->io.name = "connect";
    op->addrlen = addrlen;
    if (addrlen) memcpy(&op->addr, addr, addrlen);
    return async__io_start(&op->io);
}

/* ---- send, sendto -------------------------------------------------------------- */

typedef struct send_op {
    async__io_op_t io; /* first */
    const char *buf;
    size_t len, done;
    int flags;   /* as given to the kernel */
    bool has_to; /* an address, even of length 0 (which the kernel refuses) */
    socklen_t tolen;
    struct sockaddr_storage to; /* sendto only: the op is allocated without it for send */
} send_op_t;

static bool send_attempt(async__io_op_t *io, intptr_t *value, int *err) {
    send_op_t *op = (send_op_t *)io;
    for (;;) {
        ssize_t n = op->has_to ? sendto(io->fd, op->buf + op->done, op->len - op->done, op->flags,
                                        (struct sockaddr *)&op->to, op->tolen)
                               : send(io->fd, op->buf + op->done, op->len - op->done, op->flags);
        if (n >= 0) {
            op->done += (size_t)n;
            op->io.progress = op->done; /* a cancel from here on reports the count */
            if (op->done < op->len && !op->io.nowait) continue; /* usually EAGAIN next: real */
            return done(value, err, (intptr_t)op->done, 0);
        }
        if (errno == EINTR) continue;
        if (would_block(errno) && !op->io.nowait && !unix_dest(&op->to, op->tolen)) return false;
        /* an error after a partial send: report the count, the error comes again */
        return done(value, err, (intptr_t)op->done, op->done ? 0 : errno);
    }
}

static async_future_t *start_send(int sockfd, const void *buf, size_t len, int flags,
                                  const struct sockaddr *to, socklen_t tolen) {
    if (!to) tolen = 0; /* as the kernel does: no address, whatever its length */
    if (sockfd < 0 || tolen > sizeof(struct sockaddr_storage))
        return async__future_result(
            sendto(sockfd, buf, len, flags | MSG_DONTWAIT | MSG_NOSIGNAL, to, tolen));
    size_t size = to ? sizeof(send_op_t) : offsetof(send_op_t, to);
    send_op_t *op = (send_op_t *)async__io_op_new(size, sockfd, ASYNC_IO_WRITE, send_attempt);
    if (!op) return NULL; /* errno is ENOMEM */
    op->io.name = "send";
    op->buf = buf;
    op->len = len;
    op->done = 0;
    op->flags = flags | MSG_DONTWAIT | MSG_NOSIGNAL;
    op->io.nowait = flags & MSG_DONTWAIT;
    op->has_to = to != NULL;
    op->tolen = tolen;
    if (tolen) memcpy(&op->to, to, tolen);
    return async__io_start(&op->io);
}

async_future_t *async_send(int sockfd, const void *buf, size_t len, int flags) {
    return start_send(sockfd, buf, len, flags, NULL, 0);
}

async_future_t *async_sendto(int sockfd, const void *buf, size_t len, int flags,
                             const struct sockaddr *dest_addr, socklen_t addrlen) {
    return start_send(sockfd, buf, len, flags, dest_addr, addrlen);
}

/* ---- recv, recvfrom ------------------------------------------------------------ */

typedef struct recv_op {
    async__io_op_t io; /* first */
    char *buf;
    size_t len, done;
    struct sockaddr *from;
    socklen_t *fromlen;
    int flags;
    bool waitall; /* a stream socket and MSG_WAITALL: go on until len bytes */
    bool peek;    /* MSG_PEEK: a short read empties nothing */
    bool nolen;   /* src_addr without addrlen: recvfrom(2) takes the data, then EFAULT */
} recv_op_t;

static bool recv_try(async__io_op_t *io, intptr_t *value, int *err) {
    recv_op_t *op = (recv_op_t *)io;
    for (;;) {
        ssize_t n = recvfrom(io->fd, op->buf + op->done, op->len - op->done, op->flags, op->from,
                             op->fromlen);
        if (n > 0 && op->waitall) {
            op->done += (size_t)n;
            op->io.progress = op->done; /* taken from the socket: a cancel must report it */
            if (op->done < op->len) continue;
            return done(value, err, (intptr_t)op->done, 0);
        }
        /* On TCP a short read took all the queue held: a hint to the core (see
         * async__io_op_t.drained), which knows whether the fd is TCP. */
        if (n > 0 && !op->peek && (size_t)n < op->len - op->done) io->drained = true;
        if (n >= 0) return done(value, err, (intptr_t)(op->done + (size_t)n), 0);
        if (errno == EINTR) continue;
        if (would_block(errno) && !op->io.nowait) return false;
        return done(value, err, (intptr_t)op->done, op->done ? 0 : errno);
    }
}

static bool recv_attempt(async__io_op_t *io, intptr_t *value, int *err) {
    if (!recv_try(io, value, err)) return false;
    if (((recv_op_t *)io)->nolen && !*err) done(value, err, -1, EFAULT);
    return true;
}

static async_future_t *start_recv(int sockfd, void *buf, size_t len, int flags,
                                  struct sockaddr *from, socklen_t *fromlen) {
    /* The kernel would write the address only after taking the data; asked
     * without the address (ASan's recvfrom reads *addrlen first), and EFAULT
     * is the result once data came. */
    bool nolen = from && !fromlen;
    if (nolen) from = NULL;
    if (sockfd < 0)
        return async__future_result(
            recvfrom(sockfd, buf, len, flags | MSG_DONTWAIT, from, from ? fromlen : NULL));
    bool waitall = false;
    if ((flags & MSG_WAITALL) && !(flags & (MSG_PEEK | MSG_DONTWAIT))) {
        /* rare: one more system call to learn whether the socket is a stream */
        int type = 0;
        socklen_t tl = sizeof type;
        if (getsockopt(sockfd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM)
            waitall = true;
    }
    recv_op_t *op = (recv_op_t *)async__io_op_new(sizeof *op, sockfd, ASYNC_IO_READ, recv_attempt);
    if (!op) return NULL; /* errno is ENOMEM */
    op->io.name = "recv";
    op->buf = buf;
    op->len = len;
    op->done = 0;
    op->from = from;
    op->fromlen = from ? fromlen : NULL;
    op->flags = (flags & ~(waitall ? MSG_WAITALL : 0)) | MSG_DONTWAIT;
    op->io.nowait = recv_nowait(sockfd, flags);
    op->waitall = waitall;
    op->peek = flags & MSG_PEEK;
    op->nolen = nolen;
    return async__io_start(&op->io);
}

async_future_t *async_recv(int sockfd, void *buf, size_t len, int flags) {
    return start_recv(sockfd, buf, len, flags, NULL, NULL);
}

async_future_t *async_recvfrom(int sockfd, void *buf, size_t len, int flags,
                               struct sockaddr *src_addr, socklen_t *addrlen) {
    return start_recv(sockfd, buf, len, flags, src_addr, addrlen);
}

/* ---- sendmsg ------------------------------------------------------------------- */

/* The message is copied whole (header, address, iovec array, control data) into
 * the op, so that a partial send can advance the iovecs and drop the control
 * data, which travels with the first byte only. */
typedef struct sendmsg_op {
    async__io_op_t io; /* first */
    struct msghdr msg; /* points into the op */
    size_t left, done;
    int flags;
    struct sockaddr_storage name;
    struct iovec iov[]; /* msg_iovlen entries, then the control data */
} sendmsg_op_t;

static bool sendmsg_attempt(async__io_op_t *io, intptr_t *value, int *err) {
    sendmsg_op_t *op = (sendmsg_op_t *)io;
    for (;;) {
        ssize_t n = sendmsg(io->fd, &op->msg, op->flags);
        if (n >= 0) {
            op->done += (size_t)n;
            op->left -= (size_t)n;
            op->msg.msg_control = NULL;
            op->msg.msg_controllen = 0;
            if (!op->left || op->io.nowait) return done(value, err, (intptr_t)op->done, 0);
            size_t k = (size_t)n;
            while (k && k >= op->msg.msg_iov->iov_len) {
                k -= op->msg.msg_iov->iov_len;
                op->msg.msg_iov++;
                op->msg.msg_iovlen--;
            }
            op->msg.msg_iov->iov_base = (char *)op->msg.msg_iov->iov_base + k;
            op->msg.msg_iov->iov_len -= k;
            continue;
        }
        if (errno == EINTR) continue;
        if (would_block(errno) && !op->io.nowait && !unix_dest(&op->name, op->msg.msg_namelen))
            return false;
        return done(value, err, (intptr_t)op->done, op->done ? 0 : errno);
    }
}

async_future_t *async_sendmsg(int sockfd, const struct msghdr *msg, int flags) {
    int kflags = flags | MSG_DONTWAIT | MSG_NOSIGNAL;
    if (sockfd < 0 || !msg || msg->msg_iovlen > IOV_MAX || (!msg->msg_iov && msg->msg_iovlen) ||
        (!msg->msg_control && msg->msg_controllen) || msg->msg_controllen > INT_MAX ||
        (msg->msg_name && msg->msg_namelen > INT_MAX))
        return async__future_result(sendmsg(sockfd, msg, kflags));
    /* no address, whatever its length; a longer one is cut, as the kernel does */
    socklen_t namelen = msg->msg_name ? msg->msg_namelen : 0;
    if (namelen > sizeof(struct sockaddr_storage)) namelen = sizeof(struct sockaddr_storage);
    size_t total = 0; /* only while every byte can be sent: the kernel stops a bad one */
    for (size_t i = 0; i < msg->msg_iovlen; i++)
        total +=
            msg->msg_iov[i].iov_len < SIZE_MAX - total ? msg->msg_iov[i].iov_len : SIZE_MAX - total;
    size_t iov_bytes = msg->msg_iovlen * sizeof(struct iovec);
    sendmsg_op_t *op = (sendmsg_op_t *)async__io_op_new(
        sizeof *op + iov_bytes + msg->msg_controllen, sockfd, ASYNC_IO_WRITE, sendmsg_attempt);
    if (!op) return NULL; /* errno is ENOMEM */
    op->io.name = "sendmsg";
    op->msg = *msg;
    op->msg.msg_flags = 0;
    op->msg.msg_namelen = namelen;
    op->msg.msg_name = namelen ? memcpy(&op->name, msg->msg_name, namelen) : NULL;
    op->msg.msg_iov = op->iov;
    if (iov_bytes) memcpy(op->iov, msg->msg_iov, iov_bytes);
    if (msg->msg_controllen)
        op->msg.msg_control =
            memcpy((char *)op->iov + iov_bytes, msg->msg_control, msg->msg_controllen);
    else
        op->msg.msg_control = NULL;
    op->left = total;
    op->done = 0;
    op->flags = kflags;
    op->io.nowait = flags & MSG_DONTWAIT;
    return async__io_start(&op->io);
}

/* ---- recvmsg ------------------------------------------------------------------- */

typedef struct recvmsg_op {
    async__io_op_t io; /* first */
    struct msghdr *msg;
    int flags;
} recvmsg_op_t;

/* fds that arrived with SCM_RIGHTS are new fds of this process: tell the core. */
static void note_received_fds(struct msghdr *msg) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            async__io_fd_new(fd);
        }
    }
}

static bool recvmsg_attempt(async__io_op_t *io, intptr_t *value, int *err) {
    recvmsg_op_t *op = (recvmsg_op_t *)io;
    for (;;) {
        ssize_t n = recvmsg(io->fd, op->msg, op->flags);
        if (n >= 0) {
            if (op->msg->msg_control && op->msg->msg_controllen) note_received_fds(op->msg);
            return done(value, err, n, 0);
        }
        if (errno == EINTR) continue;
        if (would_block(errno) && !op->io.nowait) return false;
        return done(value, err, -1, errno);
    }
}

async_future_t *async_recvmsg(int sockfd, struct msghdr *msg, int flags) {
    if (sockfd < 0) return async__future_result(recvmsg(sockfd, msg, flags | MSG_DONTWAIT));
    recvmsg_op_t *op =
        (recvmsg_op_t *)async__io_op_new(sizeof *op, sockfd, ASYNC_IO_READ, recvmsg_attempt);
    if (!op) return NULL; /* errno is ENOMEM */
    op->io.name = "recvmsg";
    op->msg = msg;
    op->flags = flags | MSG_DONTWAIT;
    op->io.nowait = recv_nowait(sockfd, flags);
    return async__io_start(&op->io);
}

/* ---- sendmmsg, recvmmsg ---------------------------------------------------------- */

/* The kernel's cap on vlen (UIO_MAXIOV): entries past it are ignored, not refused. */
#define MMSG_MAX 1024u

/* The caller's vector is not copied: the kernel writes msg_len into it (and,
 * on receipt, each header's msg_namelen, msg_controllen and msg_flags), so it
 * and all it points to are the caller's until the future settles. */
typedef struct mmsg_op {
    async__io_op_t io; /* first */
    struct mmsghdr *vec;
    unsigned vlen, done; /* done: the entries the kernel has taken or filled */
    int flags;           /* as given to the kernel */
    bool part;           /* send: vec[done - 1] went in part (a stream): its rest first */
    /* recv with a timeout: the kernel reads *timeout on the first call, and the
     * clock runs from there; later calls get the time left */
    struct timespec *timeout; /* the caller's, or NULL */
    bool timed;               /* deadline is set */
    struct timespec deadline; /* on CLOCK_MONOTONIC, the kernel's clock for it */
} mmsg_op_t;

/* ---- sendmmsg */

/* The bytes of a message, saturated. */
static size_t msg_bytes(const struct msghdr *m) {
    size_t total = 0;
    for (size_t i = 0; i < m->msg_iovlen; i++)
        total +=
            m->msg_iov[i].iov_len < SIZE_MAX - total ? m->msg_iov[i].iov_len : SIZE_MAX - total;
    return total;
}

/* Sends the rest of vec[done - 1], which a stream socket took in part: the
 * iovec where msg_len stops with send(2), the whole ones after it with
 * sendmsg(2), without the address and control data (they went with the first
 * byte). True once all of it has gone; false with errno. */
static bool send_rest(mmsg_op_t *op) {
    struct mmsghdr *m = &op->vec[op->done - 1];
    struct iovec *iov = m->msg_hdr.msg_iov;
    for (;;) {
        size_t skip = m->msg_len, i = 0;
        while (i < m->msg_hdr.msg_iovlen && skip >= iov[i].iov_len) skip -= iov[i++].iov_len;
        if (i == m->msg_hdr.msg_iovlen) return true;
        ssize_t n;
        if (skip) {
            n = send(op->io.fd, (char *)iov[i].iov_base + skip, iov[i].iov_len - skip, op->flags);
        } else {
            struct msghdr rest = {.msg_iov = iov + i, .msg_iovlen = m->msg_hdr.msg_iovlen - i};
            n = sendmsg(op->io.fd, &rest, op->flags);
        }
        if (n < 0) return false;
        m->msg_len += (unsigned)n;
    }
}

/* A datagram to a Unix address (see unix_dest): a full receiver sends no wake-up. */
static bool unix_name(const struct msghdr *m) {
    sa_family_t family;
    if (!m->msg_name || m->msg_namelen < sizeof family) return false;
    memcpy(&family, m->msg_name, sizeof family);
    return family == AF_UNIX;
}

static bool sendmmsg_attempt(async__io_op_t *io, intptr_t *value, int *err) {
    mmsg_op_t *op = (mmsg_op_t *)io;
    for (;;) {
        int n = 0;
        if (op->part) {
            if (send_rest(op))
                op->part = false;
            else
                n = -1;
        }
        if (n == 0 && op->done == op->vlen) return done(value, err, op->done, 0);
        if (n == 0) n = sendmmsg(io->fd, op->vec + op->done, op->vlen - op->done, op->flags);
        if (n > 0) {
            op->done += (unsigned)n;
            op->io.progress = op->done; /* a cancel from here on reports the count */
            if (op->io.nowait) return done(value, err, op->done, 0);
            /* the kernel stops a batch after a message a stream took in part: as a
             * blocking sendmmsg(2), send its rest (msg_len cannot count past 4 GiB) */
            struct mmsghdr *last = &op->vec[op->done - 1];
            size_t len = msg_bytes(&last->msg_hdr);
            op->part = last->msg_len < len && len <= UINT_MAX;
            continue;
        }
        if (errno == EINTR) continue;
        if (would_block(errno) && !op->io.nowait &&
            (op->part || !unix_name(&op->vec[op->done].msg_hdr)))
            return false;
        /* an error after some messages went: their count, as sendmmsg(2) */
        return done(value, err, op->done, op->done ? 0 : errno);
    }
}

async_future_t *async_sendmmsg(int sockfd, struct mmsghdr *msgvec, unsigned int vlen, int flags) {
    int kflags = flags | MSG_DONTWAIT | MSG_NOSIGNAL;
    /* flags < 0: the kernel's own MSG_CMSG_COMPAT, refused before anything */
    if (sockfd < 0 || vlen == 0 || flags < 0)
        return async__future_result(sendmmsg(sockfd, msgvec, vlen, kflags));
    mmsg_op_t *op =
        (mmsg_op_t *)async__io_op_new(sizeof *op, sockfd, ASYNC_IO_WRITE, sendmmsg_attempt);
    if (!op) return NULL; /* errno is ENOMEM */
    op->io.name = "sendmmsg";
    op->vec = msgvec;
    op->vlen = vlen < MMSG_MAX ? vlen : MMSG_MAX;
    op->flags = kflags;
    op->io.nowait = flags & MSG_DONTWAIT;
    return async__io_start(&op->io);
}

/* ---- recvmmsg */

/* The deadline, `timeout` (which the kernel accepted) from now: as the kernel
 * reckons it, the largest time when the sum would overflow. */
static void set_deadline(mmsg_op_t *op) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const struct timespec *t = op->timeout;
    if (t->tv_sec > INT64_MAX - 1 - (int64_t)now.tv_sec) {
        op->deadline = (struct timespec){(time_t)INT64_MAX, 0};
    } else {
        op->deadline = (struct timespec){now.tv_sec + t->tv_sec, now.tv_nsec + t->tv_nsec};
        if (op->deadline.tv_nsec >= 1000000000) {
            op->deadline.tv_sec++;
            op->deadline.tv_nsec -= 1000000000;
        }
    }
    op->timed = true;
}

/* The time left until the deadline; {0, 0} once it has passed. */
static struct timespec time_left(const mmsg_op_t *op) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    struct timespec left = {op->deadline.tv_sec - now.tv_sec, op->deadline.tv_nsec - now.tv_nsec};
    if (left.tv_nsec < 0) {
        left.tv_sec--;
        left.tv_nsec += 1000000000;
    }
    return left.tv_sec < 0 ? (struct timespec){0, 0} : left;
}

static bool is_zero(const struct timespec *t) { return t->tv_sec == 0 && t->tv_nsec == 0; }

/* Writes the time left back into the caller's timeout, as recvmmsg(2) does
 * once it has received something. */
static void time_left_back(mmsg_op_t *op) {
    if (op->timed && op->done) *op->timeout = time_left(op);
}

/* `wrote`: the kernel has just written the time left itself. */
static bool recv_done(mmsg_op_t *op, bool wrote, intptr_t *value, int *err) {
    if (!wrote) time_left_back(op);
    return done(value, err, op->done, 0);
}

static bool recvmmsg_attempt(async__io_op_t *io, intptr_t *value, int *err) {
    mmsg_op_t *op = (mmsg_op_t *)io;
    for (;;) {
        struct timespec left, *tp = op->timeout; /* the first call reads the caller's */
        if (op->timed) {
            /* past the deadline with nothing yet: a zero timeout, which makes the
             * kernel stop after one datagram, as its own check would */
            left = time_left(op);
            if (is_zero(&left) && op->done) return recv_done(op, false, value, err);
            tp = &left;
        }
        if (op->done) {
            /* Look before taking more: an error the socket holds (one that stopped
             * the kernel's last batch, or came since) is the next call's to report,
             * as recvmmsg(2) leaves it after a partial batch; taking it would lose
             * it. The error queue's entries also raise POLLERR: see net.h. */
            struct pollfd p = {.fd = io->fd, .events = POLLIN};
            int r = poll(&p, 1, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 || ((p.revents & POLLERR) && !(op->flags & MSG_ERRQUEUE)))
                return recv_done(op, false, value, err);
            if (r == 0) return false;
        }
        unsigned before = op->done;
        int n = recvmmsg(io->fd, op->vec + before, op->vlen - before, op->flags, tp);
        int e = errno;
        /* the kernel took *timeout (and wrote back what is left of it, if it
         * received something): the clock runs from here */
        if (op->timeout && !op->timed && (n > 0 || would_block(e))) set_deadline(op);
        if (n > 0) {
            op->done += (unsigned)n;
            op->io.progress = op->done; /* taken from the socket: a cancel must report it */
            for (unsigned i = before; i < op->done; i++) {
                struct msghdr *m = &op->vec[i].msg_hdr;
                if (m->msg_control && m->msg_controllen) note_received_fds(m);
            }
            /* what ends a blocking recvmmsg(2): all vlen, one with MSG_WAITFORONE,
             * the deadline (it writes back 0), out-of-band data */
            if (op->done == op->vlen || op->io.nowait || (op->flags & MSG_WAITFORONE) ||
                (tp && is_zero(tp)) || (op->vec[op->done - 1].msg_hdr.msg_flags & MSG_OOB))
                return recv_done(op, tp && tp == op->timeout, value, err);
            continue;
        }
        if (n == 0) return recv_done(op, false, value, err); /* not with vlen > 0: no loop */
        if (e == EINTR) continue;
        if (would_block(e) && !op->io.nowait) return false;
        if (op->done) return recv_done(op, false, value, err);
        return done(value, err, -1, e);
    }
}

/* A receive with a timeout that must wait: a race (task/race.c) of the
 * receive and a timer for its deadline. The timer ends the wait only once
 * something has come: with nothing yet, the first datagram is waited for
 * however long it takes, as the kernel waits for it. */
typedef struct timed_recv {
    async__race_t race;        /* first */
    async__race_kid_t kids[2]; /* the receive, its timer */
    mmsg_op_t *op;
} timed_recv_t;

static int timed_start(async__race_t *r) {
    timed_recv_t *t = (timed_recv_t *)r;
    int err = async__race_add(r, async__io_start(&t->op->io));
    if (err || r->how != RACE_RUNNING) return err;
    struct timespec left = time_left(t->op);
    if (is_zero(&left)) return 0;         /* past, with nothing yet: nothing for a timer to end */
    const uint64_t max_s = 1000000000000; /* 31,000 years: async__timer clamps below it */
    uint64_t sec = (uint64_t)left.tv_sec < max_s ? (uint64_t)left.tv_sec : max_s;
    uint64_t ms = sec * 1000 + (uint64_t)left.tv_nsec / 1000000 + (left.tv_nsec % 1000000 != 0);
    async_future_t *timer = async__timer(ms, NULL);
    /* no memory for a timer: wait without one (as async_await_timeout does)
     * rather than fail and lose what came */
    return timer ? async__race_add(r, timer) : 0;
}

static bool timed_decides(async__race_t *r, async__race_kid_t *k) {
    return k == &r->kids[0] || k->err || ((timed_recv_t *)r)->op->done;
}

/* The receive's result: a cancel (ours at the deadline, or the caller's) that
 * came after some datagrams gives their count (io.c's `progress`). */
static void timed_end(async__race_t *r, intptr_t *value, int *err) {
    mmsg_op_t *op = ((timed_recv_t *)r)->op;
    if (r->nkids) {
        *value = r->kids[0].value;
        *err = r->kids[0].err;
    } else { /* never started: the worker was exiting */
        *value = op->done ? (intptr_t)op->done : -1;
        *err = op->done ? 0 : ECANCELED;
    }
    if (!*err) time_left_back(op);
}

static void timed_release(async__race_t *r) {
    timed_recv_t *t = (timed_recv_t *)r;
    if (!r->nkids) { /* never started: the op is still ours */
        async__future_complete(&t->op->io.future, -1, ECANCELED);
        async_future_free(&t->op->io.future);
    }
    free(t);
}

static void timed_describe(const async__race_t *r, async__wait_t *out) {
    const mmsg_op_t *op = ((const timed_recv_t *)r)->op;
    async__wait_set(out, ASYNC_WAIT_FD, "recvmmsg", NULL, r, NULL, op->io.fd);
}

static const async__race_ops_t timed_ops = {timed_start, timed_decides, timed_end, timed_release,
                                            timed_describe};

async_future_t *async_recvmmsg(int sockfd, struct mmsghdr *msgvec, unsigned int vlen, int flags,
                               struct timespec *timeout) {
    int kflags = flags | MSG_DONTWAIT;
    if (sockfd < 0 || vlen == 0 || flags < 0)
        return async__future_result(recvmmsg(sockfd, msgvec, vlen, kflags, timeout));
    mmsg_op_t *op =
        (mmsg_op_t *)async__io_op_new(sizeof *op, sockfd, ASYNC_IO_READ, recvmmsg_attempt);
    if (!op) return NULL; /* errno is ENOMEM */
    op->io.name = "recvmmsg";
    op->vec = msgvec;
    op->vlen = vlen < MMSG_MAX ? vlen : MMSG_MAX;
    op->flags = kflags;
    op->io.nowait = recv_nowait(sockfd, flags);
    op->timeout = timeout;
    if (!timeout) return async__io_start(&op->io);

    /* With a timeout, the first call is made here, whatever the fd's readiness
     * marks say: the kernel judges the timeout (EFAULT, EINVAL) before it waits. */
    intptr_t value = 0;
    int err = 0;
    if (recvmmsg_attempt(&op->io, &value, &err)) {
        async__future_complete(&op->io.future, value, err);
        return &op->io.future;
    }
    timed_recv_t *t = calloc(1, sizeof *t);
    if (!t) { /* what came is the result; else ENOMEM */
        time_left_back(op);
        async__future_complete(&op->io.future, op->done ? (intptr_t)op->done : -1,
                               op->done ? 0 : ENOMEM);
        return &op->io.future;
    }
    t->op = op;
    async__race_init(&t->race, &timed_ops, t->kids, 2, -1);
    return async__race_run(&t->race);
}
