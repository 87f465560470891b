#!/usr/bin/env bash
# examples/httpd against Debian's nginx, side by side, with wrk.
#
#     bench/httpd.sh [ROUNDS] [SECONDS]      (defaults: 3 rounds, 5 s per load)
#
# Each round runs, in an order that rotates from round to round, nginx with one and with two
# worker processes (`sendfile on`, `access_log off`, keep-alive without a request limit, a config
# in a temporary directory, not daemonized) and build/examples/httpd at ASYNCSTD_THREADS=1 and 2,
# and against each server the four loads
#     wrk -t2 -c50   -dSECONDS  on a 1 KiB file, and on a 1 MiB file
#     wrk -t2 -c1000 -dSECONDS  on the same two files
# and, at -c50 and -c1000, "many": 1,000 distinct 1 KiB files requested in turn (a wrk script), a
# site's working set rather than one hot file,
# printing requests/s and the server's CPU time per response (utime + stime from /proc/PID/stat of
# the server and, for nginx, its workers, before and after the load, over wrk's response count)
# and wrk's own CPU time per response. On loopback the TCP work of a transfer is charged to
# whichever side's system call runs it (a sender's sendfile can process the receiver's side in
# its softirq, or the receiver's read can push the sender's queued data), so the server's share
# alone can move between server and client with no change in the work: the sum of the two is the
# cost of a response to the machine. The summary gives each configuration's median and its ratio
# to nginx with as many workers.
# wrk shares the machine's cores with the server. $BUILD selects the build directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rounds=${1:-3}
seconds=${2:-5}
ours=${BUILD:-build}/examples/httpd
port=8390
ulimit -n 10240 # -c 1000: a thousand sockets in the client and in the server
command -v nginx >/dev/null && command -v wrk >/dev/null ||
    { echo "needs nginx and wrk (apt-get install nginx-light wrk)"; exit 1; }
[ -x "$ours" ] || { echo "$ours not built"; exit 1; }

tmp=$(mktemp -d)
chmod 755 "$tmp" # nginx's workers run as nobody
mkdir "$tmp/www"
head -c 1024 /dev/urandom >"$tmp/www/1k.bin"
head -c $((1024 * 1024)) /dev/urandom >"$tmp/www/1m.bin"
mkdir "$tmp/www/many"
for i in $(seq -w 1000); do head -c 1024 /dev/urandom >"$tmp/www/many/f$i.bin"; done
chmod 644 "$tmp/www"/*.bin "$tmp/www/many"/*
cat >"$tmp/many.lua" <<'LUA'
local i = 0
request = function()
    i = i % 1000 + 1
    return wrk.format("GET", string.format("/many/f%04d.bin", i))
end
LUA
results=$tmp/results
trap 'rm -rf "$tmp"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null' EXIT

nginx_conf() { # WORKERS -> the config's path
    cat >"$tmp/nginx$1.conf" <<EOF
worker_processes $1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
worker_rlimit_nofile 10240;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 100000000;
    default_type application/octet-stream;
    client_body_temp_path $tmp/body;
    server { listen 127.0.0.1:$port; root $tmp/www; }
}
EOF
    echo "$tmp/nginx$1.conf"
}

tick=$(getconf CLK_TCK)
cpu_ticks() { # utime + stime of the server process and its children (nginx's workers)
    local p total=0
    for p in "$pid" $(ps -o pid= --ppid "$pid"); do
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
    done
    echo "$total"
}

start_server() { # NAME -> $pid, listening on $port
    case $1 in
    nginx-w*) nginx -c "$(nginx_conf "${1#nginx-w}")" -e "$tmp/error.log" & ;;
    asyncstd-t*) ASYNCSTD_THREADS=${1#asyncstd-t} "$ours" 127.0.0.1 "$port" "$tmp/www" 2>/dev/null & ;;
    esac
    pid=$!
    for _ in $(seq 100); do
        curl -sf -o /dev/null "http://127.0.0.1:$port/1k.bin" && return 0
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

servers=(nginx-w1 asyncstd-t1 nginx-w2 asyncstd-t2)
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(nginx -v 2>&1 | cut -d' ' -f3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), $rounds rounds, ${seconds}s per load"
printf '%-12s %-5s %-6s %10s %12s %12s %s\n' server conns file 'req/s' 'CPU us/resp' 'wrk us/resp' errors
for round in $(seq "$rounds"); do
    for i in 0 1 2 3; do
        name=${servers[$(((i + round) % 4))]}
        start_server "$name"
        for conns in 50 1000; do
            for file in 1k.bin 1m.bin many; do
                target=(-s "$tmp/many.lua" "http://127.0.0.1:$port/")
                [ "$file" = many ] || target=("http://127.0.0.1:$port/$file")
                before=$(cpu_ticks)
                # `times` in the same subshell: the CPU time of its one child, wrk
                out=$({ wrk -t2 -c"$conns" -d"${seconds}s" "${target[@]}"; times; })
                after=$(cpu_ticks)
                client=$(printf '%s\n' "$out" | tail -1 | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } print s }')
                n=$(printf '%s\n' "$out" | sed -n 's/^ *\([0-9]*\) requests in .*/\1/p')
                rps=$(printf '%s\n' "$out" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p')
                errors=$(printf '%s\n' "$out" | grep -E 'Socket errors|Non-2xx' | tr -s ' ' | paste -sd';' || true)
                us=$(awk -v t=$((after - before)) -v hz="$tick" -v n="$n" \
                    'BEGIN { printf "%.2f", n ? t / hz / n * 1e6 : 0 }')
                cus=$(awk -v c="$client" -v n="$n" 'BEGIN { printf "%.2f", n ? c / n * 1e6 : 0 }')
                printf '%-12s %-5s %-6s %10.0f %12s %12s %s\n' "$name" "$conns" "$file" "$rps" "$us" \
                    "$cus" "${errors:--}" | tee -a "$results"
            done
        done
        stop_server
    done
done

# Medians per server and load, and the ratio to nginx's median with as many workers.
echo
echo "medians over $rounds rounds (ratio to nginx with as many workers): req/s, server CPU per response, server + wrk CPU per response"
awk '
function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ key = $1 "|" $2 "|" $3; keys[key] = 1; rps[key] = rps[key] " " $4; cpu[key] = cpu[key] " " $5
  both[key] = both[key] " " ($5 + $6) }
END {
    for (key in keys) {
        split(key, k, "|")
        peer = "nginx-w" substr(k[1], length(k[1])) "|" k[2] "|" k[3]
        r = median(rps[key]); c = median(cpu[key]); pr = median(rps[peer]); pc = median(cpu[peer])
        b = median(both[key]); pb = median(both[peer])
        printf "%-12s %-5s %-6s %10.0f (%.2fx) %8.2f us (%.2fx) %8.2f us (%.2fx)\n", k[1], k[2], k[3],
            r, pr ? r / pr : 0, c, pc ? c / pc : 0, b, pb ? b / pb : 0
    }
}' "$results" | sort -k3,3 -k2,2n -k1,1
