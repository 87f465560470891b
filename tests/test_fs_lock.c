/* Tests of the file locks: async_flock, async_lockf and async_fcntl_lock
 * against their libc twins (results and errno), waits that end when the
 * holder lets go, and cancelled waits that leave the lock untaken. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>

#include "fs_helpers.h"

TestSuite(fs_lock, .init = fs_init, .fini = fs_fini, .timeout = 30);

static int open_rw(void) {
    int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
    cr_assert_geq(fd, 0);
    return fd;
}

/* Not settled after a moment: the wait is real. */
static void still_waiting(async_future_t *f) {
    sleep_ms(30);
    cr_assert_eq(async_future_settled(f), 0, "the lock is held elsewhere: it must wait");
}

Test(fs_lock, flock_waits_for_the_holder) {
    int a = open_rw(), b = open_rw();
    cr_assert_eq(flock(a, LOCK_EX), 0);
    errno = 0;
    cr_assert_eq(flock(b, LOCK_EX | LOCK_NB), -1);
    int glibc = errno;
    ASSERT_ERR(async_await(async_flock(b, LOCK_EX | LOCK_NB)), glibc);
    ASSERT_ERR(async_await(async_flock(b, LOCK_SH | LOCK_NB)), glibc);
    async_future_t *w = async_flock(b, LOCK_EX);
    still_waiting(w);
    cr_assert_eq(flock(a, LOCK_UN), 0);
    ASSERT_VAL(async_await_timeout(w, 5000), 0);
    errno = 0;
    cr_assert_eq(flock(a, LOCK_EX | LOCK_NB), -1, "b holds it now");
    ASSERT_VAL(async_await(async_flock(b, LOCK_UN)), 0);
    cr_assert_eq(flock(a, LOCK_SH | LOCK_NB), 0);
    ASSERT_VAL(async_await(async_flock(b, LOCK_SH)), 0); /* shared with a: no wait */
    close(a);
    close(b);
    rt_stop();
}

Test(fs_lock, a_cancelled_flock_leaves_the_lock_untaken) {
    int a = open_rw(), b = open_rw(), c = open_rw();
    cr_assert_eq(flock(a, LOCK_EX), 0);
    async_future_t *w = async_flock(b, LOCK_EX);
    still_waiting(w);
    async_cancel(w);
    ASSERT_ERR(async_await(w), ECANCELED);
    ASSERT_ERR(async_await_timeout(async_flock(b, LOCK_EX), 30), ETIMEDOUT);
    cr_assert_eq(flock(a, LOCK_UN), 0);
    sleep_ms(60); /* longer than the longest retry interval */
    cr_assert_eq(flock(c, LOCK_EX | LOCK_NB), 0, "nobody took it behind our back");
    close(a);
    close(b);
    close(c);
    rt_stop();
}

Test(fs_lock, ofd_locks_wait_and_cancel) {
    int a = open_rw(), b = open_rw();
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    cr_assert_eq(fcntl(a, F_OFD_SETLK, &fl), 0);
    struct flock g = fl;
    errno = 0;
    cr_assert_eq(fcntl(b, F_OFD_SETLK, &g), -1);
    int glibc = errno;
    struct flock mine = fl;
    ASSERT_ERR(async_await(async_fcntl_lock(b, F_OFD_SETLK, &mine)), glibc);
    /* F_OFD_GETLK says who holds it, as fcntl does */
    struct flock q = fl, gq = fl;
    ASSERT_VAL(async_await(async_fcntl_lock(b, F_OFD_GETLK, &q)), 0);
    cr_assert_eq(fcntl(b, F_OFD_GETLK, &gq), 0);
    cr_assert_eq(q.l_type, gq.l_type);
    cr_assert_eq(q.l_start, gq.l_start);
    cr_assert_eq(q.l_len, gq.l_len);
    /* bytes 20..29 are free: no wait */
    struct flock other = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 10};
    ASSERT_VAL(async_await(async_fcntl_lock(b, F_OFD_SETLKW, &other)), 0);
    async_future_t *w = async_fcntl_lock(b, F_OFD_SETLKW, &mine);
    still_waiting(w);
    async_cancel(w);
    ASSERT_ERR(async_await(w), ECANCELED);
    w = async_fcntl_lock(b, F_OFD_SETLKW, &mine);
    still_waiting(w);
    fl.l_type = F_UNLCK;
    cr_assert_eq(fcntl(a, F_OFD_SETLK, &fl), 0);
    ASSERT_VAL(async_await_timeout(w, 5000), 0);
    close(a);
    close(b);
    rt_stop();
}

/* POSIX record locks belong to a process: the holder is a child. */
static pid_t child_holding_lockf(int go[2], int ready[2]) {
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(P("f"), O_RDWR);
        char c;
        if (fd < 0 || lockf(fd, F_LOCK, 0) != 0) _exit(1);
        if (write(ready[1], "r", 1) != 1) _exit(2);
        if (read(go[0], &c, 1) < 0) _exit(3); /* until told, or the parent is gone */
        _exit(0);
    }
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1, "the child holds the lock");
    return pid;
}

Test(fs_lock, lockf_waits_for_another_process) {
    int fd = open_rw();
    int go[2], ready[2];
    cr_assert_eq(pipe(go), 0);
    cr_assert_eq(pipe(ready), 0);
    pid_t child = child_holding_lockf(go, ready);
    errno = 0;
    cr_assert_eq(lockf(fd, F_TLOCK, 0), -1);
    int glibc_tlock = errno;
    errno = 0;
    cr_assert_eq(lockf(fd, F_TEST, 0), -1);
    int glibc_test = errno;
    ASSERT_ERR(async_await(async_lockf(fd, F_TLOCK, 0)), glibc_tlock);
    ASSERT_ERR(async_await(async_lockf(fd, F_TEST, 0)), glibc_test);
    async_future_t *w = async_lockf(fd, F_LOCK, 0);
    still_waiting(w);
    async_cancel(w);
    ASSERT_ERR(async_await(w), ECANCELED);
    w = async_lockf(fd, F_LOCK, 0);
    still_waiting(w);
    cr_assert_eq(write(go[1], "g", 1), 1);
    int st;
    cr_assert_eq(waitpid(child, &st, 0), child);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child ran as planned");
    ASSERT_VAL(async_await_timeout(w, 5000), 0);
    ASSERT_VAL(async_await(async_lockf(fd, F_TEST, 0)), 0); /* our own lock */
    ASSERT_VAL(async_await(async_lockf(fd, F_ULOCK, 0)), 0);
    close(fd);
    for (int i = 0; i < 2; i++) {
        close(go[i]);
        close(ready[i]);
    }
    rt_stop();
}

Test(fs_lock, bad_input_as_libc) {
    int fd = open_rw();
    int ro = open(P("f"), O_RDONLY);
    struct {
        const char *what;
        int glibc_rc, glibc_errno;
        async_future_t *f;
    } cases[8];
    int n = 0;
#define CASE(libc_call, async_call)      \
    do {                                 \
        errno = 0;                       \
        cases[n].glibc_rc = (libc_call); \
        cases[n].glibc_errno = errno;    \
        cases[n].what = #async_call;     \
        cases[n].f = (async_call);       \
        n++;                             \
    } while (0)
    CASE(flock(fd, 123), async_flock(fd, 123));
    CASE(flock(-1, LOCK_EX), async_flock(-1, LOCK_EX));
    CASE(lockf(fd, 99, 0), async_lockf(fd, 99, 0));
    CASE(lockf(ro, F_TLOCK, 0), async_lockf(ro, F_TLOCK, 0)); /* a write lock needs O_WRONLY/RDWR */
    CASE(lockf(-1, F_LOCK, 0), async_lockf(-1, F_LOCK, 0));
    CASE(lockf(fd, F_TLOCK, -5), async_lockf(fd, F_TLOCK, -5)); /* before offset 0 */
#undef CASE
    for (int i = 0; i < n; i++) {
        errno = 0;
        intptr_t r = async_await(cases[i].f);
        int e = errno;
        cr_assert_eq(r == -1, cases[i].glibc_rc == -1, "%s: %jd, glibc %d", cases[i].what,
                     (intmax_t)r, cases[i].glibc_rc);
        if (r == -1)
            cr_assert_eq(e, cases[i].glibc_errno, "%s: %s, glibc %s", cases[i].what, ename(e),
                         ename(cases[i].glibc_errno));
    }
    ASSERT_ERR(async_await(async_fcntl_lock(fd, F_SETLKW, NULL)), EFAULT);
    struct flock fl = {.l_type = F_WRLCK};
    ASSERT_ERR(async_await(async_fcntl_lock(fd, F_GETFD, &fl)), EINVAL);
    fl.l_type = 77;
    errno = 0;
    struct flock g = fl;
    cr_assert_eq(fcntl(fd, F_SETLKW, &g), -1);
    ASSERT_ERR(async_await(async_fcntl_lock(fd, F_SETLKW, &fl)), errno);
    close(fd);
    close(ro);
    rt_stop();
}
