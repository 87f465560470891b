/* Tests of async_barrier_*, async_once and async_waitgroup_*: results and
 * errors, rounds and reuse, cancellation (a cancelled arrival is taken back),
 * and use from tasks on every worker and plain threads. */
#include "helpers.h"

#include <limits.h>

TestSuite(barrier, .timeout = 30);
TestSuite(once, .timeout = 30);
TestSuite(waitgroup, .timeout = 30);

Test(barrier, bad_input, .init = rt_start) {
    async_barrier_t b;
    ASSERT_ERR(async_barrier_init(NULL, NULL, 1), EINVAL);
    ASSERT_ERR(async_barrier_init(&b, NULL, 0), EINVAL);
    pthread_barrierattr_t a;
    pthread_barrierattr_init(&a);
    pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    ASSERT_ERR(async_barrier_init(&b, &a, 2), ENOTSUP);
    pthread_barrierattr_destroy(&a);
    ASSERT_ERR(async_await(async_barrier_wait(NULL)), EINVAL);
    ASSERT_ERR(async_barrier_destroy(NULL), EINVAL);
    ASSERT_VAL(async_barrier_init(&b, NULL, 1), 0);
    ASSERT_VAL(async_await(async_barrier_wait(&b)), ASYNC_BARRIER_SERIAL_THREAD);
    ASSERT_VAL(async_barrier_destroy(&b), 0);
    ASSERT_ERR(async_await(async_barrier_wait(&b)), EINVAL);
    ASSERT_ERR(async_barrier_destroy(&b), EINVAL);
    rt_stop();
}

Test(barrier, rounds_and_cancel, .init = rt_start) {
    async_barrier_t b;
    ASSERT_VAL(async_barrier_init(&b, NULL, 3), 0);
    for (int round = 0; round < 3; round++) {
        async_future_t *f1 = async_barrier_wait(&b), *f2 = async_barrier_wait(&b);
        cr_assert(!async_future_settled(f1) && !async_future_settled(f2));
        if (round == 1) { /* a cancelled arrival is taken back: the round needs another */
            async_cancel(f2);
            ASSERT_ERR(async_await(f2), ECANCELED);
            f2 = async_barrier_wait(&b);
            cr_assert(!async_future_settled(f1) && !async_future_settled(f2));
        }
        ASSERT_ERR(async_barrier_destroy(&b), EBUSY);
        async_future_t *f3 = async_barrier_wait(&b);
        cr_assert(async_future_settled(f1) && async_future_settled(f2));
        ASSERT_VAL(async_await(f3), ASYNC_BARRIER_SERIAL_THREAD);
        ASSERT_VAL(async_await(f1), 0);
        ASSERT_VAL(async_await(f2), 0);
    }
    ASSERT_ERR(async_await_timeout(async_barrier_wait(&b), 20), ETIMEDOUT);
    ASSERT_VAL(async_barrier_destroy(&b), 0);
    rt_stop();
}

struct phases {
    async_barrier_t b;
    atomic_int phase_count[20];
    atomic_int serial;
};

static intptr_t phased(void *arg) {
    struct phases *p = arg;
    for (int i = 0; i < 20; i++) {
        atomic_fetch_add(&p->phase_count[i], 1);
        intptr_t r = async_await(async_barrier_wait(&p->b));
        if (r < 0) return -1;
        if (r == ASYNC_BARRIER_SERIAL_THREAD) atomic_fetch_add(&p->serial, 1);
        CHECK(atomic_load(&p->phase_count[i]) == 9); /* nobody passes before all arrived */
    }
    return 0;
}

static void *phased_thread(void *arg) { return (void *)phased(arg); }

Test(barrier, phases_across_workers, .init = rt_start) {
    static struct phases p;
    ASSERT_VAL(async_barrier_init(&p.b, NULL, 9), 0);
    unsigned nw = (unsigned)async_worker_count();
    async_future_t *t[8];
    for (int i = 0; i < 8; i++) t[i] = spawn_on(phased, &p, 1 + (unsigned)i % nw);
    pthread_t th = thread_start(phased_thread, &p);
    ASSERT_VAL(async_await_all(t, 8, NULL, NULL), 0);
    pthread_join(th, NULL);
    cr_assert_eq(atomic_load(&p.serial), 20, "one serial waiter per round");
    ASSERT_VAL(async_barrier_destroy(&p.b), 0);
    rt_stop();
}

/* ---- once ------------------------------------------------------------------------- */

static atomic_int init_runs;
static async_sem_t gate;

static void slow_init(void) {
    atomic_fetch_add(&init_runs, 1);
    /* awaits inside the routine: other callers must wait for it */
    async_await(async_sem_wait(&gate));
}

static void quick_init(void) { atomic_fetch_add(&init_runs, 1); }

static async_once_t once_a = ASYNC_ONCE_INIT;

static intptr_t call_once(void *arg) {
    (void)arg;
    intptr_t r = async_await(async_once(&once_a, slow_init));
    CHECK(atomic_load(&init_runs) == 1);
    return r;
}

Test(once, runs_once_and_others_wait, .init = rt_start) {
    ASSERT_VAL(async_sem_init(&gate, 0, 0), 0);
    ASSERT_ERR(async_await(async_once(NULL, quick_init)), EINVAL);
    ASSERT_ERR(async_await(async_once(&once_a, NULL)), EINVAL);
    async_future_t *t[6];
    for (int i = 0; i < 6; i++) t[i] = async_spawn(call_once, NULL);
    cr_assert(WAIT_UNTIL(atomic_load(&init_runs) == 1, 2000));
    sleep_ms(20);
    for (int i = 0; i < 6; i++)
        cr_assert(!async_future_settled(t[i]), "callers wait for the routine");
    /* a waiting caller can be cancelled */
    async_future_t *w = async_once(&once_a, slow_init);
    cr_assert(!async_future_settled(w));
    async_cancel(w);
    ASSERT_ERR(async_await(w), ECANCELED);
    ASSERT_VAL(async_sem_post(&gate), 0);
    ASSERT_VAL(async_await_all(t, 6, NULL, NULL), 0);
    async_future_t *f = async_once(&once_a, slow_init);
    cr_assert(async_future_settled(f));
    ASSERT_VAL(async_await(f), 0);
    cr_assert_eq(atomic_load(&init_runs), 1);
    async_once_t o2 = ASYNC_ONCE_INIT;
    ASSERT_VAL(async_await(async_once(&o2, quick_init)), 0);
    ASSERT_VAL(async_await(async_once(&o2, quick_init)), 0);
    cr_assert_eq(atomic_load(&init_runs), 2);
    rt_stop();
}

/* ---- wait group -------------------------------------------------------------------- */

Test(waitgroup, counts_and_errors, .init = rt_start) {
    async_waitgroup_t wg = ASYNC_WAITGROUP_INITIALIZER;
    ASSERT_ERR(async_waitgroup_init(NULL), EINVAL);
    ASSERT_ERR(async_waitgroup_add(NULL, 1), EINVAL);
    ASSERT_ERR(async_waitgroup_done(NULL), EINVAL);
    ASSERT_ERR(async_await(async_waitgroup_wait(NULL)), EINVAL);
    ASSERT_ERR(async_waitgroup_destroy(NULL), EINVAL);
    async_future_t *f = async_waitgroup_wait(&wg);
    cr_assert(async_future_settled(f), "an empty group is waited at once");
    ASSERT_VAL(async_await(f), 0);
    ASSERT_ERR(async_waitgroup_done(&wg), EINVAL); /* would go negative */
    ASSERT_VAL(async_waitgroup_add(&wg, 3), 0);
    ASSERT_ERR(async_waitgroup_add(&wg, -4), EINVAL);
    ASSERT_ERR(async_waitgroup_add(&wg, LONG_MAX), EOVERFLOW);
    async_future_t *w1 = async_waitgroup_wait(&wg), *w2 = async_waitgroup_wait(&wg);
    ASSERT_ERR(async_waitgroup_destroy(&wg), EBUSY);
    ASSERT_VAL(async_waitgroup_done(&wg), 0);
    ASSERT_VAL(async_waitgroup_add(&wg, -1), 0);
    cr_assert(!async_future_settled(w1));
    async_cancel(w2);
    ASSERT_ERR(async_await(w2), ECANCELED);
    ASSERT_VAL(async_waitgroup_done(&wg), 0);
    ASSERT_VAL(async_await(w1), 0);
    ASSERT_ERR(async_await_timeout((async_waitgroup_add(&wg, 1), async_waitgroup_wait(&wg)), 20),
               ETIMEDOUT);
    ASSERT_VAL(async_waitgroup_done(&wg), 0);
    ASSERT_VAL(async_waitgroup_destroy(&wg), 0);
    ASSERT_VAL(async_waitgroup_init(&wg), 0);
    rt_stop();
}

struct job {
    async_waitgroup_t *wg;
    atomic_int *done;
};

static intptr_t job(void *arg) {
    struct job *j = arg;
    async_await(async_usleep(1000));
    atomic_fetch_add(j->done, 1);
    return async_waitgroup_done(j->wg);
}

Test(waitgroup, tasks_across_workers, .init = rt_start) {
    async_waitgroup_t wg = ASYNC_WAITGROUP_INITIALIZER;
    atomic_int done = 0;
    struct job j = {&wg, &done};
    unsigned nw = (unsigned)async_worker_count();
    ASSERT_VAL(async_waitgroup_add(&wg, 50), 0);
    for (int i = 0; i < 50; i++) async_future_free(spawn_on(job, &j, 1 + (unsigned)i % nw));
    ASSERT_VAL(async_await(async_waitgroup_wait(&wg)), 0);
    cr_assert_eq(atomic_load(&done), 50);
    ASSERT_VAL(async_waitgroup_destroy(&wg), 0);
    rt_stop();
}

TestSuite(destroyed, .timeout = 30);

/* sync.h's rule for a destroyed rwlock, semaphore or condition variable: a
 * second destroy, and (rwlock, semaphore) any later use, is EINVAL until the
 * object is initialised again, which makes it work as new. */
Test(destroyed, later_uses_fail_until_init, .init = rt_start) {
    async_rwlock_t rw;
    async_sem_t s;
    async_cond_t c;
    cr_assert_eq(async_rwlock_init(&rw, NULL), 0);
    cr_assert_eq(async_sem_init(&s, 0, 1), 0);
    cr_assert_eq(async_cond_init(&c, NULL), 0);
    cr_assert_eq(async_rwlock_destroy(&rw), 0);
    cr_assert_eq(async_sem_destroy(&s), 0);
    cr_assert_eq(async_cond_destroy(&c), 0);
    ASSERT_ERR(async_rwlock_destroy(&rw), EINVAL);
    ASSERT_ERR(async_await(async_rwlock_rdlock(&rw)), EINVAL);
    ASSERT_ERR(async_sem_destroy(&s), EINVAL);
    ASSERT_ERR(async_sem_trywait(&s), EINVAL);
    ASSERT_ERR(async_cond_destroy(&c), EINVAL);
    cr_assert_eq(async_rwlock_init(&rw, NULL), 0);
    ASSERT_VAL(async_await(async_rwlock_rdlock(&rw)), 0);
    cr_assert_eq(async_rwlock_unlock(&rw), 0);
    cr_assert_eq(async_sem_init(&s, 0, 1), 0);
    cr_assert_eq(async_sem_trywait(&s), 0);
    cr_assert_eq(async_cond_init(&c, NULL), 0);
    cr_assert_eq(async_cond_destroy(&c), 0);
    cr_assert_eq(async_rwlock_destroy(&rw), 0);
    cr_assert_eq(async_sem_destroy(&s), 0);
    rt_stop();
}
