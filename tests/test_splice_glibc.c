/* async_splice and async_tee against glibc on the same inputs: pipes, files
 * and sockets on either side, offsets given where they may not be (ESPIPE),
 * negative offsets, bad fds and wrong directions, unknown flags, the same
 * pipe on both sides, empty pipes with SPLICE_F_NONBLOCK, and len 0. Each
 * glibc call and its async twin run on fds of their own set up alike; the
 * result, errno, the bytes moved, the offsets and the file positions must
 * agree. From a plain thread and from a task; then cancellation. */
#include "glibc_compare.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

/* The kinds of fd a case names. */
enum { PIPE_R, PIPE_W, EMPTY_R, EMPTY_W, FILE_RW, FILE2, SOCK, WRONLY_FILE, BAD, NKINDS };

typedef struct fdset {
    int fd[NKINDS];
} fdset_t;

static char dir[64];

/* A set of fds: a pipe holding "hello", an empty pipe, a file holding
 * "0123456789" at offset 2, a second file, a socket with "sock" to read. */
static fdset_t make_set(int which) {
    fdset_t s;
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    CHECK_EQ(write(p[1], "hello", 5), 5);
    s.fd[PIPE_R] = p[0];
    s.fd[PIPE_W] = p[1];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    s.fd[EMPTY_R] = p[0];
    s.fd[EMPTY_W] = p[1];
    char path[128];
    snprintf(path, sizeof path, "%s/f%d", dir, which);
    s.fd[FILE_RW] = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK_EQ(write(s.fd[FILE_RW], "0123456789", 10), 10);
    CHECK_EQ(lseek(s.fd[FILE_RW], 2, SEEK_SET), 2);
    snprintf(path, sizeof path, "%s/g%d", dir, which);
    s.fd[FILE2] = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    s.fd[WRONLY_FILE] = open(path, O_WRONLY | O_CLOEXEC);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(write(sv[1], "sock", 4), 4);
    close(sv[1]);
    s.fd[SOCK] = sv[0];
    s.fd[BAD] = 4000 + which;
    return s;
}

static void close_set(fdset_t *s) {
    for (int i = 0; i < NKINDS; i++)
        if (i != BAD) close(s->fd[i]);
}

/* What a set looks like after a call: what each pipe holds, each file's
 * contents and position. */
static void describe(const fdset_t *s, char *out, size_t size) {
    char buf[64];
    size_t len = 0;
    out[0] = 0;
    static const int pipes[] = {PIPE_R, EMPTY_R};
    for (int i = 0; i < 2; i++) {
        int fd = s->fd[pipes[i]];
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        ssize_t n = read(fd, buf, sizeof buf - 1);
        fcntl(fd, F_SETFL, fl);
        buf[n > 0 ? n : 0] = 0;
        len += (size_t)snprintf(out + len, size - len, "pipe%d[%s] ", i, buf);
        if (n > 0) CHECK_EQ(write(s->fd[pipes[i] + 1], buf, (size_t)n), n); /* put it back */
    }
    static const int files[] = {FILE_RW, FILE2};
    for (int i = 0; i < 2; i++) {
        int fd = s->fd[files[i]];
        ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        buf[n > 0 ? n : 0] = 0;
        len += (size_t)snprintf(out + len, size - len, "file%d[%s]@%jd ", i, buf,
                                (intmax_t)lseek(fd, 0, SEEK_CUR));
    }
}

typedef struct scase {
    bool tee;
    int in, out;
    int off_in, off_out; /* -1: NULL, else the offset */
    size_t len;
    unsigned flags;
} scase_t;

#define NB SPLICE_F_NONBLOCK
static const scase_t cases[] = {
    {false, PIPE_R, FILE2, -1, -1, 3, 0},
    {false, PIPE_R, FILE2, -1, 4, 5, 0},
    {false, PIPE_R, FILE2, 0, -1, 5, 0},  /* an offset for a pipe: ESPIPE */
    {false, PIPE_R, FILE2, -1, -3, 5, 0}, /* a negative offset */
    {false, FILE_RW, EMPTY_W, -1, -1, 4, 0},
    {false, FILE_RW, EMPTY_W, 5, -1, 100, 0},
    {false, FILE_RW, EMPTY_W, 50, -1, 4, 0}, /* past the end: 0 */
    {false, FILE_RW, EMPTY_W, -1, 0, 4, 0},
    {false, FILE_RW, FILE2, -1, -1, 4, 0}, /* no pipe: EINVAL */
    {false, FILE_RW, SOCK, -1, -1, 4, 0},
    {false, SOCK, EMPTY_W, -1, -1, 10, 0},
    {false, SOCK, EMPTY_W, -1, -1, 10, NB},
    {false, PIPE_R, PIPE_W, -1, -1, 5, 0},  /* the same pipe: EINVAL */
    {false, PIPE_R, EMPTY_W, -1, -1, 0, 0}, /* len 0 */
    {false, PIPE_R, EMPTY_W, -1, -1, 2, 0},
    {false, PIPE_R, EMPTY_W, -1, -1, 2, 0x100}, /* unknown flag */
    {false, EMPTY_R, FILE2, -1, -1, 5, NB},     /* empty, no waiting: EAGAIN */
    {false, EMPTY_R, PIPE_W, -1, -1, 5, NB},
    {false, PIPE_W, EMPTY_W, -1, -1, 5, 0}, /* the write end as input */
    {false, PIPE_R, EMPTY_R, -1, -1, 5, 0}, /* the read end as output */
    {false, PIPE_R, WRONLY_FILE, -1, -1, 5, 0},
    {false, WRONLY_FILE, EMPTY_W, -1, -1, 5, 0},
    {false, BAD, EMPTY_W, -1, -1, 5, 0},
    {false, PIPE_R, BAD, -1, -1, 5, 0},
    {true, PIPE_R, EMPTY_W, -1, -1, 3, 0},
    {true, PIPE_R, EMPTY_W, -1, -1, 0, 0},
    {true, PIPE_R, PIPE_W, -1, -1, 3, 0}, /* the same pipe: EINVAL */
    {true, PIPE_R, FILE2, -1, -1, 3, 0},  /* not a pipe: EINVAL */
    {true, FILE_RW, EMPTY_W, -1, -1, 3, 0},
    {true, EMPTY_R, PIPE_W, -1, -1, 3, NB}, /* empty: EAGAIN */
    {true, PIPE_R, EMPTY_W, -1, -1, 3, 0x100},
    {true, BAD, EMPTY_W, -1, -1, 3, 0},
    {true, PIPE_W, EMPTY_W, -1, -1, 3, 0},
    {true, SOCK, EMPTY_W, -1, -1, 3, 0},
};

static void table(void) {
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const scase_t *c = &cases[i];
        fdset_t g = make_set(0), a = make_set(1);
        off_t goi = c->off_in, gou = c->off_out, aoi = c->off_in, aou = c->off_out;
        errno = 0;
        ssize_t gn = c->tee ? tee(g.fd[c->in], g.fd[c->out], c->len, c->flags)
                            : splice(g.fd[c->in], c->off_in == -1 ? NULL : &goi, g.fd[c->out],
                                     c->off_out == -1 ? NULL : &gou, c->len, c->flags);
        int ge = errno;
        errno = 0;
        intptr_t an = async_await(
            c->tee ? async_tee(a.fd[c->in], a.fd[c->out], c->len, c->flags)
                   : async_splice(a.fd[c->in], c->off_in == -1 ? NULL : &aoi, a.fd[c->out],
                                  c->off_out == -1 ? NULL : &aou, c->len, c->flags));
        int ae = errno;
        if (gn != an || (gn < 0 && ge != ae))
            check_fail(__FILE__, __LINE__, "case %zu [%s]: glibc %zd/%s, async %jd/%s", i,
                       compare_where, gn, ename(ge), (intmax_t)an, ename(ae));
        CHECK_EQ(goi, aoi);
        CHECK_EQ(gou, aou);
        char gd[256], ad[256];
        describe(&g, gd, sizeof gd);
        describe(&a, ad, sizeof ad);
        if (strcmp(gd, ad) != 0)
            check_fail(__FILE__, __LINE__, "case %zu [%s]: glibc left %s, async %s", i,
                       compare_where, gd, ad);
        close_set(&g);
        close_set(&a);
    }
}

static void splice_init(void) {
    strcpy(dir, "/tmp/asyncstd-splice-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    rt_start();
}

static void splice_fini(void) {
    rt_stop();
    char path[128];
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/f%d", dir, i);
        unlink(path);
        snprintf(path, sizeof path, "%s/g%d", dir, i);
        unlink(path);
    }
    rmdir(dir);
}

TestSuite(splice_glibc, .init = splice_init, .fini = splice_fini, .timeout = 60);

Test(splice_glibc, table) { both_contexts(table); }

/* A cancelled wait on an empty pipe moves nothing; data written later stays. */
static void cancelled(void) {
    fdset_t s = make_set(1);
    async_future_t *fs[2] = {async_splice(s.fd[EMPTY_R], NULL, s.fd[FILE2], NULL, 5, 0),
                             async_tee(s.fd[EMPTY_R], s.fd[PIPE_W], 5, 0)};
    (void)async_await(async_usleep(20000));
    cancel_all_pending(fs, 2);
    CHECK_EQ(write(s.fd[EMPTY_W], "late", 4), 4);
    (void)async_await(async_usleep(20000));
    char d[256];
    describe(&s, d, sizeof d);
    CHECK(strcmp(d, "pipe0[hello] pipe1[late] file0[0123456789]@2 file1[]@0 ") == 0);
    close_set(&s);
}

Test(splice_glibc, cancelled_wait_moves_nothing) { both_contexts(cancelled); }

/* ---- blocking sockets ------------------------------------------------------------ */

/* A connected loopback TCP pair, both ends blocking, as a program's own
 * socket() and connect() leave them. */
static void tcp_pair(int sv[2]) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    CHECK(l >= 0 && bind(l, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(l, 1) == 0 &&
          getsockname(l, (struct sockaddr *)&sa, &len) == 0);
    sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_EQ(connect(sv[0], (struct sockaddr *)&sa, sizeof sa), 0);
    sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    CHECK(sv[1] >= 0);
    close(l);
}

static atomic_int ticks;

static intptr_t ticker(void *arg) {
    (void)arg;
    for (int i = 0; i < 5; i++) {
        (void)async_await(async_usleep(2000));
        atomic_fetch_add(&ticks, 1);
    }
    return 0;
}

/* The kernel ignores SPLICE_F_NONBLOCK for a blocking TCP socket's reads:
 * a splice from one with nothing to read held the worker until data came,
 * so that with one worker nothing else ran and it could not be cancelled. */
static void blocking_tcp_input(void) {
    int sv[2], p[2];
    tcp_pair(sv);
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    async_future_t *f = async_splice(sv[0], NULL, p[1], NULL, 10, 0);
    atomic_store(&ticks, 0);
    CHECK_EQ(async_await(async_spawn(ticker, NULL)), 0); /* other tasks run meanwhile */
    CHECK_EQ(atomic_load(&ticks), 5);
    CHECK(f && !async_future_settled(f));
    async_cancel(f);
    errno = 0;
    CHECK_EQ(async_await(f), -1);
    CHECK_EQ(errno, ECANCELED);
    /* nothing was taken: data sent now is spliced by the next call, as by glibc's */
    CHECK_EQ(write(sv[1], "abcd", 4), 4);
    CHECK_EQ(async_await(async_splice(sv[0], NULL, p[1], NULL, 10, 0)), 4);
    CHECK_EQ(write(sv[1], "efgh", 4), 4);
    CHECK_EQ(splice(sv[0], NULL, p[1], NULL, 10, 0), 4);
    char buf[16] = "";
    CHECK_EQ(read(p[0], buf, sizeof buf), 8);
    CHECK(memcmp(buf, "abcdefgh", 8) == 0);
    /* with SPLICE_F_NONBLOCK and nothing to read: EAGAIN (glibc's splice would block) */
    CHECK_ERR(async_await(async_splice(sv[0], NULL, p[1], NULL, 10, SPLICE_F_NONBLOCK)), EAGAIN);
    /* the end of the stream: 0 from both */
    shutdown(sv[1], SHUT_WR);
    SAME(splice(sv[0], NULL, p[1], NULL, 10, 0), async_splice(sv[0], NULL, p[1], NULL, 10, 0));
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

Test(splice_glibc, blocking_tcp_input) { both_contexts(blocking_tcp_input); }

/* A blocking Unix socket honours SPLICE_F_NONBLOCK for reading: EAGAIN from both. */
static void blocking_unix_input(void) {
    int sv[2], p[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    SAME(splice(sv[0], NULL, p[1], NULL, 10, SPLICE_F_NONBLOCK),
         async_splice(sv[0], NULL, p[1], NULL, 10, SPLICE_F_NONBLOCK));
    CHECK_EQ(write(sv[1], "xyz", 3), 3);
    CHECK_EQ(async_await(async_splice(sv[0], NULL, p[1], NULL, 10, SPLICE_F_NONBLOCK)), 3);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

Test(splice_glibc, blocking_unix_input) { both_contexts(blocking_unix_input); }

/* Writing a blocking socket waits for room in the kernel whatever the
 * flags: a splice into a full one must not hold a worker either. */
static void blocking_socket_output(void) {
    int sv[2], p[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    int fl = fcntl(sv[0], F_GETFL);
    fcntl(sv[0], F_SETFL, fl | O_NONBLOCK);
    char chunk[1024] = {0};
    while (write(sv[0], chunk, sizeof chunk) > 0) {
    } /* full */
    fcntl(sv[0], F_SETFL, fl);
    CHECK_EQ(write(p[1], "data", 4), 4);
    async_future_t *f = async_splice(p[0], NULL, sv[0], NULL, 4, 0);
    atomic_store(&ticks, 0);
    CHECK_EQ(async_await(async_spawn(ticker, NULL)), 0);
    CHECK_EQ(atomic_load(&ticks), 5);
    CHECK(f && !async_future_settled(f));
    async_cancel(f);
    errno = 0;
    CHECK_EQ(async_await(f), -1);
    CHECK_EQ(errno, ECANCELED);
    char buf[8];
    CHECK_EQ(read(p[0], buf, sizeof buf), 4); /* still in the pipe */
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

Test(splice_glibc, blocking_socket_output) { both_contexts(blocking_socket_output); }
