#!/bin/sh
# The library's files built without frame pointers (asyncstd_nofp_sources in
# src/meson.build) must never be on a parked task's stack, or a dump's walk
# would lose frames there. So none of them may call what parks a task.
# Usage: frame_pointer_rule.sh LIBASYNCSTD_NOFP.a
set -eu
lib=$1
parks='async__task_suspend|async__future_wait|async_await|async_await_ptr|async_await_all|async_await_any|async_await_timeout|async_yield'
undefined=$(nm -A -u "$lib")
found=$(printf '%s\n' "$undefined" | grep -E " U ($parks)\$" || true)
if [ -n "$found" ]; then
    echo "built without frame pointers, but calls what parks (move the file to asyncstd_sources):"
    printf '%s\n' "$found"
    exit 1
fi
# the check itself must see the library's undefined symbols
printf '%s\n' "$undefined" | grep -q ' U async__obj_alloc$\| U async__task_ready$' || {
    echo "nm found none of the expected symbols in $lib"
    exit 1
}
echo "ok: $(printf '%s\n' "$undefined" | grep -c ' U ') undefined symbols, none that parks"
