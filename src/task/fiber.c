/* Fiber switches with the annotations that let ASan, TSan and valgrind follow
 * a thread that changes stacks. The raw switch is in switch_<arch>.S (or
 * fiber_ucontext.c); everything here compiles to nothing in a plain build. */
#include "internal.h"

#ifdef ASYNC_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef ASYNC_TSAN
#include <sanitizer/tsan_interface.h>
#endif

void async__fiber_init_thread(async__ctx_t *sched) {
#ifdef ASYNC_ASAN
    sched->stack_lo = NULL;
    sched->stack_size = 0;
    sched->asan_fake = NULL;
#endif
#ifdef ASYNC_TSAN
    sched->tsan_fiber = __tsan_get_current_fiber();
#endif
    (void)sched;
}

void async__fiber_make(async__ctx_t *ctx, void *lo, size_t size, void (*entry)(void)) {
#ifdef ASYNC_ASAN
    ctx->stack_lo = lo;
    ctx->stack_size = size;
    ctx->asan_fake = NULL;
#endif
#ifdef ASYNC_TSAN
    ctx->tsan_fiber = __tsan_create_fiber(0);
#endif
    async__ctx_make(ctx, lo, size, entry);
}

void async__fiber_switch(async__ctx_t *from, async__ctx_t *to, bool from_ends) {
#ifdef ASYNC_ASAN
    __sanitizer_start_switch_fiber(from_ends ? NULL : &from->asan_fake, to->stack_lo,
                                   to->stack_size);
#else
    (void)from_ends;
#endif
#ifdef ASYNC_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    async__ctx_switch(from, to);
#ifdef ASYNC_ASAN
    /* back in `from`; learn the bounds of the stack we came from (the scheduler's
     * are unknown until then) */
    const void *lo;
    size_t size;
    __sanitizer_finish_switch_fiber(from->asan_fake, &lo, &size);
#endif
}

void async__fiber_entered(async__ctx_t *sched) {
#ifdef ASYNC_ASAN
    const void *lo;
    size_t size;
    __sanitizer_finish_switch_fiber(NULL, &lo, &size);
    sched->stack_lo = (void *)lo;
    sched->stack_size = size;
#else
    (void)sched;
#endif
}

void async__fiber_destroy(async__ctx_t *ctx) {
#ifdef ASYNC_TSAN
    if (ctx->tsan_fiber) __tsan_destroy_fiber(ctx->tsan_fiber);
    ctx->tsan_fiber = NULL;
#endif
    (void)ctx;
}
