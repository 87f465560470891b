#!/usr/bin/env bash
# bench/ab-echo.sh BEFORE AFTER [PEERS_DIR]: the echo workload of the peer harness
# run alternately on two builds of bench/asyncstd-peer (ROUNDS pairs, default 4,
# at THREADS=1 and 2 unless THREADS is set), so that both see the same machine.
# Prints each run's RESULT line tagged with the build; nothing is averaged here.
#   bench/ab-echo.sh /tmp/old/build/bench/asyncstd-peer build/bench/asyncstd-peer
set -euo pipefail
before=$(realpath "$1") after=$(realpath "$2") peers=${3:-/tmp/peers}
cd "$(dirname "$0")/.."
for threads in ${THREADS:-1 2}; do
    for round in $(seq "${ROUNDS:-4}"); do
        for build in before after; do
            exe=$before
            [ "$build" = after ] && exe=$after
            line=$(ASYNCSTD_PEER=$exe THREADS=$threads ROUNDS=1 "$peers/run.sh" echo asyncstd 2>&1 \
                > /dev/null | sed -n 's/.*RESULT echo load//p')
            echo "THREADS=$threads round=$round $build:$line"
        done
    done
done
