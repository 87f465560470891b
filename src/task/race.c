/* The first of several waits: a race settles when one of its kids (io ops,
 * most often probes) has a result that decides it, or its timeout passes,
 * after ending the other kids and waiting until every one has settled.
 *
 * Everything happens on one worker: the race's kids are started there, so
 * they park there and their hooks (async__future_hook) run there, and a
 * cancel from another thread is posted there, behind the race's own start
 * message. So the race's state is plain memory. Kids are ended with
 * async_cancel, which on their own worker acts at once: a hook may thus run
 * inside another hook; `pending` holds the race open meanwhile. */
#include <stdlib.h>

#include "internal.h"

static void maybe_finish(async__race_t *r) {
    if (r->pending != 0 || r->how == RACE_RUNNING || r->finished) return;
    r->finished = true;
    intptr_t value = -1;
    int err = ECANCELED;
    if (r->how == RACE_FAILED)
        err = r->fail_err;
    else
        r->ops->end(r, &value, &err); /* even cancelled: a kid may have finished anyway */
    /* the kids' futures go before the race's: settling may free the race */
    for (size_t i = 0; i < r->nkids; i++) async_future_free(r->kids[i].f);
    if (r->timer.f) async_future_free(r->timer.f);
    async__future_complete(&r->future, err ? -1 : value, err);
}

/* Ends every kid still running; the race has been decided. */
static void end_kids(async__race_t *r) {
    r->pending++; /* their hooks run inside the cancels */
    for (size_t i = 0; i < r->nkids; i++)
        if (!r->kids[i].done) async_cancel(r->kids[i].f);
    if (r->timer.f && !r->timer.done) async_cancel(r->timer.f);
    r->pending--;
    maybe_finish(r);
}

static void decide(async__race_t *r, int how, async__race_kid_t *winner, int err) {
    if (r->how != RACE_RUNNING) return;
    r->how = how;
    r->winner = winner;
    r->fail_err = err;
    end_kids(r);
}

static void on_kid(intptr_t value, int err, void *arg) {
    async__race_kid_t *k = arg;
    async__race_t *r = k->race;
    k->value = value;
    k->err = err;
    k->done = true;
    r->pending--;
    /* either decide or maybe_finish, never both: each may free the race */
    if (r->how == RACE_RUNNING && k == &r->timer)
        decide(r, err ? RACE_CANCELLED : RACE_TIMEOUT, NULL, 0); /* err: the worker is exiting */
    else if (r->how == RACE_RUNNING && (!r->ops->decides || r->ops->decides(r, k)))
        decide(r, RACE_WON, k, 0);
    else
        maybe_finish(r);
}

static void watch(async__race_t *r, async__race_kid_t *k, async_future_t *f) {
    k->f = f;
    k->race = r;
    k->done = false;
    r->pending++;
    if (!async__future_hook(f, &k->hook, on_kid, k)) on_kid(f->value, f->err, k); /* settled */
}

int async__race_add(async__race_t *r, async_future_t *f) {
    if (!f) return ENOMEM;
    if (r->nkids == r->cap) {
        async_future_free(f);
        return ENOSPC;
    }
    async__race_kid_t *k = &r->kids[r->nkids++];
    watch(r, k, f);
    if (r->how != RACE_RUNNING && !k->done) async_cancel(f); /* decided while starting */
    return 0;
}

static void start_here(async__worker_t *w, async__race_t *r) {
    r->pending = 1; /* held while starting */
    if (w->exiting) {
        r->how = RACE_CANCELLED;
    } else {
        int err = r->ops->start(r);
        if (err) decide(r, RACE_FAILED, NULL, err);
        if (r->how == RACE_RUNNING && r->timeout_ms >= 0) {
            async_future_t *t = async__timer((uint64_t)r->timeout_ms, NULL);
            if (t)
                watch(r, &r->timer, t);
            else
                decide(r, RACE_FAILED, NULL, ENOMEM);
        }
    }
    r->pending--;
    maybe_finish(r);
}

static void on_start_msg(async__worker_t *w, async__msg_t *m) {
    async__race_t *r = ASYNC_CONTAINER_OF(m, async__race_t, start_msg);
    start_here(w, r);
    async__future_unref(&r->future); /* the message's hold */
}

static void cancel_here(async__race_t *r) { decide(r, RACE_CANCELLED, NULL, 0); }

static void on_cancel_msg(async__worker_t *w, async__msg_t *m) {
    (void)w;
    async__race_t *r = ASYNC_CONTAINER_OF(m, async__race_t, cancel_msg);
    cancel_here(r);
    async__future_unref(&r->future); /* the message's hold */
}

/* The start message, if any, runs before a cancel message: one FIFO inbox. */
static void race_cancel(async_future_t *f) {
    async__race_t *r = (async__race_t *)f;
    if (async__tls_worker == r->worker) {
        cancel_here(r);
        return;
    }
    async__future_ref(f);
    r->cancel_msg.run = on_cancel_msg;
    async__worker_post(r->worker, &r->cancel_msg);
}

static void race_release(async_future_t *f) {
    async__race_t *r = (async__race_t *)f;
    r->ops->release(r);
}

static void race_describe(const async_future_t *f, async__wait_t *out) {
    const async__race_t *r = (const async__race_t *)f;
    if (r->ops->describe)
        r->ops->describe(r, out);
    else
        async__wait_set(out, ASYNC_WAIT_FUTURE, NULL, NULL, f, NULL, 0);
}

static const async__future_ops_t race_future_ops = {race_cancel, race_release, race_describe};

void async__race_init(async__race_t *r, const async__race_ops_t *ops, async__race_kid_t *kids,
                      size_t cap, int64_t timeout_ms) {
    async__future_init(&r->future, &race_future_ops);
    r->ops = ops;
    r->kids = kids;
    r->cap = cap;
    r->nkids = 0;
    r->timeout_ms = timeout_ms;
    r->how = RACE_RUNNING;
    r->finished = false;
    r->timer.f = NULL;
}

async_future_t *async__race_run(async__race_t *r) {
    async__worker_t *w = async__tls_worker;
    if (w) {
        r->worker = w;
        start_here(w, r);
        return &r->future;
    }
    if (!async__runtime()) {
        r->how = RACE_FAILED;
        r->fail_err = errno;
        r->pending = 0;
        maybe_finish(r);
        return &r->future;
    }
    r->worker = async__runtime_waiter(); /* see async__runtime_t */
    r->start_msg.run = on_start_msg;
    async__future_ref(&r->future);
    async__worker_post(r->worker, &r->start_msg);
    return &r->future;
}
