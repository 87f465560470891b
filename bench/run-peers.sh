#!/usr/bin/env bash
# bench/run-peers.sh [PEERS_DIR]: runs the comparison recorded in bench/RESULTS.md and
# saves each raw output (per-round lines from stderr, then the table) under
# bench/results/. Run from the project root after `ninja -C build`; PEERS_DIR is
# a built copy of peers/ (default /tmp/peers; see its README for `run.sh build`).
set -euo pipefail
PEERS=${1:-/tmp/peers}
cd "$(dirname "$0")/.."
[ -x build/bench/asyncstd-peer ] || { echo "build/bench/asyncstd-peer missing: ninja -C build" >&2; exit 1; }
out=${OUT:-bench/results}
mkdir -p "$out"

run() { # run NAME WORKLOAD IMPL...: one run.sh batch, THREADS=1
    local name=$1; shift
    echo "\$ THREADS=1 ${ARGS:+ARGS=\"$ARGS\" }$PEERS/run.sh $*" > "$out/$name.txt"
    echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/$name.txt"
    THREADS=1 "$PEERS/run.sh" "$@" >> "$out/$name.txt" 2>&1
    echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/$name.txt"
    cat "$out/$name.txt"
}

run spawn spawn asyncstd tokio-ct tokio go libuv
run pingpong pingpong asyncstd tokio-ct tokio go node
run sleep sleep asyncstd tokio-ct tokio async-std smol go node libuv
run idle idle asyncstd tokio-ct tokio async-std smol go node
ARGS=1000000 run idle-1m idle asyncstd
