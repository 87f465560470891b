/* Private declarations of the dump (dump.c): the symbolizer it uses
 * (symbolize.c), the pool's view of its threads (pool.c) and the dump
 * signal's thread (dump_signal.c). Never installed. */
#ifndef ASYNC_TASK_DUMP_H
#define ASYNC_TASK_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ASYNC_DUMP_MODULES_MAX 16 /* files whose symbols one dump reads */

/* One mapped ELF file and its functions sorted by address. */
typedef struct async__module {
    uintptr_t lo; /* the start of the segment the file was found by */
    char path[256];
    void *map;
    size_t map_size;
    const void *syms; /* its symbol table in the mapping */
    size_t nsyms;
    const char *strs;
    size_t strs_size;
    uint32_t *index; /* functions, by address; NULL: no names from this file */
    size_t nindex;
} async__module_t;

typedef struct async__symbolizer {
    async__module_t mods[ASYNC_DUMP_MODULES_MAX];
    unsigned n;
} async__symbolizer_t;

void async__symbolizer_init(async__symbolizer_t *s);
void async__symbolizer_free(async__symbolizer_t *s); /* unmaps every file */
/* "name+0x1c (file)" for a code address, "? (file+0x1234)" when the file has no
 * name for it (the address in the file, for addr2line), "? (?)" when no file
 * holds it; the length written. */
size_t async__symbolize(async__symbolizer_t *s, uintptr_t pc, char *buf, size_t len);
/* Frame `i` of a backtrace, as dumps and stall reports print it:
 * "    #3  0x00005555555551c9 name+0x1c (file)". `ret`: pc is a return address
 * (it points after the call), and the call's function is named. */
size_t async__frame_line(async__symbolizer_t *s, unsigned i, uintptr_t pc, bool ret, char *buf,
                         size_t len);
/* The bare name of the function at `pc` in buf, or NULL if unknown. */
const char *async__symbol_name(async__symbolizer_t *s, uintptr_t pc, char *buf, size_t len);

/* ---- the pool's threads, as a dump sees them (pool.c) ---------------------- */
typedef struct async__pool_thread_view {
    bool busy;
    uintptr_t fn;     /* the function the job runs (a user job's own), or 0 */
    const char *path; /* a file job's path (read with a checked copy), or NULL */
    int64_t since_ms; /* async__coarse_ms() when the job started */
} async__pool_thread_view_t;

typedef struct async__pool_view {
    unsigned threads, max, idle;
    size_t queued[2]; /* file jobs, user jobs (counted up to ASYNC_DUMP_QUEUE_COUNT) */
} async__pool_view_t;

#define ASYNC_DUMP_QUEUE_COUNT 100000

/* Copies the pool's state and up to `cap` threads' views; returns how many threads. */
unsigned async__pool_view(async__pool_view_t *v, async__pool_thread_view_t *threads, unsigned cap);
/* From a pool job: what the calling pool thread runs now (a file job's call). */
void async__pool_note(uintptr_t fn, const char *path);

/* ---- the dump signal (dump_signal.c) --------------------------------------- */
/* The signal ASYNCSTD_DUMP_SIGNAL names, usable or not, or 0: the stall
 * watchdog, which chooses its own before, leaves it alone. No message. */
int async__dump_signal_wanted(void);
void async__dump_signal_start(void); /* at runtime start: ASYNCSTD_DUMP_SIGNAL */
void async__dump_signal_stop(void);  /* at shutdown, before the workers stop */

#endif
