/* The library's one doubly linked list, intrusive: the node lives in the
 * object it links, so linking never allocates and unlinking is O(1) from the
 * object alone. A list is its first and last node, the chain NULL-terminated:
 * a zeroed list is empty and a zeroed node unlinked, so objects from calloc
 * and static initialisers need no init call. No locking: whoever owns the
 * list (a lock, a thread) guards it. The inboxes are another thing: singly
 * linked lock-free stacks of async__msg, pushed from any thread. */
#ifndef ASYNC_TASK_LIST_H
#define ASYNC_TASK_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct async__node {
    struct async__node *next, *prev;
} async__node_t;

typedef struct async__list {
    async__node_t *head, *tail;
} async__list_t;

/* The object holding node `n` (NULL for NULL): `type` has it as `member`. */
#define async__list_entry(n, type, member)                                         \
    __extension__({                                                                \
        async__node_t *n_ = (n);                                                   \
        n_ ? (type *)(void *)((char *)n_ - offsetof(type, member)) : (type *)NULL; \
    })

/* Walks the list from head to tail; `n` may not be unlinked inside the body
 * (use async__list_pop_front, or save n->next first). */
#define async__list_foreach(n, l) for (async__node_t *n = (l)->head; n; n = n->next)

static inline bool async__list_empty(const async__list_t *l) { return l->head == NULL; }

static inline void async__list_push_back(async__list_t *l, async__node_t *n) {
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

static inline void async__list_push_front(async__list_t *l, async__node_t *n) {
    n->prev = NULL;
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    else
        l->tail = n;
    l->head = n;
}

/* Unlinks `n`, which must be in `l`, and leaves it zeroed. */
static inline void async__list_remove(async__list_t *l, async__node_t *n) {
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->next = n->prev = NULL;
}

/* Unlinks and returns the first node, or NULL if the list is empty. */
static inline async__node_t *async__list_pop_front(async__list_t *l) {
    async__node_t *n = l->head;
    if (n) async__list_remove(l, n);
    return n;
}

/* Takes every node of `from` (emptied) in order: the list moves, no node is touched. */
static inline async__list_t async__list_take(async__list_t *from) {
    async__list_t all = *from;
    from->head = from->tail = NULL;
    return all;
}

#endif
