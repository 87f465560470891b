/* proc.h against glibc: waitpid, waitid, posix_spawn(p), system and
 * popen/pclose on the same inputs, bad ones included (bad options and
 * idtypes, non-children, WNOHANG with nothing ready, missing programs, bad
 * popen types), from a plain thread and from a task; then what the header
 * promises on cancellation: a cancelled wait leaves the child waitable, a
 * cancelled system kills and reaps its shell. */
#include "glibc_compare.h"

/* pclose of an fopen stream is one of the inputs compared, on purpose */
#pragma GCC diagnostic ignored "-Wmismatched-dealloc"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

TestSuite(proc_glibc, .init = rt_start, .fini = rt_stop, .timeout = 60);

extern char **environ;

/* Waits (without reaping) until `pid` has exited. */
static void await_exit(pid_t pid) {
    siginfo_t si;
    CHECK_EQ(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
}

/* ---- waitpid and waitid: inputs that end at once ------------------------------ */

static void wait_errors(void) {
    int gs = 0x5a5a, as = 0x5a5a;
    SAME(waitpid(-1, &gs, 0x10), async_waitpid(-1, &as, 0x10));       /* no such option */
    SAME(waitpid(-1, &gs, WEXITED), async_waitpid(-1, &as, WEXITED)); /* waitid's, not waitpid's */
    SAME(waitpid(-1, &gs, WNOWAIT), async_waitpid(-1, &as, WNOWAIT));
    SAME(waitpid(1, &gs, 0), async_waitpid(1, &as, 0)); /* not our child: ECHILD */
    SAME(waitpid(1, &gs, WNOHANG), async_waitpid(1, &as, WNOHANG));
    SAME(waitpid(-1, &gs, 0), async_waitpid(-1, &as, 0)); /* no children at all */
    SAME(waitpid(-1, NULL, WNOHANG), async_waitpid(-1, NULL, WNOHANG));
    SAME(waitpid(0, &gs, WNOHANG), async_waitpid(0, &as, WNOHANG));
    SAME(waitpid(-getpgrp(), &gs, 0), async_waitpid(-getpgrp(), &as, 0));
    SAME(waitpid(INT_MIN, &gs, 0), async_waitpid(INT_MIN, &as, 0)); /* ESRCH */
    SAME(waitpid(INT_MAX, &gs, WUNTRACED), async_waitpid(INT_MAX, &as, WUNTRACED));
    CHECK_EQ(gs, as); /* untouched by all of those */

    siginfo_t gi, ai;
    SAME(waitid(P_ALL, 0, &gi, WEXITED | WNOHANG), async_waitid(P_ALL, 0, &ai, WEXITED | WNOHANG));
    SAME(waitid(P_ALL, 0, &gi, 0), async_waitid(P_ALL, 0, &ai, 0)); /* nothing to wait for */
    SAME(waitid(P_ALL, 0, &gi, WNOHANG), async_waitid(P_ALL, 0, &ai, WNOHANG));
    SAME(waitid(P_ALL, 0, &gi, WEXITED | 0x10), async_waitid(P_ALL, 0, &ai, WEXITED | 0x10));
    SAME(waitid((idtype_t)9, 0, &gi, WEXITED), async_waitid((idtype_t)9, 0, &ai, WEXITED));
    SAME(waitid(P_PID, 1, &gi, WEXITED), async_waitid(P_PID, 1, &ai, WEXITED));
    SAME(waitid(P_PID, 0, &gi, WEXITED), async_waitid(P_PID, 0, &ai, WEXITED)); /* EINVAL */
    SAME(waitid(P_PGID, (id_t)getpgrp(), &gi, WEXITED),
         async_waitid(P_PGID, (id_t)getpgrp(), &ai, WEXITED));
    SAME_BADPTR(waitid(P_ALL, 0, NULL, WEXITED), async_waitid(P_ALL, 0, NULL, WEXITED));
    SAME(waitid(P_PIDFD, 9999, &gi, WEXITED), async_waitid(P_PIDFD, 9999, &ai, WEXITED));
    SAME(waitid(P_PIDFD, 0, &gi, WEXITED), async_waitid(P_PIDFD, 0, &ai, WEXITED)); /* no pidfd */
    SAME(waitid(P_PIDFD, (id_t)-1, &gi, WEXITED), async_waitid(P_PIDFD, (id_t)-1, &ai, WEXITED));
}

Test(proc_glibc, wait_errors) { both_contexts(wait_errors); }

/* WNOHANG while the children run: 0, status untouched; waitid zeroes si_pid
 * and si_signo. Then both exit: the same status, each reaped once. The
 * children read a pipe of their own, and exit when it is closed. */
static pid_t start_reader(int *wfd, int code) {
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    char script[64];
    snprintf(script, sizeof script, "read x; exit %d", code);
    char *argv[] = {"sh", "-c", script, NULL};
    pid_t pid = -1;
    CHECK_EQ(posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[0]);
    *wfd = p[1];
    return pid;
}

static void wait_children(void) {
    int gw, aw;
    pid_t g = start_reader(&gw, 7), a = start_reader(&aw, 7);
    int gs = 0x5a5a, as = 0x5a5a;
    SAME(waitpid(g, &gs, WNOHANG), async_waitpid(a, &as, WNOHANG));
    SAME(waitpid(-1, &gs, WNOHANG), async_waitpid(-1, &as, WNOHANG));
    CHECK_EQ(gs, 0x5a5a);
    CHECK_EQ(as, 0x5a5a);
    siginfo_t gi, ai;
    memset(&gi, 0x5a, sizeof gi);
    memset(&ai, 0x5a, sizeof ai);
    SAME(waitid(P_PID, (id_t)g, &gi, WEXITED | WNOHANG),
         async_waitid(P_PID, (id_t)a, &ai, WEXITED | WNOHANG));
    CHECK_EQ(gi.si_pid, ai.si_pid);
    CHECK_EQ(gi.si_signo, ai.si_signo);
    CHECK_EQ(ai.si_pid, 0);

    /* exited: WNOWAIT reports and leaves it waitable */
    close(gw);
    close(aw);
    await_exit(g);
    await_exit(a);
    SAME(waitid(P_PID, (id_t)g, &gi, WEXITED | WNOWAIT),
         async_waitid(P_PID, (id_t)a, &ai, WEXITED | WNOWAIT));
    CHECK_EQ(gi.si_pid, g);
    CHECK_EQ(ai.si_pid, a);
    CHECK_EQ(gi.si_signo, ai.si_signo);
    CHECK_EQ(gi.si_code, ai.si_code);
    CHECK_EQ(gi.si_status, ai.si_status);
    CHECK_EQ(waitpid(g, &gs, 0), g);
    CHECK_EQ(async_await(async_waitpid(a, &as, 0)), a);
    CHECK_EQ(gs, as);
    CHECK(WIFEXITED(as) && WEXITSTATUS(as) == 7);
    SAME(waitpid(g, &gs, 0), async_waitpid(a, &as, 0)); /* reaped: ECHILD */
    SAME(waitid(P_PID, (id_t)g, &gi, WEXITED), async_waitid(P_PID, (id_t)a, &ai, WEXITED));

    /* killed by a signal, waited for with waitid: the same siginfo */
    g = start_reader(&gw, 0);
    a = start_reader(&aw, 0);
    kill(g, SIGTERM);
    kill(a, SIGTERM);
    SAME(waitid(P_PID, (id_t)g, &gi, WEXITED), async_waitid(P_PID, (id_t)a, &ai, WEXITED));
    CHECK_EQ(gi.si_code, CLD_KILLED);
    CHECK_EQ(gi.si_code, ai.si_code);
    CHECK_EQ(gi.si_status, ai.si_status);
    CHECK_EQ(ai.si_pid, a);
    close(gw);
    close(aw);
}

Test(proc_glibc, wait_children) { both_contexts(wait_children); }

/* wait and wait4: the same errors; wait4's rusage is written only for a
 * child reaped, and says what it used: a child that spins for a while. */
static void wait4_cases(void) {
    int gs = 0x5a5a, as = 0x5a5a;
    struct rusage gr, ar;
    memset(&gr, 0x5a, sizeof gr);
    memset(&ar, 0x5a, sizeof ar);
    SAME(wait(&gs), async_wait(&as)); /* no children */
    SAME(wait4(-1, &gs, 0x10, &gr), async_wait4(-1, &as, 0x10, &ar));
    SAME(wait4(1, &gs, 0, &gr), async_wait4(1, &as, 0, &ar));
    SAME(wait4(INT_MIN, &gs, 0, &gr), async_wait4(INT_MIN, &as, 0, &ar));
    int gw, aw;
    pid_t g = start_reader(&gw, 3), a = start_reader(&aw, 3);
    SAME(wait4(g, &gs, WNOHANG, &gr), async_wait4(a, &as, WNOHANG, &ar));
    CHECK(memcmp(&gr, &ar, sizeof gr) == 0); /* both untouched */
    close(gw);
    close(aw);
    pid_t r1 = wait(&gs), r2 = (pid_t)async_await(async_wait(&as)); /* either child first */
    CHECK((r1 == g && r2 == a) || (r1 == a && r2 == g));
    CHECK_EQ(gs, as);
    CHECK(WIFEXITED(as) && WEXITSTATUS(as) == 3);

    char *argv[] = {"sh", "-c", "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; exit 5", NULL};
    pid_t pid = -1;
    CHECK_EQ(posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ), 0);
    memset(&ar, 0, sizeof ar);
    CHECK_EQ(async_await(async_wait4(pid, &as, 0, &ar)), pid);
    CHECK(WIFEXITED(as) && WEXITSTATUS(as) == 5);
    double cpu =
        ar.ru_utime.tv_sec + ar.ru_stime.tv_sec + (ar.ru_utime.tv_usec + ar.ru_stime.tv_usec) / 1e6;
    CHECK(cpu > 0.0);          /* the spin's time */
    CHECK(ar.ru_maxrss > 100); /* KiB: a shell's resident size */
}

Test(proc_glibc, wait_and_wait4) { both_contexts(wait4_cases); }

/* ---- posix_spawn(p) ------------------------------------------------------------ */

static void spawn_errors(void) {
    char *argv[] = {"x", NULL};
    pid_t gp = 0, ap = 0;
    SAME_ERRNUM(posix_spawn(&gp, "/nonexistent/prog", NULL, NULL, argv, environ),
                async_posix_spawn(&ap, "/nonexistent/prog", NULL, NULL, argv, environ));
    SAME_ERRNUM(posix_spawn(&gp, "/etc/hostname", NULL, NULL, argv, environ), /* not executable */
                async_posix_spawn(&ap, "/etc/hostname", NULL, NULL, argv, environ));
    SAME_ERRNUM(posix_spawn(&gp, "/", NULL, NULL, argv, environ),
                async_posix_spawn(&ap, "/", NULL, NULL, argv, environ));
    SAME_ERRNUM(posix_spawn(&gp, "", NULL, NULL, argv, environ),
                async_posix_spawn(&ap, "", NULL, NULL, argv, environ));
    SAME_ERRNUM(posix_spawnp(&gp, "no-such-program-here", NULL, NULL, argv, environ),
                async_posix_spawnp(&ap, "no-such-program-here", NULL, NULL, argv, environ));
    /* a file action that fails in the child: the error comes back */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 3, "/nonexistent/file", O_RDONLY, 0);
    SAME_ERRNUM(posix_spawn(&gp, "/bin/true", &fa, NULL, argv, environ),
                async_posix_spawn(&ap, "/bin/true", &fa, NULL, argv, environ));
    posix_spawn_file_actions_destroy(&fa);
    /* success: a child each, both exit 0 */
    SAME_ERRNUM(posix_spawnp(&gp, "true", NULL, NULL, argv, environ),
                async_posix_spawnp(&ap, "true", NULL, NULL, argv, environ));
    int gs, as;
    CHECK_EQ(waitpid(gp, &gs, 0), gp);
    CHECK_EQ(waitpid(ap, &as, 0), ap);
    CHECK_EQ(gs, as);
    /* NULL pid: allowed by both */
    SAME_ERRNUM(posix_spawn(NULL, "/bin/true", NULL, NULL, argv, environ),
                async_posix_spawn(NULL, "/bin/true", NULL, NULL, argv, environ));
    CHECK(waitpid(-1, NULL, 0) > 0);
    CHECK(waitpid(-1, NULL, 0) > 0);
}

Test(proc_glibc, spawn_errors) { both_contexts(spawn_errors); }

/* ---- system ----------------------------------------------------------------- */

static void system_statuses(void) {
    SAME(system(NULL), async_system(NULL));
    SAME(system("exit 3"), async_system("exit 3"));
    SAME(system(""), async_system(""));
    SAME(system("kill -TERM $$"), async_system("kill -TERM $$"));
    SAME(system("no-such-command-here 2>/dev/null"),
         async_system("no-such-command-here 2>/dev/null"));
    SAME(system("-x 2>/dev/null"),
         async_system("-x 2>/dev/null")); /* "sh -c -x": sh's usage error */
    SAME(system("exit 300"), async_system("exit 300"));
    SAME(waitpid(-1, NULL, WNOHANG), async_waitpid(-1, NULL, WNOHANG)); /* all reaped */
}

Test(proc_glibc, system_statuses) { both_contexts(system_statuses); }

/* ---- popen and pclose ---------------------------------------------------------- */

static void popen_types(void) {
    static const char *const types[] = {"",   "x",  "rw", "wr", "rr", "e", "re",
                                        "er", "we", "r+", "w ", "rb", "R"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        errno = 0;
        FILE *g = popen("exit 0", types[i]);
        int ge = errno;
        errno = 0;
        async_file_t *a = async_await_ptr(async_popen("exit 0", types[i]));
        int ae = errno;
        if (!g != !a || (!g && ge != ae))
            check_fail(__FILE__, __LINE__, "popen type \"%s\" [%s]: glibc %p/%s, async %p/%s",
                       types[i], compare_where, (void *)g, ename(ge), (void *)a, ename(ae));
        if (g && a) {
            int gfl = fcntl(fileno(g), F_GETFD), afl = fcntl(async_fileno(a), F_GETFD);
            CHECK_EQ(gfl & FD_CLOEXEC, afl & FD_CLOEXEC);
        }
        if (g) pclose(g);
        if (a) (void)async_await(async_pclose(a));
    }
}

Test(proc_glibc, popen_types) { both_contexts(popen_types); }

static void popen_read_write(void) {
    /* "r": the same output and the same status */
    FILE *g = popen("echo one; echo two; exit 5", "r");
    async_file_t *a = async_await_ptr(async_popen("echo one; echo two; exit 5", "r"));
    CHECK(g && a);
    if (!g || !a) return;
    char gb[64] = "", ab[64] = "";
    size_t gn = fread(gb, 1, sizeof gb - 1, g);
    intptr_t an = async_await(async_fread(ab, 1, sizeof ab - 1, a));
    CHECK_EQ(gn, an);
    CHECK(strcmp(gb, ab) == 0);
    SAME(pclose(g), async_pclose(a));
    /* "w": the shell sees what was written, then the end of its input */
    g = popen("read x; test \"$x\" = hello && exit 4", "w");
    a = async_await_ptr(async_popen("read x; test \"$x\" = hello && exit 4", "w"));
    CHECK(g && a);
    if (!g || !a) return;
    fputs("hello\n", g);
    CHECK(async_await(async_fputs("hello\n", a)) >= 0);
    SAME(pclose(g), async_pclose(a));
    /* a shell killed by a signal */
    g = popen("kill -KILL $$", "r");
    a = async_await_ptr(async_popen("kill -KILL $$", "r"));
    CHECK(g && a);
    if (!g || !a) return;
    SAME(pclose(g), async_pclose(a));
    SAME(waitpid(-1, NULL, WNOHANG), async_waitpid(-1, NULL, WNOHANG)); /* nothing left */
}

Test(proc_glibc, popen_read_write) { both_contexts(popen_read_write); }

/* ---- cancellation --------------------------------------------------------------- */

static void cancelled_waits(void) {
    int w;
    pid_t pid = start_reader(&w, 9);
    /* waitpid for one child, for any child, and waitid: each cancelled */
    async_future_t *fs[3] = {async_waitpid(pid, NULL, 0), async_waitpid(-1, NULL, 0), NULL};
    siginfo_t si;
    fs[2] = async_waitid(P_PID, (id_t)pid, &si, WEXITED);
    for (int i = 0; i < 3; i++) {
        CHECK(fs[i] != NULL);
        async_cancel(fs[i]);
        errno = 0;
        CHECK_EQ(async_await(fs[i]), -1);
        CHECK_EQ(errno, ECANCELED);
    }
    /* the child is still there and still ours to reap */
    close(w);
    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 9);
}

Test(proc_glibc, cancelled_wait_leaves_the_child_waitable) { both_contexts(cancelled_waits); }

static void cancelled_system(void) {
    async_future_t *f = async_system("exec sleep 30"); /* nothing left behind once killed */
    CHECK(f != NULL);
    if (!f) return;
    (void)async_await(async_usleep(100000));
    CHECK(!async_future_settled(f)); /* still running */
    async_cancel(f);
    errno = 0;
    CHECK_EQ(async_await(f), -1);
    CHECK_EQ(errno, ECANCELED);
    /* killed and reaped by the library: soon no child is left at all */
    double until = now_ms() + 5000;
    siginfo_t si;
    int r;
    while ((r = waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT)) != -1 && now_ms() < until)
        (void)async_await(async_usleep(2000)); /* a task's worker keeps running meanwhile */
    CHECK_EQ(r, -1);
    CHECK_EQ(errno, ECHILD);
}

Test(proc_glibc, cancelled_system_kills_and_reaps) { both_contexts(cancelled_system); }

/* SIGCHLD ignored by the application: children reap themselves, so every
 * wait ends with ECHILD, for glibc and asyncstd alike. */
static void sigchld_ignored(void) {
    SAME(system("exit 3"), async_system("exit 3"));
    FILE *g = popen("exit 4", "r");
    async_file_t *a = async_await_ptr(async_popen("exit 4", "r"));
    CHECK(g && a);
    if (g && a) SAME(pclose(g), async_pclose(a));
    int gw, aw;
    pid_t gp = start_reader(&gw, 5), ap = start_reader(&aw, 5);
    close(gw);
    close(aw);
    SAME(waitpid(gp, NULL, 0), async_waitpid(ap, NULL, 0));
    SAME(waitpid(-1, NULL, 0), async_waitpid(-1, NULL, 0));
}

Test(proc_glibc, sigchld_ignored) {
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    cr_assert_eq(sigaction(SIGCHLD, &ign, &old), 0);
    both_contexts(sigchld_ignored);
    sigaction(SIGCHLD, &old, NULL);
}

/* The deviations proc.h documents, shown next to what glibc does. */
static void documented_deviations(void) {
    /* popen with no command: glibc runs "sh -c" alone (status 2); asyncstd says EINVAL */
    FILE *g = popen(NULL, "r");
    CHECK(g != NULL);
    if (g) {
        int st = pclose(g);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    }
    CHECK_ERR(async_await_ptr(async_popen(NULL, "r")) ? 0 : -1, EINVAL);
    /* pclose of a stream popen did not make: glibc closes it and returns 0;
     * asyncstd says ECHILD and leaves it open */
    g = fopen("/dev/null", "r");
    CHECK(g != NULL);
    if (g) CHECK_EQ(pclose(g), 0);
    async_file_t *a = async_await_ptr(async_fopen("/dev/null", "r"));
    CHECK(a != NULL);
    if (!a) return;
    CHECK_ERR(async_await(async_pclose(a)), ECHILD);
    CHECK_EQ(async_await(async_fclose(a)), 0);
}

Test(proc_glibc, documented_deviations) { both_contexts(documented_deviations); }
