/* Fixed-size object allocation for the hot path (futures, tasks, timers).
 *
 * Why not malloc: on the VMs we measure on, the first touch of a fresh page
 * costs 10-19 us, while pages populated in bulk at mmap time (MAP_POPULATE)
 * cost ~0.5 us each. A spawn burst that mallocs 200,000 task objects spends
 * most of its time faulting the heap in page by page; carving objects from
 * populated chunks removes that (docs/design.md has the numbers).
 *
 * Each class keeps a free list per worker (no lock) and a global one (a
 * mutex) fed by other threads and by worker caches that overflow. A worker
 * counts its allocations and frees in plain per-worker deltas, folded into
 * the class's atomic count when the worker exits: a shared counter bumped on
 * every allocation would put a contended atomic on the hot path of every
 * await across workers. Chunks go
 * back to the kernel when the runtime is down and no object is live: objects
 * such as task futures may outlive async_runtime_shutdown. Under ASan or
 * valgrind every object comes from malloc, so leak checkers see them. */
#include <stdlib.h>
#include <sys/mman.h>

#include "internal.h"

#if defined(ASYNC_ASAN) || defined(ASYNC_TSAN)
#define ASYNC_ALLOC_MALLOC 1
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#define CHUNK_MIN (64 * 1024)
#define CHUNK_MAX (2 * 1024 * 1024)
#define CACHE_MAX 512 /* free objects a worker keeps per class */

typedef struct free_obj {
    struct free_obj *next;
} free_obj_t;

typedef struct chunk {
    struct chunk *next;
    size_t len;
} chunk_t;

typedef struct class {
    size_t size;
    pthread_mutex_t lock;
    free_obj_t *free;
    char *fresh, *fresh_end; /* never-used objects of the newest chunk, not yet handed out */
    chunk_t *chunks;
    size_t next_chunk;
    atomic_long live;
} class_t;

_Static_assert(ASYNC_OBJ_CLASSES == 3, "worker caches are sized for three classes");
static class_t classes[ASYNC_OBJ_CLASSES] = {
    [ASYNC_OBJ_FUTURE] = {.size = sizeof(async_future_t), .lock = PTHREAD_MUTEX_INITIALIZER},
    [ASYNC_OBJ_TASK] = {.size = sizeof(async__task_t), .lock = PTHREAD_MUTEX_INITIALIZER},
    [ASYNC_OBJ_SMALL] = {.size = ASYNC_OBJ_SMALL_SIZE, .lock = PTHREAD_MUTEX_INITIALIZER},
};

static bool plain_malloc(void) {
#ifdef ASYNC_ALLOC_MALLOC
    return true;
#else
    static int use_malloc = -1;
    if (ASYNC_UNLIKELY(use_malloc < 0)) use_malloc = RUNNING_ON_VALGRIND ? 1 : 0;
    return use_malloc;
#endif
}

static size_t stride(const class_t *c) { return (c->size + 63) & ~(size_t)63; }

/* Must hold c->lock. A new chunk's objects are not linked into the free list:
 * that would write every one of them now, and a later pop would then miss the
 * cache on each `next` in turn (a chain of dependent loads). They are carved
 * off in order instead, which the hardware prefetches. */
static int grow(class_t *c) {
    size_t len = c->next_chunk ? c->next_chunk : CHUNK_MIN;
    if (len < CHUNK_MAX) c->next_chunk = len * 2;
    char *base =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (base == MAP_FAILED) return -1;
    chunk_t *ch = (chunk_t *)base;
    ch->len = len;
    ch->next = c->chunks;
    c->chunks = ch;
    size_t s = stride(c);
    c->fresh = base + s; /* the first slot holds the chunk header */
    c->fresh_end = base + len / s * s;
    return 0;
}

/* Must hold c->lock: one object from the free list or the fresh part of a chunk. */
static void *take_one(class_t *c) {
    if (c->free) {
        free_obj_t *o = c->free;
        c->free = o->next;
        return o;
    }
    if (c->fresh == c->fresh_end && grow(c) != 0) return NULL;
    void *o = c->fresh;
    c->fresh += stride(c);
    return o;
}

void *async__obj_alloc(int cls) {
    class_t *c = &classes[cls];
    if (plain_malloc()) return malloc(c->size);
    async__worker_t *w = async__tls_worker;
    free_obj_t *o;
    if (w) {
        if ((o = w->obj_cache[cls]) != NULL) {
            w->obj_cache[cls] = o->next;
            w->obj_cache_len[cls]--;
            w->obj_live[cls]++;
            return o;
        }
        if (w->obj_fresh[cls] != w->obj_fresh_end[cls]) {
            void *p = w->obj_fresh[cls];
            w->obj_fresh[cls] += stride(c);
            w->obj_live[cls]++;
            return p;
        }
    }
    pthread_mutex_lock(&c->lock);
    void *p = take_one(c);
    if (!p) {
        pthread_mutex_unlock(&c->lock);
        errno = ENOMEM;
        return NULL;
    }
    /* refill the worker while the lock is held: freed objects first, else a run of fresh ones */
    if (w) {
        for (int i = 0; i < 64 && c->free; i++) {
            free_obj_t *x = c->free;
            c->free = x->next;
            x->next = w->obj_cache[cls];
            w->obj_cache[cls] = x;
            w->obj_cache_len[cls]++;
        }
        if (!w->obj_cache[cls] && c->fresh != c->fresh_end) {
            size_t run = (size_t)(c->fresh_end - c->fresh);
            if (run > 64 * stride(c)) run = 64 * stride(c);
            w->obj_fresh[cls] = c->fresh;
            w->obj_fresh_end[cls] = c->fresh + run;
            c->fresh += run;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if (w)
        w->obj_live[cls]++;
    else
        atomic_fetch_add_explicit(&c->live, 1, memory_order_relaxed);
    return p;
}

/* Must hold c->lock. */
static void release_chunks_if_idle(class_t *c) {
    if (atomic_load(&async__rt_state) != 0 || atomic_load(&c->live) != 0) return;
    while (c->chunks) {
        chunk_t *ch = c->chunks;
        c->chunks = ch->next;
        munmap(ch, ch->len);
    }
    c->free = NULL;
    c->fresh = c->fresh_end = NULL;
    c->next_chunk = 0;
}

void async__obj_free(int cls, void *p) {
    class_t *c = &classes[cls];
    if (plain_malloc()) {
        free(p);
        return;
    }
    free_obj_t *o = p;
    async__worker_t *w = async__tls_worker;
    if (w && !w->exiting && w->obj_cache_len[cls] < CACHE_MAX) {
        o->next = w->obj_cache[cls];
        w->obj_cache[cls] = o;
        w->obj_cache_len[cls]++;
        w->obj_live[cls]--;
        return;
    }
    pthread_mutex_lock(&c->lock);
    o->next = c->free;
    c->free = o;
    if (w && !w->exiting) {
        /* a full cache: hand half of it over with this one, so the lock is taken
         * once per CACHE_MAX / 2 frees, not once per free */
        w->obj_live[cls]--;
        for (unsigned i = 0; i < CACHE_MAX / 2; i++) {
            free_obj_t *x = w->obj_cache[cls];
            w->obj_cache[cls] = x->next;
            x->next = c->free;
            c->free = x;
        }
        w->obj_cache_len[cls] -= CACHE_MAX / 2;
    } else {
        atomic_fetch_sub_explicit(&c->live, 1, memory_order_relaxed);
        release_chunks_if_idle(c);
    }
    pthread_mutex_unlock(&c->lock);
}

void async__obj_flush(async__worker_t *w) {
    for (int cls = 0; cls < ASYNC_OBJ_CLASSES; cls++) {
        class_t *c = &classes[cls];
        pthread_mutex_lock(&c->lock);
        while (w->obj_cache[cls]) {
            free_obj_t *o = w->obj_cache[cls];
            w->obj_cache[cls] = o->next;
            o->next = c->free;
            c->free = o;
        }
        w->obj_cache_len[cls] = 0;
        for (char *p = w->obj_fresh[cls]; p != w->obj_fresh_end[cls]; p += stride(c)) {
            free_obj_t *o = (free_obj_t *)p;
            o->next = c->free;
            c->free = o;
        }
        w->obj_fresh[cls] = w->obj_fresh_end[cls] = NULL;
        atomic_fetch_add_explicit(&c->live, w->obj_live[cls], memory_order_relaxed);
        w->obj_live[cls] = 0;
        pthread_mutex_unlock(&c->lock);
    }
}

void async__obj_runtime_down(void) {
    for (int cls = 0; cls < ASYNC_OBJ_CLASSES; cls++) {
        class_t *c = &classes[cls];
        pthread_mutex_lock(&c->lock);
        release_chunks_if_idle(c);
        pthread_mutex_unlock(&c->lock);
    }
}
