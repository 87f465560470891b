/* Timers: sleep, usleep, nanosleep, clock_nanosleep and the timer behind
 * async_await_timeout, each one libuv timer on a worker's loop (the awaiting
 * task's own worker, or any worker for a plain thread). Cancellation from
 * another thread travels to that worker as a message, since a libuv handle
 * belongs to its loop. Under the virtual clock, timers are vclock.c's instead.
 *
 * A clock_nanosleep that must end when some clock reads a time (an absolute
 * one, or one on a CPU-time clock) sleeps the time it computes on the
 * monotonic clock, then reads that clock when the timer fires and sleeps on
 * for what is left: the wall clock may have been set back, and a CPU-time
 * clock moves at any pace up to the number of CPUs times real time. */
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

/* The longest timer: about 292 years, so that the deadline in nanoseconds
 * (uv_hrtime() + ms * 10^6) cannot overflow. Longer requests are clamped to
 * it rather than wrapped: a sleep that long is "forever" and stays cancellable. */
#define TIMER_MS_MAX (UINT64_MAX / 2 / 1000000)

/* When a clock_nanosleep that reads its clock is over. */
typedef struct clock_end {
    clockid_t clock;
    int64_t deadline; /* the sleep is over once `clock` reads this, in ns */
    uint16_t pace;    /* how much faster than real time `clock` can move (CPUs) */
    uint64_t ms;      /* the time left at the call: a virtual clock's sleep */
} clock_end_t;

typedef struct timer_op {
    async_future_t future; /* first */
    async__handle_owner_t owner;
    uv_timer_t handle;
    async__msg_t start_msg, cancel_msg;
    async__worker_t *worker;
    uint64_t ms;
    uint64_t due_ns; /* uv_hrtime() at which the sleep is over */
    struct timespec *rem;
    clock_end_t end; /* with on_clock */
    bool started, closing, on_clock;
} timer_op_t;

/* A valid time in ns; past 2^63 ns (292 years) it saturates: "never". */
static int64_t ns_of(const struct timespec *ts) {
    if (ts->tv_sec >= INT64_MAX / 1000000000) return INT64_MAX;
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/* What is left of an on_clock sleep, in ns of its clock (0 once over), or -1
 * with errno when the clock can no longer be read (a process's CPU clock once
 * the process is reaped). */
static int64_t clock_left(const timer_op_t *op) {
    struct timespec now;
    if (clock_gettime(op->end.clock, &now) != 0) return -1;
    int64_t n = ns_of(&now);
    return n >= op->end.deadline ? 0 : op->end.deadline - n;
}

static void set_rem(struct timespec *rem, uint64_t ns) {
    rem->tv_sec = (time_t)(ns / 1000000000);
    rem->tv_nsec = (long)(ns % 1000000000);
}

static void timer_release(async_future_t *f) { async__obj_free(ASYNC_OBJ_SMALL, f); }

static void on_closed(uv_handle_t *h) {
    timer_op_t *op = ASYNC_CONTAINER_OF(h, timer_op_t, handle);
    async__future_unref(&op->future); /* the settler's role ends with the handle */
}

static void finish(timer_op_t *op, int err) {
    op->closing = true;
    if (err && op->rem) { /* a sleep that ran its course leaves rem alone, as nanosleep(2) */
        if (op->on_clock) {
            int64_t left = clock_left(op);
            set_rem(op->rem, left > 0 ? (uint64_t)left : 0);
        } else {
            set_rem(op->rem, uv_timer_get_due_in(&op->handle) * 1000000); /* 0 once due */
        }
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
        uv_timer_start(h, on_fire, async__ms_up(op->due_ns - now), 0);
        return;
    }
    if (op->on_clock) {
        int64_t left = clock_left(op);
        if (left < 0) {
            finish(op, errno);
            return;
        }
        if (left > 0) { /* the clock is behind the monotonic one: sleep on, at least 1 ms */
            uint64_t wait_ns = (uint64_t)left / op->end.pace;
            uint64_t ms = wait_ns / 1000000 + 1;
            op->due_ns = now + wait_ns;
            uv_timer_start(h, on_fire, ms < TIMER_MS_MAX ? ms : TIMER_MS_MAX, 0);
            return;
        }
    }
    finish(op, 0);
}

/* Worker thread: stop a timer that has not fired (or never started). */
static void cancel_here(timer_op_t *op) {
    if (op->closing) return;
    if (!op->started) {
        /* the start message is still queued behind us: settle now, start will see closing */
        op->closing = true;
        if (op->rem) {
            int64_t left = op->on_clock ? clock_left(op) : (int64_t)(op->ms * 1000000);
            set_rem(op->rem, left > 0 ? (uint64_t)left : 0);
        }
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

/* A timer of `ms`; with `on`, one that ends only once that clock reads the
 * deadline in it (on_fire). A virtual clock knows no other clock: there the
 * sleep is on->ms, the time left on `on`'s clock at the call. */
static async_future_t *timer_new(uint64_t ms, struct timespec *rem, const clock_end_t *on) {
    if (!async__runtime()) return async__future_failed(errno);
    if (ASYNC_UNLIKELY(async__rt.vclock)) /* vclock.c */
        return async__vclock_timer(on ? on->ms : ms, rem);
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
    op->on_clock = on != NULL;
    if (on) op->end = *on;
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

async_future_t *async__timer(uint64_t ms, struct timespec *rem) { return timer_new(ms, rem, NULL); }

async_future_t *async_sleep(unsigned seconds) {
    return async__timer((uint64_t)seconds * 1000, NULL);
}

async_future_t *async_usleep(unsigned long usec) {
    return async__timer(usec / 1000 + (usec % 1000 != 0), NULL); /* usec + 999 would wrap */
}

/* req in whole milliseconds, rounded up and clamped; req is valid */
static uint64_t ms_of(const struct timespec *req) {
    uint64_t ms = (uint64_t)req->tv_nsec / 1000000 + (req->tv_nsec % 1000000 != 0);
    if ((uint64_t)req->tv_sec > TIMER_MS_MAX / 1000) return TIMER_MS_MAX;
    return ms + (uint64_t)req->tv_sec * 1000;
}

static bool valid(const struct timespec *ts) {
    return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec <= 999999999L;
}

async_future_t *async_nanosleep(const struct timespec *req, struct timespec *rem) {
    if (!req) return async__future_failed(EFAULT); /* the kernel's answer, as glibc's */
    if (!valid(req)) return async__future_failed(EINVAL);
    return async__timer(ms_of(req), rem);
}

/* Dynamic clock ids (a process's or thread's CPU clock, a clock fd) are
 * negative. */
static bool is_cpu_clock(clockid_t clock) { return clock == CLOCK_PROCESS_CPUTIME_ID || clock < 0; }

/* The kernel's answer to a request it refuses without sleeping: req is NULL
 * or not a valid time. Not inlined, and not checked for the nonnull
 * attribute glibc gives req: passing NULL on is the point, and nothing
 * around the call may be compiled as if it could not be NULL. */
__attribute__((noinline, no_sanitize("nonnull-attribute"))) static int
refused(clockid_t clock, const struct timespec *req) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnonnull"
    int err = clock_nanosleep(clock, TIMER_ABSTIME, req, NULL);
#pragma GCC diagnostic pop
    return err ? err : EINVAL;
}

async_future_t *async_clock_nanosleep(clockid_t clock, int flags, const struct timespec *req,
                                      struct timespec *rem) {
    /* Which clocks can be slept on, by whom (thread CPU clocks, the alarm
     * clocks, the coarse and raw ones), and which error comes first, are the
     * kernel's to say. A bad request is handed to it, which refuses it at
     * once; a good one is first tried with a time long past, which answers
     * at once too. */
    if (!req || !valid(req)) return async__future_failed(refused(clock, req));
    static const struct timespec epoch = {0, 0};
    int err = clock_nanosleep(clock, TIMER_ABSTIME, &epoch, NULL);
    if (err) return async__future_failed(err);
    bool cpu = is_cpu_clock(clock);
    if (!(flags & TIMER_ABSTIME) && !cpu) return async__timer(ms_of(req), rem);

    clock_end_t on = {.clock = clock, .deadline = ns_of(req), .pace = 1};
    struct timespec now;
    if (clock_gettime(clock, &now) != 0) return async__future_failed(errno);
    int64_t n = ns_of(&now);
    if (!(flags & TIMER_ABSTIME)) /* relative, on a CPU clock: its end, read now */
        on.deadline = on.deadline > INT64_MAX - n ? INT64_MAX : n + on.deadline;
    else
        rem = NULL; /* an absolute sleep never writes it, as clock_nanosleep(2) */
    if (on.deadline <= n) return async__future_done(0);
    uint64_t left = (uint64_t)(on.deadline - n);
    on.ms = async__ms_up(left);
    if (cpu) { /* every CPU at once: sleeping that much less is the soonest it can be over */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        on.pace = cpus > 1 ? (uint16_t)(cpus < UINT16_MAX ? cpus : UINT16_MAX) : 1;
    }
    return timer_new(async__ms_up(left / on.pace), rem, &on);
}
