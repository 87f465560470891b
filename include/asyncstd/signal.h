/** \file
 * Signals as futures: sigwait(3), sigwaitinfo(2) and sigtimedwait(2). */
#ifndef ASYNCSTD_SIGNAL_H
#define ASYNCSTD_SIGNAL_H

#include <signal.h>
#ifdef __GLIBC__
/* sigset_t and siginfo_t are POSIX, not ISO C: named here so that the header
 * stands alone in strict ISO C (glibc declares them only for POSIX). */
#include <bits/types/siginfo_t.h>
#include <bits/types/sigset_t.h>
#endif

#include "common.h"
#include "future.h"

#ifdef __cplusplus
extern "C" {
#endif

struct timespec;

/**
 * \defgroup signal Signals
 * Awaiting signals, sigwait-shaped, from any task on any worker and from
 * plain threads: the way a server stops cleanly on SIGTERM.
 *
 * \code
 * sigset_t set;
 * sigemptyset(&set);
 * sigaddset(&set, SIGINT);
 * sigaddset(&set, SIGTERM);
 * int sig;
 * if (async_await(async_sigwait(&set, &sig)) == 0)
 *     stop_serving(); // close the listening socket, cancel the connections' group
 * \endcode
 *
 * **How a signal is caught.** From the first wait on a signal on (any of
 * these calls with it in its set), the library catches it for the rest of
 * the runtime's life, with a handler of its own installed with sigaction(2)
 * on whichever thread the kernel picks, and every worker thread unblocks it.
 * No thread has to block it: unlike sigwait(3), the signal need not be
 * blocked anywhere, and one that every thread of the application blocks
 * still reaches a worker. async_runtime_shutdown() puts back the disposition
 * that was there before.
 *
 * **A signal nobody is waiting for** is kept pending, from the first wait on
 * it on, as the kernel keeps a blocked standard signal: the next wait whose
 * set holds it takes it at once. Arrivals while it is pending are merged into
 * it (coalesced), real-time signals too (their queue of values is not kept:
 * a deviation), and the siginfo of the first is the one reported. A signal is
 * taken by one wait only; with several waiting, the oldest wait of the
 * worker that looks first gets it. Before the first wait, a signal has its
 * ordinary disposition (SIGTERM's default still ends the process), and what
 * the library caught but nobody took is dropped at shutdown.
 *
 * **Handlers of the application's own.** The library's handler replaces the
 * disposition the signal had (a handler, SIG_IGN or SIG_DFL) from the first
 * wait on, as a signal awaited with sigwait(3) has no handler run for it;
 * install no handler of your own for a signal you await afterwards (it would
 * replace the library's, and the waits would no longer see the signal). For
 * SIGCHLD, SA_NOCLDSTOP and SA_NOCLDWAIT are kept as they were. Signals you
 * do not await are left entirely to you.
 *
 * **SIGCHLD** is caught only when a wait asks for it, and then only observed:
 * the library reaps no child, so a program that calls waitpid(2) on the
 * children it forks keeps working, whether or not it also awaits SIGCHLD.
 *
 * **Threads.** A signal sent to the process (kill(2)) reaches a thread that
 * does not block it: the workers never block one the library catches. A
 * signal sent to one thread (raise(3), pthread_kill(3)) is caught when that
 * thread does not block it: in a task, always; on a thread of yours, only if
 * you left it unblocked there; in a job of async_spawn_blocking(), only if
 * that pool thread does not block it (a pool thread inherits the mask of the
 * thread whose job made it start). Catching runs the handler for a moment on the thread
 * it interrupts, as any handler does: system calls are restarted
 * (SA_RESTART), except those POSIX never restarts (nanosleep(2), poll(2),
 * ...), which fail with EINTR there; asyncstd's own waits never do.
 *
 * **Not awaitable:** SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP and SIGSYS (a
 * set holding one fails with EINVAL, where sigwait(3) accepts them: a fault
 * cannot be handled by returning); SIGKILL and SIGSTOP in a set are ignored,
 * as the kernel ignores them.
 *
 * **Not interrupted:** unlike sigwaitinfo(2), a wait never fails with EINTR
 * when a handler of the application's runs; it ends with a signal of its
 * set, its timeout or cancellation (async_cancel(), a cancelled task,
 * async_await_timeout()), which takes nothing: a signal arriving after a
 * wait was cancelled stays pending for the next.
 * @{
 */

/**
 * Async equivalent of sigwait(3): waits for a signal of `set` and takes it.
 *
 * \param set  the signals to wait for (see \ref signal for which are
 *             allowed); read when called.
 * \param sig  receives the signal's number; must stay valid until the future
 *             settles.
 * \return a future with value 0 and `*sig` set, or -1 with `errno` EFAULT
 *         (`set` or `sig` NULL), EINVAL (`set` holds a fault signal), ENOMEM,
 *         or ECANCELED. NULL with ENOMEM. Unlike sigwait(3), which returns an
 *         error number, failures are -1 and `errno`, as everywhere in asyncstd.
 *
 * Callable from a task or a plain thread.
 */
ASYNC_EXTERN async_future_t *async_sigwait(const sigset_t *set, int *sig) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of sigwaitinfo(2): waits for a signal of `set`, takes it
 * and reports its siginfo.
 *
 * \param set   the signals to wait for; read when called.
 * \param info  receives the siginfo (of the first arrival, when several were
 *              merged), or NULL; must stay valid until the future settles.
 *              A raise() or pthread_kill() shows as `SI_USER`, not the
 *              kernel's `SI_TKILL`, as glibc's sigwaitinfo(2) reports it.
 * \return a future with the signal's number, or -1 with `errno` EFAULT (`set`
 *         NULL), EINVAL (`set` holds a fault signal), ENOMEM or ECANCELED.
 *         NULL with ENOMEM. Never EINTR (see \ref signal).
 *
 * Callable from a task or a plain thread.
 */
ASYNC_EXTERN async_future_t *async_sigwaitinfo(const sigset_t *set,
                                               siginfo_t *info) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of sigtimedwait(2): async_sigwaitinfo() for at most
 * `timeout`.
 *
 * \param set      the signals to wait for; read when called.
 * \param info     receives the siginfo, or NULL; must stay valid until the
 *                 future settles.
 * \param timeout  how long to wait (rounded up to whole milliseconds; a zero
 *                 timeout only looks), or NULL to wait without limit; read
 *                 when called.
 * \return a future with the signal's number, or -1 with `errno` EAGAIN (no
 *         signal of `set` came in time, as sigtimedwait(2)), EINVAL (tv_nsec
 *         outside 0..999999999 or tv_sec negative, or `set` holds a fault
 *         signal), EFAULT (`set` NULL), ENOMEM or ECANCELED. NULL with ENOMEM.
 *         A signal taken as the timeout passes is reported, never lost.
 *
 * Callable from a task or a plain thread.
 */
ASYNC_EXTERN async_future_t *async_sigtimedwait(const sigset_t *set, siginfo_t *info,
                                                const struct timespec *timeout) ASYNC_WARN_UNUSED;

/** @} */

#ifdef __cplusplus
}
#endif
#endif
