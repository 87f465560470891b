/* Tests of task-local storage (async_key_*, async_{get,set}specific): values
 * per task, destructors at task end, deletion, limits and plain threads. */
#include "helpers.h"

TestSuite(key, .init = rt_start, .timeout = 30);

/* Destructor bookkeeping: which values were destroyed, and how often. */
static atomic_int destroyed;
static atomic_intptr_t destroyed_sum;

static void count_destructor(void *v) {
    atomic_fetch_add(&destroyed, 1);
    atomic_fetch_add(&destroyed_sum, (intptr_t)v);
}

Test(key, create_bad_input) {
    ASSERT_ERR(async_key_create(NULL, NULL), EINVAL);
    ASSERT_ERR(async_key_create(NULL, count_destructor), EINVAL);
    rt_stop();
}

Test(key, create_gives_distinct_live_keys) {
    async_key_t a, b;
    cr_assert_eq(async_key_create(&a, NULL), 0);
    cr_assert_eq(async_key_create(&b, count_destructor), 0);
    cr_assert_neq(a, b);
    cr_assert_eq(async_key_delete(a), 0);
    cr_assert_eq(async_key_delete(b), 0);
    rt_stop();
}

struct per_task {
    async_key_t key;
    intptr_t mine;
    intptr_t initial;
    int bad;
};

static intptr_t set_yield_get(void *arg) {
    struct per_task *p = arg;
    p->initial = (intptr_t)async_getspecific(p->key);
    if (async_setspecific(p->key, (void *)p->mine) != 0) return -1;
    for (int i = 0; i < 50; i++) {
        if (async_yield() != 0) return -1;
        if ((i & 7) == 0) (void)async_await(async_usleep(200));
        if ((intptr_t)async_getspecific(p->key) != p->mine) p->bad++;
    }
    return (intptr_t)async_getspecific(p->key);
}

Test(key, values_are_per_task) {
    async_key_t k;
    cr_assert_eq(async_key_create(&k, NULL), 0);
    enum { P = 6, U = 6 };
    struct per_task p[P + U];
    async_future_t *fs[P + U];
    for (int i = 0; i < P + U; i++) {
        p[i] = (struct per_task){.key = k, .mine = 100 + i, .initial = -1};
        /* half share worker 1 (switches between them), half go anywhere */
        fs[i] = i < P ? spawn_on(set_yield_get, &p[i], 1) : async_spawn(set_yield_get, &p[i]);
    }
    intptr_t res[P + U];
    cr_assert_eq(async_await_all(fs, P + U, res, NULL), 0);
    for (int i = 0; i < P + U; i++) {
        cr_assert_eq(p[i].initial, 0, "task %d: a new task must see NULL", i);
        cr_assert_eq(p[i].bad, 0, "task %d saw another task's value", i);
        cr_assert_eq(res[i], 100 + i);
    }
    cr_assert_eq(async_key_delete(k), 0);
    rt_stop();
}

static intptr_t set_value_and_end(void *arg) {
    struct per_task *p = arg;
    return async_setspecific(p->key, (void *)p->mine);
}

Test(key, destructor_runs_when_task_ends) {
    async_key_t k;
    cr_assert_eq(async_key_create(&k, count_destructor), 0);
    struct per_task p = {.key = k, .mine = 77};
    ASSERT_VAL(async_await(async_spawn(set_value_and_end, &p)), 0);
    /* like pthread_join: the task has ended, destructors included */
    cr_assert_eq(atomic_load(&destroyed), 1);
    cr_assert_eq(atomic_load(&destroyed_sum), 77);

    /* NULL values are not destroyed */
    p.mine = 0;
    ASSERT_VAL(async_await(async_spawn(set_value_and_end, &p)), 0);
    cr_assert_eq(atomic_load(&destroyed), 1);

    /* many tasks: each value once */
    enum { N = 100 };
    struct per_task q[N];
    async_future_t *fs[N];
    for (int i = 0; i < N; i++) {
        q[i] = (struct per_task){.key = k, .mine = i + 1};
        fs[i] = async_spawn(set_value_and_end, &q[i]);
    }
    cr_assert_eq(async_await_all(fs, N, NULL, NULL), 0);
    cr_assert_eq(atomic_load(&destroyed), 1 + N);
    cr_assert_eq(atomic_load(&destroyed_sum), 77 + N * (N + 1) / 2);
    cr_assert_eq(async_key_delete(k), 0);
    rt_stop();
}

static intptr_t set_then_clear(void *arg) {
    struct per_task *p = arg;
    if (async_setspecific(p->key, (void *)p->mine) != 0) return -1;
    return async_setspecific(p->key, NULL);
}

Test(key, destructor_skips_cleared_values) {
    async_key_t k;
    cr_assert_eq(async_key_create(&k, count_destructor), 0);
    struct per_task p = {.key = k, .mine = 5};
    ASSERT_VAL(async_await(async_spawn(set_then_clear, &p)), 0);
    cr_assert_eq(atomic_load(&destroyed), 0);
    cr_assert_eq(async_key_delete(k), 0);
    rt_stop();
}

static intptr_t set_then_sleep(void *arg) {
    struct per_task *p = arg;
    if (async_setspecific(p->key, (void *)p->mine) != 0) return -1;
    return async_await(async_sleep(60));
}

Test(key, destructor_runs_for_cancelled_task) {
    async_key_t k;
    cr_assert_eq(async_key_create(&k, count_destructor), 0);
    struct per_task p = {.key = k, .mine = 9};
    async_future_t *t = async_spawn(set_then_sleep, &p);
    sleep_ms(30);
    async_cancel(t);
    ASSERT_ERR(async_await(t), ECANCELED);
    cr_assert_eq(atomic_load(&destroyed), 1);
    cr_assert_eq(atomic_load(&destroyed_sum), 9);
    cr_assert_eq(async_key_delete(k), 0);
    rt_stop();
}

static intptr_t set_several(void *arg) {
    async_key_t *ks = arg;
    for (int i = 0; i < 3; i++)
        if (async_setspecific(ks[i], (void *)(intptr_t)(10 << i)) != 0) return -1;
    return 0;
}

Test(key, destructors_of_several_keys) {
    async_key_t ks[3];
    for (int i = 0; i < 3; i++) cr_assert_eq(async_key_create(&ks[i], count_destructor), 0);
    ASSERT_VAL(async_await(async_spawn(set_several, ks)), 0);
    cr_assert_eq(atomic_load(&destroyed), 3);
    cr_assert_eq(atomic_load(&destroyed_sum), 10 + 20 + 40);
    for (int i = 0; i < 3; i++) cr_assert_eq(async_key_delete(ks[i]), 0);
    rt_stop();
}

struct delete_probe {
    async_key_t key;
    async_future_t *gate;
    int set_after, set_after_errno;
    void *get_after;
    atomic_int has_set;
};

static intptr_t outlive_key(void *arg) {
    struct delete_probe *p = arg;
    if (async_setspecific(p->key, (void *)(intptr_t)3) != 0) return -1;
    atomic_store(&p->has_set, 1);
    (void)async_await(p->gate); /* the key is deleted meanwhile */
    p->get_after = async_getspecific(p->key);
    errno = 0;
    p->set_after = async_setspecific(p->key, (void *)(intptr_t)4);
    p->set_after_errno = errno;
    return 0;
}

Test(key, delete_does_not_destroy_and_kills_the_key) {
    async_key_t k;
    cr_assert_eq(async_key_create(&k, count_destructor), 0);
    struct delete_probe p = {.key = k, .gate = async_future_new()};
    async_future_t *gate = p.gate;
    async_future_t *t = async_spawn(outlive_key, &p);
    cr_assert(WAIT_UNTIL(atomic_load(&p.has_set), 10000)); /* the value exists before the delete */
    cr_assert_eq(async_key_delete(k), 0);
    async_future_resolve(gate, 0);
    ASSERT_VAL(async_await(t), 0);
    cr_assert_null(p.get_after, "a deleted key has no value");
    cr_assert(p.set_after == -1 && p.set_after_errno == EINVAL,
              "setspecific on a deleted key: %d/%s", p.set_after, ename(p.set_after_errno));
    cr_assert_eq(atomic_load(&destroyed), 0, "values of a deleted key must not be destroyed");

    ASSERT_ERR(async_key_delete(k), EINVAL);
    ASSERT_ERR(async_setspecific(k, (void *)1), EINVAL);
    cr_assert_null(async_getspecific(k));
    rt_stop();
}

static intptr_t get_value(void *arg) { return (intptr_t)async_getspecific(*(async_key_t *)arg); }

struct reuse_probe {
    async_key_t *key; /* read after the gate opens */
    async_future_t *gate;
    void *seen;
    atomic_bool set; /* the task has set its value under the old key */
};

static intptr_t set_wait_get(void *arg) {
    struct reuse_probe *p = arg;
    if (async_setspecific(*p->key, (void *)(intptr_t)8) != 0) return -1;
    atomic_store(&p->set, true);
    (void)async_await(p->gate);
    p->seen = async_getspecific(*p->key);
    return 0;
}

Test(key, recreated_key_starts_empty) {
    /* As pthread_key_create: a new key holds NULL in every task and thread,
     * even when it reuses a deleted key's slot. */
    async_key_t k, k2;
    cr_assert_eq(async_key_create(&k, NULL), 0);
    async_key_t cur = k;
    struct reuse_probe p = {.key = &cur, .gate = async_future_new(), .seen = (void *)1};
    async_future_t *gate = p.gate;
    async_future_t *t = async_spawn(set_wait_get, &p);
    cr_assert_eq(async_setspecific(k, (void *)8), 0); /* main's own value */
    /* waited for, not slept on: under valgrind the task may take longer than any sleep */
    cr_assert(WAIT_UNTIL(atomic_load(&p.set), 10000), "the task never ran");
    cr_assert_eq(async_key_delete(k), 0);
    cr_assert_eq(async_key_create(&k2, NULL), 0);
    cur = k2;
    cr_assert_null(async_getspecific(k2), "a new key must not show an old key's value (thread)");
    async_future_resolve(gate, 0);
    ASSERT_VAL(async_await(t), 0);
    cr_assert_null(p.seen, "a new key must not show an old key's value (task)");
    ASSERT_VAL(async_await(async_spawn(get_value, &k2)), 0);
    cr_assert_eq(async_key_delete(k2), 0);
    rt_stop();
}

Test(key, bad_keys) {
    ASSERT_ERR(async_key_delete(ASYNC_KEYS_MAX + 7), EINVAL);
    ASSERT_ERR(async_key_delete((async_key_t)-1), EINVAL);
    ASSERT_ERR(async_setspecific((async_key_t)-1, (void *)1), EINVAL);
    cr_assert_null(async_getspecific((async_key_t)-1));
    cr_assert_null(async_getspecific(ASYNC_KEYS_MAX));
    rt_stop();
}

Test(key, eagain_at_keys_max) {
    static async_key_t ks[ASYNC_KEYS_MAX + 1];
    int n = 0;
    while (n <= ASYNC_KEYS_MAX && async_key_create(&ks[n], NULL) == 0) n++;
    cr_assert_eq(n, ASYNC_KEYS_MAX, "%d keys could be created", n);
    async_key_t extra;
    ASSERT_ERR(async_key_create(&extra, NULL), EAGAIN);
    /* all of them work */
    for (int i = 0; i < n; i++)
        cr_assert_eq(async_setspecific(ks[i], (void *)(intptr_t)(i + 1)), 0);
    for (int i = 0; i < n; i++) cr_assert_eq((intptr_t)async_getspecific(ks[i]), i + 1);
    for (int i = 0; i < n; i++) cr_assert_eq(async_setspecific(ks[i], NULL), 0);
    /* deleting one makes room for one */
    cr_assert_eq(async_key_delete(ks[10]), 0);
    cr_assert_eq(async_key_create(&ks[10], NULL), 0);
    ASSERT_ERR(async_key_create(&extra, NULL), EAGAIN);
    for (int i = 0; i < n; i++) cr_assert_eq(async_key_delete(ks[i]), 0);
    rt_stop();
}

static intptr_t use_every_key(void *arg) {
    async_key_t *ks = arg;
    for (int i = 0; i < ASYNC_KEYS_MAX; i++)
        if (async_setspecific(ks[i], (void *)(intptr_t)(i + 1)) != 0) return -1;
    (void)async_await(async_usleep(1000));
    for (int i = 0; i < ASYNC_KEYS_MAX; i++)
        if ((intptr_t)async_getspecific(ks[i]) != i + 1) return -2;
    return 0;
}

Test(key, a_task_may_use_every_key) {
    static async_key_t ks[ASYNC_KEYS_MAX];
    for (int i = 0; i < ASYNC_KEYS_MAX; i++)
        cr_assert_eq(async_key_create(&ks[i], count_destructor), 0);
    ASSERT_VAL(async_await(async_spawn(use_every_key, ks)), 0);
    cr_assert_eq(atomic_load(&destroyed), ASYNC_KEYS_MAX);
    cr_assert_eq(atomic_load(&destroyed_sum), ASYNC_KEYS_MAX * (ASYNC_KEYS_MAX + 1) / 2);
    for (int i = 0; i < ASYNC_KEYS_MAX; i++) cr_assert_eq(async_key_delete(ks[i]), 0);
    rt_stop();
}

/* ---- plain threads ----------------------------------------------------------------- */

struct thread_probe {
    async_key_t key;
    void *initial;
    void *after;
    int set;
};

static void *thread_uses_key(void *arg) {
    struct thread_probe *p = arg;
    p->initial = async_getspecific(p->key);
    p->set = async_setspecific(p->key, (void *)(intptr_t)222);
    sleep_ms(10);
    p->after = async_getspecific(p->key);
    return NULL;
}

Test(key, plain_threads_have_their_own_values) {
    async_key_t k;
    cr_assert_eq(async_key_create(&k, count_destructor), 0);
    cr_assert_null(async_getspecific(k));
    cr_assert_eq(async_setspecific(k, (void *)(intptr_t)111), 0);
    cr_assert_eq((intptr_t)async_getspecific(k), 111);

    struct thread_probe p = {.key = k};
    pthread_t th = thread_start(thread_uses_key, &p);
    pthread_join(th, NULL);
    cr_assert_null(p.initial, "another thread must not see main's value");
    cr_assert_eq(p.set, 0);
    cr_assert_eq((intptr_t)p.after, 222);
    cr_assert_eq((intptr_t)async_getspecific(k), 111, "main's value changed");
    cr_assert_eq(atomic_load(&destroyed), 0, "no destructors on plain threads");

    /* a task does not see the thread's value */
    ASSERT_VAL(async_await(async_spawn(get_value, &k)), 0);
    cr_assert_eq(async_setspecific(k, NULL), 0);
    cr_assert_eq(async_key_delete(k), 0);
    cr_assert_eq(atomic_load(&destroyed), 0);
    rt_stop();
}

static intptr_t pool_uses_key(void *arg) {
    thread_uses_key(arg);
    return 0;
}

Test(key, blocking_jobs_use_the_thread_fallback) {
    async_key_t k;
    cr_assert_eq(async_key_create(&k, NULL), 0);
    struct thread_probe p = {.key = k};
    ASSERT_VAL(async_await(async_spawn_blocking(pool_uses_key, &p)), 0);
    cr_assert_eq(p.set, 0);
    cr_assert_eq((intptr_t)p.after, 222);
    cr_assert_eq(async_key_delete(k), 0);
    rt_stop();
}
