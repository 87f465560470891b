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
    ASSERT_VAL(async_await(async_fputs("last without newline", f)), 20);
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

Test(fs_stream, write_errors_set_ferror) {
    int p[2];
    cr_assert_eq(pipe(p), 0);
    signal(SIGPIPE, SIG_IGN);
    close(p[0]);
    async_file_t *f = async_fdopen(p[1], "w");
    ASSERT_VAL(async_await(async_fputs("buffered", f)), 8);
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
