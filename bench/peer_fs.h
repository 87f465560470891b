/* The file workloads of asyncstd-peer (peer_fs.c), called from peer.c's root task. */
#ifndef ASYNCSTD_BENCH_PEER_FS_H
#define ASYNCSTD_BENCH_PEER_FS_H

void peer_fileread(int argc, char **argv, unsigned nthreads);
void peer_pread(int argc, char **argv, unsigned nthreads);
void peer_stat(int argc, char **argv, unsigned nthreads);

#endif
