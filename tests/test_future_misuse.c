/* Tests of misuse of futures: awaiting one twice, freeing one twice, awaiting
 * or freeing one already consumed or freed. With debug checks built in
 * (-Ddebug_checks, on by default where assertions are) each aborts at once
 * with a message naming the call; without them it gives EINVAL and touches
 * nothing. tests/meson.build defines TEST_DEBUG_CHECKS to say which. */
#include "helpers.h"

#include <signal.h>
#include <sys/wait.h>

TestSuite(future_misuse, .timeout = 30);

static intptr_t return_arg(void *arg) { return (intptr_t)arg; }

static void on_then(intptr_t value, int err, void *arg) {
    (void)value;
    (void)err;
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* A future whose owner has awaited it, and whose memory is released. */
static async_future_t *awaited_future(void) {
    async_future_t *f = async_future_new();
    cr_assert_not_null(f);
    cr_assert_eq(async_future_resolve(f, 1), 0);
    ASSERT_VAL(async_await(f), 1);
    return f;
}

/* A future whose owner has let go (freed) while its settler still holds it. */
static async_future_t *detached_future(void) {
    async_future_t *f = async_future_new();
    cr_assert_not_null(f);
    async_future_free(f);
    return f;
}

#ifdef TEST_DEBUG_CHECKS

Test(future_misuse, await_twice_aborts, .signal = SIGABRT, .init = rt_start) {
    async_future_t *f = awaited_future();
    (void)async_await(f);
}

Test(future_misuse, await_after_free_aborts, .signal = SIGABRT, .init = rt_start) {
    async_future_t *f = detached_future(); /* the memory is still there: the owner word says so */
    (void)async_await(f);
}

Test(future_misuse, free_twice_aborts, .signal = SIGABRT, .init = rt_start) {
    async_future_t *f = async_future_new();
    cr_assert_eq(async_future_resolve(f, 1), 0);
    async_future_free(f);
    async_future_free(f);
}

Test(future_misuse, free_after_await_of_a_task_aborts, .signal = SIGABRT, .init = rt_start) {
    async_future_t *t = async_spawn(return_arg, (void *)3);
    ASSERT_VAL(async_await(t), 3);
    async_future_free(t);
}

Test(future_misuse, await_timeout_after_await_aborts, .signal = SIGABRT, .init = rt_start) {
    async_future_t *f = awaited_future();
    (void)async_await_timeout(f, 10);
}

Test(future_misuse, await_all_of_a_consumed_future_aborts, .signal = SIGABRT, .init = rt_start) {
    async_future_t *fs[2] = {async_future_new(), NULL};
    fs[1] = fs[0];
    cr_assert_eq(async_future_resolve(fs[0], 1), 0);
    (void)async_await_all(fs, 2, NULL, NULL); /* the same future twice in one array */
}

Test(future_misuse, await_any_of_a_consumed_future_aborts, .signal = SIGABRT, .init = rt_start) {
    async_future_t *fs[1] = {detached_future()};
    (void)async_await_any(fs, 1);
}

Test(future_misuse, then_after_await_aborts, .signal = SIGABRT, .init = rt_start) {
    static atomic_int calls;
    async_future_t *f = awaited_future();
    (void)async_future_then(f, on_then, &calls);
}

static intptr_t await_arg(void *arg) { return async_await(arg); }

Test(future_misuse, await_twice_in_a_task_aborts, .signal = SIGABRT, .init = rt_start) {
    async_future_t *f = detached_future();
    (void)async_await(async_spawn(await_arg, f));
}

/* The message names the call and the future; the process ends by SIGABRT. Run
 * in a child of our own to read what it wrote. The child starts the runtime:
 * with it down and nothing live, the object chunks go back to the kernel, and
 * a freed future's memory with them. */
Test(future_misuse, abort_message_names_the_call) {
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        if (async_runtime_init(NULL) != 0) _exit(2);
        async_future_t *f = async_future_new();
        if (!f || async_future_resolve(f, 1) != 0 || async_await(f) != 1) _exit(3);
        fprintf(stderr, "%p\n", (void *)f);
        fflush(stderr);
        (void)async_await(f);
        _exit(4);
    }
    close(pipefd[1]);
    char buf[1024];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 && (n = read(pipefd[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(pipefd[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "child status %#x, wrote: %s",
              status, buf);
    char addr[32];
    cr_assert_eq(sscanf(buf, "%31s", addr), 1);
    char want[128];
    snprintf(want, sizeof want, "asyncstd: async_await: future already freed (%s)", addr);
    cr_assert_not_null(strstr(buf, want), "wrote: %s\nwanted: %s", buf, want);
}

#else /* without debug checks: EINVAL, and nothing touched */

Test(future_misuse, await_twice_is_einval, .init = rt_start) {
    async_future_t *f = awaited_future();
    ASSERT_ERR(async_await(f), EINVAL);
    ASSERT_NULL_ERR(async_await_ptr(f), EINVAL);
    ASSERT_ERR(async_await_timeout(f, 10), EINVAL);
    async_future_t *fs[1] = {f};
    ASSERT_ERR(async_await_any(fs, 1), EINVAL);
    int errors[1];
    ASSERT_ERR(async_await_all(fs, 1, NULL, errors), EINVAL);
    cr_assert_eq(errors[0], EINVAL);
    static atomic_int calls;
    ASSERT_ERR(async_future_then(f, on_then, &calls), EINVAL);
    cr_assert_eq(atomic_load(&calls), 0, "then() ran its callback for a consumed future");
    async_future_free(f); /* ignored */
    rt_stop();
}

Test(future_misuse, await_after_free_is_einval, .init = rt_start) {
    async_future_t *f = detached_future();
    ASSERT_ERR(async_await(f), EINVAL);
    async_future_free(f); /* ignored: the settler still holds it */
    cr_assert_eq(async_future_resolve(f, 1), 0, "the settler's role must survive the misuse");
    rt_stop();
}

Test(future_misuse, free_after_await_of_a_task_is_ignored, .init = rt_start) {
    async_future_t *t = async_spawn(return_arg, (void *)3);
    ASSERT_VAL(async_await(t), 3);
    async_future_free(t);
    ASSERT_VAL(async_await(async_spawn(return_arg, (void *)4)), 4);
    rt_stop();
}

#endif
