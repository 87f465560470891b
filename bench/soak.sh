#!/usr/bin/env bash
# bench/soak.sh [MINUTES]: a soak of examples/echo, not run by CI. It starts the server, churns
# connections against it for MINUTES (default 5) with bench/churn.c (each connection one line,
# ended in turn by close, half-close, data+FIN in one segment, and reset), and every INTERVAL
# seconds samples the server's RSS, fd count and connections in CLOSE-WAIT into OUT. After the
# churn it waits SETTLE seconds and takes the last sample: the fds must be back to the count
# taken before the churn, nothing may be left in CLOSE-WAIT, no connection may have failed, and
# SIGTERM must stop the server with status 0 (exit 1 otherwise).
#
# Run from anywhere after `ninja -C build`. Settings (environment): ASYNCSTD_THREADS (server
# workers, default 2), CHURN_THREADS (client threads, default 4), INTERVAL (default 5),
# SETTLE (default 3), OUT (default bench/results/soak.txt), PORT (default: a free one),
# DURATION (seconds, instead of MINUTES: a quick try), ECHO (the server, default
# build/examples/echo: another build's, to compare).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-5}
seconds=${DURATION:-$((minutes * 60))}
interval=${INTERVAL:-5}
settle=${SETTLE:-3}
out=${OUT:-bench/results/soak.txt}
export ASYNCSTD_THREADS=${ASYNCSTD_THREADS:-2}
churn_threads=${CHURN_THREADS:-4}
echo=${ECHO:-build/examples/echo}
for b in "$echo" build/bench/asyncstd-churn; do
    [ -x "$b" ] || { echo "$b missing: ninja -C build" >&2; exit 1; }
done

# a free port: the kernel picks one for a socket bound to port 0 (bash has no bind, so ask ss
# which ports are taken and pick another)
port=${PORT:-}
while [ -z "$port" ]; do
    p=$((20000 + RANDOM % 30000))
    ss -Htan "sport = :$p" | grep -q . || port=$p
done
hexport=$(printf '%04X' "$port")

"$echo" 127.0.0.1 "$port" 2>/dev/null &
pid=$!
trap 'kill -9 "$pid" 2>/dev/null || true; kill "${churn:-0}" 2>/dev/null || true' EXIT
for _ in $(seq 50); do # until it listens
    ss -Htln "sport = :$port" | grep -q . && break
    sleep 0.1
done

rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status"; }
fds() { ls "/proc/$pid/fd" | wc -l; }
# accepted connections of the server's port in CLOSE-WAIT (state 08)
close_wait() { cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$hexport" \
    '$2 ~ p"$" && $4 == "08" { n++ } END { print n + 0 }'; }

mkdir -p "$(dirname "$out")"
log=$(mktemp)
base_fds=$(fds)
{
    echo "# bench/soak.sh $minutes (${seconds} s): $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "# server: $echo 127.0.0.1 $port, ASYNCSTD_THREADS=$ASYNCSTD_THREADS;" \
        "client: build/bench/asyncstd-churn 127.0.0.1 $port $seconds $churn_threads"
    echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg); fds before the churn: $base_fds"
    echo "# close_wait counts connections whose FIN has come and that the server has not closed yet:"
    echo "# under load a few are always on their way; only the line after the churn must say 0"
    echo "# seconds  rss_kib  fds  close_wait  connections"
} >"$out"

build/bench/asyncstd-churn 127.0.0.1 "$port" "$seconds" "$churn_threads" >"$log" &
churn=$!
start=$SECONDS
sample() { # sample LABEL
    local conns
    conns=$(sed -n 's/^t=.* conns=\([0-9]*\).*/\1/p' "$log" | tail -n 1)
    printf '%8s  %7s  %3s  %10s  %s\n' "$1" "$(rss)" "$(fds)" "$(close_wait)" "${conns:-0}" >>"$out"
}
sample 0
while kill -0 "$churn" 2>/dev/null; do
    sleep "$interval"
    kill -0 "$churn" 2>/dev/null && sample "$((SECONDS - start))"
done
churn_rc=0
wait "$churn" || churn_rc=$?
sleep "$settle"
sample "after"
tail -n 1 "$log" >>"$out"

end_fds=$(fds)
end_cw=$(close_wait)
kill -TERM "$pid"
server_rc=0
wait "$pid" || server_rc=$?
trap - EXIT
rm -f "$log"

# RSS over the run: the first sample, the first a minute or more in (after warm-up), the
# largest, the last
summary=$(awk '!/^#/ && $1 != "churn:" {
        r[n++] = $2; if ($2 > max) max = $2
        if (!warm && $1 != "after" && $1 >= 60) { warm = $2; at = $1 }
    }
    END { printf "RSS KiB: start %s, at %s s %s, max %s, after %s", r[0], at ? at : 60, warm ? warm : "-", max, r[n-1] }' "$out")
echo "# $summary; fds $base_fds before, $end_fds after; CLOSE-WAIT after: $end_cw;" \
    "churn exit $churn_rc; server exit $server_rc on SIGTERM" >>"$out"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out"
cat "$out"
[ "$end_fds" -eq "$base_fds" ] && [ "$end_cw" -eq 0 ] && [ "$churn_rc" -eq 0 ] && [ "$server_rc" -eq 0 ]
