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
 * Every call first claims the stream (a second call while one is pending
 * gets EBUSY), then does what the buffers allow on the calling thread: a line
 * already buffered, or a record that fits in the output buffer, costs no
 * allocation and no task switch. A call that must wait for the fd runs the
 * same loop as straight-line code in a task of its own (async__spawn_owned),
 * which releases the stream however the task ends. Lines are copied into the
 * caller's buffer only when whole (fgets, getdelim), so a cancelled read
 * leaves every byte in the stream. */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define BUF_FILE (64 * 1024)  /* regular files: fewer system calls per MiB */
#define BUF_STREAM (8 * 1024) /* sockets, pipes, terminals */

struct async_file {
    int fd; /* -1 once a failed freopen has closed it */
    bool readable, writable, seekable, append;
    bool eof, error;
    int bufmode; /* _IOFBF, _IOLBF or _IONBF: when output is written out */
    atomic_bool busy;
    size_t bufsize;
    char *rbuf;
    size_t rcap, rpos, rlen; /* unread data: rbuf[rpos, rlen) */
    char *wbuf;
    size_t wlen; /* unsent data: wbuf[0, wlen) */
};

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

/* Fills in what the stream learns from its fd (also after freopen). */
static void file_attach(async_file_t *f, int fd, bool rd, bool wr) {
    f->fd = fd;
    f->readable = rd;
    f->writable = wr;
    struct stat st;
    bool reg = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    f->seekable = reg && lseek(fd, 0, SEEK_CUR) >= 0;
    int fl = fcntl(fd, F_GETFL);
    f->append = fl >= 0 && (fl & O_APPEND);
    f->bufmode = !reg && isatty(fd) ? _IOLBF : _IOFBF;
    if (!f->rbuf && !f->wbuf) f->bufsize = reg ? BUF_FILE : BUF_STREAM;
    f->eof = f->error = false;
    f->rpos = f->rlen = f->wlen = 0;
}

static async_file_t *file_new(int fd, bool rd, bool wr) {
    async_file_t *f = calloc(1, sizeof *f);
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    file_attach(f, fd, rd, wr);
    atomic_init(&f->busy, false);
    return f;
}

static void file_free(async_file_t *f) {
    free(f->rbuf);
    free(f->wbuf);
    free(f);
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

typedef struct open_req {
    int flags;
    bool rd, wr;
    char path[];
} open_req_t;

static intptr_t fopen_task(void *arg) {
    open_req_t *o = arg;
    intptr_t fd = async_await(async_open(o->path, o->flags, 0666));
    if (fd < 0) return -1;
    async_file_t *f = seek_append((int)fd, o->flags) < 0 ? NULL : file_new((int)fd, o->rd, o->wr);
    if (!f) {
        int e = errno;
        close((int)fd);
        errno = e;
        return -1;
    }
    return (intptr_t)f;
}

async_future_t *async_fopen(const char *path, const char *mode) {
    bool rd, wr;
    int fl = parse_mode(mode, 6, &rd, &wr);
    if (fl < 0) return async__future_failed(EINVAL);
    if (!path) return async__future_failed(EFAULT);
    size_t len = strlen(path) + 1;
    open_req_t *o = malloc(sizeof *o + len);
    if (!o) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(o->path, path, len);
    o->flags = fl;
    o->rd = rd;
    o->wr = wr;
    return async__spawn_owned(fopen_task, o, free, NULL);
}

/* tmpfile(3) as glibc makes it: an unnamed O_TMPFILE file in /tmp, or a
 * named one removed at once where the file system lacks O_TMPFILE. */
static intptr_t run_tmpfile(fs_op_t *op) {
    (void)op;
    int fd = open(P_tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EISDIR || errno == EOPNOTSUPP || errno == EINVAL)) {
        char name[] = P_tmpdir "/asyncstd-tmpXXXXXX";
        fd = mkostemp(name, O_CLOEXEC);
        if (fd >= 0) unlink(name);
    }
    if (fd < 0) return -1;
    async_file_t *f = file_new(fd, true, true);
    if (!f) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    return (intptr_t)f;
}

async_future_t *async_tmpfile(void) {
    fs_op_t *op = async__fs_op_new(run_tmpfile, NULL, NULL);
    return op ? async__fs_submit(op) : NULL;
}

/* ---- claiming and buffers ----------------------------------------------------- */

static bool claim(async_file_t *f) {
    bool expected = false;
    return atomic_compare_exchange_strong(&f->busy, &expected, true);
}

static void unclaim(async_file_t *f) {
    atomic_store_explicit(&f->busy, false, memory_order_release);
}

/* Checks common to every stream call; 0 or an errno. Claims the stream. A
 * call the stream's mode forbids sets the error indicator, as stdio does. */
static int begin(async_file_t *f, bool need_read, bool need_write) {
    if (!claim(f)) return EBUSY;
    if (f->fd < 0) {
        unclaim(f);
        return EBADF;
    }
    if ((need_read && !f->readable) || (need_write && !f->writable)) {
        f->error = true;
        unclaim(f);
        return EBADF;
    }
    return 0;
}

/* Makes room for more read-ahead (at least `want` bytes in all); false when out of memory. */
static bool rbuf_reserve(async_file_t *f, size_t want) {
    if (f->rpos > 0 && f->rpos == f->rlen) f->rpos = f->rlen = 0;
    if (f->rpos > 0 && f->rlen == f->rcap) { /* compact */
        memmove(f->rbuf, f->rbuf + f->rpos, f->rlen - f->rpos);
        f->rlen -= f->rpos;
        f->rpos = 0;
    }
    if (f->rbuf && f->rlen < f->rcap && f->rcap >= want) return true;
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

/* Output buffer capacity under the buffering mode: 0 writes straight through. */
static size_t out_cap(const async_file_t *f) { return f->bufmode == _IONBF ? 0 : f->bufsize; }

/* Whether output of these bytes must be written out before the call returns. */
static bool must_flush(const async_file_t *f, const char *p, size_t n) {
    return f->bufmode == _IONBF || (f->bufmode == _IOLBF && n && memchr(p, '\n', n));
}

/* A settled future for a call done on the calling thread, reserved before
 * the buffers change so that an ENOMEM leaves the stream as it was. */
static async_future_t *reserve_or_unclaim(async_file_t *f) {
    async_future_t *res = async__future_reserve();
    if (!res) unclaim(f);
    return res;
}

static async_future_t *done_unclaim(async_file_t *f, async_future_t *res, intptr_t v, int err) {
    unclaim(f);
    return async__future_fill(res, v, err);
}

/* ---- the waiting parts, run in a task ----------------------------------------------- */

/* A failed read or write sets the error indicator; a cancelled one does not. */
static intptr_t io_failed(async_file_t *f) {
    if (errno != ECANCELED) f->error = true;
    return -1;
}

/* Writes out the output buffer: 0, or -1 with errno (unsent bytes stay). */
static int flush_out(async_file_t *f) {
    while (f->wlen) {
        intptr_t n = async_await(async_write(f->fd, f->wbuf, f->wlen));
        if (n < 0) return (int)io_failed(f);
        memmove(f->wbuf, f->wbuf + n, f->wlen - (size_t)n);
        f->wlen -= (size_t)n;
    }
    return 0;
}

/* Reads more into the read buffer (room for `want` bytes in all), output
 * written out first: the count read, 0 at end of file, -1 with errno. */
static intptr_t fill(async_file_t *f, size_t want) {
    if (f->wlen && flush_out(f) < 0) return -1;
    if (!rbuf_reserve(f, want)) {
        errno = ENOMEM;
        return -1;
    }
    intptr_t n = async_await(async_read(f->fd, f->rbuf + f->rlen, f->rcap - f->rlen));
    if (n < 0) return io_failed(f);
    if (n == 0) f->eof = true;
    f->rlen += (size_t)n;
    return n;
}

/* Appends n bytes to the output, writing out as the buffer fills; what does
 * not fit an empty buffer goes straight to the fd. The count taken (n, or
 * fewer with errno set). */
static size_t put(async_file_t *f, const char *p, size_t n) {
    size_t cap = out_cap(f), done = 0;
    while (done < n) {
        /* the mode may have become _IONBF with output still buffered */
        size_t room = cap > f->wlen ? cap - f->wlen : 0;
        if (n - done <= room) {
            memcpy(f->wbuf + f->wlen, p + done, n - done);
            f->wlen += n - done;
            return n;
        }
        if (f->wlen) {
            if (flush_out(f) < 0) break;
            continue;
        }
        intptr_t w = async_await(async_write(f->fd, p + done, n - done));
        if (w < 0) {
            io_failed(f);
            break;
        }
        done += (size_t)w;
    }
    return done;
}

/* ---- reading ------------------------------------------------------------------ */

/* The length of the line at the read position (delimiter included, at most
 * `limit` bytes) if it is all buffered, or the rest at end of file; SIZE_MAX
 * when more must be read first. 0 only at end of file with nothing left. */
static size_t buffered_line(const async_file_t *f, int delim, size_t limit) {
    size_t avail = f->rlen - f->rpos, scan = avail < limit ? avail : limit;
    const char *p = scan ? memchr(f->rbuf + f->rpos, delim, scan) : NULL;
    if (p) return (size_t)(p - (f->rbuf + f->rpos)) + 1;
    if (avail >= limit) return limit;
    return f->eof ? avail : SIZE_MAX;
}

/* Reads until buffered_line has an answer: that length, or SIZE_MAX with errno. */
static size_t read_line(async_file_t *f, int delim, size_t limit) {
    size_t len;
    while ((len = buffered_line(f, delim, limit)) == SIZE_MAX)
        if (fill(f, f->rlen - f->rpos + 1) < 0) return SIZE_MAX;
    return len;
}

/* getdelim's copy of `len` buffered bytes into the caller's buffer, grown as
 * glibc grows it (120 bytes at least); false when out of memory. */
static bool take_line(async_file_t *f, size_t len, char **lineptr, size_t *n) {
    if (!*lineptr || *n < len + 1) {
        size_t cap = len + 1 < 120 ? 120 : len + 1;
        char *nb = realloc(*lineptr, cap);
        if (!nb) return false;
        *lineptr = nb;
        *n = cap;
    }
    memcpy(*lineptr, f->rbuf + f->rpos, len);
    (*lineptr)[len] = 0;
    f->rpos += len;
    return true;
}

/* What a call that waits carries into its task; freed, and the stream
 * released, by call_free however the task ends. */
typedef struct call {
    async_file_t *f;
    char *s; /* fgets */
    int size;
    int delim; /* getdelim */
    char **lineptr;
    size_t *n;
    const char *p1, *p2; /* fread/fwrite's data; the writes' two pieces */
    size_t n1, n2;
    size_t isize;   /* fread/fwrite: the item size; 0 for the other writes */
    intptr_t value; /* the writes' result when all went out */
    char *owned;    /* text the call owns (fprintf, fputc, puts), or NULL */
    off_t off;      /* fseek */
    int whence;
    bool rewind;
    int oflags; /* freopen: the mode's open flags, and the path or NULL */
    bool rd, wr;
    char *path;
} call_t;

static void call_free(void *arg) {
    call_t *c = arg;
    unclaim(c->f);
    free(c->owned);
    free(c->path);
    free(c);
}

static call_t *call_new(async_file_t *f) {
    call_t *c = calloc(1, sizeof *c);
    if (!c) {
        unclaim(f);
        errno = ENOMEM;
    } else {
        c->f = f;
    }
    return c;
}

static async_future_t *call_spawn(async_task_fn fn, call_t *c) {
    return c ? async__spawn_owned(fn, c, call_free, NULL) : NULL;
}

static intptr_t fgets_task(void *arg) {
    call_t *c = arg;
    async_file_t *f = c->f;
    size_t len = read_line(f, '\n', (size_t)c->size - 1);
    if (len == SIZE_MAX) return -1;
    if (len == 0) return 0; /* end of file, nothing read: NULL, errno untouched */
    memcpy(c->s, f->rbuf + f->rpos, len);
    c->s[len] = 0;
    f->rpos += len;
    return (intptr_t)c->s;
}

async_future_t *async_fgets(char *s, int size, async_file_t *f) {
    if (!s || !f || size < 1) return async__future_failed(EINVAL);
    if (size == 1) { /* room for the NUL only: nothing is read, whatever the mode (glibc) */
        s[0] = 0;
        return async__future_done((intptr_t)s);
    }
    /* Claimed before the buffer is looked at: a pending call may realloc it
     * on another worker at any moment. */
    int err = begin(f, true, false);
    if (err) return async__future_failed(err);
    size_t len = buffered_line(f, '\n', (size_t)size - 1);
    if (len == SIZE_MAX) {
        call_t *c = call_new(f);
        if (c) {
            c->s = s;
            c->size = size;
        }
        return call_spawn(fgets_task, c);
    }
    /* the common case, a whole line already buffered: no allocation, no switch */
    async_future_t *res = reserve_or_unclaim(f);
    if (!res) return NULL;
    if (len == 0) return done_unclaim(f, res, 0, 0); /* at end of file already */
    memcpy(s, f->rbuf + f->rpos, len);
    s[len] = 0;
    f->rpos += len;
    return done_unclaim(f, res, (intptr_t)s, 0);
}

static intptr_t getdelim_task(void *arg) {
    call_t *c = arg;
    async_file_t *f = c->f;
    size_t len = read_line(f, c->delim, SIZE_MAX);
    if (len == SIZE_MAX) return -1;
    if (len == 0) { /* end of file: -1 with errno untouched */
        errno = 0;
        return -1;
    }
    if (!take_line(f, len, c->lineptr, c->n)) {
        errno = ENOMEM;
        return -1;
    }
    return (intptr_t)len;
}

async_future_t *async_getdelim(char **lineptr, size_t *n, int delim, async_file_t *f) {
    if (!lineptr || !n || !f) return async__future_failed(EINVAL);
    int err = begin(f, true, false);
    if (err) return async__future_failed(err);
    size_t len = buffered_line(f, (unsigned char)delim, SIZE_MAX);
    if (len == SIZE_MAX) {
        call_t *c = call_new(f);
        if (c) {
            c->delim = (unsigned char)delim;
            c->lineptr = lineptr;
            c->n = n;
        }
        return call_spawn(getdelim_task, c);
    }
    async_future_t *res = reserve_or_unclaim(f);
    if (!res) return NULL;
    if (len == 0) return done_unclaim(f, res, -1, 0); /* at end of file already */
    if (!take_line(f, len, lineptr, n)) return done_unclaim(f, res, -1, ENOMEM);
    return done_unclaim(f, res, (intptr_t)len, 0);
}

async_future_t *async_getline(char **lineptr, size_t *n, async_file_t *f) {
    return async_getdelim(lineptr, n, '\n', f);
}

static intptr_t fread_task(void *arg) {
    call_t *c = arg;
    async_file_t *f = c->f;
    char *dst = (char *)c->p1;
    size_t total = c->n1, done = 0;
    int err = 0;
    while (done < total) {
        size_t avail = f->rlen - f->rpos, want = total - done;
        if (avail) {
            size_t k = avail < want ? avail : want;
            memcpy(dst + done, f->rbuf + f->rpos, k);
            f->rpos += k;
            done += k;
            continue;
        }
        if (f->eof) break;
        intptr_t n;
        if (want >= f->bufsize && !f->wlen) { /* large reads skip the buffer */
            n = async_await(async_read(f->fd, dst + done, want));
            if (n < 0) io_failed(f);
            if (n == 0) f->eof = true;
            if (n > 0) done += (size_t)n;
        } else {
            n = fill(f, 0);
        }
        if (n < 0) {
            err = errno;
            break;
        }
    }
    size_t items = done / c->isize;
    if (items == 0 && err) {
        errno = err;
        return -1;
    }
    return (intptr_t)items;
}

async_future_t *async_fread(void *ptr, size_t size, size_t nmemb, async_file_t *f) {
    if (!f) return async__future_failed(EINVAL);
    if (size == 0 || nmemb == 0) return async__future_done(0);
    if (nmemb > SIZE_MAX / size) return async__future_failed(EOVERFLOW);
    if (!ptr) return async__future_failed(EFAULT);
    int err = begin(f, true, false);
    if (err) return async__future_failed(err);
    size_t total = size * nmemb;
    if (f->rlen - f->rpos >= total) { /* all buffered: no allocation, no switch */
        async_future_t *res = reserve_or_unclaim(f);
        if (!res) return NULL;
        memcpy(ptr, f->rbuf + f->rpos, total);
        f->rpos += total;
        return done_unclaim(f, res, (intptr_t)nmemb, 0);
    }
    call_t *c = call_new(f);
    if (c) {
        c->p1 = ptr;
        c->n1 = total;
        c->isize = size;
    }
    return call_spawn(fread_task, c);
}

static intptr_t fgetc_task(void *arg) {
    call_t *c = arg;
    async_file_t *f = c->f;
    while (f->rpos == f->rlen) {
        if (f->eof) { /* EOF, errno untouched */
            errno = 0;
            return -1;
        }
        if (fill(f, 0) < 0) return -1;
    }
    return (unsigned char)f->rbuf[f->rpos++];
}

async_future_t *async_fgetc(async_file_t *f) {
    if (!f) return async__future_failed(EINVAL);
    int err = begin(f, true, false);
    if (err) return async__future_failed(err);
    if (f->rpos < f->rlen || f->eof) {
        async_future_t *res = reserve_or_unclaim(f);
        if (!res) return NULL;
        if (f->rpos == f->rlen) return done_unclaim(f, res, -1, 0);
        return done_unclaim(f, res, (unsigned char)f->rbuf[f->rpos++], 0);
    }
    return call_spawn(fgetc_task, call_new(f));
}

int async_ungetc(int c, async_file_t *f) {
    if (!f || c == EOF) return EOF; /* as glibc: EOF, errno untouched */
    if (!claim(f)) {
        errno = EBUSY;
        return EOF;
    }
    if (f->rpos == 0) { /* room before the read position */
        if ((f->rlen == f->rcap || !f->rbuf) && !rbuf_reserve(f, f->rlen + 1)) {
            unclaim(f);
            errno = ENOMEM;
            return EOF;
        }
        memmove(f->rbuf + 1, f->rbuf, f->rlen);
        f->rlen++;
        f->rpos = 1;
    }
    f->rbuf[--f->rpos] = (char)c;
    f->eof = false;
    unclaim(f);
    return (unsigned char)c;
}

/* ---- writing -------------------------------------------------------------------- */

static intptr_t write_task(void *arg) {
    call_t *c = arg;
    async_file_t *f = c->f;
    size_t want = c->n1 + c->n2;
    size_t done = put(f, c->p1, c->n1);
    if (done == c->n1 && c->n2) done += put(f, c->p2, c->n2);
    int err = done < want ? errno : 0;
    /* fwrite's data is taken even when the flush that follows fails (it
     * shows in ferror); fputs and the others report EOF, as glibc's do */
    if (!err && (must_flush(f, c->p1, c->n1) || must_flush(f, c->p2, c->n2)) && flush_out(f) < 0)
        err = errno;
    if (c->isize) { /* fwrite: whole items taken */
        size_t items = done / c->isize;
        if (items == 0 && err) {
            errno = err;
            return -1;
        }
        return (intptr_t)items;
    }
    if (err) {
        errno = err;
        return -1;
    }
    return c->value;
}

/* The body of every write: up to two pieces, `value` the result when all is
 * taken (for fwrite, `isize` makes it a count of items). `copy`: the pieces
 * live on the caller's frame and are copied if the call must wait. */
static async_future_t *write_start(async_file_t *f, const char *p1, size_t n1, const char *p2,
                                   size_t n2, size_t isize, intptr_t value, bool copy) {
    int err = begin(f, false, true);
    if (err) return async__future_failed(err);
    if (!f->wbuf && out_cap(f) && !(f->wbuf = malloc(f->bufsize))) {
        unclaim(f);
        errno = ENOMEM;
        return NULL;
    }
    drop_readahead(f);
    if (f->wlen + n1 + n2 <= out_cap(f) && !must_flush(f, p1, n1) && !must_flush(f, p2, n2)) {
        /* the common case: into the buffer, once the result can be reported
         * (a retry after an ENOMEM must not find the data buffered already) */
        async_future_t *res = reserve_or_unclaim(f);
        if (!res) return NULL;
        if (n1) memcpy(f->wbuf + f->wlen, p1, n1);
        if (n2) memcpy(f->wbuf + f->wlen + n1, p2, n2);
        f->wlen += n1 + n2;
        return done_unclaim(f, res, value, 0);
    }
    call_t *c = call_new(f);
    if (!c) return NULL;
    if (copy) {
        if (!(c->owned = malloc(n1 + n2 + 1))) {
            call_free(c);
            errno = ENOMEM;
            return NULL;
        }
        memcpy(c->owned, p1, n1);
        if (n2) memcpy(c->owned + n1, p2, n2);
        p1 = c->owned;
        n1 += n2;
        p2 = NULL;
        n2 = 0;
    }
    c->p1 = p1;
    c->n1 = n1;
    c->p2 = p2;
    c->n2 = n2;
    c->isize = isize;
    c->value = value;
    return call_spawn(write_task, c);
}

async_future_t *async_fwrite(const void *ptr, size_t size, size_t nmemb, async_file_t *f) {
    if (!f) return async__future_failed(EINVAL);
    if (size == 0 || nmemb == 0) return async__future_done(0);
    if (nmemb > SIZE_MAX / size) return async__future_failed(EOVERFLOW);
    if (!ptr) return async__future_failed(EFAULT);
    return write_start(f, ptr, size * nmemb, NULL, 0, size, (intptr_t)nmemb, false);
}

async_future_t *async_fputs(const char *s, async_file_t *f) {
    if (!s || !f) return async__future_failed(EINVAL);
    return write_start(f, s, strlen(s), NULL, 0, 0, 1, false); /* glibc's success value: 1 */
}

async_future_t *async_fputc(int c, async_file_t *f) {
    if (!f) return async__future_failed(EINVAL);
    char ch = (char)c;
    return write_start(f, &ch, 1, NULL, 0, 0, (unsigned char)c, true);
}

async_future_t *async_puts(const char *s) {
    if (!s) return async__future_failed(EINVAL);
    async_file_t *out = async_stdout;
    if (!out) return async__future_failed(errno);
    size_t n = strlen(s);
    intptr_t value = n + 1 < INT_MAX ? (intptr_t)n + 1 : INT_MAX; /* glibc's */
    return write_start(out, s, n, "\n", 1, 0, value, false);
}

async_future_t *async_vfprintf(async_file_t *f, const char *format, va_list ap) {
    if (!f || !format) return async__future_failed(EINVAL);
    char small[512];
    va_list aq;
    va_copy(aq, ap);
    int n = vsnprintf(small, sizeof small, format, aq);
    va_end(aq);
    if (n < 0) return async__future_failed(EOVERFLOW);
    if ((size_t)n < sizeof small) return write_start(f, small, (size_t)n, NULL, 0, 0, n, true);
    char *text = malloc((size_t)n + 1);
    if (!text) {
        errno = ENOMEM;
        return NULL;
    }
    vsnprintf(text, (size_t)n + 1, format, ap);
    async_future_t *r = write_start(f, text, (size_t)n, NULL, 0, 0, n, true);
    free(text);
    return r;
}

async_future_t *async_fprintf(async_file_t *f, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    async_future_t *r = async_vfprintf(f, format, ap);
    va_end(ap);
    return r;
}

/* ---- scanning ------------------------------------------------------------------ */

async_future_t *async_vfscanf(async_file_t *f, const char *format, va_list ap) {
    if (!f || !format) return async__future_failed(EINVAL);
    /* The arguments live only for this call: the line is awaited here. */
    char *line = NULL;
    size_t cap = 0;
    errno = 0;
    intptr_t n = async_await(async_getline(&line, &cap, f));
    if (n < 0) {
        int e = errno;
        free(line);
        return e ? async__future_failed(e) : async__future_done(EOF);
    }
    int r = vsscanf(line, format, ap);
    free(line);
    return async__future_done(r);
}

async_future_t *async_fscanf(async_file_t *f, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    async_future_t *r = async_vfscanf(f, format, ap);
    va_end(ap);
    return r;
}

/* ---- flush, position, buffering -------------------------------------------------- */

static intptr_t fflush_task(void *arg) {
    call_t *c = arg;
    if (flush_out(c->f) < 0) return -1;
    drop_readahead(c->f);
    return 0;
}

async_future_t *async_fflush(async_file_t *f) {
    if (!f) return async__future_failed(EINVAL);
    int err = begin(f, false, false);
    if (err) return async__future_failed(err);
    if (f->wlen) return call_spawn(fflush_task, call_new(f));
    drop_readahead(f);
    unclaim(f);
    return async__future_done(0);
}

/* lseek for fseek, once output is written out: 0, or -1 with errno. */
static int seek_now(async_file_t *f, off_t off, int whence) {
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END) {
        errno = EINVAL;
        return -1;
    }
    if (whence == SEEK_CUR) off -= (off_t)(f->rlen - f->rpos); /* from the stream's position */
    if (lseek(f->fd, off, whence) < 0) return -1;
    f->rpos = f->rlen = 0;
    f->eof = false;
    return 0;
}

static intptr_t fseek_task(void *arg) {
    call_t *c = arg;
    if (flush_out(c->f) < 0) return -1;
    if (seek_now(c->f, c->off, c->whence) < 0) return -1;
    if (c->rewind) c->f->error = false;
    return 0;
}

static async_future_t *seek_start(async_file_t *f, off_t off, int whence, bool rewind) {
    if (!f) return async__future_failed(EINVAL);
    int err = begin(f, false, false);
    if (err) return async__future_failed(err);
    if (f->wlen) {
        call_t *c = call_new(f);
        if (c) {
            c->off = off;
            c->whence = whence;
            c->rewind = rewind;
        }
        return call_spawn(fseek_task, c);
    }
    int r = seek_now(f, off, whence);
    err = errno;
    if (r == 0 && rewind) f->error = false;
    unclaim(f);
    return r == 0 ? async__future_done(0) : async__future_failed(err);
}

async_future_t *async_fseeko(async_file_t *f, off_t offset, int whence) {
    return seek_start(f, offset, whence, false);
}

async_future_t *async_fseek(async_file_t *f, long offset, int whence) {
    return seek_start(f, (off_t)offset, whence, false);
}

async_future_t *async_rewind(async_file_t *f) { return seek_start(f, 0, SEEK_SET, true); }

off_t async_ftello(async_file_t *f) {
    if (!f) {
        errno = EBADF;
        return -1;
    }
    if (!claim(f)) {
        errno = EBUSY;
        return -1;
    }
    off_t pos = f->fd < 0 ? (errno = EBADF, -1) : lseek(f->fd, 0, SEEK_CUR);
    if (pos >= 0 && f->append && f->wlen) pos = lseek(f->fd, 0, SEEK_END); /* where it will go */
    if (pos >= 0) {
        pos = pos - (off_t)(f->rlen - f->rpos) + (off_t)f->wlen;
        if (pos < 0) { /* bytes pushed back before the start of the file (glibc) */
            errno = EINVAL;
            pos = -1;
        }
    }
    unclaim(f);
    return pos;
}

long async_ftell(async_file_t *f) {
    off_t pos = async_ftello(f);
    if (pos > LONG_MAX) {
        errno = EOVERFLOW;
        return -1;
    }
    return (long)pos;
}

int async_setvbuf(async_file_t *f, char *buf, int mode, size_t size) {
    (void)buf; /* the stream keeps its own buffers */
    if (!f) {
        errno = EBADF;
        return -1;
    }
    if (mode != _IOFBF && mode != _IOLBF && mode != _IONBF) return -1; /* errno untouched (glibc) */
    if (!claim(f)) {
        errno = EBUSY;
        return -1;
    }
    f->bufmode = mode;
    if (size && !f->rbuf && !f->wbuf) f->bufsize = size; /* before the first read or write */
    unclaim(f);
    return 0;
}

/* ---- the standard streams ------------------------------------------------------- */

static async_file_t *_Atomic std_streams[3];

async_file_t *async_stdstream(int fd) {
    if (fd < 0 || fd > 2) {
        errno = EBADF;
        return NULL;
    }
    async_file_t *f = atomic_load_explicit(&std_streams[fd], memory_order_acquire);
    if (f) return f;
    int saved = errno;
    async_file_t *made = async_fdopen(fd, fd == 0 ? "r" : "w");
    if (!made) return NULL;
    if (fd == 2) made->bufmode = _IONBF; /* stderr is unbuffered, as in stdio */
    errno = saved;
    if (atomic_compare_exchange_strong(&std_streams[fd], &f, made)) return made;
    file_free(made); /* another thread made it first */
    return f;
}

/* A closed standard stream is forgotten: the next use makes a new one. */
static void forget_std(async_file_t *f) {
    for (int i = 0; i < 3; i++) {
        async_file_t *expected = f;
        atomic_compare_exchange_strong(&std_streams[i], &expected, NULL);
    }
}

/* ---- closing and reopening -------------------------------------------------------- */

/* Closes the fd (waking any wait registered on it); never needs memory it
 * lacks: async__io_close has a spare op, and without it close(2) is called
 * here. The close's future, or NULL with the fd closed all the same. */
static async_future_t *close_fd(async_file_t *f) {
    int fd = f->fd;
    f->fd = -1;
    async_future_t *r = async__io_close(fd);
    if (!r) {
        close(fd);
        errno = ENOMEM;
    }
    return r;
}

static intptr_t fclose_task(void *arg) {
    async_file_t *f = arg;
    int err = flush_out(f) < 0 ? errno : 0;
    intptr_t r = async_await(close_fd(f));
    if (err) {
        errno = err;
        return -1;
    }
    return r;
}

/* The stream ends with its fclose, however the task ended. */
static void fclose_free(void *arg) {
    async_file_t *f = arg;
    if (f->fd >= 0) close(f->fd); /* a task that got no stack: not even the close ran */
    file_free(f);
}

async_future_t *async_fclose(async_file_t *f) {
    if (!f) return async__future_failed(EINVAL);
    if (!claim(f)) return async__future_failed(EBUSY);
    forget_std(f);
    if (f->fd < 0) { /* closed by a failed freopen */
        file_free(f);
        return async__future_done(0);
    }
    if (!f->wlen) { /* nothing to write: closing needs no memory of its own */
        async_future_t *r = close_fd(f);
        file_free(f);
        return r;
    }
    return async__spawn_owned(fclose_task, f, fclose_free, NULL);
}

static intptr_t freopen_task(void *arg) {
    call_t *c = arg;
    async_file_t *f = c->f;
    bool rd = c->rd, wr = c->wr;
    int fl = c->oflags;
    (void)flush_out(f); /* as glibc: a failed flush does not stop the reopen */
    intptr_t fd;
    if (c->path) {
        (void)async_await(close_fd(f));
        fd = async_await(async_open(c->path, fl, 0666));
    } else { /* the same file in a new mode, opened before the old fd goes */
        char self[32];
        snprintf(self, sizeof self, "/proc/self/fd/%d", f->fd);
        fd = async_await(async_open(self, fl & ~(O_CREAT | O_EXCL | O_TRUNC), 0666));
        int e = errno;
        (void)async_await(close_fd(f));
        errno = e;
    }
    if (fd < 0 || seek_append((int)fd, fl) < 0) {
        int e = errno;
        if (fd >= 0) close((int)fd);
        errno = e;
        return -1; /* the stream stays, closed: async_fclose frees it */
    }
    file_attach(f, (int)fd, rd, wr);
    return (intptr_t)f;
}

async_future_t *async_freopen(const char *path, const char *mode, async_file_t *f) {
    bool rd, wr;
    int fl = parse_mode(mode, 6, &rd, &wr);
    if (!f || fl < 0) return async__future_failed(EINVAL);
    if (!claim(f)) return async__future_failed(EBUSY);
    if (!path && f->fd < 0) {
        unclaim(f);
        return async__future_failed(EBADF);
    }
    call_t *c = call_new(f);
    if (!c) return NULL;
    c->oflags = fl;
    c->rd = rd;
    c->wr = wr;
    if (path && !(c->path = strdup(path))) {
        call_free(c);
        errno = ENOMEM;
        return NULL;
    }
    return call_spawn(freopen_task, c);
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
    if (!f || f->fd < 0) {
        errno = EBADF;
        return -1;
    }
    return f->fd;
}
