/* Small socket helpers shared by the net suites: loopback addresses,
 * listeners made with plain libc calls (so that a test of one asyncstd call
 * does not lean on another), and ports. Assertions here run on the test's
 * own thread only. */
#ifndef ASYNCSTD_TESTS_NET_HELPERS_H
#define ASYNCSTD_TESTS_NET_HELPERS_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "helpers.h"

static inline int sock_type(int fd) {
    int t = -1;
    socklen_t len = sizeof t;
    getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &len);
    return t;
}

static inline void close_pair(int sv[2]) {
    close(sv[0]);
    close(sv[1]);
}

static inline struct sockaddr_in loopback4(int port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static inline struct sockaddr_storage loopback(int family, int port) {
    struct sockaddr_storage s;
    memset(&s, 0, sizeof s);
    if (family == AF_INET) {
        struct sockaddr_in a = loopback4(port);
        memcpy(&s, &a, sizeof a);
    } else {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
        a.sin6_addr = in6addr_loopback;
        memcpy(&s, &a, sizeof a);
    }
    return s;
}

static inline int port_of(const struct sockaddr_storage *s) {
    if (s->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)s)->sin_port);
    if (s->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)s)->sin6_port);
    return -1;
}

static inline int local_port(int fd) {
    struct sockaddr_storage s;
    socklen_t len = sizeof s;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&s, &len), 0, "getsockname: %s", ename(errno));
    return port_of(&s);
}

static inline int peer_port(int fd) {
    struct sockaddr_storage s;
    socklen_t len = sizeof s;
    cr_assert_eq(getpeername(fd, (struct sockaddr *)&s, &len), 0, "getpeername: %s", ename(errno));
    return port_of(&s);
}

/* A bound socket on the loopback address, listening if a stream; non-blocking. */
static inline int listener(int family, int type) {
    int fd = socket(family, type | SOCK_NONBLOCK, 0);
    cr_assert_geq(fd, 0, "socket: %s", ename(errno));
    struct sockaddr_storage a = loopback(family, 0);
    socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, len), 0, "bind: %s", ename(errno));
    if (type == SOCK_STREAM) cr_assert_eq(listen(fd, 128), 0);
    return fd;
}

static inline struct sockaddr_un unix_addr(const char *path) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    return a;
}

/* A fresh path in /tmp for a Unix socket of this test process. */
static inline void unix_path(char *path, size_t size, const char *tag) {
    static int seq;
    snprintf(path, size, "/tmp/asyncstd-net-%d-%s-%d", (int)getpid(), tag, seq++);
    unlink(path);
}

/* A Unix socket bound at a fresh path, listening if a stream or seqpacket. */
static inline int unix_listener(char *path, size_t size, int type) {
    unix_path(path, size, "l");
    int fd = socket(AF_UNIX, type | SOCK_NONBLOCK, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_un a = unix_addr(path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0, "bind %s: %s", path, ename(errno));
    if (type != SOCK_DGRAM) cr_assert_eq(listen(fd, 128), 0);
    return fd;
}

/* A blocking libc connect to the loopback address. */
static inline int connect_blocking(int family, int port) {
    int fd = socket(family, SOCK_STREAM, 0);
    struct sockaddr_storage a = loopback(family, port);
    socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, len), 0, "connect: %s", ename(errno));
    return fd;
}

/* A TCP listener whose accept queue is full, so that a new connect to it stays
 * pending (the kernel drops its SYNs). `held` keeps the four queued or pending
 * client sockets. Returns the port. */
static inline int full_listener(int *lfd, int held[4]) {
    *lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = loopback4(0);
    cr_assert_eq(bind(*lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(*lfd, 0), 0);
    a = loopback4(local_port(*lfd));
    for (int i = 0; i < 4; i++) {
        held[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int r = connect(held[i], (struct sockaddr *)&a, sizeof a);
        cr_assert(r == 0 || errno == EINPROGRESS);
        struct pollfd p = {.fd = held[i], .events = POLLOUT};
        poll(&p, 1, 50);
    }
    return ntohs(a.sin_port);
}

#endif
