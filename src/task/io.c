/* fd readiness: a nonblocking system call retried when its fd is ready.
 *
 * An io op (net's recv, fs's read on a pipe, ...) is tried at once on the
 * calling thread; only when the kernel says EAGAIN does it park on a worker
 * and wait. So a ready fd costs one system call and no task switch.
 *
 * Each worker has an epoll instance of its own, and that is where the worker
 * blocks: libuv's own epoll fd (uv_backend_fd) sits inside it, so one
 * epoll_wait sees socket readiness, wake-ups and libuv's work alike, and
 * libuv's loop is run (without blocking) only when its fd or a timer is due.
 * (libuv adds an fd to its own epoll only inside uv_run: a libuv handle with
 * an fd, started while the worker runs, would need a turn of the loop before
 * the worker blocks. The worker's only such handle is its wake-up, registered
 * by one turn when its thread starts; everything else is timers.)
 * Watching this epoll from libuv instead (a uv_poll on it) cost two
 * epoll_wait calls per wake-up.
 *
 * Fds are registered edge-triggered for both directions, and the worker
 * remembers per fd and direction whether the fd is known to be ready (an
 * edge came and no attempt has seen EAGAIN since) and, for a TCP socket,
 * whether a short read just emptied it. Those marks are hints, never trusted
 * with a wake-up: the entry is keyed by fd number, and the number may have
 * been closed with plain close(2) and given to another file since, or the
 * edge the mark stands for may have been consumed already (data and FIN in
 * one segment: the short read that takes the data leaves the FIN, whose edge
 * came with the data's). So every op that starts waiting on an fd re-arms
 * it with EPOLL_CTL_MOD: the kernel then checks the registration is still
 * this file's (ENOENT if the number names another file now: the op
 * registers afresh) and reports readiness that is already there, so a wrong
 * "not ready" costs one wake-up, never a lost one. One epoll_ctl per wait is
 * what makes "any fd may be handed to any call" true; the EAGAIN system call
 * that a "drained" mark saves pays for it (docs/design.md has the numbers).
 *
 * libuv's loop cannot hold the fds itself: it owns its epoll instance and
 * aborts on epoll_ctl errors it does not expect (an fd closed behind its
 * back), while here such errors become the op's errno.
 *
 * An fd may be waited on from several workers (a listening socket accepted
 * on every core): each worker registers it in its own epoll. A global table
 * keeps, per fd number, the set of workers that registered it, so that
 * async__io_close wakes every waiter with EBADF before the number can be
 * reused, and a generation bumped by async__io_close and async__io_fd_new,
 * so that a worker forgets what it knew of an fd number the library saw
 * closed or created. */
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

#ifdef ASYNC_HAVE_LIBURING
#include <liburing.h>
#define ARMS_PER_RING 128 /* queued re-arms; a full ring is flushed at once */
#endif

#define EVENTS_PER_WAIT 128

enum { OP_NEW, OP_QUEUED, OP_PARKED, OP_DONE };

/* One fd as one worker sees it. */
typedef struct io_fd {
    async__list_t parked[2];   /* parked ops: [0] read, [1] write, oldest first */
    uint32_t gen;              /* bumped on drop: stale epoll events are ignored */
    uint32_t fdgen;            /* the global generation this entry belongs to */
    unsigned ready;            /* ASYNC_IO_* known ready (a hint: see above) */
    bool registered;           /* added to this worker's epoll (a hint: see above) */
    bool tcp;                  /* learned when added: a short read empties it */
    bool arming;               /* a re-arm is queued in the ring, not yet reaped */
    unsigned probes[2];        /* parked ops that are probes, per direction */
    struct epoll_event arm_ev; /* what it asks for: read by the kernel at submission */
} io_fd_t;

/* The epoll event that stands for libuv's backend fd: no fd and generation
 * has this value (fds are below ASYNC_FD_TABLE_MAX). */
#define LOOP_EVENT UINT64_MAX
/* The worker's wake-up eventfd (worker.h's wakefd). */
#define WAKE_EVENT (UINT64_MAX - 1)

struct async__io_worker {
    int epfd;
    io_fd_t **fds;
    size_t nfds;
#ifdef ASYNC_HAVE_LIBURING
    /* Re-arms (EPOLL_CTL_MOD) queued as IORING_OP_EPOLL_CTL and submitted
     * together before each epoll_wait: one system call per poll instead of
     * one per wait. Off when io_uring or the opcode is missing (or with
     * ASYNCSTD_IO_URING=0): then each re-arm is its own epoll_ctl. */
    struct io_uring ring;
    bool batch;
    unsigned queued; /* re-arms not submitted yet */
#endif
};

typedef struct global_fd {
    _Atomic uint64_t workers; /* bit (id-1) % 64: the fd may be registered there */
    atomic_uint gen;
} global_fd_t;

static async__fd_table_t global = ASYNC_FD_TABLE_INIT;

/* NULL for an fd beyond the table (or no memory): callers then treat it as
 * registered on every worker. */
static global_fd_t *global_fd(int fd) {
    global_fd_t *t = async__fd_table_get(&global, sizeof *t);
    return t && (size_t)fd < global.len ? &t[fd] : NULL;
}

static inline int dir_index(int events) { return events == ASYNC_IO_WRITE; }

/* ---- the op's memory ------------------------------------------------------ */

static void op_release(async_future_t *f) {
    async__io_op_t *op = (async__io_op_t *)f;
    if (op->small)
        async__obj_free(ASYNC_OBJ_SMALL, op);
    else
        free(op);
}

static void op_cancel(async_future_t *f);

static void op_describe(const async_future_t *f, async__wait_t *out) {
    const async__io_op_t *op = (const async__io_op_t *)f;
    async__wait_set(out, ASYNC_WAIT_FD, op->name, (void (*)(void))op->attempt, f, NULL, op->fd);
}

static const async__future_ops_t io_ops = {op_cancel, op_release, op_describe};

async__io_op_t *async__io_op_new(size_t size, int fd, int events, async__io_attempt_fn attempt) {
    if (size < sizeof(async__io_op_t)) size = sizeof(async__io_op_t);
    bool small = size <= ASYNC_OBJ_SMALL_SIZE;
    async__io_op_t *op = small ? async__obj_alloc(ASYNC_OBJ_SMALL) : malloc(size);
    if (!op) {
        errno = ENOMEM;
        return NULL;
    }
    memset(op, 0, size);
    async__future_init(&op->future, &io_ops);
    op->small = small;
    op->fd = fd;
    op->events = events == ASYNC_IO_WRITE ? ASYNC_IO_WRITE : ASYNC_IO_READ;
    op->attempt = attempt;
    op->state = OP_NEW;
    return op;
}

/* ---- a worker's table ----------------------------------------------------- */

#ifdef ASYNC_HAVE_LIBURING
/* A ring for batched re-arms, if this kernel runs IORING_OP_EPOLL_CTL. */
static bool ring_init(struct io_uring *ring) {
    const char *env = getenv("ASYNCSTD_IO_URING"); /* 0 turns it off, 1 (or unset) on */
    if (env && *env && strcmp(env, "1") != 0) {
        if (strcmp(env, "0") == 0) return false;
        (void)async__env_setting("ASYNCSTD_IO_URING", ASYNC_ENV_IO_URING, 0, 1,
                                 false); /* names it */
    }
    if (io_uring_queue_init(ARMS_PER_RING, ring, 0) != 0) return false;
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    bool ok = probe && io_uring_opcode_supported(probe, IORING_OP_EPOLL_CTL);
    if (probe) io_uring_free_probe(probe);
    if (!ok) io_uring_queue_exit(ring);
    return ok;
}
#endif

static struct async__io_worker *io_worker(async__worker_t *w, int *err) {
    if (ASYNC_LIKELY(w->io != NULL)) return w->io;
    struct async__io_worker *io = calloc(1, sizeof *io);
    if (!io) {
        *err = ENOMEM;
        return NULL;
    }
    io->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (io->epfd < 0) {
        *err = errno;
        free(io);
        return NULL;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LOOP_EVENT}; /* level-triggered */
    if (epoll_ctl(io->epfd, EPOLL_CTL_ADD, uv_backend_fd(&w->loop), &ev) != 0) {
        *err = errno;
        close(io->epfd);
        free(io);
        return NULL;
    }
    /* the wake-up eventfd: without it the worker is rung through libuv */
    int wfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event wev = {.events = EPOLLIN, .data.u64 = WAKE_EVENT}; /* level-triggered */
    if (wfd >= 0 && epoll_ctl(io->epfd, EPOLL_CTL_ADD, wfd, &wev) != 0) {
        close(wfd);
        wfd = -1;
    }
    w->wakefd = wfd;
#ifdef ASYNC_HAVE_LIBURING
    io->batch = ring_init(&io->ring);
#endif
    w->io = io;
    return io;
}

static io_fd_t *io_fd(struct async__io_worker *io, int fd, int *err) {
    if ((size_t)fd >= io->nfds) {
        /* a number no file has (a bad fd, INT_MAX) must not size the table */
        if (fcntl(fd, F_GETFD) < 0) {
            *err = errno;
            return NULL;
        }
        size_t n = io->nfds ? io->nfds : 64;
        while (n <= (size_t)fd) n *= 2;
        io_fd_t **fds = realloc(io->fds, n * sizeof *fds);
        if (!fds) {
            *err = ENOMEM;
            return NULL;
        }
        memset(fds + io->nfds, 0, (n - io->nfds) * sizeof *fds);
        io->fds = fds;
        io->nfds = n;
    }
    io_fd_t *e = io->fds[fd];
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e) {
            *err = ENOMEM;
            return NULL;
        }
        io->fds[fd] = e;
    }
    return e;
}

static void unlink_op(io_fd_t *e, async__io_op_t *op) {
    int d = dir_index(op->events);
    if (op->probe) e->probes[d]--;
    async__list_remove(&e->parked[d], &op->node);
}

static void finish(async__io_op_t *op, intptr_t value, int err) {
    if (op->state == OP_PARKED) op->worker->io_parked--;
    op->state = OP_DONE;
    async__future_complete(&op->future, value, err);
}

/* Forgets everything this worker knows of fd and fails its parked ops with
 * `err`. Ops are unlinked first: settling may run callbacks that start new
 * ops on the same fd. */
static void drop_fd(struct async__io_worker *io, io_fd_t *e, int fd, int err) {
    if (e->registered) epoll_ctl(io->epfd, EPOLL_CTL_DEL, fd, NULL); /* fails if closed: fine */
    e->registered = false;
    e->arming = false; /* a queued re-arm's result is ignored: its gen is old */
    e->ready = 0;
    e->gen++;
    async__list_t all[2] = {async__list_take(&e->parked[0]), async__list_take(&e->parked[1])};
    e->probes[0] = e->probes[1] = 0;
    for (int d = 0; d < 2; d++) {
        async__node_t *n;
        while ((n = async__list_pop_front(&all[d])))
            finish(async__list_entry(n, async__io_op_t, node), -1, err);
    }
}

/* The entry for fd on this worker, made current: if the fd number was given to
 * a new file since the entry was used (async__io_fd_new), start afresh. */
static io_fd_t *current_fd(struct async__io_worker *io, int fd, int *err) {
    io_fd_t *e = io_fd(io, fd, err);
    if (!e) return NULL;
    global_fd_t *g = global_fd(fd);
    uint32_t gen = g ? atomic_load_explicit(&g->gen, memory_order_acquire) : 0;
    if (ASYNC_UNLIKELY(e->fdgen != gen)) {
        drop_fd(io, e, fd, EBADF);
        e->fdgen = gen;
    }
    return e;
}

/* What a registration asks for: both directions, edge-triggered, and the fd
 * with its generation as the event's data (events of an older one are ignored). */
static struct epoll_event fd_event(int fd, uint32_t gen) {
    return (struct epoll_event){
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET, /* PRI: async_poll */
        .data.u64 = (uint64_t)(uint32_t)fd | (uint64_t)gen << 32,
    };
}

/* Adds fd to this worker's epoll afresh: a new generation, so that events of
 * an older registration under this number are ignored. */
static int register_fd(async__worker_t *w, struct async__io_worker *io, io_fd_t *e, int fd) {
    e->gen++;
    e->registered = false;
    e->arming = false;
    struct epoll_event ev = fd_event(fd, e->gen);
    if (epoll_ctl(io->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        if (errno != EEXIST) return errno;
        if (epoll_ctl(io->epfd, EPOLL_CTL_MOD, fd, &ev) != 0) return errno;
    }
    e->registered = true;
    /* Only a TCP read is known to take all its queue holds, up to its length
     * (a Unix stream read stops at a message with fds or credentials, a
     * datagram read takes one datagram). Asked once per registration. */
    int proto = 0;
    socklen_t len = sizeof proto;
    e->tcp = getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 && proto == IPPROTO_TCP;
    global_fd_t *g = global_fd(fd);
    if (g) {
        /* A close may have read the set of workers before our bit went in; it
         * bumps gen before reading, so after setting the bit we see its bump
         * (all seq_cst): then the fd is being closed and we must not wait. */
        uint64_t bit = UINT64_C(1) << ((w->id - 1) % 64);
        atomic_fetch_or(&g->workers, bit);
        if (atomic_load(&g->gen) != e->fdgen) {
            epoll_ctl(io->epfd, EPOLL_CTL_DEL, fd, NULL);
            e->registered = false;
            return EBADF;
        }
    }
    return 0;
}

/* Before an op waits: re-arms the registration, which makes the kernel report
 * readiness that is already there, or registers the fd if this worker's
 * registration is gone (the number names another file now). With a ring the
 * re-arm is queued and submitted before the worker next looks at its epoll
 * (flush_arms), which is all that matters: readiness it reports is seen by
 * that epoll_wait. */
static int arm_fd(async__worker_t *w, struct async__io_worker *io, io_fd_t *e, int fd) {
    if (!e->registered) return register_fd(w, io, e, fd);
    e->arm_ev = fd_event(fd, e->gen);
#ifdef ASYNC_HAVE_LIBURING
    if (io->batch) {
        if (e->arming) return 0; /* one re-arm covers both directions */
        struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
        if (!sqe) { /* full: submit what is queued (results are reaped at the next poll) */
            io_uring_submit(&io->ring);
            io->queued = 0;
            sqe = io_uring_get_sqe(&io->ring);
        }
        if (sqe) {
            io_uring_prep_epoll_ctl(sqe, io->epfd, fd, EPOLL_CTL_MOD, &e->arm_ev);
            io_uring_sqe_set_data64(sqe, e->arm_ev.data.u64);
            e->arming = true;
            io->queued++;
            return 0;
        }
    }
#endif
    if (epoll_ctl(io->epfd, EPOLL_CTL_MOD, fd, &e->arm_ev) == 0) return 0;
    if (errno != ENOENT) return errno;
    return register_fd(w, io, e, fd);
}

#ifdef ASYNC_HAVE_LIBURING
/* Submits the queued re-arms and handles the results that came: ENOENT means
 * the number names another file now (register it afresh), anything else
 * (EBADF: closed) fails the fd's parked ops. A re-arm the kernel had to defer
 * (its epoll busy) completes later, and still wakes our epoll_wait if it finds
 * the fd ready; its result is reaped at a later poll. */
static void flush_arms(async__worker_t *w, struct async__io_worker *io) {
    if (io->queued) {
        io_uring_submit(&io->ring);
        io->queued = 0;
    }
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&io->ring, head, cqe) {
        n++;
        int fd = (int)(uint32_t)cqe->user_data;
        uint32_t gen = (uint32_t)(cqe->user_data >> 32);
        io_fd_t *e = (size_t)fd < io->nfds ? io->fds[fd] : NULL;
        if (!e || e->gen != gen || !e->arming) continue; /* dropped or re-registered since */
        e->arming = false;
        if (cqe->res == 0) continue;
        int err = cqe->res == -ENOENT ? register_fd(w, io, e, fd) : -cqe->res;
        if (err) drop_fd(io, e, fd, err);
    }
    if (n) io_uring_cq_advance(&io->ring, n);
}
#endif

static void park(io_fd_t *e, async__io_op_t *op) {
    int d = dir_index(op->events);
    if (op->probe) e->probes[d]++;
    op->state = OP_PARKED;
    async__list_push_back(&e->parked[d], &op->node);
    op->worker->io_parked++;
}

/* Worker thread: try the op (unless the fd is thought not ready) and park it
 * on EAGAIN. An op that parks first in its direction re-arms the fd (arm_fd);
 * one queued behind it is retried when the head completes. */
static void start_here(async__worker_t *w, async__io_op_t *op) {
    if (ASYNC_UNLIKELY(w->exiting)) {
        finish(op, -1, ECANCELED);
        return;
    }
    int err = 0;
    struct async__io_worker *io = io_worker(w, &err);
    io_fd_t *e = io ? current_fd(io, op->fd, &err) : NULL;
    if (!e) {
        intptr_t value = -1;
        /* a number no file has (see io_fd): the call's own answer, as on a
         * plain thread, since some calls check their flags before the fd */
        if (err != EBADF || !op->attempt(op, &value, &err)) value = -1;
        finish(op, value, err);
        return;
    }
    int d = dir_index(op->events);
    bool queued_ahead = !async__list_empty(&e->parked[d]);
    if (op->nowait || op->probe || (!queued_ahead && (!e->registered || (e->ready & op->events)))) {
        intptr_t value = 0;
        if (op->attempt(op, &value, &err)) {
            if (op->drained && e->tcp) e->ready &= ~(unsigned)op->events;
            finish(op, value, err);
            return;
        }
        if (op->nowait) { /* the caller asked never to wait */
            finish(op, -1, EAGAIN);
            return;
        }
    }
    if (!op->probe) e->ready &= ~(unsigned)op->events; /* a probe's miss says nothing of it */
    if (!queued_ahead && (err = arm_fd(w, io, e, op->fd)) != 0) {
        finish(op, -1, err);
        return;
    }
    park(e, op);
}

/* Retries parked ops in order while the direction stays ready. A drained
 * mark is not trusted while ops are still parked: they are tried until one
 * sees EAGAIN, which the kernel has checked (an end of stream left behind a
 * short read must reach the next reader). Probes are tried whatever the
 * ops ahead of them saw (see async__io_op_t).
 *
 * Every attempt is made before any op is settled: settling may run code
 * (async_poll's, a then callback) that cancels or starts ops on this fd, so
 * the list is walked only while nothing else can change it. */
static void run_ready_ops(io_fd_t *e, int events) {
    int d = dir_index(events);
    async__list_t done = {0};
    for (async__node_t *n = e->parked[d].head, *next; n; n = next) {
        next = n->next;
        async__io_op_t *op = async__list_entry(n, async__io_op_t, node);
        if (!op->probe && !(e->ready & (unsigned)events)) {
            if (!e->probes[d]) break;
            continue; /* only probes now */
        }
        if (!op->attempt(op, &op->result, &op->result_err)) {
            if (!op->probe) e->ready &= ~(unsigned)events;
            continue;
        }
        unlink_op(e, op);
        op->worker->io_parked--;
        op->state = OP_DONE; /* a cancel made while settling the others leaves it be */
        if (op->drained && e->tcp && async__list_empty(&e->parked[d]))
            e->ready &= ~(unsigned)events;
        async__list_push_back(&done, n);
    }
    for (async__node_t *n; (n = async__list_pop_front(&done));) {
        async__io_op_t *op = async__list_entry(n, async__io_op_t, node);
        finish(op, op->result, op->result_err);
    }
}

bool async__io_poll(async__worker_t *w, int timeout_ms) {
    struct async__io_worker *io = w->io;
    if (!io) { /* no epoll of our own (it could not be made): block in libuv */
        uv_run(&w->loop, timeout_ms == 0 ? UV_RUN_NOWAIT : UV_RUN_ONCE);
        return false;
    }
#ifdef ASYNC_HAVE_LIBURING
    if (io->batch) flush_arms(w, io);
#endif
    struct epoll_event evs[EVENTS_PER_WAIT];
    bool loop_ready = false;
    int n;
    do {
        n = epoll_wait(io->epfd, evs, EVENTS_PER_WAIT, timeout_ms);
        timeout_ms = 0; /* only the first wait blocks */
        for (int i = 0; i < n; i++) {
            if (evs[i].data.u64 == LOOP_EVENT) {
                loop_ready = true;
                continue;
            }
            if (evs[i].data.u64 == WAKE_EVENT) { /* rung: the inbox has messages */
                uint64_t v;
                ssize_t r = read(w->wakefd, &v, sizeof v);
                (void)r; /* EAGAIN: another read took it; level-triggered, nothing is lost */
                continue;
            }
            int fd = (int)(uint32_t)evs[i].data.u64;
            uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
            if ((size_t)fd >= io->nfds || !io->fds[fd]) continue;
            io_fd_t *e = io->fds[fd];
            if (e->gen != gen || !e->registered) continue;
            uint32_t got = evs[i].events;
            if (got & (EPOLLERR | EPOLLHUP)) got |= EPOLLIN | EPOLLOUT;
            if (got & (EPOLLIN | EPOLLRDHUP | EPOLLPRI)) e->ready |= ASYNC_IO_READ;
            if (got & EPOLLOUT) e->ready |= ASYNC_IO_WRITE;
            run_ready_ops(e, ASYNC_IO_READ);
            if (e->gen == gen) run_ready_ops(e, ASYNC_IO_WRITE);
        }
    } while (n == EVENTS_PER_WAIT);
    return loop_ready;
}

/* ---- starting, from any thread --------------------------------------------- */

static void on_start_msg(async__worker_t *w, async__msg_t *m) {
    async__io_op_t *op = ASYNC_CONTAINER_OF(m, async__io_op_t, msg);
    if (op->state == OP_QUEUED) start_here(w, op);
    async__future_unref(&op->future); /* the message's hold */
}

async_future_t *async__io_start(async__io_op_t *op) {
    async__worker_t *w = async__tls_worker;
    if (w) {
        op->worker = w;
        start_here(w, op);
        return &op->future;
    }
    /* a plain thread: try here, and hand the wait to a worker */
    intptr_t value = 0;
    int err = 0;
    if (op->attempt(op, &value, &err)) {
        finish(op, value, err);
        return &op->future;
    }
    if (op->nowait) {
        finish(op, -1, EAGAIN);
        return &op->future;
    }
    if (!async__runtime()) {
        finish(op, -1, errno);
        return &op->future;
    }
    op->state = OP_QUEUED;
    op->worker = async__runtime_waiter(); /* see async__runtime_t */
    op->msg.run = on_start_msg;
    async__future_ref(&op->future);
    async__worker_post(op->worker, &op->msg);
    return &op->future;
}

/* ---- cancellation ---------------------------------------------------------- */

static void cancel_here(async__worker_t *w, async__io_op_t *op) {
    if (op->state == OP_QUEUED) { /* its start message is still on the way: it will skip */
        finish(op, -1, ECANCELED);
        return;
    }
    if (op->state != OP_PARKED) return;
    io_fd_t *e = w->io->fds[op->fd];
    unlink_op(e, op);
    if (op->progress) /* bytes already gone are the result, as write(2) reports them */
        finish(op, (intptr_t)op->progress, 0);
    else
        finish(op, -1, ECANCELED);
}

static void on_cancel_msg(async__worker_t *w, async__msg_t *m) {
    async__io_op_t *op = ASYNC_CONTAINER_OF(m, async__io_op_t, cancel_msg);
    cancel_here(w, op);
    async__future_unref(&op->future); /* the message's hold */
}

/* op->worker is written before the op can be cancelled (the caller has no
 * future before async__io_start returns) and never changes afterwards. */
static void op_cancel(async_future_t *f) {
    async__io_op_t *op = (async__io_op_t *)f;
    if (op->worker == NULL) return; /* settled inline */
    if (async__tls_worker == op->worker) {
        cancel_here(op->worker, op);
        return;
    }
    /* the start message, if any, runs before this one: both travel through the
     * same FIFO inbox */
    async__future_ref(f);
    op->cancel_msg.run = on_cancel_msg;
    async__worker_post(op->worker, &op->cancel_msg);
}

/* ---- closing ---------------------------------------------------------------- */

typedef struct close_op {
    async_future_t future; /* first */
    int fd;
    atomic_uint pending; /* workers still to drop the fd; the last one closes it */
    unsigned nmsgs;
    bool small; /* from ASYNC_OBJ_SMALL, else malloc */
    struct close_msg {
        async__msg_t msg;
        struct close_op *op;
    } msgs[];
} close_op_t;

/* The op a close runs on when malloc finds no memory. A NULL future (ENOMEM)
 * must mean that nothing was done, since the caller may then close again;
 * after a real close the number may already be another file's. With the
 * spare, closing needs no memory unless two closes at once find none. It is
 * sized for the waiter and 64 workers: in a bigger runtime every close needs
 * malloc (a close allocates room for a message to every worker). */
#define SPARE_MSGS 65
static union {
    close_op_t op;
    char room[sizeof(close_op_t) + SPARE_MSGS * sizeof(struct close_msg)];
} spare;
static atomic_bool spare_taken;

static void close_release(async_future_t *f) {
    if (f == &spare.op.future)
        atomic_store_explicit(&spare_taken, false, memory_order_release);
    else if (((close_op_t *)f)->small)
        async__obj_free(ASYNC_OBJ_SMALL, f);
    else
        free(f);
}
static void close_cancel(async_future_t *f) { (void)f; } /* close(2) is not interrupted either */
static void close_describe(const async_future_t *f, async__wait_t *out) {
    async__wait_set(out, ASYNC_WAIT_FD, "close", NULL, f, NULL, ((const close_op_t *)f)->fd);
}
static const async__future_ops_t close_ops = {close_cancel, close_release, close_describe};

/* An op for closing fd after telling n other workers; NULL + ENOMEM. */
static close_op_t *close_op_new(int fd, unsigned n) {
    /* the object cache in a runtime of up to 15 workers: 40-55 ns less per
     * close than malloc and free (bench/RESULTS.md) */
    size_t size = sizeof(close_op_t) + n * sizeof(struct close_msg);
    bool small = size <= ASYNC_OBJ_SMALL_SIZE;
    close_op_t *op = small ? async__obj_alloc(ASYNC_OBJ_SMALL) : malloc(size);
    if (!op && n <= SPARE_MSGS &&
        !atomic_exchange_explicit(&spare_taken, true, memory_order_acquire))
        op = &spare.op;
    if (!op) {
        errno = ENOMEM;
        return NULL;
    }
    async__future_init(&op->future, &close_ops);
    op->fd = fd;
    op->nmsgs = n;
    op->small = small && op != &spare.op;
    atomic_init(&op->pending, n);
    return op;
}

/* Each worker holding fd drops it locally; the last one closes it. */
static void drop_local(async__worker_t *w, int fd) {
    struct async__io_worker *io = w->io;
    if (!io || (size_t)fd >= io->nfds || !io->fds[fd]) return;
    drop_fd(io, io->fds[fd], fd, EBADF);
}

static void close_finish(close_op_t *op) {
    int r = close(op->fd);
    async__future_complete(&op->future, r, r < 0 ? errno : 0);
}

static void on_close_msg(async__worker_t *w, async__msg_t *m) {
    struct close_msg *cm = ASYNC_CONTAINER_OF(m, struct close_msg, msg);
    close_op_t *op = cm->op;
    drop_local(w, op->fd);
    if (atomic_fetch_sub_explicit(&op->pending, 1, memory_order_acq_rel) == 1) close_finish(op);
}

async_future_t *async__io_close(int fd) {
    if (fd < 0) return async__future_failed(EBADF);
    /* The result's memory first, so that a close, once made, is reported. */
    if (atomic_load_explicit(&async__rt_state, memory_order_acquire) != 2) {
        close_op_t *op = close_op_new(fd, 0);
        if (!op) return NULL;
        close_finish(op);
        return &op->future;
    }
    async__runtime_t *rt = &async__rt;
    global_fd_t *g = global_fd(fd);
    unsigned nw = rt->nworkers + 1; /* and the waiter */
    uint64_t all = nw >= 64 ? UINT64_MAX : (UINT64_C(1) << nw) - 1;
    /* room for a message to every worker, before anything changes (the
     * generation too: bumped, it would fail waits on an fd left open) */
    close_op_t *op = close_op_new(fd, nw);
    if (!op) return NULL;                /* the fd and its registrations untouched */
    if (g) atomic_fetch_add(&g->gen, 1); /* before reading the set: see register_fd */
    uint64_t mask = g ? atomic_load(&g->workers) : all;
    async__worker_t *self = async__tls_worker;
    uint64_t self_bit = self ? UINT64_C(1) << ((self->id - 1) % 64) : 0;
    if (self && nw <= 64) mask &= ~self_bit; /* dropped below, here and now */

    /* other workers to tell: one message each */
    unsigned n = 0;
    for (unsigned i = 0; i < nw; i++)
        if ((mask >> (i % 64)) & 1 && &rt->workers[i] != self) n++;
    op->nmsgs = n;
    atomic_store_explicit(&op->pending, n, memory_order_relaxed);
    if (g) atomic_store_explicit(&g->workers, 0, memory_order_release);
    if (self) drop_local(self, fd);
    if (!n) {
        close_finish(op);
        return &op->future;
    }
    unsigned k = 0;
    for (unsigned i = 0; i < nw; i++) {
        if (!((mask >> (i % 64)) & 1) || &rt->workers[i] == self) continue;
        op->msgs[k].op = op;
        op->msgs[k].msg.run = on_close_msg;
        async__worker_post(&rt->workers[i], &op->msgs[k].msg);
        k++;
    }
    return &op->future;
}

void async__io_fd_new(int fd) {
    global_fd_t *g = fd >= 0 ? global_fd(fd) : NULL;
    if (g) atomic_fetch_add_explicit(&g->gen, 1, memory_order_acq_rel);
}

/* Made when the worker starts, so that waiting still works once fds run out
 * (an accept loop at EMFILE); if it fails here, the first wait tries again. */
void async__io_worker_init(async__worker_t *w) {
    int err;
    (void)io_worker(w, &err);
}

/* ---- shutdown --------------------------------------------------------------- */

/* The worker is exiting (every task has ended): ops still parked belong to
 * detached futures or plain threads; they end cancelled. */
void async__io_worker_exit(async__worker_t *w) {
    struct async__io_worker *io = w->io;
    if (!io) return;
    for (size_t fd = 0; fd < io->nfds; fd++)
        if (io->fds[fd]) drop_fd(io, io->fds[fd], (int)fd, ECANCELED);
    w->io = NULL;
#ifdef ASYNC_HAVE_LIBURING
    if (io->batch) io_uring_queue_exit(&io->ring);
#endif
    close(io->epfd);
    for (size_t i = 0; i < io->nfds; i++) free(io->fds[i]);
    free(io->fds);
    free(io);
}

void async__io_global_free(void) { async__fd_table_free(&global); }
