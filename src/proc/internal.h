/* Private declarations of the proc module. */
#ifndef ASYNC_PROC_INTERNAL_H
#define ASYNC_PROC_INTERNAL_H

#include <string.h>

#include "asyncstd/proc.h"
#include "task/internal.h"

/* One wait, as the caller asked for it. */
typedef struct wait_req {
    enum { WAIT_PID, WAIT_ID, WAIT_SYSTEM } kind; /* SYSTEM: waitpid whose result is the status */
    pid_t pid;                                    /* PID, SYSTEM */
    int *wstatus;                                 /* PID, SYSTEM; may be NULL */
    struct rusage *rusage;                        /* PID: wait4's; may be NULL */
    idtype_t idtype;                              /* ID */
    id_t id;
    siginfo_t *infop;
    int options;
} wait_req_t;

/* The future of a wait: settled at once when the child has already changed
 * state (or on an error), else a task's. NULL + ENOMEM. */
async_future_t *async__proc_wait(const wait_req_t *req);

#endif
