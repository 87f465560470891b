/* async_poll and async_fd_wait: poll(2)'s results on every kind of fd a
 * program hands it (pipes, eventfds, timerfds, sockets mid-connect, regular
 * files, closed fds), checked against glibc's poll on the same fds; timeouts,
 * cancellation at each wait, fds shared with the library's own reads, and
 * many waiters at once, from tasks and from plain threads. */
#include "helpers.h"

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#else
#define RUNNING_ON_VALGRIND 0
#endif

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

static void nb_pipe(int p[2]) { cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0); }

/* glibc's poll(fd, events, 0): what async_poll must agree with once ready. */
static short libc_revents(int fd, short events) {
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, 0) < 0 ? -1 : p.revents;
}

/* ---- a writer that acts later ------------------------------------------------ */

struct later {
    int fd;
    int ms;
    int what; /* 0 write a byte, 1 async_close, 2 eventfd write */
};

static intptr_t act_later(void *arg) {
    struct later *l = arg;
    if (async_await(async_usleep((unsigned long)l->ms * 1000)) < 0) return -1;
    if (l->what == 1) return async_await(async_close(l->fd));
    uint64_t one = 1;
    return write(l->fd, &one, l->what == 2 ? 8 : 1) > 0 ? 0 : -1;
}

/* ---- pipes -------------------------------------------------------------------- */

static intptr_t wait_readable(void *arg) {
    int *p = arg;
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    struct later l = {p[1], 20, 0};
    async_future_t *w = async_spawn(act_later, &l);
    double t0 = now_ms();
    intptr_t n = async_await(async_poll(&pfd, 1, -1));
    CHECK_EQ(n, 1);
    CHECK_EQ(pfd.revents, POLLIN);
    CHECK_EQ(pfd.revents, libc_revents(p[0], POLLIN));
    CHECK(now_ms() - t0 >= 15);
    CHECK_EQ(async_await(w), 0);
    return 0;
}

Test(poll, pipe_becomes_readable_in_a_task) {
    rt_start();
    int p[2];
    nb_pipe(p);
    cr_assert_eq(async_await(async_spawn(wait_readable, p)), 0);
    close(p[0]);
    close(p[1]);
    rt_stop();
}

Test(poll, pipe_becomes_readable_on_a_plain_thread) {
    rt_start();
    int p[2];
    nb_pipe(p);
    cr_assert_eq(wait_readable(p), 0);
    close(p[0]);
    close(p[1]);
    rt_stop();
}

static intptr_t wait_writable(void *arg) {
    int *p = arg;
    CHECK_EQ(async_await(async_fd_wait(p[1], POLLOUT, 0)), POLLOUT); /* empty pipe: writable */
    char buf[4096] = {0};
    while (write(p[1], buf, sizeof buf) > 0) {
    }
    CHECK_EQ(async_await(async_fd_wait(p[1], POLLOUT, 0)), 0); /* full */
    CHECK_EQ(libc_revents(p[1], POLLOUT), 0);
    CHECK_EQ(async_await(async_fd_wait(p[1], POLLOUT, 30)), 0); /* still full after 30 ms */
    async_future_t *w = async_fd_wait(p[1], POLLOUT, -1);
    CHECK(!async_future_settled(w));
    while (read(p[0], buf, sizeof buf) > 0) {
    }
    CHECK_EQ(async_await(w), POLLOUT);
    return 0;
}

Test(poll, pipe_becomes_writable) {
    rt_start();
    int p[2];
    nb_pipe(p);
    cr_assert_eq(async_await(async_spawn(wait_writable, p)), 0);
    cr_assert_eq(wait_writable(p), 0);
    close(p[0]);
    close(p[1]);
    rt_stop();
}

static intptr_t wait_hangup(void *arg) {
    int *p = arg;
    struct later l = {p[1], 20, 1}; /* the writer goes away */
    async_future_t *w = async_spawn(act_later, &l);
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    CHECK_EQ(async_await(async_poll(&pfd, 1, 5000)), 1);
    CHECK_EQ(pfd.revents, POLLHUP);
    CHECK_EQ(pfd.revents, libc_revents(p[0], POLLIN));
    CHECK_EQ(async_await(w), 0);
    return 0;
}

Test(poll, pollhup_after_the_writer_closes) {
    rt_start();
    int p[2];
    nb_pipe(p);
    cr_assert_eq(async_await(async_spawn(wait_hangup, p)), 0);
    nb_pipe(p);
    cr_assert_eq(wait_hangup(p), 0);
    rt_stop();
    close(p[0]);
}

Test(poll, pollnval_for_a_closed_fd_and_negative_fds_ignored) {
    rt_start();
    int p[2];
    nb_pipe(p);
    close(p[0]);
    close(p[1]);
    struct pollfd pfd[3] = {{.fd = p[0], .events = POLLIN},
                            {.fd = -1, .events = POLLIN},
                            {.fd = p[1], .events = POLLOUT}};
    pfd[1].revents = 77;
    ASSERT_VAL(async_await(async_poll(pfd, 3, -1)), 2);
    cr_assert_eq(pfd[0].revents, POLLNVAL);
    cr_assert_eq(pfd[1].revents, 0);
    cr_assert_eq(pfd[2].revents, POLLNVAL);
    cr_assert_eq(pfd[0].revents, libc_revents(p[0], POLLIN));
    ASSERT_VAL(async_await(async_fd_wait(p[0], POLLIN, -1)), POLLNVAL);
    rt_stop();
}

static intptr_t close_while_waiting(void *arg) {
    int *p = arg;
    struct later l = {p[0], 20, 1}; /* async_close of the fd being waited on */
    async_future_t *w = async_spawn(act_later, &l);
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    CHECK_EQ(async_await(async_poll(&pfd, 1, 5000)), 1);
    CHECK_EQ(pfd.revents, POLLNVAL);
    CHECK_EQ(async_await(w), 0);
    return 0;
}

Test(poll, async_close_of_a_waited_fd_gives_pollnval) {
    rt_start();
    int p[2];
    nb_pipe(p);
    cr_assert_eq(async_await(async_spawn(close_while_waiting, p)), 0);
    close(p[1]);
    rt_stop();
}

/* ---- timeouts ------------------------------------------------------------------ */

static intptr_t timeouts(void *arg) {
    (void)arg;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return -1;
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    double t0 = now_ms();
    CHECK_EQ(async_await(async_poll(&pfd, 1, 0)), 0);
    CHECK(now_ms() - t0 < 50);
    t0 = now_ms();
    CHECK_EQ(async_await(async_poll(&pfd, 1, 50)), 0);
    CHECK_EQ(pfd.revents, 0);
    double took = now_ms() - t0;
    CHECK(took >= 49 && took < 2000);
    t0 = now_ms();
    CHECK_EQ(async_await(async_poll(NULL, 0, 30)), 0); /* a sleep */
    CHECK(now_ms() - t0 >= 29);
    /* -1: no limit; data comes after 40 ms */
    struct later l = {p[1], 40, 0};
    async_future_t *w = async_spawn(act_later, &l);
    CHECK_EQ(async_await(async_poll(&pfd, 1, -1)), 1);
    CHECK_EQ(async_await(w), 0);
    close(p[0]);
    close(p[1]);
    return 0;
}

Test(poll, timeouts_zero_ms_and_none) {
    rt_start();
    cr_assert_eq(async_await(async_spawn(timeouts, NULL)), 0);
    cr_assert_eq(timeouts(NULL), 0);
    rt_stop();
}

/* ---- eventfd, timerfd, sockets, regular files ------------------------------------- */

static intptr_t eventfd_wait(void *arg) {
    (void)arg;
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct later l = {efd, 10, 2};
    async_future_t *w = async_spawn(act_later, &l);
    CHECK_EQ(async_await(async_fd_wait(efd, POLLIN, 5000)), POLLIN);
    CHECK_EQ(libc_revents(efd, POLLIN), POLLIN);
    uint64_t v = 0;
    CHECK_EQ(read(efd, &v, 8), 8);
    CHECK_EQ(v, 1);
    CHECK_EQ(async_await(async_fd_wait(efd, POLLIN, 20)), 0); /* read back to 0 */
    CHECK_EQ(async_await(w), 0);
    close(efd);
    return 0;
}

Test(poll, eventfd) {
    rt_start();
    cr_assert_eq(async_await(async_spawn(eventfd_wait, NULL)), 0);
    cr_assert_eq(eventfd_wait(NULL), 0);
    rt_stop();
}

static intptr_t timerfd_wait(void *arg) {
    (void)arg;
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct itimerspec its = {.it_value = {0, 30 * 1000000}};
    CHECK_EQ(timerfd_settime(tfd, 0, &its, NULL), 0);
    double t0 = now_ms();
    struct pollfd pfd = {.fd = tfd, .events = POLLIN};
    CHECK_EQ(async_await(async_poll(&pfd, 1, 5000)), 1);
    CHECK_EQ(pfd.revents, POLLIN);
    CHECK(now_ms() - t0 >= 29);
    uint64_t exp = 0;
    CHECK_EQ(read(tfd, &exp, 8), 8);
    CHECK_EQ(exp, 1);
    close(tfd);
    return 0;
}

Test(poll, timerfd) {
    rt_start();
    cr_assert_eq(async_await(async_spawn(timerfd_wait, NULL)), 0);
    cr_assert_eq(timerfd_wait(NULL), 0);
    rt_stop();
}

/* A non-blocking connect, driven as a third-party library drives it: connect,
 * EINPROGRESS, wait for POLLOUT, read SO_ERROR. */
static int connect_nb(in_port_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = port};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = connect(fd, (struct sockaddr *)&a, sizeof a);
    CHECK(r == 0 || errno == EINPROGRESS);
    return fd;
}

static intptr_t nonblocking_connect(void *arg) {
    (void)arg;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    CHECK_EQ(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(lfd, 8), 0);
    CHECK_EQ(getsockname(lfd, (struct sockaddr *)&a, &len), 0);

    int fd = connect_nb(a.sin_port);
    intptr_t rev = async_await(async_fd_wait(fd, POLLOUT, 5000));
    CHECK_EQ(rev, POLLOUT);
    CHECK_EQ(rev, libc_revents(fd, POLLOUT));
    int soerr = -1;
    len = sizeof soerr;
    CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len), 0);
    CHECK_EQ(soerr, 0);
    /* the listener is readable: a connection waits */
    CHECK_EQ(async_await(async_fd_wait(lfd, POLLIN, 5000)), POLLIN);
    close(fd);

    /* refused: nothing listens on the port any more */
    close(lfd);
    fd = connect_nb(a.sin_port);
    rev = async_await(async_fd_wait(fd, POLLOUT, 5000));
    CHECK(rev > 0 && (rev & POLLERR));
    CHECK_EQ(rev, libc_revents(fd, POLLOUT));
    len = sizeof soerr;
    CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len), 0);
    CHECK_EQ(soerr, ECONNREFUSED);
    close(fd);
    return 0;
}

Test(poll, nonblocking_connect_and_so_error) {
    rt_start();
    cr_assert_eq(async_await(async_spawn(nonblocking_connect, NULL)), 0);
    cr_assert_eq(nonblocking_connect(NULL), 0);
    rt_stop();
}

/* TCP urgent data is POLLPRI, and a peer's shutdown(SHUT_WR) is POLLRDHUP:
 * waits for either alone, on a loopback connection. */
struct tcp_pair {
    int a, b;
};

static struct tcp_pair tcp_pair(void) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    CHECK_EQ(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(lfd, 1), 0);
    CHECK_EQ(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    struct tcp_pair p;
    p.a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_EQ(connect(p.a, (struct sockaddr *)&a, sizeof a), 0);
    p.b = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    CHECK(p.b >= 0);
    close(lfd);
    return p;
}

struct sender {
    int fd;
    int what; /* 0 urgent byte, 1 shutdown(SHUT_WR) */
};

static intptr_t send_later(void *arg) {
    struct sender *s = arg;
    if (async_await(async_usleep(20000)) < 0) return -1;
    if (s->what == 0) return send(s->fd, "!", 1, MSG_OOB) == 1 ? 0 : -1;
    return shutdown(s->fd, SHUT_WR);
}

static intptr_t urgent_and_rdhup(void *arg) {
    (void)arg;
    struct tcp_pair p = tcp_pair();
    struct sender s = {p.a, 0};
    async_future_t *w = async_spawn(send_later, &s);
    intptr_t rev = async_await(async_fd_wait(p.b, POLLPRI, 5000));
    CHECK(rev > 0 && (rev & POLLPRI));
    CHECK_EQ(rev, libc_revents(p.b, POLLPRI));
    CHECK_EQ(async_await(w), 0);
    char c;
    CHECK_EQ(recv(p.b, &c, 1, MSG_OOB), 1);
    s.what = 1;
    w = async_spawn(send_later, &s);
    rev = async_await(async_fd_wait(p.b, POLLRDHUP, 5000));
    CHECK(rev > 0 && (rev & POLLRDHUP));
    CHECK_EQ(rev, libc_revents(p.b, POLLRDHUP));
    CHECK_EQ(async_await(w), 0);
    close(p.a);
    close(p.b);
    return 0;
}

Test(poll, tcp_urgent_data_and_peer_shutdown) {
    rt_start();
    cr_assert_eq(async_await(async_spawn(urgent_and_rdhup, NULL)), 0);
    cr_assert_eq(urgent_and_rdhup(NULL), 0);
    rt_stop();
}

Test(poll, regular_file_is_ready_and_pollpri_times_out) {
    rt_start();
    char path[] = "/tmp/asyncstd-poll-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    unlink(path);
    ASSERT_VAL(async_await(async_fd_wait(fd, POLLIN | POLLOUT, -1)), POLLIN | POLLOUT);
    cr_assert_eq(libc_revents(fd, POLLIN | POLLOUT), POLLIN | POLLOUT);
    /* epoll cannot watch it: a wait for what never comes lasts its timeout, as poll's */
    double t0 = now_ms();
    ASSERT_VAL(async_await(async_fd_wait(fd, POLLPRI, 40)), 0);
    cr_assert(now_ms() - t0 >= 39);
    close(fd);
    rt_stop();
}

/* ---- several fds --------------------------------------------------------------------- */

static intptr_t several(void *arg) {
    (void)arg;
    int a[2], b[2];
    nb_pipe(a);
    nb_pipe(b);
    struct later l = {b[1], 20, 0};
    async_future_t *w = async_spawn(act_later, &l);
    struct pollfd pfd[4] = {{.fd = a[0], .events = POLLIN},
                            {.fd = b[0], .events = POLLIN},
                            {.fd = b[0], .events = POLLIN | POLLPRI}, /* the same fd twice */
                            {.fd = a[1], .events = POLLPRI}};
    CHECK_EQ(async_await(async_poll(pfd, 4, 5000)), 2);
    CHECK_EQ(pfd[0].revents, 0);
    CHECK_EQ(pfd[1].revents, POLLIN);
    CHECK_EQ(pfd[2].revents, POLLIN);
    CHECK_EQ(pfd[3].revents, 0);
    /* both directions of one fd at once */
    CHECK_EQ(async_await(async_fd_wait(a[1], POLLIN | POLLOUT, 5000)), POLLOUT);
    CHECK_EQ(async_await(w), 0);
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    return 0;
}

Test(poll, several_fds_report_all_that_is_ready) {
    rt_start();
    cr_assert_eq(async_await(async_spawn(several, NULL)), 0);
    cr_assert_eq(several(NULL), 0);
    rt_stop();
}

/* A library read and a poll on the same fd, parked in either order: the read
 * gets the byte, and the poll is not lost behind it. */
static intptr_t shared_with_read(void *arg) {
    int read_first = (int)(intptr_t)arg;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return -1;
    char c = 0;
    async_future_t *rd = NULL, *pf = NULL;
    if (read_first) rd = async_read(p[0], &c, 1);
    pf = async_fd_wait(p[0], POLLIN, 5000);
    if (!read_first) rd = async_read(p[0], &c, 1);
    CHECK(!async_future_settled(rd));
    CHECK(!async_future_settled(pf));
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(async_await(rd), 1);
    CHECK_EQ(c, 'x');
    /* the read may have taken the byte before the poll looked (as with two
     * threads in read(2) and poll(2)): the poll then waits on, and sees the next */
    CHECK_EQ(write(p[1], "y", 1), 1);
    CHECK_EQ(async_await(pf), POLLIN);
    async_await(async_close(p[0]));
    async_await(async_close(p[1]));
    return 0;
}

Test(poll, shares_an_fd_with_the_librarys_reads) {
    rt_start();
    cr_assert_eq(async_await(async_spawn(shared_with_read, (void *)1)), 0);
    cr_assert_eq(async_await(async_spawn(shared_with_read, (void *)0)), 0);
    rt_stop();
}

/* ---- cancellation --------------------------------------------------------------------- */

static intptr_t sleeper_poll(void *arg) {
    int fd = *(int *)arg;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return async_await(async_poll(&pfd, 1, -1));
}

static intptr_t cancellation(void *arg) {
    (void)arg;
    int p[2];
    nb_pipe(p);
    struct pollfd pfd[2] = {{.fd = p[0], .events = POLLIN}, {.fd = p[1], .events = POLLPRI}};
    async_future_t *f = async_poll(pfd, 2, -1);
    async_cancel(f);
    CHECK_ERR(async_await(f), ECANCELED);
    f = async_fd_wait(p[0], POLLIN, 10000);
    async_cancel(f);
    CHECK_ERR(async_await(f), ECANCELED);
    CHECK_ERR(async_await_timeout(async_poll(pfd, 2, -1), 20), ETIMEDOUT);
    CHECK_ERR(async_await_timeout(async_fd_wait(p[0], POLLIN, 10000), 20), ETIMEDOUT);
    /* a task cancelled in its wait */
    async_future_t *t = async_spawn(sleeper_poll, &p[0]);
    async_await(async_usleep(10000));
    async_cancel(t);
    CHECK_ERR(async_await(t), ECANCELED);
    /* a detached wait is ended by the fd's close */
    async_future_free(async_fd_wait(p[0], POLLIN, -1));
    /* the fd is still waitable afterwards */
    CHECK_EQ(write(p[1], "x", 1), 1);
    CHECK_EQ(async_await(async_fd_wait(p[0], POLLIN, 5000)), POLLIN);
    async_await(async_close(p[0]));
    async_await(async_close(p[1]));
    return 0;
}

Test(poll, cancellation_at_each_wait) {
    rt_start();
    cr_assert_eq(async_await(async_spawn(cancellation, NULL)), 0);
    cr_assert_eq(cancellation(NULL), 0);
    rt_stop();
}

Test(poll, cancel_from_another_thread) {
    rt_start();
    int p[2];
    nb_pipe(p);
    async_future_t *t = async_spawn(sleeper_poll, &p[0]);
    sleep_ms(20);
    async_cancel(t);
    ASSERT_ERR(async_await(t), ECANCELED);
    rt_stop();
    close(p[0]);
    close(p[1]);
}

/* ---- many waiters ---------------------------------------------------------------------- */

#define WAITERS 300

static intptr_t one_waiter(void *arg) {
    int fd = *(int *)arg;
    return async_await(async_fd_wait(fd, POLLIN, 20000));
}

Test(poll, many_waiters_on_one_fd_all_wake) {
    rt_start();
    int p[2];
    nb_pipe(p);
    async_future_t *fs[WAITERS];
    for (int i = 0; i < WAITERS; i++) fs[i] = async_spawn(one_waiter, &p[0]);
    async_future_t *plain = async_fd_wait(p[0], POLLIN, 20000);
    sleep_ms(30);
    cr_assert_eq(write(p[1], "x", 1), 1);
    for (int i = 0; i < WAITERS; i++) ASSERT_VAL(async_await(fs[i]), POLLIN);
    ASSERT_VAL(async_await(plain), POLLIN);
    rt_stop();
    close(p[0]);
    close(p[1]);
}

Test(poll, many_waiters_on_many_fds) {
    rt_start();
    static int fds[WAITERS];
    async_future_t *fs[WAITERS];
    for (int i = 0; i < WAITERS; i++) {
        fds[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        cr_assert(fds[i] >= 0);
        fs[i] = async_spawn(one_waiter, &fds[i]);
    }
    sleep_ms(20);
    uint64_t one = 1;
    for (int i = WAITERS - 1; i >= 0; i--) cr_assert_eq(write(fds[i], &one, 8), 8);
    for (int i = 0; i < WAITERS; i++) ASSERT_VAL(async_await(fs[i]), POLLIN);
    for (int i = 0; i < WAITERS; i++) close(fds[i]);
    rt_stop();
}

/* ---- bad input --------------------------------------------------------------------------- */

Test(poll, bad_input) {
    rt_start();
    ASSERT_ERR(async_await(async_poll(NULL, 1, 0)), EFAULT);
    if (!RUNNING_ON_VALGRIND) /* which reports the bad pointer itself */
        ASSERT_ERR(async_await(async_poll((struct pollfd *)16, 1, 0)), EFAULT);
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    /* more entries than RLIMIT_NOFILE: EINVAL from both (a real array, all ignored) */
    nfds_t big = (nfds_t)rl.rlim_cur + 1;
    struct pollfd *many = malloc(big * sizeof *many);
    cr_assert_not_null(many);
    for (nfds_t i = 0; i < big; i++) many[i] = (struct pollfd){.fd = -1};
    if (!RUNNING_ON_VALGRIND) { /* which reports a lower limit than the kernel applies */
        ASSERT_ERR(async_await(async_poll(many, big, 0)), EINVAL);
        ASSERT_ERR(poll(many, big, 0), EINVAL);
    }
    ASSERT_ERR(async_await(async_poll(NULL, big, 0)), EINVAL); /* the limit first, as the kernel */
    free(many);
    ASSERT_ERR(async_await(async_fd_wait(-1, POLLIN, 0)), EBADF);
    ASSERT_VAL(async_await(async_poll(NULL, 0, 0)), 0);
    rt_stop();
}

/* ---- select ---------------------------------------------------------------------------- */

/* Cancelled mid-wait: ECANCELED, the sets as given, the time left written. */
static intptr_t select_cancelled(void *arg) {
    (void)arg;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return -1;
    fd_set r, w, given;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    given = r;
    FD_ZERO(&w); /* a set with nothing in it */
    struct timeval tv = {30, 0};
    async_future_t *f = async_select(p[0] + 1, &r, &w, NULL, &tv);
    CHECK(f && !async_future_settled(f));
    CHECK_EQ(async_await(async_usleep(30000)), 0);
    async_cancel(f);
    CHECK_ERR(async_await(f), ECANCELED);
    CHECK(memcmp(&r, &given, sizeof r) == 0);
    CHECK(tv.tv_sec >= 20 && tv.tv_sec < 30);
    close(p[0]);
    close(p[1]);
    return 0;
}

Test(poll, select_cancelled_leaves_the_sets_as_given) {
    rt_start();
    cr_assert_eq(async_await(async_spawn(select_cancelled, NULL)), 0);
    cr_assert_eq(select_cancelled(NULL), 0);
    checks_ok();
    rt_stop();
}

/* An fd closed through the library during the wait: EBADF, as select(2)
 * gives for an fd that is not open. */
static intptr_t select_closed_meanwhile(void *arg) {
    int *p = arg;
    fd_set r;
    FD_ZERO(&r);
    FD_SET(p[0], &r);
    struct later l = {p[0], 20, 1};
    async_future_t *c = async_spawn(act_later, &l);
    CHECK_ERR(async_await(async_select(p[0] + 1, &r, NULL, NULL, NULL)), EBADF);
    CHECK_EQ(async_await(c), 0);
    return 0;
}

Test(poll, select_on_an_fd_closed_meanwhile_is_ebadf) {
    rt_start();
    int p[2];
    nb_pipe(p);
    cr_assert_eq(async_await(async_spawn(select_closed_meanwhile, p)), 0);
    checks_ok();
    close(p[1]);
    rt_stop();
}

/* fds past FD_SETSIZE in sets that large, as select(2) takes them: the one
 * that becomes ready is the one reported. */
Test(poll, select_past_fd_setsize) {
    rt_start();
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 2100) {
        rl.rlim_cur = rl.rlim_max < 2100 ? rl.rlim_max : 2100;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    cr_assert_geq(rl.rlim_cur, 2100, "RLIMIT_NOFILE's hard limit is under 2100");
    int p[2], q[2];
    nb_pipe(p);
    nb_pipe(q);
    int a = fcntl(p[0], F_DUPFD_CLOEXEC, 1500), b = fcntl(q[0], F_DUPFD_CLOEXEC, 2000);
    cr_assert(a >= 1500 && b >= 2000);
    enum { WORDS = 2048 / (8 * sizeof(unsigned long)) + 1 };
    unsigned long set[WORDS] = {0};
    set[a / (8 * sizeof(unsigned long))] |= 1ul << (a % (8 * sizeof(unsigned long)));
    set[b / (8 * sizeof(unsigned long))] |= 1ul << (b % (8 * sizeof(unsigned long)));
    struct later l = {q[1], 20, 0};
    async_future_t *w = async_spawn(act_later, &l);
    ASSERT_VAL(async_await(async_select(b + 1, (fd_set *)set, NULL, NULL, NULL)), 1);
    for (int i = 0; i < WORDS; i++) {
        unsigned long want = i == (int)(b / (8 * sizeof(unsigned long)))
                                 ? 1ul << (b % (8 * sizeof(unsigned long)))
                                 : 0;
        cr_assert_eq(set[i], want, "word %d: %#lx", i, set[i]);
    }
    ASSERT_VAL(async_await(w), 0);
    close(a);
    close(b);
    for (int i = 0; i < 2; i++) {
        close(p[i]);
        close(q[i]);
    }
    rt_stop();
}
