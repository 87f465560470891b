/* Fiber contexts: the raw switch (switch_<arch>.S with fiber_asm.c, or
 * fiber_ucontext.c) and, in fiber.c, the sanitizer and valgrind annotations
 * around it. Kept free of libuv so the raw switch can be checked alone
 * (tests/fiber/switch_check.c). */
#ifndef ASYNC_TASK_FIBER_H
#define ASYNC_TASK_FIBER_H

#include <stdbool.h>
#include <stddef.h>

#ifdef ASYNC_FIBER_UCONTEXT
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define ASYNC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASYNC_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define ASYNC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ASYNC_TSAN 1
#endif
#endif

/* In a plain build a context is one pointer: it sits in every task, and every
 * byte of a task is a byte of memory per parked task. */
typedef struct async__ctx {
#ifdef ASYNC_FIBER_UCONTEXT
    ucontext_t uc;
#else
    void *sp;
#endif
#ifdef ASYNC_ASAN
    void *stack_lo; /* bounds of this context's stack */
    size_t stack_size;
    void *asan_fake; /* fake-stack handle while switched out */
#endif
#ifdef ASYNC_TSAN
    void *tsan_fiber;
#endif
} async__ctx_t;

void async__ctx_make(async__ctx_t *ctx, void *lo, size_t size, void (*entry)(void));
void async__ctx_switch(async__ctx_t *from, async__ctx_t *to);

void async__fiber_init_thread(async__ctx_t *sched);
void async__fiber_make(async__ctx_t *ctx, void *lo, size_t size, void (*entry)(void));
void async__fiber_switch(async__ctx_t *from, async__ctx_t *to, bool from_ends);
void async__fiber_entered(async__ctx_t *sched); /* first thing a new fiber calls */
void async__fiber_destroy(async__ctx_t *ctx);

#endif
