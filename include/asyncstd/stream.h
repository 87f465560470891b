/** \file
 * Buffered streams shaped like stdio's `FILE`, over any fd: async_fopen(),
 * async_fgets(), async_fprintf(), ... Included by fs.h. */
#ifndef ASYNCSTD_STREAM_H
#define ASYNCSTD_STREAM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "common.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * \defgroup stream Buffered streams
 * stdio's buffered streams, each call returning a future, over any fd.
 *
 * A stream's reads and writes go through async_read() and async_write(), so
 * it serves line protocols on sockets and pipes as well as files, and a
 * slow pipe or terminal suspends the calling task, never its worker. Each
 * call has the arguments and the result of its stdio twin; results and
 * `errno`, file contents and positions are tested against glibc's for the
 * same sequence of calls (tests/test_fs_stream_glibc.c).
 *
 * **Cost.** A call the buffers can serve (a line already read ahead, a
 * record that fits in the output buffer) is done on the calling thread and
 * returns a settled future: no allocation, no task switch. A call that must
 * wait for its fd runs in a task of its own and returns that task's future.
 *
 * **One call at a time.** A second call on a stream while one is pending
 * fails with EBUSY (stdio would make it wait on the stream's lock).
 *
 * **Cancellation.** Cancelling a read loses no data: a line is copied into
 * the caller's buffer only when it is whole, and bytes already read stay in
 * the stream for the next call. A cancelled write keeps what was not written
 * in the buffer. A cancelled call does not set the error indicator.
 *
 * **Plain functions.** The calls that never wait in glibc are plain
 * functions here too: async_fdopen(), async_ungetc(), async_ftell(),
 * async_ftello(), async_setvbuf(), async_feof(), async_ferror(),
 * async_clearerr(), async_fileno() (async_ftell() asks the kernel for the
 * fd's offset, which does not wait; pending output is counted, not written,
 * as glibc counts it).
 *
 * All functions may be called from a task or from any plain thread.
 * @{
 */

/**
 * A buffered stream over any fd, shaped like stdio's `FILE`. A read from a
 * stream not open for reading, or a write to one not open for writing,
 * fails with EBADF and sets the error indicator (async_ferror()), as stdio
 * does.
 */
typedef struct async_file async_file_t;

/* ---- opening ------------------------------------------------------------ */

/**
 * Async equivalent of fopen(3). Await it with async_await_ptr().
 *
 * The mode is read as glibc reads it: "r", "w" or "a", then up to six more
 * letters, of which "+" (read and write), "e" (`O_CLOEXEC`) and "x"
 * (`O_EXCL`) count and the rest ("b", "t", ...) are skipped, so "rt+" and
 * "r+b" open for reading and writing. As with glibc, a stream opened "a"
 * starts at the end of the file (where its writes go anyway), one opened
 * "a+" at the start (where its reads begin).
 *
 * \param path  the file; copied.
 * \param mode  the mode, as above; copied.
 * \return a future whose pointer value is the stream, or NULL with EINVAL
 *         (bad mode), open(2)'s errno, ENOMEM, ECANCELED.
 */
ASYNC_EXTERN async_future_t *async_fopen(const char *path, const char *mode) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fdopen(3): a stream over an open fd of any kind (a
 * file, a pipe, a socket, a terminal), which then belongs to the stream
 * (async_fclose() closes it). Nothing waits, so the result is direct.
 *
 * The mode is read as async_fopen() reads it, with up to four letters after
 * the first, as glibc's fdopen(3). "w" does not truncate; "a" adds
 * `O_APPEND` and, when the fd lacked it, moves to the end of the file, as
 * glibc does. Unlike glibc's, which ignores it, "e" sets `FD_CLOEXEC`, as
 * musl's and FreeBSD's fdopen(3) do. On a pipe or socket, async_ftell() and
 * async_fseek() fail with ESPIPE, as glibc's do.
 *
 * \param fd    the descriptor.
 * \param mode  the mode, as above.
 * \return the stream, or NULL with EINVAL (bad mode, checked first, or one
 *         the fd's access mode does not allow), EBADF (`fd` not open) or ENOMEM.
 */
ASYNC_EXTERN async_file_t *async_fdopen(int fd, const char *mode);

/**
 * Async equivalent of freopen(3): flushes the stream, closes its fd and
 * opens `path` with `mode` in its place; the stream's buffers, indicators
 * and position start afresh. Await it with async_await_ptr().
 *
 * With `path` NULL, the stream's own file is opened again in the new mode
 * (through /proc/self/fd, as glibc does) before the old fd is closed.
 * If the open fails, the stream is left closed, as glibc leaves it: every
 * later call but async_fclose() fails with EBADF, and async_fclose() frees it.
 *
 * \param path  the new file, or NULL; copied.
 * \param mode  as for async_fopen().
 * \param f     the stream.
 * \return a future whose pointer value is `f`, or NULL with open(2)'s
 *         errno, EINVAL (bad mode, `f` NULL), EBADF, EBUSY, ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_freopen(const char *path, const char *mode,
                                           async_file_t *f) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of tmpfile(3): a stream, open for reading and writing, on
 * a new file in /tmp that has no name (`O_TMPFILE`, or a name removed at
 * once where the file system lacks it) and is gone when closed. Await it
 * with async_await_ptr().
 *
 * \return a future whose pointer value is the stream, or NULL with open(2)'s
 *         errno, ENOMEM, ECANCELED.
 */
ASYNC_EXTERN async_future_t *async_tmpfile(void) ASYNC_WARN_UNUSED;

/**
 * The stream over fd 0, 1 or 2, made on first use (see async_stdin,
 * async_stdout, async_stderr). fd 0 is read, 1 and 2 written; fd 2 is
 * unbuffered and fd 1 line-buffered on a terminal, as in stdio.
 *
 * Unlike stdio's, async_stdout is not flushed at exit: call
 * `async_await(async_fflush(async_stdout))` before the runtime shuts down.
 * After async_fclose() of a standard stream, the next use makes a new one
 * over the same fd (NULL with EBADF if the fd was closed).
 *
 * \param fd  0, 1 or 2.
 * \return the stream, or NULL with EBADF (another fd, or one not open),
 *         EINVAL (its access mode forbids the direction) or ENOMEM.
 */
ASYNC_EXTERN async_file_t *async_stdstream(int fd);

/** The stream over standard input (fd 0): async_stdstream(0). */
#define async_stdin (async_stdstream(0))
/** The stream over standard output (fd 1): async_stdstream(1). */
#define async_stdout (async_stdstream(1))
/** The stream over standard error (fd 2), unbuffered: async_stdstream(2). */
#define async_stderr (async_stdstream(2))

/* ---- reading ------------------------------------------------------------ */

/**
 * Async equivalent of fgets(3). Await it with async_await_ptr().
 *
 * \param s     receives the line with its newline and a terminating NUL; must
 *              stay valid until the future settles.
 * \param size  size of `s` (at least 1; at most `size - 1` bytes are read,
 *              so with 1 nothing is read and `s` becomes "", as with glibc).
 * \param f     the stream.
 * \return a future whose pointer value is `s`, or NULL at end of file with
 *         nothing read (errno untouched; async_feof() then says 1), or NULL
 *         with a read error's errno, EINVAL (a NULL argument, or `size` < 1,
 *         for which glibc returns NULL with `errno` untouched), EBADF (not
 *         open for reading), EBUSY, ECANCELED.
 */
ASYNC_EXTERN async_future_t *async_fgets(char *s, int size, async_file_t *f) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of getdelim(3).
 *
 * \param lineptr  a malloc()ed buffer or NULL, grown with realloc() as needed;
 *                 must stay valid until the future settles.
 * \param n        its size, updated; must stay valid until the future settles.
 * \param delim    the byte that ends a record (converted to unsigned char).
 * \param f        the stream.
 * \return a future whose value is the record's length (delimiter included,
 *         NUL not), or -1 at end of file (errno untouched) or with EINVAL
 *         (NULL argument), ENOMEM, EBADF, EBUSY, ECANCELED or a read error.
 */
ASYNC_EXTERN async_future_t *async_getdelim(char **lineptr, size_t *n, int delim,
                                            async_file_t *f) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of getline(3): async_getdelim() with '\\n'.
 *
 * \param lineptr  as for async_getdelim().
 * \param n        as for async_getdelim().
 * \param f        the stream.
 * \return as async_getdelim().
 */
ASYNC_EXTERN async_future_t *async_getline(char **lineptr, size_t *n,
                                           async_file_t *f) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fgetc(3) (and getc(3)).
 *
 * \param f  the stream.
 * \return a future whose value is the byte as an unsigned char, or -1 (EOF)
 *         at end of file (errno untouched) or with a read error's errno,
 *         EINVAL (`f` NULL), EBADF, EBUSY, ECANCELED.
 */
ASYNC_EXTERN async_future_t *async_fgetc(async_file_t *f) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of ungetc(3): pushes `c` back, to be read next. A plain
 * function: it never waits. As glibc's, it clears the end-of-file indicator
 * and takes more than one byte; async_ftell() counts pushed-back bytes (and
 * fails with EINVAL when that would go before the start of the file).
 * async_fseek(), async_rewind() and async_fflush() drop them.
 *
 * \param c  the byte (converted to unsigned char); EOF pushes nothing.
 * \param f  the stream.
 * \return `c` as an unsigned char, or EOF: `c` was EOF or `f` NULL (errno
 *         untouched, as glibc), EBUSY (a call is pending), ENOMEM.
 */
ASYNC_EXTERN int async_ungetc(int c, async_file_t *f);

/**
 * Async equivalent of fread(3).
 *
 * \param ptr    where the items go; must stay valid until the future settles.
 * \param size   size of one item.
 * \param nmemb  number of items.
 * \param f      the stream.
 * \return a future whose value is the count of whole items read: fewer than
 *         `nmemb` at end of file or on error (check async_feof() /
 *         async_ferror(); the error's errno comes with a short count of 0
 *         as -1). Bytes of a partial item stay consumed, as with fread(3).
 */
ASYNC_EXTERN async_future_t *async_fread(void *ptr, size_t size, size_t nmemb,
                                         async_file_t *f) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fscanf(3), by reading one line and scanning it with
 * vsscanf(3): scanf itself is not written again. Unlike fscanf(3), one call
 * takes one whole line (what the format leaves of it is dropped), and a
 * format that would go on to the next line stops at the line's end.
 *
 * The arguments live only for this call, so the call itself waits for the
 * line (suspending the calling task, or blocking a plain thread) and returns
 * a settled future; cancelling the calling task stops the wait.
 *
 * \param f       the stream.
 * \param format  the scanf format.
 * \param ...     where the conversions go.
 * \return a future whose value is the count of conversions assigned, or -1
 *         (EOF) at end of file (errno untouched), or -1 with a read error's
 *         errno, EINVAL, EBADF, EBUSY, ENOMEM, ECANCELED.
 */
ASYNC_EXTERN async_future_t *async_fscanf(async_file_t *f, const char *format, ...)
    __attribute__((format(scanf, 2, 3))) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of vfscanf(3), as async_fscanf().
 *
 * \param f       the stream.
 * \param format  the scanf format.
 * \param ap      where the conversions go.
 * \return as async_fscanf().
 */
ASYNC_EXTERN async_future_t *async_vfscanf(async_file_t *f, const char *format,
                                           va_list ap) ASYNC_WARN_UNUSED;

/* ---- writing ------------------------------------------------------------ */

/**
 * Async equivalent of fwrite(3). Data is buffered; a full buffer (or a write
 * larger than the buffer) is written through to the fd.
 *
 * \param ptr    the items; must stay valid until the future settles.
 * \param size   size of one item.
 * \param nmemb  number of items.
 * \param f      the stream.
 * \return a future whose value is `nmemb`, or fewer on error; -1 with the
 *         write error's errno, EBADF (not open for writing) or EBUSY when
 *         nothing was written.
 */
ASYNC_EXTERN async_future_t *async_fwrite(const void *ptr, size_t size, size_t nmemb,
                                          async_file_t *f) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fputc(3) (and putc(3)).
 *
 * \param c  the byte (converted to unsigned char); copied.
 * \param f  the stream.
 * \return a future whose value is the byte as an unsigned char, or -1 (EOF)
 *         with a write error's errno, EINVAL (`f` NULL), EBADF, EBUSY.
 */
ASYNC_EXTERN async_future_t *async_fputc(int c, async_file_t *f) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fputs(3).
 *
 * \param s  the string (its NUL is not written); must stay valid until the future settles.
 * \param f  the stream.
 * \return a future with value 1 (glibc's), or -1 (EOF) with a write error's
 *         errno, EBADF, EINVAL (NULL argument) or EBUSY.
 */
ASYNC_EXTERN async_future_t *async_fputs(const char *s, async_file_t *f) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of puts(3): `s` and a newline to async_stdout.
 *
 * \param s  the string; must stay valid until the future settles.
 * \return a future whose value is the count of bytes written (glibc's
 *         result), or -1 (EOF) with a write error's errno, EINVAL, EBUSY,
 *         or async_stdstream()'s errno.
 */
ASYNC_EXTERN async_future_t *async_puts(const char *s) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fprintf(3). The text is formatted at once (so the
 * arguments need not outlive the call) and buffered.
 *
 * \param f       the stream.
 * \param format  the printf format.
 * \param ...     its arguments.
 * \return a future whose value is the count of bytes formatted, or -1 with
 *         a write error's errno, EBADF, EINVAL, ENOMEM, EOVERFLOW or EBUSY.
 */
ASYNC_EXTERN async_future_t *async_fprintf(async_file_t *f, const char *format, ...)
    __attribute__((format(printf, 2, 3))) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of vfprintf(3).
 *
 * \param f       the stream.
 * \param format  the printf format.
 * \param ap      its arguments.
 * \return as async_fprintf().
 */
ASYNC_EXTERN async_future_t *async_vfprintf(async_file_t *f, const char *format,
                                            va_list ap) ASYNC_WARN_UNUSED;

/* ---- flushing, positioning, buffering ----------------------------------- */

/**
 * Async equivalent of fflush(3): writes out buffered data. For a read
 * stream on a seekable fd, it drops the read-ahead and moves the fd's
 * position back to the stream's.
 *
 * \param f  the stream (NULL is EINVAL: unlike fflush(3), there is no list
 *           of all streams).
 * \return a future with value 0, or -1 with the write error's errno, EBADF,
 *         EINVAL or EBUSY.
 */
ASYNC_EXTERN async_future_t *async_fflush(async_file_t *f) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fseeko(3): writes out pending output, then moves the
 * fd's offset; read-ahead and pushed-back bytes are dropped and the
 * end-of-file indicator cleared. Without pending output nothing waits and
 * the future is settled at once.
 *
 * \param f       the stream.
 * \param offset  as for lseek(2); with SEEK_CUR, from the stream's position.
 * \param whence  SEEK_SET, SEEK_CUR or SEEK_END.
 * \return a future with value 0, or -1 with EINVAL (bad `whence`, a
 *         negative result, `f` NULL), ESPIPE (a pipe or socket), EBADF,
 *         EBUSY, or a write error's errno.
 */
ASYNC_EXTERN async_future_t *async_fseeko(async_file_t *f, off_t offset,
                                          int whence) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fseek(3): async_fseeko() with a long offset.
 *
 * \param f       the stream.
 * \param offset  as for async_fseeko().
 * \param whence  as for async_fseeko().
 * \return as async_fseeko().
 */
ASYNC_EXTERN async_future_t *async_fseek(async_file_t *f, long offset,
                                         int whence) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of rewind(3): async_fseeko() to the start, which also
 * clears the error indicator. rewind(3) returns nothing; here the future
 * says whether it worked.
 *
 * \param f  the stream.
 * \return as async_fseeko().
 */
ASYNC_EXTERN async_future_t *async_rewind(async_file_t *f) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of ftello(3). A plain function, as ftello never waits:
 * the fd's offset less the read-ahead plus the pending output (in append
 * mode, the end of the file plus the pending output, as glibc says).
 *
 * \param f  the stream.
 * \return the position, or -1 with ESPIPE (a pipe or socket, as glibc),
 *         EINVAL (pushed-back bytes before the start), EBADF (`f` NULL or
 *         closed), EBUSY (a call is pending).
 */
ASYNC_EXTERN off_t async_ftello(async_file_t *f);

/**
 * Async equivalent of ftell(3): async_ftello() as a long.
 *
 * \param f  the stream.
 * \return as async_ftello(), or -1 with EOVERFLOW when it does not fit.
 */
ASYNC_EXTERN long async_ftell(async_file_t *f);

/**
 * Async equivalent of setvbuf(3): the buffering of output. `_IOFBF` writes
 * when the buffer is full, `_IOLBF` also after each call whose data holds a
 * newline, `_IONBF` before each call returns. A plain function.
 *
 * The stream always keeps buffers of its own: `buf` is ignored, and `size`
 * (when not 0) becomes the buffer size if no read or write has happened
 * yet. Input is read ahead in every mode. Unlike C, which allows it only
 * before the first operation, the mode may change at any time, as glibc
 * allows.
 *
 * \param f     the stream.
 * \param buf   ignored.
 * \param mode  `_IOFBF`, `_IOLBF` or `_IONBF`.
 * \param size  the buffer size, or 0 to keep it.
 * \return 0, or -1 for a bad mode (errno untouched, as glibc), EBADF (`f`
 *         NULL), EBUSY.
 */
ASYNC_EXTERN int async_setvbuf(async_file_t *f, char *buf, int mode, size_t size);

/**
 * Async equivalent of fclose(3): flushes, closes the fd and frees the
 * stream, which is gone even when the future reports an error. With no
 * pending output, closing needs no memory of its own, so the fd is closed
 * even when memory has run out; with pending output and no memory for the
 * task that writes it, the output is lost, the fd closed and the result
 * NULL (ENOMEM).
 *
 * \param f  the stream (consumed); must have no pending operation.
 * \return a future with value 0, or -1 with the flush's or close's errno, or
 *         EINVAL (`f` NULL) or EBUSY (an operation is pending; nothing is freed).
 */
ASYNC_EXTERN async_future_t *async_fclose(async_file_t *f) ASYNC_WARN_UNUSED;

/* ---- indicators --------------------------------------------------------- */

/**
 * Async equivalent of feof(3).
 *
 * \param f  the stream.
 * \return nonzero once a read has met the end of the file, 0 otherwise (and for NULL).
 */
ASYNC_EXTERN int async_feof(async_file_t *f);

/**
 * Async equivalent of ferror(3).
 *
 * \param f  the stream.
 * \return nonzero once a read or write has failed (also one the stream's
 *         mode forbids), 0 otherwise (and for NULL).
 */
ASYNC_EXTERN int async_ferror(async_file_t *f);

/**
 * Async equivalent of clearerr(3): resets the end-of-file and error flags.
 *
 * \param f  the stream; NULL is ignored.
 */
ASYNC_EXTERN void async_clearerr(async_file_t *f);

/**
 * Async equivalent of fileno(3).
 *
 * \param f  the stream.
 * \return its fd, or -1 with EBADF (`f` NULL, or closed by a failed async_freopen()).
 */
ASYNC_EXTERN int async_fileno(async_file_t *f);

/** @} */

#ifdef __cplusplus
}
#endif
#endif
