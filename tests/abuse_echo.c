/* abuse_echo: connection abuse against examples/echo, from a plain C client
 * (no asyncstd on this side, so that the server alone is under test).
 *
 *     abuse_echo PATH/TO/echo        (ASYNCSTD_THREADS is passed on to the server)
 *
 * It starts the server on a free loopback port with RLIMIT_NOFILE 64 (as
 * `ulimit -n 64` would) and runs phases, each bounded in clients and time:
 *   send-close    clients send a line and close at once
 *   half-close    send a line, shutdown(SHUT_WR), expect the echo, then EOF
 *   data+fin      the same with the line and the FIN in one segment (TCP_CORK)
 *   rst           send part of a line and reset (SO_LINGER 0), before or after the echo
 *   fd-exhaustion more connections than the server has fds, then all closed:
 *                 the server must serve new clients again
 *   flood         a client that sends without reading: the server's send blocks,
 *                 it stops reading, and its RSS stays bounded; others are served
 *   slow          clients that connect and send nothing while others are served
 * After each phase the server must settle within SETTLE_MS: no connection of
 * its port in CLOSE-WAIT (/proc/net/tcp and tcp6, state 08) and its fd count
 * (/proc/PID/fd) back to the baseline taken after start-up. A phase that fails
 * stops at its first failing wave, and the server is restarted for the next.
 * At the end SIGTERM must stop the server with exit status 0.
 *
 * Prints a line per phase and exits 1 if any failed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SERVER_NOFILE 64
#define SETTLE_MS 5000
#define WAVE_MS 5000 /* a wave of clients must be done within this */

static const char *echo_path;
static pid_t server = -1;
static int port;
static int baseline_fds;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ---- the server's side, seen from /proc -------------------------------------------- */

static int server_fds(void) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)server);
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static long server_rss_kb(void) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)server);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* Sockets whose local port is the server's (the accepted ones) in TCP state `st`
 * (0x08 CLOSE-WAIT); -1 for all of them but the listener (0x0A). */
static int server_sockets(int st) {
    static const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    int n = 0;
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f) continue;
        char line[512];
        unsigned lport, state;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x", &lport, &state) == 2 &&
                (int)lport == port && (st < 0 ? state != 0x0A : (int)state == st))
                n++;
        fclose(f);
    }
    return n;
}

/* Waits until the server has no connection in CLOSE-WAIT and its baseline fd count. */
static bool settle(const char *phase) {
    long long end = now_ms() + SETTLE_MS;
    int cw, fds;
    for (;;) {
        cw = server_sockets(0x08);
        fds = server_fds();
        if (cw == 0 && fds == baseline_fds) return true;
        if (now_ms() > end) break;
        sleep_ms(20);
    }
    printf("  %s: after %d ms the server still has %d connection(s) in CLOSE-WAIT, %d other "
           "accepted socket(s), and %d fds (baseline %d)\n",
           phase, SETTLE_MS, cw, server_sockets(-1) - cw, fds, baseline_fds);
    return false;
}

/* ---- client sockets --------------------------------------------------------------- */

/* A connected socket, or -1. Non-blocking connect, so that a full backlog cannot hang us. */
static int dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (poll(&p, 1, 3000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
        close(fd);
        return -1;
    }
    return fd;
}

static void reset(int fd) { /* close with RST instead of FIN */
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

/* ---- waves of line clients ------------------------------------------------------- */

enum mode {
    SEND_CLOSE,     /* write a line, close */
    HALF_CLOSE,     /* write a line, shutdown(SHUT_WR), read the echo and EOF */
    DATA_FIN,       /* the same, line and FIN in one segment */
    PING,           /* write a line, read the echo, close */
    RST_EARLY,      /* write half a line, reset */
    RST_AFTER_ECHO, /* write half a line, read its echo, reset */
};

enum outcome { OK, NO_ECHO, NO_EOF, SHORT, WRONG, RESET, NO_CONNECT, OUTCOMES };
static const char *outcome_names[OUTCOMES] = {
    "ok", "no echo", "echo but no EOF", "part of the echo", "wrong data", "reset", "no connection",
};

typedef struct client {
    int fd;
    char line[64], got[128];
    size_t len, n;
    bool done;
} client_t;

/* Runs `count` clients of one mode in waves of `width`, each wave within WAVE_MS; stops
 * after the first wave with a failure. A wave's clients connect, wait `idle_ms` (so that
 * the server's recv is already waiting when their data comes), then act. Adds the outcomes
 * to `out`; true if all were OK. */
static bool waves(enum mode mode, int count, int width, int idle_ms, int out[OUTCOMES]) {
    client_t *c = calloc((size_t)width, sizeof *c);
    struct pollfd *p = calloc((size_t)width, sizeof *p);
    bool all_ok = true;
    for (int first = 0; first < count && all_ok; first += width) {
        int w = count - first < width ? count - first : width;
        for (int i = 0; i < w; i++) {
            client_t *k = &c[i];
            memset(k, 0, sizeof *k);
            int len = snprintf(k->line, sizeof k->line, "client %d of %d, mode %d\n", first + i,
                               count, (int)mode);
            k->len = mode == RST_EARLY || mode == RST_AFTER_ECHO ? (size_t)len / 2 : (size_t)len;
            k->fd = dial();
            if (k->fd < 0) out[NO_CONNECT]++, k->done = true;
        }
        if (idle_ms) sleep_ms(idle_ms);
        for (int i = 0; i < w; i++) {
            client_t *k = &c[i];
            if (k->done) continue;
            if (mode == DATA_FIN) {
                int one = 1; /* the line waits in the socket; the FIN joins its segment */
                setsockopt(k->fd, IPPROTO_TCP, TCP_CORK, &one, sizeof one);
            }
            if (send(k->fd, k->line, k->len, MSG_NOSIGNAL) != (ssize_t)k->len) {
                out[RESET]++, k->done = true;
                close(k->fd);
                continue;
            }
            if (mode == SEND_CLOSE || mode == RST_EARLY) {
                if (mode == SEND_CLOSE)
                    close(k->fd);
                else
                    reset(k->fd);
                out[OK]++, k->done = true;
            } else if (mode == HALF_CLOSE || mode == DATA_FIN) {
                shutdown(k->fd, SHUT_WR);
            }
        }
        long long end = now_ms() + WAVE_MS;
        for (;;) {
            int np = 0;
            for (int i = 0; i < w; i++)
                if (!c[i].done) p[np++] = (struct pollfd){c[i].fd, POLLIN, 0};
            long long left = end - now_ms();
            if (np == 0 || left <= 0) break;
            if (poll(p, (nfds_t)np, (int)left) <= 0) continue;
            for (int i = 0, j = 0; i < w; i++) {
                client_t *k = &c[i];
                if (k->done) continue;
                struct pollfd *q = &p[j++];
                if (!q->revents) continue;
                ssize_t r = recv(k->fd, k->got + k->n, sizeof k->got - k->n, MSG_DONTWAIT);
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                enum outcome o = OK;
                if (r < 0) {
                    o = RESET;
                } else if (r > 0) {
                    k->n += (size_t)r;
                    if (k->n < k->len) continue;
                    if (k->n > k->len || memcmp(k->got, k->line, k->len)) {
                        o = WRONG;
                    } else if (mode == HALF_CLOSE || mode == DATA_FIN) {
                        continue; /* now the EOF */
                    }
                } else if (k->n != k->len || memcmp(k->got, k->line, k->len)) {
                    o = k->n ? SHORT : NO_ECHO; /* EOF early */
                }
                out[o]++;
                k->done = true;
                if (mode == RST_AFTER_ECHO)
                    reset(k->fd);
                else
                    close(k->fd);
            }
        }
        for (int i = 0; i < w; i++) {
            client_t *k = &c[i];
            if (k->done) continue;
            out[k->n == 0 ? NO_ECHO : k->n < k->len ? SHORT : NO_EOF]++;
            close(k->fd);
        }
        for (int o = 1; o < OUTCOMES; o++)
            if (out[o]) all_ok = false;
    }
    free(c);
    free(p);
    return all_ok;
}

static void print_outcomes(const int out[OUTCOMES]) {
    printf(" clients:");
    for (int o = 0; o < OUTCOMES; o++)
        if (out[o]) printf(" %s %d;", outcome_names[o], out[o]);
    printf("\n");
}

/* Half the clients act as soon as they are connected, half once the server waits for them. */
static bool line_phase(enum mode mode, int count, int width) {
    bool ok = true;
    for (int idle = 0; idle <= 30; idle += 30) {
        int out[OUTCOMES] = {0};
        bool wave_ok = waves(mode, count / 2, width, idle, out);
        printf("  acting %s:", idle ? "30 ms after connecting" : "at once");
        print_outcomes(out);
        if (!wave_ok && (mode == HALF_CLOSE || mode == DATA_FIN) && out[NO_EOF])
            printf("  %d client(s) got their echo but never the end of stream: the server did "
                   "not see their FIN\n",
                   out[NO_EOF]);
        if (!wave_ok) ok = false;
    }
    return ok;
}

/* ---- the phases ------------------------------------------------------------------- */

static bool phase_send_close(void) { return line_phase(SEND_CLOSE, 300, 25); }
static bool phase_half_close(void) { return line_phase(HALF_CLOSE, 300, 25); }
static bool phase_data_fin(void) { return line_phase(DATA_FIN, 300, 25); }

static bool phase_rst(void) {
    bool a = line_phase(RST_EARLY, 100, 25);
    return line_phase(RST_AFTER_ECHO, 100, 25) && a;
}

/* More connections than the server has fds, all at once; then all closed. */
static bool phase_fd_exhaustion(void) {
    enum { N = 2 * SERVER_NOFILE };
    int fds[N], opened = 0;
    for (int i = 0; i < N; i++)
        if ((fds[i] = dial()) >= 0) opened++;
    long long end = now_ms() + 3000;
    int most = 0;
    while (now_ms() < end && most < SERVER_NOFILE) { /* it accepts up to its limit */
        int n = server_fds();
        if (n > most) most = n;
        sleep_ms(20);
    }
    printf("  %d connections open; the server reached %d fds of its %d\n", opened, most,
           SERVER_NOFILE);
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0) close(fds[i]);
    bool ok = opened == N && most == SERVER_NOFILE;
    if (!settle("fd-exhaustion")) ok = false;
    int out[OUTCOMES] = {0}; /* and it serves again */
    if (!waves(PING, 20, 10, 0, out)) {
        printf("  after the exhaustion,");
        print_outcomes(out);
        ok = false;
    }
    return ok;
}

/* A client that sends and never reads: the server's echo fills our receive buffer, its
 * send waits, it stops reading, and our send stops too. Nothing may pile up in the server. */
static bool phase_flood(void) {
    long rss0 = server_rss_kb();
    int fd = dial();
    if (fd < 0) return false;
    static char chunk[65536];
    memset(chunk, 'x', sizeof chunk);
    long long total = 0, end = now_ms() + 5000, last = now_ms();
    while (now_ms() < end && now_ms() - last < 500) { /* 500 ms without progress: stalled */
        ssize_t r = send(fd, chunk, sizeof chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r > 0) {
            total += r;
            last = now_ms();
        } else if (r < 0 && errno != EAGAIN) {
            break;
        } else {
            struct pollfd p = {fd, POLLOUT, 0};
            poll(&p, 1, 50);
        }
    }
    bool stalled = now_ms() - last >= 500;
    long rss1 = server_rss_kb();
    int out[OUTCOMES] = {0}; /* others are served meanwhile */
    bool served = waves(PING, 20, 10, 0, out);
    printf("  flood: %lld KiB sent before the sender stalled%s; server RSS %ld -> %ld KiB\n",
           total / 1024, stalled ? "" : " (it never stalled)", rss0, rss1);
    if (!served) {
        printf("  meanwhile,");
        print_outcomes(out);
    }
    reset(fd);
    bool ok = stalled && served && rss1 - rss0 < 32 * 1024;
    return settle("flood") && ok;
}

/* Connections that never send, while other clients come and go. */
static bool phase_slow(void) {
    enum { SLOW = 30 };
    int fds[SLOW], opened = 0;
    for (int i = 0; i < SLOW; i++)
        if ((fds[i] = dial()) >= 0) opened++;
    int out[OUTCOMES] = {0};
    bool ok = waves(PING, 100, 10, 0, out) && opened == SLOW;
    printf("  %d idle connections, and", opened);
    print_outcomes(out);
    for (int i = 0; i < SLOW; i++)
        if (fds[i] >= 0) close(fds[i]);
    return settle("slow") && ok;
}

/* ---- the server ------------------------------------------------------------------- */

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0)
        return -1;
    close(fd);
    return ntohs(a.sin_port);
}

static bool start_server(void) {
    port = free_port();
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%d", port);
    server = fork();
    if (server == 0) {
        /* only the standard fds: what we inherited would count against the limit */
        close_range(3, ~0U, 0);
        struct rlimit rl = {SERVER_NOFILE, SERVER_NOFILE};
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(126);
        execl(echo_path, echo_path, "127.0.0.1", portstr, (char *)NULL);
        _exit(127);
    }
    if (server < 0) return false;
    long long end = now_ms() + 5000;
    while (now_ms() < end) { /* until it answers */
        int out[OUTCOMES] = {0};
        if (waves(PING, 1, 1, 0, out)) break;
        sleep_ms(20);
    }
    int out[OUTCOMES] = {0}; /* warm up: whatever the runtime makes lazily, it makes now */
    if (!waves(PING, 20, 10, 0, out)) {
        printf("server on port %d does not answer\n", port);
        return false;
    }
    baseline_fds = -1;
    for (int i = 0; i < 50 && baseline_fds < 0; i++) { /* the warm-up's sockets are gone */
        if (server_sockets(-1) == 0) baseline_fds = server_fds();
        sleep_ms(20);
    }
    return baseline_fds > 0;
}

/* SIGTERM, and the server's exit status: 0 for a clean stop. */
static int stop_server(int sig) {
    if (server <= 0) return -1;
    kill(server, sig);
    int st = 0;
    long long end = now_ms() + 5000;
    while (waitpid(server, &st, WNOHANG) == 0) {
        if (now_ms() > end) {
            kill(server, SIGKILL);
            waitpid(server, &st, 0);
            server = -1;
            return -2;
        }
        sleep_ms(10);
    }
    server = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void kill_server_at_exit(void) {
    if (server > 0) stop_server(SIGKILL);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/TO/echo\n", argv[0]);
        return 2;
    }
    echo_path = argv[1];
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    atexit(kill_server_at_exit);
    static const struct {
        const char *name;
        bool (*fn)(void);
    } phases[] = {
        {"send-close", phase_send_close},
        {"half-close", phase_half_close},
        {"data+fin", phase_data_fin},
        {"rst", phase_rst},
        {"fd-exhaustion", phase_fd_exhaustion},
        {"flood", phase_flood},
        {"slow", phase_slow},
    };
    const char *threads = getenv("ASYNCSTD_THREADS");
    printf("abuse_echo: %s, ASYNCSTD_THREADS=%s, server fds limited to %d\n", echo_path,
           threads ? threads : "(default)", SERVER_NOFILE);
    if (!start_server()) return 1;
    int failed = 0;
    for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
        long long t0 = now_ms();
        bool ok = phases[i].fn();
        if (!settle(phases[i].name))
            ok = false; /* after a failure too: it says how many are stuck */
        printf("%s %s (%lld ms; server pid %d, port %d, baseline %d fds)\n", ok ? "ok  " : "FAIL",
               phases[i].name, now_ms() - t0, (int)server, port, baseline_fds);
        if (!ok) {
            failed++;
            /* a fresh server, so that the next phase is judged on its own */
            stop_server(SIGKILL);
            if (!start_server()) return 1;
        }
    }
    int st = stop_server(SIGTERM);
    if (st != 0) {
        printf("FAIL stop: the server did not exit cleanly on SIGTERM (%s %d)\n",
               st == -2 ? "still running after 5 s; killed," : "status", st);
        failed++;
    }
    printf("abuse_echo: %d phase(s) failed\n", failed);
    return failed ? 1 : 0;
}
