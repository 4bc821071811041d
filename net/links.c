/*
 * links.c — the peers the daemon dials and the trust it keeps checking (spec/protocol.md
 * "Daemon", "Discovery"): the table of peer states shared by sessions, the outgoing links with
 * their reconnect backoff, the list of links read from the peer records and opts->peers, the
 * sweep that closes sessions of revoked peers, the ZAP admit function, and what a beacon from
 * a trusted peer leads to (its address recorded, a link made).
 */
#include "daemon.h"
#include "store.h" /* kith__invite_open */

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

bool
kith__peer_admitted(kith_replica *r, const uint8_t pk[KITH_PUBKEY_BYTES])
{
    return kith_is_trusted(r, pk); /* trusted and unforked, or a live member; never removed */
}

/* Does this Ed25519 key convert to the CURVE key `x`? */
static bool
curve_is(const uint8_t pk[KITH_PUBKEY_BYTES], const uint8_t x[32])
{
    uint8_t y[32];
    return kith_curve_public(pk, y) == 0 && sodium_memcmp(x, y, 32) == 0;
}

bool
kith__admit_trusted(void *replica, const uint8_t curve_pk[32], const char **why)
{
    kith_replica *r = replica;
    kith_peer *peers = NULL;
    kith_device *dev = NULL;
    size_t n = 0, nd = 0;
    bool ok = false, removed = false;

    *why = "untrusted key";
    if (kith_peers_get(r, &peers, &n) == 0) {
        for (size_t i = 0; i < n && !ok; i++)
            if (peers[i].trusted && !peers[i].forked && curve_is(peers[i].pubkey, curve_pk))
                ok = kith__peer_admitted(r, peers[i].pubkey); /* not a removed member */
        kith_peers_free(peers, n);
    }
    if (!ok && kith_devices_get(r, &dev, &nd) == 0) {
        for (size_t i = 0; i < nd && !ok; i++) {
            if (!curve_is(dev[i].pubkey, curve_pk))
                continue;
            if (dev[i].removed)
                removed = true;
            else
                ok = !dev[i].self;
        }
        kith_devices_free(dev, nd);
    }
    if (ok)
        return true;
    if (removed) {
        *why = "a device removed from the group";
        return false;
    }
    if (kith__invite_open(r, kith__now_ms())) {
        *why = "OK";
        return true; /* it may redeem the open invite, and do nothing else (NET-31) */
    }
    return false;
}

struct kith__peerstate *
kith__daemon_peer(void *ctx, uint64_t id, const uint8_t pk[KITH_PUBKEY_BYTES])
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
    p->failing_after = d->o->failing_after;
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

/* ---- outgoing links ------------------------------------------------------------------ */

void
kith__link_disconnect(struct link *l)
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

int64_t
kith__link_backoff_ms(uint32_t failures, uint32_t failing_after, uint32_t jitter)
{
    if (failures >= (failing_after ? failing_after : KITH_FAILING_AFTER))
        failures = UINT32_MAX; /* failing: the longest step, for as long as it lasts */
    return kith__backoff_ms(failures, jitter);
}

/* The link failed: close it and wait before the next attempt (exponential, with jitter; at
 * the longest step once the peer is failing). */
void
kith__link_fail(struct link *l, int code, const char *why)
{
    struct daemon *d = l->d;
    uint32_t after = d->o->failing_after ? d->o->failing_after : KITH_FAILING_AFTER;
    int64_t delay;

    if (l->s.state != KITH__SS_CLOSED && l->sock)
        kith__session_close(&l->s, code, false, false, "%s", why);
    kith__link_disconnect(l);
    if (l->failures < UINT32_MAX)
        l->failures++;
    delay = kith__link_backoff_ms(l->failures, after, randombytes_uniform(1000));
    l->next_attempt_ms = kith__mono_ms() + delay;
    if (l->failures == after)
        kith__log(&d->log, KITH_LOG_WARNING,
                  "peer %016llx at %s is failing: %u attempts in a row failed, the last with: "
                  "%s; retrying every %d s",
                  (unsigned long long)l->id, l->endpoint, (unsigned)l->failures, why,
                  BACKOFF_MAX_MS / 1000);
    else
        kith__log(&d->log, KITH_LOG_INFO, "peer %016llx at %s: %s; retrying in %lld ms",
                  (unsigned long long)l->id, l->endpoint, why, (long long)delay);
}

void
kith__link_connect(struct link *l)
{
    struct daemon *d = l->d;
    struct kith__peerstate *p;
    uint8_t srv[32];
    int rc;

    if ((rc = kith_curve_public(l->pk, srv)) < 0 ||
        (rc = kith__client_socket(d->zctx, d->cpub, d->csec, srv, l->endpoint, NULL, &l->sock)) <
            0) {
        kith__link_fail(l, rc, "could not connect");
        return;
    }
    p = kith__daemon_peer(d, l->id, l->pk);
    if (!p) {
        kith__link_fail(l, KITH_ENOMEM, "too many peers");
        return;
    }
    rc = kith__session_start_client(&l->s, d->r, &d->log, p, link_send, l);
    if (rc < 0)
        kith__link_fail(l, rc, "could not send HELLO");
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
            kith__link_disconnect(l);
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

/* Links from the peer records (admitted: trusted or a live member, with an address) and
 * opts->peers. */
void
kith__links_refresh(struct daemon *d)
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
            found = !peers[i].forked && strcmp(peers[i].addr, ep) == 0 &&
                    kith__peer_admitted(d->r, peers[i].pubkey);
        if (!found && d->warned && !d->warned[j]) {
            d->warned[j] = true;
            kith__log(&d->log, KITH_LOG_WARNING, "peer %s not dialled: %s", ep, why);
        }
    }
    for (size_t i = 0; i < n; i++) {
        bool named = false; /* opts->peers gave it an address already */
        for (size_t k = 0; k < MAX_LINKS && !named; k++)
            named = d->links[k].used && d->links[k].wanted && d->links[k].id == peers[i].id;
        /* trusted pairwise, or a live member (whose record a beacon or a sync made): every
         * member whose address is known is dialled, not only the one a joiner was invited by */
        if (!named && !peers[i].forked && peers[i].addr[0] &&
            kith__peer_admitted(d->r, peers[i].pubkey)) {
            struct link *l = ensure_link(d, peers[i].addr, peers[i].pubkey);
            /* a peer that was failing when the daemon last ran stays at the longest step */
            if (l && peers[i].failing && l->failures == 0 && !l->sock && l->next_attempt_ms == 0)
                l->failures = peers[i].failures;
        }
    }
    for (size_t i = 0; i < MAX_LINKS; i++) {
        struct link *l = &d->links[i];
        if (l->used && !l->wanted) {
            if (l->sock)
                kith__session_close(&l->s, KITH_EUNTRUSTED, false, true, "no longer trusted");
            kith__link_disconnect(l);
            l->used = false;
        }
    }
    kith_peers_free(peers, n);
}

/* Close every open session whose peer is no longer trusted: ZAP only checks at connection,
 * and a revoked device must stop receiving at once (removing trust writes data.mdb, so the
 * inotify event brings us here). */
void
kith__daemon_sweep_trust(struct daemon *d)
{
    for (size_t i = 0; i < MAX_LINKS; i++) {
        struct link *l = &d->links[i];
        if (l->used && l->sock && l->s.state == KITH__SS_OPEN && !kith_is_trusted(d->r, l->pk))
            kith__session_close(&l->s, KITH_EUNTRUSTED, true, false,
                                "trust was removed, or the device was removed from the group");
    }
    for (size_t i = 0; i < MAX_INBOUND; i++) {
        struct inbound *in = &d->in[i];
        if (in->used && in->s.state == KITH__SS_OPEN && in->s.peer &&
            !kith_is_trusted(d->r, in->s.peer->pk))
            kith__session_close(&in->s, KITH_EUNTRUSTED, true, false,
                                "trust was removed, or the device was removed from the group");
    }
}

void
kith__daemon_on_beacon(struct daemon *d)
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
        /* a member is recorded with its address and no pairwise trust (GRP-14), so that
         * removing it from the group is all it takes; a peer trusted outside the group gets
         * its address as before */
        rc = kith__peer_member_addr(d->r, b.pk, b.endpoint);
        if (rc == KITH_EUNTRUSTED)
            rc = kith_trust_add(d->r, b.pk, NULL, b.endpoint);
        if (rc < 0)
            kith__log(&d->log, KITH_LOG_WARNING, "could not record %s: %s", b.endpoint,
                      kith_strerror(rc));
        (void)ensure_link(d, b.endpoint, b.pk);
    }
}
