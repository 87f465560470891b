/* echo: the canonical asyncstd TCP server. It listens on HOST:PORT (default
 * 127.0.0.1:7777), runs one task per connection that sends back whatever it
 * receives, and stops cleanly on SIGINT or SIGTERM, awaited with
 * async_sigwait(): the listening socket is closed (which wakes the accept
 * loop with EBADF) and the connections' tasks are cancelled through their
 * group.
 *
 *     build/examples/echo 127.0.0.1 7777 &
 *     printf 'hello\n' | nc -q1 127.0.0.1 7777
 *
 * With `--check N` it instead starts itself on a free port, runs N clients
 * against itself, verifies every echo and exits 0 (the test suite runs it so). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <asyncstd/asyncstd.h>

/* ---- the server ------------------------------------------------------------------ */

static intptr_t serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        intptr_t n = async_await(async_recv(fd, buf, sizeof buf, 0));
        if (n <= 0) break; /* 0: the client is done; -1: reset, or cancelled */
        if (async_await(async_send(fd, buf, (size_t)n, 0)) < 0) break; /* sends it all */
    }
    async_await(async_close(fd));
    return 0;
}

/* Accepts until the listening socket is closed. Running out of fds (EMFILE)
 * leaves the connection queued: pause, so the loop does not spin. */
static intptr_t accept_loop(int lfd, async_group_t *conns) {
    for (;;) {
        int fd = (int)async_await(async_accept(lfd, NULL, NULL));
        if (fd >= 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (async_group_spawn(conns, serve, (void *)(intptr_t)fd, NULL) < 0) close(fd);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            if (async_await(async_usleep(10000)) < 0) return -1;
        } else if (errno != ECONNABORTED && errno != EINTR) {
            return errno == EBADF ? 0 : -1; /* EBADF: closed by the signal watcher */
        }
    }
}

/* ---- stopping on a signal ----------------------------------------------------------
 * A task awaits SIGINT or SIGTERM like any other event; when one comes it
 * closes the listening socket, which wakes the accept loop with EBADF. The
 * signals need no handler and no blocking: from the first wait on, asyncstd
 * catches them and keeps one that comes early pending for the wait. */
static intptr_t watch_signals(void *arg) {
    int lfd = (int)(intptr_t)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    if (async_await(async_sigwait(&set, &sig)) == 0)
        fprintf(stderr, "echo: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    async_await(async_close(lfd)); /* wakes the accept loop with EBADF */
    return 0;
}

static int run_server(const char *host, const char *port) {
    int lfd = (int)async_await(async_tcp_listen(host, port, 0));
    if (lfd < 0) {
        perror("echo: listen");
        return 1;
    }
    async_future_t *watcher = async_spawn(watch_signals, (void *)(intptr_t)lfd);
    fprintf(stderr, "echo: listening on %s:%s\n", host ? host : "*", port);

    async_group_t *conns = async_group_new();
    intptr_t r = conns ? accept_loop(lfd, conns) : -1;
    if (r < 0) perror("echo: accept");
    async_group_cancel(conns); /* every connection's recv/send fails with ECANCELED */
    async_await(async_group_wait(conns));
    async_group_free(conns);
    async_cancel(watcher); /* it has ended if a signal stopped us */
    async_await(watcher);
    return r < 0;
}

/* ---- --check: clients against our own server ---------------------------------------- */

static char check_port[8];

static intptr_t client(void *arg) {
    int id = (int)(intptr_t)arg;
    int fd = (int)async_await(async_tcp_connect("127.0.0.1", check_port, 5000));
    if (fd < 0) return -1;
    char msg[64], back[64];
    int len = snprintf(msg, sizeof msg, "hello from client %d", id);
    intptr_t r = -1;
    for (int i = 0; i < 10; i++) {
        if (async_await(async_send(fd, msg, (size_t)len, 0)) != len) goto out;
        if (async_await(async_recv(fd, back, (size_t)len, MSG_WAITALL)) != len) goto out;
        if (memcmp(msg, back, (size_t)len) != 0) {
            errno = EPROTO;
            goto out;
        }
    }
    r = 0;
out:
    async_await(async_close(fd));
    return r;
}

static intptr_t server_task(void *arg) {
    (void)arg;
    return run_server("127.0.0.1", check_port);
}

static int run_check(int n) {
    /* a free port: bind port 0, read it back, let it go */
    int probe = (int)async_await(async_tcp_listen("127.0.0.1", "0", 1));
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (probe < 0 || getsockname(probe, (struct sockaddr *)&a, &len) < 0) return 1;
    snprintf(check_port, sizeof check_port, "%d", ntohs(a.sin_port));
    async_await(async_close(probe));

    async_future_t *server = async_spawn(server_task, NULL);
    async_future_t **clients = calloc((size_t)n, sizeof *clients);
    async_await(async_usleep(20000)); /* let the server start listening */
    for (int i = 0; i < n; i++) clients[i] = async_spawn(client, (void *)(intptr_t)i);
    int failed = async_await_all(clients, (size_t)n, NULL, NULL) < 0;
    if (failed) perror("echo --check: a client failed");
    free(clients);
    kill(getpid(), SIGTERM); /* and the server stops as it would in real life */
    if (async_await(server) != 0) failed = 1;
    if (!failed) printf("echo --check: %d clients, all echoes right\n", n);
    return failed;
}

int main(int argc, char **argv) {
    int r;
    if (argc >= 2 && !strcmp(argv[1], "--check"))
        r = run_check(argc >= 3 ? atoi(argv[2]) : 100);
    else
        r = run_server(argc >= 2 ? argv[1] : "127.0.0.1", argc >= 3 ? argv[2] : "7777");
    async_runtime_shutdown();
    return r;
}
