/** \file
 * Runtime metrics (async_runtime_stats()) and the stall watchdog's setting. */
#ifndef ASYNCSTD_STATS_H
#define ASYNCSTD_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * \defgroup stats Runtime metrics and stall reports
 * What the runtime has done so far, and which task holds a worker too long.
 *
 * **Metrics.** async_runtime_stats() fills in counters per worker (tasks run,
 * steals, polls, sleeps, time busy), the blocking pool's state and totals
 * (spawns, cancellations, timers). The counters cost the hot paths no atomic
 * read-modify-write: each worker counts in words of its own, with plain loads
 * and stores, and a call sums them. They start at 0 when the runtime starts
 * and are read without stopping anything, so a snapshot taken while tasks run
 * is a little out of step with itself (a task may be counted as run but not
 * yet as spawned); every counter only grows, but for the gauges (`tasks_live`,
 * `ready`, the pool's `busy` and queues).
 *
 * **Stall reports.** A task runs on its worker until it awaits, so a task that
 * computes for a second, or calls a blocking function, holds up every other
 * task of that worker. A watchdog thread looks at each worker every
 * `ASYNCSTD_STALL_MS` / 2 milliseconds; when one task has held its worker
 * without switching away (an await that suspends, a yield, its end) for longer
 * than `ASYNCSTD_STALL_MS`, it writes one report to stderr: the task's name (as
 * given to async_spawn_opts()), its function, the worker, the time so far
 * and how much of it the worker spent on a CPU (all of it: the task computes;
 * none: it is blocked in a system call), then the stuck worker's stack, walked
 * by glibc's backtrace(3) in a signal handler on that worker, with each frame
 * named as in a dump. A worker that is runnable
 * but got less than half the time on a CPU was kept off it by an overloaded
 * machine: it is not reported until its CPU time adds up. A task is reported
 * once per stall: again only after it has switched away and stalled anew.
 * Reports are text on stderr; nothing else changes, the task runs on. The
 * handler's signal interrupts a system call the task is blocked in: calls that
 * SA_RESTART resumes go on, the others (nanosleep(2), poll(2), see signal(7))
 * fail once with EINTR, as under a profiler.
 *
 * - `ASYNCSTD_STALL_MS`: the threshold in milliseconds, 1 to 3600000; `0`
 *   turns the watchdog off (no thread, no signal handler). Default 100, but
 *   off when the program runs under valgrind, whose slowdown would make most
 *   tasks look stuck (set the variable to have it on there too). Read when the
 *   runtime starts.
 * - The signal: the highest real-time signal (SIGRTMAX, then downwards) whose
 *   disposition is still the default when the runtime starts; the library
 *   installs its handler there (SA_RESTART, SA_ONSTACK; errno is kept) and puts
 *   the default back at shutdown. A signal the application already handles is
 *   never taken, nor the one `ASYNCSTD_DUMP_SIGNAL` names (debug.h); an
 *   application that installs a handler on the library's
 *   signal later takes its reports away (the stack is then missing from them).
 *   Worker threads unblock the signal for themselves, so it reaches them even
 *   when the application blocked every signal before starting the runtime.
 *   The function and the frames are named as in async_dump() (debug.h): from
 *   each file's ELF symbol table, static functions included; a stripped file
 *   gives `? (file+0x...)`, an offset for `addr2line -e file`.
 *
 * Cost: one more plain store per task run (the switch counter the watchdog
 * reads, which also feeds `tasks_run`) and a thread that wakes 20 times a
 * second at the default; docs/design.md ("Stall reports and metrics") has the
 * numbers.
 * @{
 */

/** What one worker thread has done (see async_runtime_stats()). */
typedef struct async_worker_stats {
    /** Tasks that have started on this worker and not ended (a gauge). */
    uint64_t tasks_live;
    /** Tasks ready to run now: woken tasks, and spawned tasks not started yet
     * (which an idle worker may steal). A gauge. */
    uint64_t ready;
    /** Task runs: each time a task was switched to (a task that awaits ten times runs eleven). */
    uint64_t tasks_run;
    /** Spawned tasks this worker took from other workers' queues. */
    uint64_t steals;
    /** Looks at I/O and timers (one epoll_wait(2) each, blocking or not). */
    uint64_t polls;
    /** Times the worker went to sleep with nothing to run. */
    uint64_t parks;
    /** Sleeps ended by another thread handing the worker work (a wake-up,
     * a new task), rather than by I/O or a timer. */
    uint64_t unparks;
    /** Time not asleep, in nanoseconds: running tasks, polling, looking for work. */
    uint64_t busy_ns;
} async_worker_stats_t;

/** The blocking-offload pool (see async_spawn_blocking()). */
typedef struct async_pool_stats {
    /** Threads started (they stay until shutdown). */
    unsigned threads;
    /** Threads running a job now. */
    unsigned busy;
    /** Jobs waiting for a thread in the file lane (the library's file calls). */
    size_t queued_fs;
    /** Jobs waiting for a thread in the user lane (async_spawn_blocking()). */
    size_t queued_user;
    /** Jobs run to the end, both lanes. */
    uint64_t jobs_run;
} async_pool_stats_t;

/** A snapshot of the runtime's counters (see async_runtime_stats()). */
typedef struct async_runtime_stats {
    /** Worker threads of the runtime: async_worker_count(). */
    unsigned workers;
    /** Nanoseconds since the runtime started. */
    uint64_t uptime_ns;
    /** The sum of every worker's counters (the runtime's internal thread that
     * holds plain threads' waits included: its polls and sleeps). */
    async_worker_stats_t all;
    /** The blocking pool. */
    async_pool_stats_t pool;
    /** Tasks alive, started or not, on every worker (a gauge). */
    uint64_t tasks_live;
    /** Tasks spawned (async_spawn() and its variants, and the library's own tasks). */
    uint64_t spawns;
    /** Cancellation requests that reached a pending future (async_cancel(),
     * and the timeouts and task groups that cancel through it). */
    uint64_t cancels;
    /** Timers started (sleeps, timeouts). */
    uint64_t timers;
} async_runtime_stats_t;

/**
 * Reads the runtime's counters: totals into `stats`, and one entry per worker
 * into `workers`, for at most `nworkers` workers (worker N, counted from 1, in
 * `workers[N - 1]`). Entries past the runtime's worker count are not written;
 * `stats->workers` says how many there are, so a caller with too small an array
 * learns the size it needs (nothing is written past `nworkers`).
 *
 * Safe to call at any time from any thread or task, as often as wanted: the
 * per-worker counters are read without a lock and cost the workers nothing;
 * the pool's state is read under the pool's mutex, held for a few loads (as
 * when a task hands the pool a job). The time is proportional to the number
 * of workers.
 *
 * \param stats     receives the totals and the pool's state.
 * \param workers   receives the per-worker counters, or NULL with `nworkers` 0.
 * \param nworkers  entries in `workers`.
 * \return 0, or -1 with `errno` EINVAL (`stats` NULL, or `workers` NULL with
 *         `nworkers` > 0) or ESRCH (the runtime is not running: it is not
 *         started by this call).
 *
 * \code
 * async_worker_stats_t w[64];
 * async_runtime_stats_t s;
 * if (async_runtime_stats(&s, w, 64) == 0)
 *     printf("%u workers, %llu tasks run, %llu live\n", s.workers,
 *            (unsigned long long)s.all.tasks_run, (unsigned long long)s.tasks_live);
 * \endcode
 */
ASYNC_EXTERN int async_runtime_stats(async_runtime_stats_t *stats, async_worker_stats_t *workers,
                                     size_t nworkers);

/** @} */

#ifdef __cplusplus
}
#endif
#endif
