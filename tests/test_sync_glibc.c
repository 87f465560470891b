/* sync.h and the sleeps of task.h against glibc: each async_mutex_*,
 * async_rwlock_*, async_cond_*, async_sem_*, barrier and once call next to
 * its pthread or sem_* twin on the same inputs where glibc does not block
 * for long (attributes of each kind, trylocks on held objects, relocks and
 * unlocks by the owner and by another thread, recursion counts, bad and past
 * abstimes on free and held objects, the semaphore's limits, destroys of held
 * and free objects), and sleep, usleep and nanosleep on zero, short and bad
 * durations; from a plain thread and from a task. Where glibc would crash
 * (NULL objects) or where sync.h documents another answer, the documented one
 * is asserted, next to glibc's where glibc has one. */
#include "glibc_compare.h"

#include <limits.h>
#include <semaphore.h>
#include <time.h>

/* A NULL nanosleep request is among the inputs compared, on purpose: the
 * call is made where UBSan's check of the nonnull attribute is off (the
 * kernel's answer is what is compared). The sync calls are never handed
 * NULL on glibc's side, where they would crash. */
#pragma GCC diagnostic ignored "-Wnonnull"
__attribute__((no_sanitize("nonnull-attribute"))) static int glibc_nanosleep_null(void) {
    return nanosleep(NULL, NULL);
}
__attribute__((no_sanitize("nonnull-attribute"))) static int
glibc_clock_nanosleep_null(clockid_t clock, int flags) {
    return clock_nanosleep(clock, flags, NULL, NULL);
}

TestSuite(sync_glibc, .init = rt_start, .fini = rt_stop, .timeout = 60);

/* The abstimes of the timed calls: in the past (the epoch, and before it),
 * and with tv_nsec out of range. */
static const struct timespec past = {0, 0}, before_epoch = {-1, 0};
static const struct timespec bad_ts[] = {{0, -1}, {0, 1000000000L}, {-1, -1}, {0, LONG_MAX}};
#define NBAD (sizeof bad_ts / sizeof *bad_ts)

/* ---- another owner ------------------------------------------------------------
 * A plain thread that takes a glibc mutex and an async one, or the write
 * locks of two rwlocks, holds them until told, then releases them (unless the
 * test released them for it). */

typedef struct holder {
    pthread_mutex_t *gm;
    async_mutex_t *am;
    pthread_rwlock_t *grw;
    async_rwlock_t *arw;
    sem_t held, go;
    bool release;
    pthread_t t;
} holder_t;

static void *holder_main(void *p) {
    holder_t *h = p;
    if (h->gm) CHECK_EQ(pthread_mutex_lock(h->gm), 0);
    if (h->am) CHECK_EQ(async_await(async_mutex_lock(h->am)), 0);
    if (h->grw) CHECK_EQ(pthread_rwlock_wrlock(h->grw), 0);
    if (h->arw) CHECK_EQ(async_await(async_rwlock_wrlock(h->arw)), 0);
    sem_post(&h->held);
    while (sem_wait(&h->go) != 0) continue;
    if (h->release) {
        if (h->gm) CHECK_EQ(pthread_mutex_unlock(h->gm), 0);
        if (h->am) CHECK_EQ(async_mutex_unlock(h->am), 0);
        if (h->grw) CHECK_EQ(pthread_rwlock_unlock(h->grw), 0);
        if (h->arw) CHECK_EQ(async_rwlock_unlock(h->arw), 0);
    }
    return NULL;
}

static void holder_start(holder_t *h) {
    h->release = true;
    sem_init(&h->held, 0, 0);
    sem_init(&h->go, 0, 0);
    CHECK_EQ(pthread_create(&h->t, NULL, holder_main, h), 0);
    while (sem_wait(&h->held) != 0) continue;
}

static void holder_stop(holder_t *h) {
    sem_post(&h->go);
    pthread_join(h->t, NULL);
    sem_destroy(&h->held);
    sem_destroy(&h->go);
}

/* ---- mutex ---------------------------------------------------------------------- */

static const int mutex_types[] = {PTHREAD_MUTEX_NORMAL, PTHREAD_MUTEX_ERRORCHECK,
                                  PTHREAD_MUTEX_RECURSIVE, PTHREAD_MUTEX_DEFAULT};
#define NTYPES (sizeof mutex_types / sizeof *mutex_types)

static void init_pair(pthread_mutex_t *g, async_mutex_t *a, int type) {
    pthread_mutexattr_t at;
    pthread_mutexattr_init(&at);
    pthread_mutexattr_settype(&at, type);
    SAME_ERRNUM_NOW(pthread_mutex_init(g, &at), async_mutex_init(a, &at));
    pthread_mutexattr_destroy(&at);
}

static void mutex_attrs(void) {
    pthread_mutex_t g;
    async_mutex_t a;
    SAME_ERRNUM_NOW(pthread_mutex_init(&g, NULL), async_mutex_init(&a, NULL));
    SAME_ERRNUM_NOW(pthread_mutex_destroy(&g), async_mutex_destroy(&a));
    for (size_t i = 0; i < NTYPES; i++) {
        init_pair(&g, &a, mutex_types[i]);
        SAME_ERRNUM_NOW(pthread_mutex_destroy(&g), async_mutex_destroy(&a));
    }
    /* attributes whose every bit is set: glibc refuses a robust
     * priority-protected mutex, asyncstd a process-shared one; both ENOTSUP */
    pthread_mutexattr_t junk;
    memset(&junk, 0xff, sizeof junk);
    SAME_ERRNUM_NOW(pthread_mutex_init(&g, &junk), async_mutex_init(&a, &junk));
    /* glibc takes process-shared, robust and priority-protocol attributes;
     * sync.h documents ENOTSUP for each */
    for (int k = 0; k < 4; k++) {
        pthread_mutexattr_t at;
        pthread_mutexattr_init(&at);
        if (k == 0) CHECK_EQ(pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED), 0);
        if (k == 1) CHECK_EQ(pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST), 0);
        if (k == 2) CHECK_EQ(pthread_mutexattr_setprotocol(&at, PTHREAD_PRIO_INHERIT), 0);
        if (k == 3) CHECK_EQ(pthread_mutexattr_setprotocol(&at, PTHREAD_PRIO_PROTECT), 0);
        CHECK_EQ(pthread_mutex_init(&g, &at), 0);
        CHECK_EQ(pthread_mutex_destroy(&g), 0);
        CHECK_ERR(async_mutex_init(&a, &at), ENOTSUP);
        pthread_mutexattr_destroy(&at);
    }
    /* NULL: glibc would crash; sync.h documents EINVAL */
    CHECK_ERR(async_mutex_init(NULL, NULL), EINVAL);
    CHECK_ERR(async_await(async_mutex_lock(NULL)), EINVAL);
    CHECK_ERR(async_await(async_mutex_timedlock(NULL, &past)), EINVAL);
    CHECK_ERR(async_mutex_trylock(NULL), EINVAL);
    CHECK_ERR(async_mutex_unlock(NULL), EINVAL);
    CHECK_ERR(async_mutex_destroy(NULL), EINVAL);
}

Test(sync_glibc, mutex_attributes) { both_contexts(mutex_attrs); }

/* Locks held by the caller: trylock, relock, timed relocks with past and bad
 * abstimes, the unlock count of each type, destroy while held and free. */
static void mutex_own(void) {
    for (size_t i = 0; i < NTYPES; i++) {
        int type = mutex_types[i];
        bool normal = type == PTHREAD_MUTEX_NORMAL || type == PTHREAD_MUTEX_DEFAULT;
        pthread_mutex_t g;
        async_mutex_t a;
        init_pair(&g, &a, type);
        /* free: a bad or past abstime is not looked at, the lock is taken */
        for (size_t b = 0; b < NBAD; b++) {
            SAME_ERRNUM(pthread_mutex_timedlock(&g, &bad_ts[b]),
                        async_mutex_timedlock(&a, &bad_ts[b]));
            SAME_ERRNUM_NOW(pthread_mutex_unlock(&g), async_mutex_unlock(&a));
        }
        SAME_ERRNUM(pthread_mutex_timedlock(&g, &past), async_mutex_timedlock(&a, &past));
        SAME_ERRNUM_NOW(pthread_mutex_unlock(&g), async_mutex_unlock(&a));
        SAME_ERRNUM_NOW(pthread_mutex_trylock(&g), async_mutex_trylock(&a));
        SAME_ERRNUM_NOW(pthread_mutex_unlock(&g), async_mutex_unlock(&a));

        /* held by the caller */
        SAME_ERRNUM(pthread_mutex_lock(&g), async_mutex_lock(&a));
        SAME_ERRNUM_NOW(pthread_mutex_trylock(&g), async_mutex_trylock(&a)); /* recursive: 2 */
        if (!normal) /* a normal mutex's relock waits for ever in both */
            SAME_ERRNUM(pthread_mutex_lock(&g), async_mutex_lock(&a)); /* recursive: 3 */
        SAME_ERRNUM(pthread_mutex_timedlock(&g, &past), async_mutex_timedlock(&a, &past));
        SAME_ERRNUM(pthread_mutex_timedlock(&g, &before_epoch),
                    async_mutex_timedlock(&a, &before_epoch));
        for (size_t b = 0; b < NBAD; b++)
            SAME_ERRNUM(pthread_mutex_timedlock(&g, &bad_ts[b]),
                        async_mutex_timedlock(&a, &bad_ts[b]));
        SAME_ERRNUM_NOW(pthread_mutex_destroy(&g), async_mutex_destroy(&a)); /* EBUSY */
        /* unlock until it is free: the recursive one counts its depth */
        int depth = normal ? 1 : type == PTHREAD_MUTEX_ERRORCHECK ? 1 : 3 + 2 + NBAD;
        for (int d = 0; d < depth; d++) {
            SAME_ERRNUM_NOW(pthread_mutex_destroy(&g), async_mutex_destroy(&a)); /* EBUSY */
            SAME_ERRNUM_NOW(pthread_mutex_unlock(&g), async_mutex_unlock(&a));
        }
        SAME_ERRNUM_NOW(pthread_mutex_trylock(&g), async_mutex_trylock(&a));
        SAME_ERRNUM_NOW(pthread_mutex_unlock(&g), async_mutex_unlock(&a));
        if (normal) {
            /* an unlocked normal mutex: glibc's unlock says 0, sync.h documents EPERM */
            CHECK_EQ(pthread_mutex_unlock(&g), 0);
            CHECK_ERR(async_mutex_unlock(&a), EPERM);
            /* glibc's unlock left its counts off: begin again */
            CHECK_EQ(pthread_mutex_init(&g, NULL), 0);
        } else {
            SAME_ERRNUM_NOW(pthread_mutex_unlock(&g), async_mutex_unlock(&a)); /* EPERM */
        }
        SAME_ERRNUM_NOW(pthread_mutex_destroy(&g), async_mutex_destroy(&a));
        /* destroyed: a lock is EINVAL in both */
        SAME_ERRNUM_NOW(pthread_mutex_trylock(&g), async_mutex_trylock(&a));
        SAME_ERRNUM(pthread_mutex_lock(&g), async_mutex_lock(&a));
    }
}

Test(sync_glibc, mutex_held_by_the_caller) { both_contexts(mutex_own); }

/* Locks held by another thread: trylock, timed locks, unlock, cond waits. */
static void mutex_foreign(void) {
    for (size_t i = 0; i < NTYPES; i++) {
        int type = mutex_types[i];
        bool normal = type == PTHREAD_MUTEX_NORMAL || type == PTHREAD_MUTEX_DEFAULT;
        pthread_mutex_t g;
        async_mutex_t a;
        init_pair(&g, &a, type);
        holder_t h = {.gm = &g, .am = &a};
        holder_start(&h);
        SAME_ERRNUM_NOW(pthread_mutex_trylock(&g), async_mutex_trylock(&a));
        SAME_ERRNUM(pthread_mutex_timedlock(&g, &past), async_mutex_timedlock(&a, &past));
        SAME_ERRNUM(pthread_mutex_timedlock(&g, &before_epoch),
                    async_mutex_timedlock(&a, &before_epoch));
        for (size_t b = 0; b < NBAD; b++)
            SAME_ERRNUM(pthread_mutex_timedlock(&g, &bad_ts[b]),
                        async_mutex_timedlock(&a, &bad_ts[b]));
        SAME_ERRNUM_NOW(pthread_mutex_destroy(&g), async_mutex_destroy(&a));
        if (!normal) {
            pthread_cond_t gc;
            async_cond_t ac;
            SAME_ERRNUM_NOW(pthread_cond_init(&gc, NULL), async_cond_init(&ac, NULL));
            SAME_ERRNUM(pthread_cond_wait(&gc, &g), async_cond_wait(&ac, &a));
            SAME_ERRNUM(pthread_cond_timedwait(&gc, &g, &past),
                        async_cond_timedwait(&ac, &a, &past));
            SAME_ERRNUM_NOW(pthread_cond_destroy(&gc), async_cond_destroy(&ac));
        }
        /* the unlock: refused for owner-tracking types, done for a normal one
         * (sync.h: as glibc's default mutex) */
        SAME_ERRNUM_NOW(pthread_mutex_unlock(&g), async_mutex_unlock(&a));
        h.release = !normal;
        holder_stop(&h);
        SAME_ERRNUM_NOW(pthread_mutex_trylock(&g), async_mutex_trylock(&a));
        SAME_ERRNUM_NOW(pthread_mutex_unlock(&g), async_mutex_unlock(&a));
        SAME_ERRNUM_NOW(pthread_mutex_destroy(&g), async_mutex_destroy(&a));
    }
}

Test(sync_glibc, mutex_held_by_another_thread) { both_contexts(mutex_foreign); }

/* ---- condition variable ------------------------------------------------------------ */

static void cond_cases(void) {
    pthread_cond_t gc;
    async_cond_t ac;
    pthread_condattr_t at;
    pthread_condattr_init(&at);
    SAME_ERRNUM_NOW(pthread_cond_init(&gc, &at), async_cond_init(&ac, &at));
    SAME_ERRNUM_NOW(pthread_cond_destroy(&gc), async_cond_destroy(&ac));
    CHECK_EQ(pthread_condattr_setclock(&at, CLOCK_MONOTONIC), 0);
    SAME_ERRNUM_NOW(pthread_cond_init(&gc, &at), async_cond_init(&ac, &at));
    SAME_ERRNUM_NOW(pthread_cond_destroy(&gc), async_cond_destroy(&ac));
    /* process-shared: glibc takes it, sync.h documents ENOTSUP */
    CHECK_EQ(pthread_condattr_setpshared(&at, PTHREAD_PROCESS_SHARED), 0);
    CHECK_EQ(pthread_cond_init(&gc, &at), 0);
    CHECK_EQ(pthread_cond_destroy(&gc), 0);
    CHECK_ERR(async_cond_init(&ac, &at), ENOTSUP);
    pthread_condattr_destroy(&at);

    for (size_t i = 0; i < NTYPES; i++) {
        int type = mutex_types[i];
        bool normal = type == PTHREAD_MUTEX_NORMAL || type == PTHREAD_MUTEX_DEFAULT;
        pthread_mutex_t g;
        async_mutex_t a;
        init_pair(&g, &a, type);
        SAME_ERRNUM_NOW(pthread_cond_init(&gc, NULL), async_cond_init(&ac, NULL));
        SAME_ERRNUM_NOW(pthread_cond_signal(&gc), async_cond_signal(&ac));
        SAME_ERRNUM_NOW(pthread_cond_broadcast(&gc), async_cond_broadcast(&ac));
        if (!normal) {
            /* not held: an owner-tracking mutex refuses, before or after the
             * abstime is looked at */
            SAME_ERRNUM(pthread_cond_wait(&gc, &g), async_cond_wait(&ac, &a));
            SAME_ERRNUM(pthread_cond_timedwait(&gc, &g, &past),
                        async_cond_timedwait(&ac, &a, &past));
            for (size_t b = 0; b < NBAD; b++)
                SAME_ERRNUM(pthread_cond_timedwait(&gc, &g, &bad_ts[b]),
                            async_cond_timedwait(&ac, &a, &bad_ts[b]));
        } else {
            /* not held, a normal mutex: glibc unlocks it anyway, times out and
             * takes it; sync.h documents EPERM, the mutex untouched */
            CHECK_EQ(pthread_cond_timedwait(&gc, &g, &past), ETIMEDOUT);
            CHECK_EQ(pthread_mutex_unlock(&g), 0);
            /* its unlock of a free mutex left its user count off: begin again */
            CHECK_EQ(pthread_mutex_init(&g, NULL), 0);
            CHECK_ERR(async_await(async_cond_timedwait(&ac, &a, &past)), EPERM);
            CHECK_EQ(async_mutex_trylock(&a), 0);
            CHECK_EQ(async_mutex_unlock(&a), 0);
        }
        /* held: a past abstime times out, a bad one is EINVAL; either way
         * the mutex is held after */
        SAME_ERRNUM(pthread_mutex_lock(&g), async_mutex_lock(&a));
        SAME_ERRNUM(pthread_cond_timedwait(&gc, &g, &past), async_cond_timedwait(&ac, &a, &past));
        SAME_ERRNUM(pthread_cond_timedwait(&gc, &g, &before_epoch),
                    async_cond_timedwait(&ac, &a, &before_epoch));
        for (size_t b = 0; b < NBAD; b++)
            SAME_ERRNUM(pthread_cond_timedwait(&gc, &g, &bad_ts[b]),
                        async_cond_timedwait(&ac, &a, &bad_ts[b]));
        SAME_ERRNUM_NOW(pthread_mutex_trylock(&g), async_mutex_trylock(&a));
        if (type == PTHREAD_MUTEX_RECURSIVE)
            SAME_ERRNUM_NOW(pthread_mutex_unlock(&g), async_mutex_unlock(&a));
        SAME_ERRNUM_NOW(pthread_mutex_unlock(&g), async_mutex_unlock(&a));
        SAME_ERRNUM_NOW(pthread_cond_destroy(&gc), async_cond_destroy(&ac));
        SAME_ERRNUM_NOW(pthread_mutex_destroy(&g), async_mutex_destroy(&a));
    }
    /* NULL: glibc would crash; sync.h documents EINVAL */
    async_mutex_t a = ASYNC_MUTEX_INITIALIZER;
    CHECK_ERR(async_cond_init(NULL, NULL), EINVAL);
    CHECK_ERR(async_await(async_cond_wait(NULL, &a)), EINVAL);
    CHECK_ERR(async_await(async_cond_wait(&ac, NULL)), EINVAL);
    CHECK_ERR(async_await(async_cond_timedwait(NULL, &a, &past)), EINVAL);
    CHECK_ERR(async_cond_signal(NULL), EINVAL);
    CHECK_ERR(async_cond_broadcast(NULL), EINVAL);
    CHECK_ERR(async_cond_destroy(NULL), EINVAL);
    /* and a NULL abstime, with the mutex held */
    CHECK_EQ(async_cond_init(&ac, NULL), 0);
    CHECK_EQ(async_await(async_mutex_lock(&a)), 0);
    CHECK_ERR(async_await(async_cond_timedwait(&ac, &a, NULL)), EINVAL);
    CHECK_EQ(async_mutex_unlock(&a), 0);
    CHECK_EQ(async_cond_destroy(&ac), 0);
}

Test(sync_glibc, cond) { both_contexts(cond_cases); }

/* ---- rwlock ------------------------------------------------------------------------ */

static void rwlock_cases(void) {
    pthread_rwlock_t g;
    async_rwlock_t a;
    pthread_rwlockattr_t at;
    pthread_rwlockattr_init(&at);
    SAME_ERRNUM_NOW(pthread_rwlock_init(&g, &at), async_rwlock_init(&a, &at));
    /* free: tries and timed locks with past and bad abstimes */
    SAME_ERRNUM_NOW(pthread_rwlock_tryrdlock(&g), async_rwlock_tryrdlock(&a));
    SAME_ERRNUM_NOW(pthread_rwlock_unlock(&g), async_rwlock_unlock(&a));
    SAME_ERRNUM_NOW(pthread_rwlock_trywrlock(&g), async_rwlock_trywrlock(&a));
    SAME_ERRNUM_NOW(pthread_rwlock_unlock(&g), async_rwlock_unlock(&a));
    SAME_ERRNUM(pthread_rwlock_timedrdlock(&g, &past), async_rwlock_timedrdlock(&a, &past));
    SAME_ERRNUM_NOW(pthread_rwlock_unlock(&g), async_rwlock_unlock(&a));
    SAME_ERRNUM(pthread_rwlock_timedwrlock(&g, &past), async_rwlock_timedwrlock(&a, &past));
    SAME_ERRNUM_NOW(pthread_rwlock_unlock(&g), async_rwlock_unlock(&a));
    for (size_t b = 0; b < NBAD; b++) {
        /* glibc's answer is an error or a lock: unlock what was taken */
        int gr = pthread_rwlock_timedrdlock(&g, &bad_ts[b]);
        SAME_ERRNUM(gr, async_rwlock_timedrdlock(&a, &bad_ts[b]));
        if (gr == 0) SAME_ERRNUM_NOW(pthread_rwlock_unlock(&g), async_rwlock_unlock(&a));
        gr = pthread_rwlock_timedwrlock(&g, &bad_ts[b]);
        SAME_ERRNUM(gr, async_rwlock_timedwrlock(&a, &bad_ts[b]));
        if (gr == 0) SAME_ERRNUM_NOW(pthread_rwlock_unlock(&g), async_rwlock_unlock(&a));
    }

    /* read-held by the caller, twice */
    SAME_ERRNUM(pthread_rwlock_rdlock(&g), async_rwlock_rdlock(&a));
    SAME_ERRNUM_NOW(pthread_rwlock_tryrdlock(&g), async_rwlock_tryrdlock(&a));
    SAME_ERRNUM_NOW(pthread_rwlock_trywrlock(&g), async_rwlock_trywrlock(&a));
    SAME_ERRNUM(pthread_rwlock_timedwrlock(&g, &past), async_rwlock_timedwrlock(&a, &past));
    SAME_ERRNUM(pthread_rwlock_timedwrlock(&g, &before_epoch),
                async_rwlock_timedwrlock(&a, &before_epoch));
    for (size_t b = 0; b < NBAD; b++)
        SAME_ERRNUM(pthread_rwlock_timedwrlock(&g, &bad_ts[b]),
                    async_rwlock_timedwrlock(&a, &bad_ts[b]));
    SAME_ERRNUM(pthread_rwlock_timedrdlock(&g, &past), async_rwlock_timedrdlock(&a, &past));
    SAME_ERRNUM_NOW(pthread_rwlock_unlock(&g), async_rwlock_unlock(&a));
    SAME_ERRNUM_NOW(pthread_rwlock_unlock(&g), async_rwlock_unlock(&a));
    SAME_ERRNUM_NOW(pthread_rwlock_unlock(&g), async_rwlock_unlock(&a));
    /* an unlock of a free lock: glibc's would corrupt its reader count;
     * sync.h documents EPERM */
    CHECK_ERR(async_rwlock_unlock(&a), EPERM);

    /* write-held by the caller */
    SAME_ERRNUM(pthread_rwlock_wrlock(&g), async_rwlock_wrlock(&a));
    SAME_ERRNUM(pthread_rwlock_rdlock(&g), async_rwlock_rdlock(&a));
    SAME_ERRNUM(pthread_rwlock_wrlock(&g), async_rwlock_wrlock(&a));
    SAME_ERRNUM_NOW(pthread_rwlock_tryrdlock(&g), async_rwlock_tryrdlock(&a));
    SAME_ERRNUM_NOW(pthread_rwlock_trywrlock(&g), async_rwlock_trywrlock(&a));
    SAME_ERRNUM(pthread_rwlock_timedrdlock(&g, &past), async_rwlock_timedrdlock(&a, &past));
    SAME_ERRNUM(pthread_rwlock_timedwrlock(&g, &past), async_rwlock_timedwrlock(&a, &past));
    for (size_t b = 0; b < NBAD; b++) {
        SAME_ERRNUM(pthread_rwlock_timedrdlock(&g, &bad_ts[b]),
                    async_rwlock_timedrdlock(&a, &bad_ts[b]));
        SAME_ERRNUM(pthread_rwlock_timedwrlock(&g, &bad_ts[b]),
                    async_rwlock_timedwrlock(&a, &bad_ts[b]));
    }
    SAME_ERRNUM_NOW(pthread_rwlock_unlock(&g), async_rwlock_unlock(&a));

    /* write-held by another thread */
    holder_t h = {.grw = &g, .arw = &a};
    holder_start(&h);
    SAME_ERRNUM_NOW(pthread_rwlock_tryrdlock(&g), async_rwlock_tryrdlock(&a));
    SAME_ERRNUM_NOW(pthread_rwlock_trywrlock(&g), async_rwlock_trywrlock(&a));
    SAME_ERRNUM(pthread_rwlock_timedrdlock(&g, &past), async_rwlock_timedrdlock(&a, &past));
    SAME_ERRNUM(pthread_rwlock_timedwrlock(&g, &before_epoch),
                async_rwlock_timedwrlock(&a, &before_epoch));
    for (size_t b = 0; b < NBAD; b++) {
        SAME_ERRNUM(pthread_rwlock_timedrdlock(&g, &bad_ts[b]),
                    async_rwlock_timedrdlock(&a, &bad_ts[b]));
        SAME_ERRNUM(pthread_rwlock_timedwrlock(&g, &bad_ts[b]),
                    async_rwlock_timedwrlock(&a, &bad_ts[b]));
    }
    /* its unlock by us: glibc's would take it for a reader's; sync.h
     * documents EPERM */
    CHECK_ERR(async_rwlock_unlock(&a), EPERM);
    holder_stop(&h);

    /* destroy: glibc's never looks, sync.h documents EBUSY while held */
    SAME_ERRNUM(pthread_rwlock_rdlock(&g), async_rwlock_rdlock(&a));
    CHECK_EQ(pthread_rwlock_destroy(&g), 0);
    CHECK_ERR(async_rwlock_destroy(&a), EBUSY);
    CHECK_EQ(pthread_rwlock_init(&g, NULL), 0);
    CHECK_EQ(async_rwlock_unlock(&a), 0);
    SAME_ERRNUM_NOW(pthread_rwlock_destroy(&g), async_rwlock_destroy(&a));

    /* process-shared: glibc takes it, sync.h documents ENOTSUP */
    CHECK_EQ(pthread_rwlockattr_setpshared(&at, PTHREAD_PROCESS_SHARED), 0);
    CHECK_EQ(pthread_rwlock_init(&g, &at), 0);
    CHECK_EQ(pthread_rwlock_destroy(&g), 0);
    CHECK_ERR(async_rwlock_init(&a, &at), ENOTSUP);
    pthread_rwlockattr_destroy(&at);
    /* NULL: glibc would crash; sync.h documents EINVAL */
    CHECK_ERR(async_rwlock_init(NULL, NULL), EINVAL);
    CHECK_ERR(async_await(async_rwlock_rdlock(NULL)), EINVAL);
    CHECK_ERR(async_await(async_rwlock_wrlock(NULL)), EINVAL);
    CHECK_ERR(async_await(async_rwlock_timedrdlock(NULL, &past)), EINVAL);
    CHECK_ERR(async_await(async_rwlock_timedwrlock(NULL, &past)), EINVAL);
    CHECK_ERR(async_rwlock_tryrdlock(NULL), EINVAL);
    CHECK_ERR(async_rwlock_trywrlock(NULL), EINVAL);
    CHECK_ERR(async_rwlock_unlock(NULL), EINVAL);
    CHECK_ERR(async_rwlock_destroy(NULL), EINVAL);
}

Test(sync_glibc, rwlock) { both_contexts(rwlock_cases); }

/* ---- semaphore ----------------------------------------------------------------------- */

static void sem_same_value(sem_t *g, async_sem_t *a, int line) {
    int gv = -7, av = -7;
    int gr = sem_getvalue(g, &gv), ar = async_sem_getvalue(a, &av);
    if (gr != ar || gv != av)
        check_fail(__FILE__, line, "[%s] sem_getvalue: glibc %d (%d), async %d (%d)", compare_where,
                   gr, gv, ar, av);
}

#define SAME_VALUE(g, a) sem_same_value(g, a, __LINE__)

static void sem_cases(void) {
    sem_t g;
    async_sem_t a;
    static const unsigned values[] = {
        0, 1, SEM_VALUE_MAX - 1, SEM_VALUE_MAX, (unsigned)SEM_VALUE_MAX + 1, UINT_MAX};
    CHECK_EQ(SEM_VALUE_MAX, ASYNC_SEM_VALUE_MAX);
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        int gr;
        SAME_NOW(gr = sem_init(&g, 0, values[i]), async_sem_init(&a, 0, values[i]));
        if (gr != 0) continue;
        SAME_VALUE(&g, &a);
        /* a post: EOVERFLOW at the maximum */
        SAME_NOW(sem_post(&g), async_sem_post(&a));
        SAME_VALUE(&g, &a);
        SAME_NOW(sem_trywait(&g), async_sem_trywait(&a));
        SAME_VALUE(&g, &a);
        /* a bad abstime is EINVAL even when a unit is free */
        for (size_t b = 0; b < NBAD; b++) {
            SAME(sem_timedwait(&g, &bad_ts[b]), async_sem_timedwait(&a, &bad_ts[b]));
            SAME_VALUE(&g, &a);
        }
        SAME(sem_timedwait(&g, &past), async_sem_timedwait(&a, &past));
        SAME_VALUE(&g, &a);
        SAME_NOW(sem_trywait(&g), async_sem_trywait(&a));
        SAME_VALUE(&g, &a);
        SAME(sem_timedwait(&g, &before_epoch), async_sem_timedwait(&a, &before_epoch));
        SAME_VALUE(&g, &a);
        SAME_NOW(sem_destroy(&g), async_sem_destroy(&a));
    }
    /* at 0: trywait is EAGAIN, timed waits time out or are EINVAL */
    SAME_NOW(sem_init(&g, 0, 0), async_sem_init(&a, 0, 0));
    SAME_NOW(sem_trywait(&g), async_sem_trywait(&a));
    SAME(sem_timedwait(&g, &past), async_sem_timedwait(&a, &past));
    SAME(sem_timedwait(&g, &before_epoch), async_sem_timedwait(&a, &before_epoch));
    for (size_t b = 0; b < NBAD; b++)
        SAME(sem_timedwait(&g, &bad_ts[b]), async_sem_timedwait(&a, &bad_ts[b]));
    SAME_NOW(sem_post(&g), async_sem_post(&a));
    SAME(sem_wait(&g), async_sem_wait(&a));
    SAME_VALUE(&g, &a);
    SAME_NOW(sem_destroy(&g), async_sem_destroy(&a));
    /* process-shared: glibc takes it, sync.h documents ENOSYS */
    CHECK_EQ(sem_init(&g, 1, 0), 0);
    CHECK_EQ(sem_destroy(&g), 0);
    CHECK_ERR(async_sem_init(&a, 1, 0), ENOSYS);
    /* NULL: glibc would crash; sync.h documents EINVAL */
    CHECK_ERR(async_sem_init(NULL, 0, 0), EINVAL);
    CHECK_ERR(async_await(async_sem_wait(NULL)), EINVAL);
    CHECK_ERR(async_await(async_sem_timedwait(NULL, &past)), EINVAL);
    CHECK_ERR(async_sem_trywait(NULL), EINVAL);
    CHECK_ERR(async_sem_post(NULL), EINVAL);
    CHECK_ERR(async_sem_getvalue(NULL, &(int){0}), EINVAL);
    CHECK_ERR(async_sem_destroy(NULL), EINVAL);
    CHECK_EQ(async_sem_init(&a, 0, 0), 0);
    CHECK_ERR(async_sem_getvalue(&a, NULL), EINVAL);
    CHECK_ERR(async_await(async_sem_timedwait(&a, NULL)), EINVAL);
    CHECK_EQ(async_sem_destroy(&a), 0);
}

Test(sync_glibc, sem) { both_contexts(sem_cases); }

/* ---- barrier and once ------------------------------------------------------------------ */

static int once_runs;
static void once_routine(void) { once_runs++; }

static void barrier_once_cases(void) {
    pthread_barrier_t g;
    async_barrier_t a;
    static const unsigned counts[] = {
        0, 1, 2, INT_MAX - 1, INT_MAX, UINT_MAX / 2, UINT_MAX / 2 + 1, UINT_MAX};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        int gr = pthread_barrier_init(&g, NULL, counts[i]);
        SAME_ERRNUM_NOW(gr, async_barrier_init(&a, NULL, counts[i]));
        if (gr == 0) SAME_ERRNUM_NOW(pthread_barrier_destroy(&g), async_barrier_destroy(&a));
    }
    /* a round of one: its waiter is the serial one; pthread's value for it
     * is -1, sync.h's ASYNC_BARRIER_SERIAL_THREAD (1) */
    SAME_ERRNUM_NOW(pthread_barrier_init(&g, NULL, 1), async_barrier_init(&a, NULL, 1));
    for (int round = 0; round < 2; round++) {
        CHECK_EQ(pthread_barrier_wait(&g), PTHREAD_BARRIER_SERIAL_THREAD);
        CHECK_EQ(async_await(async_barrier_wait(&a)), ASYNC_BARRIER_SERIAL_THREAD);
    }
    SAME_ERRNUM_NOW(pthread_barrier_destroy(&g), async_barrier_destroy(&a));
    /* process-shared: glibc takes it, sync.h documents ENOTSUP */
    pthread_barrierattr_t at;
    pthread_barrierattr_init(&at);
    SAME_ERRNUM_NOW(pthread_barrier_init(&g, &at, 2), async_barrier_init(&a, &at, 2));
    SAME_ERRNUM_NOW(pthread_barrier_destroy(&g), async_barrier_destroy(&a));
    CHECK_EQ(pthread_barrierattr_setpshared(&at, PTHREAD_PROCESS_SHARED), 0);
    CHECK_EQ(pthread_barrier_init(&g, &at, 2), 0);
    CHECK_EQ(pthread_barrier_destroy(&g), 0);
    CHECK_ERR(async_barrier_init(&a, &at, 2), ENOTSUP);
    pthread_barrierattr_destroy(&at);
    /* NULL: glibc would crash; sync.h documents EINVAL */
    CHECK_ERR(async_barrier_init(NULL, NULL, 1), EINVAL);
    CHECK_ERR(async_await(async_barrier_wait(NULL)), EINVAL);
    CHECK_ERR(async_barrier_destroy(NULL), EINVAL);

    /* once: the routine runs at the first call only, and every call says 0 */
    pthread_once_t go = PTHREAD_ONCE_INIT;
    async_once_t ao = ASYNC_ONCE_INIT;
    once_runs = 0;
    for (int k = 0; k < 3; k++) {
        SAME_ERRNUM(pthread_once(&go, once_routine), async_once(&ao, once_routine));
        CHECK_EQ(once_runs, 2);
    }
    CHECK_ERR(async_await(async_once(NULL, once_routine)), EINVAL);
    CHECK_ERR(async_await(async_once(&ao, NULL)), EINVAL);
}

Test(sync_glibc, barrier_and_once) { both_contexts(barrier_once_cases); }

/* ---- the *clock* calls ------------------------------------------------------------------ */

/* pthread_mutex_clocklock, pthread_rwlock_clock*lock, pthread_cond_clockwait
 * and sem_clockwait: each clock id (the two taken, others refused) with each
 * abstime (past, bad, and 20 ms ahead on that clock), on a free object and on
 * one that must wait (held by another thread, a zero semaphore). */
static void clock_cases(void) {
    const clockid_t clocks[] = {
        CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_PROCESS_CPUTIME_ID, 12, -1};
    for (size_t c = 0; c < sizeof clocks / sizeof *clocks; c++) {
        clockid_t clk = clocks[c];
        struct timespec soon = {0, 0};
        if (clk == CLOCK_REALTIME || clk == CLOCK_MONOTONIC) {
            CHECK_EQ(clock_gettime(clk, &soon), 0);
            soon.tv_nsec += 20000000;
            if (soon.tv_nsec > 999999999L) {
                soon.tv_sec++;
                soon.tv_nsec -= 1000000000L;
            }
        }
        struct timespec ts[NBAD + 3];
        ts[0] = past;
        ts[1] = before_epoch;
        ts[2] = soon;
        for (size_t b = 0; b < NBAD; b++) ts[3 + b] = bad_ts[b];
        for (size_t t = 0; t < NBAD + 3; t++) {
            const struct timespec *at = &ts[t];
            pthread_mutex_t gm = PTHREAD_MUTEX_INITIALIZER;
            async_mutex_t am;
            CHECK_EQ(async_mutex_init(&am, NULL), 0);
            /* unlocked only when taken: glibc's unlock of a free lock corrupts it */
            int gr;
            SAME_ERRNUM((gr = pthread_mutex_clocklock(&gm, clk, at)),
                        async_mutex_clocklock(&am, clk, at));
            if (gr == 0) SAME_ERRNUM_NOW(pthread_mutex_unlock(&gm), async_mutex_unlock(&am));
            pthread_rwlock_t grw = PTHREAD_RWLOCK_INITIALIZER;
            async_rwlock_t arw;
            CHECK_EQ(async_rwlock_init(&arw, NULL), 0);
            SAME_ERRNUM((gr = pthread_rwlock_clockrdlock(&grw, clk, at)),
                        async_rwlock_clockrdlock(&arw, clk, at));
            if (gr == 0) SAME_ERRNUM_NOW(pthread_rwlock_unlock(&grw), async_rwlock_unlock(&arw));
            SAME_ERRNUM((gr = pthread_rwlock_clockwrlock(&grw, clk, at)),
                        async_rwlock_clockwrlock(&arw, clk, at));
            if (gr == 0) SAME_ERRNUM_NOW(pthread_rwlock_unlock(&grw), async_rwlock_unlock(&arw));

            /* held by another thread: these wait until `at` */
            holder_t h = {.gm = &gm, .am = &am, .grw = &grw, .arw = &arw, .release = true};
            holder_start(&h);
            SAME_ERRNUM(pthread_mutex_clocklock(&gm, clk, at), async_mutex_clocklock(&am, clk, at));
            SAME_ERRNUM(pthread_rwlock_clockrdlock(&grw, clk, at),
                        async_rwlock_clockrdlock(&arw, clk, at));
            SAME_ERRNUM(pthread_rwlock_clockwrlock(&grw, clk, at),
                        async_rwlock_clockwrlock(&arw, clk, at));
            /* each wait lasts until `clock` reads the time, not sooner */
            async_sem_t zero;
            async_mutex_t own;
            async_cond_t never;
            CHECK_EQ(async_sem_init(&zero, 0, 0), 0);
            CHECK_EQ(async_mutex_init(&own, NULL), 0);
            CHECK_EQ(async_cond_init(&never, NULL), 0);
            CHECK_EQ(async_await(async_mutex_lock(&own)), 0);
            for (int call = 0; call < 5 && t == 2 && soon.tv_sec; call++) {
                struct timespec again, end;
                CHECK_EQ(clock_gettime(clk, &again), 0);
                again.tv_nsec += 50000000;
                if (again.tv_nsec > 999999999L) {
                    again.tv_sec++;
                    again.tv_nsec -= 1000000000L;
                }
                async_future_t *f = call == 0   ? async_mutex_clocklock(&am, clk, &again)
                                    : call == 1 ? async_rwlock_clockrdlock(&arw, clk, &again)
                                    : call == 2 ? async_rwlock_clockwrlock(&arw, clk, &again)
                                    : call == 3 ? async_sem_clockwait(&zero, clk, &again)
                                                : async_cond_clockwait(&never, &own, clk, &again);
                CHECK_ERR(async_await(f), ETIMEDOUT);
                CHECK_EQ(clock_gettime(clk, &end), 0);
                CHECK(end.tv_sec > again.tv_sec ||
                      (end.tv_sec == again.tv_sec && end.tv_nsec >= again.tv_nsec));
            }
            CHECK_EQ(async_mutex_unlock(&own), 0);
            CHECK_EQ(async_cond_destroy(&never), 0);
            CHECK_EQ(async_mutex_destroy(&own), 0);
            CHECK_EQ(async_sem_destroy(&zero), 0);
            holder_stop(&h);

            sem_t gs;
            async_sem_t as;
            for (unsigned v = 0; v < 2; v++) {
                CHECK_EQ(sem_init(&gs, 0, v), 0);
                CHECK_EQ(async_sem_init(&as, 0, v), 0);
                SAME(sem_clockwait(&gs, clk, at), async_sem_clockwait(&as, clk, at));
                sem_destroy(&gs);
                async_sem_destroy(&as);
            }

            pthread_cond_t gc = PTHREAD_COND_INITIALIZER;
            async_cond_t ac;
            CHECK_EQ(async_cond_init(&ac, NULL), 0);
            CHECK_EQ(pthread_mutex_lock(&gm), 0);
            CHECK_EQ(async_await(async_mutex_lock(&am)), 0);
            SAME_ERRNUM(pthread_cond_clockwait(&gc, &gm, clk, at),
                        async_cond_clockwait(&ac, &am, clk, at));
            SAME_ERRNUM_NOW(pthread_mutex_unlock(&gm), async_mutex_unlock(&am));
            pthread_cond_destroy(&gc);
            async_cond_destroy(&ac);
            pthread_mutex_destroy(&gm);
            async_mutex_destroy(&am);
            pthread_rwlock_destroy(&grw);
            async_rwlock_destroy(&arw);
        }
    }
}

Test(sync_glibc, clock_calls) { both_contexts(clock_cases); }

/* ---- sleeps ------------------------------------------------------------------------------ */

static void sleep_cases(void) {
    SAME(sleep(0), async_sleep(0));
    SAME(usleep(0), async_usleep(0));
    SAME(usleep(1), async_usleep(1));
    SAME(usleep(1000), async_usleep(1000));
    static const struct timespec reqs[] = {
        {0, 0},  {0, 1},  {0, 1000000}, {0, -1}, {0, 1000000000L}, {0, LONG_MAX},
        {-1, 0}, {-1, 1}, {-1, -1},     {1, -1}, {LONG_MIN, 0},    {0, LONG_MIN}};
    for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
        /* rem is written only when a sleep is cut short: a completed or refused
         * one leaves it as it was */
        struct timespec grem = {77, 77}, arem = {77, 77};
        SAME(nanosleep(&reqs[i], &grem), async_nanosleep(&reqs[i], &arem));
        CHECK(grem.tv_sec == arem.tv_sec && grem.tv_nsec == arem.tv_nsec);
        SAME(nanosleep(&reqs[i], NULL), async_nanosleep(&reqs[i], NULL));
    }
    /* the request itself as rem */
    struct timespec greq = {0, 1000}, areq = {0, 1000};
    SAME(nanosleep(&greq, &greq), async_nanosleep(&areq, &areq));
    CHECK(greq.tv_sec == areq.tv_sec && greq.tv_nsec == areq.tv_nsec);
    /* NULL req: the kernel's EFAULT */
    VALGRIND_DISABLE_ERROR_REPORTING;
    SAME(glibc_nanosleep_null(), async_nanosleep(NULL, NULL));
    VALGRIND_ENABLE_ERROR_REPORTING;
}

/* clock_nanosleep on every kind of clock id (those that sleep, those the
 * kernel refuses, the caller's own thread clock, another process's clock,
 * unknown ids), with the inputs that answer at once: a time long past, a zero
 * duration, bad times, NULL. A short relative sleep too where the clock moves
 * by itself. rem must be left alone by all of them. */
static void clock_sleep_cases(void) {
    clockid_t own_thread, own_process, init_process;
    CHECK_EQ(pthread_getcpuclockid(pthread_self(), &own_thread), 0); /* a task's: its worker's */
    CHECK_EQ(clock_getcpuclockid(0, &own_process), 0);
    CHECK_EQ(clock_getcpuclockid(1, &init_process), 0);
    const struct {
        clockid_t id;
        bool moves; /* by itself, so a short relative sleep ends */
    } clocks[] = {{CLOCK_REALTIME, true},
                  {CLOCK_MONOTONIC, true},
                  {CLOCK_BOOTTIME, true},
                  {CLOCK_TAI, true},
                  {CLOCK_PROCESS_CPUTIME_ID, false},
                  {CLOCK_THREAD_CPUTIME_ID, false},
                  {CLOCK_MONOTONIC_RAW, false},
                  {CLOCK_REALTIME_COARSE, false},
                  {CLOCK_MONOTONIC_COARSE, false},
                  {CLOCK_REALTIME_ALARM, false},
                  {CLOCK_BOOTTIME_ALARM, false},
                  {own_thread, false},
                  {own_process, false},
                  {init_process, false},
                  {12, false},
                  {-1, false},
                  {INT_MAX, false},
                  {INT_MIN, false}};
    static const struct timespec bad[] = {{0, -1}, {0, 1000000000L}, {-1, 0}, {LONG_MIN, 0}};
    static const struct timespec zero = {0, 0}, one_us = {0, 1000};
    const int flags[] = {0, TIMER_ABSTIME, TIMER_ABSTIME | 2, 2, -1};
    for (size_t c = 0; c < sizeof clocks / sizeof *clocks; c++) {
        clockid_t id = clocks[c].id;
        for (size_t f = 0; f < sizeof flags / sizeof *flags; f++) {
            int fl = flags[f];
            struct timespec grem = {77, 77}, arem = {77, 77};
            /* zero: the epoch when absolute, nothing when relative */
            SAME_ERRNUM(clock_nanosleep(id, fl, &zero, &grem),
                        async_clock_nanosleep(id, fl, &zero, &arem));
            for (size_t b = 0; b < sizeof bad / sizeof *bad; b++)
                SAME_ERRNUM(clock_nanosleep(id, fl, &bad[b], &grem),
                            async_clock_nanosleep(id, fl, &bad[b], &arem));
            if (clocks[c].moves)
                SAME_ERRNUM(clock_nanosleep(id, fl, &one_us, &grem),
                            async_clock_nanosleep(id, fl, &one_us, &arem));
            CHECK(grem.tv_sec == 77 && grem.tv_nsec == 77);
            CHECK(arem.tv_sec == 77 && arem.tv_nsec == 77);
            VALGRIND_DISABLE_ERROR_REPORTING;
            SAME_ERRNUM(glibc_clock_nanosleep_null(id, fl),
                        async_clock_nanosleep(id, fl, NULL, NULL));
            VALGRIND_ENABLE_ERROR_REPORTING;
        }
    }
}

Test(sync_glibc, clock_nanosleep) { both_contexts(clock_sleep_cases); }

Test(sync_glibc, sleeps) { both_contexts(sleep_cases); }
