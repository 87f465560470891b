/** \file
 * Synchronisation between tasks and threads: mutex, rwlock, condition
 * variable, semaphore, barrier, once, wait group, channels and a resource pool. */
#ifndef ASYNCSTD_SYNC_H
#define ASYNCSTD_SYNC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * \defgroup sync Synchronisation
 * pthread- and semaphore-shaped primitives whose waits are futures.
 *
 * Every primitive may be used at once from tasks on any worker and from plain
 * threads. A wait (a lock, a semaphore wait, a channel receive) returns a
 * future; awaiting it in a task suspends only that task, on a plain thread it
 * blocks the thread. An operation that can complete at once (an uncontended
 * lock, a posted semaphore, a buffered item) returns an already settled future
 * without allocating, so `async_await(async_mutex_lock(&m))` costs a few
 * atomic operations.
 *
 * Waiters are served first come, first served, with one exception: a mutex,
 * rwlock or semaphore lets a running caller take it while its oldest waiter
 * is being woken (as pthread and Go mutexes do), and hands itself directly to
 * a waiter that has been passed over for a millisecond, so no waiter starves
 * (docs/sync.md has the details and the costs).
 *
 * Cancellation points are those of pthreads(7). The task's cancellation
 * (async_cancel() on the task) ends semaphore, condition, wait-group, channel
 * and pool waits with ECANCELED, but not lock or barrier waits: a cancelled
 * task's async_mutex_lock(), rwlock locks and async_barrier_wait() complete,
 * as pthread_mutex_lock() and pthread_barrier_wait() are no cancellation
 * points, and the cancellation acts at the task's next cancellation point.
 * A wait's own future can always be cancelled (async_cancel() on it,
 * async_await_timeout()), and the timed variants expire; either way the
 * primitive stays consistent. A wait that was granted at the moment it was
 * cancelled keeps the grant and reports success: so after async_cancel(),
 * always await the future and check what it says (a lock you were granted
 * must still be unlocked).
 *
 * Unlike the pthread functions, which return an error number, these return
 * -1 and set `errno`, like the rest of asyncstd. The types have a fixed size
 * and may be embedded in your own structures; those with an initializer macro
 * are also valid when all-zero. Destroying a primitive while a future of one
 * of its waits is pending, or while another thread is still inside a call on
 * it, is undefined, as with pthreads.
 * @{
 */

/* ---- mutex -------------------------------------------------------------- */

/** A mutex (48 bytes). Initialise it with ASYNC_MUTEX_INITIALIZER, all-zero
 * memory or async_mutex_init(). */
typedef struct async_mutex {
    /** Private. */
    uintptr_t opaque_[6];
} async_mutex_t;

/** Static initializer for a default (normal) async_mutex_t. */
#define ASYNC_MUTEX_INITIALIZER \
    {                           \
        { 0 }                   \
    }

/**
 * Async equivalent of pthread_mutex_init(3).
 *
 * The attribute's type is honoured: PTHREAD_MUTEX_NORMAL and _DEFAULT (no
 * owner checks), PTHREAD_MUTEX_ERRORCHECK (relocking by the owner fails with
 * EDEADLK, unlocking by another fails with EPERM) and PTHREAD_MUTEX_RECURSIVE.
 * The owner is the calling task, or the calling thread outside a task.
 *
 * \param m     the mutex.
 * \param attr  NULL for a normal mutex, or pthread mutex attributes.
 * \return 0, or -1 with `errno` EINVAL (`m` NULL, bad attribute) or ENOTSUP
 *         (a process-shared, robust or priority-protocol attribute).
 *
 * Callable from any context.
 */
ASYNC_EXTERN int async_mutex_init(async_mutex_t *m, const pthread_mutexattr_t *attr);

/**
 * Async equivalent of pthread_mutex_lock(3).
 *
 * An unlocked mutex is taken at once and the future returned is already
 * settled (no allocation). Otherwise the caller spins briefly when the holder
 * may be running on another thread, then queues; the future settles when the
 * caller holds the mutex.
 *
 * Not a cancellation point: in a cancelled task the await goes on until the
 * mutex is held and returns 0. Cancelling the future itself (async_cancel()
 * on it, async_await_timeout()) stops the wait: it settles with ECANCELED (or
 * ETIMEDOUT) and the mutex is not held.
 *
 * \param m  the mutex.
 * \return a future with value 0 (the mutex is held), or -1 with `errno`
 *         EINVAL (`m` NULL or destroyed), EDEADLK (error-checking mutex already
 *         held by the caller), EAGAIN (recursive count overflow) or ECANCELED
 *         (the future was cancelled). NULL with ENOMEM.
 *
 * Callable from a task or any thread.
 *
 * \code
 * async_await(async_mutex_lock(&m));
 * counter++;
 * async_mutex_unlock(&m);
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_mutex_lock(async_mutex_t *m) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_mutex_timedlock(3).
 *
 * \param m        the mutex.
 * \param abstime  the absolute CLOCK_REALTIME time at which to give up.
 * \return as async_mutex_lock(), or -1 with `errno` ETIMEDOUT (the time
 *         passed, or a negative tv_sec whatever its tv_nsec, as in glibc) or
 *         EINVAL (`abstime` NULL or its tv_nsec out of range, when the mutex
 *         could not be taken at once: glibc's mutex looks only when it waits).
 */
ASYNC_EXTERN async_future_t *
async_mutex_timedlock(async_mutex_t *m, const struct timespec *abstime) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_mutex_clocklock(3): async_mutex_timedlock()
 * with `abstime` on `clock`.
 *
 * \param m        the mutex.
 * \param clock    CLOCK_REALTIME or CLOCK_MONOTONIC.
 * \param abstime  the absolute time on `clock` at which to give up.
 * \return as async_mutex_timedlock(), or -1 with EINVAL for any other clock
 *         (before anything else, as glibc).
 */
ASYNC_EXTERN async_future_t *
async_mutex_clocklock(async_mutex_t *m, clockid_t clock,
                      const struct timespec *abstime) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_mutex_trylock(3).
 *
 * Fails instead of waiting. Like async_mutex_lock(), it takes a mutex that is
 * free while its oldest waiter is being woken, unless a waiter has starved.
 *
 * \param m  the mutex.
 * \return 0, or -1 with `errno` EBUSY, EINVAL or EAGAIN (recursive overflow).
 */
ASYNC_EXTERN int async_mutex_trylock(async_mutex_t *m);

/**
 * Async equivalent of pthread_mutex_unlock(3).
 *
 * With waiters queued, the oldest one is woken to take it (the caller does not
 * wait); when a waiter has starved, the mutex passes directly to it.
 *
 * Who may unlock: an error-checking or recursive mutex refuses (EPERM) an
 * unlock by any task or thread but its owner. A default (normal) mutex records
 * no owner, so that locking it stays one atomic operation: an unlock from
 * another task releases it, as glibc's default mutex does (POSIX leaves this
 * undefined). Use PTHREAD_MUTEX_ERRORCHECK to have such bugs reported.
 *
 * \param m  the mutex.
 * \return 0, or -1 with `errno` EINVAL (`m` NULL) or EPERM (not locked, or
 *         for error-checking and recursive mutexes, not locked by the caller).
 *
 * Callable from any context.
 */
ASYNC_EXTERN int async_mutex_unlock(async_mutex_t *m);

/**
 * Async equivalent of pthread_mutex_destroy(3).
 *
 * Later uses fail with EINVAL until async_mutex_init() is called again.
 *
 * \param m  the mutex.
 * \return 0, or -1 with `errno` EINVAL (`m` NULL) or EBUSY (locked).
 */
ASYNC_EXTERN int async_mutex_destroy(async_mutex_t *m);

/* ---- rwlock ------------------------------------------------------------- */

/** A readers-writer lock (48 bytes). Initialise it with
 * ASYNC_RWLOCK_INITIALIZER, all-zero memory or async_rwlock_init(). */
typedef struct async_rwlock {
    /** Private. */
    uintptr_t opaque_[6];
} async_rwlock_t;

/** Static initializer for an async_rwlock_t. */
#define ASYNC_RWLOCK_INITIALIZER \
    {                            \
        { 0 }                    \
    }

/**
 * Async equivalent of pthread_rwlock_init(3).
 *
 * Readers are preferred, as by glibc's default rwlock
 * (PTHREAD_RWLOCK_PREFER_READER_NP), but no waiter starves. A read lock is
 * granted whenever no writer holds the lock, even while writers wait; a write
 * lock whenever nobody holds it, even while readers wait (a newcomer may take
 * it ahead of queued waiters, as with async_mutex_lock()). Queued waiters are
 * woken in arrival order, and a woken reader lets the readers queued after it
 * in. A waiter (reader or writer) kept out for a millisecond stops every new
 * lock: the holders drain and the lock is handed to it. So a writer among
 * readers whose holds overlap without pause waits about a millisecond plus the
 * longest read hold in progress, where glibc's default can keep it out
 * forever; unlike PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP, new readers do
 * not queue behind every waiting writer (each such wait costs a task switch,
 * and made write-heavy use several times slower: bench/RESULTS.md).
 *
 * So a caller that already holds a read lock and asks for another may wait
 * behind a starved writer that waits for it: do not take read locks
 * recursively (POSIX leaves it implementation-defined whether such a read
 * lock is granted while writers wait; glibc's writer-preferring kind has the
 * same rule).
 *
 * \param rw    the lock.
 * \param attr  NULL, or a `const pthread_rwlockattr_t *` (only the
 *              process-shared setting is looked at). Typed `const void *`
 *              because <pthread.h> declares pthread_rwlockattr_t only when
 *              POSIX.1-2001 is asked for, and this header must compile in
 *              strict ISO C (`-std=c99`) as well.
 * \return 0, or -1 with `errno` EINVAL (`rw` NULL) or ENOTSUP (process-shared).
 */
ASYNC_EXTERN int async_rwlock_init(async_rwlock_t *rw, const void *attr);

/**
 * Async equivalent of pthread_rwlock_rdlock(3).
 *
 * Not a cancellation point, like async_mutex_lock(): a cancelled task's
 * wait completes; cancelling the future itself stops it.
 *
 * \param rw  the lock.
 * \return a future with value 0 (read lock held), or -1 with `errno` EINVAL,
 *         EDEADLK (the caller holds the write lock), EAGAIN (too many readers)
 *         or ECANCELED (the future was cancelled); NULL with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_rwlock_rdlock(async_rwlock_t *rw) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_rwlock_wrlock(3).
 *
 * Not a cancellation point, like async_mutex_lock().
 *
 * \param rw  the lock.
 * \return a future with value 0 (write lock held), or -1 with `errno` EINVAL,
 *         EDEADLK (the caller holds the write lock) or ECANCELED (the future
 *         was cancelled); NULL with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_rwlock_wrlock(async_rwlock_t *rw) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_rwlock_timedrdlock(3).
 *
 * \param rw       the lock.
 * \param abstime  the absolute CLOCK_REALTIME time at which to give up.
 * \return as async_rwlock_rdlock(), or -1 with ETIMEDOUT, or EINVAL for a bad
 *         `abstime` (looked at first, as by glibc: even when the lock is free).
 */
ASYNC_EXTERN async_future_t *
async_rwlock_timedrdlock(async_rwlock_t *rw, const struct timespec *abstime) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_rwlock_timedwrlock(3).
 *
 * \param rw       the lock.
 * \param abstime  the absolute CLOCK_REALTIME time at which to give up.
 * \return as async_rwlock_wrlock(), or -1 with ETIMEDOUT, or EINVAL for a bad
 *         `abstime` (looked at first, as by glibc: even when the lock is free).
 */
ASYNC_EXTERN async_future_t *
async_rwlock_timedwrlock(async_rwlock_t *rw, const struct timespec *abstime) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_rwlock_clockrdlock(3): async_rwlock_timedrdlock()
 * with `abstime` on `clock`.
 *
 * \param rw       the lock.
 * \param clock    CLOCK_REALTIME or CLOCK_MONOTONIC.
 * \param abstime  the absolute time on `clock` at which to give up.
 * \return as async_rwlock_timedrdlock(), or -1 with EINVAL for any other clock
 *         (before anything else, as glibc).
 */
ASYNC_EXTERN async_future_t *
async_rwlock_clockrdlock(async_rwlock_t *rw, clockid_t clock,
                         const struct timespec *abstime) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_rwlock_clockwrlock(3): async_rwlock_timedwrlock()
 * with `abstime` on `clock`.
 *
 * \param rw       the lock.
 * \param clock    CLOCK_REALTIME or CLOCK_MONOTONIC.
 * \param abstime  the absolute time on `clock` at which to give up.
 * \return as async_rwlock_timedwrlock(), or -1 with EINVAL for any other clock
 *         (before anything else, as glibc).
 */
ASYNC_EXTERN async_future_t *
async_rwlock_clockwrlock(async_rwlock_t *rw, clockid_t clock,
                         const struct timespec *abstime) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_rwlock_tryrdlock(3).
 *
 * \param rw  the lock.
 * \return 0, or -1 with `errno` EBUSY (a writer holds it, the caller
 *         included, or waits), EINVAL or EAGAIN.
 */
ASYNC_EXTERN int async_rwlock_tryrdlock(async_rwlock_t *rw);

/**
 * Async equivalent of pthread_rwlock_trywrlock(3).
 *
 * \param rw  the lock.
 * \return 0, or -1 with `errno` EBUSY (held, by the caller too) or EINVAL.
 */
ASYNC_EXTERN int async_rwlock_trywrlock(async_rwlock_t *rw);

/**
 * Async equivalent of pthread_rwlock_unlock(3): releases a read or the write lock.
 *
 * \param rw  the lock.
 * \return 0, or -1 with `errno` EINVAL or EPERM (not locked, or write-locked
 *         by someone else).
 */
ASYNC_EXTERN int async_rwlock_unlock(async_rwlock_t *rw);

/**
 * Async equivalent of pthread_rwlock_destroy(3).
 *
 * Later uses, a second destroy included, fail with EINVAL until
 * async_rwlock_init() is called again (glibc's calls answer them as if the
 * lock were new).
 *
 * \param rw  the lock.
 * \return 0, or -1 with `errno` EINVAL or EBUSY (held or awaited).
 */
ASYNC_EXTERN int async_rwlock_destroy(async_rwlock_t *rw);

/* ---- condition variable -------------------------------------------------- */

/** A condition variable (32 bytes). Initialise it with ASYNC_COND_INITIALIZER,
 * all-zero memory (CLOCK_REALTIME) or async_cond_init(). */
typedef struct async_cond {
    /** Private. */
    uintptr_t opaque_[4];
} async_cond_t;

/** Static initializer for an async_cond_t using CLOCK_REALTIME. */
#define ASYNC_COND_INITIALIZER \
    {                          \
        { 0 }                  \
    }

/**
 * Async equivalent of pthread_cond_init(3).
 *
 * \param c     the condition variable.
 * \param attr  NULL, or pthread condition attributes: the clock
 *              (CLOCK_REALTIME or CLOCK_MONOTONIC) for async_cond_timedwait().
 * \return 0, or -1 with `errno` EINVAL (`c` NULL, another clock) or ENOTSUP
 *         (process-shared).
 */
ASYNC_EXTERN int async_cond_init(async_cond_t *c, const pthread_condattr_t *attr);

/**
 * Async equivalent of pthread_cond_wait(3).
 *
 * Atomically releases `m` (which the caller holds) and waits for a signal;
 * the future settles once the mutex has been taken again. Whatever the
 * result, when the future settles the mutex is held again (as pthreads do
 * on cancellation), except for the errors found before waiting, which leave
 * the mutex untouched. A cancellation point: a cancelled task's wait fails
 * with ECANCELED, once it holds the mutex again. Spurious wake-ups do not
 * happen, but as with pthreads, re-check your predicate in a loop.
 *
 * \param c  the condition variable.
 * \param m  the mutex, held by the caller.
 * \return a future with value 0, or -1 with `errno` EINVAL (NULL argument,
 *         destroyed object), EPERM (`m` not locked, or not by the caller for
 *         error-checking mutexes) or ECANCELED; NULL with ENOMEM.
 *
 * \code
 * async_await(async_mutex_lock(&m));
 * while (!ready) async_await(async_cond_wait(&c, &m));
 * async_mutex_unlock(&m);
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_cond_wait(async_cond_t *c, async_mutex_t *m) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_cond_timedwait(3).
 *
 * \param c        the condition variable.
 * \param m        the mutex, held by the caller.
 * \param abstime  the absolute time, on the condition variable's clock, at
 *                 which to give up.
 * \return as async_cond_wait(), or -1 with ETIMEDOUT (the mutex is held
 *         again), or EINVAL for a bad `abstime` (looked at before the mutex,
 *         as by glibc).
 */
ASYNC_EXTERN async_future_t *async_cond_timedwait(async_cond_t *c, async_mutex_t *m,
                                                  const struct timespec *abstime) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_cond_clockwait(3): async_cond_timedwait() with
 * `abstime` on `clock`, whatever clock the condition variable was made with.
 *
 * \param c        the condition variable.
 * \param m        the mutex, held by the caller.
 * \param clock    CLOCK_REALTIME or CLOCK_MONOTONIC.
 * \param abstime  the absolute time on `clock` at which to give up.
 * \return as async_cond_timedwait(), or -1 with EINVAL for any other clock
 *         (before anything else, as glibc).
 */
ASYNC_EXTERN async_future_t *async_cond_clockwait(async_cond_t *c, async_mutex_t *m,
                                                  clockid_t clock,
                                                  const struct timespec *abstime) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_cond_signal(3): wakes the oldest waiter.
 *
 * \param c  the condition variable.
 * \return 0, or -1 with `errno` EINVAL.
 */
ASYNC_EXTERN int async_cond_signal(async_cond_t *c);

/**
 * Async equivalent of pthread_cond_broadcast(3): wakes every waiter.
 *
 * The woken waiters take the mutex one after another, in the order they waited.
 *
 * \param c  the condition variable.
 * \return 0, or -1 with `errno` EINVAL.
 */
ASYNC_EXTERN int async_cond_broadcast(async_cond_t *c);

/**
 * Async equivalent of pthread_cond_destroy(3).
 *
 * A second destroy fails with EINVAL until async_cond_init() is called
 * again (glibc's second destroy returns 0).
 *
 * \param c  the condition variable.
 * \return 0, or -1 with `errno` EINVAL or EBUSY (waiters).
 */
ASYNC_EXTERN int async_cond_destroy(async_cond_t *c);

/* ---- semaphore ------------------------------------------------------------ */

/** A counting semaphore (32 bytes); all-zero memory is a semaphore of value 0. */
typedef struct async_sem {
    /** Private. */
    uintptr_t opaque_[4];
} async_sem_t;

/** The largest value of an async_sem_t. */
#define ASYNC_SEM_VALUE_MAX 0x7fffffff

/**
 * Async equivalent of sem_init(3).
 *
 * \param sem      the semaphore.
 * \param pshared  must be 0: semaphores shared between processes are not supported.
 * \param value    the initial value.
 * \return 0, or -1 with `errno` EINVAL (`sem` NULL or `value` above
 *         ASYNC_SEM_VALUE_MAX) or ENOSYS (`pshared` not 0).
 */
ASYNC_EXTERN int async_sem_init(async_sem_t *sem, int pshared, unsigned value);

/**
 * Async equivalent of sem_wait(3).
 *
 * Decrements at once when the value is positive (a settled future, no
 * allocation), even when waiters are queued: they are being woken, and a
 * running caller may take the unit first, as with sem_wait(3). Otherwise
 * waits; a waiter passed over for a millisecond is handed the next unit.
 * A cancellation point.
 *
 * \param sem  the semaphore.
 * \return a future with value 0, or -1 with `errno` EINVAL or ECANCELED; NULL
 *         with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_sem_wait(async_sem_t *sem) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of sem_trywait(3).
 *
 * \param sem  the semaphore.
 * \return 0, or -1 with `errno` EAGAIN (value 0, or a starved waiter is owed
 *         the next unit) or EINVAL.
 */
ASYNC_EXTERN int async_sem_trywait(async_sem_t *sem);

/**
 * Async equivalent of sem_timedwait(3).
 *
 * \param sem      the semaphore.
 * \param abstime  the absolute CLOCK_REALTIME time at which to give up.
 * \return as async_sem_wait(), or -1 with `errno` ETIMEDOUT, or EINVAL for a
 *         bad `abstime` (looked at first, as by glibc: even when the value is
 *         positive).
 */
ASYNC_EXTERN async_future_t *async_sem_timedwait(async_sem_t *sem,
                                                 const struct timespec *abstime) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of sem_clockwait(3): async_sem_timedwait() with `abstime`
 * on `clock`.
 *
 * \param sem      the semaphore.
 * \param clock    CLOCK_REALTIME or CLOCK_MONOTONIC.
 * \param abstime  the absolute time on `clock` at which to give up.
 * \return as async_sem_timedwait(), or -1 with EINVAL for any other clock
 *         (before anything else, as glibc).
 */
ASYNC_EXTERN async_future_t *async_sem_clockwait(async_sem_t *sem, clockid_t clock,
                                                 const struct timespec *abstime) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of sem_post(3): increments, and wakes the oldest waiter
 * (on a plain thread, or passed over for a millisecond, it is handed the unit
 * directly).
 *
 * \param sem  the semaphore.
 * \return 0, or -1 with `errno` EINVAL or EOVERFLOW (the value is at
 *         ASYNC_SEM_VALUE_MAX).
 */
ASYNC_EXTERN int async_sem_post(async_sem_t *sem);

/**
 * Async equivalent of sem_getvalue(3).
 *
 * \param sem   the semaphore.
 * \param sval  receives the value (0 while tasks or threads wait).
 * \return 0, or -1 with `errno` EINVAL.
 */
ASYNC_EXTERN int async_sem_getvalue(async_sem_t *sem, int *sval);

/**
 * Async equivalent of sem_destroy(3).
 *
 * Later uses, a second destroy included, fail with EINVAL until
 * async_sem_init() is called again (glibc's calls answer them as if the
 * semaphore were still there).
 *
 * \param sem  the semaphore.
 * \return 0, or -1 with `errno` EINVAL or EBUSY (waiters).
 */
ASYNC_EXTERN int async_sem_destroy(async_sem_t *sem);

/* ---- barrier -------------------------------------------------------------- */

/** A barrier (32 bytes), initialised with async_barrier_init(). */
typedef struct async_barrier {
    /** Private. */
    uintptr_t opaque_[4];
} async_barrier_t;

/** The value of async_barrier_wait()'s future for exactly one of the waiters
 * of each round (pthread's is -1, which here means an error). */
#define ASYNC_BARRIER_SERIAL_THREAD 1

/**
 * Async equivalent of pthread_barrier_init(3).
 *
 * \param b      the barrier.
 * \param attr   NULL, or a `const pthread_barrierattr_t *` (process-shared is
 *               refused); `const void *` for the reason given at
 *               async_rwlock_init().
 * \param count  the number of waiters that release each round; at least 1
 *               and below INT_MAX (glibc's limit).
 * \return 0, or -1 with `errno` EINVAL (`b` NULL, `count` 0 or INT_MAX and
 *         above) or ENOTSUP.
 */
ASYNC_EXTERN int async_barrier_init(async_barrier_t *b, const void *attr, unsigned count);

/**
 * Async equivalent of pthread_barrier_wait(3).
 *
 * The future settles when `count` waits have arrived; the last arrival gets a
 * settled future at once.
 *
 * Not a cancellation point, as pthread_barrier_wait() is none (pthreads(7)):
 * in a cancelled task the await goes on until the round completes. Cancelling
 * the future itself (async_cancel() on it, async_await_timeout()) stops the
 * wait and takes back its arrival, so the round then needs one more.
 *
 * \param b  the barrier.
 * \return a future with value ASYNC_BARRIER_SERIAL_THREAD for one waiter of
 *         the round and 0 for the others, or -1 with `errno` EINVAL or
 *         ECANCELED (the future was cancelled); NULL with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_barrier_wait(async_barrier_t *b) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_barrier_destroy(3).
 *
 * \param b  the barrier.
 * \return 0, or -1 with `errno` EINVAL or EBUSY (waiters).
 */
ASYNC_EXTERN int async_barrier_destroy(async_barrier_t *b);

/* ---- once ----------------------------------------------------------------- */

/** A once control (32 bytes). Initialise it with ASYNC_ONCE_INIT or all-zero memory. */
typedef struct async_once {
    /** Private. */
    uintptr_t opaque_[4];
} async_once_t;

/** Static initializer for an async_once_t. */
#define ASYNC_ONCE_INIT \
    {                   \
        { 0 }           \
    }

/**
 * Async equivalent of pthread_once(3).
 *
 * The first caller runs `init_routine` inside this call (it may await) and
 * gets a settled future. Callers that arrive while it runs get a future that
 * settles when it returns; later callers get a settled future. The routine
 * returns nothing, so it counts as run whatever happens inside it (even when
 * the task running it is cancelled meanwhile).
 *
 * \param once          the control.
 * \param init_routine  the routine.
 * \return a future with value 0, or -1 with `errno` EINVAL (NULL argument) or
 *         ECANCELED (a waiting caller was cancelled); NULL with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_once(async_once_t *once,
                                        void (*init_routine)(void)) ASYNC_WARN_UNUSED;

/* ---- wait group ------------------------------------------------------------ */

/** A wait group (32 bytes): a counter of outstanding work that can be awaited
 * until it reaches zero. ASYNC_WAITGROUP_INITIALIZER or all-zero memory is an
 * empty group. */
typedef struct async_waitgroup {
    /** Private. */
    uintptr_t opaque_[4];
} async_waitgroup_t;

/** Static initializer for an empty async_waitgroup_t. */
#define ASYNC_WAITGROUP_INITIALIZER \
    {                               \
        { 0 }                       \
    }

/**
 * Initialises an empty wait group (equivalent to ASYNC_WAITGROUP_INITIALIZER).
 *
 * \param wg  the group.
 * \return 0, or -1 with `errno` EINVAL.
 */
ASYNC_EXTERN int async_waitgroup_init(async_waitgroup_t *wg);

/**
 * Adds `delta` (which may be negative) to the counter; at zero every waiter is released.
 *
 * \param wg     the group.
 * \param delta  the change.
 * \return 0, or -1 with `errno` EINVAL (`wg` NULL, or the counter would go
 *         negative; it is left unchanged) or EOVERFLOW.
 */
ASYNC_EXTERN int async_waitgroup_add(async_waitgroup_t *wg, long delta);

/**
 * async_waitgroup_add(wg, -1).
 *
 * \param wg  the group.
 * \return as async_waitgroup_add().
 */
ASYNC_EXTERN int async_waitgroup_done(async_waitgroup_t *wg);

/**
 * Waits until the counter is zero (a settled future if it already is).
 *
 * \param wg  the group.
 * \return a future with value 0, or -1 with `errno` EINVAL or ECANCELED;
 *         NULL with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_waitgroup_wait(async_waitgroup_t *wg) ASYNC_WARN_UNUSED;

/**
 * Destroys a wait group.
 *
 * \param wg  the group.
 * \return 0, or -1 with `errno` EINVAL or EBUSY (waiters).
 */
ASYNC_EXTERN int async_waitgroup_destroy(async_waitgroup_t *wg);

/* ---- channels -------------------------------------------------------------- */

/** An opaque channel of fixed-size items, for many senders and receivers. */
typedef struct async_chan async_chan_t;

/** Capacity for async_chan_new(): a channel that never blocks senders. */
#define ASYNC_CHAN_UNBOUNDED SIZE_MAX

/**
 * Creates a channel carrying items of `elem_size` bytes.
 *
 * With `capacity` 0 the channel is a rendezvous: a send completes only when a
 * receiver takes the item. With ASYNC_CHAN_UNBOUNDED, sends never wait (the
 * buffer grows). Senders and receivers are each served in arrival order.
 *
 * \param elem_size  bytes per item, 1 to 65536.
 * \param capacity   items buffered; 0, a count, or ASYNC_CHAN_UNBOUNDED.
 * \return the channel, or NULL with `errno` EINVAL (bad size) or ENOMEM.
 */
ASYNC_EXTERN async_chan_t *async_chan_new(size_t elem_size, size_t capacity) ASYNC_WARN_UNUSED;

/**
 * Sends one item.
 *
 * The item is copied from `elem` when a receiver or a buffer slot takes it,
 * which may be later than the call: `elem` must stay valid until the future
 * settles. Cancelling a pending send withdraws the item (ECANCELED); a send
 * that completed while being cancelled reports success.
 *
 * \param c     the channel.
 * \param elem  the item (elem_size bytes).
 * \return a future with value 0 once the item is buffered or received, or -1
 *         with `errno` EPIPE (the channel is or gets closed; the item was not
 *         delivered), EINVAL (NULL argument), ENOMEM (an unbounded buffer
 *         could not grow) or ECANCELED; NULL with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_chan_send(async_chan_t *c, const void *elem) ASYNC_WARN_UNUSED;

/**
 * Receives one item into `elem`.
 *
 * After close, receivers drain the items left, then get end-of-channel (0).
 * `elem` must stay valid until the future settles.
 *
 * Select: start receives (or sends) on several channels and await them with
 * async_await_any(); then cancel and await the others, and keep any item that
 * one of them received anyway (its value is 1):
 * \code
 * async_future_t *fs[3] = { async_chan_recv(a, &x), async_chan_recv(b, &y), async_sleep(1) };
 * int i = async_await_any(fs, 3);
 * for (int k = 0; k < 3; k++) if (k != i) async_cancel(fs[k]);
 * if (async_await(fs[0]) == 1) use_a(x);
 * if (async_await(fs[1]) == 1) use_b(y);
 * async_await(fs[2]);
 * \endcode
 *
 * \param c     the channel.
 * \param elem  where to store the item (elem_size bytes).
 * \return a future with value 1 (an item was stored), 0 (the channel is closed
 *         and empty), or -1 with `errno` EINVAL or ECANCELED; NULL with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_chan_recv(async_chan_t *c, void *elem) ASYNC_WARN_UNUSED;

/**
 * Sends one item if that is possible without waiting.
 *
 * \param c     the channel.
 * \param elem  the item, copied before the call returns.
 * \return 0, or -1 with `errno` EAGAIN (full; for a rendezvous channel: no
 *         receiver waiting), EPIPE (closed), EINVAL or ENOMEM.
 */
ASYNC_EXTERN int async_chan_trysend(async_chan_t *c, const void *elem);

/**
 * Receives one item if one is available without waiting.
 *
 * \param c     the channel.
 * \param elem  where to store the item.
 * \return 1 (an item was stored), 0 (closed and empty), or -1 with `errno`
 *         EAGAIN (nothing to receive now) or EINVAL.
 */
ASYNC_EXTERN int async_chan_tryrecv(async_chan_t *c, void *elem);

/**
 * Closes the channel: pending and later sends fail with EPIPE, receivers
 * drain the buffered items and then get end-of-channel.
 *
 * \param c  the channel.
 * \return 0, or -1 with `errno` EINVAL (`c` NULL) or EPIPE (already closed).
 */
ASYNC_EXTERN int async_chan_close(async_chan_t *c);

/**
 * The number of items buffered now.
 *
 * \param c  the channel.
 * \return the count, or 0 for NULL.
 */
ASYNC_EXTERN size_t async_chan_len(async_chan_t *c);

/**
 * The capacity given to async_chan_new().
 *
 * \param c  the channel.
 * \return the capacity (ASYNC_CHAN_UNBOUNDED for an unbounded one), or 0 for NULL.
 */
ASYNC_EXTERN size_t async_chan_cap(async_chan_t *c);

/**
 * Frees a channel and any items still buffered.
 *
 * \param c  the channel; NULL is ignored.
 * \return 0, or -1 with `errno` EBUSY (sends or receives are pending; nothing
 *         is freed).
 */
ASYNC_EXTERN int async_chan_free(async_chan_t *c);

/* ---- resource pool ------------------------------------------------------------ */

/** An opaque pool of reusable costly objects (connections, handles). */
typedef struct async_respool async_respool_t;

/** Settings and callbacks of a resource pool. Zero-initialise, then set what you need. */
typedef struct async_respool_config {
    /** Creates one object; returns NULL with `errno` set on failure. Runs in
     * the acquiring task (or thread), or the pool's maintenance task; it may
     * await. Required. */
    void *(*create)(void *ctx);
    /** Destroys an object (closes the connection). May await. Required. */
    void (*destroy)(void *obj, void *ctx);
    /** Checks an idle object before it is handed out: 0 if usable, -1 if not
     * (it is then destroyed and another one is tried). May await. Optional. */
    int (*check)(void *obj, void *ctx);
    /** Passed to the callbacks. */
    void *ctx;
    /** The most objects alive at once, idle or in use (0: 10). */
    unsigned max_size;
    /** Idle objects the maintenance task keeps ready (0: none); at most max_size. */
    unsigned min_idle;
    /** Idle objects older than this are destroyed (beyond min_idle); 0: never. */
    int64_t idle_timeout_ms;
} async_respool_config_t;

/** Counters of a resource pool (see async_respool_stats()). */
typedef struct async_respool_stats {
    unsigned size;            /**< objects alive (idle + in use + being created) */
    unsigned idle;            /**< objects idle in the pool */
    unsigned in_use;          /**< objects acquired and not yet released */
    unsigned waiting;         /**< acquires waiting for an object */
    uint64_t acquired;        /**< successful acquires */
    uint64_t created;         /**< objects created */
    uint64_t destroyed;       /**< objects destroyed (broken, failed check, expired, freed) */
    uint64_t create_failures; /**< create callbacks that failed */
    uint64_t check_failures;  /**< health checks that failed */
    uint64_t broken;          /**< objects released as broken */
    uint64_t expired;         /**< idle objects destroyed for age */
    uint64_t timeouts;        /**< acquires that timed out */
} async_respool_stats_t;

/**
 * Creates a resource pool. If min_idle or idle_timeout_ms is set, a
 * maintenance task starts (the runtime with it).
 *
 * \param config  the settings (copied).
 * \return the pool, or NULL with `errno` EINVAL (`config` NULL, no create or
 *         destroy callback, min_idle above max_size) or ENOMEM.
 */
ASYNC_EXTERN async_respool_t *
async_respool_new(const async_respool_config_t *config) ASYNC_WARN_UNUSED;

/**
 * Acquires an object: an idle one (health-checked first when a check is
 * configured), a new one if the pool is below max_size, or else the next one
 * released, waiting in arrival order.
 *
 * Await it with async_await_ptr(). Do not free the future unawaited: the
 * object it may carry would be lost; cancel it and await it instead (a
 * cancelled acquire that got an object anyway returns it).
 *
 * \param p           the pool.
 * \param timeout_ms  how long to wait for an object; negative: no limit.
 * \return a future whose value is the object, or -1 (NULL from
 *         async_await_ptr()) with `errno` ETIMEDOUT, ECANCELED, EINVAL (`p`
 *         NULL) or the create callback's error; NULL with ENOMEM.
 */
ASYNC_EXTERN async_future_t *async_respool_acquire(async_respool_t *p,
                                                   int64_t timeout_ms) ASYNC_WARN_UNUSED;

/**
 * Gives back an acquired object.
 *
 * A healthy object goes to the pool (or straight to a waiting acquire); a
 * broken one (`broken` non-zero) is destroyed here, in the caller, and its
 * place freed for a new one.
 *
 * \param p       the pool.
 * \param obj     the object from async_respool_acquire().
 * \param broken  non-zero if the object must not be reused.
 * \return 0, or -1 with `errno` EINVAL (`p` or `obj` NULL, or no object is in use).
 */
ASYNC_EXTERN int async_respool_release(async_respool_t *p, void *obj, int broken);

/**
 * Reads the pool's counters.
 *
 * \param p   the pool.
 * \param st  receives the counters.
 * \return 0, or -1 with `errno` EINVAL.
 */
ASYNC_EXTERN int async_respool_stats(async_respool_t *p, async_respool_stats_t *st);

/**
 * Destroys the idle objects, stops the maintenance task and frees the pool.
 *
 * \param p  the pool; NULL is ignored.
 * \return 0, or -1 with `errno` EBUSY (objects in use or acquires pending;
 *         nothing is freed).
 *
 * Callable from a task or a plain thread (it waits for the maintenance task).
 */
ASYNC_EXTERN int async_respool_free(async_respool_t *p);

/** @} */

#ifdef __cplusplus
}
#endif
#endif
