/* Tables indexed by fd number (io.c's registrations, net's per-socket flags):
 * one zeroed array for the whole fd range, made on first use. The range is
 * the hard RLIMIT_NOFILE, at most ASYNC_FD_TABLE_MAX entries; the untouched
 * pages of a large calloc cost nothing. */
#include <stdlib.h>
#include <sys/resource.h>

#include "internal.h"

void *async__fd_table_get(async__fd_table_t *t, size_t elem) {
    void *a = atomic_load_explicit(&t->items, memory_order_acquire);
    if (ASYNC_LIKELY(a)) return a;
    pthread_mutex_lock(&t->lock);
    a = atomic_load_explicit(&t->items, memory_order_relaxed);
    if (!a) {
        struct rlimit rl;
        size_t len = ASYNC_FD_TABLE_MAX;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY && rl.rlim_max < len)
            len = rl.rlim_max;
        a = calloc(len, elem);
        if (a) {
            t->len = len;
            atomic_store_explicit(&t->items, a, memory_order_release);
        }
    }
    pthread_mutex_unlock(&t->lock);
    return a;
}

void async__fd_table_free(async__fd_table_t *t) {
    pthread_mutex_lock(&t->lock);
    free(atomic_load_explicit(&t->items, memory_order_relaxed));
    atomic_store_explicit(&t->items, NULL, memory_order_relaxed);
    t->len = 0;
    pthread_mutex_unlock(&t->lock);
}
