/* The edges of fd readiness that a fast path can get wrong, each at scale or
 * through every path that can reach it:
 *   - end of stream: hundreds of connections whose peer closes, half-closes,
 *     resets, or sends its last data and its FIN in one segment while the
 *     reading task is parked; every reader must see the end;
 *   - fd numbers reused: a number registered by a worker, closed through the
 *     library or with plain close(2), and given to a new file by socket,
 *     socketpair, pipe, dup, accept or open outside the library, must wait
 *     and wake like a fresh fd;
 *   - MSG_DONTWAIT never waits, even on an fd the worker knows is not ready. */
#include "helpers.h" /* first: it sets _GNU_SOURCE */
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "net_helpers.h"

TestSuite(net_edges, .timeout = 60);

/* ---- end of stream, at scale ----------------------------------------------------- */

enum ending { END_CLOSE, END_SHUT_WR, END_DATA_FIN, END_RESET };
#define CONNS 300
#define LINE "one line of data\n"

static atomic_int ended, saw_eof, saw_reset;
static enum ending ending;

/* Reads until the end of stream; after it, a half-closed peer gets the byte count back. */
static intptr_t reader(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    intptr_t total = 0, n;
    while ((n = async_await(async_recv(fd, buf, sizeof buf, 0))) > 0) total += n;
    if (n == 0) {
        atomic_fetch_add(&saw_eof, 1);
        if (ending == END_SHUT_WR || ending == END_DATA_FIN) {
            char reply[32];
            int len = snprintf(reply, sizeof reply, "%jd", (intmax_t)total);
            CHECK_EQ(async_await(async_send(fd, reply, (size_t)len, 0)), len);
        }
    } else if (errno == ECONNRESET) {
        atomic_fetch_add(&saw_reset, 1);
    } else {
        CHECK(!"recv failed with an unexpected errno");
    }
    CHECK_EQ(async_await(async_close(fd)), 0);
    atomic_fetch_add(&ended, 1);
    return total;
}

static intptr_t acceptor(void *arg) {
    int lfd = (int)(intptr_t)arg;
    for (int i = 0; i < CONNS; i++) {
        intptr_t fd = async_await(async_accept(lfd, NULL, NULL));
        if (fd < 0) {
            CHECK(!"accept");
            return -1;
        }
        async_future_free(async_spawn(reader, (void *)fd));
    }
    return 0;
}

static void end_connection(int fd) {
    switch (ending) {
    case END_CLOSE:
        CHECK_EQ(send(fd, LINE, strlen(LINE), MSG_NOSIGNAL), strlen(LINE));
        close(fd);
        return;
    case END_SHUT_WR:
        CHECK_EQ(send(fd, LINE, strlen(LINE), MSG_NOSIGNAL), strlen(LINE));
        CHECK_EQ(shutdown(fd, SHUT_WR), 0);
        return;
    case END_DATA_FIN: { /* corked: the FIN rides on the data's segment */
        int one = 1;
        CHECK_EQ(setsockopt(fd, IPPROTO_TCP, TCP_CORK, &one, sizeof one), 0);
        CHECK_EQ(send(fd, LINE, strlen(LINE), MSG_NOSIGNAL), strlen(LINE));
        CHECK_EQ(shutdown(fd, SHUT_WR), 0);
        return;
    }
    case END_RESET: {
        struct linger l = {1, 0};
        CHECK_EQ(send(fd, LINE, strlen(LINE), MSG_NOSIGNAL), strlen(LINE));
        CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
        close(fd);
        return;
    }
    }
}

/* CONNS clients connect, wait until the readers are parked, then end their
 * connections the chosen way; every reader must see the end. */
static void every_reader_sees_the_end(enum ending how) {
    ending = how;
    int lfd = (int)async_await(async_socket(AF_INET, SOCK_STREAM, 0)); /* as a server makes it */
    cr_assert_geq(lfd, 0);
    struct sockaddr_in a = loopback4(0);
    cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(lfd, CONNS), 0);
    int port = local_port(lfd);
    async_future_t *acc = async_spawn(acceptor, (void *)(intptr_t)lfd);

    static int fds[CONNS];
    for (int i = 0; i < CONNS; i++) fds[i] = connect_blocking(AF_INET, port);
    ASSERT_VAL(async_await(acc), 0);
    sleep_ms(100); /* the readers park on their first recv */
    for (int i = 0; i < CONNS; i++) end_connection(fds[i]);

    if (how == END_SHUT_WR || how == END_DATA_FIN) {
        char want[32];
        snprintf(want, sizeof want, "%zu", strlen(LINE));
        struct timeval tv = {10, 0};
        for (int i = 0; i < CONNS; i++) {
            char got[32] = {0};
            setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            ssize_t n = recv(fds[i], got, sizeof got - 1, MSG_WAITALL);
            cr_assert_str_eq(got, want, "connection %d: reply %zd \"%s\"", i, n, got);
            cr_assert_eq(recv(fds[i], got, sizeof got, 0), 0, "connection %d: no end", i);
            close(fds[i]);
        }
    }
    bool all = WAIT_UNTIL(atomic_load(&ended) == CONNS, 10000);
    cr_assert(all, "%d of %d readers saw the end (%d EOF, %d reset)", atomic_load(&ended), CONNS,
              atomic_load(&saw_eof), atomic_load(&saw_reset));
    if (how != END_RESET) cr_assert_eq(atomic_load(&saw_eof), CONNS);
    close(lfd);
    rt_stop();
}

Test(net_edges, end_of_stream_after_close, .init = rt_start) {
    every_reader_sees_the_end(END_CLOSE);
}

Test(net_edges, end_of_stream_after_half_close, .init = rt_start) {
    every_reader_sees_the_end(END_SHUT_WR);
}

Test(net_edges, end_of_stream_with_data_in_one_segment, .init = rt_start) {
    every_reader_sees_the_end(END_DATA_FIN);
}

Test(net_edges, end_of_stream_after_reset, .init = rt_start) {
    every_reader_sees_the_end(END_RESET);
}

/* ---- fd numbers reused ------------------------------------------------------------ */

enum reuse_path { VIA_SOCKET, VIA_SOCKETPAIR, VIA_PIPE, VIA_DUP, VIA_ACCEPT, VIA_OPEN, VIA_COUNT };
static const char *const path_names[] = {"socket", "socketpair", "pipe", "dup", "accept", "open"};

struct reused {
    int fd;        /* the new file, at the old number */
    int peer;      /* writes to it */
    bool datagram; /* two datagrams at once; else two writes apart */
    bool is_socket;
    struct sockaddr_in to; /* datagram: the new socket's address */
};

/* Reads one message on the pinned worker: a short read, as a line protocol's. */
static intptr_t read_one(void *arg) {
    struct reused *r = arg;
    char buf[256];
    async_future_t *f =
        r->is_socket ? async_recv(r->fd, buf, sizeof buf, 0) : async_read(r->fd, buf, sizeof buf);
    return async_await_timeout(f, 3000);
}

static void *poke_twice(void *arg) {
    struct reused *r = arg;
    sleep_ms(30);
    if (r->datagram) {
        for (int i = 0; i < 2; i++)
            CHECK_EQ(sendto(r->peer, "d", 1, 0, (struct sockaddr *)&r->to, sizeof r->to), 1);
        return NULL;
    }
    CHECK_EQ(write(r->peer, "a", 1), 1);
    sleep_ms(60);
    CHECK_EQ(write(r->peer, "b", 1), 1);
    return NULL;
}

/* Gives `old` (free now) to a new file made by `path` outside the library. */
static void make_reused(enum reuse_path path, int old, struct reused *r, int prepared[2],
                        const char *fifo) {
    memset(r, 0, sizeof *r);
    switch (path) {
    case VIA_SOCKET: {
        r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        r->to = loopback4(0);
        cr_assert_eq(bind(r->fd, (struct sockaddr *)&r->to, sizeof r->to), 0);
        r->to = loopback4(local_port(r->fd));
        r->peer = prepared[0];
        r->datagram = r->is_socket = true;
        break;
    }
    case VIA_SOCKETPAIR: {
        int sv[2];
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        r->fd = sv[0];
        r->peer = sv[1];
        r->is_socket = true;
        break;
    }
    case VIA_PIPE: {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        r->fd = p[0];
        r->peer = p[1];
        break;
    }
    case VIA_DUP:
        r->fd = dup(prepared[0]);
        r->peer = prepared[1];
        r->is_socket = true;
        close(prepared[0]);
        break;
    case VIA_ACCEPT:
        r->fd = accept(prepared[0], NULL, NULL);
        r->peer = prepared[1];
        r->is_socket = true;
        close(prepared[0]);
        break;
    case VIA_OPEN:
        r->fd = open(fifo, O_RDONLY | O_NONBLOCK);
        r->peer = prepared[1];
        break;
    default:
        cr_assert_fail();
    }
    cr_assert_eq(r->fd, old, "%s gave fd %d, not the freed %d", path_names[path], r->fd, old);
}

/* What make_reused needs made before the old fd is closed (so that it does not
 * take the old number itself). */
static void prepare(enum reuse_path path, int prepared[2], const char *fifo) {
    prepared[0] = prepared[1] = -1;
    switch (path) {
    case VIA_SOCKET:
        prepared[0] = socket(AF_INET, SOCK_DGRAM, 0);
        break;
    case VIA_DUP:
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, prepared), 0);
        break;
    case VIA_ACCEPT: {
        prepared[0] = listener(AF_INET, SOCK_STREAM);
        prepared[1] = connect_blocking(AF_INET, local_port(prepared[0]));
        break;
    }
    case VIA_OPEN:
        cr_assert_eq(mkfifo(fifo, 0600), 0, "mkfifo: %s", ename(errno));
        prepared[0] = open(fifo, O_RDONLY | O_NONBLOCK); /* so that the writer may open */
        prepared[1] = open(fifo, O_WRONLY | O_NONBLOCK);
        cr_assert_geq(prepared[1], 0);
        break;
    default:
        break;
    }
}

/* A TCP listener made through the library, as a server makes it (its
 * connections are known to be TCP from the start). */
static int lib_listener(void) {
    int lfd = (int)async_await(async_socket(AF_INET, SOCK_STREAM, 0));
    cr_assert_geq(lfd, 0);
    struct sockaddr_in a = loopback4(0);
    ASSERT_VAL(async_await(async_bind(lfd, (struct sockaddr *)&a, sizeof a)), 0);
    ASSERT_VAL(async_await(async_listen(lfd, 16)), 0);
    return lfd;
}

static void number_reuse(bool library_close) {
    char fifo[64];
    snprintf(fifo, sizeof fifo, "/tmp/asyncstd-edges-%d", (int)getpid());
    for (int path = 0; path < VIA_COUNT; path++) {
        /* an accepted TCP connection, waited on and read short on worker 1 */
        int lfd = lib_listener();
        int client = connect_blocking(AF_INET, local_port(lfd));
        int old = (int)async_await(async_accept(lfd, NULL, NULL));
        cr_assert_geq(old, 0);
        struct reused first = {.fd = old, .peer = client, .is_socket = true};
        async_future_t *f = spawn_on(read_one, &first, 1);
        sleep_ms(30);
        cr_assert_eq(send(client, "x", 1, 0), 1);
        ASSERT_VAL(async_await(f), 1);

        int prepared[2];
        prepare((enum reuse_path)path, prepared, fifo);
        if (library_close)
            ASSERT_VAL(async_await(async_close(old)), 0);
        else
            cr_assert_eq(close(old), 0);
        if (path == VIA_OPEN && prepared[0] >= 0) {
            /* the reader that let the writer open must not take the old number */
            cr_assert_neq(prepared[0], old);
        }
        struct reused r;
        make_reused((enum reuse_path)path, old, &r, prepared, fifo);

        pthread_t t = thread_start(poke_twice, &r);
        for (int i = 0; i < 2; i++) {
            errno = 0;
            intptr_t n = async_await(spawn_on(read_one, &r, 1));
            cr_assert_eq(n, 1, "%s, read %d: %jd (%s)", path_names[path], i + 1, (intmax_t)n,
                         ename(errno));
        }
        pthread_join(t, NULL);

        ASSERT_VAL(async_await(async_close(r.fd)), 0);
        close(r.peer);
        if (path == VIA_OPEN) {
            close(prepared[0]);
            unlink(fifo);
        }
        close(client);
        close(lfd);
    }
    rt_stop();
}

Test(net_edges, reused_numbers_after_library_close, .init = rt_start) { number_reuse(true); }

Test(net_edges, reused_numbers_after_plain_close, .init = rt_start) { number_reuse(false); }

/* ---- no-wait means no wait --------------------------------------------------------- */

static int nw_fd, nw_peer, nw_pair[2];

/* On worker 1: a TCP socket known not readable and a Unix stream socket known
 * not writable (a Unix socket's buffer does not grow as TCP's does once its
 * data is acknowledged); every no-wait call must come back at once with EAGAIN. */
static intptr_t no_wait_task(void *arg) {
    (void)arg;
    char buf[64];
    /* read side: parked, woken, read short: the worker thinks it drained */
    CHECK_EQ(async_await_timeout(async_recv(nw_fd, buf, sizeof buf, 0), 3000), 1);
    /* write side: fill the socket, then a waiting send parks and is called off */
    static char big[1 << 16];
    int wfd = nw_pair[0];
    for (size_t chunk = sizeof big; chunk; chunk /= 16)
        while (async_await(async_send(wfd, big, chunk, MSG_DONTWAIT)) > 0) {
        }
    CHECK_ERR(async_await_timeout(async_send(wfd, big, 1, 0), 50), ETIMEDOUT);

    double t0 = now_ms();
    CHECK_ERR(async_await_timeout(async_recv(nw_fd, buf, sizeof buf, MSG_DONTWAIT), 2000), EAGAIN);
    CHECK_ERR(
        async_await_timeout(async_recvfrom(nw_fd, buf, sizeof buf, MSG_DONTWAIT, NULL, NULL), 2000),
        EAGAIN);
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK_ERR(async_await_timeout(async_recvmsg(nw_fd, &m, MSG_DONTWAIT), 2000), EAGAIN);
    CHECK_ERR(async_await_timeout(async_send(wfd, buf, 1, MSG_DONTWAIT), 2000), EAGAIN);
    CHECK_ERR(async_await_timeout(async_sendto(wfd, buf, 1, MSG_DONTWAIT, NULL, 0), 2000), EAGAIN);
    struct msghdr sm = {.msg_iov = &iov, .msg_iovlen = 1};
    CHECK_ERR(async_await_timeout(async_sendmsg(wfd, &sm, MSG_DONTWAIT), 2000), EAGAIN);
    CHECK(now_ms() - t0 < 1000);
    return 0;
}

static void *poke_once(void *arg) {
    (void)arg;
    sleep_ms(30);
    CHECK_EQ(send(nw_peer, "x", 1, 0), 1);
    return NULL;
}

Test(net_edges, dontwait_never_waits_on_a_registered_fd, .init = rt_start) {
    int lfd = lib_listener();
    nw_peer = connect_blocking(AF_INET, local_port(lfd));
    nw_fd = (int)async_await(async_accept(lfd, NULL, NULL));
    cr_assert_geq(nw_fd, 0);
    ASSERT_VAL(async_await(async_socketpair(AF_UNIX, SOCK_STREAM, 0, nw_pair)), 0);
    pthread_t t = thread_start(poke_once, NULL);
    ASSERT_VAL(async_await(spawn_on(no_wait_task, NULL, 1)), 0);
    pthread_join(t, NULL);
    ASSERT_VAL(async_await(async_close(nw_pair[0])), 0);
    ASSERT_VAL(async_await(async_close(nw_pair[1])), 0);
    ASSERT_VAL(async_await(async_close(nw_fd)), 0);
    close(nw_peer);
    close(lfd);
    rt_stop();
}
