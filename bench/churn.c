/* churn: a connection-churning load client for an echo server, for bench/soak.sh.
 *
 *     churn HOST PORT SECONDS [THREADS]     (default 4 threads)
 *
 * Each thread opens one connection after another, each for one line, and ends
 * it one of four ways in turn: read the echo and close; shutdown(SHUT_WR) and
 * read the echo and EOF; the same with the line and FIN in one segment
 * (TCP_CORK); send half a line and reset (SO_LINGER 0). Every wait has a 2 s
 * limit. Every second it prints "t=... conns=... failed=..." on stdout; at the end
 * the totals by outcome. Exits 1 if any connection failed. Plain sockets and
 * threads: the server alone is under test. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ECHO_CLOSE, HALF_CLOSE, DATA_FIN, RESET, KINDS };
static const char *kind_names[KINDS] = {"echo+close", "half-close", "data+fin", "reset"};

static struct sockaddr_in server;
static atomic_long done[KINDS], failed[KINDS], connect_failed;
static atomic_bool stop;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads until `want` bytes, then (if `eof`) until EOF; 0 if the bytes equal `line`. */
static int expect(int fd, const char *line, size_t want, int eof) {
    char buf[128];
    size_t got = 0;
    long long end = now_ms() + 2000;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        long long left = end - now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) != 1) return -1;
        ssize_t r = recv(fd, buf + got, sizeof buf - got, 0);
        if (r < 0) return -1;
        if (r == 0) return eof && got == want && !memcmp(buf, line, want) ? 0 : -1;
        got += (size_t)r;
        if (got > want) return -1;
        if (got == want && !eof) return memcmp(buf, line, want) ? -1 : 0;
    }
}

static int one(int kind, long n) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {2, 0}; /* connect and send: a full backlog or buffer never hangs us */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&server, sizeof server) < 0) {
        close(fd);
        atomic_fetch_add(&connect_failed, 1);
        return -1;
    }
    char line[64];
    int len = snprintf(line, sizeof line, "churn connection %ld, kind %d\n", n, kind);
    int r = 0;
    if (kind == DATA_FIN) {
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
    }
    if (kind == RESET) len /= 2;
    if (send(fd, line, (size_t)len, MSG_NOSIGNAL) != len) r = -1;
    if (r == 0 && (kind == HALF_CLOSE || kind == DATA_FIN)) shutdown(fd, SHUT_WR);
    if (r == 0 && kind != RESET) r = expect(fd, line, (size_t)len, kind != ECHO_CLOSE);
    if (kind == RESET) {
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(fd);
    return r;
}

static void *worker(void *arg) {
    long n = (long)(intptr_t)arg * 1000000000L;
    while (!atomic_load(&stop)) {
        int kind = (int)(n % KINDS);
        if (one(kind, n) == 0)
            atomic_fetch_add(&done[kind], 1);
        else
            atomic_fetch_add(&failed[kind], 1);
        n++;
    }
    return NULL;
}

static long total(atomic_long *a) {
    long t = 0;
    for (int k = 0; k < KINDS; k++) t += atomic_load(&a[k]);
    return t;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s HOST PORT SECONDS [THREADS]\n", argv[0]);
        return 2;
    }
    server.sin_family = AF_INET;
    server.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) {
        fprintf(stderr, "churn: HOST must be an IPv4 address\n");
        return 2;
    }
    int seconds = atoi(argv[3]), nthreads = argc > 4 ? atoi(argv[4]) : 4;
    if (nthreads < 1 || nthreads > 64) nthreads = 4;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t tids[64];
    for (int i = 0; i < nthreads; i++) pthread_create(&tids[i], NULL, worker, (void *)(intptr_t)i);
    long long start = now_ms(), end = start + (long long)seconds * 1000;
    while (now_ms() < end) {
        long long ms = end - now_ms() < 1000 ? end - now_ms() : 1000;
        struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
        printf("t=%llds conns=%ld failed=%ld\n", (now_ms() - start) / 1000, total(done),
               total(failed));
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < nthreads; i++) pthread_join(tids[i], NULL);
    long ok = total(done), bad = total(failed);
    printf("churn: %ld connections in %d s (%.0f/s), %ld failed (%ld could not connect):", ok + bad,
           seconds, (double)(ok + bad) / (seconds ? seconds : 1), bad,
           atomic_load(&connect_failed));
    for (int k = 0; k < KINDS; k++)
        printf(" %s %ld ok %ld failed;", kind_names[k], atomic_load(&done[k]),
               atomic_load(&failed[k]));
    printf("\n");
    return bad ? 1 : 0;
}
