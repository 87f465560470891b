/* Tests of async_respool_*: a pool of real connections to a local echo
 * "server" (one end of a socketpair served by a blocking job on the blocking
 * pool): reuse, max size, waiting in order, acquire timeouts, broken objects,
 * health checks, failed creations, idle expiry and min_idle, cancellation,
 * statistics, bad input, and tasks on every worker sharing the pool. */
#include "helpers.h"

#include <poll.h>
#include <sys/socket.h>

TestSuite(respool, .timeout = 30);

typedef struct conn {
    int fd;
    async_future_t *server;
    int id;
} conn_t;

struct env {
    atomic_int creates, destroys, next_id;
    atomic_int fail_create; /* errno to fail create with, or 0 */
};

/* The server side of one connection: echoes bytes until EOF; 'Q' makes it hang up. */
static intptr_t echo_server(void *arg) {
    int fd = (int)(intptr_t)arg;
    char c;
    ssize_t n;
    while ((n = read(fd, &c, 1)) == 1 && c != 'Q')
        if (write(fd, &c, 1) != 1) break;
    close(fd);
    return 0;
}

static void *conn_create(void *ctx) {
    struct env *e = ctx;
    int err = atomic_load(&e->fail_create);
    if (err) {
        errno = err;
        return NULL;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return NULL;
    conn_t *c = malloc(sizeof *c);
    c->fd = sv[0];
    c->server = async_spawn_blocking(echo_server, (void *)(intptr_t)sv[1]);
    c->id = atomic_fetch_add(&e->next_id, 1);
    atomic_fetch_add(&e->creates, 1);
    return c;
}

static void conn_destroy(void *obj, void *ctx) {
    struct env *e = ctx;
    conn_t *c = obj;
    close(c->fd); /* the server sees EOF and ends */
    CHECK(async_await(c->server) == 0);
    free(c);
    atomic_fetch_add(&e->destroys, 1);
}

/* Healthy while the server has neither hung up nor sent anything unasked. */
static int conn_check(void *obj, void *ctx) {
    (void)ctx;
    struct pollfd p = {((conn_t *)obj)->fd, POLLIN | POLLRDHUP, 0};
    return poll(&p, 1, 0) == 0 ? 0 : -1;
}

struct trip {
    conn_t *c;
    char byte;
};

static intptr_t roundtrip_job(void *arg) {
    struct trip *t = arg;
    char back = 0;
    if (write(t->c->fd, &t->byte, 1) != 1 || read(t->c->fd, &back, 1) != 1) return -1;
    return back;
}

/* One request over the connection, on the blocking pool. */
static int roundtrip(conn_t *c, char byte) {
    struct trip t = {c, byte};
    return (int)async_await(async_spawn_blocking(roundtrip_job, &t));
}

static async_respool_t *new_pool(struct env *e, unsigned max, bool check) {
    async_respool_config_t cfg = {
        .create = conn_create, .destroy = conn_destroy, .ctx = e, .max_size = max};
    if (check) cfg.check = conn_check;
    async_respool_t *p = async_respool_new(&cfg);
    cr_assert_not_null(p);
    return p;
}

static async_respool_stats_t stats(async_respool_t *p) {
    async_respool_stats_t st;
    cr_assert_eq(async_respool_stats(p, &st), 0);
    return st;
}

Test(respool, bad_input, .init = rt_start) {
    struct env e = {0};
    async_respool_config_t cfg = {.create = conn_create, .destroy = conn_destroy, .ctx = &e};
    ASSERT_NULL_ERR(async_respool_new(NULL), EINVAL);
    cfg.create = NULL;
    ASSERT_NULL_ERR(async_respool_new(&cfg), EINVAL);
    cfg.create = conn_create;
    cfg.destroy = NULL;
    ASSERT_NULL_ERR(async_respool_new(&cfg), EINVAL);
    cfg.destroy = conn_destroy;
    cfg.max_size = 2;
    cfg.min_idle = 3;
    ASSERT_NULL_ERR(async_respool_new(&cfg), EINVAL);
    cfg.min_idle = 0;
    cfg.idle_timeout_ms = -1;
    ASSERT_NULL_ERR(async_respool_new(&cfg), EINVAL);
    ASSERT_ERR(async_await(async_respool_acquire(NULL, 10)), EINVAL);
    async_respool_t *p = new_pool(&e, 2, false);
    async_respool_stats_t st;
    ASSERT_ERR(async_respool_stats(NULL, &st), EINVAL);
    ASSERT_ERR(async_respool_stats(p, NULL), EINVAL);
    ASSERT_ERR(async_respool_release(NULL, p, 0), EINVAL);
    ASSERT_ERR(async_respool_release(p, NULL, 0), EINVAL);
    ASSERT_ERR(async_respool_release(p, &e, 0), EINVAL); /* nothing is in use */
    cr_assert_eq(async_respool_free(NULL), 0);
    ASSERT_VAL(async_respool_free(p), 0);
    rt_stop();
}

Test(respool, reuse_and_real_traffic, .init = rt_start) {
    struct env e = {0};
    async_respool_t *p = new_pool(&e, 2, true);
    conn_t *c = async_await_ptr(async_respool_acquire(p, 1000));
    cr_assert_not_null(c);
    cr_assert_eq(roundtrip(c, 'a'), 'a');
    async_respool_stats_t st = stats(p);
    cr_assert(st.size == 1 && st.in_use == 1 && st.idle == 0 && st.created == 1);
    ASSERT_VAL(async_respool_release(p, c, 0), 0);
    st = stats(p);
    cr_assert(st.size == 1 && st.in_use == 0 && st.idle == 1);
    conn_t *c2 = async_await_ptr(async_respool_acquire(p, 1000));
    cr_assert_eq(c2, c, "the idle connection is reused");
    cr_assert_eq(roundtrip(c2, 'b'), 'b');
    cr_assert_eq(atomic_load(&e.creates), 1);
    ASSERT_ERR(async_respool_free(p), EBUSY);
    ASSERT_VAL(async_respool_release(p, c2, 0), 0);
    st = stats(p);
    cr_assert_eq(st.acquired, 2);
    ASSERT_VAL(async_respool_free(p), 0);
    cr_assert_eq(atomic_load(&e.destroys), 1, "freeing the pool closes its idle connections");
    rt_stop();
}

Test(respool, max_size_wait_and_timeout, .init = rt_start) {
    struct env e = {0};
    async_respool_t *p = new_pool(&e, 2, false);
    conn_t *a = async_await_ptr(async_respool_acquire(p, -1));
    conn_t *b = async_await_ptr(async_respool_acquire(p, -1));
    cr_assert(a && b && a != b);
    double t0 = now_ms();
    ASSERT_NULL_ERR(async_await_ptr(async_respool_acquire(p, 30)), ETIMEDOUT);
    cr_assert(now_ms() - t0 >= 25);
    ASSERT_NULL_ERR(async_await_ptr(async_respool_acquire(p, 0)), ETIMEDOUT);
    cr_assert_eq(stats(p).timeouts, 2);
    async_future_t *w1 = async_respool_acquire(p, -1);
    cr_assert(WAIT_UNTIL(stats(p).waiting == 1, 2000));
    sleep_ms(20); /* let its task reach the queue: waiters are served in queue order */
    async_future_t *w2 = async_respool_acquire(p, 5000);
    cr_assert(WAIT_UNTIL(stats(p).waiting == 2, 2000));
    ASSERT_VAL(async_respool_release(p, b, 0), 0);
    conn_t *got = async_await_ptr(w1);
    cr_assert_eq(got, b, "the oldest waiter gets the released connection");
    cr_assert(!async_future_settled(w2));
    ASSERT_VAL(async_respool_release(p, a, 0), 0);
    cr_assert_eq(async_await_ptr(w2), a);
    cr_assert_eq(stats(p).size, 2);
    cr_assert_eq(atomic_load(&e.creates), 2, "never more than max_size");
    ASSERT_VAL(async_respool_release(p, a, 0), 0);
    ASSERT_VAL(async_respool_release(p, b, 0), 0);
    ASSERT_VAL(async_respool_free(p), 0);
    rt_stop();
}

Test(respool, broken_and_failed_check, .init = rt_start) {
    struct env e = {0};
    async_respool_t *p = new_pool(&e, 2, true);
    conn_t *c = async_await_ptr(async_respool_acquire(p, -1));
    int first = c->id;
    ASSERT_VAL(async_respool_release(p, c, 1), 0);
    async_respool_stats_t st = stats(p);
    cr_assert(st.broken == 1 && st.destroyed == 1 && st.size == 0);
    c = async_await_ptr(async_respool_acquire(p, -1));
    cr_assert_neq(c->id, first, "a broken connection is never handed out again");
    /* the server hangs up while the connection is idle: the check catches it */
    char q = 'Q';
    cr_assert_eq(write(c->fd, &q, 1), 1);
    int second = c->id;
    ASSERT_VAL(async_respool_release(p, c, 0), 0);
    sleep_ms(20);
    c = async_await_ptr(async_respool_acquire(p, -1));
    cr_assert_neq(c->id, second);
    cr_assert_eq(roundtrip(c, 'z'), 'z');
    st = stats(p);
    cr_assert_eq(st.check_failures, 1);
    cr_assert_eq(st.created, 3);
    ASSERT_VAL(async_respool_release(p, c, 0), 0);
    ASSERT_VAL(async_respool_free(p), 0);
    cr_assert_eq(atomic_load(&e.creates), atomic_load(&e.destroys));
    rt_stop();
}

Test(respool, create_failure_frees_the_place, .init = rt_start) {
    struct env e = {0};
    async_respool_t *p = new_pool(&e, 1, false);
    atomic_store(&e.fail_create, ECONNREFUSED);
    ASSERT_NULL_ERR(async_await_ptr(async_respool_acquire(p, 100)), ECONNREFUSED);
    cr_assert_eq(stats(p).create_failures, 1);
    cr_assert_eq(stats(p).size, 0);
    atomic_store(&e.fail_create, 0);
    conn_t *c = async_await_ptr(async_respool_acquire(p, 100));
    cr_assert_not_null(c, "the failed creation gave its place back");
    ASSERT_VAL(async_respool_release(p, c, 0), 0);
    ASSERT_VAL(async_respool_free(p), 0);
    rt_stop();
}

Test(respool, cancel_waiting_acquire, .init = rt_start) {
    struct env e = {0};
    async_respool_t *p = new_pool(&e, 1, false);
    conn_t *c = async_await_ptr(async_respool_acquire(p, -1));
    async_future_t *w = async_respool_acquire(p, -1);
    cr_assert(WAIT_UNTIL(stats(p).waiting == 1, 2000));
    async_cancel(w);
    ASSERT_NULL_ERR(async_await_ptr(w), ECANCELED);
    cr_assert_eq(stats(p).waiting, 0);
    ASSERT_VAL(async_respool_release(p, c, 0), 0);
    cr_assert_eq(async_await_ptr(async_respool_acquire(p, 100)), c);
    ASSERT_VAL(async_respool_release(p, c, 0), 0);
    ASSERT_VAL(async_respool_free(p), 0);
    rt_stop();
}

Test(respool, idle_expiry_and_min_idle, .init = rt_start) {
    struct env e = {0};
    async_respool_config_t cfg = {.create = conn_create,
                                  .destroy = conn_destroy,
                                  .ctx = &e,
                                  .max_size = 4,
                                  .min_idle = 1,
                                  .idle_timeout_ms = 40};
    async_respool_t *p = async_respool_new(&cfg);
    cr_assert_not_null(p);
    cr_assert(WAIT_UNTIL(stats(p).idle == 1, 2000), "min_idle is filled in the background");
    conn_t *c[3];
    for (int i = 0; i < 3; i++) c[i] = async_await_ptr(async_respool_acquire(p, 1000));
    for (int i = 0; i < 3; i++) ASSERT_VAL(async_respool_release(p, c[i], 0), 0);
    cr_assert(WAIT_UNTIL(stats(p).idle == 3 || stats(p).expired > 0, 2000));
    cr_assert(WAIT_UNTIL(stats(p).idle == 1 && stats(p).expired >= 2, 3000),
              "idle connections expire down to min_idle (idle %u)", stats(p).idle);
    cr_assert_eq(stats(p).size, 1);
    ASSERT_VAL(async_respool_free(p), 0);
    cr_assert_eq(atomic_load(&e.creates), atomic_load(&e.destroys));
    rt_stop();
}

struct load {
    async_respool_t *p;
    atomic_int inside, peak;
};

static intptr_t client(void *arg) {
    struct load *l = arg;
    for (int i = 0; i < 30; i++) {
        conn_t *c = async_await_ptr(async_respool_acquire(l->p, 10000));
        if (!c) return -1;
        int n = atomic_fetch_add(&l->inside, 1) + 1;
        int pk = atomic_load(&l->peak);
        while (n > pk && !atomic_compare_exchange_weak(&l->peak, &pk, n)) {
        }
        CHECK(roundtrip(c, (char)('a' + i % 26)) == 'a' + i % 26);
        atomic_fetch_sub(&l->inside, 1);
        CHECK(async_respool_release(l->p, c, i % 10 == 9) == 0); /* some come back broken */
    }
    return 0;
}

Test(respool, shared_by_tasks_across_workers, .init = rt_start) {
    struct env e = {0};
    static struct load l;
    l.p = new_pool(&e, 3, true);
    unsigned nw = (unsigned)async_worker_count();
    async_future_t *t[8];
    for (int i = 0; i < 8; i++) t[i] = spawn_on(client, &l, 1 + (unsigned)i % nw);
    ASSERT_VAL(async_await_all(t, 8, NULL, NULL), 0);
    async_respool_stats_t st = stats(l.p);
    cr_assert_eq(st.acquired, 240);
    cr_assert_eq(st.broken, 24);
    cr_assert(atomic_load(&l.peak) <= 3 && st.size <= 3, "peak %d", atomic_load(&l.peak));
    ASSERT_VAL(async_respool_free(l.p), 0);
    cr_assert_eq(atomic_load(&e.creates), atomic_load(&e.destroys));
    rt_stop();
}

/* An acquire whose task has not started yet still counts: free says EBUSY
 * (it used to free the request, which the task then read). */
static void free_refused_while_acquiring(void) {
    struct env e = {0};
    async_respool_config_t cfg = {
        .create = conn_create, .destroy = conn_destroy, .ctx = &e, .max_size = 2};
    async_respool_t *p = async_respool_new(&cfg);
    CHECK(p != NULL);
    async_future_t *a = async_respool_acquire(p, -1); /* no idle object: a task creates one */
    CHECK(a != NULL);
    errno = 0;
    CHECK(async_respool_free(p) == -1 && errno == EBUSY);
    conn_t *c = async_await_ptr(a);
    CHECK(c != NULL);
    CHECK(async_respool_release(p, c, 0) == 0);
    CHECK(async_respool_free(p) == 0);
    CHECK(atomic_load(&e.destroys) == 1);
}

static intptr_t free_refused_task(void *arg) {
    (void)arg;
    free_refused_while_acquiring();
    return 0;
}

Test(respool, free_refused_while_acquire_not_started, .init = rt_start) {
    free_refused_while_acquiring(); /* from a plain thread */
    ASSERT_VAL(async_await(async_spawn(free_refused_task, NULL)), 0);
    rt_stop();
}

/* An acquire cancelled before its task ran will never use the pool: it does
 * not keep free from freeing. */
static intptr_t cancel_before_run_task(void *arg) {
    (void)arg;
    struct env e = {0};
    async_respool_config_t cfg = {
        .create = conn_create, .destroy = conn_destroy, .ctx = &e, .max_size = 2};
    async_respool_t *p = async_respool_new(&cfg);
    CHECK(p != NULL);
    async_future_t *a = async_respool_acquire(p, -1); /* queued here: this task has not yielded */
    async_cancel(a);
    CHECK(async_await_ptr(a) == NULL && errno == ECANCELED);
    CHECK(async_respool_free(p) == 0);
    CHECK(atomic_load(&e.creates) == 0);
    return 0;
}

Test(respool, free_after_acquire_cancelled_before_run, .init = rt_start) {
    ASSERT_VAL(async_await(async_spawn(cancel_before_run_task, NULL)), 0);
    rt_stop();
}
