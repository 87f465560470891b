/* Calls on names: mkdir, rmdir, unlink, rename, link, symlink, readlink,
 * their *at forms, truncate, mkfifo and mknod, realpath, mkstemp and
 * mkdtemp, each one pool job (op.c). */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static async_future_t *path_op(fs_run_fn run, const char *path, const char *path2, bool two) {
    if (!path || (two && !path2)) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run, path, path2);
    return op ? async__fs_submit(op) : NULL;
}

static intptr_t run_mkdir(fs_op_t *op) { return mkdir(op->path, (mode_t)op->mode); }

async_future_t *async_mkdir(const char *path, mode_t mode) {
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_mkdir, path, NULL);
    if (!op) return NULL;
    op->mode = (int)mode;
    return async__fs_submit(op);
}

static intptr_t run_rmdir(fs_op_t *op) { return rmdir(op->path); }
static intptr_t run_unlink(fs_op_t *op) { return unlink(op->path); }
static intptr_t run_rename(fs_op_t *op) { return rename(op->path, op->path2); }
static intptr_t run_link(fs_op_t *op) { return link(op->path, op->path2); }
static intptr_t run_symlink(fs_op_t *op) { return symlink(op->path, op->path2); }

async_future_t *async_rmdir(const char *path) { return path_op(run_rmdir, path, NULL, false); }

async_future_t *async_unlink(const char *path) { return path_op(run_unlink, path, NULL, false); }

async_future_t *async_rename(const char *oldpath, const char *newpath) {
    return path_op(run_rename, oldpath, newpath, true);
}

async_future_t *async_link(const char *oldpath, const char *newpath) {
    return path_op(run_link, oldpath, newpath, true);
}

async_future_t *async_symlink(const char *target, const char *linkpath) {
    return path_op(run_symlink, target, linkpath, true);
}

/* A NULL buffer is the kernel's EFAULT once the link has been found (glibc
 * declares it nonnull, so a one-byte scratch stands in for it). */
static intptr_t run_readlink(fs_op_t *op) {
    char scratch[1];
    ssize_t n = readlink(op->path, op->buf ? op->buf : scratch, op->buf ? op->count : 1);
    if (n >= 0 && !op->buf) {
        errno = EFAULT;
        return -1;
    }
    return n;
}

async_future_t *async_readlink(const char *path, char *buf, size_t bufsiz) {
    if (!path) return async__future_failed(EFAULT);
    if (bufsiz == 0) return async__future_failed(EINVAL); /* checked first, as the kernel does */
    fs_op_t *op = async__fs_op_new(run_readlink, path, NULL);
    if (!op) return NULL;
    op->buf = buf;
    op->count = bufsiz;
    return async__fs_submit(op);
}

static intptr_t run_realpath(fs_op_t *op) {
    char *r = realpath(op->path, op->buf);
    return r ? (intptr_t)r : -1;
}

async_future_t *async_realpath(const char *path, char *resolved_path) {
    if (!path) return async__future_failed(EINVAL); /* what realpath(3) says for NULL */
    fs_op_t *op = async__fs_op_new(run_realpath, path, NULL);
    if (!op) return NULL;
    op->buf = resolved_path;
    return async__fs_submit(op);
}

static intptr_t run_mkstemp(fs_op_t *op) { return mkstemp(op->buf); }

static intptr_t run_mkdtemp(fs_op_t *op) {
    char *r = mkdtemp(op->buf);
    return r ? (intptr_t)r : -1;
}

async_future_t *async_mkstemp(char *template_) {
    if (!template_) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_mkstemp, NULL, NULL);
    if (!op) return NULL;
    op->buf = template_;
    return async__fs_submit(op);
}

async_future_t *async_mkdtemp(char *template_) {
    if (!template_) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_mkdtemp, NULL, NULL);
    if (!op) return NULL;
    op->buf = template_;
    return async__fs_submit(op);
}

/* ---- truncate, and the *at forms of the name calls ------------------------ */

static intptr_t run_truncate(fs_op_t *op) { return truncate(op->path, op->len); }

async_future_t *async_truncate(const char *path, off_t length) {
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_truncate, path, NULL);
    if (!op) return NULL;
    op->len = length;
    return async__fs_submit(op);
}

/* op->fd and op->fd2: the directories of path and path2 */
static intptr_t run_unlinkat(fs_op_t *op) { return unlinkat(op->fd, op->path, op->flags); }
static intptr_t run_renameat2(fs_op_t *op) {
    /* renameat(3) with no flags, so a kernel without renameat2(2) still renames */
    if (!op->flags) return renameat(op->fd, op->path, op->fd2, op->path2);
    return renameat2(op->fd, op->path, op->fd2, op->path2, (unsigned)op->flags);
}
static intptr_t run_mkdirat(fs_op_t *op) { return mkdirat(op->fd, op->path, (mode_t)op->mode); }
static intptr_t run_linkat(fs_op_t *op) {
    return linkat(op->fd, op->path, op->fd2, op->path2, op->flags);
}
static intptr_t run_symlinkat(fs_op_t *op) { return symlinkat(op->path, op->fd2, op->path2); }

/* An op on one or two names relative to directories; NULL with ENOMEM. */
static fs_op_t *at_op(fs_run_fn run, int fd, const char *path, int fd2, const char *path2,
                      int flags) {
    fs_op_t *op = async__fs_op_new(run, path, path2);
    if (!op) return NULL;
    op->fd = fd;
    op->fd2 = fd2;
    op->flags = flags;
    return op;
}

static async_future_t *at_submit(fs_op_t *op) { return op ? async__fs_submit(op) : NULL; }

async_future_t *async_unlinkat(int dirfd, const char *path, int flags) {
    if (!path) return async__future_failed(EFAULT);
    return at_submit(at_op(run_unlinkat, dirfd, path, -1, NULL, flags));
}

async_future_t *async_renameat(int olddirfd, const char *oldpath, int newdirfd,
                               const char *newpath) {
    return async_renameat2(olddirfd, oldpath, newdirfd, newpath, 0);
}

async_future_t *async_renameat2(int olddirfd, const char *oldpath, int newdirfd,
                                const char *newpath, unsigned int flags) {
    if (!oldpath || !newpath) return async__future_failed(EFAULT);
    return at_submit(at_op(run_renameat2, olddirfd, oldpath, newdirfd, newpath, (int)flags));
}

async_future_t *async_mkdirat(int dirfd, const char *path, mode_t mode) {
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = at_op(run_mkdirat, dirfd, path, -1, NULL, 0);
    if (op) op->mode = (int)mode;
    return at_submit(op);
}

async_future_t *async_linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                             int flags) {
    if (!oldpath || !newpath) return async__future_failed(EFAULT);
    return at_submit(at_op(run_linkat, olddirfd, oldpath, newdirfd, newpath, flags));
}

async_future_t *async_symlinkat(const char *target, int newdirfd, const char *linkpath) {
    if (!target || !linkpath) return async__future_failed(EFAULT);
    return at_submit(at_op(run_symlinkat, -1, target, newdirfd, linkpath, 0));
}

/* As run_readlink: a NULL buffer is EFAULT once the link has been found. */
static intptr_t run_readlinkat(fs_op_t *op) {
    char scratch[1];
    ssize_t n = readlinkat(op->fd, op->path, op->buf ? op->buf : scratch, op->buf ? op->count : 1);
    if (n >= 0 && !op->buf) {
        errno = EFAULT;
        return -1;
    }
    return n;
}

async_future_t *async_readlinkat(int dirfd, const char *path, char *buf, size_t bufsiz) {
    if (!path) return async__future_failed(EFAULT);
    if (bufsiz == 0) return async__future_failed(EINVAL); /* checked first, as the kernel does */
    fs_op_t *op = at_op(run_readlinkat, dirfd, path, -1, NULL, 0);
    if (!op) return NULL;
    op->buf = buf;
    op->count = bufsiz;
    return async__fs_submit(op);
}

/* ---- FIFOs and device nodes ----------------------------------------------- */

static intptr_t run_mknodat(fs_op_t *op) {
    return mknodat(op->fd, op->path, (mode_t)op->mode, op->dev);
}

async_future_t *async_mknodat(int dirfd, const char *path, mode_t mode, dev_t dev) {
    if (!path) return async__future_failed(EFAULT);
    fs_op_t *op = at_op(run_mknodat, dirfd, path, -1, NULL, 0);
    if (!op) return NULL;
    op->mode = (int)mode;
    op->dev = dev;
    return async__fs_submit(op);
}

async_future_t *async_mknod(const char *path, mode_t mode, dev_t dev) {
    return async_mknodat(AT_FDCWD, path, mode, dev);
}

/* mkfifoat(3) is mknodat(2) with S_IFIFO added, as glibc makes it (a mode
 * that already names another type is the kernel's EINVAL) */
async_future_t *async_mkfifoat(int dirfd, const char *path, mode_t mode) {
    return async_mknodat(dirfd, path, mode | S_IFIFO, 0);
}

async_future_t *async_mkfifo(const char *path, mode_t mode) {
    return async_mkfifoat(AT_FDCWD, path, mode);
}
