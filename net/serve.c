/*
 * serve.c — kith_serve, the sync daemon (spec/protocol.md "Daemon"). One thread, one
 * zmq_poll loop over: the ROUTER that peers connect to (CURVE, ZAP-checked), one DEALER per
 * known peer (trusted peers with an address, and opts->peers), a signalfd for SIGTERM and
 * SIGINT, an inotify watch on the replica's data.mdb (a commit by any process modifies it, so
 * a write by the CLI or an app is pushed without polling), and the discovery beacon socket.
 * Timers (anti-entropy, keep-alive, per-peer timeouts, reconnect backoff, beacons) are
 * checked each turn; the poll never sleeps more than 100 ms, so a stop request is seen fast.
 *
 * No call blocks on a peer: sends are non-blocking and bounded by the window, receives are
 * drained without waiting, and a peer that stops answering is dropped after timeout_ms while
 * the others go on. A batch is applied inside kith_batch_apply (one LMDB transaction), so a
 * stop between two frames never leaves half a batch.
 */
#include "net.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_LINKS 64
#define MAX_INBOUND 128
#define MAX_PEERS 256
#define MAX_POLL (MAX_LINKS + 4)
#define BACKOFF_BASE_MS 250
#define BACKOFF_MAX_MS 30000
#define RECHECKS 3

static const int recheck_after[RECHECKS] = {1, 20, 250};

struct daemon;

/* An outgoing connection to one peer. */
struct link {
    bool used;
    bool wanted; /* still in the configuration (refresh marks) */
    char endpoint[256];
    uint8_t pk[KITH_PUBKEY_BYTES];
    uint64_t id;
    void *sock; /* NULL while waiting to (re)connect */
    struct kith__session s;
    uint32_t failures;
    int64_t next_attempt_ms;
    struct daemon *d;
};

/* A peer connected to our ROUTER, known by its routing id. */
struct inbound {
    bool used;
    uint8_t rid[256];
    size_t rid_len;
    struct kith__session s;
    struct daemon *d;
};

struct daemon {
    kith_replica *r;
    const kith_serve_opts *o;
    struct kith__log log;
    void *zctx;
    void *router;
    struct kith__zap zap;
    char bound[256];
    uint8_t cpub[32], csec[32];
    struct link links[MAX_LINKS];
    struct inbound in[MAX_INBOUND];
    struct kith__peerstate *peers[MAX_PEERS];
    size_t npeers;
    int sigfd, inofd, bfd;
    kith_vv last_vv; /* the vector last pushed (net-owned) */
    int interval_ms, timeout_ms;
    uint16_t beacon_port;
    int64_t next_ae_ms, next_beacon_ms, next_vv_check_ms;
    int64_t recheck_ms[RECHECKS]; /* look at the vector again then (0: no) */
    struct kith__beacon_gate gate;
    bool *warned; /* opts->peers endpoints we have complained about */
    bool stopping;
};

bool
kith__admit_trusted(void *replica, const uint8_t curve_pk[32])
{
    kith_replica *r = replica;
    kith_peer *peers = NULL;
    size_t n = 0;
    bool ok = false;

    if (kith_peers_get(r, &peers, &n) < 0)
        return false;
    for (size_t i = 0; i < n && !ok; i++) {
        uint8_t x[32];
        if (peers[i].trusted && !peers[i].forked && kith_curve_public(peers[i].pubkey, x) == 0 &&
            sodium_memcmp(x, curve_pk, 32) == 0)
            ok = true;
    }
    kith_peers_free(peers, n);
    return ok;
}

static struct kith__peerstate *
find_peer(void *ctx, uint64_t id, const uint8_t pk[KITH_PUBKEY_BYTES])
{
    struct daemon *d = ctx;
    struct kith__peerstate *p;

    for (size_t i = 0; i < d->npeers; i++)
        if (d->peers[i]->id == id)
            return d->peers[i];
    if (d->npeers == MAX_PEERS)
        return NULL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->id = id;
    memcpy(p->pk, pk, KITH_PUBKEY_BYTES);
    kith__peerstate_load(p, d->r);
    d->peers[d->npeers++] = p;
    return p;
}

static int
link_send(void *ctx, void *data, size_t len)
{
    struct link *l = ctx;
    return kith__send_frame(l->sock, NULL, 0, data, len);
}

static int
inbound_send(void *ctx, void *data, size_t len)
{
    struct inbound *in = ctx;
    return kith__send_frame(in->d->router, in->rid, in->rid_len, data, len);
}

/* ---- outgoing links ------------------------------------------------------------------ */

static void
link_disconnect(struct link *l)
{
    if (l->sock) {
        zmq_close(l->sock);
        l->sock = NULL;
    }
}

int64_t
kith__backoff_ms(uint32_t failures, uint32_t jitter)
{
    int64_t delay = BACKOFF_BASE_MS;
    for (uint32_t i = 1; i < failures && delay < BACKOFF_MAX_MS; i++)
        delay *= 2;
    if (delay > BACKOFF_MAX_MS)
        delay = BACKOFF_MAX_MS;
    return delay * 3 / 4 + delay * (int64_t)(jitter % 1000) / 2000;
}

/* The link failed: close it and wait before the next attempt (exponential, with jitter). */
static void
link_fail(struct link *l, int code, const char *why)
{
    struct daemon *d = l->d;
    int64_t delay;

    if (l->s.state != KITH__SS_CLOSED && l->sock)
        kith__session_close(&l->s, code, false, false, "%s", why);
    link_disconnect(l);
    l->failures++;
    delay = kith__backoff_ms(l->failures, randombytes_uniform(1000));
    l->next_attempt_ms = kith__mono_ms() + delay;
    kith__log(&d->log, KITH_LOG_INFO, "peer %016llx at %s: %s; retrying in %lld ms",
              (unsigned long long)l->id, l->endpoint, why, (long long)delay);
}

static void
link_connect(struct link *l)
{
    struct daemon *d = l->d;
    struct kith__peerstate *p;
    uint8_t srv[32];
    int rc;

    if ((rc = kith_curve_public(l->pk, srv)) < 0 ||
        (rc = kith__client_socket(d->zctx, d->cpub, d->csec, srv, l->endpoint, NULL, &l->sock)) <
            0) {
        link_fail(l, rc, "could not connect");
        return;
    }
    p = find_peer(d, l->id, l->pk);
    if (!p) {
        link_fail(l, KITH_ENOMEM, "too many peers");
        return;
    }
    rc = kith__session_start_client(&l->s, d->r, &d->log, p, link_send, l);
    if (rc < 0)
        link_fail(l, rc, "could not send HELLO");
    else
        kith__log(&d->log, KITH_LOG_DEBUG, "connecting to %016llx at %s", (unsigned long long)l->id,
                  l->endpoint);
}

static struct link *
ensure_link(struct daemon *d, const char *endpoint, const uint8_t pk[KITH_PUBKEY_BYTES])
{
    struct link *free_slot = NULL;
    uint64_t id = kith_id_from_pubkey(pk);

    for (size_t i = 0; i < MAX_LINKS; i++) {
        struct link *l = &d->links[i];
        if (!l->used) {
            if (!free_slot)
                free_slot = l;
            continue;
        }
        if (l->id != id)
            continue;
        l->wanted = true;
        if (strcmp(l->endpoint, endpoint) != 0) {
            /* moved: reconnect to the new address at once */
            if (l->sock)
                kith__session_close(&l->s, 0, false, true, "peer moved to %s", endpoint);
            link_disconnect(l);
            snprintf(l->endpoint, sizeof(l->endpoint), "%s", endpoint);
            l->failures = 0;
            l->next_attempt_ms = 0;
        }
        return l;
    }
    if (!free_slot) {
        kith__log(&d->log, KITH_LOG_WARNING, "too many peers; %s not added", endpoint);
        return NULL;
    }
    memset(free_slot, 0, sizeof(*free_slot));
    free_slot->used = free_slot->wanted = true;
    free_slot->d = d;
    free_slot->id = id;
    free_slot->s.state = KITH__SS_CLOSED;
    memcpy(free_slot->pk, pk, KITH_PUBKEY_BYTES);
    snprintf(free_slot->endpoint, sizeof(free_slot->endpoint), "%s", endpoint);
    return free_slot;
}

/* Links from the peer records (trusted, with an address) and opts->peers. */
static void
refresh_links(struct daemon *d)
{
    kith_peer *peers = NULL;
    size_t n = 0;

    if (kith_peers_get(d->r, &peers, &n) < 0)
        return;
    for (size_t i = 0; i < MAX_LINKS; i++)
        d->links[i].wanted = false;
    /* opts->peers first: "PUBKEY@ENDPOINT" names the key; a bare endpoint must be a trusted
     * peer's recorded address (CURVE needs the key before the first byte). */
    for (size_t j = 0; j < d->o->npeers; j++) {
        const char *ep = d->o->peers[j], *at = strchr(ep, '@');
        uint8_t pk[KITH_PUBKEY_BYTES];
        size_t got = 0;
        bool found = false;
        const char *why = "no trusted key recorded for it (kith trust PUBKEY --addr ENDPOINT)";
        if (at && at - ep == 2 * KITH_PUBKEY_BYTES &&
            sodium_hex2bin(pk, sizeof(pk), ep, (size_t)(at - ep), NULL, &got, NULL) == 0 &&
            got == sizeof(pk)) {
            found = kith_is_trusted(d->r, pk);
            if (found)
                (void)ensure_link(d, at + 1, pk);
            else
                why = "that key is not trusted";
        }
        for (size_t i = 0; i < n && !found; i++)
            found = peers[i].trusted && !peers[i].forked && strcmp(peers[i].addr, ep) == 0;
        if (!found && d->warned && !d->warned[j]) {
            d->warned[j] = true;
            kith__log(&d->log, KITH_LOG_WARNING, "peer %s not dialled: %s", ep, why);
        }
    }
    for (size_t i = 0; i < n; i++) {
        bool named = false; /* opts->peers gave it an address already */
        for (size_t k = 0; k < MAX_LINKS && !named; k++)
            named = d->links[k].used && d->links[k].wanted && d->links[k].id == peers[i].id;
        if (!named && peers[i].trusted && !peers[i].forked && peers[i].addr[0])
            (void)ensure_link(d, peers[i].addr, peers[i].pubkey);
    }
    for (size_t i = 0; i < MAX_LINKS; i++) {
        struct link *l = &d->links[i];
        if (l->used && !l->wanted) {
            if (l->sock)
                kith__session_close(&l->s, KITH_EUNTRUSTED, false, true, "no longer trusted");
            link_disconnect(l);
            l->used = false;
        }
    }
    kith_peers_free(peers, n);
}

/* ---- receiving ----------------------------------------------------------------------- */

/* Receive one message of one or more frames; returns the frame count (the last in *m), 0 when
 * nothing is queued, or < 0. The routing id (ROUTER) goes to rid. */
static int
recv_message(void *sock, bool router, uint8_t *rid, size_t *rid_len, zmq_msg_t *m)
{
    int parts = 0, more = 1;

    if (router) {
        zmq_msg_t r;
        zmq_msg_init(&r);
        if (zmq_msg_recv(&r, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&r);
            return errno == EAGAIN ? 0 : -errno;
        }
        *rid_len = zmq_msg_size(&r) <= 255 ? zmq_msg_size(&r) : 255;
        memcpy(rid, zmq_msg_data(&r), *rid_len);
        more = zmq_msg_more(&r);
        zmq_msg_close(&r);
        if (!more)
            return KITH_EMALFORMED;
    }
    while (more) {
        if (parts > 0)
            zmq_msg_close(m);
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, router ? 0 : ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(m);
            return parts == 0 && e == EAGAIN ? 0 : -e;
        }
        parts++;
        more = zmq_msg_more(m);
    }
    return parts;
}

static struct inbound *
inbound_find(struct daemon *d, const uint8_t *rid, size_t rid_len, bool create)
{
    struct inbound *free_slot = NULL;
    for (size_t i = 0; i < MAX_INBOUND; i++) {
        struct inbound *in = &d->in[i];
        if (!in->used) {
            if (!free_slot)
                free_slot = in;
        } else if (in->rid_len == rid_len && memcmp(in->rid, rid, rid_len) == 0) {
            return in;
        }
    }
    if (!create || !free_slot)
        return NULL;
    memset(free_slot, 0, sizeof(*free_slot));
    free_slot->used = true;
    free_slot->d = d;
    memcpy(free_slot->rid, rid, rid_len);
    free_slot->rid_len = rid_len;
    kith__session_init_server(&free_slot->s, d->r, &d->log, find_peer, d, inbound_send, free_slot);
    return free_slot;
}

static void
on_router(struct daemon *d)
{
    for (int k = 0; k < 64; k++) {
        uint8_t rid[256];
        size_t rid_len = 0;
        zmq_msg_t m;
        int parts = recv_message(d->router, true, rid, &rid_len, &m);
        if (parts == 0)
            return;
        if (parts < 0) {
            kith__log(&d->log, KITH_LOG_WARNING, "a peer sent a frame without content");
            continue;
        }
        struct inbound *in = inbound_find(d, rid, rid_len, true);
        if (!in) {
            kith__log(&d->log, KITH_LOG_WARNING, "too many connected peers; one ignored");
            zmq_msg_close(&m);
            continue;
        }
        if (in->s.state == KITH__SS_NEW && !in->s.has_zap_curve) {
            const char *user = zmq_msg_gets(&m, "User-Id");
            size_t got = 0;
            if (user &&
                sodium_hex2bin(in->s.zap_curve, 32, user, strlen(user), NULL, &got, NULL) == 0 &&
                got == 32)
                in->s.has_zap_curve = true;
        }
        if (parts > 1)
            kith__session_close(&in->s, KITH_EMALFORMED, true, false,
                                "multi-part message of %d frames", parts);
        else
            (void)kith__session_input(&in->s, zmq_msg_data(&m), zmq_msg_size(&m));
        zmq_msg_close(&m);
        if (in->s.state == KITH__SS_CLOSED)
            in->used = false;
    }
}

static void
on_link(struct daemon *d, struct link *l)
{
    (void)d;
    for (int k = 0; k < 64 && l->sock; k++) {
        zmq_msg_t m;
        int parts = recv_message(l->sock, false, NULL, NULL, &m);
        if (parts == 0)
            return;
        if (parts < 0) {
            link_fail(l, parts, "receive failed");
            return;
        }
        if (parts > 1)
            kith__session_close(&l->s, KITH_EMALFORMED, true, false, "multi-part message");
        else
            (void)kith__session_input(&l->s, zmq_msg_data(&m), zmq_msg_size(&m));
        zmq_msg_close(&m);
        if (l->s.state == KITH__SS_CLOSED) {
            link_fail(l, l->s.error, l->s.why);
            return;
        }
        if (l->s.state == KITH__SS_OPEN && l->failures) {
            l->failures = 0;
            kith__log(&d->log, KITH_LOG_INFO, "peer %016llx at %s: connected",
                      (unsigned long long)l->id, l->endpoint);
        }
    }
}

/* ---- push, relay, anti-entropy ------------------------------------------------------- */

static void
want_all(struct daemon *d)
{
    for (size_t i = 0; i < MAX_LINKS; i++)
        if (d->links[i].used && d->links[i].sock && d->links[i].s.state == KITH__SS_OPEN)
            d->links[i].s.want = true;
    for (size_t i = 0; i < MAX_INBOUND; i++)
        if (d->in[i].used && d->in[i].s.state == KITH__SS_OPEN)
            d->in[i].s.want = true;
}

/* Has the replica's vector moved since we last pushed? Then every peer may lack something. */
static void
check_vv(struct daemon *d)
{
    kith_vv cur = {0, NULL};
    if (kith_vv_get(d->r, &cur) < 0)
        return;
    if (kith__netvv_ahead(&cur, &d->last_vv)) {
        kith__log(&d->log, KITH_LOG_DEBUG, "the replica changed: pushing");
        want_all(d);
        (void)kith__netvv_set(&d->last_vv, &cur);
    }
    kith_vv_free(&cur);
}

/* Close every open session whose peer is no longer trusted: ZAP only checks at connection,
 * and a revoked device must stop receiving at once (removing trust writes data.mdb, so the
 * inotify event brings us here). */
static void
sweep_trust(struct daemon *d)
{
    for (size_t i = 0; i < MAX_LINKS; i++) {
        struct link *l = &d->links[i];
        if (l->used && l->sock && l->s.state == KITH__SS_OPEN && !kith_is_trusted(d->r, l->pk))
            kith__session_close(&l->s, KITH_EUNTRUSTED, true, false, "trust was removed");
    }
    for (size_t i = 0; i < MAX_INBOUND; i++) {
        struct inbound *in = &d->in[i];
        if (in->used && in->s.state == KITH__SS_OPEN && in->s.peer &&
            !kith_is_trusted(d->r, in->s.peer->pk))
            kith__session_close(&in->s, KITH_EUNTRUSTED, true, false, "trust was removed");
    }
}

static void
drain_inotify(struct daemon *d)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int64_t now = kith__mono_ms();
    while (read(d->inofd, buf, sizeof(buf)) > 0)
        ;
    sweep_trust(d);
    check_vv(d);
    /* LMDB writes the meta page (our event) a moment before it publishes the new txnid to
     * readers, so the commit that woke us may not be visible yet: look again shortly. */
    for (int i = 0; i < RECHECKS; i++)
        d->recheck_ms[i] = now + recheck_after[i];
}

static void
on_beacon(struct daemon *d)
{
    for (int k = 0; k < 32; k++) {
        struct kith__beacon_msg b;
        int64_t now = kith__mono_ms();
        if (!kith__beacon_rate_ok(&d->gate, now)) {
            if (kith__beacon_drop(d->bfd) == -EAGAIN)
                return;
            continue;
        }
        int rc = kith__beacon_recv(d->bfd, &b);
        if (rc == -EAGAIN)
            return;
        if (rc < 0)
            kith__log(&d->log, KITH_LOG_DEBUG, "beacon ignored: %s", kith_strerror(rc));
        if (rc < 0 || !kith__beacon_admit(&d->gate, &b, kith_replica_id(d->r), now))
            continue;
        if (!kith_is_trusted(d->r, b.pk)) {
            kith__log(&d->log, KITH_LOG_DEBUG, "beacon from untrusted %016llx at %s ignored",
                      (unsigned long long)b.id, b.endpoint);
            continue;
        }
        bool known = false;
        for (size_t i = 0; i < MAX_LINKS && !known; i++)
            known = d->links[i].used && d->links[i].id == b.id &&
                    strcmp(d->links[i].endpoint, b.endpoint) == 0;
        if (known)
            continue;
        kith__log(&d->log, KITH_LOG_INFO, "discovered %016llx at %s", (unsigned long long)b.id,
                  b.endpoint);
        rc = kith_trust_add(d->r, b.pk, NULL, b.endpoint);
        if (rc < 0)
            kith__log(&d->log, KITH_LOG_WARNING, "could not record %s: %s", b.endpoint,
                      kith_strerror(rc));
        (void)ensure_link(d, b.endpoint, b.pk);
    }
}

static void
timers(struct daemon *d)
{
    int64_t now = kith__mono_ms();

    for (size_t i = 0; i < MAX_LINKS; i++) {
        struct link *l = &d->links[i];
        if (!l->used)
            continue;
        if (!l->sock) {
            if (now >= l->next_attempt_ms && !d->stopping)
                link_connect(l);
            continue;
        }
        if (now - l->s.last_rx_ms > d->timeout_ms) {
            link_fail(l, KITH_ETIMEDOUT,
                      l->s.state == KITH__SS_HELLO ? "no answer to HELLO" : "peer went silent");
        } else if (l->s.state == KITH__SS_OPEN && now - l->s.last_tx_ms > d->timeout_ms / 3 &&
                   now - l->s.last_rx_ms > d->timeout_ms / 3) {
            if (kith__session_ping(&l->s) < 0)
                link_fail(l, l->s.error, "could not send PING");
        }
    }
    for (size_t i = 0; i < MAX_INBOUND; i++) {
        struct inbound *in = &d->in[i];
        if (in->used && now - in->s.last_rx_ms > d->timeout_ms) {
            kith__session_close(&in->s, KITH_ETIMEDOUT, false, false, "peer went silent");
            in->used = false;
        }
    }
    if (now >= d->next_ae_ms) {
        d->next_ae_ms = now + d->interval_ms;
        refresh_links(d);
        sweep_trust(d);
        for (size_t i = 0; i < MAX_LINKS; i++)
            if (d->links[i].used && d->links[i].sock)
                (void)kith__session_announce(&d->links[i].s);
    }
    if (d->bfd >= 0 && d->bound[0] && now >= d->next_beacon_ms) {
        int period = d->interval_ms / 4;
        period = period < 500 ? 500 : period > 5000 ? 5000 : period;
        d->next_beacon_ms = now + period;
        int rc = kith__beacon_send(d->bfd, d->r, d->beacon_port, d->bound);
        if (rc < 0)
            kith__log(&d->log, KITH_LOG_DEBUG, "beacon not sent: %s", kith_strerror(rc));
    }
    for (int i = 0; i < RECHECKS; i++)
        if (d->recheck_ms[i] && now >= d->recheck_ms[i]) {
            d->recheck_ms[i] = 0;
            check_vv(d);
        }
    if (d->inofd < 0 && now >= d->next_vv_check_ms) {
        d->next_vv_check_ms = now + 200; /* no inotify: look at the vector instead */
        check_vv(d);
    }
}

static void
pump_all(struct daemon *d)
{
    bool applied = false;
    for (size_t i = 0; i < MAX_LINKS; i++)
        if (d->links[i].used && d->links[i].sock && d->links[i].s.applied) {
            d->links[i].s.applied = false;
            applied = true;
        }
    for (size_t i = 0; i < MAX_INBOUND; i++)
        if (d->in[i].used && d->in[i].s.applied) {
            d->in[i].s.applied = false;
            applied = true;
        }
    if (applied)
        check_vv(d); /* relay what we just received to everyone else */
    for (size_t i = 0; i < MAX_LINKS; i++) {
        struct link *l = &d->links[i];
        if (l->used && l->sock && l->s.state == KITH__SS_CLOSED) {
            link_fail(l, l->s.error, l->s.why); /* closed from elsewhere (superseded) */
            continue;
        }
        if (l->used && l->sock && l->s.state == KITH__SS_OPEN) {
            (void)kith__session_pump(&l->s);
            if (l->s.state == KITH__SS_CLOSED)
                link_fail(l, l->s.error, l->s.why);
        }
    }
    for (size_t i = 0; i < MAX_INBOUND; i++) {
        struct inbound *in = &d->in[i];
        if (in->used && in->s.state == KITH__SS_CLOSED) {
            in->used = false;
            continue;
        }
        if (in->used && in->s.state == KITH__SS_OPEN) {
            (void)kith__session_pump(&in->s);
            if (in->s.state == KITH__SS_CLOSED)
                in->used = false;
        }
    }
}

/* ---- set-up and the loop ------------------------------------------------------------- */

static void
on_signal(struct daemon *d)
{
    struct signalfd_siginfo si;
    while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        kith__log(&d->log, KITH_LOG_INFO, "stopping on %s",
                  si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        d->stopping = true;
    }
}

static int
watch_replica(struct daemon *d)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/data.mdb", kith_replica_path(d->r));
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    d->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->inofd < 0)
        return -errno;
    if (inotify_add_watch(d->inofd, path, IN_MODIFY | IN_CLOSE_WRITE) < 0) {
        int rc = -errno;
        close(d->inofd);
        d->inofd = -1;
        return rc;
    }
    return 0;
}

static void
run(struct daemon *d)
{
    while (!d->stopping) {
        zmq_pollitem_t items[MAX_POLL];
        struct link *owner[MAX_POLL];
        int n = 0, irouter = -1, isig = -1, iino = -1, ibea = -1;

        if (d->o->stop && *d->o->stop) {
            kith__log(&d->log, KITH_LOG_INFO, "stopping on request");
            break;
        }
        memset(owner, 0, sizeof(owner));
        if (d->router) {
            irouter = n;
            items[n++] = (zmq_pollitem_t){d->router, 0, ZMQ_POLLIN, 0};
        }
        for (size_t i = 0; i < MAX_LINKS; i++)
            if (d->links[i].used && d->links[i].sock) {
                owner[n] = &d->links[i];
                items[n++] = (zmq_pollitem_t){d->links[i].sock, 0, ZMQ_POLLIN, 0};
            }
        isig = n;
        items[n++] = (zmq_pollitem_t){NULL, d->sigfd, ZMQ_POLLIN, 0};
        if (d->inofd >= 0) {
            iino = n;
            items[n++] = (zmq_pollitem_t){NULL, d->inofd, ZMQ_POLLIN, 0};
        }
        if (d->bfd >= 0) {
            ibea = n;
            items[n++] = (zmq_pollitem_t){NULL, d->bfd, ZMQ_POLLIN, 0};
        }
        long wait = 100;
        int64_t now = kith__mono_ms();
        for (int i = 0; i < RECHECKS; i++)
            if (d->recheck_ms[i] && d->recheck_ms[i] - now < wait)
                wait = d->recheck_ms[i] > now ? (long)(d->recheck_ms[i] - now) : 0;
        int rc = zmq_poll(items, n, wait);
        if (rc < 0 && errno != EINTR) {
            kith__log(&d->log, KITH_LOG_ERROR, "poll failed: %s", strerror(errno));
            break;
        }
        if (rc > 0) {
            if (items[isig].revents & ZMQ_POLLIN)
                on_signal(d);
            if (irouter >= 0 && (items[irouter].revents & ZMQ_POLLIN))
                on_router(d);
            for (int i = 0; i < n; i++)
                if (owner[i] && (items[i].revents & ZMQ_POLLIN))
                    on_link(d, owner[i]);
            if (iino >= 0 && (items[iino].revents & ZMQ_POLLIN))
                drain_inotify(d);
            if (ibea >= 0 && (items[ibea].revents & ZMQ_POLLIN))
                on_beacon(d);
        }
        timers(d);
        pump_all(d);
    }
}

KITH_API int
kith_serve(kith_replica *r, const kith_serve_opts *opts)
{
    struct daemon *d;
    sigset_t set, old;
    int rc;

    if (!r || !opts || (opts->npeers && !opts->peers))
        return KITH_EINVAL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return KITH_ENOMEM;
    d->r = r;
    d->o = opts;
    d->sigfd = d->inofd = d->bfd = -1;
    kith__log_init(&d->log, opts->log_level, opts->log_json);
    d->interval_ms = opts->interval_ms > 0 ? opts->interval_ms : 30000;
    d->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : KITH__NET_TIMEOUT_MS;
    d->beacon_port = opts->beacon_port ? opts->beacon_port : KITH__BEACON_PORT;
    if (opts->npeers && !(d->warned = calloc(opts->npeers, sizeof(bool)))) {
        rc = KITH_ENOMEM;
        goto out_free;
    }

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if ((rc = -pthread_sigmask(SIG_BLOCK, &set, &old)) < 0)
        goto out_free;
    d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (d->sigfd < 0) {
        rc = -errno;
        goto out_sigmask;
    }
    if ((rc = watch_replica(d)) < 0)
        kith__log(&d->log, KITH_LOG_WARNING,
                  "cannot watch the replica (%s); checking its vector every 200 ms instead",
                  kith_strerror(rc));
    if ((rc = kith_curve_keys(r, d->cpub, d->csec)) < 0)
        goto out_fds;
    d->zctx = zmq_ctx_new();
    if (!d->zctx) {
        rc = -ENOMEM;
        goto out_fds;
    }
    if (opts->listen) {
        rc = kith__zap_start(&d->zap, d->zctx, kith__admit_trusted, r, &d->log);
        if (rc < 0)
            goto out_ctx;
        rc = kith__server_socket(d->zctx, d->csec, opts->listen, &d->router, d->bound,
                                 sizeof(d->bound));
        if (rc < 0) {
            kith__log(&d->log, KITH_LOG_ERROR, "cannot listen on %s: %s", opts->listen,
                      kith_strerror(rc));
            goto out_zap;
        }
        kith__log(&d->log, KITH_LOG_INFO, "replica %016llx listening on %s",
                  (unsigned long long)kith_replica_id(r), d->bound);
    }
    if (opts->discover) {
        d->bfd = kith__beacon_open(d->beacon_port);
        if (d->bfd < 0)
            kith__log(&d->log, KITH_LOG_WARNING, "discovery off: %s", kith_strerror(d->bfd));
    }
    {
        kith_vv cur = {0, NULL};
        if (kith_vv_get(r, &cur) == 0) {
            (void)kith__netvv_set(&d->last_vv, &cur);
            kith_vv_free(&cur);
        }
    }
    refresh_links(d);
    d->next_ae_ms = kith__mono_ms() + d->interval_ms;
    kith__sd_notify("READY=1");
    run(d);
    kith__sd_notify("STOPPING=1");
    rc = 0;

    for (size_t i = 0; i < MAX_LINKS; i++) {
        struct link *l = &d->links[i];
        if (l->used && l->sock && l->s.state != KITH__SS_CLOSED)
            kith__session_close(&l->s, 0, false, true, "stopping");
        link_disconnect(l);
    }
    for (size_t i = 0; i < MAX_INBOUND; i++)
        if (d->in[i].used && d->in[i].s.state != KITH__SS_CLOSED)
            kith__session_close(&d->in[i].s, 0, false, true, "stopping");
    if (d->router)
        zmq_close(d->router);
    on_signal(d); /* consume a signal that came late, before unblocking it */
out_zap:
    kith__zap_stop(&d->zap);
out_ctx:
    zmq_ctx_term(d->zctx);
out_fds:
    if (d->bfd >= 0)
        close(d->bfd);
    if (d->inofd >= 0)
        close(d->inofd);
    close(d->sigfd);
out_sigmask:
    pthread_sigmask(SIG_SETMASK, &old, NULL);
out_free:
    sodium_memzero(d->csec, sizeof(d->csec));
    for (size_t i = 0; i < d->npeers; i++) {
        kith__peerstate_clear(d->peers[i]);
        free(d->peers[i]);
    }
    kith__netvv_clear(&d->last_vv);
    free(d->warned);
    free(d);
    return rc;
}
