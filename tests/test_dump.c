/* Tests of async_dump and ASYNCSTD_DUMP_SIGNAL: what a dump says of tasks
 * parked on each kind of wait (socket, timer, mutex, channel, pool job, file
 * job, another task), their names, states and backtraces; from a plain thread
 * and from a task; the signal path; bad input and the cap on tasks shown. */
#include "capture_helpers.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

TestSuite(dump, .timeout = 60);

/* Dumps until every needle appears (or 5 s pass); returns the last dump. */
static char *dump_until(const char *const *needles, size_t n) {
    double end = now_ms() + 5000;
    for (;;) {
        char *d = dump_string();
        cr_assert_not_null(d, "async_dump: %s", ename(errno));
        size_t i = 0;
        while (i < n && strstr(d, needles[i])) i++;
        if (i == n || now_ms() > end) return d;
        free(d);
        sleep_ms(5);
    }
}

static void assert_has(const char *dump, const char *needle) {
    cr_assert_not_null(strstr(dump, needle), "\"%s\" not in the dump:\n%s", needle, dump);
}

/* The line that starts a task's block, by its name, or NULL. */
static const char *find_task(const char *dump, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\" (worker", name);
    const char *p = strstr(dump, key);
    if (!p) return NULL;
    while (p > dump && p[-1] != '\n') p--;
    return p;
}

static const char *task_line(const char *dump, const char *name) {
    const char *p = find_task(dump, name);
    cr_assert_not_null(p, "no task \"%s\" in the dump:\n%s", name, dump);
    return p;
}

/* Whether `needle` appears in the block of task `name` (its line and its frames). */
static bool in_block(const char *dump, const char *name, const char *needle) {
    const char *p = find_task(dump, name);
    if (!p) return false;
    const char *end = strstr(p, "\n\n");
    const char *hit = strstr(p, needle);
    return hit && (!end || hit < end);
}

#define ASSERT_IN_BLOCK(dump, name, needle)                                                    \
    cr_assert(in_block(dump, name, needle), "task \"%s\": \"%s\" not in its block:\n%s", name, \
              needle, dump)

static async_future_t *spawn_named(async_task_fn fn, void *arg, const char *name) {
    async_spawn_opts_t o = {0};
    o.name = name;
    async_future_t *f = async_spawn_opts(fn, arg, &o);
    cr_assert_not_null(f);
    return f;
}

/* ---- the tasks, each parked on one kind of wait ------------------------------------ */

static int sock[2];
static async_mutex_t mutex;
static async_chan_t *chan;
static int job_pipe[2];
static char fifo_path[64];

static intptr_t sock_reader(void *arg) {
    (void)arg;
    char c;
    intptr_t r = async_await(async_recv(sock[0], &c, 1, 0));
    return r == 1 ? c : -1;
}

static intptr_t sleeper(void *arg) {
    (void)arg;
    intptr_t r = async_await(async_sleep(60));
    return r == -1 && errno == ECANCELED ? 7 : -1;
}

static intptr_t locker(void *arg) {
    (void)arg;
    intptr_t r = async_await(async_mutex_lock(&mutex));
    if (r == 0) CHECK(async_mutex_unlock(&mutex) == 0);
    return r + 1;
}

static intptr_t chan_reader(void *arg) {
    (void)arg;
    int v = 0;
    intptr_t r = async_await(async_chan_recv(chan, &v));
    return r == 1 ? v : -1;
}

static intptr_t blocking_job(void *arg) {
    (void)arg;
    char c;
    return read(job_pipe[0], &c, 1);
}

static intptr_t pool_waiter(void *arg) {
    (void)arg;
    intptr_t r = async_await(async_spawn_blocking(blocking_job, NULL));
    return r + 1;
}

static intptr_t fifo_opener(void *arg) {
    (void)arg;
    int fd = (int)async_await(async_open(fifo_path, O_RDONLY));
    if (fd >= 0) close(fd);
    return fd >= 0 ? 1 : -1;
}

static intptr_t child(void *arg) {
    (void)arg;
    intptr_t r = async_await(async_sleep(60));
    return r == -1 ? 3 : -1;
}

static async_future_t *child_future;

static intptr_t joiner(void *arg) {
    (void)arg;
    intptr_t r = async_await(child_future);
    return r + 1;
}

/* Also when a check fails midway: a FIFO left in /tmp by every failed run piled up. */
static void remove_fifo(void) {
    if (fifo_path[0]) unlink(fifo_path);
}

Test(dump, each_kind_of_wait_from_a_thread, .fini = remove_fifo) {
    rt_start();
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sock), 0);
    cr_assert_eq(async_mutex_init(&mutex, NULL), 0);
    cr_assert_eq(async_await(async_mutex_lock(&mutex)), 0); /* held by this thread */
    chan = async_chan_new(sizeof(int), 0);
    cr_assert_not_null(chan);
    cr_assert_eq(pipe(job_pipe), 0);
    snprintf(fifo_path, sizeof fifo_path, "/tmp/asyncstd-dump-%d", (int)getpid());
    unlink(fifo_path);
    cr_assert_eq(mkfifo(fifo_path, 0600), 0);

    async_future_t *f[8];
    f[0] = spawn_named(sock_reader, NULL, "sock_reader");
    f[1] = spawn_named(sleeper, NULL, "sleeper");
    f[2] = spawn_named(locker, NULL, "locker");
    f[3] = spawn_named(chan_reader, NULL, "chan_reader");
    f[4] = spawn_named(pool_waiter, NULL, "pool_waiter");
    f[5] = spawn_named(fifo_opener, NULL, "fifo_opener");
    child_future = spawn_named(child, NULL, "child");
    f[6] = spawn_named(joiner, NULL, "joiner");

    char want_recv[32];
    snprintf(want_recv, sizeof want_recv, "awaiting recv(fd %d)", sock[0]);
    char want_fifo[128];
    snprintf(want_fifo, sizeof want_fifo, "awaiting pool: openat \"%s\"", fifo_path);
    const char *needles[] = {want_recv,
                             "awaiting sleep until +",
                             "awaiting mutex 0x",
                             "awaiting channel 0x",
                             "awaiting pool: blocking_job",
                             want_fifo,
                             "\"child\" (worker",
                             "awaiting task ",
                             "in blocking_job"};
    const char *names[] = {"sock_reader", "sleeper",     "locker", "chan_reader",
                           "pool_waiter", "fifo_opener", "joiner"};
    const char *waits[] = {want_recv, "sleep until +", "mutex 0x", "recv", "pool: blocking_job",
                           "openat",  "awaiting task"};
    /* The needles can all be there before every task is parked: the child's
     * sleep matches the sleeper's needle, and a task spawned from this thread
     * is listed only once it has reached its worker, and the joiner can park
     * on the child before the child has parked on its sleep. Dump until each
     * task's block shows its wait (or 5 s pass). */
    char *d;
    for (double end = now_ms() + 5000;;) {
        d = dump_until(needles, sizeof needles / sizeof needles[0]);
        bool all = in_block(d, "child", ": parked ");
        for (size_t i = 0; i < 7 && all; i++)
            all = in_block(d, names[i], ": parked ") && in_block(d, names[i], waits[i]);
        if (all || now_ms() > end) break;
        free(d);
        sleep_ms(5);
    }
    for (size_t i = 0; i < sizeof needles / sizeof needles[0]; i++) assert_has(d, needles[i]);
    assert_has(d, "asyncstd dump: ");
    assert_has(d, "worker 1: ");
    assert_has(d, "pool: ");
    assert_has(d, "busy");
    assert_has(d, "end of asyncstd dump");

    /* each wait in its own task's block, with the task's function in its backtrace */
    for (size_t i = 0; i < 7; i++) {
        ASSERT_IN_BLOCK(d, names[i], ": parked ");
        ASSERT_IN_BLOCK(d, names[i], waits[i]);
        char frame[64];
        snprintf(frame, sizeof frame, " %s+0x", names[i]);
        ASSERT_IN_BLOCK(d, names[i], frame);
        ASSERT_IN_BLOCK(d, names[i], "async_await+0x");
    }
    ASSERT_IN_BLOCK(d, "chan_reader", "channel 0x");
    ASSERT_IN_BLOCK(d, "child", " child+0x");
    /* the joiner awaits the child: its id is in the child's line */
    const char *cl = task_line(d, "child");
    unsigned long long child_id = strtoull(cl + strlen("task "), NULL, 10);
    char want_join[64];
    snprintf(want_join, sizeof want_join, "awaiting task %llu", child_id);
    ASSERT_IN_BLOCK(d, "joiner", want_join);
    free(d);

    /* let every task finish */
    cr_assert_eq(write(sock[1], "x", 1), 1);
    async_cancel(f[1]);
    cr_assert_eq(async_mutex_unlock(&mutex), 0);
    int v = 5;
    cr_assert_eq(async_await(async_chan_send(chan, &v)), 0);
    cr_assert_eq(write(job_pipe[1], "x", 1), 1);
    int wfd = open(fifo_path, O_WRONLY);
    cr_assert_geq(wfd, 0);
    async_cancel(child_future);
    ASSERT_VAL(async_await(f[0]), 'x');
    ASSERT_VAL(async_await(f[1]), 7);
    ASSERT_VAL(async_await(f[2]), 1);
    ASSERT_VAL(async_await(f[3]), 5);
    ASSERT_VAL(async_await(f[4]), 2);
    ASSERT_VAL(async_await(f[5]), 1);
    ASSERT_VAL(async_await(f[6]), 4);
    close(wfd);
    unlink(fifo_path);
    close(sock[0]);
    close(sock[1]);
    close(job_pipe[0]);
    close(job_pipe[1]);
    cr_assert_eq(async_chan_free(chan), 0);
    cr_assert_eq(async_mutex_destroy(&mutex), 0);
    rt_stop();
}

/* ---- from inside a task ------------------------------------------------------------- */

static intptr_t dumping_task(void *arg) {
    char **out = arg;
    *out = dump_string();
    return *out ? 1 : -1;
}

Test(dump, from_a_task) {
    rt_start();
    async_future_t *s = spawn_named(sleeper, NULL, "sleeper");
    const char *parked[] = {"\"sleeper\" (worker"};
    free(dump_until(parked, 1)); /* it has reached its worker: a dump lists it */
    char *d = NULL;
    ASSERT_VAL(async_await(spawn_named(dumping_task, &d, "dumper")), 1);
    cr_assert_not_null(d);
    ASSERT_IN_BLOCK(d, "dumper", ": running");
    ASSERT_IN_BLOCK(d, "dumper", "(the caller)");
    ASSERT_IN_BLOCK(d, "dumper", " dumping_task+0x");
    ASSERT_IN_BLOCK(d, "dumper", " async_dump+0x");
    task_line(d, "sleeper");
    free(d);
    async_cancel(s);
    ASSERT_VAL(async_await(s), 7);
    rt_stop();
}

/* The time a parked task has been parked: taken from its worker's clock as
 * it parks, so it grows with the wall clock between two dumps. */
Test(dump, time_in_state_grows_while_parked) {
    rt_start();
    async_future_t *s = spawn_named(sleeper, NULL, "sleeper");
    const char *parked[] = {"\"sleeper\" (worker"};
    free(dump_until(parked, 1));
    sleep_ms(300);
    char *d = dump_string();
    cr_assert_not_null(d);
    const char *line = task_line(d, "sleeper");
    long ms = -1;
    const char *p = strstr(line, ": parked ");
    cr_assert_not_null(p, "no time in the line:\n%s", d);
    cr_assert_eq(sscanf(p, ": parked %ld ms", &ms), 1, "%s", d);
    /* at least the 300 ms slept here, less a coarse clock tick; well under a minute */
    cr_assert(ms >= 250 && ms < 60000, "parked %ld ms after 300 ms:\n%s", ms, d);
    free(d);
    async_cancel(s);
    ASSERT_VAL(async_await(s), 7);
    rt_stop();
}

/* ---- the signal --------------------------------------------------------------------- */

static void signal_dump(const char *setting, int sig) {
    cr_assert_eq(setenv("ASYNCSTD_DUMP_SIGNAL", setting, 1), 0);
    rt_start();
    async_future_t *s = spawn_named(sleeper, NULL, "sig_sleeper");
    capture_start();
    /* wait for the sleeper to park, so that its block names its wait */
    char *d = NULL;
    for (int tries = 0; tries < 100; tries++) {
        free(d);
        d = dump_string();
        if (d && in_block(d, "sig_sleeper", "awaiting sleep")) break;
        sleep_ms(10);
    }
    free(d);
    cr_assert_eq(raise(sig), 0);
    capture_wait_for("end of asyncstd dump", 10000);
    capture_end();
    assert_has(cap.buf, "asyncstd dump: ");
    ASSERT_IN_BLOCK(cap.buf, "sig_sleeper", "awaiting sleep until +");
    ASSERT_IN_BLOCK(cap.buf, "sig_sleeper", " sleeper+0x");
    assert_has(cap.buf, "end of asyncstd dump");
    async_cancel(s);
    ASSERT_VAL(async_await(s), 7);
    rt_stop();
    unsetenv("ASYNCSTD_DUMP_SIGNAL");
}

Test(dump, on_the_signal_by_name) { signal_dump("SIGUSR1", SIGUSR1); }

Test(dump, on_the_signal_short_name) { signal_dump("quit", SIGQUIT); }

Test(dump, on_the_signal_by_number) { signal_dump("12", SIGUSR2); }

Test(dump, on_a_real_time_signal_counted_from_the_top) { signal_dump("SIGRTMAX-1", SIGRTMAX - 1); }

Test(dump, on_a_real_time_signal_counted_from_the_bottom) { signal_dump("rtmin+3", SIGRTMIN + 3); }

/* After shutdown the previous disposition is back: SIGUSR1 ignored again. */
Test(dump, signal_disposition_restored) {
    cr_assert_neq(signal(SIGUSR1, SIG_IGN), SIG_ERR);
    cr_assert_eq(setenv("ASYNCSTD_DUMP_SIGNAL", "USR1", 1), 0);
    rt_start();
    struct sigaction sa;
    cr_assert_eq(sigaction(SIGUSR1, NULL, &sa), 0);
    cr_assert_neq(sa.sa_handler, SIG_IGN);
    rt_stop();
    cr_assert_eq(sigaction(SIGUSR1, NULL, &sa), 0);
    cr_assert_eq(sa.sa_handler, SIG_IGN);
    unsetenv("ASYNCSTD_DUMP_SIGNAL");
}

/* A setting that names no usable signal is reported on stderr and ignored:
 * the runtime starts, and dumps on demand still work. */
Test(dump, bad_signal_setting) {
    cr_assert_eq(setenv("ASYNCSTD_DUMP_SIGNAL", "SIGNOPE", 1), 0);
    capture_start();
    rt_start(); /* warns before it returns */
    capture_end();
    assert_has(cap.buf, "ignoring ASYNCSTD_DUMP_SIGNAL=\"SIGNOPE\"");
    char *d = dump_string();
    cr_assert_not_null(d);
    assert_has(d, "end of asyncstd dump");
    free(d);
    rt_stop();
    cr_assert_eq(setenv("ASYNCSTD_DUMP_SIGNAL", "SIGKILL", 1), 0); /* refused, once reported */
    rt_start();
    rt_stop();
    unsetenv("ASYNCSTD_DUMP_SIGNAL");
}

/* A real-time name out of range or with the wrong sign is refused with the
 * warning (each test is a process of its own: the warning comes once per
 * process). */
static void refused_setting(const char *setting) {
    cr_assert_eq(setenv("ASYNCSTD_DUMP_SIGNAL", setting, 1), 0);
    capture_start();
    rt_start();
    capture_end();
    char want[96];
    snprintf(want, sizeof want, "ignoring ASYNCSTD_DUMP_SIGNAL=\"%s\"", setting);
    assert_has(cap.buf, want);
    rt_stop();
    unsetenv("ASYNCSTD_DUMP_SIGNAL");
}

Test(dump, rtmax_plus_refused) { refused_setting("SIGRTMAX+1"); }
Test(dump, rtmin_minus_refused) { refused_setting("SIGRTMIN-1"); }
Test(dump, rtmax_beyond_rtmin_refused) { refused_setting("SIGRTMAX-99"); }
Test(dump, rt_without_a_number_refused) { refused_setting("RTMIN+"); }
Test(dump, rt_misspelt_refused) { refused_setting("RTMAXX"); }

/* ---- bad input, no runtime, the cap -------------------------------------------------- */

Test(dump, bad_input) {
    errno = 0;
    cr_assert_eq(async_dump(NULL), -1);
    cr_assert_eq(errno, EINVAL);
    errno = 0;
    cr_assert_eq(async_dump_fd(-1), -1);
    cr_assert_eq(errno, EBADF);
    /* the runtime is not running: one line, and success */
    char *d = dump_string();
    cr_assert_not_null(d);
    assert_has(d, "not running");
    free(d);
}

static intptr_t chan_waiter(void *arg) {
    int v;
    intptr_t r = async_await(async_chan_recv(arg, &v));
    return r == 0 ? 1 : -1;
}

Test(dump, at_most_the_cap_of_tasks) {
    rt_start();
    async_chan_t *c = async_chan_new(sizeof(int), 0);
    cr_assert_not_null(c);
    enum { N = ASYNC_DUMP_TASKS_MAX + 50 };
    async_future_t **fs = calloc(N, sizeof *fs);
    cr_assert_not_null(fs);
    async_spawn_opts_t o = {.stack_size = 16 * 1024};
    for (int i = 0; i < N; i++) {
        fs[i] = async_spawn_opts(chan_waiter, c, &o);
        cr_assert_not_null(fs[i]);
    }
    const char *needles[] = {"more tasks not shown"};
    char *d = dump_until(needles, 1);
    assert_has(d, "more tasks not shown (at most 1000 are)");
    size_t blocks = 0;
    for (const char *p = d; (p = strstr(p, "\ntask ")); p++) blocks++;
    cr_assert_eq(blocks, ASYNC_DUMP_TASKS_MAX);
    free(d);
    cr_assert_eq(async_chan_close(c), 0);
    for (int i = 0; i < N; i++) async_await(fs[i]);
    free(fs);
    cr_assert_eq(async_chan_free(c), 0);
    rt_stop();
}
