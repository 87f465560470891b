/* Timers: sleep, usleep, nanosleep and the timer behind async_await_timeout,
 * each one libuv timer on a worker's loop (the awaiting task's own worker, or
 * any worker for a plain thread). Cancellation from another thread travels
 * to that worker as a message, since a libuv handle belongs to its loop.
 * Under the virtual clock, timers are vclock.c's instead. */
#include <stdlib.h>

#include "internal.h"

/* The longest timer: about 292 years, so that the deadline in nanoseconds
 * (uv_hrtime() + ms * 10^6) cannot overflow. Longer requests are clamped to
 * it rather than wrapped: a sleep that long is "forever" and stays cancellable. */
#define TIMER_MS_MAX (UINT64_MAX / 2 / 1000000)

typedef struct timer_op {
    async_future_t future; /* first */
    async__handle_owner_t owner;
    uv_timer_t handle;
    async__msg_t start_msg, cancel_msg;
    async__worker_t *worker;
    uint64_t ms;
    uint64_t due_ns; /* uv_hrtime() at which the sleep is over */
    struct timespec *rem;
    bool started, closing;
} timer_op_t;

static void timer_release(async_future_t *f) { async__obj_free(ASYNC_OBJ_SMALL, f); }

static void on_closed(uv_handle_t *h) {
    timer_op_t *op = ASYNC_CONTAINER_OF(h, timer_op_t, handle);
    async__future_unref(&op->future); /* the settler's role ends with the handle */
}

static void finish(timer_op_t *op, int err) {
    op->closing = true;
    if (err && op->rem) { /* a sleep that ran its course leaves rem alone, as nanosleep(2) */
        uint64_t left = uv_timer_get_due_in(&op->handle); /* 0 once due */
        op->rem->tv_sec = (time_t)(left / 1000);
        op->rem->tv_nsec = (long)(left % 1000) * 1000000L;
    }
    uv_timer_stop(&op->handle);
    async__future_settle(&op->future, err ? -1 : 0, err);
    uv_close((uv_handle_t *)&op->handle, on_closed);
}

/* libuv keeps loop time in whole milliseconds, rounded down, so a timer may
 * fire up to 1 ms before its time: sleep on for the rest, never return early. */
static void on_fire(uv_timer_t *h) {
    timer_op_t *op = ASYNC_CONTAINER_OF(h, timer_op_t, handle);
    uint64_t now = uv_hrtime();
    if (now < op->due_ns) {
        uv_timer_start(h, on_fire, (op->due_ns - now + 999999) / 1000000, 0);
        return;
    }
    finish(op, 0);
}

/* Worker thread: stop a timer that has not fired (or never started). */
static void cancel_here(timer_op_t *op) {
    if (op->closing) return;
    if (!op->started) {
        /* the start message is still queued behind us: settle now, start will see closing */
        op->closing = true;
        if (op->rem)
            *op->rem = (struct timespec){(time_t)(op->ms / 1000), (long)(op->ms % 1000) * 1000000L};
        async__future_complete(&op->future, -1, ECANCELED);
        return;
    }
    finish(op, ECANCELED);
}

static void on_shutdown(uv_handle_t *h) { cancel_here(ASYNC_CONTAINER_OF(h, timer_op_t, handle)); }

static void start_here(timer_op_t *op) {
    if (op->closing) return;
    if (op->worker->exiting) { /* posted from a plain thread during shutdown */
        op->closing = true;
        async__future_complete(&op->future, -1, ECANCELED);
        return;
    }
    op->started = true;
    async__count(&op->worker->count.timers, 1);
    uv_timer_init(&op->worker->loop, &op->handle);
    op->handle.data = &op->owner;
    /* the loop's clock is cached per iteration, and tasks may have run long since: without
     * this a timer started late in an iteration would fire early */
    uv_update_time(&op->worker->loop);
    op->due_ns = uv_hrtime() + op->ms * 1000000;
    uv_timer_start(&op->handle, on_fire, op->ms, 0);
}

static void on_start_msg(async__worker_t *w, async__msg_t *m) {
    (void)w;
    timer_op_t *op = ASYNC_CONTAINER_OF(m, timer_op_t, start_msg);
    start_here(op);
    async__future_unref(&op->future); /* the message's hold */
}

static void on_cancel_msg(async__worker_t *w, async__msg_t *m) {
    (void)w;
    timer_op_t *op = ASYNC_CONTAINER_OF(m, timer_op_t, cancel_msg);
    cancel_here(op);
    async__future_unref(&op->future); /* the message's hold */
}

static void timer_cancel(async_future_t *f) {
    timer_op_t *op = (timer_op_t *)f;
    if (async__tls_worker == op->worker) {
        cancel_here(op);
        return;
    }
    async__future_ref(f);
    op->cancel_msg.run = on_cancel_msg;
    async__worker_post(op->worker, &op->cancel_msg);
}

/* due_ns is written on the timer's worker: the awaiting task's own (it was
 * started before the await), or the waiter, which a task never uses */
static void timer_describe(const async_future_t *f, async__wait_t *out) {
    const timer_op_t *op = (const timer_op_t *)f;
    async__wait_set(out, ASYNC_WAIT_TIMER, "sleep", NULL, (const void *)(uintptr_t)op->ms, NULL,
                    op->started ? (int64_t)op->due_ns : 0);
}

static const async__future_ops_t timer_ops = {timer_cancel, timer_release, timer_describe};

async_future_t *async__timer(uint64_t ms, struct timespec *rem) {
    if (!async__runtime()) return async__future_failed(errno);
    if (ASYNC_UNLIKELY(async__rt.vclock)) return async__vclock_timer(ms, rem); /* vclock.c */
    _Static_assert(sizeof(timer_op_t) <= ASYNC_OBJ_SMALL_SIZE, "timer_op_t outgrew its class");
    timer_op_t *op = async__obj_alloc(ASYNC_OBJ_SMALL);
    if (!op) {
        errno = ENOMEM;
        return NULL;
    }
    async__future_init(&op->future, &timer_ops);
    op->owner.shutdown = on_shutdown;
    op->ms = ms < TIMER_MS_MAX ? ms : TIMER_MS_MAX;
    op->rem = rem;
    op->started = op->closing = false;
    if (async__tls_worker) {
        op->worker = async__tls_worker;
        start_here(op);
    } else {
        op->worker = async__runtime_waiter(); /* see async__runtime_t */
        op->start_msg.run = on_start_msg;
        async__future_ref(&op->future);
        async__worker_post(op->worker, &op->start_msg);
    }
    return &op->future;
}

async_future_t *async_sleep(unsigned seconds) {
    return async__timer((uint64_t)seconds * 1000, NULL);
}

async_future_t *async_usleep(unsigned long usec) {
    return async__timer(usec / 1000 + (usec % 1000 != 0), NULL); /* usec + 999 would wrap */
}

async_future_t *async_nanosleep(const struct timespec *req, struct timespec *rem) {
    if (!req || req->tv_sec < 0 || req->tv_nsec < 0 || req->tv_nsec > 999999999L)
        return async__future_failed(EINVAL);
    uint64_t ms = (uint64_t)req->tv_nsec / 1000000 + (req->tv_nsec % 1000000 != 0);
    if ((uint64_t)req->tv_sec > TIMER_MS_MAX / 1000)
        ms = TIMER_MS_MAX;
    else
        ms += (uint64_t)req->tv_sec * 1000;
    return async__timer(ms, rem);
}
