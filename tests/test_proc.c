/* Tests of proc.h: spawning children, waiting for them (exit codes, signals,
 * stops, process groups, WNOHANG, waitid), system(3), a thousand children in
 * flight with none left a zombie, cancellation, and coexistence with an
 * application that forks and reaps children of its own. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(proc, .init = rt_start, .timeout = 60);

extern char **environ;

/* Starts `sh -c script` and returns its pid. */
static pid_t sh(const char *script) {
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    pid_t pid = -1;
    ASSERT_VAL(async_await(async_posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ)), 0);
    cr_assert_gt(pid, 0);
    return pid;
}

/* How many of our children are zombies, read from /proc. */
static int zombies(void) {
    DIR *d = opendir("/proc");
    cr_assert_not_null(d);
    int n = 0;
    pid_t me = getpid();
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0) continue;
        buf[len] = 0;
        char *p = strrchr(buf, ')'); /* the name may hold spaces */
        char state;
        int ppid;
        if (p && sscanf(p + 1, " %c %d", &state, &ppid) == 2 && ppid == me && state == 'Z') n++;
    }
    closedir(d);
    return n;
}

/* ---- spawn ----------------------------------------------------------------- */

Test(proc, exit_codes_and_signals_in_the_status) {
    int st;
    pid_t pid = sh("exit 0");
    ASSERT_VAL(async_await(async_waitpid(pid, &st, 0)), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pid = sh("exit 7");
    ASSERT_VAL(async_await(async_waitpid(pid, &st, 0)), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 7, "status %#x", st);
    pid = sh("kill -TERM $$");
    ASSERT_VAL(async_await(async_waitpid(pid, &st, 0)), pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "status %#x", st);
    /* NULL status is allowed */
    pid = sh("exit 1");
    ASSERT_VAL(async_await(async_waitpid(pid, NULL, 0)), pid);
    rt_stop();
}

/* The error posix_spawn returns, or 0 (reaping the child: under valgrind,
 * which runs vfork as fork, an exec failure shows only as exit status 127). */
static int spawn_result(int rc, const pid_t *pidp) {
    pid_t pid = *pidp; /* read after the spawn wrote it */
    if (rc == 0) {
        int st;
        pid_t w = waitpid(pid, &st, 0);
        cr_assert_eq(w, pid, "pid %d: %d %s", (int)pid, (int)w, ename(errno));
        cr_assert_eq(WEXITSTATUS(st), 127);
    }
    return rc;
}

static int async_spawn_result(async_future_t *f, const pid_t *pidp) {
    errno = 0;
    int rc = async_await(f) == 0 ? 0 : errno;
    return spawn_result(rc, pidp);
}

Test(proc, spawn_errors_are_posix_spawns) {
    char *argv[] = {"nope", NULL};
    const char *paths[] = {"/nonexistent/prog", "/", "/etc/passwd"}; /* ENOENT, EACCES, EACCES */
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        pid_t pid = 0, apid = 0;
        int want = spawn_result(posix_spawn(&pid, paths[i], NULL, NULL, argv, environ), &pid);
        int got = async_spawn_result(async_posix_spawn(&apid, paths[i], NULL, NULL, argv, environ),
                                     &apid);
        cr_assert_eq(got, want, "%s: %s, glibc %s", paths[i], ename(got), ename(want));
        pid = apid = 0;
        want = spawn_result(posix_spawnp(&pid, "no-such-program", NULL, NULL, argv, environ), &pid);
        got = async_spawn_result(
            async_posix_spawnp(&apid, "no-such-program", NULL, NULL, argv, environ), &apid);
        cr_assert_eq(got, want, "spawnp: %s, glibc %s", ename(got), ename(want));
    }
    cr_assert_eq(zombies(), 0, "a failed spawn leaves no child");
    rt_stop();
}

Test(proc, spawnp_searches_path_and_file_actions_apply) {
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    char *argv[] = {"echo", "hello", "there", NULL};
    pid_t pid;
    ASSERT_VAL(async_await(async_posix_spawnp(&pid, "echo", &fa, NULL, argv, environ)), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    char buf[64] = {0};
    size_t got = 0;
    for (ssize_t n; (n = async_await(async_read(p[0], buf + got, sizeof buf - 1 - got))) > 0;)
        got += (size_t)n;
    close(p[0]);
    cr_assert_str_eq(buf, "hello there\n");
    int st;
    ASSERT_VAL(async_await(async_waitpid(pid, &st, 0)), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    rt_stop();
}

/* ---- waitpid ---------------------------------------------------------------- */

Test(proc, wnohang_running_then_exited) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    char *argv[] = {"sh", "-c", "read x; exit 3", NULL};
    pid_t pid;
    ASSERT_VAL(async_await(async_posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ)), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[0]);
    int st = -5;
    ASSERT_VAL(async_await(async_waitpid(pid, &st, WNOHANG)), 0);
    cr_assert_eq(st, -5, "no status stored when nothing changed");
    async_future_t *w = async_waitpid(pid, &st, 0);
    sleep_ms(20);
    cr_assert_eq(async_future_settled(w), 0, "the child waits for its line");
    cr_assert_eq(write(p[1], "go\n", 3), 3);
    close(p[1]);
    ASSERT_VAL(async_await(w), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 3);
    rt_stop();
}

Test(proc, errors_match_glibc) {
    int st;
    errno = 0;
    cr_assert_eq(waitpid(1, &st, WNOHANG), -1);
    cr_assert_eq(errno, ECHILD);
    ASSERT_ERR(async_await(async_waitpid(1, &st, 0)), ECHILD);
    cr_assert_eq(waitpid(-1, &st, 0), -1);
    cr_assert_eq(errno, ECHILD);
    ASSERT_ERR(async_await(async_waitpid(-1, &st, 0)), ECHILD);
    ASSERT_ERR(async_await(async_waitpid(0, &st, 0)), ECHILD);
    ASSERT_ERR(async_await(async_waitpid(-1, &st, 0x40000)), EINVAL);
    siginfo_t si;
    cr_assert_eq(waitid(P_ALL, 0, &si, 0), -1);
    cr_assert_eq(errno, EINVAL, "no WEXITED/WSTOPPED/WCONTINUED");
    ASSERT_ERR(async_await(async_waitid(P_ALL, 0, &si, 0)), EINVAL);
    ASSERT_ERR(async_await(async_waitid(P_ALL, 0, &si, WEXITED)), ECHILD);
    ASSERT_ERR(async_await(async_waitid((idtype_t)77, 0, &si, WEXITED)), EINVAL);
    rt_stop();
}

Test(proc, any_child_and_process_groups) {
    pid_t a = sh("sleep 0.05; exit 4");
    int st;
    ASSERT_VAL(async_await(async_waitpid(-1, &st, 0)), a);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 4);
    /* a child in a group of its own: found by -pgid, not by 0 */
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&at, 0);
    char *argv[] = {"sh", "-c", "sleep 0.05; exit 5", NULL};
    pid_t g;
    ASSERT_VAL(async_await(async_posix_spawn(&g, "/bin/sh", NULL, &at, argv, environ)), 0);
    posix_spawnattr_destroy(&at);
    errno = 0;
    cr_assert_eq(waitpid(0, &st, WNOHANG), -1, "none in our group");
    cr_assert_eq(errno, ECHILD);
    ASSERT_ERR(async_await(async_waitpid(0, &st, WNOHANG)), ECHILD);
    ASSERT_ERR(async_await(async_waitpid(0, &st, 0)), ECHILD);
    ASSERT_VAL(async_await(async_waitpid(-g, &st, 0)), g);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 5);
    pid_t b = sh("exit 6");
    ASSERT_VAL(async_await(async_waitpid(0, &st, 0)), b);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 6);
    rt_stop();
}

Test(proc, stops_and_continues) {
    pid_t pid = sh("sleep 5");
    int st;
    cr_assert_eq(kill(pid, SIGSTOP), 0);
    ASSERT_VAL(async_await(async_waitpid(pid, &st, WUNTRACED)), pid);
    cr_assert(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "status %#x", st);
    cr_assert_eq(kill(pid, SIGCONT), 0);
    ASSERT_VAL(async_await(async_waitpid(pid, &st, WCONTINUED)), pid);
    cr_assert(WIFCONTINUED(st), "status %#x", st);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    ASSERT_VAL(async_await(async_waitpid(pid, &st, 0)), pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    rt_stop();
}

Test(proc, waitid_forms) {
    pid_t pid = sh("exit 9");
    siginfo_t si;
    /* WNOWAIT leaves the child waitable */
    ASSERT_VAL(async_await(async_waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT)), 0);
    cr_assert_eq(si.si_pid, pid);
    cr_assert_eq(si.si_code, CLD_EXITED);
    cr_assert_eq(si.si_status, 9);
    memset(&si, 0, sizeof si);
    ASSERT_VAL(async_await(async_waitid(P_PID, (id_t)pid, &si, WEXITED)), 0);
    cr_assert_eq(si.si_pid, pid);
    ASSERT_ERR(async_await(async_waitid(P_PID, (id_t)pid, &si, WEXITED)), ECHILD);
    /* WNOHANG with nothing ready: si_pid 0 */
    pid = sh("sleep 0.1");
    si.si_pid = 123;
    ASSERT_VAL(async_await(async_waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG)), 0);
    cr_assert_eq(si.si_pid, 0);
    /* a pidfd of the caller's own */
    int pidfd = pidfd_open(pid, 0);
    if (pidfd >= 0) {
        ASSERT_VAL(async_await(async_waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED)), 0);
        cr_assert_eq(si.si_pid, pid);
        cr_assert_geq(fcntl(pidfd, F_GETFD), 0, "the caller's pidfd stays open");
        close(pidfd);
    } else { /* valgrind knows no pidfd_open: the library's wait falls back to looking */
        cr_assert_eq(errno, ENOSYS);
        ASSERT_VAL(async_await(async_waitid(P_PID, (id_t)pid, &si, WEXITED)), 0);
    }
    /* NULL infop, as Linux allows */
    pid = sh("exit 0");
    ASSERT_VAL(async_await(async_waitid(P_PID, (id_t)pid, NULL, WEXITED)), 0);
    cr_assert_eq(zombies(), 0);
    rt_stop();
}

/* ---- system ----------------------------------------------------------------- */

Test(proc, system_runs_a_pipeline) {
    char path[] = "/tmp/asyncstd-proc-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "printf 'abc\\nxbz\\n' | grep b | tr a-z A-Z > %s", path);
    intptr_t st = async_await(async_system(cmd));
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#jx", (intmax_t)st);
    char buf[32] = {0};
    fd = open(path, O_RDONLY);
    cr_assert_eq(read(fd, buf, sizeof buf), 8);
    close(fd);
    unlink(path);
    cr_assert_str_eq(buf, "ABC\nXBZ\n");
    st = async_await(async_system("exit 42"));
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 42);
    cr_assert_eq(st, system("exit 42"), "the same status as glibc's");
    st = async_await(async_system("no-such-command-anywhere 2>/dev/null"));
    cr_assert_eq(WEXITSTATUS(st), 127);
    cr_assert_eq(async_await(async_system(NULL)), system(NULL));
    cr_assert_eq(zombies(), 0);
    rt_stop();
}

/* ---- many at once, tasks on every worker -------------------------------------- */

#define IN_FLIGHT 1000

static intptr_t spawn_and_wait(void *arg) {
    (void)arg;
    char *argv[] = {"sh", "-c", "sleep 0.2", NULL};
    pid_t pid;
    if (async_await(async_posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ)) != 0) return -1;
    int st;
    if (async_await(async_waitpid(pid, &st, 0)) != pid) return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

Test(proc, a_thousand_children_in_flight_and_no_zombie, .timeout = 120) {
    async_future_t **fs = calloc(IN_FLIGHT, sizeof *fs);
    for (int i = 0; i < IN_FLIGHT; i++) fs[i] = async_spawn(spawn_and_wait, NULL);
    int failed = 0;
    for (int i = 0; i < IN_FLIGHT; i++) failed += async_await(fs[i]) != 0;
    free(fs);
    cr_assert_eq(failed, 0, "%d children failed", failed);
    cr_assert_eq(zombies(), 0);
    int st;
    cr_assert_eq(waitpid(-1, &st, WNOHANG), -1, "every child was reaped");
    rt_stop();
}

/* ---- cancellation ------------------------------------------------------------- */

Test(proc, a_cancelled_wait_leaves_the_child_waitable) {
    pid_t pid = sh("sleep 5");
    int st;
    async_future_t *w = async_waitpid(pid, &st, 0);
    sleep_ms(10);
    async_cancel(w);
    ASSERT_ERR(async_await(w), ECANCELED);
    cr_assert_eq(kill(pid, 0), 0, "still running");
    /* the same through a timeout, and for any child */
    ASSERT_ERR(async_await_timeout(async_waitpid(-1, &st, 0), 20), ETIMEDOUT);
    ASSERT_ERR(async_await_timeout(async_waitpid(pid, &st, WUNTRACED), 20), ETIMEDOUT);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    ASSERT_VAL(async_await(async_waitpid(pid, &st, 0)), pid);
    cr_assert(WIFSIGNALED(st));
    rt_stop();
}

static intptr_t wait_forever(void *arg) {
    int st;
    return async_await(async_waitpid((pid_t)(intptr_t)arg, &st, 0));
}

Test(proc, a_cancelled_task_stops_waiting) {
    pid_t pid = sh("sleep 5");
    async_future_t *t = async_spawn(wait_forever, (void *)(intptr_t)pid);
    sleep_ms(20);
    async_cancel(t);
    ASSERT_ERR(async_await(t), ECANCELED);
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int st;
    ASSERT_VAL(async_await(async_waitpid(pid, &st, 0)), pid);
    rt_stop();
}

/* ---- coexistence ---------------------------------------------------------------- */

static atomic_int sigchld_seen;
static void on_sigchld(int sig) {
    (void)sig;
    atomic_fetch_add(&sigchld_seen, 1);
}

Test(proc, the_applications_own_children_and_sigchld_are_left_alone) {
    struct sigaction sa = {.sa_handler = on_sigchld, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGCHLD, &sa, NULL), 0);
    pid_t lib = sh("sleep 5");
    int st;
    async_future_t *w = async_waitpid(lib, &st, 0);
    pid_t own = fork_exit(12);
    int own_st;
    cr_assert_eq(waitpid(own, &own_st, 0), own, "the application reaps its own child");
    cr_assert(WIFEXITED(own_st) && WEXITSTATUS(own_st) == 12, "status %#x", own_st);
    cr_assert_geq(atomic_load(&sigchld_seen), 1, "its SIGCHLD handler ran");
    cr_assert_eq(async_future_settled(w), 0);
    kill(lib, SIGKILL);
    ASSERT_VAL(async_await(w), lib);
    cr_assert(WIFSIGNALED(st));
    rt_stop();
}

static intptr_t wait_in_task(void *arg) {
    int st;
    pid_t pid = (pid_t)(intptr_t)arg;
    if (async_await(async_waitpid(pid, &st, 0)) != pid) return -1;
    return WEXITSTATUS(st);
}

Test(proc, spawned_on_a_thread_awaited_in_tasks_on_every_worker) {
    int n = async_worker_count();
    for (int i = 1; i <= n; i++) {
        char script[32];
        snprintf(script, sizeof script, "exit %d", 10 + i);
        pid_t pid = sh(script);
        async_spawn_opts_t o = {.worker = (unsigned)i};
        ASSERT_VAL(async_await(async_spawn_opts(wait_in_task, (void *)(intptr_t)pid, &o)), 10 + i);
    }
    rt_stop();
}

Test(proc, a_cancelled_system_kills_and_reaps_its_shell) {
    async_future_t *f = async_system("sleep 5");
    sleep_ms(50);
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    /* the reaping wait runs on: give it a moment, then look for zombies and children */
    int st;
    for (int i = 0; i < 200 && waitpid(-1, &st, WNOHANG) != -1; i++) sleep_ms(10);
    errno = 0;
    cr_assert_eq(waitpid(-1, &st, WNOHANG), -1, "no child left");
    cr_assert_eq(errno, ECHILD);
    cr_assert_eq(zombies(), 0);
    rt_stop();
}

Test(proc, null_arguments_are_einval) {
    char *argv[] = {"true", NULL};
    pid_t pid;
    ASSERT_ERR(async_await(async_posix_spawn(&pid, NULL, NULL, NULL, argv, environ)), EINVAL);
    ASSERT_ERR(async_await(async_posix_spawn(&pid, "/bin/true", NULL, NULL, NULL, environ)),
               EINVAL);
    ASSERT_ERR(async_await(async_posix_spawnp(&pid, "true", NULL, NULL, argv, NULL)), EINVAL);
    rt_stop();
}

/* ---- popen / pclose ------------------------------------------------------------- */

Test(proc, popen_reads_a_commands_output) {
    async_file_t *f = async_await_ptr(async_popen("printf 'one\\ntwo\\n'; exit 3", "r"));
    cr_assert_not_null(f, "popen: %s", ename(errno));
    char line[64];
    cr_assert_not_null(async_await_ptr(async_fgets(line, sizeof line, f)));
    cr_assert_str_eq(line, "one\n");
    cr_assert_not_null(async_await_ptr(async_fgets(line, sizeof line, f)));
    cr_assert_str_eq(line, "two\n");
    errno = 0;
    cr_assert_null(async_await_ptr(async_fgets(line, sizeof line, f)));
    cr_assert(async_feof(f));
    cr_assert_eq(async_ftell(f), -1);
    cr_assert_eq(errno, ESPIPE);
    intptr_t st = async_await(async_pclose(f));
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 3, "status %#jx", (intmax_t)st);
    cr_assert_eq(zombies(), 0);
    rt_stop();
}

Test(proc, popen_writes_a_commands_input) {
    char path[] = "/tmp/asyncstd-popen-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "tr a-z A-Z > %s", path);
    async_file_t *f = async_await_ptr(async_popen(cmd, "w"));
    cr_assert_not_null(f);
    for (int i = 0; i < 1000; i++)
        cr_assert_geq(async_await(async_fprintf(f, "line %d abc\n", i)), 0);
    intptr_t st = async_await(async_pclose(f));
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#jx", (intmax_t)st);
    FILE *in = fopen(path, "r");
    char line[64];
    int n = 0;
    while (fgets(line, sizeof line, in)) {
        char want[64];
        snprintf(want, sizeof want, "LINE %d ABC\n", n++);
        cr_assert_str_eq(line, want);
    }
    fclose(in);
    unlink(path);
    cr_assert_eq(n, 1000);
    rt_stop();
}

Test(proc, popen_bad_arguments_and_pclose_of_another_stream) {
    const char *types[] = {"", "x", "rw", "r+", "wx", "e"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        errno = 0;
        FILE *g = popen("true", types[i]);
        int glibc = errno;
        if (g) pclose(g);
        cr_assert_null(g, "glibc refuses \"%s\"", types[i]);
        cr_assert_null(async_await_ptr(async_popen("true", types[i])));
        cr_assert_eq(errno, glibc, "\"%s\": %s, glibc %s", types[i], ename(errno), ename(glibc));
    }
    ASSERT_ERR(async_await(async_popen(NULL, "r")), EINVAL);
    async_file_t *other = async_fdopen(open("/dev/null", O_RDONLY), "r");
    ASSERT_ERR(async_await(async_pclose(other)), ECHILD);
    ASSERT_VAL(async_await(async_fclose(other)), 0);
    /* "e": close-on-exec; without it, not, as glibc */
    async_file_t *a = async_await_ptr(async_popen("true", "r"));
    async_file_t *b = async_await_ptr(async_popen("true", "er")); /* glibc takes any order */
    cr_assert_eq(fcntl(async_fileno(a), F_GETFD), 0);
    cr_assert_eq(fcntl(async_fileno(b), F_GETFD), FD_CLOEXEC);
    ASSERT_VAL(async_await(async_pclose(a)), 0);
    ASSERT_VAL(async_await(async_pclose(b)), 0);
    ASSERT_ERR(async_await(async_pclose(a)), ECHILD); /* passed once already */
    rt_stop();
}

/* A second popen's child must not hold the first one's pipe: the first
 * shell would then never see the end of its input. */
Test(proc, a_popen_child_does_not_inherit_other_popen_streams) {
    async_file_t *w = async_await_ptr(async_popen("cat > /dev/null", "w"));
    async_file_t *sleeper = async_await_ptr(async_popen("sleep 5", "r"));
    cr_assert_not_null(w);
    cr_assert_not_null(sleeper);
    cr_assert_geq(async_await(async_fputs("data\n", w)), 0);
    double t0 = now_ms();
    ASSERT_VAL(async_await(async_pclose(w)), 0);
    cr_assert_lt(now_ms() - t0, 3000, "cat saw its end of input at once");
    async_future_t *pc = async_pclose(sleeper);
    async_cancel(pc); /* the library reaps it later: no zombie */
    ASSERT_ERR(async_await(pc), ECANCELED);
    rt_stop();
}

static intptr_t popen_in_task(void *arg) {
    int i = (int)(intptr_t)arg;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "echo %d", i);
    async_file_t *f = async_await_ptr(async_popen(cmd, "r"));
    if (!f) return -1;
    char line[32] = "";
    if (!async_await_ptr(async_fgets(line, sizeof line, f))) return -1;
    if (async_await(async_pclose(f)) != 0) return -1;
    return atoi(line) == i ? 0 : -1;
}

Test(proc, popen_from_many_tasks) {
    enum { N = 100 };
    async_future_t *fs[N];
    for (int i = 0; i < N; i++) fs[i] = async_spawn(popen_in_task, (void *)(intptr_t)i);
    for (int i = 0; i < N; i++) ASSERT_VAL(async_await(fs[i]), 0);
    cr_assert_eq(zombies(), 0);
    rt_stop();
}
