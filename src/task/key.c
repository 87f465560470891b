/* Task-local storage, shaped like pthread_key_*: a process-wide table of
 * keys, and per task an array of values allocated on the first set. Each key
 * slot carries a sequence number (odd while the key is live, as glibc does),
 * and each value remembers the sequence it was set under, so a deleted and
 * re-created key never shows a stale value. A plain thread's table is freed
 * when the thread exits; the main thread's at async_runtime_shutdown. */
#include <stdlib.h>

#include "internal.h"

#define DESTRUCTOR_ROUNDS 4 /* PTHREAD_DESTRUCTOR_ITERATIONS */

typedef struct async__spec {
    void *value[ASYNC_KEYS_MAX];
    unsigned seq[ASYNC_KEYS_MAX];
} async__spec_t;

static struct {
    _Atomic unsigned seq;
    void (*_Atomic destructor)(void *);
} keys[ASYNC_KEYS_MAX];
static pthread_mutex_t keys_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread async__spec_t *thread_spec; /* plain threads */
/* frees a plain thread's table when the thread exits (pthread runs key destructors) */
static pthread_key_t thread_spec_key;
static pthread_once_t thread_spec_once = PTHREAD_ONCE_INIT;

static void free_thread_spec(void *p) { free(p); }
static atomic_bool thread_spec_key_made;
static void make_thread_spec_key(void) {
    if (pthread_key_create(&thread_spec_key, free_thread_spec) == 0)
        atomic_store(&thread_spec_key_made, true);
}

static bool live(async_key_t key, unsigned *seq) {
    if (key >= ASYNC_KEYS_MAX) return false;
    *seq = atomic_load_explicit(&keys[key].seq, memory_order_acquire);
    return *seq & 1;
}

int async_key_create(async_key_t *key, void (*destructor)(void *)) {
    if (!key) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&keys_lock);
    for (unsigned i = 0; i < ASYNC_KEYS_MAX; i++) {
        unsigned seq = atomic_load(&keys[i].seq);
        if (!(seq & 1)) {
            atomic_store(&keys[i].destructor, destructor);
            atomic_store_explicit(&keys[i].seq, seq + 1, memory_order_release);
            pthread_mutex_unlock(&keys_lock);
            *key = i;
            return 0;
        }
    }
    pthread_mutex_unlock(&keys_lock);
    errno = EAGAIN;
    return -1;
}

int async_key_delete(async_key_t key) {
    pthread_mutex_lock(&keys_lock);
    unsigned seq;
    if (!live(key, &seq)) {
        pthread_mutex_unlock(&keys_lock);
        errno = EINVAL;
        return -1;
    }
    atomic_store(&keys[key].destructor, NULL);
    atomic_store_explicit(&keys[key].seq, seq + 1, memory_order_release);
    pthread_mutex_unlock(&keys_lock);
    return 0;
}

static async__spec_t **spec_slot(void) {
    async__task_t *t = async__task_current();
    return t ? &t->specific : &thread_spec;
}

void *async_getspecific(async_key_t key) {
    unsigned seq;
    if (!live(key, &seq)) return NULL;
    async__spec_t *s = *spec_slot();
    return s && s->seq[key] == seq ? s->value[key] : NULL;
}

int async_setspecific(async_key_t key, const void *value) {
    unsigned seq;
    if (!live(key, &seq)) {
        errno = EINVAL;
        return -1;
    }
    async__spec_t **slot = spec_slot();
    if (!*slot) {
        if (!value) return 0;
        *slot = calloc(1, sizeof **slot);
        if (!*slot) {
            errno = ENOMEM;
            return -1;
        }
        if (slot == &thread_spec) {
            pthread_once(&thread_spec_once, make_thread_spec_key);
            if (atomic_load(&thread_spec_key_made)) pthread_setspecific(thread_spec_key, *slot);
        }
    }
    (*slot)->value[key] = (void *)value;
    (*slot)->seq[key] = seq;
    return 0;
}

void async__key_run_destructors(async__task_t *t) {
    async__spec_t *s = t->specific;
    if (!s) return;
    for (int round = 0; round < DESTRUCTOR_ROUNDS; round++) {
        bool again = false;
        for (unsigned i = 0; i < ASYNC_KEYS_MAX; i++) {
            void *v = s->value[i];
            if (!v) continue;
            s->value[i] = NULL;
            unsigned seq = atomic_load_explicit(&keys[i].seq, memory_order_acquire);
            void (*d)(void *) = atomic_load(&keys[i].destructor);
            if ((seq & 1) && s->seq[i] == seq && d) {
                d(v);
                again = true;
            }
        }
        if (!again) break;
    }
}

void async__key_free(async__task_t *t) {
    free(t->specific);
    t->specific = NULL;
}

void async__key_thread_cleanup(void) {
    free(thread_spec);
    thread_spec = NULL;
    if (atomic_load(&thread_spec_key_made)) pthread_setspecific(thread_spec_key, NULL);
}
