/* Tests of async_splice and async_tee: pipes that wait for data or room,
 * files on either side, SPLICE_F_NONBLOCK, cancellation, and errors compared
 * with glibc's splice and tee. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>

#include "fs_helpers.h"

TestSuite(fs_splice, .init = fs_init, .fini = fs_fini, .timeout = 30);

struct delayed_write {
    int fd;
    const char *data;
    double delay_ms;
};

static void *write_later(void *arg) {
    struct delayed_write *d = arg;
    sleep_ms(d->delay_ms);
    ssize_t n = write(d->fd, d->data, strlen(d->data));
    (void)n;
    return NULL;
}

Test(fs_splice, pipe_to_pipe_waits_for_data) {
    int a[2], b[2];
    cr_assert_eq(pipe(a), 0);
    cr_assert_eq(pipe(b), 0);
    async_future_t *f = async_splice(a[0], NULL, b[1], NULL, 100, 0);
    sleep_ms(20);
    cr_assert_eq(async_future_settled(f), 0, "nothing to move yet");
    struct delayed_write d = {a[1], "hello", 0};
    pthread_t th = thread_start(write_later, &d);
    ASSERT_VAL(async_await_timeout(f, 5000), 5);
    pthread_join(th, NULL);
    char buf[16] = {0};
    cr_assert_eq(read(b[0], buf, sizeof buf), 5);
    cr_assert_str_eq(buf, "hello");
    /* SPLICE_F_NONBLOCK: EAGAIN at once, as splice(2) */
    errno = 0;
    cr_assert_eq(splice(a[0], NULL, b[1], NULL, 10, SPLICE_F_NONBLOCK), -1);
    int glibc = errno;
    ASSERT_ERR(async_await(async_splice(a[0], NULL, b[1], NULL, 10, SPLICE_F_NONBLOCK)), glibc);
    /* the input's end: 0 */
    close(a[1]);
    ASSERT_VAL(async_await(async_splice(a[0], NULL, b[1], NULL, 10, 0)), 0);
    close(a[0]);
    close(b[0]);
    close(b[1]);
    rt_stop();
}

Test(fs_splice, a_full_output_pipe_waits_for_room) {
    int a[2], b[2];
    cr_assert_eq(pipe(a), 0);
    cr_assert_eq(pipe(b), 0);
    fcntl(b[1], F_SETFL, O_NONBLOCK);
    char junk[4096] = {0};
    while (write(b[1], junk, sizeof junk) > 0) {
    }
    cr_assert_eq(write(a[1], "x", 1), 1);
    async_future_t *f = async_splice(a[0], NULL, b[1], NULL, 1, 0);
    sleep_ms(20);
    cr_assert_eq(async_future_settled(f), 0, "the output is full");
    char drain[65536];
    cr_assert_gt(read(b[0], drain, sizeof drain), 0);
    ASSERT_VAL(async_await_timeout(f, 5000), 1);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
    rt_stop();
}

Test(fs_splice, files_on_either_side) {
    const char *text = "0123456789abcdef";
    int file = open(P("src"), O_RDWR | O_CREAT, 0644);
    cr_assert_eq(write(file, text, 16), 16);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    off_t off = 4;
    ASSERT_VAL(async_await(async_splice(file, &off, p[1], NULL, 6, 0)), 6);
    cr_assert_eq(off, 10, "the offset moves, as splice(2) moves it");
    int out = open(P("dst"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    off_t out_off = 0;
    ASSERT_VAL(async_await(async_splice(p[0], NULL, out, &out_off, 6, 0)), 6);
    char buf[8] = {0};
    cr_assert_eq(pread(out, buf, 6, 0), 6);
    cr_assert_str_eq(buf, "456789");
    /* errors as glibc's: no pipe on either side, an offset for a pipe */
    errno = 0;
    cr_assert_eq(splice(file, NULL, out, NULL, 4, 0), -1);
    int glibc = errno;
    ASSERT_ERR(async_await(async_splice(file, NULL, out, NULL, 4, 0)), glibc);
    off_t o = 0;
    loff_t lo = 0;
    errno = 0;
    cr_assert_eq(splice(p[0], &lo, out, NULL, 4, 0), -1);
    glibc = errno;
    ASSERT_ERR(async_await(async_splice(p[0], &o, out, NULL, 4, 0)), glibc);
    ASSERT_ERR(async_await(async_splice(-1, NULL, p[1], NULL, 4, 0)), EBADF);
    close(file);
    close(out);
    close(p[0]);
    close(p[1]);
    rt_stop();
}

Test(fs_splice, tee_copies_without_consuming) {
    int a[2], b[2];
    cr_assert_eq(pipe(a), 0);
    cr_assert_eq(pipe(b), 0);
    async_future_t *f = async_tee(a[0], b[1], 64, 0);
    sleep_ms(20);
    cr_assert_eq(async_future_settled(f), 0);
    cr_assert_eq(write(a[1], "data", 4), 4);
    ASSERT_VAL(async_await_timeout(f, 5000), 4);
    char x[8] = {0}, y[8] = {0};
    cr_assert_eq(read(a[0], x, sizeof x), 4, "still in the input");
    cr_assert_eq(read(b[0], y, sizeof y), 4);
    cr_assert_str_eq(x, y);
    int file = open(P("f"), O_RDWR | O_CREAT, 0644);
    errno = 0;
    cr_assert_eq(tee(file, b[1], 4, 0), -1);
    int glibc = errno;
    ASSERT_ERR(async_await(async_tee(file, b[1], 4, 0)), glibc);
    close(file);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
    rt_stop();
}

Test(fs_splice, cancelled_waits) {
    int a[2], b[2];
    cr_assert_eq(pipe(a), 0);
    cr_assert_eq(pipe(b), 0);
    async_future_t *f = async_splice(a[0], NULL, b[1], NULL, 10, 0);
    sleep_ms(10);
    async_cancel(f);
    ASSERT_ERR(async_await(f), ECANCELED);
    ASSERT_ERR(async_await_timeout(async_tee(a[0], b[1], 10, 0), 20), ETIMEDOUT);
    /* nothing was taken: the data written now is all still there */
    cr_assert_eq(write(a[1], "abc", 3), 3);
    char buf[8];
    cr_assert_eq(read(a[0], buf, sizeof buf), 3);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
    rt_stop();
}
