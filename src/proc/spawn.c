/* Starting children: posix_spawn(3), posix_spawnp(3) and system(3).
 *
 * glibc's posix_spawn creates the child with CLONE_VFORK and returns once it
 * has executed the program (or failed to): the calling thread is held for
 * that time whichever thread it is. The spawn therefore runs where it is
 * called, as the blocking call would; a hop to the pool would add a thread
 * wake-up to every spawn and free the worker only for the exec's fraction of
 * a millisecond (docs/design.md has the measurement). */
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

static async_future_t *spawned(int rc) {
    return rc ? async__future_failed(rc) : async__future_done(0);
}

async_future_t *async_posix_spawn(pid_t *pid, const char *path,
                                  const posix_spawn_file_actions_t *file_actions,
                                  const posix_spawnattr_t *attrp, char *const argv[],
                                  char *const envp[]) {
    return spawned(posix_spawn(pid, path, file_actions, attrp, argv, envp));
}

async_future_t *async_posix_spawnp(pid_t *pid, const char *file,
                                   const posix_spawn_file_actions_t *file_actions,
                                   const posix_spawnattr_t *attrp, char *const argv[],
                                   char *const envp[]) {
    return spawned(posix_spawnp(pid, file, file_actions, attrp, argv, envp));
}

async_future_t *async_system(const char *command) {
    if (!command) return async__future_done(access("/bin/sh", X_OK) == 0);
    posix_spawnattr_t attr;
    int rc = posix_spawnattr_init(&attr);
    if (rc) return async__future_failed(rc);
    sigset_t dfl;
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGQUIT);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    char *argv[] = {"sh", "-c", (char *)command, NULL};
    pid_t pid;
    rc = posix_spawn(&pid, "/bin/sh", NULL, &attr, argv, environ);
    posix_spawnattr_destroy(&attr);
    if (rc) return async__future_failed(rc);
    wait_req_t r = {.kind = WAIT_SYSTEM, .pid = pid};
    async_future_t *f = async__proc_wait(&r);
    if (f) return f;
    /* No memory for a waiting task: the child must not become a zombie that
     * nobody reaps, so wait here, blocking, as system(3) would. */
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return async__future_failed(errno);
    return async__future_done(status);
}
