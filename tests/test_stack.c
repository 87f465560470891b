/* Task stacks: a task that overflows its stack must stop the process with a
 * message that names the task and the fix, never corrupt memory silently.
 * The overflow runs in a forked child, whose death and stderr the test reads. */
#include "helpers.h"

#include <signal.h>
#include <sys/wait.h>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

TestSuite(stack, .timeout = 60);

static volatile long never = -1; /* keeps the compiler from proving the recursion endless */

static __attribute__((noinline)) long recurse(volatile char *prev, long depth) {
    volatile char frame[512];
    if (depth == never) return 0;
    frame[0] = (char)depth;
    frame[511] = prev ? prev[0] : 0;
    return recurse(frame, depth + 1) + frame[0];
}

static intptr_t overflow(void *arg) { return recurse(NULL, 0); }

/* Runs fn in a child; returns its wait status and fills `err` with its stderr. */
static int run_child(void (*fn)(void), char *err, size_t len) {
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r;
    while (got + 1 < len && (r = read(fds[0], err + got, len - 1 - got)) > 0) got += (size_t)r;
    err[got] = '\0';
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return status;
}

static void overflow_in_named_task(void) {
    async_spawn_opts_t o = {.stack_size = 32 * 1024, .name = "deep"};
    async_await(async_spawn_opts(overflow, NULL, &o));
}

Test(stack, overflow_stops_the_process_with_a_message) {
    char err[8192];
    int status = run_child(overflow_in_named_task, err, sizeof err);
    /* whatever the build, the overflow never lets the program go on as if nothing happened */
    cr_assert(!(WIFEXITED(status) && WEXITSTATUS(status) == 0), "the overflowing child exited 0");
    if (!UNDER_ASAN && !RUNNING_ON_VALGRIND) {
        /* our guard-page handler (ASan and valgrind report overflows their own way) */
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
                  "expected SIGABRT, got status %#x; stderr: %s", status, err);
        cr_assert(strstr(err, "task 'deep' overflowed its"), "stderr: %s", err);
        cr_assert(strstr(err, "stack_size"), "the message names the fix; stderr: %s", err);
    }
}

static intptr_t moderate(void *arg) {
    volatile char buf[24 * 1024];
    buf[0] = 1;
    buf[sizeof buf - 1] = 2;
    return buf[0] + buf[sizeof buf - 1];
}

/* The same 32 KiB stack is ample for a frame of 24 KiB. */
Test(stack, a_small_stack_holds_what_fits) {
    async_spawn_opts_t o = {.stack_size = 32 * 1024};
    ASSERT_VAL(async_await(async_spawn_opts(moderate, NULL, &o)), 3);
    rt_stop();
}
