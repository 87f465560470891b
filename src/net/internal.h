/* Private declarations of the net module: what its files share. Never
 * installed. The module sits on the core's fd readiness (task/internal.h:
 * async__io_op_new, async__io_start, async__io_close, async__io_fd_new). */
#ifndef ASYNC_NET_INTERNAL_H
#define ASYNC_NET_INTERNAL_H

#include <stdbool.h>
#include <sys/socket.h>

#include "asyncstd/net.h"
#include "task/internal.h"

/* Makes `fd` non-blocking if it is not (accept and connect need it; the send
 * and receive families use MSG_DONTWAIT instead). 0, or a positive errno. */
int async__net_set_nonblock(int fd);

/* Maps a getaddrinfo/getnameinfo failure that is not -1/errno shaped to the
 * errno the helpers report (they return fds, so they speak errno only). */
int async__net_gai_errno(int gai);

/* Closes an fd that a waiting call may have registered with the core. */
void async__net_close(int fd);

#endif
