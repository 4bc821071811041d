/*
 * sync.c — kith_sync: one bidirectional session with one peer, then return (spec/protocol.md
 * "kith_sync"). A private ZeroMQ context holds a DEALER with CURVE keys, and a monitor socket
 * that reports a refused handshake at once (the server's ZAP handler said no), so an
 * untrusting peer costs a round trip, not the whole timeout. Everything else is the session
 * engine of session.c, fed from one zmq_poll loop bounded by the silence timeout.
 *
 * Progress (spec/decisions.md D-11) is reported after every frame handled and on every turn of
 * the loop (at least every 100 ms, and at once when a signal interrupts the poll), so a cancel
 * is heard promptly; the session then closes between two frames, and as each batch is applied
 * in one transaction when its frame is handled, every batch applied is whole.
 */
#include "net.h"
#include "store.h" /* kith__fail: the detail behind kith_errmsg */

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static int
dealer_send(void *sock, void *data, size_t len)
{
    return kith__send_frame(sock, NULL, 0, data, len);
}

/* The key of the trusted peer recorded with this address. */
static int
key_for_endpoint(kith_replica *r, const char *endpoint, uint8_t pk[KITH_PUBKEY_BYTES])
{
    kith_peer *peers = NULL;
    size_t n = 0;
    int rc = kith_peers_get(r, &peers, &n);
    if (rc < 0)
        return rc;
    rc = KITH_EUNTRUSTED;
    for (size_t i = 0; i < n; i++) {
        if (peers[i].trusted && !peers[i].forked && strcmp(peers[i].addr, endpoint) == 0) {
            memcpy(pk, peers[i].pubkey, KITH_PUBKEY_BYTES);
            rc = 0;
            break;
        }
    }
    kith_peers_free(peers, n);
    return rc;
}

/* Read one monitor event; returns a kith code for a failed handshake, else 0. */
static int
monitor_event(void *mon)
{
    zmq_msg_t ev, addr;
    uint16_t event = 0;
    int rc = 0;

    zmq_msg_init(&ev);
    zmq_msg_init(&addr);
    if (zmq_msg_recv(&ev, mon, ZMQ_DONTWAIT) < 0)
        goto out_close;
    if (zmq_msg_more(&ev))
        (void)zmq_msg_recv(&addr, mon, ZMQ_DONTWAIT);
    if (zmq_msg_size(&ev) >= 2)
        memcpy(&event, zmq_msg_data(&ev), sizeof(event));
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        rc = KITH_EUNTRUSTED;
    else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
             event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        rc = KITH_EPROTO;
out_close:
    zmq_msg_close(&addr);
    zmq_msg_close(&ev);
    return rc;
}

/* A sync's progress: ops sent plus ops received, of what the two vectors differ by once the
 * handshake told the peer's. */
struct sync_progress {
    struct kith__progress *pg; /* NULL: nobody listens */
    kith_replica *r;
    const struct kith__peerstate *peer;
    bool sized; /* the total was taken from the handshake */
    uint64_t total;
};

/* Report where the session stands. 0, or KITH_ECANCELED once the callback said stop. */
static int
sync_report(struct sync_progress *sp, const struct kith__session *s)
{
    if (sp->pg == NULL)
        return 0;
    if (!sp->sized && s->state == KITH__SS_OPEN) {
        kith_vv mine = {0, NULL};
        sp->sized = true;
        if (kith_vv_get(sp->r, &mine) == 0) {
            sp->total = kith__vv_missing(&mine, &sp->peer->known) +
                        kith__vv_missing(&sp->peer->known, &mine) + s->stats.ops_sent +
                        s->stats.ops_received;
            kith_vv_free(&mine);
        }
    }
    return kith__progress_report(sp->pg, s->stats.ops_sent + s->stats.ops_received, sp->total);
}

/* Receive every frame queued on the DEALER into the session; stop early when a progress
 * report cancels (the frames left are dropped with the socket). */
static void
drain(struct kith__session *s, void *sock, struct sync_progress *sp)
{
    for (int i = 0; i < 64 && s->state != KITH__SS_CLOSED; i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return;
        }
        if (zmq_msg_more(&m)) {
            /* one frame per message: swallow the rest and refuse */
            zmq_msg_t rest;
            int more = 1;
            while (more) {
                zmq_msg_init(&rest);
                if (zmq_msg_recv(&rest, sock, ZMQ_DONTWAIT) < 0)
                    more = 0;
                else
                    more = zmq_msg_more(&rest);
                zmq_msg_close(&rest);
            }
            kith__session_close(s, KITH_EMALFORMED, true, false, "multi-part message");
        } else {
            (void)kith__session_input(s, zmq_msg_data(&m), zmq_msg_size(&m));
        }
        zmq_msg_close(&m);
        if (sync_report(sp, s) < 0)
            return;
    }
}

KITH_API int
kith_sync(kith_replica *r, const char *endpoint, const uint8_t *peer_pk, int timeout_ms,
          kith_sync_info *info)
{
    struct kith__peerstate peer;
    struct kith__session s;
    struct kith__log log;
    uint8_t pk[KITH_PUBKEY_BYTES], pub[32], sec[32], srv[32];
    char mon_ep[64];
    void *zctx, *sock = NULL, *mon = NULL;
    kith_vv mine = {0, NULL};
    struct kith__progress pg;
    struct sync_progress sp;
    int rc;

    memset(&s, 0, sizeof(s));
    memset(&peer, 0, sizeof(peer));
    if (info)
        memset(info, 0, sizeof(*info));
    if (!r || !endpoint || strlen(endpoint) >= 256)
        return KITH_EINVAL;
    if (timeout_ms <= 0)
        timeout_ms = KITH__NET_TIMEOUT_MS;
    /* a library call stays quiet: its result and the peer record say what happened */
    kith__log_init(&log, KITH_LOG_ERROR, false);
    log.level = 0;
    if (peer_pk)
        memcpy(pk, peer_pk, sizeof(pk));
    else if ((rc = key_for_endpoint(r, endpoint, pk)) < 0)
        return kith__fail(r, rc, "%s: no trusted peer has this address", endpoint);
    if (!kith_is_trusted(r, pk))
        return kith__fail(r, KITH_EUNTRUSTED, "%s: the peer's key is not trusted here", endpoint);
    memset(&peer, 0, sizeof(peer));
    kith__progress_init(&pg, r, KITH_PROGRESS_SYNC);
    memset(&sp, 0, sizeof(sp));
    sp.pg = kith__progress_live(&pg);
    sp.r = r;
    sp.peer = &peer;
    peer.id = kith_id_from_pubkey(pk);
    memcpy(peer.pk, pk, sizeof(pk));
    kith__peerstate_load(&peer, r);
    if ((rc = kith_curve_keys(r, pub, sec)) < 0 || (rc = kith_curve_public(pk, srv)) < 0)
        goto out_wipe;

    zctx = zmq_ctx_new();
    if (!zctx) {
        rc = -ENOMEM;
        goto out_wipe;
    }
    snprintf(mon_ep, sizeof(mon_ep), "inproc://kith-sync-mon-%p", (void *)&s);
    rc = kith__client_socket(zctx, pub, sec, srv, endpoint, mon_ep, &sock);
    if (rc < 0)
        goto out_term;
    mon = zmq_socket(zctx, ZMQ_PAIR);
    if (mon && zmq_connect(mon, mon_ep) != 0) {
        zmq_close(mon);
        mon = NULL;
    }
    rc = kith__session_start_client(&s, r, &log, &peer, dealer_send, sock);
    if (rc < 0)
        goto out_close;

    for (;;) {
        zmq_pollitem_t items[2] = {{sock, 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}};
        int64_t left;
        if (sync_report(&sp, &s) < 0) {
            /* between frames: every batch applied is whole; BYE lets the peer stop at once */
            rc = KITH_ECANCELED;
            kith__session_close(&s, rc, false, s.state == KITH__SS_OPEN, "%s", kith_strerror(rc));
            break;
        }
        left = s.last_rx_ms + timeout_ms - kith__mono_ms();
        if (left <= 0) {
            rc = KITH_ETIMEDOUT;
            kith__session_close(&s, rc, false, false, "no answer from %s in %d ms", endpoint,
                                timeout_ms);
            break;
        }
        int n = zmq_poll(items, mon ? 2 : 1, left < 100 ? (long)left : 100);
        if (n < 0 && errno != EINTR) {
            rc = -errno;
            kith__session_close(&s, rc, false, false, "poll failed");
            break;
        }
        if (mon && (items[1].revents & ZMQ_POLLIN)) {
            int ev = monitor_event(mon);
            if (ev < 0) {
                rc = ev;
                kith__session_close(
                    &s, rc, false, false, "%s refused the connection (%s)", endpoint,
                    ev == KITH_EUNTRUSTED ? "our key is not trusted there" : "handshake failed");
                break;
            }
        }
        if (items[0].revents & ZMQ_POLLIN)
            drain(&s, sock, &sp);
        if (s.state != KITH__SS_CLOSED)
            (void)kith__session_pump(&s);
        /* keep the session alive on the server while we wait (it may be busy elsewhere) */
        if (s.state == KITH__SS_OPEN && kith__mono_ms() - s.last_rx_ms > KITH__PING_MS &&
            kith__mono_ms() - s.last_tx_ms > KITH__PING_MS)
            (void)kith__session_ping(&s);
        kith__session_tick(&s);
        if (s.state == KITH__SS_CLOSED) {
            rc = s.error ? s.error : KITH_ECLOSED;
            break;
        }
        if (kith__session_finished(&s)) {
            if (sp.pg != NULL &&
                kith__progress_end(sp.pg, s.stats.ops_sent + s.stats.ops_received) < 0)
                continue; /* cancelled at the end: the next turn closes as a cancel */
            kith__session_close(&s, 0, false, true, "sync complete");
            rc = 0;
            break;
        }
    }
    if (info) {
        *info = s.stats;
        info->peer_id = peer.id;
        if (rc == 0 && kith_vv_get(r, &mine) == 0) {
            /* equal vectors do not make equal states while the two hold different histories
             * of an origin (a fork, NET-25) */
            info->converged = kith__netvv_equal(&mine, &peer.known) && !s.diverged;
            kith_vv_free(&mine);
        }
    }
out_close:
    if (mon)
        zmq_close(mon);
    zmq_close(sock);
out_term:
    zmq_ctx_term(zctx);
out_wipe:
    if (rc < 0 && peer.id && s.state != KITH__SS_CLOSED &&
        kith_peer_record(r, peer.id, NULL, peer.acked_cursor, kith_strerror(rc)) < 0)
        kith__log(&log, KITH_LOG_DEBUG, "could not record the failure");
    sodium_memzero(sec, sizeof(sec));
    kith__peerstate_clear(&peer);
    if (rc < 0)
        (void)kith__fail(r, rc, "%s: %s", endpoint, s.why[0] ? s.why : kith_strerror(rc));
    return rc;
}
