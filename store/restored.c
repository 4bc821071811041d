/*
 * restored.c — the mark of a replica restored from a copy (spec/data-model.md RESTORE-*,
 * spec/storage.md "meta", decision D-15).
 *
 * A replica whose peer holds more of this replica's own origin than it does itself was
 * restored from a copy (a backup, a file sync gone back in time) or lost commits: the ops it
 * signed after the copy exist elsewhere. Writing now would sign a second history at seqs it
 * used before, a fork of its own origin. So the handshake that shows it (net/session.c) marks
 * the replica in meta "restored", which survives restarts; a local write transaction is then
 * refused with KITH_ERESTORED (store/txn.c) until the replica holds its own origin up to the
 * seq the mark names again, which a batch or bundle carrying those ops brings (they are
 * signed by its own key and chained from its own head: store/batch_apply.c verifies them as any
 * origin's run) and which clears the mark in the same LMDB transaction.
 *
 * When no device holds those ops any more, kith_restored_accept keeps the mark but marks it
 * accepted: writes go on at the next seq, which forks the origin wherever the lost ops still
 * exist, and a peer that shows a higher seq later marks the replica again.
 *
 *  meta "restored": seq(8) | seen_from(8) | recorded_ms(8, two's complement)
 *                   | have(8) | accepted(1)                                       33 bytes
 */
#include "store.h"
#include "view.h"

#include <string.h>

#define RESTORED_BYTES 33

int
kith__restored_get(kith_replica *r, MDB_txn *txn, struct kith__restored *out)
{
    MDB_val v;
    int rc;

    memset(out, 0, sizeof *out);
    rc = kith__meta_get(r, txn, "restored", &v);
    if (rc == KITH_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    if (v.mv_size != RESTORED_BYTES)
        return kith__fail(r, KITH_ECORRUPT, "meta: restored is %zu bytes", v.mv_size);
    const uint8_t *p = v.mv_data;
    out->seq = kith__be64_get(p);
    out->seen_from = kith__be64_get(p + 8);
    out->recorded_ms = (int64_t)kith__be64_get(p + 16);
    out->have = kith__be64_get(p + 24);
    out->accepted = p[32] != 0;
    return 1;
}

static int
restored_put(kith_replica *r, MDB_txn *txn, const struct kith__restored *m)
{
    uint8_t vb[RESTORED_BYTES];

    kith__be64_put(vb, m->seq);
    kith__be64_put(vb + 8, m->seen_from);
    kith__be64_put(vb + 16, (uint64_t)m->recorded_ms);
    kith__be64_put(vb + 24, m->have);
    vb[32] = m->accepted ? 1 : 0;
    return kith__meta_put(r, txn, "restored", vb, sizeof vb);
}

static int
restored_del(kith_replica *r, MDB_txn *txn)
{
    MDB_val k = {sizeof "restored" - 1, (void *)"restored"};
    int rc = kith__mdb_del(txn, r->meta, &k, NULL);

    if (rc == MDB_NOTFOUND)
        return 0;
    return rc == 0 ? 0 : kith__mdb_err(rc);
}

int
kith__restored_settle(kith_replica *r, MDB_txn *txn, uint64_t have)
{
    struct kith__restored m;
    int rc = kith__restored_get(r, txn, &m);

    if (rc <= 0 || have < m.seq)
        return rc;
    return restored_del(r, txn);
}

int
kith__restored_refuse(kith_replica *r, MDB_txn *txn, uint64_t have)
{
    struct kith__restored m;
    int rc = kith__restored_get(r, txn, &m);

    if (rc <= 0 || m.accepted || have >= m.seq)
        return rc;
    return kith__fail(r, KITH_ERESTORED,
                      "this replica was restored from a copy: peer %016llx holds its own ops up "
                      "to seq %llu, this replica up to %llu; sync with that peer first (kith sync) "
                      "to take them back, or, if no device holds them any more, run kith "
                      "restored --accept (kith_restored_accept): the next write is then seq %llu "
                      "again, a fork of this replica's own origin",
                      (unsigned long long)m.seen_from, (unsigned long long)m.seq,
                      (unsigned long long)have, (unsigned long long)(have + 1));
}

struct note_ctx {
    uint64_t peer, seq;
    int64_t now_ms;
    int marked; /* 1: the mark was written (new, or a higher seq) */
};

static int
note_in(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct note_ctx *c = arg;
    struct kith__origin_state o;
    struct kith__restored m;
    int rc;

    c->marked = 0;
    if ((rc = kith__origin_get(r, txn, r->id, &o)) < 0)
        return rc;
    if (c->seq <= o.have)
        return 0;
    if ((rc = kith__restored_get(r, txn, &m)) < 0)
        return rc;
    if (rc == 1 && m.seq >= c->seq)
        return 0; /* known already, as far or further */
    m.seq = c->seq;
    m.seen_from = c->peer;
    m.recorded_ms = c->now_ms;
    m.have = o.have;
    m.accepted = false;
    rc = restored_put(r, txn, &m);
    if (rc < 0 || rc == MDB_MAP_FULL)
        return rc;
    c->marked = 1;
    return 0;
}

int
kith__restored_note(kith_replica *r, uint64_t peer, uint64_t seq)
{
    struct note_ctx c = {.peer = peer, .seq = seq, .now_ms = kith__now_ms()};
    struct kith__origin_state o;
    struct kith__restored m;
    MDB_txn *txn;
    int rc, known = 0;

    /* a read first: the writer lock is taken only when there is something to write */
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = kith__origin_get(r, txn, r->id, &o);
    if (rc == 0 && seq > o.have)
        known = kith__restored_get(r, txn, &m);
    kith__view_end(r, txn);
    if (rc < 0 || known < 0)
        return rc < 0 ? rc : known;
    if (seq <= o.have)
        return 0;
    if ((known == 1 && m.seq >= seq) || (r->flags & KITH_RDONLY))
        return 2; /* marked already; or read-only: a writable open marks it */
    rc = kith__view_write(r, note_in, &c);
    return rc < 0 ? rc : c.marked ? 1 : 2;
}

struct fork_ctx {
    uint64_t peer, peer_seq, have;
    int64_t now_ms;
    int recorded;
};

static int
fork_in(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct fork_ctx *c = arg;
    struct kith__origin_state o;
    uint64_t fseq;
    kith_fork f;
    int rc;

    c->recorded = 0;
    if ((rc = kith__origin_get(r, txn, r->id, &o)) < 0)
        return rc;
    c->have = o.have;
    if (c->peer_seq <= o.have || o.have == 0)
        return 0; /* it sent them: nothing forked */
    if ((rc = kith__fork_seq(r, txn, r->id, &fseq)) != 0)
        return rc < 0 ? rc : 0; /* known already */
    memset(&f, 0, sizeof f);
    f.origin = r->id;
    f.seq = o.have;
    memcpy(f.ours, o.head, KITH_HASH_BYTES);
    f.seen_from = c->peer;
    f.recorded_ms = c->now_ms;
    f.source = KITH_FORK_HANDSHAKE;
    rc = kith__fork_put(r, txn, &f);
    if (rc < 0 || rc == MDB_MAP_FULL)
        return rc;
    c->recorded = rc;
    return 0;
}

int
kith__restored_fork(kith_replica *r, uint64_t peer, uint64_t peer_seq, uint64_t *have)
{
    struct fork_ctx c = {.peer = peer, .peer_seq = peer_seq, .now_ms = kith__now_ms()};
    struct kith__origin_state o;
    MDB_txn *txn;
    uint64_t fseq;
    int rc, forked = 0;

    *have = 0;
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = kith__origin_get(r, txn, r->id, &o);
    if (rc == 0 && peer_seq > o.have)
        forked = kith__fork_seq(r, txn, r->id, &fseq);
    kith__view_end(r, txn);
    *have = o.have;
    if (rc < 0 || forked < 0)
        return rc < 0 ? rc : forked;
    if (peer_seq <= o.have || o.have == 0 || forked == 1 || (r->flags & KITH_RDONLY))
        return 0;
    rc = kith__view_write(r, fork_in, &c);
    *have = c.have;
    return rc < 0 ? rc : c.recorded;
}

static int
accept_in(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct kith__restored m;
    int rc = kith__restored_get(r, txn, &m);

    (void)arg;
    if (rc <= 0 || m.accepted)
        return rc;
    m.accepted = true;
    return restored_put(r, txn, &m);
}

int
kith_restored_accept(kith_replica *r)
{
    if (r == NULL)
        return KITH_EINVAL;
    if (r->flags & KITH_RDONLY)
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    int rc = kith__view_write(r, accept_in, NULL);
    return rc < 0 ? rc : 0;
}
