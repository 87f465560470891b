/* procspawn (peers/SPEC.md): C tasks, each spawning PROG with
 * async_posix_spawn and awaiting its exit with async_waitpid, until N
 * processes have run in all; every exit status must be 0. */
#include <asyncstd/asyncstd.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "peer_proc.h"
#include "peer_util.h"

extern char **environ;

typedef struct {
    atomic_long next; /* processes handed out so far */
    long total;
    char *prog;
} procspawn_t;

static intptr_t procspawn_task(void *arg) {
    procspawn_t *ps = arg;
    char *argv[] = {ps->prog, NULL};
    long ran = 0;
    while (atomic_fetch_add(&ps->next, 1) < ps->total) {
        pid_t pid;
        if (async_await(async_posix_spawn(&pid, ps->prog, NULL, NULL, argv, environ)) != 0)
            fail_errno("procspawn: async_posix_spawn");
        int st;
        if (async_await(async_waitpid(pid, &st, 0)) != pid) fail_errno("procspawn: async_waitpid");
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) fail("procspawn: a child failed");
        ran++;
    }
    return ran;
}

void peer_procspawn(int argc, char **argv, unsigned nthreads) {
    procspawn_t ps = {.total = param(argc, argv, 0, 2000)};
    long conc = param(argc, argv, 1, 32);
    ps.prog = argc > 2 ? argv[2] : "/bin/true";
    async_future_t **tasks = malloc((size_t)conc * sizeof *tasks);
    if (!tasks) fail("procspawn: out of memory");
    uint64_t t0 = now_ns();
    for (long i = 0; i < conc; i++)
        if (!(tasks[i] = async_spawn(procspawn_task, &ps))) fail_errno("procspawn: async_spawn");
    long ran = 0;
    for (long i = 0; i < conc; i++) {
        intptr_t v = async_await(tasks[i]);
        if (v < 0) fail_errno("procspawn: task");
        ran += v;
    }
    double ms = ms_since(t0);
    if (ran != ps.total) fail("procspawn: wrong count of processes");
    printf("RESULT procspawn asyncstd spawns_per_s=%.0f total_ms=%.1f c=%ld threads=%u\n",
           ps.total / (ms / 1e3), ms, conc, nthreads);
    free(tasks);
}
