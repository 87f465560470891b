/* Descriptor calls that may wait for the disk: open, openat, close, fsync,
 * fdatasync, syncfs, ftruncate, fallocate, posix_fadvise and copy_file_range, each one pool job
 * (op.c). An open of a cached name and a close that waits for no server are
 * answered inline instead (cached.c). sendfile, which may also wait for a
 * reader, has sendfile.c. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <unistd.h>

#include "cached.h"

static bool takes_mode(int flags) { return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE; }

static intptr_t run_openat(fs_op_t *op) {
    int fd = openat(op->fd, op->path, op->flags, (mode_t)op->mode);
    if (fd >= 0) {
        async__io_fd_new(fd);      /* a FIFO may be waited on: no stale readiness */
        async__fs_learn_mount(fd); /* so that the next open there may be inline */
    }
    return fd;
}

static async_future_t *open_common(int dirfd, const char *path, int flags, mode_t mode) {
    if (!path) return async__future_failed(EFAULT);
    /* the result's future first: an fd opened inline must be reported */
    async_future_t *res = async__future_reserve();
    if (!res) return NULL;
    int fd;
    if (async__fs_open_cached(dirfd, path, flags, &fd) == FS_DONE) {
        if (fd >= 0) async__io_fd_new(fd);
        return async__future_fill(res, fd, fd < 0 ? errno : 0);
    }
    async__future_unreserve(res);
    fs_op_t *op = async__fs_op_new(run_openat, path, NULL);
    if (!op) return NULL;
    op->fd = dirfd;
    op->flags = flags;
    op->mode = (int)mode;
    return async__fs_submit(op);
}

async_future_t *async_open(const char *path, int flags, ...) {
    mode_t mode = 0;
    if (takes_mode(flags)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int); /* mode_t is promoted to int through `...` */
        va_end(ap);
    }
    return open_common(AT_FDCWD, path, flags, mode);
}

async_future_t *async_openat(int dirfd, const char *path, int flags, ...) {
    mode_t mode = 0;
    if (takes_mode(flags)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    return open_common(dirfd, path, flags, mode);
}

/* On the pool, the mount is learnt first (cached.c), so that the next close
 * of a file there is made inline when it is local. */
static intptr_t run_close(fs_op_t *op) {
    async__fs_learn_mount(op->fd);
    async_future_t *f = async__io_close(op->fd);
    if (f) return async_await(f);
    async__io_fd_new(op->fd); /* no memory to tell the workers: a file has no waits to end */
    return close(op->fd);
}

/* Cancelled in the queue, or no runner: close(2) is not interrupted either,
 * and the caller must be able to count on the fd being released. */
static intptr_t unrun_close(fs_op_t *op) {
    async__io_fd_new(op->fd);
    return close(op->fd);
}

/* Through the core, which first wakes every op parked on fd with EBADF; on
 * the pool when close(2) may wait for a server (cached.c). */
async_future_t *async_close(int fd) {
    if (fd >= 0 && async__fs_close_may_wait(fd)) {
        fs_op_t *op = async__fs_op_new(run_close, NULL, NULL);
        if (op) {
            op->fd = fd;
            op->unrun = unrun_close;
            return async__fs_submit(op);
        }
    }
    return async__io_close(fd);
}

static intptr_t run_fsync(fs_op_t *op) { return op->flags ? fdatasync(op->fd) : fsync(op->fd); }

static async_future_t *sync_common(int fd, int data) {
    fs_op_t *op = async__fs_op_new(run_fsync, NULL, NULL);
    if (!op) return NULL;
    op->fd = fd;
    op->flags = data;
    return async__fs_submit(op);
}

async_future_t *async_fsync(int fd) { return sync_common(fd, 0); }

async_future_t *async_fdatasync(int fd) { return sync_common(fd, 1); }

static intptr_t run_syncfs(fs_op_t *op) { return syncfs(op->fd); }

async_future_t *async_syncfs(int fd) {
    fs_op_t *op = async__fs_op_new(run_syncfs, NULL, NULL);
    if (!op) return NULL;
    op->fd = fd;
    return async__fs_submit(op);
}

/* posix_fadvise(3) returns its error instead of setting errno: turned into
 * the library's -1 and errno here, on the pool thread. */
static intptr_t run_fadvise(fs_op_t *op) {
    int err = posix_fadvise(op->fd, op->off, op->len, op->flags);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

async_future_t *async_posix_fadvise(int fd, off_t offset, off_t len, int advice) {
    fs_op_t *op = async__fs_op_new(run_fadvise, NULL, NULL);
    if (!op) return NULL;
    op->fd = fd;
    op->off = offset;
    op->len = len;
    op->flags = advice;
    return async__fs_submit(op);
}

static intptr_t run_ftruncate(fs_op_t *op) { return ftruncate(op->fd, op->len); }

async_future_t *async_ftruncate(int fd, off_t length) {
    fs_op_t *op = async__fs_op_new(run_ftruncate, NULL, NULL);
    if (!op) return NULL;
    op->fd = fd;
    op->len = length;
    return async__fs_submit(op);
}

static intptr_t run_fallocate(fs_op_t *op) { return fallocate(op->fd, op->mode, op->off, op->len); }

async_future_t *async_fallocate(int fd, int mode, off_t offset, off_t len) {
    fs_op_t *op = async__fs_op_new(run_fallocate, NULL, NULL);
    if (!op) return NULL;
    op->fd = fd;
    op->mode = mode;
    op->off = offset;
    op->len = len;
    return async__fs_submit(op);
}

static intptr_t run_copy_file_range(fs_op_t *op) {
    return copy_file_range(op->fd, op->buf, op->fd2, op->p2, op->count, (unsigned)op->flags);
}

async_future_t *async_copy_file_range(int fd_in, off_t *off_in, int fd_out, off_t *off_out,
                                      size_t len, unsigned flags) {
    fs_op_t *op = async__fs_op_new(run_copy_file_range, NULL, NULL);
    if (!op) return NULL;
    op->fd = fd_in;
    op->buf = off_in;
    op->fd2 = fd_out;
    op->p2 = off_out;
    op->count = len;
    op->flags = (int)flags;
    return async__fs_submit(op);
}
