#!/usr/bin/env bash
# examples/redis against Debian's redis-server, side by side, with redis-benchmark.
#
#     bench/redis.sh [ROUNDS] [REQUESTS]      (defaults: 3 rounds, 200000 requests per test)
#
# Each round runs, in an order that rotates from round to round, redis-server (`--save ''
# --appendonly no`) and build/examples/redis at ASYNCSTD_THREADS=1 and 2, and against each
# server the three loads
#     redis-benchmark -t set,get,incr -n REQUESTS -c 50
#     redis-benchmark -t set,get,incr -n REQUESTS -c 50 -P 16
#     redis-benchmark -t set,get,incr -n REQUESTS -c 1000
# printing requests/s per test and the server's CPU time per request (utime + stime from
# /proc/PID/stat before and after the load, over the 3 x REQUESTS requests). The summary gives
# each configuration's median and its ratio to redis-server. redis-benchmark itself is
# single-threaded and shares the machine's cores with the server.
# $BUILD selects the build directory (default: build).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rounds=${1:-3}
requests=${2:-200000}
ours=${BUILD:-build}/examples/redis
port=6390
ulimit -n 10240 # -c 1000: a thousand sockets in the client and in the server
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
    { echo "needs redis-server and redis-benchmark (apt-get install redis-server redis-tools)"; exit 1; }
[ -x "$ours" ] || { echo "$ours not built"; exit 1; }

tick=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # utime + stime of the whole process
results=$(mktemp)
trap 'rm -f "$results"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null' EXIT

start_server() { # NAME -> $pid, listening on $port
    case $1 in
    redis-server) redis-server --port "$port" --save '' --appendonly no --daemonize no \
        --maxclients 10000 >/dev/null 2>&1 & ;;
    asyncstd-t*) ASYNCSTD_THREADS=${1#asyncstd-t} "$ours" 127.0.0.1 "$port" 2>/dev/null & ;;
    esac
    pid=$!
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "$1 did not start"
    exit 1
}

stop_server() {
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
}

servers=(redis-server asyncstd-t1 asyncstd-t2)
loads=("-c 50" "-c 50 -P 16" "-c 1000")
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(redis-server --version | cut -d' ' -f1-3), $rounds rounds, -n $requests"
printf '%-13s %-14s %10s %10s %10s %12s\n' server load SET GET INCR 'CPU us/req'
for round in $(seq "$rounds"); do
    for i in 0 1 2; do
        name=${servers[$(((i + round) % 3))]}
        start_server "$name"
        for load in "${loads[@]}"; do
            before=$(cpu_ticks "$pid")
            # shellcheck disable=SC2086
            csv=$(redis-benchmark -p "$port" -t set,get,incr -n "$requests" $load --csv)
            after=$(cpu_ticks "$pid")
            rps() { printf '%s\n' "$csv" | sed -n "s/^\"$1\",\"\([0-9.]*\)\".*/\1/p"; }
            us=$(awk -v t=$((after - before)) -v hz="$tick" -v n=$((3 * requests)) \
                'BEGIN { printf "%.2f", t / hz / n * 1e6 }')
            printf '%-13s %-14s %10.0f %10.0f %10.0f %12s\n' "$name" "$load" \
                "$(rps SET)" "$(rps GET)" "$(rps INCR)" "$us" | tee -a "$results"
        done
        stop_server
    done
done

# Medians per server and load, and the ratio to redis-server's median (requests/s; CPU per request).
echo
echo "medians over $rounds rounds (ratio to redis-server)"
awk '
function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    load = $2 " " $3; if ($4 == "-P") { load = load " -P 16"; f = 6 } else f = 4
    key = $1 "|" load; keys[key] = 1
    for (c = 0; c < 4; c++) v[key, c] = v[key, c] " " $(f + c)
}
END {
    split("SET GET INCR CPU", names, " ")
    for (key in keys) {
        split(key, k, "|")
        line = sprintf("%-13s %-14s", k[1], k[2])
        for (c = 0; c < 4; c++) {
            m = median(v[key, c]); r = median(v["redis-server|" k[2], c])
            line = line sprintf(c < 3 ? " %9.0f (%.2fx)" : "  %6.2f us (%.2fx)", m, r ? m / r : 0)
        }
        print line
    }
}' "$results" | sort
