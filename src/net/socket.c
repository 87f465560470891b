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

async_future_t *async_socket(int domain, int type, int protocol) {
    int fd = socket(domain, type | SOCK_NONBLOCK, protocol);
    if (fd < 0) return async__future_failed(errno);
    async__io_fd_new(fd);
    async_future_t *f = async__future_done(fd);
    if (!f) { /* the caller cannot learn the fd: do not leak it */
        close(fd);
        errno = ENOMEM;
    }
    return f;
}

async_future_t *async_socketpair(int domain, int type, int protocol, int sv[2]) {
    /* the kernel checks the other arguments first, and makes no sockets */
    if (!sv) return async__future_result(socketpair(domain, type | SOCK_NONBLOCK, protocol, NULL));
    int pair[2];
    if (socketpair(domain, type | SOCK_NONBLOCK, protocol, pair) < 0)
        return async__future_failed(errno);
    async__io_fd_new(pair[0]);
    async__io_fd_new(pair[1]);
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
    return async__future_result(bind(sockfd, addr, addrlen));
}

async_future_t *async_listen(int sockfd, int backlog) {
    return async__future_result(listen(sockfd, backlog));
}

async_future_t *async_shutdown(int sockfd, int how) {
    return async__future_result(shutdown(sockfd, how));
}
