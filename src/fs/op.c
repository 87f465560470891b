/* How a file-system call becomes work on the blocking pool: one allocation
 * holds the op (and so its future), the call's arguments and copies of its
 * paths; a pool thread runs the libc call and settles the future with its
 * result and errno.
 *
 * Ops do not go to the pool one by one. They wait in the module's own queue,
 * drained by a few runner jobs (pool jobs of kind ASYNC_POOL_FS, so user
 * jobs cannot starve them) that each run queued ops until the queue is
 * empty. With one pool job per op, 64 concurrent stats kept 64 pool threads
 * waking and sleeping on two cores and ran at a fifth of the rate of a few
 * busy threads (docs/fs.md). The runner count is kept at
 * ASYNCSTD_FS_RUNNERS (default 4); when the oldest queued op has waited
 * over 2 ms (runners stuck in slow calls: an NFS server, a FIFO's open),
 * each new op may add a runner, up to the pool's size. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "task/dump.h"

enum { OP_NEW, OP_QUEUED, OP_TAKEN };

#define STUCK_NS 2000000ull
#define IDLE_NS 200000 /* a runner outlives an empty queue by 0.2 ms */

static struct {
    pthread_mutex_t lock;
    async__list_t q;     /* queued ops, oldest first, linked through job.node */
    pthread_cond_t cond; /* idle runners wait here a moment before leaving */
    unsigned runners;
    unsigned idle;      /* runners waiting on cond */
    unsigned signalled; /* of those, already woken for an op */
    unsigned limit;     /* 0 until first read from the environment */
} fsq = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t fsq_once = PTHREAD_ONCE_INIT;

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The oldest queued op, or NULL. */
static fs_op_t *q_first(void) { return async__list_entry(fsq.q.head, fs_op_t, job.node); }

static void fs_release(async_future_t *f) {
    fs_op_t *op = (fs_op_t *)f;
    if (op->small)
        async__obj_free(ASYNC_OBJ_SMALL, op);
    else
        free(op);
}

/* An op ends without running, for `err`: its unrun hook has the last word. */
static void settle_unrun(fs_op_t *op, int err) {
    intptr_t v = op->unrun ? op->unrun(op) : -1;
    async__future_complete(&op->job.future, v, v == -1 ? err : 0);
}

/* A queued op is taken out and settled; one already running finishes. */
static void fs_cancel(async_future_t *f) {
    fs_op_t *op = (fs_op_t *)f;
    pthread_mutex_lock(&fsq.lock);
    bool queued = op->job.state == OP_QUEUED;
    if (queued) {
        async__list_remove(&fsq.q, &op->job.node);
        op->job.state = OP_TAKEN;
    }
    pthread_mutex_unlock(&fsq.lock);
    if (queued) settle_unrun(op, ECANCELED);
}

/* the path is a copy inside the op: a dump reads it with a checked copy */
static void fs_describe(const async_future_t *f, async__wait_t *out) {
    const fs_op_t *op = (const fs_op_t *)f;
    async__wait_set(out, ASYNC_WAIT_JOB, NULL, (void (*)(void))op->run, f, op->path, op->fd);
}

static const async__future_ops_t fs_ops = {fs_cancel, fs_release, fs_describe};

static void run_op(fs_op_t *op) {
    async__pool_note((uintptr_t)op->run, op->path);
    errno = 0;
    intptr_t v = op->run(op);
    int err = v == -1 ? (errno ? errno : EIO) : 0;
    async__future_complete(&op->job.future, v, err);
}

/* ---- runners -------------------------------------------------------------- */

typedef struct runner {
    async__job_t job; /* first */
    bool ran;
} runner_t;

/* Settles every queued op with `err` (no runner is left to take them). */
static void drain_locked_and_unlock(int err) {
    async__list_foreach(n, &fsq.q) async__list_entry(n, fs_op_t, job.node)->job.state = OP_TAKEN;
    async__list_t all = async__list_take(&fsq.q);
    pthread_mutex_unlock(&fsq.lock);
    async__node_t *n;
    while ((n = async__list_pop_front(&all)))
        settle_unrun(async__list_entry(n, fs_op_t, job.node), err);
}

/* Waits up to IDLE_NS for an op; false when none came. Must hold the lock. */
static bool runner_wait(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += IDLE_NS;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    fsq.idle++;
    while (async__list_empty(&fsq.q)) {
        if (pthread_cond_timedwait(&fsq.cond, &fsq.lock, &ts) != 0) break;
    }
    fsq.idle--;
    if (fsq.signalled) fsq.signalled--;
    return !async__list_empty(&fsq.q);
}

static intptr_t runner_work(async__job_t *j) {
    ((runner_t *)j)->ran = true;
    for (;;) {
        pthread_mutex_lock(&fsq.lock);
        fs_op_t *op = q_first();
        if (!op && runner_wait()) op = q_first();
        if (!op) {
            fsq.runners--;
            pthread_mutex_unlock(&fsq.lock);
            return 0;
        }
        async__list_remove(&fsq.q, &op->job.node);
        op->job.state = OP_TAKEN;
        pthread_mutex_unlock(&fsq.lock);
        run_op(op);
        async__pool_note((uintptr_t)runner_work, NULL); /* for dumps: between ops now */
    }
}

/* A runner that never ran was cancelled by the pool's shutdown, or failed
 * because no pool thread could start (its future says why): if it was the
 * last, the queued ops will never run either, and end with that reason. */
static void runner_release(async_future_t *f) {
    runner_t *r = (runner_t *)f;
    bool ran = r->ran;
    int err = f->err ? f->err : ECANCELED;
    free(r);
    if (ran) return;
    pthread_mutex_lock(&fsq.lock);
    fsq.runners--;
    if (fsq.runners == 0 && !async__list_empty(&fsq.q))
        drain_locked_and_unlock(err);
    else
        pthread_mutex_unlock(&fsq.lock);
}

static const async__future_ops_t runner_ops = {async__job_cancel, runner_release, NULL};

static void start_runner(void) {
    runner_t *r = malloc(sizeof *r);
    if (!r) {
        pthread_mutex_lock(&fsq.lock);
        fsq.runners--;
        if (fsq.runners == 0 && !async__list_empty(&fsq.q))
            drain_locked_and_unlock(ENOMEM);
        else
            pthread_mutex_unlock(&fsq.lock);
        return;
    }
    async__future_init(&r->job.future, &runner_ops);
    r->job.work = runner_work;
    r->job.kind = ASYNC_POOL_FS;
    r->ran = false;
    async_future_free(async__pool_submit(&r->job)); /* detached: the op futures carry the results */
}

static void fsq_init(void) {
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&fsq.cond, &a);
    pthread_condattr_destroy(&a);
    unsigned long long v =
        async__env_setting("ASYNCSTD_FS_RUNNERS", ASYNC_ENV_FS_RUNNERS, 1, 1024, false);
    fsq.limit = v ? (unsigned)v : 4;
}

fs_op_t *async__fs_op_new_extra(fs_run_fn run, const char *path, const char *path2, size_t extra,
                                void **extra_p) {
    size_t l1 = path ? strlen(path) + 1 : 0;
    size_t l2 = path2 ? strlen(path2) + 1 : 0;
    size_t size = sizeof(fs_op_t) + l1 + l2;
    size = (size + 15) & ~(size_t)15; /* `extra` holds structs */
    size_t total = size + extra;
    /* Most calls fit the core's small-object class: stat of a short path
     * costs no malloc on a worker, which keeps a stat-heavy loop off the
     * allocator's locks. */
    bool small = total <= ASYNC_OBJ_SMALL_SIZE;
    fs_op_t *op = small ? async__obj_alloc(ASYNC_OBJ_SMALL) : malloc(total);
    if (!op) {
        errno = ENOMEM;
        return NULL;
    }
    memset(op, 0, sizeof *op);
    op->small = small;
    async__future_init(&op->job.future, &fs_ops);
    op->job.kind = ASYNC_POOL_FS;
    op->job.state = OP_NEW;
    op->run = run;
    char *s = op->strs;
    if (path) {
        memcpy(s, path, l1);
        op->path = s;
        s += l1;
    }
    if (path2) {
        memcpy(s, path2, l2);
        op->path2 = s;
    }
    if (extra_p) *extra_p = (char *)op + size;
    return op;
}

fs_op_t *async__fs_op_new(fs_run_fn run, const char *path, const char *path2) {
    return async__fs_op_new_extra(run, path, path2, 0, NULL);
}

void async__fs_op_free(fs_op_t *op) { fs_release(&op->job.future); }

async_future_t *async__fs_submit(fs_op_t *op) {
    if (ASYNC_UNLIKELY(!async__runtime())) {
        /* the op's own future carries the error: nothing to allocate now */
        settle_unrun(op, errno);
        return &op->job.future;
    }
    pthread_once(&fsq_once, fsq_init);
    unsigned limit = fsq.limit;
    uint64_t now = mono_ns();
    op->queued_ns = now;
    pthread_mutex_lock(&fsq.lock);
    op->job.state = OP_QUEUED;
    bool wake = fsq.idle > fsq.signalled;
    bool start =
        !wake && (fsq.runners < limit ||
                  (q_first() && now - q_first()->queued_ns > STUCK_NS && fsq.runners < 1024));
    async__list_push_back(&fsq.q, &op->job.node);
    if (wake) {
        fsq.signalled++;
        pthread_cond_signal(&fsq.cond);
    }
    if (start) fsq.runners++;
    pthread_mutex_unlock(&fsq.lock);
    if (start) start_runner();
    return &op->job.future;
}

bool async__fs_cancelled(const fs_op_t *op) {
    return atomic_load_explicit(&((fs_op_t *)op)->job.future.flags, memory_order_relaxed) &
           F_CANCELLED;
}
