/* Tests of the rest of the path API of fs.h: truncate, the *at calls,
 * futimens, statx, mkfifo and mknod, posix_fadvise and syncfs; each against
 * glibc's answer for the same call, with its bad-input cases (a bad dirfd,
 * a missing name, NULL paths) and relative paths from AT_FDCWD and a dirfd. */
#include "fs_helpers.h"

#include <stdio.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

TestSuite(fs_at, .init = fs_init, .fini = fs_fini, .timeout = 30);

static int open_scratch(void) {
    int dfd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(dfd, 0);
    return dfd;
}

static off_t size_of(const char *p) {
    struct stat st;
    cr_assert_eq(stat(p, &st), 0, "stat %s: %s", p, ename(errno));
    return st.st_size;
}

/* posix_fadvise(3) returns its error; the async call reports -1 and errno */
static int fadvise_errno(int fd, off_t off, off_t len, int advice) {
    int e = posix_fadvise(fd, off, len, advice);
    errno = e;
    return e ? -1 : 0;
}

/* ---- truncate ------------------------------------------------------------------- */

Test(fs_at, truncate) {
    const char *f = make_file("t", 100);
    ASSERT_VAL(async_await(async_truncate(f, 10)), 0);
    cr_assert_eq(size_of(f), 10);
    ASSERT_VAL(async_await(async_truncate(f, 4096)), 0);
    cr_assert_eq(size_of(f), 4096);
    SAME(truncate(P("missing"), 1), async_truncate(P("missing"), 1)); /* ENOENT */
    SAME(truncate(f, -1), async_truncate(f, -1));                     /* EINVAL */
    SAME(truncate(scratch, 0), async_truncate(scratch, 0));           /* EISDIR */
    SAME(truncate(P("t/x"), 0), async_truncate(P("t/x"), 0));         /* ENOTDIR */
    ASSERT_ERR(async_await(async_truncate(NULL, 0)), EFAULT);
    cr_assert_eq(chdir(scratch), 0);
    ASSERT_VAL(async_await(async_truncate("t", 3)), 0); /* relative to the cwd */
    cr_assert_eq(size_of(f), 3);
    rt_stop();
}

/* ---- unlinkat, mkdirat ------------------------------------------------------------ */

Test(fs_at, unlinkat_mkdirat) {
    int dfd = open_scratch();
    make_file("u", 1);
    ASSERT_VAL(async_await(async_unlinkat(dfd, "u", 0)), 0);
    cr_assert_eq(access(P("u"), F_OK), -1);
    ASSERT_VAL(async_await(async_mkdirat(dfd, "d", 0750)), 0);
    struct stat st;
    cr_assert_eq(stat(P("d"), &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    SAME(mkdirat(dfd, "d", 0700), async_mkdirat(dfd, "d", 0700));       /* EEXIST */
    SAME(mkdirat(dfd, "no/d", 0700), async_mkdirat(dfd, "no/d", 0700)); /* ENOENT */
    SAME(mkdirat(-5, "rel", 0700), async_mkdirat(-5, "rel", 0700));     /* EBADF */
    SAME(unlinkat(dfd, "d", 0), async_unlinkat(dfd, "d", 0));           /* EISDIR */
    SAME(unlinkat(dfd, "gone", 0), async_unlinkat(dfd, "gone", 0));     /* ENOENT */
    SAME(unlinkat(-5, "d", 0), async_unlinkat(-5, "d", 0));             /* EBADF */
    SAME(unlinkat(dfd, "d", 0x4000), async_unlinkat(dfd, "d", 0x4000)); /* EINVAL */
    make_file("d/in", 1);
    SAME(unlinkat(dfd, "d", AT_REMOVEDIR), async_unlinkat(dfd, "d", AT_REMOVEDIR)); /* ENOTEMPTY */
    ASSERT_VAL(async_await(async_unlinkat(dfd, "d/in", 0)), 0);
    ASSERT_VAL(async_await(async_unlinkat(dfd, "d", AT_REMOVEDIR)), 0);
    cr_assert_eq(access(P("d"), F_OK), -1);
    ASSERT_ERR(async_await(async_unlinkat(dfd, NULL, 0)), EFAULT);
    ASSERT_ERR(async_await(async_mkdirat(dfd, NULL, 0700)), EFAULT);
    /* AT_FDCWD: relative to the cwd, and absolute paths ignore the dirfd */
    cr_assert_eq(chdir(scratch), 0);
    ASSERT_VAL(async_await(async_mkdirat(AT_FDCWD, "cwd", 0700)), 0);
    ASSERT_VAL(async_await(async_unlinkat(-5, P("cwd"), AT_REMOVEDIR)), 0);
    close(dfd);
    rt_stop();
}

/* ---- renameat, renameat2 ------------------------------------------------------------ */

Test(fs_at, renameat) {
    int dfd = open_scratch();
    make_file("a", 3);
    ASSERT_VAL(async_await(async_renameat(dfd, "a", AT_FDCWD, P("b"))), 0);
    cr_assert_eq(size_of(P("b")), 3);
    SAME(renameat(dfd, "a", dfd, "c"), async_renameat(dfd, "a", dfd, "c")); /* ENOENT */
    SAME(renameat(-5, "b", dfd, "c"), async_renameat(-5, "b", dfd, "c"));   /* EBADF */
    SAME(renameat(dfd, "b", -5, "c"), async_renameat(dfd, "b", -5, "c"));   /* EBADF */
    cr_assert_eq(mkdir(P("dir"), 0700), 0);
    SAME(renameat(dfd, "dir", dfd, "b"), async_renameat(dfd, "dir", dfd, "b")); /* ENOTDIR */
    ASSERT_ERR(async_await(async_renameat(dfd, NULL, dfd, "c")), EFAULT);
    ASSERT_ERR(async_await(async_renameat(dfd, "b", dfd, NULL)), EFAULT);
    close(dfd);
    rt_stop();
}

Test(fs_at, renameat2_flags) {
    int dfd = open_scratch();
    make_file("a", 1);
    make_file("b", 2);
    make_file("c", 1);
    make_file("d", 2);
    SAME(renameat2(dfd, "a", dfd, "b", RENAME_NOREPLACE),
         async_renameat2(dfd, "c", dfd, "d", RENAME_NOREPLACE)); /* EEXIST */
    SAME(renameat2(dfd, "a", dfd, "b", RENAME_EXCHANGE | RENAME_NOREPLACE),
         async_renameat2(dfd, "c", dfd, "d", RENAME_EXCHANGE | RENAME_NOREPLACE)); /* EINVAL */
    SAME(renameat2(dfd, "a", dfd, "none", RENAME_EXCHANGE),
         async_renameat2(dfd, "c", dfd, "none", RENAME_EXCHANGE));                /* ENOENT */
    SAME(renameat2(-5, "a", dfd, "b", 0), async_renameat2(-5, "c", dfd, "d", 0)); /* EBADF */
    errno = 0;
    int lr = renameat2(dfd, "a", dfd, "b", RENAME_EXCHANGE);
    int le = errno;
    errno = 0;
    int ar = (int)async_await(async_renameat2(dfd, "c", dfd, "d", RENAME_EXCHANGE));
    cr_assert(lr == ar && (lr == 0 || le == errno), "libc %d/%s, async %d/%s", lr, ename(le), ar,
              ename(errno));
    if (ar == 0) { /* the file system can exchange: the names swapped their files */
        cr_assert_eq(size_of(P("c")), 2);
        cr_assert_eq(size_of(P("d")), 1);
    }
    ASSERT_VAL(async_await(async_renameat2(dfd, "c", dfd, "e", RENAME_NOREPLACE)), 0);
    cr_assert_eq(access(P("e"), F_OK), 0);
    ASSERT_ERR(async_await(async_renameat2(dfd, NULL, dfd, "x", 0)), EFAULT);
    close(dfd);
    rt_stop();
}

/* ---- linkat, symlinkat, readlinkat -------------------------------------------------- */

Test(fs_at, linkat) {
    int dfd = open_scratch();
    make_file("f", 5);
    cr_assert_eq(symlink("f", P("sym")), 0);
    ASSERT_VAL(async_await(async_linkat(dfd, "f", AT_FDCWD, P("hard"), 0)), 0);
    struct stat a, b;
    cr_assert_eq(stat(P("f"), &a), 0);
    cr_assert_eq(stat(P("hard"), &b), 0);
    cr_assert_eq(a.st_ino, b.st_ino);
    ASSERT_VAL(async_await(async_linkat(dfd, "sym", dfd, "tofile", AT_SYMLINK_FOLLOW)), 0);
    cr_assert_eq(lstat(P("tofile"), &b), 0);
    cr_assert(S_ISREG(b.st_mode));
    ASSERT_VAL(async_await(async_linkat(dfd, "sym", dfd, "tolink", 0)), 0);
    cr_assert_eq(lstat(P("tolink"), &b), 0);
    cr_assert(S_ISLNK(b.st_mode));
    SAME(linkat(dfd, "f", dfd, "hard", 0), async_linkat(dfd, "f", dfd, "hard", 0)); /* EEXIST */
    SAME(linkat(dfd, "no", dfd, "x", 0), async_linkat(dfd, "no", dfd, "x", 0));     /* ENOENT */
    SAME(linkat(-5, "f", dfd, "x", 0), async_linkat(-5, "f", dfd, "x", 0));         /* EBADF */
    SAME(linkat(dfd, "f", dfd, "x", 0x1), async_linkat(dfd, "f", dfd, "x", 0x1));   /* EINVAL */
    ASSERT_ERR(async_await(async_linkat(dfd, NULL, dfd, "x", 0)), EFAULT);
    ASSERT_ERR(async_await(async_linkat(dfd, "f", dfd, NULL, 0)), EFAULT);
    close(dfd);
    rt_stop();
}

Test(fs_at, symlinkat_readlinkat) {
    int dfd = open_scratch();
    ASSERT_VAL(async_await(async_symlinkat("target/far", dfd, "s")), 0);
    char buf[64] = {0}, lbuf[64] = {0};
    ASSERT_VAL(async_await(async_readlinkat(dfd, "s", buf, sizeof buf)), 10);
    cr_assert_eq(memcmp(buf, "target/far", 10), 0);
    ASSERT_VAL(async_await(async_readlinkat(AT_FDCWD, P("s"), buf, 3)), 3); /* cut */
    make_file("f", 1);
    SAME(symlinkat("x", dfd, "s"), async_symlinkat("x", dfd, "s")); /* EEXIST */
    SAME(symlinkat("x", -5, "s2"), async_symlinkat("x", -5, "s2")); /* EBADF */
    SAME(symlinkat("", dfd, "s3"), async_symlinkat("", dfd, "s3")); /* ENOENT */
    SAME(readlinkat(dfd, "s", lbuf, sizeof lbuf), async_readlinkat(dfd, "s", buf, sizeof buf));
    SAME(readlinkat(dfd, "f", lbuf, sizeof lbuf), async_readlinkat(dfd, "f", buf, sizeof buf));
    SAME(readlinkat(dfd, "no", lbuf, sizeof lbuf), async_readlinkat(dfd, "no", buf, sizeof buf));
    SAME(readlinkat(-5, "s", lbuf, sizeof lbuf), async_readlinkat(-5, "s", buf, sizeof buf));
    SAME(readlinkat(dfd, "s", lbuf, 0), async_readlinkat(dfd, "s", buf, 0)); /* EINVAL */
    ASSERT_ERR(async_await(async_readlinkat(dfd, "s", NULL, 10)), EFAULT);
    ASSERT_ERR(async_await(async_readlinkat(dfd, "no", NULL, 10)), ENOENT);
    ASSERT_ERR(async_await(async_readlinkat(dfd, NULL, buf, 10)), EFAULT);
    ASSERT_ERR(async_await(async_symlinkat(NULL, dfd, "s4")), EFAULT);
    ASSERT_ERR(async_await(async_symlinkat("x", dfd, NULL)), EFAULT);
    close(dfd);
    rt_stop();
}

/* ---- fchmodat, fchownat, faccessat ------------------------------------------------- */

Test(fs_at, fchmodat_fchownat_faccessat) {
    int dfd = open_scratch();
    make_file("f", 1);
    cr_assert_eq(symlink("f", P("sym")), 0);
    struct stat st;
    ASSERT_VAL(async_await(async_fchmodat(dfd, "f", 0604, 0)), 0);
    cr_assert_eq(stat(P("f"), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0604);
    ASSERT_VAL(async_await(async_fchmodat(dfd, "sym", 0640, 0)), 0); /* through the link */
    cr_assert_eq(stat(P("f"), &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0640);
    SAME(fchmodat(dfd, "sym", 0600, AT_SYMLINK_NOFOLLOW),
         async_fchmodat(dfd, "sym", 0600, AT_SYMLINK_NOFOLLOW));
    SAME(fchmodat(dfd, "no", 0600, 0), async_fchmodat(dfd, "no", 0600, 0));
    SAME(fchmodat(-5, "f", 0600, 0), async_fchmodat(-5, "f", 0600, 0));
    SAME(fchmodat(dfd, "f", 0600, 0x1), async_fchmodat(dfd, "f", 0600, 0x1));

    ASSERT_VAL(async_await(async_fchownat(dfd, "f", 65534, 65534, 0)), 0);
    cr_assert_eq(stat(P("f"), &st), 0);
    cr_assert(st.st_uid == 65534 && st.st_gid == 65534);
    ASSERT_VAL(async_await(async_fchownat(dfd, "sym", 0, 0, AT_SYMLINK_NOFOLLOW)), 0);
    cr_assert_eq(stat(P("f"), &st), 0);
    cr_assert_eq(st.st_uid, 65534, "the link changed, not its target");
    SAME(fchownat(dfd, "no", 0, 0, 0), async_fchownat(dfd, "no", 0, 0, 0));
    SAME(fchownat(-5, "f", 0, 0, 0), async_fchownat(-5, "f", 0, 0, 0));
    SAME(fchownat(dfd, "f", 0, 0, 0x1), async_fchownat(dfd, "f", 0, 0, 0x1));
    int ffd = open(P("f"), O_RDONLY);
    ASSERT_VAL(async_await(async_fchownat(ffd, "", 0, 0, AT_EMPTY_PATH)), 0);
    cr_assert_eq(stat(P("f"), &st), 0);
    cr_assert_eq(st.st_uid, 0);
    close(ffd);

    SAME(faccessat(dfd, "f", R_OK | W_OK, 0), async_faccessat(dfd, "f", R_OK | W_OK, 0));
    SAME(faccessat(dfd, "f", X_OK, 0), async_faccessat(dfd, "f", X_OK, 0));
    SAME(faccessat(dfd, "f", R_OK, AT_EACCESS), async_faccessat(dfd, "f", R_OK, AT_EACCESS));
    SAME(faccessat(dfd, "no", F_OK, 0), async_faccessat(dfd, "no", F_OK, 0));
    SAME(faccessat(-5, "f", F_OK, 0), async_faccessat(-5, "f", F_OK, 0));
    SAME(faccessat(dfd, "f", 0x40, 0), async_faccessat(dfd, "f", 0x40, 0));
    SAME(faccessat(dfd, "f", F_OK, 0x1), async_faccessat(dfd, "f", F_OK, 0x1));
    cr_assert_eq(chmod(P("f"), 0600), 0); /* root's, and only root may read it */
    cr_assert_eq(seteuid(65534), 0);      /* root is never denied */
    SAME(faccessat(dfd, "f", R_OK, AT_EACCESS), async_faccessat(dfd, "f", R_OK, AT_EACCESS));
    SAME(fchmodat(dfd, "f", 0777, 0), async_fchmodat(dfd, "f", 0777, 0)); /* EPERM */
    cr_assert_eq(seteuid(0), 0);

    ASSERT_ERR(async_await(async_fchmodat(dfd, NULL, 0600, 0)), EFAULT);
    ASSERT_ERR(async_await(async_fchownat(dfd, NULL, 0, 0, 0)), EFAULT);
    ASSERT_ERR(async_await(async_faccessat(dfd, NULL, F_OK, 0)), EFAULT);
    close(dfd);
    rt_stop();
}

/* ---- utimensat, futimens ----------------------------------------------------------- */

Test(fs_at, utimensat_futimens) {
    int dfd = open_scratch();
    const char *f = make_file("f", 1);
    struct timespec ts[2] = {{1000000000, 123456789}, {1100000000, 987654321}};
    ASSERT_VAL(async_await(async_utimensat(dfd, "f", ts, 0)), 0);
    struct stat st;
    cr_assert_eq(stat(f, &st), 0);
    cr_assert(st.st_atim.tv_sec == 1000000000 && st.st_atim.tv_nsec == 123456789);
    cr_assert(st.st_mtim.tv_sec == 1100000000 && st.st_mtim.tv_nsec == 987654321);
    struct timespec omit[2] = {{5, UTIME_OMIT}, {7, 0}};
    ASSERT_VAL(async_await(async_utimensat(AT_FDCWD, f, omit, 0)), 0);
    cr_assert_eq(stat(f, &st), 0);
    cr_assert(st.st_atim.tv_sec == 1000000000 && st.st_mtim.tv_sec == 7);
    int fd = open(f, O_RDWR);
    ASSERT_VAL(async_await(async_futimens(fd, ts)), 0);
    cr_assert_eq(stat(f, &st), 0);
    cr_assert_eq(st.st_mtim.tv_nsec, 987654321);
    ASSERT_VAL(async_await(async_futimens(fd, NULL)), 0);
    cr_assert_eq(stat(f, &st), 0);
    cr_assert_gt(st.st_mtim.tv_sec, 1100000000);
    struct timespec bad[2] = {{0, 1000000000}, {0, 0}};
    SAME(utimensat(dfd, "f", bad, 0), async_utimensat(dfd, "f", bad, 0));       /* EINVAL */
    SAME(futimens(fd, bad), async_futimens(fd, bad));                           /* EINVAL */
    SAME(utimensat(dfd, "no", NULL, 0), async_utimensat(dfd, "no", NULL, 0));   /* ENOENT */
    SAME(utimensat(-5, "f", NULL, 0), async_utimensat(-5, "f", NULL, 0));       /* EBADF */
    SAME(utimensat(dfd, "f", NULL, 0x1), async_utimensat(dfd, "f", NULL, 0x1)); /* EINVAL */
    SAME(futimens(-1, NULL), async_futimens(-1, NULL));                         /* EBADF */
    /* glibc's answer for a NULL path (its utimensat() checks before the
     * kernel; calling it here would trip UBSan's nonnull check) */
    ASSERT_ERR(async_await(async_utimensat(dfd, NULL, NULL, 0)), EINVAL);
    cr_assert_eq(symlink("f", P("sym")), 0);
    ASSERT_VAL(async_await(async_utimensat(dfd, "sym", ts, AT_SYMLINK_NOFOLLOW)), 0);
    cr_assert_eq(lstat(P("sym"), &st), 0);
    cr_assert_eq(st.st_mtim.tv_sec, 1100000000);
    close(fd);
    close(dfd);
    rt_stop();
}

/* ---- statx --------------------------------------------------------------------------- */

Test(fs_at, statx) {
    int dfd = open_scratch();
    make_file("f", 77);
    struct statx sx;
    struct stat st;
    cr_assert_eq(stat(P("f"), &st), 0);
    ASSERT_VAL(async_await(async_statx(dfd, "f", 0, STATX_BASIC_STATS, &sx)), 0);
    cr_assert(sx.stx_mask & STATX_SIZE);
    cr_assert_eq(sx.stx_size, 77);
    cr_assert_eq(sx.stx_ino, st.st_ino);
    cr_assert_eq(sx.stx_mode, st.st_mode);
    int fd = open(P("f"), O_RDONLY);
    memset(&sx, 0, sizeof sx);
    ASSERT_VAL(async_await(async_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &sx)), 0);
    cr_assert_eq(sx.stx_size, 77);
    cr_assert_eq(symlink("f", P("sym")), 0);
    ASSERT_VAL(async_await(async_statx(AT_FDCWD, P("sym"), AT_SYMLINK_NOFOLLOW, STATX_TYPE, &sx)),
               0);
    cr_assert(S_ISLNK(sx.stx_mode));
    cr_assert_eq(chdir(scratch), 0);
    ASSERT_VAL(async_await(async_statx(AT_FDCWD, "sym", 0, STATX_TYPE, &sx)), 0);
    cr_assert(S_ISREG(sx.stx_mode));
    struct statx lsx;
    SAME(statx(dfd, "no", 0, STATX_ALL, &lsx), async_statx(dfd, "no", 0, STATX_ALL, &sx));
    SAME(statx(-5, "f", 0, STATX_ALL, &lsx), async_statx(-5, "f", 0, STATX_ALL, &sx));
    SAME(statx(dfd, "f", 0x1, STATX_ALL, &lsx), async_statx(dfd, "f", 0x1, STATX_ALL, &sx));
    SAME(statx(dfd, "f", 0, STATX__RESERVED, &lsx), async_statx(dfd, "f", 0, STATX__RESERVED, &sx));
    SAME(statx(dfd, "f/x", 0, STATX_ALL, &lsx), async_statx(dfd, "f/x", 0, STATX_ALL, &sx));
    ASSERT_ERR(async_await(async_statx(dfd, "f", 0, STATX_ALL, NULL)), EFAULT);
    ASSERT_ERR(async_await(async_statx(dfd, "no", 0, STATX_ALL, NULL)), ENOENT);
    ASSERT_ERR(async_await(async_statx(dfd, NULL, 0, STATX_ALL, &sx)), EFAULT);
    /* NULL with AT_EMPTY_PATH: the system call's answer (glibc declares the path
     * nonnull), dirfd itself since Linux 6.11, EBADF for a bad one */
    SAME_BAD(syscall(SYS_statx, fd, NULL, AT_EMPTY_PATH, STATX_SIZE, &lsx),
             async_statx(fd, NULL, AT_EMPTY_PATH, STATX_SIZE, &sx));
    cr_assert_eq(sx.stx_size, lsx.stx_size);
    SAME_BAD(syscall(SYS_statx, 4000, NULL, AT_EMPTY_PATH, STATX_SIZE, &lsx),
             async_statx(4000, NULL, AT_EMPTY_PATH, STATX_SIZE, &sx));
    close(fd);
    close(dfd);
    rt_stop();
}

/* ---- mkfifo, mknod ------------------------------------------------------------------ */

Test(fs_at, mkfifo_mknod) {
    int dfd = open_scratch();
    struct stat st;
    ASSERT_VAL(async_await(async_mkfifo(P("fifo"), 0600)), 0);
    cr_assert_eq(stat(P("fifo"), &st), 0);
    cr_assert(S_ISFIFO(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0600);
    ASSERT_VAL(async_await(async_mkfifoat(dfd, "fifo2", 0640)), 0);
    cr_assert_eq(stat(P("fifo2"), &st), 0);
    cr_assert(S_ISFIFO(st.st_mode));
    ASSERT_VAL(async_await(async_mknod(P("reg"), S_IFREG | 0600, 0)), 0);
    cr_assert_eq(stat(P("reg"), &st), 0);
    cr_assert(S_ISREG(st.st_mode));
    ASSERT_VAL(async_await(async_mknodat(dfd, "fifo3", S_IFIFO | 0600, 0)), 0);
    cr_assert_eq(stat(P("fifo3"), &st), 0);
    cr_assert(S_ISFIFO(st.st_mode));
    /* a device node: root may make one (a container may still refuse: compare) */
    errno = 0;
    int lr = mknod(P("null1"), S_IFCHR | 0600, makedev(1, 3));
    int le = errno;
    errno = 0;
    int ar = (int)async_await(async_mknodat(dfd, "null2", S_IFCHR | 0600, makedev(1, 3)));
    cr_assert(lr == ar && (lr == 0 || le == errno), "libc %d/%s, async %d/%s", lr, ename(le), ar,
              ename(errno));
    if (ar == 0) {
        cr_assert_eq(stat(P("null2"), &st), 0);
        cr_assert(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
    }
    SAME(mkfifo(P("fifo"), 0600), async_mkfifo(P("fifo"), 0600)); /* EEXIST */
    SAME(mkfifo(P("no/f"), 0600), async_mkfifo(P("no/f"), 0600)); /* ENOENT */
    SAME(mkfifoat(-5, "f", 0600), async_mkfifoat(-5, "f", 0600)); /* EBADF */
    SAME(mkfifoat(dfd, "x", S_IFREG | 0600), async_mkfifoat(dfd, "x", S_IFREG | 0600));
    SAME(mknod(P("reg"), S_IFREG | 0600, 0), async_mknod(P("reg"), S_IFREG | 0600, 0));
    SAME(mknodat(-5, "n", S_IFIFO, 0), async_mknodat(-5, "n", S_IFIFO, 0));
    SAME(mknodat(dfd, "n", S_IFDIR | 0700, 0), async_mknodat(dfd, "n", S_IFDIR | 0700, 0));
    ASSERT_ERR(async_await(async_mkfifo(NULL, 0600)), EFAULT);
    ASSERT_ERR(async_await(async_mkfifoat(dfd, NULL, 0600)), EFAULT);
    ASSERT_ERR(async_await(async_mknod(NULL, S_IFIFO, 0)), EFAULT);
    ASSERT_ERR(async_await(async_mknodat(dfd, NULL, S_IFIFO, 0)), EFAULT);
    cr_assert_eq(chdir(scratch), 0);
    ASSERT_VAL(async_await(async_mkfifoat(AT_FDCWD, "rel", 0600)), 0);
    cr_assert_eq(stat(P("rel"), &st), 0);
    cr_assert(S_ISFIFO(st.st_mode));
    close(dfd);
    rt_stop();
}

/* ---- posix_fadvise, syncfs ----------------------------------------------------------- */

Test(fs_at, posix_fadvise_syncfs) {
    int fd = open(make_file("f", 8192), O_RDONLY);
    ASSERT_VAL(async_await(async_posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL)), 0);
    ASSERT_VAL(async_await(async_posix_fadvise(fd, 0, 4096, POSIX_FADV_DONTNEED)), 0);
    SAME(fadvise_errno(-1, 0, 0, POSIX_FADV_NORMAL),
         async_posix_fadvise(-1, 0, 0, POSIX_FADV_NORMAL));               /* EBADF, as -1/errno */
    SAME(fadvise_errno(fd, 0, 0, 99), async_posix_fadvise(fd, 0, 0, 99)); /* EINVAL */
    SAME(fadvise_errno(fd, 0, -1, POSIX_FADV_NORMAL),
         async_posix_fadvise(fd, 0, -1, POSIX_FADV_NORMAL));
    int p[2];
    cr_assert_eq(pipe(p), 0);
    SAME(fadvise_errno(p[0], 0, 0, POSIX_FADV_NORMAL),
         async_posix_fadvise(p[0], 0, 0, POSIX_FADV_NORMAL)); /* ESPIPE */
    ASSERT_VAL(async_await(async_syncfs(fd)), 0);
    SAME(syncfs(-1), async_syncfs(-1)); /* EBADF */
    SAME(syncfs(p[0]), async_syncfs(p[0]));
    close(p[0]);
    close(p[1]);
    close(fd);
    rt_stop();
}

/* ---- paths are copied; a queued call can be cancelled -------------------------------- */

Test(fs_at, paths_are_copied) {
    int dfd = open_scratch();
    make_file("old", 1);
    char a[64], b[64];
    snprintf(a, sizeof a, "old");
    snprintf(b, sizeof b, "new");
    async_future_t *f = async_renameat(dfd, a, dfd, b);
    memset(a, 'x', sizeof a - 1); /* the caller reuses its buffers at once */
    memset(b, 'y', sizeof b - 1);
    ASSERT_VAL(async_await(f), 0);
    cr_assert_eq(access(P("new"), F_OK), 0);
    snprintf(a, sizeof a, "%s", "lnk");
    f = async_symlinkat("new", dfd, a);
    a[0] = 0;
    ASSERT_VAL(async_await(f), 0);
    cr_assert_eq(access(P("lnk"), F_OK), 0);
    close(dfd);
    rt_stop();
}

Test(fs_at_pool, cancel_a_queued_call, .init = scratch_make, .fini = scratch_remove) {
    small_pool_init();
    make_file("keep", 1);
    int dfd = open_scratch();
    held_pool_t held;
    pool_hold(&held);
    async_future_t *queued = async_unlinkat(dfd, "keep", 0);
    sleep_ms(20);
    cr_assert_eq(async_future_settled(queued), 0, "no thread is free for it");
    async_cancel(queued);
    ASSERT_ERR(async_await(queued), ECANCELED);
    pool_release(&held);
    cr_assert_eq(access(P("keep"), F_OK), 0, "the cancelled unlinkat never ran");
    close(dfd);
    rt_stop();
}
