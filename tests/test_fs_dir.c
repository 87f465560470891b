/* Tests of the directory calls (opendir, readdir, scandir, ...), the tree
 * walk and the whole-file and tree helpers of fs.h. */
#include "fs_helpers.h"

#include <dirent.h>

/* glibc's answer to closedir(NULL), which its header declares nonnull: asked
 * on purpose (no warning, no UBSan report), since the async call must give it */
#pragma GCC diagnostic ignored "-Wnonnull"
__attribute__((no_sanitize("nonnull-attribute"))) static int glibc_closedir_null(void) {
    errno = 0;
    return closedir(NULL) == -1 ? errno : 0;
}

TestSuite(fs_dir, .init = fs_init, .fini = fs_fini, .timeout = 30);

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(fs_dir, readdir_lists_everything) {
    mkdir(P("d"), 0755);
    enum { N = 2000 }; /* more than one batch */
    for (int i = 0; i < N; i++) {
        char n[32];
        snprintf(n, sizeof n, "d/file-with-a-longish-name-%04d", i);
        close(open(P(n), O_CREAT | O_WRONLY, 0644));
    }
    async_dir_t *d = async_await_ptr(async_opendir(P("d")));
    cr_assert_not_null(d);
    cr_assert_geq(async_dirfd(d), 0);
    int count = 0, dots = 0;
    bool seen[N] = {0};
    for (;;) {
        errno = 0;
        struct dirent *e = async_await_ptr(async_readdir(d));
        if (!e) {
            cr_assert_eq(errno, 0, "end, not an error");
            break;
        }
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) {
            dots++;
            continue;
        }
        int i = atoi(e->d_name + strlen("file-with-a-longish-name-"));
        cr_assert(!seen[i]);
        seen[i] = true;
        cr_assert_eq(e->d_type, DT_REG);
        count++;
    }
    cr_assert_eq(count, N);
    cr_assert_eq(dots, 2);
    errno = 0;
    cr_assert_null(async_await_ptr(async_readdir(d)), "stays at the end");
    async_rewinddir(d);
    cr_assert_not_null(async_await_ptr(async_readdir(d)));
    ASSERT_VAL(async_await(async_closedir(d)), 0);
    rt_stop();
}

Test(fs_dir, dir_bad_input) {
    make_file("f", 1);
    ASSERT_NULL_ERR(async_await_ptr(async_opendir(P("none"))), ENOENT);
    ASSERT_NULL_ERR(async_await_ptr(async_opendir(P("f"))), ENOTDIR);
    ASSERT_NULL_ERR(async_await_ptr(async_opendir(NULL)), EFAULT);
    ASSERT_NULL_ERR(async_await_ptr(async_readdir(NULL)), EBADF);
    int glibc_err = glibc_closedir_null();
    cr_assert_neq(glibc_err, 0);
    ASSERT_ERR(async_await(async_closedir(NULL)), glibc_err);
    ASSERT_ERR(async_dirfd(NULL), EINVAL);
    async_rewinddir(NULL);
    ASSERT_NULL_ERR(async_fdopendir(-1), EBADF);
    int fd = open(P("f"), O_RDONLY);
    ASSERT_NULL_ERR(async_fdopendir(fd), ENOTDIR);
    close(fd);
    cr_assert_eq(seteuid(65534), 0);
    mkdir(P("locked"), 0700);
    cr_assert_eq(seteuid(0), 0);
    mkdir(P("locked"), 0700);
    cr_assert_eq(seteuid(65534), 0);
    ASSERT_NULL_ERR(async_await_ptr(async_opendir(P("locked"))), EACCES);
    cr_assert_eq(seteuid(0), 0);
    rt_stop();
}

Test(fs_dir, fdopendir_and_removed_dir) {
    mkdir(P("e"), 0755);
    make_file("e/one", 1);
    int fd = open(P("e"), O_RDONLY | O_DIRECTORY);
    async_dir_t *d = async_fdopendir(fd);
    cr_assert_not_null(d);
    cr_assert_eq(async_dirfd(d), fd);
    int n = 0;
    errno = 0;
    while (async_await_ptr(async_readdir(d))) n++;
    cr_assert_eq(errno, 0);
    cr_assert_eq(n, 3);
    ASSERT_VAL(async_await(async_closedir(d)), 0);
    cr_assert_eq(fcntl(fd, F_GETFD), -1, "closedir closed the fd");
    rt_stop();
}

/* A directory removed after it was opened ends cleanly, as glibc's readdir
 * takes the kernel's ENOENT for the end (glibc lists nothing here; our
 * opendir read "." and ".." with the open, before the removal). */
Test(fs_dir, removed_dir_ends_cleanly) {
    cr_assert_eq(mkdir(P("gone"), 0755), 0);
    DIR *g = opendir(P("gone"));
    async_dir_t *d = async_await_ptr(async_opendir(P("gone")));
    int fd = open(P("gone"), O_RDONLY | O_DIRECTORY);
    async_dir_t *dfd = async_fdopendir(fd);
    cr_assert(g && d && dfd);
    cr_assert_eq(rmdir(P("gone")), 0);
    errno = 0;
    int gn = 0;
    while (readdir(g)) gn++;
    cr_assert_eq(errno, 0, "glibc: %s", ename(errno));
    struct dirent *e;
    int n = 0;
    errno = 0;
    while ((e = async_await_ptr(async_readdir(d)))) {
        cr_assert(!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."), "%s", e->d_name);
        n++;
    }
    cr_assert_eq(errno, 0, "readdir of a removed directory: %s", ename(errno));
    cr_assert_leq(n, 2);
    errno = 0;
    cr_assert_null(async_await_ptr(async_readdir(dfd))); /* read nothing before: as glibc */
    cr_assert_eq(errno, 0, "%s", ename(errno));
    async_rewinddir(dfd);
    errno = 0;
    cr_assert_null(async_await_ptr(async_readdir(dfd)));
    cr_assert_eq(errno, 0, "%s", ename(errno));
    cr_assert_eq(gn, 0);
    closedir(g);
    ASSERT_VAL(async_await(async_closedir(d)), 0);
    ASSERT_VAL(async_await(async_closedir(dfd)), 0);
    rt_stop();
}

static int only_x(const struct dirent *e) { return e->d_name[0] == 'x'; }

Test(fs_dir, scandir_matches_libc) {
    mkdir(P("s"), 0755);
    const char *names[] = {"xb", "xa", "y", "xc"};
    for (int i = 0; i < 4; i++) {
        char n[16];
        snprintf(n, sizeof n, "s/%s", names[i]);
        make_file(n, 1);
    }
    struct dirent **a, **b;
    int na = scandir(P("s"), &a, only_x, alphasort);
    ASSERT_VAL(async_await(async_scandir(P("s"), &b, only_x, alphasort)), na);
    cr_assert_eq(na, 3);
    for (int i = 0; i < na; i++) {
        cr_assert_str_eq(a[i]->d_name, b[i]->d_name);
        free(a[i]);
        free(b[i]);
    }
    free(a);
    free(b);
    ASSERT_VAL(async_await(async_scandir(P("s"), &b, NULL, NULL)), 6);
    for (int i = 0; i < 6; i++) free(b[i]);
    free(b);
    SAME(scandir(P("none"), &a, NULL, NULL), async_scandir(P("none"), &b, NULL, NULL));
    ASSERT_ERR(async_await(async_scandir(NULL, &b, NULL, NULL)), EFAULT);
    ASSERT_ERR(async_await(async_scandir(P("s"), NULL, NULL, NULL)), EFAULT);
    rt_stop();
}

/* telldir and seekdir give glibc's positions, and a seek replays the same
 * entries, also across a buffer's refill (3,000 entries need several). */
Test(fs_dir, telldir_seekdir_match_libc, .timeout = 60) {
    mkdir(P("t"), 0755);
    enum { N = 3000 };
    for (int i = 0; i < N; i++) {
        char n[32];
        snprintf(n, sizeof n, "t/entry-with-a-long-name-%04d", i);
        make_file(n, 0);
    }
    DIR *g = opendir(P("t"));
    async_dir_t *d = async_await_ptr(async_opendir(P("t")));
    cr_assert_not_null(g);
    cr_assert_not_null(d);
    cr_assert_eq(async_telldir(d), telldir(g), "at the start");
    long marks[4], gmarks[4];
    char names[4][256];
    int seen = 0;
    for (;;) {
        struct dirent *ge = readdir(g);
        struct dirent *e = async_await_ptr(async_readdir(d));
        cr_assert_eq(e == NULL, ge == NULL);
        if (!e) break;
        cr_assert_str_eq(e->d_name, ge->d_name);
        cr_assert_eq(async_telldir(d), telldir(g), "after %s", e->d_name);
        if (seen == 7 || seen == 1500 || seen == 2999 || seen == 100) {
            int k = seen == 7 ? 0 : seen == 100 ? 1 : seen == 1500 ? 2 : 3;
            marks[k] = async_telldir(d);
            gmarks[k] = telldir(g);
            struct dirent *next = readdir(g);
            snprintf(names[k], sizeof names[k], "%s", next ? next->d_name : "");
            seekdir(g, gmarks[k]);
        }
        seen++;
    }
    cr_assert_eq(seen, N + 2);
    for (int k = 3; k >= 0; k--) { /* backwards, so each seek goes back over refills */
        async_seekdir(d, marks[k]);
        seekdir(g, gmarks[k]);
        struct dirent *e = async_await_ptr(async_readdir(d));
        struct dirent *ge = readdir(g);
        cr_assert_eq(e == NULL, ge == NULL);
        if (e) {
            cr_assert_str_eq(e->d_name, names[k]);
            cr_assert_str_eq(ge->d_name, names[k]);
        }
    }
    async_rewinddir(d);
    cr_assert_eq(async_telldir(d), 0);
    cr_assert_str_eq(((struct dirent *)async_await_ptr(async_readdir(d)))->d_name,
                     (rewinddir(g), readdir(g))->d_name);
    errno = 0;
    cr_assert_eq(async_telldir(NULL), -1);
    cr_assert_eq(errno, EBADF);
    closedir(g);
    ASSERT_VAL(async_await(async_closedir(d)), 0);
    rt_stop();
}

/* ---- walk ------------------------------------------------------------------------------- */

static void make_tree(void) {
    mkdir(P("t"), 0755);
    mkdir(P("t/a"), 0755);
    mkdir(P("t/a/deep"), 0755);
    mkdir(P("t/b"), 0755);
    make_file("t/f1", 1);
    make_file("t/a/f2", 2);
    make_file("t/a/deep/f3", 3);
    symlink("a", P("t/link"));
}

Test(fs_dir, walk_preorder_and_post) {
    make_tree();
    async_walk_t *w = async_walk_open(P("t"), ASYNC_WALK_POST);
    cr_assert_not_null(w);
    char *seen[32];
    int n = 0, posts = 0;
    for (;;) {
        errno = 0;
        async_walk_entry_t *e = async_await_ptr(async_walk_next(w));
        if (!e) {
            cr_assert_eq(errno, 0);
            break;
        }
        cr_assert_eq(e->error, 0);
        cr_assert_lt(n, 32);
        const char *rel = e->path + strlen(scratch) + 1;
        char buf[128];
        snprintf(buf, sizeof buf, "%s%s:%d:%d", e->post ? "post " : "", rel, e->type, e->depth);
        seen[n++] = strdup(buf);
        if (e->post) posts++;
        if (!e->post && e->type == DT_DIR && strcmp(e->path, P("t"))) {
            /* a directory comes before its contents */
            cr_assert_str_eq(e->name, strrchr(e->path, '/') + 1);
        }
    }
    async_walk_close(w);
    cr_assert_eq(posts, 4, "t, a, deep and b come again after their contents");
    cr_assert_eq(n, 8 + 4);
    cr_assert_str_eq(seen[0], "t:4:0");
    cr_assert_str_eq(seen[n - 1], "post t:4:0");
    qsort(seen, (size_t)n, sizeof *seen, cmp_str);
    const char *want[] = {"post t/a/deep:4:2", "post t/a:4:1", "post t/b:4:1", "post t:4:0",
                          "t/a/deep/f3:8:3",   "t/a/deep:4:2", "t/a/f2:8:2",   "t/a:4:1",
                          "t/b:4:1",           "t/f1:8:1",     "t/link:10:1",  "t:4:0"};
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(seen[i], want[i]);
        free(seen[i]);
    }
    rt_stop();
}

Test(fs_dir, walk_follow_skip_and_errors) {
    make_tree();
    async_walk_t *w = async_walk_open(P("t"), ASYNC_WALK_FOLLOW);
    int files = 0;
    async_walk_entry_t *e;
    while ((e = async_await_ptr(async_walk_next(w)))) {
        if (e->type == DT_REG) files++;
        if (!strcmp(e->name, "b")) ASSERT_VAL(async_walk_skip(w), 0);
        if (e->type == DT_REG) ASSERT_ERR(async_walk_skip(w), EINVAL);
    }
    async_walk_close(w);
    cr_assert_eq(files, 3 + 2, "through the link, a's two files again");
    w = async_walk_open(P("none"), 0);
    ASSERT_NULL_ERR(async_await_ptr(async_walk_next(w)), ENOENT);
    errno = 0;
    cr_assert_null(async_await_ptr(async_walk_next(w)));
    cr_assert_eq(errno, 0);
    async_walk_close(w);
    w = async_walk_open(P("t/f1"), 0);
    e = async_await_ptr(async_walk_next(w));
    cr_assert(e && e->type == DT_REG && e->depth == 0);
    cr_assert_null(async_await_ptr(async_walk_next(w)));
    async_walk_close(w);
    ASSERT_NULL_ERR(async_walk_open(NULL, 0), EINVAL);
    ASSERT_NULL_ERR(async_walk_open(P("t"), 64), EINVAL);
    ASSERT_NULL_ERR(async_await_ptr(async_walk_next(NULL)), EINVAL);
    ASSERT_ERR(async_walk_skip(NULL), EINVAL);
    async_walk_close(NULL);
    /* an unreadable directory is reported with its error and the walk goes on */
    mkdir(P("t/locked"), 0700);
    make_file("t/locked/x", 1);
    cr_assert_eq(seteuid(65534), 0);
    w = async_walk_open(P("t"), 0);
    int errs = 0, n = 0;
    while ((e = async_await_ptr(async_walk_next(w)))) {
        n++;
        if (e->error) {
            errs++;
            cr_assert_eq(e->error, EACCES);
            cr_assert_str_eq(e->name, "locked");
        }
    }
    async_walk_close(w);
    cr_assert_eq(seteuid(0), 0);
    cr_assert_eq(errs, 1);
    cr_assert_eq(n, 9); /* the tree's 8 and locked, not entered */
    rt_stop();
}

/* ---- calls cancelled while queued ------------------------------------------------------------
 * A suite of their own: they start the runtime with a small pool, which the
 * fs_dir suite's init has already started with the defaults. */

/* A readdir whose refill is cancelled before a thread takes it leaves the
 * stream free: the next call reads, where it used to say EBUSY for ever. */
Test(fs_dir_queued, readdir_cancelled, .init = scratch_make, .fini = scratch_remove,
     .timeout = 30) {
    mkdir(P("d"), 0755);
    make_file("d/one", 1);
    small_pool_init();
    held_pool_t held;
    pool_hold(&held);
    /* over an fd, nothing is read yet: the first readdir goes to the pool */
    async_dir_t *d = async_fdopendir(open(P("d"), O_RDONLY | O_DIRECTORY));
    cr_assert_not_null(d);
    async_future_t *queued = async_readdir(d);
    sleep_ms(20);
    cr_assert_eq(async_future_settled(queued), 0, "no thread is free for it");
    async_cancel(queued);
    ASSERT_NULL_ERR(async_await_ptr(queued), ECANCELED);
    async_future_t *next = async_readdir(d); /* queued too, until the pool is let go */
    pool_release(&held);
    int names = 0;
    errno = 0;
    for (struct dirent *e = async_await_ptr(next); e; e = async_await_ptr(async_readdir(d)))
        names++;
    cr_assert_eq(errno, 0, "the end, not %s", ename(errno));
    cr_assert_eq(names, 3, "., .. and one");
    ASSERT_VAL(async_await(async_closedir(d)), 0);
    rt_stop();
}

/* The same for a walk's step. */
Test(fs_dir_queued, walk_cancelled, .init = scratch_make, .fini = scratch_remove, .timeout = 30) {
    mkdir(P("d"), 0755);
    make_file("d/one", 1);
    small_pool_init();
    held_pool_t held;
    pool_hold(&held);
    async_walk_t *w = async_walk_open(P("d"), 0);
    cr_assert_not_null(w);
    async_future_t *queued = async_walk_next(w); /* the root's stat needs the pool */
    sleep_ms(20);
    cr_assert_eq(async_future_settled(queued), 0, "no thread is free for it");
    async_cancel(queued);
    ASSERT_NULL_ERR(async_await_ptr(queued), ECANCELED);
    async_future_t *next = async_walk_next(w);
    pool_release(&held);
    int n = 0;
    errno = 0;
    for (async_walk_entry_t *e = async_await_ptr(next); e; e = async_await_ptr(async_walk_next(w)))
        n++;
    cr_assert_eq(errno, 0, "the end, not %s", ename(errno));
    cr_assert_eq(n, 2, "d and d/one");
    async_walk_close(w);
    rt_stop();
}

/* ---- whole-file helpers ------------------------------------------------------------------ */

Test(fs_dir, readfile_writefile) {
    char p[512];
    snprintf(p, sizeof p, "%s", make_file("rf", 100000));
    size_t len = 0;
    char *buf = async_await_ptr(async_readfile(p, &len));
    cr_assert_not_null(buf);
    cr_assert_eq(len, 100000);
    cr_assert_eq(buf[len], 0);
    cr_assert_eq(buf[27], 'b');
    free(buf);
    buf = async_await_ptr(async_readfile("/proc/self/status", &len));
    cr_assert(buf && len > 0 && strstr(buf, "Name:"));
    free(buf);
    ASSERT_VAL(async_await(async_writefile(P("wf"), "new contents", 12, 0600)), 0);
    buf = async_await_ptr(async_readfile(P("wf"), NULL));
    cr_assert_str_eq(buf, "new contents");
    free(buf);
    struct stat st;
    stat(P("wf"), &st);
    cr_assert_eq(st.st_mode & 0777, 0600);
    ASSERT_VAL(async_await(async_writefile(P("wf"), "x", 1, 0600)), 0); /* replaces */
    stat(P("wf"), &st);
    cr_assert_eq(st.st_size, 1);
    ASSERT_VAL(async_await(async_writefile(P("empty"), NULL, 0, 0644)), 0);
    ASSERT_NULL_ERR(async_await_ptr(async_readfile(P("none"), &len)), ENOENT);
    ASSERT_NULL_ERR(async_await_ptr(async_readfile(scratch, &len)), EISDIR);
    ASSERT_NULL_ERR(async_await_ptr(async_readfile(NULL, &len)), EFAULT);
    ASSERT_ERR(async_await(async_writefile(P("no/wf"), "x", 1, 0644)), ENOENT);
    mkdir(P("adir"), 0755);
    ASSERT_ERR(async_await(async_writefile(P("adir"), "x", 1, 0644)), EISDIR);
    ASSERT_ERR(async_await(async_writefile(NULL, "x", 1, 0644)), EFAULT);
    ASSERT_ERR(async_await(async_writefile(P("wf"), NULL, 1, 0644)), EFAULT);
    /* no temporary file is left behind */
    int n = 0;
    DIR *d = opendir(scratch);
    struct dirent *e;
    while ((e = readdir(d))) n += strstr(e->d_name, ".tmp-") != NULL;
    closedir(d);
    cr_assert_eq(n, 0);
    rt_stop();
}

Test(fs_dir, copyfile) {
    char src[512];
    snprintf(src, sizeof src, "%s", make_file("cs", 3 * 1024 * 1024 + 5));
    chmod(src, 0751);
    ASSERT_VAL(async_await(async_copyfile(src, P("cd"))), 3 * 1024 * 1024 + 5);
    size_t a, b;
    char *x = async_await_ptr(async_readfile(src, &a)),
         *y = async_await_ptr(async_readfile(P("cd"), &b));
    cr_assert(a == b && memcmp(x, y, a) == 0);
    free(x);
    free(y);
    struct stat st;
    stat(P("cd"), &st);
    cr_assert_eq(st.st_mode & 07777, 0751);
    /* a /proc file says its size is 0: the copy must still read it to the end */
    char *v = async_await_ptr(async_readfile("/proc/version", &a));
    cr_assert_not_null(v);
    ASSERT_VAL(async_await(async_copyfile("/proc/version", P("proc"))), a);
    char *w = async_await_ptr(async_readfile(P("proc"), &b));
    cr_assert(a == b && memcmp(v, w, a) == 0);
    free(v);
    free(w);
    ASSERT_ERR(async_await(async_copyfile(P("none"), P("x"))), ENOENT);
    ASSERT_ERR(async_await(async_copyfile(scratch, P("x"))), EISDIR);
    ASSERT_ERR(async_await(async_copyfile(src, P("no/x"))), ENOENT);
    ASSERT_ERR(async_await(async_copyfile(NULL, P("x"))), EFAULT);
    ASSERT_ERR(async_await(async_copyfile(src, NULL)), EFAULT);
    cr_assert_neq(access(P("x"), F_OK), 0);
    rt_stop();
}

Test(fs_dir, mkdir_p_and_rmtree) {
    char *failed = (char *)1;
    ASSERT_VAL(async_await(async_mkdir_p(P("m/n//o/p"), 0755, &failed)), 0);
    cr_assert_null(failed);
    struct stat st;
    cr_assert_eq(stat(P("m/n/o/p"), &st), 0);
    ASSERT_VAL(async_await(async_mkdir_p(P("m/n/o/p"), 0755, NULL)), 0); /* exists: fine */
    ASSERT_VAL(async_await(async_mkdir_p(P("m/n/o/p/"), 0755, NULL)), 0);
    make_file("m/file", 1);
    ASSERT_ERR(async_await(async_mkdir_p(P("m/file"), 0755, &failed)), EEXIST);
    cr_assert_str_eq(failed, P("m/file"));
    free(failed);
    ASSERT_ERR(async_await(async_mkdir_p(P("m/file/sub/x"), 0755, &failed)), ENOTDIR);
    cr_assert_str_eq(failed, P("m/file/sub"));
    free(failed);
    ASSERT_ERR(async_await(async_mkdir_p("", 0755, NULL)), ENOENT);
    ASSERT_ERR(async_await(async_mkdir_p(NULL, 0755, NULL)), EFAULT);
    make_tree();
    symlink(P("m"), P("t/a/outside"));
    ASSERT_VAL(async_await(async_rmtree(P("t"), &failed)), 0);
    cr_assert_null(failed);
    cr_assert_neq(lstat(P("t"), &st), 0);
    cr_assert_eq(stat(P("m/n/o/p"), &st), 0, "links are removed, not followed");
    ASSERT_VAL(async_await(async_rmtree(P("m/file"), NULL)), 0);
    ASSERT_ERR(async_await(async_rmtree(P("none"), &failed)), ENOENT);
    cr_assert_str_eq(failed, P("none"));
    free(failed);
    ASSERT_ERR(async_await(async_rmtree(NULL, NULL)), EFAULT);
    /* a failure names its path */
    mkdir(P("r"), 0755);
    mkdir(P("r/keep"), 0755);
    make_file("r/keep/x", 1);
    chmod(P("r/keep"), 0555);
    cr_assert_eq(seteuid(65534), 0);
    ASSERT_ERR(async_await(async_rmtree(P("r"), &failed)), EACCES);
    cr_assert_eq(seteuid(0), 0);
    cr_assert_str_eq(failed, P("r/keep/x"));
    free(failed);
    rt_stop();
}

Test(fs_dir, rmtree_cancelled) {
    mkdir(P("big"), 0755);
    for (int i = 0; i < 3000; i++) {
        char n[32];
        snprintf(n, sizeof n, "big/%d", i);
        close(open(P(n), O_CREAT | O_WRONLY, 0644));
    }
    async_future_t *f = async_rmtree(P("big"), NULL);
    async_cancel(f);
    errno = 0;
    intptr_t r = async_await(f);
    cr_assert(r == -1 && errno == ECANCELED, "got %jd/%s", (intmax_t)r, ename(errno));
    struct stat st;
    cr_assert_eq(stat(P("big"), &st), 0, "stopped before the end");
    rt_stop();
}
