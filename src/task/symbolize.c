/* Code addresses to names, for dumps and stall reports: the ELF symbol table
 * of the file the address lies in (.symtab, which names static functions too,
 * else .dynsym),
 * found with dl_iterate_phdr and read from a read-only mapping of the file.
 * A dump maps each file once (up to MODULES_MAX of them) and unmaps them all
 * at its end, so memory stays bounded and nothing is cached between dumps.
 * dladdr(3) is the fallback for what has no file (the vDSO) or a stripped
 * one; it knows only exported symbols. It maps files and allocates, so it
 * runs in ordinary threads only, never in a signal handler. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump.h"

#if UINTPTR_MAX == 0xffffffffu
typedef Elf32_Ehdr ehdr_t;
typedef Elf32_Shdr shdr_t;
typedef Elf32_Sym sym_t;
#define SYM_TYPE ELF32_ST_TYPE
#else
typedef Elf64_Ehdr ehdr_t;
typedef Elf64_Shdr shdr_t;
typedef Elf64_Sym sym_t;
#define SYM_TYPE ELF64_ST_TYPE
#endif

/* Where an address lies: the object's load bias, its file and its segments' span. */
typedef struct found {
    uintptr_t pc;
    uintptr_t bias;
    uintptr_t lo, hi;
    char path[256];
    bool ok;
} found_t;

static int find_object(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    found_t *f = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (f->pc < lo || f->pc >= lo + ph->p_memsz) continue;
        f->bias = info->dlpi_addr;
        f->lo = lo;
        f->hi = lo + ph->p_memsz;
        /* the main program has no name here */
        const char *name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "/proc/self/exe";
        snprintf(f->path, sizeof f->path, "%s", name);
        f->ok = true;
        return 1;
    }
    return 0;
}

static bool usable(const async__module_t *m, const sym_t *s) {
    int type = SYM_TYPE(s->st_info);
    return (type == STT_FUNC || type == STT_NOTYPE) && s->st_shndx != SHN_UNDEF && s->st_value &&
           s->st_name != 0 && s->st_name < m->strs_size;
}

static int by_value(const void *a, const void *b, void *arg) {
    const sym_t *syms = arg;
    uintptr_t x = syms[*(const uint32_t *)a].st_value, y = syms[*(const uint32_t *)b].st_value;
    return x < y ? -1 : x > y;
}

/* An index of the functions sorted by address, so that a lookup is a binary search. */
static void module_index(async__module_t *m) {
    const sym_t *syms = m->syms;
    size_t n = 0;
    for (size_t i = 0; i < m->nsyms; i++) n += usable(m, &syms[i]);
    if (!n || m->nsyms > UINT32_MAX) return;
    uint32_t *idx = malloc(n * sizeof *idx);
    if (!idx) return; /* out of memory: no names from this file */
    n = 0;
    for (size_t i = 0; i < m->nsyms; i++)
        if (usable(m, &syms[i])) idx[n++] = (uint32_t)i;
    qsort_r(idx, n, sizeof *idx, by_value, (void *)syms);
    m->index = idx;
    m->nindex = n;
}

static void module_load(async__module_t *m) {
    m->map = NULL;
    int fd = open(m->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < (off_t)sizeof(ehdr_t)) {
        close(fd);
        return;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return;
    m->map = map;
    m->map_size = (size_t)st.st_size;
    const ehdr_t *eh = map;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_shentsize != sizeof(shdr_t) ||
        eh->e_shoff == 0 || eh->e_shoff > m->map_size ||
        (size_t)eh->e_shnum > (m->map_size - eh->e_shoff) / sizeof(shdr_t))
        return;
    const shdr_t *sh = (const shdr_t *)((const char *)map + eh->e_shoff);
    const shdr_t *pick = NULL;
    for (int i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type == SHT_SYMTAB || (!pick && sh[i].sh_type == SHT_DYNSYM)) pick = &sh[i];
    if (!pick || pick->sh_link >= eh->e_shnum) return;
    const shdr_t *str = &sh[pick->sh_link];
    if (pick->sh_offset > m->map_size || pick->sh_size > m->map_size - pick->sh_offset ||
        str->sh_offset > m->map_size || str->sh_size > m->map_size - str->sh_offset)
        return;
    m->syms = (const char *)map + pick->sh_offset;
    m->nsyms = pick->sh_size / sizeof(sym_t);
    m->strs = (const char *)map + str->sh_offset;
    m->strs_size = str->sh_size;
    module_index(m);
}

/* The symbol of module `m` that holds file address `a` (or the nearest one
 * below it, for symbols of unknown size), or NULL. */
static const char *module_lookup(const async__module_t *m, uintptr_t a, uintptr_t *off) {
    const sym_t *syms = m->syms;
    size_t lo = 0, hi = m->nindex; /* first symbol above a */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (syms[m->index[mid]].st_value <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* among the symbols at the highest address below a, one whose size holds it */
    for (size_t k = lo; k > 0 && lo - k < 8; k--) {
        const sym_t *s = &syms[m->index[k - 1]];
        if (s->st_size && a >= s->st_value + s->st_size) continue;
        *off = a - s->st_value;
        const char *name = m->strs + s->st_name;
        /* a name running off the table's end is not printed */
        return memchr(name, '\0', m->strs_size - s->st_name) ? name : NULL;
    }
    return NULL;
}

void async__symbolizer_init(async__symbolizer_t *s) { memset(s, 0, sizeof *s); }

void async__symbolizer_free(async__symbolizer_t *s) {
    for (unsigned i = 0; i < s->n; i++)
        if (s->mods[i].map) munmap(s->mods[i].map, s->mods[i].map_size);
    for (unsigned i = 0; i < s->n; i++) free(s->mods[i].index);
    s->n = 0;
}

size_t async__symbolize(async__symbolizer_t *s, uintptr_t pc, char *buf, size_t len) {
    found_t f = {.pc = pc};
    dl_iterate_phdr(find_object, &f);
    const char *name = NULL;
    uintptr_t off = 0;
    const char *file = "?";
    if (f.ok) {
        file = strrchr(f.path, '/') ? strrchr(f.path, '/') + 1 : f.path;
        async__module_t *m = NULL;
        for (unsigned i = 0; i < s->n; i++)
            if (s->mods[i].lo == f.lo && strcmp(s->mods[i].path, f.path) == 0) m = &s->mods[i];
        if (!m && s->n < ASYNC_DUMP_MODULES_MAX) {
            m = &s->mods[s->n++];
            memset(m, 0, sizeof *m);
            m->lo = f.lo;
            snprintf(m->path, sizeof m->path, "%s", f.path);
            module_load(m);
        }
        if (m && m->index) name = module_lookup(m, pc - f.bias, &off);
    }
    Dl_info di;
    if (!name && dladdr((void *)pc, &di) && di.dli_sname) {
        name = di.dli_sname;
        off = pc - (uintptr_t)di.dli_saddr;
        if (!f.ok && di.dli_fname)
            file = strrchr(di.dli_fname, '/') ? strrchr(di.dli_fname, '/') + 1 : di.dli_fname;
    }
    int n;
    if (name)
        n = snprintf(buf, len, "%s+0x%lx (%s)", name, (unsigned long)off, file);
    else if (f.ok) /* the address in the file, as addr2line -e takes it */
        n = snprintf(buf, len, "? (%s+0x%lx)", file, (unsigned long)(pc - f.bias));
    else
        n = snprintf(buf, len, "? (%s)", file);
    return n < 0 ? 0 : (size_t)n;
}

size_t async__frame_line(async__symbolizer_t *s, unsigned i, uintptr_t pc, bool ret, char *buf,
                         size_t len) {
    char name[320];
    /* a return address points after the call: name the call's function */
    async__symbolize(s, pc - ret, name, sizeof name);
    int n = snprintf(buf, len, "    #%-2u 0x%016lx %s", i, (unsigned long)pc, name);
    return n < 0 ? 0 : (size_t)n;
}

const char *async__symbol_name(async__symbolizer_t *s, uintptr_t pc, char *buf, size_t len) {
    char full[320];
    if (!pc || !async__symbolize(s, pc, full, sizeof full) || full[0] == '?') return NULL;
    char *plus = strchr(full, '+');
    if (plus) *plus = '\0';
    snprintf(buf, len, "%s", full);
    return buf;
}
