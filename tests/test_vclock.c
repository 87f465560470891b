/* The virtual clock (async_config_t.clock, ASYNCSTD_CLOCK): timers that do not
 * wait for real time, fire in deadline order across workers, and move by hand
 * with async_clock_advance(); in-process I/O is still seen before the clock
 * moves. Runs at one and two workers (tests/meson.build). */
#include "helpers.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#define MS 1000000ull /* nanoseconds */

static void start_clock(int clock) {
    async_config_t c = {0};
    c.clock = clock;
    int r = async_runtime_init(&c);
    cr_assert_eq(r, 0, "async_runtime_init: %s", ename(errno));
}

/* ---- a thousand sleepers --------------------------------------------------- */

#define SLEEPERS 1000

static uint64_t t_start;
static unsigned duration_ms[SLEEPERS];
static atomic_int woken;
static int wake_order[SLEEPERS];

static intptr_t sleeper(void *arg) {
    int i = (int)(intptr_t)arg;
    if (async_await(async_usleep((unsigned long)duration_ms[i] * 1000)) != 0) return -1;
    /* the clock stands exactly at the deadline when the sleeper runs */
    CHECK_EQ(async_clock_now() - t_start, (uint64_t)duration_ms[i] * MS);
    wake_order[atomic_fetch_add(&woken, 1)] = i;
    return 0;
}

/* Distinct durations up to an hour, spawned out of order from a plain thread. */
static void run_sleepers(void) {
    for (int i = 0; i < SLEEPERS; i++)
        duration_ms[i] = (unsigned)((i * 7919) % SLEEPERS + 1) * 3600;
    async_future_t *fs[SLEEPERS];
    double wall0 = now_ms();
    t_start = async_clock_now();
    for (int i = 0; i < SLEEPERS; i++) {
        fs[i] = async_spawn(sleeper, (void *)(intptr_t)i);
        cr_assert_not_null(fs[i]);
    }
    for (int i = 0; i < SLEEPERS; i++) ASSERT_VAL(async_await(fs[i]), 0);
    double wall = now_ms() - wall0;
    cr_assert_eq(atomic_load(&woken), SLEEPERS);
    for (int k = 1; k < SLEEPERS; k++)
        cr_assert_lt(duration_ms[wake_order[k - 1]], duration_ms[wake_order[k]],
                     "wake %d (%u ms) came after wake %d (%u ms)", k, duration_ms[wake_order[k]],
                     k - 1, duration_ms[wake_order[k - 1]]);
    cr_assert_eq(async_clock_now() - t_start, 3600000 * MS, "the clock ends at the last deadline");
    async_runtime_stats_t st;
    cr_assert_eq(async_runtime_stats(&st, NULL, 0), 0);
    cr_assert_eq(st.timers, SLEEPERS, "the metrics count each virtual timer once");
    /* a functional bound, not a benchmark: an hour of sleeps must not wait for real time */
    cr_assert_lt(wall, 10000, "took %.0f ms of real time", wall);
}

Test(vclock, an_hour_of_sleeps_in_a_thousand_tasks_wakes_in_deadline_order, .timeout = 60) {
    start_clock(ASYNC_CLOCK_VIRTUAL);
    run_sleepers();
    rt_stop();
}

Test(vclock, the_environment_chooses_the_virtual_clock, .timeout = 60) {
    setenv("ASYNCSTD_CLOCK", "virtual", 1);
    rt_start();
    run_sleepers();
    rt_stop();
}

Test(vclock, an_unknown_clock_name_keeps_the_real_clock) {
    setenv("ASYNCSTD_CLOCK", "sundial", 1);
    rt_start();
    ASSERT_ERR(async_await(async_clock_advance(MS)), EINVAL);
    double wall0 = now_ms();
    ASSERT_VAL(async_await(async_usleep(20000)), 0);
    cr_assert_geq(now_ms() - wall0, 19.5, "a real sleep waits");
    rt_stop();
}

Test(vclock, bad_clock_settings_are_refused) {
    async_config_t c = {0};
    c.clock = 4;
    ASSERT_ERR(async_runtime_init(&c), EINVAL);
    c.clock = -1;
    ASSERT_ERR(async_runtime_init(&c), EINVAL);
}

Test(vclock, the_real_clock_is_monotonic) {
    rt_start();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t mono = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t a = async_clock_now();
    ASSERT_VAL(async_await(async_usleep(5000)), 0);
    uint64_t b = async_clock_now();
    cr_assert_geq(b - a, 5 * MS);
    cr_assert_lt(a > mono ? a - mono : mono - a, 1000 * MS, "CLOCK_MONOTONIC's time");
    rt_stop();
}

/* ---- timeouts --------------------------------------------------------------- */

static intptr_t time_out_never_settling(void *arg) {
    (void)arg;
    async_future_t *f = async_future_new();
    uint64_t t0 = async_clock_now();
    CHECK_ERR(async_await_timeout(f, 90000), ETIMEDOUT);
    CHECK_EQ(async_clock_now() - t0, 90000 * MS);
    CHECK_ERR(async_future_resolve(f, 1), ECANCELED); /* ends the settler's role */
    return 0;
}

Test(vclock, await_timeout_on_a_never_settling_future_times_out_at_the_virtual_deadline,
     .timeout = 30) {
    start_clock(ASYNC_CLOCK_VIRTUAL);
    double wall0 = now_ms();
    async_future_t *f = async_future_new();
    uint64_t t0 = async_clock_now();
    ASSERT_ERR(async_await_timeout(f, 5000), ETIMEDOUT);
    cr_assert_eq(async_clock_now() - t0, 5000 * MS);
    ASSERT_ERR(async_future_resolve(f, 1), ECANCELED);
    ASSERT_VAL(async_await(async_spawn(time_out_never_settling, NULL)), 0);
    cr_assert_lt(now_ms() - wall0, 10000);
    rt_stop();
}

static async_mutex_t mtx = ASYNC_MUTEX_INITIALIZER;
static async_cond_t cond = ASYNC_COND_INITIALIZER;

static intptr_t waits_with_timeouts(void *arg) {
    (void)arg;
    uint64_t t0 = async_clock_now();
    /* a condition wait until an absolute time: the duration left at the call */
    struct timespec abs;
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_sec += 30;
    CHECK_EQ(async_await(async_mutex_lock(&mtx)), 0);
    CHECK_ERR(async_await(async_cond_timedwait(&cond, &mtx, &abs)), ETIMEDOUT);
    CHECK_EQ(async_mutex_unlock(&mtx), 0);
    uint64_t waited = async_clock_now() - t0;
    CHECK(waited > 29000 * MS && waited <= 30000 * MS);
    /* a poll of a pipe that never becomes readable */
    int p[2];
    CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    t0 = async_clock_now();
    CHECK_EQ(async_await(async_poll(&pfd, 1, 45000)), 0);
    CHECK_EQ(async_clock_now() - t0, 45000 * MS);
    CHECK_EQ(async_await(async_fd_wait(p[0], POLLIN, 7000)), 0);
    CHECK_EQ(async_clock_now() - t0, 52000 * MS);
    close(p[0]);
    close(p[1]);
    /* nanosleep, whole seconds */
    struct timespec req = {.tv_sec = 600}, rem = {1, 1};
    t0 = async_clock_now();
    CHECK_EQ(async_await(async_nanosleep(&req, &rem)), 0);
    CHECK_EQ(async_clock_now() - t0, 600000 * MS);
    return 0;
}

Test(vclock, every_library_timeout_runs_on_the_virtual_clock, .timeout = 30) {
    start_clock(ASYNC_CLOCK_VIRTUAL);
    double wall0 = now_ms();
    ASSERT_VAL(async_await(async_spawn(waits_with_timeouts, NULL)), 0);
    cr_assert_lt(now_ms() - wall0, 10000);
    rt_stop();
}

/* ---- by hand ---------------------------------------------------------------- */

static atomic_int hand_log[8];
static atomic_int hand_n;

static intptr_t hand_sleeper(void *arg) {
    int ms = (int)(intptr_t)arg;
    if (async_await(async_usleep((unsigned long)ms * 1000)) != 0) return -1;
    atomic_store(&hand_log[atomic_fetch_add(&hand_n, 1)], ms);
    if (ms == 10) { /* a second sleep from its wake-up: due at 20, after the 20's own */
        if (async_await(async_usleep(10000)) != 0) return -1;
        atomic_store(&hand_log[atomic_fetch_add(&hand_n, 1)], 1020);
    }
    return 0;
}

static void advance_by_hand(int clock) {
    start_clock(clock);
    uint64_t t0 = async_clock_now();
    async_future_t *fs[3];
    int ms[3] = {30, 20, 10};
    for (int i = 0; i < 3; i++) fs[i] = async_spawn(hand_sleeper, (void *)(intptr_t)ms[i]);
    ASSERT_VAL(async_await(async_clock_advance(0)), 0); /* every sleeper is asleep */
    cr_assert_eq(async_clock_now(), t0, "nothing moved the clock");
    cr_assert_eq(atomic_load(&hand_n), 0);
    ASSERT_VAL(async_await(async_clock_advance(15 * MS)), 0);
    cr_assert_eq(async_clock_now() - t0, 15 * MS);
    cr_assert_eq(atomic_load(&hand_n), 1);
    cr_assert_eq(atomic_load(&hand_log[0]), 10);
    ASSERT_VAL(async_await(async_clock_advance(10 * MS)), 0);
    cr_assert_eq(atomic_load(&hand_n), 3);
    cr_assert_eq(atomic_load(&hand_log[1]), 20, "same deadline: the older timer first");
    cr_assert_eq(atomic_load(&hand_log[2]), 1020);
    cr_assert(!async_future_settled(fs[0]));
    ASSERT_VAL(async_await(async_clock_advance(1000 * MS)), 0);
    cr_assert_eq(atomic_load(&hand_n), 4);
    cr_assert_eq(atomic_load(&hand_log[3]), 30);
    cr_assert_eq(async_clock_now() - t0, 1025 * MS);
    for (int i = 0; i < 3; i++) ASSERT_VAL(async_await(fs[i]), 0);
    rt_stop();
}

Test(vclock, advance_by_hand_moves_sleepers_in_order_on_the_manual_clock, .timeout = 30) {
    advance_by_hand(ASYNC_CLOCK_MANUAL);
}

Test(vclock, advance_by_hand_stops_at_its_target_on_the_auto_clock, .timeout = 30) {
    advance_by_hand(ASYNC_CLOCK_VIRTUAL);
}

static intptr_t cancelled_nanosleep(void *arg) {
    struct timespec *rem = arg;
    struct timespec req = {.tv_sec = 10};
    return async_await(async_nanosleep(&req, rem));
}

Test(vclock, a_cancelled_nanosleep_reports_the_virtual_time_left, .timeout = 30) {
    start_clock(ASYNC_CLOCK_MANUAL);
    struct timespec rem = {0, 0};
    async_future_t *f = async_spawn(cancelled_nanosleep, &rem);
    ASSERT_VAL(async_await(async_clock_advance(3 * 1000 * MS)), 0);
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    cr_assert_eq(rem.tv_sec, 7);
    cr_assert_eq(rem.tv_nsec, 0);
    rt_stop();
}

/* An absolute clock_nanosleep is the time left on its clock at the call,
 * passing on the virtual clock. */
Test(vclock, an_absolute_clock_nanosleep_passes_its_time_left_on_the_virtual_clock, .timeout = 30) {
    start_clock(ASYNC_CLOCK_MANUAL);
    struct timespec at;
    cr_assert_eq(clock_gettime(CLOCK_REALTIME, &at), 0);
    at.tv_sec += 10;
    async_future_t *f = async_clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL);
    cr_assert_not_null(f);
    ASSERT_VAL(async_await(async_clock_advance(9 * 1000 * MS)), 0);
    cr_assert_eq(async_future_settled(f), 0, "over 1 s early on the virtual clock");
    ASSERT_VAL(async_await(async_clock_advance(1001 * MS)), 0);
    cr_assert(async_future_settled(f), "not over 10 s later on the virtual clock");
    ASSERT_VAL(async_await(f), 0);
    rt_stop();
}

static intptr_t sleeps_90s(void *arg) {
    (void)arg;
    return async_await(async_sleep(90));
}

Test(vclock, a_dump_gives_a_sleep_left_on_the_virtual_clock, .timeout = 30) {
    start_clock(ASYNC_CLOCK_MANUAL);
    async_future_t *f = async_spawn(sleeps_90s, NULL);
    ASSERT_VAL(async_await(async_clock_advance(30000 * MS)), 0);
    char *text = dump_string();
    cr_assert_not_null(text, "async_dump: %s", ename(errno));
    cr_assert_not_null(strstr(text, "sleep until +60000 ms"), "dump:\n%s", text);
    free(text);
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    rt_stop();
}

/* A resource pool's idle timeout is measured on the runtime's clock. */
static int pooled_object;

static void *pool_create(void *ctx) {
    (void)ctx;
    return &pooled_object;
}

static void pool_destroy(void *obj, void *ctx) { (void)obj, (void)ctx; }

Test(vclock, a_resource_pool_expires_idle_objects_on_the_virtual_clock, .timeout = 30) {
    start_clock(ASYNC_CLOCK_MANUAL);
    async_respool_config_t cfg = {0};
    cfg.create = pool_create;
    cfg.destroy = pool_destroy;
    cfg.idle_timeout_ms = 60000;
    async_respool_t *p = async_respool_new(&cfg);
    cr_assert_not_null(p);
    void *obj = async_await_ptr(async_respool_acquire(p, -1));
    cr_assert_eq(obj, &pooled_object);
    cr_assert_eq(async_respool_release(p, obj, 0), 0);
    async_respool_stats_t st;
    ASSERT_VAL(async_await(async_clock_advance(30000 * MS)), 0);
    cr_assert_eq(async_respool_stats(p, &st), 0);
    cr_assert_eq(st.idle, 1, "30 s idle of 60");
    cr_assert_eq(st.expired, 0);
    ASSERT_VAL(async_await(async_clock_advance(40000 * MS)), 0);
    cr_assert_eq(async_respool_stats(p, &st), 0);
    cr_assert_eq(st.idle, 0, "70 s idle of 60");
    cr_assert_eq(st.expired, 1);
    cr_assert_eq(async_respool_free(p), 0);
    rt_stop();
}

/* A blocking job holds the clock: real time passes in it, none on the clock. */
static int hold_pipe[2];

static intptr_t blocking_read(void *arg) {
    (void)arg;
    char c;
    return read(hold_pipe[0], &c, 1) == 1 ? 0 : -1;
}

static atomic_bool advance_asked;

static intptr_t advance_in_task(void *arg) {
    (void)arg;
    async_future_t *f = async_clock_advance(50 * MS);
    atomic_store(&advance_asked, true);
    return async_await(f);
}

Test(vclock, a_pool_job_holds_the_clock_and_a_second_advance_is_refused, .timeout = 30) {
    start_clock(ASYNC_CLOCK_MANUAL);
    cr_assert_eq(pipe2(hold_pipe, O_CLOEXEC), 0);
    uint64_t t0 = async_clock_now();
    async_future_t *sleep = async_usleep(10000);
    async_future_t *job = async_spawn_blocking(blocking_read, NULL);
    async_future_t *adv = async_spawn(advance_in_task, NULL);
    cr_assert(WAIT_UNTIL(atomic_load(&advance_asked), 20000));
    sleep_ms(50); /* real time: the advance waits for the job */
    cr_assert(!async_future_settled(sleep));
    cr_assert(!async_future_settled(adv));
    cr_assert_eq(async_clock_now(), t0);
    ASSERT_ERR(async_await(async_clock_advance(MS)), EBUSY);
    cr_assert_eq(write(hold_pipe[1], "x", 1), 1);
    ASSERT_VAL(async_await(job), 0);
    ASSERT_VAL(async_await(adv), 0);
    ASSERT_VAL(async_await(sleep), 0);
    cr_assert_eq(async_clock_now() - t0, 50 * MS);
    close(hold_pipe[0]);
    close(hold_pipe[1]);
    rt_stop();
}

/* ---- with real I/O ---------------------------------------------------------- */

#define ECHO_ROUNDS 500

static int echo_sv[2];
static atomic_int ticks;
static atomic_bool echo_done;

static intptr_t echo_server(void *arg) {
    (void)arg;
    char buf[64];
    for (;;) {
        intptr_t n = async_await(async_recv(echo_sv[1], buf, sizeof buf, 0));
        if (n <= 0) return n;
        if (async_await(async_send(echo_sv[1], buf, (size_t)n, 0)) != n) return -1;
    }
}

/* Each reply is awaited with a 1 ms timeout: data sent by a task of this
 * process is always seen before the clock moves, so none may time out. */
static intptr_t echo_client(void *arg) {
    (void)arg;
    for (int i = 0; i < ECHO_ROUNDS; i++) {
        char out[16], in[16];
        int len = snprintf(out, sizeof out, "m%d", i);
        CHECK_EQ(async_await(async_send(echo_sv[0], out, (size_t)len, 0)), len);
        intptr_t n = async_await_timeout(async_recv(echo_sv[0], in, sizeof in, 0), 1);
        if (n != len) {
            check_fail(__FILE__, __LINE__, "round %d: %jd (%s)", i, (intmax_t)n, ename(errno));
            break;
        }
        CHECK(memcmp(in, out, (size_t)len) == 0);
    }
    atomic_store(&echo_done, true);
    shutdown(echo_sv[0], SHUT_WR);
    return 0;
}

static intptr_t ticker(void *arg) {
    (void)arg;
    while (!atomic_load(&echo_done)) {
        if (async_await(async_usleep(1000)) != 0) return -1;
        atomic_fetch_add(&ticks, 1);
    }
    return 0;
}

Test(vclock, a_socketpair_echo_works_beside_virtual_timers, .timeout = 60) {
    start_clock(ASYNC_CLOCK_VIRTUAL);
    ASSERT_VAL(async_await(async_socketpair(AF_UNIX, SOCK_STREAM, 0, echo_sv)), 0);
    uint64_t t0 = async_clock_now();
    async_future_t *fs[3] = {async_spawn(echo_server, NULL), async_spawn(ticker, NULL),
                             async_spawn(echo_client, NULL)};
    ASSERT_VAL(async_await(fs[2]), 0);
    ASSERT_VAL(async_await(fs[0]), 0);
    ASSERT_VAL(async_await(fs[1]), 0);
    cr_assert_eq(async_clock_now() - t0, (uint64_t)atomic_load(&ticks) * MS,
                 "the clock moved only for the ticker's sleeps");
    ASSERT_VAL(async_await(async_close(echo_sv[0])), 0);
    ASSERT_VAL(async_await(async_close(echo_sv[1])), 0);
    rt_stop();
}

/* ---- shutdown ----------------------------------------------------------------- */

static intptr_t long_sleeper(void *arg) {
    (void)arg;
    async_future_free(async_sleep(100)); /* detached, on this worker */
    return async_await(async_sleep(3600));
}

static intptr_t sleeps_through_cancel(void *arg) {
    (void)arg;
    async_setcancelstate(ASYNC_CANCEL_DISABLE, NULL);
    return async_await(async_sleep(60)); /* shutdown waits for it: the clock must move */
}

Test(vclock, shutdown_cancels_or_finishes_pending_timers, .timeout = 30) {
    start_clock(ASYNC_CLOCK_MANUAL);
    async_future_free(async_sleep(100)); /* detached, a plain thread's */
    async_future_t *a = async_spawn(long_sleeper, NULL);
    async_future_t *b = async_spawn(sleeps_through_cancel, NULL);
    ASSERT_VAL(async_await(async_clock_advance(MS)), 0);
    double wall0 = now_ms();
    rt_stop();
    cr_assert_lt(now_ms() - wall0, 10000);
    ASSERT_ERR(async_await(a), ECANCELED);
    ASSERT_VAL(async_await(b), 0);
}
