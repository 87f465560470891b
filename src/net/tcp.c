/* The TCP helpers, async_tcp_connect and async_tcp_listen. A helper is a
 * sequence of waits (resolve, then connect to each address in turn), which
 * reads best as straight-line code in a task (async__spawn_owned, which also
 * frees the request however the task ends); a task costs about a microsecond
 * and a warm stack, nothing beside a connect. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

void async__net_close(int fd) {
    int saved = errno;
    async_future_t *f = async__io_close(fd);
    /* in a cancelled task the await reports ECANCELED, but the close still happens */
    (void)async_await(f);
    errno = saved;
}

/* ---- time ------------------------------------------------------------------ */

/* The runtime's clock, on which the timeouts below run (virtual under a virtual clock). */
static int64_t now_ms(void) { return (int64_t)(async_clock_now() / 1000000); }

/* Awaits `f` until the absolute `deadline` (ms, async_clock_now's clock); -1: none. */
static intptr_t await_until(async_future_t *f, int64_t deadline) {
    if (deadline < 0) return async_await(f);
    int64_t left = deadline - now_ms();
    return async_await_timeout(f, left > 0 ? left : 0);
}

/* ---- async_tcp_connect ----------------------------------------------------- */

typedef struct tcp_req {
    int64_t timeout_ms;
    int backlog;
    char *host, *port;
    char strings[];
} tcp_req_t;

static tcp_req_t *req_new(const char *host, const char *port) {
    size_t hl = host ? strlen(host) + 1 : 0, pl = strlen(port) + 1;
    tcp_req_t *r = malloc(sizeof *r + hl + pl);
    if (!r) return NULL;
    r->host = host ? memcpy(r->strings, host, hl) : NULL;
    r->port = memcpy(r->strings + hl, port, pl);
    return r;
}

/* Resolves for the helpers: the list, or NULL with errno. */
static struct addrinfo *resolve(const char *host, const char *port, int flags, int64_t deadline) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = flags}, *list = NULL;
    intptr_t r = await_until(async_getaddrinfo(host, port, &hints, &list), deadline);
    if (r == 0) return list;
    if (r != -1) errno = async__net_gai_errno((int)r);
    return NULL;
}

static intptr_t tcp_connect_task(void *arg) {
    tcp_req_t *req = arg;
    int64_t deadline = req->timeout_ms < 0 ? -1 : now_ms() + req->timeout_ms;
    struct addrinfo *list = resolve(req->host, req->port, AI_ADDRCONFIG, deadline);
    if (!list) return -1;
    int n = 0, err = ENXIO;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) n++;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next, n--) {
        int64_t share = -1;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) {
                err = ETIMEDOUT;
                break;
            }
            /* Each remaining address gets an equal share, but at least 2 s: a slow
             * first address still has a fair chance to answer. */
            share = left / n;
            if (share < 2000) share = left < 2000 ? left : 2000;
        }
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        async__io_fd_new(fd);
        intptr_t r = async_await_timeout(async_connect(fd, ai->ai_addr, ai->ai_addrlen), share);
        if (r == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            freeaddrinfo(list);
            return fd;
        }
        err = errno;
        async__net_close(fd);
        if (err == ECANCELED) break;
    }
    freeaddrinfo(list);
    errno = err;
    return -1;
}

async_future_t *async_tcp_connect(const char *host, const char *port, int64_t timeout_ms) {
    if (!host || !port) return async__future_failed(EINVAL);
    tcp_req_t *req = req_new(host, port);
    if (!req) {
        errno = ENOMEM;
        return NULL;
    }
    req->timeout_ms = timeout_ms;
    return async__spawn_owned(tcp_connect_task, req, free, NULL);
}

/* ---- async_tcp_listen ------------------------------------------------------ */

/* socket + SO_REUSEADDR + bind + listen on one address: the fd, or -1 with errno. */
static int listen_on(const struct addrinfo *ai, int backlog, bool dual_stack) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return -1;
    async__io_fd_new(fd);
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (dual_stack && ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
        int e = errno;
        close(fd); /* never waited on: no registration to drop */
        errno = e;
        return -1;
    }
    return fd;
}

static intptr_t tcp_listen_task(void *arg) {
    tcp_req_t *req = arg;
    int flags = AI_PASSIVE | (req->host ? AI_ADDRCONFIG : 0);
    struct addrinfo *list = resolve(req->host, req->port, flags, -1);
    if (!list) return -1;
    int fd = -1, err = ENXIO;
    /* For all addresses, one IPv6 socket with IPv4 mapped serves both: try it first. */
    for (int pass = req->host ? 1 : 0; pass < 2 && fd < 0; pass++) {
        for (struct addrinfo *ai = list; ai && fd < 0; ai = ai->ai_next) {
            if (!req->host && (pass == 0) != (ai->ai_family == AF_INET6)) continue;
            fd = listen_on(ai, req->backlog, !req->host);
            if (fd < 0) err = errno;
        }
    }
    freeaddrinfo(list);
    if (fd < 0) errno = err;
    return fd;
}

async_future_t *async_tcp_listen(const char *host, const char *port, int backlog) {
    if (!port) return async__future_failed(EINVAL);
    tcp_req_t *req = req_new(host, port);
    if (!req) {
        errno = ENOMEM;
        return NULL;
    }
    req->backlog = backlog > 0 ? backlog : SOMAXCONN;
    return async__spawn_owned(tcp_listen_task, req, free, NULL);
}
