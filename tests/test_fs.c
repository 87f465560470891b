/* Tests of the POSIX file calls of fs.h: open/close, the read and write
 * family on files, pipes, sockets and ttys, lseek, sync and sizing, the stat
 * family, names, permissions, times, temporary files and kernel copies; each
 * beside its bad-input case and libc's own answer for the same call. */
#include "fs_helpers.h"

#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

TestSuite(fs, .init = fs_init, .fini = fs_fini, .timeout = 30);

/* ---- open / close ------------------------------------------------------------- */

Test(fs, open_read_close) {
    char p[512];
    snprintf(p, sizeof p, "%s", make_file("a", 100));
    int fd = (int)async_await(async_open(p, O_RDONLY | O_CLOEXEC));
    cr_assert_geq(fd, 0);
    char buf[200];
    ASSERT_VAL(async_await(async_read(fd, buf, sizeof buf)), 100);
    cr_assert_eq(memcmp(buf, "abcdef", 6), 0);
    ASSERT_VAL(async_await(async_read(fd, buf, sizeof buf)), 0);
    ASSERT_VAL(async_await(async_close(fd)), 0);
    ASSERT_ERR(async_await(async_close(fd)), EBADF);
    rt_stop();
}

/* close(2) and async_close on one fd each of the same kind, then on the same
 * bad numbers: the same result and errno, from the test's thread and from a task. */
static void same_close(int gfd, int afd, const char *what) {
    errno = 0;
    int g = close(gfd);
    int ge = errno;
    errno = 0;
    int a = (int)async_await(async_close(afd));
    int ae = errno;
    if (g != a || (g == -1 && ge != ae))
        check_fail(__FILE__, __LINE__, "close %s: libc %d/%s, async %d/%s", what, g, ename(ge), a,
                   ename(ae));
}

static void close_cases(void) {
    int g = open(P("close-g"), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int a = open(P("close-a"), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    CHECK(g >= 0 && a >= 0);
    same_close(g, a, "a regular file");
    same_close(g, a, "a closed fd");
    g = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    a = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    same_close(g, a, "a directory");
    int gp[2], ap[2];
    CHECK(pipe2(gp, O_CLOEXEC) == 0 && pipe2(ap, O_CLOEXEC | O_NONBLOCK) == 0);
    same_close(gp[0], ap[0], "a pipe's read end");
    same_close(gp[1], ap[1], "a pipe's write end");
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, gp) == 0);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ap) == 0);
    same_close(gp[0], ap[0], "a socket");
    same_close(gp[1], ap[1], "a socket");
    same_close(-1, -1, "-1");
    same_close(INT_MAX, INT_MAX, "INT_MAX");
}

static intptr_t close_cases_task(void *arg) {
    (void)arg;
    close_cases();
    return 0;
}

Test(fs, close_matches_libc_from_a_thread_and_a_task) {
    close_cases();
    ASSERT_VAL(async_await(async_spawn(close_cases_task, NULL)), 0);
    checks_ok();
    rt_stop();
}

Test(fs, open_creates_with_mode) {
    mode_t old = umask(022);
    int fd = (int)async_await(async_open(P("new"), O_WRONLY | O_CREAT | O_EXCL, 0640));
    cr_assert_geq(fd, 0);
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0640);
    close(fd);
    SAME(open(P("new"), O_WRONLY | O_CREAT | O_EXCL, 0640),
         async_open(P("new"), O_WRONLY | O_CREAT | O_EXCL, 0640));
    umask(old);
    rt_stop();
}

Test(fs, open_errors_match_libc) {
    make_file("f", 1);
    SAME(open(P("missing"), O_RDONLY), async_open(P("missing"), O_RDONLY));
    SAME(open(scratch, O_WRONLY), async_open(scratch, O_WRONLY));   /* EISDIR */
    SAME(open(P("f/x"), O_RDONLY), async_open(P("f/x"), O_RDONLY)); /* ENOTDIR */
    SAME(open(P("f"), O_RDONLY | O_DIRECTORY), async_open(P("f"), O_RDONLY | O_DIRECTORY));
    SAME(openat(-5, "rel", O_RDONLY), async_openat(-5, "rel", O_RDONLY)); /* EBADF */
    ASSERT_ERR(async_await(async_open(NULL, O_RDONLY)), EFAULT);
    ASSERT_ERR(async_await(async_openat(AT_FDCWD, NULL, O_RDONLY)), EFAULT);
    rt_stop();
}

Test(fs, openat_relative) {
    make_file("rel", 10);
    int dfd = open(scratch, O_RDONLY | O_DIRECTORY);
    int fd = (int)async_await(async_openat(dfd, "rel", O_RDONLY));
    cr_assert_geq(fd, 0);
    close(fd);
    fd = (int)async_await(async_openat(dfd, "made", O_RDWR | O_CREAT, 0600));
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(access(P("made"), F_OK), 0);
    close(dfd);
    rt_stop();
}

Test(fs, permission_denied_matches_libc) {
    cr_assert_eq(mkdir(P("locked"), 0700), 0);
    make_file("locked/f", 5);
    make_file("ro", 5);
    chmod(P("ro"), 0400);
    cr_assert_eq(seteuid(65534), 0); /* the tests run as root, who is never denied */
    SAME(open(P("locked/f"), O_RDONLY), async_open(P("locked/f"), O_RDONLY));
    SAME(open(P("ro"), O_WRONLY), async_open(P("ro"), O_WRONLY));
    struct stat st;
    SAME(stat(P("locked/f"), &st), async_stat(P("locked/f"), &st));
    SAME(mkdir(P("locked/d"), 0700), async_mkdir(P("locked/d"), 0700));
    SAME(access(P("ro"), W_OK), async_access(P("ro"), W_OK));
    SAME(unlink(P("locked/f")), async_unlink(P("locked/f")));
    cr_assert_eq(seteuid(0), 0);
    rt_stop();
}

/* ---- read / write on files ------------------------------------------------------- */

Test(fs, write_then_read_back) {
    int fd = (int)async_await(async_open(P("w"), O_RDWR | O_CREAT | O_TRUNC, 0644));
    cr_assert_geq(fd, 0);
    ASSERT_VAL(async_await(async_write(fd, "hello world", 11)), 11);
    ASSERT_VAL(async_await(async_lseek(fd, 0, SEEK_CUR)), 11);
    ASSERT_VAL(async_await(async_lseek(fd, 6, SEEK_SET)), 6);
    char buf[16] = {0};
    ASSERT_VAL(async_await(async_read(fd, buf, 5)), 5);
    cr_assert_str_eq(buf, "world");
    ASSERT_VAL(async_await(async_lseek(fd, 0, SEEK_END)), 11);
    close(fd);
    rt_stop();
}

Test(fs, read_write_bad_input) {
    char buf[8];
    int fd = open(make_file("x", 8), O_RDONLY);
    SAME(read(-1, buf, 8), async_read(-1, buf, 8));
    SAME_BAD(read(fd, null_ptr, 8), async_read(fd, null_ptr, 8)); /* EFAULT */
    SAME(read(fd, NULL, 0), async_read(fd, NULL, 0));             /* 0 */
    SAME(write(fd, "x", 1), async_write(fd, "x", 1));             /* EBADF: read-only */
    SAME(write(-1, "x", 1), async_write(-1, "x", 1));
    int dfd = open(scratch, O_RDONLY | O_DIRECTORY);
    SAME(read(dfd, buf, 8), async_read(dfd, buf, 8)); /* EISDIR */
    SAME(lseek(-1, 0, SEEK_SET), async_lseek(-1, 0, SEEK_SET));
    SAME(lseek(fd, 0, 99), async_lseek(fd, 0, 99));
    close(dfd);
    close(fd);
    rt_stop();
}

Test(fs, pread_pwrite) {
    char p[512];
    snprintf(p, sizeof p, "%s", make_file("pp", 4096));
    int fd = open(p, O_RDWR);
    char buf[10] = {0};
    ASSERT_VAL(async_await(async_pread(fd, buf, 3, 26)), 3);
    cr_assert_eq(memcmp(buf, "abc", 3), 0);
    ASSERT_VAL(async_await(async_pwrite(fd, "XYZ", 3, 1)), 3);
    ASSERT_VAL(async_await(async_pread(fd, buf, 4, 0)), 4);
    cr_assert_eq(memcmp(buf, "aXYZ", 4), 0);
    ASSERT_VAL(async_await(async_pread(fd, buf, 4, 4096)), 0); /* at the end */
    ASSERT_VAL(lseek(fd, 0, SEEK_CUR), 0);                     /* position untouched */
    SAME(pread(fd, buf, 4, -1), async_pread(fd, buf, 4, -1));  /* EINVAL */
    SAME(pread(-1, buf, 4, 0), async_pread(-1, buf, 4, 0));
    SAME(pwrite(fd, buf, 4, -2), async_pwrite(fd, buf, 4, -2));
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    SAME(pread(pfd[0], buf, 4, 0), async_pread(pfd[0], buf, 4, 0)); /* ESPIPE */
    SAME(pwrite(pfd[1], buf, 4, 0), async_pwrite(pfd[1], buf, 4, 0));
    close(pfd[0]);
    close(pfd[1]);
    close(fd);
    rt_stop();
}

Test(fs, readv_writev_preadv_pwritev) {
    int fd = open(P("v"), O_RDWR | O_CREAT, 0644);
    struct iovec w[2] = {{"abc", 3}, {"defg", 4}};
    ASSERT_VAL(async_await(async_writev(fd, w, 2)), 7);
    ASSERT_VAL(async_await(async_pwritev(fd, w, 1, 7)), 3);
    char a[2], b[10] = {0};
    struct iovec r[2] = {{a, 2}, {b, 10}};
    ASSERT_VAL(async_await(async_preadv(fd, r, 2, 0)), 10);
    cr_assert_eq(memcmp(a, "ab", 2), 0);
    cr_assert_eq(memcmp(b, "cdefgabc", 8), 0);
    lseek(fd, 3, SEEK_SET);
    ASSERT_VAL(async_await(async_readv(fd, r, 2)), 7);
    cr_assert_eq(memcmp(a, "de", 2), 0);
    SAME(readv(fd, r, neg_one), async_readv(fd, r, neg_one));         /* EINVAL */
    SAME_BAD(writev(fd, w, huge_cnt), async_writev(fd, w, huge_cnt)); /* EINVAL */
    SAME_BAD(readv(fd, null_ptr, 2), async_readv(fd, null_ptr, 2));   /* EFAULT */
    SAME(preadv(fd, r, 2, -1), async_preadv(fd, r, 2, -1));
    SAME(pwritev(fd, w, 2, -1), async_pwritev(fd, w, 2, -1));
    SAME(readv(-1, r, 2), async_readv(-1, r, 2));
    close(fd);
    rt_stop();
}

/* Reads of a big file end to end, cached (inline) or after the cache was dropped (pool). */
Test(fs, big_file_reads_whole) {
    size_t len = 3 * 1024 * 1024 + 17;
    char *data = malloc(len);
    for (size_t i = 0; i < len; i++) data[i] = (char)(i * 7);
    int fd = open(P("big"), O_RDWR | O_CREAT, 0644);
    ASSERT_VAL(async_await(async_write_all(fd, data, len)), len);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    lseek(fd, 0, SEEK_SET);
    char *back = malloc(len);
    size_t got = 0;
    for (;;) {
        intptr_t n = async_await(async_read(fd, back + got, len - got < 65536 ? len - got : 65536));
        cr_assert_geq(n, 0);
        if (n == 0) break;
        got += (size_t)n;
    }
    cr_assert_eq(got, len);
    cr_assert_eq(memcmp(data, back, len), 0);
    close(fd);
    free(data);
    free(back);
    rt_stop();
}

static intptr_t write_read_task(void *arg) {
    int i = (int)(intptr_t)arg;
    char name[32], buf[64];
    snprintf(name, sizeof name, "t%d", i);
    int fd = (int)async_await(async_open(P(name), O_RDWR | O_CREAT, 0600));
    CHECK(fd >= 0);
    int n = snprintf(buf, sizeof buf, "task %d", i);
    CHECK_EQ(async_await(async_pwrite(fd, buf, (size_t)n, 0)), n);
    char back[64] = {0};
    CHECK_EQ(async_await(async_pread(fd, back, sizeof back, 0)), n);
    CHECK(memcmp(back, buf, (size_t)n) == 0);
    CHECK_EQ(async_await(async_close(fd)), 0);
    return 0;
}

Test(fs, from_many_tasks) {
    async_future_t *fs[100];
    for (int i = 0; i < 100; i++) fs[i] = async_spawn(write_read_task, (void *)(intptr_t)i);
    ASSERT_VAL(async_await_all(fs, 100, NULL, NULL), 0);
    rt_stop();
}

Test(fs, thousand_concurrent_operations) {
    char p[512];
    snprintf(p, sizeof p, "%s", make_file("c", 65536));
    int fd = open(p, O_RDONLY);
    enum { N = 1000 };
    static char bufs[N][16];
    static struct stat sts[N];
    async_future_t *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = i % 2 ? async_pread(fd, bufs[i], 16, (i * 16) % 65536) : async_stat(p, &sts[i]);
    intptr_t res[N];
    ASSERT_VAL(async_await_all(fs, N, res, NULL), 0);
    for (int i = 0; i < N; i++) {
        if (i % 2) {
            cr_assert_eq(res[i], 16);
            cr_assert_eq(bufs[i][0], 'a' + (i * 16) % 26);
        } else {
            cr_assert_eq(res[i], 0);
            cr_assert_eq(sts[i].st_size, 65536);
        }
    }
    /* and 1000 that go to the pool at once */
    for (int i = 0; i < N; i++) fs[i] = async_fsync(fd);
    ASSERT_VAL(async_await_all(fs, N, NULL, NULL), 0);
    close(fd);
    rt_stop();
}

/* ---- pipes, sockets and terminals ------------------------------------------------- */

static intptr_t pipe_reader(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[16] = {0};
    intptr_t n = async_await(async_read(fd, buf, sizeof buf - 1));
    CHECK_EQ(n, 5);
    CHECK(strcmp(buf, "hello") == 0);
    return n;
}

Test(fs, pipe_read_waits_for_data) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    async_future_t *r = async_spawn(pipe_reader, (void *)(intptr_t)p[0]);
    sleep_ms(50);
    cr_assert_eq(async_future_settled(r), 0, "the read waits");
    ASSERT_VAL(async_await(async_write(p[1], "hello", 5)), 5);
    ASSERT_VAL(async_await(r), 5);
    close(p[1]);
    char c;
    ASSERT_VAL(async_await(async_read(p[0], &c, 1)), 0); /* the writer is gone: end of file */
    close(p[0]);
    rt_stop();
}

/* A 1 MiB write into `wr` (by `write_fn`: async_write_all, or async_write on a
 * socket), far more than a pipe or socket buffer holds, so it must wait for
 * the reads from `rd` that drain it; the bytes come back intact. */
static void write_1mib(int rd, int wr, async_future_t *(*write_fn)(int, const void *, size_t)) {
    size_t len = 1 << 20;
    char *data = malloc(len), *back = malloc(len);
    for (size_t i = 0; i < len; i++) data[i] = (char)(i * 7);
    async_future_t *w = write_fn(wr, data, len);
    size_t got = 0;
    while (got < len) {
        intptr_t n = async_await(async_read(rd, back + got, len - got));
        cr_assert_gt(n, 0);
        got += (size_t)n;
    }
    ASSERT_VAL(async_await(w), len);
    cr_assert_eq(memcmp(data, back, len), 0);
    free(data);
    free(back);
}

Test(fs, pipe_write_all_fills_and_drains) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    write_1mib(p[0], p[1], async_write_all);
    close(p[0]);
    close(p[1]);
    rt_stop();
}

Test(fs, pipe_write_to_closed_reader_is_epipe) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    SAME(write(p[1], "x", 1), async_write(p[1], "x", 1));
    close(p[1]);
    rt_stop();
}

Test(fs, nonblocking_pipe_still_waits) {
    int p[2];
    cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
    char buf[4];
    async_future_t *f = async_read(p[0], buf, sizeof buf);
    sleep_ms(30);
    cr_assert_eq(async_future_settled(f), 0);
    cr_assert_eq(write(p[1], "ab", 2), 2);
    ASSERT_VAL(async_await(f), 2);
    close(p[0]);
    close(p[1]);
    rt_stop();
}

Test(fs, socket_read_write_without_sigpipe) {
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char buf[8] = {0};
    async_future_t *r = async_read(sv[0], buf, sizeof buf);
    ASSERT_VAL(async_await(async_write(sv[1], "ping", 4)), 4);
    ASSERT_VAL(async_await(r), 4);
    cr_assert_str_eq(buf, "ping");
    close(sv[0]);
    /* SIGPIPE is not ignored here: a raised one would kill the test */
    ASSERT_ERR(async_await(async_write(sv[1], "x", 1)), EPIPE);
    close(sv[1]);
    rt_stop();
}

/* One async_write of 1 MiB to a socket sends all of it, as write(2) on a
 * blocking socket and async_send do, however often the buffer fills; the
 * same on a TCP socket. */
Test(fs, socket_write_sends_everything_as_send_does) {
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    write_1mib(sv[0], sv[1], async_write);
    close(sv[0]);
    close(sv[1]);
    int lfd = (int)async_await(async_tcp_listen("127.0.0.1", "0", 4));
    cr_assert_geq(lfd, 0);
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    char port[8];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    int c = (int)async_await(async_tcp_connect("127.0.0.1", port, 5000));
    int s = (int)async_await(async_accept(lfd, NULL, NULL));
    cr_assert(c >= 0 && s >= 0);
    write_1mib(s, c, async_write);
    close(c);
    close(s);
    close(lfd);
    rt_stop();
}

/* A write that finds the socket's buffer full waits on readiness (the first
 * try is a sendmsg), and the vectored form goes the same way. */
Test(fs, socket_write_all_fills_and_drains) {
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    write_1mib(sv[0], sv[1], async_write_all);
    struct iovec iov[2] = {{"ab", 2}, {"cde", 3}};
    ASSERT_VAL(async_await(async_writev(sv[1], iov, 2)), 5);
    char buf[8] = {0};
    ASSERT_VAL(async_await(async_read(sv[0], buf, sizeof buf)), 5);
    cr_assert_str_eq(buf, "abcde");
    close(sv[0]);
    close(sv[1]);
    rt_stop();
}

/* Data for the vector tests: byte i of entry k is (i * 7 + k). */
static void fill_entries(struct iovec *iov, int cnt) {
    for (int k = 0; k < cnt; k++)
        for (size_t i = 0; i < iov[k].iov_len; i++)
            ((char *)iov[k].iov_base)[i] = (char)(i * 7 + (size_t)k);
}

/* True if `got` (n bytes) is the first n bytes of the vector. */
static bool vector_prefix(const struct iovec *iov, int cnt, const char *got, size_t n) {
    for (int k = 0; k < cnt && n; k++) {
        size_t m = iov[k].iov_len < n ? iov[k].iov_len : n;
        if (memcmp(iov[k].iov_base, got, m) != 0) return false;
        got += m;
        n -= m;
    }
    return n == 0;
}

/* async_writev of about 4 MiB to a socket writes all of it, as writev(2) on a
 * blocking socket does, however often the buffer fills: a slow reader
 * drains it in 64 KiB steps with pauses. Odd lengths and an empty entry make
 * the sends stop inside entries and step over one. */
Test(fs, socket_writev_sends_everything_as_blocking_writev_does) {
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    size_t mib = 1 << 20;
    size_t lens[5] = {mib, 0, mib + 1, mib - 3, mib};
    struct iovec iov[5];
    size_t total = 0;
    for (int k = 0; k < 5; k++) {
        iov[k].iov_base = malloc(lens[k] ? lens[k] : 1);
        iov[k].iov_len = lens[k];
        total += lens[k];
    }
    fill_entries(iov, 5);
    char *back = malloc(total);
    async_future_t *w = async_writev(sv[1], iov, 5);
    size_t got = 0;
    for (int step = 0; got < total; step++) {
        size_t want = total - got < 65536 ? total - got : 65536;
        intptr_t n = async_await(async_read(sv[0], back + got, want));
        cr_assert_gt(n, 0);
        got += (size_t)n;
        if (step % 8 == 0) sleep_ms(1); /* slow: the writer waits for room again and again */
    }
    ASSERT_VAL(async_await(w), total);
    cr_assert(vector_prefix(iov, 5, back, total));
    free(back);
    for (int k = 0; k < 5; k++) free(iov[k].iov_base);
    close(sv[0]);
    close(sv[1]);
    rt_stop();
}

/* Cancelling async_writev on a socket after some bytes went out settles it
 * with their count, as the send path does; the socket holds exactly those
 * bytes. Cancelled before any byte went out (the buffer was full), it is
 * ECANCELED and nothing of it is sent. */
Test(fs, socket_writev_cancelled_midway_reports_what_went_out) {
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    size_t mib = 1 << 20;
    struct iovec iov[4];
    for (int k = 0; k < 4; k++) {
        iov[k].iov_base = malloc(mib);
        iov[k].iov_len = mib;
    }
    fill_entries(iov, 4);
    async_future_t *w = async_writev(sv[1], iov, 4); /* nobody reads: it fills and waits */
    sleep_ms(30);
    cr_assert_eq(async_future_settled(w), 0);
    async_cancel(w);
    intptr_t sent = async_await(w);
    cr_assert_gt(sent, 0, "the buffer took some bytes before the wait");
    cr_assert_lt((size_t)sent, 4 * mib);
    char *back = malloc(4 * mib);
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(sv[0], back + got, 4 * mib - got, MSG_DONTWAIT);
        if (n <= 0) break;
        got += (size_t)n;
    }
    cr_assert_eq(got, (size_t)sent, "the socket holds what the count says");
    cr_assert(vector_prefix(iov, 4, back, got));

    /* the buffer full before the call: nothing goes out, ECANCELED */
    while (send(sv[1], back, 65536, MSG_DONTWAIT) > 0) {
    }
    w = async_writev(sv[1], iov, 4);
    sleep_ms(10);
    cr_assert_eq(async_future_settled(w), 0);
    async_cancel(w);
    ASSERT_ERR(async_await(w), ECANCELED);
    free(back);
    for (int k = 0; k < 4; k++) free(iov[k].iov_base);
    close(sv[0]);
    close(sv[1]);
    rt_stop();
}

Test(fs, tty_read_and_write) {
    int master, slave;
    cr_assert_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
    struct termios t;
    tcgetattr(slave, &t);
    cfmakeraw(&t);
    tcsetattr(slave, TCSANOW, &t);
    char buf[8] = {0};
    async_future_t *r = async_read(slave, buf, sizeof buf);
    sleep_ms(20);
    cr_assert_eq(async_future_settled(r), 0);
    ASSERT_VAL(async_await(async_write(master, "tty!", 4)), 4);
    ASSERT_VAL(async_await(r), 4);
    cr_assert_str_eq(buf, "tty!");
    ASSERT_VAL(async_await(async_write(slave, "out", 3)), 3);
    char b2[8] = {0};
    ASSERT_VAL(async_await(async_read(master, b2, sizeof b2)), 3);
    close(master);
    close(slave);
    rt_stop();
}

Test(fs, cancel_a_waiting_pipe_read) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    char buf[4];
    async_future_t *f = async_read(p[0], buf, sizeof buf);
    sleep_ms(20);
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    /* the fd still works afterwards */
    cr_assert_eq(write(p[1], "z", 1), 1);
    ASSERT_VAL(async_await(async_read(p[0], buf, sizeof buf)), 1);
    close(p[0]);
    close(p[1]);
    rt_stop();
}

Test(fs, pipe_read_timeout) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    char buf[4];
    double t0 = now_ms();
    ASSERT_ERR(async_await_timeout(async_read(p[0], buf, sizeof buf), 50), ETIMEDOUT);
    cr_assert_geq(now_ms() - t0, 45);
    close(p[0]);
    close(p[1]);
    rt_stop();
}

/* ---- cancellation of queued pool work, and the reserved threads ------------------ */

Test(fs_pool, cancel_a_queued_operation, .init = scratch_make, .fini = scratch_remove) {
    small_pool_init();
    held_pool_t held;
    pool_hold(&held);
    struct stat st;
    async_future_t *queued = async_stat(P("fifo"), &st);
    sleep_ms(20);
    cr_assert_eq(async_future_settled(queued), 0, "no thread is free for it");
    async_cancel(queued);
    ASSERT_ERR(async_await(queued), ECANCELED);
    pool_release(&held);
    ASSERT_VAL(async_await(async_stat(P("fifo"), &st)), 0);
    rt_stop();
}

static atomic_int gate_open;

/* Holds its pool thread until the test opens the gate. */
static intptr_t gated_job(void *arg) {
    (void)arg;
    while (!atomic_load(&gate_open)) usleep(1000);
    return 0;
}

/* Every pool thread user jobs may have is held, more jobs wait behind them,
 * and file operations still complete on the reserved threads: if they were
 * starved, they could not finish before the gate opens, and the gate opens
 * only after them. */
Test(fs_pool, user_jobs_do_not_starve_file_operations, .init = scratch_make,
     .fini = scratch_remove) {
    async_config_t c = {.pool_threads = 4, .pool_reserved = 2};
    cr_assert_eq(async_runtime_init(&c), 0, "init: %s", ename(errno));
    async_future_t *jobs[6];
    for (int i = 0; i < 6; i++) jobs[i] = async_spawn_blocking(gated_job, NULL);
    sleep_ms(30);
    char p[512];
    snprintf(p, sizeof p, "%s", make_file("s", 10));
    struct stat st;
    ASSERT_VAL(async_await(async_stat(p, &st)), 0);
    int fd = (int)async_await(async_open(p, O_RDONLY));
    cr_assert_geq(fd, 0);
    ASSERT_VAL(async_await(async_fsync(fd)), 0);
    close(fd);
    for (int i = 0; i < 6; i++) cr_assert(!async_future_settled(jobs[i]));
    atomic_store(&gate_open, 1);
    ASSERT_VAL(async_await_all(jobs, 6, NULL, NULL), 0);
    rt_stop();
}

/* ---- sync and size ------------------------------------------------------------------- */

Test(fs, fsync_fdatasync_ftruncate_fallocate) {
    int fd = open(P("s"), O_RDWR | O_CREAT, 0644);
    ASSERT_VAL(async_await(async_write(fd, "12345", 5)), 5);
    ASSERT_VAL(async_await(async_fsync(fd)), 0);
    ASSERT_VAL(async_await(async_fdatasync(fd)), 0);
    ASSERT_VAL(async_await(async_ftruncate(fd, 2)), 0);
    struct stat st;
    fstat(fd, &st);
    cr_assert_eq(st.st_size, 2);
    ASSERT_VAL(async_await(async_fallocate(fd, 0, 0, 8192)), 0);
    fstat(fd, &st);
    cr_assert_eq(st.st_size, 8192);
    SAME(fsync(-1), async_fsync(-1));
    SAME(fdatasync(-1), async_fdatasync(-1));
    SAME(ftruncate(fd, -1), async_ftruncate(fd, -1));
    SAME(ftruncate(-1, 0), async_ftruncate(-1, 0));
    SAME(fallocate(fd, 0, 0, 0), async_fallocate(fd, 0, 0, 0)); /* EINVAL */
    SAME(fallocate(-1, 0, 0, 1), async_fallocate(-1, 0, 0, 1));
    int p[2];
    pipe(p);
    SAME(fsync(p[0]), async_fsync(p[0]));
    SAME(fallocate(p[1], 0, 0, 1), async_fallocate(p[1], 0, 0, 1));
    close(p[0]);
    close(p[1]);
    close(fd);
    rt_stop();
}

/* ---- stat family, access, statvfs -------------------------------------------------------- */

Test(fs, stat_family_matches_libc) {
    char f[512];
    snprintf(f, sizeof f, "%s", make_file("st", 123));
    cr_assert_eq(symlink("st", P("ln")), 0);
    cr_assert_eq(symlink("nowhere", P("dangling")), 0);
    struct stat a, b;
    ASSERT_VAL(async_await(async_stat(f, &b)), 0);
    stat(f, &a);
    cr_assert_eq(a.st_ino, b.st_ino);
    cr_assert_eq(b.st_size, 123);
    ASSERT_VAL(async_await(async_stat(P("ln"), &b)), 0);
    cr_assert(S_ISREG(b.st_mode));
    ASSERT_VAL(async_await(async_lstat(P("ln"), &b)), 0);
    cr_assert(S_ISLNK(b.st_mode));
    int fd = open(f, O_RDONLY);
    ASSERT_VAL(async_await(async_fstat(fd, &b)), 0);
    cr_assert_eq(b.st_ino, a.st_ino);
    int dfd = open(scratch, O_RDONLY | O_DIRECTORY);
    ASSERT_VAL(async_await(async_fstatat(dfd, "ln", &b, AT_SYMLINK_NOFOLLOW)), 0);
    cr_assert(S_ISLNK(b.st_mode));
    ASSERT_VAL(async_await(async_fstatat(fd, "", &b, AT_EMPTY_PATH)), 0);
    cr_assert_eq(b.st_size, 123);
    SAME(stat(P("missing"), &a), async_stat(P("missing"), &b));
    SAME(stat(P("dangling"), &a), async_stat(P("dangling"), &b));
    SAME(lstat(P("st/x"), &a), async_lstat(P("st/x"), &b));
    SAME(fstat(-1, &a), async_fstat(-1, &b));
    SAME(fstatat(-1, "rel", &a, 0), async_fstatat(-1, "rel", &b, 0));
    SAME(fstatat(dfd, "st", &a, 0x12345678), async_fstatat(dfd, "st", &b, 0x12345678));
    ASSERT_ERR(async_await(async_stat(NULL, &b)), EFAULT);
    ASSERT_ERR(async_await(async_stat(f, NULL)), EFAULT);
    ASSERT_ERR(async_await(async_stat(P("missing"), NULL)), ENOENT); /* the kernel's order */
    ASSERT_ERR(async_await(async_fstat(fd, NULL)), EFAULT);
    ASSERT_ERR(async_await(async_fstat(-1, NULL)), EBADF);
    ASSERT_ERR(async_await(async_lstat(NULL, &b)), EFAULT);
    close(fd);
    close(dfd);
    rt_stop();
}

Test(fs, access_and_statvfs) {
    char f[512];
    snprintf(f, sizeof f, "%s", make_file("ac", 1));
    ASSERT_VAL(async_await(async_access(f, R_OK | W_OK)), 0);
    SAME(access(P("none"), F_OK), async_access(P("none"), F_OK));
    SAME(access(f, 0x100), async_access(f, 0x100)); /* EINVAL */
    ASSERT_ERR(async_await(async_access(NULL, F_OK)), EFAULT);
    struct statvfs a, b;
    ASSERT_VAL(async_await(async_statvfs(scratch, &b)), 0);
    statvfs(scratch, &a);
    cr_assert_eq(a.f_bsize, b.f_bsize);
    cr_assert_eq(a.f_fsid, b.f_fsid);
    int fd = open(f, O_RDONLY);
    ASSERT_VAL(async_await(async_fstatvfs(fd, &b)), 0);
    cr_assert_eq(a.f_fsid, b.f_fsid);
    SAME(statvfs(P("none"), &a), async_statvfs(P("none"), &b));
    SAME(fstatvfs(-1, &a), async_fstatvfs(-1, &b));
    ASSERT_ERR(async_await(async_statvfs(NULL, &b)), EFAULT);
    ASSERT_ERR(async_await(async_statvfs(f, NULL)), EFAULT);
    ASSERT_ERR(async_await(async_fstatvfs(fd, NULL)), EFAULT);
    close(fd);
    rt_stop();
}

/* ---- names ---------------------------------------------------------------------------- */

Test(fs, mkdir_rmdir_unlink) {
    ASSERT_VAL(async_await(async_mkdir(P("d"), 0755)), 0);
    SAME(mkdir(P("d"), 0755), async_mkdir(P("d"), 0755));       /* EEXIST */
    SAME(mkdir(P("no/d"), 0755), async_mkdir(P("no/d"), 0755)); /* ENOENT */
    make_file("d/f", 1);
    SAME(rmdir(P("d")), async_rmdir(P("d")));   /* ENOTEMPTY */
    SAME(unlink(P("d")), async_unlink(P("d"))); /* EISDIR */
    ASSERT_VAL(async_await(async_unlink(P("d/f"))), 0);
    SAME(unlink(P("d/f")), async_unlink(P("d/f")));
    SAME(rmdir(P("d/.")), async_rmdir(P("d/."))); /* EINVAL */
    ASSERT_VAL(async_await(async_rmdir(P("d"))), 0);
    SAME(rmdir(P("d")), async_rmdir(P("d")));
    ASSERT_ERR(async_await(async_mkdir(NULL, 0)), EFAULT);
    ASSERT_ERR(async_await(async_rmdir(NULL)), EFAULT);
    ASSERT_ERR(async_await(async_unlink(NULL)), EFAULT);
    rt_stop();
}

Test(fs, rename_link_symlink_readlink) {
    make_file("a", 3);
    ASSERT_VAL(async_await(async_rename(P("a"), P("b"))), 0);
    cr_assert_neq(access(P("a"), F_OK), 0);
    SAME(rename(P("a"), P("c")), async_rename(P("a"), P("c")));
    mkdir(P("dir"), 0755);
    make_file("dir/x", 1);
    SAME(rename(P("b"), P("dir")), async_rename(P("b"), P("dir")));           /* EISDIR */
    SAME(rename(scratch, P("dir/sub")), async_rename(scratch, P("dir/sub"))); /* EINVAL */
    ASSERT_VAL(async_await(async_link(P("b"), P("hard"))), 0);
    struct stat s1, s2;
    stat(P("b"), &s1);
    stat(P("hard"), &s2);
    cr_assert_eq(s1.st_ino, s2.st_ino);
    SAME(link(P("b"), P("hard")), async_link(P("b"), P("hard")));
    SAME(link(P("dir"), P("dl")), async_link(P("dir"), P("dl"))); /* EPERM */
    ASSERT_VAL(async_await(async_symlink("b", P("sym"))), 0);
    SAME(symlink("b", P("sym")), async_symlink("b", P("sym")));
    SAME(symlink("", P("empty")), async_symlink("", P("empty")));
    char buf[64] = {0};
    ASSERT_VAL(async_await(async_readlink(P("sym"), buf, sizeof buf)), 1);
    cr_assert_eq(buf[0], 'b');
    char one[1];
    symlink("longer-target", P("sym2"));
    ASSERT_VAL(async_await(async_readlink(P("sym2"), one, 1)), 1); /* cut, as readlink(2) */
    SAME(readlink(P("b"), buf, sizeof buf), async_readlink(P("b"), buf, sizeof buf));
    SAME(readlink(P("zz"), buf, sizeof buf), async_readlink(P("zz"), buf, sizeof buf));
    SAME(readlink(P("sym"), buf, 0), async_readlink(P("sym"), buf, 0));
    ASSERT_ERR(async_await(async_readlink(P("sym"), NULL, 10)), EFAULT);
    ASSERT_ERR(async_await(async_readlink(P("zz"), NULL, 10)), ENOENT);
    ASSERT_ERR(async_await(async_rename(NULL, P("x"))), EFAULT);
    ASSERT_ERR(async_await(async_rename(P("b"), NULL)), EFAULT);
    ASSERT_ERR(async_await(async_link(NULL, P("x"))), EFAULT);
    ASSERT_ERR(async_await(async_symlink("x", NULL)), EFAULT);
    ASSERT_ERR(async_await(async_readlink(NULL, buf, 1)), EFAULT);
    rt_stop();
}

Test(fs, realpath) {
    make_file("r", 1);
    mkdir(P("sub"), 0755);
    symlink("../r", P("sub/up"));
    char want[PATH_MAX], got[PATH_MAX];
    cr_assert_not_null(realpath(P("sub/up"), want));
    char *r = async_await_ptr(async_realpath(P("sub/./up"), got));
    cr_assert_eq(r, got);
    cr_assert_str_eq(got, want);
    r = async_await_ptr(async_realpath(P("sub/../r"), NULL));
    cr_assert_not_null(r);
    cr_assert_str_eq(r, want);
    free(r);
    ASSERT_NULL_ERR(async_await_ptr(async_realpath(P("none"), got)), ENOENT);
    ASSERT_NULL_ERR(async_await_ptr(async_realpath(P("r/x"), got)), ENOTDIR);
    ASSERT_NULL_ERR(async_await_ptr(async_realpath(NULL, got)), EINVAL);
    rt_stop();
}

/* ---- permissions, owners, times -------------------------------------------------------- */

Test(fs, chmod_chown_utimes) {
    char f[512];
    snprintf(f, sizeof f, "%s", make_file("m", 1));
    symlink("m", P("ml"));
    struct stat st;
    ASSERT_VAL(async_await(async_chmod(f, 0600)), 0);
    stat(f, &st);
    cr_assert_eq(st.st_mode & 0777, 0600);
    int fd = open(f, O_RDWR);
    ASSERT_VAL(async_await(async_fchmod(fd, 0640)), 0);
    fstat(fd, &st);
    cr_assert_eq(st.st_mode & 0777, 0640);
    ASSERT_VAL(async_await(async_chown(f, 1234, 5678)), 0);
    stat(f, &st);
    cr_assert(st.st_uid == 1234 && st.st_gid == 5678);
    ASSERT_VAL(async_await(async_fchown(fd, (uid_t)-1, 42)), 0);
    fstat(fd, &st);
    cr_assert(st.st_uid == 1234 && st.st_gid == 42);
    ASSERT_VAL(async_await(async_lchown(P("ml"), 77, 77)), 0);
    lstat(P("ml"), &st);
    cr_assert_eq(st.st_uid, 77);
    stat(f, &st);
    cr_assert_eq(st.st_uid, 1234, "lchown leaves the target alone");
    struct timeval tv[2] = {{1000000, 5}, {2000000, 7}};
    ASSERT_VAL(async_await(async_utimes(f, tv)), 0);
    stat(f, &st);
    cr_assert(st.st_atim.tv_sec == 1000000 && st.st_mtim.tv_sec == 2000000);
    cr_assert_eq(st.st_mtim.tv_nsec, 7000);
    struct timeval tv2[2] = {{3000000, 0}, {4000000, 0}};
    ASSERT_VAL(async_await(async_futimes(fd, tv2)), 0);
    fstat(fd, &st);
    cr_assert_eq(st.st_mtim.tv_sec, 4000000);
    ASSERT_VAL(async_await(async_utimes(f, NULL)), 0);
    fstat(fd, &st);
    cr_assert_gt(st.st_mtim.tv_sec, 4000000);
    struct timeval bad[2] = {{0, 2000000}, {0, 0}};
    SAME(utimes(f, bad), async_utimes(f, bad));
    SAME(futimes(fd, bad), async_futimes(fd, bad));
    SAME(chmod(P("none"), 0), async_chmod(P("none"), 0));
    SAME(fchmod(-1, 0), async_fchmod(-1, 0));
    SAME(chown(P("none"), 0, 0), async_chown(P("none"), 0, 0));
    SAME(lchown(P("none"), 0, 0), async_lchown(P("none"), 0, 0));
    SAME(fchown(-1, 0, 0), async_fchown(-1, 0, 0));
    SAME(utimes(P("none"), NULL), async_utimes(P("none"), NULL));
    SAME(futimes(-1, NULL), async_futimes(-1, NULL));
    ASSERT_ERR(async_await(async_chmod(NULL, 0)), EFAULT);
    ASSERT_ERR(async_await(async_chown(NULL, 0, 0)), EFAULT);
    ASSERT_ERR(async_await(async_lchown(NULL, 0, 0)), EFAULT);
    ASSERT_ERR(async_await(async_utimes(NULL, NULL)), EFAULT);
    cr_assert_eq(seteuid(65534), 0);
    SAME(chown(f, 0, 0), async_chown(f, 0, 0)); /* EPERM */
    cr_assert_eq(seteuid(0), 0);
    close(fd);
    rt_stop();
}

/* ---- temporary files ------------------------------------------------------------------ */

Test(fs, mkstemp_mkdtemp) {
    char t[300];
    snprintf(t, sizeof t, "%s/tmpXXXXXX", scratch);
    int fd = (int)async_await(async_mkstemp(t));
    cr_assert_geq(fd, 0);
    cr_assert_eq(strstr(t, "XXXXXX"), NULL);
    struct stat st;
    fstat(fd, &st);
    cr_assert_eq(st.st_mode & 0777, 0600);
    close(fd);
    char d[300];
    snprintf(d, sizeof d, "%s/dirXXXXXX", scratch);
    cr_assert_eq(async_await_ptr(async_mkdtemp(d)), d);
    stat(d, &st);
    cr_assert(S_ISDIR(st.st_mode));
    char bad1[] = "/tmp/noXs", bad2[] = "/tmp/noXs";
    SAME(mkstemp(bad1), async_mkstemp(bad2));
    char nd1[300], nd2[300];
    snprintf(nd1, sizeof nd1, "%s/none/XXXXXX", scratch);
    strcpy(nd2, nd1);
    ASSERT_NULL_ERR(async_await_ptr(async_mkdtemp(nd2)), ENOENT);
    ASSERT_NULL_ERR(async_await_ptr(async_mkdtemp(bad2)), EINVAL);
    ASSERT_ERR(async_await(async_mkstemp(NULL)), EFAULT);
    ASSERT_NULL_ERR(async_await_ptr(async_mkdtemp(NULL)), EFAULT);
    rt_stop();
}

/* ---- kernel copies ---------------------------------------------------------------------- */

Test(fs, sendfile_and_copy_file_range) {
    char src[512];
    snprintf(src, sizeof src, "%s", make_file("src", 10000));
    int in = open(src, O_RDONLY), out = open(P("dst"), O_RDWR | O_CREAT, 0644);
    off_t off = 100;
    ASSERT_VAL(async_await(async_sendfile(out, in, &off, 1000)), 1000);
    cr_assert_eq(off, 1100);
    ASSERT_VAL(async_await(async_sendfile(out, in, NULL, 10)), 10);
    ASSERT_VAL(lseek(in, 0, SEEK_CUR), 10);
    off_t oi = 0, oo = 5000;
    ASSERT_VAL(async_await(async_copy_file_range(in, &oi, out, &oo, 3000, 0)), 3000);
    cr_assert(oi == 3000 && oo == 8000);
    char buf[3];
    pread(out, buf, 3, 5000);
    cr_assert_eq(memcmp(buf, "abc", 3), 0);
    ASSERT_VAL(async_await(async_copy_file_range(in, &oi, out, NULL, 0, 0)), 0);
    SAME(sendfile(out, -1, NULL, 10), async_sendfile(out, -1, NULL, 10));
    SAME(copy_file_range(in, NULL, out, NULL, 10, 1),
         async_copy_file_range(in, NULL, out, NULL, 10, 1));
    SAME(copy_file_range(-1, NULL, out, NULL, 10, 0),
         async_copy_file_range(-1, NULL, out, NULL, 10, 0));
    close(in);
    close(out);
    rt_stop();
}

/* Reads parked on pipes hold no pool thread: with a pool of two, fifty waiting
 * reads leave file operations free to run. */
Test(fs_pool, waiting_pipe_reads_hold_no_pool_thread, .init = scratch_make,
     .fini = scratch_remove) {
    small_pool_init();
    enum { N = 50 };
    int p[N][2];
    char bufs[N][4];
    async_future_t *rs[N];
    for (int i = 0; i < N; i++) {
        cr_assert_eq(pipe(p[i]), 0);
        rs[i] = async_read(p[i][0], bufs[i], sizeof bufs[i]);
    }
    struct stat st; /* would never finish if the reads held the pool's threads */
    ASSERT_VAL(async_await(async_stat(scratch, &st)), 0);
    for (int i = 0; i < N; i++) cr_assert(!async_future_settled(rs[i]));
    for (int i = 0; i < N; i++) cr_assert_eq(write(p[i][1], "ok", 2), 2);
    for (int i = 0; i < N; i++) {
        ASSERT_VAL(async_await(rs[i]), 2);
        close(p[i][0]);
        close(p[i][1]);
    }
    rt_stop();
}

Test(fs, close_wakes_a_parked_read) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    char buf[4];
    async_future_t *f = async_read(p[0], buf, sizeof buf);
    sleep_ms(20);
    cr_assert_eq(async_future_settled(f), 0);
    ASSERT_VAL(async_await(async_close(p[0])), 0);
    ASSERT_ERR(async_await(f), EBADF);
    close(p[1]);
    rt_stop();
}
