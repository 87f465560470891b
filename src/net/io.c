/* The socket calls that may wait: accept, connect and the send and receive
 * families. Each is one op (the core's async__io_op_t followed by the call's
 * arguments) whose attempt function makes the system call without blocking;
 * the core runs it at once and again on each readiness (see task/io.c).
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
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "internal.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

static inline bool would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK; }

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
    op->io.nowait = flags & MSG_DONTWAIT;
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
    op->io.nowait = flags & MSG_DONTWAIT;
    return async__io_start(&op->io);
}
