/* Tests of name resolution and the helpers (net.h): getaddrinfo,
 * getnameinfo and their result convention, cancellation on the blocking
 * pool, and async_tcp_connect / async_tcp_listen / async_unix_connect /
 * async_unix_listen, with bad input, refusals and time-outs. Lookups use
 * numeric addresses and "localhost" only: the test machine has no DNS. */
#include "helpers.h" /* first: it sets _GNU_SOURCE */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>


#include "net_helpers.h"

TestSuite(net_dns, .timeout = 30);

/* ---- getaddrinfo ----------------------------------------------------------------- */

Test(net_dns, getaddrinfo_numeric_and_localhost, .init = rt_start) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    ASSERT_VAL(async_await(async_getaddrinfo("127.0.0.1", "8080", &hints, &ai)), 0);
    cr_assert_not_null(ai);
    cr_assert_eq(ai->ai_family, AF_INET);
    cr_assert_eq(ai->ai_socktype, SOCK_STREAM);
    struct sockaddr_in *in = (struct sockaddr_in *)ai->ai_addr;
    cr_assert_eq(ntohs(in->sin_port), 8080);
    cr_assert_eq(ntohl(in->sin_addr.s_addr), INADDR_LOOPBACK);
    async_freeaddrinfo(ai);

    hints.ai_family = AF_INET6;
    ASSERT_VAL(async_await(async_getaddrinfo("::1", NULL, &hints, &ai)), 0);
    cr_assert_eq(ai->ai_family, AF_INET6);
    async_freeaddrinfo(ai);

    ASSERT_VAL(async_await(async_getaddrinfo("localhost", "80", NULL, &ai)), 0);
    bool loop = false;
    for (struct addrinfo *p = ai; p; p = p->ai_next)
        if (p->ai_family == AF_INET)
            loop |= ntohl(((struct sockaddr_in *)p->ai_addr)->sin_addr.s_addr) == INADDR_LOOPBACK;
    cr_assert(loop, "localhost is 127.0.0.1");
    async_freeaddrinfo(ai);
    async_freeaddrinfo(NULL);
    rt_stop();
}

/* The strings and hints are copied: the caller may reuse them at once. */
Test(net_dns, getaddrinfo_copies_its_arguments, .init = rt_start) {
    char node[32] = "127.0.0.1", serv[8] = "4242";
    struct addrinfo *hints = calloc(1, sizeof *hints), *ai = NULL;
    hints->ai_family = AF_INET;
    hints->ai_socktype = SOCK_DGRAM;
    async_future_t *f = async_getaddrinfo(node, serv, hints, &ai);
    memset(node, 'x', sizeof node - 1);
    memset(serv, 'y', sizeof serv - 1);
    hints->ai_family = 12345;
    free(hints);
    ASSERT_VAL(async_await(f), 0);
    cr_assert_eq(ai->ai_socktype, SOCK_DGRAM);
    cr_assert_eq(ntohs(((struct sockaddr_in *)ai->ai_addr)->sin_port), 4242);
    async_freeaddrinfo(ai);
    rt_stop();
}

static intptr_t resolve_in_task(void *arg) {
    (void)arg;
    struct addrinfo *ai = NULL;
    intptr_t r = async_await(async_getaddrinfo("127.0.0.1", "1", NULL, &ai));
    CHECK_EQ(r, 0);
    if (ai) async_freeaddrinfo(ai);
    return r;
}

Test(net_dns, getaddrinfo_from_many_tasks, .init = rt_start) {
    async_future_t *f[50];
    for (int i = 0; i < 50; i++) f[i] = async_spawn(resolve_in_task, NULL);
    cr_assert_eq(async_await_all(f, 50, NULL, NULL), 0);
    rt_stop();
}

Test(net_dns, getaddrinfo_failures, .init = rt_start) {
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST}, *ai = (struct addrinfo *)0x1;
    ASSERT_VAL(async_await(async_getaddrinfo("not-an-address", NULL, &hints, &ai)), EAI_NONAME);
    cr_assert_eq(ai, (struct addrinfo *)0x1, "untouched on failure");
    ASSERT_VAL(async_await(async_getaddrinfo(NULL, NULL, NULL, &ai)), EAI_NONAME);
    hints = (struct addrinfo){.ai_flags = AI_NUMERICSERV};
    ASSERT_VAL(async_await(async_getaddrinfo("127.0.0.1", "http", &hints, &ai)), EAI_NONAME);
    hints = (struct addrinfo){.ai_socktype = 12345};
    ASSERT_VAL(async_await(async_getaddrinfo("127.0.0.1", "1", &hints, &ai)), EAI_SOCKTYPE);
    hints = (struct addrinfo){.ai_family = 12345};
    ASSERT_VAL(async_await(async_getaddrinfo("127.0.0.1", "1", &hints, &ai)), EAI_FAMILY);
    hints = (struct addrinfo){.ai_flags = 0x7fff0000};
    ASSERT_ERR(async_await(async_getaddrinfo("127.0.0.1", "1", &hints, &ai)), EINVAL);
    ASSERT_ERR(async_await(async_getaddrinfo("127.0.0.1", "1", NULL, NULL)), EINVAL);
    rt_stop();
}

/* With one pool thread for user jobs, a lookup queued behind a busy one can be cancelled. */
static atomic_int release_blocker;

static intptr_t blocker(void *arg) {
    (void)arg;
    while (!atomic_load(&release_blocker)) sleep_ms(1);
    return 0;
}

Test(net_dns, getaddrinfo_cancelled_while_queued) {
    async_config_t c = {.pool_threads = 2, .pool_reserved = 1};
    cr_assert_eq(async_runtime_init(&c), 0);
    async_future_t *b = async_spawn_blocking(blocker, NULL);
    struct addrinfo *ai = (struct addrinfo *)0x1;
    async_future_t *f = async_getaddrinfo("127.0.0.1", "1", NULL, &ai);
    sleep_ms(20);
    cr_assert(!async_future_settled(f));
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    cr_assert_eq(ai, (struct addrinfo *)0x1);
    f = async_getaddrinfo("127.0.0.1", "1", NULL, &ai);
    ASSERT_ERR(async_await_timeout(f, 20), ETIMEDOUT);
    atomic_store(&release_blocker, 1);
    ASSERT_VAL(async_await(b), 0);
    /* and one freed while queued runs later without a leak (ai lives in this frame) */
    ASSERT_VAL(async_await(async_getaddrinfo("127.0.0.1", "1", NULL, &ai)), 0);
    async_freeaddrinfo(ai);
    rt_stop();
}

/* ---- getnameinfo ----------------------------------------------------------------- */

Test(net_dns, getnameinfo_numeric, .init = rt_start) {
    struct sockaddr_in a = loopback4(8080);
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    ASSERT_VAL(async_await(async_getnameinfo((struct sockaddr *)&a, sizeof a, host, sizeof host,
                                             serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV)),
               0);
    cr_assert_str_eq(host, "127.0.0.1");
    cr_assert_str_eq(serv, "8080");
    struct sockaddr_storage s6 = loopback(AF_INET6, 443);
    ASSERT_VAL(async_await(async_getnameinfo((struct sockaddr *)&s6, sizeof(struct sockaddr_in6),
                                             host, sizeof host, NULL, 0, NI_NUMERICHOST)),
               0);
    cr_assert_str_eq(host, "::1");
    ASSERT_VAL(async_await(async_getnameinfo((struct sockaddr *)&a, sizeof a, host, sizeof host,
                                             NULL, 0, 0)),
               0);
    cr_assert_str_eq(host, "localhost");
    rt_stop();
}

Test(net_dns, getnameinfo_failures, .init = rt_start) {
    struct sockaddr_in a = loopback4(80);
    char host[2], serv[32];
    ASSERT_VAL(async_await(async_getnameinfo((struct sockaddr *)&a, sizeof a, host, sizeof host,
                                             NULL, 0, NI_NUMERICHOST)),
               EAI_OVERFLOW);
    ASSERT_ERR(async_await(async_getnameinfo(NULL, sizeof a, serv, sizeof serv, NULL, 0, 0)),
               EINVAL);
    ASSERT_ERR(async_await(
                   async_getnameinfo((struct sockaddr *)&a, 100000, serv, sizeof serv, NULL, 0, 0)),
               EINVAL);
    struct sockaddr_in bad = a;
    bad.sin_family = 12345;
    ASSERT_VAL(async_await(async_getnameinfo((struct sockaddr *)&bad, sizeof bad, serv, sizeof serv,
                                             NULL, 0, NI_NUMERICHOST)),
               EAI_FAMILY);
    rt_stop();
}

/* ---- async_tcp_listen, async_tcp_connect ------------------------------------------- */

static int port_str(int fd, char *buf, size_t size) {
    int p = local_port(fd);
    snprintf(buf, size, "%d", p);
    return p;
}

static void check_connected(int lfd, int fd) {
    int c = (int)async_await(async_accept(lfd, NULL, NULL));
    cr_assert_geq(c, 0, "accept: %s", ename(errno));
    cr_assert_eq(peer_port(c), local_port(fd));
    ASSERT_VAL(async_await(async_send(fd, "hi", 2, 0)), 2);
    char b[4];
    ASSERT_VAL(async_await(async_recv(c, b, sizeof b, 0)), 2);
    close(c);
}

Test(net_dns, tcp_listen_and_connect, .init = rt_start) {
    int lfd = (int)async_await(async_tcp_listen("127.0.0.1", "0", 16));
    cr_assert_geq(lfd, 0, "tcp_listen: %s", ename(errno));
    cr_assert(fcntl(lfd, F_GETFL) & O_NONBLOCK);
    cr_assert(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    char port[8];
    port_str(lfd, port, sizeof port);
    int fd = (int)async_await(async_tcp_connect("localhost", port, 2000));
    cr_assert_geq(fd, 0, "tcp_connect: %s", ename(errno));
    int one = 0;
    socklen_t len = sizeof one;
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, &len);
    cr_assert(one, "TCP_NODELAY is set");
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    check_connected(lfd, fd);
    async_await(async_close(fd));
    fd = (int)async_await(async_tcp_connect("127.0.0.1", port, -1));
    cr_assert_geq(fd, 0);
    check_connected(lfd, fd);
    close(fd);
    async_await(async_close(lfd));
    rt_stop();
}

/* With no host: one socket for IPv6 and IPv4 both. */
Test(net_dns, tcp_listen_on_every_address, .init = rt_start) {
    int lfd = (int)async_await(async_tcp_listen(NULL, "0", 0));
    cr_assert_geq(lfd, 0, "tcp_listen: %s", ename(errno));
    char port[8];
    port_str(lfd, port, sizeof port);
    int fd = (int)async_await(async_tcp_connect("::1", port, 2000));
    cr_assert_geq(fd, 0, "over IPv6: %s", ename(errno));
    check_connected(lfd, fd);
    close(fd);
    fd = (int)async_await(async_tcp_connect("127.0.0.1", port, 2000));
    cr_assert_geq(fd, 0, "over IPv4: %s", ename(errno));
    check_connected(lfd, fd);
    close(fd);
    close(lfd);
    rt_stop();
}

Test(net_dns, tcp_helpers_failures, .init = rt_start) {
    int lfd = (int)async_await(async_tcp_listen("127.0.0.1", "0", 1));
    char port[8];
    port_str(lfd, port, sizeof port);
    ASSERT_ERR(async_await(async_tcp_listen("127.0.0.1", port, 1)), EADDRINUSE);
    close(lfd);
    ASSERT_ERR(async_await(async_tcp_connect("127.0.0.1", port, 2000)), ECONNREFUSED);
    ASSERT_ERR(async_await(async_tcp_connect(NULL, port, 2000)), EINVAL);
    ASSERT_ERR(async_await(async_tcp_connect("127.0.0.1", NULL, 2000)), EINVAL);
    ASSERT_ERR(async_await(async_tcp_listen("127.0.0.1", NULL, 1)), EINVAL);
    ASSERT_ERR(async_await(async_tcp_connect("127.0.0.1", "no-such-service", 2000)), EINVAL);
    ASSERT_ERR(async_await(async_tcp_listen("192.0.2.254", "0", 1)), EADDRNOTAVAIL);
    rt_stop();
}

Test(net_dns, tcp_connect_timeout_and_cancel, .init = rt_start) {
    int lfd, held[4];
    char port[8];
    snprintf(port, sizeof port, "%d", full_listener(&lfd, held));
    double t0 = now_ms();
    ASSERT_ERR(async_await(async_tcp_connect("127.0.0.1", port, 150)), ETIMEDOUT);
    double ms = now_ms() - t0;
    cr_assert(ms >= 140 && ms < 2000, "took %.0f ms", ms);
    async_future_t *f = async_tcp_connect("127.0.0.1", port, -1);
    sleep_ms(30);
    cr_assert(!async_future_settled(f));
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    /* cancelled before its task ever ran: its copies are still freed */
    f = async_tcp_connect("127.0.0.1", port, -1);
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    /* freed while pending: runs to its time limit on its own, then is freed */
    async_future_free(async_tcp_connect("127.0.0.1", port, 50));
    sleep_ms(100);
    for (int i = 0; i < 4; i++) close(held[i]);
    close(lfd);
    rt_stop();
}

/* ---- Unix helpers ----------------------------------------------------------------- */

Test(net_dns, unix_listen_and_connect, .init = rt_start) {
    char path[64];
    unix_path(path, sizeof path, "h");
    int lfd = (int)async_await(async_unix_listen(path, 8));
    cr_assert_geq(lfd, 0, "unix_listen: %s", ename(errno));
    cr_assert(fcntl(lfd, F_GETFL) & O_NONBLOCK);
    int fd = (int)async_await(async_unix_connect(path));
    cr_assert_geq(fd, 0, "unix_connect: %s", ename(errno));
    int c = (int)async_await(async_accept(lfd, NULL, NULL));
    cr_assert_geq(c, 0);
    ASSERT_VAL(async_await(async_send(c, "unix", 4, 0)), 4);
    char b[8];
    ASSERT_VAL(async_await(async_recv(fd, b, sizeof b, 0)), 4);
    ASSERT_ERR(async_await(async_unix_listen(path, 8)), EADDRINUSE);
    close(c);
    close(fd);
    close(lfd);
    unlink(path);
    rt_stop();
}

Test(net_dns, unix_abstract_names, .init = rt_start) {
    char name[64];
    snprintf(name, sizeof name, "@asyncstd-test-%d", (int)getpid());
    int lfd = (int)async_await(async_unix_listen(name, 8));
    cr_assert_geq(lfd, 0, "%s", ename(errno));
    int fd = (int)async_await(async_unix_connect(name));
    cr_assert_geq(fd, 0, "%s", ename(errno));
    cr_assert_eq(access(name + 1, F_OK), -1, "no file was made");
    close(fd);
    close(lfd);
    rt_stop();
}

Test(net_dns, unix_helpers_failures, .init = rt_start) {
    char path[64], lng[200];
    unix_path(path, sizeof path, "f");
    ASSERT_ERR(async_await(async_unix_connect(path)), ENOENT);
    ASSERT_ERR(async_await(async_unix_connect(NULL)), EINVAL);
    ASSERT_ERR(async_await(async_unix_connect("")), EINVAL);
    ASSERT_ERR(async_await(async_unix_listen(NULL, 1)), EINVAL);
    memset(lng, 'a', sizeof lng - 1);
    lng[0] = '/';
    lng[sizeof lng - 1] = 0;
    ASSERT_ERR(async_await(async_unix_connect(lng)), ENAMETOOLONG);
    ASSERT_ERR(async_await(async_unix_listen(lng, 1)), ENAMETOOLONG);
    ASSERT_ERR(async_await(async_unix_listen("/nonexistent/dir/sock", 1)), ENOENT);
    /* a socket file nobody listens on */
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = unix_addr(path);
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_ERR(async_await(async_unix_connect(path)), ECONNREFUSED);
    close(s);
    unlink(path);
    rt_stop();
}

/* A full backlog: async_unix_connect waits for room instead of failing. */
Test(net_dns, unix_connect_waits_out_a_full_backlog, .init = rt_start) {
    char path[64];
    unix_path(path, sizeof path, "b");
    int lfd = (int)async_await(async_unix_listen(path, 1));
    cr_assert_geq(lfd, 0);
    int fds[8], n = 0;
    async_future_t *f = NULL;
    for (; n < 8; n++) {
        f = async_unix_connect(path);
        sleep_ms(20);
        if (!async_future_settled(f)) break;
        fds[n] = (int)async_await(f);
        cr_assert_geq(fds[n], 0);
    }
    cr_assert_lt(n, 8, "the backlog never filled");
    int c = (int)async_await(async_accept(lfd, NULL, NULL)); /* makes room */
    cr_assert_geq(c, 0);
    int fd = (int)async_await_timeout(f, 2000);
    cr_assert_geq(fd, 0, "%s", ename(errno));
    close(fd);
    close(c);
    for (int i = 0; i < n; i++) close(fds[i]);
    close(lfd);
    unlink(path);
    rt_stop();
}
