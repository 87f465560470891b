/* Futures: the settle/await state machine shared by every operation, and the
 * ways to wait (await, any, all, timeout, then). One word (`waiter`) carries
 * the state, so settling from any thread is an exchange and awaiting a settled
 * future is a load: no lock, no switch. */
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#ifdef ASYNC_ASAN
#include <sanitizer/asan_interface.h>
#elif defined(ASYNC_DEBUG_CHECKS) && __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define CHECK_VALGRIND 1
#endif

_Static_assert(offsetof(async_future_t, owner) >= 16,
               "free lists overwrite a freed object's first 16 bytes");
_Static_assert(sizeof(async_future_t) == 40, "the owner word must fit in what was padding");

static void plain_release(async_future_t *f) { async__obj_free(ASYNC_OBJ_FUTURE, f); }
static const async__future_ops_t user_ops = {NULL, plain_release, NULL};

void async__futex_wait(void *word, int expected) {
    int saved = errno; /* EAGAIN or EINTR here is no business of the caller's */
#ifdef ASYNC_TSAN
    /* TSan runs a signal's handler when the thread next passes one of its
     * interceptors, which futex(2) through syscall(2) is not: a plain thread
     * awaiting here would hold async_sigwait's handler back for as long as it
     * waits. So the wait wakes every 20 ms and passes one (nanosleep);
     * callers take wake-ups without a change as they take spurious ones. */
    struct timespec slice = {0, 20 * 1000 * 1000}, none = {0, 0};
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, &slice, NULL, 0);
    nanosleep(&none, NULL);
#else
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#endif
    errno = saved;
}

void async__futex_wake(void *word, int n) {
    int saved = errno;
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
    errno = saved;
}

void async__fatal(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n > sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t ignored = write(2, buf, (size_t)n);
    (void)ignored;
    abort();
}

/* Inlined here, called from elsewhere: the owner word made them too big for
 * the compiler to inline on its own into the await and settle paths. */
async_future_t *async__future_reserve(void) {
    async_future_t *f = async__obj_alloc(ASYNC_OBJ_FUTURE);
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    async__future_init(f, &user_ops);
    return f;
}

void async__future_unreserve(async_future_t *f) { async__obj_free(ASYNC_OBJ_FUTURE, f); }

static async_future_t *settled_future(intptr_t value, int err) {
    async_future_t *f = async__future_reserve();
    return f ? async__future_fill(f, value, err) : NULL;
}

async_future_t *async__future_failed(int err) { return settled_future(-1, err); }

async_future_t *async__future_done(intptr_t value) { return settled_future(value, 0); }

void async__future_ref(async_future_t *f) {
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

static inline __attribute__((always_inline)) void unref(async_future_t *f) {
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1) {
        atomic_store_explicit(&f->owner, O_FREED, memory_order_relaxed);
        f->ops->release(f);
    }
}

void async__future_unref(async_future_t *f) { unref(f); }

/* ---- misuse ----------------------------------------------------------------
 * Every call that plays the owner's role checks the owner word first: one
 * load and a branch on the hot path (docs/design.md has its cost). A future
 * already consumed or freed is reported, by abort with the call's name when
 * debug checks are built in (ASYNC_DEBUG_CHECKS), else by EINVAL. Memory
 * reused by a new future cannot be told apart: the check is best effort. */

#ifdef CHECK_VALGRIND
static bool on_valgrind;
static void __attribute__((constructor)) detect_valgrind(void) {
    on_valgrind = RUNNING_ON_VALGRIND;
}
#endif

/* Under ASan and valgrind futures come from malloc, and reading a freed one's
 * owner word would be reported as a use after free rather than by the check:
 * ask them whether the memory is still there first. (Release builds under
 * valgrind leave it to memcheck.) */
static bool memory_freed(const async_future_t *f) {
#if defined(ASYNC_ASAN)
    return __asan_address_is_poisoned(&f->owner);
#elif defined(CHECK_VALGRIND)
    unsigned char vbits[sizeof f->owner];
    return ASYNC_UNLIKELY(on_valgrind) && VALGRIND_GET_VBITS(&f->owner, vbits, sizeof vbits) == 3;
#else
    (void)f;
    return false;
#endif
}

#ifdef ASYNC_DEBUG_CHECKS
static const char *misuse_what(const async_future_t *f) {
    if (memory_freed(f)) return "future already freed";
    uint32_t o = atomic_load_explicit(&((async_future_t *)f)->owner, memory_order_relaxed);
    if (o == O_CONSUMED) return "future already consumed";
    if (o == O_FREED) return "future already freed";
    return "not a future";
}
#endif

static bool __attribute__((noinline, cold)) misuse(const async_future_t *f, const char *call) {
#ifdef ASYNC_DEBUG_CHECKS
    async__fatal("asyncstd: %s: %s (%p)", call, misuse_what(f), (const void *)f);
#else
    (void)f;
    (void)call;
    errno = EINVAL;
    return false;
#endif
}

/* True when the caller may play the owner's role on f (not NULL). */
static inline bool owner_ok(const async_future_t *f, const char *call) {
    if (ASYNC_UNLIKELY(memory_freed(f) ||
                       atomic_load_explicit(&((async_future_t *)f)->owner, memory_order_relaxed)))
        return misuse(f, call);
    return true;
}

/* The owner's role ends: before its reference goes, since the memory may go
 * with it. A static future is everyone's, each time. */
static inline void owner_done(async_future_t *f) {
    if (!(atomic_load_explicit(&f->flags, memory_order_relaxed) & F_STATIC))
        atomic_store_explicit(&f->owner, O_CONSUMED, memory_order_relaxed);
}

/* The settler's side. Each path ends its use of `w` by dropping its hold, so
 * an awaiter that sees holds == 0 may return and reuse its stack. */
static inline void drop_hold(async__waiter_t *w) {
    if (w->single)
        atomic_store_explicit(&w->holds, 0, memory_order_release);
    else
        atomic_fetch_sub_explicit(&w->holds, 1, memory_order_release);
}

static void wake(async__waiter_t *w) {
    switch (w->kind) {
    case WAIT_TASK: {
        async__task_t *t = w->task;
        bool first;
        if (w->single &&
            atomic_load_explicit(&t->worker, memory_order_relaxed) == async__tls_worker) {
            first = atomic_load_explicit(&w->fired, memory_order_relaxed) == 0;
            atomic_store_explicit(&w->fired, 1, memory_order_relaxed);
        } else {
            first = atomic_exchange_explicit(&w->fired, 1, memory_order_acq_rel) == 0;
        }
        drop_hold(w);
        if (first) async__task_ready(t);
        break;
    }
    case WAIT_THREAD:
        /* the virtual clock must not move between this settle and the thread's wake-up */
        if (ASYNC_UNLIKELY(atomic_load_explicit(&w->vc_counted, memory_order_relaxed)) &&
            atomic_exchange(&w->vc_counted, false))
            async__vclock_plain_done();
        atomic_store_explicit(&w->fired, 1, memory_order_release);
        drop_hold(w);
        async__futex_wake(&w->fired, 1); /* harmless if the waiter has already returned */
        break;
    case WAIT_CALLBACK: {
        async_future_t *f = w->cb_future;
        w->cb(f->value, f->err, w->cb_arg);
        free(w);
        unref(f); /* the owner's role, which then() took over */
        break;
    }
    case WAIT_HOOK: { /* w belongs to the hook's owner, who may free it in cb */
        async_future_t *f = w->cb_future;
        w->cb(f->value, f->err, w->cb_arg);
        break;
    }
    }
}

void async__future_settle_exclusive(async_future_t *f, intptr_t value, int err) {
    f->value = err ? -1 : value;
    f->err = err;
    uintptr_t old = atomic_exchange_explicit(&f->waiter, W_SETTLED, memory_order_acq_rel);
    if (old == W_NONE) return;
    if (old == W_DETACHED) {
        unref(f); /* the owner's role, given up by async_future_free */
        return;
    }
    wake((async__waiter_t *)old);
}

/* Settles once; false if the future was already settled (or being settled). */
bool async__future_settle(async_future_t *f, intptr_t value, int err) {
    if (atomic_fetch_or_explicit(&f->flags, F_CLAIMED, memory_order_acquire) & F_CLAIMED)
        return false;
    async__future_settle_exclusive(f, value, err); /* the claim made us the only settler */
    return true;
}

intptr_t async__future_take(async_future_t *f) {
    intptr_t v = f->value;
    int err = f->err;
    if (!(atomic_load_explicit(&f->flags, memory_order_relaxed) & F_STATIC)) {
        atomic_store_explicit(&f->owner, O_CONSUMED, memory_order_relaxed); /* owner_done() */
        unref(f);
    }
    if (err) {
        errno = err;
        return -1;
    }
    return v;
}

/* Registers `w` on `f`; false if f has already settled. */
static bool attach(async_future_t *f, async__waiter_t *w) {
    uintptr_t expected = W_NONE;
    if (w->single)
        atomic_store_explicit(&w->holds, 1, memory_order_relaxed); /* published by the CAS */
    else
        atomic_fetch_add_explicit(&w->holds, 1, memory_order_relaxed);
    if (atomic_compare_exchange_strong_explicit(&f->waiter, &expected, (uintptr_t)w,
                                                memory_order_acq_rel, memory_order_acquire))
        return true;
    drop_hold(w);
    return false;
}

/* Unregisters `w` from a future that may have settled meanwhile. */
static void detach_waiter(async_future_t *f, async__waiter_t *w) {
    uintptr_t expected = (uintptr_t)w;
    if (atomic_compare_exchange_strong_explicit(&f->waiter, &expected, W_NONE, memory_order_acq_rel,
                                                memory_order_acquire))
        drop_hold(w);
}

/* Before a stack waiter goes out of scope: a settler that took it from a
 * future's word is at most a few instructions from dropping its hold. */
static void release_waiter(async__waiter_t *w) {
    while (atomic_load_explicit(&w->holds, memory_order_acquire) != 0) sched_yield();
}

/* A plain thread sleeps on the futex until `w` fires. */
static __attribute__((noinline)) void block_thread(async__waiter_t *w) {
    /* futex(2) says EAGAIN or EINTR on the way: a result that leaves errno
     * untouched (fgetc's end of file) must find the caller's errno */
    int saved = errno;
    bool counted = false;
    if (atomic_load_explicit(&async__rt_state, memory_order_acquire) == 2 &&
        ASYNC_UNLIKELY(async__rt.vclock)) { /* (the flag is written before the state) */
        /* counted before the flag is set: a settler that sees the flag uncounts */
        async__vclock_plain_wait_begin();
        atomic_store(&w->vc_counted, true);
        counted = true;
        if (atomic_load_explicit(&w->fired, memory_order_acquire) == 0) async__vclock_kick();
    }
    while (atomic_load_explicit(&w->fired, memory_order_acquire) == 0)
        async__futex_wait(&w->fired, 0);
    if (counted && atomic_exchange(&w->vc_counted, false)) async__vclock_plain_done();
    errno = saved;
}

/* Suspends the caller until `w` fires. A task suspends; a thread sleeps on
 * the futex. Inline for the task's case, which every await that parks takes. */
static inline __attribute__((always_inline)) void block(async__waiter_t *w) {
    if (ASYNC_LIKELY(w->kind == WAIT_TASK)) {
        async__task_note_park(w->task, async__tls_worker);
        async__task_suspend(w->task);
        return;
    }
    block_thread(w);
}

/* After attaching `w` to futures of which some had already settled, either
 * claim the wake-up ourselves or, if a settler got there first, absorb its
 * wake-up (it has rescheduled us), so a task is never queued twice. */
static void claim_or_block(async__waiter_t *w) {
    if (atomic_exchange_explicit(&w->fired, 1, memory_order_acq_rel) != 0 && w->kind == WAIT_TASK)
        async__task_suspend(w->task);
}

static inline __attribute__((always_inline)) void waiter_init(async__waiter_t *w, bool single) {
    async__task_t *t = async__task_current();
    atomic_init(&w->fired, 0);
    atomic_init(&w->holds, 0);
    w->kind = t ? WAIT_TASK : WAIT_THREAD;
    if (!t) atomic_init(&w->vc_counted, false);
    w->single = single;
    w->task = t;
}

/* Notes what the task is about to park on, for dumps (async__wait_t). */
static inline void describe_wait(async__task_t *t, const async_future_t *f) {
    if (f->ops->describe)
        f->ops->describe(f, &t->wait);
    else
        async__wait_set(&t->wait, ASYNC_WAIT_FUTURE, NULL, NULL, f, NULL, 0);
}

void async__future_wait(async_future_t *f) {
    if (async__future_is_settled(f)) return;
    async__waiter_t w;
    waiter_init(&w, true);
    if (!attach(f, &w)) return;
    if (w.task) describe_wait(w.task, f);
    block(&w);
    release_waiter(&w);
}

/* The task's await was interrupted by cancellation: cancel the operation,
 * then wait for it to settle (its buffers are in use until then). `w` is
 * still attached to f and has fired. */
static void finish_cancelled(async_future_t *f, async__waiter_t *w) {
    async_cancel(f);
    atomic_store_explicit(&w->fired, 0, memory_order_release);
    if (async__future_is_settled(f))
        claim_or_block(w);
    else
        block(w);
}

static inline __attribute__((always_inline)) intptr_t await_named(async_future_t *f,
                                                                  const char *call) {
    if (!f) {
        errno = ENOMEM;
        return -1;
    }
    if (!owner_ok(f, call)) return -1;
    if (async__future_is_settled(f)) return async__future_take(f);
    async__waiter_t w;
    waiter_init(&w, true);
    async__task_t *t = w.task;
    if (ASYNC_UNLIKELY(t && f == &t->future)) { /* it settles when this task ends: never */
        errno = EDEADLK;
        return -1;
    }
    /* a lock wait is no cancellation point: the task's cancellation neither
     * stops it nor wakes it (t->waiting stays NULL); only a cancel of f does */
    bool interruptible = t && !(atomic_load_explicit(&f->flags, memory_order_relaxed) & F_NOCANCEL);
    if (interruptible && async__task_cancel_pending(t)) {
        if (attach(f, &w)) {
            atomic_store(&w.fired, 1);
            finish_cancelled(f, &w);
            release_waiter(&w);
        }
        return async__future_take(f);
    }
    if (attach(f, &w)) {
        int saved = errno; /* a success leaves errno as the caller had it, as libc does */
        if (interruptible) t->waiting = &w;
        if (t) describe_wait(t, f);
        block(&w);
        if (interruptible) t->waiting = NULL;
        if (!async__future_is_settled(f)) finish_cancelled(f, &w); /* woken by cancellation */
        release_waiter(&w);
        errno = saved;
    }
    return async__future_take(f);
}

intptr_t async_await(async_future_t *f) { return await_named(f, "async_await"); }

void *async_await_ptr(async_future_t *f) {
    intptr_t v = await_named(f, "async_await_ptr");
    return v == -1 ? NULL : (void *)v; /* no object lives at address -1 */
}

/* `interruptible`: whether the task's cancellation ends the wait (false when
 * async_await_timeout waits for a lock). */
static int await_any(async_future_t *const *fs, size_t n, bool interruptible) {
    if (!fs || n == 0) {
        errno = EINVAL;
        return -1;
    }
    async__task_t *t = async__task_current();
    for (size_t i = 0; i < n; i++) {
        if (!fs[i]) continue;
        if (!owner_ok(fs[i], "async_await_any")) return -1;
        if (t && fs[i] == &t->future) { /* the caller's own future never settles while it waits */
            errno = EDEADLK;
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!fs[i] || async__future_is_settled(fs[i])) return (int)i;
    async__waiter_t w;
    waiter_init(&w, false);
    if (!t) interruptible = false;
    if (interruptible && async__task_cancel_pending(t)) {
        errno = ECANCELED;
        return -1;
    }
    size_t attached = 0;
    bool early = false;
    for (; attached < n; attached++) {
        if (!attach(fs[attached], &w)) {
            early = true;
            break;
        }
    }
    int saved = errno;
    if (early) {
        claim_or_block(&w);
    } else {
        if (interruptible) t->waiting = &w;
        if (t)
            async__wait_set(&t->wait, ASYNC_WAIT_TEXT, "await_any(%lld futures)", NULL, NULL, NULL,
                            (int64_t)n);
        block(&w);
        if (interruptible) t->waiting = NULL;
    }
    for (size_t i = 0; i < attached; i++) detach_waiter(fs[i], &w);
    release_waiter(&w);
    errno = saved;
    for (size_t i = 0; i < n; i++)
        if (async__future_is_settled(fs[i])) return (int)i;
    errno = ECANCELED; /* woken by cancellation, nothing settled */
    return -1;
}

int async_await_any(async_future_t *const *fs, size_t n) { return await_any(fs, n, true); }

int async_await_all(async_future_t *const *fs, size_t n, intptr_t *results, int *errors) {
    if (!fs && n > 0) {
        errno = EINVAL;
        return -1;
    }
    int first_err = 0, saved = errno;
    for (size_t i = 0; i < n; i++) {
        errno = 0;
        intptr_t v = await_named(fs[i], "async_await_all");
        int err = v == -1 ? errno : 0;
        if (v == -1 && err == 0) err = EIO; /* a -1 result must carry an error */
        if (results) results[i] = v;
        if (errors) errors[i] = err;
        if (err && !first_err) first_err = err;
    }
    if (first_err) {
        errno = first_err;
        return -1;
    }
    errno = saved;
    return 0;
}

intptr_t async_await_timeout(async_future_t *f, int64_t timeout_ms) {
    if (!f) {
        errno = ENOMEM;
        return -1;
    }
    if (!owner_ok(f, "async_await_timeout")) return -1;
    async__task_t *t = async__task_current();
    if (t && f == &t->future) {
        errno = EDEADLK;
        return -1;
    }
    if (timeout_ms < 0 || async__future_is_settled(f)) return async_await(f);
    async_future_t *timer = async__timer((uint64_t)timeout_ms, NULL);
    if (!timer) return async_await(f); /* cannot time it: wait without limit rather than fail */
    async_future_t *fs[2] = {f, timer};
    int saved = errno;
    bool nocancel = atomic_load_explicit(&f->flags, memory_order_relaxed) & F_NOCANCEL;
    int i = await_any(fs, 2, !nocancel);
    async_cancel(timer);
    async__future_wait(timer);
    async_future_free(timer);
    errno = saved;
    if (i == 0) return async_await(f);
    int cancelled_task = i < 0; /* the awaiting task itself was cancelled */
    async_cancel(f);
    async__future_wait(f);
    if (f->err == ECANCELED) {
        owner_done(f);
        unref(f);
        errno = cancelled_task ? ECANCELED : ETIMEDOUT;
        return -1;
    }
    return async__future_take(f); /* finished anyway: never lose a real result */
}

void async_cancel(async_future_t *f) {
    if (!f) return;
    if (atomic_fetch_or_explicit(&f->flags, F_CANCELLED, memory_order_acq_rel) & F_CANCELLED)
        return;
    if (async__future_is_settled(f)) return;
    async__count_cancel();
    if (f->ops->cancel)
        f->ops->cancel(f);
    else
        async__future_settle(f, -1, ECANCELED); /* the settler keeps its role */
}

int async_future_then(async_future_t *f, async_then_fn cb, void *arg) {
    if (!cb) {
        async_future_free(f);
        errno = EINVAL;
        return -1;
    }
    if (!f) {
        cb(-1, ENOMEM, arg);
        errno = ENOMEM;
        return -1;
    }
    if (!owner_ok(f, "async_future_then")) return -1;
    owner_done(f); /* the callback's now, whichever way it ends */
    async__waiter_t *w = NULL;
    if (!async__future_is_settled(f)) w = malloc(sizeof *w);
    if (w) {
        atomic_init(&w->fired, 0);
        atomic_init(&w->holds, 0);
        w->single = true;
        w->kind = WAIT_CALLBACK;
        w->task = NULL;
        w->cb = cb;
        w->cb_arg = arg;
        w->cb_future = f;
        if (attach(f, w)) return 0;
        free(w);
    } else if (!async__future_is_settled(f)) {
        async__future_wait(f); /* no memory for a waiter: wait here instead */
    }
    cb(f->value, f->err, arg);
    unref(f);
    return 0;
}

bool async__future_hook(async_future_t *f, async__waiter_t *w, async_then_fn cb, void *arg) {
    atomic_init(&w->fired, 0);
    atomic_init(&w->holds, 0);
    w->single = true;
    w->kind = WAIT_HOOK;
    w->task = NULL;
    w->cb = cb;
    w->cb_arg = arg;
    w->cb_future = f;
    uintptr_t expected = W_NONE;
    return atomic_compare_exchange_strong_explicit(&f->waiter, &expected, (uintptr_t)w,
                                                   memory_order_acq_rel, memory_order_acquire);
}

async_future_t *async_future_new(void) {
    async_future_t *f = async__obj_alloc(ASYNC_OBJ_FUTURE);
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    async__future_init(f, &user_ops);
    return f;
}

/* The settler's role of a user future: played once. A second resolve, or one
 * on a future whose memory is gone, touches nothing (it used to drop a
 * reference it did not hold, freeing the future under its owner). */
static int settle_user(async_future_t *f, intptr_t value, int err) {
    if (!f || memory_freed(f) || atomic_load_explicit(&f->owner, memory_order_relaxed) == O_FREED ||
        f->ops != &user_ops) { /* only async_future_new's futures have a user settler */
        errno = EINVAL;
        return -1;
    }
    /* one exchange both ends the settler's role and claims the settling */
    int old = atomic_fetch_or_explicit(&f->flags, F_SETTLER_DONE | F_CLAIMED, memory_order_acquire);
    if (old & F_SETTLER_DONE) {
        errno = EINVAL;
        return -1;
    }
    bool won = !(old & F_CLAIMED); /* else async_cancel settled it */
    if (won) async__future_settle_exclusive(f, value, err);
    unref(f);
    if (!won) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

int async_future_resolve(async_future_t *f, intptr_t value) { return settle_user(f, value, 0); }

int async_future_reject(async_future_t *f, int err) {
    if (err <= 0) {
        int r = settle_user(f, -1, EINVAL);
        if (r == 0 || errno != ECANCELED) errno = EINVAL;
        return -1;
    }
    return settle_user(f, -1, err);
}

void async_future_free(async_future_t *f) {
    if (!f || !owner_ok(f, "async_future_free")) return;
    owner_done(f); /* first: once detached, the settler may free it at any moment */
    uintptr_t expected = W_NONE;
    if (atomic_compare_exchange_strong_explicit(&f->waiter, &expected, W_DETACHED,
                                                memory_order_acq_rel, memory_order_acquire))
        return; /* the settler drops the owner's reference */
    unref(f);
}

int async_future_settled(const async_future_t *f) { return !f || async__future_is_settled(f); }
