/* The buffered stream's fast path against glibc's stdio on the same file:
 * fgets of lines already in the buffer, fread and fwrite of small records.
 * Per call, best of ROUNDS (the machine is shared; the minimum is the least
 * disturbed). The file is in the page cache after the first round, so the
 * refills (one every 64 KiB) are cheap and the figure is the buffered call.
 *
 *   build/bench/asyncstd-stream [ROUNDS]
 */
#include <asyncstd/asyncstd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINES 200000
#define RECORD 16
#define RECORDS 400000

static char path[64];

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static double best(double a, double b) { return a < b || b <= 0 ? a : b; }

/* ---- glibc ----------------------------------------------------------------------------------- */

static double glibc_fgets(void) {
    FILE *f = fopen(path, "r");
    char line[128];
    long n = 0;
    double t0 = now_ns();
    while (fgets(line, sizeof line, f)) n++;
    double t = (now_ns() - t0) / n;
    fclose(f);
    return n == LINES ? t : -1;
}

static double glibc_fread(void) {
    FILE *f = fopen(path, "r");
    char rec[RECORD];
    long n = 0;
    double t0 = now_ns();
    while (fread(rec, RECORD, 1, f) == 1) n++;
    double t = (now_ns() - t0) / n;
    fclose(f);
    return t;
}

static double glibc_fwrite(const char *out) {
    FILE *f = fopen(out, "w");
    char rec[RECORD];
    memset(rec, 'r', sizeof rec);
    double t0 = now_ns();
    for (int i = 0; i < RECORDS; i++) fwrite(rec, RECORD, 1, f);
    fflush(f);
    double t = (now_ns() - t0) / RECORDS;
    fclose(f);
    return t;
}

/* ---- asyncstd, in a task --------------------------------------------------------------------- */

static intptr_t async_fgets_task(void *arg) {
    async_file_t *f = async_await_ptr(async_fopen(path, "r"));
    if (!f) return -1;
    char line[128];
    long n = 0;
    double t0 = now_ns();
    while (async_await_ptr(async_fgets(line, sizeof line, f))) n++;
    *(double *)arg = (now_ns() - t0) / n;
    async_await(async_fclose(f));
    return n == LINES ? 0 : -1;
}

static intptr_t async_fread_task(void *arg) {
    async_file_t *f = async_await_ptr(async_fopen(path, "r"));
    if (!f) return -1;
    char rec[RECORD];
    long n = 0;
    double t0 = now_ns();
    while (async_await(async_fread(rec, RECORD, 1, f)) == 1) n++;
    *(double *)arg = (now_ns() - t0) / n;
    async_await(async_fclose(f));
    return 0;
}

static intptr_t async_fwrite_task(void *arg) {
    char out[80];
    snprintf(out, sizeof out, "%s.out", path);
    async_file_t *f = async_await_ptr(async_fopen(out, "w"));
    if (!f) return -1;
    char rec[RECORD];
    memset(rec, 'r', sizeof rec);
    double t0 = now_ns();
    for (int i = 0; i < RECORDS; i++)
        if (async_await(async_fwrite(rec, RECORD, 1, f)) != 1) return -1;
    async_await(async_fflush(f));
    *(double *)arg = (now_ns() - t0) / RECORDS;
    async_await(async_fclose(f));
    return 0;
}

static double in_task(async_task_fn fn) {
    double t = -1;
    if (async_await(async_spawn(fn, &t)) != 0) return -1;
    return t;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    snprintf(path, sizeof path, "/tmp/asyncstd-stream-%d", (int)getpid());
    FILE *w = fopen(path, "w");
    for (int i = 0; i < LINES; i++) fprintf(w, "line %07d of the benchmark file, text\n", i);
    fclose(w);
    char out[80];
    snprintf(out, sizeof out, "%s.out", path);
    double gf = 0, af = 0, gr = 0, ar = 0, gw = 0, aw = 0;
    for (int r = 0; r < rounds; r++) { /* alternated, so both see the same machine */
        gf = best(glibc_fgets(), gf);
        af = best(in_task(async_fgets_task), af);
        gr = best(glibc_fread(), gr);
        ar = best(in_task(async_fread_task), ar);
        gw = best(glibc_fwrite(out), gw);
        aw = best(in_task(async_fwrite_task), aw);
    }
    printf("fgets, 41-byte lines:   glibc %6.1f ns  asyncstd %6.1f ns  (%.2fx)\n", gf, af, af / gf);
    printf("fread, 16-byte records: glibc %6.1f ns  asyncstd %6.1f ns  (%.2fx)\n", gr, ar, ar / gr);
    printf("fwrite, 16-byte records: glibc %6.1f ns  asyncstd %6.1f ns  (%.2fx)\n", gw, aw,
           aw / gw);
    unlink(path);
    unlink(out);
    async_runtime_shutdown();
    return 0;
}
