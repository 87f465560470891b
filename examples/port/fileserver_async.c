/* fileserver_async: fileserver_threads.c ported to asyncstd, call for call:
 * one task per connection instead of one thread, and each blocking call
 * wrapped in async_await(). It is the "after" of the porting guide
 * (docs/porting.md, "A port, measured"); `diff -u fileserver_threads.c
 * fileserver_async.c` is the whole port.
 *
 *     fileserver_async HOST PORT ROOT
 *
 * Serves GET and HEAD for regular files under ROOT with keep-alive and
 * Content-Length; 400 for a malformed request, 403 for a path with ".." or
 * a directory, 404 for a missing file, 405 for other methods. */
#define _GNU_SOURCE
#include <asyncstd/asyncstd.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define REQUEST_MAX 8192

static const char *root;

/* Writes all of buf, or fails. */
static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = async_await(async_write(fd, buf, len));
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sends count bytes of file from offset 0, or fails. */
static int send_file(int sock, int file, off_t count) {
    off_t off = 0;
    while (off < count) {
        ssize_t n = async_await(async_sendfile(sock, file, &off, (size_t)(count - off)));
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) return -1; /* the file shrank */
    }
    return 0;
}

static int reply_status(int sock, int code, const char *reason, bool keep) {
    char head[256];
    int len =
        snprintf(head, sizeof head,
                 "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nContent-Type: text/plain\r\n"
                 "%s\r\n%s\n",
                 code, reason, strlen(reason) + 1, keep ? "" : "Connection: close\r\n", reason);
    return write_all(sock, head, (size_t)len);
}

/* Reads until a blank line ends the request head; returns its length (the
 * bytes after it stay in buf, counted in *have), 0 at a clean end of the
 * connection, -1 on an error or a head too long. */
static ssize_t read_head(int sock, char *buf, size_t *have) {
    for (;;) {
        char *end = memmem(buf, *have, "\r\n\r\n", 4);
        if (end) return end + 4 - buf;
        if (*have == REQUEST_MAX) return -1;
        ssize_t n = async_await(async_read(sock, buf + *have, REQUEST_MAX - *have));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n == 0 && *have == 0 ? 0 : -1;
        *have += (size_t)n;
    }
}

/* Serves one request; returns false when the connection must end. */
static bool serve(int sock, char *req, size_t len) {
    req[len - 4] = '\0'; /* the head as one string, without its blank line */
    char method[8], path[1024];
    int minor;
    if (sscanf(req, "%7s %1023s HTTP/1.%d", method, path, &minor) != 3 || path[0] != '/') {
        reply_status(sock, 400, "Bad Request", false);
        return false;
    }
    bool keep = minor >= 1 && !strcasestr(req, "\r\nConnection: close");
    bool head = !strcmp(method, "HEAD");
    if (!head && strcmp(method, "GET"))
        return reply_status(sock, 405, "Method Not Allowed", keep) == 0 && keep;
    if (strstr(path, "/..")) return reply_status(sock, 403, "Forbidden", keep) == 0 && keep;

    char file_path[2048];
    snprintf(file_path, sizeof file_path, "%s%s", root, path);
    int file = async_await(async_open(file_path, O_RDONLY | O_CLOEXEC));
    if (file < 0) {
        int code = errno == ENOENT || errno == ENOTDIR ? 404 : 403;
        return reply_status(sock, code, code == 404 ? "Not Found" : "Forbidden", keep) == 0 && keep;
    }
    struct stat st;
    if (async_await(async_fstat(file, &st)) < 0 || !S_ISREG(st.st_mode)) {
        async_await(async_close(file));
        return reply_status(sock, 403, "Forbidden", keep) == 0 && keep;
    }
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 200 OK\r\nContent-Length: %jd\r\n"
                     "Content-Type: application/octet-stream\r\n%s\r\n",
                     (intmax_t)st.st_size, keep ? "" : "Connection: close\r\n");
    bool ok =
        write_all(sock, hdr, (size_t)n) == 0 && (head || send_file(sock, file, st.st_size) == 0);
    async_await(async_close(file));
    return ok && keep;
}

static intptr_t connection(void *arg) {
    int sock = (int)(intptr_t)arg;
    char *buf = malloc(REQUEST_MAX);
    size_t have = 0;
    while (buf) {
        ssize_t len = read_head(sock, buf, &have);
        if (len <= 0) {
            if (len < 0) reply_status(sock, 400, "Bad Request", false);
            break;
        }
        if (!serve(sock, buf, (size_t)len)) break;
        memmove(buf, buf + len, have - (size_t)len); /* a pipelined next request */
        have -= (size_t)len;
    }
    free(buf);
    async_await(async_close(sock));
    return 0;
}

static int listen_on(const char *host, const char *port) {
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc) {
        fprintf(stderr, "%s:%s: %s\n", host, port, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s HOST PORT ROOT\n", argv[0]);
        return 2;
    }
    root = argv[3];
    signal(SIGPIPE, SIG_IGN);
    int lfd = listen_on(argv[1], argv[2]);
    if (lfd < 0) {
        perror("listen");
        return 1;
    }
    for (;;) {
        int sock = async_await(async_accept4(lfd, NULL, NULL, SOCK_CLOEXEC));
        if (sock < 0) {
            if (errno == EMFILE || errno == ENFILE) async_await(async_usleep(10000));
            continue;
        }
        int one = 1;
        setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        async_future_t *t = async_spawn(connection, (void *)(intptr_t)sock);
        if (t)
            async_future_free(t); /* detached: the connection runs on by itself */
        else
            async_await(async_close(sock));
    }
}
