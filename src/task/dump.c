/* async_dump: every live task with its state, what it awaits and its stack,
 * the workers' queues and the pool's threads, printed while the program runs.
 *
 * Two passes. The first copies, per worker, the registry (the worker's list
 * of started tasks, held still by async__registry_read_begin (task.c): the
 * worker changes it only at a task's first run and end, so no task ends and
 * no stack is unmapped meanwhile) and the unstarted tasks of its newq (under the newq spinlock),
 * into a bounded array, with each parked task's return addresses. The second
 * turns addresses into names and prints, with no lock held.
 *
 * Stacks are walked by frame pointers (the library is built with
 * -fno-omit-frame-pointer; docs/debugging.md says why not libunwind) from the
 * context a parked task saved when it switched out. The walk is bounded in
 * frames and every frame record must lie inside the task's stack, above the
 * previous one. A task on another worker may resume while it is walked: its
 * frames then change under the walk, which may print a wrong frame but never
 * reads outside the stack, which stays mapped while the lock is held. Memory
 * is read with process_vm_readv(2) on ourselves where the kernel allows it,
 * so that even a wrong address costs an error, not a fault, and sanitizers do
 * not see a read of another thread's stack. A running task on another worker
 * is shown without a stack: its registers are its thread's. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "asyncstd/debug.h"
#include "dump.h"
#include "internal.h"

#define FRAMES_MAX 32
#define POOL_THREADS_SHOWN 64
#define PATH_SHOWN 96

typedef struct snap {
    uint64_t id;
    char name[16];
    unsigned worker;
    int state; /* T_NEW for an unstarted task */
    bool self; /* the caller's own task */
    int64_t since_ms;
    int wkind;
    const char *what;
    uintptr_t fn, ptr;
    const char *path;
    int64_t num;
    unsigned npc;
    uintptr_t pcs[FRAMES_MAX];
} snap_t;

/* ---- reading memory that may change or go away ------------------------------ */

static atomic_int vm_read_works = 1; /* 0 once the kernel refused process_vm_readv */

static bool vm_read(void *dst, uintptr_t src, size_t n) {
    if (!atomic_load_explicit(&vm_read_works, memory_order_relaxed)) return false;
    struct iovec local = {dst, n}, remote = {(void *)src, n};
    ssize_t r = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (r == (ssize_t)n) return true;
    if (r < 0 && (errno == ENOSYS || errno == EPERM))
        atomic_store_explicit(&vm_read_works, 0, memory_order_relaxed);
    return false;
}

/* A read of a task's stack, which stays mapped while we hold its worker's
 * tasks_lock: a plain copy when process_vm_readv is not allowed (seccomp). */
__attribute__((no_sanitize("address", "thread"))) static bool
stack_read(void *dst, uintptr_t src, size_t n, uintptr_t lo, uintptr_t hi) {
    if (src < lo || src > hi || n > hi - src) return false;
    if (vm_read(dst, src, n)) return true;
    if (atomic_load_explicit(&vm_read_works, memory_order_relaxed)) return false;
    const volatile unsigned char *s = (const volatile unsigned char *)src;
    unsigned char *d = dst;
    for (size_t i = 0; i < n; i++) d[i] = s[i];
    return true;
}

/* Follows frame records (saved frame pointer, return address) from `fp`. */
static unsigned walk(uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, unsigned n) {
    while (n < FRAMES_MAX && fp % sizeof(uintptr_t) == 0) {
        uintptr_t rec[2];
        if (!stack_read(rec, fp, sizeof rec, lo, hi) || !rec[1]) break;
        pcs[n++] = rec[1];
        if (rec[0] <= fp) break; /* the caller's frame lies above: anything else is not a frame */
        fp = rec[0];
    }
    return n;
}

/* The frame pointer and resume address a parked task saved as it switched out. */
static bool saved_regs(async__task_t *t, uintptr_t lo, uintptr_t hi, uintptr_t *fp, uintptr_t *pc) {
#ifdef ASYNC_FIBER_UCONTEXT
    mcontext_t mc;
    if (!vm_read(&mc, (uintptr_t)&t->ctx.uc.uc_mcontext, sizeof mc)) return false;
#if defined(__x86_64__)
    *fp = (uintptr_t)mc.gregs[REG_RBP];
    *pc = (uintptr_t)mc.gregs[REG_RIP];
#elif defined(__aarch64__)
    *fp = (uintptr_t)mc.regs[29];
    *pc = (uintptr_t)mc.pc;
#else
    return false;
#endif
    (void)lo;
    (void)hi;
    return true;
#else
    /* written by the switch's assembly, which sanitizers do not see */
    uintptr_t sp = (uintptr_t) * (void *volatile *)&t->ctx.sp;
#if defined(__x86_64__)
    uint64_t w[8]; /* switch_x86_64.S: FP control, r15..r12, rbx, rbp, return address */
    if (!stack_read(w, sp, sizeof w, lo, hi)) return false;
    *fp = w[6];
    *pc = w[7];
#elif defined(__aarch64__)
    uint64_t w[12]; /* switch_aarch64.S: x19..x28, x29 (fp), x30 (lr) */
    if (!stack_read(w, sp, sizeof w, lo, hi)) return false;
    *fp = w[10];
    *pc = w[11];
#else
    return false;
#endif
    return true;
#endif
}

/* ---- pass 1: copies under the locks ------------------------------------------------ */

static void copy_task(snap_t *s, async__task_t *t, unsigned worker, async__task_t *self) {
    memset(s, 0, offsetof(snap_t, pcs));
    s->id = t->id;
    memcpy(s->name, t->name, sizeof s->name);
    s->name[sizeof s->name - 1] = '\0';
    s->worker = worker;
    s->state = atomic_load_explicit(&t->state, memory_order_relaxed);
    s->since_ms = atomic_load_explicit(&t->since_ms, memory_order_relaxed);
    s->self = t == self;
    if (s->state != T_WAITING) return;
    s->wkind = atomic_load_explicit(&t->wait.kind, memory_order_relaxed);
    s->what = atomic_load_explicit(&t->wait.what, memory_order_relaxed);
    s->fn = (uintptr_t)atomic_load_explicit(&t->wait.fn, memory_order_relaxed);
    s->ptr = (uintptr_t)atomic_load_explicit(&t->wait.ptr, memory_order_relaxed);
    s->path = atomic_load_explicit(&t->wait.path, memory_order_relaxed);
    s->num = atomic_load_explicit(&t->wait.num, memory_order_relaxed);
}

/* The caller's own stack, from this frame up. */
__attribute__((noinline)) static unsigned walk_self(async__task_t *t, uintptr_t *pcs) {
    uintptr_t lo = (uintptr_t)t->stack->lo, hi = lo + t->stack->size;
    return walk((uintptr_t)__builtin_frame_address(0), lo, hi, pcs, 0);
}

static void copy_stack(snap_t *s, async__task_t *t) {
    if (!t->stack) return;
    if (s->self) {
        s->npc = walk_self(t, s->pcs);
        return;
    }
    if (s->state != T_WAITING && s->state != T_READY) return; /* running elsewhere */
    uintptr_t lo = (uintptr_t)t->stack->lo, hi = lo + t->stack->size;
    uintptr_t fp, pc;
    if (!saved_regs(t, lo, hi, &fp, &pc) || !pc) return;
    s->pcs[0] = pc;
    s->npc = walk(fp, lo, hi, s->pcs, 1);
}

typedef struct worker_view {
    unsigned started, unstarted;
    size_t runq, newq;
} worker_view_t;

/* Copies worker w's tasks into snaps[*n..cap); counts those that did not fit in *more. */
static void copy_worker(async__worker_t *w, worker_view_t *v, snap_t *snaps, size_t *n, size_t cap,
                        size_t *more) {
    async__task_t *self = async__task_current();
    v->runq = atomic_load_explicit(&w->runq_len, memory_order_relaxed);
    v->newq = atomic_load_explicit(&w->newq_len, memory_order_relaxed);
    async__registry_read_begin(w);
    async__list_foreach(ln, &w->tasks) {
        async__task_t *t = async__list_entry(ln, async__task_t, live);
        v->started++;
        if (*n == cap) {
            ++*more;
            continue;
        }
        snap_t *s = &snaps[(*n)++];
        copy_task(s, t, w->id, self);
        copy_stack(s, t);
    }
    async__registry_read_end(w);
    /* unstarted tasks that may still be stolen; a pinned one waits in the
     * worker's private run queue, where only the worker may look */
    pthread_spin_lock(&w->newq_lock);
    for (async__msg_t *m = w->newq_head; m; m = m->next) {
        v->unstarted++;
        if (*n == cap) {
            ++*more;
            continue;
        }
        snap_t *s = &snaps[(*n)++];
        copy_task(s, ASYNC_CONTAINER_OF(m, async__task_t, node), w->id, NULL);
        s->state = T_NEW;
    }
    pthread_spin_unlock(&w->newq_lock);
}

/* ---- pass 2: words ------------------------------------------------------------------ */

/* A copy of a string that may have been freed meanwhile, or "" when unreadable. */
static void copy_string(char *buf, size_t len, const char *s) {
    buf[0] = '\0';
    if (!s) return;
    size_t n = len - 1;
    /* a short read near the end of a mapping: try shorter */
    while (n >= 8 && !vm_read(buf, (uintptr_t)s, n)) n /= 2;
    if (n < 8) {
        buf[0] = '\0';
        return;
    }
    buf[n] = '\0';
    buf[strnlen(buf, n)] = '\0';
}

/* `name` without a known prefix or suffix ("recv_attempt" -> "recv", "run_openat" -> "openat"). */
static const char *trim(char *name, const char *prefix, const char *suffix) {
    size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(name);
    if (n > sl && strcmp(name + n - sl, suffix) == 0) name[n - sl] = '\0';
    return strncmp(name, prefix, pl) == 0 && name[pl] ? name + pl : name;
}

static void describe(async__symbolizer_t *sym, const snap_t *s, char *buf, size_t len) {
    char fname[128], path[PATH_SHOWN];
    const char *f;
    switch (s->wkind) {
    case ASYNC_WAIT_FD:
        if (s->what)
            snprintf(fname, sizeof fname, "%s", s->what);
        else if (!async__symbol_name(sym, s->fn, fname, sizeof fname))
            snprintf(fname, sizeof fname, "io");
        snprintf(buf, len, "%s(fd %lld)", trim(fname, "", "_attempt"), (long long)s->num);
        return;
    case ASYNC_WAIT_TIMER: {
        if (!s->num) {
            snprintf(buf, len, "sleep %llu ms", (unsigned long long)s->ptr);
            return;
        }
        int64_t left = (s->num - (int64_t)async_clock_now()) / 1000000; /* virtual too */
        snprintf(buf, len, "sleep until %+lld ms", (long long)left);
        return;
    }
    case ASYNC_WAIT_PRIM: {
        const char *sp = s->what ? strchr(s->what, ' ') : NULL;
        if (sp)
            snprintf(buf, len, "%.*s %p%s", (int)(sp - s->what), s->what, (void *)s->ptr, sp);
        else
            snprintf(buf, len, "%s %p", s->what ? s->what : "sync", (void *)s->ptr);
        return;
    }
    case ASYNC_WAIT_JOB:
        f = async__symbol_name(sym, s->fn, fname, sizeof fname) ? trim(fname, "run_", "") : "job";
        copy_string(path, sizeof path, s->path);
        if (path[0])
            snprintf(buf, len, "pool: %s \"%s\"", f, path);
        else
            snprintf(buf, len, "pool: %s", f);
        return;
    case ASYNC_WAIT_JOIN:
        snprintf(buf, len, "task %lld", (long long)s->num);
        return;
    case ASYNC_WAIT_TEXT:
        if (s->what && strstr(s->what, "%lld"))
            snprintf(buf, len, s->what, (long long)s->num);
        else
            snprintf(buf, len, "%s", s->what ? s->what : "?");
        return;
    case ASYNC_WAIT_FUTURE:
        snprintf(buf, len, "future %p", (void *)s->ptr);
        return;
    default:
        snprintf(buf, len, "?");
    }
}

static const char *state_name(int state) {
    switch (state) {
    case T_NEW:
        return "not started";
    case T_READY:
        return "ready";
    case T_RUNNING:
        return "running";
    case T_WAITING:
        return "parked";
    default:
        return "ending";
    }
}

static void print_task(FILE *out, async__symbolizer_t *sym, const snap_t *s, int64_t now) {
    fprintf(out, "task %llu", (unsigned long long)s->id);
    if (s->name[0]) fprintf(out, " \"%s\"", s->name);
    fprintf(out, " (worker %u): %s", s->worker, state_name(s->state));
    if (s->self) fprintf(out, " (the caller)");
    /* the clock is read as a task parks, not as it runs: a running task has no time */
    if ((s->state == T_WAITING || s->state == T_READY) && s->since_ms)
        fprintf(out, " %lld ms", (long long)(now - s->since_ms > 0 ? now - s->since_ms : 0));
    if (s->state == T_READY) fprintf(out, " since it last parked");
    if (s->state == T_WAITING) {
        char what[256];
        describe(sym, s, what, sizeof what);
        fprintf(out, ", awaiting %s", what);
    }
    fputc('\n', out);
    for (unsigned i = 0; i < s->npc; i++) {
        char line[384];
        /* the first frame of a parked task is where it will resume, not a return address */
        async__frame_line(sym, i, s->pcs[i], i > 0 || s->self, line, sizeof line);
        fprintf(out, "%s\n", line);
    }
    if (s->npc == FRAMES_MAX) fprintf(out, "    ... (%d frames shown)\n", FRAMES_MAX);
}

static void print_pool(FILE *out, async__symbolizer_t *sym, int64_t now) {
    async__pool_view_t v;
    async__pool_thread_view_t th[POOL_THREADS_SHOWN];
    unsigned n = async__pool_view(&v, th, POOL_THREADS_SHOWN);
    unsigned busy = 0;
    for (unsigned i = 0; i < n; i++) busy += th[i].busy;
    fprintf(out, "pool: %u of %u threads started, %u busy, %u idle; queued: %zu file, %zu user\n",
            v.threads, v.max, busy, v.idle, v.queued[ASYNC_POOL_FS], v.queued[ASYNC_POOL_USER]);
    for (unsigned i = 0; i < n; i++) {
        if (!th[i].busy) {
            fprintf(out, "  pool thread %u: idle\n", i + 1);
            continue;
        }
        char fname[128], path[PATH_SHOWN];
        const char *f =
            async__symbol_name(sym, th[i].fn, fname, sizeof fname) ? trim(fname, "run_", "") : "?";
        copy_string(path, sizeof path, th[i].path);
        fprintf(out, "  pool thread %u: busy %lld ms in %s", i + 1,
                (long long)(now - th[i].since_ms), f);
        if (path[0]) fprintf(out, " \"%s\"", path);
        fputc('\n', out);
    }
    if (v.threads > n) fprintf(out, "  (%u more pool threads not shown)\n", v.threads - n);
}

int async_dump(FILE *out) {
    if (!out) {
        errno = EINVAL;
        return -1;
    }
    if (atomic_load_explicit(&async__rt_state, memory_order_acquire) != 2) {
        fprintf(out, "asyncstd: the runtime is not running\n");
        return 0;
    }
    async__runtime_t *rt = &async__rt;
    snap_t *snaps = malloc(ASYNC_DUMP_TASKS_MAX * sizeof *snaps);
    worker_view_t *views = calloc(rt->nworkers, sizeof *views);
    async__symbolizer_t *sym = malloc(sizeof *sym);
    if (!snaps || !views || !sym) {
        free(snaps);
        free(views);
        free(sym);
        errno = ENOMEM;
        return -1;
    }
    size_t n = 0, more = 0;
    for (unsigned i = 0; i < rt->nworkers; i++)
        copy_worker(&rt->workers[i], &views[i], snaps, &n, ASYNC_DUMP_TASKS_MAX, &more);
    int64_t now = async__coarse_ms();
    async__symbolizer_init(sym);
    fprintf(out, "asyncstd dump: %ld live tasks, %u workers\n",
            atomic_load_explicit(&rt->live_tasks, memory_order_relaxed), rt->nworkers);
    for (unsigned i = 0; i < rt->nworkers; i++)
        fprintf(out,
                "worker %u: %u started tasks, ready queue %zu, not started %zu (%u stealable "
                "listed)\n",
                i + 1, views[i].started, views[i].runq, views[i].newq, views[i].unstarted);
    print_pool(out, sym, now);
    for (size_t i = 0; i < n; i++) {
        fputc('\n', out);
        print_task(out, sym, &snaps[i], now);
    }
    if (more)
        fprintf(out, "\n... %zu more tasks not shown (at most %d are)\n", more,
                ASYNC_DUMP_TASKS_MAX);
    fprintf(out, "end of asyncstd dump\n");
    fflush(out);
    async__symbolizer_free(sym);
    free(sym);
    free(views);
    free(snaps);
    return ferror(out) ? (errno = EIO, -1) : 0;
}

int async_dump_fd(int fd) {
    int copy = dup(fd);
    if (copy < 0) return -1;
    FILE *out = fdopen(copy, "w");
    if (!out) {
        int e = errno;
        close(copy);
        errno = e;
        return -1;
    }
    int r = async_dump(out);
    int e = errno;
    if (fclose(out) != 0 && r == 0) return -1;
    errno = e;
    return r;
}
