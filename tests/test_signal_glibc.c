/* signal.h against glibc: sigwait, sigwaitinfo and sigtimedwait on the same
 * inputs (NULL and empty sets, SIGKILL-only sets, bad and zero timeouts),
 * and on the same pending signals (which one is taken first, coalescing, the
 * siginfo of raise() and pthread_sigqueue()), from a plain thread and from a
 * task. glibc's side blocks the signals on the calling thread, as sigwait
 * asks; asyncstd's side needs nothing blocked. Then cancellation: a signal
 * arriving after a wait was cancelled stays pending for the next wait. */
#include "glibc_compare.h"

#include <signal.h>
#include <time.h>

/* NULL sets are among the inputs compared, on purpose. glibc declares the
 * set nonnull, and UBSan checks that attribute at each direct call, so
 * glibc's side of those rows is called through pointers, whose type says
 * nothing of it: the kernel's EFAULT is what is compared. */
#pragma GCC diagnostic ignored "-Wnonnull"
static int (*volatile glibc_sigwait)(const sigset_t *, int *) = sigwait;
static int (*volatile glibc_sigwaitinfo)(const sigset_t *, siginfo_t *) = sigwaitinfo;
static int (*volatile glibc_sigtimedwait)(const sigset_t *, siginfo_t *,
                                          const struct timespec *) = sigtimedwait;

TestSuite(signal_glibc, .init = rt_start, .fini = rt_stop, .timeout = 60);

static const struct timespec zero = {0, 0};

static sigset_t set_of(int a, int b) {
    sigset_t s;
    sigemptyset(&s);
    if (a) sigaddset(&s, a);
    if (b) sigaddset(&s, b);
    return s;
}

static void bad_inputs(void) {
    sigset_t usr1 = set_of(SIGUSR1, 0), empty = set_of(0, 0), kill_stop = set_of(SIGKILL, SIGSTOP);
    siginfo_t gi, ai;
    int gs, as;
    /* glibc's sigwait returns the error number */
    SAME_ERRNUM(glibc_sigwait(NULL, &gs), async_sigwait(NULL, &as));
    SAME(glibc_sigwaitinfo(NULL, &gi), async_sigwaitinfo(NULL, &ai));
    SAME(glibc_sigtimedwait(NULL, &gi, &zero), async_sigtimedwait(NULL, &ai, &zero));
    SAME(glibc_sigtimedwait(NULL, NULL, NULL), async_sigtimedwait(NULL, NULL, NULL));
    static const struct timespec bad[] = {{0, -1},          {0, 1000000000L}, {-1, 0},
                                          {-1, 999999999L}, {1, -5},          {0, 2000000000L}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        SAME(sigtimedwait(&usr1, &gi, &bad[i]), async_sigtimedwait(&usr1, &ai, &bad[i]));
        SAME(sigtimedwait(&empty, &gi, &bad[i]), async_sigtimedwait(&empty, &ai, &bad[i]));
        /* the set is read first: NULL is EFAULT whatever the timeout */
        SAME(glibc_sigtimedwait(NULL, &gi, &bad[i]), async_sigtimedwait(NULL, &ai, &bad[i]));
    }
    /* nothing pending: a zero timeout only looks, a short one waits */
    SAME(sigtimedwait(&usr1, &gi, &zero), async_sigtimedwait(&usr1, &ai, &zero));
    SAME(sigtimedwait(&usr1, NULL, &zero), async_sigtimedwait(&usr1, NULL, &zero));
    SAME(sigtimedwait(&empty, &gi, &zero), async_sigtimedwait(&empty, &ai, &zero));
    SAME(sigtimedwait(&kill_stop, &gi, &zero), async_sigtimedwait(&kill_stop, &ai, &zero));
    struct timespec short_wait = {0, 20 * 1000000L};
    double t0 = now_ms();
    SAME(sigtimedwait(&empty, &gi, &short_wait), async_sigtimedwait(&empty, &ai, &short_wait));
    CHECK(now_ms() - t0 >= 2 * 20 - 1);
    SAME(sigtimedwait(&kill_stop, &gi, &short_wait),
         async_sigtimedwait(&kill_stop, &ai, &short_wait));
}

Test(signal_glibc, bad_inputs) { both_contexts(bad_inputs); }

/* An empty set, or one of only SIGKILL and SIGSTOP, waits for ever, as
 * sigwait(2) does: the futures are still pending after a while. */
static void waits_for_ever(void) {
    sigset_t empty = set_of(0, 0), kill_stop = set_of(SIGKILL, SIGSTOP);
    int sig;
    async_future_t *fs[3] = {async_sigwait(&empty, &sig), async_sigwaitinfo(&kill_stop, NULL),
                             async_sigtimedwait(&empty, NULL, NULL)};
    (void)async_await(async_usleep(50000));
    cancel_all_pending(fs, 3);
}

Test(signal_glibc, empty_sets_wait_for_ever) { both_contexts(waits_for_ever); }

/* Raises `a` then `b` on this thread, with both blocked for glibc's side. */
static void raise_blocked(int a, int b, sigset_t *old) {
    sigset_t both = set_of(a, b);
    pthread_sigmask(SIG_BLOCK, &both, old);
    raise(a);
    if (b) raise(b);
}

static void pending_signals(void) {
    sigset_t usr = set_of(SIGUSR1, SIGUSR2), old;
    siginfo_t gi, ai;
    /* catching starts with the first async wait: make it before the raises */
    CHECK_ERR(async_await(async_sigtimedwait(&usr, &ai, &zero)), EAGAIN);

    /* the lowest pending first, one each, then nothing: glibc's side */
    int g[3], ge[3], a[3], ae[3];
    raise_blocked(SIGUSR2, SIGUSR1, &old);
    for (int i = 0; i < 3; i++) {
        errno = 0;
        g[i] = sigtimedwait(&usr, &gi, &zero);
        ge[i] = errno;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* the same on asyncstd's side, which needs nothing blocked */
    raise(SIGUSR2);
    raise(SIGUSR1);
    for (int i = 0; i < 3; i++) {
        errno = 0;
        a[i] = (int)async_await(async_sigtimedwait(&usr, &ai, &zero));
        ae[i] = errno;
    }
    for (int i = 0; i < 3; i++)
        if (g[i] != a[i] || (g[i] < 0 && ge[i] != ae[i]))
            check_fail(__FILE__, __LINE__, "take %d [%s]: glibc %d/%s, async %d/%s", i,
                       compare_where, g[i], ename(ge[i]), a[i], ename(ae[i]));

    /* two raises of one standard signal while it is pending: one is taken */
    raise_blocked(SIGUSR1, SIGUSR1, &old);
    int g1 = sigtimedwait(&usr, NULL, &zero), g2 = sigtimedwait(&usr, NULL, &zero);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    raise(SIGUSR1);
    raise(SIGUSR1);
    int a1 = (int)async_await(async_sigtimedwait(&usr, NULL, &zero));
    int a2 = (int)async_await(async_sigtimedwait(&usr, NULL, &zero));
    CHECK_EQ(g1, a1);
    CHECK_EQ(g2, a2);

    /* the siginfo of raise() and of pthread_sigqueue(): the same fields */
    static const int how[] = {0, 1};
    for (size_t i = 0; i < sizeof how / sizeof *how; i++) {
        union sigval v = {.sival_int = 4242};
        sigset_t one = set_of(SIGUSR2, 0);
        pthread_sigmask(SIG_BLOCK, &one, &old);
        if (how[i])
            pthread_sigqueue(pthread_self(), SIGUSR2, v);
        else
            raise(SIGUSR2);
        memset(&gi, 0, sizeof gi);
        int gr = sigwaitinfo(&one, &gi);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (how[i])
            pthread_sigqueue(pthread_self(), SIGUSR2, v);
        else
            raise(SIGUSR2);
        memset(&ai, 0, sizeof ai);
        int ar = (int)async_await(async_sigwaitinfo(&one, &ai));
        CHECK_EQ(gr, ar);
        CHECK_EQ(gi.si_signo, ai.si_signo);
        CHECK_EQ(gi.si_code, ai.si_code);
        CHECK_EQ(gi.si_pid, ai.si_pid);
        CHECK_EQ(gi.si_uid, ai.si_uid);
        CHECK_EQ(gi.si_value.sival_int, ai.si_value.sival_int);
        /* and sigwait's number */
        int gs = 0, as = 0;
        pthread_sigmask(SIG_BLOCK, &one, &old);
        raise(SIGUSR2);
        int grc = sigwait(&one, &gs);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        raise(SIGUSR2);
        CHECK_EQ(async_await(async_sigwait(&one, &as)), 0);
        CHECK_EQ(grc, 0);
        CHECK_EQ(gs, as);
    }
}

Test(signal_glibc, pending_signals) { both_contexts(pending_signals); }

/* A signal arriving after a wait was cancelled is not lost: the next wait takes it. */
static void cancelled_wait_leaves_it_pending(void) {
    sigset_t usr1 = set_of(SIGUSR1, 0);
    siginfo_t info;
    int sig;
    struct timespec long_wait = {30, 0};
    async_future_t *fs[3] = {async_sigwait(&usr1, &sig), async_sigwaitinfo(&usr1, &info),
                             async_sigtimedwait(&usr1, &info, &long_wait)};
    for (int i = 0; i < 3; i++) {
        CHECK(fs[i] != NULL);
        async_cancel(fs[i]);
        errno = 0;
        CHECK_EQ(async_await(fs[i]), -1);
        CHECK_EQ(errno, ECANCELED);
    }
    raise(SIGUSR1);
    CHECK_EQ(async_await(async_sigtimedwait(&usr1, &info, &zero)), SIGUSR1);
    CHECK_EQ(info.si_signo, SIGUSR1);
    CHECK_ERR(async_await(async_sigtimedwait(&usr1, &info, &zero)), EAGAIN);
}

Test(signal_glibc, cancelled_wait_leaves_the_signal_pending) {
    both_contexts(cancelled_wait_leaves_it_pending);
}

/* The deviations signal.h documents, shown next to what glibc does. */
static void documented_deviations(void) {
    /* a fault signal in the set: glibc waits for it, asyncstd says EINVAL */
    sigset_t segv = set_of(SIGSEGV, 0);
    siginfo_t info;
    CHECK_ERR(sigtimedwait(&segv, &info, &zero), EAGAIN);
    CHECK_ERR(async_await(async_sigtimedwait(&segv, &info, &zero)), EINVAL);
    /* two queued real-time signals: glibc takes both, asyncstd merges them.
     * Not under valgrind: its delivery of the second queued one to the
     * library's handler overflows the stack ("Can't extend stack during
     * signal delivery"), which a plain or ASan run never does. */
    if (RUNNING_ON_VALGRIND) return;
    int rt = SIGRTMIN + 2;
    sigset_t rtset = set_of(rt, 0), old;
    union sigval v = {.sival_int = 1};
    pthread_sigmask(SIG_BLOCK, &rtset, &old);
    pthread_sigqueue(pthread_self(), rt, v);
    pthread_sigqueue(pthread_self(), rt, v);
    CHECK_EQ(sigtimedwait(&rtset, NULL, &zero), rt);
    CHECK_EQ(sigtimedwait(&rtset, NULL, &zero), rt);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    CHECK_ERR(async_await(async_sigtimedwait(&rtset, NULL, &zero)), EAGAIN); /* now caught */
    pthread_sigqueue(pthread_self(), rt, v);
    pthread_sigqueue(pthread_self(), rt, v);
    CHECK_EQ(async_await(async_sigtimedwait(&rtset, NULL, &zero)), rt);
    CHECK_ERR(async_await(async_sigtimedwait(&rtset, NULL, &zero)), EAGAIN);
}

Test(signal_glibc, documented_deviations) { both_contexts(documented_deviations); }
