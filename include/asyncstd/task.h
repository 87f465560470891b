/** \file
 * Tasks, the runtime, sleeping, waiting on any fd, task-local storage, task
 * groups and the blocking-offload pool. */
#ifndef ASYNCSTD_TASK_H
#define ASYNCSTD_TASK_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/select.h>
#include <time.h>

#include "common.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * \defgroup task Tasks and the runtime
 * Cheap stackful tasks on a pool of worker threads, each running a libuv loop.
 *
 * A task runs ordinary blocking-shaped C code; each `async_await()` inside it
 * suspends the task, not its worker. Tasks are cooperative: one runs until it
 * awaits, yields or returns. A task stays on the worker that first runs it.
 *
 * The runtime starts itself on first use; async_runtime_init() is only needed
 * to choose settings, and async_runtime_shutdown() ends it cleanly.
 * @{
 */

/** The function a task runs: its return value is the task future's value;
 * returning -1 reports the task's `errno` as the error. */
typedef intptr_t (*async_task_fn)(void *arg);

/** An opaque handle to a running task (see async_self()). */
typedef struct async_task async_task_t;

/** Options for async_spawn_opts(). Zero-initialise, then set what you need. */
typedef struct async_spawn_opts {
    /** Stack size in bytes; 0 takes the runtime's default (256 KiB unless
     * configured). Rounded up to whole pages; at least 16 KiB. Stacks are
     * committed lazily, so only the pages a task touches cost memory. */
    size_t stack_size;
    /** A name for messages and debugging (the first 15 bytes are kept), or NULL. */
    const char *name;
    /** The worker to run on, counted from 1; 0 lets the runtime choose. A pinned
     * task is never moved to another worker. Must not exceed async_worker_count(). */
    unsigned worker;
} async_spawn_opts_t;

/** Runtime settings for async_runtime_init(). A zero field takes its
 * environment variable, then the built-in default. A variable that is not a
 * number in range (`ASYNCSTD_THREADS=abc`, `=0`) is named in one message on
 * stderr, once per process, and the default is used instead. */
typedef struct async_config {
    /** Worker threads (`ASYNCSTD_THREADS`; default: the number of available CPUs). */
    unsigned threads;
    /** Most threads of the blocking-offload pool (`ASYNCSTD_POOL_THREADS`; default 64). */
    unsigned pool_threads;
    /** Pool threads kept for file operations, which user blocking jobs may never
     * take (`ASYNCSTD_POOL_RESERVED`; default 4, and less than pool_threads). */
    unsigned pool_reserved;
    /** Default task stack size in bytes (`ASYNCSTD_STACK_SIZE`; default 256 KiB). */
    size_t stack_size;
    /** The clock the library's timers run on: ASYNC_CLOCK_REAL,
     * ASYNC_CLOCK_VIRTUAL or ASYNC_CLOCK_MANUAL (`ASYNCSTD_CLOCK=real`,
     * `virtual` or `manual`; default real). The virtual clocks are for tests:
     * see async_clock_advance(). */
    int clock;
} async_config_t;

/** async_config_t.clock: timers wait for real time (CLOCK_MONOTONIC). */
#define ASYNC_CLOCK_REAL 1
/** async_config_t.clock: a virtual clock that jumps to the next timer's
 * deadline whenever only timers can make progress (see async_clock_advance()). */
#define ASYNC_CLOCK_VIRTUAL 2
/** async_config_t.clock: a virtual clock that moves only through
 * async_clock_advance() (and while async_runtime_shutdown() waits for tasks). */
#define ASYNC_CLOCK_MANUAL 3

/** The most task-local keys that may exist at once. */
#define ASYNC_KEYS_MAX 256

/** A task-local storage key (see async_key_create()). */
typedef unsigned async_key_t;

/**
 * Starts the runtime with chosen settings. Optional: the runtime otherwise
 * starts on first use with the defaults and the `ASYNCSTD_*` environment.
 *
 * \param config  the settings, or NULL for the environment and defaults.
 * \return 0, or -1 with `errno` EBUSY (already running), EINVAL (a field of
 *         `config` out of range, such as more than 1024 workers, pool_reserved
 *         not below pool_threads or an unknown clock; the environment never
 *         causes it), ENOMEM or
 *         EAGAIN (threads could not be created).
 *
 * Call from a plain thread, not from a task.
 */
ASYNC_EXTERN int async_runtime_init(const async_config_t *config);

/**
 * Stops the runtime and frees everything it holds.
 *
 * Every task still alive is cancelled (its awaits fail with ECANCELED) and
 * allowed to finish; pending timers and queued blocking jobs are cancelled;
 * running blocking jobs are waited for. Futures the caller still holds stay
 * valid (settled) and must still be awaited or freed. The runtime may be
 * started again afterwards.
 *
 * \return 0, or -1 with `errno` EPERM (called from a task or a pool thread)
 *         or EINVAL (the runtime is not running).
 */
ASYNC_EXTERN int async_runtime_shutdown(void);

/**
 * The number of worker threads of the running runtime (starting it if needed).
 *
 * \return the count, or -1 with `errno` set when the runtime could not start.
 */
ASYNC_EXTERN int async_worker_count(void);

/**
 * The worker the caller runs on, counted from 1.
 *
 * \return the worker's number, or 0 on a thread that is not a worker.
 */
ASYNC_EXTERN unsigned async_worker_id(void);

/**
 * Runs `fn(arg)` in a new task; the future is the task.
 *
 * Await the future to join the task (its value is what `fn` returned, or -1
 * with the task's `errno`), free it to detach the task, cancel it to ask the
 * task to stop: like a deferred pthread_cancel(), the task's pending await and
 * every later one then fail with ECANCELED, at the cancellation points of
 * pthreads(7): I/O, sleeps, joins, condition, semaphore and channel waits, but
 * not lock waits (async_mutex_lock(), the rwlock locks), which complete. A task
 * cancelled before it started never runs; async_setcancelstate() holds a
 * cancellation back. Callable from a task (the new task starts on the same
 * worker, and may be taken by an idle one) or any plain thread.
 *
 * \param fn   the function to run; must not be NULL.
 * \param arg  passed to `fn`.
 * \return the task's future; NULL with `errno` ENOMEM, or a future already
 *         failed with EINVAL (`fn` NULL).
 *
 * \code
 * static intptr_t work(void *arg) { return compute(arg); }
 * intptr_t v = async_await(async_spawn(work, &input));
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_spawn(async_task_fn fn, void *arg) ASYNC_WARN_UNUSED;

/**
 * async_spawn() with options: stack size, name, worker.
 *
 * \param fn    the function to run; must not be NULL.
 * \param arg   passed to `fn`.
 * \param opts  the options, or NULL for the defaults.
 * \return as async_spawn(); a future failed with EINVAL for a worker number
 *         above async_worker_count() or a stack size over 1 GiB.
 */
ASYNC_EXTERN async_future_t *async_spawn_opts(async_task_fn fn, void *arg,
                                              const async_spawn_opts_t *opts) ASYNC_WARN_UNUSED;

/**
 * Runs the blocking function `fn(arg)` on the blocking-offload pool.
 *
 * Use it for calls that would stall a worker: CPU-heavy work, or a library
 * with only a blocking API. The future's value is what `fn` returned (-1
 * reports the pool thread's `errno`). Cancelling it removes a job that has not
 * started (ECANCELED); a started job runs to the end. User jobs never take the
 * pool threads reserved for file operations (see async_config_t).
 *
 * \param fn   the function; must not be NULL.
 * \param arg  passed to `fn`.
 * \return the job's future; NULL with `errno` ENOMEM, or a future failed with
 *         EINVAL (`fn` NULL) or EAGAIN (the pool has no thread yet and cannot
 *         start one: RLIMIT_NPROC or RLIMIT_AS reached; a later call tries
 *         again). While at least one pool thread exists or is being started,
 *         a job that finds no thread free waits for one instead.
 */
ASYNC_EXTERN async_future_t *async_spawn_blocking(async_task_fn fn, void *arg) ASYNC_WARN_UNUSED;

/**
 * The calling task.
 *
 * \return the task, or NULL on a thread outside any task.
 */
ASYNC_EXTERN async_task_t *async_self(void);

/**
 * A task's name, as given in async_spawn_opts_t.
 *
 * \param task  the task (from async_self()), or NULL for the calling task.
 * \return the name, "" for an unnamed task, or NULL outside any task.
 */
ASYNC_EXTERN const char *async_task_name(const async_task_t *task);

/**
 * Async equivalent of pthread_testcancel(): reports whether the calling task
 * has been asked to stop, for loops that do not await.
 *
 * \return 0, or -1 with `errno` ECANCELED when the task has been cancelled.
 *         Outside a task, always 0.
 */
ASYNC_EXTERN int async_testcancel(void);

/** async_setcancelstate(): cancellation requests act at cancellation points. */
#define ASYNC_CANCEL_ENABLE 0
/** async_setcancelstate(): cancellation requests wait until enabled again. */
#define ASYNC_CANCEL_DISABLE 1

/**
 * Async equivalent of pthread_setcancelstate(3).
 *
 * With ASYNC_CANCEL_DISABLE, a cancellation of the calling task (async_cancel()
 * on its future, a group's cancel, runtime shutdown) stays pending: no await
 * fails with ECANCELED for it and async_testcancel() reports 0. With
 * ASYNC_CANCEL_ENABLE again, a pending request acts at the next cancellation
 * point (an await that is one, async_testcancel(), async_yield()), as with
 * pthreads. Use it around a section that must not be interrupted halfway, such
 * as a write and the bookkeeping that goes with it. A task starts enabled.
 *
 * Cancelling one future (async_cancel() on it, async_await_timeout()) is not
 * held back: that is not the task's cancellation.
 *
 * \param state     ASYNC_CANCEL_ENABLE or ASYNC_CANCEL_DISABLE.
 * \param oldstate  if not NULL, receives the previous state.
 * \return 0, or -1 with `errno` EINVAL (another `state`). Outside a task, where
 *         nothing is cancelled, it succeeds, has no effect and reports
 *         ASYNC_CANCEL_ENABLE.
 *
 * \code
 * int old;
 * async_setcancelstate(ASYNC_CANCEL_DISABLE, &old);
 * async_await(async_write(log_fd, rec, len)); // completes even if cancelled now
 * index_add(rec);
 * async_setcancelstate(old, NULL);
 * \endcode
 */
ASYNC_EXTERN int async_setcancelstate(int state, int *oldstate);

/**
 * Async equivalent of sched_yield(): lets the other ready tasks and the
 * worker's I/O run, then continues.
 *
 * \return 0, or -1 with `errno` ECANCELED in a cancelled task. Outside a task
 *         it calls sched_yield().
 */
ASYNC_EXTERN int async_yield(void);

/**
 * Async equivalent of sleep(3).
 *
 * Every sleep is cancellable. Durations longer than about 292 years (more
 * than any argument of async_sleep() or async_usleep() can say, but not of
 * async_nanosleep()) are clamped to that, never wrapped: a sleep for
 * `UINT_MAX` seconds waits until it is cancelled, in practice.
 *
 * \param seconds  how long to sleep.
 * \return a future with value 0 after the time has passed, or -1/ECANCELED.
 */
ASYNC_EXTERN async_future_t *async_sleep(unsigned seconds) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of usleep(3).
 *
 * \param usec  microseconds to sleep (timers have millisecond resolution:
 *              rounded up to the next millisecond).
 * \return a future with value 0, or -1/ECANCELED.
 */
ASYNC_EXTERN async_future_t *async_usleep(unsigned long usec) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of nanosleep(2).
 *
 * \param req  the time to sleep (rounded up to the next millisecond; clamped
 *             to about 292 years, see async_sleep()).
 * \param rem  if not NULL, receives the time left when the sleep is cancelled,
 *             and must stay valid until the future settles; a sleep that
 *             completes leaves it as it was, as nanosleep(2) does.
 * \return a future with value 0, or -1 with EFAULT (`req` NULL), EINVAL
 *         (tv_nsec outside 0..999999999, or tv_sec negative) or ECANCELED.
 */
ASYNC_EXTERN async_future_t *async_nanosleep(const struct timespec *req,
                                             struct timespec *rem) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of clock_nanosleep(2): sleeps for `req` measured on
 * `clock`, or with TIMER_ABSTIME in `flags`, until `clock` reads `req`.
 *
 * The clocks are those the kernel sleeps on: CLOCK_REALTIME, CLOCK_MONOTONIC,
 * CLOCK_BOOTTIME, CLOCK_TAI, CLOCK_PROCESS_CPUTIME_ID and the CPU clocks of
 * clock_getcpuclockid(3) and pthread_getcpuclockid(3) (not the calling
 * thread's own: a task's thread is its worker); the kernel is asked which, so
 * the errors, and which comes first, are its own. As clock_nanosleep(2): a relative sleep on a wall
 * clock is a duration that setting the clock does not change; an absolute one
 * whose time has passed settles at once; other bits of `flags` are ignored.
 *
 * How it waits: a relative sleep on a wall clock is async_nanosleep(). An
 * absolute one sleeps the time left on the monotonic clock, then reads
 * `clock` and sleeps on while it is early, so setting the clock back makes it
 * longer; setting it forward is seen only when that first sleep ends. A
 * CPU-time clock is read the same way, after sleeping what is left divided by
 * the number of CPUs (the fastest the clock can move) and at least 1 ms each
 * time: a sleep on an idle process's CPU clock wakes its worker now and then
 * and never ends, as in the kernel. A CPU clock that can no longer be read (a
 * reaped process's) ends the sleep with that read's errno, EINVAL, where the
 * kernel would sleep on. CLOCK_BOOTTIME counts time the machine spent
 * suspended only in an absolute sleep, and the alarm clocks, where the kernel
 * lets the caller use them, do not wake a suspended machine. Under a virtual clock
 * (async_clock_advance()) the time left on `clock` at the call passes on the
 * virtual clock.
 *
 * Deviation: the future's value is 0 or -1 with `errno`, as every call here,
 * where clock_nanosleep(2) returns the error number.
 *
 * \param clock  the clock.
 * \param flags  TIMER_ABSTIME, or 0 for a relative sleep.
 * \param req    the time to sleep, or with TIMER_ABSTIME the time to wake;
 *               millisecond resolution: a sleep is never shorter.
 * \param rem    as async_nanosleep(), for relative sleeps; an absolute sleep
 *               never writes it. On a CPU clock it is the CPU time left.
 * \return a future with value 0, or -1 with `errno` EINVAL (an unknown clock,
 *         the calling thread's own CPU clock, tv_nsec outside 0..999999999 or
 *         tv_sec negative), ENOTSUP (a clock that cannot be slept on, such as
 *         CLOCK_MONOTONIC_RAW or the coarse clocks; the alarm clocks on a
 *         machine without a wake-up alarm), EPERM (the alarm clocks without
 *         CAP_WAKE_ALARM), EFAULT (`req` NULL) or ECANCELED.
 */
ASYNC_EXTERN async_future_t *async_clock_nanosleep(clockid_t clock, int flags,
                                                   const struct timespec *req,
                                                   struct timespec *rem) ASYNC_WARN_UNUSED;

/**
 * The runtime's monotonic clock, in nanoseconds: the time every timer of the
 * library (sleeps, timeouts) is measured on.
 *
 * Under the real clock it reads CLOCK_MONOTONIC (as clock_gettime(2)), from an
 * unspecified origin. Under a virtual clock (async_config_t.clock) it reads the
 * virtual time, which starts at the real reading when the runtime starts and
 * then moves only as async_clock_advance() describes; once the runtime has
 * shut down, it reads the real clock again.
 *
 * \return the time in nanoseconds. Never fails; does not start the runtime.
 *         Callable from any thread.
 */
ASYNC_EXTERN uint64_t async_clock_now(void);

/**
 * Moves a virtual clock forward by `ns` nanoseconds, for tests of code that
 * sleeps or times out.
 *
 * Under a virtual clock (async_config_t.clock, `ASYNCSTD_CLOCK=virtual` or
 * `manual`) timers do not wait for real time. The clock moves only when
 * nothing but a timer can make progress: every worker has nothing to run, no
 * blocking-pool job is queued or running, and no task has run since the
 * workers last looked at their sockets. It then jumps to the earliest
 * deadline and fires the timers due then, in the order they were made; the
 * tasks they wake run, and only when all is idle again does it go on to the
 * next deadline. So timers fire in deadline order, across workers too, and a
 * task woken at +1 s that sleeps 1 s more wakes at +2 s, as in real time.
 *
 * This call asks for such moves up to `now + ns` (async_clock_now()), then
 * sets the clock there; the future settles once it has, with the runtime idle.
 * `ns` 0 settles when the runtime is idle, firing nothing.
 *
 * When the clock moves by itself: with ASYNC_CLOCK_VIRTUAL, whenever it may
 * move (above) and a plain thread is blocked in an await (async_await() in
 * main), or async_runtime_shutdown() waits for tasks, it jumps to the next
 * deadline, as Tokio's paused time does; a plain thread that is running is
 * invisible to the runtime and may be about to spawn or settle something, so
 * the clock stands still meanwhile. With ASYNC_CLOCK_MANUAL it moves only
 * through this call (and during shutdown).
 *
 * What does not hold the clock back: fds waited on for readiness (a socket
 * awaited by a task does not stop the clock; data sent by a task in the same
 * process is seen before the clock moves, data from outside may come after),
 * child processes, signals, and user futures settled by other threads. A task
 * that never awaits holds it for ever. Absolute deadlines (async_cond_timedwait(),
 * async_sem_timedwait(), ...) are turned into a duration against the real
 * CLOCK_REALTIME or CLOCK_MONOTONIC at the call; the duration then passes on
 * the virtual clock.
 *
 * \param ns  how far to move, in nanoseconds (timers have millisecond
 *            resolution: a timer of d ms is due at d * 1,000,000 ns).
 * \return a future with value 0 once the clock has moved, or -1 with `errno`
 *         EINVAL (the runtime's clock is real), EBUSY (another
 *         async_clock_advance() is in progress) or ECANCELED (cancelled, or
 *         the runtime shut down first; the clock stays where it got to). NULL
 *         with ENOMEM. Callable from a task or a plain thread; it starts the
 *         runtime if needed.
 *
 * \code
 * // ASYNCSTD_CLOCK=virtual: an hour passes at once
 * uint64_t t0 = async_clock_now();
 * async_await(async_sleep(3600));          // main is blocked: the clock jumps
 * assert(async_clock_now() - t0 == 3600000000000ull);
 * async_future_t *s = async_sleep(10);     // main runs: the clock stands still
 * async_await(async_clock_advance(5000000000ull)); // +5 s: s has not fired
 * assert(!async_future_settled(s));
 * async_await(s);                          // jumps the other 5 s
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_clock_advance(uint64_t ns) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of poll(2): waits until one of the fds is ready, or the
 * timeout passes.
 *
 * Same arguments and results as poll(2): `revents` of every entry is filled
 * in (POLLIN, POLLOUT, POLLPRI, POLLRDHUP, ... as asked in `events`, and
 * POLLERR, POLLHUP and POLLNVAL whether asked or not: POLLNVAL for an fd that
 * is not open); an entry whose fd is negative is ignored and gets 0.
 * It works on any fd poll(2) accepts, including fds the library never
 * created (a C library's own non-blocking sockets, pipes, eventfds, timerfds),
 * and an fd may be waited on here while the library's own reads and writes
 * wait on it too: the wait takes nothing from the fd.
 *
 * What is ready at the call costs one poll(2) on the calling thread; a wait
 * parks on the calling task's worker (a plain thread's on the runtime's
 * waiter) with no thread of its own, and the fd table is checked again as a
 * whole when one fd becomes ready, so `revents` says all that is ready then.
 * An fd that epoll(7) cannot watch (a regular file) is ready for reading and
 * writing at once, as with poll(2); waiting on it for anything else lasts
 * until another fd is ready or the timeout passes. An fd closed with
 * async_close() while it is waited on ends the wait with POLLNVAL for it.
 * Closing it with plain close(2) during the wait is the caller's bug, as with
 * every readiness-based runtime.
 *
 * Timers have millisecond resolution: the wait lasts at least `timeout`.
 * Unlike poll(2), a signal never interrupts the wait (no EINTR).
 *
 * \param fds      the entries; the array must stay valid until the future
 *                 settles (`revents` is written when it does).
 * \param nfds     how many entries; 0 with a timeout is a sleep.
 * \param timeout  milliseconds to wait at most; a negative value waits
 *                 without limit, 0 only looks.
 * \return a future with the number of entries whose `revents` is not 0, 0
 *         when the timeout passed first, or -1 with `errno` EFAULT (`fds`
 *         NULL or unreadable with `nfds` > 0), EINVAL (`nfds` over
 *         RLIMIT_NOFILE), ENOMEM, or ECANCELED (cancelled: async_cancel(), a
 *         cancelled task, async_await_timeout(); revents are then not filled
 *         in). NULL with ENOMEM.
 *
 * Callable from a task or a plain thread.
 *
 * \code
 * struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
 * int n = (int)async_await(async_poll(p, 2, 5000));
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_poll(struct pollfd *fds, nfds_t nfds,
                                        int timeout) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of select(2): waits until an fd of the sets is ready, or
 * the timeout passes.
 *
 * Same arguments and results as Linux's select(2): on success each set is
 * rewritten to hold the fds ready in it, and the value counts the bits set
 * in all three; `timeout`, when not NULL, is rewritten with the time left
 * (to the millisecond), as Linux does. An fd in `readfds` is ready for
 * POLLIN or at the end of stream, hang-up or error; in `writefds` for
 * POLLOUT or an error; in `exceptfds` for POLLPRI. `nfds` may pass
 * FD_SETSIZE when the sets are that large, as with select(2) (glibc's
 * FD_SET() and FD_ISSET() refuse such fds under _FORTIFY_SOURCE).
 *
 * What is ready at the call costs one select(2) on the calling thread, as
 * does the last look when the wait ends, so which fds are ready, and every
 * error, are the kernel's. The wait between is async_poll()'s, with its rules
 * (an fd closed by async_close() meanwhile, regular files, millisecond
 * timers, no EINTR). For pselect(2)'s signal mask, wait for the signals with
 * async_sigwait() in a task of their own.
 *
 * \param nfds       the highest fd in any set, plus 1.
 * \param readfds    fds to wait on for reading, or NULL.
 * \param writefds   fds to wait on for writing, or NULL.
 * \param exceptfds  fds to wait on for exceptional conditions (POLLPRI), or
 *                   NULL.
 * \param timeout    how long to wait at most, or NULL for no limit; {0, 0}
 *                   only looks.
 *
 * The sets and `timeout` must stay valid until the future settles; they are
 * written when it does. On failure the sets are as given.
 *
 * \return a future with the number of ready fds (counted once per set), 0
 *         when the timeout passed first (the sets then empty), or -1 with
 *         `errno` EBADF (an fd in a set is not open, also when it was closed
 *         during the wait), EINVAL (`nfds` negative, or a negative field
 *         in `timeout`, tv_usec read as 32 bits as glibc reads it; whole
 *         seconds in tv_usec are carried into tv_sec), ENOMEM or ECANCELED.
 *         NULL with ENOMEM.
 *
 * Callable from a task or a plain thread.
 */
ASYNC_EXTERN async_future_t *async_select(int nfds, fd_set *readfds, fd_set *writefds,
                                          fd_set *exceptfds,
                                          struct timeval *timeout) ASYNC_WARN_UNUSED;

/**
 * Waits until one fd is ready: async_poll() of one entry, giving its
 * `revents`. The call for wrapping a C library's non-blocking API (OpenSSL's
 * SSL_ERROR_WANT_READ, libpq's PQsocket(), c-ares, libcurl's multi
 * interface): wait for what it asks, then call it again.
 *
 * \param fd          the fd; any kind async_poll() accepts.
 * \param events      what to wait for, as poll(2)'s `events` (POLLIN,
 *                    POLLOUT, both, POLLPRI, ...).
 * \param timeout_ms  milliseconds to wait at most; negative: no limit; 0: only look.
 * \return a future with the fd's `revents` (not 0; POLLNVAL when fd is not
 *         open, POLLERR or POLLHUP whether asked or not), 0 when the timeout
 *         passed first, or -1 with `errno` EBADF (`fd` negative, where poll(2)
 *         would ignore the entry), ENOMEM or ECANCELED. NULL with ENOMEM.
 *
 * Callable from a task or a plain thread.
 *
 * \code
 * for (;;) {
 *     int n = SSL_read(ssl, buf, sizeof buf);
 *     if (n > 0) break;
 *     int e = SSL_get_error(ssl, n);
 *     if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) return -1;
 *     if (async_await(async_fd_wait(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, -1)) < 0)
 *         return -1;
 * }
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_fd_wait(int fd, short events, int timeout_ms) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of pthread_key_create(): a key for task-local values.
 *
 * Every task sees its own value for a key, NULL until it sets one. When a task
 * ends, `destructor` (if not NULL) is called with each non-NULL value. On a plain
 * thread the value is per thread, and destructors are not called.
 *
 * \param key         receives the key.
 * \param destructor  called with a task's non-NULL value when the task ends, or NULL.
 * \return 0, or -1 with `errno` EINVAL (`key` NULL) or EAGAIN (ASYNC_KEYS_MAX keys exist).
 */
ASYNC_EXTERN int async_key_create(async_key_t *key, void (*destructor)(void *));

/**
 * Async equivalent of pthread_key_delete(). Values still set are not destroyed.
 *
 * \param key  the key.
 * \return 0, or -1 with `errno` EINVAL (not a live key).
 */
ASYNC_EXTERN int async_key_delete(async_key_t key);

/**
 * Async equivalent of pthread_getspecific(): the calling task's value for `key`.
 *
 * \param key  the key.
 * \return the value, or NULL (never set, or not a live key).
 */
ASYNC_EXTERN void *async_getspecific(async_key_t key);

/**
 * Async equivalent of pthread_setspecific(): sets the calling task's value for `key`.
 *
 * \param key    the key.
 * \param value  the value.
 * \return 0, or -1 with `errno` EINVAL (not a live key) or ENOMEM.
 */
ASYNC_EXTERN int async_setspecific(async_key_t key, const void *value);

/**
 * \defgroup group Task groups
 * Structured concurrency: spawn tasks into a group, await them all, and let
 * the first failure cancel the rest (Tokio's JoinSet, Trio's nursery).
 * A group may be used from any thread.
 *
 * **When a group is the wrong tool.** A group is for tasks that succeed or
 * fail together: the parts of one request, a fan-out whose answer needs every
 * part. A server's connections are independent: in a group, one connection
 * whose handler fails would cancel every other connection. Serve them with
 * async_tcp_serve() (or detach each one with async_future_free()) instead.
 * @{
 */

/** An opaque task group. */
typedef struct async_group async_group_t;

/**
 * Creates an empty task group.
 *
 * \return the group, or NULL with `errno` ENOMEM.
 */
ASYNC_EXTERN async_group_t *async_group_new(void) ASYNC_WARN_UNUSED;

/**
 * Spawns `fn(arg)` as a task of the group.
 *
 * When a task of the group returns -1, the group records its `errno` (the
 * first failure only) and cancels every other task of the group.
 *
 * \param g     the group.
 * \param fn    the function to run.
 * \param arg   passed to `fn`.
 * \param opts  spawn options, or NULL.
 * \return 0, or -1 with `errno` EINVAL (`g` or `fn` NULL, bad options),
 *         ECANCELED (the group has been cancelled; nothing is spawned) or ENOMEM.
 */
ASYNC_EXTERN int async_group_spawn(async_group_t *g, async_task_fn fn, void *arg,
                                   const async_spawn_opts_t *opts);

/**
 * Waits for every task of the group, including tasks spawned while waiting.
 *
 * \param g  the group.
 * \return a future with value 0 when every task succeeded, or -1 with the first
 *         failure's `errno` (ECANCELED after async_group_cancel()); NULL with
 *         ENOMEM, or a future failed with EINVAL (`g` NULL) or EBUSY (another
 *         wait on this group is pending).
 */
ASYNC_EXTERN async_future_t *async_group_wait(async_group_t *g) ASYNC_WARN_UNUSED;

/**
 * Cancels every task of the group and refuses new ones. NULL is ignored.
 *
 * \param g  the group.
 */
ASYNC_EXTERN void async_group_cancel(async_group_t *g);

/**
 * Frees a group. Tasks still running are cancelled and finish on their own.
 * NULL is ignored.
 *
 * \param g  the group (consumed).
 */
ASYNC_EXTERN void async_group_free(async_group_t *g);

/** @} */
/** @} */

#ifdef __cplusplus
}
#endif
#endif
