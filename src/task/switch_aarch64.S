/* The AArch64 (AAPCS64) context switch: save x19-x30, d8-d15 and FPCR on the
 * current stack, store its pointer, load the other, restore, return.
 *
 *   void async__ctx_switch_raw(void **save_sp, void *load_sp);
 *
 * A fresh context's frame (fiber_asm.c) has x30 = async__ctx_trampoline and
 * x19 = the entry function. */
    .text
    .globl async__ctx_switch_raw
    .hidden async__ctx_switch_raw
    .type async__ctx_switch_raw, %function
    .p2align 2
async__ctx_switch_raw:
    sub sp, sp, #176
    stp x19, x20, [sp, #0]
    stp x21, x22, [sp, #16]
    stp x23, x24, [sp, #32]
    stp x25, x26, [sp, #48]
    stp x27, x28, [sp, #64]
    stp x29, x30, [sp, #80]
    stp d8, d9, [sp, #96]
    stp d10, d11, [sp, #112]
    stp d12, d13, [sp, #128]
    stp d14, d15, [sp, #144]
    mrs x9, fpcr
    str x9, [sp, #160]
    mov x9, sp
    str x9, [x0]
    mov sp, x1
    ldr x9, [sp, #160]
    msr fpcr, x9
    ldp x19, x20, [sp, #0]
    ldp x21, x22, [sp, #16]
    ldp x23, x24, [sp, #32]
    ldp x25, x26, [sp, #48]
    ldp x27, x28, [sp, #64]
    ldp x29, x30, [sp, #80]
    ldp d8, d9, [sp, #96]
    ldp d10, d11, [sp, #112]
    ldp d12, d13, [sp, #128]
    ldp d14, d15, [sp, #144]
    add sp, sp, #176
    ret
    .size async__ctx_switch_raw, .-async__ctx_switch_raw

    .globl async__ctx_trampoline
    .hidden async__ctx_trampoline
    .type async__ctx_trampoline, %function
    .p2align 2
async__ctx_trampoline:
    mov x29, #0
    mov x30, #0
    blr x19
    brk #0
    .size async__ctx_trampoline, .-async__ctx_trampoline

    .section .note.GNU-stack, "", %progbits
