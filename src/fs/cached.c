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
 * lack it, every open goes to the pool). It refuses O_CREAT, O_TRUNC and
 * O_TMPFILE with EAGAIN, so those go straight to the pool. What the walk
 * does not check is what the open then does: opening a FIFO waits for the
 * other end, opening a device runs its driver (a tape rewinds, a watchdog
 * starts), and opening a file on NFSv4 or FUSE asks the server. So a name is
 * first opened with O_PATH (which never opens the file itself), and only a
 * regular file or a directory on a local mount is then opened inline; O_PATH
 * opens themselves are always safe. That open walks the name again, which
 * someone who can write the directory may have replaced since the check (by
 * a FIFO, whose open would wait for a writer, holding the worker and every
 * task on it), so it is made with O_NONBLOCK added, the type checked after
 * and O_NONBLOCK cleared: five or six system calls where a plain second
 * open made four (a first open went from 4.0 to 4.7-5.0 us), and an error
 * of that open goes to the pool, since it may be O_NONBLOCK's own. A name
 * this thread opened inline before skips the O_PATH check: two or three
 * system calls (see `seen` below). Rejected: that one walk for every
 * name, as io_uring's own non-blocking open does, since for a FIFO or a
 * device the open is already the side effect; and reopening the checked
 * O_PATH fd through /proc/self/fd/N instead of walking the name again,
 * which opens the very inode checked but cost 6.9-7.0 us a first open
 * (RESOLVE_CACHED refuses that magic link with EAGAIN, and the /proc walk
 * is slow), needs a dup3() to give the lowest free fd, and leaves
 * O_NOFOLLOW out of the fd's status flags (bench/RESULTS.md).
 *
 * fstat: on a local filesystem fstat(2) reads the in-memory inode; on a
 * network filesystem (NFS, CIFS, FUSE, Ceph) it may ask the server. So a
 * statx(2) of the fd with AT_STATX_DONT_SYNC (which there never asks) first
 * reads the fd's mount, and fstat is answered inline only when that mount is
 * known to be local, learnt on the pool the first time a mount is met
 * (fstatfs(2), which on NFS asks the server too); the answer is then that
 * statx's, converted, when the caller's buffer is on the task's stack (see
 * async__fs_fstat_cached). Mounts are keyed by their 64-bit unique id
 * (STATX_MNT_ID_UNIQUE, Linux 6.8), never reused; without it every fstat
 * goes to the pool. Rejected: keying them by st_dev, which a single
 * fstatat(2) would give. Anonymous device numbers (tmpfs, overlay, NFS,
 * FUSE...) are handed out again after an unmount, so a number learnt as
 * local could name a network filesystem later.
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
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cached.h"

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x4000U
#endif

/* ---- local mounts -------------------------------------------------------------
 * A small open-addressed table of mount ids and what they are, filled on the
 * pool and read by inline calls without a lock: an entry's verdict is
 * written before its id is published, and an id never changes once set.
 * Full, it simply learns no more (those mounts keep to the pool). */

#define MOUNTS 256
/* MNT_FILES: a local filesystem of plain files (ext4, tmpfs...), whose
 * opens, getattrs and closes wait for nothing but memory; MNT_PSEUDO: a
 * local pseudo-filesystem (proc, sysfs, pipes, sockets...), whose getattr
 * and close are as cheap but whose files' opens run whatever code the
 * kernel attached to them, so opens there stay on the pool. */
enum { MNT_UNKNOWN = 0, MNT_FILES, MNT_PSEUDO, MNT_REMOTE };

static bool mount_local(int kind) { return kind == MNT_FILES || kind == MNT_PSEUDO; }

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

/* What a filesystem type is; anything not named (NFS, CIFS, FUSE, Ceph,
 * 9p, ...) counts as remote, which is only slower. */
static int fs_kind(long type) {
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
        return MNT_FILES;
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
        return MNT_PSEUDO;
    default:
        return MNT_REMOTE;
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
    mount_learn(id, fs_kind((long)sf.f_type));
}

/* ---- open ------------------------------------------------------------------ */

/* Flags openat2(2) takes as openat(2) does. openat(2) drops unknown bits
 * that openat2(2) refuses with EINVAL; such calls keep to the pool, and so
 * does O_ASYNC, which open(2) records without arming. */
#define OPEN_KNOWN                                                                        \
    (O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK | O_SYNC | \
     O_DSYNC | O_DIRECT | O_DIRECTORY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC | O_PATH)
/* O_PATH with anything else is EINVAL from openat2(2), ignored by openat(2). */
#define OPATH_KNOWN (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
/* The status flags fcntl(F_SETFL) sets, but O_NONBLOCK (and O_ASYNC, never here). */
#define SETFL_KEEP (O_APPEND | O_DIRECT | O_NOATIME)

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

/* A file this may open inline: a regular file or a directory on a local
 * filesystem of plain files. */
static bool openable(const struct statx *sx) {
    if (!S_ISREG(sx->stx_mode) && !S_ISDIR(sx->stx_mode)) return false;
    return mount_kind(unique_mount(sx)) == MNT_FILES;
}

/* Names this thread opened inline lately, by a hash of (dirfd, O_NOFOLLOW,
 * path): such a name is opened in one walk, with O_NONBLOCK added so that
 * no FIFO or device open can wait, and checked after. A name that has since
 * become a FIFO or a device, or moved to a network mount, has then been
 * opened once inline and is closed again before the pool opens it for real:
 * the one way this differs from open(2), for names replaced between two
 * opens. O_NONBLOCK does not stop NFSv4's or FUSE's own open from asking
 * the server, though (RESOLVE_CACHED lets the walk through and leaves
 * revalidation to the open), so a seen name that moved onto such a mount
 * holds the worker for that one open. A name not seen is opened the same
 * way once its O_PATH check has passed, since it too may be replaced
 * between the check and the open.
 *
 * A worker remembers SEEN_WORKER names, a file server's working set (32 KiB,
 * allocated at its first inline open and freed when it exits); any other
 * thread SEEN_THREAD, in the static TLS that every thread of the process
 * carries. A worker that cannot allocate its table uses the small one. Sets
 * of SEEN_WAYS, newest first, chosen by the hash's high half: a name is
 * checked again only once four newer ones of its set have pushed it out. */
#define SEEN_WORKER 4096
#define SEEN_THREAD 64
#define SEEN_WAYS 4
static __thread uint64_t seen_thread[SEEN_THREAD];

static uint64_t *seen_set(uint64_t h) {
    async__worker_t *w = async__tls_worker;
    if (w && !w->fs_seen) w->fs_seen = calloc(SEEN_WORKER, sizeof *w->fs_seen);
    uint64_t *table = w && w->fs_seen ? w->fs_seen : seen_thread;
    unsigned sets = (table == seen_thread ? SEEN_THREAD : SEEN_WORKER) / SEEN_WAYS;
    return &table[(h >> 32) % sets * SEEN_WAYS];
}

static bool in_set(const uint64_t *set, uint64_t h) {
    for (int i = 0; i < SEEN_WAYS; i++)
        if (set[i] == h) return true;
    return false;
}

static bool seen_has(uint64_t h) { return in_set(seen_set(h), h); }

static void seen_add(uint64_t h) {
    uint64_t *set = seen_set(h);
    if (in_set(set, h)) return;
    memmove(set + 1, set, (SEEN_WAYS - 1) * sizeof *set);
    set[0] = h;
}

static void seen_forget(uint64_t h) {
    uint64_t *set = seen_set(h);
    for (int i = 0; i < SEEN_WAYS; i++)
        if (set[i] == h) set[i] = 0;
}

static uint64_t name_hash(int dirfd, const char *path, int flags) {
    uint64_t h = 0xcbf29ce484222325ull ^ (uint32_t)dirfd ^ ((uint64_t)(flags & O_NOFOLLOW) << 32);
    for (const unsigned char *c = (const unsigned char *)path; *c; c++)
        h = (h ^ *c) * 0x100000001b3ull;
    /* mixed, so that every bit depends on every byte: FNV's high bits barely
     * see the last byte, where names in one directory differ */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h | 1; /* never 0, which marks a free slot */
}

/* The open of a name seen before, or just checked: FS_DONE with *fd, or
 * FS_POOL. */
static int open_checked(int dirfd, const char *path, int flags, uint64_t h, int *fd) {
    int r = openat2_cached(dirfd, path, flags | O_NONBLOCK);
    struct statx sx;
    if (r >= 0 && statx_fd(r, STATX_TYPE, &sx) == 0 && openable(&sx) &&
        ((flags & O_NONBLOCK) || fcntl(r, F_SETFL, flags & SETFL_KEEP) == 0)) {
        *fd = r;
        return FS_DONE;
    }
    /* anything else, errors included (with O_NONBLOCK a FIFO may say ENXIO,
     * a lease EAGAIN), is answered by the pool */
    if (r >= 0) close(r);
    seen_forget(h);
    return FS_POOL;
}

int async__fs_open_cached(int dirfd, const char *path, int flags, int *fd) {
    /* O_TMPFILE's own bit: the flag includes O_DIRECTORY's */
    if (flags & (O_CREAT | O_TRUNC | (O_TMPFILE & ~O_DIRECTORY))) return FS_POOL;
    if (flags & ~OPEN_KNOWN) return FS_POOL;
    if ((flags & O_PATH) && (flags & ~OPATH_KNOWN)) return FS_POOL;
    pthread_once(&probe_once, probe);
    if (!have_cached_walk) return FS_POOL;
    if (flags & O_PATH) {
        /* never the file's own open: no check. EAGAIN: the walk would wait */
        int r = openat2_cached(dirfd, path, flags);
        if (r < 0 && errno == EAGAIN) return FS_POOL;
        *fd = r;
        return FS_DONE;
    }
    uint64_t h = name_hash(dirfd, path, flags);
    if (seen_has(h)) return open_checked(dirfd, path, flags, h, fd);
    /* the type and the mount first, without opening the file */
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
    struct statx sx;
    int r = statx_fd(p, STATX_TYPE, &sx);
    close(p);
    if (r < 0 || !openable(&sx)) return FS_POOL;
    /* The name may be another file by now: it is opened as a seen one is,
     * and checked again. */
    seen_add(h);
    return open_checked(dirfd, path, flags, h, fd);
}

/* ---- fstat ------------------------------------------------------------------ */

/* Whether n bytes at p lie in the stack of the task running on this thread:
 * memory the library mapped writable, where a copy cannot fault. */
static bool on_task_stack(const void *p, size_t n) {
    async__worker_t *w = async__tls_worker;
    async__task_t *t = w ? w->current : NULL;
    if (!t || !t->stack) return false;
    uintptr_t lo = (uintptr_t)t->stack->lo, a = (uintptr_t)p;
    return a >= lo && a - lo <= t->stack->size && n <= t->stack->size - (a - lo);
}

/* struct stat as the kernel's newfstatat fills it from the same attributes
 * (fs/stat.c, cp_new_stat): the padding zeroed, device numbers in glibc's
 * encoding, which for the kernel's 12-bit majors is the kernel's own. */
static void stat_from_statx(struct stat *st, const struct statx *sx) {
    memset(st, 0, sizeof *st);
    st->st_dev = makedev(sx->stx_dev_major, sx->stx_dev_minor);
    st->st_ino = sx->stx_ino;
    st->st_mode = sx->stx_mode;
    st->st_nlink = sx->stx_nlink;
    st->st_uid = sx->stx_uid;
    st->st_gid = sx->stx_gid;
    st->st_rdev = makedev(sx->stx_rdev_major, sx->stx_rdev_minor);
    st->st_size = (off_t)sx->stx_size;
    st->st_blksize = (blksize_t)sx->stx_blksize;
    st->st_blocks = (blkcnt_t)sx->stx_blocks;
    st->st_atim = (struct timespec){sx->stx_atime.tv_sec, sx->stx_atime.tv_nsec};
    st->st_mtim = (struct timespec){sx->stx_mtime.tv_sec, sx->stx_mtime.tv_nsec};
    st->st_ctim = (struct timespec){sx->stx_ctime.tv_sec, sx->stx_ctime.tv_nsec};
}

/* The statx that decides also carries the answer: on a local filesystem
 * AT_STATX_DONT_SYNC changes nothing, so its attributes are fstat(2)'s.
 * They are copied into the caller's buffer only when that lies in the
 * calling task's stack (the usual `struct stat st;`), which cannot fault;
 * any other buffer gets fstat(2) itself, so that a bad pointer gives the
 * kernel's EFAULT, not a crash here. Rejected: one newfstatat(fd, "",
 * AT_EMPTY_PATH | AT_STATX_DONT_SYNC) into the caller's buffer: recent
 * kernels (6.18 here) send an empty path straight to vfs_fstat(), which
 * drops every other flag (an unknown one is not even refused), so on NFS it
 * would ask the server before the mount is known. */
int async__fs_fstat_cached(int fd, struct stat *st, int *r) {
    struct statx sx;
    if (statx_fd(fd, STATX_BASIC_STATS, &sx) < 0) return FS_POOL; /* the pool gives fstat's errno */
    if (!mount_local(mount_kind(unique_mount(&sx)))) return FS_POOL;
    if (on_task_stack(st, sizeof *st)) {
        struct stat tmp;
        stat_from_statx(&tmp, &sx);
        memcpy(st, &tmp, sizeof tmp);
        *r = 0;
        return FS_DONE;
    }
    *r = fstat(fd, st); /* its errors too (EFAULT) are fstat's answer */
    return FS_DONE;
}

/* ---- type ------------------------------------------------------------------------ */

unsigned async__fs_file_type(int fd) {
    struct statx sx;
    if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &sx) < 0) return 0;
    return sx.stx_mode & S_IFMT;
}

/* ---- close ------------------------------------------------------------------- */

bool async__fs_close_may_wait(int fd) {
    struct statx sx;
    if (statx_fd(fd, STATX_TYPE, &sx) < 0) return false; /* close(2) says why, at once */
    if (!S_ISREG(sx.stx_mode)) return false;
    return !mount_local(mount_kind(unique_mount(&sx)));
}
