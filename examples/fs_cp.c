/* fs_cp: a parallel `cp -r` built on asyncstd's fs module.
 *
 *     fs_cp [-j JOBS] [--verify] SRC DST
 *
 * One task walks SRC (async_walk_*) and creates the directories and links as
 * it meets them; every regular file becomes its own copy task
 * (async_copyfile, which copies in the kernel where it can), with at most
 * JOBS copies at once (default 16). On a terminal, stderr shows a progress
 * line, rewritten in place. With --verify, the copy is read back and
 * compared. Exits 0 when everything was copied, 1 after reporting the first
 * failure with the path that failed. DST may exist (files in it are
 * overwritten). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <asyncstd/asyncstd.h>

typedef struct copy {
    char *from, *to;
} copy_t;

static long long copied_bytes, copied_files, total_files;
static int jobs = 16;
static const char *src_root, *dst_root;

static void progress(int final) {
    if (!isatty(2)) return;
    char line[128];
    int n = snprintf(line, sizeof line, "\r%lld/%lld files, %.1f MB%s", copied_files, total_files,
                     copied_bytes / 1e6, final ? "\n" : "");
    (void)async_await(async_write_all(2, line, (size_t)n));
}

static intptr_t copy_task(void *arg) {
    copy_t *c = arg;
    intptr_t n = async_await(async_copyfile(c->from, c->to));
    if (n < 0) fprintf(stderr, "\nfs_cp: %s -> %s: %s\n", c->from, c->to, strerror(errno));
    free(c->from);
    free(c->to);
    free(c);
    return n;
}

/* Waits for one of the running copies; -1 if it failed. */
static int reap(async_future_t **running, int *nrunning) {
    int i = async_await_any(running, (size_t)*nrunning);
    intptr_t n = async_await(running[i]);
    running[i] = running[--*nrunning];
    if (n < 0) return -1;
    copied_bytes += n;
    copied_files++;
    progress(0);
    return 0;
}

static char *dest_of(const char *path) {
    char *d;
    if (asprintf(&d, "%s%s", dst_root, path + strlen(src_root)) < 0) return NULL;
    return d;
}

static int copy_tree(void) {
    async_walk_t *w = async_walk_open(src_root, 0);
    if (!w) return -1;
    async_future_t **running = calloc((size_t)jobs, sizeof *running);
    int nrunning = 0, failed = 0;
    async_walk_entry_t *e;
    while (!failed) {
        errno = 0;
        if (!(e = async_await_ptr(async_walk_next(w)))) {
            if (errno) {
                fprintf(stderr, "\nfs_cp: %s: %s\n", src_root, strerror(errno));
                failed = 1;
            }
            break;
        }
        char *to = dest_of(e->path);
        if (!to) break;
        if (e->error) {
            fprintf(stderr, "\nfs_cp: %s: %s\n", e->path, strerror(e->error));
            failed = 1;
        } else if (e->type == DT_DIR) {
            struct stat st;
            mode_t mode = async_await(async_stat(e->path, &st)) == 0 ? st.st_mode & 07777 : 0755;
            if (async_await(async_mkdir(to, mode | 0700)) < 0 && errno != EEXIST) {
                fprintf(stderr, "\nfs_cp: mkdir %s: %s\n", to, strerror(errno));
                failed = 1;
            }
        } else if (e->type == DT_LNK) {
            char target[4096];
            intptr_t n = async_await(async_readlink(e->path, target, sizeof target - 1));
            if (n >= 0) {
                target[n] = 0;
                (void)async_await(async_unlink(to));
                n = async_await(async_symlink(target, to));
            }
            if (n < 0) {
                fprintf(stderr, "\nfs_cp: link %s: %s\n", to, strerror(errno));
                failed = 1;
            }
        } else if (e->type == DT_REG) {
            if (nrunning == jobs && reap(running, &nrunning) < 0) failed = 1;
            copy_t *c = malloc(sizeof *c);
            c->from = strdup(e->path);
            c->to = to;
            to = NULL;
            total_files++;
            running[nrunning++] = async_spawn(copy_task, c);
        }
        free(to);
    }
    while (nrunning)
        if (reap(running, &nrunning) < 0) failed = 1;
    progress(1);
    free(running);
    async_walk_close(w);
    return failed ? -1 : 0;
}

/* Reads every copied file back and compares it with its source. */
static int verify(void) {
    async_walk_t *w = async_walk_open(src_root, 0);
    async_walk_entry_t *e;
    int bad = 0;
    long files = 0;
    while ((e = async_await_ptr(async_walk_next(w)))) {
        if (e->type != DT_REG) continue;
        char *to = dest_of(e->path);
        size_t a, b;
        char *x = async_await_ptr(async_readfile(e->path, &a));
        char *y = async_await_ptr(async_readfile(to, &b));
        if (!x || !y || a != b || memcmp(x, y, a)) {
            fprintf(stderr, "fs_cp: %s differs from %s\n", to, e->path);
            bad = 1;
        }
        files++;
        free(x);
        free(y);
        free(to);
    }
    async_walk_close(w);
    if (!bad) printf("verified %ld files\n", files);
    return bad ? -1 : 0;
}

static int do_verify;

static intptr_t main_task(void *arg) {
    (void)arg;
    errno = 0;
    if (copy_tree() < 0) return -1;
    printf("copied %lld files, %lld bytes\n", copied_files, copied_bytes);
    return do_verify ? verify() : 0;
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-j") && i + 1 < argc)
            jobs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--verify"))
            do_verify = 1;
        else
            break;
    }
    if (argc - i != 2 || jobs < 1) {
        fprintf(stderr, "usage: %s [-j JOBS] [--verify] SRC DST\n", argv[0]);
        return 2;
    }
    src_root = argv[i];
    dst_root = argv[i + 1];
    intptr_t r = async_await(async_spawn(main_task, NULL));
    async_runtime_shutdown();
    return r == 0 ? 0 : 1;
}
