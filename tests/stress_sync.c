/* Cross-worker stress scenarios of the sync module in plain C, without
 * Criterion, so that they also run under ThreadSanitizer (see tests/stress.h
 * for why Criterion cannot): mutex hand-offs racing cancels and timeouts,
 * semaphores racing cancels, channels with many senders and receivers,
 * condition variables, rwlocks, a resource pool shared by tasks, and rwlock
 * and semaphore waits racing barging, cancels and timeouts.
 *
 *   stress_sync [SCALE]   SCALE divides the iteration counts (default 1)
 *
 * Prints "N passed, M failed" and exits non-zero when a check failed. */
#define _GNU_SOURCE
#include <pthread.h>

#include "stress.h"


static unsigned nworkers(void) { return (unsigned)async_worker_count(); }

static async_future_t *spawn_on(async_task_fn fn, void *arg, unsigned i) {
    async_spawn_opts_t o = {.worker = 1 + i % nworkers()};
    return async_spawn_opts(fn, arg, &o);
}

/* ---- 1. mutex: lockers with timeouts and cancels; the count must be exact ---- */
static async_mutex_t mx = ASYNC_MUTEX_INITIALIZER;
static long mx_count;
static atomic_long mx_wins;

static intptr_t mutex_worker(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 3000 / scale; i++) {
        async_future_t *f = async_mutex_lock(&mx);
        if (i % 5 == id % 5) async_cancel(f); /* may race the hand-off */
        intptr_t r = (i % 7 == 0) ? async_await_timeout(f, 0) : async_await(f);
        if (r == 0) {
            mx_count++;
            atomic_fetch_add(&mx_wins, 1);
            if (i % 11 == 0) async_yield();
            CHECK(async_mutex_unlock(&mx) == 0);
        } else {
            CHECK(errno == ECANCELED || errno == ETIMEDOUT);
        }
    }
    return 0;
}

static void *mutex_thread(void *arg) { return (void *)mutex_worker(arg); }

static void mutex_scenario(void) {
    async_future_t *t[8];
    for (int i = 0; i < 8; i++) t[i] = spawn_on(mutex_worker, (void *)(intptr_t)i, (unsigned)i);
    pthread_t th;
    pthread_create(&th, NULL, mutex_thread, (void *)(intptr_t)9);
    CHECK(async_await_all(t, 8, NULL, NULL) == 0);
    pthread_join(th, NULL);
    CHECK(mx_count == atomic_load(&mx_wins));
    CHECK(async_mutex_trylock(&mx) == 0);
    CHECK(async_mutex_unlock(&mx) == 0);
}

/* ---- 2. semaphore: posts racing cancelled waits; no unit lost or made up ---- */
static async_sem_t sem;
static atomic_long sem_taken;

static intptr_t sem_waiter(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000 / scale; i++) {
        async_future_t *f = async_sem_wait(&sem);
        if (i % 3 == 0) async_cancel(f);
        if (async_await(f) == 0) atomic_fetch_add(&sem_taken, 1);
    }
    return 0;
}

static intptr_t sem_poster(void *arg) {
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        CHECK(async_sem_post(&sem) == 0);
        if (i % 8 == 0) async_yield();
    }
    return 0;
}

static void sem_scenario(void) {
    async_sem_init(&sem, 0, 0);
    long posts = 4L * 2000 / scale;
    async_future_t *t[6];
    for (int i = 0; i < 4; i++) t[i] = spawn_on(sem_waiter, NULL, (unsigned)i);
    t[4] = spawn_on(sem_poster, (void *)(intptr_t)(posts / 2), 4);
    t[5] = spawn_on(sem_poster, (void *)(intptr_t)(posts - posts / 2), 5);
    CHECK(async_await_all(t, 6, NULL, NULL) == 0);
    int v = -1;
    async_sem_getvalue(&sem, &v);
    CHECK(atomic_load(&sem_taken) + v == posts);
    CHECK(async_sem_destroy(&sem) == 0);
}

/* ---- 3. channels: many senders and receivers, close at the end ---- */
static async_chan_t *ch;
static atomic_long ch_sum, ch_n;
static atomic_int ch_senders;

static intptr_t ch_sender(void *arg) {
    (void)arg;
    for (long i = 1; i <= 3000 / scale; i++) CHECK(async_await(async_chan_send(ch, &i)) == 0);
    if (atomic_fetch_sub(&ch_senders, 1) == 1) async_chan_close(ch);
    return 0;
}

static intptr_t ch_receiver(void *arg) {
    (void)arg;
    long v;
    while (async_await(async_chan_recv(ch, &v)) == 1) {
        atomic_fetch_add(&ch_sum, v);
        atomic_fetch_add(&ch_n, 1);
    }
    return 0;
}

static void chan_scenario(size_t cap) {
    ch = async_chan_new(sizeof(long), cap);
    atomic_store(&ch_sum, 0);
    atomic_store(&ch_n, 0);
    atomic_store(&ch_senders, 4);
    async_future_t *t[8];
    for (int i = 0; i < 4; i++) t[i] = spawn_on(ch_receiver, NULL, (unsigned)i);
    for (int i = 4; i < 8; i++) t[i] = spawn_on(ch_sender, NULL, (unsigned)i);
    CHECK(async_await_all(t, 8, NULL, NULL) == 0);
    long n = 3000 / scale;
    CHECK(atomic_load(&ch_n) == 4 * n);
    CHECK(atomic_load(&ch_sum) == 4 * n * (n + 1) / 2);
    CHECK(async_chan_free(ch) == 0);
}

/* ---- 4. cond + rwlock ---- */
static async_mutex_t cm = ASYNC_MUTEX_INITIALIZER;
static async_cond_t cv = ASYNC_COND_INITIALIZER;
static int turn;
static async_rwlock_t rw = ASYNC_RWLOCK_INITIALIZER;
static long rw_a, rw_b;

static intptr_t turn_taker(void *arg) {
    int me = (int)(intptr_t)arg;
    for (int i = 0; i < 300 / scale; i++) {
        async_await(async_mutex_lock(&cm));
        while (turn % 4 != me) CHECK(async_await(async_cond_wait(&cv, &cm)) == 0);
        turn++;
        async_cond_broadcast(&cv);
        async_mutex_unlock(&cm);
        if (i % 2) {
            async_await(async_rwlock_wrlock(&rw));
            rw_a++;
            rw_b++;
        } else {
            async_await(async_rwlock_rdlock(&rw));
            CHECK(rw_a == rw_b);
        }
        async_rwlock_unlock(&rw);
    }
    return 0;
}

static void cond_scenario(void) {
    async_future_t *t[4];
    for (int i = 0; i < 4; i++) t[i] = spawn_on(turn_taker, (void *)(intptr_t)i, (unsigned)i);
    CHECK(async_await_all(t, 4, NULL, NULL) == 0);
    CHECK(turn == 4 * (300 / scale));
}

/* ---- 5. resource pool ---- */
static atomic_int objs_alive;
static void *obj_create(void *ctx) {
    (void)ctx;
    atomic_fetch_add(&objs_alive, 1);
    return malloc(16);
}
static void obj_destroy(void *o, void *ctx) {
    (void)ctx;
    atomic_fetch_sub(&objs_alive, 1);
    free(o);
}
static int obj_check(void *o, void *ctx) {
    (void)o;
    (void)ctx;
    return 0;
}
static async_respool_t *pool;
static atomic_int pool_inside;

static intptr_t pool_user(void *arg) {
    (void)arg;
    for (int i = 0; i < 300 / scale; i++) {
        void *o = async_await_ptr(async_respool_acquire(pool, 5000));
        CHECK(o != NULL);
        if (!o) continue;
        CHECK(atomic_fetch_add(&pool_inside, 1) < 3);
        async_yield();
        atomic_fetch_sub(&pool_inside, 1);
        CHECK(async_respool_release(pool, o, i % 13 == 0) == 0);
    }
    return 0;
}

static void pool_scenario(void) {
    async_respool_config_t cfg = {.create = obj_create,
                                  .destroy = obj_destroy,
                                  .check = obj_check,
                                  .max_size = 3,
                                  .min_idle = 1,
                                  .idle_timeout_ms = 20};
    pool = async_respool_new(&cfg);
    CHECK(pool != NULL);
    async_future_t *t[6];
    for (int i = 0; i < 6; i++) t[i] = spawn_on(pool_user, NULL, (unsigned)i);
    CHECK(async_await_all(t, 6, NULL, NULL) == 0);
    CHECK(async_respool_free(pool) == 0);
    CHECK(atomic_load(&objs_alive) == 0);
}

/* ---- 6. rwlock and semaphore with barging: plain data they guard, waits
 * cancelled and timed out, tasks on every worker and a plain thread ---- */
static async_rwlock_t brw = ASYNC_RWLOCK_INITIALIZER;
static long brw_a, brw_b; /* written under the write lock, equal under any lock */
static atomic_long brw_writes;
static async_sem_t bsem; /* one unit: a lock around bsem_count */
static long bsem_count;
static atomic_long bsem_wins;

static intptr_t barger(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < 3000 / scale; i++) {
        bool write = i % 4 == id % 4;
        async_future_t *f = write ? async_rwlock_wrlock(&brw) : async_rwlock_rdlock(&brw);
        if (i % 9 == id % 9) async_cancel(f); /* may race a retry or a hand-off */
        intptr_t r = (i % 7 == 0) ? async_await_timeout(f, 0) : async_await(f);
        if (r == 0) {
            if (write) {
                brw_a++;
                brw_b++;
                atomic_fetch_add(&brw_writes, 1);
            } else {
                CHECK(brw_a == brw_b);
            }
            if (i % 13 == 0) async_yield();
            CHECK(async_rwlock_unlock(&brw) == 0);
        } else {
            CHECK(errno == ECANCELED || errno == ETIMEDOUT);
        }
        f = async_sem_wait(&bsem);
        if (i % 10 == id % 10) async_cancel(f);
        if (async_await(f) == 0) {
            bsem_count++;
            atomic_fetch_add(&bsem_wins, 1);
            if (i % 11 == 0) async_yield();
            CHECK(async_sem_post(&bsem) == 0);
        } else {
            CHECK(errno == ECANCELED);
        }
    }
    return 0;
}

static void *barger_thread(void *arg) { return (void *)barger(arg); }

static void barging_scenario(void) {
    CHECK(async_sem_init(&bsem, 0, 1) == 0);
    async_future_t *t[8];
    for (int i = 0; i < 8; i++) t[i] = spawn_on(barger, (void *)(intptr_t)i, (unsigned)i);
    pthread_t th;
    pthread_create(&th, NULL, barger_thread, (void *)(intptr_t)9);
    CHECK(async_await_all(t, 8, NULL, NULL) == 0);
    pthread_join(th, NULL);
    CHECK(brw_a == atomic_load(&brw_writes) && brw_b == brw_a);
    CHECK(bsem_count == atomic_load(&bsem_wins));
    int v = -1;
    CHECK(async_sem_getvalue(&bsem, &v) == 0 && v == 1);
    CHECK(async_sem_destroy(&bsem) == 0);
    CHECK(async_rwlock_destroy(&brw) == 0);
}

static void chan_rendezvous(void) { chan_scenario(0); }
static void chan_capacity_1(void) { chan_scenario(1); }
static void chan_capacity_8(void) { chan_scenario(8); }
static void chan_unbounded(void) { chan_scenario(ASYNC_CHAN_UNBOUNDED); }

int main(int argc, char **argv) {
    static const stress_scenario_t scenarios[] = {
        {"mutex", mutex_scenario},
        {"sem", sem_scenario},
        {"cond+rwlock", cond_scenario},
        {"pool", pool_scenario},
        {"rwlock+sem barging", barging_scenario},
        {"chan_rendezvous", chan_rendezvous},
        {"chan_capacity_1", chan_capacity_1},
        {"chan_capacity_8", chan_capacity_8},
        {"chan_unbounded", chan_unbounded},
    };
    return stress_main(argc, argv, scenarios, sizeof scenarios / sizeof *scenarios,
                       STRESS_SHARED_RUNTIME);
}
