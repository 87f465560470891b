/** \file
 * Files and directories: the POSIX file API returning futures, and
 * whole-file helpers. Directory streams and the tree walk are in dir.h, the
 * stdio-shaped buffered streams in stream.h; this header includes both. */
#ifndef ASYNCSTD_FS_H
#define ASYNCSTD_FS_H

#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common.h"
#include "dir.h"
#include "future.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Declared by <sys/stat.h> and <time.h> under _GNU_SOURCE or POSIX 2008;
 * named here so that the header stands alone in strict ISO C. */
struct statx;
struct timespec;

/**
 * \defgroup fs Files and directories
 * The POSIX file surface, each call returning a future.
 *
 * Every function here takes the arguments of the libc function it mirrors
 * and returns a future whose value, awaited with async_await() (or
 * async_await_ptr() for pointer results), is what the libc function returns,
 * with `errno` as the libc function sets it for the same call.
 *
 * **Where the work runs.** Path and metadata calls (open, stat, rename, ...)
 * and reads and writes of regular files that would block run on the
 * blocking-offload pool, on the threads it keeps for file operations, so
 * user jobs from async_spawn_blocking() never starve them (see
 * docs/fs.md). A read or write of a regular file first tries
 * `preadv2()`/`pwritev2()` with `RWF_NOWAIT` on the calling thread: data
 * already in the page cache costs one system call and no thread hop. Reads
 * and writes of pipes, FIFOs, sockets and terminals wait for readiness on a
 * worker's loop instead, so they never hold a pool thread.
 *
 * **Arguments.** Path strings are copied: the caller may free or reuse them
 * as soon as the call returns. Buffers (and every other pointer the call
 * writes through: `struct stat *`, `off_t *`, `char *template`, ...) must
 * stay valid until the future settles; after async_cancel(), await the
 * future before reusing them. A NULL path or a NULL result pointer gives
 * EFAULT, as the kernel does, after any error the kernel would report
 * first (a missing file is ENOENT, a bad fd EBADF).
 *
 * **Cancellation.** Cancelling an operation still queued for the pool
 * settles it with ECANCELED and it never runs; one already running on a
 * pool thread runs to its end and reports its real result. A read or
 * write waiting for readiness is cancelled at once. The long helpers
 * (tree removal, copies, walks) stop between steps.
 *
 * All functions may be called from a task or from any plain thread.
 * @{
 */

/* ---- open and close ------------------------------------------------------ */

/**
 * Async equivalent of open(2).
 *
 * A name whose path is in the kernel's dentry cache, naming a regular file
 * or a directory on a local disk filesystem or tmpfs, is opened on the
 * calling thread and the future is settled when it is returned; anything
 * else (a name the kernel would have to read from the disk or ask a server
 * for, `O_CREAT`, `O_TRUNC`, `O_TMPFILE`, a FIFO, a device, a file in /proc
 * or on NFS or FUSE) is opened on the pool, as open(2) would open it. One deviation, for a name
 * replaced between two opens: a name this thread opened inline before is opened once with
 * `O_NONBLOCK` and checked after, so if it has become a FIFO or a device since, that FIFO or device
 * is opened and closed once, without waiting, before the pool opens it as asked.
 *
 * \param path   the file; copied.
 * \param flags  as for open(2); `O_CLOEXEC` is not added for you.
 * \param ...    the `mode_t` mode, read when `flags` has `O_CREAT` or `O_TMPFILE`.
 * \return a future whose value is the new fd, or -1 with open(2)'s errno
 *         (ENOENT, EACCES, EEXIST, EISDIR, ENOTDIR, ELOOP, EMFILE, EFAULT
 *         for a NULL path, ...).
 *
 * \code
 * int fd = async_await(async_open("data.txt", O_RDONLY | O_CLOEXEC));
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_open(const char *path, int flags, ...) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of openat(2). Cached names are opened inline, as for
 * async_open().
 *
 * \param dirfd  the directory relative paths start from, or `AT_FDCWD`.
 * \param path   the file; copied.
 * \param flags  as for openat(2).
 * \param ...    the `mode_t` mode, read when `flags` has `O_CREAT` or `O_TMPFILE`.
 * \return a future whose value is the new fd, or -1 with openat(2)'s errno
 *         (EBADF for a bad `dirfd` with a relative path, ENOTDIR, ...).
 */
ASYNC_EXTERN async_future_t *async_openat(int dirfd, const char *path, int flags,
                                          ...) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of close(2).
 *
 * Operations of other tasks waiting for readiness on `fd` are woken first
 * and fail with EBADF, so closing never leaves a task waiting forever.
 *
 * Runs on the calling thread, except for a regular file on a filesystem
 * not known to be local (NFS, CIFS, FUSE...), whose close(2) may wait for
 * the server to take dirty pages or a flush: that one runs on the pool,
 * which learns whether the filesystem is local for the next close.
 * A close on the pool that is cancelled still closes the fd.
 *
 * As with close(2) on Linux, the fd is released even when the result is an
 * error: do not close it again, as its number may already be another
 * file's. The one exception is ENOMEM (a NULL future): then nothing was
 * done, the fd is still open and the call may be repeated. Closing keeps a
 * spare of the little memory it needs, so ENOMEM takes several closes at
 * once with memory exhausted.
 *
 * \param fd  the descriptor.
 * \return a future with value 0, or -1 with EBADF (not open), EINTR or EIO
 *         (the fd is released all the same), or ENOMEM (nothing was done).
 */
ASYNC_EXTERN async_future_t *async_close(int fd) ASYNC_WARN_UNUSED;

/* ---- read and write ------------------------------------------------------ */

/**
 * Async equivalent of read(2), for any kind of fd.
 *
 * Regular files and block devices: data in the page cache is read at once
 * on the calling thread; otherwise the read runs on the pool. Pipes, FIFOs,
 * sockets, terminals and other character devices: the call waits for the fd
 * to become readable on a worker's loop, then reads; whether the fd has
 * `O_NONBLOCK` makes no difference (the call waits rather than failing with
 * EAGAIN). As with read(2), fewer bytes than asked for may come back.
 *
 * One deviation, for a `count` of at most `SSIZE_MAX` that runs past the end
 * of the address space: it is taken as readv(2) takes such a buffer, so the
 * bytes that fit are read, where read(2) refuses the whole call with EFAULT
 * (checking the range as the kernel does would cost a system call on every
 * read; a larger `count` gives read(2)'s EFAULT). The same holds for
 * async_write(), async_pread() and async_pwrite().
 *
 * \param fd     the descriptor.
 * \param buf    where the data goes; must stay valid until the future settles.
 * \param count  most bytes to read.
 * \return a future whose value is the count read (0 at end of file), or -1
 *         with read(2)'s errno: EBADF, EISDIR, EFAULT (bad `buf`), EINVAL,
 *         EIO, ECONNRESET, ECANCELED (cancelled while waiting).
 */
ASYNC_EXTERN async_future_t *async_read(int fd, void *buf, size_t count) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of write(2), for any kind of fd.
 *
 * Routes as async_read(). A pipe may take fewer bytes than offered: loop,
 * or use async_write_all(). A socket takes all of them, waiting for room as
 * often as needed, as write(2) does on a blocking stream socket and as
 * async_send() does (an error after some bytes gives their count, and so
 * does a cancellation: the future settles with the count, not ECANCELED;
 * async_writev() does the same). Writing to a socket whose peer
 * has gone gives EPIPE without raising SIGPIPE; to a pipe whose reader has
 * gone, EPIPE and SIGPIPE, as write(2) gives.
 *
 * \param fd     the descriptor.
 * \param buf    the data; must stay valid until the future settles.
 * \param count  bytes to write.
 * \return a future whose value is the count written, or -1 with write(2)'s
 *         errno: EBADF, EFAULT, EFBIG, ENOSPC, EPIPE, EIO, ECANCELED, ...
 */
ASYNC_EXTERN async_future_t *async_write(int fd, const void *buf, size_t count) ASYNC_WARN_UNUSED;

/**
 * Writes all `count` bytes, looping over partial writes as a careful
 * write(2) caller does.
 *
 * \param fd     the descriptor.
 * \param buf    the data; must stay valid until the future settles.
 * \param count  bytes to write.
 * \return a future whose value is `count`, or -1 with the errno of the
 *         write that failed (the bytes before it were written). When it is
 *         cancelled after some bytes went out, the value is the count written.
 */
ASYNC_EXTERN async_future_t *async_write_all(int fd, const void *buf,
                                             size_t count) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pread(2).
 *
 * \param fd      the descriptor (a seekable one).
 * \param buf     where the data goes; must stay valid until the future settles.
 * \param count   most bytes to read.
 * \param offset  the file offset to read at; the file position is unchanged.
 * \return a future whose value is the count read (0 at or past the end), or
 *         -1 with pread(2)'s errno: EBADF, ESPIPE (pipe or socket), EINVAL
 *         (negative offset), EISDIR, EFAULT, EIO.
 */
ASYNC_EXTERN async_future_t *async_pread(int fd, void *buf, size_t count,
                                         off_t offset) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pwrite(2).
 *
 * \param fd      the descriptor (a seekable one).
 * \param buf     the data; must stay valid until the future settles.
 * \param count   bytes to write.
 * \param offset  the file offset to write at.
 * \return a future whose value is the count written, or -1 with pwrite(2)'s
 *         errno: EBADF, ESPIPE, EINVAL, EFAULT, EFBIG, ENOSPC, EIO.
 */
ASYNC_EXTERN async_future_t *async_pwrite(int fd, const void *buf, size_t count,
                                          off_t offset) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of readv(2), for any kind of fd (routed as async_read()).
 *
 * \param fd      the descriptor.
 * \param iov     the buffers; the array and the buffers must stay valid until
 *                the future settles.
 * \param iovcnt  number of entries (0 to `IOV_MAX`).
 * \return a future whose value is the count read, or -1 with readv(2)'s
 *         errno (EINVAL for a negative or too large `iovcnt`, EFAULT, ...).
 */
ASYNC_EXTERN async_future_t *async_readv(int fd, const struct iovec *iov,
                                         int iovcnt) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of writev(2), for any kind of fd (routed as async_write()).
 *
 * On a socket it writes every byte of every buffer, in order, waiting for
 * room as often as needed, as writev(2) does on a blocking stream socket:
 * an error after some bytes, or a cancellation after some bytes, gives
 * their count (the error comes again on the next call). A pipe may take
 * fewer bytes than offered, as writev(2) on a pipe may.
 *
 * \param fd      the descriptor.
 * \param iov     the buffers; the array and the buffers must stay valid until
 *                the future settles.
 * \param iovcnt  number of entries (0 to `IOV_MAX`).
 * \return a future whose value is the count written, or -1 with writev(2)'s
 *         errno (EINVAL for a negative or too large `iovcnt`, EFAULT, EPIPE,
 *         ECANCELED when cancelled before any byte went out, ...).
 */
ASYNC_EXTERN async_future_t *async_writev(int fd, const struct iovec *iov,
                                          int iovcnt) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of preadv(2).
 *
 * \param fd      the descriptor (a seekable one).
 * \param iov     the buffers; must stay valid until the future settles.
 * \param iovcnt  number of entries.
 * \param offset  the file offset to read at.
 * \return a future whose value is the count read, or -1 with preadv(2)'s errno.
 */
ASYNC_EXTERN async_future_t *async_preadv(int fd, const struct iovec *iov, int iovcnt,
                                          off_t offset) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pwritev(2).
 *
 * \param fd      the descriptor (a seekable one).
 * \param iov     the buffers; must stay valid until the future settles.
 * \param iovcnt  number of entries.
 * \param offset  the file offset to write at.
 * \return a future whose value is the count written, or -1 with pwritev(2)'s errno.
 */
ASYNC_EXTERN async_future_t *async_pwritev(int fd, const struct iovec *iov, int iovcnt,
                                           off_t offset) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of lseek(2).
 *
 * lseek never waits for the disk, so it runs on the calling thread and the
 * future is settled when returned.
 *
 * \param fd      the descriptor.
 * \param offset  the offset, interpreted by `whence`.
 * \param whence  `SEEK_SET`, `SEEK_CUR`, `SEEK_END`, `SEEK_DATA` or `SEEK_HOLE`.
 * \return a future whose value is the new offset, or -1 with EBADF, EINVAL,
 *         ESPIPE (pipe, socket), ENXIO or EOVERFLOW.
 */
ASYNC_EXTERN async_future_t *async_lseek(int fd, off_t offset, int whence) ASYNC_WARN_UNUSED;

/* ---- syncing and sizing -------------------------------------------------- */

/**
 * Async equivalent of fsync(2).
 *
 * \param fd  the descriptor.
 * \return a future with value 0, or -1 with EBADF, EINVAL (a pipe or socket), EIO, ENOSPC.
 */
ASYNC_EXTERN async_future_t *async_fsync(int fd) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fdatasync(2).
 *
 * \param fd  the descriptor.
 * \return a future with value 0, or -1 with fdatasync(2)'s errno (as async_fsync()).
 */
ASYNC_EXTERN async_future_t *async_fdatasync(int fd) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of ftruncate(2).
 *
 * \param fd      the descriptor, open for writing.
 * \param length  the new size.
 * \return a future with value 0, or -1 with EBADF, EINVAL (negative length,
 *         or not a regular file open for writing), EFBIG, EIO.
 */
ASYNC_EXTERN async_future_t *async_ftruncate(int fd, off_t length) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fallocate(2) (Linux).
 *
 * \param fd      the descriptor, open for writing.
 * \param mode    0, or `FALLOC_FL_*` flags.
 * \param offset  start of the range.
 * \param len     length of the range (positive).
 * \return a future with value 0, or -1 with EBADF, EINVAL, ENOSPC,
 *         EOPNOTSUPP (the file system lacks the mode), ESPIPE, ENODEV.
 */
ASYNC_EXTERN async_future_t *async_fallocate(int fd, int mode, off_t offset,
                                             off_t len) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of truncate(2).
 *
 * \param path    the file; copied.
 * \param length  the new size.
 * \return a future with value 0, or -1 with ENOENT, EISDIR, EACCES, ETXTBSY,
 *         EINVAL (negative length), EFBIG, EROFS, EFAULT (NULL `path`).
 */
ASYNC_EXTERN async_future_t *async_truncate(const char *path, off_t length) ASYNC_WARN_UNUSED;

/* <fcntl.h> is not needed to declare a pointer to its struct flock. */
struct flock;

/**
 * Async equivalent of flock(2): a whole-file lock on the open file
 * description behind `fd`.
 *
 * A lock another holder has is waited for without holding a thread: the
 * lock is tried with `LOCK_NB` at once, then by a task at intervals growing
 * from 1 ms to 20 ms. Cancelling the wait (async_cancel(), a timeout, a
 * cancelled task) stops it between tries, with the lock not taken. Unlike a
 * blocking flock(2), the waiter is not queued in the kernel: it may take the
 * lock up to 20 ms after it is free, and a stream of blocking lockers can
 * pass it.
 *
 * \param fd         the file.
 * \param operation  `LOCK_SH`, `LOCK_EX` or `LOCK_UN`, optionally with
 *                   `LOCK_NB` (then nothing waits).
 * \return a future with value 0, or -1 with `errno` EWOULDBLOCK (with
 *         `LOCK_NB`, held elsewhere), EBADF, EINVAL (bad `operation`), EINTR,
 *         ENOLCK or ECANCELED. NULL with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_flock(int fd, int operation) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of lockf(3): a POSIX record lock on `len` bytes from the
 * current offset (to the end of the file for 0, before the offset for a
 * negative `len`).
 *
 * `F_LOCK` waits as async_flock() does (tries at intervals up to 20 ms,
 * cancellable, not queued in the kernel, so the kernel's deadlock detection
 * does not see the wait either); `F_TLOCK`, `F_ULOCK` and `F_TEST` never
 * wait. The offset is read when called.
 *
 * \param fd   the file, open for writing.
 * \param cmd  `F_LOCK`, `F_TLOCK`, `F_ULOCK` or `F_TEST`.
 * \param len  the length of the section.
 * \return a future with value 0, or -1 with `errno` as lockf(3) gives it:
 *         EAGAIN or EACCES (`F_TLOCK`, `F_TEST`: held elsewhere), EBADF (not
 *         open for writing), EINVAL (bad `cmd`, a section before offset 0),
 *         ENOLCK, or ECANCELED. NULL with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_lockf(int fd, int cmd, off_t len) ASYNC_WARN_UNUSED;

/**
 * fcntl(2)'s record-lock commands as a future: `F_SETLKW` and
 * `F_OFD_SETLKW` wait as async_flock() does (tries at intervals up to 20 ms,
 * cancellable; no EDEADLK, since the kernel does not see the wait); `F_SETLK`,
 * `F_GETLK`, `F_OFD_SETLK` and `F_OFD_GETLK` answer at once.
 *
 * \param fd    the file.
 * \param cmd   one of the commands above.
 * \param lock  the lock; read when called for the set commands (copied),
 *              written by the get commands before the future settles.
 * \return a future with value 0, or -1 with `errno` EAGAIN or EACCES
 *         (`F_SETLK`: held elsewhere), EBADF, EINVAL (another `cmd`, a bad
 *         `l_type` or range), EFAULT (`lock` NULL), ENOLCK or ECANCELED.
 *         NULL with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_fcntl_lock(int fd, int cmd,
                                              struct flock *lock) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of splice(2): moves up to `len` bytes between two fds of
 * which one is a pipe, without copying through user memory.
 *
 * A side that is a pipe never holds a thread: the call tries with
 * `SPLICE_F_NONBLOCK` and, while the input pipe is empty or the output pipe
 * full, waits for it on the worker's event loop. A side that is a file is
 * read or written on the blocking pool. A socket side that is not
 * `O_NONBLOCK` (the kernel reads TCP sockets and writes all sockets by that
 * flag alone, whatever `SPLICE_F_NONBLOCK`) is first waited for on the event
 * loop, then spliced on the pool. With `SPLICE_F_NONBLOCK` in `flags`
 * nothing waits: EAGAIN is the result, as from splice(2), also for a
 * blocking TCP socket with nothing to read, where splice(2) would block.
 *
 * \param fd_in    the source.
 * \param off_in   the source offset (updated), or NULL; NULL for a pipe.
 *                 Must stay valid until the future settles.
 * \param fd_out   the destination.
 * \param off_out  the destination offset (updated), or NULL; NULL for a pipe.
 * \param len      most bytes to move.
 * \param flags    `SPLICE_F_MOVE`, `SPLICE_F_MORE`, `SPLICE_F_NONBLOCK`.
 * \return a future with the count moved (0: the input's end), or -1 with
 *         `errno` as splice(2) gives it (EBADF, EINVAL, ESPIPE, EAGAIN with
 *         `SPLICE_F_NONBLOCK`, ...) or ECANCELED. NULL with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_splice(int fd_in, off_t *off_in, int fd_out, off_t *off_out,
                                          size_t len, unsigned int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of tee(2): copies up to `len` bytes from one pipe to
 * another without consuming them, waiting as async_splice() does while the
 * input is empty or the output full.
 *
 * \param fd_in   the source pipe.
 * \param fd_out  the destination pipe.
 * \param len     most bytes to copy.
 * \param flags   as for async_splice().
 * \return a future with the count copied (0: the input's end), or -1 with
 *         `errno` as tee(2) gives it (EINVAL for a non-pipe, EAGAIN with
 *         `SPLICE_F_NONBLOCK`, ...) or ECANCELED. NULL with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_tee(int fd_in, int fd_out, size_t len,
                                       unsigned int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of posix_fadvise(2).
 *
 * Unlike posix_fadvise(), which returns its error number and leaves `errno`
 * alone, this follows the library's convention: the value is 0, or -1 with
 * the error in `errno`.
 *
 * \param fd      the descriptor.
 * \param offset  start of the range.
 * \param len     length of the range, 0 for up to the end of the file.
 * \param advice  `POSIX_FADV_NORMAL`, `_SEQUENTIAL`, `_RANDOM`, `_NOREUSE`,
 *                `_WILLNEED` or `_DONTNEED`.
 * \return a future with value 0, or -1 with EBADF, EINVAL (bad `advice` or
 *         negative `len`), ESPIPE (a pipe or FIFO).
 */
ASYNC_EXTERN async_future_t *async_posix_fadvise(int fd, off_t offset, off_t len,
                                                 int advice) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of syncfs(2) (Linux): flushes the file system holding `fd`.
 *
 * \param fd  any descriptor on the file system.
 * \return a future with value 0, or -1 with EBADF, EIO, ENOSPC.
 */
ASYNC_EXTERN async_future_t *async_syncfs(int fd) ASYNC_WARN_UNUSED;

/* ---- metadata ------------------------------------------------------------ */

/**
 * Async equivalent of stat(2).
 *
 * \param path     the file (symbolic links are followed); copied.
 * \param statbuf  receives the status; must stay valid until the future settles.
 * \return a future with value 0, or -1 with ENOENT, ENOTDIR, EACCES, ELOOP,
 *         ENAMETOOLONG, EFAULT (NULL `path` or `statbuf`).
 */
ASYNC_EXTERN async_future_t *async_stat(const char *path, struct stat *statbuf) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fstat(2).
 *
 * On a local filesystem (ext4, xfs, btrfs, tmpfs, proc, pipes, sockets...)
 * the status is read on the calling thread, from the in-memory inode, and
 * the future is settled when it is returned; on a filesystem whose fstat(2)
 * may ask a server, or one met for the first time, the call runs on the pool.
 *
 * \param fd       the descriptor.
 * \param statbuf  receives the status; must stay valid until the future settles.
 * \return a future with value 0, or -1 with EBADF or EFAULT.
 */
ASYNC_EXTERN async_future_t *async_fstat(int fd, struct stat *statbuf) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of lstat(2): a symbolic link itself is described.
 *
 * \param path     the file; copied.
 * \param statbuf  receives the status; must stay valid until the future settles.
 * \return as async_stat().
 */
ASYNC_EXTERN async_future_t *async_lstat(const char *path, struct stat *statbuf) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fstatat(2).
 *
 * \param dirfd    the directory relative paths start from, or `AT_FDCWD`.
 * \param path     the file; copied. NULL with `AT_EMPTY_PATH` is taken as "",
 *                 `dirfd` itself, as Linux 6.11 and later take it (older
 *                 kernels said EFAULT).
 * \param statbuf  receives the status; must stay valid until the future settles.
 * \param flags    0, `AT_SYMLINK_NOFOLLOW`, `AT_EMPTY_PATH`, `AT_NO_AUTOMOUNT`.
 * \return as async_stat(), and EBADF (bad `dirfd`), EINVAL (bad `flags`).
 */
ASYNC_EXTERN async_future_t *async_fstatat(int dirfd, const char *path, struct stat *statbuf,
                                           int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of statx(2) (Linux). `struct statx` and the `STATX_*`
 * masks come from <sys/stat.h> with `_GNU_SOURCE`.
 *
 * \param dirfd     the directory relative paths start from, or `AT_FDCWD`.
 * \param path      the file (with `AT_EMPTY_PATH`, "" for `dirfd` itself); copied.
 *                  NULL with `AT_EMPTY_PATH` is taken as "", as Linux 6.11 and
 *                  later take it (older kernels said EFAULT).
 * \param flags     `AT_SYMLINK_NOFOLLOW`, `AT_EMPTY_PATH`, `AT_NO_AUTOMOUNT`,
 *                  `AT_STATX_SYNC_AS_STAT`, ...
 * \param mask      the `STATX_*` fields wanted.
 * \param statxbuf  receives the status; must stay valid until the future settles.
 * \return a future with value 0, or -1 with ENOENT, ENOTDIR, EACCES, ELOOP,
 *         EBADF (bad `dirfd`), EINVAL (bad `flags` or `mask`), EFAULT (NULL
 *         `path` or `statxbuf`).
 */
ASYNC_EXTERN async_future_t *async_statx(int dirfd, const char *path, int flags, unsigned int mask,
                                         struct statx *statxbuf) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of access(2).
 *
 * \param path  the file; copied.
 * \param mode  `F_OK`, or a mask of `R_OK`, `W_OK`, `X_OK`.
 * \return a future with value 0, or -1 with EACCES, ENOENT, ENOTDIR, EROFS,
 *         EINVAL (bad `mode`), EFAULT.
 */
ASYNC_EXTERN async_future_t *async_access(const char *path, int mode) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of faccessat(2), with glibc's flags.
 *
 * \param dirfd  the directory relative paths start from, or `AT_FDCWD`.
 * \param path   the file; copied.
 * \param mode   `F_OK`, or a mask of `R_OK`, `W_OK`, `X_OK`.
 * \param flags  0, `AT_EACCESS` (check with the effective ids), `AT_SYMLINK_NOFOLLOW`.
 * \return as async_access(), and EBADF (bad `dirfd`), EINVAL (bad `flags`).
 */
ASYNC_EXTERN async_future_t *async_faccessat(int dirfd, const char *path, int mode,
                                             int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of statvfs(3).
 *
 * \param path  any file on the file system; copied.
 * \param buf   receives the file system's statistics; must stay valid until
 *              the future settles.
 * \return a future with value 0, or -1 with ENOENT, ENOTDIR, EACCES, EFAULT, ...
 */
ASYNC_EXTERN async_future_t *async_statvfs(const char *path, struct statvfs *buf) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fstatvfs(3).
 *
 * \param fd   an open descriptor on the file system.
 * \param buf  receives the statistics; must stay valid until the future settles.
 * \return a future with value 0, or -1 with EBADF or EFAULT.
 */
ASYNC_EXTERN async_future_t *async_fstatvfs(int fd, struct statvfs *buf) ASYNC_WARN_UNUSED;

/* ---- names: create, remove, rename, link -------------------------------- */

/**
 * Async equivalent of mkdir(2).
 *
 * \param path  the new directory; copied.
 * \param mode  its permissions (less the umask).
 * \return a future with value 0, or -1 with EEXIST, ENOENT, ENOTDIR, EACCES, EFAULT, ...
 */
ASYNC_EXTERN async_future_t *async_mkdir(const char *path, mode_t mode) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of rmdir(2).
 *
 * \param path  the directory; copied.
 * \return a future with value 0, or -1 with ENOTEMPTY, ENOENT, ENOTDIR,
 *         EBUSY, EINVAL (path ends in "."), EACCES, EFAULT.
 */
ASYNC_EXTERN async_future_t *async_rmdir(const char *path) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of unlink(2).
 *
 * \param path  the name to remove; copied.
 * \return a future with value 0, or -1 with ENOENT, EISDIR, EACCES, EPERM, EFAULT.
 */
ASYNC_EXTERN async_future_t *async_unlink(const char *path) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of rename(2).
 *
 * \param oldpath  the existing name; copied.
 * \param newpath  the new name; copied.
 * \return a future with value 0, or -1 with ENOENT, EISDIR, ENOTDIR,
 *         ENOTEMPTY, EXDEV, EINVAL, EACCES, EFAULT.
 */
ASYNC_EXTERN async_future_t *async_rename(const char *oldpath,
                                          const char *newpath) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of link(2).
 *
 * \param oldpath  the existing file; copied.
 * \param newpath  the new name; copied.
 * \return a future with value 0, or -1 with EEXIST, ENOENT, EPERM
 *         (a directory), EXDEV, EACCES, EFAULT.
 */
ASYNC_EXTERN async_future_t *async_link(const char *oldpath, const char *newpath) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of symlink(2).
 *
 * \param target    what the link points to (need not exist); copied.
 * \param linkpath  the new link; copied.
 * \return a future with value 0, or -1 with EEXIST, ENOENT (`target`
 *         empty, or no parent directory), EACCES, EFAULT.
 */
ASYNC_EXTERN async_future_t *async_symlink(const char *target,
                                           const char *linkpath) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of readlink(2). As with readlink(2), the result is not
 * NUL-terminated and is cut at `bufsiz` bytes.
 *
 * \param path    the symbolic link; copied.
 * \param buf     receives the target; must stay valid until the future settles.
 * \param bufsiz  size of `buf` (positive).
 * \return a future whose value is the byte count placed in `buf`, or -1
 *         with EINVAL (not a link, or `bufsiz` 0), ENOENT, EACCES, EFAULT.
 */
ASYNC_EXTERN async_future_t *async_readlink(const char *path, char *buf,
                                            size_t bufsiz) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of realpath(3). Await it with async_await_ptr().
 *
 * \param path           the name to resolve; copied.
 * \param resolved_path  a buffer of `PATH_MAX` bytes that receives the result
 *                       (valid until the future settles), or NULL for a
 *                       malloc()ed result the caller frees.
 * \return a future whose pointer value is the canonical path, or NULL with
 *         ENOENT, ENOTDIR, EACCES, ELOOP, ENAMETOOLONG, EINVAL (NULL `path`).
 */
ASYNC_EXTERN async_future_t *async_realpath(const char *path,
                                            char *resolved_path) ASYNC_WARN_UNUSED;

/* ---- names relative to a directory (the *at calls) ---------------------- */

/**
 * Async equivalent of unlinkat(2).
 *
 * \param dirfd  the directory relative paths start from, or `AT_FDCWD`.
 * \param path   the name to remove; copied.
 * \param flags  0, or `AT_REMOVEDIR` to remove a directory as rmdir(2).
 * \return as async_unlink() (or async_rmdir() with `AT_REMOVEDIR`), and
 *         EBADF (bad `dirfd`), EINVAL (bad `flags`).
 */
ASYNC_EXTERN async_future_t *async_unlinkat(int dirfd, const char *path,
                                            int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of renameat(2).
 *
 * \param olddirfd  the directory `oldpath` starts from, or `AT_FDCWD`.
 * \param oldpath   the existing name; copied.
 * \param newdirfd  the directory `newpath` starts from, or `AT_FDCWD`.
 * \param newpath   the new name; copied.
 * \return as async_rename(), and EBADF (bad directory fd).
 */
ASYNC_EXTERN async_future_t *async_renameat(int olddirfd, const char *oldpath, int newdirfd,
                                            const char *newpath) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of renameat2(2) (Linux).
 *
 * \param olddirfd  the directory `oldpath` starts from, or `AT_FDCWD`.
 * \param oldpath   the existing name; copied.
 * \param newdirfd  the directory `newpath` starts from, or `AT_FDCWD`.
 * \param newpath   the new name; copied.
 * \param flags     0, `RENAME_NOREPLACE`, `RENAME_EXCHANGE` or `RENAME_WHITEOUT`.
 * \return as async_renameat(), and EEXIST (`RENAME_NOREPLACE` and `newpath`
 *         exists), ENOENT (`RENAME_EXCHANGE` and `newpath` missing), EINVAL
 *         (bad or unsupported `flags`).
 */
ASYNC_EXTERN async_future_t *async_renameat2(int olddirfd, const char *oldpath, int newdirfd,
                                             const char *newpath,
                                             unsigned int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of mkdirat(2).
 *
 * \param dirfd  the directory relative paths start from, or `AT_FDCWD`.
 * \param path   the new directory; copied.
 * \param mode   its permissions (less the umask).
 * \return as async_mkdir(), and EBADF (bad `dirfd`).
 */
ASYNC_EXTERN async_future_t *async_mkdirat(int dirfd, const char *path,
                                           mode_t mode) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of linkat(2).
 *
 * \param olddirfd  the directory `oldpath` starts from, or `AT_FDCWD`.
 * \param oldpath   the existing file; copied.
 * \param newdirfd  the directory `newpath` starts from, or `AT_FDCWD`.
 * \param newpath   the new name; copied.
 * \param flags     0, `AT_SYMLINK_FOLLOW`, `AT_EMPTY_PATH`.
 * \return as async_link(), and EBADF (bad directory fd), EINVAL (bad `flags`).
 */
ASYNC_EXTERN async_future_t *async_linkat(int olddirfd, const char *oldpath, int newdirfd,
                                          const char *newpath, int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of symlinkat(2).
 *
 * \param target    what the link points to (need not exist); copied.
 * \param newdirfd  the directory `linkpath` starts from, or `AT_FDCWD`.
 * \param linkpath  the new link; copied.
 * \return as async_symlink(), and EBADF (bad `newdirfd`).
 */
ASYNC_EXTERN async_future_t *async_symlinkat(const char *target, int newdirfd,
                                             const char *linkpath) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of readlinkat(2). As with readlinkat(2), the result is
 * not NUL-terminated and is cut at `bufsiz` bytes.
 *
 * \param dirfd   the directory relative paths start from, or `AT_FDCWD`.
 * \param path    the symbolic link; copied.
 * \param buf     receives the target; must stay valid until the future settles.
 * \param bufsiz  size of `buf` (positive).
 * \return as async_readlink(), and EBADF (bad `dirfd`).
 */
ASYNC_EXTERN async_future_t *async_readlinkat(int dirfd, const char *path, char *buf,
                                              size_t bufsiz) ASYNC_WARN_UNUSED;

/* ---- FIFOs and device nodes ------------------------------------------------ */

/**
 * Async equivalent of mkfifo(3).
 *
 * \param path  the new FIFO; copied.
 * \param mode  its permissions (less the umask).
 * \return a future with value 0, or -1 with EEXIST, ENOENT, ENOTDIR, EACCES,
 *         EROFS, EFAULT (NULL `path`).
 */
ASYNC_EXTERN async_future_t *async_mkfifo(const char *path, mode_t mode) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of mkfifoat(3).
 *
 * \param dirfd  the directory relative paths start from, or `AT_FDCWD`.
 * \param path   the new FIFO; copied.
 * \param mode   its permissions (less the umask).
 * \return as async_mkfifo(), and EBADF (bad `dirfd`).
 */
ASYNC_EXTERN async_future_t *async_mkfifoat(int dirfd, const char *path,
                                            mode_t mode) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of mknod(2).
 *
 * \param path  the new node; copied.
 * \param mode  its type (`S_IFREG`, `S_IFIFO`, `S_IFSOCK`, `S_IFCHR`, `S_IFBLK`)
 *              and permissions.
 * \param dev   the device number, for `S_IFCHR` and `S_IFBLK`.
 * \return a future with value 0, or -1 with EEXIST, ENOENT, EPERM (a device
 *         node without the privilege), EINVAL (bad type), EACCES, EFAULT.
 */
ASYNC_EXTERN async_future_t *async_mknod(const char *path, mode_t mode,
                                         dev_t dev) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of mknodat(2).
 *
 * \param dirfd  the directory relative paths start from, or `AT_FDCWD`.
 * \param path   the new node; copied.
 * \param mode   its type and permissions, as for async_mknod().
 * \param dev    the device number, for `S_IFCHR` and `S_IFBLK`.
 * \return as async_mknod(), and EBADF (bad `dirfd`).
 */
ASYNC_EXTERN async_future_t *async_mknodat(int dirfd, const char *path, mode_t mode,
                                           dev_t dev) ASYNC_WARN_UNUSED;

/* ---- permissions, owners and times -------------------------------------- */

/**
 * Async equivalent of chmod(2).
 *
 * \param path  the file; copied.
 * \param mode  the new permission bits.
 * \return a future with value 0, or -1 with EPERM, ENOENT, EACCES, EROFS, EFAULT.
 */
ASYNC_EXTERN async_future_t *async_chmod(const char *path, mode_t mode) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fchmod(2).
 *
 * \param fd    the descriptor.
 * \param mode  the new permission bits.
 * \return a future with value 0, or -1 with EBADF, EPERM, EROFS.
 */
ASYNC_EXTERN async_future_t *async_fchmod(int fd, mode_t mode) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of chown(2).
 *
 * \param path   the file (links followed); copied.
 * \param owner  the new owner, or (uid_t)-1 to keep it.
 * \param group  the new group, or (gid_t)-1 to keep it.
 * \return a future with value 0, or -1 with EPERM, ENOENT, EACCES, EROFS, EFAULT.
 */
ASYNC_EXTERN async_future_t *async_chown(const char *path, uid_t owner,
                                         gid_t group) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fchown(2).
 *
 * \param fd     the descriptor.
 * \param owner  the new owner, or (uid_t)-1 to keep it.
 * \param group  the new group, or (gid_t)-1 to keep it.
 * \return a future with value 0, or -1 with EBADF, EPERM, EROFS.
 */
ASYNC_EXTERN async_future_t *async_fchown(int fd, uid_t owner, gid_t group) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of lchown(2): a symbolic link itself changes owner.
 *
 * \param path   the file; copied.
 * \param owner  the new owner, or (uid_t)-1 to keep it.
 * \param group  the new group, or (gid_t)-1 to keep it.
 * \return as async_chown().
 */
ASYNC_EXTERN async_future_t *async_lchown(const char *path, uid_t owner,
                                          gid_t group) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of utimes(2).
 *
 * \param path   the file; copied.
 * \param times  access and modification times (copied), or NULL for now.
 * \return a future with value 0, or -1 with ENOENT, EACCES, EPERM, EINVAL
 *         (a microsecond field out of range), EFAULT.
 */
ASYNC_EXTERN async_future_t *async_utimes(const char *path,
                                          const struct timeval times[2]) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of futimes(3).
 *
 * \param fd     the descriptor.
 * \param times  access and modification times (copied), or NULL for now.
 * \return a future with value 0, or -1 with EBADF, EPERM, EINVAL.
 */
ASYNC_EXTERN async_future_t *async_futimes(int fd, const struct timeval times[2]) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fchmodat(2), with glibc's flags.
 *
 * \param dirfd  the directory relative paths start from, or `AT_FDCWD`.
 * \param path   the file; copied.
 * \param mode   the new permission bits.
 * \param flags  0 or `AT_SYMLINK_NOFOLLOW` (EOPNOTSUPP on a link, as in glibc).
 * \return as async_chmod(), and EBADF (bad `dirfd`), EINVAL (bad `flags`).
 */
ASYNC_EXTERN async_future_t *async_fchmodat(int dirfd, const char *path, mode_t mode,
                                            int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fchownat(2).
 *
 * \param dirfd  the directory relative paths start from, or `AT_FDCWD`.
 * \param path   the file; copied.
 * \param owner  the new owner, or (uid_t)-1 to keep it.
 * \param group  the new group, or (gid_t)-1 to keep it.
 * \param flags  0, `AT_SYMLINK_NOFOLLOW`, `AT_EMPTY_PATH`.
 * \return as async_chown(), and EBADF (bad `dirfd`), EINVAL (bad `flags`).
 */
ASYNC_EXTERN async_future_t *async_fchownat(int dirfd, const char *path, uid_t owner, gid_t group,
                                            int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of utimensat(2).
 *
 * \param dirfd  the directory relative paths start from, or `AT_FDCWD`.
 * \param path   the file; copied. NULL is EINVAL, as glibc's utimensat()
 *               makes it (use async_futimens() for a descriptor).
 * \param times  two entries, the access and modification times (copied;
 *               `UTIME_NOW` and `UTIME_OMIT` work), or NULL for now. A
 *               pointer rather than libc's `times[2]` (the same type in a
 *               prototype), so that strict ISO C, where `struct timespec`
 *               may be incomplete, still compiles the header.
 * \param flags  0 or `AT_SYMLINK_NOFOLLOW`.
 * \return a future with value 0, or -1 with ENOENT, EACCES, EPERM, EBADF
 *         (bad `dirfd`), EINVAL (a nanosecond field out of range, bad
 *         `flags`, NULL `path`).
 */
ASYNC_EXTERN async_future_t *async_utimensat(int dirfd, const char *path,
                                             const struct timespec *times,
                                             int flags) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of futimens(3).
 *
 * \param fd     the descriptor.
 * \param times  two entries, the access and modification times (copied), or
 *               NULL for now; a pointer as in async_utimensat().
 * \return a future with value 0, or -1 with EBADF, EPERM, EACCES, EINVAL.
 */
ASYNC_EXTERN async_future_t *async_futimens(int fd, const struct timespec *times) ASYNC_WARN_UNUSED;

/* ---- temporary files ------------------------------------------------------ */

/**
 * Async equivalent of mkstemp(3).
 *
 * \param template_  a name ending in "XXXXXX", rewritten in place with the
 *                   name chosen; must stay valid until the future settles.
 * \return a future whose value is the open fd (read-write, mode 0600), or -1
 *         with EINVAL (no "XXXXXX" suffix), EEXIST, ENOENT, EACCES, EFAULT.
 */
ASYNC_EXTERN async_future_t *async_mkstemp(char *template_) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of mkdtemp(3). Await it with async_await_ptr().
 *
 * \param template_  a name ending in "XXXXXX", rewritten in place; must stay
 *                   valid until the future settles.
 * \return a future whose pointer value is `template_`, or NULL with EINVAL,
 *         EEXIST, ENOENT, EACCES, EFAULT.
 */
ASYNC_EXTERN async_future_t *async_mkdtemp(char *template_) ASYNC_WARN_UNUSED;

/* ---- copying between descriptors ----------------------------------------- */

/**
 * Async equivalent of sendfile(2), answering as sendfile(2) to a blocking
 * `out_fd` would.
 *
 * To a socket or a pipe, the call waits for the reader and settles once all
 * `count` bytes are sent, `in_fd` ends, or an error comes: never with a
 * short count because a buffer was full. `O_NONBLOCK` on `out_fd` makes no
 * difference, as for async_write(): the sockets the library makes are
 * non-blocking and are served like blocking ones, and the call never fails
 * with EAGAIN nor changes the flag. While the reader is slow no pool thread
 * is held: only reads that may wait for the disk run on the pool, and the
 * wait for the reader is on a worker's loop.
 * Up to 16 KiB to a stream socket are first tried on the calling thread
 * (with MSG_DONTWAIT, whatever the socket's O_NONBLOCK): what is in the
 * page cache and what the socket takes at once is sent there (through a
 * buffer), and only the rest goes the ways below. A non-blocking socket and
 * a pipe get the data straight from the page cache (sendfile(2), splice(2)); a blocking socket,
 * which sendfile(2) cannot be told not to wait on, gets it through a buffer (one copy). A socket
 * whose peer has gone gives EPIPE without raising SIGPIPE, as every socket call of the library (see
 * net.h); a pipe whose reader has gone gives EPIPE and SIGPIPE, as write(2) does. Anything else (a
 * regular file `out_fd`, or a pipe fed from a pipe or socket) takes one sendfile(2) on the pool,
 * which then holds a pool thread while it waits.
 *
 * Cancelling stops the wait at once (a pool step already running finishes
 * first). Bytes already sent cannot be taken back: the value is then their
 * count, and `*offset` or the file position says where they ended, as
 * write(2) reports progress made before a signal; with nothing sent, -1 and
 * ECANCELED. An error after some bytes likewise gives their count.
 *
 * \param out_fd  the destination: a socket, a pipe or a file.
 * \param in_fd   the source: a regular file or block device (for a pipe
 *                `out_fd`, also what splice(2) reads from).
 * \param offset  where to read from, updated past the bytes sent when the
 *                future settles (must stay valid until then); NULL to use and
 *                advance `in_fd`'s file position.
 * \param count   most bytes to send; as with sendfile(2), one call sends at
 *                most 0x7ffff000 bytes.
 * \return a future whose value is the count sent (less than `count` only at
 *         the end of `in_fd`, or when an error or a cancellation followed
 *         some bytes), or -1 with sendfile(2)'s errno: EBADF, EINVAL (a
 *         source that is not a file, a negative offset), EIO, ESPIPE,
 *         EOVERFLOW, EPIPE, ECONNRESET, ENOMEM, ECANCELED.
 *
 * Callable from a task or any plain thread.
 *
 * \code
 * off_t off = 0; // to a client from async_accept(): the whole file, however slow the client
 * ssize_t n = async_await(async_sendfile(client, fd, &off, st.st_size));
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_sendfile(int out_fd, int in_fd, off_t *offset,
                                            size_t count) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of copy_file_range(2).
 *
 * \param fd_in    the source.
 * \param off_in   source offset, updated (valid until the future settles), or NULL.
 * \param fd_out   the destination.
 * \param off_out  destination offset, updated, or NULL.
 * \param len      most bytes to copy.
 * \param flags    must be 0.
 * \return a future whose value is the count copied (0 at the source's end),
 *         or -1 with EBADF, EINVAL, EISDIR, EXDEV, EOVERFLOW, EFBIG, ENOSPC.
 */
ASYNC_EXTERN async_future_t *async_copy_file_range(int fd_in, off_t *off_in, int fd_out,
                                                   off_t *off_out, size_t len,
                                                   unsigned flags) ASYNC_WARN_UNUSED;

/* ---- whole-file and tree helpers --------------------------------------- */

/**
 * Reads a whole file into a new buffer. Await it with async_await_ptr().
 *
 * \param path  the file; copied.
 * \param len   if not NULL, receives the byte count (valid until the future settles).
 * \return a future whose pointer value is a malloc()ed buffer holding the
 *         file and one extra NUL byte (so text can be used as a string), or
 *         NULL with open(2)'s or read(2)'s errno (ENOENT, EISDIR, EACCES, ...),
 *         ENOMEM, EFAULT (NULL `path`), ECANCELED.
 */
ASYNC_EXTERN async_future_t *async_readfile(const char *path, size_t *len) ASYNC_WARN_UNUSED;

/**
 * Writes a buffer to a file atomically: into a new temporary file beside
 * it, synced, then renamed over `path`. Readers see the old file or the new
 * one, never a part; after a crash, one of the two.
 *
 * \param path  the file; copied.
 * \param buf   the data; must stay valid until the future settles.
 * \param len   its length.
 * \param mode  the permissions of the new file (less the umask).
 * \return a future with value 0, or -1 with the errno of the step that
 *         failed (EACCES or ENOENT for the directory, ENOSPC, EIO, EISDIR
 *         when `path` is a directory, EFAULT, ECANCELED); the temporary file
 *         is then removed and `path` is untouched.
 */
ASYNC_EXTERN async_future_t *async_writefile(const char *path, const void *buf, size_t len,
                                             mode_t mode) ASYNC_WARN_UNUSED;

/**
 * Copies a file's contents and permission bits to a new or truncated file,
 * in the kernel where it can (copy_file_range(2), which may share extents
 * on file systems that can, else sendfile(2)), else by reading and writing.
 *
 * \param from  the source file; copied.
 * \param to    the destination (created or truncated); copied.
 * \return a future whose value is the byte count copied, or -1 with the
 *         errno of the step that failed (ENOENT or EACCES on either side,
 *         EISDIR, ENOSPC, EFAULT, ECANCELED); a partly written `to` is removed.
 */
ASYNC_EXTERN async_future_t *async_copyfile(const char *from, const char *to) ASYNC_WARN_UNUSED;

/**
 * Creates a directory and every missing parent, like `mkdir -p`.
 *
 * \param path    the directory; copied.
 * \param mode    permissions of each directory created (less the umask).
 * \param failed  if not NULL, receives on failure a malloc()ed copy of the
 *                path whose mkdir(2) failed (NULL on success); must stay
 *                valid until the future settles. The caller frees it.
 * \return a future with value 0 (also when it all exists), or -1 with the
 *         failing mkdir's errno: EEXIST (a component is not a directory),
 *         EACCES, ENOTDIR, EROFS, ENOSPC, EFAULT (NULL `path`), ENOENT (empty path).
 */
ASYNC_EXTERN async_future_t *async_mkdir_p(const char *path, mode_t mode,
                                           char **failed) ASYNC_WARN_UNUSED;

/**
 * Removes a file or a whole directory tree, like `rm -r` (links are removed,
 * never followed). It stops at the first failure.
 *
 * \param path    the file or tree; copied.
 * \param failed  as for async_mkdir_p(): the path whose removal failed.
 * \return a future with value 0, or -1 with the failing step's errno:
 *         ENOENT (`path` missing), EACCES, EPERM, EBUSY, EROFS, EFAULT, ECANCELED.
 */
ASYNC_EXTERN async_future_t *async_rmtree(const char *path, char **failed) ASYNC_WARN_UNUSED;

/** @} */

#ifdef __cplusplus
}
#endif
#endif
