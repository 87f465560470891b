/* The portable context switch, for CPUs without an assembly one: ucontext.
 * swapcontext also saves the signal mask (a system call per switch), so it
 * is several times slower than switch_<arch>.S. */
#include "fiber.h"

void async__ctx_make(async__ctx_t *ctx, void *lo, size_t size, void (*entry)(void)) {
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    makecontext(&ctx->uc, entry, 0);
}

void async__ctx_switch(async__ctx_t *from, async__ctx_t *to) { swapcontext(&from->uc, &to->uc); }
