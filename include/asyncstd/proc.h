/** \file
 * Child processes: posix_spawn(3), waitpid(2), waitid(2) and system(3) as
 * futures. */
#ifndef ASYNCSTD_PROC_H
#define ASYNCSTD_PROC_H

#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "common.h"
#include "future.h"
#include "stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * \defgroup proc Processes
 * Starting child processes and waiting for them without holding a thread.
 *
 * **How a wait waits.** A wait for one child (`pid` > 0, or `P_PID`) holds a
 * pidfd for it (pidfd_open(2)) and sleeps on the worker's event loop until
 * the kernel reports the exit; it occupies no worker and no pool thread
 * while the child runs. The child is reaped by the waitpid(2)/waitid(2) call
 * the wait makes once it has exited, exactly as a blocking wait would.
 * Stops and continues (`WUNTRACED`, `WCONTINUED`) make no pidfd event, and a
 * wait for any child or a process group (`pid` <= 0, `P_ALL`, `P_PGID`) has
 * no fd to sleep on: those waits look with `WNOHANG` at intervals that grow
 * from 1 ms to 50 ms, so such a change is seen up to 50 ms late.
 *
 * **No SIGCHLD.** The library installs no signal handler and never reaps a
 * child the application did not ask about: a program that forks children of
 * its own and reaps them with plain waitpid(2), or handles SIGCHLD itself,
 * keeps working. As with libc's system(3), a plain `waitpid(-1, ...)` in the
 * application can reap a child that async_system() is waiting for; that
 * wait then fails with ECHILD.
 *
 * **Cancellation** of a wait stops waiting and leaves the child running and
 * waitable. A spawn cancelled before a pool thread took it settles with
 * ECANCELED and starts nothing; once started it completes (the child exists
 * and its pid is stored).
 * @{
 */

/**
 * Starts a child process, like posix_spawn(3): the same arguments, file
 * actions and attributes. glibc's posix_spawn holds its thread until the
 * child has executed `path` (about 0.5 ms); it runs on a pool thread, so the
 * caller's worker goes on running tasks meanwhile. The arguments (strings,
 * vectors, file actions, attributes) must stay valid until the future
 * settles, as a buffer given to a read must.
 *
 * \param pid          where the child's pid is stored (may be NULL).
 * \param path         the program's path (no `PATH` search).
 * \param file_actions posix_spawn_file_actions_t, or NULL.
 * \param attrp        posix_spawnattr_t, or NULL.
 * \param argv         the argument vector, NULL-terminated.
 * \param envp         the environment, NULL-terminated.
 * \return a future with value 0, or -1 with `errno` set to the error
 *         posix_spawn(3) returns (ENOENT, EACCES, ENOEXEC, EAGAIN, ENOMEM,
 *         EINVAL, ...; EINVAL too for a NULL `path`, `argv` or `envp`, where
 *         glibc would crash), or ECANCELED; the error number is in `errno`
 *         rather than the result, following the library's -1/`errno` rule.
 *         NULL with ENOMEM.
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_posix_spawn(pid_t *pid, const char *path,
                                               const posix_spawn_file_actions_t *file_actions,
                                               const posix_spawnattr_t *attrp, char *const argv[],
                                               char *const envp[]) ASYNC_WARN_UNUSED;

/**
 * As async_posix_spawn(), but `file` is searched for in `PATH` when it has no
 * slash, like posix_spawnp(3).
 *
 * \param pid          where the child's pid is stored (may be NULL).
 * \param file         the program's name, or a path when it holds a slash.
 * \param file_actions posix_spawn_file_actions_t, or NULL.
 * \param attrp        posix_spawnattr_t, or NULL.
 * \param argv         the argument vector, NULL-terminated.
 * \param envp         the environment, NULL-terminated.
 * \return as async_posix_spawn().
 */
ASYNC_EXTERN async_future_t *async_posix_spawnp(pid_t *pid, const char *file,
                                                const posix_spawn_file_actions_t *file_actions,
                                                const posix_spawnattr_t *attrp, char *const argv[],
                                                char *const envp[]) ASYNC_WARN_UNUSED;

/**
 * Waits for a child to change state, like waitpid(2).
 *
 * \param pid      a child's pid; -1 for any child; 0 for any child in the
 *                 caller's process group; < -1 for any child in group -pid.
 * \param wstatus  where the status goes (WIFEXITED() and kin read it); may be
 *                 NULL. Written when the future settles with a pid > 0: it must
 *                 stay valid until then.
 * \param options  0 or an OR of `WNOHANG`, `WUNTRACED`, `WCONTINUED`.
 * \return a future with the pid of the child that changed state, 0 with
 *         `WNOHANG` when none has, or -1 with `errno` ECHILD (no such child of
 *         the caller, or none left), EINVAL (bad `options`) or ECANCELED (the
 *         wait was cancelled; the child is still waitable). NULL with ENOMEM.
 *
 * Callable from a task or any thread. See \ref proc for how the wait sleeps.
 */
ASYNC_EXTERN async_future_t *async_waitpid(pid_t pid, int *wstatus, int options) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of wait(2): async_waitpid(-1, wstatus, 0).
 *
 * \param wstatus  as async_waitpid().
 * \return as async_waitpid().
 */
ASYNC_EXTERN async_future_t *async_wait(int *wstatus) ASYNC_WARN_UNUSED;

/**
 * Async equivalent of wait4(2): async_waitpid() that also gives the resources
 * the child used (its user and system time, maximum resident size, ...).
 *
 * \param pid      as async_waitpid().
 * \param wstatus  as async_waitpid().
 * \param options  as async_waitpid().
 * \param rusage   where the child's usage goes, or NULL. Written, by the kernel,
 *                 only when the future settles with a pid > 0: it must stay
 *                 valid until then.
 * \return as async_waitpid().
 */
ASYNC_EXTERN async_future_t *async_wait4(pid_t pid, int *wstatus, int options,
                                         struct rusage *rusage) ASYNC_WARN_UNUSED;

/* <sys/wait.h> defines idtype_t, id_t and siginfo_t, and glibc declares
 * waitid(2), only when POSIX.1-2008 or X/Open is asked for (as _GNU_SOURCE
 * and the compiler's default gnu modes do); strict ISO C sees no waitid. */
#if defined(__USE_XOPEN) || defined(__USE_XOPEN2K8)
/**
 * Waits for a child to change state, like waitid(2).
 *
 * \param idtype   `P_PID`, `P_PGID`, `P_ALL` or `P_PIDFD`.
 * \param id       the pid, process group or pidfd (ignored for `P_ALL`).
 * \param infop    filled as waitid(2) fills it; `si_pid` is 0 when `WNOHANG`
 *                 found no child. Must stay valid until the future settles.
 *                 May be NULL, as Linux's waitid(2) allows.
 * \param options  an OR of `WEXITED`, `WSTOPPED`, `WCONTINUED` (at least one),
 *                 and optionally `WNOHANG`, `WNOWAIT`.
 * \return a future with value 0, or -1 with `errno` ECHILD, EINVAL (bad
 *         `idtype` or `options`) or ECANCELED. NULL with ENOMEM.
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_waitid(idtype_t idtype, id_t id, siginfo_t *infop,
                                          int options) ASYNC_WARN_UNUSED;
#endif

/**
 * Runs a shell command and waits for it, like system(3): `/bin/sh -c command`.
 *
 * Unlike glibc's system(3), the caller's SIGINT and SIGQUIT are not ignored
 * and SIGCHLD is not blocked while the command runs: those are process-wide
 * settings, and other tasks keep running meanwhile. The child starts with
 * SIGINT and SIGQUIT at their defaults and the caller's signal mask.
 *
 * \param command  the command, or NULL to ask whether a shell is available.
 * \return a future with the command's wait status (WEXITSTATUS() and kin
 *         read it; exit status 127 when the shell could not run); for a NULL
 *         `command`, 1 when `/bin/sh` can be executed, else 0. -1 with `errno`
 *         set when the child could not be started (EAGAIN, ENOMEM; as POSIX
 *         asks, where glibc's system(3) returns exit status 127 and sets
 *         `errno`) or the wait failed (ECHILD: the application reaped it, or
 *         ignores SIGCHLD, as with glibc). ECANCELED when cancelled:
 *         as glibc's system(3) does for a cancelled thread, the shell is
 *         killed with SIGKILL and reaped (its own children are not waited
 *         for). NULL with ENOMEM.
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_system(const char *command) ASYNC_WARN_UNUSED;

/**
 * Runs a shell command with a pipe to its stdin or from its stdout, like
 * popen(3), and returns the parent's end as an async stream: read it with
 * async_fgets(), async_getline() or async_fread(), write it with
 * async_fputs(), async_fprintf() or async_fwrite(), and end it with
 * async_pclose(), not async_fclose().
 *
 * As glibc's popen(3): the child is `/bin/sh -c command`; its other end of
 * the pipe is its stdout ("r") or stdin ("w"); it does not inherit the
 * streams of earlier async_popen() calls that are still open; the stream's
 * fd is close-on-exec only with "e". The stream is not seekable
 * (async_ftell() gives ESPIPE).
 *
 * \param command  the shell command (copied).
 * \param type     "r" or "w", and "e" for close-on-exec; read as glibc reads
 *                 it (any of the three letters, exactly one of r and w).
 * \return a future whose value is the `async_file_t *` (read it with
 *         async_await_ptr()), or NULL/-1 with `errno` EINVAL (`type` not one
 *         of the above, `command` NULL: glibc's popen(3) would run `sh -c`
 *         with no command, which exits with status 2), EMFILE/ENFILE (no fds for the pipe),
 *         EAGAIN or ENOMEM (the shell could not be started), ECANCELED
 *         (cancelled before the shell was started: nothing is left open).
 *
 * Callable from a task or any thread.
 *
 * \code
 * async_file_t *f = async_await_ptr(async_popen("ls /etc", "r"));
 * char line[256];
 * while (async_await_ptr(async_fgets(line, sizeof line, f)))
 *     handle(line);
 * int status = async_await(async_pclose(f));
 * \endcode
 */
ASYNC_EXTERN async_future_t *async_popen(const char *command, const char *type) ASYNC_WARN_UNUSED;

/**
 * Closes a stream from async_popen() and waits for its shell, like
 * pclose(3): the stream is flushed and closed (so a "w" child sees the end
 * of its input), then the shell is reaped.
 *
 * \param stream  a stream from async_popen().
 * \return a future with the shell's wait status (WEXITSTATUS() and kin read
 *         it), or -1 with `errno`: ECHILD for a stream that async_popen() did
 *         not return or that was passed here before (nothing is touched;
 *         glibc's pclose(3) would close the first like fclose(3) and return
 *         0, and use the second after freeing it); the
 *         error of the final flush (the shell is still reaped; glibc returns
 *         -1 too); ECANCELED when the wait was cancelled (the shell is reaped
 *         later by the library, so no zombie is left). NULL with ENOMEM.
 *
 * Callable from a task or any thread.
 */
ASYNC_EXTERN async_future_t *async_pclose(async_file_t *stream) ASYNC_WARN_UNUSED;

/** @} */

#ifdef __cplusplus
}
#endif

#endif
