/* Directory streams (opendir, fdopendir, readdir, rewinddir, dirfd,
 * closedir), scandir, and the getdents64 batch reader they share with the
 * tree walk and the tree helpers.
 *
 * A stream reads 32 KiB of entries per system call (hundreds of names), so
 * async_readdir() hands out entries already in the buffer at once and goes
 * to the pool only to refill it; opendir reads the first batch in the same
 * pool job as the open. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* The kernel's record: the same layout as glibc's struct dirent64. */
struct kdirent {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

int async__fs_dirbuf_fill(fs_dirbuf_t *d) {
    ssize_t n = getdents64(d->fd, d->data, sizeof d->data);
    /* Linux says ENOENT for a directory removed while open; glibc's readdir
     * (and so fts, nftw, scandir) takes it for the end, as POSIX reads it. */
    if (n < 0 && errno == ENOENT) n = 0;
    if (n < 0) return errno;
    d->pos = 0;
    d->len = (size_t)n;
    if (n == 0) d->eof = true;
    return 0;
}

bool async__fs_dirbuf_peek(fs_dirbuf_t *d, struct dirent64_view *out) {
    if (d->pos >= d->len) return false;
    const struct kdirent *k = (const struct kdirent *)(d->data + d->pos);
    out->name = k->d_name;
    out->type = k->d_type;
    out->reclen = k->d_reclen;
    out->ino = (ino_t)k->d_ino;
    out->off = (off_t)k->d_off;
    return true;
}

void async__fs_dirbuf_consume(fs_dirbuf_t *d) {
    const struct kdirent *k = (const struct kdirent *)(d->data + d->pos);
    d->pos += k->d_reclen;
}


/* ---- streams --------------------------------------------------------------- */

struct async_dir {
    fs_dirbuf_t b;
    atomic_bool busy; /* a pool refill is in flight */
    off_t loc;        /* the next entry's position, as telldir(3) reports it */
    struct dirent ent;
};

static async_dir_t *dir_new(int fd) {
    async_dir_t *d = malloc(sizeof *d);
    if (!d) {
        errno = ENOMEM;
        return NULL;
    }
    d->b.fd = fd;
    d->b.pos = d->b.len = 0;
    d->b.eof = false;
    /* 0 as glibc's, also for an fd of fdopendir whose offset has moved on:
     * reading goes on from that offset all the same */
    d->loc = 0;
    atomic_init(&d->busy, false);
    return d;
}

static intptr_t run_opendir(fs_op_t *op) {
    /* glibc's flags, O_NONBLOCK included (its O_NDELAY): the fd is the
     * caller's to see through async_dirfd(), and F_GETFL shows them */
    int fd = open(op->path, O_RDONLY | O_NONBLOCK | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    async_dir_t *d = dir_new(fd);
    if (!d) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    /* The first batch comes with the open: most directories fit in it.
     * An error is left for readdir to meet again and report. */
    if (async__fs_dirbuf_fill(&d->b) != 0) d->b.len = d->b.pos = 0;
    return (intptr_t)d;
}

async_future_t *async_opendir(const char *name) {
    if (!name) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_opendir, name, NULL);
    return op ? async__fs_submit(op) : NULL;
}

/* glibc's checks in glibc's order. An O_PATH fd passes them, as in glibc:
 * its first readdir says EBADF (getdents64's answer). */
async_dir_t *async_fdopendir(int fd) {
    struct stat st;
    if (fstat(fd, &st) < 0) return NULL;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return NULL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return NULL;
    if ((fl & O_ACCMODE) == O_WRONLY) { /* Linux opens no directory so (EISDIR) */
        errno = EINVAL;
        return NULL;
    }
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) return NULL;
    return dir_new(fd);
}

static struct dirent *dir_take(async_dir_t *d, const struct dirent64_view *v) {
    d->ent.d_ino = v->ino;
    d->ent.d_off = v->off;
    /* the kernel's record length, as glibc's readdir returns the kernel's
     * record itself: never more than sizeof d->ent (NAME_MAX + 1 bytes of
     * name, 8-aligned) */
    d->ent.d_reclen = v->reclen;
    d->ent.d_type = v->type;
    size_t n = strlen(v->name);
    if (n >= sizeof d->ent.d_name) n = sizeof d->ent.d_name - 1; /* NAME_MAX bounds it anyway */
    memcpy(d->ent.d_name, v->name, n);
    d->ent.d_name[n] = 0;
    d->loc = v->off;
    async__fs_dirbuf_consume(&d->b);
    return &d->ent;
}

/* The batch is used up: one getdents64, whose first entry (if any) is the
 * answer. Past the end too, as glibc's readdir asks the kernel again at each
 * call: what comes then is the file system's to say (procfs lists an fd
 * opened since; ext4 stays at the end). */
static intptr_t run_readdir(fs_op_t *op) {
    async_dir_t *d = op->buf;
    struct dirent64_view v;
    intptr_t r = 0;
    int err = async__fs_dirbuf_fill(&d->b);
    if (err != 0)
        r = -1;
    else if (async__fs_dirbuf_peek(&d->b, &v))
        r = (intptr_t)dir_take(d, &v);
    atomic_store_explicit(&d->busy, false, memory_order_release);
    errno = err;
    return r;
}

/* The refill ended without running (cancelled while queued, or no runner):
 * the stream is free again, or every later call would say EBUSY. */
static intptr_t unrun_readdir(fs_op_t *op) {
    async_dir_t *d = op->buf;
    atomic_store_explicit(&d->busy, false, memory_order_release);
    return -1;
}

static async_future_t *unclaim_dir(async_dir_t *dirp, async_future_t *result) {
    atomic_store_explicit(&dirp->busy, false, memory_order_release);
    return result;
}

async_future_t *async_readdir(async_dir_t *dirp) {
    if (!dirp) return async__future_failed(EBADF);
    /* claimed in one step: two callers at once must not both read the buffer */
    if (atomic_exchange_explicit(&dirp->busy, true, memory_order_acquire))
        return async__future_failed(EBUSY);
    struct dirent64_view v;
    if (async__fs_dirbuf_peek(&dirp->b, &v)) {
        /* taken before the entry is: without memory, the entry stays for the next call */
        async_future_t *f = async__future_reserve();
        return unclaim_dir(dirp, f ? async__future_fill(f, (intptr_t)dir_take(dirp, &v), 0) : NULL);
    }
    fs_op_t *op = async__fs_op_new(run_readdir, NULL, NULL);
    if (!op) return unclaim_dir(dirp, NULL);
    op->buf = dirp;
    op->unrun = unrun_readdir;
    return async__fs_submit(op); /* run_readdir or unrun_readdir lets go */
}

/* seekdir and rewinddir: the kernel's position moves, the buffer is dropped.
 * Refused (EBUSY) while a refill is pending, which owns the buffer. As in
 * glibc, a position lseek refuses (one no telldir gave) still drops the
 * buffer and is what telldir reports; reading goes on from the kernel's
 * offset, and errno shows lseek's error. */
static void dir_seek(async_dir_t *dirp, off_t loc) {
    if (!dirp) return;
    if (atomic_exchange_explicit(&dirp->busy, true, memory_order_acquire)) {
        errno = EBUSY;
        return;
    }
    (void)lseek(dirp->b.fd, loc, SEEK_SET);
    dirp->b.pos = dirp->b.len = 0;
    dirp->loc = loc;
    atomic_store_explicit(&dirp->busy, false, memory_order_release);
}

void async_rewinddir(async_dir_t *dirp) { dir_seek(dirp, 0); }

void async_seekdir(async_dir_t *dirp, long loc) { dir_seek(dirp, (off_t)loc); }

long async_telldir(async_dir_t *dirp) {
    if (!dirp) {
        errno = EBADF;
        return -1;
    }
    if (atomic_exchange_explicit(&dirp->busy, true, memory_order_acquire)) {
        errno = EBUSY;
        return -1;
    }
    long loc = (long)dirp->loc;
    atomic_store_explicit(&dirp->busy, false, memory_order_release);
    return loc;
}

int async_dirfd(async_dir_t *dirp) {
    if (!dirp) {
        errno = EINVAL;
        return -1;
    }
    return dirp->b.fd;
}

async_future_t *async_closedir(async_dir_t *dirp) {
    if (!dirp) return async__future_failed(EINVAL); /* as glibc's closedir */
    /* As async_close: NULL (ENOMEM) only when nothing was done, so the stream
     * stays whole for the caller to close again; any other result, an error
     * included, means the fd is closed, and the stream goes with it. */
    async_future_t *f = async_close(dirp->b.fd);
    if (f) free(dirp);
    return f;
}

/* ---- scandir ---------------------------------------------------------------- */

static intptr_t run_scandir(fs_op_t *op) {
    return scandir(op->path, op->buf, (int (*)(const struct dirent *))op->fn1,
                   (int (*)(const struct dirent **, const struct dirent **))op->fn2);
}

async_future_t *async_scandir(const char *dirp, struct dirent ***namelist,
                              int (*filter)(const struct dirent *),
                              int (*compar)(const struct dirent **, const struct dirent **)) {
    if (!dirp || !namelist) return async__future_failed(EFAULT);
    fs_op_t *op = async__fs_op_new(run_scandir, dirp, NULL);
    if (!op) return NULL;
    op->buf = namelist;
    op->fn1 = (void (*)(void))filter;
    op->fn2 = (void (*)(void))compar;
    return async__fs_submit(op);
}
