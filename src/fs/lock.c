/* File locks that wait: flock(2), lockf(3) and fcntl(2)'s F_SETLKW family.
 *
 * A blocking lock call can wait for seconds or for ever. On a pool thread it
 * would hold the thread for all that time, and nothing could stop it: a
 * cancelled wait would still take the lock later, behind the caller's back.
 * So a lock is tried without waiting (LOCK_NB, F_SETLK) on the calling
 * thread; when another holder has it, a task tries again at intervals that
 * grow from 1 ms to 20 ms, and a cancellation ends the wait between tries
 * with the lock not taken. The price, documented in fs.h: a waiter is not
 * queued in the kernel, so it may take the lock up to 20 ms after it is
 * free, a steady stream of blocking lockers can pass it, and the kernel's
 * deadlock detection (EDEADLK) does not see it. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include "internal.h"

#define RETRY_MAX_MS 20

typedef struct lock_req {
    int fd;
    bool is_flock;
    int op;          /* flock: LOCK_SH or LOCK_EX (without LOCK_NB) */
    int cmd;         /* fcntl: the non-waiting command (F_SETLK, F_OFD_SETLK) */
    struct flock fl; /* fcntl: our copy (the kernel reads it, never writes it) */
} lock_req_t;

/* One try without waiting: 0 taken, -1 with errno (EWOULDBLOCK / EAGAIN /
 * EACCES when another holder has it). */
static int try_lock(lock_req_t *r) {
    if (r->is_flock) return flock(r->fd, r->op | LOCK_NB);
    return fcntl(r->fd, r->cmd, &r->fl);
}

static bool held_elsewhere(int err) { return err == EWOULDBLOCK || err == EAGAIN || err == EACCES; }

static intptr_t lock_task(void *arg) {
    lock_req_t *r = arg;
    unsigned delay = 1;
    for (;;) {
        if (async_await(async_sleep(delay)) < 0) return -1; /* ECANCELED: not taken */
        if (try_lock(r) == 0) return 0;
        if (!held_elsewhere(errno)) return -1;
        delay = delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : delay * 2;
    }
}

/* Tries at once; a wait, if needed and asked for, goes to a task. */
static async_future_t *lock_start(lock_req_t *req, bool wait) {
    if (try_lock(req) == 0) return async__future_done(0);
    int err = errno;
    if (!wait || !held_elsewhere(err)) {
        /* lockf's F_TLOCK and flock's LOCK_NB report what the kernel said */
        return async__future_failed(err);
    }
    lock_req_t *r = malloc(sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    *r = *req;
    return async__spawn_owned(lock_task, r, free, NULL);
}

async_future_t *async_flock(int fd, int operation) {
    int kind = operation & ~LOCK_NB;
    if (kind == LOCK_UN || (kind != LOCK_SH && kind != LOCK_EX))
        return flock(fd, operation) == 0 ? async__future_done(0) : async__future_failed(errno);
    lock_req_t r = {.fd = fd, .is_flock = true, .op = kind};
    return lock_start(&r, !(operation & LOCK_NB));
}

async_future_t *async_fcntl_lock(int fd, int cmd, struct flock *lock) {
    bool lock_cmd = cmd == F_SETLKW || cmd == F_OFD_SETLKW || cmd == F_SETLK || cmd == F_GETLK ||
                    cmd == F_OFD_SETLK || cmd == F_OFD_GETLK;
    if (!lock_cmd || !lock) {
        /* fcntl(2)'s order: a bad fd (EBADF), then an unknown command (EINVAL),
         * then the lock's address (EFAULT); NULL is not passed to the kernel,
         * where valgrind would call it the library's error */
        if (fcntl(fd, F_GETFD) < 0) return async__future_failed(errno);
        return async__future_failed(lock_cmd ? EFAULT : EINVAL);
    }
    int nowait;
    switch (cmd) {
    case F_SETLKW:
        nowait = F_SETLK;
        break;
    case F_OFD_SETLKW:
        nowait = F_OFD_SETLK;
        break;
    case F_SETLK:
    case F_GETLK:
    case F_OFD_SETLK:
    case F_OFD_GETLK: /* never wait: the kernel answers at once */
        return fcntl(fd, cmd, lock) == 0 ? async__future_done(0) : async__future_failed(errno);
    default:
        return async__future_failed(EINVAL);
    }
    if (lock->l_type == F_UNLCK)
        return fcntl(fd, nowait, lock) == 0 ? async__future_done(0) : async__future_failed(errno);
    lock_req_t r = {.fd = fd, .cmd = nowait, .fl = *lock};
    return lock_start(&r, true);
}

async_future_t *async_lockf(int fd, int cmd, off_t len) {
    /* lockf(3) is fcntl on `len` bytes from the current offset (before it,
     * for a negative len; the kernel checks the range). The offset is read
     * now, so a retry later locks the same bytes even if the offset moves;
     * where it cannot be read, the request is glibc's own (SEEK_CUR, 0). */
    struct flock fl = {.l_whence = SEEK_SET, .l_len = len};
    off_t here = lseek(fd, 0, SEEK_CUR);
    if (here >= 0)
        fl.l_start = here;
    else
        fl.l_whence = SEEK_CUR;
    switch (cmd) {
    case F_TEST:
        fl.l_type = F_RDLCK;
        if (fcntl(fd, F_GETLK, &fl) < 0) return async__future_failed(errno);
        if (fl.l_type == F_UNLCK || fl.l_pid == getpid()) return async__future_done(0);
        return async__future_failed(EACCES);
    case F_ULOCK:
        fl.l_type = F_UNLCK;
        return fcntl(fd, F_SETLK, &fl) == 0 ? async__future_done(0) : async__future_failed(errno);
    case F_TLOCK:
    case F_LOCK: {
        fl.l_type = F_WRLCK;
        lock_req_t r = {.fd = fd, .cmd = F_SETLK, .fl = fl};
        return lock_start(&r, cmd == F_LOCK);
    }
    default:
        return async__future_failed(EINVAL);
    }
}
