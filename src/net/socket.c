/* The socket calls that never wait: socket, socketpair, bind, listen and
 * shutdown run inline and return a settled future (async_close, one for every
 * kind of fd, is the fs module's). Also the module's O_NONBLOCK policy (see
 * net.h, "Non-blocking mode"). */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

/* One fcntl for the usual case, a socket already non-blocking. A non-socket
 * is refused before its flags are touched: accept and connect would fail on
 * it anyway, and O_NONBLOCK on a pipe or tty would surprise its other users. */
int async__net_set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return errno;
    if (fl & O_NONBLOCK) return 0;
    int type;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) return errno;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? errno : 0;
}

/* ---- what is known of an fd ------------------------------------------------
 * One byte per fd number (fdtable.c), kept for the process's life. */
static async__fd_table_t fd_table = ASYNC_FD_TABLE_INIT;

void async__net_mark_tcp(int fd, bool tcp) {
    atomic_uchar *t = fd >= 0 ? async__fd_table_get(&fd_table, sizeof *t) : NULL;
    if (t && (size_t)fd < fd_table.len) atomic_store_explicit(&t[fd], tcp, memory_order_relaxed);
}

bool async__net_is_tcp(int fd) {
    atomic_uchar *t = async__fd_table_peek(&fd_table);
    return t && fd >= 0 && (size_t)fd < fd_table.len &&
           atomic_load_explicit(&t[fd], memory_order_relaxed);
}

/* The result of an inline call as a settled future. */
static async_future_t *settled(int r) {
    return r < 0 ? async__future_failed(errno) : async__future_done(r);
}

async_future_t *async_socket(int domain, int type, int protocol) {
    int fd = socket(domain, type | SOCK_NONBLOCK, protocol);
    if (fd < 0) return async__future_failed(errno);
    async__io_fd_new(fd);
    async__net_mark_tcp(fd, (domain == AF_INET || domain == AF_INET6) &&
                                (type & 0xf) == SOCK_STREAM &&
                                (protocol == 0 || protocol == IPPROTO_TCP));
    async_future_t *f = async__future_done(fd);
    if (!f) { /* the caller cannot learn the fd: do not leak it */
        close(fd);
        errno = ENOMEM;
    }
    return f;
}

async_future_t *async_socketpair(int domain, int type, int protocol, int sv[2]) {
    if (!sv) return async__future_failed(EFAULT);
    int pair[2];
    if (socketpair(domain, type | SOCK_NONBLOCK, protocol, pair) < 0)
        return async__future_failed(errno);
    async__io_fd_new(pair[0]);
    async__io_fd_new(pair[1]);
    async__net_mark_tcp(pair[0], false);
    async__net_mark_tcp(pair[1], false);
    async_future_t *f = async__future_done(0);
    if (!f) { /* the caller cannot learn the fds: do not leak them */
        close(pair[0]);
        close(pair[1]);
        errno = ENOMEM;
        return NULL;
    }
    sv[0] = pair[0];
    sv[1] = pair[1];
    return f;
}

async_future_t *async_bind(int sockfd, const struct sockaddr *addr, socklen_t addrlen) {
    /* the kernel gives EFAULT for NULL too, but sanitizers' interceptors would read it first */
    if (!addr && addrlen) return async__future_failed(EFAULT);
    return settled(bind(sockfd, addr, addrlen));
}

async_future_t *async_listen(int sockfd, int backlog) { return settled(listen(sockfd, backlog)); }

async_future_t *async_shutdown(int sockfd, int how) { return settled(shutdown(sockfd, how)); }
