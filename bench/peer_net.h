/* Network workloads of asyncstd-peer (peer_net.c). */
#ifndef ASYNCSTD_BENCH_PEER_NET_H
#define ASYNCSTD_BENCH_PEER_NET_H

/* echo-server PORT: runs until SIGTERM/SIGINT (peers/SPEC.md). */
void peer_echo_server(int argc, char **argv);

#endif
