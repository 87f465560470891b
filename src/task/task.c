/* Tasks: spawn, the life of a fiber on its worker, cooperative cancellation,
 * identity (the task's own side of a switch is in park.c). A task is one
 * allocation: its future comes first, so the task future's memory is the
 * task, freed when both the owner (join/detach) and the task itself (by
 * ending) are done with it. The stack is taken when the task first runs and
 * given back the moment it ends. */
#include <linux/membarrier.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

static void task_release(async_future_t *f) {
    async__task_t *t = (async__task_t *)f;
    async__key_free(t);
    async__obj_free(ASYNC_OBJ_TASK, t);
}

static void on_cancel_msg(async__worker_t *w, async__msg_t *m);

/* Cancellation of a task future: the request travels to the task's worker,
 * the only thread that may look at a task's wait state. */
static void task_cancel(async_future_t *f) {
    async__task_t *t = (async__task_t *)f;
    atomic_store_explicit(&t->cancel_requested, 1, memory_order_release);
    if (atomic_exchange(&t->cancel_posted, 1)) return;
    async__future_ref(f); /* held by the message */
    async__worker_t *home = atomic_load_explicit(&t->worker, memory_order_relaxed);
    if (async__tls_worker == home) {
        on_cancel_msg(home, &t->cancel_msg);
        return;
    }
    async__worker_post(home, &t->cancel_msg);
}

static void task_describe(const async_future_t *f, async__wait_t *out) {
    async__wait_set(out, ASYNC_WAIT_JOIN, NULL, NULL, f, NULL, (int64_t)((async__task_t *)f)->id);
}

static const async__future_ops_t task_ops = {task_cancel, task_release, task_describe};

static void on_cancel_msg(async__worker_t *w, async__msg_t *m) {
    async__task_t *t = ASYNC_CONTAINER_OF(m, async__task_t, cancel_msg);
    async__worker_t *home = atomic_load_explicit(&t->worker, memory_order_relaxed);
    if (home != w) { /* stolen before it started: follow it */
        async__worker_post(home, m);
        return;
    }
    /* an unstarted task needs only the flag; a suspended one is woken to see it,
     * unless it holds cancellation back (it looks again when it enables it) */
    if (atomic_load_explicit(&t->state, memory_order_relaxed) == T_WAITING && t->waiting &&
        !t->cancel_disabled &&
        atomic_exchange_explicit(&t->waiting->fired, 1, memory_order_acq_rel) == 0)
        async__task_ready(t);
    async__future_unref(&t->future);
}

/* ---- the registry (w->tasks) ----------------------------------------------
 * Changed by its worker only, at a task's first run and at its end, and read
 * by dumps from any thread. A spinlock here cost two locked instructions per
 * task, 8% of a spawn + join (bench/RESULTS.md), so the worker's side is an
 * asymmetric lock: the worker says it is changing the list (reg_busy), then
 * looks whether a dump is reading (reg_dump), with plain stores and loads; a
 * dump says it is reading, then runs membarrier(2), which orders every
 * thread's earlier stores before its later loads, and waits for reg_busy to
 * clear. So one of the two always sees the other (Dekker's argument, with
 * the worker's fence paid by the dump). A worker that finds a dump reading,
 * or runs where membarrier(2) is missing, takes tasks_lock instead. Under
 * TSan, which cannot see the barrier, the lock is always taken. */
static bool registry_fast;

void async__registry_init(void) {
#ifdef ASYNC_TSAN
    registry_fast = false;
#else
    registry_fast = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}

/* A dump may hold the lock for milliseconds (it walks stacks): yield the CPU
 * to it rather than spin. */
static __attribute__((noinline)) void registry_lock(async__worker_t *w) {
    while (pthread_spin_trylock(&w->tasks_lock) != 0) sched_yield();
}

/* Gives whether the lock was taken (pass it to registry_exit). Inlined: it
 * runs twice per task, and the call cost as much as its body. */
static inline __attribute__((always_inline)) bool registry_enter(async__worker_t *w) {
    if (ASYNC_LIKELY(registry_fast)) {
        atomic_store_explicit(&w->reg_busy, 1, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst); /* the dump's membarrier is the CPU's fence */
        if (ASYNC_LIKELY(!atomic_load_explicit(&w->reg_dump, memory_order_acquire))) return false;
        atomic_store_explicit(&w->reg_busy, 0, memory_order_release);
    }
    registry_lock(w);
    return true;
}

static inline __attribute__((always_inline)) void registry_exit(async__worker_t *w, bool locked) {
    if (locked)
        pthread_spin_unlock(&w->tasks_lock);
    else
        atomic_store_explicit(&w->reg_busy, 0, memory_order_release);
}

void async__registry_read_begin(async__worker_t *w) {
    registry_lock(w); /* one dump at a time; a worker that found reg_dump waits here */
    if (!registry_fast) return;
    atomic_store_explicit(&w->reg_dump, 1, memory_order_seq_cst);
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        atomic_thread_fence(memory_order_seq_cst); /* registered, so it does not fail */
    while (atomic_load_explicit(&w->reg_busy, memory_order_acquire)) sched_yield();
}

void async__registry_read_end(async__worker_t *w) {
    if (registry_fast) atomic_store_explicit(&w->reg_dump, 0, memory_order_release);
    pthread_spin_unlock(&w->tasks_lock);
}

static void list_add(async__worker_t *w, async__task_t *t) {
    bool locked = registry_enter(w);
    async__list_push_front(&w->tasks, &t->live);
    registry_exit(w, locked);
}

static void list_remove(async__worker_t *w, async__task_t *t) {
    bool locked = registry_enter(w);
    async__list_remove(&w->tasks, &t->live);
    registry_exit(w, locked);
}

/* Queues an unstarted task on its worker (this thread): pinned tasks on the
 * private run queue, others where idle workers may steal them. */
static void enqueue_new(async__worker_t *w, async__task_t *t) {
    atomic_store_explicit(&t->state, T_READY, memory_order_relaxed);
    if (t->pinned)
        async__worker_runq_push(w, t);
    else
        async__worker_newq_push(w, t);
}

/* A new task reaches its worker (from a plain thread's spawn). */
static void on_new_task(async__worker_t *w, async__msg_t *m) {
    enqueue_new(w, ASYNC_CONTAINER_OF(m, async__task_t, node));
}

static void on_wake(async__worker_t *w, async__msg_t *m) {
    async__task_t *t = ASYNC_CONTAINER_OF(m, async__task_t, node);
    atomic_store_explicit(&t->state, T_READY, memory_order_relaxed);
    async__worker_runq_push(w, t);
}

void async__task_ready(async__task_t *t) {
    async__worker_t *w = atomic_load_explicit(&t->worker, memory_order_relaxed);
    if (async__tls_worker == w) {
        atomic_store_explicit(&t->state, T_READY, memory_order_relaxed);
        if (ASYNC_UNLIKELY(w->ready_first)) {
            w->ready_first = false;
            async__worker_runq_push_front(w, t);
        } else {
            async__worker_runq_push(w, t);
        }
        return;
    }
    t->node.run = on_wake;
    async__worker_post(w, &t->node);
}

static void task_finish(async__worker_t *w, async__task_t *t, intptr_t v, int err) {
    if (t->stack) {
        list_remove(w, t);
        async__count(&w->count.tasks_live, (uint64_t)-1);
        async__fiber_destroy(&t->ctx);
        async__stack_put(w, t->stack);
        t->stack = NULL;
    }
    if (t->free_arg) t->free_arg(t->arg); /* before the settle: an awaiter finds it done */
    async__future_settle_exclusive(&t->future, v, err); /* a task ends once; cancel only asks */
    async__future_unref(&t->future);
    async__runtime_task_ended();
}

void async__task_run(async__worker_t *w, async__task_t *t) {
    if (ASYNC_UNLIKELY(!t->stack)) {
        /* only reached by tasks that never ran: set up the fiber now, so that a burst of
         * short tasks cycles through a few warm stacks */
        bool cancelled = atomic_load_explicit(&t->cancel_requested, memory_order_acquire);
        if (w->stopping && !cancelled) {
            atomic_store_explicit(&t->cancel_requested, 1, memory_order_release);
            cancelled = true;
        }
        /* An owned task (async__spawn_owned) runs even so, and each of its
         * awaits cancels its operation and returns at once: its code is the
         * one place that undoes what the call began (an operation in flight). */
        if (cancelled && !t->free_arg) {
            task_finish(w, t, -1, ECANCELED);
            return;
        }
        t->stack = async__stack_get(w, t->stack_size);
        if (!t->stack) {
            task_finish(w, t, -1, ENOMEM);
            return;
        }
        async__fiber_make(&t->ctx, t->stack->lo, t->stack->size, async__task_entry);
        list_add(w, t);
        async__count(&w->count.tasks_live, 1);
    }
    atomic_store_explicit(&t->state, T_RUNNING, memory_order_relaxed);
    w->current = t;
    errno = t->saved_errno;
    async__fiber_switch(&w->sched, &t->ctx, false);
    w->current = NULL;
    if (atomic_load_explicit(&t->state, memory_order_relaxed) == T_DONE)
        task_finish(w, t, t->future.value, t->future.err);
}

void async__task_cancel_all(async__worker_t *w) {
    async__list_foreach(n, &w->tasks) {
        async__task_t *t = async__list_entry(n, async__task_t, live);
        atomic_store_explicit(&t->cancel_requested, 1, memory_order_release);
        if (atomic_load_explicit(&t->state, memory_order_relaxed) == T_WAITING && t->waiting &&
            !t->cancel_disabled &&
            atomic_exchange_explicit(&t->waiting->fired, 1, memory_order_acq_rel) == 0)
            async__task_ready(t);
    }
}

/* A task id without an atomic read-modify-write on a worker: worker k of N
 * (the waiter is N+1) numbers its spawns k, k + N+1, k + 2(N+1), ...; plain
 * threads share the multiples of N+1. Unique, and growing with time on each
 * worker. */
static uint64_t new_id(async__runtime_t *rt, async__worker_t *w) {
    uint64_t stride = rt->nworkers + 1;
    if (w) {
        uint64_t id = w->next_id;
        w->next_id += stride;
        return id;
    }
    return (atomic_fetch_add_explicit(&rt->next_task_id, 1, memory_order_relaxed) + 1) * stride;
}

/* A spawn, counted on the spawning worker (`self`), or for a plain thread
 * on the runtime's shared counter. */
static void count_spawn(async__runtime_t *rt, async__worker_t *self) {
    if (self)
        async__count(&self->count.spawns, 1);
    else
        atomic_fetch_add_explicit(&rt->foreign_spawns, 1, memory_order_relaxed);
}

/* async_spawn_opts with a free_arg (async__spawn_owned); NULL or a settled
 * failure when no task was made, and then free_arg has not been called. */
static async_future_t *spawn(async_task_fn fn, void *arg, void (*free_arg)(void *),
                             const async_spawn_opts_t *opts) {
    if (!fn) return async__future_failed(EINVAL);
    async__runtime_t *rt = async__runtime();
    if (!rt) return async__future_failed(errno);
    size_t stack_size = rt->stack_size;
    async__worker_t *self = async__tls_worker, *w = NULL; /* one TLS read */
    if (opts) {
        if (opts->worker > rt->nworkers) return async__future_failed(EINVAL);
        if (opts->stack_size) {
            if (opts->stack_size > ASYNC_STACK_MAX) return async__future_failed(EINVAL);
            size_t page = 4096;
            stack_size = opts->stack_size < ASYNC_STACK_MIN ? ASYNC_STACK_MIN : opts->stack_size;
            stack_size = (stack_size + page - 1) & ~(page - 1);
        }
        if (opts->worker) w = &rt->workers[opts->worker - 1];
    }
    if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
        return async__future_failed(ECANCELED);
    async__task_t *t = async__obj_alloc(ASYNC_OBJ_TASK);
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    /* every field before `name` (internal.h says which are zeroed) */
    memset(&t->cancel_disabled, 0,
           offsetof(async__task_t, name) + 1 - offsetof(async__task_t, cancel_disabled));
    async__future_init(&t->future, &task_ops);
    t->node = (async__msg_t){0};
    t->cancel_msg = (async__msg_t){.run = on_cancel_msg};
    t->fn = fn;
    t->arg = arg;
    t->free_arg = free_arg;
    t->stack_size = (uint32_t)stack_size; /* <= ASYNC_STACK_MAX */
    atomic_init(&t->state, T_NEW);
    t->id = new_id(rt, self);
    atomic_store_explicit(&t->wait.kind, ASYNC_WAIT_NONE, memory_order_relaxed);
    atomic_store_explicit(&t->since_ms, 0, memory_order_relaxed); /* 0: no time (never parked) */
    if (opts && opts->name) {
        strncpy(t->name, opts->name, sizeof t->name - 1);
        t->name[sizeof t->name - 1] = '\0';
    }
    t->pinned = opts && opts->worker;
    if (!w) w = self && !self->waiter ? self : async__runtime_pick_worker();
    atomic_init(&t->worker, w);
    atomic_fetch_add_explicit(&rt->live_tasks, 1, memory_order_relaxed);
    count_spawn(rt, self);
    if (w == self) {
        enqueue_new(w, t);
    } else {
        t->node.run = on_new_task;
        async__worker_post(w, &t->node);
    }
    return &t->future;
}

async_future_t *async_spawn_opts(async_task_fn fn, void *arg, const async_spawn_opts_t *opts) {
    return spawn(fn, arg, NULL, opts);
}

async_future_t *async__spawn_owned(async_task_fn fn, void *arg, void (*free_arg)(void *),
                                   const async_spawn_opts_t *opts) {
    async_future_t *f = spawn(fn, arg, free_arg, opts);
    if (free_arg && (!f || !async__future_is_task(f))) {
        int e = errno;
        free_arg(arg);
        errno = e;
    }
    return f;
}

bool async__future_is_task(const async_future_t *f) { return f->ops == &task_ops; }

async_future_t *async_spawn(async_task_fn fn, void *arg) { return async_spawn_opts(fn, arg, NULL); }

async_task_t *async_self(void) { return (async_task_t *)async__task_current(); }

const char *async_task_name(const async_task_t *task) {
    const async__task_t *t = task ? (const async__task_t *)task : async__task_current();
    return t ? t->name : NULL;
}

int async_testcancel(void) {
    async__task_t *t = async__task_current();
    if (t && async__task_cancel_pending(t)) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

int async_setcancelstate(int state, int *oldstate) {
    if (state != ASYNC_CANCEL_ENABLE && state != ASYNC_CANCEL_DISABLE) {
        errno = EINVAL;
        return -1;
    }
    async__task_t *t = async__task_current();
    if (oldstate) *oldstate = t && t->cancel_disabled ? ASYNC_CANCEL_DISABLE : ASYNC_CANCEL_ENABLE;
    /* a request that came meanwhile is acted on at the next cancellation point */
    if (t) t->cancel_disabled = state == ASYNC_CANCEL_DISABLE;
    return 0;
}

unsigned async_worker_id(void) {
    return async__tls_worker && !async__tls_worker->waiter ? async__tls_worker->id : 0;
}

int async_worker_count(void) {
    async__runtime_t *rt = async__runtime();
    return rt ? (int)rt->nworkers : -1;
}
