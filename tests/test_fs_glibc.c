/* The file calls of fs.h and dir.h named after libc calls, against glibc on
 * the same inputs, bad ones included. Each table row runs on two copies of
 * the same scratch tree (or two sets of fds made alike), one for glibc and one
 * for asyncstd, and after each row the result, errno, the fd number (the
 * lowest free one), the file descriptions opened, the bytes read, the file
 * offsets, what the pipes and sockets hold, and the whole tree (names, types,
 * modes, sizes, contents, link targets) must agree. Every table runs from a
 * plain thread and from a task, on names fresh to the thread and on names it
 * has opened before (src/fs/cached.c opens those in one walk), and the reads
 * once more on files whose pages were dropped (src/fs/rw.c then finishes on
 * the pool). close is compared in test_fs.c. */
#include "fs_helpers.h"
/* fs_helpers.h's SAME asserts, which must not run in a task: glibc_compare.h
 * has the check-based ones the tables use */
#undef SAME
#undef SAME_BAD
#include "glibc_compare.h"

#include <limits.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>

/* NULL and unmapped pointers are among the inputs compared, on purpose */
#pragma GCC diagnostic ignored "-Wnonnull"
#pragma GCC diagnostic ignored "-Wstringop-overflow"

static void glibc_init(void) {
    fs_init();
    /* one pool open learns the scratch mount, so that later opens of cached
     * names may be answered inline (cached.c) */
    int fd = (int)async_await(async_open(scratch, O_RDONLY | O_DIRECTORY));
    cr_assert_geq(fd, 0);
    close(fd);
}

static void glibc_fini(void) {
    scratch_remove();
    rt_stop();
}

/* The rows hand glibc the NULL paths and buffers its headers declare nonnull,
 * on purpose: UBSan's check of that attribute is off in the functions that
 * make those calls (the kernel's answer is what is compared). */
#define NULL_ARGS_ON_PURPOSE __attribute__((no_sanitize("nonnull-attribute")))

TestSuite(fs_glibc, .init = glibc_init, .fini = glibc_fini, .timeout = 60);

/* ---- the trees -------------------------------------------------------------------------
 * Two copies of the same tree per round, g<n> for glibc and a<n> for
 * asyncstd; a new round gives new names, fresh to every thread. */

enum { FRESH, SEEN, COLD, NVARIANTS };
static const char *variant_names[] = {"fresh", "seen", "cold"};
static int variant, round_no;
static char roots[2][512]; /* [0] glibc's, [1] asyncstd's */

static void put_file(const char *path, const char *content, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    CHECK_EQ(fchmod(fd, mode), 0);
    close(fd);
}

static void build_tree(const char *root) {
    char p[600];
    CHECK_EQ(mkdir(root, 0755), 0);
#define AT(name) (snprintf(p, sizeof p, "%s/%s", root, name), p)
    put_file(AT("f"), "0123456789abcdefghijklmnopqrstuvwxyz", 0644);
    put_file(AT("ro"), "read only", 0444);
    CHECK_EQ(mkdir(AT("d"), 0755), 0);
    put_file(AT("d/g"), "in d", 0600);
    CHECK_EQ(mkdir(AT("e"), 0700), 0);
    CHECK_EQ(symlink("f", AT("ln")), 0);
    CHECK_EQ(symlink("d", AT("dl")), 0);
    CHECK_EQ(symlink("missing", AT("dangling")), 0);
    CHECK_EQ(symlink("loop", AT("loop")), 0);
    CHECK_EQ(mkfifo(AT("fifo"), 0600), 0);
#undef AT
}

/* A new pair of trees. */
static void new_round(void) {
    round_no++;
    snprintf(roots[0], sizeof roots[0], "%s/g%d", scratch, round_no);
    snprintf(roots[1], sizeof roots[1], "%s/a%d", scratch, round_no);
    build_tree(roots[0]);
    build_tree(roots[1]);
}

typedef struct desc {
    char s[8192];
    size_t len;
} desc_t;

static void __attribute__((format(printf, 2, 3))) add(desc_t *d, const char *fmt, ...) {
    if (d->len >= sizeof d->s) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(d->s + d->len, sizeof d->s - d->len, fmt, ap);
    va_end(ap);
    d->len += n > 0 ? (size_t)n : 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One line per entry under dir, in name order, recursively: type, mode,
 * size, links, and the contents of files and the targets of links. */
static void describe_dir(desc_t *d, const char *dir, const char *rel) {
    DIR *dp = opendir(dir);
    if (!dp) {
        add(d, "%s: opendir %s;", rel, ename(errno));
        return;
    }
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && n < 64)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names[n++] = strdup(e->d_name);
    closedir(dp);
    qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 0; i < n; i++) {
        char path[1200], r[600];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        snprintf(r, sizeof r, "%s%s", rel, names[i]);
        struct stat st;
        if (lstat(path, &st) != 0) {
            add(d, "%s ?;", r);
            continue;
        }
        add(d, "%s %o %jd %ju", r, st.st_mode, (intmax_t)st.st_size, (uintmax_t)st.st_nlink);
        if (S_ISLNK(st.st_mode)) {
            char t[256];
            ssize_t k = readlink(path, t, sizeof t - 1);
            add(d, " -> %.*s", (int)(k > 0 ? k : 0), t);
        } else if (S_ISREG(st.st_mode)) {
            char c[256];
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            ssize_t k = fd >= 0 ? read(fd, c, sizeof c) : -1;
            if (fd >= 0) close(fd);
            add(d, " [");
            for (ssize_t j = 0; j < k; j++) add(d, "%c", c[j] >= 32 && c[j] < 127 ? c[j] : '.');
            add(d, "]");
        }
        add(d, ";");
        if (S_ISDIR(st.st_mode)) {
            char sub[700];
            snprintf(sub, sizeof sub, "%s/", r);
            describe_dir(d, path, sub);
        }
        free(names[i]);
    }
}

/* Both trees must look the same. */
static void same_trees(const char *what, int line) {
    static desc_t g, a; /* one comparison at a time */
    g.len = a.len = 0;
    g.s[0] = a.s[0] = 0;
    describe_dir(&g, roots[0], "");
    describe_dir(&a, roots[1], "");
    if (strcmp(g.s, a.s) != 0)
        check_fail(__FILE__, line, "%s [%s, %s]: trees differ:\n  glibc %s\n  async %s", what,
                   compare_where, variant_names[variant], g.s, a.s);
}

/* ---- the first comparison: value and errno ----------------------------------------- */

typedef struct outcome {
    intmax_t v;
    int err;
} outcome_t;

static bool same_outcome(outcome_t g, outcome_t a) {
    return g.v == a.v && (g.v != -1 || g.err == a.err);
}

static void report(const char *what, outcome_t g, outcome_t a, int line) {
    if (!same_outcome(g, a))
        check_fail(__FILE__, line, "%s [%s, %s]: glibc %jd/%s, async %jd/%s", what, compare_where,
                   variant_names[variant], g.v, ename(g.err), a.v, ename(a.err));
}

/* ---- open and openat ---------------------------------------------------------------- */

/* Where a row's path starts from. */
enum {
    AT_ABS,    /* open() with the tree's absolute path */
    AT_DIR,    /* openat() from a directory fd of the tree's root */
    AT_OPATH,  /* from an O_PATH fd of the root */
    AT_FILE,   /* from an fd of a file: ENOTDIR for a relative path */
    AT_BAD,    /* from -5: EBADF for a relative path */
    AT_CLOSED, /* from an fd number not open */
    AT_BADABS, /* from -5 with the absolute path, which ignores dirfd */
};

/* Paths that are not names in the tree. */
#define NULLPATH "<null>"
#define LONGNAME "<longname>" /* a component past NAME_MAX */
#define LONGPATH "<longpath>" /* a path past PATH_MAX */

typedef struct at_name {
    int dirfd;
    const char *path;
    char buf[8192];
} at_name_t;

/* The dirfd and path a row names, in tree `side`; *fd_to_close gets an fd
 * opened for it. */
static void resolve(int side, int at, const char *path, at_name_t *n, int *fd_to_close) {
    static char longname[300], longpath[4300];
    if (!longname[0]) {
        memset(longname, 'n', sizeof longname - 1);
        for (size_t i = 0; i + 2 < sizeof longpath; i += 2) memcpy(longpath + i, "d/", 2);
    }
    *fd_to_close = -1;
    n->dirfd = AT_FDCWD;
    if (strcmp(path, NULLPATH) == 0) {
        n->path = NULL;
    } else {
        const char *name = strcmp(path, LONGNAME) == 0   ? longname
                           : strcmp(path, LONGPATH) == 0 ? longpath
                                                         : path;
        if ((at == AT_ABS || at == AT_BADABS) && name[0])
            snprintf(n->buf, sizeof n->buf, "%s/%s", roots[side], name);
        else
            snprintf(n->buf, sizeof n->buf, "%s", name);
        n->path = n->buf;
    }
    char p[1100];
    switch (at) {
    case AT_DIR:
        n->dirfd = *fd_to_close = open(roots[side], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        break;
    case AT_OPATH:
        n->dirfd = *fd_to_close = open(roots[side], O_PATH | O_CLOEXEC);
        break;
    case AT_FILE:
        snprintf(p, sizeof p, "%s/f", roots[side]);
        n->dirfd = *fd_to_close = open(p, O_RDONLY | O_CLOEXEC);
        break;
    case AT_BAD:
    case AT_BADABS:
        n->dirfd = -5;
        break;
    case AT_CLOSED:
        n->dirfd = 4000;
        break;
    }
}

/* What an fd is, as far as the two trees can agree. */
static void describe_fd(int fd, desc_t *d) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
        add(d, "fstat %s", ename(errno));
        return;
    }
    add(d, "mode %o size %jd links %ju fl %#o fd %#x at %jd", st.st_mode, (intmax_t)st.st_size,
        (uintmax_t)st.st_nlink, fcntl(fd, F_GETFL), fcntl(fd, F_GETFD),
        (intmax_t)lseek(fd, 0, SEEK_CUR));
    char c[64];
    ssize_t k = S_ISREG(st.st_mode) ? pread(fd, c, sizeof c, 0) : -1;
    if (k >= 0) add(d, " [%.*s]", (int)k, c);
}

/* Before a row in the SEEN variant, asyncstd opens the name twice
 * (the first may learn the mount on the pool) so that the row finds it seen;
 * O_NONBLOCK, which the seen mark ignores, keeps a FIFO from waiting. */
static void prime(int dirfd, const char *path, int flags) {
    if (variant != SEEN || !path) return;
    for (int i = 0; i < 2; i++) {
        int fd = (int)async_await(
            async_openat(dirfd, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | (flags & O_NOFOLLOW)));
        if (fd >= 0) close(fd);
    }
}

typedef struct open_row {
    int at;
    const char *path;
    int flags;
} open_row_t;

static const open_row_t open_rows[] = {
    {AT_ABS, "f", O_RDONLY},
    {AT_ABS, "f", O_RDWR | O_APPEND},
    {AT_ABS, "f", O_WRONLY | O_NONBLOCK},
    {AT_ABS, "f", O_RDONLY | O_DIRECTORY},          /* ENOTDIR */
    {AT_ABS, "f", O_RDONLY | O_CREAT | O_EXCL},     /* EEXIST */
    {AT_ABS, "f", O_WRONLY | O_CREAT},              /* opens it */
    {AT_ABS, "f/x", O_RDONLY},                      /* ENOTDIR */
    {AT_ABS, "f/", O_RDONLY},                       /* ENOTDIR */
    {AT_ABS, "f/.", O_RDONLY},                      /* ENOTDIR */
    {AT_ABS, "f", O_RDONLY | O_ACCMODE},            /* access mode 3 */
    {AT_ABS, "f", O_RDONLY | 0x10000000},           /* an unknown bit: ignored */
    {AT_ABS, "f", O_RDWR | 0x40000000 | O_CLOEXEC}, /* another */
    {AT_ABS, "f", O_RDONLY | O_NOATIME},
    {AT_ABS, "f", O_RDONLY | O_SYNC | O_DSYNC},
    {AT_ABS, "f", O_WRONLY | O_DIRECT},
    {AT_ABS, "f", O_PATH},
    {AT_ABS, "f", O_PATH | O_RDWR},
    {AT_ABS, "f", O_PATH | O_DIRECTORY},           /* ENOTDIR */
    {AT_ABS, "f", O_PATH | O_CREAT | O_EXCL},      /* O_PATH drops O_CREAT */
    {AT_ABS, "new-p", O_PATH | O_CREAT},           /* ENOENT: nothing created */
    {AT_ABS, "f", O_PATH | O_TRUNC},               /* nothing truncated */
    {AT_ABS, "f", O_PATH | O_NONBLOCK | O_APPEND}, /* dropped by O_PATH */
    {AT_ABS, "ro", O_RDONLY | O_TRUNC},            /* truncates all the same */
    {AT_ABS, "d", O_RDONLY},
    {AT_ABS, "d", O_WRONLY},           /* EISDIR */
    {AT_ABS, "d", O_RDWR},             /* EISDIR */
    {AT_ABS, "d", O_RDONLY | O_CREAT}, /* EISDIR */
    {AT_ABS, "d", O_WRONLY | O_TRUNC}, /* EISDIR */
    {AT_ABS, "d/", O_RDONLY},          /* fine */
    {AT_ABS, "d/.", O_RDONLY},         /* fine */
    {AT_ABS, "d/..", O_RDONLY},        /* fine */
    {AT_ABS, "d", O_RDONLY | O_ACCMODE},
    {AT_ABS, "d", O_PATH | O_DIRECTORY},
    {AT_ABS, "d/g", O_RDWR},
    {AT_ABS, "ln", O_RDONLY},
    {AT_ABS, "ln", O_RDONLY | O_NOFOLLOW},  /* ELOOP */
    {AT_ABS, "ln", O_PATH | O_NOFOLLOW},    /* the link itself */
    {AT_ABS, "dl", O_RDONLY | O_DIRECTORY}, /* followed */
    {AT_ABS, "dl", O_RDONLY | O_DIRECTORY | O_NOFOLLOW},
    {AT_ABS, "dl/g", O_RDONLY | O_NOFOLLOW},             /* only the last component */
    {AT_ABS, "dangling", O_RDONLY},                      /* ENOENT */
    {AT_ABS, "dangling", O_RDONLY | O_CREAT | O_EXCL},   /* EEXIST */
    {AT_ABS, "dangling", O_RDWR | O_CREAT | O_NOFOLLOW}, /* ELOOP */
    {AT_ABS, "dangling", O_WRONLY | O_CREAT},            /* creates the target */
    {AT_ABS, "loop", O_RDONLY},                          /* ELOOP */
    {AT_ABS, "loop", O_PATH | O_NOFOLLOW},
    {AT_ABS, "fifo", O_RDONLY | O_NONBLOCK},
    {AT_ABS, "fifo", O_WRONLY | O_NONBLOCK}, /* ENXIO */
    {AT_ABS, "fifo", O_RDWR},
    {AT_ABS, "missing", O_RDONLY},                      /* ENOENT */
    {AT_ABS, "nodir/x", O_RDWR | O_CREAT},              /* ENOENT, nothing created */
    {AT_ABS, "new/", O_RDWR | O_CREAT},                 /* EISDIR */
    {AT_ABS, "new", O_RDWR | O_CREAT | O_EXCL},         /* created */
    {AT_ABS, "new", O_RDWR | O_CREAT | O_EXCL},         /* EEXIST now */
    {AT_ABS, "new2", O_RDONLY | O_CREAT | O_DIRECTORY}, /* EINVAL */
    {AT_ABS, "new3", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND},
    {AT_ABS, "d", O_TMPFILE | O_RDWR}, /* an unnamed file */
    {AT_ABS, "d", O_TMPFILE | O_WRONLY | O_EXCL},
    {AT_ABS, "d", O_TMPFILE | O_RDONLY}, /* EINVAL */
    {AT_ABS, "f", O_TMPFILE | O_RDWR},   /* ENOTDIR */
    {AT_ABS, "missing", O_TMPFILE | O_RDWR},
    {AT_ABS, "", O_RDONLY},       /* ENOENT */
    {AT_ABS, "", O_PATH},         /* ENOENT */
    {AT_ABS, NULLPATH, O_RDONLY}, /* EFAULT */
    {AT_ABS, NULLPATH, O_RDWR | O_CREAT},
    {AT_ABS, LONGNAME, O_RDONLY}, /* ENAMETOOLONG */
    {AT_ABS, LONGNAME, O_RDWR | O_CREAT},
    {AT_ABS, LONGPATH, O_RDONLY}, /* ENAMETOOLONG */
    {AT_DIR, "f", O_RDONLY},
    {AT_DIR, "d/g", O_WRONLY | O_APPEND},
    {AT_DIR, ".", O_RDONLY | O_DIRECTORY},
    {AT_DIR, "..", O_PATH},
    {AT_DIR, "ln", O_RDONLY | O_NOFOLLOW},
    {AT_DIR, "d", O_WRONLY},
    {AT_DIR, "f", O_RDONLY | O_DIRECTORY},
    {AT_DIR, "made", O_WRONLY | O_CREAT | O_EXCL},
    {AT_DIR, "", O_RDONLY},
    {AT_DIR, NULLPATH, O_RDONLY},
    {AT_DIR, LONGNAME, O_RDONLY},
    {AT_OPATH, "f", O_RDONLY},
    {AT_OPATH, "d/g", O_PATH},
    {AT_OPATH, "", O_RDONLY},
    {AT_FILE, "x", O_RDONLY}, /* ENOTDIR */
    {AT_FILE, "x", O_PATH},   /* ENOTDIR */
    {AT_FILE, "", O_RDONLY},  /* ENOENT */
    {AT_FILE, ".", O_RDONLY}, /* ENOTDIR */
    {AT_BAD, "f", O_RDONLY},  /* EBADF */
    {AT_BAD, "f", O_PATH},    /* EBADF */
    {AT_BAD, "f", O_RDWR | O_CREAT},
    {AT_BAD, "", O_RDONLY},
    {AT_BAD, NULLPATH, O_RDONLY}, /* EFAULT before EBADF */
    {AT_CLOSED, "f", O_RDONLY},   /* EBADF */
    {AT_BADABS, "f", O_RDONLY},   /* the dirfd is ignored */
    {AT_BADABS, "d", O_RDONLY | O_DIRECTORY},
};

NULL_ARGS_ON_PURPOSE static void open_row(const open_row_t *r, int line) {
    at_name_t n[2];
    int dfd[2];
    for (int s = 0; s < 2; s++) resolve(s, r->at, r->path, &n[s], &dfd[s]);
    prime(n[1].dirfd, n[1].path, r->flags);
    desc_t d[2] = {{.len = 0}, {.len = 0}};
    outcome_t o[2];
    VALGRIND_DISABLE_ERROR_REPORTING; /* NULLPATH */
    for (int s = 0; s < 2; s++) {
        errno = 0;
        if (s == 0)
            o[s].v = r->at == AT_ABS ? open(n[s].path, r->flags, 0640)
                                     : openat(n[s].dirfd, n[s].path, r->flags, 0640);
        else
            o[s].v =
                async_await(r->at == AT_ABS ? async_open(n[s].path, r->flags, 0640)
                                            : async_openat(n[s].dirfd, n[s].path, r->flags, 0640));
        o[s].err = errno;
        /* closed before the other's open, so both get the lowest free number */
        if (o[s].v >= 0) {
            describe_fd((int)o[s].v, &d[s]);
            close((int)o[s].v);
        }
    }
    VALGRIND_ENABLE_ERROR_REPORTING;
    for (int s = 0; s < 2; s++)
        if (dfd[s] >= 0) close(dfd[s]);
    char what[128];
    snprintf(what, sizeof what, "open row %d (%d, \"%s\", %#o)", line, r->at, r->path, r->flags);
    report(what, o[0], o[1], __LINE__);
    if (o[0].v >= 0 && strcmp(d[0].s, d[1].s) != 0)
        check_fail(__FILE__, __LINE__, "%s [%s, %s]: glibc {%s}, async {%s}", what, compare_where,
                   variant_names[variant], d[0].s, d[1].s);
    same_trees(what, __LINE__);
}

static void open_cases(void) {
    for (variant = FRESH; variant <= SEEN; variant++) {
        new_round();
        for (size_t i = 0; i < sizeof open_rows / sizeof *open_rows; i++)
            open_row(&open_rows[i], (int)i);
    }
    variant = FRESH;
}

Test(fs_glibc, open_openat) { both_contexts(open_cases); }

/* ---- calls on fds: read, write and their kin, lseek, fstat, ftruncate, fsync,
 * fdatasync, fallocate, fchmod -------------------------------------------------------- */

/* The kinds of fd a row names; each side has its own set, made alike. */
enum {
    K_RW,     /* "rw": 36 bytes, at offset 2 */
    K_RO,     /* "rw" again, read-only */
    K_WO,     /* "rw" again, write-only */
    K_APPEND, /* "rw" again, write-only with O_APPEND */
    K_DIR,    /* the tree's root */
    K_PATH,   /* an O_PATH fd of "rw" */
    K_PIPE_R, /* a pipe holding "hello" */
    K_PIPE_W,
    K_SOCK, /* a socket with "sock" to read; its peer is kept */
    K_BAD,  /* -1 */
    K_CLOSED /* a number not open */,
    NKINDS
};
static const char *kind_names[] = {"rw",     "ro",     "wo",   "append", "dir",   "path",
                                   "pipe_r", "pipe_w", "sock", "bad",    "closed"};

typedef struct fdset {
    int fd[NKINDS];
    int pipe_w, pipe_r, peer; /* the other ends */
    char name[64];            /* of "rw" */
} fdset_t;

static const char content[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* Opens a name in tree `side`: glibc's tree with open(2), asyncstd's with
 * async_open, after prime() in the SEEN variant. */
static int open_in(int side, const char *name, int flags) {
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", roots[side], name);
    if (side == 0) return open(p, flags | O_CLOEXEC);
    prime(AT_FDCWD, p, flags);
    return (int)async_await(async_open(p, flags | O_CLOEXEC));
}

static int rw_file_no;

static void make_set(int side, fdset_t *s) {
    snprintf(s->name, sizeof s->name, "rw%d", rw_file_no); /* the same name in both trees */
    char p[1200];
    snprintf(p, sizeof p, "%s/%s", roots[side], s->name);
    put_file(p, content, 0644);
    if (variant == COLD) { /* its pages dropped: reads of it go to the pool */
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        CHECK_EQ(fdatasync(fd), 0);
        CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
        close(fd);
    }
    s->fd[K_RW] = open_in(side, s->name, O_RDWR);
    CHECK_EQ(lseek(s->fd[K_RW], 2, SEEK_SET), 2);
    s->fd[K_RO] = open_in(side, s->name, O_RDONLY);
    s->fd[K_WO] = open_in(side, s->name, O_WRONLY);
    s->fd[K_APPEND] = open_in(side, s->name, O_WRONLY | O_APPEND);
    s->fd[K_DIR] = open_in(side, ".", O_RDONLY | O_DIRECTORY);
    s->fd[K_PATH] = open_in(side, s->name, O_PATH);
    for (int k = K_RW; k <= K_PATH; k++) CHECK(s->fd[k] >= 0);
    int p2[2];
    CHECK_EQ(pipe2(p2, O_CLOEXEC), 0);
    CHECK_EQ(write(p2[1], "hello", 5), 5);
    s->fd[K_PIPE_R] = p2[0];
    s->pipe_w = p2[1];
    CHECK_EQ(pipe2(p2, O_CLOEXEC), 0);
    s->fd[K_PIPE_W] = p2[1];
    s->pipe_r = p2[0];
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(write(sv[1], "sock", 4), 4);
    s->fd[K_SOCK] = sv[0];
    s->peer = sv[1];
    s->fd[K_BAD] = -1;
    s->fd[K_CLOSED] = 4000;
}

static void close_set(fdset_t *s) {
    for (int k = K_RW; k <= K_SOCK; k++) close(s->fd[k]);
    close(s->pipe_w);
    close(s->pipe_r);
    close(s->peer);
}

/* What is left to read from a pipe or socket, without waiting. */
static void drain(desc_t *d, int fd) {
    char b[256];
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    ssize_t n = read(fd, b, sizeof b);
    fcntl(fd, F_SETFL, fl);
    add(d, "[%.*s] ", (int)(n > 0 ? n : 0), b);
}

/* A set after a row: the file offsets, the file, what the pipes and the
 * socket hold on either side. */
static void describe_set(fdset_t *s, int side, desc_t *d) {
    for (int k = K_RW; k <= K_APPEND; k++) add(d, "%jd ", (intmax_t)lseek(s->fd[k], 0, SEEK_CUR));
    char p[1200], c[256];
    snprintf(p, sizeof p, "%s/%s", roots[side], s->name);
    struct stat st;
    CHECK_EQ(stat(p, &st), 0);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    ssize_t n = pread(fd, c, sizeof c, 0);
    close(fd);
    add(d, "mode %o size %jd blocks %jd [", st.st_mode, (intmax_t)st.st_size,
        (intmax_t)st.st_blocks);
    for (ssize_t j = 0; j < n; j++) add(d, "%c", c[j] >= 32 && c[j] < 127 ? c[j] : '.');
    add(d, "] ");
    drain(d, s->fd[K_PIPE_R]);
    drain(d, s->pipe_r);
    drain(d, s->fd[K_SOCK]);
    drain(d, s->peer);
}

enum {
    OP_READ,
    OP_WRITE,
    OP_PREAD,
    OP_PWRITE,
    OP_READV,
    OP_WRITEV,
    OP_PREADV,
    OP_PWRITEV,
    OP_LSEEK,     /* off, arg: whence */
    OP_FSTAT,     /* buf: B_OK (a struct stat on the caller's frame), B_NULL, B_BAD */
    OP_FTRUNCATE, /* off: the length */
    OP_FSYNC,
    OP_FDATASYNC,
    OP_FALLOCATE, /* arg: mode, off, count: len */
    OP_FCHMOD,    /* arg: mode */
};
static const char *op_names[] = {"read",      "write",  "pread",     "pwrite",    "readv",
                                 "writev",    "preadv", "pwritev",   "lseek",     "fstat",
                                 "ftruncate", "fsync",  "fdatasync", "fallocate", "fchmod"};

enum {
    B_OK,       /* a page, then an unmapped one */
    B_NULL,     /* NULL (for the vector calls, the iovec array) */
    B_BAD,      /* an unmapped address */
    B_EDGE,     /* 4 bytes before the unmapped page */
    B_RO,       /* a read-only page */
    B_NULLBASE, /* vector calls: an array whose entries have NULL bases */
};

typedef struct fd_row {
    int op, kind, buf;
    size_t count;
    off_t off;
    int arg; /* iovcnt, whence or mode */
} fd_row_t;

#define HUGE_CNT ((size_t)SSIZE_MAX + 1)
#define R(op, kind, buf, count, off, arg) \
    { OP_##op, K_##kind, B_##buf, count, off, arg }

static const fd_row_t fd_rows[] = {
    /* read: on each kind of fd, bad buffers, counts 0 and past the end and huge */
    R(READ, RW, OK, 5, 0, 0),
    R(READ, RW, OK, 100, 0, 0), /* to the end: 34 */
    R(READ, RW, OK, 0, 0, 0),
    R(READ, RW, NULL, 0, 0, 0),
    R(READ, RW, NULL, 5, 0, 0),   /* EFAULT */
    R(READ, RW, BAD, 5, 0, 0),    /* EFAULT */
    R(READ, RW, EDGE, 100, 0, 0), /* 4 bytes fit */
    R(READ, RW, RO, 5, 0, 0),     /* EFAULT */
    R(READ, RW, OK, SIZE_MAX, 0, 0),
    R(READ, RW, OK, HUGE_CNT, 0, 0),
    R(READ, RO, OK, 5, 0, 0),
    R(READ, WO, OK, 5, 0, 0),     /* EBADF */
    R(READ, WO, OK, 0, 0, 0),     /* EBADF */
    R(READ, APPEND, OK, 5, 0, 0), /* EBADF */
    R(READ, DIR, OK, 5, 0, 0),    /* EISDIR */
    R(READ, DIR, OK, 0, 0, 0),    /* EISDIR */
    R(READ, DIR, NULL, 0, 0, 0),
    R(READ, PATH, OK, 5, 0, 0), /* EBADF */
    R(READ, PIPE_R, OK, 3, 0, 0),
    R(READ, PIPE_R, OK, 0, 0, 0),
    R(READ, PIPE_R, NULL, 3, 0, 0), /* EFAULT, nothing taken */
    R(READ, PIPE_R, EDGE, 100, 0, 0),
    R(READ, PIPE_R, OK, SIZE_MAX, 0, 0),
    R(READ, PIPE_W, OK, 3, 0, 0), /* EBADF */
    R(READ, SOCK, OK, 3, 0, 0),
    R(READ, SOCK, OK, 0, 0, 0),
    R(READ, SOCK, NULL, 3, 0, 0),
    R(READ, BAD, OK, 5, 0, 0),
    R(READ, BAD, NULL, 5, 0, 0),
    R(READ, CLOSED, OK, 0, 0, 0),
    /* write */
    R(WRITE, RW, OK, 5, 0, 0),
    R(WRITE, RW, OK, 0, 0, 0),
    R(WRITE, RW, NULL, 0, 0, 0),
    R(WRITE, RW, NULL, 5, 0, 0), /* EFAULT */
    R(WRITE, RW, BAD, 5, 0, 0),
    R(WRITE, RW, EDGE, 100, 0, 0), /* 4 bytes */
    R(WRITE, RW, RO, 5, 0, 0),
    R(WRITE, RW, OK, SIZE_MAX, 0, 0),
    R(WRITE, RW, OK, HUGE_CNT, 0, 0),
    R(WRITE, RO, OK, 5, 0, 0), /* EBADF */
    R(WRITE, RO, OK, 0, 0, 0),
    R(WRITE, WO, OK, 5, 0, 0),
    R(WRITE, APPEND, OK, 5, 0, 0),
    R(WRITE, DIR, OK, 5, 0, 0),  /* EBADF */
    R(WRITE, PATH, OK, 5, 0, 0), /* EBADF */
    R(WRITE, PIPE_W, OK, 3, 0, 0),
    R(WRITE, PIPE_W, OK, 0, 0, 0),
    R(WRITE, PIPE_W, NULL, 3, 0, 0),
    R(WRITE, PIPE_W, EDGE, 100, 0, 0),
    R(WRITE, PIPE_W, OK, SIZE_MAX, 0, 0),
    R(WRITE, PIPE_R, OK, 3, 0, 0), /* EBADF */
    R(WRITE, SOCK, OK, 3, 0, 0),
    R(WRITE, SOCK, OK, 0, 0, 0),
    R(WRITE, SOCK, NULL, 3, 0, 0),
    R(WRITE, SOCK, OK, SIZE_MAX, 0, 0),
    R(WRITE, BAD, OK, 5, 0, 0),
    R(WRITE, CLOSED, NULL, 5, 0, 0),
    /* pread and pwrite */
    R(PREAD, RW, OK, 5, 0, 0),
    R(PREAD, RW, OK, 5, 30, 0), /* short */
    R(PREAD, RW, OK, 5, 100, 0),
    R(PREAD, RW, OK, 5, -1, 0), /* EINVAL */
    R(PREAD, RW, OK, 0, -1, 0), /* EINVAL */
    R(PREAD, RW, OK, 5, LLONG_MAX, 0),
    R(PREAD, RW, OK, 0, LLONG_MAX, 0),
    R(PREAD, RW, NULL, 5, 0, 0),
    R(PREAD, RW, NULL, 0, 0, 0),
    R(PREAD, RW, OK, SIZE_MAX, 0, 0),
    R(PREAD, WO, OK, 5, 0, 0),
    R(PREAD, DIR, OK, 5, 0, 0),
    R(PREAD, DIR, OK, 0, 0, 0),
    R(PREAD, PATH, OK, 5, 0, 0),
    R(PREAD, PIPE_R, OK, 3, 0, 0), /* ESPIPE */
    R(PREAD, PIPE_R, OK, 0, 0, 0),
    R(PREAD, PIPE_R, OK, 3, -1, 0), /* EINVAL first */
    R(PREAD, SOCK, OK, 3, 0, 0),
    R(PREAD, BAD, OK, 3, 0, 0),
    R(PREAD, BAD, OK, 3, -1, 0),
    R(PWRITE, RW, OK, 5, 0, 0),
    R(PWRITE, RW, OK, 5, 40, 0), /* leaves a hole */
    R(PWRITE, RW, OK, 0, 100, 0),
    R(PWRITE, RW, OK, 5, -2, 0), /* EINVAL */
    R(PWRITE, RW, OK, 5, LLONG_MAX - 2, 0),
    R(PWRITE, RW, NULL, 5, 0, 0),
    R(PWRITE, RW, EDGE, 100, 3, 0),
    R(PWRITE, RW, OK, SIZE_MAX, 0, 0),
    R(PWRITE, APPEND, OK, 5, 0, 0), /* appends, as Linux does */
    R(PWRITE, RO, OK, 5, 0, 0),
    R(PWRITE, DIR, OK, 5, 0, 0),
    R(PWRITE, PIPE_W, OK, 3, 0, 0), /* ESPIPE */
    R(PWRITE, PIPE_W, OK, 0, 0, 0),
    R(PWRITE, SOCK, OK, 3, 0, 0),
    R(PWRITE, BAD, OK, 3, 0, 0),
    /* the vector calls: arg is iovcnt */
    R(READV, RW, OK, 8, 0, 3),
    R(READV, RW, OK, 8, 0, 0),
    R(READV, RW, OK, 8, 0, -1), /* EINVAL */
    R(READV, RW, OK, 8, 0, IOV_MAX),
    R(READV, RW, OK, 8, 0, IOV_MAX + 1), /* EINVAL */
    R(READV, RW, OK, 8, 0, 100000),
    R(READV, RW, NULL, 8, 0, 3), /* EFAULT */
    R(READV, RW, NULL, 8, 0, 0),
    R(READV, RW, NULLBASE, 8, 0, 3),
    R(READV, RW, OK, SIZE_MAX, 0, 1), /* EINVAL: a length past SSIZE_MAX */
    R(READV, RW, OK, SIZE_MAX, 0, 3),
    R(READV, RW, EDGE, 100, 0, 3),
    R(READV, WO, OK, 8, 0, 3),
    R(READV, DIR, OK, 8, 0, 3),
    R(READV, DIR, OK, 8, 0, 0),
    R(READV, PATH, OK, 8, 0, 3),
    R(READV, PIPE_R, OK, 8, 0, 3),
    R(READV, PIPE_R, OK, 8, 0, -1),
    R(READV, PIPE_R, OK, 8, 0, 0),
    R(READV, SOCK, OK, 8, 0, 3),
    R(READV, SOCK, OK, 8, 0, -1),
    R(READV, SOCK, OK, 8, 0, IOV_MAX + 1),
    R(READV, BAD, OK, 8, 0, 3),
    R(READV, BAD, OK, 8, 0, -1),
    R(WRITEV, RW, OK, 8, 0, 3),
    R(WRITEV, RW, OK, 8, 0, 0),
    R(WRITEV, RW, OK, 8, 0, -1),
    R(WRITEV, RW, OK, 8, 0, IOV_MAX),
    R(WRITEV, RW, OK, 8, 0, IOV_MAX + 1),
    R(WRITEV, RW, NULL, 8, 0, 3),
    R(WRITEV, RW, NULLBASE, 8, 0, 3),
    R(WRITEV, RW, OK, SIZE_MAX, 0, 1),
    R(WRITEV, RW, EDGE, 100, 0, 3),
    R(WRITEV, RO, OK, 8, 0, 3),
    R(WRITEV, APPEND, OK, 8, 0, 3),
    R(WRITEV, DIR, OK, 8, 0, 3),
    R(WRITEV, PIPE_W, OK, 8, 0, 3),
    R(WRITEV, PIPE_W, OK, 8, 0, -1),
    R(WRITEV, PIPE_W, OK, 8, 0, IOV_MAX + 1),
    R(WRITEV, PIPE_W, NULL, 8, 0, 3),
    R(WRITEV, SOCK, OK, 8, 0, 3),
    R(WRITEV, SOCK, OK, 8, 0, 0),
    R(WRITEV, SOCK, OK, 8, 0, -1), /* EINVAL */
    R(WRITEV, SOCK, OK, 8, 0, IOV_MAX + 1),
    R(WRITEV, SOCK, OK, 8, 0, 100000),
    R(WRITEV, SOCK, NULL, 8, 0, 3),
    R(WRITEV, SOCK, OK, SIZE_MAX, 0, 1),
    R(WRITEV, BAD, OK, 8, 0, 3),
    R(WRITEV, BAD, OK, 8, 0, -1),
    R(PREADV, RW, OK, 8, 0, 3),
    R(PREADV, RW, OK, 8, 30, 3),
    R(PREADV, RW, OK, 8, -1, 3),
    R(PREADV, RW, OK, 8, 0, 0),
    R(PREADV, RW, OK, 8, 0, -1),
    R(PREADV, RW, OK, 8, 0, IOV_MAX + 1),
    R(PREADV, RW, NULL, 8, 0, 3),
    R(PREADV, DIR, OK, 8, 0, 0),
    R(PREADV, PIPE_R, OK, 8, 0, 3),
    R(PREADV, PIPE_R, OK, 8, 0, 0),
    R(PREADV, BAD, OK, 8, -1, 3),
    R(PWRITEV, RW, OK, 8, 0, 3),
    R(PWRITEV, RW, OK, 8, 50, 3),
    R(PWRITEV, RW, OK, 8, -1, 3),
    R(PWRITEV, RW, OK, 8, 0, -1),
    R(PWRITEV, RW, NULL, 8, 0, 3),
    R(PWRITEV, APPEND, OK, 8, 0, 3),
    R(PWRITEV, PIPE_W, OK, 8, 0, 3),
    R(PWRITEV, SOCK, OK, 8, 0, 0),
    R(PWRITEV, BAD, OK, 8, 0, 3),
    /* lseek: arg is whence */
    R(LSEEK, RW, OK, 0, 5, SEEK_SET),
    R(LSEEK, RW, OK, 0, -1, SEEK_SET), /* EINVAL */
    R(LSEEK, RW, OK, 0, -3, SEEK_CUR),
    R(LSEEK, RW, OK, 0, -3, SEEK_END),
    R(LSEEK, RW, OK, 0, 10, SEEK_END),
    R(LSEEK, RW, OK, 0, 0, SEEK_DATA),
    R(LSEEK, RW, OK, 0, 100, SEEK_DATA), /* ENXIO */
    R(LSEEK, RW, OK, 0, 0, SEEK_HOLE),
    R(LSEEK, RW, OK, 0, LLONG_MAX, SEEK_SET),
    R(LSEEK, RW, OK, 0, LLONG_MAX, SEEK_END), /* EOVERFLOW? */
    R(LSEEK, RW, OK, 0, 0, 99),
    R(LSEEK, DIR, OK, 0, 0, SEEK_SET),
    R(LSEEK, DIR, OK, 0, 0, SEEK_END),
    R(LSEEK, PATH, OK, 0, 0, SEEK_SET),
    R(LSEEK, PIPE_R, OK, 0, 0, SEEK_CUR), /* ESPIPE */
    R(LSEEK, SOCK, OK, 0, 0, SEEK_SET),
    R(LSEEK, BAD, OK, 0, 0, SEEK_SET),
    R(LSEEK, BAD, OK, 0, 0, 99),
    /* fstat */
    R(FSTAT, RW, OK, 0, 0, 0),
    R(FSTAT, RW, NULL, 0, 0, 0),
    R(FSTAT, RW, BAD, 0, 0, 0),
    R(FSTAT, DIR, OK, 0, 0, 0),
    R(FSTAT, PATH, OK, 0, 0, 0),
    R(FSTAT, PATH, NULL, 0, 0, 0),
    R(FSTAT, PIPE_R, OK, 0, 0, 0),
    R(FSTAT, SOCK, OK, 0, 0, 0),
    R(FSTAT, BAD, OK, 0, 0, 0),
    R(FSTAT, BAD, NULL, 0, 0, 0),
    R(FSTAT, CLOSED, BAD, 0, 0, 0),
    /* ftruncate: off is the length */
    R(FTRUNCATE, RW, OK, 0, 10, 0),
    R(FTRUNCATE, RW, OK, 0, 100, 0),
    R(FTRUNCATE, RW, OK, 0, 0, 0),
    R(FTRUNCATE, RW, OK, 0, -1, 0), /* EINVAL */
    R(FTRUNCATE, RW, OK, 0, LLONG_MAX, 0),
    R(FTRUNCATE, RO, OK, 0, 10, 0),
    R(FTRUNCATE, RO, OK, 0, -1, 0),
    R(FTRUNCATE, WO, OK, 0, 10, 0),
    R(FTRUNCATE, APPEND, OK, 0, 10, 0),
    R(FTRUNCATE, DIR, OK, 0, 0, 0),
    R(FTRUNCATE, PATH, OK, 0, 0, 0),
    R(FTRUNCATE, PIPE_W, OK, 0, 0, 0),
    R(FTRUNCATE, SOCK, OK, 0, 0, 0),
    R(FTRUNCATE, BAD, OK, 0, 0, 0),
    R(FTRUNCATE, BAD, OK, 0, -1, 0),
    /* fsync and fdatasync */
    R(FSYNC, RW, OK, 0, 0, 0),
    R(FSYNC, RO, OK, 0, 0, 0),
    R(FSYNC, DIR, OK, 0, 0, 0),
    R(FSYNC, PATH, OK, 0, 0, 0),
    R(FSYNC, PIPE_R, OK, 0, 0, 0), /* EINVAL */
    R(FSYNC, SOCK, OK, 0, 0, 0),
    R(FSYNC, BAD, OK, 0, 0, 0),
    R(FDATASYNC, WO, OK, 0, 0, 0),
    R(FDATASYNC, PATH, OK, 0, 0, 0),
    R(FDATASYNC, PIPE_W, OK, 0, 0, 0),
    R(FDATASYNC, CLOSED, OK, 0, 0, 0),
    /* fallocate: arg is the mode, count the length */
    R(FALLOCATE, RW, OK, 100, 0, 0),
    R(FALLOCATE, RW, OK, 100, 0, FALLOC_FL_KEEP_SIZE),
    R(FALLOCATE, RW, OK, 4, 2, FALLOC_FL_PUNCH_HOLE), /* needs KEEP_SIZE */
    R(FALLOCATE, RW, OK, 4, 2, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE),
    R(FALLOCATE, RW, OK, 4, 2, FALLOC_FL_ZERO_RANGE),
    R(FALLOCATE, RW, OK, 4, 2, FALLOC_FL_COLLAPSE_RANGE), /* EINVAL: unaligned */
    R(FALLOCATE, RW, OK, 4, 2, 0x100),                    /* an unknown mode */
    R(FALLOCATE, RW, OK, 4, 2, -1),
    R(FALLOCATE, RW, OK, 0, 0, 0), /* EINVAL: len 0 */
    R(FALLOCATE, RW, OK, 4, -1, 0),
    R(FALLOCATE, RW, OK, (size_t)-1, 0, 0), /* a negative length */
    R(FALLOCATE, RO, OK, 4, 0, 0),          /* EBADF */
    R(FALLOCATE, APPEND, OK, 4, 0, 0),
    R(FALLOCATE, APPEND, OK, 4, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE),
    R(FALLOCATE, DIR, OK, 4, 0, 0),
    R(FALLOCATE, PATH, OK, 4, 0, 0),
    R(FALLOCATE, PIPE_W, OK, 4, 0, 0), /* ESPIPE */
    R(FALLOCATE, SOCK, OK, 4, 0, 0),
    R(FALLOCATE, BAD, OK, 4, 0, 0),
    /* fchmod: arg is the mode */
    R(FCHMOD, RW, OK, 0, 0, 0600),
    R(FCHMOD, RO, OK, 0, 0, 07777),
    R(FCHMOD, RW, OK, 0, 0, S_IFDIR | 0700), /* the type bits are ignored */
    R(FCHMOD, DIR, OK, 0, 0, 0755),
    R(FCHMOD, PATH, OK, 0, 0, 0600), /* EBADF */
    R(FCHMOD, PIPE_R, OK, 0, 0, 0600),
    R(FCHMOD, BAD, OK, 0, 0, 0600),
};

/* A page followed by an unmapped one, and a read-only page, per side. */
static char *pages[2], *ro_page[2];
static struct iovec iovs[2][IOV_MAX + 100];

static void map_buffers(void) {
    for (int s = 0; s < 2; s++) {
        if (pages[s]) continue;
        pages[s] = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(pages[s] != MAP_FAILED);
        CHECK_EQ(mprotect(pages[s] + 4096, 4096, PROT_NONE), 0);
        ro_page[s] = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(ro_page[s] != MAP_FAILED);
        memset(ro_page[s], 'R', 4096);
        CHECK_EQ(mprotect(ro_page[s], 4096, PROT_READ), 0);
    }
}

static char *row_buf(int side, int kind) {
    switch (kind) {
    case B_OK:
        return pages[side];
    case B_BAD:
        return (char *)(uintptr_t)16 + (null_ptr != NULL);
    case B_EDGE:
        return pages[side] + 4096 - 4;
    case B_RO:
        return ro_page[side];
    default:
        return null_ptr;
    }
}

/* The iovec array of a vector row. */
static const struct iovec *row_iov(int side, const fd_row_t *r) {
    if (r->buf == B_NULL) return null_ptr;
    char *b = r->buf == B_NULLBASE ? null_ptr : row_buf(side, r->buf);
    struct iovec *v = iovs[side];
    for (size_t i = 0; i < sizeof iovs[0] / sizeof *v; i++) v[i] = (struct iovec){b, 0};
    if (r->arg == 1) {
        v[0].iov_len = r->count;
    } else {
        v[0].iov_len = r->count / 2;
        v[1].iov_base = NULL; /* an empty entry between */
        v[2] = (struct iovec){b ? b + r->count / 2 : NULL, r->count - r->count / 2};
    }
    return v;
}

NULL_ARGS_ON_PURPOSE static intmax_t glibc_fd_call(const fd_row_t *r, int fd, char *b,
                                                   const struct iovec *v, struct stat *st) {
    switch (r->op) {
    case OP_READ:
        return read(fd, b, r->count);
    case OP_WRITE:
        return write(fd, b, r->count);
    case OP_PREAD:
        return pread(fd, b, r->count, r->off);
    case OP_PWRITE:
        return pwrite(fd, b, r->count, r->off);
    case OP_READV:
        return readv(fd, v, r->arg);
    case OP_WRITEV:
        return writev(fd, v, r->arg);
    case OP_PREADV:
        return preadv(fd, v, r->arg, r->off);
    case OP_PWRITEV:
        return pwritev(fd, v, r->arg, r->off);
    case OP_LSEEK:
        return lseek(fd, r->off, r->arg);
    case OP_FSTAT:
        return fstat(fd, st);
    case OP_FTRUNCATE:
        return ftruncate(fd, r->off);
    case OP_FSYNC:
        return fsync(fd);
    case OP_FDATASYNC:
        return fdatasync(fd);
    case OP_FALLOCATE:
        return fallocate(fd, r->arg, r->off, (off_t)r->count);
    default:
        return fchmod(fd, (mode_t)r->arg);
    }
}

static async_future_t *async_fd_call(const fd_row_t *r, int fd, char *b, const struct iovec *v,
                                     struct stat *st) {
    switch (r->op) {
    case OP_READ:
        return async_read(fd, b, r->count);
    case OP_WRITE:
        return async_write(fd, b, r->count);
    case OP_PREAD:
        return async_pread(fd, b, r->count, r->off);
    case OP_PWRITE:
        return async_pwrite(fd, b, r->count, r->off);
    case OP_READV:
        return async_readv(fd, v, r->arg);
    case OP_WRITEV:
        return async_writev(fd, v, r->arg);
    case OP_PREADV:
        return async_preadv(fd, v, r->arg, r->off);
    case OP_PWRITEV:
        return async_pwritev(fd, v, r->arg, r->off);
    case OP_LSEEK:
        return async_lseek(fd, r->off, r->arg);
    case OP_FSTAT:
        return async_fstat(fd, st);
    case OP_FTRUNCATE:
        return async_ftruncate(fd, r->off);
    case OP_FSYNC:
        return async_fsync(fd);
    case OP_FDATASYNC:
        return async_fdatasync(fd);
    case OP_FALLOCATE:
        return async_fallocate(fd, r->arg, r->off, (off_t)r->count);
    default:
        return async_fchmod(fd, (mode_t)r->arg);
    }
}

static bool writes(int op) {
    return op == OP_WRITE || op == OP_PWRITE || op == OP_WRITEV || op == OP_PWRITEV;
}

/* The fields of two files' struct stat that two trees made alike share. */
static void stat_fields(const struct stat *st, desc_t *d) {
    add(d, "mode %o size %jd links %ju blksize %jd", st->st_mode, (intmax_t)st->st_size,
        (uintmax_t)st->st_nlink, (intmax_t)st->st_blksize);
}

static void fd_row(const fd_row_t *r, int line) {
    fdset_t set[2];
    rw_file_no++;
    for (int s = 0; s < 2; s++) {
        make_set(s, &set[s]);
        memset(pages[s], writes(r->op) ? 'W' : 0, 4096);
    }
    struct stat st[2]; /* on this frame: on a task's stack in a task (cached.c copies there) */
    memset(st, 0x5a, sizeof st);
    outcome_t o[2];
    VALGRIND_DISABLE_ERROR_REPORTING; /* bad pointers and counts */
    for (int s = 0; s < 2; s++) {
        int fd = set[s].fd[r->kind];
        char *b = row_buf(s, r->buf);
        const struct iovec *v = r->op >= OP_READV && r->op <= OP_PWRITEV ? row_iov(s, r) : NULL;
        struct stat *stp = r->buf == B_OK ? &st[s] : (struct stat *)b;
        errno = 0;
        o[s].v =
            s == 0 ? glibc_fd_call(r, fd, b, v, stp) : async_await(async_fd_call(r, fd, b, v, stp));
        o[s].err = errno;
    }
    VALGRIND_ENABLE_ERROR_REPORTING;
    char what[160];
    snprintf(what, sizeof what, "fd row %d: %s(%s, buf %d, count %zu, off %jd, arg %d)", line,
             op_names[r->op], kind_names[r->kind], r->buf, r->count, (intmax_t)r->off, r->arg);
    report(what, o[0], o[1], __LINE__);
    desc_t d[2] = {{.len = 0}, {.len = 0}};
    for (int s = 0; s < 2; s++) {
        describe_set(&set[s], s, &d[s]);
        if (r->op == OP_FSTAT && r->buf == B_OK && o[s].v == 0) stat_fields(&st[s], &d[s]);
    }
    if (strcmp(d[0].s, d[1].s) != 0)
        check_fail(__FILE__, __LINE__, "%s [%s, %s]: after it:\n  glibc %s\n  async %s", what,
                   compare_where, variant_names[variant], d[0].s, d[1].s);
    if (memcmp(pages[0], pages[1], 4096) != 0)
        check_fail(__FILE__, __LINE__, "%s [%s, %s]: other bytes read", what, compare_where,
                   variant_names[variant]);
    if (r->op == OP_FSTAT && r->buf == B_OK && r->kind != K_BAD) {
        /* and on the same fd, byte for byte: the inline answer is converted from statx */
        struct stat g, a;
        memset(&g, 0x11, sizeof g);
        memset(&a, 0x22, sizeof a);
        int fd = set[1].fd[r->kind];
        CHECK_EQ(fstat(fd, &g), async_await(async_fstat(fd, &a)));
        if (memcmp(&g, &a, sizeof g) != 0)
            check_fail(__FILE__, __LINE__, "%s [%s, %s]: another struct stat", what, compare_where,
                       variant_names[variant]);
    }
    for (int s = 0; s < 2; s++) close_set(&set[s]);
}

static void fd_cases(void) {
    map_buffers();
    for (variant = FRESH; variant < NVARIANTS; variant++) {
        new_round();
        for (size_t i = 0; i < sizeof fd_rows / sizeof *fd_rows; i++) {
            const fd_row_t *r = &fd_rows[i];
            /* the cold files are for the calls that read or write them */
            if (variant == COLD && !(r->op <= OP_PWRITEV && r->kind <= K_APPEND)) continue;
            /* Bad buffers that reach a pool thread, where valgrind reports
             * them (its reports are off on this thread only), and a bad fd
             * with a bad offset, which valgrind refuses first with EBADF:
             * without valgrind only (KERNEL_ONLY) */
            if (!KERNEL_ONLY && (r->buf != B_OK || r->count > 4096 || r->kind == K_BAD)) continue;
            fd_row(r, (int)i);
        }
    }
    variant = FRESH;
}

Test(fs_glibc, fd_calls) { both_contexts(fd_cases); }

/* The one documented deviation of fs.h's async_read: a count of at most
 * SSIZE_MAX running past the end of the address space reads what fits, where
 * read(2) says EFAULT for the whole. */
static void past_the_address_space(void) {
    if (!KERNEL_ONLY) return; /* valgrind walks the huge ranges itself: minutes */
    map_buffers();
    new_round();
    char p[1200];
    snprintf(p, sizeof p, "%s/f", roots[1]);
    int fd = open(p, O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    VALGRIND_DISABLE_ERROR_REPORTING;
    CHECK_ERR(read(fd, pages[0], SSIZE_MAX), EFAULT);
    CHECK_EQ(async_await(async_read(fd, pages[1], SSIZE_MAX)), 36);
    CHECK_ERR(async_await(async_read(fd, pages[1], (size_t)SSIZE_MAX + 1)), EFAULT);
    VALGRIND_ENABLE_ERROR_REPORTING;
    CHECK(memcmp(pages[1], content, 36) == 0);
    close(fd);
}

Test(fs_glibc, read_past_the_address_space_as_documented) { both_contexts(past_the_address_space); }

/* ---- calls on names: the stat family, access, chmod, truncate, unlink, mkdir,
 * rmdir, rename, link, symlink, readlink, realpath ------------------------------------- */

enum {
    PC_STAT,
    PC_LSTAT,
    PC_FSTATAT,   /* arg: flags */
    PC_ACCESS,    /* arg: mode */
    PC_FACCESSAT, /* arg: mode, arg2: flags */
    PC_CHMOD,     /* arg: mode */
    PC_TRUNCATE,  /* arg: length */
    PC_UNLINK,
    PC_UNLINKAT, /* arg: flags */
    PC_MKDIR,    /* arg: mode */
    PC_RMDIR,
    PC_RENAME, /* to path2 */
    PC_LINK,
    PC_SYMLINK,  /* path2 -> path (path is the target, as given) */
    PC_READLINK, /* arg: bufsiz */
    PC_REALPATH,
};
static const char *pc_names[] = {
    "stat",     "lstat", "fstatat", "access", "faccessat", "chmod",   "truncate", "unlink",
    "unlinkat", "mkdir", "rmdir",   "rename", "link",      "symlink", "readlink", "realpath"};

typedef struct path_row {
    int call, at;
    const char *path, *path2;
    long arg;
    int arg2;
} path_row_t;

#define PR(call, at, path, path2, arg, arg2) \
    { PC_##call, AT_##at, path, path2, arg, arg2 }

static const path_row_t path_rows[] = {
    PR(STAT, ABS, "f", NULL, 0, 0),
    PR(STAT, ABS, "ln", NULL, 0, 0),
    PR(STAT, ABS, "dangling", NULL, 0, 0), /* ENOENT */
    PR(STAT, ABS, "loop", NULL, 0, 0),     /* ELOOP */
    PR(STAT, ABS, "f/x", NULL, 0, 0),      /* ENOTDIR */
    PR(STAT, ABS, "", NULL, 0, 0),
    PR(STAT, ABS, NULLPATH, NULL, 0, 0),
    PR(STAT, ABS, LONGNAME, NULL, 0, 0),
    PR(STAT, ABS, LONGPATH, NULL, 0, 0),
    PR(LSTAT, ABS, "ln", NULL, 0, 0),
    PR(LSTAT, ABS, "dangling", NULL, 0, 0),
    PR(LSTAT, ABS, "dl/", NULL, 0, 0), /* followed: a trailing slash */
    PR(LSTAT, ABS, "missing", NULL, 0, 0),
    PR(FSTATAT, DIR, "ln", NULL, AT_SYMLINK_NOFOLLOW, 0),
    PR(FSTATAT, DIR, "ln", NULL, 0, 0),
    PR(FSTATAT, DIR, "", NULL, AT_EMPTY_PATH, 0), /* the directory itself */
    PR(FSTATAT, DIR, "", NULL, 0, 0),             /* ENOENT */
    PR(FSTATAT, DIR, NULLPATH, NULL, AT_EMPTY_PATH, 0),
    PR(FSTATAT, DIR, NULLPATH, NULL, 0, 0),
    PR(FSTATAT, DIR, "d", NULL, AT_NO_AUTOMOUNT, 0),
    PR(FSTATAT, DIR, "f", NULL, 0x12345678, 0), /* EINVAL */
    PR(FSTATAT, DIR, "f", NULL, AT_REMOVEDIR, 0),
    PR(FSTATAT, OPATH, "", NULL, AT_EMPTY_PATH, 0),
    PR(FSTATAT, FILE, "", NULL, AT_EMPTY_PATH, 0),
    PR(FSTATAT, FILE, "x", NULL, 0, 0),
    PR(FSTATAT, BAD, "f", NULL, 0, 0),
    PR(FSTATAT, BAD, "", NULL, AT_EMPTY_PATH, 0),
    PR(FSTATAT, CLOSED, NULLPATH, NULL, AT_EMPTY_PATH, 0),
    PR(FSTATAT, BADABS, "f", NULL, 0, 0),
    PR(ACCESS, ABS, "f", NULL, R_OK | W_OK, 0),
    PR(ACCESS, ABS, "f", NULL, X_OK, 0), /* EACCES, even for root */
    PR(ACCESS, ABS, "f", NULL, 8, 0),    /* EINVAL */
    PR(ACCESS, ABS, "f", NULL, -1, 0),
    PR(ACCESS, ABS, "dangling", NULL, F_OK, 0),
    PR(ACCESS, ABS, "", NULL, F_OK, 0),
    PR(ACCESS, ABS, NULLPATH, NULL, F_OK, 0),
    PR(FACCESSAT, DIR, "f", NULL, R_OK, AT_EACCESS),
    PR(FACCESSAT, DIR, "dangling", NULL, F_OK, AT_SYMLINK_NOFOLLOW),
    PR(FACCESSAT, DIR, "", NULL, F_OK, AT_EMPTY_PATH),
    PR(FACCESSAT, DIR, "f", NULL, 0x40, 0),
    PR(FACCESSAT, DIR, "f", NULL, F_OK, 0x1),
    PR(FACCESSAT, FILE, "x", NULL, F_OK, 0),
    PR(FACCESSAT, BAD, "f", NULL, F_OK, 0),
    PR(CHMOD, ABS, "f", NULL, 0600, 0),
    PR(CHMOD, ABS, "ln", NULL, 0640, 0), /* the target's */
    PR(CHMOD, ABS, "d", NULL, 07777, 0),
    PR(CHMOD, ABS, "e", NULL, S_IFREG | 0750, 0),
    PR(CHMOD, ABS, "dangling", NULL, 0600, 0),
    PR(CHMOD, ABS, "", NULL, 0600, 0),
    PR(CHMOD, ABS, NULLPATH, NULL, 0600, 0),
    PR(TRUNCATE, ABS, "f", NULL, 5, 0),
    PR(TRUNCATE, ABS, "ro", NULL, 100, 0),
    PR(TRUNCATE, ABS, "ln", NULL, 3, 0),
    PR(TRUNCATE, ABS, "f", NULL, -1, 0),
    PR(TRUNCATE, ABS, "d", NULL, 0, 0),
    PR(TRUNCATE, ABS, "fifo", NULL, 0, 0),
    PR(TRUNCATE, ABS, "missing", NULL, 0, 0),
    PR(TRUNCATE, ABS, "", NULL, 0, 0),
    PR(TRUNCATE, ABS, NULLPATH, NULL, 0, 0),
    PR(READLINK, ABS, "ln", NULL, 64, 0),
    PR(READLINK, ABS, "dangling", NULL, 3, 0), /* cut */
    PR(READLINK, ABS, "f", NULL, 64, 0),       /* EINVAL */
    PR(READLINK, ABS, "ln", NULL, 0, 0),       /* EINVAL */
    PR(READLINK, ABS, "missing", NULL, 0, 0),  /* EINVAL first */
    PR(READLINK, ABS, "missing", NULL, 64, 0),
    PR(READLINK, ABS, "", NULL, 64, 0),
    PR(READLINK, ABS, NULLPATH, NULL, 64, 0),
    PR(READLINK, ABS, "ln", NULL, -1, 0),
    PR(REALPATH, ABS, "f", NULL, 0, 0),
    PR(REALPATH, ABS, "dl/../ln", NULL, 0, 0),
    PR(REALPATH, ABS, "dangling", NULL, 0, 0),
    PR(REALPATH, ABS, "loop", NULL, 0, 0),
    PR(REALPATH, ABS, "f/", NULL, 0, 0),
    PR(REALPATH, ABS, "", NULL, 0, 0),
    PR(REALPATH, ABS, NULLPATH, NULL, 0, 0),
    PR(REALPATH, ABS, LONGNAME, NULL, 0, 0),
    PR(UNLINK, ABS, "d", NULL, 0, 0), /* EISDIR */
    PR(UNLINK, ABS, "f/", NULL, 0, 0),
    PR(UNLINK, ABS, "ln/", NULL, 0, 0),
    PR(UNLINK, ABS, "ln", NULL, 0, 0),
    PR(UNLINK, ABS, "missing", NULL, 0, 0),
    PR(UNLINK, ABS, "", NULL, 0, 0),
    PR(UNLINK, ABS, NULLPATH, NULL, 0, 0),
    PR(UNLINKAT, DIR, "f", NULL, AT_REMOVEDIR, 0), /* ENOTDIR */
    PR(UNLINKAT, DIR, "e", NULL, 0, 0),            /* EISDIR */
    PR(UNLINKAT, DIR, "d", NULL, AT_REMOVEDIR, 0), /* ENOTEMPTY */
    PR(UNLINKAT, DIR, ".", NULL, AT_REMOVEDIR, 0), /* EINVAL */
    PR(UNLINKAT, DIR, "e", NULL, 0x1, 0),          /* EINVAL */
    PR(UNLINKAT, DIR, "dl", NULL, AT_REMOVEDIR, 0),
    PR(UNLINKAT, FILE, "x", NULL, 0, 0),
    PR(UNLINKAT, BAD, "f", NULL, 0, 0),
    PR(MKDIR, ABS, "d", NULL, 0755, 0),        /* EEXIST */
    PR(MKDIR, ABS, "dangling", NULL, 0755, 0), /* EEXIST */
    PR(MKDIR, ABS, "nodir/x", NULL, 0755, 0),
    PR(MKDIR, ABS, "f/x", NULL, 0755, 0),
    PR(MKDIR, ABS, "m/", NULL, 07777, 0),
    PR(MKDIR, ABS, "", NULL, 0755, 0),
    PR(MKDIR, ABS, NULLPATH, NULL, 0755, 0),
    PR(MKDIR, ABS, LONGNAME, NULL, 0755, 0),
    PR(RMDIR, ABS, "d", NULL, 0, 0), /* ENOTEMPTY */
    PR(RMDIR, ABS, "f", NULL, 0, 0), /* ENOTDIR */
    PR(RMDIR, ABS, "dl", NULL, 0, 0),
    PR(RMDIR, ABS, "d/.", NULL, 0, 0),
    PR(RMDIR, ABS, "d/..", NULL, 0, 0),
    PR(RMDIR, ABS, "m", NULL, 0, 0),
    PR(RMDIR, ABS, "", NULL, 0, 0),
    PR(RMDIR, ABS, NULLPATH, NULL, 0, 0),
    PR(RENAME, ABS, "d", "f", 0, 0),   /* ENOTDIR: a dir over a file */
    PR(RENAME, ABS, "f", "e", 0, 0),   /* EISDIR: a file over a dir */
    PR(RENAME, ABS, "d", "d/x", 0, 0), /* EINVAL: into itself */
    PR(RENAME, ABS, "e", "d", 0, 0),   /* ENOTEMPTY */
    PR(RENAME, ABS, "f", "f", 0, 0),   /* nothing to do */
    PR(RENAME, ABS, "f", "ln", 0, 0),  /* the link and f are one now */
    PR(RENAME, ABS, "missing", "x", 0, 0),
    PR(RENAME, ABS, "ln", "f/x", 0, 0),
    PR(RENAME, ABS, "ro", "", 0, 0),
    PR(RENAME, ABS, NULLPATH, "x", 0, 0),
    PR(RENAME, ABS, "ro", NULLPATH, 0, 0),
    PR(RENAME, ABS, "e", "d/e2", 0, 0),
    PR(LINK, ABS, "ro", "ro2", 0, 0),
    PR(LINK, ABS, "ro", "ro2", 0, 0),         /* EEXIST */
    PR(LINK, ABS, "d", "d2", 0, 0),           /* EPERM */
    PR(LINK, ABS, "dangling", "dang2", 0, 0), /* the link itself */
    PR(LINK, ABS, "missing", "x", 0, 0),
    PR(LINK, ABS, "ro", "nodir/x", 0, 0),
    PR(LINK, ABS, NULLPATH, "x", 0, 0),
    PR(SYMLINK, ABS, "target", "s", 0, 0),
    PR(SYMLINK, ABS, "target", "s", 0, 0), /* EEXIST */
    PR(SYMLINK, ABS, "", "s2", 0, 0),      /* ENOENT */
    PR(SYMLINK, ABS, "t", "nodir/s", 0, 0),
    PR(SYMLINK, ABS, "t", "", 0, 0),
    PR(SYMLINK, ABS, NULLPATH, "s3", 0, 0),
    PR(SYMLINK, ABS, "t", NULLPATH, 0, 0),
};

NULL_ARGS_ON_PURPOSE static void path_row(const path_row_t *r, int line) {
    at_name_t n[2], n2[2];
    int dfd[2], unused;
    for (int s = 0; s < 2; s++) {
        resolve(s, r->at, r->path, &n[s], &dfd[s]);
        /* a symlink's target is taken as given; the second name is in the tree */
        if (r->call == PC_SYMLINK && n[s].path) n[s].path = r->path;
        n2[s].path = NULL;
        if (r->path2) resolve(s, AT_ABS, r->path2, &n2[s], &unused);
    }
    outcome_t o[2];
    desc_t d[2] = {{.len = 0}, {.len = 0}};
    VALGRIND_DISABLE_ERROR_REPORTING; /* NULLPATH */
    for (int s = 0; s < 2; s++) {
        const char *p = n[s].path, *p2 = n2[s].path;
        int fd = n[s].dirfd;
        struct stat st;
        char buf[64] = "";
        char *rp = NULL;
        memset(&st, 0, sizeof st);
        errno = 0;
        if (s == 0) {
            switch (r->call) {
            case PC_STAT:
                o[s].v = stat(p, &st);
                break;
            case PC_LSTAT:
                o[s].v = lstat(p, &st);
                break;
            case PC_FSTATAT:
                o[s].v = fstatat(fd, p, &st, (int)r->arg);
                break;
            case PC_ACCESS:
                o[s].v = access(p, (int)r->arg);
                break;
            case PC_FACCESSAT:
                o[s].v = faccessat(fd, p, (int)r->arg, r->arg2);
                break;
            case PC_CHMOD:
                o[s].v = chmod(p, (mode_t)r->arg);
                break;
            case PC_TRUNCATE:
                o[s].v = truncate(p, r->arg);
                break;
            case PC_UNLINK:
                o[s].v = unlink(p);
                break;
            case PC_UNLINKAT:
                o[s].v = unlinkat(fd, p, (int)r->arg);
                break;
            case PC_MKDIR:
                o[s].v = mkdir(p, (mode_t)r->arg);
                break;
            case PC_RMDIR:
                o[s].v = rmdir(p);
                break;
            case PC_RENAME:
                o[s].v = rename(p, p2);
                break;
            case PC_LINK:
                o[s].v = link(p, p2);
                break;
            case PC_SYMLINK:
                o[s].v = symlink(p, p2);
                break;
            case PC_READLINK: /* readlink(2) itself: ASan's interceptor reads a NULL path */
                o[s].v = syscall(SYS_readlinkat, AT_FDCWD, p, buf, (size_t)r->arg);
                break;
            default:
                o[s].v = (rp = realpath(p, NULL)) ? 0 : -1;
            }
        } else {
            async_future_t *f = NULL;
            switch (r->call) {
            case PC_STAT:
                f = async_stat(p, &st);
                break;
            case PC_LSTAT:
                f = async_lstat(p, &st);
                break;
            case PC_FSTATAT:
                f = async_fstatat(fd, p, &st, (int)r->arg);
                break;
            case PC_ACCESS:
                f = async_access(p, (int)r->arg);
                break;
            case PC_FACCESSAT:
                f = async_faccessat(fd, p, (int)r->arg, r->arg2);
                break;
            case PC_CHMOD:
                f = async_chmod(p, (mode_t)r->arg);
                break;
            case PC_TRUNCATE:
                f = async_truncate(p, r->arg);
                break;
            case PC_UNLINK:
                f = async_unlink(p);
                break;
            case PC_UNLINKAT:
                f = async_unlinkat(fd, p, (int)r->arg);
                break;
            case PC_MKDIR:
                f = async_mkdir(p, (mode_t)r->arg);
                break;
            case PC_RMDIR:
                f = async_rmdir(p);
                break;
            case PC_RENAME:
                f = async_rename(p, p2);
                break;
            case PC_LINK:
                f = async_link(p, p2);
                break;
            case PC_SYMLINK:
                f = async_symlink(p, p2);
                break;
            case PC_READLINK:
                f = async_readlink(p, buf, (size_t)r->arg);
                break;
            default:
                f = async_realpath(p, NULL);
            }
            if (r->call == PC_REALPATH)
                o[s].v = (rp = async_await_ptr(f)) ? 0 : -1;
            else
                o[s].v = async_await(f);
        }
        o[s].err = errno;
        if (o[s].v >= 0 && r->call <= PC_FSTATAT) stat_fields(&st, &d[s]);
        if (o[s].v > 0 && r->call == PC_READLINK) add(&d[s], "[%.*s]", (int)o[s].v, buf);
        if (rp) { /* the same path but for the tree's root */
            size_t l = strlen(roots[s]);
            add(&d[s], "%s", strncmp(rp, roots[s], l) == 0 ? rp + l : rp);
            free(rp);
        }
    }
    VALGRIND_ENABLE_ERROR_REPORTING;
    for (int s = 0; s < 2; s++)
        if (dfd[s] >= 0) close(dfd[s]);
    char what[200];
    snprintf(what, sizeof what, "path row %d: %s(%d, \"%s\", \"%s\", %ld, %d)", line,
             pc_names[r->call], r->at, r->path, r->path2 ? r->path2 : "", r->arg, r->arg2);
    report(what, o[0], o[1], __LINE__);
    if (strcmp(d[0].s, d[1].s) != 0)
        check_fail(__FILE__, __LINE__, "%s [%s, %s]: glibc {%s}, async {%s}", what, compare_where,
                   variant_names[variant], d[0].s, d[1].s);
    same_trees(what, __LINE__);
}

static void path_cases(void) {
    variant = FRESH;
    new_round();
    for (size_t i = 0; i < sizeof path_rows / sizeof *path_rows; i++) {
        /* a buffer size past the buffer, which valgrind reports on the pool thread */
        if (!KERNEL_ONLY && path_rows[i].call == PC_READLINK && path_rows[i].arg < 0) continue;
        path_row(&path_rows[i], (int)i);
    }
}

Test(fs_glibc, path_calls) { both_contexts(path_cases); }
