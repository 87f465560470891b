/* What waiting on an fd with async_fd_wait / async_poll costs, next to the
 * library's own async_read on the same pipes: a byte bounced between two tasks
 * on one worker over two pipes, each side waiting for its byte one of three
 * ways. Also the call on an fd that is ready already (one poll(2), no wait).
 * Each figure is the best of ROUNDS runs (the machine is shared).
 *
 *   build/bench/asyncstd-fdwait [ROUNDS] */
#define _GNU_SOURCE
#include <asyncstd/asyncstd.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define TRIPS 100000
#define READY 1000000

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

enum { BY_READ, BY_FD_WAIT, BY_POLL };

struct side {
    int in, out, how;
};

static int get_byte(int fd, int how) {
    char c;
    if (how == BY_READ) return async_await(async_read(fd, &c, 1)) == 1 ? 0 : -1;
    for (;;) {
        if (read(fd, &c, 1) == 1) return 0;
        if (how == BY_FD_WAIT) {
            if (async_await(async_fd_wait(fd, POLLIN, -1)) <= 0) return -1;
        } else {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (async_await(async_poll(&p, 1, -1)) != 1) return -1;
        }
    }
}

static intptr_t bouncer(void *arg) {
    struct side *s = arg;
    for (int i = 0; i < TRIPS; i++) {
        if (write(s->out, "x", 1) != 1) return -1;
        if (get_byte(s->in, s->how) != 0) return -1;
    }
    return 0;
}

static intptr_t answerer(void *arg) {
    struct side *s = arg;
    for (int i = 0; i < TRIPS; i++) {
        if (get_byte(s->in, s->how) != 0) return -1;
        if (write(s->out, "y", 1) != 1) return -1;
    }
    return 0;
}

static double round_trip(int how) {
    int ab[2], ba[2];
    if (pipe2(ab, O_NONBLOCK) || pipe2(ba, O_NONBLOCK)) return -1;
    struct side a = {ba[0], ab[1], how}, b = {ab[0], ba[1], how};
    async_spawn_opts_t o = {.worker = 1};
    double t0 = now_ns();
    async_future_t *fb = async_spawn_opts(answerer, &b, &o);
    async_future_t *fa = async_spawn_opts(bouncer, &a, &o);
    int bad = async_await(fa) != 0 || async_await(fb) != 0;
    double ns = (now_ns() - t0) / TRIPS;
    close(ab[0]), close(ab[1]), close(ba[0]), close(ba[1]);
    return bad ? -1 : ns;
}

static intptr_t ready_calls(void *arg) {
    int p[2];
    if (pipe2(p, O_NONBLOCK)) return -1;
    double t0 = now_ns();
    for (int i = 0; i < READY; i++)
        if (async_await(async_fd_wait(p[1], POLLOUT, -1)) != POLLOUT) return -1;
    *(double *)arg = (now_ns() - t0) / READY;
    close(p[0]), close(p[1]);
    return 0;
}

static double best(double a, double b) { return a < b || b <= 0 ? a : b; }

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    async_config_t cfg = {.threads = 1};
    if (async_runtime_init(&cfg) != 0) return 1;
    double rd = 0, fw = 0, pl = 0, ready = 0;
    for (int r = 0; r < rounds; r++) {
        rd = best(round_trip(BY_READ), rd);
        fw = best(round_trip(BY_FD_WAIT), fw);
        pl = best(round_trip(BY_POLL), pl);
        double v = 0;
        async_spawn_opts_t o = {.worker = 1};
        if (async_await(async_spawn_opts(ready_calls, &v, &o)) == 0) ready = best(v, ready);
    }
    printf("pipe round trip, async_read            %8.1f ns\n", rd);
    printf("pipe round trip, read + async_fd_wait  %8.1f ns\n", fw);
    printf("pipe round trip, read + async_poll     %8.1f ns\n", pl);
    printf("async_fd_wait on a ready fd            %8.1f ns\n", ready);
    return async_runtime_shutdown();
}
