/* The program tests/gdb_tasks.sh runs under gdb: two named tasks parked on a
 * timer and a channel, then a SIGTRAP that stops it in the debugger, which
 * lists the tasks and walks their stacks with tools/asyncstd-gdb.py. Run
 * alone, the SIGTRAP ends it. */
#include <asyncstd/asyncstd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

static atomic_int parked;
static async_chan_t *chan;

__attribute__((noinline)) static intptr_t sleep_in_task(void *arg) {
    (void)arg;
    atomic_fetch_add(&parked, 1);
    intptr_t r = async_await(async_sleep(600));
    return r + 1;
}

__attribute__((noinline)) static intptr_t read_in_task(void *arg) {
    (void)arg;
    int v;
    atomic_fetch_add(&parked, 1);
    intptr_t r = async_await(async_chan_recv(chan, &v));
    return r + 1;
}

int main(void) {
    chan = async_chan_new(sizeof(int), 0);
    if (!chan) return 1;
    async_spawn_opts_t a = {.name = "gdb_sleeper"}, b = {.name = "gdb_reader"};
    async_future_t *fa = async_spawn_opts(sleep_in_task, NULL, &a);
    async_future_t *fb = async_spawn_opts(read_in_task, NULL, &b);
    if (!fa || !fb) return 1;
    while (atomic_load(&parked) < 2) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    struct timespec ts = {0, 50000000}; /* from "about to await" to parked */
    nanosleep(&ts, NULL);
    raise(SIGTRAP);
    async_cancel(fa);
    async_chan_close(chan);
    async_await(fa);
    async_await(fb);
    async_chan_free(chan);
    return async_runtime_shutdown();
}
