#!/usr/bin/env bash
# Builds tests/fiber/switch_check.c for aarch64 with the assembly switch and runs it under
# qemu-user, so the AArch64 context switch is exercised on an x86-64 machine.
# Needs Debian's gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and qemu-user; exits 0 when the check passes.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
aarch64-linux-gnu-gcc -O2 -static -I"$root/src" \
    "$root/tests/fiber/switch_check.c" "$root/src/task/fiber_asm.c" "$root/src/task/switch_aarch64.S" \
    -o "$out/switch_check"
qemu-aarch64 "$out/switch_check"
