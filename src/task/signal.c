/* async_sigwait, async_sigwaitinfo, async_sigtimedwait: signals as futures.
 *
 * From the first wait on a signal on, the library catches it with a handler
 * of its own (sigaction, SA_SIGINFO) on whichever thread the kernel picks,
 * and every worker unblocks it, so that a signal the application blocks in
 * its own threads (the habit sigwait(3) teaches) still reaches a thread. The
 * handler keeps the signal pending in a slot of its own, coalesced as the
 * kernel coalesces a standard signal (a second arrival while one is pending
 * is merged into it, and the first one's siginfo is kept), and then writes to
 * an eventfd. A wait is a probe (io.c) on that eventfd: its attempt takes a
 * pending signal of its set, and every write is an edge on every worker's
 * epoll, so a wait on any worker or plain thread sees a signal raised on any
 * other. The eventfd is never read: a probe that finds nothing pending takes
 * nothing from it, and the next write is the next edge.
 *
 * Rejected: a signalfd read on the workers. It reads only what is pending
 * for the process or the reading thread, so a raise() in a task on one
 * worker, awaited on another, would need every thread to read its own; and
 * it needs the signal blocked in every thread of the process, which the
 * library cannot do for the application's threads (one that forgets kills
 * the process with SIGTERM's default action while a task awaits it).
 *
 * The slot's state: PENDING while a signal waits to be taken, WRITING while a
 * handler fills in its siginfo; the handler claims an empty slot with a
 * compare-and-swap, so two threads taking the signal at once coalesce too.
 * Takers hold `take_lock`: a taker copies the siginfo while PENDING keeps
 * handlers out, then clears it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "asyncstd/signal.h"
#include "internal.h"

enum { PENDING = 1, WRITING = 2 };

typedef struct slot {
    atomic_uint state;
    siginfo_t info;
} slot_t;

static slot_t slots[NSIG];
static atomic_int event_fd = -1; /* read by the handler */
static pthread_mutex_t take_lock = PTHREAD_MUTEX_INITIALIZER;

/* Under `setup_lock`: which signals the library catches, and what was there before. */
static pthread_mutex_t setup_lock = PTHREAD_MUTEX_INITIALIZER;
static sigset_t caught;
static struct sigaction previous[NSIG];

static void on_signal(int sig, siginfo_t *info, void *uctx) {
    (void)uctx;
    int saved = errno;
    slot_t *s = &slots[sig];
    unsigned expected = 0;
    if (atomic_compare_exchange_strong(&s->state, &expected, WRITING)) {
        if (info)
            s->info = *info;
        else
            s->info = (siginfo_t){.si_signo = sig};
        atomic_store_explicit(&s->state, PENDING, memory_order_release);
    } /* else one is pending (or being recorded): merged into it */
    uint64_t one = 1;
    int fd = atomic_load_explicit(&event_fd, memory_order_acquire);
    if (fd >= 0) (void)!write(fd, &one, sizeof one);
    errno = saved;
}

/* Signals a wait may not ask for: faults (a handler that returns re-runs the
 * faulting instruction), those the kernel never lets a handler see, and
 * glibc's own (between SIGRTMIN's kernel and libc values). */
static bool refused(int sig) {
    switch (sig) {
    case SIGSEGV:
    case SIGBUS:
    case SIGILL:
    case SIGFPE:
    case SIGTRAP:
    case SIGSYS:
        return true;
    default:
        return false;
    }
}

static bool never_caught(int sig) {
    return sig == SIGKILL || sig == SIGSTOP || (sig >= 32 && sig < SIGRTMIN);
}

/* Takes the lowest pending signal of `set`, as sigwait(3) does; 0 if none. */
static int take(const sigset_t *set, siginfo_t *info) {
    pthread_mutex_lock(&take_lock);
    int got = 0;
    for (int sig = 1; sig < NSIG && !got; sig++) {
        if (!sigismember(set, sig)) continue;
        slot_t *s = &slots[sig];
        if (!(atomic_load_explicit(&s->state, memory_order_acquire) & PENDING)) continue;
        if (info) {
            *info = s->info;
            /* glibc's sigwaitinfo and sigtimedwait report a raise() (tgkill,
             * SI_TKILL) as SI_USER, as from kill(2): so do these waits */
            if (info->si_code == SI_TKILL) info->si_code = SI_USER;
        }
        atomic_store_explicit(&s->state, 0, memory_order_release); /* handlers wait for this */
        got = sig;
    }
    pthread_mutex_unlock(&take_lock);
    return got;
}

/* ---- catching: from the first wait on a signal ------------------------------ */

typedef struct unblock_msg {
    async__msg_t msg;
    sigset_t set;
} unblock_msg_t;

static void on_unblock(async__worker_t *w, async__msg_t *m) {
    (void)w;
    unblock_msg_t *u = ASYNC_CONTAINER_OF(m, unblock_msg_t, msg);
    pthread_sigmask(SIG_UNBLOCK, &u->set, NULL);
    free(u);
}

/* Catches every signal of `set` not caught yet, and has every worker unblock
 * it (the caller's own at once): a signal every thread of the application
 * blocks must still reach a thread. The messages are allocated before anything
 * changes, so that ENOMEM leaves nothing half done. */
static int catch_set(const sigset_t *set) {
    async__runtime_t *rt = async__runtime();
    if (!rt) return errno;
    pthread_mutex_lock(&setup_lock);
    int err = 0;
    unsigned nmsgs = rt->nworkers + 1;
    unblock_msg_t **msgs = NULL;
    if (atomic_load(&event_fd) < 0) {
        int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0) {
            err = errno;
            goto out;
        }
        async__io_fd_new(fd);
        atomic_store_explicit(&event_fd, fd, memory_order_release);
    }
    sigset_t fresh;
    sigemptyset(&fresh);
    bool any = false;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sigismember(set, sig) && !never_caught(sig) && !sigismember(&caught, sig)) {
            sigaddset(&fresh, sig);
            any = true;
        }
    }
    if (!any) goto out;
    msgs = calloc(nmsgs, sizeof *msgs);
    for (unsigned i = 0; msgs && i < nmsgs; i++) {
        if (!(msgs[i] = malloc(sizeof *msgs[i]))) {
            for (unsigned j = 0; j < i; j++) free(msgs[j]);
            free(msgs);
            msgs = NULL;
        }
    }
    if (!msgs) {
        err = ENOMEM;
        goto out;
    }
    for (int sig = 1; sig < NSIG; sig++) {
        if (!sigismember(&fresh, sig)) continue;
        struct sigaction sa = {.sa_sigaction = on_signal};
        sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        struct sigaction old;
        if (sigaction(sig, NULL, &old) != 0) continue;
        sa.sa_flags |= old.sa_flags & (SA_NOCLDSTOP | SA_NOCLDWAIT); /* SIGCHLD keeps its flags */
        if (sigaction(sig, &sa, NULL) != 0) continue;
        previous[sig] = old;
        sigaddset(&caught, sig);
    }
    for (unsigned i = 0; i < nmsgs; i++) {
        async__worker_t *w = &rt->workers[i];
        if (w == async__tls_worker) {
            pthread_sigmask(SIG_UNBLOCK, &fresh, NULL);
            free(msgs[i]);
            continue;
        }
        msgs[i]->set = fresh;
        msgs[i]->msg.run = on_unblock;
        async__worker_post(w, &msgs[i]->msg);
    }
    free(msgs);
out:
    pthread_mutex_unlock(&setup_lock);
    return err;
}

void async__signal_shutdown(void) {
    pthread_mutex_lock(&setup_lock);
    for (int sig = 1; sig < NSIG; sig++) {
        if (!sigismember(&caught, sig)) continue;
        sigaction(sig, &previous[sig], NULL);
        atomic_store(&slots[sig].state, 0); /* caught and never awaited: dropped */
    }
    sigemptyset(&caught);
    int fd = atomic_exchange(&event_fd, -1);
    if (fd >= 0) close(fd);
    pthread_mutex_unlock(&setup_lock);
}

/* ---- waiting ----------------------------------------------------------------- */

typedef struct sig_op {
    async__io_op_t io; /* first */
    sigset_t set;
    siginfo_t *info; /* the caller's, or NULL */
    int *sig;        /* async_sigwait's, or NULL */
} sig_op_t;

static bool sig_attempt(async__io_op_t *op, intptr_t *value, int *err) {
    sig_op_t *s = (sig_op_t *)op;
    int sig = take(&s->set, s->info);
    if (!sig) return false;
    if (s->sig) *s->sig = sig;
    *value = s->sig ? 0 : sig;
    *err = 0;
    return true;
}

/* Checks the set, catches its signals, and makes the op (not started). */
static sig_op_t *sig_op(const sigset_t *set, siginfo_t *info, int *sig, int *err) {
    if (!set) {
        *err = EFAULT;
        return NULL;
    }
    for (int s = 1; s < NSIG; s++) {
        if (sigismember(set, s) && refused(s)) {
            *err = EINVAL;
            return NULL;
        }
    }
    if ((*err = catch_set(set)) != 0) return NULL;
    sig_op_t *op = (sig_op_t *)async__io_op_new(sizeof(sig_op_t), atomic_load(&event_fd),
                                                ASYNC_IO_READ, sig_attempt);
    if (!op) {
        *err = ENOMEM;
        return NULL;
    }
    op->io.name = "sigwait";
    op->set = *set;
    op->info = info;
    op->sig = sig;
    op->io.probe = true;
    return op;
}

/* Gives back an op that was never started: both of its roles end here. */
static void discard(sig_op_t *op) {
    async__future_complete(&op->io.future, -1, ECANCELED);
    async_future_free(&op->io.future);
}

static async_future_t *wait_for(const sigset_t *set, siginfo_t *info, int *sig) {
    int err;
    sig_op_t *op = sig_op(set, info, sig, &err);
    if (!op) return err == ENOMEM ? NULL : async__future_failed(err);
    return async__io_start(&op->io);
}

async_future_t *async_sigwait(const sigset_t *set, int *sig) {
    if (!sig) return async__future_failed(EFAULT);
    return wait_for(set, NULL, sig);
}

async_future_t *async_sigwaitinfo(const sigset_t *set, siginfo_t *info) {
    return wait_for(set, info, NULL);
}

/* ---- with a timeout: a race of the wait and a timer --------------------------- */

typedef struct timed {
    async__race_t race; /* first */
    sig_op_t *op;       /* started by timed_start */
    async__race_kid_t kid;
} timed_t;

static int timed_start(async__race_t *r) {
    timed_t *t = (timed_t *)r;
    sig_op_t *op = t->op;
    t->op = NULL; /* the race owns it now */
    return async__race_add(r, async__io_start(&op->io));
}

static void timed_end(async__race_t *r, intptr_t *value, int *err) {
    async__race_kid_t *k = &r->kids[0];
    if (r->nkids && k->done && k->err != ECANCELED) { /* taken: never lost to a timeout */
        *value = k->value;
        *err = k->err;
        return;
    }
    *value = -1;
    *err = r->how == RACE_TIMEOUT ? EAGAIN : ECANCELED;
}

static void timed_release(async__race_t *r) {
    timed_t *t = (timed_t *)r;
    if (t->op) discard(t->op); /* never started */
    free(t);
}

static void timed_describe(const async__race_t *r, async__wait_t *out) {
    async__wait_set(out, ASYNC_WAIT_TEXT, "sigtimedwait", NULL, r, NULL, -1);
}

static const async__race_ops_t timed_ops = {timed_start, NULL, timed_end, timed_release,
                                            timed_describe};

async_future_t *async_sigtimedwait(const sigset_t *set, siginfo_t *info,
                                   const struct timespec *timeout) {
    if (!timeout) return wait_for(set, info, NULL);
    /* the kernel reads the set before the timeout: a NULL set is EFAULT first */
    if (!set) return async__future_failed(EFAULT);
    if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec > 999999999L)
        return async__future_failed(EINVAL);
    int err;
    sig_op_t *op = sig_op(set, info, NULL, &err);
    if (!op) return err == ENOMEM ? NULL : async__future_failed(err);
    int sig = take(&op->set, info); /* what is pending costs no wait */
    if (sig || (timeout->tv_sec == 0 && timeout->tv_nsec == 0)) {
        discard(op);
        return sig ? async__future_done(sig) : async__future_failed(EAGAIN);
    }
    timed_t *t = calloc(1, sizeof *t);
    if (!t) {
        discard(op);
        return NULL;
    }
    /* rounded up to whole milliseconds; clamped rather than wrapped */
    int64_t ms = timeout->tv_sec > INT64_MAX / 2000
                     ? INT64_MAX / 2
                     : (int64_t)timeout->tv_sec * 1000 + (timeout->tv_nsec + 999999) / 1000000;
    async__race_init(&t->race, &timed_ops, &t->kid, 1, ms);
    t->op = op;
    return async__race_run(&t->race);
}
