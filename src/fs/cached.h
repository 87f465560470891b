/* Inline answers for file calls on cached data (cached.c): each says
 * FS_DONE when it answered on the calling thread, or FS_POOL when the call
 * must go to the pool, having done nothing. Never installed. */
#ifndef ASYNC_FS_CACHED_H
#define ASYNC_FS_CACHED_H

#include "internal.h"

enum { FS_POOL = 0, FS_DONE = 1 };

/* openat(2) of a name in the dentry cache: *fd is the new fd, or -1 with
 * errno set. Never for O_CREAT, O_TRUNC or O_TMPFILE, nor for a name that is
 * not a regular file or a directory on a local mount, unless O_PATH keeps
 * the open from the file's driver. */
int async__fs_open_cached(int dirfd, const char *path, int flags, int *fd);
/* fstat(2) of an fd whose mount is known to be local (st must not be NULL):
 * *r is its result, with errno set when -1. */
int async__fs_fstat_cached(int fd, struct stat *st, int *r);
/* Whether close(2) of fd may wait for a server: a regular file whose mount
 * is not known to be local. */
bool async__fs_close_may_wait(int fd);
/* An fd's file type (S_IFSOCK, ...), or 0 when it has none (a bad fd), from
 * cached attributes (AT_STATX_DONT_SYNC): fstat(2) of a file on NFS may write
 * back its dirty pages or ask the server first. */
unsigned async__fs_file_type(int fd);
/* On the pool: learns whether fd's mount is local (fstatfs(2), which may ask
 * a server), so that later calls on it can be answered inline. */
void async__fs_learn_mount(int fd);

#endif
