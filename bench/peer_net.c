/* The echo-server workload of asyncstd-peer (peers/SPEC.md): a TCP echo
 * server on 127.0.0.1:PORT, one task per connection that receives up to
 * 4096 bytes and sends them all back, with TCP_NODELAY like every peer. It
 * prints READY on stderr once listening and runs until SIGTERM or SIGINT,
 * then closes the listener, cancels the connections and returns, so that the
 * process exits 0 through the usual shutdown. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <asyncstd/asyncstd.h>

#include "peer_net.h"
#include "peer_util.h"

static int stop_pair[2] = {-1, -1};

static void on_signal(int sig) {
    int saved = errno;
    char c = (char)sig;
    (void)send(stop_pair[1], &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    errno = saved;
}

static intptr_t echo_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        intptr_t n = async_await(async_recv(fd, buf, sizeof buf, 0));
        if (n <= 0 || async_await(async_send(fd, buf, (size_t)n, 0)) != n) break;
    }
    async_await(async_close(fd));
    return 0;
}

static intptr_t stop_watcher(void *arg) {
    int lfd = (int)(intptr_t)arg;
    char c;
    async_await(async_recv(stop_pair[0], &c, 1, 0));
    async_await(async_close(lfd)); /* the accept loop wakes with EBADF */
    return 0;
}

void peer_echo_server(int argc, char **argv) {
    if (argc < 1) {
        fprintf(stderr, "asyncstd-peer: echo-server PORT\n");
        exit(2);
    }
    int lfd = (int)async_await(async_tcp_listen("127.0.0.1", argv[0], SOMAXCONN));
    if (lfd < 0) fail_errno("echo-server: listen");
    if (async_await(async_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, stop_pair)) < 0)
        fail_errno("socketpair");
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    async_future_t *watcher = async_spawn(stop_watcher, (void *)(intptr_t)lfd);
    async_group_t *conns = async_group_new();
    if (!watcher || !conns) fail("out of memory");
    fprintf(stderr, "READY\n");
    for (;;) {
        int fd = (int)async_await(async_accept(lfd, NULL, NULL));
        if (fd >= 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (async_group_spawn(conns, echo_conn, (void *)(intptr_t)fd, NULL) < 0) close(fd);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            async_await(async_usleep(10000)); /* out of fds: let connections finish */
        } else if (errno != ECONNABORTED && errno != EINTR) {
            break; /* EBADF: closed by the watcher */
        }
    }
    async_group_cancel(conns);
    async_await(async_group_wait(conns));
    async_group_free(conns);
    async_await(watcher);
    /* The pair stays open until exit: a signal handler may still be sending on it. */
}
