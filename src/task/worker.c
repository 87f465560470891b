/* A worker: one OS thread, one libuv loop, two queues of ready tasks and an
 * inbox through which other threads hand it tasks and messages.
 *
 * Queues. `runq` holds started tasks made ready again, and pinned tasks; only
 * this thread touches it. `newq` holds spawned tasks that have not started:
 * they own no stack or handle yet, so an idle worker may take them (under a
 * spinlock). Started tasks never migrate.
 *
 * The loop: drain the inbox, run up to RUN_BUDGET tasks (alternating between
 * the queues when both have some, so neither starves), then poll libuv —
 * without blocking while tasks are ready. With nothing ready, it spins
 * briefly on the inbox (when other workers exist, a message is likely to come
 * soon), tries to steal, and only then blocks. So a worker never sleeps while
 * it has ready tasks, never spins for long without them, and polls I/O at
 * least every RUN_BUDGET task runs or POLL_INTERVAL_NS, whichever is later
 * (Tokio polls its driver every 61 ticks).
 *
 * Wake-ups. The inbox is a lock-free LIFO (one CAS to push), drained whole
 * and reversed, so messages run in push order. A pusher rings the worker
 * (a write to its eventfd, in the epoll it sleeps in; libuv's uv_async when
 * it has no epoll of its own) only if the worker has said it is sleeping; the worker says so
 * and then looks at the inbox once more before it blocks. Both sides use
 * sequentially consistent operations, so one of them always sees the other:
 * no lost wake-up, and no system call while the worker is awake. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define RUN_BUDGET 61
#define STEAL_MAX 128   /* tasks taken from another worker at once (at most half its queue) */
#define SPIN_ROUNDS 500 /* at most ~20 us of `pause` on the VM we measure on */
#define SPIN_WINDOW_NS 20000
/* While tasks stay ready, I/O and timers are polled after every RUN_BUDGET
 * runs but no more often than this: one epoll_wait costs 1-2 us here, which
 * every 61 runs of short tasks was a tenth of a channel round trip
 * (docs/design.md, "Polling while busy"). */
#define POLL_INTERVAL_NS 50000

__thread async__worker_t *async__tls_worker;


void async__worker_runq_push(async__worker_t *w, async__task_t *t) {
    t->node.next = NULL;
    if (w->runq_tail)
        w->runq_tail->next = &t->node;
    else
        w->runq_head = &t->node;
    w->runq_tail = &t->node;
    atomic_store_explicit(&w->runq_len,
                          atomic_load_explicit(&w->runq_len, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void async__worker_runq_push_front(async__worker_t *w, async__task_t *t) {
    t->node.next = w->runq_head;
    w->runq_head = &t->node;
    if (!w->runq_tail) w->runq_tail = &t->node;
    atomic_store_explicit(&w->runq_len,
                          atomic_load_explicit(&w->runq_len, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static async__task_t *runq_pop(async__worker_t *w) {
    async__msg_t *m = w->runq_head;
    if (!m) return NULL;
    w->runq_head = m->next;
    if (!w->runq_head) w->runq_tail = NULL;
    atomic_store_explicit(&w->runq_len,
                          atomic_load_explicit(&w->runq_len, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    return ASYNC_CONTAINER_OF(m, async__task_t, node);
}

void async__worker_newq_push(async__worker_t *w, async__task_t *t) {
    t->node.next = NULL;
    pthread_spin_lock(&w->newq_lock);
    if (w->newq_tail)
        w->newq_tail->next = &t->node;
    else
        w->newq_head = &t->node;
    w->newq_tail = &t->node;
    atomic_store_explicit(&w->newq_len,
                          atomic_load_explicit(&w->newq_len, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    size_t len = atomic_load_explicit(&w->newq_len, memory_order_relaxed);
    pthread_spin_unlock(&w->newq_lock);
    /* a sleeping worker may take only from two tasks on (see steal) */
    if (len >= 2 && atomic_load_explicit(&async__rt.sleepers, memory_order_relaxed) > 0)
        async__runtime_wake_sleeper();
}

static async__task_t *newq_pop(async__worker_t *w) {
    if (atomic_load_explicit(&w->newq_len, memory_order_relaxed) == 0) return NULL;
    pthread_spin_lock(&w->newq_lock);
    async__msg_t *m = w->newq_head;
    if (m) {
        w->newq_head = m->next;
        if (!w->newq_head) w->newq_tail = NULL;
        atomic_store_explicit(&w->newq_len,
                              atomic_load_explicit(&w->newq_len, memory_order_relaxed) - 1,
                              memory_order_relaxed);
    }
    pthread_spin_unlock(&w->newq_lock);
    return m ? ASYNC_CONTAINER_OF(m, async__task_t, node) : NULL;
}

/* Takes up to half of another worker's unstarted tasks (oldest first) onto our
 * own newq, rounded down: the newest stays with its spawner, which will most
 * likely run it at its next await (a task that spawns a helper and waits on it
 * keeps the pair on one worker, where waking the other costs no thread hop).
 * Only when the victim has run no task since our last look, it is stuck in
 * one long task, and we take its last one too. */
static size_t steal(async__worker_t *w) {
    async__runtime_t *rt = &async__rt;
    unsigned n = rt->nworkers;
    if (n < 2) return 0;
    for (unsigned k = 1; k < n; k++) {
        async__worker_t *v = &rt->workers[(w->id - 1 + k) % n];
        size_t avail = atomic_load_explicit(&v->newq_len, memory_order_relaxed);
        if (avail == 0) continue;
        unsigned long ticks = atomic_load_explicit(&v->ticks, memory_order_relaxed);
        bool stuck = w->memo_victim == v && w->memo_ticks == ticks;
        w->memo_victim = v;
        w->memo_ticks = ticks;
        if (avail < 2 && !stuck) continue;
        if (pthread_spin_trylock(&v->newq_lock) != 0) continue;
        avail = atomic_load_explicit(&v->newq_len, memory_order_relaxed);
        size_t take = stuck ? (avail + 1) / 2 : avail / 2;
        if (take > STEAL_MAX) take = STEAL_MAX;
        async__msg_t *first = v->newq_head, *last = NULL, *m = first;
        for (size_t i = 0; i < take; i++) {
            async__task_t *t = ASYNC_CONTAINER_OF(m, async__task_t, node);
            atomic_store_explicit(&t->worker, w, memory_order_relaxed);
            last = m;
            m = m->next;
        }
        if (take) {
            v->newq_head = m;
            if (!m) v->newq_tail = NULL;
            atomic_store_explicit(&v->newq_len, avail - take, memory_order_relaxed);
        }
        pthread_spin_unlock(&v->newq_lock);
        if (!take) continue;
        last->next = NULL;
        pthread_spin_lock(&w->newq_lock);
        if (w->newq_tail)
            w->newq_tail->next = first;
        else
            w->newq_head = first;
        w->newq_tail = last;
        atomic_store_explicit(&w->newq_len,
                              atomic_load_explicit(&w->newq_len, memory_order_relaxed) + take,
                              memory_order_relaxed);
        pthread_spin_unlock(&w->newq_lock);
        async__count(&w->count.steals, take);
        return take;
    }
    return 0;
}

void async__worker_post(async__worker_t *w, async__msg_t *m) {
    async__msg_t *head = atomic_load_explicit(&w->inbox, memory_order_relaxed);
    do {
        m->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&w->inbox, &head, m, memory_order_seq_cst,
                                                    memory_order_relaxed));
    if (atomic_load_explicit(&w->sleeping, memory_order_seq_cst)) async__worker_ring(w);
}

void async__worker_ring(async__worker_t *w) {
    if (w->wakefd < 0) {
        uv_async_send(&w->wakeup);
        return;
    }
    int saved = errno; /* posting is no business of the caller's errno */
    uint64_t one = 1;
    ssize_t r = write(w->wakefd, &one, sizeof one);
    (void)r; /* EAGAIN only when the counter is near 2^64: the worker is rung already */
    errno = saved;
}

/* Runs every message in the inbox, oldest first. Returns how many ran. */
static size_t drain_inbox(async__worker_t *w) {
    if (!atomic_load_explicit(&w->inbox, memory_order_relaxed)) return 0; /* no RMW when empty */
    async__msg_t *m = atomic_exchange_explicit(&w->inbox, NULL, memory_order_acquire);
    if (!m) return 0;
    async__msg_t *fifo = NULL;
    size_t n = 0;
    while (m) {
        async__msg_t *next = m->next;
        m->next = fifo;
        fifo = m;
        m = next;
        n++;
    }
    while (fifo) {
        async__msg_t *next = fifo->next;
        fifo->run(w, fifo);
        fifo = next;
    }
    return n;
}

static void on_wakeup(uv_async_t *h) {
    async__worker_t *w = h->data;
    if (drain_inbox(w)) w->woken_by_inbox = true;
}

/* Polls the worker's epoll (io.c), blocking until something comes if `block`,
 * and runs libuv's loop without blocking when its fd was ready or a timer is
 * due: a wake-up by socket readiness alone costs one epoll_wait. */
static void poll_io(async__worker_t *w, bool block) {
    uv_loop_t *loop = &w->loop;
    int timeout = 0;
    if (block) {
        uv_update_time(loop);
        timeout = uv_backend_timeout(loop); /* -1: no timer; 0: libuv has work now */
    }
    async__count(&w->count.polls, 1);
    bool run = async__io_poll(w, timeout);         /* our epoll is always looked at */
    if (!run && block && timeout == 0) run = true; /* libuv had work already */
    if (!run && timeout != -1) {                   /* a timer may have come due meanwhile */
        uv_update_time(loop);
        run = uv_backend_timeout(loop) == 0;
    }
    if (run) uv_run(loop, UV_RUN_NOWAIT);
}

static bool has_work(async__worker_t *w) {
    return w->runq_head || atomic_load_explicit(&w->newq_len, memory_order_relaxed) ||
           atomic_load_explicit(&w->inbox, memory_order_relaxed);
}

static void run_ready(async__worker_t *w) {
    bool prefer_new = false;
    for (int budget = RUN_BUDGET; budget > 0; budget--) {
        async__task_t *t = NULL;
        if (prefer_new) t = newq_pop(w);
        if (!t) t = runq_pop(w);
        if (!t && !prefer_new) t = newq_pop(w);
        if (!t) break;
        prefer_new = !prefer_new;
        async__task_run(w, t);
    }
}

/* The spin adapts to what wakes this worker: it doubles when a message from
 * another thread arrived during the spin, or soon after the worker went to
 * sleep (a longer spin would have caught it), and halves when the spin ran out
 * and what came was I/O, a timer, or a message long after. A server whose
 * wake-ups are all socket readiness stops spinning, and leaves the CPU to
 * whatever else runs on the machine; tasks that wake each other across
 * workers keep the full spin. */
static void spin_grow(async__worker_t *w) {
    unsigned s = w->spin_rounds * 2 + 16;
    w->spin_rounds = s < SPIN_ROUNDS ? s : SPIN_ROUNDS;
}

/* Under the virtual clock, instead of blocking in poll_io: look at I/O once
 * more, then park with the clock (vclock.c), which may move and make tasks
 * ready here instead. A waker that claimed `sleeping` (to have this worker
 * steal) rang it, and that look may have taken the ring: blocking then would
 * sleep with the flag clear, where a post rings nobody, and the message
 * would wait for good (a thousand sleepers on eight workers hung about one
 * run in a hundred on a loaded machine). So a claimed flag returns. */
static void vclock_sleep(async__worker_t *w) {
    poll_io(w, false);
    if (has_work(w) || !atomic_load_explicit(&w->sleeping, memory_order_seq_cst) ||
        async__vclock_park(w))
        return;
    poll_io(w, true);
    async__vclock_unpark(w);
}

/* Nothing is ready: spin a little, steal, or block in the loop until woken. */
static void idle(async__worker_t *w) {
    async__runtime_t *rt = &async__rt;
    bool several = rt->nworkers > 1 && !w->stopping && !w->waiter; /* the waiter only waits */
    if (several) {
        if (steal(w)) return;
        for (unsigned i = 0; i < w->spin_rounds; i++) {
            if (atomic_load_explicit(&w->inbox, memory_order_relaxed)) {
                spin_grow(w);
                return;
            }
            async__cpu_relax();
        }
        if (steal(w)) return;
    }
    atomic_store_explicit(&w->sleeping, 1, memory_order_seq_cst);
    /* the waiter is not counted: it has nothing to steal with */
    if (!w->waiter) atomic_fetch_add_explicit(&rt->sleepers, 1, memory_order_seq_cst);
    /* a stopping worker still steals before it sleeps; the waiter never does */
    if (atomic_load_explicit(&w->inbox, memory_order_seq_cst) == NULL &&
        !(rt->nworkers > 1 && !w->waiter && steal(w))) {
        /* the clock is read only here, on the way to a system call that blocks:
         * busy time is measured as time not spent asleep */
        uint64_t t0 = uv_hrtime();
        async__count(&w->count.parks, 1);
        atomic_store_explicit(&w->count.parked_since, t0, memory_order_relaxed);
        w->woken_by_inbox = false;
        if (ASYNC_UNLIKELY(rt->vclock))
            vclock_sleep(w);
        else
            poll_io(w, true);
        uint64_t t1 = uv_hrtime();
        atomic_store_explicit(&w->now_ms, (int64_t)(t1 / 1000000), memory_order_relaxed);
        atomic_store_explicit(&w->count.parked_since, 0, memory_order_relaxed);
        async__count(&w->count.parked_ns, t1 - t0);
        /* rung through the eventfd: the messages are still in the inbox */
        if (atomic_load_explicit(&w->inbox, memory_order_relaxed)) w->woken_by_inbox = true;
        if (w->woken_by_inbox) async__count(&w->count.unparks, 1);
        if (several) {
            if (w->woken_by_inbox && t1 - t0 < SPIN_WINDOW_NS)
                spin_grow(w);
            else
                w->spin_rounds /= 2;
        }
    }
    /* a waker that claimed our flag has also taken our count */
    if (atomic_exchange_explicit(&w->sleeping, 0, memory_order_seq_cst) && !w->waiter)
        atomic_fetch_sub_explicit(&rt->sleepers, 1, memory_order_relaxed);
}

static void close_for_shutdown(uv_handle_t *h, void *arg) {
    async__worker_t *w = arg;
    if (h == (uv_handle_t *)&w->wakeup || uv_is_closing(h)) return;
    async__handle_owner_t *owner = h->data;
    if (owner && owner->shutdown)
        owner->shutdown(h);
    else
        uv_close(h, NULL);
}

static void *worker_main(void *arg) {
    async__worker_t *w = arg;
    async__tls_worker = w;
    async__fiber_init_thread(&w->sched);
    async__stack_install_guard_handler();
    async__stall_thread_init();
    /* libuv adds a handle's fd to its epoll only inside uv_run, and the worker
     * blocks on its own epoll: one turn now registers the wake-up eventfd
     * before the first block (every other handle asyncstd opens is a timer) */
    uv_run(&w->loop, UV_RUN_NOWAIT);
    atomic_store_explicit(&w->now_ms, (int64_t)(uv_hrtime() / 1000000), memory_order_relaxed);
    while (!w->exiting) {
        drain_inbox(w);
        run_ready(w);
        if (w->exiting) break;
        /* one clock read per turn, not per park: the time tasks park at */
        uint64_t now = uv_hrtime();
        atomic_store_explicit(&w->now_ms, (int64_t)(now / 1000000), memory_order_relaxed);
        if (has_work(w)) {
            if (now - w->last_poll_ns >= POLL_INTERVAL_NS) {
                poll_io(w, false);
                w->last_poll_ns = now;
            }
            continue;
        }
        idle(w);
    }
    /* shutdown: every task has ended; cancel and close what is left on the loop */
    drain_inbox(w);
    async__io_worker_exit(w);
    uv_walk(&w->loop, close_for_shutdown, w);
    if (async__rt.vclock) async__vclock_worker_exit(w); /* fired ones are in the inbox */
    uv_run(&w->loop, UV_RUN_NOWAIT);
    drain_inbox(w);
    uv_close((uv_handle_t *)&w->wakeup, NULL);
    while (uv_run(&w->loop, UV_RUN_DEFAULT) != 0) {
    }
    uv_loop_close(&w->loop);
    async__stack_flush(w);
    async__obj_flush(w);
    free(w->fs_seen);
    w->fs_seen = NULL;
    async__stack_remove_guard_handler();
    async__tls_worker = NULL;
    return NULL;
}

static void on_stop(async__worker_t *w, async__msg_t *m) {
    (void)m;
    w->stopping = true;
    async__task_cancel_all(w);
}

static void on_exit_msg(async__worker_t *w, async__msg_t *m) {
    (void)m;
    w->exiting = true;
}

int async__worker_start(async__worker_t *w, unsigned id, bool waiter) {
    memset(w, 0, sizeof *w);
    w->id = id;
    w->next_id = id;
    w->waiter = waiter;
    int r = uv_loop_init(&w->loop);
    if (r) {
        errno = -r;
        return -1;
    }
    r = uv_async_init(&w->loop, &w->wakeup, on_wakeup);
    if (r) {
        uv_loop_close(&w->loop);
        errno = -r;
        return -1;
    }
    w->wakeup.data = w;
    w->spin_rounds = SPIN_ROUNDS;
    w->wakefd = -1;           /* until the worker's epoll has one */
    async__io_worker_init(w); /* before the thread: every fd is made by the time init returns */
    w->stop_msg.run = on_stop;
    w->exit_msg.run = on_exit_msg;
    atomic_init(&w->inbox, NULL);
    atomic_init(&w->newq_len, 0);
    atomic_init(&w->runq_len, 0);
    atomic_init(&w->sleeping, 0);
    pthread_spin_init(&w->newq_lock, PTHREAD_PROCESS_PRIVATE);
    pthread_spin_init(&w->tasks_lock, PTHREAD_PROCESS_PRIVATE);
    atomic_init(&w->reg_busy, 0);
    atomic_init(&w->reg_dump, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    r = pthread_create(&w->thread, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (r) {
        async__io_worker_exit(w);
        if (w->wakefd >= 0) close(w->wakefd);
        uv_close((uv_handle_t *)&w->wakeup, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
        pthread_spin_destroy(&w->newq_lock);
        pthread_spin_destroy(&w->tasks_lock);
        errno = r;
        return -1;
    }
    return 0;
}

void async__worker_stop(async__worker_t *w) { async__worker_post(w, &w->stop_msg); }

void async__worker_exit(async__worker_t *w) { async__worker_post(w, &w->exit_msg); }

void async__worker_join(async__worker_t *w) {
    pthread_join(w->thread, NULL);
    if (w->wakefd >= 0) close(w->wakefd); /* nobody rings a joined worker */
    w->wakefd = -1;
    pthread_spin_destroy(&w->newq_lock);
    pthread_spin_destroy(&w->tasks_lock);
}
