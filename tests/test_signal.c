/* async_sigwait, async_sigwaitinfo, async_sigtimedwait: a signal raised on
 * one worker awaited on another and on a plain thread, with the signal
 * blocked by the application or not; pending while nobody waits, coalescing,
 * lowest number first, siginfo; timeouts, EINVAL/EFAULT and no EINTR;
 * cancellation at each wait; SIGCHLD left to an application that reaps its
 * own children; the disposition put back at shutdown. */
#include "helpers.h"

#include <signal.h>
#include <sys/wait.h>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

static sigset_t set_of(int a, int b) {
    sigset_t s;
    sigemptyset(&s);
    if (a) sigaddset(&s, a);
    if (b) sigaddset(&s, b);
    return s;
}

static const struct timespec zero = {0, 0};

struct sigwait_arg {
    int signo;
    atomic_int waiting;
};

static intptr_t await_signal(void *arg) {
    struct sigwait_arg *a = arg;
    sigset_t s = set_of(a->signo, 0);
    int sig = 0;
    async_future_t *f = async_sigwait(&s, &sig);
    atomic_store(&a->waiting, 1);
    if (async_await(f) < 0) return -1;
    return sig;
}

static intptr_t raise_it(void *arg) {
    int how = (int)(intptr_t)arg;
    async_await(async_usleep(20000));
    if (how == 0) return raise(SIGUSR1);
    if (how == 1) return pthread_kill(pthread_self(), SIGUSR1);
    return kill(getpid(), SIGUSR1);
}

static void raised_on_one_worker(int how) {
    rt_start();
    unsigned n = (unsigned)async_worker_count();
    struct sigwait_arg a = {SIGUSR1, 0};
    async_future_t *w = spawn_on(await_signal, &a, 1);
    cr_assert(WAIT_UNTIL(atomic_load(&a.waiting), 5000));
    ASSERT_VAL(async_await(spawn_on(raise_it, (void *)(intptr_t)how, n)), 0);
    ASSERT_VAL(async_await(w), SIGUSR1);
    rt_stop();
}

Test(signal, raise_on_one_worker_awaited_on_another) { raised_on_one_worker(0); }
Test(signal, pthread_kill_on_one_worker_awaited_on_another) { raised_on_one_worker(1); }
Test(signal, kill_awaited_on_a_worker) { raised_on_one_worker(2); }

static void *kill_later(void *arg) {
    sleep_ms(20);
    kill(getpid(), (int)(intptr_t)arg);
    return NULL;
}

Test(signal, awaited_from_a_plain_thread) {
    rt_start();
    sigset_t s = set_of(SIGUSR1, SIGUSR2);
    pthread_t t = thread_start(kill_later, (void *)(intptr_t)SIGUSR2);
    int sig = 0;
    ASSERT_VAL(async_await(async_sigwait(&s, &sig)), 0);
    cr_assert_eq(sig, SIGUSR2);
    pthread_join(t, NULL);
    rt_stop();
}

/* The sigwait(3) habit: the application blocks the signal in main before
 * anything starts, so every thread inherits it blocked. The workers unblock it. */
Test(signal, blocked_by_the_application_everywhere) {
    sigset_t s = set_of(SIGTERM, 0);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    rt_start();
    pthread_t t = thread_start(kill_later, (void *)(intptr_t)SIGTERM);
    siginfo_t info;
    ASSERT_VAL(async_await(async_sigwaitinfo(&s, &info)), SIGTERM);
    cr_assert_eq(info.si_signo, SIGTERM);
    cr_assert_eq(info.si_code, SI_USER);
    cr_assert_eq(info.si_pid, getpid());
    pthread_join(t, NULL);
    rt_stop();
}

Test(signal, pending_while_nobody_waits_and_coalesced) {
    rt_start();
    sigset_t s = set_of(SIGUSR1, 0);
    /* the first wait starts catching (nothing pending yet: EAGAIN at once, as libc) */
    ASSERT_ERR(async_await(async_sigtimedwait(&s, NULL, &zero)), EAGAIN);
    /* to this thread, which does not block SIGUSR1: each is caught before the call returns
     * (valgrind, which runs handlers at its own points, is given time) */
    cr_assert_eq(pthread_sigqueue(pthread_self(), SIGUSR1, (union sigval){.sival_int = 7}), 0);
    cr_assert_eq(pthread_sigqueue(pthread_self(), SIGUSR1, (union sigval){.sival_int = 8}), 0);
    raise(SIGUSR1);
    sleep_ms(RUNNING_ON_VALGRIND ? 200 : 10);
    siginfo_t info;
    ASSERT_VAL(async_await(async_sigtimedwait(&s, &info, &zero)), SIGUSR1);
    cr_assert_eq(info.si_code, SI_QUEUE);
    cr_assert_eq(info.si_value.sival_int, 7);                             /* the first arrival's */
    ASSERT_ERR(async_await(async_sigtimedwait(&s, NULL, &zero)), EAGAIN); /* merged */
    rt_stop();
}

Test(signal, lowest_number_first_as_libc) {
    rt_start();
    sigset_t s = set_of(SIGUSR1, SIGUSR2);
    ASSERT_ERR(async_await(async_sigtimedwait(&s, NULL, &zero)), EAGAIN);
    raise(SIGUSR2);
    raise(SIGUSR1);
    sleep_ms(RUNNING_ON_VALGRIND ? 200 : 0); /* see above */
    int sig = 0;
    ASSERT_VAL(async_await(async_sigwait(&s, &sig)), 0);
    cr_assert_eq(sig, SIGUSR1);
    ASSERT_VAL(async_await(async_sigwait(&s, &sig)), 0);
    cr_assert_eq(sig, SIGUSR2);
    rt_stop();
}

Test(signal, sigtimedwait_times_out_with_eagain) {
    rt_start();
    sigset_t s = set_of(SIGUSR1, 0);
    struct timespec ts = {0, 40 * 1000000};
    double t0 = now_ms();
    ASSERT_ERR(async_await(async_sigtimedwait(&s, NULL, &ts)), EAGAIN);
    cr_assert(now_ms() - t0 >= 39);
    /* libc says the same for a blocked signal */
    sigset_t old;
    pthread_sigmask(SIG_BLOCK, &s, &old);
    ASSERT_ERR(sigtimedwait(&s, NULL, &zero), EAGAIN);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* and a signal in time is reported */
    pthread_t t = thread_start(kill_later, (void *)(intptr_t)SIGUSR1);
    ts.tv_sec = 5;
    ASSERT_VAL(async_await(async_sigtimedwait(&s, NULL, &ts)), SIGUSR1);
    pthread_join(t, NULL);
    rt_stop();
}

Test(signal, bad_input) {
    rt_start();
    sigset_t s = set_of(SIGUSR1, 0);
    int sig;
    struct timespec bad[3] = {{0, 1000000000L}, {0, -1}, {-1, 0}};
    for (int i = 0; i < 3; i++) {
        ASSERT_ERR(async_await(async_sigtimedwait(&s, NULL, &bad[i])), EINVAL);
        ASSERT_ERR(sigtimedwait(&s, NULL, &bad[i]), EINVAL); /* as libc */
    }
    ASSERT_ERR(async_await(async_sigwait(NULL, &sig)), EFAULT);
    ASSERT_ERR(async_await(async_sigwait(&s, NULL)), EFAULT);
    ASSERT_ERR(async_await(async_sigwaitinfo(NULL, NULL)), EFAULT);
    sigset_t fault = set_of(SIGUSR1, SIGSEGV);
    ASSERT_ERR(async_await(async_sigwait(&fault, &sig)), EINVAL);
    /* SIGKILL and SIGSTOP are ignored in a set, as the kernel ignores them */
    sigset_t ks = set_of(SIGKILL, SIGSTOP);
    ASSERT_ERR(async_await(async_sigtimedwait(&ks, NULL, &zero)), EAGAIN);
    rt_stop();
}

static atomic_int handled;
static void on_usr2(int sig) {
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

/* sigwaitinfo(2) would fail with EINTR when another signal's handler runs;
 * the wait goes on instead. */
Test(signal, a_handler_of_the_application_does_not_interrupt_a_wait) {
    struct sigaction sa = {.sa_handler = on_usr2};
    sigaction(SIGUSR2, &sa, NULL);
    rt_start();
    sigset_t s = set_of(SIGUSR1, 0);
    async_future_t *f = async_sigwaitinfo(&s, NULL);
    sleep_ms(10);
    kill(getpid(), SIGUSR2);
    cr_assert(WAIT_UNTIL(atomic_load(&handled) == 1, 5000));
    sleep_ms(10);
    cr_assert(!async_future_settled(f));
    kill(getpid(), SIGUSR1);
    ASSERT_VAL(async_await(f), SIGUSR1);
    rt_stop();
    /* signals nobody awaited keep the application's handler */
    struct sigaction now;
    sigaction(SIGUSR2, NULL, &now);
    cr_assert(now.sa_handler == on_usr2);
}

static intptr_t cancelled_waits(void *arg) {
    (void)arg;
    sigset_t s = set_of(SIGUSR1, 0);
    int sig;
    async_future_t *f = async_sigwait(&s, &sig);
    async_cancel(f);
    CHECK_ERR(async_await(f), ECANCELED);
    struct timespec ts = {10, 0};
    f = async_sigtimedwait(&s, NULL, &ts);
    async_cancel(f);
    CHECK_ERR(async_await(f), ECANCELED);
    CHECK_ERR(async_await_timeout(async_sigwaitinfo(&s, NULL), 20), ETIMEDOUT);
    CHECK_ERR(async_await_timeout(async_sigtimedwait(&s, NULL, &ts), 20), ETIMEDOUT);
    /* the cancelled waits took nothing: a signal now is the next wait's */
    raise(SIGUSR1);
    CHECK_EQ(async_await(async_sigtimedwait(&s, NULL, &ts)), SIGUSR1);
    return 0;
}

Test(signal, cancellation_at_each_wait) {
    rt_start();
    ASSERT_VAL(async_await(async_spawn(cancelled_waits, NULL)), 0);
    ASSERT_VAL(cancelled_waits(NULL), 0);
    /* a task cancelled while it waits */
    struct sigwait_arg a = {SIGUSR2, 0};
    async_future_t *t = async_spawn(await_signal, &a);
    cr_assert(WAIT_UNTIL(atomic_load(&a.waiting), 5000));
    sleep_ms(10);
    async_cancel(t);
    ASSERT_ERR(async_await(t), ECANCELED);
    rt_stop();
}

/* The application forks and reaps its own child; a task awaiting SIGCHLD sees
 * the signal, and the child's status is still the application's. */
Test(signal, sigchld_is_not_stolen_from_the_applications_waitpid) {
    rt_start();
    struct sigwait_arg a = {SIGCHLD, 0};
    async_future_t *w = async_spawn(await_signal, &a);
    cr_assert(WAIT_UNTIL(atomic_load(&a.waiting), 5000));
    pid_t pid = fork_exit(42);
    ASSERT_VAL(async_await(w), SIGCHLD);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status));
    cr_assert_eq(WEXITSTATUS(status), 42);
    rt_stop();
}

/* Without a wait on SIGCHLD, the library does not touch it at all. */
Test(signal, sigchld_untouched_unless_awaited) {
    rt_start();
    sigset_t s = set_of(SIGUSR1, 0);
    ASSERT_ERR(async_await(async_sigtimedwait(&s, NULL, &zero)), EAGAIN);
    struct sigaction now;
    sigaction(SIGCHLD, NULL, &now);
    cr_assert(now.sa_handler == SIG_DFL);
    pid_t pid = fork_exit(3);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert_eq(WEXITSTATUS(status), 3);
    rt_stop();
}

Test(signal, shutdown_puts_the_disposition_back) {
    struct sigaction sa = {.sa_handler = SIG_IGN};
    sigaction(SIGUSR1, &sa, NULL);
    rt_start();
    sigset_t s = set_of(SIGUSR1, 0);
    ASSERT_ERR(async_await(async_sigtimedwait(&s, NULL, &zero)), EAGAIN);
    struct sigaction now;
    sigaction(SIGUSR1, NULL, &now);
    cr_assert(now.sa_handler != SIG_IGN);
    rt_stop();
    sigaction(SIGUSR1, NULL, &now);
    cr_assert(now.sa_handler == SIG_IGN);
    /* and a runtime started again catches afresh */
    rt_start();
    pthread_t t = thread_start(kill_later, (void *)(intptr_t)SIGUSR1);
    ASSERT_VAL(async_await(async_sigwaitinfo(&s, NULL)), SIGUSR1);
    pthread_join(t, NULL);
    rt_stop();
}

/* Many waiters on every worker; each signal is taken by exactly one. */
#define WAITERS 40

Test(signal, many_waiters_each_signal_taken_once) {
    rt_start();
    static struct sigwait_arg args[WAITERS];
    async_future_t *fs[WAITERS];
    unsigned n = (unsigned)async_worker_count();
    for (int i = 0; i < WAITERS; i++) {
        args[i] = (struct sigwait_arg){SIGUSR1, 0};
        fs[i] = spawn_on(await_signal, &args[i], 1 + (unsigned)i % n);
    }
    for (int i = 0; i < WAITERS; i++) cr_assert(WAIT_UNTIL(atomic_load(&args[i].waiting), 5000));
    for (int k = 1; k <= WAITERS; k++) {
        kill(getpid(), SIGUSR1);
        int settled = 0;
        double end = now_ms() + 5000;
        while (now_ms() < end) { /* one more waiter ends, and only one */
            settled = 0;
            for (int i = 0; i < WAITERS; i++) settled += async_future_settled(fs[i]);
            if (settled >= k) break;
            sleep_ms(1);
        }
        cr_assert_eq(settled, k);
    }
    for (int i = 0; i < WAITERS; i++) ASSERT_VAL(async_await(fs[i]), SIGUSR1);
    rt_stop();
}
