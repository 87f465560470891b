/* Starting children: posix_spawn(3), posix_spawnp(3) and system(3).
 *
 * glibc's posix_spawn creates the child with CLONE_VFORK and returns once it
 * has executed the program (or failed to): the calling thread is held for
 * that time, about 0.5 ms for /bin/true here. The spawn runs on a pool
 * thread, so that a worker goes on running tasks meanwhile and several
 * spawns proceed at once: run on the worker, 32 tasks spawning /bin/true at
 * one worker managed a sixth of the rate of 32 plain threads doing the same
 * (docs/design.md, "Processes"). */
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

typedef struct spawn_job {
    async__job_t job; /* first */
    bool search;      /* posix_spawnp */
    pid_t *pid;
    const char *path;
    const posix_spawn_file_actions_t *file_actions;
    const posix_spawnattr_t *attrp;
    char *const *argv, *const *envp;
} spawn_job_t;

static intptr_t run_spawn(async__job_t *j) {
    spawn_job_t *s = (spawn_job_t *)j;
    int rc = (s->search ? posix_spawnp : posix_spawn)(s->pid, s->path, s->file_actions, s->attrp,
                                                      s->argv, s->envp);
    errno = rc;
    return rc ? -1 : 0;
}

static async_future_t *spawn_on_pool(bool search, pid_t *pid, const char *path,
                                     const posix_spawn_file_actions_t *file_actions,
                                     const posix_spawnattr_t *attrp, char *const argv[],
                                     char *const envp[]) {
    if (!path || !argv || !envp) return async__future_failed(EINVAL); /* glibc would crash */
    if (!async__runtime()) return async__future_failed(errno);
    spawn_job_t *s = malloc(sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    async__future_init(&s->job.future, &async__job_ops);
    s->job.work = run_spawn;
    s->job.kind = ASYNC_POOL_FS;
    s->search = search;
    s->pid = pid;
    s->path = path;
    s->file_actions = file_actions;
    s->attrp = attrp;
    s->argv = argv;
    s->envp = envp;
    return async__pool_submit(&s->job);
}

async_future_t *async_posix_spawn(pid_t *pid, const char *path,
                                  const posix_spawn_file_actions_t *file_actions,
                                  const posix_spawnattr_t *attrp, char *const argv[],
                                  char *const envp[]) {
    return spawn_on_pool(false, pid, path, file_actions, attrp, argv, envp);
}

async_future_t *async_posix_spawnp(pid_t *pid, const char *file,
                                   const posix_spawn_file_actions_t *file_actions,
                                   const posix_spawnattr_t *attrp, char *const argv[],
                                   char *const envp[]) {
    return spawn_on_pool(true, pid, file, file_actions, attrp, argv, envp);
}

/* system(3) as straight-line code in a task: spawn the shell, await its exit. */
static intptr_t system_task(void *arg) {
    char *command = arg;
    posix_spawnattr_t attr;
    int rc = posix_spawnattr_init(&attr);
    if (rc) {
        errno = rc;
        return -1;
    }
    sigset_t dfl;
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGQUIT);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"sh", "-c", command, NULL};
    pid_t pid;
    intptr_t v = async_await(async_posix_spawn(&pid, "/bin/sh", NULL, &attr, argv, environ));
    posix_spawnattr_destroy(&attr);
    if (v < 0) return -1;
    wait_req_t r = {.kind = WAIT_SYSTEM, .pid = pid};
    v = async_await(async__proc_wait(&r));
    if (v < 0 && errno == ECANCELED) {
        /* As glibc's system(3) does when its thread is cancelled: kill the
         * shell and reap it, here by a wait that nobody awaits, so that no
         * zombie is left whose pid the caller never saw. */
        kill(pid, SIGKILL);
        async_future_free(async__proc_wait(&r));
        errno = ECANCELED;
    }
    return v;
}

async_future_t *async_system(const char *command) {
    if (!command) return async__future_done(access("/bin/sh", X_OK) == 0);
    char *copy = strdup(command);
    if (!copy) {
        errno = ENOMEM;
        return NULL;
    }
    return async__spawn_owned(system_task, copy, free, NULL);
}
