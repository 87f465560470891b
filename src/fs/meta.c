/* Metadata calls: the stat family and statx, access and faccessat, statvfs,
 * and the permission, owner and time setters with their *at forms, each one
 * pool job (op.c); fstat of an fd on a local filesystem is answered inline
 * (cached.c).
 *
 * A NULL result pointer is the kernel's EFAULT, but glibc declares these
 * arguments nonnull, so the call is made with a scratch buffer instead and
 * EFAULT reported only when it succeeds: a missing file is still ENOENT. */
#define _GNU_SOURCE
#include <sys/stat.h>
#include <unistd.h>

#include "cached.h"

static intptr_t efault_if_null(int r, const void *out) {
    if (r == 0 && !out) {
        errno = EFAULT;
        return -1;
    }
    return r;
}

static intptr_t run_fstatat(fs_op_t *op) {
    struct stat tmp;
    int r = fstatat(op->fd, op->path, op->buf ? op->buf : &tmp, op->flags);
    return efault_if_null(r, op->buf);
}

/* A NULL path with AT_EMPTY_PATH is "" (dirfd itself), as the kernel takes
 * it since Linux 6.11 (glibc declares the path nonnull: it is not passed on). */
async_future_t *async_fstatat(int dirfd, const char *path, struct stat *statbuf, int flags) {
    if (!path && (flags & AT_EMPTY_PATH)) path = "";
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_fstatat, path, NULL);
    if (!op) return NULL;
    op->fd = dirfd;
    op->buf = statbuf;
    op->flags = flags;
    return async__fs_submit(op);
}

async_future_t *async_stat(const char *path, struct stat *statbuf) {
    return async_fstatat(AT_FDCWD, path, statbuf, 0);
}

async_future_t *async_lstat(const char *path, struct stat *statbuf) {
    return async_fstatat(AT_FDCWD, path, statbuf, AT_SYMLINK_NOFOLLOW);
}

static intptr_t run_fstat(fs_op_t *op) {
    struct stat tmp;
    intptr_t r = efault_if_null(fstat(op->fd, op->buf ? op->buf : &tmp), op->buf);
    int err = errno;
    if (r == 0) async__fs_learn_mount(op->fd); /* the next fstat there may be inline */
    errno = err;
    return r;
}

/* Inline when the fd's mount is known to be local (cached.c). */
async_future_t *async_fstat(int fd, struct stat *statbuf) {
    int r;
    if (statbuf && async__fs_fstat_cached(fd, statbuf, &r) == FS_DONE)
        return async__future_result(r);
    fs_op_t *op = async__fs_op_new(run_fstat, NULL, NULL);
    if (!op) return NULL;
    op->fd = fd;
    op->buf = statbuf;
    return async__fs_submit(op);
}

static intptr_t run_access(fs_op_t *op) { return access(op->path, op->mode); }

async_future_t *async_access(const char *path, int mode) {
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_access, path, NULL);
    if (!op) return NULL;
    op->mode = mode;
    return async__fs_submit(op);
}

static intptr_t run_statvfs(fs_op_t *op) {
    struct statvfs tmp;
    struct statvfs *out = op->buf ? op->buf : &tmp;
    int r = op->path ? statvfs(op->path, out) : fstatvfs(op->fd, out);
    return efault_if_null(r, op->buf);
}

async_future_t *async_statvfs(const char *path, struct statvfs *buf) {
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_statvfs, path, NULL);
    if (!op) return NULL;
    op->buf = buf;
    return async__fs_submit(op);
}

async_future_t *async_fstatvfs(int fd, struct statvfs *buf) {
    fs_op_t *op = async__fs_op_new(run_statvfs, NULL, NULL);
    if (!op) return NULL;
    op->fd = fd;
    op->buf = buf;
    return async__fs_submit(op);
}

/* ---- permissions and owners --------------------------------------------- */

static intptr_t run_chmod(fs_op_t *op) {
    return op->path ? chmod(op->path, (mode_t)op->mode) : fchmod(op->fd, (mode_t)op->mode);
}

async_future_t *async_chmod(const char *path, mode_t mode) {
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_chmod, path, NULL);
    if (!op) return NULL;
    op->mode = (int)mode;
    return async__fs_submit(op);
}

async_future_t *async_fchmod(int fd, mode_t mode) {
    fs_op_t *op = async__fs_op_new(run_chmod, NULL, NULL);
    if (!op) return NULL;
    op->fd = fd;
    op->mode = (int)mode;
    return async__fs_submit(op);
}

/* op->flags: 0 chown, 1 lchown; no path: fchown */
static intptr_t run_chown(fs_op_t *op) {
    if (!op->path) return fchown(op->fd, op->uid, op->gid);
    return op->flags ? lchown(op->path, op->uid, op->gid) : chown(op->path, op->uid, op->gid);
}

static async_future_t *chown_common(const char *path, int fd, uid_t owner, gid_t group, int l) {
    fs_op_t *op = async__fs_op_new(run_chown, path, NULL);
    if (!op) return NULL;
    op->fd = fd;
    op->uid = owner;
    op->gid = group;
    op->flags = l;
    return async__fs_submit(op);
}

async_future_t *async_chown(const char *path, uid_t owner, gid_t group) {
    if (!path) return async__future_failed(EFAULT);
    return chown_common(path, -1, owner, group, 0);
}

async_future_t *async_lchown(const char *path, uid_t owner, gid_t group) {
    if (!path) return async__future_failed(EFAULT);
    return chown_common(path, -1, owner, group, 1);
}

async_future_t *async_fchown(int fd, uid_t owner, gid_t group) {
    return chown_common(NULL, fd, owner, group, 0);
}

/* ---- times ---------------------------------------------------------------- */

/* op->flags: 1 when times were given (copied into op->tv) */
static intptr_t run_utimes(fs_op_t *op) {
    const struct timeval *tv = op->flags ? op->tv : NULL;
    return op->path ? utimes(op->path, tv) : futimes(op->fd, tv);
}

static async_future_t *utimes_common(const char *path, int fd, const struct timeval times[2]) {
    fs_op_t *op = async__fs_op_new(run_utimes, path, NULL);
    if (!op) return NULL;
    op->fd = fd;
    if (times) {
        op->tv[0] = times[0];
        op->tv[1] = times[1];
        op->flags = 1;
    }
    return async__fs_submit(op);
}

async_future_t *async_utimes(const char *path, const struct timeval times[2]) {
    if (!path) return async__future_failed(EFAULT);
    return utimes_common(path, -1, times);
}

async_future_t *async_futimes(int fd, const struct timeval times[2]) {
    return utimes_common(NULL, fd, times);
}

/* ---- the *at forms, futimens and statx ------------------------------------ */

static intptr_t run_statx(fs_op_t *op) {
    struct statx tmp;
    int r = statx(op->fd, op->path, op->flags, (unsigned)op->mode, op->buf ? op->buf : &tmp);
    return efault_if_null(r, op->buf);
}

async_future_t *async_statx(int dirfd, const char *path, int flags, unsigned int mask,
                            struct statx *statxbuf) {
    if (!path && (flags & AT_EMPTY_PATH)) path = ""; /* as fstatat: see above */
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_statx, path, NULL);
    if (!op) return NULL;
    op->fd = dirfd;
    op->flags = flags;
    op->mode = (int)mask;
    op->buf = statxbuf;
    return async__fs_submit(op);
}

static intptr_t run_faccessat(fs_op_t *op) {
    return faccessat(op->fd, op->path, op->mode, op->flags);
}

async_future_t *async_faccessat(int dirfd, const char *path, int mode, int flags) {
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_faccessat, path, NULL);
    if (!op) return NULL;
    op->fd = dirfd;
    op->mode = mode;
    op->flags = flags;
    return async__fs_submit(op);
}

static intptr_t run_fchmodat(fs_op_t *op) {
    return fchmodat(op->fd, op->path, (mode_t)op->mode, op->flags);
}

async_future_t *async_fchmodat(int dirfd, const char *path, mode_t mode, int flags) {
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_fchmodat, path, NULL);
    if (!op) return NULL;
    op->fd = dirfd;
    op->mode = (int)mode;
    op->flags = flags;
    return async__fs_submit(op);
}

static intptr_t run_fchownat(fs_op_t *op) {
    return fchownat(op->fd, op->path, op->uid, op->gid, op->flags);
}

async_future_t *async_fchownat(int dirfd, const char *path, uid_t owner, gid_t group, int flags) {
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_fchownat, path, NULL);
    if (!op) return NULL;
    op->fd = dirfd;
    op->uid = owner;
    op->gid = group;
    op->flags = flags;
    return async__fs_submit(op);
}

/* op->mode: 1 when times were given (copied into op->ts); no path: futimens */
static intptr_t run_utimensat(fs_op_t *op) {
    const struct timespec *ts = op->mode ? op->ts : NULL;
    return op->path ? utimensat(op->fd, op->path, ts, op->flags) : futimens(op->fd, ts);
}

static async_future_t *utimens_common(int fd, const char *path, const struct timespec *times,
                                      int flags) {
    fs_op_t *op = async__fs_op_new(run_utimensat, path, NULL);
    if (!op) return NULL;
    op->fd = fd;
    op->flags = flags;
    if (times) {
        op->ts[0] = times[0];
        op->ts[1] = times[1];
        op->mode = 1;
    }
    return async__fs_submit(op);
}

/* glibc's utimensat(3) refuses a NULL path with EINVAL before the kernel
 * (which would take it as futimens on dirfd): so does this one. */
async_future_t *async_utimensat(int dirfd, const char *path, const struct timespec *times,
                                int flags) {
    if (!path) return async__future_failed(EINVAL);
    return utimens_common(dirfd, path, times, flags);
}

async_future_t *async_futimens(int fd, const struct timespec *times) {
    return utimens_common(fd, NULL, times, 0);
}
