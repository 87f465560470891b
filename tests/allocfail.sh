#!/usr/bin/env bash
# Allocation-failure injection: runs PROGRAM (tests/allocfail.c) once with nothing failing to
# list the allocations it makes, by site (the call path; see tests/allocfail_shim.c), then once
# per allocation with that one failing: the Kth call from site S, through the LD_PRELOAD shim.
# Every run must exit 0 within its time limit: a crash, a hang, a failed check or (under ASan)
# a leak fails the suite. Sites, not the Nth call overall: pool and worker threads allocate
# side by side with the program's task, so the Nth call is not always the same one, and a pass
# over N=1..count missed allocations. (FAIL_AT=N still fails the Nth call, by hand.)
#
# Usage: tests/allocfail.sh PROGRAM SHIM
#   ALLOCFAIL_FULL=300   every allocation up to this many is failed in turn; above it,
#   ALLOCFAIL_SAMPLE=100 about this many more, evenly spaced (and the script says so)
#   ALLOCFAIL_TIMEOUT=10 seconds per run (a hang is a failure)
#
# Excluded, not failed: a run that died of SIGABRT where the shim found that the failed
# allocation was libuv's or glibc's own and the abort came from that same object before the
# allocating call returned (libuv aborts when it cannot grow its watcher array, for one); and,
# under a sanitizer, a run whose failed allocation was the sanitizer runtime's own. The shim
# prints the sites ("allocfail: excluded: ..."); the summary lists them.
set -uo pipefail

prog=$1
shim=$2
full=${ALLOCFAIL_FULL:-300}
sample=${ALLOCFAIL_SAMPLE:-100}
limit=${ALLOCFAIL_TIMEOUT:-10}
export ASYNCSTD_THREADS=${ASYNCSTD_THREADS:-1}
# Under ASan the shim must come before libasan in the library list, which ASan checks for
# itself; leaks must fail the run.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0:detect_leaks=1"

logs=$(mktemp -d "${TMPDIR:-/tmp}/allocfail.XXXXXX")
trap 'rm -rf "$logs"' EXIT

# run SITE K LOG: the program with the Kth allocation from SITE failing (SITE 0: none, and the
# allocations are listed in $logs/list); prints the exit status
run() {
    local list=()
    [ "$1" != 0 ] || list=(FAIL_LIST="$logs/list")
    # the program's own directory goes under $logs: a run that aborts cannot remove it
    timeout -k 5 "$limit" env TMPDIR="$logs" FAIL_SITE="$1" FAIL_NTH="$2" "${list[@]}" \
        LD_PRELOAD="$shim" "$prog" >"$3" 2>&1
    echo $?
}

# Prints a log with the program's own frames ("allocfail+0x4879 (?)") resolved to functions
# and lines; the program is not stripped, and addr2line comes with binutils.
symbolize() {
    local base=${prog##*/} line off
    while IFS= read -r line; do
        if [[ $line =~ ^(\ +)$base\+0x([0-9a-f]+)\ \(.*\)$ ]] && command -v addr2line >/dev/null; then
            off=$(printf '0x%x' $((16#${BASH_REMATCH[2]} - 1))) # the call, not the return address
            echo "${BASH_REMATCH[1]}$(addr2line -f -i -p -e "$prog" "$off" |
                sed -E 's/^ *\(inlined by\) //; s|^(\S+) at .*/([^/]+)$|\1 (\2)|' | paste -sd'<' | sed 's/</ < /g')"
        else
            printf '%s\n' "$line"
        fi
    done
}

rc=$(run 0 0 "$logs/base")
count=$(wc -l <"$logs/list" 2>/dev/null || echo 0)
if [ "$rc" -ne 0 ] || [ "$count" -eq 0 ]; then
    echo "allocfail: the run without failures failed (exit $rc):"
    cat "$logs/base"
    exit 1
fi
# the plan: line I of the list is occurrence K of site S
awk '{ print NR, $1, ++k[$1] }' "$logs/list" >"$logs/plan"
sites=$(cut -d' ' -f1 "$logs/list" | sort -u | wc -l)

ns=$(seq 1 "$count")
note="every one"
if [ "$count" -gt "$full" ]; then
    step=$(((count - full + sample - 1) / sample))
    ns="$(seq 1 "$full") $(seq "$((full + 1))" "$step" "$count")"
    note="every one up to $full, then every ${step}th: $(echo "$ns" | wc -w) runs, a sample"
fi
echo "allocfail: $count allocations from $sites sites with $ASYNCSTD_THREADS worker(s); failing $note"

passed=0 excluded=0 unreached=0 failed=()
for n in $ns; do
    log="$logs/$n"
    read -r _ site k < <(sed -n "${n}p" "$logs/plan")
    rc=$(run "$site" "$k" "$log")
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        grep -q "^allocfail: failing call .* of site $site:" "$log" || unreached=$((unreached + 1))
        rm -f "$log"
    elif grep -q '^allocfail: excluded:' "$log"; then
        excluded=$((excluded + 1))
        grep '^allocfail: excluded:' "$log" >>"$logs/excluded"
    else
        [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && echo "TIMEOUT after ${limit}s" >>"$log"
        failed+=("$n:$rc")
    fi
done

echo "allocfail: $passed passed, $excluded excluded, ${#failed[@]} failed" \
    "($unreached runs never made the call they were to fail)"
if [ -s "$logs/excluded" ]; then
    echo "excluded (see the top of this script), runs per site:"
    sort "$logs/excluded" | uniq -c | sed 's/^/  /'
fi
if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED runs (I:exit status, I the line of the allocation list; 124 is a hang): ${failed[*]}"
    # one line each: what failed (the first frames in the program) and what came of it
    for f in "${failed[@]}"; do
        log="$logs/${f%%:*}"
        site=$(sed -n '/^allocfail: failing call/,$p' "$log" | grep -m3 "^    ${prog##*/}+" |
            symbolize | sed 's/^ *//' | paste -sd'<' | sed 's/ *< */ < /g')
        what=$(grep -m1 -E 'check failed|ERROR: [A-Za-z]+Sanitizer|runtime error|TIMEOUT|SIGABRT' "$log")
        echo "  allocation ${f%%:*} (exit ${f##*:}): $(sed -n 's/^allocfail: failing call [^:]*: //p' "$log" | head -n1)" \
            "${site# *} -> ${what:-exit ${f##*:}}"
    done
    shown=0
    for f in "${failed[@]}"; do
        [ "$shown" -lt 3 ] || break
        echo "==================== allocation ${f%%:*}, exit ${f##*:}"
        head -c 6000 "$logs/${f%%:*}" | symbolize
        shown=$((shown + 1))
    done
    exit 1
fi
