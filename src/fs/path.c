/* Calls on names: mkdir, rmdir, unlink, rename, link, symlink, readlink,
 * realpath, mkstemp and mkdtemp, each one pool job (op.c). */
#define _GNU_SOURCE
#include <limits.h>
#include <stdlib.h>
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
