/* Tests of the buffered streams of fs.h (async_fopen ... async_fclose) on
 * files, pipes and sockets: lines, blocks, formatted output, flushing, the
 * flags, cancellation and bad input. */
#include "fs_helpers.h"

#include <sys/socket.h>

TestSuite(fs_stream, .init = fs_init, .fini = fs_fini, .timeout = 30);

Test(fs_stream, write_then_read_lines) {
    async_file_t *f = async_await_ptr(async_fopen(P("lines"), "w"));
    cr_assert_not_null(f);
    for (int i = 0; i < 5000; i++)
        ASSERT_VAL(async_await(async_fprintf(f, "line %d\n", i)),
                   7 + (i > 9) + (i > 99) + (i > 999));
    ASSERT_VAL(async_await(async_fputs("last without newline", f)), 1); /* glibc says 1 */
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    f = async_await_ptr(async_fopen(P("lines"), "r"));
    cr_assert_not_null(f);
    char buf[64];
    for (int i = 0; i < 5000; i++) {
        cr_assert_eq(async_await_ptr(async_fgets(buf, sizeof buf, f)), buf);
        char want[32];
        snprintf(want, sizeof want, "line %d\n", i);
        cr_assert_str_eq(buf, want);
    }
    cr_assert_eq(async_await_ptr(async_fgets(buf, sizeof buf, f)), buf);
    cr_assert_str_eq(buf, "last without newline");
    cr_assert_eq(async_feof(f), 1);
    errno = 0;
    cr_assert_null(async_await_ptr(async_fgets(buf, sizeof buf, f)));
    cr_assert_eq(errno, 0);
    cr_assert_eq(async_ferror(f), 0);
    async_clearerr(f);
    cr_assert_eq(async_feof(f), 0);
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    rt_stop();
}

Test(fs_stream, fgets_cuts_at_size) {
    const char *p = P("long");
    FILE *c = fopen(p, "w");
    fputs("abcdefghij\nxy\n", c);
    fclose(c);
    async_file_t *f = async_await_ptr(async_fopen(p, "r"));
    char buf[5];
    cr_assert_not_null(async_await_ptr(async_fgets(buf, 5, f)));
    cr_assert_str_eq(buf, "abcd");
    cr_assert_not_null(async_await_ptr(async_fgets(buf, 5, f)));
    cr_assert_str_eq(buf, "efgh");
    cr_assert_not_null(async_await_ptr(async_fgets(buf, 5, f)));
    cr_assert_str_eq(buf, "ij\n");
    cr_assert_not_null(async_await_ptr(async_fgets(buf, 1, f)));
    cr_assert_str_eq(buf, "");
    ASSERT_NULL_ERR(async_await_ptr(async_fgets(buf, 0, f)), EINVAL);
    ASSERT_NULL_ERR(async_await_ptr(async_fgets(NULL, 5, f)), EINVAL);
    ASSERT_NULL_ERR(async_await_ptr(async_fgets(buf, 5, NULL)), EINVAL);
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    rt_stop();
}

Test(fs_stream, getline_grows_for_long_lines) {
    const char *p = P("gl");
    size_t big = 200000;
    FILE *c = fopen(p, "w");
    for (size_t i = 0; i < big; i++) fputc('z', c);
    fputs("\nshort\n", c);
    fclose(c);
    async_file_t *f = async_await_ptr(async_fopen(p, "re"));
    char *line = NULL;
    size_t n = 0;
    ASSERT_VAL(async_await(async_getline(&line, &n, f)), big + 1);
    cr_assert_geq(n, big + 2);
    cr_assert_eq(line[big], '\n');
    ASSERT_VAL(async_await(async_getline(&line, &n, f)), 6);
    cr_assert_str_eq(line, "short\n");
    errno = 0;
    ASSERT_VAL(async_await(async_getline(&line, &n, f)), -1);
    cr_assert_eq(errno, 0, "end of file leaves errno alone");
    cr_assert(async_feof(f));
    free(line);
    ASSERT_ERR(async_await(async_getline(NULL, &n, f)), EINVAL);
    ASSERT_ERR(async_await(async_getline(&line, NULL, f)), EINVAL);
    ASSERT_ERR(async_await(async_getline(&line, &n, NULL)), EINVAL);
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    rt_stop();
}

Test(fs_stream, fread_fwrite_blocks) {
    async_file_t *f = async_await_ptr(async_fopen(P("blk"), "w+"));
    cr_assert_not_null(f);
    size_t len = 1000 * 1000;
    int *data = malloc(len * sizeof *data);
    for (size_t i = 0; i < len; i++) data[i] = (int)(i * 31);
    ASSERT_VAL(async_await(async_fwrite(data, sizeof *data, 10, f)), 10); /* buffered */
    ASSERT_VAL(async_await(async_fwrite(data + 10, sizeof *data, len - 10, f)),
               len - 10); /* through */
    ASSERT_VAL(async_await(async_fflush(f)), 0);
    struct stat st;
    stat(P("blk"), &st);
    cr_assert_eq((size_t)st.st_size, len * sizeof *data);
    lseek(async_fileno(f), 0, SEEK_SET);
    int *back =
        malloc((len + 3) * sizeof *back); /* fread is asked for 3 items more than there are */
    ASSERT_VAL(async_await(async_fread(back, sizeof *back, 3, f)), 3);
    ASSERT_VAL(async_await(async_fread(back + 3, sizeof *back, len, f)), len - 3);
    cr_assert(async_feof(f));
    cr_assert_eq(memcmp(data, back, len * sizeof *data), 0);
    ASSERT_VAL(async_await(async_fread(back, 1, 0, f)), 0);
    ASSERT_VAL(async_await(async_fwrite(back, 0, 5, f)), 0);
    ASSERT_ERR(async_await(async_fread(NULL, 1, 5, f)), EFAULT);
    ASSERT_ERR(async_await(async_fwrite(NULL, 1, 5, f)), EFAULT);
    ASSERT_ERR(async_await(async_fread(back, SIZE_MAX, 2, f)), EOVERFLOW);
    ASSERT_ERR(async_await(async_fread(back, 1, 1, NULL)), EINVAL);
    ASSERT_ERR(async_await(async_fwrite(back, 1, 1, NULL)), EINVAL);
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    free(data);
    free(back);
    rt_stop();
}

Test(fs_stream, modes_and_bad_input) {
    make_file("ex", 3);
    ASSERT_NULL_ERR(async_await_ptr(async_fopen(P("ex"), "wx")), EEXIST);
    ASSERT_NULL_ERR(async_await_ptr(async_fopen(P("none"), "r")), ENOENT);
    ASSERT_NULL_ERR(async_await_ptr(async_fopen(P("ex"), "q")), EINVAL);
    ASSERT_NULL_ERR(async_await_ptr(async_fopen(P("ex"), NULL)), EINVAL);
    ASSERT_NULL_ERR(async_await_ptr(async_fopen(NULL, "r")), EFAULT);
    async_file_t *f = async_await_ptr(async_fopen(P("ex"), "a"));
    ASSERT_VAL(async_await(async_fputs("+", f)), 1);
    char buf[8];
    ASSERT_NULL_ERR(async_await_ptr(async_fgets(buf, 8, f)), EBADF); /* write-only */
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    f = async_await_ptr(async_fopen(P("ex"), "r"));
    ASSERT_ERR(async_await(async_fputs("x", f)), EBADF); /* read-only */
    cr_assert_not_null(async_await_ptr(async_fgets(buf, 8, f)));
    cr_assert_str_eq(buf, "abc+");
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    int fd = open(P("ex"), O_RDONLY);
    ASSERT_NULL_ERR(async_fdopen(fd, "w"), EINVAL);
    ASSERT_NULL_ERR(async_fdopen(-1, "r"), EBADF);
    ASSERT_NULL_ERR(async_fdopen(fd, "z"), EINVAL);
    f = async_fdopen(fd, "r");
    cr_assert_not_null(f);
    cr_assert_eq(async_fileno(f), fd);
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    cr_assert_eq(fcntl(fd, F_GETFD), -1, "fclose closed the fd");
    ASSERT_ERR(async_fileno(NULL), EBADF);
    ASSERT_ERR(async_await(async_fclose(NULL)), EINVAL);
    ASSERT_ERR(async_await(async_fflush(NULL)), EINVAL);
    cr_assert_eq(async_feof(NULL), 0);
    cr_assert_eq(async_ferror(NULL), 0);
    async_clearerr(NULL);
    ASSERT_ERR(async_await(async_fprintf(NULL, "x")), EINVAL);
    rt_stop();
}

/* ---- libc's answers, mode by mode -------------------------------------------------------
 * What a stream opened with `mode` on a file holding "hello" shows: how its fd
 * was opened, where it stands, and what a write, a flush and a read then do. */

typedef struct mode_seen {
    int opened, err; /* 1, or 0 with the errno */
    int acc, append, cloexec;
    long pos_open, size_open;
    int put_ok, put_err, put_ferror;
    long pos_flushed;
    char got[8]; /* what fgets read, or "(null)" */
    int get_err, get_ferror;
} mode_seen_t;

static void hello_file(void) {
    unlink(P("m"));
    FILE *c = fopen(P("m"), "w");
    fputs("hello", c);
    fclose(c);
}

static void fd_seen(mode_seen_t *m, int fd) {
    int fl = fcntl(fd, F_GETFL);
    m->acc = fl & O_ACCMODE;
    m->append = !!(fl & O_APPEND);
    m->cloexec = !!(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    m->pos_open = (long)lseek(fd, 0, SEEK_CUR);
    struct stat st;
    fstat(fd, &st);
    m->size_open = (long)st.st_size;
}

static mode_seen_t glibc_mode(const char *mode) {
    mode_seen_t m = {0};
    hello_file();
    errno = 0;
    FILE *f = fopen(P("m"), mode);
    m.err = errno;
    if (!(m.opened = f != NULL)) return m;
    fd_seen(&m, fileno(f));
    errno = 0;
    m.put_ok = fputs("X", f) >= 0;
    m.put_err = m.put_ok ? 0 : errno;
    m.put_ferror = !!ferror(f);
    clearerr(f);
    fflush(f);
    m.pos_flushed = (long)lseek(fileno(f), 0, SEEK_CUR);
    errno = 0;
    char *g = fgets(m.got, sizeof m.got, f);
    m.get_err = g ? 0 : errno;
    if (!g) strcpy(m.got, "(null)");
    m.get_ferror = !!ferror(f);
    fclose(f);
    return m;
}

static mode_seen_t our_mode(const char *mode) {
    mode_seen_t m = {0};
    hello_file();
    errno = 0;
    async_file_t *f = async_await_ptr(async_fopen(P("m"), mode));
    m.err = errno;
    if (!(m.opened = f != NULL)) return m;
    fd_seen(&m, async_fileno(f));
    errno = 0;
    m.put_ok = async_await(async_fputs("X", f)) >= 0;
    m.put_err = m.put_ok ? 0 : errno;
    m.put_ferror = !!async_ferror(f);
    async_clearerr(f);
    (void)async_await(async_fflush(f));
    m.pos_flushed = (long)lseek(async_fileno(f), 0, SEEK_CUR);
    errno = 0;
    char *g = async_await_ptr(async_fgets(m.got, sizeof m.got, f));
    m.get_err = g ? 0 : errno;
    if (!g) strcpy(m.got, "(null)");
    m.get_ferror = !!async_ferror(f);
    (void)async_await(async_fclose(f));
    return m;
}

/* Letters stdio does not know are skipped ("rt+" is read-write), "a" starts
 * at the end, and a call the mode forbids sets the error indicator: all as
 * glibc's fopen(3). */
Test(fs_stream, modes_read_as_glibc) {
    static const char *const modes[] = {
        "r",       "rt",       "rt+",     "rb+", "r+b", "r+t", "re",  "rx", "rm+", "r+++", "rtext+",
        "rbbbbb+", "rbbbbbb+", "rbbbbbe", "w",   "w+",  "wb",  "wt+", "wx", "w+x", "a",    "ab",
        "at",      "a+",       "a+b",     "a+e", "ae",  "q",   "",    "R",  "+r",
    };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        const char *md = modes[i];
        mode_seen_t g = glibc_mode(md);
        if (strchr(md, 'x')) { /* "x" needs a file that is not there yet */
            unlink(P("m"));
            mode_seen_t gx = {0};
            FILE *f = fopen(P("m"), md);
            gx.opened = f != NULL;
            if (f) fd_seen(&gx, fileno(f)), fclose(f);
            unlink(P("m"));
            async_file_t *a = async_await_ptr(async_fopen(P("m"), md));
            cr_assert_eq(a != NULL, gx.opened, "mode \"%s\" on a new file", md);
            if (a) {
                mode_seen_t ax = {0};
                fd_seen(&ax, async_fileno(a));
                cr_assert(ax.acc == gx.acc && ax.append == gx.append, "mode \"%s\"", md);
                ASSERT_VAL(async_await(async_fclose(a)), 0);
            }
        }
        mode_seen_t o = our_mode(md);
        cr_assert(o.opened == g.opened && o.err == g.err, "\"%s\": opened %d/%s, glibc %d/%s", md,
                  o.opened, ename(o.err), g.opened, ename(g.err));
        if (!g.opened) continue;
        cr_assert(o.acc == g.acc && o.append == g.append && o.cloexec == g.cloexec,
                  "\"%s\": access %d append %d cloexec %d, glibc %d %d %d", md, o.acc, o.append,
                  o.cloexec, g.acc, g.append, g.cloexec);
        cr_assert(o.pos_open == g.pos_open && o.size_open == g.size_open,
                  "\"%s\": at %ld of %ld after open, glibc at %ld of %ld", md, o.pos_open,
                  o.size_open, g.pos_open, g.size_open);
        cr_assert(o.put_ok == g.put_ok && o.put_err == g.put_err && o.put_ferror == g.put_ferror,
                  "\"%s\": write ok %d %s ferror %d, glibc %d %s %d", md, o.put_ok,
                  ename(o.put_err), o.put_ferror, g.put_ok, ename(g.put_err), g.put_ferror);
        cr_assert_eq(o.pos_flushed, g.pos_flushed, "\"%s\": at %ld after the flush, glibc %ld", md,
                     o.pos_flushed, g.pos_flushed);
        cr_assert(!strcmp(o.got, g.got) && o.get_err == g.get_err && o.get_ferror == g.get_ferror,
                  "\"%s\": read \"%s\" %s ferror %d, glibc \"%s\" %s %d", md, o.got,
                  ename(o.get_err), o.get_ferror, g.got, ename(g.get_err), g.get_ferror);
    }
    rt_stop();
}

/* Every read on a write-only stream and every write on a read-only one: EBADF
 * and the error indicator, as glibc gives for getline, fread, fwrite, fprintf. */
Test(fs_stream, wrong_direction_sets_ferror) {
    make_file("d", 10);
    async_file_t *w = async_await_ptr(async_fopen(P("d"), "a"));
    async_file_t *r = async_await_ptr(async_fopen(P("d"), "r"));
    cr_assert(w && r);
    char buf[8];
    char *line = NULL;
    size_t n = 0;
    ASSERT_ERR(async_await(async_getline(&line, &n, w)), EBADF);
    cr_assert_eq(async_ferror(w), 1);
    async_clearerr(w);
    ASSERT_ERR(async_await(async_fread(buf, 1, 1, w)), EBADF);
    cr_assert_eq(async_ferror(w), 1);
    async_clearerr(w);
    ASSERT_NULL_ERR(async_await_ptr(async_fgets(buf, sizeof buf, w)), EBADF);
    cr_assert_eq(async_ferror(w), 1);
    async_clearerr(w);
    cr_assert_eq(async_await_ptr(async_fgets(buf, 1, w)), buf, "size 1 reads nothing (glibc)");
    cr_assert_eq(buf[0], 0);
    cr_assert_eq(async_ferror(w), 0);
    ASSERT_ERR(async_await(async_fwrite("x", 1, 1, r)), EBADF);
    cr_assert_eq(async_ferror(r), 1);
    async_clearerr(r);
    ASSERT_ERR(async_await(async_fprintf(r, "%d", 1)), EBADF);
    cr_assert_eq(async_ferror(r), 1);
    async_clearerr(r);
    ASSERT_ERR(async_await(async_fputs("x", r)), EBADF);
    cr_assert_eq(async_ferror(r), 1);
    cr_assert_eq(async_feof(r), 0);
    ASSERT_VAL(async_await(async_fclose(w)), 0);
    ASSERT_VAL(async_await(async_fclose(r)), 0);
    free(line);
    rt_stop();
}

/* fdopen: the mode is checked before the fd, "rt+" is read-write, and "a"
 * moves to the end only when it adds O_APPEND, as glibc's fdopen(3). */
Test(fs_stream, fdopen_modes_as_glibc) {
    ASSERT_NULL_ERR(async_fdopen(-1, "z"), EINVAL);
    ASSERT_NULL_ERR(async_fdopen(-1, ""), EINVAL);
    static const struct {
        const char *mode;
        int oflags;
    } cases[] = {
        {"a", O_RDWR},   {"a", O_RDWR | O_APPEND}, {"a+", O_RDWR},     {"ab", O_WRONLY},
        {"rt+", O_RDWR}, {"rbbb+", O_RDWR},        {"rbbbb+", O_RDWR}, {"w", O_RDWR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hello_file();
        int fd = open(P("m"), cases[i].oflags);
        FILE *g = fdopen(fd, cases[i].mode);
        cr_assert_not_null(g);
        long gpos = (long)lseek(fd, 0, SEEK_CUR);
        int gfl = fcntl(fd, F_GETFL);
        errno = 0;
        int gput = fputs("X", g) >= 0;
        fclose(g);
        hello_file();
        fd = open(P("m"), cases[i].oflags);
        async_file_t *a = async_fdopen(fd, cases[i].mode);
        cr_assert_not_null(a);
        cr_assert_eq((long)lseek(fd, 0, SEEK_CUR), gpos, "fdopen \"%s\": position", cases[i].mode);
        cr_assert_eq(fcntl(fd, F_GETFL), gfl, "fdopen \"%s\": flags", cases[i].mode);
        int aput = async_await(async_fputs("X", a)) >= 0;
        cr_assert_eq(aput, gput, "fdopen \"%s\": write", cases[i].mode);
        ASSERT_VAL(async_await(async_fclose(a)), 0);
    }
    /* kept on purpose (fs.h): "e" sets FD_CLOEXEC, which glibc's fdopen ignores */
    int fd = open(P("m"), O_RDONLY);
    async_file_t *a = async_fdopen(fd, "re");
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ASSERT_VAL(async_await(async_fclose(a)), 0);
    rt_stop();
}

/* A line protocol over a socket pair: requests and replies with streams on both ends. */
static intptr_t echo_upper(void *arg) {
    async_file_t *f = async_fdopen((int)(intptr_t)arg, "r+");
    CHECK(f != NULL);
    char *line = NULL;
    size_t n = 0;
    intptr_t got, lines = 0;
    while ((got = async_await(async_getline(&line, &n, f))) > 0) {
        for (intptr_t i = 0; i < got; i++)
            line[i] = (char)(line[i] >= 'a' && line[i] <= 'z' ? line[i] - 32 : line[i]);
        CHECK_EQ(async_await(async_fwrite(line, 1, (size_t)got, f)), got);
        CHECK_EQ(async_await(async_fflush(f)), 0);
        lines++;
    }
    free(line);
    CHECK_EQ(async_await(async_fclose(f)), 0);
    return lines;
}

Test(fs_stream, line_protocol_on_a_socket) {
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    async_future_t *server = async_spawn(echo_upper, (void *)(intptr_t)sv[1]);
    async_file_t *c = async_fdopen(sv[0], "r+");
    char buf[64];
    for (int i = 0; i < 200; i++) {
        ASSERT_VAL(async_await(async_fprintf(c, "hello %d\n", i)), 8 + (i > 9) + (i > 99));
        /* reading flushes the request first */
        cr_assert_not_null(async_await_ptr(async_fgets(buf, sizeof buf, c)));
        char want[32];
        snprintf(want, sizeof want, "HELLO %d\n", i);
        cr_assert_str_eq(buf, want);
    }
    shutdown(sv[0], SHUT_WR);
    ASSERT_VAL(async_await(server), 200);
    errno = 0;
    cr_assert_null(async_await_ptr(async_fgets(buf, sizeof buf, c)));
    cr_assert(async_feof(c));
    ASSERT_VAL(async_await(async_fclose(c)), 0);
    rt_stop();
}

Test(fs_stream, cancelled_read_loses_nothing) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    async_file_t *f = async_fdopen(p[0], "r");
    cr_assert_eq(write(p[1], "part", 4), 4);
    char buf[32];
    async_future_t *g = async_fgets(buf, sizeof buf, f);
    sleep_ms(30);
    cr_assert_eq(async_future_settled(g), 0, "waits for the newline");
    ASSERT_NULL_ERR(async_await_ptr(async_fgets(buf, sizeof buf, f)), EBUSY);
    async_cancel(g);
    ASSERT_NULL_ERR(async_await_ptr(g), ECANCELED);
    cr_assert_eq(async_ferror(f), 0, "a cancellation is not a stream error");
    cr_assert_eq(write(p[1], "ial\n", 4), 4);
    cr_assert_not_null(async_await_ptr(async_fgets(buf, sizeof buf, f)));
    cr_assert_str_eq(buf, "partial\n");
    ASSERT_ERR(async_await_timeout(async_getline(&(char *){NULL}, &(size_t){0}, f), 30), ETIMEDOUT);
    close(p[1]);
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    rt_stop();
}

/* Feeds one long line, in pieces, to a pipe: the getline reading it grows
 * (reallocs) the stream's buffer many times. */
struct feeder {
    int fd;
    size_t len;
};

static void *feed_long_line(void *arg) {
    struct feeder *fd = arg;
    static char chunk[16384];
    memset(chunk, 'x', sizeof chunk);
    for (size_t sent = 0; sent < fd->len; sent += sizeof chunk)
        cr_assert_eq(write(fd->fd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    cr_assert_eq(write(fd->fd, "\n", 1), 1);
    return NULL;
}

/* An fgets on a stream with an operation pending says EBUSY without looking
 * at the buffer, which the pending getline reallocs on a worker meanwhile
 * (it used to scan it first: a use after free that ASan reports). */
Test(fs_stream, fgets_while_pending_is_ebusy_untouched) {
    enum { ROUNDS = 8, LINE = 1 << 20 };
    char *buf = malloc(2 * LINE);
    cr_assert_not_null(buf);
    for (int round = 0; round < ROUNDS; round++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        async_file_t *f = async_fdopen(p[0], "r");
        cr_assert_not_null(f);
        cr_assert_eq(write(p[1], "x", 1), 1); /* something buffered for fgets to scan */
        char *line = NULL;
        size_t n = 0;
        async_future_t *g = async_getline(&line, &n, f);
        struct feeder fd = {p[1], LINE};
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, feed_long_line, &fd), 0);
        unsigned busy = 0;
        for (;;) {
            async_future_t *r = async_fgets(buf, 2 * LINE, f);
            if (!async_future_settled(r)) { /* the getline ended first: this one waits */
                cr_assert(async_future_settled(g));
                async_cancel(r);
                ASSERT_NULL_ERR(async_await_ptr(r), ECANCELED);
                break;
            }
            ASSERT_NULL_ERR(async_await_ptr(r), EBUSY);
            busy++;
            if (async_future_settled(g)) break;
        }
        pthread_join(th, NULL);
        ASSERT_VAL(async_await(g), LINE + 2);
        cr_assert_gt(busy, 0);
        free(line);
        close(p[1]);
        ASSERT_VAL(async_await(async_fclose(f)), 0);
    }
    free(buf);
    rt_stop();
}

Test(fs_stream, write_errors_set_ferror) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    signal(SIGPIPE, SIG_IGN);
    close(p[0]);
    async_file_t *f = async_fdopen(p[1], "w");
    ASSERT_VAL(async_await(async_fputs("buffered", f)), 1);
    ASSERT_ERR(async_await(async_fflush(f)), EPIPE);
    cr_assert(async_ferror(f));
    ASSERT_ERR(async_await(async_fclose(f)), EPIPE);
    cr_assert_eq(fcntl(p[1], F_GETFD), -1, "closed anyway");
    rt_stop();
}

static intptr_t stream_task(void *arg) {
    int i = (int)(intptr_t)arg;
    char name[32];
    snprintf(name, sizeof name, "s%d", i);
    async_file_t *f = async_await_ptr(async_fopen(P(name), "w+"));
    CHECK(f != NULL);
    for (int k = 0; k < 50; k++) CHECK(async_await(async_fprintf(f, "%d:%d\n", i, k)) > 0);
    CHECK_EQ(async_await(async_fflush(f)), 0);
    lseek(async_fileno(f), 0, SEEK_SET);
    char buf[32];
    int lines = 0;
    while (async_await_ptr(async_fgets(buf, sizeof buf, f))) lines++;
    CHECK_EQ(lines, 50);
    CHECK_EQ(async_await(async_fclose(f)), 0);
    return 0;
}

Test(fs_stream, many_streams_in_tasks) {
    async_future_t *fs[100];
    for (int i = 0; i < 100; i++) fs[i] = async_spawn(stream_task, (void *)(intptr_t)i);
    ASSERT_VAL(async_await_all(fs, 100, NULL, NULL), 0);
    rt_stop();
}
