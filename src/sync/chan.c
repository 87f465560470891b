/* async_chan_*: channels of fixed-size items for many senders and receivers.
 * One small lock guards the ring buffer and two FIFO queues of waiters
 * (blocked senders, blocked receivers). An item goes straight from a sender
 * to a waiting receiver's buffer when one waits, else into the ring, else the
 * sender waits with its item (a pointer to the caller's memory, valid until
 * its future settles); a receiver that frees a slot pulls the oldest blocked
 * sender's item into the ring. Capacity 0 makes every exchange a direct hand-off. */
#include <stdlib.h>

#include "internal.h"

#define UNBOUNDED_START 16
#define ELEM_MAX 65536

struct async_chan {
    async__slock_t lock;
    bool closed;
    size_t esize;
    size_t cap;       /* the capacity asked for (ASYNC_CHAN_UNBOUNDED: grows) */
    size_t slots;     /* slots allocated in buf */
    size_t head, len; /* ring: oldest item at head */
    char *buf;
    async__wq_t sendq, recvq;
};

async_chan_t *async_chan_new(size_t elem_size, size_t capacity) {
    if (elem_size == 0 || elem_size > ELEM_MAX) {
        errno = EINVAL;
        return NULL;
    }
    size_t slots = capacity == ASYNC_CHAN_UNBOUNDED ? UNBOUNDED_START : capacity;
    if (slots && slots > SIZE_MAX / elem_size) {
        errno = ENOMEM;
        return NULL;
    }
    async_chan_t *c = calloc(1, sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    if (slots && !(c->buf = malloc(slots * elem_size))) {
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    c->esize = elem_size;
    c->cap = capacity;
    c->slots = slots;
    return c;
}

/* i < slots and head < slots: a subtraction instead of a division */
static char *slot(async_chan_t *c, size_t i) {
    size_t k = c->head + i;
    if (k >= c->slots) k -= c->slots;
    return c->buf + k * c->esize;
}

/* Word-sized items (the common case) are copied inline, not through memcpy. */
static inline void copy(void *dst, const void *src, size_t n) {
    if (n == sizeof(intptr_t))
        memcpy(dst, src, sizeof(intptr_t));
    else
        memcpy(dst, src, n);
}

/* Under the lock: room for one more buffered item (growing an unbounded ring).
 * 0 made, -1 full (the sender must wait), or ENOMEM. */
static int make_room(async_chan_t *c) {
    if (c->len < c->slots) return 0;
    if (c->cap != ASYNC_CHAN_UNBOUNDED) return -1;
    if (c->slots > SIZE_MAX / 2 / c->esize) return ENOMEM;
    size_t n = c->slots * 2;
    char *nb = malloc(n * c->esize);
    if (!nb) return ENOMEM;
    for (size_t i = 0; i < c->len; i++) memcpy(nb + i * c->esize, slot(c, i), c->esize);
    free(c->buf);
    c->buf = nb;
    c->slots = n;
    c->head = 0;
    return 0;
}

static void push(async_chan_t *c, const void *elem) {
    copy(slot(c, c->len), elem, c->esize);
    c->len++;
}

/* Under the lock: 0 sent, -1 must wait, or an errno. */
static int try_send_locked(async_chan_t *c, const void *elem, async__sw_t **grants) {
    if (c->closed) return EPIPE;
    async__sw_t *r = async__wq_head(&c->recvq);
    if (r) {
        copy(r->buf, elem, c->esize);
        async__sw_grant(r, 1, 0, grants);
        return 0;
    }
    if (async__wq_head(&c->sendq)) return -1; /* senders before us wait: keep their order */
    int room = make_room(c);
    if (room) return room;
    push(c, elem);
    return 0;
}

/* Under the lock: 1 received, 0 closed and empty, -1 must wait. */
static int try_recv_locked(async_chan_t *c, void *elem, async__sw_t **grants) {
    async__sw_t *s = async__wq_head(&c->sendq);
    if (c->len) {
        copy(elem, slot(c, 0), c->esize);
        if (++c->head == c->slots) c->head = 0;
        c->len--;
        if (s) { /* the oldest blocked sender takes the freed slot */
            push(c, s->buf);
            async__sw_grant(s, 0, 0, grants);
        }
        return 1;
    }
    if (s) { /* rendezvous: straight from the sender */
        copy(elem, s->buf, c->esize);
        async__sw_grant(s, 0, 0, grants);
        return 1;
    }
    return c->closed ? 0 : -1;
}

/* The waiter is allocated under the lock: one lock round trip per call
 * (allocation is a per-worker free-list pop), half the atomics of a second try. */
async_future_t *async_chan_send(async_chan_t *c, const void *elem) {
    if (!c || !elem) return async__future_failed(EINVAL);
    async__sw_t *grants = NULL;
    async__slock_lock(&c->lock);
    int r = try_send_locked(c, elem, &grants);
    if (ASYNC_LIKELY(r >= 0)) {
        async__slock_unlock(&c->lock);
        async__sw_complete_list(grants);
        return r == 0 ? async__sync_done(0) : async__future_failed(r);
    }
    async__sw_t *w = async__sw_new(c, &c->lock, &c->sendq, NULL);
    if (w) {
        w->what = "channel send";
        w->buf = (void *)elem;
        async__sw_enqueue(w);
    }
    async__slock_unlock(&c->lock);
    return w ? &w->future : NULL;
}

async_future_t *async_chan_recv(async_chan_t *c, void *elem) {
    if (!c || !elem) return async__future_failed(EINVAL);
    async__sw_t *grants = NULL;
    async__slock_lock(&c->lock);
    int r = try_recv_locked(c, elem, &grants);
    if (ASYNC_LIKELY(r >= 0)) {
        async__slock_unlock(&c->lock);
        async__sw_complete_list(grants);
        return async__sync_done(r);
    }
    async__sw_t *w = async__sw_new(c, &c->lock, &c->recvq, NULL);
    if (w) {
        w->what = "channel recv";
        w->buf = elem;
        async__sw_enqueue(w);
    }
    async__slock_unlock(&c->lock);
    return w ? &w->future : NULL;
}

int async_chan_trysend(async_chan_t *c, const void *elem) {
    if (!c || !elem) {
        errno = EINVAL;
        return -1;
    }
    async__sw_t *grants = NULL;
    async__slock_lock(&c->lock);
    int r = try_send_locked(c, elem, &grants);
    async__slock_unlock(&c->lock);
    async__sw_complete_list(grants);
    if (r == 0) return 0;
    errno = r < 0 ? EAGAIN : r;
    return -1;
}

int async_chan_tryrecv(async_chan_t *c, void *elem) {
    if (!c || !elem) {
        errno = EINVAL;
        return -1;
    }
    async__sw_t *grants = NULL;
    async__slock_lock(&c->lock);
    int r = try_recv_locked(c, elem, &grants);
    async__slock_unlock(&c->lock);
    async__sw_complete_list(grants);
    if (r >= 0) return r;
    errno = EAGAIN;
    return -1;
}

int async_chan_close(async_chan_t *c) {
    if (!c) {
        errno = EINVAL;
        return -1;
    }
    async__sw_t *grants = NULL;
    async__slock_lock(&c->lock);
    bool was = c->closed;
    c->closed = true;
    if (!was) {
        while (async__wq_head(&c->sendq))
            async__sw_grant(async__wq_head(&c->sendq), -1, EPIPE, &grants);
        /* receivers wait only on an empty channel: all get end-of-channel */
        while (async__wq_head(&c->recvq)) async__sw_grant(async__wq_head(&c->recvq), 0, 0, &grants);
    }
    async__slock_unlock(&c->lock);
    if (was) {
        errno = EPIPE;
        return -1;
    }
    async__sw_complete_list(grants);
    return 0;
}

size_t async_chan_len(async_chan_t *c) {
    if (!c) return 0;
    async__slock_lock(&c->lock);
    size_t n = c->len;
    async__slock_unlock(&c->lock);
    return n;
}

size_t async_chan_cap(async_chan_t *c) { return c ? c->cap : 0; }

int async_chan_free(async_chan_t *c) {
    if (!c) return 0;
    async__slock_lock(&c->lock);
    bool busy = async__wq_head(&c->sendq) || async__wq_head(&c->recvq);
    async__slock_unlock(&c->lock);
    if (busy) {
        errno = EBUSY;
        return -1;
    }
    free(c->buf);
    free(c);
    return 0;
}
