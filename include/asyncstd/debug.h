/** \file
 * Seeing inside a running program: dumps of every task with its stack. */
#ifndef ASYNCSTD_DEBUG_H
#define ASYNCSTD_DEBUG_H

#include <stdio.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * \defgroup debug Debugging
 * Task dumps: what every task is doing and where, as Go's goroutine dump.
 *
 * A dump lists the workers (tasks, ready-queue depth, unstarted tasks), the
 * blocking pool's threads (busy or idle, and the job each runs), then one
 * block per live task: its id, name (async_spawn_opts_t::name), worker, state
 * (running, ready, parked, not started), how long a parked one has been parked,
 * what a parked task awaits (`recv(fd 7)`, `sleep until +812 ms`,
 * `mutex 0x…`, `channel 0x… recv`, `pool: openat "/srv/x"`, `task 42`), and
 * the symbolized backtrace of a parked or ready task, walked from the context
 * it saved when it switched out. docs/debugging.md shows one and explains
 * each line.
 *
 * **On demand from outside.** With the environment variable
 * `ASYNCSTD_DUMP_SIGNAL` set to a signal's name or number (`SIGQUIT`, `QUIT`,
 * `USR1`, `3`, `SIGRTMIN+2`, `SIGRTMAX-1`) when the runtime starts, the
 * runtime writes a dump to stderr each time that signal arrives
 * (`kill -QUIT pid`), from a thread of its own.
 * Off by default. The runtime installs its own handler for that signal for
 * as long as it runs (async_runtime_shutdown() puts back the previous one), so
 * the program must not also handle or await it. A value that names no signal,
 * or SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE or SIGILL, is reported once on
 * stderr and ignored. A real-time signal may be named, even the one the stall
 * watchdog (stats.h) would take: the watchdog then takes another.
 *
 * **Debugger.** tools/asyncstd-gdb.py adds `info async-tasks` and
 * `async-task N bt` to gdb (docs/debugging.md).
 * @{
 */

/** The most tasks one dump prints; the others are counted in its last line. */
#define ASYNC_DUMP_TASKS_MAX 1000

/**
 * Writes a dump of the runtime's tasks, workers and pool threads to `out`.
 *
 * Callable from any thread at any time while the program runs: a task (its
 * own block is marked "the caller", with its stack), a plain thread, a pool
 * job; not from a signal handler (use `ASYNCSTD_DUMP_SIGNAL`), and not
 * concurrently with async_runtime_shutdown(). It never stops the workers: a
 * task running on another worker is shown as running, without a stack, and a
 * task that resumes while its stack is being read may show a wrong frame;
 * the walk never reads outside the task's stack. Time and memory are
 * bounded: at most #ASYNC_DUMP_TASKS_MAX tasks and 32 frames per task; the
 * symbol tables of the program and its libraries are mapped during the call
 * and unmapped before it returns. Unstarted tasks pinned to a worker
 * (async_spawn_opts_t::worker) and tasks spawned from a plain thread that have
 * not yet reached their worker are counted in their worker's line but not
 * listed.
 *
 * Frames are found by frame pointers: the library is built with them, and
 * functions of the program built without them (-O2 on Debian without
 * -fno-omit-frame-pointer) still appear as the callers of library frames,
 * but the walk may stop at them. Names come from the ELF symbol tables,
 * static functions included; a stripped program shows `?` and its file.
 *
 * \param out  where to write; flushed before the call returns.
 * \return 0, or -1 with `errno` EINVAL (`out` NULL), ENOMEM, or EIO (`out`
 *         reported a write error). When the runtime is not running it writes
 *         one line saying so and returns 0.
 */
ASYNC_EXTERN int async_dump(FILE *out);

/**
 * async_dump() to a file descriptor (through a stdio stream on a duplicate of
 * it, closed before returning; `fd` itself stays open).
 *
 * \param fd  where to write, such as 2 for stderr.
 * \return 0, or -1 with `errno` as async_dump(), or EBADF (`fd` not open),
 *         EMFILE (no fd left for the duplicate).
 */
ASYNC_EXTERN int async_dump_fd(int fd);

/** @} */

#ifdef __cplusplus
}
#endif

#endif
