/* The directory streams of dir.h against glibc's: async_opendir,
 * async_fdopendir, async_readdir, async_rewinddir, async_telldir,
 * async_seekdir, async_dirfd and async_closedir next to opendir, fdopendir,
 * readdir, ... on the same directories and fds, bad ones included. Each row
 * runs glibc's stream to its end, then ours, and compares what they showed:
 * the stream or the errno, the fd's number and flags, every entry (name,
 * type, inode, record length, cookie), telldir after each, errno across
 * entries and past the end (left alone), rewinds and seeks (bad positions
 * included), and what closedir leaves. Then directories that change or are
 * removed while read, and a directory of many entries, which takes several
 * getdents64 batches. Every case runs from a plain thread and from a task.
 * Where glibc would crash (a NULL name or stream), the answer dir.h
 * documents is asserted. */
#include "fs_helpers.h"
/* fs_helpers.h's SAME asserts, which must not run in a task: glibc_compare.h
 * has the check-based ones */
#undef SAME
#undef SAME_BAD
#include "glibc_compare.h"

#include <limits.h>
#include <sys/resource.h>
#include <sys/socket.h>

/* closedir(NULL), which glibc's header declares nonnull, is compared on
 * purpose: UBSan's check of that attribute is off where it is made */
#pragma GCC diagnostic ignored "-Wnonnull"
#define NULL_ARGS_ON_PURPOSE __attribute__((no_sanitize("nonnull-attribute")))

static void dir_fini(void) {
    scratch_remove();
    rt_stop();
}

TestSuite(dir_glibc, .init = fs_init, .fini = dir_fini, .timeout = 60);

/* No errno has this number: a call that leaves errno alone shows it. */
#define SENTINEL 4077

/* ---- the two sides ------------------------------------------------------------------
 * Side 0 is glibc's DIR, side 1 asyncstd's async_dir_t; the same code drives
 * both. */

enum { GLIBC, ASYNC };
static const char *side_names[] = {"glibc", "async"};

static void *s_opendir(int side, const char *name) {
    return side == GLIBC ? (void *)opendir(name) : async_await_ptr(async_opendir(name));
}

static void *s_fdopendir(int side, int fd) {
    return side == GLIBC ? (void *)fdopendir(fd) : (void *)async_fdopendir(fd);
}

static struct dirent *s_readdir(int side, void *s) {
    return side == GLIBC ? readdir(s) : async_await_ptr(async_readdir(s));
}

static long s_telldir(int side, void *s) { return side == GLIBC ? telldir(s) : async_telldir(s); }

static void s_seekdir(int side, void *s, long loc) {
    if (side == GLIBC)
        seekdir(s, loc);
    else
        async_seekdir(s, loc);
}

static void s_rewinddir(int side, void *s) {
    if (side == GLIBC)
        rewinddir(s);
    else
        async_rewinddir(s);
}

static int s_dirfd(int side, void *s) { return side == GLIBC ? dirfd(s) : async_dirfd(s); }

static int s_closedir(int side, void *s) {
    return side == GLIBC ? closedir(s) : (int)async_await(async_closedir(s));
}

/* ---- descriptions -------------------------------------------------------------------
 * What a side showed, as text; the two texts must be equal. */

typedef struct desc {
    char *s;
    size_t len, cap;
} desc_t;

static void __attribute__((format(printf, 2, 3))) add(desc_t *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (d->len + (size_t)n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 1024;
        while (cap < d->len + (size_t)n + 1) cap *= 2;
        char *s = realloc(d->s, cap);
        if (!s) return;
        d->s = s;
        d->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(d->s + d->len, d->cap - d->len, fmt, ap);
    va_end(ap);
    d->len += (size_t)n;
}

static void desc_free(desc_t *d) {
    free(d->s);
    *d = (desc_t){0};
}

/* The two descriptions must be equal; a failure shows them from the entry
 * where they part. Both are freed. */
static void same_desc(const char *what, desc_t d[2], int line) {
    const char *g = d[0].s ? d[0].s : "", *a = d[1].s ? d[1].s : "";
    if (strcmp(g, a) != 0) {
        size_t i = 0;
        while (g[i] && g[i] == a[i]) i++;
        while (i > 0 && g[i - 1] != ';') i--;
        check_fail(__FILE__, line,
                   "%s [%s]: they part after %zu chars:\n  glibc %.300s\n  async %.300s", what,
                   compare_where, i, g + i, a + i);
    }
    desc_free(&d[0]);
    desc_free(&d[1]);
}

/* One readdir, described: the entry and errno, then telldir. Whether an
 * entry came. */
static bool read_one(int side, void *s, desc_t *d) {
    errno = SENTINEL;
    struct dirent *e = s_readdir(side, s);
    int err = errno;
    if (e)
        add(d, "%s t%u i%ju r%u o%jd e%s", e->d_name, e->d_type, (uintmax_t)e->d_ino, e->d_reclen,
            (intmax_t)e->d_off, ename(err));
    else
        add(d, "NULL e%s", ename(err));
    add(d, " @%ld;", s_telldir(side, s));
    return e != NULL;
}

/* Up to `max` readdirs, stopping after the first NULL and one more call. */
static int read_n(int side, void *s, desc_t *d, int max) {
    int n = 0;
    while (n < max && read_one(side, s, d)) n++;
    if (n < max) read_one(side, s, d);
    return n;
}

#define ALL INT_MAX

/* A seek, described: errno as the seek left it (both seek with lseek(2),
 * whose errors show) and telldir after it. */
static void seek_one(int side, void *s, long loc, desc_t *d) {
    errno = SENTINEL;
    s_seekdir(side, s, loc);
    int err = errno;
    add(d, "seekdir %ld e%s @%ld;", loc, ename(err), s_telldir(side, s));
}

/* The same for rewinddir. */
static void rewind_one(int side, void *s, desc_t *d) {
    errno = SENTINEL;
    s_rewinddir(side, s);
    int err = errno;
    add(d, "rewinddir e%s @%ld;", ename(err), s_telldir(side, s));
}

/* closedir, described, and whether the fd is closed after it. */
static void close_one(int side, void *s, desc_t *d) {
    int fd = s_dirfd(side, s);
    errno = SENTINEL;
    int r = s_closedir(side, s);
    int err = errno;
    errno = 0;
    int after = fcntl(fd, F_GETFD);
    add(d, "closedir %d e%s; fd after %d/%s;", r, ename(err), after, ename(errno));
}

/* An fd's flags, as fcntl(2) shows them. */
static void fd_flags(int fd, desc_t *d) {
    errno = 0;
    int fl = fcntl(fd, F_GETFL);
    int fl_err = errno;
    errno = 0;
    int fdfl = fcntl(fd, F_GETFD);
    add(d, "fl %#o/%s fd %#x/%s;", fl, ename(fl_err), fdfl, ename(errno));
}

/* A stream from start to end: what it shows at first, every entry, a rewind
 * and its first entries again, then closedir. */
static void describe_stream(int side, void *s, desc_t *d) {
    int fd = s_dirfd(side, s);
    add(d, "fd %d; ", fd);
    fd_flags(fd, d);
    add(d, "@%ld;\n", s_telldir(side, s));
    read_n(side, s, d, ALL);
    rewind_one(side, s, d);
    read_n(side, s, d, 3);
    close_one(side, s, d);
}

/* The lowest fd number free now: a row must give back every fd it took. */
static int lowest_free_fd(void) {
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    close(fd);
    return fd;
}

/* ---- the fixture ---------------------------------------------------------------------
 * Each run of a case (thread, then task) has a directory of its own under the
 * test's scratch directory. */

static char base[512];
static int run_no;

/* A path under the run's directory, in one of a few rotating buffers. */
static const char *at(const char *name) {
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, 1024, "%s/%s", base, name);
    return b;
}

static void put(const char *name) {
    int fd = open(at(name), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
}

/* A new run directory: d holds one entry of each type, e is empty, f is a
 * file, dl and the rest are links, noread can be searched but not read, and
 * nosearch read but not searched. */
static void fresh_base(void) {
    snprintf(base, sizeof base, "%s/%s-%d", scratch, compare_where, ++run_no);
    CHECK_EQ(mkdir(base, 0755), 0);
    CHECK_EQ(chmod(base, 0755), 0); /* some rows run as another user */
    CHECK_EQ(mkdir(at("d"), 0755), 0);
    put("d/a");
    put("d/bb");
    put("d/ccc");
    CHECK_EQ(mkdir(at("d/sub"), 0755), 0);
    CHECK_EQ(symlink("a", at("d/ln")), 0);
    CHECK_EQ(mkfifo(at("d/p"), 0600), 0);
    CHECK_EQ(mkdir(at("e"), 0755), 0);
    put("f");
    CHECK_EQ(mkfifo(at("fifo"), 0600), 0);
    CHECK_EQ(symlink("d", at("dl")), 0);
    CHECK_EQ(symlink("missing", at("dangling")), 0);
    CHECK_EQ(symlink("loop", at("loop")), 0);
    CHECK_EQ(mkdir(at("noread"), 0755), 0);
    put("noread/x");
    CHECK_EQ(chmod(at("noread"), 0311), 0);
    CHECK_EQ(mkdir(at("nosearch"), 0755), 0);
    CHECK_EQ(mkdir(at("nosearch/in"), 0755), 0);
    CHECK_EQ(chmod(at("nosearch"), 0644), 0);
}

/* The modes that would keep the scratch directory from being removed. */
static void end_base(void) {
    chmod(at("noread"), 0755);
    chmod(at("nosearch"), 0755);
}

/* ---- opendir ------------------------------------------------------------------------- */

#define LONGNAME "<longname>" /* a component past NAME_MAX */
#define LONGPATH "<longpath>" /* a path past PATH_MAX */

/* A row's name: under the run's directory, or as given when absolute. */
static const char *row_name(const char *name) {
    static char longname[300], longpath[PATH_MAX + 100];
    if (!longname[0]) {
        memset(longname, 'n', sizeof longname - 1);
        for (size_t i = 0; i + 2 < sizeof longpath; i += 2) memcpy(longpath + i, "d/", 2);
    }
    if (strcmp(name, LONGNAME) == 0) return at(longname);
    if (strcmp(name, LONGPATH) == 0) return longpath;
    if (name[0] == '/' || name[0] == 0) return name;
    return at(name);
}

/* Both open the name, or both fail with one errno, and the streams show the
 * same; nothing is left open. */
static void opendir_row(const char *name) {
    const char *path = row_name(name);
    int free_before = lowest_free_fd();
    desc_t d[2] = {{0}, {0}};
    for (int side = 0; side < 2; side++) {
        errno = SENTINEL;
        void *s = s_opendir(side, path);
        int err = errno;
        if (!s) {
            add(&d[side], "NULL e%s;", ename(err));
            continue;
        }
        add(&d[side], "e%s; ", ename(err));
        /* dirfd: the directory the name resolves to */
        struct stat ds, ns;
        bool same = fstat(s_dirfd(side, s), &ds) == 0 && stat(path, &ns) == 0 &&
                    ds.st_ino == ns.st_ino && ds.st_dev == ns.st_dev;
        CHECK(same);
        add(&d[side], "same dir %d; ", same);
        describe_stream(side, s, &d[side]);
    }
    char what[160];
    snprintf(what, sizeof what, "opendir(\"%.100s\")", name);
    same_desc(what, d, __LINE__);
    CHECK_EQ(lowest_free_fd(), free_before);
}

/* The answers noted are Linux's as root, where the modes do not count. */
static const char *const opendir_rows[] = {
    "d",                   /* a directory of one entry of each type */
    "d/",                  /* the same */
    "d/.",                 /* the same */
    "d/..",                /* the run's directory */
    "d/sub",               /* "." and ".." only */
    "e",                   /* the same */
    "dl",                  /* a link to d */
    "dl/",                 /* the same */
    "noread",              /* opens as root */
    "nosearch",            /* readable */
    "nosearch/in",         /* opens as root */
    "f",                   /* ENOTDIR */
    "f/",                  /* ENOTDIR: a trailing slash on a file */
    "f/.",                 /* ENOTDIR */
    "f/x",                 /* ENOTDIR */
    "fifo",                /* ENOTDIR, and no wait for a writer */
    "d/p",                 /* the same, inside d */
    "d/ln",                /* a link to a file: ENOTDIR */
    "missing",             /* ENOENT */
    "missing/",            /* ENOENT */
    "",                    /* ENOENT */
    "dangling",            /* ENOENT */
    "dangling/",           /* ENOENT */
    "loop",                /* ELOOP */
    LONGNAME,              /* ENAMETOOLONG */
    LONGPATH,              /* ENAMETOOLONG */
    "/dev/null",           /* ENOTDIR */
    "/proc/self/fdinfo/0", /* ENOTDIR */
};

static void opendir_cases(void) {
    fresh_base();
    for (size_t i = 0; i < sizeof opendir_rows / sizeof *opendir_rows; i++)
        opendir_row(opendir_rows[i]);
    end_base();
}

Test(dir_glibc, opendir_inputs) { both_contexts(opendir_cases); }

/* As an unprivileged user, where the modes count (root passes them). */
static void unprivileged_cases(void) {
    fresh_base();
    bool root = geteuid() == 0;
    if (root) CHECK_EQ(seteuid(65534), 0);
    opendir_row("noread");      /* EACCES */
    opendir_row("nosearch/in"); /* EACCES */
    opendir_row("nosearch");    /* readable */
    opendir_row("d");
    if (root) CHECK_EQ(seteuid(0), 0);
    end_base();
}

Test(dir_glibc, opendir_unprivileged) { both_contexts(unprivileged_cases); }

/* No fd left under RLIMIT_NOFILE: EMFILE from both. */
static void no_fd_cases(void) {
    fresh_base();
    struct rlimit old, low;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)lowest_free_fd();
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    desc_t d[2] = {{0}, {0}};
    for (int side = 0; side < 2; side++) {
        errno = SENTINEL;
        void *s = s_opendir(side, at("d"));
        add(&d[side], "%s e%s;", s ? "stream" : "NULL", ename(errno));
        if (s) s_closedir(side, s);
    }
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
    same_desc("opendir without a free fd", d, __LINE__);
    end_base();
}

Test(dir_glibc, opendir_without_fds) { both_contexts(no_fd_cases); }

/* ---- fdopendir ------------------------------------------------------------------------ */

enum {
    FD_DIR,          /* O_RDONLY on d */
    FD_DIR_NONBLOCK, /* O_RDONLY | O_NONBLOCK */
    FD_DIR_CLOEXEC,  /* FD_CLOEXEC set already */
    FD_DIR_MOVED,    /* entries read from it already: its offset is past them */
    FD_DIR_EMPTY,    /* on e */
    FD_DIR_PATH,     /* O_PATH on d: glibc takes it, its readdir says EBADF */
    FD_DIR_WRONLY,   /* open(d, O_WRONLY) fails with EISDIR: fdopendir(-1) */
    FD_FILE,         /* ENOTDIR */
    FD_FILE_WRONLY,
    FD_FILE_PATH,
    FD_PIPE,
    FD_SOCKET,
    FD_DEVNULL,
    FD_MINUS1,  /* EBADF */
    FD_CLOSED,  /* a number just closed */
    FD_UNOPENED /* a number never opened */
};
static const char *fd_kind_names[] = {"dir",       "dir nonblock", "dir cloexec",  "dir moved",
                                      "empty",     "dir O_PATH",   "dir O_WRONLY", "file",
                                      "file wo",   "file O_PATH",  "pipe",         "socket",
                                      "/dev/null", "-1",           "closed",       "unopened"};

/* An fd of the kind; -1 for the kinds that are none. */
static int make_fd(int kind) {
    int fd = -1, p[2];
    switch (kind) {
    case FD_DIR:
        return open(at("d"), O_RDONLY | O_DIRECTORY);
    case FD_DIR_NONBLOCK:
        return open(at("d"), O_RDONLY | O_NONBLOCK);
    case FD_DIR_CLOEXEC:
        return open(at("d"), O_RDONLY | O_CLOEXEC);
    case FD_DIR_MOVED: {
        fd = open(at("d"), O_RDONLY);
        char buf[48]; /* two records of short names */
        CHECK(getdents64(fd, buf, sizeof buf) > 0);
        return fd;
    }
    case FD_DIR_EMPTY:
        return open(at("e"), O_RDONLY);
    case FD_DIR_PATH:
        return open(at("d"), O_PATH);
    case FD_DIR_WRONLY:
        errno = 0;
        fd = open(at("d"), O_WRONLY);
        CHECK(fd == -1 && errno == EISDIR);
        return fd;
    case FD_FILE:
        return open(at("f"), O_RDONLY);
    case FD_FILE_WRONLY:
        return open(at("f"), O_WRONLY);
    case FD_FILE_PATH:
        return open(at("f"), O_PATH);
    case FD_PIPE:
        CHECK_EQ(pipe(p), 0);
        close(p[1]);
        return p[0];
    case FD_SOCKET:
        return socket(AF_UNIX, SOCK_STREAM, 0);
    case FD_DEVNULL:
        return open("/dev/null", O_RDONLY);
    case FD_MINUS1:
        return -1;
    case FD_CLOSED:
        fd = open("/dev/null", O_RDONLY);
        close(fd);
        return fd;
    default:
        return 4000;
    }
}

/* Both take the fd, or both refuse it with one errno and leave its flags as
 * they were; the streams show the same, and closedir closes the fd. */
static void fdopendir_row(int kind) {
    int free_before = lowest_free_fd();
    desc_t d[2] = {{0}, {0}};
    for (int side = 0; side < 2; side++) {
        int fd = make_fd(kind);
        errno = SENTINEL;
        void *s = s_fdopendir(side, fd);
        int err = errno;
        if (!s) {
            add(&d[side], "NULL e%s; ", ename(err));
            fd_flags(fd, &d[side]);
            if (fd >= 0 && fd != 4000) close(fd);
            continue;
        }
        add(&d[side], "e%s; ", ename(err));
        CHECK_EQ(s_dirfd(side, s), fd);
        describe_stream(side, s, &d[side]);
    }
    char what[160];
    snprintf(what, sizeof what, "fdopendir of %s", fd_kind_names[kind]);
    same_desc(what, d, __LINE__);
    CHECK_EQ(lowest_free_fd(), free_before);
}

static void fdopendir_cases(void) {
    fresh_base();
    for (int k = FD_DIR; k <= FD_UNOPENED; k++) fdopendir_row(k);
    end_base();
}

Test(dir_glibc, fdopendir_inputs) { both_contexts(fdopendir_cases); }

/* ---- readdir -------------------------------------------------------------------------- */

enum { NBIG = 1000 }; /* at 72 bytes a record, three getdents64 batches of 32 KiB */

static void big_name(char *buf, size_t size, int i) {
    snprintf(buf, size, "entry-%04d-with-a-name-long-enough-to-need-batches", i);
}

/* A directory of NBIG entries, mostly files, with directories, links and a
 * FIFO among them (their d_type differs). */
static const char *make_big(void) {
    static char path[600];
    if (path[0]) return path;
    snprintf(path, sizeof path, "%s/big", scratch);
    CHECK_EQ(mkdir(path, 0755), 0);
    for (int i = 0; i < NBIG; i++) {
        char name[100], p[800];
        big_name(name, sizeof name, i);
        snprintf(p, sizeof p, "%s/%s", path, name);
        if (i % 10 == 1)
            CHECK_EQ(mkdir(p, 0755), 0);
        else if (i % 10 == 2)
            CHECK_EQ(symlink("target", p), 0);
        else if (i == 3)
            CHECK_EQ(mkfifo(p, 0600), 0);
        else
            CHECK_EQ(mknod(p, S_IFREG | 0644, 0), 0);
    }
    return path;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Our stream's names, sorted, are the directory's: NBIG entries, "." and "..". */
static void names_are_big(void) {
    async_dir_t *s = async_await_ptr(async_opendir(make_big()));
    CHECK(s != NULL);
    if (!s) return;
    char **names = calloc(NBIG + 10, sizeof *names);
    int n = 0;
    struct dirent *e;
    while (n < NBIG + 10 && (e = async_await_ptr(async_readdir(s)))) names[n++] = strdup(e->d_name);
    CHECK_EQ(n, NBIG + 2);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 0; i < n && i < NBIG + 2; i++) {
        char want[100];
        if (i < 2)
            snprintf(want, sizeof want, "%s", i == 0 ? "." : "..");
        else
            big_name(want, sizeof want, i - 2);
        if (strcmp(names[i], want) != 0)
            check_fail(__FILE__, __LINE__, "sorted name %d: %s, want %s", i, names[i], want);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    CHECK_EQ(async_await(async_closedir(s)), 0);
}

static void many_cases(void) {
    fresh_base();
    opendir_row(make_big());
    opendir_row("e"); /* "." and ".." only */
    names_are_big();
    end_base();
}

Test(dir_glibc, readdir_many_entries) { both_contexts(many_cases); }

/* Past the end, glibc asks the kernel again at each readdir. The kernel's
 * answer there is the file system's: /proc/self/fd lists fds by number from
 * the position, and leaves the position at the end past the fd table, whose
 * size telldir then shows; an fd opened above that, which grows the table,
 * is listed by the next readdir. (POSIX leaves it open whether an entry added
 * after opendir is seen; the comparison is with glibc on the same kernel.)
 * Not under valgrind, whose own fds sit at the top of the table. */
static void past_end_cases(void) {
    if (!KERNEL_ONLY) return;
    desc_t d[2] = {{0}, {0}};
    void *s[2];
    long end = 0;
    for (int side = 0; side < 2; side++) {
        s[side] = s_opendir(side, "/proc/self/fd");
        CHECK(s[side] != NULL);
        if (!s[side]) return;
    }
    for (int side = 0; side < 2; side++) {
        while (s_readdir(side, s[side])) continue;
        if (s_telldir(side, s[side]) > end) end = s_telldir(side, s[side]);
        read_one(side, s[side], &d[side]); /* still the end */
    }
    /* the fd above the table, under a soft RLIMIT_NOFILE raised for it if need be */
    struct rlimit old, lim;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &old), 0);
    lim = old;
    if (lim.rlim_cur <= (rlim_t)end) lim.rlim_cur = (rlim_t)end + 1;
    int hi = -1;
    if (lim.rlim_cur <= lim.rlim_max && setrlimit(RLIMIT_NOFILE, &lim) == 0) {
        int low = open("/dev/null", O_RDONLY | O_CLOEXEC);
        hi = fcntl(low, F_DUPFD_CLOEXEC, (int)end);
        close(low);
        CHECK(hi >= end);
    } else {
        fprintf(stderr, "%s: [%s] no fd can be opened above %ld here: row skipped\n", __func__,
                compare_where, end);
    }
    for (int side = 0; side < 2; side++) {
        errno = SENTINEL;
        struct dirent *e = s_readdir(side, s[side]);
        add(&d[side], "%s e%s;",
            e && atoi(e->d_name) == hi ? "the new fd"
            : e                        ? e->d_name
                                       : "NULL",
            ename(errno));
        read_one(side, s[side], &d[side]);
        close_one(side, s[side], &d[side]);
    }
    if (hi >= 0) {
        close(hi);
        CHECK(strstr(d[GLIBC].s, "the new fd")); /* the row shows what it is for */
    }
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &old), 0);
    same_desc("readdir of /proc/self/fd past its end", d, __LINE__);
}

Test(dir_glibc, readdir_past_the_end) { both_contexts(past_end_cases); }

/* Entries added and removed while the streams are half read: each stream
 * returns every entry that was there all along exactly once, and nothing
 * twice (whether it returns the added and removed ones, POSIX leaves open);
 * after rewinddir both list the directory as it is now, alike. The
 * directory, two batches long, is made beforehand on the test's thread (a
 * task would hold its worker for long), one per run; the changes are made
 * with async calls. */
enum { NCHG = 600, NREMOVED = 100, NADDED = 100, NFIRST = 50 };

static const char *chg_path(const char *where, const char *name) {
    static char buf[4][700];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/chg-%s/%s", scratch, where, name);
    return b;
}

static void chg_name(char *buf, size_t size, int i) {
    snprintf(buf, size, "keep-%03d-a-name-long-enough-to-need-two-batches", i);
}

static void make_chg(const char *where) {
    char name[128];
    cr_assert_eq(mkdir(chg_path(where, ""), 0755), 0);
    for (int i = 0; i < NCHG; i++) {
        chg_name(name, sizeof name, i);
        cr_assert_eq(mknod(chg_path(where, name), S_IFREG | 0644, 0), 0);
    }
}

static void changed_cases(void) {
    char name[128];
    void *s[2];
    int *seen[2];
    int dots[2] = {0, 0};
    for (int side = 0; side < 2; side++) {
        s[side] = s_opendir(side, chg_path(compare_where, ""));
        seen[side] = calloc(NCHG, sizeof(int));
        CHECK(s[side] != NULL);
        if (!s[side]) return;
    }
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1) { /* between the halves */
            for (int i = 0; i < NREMOVED; i++) {
                chg_name(name, sizeof name, i * (NCHG / NREMOVED));
                CHECK_EQ(async_await(async_unlink(chg_path(compare_where, name))), 0);
            }
            for (int i = 0; i < NADDED; i++) {
                snprintf(name, sizeof name, "new-%03d", i);
                int fd = (int)async_await(
                    async_open(chg_path(compare_where, name), O_WRONLY | O_CREAT | O_EXCL, 0644));
                CHECK(fd >= 0);
                CHECK_EQ(async_await(async_close(fd)), 0);
            }
        }
        for (int side = 0; side < 2; side++) {
            struct dirent *e;
            for (int n = 0; (phase == 1 || n < NFIRST) && (e = s_readdir(side, s[side])); n++) {
                int k;
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    dots[side]++;
                else if (sscanf(e->d_name, "keep-%d", &k) == 1 && k >= 0 && k < NCHG)
                    seen[side][k]++;
            }
        }
    }
    for (int side = 0; side < 2; side++) {
        CHECK_EQ(dots[side], 2);
        for (int k = 0; k < NCHG; k++) {
            bool removed = k % (NCHG / NREMOVED) == 0;
            if (seen[side][k] > 1 || (!removed && seen[side][k] != 1))
                check_fail(__FILE__, __LINE__, "%s [%s]: keep-%03d seen %d times", side_names[side],
                           compare_where, k, seen[side][k]);
        }
        free(seen[side]);
    }
    desc_t d[2] = {{0}, {0}};
    for (int side = 0; side < 2; side++) {
        rewind_one(side, s[side], &d[side]);
        add(&d[side], "%d entries;", read_n(side, s[side], &d[side], ALL));
        close_one(side, s[side], &d[side]);
    }
    char want[32];
    snprintf(want, sizeof want, "%d entries;", NCHG - NREMOVED + NADDED + 2);
    CHECK(d[ASYNC].s && strstr(d[ASYNC].s, want));
    same_desc("the changed directory after rewinddir", d, __LINE__);
}

Test(dir_glibc, readdir_while_changed) {
    make_chg("thread");
    make_chg("task");
    both_contexts(changed_cases);
}

/* A directory removed while open: readdir ends without an error, as glibc's
 * takes the kernel's ENOENT for the end. Streams from fdopendir, and streams
 * read once before the removal, show what glibc's show; a stream of
 * async_opendir shows at most the entries its open read, as dir.h says,
 * where glibc's shows nothing. */
static void removed_cases(void) {
    fresh_base();
    CHECK_EQ(mkdir(at("gone"), 0755), 0);
    put("gone/x");
    void *opened[2], *fdopened[2], *read_once[2];
    desc_t once[2] = {{0}, {0}};
    for (int side = 0; side < 2; side++) {
        opened[side] = s_opendir(side, at("gone"));
        fdopened[side] = s_fdopendir(side, open(at("gone"), O_RDONLY | O_DIRECTORY));
        read_once[side] = s_opendir(side, at("gone"));
        CHECK(opened[side] && fdopened[side] && read_once[side]);
        if (!opened[side] || !fdopened[side] || !read_once[side]) return;
        read_one(side, read_once[side], &once[side]);
    }
    CHECK_EQ(unlink(at("gone/x")), 0);
    CHECK_EQ(rmdir(at("gone")), 0);

    desc_t d[2] = {{0}, {0}};
    for (int side = 0; side < 2; side++) {
        read_n(side, fdopened[side], &d[side], ALL);
        rewind_one(side, fdopened[side], &d[side]);
        read_n(side, fdopened[side], &d[side], ALL);
        close_one(side, fdopened[side], &d[side]);
    }
    same_desc("fdopendir stream of a removed directory", d, __LINE__);
    for (int side = 0; side < 2; side++) {
        read_n(side, read_once[side], &once[side], ALL);
        rewind_one(side, read_once[side], &once[side]);
        read_n(side, read_once[side], &once[side], ALL);
        close_one(side, read_once[side], &once[side]);
    }
    same_desc("stream read once, then its directory removed", once, __LINE__);

    /* glibc's opendir stream: nothing, and errno left alone */
    int n = 0;
    errno = SENTINEL;
    while (readdir(opened[GLIBC])) n++;
    CHECK_EQ(n, 0);
    CHECK_EQ(errno, SENTINEL);
    /* ours: at most the entries of the open's batch, each once, then the same end */
    async_dir_t *a = opened[ASYNC];
    struct dirent *e;
    int counts[3] = {0, 0, 0};
    errno = SENTINEL;
    while ((e = async_await_ptr(async_readdir(a)))) {
        int k = !strcmp(e->d_name, ".") ? 0 : !strcmp(e->d_name, "..") ? 1 : 2;
        CHECK(k < 2 || !strcmp(e->d_name, "x"));
        CHECK(++counts[k] == 1);
    }
    CHECK_EQ(errno, SENTINEL);
    errno = SENTINEL;
    CHECK(async_await_ptr(async_readdir(a)) == NULL);
    CHECK_EQ(errno, SENTINEL);
    /* a rewind drops the batch: nothing, as glibc's */
    for (int side = 0; side < 2; side++) {
        rewind_one(side, opened[side], &d[side]);
        read_n(side, opened[side], &d[side], ALL);
        close_one(side, opened[side], &d[side]);
    }
    same_desc("opendir stream of a removed directory, rewound", d, __LINE__);
    end_base();
}

Test(dir_glibc, readdir_removed_dir) { both_contexts(removed_cases); }

/* ---- telldir, seekdir, rewinddir --------------------------------------------------- */

/* On one directory: positions remembered while reading, sought again (each
 * gives the same entries as first), rewinds, and positions no telldir gave. */
static void seek_row(const char *path, int nentries, const char *what) {
    enum { NMARKS = 8 };
    int at_entry[NMARKS] = {0, 1, 2, 7, nentries / 3, nentries / 2, nentries - 1, nentries};
    for (int m = 0; m < NMARKS; m++)
        if (at_entry[m] > nentries) at_entry[m] = nentries;
    desc_t d[2] = {{0}, {0}};
    for (int side = 0; side < 2; side++) {
        void *s = s_opendir(side, path);
        CHECK(s != NULL);
        if (!s) return;
        desc_t *o = &d[side];
        long marks[NMARKS];
        char names[NMARKS][NAME_MAX + 1]; /* the entry read from each mark ("" at the end) */
        add(o, "@%ld;", s_telldir(side, s));
        /* the positions at some entries, and the entries from there */
        for (int i = 0; i <= nentries; i++) {
            long here = s_telldir(side, s);
            struct dirent *e = i < nentries ? s_readdir(side, s) : NULL;
            for (int m = 0; m < NMARKS; m++) {
                if (at_entry[m] != i) continue;
                marks[m] = here;
                snprintf(names[m], sizeof names[m], "%s", e ? e->d_name : "");
            }
            if (e) add(o, "%s @%ld;", e->d_name, s_telldir(side, s));
        }
        add(o, "\n");
        for (int m = NMARKS - 1; m >= 0; m--) {
            seek_one(side, s, marks[m], o);
            struct dirent *e = s_readdir(side, s);
            const char *name = e ? e->d_name : "";
            if (strcmp(name, names[m]) != 0)
                check_fail(__FILE__, __LINE__, "%s [%s, %s]: from mark %d, \"%s\", first \"%s\"",
                           what, side_names[side], compare_where, m, name, names[m]);
            add(o, "%s;", name);
            read_n(side, s, o, 3);
        }
        /* rewind from the middle, then from the end */
        rewind_one(side, s, o);
        read_n(side, s, o, nentries / 2);
        rewind_one(side, s, o);
        read_n(side, s, o, ALL);
        rewind_one(side, s, o);
        read_n(side, s, o, 2);
        /* positions no telldir gave, sought three entries into a batch */
        static const long odd[] = {-1, -2, 1, 12345, LONG_MAX, LONG_MIN, 1L << 40};
        for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
            rewind_one(side, s, o);
            read_n(side, s, o, 3);
            seek_one(side, s, odd[i], o);
            read_n(side, s, o, 3);
        }
        close_one(side, s, o);
    }
    same_desc(what, d, __LINE__);
}

static void seek_cases(void) {
    fresh_base();
    seek_row(at("d"), 8, "seeks on d");
    seek_row(at("e"), 2, "seeks on an empty directory");
    seek_row(make_big(), NBIG + 2, "seeks on a directory of many batches");
    end_base();
}

Test(dir_glibc, telldir_seekdir_rewinddir) { both_contexts(seek_cases); }

/* ---- dirfd and closedir; NULL streams ---------------------------------------------- */

NULL_ARGS_ON_PURPOSE static int glibc_closedir_null(void) { return closedir(NULL); }

/* A pointer-valued call must give NULL with errno `err`. */
#define CHECK_NULL_ERR(expr, err)                                                                \
    do {                                                                                         \
        errno = 0;                                                                               \
        void *p_ = (void *)(expr);                                                               \
        int e_ = errno;                                                                          \
        if (p_ || e_ != (err))                                                                   \
            check_fail(__FILE__, __LINE__, "%s: expected NULL/%s, got %p/%s", #expr, ename(err), \
                       p_, ename(e_));                                                           \
    } while (0)

/* dirfd gives the stream's fd on the named directory (fdopendir's own fd),
 * closedir closes it; and the NULL streams. */
static void fd_cases(void) {
    fresh_base();
    struct stat ns;
    CHECK_EQ(stat(at("d"), &ns), 0);
    for (int side = 0; side < 2; side++) {
        void *s = s_opendir(side, at("dl"));
        CHECK(s != NULL);
        if (!s) return;
        int fd = s_dirfd(side, s);
        struct stat ds;
        CHECK_EQ(fstat(fd, &ds), 0);
        CHECK(ds.st_ino == ns.st_ino && ds.st_dev == ns.st_dev);
        CHECK_EQ(s_dirfd(side, s), fd);
        CHECK_EQ(s_closedir(side, s), 0);
        CHECK_ERR(fcntl(fd, F_GETFD), EBADF);

        fd = open(at("d"), O_RDONLY | O_DIRECTORY);
        s = s_fdopendir(side, fd);
        CHECK(s != NULL);
        if (!s) return;
        CHECK_EQ(s_dirfd(side, s), fd);
        CHECK_EQ(s_closedir(side, s), 0);
        CHECK_ERR(fcntl(fd, F_GETFD), EBADF);
    }
    SAME(glibc_closedir_null(), async_closedir(NULL)); /* EINVAL */

    /* where glibc would crash, dir.h's answers; errno stays where nothing is said */
    CHECK_NULL_ERR(async_await_ptr(async_opendir(NULL)), EFAULT);
    CHECK_NULL_ERR(async_await_ptr(async_readdir(NULL)), EBADF);
    CHECK_ERR(async_telldir(NULL), EBADF);
    CHECK_ERR(async_dirfd(NULL), EINVAL);
    errno = SENTINEL;
    async_rewinddir(NULL);
    async_seekdir(NULL, 5);
    CHECK_EQ(errno, SENTINEL);
    end_base();
}

Test(dir_glibc, dirfd_closedir_and_null_streams) { both_contexts(fd_cases); }
