/* ASYNCSTD_DUMP_SIGNAL: a dump on stderr each time a chosen signal arrives.
 *
 * The handler only writes a byte to a pipe (async-signal-safe, and it
 * preserves errno); a thread of the runtime's reads the pipe and dumps, so
 * the dump itself runs in an ordinary thread where it may lock and allocate.
 * sigwait(3) in that thread was rejected: it needs the signal blocked in
 * every thread, and the application's threads are not ours to change. The
 * previous disposition comes back at shutdown. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "asyncstd/debug.h"
#include "dump.h"
#include "internal.h"

static struct {
    int sig; /* 0: off */
    int pipe[2];
    pthread_t thread;
    struct sigaction old;
} ds = {.pipe = {-1, -1}};

static atomic_bool warned;

static const struct {
    const char *name;
    int sig;
} names[] = {{"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"USR1", SIGUSR1},
             {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},   {"TERM", SIGTERM},
             {"CHLD", SIGCHLD},     {"CONT", SIGCONT}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
             {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
             {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"SYS", SIGSYS},
             {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}};

/* A real-time signal as "RTMIN", "RTMIN+n", "RTMAX" or "RTMAX-n" (the
 * "SIG" already skipped), as kill(1) names them; 0 if `s` is not one. */
static int parse_rt(const char *s) {
    bool max = strncasecmp(s, "RTMAX", 5) == 0;
    if (!max && strncasecmp(s, "RTMIN", 5) != 0) return 0;
    long off = 0;
    if (s[5]) {
        char *end;
        if (s[5] != (max ? '-' : '+') || !(s[6] >= '0' && s[6] <= '9')) return 0;
        off = strtol(s + 6, &end, 10);
        if (*end) return 0;
    }
    if (off > SIGRTMAX - SIGRTMIN) return 0;
    return max ? SIGRTMAX - (int)off : SIGRTMIN + (int)off;
}

/* The signal a setting names ("SIGQUIT", "quit", "3", "SIGRTMIN+2",
 * "SIGRTMAX-1"), or 0. */
static int parse(const char *s) {
    if (strncasecmp(s, "SIG", 3) == 0) s += 3;
    if (*s >= '0' && *s <= '9') {
        char *end;
        long v = strtol(s, &end, 10);
        return *end == '\0' && v > 0 && v < NSIG ? (int)v : 0;
    }
    if (strncasecmp(s, "RT", 2) == 0) return parse_rt(s);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(s, names[i].name) == 0) return names[i].sig;
    return 0;
}

int async__dump_signal_wanted(void) {
    const char *env = getenv("ASYNCSTD_DUMP_SIGNAL");
    return env && *env ? parse(env) : 0;
}

static void on_signal(int sig) {
    (void)sig;
    int saved = errno;
    char c = 'd';
    ssize_t r = write(ds.pipe[1], &c, 1); /* a full pipe has dumps pending already */
    (void)r;
    errno = saved;
}

static void *dump_main(void *arg) {
    (void)arg;
    for (;;) {
        char c;
        ssize_t r = read(ds.pipe[0], &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || c == 'q') break;
        async_dump_fd(STDERR_FILENO);
    }
    return NULL;
}

void async__dump_signal_start(void) {
    const char *env = getenv("ASYNCSTD_DUMP_SIGNAL");
    if (!env || !*env) return;
    int sig = parse(env);
    if (!sig || sig == SIGKILL || sig == SIGSTOP || sig == SIGSEGV || sig == SIGBUS ||
        sig == SIGFPE || sig == SIGILL) {
        if (!atomic_exchange(&warned, true))
            fprintf(
                stderr,
                "asyncstd: ignoring ASYNCSTD_DUMP_SIGNAL=\"%.32s\": not a signal a dump can use\n",
                env);
        return;
    }
    if (pipe2(ds.pipe, O_CLOEXEC) != 0) goto fail;
    fcntl(ds.pipe[1], F_SETFL, O_NONBLOCK); /* the handler never blocks */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the thread takes no signal of the program's */
    int err = pthread_create(&ds.thread, NULL, dump_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        errno = err;
        goto fail;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, &ds.old) != 0) {
        char q = 'q';
        if (write(ds.pipe[1], &q, 1) == 1) pthread_join(ds.thread, NULL);
        goto fail;
    }
    ds.sig = sig;
    return;
fail:
    fprintf(stderr, "asyncstd: ASYNCSTD_DUMP_SIGNAL: %s; no dumps on the signal\n",
            strerror(errno));
    for (int i = 0; i < 2; i++) {
        if (ds.pipe[i] >= 0) close(ds.pipe[i]);
        ds.pipe[i] = -1;
    }
}

void async__dump_signal_stop(void) {
    if (!ds.sig) return;
    sigaction(ds.sig, &ds.old, NULL);
    char q = 'q';
    /* the pipe may be full of pending dumps: wait for room */
    fcntl(ds.pipe[1], F_SETFL, 0);
    if (write(ds.pipe[1], &q, 1) == 1) pthread_join(ds.thread, NULL);
    close(ds.pipe[0]);
    close(ds.pipe[1]);
    ds.pipe[0] = ds.pipe[1] = -1;
    ds.sig = 0;
}
