/* The process workload of asyncstd-peer (peer_proc.c), called from peer.c's root task. */
#ifndef ASYNCSTD_BENCH_PEER_PROC_H
#define ASYNCSTD_BENCH_PEER_PROC_H

void peer_procspawn(int argc, char **argv, unsigned nthreads);

#endif
