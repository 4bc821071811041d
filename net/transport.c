/*
 * transport.c — ZeroMQ with CURVE, and the ZAP handler that makes CURVE mean something
 * (spec/protocol.md "Transport"). libzmq admits every client key unless a ZAP handler says
 * otherwise, so the handler is bound before any server socket exists and the server socket
 * enforces its ZAP domain: if the handler were missing, connections would fail, not pass.
 *
 * The handler runs in its own thread in the same context, answering each request with the
 * admit function's verdict; an admitted connection carries the client's CURVE key in hex as
 * its "User-Id" property, which the session compares with the key in HELLO.
 */
#include "net.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

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
    } else if (z->admit(z->admit_ctx, zmq_msg_data(&part[6]))) {
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
kith__server_socket(void *zctx, const uint8_t secret_x[32], const char *endpoint, void **out,
                    char *bound, size_t bound_cap)
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
                                ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) ||
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
