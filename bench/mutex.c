/* asyncstd-mutex: async_mutex_t against pthread_mutex_t, side by side in one
 * run. Prints ns per lock+unlock:
 *   uncontended   one plain thread, lock+unlock in a loop (for async_mutex:
 *                 async_await(async_mutex_lock(&m)) then async_mutex_unlock);
 *   contended     T plain threads hammering one mutex with a tiny critical
 *                 section (total time / total lock+unlock pairs);
 *   tasks         T tasks on the runtime's workers doing the same with
 *                 async_mutex;
 *   table         50 tasks spread over the T workers, all on one lock, in five
 *                 shapes: critical sections of ~50 ns and ~1 us, back to back
 *                 or with an await (a yield) between holds, and the hot-key
 *                 pipeline (16 holds of ~50 ns back to back, then an await).
 *                 Each shape with async_mutex_t, and with a pthread mutex and
 *                 a pthread spinlock taken inside the same tasks (which block
 *                 their worker while they wait). ns per hold, all tasks
 *                 together. bench/tokio-mutex runs the same table.
 *
 *   rwlock, sem   rows of the same table on an async_rwlock_t (read-mostly and
 *                 write-heavy) and an async_sem_t of count 4, against
 *                 pthread_rwlock_t and sem_t (see rw_table below).
 *
 *   handoff       the time from an unlock to the moment a queued waiter runs
 *                 holding the mutex, waiter on the unlocker's worker and on
 *                 another (median of HANDOFFS round trips).
 *
 *   asyncstd-mutex [ITERS]   (default 2,000,000 uncontended; a tenth under contention)
 * Env THREADS: workers and contending threads (default 2); TABLE=0 skips the table,
 * SHAPE=name runs only that row of it. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <asyncstd/asyncstd.h>

#include <sched.h>
#include <semaphore.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fail(const char *what) {
    fprintf(stderr, "asyncstd-mutex: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* The locks and the data their sections write, each lock on a cache line of
 * its own and the data on another: which globals the linker happened to put
 * beside the mutex moved the 50ns+await row by about 30% between builds. */
static struct {
    _Alignas(64) async_mutex_t am;
    _Alignas(64) pthread_mutex_t pm;
    _Alignas(64) pthread_spinlock_t spin;
    _Alignas(64) async_rwlock_t arw;
    _Alignas(64) pthread_rwlock_t prw;
    _Alignas(64) async_sem_t asem;
    _Alignas(64) sem_t psem;
    _Alignas(64) long counter; /* written in the sections */
    _Atomic uint64_t sink;     /* section_work's result */
    long rw_writes;
    atomic_int rw_readers_in;
    atomic_int rw_max_readers; /* readers seen inside at once */
    atomic_int sem_in;         /* units held right now */
    _Alignas(64) char end;     /* nothing else on the data's line */
} hot = {.am = ASYNC_MUTEX_INITIALIZER,
         .pm = PTHREAD_MUTEX_INITIALIZER,
         .arw = ASYNC_RWLOCK_INITIALIZER,
         .prw = PTHREAD_RWLOCK_INITIALIZER};
static long iters;

static double pthread_loop(long n) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&hot.pm);
        hot.counter++;
        pthread_mutex_unlock(&hot.pm);
    }
    return (double)(now_ns() - t0);
}

static double async_loop(long n) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        if (async_await(async_mutex_lock(&hot.am)) != 0) fail("async_mutex_lock");
        hot.counter++;
        async_mutex_unlock(&hot.am);
    }
    return (double)(now_ns() - t0);
}

/* Uncontended rwlock and semaphore: one plain thread, lock+unlock (wait+post). */
enum { U_PRD, U_ARD, U_PWR, U_AWR, U_PSEM, U_ASEM, U_KINDS };
static const char *const unc_names[U_KINDS] = {"pthread_rdlock", "async_rdlock", "pthread_wrlock",
                                               "async_wrlock",   "sem_t",        "async_sem"};
static async_rwlock_t unc_arw = ASYNC_RWLOCK_INITIALIZER;
static pthread_rwlock_t unc_prw = PTHREAD_RWLOCK_INITIALIZER;
static async_sem_t unc_asem;
static sem_t unc_psem;

static double unc_loop(int kind, long n) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        switch (kind) {
        case U_PRD:
            pthread_rwlock_rdlock(&unc_prw);
            pthread_rwlock_unlock(&unc_prw);
            break;
        case U_ARD:
            if (async_await(async_rwlock_rdlock(&unc_arw)) != 0) fail("async_rwlock_rdlock");
            async_rwlock_unlock(&unc_arw);
            break;
        case U_PWR:
            pthread_rwlock_wrlock(&unc_prw);
            pthread_rwlock_unlock(&unc_prw);
            break;
        case U_AWR:
            if (async_await(async_rwlock_wrlock(&unc_arw)) != 0) fail("async_rwlock_wrlock");
            async_rwlock_unlock(&unc_arw);
            break;
        case U_PSEM:
            sem_wait(&unc_psem);
            sem_post(&unc_psem);
            break;
        default:
            if (async_await(async_sem_wait(&unc_asem)) != 0) fail("async_sem_wait");
            async_sem_post(&unc_asem);
            break;
        }
    }
    return (double)(now_ns() - t0) / (double)n;
}

static void uncontended_others(long n) {
    async_sem_init(&unc_asem, 0, 1);
    sem_init(&unc_psem, 0, 1);
    printf("RESULT rwlock+sem uncontended");
    for (int k = 0; k < U_KINDS; k++) {
        unc_loop(k, n / 10); /* warm up */
        printf(" %s_ns=%.1f", unc_names[k], unc_loop(k, n));
    }
    printf("\n");
    fflush(stdout);
}

static void *pthread_thread(void *arg) {
    (void)arg;
    pthread_loop(iters);
    return NULL;
}

static void *async_thread(void *arg) {
    (void)arg;
    async_loop(iters);
    return NULL;
}

static double contended(void *(*fn)(void *), unsigned t) {
    pthread_t th[64];
    hot.counter = 0;
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < t; i++) pthread_create(&th[i], NULL, fn, NULL);
    for (unsigned i = 0; i < t; i++) pthread_join(th[i], NULL);
    double ns = (double)(now_ns() - t0);
    if (hot.counter != (long)t * iters) {
        fprintf(stderr, "asyncstd-mutex: lost updates (%ld of %ld)\n", hot.counter,
                (long)t * iters);
        exit(1);
    }
    return ns / ((double)t * iters);
}

static intptr_t task_fn(void *arg) {
    (void)arg;
    async_loop(iters);
    return 0;
}

/* ---- the table ------------------------------------------------------------ */

#define TABLE_TASKS 50

static uint64_t spin_iters_50ns, spin_iters_1us;

/* A critical section's work: a chain of multiplications the compiler cannot
 * drop. Readers and semaphore holders run it side by side, so the sink is an
 * atomic (relaxed: plain moves, as bench/tokio-mutex's SINK). */
static void section_work(uint64_t n) {
    uint64_t x = atomic_load_explicit(&hot.sink, memory_order_relaxed);
    for (uint64_t i = 0; i < n; i++) x = x * 6364136223846793005u + 1442695040888963407u;
    atomic_store_explicit(&hot.sink, x, memory_order_relaxed);
}

/* The fastest of several timed runs: a run that was preempted (other builds
 * share these cores) would make the sections too short. */
static void calibrate(void) {
    const uint64_t n = 200000;
    double best = 1e9;
    for (int r = 0; r < 20; r++) {
        uint64_t t0 = now_ns();
        section_work(n);
        double per = (double)(now_ns() - t0) / (double)n;
        if (per < best) best = per;
    }
    spin_iters_50ns = (uint64_t)(50.0 / best + 0.5);
    spin_iters_1us = (uint64_t)(1000.0 / best + 0.5);
}

enum { L_ASYNC, L_PMUTEX, L_SPIN, L_KINDS };
static const char *const lock_names[L_KINDS] = {"async_mutex", "pthread_mutex", "pthread_spin"};

typedef struct {
    const char *name;
    uint64_t section; /* iterations of section_work */
    int burst;        /* holds back to back */
    bool await;       /* a yield after each burst */
    long holds;       /* per task */
} shape_t;

static shape_t cur_shape;
static int cur_lock;

static intptr_t table_task(void *arg) {
    (void)arg;
    const shape_t *sh = &cur_shape;
    for (long i = 0; i < sh->holds; i += sh->burst) {
        for (int k = 0; k < sh->burst; k++) {
            switch (cur_lock) {
            case L_ASYNC:
                if (async_await(async_mutex_lock(&hot.am)) != 0) fail("async_mutex_lock");
                break;
            case L_PMUTEX:
                pthread_mutex_lock(&hot.pm);
                break;
            default:
                pthread_spin_lock(&hot.spin);
                break;
            }
            section_work(sh->section);
            hot.counter++;
            switch (cur_lock) {
            case L_ASYNC:
                async_mutex_unlock(&hot.am);
                break;
            case L_PMUTEX:
                pthread_mutex_unlock(&hot.pm);
                break;
            default:
                pthread_spin_unlock(&hot.spin);
                break;
            }
        }
        if (sh->await && async_yield() != 0) fail("async_yield");
    }
    return 0;
}

/* MUTEX_STATS=1: the runtime's counters over one run, per hold, on stderr
 * (task runs, worker sleeps and wake-ups): what a row's time goes to. */
static void stats_line(const async_runtime_stats_t *a, const async_runtime_stats_t *b, long holds) {
    double h = (double)holds;
    fprintf(stderr, "stats shape=%s lock=%s runs/hold=%.2f parks/hold=%.4f unparks/hold=%.4f\n",
            cur_shape.name, lock_names[cur_lock], (double)(b->all.tasks_run - a->all.tasks_run) / h,
            (double)(b->all.parks - a->all.parks) / h,
            (double)(b->all.unparks - a->all.unparks) / h);
}

static double table_run(unsigned t) {
    async_future_t *tasks[TABLE_TASKS];
    bool stats = getenv("MUTEX_STATS") != NULL;
    async_runtime_stats_t before, after;
    if (stats && async_runtime_stats(&before, NULL, 0) != 0) fail("async_runtime_stats");
    hot.counter = 0;
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < TABLE_TASKS; i++) {
        async_spawn_opts_t o = {.worker = 1 + i % t};
        tasks[i] = async_spawn_opts(table_task, NULL, &o);
    }
    if (async_await_all(tasks, TABLE_TASKS, NULL, NULL) != 0) fail("table tasks");
    double ns = (double)(now_ns() - t0);
    long total = (long)TABLE_TASKS * cur_shape.holds;
    if (stats) {
        if (async_runtime_stats(&after, NULL, 0) != 0) fail("async_runtime_stats");
        stats_line(&before, &after, total);
    }
    if (hot.counter != total) {
        fprintf(stderr, "asyncstd-mutex: table lost updates (%ld of %ld)\n", hot.counter, total);
        exit(1);
    }
    return ns / (double)total;
}

static void table(unsigned t) {
    calibrate();
    pthread_spin_init(&hot.spin, PTHREAD_PROCESS_PRIVATE);
    const shape_t shapes[] = {
        {"50ns", spin_iters_50ns, 1, false, 10000},
        {"1us", spin_iters_1us, 1, false, 1000},
        {"50ns+await", spin_iters_50ns, 1, true, 10000},
        {"1us+await", spin_iters_1us, 1, true, 1000},
        {"pipeline16", spin_iters_50ns, 16, true, 10000 - 10000 % 16},
    };
    printf("RESULT mutex table calibration iters_50ns=%llu iters_1us=%llu\n",
           (unsigned long long)spin_iters_50ns, (unsigned long long)spin_iters_1us);
    const char *only = getenv("SHAPE"); /* one shape by name, or all */
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        if (only && strcmp(only, shapes[i].name) != 0) continue;
        cur_shape = shapes[i];
        printf("RESULT mutex table workers=%u shape=%s", t, shapes[i].name);
        for (int l = 0; l < L_KINDS; l++) {
            cur_lock = l;
            printf(" %s_ns=%.1f", lock_names[l], table_run(t));
        }
        printf("\n");
        fflush(stdout);
    }
}

/* ---- rwlock and semaphore rows ----------------------------------------------
 * The same 50 tasks on one rwlock: "read90" takes the read lock for 9 holds
 * in 10 and the write lock for the tenth (sections of ~1 us, where readers
 * can overlap), "write90" the other way round (sections of ~50 ns). Against
 * pthread_rwlock_t taken inside the same tasks (glibc's default, which
 * prefers readers). The semaphore rows: count 4, sections of ~1 us; "sem4"
 * holds a unit only across the section (against sem_t, which with 4 units and
 * at most one holder running per worker never blocks a worker), "sem4+await"
 * yields while holding a unit, the way a task holds a connection slot across
 * I/O (async_sem_t only: a sem_t held across a yield would block the worker
 * that the holder needs). Each row's tasks also yield between holds. */

enum { R_ASYNC, R_PTHREAD, R_KINDS };

typedef struct {
    const char *name;
    uint64_t section;
    int writes_in_10; /* rwlock rows: writes per 10 holds; semaphore rows: -1 */
    bool hold_await;  /* semaphore: yield while holding */
    long holds;
} rwshape_t;

static rwshape_t cur_rw;

static void rw_hold(bool write) {
    if (write) {
        if (cur_lock == R_ASYNC) {
            if (async_await(async_rwlock_wrlock(&hot.arw)) != 0) fail("async_rwlock_wrlock");
        } else {
            pthread_rwlock_wrlock(&hot.prw);
        }
        if (atomic_load_explicit(&hot.rw_readers_in, memory_order_relaxed) != 0) {
            fprintf(stderr, "asyncstd-mutex: a writer met readers\n");
            exit(1);
        }
        section_work(cur_rw.section);
        hot.rw_writes++;
    } else {
        if (cur_lock == R_ASYNC) {
            if (async_await(async_rwlock_rdlock(&hot.arw)) != 0) fail("async_rwlock_rdlock");
        } else {
            pthread_rwlock_rdlock(&hot.prw);
        }
        int in = atomic_fetch_add_explicit(&hot.rw_readers_in, 1, memory_order_relaxed) + 1;
        int mx = atomic_load_explicit(&hot.rw_max_readers, memory_order_relaxed);
        while (in > mx &&
               !atomic_compare_exchange_weak_explicit(&hot.rw_max_readers, &mx, in,
                                                      memory_order_relaxed, memory_order_relaxed))
            ;
        section_work(cur_rw.section);
        atomic_fetch_sub_explicit(&hot.rw_readers_in, 1, memory_order_relaxed);
    }
    if (cur_lock == R_ASYNC)
        async_rwlock_unlock(&hot.arw);
    else
        pthread_rwlock_unlock(&hot.prw);
}


static void sem_hold(void) {
    if (cur_lock == R_ASYNC) {
        if (async_await(async_sem_wait(&hot.asem)) != 0) fail("async_sem_wait");
    } else {
        while (sem_wait(&hot.psem) != 0)
            if (errno != EINTR) fail("sem_wait");
    }
    if (atomic_fetch_add_explicit(&hot.sem_in, 1, memory_order_relaxed) >= 4) {
        fprintf(stderr, "asyncstd-mutex: more than 4 semaphore holders\n");
        exit(1);
    }
    section_work(cur_rw.section);
    if (cur_rw.hold_await && async_yield() != 0) fail("async_yield");
    atomic_fetch_sub_explicit(&hot.sem_in, 1, memory_order_relaxed);
    if (cur_lock == R_ASYNC)
        async_sem_post(&hot.asem);
    else
        sem_post(&hot.psem);
}

static intptr_t rw_task(void *arg) {
    long id = (long)(intptr_t)arg;
    for (long i = 0; i < cur_rw.holds; i++) {
        if (cur_rw.writes_in_10 < 0) {
            sem_hold();
        } else {
            long slot = (i + id) % 10;
            rw_hold(slot < cur_rw.writes_in_10);
        }
        if (async_yield() != 0) fail("async_yield");
    }
    return 0;
}

static double rw_run(unsigned t) {
    async_future_t *tasks[TABLE_TASKS];
    hot.rw_writes = 0;
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < TABLE_TASKS; i++) {
        async_spawn_opts_t o = {.worker = 1 + i % t};
        tasks[i] = async_spawn_opts(rw_task, (void *)(intptr_t)i, &o);
    }
    if (async_await_all(tasks, TABLE_TASKS, NULL, NULL) != 0) fail("rwlock tasks");
    double ns = (double)(now_ns() - t0);
    long total = (long)TABLE_TASKS * cur_rw.holds;
    if (cur_rw.writes_in_10 >= 0 && hot.rw_writes != total / 10 * cur_rw.writes_in_10) {
        fprintf(stderr, "asyncstd-mutex: lost writes (%ld of %ld)\n", hot.rw_writes,
                total / 10 * cur_rw.writes_in_10);
        exit(1);
    }
    return ns / (double)total;
}

static void rw_table(unsigned t) {
    const rwshape_t shapes[] = {
        {"rw_read90", spin_iters_1us, 1, false, 1000},
        {"rw_write90", spin_iters_50ns, 9, false, 10000},
        {"sem4", spin_iters_1us, -1, false, 1000},
        {"sem4+await", spin_iters_1us, -1, true, 1000},
    };
    const char *only = getenv("SHAPE");
    if (async_sem_init(&hot.asem, 0, 4) != 0 || sem_init(&hot.psem, 0, 4) != 0) fail("sem_init");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        if (only && strcmp(only, shapes[i].name) != 0) continue;
        cur_rw = shapes[i];
        bool sem = shapes[i].writes_in_10 < 0;
        printf("RESULT mutex table workers=%u shape=%s", t, shapes[i].name);
        for (int l = 0; l < R_KINDS; l++) {
            if (l == R_PTHREAD && shapes[i].hold_await) continue;
            cur_lock = l;
            atomic_store(&hot.rw_max_readers, 0);
            double ns = rw_run(t);
            printf(" %s_ns=%.1f",
                   sem ? (l == R_ASYNC ? "async_sem" : "sem_t")
                       : (l == R_ASYNC ? "async_rwlock" : "pthread_rwlock"),
                   ns);
            if (!sem) printf(" max_readers=%d", atomic_load(&hot.rw_max_readers));
        }
        printf("\n");
        fflush(stdout);
    }
}

/* ---- hand-off ----------------------------------------------------------- */

#define HANDOFFS 1000
static async_sem_t go, done;
static uint64_t handoff_t0, handoff_ns[HANDOFFS];

static intptr_t handoff_holder(void *arg) {
    (void)arg;
    for (int i = 0; i < HANDOFFS; i++) {
        if (async_await(async_mutex_lock(&hot.am)) != 0) fail("lock");
        async_sem_post(&go);
        /* long enough for the waiter to queue */
        if (async_await(async_usleep(200)) != 0) fail("usleep");
        handoff_t0 = now_ns();
        async_mutex_unlock(&hot.am);
        if (async_await(async_sem_wait(&done)) != 0) fail("sem_wait");
    }
    return 0;
}

static intptr_t handoff_waiter(void *arg) {
    (void)arg;
    for (int i = 0; i < HANDOFFS; i++) {
        if (async_await(async_sem_wait(&go)) != 0) fail("sem_wait");
        if (async_await(async_mutex_lock(&hot.am)) != 0) fail("lock");
        handoff_ns[i] = now_ns() - handoff_t0;
        async_mutex_unlock(&hot.am);
        async_sem_post(&done);
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void handoff(unsigned holder_worker, unsigned waiter_worker, const char *name) {
    async_sem_init(&go, 0, 0);
    async_sem_init(&done, 0, 0);
    async_spawn_opts_t oh = {.worker = holder_worker}, ow = {.worker = waiter_worker};
    async_future_t *f[2] = {async_spawn_opts(handoff_holder, NULL, &oh),
                            async_spawn_opts(handoff_waiter, NULL, &ow)};
    if (async_await_all(f, 2, NULL, NULL) != 0) fail("handoff tasks");
    qsort(handoff_ns, HANDOFFS, sizeof handoff_ns[0], cmp_u64);
    printf("RESULT mutex handoff %s median_ns=%llu p90_ns=%llu\n", name,
           (unsigned long long)handoff_ns[HANDOFFS / 2],
           (unsigned long long)handoff_ns[HANDOFFS * 9 / 10]);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    if (n <= 0) n = 2000000;
    const char *e = getenv("THREADS");
    unsigned t = e && atoi(e) > 0 ? (unsigned)atoi(e) : 2;
    if (t > 64) t = 64;
    async_config_t cfg = {.threads = t};
    if (async_runtime_init(&cfg) != 0) fail("async_runtime_init");

    pthread_loop(n / 10); /* warm up both */
    async_loop(n / 10);
    double p_unc = pthread_loop(n) / (double)n;
    double a_unc = async_loop(n) / (double)n;

    iters = n / 10;
    double p_con = contended(pthread_thread, t);
    double a_con = contended(async_thread, t);

    async_future_t *tasks[64];
    hot.counter = 0;
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < t; i++) {
        async_spawn_opts_t o = {.worker = 1 + i % t};
        tasks[i] = async_spawn_opts(task_fn, NULL, &o);
    }
    if (async_await_all(tasks, t, NULL, NULL) != 0) fail("tasks");
    double a_tasks = (double)(now_ns() - t0) / ((double)t * iters);
    if (hot.counter != (long)t * iters) fail("tasks lost updates");

    printf("RESULT mutex uncontended pthread_ns=%.1f async_ns=%.1f ratio=%.2f\n", p_unc, a_unc,
           a_unc / p_unc);
    printf("RESULT mutex contended threads=%u pthread_ns=%.1f async_ns=%.1f ratio=%.2f\n", t, p_con,
           a_con, a_con / p_con);
    printf("RESULT mutex tasks workers=%u async_ns=%.1f\n", t, a_tasks);
    fflush(stdout);
    uncontended_others(n);
    handoff(1, 1, "same_worker");
    if (t > 1) handoff(1, 2, "cross_worker");
    fflush(stdout);
    const char *tb = getenv("TABLE");
    if (!tb || strcmp(tb, "0") != 0) {
        table(t);
        rw_table(t);
    }
    if (async_runtime_shutdown() != 0) fail("async_runtime_shutdown");
    return 0;
}
