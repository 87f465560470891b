/* async_tcp_serve: the accept loop every server would otherwise write. One
 * task accepts; each connection runs its handler in a task of its own, so a
 * handler that fails or blocks affects no other connection. Resource
 * exhaustion (EMFILE and its kin) backs off instead of spinning on a listener
 * that stays readable; per-connection errors that accept(2) reports are
 * retried at once. Cancelling the serve future stops it; its connections are
 * then waited for or cancelled, as the options say.
 *
 * The live connections are in a list under `lock`, which the accept task
 * holds from spawning a connection to linking it and a connection holds to
 * unlink itself before it ends: so every task on the list is alive and
 * async_cancel on it is safe. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#include "asyncstd/sync.h"

#define BACKOFF_MIN_MS 5
#define BACKOFF_MAX_MS 1000

typedef struct conn conn_t;

typedef struct serve {
    int lfd;
    async_serve_fn handler;
    void *arg;
    int on_stop;
    size_t stack_size;
    bool nodelay; /* the listener has TCP_NODELAY: set it on every accepted socket */
    pthread_mutex_t lock;
    async__list_t conns; /* live connections, under `lock` */
    async_waitgroup_t live;
} serve_t;

struct conn {
    serve_t *s;
    int fd;
    async_future_t *task; /* detached; valid while on the list */
    async__node_t node;   /* in s->conns */
};

static intptr_t conn_main(void *arg) {
    conn_t *c = arg;
    serve_t *s = c->s;
    (void)s->handler(c->fd, s->arg); /* a failure concerns this connection only */
    async__net_close(c->fd);
    pthread_mutex_lock(&s->lock);
    async__list_remove(&s->conns, &c->node);
    pthread_mutex_unlock(&s->lock);
    free(c);
    async_waitgroup_done(&s->live);
    return 0;
}

/* Starts a connection's task; 0, or -1 with errno (the fd is then closed). */
static int start_conn(serve_t *s, int fd) {
    if (s->nodelay) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    conn_t *c = malloc(sizeof *c);
    if (!c) {
        async__net_close(fd);
        errno = ENOMEM;
        return -1;
    }
    c->s = s;
    c->fd = fd;
    async_waitgroup_add(&s->live, 1);
    /* a name for dumps and stall reports: the 15 bytes kept hold "conn fd " and 7 digits */
    char name[24];
    snprintf(name, sizeof name, "conn fd %d", fd);
    async_spawn_opts_t o = {.stack_size = s->stack_size, .name = name};
    pthread_mutex_lock(&s->lock);
    async_future_t *t = async_spawn_opts(conn_main, c, &o);
    if (!t || async_future_settled(t)) { /* never started: out of memory */
        pthread_mutex_unlock(&s->lock);
        if (t) async_future_free(t);
        free(c);
        async__net_close(fd);
        async_waitgroup_done(&s->live);
        errno = ENOMEM;
        return -1;
    }
    c->task = t;
    async__list_push_front(&s->conns, &c->node);
    async_future_free(t); /* detached: the task frees itself when it ends */
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* Errors accept(2) reports for one connection, or for a signal: try again. */
static bool retry_at_once(int e) {
    switch (e) {
    case ECONNABORTED:
    case EINTR:
    case EAGAIN:
    case EPROTO:
    case EPERM: /* a firewall refused this connection */
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return true;
    default:
        return false;
    }
}

/* Out of fds, socket buffers or memory: connections that ended will give some back. */
static bool back_off(int e) { return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM; }

static intptr_t serve_main(void *arg) {
    serve_t *s = arg;
    int err = 0;
    int64_t delay_ms = 0;
    while (!err) {
        int fd = (int)async_await(async_accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC));
        int e = errno;
        if (fd >= 0) e = start_conn(s, fd) == 0 ? 0 : errno;
        if (e == 0) {
            delay_ms = 0;
        } else if (back_off(e)) {
            delay_ms = delay_ms ? delay_ms * 2 : BACKOFF_MIN_MS;
            if (delay_ms > BACKOFF_MAX_MS) delay_ms = BACKOFF_MAX_MS;
            if (async_await(async_usleep((unsigned long)delay_ms * 1000)) != 0) err = errno;
        } else if (!retry_at_once(e)) {
            err = e; /* ECANCELED (stopped), or the listener is unusable (EBADF, EINVAL) */
        }
    }
    /* stopping: the waits below must not be cut short by our own cancellation */
    async_setcancelstate(ASYNC_CANCEL_DISABLE, NULL);
    if (s->on_stop == ASYNC_SERVE_CANCEL) {
        pthread_mutex_lock(&s->lock);
        async__list_foreach(n, &s->conns) async_cancel(async__list_entry(n, conn_t, node)->task);
        pthread_mutex_unlock(&s->lock);
    }
    (void)async_await(async_waitgroup_wait(&s->live));
    async_waitgroup_destroy(&s->live);
    pthread_mutex_destroy(&s->lock);
    errno = err;
    return -1;
}

async_future_t *async_tcp_serve(int fd, async_serve_fn handler, void *arg,
                                const async_serve_opts_t *opts) {
    if (fd < 0) return async__future_failed(EBADF);
    if (!handler) return async__future_failed(EINVAL);
    if (opts && ((opts->on_stop != ASYNC_SERVE_WAIT && opts->on_stop != ASYNC_SERVE_CANCEL) ||
                 opts->stack_size > ((size_t)1 << 30)))
        return async__future_failed(EINVAL);
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0)
        return async__future_failed(errno); /* EBADF, ENOTSOCK */
    if (!listening) return async__future_failed(EINVAL);
    int err = async__net_set_nonblock(fd);
    if (err) return async__future_failed(err);
    serve_t *s = calloc(1, sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    s->lfd = fd;
    s->handler = handler;
    s->arg = arg;
    if (opts) {
        s->on_stop = opts->on_stop;
        s->stack_size = opts->stack_size;
    }
    int nodelay = 0;
    len = sizeof nodelay;
    s->nodelay = getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len) == 0 && nodelay;
    pthread_mutex_init(&s->lock, NULL);
    async_waitgroup_init(&s->live);
    char name[24];
    snprintf(name, sizeof name, "serve fd %d", fd);
    async_spawn_opts_t o = {.name = name};
    return async__spawn_owned(serve_main, s, free, &o); /* s is freed as the task ends */
}
