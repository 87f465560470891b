/* Tests of the send and receive families (net.h): send, recv, sendto,
 * recvfrom, sendmsg, recvmsg over stream, datagram and seqpacket sockets:
 * partial and whole transfers, MSG_WAITALL and MSG_DONTWAIT, fd passing,
 * closed peers and resets, bad input, cancellation and time-outs, and
 * callers on plain threads. */
#include "helpers.h" /* first: it sets _GNU_SOURCE */
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/uio.h>


#include "net_helpers.h"

TestSuite(net_io, .timeout = 30);

static void pair(int type, int sv[2]) {
    ASSERT_VAL(async_await(async_socketpair(AF_UNIX, type, 0, sv)), 0);
}

/* A connected TCP pair over loopback: sv[0] the client, sv[1] the accepted end. */
static void tcp_pair(int family, int sv[2]) {
    int lfd = listener(family, SOCK_STREAM);
    sv[0] = connect_blocking(family, local_port(lfd));
    sv[1] = (int)async_await(async_accept(lfd, NULL, NULL));
    cr_assert_geq(sv[1], 0);
    close(lfd);
}

/* ---- send, recv ------------------------------------------------------------------ */

Test(net_io, send_and_recv, .init = rt_start) {
    int sv[2];
    pair(SOCK_STREAM, sv);
    ASSERT_VAL(async_await(async_send(sv[0], "hello", 5, 0)), 5);
    char b[16] = {0};
    ASSERT_VAL(async_await(async_recv(sv[1], b, sizeof b, MSG_PEEK)), 5);
    ASSERT_VAL(async_await(async_recv(sv[1], b, 3, 0)), 3);
    cr_assert_eq(memcmp(b, "hel", 3), 0);
    ASSERT_VAL(async_await(async_recv(sv[1], b, sizeof b, 0)), 2); /* the rest, not a full buffer */
    cr_assert_eq(memcmp(b, "lo", 2), 0);
    ASSERT_VAL(async_await(async_send(sv[0], "", 0, 0)), 0);
    close_pair(sv);
    rt_stop();
}

struct later {
    int fd;
    int delay_ms;
    const char *data;
    size_t len;
};

static void *send_later(void *arg) {
    struct later *l = arg;
    sleep_ms(l->delay_ms);
    if (send(l->fd, l->data, l->len, MSG_NOSIGNAL) != (ssize_t)l->len) CHECK(!"send");
    return NULL;
}

/* recv waits for data, on a plain thread and in a task. */
static intptr_t recv_task(void *arg) {
    int fd = (int)(intptr_t)arg;
    char b[32];
    intptr_t n = async_await(async_recv(fd, b, sizeof b, 0));
    CHECK(n == 4 && memcmp(b, "ping", 4) == 0);
    return n;
}

Test(net_io, recv_waits_for_data, .init = rt_start) {
    int sv[2];
    tcp_pair(AF_INET, sv);
    struct later l = {sv[0], 30, "ping", 4};
    pthread_t t = thread_start(send_later, &l);
    char b[32];
    double t0 = now_ms();
    ASSERT_VAL(async_await(async_recv(sv[1], b, sizeof b, 0)), 4);
    cr_assert_geq(now_ms() - t0, 20);
    pthread_join(t, NULL);

    async_future_t *f = async_spawn(recv_task, (void *)(intptr_t)sv[1]);
    t = thread_start(send_later, &l);
    ASSERT_VAL(async_await(f), 4);
    pthread_join(t, NULL);
    close_pair(sv);
    rt_stop();
}

/* A send bigger than the socket buffers waits and then sends it all. */
static intptr_t slow_reader(void *arg) {
    int fd = (int)(intptr_t)arg;
    static char sink[65536];
    size_t total = 0;
    for (;;) {
        intptr_t n = async_await(async_recv(fd, sink, sizeof sink, 0));
        if (n <= 0) break;
        total += (size_t)n;
        if (total < (1u << 20)) async_await(async_usleep(1000)); /* slowly at first */
    }
    return (intptr_t)total;
}

Test(net_io, send_waits_until_everything_is_sent, .init = rt_start) {
    int sv[2];
    tcp_pair(AF_INET, sv);
    size_t len = 8u << 20;
    char *big = malloc(len);
    for (size_t i = 0; i < len; i++) big[i] = (char)i;
    async_future_t *r = async_spawn(slow_reader, (void *)(intptr_t)sv[1]);
    ASSERT_VAL(async_await(async_send(sv[0], big, len, 0)), len);
    shutdown(sv[0], SHUT_WR);
    ASSERT_VAL(async_await(r), len);
    free(big);
    close_pair(sv);
    rt_stop();
}

Test(net_io, dontwait_never_waits, .init = rt_start) {
    int sv[2];
    pair(SOCK_STREAM, sv);
    char b[16];
    ASSERT_ERR(async_await(async_recv(sv[1], b, sizeof b, MSG_DONTWAIT)), EAGAIN);
    size_t len = 16u << 20;
    char *big = calloc(1, len);
    intptr_t n = async_await(async_send(sv[0], big, len, MSG_DONTWAIT));
    cr_assert(n > 0 && (size_t)n < len, "a partial count: %jd", (intmax_t)n);
    ASSERT_ERR(async_await(async_send(sv[0], big, len, MSG_DONTWAIT)), EAGAIN);
    free(big);
    close_pair(sv);
    rt_stop();
}

Test(net_io, waitall_waits_for_the_whole_length, .init = rt_start) {
    int sv[2];
    tcp_pair(AF_INET6, sv);
    struct later l = {sv[0], 20, "abcdef", 6};
    cr_assert_eq(send(sv[0], "xy", 2, 0), 2);
    pthread_t t = thread_start(send_later, &l);
    char b[8];
    ASSERT_VAL(async_await(async_recv(sv[1], b, 8, MSG_WAITALL)), 8);
    cr_assert_eq(memcmp(b, "xyabcdef", 8), 0);
    pthread_join(t, NULL);
    /* short at end of stream */
    cr_assert_eq(send(sv[0], "12", 2, 0), 2);
    shutdown(sv[0], SHUT_WR);
    ASSERT_VAL(async_await(async_recv(sv[1], b, 8, MSG_WAITALL)), 2);
    ASSERT_VAL(async_await(async_recv(sv[1], b, 8, MSG_WAITALL)), 0);
    close_pair(sv);
    /* datagrams: one at a time, never glued */
    pair(SOCK_DGRAM, sv);
    cr_assert_eq(send(sv[0], "one", 3, 0), 3);
    cr_assert_eq(send(sv[0], "two", 3, 0), 3);
    ASSERT_VAL(async_await(async_recv(sv[1], b, 8, MSG_WAITALL)), 3);
    close_pair(sv);
    rt_stop();
}

Test(net_io, end_of_stream_and_reset, .init = rt_start) {
    int sv[2];
    tcp_pair(AF_INET, sv);
    char b[8];
    close(sv[0]);
    ASSERT_VAL(async_await(async_recv(sv[1], b, sizeof b, 0)), 0);
    close(sv[1]);

    tcp_pair(AF_INET, sv);
    struct linger lg = {1, 0}; /* close sends a reset */
    cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    async_future_t *f = async_recv(sv[1], b, sizeof b, 0);
    sleep_ms(10);
    close(sv[0]);
    ASSERT_ERR(async_await(f), ECONNRESET);
    close(sv[1]);

    tcp_pair(AF_INET, sv);
    cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(sv[0]);
    sleep_ms(10);
    errno = 0;
    intptr_t r = async_await(async_send(sv[1], "x", 1, 0));
    cr_assert(r == -1 && (errno == ECONNRESET || errno == EPIPE), "%jd %s", (intmax_t)r,
              ename(errno));
    close(sv[1]);
    rt_stop();
}

Test(net_io, bad_input, .init = rt_start) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int closed = dup(p[0]);
    close(closed);
    char b[4] = {0};
    ASSERT_ERR(async_await(async_recv(-1, b, 4, 0)), EBADF);
    ASSERT_ERR(async_await(async_recv(closed, b, 4, 0)), EBADF);
    ASSERT_ERR(async_await(async_recv(p[0], b, 4, 0)), ENOTSOCK);
    ASSERT_ERR(async_await(async_send(-1, b, 4, 0)), EBADF);
    ASSERT_ERR(async_await(async_send(closed, b, 4, 0)), EBADF);
    ASSERT_ERR(async_await(async_send(p[1], b, 4, 0)), ENOTSOCK);
    int sv[2];
    pair(SOCK_STREAM, sv);
    /* as recv(2): a bad buffer or address length is found once there is data */
    cr_assert_eq(send(sv[1], "data", 4, 0), 4);
    QUIETLY(ASSERT_ERR(async_await(async_recv(sv[0], NULL, 4, 0)), EFAULT));
    QUIETLY(ASSERT_ERR(async_await(async_send(sv[0], NULL, 4, 0)), EFAULT));
    QUIETLY(ASSERT_ERR(async_await(async_recvfrom(sv[0], b, 4, 0, (struct sockaddr *)b, NULL)),
                       EFAULT));
    ASSERT_ERR(async_await(async_recv(sv[0], b, 4, MSG_DONTWAIT)), EAGAIN); /* it took them */
    /* no address with a length: the kernel ignores the length (a plain send) */
    ASSERT_VAL(async_await(async_sendto(sv[0], b, 4, 0, NULL, 16)), 4);
    cr_assert_eq(sendto(sv[0], b, 4, 0, NULL, 16), 4);
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_ERR(sendto(udp, b, 4, 0, NULL, 16), EDESTADDRREQ);
    ASSERT_ERR(async_await(async_sendto(udp, b, 4, 0, NULL, 16)), EDESTADDRREQ);
    struct iovec iov = {b, 4};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_namelen = 16};
    ASSERT_ERR(sendmsg(udp, &m, 0), EDESTADDRREQ);
    ASSERT_ERR(async_await(async_sendmsg(udp, &m, 0)), EDESTADDRREQ);
    cr_assert_eq(sendmsg(sv[0], &m, 0), 4);
    ASSERT_VAL(async_await(async_sendmsg(sv[0], &m, 0)), 4);
    close(udp);
    QUIETLY(ASSERT_ERR(async_await(async_sendto(sv[0], b, 4, 0, (struct sockaddr *)b, 100000)),
                       EINVAL));
    close_pair(sv);
    int fd = (int)async_await(async_socket(AF_INET, SOCK_STREAM, 0));
    ASSERT_ERR(async_await(async_recv(fd, b, 4, 0)), ENOTCONN);
    ASSERT_ERR(async_await(async_send(fd, b, 4, 0)), EPIPE);
    close(fd);
    close(p[0]);
    close(p[1]);
    rt_stop();
}

Test(net_io, cancel_and_timeout_lose_no_data, .init = rt_start) {
    int sv[2];
    tcp_pair(AF_INET, sv);
    char b[8];
    ASSERT_ERR(async_await_timeout(async_recv(sv[1], b, sizeof b, 0), 30), ETIMEDOUT);
    async_future_t *f = async_recv(sv[1], b, sizeof b, 0);
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    cr_assert_eq(send(sv[0], "data", 4, 0), 4);
    ASSERT_VAL(async_await_timeout(async_recv(sv[1], b, sizeof b, 0), 2000), 4);
    cr_assert_eq(memcmp(b, "data", 4), 0);

    /* a MSG_WAITALL receive cancelled after part of its length came gives
     * that part, which is gone from the socket */
    memset(b, 0, sizeof b);
    f = async_recv(sv[1], b, sizeof b, MSG_WAITALL);
    cr_assert_eq(send(sv[0], "abc", 3, 0), 3);
    sleep_ms(20);
    cr_assert(!async_future_settled(f));
    async_cancel(f);
    ASSERT_VAL(async_await(f), 3);
    cr_assert_eq(memcmp(b, "abc", 3), 0);

    /* a send waiting on a full buffer is cancelled too: what went out is
     * its result, as write(2) interrupted after some bytes returns the count */
    size_t len = 32u << 20;
    char *big = calloc(1, len);
    f = async_send(sv[0], big, len, 0);
    sleep_ms(20);
    cr_assert(!async_future_settled(f));
    async_cancel(f);
    intptr_t sent = async_await(f);
    cr_assert(sent > 0 && (size_t)sent < len, "sent %jd of %zu", (intmax_t)sent, len);
    /* and the receiver gets exactly that many bytes */
    size_t got = 0;
    char *sink = malloc(1 << 20);
    shutdown(sv[0], SHUT_WR);
    for (intptr_t n; (n = async_await(async_recv(sv[1], sink, 1 << 20, 0))) > 0;) got += (size_t)n;
    cr_assert_eq(got, (size_t)sent);
    free(sink);
    free(big);
    close_pair(sv);
    rt_stop();
}

/* Many tasks on both ends of many pairs, across workers: nothing lost or mixed. */
static intptr_t pinger(void *arg) {
    int fd = (int)(intptr_t)arg;
    uint32_t v = 0;
    for (int i = 0; i < 200; i++) {
        uint32_t got = 0;
        CHECK_EQ(async_await(async_send(fd, &v, sizeof v, 0)), sizeof v);
        CHECK_EQ(async_await(async_recv(fd, &got, sizeof got, MSG_WAITALL)), sizeof got);
        CHECK_EQ(got, v + 1);
        v = got + 1;
    }
    shutdown(fd, SHUT_WR);
    return (intptr_t)v;
}

static intptr_t ponger(void *arg) {
    int fd = (int)(intptr_t)arg;
    intptr_t rounds = 0;
    uint32_t got;
    while (async_await(async_recv(fd, &got, sizeof got, MSG_WAITALL)) == sizeof got) {
        got++;
        CHECK_EQ(async_await(async_send(fd, &got, sizeof got, 0)), sizeof got);
        rounds++;
    }
    return rounds;
}

Test(net_io, many_pairs_ping_pong_across_workers, .init = rt_start) {
    enum { PAIRS = 20 };
    int sv[PAIRS][2];
    async_future_t *f[2 * PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        pair(SOCK_STREAM, sv[i]);
        f[2 * i] = async_spawn(pinger, (void *)(intptr_t)sv[i][0]);
        f[2 * i + 1] = async_spawn(ponger, (void *)(intptr_t)sv[i][1]);
    }
    for (int i = 0; i < PAIRS; i++) {
        ASSERT_VAL(async_await(f[2 * i]), 400);
        ASSERT_VAL(async_await(f[2 * i + 1]), 200);
        close_pair(sv[i]);
    }
    rt_stop();
}

/* ---- sendto, recvfrom ------------------------------------------------------------ */

static void udp_round_trip(int family) {
    int a = listener(family, SOCK_DGRAM);
    int b = (int)async_await(async_socket(family, SOCK_DGRAM, 0));
    struct sockaddr_storage to = loopback(family, local_port(a));
    socklen_t tolen = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    ASSERT_VAL(async_await(async_sendto(b, "datagram", 8, 0, (struct sockaddr *)&to, tolen)), 8);
    char buf[64];
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    ASSERT_VAL(
        async_await(async_recvfrom(a, buf, sizeof buf, 0, (struct sockaddr *)&from, &fromlen)), 8);
    cr_assert_eq(memcmp(buf, "datagram", 8), 0);
    cr_assert_eq(fromlen, tolen);
    cr_assert_eq(from.ss_family, family);
    cr_assert_eq(port_of(&from), local_port(b));
    /* a reply to the sender's address, read by a waiting recvfrom without address */
    async_future_t *f = async_recvfrom(b, buf, sizeof buf, 0, NULL, NULL);
    ASSERT_VAL(async_await(async_sendto(a, "re", 2, 0, (struct sockaddr *)&from, fromlen)), 2);
    ASSERT_VAL(async_await(f), 2);
    /* a datagram larger than the buffer is cut; MSG_TRUNC gives its real size */
    ASSERT_VAL(async_await(async_sendto(b, "0123456789", 10, 0, (struct sockaddr *)&to, tolen)),
               10);
    ASSERT_VAL(async_await(async_recvfrom(a, buf, 4, MSG_TRUNC, NULL, NULL)), 10);
    close(a);
    close(b);
}

Test(net_io, udp_ipv4, .init = rt_start) {
    udp_round_trip(AF_INET);
    rt_stop();
}

Test(net_io, udp_ipv6, .init = rt_start) {
    udp_round_trip(AF_INET6);
    rt_stop();
}

Test(net_io, unix_datagrams, .init = rt_start) {
    char path[64];
    int a = unix_listener(path, sizeof path, SOCK_DGRAM);
    int b = (int)async_await(async_socket(AF_UNIX, SOCK_DGRAM, 0));
    struct sockaddr_un to = unix_addr(path);
    ASSERT_VAL(async_await(async_sendto(b, "unix", 4, 0, (struct sockaddr *)&to, sizeof to)), 4);
    char buf[16];
    ASSERT_VAL(async_await(async_recvfrom(a, buf, sizeof buf, 0, NULL, NULL)), 4);
    /* to an address whose queue is full: EAGAIN, not a wait that would never end */
    int n = 0;
    errno = 0;
    while (n < 100000 &&
           async_await(async_sendto(b, "fill", 4, 0, (struct sockaddr *)&to, sizeof to)) == 4)
        n++;
    cr_assert_eq(errno, EAGAIN, "after %d datagrams: %s", n, ename(errno));
    ASSERT_ERR(async_await(async_sendto(b, "x", 1, 0, (struct sockaddr *)&to, sizeof to)), EAGAIN);
    struct sockaddr_un nowhere = unix_addr("/nonexistent/sock");
    ASSERT_ERR(async_await(async_sendto(b, "x", 1, 0, (struct sockaddr *)&nowhere, sizeof nowhere)),
               ENOENT);
    close(a);
    close(b);
    unlink(path);
    rt_stop();
}

/* ---- sendmsg, recvmsg ------------------------------------------------------------ */

Test(net_io, sendmsg_recvmsg_scatter_gather, .init = rt_start) {
    int sv[2];
    pair(SOCK_SEQPACKET, sv);
    char a[] = "scat", b[] = "ter-", c[] = "gather";
    struct iovec out[3] = {{a, 4}, {b, 4}, {c, 6}};
    struct msghdr m = {.msg_iov = out, .msg_iovlen = 3};
    async_future_t *f = async_sendmsg(sv[0], &m, 0);
    memset(&m, 0, sizeof m); /* copied: the caller may reuse it at once */
    memset(out, 0, sizeof out);
    ASSERT_VAL(async_await(f), 14);
    char x[5] = {0}, y[32] = {0};
    struct iovec in[2] = {{x, 4}, {y, sizeof y}};
    struct msghdr r = {.msg_iov = in, .msg_iovlen = 2};
    ASSERT_VAL(async_await(async_recvmsg(sv[1], &r, 0)), 14);
    cr_assert_str_eq(x, "scat");
    cr_assert_str_eq(y, "ter-gather");
    cr_assert_eq(r.msg_flags & MSG_TRUNC, 0);
    close_pair(sv);
    rt_stop();
}

/* Sends `fd` over `sock` with one data byte. */
static intptr_t send_fd(int sock, int fd) {
    char byte = 'F';
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    return async_await(async_sendmsg(sock, &m, 0));
}

/* Receives one fd from `sock`; -1 if none came. */
static int recv_fd(int sock, int flags) {
    char byte;
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    if (async_await(async_recvmsg(sock, &m, flags)) != 1) return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

static intptr_t recv_fd_task(void *arg) { return recv_fd((int)(intptr_t)arg, MSG_CMSG_CLOEXEC); }

Test(net_io, passing_fds_over_unix_sockets, .init = rt_start) {
    int sv[2], p[2];
    pair(SOCK_STREAM, sv);
    cr_assert_eq(pipe(p), 0);
    async_future_t *f = async_spawn(recv_fd_task, (void *)(intptr_t)sv[1]); /* waits first */
    sleep_ms(10);
    ASSERT_VAL(send_fd(sv[0], p[1]), 1);
    int got = (int)async_await(f);
    cr_assert_geq(got, 0);
    cr_assert_neq(got, p[1]);
    cr_assert(fcntl(got, F_GETFD) & FD_CLOEXEC);
    cr_assert_eq(write(got, "via fd", 6), 6); /* the received fd is the pipe's write end */
    char b[8];
    cr_assert_eq(read(p[0], b, sizeof b), 6);
    close(got);
    /* the received fd is usable with the waiting calls too */
    int sv2[2];
    pair(SOCK_STREAM, sv2);
    ASSERT_VAL(send_fd(sv[0], sv2[1]), 1);
    got = recv_fd(sv[1], 0);
    cr_assert_geq(got, 0);
    close(sv2[1]);
    struct later l = {sv2[0], 20, "late", 4};
    pthread_t t = thread_start(send_later, &l);
    ASSERT_VAL(async_await(async_recv(got, b, sizeof b, 0)), 4);
    pthread_join(t, NULL);
    close(got);
    close(sv2[0]);
    /* passing a closed fd is EBADF */
    ASSERT_ERR(send_fd(sv[0], 1000), EBADF);
    close(p[0]);
    close(p[1]);
    close_pair(sv);
    rt_stop();
}

Test(net_io, sendmsg_sends_everything_and_the_fds_once, .init = rt_start) {
    int sv[2], p[2];
    pair(SOCK_STREAM, sv);
    cr_assert_eq(pipe(p), 0);
    size_t len = 4u << 20;
    char *big = malloc(len);
    for (size_t i = 0; i < len; i++) big[i] = (char)(i * 7);
    struct iovec iov[3] = {
        {big, 1000}, {big + 1000, len / 2}, {big + 1000 + len / 2, len / 2 - 1000}};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr m = {
        .msg_iov = iov, .msg_iovlen = 3, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[0], sizeof(int));
    async_future_t *f = async_sendmsg(sv[0], &m, 0);
    char *in = malloc(len);
    size_t got = 0;
    int fds = 0;
    while (got < len) {
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } rc;
        struct iovec ri = {in + got, len - got};
        struct msghdr r = {.msg_iov = &ri,
                           .msg_iovlen = 1,
                           .msg_control = rc.buf,
                           .msg_controllen = sizeof rc.buf};
        intptr_t n = async_await(async_recvmsg(sv[1], &r, 0));
        cr_assert_gt(n, 0);
        for (struct cmsghdr *h = CMSG_FIRSTHDR(&r); h; h = CMSG_NXTHDR(&r, h)) {
            int fd;
            memcpy(&fd, CMSG_DATA(h), sizeof fd);
            close(fd);
            fds++;
        }
        got += (size_t)n;
    }
    ASSERT_VAL(async_await(f), len);
    cr_assert_eq(memcmp(in, big, len), 0);
    cr_assert_eq(fds, 1);
    free(in);
    free(big);
    close(p[0]);
    close(p[1]);
    close_pair(sv);
    rt_stop();
}

Test(net_io, sendmsg_recvmsg_bad_input, .init = rt_start) {
    int sv[2];
    pair(SOCK_STREAM, sv);
    QUIETLY(ASSERT_ERR(async_await(async_sendmsg(sv[0], NULL, 0)), EFAULT));
    QUIETLY(ASSERT_ERR(async_await(async_recvmsg(sv[0], NULL, 0)), EFAULT));
    struct iovec iov = {"x", 1};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = (size_t)IOV_MAX + 1};
    QUIETLY(ASSERT_ERR(async_await(async_sendmsg(sv[0], &m, 0)), EMSGSIZE));
    m.msg_iovlen = 1;
    m.msg_iov = NULL;
    QUIETLY(ASSERT_ERR(async_await(async_sendmsg(sv[0], &m, 0)), EFAULT));
    m.msg_iov = &iov;
    char junk[16] = {0};
    m.msg_control = junk;
    m.msg_controllen = sizeof junk; /* not a valid cmsghdr */
    ASSERT_ERR(async_await(async_sendmsg(sv[0], &m, 0)), EINVAL);
    ASSERT_ERR(async_await(async_sendmsg(-1, &m, 0)), EBADF);
    ASSERT_ERR(async_await(async_recvmsg(-1, &m, 0)), EBADF);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    m.msg_control = NULL;
    m.msg_controllen = 0;
    ASSERT_ERR(async_await(async_recvmsg(p[0], &m, 0)), ENOTSOCK);
    ASSERT_ERR(async_await(async_recvmsg(sv[1], &m, MSG_DONTWAIT)), EAGAIN);
    async_future_t *f = async_recvmsg(sv[1], &m, 0);
    ASSERT_ERR(async_await_timeout(f, 20), ETIMEDOUT);
    close(p[0]);
    close(p[1]);
    close_pair(sv);
    rt_stop();
}

/* TCP sockets from the helpers are known TCP: a short read lets the next recv park
 * without a read (the core's `drained`). Data arriving at every moment around that
 * must still wake the reader. */
static atomic_int got_msgs;

static intptr_t short_reader(void *arg) {
    int fd = (int)(intptr_t)arg;
    char b[64];
    for (int i = 0; i < 1000; i++) {
        intptr_t n = async_await(async_recv(fd, b, sizeof b, 0));
        CHECK_EQ(n, 4);
        atomic_fetch_add(&got_msgs, 1);
    }
    return 0;
}

Test(net_io, tcp_short_reads_never_miss_later_data, .init = rt_start) {
    int lfd = (int)async_await(async_tcp_listen("127.0.0.1", "0", 1));
    char port[8];
    snprintf(port, sizeof port, "%d", local_port(lfd));
    int fd = (int)async_await(async_tcp_connect("127.0.0.1", port, 2000));
    int c = (int)async_await(async_accept(lfd, NULL, NULL));
    cr_assert(fd >= 0 && c >= 0);
    async_future_t *r = async_spawn(short_reader, (void *)(intptr_t)c);
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(send(fd, "ping", 4, 0), 4);
        /* each message waits for the last to arrive, half the time sleeping and half
         * spinning, so that it lands at varied moments around the reader's next recv */
        if (i % 2 == 0)
            cr_assert(WAIT_UNTIL(atomic_load(&got_msgs) == i + 1, 5000), "at %d", i);
        else
            while (atomic_load(&got_msgs) < i + 1) sched_yield();
    }
    ASSERT_VAL(async_await_timeout(r, 5000), 0);
    close(c);
    close(fd);
    close(lfd);
    rt_stop();
}
