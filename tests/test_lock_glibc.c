/* The lock calls against glibc: flock, lockf and fcntl's lock commands on two
 * files that another process holds locks on in the same way, one file for
 * glibc and one for asyncstd, with bad inputs too (bad fds, operations,
 * commands, types, ranges, NULL locks, fds open the wrong way). The result,
 * errno, the struct F_GETLK fills in, the file offset and the locks the
 * process holds afterwards (from /proc/locks) must agree. From a plain thread
 * and from a task. Then cancellation: a cancelled wait takes no lock. */
#include "glibc_compare.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

/* NULL locks are among the inputs compared, on purpose */
#pragma GCC diagnostic ignored "-Wnonnull"

static char dir[64];
static char gpath[96], apath[96];

static void lock_init(void) {
    strcpy(dir, "/tmp/asyncstd-lock-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(gpath, sizeof gpath, "%s/glibc", dir);
    snprintf(apath, sizeof apath, "%s/async", dir);
    for (int i = 0; i < 2; i++) {
        int fd = open(i ? apath : gpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
        cr_assert(fd >= 0);
        cr_assert_eq(ftruncate(fd, 100), 0);
        close(fd);
    }
    rt_start();
}

static void lock_fini(void) {
    rt_stop();
    unlink(gpath);
    unlink(apath);
    rmdir(dir);
}

TestSuite(lock_glibc, .init = lock_init, .fini = lock_fini, .timeout = 60);

/* ---- another process holding locks ---------------------------------------------- */

typedef struct holder {
    pid_t pid;
    int release; /* closing it ends the holder */
} holder_t;

/* A child holding, on both files: a write lock on bytes 0..9 (fcntl), an
 * OFD write lock on 40..49, and flock's LOCK_EX. Only async-signal-safe calls
 * run in it: the parent has threads. */
static holder_t hold(void) {
    int ready[2], release[2];
    cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(release, O_CLOEXEC), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        /* ends with the test, even one that failed before let_go() */
        close(release[1]);
        close(ready[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        const char *paths[2] = {gpath, apath};
        for (int i = 0; i < 2; i++) {
            int fd = open(paths[i], O_RDWR);
            struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
            struct flock ofd = {
                .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 40, .l_len = 10};
            if (fd < 0 || fcntl(fd, F_SETLK, &w) < 0 || fcntl(fd, F_OFD_SETLK, &ofd) < 0 ||
                flock(fd, LOCK_EX | LOCK_NB) < 0)
                _exit(1);
        }
        char c;
        if (write(ready[1], "r", 1) != 1) _exit(1);
        (void)!read(release[0], &c, 1);
        _exit(0);
    }
    close(ready[1]);
    close(release[0]);
    char c;
    cr_assert_eq(read(ready[0], &c, 1), 1, "the holder could not take its locks");
    close(ready[0]);
    return (holder_t){pid, release[1]};
}

static void let_go(holder_t h) {
    close(h.release);
    int st;
    cr_assert_eq(waitpid(h.pid, &st, 0), h.pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The locks this process holds on `fd`'s file, by /proc/locks: a line per
 * lock, kind and range ("POSIX WRITE 0 9"), concatenated. */
static void my_locks(int fd, char *out, size_t size) {
    struct stat st;
    out[0] = 0;
    if (fstat(fd, &st) != 0) return;
    FILE *f = fopen("/proc/locks", "r");
    if (!f) return;
    /* the file as /proc/locks names it: "MAJ:MIN:INODE", the device in hex */
    char line[256], file[64];
    snprintf(file, sizeof file, "%02x:%02x:%lu", major(st.st_dev), minor(st.st_dev),
             (unsigned long)st.st_ino);
    while (fgets(line, sizeof line, f)) {
        char kind[16], adv[16], rw[16], dev[64], end[32];
        long pid;
        long long start;
        if (sscanf(line, "%*d: %15s %15s %15s %ld %63s %lld %31s", kind, adv, rw, &pid, dev, &start,
                   end) != 7)
            continue;
        if (strcmp(dev, file) != 0 || (pid != getpid() && pid != -1)) continue;
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s %s %lld %s;", kind, rw, start, end);
    }
    fclose(f);
}

/* After each comparison: the same offsets and the same locks held. */
static void same_state(int g, int a, int line) {
    char gl[1024], al[1024];
    my_locks(g, gl, sizeof gl);
    my_locks(a, al, sizeof al);
    /* Read again before a mismatch fails: one CI run under load read five
     * FLOCK READ lines of this pid on the glibc file beside the one its fd
     * held, which no later run has shown. Probably the file's pages: the
     * kernel makes /proc/locks a page at a time, and a list that other
     * processes change between pages can show a line again (not proven). A
     * true difference stays. */
    for (int again = 0; again < 3 && strcmp(gl, al) != 0; again++) {
        sleep_ms(20);
        my_locks(g, gl, sizeof gl);
        my_locks(a, al, sizeof al);
    }
    if (strcmp(gl, al) != 0)
        check_fail(__FILE__, line, "[%s] locks held: glibc \"%s\", async \"%s\"", compare_where, gl,
                   al);
    off_t go = lseek(g, 0, SEEK_CUR), ao = lseek(a, 0, SEEK_CUR);
    if (go != ao)
        check_fail(__FILE__, line, "[%s] offsets: glibc %jd, async %jd", compare_where,
                   (intmax_t)go, (intmax_t)ao);
}

#define SAME_LOCK(g, a, gexpr, aexpr) \
    do {                              \
        SAME(gexpr, aexpr);           \
        same_state(g, a, __LINE__);   \
    } while (0)

/* ---- flock ------------------------------------------------------------------ */

static void flock_cases(void) {
    int g = open(gpath, O_RDWR | O_CLOEXEC), a = open(apath, O_RDWR | O_CLOEXEC);
    int gro = open(gpath, O_RDONLY | O_CLOEXEC), aro = open(apath, O_RDONLY | O_CLOEXEC);
    static const int ops[] = {0,
                              LOCK_NB,
                              LOCK_SH | LOCK_EX,
                              LOCK_SH | LOCK_EX | LOCK_NB,
                              99,
                              -1,
                              LOCK_UN,
                              LOCK_UN | LOCK_NB,
                              LOCK_EX | LOCK_NB,
                              LOCK_SH | LOCK_NB,
                              LOCK_UN | LOCK_EX};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        SAME_LOCK(g, a, flock(g, ops[i]), async_flock(a, ops[i]));
        SAME_LOCK(g, a, flock(gro, ops[i]), async_flock(aro, ops[i]));
        SAME(flock(-1, ops[i]), async_flock(-1, ops[i]));
        SAME(flock(4000, ops[i]), async_flock(4000, ops[i]));
    }
    close(g);
    close(a);
    close(gro);
    close(aro);
}

Test(lock_glibc, flock) {
    holder_t h = hold();
    both_contexts(flock_cases);
    let_go(h);
}

/* Free files: the locks are taken and dropped in the same way. */
static void flock_free(void) {
    int g = open(gpath, O_RDWR | O_CLOEXEC), a = open(apath, O_RDWR | O_CLOEXEC);
    static const int ops[] = {LOCK_SH, LOCK_EX, LOCK_SH | LOCK_NB, LOCK_UN, LOCK_EX | LOCK_NB,
                              LOCK_EX, LOCK_UN};
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        SAME_LOCK(g, a, flock(g, ops[i]), async_flock(a, ops[i]));
    close(g);
    close(a);
}

Test(lock_glibc, flock_free) { both_contexts(flock_free); }

/* ---- fcntl's lock commands ------------------------------------------------------ */

static void fcntl_cases(void) {
    int g = open(gpath, O_RDWR | O_CLOEXEC), a = open(apath, O_RDWR | O_CLOEXEC);
    int gro = open(gpath, O_RDONLY | O_CLOEXEC), aro = open(apath, O_RDONLY | O_CLOEXEC);
    int gwo = open(gpath, O_WRONLY | O_CLOEXEC), awo = open(apath, O_WRONLY | O_CLOEXEC);
    /* NULL locks and unknown commands: the fd is checked first */
    static const int cmds[] = {F_SETLK,      F_SETLKW,    F_GETLK, F_OFD_SETLK,
                               F_OFD_SETLKW, F_OFD_GETLK, 1234};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        if (cmds[i] == 1234 && !KERNEL_ONLY) continue;
        SAME_BADPTR(fcntl(g, cmds[i], (struct flock *)NULL), async_fcntl_lock(a, cmds[i], NULL));
        SAME_BADPTR(fcntl(-1, cmds[i], (struct flock *)NULL), async_fcntl_lock(-1, cmds[i], NULL));
        struct flock l = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 70, .l_len = 1};
        SAME(fcntl(-1, cmds[i], &l), async_fcntl_lock(-1, cmds[i], &l));
        SAME(fcntl(4000, cmds[i], &l), async_fcntl_lock(4000, cmds[i], &l));
    }
    typedef struct {
        int cmd, ro_wo; /* 0 read-write fd, 1 read-only, 2 write-only */
        struct flock l;
    } fcase_t;
    static const fcase_t cases[] = {
        {F_SETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10}},
        {F_SETLK, 0, {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 5, .l_len = 1}},
        {F_SETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 45, .l_len = 0}},
        {F_SETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 10}},
        {F_SETLK, 0, {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 20, .l_len = 5}},
        {F_SETLK, 1, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 60, .l_len = 1}},
        {F_SETLK, 2, {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 60, .l_len = 1}},
        {F_SETLK, 0, {.l_type = 77, .l_whence = SEEK_SET, .l_start = 60, .l_len = 1}},
        {F_SETLK, 0, {.l_type = F_WRLCK, .l_whence = 9, .l_start = 60, .l_len = 1}},
        {F_SETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = -5, .l_len = 1}},
        {F_SETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 60, .l_len = -61}},
        {F_SETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_END, .l_start = -10, .l_len = 5}},
        {F_SETLKW, 0, {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0}},
        {F_SETLKW, 0, {.l_type = 77, .l_whence = SEEK_SET, .l_start = 60, .l_len = 1}},
        {F_SETLKW, 0, {.l_type = F_WRLCK, .l_whence = 9, .l_start = 60, .l_len = 1}},
        {F_SETLKW, 1, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 60, .l_len = 1}},
        {F_SETLKW, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 70, .l_len = 5}},
        {F_SETLKW, 0, {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 80, .l_len = 5}},
        {F_GETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 3, .l_len = 2}},
        {F_GETLK, 0, {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 40, .l_len = 100}},
        {F_GETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 90, .l_len = 2}},
        {F_GETLK, 0, {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 2}},
        {F_GETLK, 0, {.l_type = 77, .l_whence = SEEK_SET, .l_start = 0, .l_len = 2}},
        {F_OFD_SETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1}},
        {F_OFD_SETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 47, .l_len = 1}},
        {F_OFD_SETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 95, .l_pid = 5}},
        {F_OFD_SETLK, 0, {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 95, .l_len = 2}},
        {F_OFD_SETLKW, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 95, .l_pid = 5}},
        {F_OFD_SETLKW, 0, {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 95, .l_len = 2}},
        {F_OFD_GETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 50}},
        {F_OFD_GETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 40, .l_len = 1}},
        {F_OFD_GETLK, 0, {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_pid = 3}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const fcase_t *c = &cases[i];
        int gfd = c->ro_wo == 1 ? gro : c->ro_wo == 2 ? gwo : g;
        int afd = c->ro_wo == 1 ? aro : c->ro_wo == 2 ? awo : a;
        struct flock gl = c->l, al = c->l;
        SAME_LOCK(g, a, fcntl(gfd, c->cmd, &gl), async_fcntl_lock(afd, c->cmd, &al));
        if (memcmp(&gl, &al, sizeof gl) != 0)
            check_fail(__FILE__, __LINE__,
                       "case %zu [%s]: struct flock: glibc {%d %d %jd %jd %d}, async {%d %d %jd "
                       "%jd %d}",
                       i, compare_where, gl.l_type, gl.l_whence, (intmax_t)gl.l_start,
                       (intmax_t)gl.l_len, gl.l_pid, al.l_type, al.l_whence, (intmax_t)al.l_start,
                       (intmax_t)al.l_len, al.l_pid);
    }
    /* drop what the cases took, for the next context */
    struct flock un = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
    SAME_LOCK(g, a, fcntl(g, F_SETLK, &un), async_fcntl_lock(a, F_SETLK, &un));
    SAME_LOCK(g, a, fcntl(g, F_OFD_SETLK, &un), async_fcntl_lock(a, F_OFD_SETLK, &un));
    int fds[] = {g, a, gro, aro, gwo, awo};
    for (int i = 0; i < 6; i++) close(fds[i]);
}

Test(lock_glibc, fcntl) {
    holder_t h = hold();
    both_contexts(fcntl_cases);
    let_go(h);
}

/* ---- lockf ------------------------------------------------------------------ */

static void lockf_cases(void) {
    int g = open(gpath, O_RDWR | O_CLOEXEC), a = open(apath, O_RDWR | O_CLOEXEC);
    int gro = open(gpath, O_RDONLY | O_CLOEXEC), aro = open(apath, O_RDONLY | O_CLOEXEC);
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    static const int cmds[] = {F_TEST, F_TLOCK, F_ULOCK, 99, -1};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        SAME(lockf(-1, cmds[i], 10), async_lockf(-1, cmds[i], 10));
        SAME(lockf(p[0], cmds[i], 10), async_lockf(p[0], cmds[i], 10)); /* not a file */
        SAME(lockf(p[1], cmds[i], 0), async_lockf(p[1], cmds[i], 0));
    }
    SAME(lockf(-1, F_LOCK, 10), async_lockf(-1, F_LOCK, 10));
    SAME(lockf(p[1], F_LOCK, 10), async_lockf(p[1], F_LOCK, 10));
    typedef struct {
        off_t at; /* the offset first */
        int cmd;
        off_t len;
        bool ro;
    } lcase_t;
    static const lcase_t cases[] = {
        {0, F_TEST, 10, false},    {0, F_TEST, 0, false},   {5, F_TEST, 1, false},
        {0, F_TEST, 10, true},     {10, F_TEST, -5, false}, {10, F_TEST, -11, false},
        {20, F_TEST, 5, false},    {0, F_TLOCK, 10, false}, {9, F_TLOCK, 1, false},
        {20, F_TLOCK, 5, false},   {20, F_TEST, 5, false},  {30, F_TLOCK, -5, false},
        {30, F_TLOCK, -31, false}, {60, F_TLOCK, 5, true},  {60, F_LOCK, 5, false},
        {62, F_ULOCK, 1, false},   {0, F_ULOCK, 0, false},  {45, F_TEST, 1, false},
        {45, F_TLOCK, 1, false},   {50, 99, 1, false},      {200, F_TLOCK, 0, false},
        {0, F_ULOCK, 0, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const lcase_t *c = &cases[i];
        int gfd = c->ro ? gro : g, afd = c->ro ? aro : a;
        CHECK_EQ(lseek(gfd, c->at, SEEK_SET), c->at);
        CHECK_EQ(lseek(afd, c->at, SEEK_SET), c->at);
        SAME_LOCK(g, a, lockf(gfd, c->cmd, c->len), async_lockf(afd, c->cmd, c->len));
        CHECK_EQ(lseek(gfd, 0, SEEK_CUR), lseek(afd, 0, SEEK_CUR));
    }
    int fds[] = {g, a, gro, aro, p[0], p[1]};
    for (int i = 0; i < 6; i++) close(fds[i]);
}

Test(lock_glibc, lockf) {
    holder_t h = hold();
    both_contexts(lockf_cases);
    let_go(h);
}

/* ---- cancellation: a cancelled wait takes no lock -------------------------------- */

static int waiter_fds[2], nwaiters;

static void cancelled_waits(void) {
    int a = open(apath, O_RDWR | O_CLOEXEC); /* kept open: closing it would drop POSIX locks */
    waiter_fds[nwaiters++] = a;
    char before[1024]; /* the holder's OFD lock shows with pid -1, as ours would */
    my_locks(a, before, sizeof before);
    struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    struct flock ofd = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 40, .l_len = 10};
    async_future_t *fs[4] = {async_flock(a, LOCK_EX), async_fcntl_lock(a, F_SETLKW, &w),
                             async_fcntl_lock(a, F_OFD_SETLKW, &ofd), async_lockf(a, F_LOCK, 10)};
    (void)async_await(async_usleep(30000)); /* a few tries each */
    cancel_all_pending(fs, 4);
    char held[1024];
    my_locks(a, held, sizeof held);
    if (strcmp(held, before) != 0)
        check_fail(__FILE__, __LINE__, "[%s] locks taken: \"%s\"", compare_where, held);
}

Test(lock_glibc, cancelled_wait_takes_nothing) {
    holder_t h = hold();
    both_contexts(cancelled_waits);
    let_go(h);
    /* and nothing is taken later either, once the holder has gone */
    sleep_ms(60);
    for (int i = 0; i < nwaiters; i++) {
        char held[1024];
        my_locks(waiter_fds[i], held, sizeof held);
        cr_assert_str_eq(held, "");
        close(waiter_fds[i]);
    }
}
