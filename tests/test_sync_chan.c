/* Tests of async_chan_*: bounded, rendezvous and unbounded channels, FIFO
 * order, close (drain, then end-of-channel; EPIPE for senders), cancellation
 * and timeouts, select through async_await_any(), bad input, and many
 * senders and receivers on every worker and on plain threads. */
#include "helpers.h"

TestSuite(chan, .timeout = 30);

Test(chan, bad_input, .init = rt_start) {
    long x = 0;
    ASSERT_NULL_ERR(async_chan_new(0, 1), EINVAL);
    ASSERT_NULL_ERR(async_chan_new(65537, 1), EINVAL);
    ASSERT_NULL_ERR(async_chan_new(1 << 16, SIZE_MAX / 2), ENOMEM);
    async_chan_t *c = async_chan_new(sizeof x, 1);
    cr_assert_not_null(c);
    ASSERT_ERR(async_await(async_chan_send(NULL, &x)), EINVAL);
    ASSERT_ERR(async_await(async_chan_send(c, NULL)), EINVAL);
    ASSERT_ERR(async_await(async_chan_recv(NULL, &x)), EINVAL);
    ASSERT_ERR(async_await(async_chan_recv(c, NULL)), EINVAL);
    ASSERT_ERR(async_chan_trysend(NULL, &x), EINVAL);
    ASSERT_ERR(async_chan_trysend(c, NULL), EINVAL);
    ASSERT_ERR(async_chan_tryrecv(NULL, &x), EINVAL);
    ASSERT_ERR(async_chan_tryrecv(c, NULL), EINVAL);
    ASSERT_ERR(async_chan_close(NULL), EINVAL);
    cr_assert_eq(async_chan_len(NULL), 0);
    cr_assert_eq(async_chan_cap(NULL), 0);
    cr_assert_eq(async_chan_free(NULL), 0);
    cr_assert_eq(async_chan_cap(c), 1);
    ASSERT_VAL(async_chan_free(c), 0);
    rt_stop();
}

Test(chan, bounded_order_and_blocking_send, .init = rt_start) {
    async_chan_t *c = async_chan_new(sizeof(int), 2);
    int a = 1, b = 2, d = 3, e = 4, got = 0;
    async_future_t *f = async_chan_send(c, &a);
    cr_assert(async_future_settled(f), "a send with room is settled at once");
    ASSERT_VAL(async_await(f), 0);
    ASSERT_VAL(async_chan_trysend(c, &b), 0);
    ASSERT_ERR(async_chan_trysend(c, &d), EAGAIN);
    cr_assert_eq(async_chan_len(c), 2);
    async_future_t *s3 = async_chan_send(c, &d), *s4 = async_chan_send(c, &e);
    cr_assert(!async_future_settled(s3) && !async_future_settled(s4));
    ASSERT_ERR(async_chan_free(c), EBUSY);
    ASSERT_VAL(async_await(async_chan_recv(c, &got)), 1);
    cr_assert_eq(got, 1);
    cr_assert(async_future_settled(s3), "a freed slot takes the oldest blocked sender's item");
    cr_assert(!async_future_settled(s4));
    ASSERT_VAL(async_await(s3), 0);
    ASSERT_VAL(async_chan_tryrecv(c, &got), 1);
    cr_assert_eq(got, 2);
    ASSERT_VAL(async_await(s4), 0);
    ASSERT_VAL(async_await(async_chan_recv(c, &got)), 1);
    cr_assert_eq(got, 3);
    ASSERT_VAL(async_chan_tryrecv(c, &got), 1);
    cr_assert_eq(got, 4);
    ASSERT_ERR(async_chan_tryrecv(c, &got), EAGAIN);
    /* a waiting receiver gets the next item directly, in arrival order */
    int r1 = 0, r2 = 0;
    async_future_t *g1 = async_chan_recv(c, &r1), *g2 = async_chan_recv(c, &r2);
    cr_assert(!async_future_settled(g1));
    ASSERT_VAL(async_chan_trysend(c, &e), 0);
    ASSERT_VAL(async_await(g1), 1);
    cr_assert_eq(r1, 4);
    cr_assert(!async_future_settled(g2));
    ASSERT_VAL(async_await(async_chan_send(c, &a)), 0);
    ASSERT_VAL(async_await(g2), 1);
    cr_assert_eq(r2, 1);
    cr_assert_eq(async_chan_len(c), 0);
    ASSERT_VAL(async_chan_free(c), 0);
    rt_stop();
}

Test(chan, rendezvous, .init = rt_start) {
    async_chan_t *c = async_chan_new(sizeof(long), 0);
    long v = 7, got = 0;
    cr_assert_eq(async_chan_cap(c), 0);
    ASSERT_ERR(async_chan_trysend(c, &v), EAGAIN);
    ASSERT_ERR(async_chan_tryrecv(c, &got), EAGAIN);
    async_future_t *s = async_chan_send(c, &v);
    cr_assert(!async_future_settled(s), "a send waits for a receiver");
    cr_assert_eq(async_chan_len(c), 0);
    ASSERT_VAL(async_chan_tryrecv(c, &got), 1);
    cr_assert_eq(got, 7);
    ASSERT_VAL(async_await(s), 0);
    async_future_t *r = async_chan_recv(c, &got);
    cr_assert(!async_future_settled(r));
    v = 8;
    ASSERT_VAL(async_chan_trysend(c, &v), 0);
    ASSERT_VAL(async_await(r), 1);
    cr_assert_eq(got, 8);
    ASSERT_VAL(async_chan_free(c), 0);
    rt_stop();
}

Test(chan, unbounded, .init = rt_start) {
    async_chan_t *c = async_chan_new(sizeof(int), ASYNC_CHAN_UNBOUNDED);
    cr_assert_eq(async_chan_cap(c), ASYNC_CHAN_UNBOUNDED);
    for (int i = 0; i < 10000; i++) {
        async_future_t *f = async_chan_send(c, &i);
        cr_assert(async_future_settled(f));
        ASSERT_VAL(async_await(f), 0);
        if (i % 3 == 0) { /* wrap the ring around while it grows */
            int got;
            ASSERT_VAL(async_chan_tryrecv(c, &got), 1);
            cr_assert_eq(got, i / 3, "items come out in order");
        }
    }
    cr_assert_eq(async_chan_len(c), 10000 - 3334);
    int expect = 3334, got;
    while (async_chan_tryrecv(c, &got) == 1) cr_assert_eq(got, expect++);
    cr_assert_eq(expect, 10000);
    ASSERT_VAL(async_chan_free(c), 0); /* items left are freed with it */
    c = async_chan_new(64, ASYNC_CHAN_UNBOUNDED);
    char big[64] = "left behind";
    for (int i = 0; i < 40; i++) ASSERT_VAL(async_chan_trysend(c, big), 0);
    ASSERT_VAL(async_chan_free(c), 0);
    rt_stop();
}

Test(chan, close_drains_then_ends, .init = rt_start) {
    async_chan_t *c = async_chan_new(sizeof(int), 2);
    int a = 1, b = 2, d = 3, got = 0;
    ASSERT_VAL(async_chan_trysend(c, &a), 0);
    ASSERT_VAL(async_chan_trysend(c, &b), 0);
    async_future_t *blocked = async_chan_send(c, &d);
    ASSERT_VAL(async_chan_close(c), 0);
    ASSERT_ERR(async_await(blocked), EPIPE);
    ASSERT_ERR(async_chan_close(c), EPIPE);
    ASSERT_ERR(async_await(async_chan_send(c, &d)), EPIPE);
    ASSERT_ERR(async_chan_trysend(c, &d), EPIPE);
    ASSERT_VAL(async_await(async_chan_recv(c, &got)), 1);
    cr_assert_eq(got, 1);
    ASSERT_VAL(async_chan_tryrecv(c, &got), 1);
    cr_assert_eq(got, 2);
    got = -5;
    ASSERT_VAL(async_await(async_chan_recv(c, &got)), 0);
    ASSERT_VAL(async_chan_tryrecv(c, &got), 0);
    cr_assert_eq(got, -5, "end-of-channel stores nothing");
    ASSERT_VAL(async_chan_free(c), 0);
    /* waiting receivers get end-of-channel */
    c = async_chan_new(sizeof(int), 0);
    async_future_t *r1 = async_chan_recv(c, &got), *r2 = async_chan_recv(c, &got);
    ASSERT_VAL(async_chan_close(c), 0);
    ASSERT_VAL(async_await(r1), 0);
    ASSERT_VAL(async_await(r2), 0);
    ASSERT_VAL(async_chan_free(c), 0);
    rt_stop();
}

Test(chan, cancel_and_timeout, .init = rt_start) {
    async_chan_t *c = async_chan_new(sizeof(int), 0);
    int a = 1, b = 2, got = 0;
    async_future_t *s1 = async_chan_send(c, &a), *s2 = async_chan_send(c, &b);
    async_cancel(s1);
    ASSERT_ERR(async_await(s1), ECANCELED);
    ASSERT_VAL(async_chan_tryrecv(c, &got), 1);
    cr_assert_eq(got, 2, "a cancelled send's item is withdrawn");
    ASSERT_VAL(async_await(s2), 0);
    async_future_t *r = async_chan_recv(c, &got);
    async_cancel(r);
    ASSERT_ERR(async_await(r), ECANCELED);
    ASSERT_ERR(async_chan_trysend(c, &a), EAGAIN);
    /* delivered, then cancelled: the delivery stands */
    r = async_chan_recv(c, &got);
    ASSERT_VAL(async_chan_trysend(c, &a), 0);
    async_cancel(r);
    ASSERT_VAL(async_await(r), 1);
    cr_assert_eq(got, 1);
    s1 = async_chan_send(c, &b);
    ASSERT_VAL(async_chan_tryrecv(c, &got), 1);
    async_cancel(s1);
    ASSERT_VAL(async_await(s1), 0);
    double t0 = now_ms();
    ASSERT_ERR(async_await_timeout(async_chan_recv(c, &got), 30), ETIMEDOUT);
    cr_assert(now_ms() - t0 >= 25);
    ASSERT_VAL(async_chan_free(c), 0);
    rt_stop();
}

static intptr_t recv_in_task(void *arg) {
    int x;
    return async_await(async_chan_recv(arg, &x));
}

Test(chan, cancelled_task, .init = rt_start) {
    async_chan_t *c = async_chan_new(sizeof(int), 1);
    async_future_t *t = async_spawn(recv_in_task, c);
    sleep_ms(20);
    async_cancel(t);
    ASSERT_ERR(async_await(t), ECANCELED);
    int v = 3;
    ASSERT_VAL(async_chan_trysend(c, &v), 0);
    cr_assert_eq(async_chan_len(c), 1, "nobody took the item");
    ASSERT_VAL(async_chan_free(c), 0);
    rt_stop();
}

static intptr_t send_later(void *arg) {
    async_await(async_usleep(10000));
    int v = 42;
    return async_await(async_chan_send(arg, &v));
}

/* select: the first of two channels and a timer; the others are cancelled and
 * awaited, keeping any item they received anyway. */
Test(chan, select_with_await_any, .init = rt_start) {
    async_chan_t *a = async_chan_new(sizeof(int), 0), *b = async_chan_new(sizeof(int), 0);
    int x = 0, y = 0;
    async_future_t *t = async_spawn(send_later, b);
    async_future_t *fs[3] = {async_chan_recv(a, &x), async_chan_recv(b, &y), async_sleep(5)};
    int i = async_await_any(fs, 3);
    cr_assert_eq(i, 1);
    for (int k = 0; k < 3; k++)
        if (k != i) async_cancel(fs[k]);
    ASSERT_ERR(async_await(fs[0]), ECANCELED);
    ASSERT_VAL(async_await(fs[1]), 1);
    cr_assert_eq(y, 42);
    ASSERT_ERR(async_await(fs[2]), ECANCELED);
    ASSERT_VAL(async_await(t), 0);
    /* nothing ready: the timer wins */
    async_future_t *gs[2] = {async_chan_recv(a, &x), async_usleep(10000)};
    cr_assert_eq(async_await_any(gs, 2), 1);
    async_cancel(gs[0]);
    ASSERT_ERR(async_await(gs[0]), ECANCELED);
    ASSERT_VAL(async_await(gs[1]), 0);
    ASSERT_VAL(async_chan_free(a), 0);
    ASSERT_VAL(async_chan_free(b), 0);
    rt_stop();
}

/* ---- many senders and receivers ---------------------------------------------------- */

#define PER_SENDER 2000
#define SENDERS 6
#define RECEIVERS 5

struct mpmc {
    async_chan_t *c;
    atomic_long sum, count;
    atomic_int senders_left;
};

static intptr_t sender(void *arg) {
    struct mpmc *m = arg;
    for (long i = 1; i <= PER_SENDER; i++)
        if (async_await(async_chan_send(m->c, &i)) != 0) return -1;
    if (atomic_fetch_sub(&m->senders_left, 1) == 1) CHECK(async_chan_close(m->c) == 0);
    return 0;
}

static intptr_t receiver(void *arg) {
    struct mpmc *m = arg;
    long v;
    intptr_t r;
    while ((r = async_await(async_chan_recv(m->c, &v))) == 1) {
        atomic_fetch_add(&m->sum, v);
        atomic_fetch_add(&m->count, 1);
    }
    return r;
}

static void *sender_thread(void *arg) { return (void *)sender(arg); }
static void *receiver_thread(void *arg) { return (void *)receiver(arg); }

static void mpmc_run(size_t cap) {
    struct mpmc m = {.c = async_chan_new(sizeof(long), cap)};
    atomic_store(&m.senders_left, SENDERS + 1);
    unsigned nw = (unsigned)async_worker_count();
    async_future_t *t[SENDERS + RECEIVERS];
    for (int i = 0; i < RECEIVERS; i++) t[i] = spawn_on(receiver, &m, 1 + (unsigned)i % nw);
    for (int i = 0; i < SENDERS; i++) t[RECEIVERS + i] = spawn_on(sender, &m, 1 + (unsigned)i % nw);
    pthread_t ps = thread_start(sender_thread, &m), pr = thread_start(receiver_thread, &m);
    ASSERT_VAL(async_await_all(t, SENDERS + RECEIVERS, NULL, NULL), 0);
    pthread_join(ps, NULL);
    pthread_join(pr, NULL);
    long n = (SENDERS + 1L) * PER_SENDER;
    cr_assert_eq(atomic_load(&m.count), n, "cap %zu", cap);
    cr_assert_eq(atomic_load(&m.sum), (SENDERS + 1L) * PER_SENDER * (PER_SENDER + 1) / 2);
    ASSERT_VAL(async_chan_free(m.c), 0);
}

Test(chan, mpmc_rendezvous, .init = rt_start) {
    mpmc_run(0);
    rt_stop();
}

Test(chan, mpmc_bounded, .init = rt_start) {
    mpmc_run(1);
    mpmc_run(16);
    rt_stop();
}

Test(chan, mpmc_unbounded, .init = rt_start) {
    mpmc_run(ASYNC_CHAN_UNBOUNDED);
    rt_stop();
}
