/* The tree walk (async_walk_*): depth-first, pre-order, with a stack of open
 * directories read in getdents64 batches.
 *
 * advance() produces the next entry. It is written to run in two modes: on
 * the caller's thread it may only use what is already in memory and stops,
 * changing nothing, at the first step that needs a system call (a refill,
 * an lstat for an unknown type, opening a directory to enter); the same
 * call then runs again on a pool thread, where it may block. So a walk
 * over a directory of plain files costs one pool hop per batch, not per
 * entry. async__fs_walk_step is the blocking form, for the tree helpers. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "walk.h"

static int walk_push(async_walk_t *w, int fd, size_t pathlen) {
    if (w->depth_n == w->depth_cap) {
        size_t cap = w->depth_cap ? w->depth_cap * 2 : 8;
        walk_frame_t *f = realloc(w->frames, cap * sizeof *f);
        if (!f) return ENOMEM;
        w->frames = f;
        w->depth_cap = cap;
    }
    fs_dirbuf_t *b = malloc(sizeof *b);
    if (!b) return ENOMEM;
    b->fd = fd;
    b->pos = b->len = 0;
    b->eof = false;
    w->frames[w->depth_n].b = b;
    w->frames[w->depth_n].pathlen = pathlen;
    w->depth_n++;
    return 0;
}

static void walk_pop(async_walk_t *w) {
    walk_frame_t *f = &w->frames[--w->depth_n];
    close(f->b->fd);
    free(f->b);
}

static int path_set(async_walk_t *w, size_t base, const char *name) {
    size_t n = strlen(name);
    size_t need = base + 1 + n + 1;
    if (need > w->path_cap) {
        size_t cap = w->path_cap ? w->path_cap : 256;
        while (cap < need) cap *= 2;
        char *p = realloc(w->path, cap);
        if (!p) return ENOMEM;
        w->path = p;
        w->path_cap = cap;
    }
    if (base && w->path[base - 1] != '/') w->path[base++] = '/';
    memcpy(w->path + base, name, n + 1);
    w->name_at = base;
    return 0;
}

static int type_of(mode_t m) {
    if (S_ISREG(m)) return DT_REG;
    if (S_ISDIR(m)) return DT_DIR;
    if (S_ISLNK(m)) return DT_LNK;
    if (S_ISCHR(m)) return DT_CHR;
    if (S_ISBLK(m)) return DT_BLK;
    if (S_ISFIFO(m)) return DT_FIFO;
    if (S_ISSOCK(m)) return DT_SOCK;
    return DT_UNKNOWN;
}

/* Fills the entry for w->path (already set); opens it when it is a
 * directory to enter. Blocking. */
static void enter(async_walk_t *w, int dirfd, const char *name, int type, int depth) {
    async_walk_entry_t *e = &w->ent;
    e->path = w->path;
    e->name = w->path + w->name_at;
    e->type = type;
    e->depth = depth;
    e->post = 0;
    e->error = 0;
    w->pushed = false;
    if (type != DT_DIR) return;
    int fl = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (w->flags & ASYNC_WALK_FOLLOW ? 0 : O_NOFOLLOW);
    int fd = openat(dirfd, name, fl);
    if (fd < 0) {
        e->error = errno;
        return;
    }
    int err = walk_push(w, fd, strlen(w->path));
    if (err) {
        close(fd);
        e->error = err;
        return;
    }
    w->pushed = true;
}

/* Reports a directory just left (its path is w->path cut at `len`). */
static int report_post(async_walk_t *w, size_t len, int err) {
    w->path[len] = 0;
    char *slash = w->depth_n ? strrchr(w->path, '/') : NULL;
    w->name_at = slash ? (size_t)(slash + 1 - w->path) : 0;
    w->ent.path = w->path;
    w->ent.name = w->path + w->name_at;
    w->ent.depth = (int)w->depth_n;
    w->ent.type = DT_DIR;
    w->ent.post = 1;
    w->ent.error = err;
    w->pushed = false;
    return 1;
}

/* 1: an entry in w->ent; 0: the end; -1: error (errno); 2: needs to block. */
static int advance(async_walk_t *w, bool can_block) {
    if (!w->started) {
        if (!can_block) return 2;
        struct stat st;
        int r = w->flags & ASYNC_WALK_FOLLOW ? stat(w->root, &st) : lstat(w->root, &st);
        w->started = true;
        if (r < 0) {
            w->done = true;
            return -1;
        }
        int err = path_set(w, 0, w->root);
        if (err) {
            w->done = true;
            errno = err;
            return -1;
        }
        w->name_at = 0;
        enter(w, AT_FDCWD, w->root, type_of(st.st_mode), 0);
        return 1;
    }
    while (w->depth_n > 0) {
        walk_frame_t *f = &w->frames[w->depth_n - 1];
        struct dirent64_view v;
        if (!async__fs_dirbuf_peek(f->b, &v)) {
            if (!f->b->eof) {
                if (!can_block) return 2;
                int err = async__fs_dirbuf_fill(f->b);
                if (err) { /* report the directory again with the error, and leave it */
                    size_t len = f->pathlen;
                    walk_pop(w);
                    return report_post(w, len, err);
                }
                continue;
            }
            size_t len = f->pathlen;
            walk_pop(w);
            if (w->flags & ASYNC_WALK_POST) return report_post(w, len, 0);
            continue;
        }
        const char *nm = v.name;
        if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0))) {
            async__fs_dirbuf_consume(f->b);
            continue;
        }
        int type = v.type;
        bool follow_link = type == DT_LNK && (w->flags & ASYNC_WALK_FOLLOW);
        if ((type == DT_UNKNOWN || follow_link || type == DT_DIR) && !can_block) return 2;
        int err = path_set(w, f->pathlen, nm);
        if (err) {
            errno = err;
            return -1;
        }
        if (type == DT_UNKNOWN || follow_link) {
            struct stat st;
            int fl = follow_link ? 0 : AT_SYMLINK_NOFOLLOW;
            if (fstatat(f->b->fd, nm, &st, fl) == 0)
                type = type_of(st.st_mode);
            else if (type == DT_UNKNOWN)
                type = DT_REG; /* vanished or unreadable: reported as a plain entry */
        }
        /* the name lives in the batch buffer: enter() uses it before moving on */
        int depth = (int)w->depth_n;
        int dfd = f->b->fd;
        enter(w, dfd, nm, type, depth);
        f = &w->frames[depth - 1]; /* the stack may have moved */
        async__fs_dirbuf_consume(f->b);
        return 1;
    }
    w->done = true;
    return 0;
}

int async__fs_walk_step(async_walk_t *w) {
    if (w->done) return 0;
    return advance(w, true);
}

async_walk_t *async_walk_open(const char *root, int flags) {
    if (!root || (flags & ~(ASYNC_WALK_POST | ASYNC_WALK_FOLLOW))) {
        errno = EINVAL;
        return NULL;
    }
    async_walk_t *w = calloc(1, sizeof *w);
    if (!w || !(w->root = strdup(root))) {
        free(w);
        errno = ENOMEM;
        return NULL;
    }
    w->flags = flags;
    atomic_init(&w->busy, false);
    return w;
}

static intptr_t run_walk(fs_op_t *op) {
    async_walk_t *w = op->buf;
    int r = advance(w, true);
    int err = errno;
    atomic_store_explicit(&w->busy, false, memory_order_release);
    errno = err;
    return r == 1 ? (intptr_t)&w->ent : r == 0 ? 0 : -1;
}

/* The step ended without running (cancelled while queued, or no runner):
 * the walk is free again, or every later call would say EBUSY. */
static intptr_t unrun_walk(fs_op_t *op) {
    async_walk_t *w = op->buf;
    atomic_store_explicit(&w->busy, false, memory_order_release);
    return -1;
}

static async_future_t *unclaim_walk(async_walk_t *w, async_future_t *result) {
    atomic_store_explicit(&w->busy, false, memory_order_release);
    return result;
}

async_future_t *async_walk_next(async_walk_t *w) {
    if (!w) return async__future_failed(EINVAL);
    /* claimed in one step: two callers at once must not both advance */
    if (atomic_exchange_explicit(&w->busy, true, memory_order_acquire))
        return async__future_failed(EBUSY);
    if (w->done) return unclaim_walk(w, async__future_done(0));
    /* reserved before advance() consumes an entry: without memory, the entry stays */
    async_future_t *res = async__future_reserve();
    if (!res) return unclaim_walk(w, NULL);
    int r = advance(w, false);
    int err = errno;
    if (r == 1) return unclaim_walk(w, async__future_fill(res, (intptr_t)&w->ent, 0));
    if (r == 0) return unclaim_walk(w, async__future_fill(res, 0, 0));
    if (r == -1) return unclaim_walk(w, async__future_fill(res, -1, err));
    async__future_unreserve(res);
    fs_op_t *op = async__fs_op_new(run_walk, NULL, NULL);
    if (!op) return unclaim_walk(w, NULL);
    op->buf = w;
    op->unrun = unrun_walk;
    return async__fs_submit(op); /* run_walk or unrun_walk lets go */
}

int async_walk_skip(async_walk_t *w) {
    if (!w || !w->pushed) {
        errno = EINVAL;
        return -1;
    }
    walk_pop(w);
    w->pushed = false;
    return 0;
}

void async_walk_close(async_walk_t *w) {
    if (!w) return;
    while (w->depth_n) walk_pop(w);
    free(w->frames);
    free(w->path);
    free(w->root);
    free(w);
}
