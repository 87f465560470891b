/* allocfail_shim: an LD_PRELOAD library that makes one chosen allocation of a
 * program fail, for tests/allocfail.sh.
 *
 * It wraps malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign,
 * valloc and anonymous mmap (the object and stack allocators in src/task/
 * map their memory directly). Counting starts when main() begins (the shim
 * wraps __libc_start_main) and stops when it returns, so the dynamic loader's
 * and the constructors' allocations are never counted.
 *
 *   FAIL_LIST=PATH  writes one line per counted call: its site, kind and size
 *   FAIL_SITE=KEY   with FAIL_NTH=K: the Kth counted call from that site fails
 *   FAIL_AT=N       the Nth counted call fails, whatever its site
 *   on exit         "allocfail: N calls counted" on stderr
 * A failing call returns NULL (mmap: MAP_FAILED; posix_memalign: ENOMEM) with
 * errno ENOMEM, once. A site is a hash of the first SITE_FRAMES return
 * addresses above the shim, each as object and offset: the same call path
 * has the same key in every run, whereas the Nth call overall is not always
 * the same one when threads allocate side by side. The driver lists the
 * sites in a run where nothing fails, then fails each occurrence in turn.
 *
 * When the chosen call fails, its backtrace goes to stderr. If the process then
 * aborts, a SIGABRT handler prints the abort's backtrace and decides whether
 * this is a dependency's own abort on the failed allocation: the allocation
 * was made directly from libuv or glibc, abort() was called from that same
 * object, and a caller of the allocating function was still on the stack
 * (so the abort happened before that call returned). It then prints
 * "allocfail: excluded: ..." with both sites; tests/allocfail.sh counts those
 * runs as excluded instead of failed. Anything else (a crash, an abort from
 * asyncstd or from an assertion) stays a failure. Under a sanitizer, an
 * allocation the sanitizer's runtime makes for itself (no frame of the program
 * below it) is reported as excluded when it is made to fail. */
#define _GNU_SOURCE
#undef _FILE_OFFSET_BITS /* meson's -D_FILE_OFFSET_BITS=64 renames mmap; we define both */
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FRAMES 48
#define SITE_FRAMES 8

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);
static void *(*real_valloc)(size_t);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);

static atomic_long counter;
static atomic_int armed;
static long fail_at;
static unsigned long long fail_site;
static long fail_nth;
static atomic_long site_hits;
static int list_fd = -1;
static __thread int inside; /* the shim's own bookkeeping, on this thread: not counted */
static int (*real_main)(int, char **, char **);

/* what failed, kept for the SIGABRT handler */
static void *fail_frames[FRAMES];
static int fail_nframes;
static atomic_int failed;

/* dlsym() may allocate while we resolve the real functions: serve it from here */
static char boot[8192];
static size_t boot_used;
static int resolving;

/* POSIX's way to store dlsym's answer in a function pointer */
#define LOOKUP(fp, name) (*(void **)&(fp) = dlsym(RTLD_NEXT, name))

static void resolve(void) {
    if (real_malloc || resolving) return;
    resolving = 1;
    LOOKUP(real_calloc, "calloc");
    LOOKUP(real_realloc, "realloc");
    LOOKUP(real_free, "free");
    LOOKUP(real_posix_memalign, "posix_memalign");
    LOOKUP(real_aligned_alloc, "aligned_alloc");
    LOOKUP(real_memalign, "memalign");
    LOOKUP(real_valloc, "valloc");
    LOOKUP(real_mmap, "mmap");
    LOOKUP(real_malloc, "malloc"); /* last: it says the others are set */
    resolving = 0;
}

static void *boot_alloc(size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (boot_used + n > sizeof boot) return NULL;
    void *p = boot + boot_used;
    boot_used += n;
    return p;
}

static int is_boot(const void *p) {
    return (const char *)p >= boot && (const char *)p < boot + sizeof boot;
}

static void say(const char *s) {
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

/* "OBJECT+0xOFFSET (SYMBOL)" for an address, without allocating. */
static void format_site(char *buf, size_t len, void *addr) {
    Dl_info info;
    if (dladdr(addr, &info) && info.dli_fname) {
        const char *base = strrchr(info.dli_fname, '/');
        base = base ? base + 1 : info.dli_fname;
        snprintf(buf, len, "%s+0x%lx (%s)", base,
                 (unsigned long)((uintptr_t)addr - (uintptr_t)info.dli_fbase),
                 info.dli_sname ? info.dli_sname : "?");
    } else {
        snprintf(buf, len, "%p", addr);
    }
}

static void say_site(const char *prefix, void *addr) {
    char site[400], line[512];
    format_site(site, sizeof site, addr);
    snprintf(line, sizeof line, "%s%s\n", prefix, site);
    say(line);
}

static const char *object_of(void *addr) {
    Dl_info info;
    return dladdr(addr, &info) ? info.dli_fname : NULL;
}

static int same_object(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static int in_shim(void *addr) {
    Dl_info me, it;
    return dladdr(&counter, &me) && dladdr(addr, &it) && me.dli_fbase == it.dli_fbase;
}

/* Index of the allocation's caller: the first frame after the shim's own (a sanitizer's
 * backtrace interceptor may come before them). */
static int first_outside(void **frames, int n) {
    int i = 0;
    while (i < n && !in_shim(frames[i])) i++;
    while (i < n && in_shim(frames[i])) i++;
    return i < n ? i : 0;
}

static int is_sanitizer(const char *obj) {
    return obj && (strstr(obj, "libasan") || strstr(obj, "libubsan") || strstr(obj, "liblsan") ||
                   strstr(obj, "libtsan"));
}

static void report_failure(long n, const char *what, size_t size) {
    char line[160];
    snprintf(line, sizeof line, "allocfail: failing call %ld: %s(%zu), from:\n", n, what, size);
    if (fail_site)
        snprintf(line, sizeof line,
                 "allocfail: failing call %ld, occurrence %ld of site %016llx: %s(%zu), from:\n", n,
                 fail_nth, fail_site, what, size);
    say(line);
    fail_nframes = backtrace(fail_frames, FRAMES);
    int a = first_outside(fail_frames, fail_nframes);
    for (int i = a; i < fail_nframes; i++) say_site("    ", fail_frames[i]);
    atomic_store(&failed, 1);
    /* The sanitizer runtime's own allocations are not the program's to handle: ASan sets up
     * each new thread before the thread's function runs (pthread_getattr_np), and aborts if
     * that fails. Their stacks hold no frame of the program at all; an allocation made through
     * an interceptor (ASan's pthread_create, for the library's threads) does. */
    const char *exe = object_of((void *)(uintptr_t)real_main);
    int by = -1;
    for (int i = a; i < fail_nframes; i++) {
        const char *obj = object_of(fail_frames[i]);
        if (same_object(obj, exe)) return;
        if (by < 0 && is_sanitizer(obj)) by = i;
    }
    if (by >= 0) {
        char at[400], san[400], msg[900];
        format_site(at, sizeof at, fail_frames[a]);
        format_site(san, sizeof san, fail_frames[by]);
        snprintf(msg, sizeof msg,
                 "allocfail: excluded: the sanitizer runtime's own allocation:"
                 " allocated at %s, for %s\n",
                 at, san);
        say(msg);
    }
}

/* FNV-1a over the object name and offset of each of the first SITE_FRAMES frames. */
static unsigned long long site_key(void **frames, int n, int a) {
    unsigned long long h = 14695981039346656037ULL;
    for (int i = a; i < n && i < a + SITE_FRAMES; i++) {
        Dl_info info;
        uintptr_t off = (uintptr_t)frames[i];
        if (dladdr(frames[i], &info) && info.dli_fname) {
            for (const char *c = info.dli_fname; *c; c++)
                h = (h ^ (unsigned char)*c) * 1099511628211ULL;
            off -= (uintptr_t)info.dli_fbase;
        }
        for (int b = 0; b < 8; b++) h = (h ^ ((off >> (8 * b)) & 0xff)) * 1099511628211ULL;
    }
    return h;
}

/* Decides whether the call counted now must fail. */
static int should_fail(const char *what, size_t size) {
    if (!atomic_load_explicit(&armed, memory_order_relaxed) || inside) return 0;
    inside = 1;
    long n = atomic_fetch_add(&counter, 1) + 1;
    int fail = fail_at && n == fail_at;
    if (fail_site || list_fd >= 0) {
        void *frames[FRAMES];
        int nf = backtrace(frames, FRAMES);
        int a = first_outside(frames, nf);
        unsigned long long key = site_key(frames, nf, a);
        if (list_fd >= 0) {
            char site[400], line[512];
            format_site(site, sizeof site, frames[a]);
            int len = snprintf(line, sizeof line, "%016llx %s %zu %s\n", key, what, size, site);
            ssize_t w = write(list_fd, line, (size_t)len);
            (void)w;
        }
        if (key == fail_site && atomic_fetch_add(&site_hits, 1) + 1 == fail_nth) fail = 1;
    }
    if (fail) {
        report_failure(n, what, size);
        errno = ENOMEM;
    }
    inside = 0;
    return fail;
}

static void on_abort(int sig) {
    void *frames[FRAMES];
    int n = backtrace(frames, FRAMES);
    say("allocfail: SIGABRT, from:\n");
    int caller = -1; /* the frame that called abort() */
    for (int i = 0; i < n; i++) {
        Dl_info info;
        say_site("    ", frames[i]);
        if (caller < 0 && dladdr(frames[i], &info) && info.dli_sname &&
            strcmp(info.dli_sname, "abort") == 0)
            caller = i + 1;
    }
    if (atomic_load(&failed) && caller > 0 && caller < n) {
        int a = first_outside(fail_frames, fail_nframes);
        const char *alloc_obj = a < fail_nframes ? object_of(fail_frames[a]) : NULL;
        const char *abort_obj = object_of(frames[caller]);
        const char *exe = object_of((void *)(uintptr_t)real_main);
        int dependency = alloc_obj && !same_object(alloc_obj, exe) &&
                         (strstr(alloc_obj, "libuv") || strstr(alloc_obj, "libc.so"));
        int live = 0; /* is a caller of the allocating function still on the stack? */
        for (int i = a + 1; i < fail_nframes && !live; i++)
            for (int j = caller; j < n; j++)
                if (frames[j] == fail_frames[i]) live = 1;
        if (dependency && same_object(alloc_obj, abort_obj) && live) {
            /* one line per site, the first exported function on the way named */
            char at[400], ab[400], via[400] = "?", line[1400];
            format_site(at, sizeof at, fail_frames[a]);
            format_site(ab, sizeof ab, frames[caller]);
            for (int i = a; i < fail_nframes; i++) {
                Dl_info info;
                if (dladdr(fail_frames[i], &info) && info.dli_sname) {
                    format_site(via, sizeof via, fail_frames[i]);
                    break;
                }
            }
            const char *base = strrchr(alloc_obj, '/');
            snprintf(line, sizeof line,
                     "allocfail: excluded: %s aborts on its own failed allocation:"
                     " allocated at %s, abort called at %s, via %s\n",
                     base ? base + 1 : alloc_obj, at, ab, via);
            say(line);
        }
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

static int wrapped_main(int argc, char **argv, char **envp) {
    const char *s = getenv("FAIL_AT");
    fail_at = s ? atol(s) : 0;
    if ((s = getenv("FAIL_SITE")) != NULL) fail_site = strtoull(s, NULL, 16);
    if ((s = getenv("FAIL_NTH")) != NULL) fail_nth = atol(s);
    if ((s = getenv("FAIL_LIST")) != NULL)
        list_fd = open(s, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fail_at > 0 || fail_site || list_fd >= 0) {
        void *warm[4];
        backtrace(warm, 4); /* loads libgcc_s now, not while counting */
        struct sigaction sa = {.sa_handler = on_abort};
        sigaction(SIGABRT, &sa, NULL);
    }
    atomic_store(&armed, 1);
    int r = real_main(argc, argv, envp);
    atomic_store(&armed, 0);
    char line[96];
    snprintf(line, sizeof line, "allocfail: %ld calls counted\n", atomic_load(&counter));
    say(line);
    return r;
}

int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv, void (*init)(void),
                      void (*fini)(void), void (*rtld_fini)(void), void *stack_end) {
    int (*next)(int (*)(int, char **, char **), int, char **, void (*)(void), void (*)(void),
                void (*)(void), void *);
    LOOKUP(next, "__libc_start_main");
    real_main = main;
    return next(wrapped_main, argc, argv, init, fini, rtld_fini, stack_end);
}

void *malloc(size_t n) {
    resolve();
    if (!real_malloc) return boot_alloc(n);
    if (should_fail("malloc", n)) return NULL;
    return real_malloc(n);
}

void *calloc(size_t k, size_t n) {
    resolve();
    if (!real_malloc) return boot_alloc(k * n); /* boot memory is zero */
    if (should_fail("calloc", k * n)) return NULL;
    return real_calloc(k, n);
}

void *realloc(void *p, size_t n) {
    resolve();
    if (is_boot(p)) {
        void *q = malloc(n);
        if (q) memcpy(q, p, n < sizeof boot ? n : sizeof boot);
        return q;
    }
    if (should_fail("realloc", n)) return NULL;
    return real_realloc(p, n);
}

void free(void *p) {
    resolve();
    if (!p || is_boot(p)) return;
    real_free(p);
}

int posix_memalign(void **out, size_t align, size_t n) {
    resolve();
    if (should_fail("posix_memalign", n)) return ENOMEM;
    return real_posix_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n) {
    resolve();
    if (should_fail("aligned_alloc", n)) return NULL;
    return real_aligned_alloc(align, n);
}

void *memalign(size_t align, size_t n) {
    resolve();
    if (should_fail("memalign", n)) return NULL;
    return real_memalign(align, n);
}

void *valloc(size_t n) {
    resolve();
    if (should_fail("valloc", n)) return NULL;
    return real_valloc(n);
}

/* Only anonymous mappings are allocations; file mappings (the loader's) are not. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    resolve();
    if ((flags & MAP_ANONYMOUS) && should_fail("mmap", len)) return MAP_FAILED;
    return real_mmap(addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    return mmap(addr, len, prot, flags, fd, off);
}
