/* The task's side of every switch: its first frame, its park and its yield.
 * These are the library's frames that a parked task's stack holds under the
 * program's own, so this file is built with frame pointers and task.c, whose
 * functions run on the scheduler's side, is not (src/meson.build). */
#include <sched.h>

#include "internal.h"

/* Bumps the worker's ticks on the task's side of every switch: odd from the
 * moment the task's stack is live until it switches away (async__worker_t).
 * The context switch itself stays outside the odd span, because a stall
 * signal (stall.c) taken there would make backtrace() unwind a half-switched
 * frame. A plain load and store of the worker's own word, and compiler-only
 * fences that keep them on the right side of the switch for the handler. */
static inline void tick(async__worker_t *w) {
    atomic_signal_fence(memory_order_seq_cst);
    atomic_store_explicit(&w->ticks, atomic_load_explicit(&w->ticks, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
}

/* The first frame of every task: runs fn, then ends the fiber for good. */
void async__task_entry(void) {
    async__worker_t *w = async__tls_worker;
    async__task_t *t = w->current;
    async__fiber_entered(&w->sched);
    tick(w);
    errno = 0;
    intptr_t v = t->fn(t->arg);
    int err = 0;
    if (v == -1) {
        /* a task that fails must say why; EIO if it did not (library helpers may not say) */
        err = errno ? errno : t->free_arg ? 0 : EIO;
    }
    async__key_run_destructors(t);
    t->future.value = v;
    t->future.err = err;
    atomic_store_explicit(&t->state, T_DONE, memory_order_relaxed);
    w = async__tls_worker; /* tasks never migrate, but reload after user code anyway */
    tick(w);
    async__fiber_switch(&t->ctx, &w->sched, true);
    async__fatal("asyncstd: a finished task was resumed");
}

void async__task_suspend(async__task_t *t) {
    async__worker_t *w = async__tls_worker;
    t->saved_errno = errno;
    atomic_store_explicit(&t->state, T_WAITING, memory_order_relaxed);
#ifndef ASYNC_FIBER_UCONTEXT
    async__stack_overflow_check(t, __builtin_frame_address(0));
#endif
    tick(w);
    async__fiber_switch(&t->ctx, &w->sched, false);
    tick(w); /* back on the same worker: tasks never migrate once started */
    errno = t->saved_errno;
}

int async_yield(void) {
    async__task_t *t = async__task_current();
    if (!t) return sched_yield();
    if (async__task_cancel_pending(t)) {
        errno = ECANCELED;
        return -1;
    }
    async__worker_t *w = async__tls_worker;
    /* to the back of the run queue; the worker polls I/O within RUN_BUDGET runs */
    async__worker_runq_push(w, t);
    t->waiting = NULL;
    /* for dumps: stores only */
    atomic_store_explicit(&t->wait.what, "yield", memory_order_relaxed);
    atomic_store_explicit(&t->wait.kind, ASYNC_WAIT_TEXT, memory_order_relaxed);
    async__task_note_park(t, w);
    async__task_suspend(t);
    return 0;
}
