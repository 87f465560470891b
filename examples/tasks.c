/* A concurrent job runner: the tour of asyncstd's core in one program.
 *
 * 1. a burst of a few thousand jobs that each sleep a random short time, all awaited at once;
 * 2. a task group in which one job fails, so the group cancels every job still running;
 * 3. a CPU-heavy job on the blocking pool while a ticker task keeps running on the workers;
 * 4. async_await_timeout() on a job that is too slow, and on one that is fast enough.
 * At the end, one line from async_runtime_stats(): what the workers and the pool did.
 *
 * Usage: tasks [jobs [seed]]   (default: 2000 jobs, seed 1). Exits 0 when every phase gave the
 * expected result, so it doubles as a smoke test. Try ASYNCSTD_THREADS=1 to see that one worker is
 * enough: the tasks wait concurrently, they do not need a thread each.
 */
#include <asyncstd/asyncstd.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A small deterministic generator, one state per job: rand() is not meant for many threads. */
static uint32_t next_random(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

static uint32_t seed_for(unsigned seed, size_t job) {
    uint32_t s = (uint32_t)(seed * 2654435761u) ^ (uint32_t)(job * 40503u + 1);
    return s ? s : 1;
}

static int failures;

static void check(bool ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "tasks: unexpected result: %s\n", what);
        failures++;
    }
}

/* The symbolic name of the few error numbers this program expects. */
static const char *errname(int err) {
    switch (err) {
    case 0:
        return "no error";
    case EIO:
        return "EIO";
    case ECANCELED:
        return "ECANCELED";
    case ETIMEDOUT:
        return "ETIMEDOUT";
    case ENOMEM:
        return "ENOMEM";
    default:
        return strerror(err);
    }
}

/* ---- phase 1: a burst of sleeping jobs ------------------------------------------------------- */

struct burst_job {
    unsigned sleep_ms;
};

/* Reads like blocking code: sleep, then return a result. Only this task waits, not its worker. */
static intptr_t burst_job(void *arg) {
    struct burst_job *job = arg;
    if (async_await(async_usleep(job->sleep_ms * 1000ul)) < 0)
        return -1; /* errno is already set (ECANCELED) */
    return job->sleep_ms;
}

static void phase_burst(size_t n, unsigned seed) {
    struct burst_job *jobs = calloc(n, sizeof *jobs);
    async_future_t **fs = calloc(n, sizeof *fs);
    intptr_t *results = calloc(n, sizeof *results);
    if (!jobs || !fs || !results) {
        perror("tasks: calloc");
        exit(1);
    }

    double t0 = now_ms();
    unsigned long total_sleep = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t state = seed_for(seed, i);
        jobs[i].sleep_ms = 1 + next_random(&state) % 50;
        total_sleep += jobs[i].sleep_ms;
        fs[i] = async_spawn(burst_job, &jobs[i]); /* NULL on ENOMEM: awaiting it reports it */
    }
    int rc = async_await_all(fs, n, results, NULL); /* frees every future */
    double wall = now_ms() - t0;

    size_t right = 0;
    for (size_t i = 0; i < n; i++) right += results[i] == (intptr_t)jobs[i].sleep_ms;
    printf("1. burst     %zu tasks, each sleeping 1-50 ms (%.1f s in all): done in %.0f ms\n", n,
           total_sleep / 1e3, wall);
    check(rc == 0 && right == n, "every burst job returns its own sleep time");

    free(results);
    free(fs);
    free(jobs);
}

/* ---- phase 2: a task group where one job fails ----------------------------------------------- */

struct group_stats {
    atomic_int done, cancelled;
};

struct group_job {
    struct group_stats *stats;
    unsigned sleep_ms;
    bool fails;
};

static intptr_t group_job(void *arg) {
    struct group_job *job = arg;
    if (async_await(async_usleep(job->sleep_ms * 1000ul)) < 0) {
        /* The group cancelled us: the pending sleep failed with ECANCELED. Clean up and leave. */
        if (errno == ECANCELED) atomic_fetch_add(&job->stats->cancelled, 1);
        return -1;
    }
    if (job->fails) {
        errno = EIO; /* the group records the first failure's errno and cancels the rest */
        return -1;
    }
    atomic_fetch_add(&job->stats->done, 1);
    return 0;
}

static void phase_group(size_t n, unsigned seed) {
    struct group_stats stats = {0};
    struct group_job *jobs = calloc(n, sizeof *jobs);
    async_group_t *g = async_group_new();
    if (!jobs || !g) {
        perror("tasks: group");
        exit(1);
    }

    /* Jobs sleep 10..500 ms; job n/2 fails after 50 ms, so roughly the ones under 50 ms finish. */
    size_t bad = n / 2;
    double t0 = now_ms();
    for (size_t i = 0; i < n; i++) {
        uint32_t state = seed_for(seed + 1, i);
        jobs[i] = (struct group_job){&stats, 10 + next_random(&state) % 491, i == bad};
        if (i == bad) jobs[i].sleep_ms = 50;
        if (async_group_spawn(g, group_job, &jobs[i], NULL) < 0) {
            /* ECANCELED: the failure happened before we spawned them all. Nothing more to start. */
            check(errno == ECANCELED, "group_spawn fails only because the group was cancelled");
            break;
        }
    }
    intptr_t rc = async_await(async_group_wait(g));
    int err = errno;
    double wall = now_ms() - t0;
    async_group_free(g);

    printf("2. group     %zu tasks; #%zu fails at 50 ms: group ends with %s in %.0f ms, "
           "%d had finished, %d cancelled\n",
           n, bad, rc < 0 ? errname(err) : "success", wall, atomic_load(&stats.done),
           atomic_load(&stats.cancelled));
    check(rc == -1 && err == EIO, "the group reports the failing job's EIO");
    check(atomic_load(&stats.cancelled) > 0, "the failure cancels the jobs still sleeping");
    free(jobs);
}

/* ---- phase 3: a blocking job on the pool, a ticker on the workers ---------------------------- */

/* CPU-bound and blocking: it would stall a worker, so it runs on the blocking pool. */
static intptr_t count_primes(void *arg) {
    size_t limit = *(size_t *)arg;
    unsigned char *composite = calloc(limit + 1, 1);
    if (!composite) return -1; /* calloc set errno = ENOMEM; it reaches the awaiting task */
    intptr_t count = 0;
    for (size_t i = 2; i <= limit; i++) {
        if (composite[i]) continue;
        count++;
        for (size_t j = i * i; j <= limit; j += i) composite[j] = 1;
    }
    free(composite);
    return count;
}

/* Ticks every 5 ms until cancelled, then returns how many ticks it made. */
static intptr_t ticker(void *arg) {
    intptr_t ticks = 0;
    while (async_await(async_usleep(5000)) == 0) ticks++;
    return errno == ECANCELED ? ticks : -1;
}

static void phase_blocking(void) {
    size_t limit = 20 * 1000 * 1000;
    async_spawn_opts_t opts = {.name = "ticker"};
    async_future_t *tick = async_spawn_opts(ticker, NULL, &opts);

    double t0 = now_ms();
    intptr_t primes = async_await(async_spawn_blocking(count_primes, &limit));
    double wall = now_ms() - t0;

    async_cancel(tick); /* a request: the ticker's pending sleep fails with ECANCELED */
    intptr_t ticks = async_await(tick);

    printf("3. blocking  %jd primes below %zu, counted on the pool in %.0f ms; "
           "a ticker task ticked %jd times meanwhile\n",
           (intmax_t)primes, limit, wall, (intmax_t)ticks);
    check(primes == 1270607, "the pool job's result comes back through its future");
    check(ticks >= 0, "the ticker stops on cancellation");
}

/* ---- phase 4: timeouts --------------------------------------------------------------------- */

struct slow_job {
    unsigned sleep_ms;
    atomic_bool cancelled;
};

static intptr_t slow_job(void *arg) {
    struct slow_job *job = arg;
    if (async_await(async_usleep(job->sleep_ms * 1000ul)) < 0) {
        atomic_store(&job->cancelled, errno == ECANCELED);
        return -1;
    }
    return 42;
}

static void phase_timeout(void) {
    struct slow_job slow = {.sleep_ms = 10 * 1000}, fast = {.sleep_ms = 10};

    double t0 = now_ms();
    intptr_t r1 = async_await_timeout(async_spawn(slow_job, &slow), 100);
    int e1 = errno;
    double wall = now_ms() - t0;
    /* async_await_timeout() has cancelled the slow job and waited for it: `slow` is ours again. */
    intptr_t r2 = async_await_timeout(async_spawn(slow_job, &fast), 1000);

    printf("4. timeout   10 s task, 100 ms limit: %s after %.0f ms, the task saw %s; "
           "10 ms task, 1 s limit: %jd\n",
           r1 < 0 ? errname(e1) : "success", wall,
           atomic_load(&slow.cancelled) ? "ECANCELED" : "no cancel", (intmax_t)r2);
    check(r1 == -1 && e1 == ETIMEDOUT, "the slow job times out");
    check(atomic_load(&slow.cancelled), "the timed-out job sees ECANCELED");
    check(r2 == 42, "the fast job's value comes back");
}

/* ---- the runtime's own account of the run ---------------------------------------------------- */

/* One line from async_runtime_stats(): what the workers and the pool did over the four phases. */
static void print_metrics(void) {
    async_runtime_stats_t s;
    async_worker_stats_t w[64]; /* s.workers says how many there are; more are not written */
    if (async_runtime_stats(&s, w, 64) < 0) {
        perror("tasks: async_runtime_stats");
        failures++;
        return;
    }
    unsigned n = s.workers < 64 ? s.workers : 64;
    double busy = 0;
    for (unsigned i = 0; i < n; i++) busy += (double)w[i].busy_ns;
    busy = n && s.uptime_ns ? 100.0 * busy / ((double)s.uptime_ns * n) : 0;
    printf("metrics:     %llu spawns, %llu task runs, %llu steals, %llu timers, %llu cancels; "
           "%llu polls, %llu sleeps; workers %.0f%% busy; pool: %llu job(s), %u thread(s)\n",
           (unsigned long long)s.spawns, (unsigned long long)s.all.tasks_run,
           (unsigned long long)s.all.steals, (unsigned long long)s.timers,
           (unsigned long long)s.cancels, (unsigned long long)s.all.polls,
           (unsigned long long)s.all.parks, busy, (unsigned long long)s.pool.jobs_run,
           s.pool.threads);
    check(s.spawns >= 4 && s.all.tasks_run >= 4, "the metrics count the tasks");
}

int main(int argc, char **argv) {
    size_t jobs = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
    unsigned seed = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 1;
    if (jobs < 2) {
        fprintf(stderr, "usage: %s [jobs (at least 2) [seed]]\n", argv[0]);
        return 2;
    }

    /* Optional: without it the runtime starts on first use with the same defaults. */
    if (async_runtime_init(NULL) < 0) {
        perror("tasks: async_runtime_init");
        return 1;
    }
    printf("asyncstd job runner: %d worker thread(s), %zu tasks\n", async_worker_count(), jobs);

    /* main is a plain thread: each async_await below blocks it until the future settles,
     * while the jobs run as tasks on the workers. */
    double t0 = now_ms();
    phase_burst(jobs, seed);
    phase_group(jobs / 10 > 20 ? jobs / 10 : 20, seed);
    phase_blocking();
    phase_timeout();
    double wall = now_ms() - t0;
    print_metrics();

    if (async_runtime_shutdown() < 0) {
        perror("tasks: async_runtime_shutdown");
        failures++;
    }
    printf("summary: 4 phases in %.0f ms, %s\n", wall,
           failures ? "SOME RESULTS WERE WRONG" : "all results as expected");
    return failures ? 1 : 0;
}
