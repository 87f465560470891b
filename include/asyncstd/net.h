/** \file
 * Sockets and name resolution: the BSD socket calls as futures, and helpers
 * for TCP and Unix-domain clients and servers. */
#ifndef ASYNCSTD_NET_H
#define ASYNCSTD_NET_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "common.h"
#include "fs.h" /* async_close(), which sockets share with every other fd */
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/* <netdb.h> defines struct addrinfo only when POSIX.1-2001 is asked for, and
 * <sys/socket.h> struct mmsghdr only with _GNU_SOURCE; the declarations let
 * this header compile in strict ISO C too (`-std=c99`). */
struct addrinfo;
struct mmsghdr;
struct timespec;

/**
 * \defgroup net Sockets and DNS
 * socket(2), accept(2), connect(2), send(2), recv(2) and their kin, each
 * returning a future; getaddrinfo(3) and getnameinfo(3) off the worker
 * threads; and helpers that open TCP and Unix-domain connections and listeners.
 *
 * **Sockets stay real file descriptors.** setsockopt(2), getsockname(2),
 * fcntl(2), poll(2) and every other call that takes an fd keep working on
 * them, and an fd made elsewhere (by socket(2), inherited, passed over a Unix
 * socket) may be handed to these calls.
 *
 * **The fast path.** Each call first makes its system call without blocking;
 * only when the kernel says EAGAIN does it wait for readiness on the worker's
 * event loop and try again. A ready socket costs one system call and no task
 * switch. Calls that can never wait (async_socket(), async_bind(),
 * async_listen(), async_shutdown(), ...) run inline and return a future that
 * has already settled.
 *
 * **Non-blocking mode.** Sockets created by async_socket(), async_socketpair(),
 * async_accept(), async_accept4() and the helpers are created with
 * `O_NONBLOCK` (`SOCK_NONBLOCK`): a plain read(2) on them says EAGAIN instead
 * of blocking. async_accept() and async_connect() need a non-blocking socket,
 * so they set `O_NONBLOCK` on an fd that lacks it (this changes the open file
 * description, shared with dup(2)s of the fd and with other processes).
 * The send and receive calls use `MSG_DONTWAIT` and work on blocking and
 * non-blocking sockets alike, without changing them. A receive with
 * `MSG_ERRQUEUE` never waits, as in the kernel: an empty error queue is
 * EAGAIN (a Unix-domain socket ignores the flag and waits as usual).
 *
 * **SIGPIPE never kills the process.** async_send(), async_sendto(),
 * async_sendmsg() and async_sendmmsg() always add `MSG_NOSIGNAL`: writing to
 * a socket whose peer has gone fails with EPIPE instead of raising SIGPIPE.
 *
 * **Closing.** Close a socket that operations may be waiting on with
 * async_close() (declared in fs.h, included here), not close(2): every
 * operation waiting on the fd, on any worker, then fails with EBADF at once,
 * instead of waiting forever on a number the kernel may give to the next fd
 * opened. Close each fd once, and only after the calls that use it have been
 * started. An fd that nothing waits on may be closed with close(2), or by a
 * library that owns it: nothing the library remembers of an fd number
 * outlives the file, so a new socket, pipe or file that gets the number
 * (from the library or from plain socket(2), accept(2), pipe(2), dup(2) or
 * open(2)) waits and wakes like any other.
 *
 * **Memory.** Buffers, and addresses or lengths the call writes into
 * (`struct sockaddr *`, `socklen_t *`, `struct msghdr *` of the receive
 * calls, the `res` of async_getaddrinfo()), must stay valid until the future
 * settles, also after async_cancel() or a freed future. Arguments the call
 * only reads (a destination address, a host name, a `const struct msghdr *`
 * but not the data it points to) are copied and may be freed at once.
 *
 * **Errors** are libc's: -1 and `errno` as the system call gives them, plus
 * ECANCELED when the future is cancelled (or ETIMEDOUT through
 * async_await_timeout()). A cancelled send may have sent part of its data.
 *
 * All calls may be made from a task (only the task waits) or a plain thread
 * (the thread blocks in async_await()).
 *
 * \code
 * int fd = async_await(async_tcp_connect("example.com", "80", 5000));
 * if (fd < 0) { perror("connect"); return -1; }
 * const char req[] = "HEAD / HTTP/1.0\r\n\r\n";
 * async_await(async_send(fd, req, sizeof req - 1, 0));
 * char buf[4096];
 * ssize_t n = async_await(async_recv(fd, buf, sizeof buf, 0));
 * async_await(async_close(fd));
 * \endcode
 * @{
 */

/**
 * Async equivalent of socket(2).
 *
 * Never waits: the future has settled when the call returns. The socket is
 * created non-blocking (`SOCK_NONBLOCK` is added to `type`).
 *
 * \param domain    `AF_INET`, `AF_INET6`, `AF_UNIX`, ...
 * \param type      `SOCK_STREAM`, `SOCK_DGRAM`, `SOCK_SEQPACKET`, ..., optionally
 *                  or-ed with `SOCK_CLOEXEC`.
 * \param protocol  the protocol, usually 0.
 * \return a future with the new fd, or -1 with socket(2)'s errno: EAFNOSUPPORT,
 *         EINVAL, EPROTONOSUPPORT, EMFILE, ENFILE, ENOBUFS, ENOMEM, EACCES.
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_socket(int domain, int type, int protocol) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of socketpair(2).
 *
 * Never waits. Both sockets are created non-blocking.
 *
 * \param domain    `AF_UNIX` (the only domain Linux supports).
 * \param type      `SOCK_STREAM`, `SOCK_DGRAM` or `SOCK_SEQPACKET`, optionally
 *                  or-ed with `SOCK_CLOEXEC`.
 * \param protocol  0.
 * \param sv        receives the two connected fds.
 * \return a future with 0, or -1 with socketpair(2)'s errno: EFAULT (`sv`
 *         NULL), EAFNOSUPPORT, EOPNOTSUPP, EPROTONOSUPPORT, EMFILE, ENFILE.
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_socketpair(int domain, int type, int protocol,
                                              int sv[2]) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of bind(2).
 *
 * Never waits.
 *
 * \param sockfd   the socket.
 * \param addr     the local address.
 * \param addrlen  the size of `*addr`.
 * \return a future with 0, or -1 with bind(2)'s errno: EBADF, ENOTSOCK,
 *         EINVAL, EADDRINUSE, EADDRNOTAVAIL, EACCES, EFAULT (`addr` NULL with
 *         a length), ENOENT or ENAMETOOLONG (Unix paths), ...
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_bind(int sockfd, const struct sockaddr *addr,
                                        socklen_t addrlen) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of listen(2).
 *
 * Never waits.
 *
 * \param sockfd   the socket.
 * \param backlog  the queue length for pending connections.
 * \return a future with 0, or -1 with listen(2)'s errno: EBADF, ENOTSOCK,
 *         EOPNOTSUPP (a datagram socket), EADDRINUSE, EINVAL.
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_listen(int sockfd, int backlog) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of accept(2): waits for a connection and returns its fd.
 *
 * The new socket is non-blocking. `sockfd` is made non-blocking if it is not.
 * Running out of descriptors is reported (EMFILE, ENFILE) like accept(2) does,
 * and the pending connection stays queued; an accept loop should then pause
 * (say 10 ms, see examples/echo.c) rather than retry at once.
 *
 * \param sockfd   a listening socket.
 * \param addr     if not NULL, receives the peer's address; must stay valid
 *                 until the future settles.
 * \param addrlen  in: the size of `*addr`; out: the address's real size. NULL
 *                 when `addr` is NULL; must stay valid until the future settles.
 * \return a future with the new fd, or -1 with accept(2)'s errno: EBADF
 *         (also when the socket is closed by async_close() while waiting),
 *         ENOTSOCK, EINVAL (not listening), EFAULT, EMFILE, ENFILE, ENOBUFS,
 *         ENOMEM, ECONNABORTED, EPERM; ECANCELED.
 *
 * Callable from a task or any thread.
 *
 * \code
 * for (;;) {
 *     int c = async_await(async_accept(lfd, NULL, NULL));
 *     if (c >= 0) async_future_free(async_spawn(serve, (void *)(intptr_t)c));
 *     else if (errno == EMFILE || errno == ENFILE) async_await(async_usleep(10000));
 *     else if (errno != ECONNABORTED && errno != EINTR) break;
 * }
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_accept(int sockfd, struct sockaddr *addr,
                                          socklen_t *addrlen) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of accept4(2): async_accept() with flags for the new fd.
 *
 * \param sockfd   a listening socket.
 * \param addr     as for async_accept().
 * \param addrlen  as for async_accept().
 * \param flags    0 or `SOCK_CLOEXEC` (`SOCK_NONBLOCK` is always added).
 * \return as async_accept(); EINVAL for unknown flags.
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen,
                                           int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of connect(2): waits until the connection is made or fails.
 *
 * `sockfd` is made non-blocking if it is not. The address is copied: it may
 * be freed as soon as the call returns. A Unix-domain connect to a listener
 * whose backlog is full fails with EAGAIN, as a non-blocking connect(2) does
 * (a blocking one would wait); async_unix_connect() retries it.
 *
 * \param sockfd   the socket.
 * \param addr     the peer's address.
 * \param addrlen  the size of `*addr`.
 * \return a future with 0, or -1 with connect(2)'s errno: ECONNREFUSED,
 *         ETIMEDOUT, ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL, EAFNOSUPPORT,
 *         EISCONN, EALREADY, EBADF, ENOTSOCK, EFAULT, EINVAL, ENOENT (Unix path),
 *         EAGAIN (see above); ECANCELED.
 *
 * Callable from a task or any thread. For a time limit use
 * async_await_timeout() (then close the socket: its state is unspecified).
 */
ASYNC_EXTERN async_future_t *async_connect(int sockfd, const struct sockaddr *addr,
                                           socklen_t addrlen) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of send(2).
 *
 * Like send(2) on a blocking socket, it waits until all `len` bytes are
 * queued, unless `flags` has `MSG_DONTWAIT`: then it never waits and may
 * send less, or fail with EAGAIN. If an error or a cancellation stops it
 * after some bytes were sent, the count sent is returned (as write(2)
 * interrupted by a signal returns it; an error shows again on the next
 * call). `MSG_NOSIGNAL` is always added.
 *
 * \param sockfd  a connected socket.
 * \param buf     the data; must stay valid until the future settles.
 * \param len     its size.
 * \param flags   send(2)'s flags (`MSG_MORE`, `MSG_OOB`, `MSG_DONTWAIT`, ...).
 * \return a future with the count sent, or -1 with send(2)'s errno: EPIPE,
 *         ECONNRESET, ENOTCONN, EBADF, ENOTSOCK, EFAULT (`buf` NULL with a
 *         length), EMSGSIZE, EDESTADDRREQ, EAGAIN (only with `MSG_DONTWAIT`);
 *         ECANCELED (cancelled before any byte was sent).
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_send(int sockfd, const void *buf, size_t len,
                                        int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of recv(2).
 *
 * Waits until some data is there (or all `len` bytes with `MSG_WAITALL`),
 * then returns what it got, as recv(2) on a blocking socket does; with
 * `MSG_DONTWAIT` it never waits and may fail with EAGAIN. A `MSG_WAITALL`
 * receive cancelled after part of the length came returns that part (it is
 * gone from the socket), as recv(2) interrupted by a signal does.
 *
 * \param sockfd  the socket.
 * \param buf     receives the data; must stay valid until the future settles.
 * \param len     its size.
 * \param flags   recv(2)'s flags (`MSG_PEEK`, `MSG_WAITALL`, `MSG_TRUNC`, ...).
 * \return a future with the count received (0 at end of stream), or -1 with
 *         recv(2)'s errno: ECONNRESET, ENOTCONN, EBADF (also when the socket
 *         is closed by async_close() while waiting), ENOTSOCK, EFAULT (`buf`
 *         NULL with a length: once data has come, as recv(2) says it), EAGAIN
 *         (only with `MSG_DONTWAIT`); ECANCELED.
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_recv(int sockfd, void *buf, size_t len,
                                        int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of sendto(2).
 *
 * As async_send(), to an address for unconnected (datagram) sockets. The
 * address is copied.
 *
 * \param sockfd     the socket.
 * \param buf        the data; must stay valid until the future settles.
 * \param len        its size.
 * \param flags      as for async_send().
 * \param dest_addr  the destination, or NULL on a connected socket.
 * \param addrlen    the size of `*dest_addr` (at most `sizeof(struct sockaddr_storage)`);
 *                   ignored when `dest_addr` is NULL, as the kernel ignores it.
 * \return as async_send(); also EINVAL (`addrlen` too large), EAFNOSUPPORT,
 *         ENETUNREACH, EISCONN. A datagram to a Unix-domain address whose
 *         receiver's queue is full fails with EAGAIN instead of waiting (the
 *         sending socket would never be told when room is made); a connected
 *         Unix datagram socket waits as usual.
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_sendto(int sockfd, const void *buf, size_t len, int flags,
                                          const struct sockaddr *dest_addr,
                                          socklen_t addrlen) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of recvfrom(2).
 *
 * As async_recv(), also giving the sender's address.
 *
 * \param sockfd    the socket.
 * \param buf       receives the data; must stay valid until the future settles.
 * \param len       its size.
 * \param flags     as for async_recv().
 * \param src_addr  if not NULL, receives the sender's address; must stay
 *                  valid until the future settles.
 * \param addrlen   in: the size of `*src_addr`; out: the address's size.
 *                  NULL when `src_addr` is; must stay valid until the future settles.
 * \return as async_recv().
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_recvfrom(int sockfd, void *buf, size_t len, int flags,
                                            struct sockaddr *src_addr,
                                            socklen_t *addrlen) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of sendmsg(2): scatter/gather, a destination address and
 * ancillary data such as file descriptors (`SCM_RIGHTS`) or credentials.
 *
 * The `struct msghdr`, its address, its iovec array and its control data
 * are copied (the buffers the iovecs point to are not, and must stay valid
 * until the future settles). As with async_send(), it waits until every byte
 * is sent unless `flags` has `MSG_DONTWAIT`; the ancillary data goes with
 * the first byte. `MSG_NOSIGNAL` is always added. A NULL `msg_name` means
 * no address whatever `msg_namelen` says, as for the kernel.
 *
 * \param sockfd  the socket.
 * \param msg     the message.
 * \param flags   as for async_send().
 * \return a future with the count sent, or -1 with sendmsg(2)'s errno:
 *         EFAULT (`msg` NULL), EMSGSIZE (more than `IOV_MAX` iovecs),
 *         EINVAL (bad control data), EBADF (a passed fd is not open), and
 *         those of async_send(); ECANCELED.
 *
 * Callable from a task or any thread.
 *
 * \code
 * // pass `fd` over a connected Unix socket `sock`
 * char byte = 0;
 * struct iovec iov = {&byte, 1};
 * union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
 * struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
 *                    .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
 * struct cmsghdr *c = CMSG_FIRSTHDR(&m);
 * c->cmsg_level = SOL_SOCKET;
 * c->cmsg_type = SCM_RIGHTS;
 * c->cmsg_len = CMSG_LEN(sizeof(int));
 * memcpy(CMSG_DATA(c), &fd, sizeof(int));
 * if (async_await(async_sendmsg(sock, &m, 0)) < 0) perror("sendmsg");
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_sendmsg(int sockfd, const struct msghdr *msg,
                                           int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of recvmsg(2): scatter input, the sender's address and
 * ancillary data (received fds, credentials).
 *
 * Waits until some data is there, then returns what one recvmsg(2) gives
 * (`MSG_WAITALL` is passed to the kernel but, unlike async_recv(), not
 * waited out: the count may be short). Use `MSG_CMSG_CLOEXEC` to receive
 * fds close-on-exec. Received fds are left as the sender made them (not
 * made non-blocking).
 *
 * \param sockfd  the socket.
 * \param msg     the message: the kernel fills its buffers, `msg_namelen`,
 *                `msg_controllen` and `msg_flags`, so it, its iovec array and
 *                every buffer must stay valid until the future settles.
 * \param flags   recvmsg(2)'s flags.
 * \return a future with the count received (0 at end of stream), or -1 with
 *         recvmsg(2)'s errno: EFAULT (`msg` NULL), and those of async_recv().
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_recvmsg(int sockfd, struct msghdr *msg,
                                           int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of sendmmsg(2): several messages in one system call, each
 * with its own address, data and ancillary data (a UDP server's batch of
 * replies).
 *
 * Like sendmmsg(2) on a blocking socket, it goes on until all `vlen` messages
 * are sent, waiting for room as often as needed (for the first message and
 * between the batches the kernel takes), unless `flags` has `MSG_DONTWAIT`:
 * then it makes one sendmmsg(2) and may send fewer, or fail with EAGAIN. On
 * a stream socket a message the kernel takes in part is finished before the
 * next, as a blocking sendmmsg(2) does (with `MSG_DONTWAIT` the count
 * includes it and its `msg_len` says how much went). `MSG_NOSIGNAL` is always
 * added. At most 1024 messages (`UIO_MAXIOV`) are sent; a larger `vlen` is
 * cut to that, as the kernel cuts it.
 *
 * If an error, a cancellation or a time-out stops it after some messages
 * went, their count is the result (on a stream socket the last of them may
 * have gone in part: its `msg_len` says how much), and the error is dropped,
 * as sendmmsg(2) drops it (a lasting one shows again on the next call); a
 * close by async_close() while it waits gives EBADF, as for async_send(). A
 * datagram to a Unix-domain address whose receiver's queue is full ends it as
 * async_sendto() does: the count so far, or EAGAIN for the first message.
 *
 * \param sockfd  the socket.
 * \param msgvec  the messages; the kernel writes each one's `msg_len` (the
 *                bytes sent), so the array, and the headers, addresses, iovecs,
 *                data and control data it points to, must stay valid until the
 *                future settles.
 * \param vlen    the number of messages.
 * \param flags   as for async_sendmsg().
 * \return a future with the number of messages sent, or -1 with sendmmsg(2)'s
 *         errno: EFAULT (`msgvec` NULL with a `vlen`), EINVAL (the top bit of
 *         `flags`, the kernel's own), those of async_sendmsg() for the first
 *         message; ECANCELED (cancelled before any message went). `vlen` 0
 *         gives 0 at once.
 *
 * Callable from a task or any thread.
 *
 * \code
 * // answer n requests on a UDP socket: reply[i] to peer[i]
 * struct mmsghdr out[64];
 * struct iovec iov[64];
 * for (int i = 0; i < n; i++) {
 *     iov[i] = (struct iovec){reply[i], reply_len[i]};
 *     out[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &peer[i], .msg_namelen = peer_len[i],
 *                                           .msg_iov = &iov[i], .msg_iovlen = 1}};
 * }
 * if (async_await(async_sendmmsg(fd, out, n, 0)) < 0) perror("sendmmsg");
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_sendmmsg(int sockfd, struct mmsghdr *msgvec, unsigned int vlen,
                                            int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of recvmmsg(2): several datagrams in one system call, each
 * into its own buffers, with its sender's address and ancillary data.
 *
 * Like recvmmsg(2) on a blocking socket, it waits until `vlen` messages have
 * come, unless:
 * - `flags` has `MSG_WAITFORONE`: it waits for one, then takes what else is
 *   there without waiting (the usual choice of a server's receive loop);
 * - `flags` has `MSG_DONTWAIT`: it never waits, and fails with EAGAIN if
 *   nothing is there; nor does `MSG_ERRQUEUE`, except on a Unix-domain
 *   socket (which ignores it), as the kernel reads an error queue;
 * - `timeout` is given and has passed (see below);
 * - out-of-band data comes, or an error after some messages (their count is
 *   the result, and the next call reports the error, as recvmmsg(2) leaves
 *   it in the socket).
 *
 * **The timeout** is recvmmsg(2)'s, with its bug fixed. The kernel looks at
 * it only after each datagram, so once some have come and no more come, it
 * blocks on past the timeout until the next one (recvmmsg(2), BUGS); here the
 * wait for more ends when the timeout has passed, with the count received.
 * The rest is the kernel's: the timeout never ends a call that has received
 * nothing (the first datagram is waited for however long it takes, and if it
 * comes after the timeout has passed it is returned alone; a zero timeout
 * thus receives exactly one), and once something was received the time left
 * is written back to `*timeout` (0 when it has passed). To bound the whole
 * call, use async_await_timeout() (ETIMEDOUT) or `MSG_DONTWAIT` instead.
 *
 * Each filled entry gets its `msg_len` (the bytes received) and its header's
 * `msg_namelen`, `msg_controllen` and `msg_flags` (`MSG_TRUNC`, `MSG_CTRUNC`,
 * ...), as from recvmsg(2); received fds are left as the sender made them.
 * At most 1024 messages (`UIO_MAXIOV`) are received; a larger `vlen` is cut
 * to that, as the kernel cuts it.
 *
 * A cancellation or time-out (async_await_timeout()) after some messages came
 * gives their count, since they are gone from the socket; before any,
 * ECANCELED or ETIMEDOUT. A close by async_close() while it waits gives
 * EBADF, also after some came (their entries are filled in). On a socket
 * with entries in its error queue (`IP_RECVERR`, `SO_TIMESTAMPING`), which
 * raise POLLERR as a pending error does, the wait for more ends after the
 * first system call that received something; and an error met only after
 * waiting, at an entry whose buffers the kernel cannot write, ends the call
 * with the count but is not reported again.
 *
 * \param sockfd   the socket.
 * \param msgvec   the messages: the kernel fills their buffers, `msg_len` and
 *                 the header fields above, so the array and all it points to
 *                 must stay valid until the future settles.
 * \param vlen     the number of messages.
 * \param flags    recvmsg(2)'s flags, and `MSG_WAITFORONE`.
 * \param timeout  NULL for none, or as described above; when given, it must
 *                 stay valid until the future settles.
 * \return a future with the number of messages received, or -1 with
 *         recvmmsg(2)'s errno: EFAULT (`msgvec` NULL with a `vlen`, a
 *         `timeout` the kernel cannot read), EINVAL (a negative or
 *         unnormalised timeout, the top bit of `flags`), and those of
 *         async_recvmsg(); ECANCELED. `vlen` 0 gives 0 at once.
 *
 * Callable from a task or any thread.
 *
 * \code
 * // a UDP server's receive loop: up to 64 datagrams per system call
 * enum { N = 64, SIZE = 1500 };
 * static char buf[N][SIZE];
 * struct sockaddr_storage peer[N];
 * struct iovec iov[N];
 * struct mmsghdr in[N];
 * for (;;) {
 *     for (int i = 0; i < N; i++) {
 *         iov[i] = (struct iovec){buf[i], SIZE};
 *         in[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &peer[i],
 *                                              .msg_namelen = sizeof peer[i],
 *                                              .msg_iov = &iov[i], .msg_iovlen = 1}};
 *     }
 *     int n = async_await(async_recvmmsg(fd, in, N, MSG_WAITFORONE, NULL));
 *     if (n < 0) break;
 *     for (int i = 0; i < n; i++)
 *         handle(buf[i], in[i].msg_len, &peer[i], in[i].msg_hdr.msg_namelen);
 * }
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_recvmmsg(int sockfd, struct mmsghdr *msgvec, unsigned int vlen,
                                            int flags, struct timespec *timeout) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of shutdown(2).
 *
 * Never waits. An operation waiting to receive on the socket then sees the
 * end of the stream.
 *
 * \param sockfd  the socket.
 * \param how     `SHUT_RD`, `SHUT_WR` or `SHUT_RDWR`.
 * \return a future with 0, or -1 with shutdown(2)'s errno: EBADF, ENOTSOCK,
 *         ENOTCONN, EINVAL.
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_shutdown(int sockfd, int how) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of getaddrinfo(3): resolves a host and service name.
 *
 * The lookup runs on the blocking pool (with user jobs, so slow DNS servers
 * cannot hold up file operations). `node`, `service` and `hints` are copied.
 * The result list is written to `*res` before the future settles, and is the
 * caller's to free with async_freeaddrinfo() (or freeaddrinfo(3)) whenever
 * the await returns 0, even after async_cancel() or a time-out lost the race.
 *
 * The await returns what getaddrinfo(3) returns, with one change: errors that
 * have an errno come as -1 and `errno`, so that -1 always means "see errno":
 * `EAI_SYSTEM` becomes -1 with getaddrinfo's errno, and cancellation, time-out
 * and out of memory are -1 with ECANCELED, ETIMEDOUT, ENOMEM. glibc's
 * `EAI_BADFLAGS` is -1 already and comes with `errno` EINVAL. Other failures
 * are the `EAI_*` code itself, for gai_strerror(3).
 *
 * \param node     host name or numeric address, or NULL (with `service`).
 * \param service  service name or port number, or NULL (with `node`).
 * \param hints    as for getaddrinfo(3), or NULL.
 * \param res      receives the list; must not be NULL and must stay valid
 *                 until the future settles.
 * \return a future with 0, an `EAI_*` code (`EAI_NONAME`, `EAI_AGAIN`,
 *         `EAI_FAIL`, `EAI_FAMILY`, `EAI_SOCKTYPE`, `EAI_SERVICE`,
 *         `EAI_MEMORY`, `EAI_NODATA`, `EAI_ADDRFAMILY`), or -1 with `errno`
 *         EINVAL (`res` NULL, bad flags), ECANCELED, ENOMEM, or the errno of
 *         `EAI_SYSTEM`.
 *
 * Callable from a task or any thread.
 *
 * \code
 * struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
 * int r = async_await(async_getaddrinfo("example.com", "443", &hints, &ai));
 * if (r == -1) perror("getaddrinfo");
 * else if (r != 0) fprintf(stderr, "getaddrinfo: %s\n", gai_strerror(r));
 * else { use(ai); async_freeaddrinfo(ai); }
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_getaddrinfo(const char *node, const char *service,
                                               const struct addrinfo *hints,
                                               struct addrinfo **res) ASYNC_WARN_UNUSED;

/**
 * Frees a list from async_getaddrinfo(), like freeaddrinfo(3).
 *
 * \param res  the list; NULL is ignored.
 *
 * Callable from any context; never waits.
 */
ASYNC_EXTERN void async_freeaddrinfo(struct addrinfo *res);

/**
 * Async equivalent of getnameinfo(3): turns an address into host and service
 * names.
 *
 * Runs on the blocking pool, as async_getaddrinfo() does. The address is
 * copied; `host` and `serv` are written before the future settles and must
 * stay valid until then. Results follow async_getaddrinfo()'s convention.
 *
 * \param addr     the address.
 * \param addrlen  its size (at most `sizeof(struct sockaddr_storage)`).
 * \param host     receives the host name, or NULL.
 * \param hostlen  the size of `host`.
 * \param serv     receives the service name, or NULL.
 * \param servlen  the size of `serv`.
 * \param flags    `NI_NUMERICHOST`, `NI_NUMERICSERV`, `NI_NAMEREQD`, `NI_DGRAM`, ...
 * \return a future with 0, an `EAI_*` code (`EAI_NONAME`, `EAI_AGAIN`,
 *         `EAI_FAIL`, `EAI_FAMILY`, `EAI_OVERFLOW`, `EAI_MEMORY`), or -1 with
 *         `errno` EINVAL (`addr` NULL, `addrlen` too large, bad flags),
 *         ECANCELED, ENOMEM, or the errno of `EAI_SYSTEM`.
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_getnameinfo(const struct sockaddr *addr, socklen_t addrlen,
                                               char *host, socklen_t hostlen, char *serv,
                                               socklen_t servlen, int flags) ASYNC_WARN_UNUSED;

/**
 * Opens a TCP connection to `host`:`port`.
 *
 * Resolves the name (async_getaddrinfo() with `AI_ADDRCONFIG`), then tries
 * each address in the order the resolver gives, until one connects. The
 * returned socket is non-blocking and close-on-exec, with `TCP_NODELAY` set.
 * The time limit covers the whole call; when several addresses remain, each
 * attempt gets its share of the time left (at least 2 s, or all of it), so
 * one silent address does not use up the limit.
 *
 * \param host        host name or numeric address; must not be NULL. Copied.
 * \param port        service name or port number ("80", "http"); must not be
 *                    NULL. Copied.
 * \param timeout_ms  the limit in milliseconds; negative for none.
 * \return a future with the connected fd, or -1 with `errno`: the error of the
 *         last address tried (ECONNREFUSED, ENETUNREACH, ...), ETIMEDOUT
 *         (the limit passed), ENXIO (the name has no address: `EAI_NONAME`,
 *         `EAI_NODATA`; "No such device or address"), EAGAIN (`EAI_AGAIN`:
 *         temporary DNS failure), EINVAL (NULL argument, unknown service name),
 *         EIO (other resolver failures), ECANCELED, ENOMEM, EMFILE. A lookup
 *         already running when the limit passes is waited for (the resolver's
 *         own time-outs bound it: resolv.conf `timeout` and `attempts`).
 *
 * Runs as a task of its own; callable from a task or any thread.
 *
 * \code
 * int fd = async_await(async_tcp_connect("localhost", "8080", 3000));
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_tcp_connect(const char *host, const char *port,
                                               int64_t timeout_ms) ASYNC_WARN_UNUSED;

/**
 * Opens a listening TCP socket on `host`:`port`.
 *
 * Resolves with `AI_PASSIVE` and binds the first address that works, with
 * `SO_REUSEADDR` set (so a restarted server can bind at once). With `host`
 * NULL it listens on every address: IPv6 with IPv4 mapped (`IPV6_V6ONLY`
 * off) when IPv6 is available, else IPv4. Port "0" picks a free port: read
 * it back with getsockname(2). The socket is non-blocking and close-on-exec.
 *
 * \param host     the local address or name, or NULL for all. Copied.
 * \param port     service name or port number; must not be NULL. Copied.
 * \param backlog  as for listen(2); 0 or negative takes `SOMAXCONN`.
 * \return a future with the listening fd, or -1 with `errno`: the error of
 *         the last address tried (EADDRINUSE, EACCES, EADDRNOTAVAIL, ...),
 *         and as for async_tcp_connect() (ENXIO, EAGAIN, EINVAL, EIO, ...).
 *
 * Runs as a task of its own; callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_tcp_listen(const char *host, const char *port,
                                              int backlog) ASYNC_WARN_UNUSED;

/**
 * Connects a Unix-domain stream socket to `path`.
 *
 * A path starting with '@' names a socket in Linux's abstract namespace
 * (the '@' stands for the leading zero byte). While the listener's backlog
 * is full the connect is retried (every few milliseconds) rather than failed
 * with EAGAIN, as a blocking connect(2) would wait. The socket is
 * non-blocking and close-on-exec.
 *
 * \param path  the socket's path; copied.
 * \return a future with the connected fd, or -1 with `errno`: ENOENT,
 *         ECONNREFUSED (nobody listens), EACCES, ENAMETOOLONG (longer than
 *         `sun_path`), EINVAL (`path` NULL or empty), ENOTDIR, ECANCELED, EMFILE.
 *
 * Runs as a task of its own; callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_unix_connect(const char *path) ASYNC_WARN_UNUSED;

/**
 * Opens a listening Unix-domain stream socket at `path`.
 *
 * Never waits. An existing file at `path` is not removed: that is EADDRINUSE
 * (unlink(2) a stale socket first). A path starting with '@' is abstract, as
 * in async_unix_connect(). The socket is non-blocking and close-on-exec.
 *
 * \param path     the socket's path; copied.
 * \param backlog  as for listen(2); 0 or negative takes `SOMAXCONN`.
 * \return a future with the listening fd, or -1 with `errno`: EADDRINUSE,
 *         EACCES, ENOENT (no such directory), ENAMETOOLONG, EINVAL (`path`
 *         NULL or empty), EMFILE.
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_unix_listen(const char *path, int backlog) ASYNC_WARN_UNUSED;

/** async_serve_opts_t.on_stop: a stopped server waits for its connections to end. */
#define ASYNC_SERVE_WAIT 0
/** async_serve_opts_t.on_stop: a stopped server cancels its connections, then waits for them. */
#define ASYNC_SERVE_CANCEL 1

/** Options of async_tcp_serve(); all-zero (or NULL) gives the defaults. */
typedef struct async_serve_opts {
    /** ASYNC_SERVE_WAIT (the default) or ASYNC_SERVE_CANCEL. */
    int on_stop;
    /** Stack size of each connection's task; 0 for the runtime's default. */
    size_t stack_size;
} async_serve_opts_t;

/** A connection handler: runs in its own task with the accepted socket. */
typedef intptr_t (*async_serve_fn)(int fd, void *arg);

/**
 * Serves connections on the listening socket `fd`: accepts them and runs
 * `handler(conn_fd, arg)` for each in a task of its own.
 *
 * The accept loop every server needs, with its error handling:
 * - EMFILE, ENFILE, ENOBUFS and ENOMEM (from accept(2), or no memory for a
 *   connection's task) back off: the loop sleeps 5 ms, doubling up to 1 s
 *   while the error lasts, instead of spinning on a listener that stays
 *   readable; the pending connection is accepted once an fd is free.
 * - ECONNABORTED, EINTR, EPROTO, EPERM and the network errors accept(2) may
 *   pass on for one connection are retried at once.
 * - Any other error (EBADF, EINVAL: the listener is unusable) stops the server.
 *
 * Each connection is independent: whatever its handler returns, and however
 * long it runs, the others and the accept loop go on. When the handler
 * returns, the connection's fd is closed (do not close it yourself; shutdown(2)
 * is fine). Accepted sockets are non-blocking and close-on-exec. TCP_NODELAY:
 * when the listener has it, every accepted socket gets it (set it on the
 * listener with setsockopt(2) before serving; Linux also passes it on by
 * itself); otherwise accepted sockets keep the kernel's default (Nagle on).
 * Also serves Unix-domain stream listeners. The tasks are named for
 * async_dump() and stall reports: the accept loop `serve fd N` (the listener)
 * and each connection `conn fd N` (its socket).
 *
 * Stopping: cancel the returned future. The server stops accepting, then
 * waits for its connections to end (ASYNC_SERVE_WAIT) or cancels them first
 * (ASYNC_SERVE_CANCEL: their pending and later awaits fail with ECANCELED),
 * and settles when the last one has ended. The listening fd stays yours:
 * close it after the future settles.
 *
 * \param fd       a listening stream socket; made non-blocking if it is not.
 * \param handler  the connection handler; must not be NULL. Its result is
 *                 ignored.
 * \param arg      passed to every handler call.
 * \param opts     options, or NULL for the defaults.
 * \return a future that settles once the server has stopped: -1 with `errno`
 *         ECANCELED (it was cancelled), or the accept error that stopped it.
 *         A future already failed with EBADF (`fd` negative or not open),
 *         ENOTSOCK, EINVAL (not listening, `handler` NULL, a bad `on_stop`
 *         or a stack size over 1 GiB); NULL with ENOMEM.
 *
 * Callable from a task or any thread.
 *
 * \code
 * static intptr_t echo(int fd, void *arg) {
 *     char buf[4096];
 *     ssize_t n;
 *     while ((n = async_await(async_recv(fd, buf, sizeof buf, 0))) > 0)
 *         if (async_await(async_send(fd, buf, (size_t)n, 0)) < 0) return -1;
 *     return 0;
 * }
 * int lfd = async_await(async_tcp_listen(NULL, "7000", 0));
 * async_future_t *server = async_tcp_serve(lfd, echo, NULL, NULL);
 * ...
 * async_cancel(server);            // stop: waits for open connections
 * async_await(server);             // -1, ECANCELED
 * async_await(async_close(lfd));
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_tcp_serve(int fd, async_serve_fn handler, void *arg,
                                             const async_serve_opts_t *opts) ASYNC_WARN_UNUSED;

/** @} */

#ifdef __cplusplus
}
#endif
#endif
