#!/usr/bin/env bash
# bench/echo-syscalls.sh PEER [PEERS_DIR]: system calls per echoed message made by
# the echo server of PEER (a bench/asyncstd-peer build), counted by perf over 3 s
# of the peer harness's load (50 connections x 64 B), at THREADS=1 and 2 (or
# $THREADS). Counts depend on the code path far more than on the machine's load,
# so they compare builds where throughput on a shared VM cannot.
set -euo pipefail
peer=$(realpath "$1") peers=${2:-/tmp/peers}
events=syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_ctl
for threads in ${THREADS:-1 2}; do
    port=$((20000 + RANDOM % 20000))
    ASYNCSTD_THREADS=$threads "$peer" echo-server "$port" > /dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break; sleep 0.05; done
    "$peers/loadgen/echo_load" 127.0.0.1 "$port" 50 64 5 > /tmp/echo-syscalls.load &
    load=$!
    sleep 1
    perf stat -x, -e "$events" -p "$pid" -- sleep 3 2> /tmp/echo-syscalls.perf
    wait "$load"
    kill "$pid"
    wait "$pid" 2> /dev/null || true
    msgs=$(sed -n 's/.*msgs_per_s=\([0-9]*\).*/\1/p' /tmp/echo-syscalls.load)
    awk -F, -v m="$msgs" -v t="$threads" '
        { split($3, e, "_enter_"); c[e[2]] = $1 }
        END { printf "THREADS=%s msgs/s=%s per message:", t, m
              for (k in c) printf " %s=%.3f", k, c[k] / (m * 3); printf "\n" }' /tmp/echo-syscalls.perf
done
