/* Tests of the inline answers for file calls on cached data (src/fs/cached.c,
 * the short-read and sendfile fast paths): each call against glibc's answer
 * for the same input, and the routes themselves. Which route a call took is
 * seen from outside: with every pool thread held in the open(2) of a FIFO
 * that has no writer, an inline call's future is settled when it is
 * returned, and a pool call's only once the FIFO gets a writer. */
#include "fs_helpers.h"

#include <linux/openat2.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>

TestSuite(fs_cached, .init = fs_init, .fini = fs_fini, .timeout = 30);

/* ---- open against glibc ----------------------------------------------------------- */

/* openat(2) and then async_openat with the same arguments, each fd closed
 * before the next call, so that both get the lowest free number: value,
 * errno, the file opened, its status flags and close-on-exec must agree. */
static void same_open(int dirfd, const char *path, int flags, int line) {
    struct stat sa, sb;
    int fla = -1, fda = -1, flb = -1, fdb = -1;
    errno = 0;
    int a = openat(dirfd, path, flags, 0600);
    int ea = errno;
    if (a >= 0) {
        cr_assert_eq(fstat(a, &sa), 0);
        fla = fcntl(a, F_GETFL);
        fda = fcntl(a, F_GETFD);
        close(a);
    }
    errno = 0;
    int b = (int)async_await(async_openat(dirfd, path, flags, 0600));
    int eb = errno;
    if (b >= 0) {
        cr_assert_eq(fstat(b, &sb), 0);
        flb = fcntl(b, F_GETFL);
        fdb = fcntl(b, F_GETFD);
        close(b);
    }
    cr_assert(a == b && (a >= 0 || ea == eb),
              "line %d: openat(%d, \"%s\", %#o): libc %d/%s, async %d/%s", line, dirfd, path, flags,
              a, ename(ea), b, ename(eb));
    if (a >= 0)
        cr_assert(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino && fla == flb && fda == fdb,
                  "line %d: \"%s\" %#o: another file or other flags (%#o/%#o, %d/%d)", line, path,
                  flags, fla, flb, fda, fdb);
}
#define SAME_OPEN(d, p, f) same_open(d, p, f, __LINE__)

static void make_names(void) {
    make_file("f", 100);
    cr_assert_eq(mkdir(P("d"), 0755), 0);
    make_file("d/g", 10);
    cr_assert_eq(symlink("f", P("ln")), 0);
    cr_assert_eq(symlink("loop", P("loop")), 0);
    cr_assert_eq(symlink("d", P("dl")), 0);
    cr_assert_eq(symlink("missing", P("dangling")), 0);
    cr_assert_eq(mkfifo(P("fifo"), 0600), 0);
}

static const char *names[] = {"f",    "d",    "d/g", "d/../f",  "d/",        "f/",       "ln",
                              "loop", "dl/g", "f/x", "missing", "missing/x", "dangling", ""};

static const int flag_sets[] = {
    O_RDONLY,
    O_WRONLY,
    O_RDWR,
    O_RDONLY | O_CLOEXEC,
    O_WRONLY | O_APPEND,
    O_RDONLY | O_NONBLOCK,
    O_RDONLY | O_NOFOLLOW,
    O_RDONLY | O_DIRECTORY,
    O_RDWR | O_DIRECTORY,
    O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
    O_PATH,
    O_PATH | O_NOFOLLOW,
    O_PATH | O_DIRECTORY,
    O_PATH | O_WRONLY, /* openat2(2) refuses it, openat(2) ignores O_WRONLY */
    O_RDONLY | O_NOATIME,
    O_RDONLY | O_SYNC,
    O_RDONLY | O_NOCTTY,
};

/* Every name with every flag set, relative to dirfd, with `prefix` before
 * the name (an absolute path, or none). */
static void open_all(int dirfd, const char *prefix) {
    char path[600];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s%s", prefix, names[i]);
        for (size_t k = 0; k < sizeof flag_sets / sizeof flag_sets[0]; k++)
            SAME_OPEN(dirfd, path, flag_sets[k]);
        if (strcmp(names[i], "missing") != 0) /* would create it: libc first, then EEXIST */
            SAME_OPEN(dirfd, path, O_RDONLY | O_CREAT | O_EXCL);
    }
    /* a FIFO, only where no open waits: O_NONBLOCK, O_RDWR, O_PATH, O_DIRECTORY */
    snprintf(path, sizeof path, "%sfifo", prefix);
    SAME_OPEN(dirfd, path, O_RDONLY | O_NONBLOCK);
    SAME_OPEN(dirfd, path, O_WRONLY | O_NONBLOCK); /* ENXIO: no reader */
    SAME_OPEN(dirfd, path, O_RDWR);
    SAME_OPEN(dirfd, path, O_PATH);
    SAME_OPEN(dirfd, path, O_RDONLY | O_DIRECTORY);
}

Test(fs_cached, open_same_as_glibc_absolute) {
    make_names();
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s/", scratch);
    open_all(AT_FDCWD, prefix);
    open_all(-5, prefix); /* an absolute path ignores dirfd */
    rt_stop();
}

Test(fs_cached, open_same_as_glibc_relative) {
    make_names();
    int dfd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(dfd, 0);
    open_all(dfd, "");
    cr_assert_eq(chdir(scratch), 0);
    open_all(AT_FDCWD, "");
    open_all(AT_FDCWD, "./");
    int ffd = open(P("f"), O_RDONLY);
    SAME_OPEN(ffd, "x", O_RDONLY);   /* ENOTDIR: dirfd is no directory */
    SAME_OPEN(-5, "f", O_RDONLY);    /* EBADF */
    SAME_OPEN(1000, "f", O_RDONLY);  /* EBADF: not open */
    SAME_OPEN(dfd, "d/g", O_RDONLY); /* through a subdirectory */
    close(ffd);
    close(dfd);
    rt_stop();
}

Test(fs_cached, open_more_errors) {
    make_names();
    char longname[400];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    SAME_OPEN(AT_FDCWD, longname, O_RDONLY); /* ENAMETOOLONG */
    SAME_OPEN(AT_FDCWD, "/proc/self/status", O_RDONLY);
    SAME_OPEN(AT_FDCWD, "/sys/kernel/uevent_seqnum", O_RDONLY); /* through the pool */
    SAME_OPEN(AT_FDCWD, P("never-looked-up"), O_RDONLY);        /* ENOENT, through the pool */
    SAME_OPEN(AT_FDCWD, "/dev/null", O_RDWR);
    SAME_OPEN(AT_FDCWD, "/dev/null", O_RDONLY | O_DIRECTORY);
    /* EACCES: root is never denied, so as nobody, for the file and a search */
    cr_assert_eq(chmod(P("f"), 0), 0);
    cr_assert_eq(chmod(P("d"), 0600), 0);
    cr_assert_eq(seteuid(65534), 0);
    SAME_OPEN(AT_FDCWD, P("f"), O_RDONLY);
    SAME_OPEN(AT_FDCWD, P("f"), O_PATH);
    SAME_OPEN(AT_FDCWD, P("d/g"), O_RDONLY);
    SAME_OPEN(AT_FDCWD, P("d/g"), O_PATH);
    SAME_OPEN(AT_FDCWD, P("d"), O_RDONLY | O_DIRECTORY);
    SAME_OPEN(AT_FDCWD, P("ln"), O_RDONLY);
    cr_assert_eq(seteuid(0), 0);
    ASSERT_ERR(async_await(async_open(NULL, O_RDONLY)), EFAULT);
    rt_stop();
}

Test(fs_cached, open_that_creates) {
    make_names();
    /* O_CREAT, O_TRUNC and O_TMPFILE go to the pool; their effects are glibc's */
    int fd = (int)async_await(async_open(P("new"), O_WRONLY | O_CREAT | O_EXCL, 0640));
    cr_assert_geq(fd, 0);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0640 & ~(mode_t)umask(022));
    close(fd);
    ASSERT_ERR(async_await(async_open(P("new"), O_WRONLY | O_CREAT | O_EXCL, 0640)), EEXIST);
    fd = (int)async_await(async_open(P("f"), O_WRONLY | O_TRUNC));
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(stat(P("f"), &st), 0);
    cr_assert_eq(st.st_size, 0);
    fd = (int)async_await(async_open(scratch, O_TMPFILE | O_RDWR, 0600));
    cr_assert_geq(fd, 0);
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert(S_ISREG(st.st_mode) && st.st_nlink == 0);
    close(fd);
    SAME_OPEN(AT_FDCWD, P("f"), O_TMPFILE | O_RDWR); /* ENOTDIR */
    rt_stop();
}

/* A name opened inline before is opened in one walk and checked after: one
 * that has become something else since is still opened as open(2) would. */
Test(fs_cached, name_replaced_after_inline_opens) {
    make_file("x", 10);
    for (int i = 0; i < 3; i++) { /* the first learns the mount, the next are seen */
        int fd = (int)async_await(async_open(P("x"), O_RDWR));
        cr_assert_geq(fd, 0);
        close(fd);
    }
    struct stat st;
    cr_assert_eq(unlink(P("x")), 0);
    cr_assert_eq(mkfifo(P("x"), 0600), 0);
    int fd = (int)async_await(async_open(P("x"), O_RDWR)); /* O_RDWR: a FIFO's open does not wait */
    cr_assert_geq(fd, 0);
    cr_assert(fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode));
    cr_assert_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0, "opened as asked, without O_NONBLOCK");
    close(fd);
    cr_assert_eq(unlink(P("x")), 0);
    make_file("x", 10);
    fd = (int)async_await(async_open(P("x"), O_RDWR));
    close(fd);
    cr_assert_eq(unlink(P("x")), 0);
    cr_assert_eq(symlink("/dev/null", P("x")), 0);
    fd = (int)async_await(async_open(P("x"), O_RDWR));
    cr_assert_geq(fd, 0);
    cr_assert(fstat(fd, &st) == 0 && S_ISCHR(st.st_mode));
    cr_assert_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);
    cr_assert_eq(unlink(P("x")), 0);
    cr_assert_eq(mkdir(P("x"), 0755), 0);
    SAME_OPEN(AT_FDCWD, P("x"), O_RDWR); /* EISDIR */
    SAME_OPEN(AT_FDCWD, P("x"), O_RDONLY);
    cr_assert_eq(rmdir(P("x")), 0);
    SAME_OPEN(AT_FDCWD, P("x"), O_RDONLY); /* ENOENT */
    rt_stop();
}

/* ---- fstat and close against glibc --------------------------------------------------- */

static void same_fstat(int fd, int line) {
    struct stat a, b;
    memset(&a, 0x5a, sizeof a);
    memset(&b, 0xa5, sizeof b);
    errno = 0;
    int ra = fstat(fd, &a);
    int ea = errno;
    errno = 0;
    int rb = (int)async_await(async_fstat(fd, &b));
    int eb = errno;
    cr_assert(ra == rb && (ra == 0 || ea == eb), "line %d: fd %d: libc %d/%s, async %d/%s", line,
              fd, ra, ename(ea), rb, ename(eb));
    if (ra == 0)
        cr_assert(memcmp(&a, &b, sizeof a) == 0, "line %d: fd %d: another struct stat", line, fd);
}
#define SAME_FSTAT(fd) same_fstat(fd, __LINE__)

/* One fd of each kind fstat meets: a file, a directory, O_PATH fds of a link
 * and of a file, a device, a /proc file, a FIFO, a pipe and a socket (p and
 * sv hold the other ends). Returns how many were put in fds. */
static int open_each_kind(int *fds, int p[2], int sv[2]) {
    int n = 0;
    fds[n++] = open(P("f"), O_RDONLY);
    fds[n++] = open(P("d"), O_RDONLY | O_DIRECTORY);
    fds[n++] = open(P("ln"), O_PATH | O_NOFOLLOW);
    fds[n++] = open(P("f"), O_PATH);
    fds[n++] = open("/dev/null", O_RDONLY);
    fds[n++] = open("/proc/self/status", O_RDONLY);
    fds[n++] = open(P("fifo"), O_RDWR);
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fds[n++] = p[0];
    fds[n++] = sv[0];
    return n;
}

Test(fs_cached, fstat_same_as_glibc) {
    make_names();
    int fds[12], p[2], sv[2];
    int n = open_each_kind(fds, p, sv);
    for (int i = 0; i < n; i++) {
        cr_assert_geq(fds[i], 0);
        SAME_FSTAT(fds[i]); /* the first on a mount learns it on the pool */
        SAME_FSTAT(fds[i]); /* then inline where it is local */
    }
    struct stat *bad = (struct stat *)(uintptr_t)16 + (null_ptr != NULL); /* unmapped */
    SAME_BAD(fstat(fds[0], bad), async_fstat(fds[0], bad));               /* EFAULT, not a crash */
    SAME_FSTAT(-1);                                                       /* EBADF */
    SAME_FSTAT(1000);                                                     /* EBADF: not open */
    for (int i = 0; i < n; i++) close(fds[i]);
    close(p[1]);
    close(sv[1]);
    SAME_FSTAT(fds[0]); /* EBADF: closed */
    rt_stop();
}

Test(fs_cached, close_same_as_glibc) {
    make_names();
    int fd = open(P("f"), O_RDONLY);
    ASSERT_VAL(async_await(async_close(fd)), 0);
    cr_assert_eq(fcntl(fd, F_GETFD), -1, "the fd is closed");
    ASSERT_ERR(async_await(async_close(fd)), EBADF);
    ASSERT_ERR(async_await(async_close(-1)), EBADF);
    fd = open(P("f"), O_RDONLY);
    ASSERT_VAL(async_await(async_close(fd)), 0); /* the mount known now: inline */
    cr_assert_eq(fcntl(fd, F_GETFD), -1);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    ASSERT_VAL(async_await(async_close(p[0])), 0);
    ASSERT_VAL(async_await(async_close(p[1])), 0);
    rt_stop();
}

/* fstat from a task: a `struct stat` on the task's stack is filled from the
 * statx that decided, any other buffer by fstat(2) itself; both must be
 * glibc's answer byte for byte, and a bad pointer its EFAULT. */
static void check_same_fstat(int fd, struct stat *b, int line) {
    struct stat a;
    memset(&a, 0x5a, sizeof a);
    memset(b, 0xa5, sizeof *b);
    errno = 0;
    int ra = fstat(fd, &a);
    int ea = errno;
    errno = 0;
    int rb = (int)async_await(async_fstat(fd, b));
    int eb = errno;
    if (ra != rb || (ra != 0 && ea != eb))
        check_fail(__FILE__, line, "fd %d: libc %d/%s, async %d/%s", fd, ra, ename(ea), rb,
                   ename(eb));
    else if (ra == 0 && memcmp(&a, b, sizeof a) != 0)
        check_fail(__FILE__, line, "fd %d: another struct stat", fd);
}

static intptr_t fstat_task(void *arg) {
    const int *fds = arg;
    struct stat *heap = malloc(sizeof *heap);
    CHECK(heap != NULL);
    if (!heap) return 0;
    for (int i = 0; fds[i] != -2; i++) {
        struct stat on_stack;
        check_same_fstat(fds[i], &on_stack, __LINE__); /* the first on a mount may learn it */
        check_same_fstat(fds[i], &on_stack, __LINE__);
        check_same_fstat(fds[i], heap, __LINE__);
    }
    free(heap);
    QUIET_BEGIN();
    struct stat *bad = (struct stat *)(uintptr_t)16 + (null_ptr != NULL); /* unmapped */
    CHECK_ERR(async_await(async_fstat(fds[0], bad)), EFAULT);
    QUIET_END();
    return 0;
}

Test(fs_cached, fstat_in_a_task_same_as_glibc) {
    make_names();
    int fds[16], p[2], sv[2];
    int n = open_each_kind(fds, p, sv);
    fds[n++] = -1;   /* EBADF */
    fds[n++] = 1000; /* EBADF: not open */
    fds[n] = -2;
    for (int i = 0; i < n; i++) cr_assert(fds[i] >= 0 || fds[i] == -1 || fds[i] == 1000);
    ASSERT_VAL(async_await(async_spawn(fstat_task, fds)), 0);
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0 && fds[i] != 1000) close(fds[i]);
    close(p[1]);
    close(sv[1]);
    rt_stop();
}

/* An fd opened inline and closed with plain close(2) may come back as any
 * other kind of file: async_close and async_fstat must treat it as what it
 * is now (a pipe, a socket, a FIFO, /proc's file or another regular file). */
Test(fs_cached, fd_reused_after_a_plain_close) {
    make_names();
    make_file("other", 7);
    for (int kind = 0; kind < 5; kind++) {
        int fd = -1;
        for (int i = 0; i < 2; i++) { /* the second open is a seen name's */
            if (fd >= 0) close(fd);
            fd = (int)async_await(async_open(P("f"), O_RDONLY));
            cr_assert_geq(fd, 0);
        }
        close(fd); /* behind the library's back */
        int g, peer = -1;
        int two[2];
        if (kind == 0) {
            cr_assert_eq(pipe(two), 0);
            g = two[0];
            peer = two[1];
        } else if (kind == 1) {
            cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, two), 0);
            g = two[0];
            peer = two[1];
        } else if (kind == 2) {
            g = open(P("fifo"), O_RDWR);
        } else if (kind == 3) {
            g = open("/proc/self/status", O_RDONLY);
        } else {
            g = open(P("other"), O_RDONLY);
        }
        cr_assert_eq(g, fd, "kind %d: the number comes back", kind);
        SAME_FSTAT(g);
        ASSERT_VAL(async_await(async_close(g)), 0);
        cr_assert_eq(fcntl(g, F_GETFD), -1, "kind %d: closed", kind);
        if (peer >= 0) {
            char c;
            if (kind == 0) {
                struct pollfd w = {peer, POLLOUT, 0};
                cr_assert(poll(&w, 1, 0) == 1 && (w.revents & POLLERR),
                          "the pipe's reader is gone");
            } else {
                cr_assert_eq(recv(peer, &c, 1, 0), 0, "the socket's peer sees the end");
            }
            close(peer);
        }
    }
    rt_stop();
}

/* ---- reads that end at the end of the file --------------------------------------------- */

Test(fs_cached, short_read_at_the_end) {
    make_file("f", 100);
    int fd = open(P("f"), O_RDONLY);
    char a[4096], b[4096];
    ASSERT_VAL(async_await(async_read(fd, b, sizeof b)), 100);
    cr_assert_eq(pread(fd, a, sizeof a, 0), 100);
    cr_assert_eq(memcmp(a, b, 100), 0);
    cr_assert_eq(lseek(fd, 0, SEEK_CUR), 100, "the position moved by the count");
    ASSERT_VAL(async_await(async_read(fd, b, sizeof b)), 0);
    ASSERT_VAL(async_await(async_pread(fd, b, sizeof b, 40)), 60);
    cr_assert_eq(memcmp(a + 40, b, 60), 0);
    ASSERT_VAL(async_await(async_pread(fd, b, sizeof b, 100)), 0);
    ASSERT_VAL(async_await(async_pread(fd, b, sizeof b, 5000)), 0);
    close(fd);
    rt_stop();
}

/* ---- short sendfile against glibc ------------------------------------------------------ */

/* sendfile(2) and async_sendfile from the same start to a non-blocking
 * socket: count, bytes received, offset or file position must agree. */
static void same_sendfile(int in, off_t start, bool use_offset, size_t count, int line) {
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    char ra[8192], rb[8192];
    off_t oa = start, ob = start;
    lseek(in, start, SEEK_SET);
    ssize_t a = sendfile(sv[0], in, use_offset ? &oa : NULL, count);
    off_t pa = lseek(in, 0, SEEK_CUR);
    ssize_t ga = recv(sv[1], ra, sizeof ra, MSG_DONTWAIT);
    lseek(in, start, SEEK_SET);
    ssize_t b = (ssize_t)async_await(async_sendfile(sv[0], in, use_offset ? &ob : NULL, count));
    off_t pb = lseek(in, 0, SEEK_CUR);
    ssize_t gb = recv(sv[1], rb, sizeof rb, MSG_DONTWAIT);
    cr_assert(a == b && oa == ob && pa == pb && ga == gb,
              "line %d: libc %zd off %jd pos %jd got %zd, async %zd off %jd pos %jd got %zd", line,
              a, (intmax_t)oa, (intmax_t)pa, ga, b, (intmax_t)ob, (intmax_t)pb, gb);
    if (ga > 0) cr_assert_eq(memcmp(ra, rb, (size_t)ga), 0, "line %d: other bytes", line);
    close(sv[0]);
    close(sv[1]);
}
#define SAME_SENDFILE(in, start, use_off, count) same_sendfile(in, start, use_off, count, __LINE__)

Test(fs_cached, sendfile_same_as_glibc) {
    make_file("f", 5000);
    int fd = open(P("f"), O_RDONLY);
    for (int use = 0; use < 2; use++) {
        SAME_SENDFILE(fd, 0, use, 1024);
        SAME_SENDFILE(fd, 100, use, 1000);
        SAME_SENDFILE(fd, 4000, use, 4096); /* the end of the file: short */
        SAME_SENDFILE(fd, 5000, use, 10);   /* at the end: 0 */
        SAME_SENDFILE(fd, 6000, use, 10);   /* past the end: 0 */
        SAME_SENDFILE(fd, 0, use, 0);
    }
    close(fd);
    rt_stop();
}

/* ---- routes: inline, or the pool ------------------------------------------------------- */

static void route_init(void) {
    scratch_make();
    small_pool_init();
}

TestSuite(fs_cached_route, .init = route_init, .fini = scratch_remove, .timeout = 30);

/* Whether this kernel walks with RESOLVE_CACHED (Linux 5.12; valgrind 3.19
 * does not know openat2): without it every open goes to the pool, which the
 * route tests then check instead. */
static bool cached_walk(void) {
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_CACHED};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof how);
    if (fd < 0) return false;
    close(fd);
    return true;
}

#define INLINE(f) cr_assert(async_future_settled(f), "%s: answered inline", #f)
#define POOLED(f) cr_assert(!async_future_settled(f), "%s: waits for the pool", #f)

Test(fs_cached_route, cached_calls_do_not_need_the_pool) {
    const char *f = make_file("f", 100);
    int pv = (int)async_await(async_open("/proc/version", O_RDONLY)); /* learns /proc's mount */
    cr_assert_geq(pv, 0);
    held_pool_t held;
    pool_hold(&held);

    /* the scratch mount is not known yet: the open goes to the pool, which
     * learns that the mount is local */
    async_future_t *fo = async_open(f, O_RDONLY);
    POOLED(fo);
    pool_release(&held);
    int fd = (int)async_await(fo);
    cr_assert_geq(fd, 0);
    close(fd);
    struct stat st;

    /* the mount is known now: every call of a file server's request inline */
    pool_hold(&held);
    bool walk = cached_walk();
    if (walk) {
        fo = async_open(f, O_RDONLY);
        INLINE(fo);
        fd = (int)async_await(fo);
    } else {
        fd = open(f, O_RDONLY);
    }
    memset(&st, 0, sizeof st);
    async_future_t *fs = async_fstat(fd, &st);
    INLINE(fs);
    ASSERT_VAL(async_await(fs), 0);
    cr_assert_eq(st.st_size, 100);
    char buf[4096];
    async_future_t *rd = async_read(fd, buf, sizeof buf);
    INLINE(rd);
    ASSERT_VAL(async_await(rd), 100);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    off_t off = 0;
    async_future_t *sf = async_sendfile(sv[0], fd, &off, 100);
    INLINE(sf);
    ASSERT_VAL(async_await(sf), 100);
    cr_assert_eq(off, 100);
    cr_assert_eq(recv(sv[1], buf, sizeof buf, 0), 100);
    cr_assert_eq(buf[0], 'a');
    if (walk) {
        async_future_t *dir = async_open(scratch, O_RDONLY | O_DIRECTORY);
        INLINE(dir);
        close((int)async_await(dir));
        async_future_t *again = async_open(f, O_RDWR); /* a name seen before: one walk */
        INLINE(again);
        int g = (int)async_await(again);
        cr_assert_geq(g, 0);
        cr_assert_eq(fcntl(g, F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDWR, "no O_NONBLOCK left");
        close(g);
    }
    async_future_t *fc = async_close(fd);
    INLINE(fc);
    ASSERT_VAL(async_await(fc), 0);
    async_future_t *pvs = async_fstat(pv, &st); /* /proc: fstat inline, as for pipes and sockets */
    INLINE(pvs);
    ASSERT_VAL(async_await(pvs), 0);

    /* what the kernel cannot answer at once goes to the pool, and still
     * answers right: sysfs names are revalidated, which RESOLVE_CACHED
     * refuses (EAGAIN); a name never looked up has no dentry, not even a
     * negative one; O_CREAT is refused by it; a device or a FIFO must not be
     * opened inline, whatever the flags */
    async_future_t *proc = async_open("/sys/kernel/uevent_seqnum", O_RDONLY);
    async_future_t *never = async_open(P("never-looked-up"), O_RDONLY);
    async_future_t *creat = async_open(P("new"), O_WRONLY | O_CREAT, 0600);
    async_future_t *dev = async_open("/dev/null", O_RDONLY);
    async_future_t *nb = async_open(P("fifo"), O_RDONLY | O_NONBLOCK);
    async_future_t *pvo =
        async_open("/proc/version", O_RDONLY); /* a pseudo-file's open runs its code */
    async_future_t *plain = walk ? NULL : async_open(f, O_RDONLY); /* no cached walk: the pool */
    sleep_ms(20);
    if (plain) POOLED(plain);
    POOLED(proc);
    POOLED(never);
    POOLED(creat);
    POOLED(dev);
    POOLED(nb);
    POOLED(pvo);
    pool_release(&held);
    int pfd = (int)async_await(proc);
    cr_assert_geq(pfd, 0);
    ssize_t n = read(pfd, buf, sizeof buf - 1);
    cr_assert_gt(n, 1);
    cr_assert(buf[0] >= '0' && buf[0] <= '9', "the uevent sequence number");
    close(pfd);
    ASSERT_ERR(async_await(never), ENOENT);
    int cfd = (int)async_await(creat);
    cr_assert_geq(cfd, 0);
    close(cfd);
    cr_assert_eq(access(P("new"), F_OK), 0);
    int dfd = (int)async_await(dev);
    cr_assert_geq(dfd, 0);
    close(dfd);
    int pvo_fd = (int)async_await(pvo);
    cr_assert_geq(pvo_fd, 0);
    close(pvo_fd);
    close(pv);
    int nfd = (int)async_await(nb);
    cr_assert_geq(nfd, 0);
    close(nfd);
    if (plain) {
        int pl = (int)async_await(plain);
        cr_assert_geq(pl, 0);
        close(pl);
    }
    close(sv[0]);
    close(sv[1]);
    rt_stop();
}

Test(fs_cached_route, cancel_a_pooled_open_and_close) {
    const char *f = make_file("f", 10);
    held_pool_t held;
    pool_hold(&held);
    /* the pool route cancels as before: a queued open never runs */
    async_future_t *proc = async_open("/sys/kernel/uevent_seqnum", O_RDONLY);
    POOLED(proc);
    async_cancel(proc);
    ASSERT_ERR(async_await(proc), ECANCELED);
    /* a close cancelled in the queue still closes: the fd is released */
    int fd = open(f, O_RDONLY);
    async_future_t *fc = async_close(fd); /* the mount is not known: pool */
    POOLED(fc);
    async_cancel(fc);
    ASSERT_VAL(async_await(fc), 0);
    cr_assert_eq(fcntl(fd, F_GETFD), -1, "closed all the same");
    pool_release(&held);
    fd = (int)async_await(async_open(f, O_RDONLY)); /* learns the mount */
    cr_assert_geq(fd, 0);
    close(fd);
    pool_hold(&held);
    /* an inline open is settled before the caller can cancel it */
    if (cached_walk()) {
        async_future_t *fo = async_open(f, O_RDONLY);
        INLINE(fo);
        async_cancel(fo);
        int g = (int)async_await(fo);
        cr_assert_geq(g, 0, "an inline call has its result");
        close(g);
    }
    pool_release(&held);
    rt_stop();
}

/* ---- a name replaced between the check and the open ------------------------------------
 * A name is swapped between a regular file and a FIFO (renameat2 RENAME_EXCHANGE, in a tight
 * loop) while a task opens it, under many spellings so that most opens are the thread's first
 * of that name. With the pool held, an open is inline exactly when its future is settled when
 * returned; the others are cancelled in the queue. An inline open must never open the FIFO for
 * real: with no writer that open waits, holding the worker and every task on it. A thread
 * that sees the opening task's own thread asleep in an open system call for a while counts an
 * inline open waiting, and then opens the FIFO for writing to let it through. */

static struct {
    atomic_bool stop;
    atomic_int opener;     /* the thread making the task's inline open, 0 outside it */
    atomic_int waits;      /* inline opens seen waiting for the FIFO's writer */
    atomic_int swap_error; /* errno of a failed exchange */
    int fifo;              /* O_PATH fd of the FIFO, whatever its name at the moment */
    char a[512], b[512];   /* the two names exchanged */
    char spellings[100][512];
    int opens, inline_regs, inline_others; /* the task's opens, and what the inline ones gave */
} sw;

static void *swapper(void *arg) {
    (void)arg;
    while (!atomic_load(&sw.stop))
        if (renameat2(AT_FDCWD, sw.a, AT_FDCWD, sw.b, RENAME_EXCHANGE) != 0) {
            atomic_store(&sw.swap_error, errno);
            break;
        }
    return NULL;
}

/* Whether thread `tid` is asleep in open(2), openat(2) or openat2(2): its
 * /proc syscall file names the call only while the thread sleeps in one
 * ("running" otherwise). */
static bool asleep_in_open(int tid) {
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0 || buf[0] < '0' || buf[0] > '9') return false;
    buf[n] = 0;
    long nr = strtol(buf, NULL, 10);
    return nr == SYS_open || nr == SYS_openat || nr == SYS_openat2;
}

static void *watchdog(void *arg) {
    (void)arg;
    char fifo[64];
    snprintf(fifo, sizeof fifo, "/proc/self/fd/%d", sw.fifo);
    int asleep = 0;
    while (!atomic_load(&sw.stop)) {
        usleep(200);
        int tid = atomic_load(&sw.opener);
        asleep = tid && asleep_in_open(tid) ? asleep + 1 : 0;
        if (asleep < 10) continue; /* 10 looks at least 200 µs apart: it waits for a writer */
        atomic_fetch_add(&sw.waits, 1);
        int w = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (w >= 0) close(w);
        asleep = 0;
    }
    return NULL;
}

static intptr_t open_swapped(void *arg) {
    (void)arg;
    double end = now_ms() + 2000;
    for (int i = 0; i < 20000 && now_ms() < end; i++) {
        atomic_store(&sw.opener, (int)syscall(SYS_gettid));
        async_future_t *f = async_open(sw.spellings[i % 100], O_RDONLY | O_CLOEXEC);
        atomic_store(&sw.opener, 0);
        sw.opens++;
        if (!async_future_settled(f)) { /* queued for the held pool */
            async_cancel(f);
            CHECK_ERR(async_await(f), ECANCELED);
            continue;
        }
        int fd = (int)async_await(f);
        struct stat st;
        CHECK(fd >= 0 && fstat(fd, &st) == 0);
        if (fd < 0) continue;
        if (S_ISREG(st.st_mode)) {
            sw.inline_regs++;
            CHECK_EQ(fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK), O_RDONLY);
        } else {
            sw.inline_others++;
        }
        close(fd);
    }
    return 0;
}

Test(fs_cached_route, name_swapped_with_a_fifo_while_opened) {
    memset(&sw, 0, sizeof sw);
    snprintf(sw.a, sizeof sw.a, "%s", make_file("x", 10));
    snprintf(sw.b, sizeof sw.b, "%s", P("y"));
    cr_assert_eq(mkfifo(sw.b, 0600), 0);
    sw.fifo = open(sw.b, O_PATH | O_CLOEXEC);
    cr_assert_geq(sw.fifo, 0);
    for (int k = 0; k < 100; k++) { /* "dir/x", "dir/./x", "dir/././x", ... */
        int n = snprintf(sw.spellings[k], sizeof sw.spellings[k], "%s/", scratch);
        for (int j = 0; j < k; j++) n += snprintf(sw.spellings[k] + n, 3, "./");
        snprintf(sw.spellings[k] + n, sizeof sw.spellings[k] - (size_t)n, "x");
    }
    close((int)async_await(async_open(sw.a, O_RDONLY))); /* the pool learns the mount */
    held_pool_t held;
    pool_hold(&held);
    pthread_t s = thread_start(swapper, NULL);
    pthread_t w = thread_start(watchdog, NULL);
    intptr_t r = async_await(async_spawn(open_swapped, NULL));
    atomic_store(&sw.stop, true);
    pthread_join(s, NULL);
    pthread_join(w, NULL);
    pool_release(&held);
    close(sw.fifo);
    cr_assert_eq(r, 0);
    cr_assert_eq(atomic_load(&sw.swap_error), 0, "renameat2: %s", ename(sw.swap_error));
    cr_assert_eq(atomic_load(&sw.waits), 0,
                 "%d inline opens waited for the FIFO's writer (%d opens, %d inline)",
                 atomic_load(&sw.waits), sw.opens, sw.inline_regs + sw.inline_others);
    cr_assert_eq(sw.inline_others, 0, "%d inline opens opened the FIFO", sw.inline_others);
    if (cached_walk()) cr_assert_gt(sw.inline_regs, 0, "%d opens, none inline", sw.opens);
    rt_stop();
}
