/* Cross-worker scenarios of the net module in plain C, for the TSan build
 * (Criterion cannot start under ThreadSanitizer; see stress.h). Run with
 * several workers, each scenario puts the two ends of a socket, a close and
 * its waiters, or a helper and its canceller on different threads.
 *
 * The last one sends hundreds of connections' ends (close, half-close, data and
 * FIN in one segment, reset) at parked readers.
 *
 *   stress_net [SCALE]   SCALE divides the iteration counts (default 1)
 *
 * Prints "N passed, M failed" and exits non-zero when any check failed. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "stress.h"


static async_future_t *spawn_on(async_task_fn fn, void *arg, unsigned worker) {
    async_spawn_opts_t o = {0};
    o.worker = worker;
    return async_spawn_opts(fn, arg, &o);
}

static unsigned other_worker(unsigned i) { return 1 + i % (unsigned)async_worker_count(); }

/* ---- 1. the two ends of many socket pairs on different workers --------------------------- */

typedef struct {
    int fd;
    int rounds;
} end_t;

static intptr_t pinger(void *arg) {
    end_t *e = arg;
    uint32_t v = 0;
    for (int i = 0; i < e->rounds; i++) {
        uint32_t got = 0;
        CHECK(async_await(async_send(e->fd, &v, sizeof v, 0)) == sizeof v);
        CHECK(async_await(async_recv(e->fd, &got, sizeof got, MSG_WAITALL)) == sizeof got);
        CHECK(got == v + 1);
        v = got + 1;
    }
    shutdown(e->fd, SHUT_WR);
    return 0;
}

static intptr_t ponger(void *arg) {
    end_t *e = arg;
    uint32_t got;
    while (async_await(async_recv(e->fd, &got, sizeof got, MSG_WAITALL)) == sizeof got) {
        got++;
        CHECK(async_await(async_send(e->fd, &got, sizeof got, 0)) == sizeof got);
    }
    return 0;
}

static void pairs_across_workers(void) {
    enum { PAIRS = 16 };
    end_t ends[PAIRS][2];
    async_future_t *f[2 * PAIRS];
    for (unsigned i = 0; i < PAIRS; i++) {
        int sv[2];
        CHECK(async_await(async_socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) == 0);
        ends[i][0] = (end_t){sv[0], 2000 / scale};
        ends[i][1] = (end_t){sv[1], 0};
        f[2 * i] = spawn_on(pinger, &ends[i][0], other_worker(i));
        f[2 * i + 1] = spawn_on(ponger, &ends[i][1], other_worker(i + 1));
    }
    CHECK(async_await_all(f, 2 * PAIRS, NULL, NULL) == 0);
    for (unsigned i = 0; i < PAIRS; i++) {
        async_await(async_close(ends[i][0].fd));
        async_await(async_close(ends[i][1].fd));
    }
}

/* ---- 2. closing an fd while tasks on every worker wait on it ------------------------------- */

static atomic_int started;

static intptr_t wait_recv(void *arg) {
    char b[8];
    atomic_fetch_add(&started, 1);
    errno = 0;
    intptr_t n = async_await(async_recv((int)(intptr_t)arg, b, sizeof b, 0));
    return n == -1 && errno == EBADF ? 0 : -1;
}

static void close_wakes_every_worker(void) {
    for (int round = 0; round < 200 / scale; round++) {
        int sv[2];
        CHECK(async_await(async_socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) == 0);
        async_future_t *f[8];
        atomic_store(&started, 0);
        for (unsigned i = 0; i < 8; i++)
            f[i] = spawn_on(wait_recv, (void *)(intptr_t)sv[1], other_worker(i));
        /* Close once every waiter has started its recv (parked, or about to): a recv
         * started concurrently with the close is a race of the caller's (see net.h). */
        while (atomic_load(&started) < 8) async_await(async_usleep(100));
        async_await(async_usleep(1000));
        CHECK(async_await(async_close(sv[1])) == 0);
        CHECK(async_await_all(f, 8, NULL, NULL) == 0);
        async_await(async_close(sv[0]));
    }
}

/* ---- 3. helpers cancelled from another thread while they connect ----------------------- */

static char port[8];

static void *cancel_soon(void *arg) {
    usleep((useconds_t)(rand() % 400));
    async_cancel(arg);
    return NULL;
}

static void helpers_cancelled_from_threads(void) {
    int lfd = (int)async_await(async_tcp_listen("127.0.0.1", "0", 0));
    CHECK(lfd >= 0);
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &len);
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    int ok = 0, cancelled = 0;
    for (int i = 0; i < 200 / scale; i++) {
        async_future_t *f = async_tcp_connect("127.0.0.1", port, 2000);
        pthread_t t;
        pthread_create(&t, NULL, cancel_soon, f);
        pthread_join(t, NULL); /* the owner may consume f only once nobody else uses it */
        errno = 0;
        int fd = (int)async_await(f);
        if (fd >= 0) {
            ok++;
            int c = (int)async_await(async_accept(lfd, NULL, NULL));
            CHECK(c >= 0);
            async_await(async_close(c));
            async_await(async_close(fd));
        } else {
            CHECK(errno == ECANCELED);
            cancelled++;
        }
    }
    /* connections cancelled after their handshake stay queued: closing the listener ends them */
    async_await(async_close(lfd));
    CHECK(ok + cancelled == 200 / scale);
}

/* ---- 4. plain threads sending to tasks, and DNS from every side ------------------------ */

static void *thread_sender(void *arg) {
    int fd = (int)(intptr_t)arg;
    for (int i = 0; i < 1000 / scale; i++) {
        uint32_t v = (uint32_t)i;
        CHECK(async_await(async_send(fd, &v, sizeof v, 0)) == sizeof v);
    }
    return NULL;
}

static intptr_t task_receiver(void *arg) {
    int fd = (int)(intptr_t)arg;
    for (int i = 0; i < 1000 / scale; i++) {
        uint32_t v;
        if (async_await(async_recv(fd, &v, sizeof v, MSG_WAITALL)) != sizeof v || v != (uint32_t)i)
            return -1;
        if (i % 50 == 0) {
            struct addrinfo *ai = NULL;
            CHECK(async_await(async_getaddrinfo("127.0.0.1", "80", NULL, &ai)) == 0);
            async_freeaddrinfo(ai);
        }
    }
    return 0;
}

static void threads_and_tasks(void) {
    int sv[2];
    CHECK(async_await(async_socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) == 0);
    async_future_t *r = async_spawn(task_receiver, (void *)(intptr_t)sv[1]);
    pthread_t t;
    pthread_create(&t, NULL, thread_sender, (void *)(intptr_t)sv[0]);
    pthread_join(t, NULL);
    CHECK(async_await(r) == 0);
    async_await(async_close(sv[0]));
    async_await(async_close(sv[1]));
}

/* ---- 5. every end of stream reaches its reader ----------------------------------------- */
/* An echo server (one task per connection) and two client threads whose
 * connections end four ways (close, half-close, data and FIN in one segment,
 * reset) after the server's readers have parked; every reader must end. */

static atomic_int eos_ended;

static intptr_t eos_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[512];
    intptr_t n;
    while ((n = async_await(async_recv(fd, buf, sizeof buf, 0))) > 0)
        if (async_await(async_send(fd, buf, (size_t)n, 0)) != n) break;
    CHECK(n == 0 || errno == ECONNRESET || errno == EPIPE);
    async_await(async_close(fd));
    atomic_fetch_add(&eos_ended, 1);
    return 0;
}

static intptr_t eos_acceptor(void *arg) {
    int lfd = (int)(intptr_t)arg;
    for (int i = 0; i < 400 / scale; i++) {
        intptr_t fd = async_await(async_accept(lfd, NULL, NULL));
        if (fd < 0) return -1;
        async_future_free(async_spawn(eos_conn, (void *)fd));
    }
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct eos_client {
    int port, first, count;
};

static void *eos_clients(void *arg) {
    struct eos_client *c = arg;
    int fds[200];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < c->count; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        CHECK(connect(fds[i], (struct sockaddr *)&a, sizeof a) == 0);
    }
    struct timespec pause = {0, 50 * 1000 * 1000}; /* the readers park */
    nanosleep(&pause, NULL);
    static const char line[] = "a line\n";
    int one = 1;
    struct linger rst = {1, 0};
    for (int i = 0; i < c->count; i++) {
        int fd = fds[i], how = (c->first + i) % 4;
        if (how == 2) setsockopt(fd, IPPROTO_TCP, TCP_CORK, &one, sizeof one);
        CHECK(send(fd, line, sizeof line - 1, MSG_NOSIGNAL) == sizeof line - 1);
        if (how == 0) close(fd);
        if (how == 1 || how == 2) shutdown(fd, SHUT_WR);
        if (how == 3) {
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof rst);
            close(fd);
        }
    }
    double deadline = now_s() + 10;
    for (int i = 0; i < c->count; i++) {
        int how = (c->first + i) % 4;
        if (how != 1 && how != 2) continue;
        char got[sizeof line] = {0};
        /* bounded, 10 s for all: a lost end would leave this waiting */
        long left_us = (long)((deadline - now_s()) * 1e6);
        struct timeval tv = {0, left_us > 1000 ? left_us : 1000};
        tv.tv_sec = tv.tv_usec / 1000000;
        tv.tv_usec %= 1000000;
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        CHECK(recv(fds[i], got, sizeof got, MSG_WAITALL) == sizeof line - 1); /* echo, then EOF */
        close(fds[i]);
    }
    return NULL;
}

static void end_of_stream_at_scale(void) {
    atomic_store(&eos_ended, 0);
    int lfd = (int)async_await(async_socket(AF_INET, SOCK_STREAM, 0));
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    CHECK(async_await(async_bind(lfd, (struct sockaddr *)&a, sizeof a)) == 0);
    CHECK(async_await(async_listen(lfd, 512)) == 0);
    CHECK(getsockname(lfd, (struct sockaddr *)&a, &len) == 0);
    async_future_t *acc = async_spawn(eos_acceptor, (void *)(intptr_t)lfd);
    int total = 400 / scale, half = total / 2;
    struct eos_client c[2] = {{ntohs(a.sin_port), 0, half},
                              {ntohs(a.sin_port), half, total - half}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, eos_clients, &c[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK(async_await(acc) == 0);
    for (int waited = 0; atomic_load(&eos_ended) < total && waited < 20000; waited += 10)
        async_await(async_usleep(10000));
    if (atomic_load(&eos_ended) != total)
        fprintf(stderr, "end_of_stream_at_scale: %d of %d readers ended\n", atomic_load(&eos_ended),
                total);
    CHECK(atomic_load(&eos_ended) == total);
    async_await(async_close(lfd));
}

int main(int argc, char **argv) {
    static const stress_scenario_t scenarios[] = {
        {"pairs_across_workers", pairs_across_workers},
        {"close_wakes_every_worker", close_wakes_every_worker},
        {"helpers_cancelled_from_threads", helpers_cancelled_from_threads},
        {"threads_and_tasks", threads_and_tasks},
        {"end_of_stream_at_scale", end_of_stream_at_scale},
    };
    return stress_main(argc, argv, scenarios, sizeof scenarios / sizeof *scenarios,
                       STRESS_SHARED_RUNTIME);
}
