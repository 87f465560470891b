/* The x86-64 (System V) context switch: save the callee-saved registers and
 * the FP control words on the current stack, store its pointer, load the
 * other stack's pointer, restore, return into the other context.
 *
 *   void async__ctx_switch_raw(void **save_sp, void *load_sp);
 *
 * A fresh context's stack is laid out by async__ctx_make (fiber_asm.c) so
 * that the final `ret` lands in async__ctx_trampoline with the entry function
 * in %r12. */
    .text
    .globl async__ctx_switch_raw
    .hidden async__ctx_switch_raw
    .type async__ctx_switch_raw, @function
async__ctx_switch_raw:
    .cfi_startproc
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .cfi_endproc
    .size async__ctx_switch_raw, .-async__ctx_switch_raw

    .globl async__ctx_trampoline
    .hidden async__ctx_trampoline
    .type async__ctx_trampoline, @function
async__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    xorl %ebp, %ebp
    callq *%r12
    ud2
    .cfi_endproc
    .size async__ctx_trampoline, .-async__ctx_trampoline

    .section .note.GNU-stack, "", @progbits
