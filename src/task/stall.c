/* Stall reports: a watchdog thread that finds a task holding its worker for
 * longer than ASYNCSTD_STALL_MS without switching away, and prints its name
 * and the worker's stack on stderr, once per stall.
 *
 * Nothing is timed on the workers. A task bumps its worker's `ticks` as its
 * code starts or resumes and again just before it switches away (park.c's
 * tick), so the word is odd while task code runs. The watchdog wakes every
 * STALL_MS / 2, and when a worker's ticks are odd and have not moved for
 * STALL_MS, one task has held it that long, unless the kernel kept the
 * thread off the CPU meanwhile (runnable, and under half the span on a CPU:
 * an overloaded machine, not the task; watched on). It then asks the worker
 * for its stack with a real-time signal (pthread_kill): the handler, on the
 * stuck thread, checks that the same task still runs, copies its function
 * and name, and takes the raw frames with backtrace(3), which is safe in a
 * handler once libgcc's unwinder has been loaded (done here, by one call at
 * setup). Symbolizing (symbolize.c, the dump's: it reads the ELF symbol
 * tables, which name static functions too, mapping files and allocating) and
 * printing happen back on the watchdog thread, where that is allowed: the
 * handler does the least it can.
 *
 * The cost on the workers is the second store to `ticks` per task run; the
 * watchdog's own is measured in docs/design.md ("Stall reports and metrics"). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include "dump.h"
#include "internal.h"

#define STALL_MS_DEFAULT 100
#define STALL_MS_MAX 3600000
#define ANSWER_WAIT_MS 1000 /* how long the watchdog waits for a handler to answer */

enum { P_IDLE, P_ASKED, P_BUSY, P_DONE };

static struct {
    uint64_t stall_ns; /* 0: off */
    int sig;           /* 0: no signal taken (off, or none free) */
    struct sigaction previous;
    pthread_t thread;
    bool running;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
} wd = {.lock = PTHREAD_MUTEX_INITIALIZER};

static atomic_int handler_sig; /* read by worker threads as they start */

static void on_stall_signal(int sig) {
    (void)sig;
    int saved = errno;
    async__worker_t *w = async__tls_worker;
    async__stall_probe_t *p = w ? &w->stall : NULL;
    int asked = P_ASKED;
    if (p && atomic_compare_exchange_strong_explicit(&p->state, &asked, P_BUSY,
                                                     memory_order_acquire, memory_order_relaxed)) {
        async__task_t *t = w->current;
        unsigned long ticks = atomic_load_explicit(&w->ticks, memory_order_relaxed);
        p->found = t && ticks == atomic_load_explicit(&p->expect, memory_order_relaxed);
        if (p->found) {
            p->fn = t->fn;
            memcpy(p->name, t->name, sizeof p->name);
            p->name[sizeof p->name - 1] = '\0';
            p->nframes = backtrace(p->frames, ASYNC_STALL_FRAMES);
        }
        atomic_store_explicit(&p->state, P_DONE, memory_order_release);
    }
    errno = saved;
}

static void preload_unwinder(void) {
    void *frame;
    backtrace(&frame, 1); /* dlopens libgcc_s now, not later inside a handler */
}

/* The highest real-time signal nobody handles yet; 0 if none. Never the one
 * ASYNCSTD_DUMP_SIGNAL names, which is still at its default here (the dump
 * signal is installed after the workers start): on a shared signal each
 * stack request would make a dump and the report come without its stack. */
static int pick_signal(void) {
    int dump_sig = async__dump_signal_wanted();
    for (int s = SIGRTMAX; s >= SIGRTMIN; s--) {
        struct sigaction cur;
        if (s == dump_sig) continue;
        if (sigaction(s, NULL, &cur) != 0) continue;
        if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL) return s;
    }
    return 0;
}

void async__stall_setup(void) {
    wd.stall_ns = 0;
    wd.sig = 0;
    const char *env = getenv("ASYNCSTD_STALL_MS");
    uint64_t ms;
    if (env && strcmp(env, "0") == 0)
        ms = 0;
    else {
        ms = async__env_setting("ASYNCSTD_STALL_MS", ASYNC_ENV_STALL_MS, 1, STALL_MS_MAX, false);
        /* under valgrind everything is 20-50 times slower: off unless asked for */
        if (!ms && !RUNNING_ON_VALGRIND) ms = STALL_MS_DEFAULT;
    }
    if (!ms) return;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, preload_unwinder);
    int sig = pick_signal();
    if (sig) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stall_signal;
        sa.sa_flags = SA_RESTART | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sig, &sa, &wd.previous) != 0) sig = 0;
    }
    wd.sig = sig; /* without one, reports come without a stack */
    atomic_store_explicit(&handler_sig, sig, memory_order_relaxed);
    wd.stall_ns = ms * 1000000;
}

void async__stall_thread_init(void) {
    atomic_store_explicit(&async__tls_worker->stall.tid, (int)gettid(), memory_order_relaxed);
    int sig = atomic_load_explicit(&handler_sig, memory_order_relaxed);
    if (!sig) return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

/* The task's function by name, or its address and file when it has none. */
static void function_name(async__symbolizer_t *sym, uintptr_t fn, char *buf, size_t len) {
    if (async__symbol_name(sym, fn, buf, len)) return;
    char where[320];
    async__symbolize(sym, fn, where, sizeof where); /* "? (file+0x...)" */
    snprintf(buf, len, "%#lx %s", (unsigned long)fn, where[0] == '?' ? where + 2 : where);
}

/* The worker thread's CPU time: a report says how much of the stall was
 * computing, and how much was blocked in a system call or waiting for a CPU
 * (on a loaded machine the kernel may hold a worker off the CPU that long). */
static uint64_t cpu_ns(async__worker_t *w) {
    clockid_t id;
    struct timespec ts;
    if (pthread_getcpuclockid(w->thread, &id) != 0 || clock_gettime(id, &ts) != 0) return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether the worker thread is runnable (state R in /proc), as opposed to
 * blocked in a system call; unknown counts as blocked. */
static bool runnable(async__worker_t *w) {
    int tid = atomic_load_explicit(&w->stall.tid, memory_order_relaxed);
    if (!tid) return false;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "re");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* the name before it may hold anything */
    return paren && paren[1] == ' ' && paren[2] == 'R';
}

/* Asks worker `w`'s handler for the stuck task and its stack, and prints the report. */
static void report(async__worker_t *w, unsigned long ticks, uint64_t held_ns, uint64_t cpu) {
    async__stall_probe_t *p = &w->stall;
    bool answered = false;
    if (wd.sig) {
        atomic_store_explicit(&p->expect, ticks, memory_order_relaxed);
        atomic_store_explicit(&p->state, P_ASKED, memory_order_release);
        if (pthread_kill(w->thread, wd.sig) == 0) {
            for (int i = 0; i < ANSWER_WAIT_MS; i++) {
                if (atomic_load_explicit(&p->state, memory_order_acquire) == P_DONE) break;
                nanosleep(&(struct timespec){0, 1000000}, NULL);
            }
        }
        int asked = P_ASKED;
        if (!atomic_compare_exchange_strong(&p->state, &asked, P_IDLE)) {
            /* the handler has it: BUSY lasts one backtrace() */
            while (atomic_load_explicit(&p->state, memory_order_acquire) != P_DONE)
                nanosleep(&(struct timespec){0, 100000}, NULL);
            answered = true;
            atomic_store_explicit(&p->state, P_IDLE, memory_order_relaxed);
            if (!p->found) return; /* it awaited meanwhile: no stall any more */
        }
    }
    /* names first, with stderr not yet locked: reading symbol tables takes a while */
    async__symbolizer_t sym;
    char fname[384];
    char lines[ASYNC_STALL_FRAMES][384];
    /* from the interrupted frame on: the handler and the signal trampoline are not news */
    int skip = answered && p->nframes > 2 ? 2 : 0, nlines = 0;
    async__symbolizer_init(&sym);
    if (answered) {
        function_name(&sym, (uintptr_t)p->fn, fname, sizeof fname);
        for (int i = skip; i < p->nframes; i++, nlines++)
            /* the interrupted frame's address is where it stopped, the others' return addresses */
            async__frame_line(&sym, (unsigned)nlines, (uintptr_t)p->frames[i], i > skip,
                              lines[nlines], sizeof lines[nlines]);
    }
    async__symbolizer_free(&sym);
    FILE *out = stderr;
    flockfile(out);
    fprintf(out, "asyncstd: stall: ");
    if (answered && p->name[0])
        fprintf(out, "task '%s' (function %s) ", p->name, fname);
    else if (answered)
        fprintf(out, "a task (function %s) ", fname);
    else
        fprintf(out, "a task ");
    fprintf(out,
            "has held worker %u for at least %llu ms without yielding it (%llu ms of that on a "
            "CPU; ASYNCSTD_STALL_MS=%llu)",
            w->id, (unsigned long long)(held_ns / 1000000), (unsigned long long)(cpu / 1000000),
            (unsigned long long)(wd.stall_ns / 1000000));
    if (!answered) {
        fprintf(out, "; no stack: %s\n",
                wd.sig ? "the worker did not take the signal in time" : "no free signal");
    } else {
        fprintf(out, "; its stack:\n");
        for (int i = 0; i < nlines; i++) fprintf(out, "%s\n", lines[i]);
    }
    fflush(out);
    funlockfile(out);
}

static void check(async__runtime_t *rt) {
    uint64_t now = uv_hrtime();
    for (unsigned i = 0; i < rt->nworkers; i++) { /* the waiter runs no task */
        async__worker_t *w = &rt->workers[i];
        async__stall_probe_t *p = &w->stall;
        unsigned long ticks = atomic_load_explicit(&w->ticks, memory_order_relaxed);
        if (ticks != p->seen_ticks) {
            p->seen_ticks = ticks;
            p->seen_ns = now;
            p->seen_cpu_ns = (ticks & 1) ? cpu_ns(w) : 0; /* a system call, only in a task */
            continue;
        }
        if (!(ticks & 1) || p->reported == ticks || now - p->seen_ns < wd.stall_ns) continue;
        uint64_t cpu = cpu_ns(w);
        cpu = cpu > p->seen_cpu_ns ? cpu - p->seen_cpu_ns : 0;
        /* A task computing gets the CPU for most of the span, one blocked in a
         * system call none; one that the kernel kept off an overloaded machine's
         * CPUs is neither, and is not to blame: watch on, until its CPU time says
         * it computes or it stops being runnable. */
        if (cpu < wd.stall_ns / 2 && runnable(w)) continue;
        p->reported = ticks;
        report(w, ticks, now - p->seen_ns, cpu);
    }
}

static void *watchdog_main(void *arg) {
    async__runtime_t *rt = arg;
    uint64_t period_ns = wd.stall_ns / 2 ? wd.stall_ns / 2 : 1000000;
    pthread_mutex_lock(&wd.lock);
    while (!wd.stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + period_ns;
        until.tv_sec += (time_t)(ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&wd.cond, &wd.lock, &until);
        if (wd.stop) break;
        pthread_mutex_unlock(&wd.lock);
        check(rt);
        pthread_mutex_lock(&wd.lock);
    }
    pthread_mutex_unlock(&wd.lock);
    return NULL;
}

/* A watchdog that cannot start (no memory for a thread) leaves the runtime
 * running without stall reports: they are a diagnostic, not worth a failed start. */
void async__stall_start(void) {
    if (!wd.stall_ns) return;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd.cond, &ca);
    pthread_condattr_destroy(&ca);
    wd.stop = false;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    wd.running = pthread_create(&wd.thread, &attr, watchdog_main, &async__rt) == 0;
    pthread_attr_destroy(&attr);
    if (wd.running) pthread_setname_np(wd.thread, "asyncstd-stall"); /* for top -H and gdb */
    if (!wd.running) pthread_cond_destroy(&wd.cond);
}

void async__stall_stop(void) {
    if (!wd.running) return;
    pthread_mutex_lock(&wd.lock);
    wd.stop = true;
    pthread_cond_signal(&wd.cond);
    pthread_mutex_unlock(&wd.lock);
    pthread_join(wd.thread, NULL);
    pthread_cond_destroy(&wd.cond);
    wd.running = false;
}

void async__stall_teardown(void) {
    async__stall_stop(); /* a start that failed halfway never stopped it */
    if (wd.sig) {
        struct sigaction cur;
        /* put back what was there, unless the application has taken the signal since */
        if (sigaction(wd.sig, NULL, &cur) == 0 && !(cur.sa_flags & SA_SIGINFO) &&
            cur.sa_handler == on_stall_signal)
            sigaction(wd.sig, &wd.previous, NULL);
    }
    wd.sig = 0;
    wd.stall_ns = 0;
    atomic_store_explicit(&handler_sig, 0, memory_order_relaxed);
}
