/* Whole-file and tree helpers: read a file, write one atomically, copy one,
 * mkdir -p and rm -r. Each is one pool job that makes the blocking calls in
 * a row (one hop for the whole helper, not one per step), checking for
 * cancellation between steps. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "walk.h"

#define COPY_CHUNK (1 << 20)  /* bytes per kernel copy call: a cancellation point every MiB */
#define RW_CHUNK (256 * 1024) /* read()/write() fallback buffer */

static intptr_t fail_with(int err) {
    errno = err;
    return -1;
}

/* ---- readfile -------------------------------------------------------------- */

static intptr_t run_readfile(fs_op_t *op) {
    int fd = open(op->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) < 0) goto fail;
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        goto fail;
    }
    /* the size is a hint: /proc files say 0, and a file may grow meanwhile */
    size_t cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
    size_t len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        errno = ENOMEM;
        goto fail;
    }
    for (;;) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                errno = ENOMEM;
                goto fail;
            }
            buf = nb;
            cap *= 2;
        }
        if (async__fs_cancelled(op)) {
            free(buf);
            errno = ECANCELED;
            goto fail;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buf);
            errno = e;
            goto fail;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = 0;
    if (op->buf) *(size_t *)op->buf = len;
    return (intptr_t)buf;
fail : {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}
}

async_future_t *async_readfile(const char *path, size_t *len) {
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_readfile, path, NULL);
    if (!op) return NULL;
    op->buf = len;
    return async__fs_submit(op);
}

/* ---- writefile ----------------------------------------------------------------- */

static int write_full(fs_op_t *op, int fd, const char *p, size_t len) {
    while (len) {
        if (async__fs_cancelled(op)) return ECANCELED;
        ssize_t n = write(fd, p, len < RW_CHUNK * 4 ? len : RW_CHUNK * 4);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The temporary file is "<path>.tmp-XXXXXX" beside the target, so the rename
 * never crosses file systems. */
static intptr_t run_writefile(fs_op_t *op) {
    size_t plen = strlen(op->path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return fail_with(ENOMEM);
    int fd = -1;
    unsigned long long seed = (unsigned long long)(uintptr_t)op ^ (unsigned long long)time(NULL);
    for (int tries = 0; tries < 100 && fd < 0; tries++) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed =
            seed * 6364136223846793005ULL + (unsigned long long)ts.tv_nsec + 1442695040888963407ULL;
        snprintf(tmp, plen + 16, "%s.tmp-%06llx", op->path, (seed >> 20) & 0xffffff);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)op->mode);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return fail_with(e);
    }
    int err = write_full(op, fd, op->buf, op->count);
    if (!err && fsync(fd) < 0) err = errno;
    if (close(fd) < 0 && !err) err = errno;
    if (!err && async__fs_cancelled(op)) err = ECANCELED;
    if (!err && rename(tmp, op->path) < 0) err = errno;
    if (err) {
        unlink(tmp);
        free(tmp);
        return fail_with(err);
    }
    free(tmp);
    /* make the rename itself durable: sync the directory (best effort) */
    char *dir = strdup(op->path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        const char *d = slash ? (slash == dir ? "/" : (*slash = 0, dir)) : ".";
        int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    return 0;
}

async_future_t *async_writefile(const char *path, const void *buf, size_t len, mode_t mode) {
    if (!path || (!buf && len)) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_writefile, path, NULL);
    if (!op) return NULL;
    op->buf = (void *)buf;
    op->count = len;
    op->mode = (int)mode;
    return async__fs_submit(op);
}

/* ---- copyfile ------------------------------------------------------------------- */

/* copy_file_range first (in-kernel, may share extents); then sendfile; then
 * read/write. Each falls through to the next on the errors that mean "not
 * for these two files", only before it has copied anything. */
static intptr_t copy_fds(fs_op_t *op, int in, int out, int *errp) {
    intptr_t total = 0;
    int method = 0;
    char *buf = NULL;
    for (;;) {
        if (async__fs_cancelled(op)) {
            *errp = ECANCELED;
            break;
        }
        ssize_t n;
        if (method == 0)
            n = copy_file_range(in, NULL, out, NULL, COPY_CHUNK, 0);
        else if (method == 1)
            n = sendfile(out, in, NULL, COPY_CHUNK);
        else {
            if (!buf && !(buf = malloc(RW_CHUNK))) {
                *errp = ENOMEM;
                break;
            }
            n = read(in, buf, RW_CHUNK);
            if (n > 0) {
                int e = write_full(op, out, buf, (size_t)n);
                if (e) {
                    *errp = e;
                    break;
                }
            }
        }
        if (n < 0) {
            int e = errno;
            if (e == EINTR) continue;
            if (total == 0 && method < 2 &&
                (e == EXDEV || e == EINVAL || e == EOPNOTSUPP || e == ENOSYS || e == EBADF)) {
                method++;
                continue;
            }
            *errp = e;
            break;
        }
        if (n == 0) break;
        total += n;
    }
    free(buf);
    return total;
}

static intptr_t run_copyfile(fs_op_t *op) {
    int in = open(op->path, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -1;
    struct stat st;
    if (fstat(in, &st) < 0 || (S_ISDIR(st.st_mode) && (errno = EISDIR))) {
        int e = errno;
        close(in);
        return fail_with(e);
    }
    int out = open(op->path2, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 07777);
    if (out < 0) {
        int e = errno;
        close(in);
        return fail_with(e);
    }
    int err = 0;
    intptr_t total = copy_fds(op, in, out, &err);
    if (!err && fchmod(out, st.st_mode & 07777) < 0) err = errno;
    if (close(out) < 0 && !err) err = errno;
    close(in);
    if (err) {
        unlink(op->path2);
        return fail_with(err);
    }
    return total;
}

async_future_t *async_copyfile(const char *from, const char *to) {
    if (!from || !to) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_copyfile, from, to);
    return op ? async__fs_submit(op) : NULL;
}

/* ---- mkdir -p and rm -r ---------------------------------------------------------- */

static void set_failed(fs_op_t *op, const char *path) {
    char **failed = op->p2;
    if (failed) *failed = path ? strdup(path) : NULL;
}

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static intptr_t run_mkdir_p(fs_op_t *op) {
    set_failed(op, NULL);
    const char *path = op->path;
    mode_t mode = (mode_t)op->mode;
    if (!*path) {
        set_failed(op, path);
        return fail_with(ENOENT);
    }
    if (mkdir(path, mode) == 0) return 0;
    if (errno == EEXIST && is_dir(path)) return 0;
    if (errno != ENOENT && errno != ENOTDIR) {
        int e = errno;
        set_failed(op, path);
        return fail_with(e);
    }
    /* some parent is missing: create them from the top down */
    char *p = strdup(path);
    if (!p) return fail_with(ENOMEM);
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (i < n && p[i] != '/') continue;
        if (i < n && p[i - 1] == '/') continue; /* "a//b" */
        char c = p[i];
        p[i] = 0;
        int r = mkdir(p, mode);
        int e = errno;
        if (r < 0 && !(e == EEXIST && (i < n || is_dir(p)))) {
            set_failed(op, p);
            free(p);
            return fail_with(e);
        }
        p[i] = c;
    }
    free(p);
    return 0;
}

async_future_t *async_mkdir_p(const char *path, mode_t mode, char **failed) {
    if (failed) *failed = NULL;
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_mkdir_p, path, NULL);
    if (!op) return NULL;
    op->mode = (int)mode;
    op->p2 = failed;
    return async__fs_submit(op);
}

static intptr_t run_rmtree(fs_op_t *op) {
    set_failed(op, NULL);
    async_walk_t *w = async_walk_open(op->path, ASYNC_WALK_POST);
    if (!w) return -1;
    int err = 0;
    for (;;) {
        if (async__fs_cancelled(op)) {
            err = ECANCELED;
            break;
        }
        int r = async__fs_walk_step(w);
        if (r == 0) break;
        if (r < 0) {
            err = errno;
            set_failed(op, op->path);
            break;
        }
        const async_walk_entry_t *e = &w->ent;
        if (e->type == DT_DIR && !e->post) {
            if (e->error) { /* it cannot be listed, so it cannot be emptied: try anyway */
                if (rmdir(e->path) == 0) continue;
                err = errno == ENOTEMPTY || errno == EEXIST ? e->error : errno;
                set_failed(op, e->path);
                break;
            }
            continue; /* removed on the way back up */
        }
        int rr = e->type == DT_DIR ? rmdir(e->path) : unlink(e->path);
        if (rr < 0) {
            err = errno;
            set_failed(op, e->path);
            break;
        }
    }
    async_walk_close(w);
    return err ? fail_with(err) : 0;
}

async_future_t *async_rmtree(const char *path, char **failed) {
    if (failed) *failed = NULL;
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_rmtree, path, NULL);
    if (!op) return NULL;
    op->p2 = failed;
    return async__fs_submit(op);
}
