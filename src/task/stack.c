/* Task stacks: carved from slabs of lazily committed memory, cached per
 * worker, guarded where the kernel's mapping budget allows.
 *
 * Costs that shape this file (measured on the 2-core VM, docs/design.md):
 * - a first touch of a fresh page costs ~10 us here, but populating pages in
 *   bulk with MADV_POPULATE_WRITE costs ~0.6 us a page, so a new stack's top
 *   page (where the first frames and the descriptor live) is populated
 *   eagerly and the rest is left to the kernel;
 * - every PROT_NONE guard page splits a mapping, and a process may hold only
 *   vm.max_map_count (65530) mappings: guards are given to the first
 *   max_map_count/4 stacks; stacks beyond that come unguarded from slabs of
 *   up to 256 (one mapping each), and their overflow is caught by a
 *   stack-pointer check when the task suspends.
 * A stack's descriptor lives in its own top bytes, so a stack needs no
 * allocation besides its memory. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define VALGRIND_STACK_REGISTER(lo, hi) 0
#define VALGRIND_STACK_DEREGISTER(id) ((void)(id))
#define RUNNING_ON_VALGRIND 0
#endif
#ifdef ASYNC_ASAN
#include <sanitizer/asan_interface.h>
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define CACHE_MAX 64 /* free stacks a worker keeps for itself */
/* free stacks kept committed; beyond, their memory goes back (MADV_FREE) */
#define GLOBAL_WARM_MAX 1024
#define SLAB_MAX 256

typedef struct slab {
    struct slab *next;
    void *base;
    size_t len;
    unsigned count;
    unsigned valgrind_ids[SLAB_MAX];
} slab_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static slab_t *slabs;
static async__stack_t *global_free;
static unsigned global_free_len;
static size_t slab_stack_size; /* the size slabs are cut for (the runtime default) */
static unsigned next_slab_count = 8;
static long guard_budget = -1;
static size_t page_size;

static long read_max_map_count(void) {
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long n = 65530;
    if (f) {
        if (fscanf(f, "%ld", &n) != 1) n = 65530;
        fclose(f);
    }
    /* valgrind tracks at most a few thousand mappings of its own (VG_N_SEGMENTS) */
    if (RUNNING_ON_VALGRIND && n > 4000) n = 4000;
    return n;
}

/* Writes the descriptor at the top of [lo, lo+span) and returns it. */
static async__stack_t *describe(char *lo, size_t span, bool guarded, bool own) {
    async__stack_t *s = (async__stack_t *)(lo + span - sizeof(async__stack_t));
    s = (async__stack_t *)((uintptr_t)s & ~(uintptr_t)63);
    s->next = NULL;
    s->lo = lo;
    s->size = (size_t)((char *)s - lo);
    s->guarded = guarded;
    s->own_mapping = own;
    return s;
}

static void populate_top(char *lo, size_t span) {
    char *top_page = lo + span - page_size;
    if (madvise(top_page, page_size, MADV_POPULATE_WRITE) != 0) {
        /* older kernel: the first touch will fault it in */
    }
}

/* Must hold `lock`. Cuts a new slab into stacks of `span` bytes (guard included)
 * and puts them on the global free list. */
static int grow(size_t span) {
    unsigned count = next_slab_count;
    if (next_slab_count < SLAB_MAX) next_slab_count *= 2;
    bool guarded = guard_budget >= (long)count;
    size_t len = span * count;
    char *base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) return -1;
    slab_t *sl = malloc(sizeof *sl);
    if (!sl) {
        munmap(base, len);
        errno = ENOMEM;
        return -1;
    }
    sl->base = base;
    sl->len = len;
    sl->count = count;
    for (unsigned i = 0; i < count; i++) {
        char *lo = base + (size_t)i * span;
        if (guarded) {
            if (mprotect(lo, page_size, PROT_NONE) != 0) guarded = false;
        }
        char *usable = lo + (guarded ? page_size : 0);
        size_t usable_len = span - (guarded ? page_size : 0);
        sl->valgrind_ids[i] = VALGRIND_STACK_REGISTER(usable, usable + usable_len);
        populate_top(usable, usable_len);
        async__stack_t *s = describe(usable, usable_len, guarded, false);
        s->next = global_free;
        global_free = s;
        global_free_len++;
    }
    if (guarded) guard_budget -= count;
    sl->next = slabs;
    slabs = sl;
    return 0;
}

static async__stack_t *own_stack(size_t size) {
    size_t span = size + page_size;
    char *base = mmap(NULL, span, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED) return NULL;
    bool guarded = mprotect(base, page_size, PROT_NONE) == 0;
    populate_top(base + page_size, size);
    async__stack_t *s = describe(base + page_size, size, guarded, true);
    (void)VALGRIND_STACK_REGISTER(base + page_size, base + span);
    return s;
}

/* A stack that ran a task before may carry that task's ASan shadow (frames it
 * never returned from); the new task starts from a clean slate. */
static async__stack_t *fresh(async__stack_t *s) {
    if (s) UNPOISON(s->lo, s->size);
    return s;
}

async__stack_t *async__stack_get(async__worker_t *w, size_t size) {
    if (size != slab_stack_size) return fresh(own_stack(size)); /* munmap leaves shadow behind */
    if (w->stack_cache) {
        async__stack_t *s = w->stack_cache;
        w->stack_cache = s->next;
        w->stack_cache_len--;
        return fresh(s);
    }
    pthread_mutex_lock(&lock);
    if (guard_budget < 0) guard_budget = read_max_map_count() / 4;
    if (!global_free && grow(size + page_size) != 0) {
        pthread_mutex_unlock(&lock);
        return NULL;
    }
    /* take a handful at once, so the next spawns need no lock */
    async__stack_t *s = global_free;
    global_free = s->next;
    global_free_len--;
    while (global_free && w->stack_cache_len < CACHE_MAX / 2) {
        async__stack_t *c = global_free;
        global_free = c->next;
        global_free_len--;
        c->next = w->stack_cache;
        w->stack_cache = c;
        w->stack_cache_len++;
    }
    pthread_mutex_unlock(&lock);
    return fresh(s);
}

static void put_global(async__stack_t *s) {
    if (global_free_len >= GLOBAL_WARM_MAX) {
        /* let the kernel take the pages back when it needs them (reuse stays cheap); the
         * top page holds the descriptor and stays */
        char *top_page = (char *)((uintptr_t)s & ~(uintptr_t)(page_size - 1));
        if (top_page > (char *)s->lo) madvise(s->lo, (size_t)(top_page - (char *)s->lo), MADV_FREE);
    }
    s->next = global_free;
    global_free = s;
    global_free_len++;
}

void async__stack_put(async__worker_t *w, async__stack_t *s) {
    if (s->own_mapping) {
        char *base = (char *)s->lo - page_size;
        size_t span = (size_t)((char *)s + sizeof *s - base);
        span = (span + page_size - 1) & ~(page_size - 1);
        munmap(base, span);
        return;
    }
    if (w && w->stack_cache_len < CACHE_MAX) {
        s->next = w->stack_cache;
        w->stack_cache = s;
        w->stack_cache_len++;
        return;
    }
    pthread_mutex_lock(&lock);
    put_global(s);
    pthread_mutex_unlock(&lock);
}

void async__stack_flush(async__worker_t *w) {
    pthread_mutex_lock(&lock);
    while (w->stack_cache) {
        async__stack_t *s = w->stack_cache;
        w->stack_cache = s->next;
        put_global(s);
    }
    w->stack_cache_len = 0;
    pthread_mutex_unlock(&lock);
}

void async__stack_configure(size_t default_size) {
    if (!page_size) page_size = (size_t)sysconf(_SC_PAGESIZE);
    slab_stack_size = default_size;
}

void async__stack_global_free(void) {
    pthread_mutex_lock(&lock);
    while (slabs) {
        slab_t *sl = slabs;
        slabs = sl->next;
        for (unsigned i = 0; i < sl->count; i++) VALGRIND_STACK_DEREGISTER(sl->valgrind_ids[i]);
        munmap(sl->base, sl->len);
        free(sl);
    }
    global_free = NULL;
    global_free_len = 0;
    next_slab_count = 8;
    guard_budget = -1;
    pthread_mutex_unlock(&lock);
}

/* ---- overflow ------------------------------------------------------------- */

void async__stack_overflow_check(async__task_t *t, void *sp) {
    async__stack_t *s = t->stack;
    if (ASYNC_UNLIKELY((char *)sp < (char *)s->lo + 256))
        async__fatal("asyncstd: task '%s' overflowed its %zu-byte stack; spawn it with a larger "
                     "stack_size (async_spawn_opts) or set ASYNCSTD_STACK_SIZE",
                     t->name, s->size);
}

static struct sigaction previous_segv;
static atomic_int handler_installed;

static void on_segv(int sig, siginfo_t *si, void *uctx) {
    async__worker_t *w = async__tls_worker;
    async__task_t *t = w ? w->current : NULL;
    if (t && t->stack && t->stack->guarded) {
        char *guard = (char *)t->stack->lo - page_size;
        char *addr = si->si_addr;
        if (addr >= guard - 64 * 1024 && addr < (char *)t->stack->lo)
            async__fatal(
                "asyncstd: task '%s' overflowed its %zu-byte stack (fault at %p, guard page "
                "at %p); spawn it with a larger stack_size (async_spawn_opts) or set "
                "ASYNCSTD_STACK_SIZE",
                t->name, t->stack->size, (void *)addr, (void *)guard);
    }
    /* not ours: hand it to whatever was there before (normally the default: a core dump) */
    if (previous_segv.sa_flags & SA_SIGINFO) {
        previous_segv.sa_sigaction(sig, si, uctx);
    } else if (previous_segv.sa_handler != SIG_IGN && previous_segv.sa_handler != SIG_DFL) {
        previous_segv.sa_handler(sig);
    } else {
        signal(sig, SIG_DFL); /* returning re-executes the fault, now fatal */
    }
}

int async__stack_install_guard_handler(void) {
    async__worker_t *w = async__tls_worker;
    size_t alt = 64 * 1024;
    w->altstack = malloc(alt);
    if (!w->altstack) return -1;
    stack_t ss = {.ss_sp = w->altstack, .ss_size = alt, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    int expected = 0;
    if (atomic_compare_exchange_strong(&handler_installed, &expected, 1)) {
        struct sigaction cur;
        sigaction(SIGSEGV, NULL, &cur);
        /* keep a sanitizer's or the application's own handler in charge */
        if (!(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_sigaction = on_segv;
            sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
            sigemptyset(&sa.sa_mask);
            sigaction(SIGSEGV, &sa, &previous_segv);
        }
    }
    return 0;
}

void async__stack_remove_guard_handler(void) {
    async__worker_t *w = async__tls_worker;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    sigaltstack(&ss, NULL);
    free(w->altstack);
    w->altstack = NULL;
}
