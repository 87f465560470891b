#!/usr/bin/env bash
# The porting guide's measurement: examples/port/fileserver_threads (one thread per connection)
# against its asyncstd port, examples/port/fileserver_async, driven by wrk in alternated rounds.
# Prints requests/s and CPU microseconds per request (the server's utime+stime from /proc).
#
# Usage: bench/port-fileserver.sh [ROUNDS] [SECONDS]   (from the project root, after ninja -C build)
# Environment: THREADS (asyncstd workers, default 1), CONNS (wrk connections, default 50),
# SIZE (file size in bytes, default 1024).
set -euo pipefail
rounds=${1:-3}
secs=${2:-5}
threads=${THREADS:-1}
conns=${CONNS:-50}
size=${SIZE:-1024}
root=$(mktemp -d)
trap 'rm -rf "$root"; kill $(jobs -p) 2>/dev/null || true' EXIT
head -c "$size" /dev/urandom >"$root/file.bin"
port=18180
tick=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # name binary
    local pid rps t0 t1 reqs
    ASYNCSTD_THREADS=$threads "$2" 127.0.0.1 $port "$root" &
    pid=$!
    for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/file.bin" && break; sleep 0.1; done
    t0=$(cpu_ticks $pid)
    out=$(wrk -t2 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port/file.bin")
    t1=$(cpu_ticks $pid)
    kill $pid
    wait $pid 2>/dev/null || true
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    printf '%-20s %10.0f req/s %8.1f us CPU/req\n' "$1" "$rps" \
        "$(echo "($t1 - $t0) * 1000000 / $tick / $reqs" | bc -l)"
    port=$((port + 1))
}

echo "wrk -c$conns ${secs}s, $size-byte file, asyncstd THREADS=$threads"
for _ in $(seq "$rounds"); do
    run threads build/examples/fileserver_threads
    run async build/examples/fileserver_async
done
