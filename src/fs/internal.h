/* Private declarations of the file-system module: the op that carries one
 * call to the blocking pool (op.c) and the helpers the fs files share.
 * Never installed. */
#ifndef ASYNC_FS_INTERNAL_H
#define ASYNC_FS_INTERNAL_H

#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "asyncstd/fs.h"
#include "task/internal.h"

typedef struct fs_op fs_op_t;

/* Runs on a pool thread: the blocking call. Returns its result, or -1 with
 * errno set (the pool turns that into the future's error). */
typedef intptr_t (*fs_run_fn)(fs_op_t *op);

/* One call on its way to the pool. The fields are a union of what the
 * calls need, named for their most common use; each run function documents
 * nothing more than the libc call it makes with them. Path strings live in
 * `strs`, after the struct, so one allocation carries the whole call. */
struct fs_op {
    async__job_t job; /* first: the op is its own future */
    fs_run_fn run;
    /* Called instead of `run` when the op ends without running (cancelled
     * while queued, no runner could start, no runtime), before it settles:
     * undoes what the caller set up for `run` to undo (a stream's busy mark)
     * and returns -1 to settle with the reason, or a result to report
     * instead (bytes the call moved before it queued the op). NULL: -1. */
    intptr_t (*unrun)(fs_op_t *op);
    int fd, fd2;
    int flags;
    int mode;
    uid_t uid;
    gid_t gid;
    dev_t dev; /* mknod */
    off_t off, len;
    size_t count;
    void *buf;         /* the caller's buffer or result struct */
    void *p2;          /* another caller pointer (off_t *, char **, ...) */
    void (*fn1)(void); /* caller callbacks (scandir's filter and compar) */
    void (*fn2)(void);
    const char *path; /* copies, in strs */
    const char *path2;
    union { /* copies of the caller's times */
        struct timeval tv[2];
        struct timespec ts[2];
    };
    uint64_t queued_ns; /* when it entered the module's queue (op.c) */
    bool small;         /* allocated from the core's small-object class */
    char strs[];
};

/* A new op for `run`, with copies of up to two path strings (either may be
 * NULL). NULL with errno ENOMEM. */
fs_op_t *async__fs_op_new(fs_run_fn run, const char *path, const char *path2);
/* Like async__fs_op_new with `extra` more bytes after the strings, returned in *extra_p. */
fs_op_t *async__fs_op_new_extra(fs_run_fn run, const char *path, const char *path2, size_t extra,
                                void **extra_p);
/* Queues the op on the pool's file queue and returns its future (never
 * NULL: without a runtime, the op's own future settles with the error). */
async_future_t *async__fs_submit(fs_op_t *op);
/* Frees an op that was never submitted. */
void async__fs_op_free(fs_op_t *op);
/* True once async_cancel() was called on the op's future: long runs stop there. */
bool async__fs_cancelled(const fs_op_t *op);

/* Directory reading shared by dir.c, the walk and the tree helpers: a
 * getdents64 batch decoder. */
typedef struct fs_dirbuf {
    int fd;
    size_t pos, len;
    bool eof;
    _Alignas(8) char data[32768]; /* getdents64 records hold 64-bit fields */
} fs_dirbuf_t;

/* One entry of a directory buffer, pointing into it. */
struct dirent64_view {
    const char *name;
    unsigned char type;
    unsigned short reclen; /* the kernel's record length */
    ino_t ino;
    off_t off;
};
/* Non-blocking: an entry already in the buffer, or false. */
bool async__fs_dirbuf_peek(fs_dirbuf_t *d, struct dirent64_view *out);
/* Drops the entry async__fs_dirbuf_peek returned. */
void async__fs_dirbuf_consume(fs_dirbuf_t *d);
/* Blocking: refills the buffer with one getdents64 call; 0 or an errno. */
int async__fs_dirbuf_fill(fs_dirbuf_t *d);

#endif
