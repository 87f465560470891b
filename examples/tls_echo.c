/* tls_echo: a TLS echo server, to show how a C library's non-blocking API is
 * driven with async_fd_wait(). OpenSSL does the TLS on a non-blocking socket:
 * when SSL_accept, SSL_read or SSL_write cannot go on, SSL_get_error() says
 * SSL_ERROR_WANT_READ or SSL_ERROR_WANT_WRITE, the task awaits exactly that
 * on the socket, and calls OpenSSL again. No thread waits for any socket.
 *
 *     openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost \
 *         -keyout key.pem -out cert.pem -days 30
 *     build/examples/tls_echo cert.pem key.pem 127.0.0.1 7443 &
 *     openssl s_client -connect 127.0.0.1:7443 -quiet
 *
 * Port 0 picks a free port; the port listened on is printed on stderr. It
 * stops cleanly on SIGINT or SIGTERM, as examples/echo.c does. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <asyncstd/asyncstd.h>

static SSL_CTX *ctx;

/* After an OpenSSL call returned `ret` on `ssl`: awaits what OpenSSL asked
 * for on the socket. 0 to call it again; -1 when it failed for good (or the
 * wait was cancelled). */
static int await_ssl(SSL *ssl, int fd, int ret) {
    int e = SSL_get_error(ssl, ret);
    short events = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (!events) return -1;
    return async_await(async_fd_wait(fd, events, -1)) > 0 ? 0 : -1;
}

static int ssl_write_all(SSL *ssl, int fd, const char *buf, int len) {
    for (;;) { /* without SSL_MODE_ENABLE_PARTIAL_WRITE, a write is all or nothing */
        int n = SSL_write(ssl, buf, len);
        if (n > 0) return 0;
        if (await_ssl(ssl, fd, n) < 0) return -1;
    }
}

static intptr_t serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    SSL *ssl = SSL_new(ctx);
    if (!ssl || !SSL_set_fd(ssl, fd)) goto out;
    int r;
    while ((r = SSL_accept(ssl)) != 1)
        if (await_ssl(ssl, fd, r) < 0) goto out;
    char buf[16384];
    for (;;) {
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n > 0) {
            if (ssl_write_all(ssl, fd, buf, n) < 0) break;
        } else if (await_ssl(ssl, fd, n) < 0) {
            break; /* closed by the peer (SSL_ERROR_ZERO_RETURN), an error, or cancelled */
        }
    }
    SSL_shutdown(ssl); /* one try at close_notify: the peer may be gone */
out:
    SSL_free(ssl);
    ERR_clear_error(); /* OpenSSL's error queue is per thread, and tasks share a worker's */
    async_await(async_close(fd));
    return 0;
}

static intptr_t watch_signals(void *arg) {
    int lfd = (int)(intptr_t)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    if (async_await(async_sigwait(&set, &sig)) == 0) fprintf(stderr, "tls_echo: stopping\n");
    async_await(async_close(lfd)); /* wakes the accept loop with EBADF */
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tls_echo CERT.pem KEY.pem [HOST [PORT]]\n");
        return 2;
    }
    const char *host = argc > 3 ? argv[3] : "127.0.0.1", *port = argc > 4 ? argv[4] : "7443";
    signal(SIGPIPE, SIG_IGN); /* OpenSSL writes to the socket with write(2) */
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, argv[1]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    int lfd = (int)async_await(async_tcp_listen(host, port, 0));
    struct sockaddr_storage a;
    socklen_t len = sizeof a;
    if (lfd < 0 || getsockname(lfd, (struct sockaddr *)&a, &len) < 0) {
        perror("tls_echo: listen");
        return 1;
    }
    in_port_t p = a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port
                                          : ((struct sockaddr_in *)&a)->sin_port;
    fprintf(stderr, "tls_echo: listening on %s:%d\n", host, ntohs(p));
    async_future_t *watcher = async_spawn(watch_signals, (void *)(intptr_t)lfd);

    async_group_t *conns = async_group_new();
    int rc = 0;
    while (conns) {
        int fd = (int)async_await(async_accept(lfd, NULL, NULL));
        if (fd >= 0) {
            if (async_group_spawn(conns, serve, (void *)(intptr_t)fd, NULL) < 0)
                async_await(async_close(fd));
        } else if (errno == EBADF) {
            break; /* closed by the signal watcher */
        } else if (errno != ECONNABORTED && errno != EINTR && errno != EMFILE && errno != ENFILE) {
            perror("tls_echo: accept");
            rc = 1;
            async_await(async_close(lfd));
            break;
        } else if (async_await(async_usleep(10000)) < 0) {
            break;
        }
    }
    async_group_cancel(conns);
    async_await(async_group_wait(conns));
    async_group_free(conns);
    async_cancel(watcher);
    async_await(watcher);
    SSL_CTX_free(ctx);
    async_runtime_shutdown();
    return rc;
}
