/* httpd: an HTTP/1.1 static file server, one task per connection.
 *
 *     build/examples/httpd HOST PORT ROOT     (PORT 0: a free port, printed on stderr)
 *     curl -v http://127.0.0.1:PORT/some/file
 *
 * What it serves: GET and HEAD of the files under ROOT, with keep-alive
 * (HTTP/1.1's default; `Connection: close` honoured; HTTP/1.0 only when it
 * asks), pipelined requests, Content-Length and Content-Type, one byte range
 * (`Range: bytes=a-b`, `a-`, `-n`; several ranges get the whole file),
 * If-Modified-Since (304), and for a directory its index.html or a generated
 * listing. Errors: 400, 403, 404, 405 (with Allow), 414, 431 and 505.
 *
 * Limits a server on a network needs: a request head must arrive whole within
 * IDLE_MS of the connection's last response (a client trickling bytes is cut
 * off then, as nginx's client_header_timeout does), in at most HEAD_MAX bytes.
 * Where it answers differently from nginx, by choice: a GET or HEAD with a body
 * (Content-Length other than 0, Transfer-Encoding) is a 400 and the connection
 * closes, where nginx reads the body and drops it; "..", raw or encoded, is 403
 * (nginx: 400); a Range that is malformed ("bytes=5-2") or has several ranges
 * gets the whole file with 200 (RFC 9110 lets a server ignore Range; nginx
 * answers several ranges with multipart/byteranges and a malformed one with
 * 416); any range of an empty file is 416 (nginx: 200); an If-Modified-Since
 * at or after the file's time gives 304 (nginx by default only the same time);
 * HTTP/0.9's bare "GET /path" is a 400, and lowercase "get" a 405. A client that
 * stops reading is cut off once a send has made no progress for
 * SEND_TIMEOUT_MS (60 s, as nginx's send_timeout; $HTTPD_SEND_TIMEOUT_MS).
 *
 * How it maps onto asyncstd:
 *   - async_tcp_serve() runs the accept loop and one task per connection;
 *     connections are independent, so one that fails ends only itself.
 *   - The main task waits for SIGINT/SIGTERM with async_sigwait(), then
 *     cancels the server, which cancels the connections and waits for them.
 *   - async_fstat(), async_close() and the cached-path open below are
 *     answered on the calling thread when the kernel can do so without
 *     waiting for the disk; only the rest goes to the blocking pool.
 *   - Bodies go out with async_sendfile(), straight from the page cache.
 *
 * Confinement to ROOT: the path is percent-decoded, ".." segments are
 * refused, and the file is opened relative to a ROOT directory fd with
 * openat2(RESOLVE_BENEATH), which also refuses symlinks that lead out of
 * ROOT. Kernels without openat2 (before 5.6) get a realpath prefix check.
 * The libc calls used are the reentrant ones (gmtime_r, not gmtime): every
 * task shares the process. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
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
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <asyncstd/asyncstd.h>

#define HEAD_MAX 8192  /* most bytes of a request head (431 beyond) */
#define LINE_MAX_ 4096 /* most bytes of a request line (414 beyond) */
#define IDLE_MS 30000  /* a keep-alive connection silent this long is closed */
/* A send that makes no progress this long closes the connection, as nginx's
 * send_timeout: a client that stops reading must not hold its socket and its
 * file for good. $HTTPD_SEND_TIMEOUT_MS sets it (the tests make it short). */
#define SEND_TIMEOUT_MS 60000
static int64_t send_timeout_ms = SEND_TIMEOUT_MS;
#define RESPONSE_MAX 1024 /* a response head */
/* Extra header lines: at most a redirect's Location, whose path (of a request
 * line of at most LINE_MAX_ bytes) is percent-encoded, 3 bytes a byte, with
 * the query after it */
#define EXTRA_MAX (4 * LINE_MAX_)

static int root_fd = -1;         /* ROOT, opened once; every file is opened relative to it */
static char root_real[PATH_MAX]; /* ROOT's realpath, for the fallback check */
static int openat2_level;        /* what the kernel has, found at start: see probe_openat2() */

/* ---- one parsed request ----------------------------------------------------------- */

typedef struct request {
    bool head;            /* HEAD rather than GET */
    bool keep_alive;      /* the connection stays open after the response */
    bool http10;          /* an HTTP/1.0 client */
    char path[LINE_MAX_]; /* decoded, relative to ROOT ("." for ROOT itself) */
    bool trailing_slash;  /* the URL path ended with '/' */
    char *query;          /* what followed '?', as sent (into the head), or NULL */
    const char *range;    /* the Range header's value, or NULL */
    const char *ims;      /* the If-Modified-Since value, or NULL */
} request_t;

/* ---- small helpers ---------------------------------------------------------------- */

/* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), with gmtime_r: the
 * plain gmtime's static buffer would be shared by every task. */
static void http_date(time_t t, char out[40]) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Parses an IMF-fixdate; -1 when it is not one. */
static time_t parse_http_date(const char *s) {
    struct tm tm = {0};
    const char *end = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return end ? timegm(&tm) : (time_t)-1;
}

/* The Content-Type for a file name, from its extension. */
static const char *content_type(const char *name) {
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"},
        {".css", "text/css"},
        {".js", "text/javascript"},
        {".json", "application/json"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".svg", "image/svg+xml"},
        {".ico", "image/x-icon"},
        {".pdf", "application/pdf"},
        {".wasm", "application/wasm"},
    };
    const char *dot = strrchr(name, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (!strcasecmp(dot, types[i].ext)) return types[i].type;
    return "application/octet-stream";
}

/* Does a comma-separated header value hold `token` (case-insensitively)? */
static bool has_token(const char *value, const char *token) {
    size_t n = strlen(token);
    for (const char *p = value; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *end = p;
        while (*end && *end != ',') end++;
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t')) last--;
        if ((size_t)(last - p) == n && !strncasecmp(p, token, n)) return true;
        p = end;
    }
    return false;
}

/* ---- sending ---------------------------------------------------------------------- */

/* Sends all of buf. async_send waits until the socket took it all; a timeout
 * cancels it and gives the count sent so far, so each wait that sends
 * something starts another send_timeout_ms. */
static int send_all(int fd, const void *buf, size_t len, int flags) {
    for (size_t done = 0; done < len;) {
        intptr_t n = async_await_timeout(
            async_send(fd, (const char *)buf + done, len - done, flags), send_timeout_ms);
        if (n <= 0) return -1; /* the client is gone, or read nothing for that long */
        done += (size_t)n;
    }
    return 0;
}

/* Sends `count` bytes of `file` from `off`. async_sendfile is short only at
 * the file's end or after an error, so 0 means the file shrank under us. */
static int send_file_range(int sock, int file, off_t off, off_t count) {
    off_t end = off + count;
    while (off < end) {
        /* as send_all: a timeout gives the count sent, and *off where it ended */
        intptr_t n = async_await_timeout(async_sendfile(sock, file, &off, (size_t)(end - off)),
                                         send_timeout_ms);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
    }
    return 0;
}

/* The reason phrase of the statuses we send. */
static const char *reason_phrase(int status) {
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 414:
        return "URI Too Long";
    case 416:
        return "Range Not Satisfiable";
    case 431:
        return "Request Header Fields Too Large";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Internal Server Error";
    }
}

/* Sends a response head: the status line, the common headers, `extra`
 * (zero or more "Name: value\r\n" lines) and the blank line. `more` says a
 * body follows (MSG_MORE lets the kernel put both in one packet). */
static int send_head(int fd, const request_t *rq, int status, const char *extra, off_t length,
                     bool more) {
    char date[40], head[RESPONSE_MAX + EXTRA_MAX];
    http_date(time(NULL), date);
    const char *conn = !rq->keep_alive ? "Connection: close\r\n"
                       : rq->http10    ? "Connection: keep-alive\r\n"
                                       : "";
    int n =
        snprintf(head, sizeof head,
                 "HTTP/1.1 %d %s\r\nServer: asyncstd-httpd\r\nDate: %s\r\n%s"
                 "Content-Length: %lld\r\n%s\r\n",
                 status, reason_phrase(status), date, conn, (long long)length, extra ? extra : "");
    if (n < 0 || n >= (int)sizeof head) return -1;
    return send_all(fd, head, (size_t)n, more ? MSG_MORE : 0);
}

/* An error (or redirect) response with a one-line HTML body; `extra` as
 * for send_head(), or NULL. */
static int send_error(int fd, const request_t *rq, int status, const char *extra) {
    char body[256], headers[EXTRA_MAX + 128];
    const char *reason = reason_phrase(status);
    int n = snprintf(body, sizeof body, "<!DOCTYPE html>\n<title>%d %s</title>\n<h1>%d %s</h1>\n",
                     status, reason, status, reason);
    snprintf(headers, sizeof headers, "Content-Type: text/html\r\n%s%s",
             status == 405 ? "Allow: GET, HEAD\r\n" : "", extra ? extra : "");
    if (send_head(fd, rq, status, headers, n, !rq->head) < 0) return -1;
    return rq->head ? 0 : send_all(fd, body, (size_t)n, 0);
}

/* ---- parsing the request ---------------------------------------------------------- */

/* Decodes %XX escapes in place; false for a bad escape or an encoded NUL. */
static bool percent_decode(char *s) {
    char *out = s;
    for (; *s; s++) {
        if (*s != '%') {
            *out++ = *s;
            continue;
        }
        if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2])) return false;
        char hex[3] = {s[1], s[2], 0};
        int c = (int)strtol(hex, NULL, 16);
        if (c == 0) return false;
        *out++ = (char)c;
        s += 2;
    }
    *out = 0;
    return true;
}

/* Turns the URL path into a path relative to ROOT: decoded, the query cut,
 * "." and empty segments dropped. Returns 0, 400 (malformed) or 403 (".."). */
static int normalize_path(char *target, request_t *rq) {
    /* the absolute form ("http://host/path"), which a server must take too: its path */
    size_t scheme = !strncasecmp(target, "http://", 7)    ? 7
                    : !strncasecmp(target, "https://", 8) ? 8
                                                          : 0;
    if (scheme) {
        target += scheme + strcspn(target + scheme, "/?#");
        if (*target != '/') { /* "http://host": the root */
            strcpy(rq->path, ".");
            rq->trailing_slash = true;
            return 0;
        }
    }
    if (target[0] != '/') return 400; /* origin-form: "/path?query" */
    size_t end = strcspn(target, "?#");
    if (target[end] == '?') { /* kept (without a fragment) for a directory's redirect */
        rq->query = target + end + 1;
        rq->query[strcspn(rq->query, "#")] = 0;
    }
    target[end] = 0;
    if (!percent_decode(target)) return 400;
    rq->trailing_slash = target[strlen(target) - 1] == '/';
    size_t len = 0;
    for (char *save, *seg = strtok_r(target, "/", &save); seg; seg = strtok_r(NULL, "/", &save)) {
        if (!strcmp(seg, ".")) continue;
        if (!strcmp(seg, "..")) return 403; /* no way up, not even one that comes back */
        int n = snprintf(rq->path + len, sizeof rq->path - len, "%s%s", len ? "/" : "", seg);
        if (n < 0 || (size_t)n >= sizeof rq->path - len) return 400;
        len += (size_t)n;
    }
    if (len == 0) strcpy(rq->path, ".");
    return 0;
}

/* Parses the request line; returns 0 or an error status. */
static int parse_request_line(char *line, request_t *rq) {
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strchr(sp2 + 1, ' ')) return 400;
    *sp1 = *sp2 = 0;
    const char *method = line, *v = sp2 + 1;
    /* "HTTP/1.0" or "HTTP/1.1"; a later 1.x is answered as 1.1, another major with 505 */
    if (strncmp(v, "HTTP/", 5) != 0 || !isdigit((unsigned char)v[5]) || v[6] != '.' ||
        !isdigit((unsigned char)v[7]) || v[8])
        return 400;
    if (v[5] != '1') return 505;
    rq->http10 = v[7] == '0';
    rq->keep_alive = !rq->http10;
    if (!strcmp(method, "HEAD"))
        rq->head = true;
    else if (strcmp(method, "GET") != 0)
        return 405;
    return normalize_path(sp1 + 1, rq);
}

/* Parses the head (request line and headers, NUL-terminated, CRLFs intact)
 * into rq. Returns 0 or an error status. */
static int parse_request(char *head, request_t *rq) {
    char *save;
    char *line = strtok_r(head, "\r\n", &save);
    if (!line) return 400;
    int status = parse_request_line(line, rq);
    bool host = false, body = false;
    while ((line = strtok_r(NULL, "\r\n", &save))) {
        char *colon = strchr(line, ':');
        /* a name is a token: no blanks in it or before the colon, and no line folded
         * onto the last one (" more"), which RFC 9112 says to refuse */
        if (!colon || colon == line || strcspn(line, " \t") < (size_t)(colon - line)) return 400;
        *colon = 0;
        char *value = colon + 1, *vend = value + strlen(value);
        value += strspn(value, " \t");
        while (vend > value && (vend[-1] == ' ' || vend[-1] == '\t')) *--vend = 0;
        if (!strcasecmp(line, "Host")) {
            if (host) return 400; /* two Hosts: which one is meant? (RFC 9112 says 400) */
            host = true;
        } else if (!strcasecmp(line, "Connection")) {
            if (has_token(value, "close")) rq->keep_alive = false;
            if (rq->http10 && has_token(value, "keep-alive")) rq->keep_alive = true;
        } else if (!strcasecmp(line, "Range"))
            rq->range = value;
        else if (!strcasecmp(line, "If-Modified-Since"))
            rq->ims = value;
        else if (!strcasecmp(line, "Transfer-Encoding") ||
                 (!strcasecmp(line, "Content-Length") && strcmp(value, "0") != 0))
            body = true;
    }
    if (status) return status;
    if (body) return 400; /* a GET or HEAD with a body: we would not know where it ends */
    if (!rq->http10 && !host) return 400; /* HTTP/1.1 requires Host */
    return 0;
}

/* ---- byte ranges ------------------------------------------------------------------- */

/* Reads a single "bytes=a-b", "bytes=a-" or "bytes=-n" against `size`.
 * Returns 1 with [*from, *from + *count) for a satisfiable range, 0 to serve
 * the whole file (no Range, one we do not understand, or several ranges),
 * and -1 for an unsatisfiable one (416). */
static int parse_range(const char *value, off_t size, off_t *from, off_t *count) {
    if (!value || strncmp(value, "bytes=", 6) != 0 || strchr(value, ',')) return 0;
    const char *p = value + 6;
    char *end;
    if (*p == '-') { /* the last n bytes */
        if (!isdigit((unsigned char)p[1])) return 0;
        long long n = strtoll(p + 1, &end, 10);
        if (*end) return 0;
        if (n == 0 || size == 0) return -1;
        *count = n < size ? (off_t)n : size;
        *from = size - *count;
        return 1;
    }
    if (!isdigit((unsigned char)*p)) return 0;
    long long a = strtoll(p, &end, 10), b = (long long)size - 1;
    if (*end != '-') return 0;
    if (end[1]) {
        if (!isdigit((unsigned char)end[1])) return 0;
        b = strtoll(end + 1, &end, 10);
        if (*end || b < a) return 0;
    }
    if (a >= size) return -1;
    if (b >= size) b = size - 1;
    *from = (off_t)a;
    *count = (off_t)(b - a + 1);
    return 1;
}

/* ---- opening under ROOT ---------------------------------------------------------- */

/* O_NONBLOCK: opening a FIFO under ROOT would otherwise wait for a writer;
 * for files and directories it changes nothing. */
#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK)

/* openat2(2) and its flags came in steps: RESOLVE_BENEATH in Linux 5.6,
 * RESOLVE_CACHED in 5.12. Found once at start, so that tasks only read it. */
#define OPENAT2_NONE 0
#define OPENAT2_BENEATH 1
#define OPENAT2_CACHED 2

static int openat2_root(const char *path, uint64_t resolve) {
    struct open_how how = {.flags = OPEN_FLAGS, .resolve = resolve};
    return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
}

static int probe_openat2(void) {
    int level = OPENAT2_CACHED;
    int fd = openat2_root(".", RESOLVE_BENEATH | RESOLVE_CACHED);
    if (fd < 0 && errno == EAGAIN) return OPENAT2_CACHED; /* known, just not cached yet */
    if (fd < 0) { /* EINVAL: no RESOLVE_CACHED; ENOSYS: no openat2 at all */
        level = OPENAT2_BENEATH;
        fd = openat2_root(".", RESOLVE_BENEATH);
    }
    if (fd < 0) return OPENAT2_NONE;
    async_await(async_close(fd));
    return level;
}

/* RESOLVE_BENEATH refuses any path that would leave ROOT, through ".." or a
 * symlink, with EXDEV. On the pool, as the lookup may wait for the disk. */
static intptr_t openat2_blocking(void *arg) { return openat2_root(arg, RESOLVE_BENEATH); }

/* With RESOLVE_CACHED the kernel answers on this thread when the lookup
 * needs no disk, and says EAGAIN otherwise: then the pool does it. A pool
 * job that has started runs to its end, so the task must not be cancelled
 * away from it: the job reads `path` from this task's stack, and the fd it
 * opens would be lost. */
static int open_beneath_openat2(const char *path) {
    if (openat2_level == OPENAT2_CACHED) {
        int fd = openat2_root(path, RESOLVE_BENEATH | RESOLVE_CACHED);
        if (fd >= 0 || errno != EAGAIN) return fd;
    }
    int old;
    async_setcancelstate(ASYNC_CANCEL_DISABLE, &old);
    int fd = (int)async_await(async_spawn_blocking(openat2_blocking, (void *)path));
    async_setcancelstate(old, NULL);
    return fd;
}

/* Without openat2: open, then check that what was opened resolves under ROOT. */
static int open_beneath_fallback(const char *path) {
    int fd = (int)async_await(async_openat(root_fd, path, OPEN_FLAGS));
    if (fd < 0) return -1;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    char *real = async_await_ptr(async_realpath(link, NULL));
    size_t n = strlen(root_real);
    bool inside = real && !strncmp(real, root_real, n) &&
                  (real[n] == '/' || real[n] == 0 || !strcmp(root_real, "/"));
    free(real);
    if (!inside) {
        async_await(async_close(fd));
        errno = EXDEV;
        return -1;
    }
    return fd;
}

/* Opens `path` (relative to ROOT) for reading, confined to ROOT. */
static int open_beneath(const char *path) {
    return openat2_level != OPENAT2_NONE ? open_beneath_openat2(path) : open_beneath_fallback(path);
}

/* The status for a failed open: 404 for what is not there, 403 for the rest
 * (EXDEV: outside ROOT; EACCES, ELOOP, ...). */
static int open_error_status(int err) {
    return err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG ? 404 : 403;
}

/* ---- responses -------------------------------------------------------------------- */

/* A regular file: 200, 206, 304 or 416. Takes no ownership of `fd`. */
static int serve_file(int sock, const request_t *rq, int fd, const struct stat *st) {
    char last_modified[40], extra[256];
    http_date(st->st_mtime, last_modified);
    if (rq->ims) {
        time_t since = parse_http_date(rq->ims);
        /* a date after now is no date the client can have seen (RFC 9110): ignored */
        if (since != (time_t)-1 && since <= time(NULL) && st->st_mtime <= since) {
            snprintf(extra, sizeof extra, "Last-Modified: %s\r\n", last_modified);
            return send_head(sock, rq, 304, extra, st->st_size, false); /* the 200's length */
        }
    }
    off_t from = 0, count = st->st_size;
    int range = parse_range(rq->range, st->st_size, &from, &count);
    if (range < 0) {
        snprintf(extra, sizeof extra, "Content-Range: bytes */%lld\r\n", (long long)st->st_size);
        return send_error(sock, rq, 416, extra);
    }
    int n = snprintf(extra, sizeof extra,
                     "Content-Type: %s\r\nLast-Modified: %s\r\n"
                     "Accept-Ranges: bytes\r\n",
                     content_type(rq->path), last_modified);
    if (range > 0)
        snprintf(extra + n, sizeof extra - (size_t)n, "Content-Range: bytes %lld-%lld/%lld\r\n",
                 (long long)from, (long long)(from + count - 1), (long long)st->st_size);
    bool body = !rq->head && count > 0;
    int status = range > 0 ? 206 : 200;
    if (send_head(sock, rq, status, extra, count, body) < 0) return -1;
    return body ? send_file_range(sock, fd, from, count) : 0;
}

/* Appends text to a growing buffer; false when out of memory. */
typedef struct buffer {
    char *data;
    size_t len, cap;
} buffer_t;

static bool append(buffer_t *b, const char *s, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + n) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) return false;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return true;
}

static bool append_str(buffer_t *b, const char *s) { return append(b, s, strlen(s)); }

/* Appends a file name twice escaped: percent-encoded for the href, and
 * HTML-escaped for the text, so that no name can inject markup. */
static bool append_entry(buffer_t *b, const char *name, bool dir) {
    bool ok = append_str(b, "<li><a href=\"");
    for (const unsigned char *p = (const unsigned char *)name; ok && *p; p++) {
        char esc[4];
        if (isalnum(*p) || strchr("-._~", *p))
            ok = append(b, (const char *)p, 1);
        else
            ok = append(b, esc, (size_t)snprintf(esc, sizeof esc, "%%%02X", *p));
    }
    ok = ok && append_str(b, dir ? "/\">" : "\">");
    for (const char *p = name; ok && *p; p++) {
        const char *e = *p == '<'    ? "&lt;"
                        : *p == '>'  ? "&gt;"
                        : *p == '&'  ? "&amp;"
                        : *p == '"'  ? "&quot;"
                        : *p == '\'' ? "&#39;"
                                     : NULL;
        ok = e ? append_str(b, e) : append(b, p, 1);
    }
    return ok && append_str(b, dir ? "/</a>\n" : "</a>\n");
}

/* A generated listing of the directory open on `dirfd` (which it consumes). */
static int serve_listing(int sock, const request_t *rq, int dirfd) {
    async_dir_t *dir = async_fdopendir(dirfd);
    if (!dir) {
        async_await(async_close(dirfd));
        return send_error(sock, rq, 500, NULL);
    }
    buffer_t b = {0};
    bool ok = append_str(&b, "<!DOCTYPE html>\n<title>Index</title>\n<ul>\n");
    while (ok) {
        errno = 0; /* NULL with errno still 0 is the end; with errno set, an error */
        struct dirent *e = async_await_ptr(async_readdir(dir));
        if (!e) {
            ok = errno == 0;
            break;
        }
        if (e->d_name[0] == '.') continue; /* ".", ".." and hidden files */
        ok = append_entry(&b, e->d_name, e->d_type == DT_DIR);
    }
    ok = ok && append_str(&b, "</ul>\n");
    async_await(async_closedir(dir));
    int r;
    if (!ok)
        r = send_error(sock, rq, 500, NULL);
    else if (send_head(sock, rq, 200, "Content-Type: text/html; charset=utf-8\r\n", (off_t)b.len,
                       !rq->head) < 0)
        r = -1;
    else
        r = rq->head ? 0 : send_all(sock, b.data, b.len, 0);
    free(b.data);
    return r;
}

/* A directory: redirect to the URL with '/', else its index.html, else a listing.
 * Takes ownership of `dirfd`. */
static int serve_directory(int sock, request_t *rq, int dirfd) {
    if (!rq->trailing_slash) { /* relative links in the page need the slash */
        async_await(async_close(dirfd));
        /* the path percent-encoded again: a name with a blank, a CR or an LF in it
         * must not reach the header as it is; ROOT itself ("/." ) is "/" */
        char extra[EXTRA_MAX];
        size_t n = (size_t)snprintf(extra, sizeof extra, "Location: /");
        if (strcmp(rq->path, ".") != 0) {
            for (const unsigned char *p = (const unsigned char *)rq->path; *p; p++) {
                if (isalnum(*p) || strchr("-._~/", *p))
                    extra[n++] = (char)*p;
                else
                    n += (size_t)snprintf(extra + n, sizeof extra - n, "%%%02X", *p);
            }
            extra[n++] = '/';
        }
        /* the query as it came (a request line holds no CR or LF), as nginx keeps it */
        snprintf(extra + n, sizeof extra - n, "%s%s\r\n", rq->query ? "?" : "",
                 rq->query ? rq->query : "");
        return send_error(sock, rq, 301, extra);
    }
    size_t len = strlen(rq->path);
    if (len + sizeof "/index.html" > sizeof rq->path) {
        async_await(async_close(dirfd));
        return send_error(sock, rq, 404, NULL);
    }
    strcpy(rq->path + len, "/index.html");
    int fd = open_beneath(rq->path);
    struct stat st;
    if (fd >= 0 && async_await(async_fstat(fd, &st)) == 0 && S_ISREG(st.st_mode)) {
        async_await(async_close(dirfd));
        int r = serve_file(sock, rq, fd, &st);
        async_await(async_close(fd));
        return r;
    }
    if (fd >= 0) async_await(async_close(fd));
    rq->path[len] = 0;
    return serve_listing(sock, rq, dirfd);
}

/* Answers one parsed request. Returns 0 to go on, -1 to drop the connection. */
static int respond(int sock, request_t *rq) {
    int fd = open_beneath(rq->path);
    if (fd < 0) return send_error(sock, rq, open_error_status(errno), NULL);
    struct stat st;
    if (async_await(async_fstat(fd, &st)) < 0) {
        async_await(async_close(fd));
        return send_error(sock, rq, 500, NULL);
    }
    if (S_ISDIR(st.st_mode)) return serve_directory(sock, rq, fd);
    int r;
    if (!S_ISREG(st.st_mode))
        r = send_error(sock, rq, 403, NULL); /* fifos, devices */
    else if (rq->trailing_slash)
        r = send_error(sock, rq, 404, NULL); /* "file/": it is not a directory */
    else
        r = serve_file(sock, rq, fd, &st);
    async_await(async_close(fd));
    return r;
}

/* ---- the connection ---------------------------------------------------------------- */

/* The monotonic clock in milliseconds: deadlines survive changes of the wall clock. */
static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The end of the head in buf[0..len) (just past its blank line), or 0. Lines may
 * end in a bare LF, which RFC 9112 lets a server take (nginx does): waiting for
 * a CRLF that never comes would leave such a client unanswered. */
static size_t head_end(const char *buf, size_t len) {
    for (const char *p = buf, *end = buf + len; (p = memchr(p, '\n', (size_t)(end - p))); p++) {
        const char *q = p + 1 < end && p[1] == '\r' ? p + 2 : p + 1;
        if (q < end && *q == '\n') return (size_t)(q + 1 - buf);
    }
    return 0;
}

/* Does the request in buf[0..len) outgrow the limits? 414 when its request
 * line is too long, 431 when the head is (`complete`: the whole head is
 * there), else 0. */
static int oversize_status(const char *buf, size_t len, bool complete) {
    const char *eol = memchr(buf, '\n', len);
    if (!eol ? len > LINE_MAX_ : (size_t)(eol - buf) > LINE_MAX_) return 414;
    /* a whole request line with no version (HTTP/0.9's "GET /path"): no header block
     * follows it, so it is refused now rather than when the head times out */
    size_t line = eol ? (size_t)(eol - buf) : 0;
    if (line && buf[line - 1] == '\r') line--;
    if (!complete && line && !memmem(buf, line, " HTTP/", 6)) return 400;
    return !complete && len >= HEAD_MAX ? 431 : 0;
}

/* One connection: read requests, answer each, until the client is done, asks
 * to close, errs, or idles. Requests that arrive together (pipelining) are
 * answered in order from the buffer before reading more.
 * async_tcp_serve closes the socket when this returns. */
static intptr_t serve_connection(int sock, void *arg) {
    (void)arg;
    char *buf = malloc(HEAD_MAX + 1);
    if (!buf) return -1;
    size_t len = 0;
    unsigned served = 0;
    int status;
    for (;;) {
        size_t end;
        /* The whole head, not each read of it, must come within IDLE_MS of the last
         * response: a client sending a byte now and then (slowloris) would otherwise
         * hold the connection for as long as it likes. */
        int64_t deadline = now_ms() + IDLE_MS;
        while (!(end = head_end(buf, len))) {
            if ((status = oversize_status(buf, len, false))) goto refuse;
            int64_t left = deadline - now_ms();
            intptr_t n =
                left <= 0
                    ? -1
                    : async_await_timeout(async_recv(sock, buf + len, HEAD_MAX - len, 0), left);
            if (n <= 0) goto out; /* 0: the client closed; -1: reset, timeout or cancelled */
            len += (size_t)n;
        }
        if ((status = oversize_status(buf, end, true))) goto refuse;
        char saved = buf[end]; /* the head is a string from here on: parse it in place */
        buf[end] = 0;
        request_t rq = {0};
        status = parse_request(buf, &rq);
        buf[end] = saved;
        int r;
        if (status) {
            rq.keep_alive = false; /* after an error the stream may be out of step */
            r = send_error(sock, &rq, status, NULL);
        } else
            r = respond(sock, &rq);
        if (r < 0 || !rq.keep_alive) break;
        memmove(buf, buf + end, len - end); /* the next pipelined request, if any */
        len -= end;
        /* A recv that finds data and a send that finds room do not switch
         * tasks: a client that never stops sending would keep this worker. */
        if (++served % 64 == 0) async_yield();
    }
    goto out;
refuse: /* too big to read on: answer, and close (the rest of it is unread) */
    send_error(sock, &(request_t){.keep_alive = false}, status, NULL);
out:
    free(buf);
    return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

/* Opens ROOT once; every request's path is resolved under this fd. */
static int open_root(const char *root) {
    root_fd = (int)async_await(async_open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (root_fd < 0) return -1;
    openat2_level = probe_openat2();
    char *real = async_await_ptr(async_realpath(root, NULL));
    if (!real || strlen(real) >= sizeof root_real) {
        free(real);
        return -1;
    }
    strcpy(root_real, real);
    free(real);
    return 0;
}

/* Says where the server listens; with port 0 the kernel picked one. */
static void announce(int lfd, const char *host, const char *root) {
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    char port[16] = "?";
    if (getsockname(lfd, (struct sockaddr *)&addr, &len) == 0)
        getnameinfo((struct sockaddr *)&addr, len, NULL, 0, port, sizeof port, NI_NUMERICSERV);
    fprintf(stderr, "httpd: listening on %s port %s, serving %s with %d workers (pid %d)\n", host,
            port, root, async_worker_count(), (int)getpid());
}

/* Serves until SIGINT or SIGTERM (see examples/echo.c for the pattern). */
static int run_server(const char *host, const char *port) {
    int lfd = (int)async_await(async_tcp_listen(host, port, 511));
    if (lfd < 0) {
        perror("httpd: listen");
        return 1;
    }
    int one = 1; /* accepted sockets inherit it: a response's last packet goes out at once */
    setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    async_serve_opts_t opts = {.on_stop = ASYNC_SERVE_CANCEL};
    async_future_t *server = async_tcp_serve(lfd, serve_connection, NULL, &opts);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    async_future_t *fs[2] = {server, async_sigwait(&set, &sig)};
    announce(lfd, host, root_real);
    int r = 0;
    if (async_await_any(fs, 2) == 0) { /* the listener failed */
        async_await(server);
        perror("httpd: accept");
        r = 1;
        async_cancel(fs[1]);
    } else {
        fprintf(stderr, "httpd: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        async_cancel(server);
        async_await(server);
    }
    async_await(fs[1]);
    async_await(async_close(lfd));
    return r;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: httpd HOST PORT ROOT\n");
        return 2;
    }
    const char *t = getenv("HTTPD_SEND_TIMEOUT_MS");
    if (t && atoll(t) > 0) send_timeout_ms = atoll(t);
    int r;
    if (open_root(argv[3]) < 0) {
        perror("httpd: ROOT");
        r = 1;
    } else {
        r = run_server(argv[1], argv[2]);
    }
    if (root_fd >= 0) async_await(async_close(root_fd));
    async_runtime_shutdown();
    return r;
}
