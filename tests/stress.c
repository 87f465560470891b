/* The core's multi-worker stress scenarios in plain C, so that they also run
 * under ThreadSanitizer (stress.h says why, and how to run them): wake-ups
 * across workers, futures settled by plain threads, cancel races, groups,
 * stealing, dumps while tasks run, the pool grown from every worker at once,
 * and shutdown with work pending. */
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>

#include "stress.h"


static unsigned nworkers(void) { return (unsigned)async_worker_count(); }

/* ---- 1. wake-ups between tasks on different workers ---------------------------------------- */

typedef struct {
    async_future_t **to_a, **to_b;
    int rounds;
} pair_t;

static intptr_t ping(void *arg) {
    pair_t *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        CHECK(async_future_resolve(p->to_b[i], i) == 0);
        CHECK(async_await(p->to_a[i]) == i);
    }
    return 0;
}

static intptr_t pong(void *arg) {
    pair_t *p = arg;
    for (int i = 0; i < p->rounds; i++) {
        CHECK(async_await(p->to_b[i]) == i);
        CHECK(async_future_resolve(p->to_a[i], i) == 0);
    }
    return 0;
}

static void cross_worker_wakeups(void) {
    enum { PAIRS = 4 };
    int rounds = 100000 / scale;
    pair_t pairs[PAIRS];
    async_future_t *fs[2 * PAIRS];
    unsigned n = nworkers();
    for (int k = 0; k < PAIRS; k++) {
        pairs[k].rounds = rounds;
        pairs[k].to_a = malloc(rounds * sizeof(async_future_t *));
        pairs[k].to_b = malloc(rounds * sizeof(async_future_t *));
        for (int i = 0; i < rounds; i++) {
            pairs[k].to_a[i] = async_future_new();
            pairs[k].to_b[i] = async_future_new();
        }
        async_spawn_opts_t oa = {.worker = (unsigned)(2 * k) % n + 1};
        async_spawn_opts_t ob = {.worker = (unsigned)(2 * k + 1) % n + 1};
        fs[2 * k] = async_spawn_opts(pong, &pairs[k], &ob);
        fs[2 * k + 1] = async_spawn_opts(ping, &pairs[k], &oa);
    }
    CHECK(async_await_all(fs, 2 * PAIRS, NULL, NULL) == 0);
    for (int k = 0; k < PAIRS; k++) {
        free(pairs[k].to_a);
        free(pairs[k].to_b);
    }
}

/* ---- 2. plain threads settle futures that tasks await, and then-callbacks ------------------- */

typedef struct {
    async_future_t **fs;
    int from, to;
} slice_t;

static void *resolve_slice(void *arg) {
    slice_t *s = arg;
    for (int i = s->from; i < s->to; i++) CHECK(async_future_resolve(s->fs[i], i) == 0);
    return NULL;
}

static intptr_t await_one(void *arg) { return async_await(arg); }

static atomic_long then_sum;
static void on_then(intptr_t v, int err, void *arg) {
    CHECK(err == 0);
    atomic_fetch_add(&then_sum, v);
}

static void threads_settle_futures(void) {
    enum { THREADS = 4 };
    int n = 20000 / scale;
    async_future_t **fs = malloc(n * sizeof *fs), **tasks = malloc(n * sizeof *tasks);
    long want = 0;
    for (int i = 0; i < n; i++) {
        fs[i] = async_future_new();
        if (i % 2) {
            tasks[i] = async_spawn(await_one, fs[i]);
        } else {
            /* a then-callback takes the owner's role; the resolving thread runs it */
            tasks[i] = NULL;
            CHECK(async_future_then(fs[i], on_then, NULL) == 0);
            want += i;
        }
    }
    pthread_t th[THREADS];
    slice_t sl[THREADS];
    for (int t = 0; t < THREADS; t++) {
        sl[t] = (slice_t){fs, t * n / THREADS, (t + 1) * n / THREADS};
        pthread_create(&th[t], NULL, resolve_slice, &sl[t]);
    }
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    for (int i = 0; i < n; i++)
        if (tasks[i]) CHECK(async_await(tasks[i]) == i);
    CHECK(atomic_load(&then_sum) == want);
    free(fs);
    free(tasks);
}

/* ---- 3. cancellation from other threads racing completion ----------------------------------- */

static intptr_t short_sleep(void *arg) { return async_await(async_usleep((uintptr_t)arg)); }

static void *cancel_all(void *arg) {
    async_future_t **fs = arg;
    for (int i = 0; fs[i]; i++) async_cancel(fs[i]);
    return NULL;
}

static void cancel_races(void) {
    int n = 4000 / scale;
    async_future_t **fs = calloc(n + 1, sizeof *fs);
    for (int i = 0; i < n; i++) fs[i] = async_spawn(short_sleep, (void *)(uintptr_t)(i % 3 * 500));
    pthread_t th;
    pthread_create(&th, NULL, cancel_all, fs);
    int ok = 0, cancelled = 0;
    pthread_join(th, NULL);
    for (int i = 0; i < n; i++) {
        errno = 0;
        intptr_t v = async_await(fs[i]);
        if (v == 0)
            ok++;
        else if (errno == ECANCELED)
            cancelled++;
    }
    CHECK(ok + cancelled == n); /* each one either finished or was cancelled, nothing else */
    free(fs);
}

/* ---- 4. groups across workers, a timeout race, stealing ------------------------------------ */

static intptr_t member(void *arg) {
    intptr_t i = (intptr_t)arg;
    if (i == 77) {
        async_await(async_usleep(2000));
        errno = EPROTO;
        return -1;
    }
    return async_await(async_sleep(30));
}

static void group_across_workers(void) {
    unsigned n = nworkers();
    async_group_t *g = async_group_new();
    for (intptr_t i = 0; i < 300 / scale + 80; i++) {
        async_spawn_opts_t o = {.worker = (unsigned)(i % n) + 1};
        /* Once member 77 has failed (2 ms after its spawn; a slow machine or valgrind may still be
         * spawning), the group refuses newcomers with ECANCELED, as the header promises. */
        errno = 0;
        int r = async_group_spawn(g, member, (void *)i, &o);
        CHECK(r == 0 || (i > 77 && r == -1 && errno == ECANCELED));
    }
    errno = 0;
    CHECK(async_await(async_group_wait(g)) == -1 && errno == EPROTO);
    async_group_free(g);
}

static void *resolve_soon(void *arg) {
    async_future_t *f = arg;
    int r = async_future_resolve(f, 5);
    CHECK(r == 0 || errno == ECANCELED);
    return NULL;
}

static intptr_t timeout_race(void *arg) {
    for (int i = 0; i < 2000 / scale; i++) {
        async_future_t *f = async_future_new();
        pthread_t th;
        pthread_create(&th, NULL, resolve_soon, f);
        errno = 0;
        intptr_t v = async_await_timeout(f, i % 2);
        CHECK(v == 5 || (v == -1 && errno == ETIMEDOUT));
        pthread_join(th, NULL);
    }
    return 0;
}

static atomic_int ran_on[1025];
static intptr_t note_worker(void *arg) {
    for (volatile int i = 0; i < 20000; i++) {
    }
    atomic_fetch_add(&ran_on[async_worker_id()], 1);
    return 1;
}

static intptr_t burst(void *arg) {
    int n = 20000 / scale;
    async_future_t **fs = malloc(n * sizeof *fs);
    for (int i = 0; i < n; i++) fs[i] = async_spawn(note_worker, NULL);
    intptr_t sum = 0;
    for (int i = 0; i < n; i++) sum += async_await(fs[i]);
    free(fs);
    return sum;
}

static void stealing(void) {
    async_spawn_opts_t o = {.worker = 1};
    CHECK(async_await(async_spawn_opts(burst, NULL, &o)) == 20000 / scale);
}

/* ---- 5. shutdown with work pending on every worker ----------------------------------------- */

/* awaits a future nobody resolves before shutdown; main plays its settler role afterwards */
static intptr_t waits_forever(void *arg) { return async_await(arg); }

static void shutdown_with_pending_work(void) {
    unsigned n = nworkers();
    async_future_t *fs[64], *never[32];
    for (unsigned i = 0; i < 64; i++) {
        async_spawn_opts_t o = {.worker = i % n + 1};
        if (i % 2) {
            never[i / 2] = async_future_new();
            fs[i] = async_spawn_opts(waits_forever, never[i / 2], &o);
        } else {
            fs[i] = async_spawn_opts(short_sleep, (void *)(uintptr_t)1000000, &o);
        }
    }
    CHECK(async_runtime_shutdown() == 0);
    for (unsigned i = 0; i < 64; i++) {
        errno = 0;
        CHECK(async_await(fs[i]) == -1 && errno == ECANCELED);
    }
    /* each waiting task's await was cancelled, and cancelled its future: resolving says so
     * (a task cancelled before it started never awaited: its future is still pending) */
    for (unsigned i = 0; i < 32; i++) {
        int settled = async_future_settled(never[i]);
        errno = 0;
        int r = async_future_resolve(never[i], 1);
        CHECK(settled ? r == -1 && errno == ECANCELED : r == 0);
        if (!settled) async_future_free(never[i]);
    }
}

/* stealing, with the timeout race in a task of its own running first */
static void stealing_and_timeouts(void) {
    CHECK(async_await(async_spawn(timeout_race, NULL)) == 0);
    stealing();
}

/* ---- dumps from a thread and from a task while tasks start, park, wake and end ----------------
 */

static atomic_bool churn_stop;

static intptr_t short_task(void *arg) {
    (void)arg;
    return async_yield() + 1;
}

static intptr_t churner(void *arg) {
    (void)arg;
    unsigned i = 0;
    while (!atomic_load(&churn_stop)) {
        CHECK(async_await(async_spawn(short_task, NULL)) == 1);
        CHECK(async_await(async_usleep(100 + (i++ % 3) * 100)) == 0);
    }
    return 0;
}

static intptr_t task_dumper(void *arg) {
    for (int i = 0; i < 3; i++) {
        CHECK(async_dump(arg) == 0);
        CHECK(async_await(async_usleep(1000)) == 0);
    }
    return 0;
}

static void dumps_while_running(void) {
    FILE *out = fopen("/dev/null", "w");
    CHECK(out != NULL);
    if (!out) return;
    atomic_store(&churn_stop, false);
    unsigned n = 2 * nworkers();
    async_future_t **fs = calloc(n + 1, sizeof *fs);
    CHECK(fs != NULL);
    if (!fs) return;
    async_spawn_opts_t o = {.name = "churner"};
    for (unsigned i = 0; i < n; i++) fs[i] = async_spawn_opts(churner, NULL, &o);
    fs[n] = async_spawn(task_dumper, out);
    for (int i = 0; i < 200 / scale + 2; i++) CHECK(async_dump(out) == 0);
    atomic_store(&churn_stop, true);
    CHECK(async_await_all(fs, n + 1, NULL, NULL) == 0);
    free(fs);
    fclose(out);
}

/* ---- the pool grown from every worker at once, read by dumps and stats meanwhile ----------
 * Pool threads are created outside the pool's mutex (pool.c): submitters on
 * every worker claim slots and create threads side by side while the dumps
 * and stats read the pool. */

static intptr_t pool_job(void *arg) {
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
    return (intptr_t)arg;
}

static intptr_t pool_submitter(void *arg) {
    (void)arg;
    async_future_t *f[4];
    for (intptr_t i = 0; i < 4; i++) f[i] = async_spawn_blocking(pool_job, (void *)i);
    for (intptr_t i = 0; i < 4; i++) CHECK(async_await(f[i]) == i);
    return 0;
}

static void pool_grows_from_every_worker(void) {
    FILE *out = fopen("/dev/null", "w");
    CHECK(out != NULL);
    if (!out) return;
    unsigned n = 4 * nworkers();
    async_future_t **fs = calloc(n, sizeof *fs);
    CHECK(fs != NULL);
    if (!fs) {
        fclose(out);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        async_spawn_opts_t o = {.worker = i % nworkers() + 1};
        fs[i] = async_spawn_opts(pool_submitter, NULL, &o);
    }
    async_runtime_stats_t st;
    for (int i = 0; i < 5; i++) {
        CHECK(async_dump(out) == 0);
        CHECK(async_runtime_stats(&st, NULL, 0) == 0);
    }
    CHECK(async_await_all(fs, n, NULL, NULL) == 0);
    CHECK(async_runtime_stats(&st, NULL, 0) == 0 && st.pool.threads >= 1 && st.pool.threads <= 64);
    free(fs);
    fclose(out);
}

int main(int argc, char **argv) {
    static const stress_scenario_t scenarios[] = {
        {"cross_worker_wakeups", cross_worker_wakeups},
        {"threads_settle_futures", threads_settle_futures},
        {"cancel_races", cancel_races},
        {"group_across_workers", group_across_workers},
        {"stealing", stealing_and_timeouts},
        {"pool_grows_from_every_worker", pool_grows_from_every_worker},
        {"dumps_while_running", dumps_while_running},
        {"shutdown_with_pending_work", shutdown_with_pending_work},
    };
    return stress_main(argc, argv, scenarios, sizeof scenarios / sizeof *scenarios,
                       STRESS_SHARED_RUNTIME);
}
