/* Private declarations of the core: futures, tasks, fibers, stacks, workers,
 * the blocking pool and timers. Never installed.
 *
 * How internal functions report errors (every module follows this):
 *  - An error on its way to a future is a positive errno value: a future's
 *    `err`, an `int *err` out-parameter, or the return of a function that
 *    gives "0 or an errno" (async__race_add, async__net_set_nonblock,
 *    async__fs_dirbuf_fill). It becomes `errno` only where an await returns.
 *    A function that can also say "not now" returns -1 for that, which is
 *    then not an error ("0 done, -1 must wait, or an errno": the sync
 *    module's try_* helpers).
 *  - A function shaped like a libc call reports as libc does: -1 (or NULL
 *    for a pointer) with `errno` set. That is the blocking work run on pool
 *    threads (the pool reads errno right after, on the same thread), the
 *    constructors (NULL + ENOMEM), and helpers whose caller is a public call
 *    that itself returns -1/NULL with errno.
 * The rule for which: a positive errno when the error outlives other calls
 * before it is reported (settles, unlocks, frees, user callbacks: any of them
 * may overwrite errno), errno when the caller reports it at once. Negative
 * errno values (libuv's and io_uring's) are turned into one of the two where
 * they come back from those libraries, never passed on. */
#ifndef ASYNC_TASK_INTERNAL_H
#define ASYNC_TASK_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "asyncstd/future.h"
#include "asyncstd/stats.h"
#include "asyncstd/task.h"
#include "list.h"


#define ASYNC_CONTAINER_OF(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))
#define ASYNC_LIKELY(x) __builtin_expect(!!(x), 1)
#define ASYNC_UNLIKELY(x) __builtin_expect(!!(x), 0)

struct async__worker;
struct async__stack;
struct async__wait;

/* ---- inbox messages ------------------------------------------------------
 * A message is a node pushed onto a worker's inbox from any thread and run
 * by that worker, in push order. Nodes are embedded in the objects they
 * concern (a task, a timer), so posting never allocates. */
typedef struct async__msg {
    struct async__msg *next;
    void (*run)(struct async__worker *w, struct async__msg *m);
} async__msg_t;

/* ---- futures --------------------------------------------------------------
 * `waiter` is the whole state machine, changed only by atomic exchange/CAS:
 *   W_NONE      pending, nobody waiting
 *   W_SETTLED   settled: value/err are final and readable (acquire)
 *   W_DETACHED  pending, the owner has let go (async_future_free)
 *   other       pending, a struct async__waiter * is waiting
 * `refs` counts the two roles, owner and settler (plus short-lived holds by
 * in-flight cancel messages); the last unref calls ops->release. */
#define W_NONE ((uintptr_t)0)
#define W_SETTLED ((uintptr_t)1)
#define W_DETACHED ((uintptr_t)2)

enum {
    F_CLAIMED = 1,      /* someone is settling: value/err are being written */
    F_CANCELLED = 2,    /* async_cancel was called (once is enough) */
    F_STATIC = 4,       /* never released: awaiting it drops no reference (sync.c's done futures) */
    F_SETTLER_DONE = 8, /* a user future's resolve/reject came: its settler role is over */
    /* Awaiting it is not a cancellation point (a lock wait, as pthread_mutex_lock is
     * not): a cancelled task's await of it waits on; async_cancel on it still works. */
    F_NOCANCEL = 16,
};

/* `owner`: where the owner's role stands, so that misuse (awaiting twice,
 * freeing twice, using a freed future) is caught instead of reading another
 * operation's result. 0 while the owner holds the future (static futures and
 * fresh ones alike); O_CONSUMED once it awaited, freed or gave it to then();
 * O_FREED once the memory is released. The word sits past the first 16
 * bytes, which free lists (ours and malloc's) overwrite, so a freed future
 * keeps O_FREED until its memory is reused. */
#define O_CONSUMED 0xC0175EEDu
#define O_FREED 0xF4EEDF4Eu

typedef struct async__future_ops {
    /* Asks the operation to stop; may be called from any thread, at most once.
     * NULL: the future settles at once with ECANCELED (user futures). */
    void (*cancel)(async_future_t *f);
    /* Frees the memory holding the future once both roles are done. */
    void (*release)(async_future_t *f);
    /* Says what awaiting it waits for (async__wait_set), for dumps; or NULL.
     * Called by the awaiting task just before it parks, while it owns `f`. */
    void (*describe)(const async_future_t *f, struct async__wait *out);
} async__future_ops_t;

struct async_future {
    _Atomic uintptr_t waiter;
    atomic_int refs;
    atomic_int flags;
    int err;
    _Atomic uint32_t owner; /* 0, O_CONSUMED or O_FREED (in what was padding) */
    intptr_t value;
    const async__future_ops_t *ops;
};

enum { WAIT_TASK, WAIT_THREAD, WAIT_CALLBACK, WAIT_HOOK };

/* Who waits: a task (rescheduled on its worker), a plain thread (futex on
 * `fired`), or a then-callback. `fired` makes a waiter registered on several
 * futures (async_await_any) wake exactly once. */
typedef struct async__waiter {
    atomic_int fired;
    atomic_int holds; /* futures that may still touch this waiter; it outlives them */
    int kind;
    /* Attached to one future only (async_await): `holds` is 0 or 1, so plain
     * stores replace the atomic add and subtract; and when the settler runs on
     * the waiting task's own worker, nothing else can touch `fired` at the same
     * time (cancellation also runs there), so it is set without an exchange. */
    bool single;
    /* A plain thread's wait counted by the virtual clock (vclock.c): whoever
     * exchanges it back to 0 (the settler, or the thread) uncounts it. */
    atomic_bool vc_counted;
    struct async__task *task;
    async_then_fn cb;
    void *cb_arg;
    async_future_t *cb_future;
} async__waiter_t;

/* A fresh future: pending, its owner and settler each holding a reference.
 * Inline: every spawn and operation makes one. */
static inline void async__future_init(async_future_t *f, const async__future_ops_t *ops) {
    atomic_init(&f->waiter, W_NONE);
    atomic_init(&f->refs, 2); /* owner + settler */
    atomic_init(&f->flags, 0);
    f->err = 0;
    atomic_init(&f->owner, 0);
    f->value = 0;
    f->ops = ops;
}
async_future_t *async__future_failed(int err);      /* a settled failure, or NULL */
async_future_t *async__future_done(intptr_t value); /* a settled success, or NULL */
/* The settled future of a system call made inline: -1 a failure with its
 * errno, any other value a success. */
static inline async_future_t *async__future_result(intptr_t r) {
    return r == -1 ? async__future_failed(errno) : async__future_done(r);
}
bool async__future_settle(async_future_t *f, intptr_t value, int err);
/* Settles a future that nothing else can settle, ever (its op's own state
 * machine decides who completes it): skips the claim that async__future_settle
 * makes to break ties between settlers. */
void async__future_settle_exclusive(async_future_t *f, intptr_t value, int err);
void async__future_ref(async_future_t *f);
void async__future_unref(async_future_t *f);
/* settle + drop the settler's reference */
static inline void async__future_complete(async_future_t *f, intptr_t value, int err) {
    async__future_settle(f, value, err);
    async__future_unref(f);
}
static inline bool async__future_is_settled(const async_future_t *f) {
    return atomic_load_explicit(&((async_future_t *)f)->waiter, memory_order_acquire) == W_SETTLED;
}
/* A future taken before an operation whose result must not be lost once it
 * is done (bytes moved, a directory entry consumed, an fd closed): settling
 * it with async__future_fill cannot fail, where async__future_done would
 * allocate after the fact and its ENOMEM would hide what was done. Given
 * back unused with async__future_unreserve. NULL + ENOMEM. */
async_future_t *async__future_reserve(void);
void async__future_unreserve(async_future_t *f);
/* Settles a reserved future (value, or -1 with err when err is not 0) and returns it. */
static inline async_future_t *async__future_fill(async_future_t *f, intptr_t value, int err) {
    async__future_complete(f, value, err);
    return f;
}
/* Calls cb(value, err, arg) on the settling thread when `f` settles, through
 * `w`, which the caller owns and keeps alive until then (nothing is
 * allocated, unlike async_future_then). The caller keeps the owner's role.
 * False if f had already settled: nothing is attached and cb is not called. */
bool async__future_hook(async_future_t *f, async__waiter_t *w, async_then_fn cb, void *arg);
/* Waits for `f` to settle (never interrupted by cancellation); f is not consumed. */
void async__future_wait(async_future_t *f);
/* Result of a settled future, as (value, errno); then frees the owner's role. */
intptr_t async__future_take(async_future_t *f);

#include "fiber.h"

/* ---- stacks --------------------------------------------------------------- */
typedef struct async__stack {
    struct async__stack *next; /* free lists */
    void *lo;                  /* lowest usable byte (above the guard page, if any) */
    size_t size;               /* usable bytes, descriptor included at the top */
    bool guarded;              /* a PROT_NONE page lies just below lo */
    bool own_mapping;          /* a mapping of its own (odd size): unmapped when freed */
} async__stack_t;

void async__stack_configure(size_t default_size); /* before the first get */
async__stack_t *async__stack_get(struct async__worker *w, size_t size);
void async__stack_put(struct async__worker *w, async__stack_t *s);
void async__stack_flush(struct async__worker *w); /* worker cache to the global list */
void async__stack_global_free(void);              /* at shutdown: unmap every slab */
void async__stack_overflow_check(struct async__task *t, void *sp);
/* Per worker thread: the overflow handler's sigaltstack. 0, or -1 + ENOMEM
 * (no alternate stack: an overflow is then a plain SIGSEGV). */
int async__stack_install_guard_handler(void);
void async__stack_remove_guard_handler(void);

#define ASYNC_STACK_MIN (16 * 1024) /* task stack sizes: async_spawn_opts_t, async_config_t */
#define ASYNC_STACK_MAX ((size_t)1 << 30)

/* ---- what a parked task waits for ----------------------------------------
 * A few words, turned into text only by a dump (dump.c). The awaited future's
 * ops->describe fills them with relaxed stores (plain stores on the CPUs we
 * run on) as the task parks; a dump on another thread copies the words and
 * may see a mix of an old and a new wait, never anything it follows: `ptr`
 * and `fn` are only printed, and `path` is read with a checked copy. */
enum {
    ASYNC_WAIT_NONE,
    ASYNC_WAIT_FD,     /* fn (an io op's attempt) on fd `num` */
    ASYNC_WAIT_TIMER,  /* a timer due at async_clock_now() `num` (0: not started, ptr = ms) */
    ASYNC_WAIT_PRIM,   /* `what` at `ptr` (a mutex, a channel) */
    ASYNC_WAIT_JOB,    /* a pool job running fn (its path if any) */
    ASYNC_WAIT_JOIN,   /* the task with id `num` */
    ASYNC_WAIT_TEXT,   /* `what`, with `num` if it is not negative */
    ASYNC_WAIT_FUTURE, /* a future at `ptr` that says nothing more */
};

typedef struct async__wait {
    atomic_int kind;
    _Atomic(const char *) what;
    _Atomic(void (*)(void)) fn;
    _Atomic(const void *) ptr;
    _Atomic(const char *) path;
    _Atomic int64_t num;
} async__wait_t;

static inline void async__wait_set(async__wait_t *w, int kind, const char *what, void (*fn)(void),
                                   const void *ptr, const char *path, int64_t num) {
    atomic_store_explicit(&w->kind, kind, memory_order_relaxed);
    atomic_store_explicit(&w->what, what, memory_order_relaxed);
    atomic_store_explicit(&w->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&w->ptr, ptr, memory_order_relaxed);
    atomic_store_explicit(&w->path, path, memory_order_relaxed);
    atomic_store_explicit(&w->num, num, memory_order_relaxed);
}

/* A coarse monotonic clock in milliseconds (a few ns: no hardware counter
 * read), for how long a task has been in its state. */
static inline int64_t async__coarse_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- tasks ---------------------------------------------------------------- */
enum { T_NEW, T_READY, T_RUNNING, T_WAITING, T_DONE };

typedef struct async__task {
    async_future_t future; /* first: the task is its own future */
    async__msg_t node;     /* inbox/run-queue link: new task or wake-up */
    async__msg_t cancel_msg;
    /* Set one by one by spawn (task.c's spawn, which a new field must join) */
    struct async__worker *_Atomic worker; /* changes only while unstarted (stealing) */
    async_task_fn fn;
    void *arg;
    void (*free_arg)(void *); /* async__spawn_owned: called once as the task ends */
    uint32_t stack_size;      /* at most ASYNC_STACK_MAX: 32 bits keep four cache lines */
    atomic_int state;         /* T_*: written by the task's worker, read by cancel messages */
    bool pinned;
    /* From here to name[0], zeroed by spawn in one stretch */
    bool cancel_disabled; /* async_setcancelstate(DISABLE): requests wait (task's thread only) */
    atomic_int cancel_requested;
    atomic_int cancel_posted;
    int saved_errno;
    async__ctx_t ctx;
    async__stack_t *stack;    /* NULL until the task first runs */
    async__waiter_t *waiting; /* the waiter the task is suspended on, or NULL */
    struct async__spec *specific;
    char name[16];
    /* Past `name`, left as they are by spawn: each is set before it is read */
    async__node_t live;       /* in its worker's list of live tasks (from its first run) */
    uint64_t id;              /* unique, for dumps (task.c's new_id) */
    _Atomic int64_t since_ms; /* its worker's now_ms as it last parked or yielded; 0 at spawn */
    async__wait_t wait;       /* what it awaits while parked (see async__wait_t) */
} async__task_t;
#if defined(__x86_64__) && !defined(ASYNC_ASAN) && !defined(ASYNC_TSAN) && \
    !defined(ASYNC_FIBER_UCONTEXT)
/* Four cache lines: a fifth made a burst of 200,000 spawns 10% slower (memory
 * traffic; bench/RESULTS.md, "Frame pointers where a task can park; the task
 * object back to four cache lines"). */
_Static_assert(sizeof(async__task_t) <= 256, "async__task_t outgrew four cache lines");
#endif

/* Whether a cancellation request should act now: it came and is not held back. */
static inline bool async__task_cancel_pending(async__task_t *t) {
    return !t->cancel_disabled && atomic_load_explicit(&t->cancel_requested, memory_order_acquire);
}

void async__task_ready(async__task_t *t);   /* any thread: make a suspended task runnable */
void async__task_suspend(async__task_t *t); /* from inside t: switch to the scheduler */
void async__task_entry(void) __attribute__((noreturn)); /* a task's first frame */
void async__task_run(struct async__worker *w,
                     async__task_t *t); /* scheduler: run t until it suspends */
void async__task_cancel_all(struct async__worker *w);
/* The library's one way to run a multi-step call (a stream read that must
 * refill, a connect that tries each address) as straight-line code: fn(arg)
 * in a task whose own future is returned, so cancelling it cancels the task.
 * fn runs even when cancelled before it started (its awaits then cancel
 * their operations and return at once), so fn can undo what it began; only a
 * task that gets no stack ends without running it, with ENOMEM. free_arg(arg),
 * if not NULL, is called exactly once: as the task ends, on its worker,
 * before its future settles; or before this returns when no task was made
 * (NULL + ENOMEM, or a future settled with the reason). fn returning -1 with
 * errno 0 settles as -1 without an errno (getline's end of file). */
async_future_t *async__spawn_owned(async_task_fn fn, void *arg, void (*free_arg)(void *),
                                   const async_spawn_opts_t *opts);
/* Whether `f` is a task's future (not a settled stand-in from a spawn that failed). */
bool async__future_is_task(const async_future_t *f);
void async__key_run_destructors(async__task_t *t);
void async__key_free(async__task_t *t);
void async__key_thread_cleanup(void); /* the calling plain thread's values table */

/* ---- metrics (stats.c) ------------------------------------------------------
 * A worker's counters: written by that worker only, with a relaxed load and
 * store (async__count), never a locked read-modify-write, and summed by
 * async_runtime_stats on whatever thread asks. Where a count can happen off
 * the workers (a plain thread's spawn or cancel), that case adds atomically
 * to the runtime's own counter instead. */
typedef struct async__worker_counters {
    _Atomic uint64_t tasks_live; /* started and not ended here (wraps down: unsigned) */
    _Atomic uint64_t steals;     /* tasks taken from other workers */
    _Atomic uint64_t polls;      /* poll_io calls */
    _Atomic uint64_t parks, unparks;
    _Atomic uint64_t parked_ns;    /* time blocked in the loop, sleeps that have ended */
    _Atomic uint64_t parked_since; /* uv_hrtime() when the current sleep began, or 0 */
    _Atomic uint64_t spawns, cancels, timers;
} async__worker_counters_t;

static inline void async__count(_Atomic uint64_t *c, uint64_t n) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* A worker thread's cancel on its own counters; a plain thread's on the runtime's
 * (spawns are counted in task.c's spawn). */
void async__count_cancel(void);

/* ---- stall reports (stall.c) ------------------------------------------------
 * The watchdog's fields are its own (seen_*, reported); `state` hands a
 * request to the worker's signal handler and its answer back:
 * IDLE -> ASKED (watchdog) -> BUSY -> DONE (handler) -> IDLE (watchdog). */
#define ASYNC_STALL_FRAMES 48
typedef struct async__stall_probe {
    atomic_int state;
    atomic_int tid;               /* the worker thread's id, set as it starts (0 before) */
    _Atomic unsigned long expect; /* the `ticks` the watchdog saw stuck */
    /* filled in by the handler, read after DONE (acquire) */
    bool found; /* the same task was still running */
    async_task_fn fn;
    char name[16];
    int nframes;
    void *frames[ASYNC_STALL_FRAMES];
    /* the watchdog's own */
    unsigned long seen_ticks, reported;
    uint64_t seen_ns, seen_cpu_ns; /* when seen_ticks was first seen; the worker's CPU time then */
} async__stall_probe_t;

/* Before the workers start: reads ASYNCSTD_STALL_MS, takes a signal. */
void async__stall_setup(void);
void async__stall_thread_init(void); /* on each worker thread: unblock the signal */
void async__stall_start(void);       /* after the workers started: the watchdog thread */
void async__stall_stop(void);        /* before the workers exit: join the watchdog */
void async__stall_teardown(void);    /* after the workers were joined: the old disposition */

/* ---- workers -------------------------------------------------------------- */
typedef struct async__worker {
    uv_loop_t loop;
    uv_async_t wakeup; /* rung after pushing onto the inbox, without wakefd */
    /* An eventfd in the worker's own epoll, written to wake it: one write(2)
     * by the poster, one read(2) by the worker, where libuv's uv_async_send
     * added its own handshake (a receiver spinning until the sender's store
     * lands) and a run of libuv's loop. -1 when the worker has no epoll of
     * its own (it then blocks in libuv, and `wakeup` rings it). Made before
     * the thread starts, closed after it is joined. */
    int wakefd;
    _Atomic(async__msg_t *) inbox;       /* lock-free LIFO of messages, drained whole */
    async__msg_t *runq_head, *runq_tail; /* ready started or pinned tasks (this thread only) */
    atomic_size_t runq_len; /* written by this thread only; read by async_runtime_stats and dumps */
    /* New tasks not yet started: the only tasks another worker may take. */
    pthread_spinlock_t newq_lock;
    async__msg_t *newq_head, *newq_tail;
    atomic_size_t newq_len;
    atomic_int sleeping; /* 1 while blocked (or about to block) in the loop: pushers ring */
    /* Bumped as a task's code starts or resumes and again just before it
     * switches away (park.c's tick), so odd while task code runs: a thief sees
     * whether this worker is stuck, the stall watchdog (stall.c) whether one
     * task holds it, and the metrics count runs. Written by this thread only. */
    atomic_ulong ticks;
    /* the last worker this one looked at to steal from, and its ticks then */
    struct async__worker *memo_victim;
    unsigned long memo_ticks;
    unsigned spin_rounds;  /* how long idle() spins now (worker.c adapts it) */
    bool woken_by_inbox;   /* the last wake-up from the loop came with messages */
    uint64_t last_poll_ns; /* uv_hrtime() of the last poll made while tasks were ready */
    /* uv_hrtime() in ms at the scheduler's last look at the clock (once per
     * turn of its loop, at most RUN_BUDGET task runs ago): the time a task
     * parks at, for dumps, without a clock read per park */
    _Atomic int64_t now_ms;
    async__task_t *current; /* the task running now, or NULL */
    /* Started tasks that have not ended, by their `live` node: the registry a
     * dump walks. Changed by this worker only, at a task's first run and at
     * its end, with no locked instruction (task.c: registry_enter); a dump
     * holds tasks_lock and waits for reg_busy to clear while it copies. */
    async__list_t tasks;
    pthread_spinlock_t tasks_lock;
    atomic_int reg_busy;         /* the worker is changing `tasks` */
    atomic_int reg_dump;         /* a dump is reading `tasks`: the worker takes tasks_lock */
    async__ctx_t sched;          /* the worker thread's own context */
    async__stack_t *stack_cache; /* free stacks of the default size */
    void *obj_cache[3];          /* free objects per class (alloc.c) */
    unsigned obj_cache_len[3];
    long obj_live[3]; /* objects allocated minus freed on this thread (alloc.c) */
    char *obj_fresh[3], *obj_fresh_end[3]; /* a run of never-used objects (alloc.c) */
    unsigned stack_cache_len;
    unsigned id;      /* 1..N; the waiter is N+1 */
    uint64_t next_id; /* the id of the next task spawned on this thread (task.c's new_id) */
    bool waiter;      /* runs no task: it holds plain threads' waits (runtime.c) */
    bool stopping;
    bool exiting;
    pthread_t thread;
    void *altstack;    /* for the stack-overflow SIGSEGV handler */
    uint64_t *fs_seen; /* names opened inline lately (src/fs/cached.c), or NULL */
    async__msg_t stop_msg, exit_msg;
    struct async__io_worker *io;    /* fd readiness (io.c), created on the first wait */
    async__worker_counters_t count; /* metrics (stats.c) */
    async__stall_probe_t stall;     /* the watchdog's request and the answer (stall.c) */
    unsigned io_parked;             /* io ops parked here, waiting for readiness (io.c) */
    /* The virtual clock's view of this worker (vclock.c), under its lock: parked
     * (idle, about to block or blocked), whether it has parked since the round
     * began without running a task, its task runs then, and whether it has
     * exited (its timers were cancelled; a new one is refused). */
    bool vc_parked, vc_acked, vc_closed;
    bool vc_io; /* it had io ops parked when it parked: readiness may be on its way */
    unsigned long vc_snapshot;
    /* The next task this thread makes ready here goes to the front of runq:
     * set by the sync gate around the settle of a waiter it let in (gate.c). */
    bool ready_first;
} async__worker_t;

extern __thread async__worker_t *async__tls_worker;

/* The task running on this thread, or NULL (a plain thread, or a worker
 * between tasks). Inline: every await and wait asks. */
static inline async__task_t *async__task_current(void) {
    async__worker_t *w = async__tls_worker;
    return w ? w->current : NULL;
}

/* For dumps: when `t`, about to park on its worker `w`, began waiting. The
 * worker's per-turn clock, not a clock read per park. */
static inline void async__task_note_park(async__task_t *t, async__worker_t *w) {
    atomic_store_explicit(&t->since_ms, atomic_load_explicit(&w->now_ms, memory_order_relaxed),
                          memory_order_relaxed);
}

void async__worker_post(async__worker_t *w, async__msg_t *m); /* any thread */
void async__worker_runq_push(async__worker_t *w, async__task_t *t);
void async__worker_newq_push(async__worker_t *w, async__task_t *t); /* this worker's thread */
int async__worker_start(async__worker_t *w, unsigned id, bool waiter);
void async__worker_stop(async__worker_t *w); /* cancel every task */
void async__worker_exit(async__worker_t *w); /* close the loop and end the thread */
void async__worker_join(async__worker_t *w);
/* Queues `t` (of this worker's thread) to run before every other ready task. */
void async__worker_runq_push_front(async__worker_t *w, async__task_t *t);

/* Every libuv handle asyncstd opens on a worker loop has `data` pointing at
 * an object that starts with this: shutdown calls it to cancel and close. */
typedef struct async__handle_owner {
    void (*shutdown)(uv_handle_t *h);
} async__handle_owner_t;

/* ---- runtime -------------------------------------------------------------- */
typedef struct async__runtime {
    /* nworkers task workers, then the waiter: a worker that runs no task and
     * holds the waits (fd readiness, timers) of plain threads, so that a task
     * that never awaits, on whatever worker, cannot stall them */
    async__worker_t *workers;
    unsigned nworkers;
    size_t stack_size;
    atomic_uint next_worker; /* round robin for spawns from plain threads */
    atomic_long live_tasks;
    atomic_uint_fast64_t next_task_id; /* ids of tasks spawned by plain threads (task.c) */
    atomic_uint sleepers;              /* workers blocked in their loop, to be woken for stealing */
    atomic_int stopping;
    atomic_int all_done; /* futex word: live_tasks reached 0 during shutdown */
    uint64_t started_ns; /* uv_hrtime() at start */
    /* spawns and cancels made on plain threads (workers count their own) */
    _Atomic uint64_t foreign_spawns, foreign_cancels;
    bool vclock; /* timers run on the virtual clock (vclock.c); fixed while up */
} async__runtime_t;

/* Held for reading by async_runtime_stats, for writing by shutdown while it
 * frees the workers (stats.c). */
extern pthread_rwlock_t async__stats_lock;

extern async__runtime_t async__rt;
extern atomic_int async__rt_state; /* 0 down, 1 starting, 2 up, 3 stopping */

/* The running runtime, started on first use; NULL with errno set on failure. */
async__runtime_t *async__runtime(void);
/* An ASYNCSTD_* variable: a whole number from min to max (with a k/K or m/M
 * suffix where `sized`), or 0 when unset or empty. A value that is not is
 * named on stderr, once per process for each `bit`, and also gives 0: the
 * caller then takes its default. Every variable the library reads goes here. */
enum {
    ASYNC_ENV_THREADS = 1,
    ASYNC_ENV_POOL_THREADS = 2,
    ASYNC_ENV_POOL_RESERVED = 4,
    ASYNC_ENV_STACK_SIZE = 8,
    ASYNC_ENV_FS_RUNNERS = 16,
    ASYNC_ENV_IO_URING = 32,
    ASYNC_ENV_STALL_MS = 64,
    ASYNC_ENV_CLOCK = 128,
};
unsigned long long async__env_setting(const char *name, unsigned bit, unsigned long long min,
                                      unsigned long long max, bool sized);
async__worker_t *async__runtime_pick_worker(void);
/* Where a plain thread's wait goes (see async__runtime_t). */
static inline async__worker_t *async__runtime_waiter(void) {
    return &async__rt.workers[async__rt.nworkers];
}
void async__runtime_wake_sleeper(void); /* work to steal: wake one sleeping worker */
void async__runtime_task_ended(void);

/* ---- blocking pool -------------------------------------------------------- */
enum { ASYNC_POOL_FS = 0, ASYNC_POOL_USER = 1 };

typedef struct async__job {
    async_future_t future;                  /* first */
    async__node_t node;                     /* in its pool queue (fs ops: in op.c's queue) */
    intptr_t (*work)(struct async__job *j); /* runs on a pool thread; -1 + errno for failure */
    int kind;
    int state; /* queued, running, done */
} async__job_t;

int async__pool_init(unsigned max_threads, unsigned reserved);
bool async__pool_is_current_thread(void);
void async__pool_shutdown(void);
void async__pool_stats(async_pool_stats_t *out);
/* Queues a job whose future is already initialised (ops from async__job_ops
 * or a copy with another release). Returns the job's future. */
async_future_t *async__pool_submit(async__job_t *j);
extern const async__future_ops_t async__job_ops; /* release = free(job) */
void async__job_cancel(async_future_t *f);

/* ---- fd readiness (io.c) ---------------------------------------------------
 * An io op is a nonblocking system call retried when its fd is ready: it is
 * tried at once on the calling thread, and only on EAGAIN parks on a worker
 * (the calling task's own, or any for a plain thread) until an edge comes. */
enum { ASYNC_IO_READ = 1, ASYNC_IO_WRITE = 2 };

typedef struct async__io_op async__io_op_t;

/* Tries the operation's system call once, without blocking. Returns false when
 * the kernel said it would block (EAGAIN / EWOULDBLOCK, or "still connecting"),
 * true when done, with *value (the call's result) and *err (0 or a positive
 * errno) set. Runs first on the calling thread, then on the worker thread
 * each time the fd becomes ready. Must never guess "would block". */
typedef bool (*async__io_attempt_fn)(async__io_op_t *op, intptr_t *value, int *err);

struct async__io_op {
    async_future_t future; /* first: the op is its own future */
    async__msg_t msg;      /* start message (plain threads) */
    async__msg_t cancel_msg;
    async__node_t node;           /* in its fd's parked ops of its direction */
    struct async__worker *worker; /* where it parks; set before anyone can cancel */
    int state;                    /* io.c's OP_* */
    bool small;                   /* from ASYNC_OBJ_SMALL, else malloc */
    int fd;
    int events; /* ASYNC_IO_READ or ASYNC_IO_WRITE */
    async__io_attempt_fn attempt;
    const char *name; /* the call, for dumps ("recv"); NULL: named after `attempt` */
    /* Never park: an attempt that would block ends the op with EAGAIN (the
     * caller's MSG_DONTWAIT). Set before async__io_start. */
    bool nowait;
    /* Set by an attempt that read less than it asked for from a stream: on a
     * TCP socket (io.c learns which fds are) the worker then takes the fd as
     * empty, so the next op waits without an EAGAIN system call. A hint only:
     * the wait re-arms the fd, and the kernel reports data or an end of
     * stream that is still there. Ignored on plain threads. */
    bool drained;
    /* The attempt only looks (poll(2) with no timeout, a pending signal) and
     * takes nothing from the fd: its failing says nothing about the fd to the
     * other ops. So a probe is tried whenever it starts, and on every edge
     * whatever stands ahead of it, and a failing one neither stops the retries
     * of the ops behind it nor clears a ready mark. Set before async__io_start. */
    bool probe;
    /* io.c's: the result of an attempt made while retrying, until it is settled */
    intptr_t result;
    int result_err;
    /* Bytes an attempt has moved so far (a send that goes on after a partial
     * write): a cancelled op reports them as its result instead of
     * ECANCELED, since they cannot be taken back. */
    size_t progress;
};

/* An op of `size` bytes whose first member is an async__io_op_t (the caller's
 * arguments follow it), zeroed; NULL + ENOMEM. Freed by the core when done. */
async__io_op_t *async__io_op_new(size_t size, int fd, int events, async__io_attempt_fn attempt);
/* Runs the op; returns its future (never NULL). */
async_future_t *async__io_start(async__io_op_t *op);
/* close(2) after waking every op parked on fd, on any worker, with EBADF and
 * dropping its registrations. NULL + ENOMEM only if nothing was done. */
async_future_t *async__io_close(int fd);
/* fd was just created: forget readiness remembered for an earlier file with that number. */
void async__io_fd_new(int fd);
void async__io_global_free(void);                    /* at runtime shutdown, after the workers */
void async__io_worker_init(struct async__worker *w); /* before the worker's thread starts */
/* On the worker's thread: waits up to timeout_ms (-1: no limit, 0: just look)
 * for readiness on the worker's epoll and runs the ops it makes ready. True
 * when libuv's own fd was ready too: the caller then runs its loop. */
bool async__io_poll(struct async__worker *w, int timeout_ms);
void async__io_worker_exit(struct async__worker *w); /* at worker exit: cancel parked ops */
void async__worker_ring(struct async__worker *w);    /* wakes a sleeping worker (worker.c) */

/* ---- the first of several waits (race.c) ----------------------------------
 * A race waits for the first of its kids (io ops, most often probes) or a
 * timeout, then ends the others, and settles once every kid has settled, so
 * nothing of it outlives its future. It runs on one worker (the caller's, or
 * the waiter for a plain thread), where its kids park and their hooks run,
 * so its state needs no lock; a cancel from elsewhere travels as a message.
 * async_poll and async_sigtimedwait are races. */
enum { RACE_RUNNING, RACE_WON, RACE_TIMEOUT, RACE_CANCELLED, RACE_FAILED };

typedef struct async__race async__race_t;

typedef struct async__race_kid {
    async_future_t *f;
    async__waiter_t hook;
    async__race_t *race;
    intptr_t value; /* its result, once `done` */
    int err;
    bool done;
} async__race_kid_t;

typedef struct async__race_ops {
    /* On the worker: adds the kids with async__race_add. 0, or an errno that
     * fails the race (the kids added so far are ended first). */
    int (*start)(async__race_t *r);
    /* Whether a kid's result ends the race (NULL: any result does). */
    bool (*decides)(async__race_t *r, async__race_kid_t *k);
    /* On the worker, once every kid has settled: the race's result, from
     * r->how, r->winner and the kids. */
    void (*end)(async__race_t *r, intptr_t *value, int *err);
    void (*release)(async__race_t *r); /* frees the memory holding the race */
    void (*describe)(const async__race_t *r, struct async__wait *out); /* for dumps, or NULL */
} async__race_ops_t;

struct async__race {
    async_future_t future; /* first */
    async__msg_t start_msg, cancel_msg;
    const async__race_ops_t *ops;
    struct async__worker *worker;
    int64_t timeout_ms;        /* < 0: none */
    int how;                   /* RACE_* */
    int fail_err;              /* RACE_FAILED's errno */
    async__race_kid_t *winner; /* RACE_WON's kid */
    async__race_kid_t timer;
    async__race_kid_t *kids; /* room for `cap` kids, given by the race's owner */
    size_t nkids, cap;
    int pending; /* kids not settled yet, plus holds while the race is being changed */
    bool finished;
};

/* Sets up a race whose memory (zeroed, with room for `cap` kids at `kids`) the
 * caller allocated; async__race_run then starts it and returns its future. */
void async__race_init(async__race_t *r, const async__race_ops_t *ops, async__race_kid_t *kids,
                      size_t cap, int64_t timeout_ms);
async_future_t *async__race_run(async__race_t *r);
/* From ops->start: adds a kid (NULL: ENOMEM). 0, or ENOMEM / ENOSPC (no room). */
int async__race_add(async__race_t *r, async_future_t *f);

/* ---- signals (signal.c) ------------------------------------------------------ */
/* At runtime shutdown, after the workers: puts back the dispositions the
 * library replaced and forgets what it caught. */
void async__signal_shutdown(void);

/* ---- the task registry's lock (task.c) -------------------------------------- */
/* At runtime init, before the workers start: whether membarrier(2) lets the
 * workers change their registry without a locked instruction. */
void async__registry_init(void);
/* A dump's side: from begin to end, worker w's `tasks` holds still. */
void async__registry_read_begin(async__worker_t *w);
void async__registry_read_end(async__worker_t *w);

/* ---- tables indexed by fd number (fdtable.c) ------------------------------- */
#define ASYNC_FD_TABLE_MAX (1u << 20) /* entries at most; higher fds are not in the table */

typedef struct async__fd_table {
    pthread_mutex_t lock;
    void *_Atomic items; /* len entries, zeroed when made */
    size_t len;          /* written before items is published */
} async__fd_table_t;
#define ASYNC_FD_TABLE_INIT \
    { .lock = PTHREAD_MUTEX_INITIALIZER }

/* The table's entries of `elem` bytes, made on first use; NULL if out of memory. */
void *async__fd_table_get(async__fd_table_t *t, size_t elem);
/* The entries if they were made, else NULL: never allocates. */
static inline void *async__fd_table_peek(async__fd_table_t *t) {
    return atomic_load_explicit(&t->items, memory_order_acquire);
}
void async__fd_table_free(async__fd_table_t *t); /* a later get makes a new one */

/* ---- timers --------------------------------------------------------------- */
async_future_t *async__timer(uint64_t ms, struct timespec *rem);
/* Nanoseconds in whole milliseconds, rounded up: a timer never ends early. */
static inline uint64_t async__ms_up(uint64_t ns) { return ns / 1000000 + (ns % 1000000 != 0); }

/* ---- the virtual clock (vclock.c) ------------------------------------------
 * Used only when async__rt.vclock is set; each caller tests that first. */
async_future_t *async__vclock_timer(uint64_t ms, struct timespec *rem);
/* A worker with nothing to run, that has looked at its I/O: true when the
 * clock moved and the worker must run what that made ready instead of
 * blocking; else the worker blocks, then calls async__vclock_unpark. */
bool async__vclock_park(struct async__worker *w);
void async__vclock_unpark(struct async__worker *w);
void async__vclock_plain_wait_begin(void); /* a plain thread is blocking in an await */
void async__vclock_plain_done(void);       /* ... and its future settled */
/* A thread other than a worker has become idle: the workers look again. */
void async__vclock_kick(void);
void async__vclock_hold(void);              /* a pool job was queued: the clock waits for it */
void async__vclock_release(void);           /* ... and has settled */
void async__vclock_start(bool autoadvance); /* before the workers start */
void async__vclock_down(void);              /* shutdown, before the workers exit */
void async__vclock_worker_exit(struct async__worker *w); /* cancels the worker's timers */
void async__vclock_stop(void);                           /* after the workers are joined */

/* ---- object allocation (alloc.c) ------------------------------------------ */
enum { ASYNC_OBJ_FUTURE, ASYNC_OBJ_TASK, ASYNC_OBJ_SMALL, ASYNC_OBJ_CLASSES };
#define ASYNC_OBJ_SMALL_SIZE 320 /* timers and other operations that fit */
void *async__obj_alloc(int cls);
void async__obj_free(int cls, void *p);
void async__obj_flush(struct async__worker *w); /* worker cache to the global lists */
void async__obj_runtime_down(void);             /* unmap chunks if nothing is live */

/* ---- small helpers -------------------------------------------------------- */
/* Futex calls on any 32-bit atomic word (private to the process). */
void async__futex_wait(void *word, int expected);
void async__futex_wake(void *word, int n);

/* A spin loop's pause: lets the sibling hyperthread run and saves power. */
static inline void async__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
void async__fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#endif
