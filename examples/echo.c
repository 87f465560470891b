/* echo: the canonical asyncstd TCP server. It listens on HOST:PORT (default
 * 127.0.0.1:7777), serves each connection in a task of its own that sends
 * back whatever it receives, and stops cleanly on SIGINT or SIGTERM.
 *
 *     build/examples/echo 127.0.0.1 7777 &
 *     printf 'hello\n' | nc -q1 127.0.0.1 7777
 *
 * The accept loop is async_tcp_serve(): it backs off when fds run out and
 * keeps connections independent, so a connection that fails ends only
 * itself (a task group would be the wrong tool here: one failing member
 * cancels the rest). The main task awaits the signal with async_sigwait()
 * and cancels the server, which cancels the connections and waits for them.
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

/* One connection. async_tcp_serve closes the fd when this returns. */
static intptr_t echo_conn(int fd, void *arg) {
    (void)arg;
    char buf[4096];
    for (;;) {
        intptr_t n = async_await(async_recv(fd, buf, sizeof buf, 0));
        if (n <= 0) break; /* 0: the client is done; -1: reset, or cancelled */
        if (async_await(async_send(fd, buf, (size_t)n, 0)) < 0) break; /* sends it all */
    }
    return 0;
}

/* Serves until SIGINT or SIGTERM. The signals need no handler and no
 * blocking: from the first wait on, asyncstd catches them and keeps one that
 * comes early pending for the wait. */
static int run_server(const char *host, const char *port) {
    int lfd = (int)async_await(async_tcp_listen(host, port, 0));
    if (lfd < 0) {
        perror("echo: listen");
        return 1;
    }
    int one = 1; /* accepted sockets inherit it: small echoes go out at once */
    setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    async_serve_opts_t opts = {.on_stop = ASYNC_SERVE_CANCEL};
    async_future_t *server = async_tcp_serve(lfd, echo_conn, NULL, &opts);
    fprintf(stderr, "echo: listening on %s:%s\n", host ? host : "*", port);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    async_future_t *fs[2] = {server, async_sigwait(&set, &sig)};
    int r = 0;
    if (async_await_any(fs, 2) == 0) { /* the server stopped by itself: its listener failed */
        async_await(server);
        perror("echo: accept");
        r = 1;
        async_cancel(fs[1]);
    } else {
        fprintf(stderr, "echo: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        async_cancel(server); /* cancels the connections, then settles */
        async_await(server);
    }
    async_await(fs[1]);
    async_await(async_close(lfd));
    return r;
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
