/* What the file calls cost on a file whose data and name are cached: each
 * call awaited from a task against the same system call made on a plain
 * thread, and the sequence a file server makes per request (open, fstat, a
 * 1 KiB read, close). "first open" opens NAMES links to the file in turn,
 * eight times the names a worker's inline opens remember (src/fs/cached.c),
 * so that nearly every open is that thread's first of its name; "open, 1,000
 * names in turn" cycles over a file server's working set of WORKING_SET
 * links. Each figure
 * is the best of ROUNDS batches of N calls (the machine is shared; the
 * minimum is the least disturbed), and the thread's and the task's batches
 * of a case take turns, so that both see the same moments of a busy machine.
 * "the sequence's system calls" makes, bare, the system calls the library
 * makes for the sequence on a seen name (its checks included: docs/fs.md),
 * so that its ratio to the plain sequence is the floor no library overhead
 * is in. docs/fs.md has the results.
 *
 *   build/bench/asyncstd-filecalls [ROUNDS]   (default 20)
 */
#define _GNU_SOURCE
#include <asyncstd/asyncstd.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define N 2000
#define NAMES 32768
#define WORKING_SET 1000

static char path[256];
static char names_many[NAMES][64];
static unsigned next_first, next_working; /* the next name of each case, across batches */
static int sv[2]; /* sv[0] nonblocking: sendfile's destination; sv[1] drained */

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

enum { SEQ, SEQ_SYSCALLS, OPEN, FIRST_OPEN, WORKING_OPEN, FSTAT, PREAD, CLOSE, SENDFILE, NCASES };
static const char *names[NCASES] = {"open+fstat+read 1 KiB+close",
                                    "the sequence's system calls",
                                    "open (+ plain close)",
                                    "first open (+ plain close)",
                                    "open, 1,000 names in turn",
                                    "fstat",
                                    "pread 1 KiB",
                                    "close (of a plain open)",
                                    "sendfile 1 KiB to a socket"};

static void drain(void) {
    char b[1024];
    while (recv(sv[1], b, sizeof b, MSG_DONTWAIT) > 0) {
    }
}

/* The system calls async_open, async_fstat, async_read and async_close make
 * on a seen name of a local file (src/fs/cached.c, rw.c), with nothing of the
 * library around them: openat2 with RESOLVE_CACHED and O_NONBLOCK, the
 * statx that checks the type and the mount, F_SETFL to clear O_NONBLOCK; the
 * statx that answers fstat; a RWF_NOWAIT read; the statx that decides
 * whether the close may wait, and the close. */
static void seq_syscalls(char *buf, size_t len) {
    struct open_how how = {.flags = O_RDONLY | O_NONBLOCK, .resolve = RESOLVE_CACHED};
    struct statx sx;
    const int at = AT_EMPTY_PATH | AT_STATX_DONT_SYNC;
    const unsigned mnt = 0x4000U; /* STATX_MNT_ID_UNIQUE */
    int g = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    if (g < 0 || statx(g, "", at, STATX_TYPE | mnt, &sx) != 0 || fcntl(g, F_SETFL, 0) != 0 ||
        statx(g, "", at, STATX_BASIC_STATS | mnt, &sx) != 0 ||
        preadv2(g, &(struct iovec){buf, len}, 1, -1, RWF_NOWAIT) != (ssize_t)len ||
        statx(g, "", at, STATX_TYPE | mnt, &sx) != 0 || close(g) != 0)
        abort();
}

/* One case N times, with async calls when `task` is set, else plain ones. */
static double run_case(int c, bool task) {
    char buf[1024];
    struct stat st;
    int fd = open(path, O_RDONLY);
    if (fd < 0) abort();
    double t0 = now_ns();
    for (int i = 0; i < N; i++) {
        switch (c) {
        case SEQ: {
            int g = task ? (int)async_await(async_open(path, O_RDONLY)) : open(path, O_RDONLY);
            if (g < 0) abort();
            if ((task ? async_await(async_fstat(g, &st)) : fstat(g, &st)) != 0) abort();
            if ((task ? async_await(async_read(g, buf, sizeof buf)) : read(g, buf, sizeof buf)) !=
                sizeof buf)
                abort();
            if ((task ? async_await(async_close(g)) : close(g)) != 0) abort();
            break;
        }
        case SEQ_SYSCALLS:
            seq_syscalls(buf, sizeof buf);
            break;
        case OPEN: {
            int g = task ? (int)async_await(async_open(path, O_RDONLY)) : open(path, O_RDONLY);
            if (g < 0) abort();
            close(g);
            break;
        }
        case FIRST_OPEN:
        case WORKING_OPEN: {
            const char *p = c == FIRST_OPEN ? names_many[next_first++ % NAMES]
                                            : names_many[next_working++ % WORKING_SET];
            int g = task ? (int)async_await(async_open(p, O_RDONLY)) : open(p, O_RDONLY);
            if (g < 0) abort();
            close(g);
            break;
        }
        case FSTAT:
            if ((task ? async_await(async_fstat(fd, &st)) : fstat(fd, &st)) != 0) abort();
            break;
        case PREAD:
            if ((task ? async_await(async_pread(fd, buf, sizeof buf, 0))
                      : pread(fd, buf, sizeof buf, 0)) != sizeof buf)
                abort();
            break;
        case CLOSE: {
            int g = open(path, O_RDONLY);
            if ((task ? async_await(async_close(g)) : close(g)) != 0) abort();
            break;
        }
        case SENDFILE: {
            off_t off = 0;
            if ((task ? async_await(async_sendfile(sv[0], fd, &off, 1024))
                      : sendfile(sv[0], fd, &off, 1024)) != 1024)
                abort();
            drain();
            break;
        }
        }
    }
    double ns = (now_ns() - t0) / N;
    close(fd);
    return ns;
}

static double best[NCASES][2];

static intptr_t task_batch(void *arg) {
    int c = (int)(intptr_t)arg;
    double v = run_case(c, true);
    if (!best[c][1] || v < best[c][1]) best[c][1] = v;
    return 0;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    char dir[] = "/tmp/asyncstd-filecalls-XXXXXX";
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/file", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char data[4096];
    memset(data, 'x', sizeof data);
    if (fd < 0 || write(fd, data, sizeof data) != sizeof data) return 1;
    close(fd);
    for (int k = 0; k < NAMES; k++) {
        snprintf(names_many[k], sizeof names_many[k], "%s/f%05d", dir, k);
        if (link(path, names_many[k]) != 0) return 1;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    async_config_t cfg = {.threads = 1};
    if (async_runtime_init(&cfg) != 0) return 1;
    for (int r = 0; r < rounds; r++) {
        for (int c = 0; c < NCASES; c++) {
            double v = run_case(c, false);
            if (!best[c][0] || v < best[c][0]) best[c][0] = v;
            async_spawn_opts_t o = {.worker = 1};
            if (async_await(async_spawn_opts(task_batch, (void *)(intptr_t)c, &o)) != 0) return 1;
        }
    }
    printf("%-30s %10s %10s %7s\n", "call (cached file)", "thread ns", "task ns", "ratio");
    for (int c = 0; c < NCASES; c++)
        printf("%-30s %10.0f %10.0f %6.2fx\n", names[c], best[c][0], best[c][1],
               best[c][1] / best[c][0]);
    printf("the checks' floor: the sequence's system calls on a thread %.2fx the plain calls\n",
           best[SEQ_SYSCALLS][0] / best[SEQ][0]);
    unlink(path);
    for (int k = 0; k < NAMES; k++) unlink(names_many[k]);
    rmdir(dir);
    close(sv[0]);
    close(sv[1]);
    return async_runtime_shutdown();
}
