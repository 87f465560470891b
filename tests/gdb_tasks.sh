#!/bin/sh
# tools/asyncstd-gdb.py on a live process: `info async-tasks` lists the named
# tasks of tests/gdb_target.c with their waits, `async-task N|NAME bt` shows each
# parked task's own stack, and the thread's registers are back afterwards.
# Usage: gdb_tasks.sh TARGET SCRIPT
target=$1
script=$2
if ! command -v gdb >/dev/null 2>&1; then
    echo "gdb not installed: skipped (apt-get install gdb)"
    exit 77
fi
# two workers: the main thread's first spawn is task 3 (src/task/task.c, new_id)
out=$(ASYNCSTD_THREADS=2 timeout 120 gdb -nx -batch -ex 'set debuginfod enabled off' -ex run \
    -ex "source $script" -ex 'info async-tasks' -ex 'async-task gdb_sleeper bt' \
    -ex 'async-task gdb_reader bt' -ex 'async-task 3 bt' -ex 'bt' -ex kill "$target" 2>&1)
echo "$out"
fail=0
expect() {
    if ! printf '%s\n' "$out" | grep -q -e "$1"; then
        echo "FAIL: expected \"$1\" in gdb's output"
        fail=1
    fi
}
expect 'gdb_sleeper .* parked .*sleep'
expect 'gdb_reader .* parked .*channel recv 0x'
expect 'in sleep_in_task'
expect 'in read_in_task'
expect 'async_await'
if [ "$(printf '%s\n' "$out" | grep -c 'in sleep_in_task')" -ne 2 ]; then
    echo "FAIL: expected task 3 (gdb_sleeper) walked twice, by name and by id"
    fail=1
fi
# the last bt is the main thread's own again
expect 'in main'
exit $fail
