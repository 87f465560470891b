/** \file
 * Directory streams shaped like `DIR` (async_opendir(), async_readdir(),
 * ...) and a tree walk (async_walk_open()). Part of the fs module; included
 * by fs.h. */
#ifndef ASYNCSTD_DIR_H
#define ASYNCSTD_DIR_H

#include <dirent.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * \addtogroup fs
 * @{
 */

/* ---- directories ------------------------------------------------------- */

/** An open directory stream (the counterpart of `DIR`), from
 * async_opendir() or async_fdopendir(). */
typedef struct async_dir async_dir_t;

/**
 * Async equivalent of opendir(3). Await it with async_await_ptr().
 *
 * The stream reads entries in large batches, so most async_readdir() calls
 * complete at once without a system call. Unlike glibc's, whose first
 * readdir(3) reads the first batch, the open reads it, in the same pool
 * job: that batch is the directory as it was at the open. So an entry added
 * or removed before the first async_readdir() may not show as it would
 * with glibc (POSIX leaves either open), a directory removed before then
 * still shows that batch (see async_readdir()), and the fd's offset
 * (async_dirfd()) is past it. The fd's flags are glibc's.
 *
 * \param name  the directory; copied.
 * \return a future whose pointer value is the stream, or NULL with the errno
 *         of open(2) (ENOENT, ENOTDIR, EACCES, ELOOP, ENAMETOOLONG, EMFILE,
 *         ...), ENOMEM, or EFAULT (`name` NULL, where glibc's crashes).
 */
ASYNC_EXTERN async_future_t *async_opendir(const char *name) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fdopendir(3): a stream over an open directory fd,
 * which then belongs to the stream. Nothing waits, so the result is direct.
 *
 * As glibc's, it sets `FD_CLOEXEC` on the fd, reads on from the fd's
 * offset while async_telldir() starts at 0, and takes an `O_PATH` fd, whose
 * async_readdir() then fails with EBADF.
 *
 * \param fd  an fd open on a directory.
 * \return the stream, or NULL with EBADF, ENOTDIR, EINVAL (an fd open for
 *         writing only, which Linux never gives for a directory) or ENOMEM.
 */
ASYNC_EXTERN async_dir_t *async_fdopendir(int fd);

/**
 * Async equivalent of readdir(3). Await it with async_await_ptr().
 *
 * As with readdir(3), the entry is overwritten by the next call on the same
 * stream, and the end is told from an error by `errno`: set it to 0 first.
 * "." and ".." are returned as readdir(3) returns them. Only one call at a
 * time per stream. Past the end, each call asks the kernel again, as glibc's
 * does (what comes then is the file system's to say). A directory removed
 * while the stream is open ends cleanly, as glibc's readdir(3) takes the
 * kernel's ENOENT for the end (entries already read in a batch, such as "."
 * and "..", still come first).
 *
 * \param dirp  the stream.
 * \return a future whose pointer value is the next entry, NULL (with `errno`
 *         untouched) at the end, or NULL with EBADF (`dirp` NULL, where
 *         glibc's crashes; an `O_PATH` fd, as glibc's), EBUSY (another call
 *         on the stream is pending), EIO, ENOMEM or ECANCELED (no entry was
 *         taken: the next call returns it).
 */
ASYNC_EXTERN async_future_t *async_readdir(async_dir_t *dirp) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of rewinddir(3). Nothing waits.
 *
 * \param dirp  the stream; NULL is ignored (glibc's crashes). While another
 *              call on the stream is pending, nothing is done and `errno` is
 *              set to EBUSY.
 */
ASYNC_EXTERN void async_rewinddir(async_dir_t *dirp);

/**
 * Async equivalent of telldir(3): the position of the entry the next
 * async_readdir() returns, for async_seekdir(). Nothing waits. The value is
 * the one glibc's telldir(3) gives at the same point (the file system's
 * cookie, `d_off` of the entry last returned).
 *
 * \param dirp  the stream.
 * \return the position, or -1 with `errno` EBADF (`dirp` NULL, where glibc's
 *         crashes) or EBUSY (another call on the stream is pending).
 */
ASYNC_EXTERN long async_telldir(async_dir_t *dirp);

/**
 * Async equivalent of seekdir(3): the next async_readdir() returns the entry
 * at `loc`, a value from async_telldir() on the same stream. Nothing waits.
 *
 * Another `loc` is taken as glibc takes it: what the stream had read ahead
 * is dropped and async_telldir() reports `loc`; when the kernel refuses it
 * (a negative one: `errno` EINVAL), reading goes on from where the kernel
 * stood, which may be past entries not yet returned.
 *
 * \param dirp  the stream; NULL is ignored (glibc's crashes). While another
 *              call on the stream is pending, nothing is done and `errno` is
 *              set to EBUSY.
 * \param loc   the position.
 */
ASYNC_EXTERN void async_seekdir(async_dir_t *dirp, long loc);

/**
 * Async equivalent of dirfd(3).
 *
 * \param dirp  the stream.
 * \return the stream's fd, or -1 with EINVAL (`dirp` NULL, where glibc's
 *         crashes).
 */
ASYNC_EXTERN int async_dirfd(async_dir_t *dirp);

/**
 * Async equivalent of closedir(3). The stream is freed even when closing
 * its fd fails, as async_close() releases the fd, with the same one
 * exception: after ENOMEM nothing was done and the stream is still open,
 * to be closed again.
 *
 * \param dirp  the stream (consumed but after ENOMEM); must have no pending
 *              async_readdir().
 * \return a future with value 0, or -1 with EINVAL (`dirp` NULL, as glibc),
 *         EIO (the stream is gone all the same) or ENOMEM (nothing was done).
 */
ASYNC_EXTERN async_future_t *async_closedir(async_dir_t *dirp) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of scandir(3).
 *
 * The whole scan runs on a pool thread, so `filter` and `compar` are called
 * there: they must not await, and must be safe to call from another thread.
 *
 * \param dirp      the directory; copied.
 * \param namelist  receives a malloc()ed array of malloc()ed entries, each
 *                  freed by the caller; must stay valid until the future settles.
 * \param filter    keeps the entries for which it returns nonzero, or NULL for all.
 * \param compar    sorts the result (`alphasort`, `versionsort`), or NULL to keep
 *                  the directory's order.
 * \return a future whose value is the entry count, or -1 with ENOENT,
 *         ENOTDIR, EACCES, ENOMEM, EFAULT (NULL `dirp` or `namelist`).
 */
ASYNC_EXTERN async_future_t *
async_scandir(const char *dirp, struct dirent ***namelist, int (*filter)(const struct dirent *),
              int (*compar)(const struct dirent **, const struct dirent **)) ASYNC_WARN_UNUSED;

/** A tree walk in progress, from async_walk_open(). */
typedef struct async_walk async_walk_t;

/** One entry of a tree walk, valid until the next async_walk_next() on the walk. */
typedef struct async_walk_entry {
    const char *path; /**< the path: the root given to async_walk_open(), then "/" and the names */
    const char *name; /**< the last component of `path` (the root's whole path for the root) */
    int type;         /**< `DT_REG`, `DT_DIR`, `DT_LNK`, ... (never `DT_UNKNOWN`) */
    int depth;        /**< 0 for the root, 1 for its entries, ... */
    int post;         /**< 1 when a directory is seen again after its contents (ASYNC_WALK_POST) */
    int error; /**< 0, or the errno of opening or reading this directory (it is not entered) */
} async_walk_entry_t;

/** async_walk_open() flag: also report each directory after its contents
 * (with `post` set), as `rm -r` needs. */
#define ASYNC_WALK_POST 1
/** async_walk_open() flag: follow symbolic links to directories (loops are
 * not detected; a walk never leaves ELOOP's depth). By default a link is
 * reported as `DT_LNK` and not entered. */
#define ASYNC_WALK_FOLLOW 2

/**
 * Starts a depth-first walk of a directory tree: the root first, then each
 * directory's entries before its siblings (pre-order), "." and ".." left out.
 * The walk reads directories in batches on a pool thread, so most
 * async_walk_next() calls complete at once.
 *
 * \param root   the top of the tree (a directory, or any other file, which is
 *               then the only entry); copied.
 * \param flags  0, or `ASYNC_WALK_POST` | `ASYNC_WALK_FOLLOW`.
 * \return the walk, or NULL with EINVAL (bad flags, NULL `root`) or ENOMEM.
 *         The root is not looked at until async_walk_next().
 */
ASYNC_EXTERN async_walk_t *async_walk_open(const char *root, int flags);

/**
 * The next entry of a walk. Await it with async_await_ptr().
 *
 * A directory that cannot be opened or read is still reported, with `error`
 * set, and not entered; the walk goes on. Only one call at a time per walk.
 *
 * \param w  the walk.
 * \return a future whose pointer value is an `async_walk_entry_t *`, NULL with
 *         `errno` untouched at the end, or NULL with ENOENT (the root does
 *         not exist), EACCES, EBUSY (a call is pending), EINVAL (`w` NULL), ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_walk_next(async_walk_t *w) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of fts_set(FTS_SKIP): do not enter the directory that the
 * last async_walk_next() returned.
 *
 * \param w  the walk.
 * \return 0, or -1 with EINVAL (`w` NULL, or the last entry is not a
 *         directory that will be entered).
 */
ASYNC_EXTERN int async_walk_skip(async_walk_t *w);

/**
 * Ends a walk and frees it. NULL is ignored. Must have no pending call.
 *
 * \param w  the walk (consumed).
 */
ASYNC_EXTERN void async_walk_close(async_walk_t *w);

/** @} */

#ifdef __cplusplus
}
#endif
#endif
