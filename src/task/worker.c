/* A worker: one OS thread, one libuv loop, a run queue of ready tasks and an
 * inbox through which other threads hand it tasks and messages.
 *
 * The loop alternates: drain the inbox, run up to RUN_BUDGET ready tasks,
 * then poll libuv — without blocking while tasks are ready, blocking when
 * none are. So a worker never sleeps with ready tasks, never spins without
 * them, and I/O is polled at least every RUN_BUDGET task runs even when tasks
 * keep waking each other (Tokio polls its driver every 61 ticks; see
 * docs/design.md for the rule).
 *
 * The inbox is a lock-free LIFO (one CAS to push from any thread); the worker
 * takes it whole with one exchange and reverses it, so messages run in push
 * order. Pushers ring `wakeup` (uv_async_send, which writes the eventfd only
 * when it is not already pending). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RUN_BUDGET 61

__thread async__worker_t *async__tls_worker;

void async__worker_runq_push(async__worker_t *w, async__task_t *t) {
    t->node.next = NULL;
    if (w->runq_tail)
        w->runq_tail->next = &t->node;
    else
        w->runq_head = &t->node;
    w->runq_tail = &t->node;
    w->runq_len++;
}

static async__task_t *runq_pop(async__worker_t *w) {
    async__msg_t *m = w->runq_head;
    if (!m) return NULL;
    w->runq_head = m->next;
    if (!w->runq_head) w->runq_tail = NULL;
    w->runq_len--;
    return ASYNC_CONTAINER_OF(m, async__task_t, node);
}

void async__worker_post(async__worker_t *w, async__msg_t *m) {
    async__msg_t *head = atomic_load_explicit(&w->inbox, memory_order_relaxed);
    do {
        m->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&w->inbox, &head, m, memory_order_release,
                                                    memory_order_relaxed));
    if (head == NULL) uv_async_send(&w->wakeup); /* a non-empty inbox has already rung */
}

/* Runs every message in the inbox, oldest first. Returns how many ran. */
static size_t drain_inbox(async__worker_t *w) {
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

static void on_wakeup(uv_async_t *h) { drain_inbox(h->data); }

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
    while (!w->exiting) {
        drain_inbox(w);
        for (int budget = RUN_BUDGET; budget > 0; budget--) {
            async__task_t *t = runq_pop(w);
            if (!t) break;
            async__task_run(w, t);
        }
        if (w->exiting) break;
        /* drain again before blocking: pushes since the last drain rang the eventfd
         * anyway, but taking them now saves an epoll round trip */
        if (w->runq_head == NULL && drain_inbox(w) > 0) continue;
        uv_run(&w->loop, w->runq_head ? UV_RUN_NOWAIT : UV_RUN_ONCE);
    }
    /* shutdown: every task has ended; cancel and close what is left on the loop */
    drain_inbox(w);
    uv_walk(&w->loop, close_for_shutdown, w);
    uv_run(&w->loop, UV_RUN_NOWAIT);
    drain_inbox(w);
    uv_close((uv_handle_t *)&w->wakeup, NULL);
    while (uv_run(&w->loop, UV_RUN_DEFAULT) != 0) {
    }
    uv_loop_close(&w->loop);
    async__stack_flush(w);
    async__obj_flush(w);
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

int async__worker_start(async__worker_t *w, unsigned id) {
    memset(w, 0, sizeof *w);
    w->id = id;
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
    w->stop_msg.run = on_stop;
    w->exit_msg.run = on_exit_msg;
    atomic_init(&w->inbox, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    r = pthread_create(&w->thread, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (r) {
        uv_close((uv_handle_t *)&w->wakeup, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
        errno = r;
        return -1;
    }
    return 0;
}

void async__worker_stop(async__worker_t *w) { async__worker_post(w, &w->stop_msg); }

void async__worker_exit(async__worker_t *w) { async__worker_post(w, &w->exit_msg); }

void async__worker_join(async__worker_t *w) { pthread_join(w->thread, NULL); }
