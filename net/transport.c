/*
 * transport.c — ZeroMQ with CURVE, and the ZAP handler that makes CURVE mean something
 * (spec/protocol.md "Transport"). libzmq admits every client key unless a ZAP handler says
 * otherwise, so the handler is bound before any server socket exists and the server socket
 * enforces its ZAP domain: if the handler were missing, connections would fail, not pass.
 *
 * The handler runs in its own thread in the same context, answering each request with the
 * admit function's verdict; an admitted connection carries the client's CURVE key in hex as
 * its "User-Id" property, which the session compares with the key in HELLO.
 *
 * The guard bounds what connections that never finish their handshake can hold (spec/
 * protocol.md NET-22, NET-23; spec/decisions.md D-6). libzmq accepts every TCP connection and
 * has no cap of its own: each costs a descriptor until ZMQ_HANDSHAKE_IVL, and once the
 * process runs out, accept fails and a trusted peer cannot get in. The ROUTER's monitor
 * reports each accepted connection with its descriptor, and each closed one; the guard keeps
 * them in accept order until they finish the handshake (a frame arrives from them, or they
 * outlive the interval), and sheds the oldest with shutdown(SHUT_RD) when there are too many
 * or descriptors run low. libzmq then reads end-of-file and closes the connection itself, as
 * if the peer had left. The descriptor is not ours and may have been closed and reused since
 * the event was sent, so a socket is shut down only if it still has the inode seen then, the
 * ROUTER's port, and fewer bytes received than a CURVE handshake takes: whatever it is, it
 * has not finished a handshake.
 */
#include "net.h"

#include <dirent.h>
#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

/* A client has sent at least this much when its CURVE handshake can finish: the greeting (64),
 * HELLO (200 + 2 bytes of framing) and INITIATE (257 or more + 9). */
#define CURVE_HANDSHAKE_BYTES (64 + 202 + 266)

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_MAX_PARTS 8
#define ZAP_LOG_BURST 5
#define ZAP_LOG_WINDOW_MS 10000

static int
zerr(void)
{
    return errno ? -errno : -EIO;
}

/* One ZAP request: read every part, answer with 200 or 400. Returns < 0 only when the
 * socket itself failed. */
static int
zap_answer(struct kith__zap *z)
{
    zmq_msg_t part[ZAP_MAX_PARTS];
    int nparts = 0, more = 1, rc = 0;
    const char *status = "400", *text = "untrusted key";
    char user[65] = "";

    while (more) {
        zmq_msg_t tmp;
        zmq_msg_init(&tmp);
        if (zmq_msg_recv(&tmp, z->sock, 0) < 0) {
            zmq_msg_close(&tmp);
            rc = zerr();
            goto out_close_parts;
        }
        more = zmq_msg_more(&tmp);
        if (nparts < ZAP_MAX_PARTS)
            part[nparts++] = tmp;
        else
            zmq_msg_close(&tmp);
    }
    /* version, request id, domain, address, routing id, mechanism, credentials... */
    if (nparts < 7 || zmq_msg_size(&part[0]) != 3 || memcmp(zmq_msg_data(&part[0]), "1.0", 3)) {
        status = "500";
        text = "malformed ZAP request";
    } else if (zmq_msg_size(&part[2]) != strlen(KITH__ZAP_DOMAIN) ||
               memcmp(zmq_msg_data(&part[2]), KITH__ZAP_DOMAIN, strlen(KITH__ZAP_DOMAIN)) ||
               zmq_msg_size(&part[5]) != 5 || memcmp(zmq_msg_data(&part[5]), "CURVE", 5) ||
               zmq_msg_size(&part[6]) != 32) {
        text = "not a kith CURVE connection";
    } else if (z->admit(z->admit_ctx, zmq_msg_data(&part[6]), &text)) {
        status = "200";
        text = "OK";
        kith__hex(zmq_msg_data(&part[6]), 32, user);
    }
    if (status[0] != '2') {
        char addr[64] = "?", key[65] = "?";
        if (nparts >= 4) {
            size_t n = zmq_msg_size(&part[3]);
            n = n < sizeof(addr) - 1 ? n : sizeof(addr) - 1;
            memcpy(addr, zmq_msg_data(&part[3]), n);
            addr[n] = '\0';
        }
        if (nparts >= 7 && zmq_msg_size(&part[6]) == 32)
            kith__hex(zmq_msg_data(&part[6]), 32, key);
        /* at most ZAP_LOG_BURST lines per ZAP_LOG_WINDOW_MS: a flood must not flood the log */
        int64_t now = kith__mono_ms();
        if (now - z->log_window_ms >= ZAP_LOG_WINDOW_MS) {
            if (z->log_suppressed)
                kith__log(z->log, KITH_LOG_WARNING, "%u more connections refused",
                          z->log_suppressed);
            z->log_window_ms = now;
            z->log_count = 0;
            z->log_suppressed = 0;
        }
        if (z->log_count++ < ZAP_LOG_BURST)
            kith__log(z->log, KITH_LOG_WARNING, "refused a connection from %s: %s (curve key %s)",
                      addr, text, key);
        else
            z->log_suppressed++;
    }
    {
        const void *rid = nparts >= 2 ? zmq_msg_data(&part[1]) : "";
        size_t rid_len = nparts >= 2 ? zmq_msg_size(&part[1]) : 0;
        if (zmq_send(z->sock, "1.0", 3, ZMQ_SNDMORE) < 0 ||
            zmq_send(z->sock, rid, rid_len, ZMQ_SNDMORE) < 0 ||
            zmq_send(z->sock, status, 3, ZMQ_SNDMORE) < 0 ||
            zmq_send(z->sock, text, strlen(text), ZMQ_SNDMORE) < 0 ||
            zmq_send(z->sock, user, strlen(user), ZMQ_SNDMORE) < 0 ||
            zmq_send(z->sock, "", 0, 0) < 0)
            rc = zerr();
    }
out_close_parts:
    for (int i = 0; i < nparts; i++)
        zmq_msg_close(&part[i]);
    return rc;
}

static void *
zap_main(void *arg)
{
    struct kith__zap *z = arg;
    while (!atomic_load(&z->stop)) {
        zmq_pollitem_t it = {z->sock, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&it, 1, 100);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break; /* context terminated */
        }
        if (n > 0 && zap_answer(z) < 0 && errno == ETERM)
            break;
    }
    zmq_close(z->sock);
    z->sock = NULL;
    return NULL;
}

int
kith__zap_start(struct kith__zap *z, void *zctx, kith__admit_fn admit, void *admit_ctx,
                const struct kith__log *log)
{
    int linger = 0, rc;

    memset(z, 0, sizeof(*z));
    z->admit = admit;
    z->admit_ctx = admit_ctx;
    z->log = log;
    atomic_init(&z->stop, 0);
    z->sock = zmq_socket(zctx, ZMQ_REP);
    if (!z->sock)
        return zerr();
    if (zmq_setsockopt(z->sock, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_bind(z->sock, ZAP_ENDPOINT) != 0) {
        rc = zerr();
        goto out_close_sock;
    }
    rc = -pthread_create(&z->thread, NULL, zap_main, z);
    if (rc < 0)
        goto out_close_sock;
    z->running = true;
    return 0;
out_close_sock:
    zmq_close(z->sock);
    z->sock = NULL;
    return rc;
}

void
kith__zap_stop(struct kith__zap *z)
{
    if (!z || !z->running)
        return;
    atomic_store(&z->stop, 1);
    pthread_join(z->thread, NULL);
    z->running = false;
}

static int
common_options(void *s)
{
    int linger = 0;
    int64_t maxmsg = KITH__WIRE_MAX_FRAME;
    if (zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) != 0)
        return zerr();
    return 0;
}

int
kith__server_socket(void *zctx, const uint8_t secret_x[32], const char *endpoint, int handshake_ms,
                    const char *monitor, void **out, char *bound, size_t bound_cap)
{
    int one = 1, rc;
    void *s;

    *out = NULL;
    s = zmq_socket(zctx, ZMQ_ROUTER);
    if (!s)
        return zerr();
    rc = common_options(s);
    if (rc < 0)
        goto out_close;
    if (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret_x, 32) != 0 ||
        zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, KITH__ZAP_DOMAIN, strlen(KITH__ZAP_DOMAIN)) != 0 ||
        zmq_setsockopt(s, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof(one)) != 0 ||
        zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) != 0 ||
        (handshake_ms > 0 &&
         zmq_setsockopt(s, ZMQ_HANDSHAKE_IVL, &handshake_ms, sizeof(handshake_ms)) != 0) ||
        (monitor && zmq_socket_monitor(s, monitor,
                                       ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_ACCEPT_FAILED |
                                           ZMQ_EVENT_DISCONNECTED) != 0) ||
        zmq_bind(s, endpoint) != 0) {
        rc = zerr();
        goto out_close;
    }
    if (bound && bound_cap) {
        size_t n = bound_cap;
        if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, bound, &n) != 0) {
            rc = zerr();
            goto out_close;
        }
    }
    *out = s;
    return 0;
out_close:
    zmq_close(s);
    return rc;
}

int
kith__client_socket(void *zctx, const uint8_t public_x[32], const uint8_t secret_x[32],
                    const uint8_t server_x[32], const char *endpoint, const char *monitor,
                    void **out)
{
    int rc;
    void *s;

    *out = NULL;
    s = zmq_socket(zctx, ZMQ_DEALER);
    if (!s)
        return zerr();
    rc = common_options(s);
    if (rc < 0)
        goto out_close;
    if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_x, 32) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, public_x, 32) != 0 ||
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, secret_x, 32) != 0 ||
        (monitor &&
         zmq_socket_monitor(s, monitor,
                            ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_CONNECT_RETRIED) !=
             0) ||
        zmq_connect(s, endpoint) != 0) {
        rc = zerr();
        goto out_close;
    }
    *out = s;
    return 0;
out_close:
    zmq_close(s);
    return rc;
}

static void
free_frame(void *data, void *hint)
{
    (void)hint;
    free(data);
}

int
kith__send_frame(void *sock, const void *rid, size_t rid_len, void *data, size_t len)
{
    zmq_msg_t m;
    int e;

    if (rid && zmq_send(sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        e = errno;
        free(data);
        return e == EAGAIN ? KITH_EBUSY : -e;
    }
    if (zmq_msg_init_data(&m, data, len, free_frame, NULL) != 0) {
        e = errno;
        free(data);
        return -e;
    }
    if (zmq_msg_send(&m, sock, ZMQ_DONTWAIT) < 0) {
        e = errno;
        zmq_msg_close(&m); /* frees data */
        return e == EAGAIN ? KITH_EBUSY : -e;
    }
    return 0;
}

/* ---- the guard ---------------------------------------------------------------------------- */

/* Descriptors open in this process, -EMFILE when there is none left to count them with, or
 * another -errno (no /proc). */
static long
count_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    long n = -1; /* the directory's own descriptor is listed */
    if (!dir)
        return errno == EMFILE || errno == ENFILE ? -EMFILE : -errno;
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(dir);
    return n;
}

static void
recount(struct kith__guard *g, int64_t now)
{
    struct rlimit rl;
    long n = count_fds();
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        g->fd_limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)1 << 30
                          ? 1L << 30
                          : (long)rl.rlim_cur;
    if (n == -EMFILE)
        g->fd_used = g->fd_limit;
    else
        g->fd_used = n;
    g->fd_counted_ms = now;
    g->exhausted = n == -EMFILE;
}

static uint64_t
inode_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) ? (uint64_t)st.st_ino : 0;
}

/* Is `fd` still the socket accepted then, and short of a finished handshake? (File header.) */
static bool
may_shed(const struct kith__guard *g, const struct kith__preauth *c)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct tcp_info ti;
    socklen_t tlen = sizeof(ti);

    if (c->ino == 0 || inode_of(c->fd) != c->ino || g->port == 0)
        return false;
    if (getsockname(c->fd, (struct sockaddr *)&ss, &len) != 0)
        return false;
    if (ss.ss_family == AF_INET) {
        if (ntohs(((struct sockaddr_in *)&ss)->sin_port) != g->port)
            return false;
    } else if (ss.ss_family == AF_INET6) {
        if (ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) != g->port)
            return false;
    } else {
        return false;
    }
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) != 0)
        return false;
    /* tcpi_bytes_received came with Linux 4.1; on an older kernel the inode and port say
     * enough */
    if (tlen >= offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received) &&
        ti.tcpi_bytes_received >= CURVE_HANDSHAKE_BYTES)
        return false;
    return true;
}

static void
forget(struct kith__guard *g, unsigned i)
{
    memmove(&g->conn[i], &g->conn[i + 1], (g->n - i - 1) * sizeof(g->conn[0]));
    g->n--;
}

static unsigned
pending(const struct kith__guard *g)
{
    unsigned n = 0;
    for (unsigned i = 0; i < g->n; i++)
        n += !g->conn[i].closing;
    return n;
}

/* Shut down the oldest pending connection; false when there is none. */
static bool
shed_oldest(struct kith__guard *g)
{
    unsigned i = 0;
    while (i < g->n) {
        struct kith__preauth *c = &g->conn[i];
        if (c->closing) {
            i++;
        } else if (may_shed(g, c) && shutdown(c->fd, SHUT_RD) == 0) {
            c->closing = true;
            return true;
        } else {
            forget(g, i); /* gone, handshaken, or no longer what was accepted */
        }
    }
    return false;
}

/* Shed the oldest pending connections beyond the cap, and as many as it takes to keep
 * KITH__FD_RESERVE descriptors free (counting the ones being closed as free already). */
static void
shed(struct kith__guard *g)
{
    long over_cap = (long)pending(g) - KITH__PREAUTH_MAX, short_fds = 0;
    if (g->fd_used >= 0 && g->fd_limit > 0) {
        long closing = (long)g->n - (long)pending(g);
        short_fds = KITH__FD_RESERVE - (g->fd_limit - g->fd_used + closing);
    }
    while ((over_cap > 0 || short_fds > 0) && shed_oldest(g)) {
        if (short_fds > 0)
            g->shed_fd++;
        else
            g->shed_cap++;
        over_cap--;
        short_fds--;
    }
}

int
kith__guard_open(struct kith__guard *g, void *zctx, int handshake_ms, const struct kith__log *log)
{
    int linger = 0;

    memset(g, 0, sizeof(*g));
    g->log = log;
    g->handshake_ms = handshake_ms;
    g->fd_used = -1;
    g->warn_fd_ms = g->warn_cap_ms = INT64_MIN / 2;
    snprintf(g->endpoint, sizeof(g->endpoint), "inproc://kith-guard-%p", (void *)g);
    g->mon = zmq_socket(zctx, ZMQ_PAIR);
    if (!g->mon)
        return zerr();
    /* connected before the monitor binds (inproc allows it): libzmq's I/O thread blocks on a
     * monitor event that no socket takes */
    if (zmq_setsockopt(g->mon, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_connect(g->mon, g->endpoint) != 0) {
        int rc = zerr();
        zmq_close(g->mon);
        g->mon = NULL;
        return rc;
    }
    return 0;
}

void
kith__guard_bound(struct kith__guard *g, const char *bound)
{
    const char *colon = strrchr(bound, ':');
    if (strncmp(bound, "tcp://", 6) == 0 && colon)
        g->port = (uint16_t)strtoul(colon + 1, NULL, 10);
    recount(g, kith__mono_ms());
}

void
kith__guard_admitted(struct kith__guard *g, int fd)
{
    for (unsigned i = 0; i < g->n; i++)
        if (g->conn[i].fd == fd && !g->conn[i].closing) {
            forget(g, i);
            return;
        }
}

/* Track a connection libzmq accepted on fd; make room by shedding or forgetting the oldest. */
static void
accepted(struct kith__guard *g, int fd, int64_t now)
{
    if (g->n == sizeof(g->conn) / sizeof(g->conn[0])) {
        /* full of connections being closed (shed() keeps the others within the cap): forget
         * the oldest, whose close is on its way anyway */
        unsigned i = 0;
        while (i + 1 < g->n && !g->conn[i].closing)
            i++;
        forget(g, i);
    }
    g->conn[g->n++] = (struct kith__preauth){fd, false, inode_of(fd), now};
    if (g->fd_used >= 0)
        g->fd_used++;
    shed(g);
}

static void
closed(struct kith__guard *g, int fd)
{
    for (unsigned i = 0; i < g->n; i++)
        if (g->conn[i].fd == fd) {
            forget(g, i);
            break;
        }
    if (g->fd_used > 0)
        g->fd_used--;
}

void
kith__guard_on_events(struct kith__guard *g)
{
    int64_t now = kith__mono_ms();
    if (!g->mon)
        return;
    for (int k = 0; k < 1024; k++) {
        zmq_msg_t ev, addr;
        uint16_t event = 0;
        uint32_t value = 0;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, g->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            break;
        }
        if (zmq_msg_size(&ev) >= 6) {
            memcpy(&event, zmq_msg_data(&ev), sizeof(event));
            memcpy(&value, (uint8_t *)zmq_msg_data(&ev) + 2, sizeof(value));
        }
        if (zmq_msg_more(&ev)) {
            zmq_msg_init(&addr);
            (void)zmq_msg_recv(&addr, g->mon, ZMQ_DONTWAIT);
            zmq_msg_close(&addr);
        }
        zmq_msg_close(&ev);
        if (event == ZMQ_EVENT_ACCEPTED) {
            accepted(g, (int)value, now);
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            closed(g, (int)value);
        } else if (event == ZMQ_EVENT_ACCEPT_FAILED && (value == EMFILE || value == ENFILE)) {
            g->refused++;
            g->exhausted = true;
        }
    }
    if (g->exhausted || now - g->fd_counted_ms >= 100)
        recount(g, now);
    shed(g);
}

void
kith__guard_tick(struct kith__guard *g)
{
    int64_t now = kith__mono_ms();
    if (!g->mon)
        return;
    /* libzmq closes a connection still in its handshake at handshake_ms: one still open past
     * that finished it (or its close is on the way) */
    while (g->n > 0 && now - g->conn[0].since_ms > (int64_t)g->handshake_ms + 1000)
        forget(g, 0);
    if (now - g->fd_counted_ms >= 1000) {
        recount(g, now);
        shed(g);
    }
    bool low = g->fd_limit > 0 && g->fd_used * 5 >= g->fd_limit * 4;
    if ((low || g->shed_fd || g->refused) && now - g->warn_fd_ms >= KITH__GUARD_WARN_MS) {
        kith__log(g->log, KITH_LOG_WARNING,
                  "file descriptors low: %ld of %ld in use; connections closed before their "
                  "handshake to free some: %u, not accepted: %u (raise the limit: ulimit -n, "
                  "LimitNOFILE=)",
                  g->fd_used, g->fd_limit, g->shed_fd, g->refused);
        g->warn_fd_ms = now;
        g->shed_fd = g->refused = 0;
    }
    if (g->shed_cap && now - g->warn_cap_ms >= KITH__GUARD_WARN_MS) {
        kith__log(g->log, KITH_LOG_WARNING,
                  "a flood of connections? closed before finishing their handshake: %u (at "
                  "most %d are kept)",
                  g->shed_cap, KITH__PREAUTH_MAX);
        g->warn_cap_ms = now;
        g->shed_cap = 0;
    }
}

void
kith__guard_close(struct kith__guard *g, void *router)
{
    if (!g->mon)
        return;
    if (router)
        (void)zmq_socket_monitor(router, NULL, 0);
    zmq_close(g->mon);
    g->mon = NULL;
}
