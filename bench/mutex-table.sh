#!/bin/sh
# The mutex table (bench/mutex.c, bench/tokio-mutex) at 1 and 2 workers, three
# rounds, alternating a build from before a change (BEFORE=path to its
# asyncstd-mutex; optional), this build and Tokio, so that all see the same
# load from whatever else shares the machine. Raw lines on stdout.
#   BEFORE=/path/to/old/build/bench/asyncstd-mutex bench/mutex-table.sh > bench/results/mutex-table.txt
set -e
tm=bench/tokio-mutex/target/release/tokio-mutex
(cd bench/tokio-mutex && cargo build --release --offline -q)
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for t in 1 2; do
    for round in 1 2 3; do
        if [ -n "$BEFORE" ]; then
            echo "\$ THREADS=$t $BEFORE  # before, round $round"
            THREADS=$t "$BEFORE"
        fi
        echo "\$ THREADS=$t build/bench/asyncstd-mutex  # round $round"
        THREADS=$t build/bench/asyncstd-mutex
        echo "\$ THREADS=$t $tm  # round $round"
        THREADS=$t "$tm"
    done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
