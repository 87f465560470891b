/* The stream calls against glibc's answers: the same sequence of calls runs
 * through a FILE * and through an async stream, each on its own copy of the
 * same file, and after every call the results, errno, the indicators and the
 * positions must agree; at the end, so must the files' contents. Then what
 * a comparison cannot show: buffering modes, freopen, tmpfile, the standard
 * streams, pipes, cancellation and EBUSY. */
#include "fs_helpers.h"

#include <limits.h>

TestSuite(fs_stream_glibc, .init = fs_init, .fini = fs_fini, .timeout = 60);

typedef struct duo {
    FILE *g;
    async_file_t *a;
    const char *gpath, *apath;
    int step;
} duo_t;

/* Both files with `content`, opened with `mode`. */
static duo_t duo_open(const char *content, const char *mode) {
    duo_t d = {.gpath = P("glibc"), .apath = P("async")};
    const char *paths[2] = {d.gpath, d.apath};
    for (int i = 0; i < 2; i++) {
        int fd = open(paths[i], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        cr_assert(fd >= 0);
        cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        close(fd);
    }
    d.g = fopen(d.gpath, mode);
    d.a = async_await_ptr(async_fopen(d.apath, mode));
    cr_assert(d.g && d.a, "open %s", mode);
    return d;
}

/* After every step: the indicators and the positions agree. */
static void same_state(duo_t *d, const char *what) {
    cr_assert_eq(!!feof(d->g), !!async_feof(d->a), "step %d (%s): feof", d->step, what);
    cr_assert_eq(!!ferror(d->g), !!async_ferror(d->a), "step %d (%s): ferror", d->step, what);
    errno = 0;
    long gp = ftell(d->g);
    int ge = errno;
    errno = 0;
    long ap = async_ftell(d->a);
    int ae = errno;
    /* bytes pushed back before the start of the file: glibc says EINVAL or
     * EIO, depending on the state of its buffers; async_ftell says EINVAL */
    if (gp == -1 && ap == -1 && ge == EIO && ae == EINVAL) ge = EINVAL;
    cr_assert(gp == ap && (gp != -1 || ge == ae), "step %d (%s): ftell glibc %ld/%s, async %ld/%s",
              d->step, what, gp, ename(ge), ap, ename(ae));
}

/* An int-valued call on both sides: same value, same errno when it failed. */
#define BOTH(d, gexpr, aexpr)                                                                     \
    do {                                                                                          \
        (d)->step++;                                                                              \
        errno = 0;                                                                                \
        intmax_t g_ = (intmax_t)(gexpr);                                                          \
        int ge_ = errno;                                                                          \
        errno = 0;                                                                                \
        intmax_t a_ = (intmax_t)(aexpr);                                                          \
        int ae_ = errno;                                                                          \
        cr_assert(g_ == a_ && (g_ != -1 || ge_ == ae_), "step %d %s: glibc %jd/%s, async %jd/%s", \
                  (d)->step, #aexpr, g_, ename(ge_), a_, ename(ae_));                             \
        same_state((d), #aexpr);                                                                  \
    } while (0)

static void both_fgets(duo_t *d, int size) {
    char gb[256] = "", ab[256] = "";
    d->step++;
    errno = 0;
    char *g = fgets(gb, size, d->g);
    int ge = errno;
    errno = 0;
    char *a = async_await_ptr(async_fgets(ab, size, d->a));
    int ae = errno;
    cr_assert_eq(!g, !a, "step %d fgets: glibc %p, async %p", d->step, (void *)g, (void *)a);
    if (g)
        cr_assert_str_eq(gb, ab, "step %d fgets", d->step);
    else
        cr_assert_eq(ge, ae, "step %d fgets errno %s vs %s", d->step, ename(ge), ename(ae));
    same_state(d, "fgets");
}

static void both_getdelim(duo_t *d, int delim) {
    char *gl = NULL, *al = NULL;
    size_t gn = 0, an = 0;
    d->step++;
    errno = 0;
    ssize_t g = getdelim(&gl, &gn, delim, d->g);
    int ge = errno;
    errno = 0;
    intptr_t a = async_await(async_getdelim(&al, &an, delim, d->a));
    int ae = errno;
    cr_assert_eq(g, a, "step %d getdelim %zd vs %jd", d->step, g, (intmax_t)a);
    if (g > 0)
        cr_assert_eq(memcmp(gl, al, (size_t)g + 1), 0, "step %d getdelim text", d->step);
    else
        cr_assert_eq(ge, ae, "step %d getdelim errno", d->step);
    free(gl);
    free(al);
    same_state(d, "getdelim");
}

static void both_fread(duo_t *d, size_t size, size_t nmemb) {
    char gb[256], ab[256];
    d->step++;
    size_t g = fread(gb, size, nmemb, d->g);
    intptr_t a = async_await(async_fread(ab, size, nmemb, d->a));
    cr_assert_eq((intptr_t)g, a, "step %d fread %zu vs %jd", d->step, g, (intmax_t)a);
    cr_assert_eq(memcmp(gb, ab, g * size), 0, "step %d fread data", d->step);
    same_state(d, "fread");
}

/* Closes both and compares the files. */
static void duo_close(duo_t *d) {
    cr_assert_eq(fclose(d->g), 0);
    ASSERT_VAL(async_await(async_fclose(d->a)), 0);
    char gb[4096], ab[4096];
    int gf = open(d->gpath, O_RDONLY), af = open(d->apath, O_RDONLY);
    ssize_t gn = read(gf, gb, sizeof gb), an = read(af, ab, sizeof ab);
    close(gf);
    close(af);
    cr_assert(gn == an && memcmp(gb, ab, (size_t)gn) == 0, "contents differ: %.*s | %.*s", (int)gn,
              gb, (int)an, ab);
}

Test(fs_stream_glibc, write_read_seek_unget) {
    duo_t d = duo_open("", "w+");
    BOTH(&d, fputs("hello\n", d.g), async_await(async_fputs("hello\n", d.a)));
    BOTH(&d, fputc('x', d.g), async_await(async_fputc('x', d.a)));
    BOTH(&d, fputc(0x1ff, d.g), async_await(async_fputc(0x1ff, d.a)));
    BOTH(&d, fprintf(d.g, "%d-%s\n", 42, "z"), async_await(async_fprintf(d.a, "%d-%s\n", 42, "z")));
    BOTH(&d, fwrite("abcdef", 2, 3, d.g), async_await(async_fwrite("abcdef", 2, 3, d.a)));
    BOTH(&d, (rewind(d.g), 0), async_await(async_rewind(d.a)));
    both_fgets(&d, sizeof(char[256]));
    BOTH(&d, fgetc(d.g), async_await(async_fgetc(d.a)));
    BOTH(&d, ungetc('Q', d.g), async_ungetc('Q', d.a));
    BOTH(&d, fgetc(d.g), async_await(async_fgetc(d.a)));
    BOTH(&d, ungetc(EOF, d.g), async_ungetc(EOF, d.a));
    both_fgets(&d, 3);
    BOTH(&d, fseek(d.g, -2, SEEK_CUR), async_await(async_fseek(d.a, -2, SEEK_CUR)));
    both_fgets(&d, 256);
    BOTH(&d, fseek(d.g, 0, SEEK_END), async_await(async_fseek(d.a, 0, SEEK_END)));
    BOTH(&d, fgetc(d.g), async_await(async_fgetc(d.a))); /* EOF, errno untouched */
    BOTH(&d, ungetc('z', d.g), async_ungetc('z', d.a));  /* clears the EOF indicator */
    BOTH(&d, fgetc(d.g), async_await(async_fgetc(d.a)));
    BOTH(&d, fgetc(d.g), async_await(async_fgetc(d.a)));
    BOTH(&d, fseek(d.g, -100, SEEK_SET), async_await(async_fseek(d.a, -100, SEEK_SET)));
    BOTH(&d, fseek(d.g, 0, 99), async_await(async_fseek(d.a, 0, 99)));
    BOTH(&d, fseeko(d.g, 3, SEEK_SET), async_await(async_fseeko(d.a, 3, SEEK_SET)));
    BOTH(&d, fputs("LLO", d.g), async_await(async_fputs("LLO", d.a))); /* overwrites */
    BOTH(&d, fflush(d.g), async_await(async_fflush(d.a)));
    BOTH(&d, fseek(d.g, 0, SEEK_SET), async_await(async_fseek(d.a, 0, SEEK_SET)));
    both_fread(&d, 4, 3);
    both_getdelim(&d, '-');
    both_getdelim(&d, '\n');
    both_getdelim(&d, 'q'); /* the rest, to the end of the file */
    both_getdelim(&d, 'q'); /* nothing left: -1, errno untouched */
    both_fread(&d, 1, 10);
    duo_close(&d);
    rt_stop();
}

Test(fs_stream_glibc, position_at_start_with_pushback) {
    duo_t d = duo_open("abc\n", "r");
    BOTH(&d, fgetc(d.g), async_await(async_fgetc(d.a)));
    BOTH(&d, ungetc('a', d.g), async_ungetc('a', d.a)); /* back at 0 */
    BOTH(&d, ungetc('x', d.g), async_ungetc('x', d.a)); /* before the start: ftell EINVAL */
    BOTH(&d, fgetc(d.g), async_await(async_fgetc(d.a)));
    BOTH(&d, fgetc(d.g), async_await(async_fgetc(d.a)));
    BOTH(&d, fgetc(d.g), async_await(async_fgetc(d.a)));
    duo_close(&d);
    rt_stop();
}

Test(fs_stream_glibc, wrong_direction) {
    duo_t d = duo_open("abc\n", "r");
    BOTH(&d, fputc('a', d.g), async_await(async_fputc('a', d.a))); /* EBADF, error indicator */
    BOTH(&d, (clearerr(d.g), 0), (async_clearerr(d.a), 0));
    both_fgets(&d, 10);
    duo_close(&d);
    d = duo_open("abc\n", "w");
    BOTH(&d, fgetc(d.g), async_await(async_fgetc(d.a)));
    cr_assert_eq(ungetc('q', d.g), 'q'); /* glibc takes it even so */
    cr_assert_eq(async_ungetc('q', d.a), 'q');
    duo_close(&d);
    rt_stop();
}

Test(fs_stream_glibc, append_modes) {
    duo_t d = duo_open("0123456789\n", "a");
    BOTH(&d, fputs("more", d.g), async_await(async_fputs("more", d.a))); /* ftell: end + pending */
    BOTH(&d, fflush(d.g), async_await(async_fflush(d.a)));
    duo_close(&d);
    d = duo_open("0123456789\n", "a+");
    both_fgets(&d, 5); /* "a+" reads from the start */
    BOTH(&d, fseek(d.g, 0, SEEK_CUR), async_await(async_fseek(d.a, 0, SEEK_CUR)));
    BOTH(&d, fputs("tail\n", d.g), async_await(async_fputs("tail\n", d.a))); /* to the end */
    BOTH(&d, (rewind(d.g), 0), async_await(async_rewind(d.a)));
    both_getdelim(&d, 0);
    duo_close(&d);
    rt_stop();
}

Test(fs_stream_glibc, read_write_in_place) {
    duo_t d = duo_open("line one\nline two\nline three\n", "r+");
    both_fgets(&d, 256);
    BOTH(&d, fseek(d.g, 0, SEEK_CUR), async_await(async_fseek(d.a, 0, SEEK_CUR)));
    BOTH(&d, fputs("LINE", d.g), async_await(async_fputs("LINE", d.a)));
    BOTH(&d, fseek(d.g, 0, SEEK_CUR), async_await(async_fseek(d.a, 0, SEEK_CUR)));
    both_fgets(&d, 256);
    both_fgets(&d, 256);
    both_fgets(&d, 256); /* end of file */
    duo_close(&d);
    rt_stop();
}

Test(fs_stream_glibc, fscanf_reads_a_line) {
    duo_t d = duo_open("12 abc 3.5\n-7\n\nlast", "r");
    int gi = 0, ai = 0;
    char gs[16] = "", as[16] = "";
    double gd = 0, ad = 0;
    /* the results agree; the positions do not (fscanf(3) stops before the
     * newline, async_fscanf takes the whole line) */
    cr_assert_eq(fscanf(d.g, "%d %15s %lf", &gi, gs, &gd), 3);
    ASSERT_VAL(async_await(async_fscanf(d.a, "%d %15s %lf", &ai, as, &ad)), 3);
    cr_assert(gi == ai && !strcmp(gs, as) && gd == ad);
    cr_assert_eq(fscanf(d.g, "%d", &gi), 1);
    ASSERT_VAL(async_await(async_fscanf(d.a, "%d", &ai)), 1);
    cr_assert_eq(gi, ai);
    /* where the two part ways (documented): fscanf(3) goes on past the newline
     * and the empty line; async_fscanf stops at the end of its line */
    errno = 0;
    ASSERT_VAL(async_await(async_fscanf(d.a, "%d", &ai)), -1);
    cr_assert_eq(errno, 0);
    cr_assert_eq(async_await(async_fscanf(d.a, "%15s", as)), 1);
    cr_assert_str_eq(as, "last");
    errno = 0;
    cr_assert_eq(async_await(async_fscanf(d.a, "%15s", as)), -1); /* EOF */
    cr_assert_eq(errno, 0);
    ASSERT_ERR(async_await(async_fscanf(NULL, "%d", &ai)), EINVAL);
    fclose(d.g);
    ASSERT_VAL(async_await(async_fclose(d.a)), 0);
    rt_stop();
}

/* ---- what a comparison cannot show -------------------------------------------------- */

static size_t file_size(const char *path) {
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return (size_t)st.st_size;
}

Test(fs_stream_glibc, setvbuf_modes) {
    async_file_t *f = async_await_ptr(async_fopen(P("vbuf"), "w"));
    cr_assert_not_null(f);
    errno = 0;
    cr_assert_eq(async_setvbuf(f, NULL, 42, 0), -1); /* bad mode: errno untouched, as glibc */
    cr_assert_eq(errno, 0);
    cr_assert_eq(async_setvbuf(f, NULL, _IONBF, 0), 0);
    ASSERT_VAL(async_await(async_fputs("abc", f)), 1);
    cr_assert_eq(file_size(P("vbuf")), 3, "unbuffered: written at once");
    cr_assert_eq(async_setvbuf(f, NULL, _IOLBF, 0), 0);
    ASSERT_VAL(async_await(async_fputs("def", f)), 1);
    cr_assert_eq(file_size(P("vbuf")), 3, "line-buffered: no newline yet");
    ASSERT_VAL(async_await(async_fputs("g\n", f)), 1);
    cr_assert_eq(file_size(P("vbuf")), 8, "line-buffered: the newline writes");
    cr_assert_eq(async_setvbuf(f, NULL, _IOFBF, 0), 0);
    ASSERT_VAL(async_await(async_fputs("h\n", f)), 1);
    cr_assert_eq(file_size(P("vbuf")), 8, "fully buffered");
    cr_assert_eq(async_setvbuf(f, NULL, _IONBF, 0), 0); /* with "h\n" still buffered */
    ASSERT_VAL(async_await(async_fputs("", f)), 1);
    cr_assert_eq(file_size(P("vbuf")), 10, "unbuffered: what was pending goes too");
    ASSERT_VAL(async_await(async_fputs("ij", f)), 1);
    cr_assert_eq(file_size(P("vbuf")), 12);
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    cr_assert_eq(file_size(P("vbuf")), 12);
    /* a small buffer set before any I/O: a write larger than it goes through */
    f = async_await_ptr(async_fopen(P("vbuf"), "w"));
    cr_assert_eq(async_setvbuf(f, NULL, _IOFBF, 4), 0);
    ASSERT_VAL(async_await(async_fputs("abcdefgh", f)), 1);
    cr_assert_eq(file_size(P("vbuf")), 8);
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    errno = 0;
    cr_assert_eq(async_setvbuf(NULL, NULL, _IOFBF, 0), -1);
    cr_assert_eq(errno, EBADF);
    rt_stop();
}

Test(fs_stream_glibc, freopen_and_tmpfile) {
    make_file("one", 10);
    async_file_t *f = async_await_ptr(async_fopen(P("one"), "r"));
    cr_assert_not_null(f);
    cr_assert_eq(async_await_ptr(async_freopen(P("two"), "w", f)), f);
    ASSERT_VAL(async_await(async_fputs("second\n", f)), 1);
    cr_assert_eq(async_await_ptr(async_freopen(NULL, "r", f)), f); /* the same file, read now */
    char buf[32];
    cr_assert_eq(async_await_ptr(async_fgets(buf, sizeof buf, f)), buf);
    cr_assert_str_eq(buf, "second\n");
    /* a failed reopen leaves the stream closed, as glibc does */
    ASSERT_NULL_ERR(async_await_ptr(async_freopen(P("missing/x"), "r", f)), ENOENT);
    ASSERT_NULL_ERR(async_await_ptr(async_fgets(buf, sizeof buf, f)), EBADF);
    cr_assert_eq(async_fileno(f), -1);
    ASSERT_NULL_ERR(async_await_ptr(async_freopen(NULL, "r", f)), EBADF);
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    ASSERT_NULL_ERR(async_await_ptr(async_freopen(P("two"), "q", NULL)), EINVAL);

    f = async_await_ptr(async_tmpfile());
    cr_assert_not_null(f);
    struct stat st;
    cr_assert_eq(fstat(async_fileno(f), &st), 0);
    cr_assert_eq(st.st_nlink, 0, "no name");
    ASSERT_VAL(async_await(async_fputs("scratch", f)), 1);
    ASSERT_VAL(async_await(async_rewind(f)), 0);
    cr_assert_eq(async_await_ptr(async_fgets(buf, sizeof buf, f)), buf);
    cr_assert_str_eq(buf, "scratch");
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    rt_stop();
}

Test(fs_stream_glibc, pipes_are_not_seekable) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    async_file_t *w = async_fdopen(p[1], "w"), *r = async_fdopen(p[0], "r");
    cr_assert(w && r);
    FILE *gw = fdopen(dup(p[1]), "w");
    errno = 0;
    cr_assert_eq(async_ftell(w), -1);
    cr_assert_eq(errno, ESPIPE);
    ASSERT_VAL(async_await(async_fputs("through\n", w)), 1);
    errno = 0;
    cr_assert_eq(ftell(gw), -1);
    cr_assert_eq(errno, ESPIPE);
    ASSERT_ERR(async_await(async_fseek(r, 0, SEEK_SET)), ESPIPE);
    ASSERT_ERR(async_await(async_fseek(w, 0, SEEK_SET)), ESPIPE); /* after writing it out */
    fclose(gw);
    char buf[32];
    cr_assert_eq(async_await_ptr(async_fgets(buf, sizeof buf, r)), buf);
    cr_assert_str_eq(buf, "through\n");
    cr_assert_eq(async_ungetc('\n', r), '\n');
    ASSERT_VAL(async_await(async_fgetc(r)), '\n');
    ASSERT_VAL(async_await(async_fclose(w)), 0);
    errno = 0;
    ASSERT_VAL(async_await(async_fgetc(r)), -1); /* EOF */
    cr_assert_eq(errno, 0);
    cr_assert(async_feof(r));
    ASSERT_VAL(async_await(async_fclose(r)), 0);
    rt_stop();
}

/* A read waiting on an empty pipe: other calls get EBUSY; a cancel leaves
 * the stream free and its data for the next call. */
Test(fs_stream_glibc, pending_calls_cancel_and_busy) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    async_file_t *r = async_fdopen(p[0], "r");
    cr_assert_not_null(r);
    async_future_t *c = async_fgetc(r);
    ASSERT_ERR(async_await(async_fgetc(r)), EBUSY);
    errno = 0;
    cr_assert_eq(async_ungetc('x', r), EOF);
    cr_assert_eq(errno, EBUSY);
    errno = 0;
    cr_assert_eq(async_ftell(r), -1);
    cr_assert_eq(errno, EBUSY);
    cr_assert_eq(async_setvbuf(r, NULL, _IONBF, 0), -1);
    ASSERT_ERR(async_await(async_fseek(r, 0, SEEK_SET)), EBUSY);
    ASSERT_NULL_ERR(async_await_ptr(async_freopen(NULL, "r", r)), EBUSY);
    async_cancel(c);
    ASSERT_ERR(async_await(c), ECANCELED);
    cr_assert_eq(async_ferror(r), 0, "a cancelled read is no error");
    char *line = NULL;
    size_t n = 0;
    async_future_t *g = async_getline(&line, &n, r);
    cr_assert_eq(write(p[1], "par", 3), 3);
    sleep_ms(20);
    async_cancel(g);
    ASSERT_ERR(async_await(g), ECANCELED);
    cr_assert_eq(write(p[1], "tial\n", 5), 5);
    ASSERT_VAL(async_await(async_getline(&line, &n, r)), 8);
    cr_assert_str_eq(line, "partial\n", "the cancelled read's bytes stayed in the stream");
    free(line);
    close(p[1]);
    ASSERT_VAL(async_await(async_fclose(r)), 0);
    rt_stop();
}

/* The standard streams over pipes put on fds 0, 1 and 2. */
Test(fs_stream_glibc, standard_streams) {
    int in[2], out[2], err[2];
    cr_assert(pipe(in) == 0 && pipe(out) == 0 && pipe(err) == 0);
    fflush(stdout);
    fflush(stderr);
    int saved[3] = {dup(0), dup(1), dup(2)};
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    cr_assert_eq(async_fileno(async_stdin), 0);
    cr_assert_eq(async_stdout, async_stdout, "made once");
    ASSERT_VAL(async_await(async_puts("to stdout")), 10);
    ASSERT_VAL(async_await(async_fprintf(async_stderr, "to %s\n", "stderr")), 10);
    char buf[64];
    ssize_t n = read(err[0], buf, sizeof buf); /* stderr is unbuffered: there already */
    ASSERT_VAL(async_await(async_fflush(async_stdout)), 0);
    ssize_t m = read(out[0], buf + 32, 32);
    cr_assert_eq(write(in[1], "typed\n", 6), 6);
    char line[16];
    char *s = async_await_ptr(async_fgets(line, sizeof line, async_stdin));
    async_file_t *old = async_stdout;
    ASSERT_VAL(async_await(async_fclose(async_stdout)), 0); /* fd 1 closed; forgotten */
    dup2(saved[0], 0);
    dup2(saved[1], 1);
    dup2(saved[2], 2);
    cr_assert_eq(n, 10);
    cr_assert_eq(memcmp(buf, "to stderr\n", 10), 0);
    cr_assert_eq(m, 10);
    cr_assert_eq(memcmp(buf + 32, "to stdout\n", 10), 0);
    cr_assert_eq(s, line);
    cr_assert_str_eq(line, "typed\n");
    async_file_t *again = async_stdout; /* a new stream over the restored fd 1 */
    cr_assert_not_null(again);
    (void)old;
    cr_assert_null(async_stdstream(3));
    cr_assert_eq(errno, EBADF);
    rt_stop();
}

Test(fs_stream_glibc, bad_input) {
    char buf[8];
    size_t n = 0;
    char *l = NULL;
    ASSERT_ERR(async_await(async_fgetc(NULL)), EINVAL);
    ASSERT_ERR(async_await(async_fputc('a', NULL)), EINVAL);
    ASSERT_ERR(async_await(async_getdelim(NULL, &n, 'x', NULL)), EINVAL);
    ASSERT_ERR(async_await(async_getdelim(&l, NULL, 'x', NULL)), EINVAL);
    ASSERT_ERR(async_await(async_fseek(NULL, 0, SEEK_SET)), EINVAL);
    ASSERT_ERR(async_await(async_rewind(NULL)), EINVAL);
    ASSERT_ERR(async_await(async_puts(NULL)), EINVAL);
    errno = 0;
    cr_assert_eq(async_ungetc('a', NULL), EOF);
    cr_assert_eq(async_ftell(NULL), -1);
    cr_assert_eq(errno, EBADF);
    ASSERT_NULL_ERR(async_await_ptr(async_freopen(NULL, "r", NULL)), EINVAL);
    (void)buf;
    rt_stop();
}

/* What the buffers hold is served on the calling thread: the future comes
 * back settled (no task, no switch). */
Test(fs_stream_glibc, buffered_calls_settle_at_once) {
    int fd = open(P("lines"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int i = 0; i < 100; i++) cr_assert_eq(write(fd, "0123456789abcde\n", 16), 16);
    close(fd);
    async_file_t *f = async_await_ptr(async_fopen(P("lines"), "r+"));
    cr_assert_not_null(f);
    char buf[64];
    cr_assert_eq(async_await_ptr(async_fgets(buf, sizeof buf, f)), buf); /* reads ahead */
    async_future_t *a = async_fgets(buf, sizeof buf, f);
    cr_assert(async_future_settled(a), "fgets of a buffered line");
    cr_assert_eq(async_await_ptr(a), buf);
    a = async_fread(buf, 16, 1, f);
    cr_assert(async_future_settled(a), "fread of a buffered record");
    ASSERT_VAL(async_await(a), 1);
    a = async_fgetc(f);
    cr_assert(async_future_settled(a), "fgetc");
    ASSERT_VAL(async_await(a), '0');
    char *line = NULL;
    size_t n = 0;
    cr_assert_eq(async_await(async_getline(&line, &n, f)), 15); /* grows the caller's buffer */
    a = async_getline(&line, &n, f);
    cr_assert(async_future_settled(a), "getline into a buffer large enough");
    ASSERT_VAL(async_await(a), 16);
    free(line);
    ASSERT_VAL(async_await(async_fseek(f, 0, SEEK_END)), 0);
    ASSERT_VAL(async_await(async_fwrite("x", 1, 1, f)), 1); /* makes the write buffer */
    a = async_fwrite("record!\n", 8, 1, f);
    cr_assert(async_future_settled(a), "fwrite that fits the buffer");
    ASSERT_VAL(async_await(a), 1);
    ASSERT_VAL(async_await(async_fclose(f)), 0);
    rt_stop();
}
