/** \file
 * Futures: the result of one operation, awaited from a task or a plain thread. */
#ifndef ASYNCSTD_FUTURE_H
#define ASYNCSTD_FUTURE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * \defgroup future Futures
 * The result of one operation, and the ways to wait for it.
 *
 * Every asyncstd operation starts at once and returns an `async_future_t *`.
 * The caller owns that future and must hand it to exactly one of
 * async_await(), async_await_ptr(), async_await_timeout(), async_await_all(),
 * async_future_then() or async_future_free(). async_await_any() and
 * async_cancel() do not consume it.
 *
 * Results follow POSIX: a value (a count, an fd, 0) or -1 with `errno` set.
 * A NULL future stands for an operation that could not allocate its future:
 * awaiting it gives -1 with `errno` ENOMEM, so `async_await(async_x(...))`
 * is always safe.
 *
 * Buffers handed to an operation must stay valid until its future settles;
 * after async_cancel(), await the future before freeing them.
 *
 * Awaiting inside a task suspends only that task. Awaiting on a plain thread
 * (`main`, a thread of your own) blocks that thread until the future settles.
 *
 * **Misuse** of a future the caller no longer owns (awaiting it twice, freeing
 * it twice, awaiting or freeing it after async_future_free() or
 * async_future_then()) is caught while its memory has not been reused by
 * another future: in builds with debug checks (`-Ddebug_checks`, on by default
 * unless assertions are off) the call aborts at once with a message such as
 * `asyncstd: async_await: future already consumed (0x...)`; without them it
 * fails with EINVAL and touches nothing (async_future_free() ignores it).
 * @{
 */

/** An opaque handle to the result of one operation. */
typedef struct async_future async_future_t;

/** Callback for async_future_then(): the settled result (`value`, or -1 and
 * the error number in `err`, which is 0 on success) and the user's argument. */
typedef void (*async_then_fn)(intptr_t value, int err, void *arg);

/**
 * Waits for a future to settle, returns its value and frees it.
 *
 * \param f  the future (consumed); NULL stands for a failed allocation.
 * \return the operation's value, or -1 with `errno` set to the operation's
 *         error; -1/ENOMEM for a NULL future. Inside a task that has been
 *         cancelled, the pending operation is cancelled and awaited, and the
 *         call returns -1/ECANCELED unless the operation had already finished.
 *         -1/EDEADLK when `f` is the calling task's own future (it settles only
 *         when the task ends; like pthread_join(pthread_self()), `f` is not
 *         consumed). -1/EINVAL for a future already consumed, when debug
 *         checks are off (see \ref future). On success `errno` is left as
 *         the caller had it, as by a libc call that succeeds, however long
 *         the wait (so `errno = 0; while ((e = readdir(d)))` ports as is);
 *         the same holds for the other awaits.
 *
 * Callable from a task (suspends the task) or any plain thread (blocks it).
 *
 * \code
 * ssize_t n = async_await(async_read(fd, buf, sizeof buf));
 * if (n < 0) perror("read");
 * \endcode
 */
ASYNC_EXTERN intptr_t async_await(async_future_t *f);

/**
 * Waits for a future whose value is a pointer, and frees it.
 *
 * \param f  the future (consumed).
 * \return the pointer, or NULL with `errno` set (ENOMEM for a NULL future;
 *         otherwise as async_await()).
 */
ASYNC_EXTERN void *async_await_ptr(async_future_t *f);

/**
 * Waits until at least one of several futures has settled.
 *
 * No future is consumed: the caller then awaits the settled one (which
 * returns at once) and keeps, cancels or frees the others.
 *
 * \param fs  array of `n` futures; a NULL entry counts as settled (it reports
 *            ENOMEM when awaited).
 * \param n   number of entries, at least 1.
 * \return the index of the first settled future (the lowest index when several
 *         are), or -1 with `errno` EINVAL (`fs` NULL or `n` 0, or an entry
 *         already consumed), EDEADLK (an entry is the calling task's own
 *         future, which cannot settle while the task waits) or ECANCELED
 *         (the calling task was cancelled; the futures are left pending).
 *
 * \code
 * async_future_t *fs[2] = { async_recv(fd, buf, len, 0), async_sleep(5) };
 * if (async_await_any(fs, 2) == 1) async_cancel(fs[0]);
 * n = async_await(fs[0]);
 * async_future_free(fs[1]);
 * \endcode
 */
ASYNC_EXTERN int async_await_any(async_future_t *const *fs, size_t n);

/**
 * Waits for every future in an array and frees them all.
 *
 * \param fs       array of `n` futures (all consumed, in order).
 * \param n        number of entries (0 is allowed and returns 0).
 * \param results  if not NULL, receives each future's value (-1 for a failure).
 * \param errors   if not NULL, receives each future's error number (0 on success).
 * \return 0 when every future succeeded, or -1 with `errno` set to the error of
 *         the first (lowest-index) failure; -1/EINVAL when `fs` is NULL and `n` > 0.
 *         An entry that async_await() would refuse (EDEADLK, EINVAL) is left
 *         unconsumed and reported with that error.
 */
ASYNC_EXTERN int async_await_all(async_future_t *const *fs, size_t n, intptr_t *results,
                                 int *errors);

/**
 * Waits for a future at most `timeout_ms` milliseconds, and frees it.
 *
 * On expiry the future is cancelled and awaited (so its buffers are free to
 * reuse when this returns) and the call reports ETIMEDOUT, unless the
 * operation had finished anyway, in which case its real result is returned
 * (so that, for example, an accepted fd is never lost).
 *
 * \param f           the future (consumed).
 * \param timeout_ms  the limit; a negative value waits without limit, and so
 *                    in practice does one beyond about 292 years (clamped).
 * \return as async_await() (EDEADLK and EINVAL included), or -1 with `errno`
 *         ETIMEDOUT.
 */
ASYNC_EXTERN intptr_t async_await_timeout(async_future_t *f, int64_t timeout_ms);

/**
 * Asks the operation behind a future to stop.
 *
 * Cancellation is a request: the future then settles with -1/ECANCELED, or
 * with its real result when the operation had already finished. The future
 * is not consumed; await or free it as usual. Cancelling a task future asks
 * the task to stop at its next await (see async_spawn()). Cancelling a
 * settled future, or NULL, does nothing. Callable from any thread.
 *
 * \param f  the future.
 */
ASYNC_EXTERN void async_cancel(async_future_t *f);

/**
 * Calls `cb` once the future settles, instead of awaiting it.
 *
 * The future is consumed. The callback runs on the thread that settles the
 * future (a worker, a pool thread, the runtime thread that holds the waits
 * of plain threads for an operation started on one, or the caller's thread
 * at once when the future has already settled), so it must not block; it
 * may spawn tasks and settle other futures. This is the bridge for code
 * that cannot wait.
 *
 * \param f    the future (consumed, even on failure).
 * \param cb   the callback; must not be NULL.
 * \param arg  passed to `cb`.
 * \return 0, or -1 with `errno` EINVAL (`cb` NULL; the future is freed. Or,
 *         without debug checks, `f` already consumed: `cb` is not called) or
 *         ENOMEM (`f` NULL; `cb` is then called with ENOMEM before returning).
 */
ASYNC_EXTERN int async_future_then(async_future_t *f, async_then_fn cb, void *arg);

/**
 * Creates a future that you settle yourself with async_future_resolve() or
 * async_future_reject(): the bridge from other callback libraries.
 *
 * The returned handle has two roles: the owner's (await it, or free it) and
 * the settler's (resolve or reject it exactly once). Both must be played; the
 * memory is released when both are done, so either may come first. If the
 * future is cancelled, it settles at once with ECANCELED and the later
 * resolve or reject reports ECANCELED.
 *
 * \return the future, or NULL with `errno` ENOMEM.
 *
 * \code
 * async_future_t *f = async_future_new();
 * start_legacy_request(on_done, f);      // on_done calls async_future_resolve(f, v)
 * intptr_t v = async_await(f);
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_future_new(void) ASYNC_WARN_UNUSED;

/**
 * Settles a future from async_future_new() with a value. Callable from any thread.
 *
 * \param f      the future; its settler role ends here.
 * \param value  the value async_await() will return.
 * \return 0, or -1 with `errno` EINVAL (`f` NULL, not from async_future_new(),
 *         or already resolved or rejected: nothing is touched. A future whose
 *         owner is done too is gone; that is caught while its memory has not
 *         been reused) or ECANCELED (the future was cancelled before; the
 *         value is dropped, and the settler's role ends all the same).
 */
ASYNC_EXTERN int async_future_resolve(async_future_t *f, intptr_t value);

/**
 * Settles a future from async_future_new() with an error. Callable from any thread.
 *
 * \param f    the future; its settler role ends here.
 * \param err  the error number async_await() will put in `errno` (positive).
 * \return 0, or -1 with `errno` EINVAL (`f` refused as by async_future_resolve(),
 *         untouched; or `err` not positive: the future is still settled, with
 *         EINVAL) or ECANCELED (it was cancelled).
 */
ASYNC_EXTERN int async_future_reject(async_future_t *f, int err);

/**
 * Releases a future without waiting for it (detaches it).
 *
 * A pending operation goes on and its result is dropped; a task goes on
 * running, detached. NULL is ignored, and so is a future already consumed
 * when debug checks are off (see \ref future). Callable from any thread.
 *
 * \param f  the future (consumed).
 */
ASYNC_EXTERN void async_future_free(async_future_t *f);

/**
 * Tells whether a future has settled, without waiting or consuming it.
 *
 * \param f  the future; NULL counts as settled.
 * \return 1 if settled, 0 if still pending.
 */
ASYNC_EXTERN int async_future_settled(const async_future_t *f);

/** @} */

#ifdef __cplusplus
}
#endif
#endif
