/* The pool creates its threads outside its lock (src/task/pool.c): a job
 * submitted while another submitter is still inside pthread_create runs at
 * once, and the counts stay right when creations succeed or fail in any
 * order.
 *
 * This executable wraps pthread_create. A thread of the test that sets its
 * `gate` before submitting a job has the pool's pthread_create (made on that
 * thread, by the submit) held until the test releases it, and then either
 * made or failed with EAGAIN; every other call goes straight to the real
 * pthread_create. */
#include "helpers.h"

#include <dlfcn.h>

TestSuite(pool_create, .timeout = 60);

enum gate { PASS, HOLD_THEN_CREATE, HOLD_THEN_FAIL, FAIL_NOW };

static __thread enum gate gate;
static atomic_int held;    /* a creation is held in the wrapper */
static atomic_int release; /* let it go */

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
    static create_fn real;
    if (!real) *(void **)&real = dlsym(RTLD_NEXT, "pthread_create"); /* POSIX's way */
    enum gate g = gate;
    gate = PASS; /* one call per gate */
    if (g == HOLD_THEN_CREATE || g == HOLD_THEN_FAIL) {
        atomic_store(&held, 1);
        double end = now_ms() + 20000; /* never longer, whatever the test does */
        while (!atomic_load(&release) && now_ms() < end) sleep_ms(1);
        atomic_store(&held, 0);
    }
    if (g == HOLD_THEN_FAIL || g == FAIL_NOW) return EAGAIN;
    return real(t, attr, fn, arg);
}

static void pool_start(unsigned threads, unsigned reserved) {
    async_config_t c = {.pool_threads = threads, .pool_reserved = reserved};
    cr_assert_eq(async_runtime_init(&c), 0, "async_runtime_init: %s", ename(errno));
}

static intptr_t job_value(void *arg) { return (intptr_t)arg; }

/* A job submitted from a thread of its own, with that thread's gate set. */
typedef struct submit {
    enum gate gate;
    intptr_t value;
    async_future_t *f; /* what async_spawn_blocking gave */
    atomic_int returned;
} submit_t;

static void *submitter(void *arg) {
    submit_t *s = arg;
    gate = s->gate;
    s->f = async_spawn_blocking(job_value, (void *)s->value);
    atomic_store(&s->returned, 1);
    return NULL;
}

static unsigned pool_threads(void) {
    async_runtime_stats_t st;
    cr_assert_eq(async_runtime_stats(&st, NULL, 0), 0);
    return (unsigned)st.pool.threads;
}

/* While one submitter is held in pthread_create, another submits, gets a
 * thread of its own, and its job runs: the first holds no lock meanwhile. */
Test(pool_create, a_job_runs_while_another_thread_is_created) {
    pool_start(4, 1);
    submit_t a = {.gate = HOLD_THEN_CREATE, .value = 1}, b = {.gate = PASS, .value = 2};
    pthread_t ta = thread_start(submitter, &a);
    cr_assert(WAIT_UNTIL(atomic_load(&held), 10000), "the first creation never came");
    pthread_t tb = thread_start(submitter, &b);
    bool ran = WAIT_UNTIL(atomic_load(&b.returned) && async_future_settled(b.f), 10000);
    bool still_held = atomic_load(&held);
    atomic_store(&release, 1);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    cr_assert(ran, "the second job waited for the first submitter's pthread_create");
    cr_assert(still_held);
    ASSERT_VAL(async_await(b.f), 2);
    ASSERT_VAL(async_await(a.f), 1);
    cr_assert_eq(pool_threads(), 2);
    rt_stop();
}

/* Submits `a`, whose creation is held, then `b`, whose creation fails at
 * once; then lets a's creation go. Gives whether b's job had settled before. */
static bool b_fails_during_a(submit_t *a, submit_t *b) {
    pthread_t ta = thread_start(submitter, a);
    cr_assert(WAIT_UNTIL(atomic_load(&held), 10000), "the first creation never came");
    pthread_t tb = thread_start(submitter, b);
    pthread_join(tb, NULL);
    bool settled = async_future_settled(b->f);
    atomic_store(&release, 1);
    pthread_join(ta, NULL);
    return settled;
}

/* A creation fails while another is under way: the job stays queued for
 * the thread on its way, which runs both. */
Test(pool_create, a_failed_creation_leaves_the_job_to_the_thread_being_made) {
    pool_start(4, 1);
    submit_t a = {.gate = HOLD_THEN_CREATE, .value = 3}, b = {.gate = FAIL_NOW, .value = 4};
    cr_assert(!b_fails_during_a(&a, &b), "the job failed though a thread was being made");
    ASSERT_VAL(async_await(b.f), 4);
    ASSERT_VAL(async_await(a.f), 3);
    cr_assert_eq(pool_threads(), 1);
    rt_stop();
}

/* Both creations fail: the last to fail, finding no thread alive or on its
 * way, fails every queued job with its error; the next job starts a thread. */
Test(pool_create, the_last_failed_creation_fails_the_queued_jobs) {
    pool_start(4, 1);
    submit_t a = {.gate = HOLD_THEN_FAIL, .value = 5}, b = {.gate = FAIL_NOW, .value = 6};
    cr_assert(!b_fails_during_a(&a, &b), "failed while another creation was under way");
    cr_assert_eq(async_future_settled(a.f), 1, "settled before async_spawn_blocking returned");
    cr_assert_eq(async_future_settled(b.f), 1, "left queued with no thread to run it");
    ASSERT_ERR(async_await(a.f), EAGAIN);
    ASSERT_ERR(async_await(b.f), EAGAIN);
    cr_assert_eq(pool_threads(), 0);
    ASSERT_VAL(async_await(async_spawn_blocking(job_value, (void *)7)), 7);
    cr_assert_eq(pool_threads(), 1);
    rt_stop();
}

/* Shutdown while a creation is held waits for it (and joins the thread it
 * makes). The job queued for that thread is cancelled by the shutdown, or
 * run if the thread came first (a slow machine may take longer than the
 * half second to reach the pool's shutdown). */
static void *shut_down(void *arg) {
    atomic_int *done = arg;
    CHECK(async_runtime_shutdown() == 0);
    atomic_store(done, 1);
    return NULL;
}

Test(pool_create, shutdown_waits_for_a_thread_being_created) {
    pool_start(4, 1);
    submit_t a = {.gate = HOLD_THEN_CREATE, .value = 8};
    pthread_t ta = thread_start(submitter, &a);
    cr_assert(WAIT_UNTIL(atomic_load(&held), 10000));
    atomic_int done = 0;
    pthread_t ts = thread_start(shut_down, &done);
    bool early = WAIT_UNTIL(atomic_load(&done), 500);
    atomic_store(&release, 1);
    pthread_join(ta, NULL);
    pthread_join(ts, NULL);
    cr_assert(!early, "shutdown returned with a pool thread being created");
    cr_assert_eq(atomic_load(&done), 1);
    cr_assert_eq(async_future_settled(a.f), 1);
    errno = 0;
    intptr_t r = async_await(a.f);
    cr_assert(r == 8 || (r == -1 && errno == ECANCELED), "got %jd/%s", (intmax_t)r, ename(errno));
    checks_ok();
}

/* A file operation queued when no pool thread can start ends with the
 * creation's error, as a job does, not a made-up ECANCELED. */
Test(pool_create, a_file_op_with_no_thread_gets_the_creations_error) {
    pool_start(4, 1);
    char path[] = "/tmp/asyncstd-pool-create-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    unlink(path);
    gate = FAIL_NOW;
    async_future_t *f = async_fsync(fd); /* always a pool job */
    gate = PASS;
    ASSERT_ERR(async_await(f), EAGAIN);
    cr_assert_eq(pool_threads(), 0);
    ASSERT_VAL(async_await(async_fsync(fd)), 0); /* the next one starts a thread */
    close(fd);
    rt_stop();
}
