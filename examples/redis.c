/* redis: a small Redis-protocol (RESP2) server, written the way a blocking
 * server would be: one task per connection that reads, runs commands and
 * writes, and one table shared by every connection behind mutexes.
 *
 *     build/examples/redis 127.0.0.1 6380 &
 *     redis-cli -p 6380 set greeting hello
 *     redis-benchmark -p 6380 -t set,get,incr -n 100000 -q
 *
 * Commands: PING, ECHO, SET (NX, XX, EX, PX, KEEPTTL), GET, DEL, EXISTS,
 * INCR, MSET, MGET, EXPIRE (NX, XX, GT, LT), TTL, PTTL, TYPE, LPUSH, RPUSH,
 * LLEN (a list type, so that WRONGTYPE means something), DBSIZE,
 * FLUSHALL, CONFIG GET (what redis-benchmark asks), COMMAND, QUIT, SHUTDOWN.
 * Replies and error texts are Redis 7's. Both request forms are read: RESP
 * arrays (what clients send) and inline commands (`PING\r\n`, split on
 * blanks; no quoting). One database, kept in memory only. Port 0 picks a
 * free port; the first line on stderr says which.
 *
 * Where it differs from redis-server 7 on purpose (each a bound a server on a
 * network needs, or a feature left out):
 *   - a multibulk count over MAX_ARGS (1M) is a protocol error at once; Redis
 *     takes up to INT_MAX and waits for the arguments;
 *   - a client that pipelines without reading has one batch of replies held for
 *     it (BUF_SIZE and the last reply), not all of them: see serve(); Redis's
 *     normal clients have no output limit. Neither closes such a client, nor an
 *     idle one (Redis's `timeout` is 0 by default);
 *   - a single reply over MAX_REPLY (1 GiB: an MGET of large values) closes the
 *     connection, as Redis's output-buffer hard limit does for pub/sub clients;
 *   - inline commands are not unquoted (`set k "a b"` has four words);
 *   - SET has no GET, EXAT or PXAT; CONFIG has only GET; COMMAND answers an
 *     empty list whatever follows it; TTLs are kept on the monotonic clock, so
 *     the largest EX and PX accepted differ from Redis's near LLONG_MAX.
 *
 * How it is put together, top to bottom:
 *   the table      256 shards, each a hash table behind an async_mutex_t;
 *                  expiry is checked when a key is touched and by a sweeper
 *                  task that visits a bounded number of buckets per tick
 *   replies        appended to the connection's output buffer
 *   commands       one function each, found in a table by name
 *   parsing        every complete command in the input buffer (pipelining)
 *   connections    recv, run every complete command, one send for all replies
 *   the server     accept loop, detached connection tasks, stop on a signal
 *                  or SHUTDOWN */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <asyncstd/asyncstd.h>

/* ---- the table ---------------------------------------------------------------------
 * Keys are spread over NSHARDS shards by hash, so that connections on different
 * workers rarely want the same lock. A shard's lock is held only while its hash
 * table is read or changed, never across an await: a critical section that
 * awaited would hold up every connection wanting that shard. */
#define NSHARDS 256

struct item { /* a byte string: values, list elements */
    char *p;
    size_t n;
};

enum type { STRING, LIST };

struct entry {
    struct entry *next; /* the bucket's chain */
    uint64_t hash;
    int64_t expires; /* CLOCK_MONOTONIC milliseconds; 0: never */
    enum type type;
    struct item str;    /* STRING */
    struct item *elems; /* LIST */
    size_t nelems, cap;
    size_t klen;
    char key[];
};

struct shard {
    alignas(64) async_mutex_t lock; /* a cache line each: no false sharing */
    struct entry **buckets;         /* nbuckets (a power of two), or NULL */
    size_t nbuckets, count;
    size_t sweep; /* the sweeper's next bucket */
};

static struct shard table[NSHARDS]; /* all-zero: unlocked mutexes, empty tables */

/* The monotonic clock, so that TTLs survive changes of the wall clock. */
static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* SipHash-1-3 (Aumasson and Bernstein's keyed hash, one round per 8 bytes and
 * three to finish), keyed at start from getrandom(): a client that cannot know
 * the key cannot pick keys that all fall in one bucket and make every lookup a
 * walk of one long chain (Redis keys its table with SipHash too). */
static uint64_t hash_seed[2];

static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static void sip_round(uint64_t v[4]) {
    v[0] += v[1], v[1] = rotl(v[1], 13), v[1] ^= v[0], v[0] = rotl(v[0], 32);
    v[2] += v[3], v[3] = rotl(v[3], 16), v[3] ^= v[2];
    v[0] += v[3], v[3] = rotl(v[3], 21), v[3] ^= v[0];
    v[2] += v[1], v[1] = rotl(v[1], 17), v[1] ^= v[2], v[2] = rotl(v[2], 32);
}

static uint64_t hash_key(const struct item *k) {
    uint64_t v[4] = {hash_seed[0] ^ 0x736f6d6570736575u, hash_seed[1] ^ 0x646f72616e646f6du,
                     hash_seed[0] ^ 0x6c7967656e657261u, hash_seed[1] ^ 0x7465646279746573u};
    const unsigned char *p = (const unsigned char *)k->p;
    size_t i = 0;
    for (; i + 8 <= k->n; i += 8) {
        uint64_t m;
        memcpy(&m, p + i, 8);
        m = le64toh(m);
        v[3] ^= m;
        sip_round(v);
        v[0] ^= m;
    }
    uint64_t last = (uint64_t)k->n << 56;
    for (size_t j = 0; i + j < k->n; j++) last |= (uint64_t)p[i + j] << (8 * j);
    v[3] ^= last;
    sip_round(v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for (int r = 0; r < 3; r++) sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* The key; without getrandom() (no entropy yet), the clock and the pid. */
static void hash_seed_init(void) {
    if (getrandom(hash_seed, sizeof hash_seed, GRND_NONBLOCK) == (ssize_t)sizeof hash_seed) return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    hash_seed[0] = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15u ^ (uint64_t)ts.tv_sec;
    hash_seed[1] = (uint64_t)getpid() * 0xC2B2AE3D27D4EB4Fu ^ (uint64_t)ts.tv_nsec;
}

/* The top byte picks the shard, the low bits the bucket within it. */
static struct shard *shard_of(uint64_t hash) { return &table[hash >> 56]; }

static void entry_free(struct entry *e) {
    free(e->str.p);
    for (size_t i = 0; i < e->nelems; i++) free(e->elems[i].p);
    free(e->elems);
    free(e);
}

static void unlink_entry(struct shard *s, struct entry **link) {
    struct entry *e = *link;
    *link = e->next;
    s->count--;
    entry_free(e);
}

/* Finds a live key; an expired one is deleted on the way (lazy expiry). The
 * caller holds the key's shard lock. */
static struct entry *lookup(const struct item *key) {
    uint64_t h = hash_key(key);
    struct shard *s = shard_of(h);
    if (!s->buckets) return NULL;
    for (struct entry **link = &s->buckets[h & (s->nbuckets - 1)]; *link; link = &(*link)->next) {
        struct entry *e = *link;
        if (e->hash != h || e->klen != key->n || memcmp(e->key, key->p, key->n) != 0) continue;
        if (e->expires && e->expires <= now_ms()) {
            unlink_entry(s, link);
            return NULL;
        }
        return e;
    }
    return NULL;
}

/* Doubles a shard's bucket array once it holds as many keys as buckets. */
static void grow(struct shard *s) {
    size_t n = s->nbuckets ? s->nbuckets * 2 : 16;
    struct entry **b = calloc(n, sizeof *b);
    if (!b) return; /* longer chains, still correct */
    for (size_t i = 0; i < s->nbuckets; i++) {
        for (struct entry *e = s->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
    s->sweep = 0;
}

/* Deletes `key` if it exists; returns 1 if it did. */
static int delete_key(const struct item *key) {
    struct entry *e = lookup(key); /* also drops it if expired */
    if (!e) return 0;
    struct shard *s = shard_of(e->hash);
    struct entry **link = &s->buckets[e->hash & (s->nbuckets - 1)];
    while (*link != e) link = &(*link)->next;
    unlink_entry(s, link);
    return 1;
}

/* Returns the key's entry, made empty of `type` if it did not exist; NULL when
 * out of memory. */
static struct entry *lookup_or_add(const struct item *key, enum type type) {
    struct entry *e = lookup(key);
    if (e) return e;
    uint64_t h = hash_key(key);
    struct shard *s = shard_of(h);
    if (s->count >= s->nbuckets) grow(s);
    if (!s->buckets || !(e = calloc(1, sizeof *e + key->n))) return NULL;
    e->hash = h;
    e->type = type;
    e->klen = key->n;
    memcpy(e->key, key->p, key->n);
    e->next = s->buckets[h & (s->nbuckets - 1)];
    s->buckets[h & (s->nbuckets - 1)] = e;
    s->count++;
    return e;
}

/* Lock sets: a command locks the shards of all its keys, in ascending shard
 * order (the lock order that keeps two multi-key commands from deadlocking),
 * so that MSET and MGET see and make all their keys at once, as in Redis. */
struct locks {
    uint64_t held[NSHARDS / 64];
};

/* The first shard of the set at or after `s`, or NSHARDS. */
static unsigned next_held(const struct locks *l, unsigned s) {
    for (; s < NSHARDS; s = (s / 64 + 1) * 64) {
        uint64_t bits = l->held[s / 64] >> (s % 64);
        if (bits) return s + (unsigned)__builtin_ctzll(bits);
    }
    return NSHARDS;
}

static void unlock_keys(struct locks *l) {
    for (unsigned s = next_held(l, 0); s < NSHARDS; s = next_held(l, s + 1))
        async_mutex_unlock(&table[s].lock);
}

static int lock_keys(struct locks *l, const struct item *keys, int n, int step) {
    memset(l, 0, sizeof *l);
    for (int i = 0; i < n; i += step) {
        unsigned s = (unsigned)(hash_key(&keys[i]) >> 56);
        l->held[s / 64] |= 1ull << (s % 64);
    }
    for (unsigned s = next_held(l, 0); s < NSHARDS; s = next_held(l, s + 1)) {
        /* a lock wait is not a cancellation point: this fails only for ENOMEM */
        if (async_await(async_mutex_lock(&table[s].lock)) < 0) {
            l->held[s / 64] &= (1ull << (s % 64)) - 1; /* release those taken so far */
            for (unsigned w = s / 64 + 1; w < NSHARDS / 64; w++) l->held[w] = 0;
            unlock_keys(l);
            return -1;
        }
    }
    return 0;
}

/* Active expiry: keys with a TTL that nobody touches again must still go.
 * Every 100 ms the sweeper visits up to SWEEP_BUCKETS buckets of each shard,
 * so each tick's work (and each lock hold) is bounded whatever the table size. */
#define SWEEP_BUCKETS 32

static intptr_t sweeper(void *arg) {
    while (async_await(async_usleep(100 * 1000)) == 0) { /* ECANCELED: stopping */
        for (unsigned i = 0; i < NSHARDS; i++) {
            struct shard *s = &table[i];
            if (async_await(async_mutex_lock(&s->lock)) < 0) continue;
            int64_t now = now_ms();
            for (int b = 0; b < SWEEP_BUCKETS && s->nbuckets; b++) {
                struct entry **link = &s->buckets[s->sweep];
                while (*link) {
                    if ((*link)->expires && (*link)->expires <= now)
                        unlink_entry(s, link);
                    else
                        link = &(*link)->next;
                }
                s->sweep = (s->sweep + 1) & (s->nbuckets - 1);
            }
            async_mutex_unlock(&s->lock);
        }
    }
    return 0;
}

/* Empties the table (FLUSHALL). Takes the locks one at a time. */
static void flush_table(void) {
    for (unsigned i = 0; i < NSHARDS; i++) {
        struct shard *s = &table[i];
        async_await(async_mutex_lock(&s->lock));
        for (size_t b = 0; b < s->nbuckets; b++)
            while (s->buckets[b]) unlink_entry(s, &s->buckets[b]);
        async_mutex_unlock(&s->lock);
    }
}

/* ---- connections and their replies ---------------------------------------------------- */

#define BUF_SIZE (16 * 1024)             /* each connection's starting input and output buffer */
#define MAX_QUERY (1024ul * 1024 * 1024) /* Redis's client-query-buffer-limit */
#define MAX_BULK (512l * 1024 * 1024)    /* Redis's proto-max-bulk-len */
#define MAX_INLINE (64 * 1024)
#define MAX_ARGS (1024 * 1024)           /* the most arguments of one command */
#define MAX_REPLY (1024ul * 1024 * 1024) /* the largest reply built: see put() */

struct conn {
    int fd;
    char *in, *out;
    size_t in_len, in_cap, out_len, out_cap;
    struct item *argv; /* the command being run: pointers into `in` */
    size_t argv_cap;
    struct {             /* a multibulk command at the start of the input, not all there */
        size_t framed;   /* its bytes checked so far by parse(); 0: none pending */
        long long count; /* its arguments */
        long long argc;  /* those of them already whole */
    } part;
    int closing;    /* QUIT, a protocol error, or no memory for a reply: close after sending */
    int out_failed; /* no memory for a reply: this batch's replies are dropped */
};

/* Appends bytes to the output. Out of memory drops the batch's replies and
 * then the connection, rather than send a reply with a hole in it; so does a
 * reply that would outgrow MAX_REPLY (an MGET of many large values), rather
 * than let one request make the process as big as the machine. */
static void put(struct conn *c, const void *p, size_t n) {
    if (c->out_failed) return;
    if (n > MAX_REPLY - c->out_len) {
        c->out_failed = c->closing = 1;
        c->out_len = 0;
        return;
    }
    if (c->out_cap - c->out_len < n) {
        size_t cap = c->out_cap;
        while (cap - c->out_len < n) cap *= 2;
        char *out = realloc(c->out, cap);
        if (!out) {
            c->out_failed = c->closing = 1;
            c->out_len = 0;
            return;
        }
        c->out = out;
        c->out_cap = cap;
    }
    if (n) memcpy(c->out + c->out_len, p, n); /* p may be NULL when n is 0 */
    c->out_len += n;
}

static int reply_status(struct conn *c, const char *s) {
    put(c, "+", 1);
    put(c, s, strlen(s));
    put(c, "\r\n", 2);
    return 0;
}

/* Errors are one line: CR and LF from the client's text become spaces. */
static int reply_error(struct conn *c, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + 1, sizeof line - 3, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n > sizeof line - 4) n = (int)sizeof line - 4;
    for (int i = 1; i <= n; i++)
        if (line[i] == '\r' || line[i] == '\n') line[i] = ' ';
    line[0] = '-';
    memcpy(line + 1 + n, "\r\n", 2);
    put(c, line, (size_t)n + 3);
    return 0;
}

static int reply_header(struct conn *c, char kind, long long v) { /* ":5", "*2", "$3" */
    char line[32];
    put(c, line, (size_t)snprintf(line, sizeof line, "%c%lld\r\n", kind, v));
    return 0;
}

static int reply_int(struct conn *c, long long v) { return reply_header(c, ':', v); }
static int reply_array(struct conn *c, long long n) { return reply_header(c, '*', n); }
static int reply_nil(struct conn *c) {
    put(c, "$-1\r\n", 5);
    return 0;
}

static int reply_bulk(struct conn *c, const char *p, size_t n) {
    reply_header(c, '$', (long long)n);
    put(c, p, n);
    put(c, "\r\n", 2);
    return 0;
}

static int reply_wrongtype(struct conn *c) {
    return reply_error(c, "WRONGTYPE Operation against a key holding the wrong kind of value");
}
static int reply_not_integer(struct conn *c) {
    return reply_error(c, "ERR value is not an integer or out of range");
}
static int reply_oom(struct conn *c) { return reply_error(c, "ERR out of memory"); }

/* Parses a whole decimal integer as Redis does: no blanks, no '+', no leading
 * zeros, within int64_t. */
static int parse_ll(const char *p, size_t n, long long *out) {
    if (n == 0 || n > 20) return -1;
    if (n == 1 && p[0] == '0') return *out = 0, 0;
    int neg = p[0] == '-';
    size_t i = (size_t)neg;
    if (i == n || p[i] < '1' || p[i] > '9') return -1;
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        if (v > (ULLONG_MAX - (unsigned)(p[i] - '0')) / 10) return -1;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (neg ? v > (unsigned long long)LLONG_MAX + 1 : v > LLONG_MAX) return -1;
    *out = neg ? (long long)(0 - v) : (long long)v;
    return 0;
}

static int arg_is(const struct item *a, const char *word) {
    return a->n == strlen(word) && strncasecmp(a->p, word, a->n) == 0;
}

/* Replaces a string entry's value with a copy of `v`. */
static int set_value(struct entry *e, const char *p, size_t n) {
    char *copy = malloc(n ? n : 1);
    if (!copy) return -1;
    memcpy(copy, p, n);
    free(e->str.p);
    e->str = (struct item){copy, n};
    return 0;
}

/* ---- the commands ----------------------------------------------------------------------
 * Each runs with argv[0] the command name and argc already checked against its
 * arity. Single-key commands lock one shard through the same lock set. */

/* Commands write their reply and return 0 (so that `return reply_...` ends one early). */
typedef int command_fn(struct conn *c, int argc, struct item *argv);

static int cmd_ping(struct conn *c, int argc, struct item *argv) {
    if (argc > 2) return reply_error(c, "ERR wrong number of arguments for 'ping' command");
    if (argc == 1)
        reply_status(c, "PONG");
    else
        reply_bulk(c, argv[1].p, argv[1].n);
    return 0;
}

static int cmd_echo(struct conn *c, int argc, struct item *argv) {
    reply_bulk(c, argv[1].p, argv[1].n);
    return 0;
}

static int cmd_get(struct conn *c, int argc, struct item *argv) {
    struct locks l;
    if (lock_keys(&l, &argv[1], 1, 1) < 0) return reply_oom(c);
    struct entry *e = lookup(&argv[1]);
    if (!e)
        reply_nil(c);
    else if (e->type != STRING)
        reply_wrongtype(c);
    else
        reply_bulk(c, e->str.p, e->str.n);
    unlock_keys(&l);
    return 0;
}

/* SET key value [NX|XX] [EX seconds|PX milliseconds|KEEPTTL] */
static int cmd_set(struct conn *c, int argc, struct item *argv) {
    int nx = 0, xx = 0, keepttl = 0;
    long long ttl = 0, scale = 0; /* scale: 1000 for EX, 1 for PX */
    const struct item *expire = NULL;
    /* All the options first, then the number, as Redis does: "EX abc bogus" is a
     * syntax error, not a bad integer. Repeating an option is allowed (the last
     * EX wins); EX with PX, or either with KEEPTTL, is not. */
    for (int i = 3; i < argc; i++) {
        int ex = arg_is(&argv[i], "ex"), px = arg_is(&argv[i], "px");
        if (arg_is(&argv[i], "nx") && !xx)
            nx = 1;
        else if (arg_is(&argv[i], "xx") && !nx)
            xx = 1;
        else if (arg_is(&argv[i], "keepttl") && !scale)
            keepttl = 1;
        else if (((ex && scale != 1) || (px && scale != 1000)) && !keepttl && i + 1 < argc) {
            scale = ex ? 1000 : 1;
            expire = &argv[++i];
        } else {
            return reply_error(c, "ERR syntax error");
        }
    }
    if (expire) {
        if (parse_ll(expire->p, expire->n, &ttl) < 0) return reply_not_integer(c);
        if (ttl <= 0 || ttl > (LLONG_MAX - now_ms()) / scale)
            return reply_error(c, "ERR invalid expire time in 'set' command");
    }
    struct locks l;
    if (lock_keys(&l, &argv[1], 1, 1) < 0) return reply_oom(c);
    struct entry *e = lookup(&argv[1]);
    if ((nx && e) || (xx && !e)) {
        reply_nil(c);
    } else if (!(e = lookup_or_add(&argv[1], STRING))) {
        reply_oom(c);
    } else {
        if (e->type == LIST) { /* SET replaces a key of any type */
            for (size_t i = 0; i < e->nelems; i++) free(e->elems[i].p);
            free(e->elems);
            e->elems = NULL;
            e->nelems = e->cap = 0;
            e->type = STRING;
        }
        if (set_value(e, argv[2].p, argv[2].n) < 0) {
            reply_oom(c);
        } else {
            if (!keepttl) e->expires = scale ? now_ms() + ttl * scale : 0;
            reply_status(c, "OK");
        }
    }
    unlock_keys(&l);
    return 0;
}

static int cmd_incr(struct conn *c, int argc, struct item *argv) {
    struct locks l;
    if (lock_keys(&l, &argv[1], 1, 1) < 0) return reply_oom(c);
    struct entry *e = lookup_or_add(&argv[1], STRING);
    long long v = 0;
    if (!e)
        reply_oom(c);
    else if (e->type != STRING)
        reply_wrongtype(c);
    else if (e->str.p && parse_ll(e->str.p, e->str.n, &v) < 0)
        reply_not_integer(c);
    else if (v == LLONG_MAX)
        reply_error(c, "ERR increment or decrement would overflow");
    else {
        char digits[24];
        int n = snprintf(digits, sizeof digits, "%lld", ++v);
        if (set_value(e, digits, (size_t)n) < 0)
            reply_oom(c);
        else
            reply_int(c, v);
    }
    unlock_keys(&l);
    return 0;
}

static int cmd_del(struct conn *c, int argc, struct item *argv) {
    struct locks l;
    if (lock_keys(&l, &argv[1], argc - 1, 1) < 0) return reply_oom(c);
    long long n = 0;
    for (int i = 1; i < argc; i++) n += delete_key(&argv[i]);
    unlock_keys(&l);
    reply_int(c, n);
    return 0;
}

static int cmd_exists(struct conn *c, int argc, struct item *argv) {
    struct locks l;
    if (lock_keys(&l, &argv[1], argc - 1, 1) < 0) return reply_oom(c);
    long long n = 0;
    for (int i = 1; i < argc; i++) n += lookup(&argv[i]) != NULL;
    unlock_keys(&l);
    reply_int(c, n);
    return 0;
}

static int cmd_mset(struct conn *c, int argc, struct item *argv) {
    if (argc % 2 == 0) return reply_error(c, "ERR wrong number of arguments for 'mset' command");
    struct locks l;
    if (lock_keys(&l, &argv[1], argc - 1, 2) < 0) return reply_oom(c);
    int failed = 0;
    for (int i = 1; i < argc; i += 2) {
        delete_key(&argv[i]); /* a list becomes a string; any TTL goes */
        struct entry *e = lookup_or_add(&argv[i], STRING);
        if (!e || set_value(e, argv[i + 1].p, argv[i + 1].n) < 0) failed = 1;
    }
    unlock_keys(&l);
    if (failed)
        reply_oom(c);
    else
        reply_status(c, "OK");
    return 0;
}

static int cmd_mget(struct conn *c, int argc, struct item *argv) {
    struct locks l;
    if (lock_keys(&l, &argv[1], argc - 1, 1) < 0) return reply_oom(c);
    reply_array(c, argc - 1);
    for (int i = 1; i < argc; i++) {
        struct entry *e = lookup(&argv[i]);
        if (e && e->type == STRING)
            reply_bulk(c, e->str.p, e->str.n);
        else
            reply_nil(c); /* MGET answers nil for other types, not WRONGTYPE */
    }
    unlock_keys(&l);
    return 0;
}

/* EXPIRE key seconds [NX|XX|GT|LT]: 1 if the TTL was set, 0 if not. */
static int cmd_expire(struct conn *c, int argc, struct item *argv) {
    int nx = 0, xx = 0, gt = 0, lt = 0;
    for (int i = 3; i < argc; i++) { /* the options before the number, as in Redis */
        if (arg_is(&argv[i], "nx"))
            nx = 1;
        else if (arg_is(&argv[i], "xx"))
            xx = 1;
        else if (arg_is(&argv[i], "gt"))
            gt = 1;
        else if (arg_is(&argv[i], "lt"))
            lt = 1;
        else
            return reply_error(c, "ERR Unsupported option %.*s", (int)argv[i].n, argv[i].p);
    }
    if (nx && (xx || gt || lt))
        return reply_error(c,
                           "ERR NX and XX, GT or LT options at the same time are not compatible");
    if (gt && lt)
        return reply_error(c, "ERR GT and LT options at the same time are not compatible");
    long long secs;
    if (parse_ll(argv[2].p, argv[2].n, &secs) < 0) return reply_not_integer(c);
    if (secs > LLONG_MAX / 1000 - now_ms() || secs < LLONG_MIN / 1000)
        return reply_error(c, "ERR invalid expire time in 'expire' command");
    struct locks l;
    if (lock_keys(&l, &argv[1], 1, 1) < 0) return reply_oom(c);
    struct entry *e = lookup(&argv[1]);
    int64_t when = now_ms() + secs * 1000;
    /* no TTL counts as infinite for GT and LT */
    int ok = e && !(nx && e->expires) && !(xx && !e->expires) &&
             !(gt && (!e->expires || when <= e->expires)) &&
             !(lt && e->expires && when >= e->expires);
    if (ok && secs <= 0)
        delete_key(&argv[1]); /* a TTL in the past deletes the key */
    else if (ok)
        e->expires = when;
    unlock_keys(&l);
    reply_int(c, ok);
    return 0;
}

/* TTL and PTTL: -2 for no key, -1 for no TTL; TTL rounds to the nearest second. */
static int ttl_common(struct conn *c, struct item *key, int in_ms) {
    struct locks l;
    if (lock_keys(&l, key, 1, 1) < 0) return reply_oom(c);
    struct entry *e = lookup(key);
    long long left = !e ? -2 : !e->expires ? -1 : e->expires - now_ms();
    unlock_keys(&l);
    if (left >= 0 && !in_ms) left = (left + 500) / 1000;
    reply_int(c, left);
    return 0;
}

static int cmd_ttl(struct conn *c, int argc, struct item *argv) {
    return ttl_common(c, &argv[1], 0);
}
static int cmd_pttl(struct conn *c, int argc, struct item *argv) {
    return ttl_common(c, &argv[1], 1);
}

static int cmd_type(struct conn *c, int argc, struct item *argv) {
    struct locks l;
    if (lock_keys(&l, &argv[1], 1, 1) < 0) return reply_oom(c);
    struct entry *e = lookup(&argv[1]);
    reply_status(c, !e ? "none" : e->type == STRING ? "string" : "list");
    unlock_keys(&l);
    return 0;
}

/* LPUSH and RPUSH key element [element ...]: the list's new length. */
static int push(struct conn *c, int argc, struct item *argv, int left) {
    struct locks l;
    if (lock_keys(&l, &argv[1], 1, 1) < 0) return reply_oom(c);
    struct entry *e = lookup_or_add(&argv[1], LIST);
    if (!e)
        reply_oom(c);
    else if (e->type != LIST)
        reply_wrongtype(c);
    else {
        int i;
        for (i = 2; i < argc; i++) {
            if (e->nelems == e->cap) {
                size_t cap = e->cap ? e->cap * 2 : 4;
                struct item *elems = realloc(e->elems, cap * sizeof *elems);
                if (!elems) break;
                e->elems = elems;
                e->cap = cap;
            }
            struct item it = {malloc(argv[i].n ? argv[i].n : 1), argv[i].n};
            if (!it.p) break;
            memcpy(it.p, argv[i].p, it.n);
            if (left) memmove(e->elems + 1, e->elems, e->nelems * sizeof *e->elems);
            e->elems[left ? 0 : e->nelems] = it;
            e->nelems++;
        }
        if (i < argc)
            reply_oom(c);
        else
            reply_int(c, (long long)e->nelems);
    }
    unlock_keys(&l);
    return 0;
}

static int cmd_lpush(struct conn *c, int argc, struct item *argv) { return push(c, argc, argv, 1); }
static int cmd_rpush(struct conn *c, int argc, struct item *argv) { return push(c, argc, argv, 0); }

static int cmd_llen(struct conn *c, int argc, struct item *argv) {
    struct locks l;
    if (lock_keys(&l, &argv[1], 1, 1) < 0) return reply_oom(c);
    struct entry *e = lookup(&argv[1]);
    if (e && e->type != LIST)
        reply_wrongtype(c);
    else
        reply_int(c, e ? (long long)e->nelems : 0);
    unlock_keys(&l);
    return 0;
}

static int cmd_dbsize(struct conn *c, int argc, struct item *argv) {
    long long n = 0;
    for (unsigned i = 0; i < NSHARDS; i++) {
        async_await(async_mutex_lock(&table[i].lock));
        n += (long long)table[i].count; /* expired keys not yet swept count, as in Redis */
        async_mutex_unlock(&table[i].lock);
    }
    reply_int(c, n);
    return 0;
}

static int cmd_flushall(struct conn *c, int argc, struct item *argv) {
    if (argc > 2 || (argc == 2 && !arg_is(&argv[1], "async") && !arg_is(&argv[1], "sync")))
        return reply_error(c, "ERR syntax error"); /* both flush at once here */
    flush_table();
    reply_status(c, "OK");
    return 0;
}

/* CONFIG GET parameter...: what redis-benchmark asks ("save", "appendonly"); others
 * are unknown and left out of the reply, as Redis does with a pattern matching nothing. */
static int cmd_config(struct conn *c, int argc, struct item *argv) {
    if (!arg_is(&argv[1], "get"))
        return reply_error(c, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.", (int)argv[1].n,
                           argv[1].p);
    if (argc < 3) return reply_error(c, "ERR wrong number of arguments for 'config|get' command");
    int save = 0, aof = 0;
    for (int i = 2; i < argc; i++)
        save |= arg_is(&argv[i], "save"), aof |= arg_is(&argv[i], "appendonly");
    reply_array(c, 2 * (save + aof));
    if (save) reply_bulk(c, "save", 4), reply_bulk(c, "", 0);
    if (aof) reply_bulk(c, "appendonly", 10), reply_bulk(c, "no", 2);
    return 0;
}

/* COMMAND (clients ask for the command table's documentation): an empty list. */
static int cmd_command(struct conn *c, int argc, struct item *argv) {
    reply_array(c, 0);
    return 0;
}

static int cmd_quit(struct conn *c, int argc, struct item *argv) {
    reply_status(c, "OK");
    c->closing = 1;
    return 0;
}

static void request_stop(void);
static int cmd_shutdown(struct conn *c, int argc, struct item *argv) {
    request_stop(); /* no reply: the server goes away, as Redis does */
    c->closing = 1;
    return 0;
}

static const struct command {
    const char *name;
    int arity; /* as Redis counts: argc with the name; -N means at least N */
    command_fn *run;
} commands[] = {
    /* the busiest first: the lookup is a linear scan */
    /* clang-format off */
    {"get", 2, cmd_get},          {"set", -3, cmd_set},          {"incr", 2, cmd_incr},
    {"mget", -2, cmd_mget},       {"mset", -3, cmd_mset},        {"del", -2, cmd_del},
    {"exists", -2, cmd_exists},   {"ping", -1, cmd_ping},        {"echo", 2, cmd_echo},
    {"expire", -3, cmd_expire},   {"ttl", 2, cmd_ttl},           {"pttl", 2, cmd_pttl},
    {"type", 2, cmd_type},        {"lpush", -3, cmd_lpush},      {"rpush", -3, cmd_rpush},
    {"llen", 2, cmd_llen},        {"dbsize", 1, cmd_dbsize},     {"flushall", -1, cmd_flushall},
    {"config", -2, cmd_config},   {"command", -1, cmd_command},  {"quit", -1, cmd_quit},
    {"shutdown", -1, cmd_shutdown},
    /* clang-format on */
};

static int run_command(struct conn *c, int argc, struct item *argv) {
    const struct command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof *commands && !cmd; i++)
        if (arg_is(&argv[0], commands[i].name)) cmd = &commands[i];
    if (!cmd) { /* Redis quotes the name and the start of the arguments */
        char args[160] = "";
        size_t len = 0;
        for (int i = 1; i < argc && len < 128; i++)
            len +=
                (size_t)snprintf(args + len, sizeof args - len, "'%.*s' ",
                                 (int)(argv[i].n < 128 - len ? argv[i].n : 128 - len), argv[i].p);
        return reply_error(c, "ERR unknown command '%.*s', with args beginning with: %s",
                           (int)(argv[0].n < 128 ? argv[0].n : 128), argv[0].p, args);
    }
    if (cmd->arity > 0 ? argc != cmd->arity : argc < -cmd->arity)
        return reply_error(c, "ERR wrong number of arguments for '%s' command", cmd->name);
    return cmd->run(c, argc, argv);
}

/* ---- parsing ---------------------------------------------------------------------------
 * parse() looks at the unread input [start, end) for one whole command. It returns
 * its length and fills c->argv (pointers into the input, so values are never
 * copied twice), or 0 when the command is not all there yet, or -1 on a
 * protocol error (with the error reply written and the connection closing).
 *
 * A multibulk command that is not all there keeps how far it was checked in
 * c->part, and the next call (after more input has arrived) goes on from there:
 * read again from its start each time, a million-argument command sent in small
 * pieces would cost the square of its length. The arguments are collected in one
 * more pass once it is whole, as they point into an input buffer that moves. */

static int add_arg(struct conn *c, int argc, const char *p, size_t n) {
    if ((size_t)argc == c->argv_cap) {
        size_t cap = c->argv_cap * 2;
        struct item *argv = realloc(c->argv, cap * sizeof *argv);
        if (!argv) return -1;
        c->argv = argv;
        c->argv_cap = cap;
    }
    c->argv[argc] = (struct item){(char *)p, n};
    return 0;
}

static long protocol_error(struct conn *c, const char *what) {
    reply_error(c, "ERR Protocol error: %s", what);
    c->closing = 1;
    return -1;
}

/* Reads "<kind><integer>\r\n" at *p; 1 done, 0 incomplete, -1 malformed, -2 no
 * end of line within MAX_INLINE bytes. */
static int header(const char **p, const char *end, long long *v) {
    const char *cr = memchr(*p, '\r', (size_t)(end - *p));
    if (!cr || cr + 1 == end) return end - *p > MAX_INLINE ? -2 : 0;
    if (cr[1] != '\n' || parse_ll(*p + 1, (size_t)(cr - *p - 1), v) < 0) return -1;
    *p = cr + 2;
    return 1;
}

static long parse(struct conn *c, const char *start, const char *end, int *argcp) {
    const char *p = start;
    int argc = 0;
    if (*p != '*') { /* inline: one line of words */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return end - p > MAX_INLINE ? protocol_error(c, "too big inline request") : 0;
        const char *stop = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
        while (p < stop) {
            while (p < stop && (*p == ' ' || *p == '\t')) p++;
            const char *w = p;
            while (p < stop && *p != ' ' && *p != '\t') p++;
            if (p > w && add_arg(c, argc++, w, (size_t)(p - w)) < 0)
                return protocol_error(c, "out of memory");
        }
        *argcp = argc;
        return nl + 1 - start;
    }
    long long count, len, whole = 0;
    int r;
    if (c->part.framed) { /* checked this far by an earlier call */
        p += c->part.framed;
        count = c->part.count;
        whole = c->part.argc;
    } else if ((r = header(&p, end, &count)) <= 0) {
        return r == 0    ? 0
               : r == -2 ? protocol_error(c, "too big mbulk count string")
                         : protocol_error(c, "invalid multibulk length");
    } else if (count > MAX_ARGS) { /* Redis waits for up to INT_MAX: see the top */
        return protocol_error(c, "invalid multibulk length");
    }
    for (; whole < count; whole++) { /* check the framing of each bulk string */
        const char *bulk = p;
        if (p < end && *p != '$') {
            char what[64];
            snprintf(what, sizeof what, "expected '$', got '%c'", *p);
            return protocol_error(c, what);
        }
        r = p < end ? header(&p, end, &len) : 0;
        if (r < 0)
            return protocol_error(c, r == -2 ? "too big bulk count string" : "invalid bulk length");
        if (r > 0 && (len < 0 || len > MAX_BULK)) return protocol_error(c, "invalid bulk length");
        if (r == 0 || end - p < len + 2) { /* not all there: the next call starts at `bulk` */
            c->part.framed = (size_t)(bulk - start);
            c->part.count = count;
            c->part.argc = whole;
            return 0;
        }
        p += len + 2;
    }
    c->part.framed = 0;
    p = start; /* whole and well-formed: collect the arguments */
    header(&p, end, &count);
    for (; argc < count; argc++) {
        header(&p, end, &len);
        if (add_arg(c, argc, p, (size_t)len) < 0) return protocol_error(c, "out of memory");
        p += len + 2;
    }
    *argcp = argc; /* a count <= 0 is an empty command: skipped, no reply */
    return p - start;
}

/* ---- one task per connection ------------------------------------------------------------
 * Read what has arrived, run every complete command in it, send all their
 * replies in one call: a pipelining client gets one send(2) per batch. The
 * task awaits on every recv and send, so other connections on its worker run
 * meanwhile; it is detached, and its failure ends only its own connection.
 *
 * A batch stops running commands once BUF_SIZE bytes of replies are waiting,
 * sends them, and goes on with the input it holds before reading more. So a
 * client that pipelines GETs of a large value and never reads costs its input
 * buffer and one batch of replies, the send then waiting on it (and only on
 * it) for good; Redis, whose normal clients have no output limit, buffers all
 * the replies. */

static intptr_t serve(void *arg) {
    struct conn c = {
        .fd = (int)(intptr_t)arg, .in_cap = BUF_SIZE, .out_cap = BUF_SIZE, .argv_cap = 8};
    c.in = malloc(c.in_cap);
    c.out = malloc(c.out_cap);
    c.argv = malloc(c.argv_cap * sizeof *c.argv);
    int held = 0; /* the last batch stopped with commands left in the input */
    for (unsigned batch = 1; c.in && c.out && c.argv && !c.closing; batch++) {
        /* A recv that finds data and a send that finds room return without
         * switching tasks, so a client that never stops sending would keep this
         * worker to itself. Scheduling is cooperative: step aside now and then. */
        if (batch % 64 == 0 && async_yield() < 0) break;
        if (c.in_len == c.in_cap) { /* a command larger than the buffer: make room */
            char *in = c.in_cap < MAX_QUERY ? realloc(c.in, c.in_cap * 2) : NULL;
            if (!in) break;
            c.in = in;
            c.in_cap *= 2;
        }
        if (!held) {
            intptr_t n = async_await(async_recv(c.fd, c.in + c.in_len, c.in_cap - c.in_len, 0));
            if (n <= 0) break; /* 0: the client closed; -1: reset, or cancelled at shutdown */
            c.in_len += (size_t)n;
        }

        size_t used = 0;
        while (used < c.in_len && !c.closing && c.out_len < BUF_SIZE) {
            int argc = 0;
            long len = parse(&c, c.in + used, c.in + c.in_len, &argc);
            if (len <= 0) break;
            used += (size_t)len;
            if (argc > 0) run_command(&c, argc, c.argv);
        }
        held = used < c.in_len && c.out_len >= BUF_SIZE;
        c.in_len -= used;
        memmove(c.in, c.in + used, c.in_len);

        if (c.out_len && async_await(async_send(c.fd, c.out, c.out_len, 0)) < 0) break;
        c.out_len = 0;
        /* a big value passed through: give the memory back, as a blocking server would */
        if (c.out_cap > BUF_SIZE * 4) {
            free(c.out);
            c.out_cap = BUF_SIZE;
            c.out = malloc(c.out_cap);
        }
        if (c.in_cap > BUF_SIZE * 4 && c.in_len <= BUF_SIZE) {
            char *in = realloc(c.in, BUF_SIZE);
            if (in) c.in = in, c.in_cap = BUF_SIZE;
        }
    }
    async_await(async_close(c.fd));
    free(c.in);
    free(c.out);
    free(c.argv);
    return 0;
}

/* ---- the server -------------------------------------------------------------------------- */

/* Connections are detached tasks, not a task group: a group cancels all its
 * tasks when one fails, and one client's reset must not end everybody's
 * connection. At exit, async_runtime_shutdown() cancels those still open. */
static int accept_loop(int lfd) {
    for (;;) {
        int fd = (int)async_await(async_accept(lfd, NULL, NULL));
        if (fd >= 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            async_future_t *conn = async_spawn(serve, (void *)(intptr_t)fd);
            if (conn)
                async_future_free(conn); /* detach */
            else
                close(fd);
        } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            async_await(async_usleep(10000)); /* out of fds: the connection waits in the queue */
        } else if (errno != ECONNABORTED && errno != EINTR) {
            return errno == EBADF ? 0 : -1; /* EBADF: the listener was closed to stop us */
        }
    }
}

/* Stopping: a signal handler (or SHUTDOWN) writes a byte to a socket pair;
 * the watcher task wakes and closes the listener, which ends the accept loop. */
static int stop_pair[2] = {-1, -1};

static void request_stop(void) {
    int saved = errno;
    (void)send(stop_pair[1], "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL); /* async-signal-safe */
    errno = saved;
}

static void on_signal(int sig) {
    (void)sig;
    request_stop();
}

static intptr_t watch_stop(void *arg) {
    char c;
    async_await(async_recv(stop_pair[0], &c, 1, 0));
    async_await(async_close((int)(intptr_t)arg));
    return 0;
}

int main(int argc, char **argv) {
    const char *host = argc >= 2 ? argv[1] : "127.0.0.1", *port = argc >= 3 ? argv[2] : "6379";
    hash_seed_init();
    int lfd = (int)async_await(async_tcp_listen(host, port, 511));
    if (lfd < 0 ||
        async_await(async_socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, stop_pair)) < 0) {
        perror("redis: listen");
        async_runtime_shutdown();
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    async_future_t *watcher = async_spawn(watch_stop, (void *)(intptr_t)lfd);
    async_future_t *sweep = async_spawn(sweeper, NULL);
    struct sockaddr_storage addr; /* port 0 picks a free port: say which */
    socklen_t len = sizeof addr;
    char where[64] = "?";
    if (getsockname(lfd, (struct sockaddr *)&addr, &len) == 0)
        getnameinfo((struct sockaddr *)&addr, len, NULL, 0, where, sizeof where, NI_NUMERICSERV);
    fprintf(stderr, "redis: listening on %s port %s with %d workers\n", host, where,
            async_worker_count());

    int r = accept_loop(lfd);
    async_cancel(watcher); /* when stopped by an error rather than a request */
    async_await(watcher);
    if (r < 0) {
        perror("redis: accept");
        async_await(async_close(lfd)); /* only now: the watcher cannot close it too */
    }
    async_cancel(sweep);
    async_await(sweep);
    async_runtime_shutdown(); /* cancels the connections still open; they close their fds */
    for (unsigned i = 0; i < NSHARDS; i++) { /* no task is left to use the table: no locks */
        for (size_t b = 0; b < table[i].nbuckets; b++)
            while (table[i].buckets[b]) unlink_entry(&table[i], &table[i].buckets[b]);
        free(table[i].buckets);
    }
    return r < 0;
}
