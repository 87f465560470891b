/* popen(3) and pclose(3): a shell whose stdin or stdout is a pipe, read or
 * written through an async stream. Each is straight-line code in a task:
 * make the pipe and the stream, spawn the shell on the pool, remember its
 * pid; pclose closes the stream, then waits for that pid.
 *
 * The open streams are kept in one list, as glibc keeps them: pclose finds
 * the pid there, and each new child closes the other popen streams' fds, as
 * POSIX asks (a writer's child holding another writer's pipe open would keep
 * that pipe's reader from ever seeing its end). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

typedef struct popen_entry {
    struct popen_entry *next;
    async_file_t *f;
    int fd;
    pid_t pid;
} popen_entry_t;

static pthread_mutex_t chain_lock = PTHREAD_MUTEX_INITIALIZER;
static popen_entry_t *chain;

typedef struct popen_req {
    bool reading; /* "r": the caller reads the shell's stdout */
    bool cloexec; /* "e" */
    char command[];
} popen_req_t;

/* Spawns `sh -c command` with `child_end` as its stdin or stdout and the
 * other popen streams' fds closed. */
static int spawn_shell(popen_req_t *r, int child_end, pid_t *pid) {
    posix_spawn_file_actions_t fa;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc) {
        errno = rc;
        return -1;
    }
    rc = posix_spawn_file_actions_adddup2(&fa, child_end, r->reading ? 1 : 0);
    pthread_mutex_lock(&chain_lock);
    for (popen_entry_t *e = chain; e && !rc; e = e->next)
        if (e->fd != (r->reading ? 1 : 0)) rc = posix_spawn_file_actions_addclose(&fa, e->fd);
    pthread_mutex_unlock(&chain_lock);
    char *argv[] = {"sh", "-c", r->command, NULL};
    intptr_t v = rc ? -1 : async_await(async_posix_spawn(pid, "/bin/sh", &fa, NULL, argv, environ));
    if (rc) errno = rc;
    int saved = errno;
    posix_spawn_file_actions_destroy(&fa);
    errno = saved;
    return v < 0 ? -1 : 0;
}

static intptr_t popen_task(void *arg) {
    popen_req_t *r = arg;
    popen_entry_t *e = malloc(sizeof *e);
    int p[2];
    if (!e || pipe2(p, O_CLOEXEC) < 0) {
        int err = e ? errno : ENOMEM;
        free(e);
        errno = err;
        return -1;
    }
    int mine = r->reading ? p[0] : p[1], child_end = r->reading ? p[1] : p[0];
    async_file_t *f = async_fdopen(mine, r->reading ? "r" : "w");
    pid_t pid;
    int err = 0;
    if (!f)
        err = errno;
    else if (spawn_shell(r, child_end, &pid) < 0)
        err = errno;
    close(child_end); /* the child has its copy; ours would hide the end of the stream */
    if (err) {
        if (f)
            (void)async_await(async_fclose(f)); /* closes `mine` */
        else
            close(mine);
        free(e);
        errno = err;
        return -1;
    }
    e->f = f;
    e->fd = mine;
    e->pid = pid;
    pthread_mutex_lock(&chain_lock);
    e->next = chain;
    chain = e;
    pthread_mutex_unlock(&chain_lock);
    /* as glibc: close-on-exec only with "e"; in the list first, so that a
     * later popen's child closes it */
    if (!r->cloexec) fcntl(mine, F_SETFD, 0);
    return (intptr_t)f;
}

/* The type as glibc reads it: any of 'r', 'w', 'e', with exactly one of r and w. */
static bool parse_type(const char *type, bool *reading, bool *cloexec) {
    bool r = false, w = false;
    *cloexec = false;
    for (; *type; type++) {
        if (*type == 'r')
            r = true;
        else if (*type == 'w')
            w = true;
        else if (*type == 'e')
            *cloexec = true;
        else
            return false;
    }
    *reading = r;
    return r != w;
}

async_future_t *async_popen(const char *command, const char *type) {
    bool reading, cloexec;
    if (!command || !type || !parse_type(type, &reading, &cloexec))
        return async__future_failed(EINVAL);
    size_t len = strlen(command) + 1;
    popen_req_t *r = malloc(sizeof *r + len);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    r->reading = reading;
    r->cloexec = cloexec;
    memcpy(r->command, command, len);
    return async__spawn_owned(popen_task, r, free, NULL);
}

/* ---- pclose ------------------------------------------------------------------ */

static intptr_t pclose_task(void *arg) {
    popen_entry_t *e = arg;
    intptr_t closed = async_await(async_fclose(e->f));
    int close_err = errno;
    wait_req_t r = {.kind = WAIT_SYSTEM, .pid = e->pid};
    intptr_t status = async_await(async__proc_wait(&r));
    if (status < 0 && errno == ECANCELED) {
        /* Nobody else knows the pid: reap it later, by a wait nobody awaits. */
        async_future_free(async__proc_wait(&r));
        errno = ECANCELED;
        return -1;
    }
    if (status >= 0 && closed < 0) { /* the status is what pclose is for; a write error is too */
        errno = close_err;
        return -1;
    }
    return status;
}

async_future_t *async_pclose(async_file_t *stream) {
    pthread_mutex_lock(&chain_lock);
    popen_entry_t **pp = &chain;
    while (*pp && (*pp)->f != stream) pp = &(*pp)->next;
    popen_entry_t *e = *pp;
    if (e) *pp = e->next;
    pthread_mutex_unlock(&chain_lock);
    if (!e) return async__future_failed(ECHILD); /* not from async_popen, or closed already */
    return async__spawn_owned(pclose_task, e, free, NULL);
}
