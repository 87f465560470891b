/* Buffered streams shaped like stdio (async_fopen ... async_fclose) over any
 * fd. Reads and writes go through async_read/async_write, so a stream works
 * on a socket or pipe as well as a file.
 *
 * Each stream has a read buffer and a write buffer, so a socket can have
 * read-ahead and unsent output at once. Before reading, buffered output is
 * written out (a line protocol sends its request, then reads the reply);
 * before writing to a seekable file, read-ahead is dropped and the fd's
 * position moved back to the stream's.
 *
 * An operation that the buffers can satisfy settles at once. Otherwise it is
 * a sequence (op.c) of reads or writes driven by their completions. Data is
 * copied into the caller's buffer only when the call completes (fgets,
 * getline), so a cancelled read leaves every byte in the stream. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define BUF_FILE (64 * 1024)  /* regular files: fewer system calls per MiB */
#define BUF_STREAM (8 * 1024) /* sockets, pipes, terminals */

struct async_file {
    int fd;
    bool readable, writable, seekable, linebuf;
    bool eof, error;
    atomic_bool busy;
    size_t bufsize;
    char *rbuf;
    size_t rcap, rpos, rlen; /* unread data: rbuf[rpos, rlen) */
    char *wbuf;
    size_t wlen; /* unsent data: wbuf[0, wlen) */
    /* async_fclose's op, made with the stream: fclose must free the stream
     * and close its fd whatever happens, so it must not need memory. */
    struct sop *closer;
};

/* One stream call that may wait: a sequence (op.c) over the stream. */
enum { OP_FGETS, OP_GETLINE, OP_FREAD, OP_FWRITE, OP_FLUSH, OP_CLOSE };
enum { IN_NONE, IN_FILL, IN_DIRECT_READ, IN_FLUSH, IN_DIRECT_WRITE, IN_CLOSE };

typedef struct sop {
    fs_seq_t seq; /* first */
    async_file_t *f;
    int kind, inner;
    int ioerr;        /* the first error of an inner operation */
    int close_result; /* OP_CLOSE: the close's errno, or 0 */
    bool closed;
    char *s; /* fgets: the caller's buffer and its size */
    int size;
    char **lineptr; /* getline */
    size_t *n;
    char *ptr; /* fread/fwrite: the data, its item size, total and progress */
    size_t isize, total, done;
    char *owned; /* fprintf's formatted text, freed with the op */
} sop_t;

/* ---- opening ---------------------------------------------------------------- */

/* mode string -> open flags; -1 for a bad mode. As glibc: the first letter
 * decides, then up to `scan` more letters are read (6 for fopen, 4 for
 * fdopen) and those stdio does not know are skipped, so "rt+" is read-write. */
static int parse_mode(const char *mode, int scan, bool *rd, bool *wr) {
    if (!mode) return -1;
    int fl;
    switch (mode[0]) {
    case 'r':
        fl = O_RDONLY;
        break;
    case 'w':
        fl = O_WRONLY | O_CREAT | O_TRUNC;
        break;
    case 'a':
        fl = O_WRONLY | O_CREAT | O_APPEND;
        break;
    default:
        return -1;
    }
    for (const char *p = mode + 1; *p && p <= mode + scan; p++) {
        if (*p == '+')
            fl = (fl & ~O_ACCMODE) | O_RDWR;
        else if (*p == 'e')
            fl |= O_CLOEXEC;
        else if (*p == 'x')
            fl |= O_EXCL;
    }
    int acc = fl & O_ACCMODE;
    *rd = acc == O_RDONLY || acc == O_RDWR;
    *wr = acc == O_WRONLY || acc == O_RDWR;
    return fl;
}

/* glibc leaves a stream opened "a" (not "a+") at the end of the file, where
 * its writes go; "a+" stays at the start, where its reads begin. */
static int seek_append(int fd, int fl) {
    if ((fl & O_APPEND) && (fl & O_ACCMODE) == O_WRONLY && lseek(fd, 0, SEEK_END) < 0 &&
        errno != ESPIPE)
        return -1;
    return 0;
}

static async_file_t *file_new(int fd, bool rd, bool wr) {
    async_file_t *f = calloc(1, sizeof *f);
    if (f && !(f->closer = calloc(1, sizeof(sop_t)))) {
        free(f);
        f = NULL;
    }
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    f->fd = fd;
    f->readable = rd;
    f->writable = wr;
    struct stat st;
    bool reg = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    f->seekable = reg && lseek(fd, 0, SEEK_CUR) >= 0;
    f->linebuf = !reg && isatty(fd);
    f->bufsize = reg ? BUF_FILE : BUF_STREAM;
    atomic_init(&f->busy, false);
    return f;
}

async_file_t *async_fdopen(int fd, const char *mode) {
    bool rd, wr;
    int want = parse_mode(mode, 4, &rd, &wr);
    if (want < 0) { /* the mode is looked at before the fd, as glibc does */
        errno = EINVAL;
        return NULL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) return NULL; /* EBADF */
    int acc = fl & O_ACCMODE;
    if ((rd && acc == O_WRONLY) || (wr && acc == O_RDONLY)) {
        errno = EINVAL;
        return NULL;
    }
    /* glibc moves to the end only when it is the one adding O_APPEND */
    if ((want & O_APPEND) && !(fl & O_APPEND)) {
        if (fcntl(fd, F_SETFL, fl | O_APPEND) < 0 || seek_append(fd, want) < 0) return NULL;
    }
    if (want & O_CLOEXEC)
        fcntl(fd, F_SETFD, FD_CLOEXEC); /* glibc ignores "e" here; musl does not */
    return file_new(fd, rd, wr);
}

typedef struct fopen_op {
    fs_seq_t seq; /* first */
    int flags;
    bool rd, wr;
} fopen_op_t;

static void free_seq(fs_seq_t *s) { free(s); }

static async_future_t *fopen_step(fs_seq_t *s, intptr_t v, int err) {
    fopen_op_t *o = (fopen_op_t *)s;
    if (v < 0) {
        async__fs_seq_finish(s, -1, err);
        return NULL;
    }
    async_file_t *f = seek_append((int)v, o->flags) < 0 ? NULL : file_new((int)v, o->rd, o->wr);
    if (!f) {
        int e = errno;
        close((int)v);
        async__fs_seq_finish(s, -1, e);
        return NULL;
    }
    async__fs_seq_finish(s, (intptr_t)f, 0);
    return NULL;
}

async_future_t *async_fopen(const char *path, const char *mode) {
    bool rd, wr;
    int fl = parse_mode(mode, 6, &rd, &wr);
    if (fl < 0) return async__future_failed(EINVAL);
    if (!path) return async__future_failed(EFAULT);
    fopen_op_t *o = malloc(sizeof *o);
    if (!o) {
        errno = ENOMEM;
        return NULL;
    }
    async__fs_seq_init(&o->seq, fopen_step, free_seq);
    o->flags = fl;
    o->rd = rd;
    o->wr = wr;
    return async__fs_seq_start(&o->seq, async_open(path, fl, 0666));
}

/* ---- buffers ------------------------------------------------------------------ */

static bool rbuf_reserve(async_file_t *f, size_t want) {
    if (f->rpos > 0 && f->rpos == f->rlen) f->rpos = f->rlen = 0;
    if (f->rpos > 0 && f->rlen == f->rcap) { /* compact */
        memmove(f->rbuf, f->rbuf + f->rpos, f->rlen - f->rpos);
        f->rlen -= f->rpos;
        f->rpos = 0;
    }
    if (f->rbuf && f->rlen < f->rcap) return true;
    size_t cap = f->rcap ? f->rcap * 2 : f->bufsize;
    while (cap < want) cap *= 2;
    char *b = realloc(f->rbuf, cap);
    if (!b) return false;
    f->rbuf = b;
    f->rcap = cap;
    return true;
}

/* Drops read-ahead of a seekable file, moving the fd back to the stream's position. */
static void drop_readahead(async_file_t *f) {
    size_t ahead = f->rlen - f->rpos;
    if (f->seekable && ahead) lseek(f->fd, -(off_t)ahead, SEEK_CUR);
    if (f->seekable || !ahead) f->rpos = f->rlen = 0;
}

static bool claim(async_file_t *f) {
    bool expected = false;
    return atomic_compare_exchange_strong(&f->busy, &expected, true);
}

static void unclaim(async_file_t *f) {
    atomic_store_explicit(&f->busy, false, memory_order_release);
}

/* ---- operations as sequences -------------------------------------------------- */

static void sop_release(fs_seq_t *s) {
    sop_t *o = (sop_t *)s;
    free(o->owned);
    if (o->kind == OP_CLOSE) { /* the stream ends with its fclose */
        free(o->f->rbuf);
        free(o->f->wbuf);
        free(o->f);
    }
    free(o);
}

static void finish(sop_t *o, intptr_t v, int err) {
    if (o->kind != OP_CLOSE) unclaim(o->f);
    async__fs_seq_finish(&o->seq, v, err);
}

/* The items (or -1 when there are none and an error) of fread/fwrite. */
static void finish_items(sop_t *o) {
    size_t items = o->isize ? o->done / o->isize : 0;
    if (items == 0 && o->ioerr)
        finish(o, -1, o->ioerr);
    else
        finish(o, (intptr_t)items, 0);
}

static async_future_t *issue_flush(sop_t *o) {
    o->inner = IN_FLUSH;
    return async_write(o->f->fd, o->f->wbuf, o->f->wlen);
}

static async_future_t *issue_fill(sop_t *o, size_t want) {
    async_file_t *f = o->f;
    if (!rbuf_reserve(f, want)) {
        o->inner = IN_NONE;
        o->ioerr = ENOMEM;
        return NULL;
    }
    o->inner = IN_FILL;
    return async_read(f->fd, f->rbuf + f->rlen, f->rcap - f->rlen);
}

/* Copies `take` bytes of read-ahead into the fgets/getline result. */
static bool deliver_line(sop_t *o, size_t take) {
    async_file_t *f = o->f;
    if (o->kind == OP_FGETS) {
        memcpy(o->s, f->rbuf + f->rpos, take);
        o->s[take] = 0;
    } else {
        if (!*o->lineptr || *o->n < take + 1) {
            size_t cap = take + 1 < 120 ? 120 : take + 1;
            char *nb = realloc(*o->lineptr, cap);
            if (!nb) return false;
            *o->lineptr = nb;
            *o->n = cap;
        }
        memcpy(*o->lineptr, f->rbuf + f->rpos, take);
        (*o->lineptr)[take] = 0;
    }
    f->rpos += take;
    return true;
}

/* One step of a line read: finished (true) or *next set. */
static bool line_progress(sop_t *o, async_future_t **next) {
    async_file_t *f = o->f;
    size_t limit = o->kind == OP_FGETS ? (size_t)o->size - 1 : SIZE_MAX;
    size_t avail = f->rlen - f->rpos;
    size_t scan = avail < limit ? avail : limit;
    const char *nl = scan ? memchr(f->rbuf + f->rpos, '\n', scan) : NULL;
    size_t take = nl ? (size_t)(nl - (f->rbuf + f->rpos)) + 1 : avail >= limit ? limit : 0;
    if (!take && (f->eof || o->ioerr)) take = o->ioerr ? 0 : avail;
    if (take || limit == 0) {
        if (!deliver_line(o, take))
            finish(o, -1, ENOMEM);
        else
            finish(o, o->kind == OP_FGETS ? (intptr_t)o->s : (intptr_t)take, 0);
        return true;
    }
    if (o->ioerr) {
        finish(o, -1, o->ioerr);
        return true;
    }
    if (f->eof) { /* nothing: NULL or -1 with errno untouched */
        finish(o, o->kind == OP_FGETS ? 0 : -1, 0);
        return true;
    }
    if (f->wlen) {
        *next = issue_flush(o);
        return false;
    }
    *next = issue_fill(o, avail + 1);
    return false;
}

static bool fread_progress(sop_t *o, async_future_t **next) {
    async_file_t *f = o->f;
    size_t avail = f->rlen - f->rpos, want = o->total - o->done;
    size_t c = avail < want ? avail : want;
    if (c) {
        memcpy(o->ptr + o->done, f->rbuf + f->rpos, c);
        f->rpos += c;
        o->done += c;
        want -= c;
    }
    if (!want || f->eof || o->ioerr) {
        finish_items(o);
        return true;
    }
    if (f->wlen) {
        *next = issue_flush(o);
        return false;
    }
    if (want >= f->bufsize) { /* large reads skip the buffer */
        o->inner = IN_DIRECT_READ;
        *next = async_read(f->fd, o->ptr + o->done, want);
        return false;
    }
    *next = issue_fill(o, 0);
    return false;
}

static bool has_newline(const char *p, size_t n) { return n && memchr(p, '\n', n); }

static bool fwrite_progress(sop_t *o, async_future_t **next) {
    async_file_t *f = o->f;
    if (o->ioerr) {
        finish_items(o);
        return true;
    }
    size_t want = o->total - o->done;
    if (want && f->wlen + want <= f->bufsize) {
        memcpy(f->wbuf + f->wlen, o->ptr + o->done, want);
        f->wlen += want;
        o->done = o->total;
        if (!(f->linebuf && has_newline(o->ptr, o->total))) {
            finish(o, (intptr_t)(o->isize ? o->total / o->isize : 0), 0);
            return true;
        }
        want = 0;
    }
    if (f->wlen) { /* make room, or a line-buffered flush */
        *next = issue_flush(o);
        return false;
    }
    if (!want) {
        finish(o, (intptr_t)(o->isize ? o->total / o->isize : 0), 0);
        return true;
    }
    o->inner = IN_DIRECT_WRITE;
    *next = async_write(f->fd, o->ptr + o->done, want);
    return false;
}

static bool flush_progress(sop_t *o, async_future_t **next) {
    async_file_t *f = o->f;
    if (o->kind == OP_CLOSE && o->closed) {
        finish(o, o->ioerr || o->close_result ? -1 : 0, o->ioerr ? o->ioerr : o->close_result);
        return true;
    }
    if (f->wlen && !o->ioerr) {
        *next = issue_flush(o);
        return false;
    }
    if (o->kind == OP_CLOSE) {
        o->inner = IN_CLOSE;
        *next = async_close(f->fd);
        if (*next) return false;
        /* Not even async_close's spare op was free, and nothing was done.
         * The stream goes all the same (fclose promises it), so its fd goes
         * now rather than stay open with no one to close it: close(2) here
         * skips only the waking of other operations waiting on the fd,
         * which no one may have while closing the stream. */
        o->inner = IN_NONE;
        o->closed = true;
        o->close_result = close(f->fd) < 0 ? errno : 0;
        return flush_progress(o, next);
    }
    if (!o->ioerr) drop_readahead(f);
    finish(o, o->ioerr ? -1 : 0, o->ioerr);
    return true;
}

static async_future_t *progress(sop_t *o) {
    async_future_t *next = NULL;
    bool done;
    switch (o->kind) {
    case OP_FGETS:
    case OP_GETLINE:
        done = line_progress(o, &next);
        break;
    case OP_FREAD:
        done = fread_progress(o, &next);
        break;
    case OP_FWRITE:
        done = fwrite_progress(o, &next);
        break;
    default:
        done = flush_progress(o, &next);
        break;
    }
    return done ? NULL : next;
}

static async_future_t *sop_step(fs_seq_t *s, intptr_t v, int err) {
    sop_t *o = (sop_t *)s;
    async_file_t *f = o->f;
    if (v < 0 && o->inner != IN_NONE && o->inner != IN_CLOSE) {
        if (!o->ioerr) o->ioerr = err;
        if (err != ECANCELED) f->error = true;
    } else {
        switch (o->inner) {
        case IN_FILL:
            if (v == 0) f->eof = true;
            f->rlen += (size_t)v;
            break;
        case IN_DIRECT_READ:
            if (v == 0) f->eof = true;
            o->done += (size_t)v;
            break;
        case IN_FLUSH:
            memmove(f->wbuf, f->wbuf + v, f->wlen - (size_t)v);
            f->wlen -= (size_t)v;
            break;
        case IN_DIRECT_WRITE:
            o->done += (size_t)v;
            break;
        case IN_CLOSE:
            o->closed = true;
            o->close_result = v < 0 ? err : 0;
            break;
        default:
            if (v < 0 && !o->ioerr) o->ioerr = err;
        }
    }
    o->inner = IN_NONE;
    return progress(o);
}

/* Runs `o` to its end, or as far as the buffers go, and returns its future. */
static async_future_t *sop_run(sop_t *o) {
    async__fs_seq_init(&o->seq, sop_step, sop_release);
    return async__fs_seq_start(&o->seq, progress(o));
}

static sop_t *sop_new(async_file_t *f, int kind) {
    sop_t *o = calloc(1, sizeof *o);
    if (!o) {
        errno = ENOMEM;
        return NULL;
    }
    o->f = f;
    o->kind = kind;
    return o;
}

/* Checks common to every stream call; 0 or an errno. Claims the stream. A
 * call the stream's mode forbids sets the error indicator, as stdio does. */
static int begin(async_file_t *f, bool need_read, bool need_write) {
    if (!claim(f)) return EBUSY;
    if ((need_read && !f->readable) || (need_write && !f->writable)) {
        f->error = true;
        unclaim(f);
        return EBADF;
    }
    return 0;
}

/* ---- reading ------------------------------------------------------------------ */

/* Runs a line read on a stream already claimed by begin(). */
static async_future_t *line_run(async_file_t *f, int kind, char *s, int size, char **lineptr,
                                size_t *n) {
    sop_t *o = sop_new(f, kind);
    if (!o) {
        unclaim(f);
        return NULL;
    }
    o->s = s;
    o->size = size;
    o->lineptr = lineptr;
    o->n = n;
    return sop_run(o);
}

async_future_t *async_fgets(char *s, int size, async_file_t *f) {
    if (!s || !f || size < 1) return async__future_failed(EINVAL);
    if (size == 1) { /* room for the NUL only: nothing is read, whatever the mode (glibc) */
        s[0] = 0;
        return async__future_done((intptr_t)s);
    }
    /* Claimed before the buffer is looked at: a pending operation may
     * realloc it on another worker at any moment. */
    int err = begin(f, true, false);
    if (err) return async__future_failed(err);
    /* the common case, a whole line already buffered, costs no allocation */
    size_t avail = f->rbuf ? f->rlen - f->rpos : 0;
    size_t scan = avail < (size_t)size - 1 ? avail : (size_t)size - 1;
    const char *nl = scan ? memchr(f->rbuf + f->rpos, '\n', scan) : NULL;
    if (nl || (avail && scan == (size_t)size - 1)) {
        /* reserved before the line is taken: without memory, it stays buffered */
        async_future_t *res = async__future_reserve();
        if (!res) {
            unclaim(f);
            return NULL;
        }
        size_t take = nl ? (size_t)(nl - (f->rbuf + f->rpos)) + 1 : scan;
        memcpy(s, f->rbuf + f->rpos, take);
        s[take] = 0;
        f->rpos += take;
        unclaim(f);
        return async__future_fill(res, (intptr_t)s, 0);
    }
    return line_run(f, OP_FGETS, s, size, NULL, NULL);
}

async_future_t *async_getline(char **lineptr, size_t *n, async_file_t *f) {
    if (!lineptr || !n || !f) return async__future_failed(EINVAL);
    int err = begin(f, true, false);
    if (err) return async__future_failed(err);
    return line_run(f, OP_GETLINE, NULL, 0, lineptr, n);
}

async_future_t *async_fread(void *ptr, size_t size, size_t nmemb, async_file_t *f) {
    if (!f) return async__future_failed(EINVAL);
    if (size == 0 || nmemb == 0) return async__future_done(0);
    if (nmemb > SIZE_MAX / size) return async__future_failed(EOVERFLOW);
    if (!ptr) return async__future_failed(EFAULT);
    int err = begin(f, true, false);
    if (err) return async__future_failed(err);
    sop_t *o = sop_new(f, OP_FREAD);
    if (!o) {
        unclaim(f);
        return NULL;
    }
    o->ptr = ptr;
    o->isize = size;
    o->total = size * nmemb;
    return sop_run(o);
}

/* ---- writing -------------------------------------------------------------------- */

/* fwrite's body; `owned` (or NULL) is freed when the write is done. */
static async_future_t *write_start(async_file_t *f, const void *ptr, size_t size, size_t nmemb,
                                   char *owned) {
    int err = begin(f, false, true);
    if (err) {
        free(owned);
        return async__future_failed(err);
    }
    if (!f->wbuf && !(f->wbuf = malloc(f->bufsize))) {
        unclaim(f);
        free(owned);
        errno = ENOMEM;
        return NULL;
    }
    drop_readahead(f);
    size_t total = size * nmemb;
    if (f->wlen + total <= f->bufsize && !(f->linebuf && has_newline(ptr, total))) {
        /* the common case: into the buffer, once the result can be reported
         * (a retry after an ENOMEM must not find the data buffered already) */
        async_future_t *res = async__future_reserve();
        if (res) {
            memcpy(f->wbuf + f->wlen, ptr, total);
            f->wlen += total;
        }
        unclaim(f);
        free(owned);
        return res ? async__future_fill(res, (intptr_t)nmemb, 0) : NULL;
    }
    sop_t *o = sop_new(f, OP_FWRITE);
    if (!o) {
        unclaim(f);
        free(owned);
        return NULL;
    }
    o->ptr = (char *)ptr;
    o->isize = size;
    o->total = total;
    o->owned = owned;
    return sop_run(o);
}

async_future_t *async_fwrite(const void *ptr, size_t size, size_t nmemb, async_file_t *f) {
    if (!f) return async__future_failed(EINVAL);
    if (size == 0 || nmemb == 0) return async__future_done(0);
    if (nmemb > SIZE_MAX / size) return async__future_failed(EOVERFLOW);
    if (!ptr) return async__future_failed(EFAULT);
    return write_start(f, ptr, size, nmemb, NULL);
}

async_future_t *async_fputs(const char *s, async_file_t *f) {
    if (!s || !f) return async__future_failed(EINVAL);
    size_t n = strlen(s);
    if (n == 0) return async__future_done(0);
    return write_start(f, s, 1, n, NULL);
}

async_future_t *async_vfprintf(async_file_t *f, const char *format, va_list ap) {
    if (!f || !format) return async__future_failed(EINVAL);
    char small[512];
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(small, sizeof small, format, aq);
    va_end(aq);
    if (n < 0) return async__future_failed(EOVERFLOW);
    char *text = small, *owned = NULL;
    if ((size_t)n >= sizeof small) {
        if (!(owned = malloc((size_t)n + 1))) {
            errno = ENOMEM;
            return NULL;
        }
        vsnprintf(owned, (size_t)n + 1, format, ap);
        text = owned;
    }
    if (n == 0) return async__future_done(0);
    /* the text must outlive the call if it cannot all be buffered now */
    if (!owned && f->wbuf && f->wlen + (size_t)n > f->bufsize) {
        if (!(owned = malloc((size_t)n))) {
            errno = ENOMEM;
            return NULL;
        }
        memcpy(owned, small, (size_t)n);
        text = owned;
    } else if (!owned && !f->wbuf && (size_t)n > f->bufsize) {
        owned = malloc((size_t)n); /* cannot happen with 512 < bufsize; kept for safety */
        if (!owned) {
            errno = ENOMEM;
            return NULL;
        }
        memcpy(owned, small, (size_t)n);
        text = owned;
    }
    return write_start(f, text, 1, (size_t)n, owned);
}

async_future_t *async_fprintf(async_file_t *f, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    async_future_t *r = async_vfprintf(f, format, ap);
    va_end(ap);
    return r;
}

/* ---- flush and close --------------------------------------------------------------- */

async_future_t *async_fflush(async_file_t *f) {
    if (!f) return async__future_failed(EINVAL);
    if (!claim(f)) return async__future_failed(EBUSY);
    if (!f->wlen) {
        drop_readahead(f);
        unclaim(f);
        return async__future_done(0);
    }
    sop_t *o = sop_new(f, OP_FLUSH);
    if (!o) {
        unclaim(f);
        return NULL;
    }
    return sop_run(o);
}

async_future_t *async_fclose(async_file_t *f) {
    if (!f) return async__future_failed(EINVAL);
    if (!claim(f)) return async__future_failed(EBUSY);
    sop_t *o = f->closer; /* made with the stream: closing allocates nothing of its own */
    o->f = f;
    o->kind = OP_CLOSE;
    return sop_run(o);
}

/* ---- flags ---------------------------------------------------------------------- */

int async_feof(async_file_t *f) { return f && f->eof; }

int async_ferror(async_file_t *f) { return f && f->error; }

void async_clearerr(async_file_t *f) {
    if (!f) return;
    f->eof = false;
    f->error = false;
}

int async_fileno(async_file_t *f) {
    if (!f) {
        errno = EBADF;
        return -1;
    }
    return f->fd;
}
