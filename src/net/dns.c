/* Name resolution: getaddrinfo and getnameinfo as jobs on the blocking pool.
 *
 * Why the pool, and its user share: a lookup may wait seconds on a DNS
 * server, like the blocking jobs users submit, so it is queued as
 * ASYNC_POOL_USER. The threads reserved for file operations then stay free
 * while resolvers hang, which they would not with ASYNC_POOL_FS. libuv's
 * uv_getaddrinfo was not used: it runs on libuv's own fixed-size threadpool,
 * a second pool beside ours that no setting of asyncstd would size.
 *
 * Result convention (net.h): the await gives the resolver's own code, except
 * that failures with an errno come as -1/errno, so -1 always means "see
 * errno". The job function returns -1 with errno set for those, which the
 * pool turns into the future's error. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A resolver code as the job's result: 0, an EAI_* code, or -1 with errno. */
static intptr_t gai_result(int r) {
    if (r == EAI_SYSTEM) {
        if (!errno) errno = EIO;
        return -1;
    }
    if (r == -1) { /* glibc's EAI_BADFLAGS: would read as "see errno" */
        errno = EINVAL;
        return -1;
    }
    return r;
}

int async__net_gai_errno(int gai) {
    switch (gai) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
        return ENXIO;
    case EAI_AGAIN:
        return EAGAIN;
    case EAI_MEMORY:
        return ENOMEM;
    case EAI_SERVICE:
    case EAI_FAMILY:
    case EAI_SOCKTYPE:
        return EINVAL;
    default:
        return EIO;
    }
}

/* ---- getaddrinfo ----------------------------------------------------------- */

typedef struct gai_job {
    async__job_t job; /* first */
    const char *node, *service;
    struct addrinfo hints;
    bool has_hints;
    struct addrinfo **res;
    char strings[]; /* copies of node and service */
} gai_job_t;

static intptr_t run_getaddrinfo(async__job_t *j) {
    gai_job_t *g = (gai_job_t *)j;
    struct addrinfo *list = NULL;
    errno = 0;
    int r = getaddrinfo(g->node, g->service, g->has_hints ? &g->hints : NULL, &list);
    if (r == 0) *g->res = list; /* before the pool settles the future */
    return gai_result(r);
}

async_future_t *async_getaddrinfo(const char *node, const char *service,
                                  const struct addrinfo *hints, struct addrinfo **res) {
    if (!res) return async__future_failed(EINVAL);
    if (!node && !service) return async__future_done(EAI_NONAME);
    if (!async__runtime()) return async__future_failed(errno);
    size_t nlen = node ? strlen(node) + 1 : 0, slen = service ? strlen(service) + 1 : 0;
    gai_job_t *g = malloc(sizeof *g + nlen + slen);
    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    async__future_init(&g->job.future, &async__job_ops);
    g->job.work = run_getaddrinfo;
    g->job.kind = ASYNC_POOL_USER;
    g->node = node ? memcpy(g->strings, node, nlen) : NULL;
    g->service = service ? memcpy(g->strings + nlen, service, slen) : NULL;
    g->has_hints = hints != NULL;
    if (hints) {
        /* only these four fields are read; the rest must be zero (getaddrinfo(3)) */
        memset(&g->hints, 0, sizeof g->hints);
        g->hints.ai_flags = hints->ai_flags;
        g->hints.ai_family = hints->ai_family;
        g->hints.ai_socktype = hints->ai_socktype;
        g->hints.ai_protocol = hints->ai_protocol;
    }
    g->res = res;
    return async__pool_submit(&g->job);
}

void async_freeaddrinfo(struct addrinfo *res) {
    if (res) freeaddrinfo(res);
}

/* ---- getnameinfo ----------------------------------------------------------- */

typedef struct gni_job {
    async__job_t job; /* first */
    struct sockaddr_storage addr;
    socklen_t addrlen, hostlen, servlen;
    char *host, *serv;
    int flags;
} gni_job_t;

static intptr_t run_getnameinfo(async__job_t *j) {
    gni_job_t *g = (gni_job_t *)j;
    errno = 0;
    int r = getnameinfo((struct sockaddr *)&g->addr, g->addrlen, g->host, g->hostlen, g->serv,
                        g->servlen, g->flags);
    return gai_result(r);
}

async_future_t *async_getnameinfo(const struct sockaddr *addr, socklen_t addrlen, char *host,
                                  socklen_t hostlen, char *serv, socklen_t servlen, int flags) {
    if (!addr || addrlen > sizeof(struct sockaddr_storage)) return async__future_failed(EINVAL);
    if (!async__runtime()) return async__future_failed(errno);
    gni_job_t *g = malloc(sizeof *g);
    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    async__future_init(&g->job.future, &async__job_ops);
    g->job.work = run_getnameinfo;
    g->job.kind = ASYNC_POOL_USER;
    memset(&g->addr, 0, sizeof g->addr);
    memcpy(&g->addr, addr, addrlen);
    g->addrlen = addrlen;
    g->host = host;
    g->hostlen = host ? hostlen : 0;
    g->serv = serv;
    g->servlen = serv ? servlen : 0;
    g->flags = flags;
    return async__pool_submit(&g->job);
}
