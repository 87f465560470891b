/* The walk's state, shared by walk.c and the tree helpers of whole.c. */
#ifndef ASYNC_FS_WALK_H
#define ASYNC_FS_WALK_H

#include "internal.h"

typedef struct walk_frame {
    fs_dirbuf_t *b; /* the open directory and its batch */
    size_t pathlen; /* length of its path in the walk's path buffer */
} walk_frame_t;

struct async_walk {
    int flags;
    char *root;
    walk_frame_t *frames;
    size_t depth_n, depth_cap;
    char *path; /* the current entry's path */
    size_t path_cap, name_at;
    async_walk_entry_t ent;
    bool started, done;
    bool pushed; /* the last entry is a directory that was opened to be entered */
    atomic_bool busy;
};

/* Blocking: 1 (an entry in w->ent), 0 (the end) or -1 with errno. */
int async__fs_walk_step(async_walk_t *w);

#endif
