/* net.h's libc-named calls against glibc on the same inputs, from a plain
 * thread and from a task: bad fds (negative, huge, closed, a file, a pipe),
 * NULL buffers and messages, unknown flags, bad address lengths and
 * families, sockets in the wrong state (unbound, unconnected, listening,
 * connected, shut down, peer gone), zero lengths, and the values written back
 * (address lengths, msg_flags, the accepted fd's flags). Where the call
 * succeeds, what it did is compared too: the peer got the bytes, the new fd
 * is the same kind of socket. glibc's side never waits: its sockets are
 * non-blocking, or the situation is made ready first. net.h's documented
 * differences (O_NONBLOCK on every socket the library makes, MSG_NOSIGNAL
 * on every send) are asserted as documented. */
#include "glibc_compare.h"
#include "net_helpers.h"

#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/uio.h>

/* NULL buffers and messages are among the inputs compared, on purpose */
#pragma GCC diagnostic ignored "-Wnonnull"
#pragma GCC diagnostic ignored "-Wstringop-overflow"

TestSuite(net_glibc, .init = rt_start, .fini = rt_stop, .timeout = 60);

/* ASan's recvfrom interceptor reads *addrlen whenever src_addr is given,
 * before the call: glibc's side of a src_addr-without-addrlen row would crash
 * there, so those rows run without ASan only. */
#ifdef TESTS_HAVE_LSAN
#define NOT_ASAN 0
#else
#define NOT_ASAN 1
#endif

/* ---- fixtures: usable from a task (CHECK, never cr_assert) ------------------ */

/* A fixture socket: non-blocking, so that glibc's side never waits. */
static int sock(int domain, int type) {
    int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    return fd;
}

static void upair(int type, int sv[2]) {
    CHECK_EQ(socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

static struct sockaddr_in name_of(int fd) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return a;
}

/* A listening TCP socket on a free loopback port; *a receives its address. */
static int tcp_listener(struct sockaddr_in *a) {
    int fd = sock(AF_INET, SOCK_STREAM);
    struct sockaddr_in any = loopback4(0);
    CHECK_EQ(bind(fd, (struct sockaddr *)&any, sizeof any), 0);
    CHECK_EQ(listen(fd, 16), 0);
    *a = name_of(fd);
    return fd;
}

/* Waits (briefly, on this thread) until fd has `events`. */
static void ready(int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    CHECK_EQ(poll(&p, 1, 2000), 1);
}

/* A blocking client connected to the listener at `a` (not yet accepted). */
static int tcp_client(const struct sockaddr_in *a) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    CHECK_EQ(connect(fd, (const struct sockaddr *)a, sizeof *a), 0);
    return fd;
}

/* A connected TCP pair: c the client, s the accepted end; both non-blocking. */
static void tcp_pair(int *c, int *s) {
    struct sockaddr_in a;
    int l = tcp_listener(&a);
    *c = tcp_client(&a);
    CHECK_EQ(fcntl(*c, F_SETFL, O_NONBLOCK), 0);
    ready(l, POLLIN);
    *s = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    CHECK(*s >= 0);
    close(l);
}

/* A UDP socket bound to a free loopback port; *a receives its address. */
static int udp_bound(struct sockaddr_in *a) {
    int fd = sock(AF_INET, SOCK_DGRAM);
    struct sockaddr_in any = loopback4(0);
    CHECK_EQ(bind(fd, (struct sockaddr *)&any, sizeof any), 0);
    *a = name_of(fd);
    return fd;
}

static int fd_flags(int fd) { return fcntl(fd, F_GETFL); }
static int fd_cloexec(int fd) { return fcntl(fd, F_GETFD) & FD_CLOEXEC; }

static int sockopt(int fd, int opt) {
    int v = -1;
    socklen_t len = sizeof v;
    CHECK_EQ(getsockopt(fd, SOL_SOCKET, opt, &v, &len), 0);
    return v;
}

/* What the peer has queued, taken without waiting: its length, or -1/errno. */
static ssize_t drain(int fd, char *buf, size_t size) { return recv(fd, buf, size, MSG_DONTWAIT); }

/* Both peers got the same bytes, or datagrams (or both have the same nothing). */
static void same_received(int line, int gpeer, int apeer) {
    char g[256], a[256];
    for (int i = 0; i < 16; i++) {
        errno = 0;
        ssize_t gn = drain(gpeer, g, sizeof g);
        int ge = errno;
        errno = 0;
        ssize_t an = drain(apeer, a, sizeof a);
        int ae = errno;
        if (gn != an || (gn < 0 && ge != ae) || (gn > 0 && memcmp(g, a, (size_t)gn) != 0)) {
            check_fail(__FILE__, line, "[%s] peers received %zd/%s vs %zd/%s", compare_where, gn,
                       ename(ge), an, ename(ae));
            return;
        }
        if (gn < 0 || (gn == 0 && sockopt(gpeer, SO_TYPE) == SOCK_STREAM)) return;
    }
}

#define SAME_RECEIVED(gpeer, apeer) same_received(__LINE__, gpeer, apeer)

/* For calls that make an fd: both fail alike, or both succeed with the same
 * kind of socket and close-on-exec flag. The library's sockets are always
 * non-blocking (net.h); glibc's only when `nonblock` was asked for. Both fds
 * are closed. */
static void same_fd(int line, const char *what, int g, int ge, int a, int ae, bool nonblock) {
    if ((g < 0) != (a < 0) || (g < 0 && ge != ae)) {
        check_fail(__FILE__, line, "%s [%s]: glibc %d/%s, async %d/%s", what, compare_where, g,
                   ename(ge), a, ename(ae));
    } else if (g >= 0) {
        if (sockopt(g, SO_TYPE) != sockopt(a, SO_TYPE) ||
            sockopt(g, SO_PROTOCOL) != sockopt(a, SO_PROTOCOL) ||
            sockopt(g, SO_DOMAIN) != sockopt(a, SO_DOMAIN) || fd_cloexec(g) != fd_cloexec(a) ||
            !(fd_flags(a) & O_NONBLOCK) || !(fd_flags(g) & O_NONBLOCK) != !nonblock)
            check_fail(__FILE__, line, "%s [%s]: the two sockets differ", what, compare_where);
    }
    if (g >= 0) close(g);
    if (a >= 0) close(a);
}

#define SAME_FD(gexpr, aexpr, nonblock)                          \
    do {                                                         \
        errno = 0;                                               \
        int g_ = (int)(gexpr);                                   \
        int ge_ = errno;                                         \
        errno = 0;                                               \
        int a_ = (int)async_await(aexpr);                        \
        int ae_ = errno;                                         \
        same_fd(__LINE__, #aexpr, g_, ge_, a_, ae_, (nonblock)); \
    } while (0)

/* ---- bad fds: every call ------------------------------------------------------ */

enum { NEG, HUGE_FD, CLOSED, FILE_FD, PIPE_R, PIPE_W, BLOCKING_PIPE_R, NBAD };

static void make_bad(int bad[NBAD]) {
    int p[2];
    bad[NEG] = -1;
    bad[HUGE_FD] = INT_MAX;
    bad[CLOSED] = dup(0);
    close(bad[CLOSED]);
    char path[] = "/tmp/asyncstd-net-glibc-XXXXXX";
    bad[FILE_FD] = mkstemp(path);
    CHECK(bad[FILE_FD] >= 0);
    unlink(path);
    CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    bad[PIPE_R] = p[0];
    bad[PIPE_W] = p[1];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    bad[BLOCKING_PIPE_R] = p[0];
    close(p[1]);
}

static void bad_fds(void) {
    int bad[NBAD];
    make_bad(bad);
    for (int i = 0; i < NBAD; i++) {
        int fd = bad[i];
        struct sockaddr_in sin = loopback4(9);
        struct sockaddr_storage big[2];
        memset(big, 0, sizeof big);
        memcpy(big, &sin, sizeof sin);
        struct sockaddr_storage from;
        socklen_t gl = sizeof from, al = sizeof from;
        char buf[8] = {0};
        struct iovec iov = {buf, sizeof buf};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        SAME(bind(fd, (struct sockaddr *)&sin, sizeof sin),
             async_bind(fd, (struct sockaddr *)&sin, sizeof sin));
        SAME(bind(fd, (struct sockaddr *)big, sizeof big),
             async_bind(fd, (struct sockaddr *)big, sizeof big));
        SAME_BADPTR(bind(fd, NULL, sizeof sin), async_bind(fd, NULL, sizeof sin));
        SAME(listen(fd, 1), async_listen(fd, 1));
        SAME(accept(fd, NULL, NULL), async_accept(fd, NULL, NULL));
        SAME(accept(fd, (struct sockaddr *)&from, &gl),
             async_accept(fd, (struct sockaddr *)&from, &al));
        SAME_BADPTR(accept(fd, (struct sockaddr *)&from, NULL),
                    async_accept(fd, (struct sockaddr *)&from, NULL));
        SAME(accept4(fd, NULL, NULL, SOCK_CLOEXEC), async_accept4(fd, NULL, NULL, SOCK_CLOEXEC));
        SAME(accept4(fd, NULL, NULL, 1), async_accept4(fd, NULL, NULL, 1));
        SAME(accept4(fd, NULL, NULL, -1), async_accept4(fd, NULL, NULL, -1));
        SAME(connect(fd, (struct sockaddr *)&sin, sizeof sin),
             async_connect(fd, (struct sockaddr *)&sin, sizeof sin));
        SAME(connect(fd, (struct sockaddr *)big, sizeof big),
             async_connect(fd, (struct sockaddr *)big, sizeof big));
        SAME(connect(fd, (struct sockaddr *)&sin, 0),
             async_connect(fd, (struct sockaddr *)&sin, 0));
        SAME_BADPTR(connect(fd, NULL, sizeof sin), async_connect(fd, NULL, sizeof sin));
        SAME(send(fd, "ab", 2, MSG_NOSIGNAL), async_send(fd, "ab", 2, 0));
        SAME_BADPTR(send(fd, NULL, 2, MSG_NOSIGNAL), async_send(fd, NULL, 2, 0));
        SAME(send(fd, NULL, 0, MSG_NOSIGNAL), async_send(fd, NULL, 0, 0));
        SAME(sendto(fd, "ab", 2, MSG_NOSIGNAL, (struct sockaddr *)&sin, sizeof sin),
             async_sendto(fd, "ab", 2, 0, (struct sockaddr *)&sin, sizeof sin));
        SAME(sendto(fd, "ab", 2, MSG_NOSIGNAL, (struct sockaddr *)big, sizeof big),
             async_sendto(fd, "ab", 2, 0, (struct sockaddr *)big, sizeof big));
        SAME(sendto(fd, "ab", 2, MSG_NOSIGNAL, (struct sockaddr *)&sin, 0),
             async_sendto(fd, "ab", 2, 0, (struct sockaddr *)&sin, 0));
        SAME(recv(fd, buf, sizeof buf, 0), async_recv(fd, buf, sizeof buf, 0));
        SAME_BADPTR(recv(fd, NULL, sizeof buf, 0), async_recv(fd, NULL, sizeof buf, 0));
        SAME(recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &gl),
             async_recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &al));
        if (NOT_ASAN)
            SAME_BADPTR(recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, NULL),
                        async_recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, NULL));
        SAME(sendmsg(fd, &m, MSG_NOSIGNAL), async_sendmsg(fd, &m, 0));
        SAME_BADPTR(sendmsg(fd, NULL, MSG_NOSIGNAL), async_sendmsg(fd, NULL, 0));
        SAME(recvmsg(fd, &m, 0), async_recvmsg(fd, &m, 0));
        SAME_BADPTR(recvmsg(fd, NULL, 0), async_recvmsg(fd, NULL, 0));
        struct msghdr noiov = {.msg_iovlen = 1};
        SAME_BADPTR(recvmsg(fd, &noiov, 0), async_recvmsg(fd, &noiov, 0));
        SAME_BADPTR(sendmsg(fd, &noiov, MSG_NOSIGNAL), async_sendmsg(fd, &noiov, 0));
        /* flags no call knows (the top bit is the kernel's own MSG_CMSG_COMPAT) */
        SAME(send(fd, "ab", 2, MSG_NOSIGNAL | (int)0x80000000),
             async_send(fd, "ab", 2, (int)0x80000000));
        SAME(recv(fd, buf, sizeof buf, -1), async_recv(fd, buf, sizeof buf, -1));
        SAME(sendmsg(fd, &m, MSG_NOSIGNAL | (int)0x80000000),
             async_sendmsg(fd, &m, (int)0x80000000));
        SAME(recvmsg(fd, &m, (int)0x80000000), async_recvmsg(fd, &m, (int)0x80000000));
        SAME(shutdown(fd, SHUT_RDWR), async_shutdown(fd, SHUT_RDWR));
        SAME(shutdown(fd, 7), async_shutdown(fd, 7));
        CHECK_EQ(gl, al);
    }
    /* nothing above changed the pipe or the file */
    CHECK_EQ(fd_flags(bad[BLOCKING_PIPE_R]) & O_NONBLOCK, 0);
    for (int i = FILE_FD; i < NBAD; i++) close(bad[i]);
}

Test(net_glibc, bad_fds) { both_contexts(bad_fds); }

/* ---- socket and socketpair ----------------------------------------------------- */

static const struct {
    int domain, type, protocol;
} socket_rows[] = {
    {AF_INET, SOCK_STREAM, 0},
    {AF_INET, SOCK_DGRAM, 0},
    {AF_INET6, SOCK_STREAM, 0},
    {AF_INET6, SOCK_DGRAM, IPPROTO_UDP},
    {AF_UNIX, SOCK_STREAM, 0},
    {AF_UNIX, SOCK_DGRAM, 0},
    {AF_UNIX, SOCK_SEQPACKET, 0},
    {AF_UNIX, SOCK_RAW, 0}, /* a datagram socket on Linux */
    {AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0},
    {AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0},
    {AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0},
    {AF_INET, SOCK_STREAM, IPPROTO_TCP},
    {AF_INET, SOCK_STREAM, IPPROTO_UDP},
    {AF_INET, SOCK_DGRAM, IPPROTO_TCP},
    {AF_INET, SOCK_STREAM, -1},
    {AF_INET, SOCK_SEQPACKET, 0},
    {AF_UNIX, SOCK_STREAM, 1},
    {AF_UNIX, SOCK_STREAM, -1},
    {-1, SOCK_STREAM, 0},
    {AF_MAX, SOCK_STREAM, 0},
    {12345, SOCK_DGRAM, 0},
    {AF_UNSPEC, SOCK_STREAM, 0},
    {AF_INET, -1, 0},
    {AF_INET, 0, 0},
    {AF_INET, 99, 0},
    {AF_INET, SOCK_STREAM | 0x10000000, 0}, /* an unknown type flag */
    {AF_UNIX, SOCK_DGRAM | (int)0x80000000, 0},
    {AF_INET, SOCK_NONBLOCK, 0},
};

static void socket_args(void) {
    for (size_t i = 0; i < sizeof socket_rows / sizeof *socket_rows; i++) {
        int d = socket_rows[i].domain, t = socket_rows[i].type, p = socket_rows[i].protocol;
        SAME_FD(socket(d, t, p), async_socket(d, t, p), t & SOCK_NONBLOCK);
    }
}

Test(net_glibc, socket) { both_contexts(socket_args); }

static void socketpair_args(void) {
    for (size_t i = 0; i < sizeof socket_rows / sizeof *socket_rows; i++) {
        int d = socket_rows[i].domain, t = socket_rows[i].type, p = socket_rows[i].protocol;
        int g[2] = {-1, -1}, a[2] = {-1, -1};
        errno = 0;
        int gr = socketpair(d, t, p, g);
        int ge = errno;
        errno = 0;
        int ar = (int)async_await(async_socketpair(d, t, p, a));
        int ae = errno;
        if (gr != ar || (gr < 0 && ge != ae))
            check_fail(__FILE__, __LINE__, "socketpair row %zu [%s]: glibc %d/%s, async %d/%s", i,
                       compare_where, gr, ename(ge), ar, ename(ae));
        if (gr == 0 && ar == 0) {
            /* the two ends are connected to each other */
            CHECK_EQ(send(a[0], "x", 1, MSG_NOSIGNAL), 1);
            char c = 0;
            CHECK_EQ(recv(a[1], &c, 1, MSG_DONTWAIT), 1);
            CHECK_EQ(c, 'x');
            same_fd(__LINE__, "socketpair [0]", g[0], 0, a[0], 0, t & SOCK_NONBLOCK);
            same_fd(__LINE__, "socketpair [1]", g[1], 0, a[1], 0, t & SOCK_NONBLOCK);
        } else {
            CHECK(a[0] == -1 && a[1] == -1); /* untouched on failure */
            if (gr == 0) close_pair(g);
            if (ar == 0) close_pair(a);
        }
        /* no array to write to: EFAULT, but only once the sockets could be made */
        SAME_BADPTR(socketpair(d, t, p, NULL), async_socketpair(d, t, p, NULL));
    }
}

Test(net_glibc, socketpair) { both_contexts(socketpair_args); }

/* ---- bind and listen ------------------------------------------------------------ */

/* bind(2) on fresh sockets of the kind given, one for each side. */
#define SAME_BIND(domain, type, addr, len)                           \
    do {                                                             \
        int g_s = sock(domain, type), a_s = sock(domain, type);      \
        SAME(bind(g_s, (const struct sockaddr *)(addr), len),        \
             async_bind(a_s, (const struct sockaddr *)(addr), len)); \
        close(g_s);                                                  \
        close(a_s);                                                  \
    } while (0)

static void bind_args(void) {
    struct sockaddr_storage big[2];
    struct sockaddr_in sin = loopback4(0);
    memset(big, 0, sizeof big);
    memcpy(big, &sin, sizeof sin);
    SAME_BIND(AF_INET, SOCK_STREAM, &sin, sizeof sin);
    SAME_BIND(AF_INET, SOCK_DGRAM, &sin, sizeof sin);
    SAME_BIND(AF_INET, SOCK_STREAM, &sin, 0);
    SAME_BIND(AF_INET, SOCK_STREAM, &sin, 1);
    SAME_BIND(AF_INET, SOCK_STREAM, &sin, sizeof sin - 1);
    SAME_BIND(AF_INET, SOCK_STREAM, big, sizeof(struct sockaddr_storage));
    SAME_BIND(AF_INET, SOCK_STREAM, big, sizeof(struct sockaddr_storage) + 1);
    SAME_BIND(AF_INET, SOCK_STREAM, big, (socklen_t)-1);
    SAME_BIND(AF_INET, SOCK_STREAM, NULL, 0);
    if (KERNEL_ONLY) SAME_BIND(AF_INET, SOCK_STREAM, NULL, 200);
    {
        int g = sock(AF_INET, SOCK_STREAM), a = sock(AF_INET, SOCK_STREAM);
        SAME_BADPTR(bind(g, NULL, sizeof sin), async_bind(a, NULL, sizeof sin));
        close(g);
        close(a);
    }
    /* families: another one, AF_UNSPEC with INADDR_ANY (taken as AF_INET) */
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    SAME_BIND(AF_INET, SOCK_STREAM, &sin6, sizeof sin6);
    SAME_BIND(AF_INET6, SOCK_STREAM, &sin, sizeof sin);
    SAME_BIND(AF_INET6, SOCK_DGRAM, &sin6, sizeof sin6);
    struct sockaddr_in unspec = {.sin_family = AF_UNSPEC};
    SAME_BIND(AF_INET, SOCK_STREAM, &unspec, sizeof unspec);
    unspec.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    SAME_BIND(AF_INET, SOCK_STREAM, &unspec, sizeof unspec);
    struct sockaddr_in far = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000201)};
    SAME_BIND(AF_INET, SOCK_STREAM, &far, sizeof far); /* 192.0.2.1: not ours */
    /* a port in use, and binding twice */
    struct sockaddr_in la;
    int l = tcp_listener(&la);
    SAME_BIND(AF_INET, SOCK_STREAM, &la, sizeof la);
    close(l);
    {
        int g = sock(AF_INET, SOCK_DGRAM), a = sock(AF_INET, SOCK_DGRAM);
        SAME(bind(g, (struct sockaddr *)&sin, sizeof sin),
             async_bind(a, (struct sockaddr *)&sin, sizeof sin));
        SAME(bind(g, (struct sockaddr *)&sin, sizeof sin),
             async_bind(a, (struct sockaddr *)&sin, sizeof sin));
        close(g);
        close(a);
    }
    /* Unix paths: no such directory, a file already there, too long, autobind */
    struct sockaddr_un un = unix_addr("/nonexistent-dir/sock");
    SAME_BIND(AF_UNIX, SOCK_STREAM, &un, sizeof un);
    char path[] = "/tmp/asyncstd-net-glibc-XXXXXX";
    int f = mkstemp(path);
    CHECK(f >= 0);
    un = unix_addr(path);
    SAME_BIND(AF_UNIX, SOCK_DGRAM, &un, sizeof un);
    unlink(path);
    close(f);
    SAME_BIND(AF_UNIX, SOCK_STREAM, &un, sizeof un + 1);
    SAME_BIND(AF_UNIX, SOCK_STREAM, &un, sizeof(sa_family_t));
    SAME_BIND(AF_UNIX, SOCK_STREAM, &un, 1);
    SAME_BIND(AF_UNIX, SOCK_STREAM, &sin, sizeof sin);
}

Test(net_glibc, bind) { both_contexts(bind_args); }

static void listen_args(void) {
    int gs = sock(AF_INET, SOCK_DGRAM), as = sock(AF_INET, SOCK_DGRAM);
    SAME(listen(gs, 5), async_listen(as, 5));
    close(gs);
    close(as);
    gs = sock(AF_INET, SOCK_STREAM); /* unbound: bound to a free port by listen */
    as = sock(AF_INET, SOCK_STREAM);
    SAME(listen(gs, 5), async_listen(as, 5));
    SAME(listen(gs, -1), async_listen(as, -1)); /* again, with another backlog */
    SAME(listen(gs, INT_MAX), async_listen(as, INT_MAX));
    CHECK(name_of(as).sin_port != 0);
    close(gs);
    close(as);
    int gc, gp, ac, ap;
    tcp_pair(&gc, &gp);
    tcp_pair(&ac, &ap);
    SAME(listen(gc, 5), async_listen(ac, 5));
    SAME(listen(gp, 5), async_listen(ap, 5));
    close(gc);
    close(gp);
    close(ac);
    close(ap);
    int g[2], u[2];
    upair(SOCK_STREAM, g);
    upair(SOCK_STREAM, u);
    SAME(listen(g[0], 5), async_listen(u[0], 5));
    close_pair(g);
    close_pair(u);
    upair(SOCK_DGRAM, g);
    upair(SOCK_DGRAM, u);
    SAME(listen(g[0], 5), async_listen(u[0], 5));
    close_pair(g);
    close_pair(u);
    gs = sock(AF_UNIX, SOCK_STREAM); /* unbound Unix: EINVAL */
    as = sock(AF_UNIX, SOCK_STREAM);
    SAME(listen(gs, 5), async_listen(as, 5));
    close(gs);
    close(as);
}

Test(net_glibc, listen) { both_contexts(listen_args); }

/* ---- accept ------------------------------------------------------------------------ */

/* Each side's listener with one connection waiting, and its client. */
typedef struct {
    int l, c;
    struct sockaddr_in addr;
} pending_t;

static void pend(pending_t *p) {
    p->l = tcp_listener(&p->addr);
    p->c = tcp_client(&p->addr);
    ready(p->l, POLLIN);
}

static void unpend(pending_t *p) {
    close(p->l);
    close(p->c);
}

/* accept(2)'s written-back address and length, glibc's and ours, on a
 * connection waiting on each side: the same length, the client's address. */
static void accept_addr(socklen_t len, bool with_len) {
    pending_t g, a;
    pend(&g);
    pend(&a);
    struct sockaddr_storage gs, as;
    memset(&gs, 0x5a, sizeof gs);
    memset(&as, 0x5a, sizeof as);
    socklen_t gl = len, al = len;
    VALGRIND_DISABLE_ERROR_REPORTING; /* bad lengths, on purpose */
    errno = 0;
    int gfd = accept(g.l, (struct sockaddr *)&gs, with_len ? &gl : NULL);
    int ge = errno;
    errno = 0;
    int afd = (int)async_await(async_accept(a.l, (struct sockaddr *)&as, with_len ? &al : NULL));
    int ae = errno;
    VALGRIND_ENABLE_ERROR_REPORTING;
    CHECK_EQ(gl, al);
    if (afd >= 0 && len >= sizeof(struct sockaddr_in) && len <= sizeof as) {
        /* the peer's address is the client's own */
        struct sockaddr_in c = name_of(a.c), got;
        memcpy(&got, &as, sizeof got);
        CHECK_EQ(got.sin_port, c.sin_port);
        CHECK_EQ(got.sin_addr.s_addr, c.sin_addr.s_addr);
    } else if (len < sizeof(struct sockaddr_in)) {
        /* truncated: as many bytes written as glibc's, the rest untouched */
        CHECK_EQ(memcmp((char *)&as + len, (char *)&gs + len, sizeof gs - len), 0);
    }
    same_fd(__LINE__, "accept (address)", gfd, ge, afd, ae, false);
    unpend(&g);
    unpend(&a);
}

static void accept_args(void) {
    /* sockets that do not listen */
    int gs = sock(AF_INET, SOCK_STREAM), as = sock(AF_INET, SOCK_STREAM);
    SAME(accept(gs, NULL, NULL), async_accept(as, NULL, NULL));
    struct sockaddr_storage from;
    SAME_BADPTR(accept(gs, (struct sockaddr *)&from, NULL),
                async_accept(as, (struct sockaddr *)&from, NULL));
    close(gs);
    close(as);
    gs = sock(AF_INET, SOCK_DGRAM);
    as = sock(AF_INET, SOCK_DGRAM);
    SAME(accept(gs, NULL, NULL), async_accept(as, NULL, NULL));
    close(gs);
    close(as);
    int g[2], u[2];
    upair(SOCK_STREAM, g);
    upair(SOCK_STREAM, u);
    SAME(accept(g[0], NULL, NULL), async_accept(u[0], NULL, NULL));
    close_pair(g);
    close_pair(u);
    /* bad flags on a listener with nothing waiting: refused before any wait */
    struct sockaddr_in la;
    int l = tcp_listener(&la);
    static const int bad_flags[] = {1, -1, MSG_DONTWAIT, SOCK_NONBLOCK | 1, (int)0x80000000};
    for (size_t i = 0; i < sizeof bad_flags / sizeof *bad_flags; i++)
        SAME(accept4(l, NULL, NULL, bad_flags[i]), async_accept4(l, NULL, NULL, bad_flags[i]));
    close(l);

    /* a connection waiting: flags of the new fd, per accept4's flags */
    static const int flags[] = {0, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_NONBLOCK | SOCK_CLOEXEC};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
        pending_t pg, pa;
        pend(&pg);
        pend(&pa);
        SAME_FD(accept4(pg.l, NULL, NULL, flags[i]), async_accept4(pa.l, NULL, NULL, flags[i]),
                flags[i] & SOCK_NONBLOCK);
        unpend(&pg);
        unpend(&pa);
    }
    /* the address and its length, written back */
    accept_addr(sizeof(struct sockaddr_storage), true);
    accept_addr(sizeof(struct sockaddr_in), true);
    accept_addr(4, true);
    accept_addr(0, true);
    accept_addr((socklen_t)-1, true); /* a negative length: EINVAL, once accepted */
    if (KERNEL_ONLY) accept_addr(sizeof(struct sockaddr_in), false); /* EFAULT, once accepted */
}

Test(net_glibc, accept) { both_contexts(accept_args); }

/* ---- connect -------------------------------------------------------------------------- */

/* connect(2) on fresh sockets of the kind given; glibc's is blocking: every
 * row here ends at once (refused, bad input) or soon (loopback). */
static void same_connect(int line, int domain, int type, const void *addr, socklen_t len) {
    int g = socket(domain, type | SOCK_CLOEXEC, 0), a = sock(domain, type);
    CHECK(g >= 0);
    errno = 0;
    int gr = connect(g, addr, len);
    int ge = errno;
    errno = 0;
    int ar = (int)async_await(async_connect(a, addr, len));
    int ae = errno;
    if (gr != ar || (gr < 0 && ge != ae))
        check_fail(__FILE__, line, "connect [%s]: glibc %d/%s, async %d/%s", compare_where, gr,
                   ename(ge), ar, ename(ae));
    /* connected or not as glibc's is: a second connect says which */
    if (gr == 0 && type == SOCK_STREAM) {
        errno = 0;
        gr = connect(g, addr, len);
        ge = errno;
        errno = 0;
        ar = (int)async_await(async_connect(a, addr, len));
        ae = errno;
        if (gr != ar || (gr < 0 && ge != ae))
            check_fail(__FILE__, line, "connect again [%s]: glibc %d/%s, async %d/%s",
                       compare_where, gr, ename(ge), ar, ename(ae));
    }
    close(g);
    close(a);
}

#define SAME_CONNECT(domain, type, addr, len) same_connect(__LINE__, domain, type, addr, len)

static void connect_args(void) {
    struct sockaddr_in la;
    int l = tcp_listener(&la);
    struct sockaddr_storage big[2];
    memset(big, 0, sizeof big);
    memcpy(big, &la, sizeof la);
    SAME_CONNECT(AF_INET, SOCK_STREAM, &la, sizeof la);
    SAME_CONNECT(AF_INET, SOCK_STREAM, big, sizeof(struct sockaddr_storage));
    SAME_CONNECT(AF_INET, SOCK_STREAM, big, sizeof(struct sockaddr_storage) + 1);
    SAME_CONNECT(AF_INET, SOCK_STREAM, big, (socklen_t)-1);
    SAME_CONNECT(AF_INET, SOCK_STREAM, &la, 0);
    SAME_CONNECT(AF_INET, SOCK_STREAM, &la, 1);
    SAME_CONNECT(AF_INET, SOCK_STREAM, &la, sizeof la - 1);
    SAME_CONNECT(AF_INET, SOCK_STREAM, NULL, 0);
    VALGRIND_DISABLE_ERROR_REPORTING;
    SAME_CONNECT(AF_INET, SOCK_STREAM, NULL, sizeof la);
    if (KERNEL_ONLY) SAME_CONNECT(AF_INET, SOCK_STREAM, NULL, 200);
    VALGRIND_ENABLE_ERROR_REPORTING;
    struct sockaddr_in6 sin6 = {
        .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT, .sin6_port = la.sin_port};
    SAME_CONNECT(AF_INET, SOCK_STREAM, &sin6, sizeof sin6);
    struct sockaddr_un un = unix_addr("/nonexistent-dir/sock");
    SAME_CONNECT(AF_INET, SOCK_STREAM, &un, sizeof un);
    struct sockaddr_in unspec = {.sin_family = AF_UNSPEC};
    SAME_CONNECT(AF_INET, SOCK_STREAM, &unspec, sizeof unspec);
    SAME_CONNECT(AF_INET, SOCK_DGRAM, &la, sizeof la);
    SAME_CONNECT(AF_INET, SOCK_DGRAM, &unspec, sizeof unspec);
    /* refused: nobody listens on a port that was just free */
    struct sockaddr_in gone;
    int t = tcp_listener(&gone);
    close(t);
    SAME_CONNECT(AF_INET, SOCK_STREAM, &gone, sizeof gone);
    /* sockets in other states: connected (EISCONN), listening */
    int gc, gp, ac, ap;
    tcp_pair(&gc, &gp);
    tcp_pair(&ac, &ap);
    SAME(connect(gc, (struct sockaddr *)&la, sizeof la),
         async_connect(ac, (struct sockaddr *)&la, sizeof la));
    SAME(connect(gc, (struct sockaddr *)&unspec, sizeof unspec),
         async_connect(ac, (struct sockaddr *)&unspec, sizeof unspec)); /* disconnects */
    close(gc);
    close(gp);
    close(ac);
    close(ap);
    struct sockaddr_in l2a;
    int gl = tcp_listener(&l2a), al = tcp_listener(&l2a);
    SAME(connect(gl, (struct sockaddr *)&la, sizeof la),
         async_connect(al, (struct sockaddr *)&la, sizeof la));
    close(gl);
    close(al);
    /* the connections made above wait on the listener: drain them */
    int c;
    while ((c = accept(l, NULL, NULL)) >= 0) close(c);
    close(l);
    /* Unix: no such path, a file that is no socket, a connected pair, a listener */
    SAME_CONNECT(AF_UNIX, SOCK_STREAM, &un, sizeof un);
    char path[] = "/tmp/asyncstd-net-glibc-XXXXXX";
    int f = mkstemp(path);
    CHECK(f >= 0);
    un = unix_addr(path);
    SAME_CONNECT(AF_UNIX, SOCK_STREAM, &un, sizeof un);
    SAME_CONNECT(AF_UNIX, SOCK_DGRAM, &un, sizeof un);
    unlink(path);
    close(f);
    int ul = sock(AF_UNIX, SOCK_STREAM);
    CHECK_EQ(bind(ul, (struct sockaddr *)&un, sizeof un), 0);
    CHECK_EQ(listen(ul, 16), 0);
    SAME_CONNECT(AF_UNIX, SOCK_STREAM, &un, sizeof un);
    SAME_CONNECT(AF_UNIX, SOCK_DGRAM, &un, sizeof un); /* EPROTOTYPE */
    close(ul);
    unlink(path);
    int g[2], u[2];
    upair(SOCK_STREAM, g);
    upair(SOCK_STREAM, u);
    SAME(connect(g[0], (struct sockaddr *)&un, sizeof un),
         async_connect(u[0], (struct sockaddr *)&un, sizeof un));
    close_pair(g);
    close_pair(u);
}

Test(net_glibc, connect) { both_contexts(connect_args); }

/* ---- send and recv families -------------------------------------------------------- */

/* One side's sockets for the send and receive rows. */
typedef struct {
    int us[2];    /* a Unix stream pair */
    int ud[2];    /* a Unix datagram pair */
    int tc, ts;   /* a TCP connection: client and server ends */
    int tcp;      /* a TCP socket never connected */
    int listener; /* a listening TCP socket */
    int udp;      /* a bound UDP socket, unconnected */
    int peer;     /* another bound UDP socket, udp's destination */
    struct sockaddr_in peer_addr;
} world_t;

static void make_world(world_t *w) {
    struct sockaddr_in a;
    upair(SOCK_STREAM, w->us);
    upair(SOCK_DGRAM, w->ud);
    tcp_pair(&w->tc, &w->ts);
    w->tcp = sock(AF_INET, SOCK_STREAM);
    w->listener = tcp_listener(&a);
    w->udp = udp_bound(&a);
    w->peer = udp_bound(&w->peer_addr);
}

static void end_world(world_t *w) {
    close_pair(w->us);
    close_pair(w->ud);
    close(w->tc);
    close(w->ts);
    close(w->tcp);
    close(w->listener);
    close(w->udp);
    close(w->peer);
}

static void send_recv_args(void) {
    world_t g, a;
    make_world(&g);
    make_world(&a);
    char gb[64], ab[64];
    /* stream sends: the peer gets the same bytes */
    SAME(send(g.us[0], "hello", 5, MSG_NOSIGNAL), async_send(a.us[0], "hello", 5, 0));
    SAME_RECEIVED(g.us[1], a.us[1]);
    SAME(send(g.tc, "hello", 5, MSG_NOSIGNAL), async_send(a.tc, "hello", 5, 0));
    ready(g.ts, POLLIN);
    ready(a.ts, POLLIN);
    SAME_RECEIVED(g.ts, a.ts);
    SAME(send(g.us[0], NULL, 0, MSG_NOSIGNAL), async_send(a.us[0], NULL, 0, 0)); /* zero bytes */
    SAME(send(g.us[0], "", 0, MSG_NOSIGNAL), async_send(a.us[0], "", 0, 0));
    SAME(send(g.tc, NULL, 0, MSG_NOSIGNAL), async_send(a.tc, NULL, 0, 0));
    SAME_RECEIVED(g.us[1], a.us[1]); /* nothing: EAGAIN */
    SAME_BADPTR(send(g.us[0], NULL, 5, MSG_NOSIGNAL), async_send(a.us[0], NULL, 5, 0));
    SAME_BADPTR(send(g.tc, NULL, 5, MSG_NOSIGNAL), async_send(a.tc, NULL, 5, 0));
    /* flags: MSG_OOB on Unix, unknown bits, MSG_DONTWAIT, MSG_MORE */
    SAME(send(g.us[0], "x", 1, MSG_NOSIGNAL | MSG_OOB), async_send(a.us[0], "x", 1, MSG_OOB));
    SAME(send(g.ud[0], "x", 1, MSG_NOSIGNAL | MSG_OOB), async_send(a.ud[0], "x", 1, MSG_OOB));
    SAME(send(g.us[0], "x", 1, MSG_NOSIGNAL | 0x00800000), async_send(a.us[0], "x", 1, 0x00800000));
    SAME(send(g.us[0], "y", 1, MSG_NOSIGNAL | MSG_DONTWAIT),
         async_send(a.us[0], "y", 1, MSG_DONTWAIT));
    SAME(send(g.us[0], "z", 1, MSG_NOSIGNAL | MSG_MORE), async_send(a.us[0], "z", 1, MSG_MORE));
    SAME(send(g.us[0], "w", 1, MSG_NOSIGNAL | (int)0x80000000),
         async_send(a.us[0], "w", 1, (int)0x80000000));
    SAME_RECEIVED(g.us[1], a.us[1]);
    /* TCP: MSG_OOB is urgent data; not connected: EPIPE (no SIGPIPE for ours) */
    SAME(send(g.tc, "u", 1, MSG_NOSIGNAL | MSG_OOB), async_send(a.tc, "u", 1, MSG_OOB));
    SAME(send(g.tcp, "x", 1, MSG_NOSIGNAL), async_send(a.tcp, "x", 1, 0));
    SAME(send(g.tcp, NULL, 0, MSG_NOSIGNAL), async_send(a.tcp, NULL, 0, 0));
    SAME_BADPTR(send(g.tcp, NULL, 1, MSG_NOSIGNAL), async_send(a.tcp, NULL, 1, 0));
    SAME(send(g.listener, "x", 1, MSG_NOSIGNAL), async_send(a.listener, "x", 1, 0));
    SAME(send(g.udp, "x", 1, MSG_NOSIGNAL), async_send(a.udp, "x", 1, 0)); /* EDESTADDRREQ */
    SAME(send(g.udp, NULL, 0, MSG_NOSIGNAL), async_send(a.udp, NULL, 0, 0));
    SAME_BADPTR(send(g.udp, NULL, 1, MSG_NOSIGNAL), async_send(a.udp, NULL, 1, 0));

    /* receives: data there, zero lengths, flags */
    SAME(recv(g.us[0], gb, sizeof gb, MSG_DONTWAIT),
         async_recv(a.us[0], ab, sizeof ab, MSG_DONTWAIT));
    CHECK_EQ(send(g.us[1], "abc", 3, 0), 3);
    CHECK_EQ(send(a.us[1], "abc", 3, 0), 3);
    SAME(recv(g.us[0], NULL, 0, 0), async_recv(a.us[0], NULL, 0, 0)); /* data there: 0 */
    SAME(recv(g.us[0], gb, 1, MSG_PEEK), async_recv(a.us[0], ab, 1, MSG_PEEK));
    SAME(recv(g.us[0], gb, sizeof gb, MSG_OOB), async_recv(a.us[0], ab, sizeof ab, MSG_OOB));
    SAME_BADPTR(recv(g.us[0], NULL, 2, 0), async_recv(a.us[0], NULL, 2, 0)); /* left there */
    SAME(recv(g.us[0], gb, sizeof gb, 0x00800000), async_recv(a.us[0], ab, sizeof ab, 0x00800000));
    CHECK_EQ(memcmp(gb, ab, 3), 0);
    SAME(recv(g.us[0], gb, sizeof gb, MSG_ERRQUEUE | MSG_DONTWAIT),
         async_recv(a.us[0], ab, sizeof ab, MSG_ERRQUEUE | MSG_DONTWAIT));
    SAME_BADPTR(recv(g.us[0], NULL, 2, MSG_DONTWAIT), async_recv(a.us[0], NULL, 2, MSG_DONTWAIT));
    SAME(recv(g.us[0], gb, sizeof gb, MSG_DONTWAIT),
         async_recv(a.us[0], ab, sizeof ab, MSG_DONTWAIT));
    /* TCP: the urgent byte sent above, not connected, listening */
    SAME(recv(g.ts, gb, 1, MSG_OOB), async_recv(a.ts, ab, 1, MSG_OOB));
    CHECK_EQ(gb[0], ab[0]);
    SAME(recv(g.ts, gb, 1, MSG_OOB), async_recv(a.ts, ab, 1, MSG_OOB)); /* gone: EINVAL */
    SAME(recv(g.ts, NULL, 0, 0), async_recv(a.ts, NULL, 0, 0));
    SAME(recv(g.tcp, gb, sizeof gb, 0), async_recv(a.tcp, ab, sizeof ab, 0)); /* ENOTCONN */
    SAME(recv(g.tcp, NULL, 0, 0), async_recv(a.tcp, NULL, 0, 0));
    SAME(recv(g.listener, gb, sizeof gb, 0), async_recv(a.listener, ab, sizeof ab, 0));
    /* datagrams: a zero-length one, one truncated (MSG_TRUNC gives its real length) */
    CHECK_EQ(send(g.ud[1], "", 0, 0), 0);
    CHECK_EQ(send(a.ud[1], "", 0, 0), 0);
    SAME(recv(g.ud[0], gb, sizeof gb, 0), async_recv(a.ud[0], ab, sizeof ab, 0));
    CHECK_EQ(send(g.ud[1], "datagram", 8, 0), 8);
    CHECK_EQ(send(a.ud[1], "datagram", 8, 0), 8);
    SAME(recv(g.ud[0], gb, 3, MSG_TRUNC), async_recv(a.ud[0], ab, 3, MSG_TRUNC));
    CHECK_EQ(memcmp(gb, ab, 3), 0);
    CHECK_EQ(send(g.ud[1], "datagram", 8, 0), 8);
    CHECK_EQ(send(a.ud[1], "datagram", 8, 0), 8);
    SAME(recv(g.ud[0], NULL, 0, 0), async_recv(a.ud[0], NULL, 0, 0)); /* takes it: 0 */
    SAME(recv(g.ud[0], gb, sizeof gb, MSG_DONTWAIT),
         async_recv(a.ud[0], ab, sizeof ab, MSG_DONTWAIT));
    CHECK_EQ(send(g.ud[1], "datagram", 8, 0), 8);
    CHECK_EQ(send(a.ud[1], "datagram", 8, 0), 8);
    SAME_BADPTR(recv(g.ud[0], NULL, 4, 0), async_recv(a.ud[0], NULL, 4, 0));
    SAME(recv(g.ud[0], gb, sizeof gb, MSG_DONTWAIT),
         async_recv(a.ud[0], ab, sizeof ab, MSG_DONTWAIT));
    end_world(&g);
    end_world(&a);
}

Test(net_glibc, send_recv) { both_contexts(send_recv_args); }

/* sendto and recvfrom: addresses, their lengths, the ones written back */
static void sendto_recvfrom_args(void) {
    world_t g, a;
    make_world(&g);
    make_world(&a);
    char gb[64], ab[64];
    const struct sockaddr *gto = (const struct sockaddr *)&g.peer_addr,
                          *ato = (const struct sockaddr *)&a.peer_addr;
    socklen_t len = sizeof g.peer_addr;
    struct sockaddr_storage gbig[2], abig[2];
    memset(gbig, 0, sizeof gbig);
    memset(abig, 0, sizeof abig);
    memcpy(gbig, gto, len);
    memcpy(abig, ato, len);
    SAME(sendto(g.udp, "one", 3, MSG_NOSIGNAL, gto, len),
         async_sendto(a.udp, "one", 3, 0, ato, len));
    SAME_RECEIVED(g.peer, a.peer);
    SAME(sendto(g.udp, "one", 3, MSG_NOSIGNAL, NULL, 0), async_sendto(a.udp, "one", 3, 0, NULL, 0));
    SAME(sendto(g.udp, "one", 3, MSG_NOSIGNAL, NULL, len),
         async_sendto(a.udp, "one", 3, 0, NULL, len));
    SAME(sendto(g.udp, "one", 3, MSG_NOSIGNAL, gto, 0), async_sendto(a.udp, "one", 3, 0, ato, 0));
    SAME(sendto(g.udp, "one", 3, MSG_NOSIGNAL, gto, 2), async_sendto(a.udp, "one", 3, 0, ato, 2));
    SAME(sendto(g.udp, "one", 3, MSG_NOSIGNAL, gto, len - 1),
         async_sendto(a.udp, "one", 3, 0, ato, len - 1));
    SAME(sendto(g.udp, "two", 3, MSG_NOSIGNAL, (struct sockaddr *)gbig, sizeof gbig),
         async_sendto(a.udp, "two", 3, 0, (struct sockaddr *)abig, sizeof abig));
    SAME(sendto(g.udp, "two", 3, MSG_NOSIGNAL, (struct sockaddr *)gbig, (socklen_t)-1),
         async_sendto(a.udp, "two", 3, 0, (struct sockaddr *)abig, (socklen_t)-1));
    SAME(sendto(g.udp, "three", 5, MSG_NOSIGNAL, (struct sockaddr *)gbig, sizeof gbig[0]),
         async_sendto(a.udp, "three", 5, 0, (struct sockaddr *)abig, sizeof abig[0]));
    SAME_RECEIVED(g.peer, a.peer);
    SAME(sendto(g.udp, NULL, 0, MSG_NOSIGNAL, gto, len), async_sendto(a.udp, NULL, 0, 0, ato, len));
    SAME_RECEIVED(g.peer, a.peer); /* an empty datagram */
    SAME_BADPTR(sendto(g.udp, NULL, 3, MSG_NOSIGNAL, gto, len),
                async_sendto(a.udp, NULL, 3, 0, ato, len));
    if (KERNEL_ONLY) {
        VALGRIND_DISABLE_ERROR_REPORTING;
        SAME(sendto(g.udp, "x", 1, MSG_NOSIGNAL, NULL, (socklen_t)-1),
             async_sendto(a.udp, "x", 1, 0, NULL, (socklen_t)-1));
        VALGRIND_ENABLE_ERROR_REPORTING;
    }
    struct sockaddr_un un = unix_addr("/nonexistent-dir/sock");
    SAME(sendto(g.udp, "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&un, sizeof un),
         async_sendto(a.udp, "x", 1, 0, (struct sockaddr *)&un, sizeof un));
    SAME(sendto(g.ud[0], "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&un, sizeof un),
         async_sendto(a.ud[0], "x", 1, 0, (struct sockaddr *)&un, sizeof un));
    SAME(sendto(g.ud[0], "x", 1, MSG_NOSIGNAL, gto, len),
         async_sendto(a.ud[0], "x", 1, 0, ato, len));
    /* a connected stream with an address: EISCONN (Unix), ignored (TCP) */
    SAME(sendto(g.us[0], "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&un, sizeof un),
         async_sendto(a.us[0], "x", 1, 0, (struct sockaddr *)&un, sizeof un));
    SAME(sendto(g.tc, "x", 1, MSG_NOSIGNAL, gto, len), async_sendto(a.tc, "x", 1, 0, ato, len));
    SAME(sendto(g.tcp, "x", 1, MSG_NOSIGNAL, gto, len), async_sendto(a.tcp, "x", 1, 0, ato, len));

    /* recvfrom: the sender's address, and the length written back */
    static const socklen_t lens[] = {sizeof(struct sockaddr_storage), sizeof(struct sockaddr_in), 4,
                                     0, (socklen_t)-1};
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        CHECK_EQ(sendto(g.udp, "from", 4, 0, gto, len), 4);
        CHECK_EQ(sendto(a.udp, "from", 4, 0, ato, len), 4);
        ready(g.peer, POLLIN);
        ready(a.peer, POLLIN);
        struct sockaddr_storage gs, as;
        memset(&gs, 0x5a, sizeof gs);
        memset(&as, 0x5a, sizeof as);
        socklen_t gl = lens[i], al = lens[i];
        SAME_BADPTR(recvfrom(g.peer, gb, sizeof gb, 0, (struct sockaddr *)&gs, &gl),
                    async_recvfrom(a.peer, ab, sizeof ab, 0, (struct sockaddr *)&as, &al));
        CHECK_EQ(gl, al);
        struct sockaddr_in mine = name_of(a.udp), got;
        memcpy(&got, &as, sizeof got);
        if (lens[i] >= sizeof got && lens[i] <= sizeof gs) {
            CHECK_EQ(got.sin_port, mine.sin_port);
            CHECK_EQ(got.sin_addr.s_addr, mine.sin_addr.s_addr);
        } else if (lens[i] < sizeof gs) {
            CHECK_EQ(memcmp((char *)&as + lens[i], (char *)&gs + lens[i], sizeof gs - lens[i]), 0);
        }
        SAME_RECEIVED(g.peer, a.peer); /* each datagram was taken: EAGAIN */
    }
    /* an address without a length: the datagram is taken, then EFAULT */
    if (NOT_ASAN && KERNEL_ONLY) {
        CHECK_EQ(sendto(g.udp, "from", 4, 0, gto, len), 4);
        CHECK_EQ(sendto(a.udp, "from", 4, 0, ato, len), 4);
        ready(g.peer, POLLIN);
        ready(a.peer, POLLIN);
        struct sockaddr_storage gs, as;
        SAME_BADPTR(recvfrom(g.peer, gb, sizeof gb, 0, (struct sockaddr *)&gs, NULL),
                    async_recvfrom(a.peer, ab, sizeof ab, 0, (struct sockaddr *)&as, NULL));
        SAME_RECEIVED(g.peer, a.peer);
    }
    /* a length without an address: ignored, and left as it was */
    CHECK_EQ(sendto(g.udp, "from", 4, 0, gto, len), 4);
    CHECK_EQ(sendto(a.udp, "from", 4, 0, ato, len), 4);
    ready(g.peer, POLLIN);
    ready(a.peer, POLLIN);
    socklen_t gl = 3, al = 3;
    SAME(recvfrom(g.peer, gb, sizeof gb, 0, NULL, &gl),
         async_recvfrom(a.peer, ab, sizeof ab, 0, NULL, &al));
    CHECK_EQ(al, 3);
    /* a stream: no address, length 0 written back */
    CHECK_EQ(send(g.us[1], "s", 1, 0), 1);
    CHECK_EQ(send(a.us[1], "s", 1, 0), 1);
    struct sockaddr_storage gs, as;
    gl = al = sizeof gs;
    SAME(recvfrom(g.us[0], gb, sizeof gb, 0, (struct sockaddr *)&gs, &gl),
         async_recvfrom(a.us[0], ab, sizeof ab, 0, (struct sockaddr *)&as, &al));
    CHECK_EQ(gl, al);
    /* a Unix datagram from an unnamed socket: the family only */
    CHECK_EQ(send(g.ud[1], "d", 1, 0), 1);
    CHECK_EQ(send(a.ud[1], "d", 1, 0), 1);
    gl = al = sizeof gs;
    SAME(recvfrom(g.ud[0], gb, sizeof gb, 0, (struct sockaddr *)&gs, &gl),
         async_recvfrom(a.ud[0], ab, sizeof ab, 0, (struct sockaddr *)&as, &al));
    CHECK_EQ(gl, al);
    end_world(&g);
    end_world(&a);
}

Test(net_glibc, sendto_recvfrom) { both_contexts(sendto_recvfrom_args); }

/* ---- sendmsg and recvmsg ------------------------------------------------------------ */

static void msg_args(void) {
    world_t g, a;
    make_world(&g);
    make_world(&a);
    char gb[64], ab[64];
    struct iovec two[2] = {{"ab", 2}, {"cd", 2}};
    struct msghdr m = {.msg_iov = two, .msg_iovlen = 2};
    SAME(sendmsg(g.us[0], &m, MSG_NOSIGNAL), async_sendmsg(a.us[0], &m, 0));
    SAME_RECEIVED(g.us[1], a.us[1]);
    SAME_BADPTR(sendmsg(g.us[0], NULL, MSG_NOSIGNAL), async_sendmsg(a.us[0], NULL, 0));
    SAME(sendmsg(g.us[0], &m, MSG_NOSIGNAL | MSG_OOB), async_sendmsg(a.us[0], &m, MSG_OOB));
    SAME(sendmsg(g.us[0], &m, MSG_NOSIGNAL | (int)0x80000000),
         async_sendmsg(a.us[0], &m, (int)0x80000000));
    SAME(sendmsg(g.tcp, &m, MSG_NOSIGNAL), async_sendmsg(a.tcp, &m, 0)); /* EPIPE */
    SAME(sendmsg(g.udp, &m, MSG_NOSIGNAL), async_sendmsg(a.udp, &m, 0)); /* EDESTADDRREQ */
    /* empty messages, NULL iov arrays and bases */
    struct msghdr empty = {0};
    SAME(sendmsg(g.us[0], &empty, MSG_NOSIGNAL), async_sendmsg(a.us[0], &empty, 0));
    SAME(sendmsg(g.udp, &empty, MSG_NOSIGNAL), async_sendmsg(a.udp, &empty, 0));
    struct msghdr noiov = {.msg_iovlen = 2};
    SAME_BADPTR(sendmsg(g.us[0], &noiov, MSG_NOSIGNAL), async_sendmsg(a.us[0], &noiov, 0));
    SAME_BADPTR(sendmsg(g.tcp, &noiov, MSG_NOSIGNAL), async_sendmsg(a.tcp, &noiov, 0));
    struct iovec nulls[2] = {{NULL, 3}, {"x", 1}};
    struct msghdr nullbase = {.msg_iov = nulls, .msg_iovlen = 2};
    SAME_BADPTR(sendmsg(g.us[0], &nullbase, MSG_NOSIGNAL), async_sendmsg(a.us[0], &nullbase, 0));
    SAME_BADPTR(sendmsg(g.tcp, &nullbase, MSG_NOSIGNAL), async_sendmsg(a.tcp, &nullbase, 0));
    struct iovec huge[2] = {{"ab", SSIZE_MAX}, {"cd", 2}};
    struct msghdr toolong = {.msg_iov = huge, .msg_iovlen = 2};
    if (KERNEL_ONLY)
        SAME(sendmsg(g.us[0], &toolong, MSG_NOSIGNAL), async_sendmsg(a.us[0], &toolong, 0));
    struct msghdr many = {.msg_iov = two, .msg_iovlen = IOV_MAX + 1};
    if (KERNEL_ONLY) {
        SAME(sendmsg(g.us[0], &many, MSG_NOSIGNAL), async_sendmsg(a.us[0], &many, 0));
        many.msg_iov = NULL;
        SAME(sendmsg(g.us[0], &many, MSG_NOSIGNAL), async_sendmsg(a.us[0], &many, 0));
    }
    SAME_RECEIVED(g.us[1], a.us[1]);
    /* addresses: to a UDP peer, too long, without a name */
    struct sockaddr_storage gbig[2], abig[2];
    memset(gbig, 0, sizeof gbig);
    memset(abig, 0, sizeof abig);
    memcpy(gbig, &g.peer_addr, sizeof g.peer_addr);
    memcpy(abig, &a.peer_addr, sizeof a.peer_addr);
    static const socklen_t namelens[] = {
        sizeof(struct sockaddr_in),     sizeof gbig, 2, 0, (socklen_t)-1,
        sizeof(struct sockaddr_storage)};
    for (size_t i = 0; i < sizeof namelens / sizeof *namelens; i++) {
        struct msghdr gto = {
            .msg_name = gbig, .msg_namelen = namelens[i], .msg_iov = two, .msg_iovlen = 2};
        struct msghdr ato = {
            .msg_name = abig, .msg_namelen = namelens[i], .msg_iov = two, .msg_iovlen = 2};
        SAME_BADPTR(sendmsg(g.udp, &gto, MSG_NOSIGNAL), async_sendmsg(a.udp, &ato, 0));
        gto.msg_name = ato.msg_name = NULL; /* no name, whatever its length */
        SAME(sendmsg(g.udp, &gto, MSG_NOSIGNAL), async_sendmsg(a.udp, &ato, 0));
        SAME_RECEIVED(g.peer, a.peer);
    }
    /* control data: an fd, a bad fd, a bad length, too much of it */
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec one = {"f", 1};
    struct msghdr cm = {
        .msg_iov = &one, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&cm);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    int passed = 0; /* stdin */
    memcpy(CMSG_DATA(c), &passed, sizeof passed);
    SAME(sendmsg(g.us[0], &cm, MSG_NOSIGNAL), async_sendmsg(a.us[0], &cm, 0));
    /* received with room for no fd: MSG_CTRUNC, and the lengths written back */
    char gctl[CMSG_SPACE(sizeof(int))], actl[CMSG_SPACE(sizeof(int))];
    struct iovec giov = {gb, sizeof gb}, aiov = {ab, sizeof ab};
    struct msghdr gr = {
        .msg_iov = &giov, .msg_iovlen = 1, .msg_control = gctl, .msg_controllen = 4};
    struct msghdr ar = {
        .msg_iov = &aiov, .msg_iovlen = 1, .msg_control = actl, .msg_controllen = 4};
    SAME(recvmsg(g.us[1], &gr, 0), async_recvmsg(a.us[1], &ar, 0));
    CHECK_EQ(gr.msg_flags, ar.msg_flags);
    CHECK_EQ(gr.msg_controllen, ar.msg_controllen);
    CHECK_EQ(gr.msg_namelen, ar.msg_namelen);
    passed = -1;
    memcpy(CMSG_DATA(c), &passed, sizeof passed);
    SAME(sendmsg(g.us[0], &cm, MSG_NOSIGNAL), async_sendmsg(a.us[0], &cm, 0)); /* EBADF */
    c->cmsg_len = 2;
    SAME_BADPTR(sendmsg(g.us[0], &cm, MSG_NOSIGNAL), async_sendmsg(a.us[0], &cm, 0)); /* EINVAL */
    struct msghdr noctl = {.msg_iov = &one, .msg_iovlen = 1, .msg_controllen = 64};
    SAME_BADPTR(sendmsg(g.us[0], &noctl, MSG_NOSIGNAL), async_sendmsg(a.us[0], &noctl, 0));
    noctl.msg_controllen = (size_t)INT_MAX + 1;
    SAME_BADPTR(sendmsg(g.us[0], &noctl, MSG_NOSIGNAL), async_sendmsg(a.us[0], &noctl, 0));
    SAME_RECEIVED(g.us[1], a.us[1]);

    /* recvmsg: bad messages, flags, the name and flags written back */
    gr = (struct msghdr){.msg_iov = &giov, .msg_iovlen = 1};
    ar = (struct msghdr){.msg_iov = &aiov, .msg_iovlen = 1};
    SAME(recvmsg(g.us[0], &gr, MSG_DONTWAIT), async_recvmsg(a.us[0], &ar, MSG_DONTWAIT));
    SAME_BADPTR(recvmsg(g.us[0], NULL, MSG_DONTWAIT), async_recvmsg(a.us[0], NULL, MSG_DONTWAIT));
    SAME(recvmsg(g.us[0], &gr, MSG_OOB), async_recvmsg(a.us[0], &ar, MSG_OOB));
    SAME(recvmsg(g.us[0], &gr, (int)0x80000000), async_recvmsg(a.us[0], &ar, (int)0x80000000));
    SAME(recvmsg(g.tcp, &gr, 0), async_recvmsg(a.tcp, &ar, 0)); /* ENOTCONN */
    noiov = (struct msghdr){.msg_iovlen = 1};
    SAME_BADPTR(recvmsg(g.us[0], &noiov, MSG_DONTWAIT),
                async_recvmsg(a.us[0], &noiov, MSG_DONTWAIT));
    many = (struct msghdr){.msg_iov = &giov, .msg_iovlen = IOV_MAX + 1};
    if (KERNEL_ONLY) {
        SAME(recvmsg(g.us[0], &many, MSG_DONTWAIT), async_recvmsg(a.us[0], &many, MSG_DONTWAIT));
        many.msg_iov = NULL;
        SAME(recvmsg(g.us[0], &many, MSG_DONTWAIT), async_recvmsg(a.us[0], &many, MSG_DONTWAIT));
    }
    CHECK_EQ(sendto(g.udp, "datagram", 8, 0, (struct sockaddr *)&g.peer_addr, sizeof g.peer_addr),
             8);
    CHECK_EQ(sendto(a.udp, "datagram", 8, 0, (struct sockaddr *)&a.peer_addr, sizeof a.peer_addr),
             8);
    ready(g.peer, POLLIN);
    ready(a.peer, POLLIN);
    struct sockaddr_storage gn, an;
    giov.iov_len = aiov.iov_len = 3; /* truncated: MSG_TRUNC in msg_flags */
    gr = (struct msghdr){.msg_name = &gn, .msg_namelen = 300, .msg_iov = &giov, .msg_iovlen = 1};
    ar = (struct msghdr){.msg_name = &an, .msg_namelen = 300, .msg_iov = &aiov, .msg_iovlen = 1};
    SAME(recvmsg(g.peer, &gr, 0), async_recvmsg(a.peer, &ar, 0));
    CHECK_EQ(gr.msg_namelen, ar.msg_namelen);
    CHECK_EQ(gr.msg_flags, ar.msg_flags);
    CHECK_EQ(memcmp(gb, ab, 3), 0);
    end_world(&g);
    end_world(&a);
}

Test(net_glibc, sendmsg_recvmsg) { both_contexts(msg_args); }

/* ---- the peer gone, shut down ---------------------------------------------------------- */

static void peer_gone(void) {
    world_t g, a;
    make_world(&g);
    make_world(&a);
    char gb[16], ab[16];
    /* data then the end: the data, then 0, again and again */
    CHECK_EQ(send(g.us[1], "bye", 3, 0), 3);
    CHECK_EQ(send(a.us[1], "bye", 3, 0), 3);
    close(g.us[1]);
    close(a.us[1]);
    SAME(recv(g.us[0], gb, sizeof gb, 0), async_recv(a.us[0], ab, sizeof ab, 0));
    SAME(recv(g.us[0], gb, sizeof gb, 0), async_recv(a.us[0], ab, sizeof ab, 0));
    SAME(recv(g.us[0], gb, sizeof gb, MSG_WAITALL),
         async_recv(a.us[0], ab, sizeof ab, MSG_WAITALL));
    struct iovec giov = {gb, sizeof gb}, aiov = {ab, sizeof ab};
    struct msghdr gm = {.msg_iov = &giov, .msg_iovlen = 1},
                  am = {.msg_iov = &aiov, .msg_iovlen = 1};
    SAME(recvmsg(g.us[0], &gm, 0), async_recvmsg(a.us[0], &am, 0));
    /* sends: EPIPE, and no SIGPIPE for ours: net.h adds MSG_NOSIGNAL (glibc's
     * side asks for it), and a SIGPIPE would end this process */
    CHECK(signal(SIGPIPE, SIG_DFL) == SIG_DFL);
    SAME(send(g.us[0], "x", 1, MSG_NOSIGNAL), async_send(a.us[0], "x", 1, 0));
    SAME(send(g.us[0], NULL, 0, MSG_NOSIGNAL), async_send(a.us[0], NULL, 0, 0));
    SAME(sendmsg(g.us[0], &gm, MSG_NOSIGNAL), async_sendmsg(a.us[0], &am, 0));
    SAME(sendto(g.us[0], "x", 1, MSG_NOSIGNAL, NULL, 0), async_sendto(a.us[0], "x", 1, 0, NULL, 0));
    g.us[1] = dup(g.us[0]); /* for end_world */
    a.us[1] = dup(a.us[0]);
    /* TCP: the peer closed; our side shut for writing */
    close(g.ts);
    close(a.ts);
    ready(g.tc, POLLIN);
    ready(a.tc, POLLIN);
    SAME(recv(g.tc, gb, sizeof gb, 0), async_recv(a.tc, ab, sizeof ab, 0));
    SAME(shutdown(g.tc, SHUT_WR), async_shutdown(a.tc, SHUT_WR));
    SAME(send(g.tc, "x", 1, MSG_NOSIGNAL), async_send(a.tc, "x", 1, 0));
    SAME(shutdown(g.tc, SHUT_RDWR), async_shutdown(a.tc, SHUT_RDWR));
    g.ts = dup(g.tc);
    a.ts = dup(a.tc);
    /* shutdown's own inputs */
    int gp[2], ap[2];
    upair(SOCK_STREAM, gp);
    upair(SOCK_STREAM, ap);
    static const int hows[] = {-1, 3, 100, INT_MIN, SHUT_RD, SHUT_WR, SHUT_RDWR, SHUT_RDWR};
    for (size_t i = 0; i < sizeof hows / sizeof *hows; i++)
        SAME(shutdown(gp[0], hows[i]), async_shutdown(ap[0], hows[i]));
    SAME(recv(gp[0], gb, sizeof gb, 0), async_recv(ap[0], ab, sizeof ab, 0)); /* shut: 0 */
    SAME(send(gp[0], "x", 1, MSG_NOSIGNAL), async_send(ap[0], "x", 1, 0));    /* EPIPE */
    SAME(recv(gp[1], gb, sizeof gb, 0), async_recv(ap[1], ab, sizeof ab, 0)); /* the peer: 0 */
    close_pair(gp);
    close_pair(ap);
    SAME(shutdown(g.tcp, SHUT_RDWR), async_shutdown(a.tcp, SHUT_RDWR)); /* ENOTCONN */
    SAME(shutdown(g.tcp, 5), async_shutdown(a.tcp, 5));
    SAME(shutdown(g.udp, SHUT_RD), async_shutdown(a.udp, SHUT_RD));
    SAME(shutdown(g.listener, SHUT_WR), async_shutdown(a.listener, SHUT_WR));
    SAME(shutdown(g.listener, SHUT_RD), async_shutdown(a.listener, SHUT_RD));
    SAME(shutdown(g.ud[0], SHUT_WR), async_shutdown(a.ud[0], SHUT_WR));
    SAME(send(g.ud[0], "x", 1, MSG_NOSIGNAL), async_send(a.ud[0], "x", 1, 0));
    end_world(&g);
    end_world(&a);
}

Test(net_glibc, peer_gone_and_shutdown) { both_contexts(peer_gone); }

/* ---- getaddrinfo and getnameinfo: numeric names and /etc/hosts, no DNS --------------- */

/* glibc's resolver code against ours, by net.h's convention: EAI_SYSTEM is
 * -1 with its errno, EAI_BADFLAGS -1 with EINVAL, any other code itself. */
static void same_gai(int line, const char *what, int g, int ge, intptr_t a, int ae) {
    bool ok = g == EAI_SYSTEM     ? a == -1 && ae == ge
              : g == EAI_BADFLAGS ? a == -1 && ae == EINVAL
                                  : a == g;
    if (!ok)
        check_fail(__FILE__, line, "%s [%s]: glibc %d (%s), async %jd/%s", what, compare_where, g,
                   gai_strerror(g), (intmax_t)a, ename(ae));
}

static bool same_list(const struct addrinfo *g, const struct addrinfo *a) {
    for (; g && a; g = g->ai_next, a = a->ai_next)
        if (g->ai_family != a->ai_family || g->ai_socktype != a->ai_socktype ||
            g->ai_protocol != a->ai_protocol || g->ai_addrlen != a->ai_addrlen ||
            memcmp(g->ai_addr, a->ai_addr, g->ai_addrlen) != 0 ||
            !g->ai_canonname != !a->ai_canonname ||
            (g->ai_canonname && strcmp(g->ai_canonname, a->ai_canonname) != 0))
            return false;
    return !g && !a;
}

static void same_getaddrinfo(int line, const char *node, const char *service, int flags, int family,
                             int socktype, int protocol) {
    struct addrinfo hints = {
        .ai_flags = flags, .ai_family = family, .ai_socktype = socktype, .ai_protocol = protocol};
    struct addrinfo *gl = NULL, *al = NULL;
    errno = 0;
    int g = getaddrinfo(node, service, &hints, &gl);
    int ge = errno;
    errno = 0;
    intptr_t a = async_await(async_getaddrinfo(node, service, &hints, &al));
    int ae = errno;
    same_gai(line, "getaddrinfo", g, ge, a, ae);
    if (g == 0 && a == 0 && !same_list(gl, al))
        check_fail(__FILE__, line, "getaddrinfo(%s, %s) [%s]: the lists differ", node, service,
                   compare_where);
    if (g == 0) freeaddrinfo(gl);
    if (a == 0) async_freeaddrinfo(al);
}

#define SAME_GAI(node, service, flags, family, socktype, protocol) \
    same_getaddrinfo(__LINE__, node, service, flags, family, socktype, protocol)

static void same_getnameinfo(int line, const void *addr, socklen_t len, socklen_t hostlen,
                             socklen_t servlen, int flags) {
    char gh[NI_MAXHOST] = "", gs[NI_MAXSERV] = "", ah[NI_MAXHOST] = "", as[NI_MAXSERV] = "";
    errno = 0;
    int g =
        getnameinfo(addr, len, hostlen ? gh : NULL, hostlen, servlen ? gs : NULL, servlen, flags);
    int ge = errno;
    errno = 0;
    intptr_t a = async_await(async_getnameinfo(addr, len, hostlen ? ah : NULL, hostlen,
                                               servlen ? as : NULL, servlen, flags));
    int ae = errno;
    same_gai(line, "getnameinfo", g, ge, a, ae);
    if (g == 0 && a == 0 && (strcmp(gh, ah) != 0 || strcmp(gs, as) != 0))
        check_fail(__FILE__, line, "getnameinfo [%s]: %s:%s vs %s:%s", compare_where, gh, gs, ah,
                   as);
}

#define SAME_GNI(addr, len, hostlen, servlen, flags) \
    same_getnameinfo(__LINE__, addr, len, hostlen, servlen, flags)

static void resolver_args(void) {
    SAME_GAI("127.0.0.1", "80", 0, AF_UNSPEC, 0, 0);
    SAME_GAI("127.0.0.1", "80", AI_NUMERICHOST | AI_NUMERICSERV, AF_INET, SOCK_STREAM, 0);
    SAME_GAI("::1", "http", AI_NUMERICHOST, AF_INET6, SOCK_DGRAM, 0);
    SAME_GAI("127.0.0.1", NULL, AI_CANONNAME | AI_NUMERICHOST, AF_UNSPEC, 0, 0);
    SAME_GAI(NULL, "8080", AI_PASSIVE, AF_UNSPEC, SOCK_STREAM, 0);
    SAME_GAI(NULL, "8080", 0, AF_INET, SOCK_STREAM, 0);
    SAME_GAI("localhost", "80", AI_CANONNAME, AF_INET, SOCK_STREAM, 0); /* /etc/hosts */
    SAME_GAI(NULL, NULL, 0, AF_UNSPEC, 0, 0);                           /* EAI_NONAME */
    SAME_GAI("127.0.0.1", "80", 0x10000, AF_UNSPEC, 0, 0);              /* EAI_BADFLAGS */
    SAME_GAI("127.0.0.1", "80", AI_CANONNAME, AF_UNSPEC, 0, 0);
    SAME_GAI(NULL, "80", AI_CANONNAME, AF_UNSPEC, 0, 0); /* EAI_BADFLAGS */
    SAME_GAI("127.0.0.1", "80", 0, 12345, 0, 0);         /* EAI_FAMILY */
    SAME_GAI("127.0.0.1", "80", 0, AF_INET, 99, 0);      /* EAI_SOCKTYPE */
    SAME_GAI("127.0.0.1", "80", 0, AF_INET, SOCK_STREAM, IPPROTO_UDP);
    SAME_GAI("127.0.0.1", "no-such-service", 0, AF_INET, 0, 0); /* EAI_SERVICE */
    SAME_GAI("127.0.0.1", "http", AI_NUMERICSERV, AF_INET, 0, 0);
    SAME_GAI("not-a-number", "80", AI_NUMERICHOST, AF_INET, 0, 0); /* EAI_NONAME */
    SAME_GAI("127.0.0.1", "99999", 0, AF_INET, 0, 0);
    SAME_GAI("::1", "80", AI_NUMERICHOST, AF_INET, 0, 0);

    struct sockaddr_in sin = loopback4(80);
    struct sockaddr_in6 sin6 = {
        .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT, .sin6_port = htons(443)};
    int num = NI_NUMERICHOST | NI_NUMERICSERV;
    SAME_GNI(&sin, sizeof sin, NI_MAXHOST, NI_MAXSERV, num);
    SAME_GNI(&sin, sizeof sin, NI_MAXHOST, NI_MAXSERV, NI_NUMERICHOST | NI_DGRAM);
    SAME_GNI(&sin6, sizeof sin6, NI_MAXHOST, NI_MAXSERV, num);
    SAME_GNI(&sin, sizeof sin, NI_MAXHOST, NI_MAXSERV, 0); /* localhost, from /etc/hosts */
    SAME_GNI(&sin, sizeof sin, 4, NI_MAXSERV, num);        /* EAI_OVERFLOW */
    SAME_GNI(&sin, sizeof sin, NI_MAXHOST, 1, num);
    SAME_GNI(&sin, sizeof sin, 0, NI_MAXSERV, num); /* no host asked for */
    SAME_GNI(&sin, sizeof sin, 0, 0, num);
    SAME_GNI(&sin, sizeof sin, 0, 0, NI_NAMEREQD);               /* EAI_NONAME */
    SAME_GNI(&sin, sizeof sin - 1, NI_MAXHOST, NI_MAXSERV, num); /* EAI_FAMILY */
    SAME_GNI(&sin, 1, NI_MAXHOST, NI_MAXSERV, num);
    SAME_GNI(&sin6, sizeof sin, NI_MAXHOST, NI_MAXSERV, num);
    struct sockaddr_in odd = {.sin_family = 12345};
    SAME_GNI(&odd, sizeof odd, NI_MAXHOST, NI_MAXSERV, num);
    SAME_GNI(&sin, sizeof sin, NI_MAXHOST, NI_MAXSERV, 0x10000); /* EAI_BADFLAGS */
    /* net.h's documented differences: a NULL address, or one longer than
     * sockaddr_storage, is EINVAL, where glibc says EAI_FAMILY, or reads what
     * it needs of the longer one */
    CHECK_EQ(getnameinfo(NULL, sizeof sin, NULL, 0, NULL, 0, num), EAI_FAMILY);
    CHECK_ERR(async_await(async_getnameinfo(NULL, sizeof sin, NULL, 0, NULL, 0, num)), EINVAL);
    struct sockaddr_storage big[2];
    memset(big, 0, sizeof big);
    memcpy(big, &sin, sizeof sin);
    char h[NI_MAXHOST];
    CHECK_EQ(getnameinfo((struct sockaddr *)big, sizeof big, h, sizeof h, NULL, 0, num), 0);
    CHECK_ERR(async_await(
                  async_getnameinfo((struct sockaddr *)big, sizeof big, h, sizeof h, NULL, 0, num)),
              EINVAL);
}

Test(net_glibc, getaddrinfo_getnameinfo) { both_contexts(resolver_args); }

/* ---- error queues ------------------------------------------------------------------------ */

/* A read of an IP socket's error queue never waits in the kernel: empty, it is
 * EAGAIN at once, even on a blocking socket. It used to wait here for ever:
 * an entry raises POLLERR, not POLLIN. */
static void error_queue(void) {
    int g = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0),
        a = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(g >= 0 && a >= 0);
    char buf[64], cbuf[256];
    struct iovec giov = {buf, sizeof buf}, aiov = {buf, sizeof buf};
    struct msghdr gm = {
        .msg_iov = &giov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
    struct msghdr am = gm;
    am.msg_iov = &aiov;
    SAME(recvmsg(g, &gm, MSG_ERRQUEUE), async_recvmsg(a, &am, MSG_ERRQUEUE));
    SAME(recv(g, buf, sizeof buf, MSG_ERRQUEUE), async_recv(a, buf, sizeof buf, MSG_ERRQUEUE));
    SAME(recvfrom(g, buf, sizeof buf, MSG_ERRQUEUE, NULL, NULL),
         async_recvfrom(a, buf, sizeof buf, MSG_ERRQUEUE, NULL, NULL));
    struct mmsghdr gv = {.msg_hdr = gm}, av = {.msg_hdr = am};
    SAME(recvmmsg(g, &gv, 1, MSG_ERRQUEUE, NULL), async_recvmmsg(a, &av, 1, MSG_ERRQUEUE, NULL));
    close(g);
    close(a);
}

Test(net_glibc, error_queue_reads_do_not_wait) { both_contexts(error_queue); }
