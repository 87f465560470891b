/* Context creation for the assembly switch (switch_<arch>.S): lays out a
 * fresh stack as if async__ctx_switch_raw had saved a context on it, with
 * the trampoline as the return address and the entry function in a
 * callee-saved register. */
#include <stdint.h>
#include <string.h>

#include "fiber.h"

void async__ctx_switch_raw(void **save_sp, void *load_sp);
void async__ctx_trampoline(void);

void async__ctx_make(async__ctx_t *ctx, void *lo, size_t size, void (*entry)(void)) {
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* 8 words popped by the switch: FP control, r15, r14, r13, r12, rbx, rbp, return address;
     * after `ret` the stack is 16-byte aligned, as the trampoline's `call` expects. */
    uint64_t *sp = (uint64_t *)top - 8;
    memset(sp, 0, 8 * sizeof *sp);
    uint32_t fpctl[2];
    __asm__ volatile("stmxcsr %0" : "=m"(fpctl[0]));
    __asm__ volatile("fnstcw %0" : "=m"(fpctl[1]));
    memcpy(&sp[0], fpctl, sizeof fpctl);
    sp[4] = (uint64_t)(uintptr_t)entry; /* r12 */
    sp[7] = (uint64_t)(uintptr_t)async__ctx_trampoline;
    ctx->sp = sp;
#elif defined(__aarch64__)
    uint64_t *sp = (uint64_t *)(top - 176);
    memset(sp, 0, 176);
    sp[0] = (uint64_t)(uintptr_t)entry;                  /* x19 */
    sp[11] = (uint64_t)(uintptr_t)async__ctx_trampoline; /* x30 */
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    sp[20] = fpcr;
    ctx->sp = sp;
#else
#error "no assembly context switch for this CPU: configure with -Dfiber=ucontext"
#endif
}

void async__ctx_switch(async__ctx_t *from, async__ctx_t *to) {
    async__ctx_switch_raw(&from->sp, to->sp);
}
