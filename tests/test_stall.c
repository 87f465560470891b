/* Stall reports (ASYNCSTD_STALL_MS, src/task/stall.c): a task that spins
 * without awaiting is reported once on stderr with its name, its function and
 * the worker's stack; a task that awaits is not; 0 turns the watchdog off; the
 * application's own handlers and signal masks are respected.
 *
 * Each test sets the variable before the runtime starts (Criterion runs each
 * test in a process of its own) and reads its own stderr through a pipe put on
 * fd 2, which the spinning task drains while it spins: it stops as soon as a
 * report has come, so the test is bounded without guessing how slow the
 * machine (or valgrind) is. The tasks' functions are static: the report
 * names them from the symbol table, as a dump does, not only exported ones. */
#include "capture_helpers.h"

#include <signal.h>

#define STALL_MS 50
#define HEADER "asyncstd: stall:"

typedef struct spin {
    double max_ms;     /* never longer than this */
    bool until_report; /* stop STALL_MS * 3 after a report has come */
} spin_t;

/* Holds its worker without awaiting. */
static intptr_t stall_spin_task(void *arg) {
    spin_t *s = arg;
    double start = now_ms(), reported_at = 0;
    while (now_ms() - start < s->max_ms) {
        capture_drain();
        if (s->until_report && !reported_at && strstr(cap.buf, HEADER)) reported_at = now_ms();
        if (reported_at && now_ms() - reported_at > STALL_MS * 3) break;
    }
    return reported_at ? 1 : 0;
}

static intptr_t spin_named(spin_t *s) {
    async_spawn_opts_t o = {.name = "spinner", .worker = 1};
    return async_await(async_spawn_opts(stall_spin_task, s, &o));
}

static void set_stall_ms(const char *v) { cr_assert_eq(setenv("ASYNCSTD_STALL_MS", v, 1), 0); }

/* Starts the runtime with a 50 ms threshold and stderr captured, and spins
 * in a task named "spinner" until a report has come (or 10 s pass); gives 1
 * if one came. The caller stops the runtime, then the capture. */
static intptr_t spin_until_reported(void) {
    set_stall_ms("50");
    capture_start();
    rt_start();
    spin_t s = {.max_ms = 10000, .until_report = true};
    return spin_named(&s);
}

static bool is_default(int sig) {
    struct sigaction cur;
    return sigaction(sig, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
           cur.sa_handler == SIG_DFL;
}

/* The highest real-time signal at its default disposition: SIGRTMAX, but for
 * valgrind, which keeps that one for itself. */
static int top_signal(void) {
    for (int sig = SIGRTMAX; sig >= SIGRTMIN; sig--)
        if (is_default(sig)) return sig;
    return 0;
}

/* The real-time signals at their default before the runtime starts: none but
 * `except` may have changed afterwards. */
static bool was_default[NSIG];

static void note_defaults(void) {
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++) was_default[sig] = is_default(sig);
}

static bool all_default(int except) {
    for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
        if (sig != except && was_default[sig] && !is_default(sig)) return false;
    return true;
}

Test(stall, spinning_task_is_reported_once) {
    intptr_t saw = spin_until_reported();
    rt_stop(); /* joins the watchdog: the report is whole */
    capture_end();
    cr_assert_eq(saw, 1, "no report within 10 s");
    cr_assert_eq(capture_count(HEADER), 1, "one report per stall");
    cr_assert(strstr(cap.buf, "task 'spinner' (function stall_spin_task) "), "names the task");
    cr_assert(strstr(cap.buf, "has held worker 1 for at least"), "names the worker");
    cr_assert(strstr(cap.buf, "its stack:\n    #0  0x"), "comes with a stack, as a dump's");
    /* the stack is the stuck worker's: it goes through the task's function */
    const char *frame = strstr(cap.buf, " stall_spin_task+0x");
    cr_assert(frame, "the stack shows the task's frame");
    const char *eol = strchr(frame, '\n');
    cr_assert(eol && memcmp(eol - 6, " (exe)", 6) == 0, "the frame names its file");
}

/* A task that stalls, awaits, and stalls again is reported twice. */
static intptr_t stall_twice_task(void *arg) {
    spin_t *s = arg;
    for (int round = 0; round < 2; round++) {
        int want = round + 1;
        double start = now_ms(), seen_at = 0;
        while (now_ms() - start < s->max_ms) {
            capture_drain();
            if (!seen_at && capture_count(HEADER) >= want) seen_at = now_ms();
            if (seen_at && now_ms() - seen_at > STALL_MS * 3) break;
        }
        if (async_await(async_usleep(1000)) != 0) return -1;
    }
    return 0;
}

Test(stall, each_stall_is_reported) {
    set_stall_ms("50");
    capture_start();
    rt_start();
    spin_t s = {.max_ms = 10000};
    async_spawn_opts_t o = {.name = "twice", .worker = 1};
    intptr_t r = async_await(async_spawn_opts(stall_twice_task, &s, &o));
    rt_stop();
    capture_end();
    cr_assert_eq(r, 0);
    cr_assert_eq(capture_count(HEADER), 2, "a report per stall, once each");
    cr_assert_eq(capture_count("task 'twice'"), 2);
}

/* Awaits every millisecond or so for 300 ms: never held long. */
static intptr_t polite(void *arg) {
    (void)arg;
    double start = now_ms();
    while (now_ms() - start < 300) {
        double chunk = now_ms();
        while (now_ms() - chunk < 1) {
        }
        if (async_yield() != 0) return -1;
        capture_drain();
    }
    return 0;
}

/* (200 ms, not 50: a report of a task that yields every millisecond would be
 * false at any threshold, and the margin keeps a slow valgrind run honest) */
Test(stall, awaiting_task_is_not_reported) {
    set_stall_ms("200");
    capture_start();
    rt_start();
    intptr_t r = async_await(spawn_on(polite, NULL, 1));
    rt_stop();
    capture_end();
    cr_assert_eq(r, 0);
    cr_assert_eq(capture_count(HEADER), 0);
}

Test(stall, zero_turns_it_off) {
    set_stall_ms("0");
    note_defaults();
    capture_start();
    rt_start();
    cr_assert(all_default(0), "no handler installed");
    spin_t s = {.max_ms = 300};
    intptr_t saw = spin_named(&s);
    rt_stop();
    capture_end();
    cr_assert_eq(saw, 0);
    cr_assert_eq(capture_count(HEADER), 0);
}

static atomic_int app_handler_calls;
static void app_handler(int sig) {
    (void)sig;
    atomic_fetch_add(&app_handler_calls, 1);
}

/* The application's handler on the top signal stays, is never called, and the
 * library's own signal is given back at shutdown. */
Test(stall, application_handler_is_left_alone) {
    struct sigaction app = {.sa_handler = app_handler}, cur;
    sigemptyset(&app.sa_mask);
    int top = top_signal();
    cr_assert_gt(top, 0);
    cr_assert_eq(sigaction(top, &app, NULL), 0);
    note_defaults();
    intptr_t saw = spin_until_reported();
    rt_stop();
    capture_end();
    cr_assert_eq(saw, 1);
    cr_assert(strstr(cap.buf, "its stack:"), "the report has a stack");
    cr_assert_eq(atomic_load(&app_handler_calls), 0);
    sigaction(top, NULL, &cur);
    cr_assert(cur.sa_handler == app_handler, "the application's handler is still there");
    cr_assert(all_default(top), "the library's signal is given back");
}

/* ASYNCSTD_DUMP_SIGNAL naming the signal the watchdog would have taken: the
 * watchdog takes another, so a stall report comes with its stack and makes
 * no dump, and the signal makes a dump. */
Test(stall, dump_signal_on_the_stall_signal) {
    int top = top_signal();
    cr_assert_gt(top, 0);
    char v[16];
    snprintf(v, sizeof v, "%d", top);
    cr_assert_eq(setenv("ASYNCSTD_DUMP_SIGNAL", v, 1), 0);
    note_defaults();
    intptr_t saw = spin_until_reported();
    int dumps_before = capture_count("asyncstd dump:");
    cr_assert_eq(raise(top), 0);
    bool dumped = capture_wait_for("end of asyncstd dump", 10000);
    rt_stop();
    capture_end();
    cr_assert_eq(saw, 1, "no report within 10 s");
    cr_assert(strstr(cap.buf, "its stack:"), "the report has a stack");
    cr_assert_eq(dumps_before, 0, "asking for a stack made a dump");
    cr_assert(dumped, "signal %d made no dump", top);
    cr_assert_eq(capture_count("asyncstd dump:"), 1);
    cr_assert(all_default(0), "every real-time signal given back");
}

/* An application that blocks every signal before starting the runtime (as
 * sigwait(3) teaches) still gets stacks: the workers unblock the library's. */
Test(stall, blocked_signals_still_give_a_stack) {
    sigset_t all;
    sigfillset(&all);
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, &all, NULL), 0);
    intptr_t saw = spin_until_reported();
    rt_stop();
    capture_end();
    cr_assert_eq(saw, 1);
    cr_assert(strstr(cap.buf, "its stack:"), "the report has a stack");
    cr_assert(strstr(cap.buf, " stall_spin_task+0x"));
}

Test(stall, bad_value_is_named_and_the_default_used) {
    set_stall_ms("soon");
    capture_start();
    rt_start();
    rt_stop();
    capture_end();
    cr_assert_eq(capture_count("ASYNCSTD_STALL_MS=\"soon\""), 1);
}

/* A task blocked in a system call (a read on an empty pipe, which SA_RESTART
 * resumes after the handler) holds its worker too: reported, off the CPU. */
static int block_pipe[2];

static intptr_t stall_blocked_reader(void *arg) {
    (void)arg;
    char c;
    return read(block_pipe[0], &c, 1);
}

Test(stall, task_blocked_in_a_system_call_is_reported) {
    cr_assert_eq(pipe(block_pipe), 0);
    set_stall_ms("50");
    capture_start();
    rt_start();
    async_spawn_opts_t o = {.name = "reader", .worker = 1};
    async_future_t *f = async_spawn_opts(stall_blocked_reader, NULL, &o);
    bool seen = capture_wait_for("its stack:", 10000);
    cr_assert_eq(write(block_pipe[1], "x", 1), 1);
    intptr_t r = async_await(f);
    rt_stop();
    capture_end();
    close(block_pipe[0]);
    close(block_pipe[1]);
    cr_assert(seen, "no report within 10 s");
    cr_assert_eq(r, 1, "the read was resumed after the handler, not failed");
    cr_assert_eq(capture_count(HEADER), 1);
    cr_assert(strstr(cap.buf, "task 'reader' (function stall_blocked_reader)"));
    cr_assert(strstr(cap.buf, " stall_blocked_reader+0x"), "the stack shows the task's frame");
}

/* Awaiting the library's own signal takes it over (async_sigwait's handler);
 * after shutdown every real-time signal is back at its default all the same. */
Test(stall, awaiting_the_stall_signal_then_shutdown_gives_it_back) {
    set_stall_ms("50");
    note_defaults();
    int sig = top_signal(); /* the one the library is about to take */
    cr_assert_gt(sig, 0);
    rt_start();
    cr_assert(!is_default(sig), "the library took signal %d", sig);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    struct timespec zero = {0, 0};
    cr_assert_eq(async_await(async_sigtimedwait(&set, NULL, &zero)), -1);
    cr_assert_eq(errno, EAGAIN);
    rt_stop();
    cr_assert(all_default(0), "every real-time signal given back");
}
