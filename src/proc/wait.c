/* Waiting for children: waitpid(2), wait4(2) and waitid(2) as futures.
 *
 * A wait first asks the kernel with WNOHANG on the calling thread; a child
 * that has already changed state costs one system call and no task. Only
 * otherwise does a task take the wait over, as straight-line code: look with
 * WNOHANG, sleep, look again. What it sleeps on:
 *  - one child, exits only: a pidfd (pidfd_open(2)), readable once the child
 *    has exited, waited on by the worker's event loop like a socket. The
 *    pidfd is opened before the next look, so a child reaped by someone else
 *    and its pid reused shows up as ECHILD at that look, not as a wait on a
 *    stranger.
 *  - anything else (any child, a process group, stops and continues, or a
 *    kernel without pidfds): a timer, 1 ms doubling to 50 ms. A SIGCHLD
 *    handler could wake these waits sooner, but it would take the signal
 *    from applications that handle it themselves (see docs/design.md).
 * The child is reaped only by the look that finds it, which is the call the
 * caller asked for: nothing is reaped behind the application's back. */
#include <poll.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define BACKOFF_MAX_MS 50

/* ---- one look ----------------------------------------------------------- */

/* Looks once without blocking. True when the wait is over, with *value and
 * *err set; false when nothing has changed state yet. */
static bool look(wait_req_t *r, intptr_t *value, int *err) {
    int opts = r->options | WNOHANG;
    if (r->kind == WAIT_ID) {
        siginfo_t si;
        si.si_pid = 0; /* waitid leaves it alone when nothing is ready on old kernels */
        if (waitid(r->idtype, r->id, &si, opts) < 0) {
            *value = -1;
            *err = errno;
            return true;
        }
        if (si.si_pid == 0 && !(r->options & WNOHANG)) return false;
        if (si.si_pid == 0) memset(&si, 0, sizeof si); /* as the kernel does for WNOHANG */
        if (r->infop) *r->infop = si;
        *value = 0;
        *err = 0;
        return true;
    }
    int status = 0;
    pid_t pid = wait4(r->pid, &status, opts, r->rusage); /* glibc's waitpid: a NULL rusage */
    if (pid < 0) {
        *value = -1;
        *err = errno;
        return true;
    }
    if (pid == 0 && !(r->options & WNOHANG)) return false;
    if (pid > 0 && r->wstatus) *r->wstatus = status;
    *value = r->kind == WAIT_SYSTEM ? status : pid;
    *err = 0;
    return true;
}

/* The pid a wait can hold a pidfd for, or 0 when it cannot sleep on one. */
static pid_t single_child(const wait_req_t *r) {
    if (r->kind == WAIT_ID)
        return r->idtype == P_PID && (r->options & (WSTOPPED | WCONTINUED)) == 0 ? (pid_t)r->id : 0;
    return r->pid > 0 && (r->options & (WUNTRACED | WCONTINUED)) == 0 ? r->pid : 0;
}

static intptr_t wait_task(void *arg) {
    wait_req_t *r = arg;
    int pidfd = -1;
    bool own_fd = false;
    if (r->kind == WAIT_ID && r->idtype == P_PIDFD && (r->options & (WSTOPPED | WCONTINUED)) == 0) {
        pidfd = (int)r->id; /* the caller's: sleep on it, never close it */
    } else if (single_child(r)) {
        pidfd = (int)syscall(SYS_pidfd_open, single_child(r), 0);
        own_fd = pidfd >= 0;
        if (own_fd) async__io_fd_new(pidfd);
    }
    unsigned delay = 1;
    intptr_t value;
    int err;
    while (!look(r, &value, &err)) {
        intptr_t rc = pidfd >= 0
                          ? async_await(async_fd_wait(pidfd, POLLIN, -1)) /* readable: it exited */
                          : async_await(async_sleep(delay));
        if (rc < 0 && errno == ECANCELED) {
            value = -1;
            err = ECANCELED;
            break;
        }
        if (rc < 0 &&
            pidfd >= 0) { /* no memory, or a pidfd the caller closed: fall back to looking */
            if (own_fd) close(pidfd);
            pidfd = -1;
            own_fd = false;
        }
        if (pidfd < 0 && delay < BACKOFF_MAX_MS)
            delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
    }
    if (own_fd) close(pidfd);
    errno = err;
    return value;
}

async_future_t *async__proc_wait(const wait_req_t *req) {
    wait_req_t local = *req;
    intptr_t value;
    int err;
    if (look(&local, &value, &err))
        return err ? async__future_failed(err) : async__future_done(value);
    wait_req_t *r = malloc(sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    *r = *req;
    return async__spawn_owned(wait_task, r, free, NULL);
}

/* ---- the calls ------------------------------------------------------------ */

async_future_t *async_wait4(pid_t pid, int *wstatus, int options, struct rusage *rusage) {
    if (options & ~(WNOHANG | WUNTRACED | WCONTINUED | __WALL | __WCLONE | __WNOTHREAD))
        return async__future_failed(EINVAL);
    wait_req_t r = {
        .kind = WAIT_PID, .pid = pid, .wstatus = wstatus, .rusage = rusage, .options = options};
    return async__proc_wait(&r);
}

async_future_t *async_waitpid(pid_t pid, int *wstatus, int options) {
    return async_wait4(pid, wstatus, options, NULL);
}

async_future_t *async_wait(int *wstatus) { return async_wait4(-1, wstatus, 0, NULL); }

async_future_t *async_waitid(idtype_t idtype, id_t id, siginfo_t *infop, int options) {
    wait_req_t r = {
        .kind = WAIT_ID, .idtype = idtype, .id = id, .infop = infop, .options = options};
    return async__proc_wait(&r);
}
