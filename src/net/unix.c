/* The Unix-domain helpers: async_unix_connect (a task, since a full backlog
 * means retrying) and async_unix_listen (inline: nothing in it waits). Paths
 * starting with '@' name Linux's abstract namespace. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

/* Fills `sun` for `path`; its length, or 0 with errno. */
static socklen_t unix_addr(struct sockaddr_un *sun, const char *path) {
    if (!path || !*path) {
        errno = EINVAL;
        return 0;
    }
    size_t len = strlen(path);
    if (len >= sizeof sun->sun_path) {
        errno = ENAMETOOLONG;
        return 0;
    }
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, len);
    if (path[0] == '@') {
        sun->sun_path[0] = '\0'; /* abstract: the name is exactly these bytes, no terminator */
        return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    }
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

typedef struct unix_req {
    struct sockaddr_un addr;
    socklen_t len;
} unix_req_t;

static intptr_t unix_connect_task(void *arg) {
    unix_req_t *req = arg;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    async__io_fd_new(fd);
    /* A Unix listener with a full backlog makes a non-blocking connect fail with
     * EAGAIN, and nothing signals when room is made: poll at growing intervals. */
    for (unsigned pause_us = 500;; pause_us = pause_us < 32000 ? pause_us * 2 : pause_us) {
        if (async_await(async_connect(fd, (struct sockaddr *)&req->addr, req->len)) == 0) return fd;
        if (errno != EAGAIN || async_await(async_usleep(pause_us)) < 0) break;
    }
    int err = errno;
    async__net_close(fd);
    errno = err;
    return -1;
}

async_future_t *async_unix_connect(const char *path) {
    unix_req_t *req = malloc(sizeof *req);
    if (!req) {
        errno = ENOMEM;
        return NULL;
    }
    req->len = unix_addr(&req->addr, path);
    if (!req->len) {
        int e = errno;
        free(req);
        return async__future_failed(e);
    }
    return async__spawn_owned(unix_connect_task, req, free, NULL);
}

async_future_t *async_unix_listen(const char *path, int backlog) {
    struct sockaddr_un sun;
    socklen_t len = unix_addr(&sun, path);
    if (!len) return async__future_failed(errno);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return async__future_failed(errno);
    async__io_fd_new(fd);
    if (bind(fd, (struct sockaddr *)&sun, len) < 0 ||
        listen(fd, backlog > 0 ? backlog : SOMAXCONN) < 0) {
        int e = errno;
        close(fd); /* never waited on: no registration to drop */
        return async__future_failed(e);
    }
    async_future_t *f = async__future_done(fd);
    if (!f) {
        close(fd);
        errno = ENOMEM;
    }
    return f;
}
