#!/usr/bin/env bash
# bench/run-peers.sh [PEERS_DIR]: runs the comparison recorded in bench/RESULTS.md (ONLY="spawn echo"
# picks batches by name) and
# saves each raw output (per-round lines from stderr, then the table) under
# bench/results/. Run from the project root after `ninja -C build`; PEERS_DIR is
# a built copy of peers/ (default /tmp/peers; see its README for `run.sh build`).
set -euo pipefail
PEERS=${1:-/tmp/peers}
cd "$(dirname "$0")/.."
[ -x build/bench/asyncstd-peer ] || { echo "build/bench/asyncstd-peer missing: ninja -C build" >&2; exit 1; }
out=${OUT:-bench/results}
mkdir -p "$out"

run() { # run NAME THREADS WORKLOAD IMPL...: one run.sh batch
    local name=$1 threads=$2; shift 2
    echo "\$ THREADS=$threads ${ARGS:+ARGS=\"$ARGS\" }$PEERS/run.sh $*" > "$out/$name.txt"
    echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/$name.txt"
    THREADS=$threads "$PEERS/run.sh" "$@" >> "$out/$name.txt" 2>&1
    echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/$name.txt"
    cat "$out/$name.txt"
}

only=${ONLY:-}
want() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }

want spawn && run spawn 1 spawn asyncstd tokio-ct tokio go libuv
want spawn-t2 && run spawn-t2 2 spawn asyncstd tokio go
want pingpong && run pingpong 1 pingpong asyncstd tokio-ct tokio go node
want pingpong-t2 && run pingpong-t2 2 pingpong asyncstd tokio go
want sleep && run sleep 1 sleep asyncstd tokio-ct tokio async-std smol go node libuv
want idle && run idle 1 idle asyncstd tokio-ct tokio async-std smol go node
want idle-1m && ARGS=1000000 run idle-1m 1 idle asyncstd
want echo && run echo 1 echo asyncstd tokio-ct go node libuv
want echo-t2 && run echo-t2 2 echo asyncstd tokio go
want fileread && run fileread 1 fileread asyncstd blocking tokio async-std node libuv
want pread && run pread 1 pread asyncstd tokio node libuv
want stat && run stat 1 stat asyncstd tokio node libuv

# mutex: bench/mutex.c against Tokio's Mutex (bench/tokio-mutex, built here offline from
# Debian's crates), alternated three rounds at each worker count so both see the same load.
mutex() {
    local tm=bench/tokio-mutex/target/release/tokio-mutex
    (cd bench/tokio-mutex && cargo build --release --offline -q)
    {
        echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
        for t in 1 2; do
            for round in 1 2 3; do
                echo "\$ THREADS=$t build/bench/asyncstd-mutex  # round $round"
                THREADS=$t build/bench/asyncstd-mutex
                echo "\$ THREADS=$t $tm  # round $round"
                THREADS=$t "$tm"
            done
        done
        echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    } > "$out/mutex.txt" 2>&1
    cat "$out/mutex.txt"
}
want mutex && mutex
true
