/* async_sendmmsg and async_recvmmsg: batches of datagrams over Unix datagram
 * pairs and UDP on loopback, both ways; the waits of the blocking calls they
 * mirror (a receive that waits for its whole batch, a send that waits for a
 * slow reader, a stream message finished before the next); MSG_WAITFORONE,
 * MSG_DONTWAIT, the timeout; cancellation and async_close while waiting; and
 * glibc's answers on the same inputs, bad ones included. Every case runs on a
 * plain thread and in a task (both_contexts), and every wait is bounded. */
#include "glibc_compare.h"
#include "net_helpers.h"

#include <limits.h>
#include <signal.h>
#include <sys/uio.h>

/* NULL vectors and bad pointers are among the inputs compared, on purpose */
#pragma GCC diagnostic ignored "-Wnonnull"
#define NULL_ARGS_ON_PURPOSE __attribute__((no_sanitize("nonnull-attribute")))

TestSuite(net_mmsg, .init = rt_start, .fini = rt_stop, .timeout = 60);

/* ASan's recvmmsg interceptor reads *timeout before the call: a row with a
 * bad timeout pointer runs without ASan only. */
#ifdef TESTS_HAVE_LSAN
#define NOT_ASAN 0
#else
#define NOT_ASAN 1
#endif

/* The longest any wait in these tests may take before it counts as a hang. */
#define BOUND_MS 5000

/* ---- batches ---------------------------------------------------------------- */

enum { N = 64, SIZE = 64 };

/* N messages, each one iovec into a buffer of its own, and an address slot. */
typedef struct batch {
    char buf[N][SIZE];
    struct iovec iov[N];
    struct sockaddr_storage name[N];
    struct mmsghdr m[N];
} batch_t;

/* Message i's length and bytes: every message differs from its neighbours. */
static size_t len_of(int i) { return 1 + (size_t)(i * 13) % SIZE; }
static char byte_of(int i, size_t j) { return (char)(i * 7 + (int)j); }

static batch_t *batch_new(void) {
    batch_t *b = calloc(1, sizeof *b);
    CHECK(b != NULL);
    return b;
}

/* Messages first.. first+n-1 to send, to `to` if not NULL. */
static void batch_out(batch_t *b, int n, int first, const void *to, socklen_t tolen) {
    memset(b->m, 0, sizeof b->m);
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < len_of(first + i); j++) b->buf[i][j] = byte_of(first + i, j);
        b->iov[i] = (struct iovec){b->buf[i], len_of(first + i)};
        b->m[i].msg_hdr.msg_iov = &b->iov[i];
        b->m[i].msg_hdr.msg_iovlen = 1;
        if (to) {
            memcpy(&b->name[i], to, tolen);
            b->m[i].msg_hdr.msg_name = &b->name[i];
            b->m[i].msg_hdr.msg_namelen = tolen;
        }
    }
}

/* Room for N messages, with marks the kernel must overwrite. */
static void batch_in(batch_t *b) {
    memset(b, 0, sizeof *b);
    for (int i = 0; i < N; i++) {
        b->iov[i] = (struct iovec){b->buf[i], SIZE};
        b->m[i].msg_hdr.msg_iov = &b->iov[i];
        b->m[i].msg_hdr.msg_iovlen = 1;
        b->m[i].msg_hdr.msg_name = &b->name[i];
        b->m[i].msg_hdr.msg_namelen = sizeof b->name[i];
        b->m[i].msg_hdr.msg_flags = -1;
        b->m[i].msg_len = UINT_MAX;
    }
}

/* Entries 0..n-1 hold messages first.. first+n-1, whole, in order. */
static bool batch_holds(const batch_t *b, int n, int first) {
    for (int i = 0; i < n; i++) {
        const struct mmsghdr *m = &b->m[i];
        if (m->msg_len != len_of(first + i) || m->msg_hdr.msg_flags != 0) return false;
        for (size_t j = 0; j < len_of(first + i); j++)
            if (b->buf[i][j] != byte_of(first + i, j)) return false;
    }
    return true;
}

/* Entries n.. were left alone (the marks of batch_in). */
static bool batch_untouched(const batch_t *b, int n) {
    for (int i = n; i < N; i++)
        if (b->m[i].msg_len != UINT_MAX) return false;
    return true;
}

/* A Unix datagram pair made by the library (non-blocking). */
static void dgram_pair(int sv[2]) {
    CHECK_EQ(async_await(async_socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv)), 0);
}

static void close_both(int sv[2]) {
    CHECK_EQ(async_await(async_close(sv[0])), 0);
    CHECK_EQ(async_await(async_close(sv[1])), 0);
}

/* A UDP socket on a free loopback port; *a receives its address. */
static int udp_socket(struct sockaddr_in *a) {
    int fd = (int)async_await(async_socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    CHECK(fd >= 0);
    struct sockaddr_in any = loopback4(0);
    CHECK_EQ(async_await(async_bind(fd, (struct sockaddr *)&any, sizeof any)), 0);
    socklen_t len = sizeof *a;
    CHECK_EQ(getsockname(fd, (struct sockaddr *)a, &len), 0);
    return fd;
}

/* Sleeps on a plain thread and in a task alike. */
static void pause_ms(unsigned ms) { CHECK_EQ(async_await(async_usleep(ms * 1000u)), 0); }

/* Waits (briefly, on this thread) until fd is readable. */
static void ready(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&p, 1, BOUND_MS), 1);
}

/* Datagrams queued on fd, taken without waiting. */
static int drain_count(int fd) {
    char b[SIZE];
    int n = 0;
    while (recv(fd, b, sizeof b, MSG_DONTWAIT) >= 0) n++;
    return n;
}

/* Fills fd's peer with SIZE-byte datagrams until the kernel says EAGAIN; their number. */
static int fill(int fd) {
    char b[SIZE] = {0};
    int n = 0;
    while (send(fd, b, sizeof b, MSG_DONTWAIT) == (ssize_t)sizeof b) n++;
    CHECK(errno == EAGAIN);
    return n;
}

/* ---- batches both ways ------------------------------------------------------- */

static void unix_batches(void) {
    int sv[2];
    dgram_pair(sv);
    batch_t *in = batch_new(), *out = batch_new();
    for (int dir = 0; dir < 2; dir++) {
        int from = sv[dir], to = sv[1 - dir];
        batch_in(in);
        async_future_t *r = async_recvmmsg(to, in->m, N, 0, NULL); /* waits for all N */
        batch_out(out, N, 0, NULL, 0);
        CHECK_EQ(async_await(async_sendmmsg(from, out->m, N, 0)), N);
        for (int i = 0; i < N; i++) CHECK_EQ(out->m[i].msg_len, len_of(i));
        CHECK_EQ(async_await_timeout(r, BOUND_MS), N);
        CHECK(batch_holds(in, N, 0));
        /* an unnamed Unix peer: no address */
        for (int i = 0; i < N; i++) CHECK_EQ(in->m[i].msg_hdr.msg_namelen, 0);
    }
    close_both(sv);
    free(in);
    free(out);
}

Test(net_mmsg, unix_dgram_batches_both_ways) { both_contexts(unix_batches); }

static bool from_addr(const batch_t *b, int n, const struct sockaddr_in *a) {
    for (int i = 0; i < n; i++) {
        struct sockaddr_in got;
        memcpy(&got, &b->name[i], sizeof got);
        if (b->m[i].msg_hdr.msg_namelen != sizeof got || got.sin_family != AF_INET ||
            got.sin_port != a->sin_port || got.sin_addr.s_addr != a->sin_addr.s_addr)
            return false;
    }
    return true;
}

static void udp_batches(void) {
    struct sockaddr_in aa, ba;
    int a = udp_socket(&aa), b = udp_socket(&ba);
    batch_t *out = batch_new(), *in = batch_new(), *back = batch_new();
    /* a to b: one address per message */
    batch_out(out, N, 0, &ba, sizeof ba);
    batch_in(in);
    async_future_t *r = async_recvmmsg(b, in->m, N, 0, NULL);
    CHECK_EQ(async_await(async_sendmmsg(a, out->m, N, 0)), N);
    CHECK_EQ(async_await_timeout(r, BOUND_MS), N);
    CHECK(batch_holds(in, N, 0));
    CHECK(from_addr(in, N, &aa));
    /* b echoes each datagram to the address it came from */
    for (int i = 0; i < N; i++) in->iov[i].iov_len = in->m[i].msg_len;
    batch_in(back);
    r = async_recvmmsg(a, back->m, N, 0, NULL);
    CHECK_EQ(async_await(async_sendmmsg(b, in->m, N, 0)), N);
    CHECK_EQ(async_await_timeout(r, BOUND_MS), N);
    CHECK(batch_holds(back, N, 0));
    CHECK(from_addr(back, N, &ba));
    CHECK_EQ(async_await(async_close(a)), 0);
    CHECK_EQ(async_await(async_close(b)), 0);
    free(out);
    free(in);
    free(back);
}

Test(net_mmsg, udp_batches_both_ways) { both_contexts(udp_batches); }

/* ---- receive: the whole batch, MSG_WAITFORONE, MSG_DONTWAIT --------------------- */

/* Sends the batch's n messages one by one, gap_ms apart; after `hold` of
 * them it waits (up to BOUND_MS) until the test sets `go`. */
typedef struct slow_sender {
    int fd, n, hold;
    unsigned gap_ms;
    batch_t *b;
    atomic_int sent;
    atomic_bool go;
} slow_sender_t;

static void *slow_main(void *arg) {
    slow_sender_t *s = arg;
    for (int i = 0; i < s->n; i++) {
        if (i == s->hold) WAIT_UNTIL(atomic_load(&s->go), BOUND_MS);
        sleep_ms(s->gap_ms);
        CHECK_EQ(sendmsg(s->fd, &s->b->m[i].msg_hdr, 0), (ssize_t)len_of(i));
        atomic_fetch_add(&s->sent, 1);
    }
    return NULL;
}

static void whole_batch(void) {
    int sv[2];
    dgram_pair(sv);
    batch_t *in = batch_new(), *out = batch_new();
    batch_in(in);
    batch_out(out, 8, 0, NULL, 0);
    async_future_t *r = async_recvmmsg(sv[1], in->m, 8, 0, NULL);
    slow_sender_t s = {.fd = sv[0], .n = 8, .hold = 4, .gap_ms = 5, .b = out};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, slow_main, &s), 0);
    for (int i = 0; i < BOUND_MS && atomic_load(&s.sent) < 4; i++) pause_ms(1);
    pause_ms(20);
    CHECK(!async_future_settled(r)); /* half came: a blocking recvmmsg waits on */
    atomic_store(&s.go, true);
    CHECK_EQ(async_await_timeout(r, BOUND_MS), 8);
    CHECK(batch_holds(in, 8, 0));
    CHECK(batch_untouched(in, 8));
    CHECK_EQ(pthread_join(t, NULL), 0);
    close_both(sv);
    free(in);
    free(out);
}

Test(net_mmsg, recv_waits_for_the_whole_batch) { both_contexts(whole_batch); }

static void waitforone(void) {
    int sv[2];
    dgram_pair(sv);
    batch_t *in = batch_new(), *out = batch_new();
    /* three there: all three, at once */
    batch_out(out, 3, 0, NULL, 0);
    CHECK_EQ(sendmmsg(sv[0], out->m, 3, 0), 3);
    batch_in(in);
    CHECK_EQ(async_await_timeout(async_recvmmsg(sv[1], in->m, N, MSG_WAITFORONE, NULL), BOUND_MS),
             3);
    CHECK(batch_holds(in, 3, 0));
    CHECK(batch_untouched(in, 3));
    /* none there: it waits for one, then takes what else is there */
    batch_in(in);
    async_future_t *r = async_recvmmsg(sv[1], in->m, N, MSG_WAITFORONE, NULL);
    pause_ms(20);
    CHECK(!async_future_settled(r));
    batch_out(out, 2, 3, NULL, 0);
    CHECK_EQ(sendmmsg(sv[0], out->m, 2, 0), 2);
    intptr_t got = async_await_timeout(r, BOUND_MS);
    CHECK(got == 1 || got == 2);
    CHECK(batch_holds(in, (int)got, 3));
    CHECK_EQ(drain_count(sv[1]), 2 - got);
    close_both(sv);
    free(in);
    free(out);
}

Test(net_mmsg, waitforone_returns_with_what_is_there) { both_contexts(waitforone); }

static void dontwait(void) {
    int sv[2];
    dgram_pair(sv);
    batch_t *in = batch_new(), *out = batch_new();
    batch_in(in);
    CHECK_ERR(async_await(async_recvmmsg(sv[1], in->m, N, MSG_DONTWAIT, NULL)), EAGAIN);
    CHECK(batch_untouched(in, 0));
    struct timespec t = {1, 0};
    CHECK_ERR(async_await(async_recvmmsg(sv[1], in->m, N, MSG_DONTWAIT, &t)), EAGAIN);
    CHECK(t.tv_sec == 1 && t.tv_nsec == 0); /* written back only when something came */
    batch_out(out, 2, 0, NULL, 0);
    CHECK_EQ(sendmmsg(sv[0], out->m, 2, 0), 2);
    CHECK_EQ(async_await(async_recvmmsg(sv[1], in->m, N, MSG_DONTWAIT, NULL)), 2);
    CHECK(batch_holds(in, 2, 0));
    /* a full peer: the send takes what fits, or says EAGAIN */
    int queued = fill(sv[0]);
    CHECK(queued > 0);
    batch_out(out, N, 0, NULL, 0);
    CHECK_ERR(async_await(async_sendmmsg(sv[0], out->m, N, MSG_DONTWAIT)), EAGAIN);
    CHECK_EQ(drain_count(sv[1]), queued);
    close_both(sv);
    free(in);
    free(out);
}

Test(net_mmsg, dontwait_never_waits) { both_contexts(dontwait); }

/* ---- send: waiting for room ----------------------------------------------------- */

typedef struct reader {
    int fd, n, got;
    unsigned delay_ms;
    bool ok;
} reader_t;

/* Takes n datagrams (batch_out's messages 0..n-1, in order) after a delay. */
static void *reader_main(void *arg) {
    reader_t *r = arg;
    sleep_ms(r->delay_ms);
    r->ok = true;
    char b[SIZE];
    double end = now_ms() + BOUND_MS;
    while (r->got < r->n && now_ms() < end) {
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t k = recv(r->fd, b, sizeof b, MSG_DONTWAIT);
        if (k < 0) continue;
        if ((size_t)k != len_of(r->got)) r->ok = false;
        for (ssize_t j = 0; r->ok && j < k; j++)
            if (b[j] != byte_of(r->got, (size_t)j)) r->ok = false;
        r->got++;
    }
    return NULL;
}

static void small_sndbuf(int fd) {
    int v = 4096;
    CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v), 0);
}

static void send_waits_for_room(void) {
    int sv[2];
    dgram_pair(sv);
    small_sndbuf(sv[0]);
    batch_t *out = batch_new();
    batch_out(out, N, 0, NULL, 0);
    async_future_t *f = async_sendmmsg(sv[0], out->m, N, 0);
    pause_ms(20);
    CHECK(!async_future_settled(f)); /* N datagrams do not fit in 4 KiB */
    reader_t r = {.fd = sv[1], .n = N, .delay_ms = 10};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, reader_main, &r), 0);
    CHECK_EQ(async_await_timeout(f, BOUND_MS), N);
    for (int i = 0; i < N; i++) CHECK_EQ(out->m[i].msg_len, len_of(i));
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(r.got, N);
    CHECK(r.ok);
    close_both(sv);
    free(out);
}

Test(net_mmsg, send_waits_for_a_slow_reader) { both_contexts(send_waits_for_room); }

/* A datagram to a Unix address whose receiver's queue is full: the sending
 * socket would never be told of room (net.h), so the send ends at once with
 * the count so far, or EAGAIN for the first message. */
static void full_unix_address(void) {
    int rx = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int tx = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(rx >= 0 && tx >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX}; /* abstract: a leading zero byte */
    int len = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "asyncstd-mmsg-%d-%s", (int)getpid(),
                       compare_where);
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len);
    CHECK_EQ(bind(rx, (struct sockaddr *)&a, alen), 0);
    batch_t *out = batch_new();
    batch_out(out, N, 0, &a, alen);
    double t0 = now_ms();
    intptr_t n = async_await_timeout(async_sendmmsg(tx, out->m, N, 0), BOUND_MS);
    CHECK(n > 0 && n < N);
    CHECK_ERR(async_await_timeout(async_sendmmsg(tx, out->m, N, 0), BOUND_MS), EAGAIN);
    CHECK(now_ms() - t0 < BOUND_MS); /* neither waited out its bound */
    CHECK_EQ(drain_count(rx), n);
    close(rx);
    close(tx);
    free(out);
}

Test(net_mmsg, send_to_a_full_unix_address_does_not_wait) { both_contexts(full_unix_address); }

/* Three stream messages of three iovecs each; byte k of the stream is (k * 7) & 0xff. */
enum { PART_A = 10000, PART_B = 30000, PART_C = 25536, MSG_BYTES = PART_A + PART_B + PART_C };

typedef struct stream_reader {
    int fd;
    size_t want, got;
    bool ok;
} stream_reader_t;

static void *stream_reader_main(void *arg) {
    stream_reader_t *r = arg;
    sleep_ms(10);
    r->ok = true;
    char *b = malloc(65536);
    double end = now_ms() + BOUND_MS;
    while (b && r->got < r->want && now_ms() < end) {
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t k = recv(r->fd, b, 65536, MSG_DONTWAIT);
        for (ssize_t j = 0; j < k; j++)
            if (b[j] != (char)((r->got + (size_t)j) * 7)) r->ok = false;
        if (k > 0) r->got += (size_t)k;
    }
    free(b);
    return NULL;
}

static void stream_messages(struct mmsghdr m[3], struct iovec iov[9], char *data) {
    static const size_t parts[3] = {PART_A, PART_B, PART_C};
    for (size_t k = 0; k < 3 * (size_t)MSG_BYTES; k++) data[k] = (char)(k * 7);
    memset(m, 0, 3 * sizeof *m);
    char *p = data;
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            iov[3 * i + j] = (struct iovec){p, parts[j]};
            p += parts[j];
        }
        m[i].msg_hdr.msg_iov = &iov[3 * i];
        m[i].msg_hdr.msg_iovlen = 3;
    }
}

static void stream_finishes_messages(void) {
    int sv[2];
    CHECK_EQ(async_await(async_socketpair(AF_UNIX, SOCK_STREAM, 0, sv)), 0);
    small_sndbuf(sv[0]);
    struct mmsghdr m[3];
    struct iovec iov[9];
    char *data = malloc(3 * MSG_BYTES);
    CHECK(data != NULL);
    stream_messages(m, iov, data);
    stream_reader_t r = {.fd = sv[1], .want = 3 * (size_t)MSG_BYTES};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, stream_reader_main, &r), 0);
    /* each message is taken in parts: each is finished, as a blocking sendmmsg(2) does */
    CHECK_EQ(async_await_timeout(async_sendmmsg(sv[0], m, 3, 0), BOUND_MS), 3);
    for (int i = 0; i < 3; i++) CHECK_EQ(m[i].msg_len, MSG_BYTES);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(r.got, r.want);
    CHECK(r.ok);
    /* MSG_DONTWAIT: the kernel's one call, the first message in part */
    stream_messages(m, iov, data);
    intptr_t n = async_await(async_sendmmsg(sv[0], m, 3, MSG_DONTWAIT));
    CHECK_EQ(n, 1);
    CHECK(m[0].msg_len > 0 && m[0].msg_len < MSG_BYTES);
    close_both(sv);
    free(data);
}

Test(net_mmsg, stream_send_finishes_each_message) { both_contexts(stream_finishes_messages); }

/* ---- the timeout ----------------------------------------------------------------- */

static void timeouts(void) {
    int sv[2];
    dgram_pair(sv);
    batch_t *in = batch_new(), *out = batch_new();
    batch_out(out, 8, 0, NULL, 0);

    /* two of eight came and no more come: the wait ends when the timeout has
     * passed (recvmmsg(2) would block until a third came), and 0 is left */
    CHECK_EQ(sendmmsg(sv[0], out->m, 2, 0), 2);
    batch_in(in);
    struct timespec t = {0, 50 * 1000000};
    double t0 = now_ms();
    CHECK_EQ(async_await_timeout(async_recvmmsg(sv[1], in->m, 8, 0, &t), BOUND_MS), 2);
    double took = now_ms() - t0;
    CHECK(took >= 45 && took < BOUND_MS);
    CHECK(t.tv_sec == 0 && t.tv_nsec == 0);
    CHECK(batch_holds(in, 2, 0));
    CHECK(batch_untouched(in, 2));

    /* all there in time: at once, with the time left written back */
    CHECK_EQ(sendmmsg(sv[0], out->m, 8, 0), 8);
    batch_in(in);
    t = (struct timespec){5, 0};
    CHECK_EQ(async_await_timeout(async_recvmmsg(sv[1], in->m, 8, 0, &t), BOUND_MS), 8);
    CHECK(t.tv_sec == 4 && t.tv_nsec > 0);
    CHECK(batch_holds(in, 8, 0));

    /* a zero timeout: one datagram, however many are there */
    CHECK_EQ(sendmmsg(sv[0], out->m, 3, 0), 3);
    batch_in(in);
    t = (struct timespec){0, 0};
    CHECK_EQ(async_await_timeout(async_recvmmsg(sv[1], in->m, 8, 0, &t), BOUND_MS), 1);
    CHECK(batch_holds(in, 1, 0));
    CHECK_EQ(drain_count(sv[1]), 2);

    /* nothing yet: the timeout does not end the wait for the first datagram,
     * which, come after it, is returned alone */
    batch_in(in);
    t = (struct timespec){0, 20 * 1000000};
    async_future_t *r = async_recvmmsg(sv[1], in->m, 8, 0, &t);
    pause_ms(60);
    CHECK(!async_future_settled(r));
    CHECK_EQ(sendmmsg(sv[0], out->m, 2, 0), 2);
    CHECK_EQ(async_await_timeout(r, BOUND_MS), 1);
    CHECK(t.tv_sec == 0 && t.tv_nsec == 0);
    CHECK(batch_holds(in, 1, 0));
    CHECK_EQ(drain_count(sv[1]), 1);

    /* the time goes on across waits: a slow batch (two, 15 ms apart, then a
     * pause longer than the timeout) ends at the timeout */
    batch_in(in);
    slow_sender_t s = {.fd = sv[0], .n = 8, .hold = 2, .gap_ms = 15, .b = out};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, slow_main, &s), 0);
    t = (struct timespec){0, 50 * 1000000};
    intptr_t got = async_await_timeout(async_recvmmsg(sv[1], in->m, 8, 0, &t), BOUND_MS);
    CHECK(got == 1 || got == 2);
    CHECK(t.tv_sec == 0 && t.tv_nsec == 0);
    CHECK(batch_holds(in, (int)got, 0));
    atomic_store(&s.go, true);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(drain_count(sv[1]), 8 - got);
    close_both(sv);
    free(in);
    free(out);
}

Test(net_mmsg, timeout) { both_contexts(timeouts); }

/* ---- cancellation and close -------------------------------------------------------- */

static void cancel_waits(void) {
    int sv[2];
    dgram_pair(sv);
    batch_t *in = batch_new(), *out = batch_new();
    struct timespec t;

    /* nothing came: ECANCELED, and the vector untouched; ETIMEDOUT the same way */
    for (int timed = 0; timed < 2; timed++) {
        batch_in(in);
        t = (struct timespec){10, 0};
        async_future_t *r = async_recvmmsg(sv[1], in->m, 8, 0, timed ? &t : NULL);
        pause_ms(10);
        async_cancel(r);
        CHECK_ERR(async_await_timeout(r, BOUND_MS), ECANCELED);
        CHECK(batch_untouched(in, 0));
        CHECK(t.tv_sec == 10 && t.tv_nsec == 0);
        CHECK_ERR(async_await_timeout(async_recvmmsg(sv[1], in->m, 8, 0, timed ? &t : NULL), 20),
                  ETIMEDOUT);
    }

    /* three of eight came: their count, since they are gone from the socket;
     * with a timeout, the time left is written back */
    batch_out(out, 8, 0, NULL, 0);
    for (int timed = 0; timed < 2; timed++) {
        batch_in(in);
        t = (struct timespec){10, 0};
        async_future_t *r = async_recvmmsg(sv[1], in->m, 8, 0, timed ? &t : NULL);
        CHECK_EQ(sendmmsg(sv[0], out->m, 3, 0), 3);
        pause_ms(20);
        CHECK(!async_future_settled(r));
        async_cancel(r);
        CHECK_EQ(async_await_timeout(r, BOUND_MS), 3);
        CHECK(batch_holds(in, 3, 0));
        CHECK(batch_untouched(in, 3));
        CHECK_EQ(drain_count(sv[1]), 0);
        if (timed) CHECK(t.tv_sec >= 5 && t.tv_sec < 10);
        /* the same through async_await_timeout: the count, not ETIMEDOUT */
        batch_in(in);
        CHECK_EQ(sendmmsg(sv[0], out->m, 2, 0), 2);
        CHECK_EQ(async_await_timeout(async_recvmmsg(sv[1], in->m, 8, 0, timed ? &t : NULL), 30), 2);
        CHECK(batch_holds(in, 2, 0));
    }

    /* a send waiting for room after some went: their count, and the peer has
     * exactly those */
    small_sndbuf(sv[0]);
    batch_out(out, N, 0, NULL, 0);
    async_future_t *f = async_sendmmsg(sv[0], out->m, N, 0);
    pause_ms(20);
    CHECK(!async_future_settled(f));
    async_cancel(f);
    intptr_t sent = async_await_timeout(f, BOUND_MS);
    CHECK(sent > 0 && sent < N);
    CHECK_EQ(drain_count(sv[1]), sent);

    /* a send that could send nothing: ECANCELED, and nothing of it went */
    int queued = fill(sv[0]);
    f = async_sendmmsg(sv[0], out->m, N, 0);
    pause_ms(10);
    async_cancel(f);
    CHECK_ERR(async_await_timeout(f, BOUND_MS), ECANCELED);
    CHECK_EQ(drain_count(sv[1]), queued);
    close_both(sv);
    free(in);
    free(out);
}

Test(net_mmsg, cancel_while_waiting) { both_contexts(cancel_waits); }

static void *close_main(void *arg) {
    CHECK_EQ(async_await(async_close(*(int *)arg)), 0);
    return NULL;
}

static void close_waits(void) {
    int sv[2];
    dgram_pair(sv);
    batch_t *in = batch_new(), *in2 = batch_new(), *out = batch_new();
    batch_in(in);
    batch_in(in2);
    struct timespec t = {10, 0};
    async_future_t *r = async_recvmmsg(sv[1], in->m, 8, 0, NULL);
    async_future_t *rt = async_recvmmsg(sv[1], in2->m, 8, 0, &t);
    pause_ms(10);
    CHECK(!async_future_settled(r) && !async_future_settled(rt));
    CHECK_EQ(async_await(async_close(sv[1])), 0);
    CHECK_ERR(async_await_timeout(r, BOUND_MS), EBADF);
    CHECK_ERR(async_await_timeout(rt, BOUND_MS), EBADF);
    CHECK_EQ(async_await(async_close(sv[0])), 0);

    /* some came first: still EBADF, and their entries filled in */
    dgram_pair(sv);
    batch_out(out, 2, 0, NULL, 0);
    for (int timed = 0; timed < 2; timed++) {
        batch_in(in);
        t = (struct timespec){10, 0};
        r = async_recvmmsg(sv[1], in->m, 8, 0, timed ? &t : NULL);
        CHECK_EQ(sendmmsg(sv[0], out->m, 2, 0), 2);
        pause_ms(20);
        CHECK(!async_future_settled(r));
        if (timed) {
            CHECK_EQ(async_await(async_close(sv[1])), 0);
            CHECK_ERR(async_await_timeout(r, BOUND_MS), EBADF);
        } else { /* from another thread: the close goes to the waiting worker, which
                  * must be free to take it (join only once the receive has ended) */
            pthread_t th;
            CHECK_EQ(pthread_create(&th, NULL, close_main, &sv[1]), 0);
            CHECK_ERR(async_await_timeout(r, BOUND_MS), EBADF);
            CHECK_EQ(pthread_join(th, NULL), 0);
        }
        CHECK(batch_holds(in, 2, 0));
        CHECK(batch_untouched(in, 2));
        CHECK_EQ(async_await(async_close(sv[0])), 0);
        dgram_pair(sv);
    }
    CHECK_EQ(async_await(async_close(sv[0])), 0);
    CHECK_EQ(async_await(async_close(sv[1])), 0);

    dgram_pair(sv);
    fill(sv[0]);
    batch_out(out, N, 0, NULL, 0);
    async_future_t *f = async_sendmmsg(sv[0], out->m, N, 0);
    pause_ms(10);
    CHECK(!async_future_settled(f));
    CHECK_EQ(async_await(async_close(sv[0])), 0);
    CHECK_ERR(async_await_timeout(f, BOUND_MS), EBADF);
    CHECK_EQ(async_await(async_close(sv[1])), 0);
    free(in);
    free(in2);
    free(out);
}

Test(net_mmsg, async_close_while_waiting) { both_contexts(close_waits); }

/* ---- against glibc ----------------------------------------------------------------
 * glibc's side never waits: its sockets are non-blocking, or what it would
 * wait for is there first. The library's side is called without MSG_DONTWAIT
 * where that makes no difference, so that its blocking path is the one
 * compared. */

typedef struct world {
    int ud[2], us[2], sp[2]; /* Unix datagram, stream, seqpacket pairs */
    int udp, peer, tcp;      /* an unconnected UDP socket, a bound one, an unconnected TCP one */
    struct sockaddr_in peer_addr;
} world_t;

static int nb_socket(int domain, int type) {
    int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    return fd;
}

static void make_world(world_t *w) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, w->ud), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, w->us), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, w->sp), 0);
    w->udp = nb_socket(AF_INET, SOCK_DGRAM);
    w->peer = nb_socket(AF_INET, SOCK_DGRAM);
    w->tcp = nb_socket(AF_INET, SOCK_STREAM);
    struct sockaddr_in any = loopback4(0);
    CHECK_EQ(bind(w->peer, (struct sockaddr *)&any, sizeof any), 0);
    socklen_t len = sizeof w->peer_addr;
    CHECK_EQ(getsockname(w->peer, (struct sockaddr *)&w->peer_addr, &len), 0);
}

/* A UDP socket bound to a free loopback port (close it to make a dead port). */
static int udp_bound_fd(struct sockaddr_in *a) {
    int fd = nb_socket(AF_INET, SOCK_DGRAM);
    struct sockaddr_in any = loopback4(0);
    CHECK_EQ(bind(fd, (struct sockaddr *)&any, sizeof any), 0);
    socklen_t len = sizeof *a;
    CHECK_EQ(getsockname(fd, (struct sockaddr *)a, &len), 0);
    return fd;
}

/* Waits (briefly, on this thread) until fd has an error to report. */
static void errored(int fd) {
    struct pollfd p = {.fd = fd};
    CHECK_EQ(poll(&p, 1, BOUND_MS), 1);
    CHECK(p.revents & POLLERR);
}

static void end_world(world_t *w) {
    int fds[] = {w->ud[0], w->ud[1], w->us[0], w->us[1], w->sp[0],
                 w->sp[1], w->udp,   w->peer,  w->tcp};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++)
        if (fds[i] >= 0) CHECK_EQ(async_await(async_close(fds[i])), 0);
}

/* The two vectors were filled alike, in their first n entries. */
static void same_vec(int line, const batch_t *g, const batch_t *a, int n) {
    for (int i = 0; i < n; i++) {
        const struct mmsghdr *gm = &g->m[i], *am = &a->m[i];
        if (gm->msg_len != am->msg_len || gm->msg_hdr.msg_namelen != am->msg_hdr.msg_namelen ||
            gm->msg_hdr.msg_flags != am->msg_hdr.msg_flags ||
            (gm->msg_len != UINT_MAX &&
             memcmp(g->buf[i], a->buf[i], gm->msg_len < SIZE ? gm->msg_len : SIZE) != 0)) {
            check_fail(__FILE__, line,
                       "[%s] entry %d: msg_len %u/%u, namelen %u/%u, flags %#x/%#x, or the data",
                       compare_where, i, gm->msg_len, am->msg_len, gm->msg_hdr.msg_namelen,
                       am->msg_hdr.msg_namelen, (unsigned)gm->msg_hdr.msg_flags,
                       (unsigned)am->msg_hdr.msg_flags);
            return;
        }
    }
}

#define SAME_VEC(g, a, n) same_vec(__LINE__, g, a, n)

/* What both peers have queued is the same (taken without waiting). */
static void same_queued(int line, int gfd, int afd) {
    batch_t *g = batch_new(), *a = batch_new();
    batch_in(g);
    batch_in(a);
    errno = 0;
    int gn = recvmmsg(gfd, g->m, N, MSG_DONTWAIT, NULL);
    int ge = errno;
    errno = 0;
    int an = recvmmsg(afd, a->m, N, MSG_DONTWAIT, NULL);
    int ae = errno;
    if (gn != an || (gn < 0 && ge != ae))
        check_fail(__FILE__, line, "[%s] peers hold %d/%s vs %d/%s", compare_where, gn, ename(ge),
                   an, ename(ae));
    else
        same_vec(line, g, a, gn);
    free(g);
    free(a);
}

#define SAME_QUEUED(gfd, afd) same_queued(__LINE__, gfd, afd)

NULL_ARGS_ON_PURPOSE static void bad_fds(void) {
    int p[2];
    CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    int closed = dup(0);
    close(closed);
    char path[] = "/tmp/asyncstd-net-mmsg-XXXXXX";
    int file = mkstemp(path);
    CHECK(file >= 0);
    unlink(path);
    const int fds[] = {-1, INT_MAX, closed, file, p[0], p[1]};
    batch_t *gb = batch_new(), *ab = batch_new();
    static const struct timespec bad_ts = {0, 1000000000}, zero = {0, 0};
    for (size_t i = 0; i < sizeof fds / sizeof *fds; i++) {
        int fd = fds[i];
        batch_out(gb, 2, 0, NULL, 0);
        batch_out(ab, 2, 0, NULL, 0);
        SAME(sendmmsg(fd, gb->m, 2, MSG_NOSIGNAL), async_sendmmsg(fd, ab->m, 2, 0));
        SAME(sendmmsg(fd, gb->m, 0, MSG_NOSIGNAL), async_sendmmsg(fd, ab->m, 0, 0));
        SAME_BADPTR(sendmmsg(fd, NULL, 1, MSG_NOSIGNAL), async_sendmmsg(fd, NULL, 1, 0));
        SAME(sendmmsg(fd, gb->m, 2, MSG_NOSIGNAL | (int)0x80000000),
             async_sendmmsg(fd, ab->m, 2, (int)0x80000000));
        batch_in(gb);
        batch_in(ab);
        SAME(recvmmsg(fd, gb->m, 2, 0, NULL), async_recvmmsg(fd, ab->m, 2, 0, NULL));
        SAME(recvmmsg(fd, gb->m, 0, 0, NULL), async_recvmmsg(fd, ab->m, 0, 0, NULL));
        SAME_BADPTR(recvmmsg(fd, NULL, 1, 0, NULL), async_recvmmsg(fd, NULL, 1, 0, NULL));
        SAME(recvmmsg(fd, gb->m, 2, (int)0x80000000, NULL),
             async_recvmmsg(fd, ab->m, 2, (int)0x80000000, NULL));
        /* the timeout is judged before the fd */
        struct timespec gt = bad_ts, at = bad_ts;
        SAME(recvmmsg(fd, gb->m, 2, 0, &gt), async_recvmmsg(fd, ab->m, 2, 0, &at));
        gt = at = zero;
        SAME(recvmmsg(fd, gb->m, 2, 0, &gt), async_recvmmsg(fd, ab->m, 2, 0, &at));
        if (NOT_ASAN)
            SAME_BADPTR(recvmmsg(fd, gb->m, 2, 0, (struct timespec *)8),
                        async_recvmmsg(fd, ab->m, 2, 0, (struct timespec *)8));
        SAME_VEC(gb, ab, N);
    }
    close(file);
    close(p[0]);
    close(p[1]);
    free(gb);
    free(ab);
}

Test(net_mmsg, glibc_bad_fds) { both_contexts(bad_fds); }

NULL_ARGS_ON_PURPOSE static void vectors_and_flags(void) {
    world_t g, a;
    make_world(&g);
    make_world(&a);
    batch_t *gb = batch_new(), *ab = batch_new();

    /* empty and NULL vectors */
    SAME(sendmmsg(g.ud[0], gb->m, 0, MSG_NOSIGNAL), async_sendmmsg(a.ud[0], ab->m, 0, 0));
    SAME(sendmmsg(g.ud[0], NULL, 0, MSG_NOSIGNAL), async_sendmmsg(a.ud[0], NULL, 0, 0));
    SAME_BADPTR(sendmmsg(g.ud[0], NULL, 1, MSG_NOSIGNAL), async_sendmmsg(a.ud[0], NULL, 1, 0));
    SAME(recvmmsg(g.ud[1], gb->m, 0, 0, NULL), async_recvmmsg(a.ud[1], ab->m, 0, 0, NULL));
    SAME(recvmmsg(g.ud[1], NULL, 0, 0, NULL), async_recvmmsg(a.ud[1], NULL, 0, 0, NULL));
    SAME_BADPTR(recvmmsg(g.ud[1], NULL, 1, 0, NULL), async_recvmmsg(a.ud[1], NULL, 1, 0, NULL));

    /* flags: the kernel's own top bit, out-of-band on Unix sockets, bits no call knows */
    batch_out(gb, 2, 0, NULL, 0);
    batch_out(ab, 2, 0, NULL, 0);
    SAME(sendmmsg(g.ud[0], gb->m, 2, MSG_NOSIGNAL | (int)0x80000000),
         async_sendmmsg(a.ud[0], ab->m, 2, (int)0x80000000));
    SAME(sendmmsg(g.ud[0], gb->m, 2, MSG_NOSIGNAL | MSG_OOB),
         async_sendmmsg(a.ud[0], ab->m, 2, MSG_OOB));
    SAME(recvmmsg(g.ud[1], gb->m, 2, (int)0x80000000, NULL),
         async_recvmmsg(a.ud[1], ab->m, 2, (int)0x80000000, NULL));
    SAME(recvmmsg(g.ud[1], gb->m, 2, MSG_OOB, NULL),
         async_recvmmsg(a.ud[1], ab->m, 2, MSG_OOB, NULL));
    SAME(sendmmsg(g.ud[0], gb->m, 2, MSG_NOSIGNAL | 0x20000000),
         async_sendmmsg(a.ud[0], ab->m, 2, 0x20000000));
    SAME_QUEUED(g.ud[1], a.ud[1]);

    /* a batch, with msg_len and the receive's fields written back */
    batch_out(gb, 4, 0, NULL, 0);
    batch_out(ab, 4, 0, NULL, 0);
    SAME(sendmmsg(g.ud[0], gb->m, 4, MSG_NOSIGNAL), async_sendmmsg(a.ud[0], ab->m, 4, 0));
    for (int i = 0; i < 4; i++) CHECK_EQ(gb->m[i].msg_len, ab->m[i].msg_len);
    batch_in(gb);
    batch_in(ab);
    SAME(recvmmsg(g.ud[1], gb->m, 4, 0, NULL), async_recvmmsg(a.ud[1], ab->m, 4, 0, NULL));
    SAME_VEC(gb, ab, N);
    SAME(recvmmsg(g.ud[1], gb->m, 4, MSG_DONTWAIT, NULL),
         async_recvmmsg(a.ud[1], ab->m, 4, MSG_DONTWAIT, NULL));

    /* truncated datagrams: MSG_TRUNC in msg_flags; with the flag, the real length */
    batch_out(gb, 4, 20, NULL, 0);
    batch_out(ab, 4, 20, NULL, 0);
    SAME(sendmmsg(g.ud[0], gb->m, 4, MSG_NOSIGNAL), async_sendmmsg(a.ud[0], ab->m, 4, 0));
    batch_in(gb);
    batch_in(ab);
    for (int i = 0; i < 4; i++) gb->iov[i].iov_len = ab->iov[i].iov_len = 3;
    SAME(recvmmsg(g.ud[1], gb->m, 2, 0, NULL), async_recvmmsg(a.ud[1], ab->m, 2, 0, NULL));
    SAME(recvmmsg(g.ud[1], gb->m + 2, 2, MSG_TRUNC, NULL),
         async_recvmmsg(a.ud[1], ab->m + 2, 2, MSG_TRUNC, NULL));
    SAME_VEC(gb, ab, N);

    /* an error after the first message: the count, the error dropped */
    batch_out(gb, 3, 0, NULL, 0);
    batch_out(ab, 3, 0, NULL, 0);
    gb->iov[1].iov_base = ab->iov[1].iov_base = NULL;
    SAME_BADPTR(sendmmsg(g.ud[0], gb->m, 3, MSG_NOSIGNAL), async_sendmmsg(a.ud[0], ab->m, 3, 0));
    SAME_QUEUED(g.ud[1], a.ud[1]);
    /* ... and on receipt: the count, the error kept for the next call */
    batch_out(gb, 3, 0, NULL, 0);
    CHECK_EQ(sendmmsg(g.ud[0], gb->m, 3, 0), 3);
    CHECK_EQ(sendmmsg(a.ud[0], gb->m, 3, 0), 3);
    batch_in(gb);
    batch_in(ab);
    gb->iov[1].iov_base = ab->iov[1].iov_base = NULL;
    SAME_BADPTR(recvmmsg(g.ud[1], gb->m, 3, 0, NULL), async_recvmmsg(a.ud[1], ab->m, 3, 0, NULL));
    batch_in(gb); /* good buffers: the EFAULT is the one kept */
    batch_in(ab);
    SAME(recvmmsg(g.ud[1], gb->m, 3, MSG_DONTWAIT, NULL),
         async_recvmmsg(a.ud[1], ab->m, 3, MSG_DONTWAIT, NULL));
    SAME(recvmmsg(g.ud[1], gb->m, 3, MSG_DONTWAIT, NULL),
         async_recvmmsg(a.ud[1], ab->m, 3, MSG_DONTWAIT, NULL));
    SAME_VEC(gb, ab, N);
    /* a bad first message */
    batch_out(gb, 2, 0, NULL, 0);
    batch_out(ab, 2, 0, NULL, 0);
    gb->m[0].msg_hdr.msg_iov = ab->m[0].msg_hdr.msg_iov = NULL;
    SAME_BADPTR(sendmmsg(g.ud[0], gb->m, 2, MSG_NOSIGNAL), async_sendmmsg(a.ud[0], ab->m, 2, 0));
    SAME_QUEUED(g.ud[1], a.ud[1]);

    /* more than UIO_MAXIOV (1024): cut to it, not refused */
    enum { MANY = 2000 };
    struct mmsghdr *gv = calloc(MANY, sizeof *gv), *av = calloc(MANY, sizeof *av);
    CHECK(gv && av);
    char one = 'c', gc[MANY], ac[MANY];
    struct iovec *giov = calloc(MANY, sizeof *giov), *aiov = calloc(MANY, sizeof *aiov);
    CHECK(giov && aiov);
    for (int i = 0; i < MANY; i++) {
        giov[i] = aiov[i] = (struct iovec){&one, 1};
        gv[i].msg_hdr.msg_iov = &giov[i];
        av[i].msg_hdr.msg_iov = &aiov[i];
        gv[i].msg_hdr.msg_iovlen = av[i].msg_hdr.msg_iovlen = 1;
    }
    int big = 4 << 20;
    CHECK_EQ(setsockopt(g.ud[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big), 0);
    CHECK_EQ(setsockopt(a.ud[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big), 0);
    SAME(sendmmsg(g.ud[0], gv, MANY, MSG_NOSIGNAL), async_sendmmsg(a.ud[0], av, MANY, 0));
    for (int i = 0; i < MANY; i++) {
        giov[i] = (struct iovec){&gc[i], 1};
        aiov[i] = (struct iovec){&ac[i], 1};
    }
    SAME(recvmmsg(g.ud[1], gv, MANY, 0, NULL), async_recvmmsg(a.ud[1], av, MANY, 0, NULL));
    SAME(recvmmsg(g.ud[1], gv, MANY, MSG_DONTWAIT, NULL),
         async_recvmmsg(a.ud[1], av, MANY, MSG_DONTWAIT, NULL));
    free(gv);
    free(av);
    free(giov);
    free(aiov);
    end_world(&g);
    end_world(&a);
    free(gb);
    free(ab);
}

Test(net_mmsg, glibc_vectors_and_flags) { both_contexts(vectors_and_flags); }

static void addresses_and_states(void) {
    world_t g, a;
    make_world(&g);
    make_world(&a);
    batch_t *gb = batch_new(), *ab = batch_new();

    /* UDP: an address per message, or none on an unconnected socket */
    batch_out(gb, 4, 0, &g.peer_addr, sizeof g.peer_addr);
    batch_out(ab, 4, 0, &a.peer_addr, sizeof a.peer_addr);
    SAME(sendmmsg(g.udp, gb->m, 4, MSG_NOSIGNAL), async_sendmmsg(a.udp, ab->m, 4, 0));
    batch_out(gb, 2, 0, NULL, 0);
    batch_out(ab, 2, 0, NULL, 0);
    SAME(sendmmsg(g.udp, gb->m, 2, MSG_NOSIGNAL), async_sendmmsg(a.udp, ab->m, 2, 0));
    /* an address too long for the kernel, first or second */
    for (int bad = 0; bad < 2; bad++) {
        batch_out(gb, 2, 0, &g.peer_addr, sizeof g.peer_addr);
        batch_out(ab, 2, 0, &a.peer_addr, sizeof a.peer_addr);
        gb->m[bad].msg_hdr.msg_namelen = ab->m[bad].msg_hdr.msg_namelen = sizeof gb->name[0] + 1;
        SAME(sendmmsg(g.udp, gb->m, 2, MSG_NOSIGNAL), async_sendmmsg(a.udp, ab->m, 2, 0));
    }
    /* the names written back, into slots of every size */
    ready(g.peer);
    ready(a.peer);
    batch_in(gb);
    batch_in(ab);
    static const socklen_t lens[] = {sizeof(struct sockaddr_storage), 3, 0, 0};
    for (int i = 0; i < 4; i++) {
        gb->m[i].msg_hdr.msg_namelen = ab->m[i].msg_hdr.msg_namelen = lens[i];
        if (i == 3) gb->m[i].msg_hdr.msg_name = ab->m[i].msg_hdr.msg_name = NULL;
    }
    SAME(recvmmsg(g.peer, gb->m, 4, 0, NULL), async_recvmmsg(a.peer, ab->m, 4, 0, NULL));
    SAME_VEC(gb, ab, 4);
    /* both cut at 3 bytes: the family and half the (different) ports */
    static const char zeros[sizeof gb->name[1] - 3];
    CHECK_EQ(gb->name[1].ss_family, AF_INET);
    CHECK_EQ(ab->name[1].ss_family, AF_INET);
    CHECK_EQ(memcmp((char *)&gb->name[1] + 3, zeros, sizeof zeros), 0);
    CHECK_EQ(memcmp((char *)&ab->name[1] + 3, zeros, sizeof zeros), 0);
    SAME_QUEUED(g.peer, a.peer); /* the one sent before the long address */

    /* the error queue: read without waiting, EAGAIN when empty, even without
     * MSG_DONTWAIT; an ICMP error from a closed port fills it */
    SAME(recvmmsg(g.udp, gb->m, 2, MSG_ERRQUEUE, NULL),
         async_recvmmsg(a.udp, ab->m, 2, MSG_ERRQUEUE, NULL));
    struct timespec gt = {1, 0}, at = {1, 0};
    SAME(recvmmsg(g.udp, gb->m, 2, MSG_ERRQUEUE, &gt),
         async_recvmmsg(a.udp, ab->m, 2, MSG_ERRQUEUE, &at));
    int on = 1;
    CHECK_EQ(setsockopt(g.udp, SOL_IP, IP_RECVERR, &on, sizeof on), 0);
    CHECK_EQ(setsockopt(a.udp, SOL_IP, IP_RECVERR, &on, sizeof on), 0);
    struct sockaddr_in gdead, adead;
    close(udp_bound_fd(&gdead));
    close(udp_bound_fd(&adead));
    batch_out(gb, 1, 0, &gdead, sizeof gdead);
    batch_out(ab, 1, 0, &adead, sizeof adead);
    SAME(sendmmsg(g.udp, gb->m, 1, MSG_NOSIGNAL), async_sendmmsg(a.udp, ab->m, 1, 0));
    errored(g.udp);
    errored(a.udp);
    batch_in(gb);
    batch_in(ab);
    SAME(recvmmsg(g.udp, gb->m, 2, MSG_ERRQUEUE, NULL),
         async_recvmmsg(a.udp, ab->m, 2, MSG_ERRQUEUE, NULL));
    SAME_VEC(gb, ab, N);
    CHECK(ab->m[0].msg_hdr.msg_flags & MSG_ERRQUEUE);
    SAME(recvmmsg(g.udp, gb->m, 2, MSG_ERRQUEUE, NULL),
         async_recvmmsg(a.udp, ab->m, 2, MSG_ERRQUEUE, NULL));
    /* on a Unix socket the flag means nothing: it waits as any receive */
    async_future_t *r = async_recvmmsg(a.ud[1], ab->m, 2, MSG_ERRQUEUE, NULL);
    pause_ms(10);
    CHECK(!async_future_settled(r));
    async_cancel(r);
    CHECK_ERR(async_await_timeout(r, BOUND_MS), ECANCELED);

    /* TCP, not connected */
    batch_out(gb, 2, 0, NULL, 0);
    batch_out(ab, 2, 0, NULL, 0);
    SAME(sendmmsg(g.tcp, gb->m, 2, MSG_NOSIGNAL), async_sendmmsg(a.tcp, ab->m, 2, 0));
    SAME(recvmmsg(g.tcp, gb->m, 2, 0, NULL), async_recvmmsg(a.tcp, ab->m, 2, 0, NULL));

    /* a stream and a seqpacket whose peer is gone: data, then an end of stream
     * for every entry left; EPIPE (and no SIGPIPE: the library adds MSG_NOSIGNAL) */
    CHECK(signal(SIGPIPE, SIG_DFL) == SIG_DFL);
    int *pairs[2][2] = {{g.us, a.us}, {g.sp, a.sp}};
    for (int k = 0; k < 2; k++) {
        int *gp = pairs[k][0], *ap = pairs[k][1];
        CHECK_EQ(send(gp[1], "bye", 3, 0), 3);
        CHECK_EQ(send(ap[1], "bye", 3, 0), 3);
        close(gp[1]);
        close(ap[1]);
        gp[1] = ap[1] = -1;
        batch_in(gb);
        batch_in(ab);
        SAME(recvmmsg(gp[0], gb->m, 4, 0, NULL), async_recvmmsg(ap[0], ab->m, 4, 0, NULL));
        SAME_VEC(gb, ab, N);
        batch_out(gb, 2, 0, NULL, 0);
        batch_out(ab, 2, 0, NULL, 0);
        SAME(sendmmsg(gp[0], gb->m, 2, MSG_NOSIGNAL), async_sendmmsg(ap[0], ab->m, 2, 0));
    }

    /* a stream send the kernel takes in part, with MSG_DONTWAIT: the same part */
    int gs[2], as[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, gs), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, as), 0);
    small_sndbuf(gs[0]);
    small_sndbuf(as[0]);
    struct mmsghdr gm[3], am[3];
    struct iovec giov[9], aiov[9];
    char *data = malloc(3 * MSG_BYTES);
    CHECK(data != NULL);
    stream_messages(gm, giov, data);
    stream_messages(am, aiov, data);
    SAME(sendmmsg(gs[0], gm, 3, MSG_NOSIGNAL | MSG_DONTWAIT),
         async_sendmmsg(as[0], am, 3, MSG_DONTWAIT));
    for (int i = 0; i < 3; i++) CHECK_EQ(gm[i].msg_len, am[i].msg_len);
    free(data);
    close_pair(gs);
    close_pair(as);
    end_world(&g);
    end_world(&a);
    free(gb);
    free(ab);
}

Test(net_mmsg, glibc_addresses_and_states) { both_contexts(addresses_and_states); }

NULL_ARGS_ON_PURPOSE static void timeouts_against_glibc(void) {
    world_t g, a;
    make_world(&g);
    make_world(&a);
    batch_t *gb = batch_new(), *ab = batch_new();
    batch_in(gb);
    batch_in(ab);
    /* refused before anything: negative, unnormalised, unreadable */
    static const struct timespec bad[] = {{0, 1000000000}, {-1, 0}, {0, -1}, {LONG_MIN, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct timespec gt = bad[i], at = bad[i];
        SAME(recvmmsg(g.ud[1], gb->m, 2, 0, &gt), async_recvmmsg(a.ud[1], ab->m, 2, 0, &at));
        SAME(recvmmsg(g.ud[1], gb->m, 0, 0, &gt), async_recvmmsg(a.ud[1], ab->m, 0, 0, &at));
    }
    if (NOT_ASAN)
        SAME_BADPTR(recvmmsg(g.ud[1], gb->m, 2, 0, (struct timespec *)8),
                    async_recvmmsg(a.ud[1], ab->m, 2, 0, (struct timespec *)8));
    /* nothing there, MSG_DONTWAIT: EAGAIN, the timeout left as it was */
    struct timespec gt = {5, 7}, at = {5, 7};
    SAME(recvmmsg(g.ud[1], gb->m, 2, MSG_DONTWAIT, &gt),
         async_recvmmsg(a.ud[1], ab->m, 2, MSG_DONTWAIT, &at));
    CHECK(gt.tv_sec == at.tv_sec && gt.tv_nsec == at.tv_nsec);
    /* zero: one datagram of the three there, and 0 written back */
    batch_out(gb, 3, 0, NULL, 0);
    CHECK_EQ(sendmmsg(g.ud[0], gb->m, 3, 0), 3);
    CHECK_EQ(sendmmsg(a.ud[0], gb->m, 3, 0), 3);
    batch_in(gb);
    batch_in(ab);
    gt = at = (struct timespec){0, 0};
    SAME(recvmmsg(g.ud[1], gb->m, 3, 0, &gt), async_recvmmsg(a.ud[1], ab->m, 3, 0, &at));
    CHECK(gt.tv_sec == at.tv_sec && gt.tv_nsec == at.tv_nsec);
    SAME_VEC(gb, ab, N);
    /* the rest in time: the time left written back */
    gt = at = (struct timespec){100, 0};
    SAME(recvmmsg(g.ud[1], gb->m, 2, 0, &gt), async_recvmmsg(a.ud[1], ab->m, 2, 0, &at));
    CHECK_EQ(gt.tv_sec, at.tv_sec);
    CHECK(at.tv_sec == 99 && at.tv_nsec > 0);
    /* a time no one waits out */
    batch_out(gb, 1, 0, NULL, 0);
    CHECK_EQ(sendmmsg(g.ud[0], gb->m, 1, 0), 1);
    CHECK_EQ(sendmmsg(a.ud[0], gb->m, 1, 0), 1);
    gt = at = (struct timespec){LONG_MAX, 999999999};
    SAME(recvmmsg(g.ud[1], gb->m, 1, 0, &gt), async_recvmmsg(a.ud[1], ab->m, 1, 0, &at));
    CHECK(gt.tv_sec > LONG_MAX / 2 && at.tv_sec > LONG_MAX / 2); /* the kernel's sum, saturated */
    end_world(&g);
    end_world(&a);
    free(gb);
    free(ab);
}

Test(net_mmsg, glibc_timeouts) { both_contexts(timeouts_against_glibc); }
