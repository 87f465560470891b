/* A stand-alone check of the raw context switch (switch_<arch>.S + fiber_asm.c),
 * with no libuv and no runtime, so that it can be cross-compiled and run under
 * qemu-user for a CPU this machine is not (tests/fiber/cross-check.sh).
 * Exit status 0 means every check passed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/task/fiber.h"

static async__ctx_t main_ctx, fib_ctx;
static volatile long counter;
static volatile double acc;

static void fib_entry(void) {
    for (;;) {
        counter++;
        acc = acc * 1.5 + 0.25; /* floating point across switches */
        async__ctx_switch(&fib_ctx, &main_ctx);
    }
}

/* Values kept in callee-saved registers across the switch must survive it. */
static __attribute__((noinline)) long churn(long rounds) {
    register long a = 11, b = 22, c = 33, d = 44, e = 55, f = 66;
    double x = 1.25, y = 2.5, z = 3.75;
    for (long i = 0; i < rounds; i++) {
        async__ctx_switch(&main_ctx, &fib_ctx);
        a += 1;
        b += 2;
        c += 3;
        d += 4;
        e += 5;
        f += 6;
        x += 1.0;
        y += 2.0;
        z += 3.0;
    }
    long want = 11 + 22 + 33 + 44 + 55 + 66 + rounds * 21;
    double wantd = 1.25 + 2.5 + 3.75 + rounds * 6.0;
    if (a + b + c + d + e + f != want || x + y + z != wantd) return -1;
    return 0;
}

int main(void) {
    size_t size = 64 * 1024;
    void *stack = aligned_alloc(4096, size);
    if (!stack) return 2;
    async__ctx_make(&fib_ctx, stack, size, fib_entry);
    if (churn(100000) != 0) {
        fprintf(stderr, "callee-saved registers were clobbered by a switch\n");
        return 1;
    }
    if (counter != 100000) {
        fprintf(stderr, "fiber ran %ld times, expected 100000\n", counter);
        return 1;
    }
    printf("switch check ok: %ld switches, acc=%g\n", counter * 2, acc);
    free(stack);
    return 0;
}
