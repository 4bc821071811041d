/*
 * session.c — the sync session state machine (spec/protocol.md "Session"), independent of
 * sockets: frames come in through kith__session_input, go out through the send function the
 * owner gave. kith_sync drives one client session; the daemon drives a client session per
 * outgoing link and a server session per peer on its ROUTER.
 *
 * After HELLO/WELCOME both sides stream at once: each sends, in its apply order, the commits
 * the other lacks (kith_batch_create with since = what the peer is known to hold, and the
 * peer's cursor), at most KITH__WIRE_WINDOW batches unacknowledged. The receiver applies a
 * batch (one LMDB transaction) and only then acknowledges it with its new version vector, so
 * an acknowledged batch is durable. What the peer holds is learnt from its HELLO, from the
 * sender vector on each of its batches, from its ACKs and DONEs; a batch never carries what
 * the peer is known to hold, so nothing is sent twice in the normal case, and a duplicate
 * (a resumed session, a replay) is harmless because apply is idempotent.
 *
 * Several sessions may reach one peer (both sides dialled each other; the CLI beside the
 * daemon): they share one kith__peerstate, and only one of them, the streamer, sends to that
 * peer at a time, so two sessions never carry the same ops.
 *
 * The handshake refuses a peer only for who it is (its key, its trust) and for the protocol
 * version it speaks, never for its schema: ops carry their names and typed values, so
 * replicas whose apps declared different schemas (one app version ahead of another) sync all
 * the same. Each side tells its schema's version and digest and records the other's in the
 * peer record, where `kith peers` shows it.
 *
 * In protocol 3 the handshake also carries, per origin in the vector, the chain hash at that
 * seq, and the sender's wall clock. Each side compares the peer's heads with its own log, so
 * that two replicas holding different histories of one origin at the same seqs find the fork
 * the first time they meet (store/forks.c records it; batches then leave that origin's ops
 * beyond the fork out), and records how far the peer's clock is from its own. Protocol 4
 * adds each side's group and the digest of its group records: two members of one group whose
 * records differ send theirs in their first batch (NET-29). An older peer speaks protocol 3
 * (kith 0.3.0) or 2 (kith 0.2): a server answers in the version the HELLO spoke; a client
 * whose HELLO is refused for its version says HELLO again one protocol lower (NET-7).
 */
#include "fault.h"
#include "net.h"
#include "store.h" /* kith__peer_record_schema, kith__batch_*, kith__group_*, kith__invite_* */

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_EVERY_MS 1000

static void record_now_and_then(struct kith__session *s);

int
kith__session_send(struct kith__session *s, const struct kith__msg *m)
{
    msgpack_sbuffer sb;
    size_t len;
    void *data;
    int rc;

    msgpack_sbuffer_init(&sb);
    rc = kith__wire_encode(m, &sb);
    if (rc < 0) {
        msgpack_sbuffer_destroy(&sb);
        return rc;
    }
    len = sb.size;
    data = msgpack_sbuffer_release(&sb);
    rc = s->send(s->send_ctx, data, len);
    if (rc == 0)
        s->last_tx_ms = kith__mono_ms();
    return rc;
}

static uint32_t
proto_max(const struct kith__session *s)
{
    return s->proto_max ? s->proto_max : KITH__WIRE_PROTO;
}

/* A message carrying this replica's current vector. */
static int
send_with_vv(struct kith__session *s, struct kith__msg *m)
{
    kith_vv mine = {0, NULL};
    int rc = kith_vv_get(s->r, &mine);
    if (rc < 0)
        return rc;
    m->vv = mine;
    rc = kith__session_send(s, m);
    kith_vv_free(&mine);
    return rc;
}

/* This replica's group id and the digest of its group records (zeros when in none), for
 * a handshake of protocol 4. */
static int
group_summary(struct kith__session *s, uint8_t gid[KITH__WIRE_GROUP_BYTES],
              uint8_t digest[KITH_HASH_BYTES])
{
    MDB_txn *txn;
    int rc = kith__mdb_begin(s->r, MDB_RDONLY, &txn);

    if (rc < 0)
        return rc;
    rc = kith__group_summary(s->r, txn, gid, digest);
    mdb_txn_abort(txn);
    kith__mdb_end(s->r);
    return rc < 0 ? rc : 0;
}

/* HELLO or WELCOME in the session's protocol: protocol 3 adds each vector entry's chain
 * head, read with the vector in one transaction, and this replica's clock; protocol 4 its
 * group and the digest of its group records. */
static int
send_hello(struct kith__session *s, int type)
{
    struct kith__msg m;
    uint8_t pk[KITH_PUBKEY_BYTES], digest[KITH_HASH_BYTES], *heads = NULL;
    int rc;

    memset(&m, 0, sizeof(m));
    kith_replica_pubkey(s->r, pk);
    if ((rc = kith_schema_info(s->r, &m.schema_version, digest)) < 0)
        return rc;
    m.type = type;
    m.proto = s->proto;
    m.id = kith_replica_id(s->r);
    m.pk = pk;
    m.schema_digest = digest;
    if (s->proto < 3)
        return send_with_vv(s, &m);
    if (s->proto >= 4) {
        if ((rc = group_summary(s, s->group, s->gdigest)) < 0)
            return rc;
        m.group = s->group;
        m.gdigest = s->gdigest;
    }
    if ((rc = kith__heads_read(s->r, &m.vv, &heads)) < 0)
        return rc;
    m.heads = heads;
    m.clock_ms = (uint64_t)kith__replica_now_ms(s->r);
    s->hello_mono_ms = kith__mono_ms();
    s->hello_wall_ms = (int64_t)m.clock_ms;
    rc = kith__session_send(s, &m);
    kith_vv_free(&m.vv);
    free(heads);
    return rc;
}

void
kith__peerstate_load(struct kith__peerstate *p, kith_replica *r)
{
    kith_peer *peers = NULL;
    size_t n = 0;

    p->loaded = true;
    if (kith_peers_get(r, &peers, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (peers[i].id != p->id)
            continue;
        snprintf(p->name, sizeof p->name, "%s", peers[i].name);
        if (kith__netvv_set(&p->known, &peers[i].acked) == 0) {
            p->acked_cursor = peers[i].cursor;
            p->send_cursor = peers[i].cursor;
        }
        break;
    }
    kith_peers_free(peers, n);
}

void
kith__peerstate_clear(struct kith__peerstate *p)
{
    kith__netvv_clear(&p->known);
    memset(p, 0, sizeof(*p));
}

void
kith__session_record(struct kith__session *s, const char *error)
{
    struct kith__peerstate *p = s->peer;
    int rc;

    if (!p)
        return;
    p->last_record_ms = kith__mono_ms();
    p->dirty = false;
    if (s->state == KITH__SS_CLOSED && s->error == KITH_ECANCELED)
        rc = kith__peer_record_cancelled(s->r, p->id, &p->known, p->acked_cursor, error);
    else
        rc = kith_peer_record_ex(s->r, p->id, &p->known, p->acked_cursor, error, p->failing_after);
    if (rc < 0)
        kith__log(s->log, KITH_LOG_DEBUG, "peer %016llx: recording the sync failed: %s",
                  (unsigned long long)p->id, kith_strerror(rc));
}

void
kith__session_close(struct kith__session *s, int code, bool refuse, bool bye, const char *fmt, ...)
{
    struct kith__msg m;
    va_list ap;

    if (s->state == KITH__SS_CLOSED)
        return;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
    memset(&m, 0, sizeof(m));
    if (refuse) {
        m.type = KITH__MSG_REFUSE;
        m.code = code;
        m.reason = s->why;
        m.reason_len = strlen(s->why);
        (void)kith__session_send(s, &m);
    }
    if (bye) {
        m.type = KITH__MSG_BYE;
        (void)kith__session_send(s, &m);
    }
    if (s->peer && s->peer->streamer == s) {
        s->peer->streamer = NULL;
        s->peer->send_cursor = s->peer->acked_cursor; /* unacked batches are not held */
    }
    int was = s->state;
    s->state = KITH__SS_CLOSED;
    s->error = code;
    if (s->peer && was == KITH__SS_OPEN)
        kith__session_record(s, code ? s->why : NULL);
    else if (s->peer && code)
        kith__session_record(s, s->why);
    char who[96];
    int64_t took = s->opened_ms ? kith__mono_ms() - s->opened_ms : 0;
    kith__log(s->log, code ? KITH_LOG_WARNING : KITH_LOG_INFO,
              "session with %s closed after %lld ms: %s%s%s; %llu ops sent, %llu received",
              kith__session_peer_name(s, who, sizeof who), (long long)took,
              s->why[0] ? s->why : "done", code ? " — " : "", code ? kith_errname(code) : "",
              (unsigned long long)s->stats.ops_sent, (unsigned long long)s->stats.ops_received);
}

const char *
kith__session_peer_name(const struct kith__session *s, char *buf, size_t cap)
{
    if (s->peer == NULL)
        snprintf(buf, cap, "an unknown peer");
    else if (s->peer->name[0])
        snprintf(buf, cap, "%s (%016llx)", s->peer->name, (unsigned long long)s->peer->id);
    else
        snprintf(buf, cap, "%016llx", (unsigned long long)s->peer->id);
    return buf;
}

/* The peer said what it holds at the start of a session. */
static int
peer_open(struct kith__session *s, const kith_vv *vv)
{
    struct kith__peerstate *p = s->peer;
    /* The opening counts as a record written (NET-11): the first ACKs and batches of a stream
     * are written a second later or at the close, not at once, where their durable write would
     * stall the receiver's next apply and the sender's next batch. */
    p->last_record_ms = kith__mono_ms();
    if (p->streamer)
        return kith__netvv_merge(&p->known, vv);
    if (kith__netvv_ahead(&p->known, vv)) {
        /* It lost ops it had acknowledged (restored from a backup?), or this HELLO left
         * before it applied what another session gave it: either way start the scan over;
         * the vector keeps what it already holds from being sent. */
        p->acked_cursor = 0;
        kith__log(s->log, KITH_LOG_DEBUG,
                  "peer %016llx holds less than it acknowledged; "
                  "resending from the start",
                  (unsigned long long)p->id);
    }
    p->send_cursor = p->acked_cursor;
    return kith__netvv_set(&p->known, vv);
}

int
kith__session_start_client(struct kith__session *s, kith_replica *r, const struct kith__log *log,
                           struct kith__peerstate *peer, kith__send_fn send, void *send_ctx)
{
    int rc;

    memset(s, 0, sizeof(*s));
    s->r = r;
    s->log = log;
    s->client = true;
    s->peer = peer;
    s->send = send;
    s->send_ctx = send_ctx;
    s->stats.peer_id = peer->id;
    s->opened_ms = s->last_rx_ms = kith__mono_ms();
    s->state = KITH__SS_HELLO;
    s->proto = peer->proto_hint ? peer->proto_hint : proto_max(s);
    rc = send_hello(s, KITH__MSG_HELLO);
    if (rc < 0)
        kith__session_close(s, rc, false, false, "could not send HELLO: %s", kith_strerror(rc));
    return rc;
}

void
kith__session_init_server(struct kith__session *s, kith_replica *r, const struct kith__log *log,
                          kith__peer_fn find_peer, void *peer_ctx, kith__send_fn send,
                          void *send_ctx)
{
    memset(s, 0, sizeof(*s));
    s->r = r;
    s->log = log;
    s->find_peer = find_peer;
    s->peer_ctx = peer_ctx;
    s->send = send;
    s->send_ctx = send_ctx;
    s->opened_ms = s->last_rx_ms = kith__mono_ms();
    s->state = KITH__SS_NEW;
}

/*
 * The peer speaks protocol version `proto`, not this one: refuse it, telling each side which
 * one to upgrade. The REFUSE is worded for the peer, who reads it as "peer refused: …"; the
 * session's own reason (logs, kith_sync's error) for this side. Returns KITH_EVERSION.
 */
static int
refuse_version(struct kith__session *s, uint32_t proto)
{
    struct kith__msg m;
    char theirs[KITH__WIRE_MAX_REASON];
    bool older = proto < KITH__WIRE_PROTO_MIN;

    if (older)
        snprintf(theirs, sizeof theirs,
                 "your kith is older (protocol %u, here %u to %u): upgrade it", proto,
                 KITH__WIRE_PROTO_MIN, proto_max(s));
    else
        snprintf(theirs, sizeof theirs,
                 "the refusing kith is older (protocol %u, yours %u): upgrade it", proto_max(s),
                 proto);
    memset(&m, 0, sizeof(m));
    m.type = KITH__MSG_REFUSE;
    m.code = KITH_EVERSION;
    m.reason = theirs;
    m.reason_len = strlen(theirs);
    (void)kith__session_send(s, &m);
    if (older)
        kith__session_close(s, KITH_EVERSION, false, false,
                            "peer runs an older kith (protocol %u): upgrade it", proto);
    else
        kith__session_close(s, KITH_EVERSION, false, false,
                            "peer runs a newer kith (protocol %u, here %u): upgrade this one",
                            proto, proto_max(s));
    return KITH_EVERSION;
}

/* HELLO or WELCOME: the checks both ends make of the other (spec "Handshake"). The schema
 * is not one of them: it is recorded once the handshake is done (note_schema). */
static int
check_hello(struct kith__session *s, const struct kith__msg *m)
{
    uint8_t x[32];

    if (m->proto < KITH__WIRE_PROTO_MIN || m->proto > proto_max(s))
        return refuse_version(s, m->proto); /* nothing else of the message was decoded */
    if (s->client && m->proto != s->proto) {
        kith__session_close(s, KITH_EPROTO, true, false,
                            "WELCOME of protocol %u to a HELLO of protocol %u", m->proto, s->proto);
        return KITH_EPROTO;
    }
    if (kith_id_from_pubkey(m->pk) != m->id) {
        kith__session_close(s, KITH_EPROTO, true, false, "replica id does not match its key");
        return KITH_EPROTO;
    }
    if (s->client) {
        if (sodium_memcmp(m->pk, s->peer->pk, KITH_PUBKEY_BYTES) != 0) {
            kith__session_close(s, KITH_EPROTO, true, false,
                                "WELCOME names another key than the one we connected to");
            return KITH_EPROTO;
        }
        return 0;
    }
    if (!s->has_zap_curve || kith_curve_public(m->pk, x) < 0 ||
        sodium_memcmp(x, s->zap_curve, 32) != 0) {
        kith__session_close(s, KITH_EUNTRUSTED, true, false,
                            "HELLO key is not the key this connection authenticated with");
        return KITH_EUNTRUSTED;
    }
    if (!kith__peer_admitted(s->r, m->pk)) {
        kith__session_close(s, KITH_EUNTRUSTED, true, false,
                            "replica %016llx is neither trusted nor a member of this group",
                            (unsigned long long)m->id);
        return KITH_EUNTRUSTED;
    }
    return 0;
}

/*
 * Keep what the peer said of its schema in its record (NET-7), where `kith peers` shows it,
 * and log it when it changed: two schemas sync all the same, and knowing which app version a
 * device runs explains why a field it writes is not declared here. A record that cannot be
 * written costs only its freshness, never the session.
 */
static void
note_schema(struct kith__session *s, const struct kith__msg *m)
{
    uint8_t mine[KITH_HASH_BYTES];
    uint64_t mine_v;
    char who[96], a[17], b[17];
    int rc;

    rc = kith__peer_record_schema(s->r, s->peer->id, m->schema_version, m->schema_digest);
    if (rc < 0)
        kith__log(s->log, KITH_LOG_DEBUG, "peer %016llx: recording its schema failed: %s",
                  (unsigned long long)s->peer->id, kith_strerror(rc));
    if (rc <= 0 || kith_schema_info(s->r, &mine_v, mine) < 0)
        return; /* not recorded, or as its last handshake said */
    kith__hex(m->schema_digest, 8, a);
    kith__hex(mine, 8, b);
    kith__log(s->log, KITH_LOG_INFO, "peer %s has schema version %llu (%s…), here %llu (%s…)",
              kith__session_peer_name(s, who, sizeof who), (unsigned long long)m->schema_version, a,
              (unsigned long long)mine_v, b);
}

/*
 * Protocol 3: compare the peer's chain heads with this replica's log (NET-25). A fork found
 * is recorded (once per origin, store/forks.c) and logged as a warning, once: an origin that
 * is known forked is not found again. It does not end the session: the other origins sync,
 * and batches leave the forked origin's ops beyond the fork out. A check that cannot run
 * (a full disk) is logged and the session goes on; the peer makes the same check.
 */
static void
note_forks(struct kith__session *s, const struct kith__msg *m)
{
    kith_fork *found = NULL;
    size_t n = 0;
    char who[96], ours[17], theirs[17];
    int rc = kith__heads_check(s->r, s->peer->id, &m->vv, m->heads, &found, &n);

    if (rc < 0) {
        kith__log(s->log, KITH_LOG_WARNING, "peer %s: could not compare chain heads: %s (%s)",
                  kith__session_peer_name(s, who, sizeof who), kith_strerror(rc),
                  kith_errmsg(s->r));
        return;
    }
    s->diverged |= rc > 0;
    for (size_t i = 0; i < n; i++) {
        const kith_fork *f = &found[i];
        bool ends = false;
        for (size_t j = 0; j < KITH_HASH_BYTES; j++)
            ends |= f->ours[j] != 0;
        kith__hex(f->ours, 8, ours);
        kith__hex(f->theirs, 8, theirs);
        kith__log(s->log, KITH_LOG_WARNING,
                  "origin %016llx has forked: at seq %llu peer %s holds chain head %s… where "
                  "this replica holds %s%s; its ops beyond seq %llu are neither taken nor sent "
                  "until the fork is resolved",
                  (unsigned long long)f->origin, (unsigned long long)f->seq,
                  kith__session_peer_name(s, who, sizeof who), theirs,
                  ends ? ours : "no commit end", ends ? "…" : "", (unsigned long long)f->seq);
    }
    s->stats.forks += n;
    free(found);
}

/*
 * RESTORE-1: the peer's vector (any protocol) holds more of our own origin than we do: this
 * replica was restored from a copy, or lost commits. Mark it (writes are refused until the ops
 * are back), say so once, and report it in the session's stats; the peer's batches then bring
 * our own ops like any origin's, since they are ops our vector lacks.
 */
static void
note_restored(struct kith__session *s, const kith_vv *vv)
{
    uint64_t seq = 0;
    char who[96];
    int rc;

    for (size_t i = 0; i < vv->len; i++)
        if (vv->entries[i].origin == s->r->id)
            seq = vv->entries[i].seq;
    if (seq == 0)
        return;
    rc = kith__restored_note(s->r, s->peer->id, seq);
    if (rc < 0) {
        kith__log(
            s->log, KITH_LOG_WARNING, "peer %s: could not mark this replica restored: %s (%s)",
            kith__session_peer_name(s, who, sizeof who), kith_strerror(rc), kith_errmsg(s->r));
        return;
    }
    if (rc == 0)
        return;            /* not beyond what we hold */
    s->restored_seq = seq; /* checked again when the peer says DONE */
    s->stats.restored_seq = seq;
    if (rc == 2)
        return; /* marked already: said so then */
    kith__log(s->log, KITH_LOG_WARNING,
              "this replica was restored from a copy: peer %s holds its own ops up to seq %llu, "
              "beyond what it holds; it takes them back before it writes again (local writes "
              "fail with KITH_ERESTORED until then)",
              kith__session_peer_name(s, who, sizeof who), (unsigned long long)seq);
}

/*
 * RESTORE-4: the peer said DONE (it has sent every op of ours it will send) and still holds
 * more of our own origin than we do. A peer sends an origin's ops a receiver lacks unless
 * that origin forked at the peer (FORK-3): our history differs from the one it holds, which a
 * write made here after the restore causes. Record it as a fork of our own origin, at our
 * `have`, seen from that peer; the other history's head there is not known here (zeros).
 */
static void
note_restored_done(struct kith__session *s)
{
    uint64_t peer_seq = kith__vv_get(&s->peer->known, s->r->id), have = 0;
    char who[96];
    int rc;

    if (s->restored_seq == 0 || peer_seq == 0)
        return;
    rc = kith__restored_fork(s->r, s->peer->id, peer_seq, &have);
    if (rc <= 0) {
        if (rc < 0)
            kith__log(s->log, KITH_LOG_WARNING, "peer %s: could not record a fork: %s (%s)",
                      kith__session_peer_name(s, who, sizeof who), kith_strerror(rc),
                      kith_errmsg(s->r));
        return;
    }
    s->diverged = true;
    s->stats.forks++;
    kith__log(s->log, KITH_LOG_WARNING,
              "this replica's own origin has forked: peer %s holds it up to seq %llu but sent "
              "none of it beyond seq %llu, where this replica's history differs from the peer's "
              "(a write made here after the restore); its ops beyond seq %llu are neither taken "
              "nor sent until the fork is resolved",
              kith__session_peer_name(s, who, sizeof who), (unsigned long long)peer_seq,
              (unsigned long long)have, (unsigned long long)have);
}

/*
 * Protocol 3: keep how far the peer's clock is from ours (its minus ours) in its record, and
 * warn when it first goes beyond KITH_CLOCK_TOLERANCE_MS. `offset_ms` is raw on the server
 * (one network delay too large, well under a millisecond on a LAN) and corrected by half the
 * round trip on the client.
 */
static void
note_clock(struct kith__session *s, int64_t offset_ms)
{
    char who[96], span[32];
    int rc = kith__peer_record_clock(s->r, s->peer->id, offset_ms, kith__now_ms());

    if (rc < 0) {
        kith__log(s->log, KITH_LOG_DEBUG, "peer %016llx: recording its clock failed: %s",
                  (unsigned long long)s->peer->id, kith_strerror(rc));
        return;
    }
    if (rc == 0)
        return;
    kith_duration_format(offset_ms < 0 ? -offset_ms : offset_ms, span);
    kith__log(s->log, KITH_LOG_WARNING,
              "peer %s: its clock is %s %s of this one's, more than the tolerance of %d s: one of "
              "the two is wrong (kith status compares this clock with every peer's)",
              kith__session_peer_name(s, who, sizeof who), span, offset_ms < 0 ? "behind" : "ahead",
              KITH_CLOCK_TOLERANCE_MS / 1000);
}

/*
 * Protocol 4: keep the peer's group and record digest (NET-29). Two replicas of one group
 * whose digests differ each owe the other their records: the first batch each sends carries
 * them, and one is sent even when it has no ops. Replicas of different groups sync as any
 * two replicas do (pairwise trust); their records are not exchanged.
 */
static int
found_one(void *ctx, const uint8_t *p, size_t len)
{
    (void)ctx;
    (void)p;
    (void)len;
    return KITH_EEXIST; /* one is enough: stop */
}

/* Does this replica hold a fork proof? (false when it cannot tell) */
static bool
holds_proofs(kith_replica *r)
{
    MDB_txn *txn;
    int rc;

    if (kith__mdb_begin(r, MDB_RDONLY, &txn) < 0)
        return false;
    rc = kith__proof_collect(r, txn, found_one, NULL);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    return rc == KITH_EEXIST;
}

static void
note_group(struct kith__session *s, const struct kith__msg *m)
{
    static const uint8_t none[KITH__WIRE_GROUP_BYTES];

    if (m->proto < 4)
        return;
    /* the fork proofs held travel in the first batch of every session (FORK-9) */
    s->proofs_due = holds_proofs(s->r);
    memcpy(s->peer_group, m->group, KITH__WIRE_GROUP_BYTES);
    memcpy(s->peer_gdigest, m->gdigest, KITH_HASH_BYTES);
    s->records_due = memcmp(s->group, none, sizeof none) != 0 &&
                     memcmp(s->group, s->peer_group, sizeof none) == 0 &&
                     memcmp(s->gdigest, s->peer_gdigest, KITH_HASH_BYTES) != 0;
    if (s->records_due)
        kith__log(s->log, KITH_LOG_DEBUG, "peer %016llx: group records differ; sending ours",
                  (unsigned long long)m->id);
}

static int
on_hello(struct kith__session *s, const struct kith__msg *m)
{
    int rc;

    if (s->client || s->state != KITH__SS_NEW) {
        kith__session_close(s, KITH_EPROTO, true, false, "HELLO in the middle of a session");
        return KITH_EPROTO;
    }
    if ((rc = check_hello(s, m)) < 0)
        return rc;
    s->peer = s->find_peer(s->peer_ctx, m->id, m->pk);
    if (!s->peer) {
        kith__session_close(s, KITH_EBUSY, true, false, "too many peers");
        return KITH_EBUSY;
    }
    /* The same replica connects again while an older session of it holds the stream and has
     * been silent: that one is most likely dead (killed, cut off), and would block this one
     * until it times out. */
    struct kith__session *old = s->peer->streamer;
    if (old && old != s && kith__mono_ms() - old->last_rx_ms > KITH__SUPERSEDE_MS)
        kith__session_close(old, KITH_ETIMEDOUT, true, false,
                            "superseded by a new session from the same replica");
    s->stats.peer_id = m->id;
    s->proto = m->proto; /* answered in the version it spoke */
    s->stats.proto = s->proto;
    if (s->proto == KITH__WIRE_PROTO)
        s->peer->proto_hint = 0; /* it speaks the newest now, whatever it did before */
    else if (s->peer->proto_hint && s->proto > s->peer->proto_hint)
        s->peer->proto_hint = s->proto; /* upgraded, not to the newest: dial it in this one */
    note_schema(s, m); /* before WELCOME: once the client is in, the record says who it is */
    note_restored(s, &m->vv);
    if (s->proto >= 3) {
        note_forks(s, m);
        note_clock(s, (int64_t)m->clock_ms - kith__replica_now_ms(s->r));
    }
    if ((rc = peer_open(s, &m->vv)) < 0 || (rc = send_hello(s, KITH__MSG_WELCOME)) < 0) {
        kith__session_close(s, rc, false, false, "could not answer HELLO: %s", kith_strerror(rc));
        return rc;
    }
    note_group(s, m); /* after WELCOME: that is where our own group was read */
    s->state = KITH__SS_OPEN;
    s->want = true;
    char who[96];
    kith__log(s->log, KITH_LOG_INFO, "peer %s connected",
              kith__session_peer_name(s, who, sizeof who));
    return 0;
}

static int
on_welcome(struct kith__session *s, const struct kith__msg *m)
{
    int rc;

    if (!s->client || s->state != KITH__SS_HELLO) {
        kith__session_close(s, KITH_EPROTO, true, false, "unexpected WELCOME");
        return KITH_EPROTO;
    }
    if ((rc = check_hello(s, m)) < 0)
        return rc;
    if ((rc = peer_open(s, &m->vv)) < 0) {
        kith__session_close(s, rc, false, false, "out of memory");
        return rc;
    }
    s->stats.proto = s->proto;
    note_schema(s, m);
    note_restored(s, &m->vv);
    if (s->proto >= 3) {
        /* its clock was read about half a round trip after ours */
        int64_t rtt = kith__mono_ms() - s->hello_mono_ms;
        note_forks(s, m);
        note_clock(s, (int64_t)m->clock_ms - (s->hello_wall_ms + rtt / 2));
    }
    note_group(s, m);
    s->state = KITH__SS_OPEN;
    s->want = true;
    kith__log(s->log, KITH_LOG_DEBUG, "session with %016llx open", (unsigned long long)m->id);
    return 0;
}

/* A batch found forks: name each (recorded since `since_ms`) in a warning, once. */
static void
log_batch_forks(struct kith__session *s, uint64_t seq, int64_t since_ms)
{
    kith_fork *f = NULL;
    size_t n = 0;
    char who[96];

    if (kith_forks_get(s->r, &f, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++)
        if (f[i].recorded_ms >= since_ms && f[i].source == KITH_FORK_BATCH &&
            f[i].seen_from == s->peer->id)
            kith__log(s->log, KITH_LOG_WARNING,
                      "origin %016llx has forked: batch %llu from peer %s carries its signed "
                      "history that differs from this replica's at seq %llu; that origin's run "
                      "was set aside, the others applied",
                      (unsigned long long)f[i].origin, (unsigned long long)seq,
                      kith__session_peer_name(s, who, sizeof who), (unsigned long long)f[i].seq);
    kith_forks_free(f, n);
}

static int
on_batch(struct kith__session *s, const struct kith__msg *m)
{
    kith_apply_info info;
    struct kith__msg ack;
    int rc;

    if (m->seq != s->recv_seq + 1) {
        kith__session_close(s, KITH_EPROTO, true, false, "batch %llu out of order (expected %llu)",
                            (unsigned long long)m->seq, (unsigned long long)s->recv_seq + 1);
        return KITH_EPROTO;
    }
    memset(&info, 0, sizeof(info));
    int64_t since_ms = kith__now_ms();
    uint64_t id_before = kith_replica_id(s->r);
    rc = kith__batch_apply(s->r, m->data, m->len, &info, NULL); /* no progress: D-11 */
    if (rc < 0) {
        kith__session_close(s, rc, true, false, "batch %llu refused: %s (%s)",
                            (unsigned long long)m->seq, kith_strerror(rc), kith_errmsg(s->r));
        return rc;
    }
    if (kith_replica_id(s->r) != id_before) {
        /* the batch proved our own key lost a fork and we took a new one (FORK-11): our next
         * batch carries the group's records, so the peer admits the new key that sends it */
        s->records_due = true;
        kith__log(s->log, KITH_LOG_WARNING, "re-keyed: %016llx -> %016llx (own key lost a fork)",
                  (unsigned long long)id_before, (unsigned long long)kith_replica_id(s->r));
    }
    s->recv_seq = m->seq;
    s->peer_done = false;
    s->stats.batches_received++;
    s->stats.ops_received += info.ops_new + info.ops_known;
    if (info.ops_new || info.ops_applied)
        s->applied = true;
    if (info.forks > 0) {
        s->diverged = true;
        s->stats.forks += info.forks;
        log_batch_forks(s, m->seq, since_ms);
    }
    if ((rc = kith__netvv_merge(&s->peer->known, &m->vv)) < 0)
        goto out_fail;
    memset(&ack, 0, sizeof(ack));
    ack.type = KITH__MSG_ACK;
    ack.seq = m->seq;
    if ((rc = send_with_vv(s, &ack)) < 0)
        goto out_fail;
    record_now_and_then(s);
    kith__log(s->log, KITH_LOG_DEBUG, "peer %016llx: batch %llu applied, %llu new ops",
              (unsigned long long)s->peer->id, (unsigned long long)m->seq,
              (unsigned long long)info.ops_new);
    if (info.ops_pending > 0 && info.ops_new > 0)
        kith__log_holds(s->log, s->r, s->peer->id);
    return 0;
out_fail:
    kith__session_close(s, rc, false, false, "could not acknowledge: %s", kith_strerror(rc));
    return rc;
}

void
kith__log_holds(const struct kith__log *log, kith_replica *r, uint64_t peer)
{
    kith_hold *h = NULL;
    size_t n = 0;

    if (kith_holds_get(r, &h, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        char span[32];

        kith_duration_format(h[i].ahead_ms, span);
        if (h[i].reason == KITH_HOLD_CLOCK)
            kith__log(log, KITH_LOG_WARNING,
                      "peer %016llx: %llu op%s of origin %016llx held: its clock is %s ahead "
                      "(they apply when the clock catches up)",
                      (unsigned long long)peer, (unsigned long long)h[i].ops,
                      h[i].ops == 1 ? "" : "s", (unsigned long long)h[i].origin, span);
        else if (h[i].reason == KITH_HOLD_DEPENDENCY)
            kith__log(log, KITH_LOG_INFO,
                      "peer %016llx: %llu op%s of origin %016llx held: waiting for op "
                      "%016llx:%llu",
                      (unsigned long long)peer, (unsigned long long)h[i].ops,
                      h[i].ops == 1 ? "" : "s", (unsigned long long)h[i].origin,
                      (unsigned long long)h[i].missing.origin,
                      (unsigned long long)h[i].missing.seq);
    }
    kith_holds_free(h, n);
}

/* Note that what the peer holds moved, and write the peer record if the last write is a
 * second old: what it holds shows in `kith peers` while a long session runs, at one small
 * write transaction a second. What is left over is written by kith__session_tick a second
 * later, or when the session closes. */
static void
record_now_and_then(struct kith__session *s)
{
    s->peer->dirty = true;
    if (kith__mono_ms() - s->peer->last_record_ms >= RECORD_EVERY_MS)
        kith__session_record(s, NULL);
}

void
kith__session_tick(struct kith__session *s)
{
    if (s->state == KITH__SS_OPEN && s->peer && s->peer->dirty &&
        kith__mono_ms() - s->peer->last_record_ms >= RECORD_EVERY_MS)
        kith__session_record(s, NULL);
}

static int
on_ack(struct kith__session *s, const struct kith__msg *m)
{
    struct kith__inflight *f;
    int rc;

    if (s->nwin == 0 || s->win[s->win_head].seq != m->seq) {
        kith__session_close(s, KITH_EPROTO, true, false, "ACK %llu for no batch in flight",
                            (unsigned long long)m->seq);
        return KITH_EPROTO;
    }
    f = &s->win[s->win_head];
    if (f->next_cursor > s->peer->acked_cursor)
        s->peer->acked_cursor = f->next_cursor;
    s->win_head = (s->win_head + 1) % KITH__WIRE_WINDOW;
    s->nwin--;
    if ((rc = kith__netvv_merge(&s->peer->known, &m->vv)) < 0) {
        kith__session_close(s, rc, false, false, "out of memory");
        return rc;
    }
    /* Not written at once even when the stream falls idle: that durable write would take the
     * writer lock and the disk from the next local commit, which is what a push waits for.
     * The record is only where the next session starts its scan; a lost one costs a resend. */
    record_now_and_then(s);
    return 0;
}

static int
on_done(struct kith__session *s, const struct kith__msg *m)
{
    kith_vv mine = {0, NULL};
    int rc;

    if ((rc = kith__netvv_merge(&s->peer->known, &m->vv)) < 0) {
        kith__session_close(s, rc, false, false, "out of memory");
        return rc;
    }
    s->peer_done = true;
    record_now_and_then(s);
    note_restored_done(s);
    /* A DONE is also a vector announcement: if it lacks something we hold, send it. */
    if (kith_vv_get(s->r, &mine) == 0) {
        if (kith__netvv_ahead(&mine, &s->peer->known))
            s->want = true;
        kith_vv_free(&mine);
    }
    return 0;
}

static int
session_input(struct kith__session *s, const void *frame, size_t len)
{
    struct kith__msg m;
    int rc;

    if (s->state == KITH__SS_CLOSED)
        return s->error ? s->error : KITH_EPROTO;
    s->last_rx_ms = kith__mono_ms();
    rc = kith__wire_decode(frame, len, &m);
    if (rc < 0) {
        kith__session_close(s, rc, true, false, "malformed frame of %zu bytes (%s)", len,
                            kith_strerror(rc));
        goto out_clear;
    }
    kith__log(s->log, KITH_LOG_DEBUG, "received %s (%zu bytes)", kith__wire_name(m.type), len);
    /* Before the handshake only HELLO / WELCOME / REFUSE mean anything, and JOIN. */
    if (s->state != KITH__SS_OPEN && m.type != KITH__MSG_HELLO && m.type != KITH__MSG_WELCOME &&
        m.type != KITH__MSG_REFUSE && m.type != KITH__MSG_JOIN) {
        rc = KITH_EPROTO;
        kith__session_close(s, rc, true, false, "%s before the handshake", kith__wire_name(m.type));
        goto out_clear;
    }
    switch (m.type) {
    case KITH__MSG_HELLO:
        rc = on_hello(s, &m);
        break;
    case KITH__MSG_WELCOME:
        rc = on_welcome(s, &m);
        break;
    case KITH__MSG_JOIN:
        rc = kith__session_join(s, &m); /* join.c */
        break;
    case KITH__MSG_BATCH:
        rc = on_batch(s, &m);
        break;
    case KITH__MSG_ACK:
        rc = on_ack(s, &m);
        break;
    case KITH__MSG_DONE:
        rc = on_done(s, &m);
        break;
    case KITH__MSG_PING: {
        struct kith__msg pong;
        memset(&pong, 0, sizeof(pong));
        pong.type = KITH__MSG_PONG;
        pong.nonce = m.nonce;
        rc = kith__session_send(s, &pong);
        if (rc < 0)
            kith__session_close(s, rc, false, false, "could not answer PING");
        break;
    }
    case KITH__MSG_PONG:
        rc = 0;
        break;
    case KITH__MSG_BYE:
        kith__session_close(s, 0, false, false, "peer said BYE");
        rc = 0;
        break;
    case KITH__MSG_REFUSE: {
        int code = m.code <= -9001 && m.code >= -9100 ? m.code : KITH_EPROTO;
        if (s->client && s->state == KITH__SS_HELLO && s->proto > KITH__WIRE_PROTO_MIN &&
            (code == KITH_EVERSION || code == KITH_ETOOBIG)) {
            /* An older kith refuses a HELLO of a newer protocol for its version (kith 0.2,
             * past its 64 KiB, for its size), and its session is then closed: the next frame
             * opens another. Say HELLO again one protocol lower, down to the oldest spoken
             * here; the refusal of that one is final (NET-7). */
            char who[96];
            uint32_t next = s->proto - 1;
            kith__log(s->log, KITH_LOG_INFO,
                      "peer %s refused protocol %u (%.*s): speaking protocol %u to it%s",
                      kith__session_peer_name(s, who, sizeof who), s->proto, (int)m.reason_len,
                      m.reason, next,
                      next < 3   ? ", without the fork check and clock of the handshake"
                      : next < 4 ? ", without the group of the handshake"
                                 : "");
            s->proto = next;
            s->peer->proto_hint = next;
            rc = send_hello(s, KITH__MSG_HELLO);
            if (rc < 0)
                kith__session_close(s, rc, false, false, "could not send HELLO: %s",
                                    kith_strerror(rc));
            break;
        }
        if (s->client && s->state == KITH__SS_HELLO && code == KITH_EMALFORMED) {
            /* Our HELLO is well formed; a kith of protocol 1 cannot read it (it has one
             * element more) and refuses it as malformed instead of by its version. */
            code = KITH_EVERSION;
            kith__session_close(s, code, false, false,
                                "peer could not read our HELLO (protocol %u): it likely runs "
                                "an older kith, upgrade it (it said: %.*s)",
                                s->proto, (int)m.reason_len, m.reason);
        } else {
            kith__session_close(s, code, false, false, "peer refused: %.*s", (int)m.reason_len,
                                m.reason);
        }
        rc = code;
        break;
    }
    default:
        rc = KITH_EPROTO;
        kith__session_close(s, rc, true, false, "unexpected %s", kith__wire_name(m.type));
    }
out_clear:
    kith__wire_clear(&m);
    return rc;
}

/* Every received frame passes the checker's fault table (fault.h), inert unless kith-check
 * enabled it in its daemon: the frame may be dropped, delivered twice, or held back and
 * delivered after the next one. */
int
kith__session_input(struct kith__session *s, const void *frame, size_t len)
{
    void *held;
    size_t held_len;
    int rc;

    switch (kith__fault_frame(s, frame, len)) {
    case KITH__FAULT_DROP:
    case KITH__FAULT_HOLD:
        return 0;
    case KITH__FAULT_DUP:
        (void)session_input(s, frame, len);
        break;
    case KITH__FAULT_PASS:
        break;
    }
    rc = session_input(s, frame, len);
    if (kith__fault_release(s, &held, &held_len)) {
        (void)session_input(s, held, held_len);
        free(held);
    }
    return rc;
}

int
kith__session_pump(struct kith__session *s)
{
    struct kith__peerstate *p = s->peer;
    int rc = 0;

    if (s->state != KITH__SS_OPEN)
        return 0;
    while (s->want && s->nwin < KITH__WIRE_WINDOW) {
        kith_batch_opts opts;
        kith_batch_info info;
        kith_buf buf = {NULL, 0};
        struct kith__msg m;
        /* in the format the peer reads; the first carries our group records when the peer's
         * differ (NET-29) */
        struct kith__build_opts xo = {KITH__BATCH_FORMAT_FOR_PROTO(s->proto), s->records_due,
                                      s->proofs_due};

        if (p->streamer && p->streamer != s)
            break; /* another session is sending to this peer; our turn comes after */
        p->streamer = s;
        memset(&opts, 0, sizeof(opts));
        memset(&info, 0, sizeof(info));
        opts.since = &p->known;
        opts.cursor = p->send_cursor;
        opts.max_ops = KITH__WIRE_BATCH_OPS;
        opts.max_bytes = KITH__WIRE_BATCH_BYTES;
        rc = kith__batch_create(s->r, &opts, &xo, &buf, &info, NULL);
        if (rc < 0) {
            kith__session_close(s, rc, true, false, "could not make a batch: %s (%s)",
                                kith_strerror(rc), kith_errmsg(s->r));
            return rc;
        }
        if (info.ops == 0 && !((s->records_due || s->proofs_due) && buf.len > 0)) {
            kith_free(buf.data);
            if (info.next_cursor > p->send_cursor)
                p->send_cursor = info.next_cursor;
            s->want = false;
            break;
        }
        if (buf.len > KITH__WIRE_MAX_FRAME - KITH__WIRE_MAX_CONTROL) {
            kith_free(buf.data);
            rc = KITH_ETOOBIG;
            kith__session_close(s, rc, true, false, "a batch of %zu bytes does not fit in a frame",
                                buf.len);
            return rc;
        }
        memset(&m, 0, sizeof(m));
        m.type = KITH__MSG_BATCH;
        m.seq = s->send_seq + 1;
        m.has_more = info.has_more;
        m.data = buf.data;
        m.len = buf.len;
        rc = send_with_vv(s, &m);
        kith_free(buf.data);
        if (rc < 0) {
            kith__session_close(s, rc, false, false, "could not send a batch: %s",
                                kith_strerror(rc));
            return rc;
        }
        s->send_seq++;
        s->records_due = s->proofs_due = false; /* sent: the peer's apply takes them */
        struct kith__inflight *f = &s->win[(s->win_head + s->nwin) % KITH__WIRE_WINDOW];
        f->seq = s->send_seq;
        f->next_cursor = info.next_cursor;
        f->ops = info.ops;
        s->nwin++;
        p->send_cursor = info.next_cursor;
        s->done_sent = false;
        s->stats.batches_sent++;
        s->stats.ops_sent += info.ops;
        kith__log(s->log, KITH_LOG_DEBUG, "peer %016llx: batch %llu sent, %llu ops%s",
                  (unsigned long long)p->id, (unsigned long long)s->send_seq,
                  (unsigned long long)info.ops, info.has_more ? ", more to come" : "");
        if (!info.has_more)
            s->want = false;
    }
    if (s->nwin == 0 && !s->want) {
        if (p->streamer == s)
            p->streamer = NULL;
        if (!s->done_sent) {
            struct kith__msg m;
            memset(&m, 0, sizeof(m));
            m.type = KITH__MSG_DONE;
            rc = send_with_vv(s, &m);
            if (rc < 0) {
                kith__session_close(s, rc, false, false, "could not send DONE: %s",
                                    kith_strerror(rc));
                return rc;
            }
            s->done_sent = true;
        }
    }
    return 0;
}

bool
kith__session_finished(const struct kith__session *s)
{
    return s->state == KITH__SS_OPEN && s->done_sent && s->peer_done && s->nwin == 0 && !s->want;
}

int
kith__session_ping(struct kith__session *s)
{
    struct kith__msg m;
    int rc;

    if (s->state != KITH__SS_OPEN)
        return 0;
    memset(&m, 0, sizeof(m));
    m.type = KITH__MSG_PING;
    m.nonce = (uint64_t)kith__mono_ms();
    rc = kith__session_send(s, &m);
    if (rc < 0)
        kith__session_close(s, rc, false, false, "could not send PING: %s", kith_strerror(rc));
    return rc;
}

int
kith__session_announce(struct kith__session *s)
{
    if (s->state != KITH__SS_OPEN)
        return 0;
    s->want = true;
    s->done_sent = false;
    return kith__session_pump(s);
}
