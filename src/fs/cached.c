/* Inline answers for file calls on cached data: open of a name in the
 * dentry cache, fstat of an fd on a local filesystem, and the rule that says
 * which close may run on the calling thread. Each answers on the calling
 * thread only when the kernel can answer without waiting, and otherwise
 * leaves the call to the pool (op.c): a pool round trip costs tens of
 * microseconds on a busy machine, the inline call a few hundred
 * nanoseconds (docs/fs.md has the numbers).
 *
 * open: openat2(2) with RESOLVE_CACHED walks the path only through the
 * dentry cache and says EAGAIN when it would have to read a directory from
 * the disk or ask a network filesystem (Linux 5.12; on older kernels, which
 * lack it, every open goes to the pool). It refuses O_CREAT,
 * O_TRUNC and O_TMPFILE with EAGAIN, so those go straight to the pool. What
 * the walk cannot tell is the file's type, and opening a FIFO waits for the
 * other end, opening a device runs its driver (a tape rewinds, a watchdog
 * starts). So unless the flags keep the open away from the driver (O_PATH,
 * O_DIRECTORY), the name is first opened with O_PATH (which never opens the
 * file itself), its type read, and only a regular file, a directory or a
 * symbolic link (O_NOFOLLOW's ELOOP) is opened inline. Rejected: adding
 * O_NONBLOCK to the open and clearing it after, one walk instead of two, as
 * io_uring does, since for a FIFO or a device that open is already the side
 * effect. The check and the open are two walks of the same name: a FIFO or
 * device renamed over a regular file between the two is opened inline.
 *
 * fstat: statx(2) of the fd with AT_STATX_DONT_SYNC, which on a local
 * filesystem reads the in-memory inode, the same answer fstat(2) gives; on a
 * network filesystem (NFS, CIFS, FUSE, Ceph) fstat(2) may ask the server,
 * and AT_STATX_DONT_SYNC would answer from a cache instead: a different
 * answer. So the inline answer is used only when the fd's mount is known to
 * be local, learnt on the pool the first time a mount is met (fstatfs(2),
 * which on NFS asks the server too). Mounts are keyed by their 64-bit unique
 * id (STATX_MNT_ID_UNIQUE, Linux 6.8), never reused; without it every fstat
 * goes to the pool.
 *
 * close: close(2) of a regular file on a network filesystem writes dirty
 * pages back or asks the server (NFS's close-to-open, FUSE's flush) and may
 * wait for as long as the server likes; on a local filesystem, and for any
 * socket, pipe or other non-regular fd, it does not wait for a device. So a
 * regular file goes to the pool unless its mount is known to be local. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cached.h"

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x4000U
#endif

/* ---- open ------------------------------------------------------------------ */

/* Flags openat2(2) takes as openat(2) does. openat(2) drops unknown bits
 * that openat2(2) refuses with EINVAL; such calls keep to the pool. */
#define OPEN_KNOWN                                                                        \
    (O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK | O_SYNC | \
     O_DSYNC | O_ASYNC | O_DIRECT | O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC | O_PATH)
/* O_PATH with anything else is EINVAL from openat2(2), ignored by openat(2). */
#define OPATH_KNOWN (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

static int openat2_cached(int dirfd, const char *path, int flags) {
    struct open_how how = {.flags = (uint64_t)(unsigned)flags, .resolve = RESOLVE_CACHED};
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Before Linux 5.12 openat2(2) is missing (ENOSYS) or refuses RESOLVE_CACHED
 * (EINVAL): asked once, with a name that is always cached. */
static bool have_cached_walk;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe(void) {
    int fd = openat2_cached(AT_FDCWD, "/", O_PATH | O_CLOEXEC);
    have_cached_walk = fd >= 0;
    if (fd >= 0) close(fd);
}

int async__fs_open_cached(int dirfd, const char *path, int flags, int *fd) {
    /* O_TMPFILE's own bit: the flag includes O_DIRECTORY's */
    if (flags & (O_CREAT | O_TRUNC | (O_TMPFILE & ~O_DIRECTORY))) return FS_POOL;
    if (flags & ~OPEN_KNOWN) return FS_POOL;
    if ((flags & O_PATH) && (flags & ~OPATH_KNOWN)) return FS_POOL;
    pthread_once(&probe_once, probe);
    if (!have_cached_walk) return FS_POOL;
    if (!(flags & (O_PATH | O_DIRECTORY))) {
        /* the type first, without opening the file */
        int p = openat2_cached(dirfd, path, O_PATH | O_CLOEXEC | (flags & O_NOFOLLOW));
        if (p < 0) {
            int err = errno;
            if (err == EAGAIN) return FS_POOL; /* the walk would wait */
            /* The walk's own error (ENOENT, ENOTDIR, EACCES, ELOOP, ...),
             * which the open would meet the same way; EMFILE and ENFILE
             * only because this needs one fd more than the open. */
            if (err == EMFILE || err == ENFILE) return FS_POOL;
            *fd = -1;
            errno = err;
            return FS_DONE;
        }
        struct stat st;
        int r = fstat(p, &st);
        close(p);
        if (r < 0) return FS_POOL;
        if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) return FS_POOL;
    }
    /* EAGAIN: the walk would wait, or a lease is being broken under
     * O_NONBLOCK, which the pool's open reports in its turn */
    int r = openat2_cached(dirfd, path, flags);
    if (r < 0 && errno == EAGAIN) return FS_POOL;
    *fd = r;
    return FS_DONE;
}

/* ---- local mounts -------------------------------------------------------------
 * A small open-addressed table of mount ids and what they are, filled on the
 * pool and read by inline calls without a lock: an entry's verdict is
 * written before its id is published, and an id never changes once set.
 * Full, it simply learns no more (those mounts keep to the pool). */

#define MOUNTS 256
enum { MNT_UNKNOWN = 0, MNT_LOCAL = 1, MNT_REMOTE = 2 };

static struct {
    _Atomic uint64_t id; /* 0: free */
    atomic_int kind;
} mounts[MOUNTS];

static int mount_kind(uint64_t id) {
    if (!id) return MNT_UNKNOWN;
    for (unsigned i = 0, h = (unsigned)(id * 0x9E3779B97F4A7C15ull >> 56); i < MOUNTS; i++) {
        unsigned k = (h + i) % MOUNTS;
        uint64_t v = atomic_load_explicit(&mounts[k].id, memory_order_acquire);
        if (v == id) return atomic_load_explicit(&mounts[k].kind, memory_order_relaxed);
        if (!v) return MNT_UNKNOWN;
    }
    return MNT_UNKNOWN;
}

static void mount_learn(uint64_t id, int kind) {
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    if (!id) return;
    pthread_mutex_lock(&lock); /* writers one at a time; readers take no lock */
    for (unsigned i = 0, h = (unsigned)(id * 0x9E3779B97F4A7C15ull >> 56); i < MOUNTS; i++) {
        unsigned k = (h + i) % MOUNTS;
        uint64_t v = atomic_load_explicit(&mounts[k].id, memory_order_relaxed);
        if (v == id) break;
        if (!v) {
            atomic_store_explicit(&mounts[k].kind, kind, memory_order_relaxed);
            atomic_store_explicit(&mounts[k].id, id, memory_order_release);
            break;
        }
    }
    pthread_mutex_unlock(&lock);
}

/* Filesystems whose getattr and close never wait for anything but memory
 * and local locks. Anything else (NFS, CIFS, FUSE, Ceph, 9p, ...) counts as
 * remote, which is only slower. */
static bool local_fs(long type) {
    switch ((unsigned long)type) {
    case EXT4_SUPER_MAGIC: /* also ext2 and ext3 */
    case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
    case TMPFS_MAGIC: /* also devtmpfs */
    case RAMFS_MAGIC:
    case OVERLAYFS_SUPER_MAGIC:
    case F2FS_SUPER_MAGIC:
    case EROFS_SUPER_MAGIC_V1:
    case SQUASHFS_MAGIC:
    case ISOFS_SUPER_MAGIC:
    case MSDOS_SUPER_MAGIC:
    case PROC_SUPER_MAGIC:
    case SYSFS_MAGIC:
    case DEVPTS_SUPER_MAGIC:
    case SOCKFS_MAGIC:
    case PIPEFS_MAGIC:
    case ANON_INODE_FS_MAGIC:
    case CGROUP2_SUPER_MAGIC:
    case DEBUGFS_MAGIC:
    case TRACEFS_MAGIC:
    case BPF_FS_MAGIC:
    case NSFS_MAGIC:
        return true;
    default:
        return false;
    }
}

static int statx_fd(int fd, unsigned mask, struct statx *sx) {
    return statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, mask | STATX_MNT_ID_UNIQUE, sx);
}

static uint64_t unique_mount(const struct statx *sx) {
    return (sx->stx_mask & STATX_MNT_ID_UNIQUE) ? sx->stx_mnt_id : 0;
}

void async__fs_learn_mount(int fd) {
    struct statx sx;
    if (statx_fd(fd, STATX_TYPE, &sx) < 0) return;
    uint64_t id = unique_mount(&sx);
    if (!id || mount_kind(id) != MNT_UNKNOWN) return;
    struct statfs sf;
    if (fstatfs(fd, &sf) < 0) return;
    mount_learn(id, local_fs((long)sf.f_type) ? MNT_LOCAL : MNT_REMOTE);
}

/* ---- fstat ------------------------------------------------------------------ */

int async__fs_fstat_cached(int fd, struct stat *st) {
    struct statx sx;
    if (statx_fd(fd, STATX_BASIC_STATS, &sx) < 0) return FS_POOL; /* the pool gives fstat's errno */
    if ((sx.stx_mask & STATX_BASIC_STATS) != STATX_BASIC_STATS) return FS_POOL;
    if (mount_kind(unique_mount(&sx)) != MNT_LOCAL) return FS_POOL;
    memset(st, 0, sizeof *st);
    st->st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
    st->st_ino = sx.stx_ino;
    st->st_mode = sx.stx_mode;
    st->st_nlink = sx.stx_nlink;
    st->st_uid = sx.stx_uid;
    st->st_gid = sx.stx_gid;
    st->st_rdev = makedev(sx.stx_rdev_major, sx.stx_rdev_minor);
    st->st_size = (off_t)sx.stx_size;
    st->st_blksize = (blksize_t)sx.stx_blksize;
    st->st_blocks = (blkcnt_t)sx.stx_blocks;
    st->st_atim.tv_sec = sx.stx_atime.tv_sec;
    st->st_atim.tv_nsec = sx.stx_atime.tv_nsec;
    st->st_mtim.tv_sec = sx.stx_mtime.tv_sec;
    st->st_mtim.tv_nsec = sx.stx_mtime.tv_nsec;
    st->st_ctim.tv_sec = sx.stx_ctime.tv_sec;
    st->st_ctim.tv_nsec = sx.stx_ctime.tv_nsec;
    return FS_DONE;
}

/* ---- close ------------------------------------------------------------------- */

bool async__fs_close_may_wait(int fd) {
    struct statx sx;
    if (statx_fd(fd, STATX_TYPE, &sx) < 0) return false; /* close(2) says why, at once */
    if (!S_ISREG(sx.stx_mode)) return false;
    return mount_kind(unique_mount(&sx)) != MNT_LOCAL;
}
