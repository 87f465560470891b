/* Tests of async_cond_* and async_rwlock_*: signals and broadcasts (the mutex
 * is held again whatever the result), timeouts on both clocks, cancellation,
 * readers preferred but a writer never starved, bad input, and contention
 * across workers. */
#include "helpers.h"

TestSuite(cond, .timeout = 30);
TestSuite(rwlock, .timeout = 30);

static struct timespec in_ms_on(clockid_t clock, long ms) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    } else if (ts.tv_nsec < 0) {
        ts.tv_sec--;
        ts.tv_nsec += 1000000000L;
    }
    return ts;
}

static int held(async_mutex_t *m) {
    if (async_mutex_trylock(m) == 0) {
        async_mutex_unlock(m);
        return 0;
    }
    return errno == EBUSY;
}

Test(cond, bad_input, .init = rt_start) {
    async_cond_t c = ASYNC_COND_INITIALIZER;
    async_mutex_t m = ASYNC_MUTEX_INITIALIZER;
    ASSERT_ERR(async_cond_init(NULL, NULL), EINVAL);
    ASSERT_ERR(async_await(async_cond_wait(NULL, &m)), EINVAL);
    ASSERT_ERR(async_await(async_cond_wait(&c, NULL)), EINVAL);
    ASSERT_ERR(async_await(async_cond_timedwait(NULL, &m, NULL)), EINVAL);
    ASSERT_ERR(async_cond_signal(NULL), EINVAL);
    ASSERT_ERR(async_cond_broadcast(NULL), EINVAL);
    ASSERT_ERR(async_cond_destroy(NULL), EINVAL);
    /* waiting needs the mutex held */
    ASSERT_ERR(async_await(async_cond_wait(&c, &m)), EPERM);
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    struct timespec bad = {0, 1000000000L};
    ASSERT_ERR(async_await(async_cond_timedwait(&c, &m, &bad)), EINVAL);
    ASSERT_ERR(async_await(async_cond_timedwait(&c, &m, NULL)), EINVAL);
    cr_assert(held(&m), "an argument error leaves the mutex held");
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    ASSERT_ERR(async_cond_init(&c, &a), ENOTSUP);
    pthread_condattr_destroy(&a);
    ASSERT_VAL(async_cond_destroy(&c), 0);
    ASSERT_ERR(async_await(async_cond_wait(&c, &m)), EINVAL);
    ASSERT_ERR(async_cond_destroy(&c), EINVAL);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    rt_stop();
}

/* From one thread: the wait future settles only once the mutex is back. */
Test(cond, signal_then_mutex, .init = rt_start) {
    async_cond_t c;
    async_mutex_t m = ASYNC_MUTEX_INITIALIZER;
    ASSERT_VAL(async_cond_init(&c, NULL), 0);
    ASSERT_VAL(async_cond_signal(&c), 0); /* nobody waits: nothing happens */
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    async_future_t *w1 = async_cond_wait(&c, &m);
    cr_assert(!held(&m), "waiting released the mutex");
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    async_future_t *w2 = async_cond_wait(&c, &m);
    ASSERT_ERR(async_cond_destroy(&c), EBUSY);
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    ASSERT_VAL(async_cond_signal(&c), 0);
    cr_assert(!async_future_settled(w1), "signalled, but the mutex is still ours");
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    cr_assert(async_future_settled(w1), "the unlock handed the mutex to the waiter");
    cr_assert(!async_future_settled(w2));
    ASSERT_VAL(async_await(w1), 0);
    cr_assert(held(&m));
    ASSERT_VAL(async_cond_broadcast(&c), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_await(w2), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_VAL(async_cond_destroy(&c), 0);
    rt_stop();
}

Test(cond, timeout_and_cancel_retake_the_mutex, .init = rt_start) {
    async_mutex_t m = ASYNC_MUTEX_INITIALIZER;
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    async_cond_t c;
    ASSERT_VAL(async_cond_init(&c, &a), 0);
    pthread_condattr_destroy(&a);
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    double t0 = now_ms();
    struct timespec ts = in_ms_on(CLOCK_MONOTONIC, 40);
    ASSERT_ERR(async_await(async_cond_timedwait(&c, &m, &ts)), ETIMEDOUT);
    double dt = now_ms() - t0;
    cr_assert(dt >= 35 && dt < 2000, "timed out after %.1f ms", dt);
    cr_assert(held(&m), "ETIMEDOUT comes with the mutex held");
    ts = in_ms_on(CLOCK_MONOTONIC, -1000);
    ASSERT_ERR(async_await(async_cond_timedwait(&c, &m, &ts)), ETIMEDOUT);
    cr_assert(held(&m));
    /* cancelled while another holds the mutex: settles only once it is back */
    async_future_t *w = async_cond_wait(&c, &m);
    ASSERT_VAL(async_await(async_mutex_lock(&m)), 0);
    async_cancel(w);
    cr_assert(!async_future_settled(w), "a cancelled wait still retakes the mutex first");
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    ASSERT_ERR(async_await(w), ECANCELED);
    cr_assert(held(&m));
    /* signalled, then cancelled: the signal wins */
    w = async_cond_wait(&c, &m);
    ASSERT_VAL(async_cond_signal(&c), 0);
    async_cancel(w);
    ASSERT_VAL(async_await(w), 0);
    /* the realtime clock too */
    async_cond_t rc = ASYNC_COND_INITIALIZER;
    ts = in_ms_on(CLOCK_REALTIME, 20);
    ASSERT_ERR(async_await(async_cond_timedwait(&rc, &m, &ts)), ETIMEDOUT);
    ts = in_ms_on(CLOCK_REALTIME, 5000);
    w = async_cond_timedwait(&rc, &m, &ts);
    ASSERT_VAL(async_cond_signal(&rc), 0);
    ASSERT_VAL(async_await(w), 0);
    ASSERT_VAL(async_mutex_unlock(&m), 0);
    rt_stop();
}

/* A queue of work items guarded by a mutex and two conditions, used from tasks
 * on every worker and a plain thread. */
struct queue {
    async_mutex_t m;
    async_cond_t not_empty, not_full;
    int items, produced, consumed, total;
};

static intptr_t produce(void *arg) {
    struct queue *q = arg;
    for (;;) {
        if (async_await(async_mutex_lock(&q->m)) != 0) return -1;
        while (q->items == 4 && q->produced < q->total)
            if (async_await(async_cond_wait(&q->not_full, &q->m)) != 0) return -1;
        if (q->produced == q->total) {
            async_mutex_unlock(&q->m);
            return 0;
        }
        q->items++;
        q->produced++;
        async_cond_signal(&q->not_empty);
        async_mutex_unlock(&q->m);
    }
}

static intptr_t consume(void *arg) {
    struct queue *q = arg;
    for (;;) {
        if (async_await(async_mutex_lock(&q->m)) != 0) return -1;
        while (q->items == 0 && q->consumed < q->total)
            if (async_await(async_cond_wait(&q->not_empty, &q->m)) != 0) return -1;
        if (q->consumed == q->total) {
            async_cond_broadcast(&q->not_empty);
            async_cond_broadcast(&q->not_full);
            async_mutex_unlock(&q->m);
            return 0;
        }
        q->items--;
        q->consumed++;
        async_cond_signal(&q->not_full);
        async_mutex_unlock(&q->m);
    }
}

static void *consume_thread(void *arg) { return (void *)consume(arg); }

Test(cond, bounded_queue_across_workers, .init = rt_start) {
    static struct queue q = {ASYNC_MUTEX_INITIALIZER, ASYNC_COND_INITIALIZER,
                             ASYNC_COND_INITIALIZER, .total = 20000};
    unsigned nw = (unsigned)async_worker_count();
    async_future_t *t[8];
    for (int i = 0; i < 8; i++)
        t[i] = spawn_on(i % 2 ? produce : consume, &q, 1 + (unsigned)i % nw);
    pthread_t th = thread_start(consume_thread, &q);
    ASSERT_VAL(async_await_all(t, 8, NULL, NULL), 0);
    pthread_join(th, NULL);
    cr_assert_eq(q.produced, q.total);
    cr_assert_eq(q.consumed, q.total);
    cr_assert_eq(q.items, 0);
    rt_stop();
}

/* ---- rwlock ------------------------------------------------------------------------- */

Test(rwlock, bad_input, .init = rt_start) {
    async_rwlock_t rw;
    ASSERT_ERR(async_rwlock_init(NULL, NULL), EINVAL);
    ASSERT_ERR(async_await(async_rwlock_rdlock(NULL)), EINVAL);
    ASSERT_ERR(async_await(async_rwlock_wrlock(NULL)), EINVAL);
    ASSERT_ERR(async_await(async_rwlock_timedrdlock(NULL, NULL)), EINVAL);
    ASSERT_ERR(async_await(async_rwlock_timedwrlock(NULL, NULL)), EINVAL);
    ASSERT_ERR(async_rwlock_tryrdlock(NULL), EINVAL);
    ASSERT_ERR(async_rwlock_trywrlock(NULL), EINVAL);
    ASSERT_ERR(async_rwlock_unlock(NULL), EINVAL);
    ASSERT_ERR(async_rwlock_destroy(NULL), EINVAL);
    pthread_rwlockattr_t a;
    pthread_rwlockattr_init(&a);
    pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    ASSERT_ERR(async_rwlock_init(&rw, &a), ENOTSUP);
    pthread_rwlockattr_destroy(&a);
    ASSERT_VAL(async_rwlock_init(&rw, NULL), 0);
    ASSERT_ERR(async_rwlock_unlock(&rw), EPERM);
    ASSERT_VAL(async_await(async_rwlock_wrlock(&rw)), 0);
    ASSERT_ERR(async_await(async_rwlock_wrlock(&rw)), EDEADLK);
    ASSERT_ERR(async_await(async_rwlock_rdlock(&rw)), EDEADLK);
    struct timespec bad = {0, -1};
    ASSERT_ERR(async_await(async_rwlock_timedrdlock(&rw, &bad)), EINVAL); /* first, as glibc */
    ASSERT_ERR(async_rwlock_destroy(&rw), EBUSY);
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    ASSERT_VAL(async_rwlock_destroy(&rw), 0);
    ASSERT_ERR(async_await(async_rwlock_rdlock(&rw)), EINVAL);
    ASSERT_ERR(async_rwlock_trywrlock(&rw), EINVAL);
    ASSERT_ERR(async_rwlock_unlock(&rw), EINVAL);
    ASSERT_ERR(async_rwlock_destroy(&rw), EINVAL);
    rt_stop();
}

static intptr_t try_write_elsewhere(void *arg) {
    CHECK_ERR(async_rwlock_trywrlock(arg), EBUSY);
    CHECK_ERR(async_rwlock_unlock(arg), EPERM);
    return 0;
}

Test(rwlock, readers_share_writers_exclude, .init = rt_start) {
    async_rwlock_t rw = ASYNC_RWLOCK_INITIALIZER;
    async_future_t *r1 = async_rwlock_rdlock(&rw);
    cr_assert(async_future_settled(r1));
    ASSERT_VAL(async_await(r1), 0);
    ASSERT_VAL(async_rwlock_tryrdlock(&rw), 0);
    ASSERT_ERR(async_rwlock_trywrlock(&rw), EBUSY);
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    ASSERT_VAL(async_rwlock_trywrlock(&rw), 0);
    ASSERT_ERR(async_rwlock_tryrdlock(&rw), EBUSY); /* the write owner too, as glibc */
    ASSERT_VAL(async_await(async_spawn(try_write_elsewhere, &rw)), 0);
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    rt_stop();
}

static intptr_t try_read_elsewhere(void *arg) {
    CHECK_ERR(async_rwlock_tryrdlock(arg), EBUSY); /* a writer holds it */
    return 0;
}

/* Readers are preferred, as glibc's default: a read lock joins the readers
 * while a writer waits. Waiters on a plain thread are handed the lock by the
 * unlock that frees it for them, in queue order. */
Test(rwlock, readers_join_while_a_writer_waits, .init = rt_start) {
    async_rwlock_t rw = ASYNC_RWLOCK_INITIALIZER;
    ASSERT_VAL(async_await(async_rwlock_rdlock(&rw)), 0);
    async_future_t *w1 = async_rwlock_wrlock(&rw);
    cr_assert(!async_future_settled(w1));
    async_future_t *r2 = async_rwlock_rdlock(&rw);
    cr_assert(async_future_settled(r2), "a reader joins the readers while a writer waits");
    ASSERT_VAL(async_await(r2), 0);
    ASSERT_VAL(async_rwlock_tryrdlock(&rw), 0);
    ASSERT_ERR(async_rwlock_trywrlock(&rw), EBUSY);
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    cr_assert(!async_future_settled(w1));
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    cr_assert(async_future_settled(w1), "the last reader's unlock hands the lock over");
    ASSERT_VAL(async_await(w1), 0);
    ASSERT_VAL(async_await(async_spawn(try_read_elsewhere, &rw)), 0);
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    ASSERT_VAL(async_rwlock_destroy(&rw), 0);
    rt_stop();
}

/* Readers whose holds always overlap never leave the lock free, and readers
 * are preferred: a writer still gets it, because a waiter kept out for a
 * millisecond stops new locks and is handed the lock when the holders leave. */
typedef struct {
    async_rwlock_t rw;
    atomic_int stop, readers_in, most_readers, writer_met_readers;
    atomic_long reads;
} overlap_t;

static intptr_t writer_once(void *arg) {
    overlap_t *o = arg;
    if (async_await(async_rwlock_wrlock(&o->rw)) != 0) return -1;
    if (atomic_load(&o->readers_in) != 0) atomic_fetch_add(&o->writer_met_readers, 1);
    CHECK_EQ(async_rwlock_unlock(&o->rw), 0);
    return 0;
}

static intptr_t overlapping_reader(void *arg) {
    overlap_t *o = arg;
    for (int i = 0; i < 4000 && !atomic_load(&o->stop); i++) {
        if (async_await(async_rwlock_rdlock(&o->rw)) != 0) return -1;
        int in = atomic_fetch_add(&o->readers_in, 1) + 1;
        int most = atomic_load(&o->most_readers);
        while (in > most && !atomic_compare_exchange_weak(&o->most_readers, &most, in))
            ;
        atomic_fetch_add(&o->reads, 1);
        if (async_await(async_usleep(500)) != 0) return -1; /* hold across a sleep */
        atomic_fetch_sub(&o->readers_in, 1);
        CHECK_EQ(async_rwlock_unlock(&o->rw), 0);
    }
    return 0;
}

Test(rwlock, a_writer_does_not_starve_behind_overlapping_readers, .init = rt_start) {
    static overlap_t o = {.rw = ASYNC_RWLOCK_INITIALIZER};
    unsigned nw = (unsigned)async_worker_count();
    async_future_t *t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = spawn_on(overlapping_reader, &o, 1 + (unsigned)i % nw);
        sleep_ms(1); /* staggered, so that some reader always holds the lock */
    }
    cr_assert(WAIT_UNTIL(atomic_load(&o.reads) > 20, 5000));
    for (int round = 0; round < 6; round++) {
        /* the readers would run for 2 s or more: the writer must get in
         * first, from this thread or from a task */
        if (round % 2)
            ASSERT_VAL(async_await(spawn_on(writer_once, &o, 1 + (unsigned)round % nw)), 0);
        else
            ASSERT_VAL(writer_once(&o), 0);
        sleep_ms(5);
    }
    cr_assert_eq(atomic_load(&o.writer_met_readers), 0, "a writer met readers");
    cr_assert_lt(atomic_load(&o.reads), 4 * 4000, "the readers ran out before the writer got in");
    cr_assert_geq(atomic_load(&o.most_readers), 2, "readers never shared the lock");
    atomic_store(&o.stop, 1);
    ASSERT_VAL(async_await_all(t, 4, NULL, NULL), 0);
    ASSERT_VAL(async_rwlock_destroy(&o.rw), 0);
    rt_stop();
}

static intptr_t timed_read_elsewhere(void *arg) {
    struct timespec ts = in_ms_on(CLOCK_REALTIME, 30);
    CHECK_ERR(async_await(async_rwlock_timedrdlock(arg, &ts)), ETIMEDOUT);
    return 0;
}

Test(rwlock, cancel_and_timeout, .init = rt_start) {
    async_rwlock_t rw = ASYNC_RWLOCK_INITIALIZER;
    ASSERT_VAL(async_await(async_rwlock_rdlock(&rw)), 0);
    /* a cancelled writer leaves the lock as it was */
    async_future_t *w = async_rwlock_wrlock(&rw);
    cr_assert(!async_future_settled(w));
    async_cancel(w);
    ASSERT_ERR(async_await(w), ECANCELED);
    ASSERT_ERR(async_rwlock_trywrlock(&rw), EBUSY);
    ASSERT_VAL(async_await(async_rwlock_rdlock(&rw)), 0);
    struct timespec ts = in_ms_on(CLOCK_REALTIME, 30);
    double t0 = now_ms();
    ASSERT_ERR(async_await(async_rwlock_timedwrlock(&rw, &ts)), ETIMEDOUT);
    cr_assert(now_ms() - t0 >= 25);
    ts = in_ms_on(CLOCK_REALTIME, 1000);
    ASSERT_VAL(async_await(async_rwlock_timedrdlock(&rw, &ts)), 0);
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    ASSERT_VAL(async_await(async_rwlock_timedwrlock(&rw, &ts)), 0);
    ASSERT_VAL(async_await(async_spawn(timed_read_elsewhere, &rw)), 0);
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    /* granted, then cancelled: kept */
    ASSERT_VAL(async_await(async_rwlock_rdlock(&rw)), 0);
    w = async_rwlock_wrlock(&rw);
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    async_cancel(w);
    ASSERT_VAL(async_await(w), 0);
    ASSERT_ERR(async_rwlock_tryrdlock(&rw), EBUSY); /* write-held (by us: the unlock below works) */
    ASSERT_VAL(async_rwlock_unlock(&rw), 0);
    ASSERT_ERR(async_rwlock_unlock(&rw), EPERM);
    ASSERT_VAL(async_rwlock_destroy(&rw), 0);
    rt_stop();
}

struct shared {
    async_rwlock_t rw;
    long a, b; /* always equal under the lock */
    atomic_int writers_in, readers_in;
};

static intptr_t rw_worker(void *arg) {
    struct shared *s = arg;
    for (int i = 0; i < 1500; i++) {
        if (i % 5 == 0) {
            if (async_await(async_rwlock_wrlock(&s->rw)) != 0) return -1;
            CHECK(atomic_fetch_add(&s->writers_in, 1) == 0);
            CHECK(atomic_load(&s->readers_in) == 0);
            s->a++;
            if (i % 3 == 0) async_yield();
            s->b++;
            atomic_fetch_sub(&s->writers_in, 1);
        } else {
            if (async_await(async_rwlock_rdlock(&s->rw)) != 0) return -1;
            atomic_fetch_add(&s->readers_in, 1);
            CHECK(atomic_load(&s->writers_in) == 0);
            CHECK(s->a == s->b);
            atomic_fetch_sub(&s->readers_in, 1);
        }
        CHECK(async_rwlock_unlock(&s->rw) == 0);
    }
    return 0;
}

Test(rwlock, contention_across_workers, .init = rt_start) {
    static struct shared s = {.rw = ASYNC_RWLOCK_INITIALIZER};
    unsigned nw = (unsigned)async_worker_count();
    async_future_t *t[10];
    for (int i = 0; i < 10; i++) t[i] = spawn_on(rw_worker, &s, 1 + (unsigned)i % nw);
    ASSERT_VAL(async_await_all(t, 10, NULL, NULL), 0);
    cr_assert_eq(s.a, 10L * 300);
    cr_assert_eq(s.b, s.a);
    rt_stop();
}
