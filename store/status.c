/*
 * status.c — what a replica can say about itself: its version vector and the counts behind
 * `kith status` (ops logged, pending and why they wait, open conflicts, live documents per
 * collection), read in one LMDB read transaction so the figures agree with each other.
 *
 * It also holds the small transaction helpers the read side shares (view.h): a read
 * transaction, and a write transaction that grows the map and redoes its work when LMDB
 * reports MDB_MAP_FULL (store.h describes the growth rule).
 */
#include "store.h"
#include "view.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Bound on map growths for one piece of work: 64 MiB doubled 20 times is 64 TiB. */
#define VIEW_MAX_GROWTHS 20

int
kith__view_begin(kith_replica *r, MDB_txn **out)
{
    return kith__mdb_begin(r, MDB_RDONLY, out);
}

void
kith__view_end(kith_replica *r, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    kith__mdb_end(r);
}

int
kith__view_write(kith_replica *r, int (*fn)(kith_replica *r, MDB_txn *txn, void *ctx), void *ctx)
{
    MDB_txn *txn;
    int rc;

    if (r->flags & KITH_RDONLY)
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    for (int tries = 0;; tries++) {
        rc = kith__mdb_begin(r, 0, &txn);
        if (rc < 0)
            return rc;
        rc = fn(r, txn, ctx);
        if (rc == 0) {
            rc = kith__mdb_err(kith__mdb_txn_commit(txn)); /* frees txn, even when it fails */
        } else {
            mdb_txn_abort(txn);
        }
        kith__mdb_end(r);
        if (rc != MDB_MAP_FULL || tries == VIEW_MAX_GROWTHS)
            return rc == MDB_MAP_FULL ? -ENOSPC : rc;
        rc = kith__map_grow(r);
        if (rc < 0)
            return rc;
    }
}

int
kith__vv_read(kith_replica *r, MDB_txn *txn, kith_vv *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    size_t cap = 0;
    int rc, mrc;

    out->len = 0;
    out->entries = NULL;
    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->origins, &cur));
    if (rc < 0)
        return rc;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t applied;

        if (k.mv_size != 8 || v.mv_size != KITH__ORIGIN_VAL_BYTES) {
            rc = kith__fail(r, KITH_ECORRUPT, "origins record of %zu bytes", v.mv_size);
            goto out_cursor;
        }
        applied = kith__be64_get(v.mv_data);
        if (applied == 0)
            continue;
        if (out->len == cap) {
            kith_dot *grown;

            cap = cap ? cap * 2 : 8;
            grown = realloc(out->entries, cap * sizeof(*grown));
            if (!grown) {
                rc = KITH_ENOMEM;
                goto out_cursor;
            }
            out->entries = grown;
        }
        out->entries[out->len].origin = kith__be64_get(k.mv_data);
        out->entries[out->len].seq = applied;
        out->len++;
    }
    rc = mrc == MDB_NOTFOUND ? 0 : kith__mdb_err(mrc);
out_cursor:
    mdb_cursor_close(cur);
    if (rc < 0) {
        free(out->entries);
        out->entries = NULL;
        out->len = 0;
    }
    return rc;
}

int
kith_vv_get(kith_replica *r, kith_vv *out)
{
    MDB_txn *txn;
    int rc;

    if (!r || !out)
        return KITH_EINVAL;
    out->len = 0;
    out->entries = NULL;
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = kith__vv_read(r, txn, out);
    kith__view_end(r, txn);
    return rc;
}

/* A meta counter; a missing key reads as 0. */
static int
meta_u64(kith_replica *r, MDB_txn *txn, const char *key, uint64_t *out)
{
    int rc = kith__meta_get_u64(r, txn, key, out);

    if (rc == KITH_ENOTFOUND) {
        *out = 0;
        rc = 0;
    }
    return rc;
}

/* Sum of `have` over origins: every op in the log. */
static int
count_logged(kith_replica *r, MDB_txn *txn, uint64_t *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, mrc;

    *out = 0;
    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->origins, &cur));
    if (rc < 0)
        return rc;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size != KITH__ORIGIN_VAL_BYTES) {
            mdb_cursor_close(cur);
            return kith__fail(r, KITH_ECORRUPT, "origins record of %zu bytes", v.mv_size);
        }
        *out += kith__be64_get((const uint8_t *)v.mv_data + 8);
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? 0 : kith__mdb_err(mrc);
}

/* Conflict records not yet resolved (byte 18 of the value, store.h). */
static int
count_open_conflicts(kith_replica *r, MDB_txn *txn, uint64_t *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, mrc;

    *out = 0;
    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->conflicts, &cur));
    if (rc < 0)
        return rc;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size < 19) {
            mdb_cursor_close(cur);
            return kith__fail(r, KITH_ECORRUPT, "conflict record of %zu bytes", v.mv_size);
        }
        if (((const uint8_t *)v.mv_data)[18] == 0)
            (*out)++;
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? 0 : kith__mdb_err(mrc);
}

/* Live documents per collection: the keys of `docs`, whose first byte is the collection. */
static int
count_docs(kith_replica *r, MDB_txn *txn, kith_collection_count *counts, size_t n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, mrc;

    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->docs, &cur));
    if (rc < 0)
        return rc;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint8_t coll;

        if (k.mv_size != 1 + KITH_DOCID_BYTES) {
            mdb_cursor_close(cur);
            return kith__fail(r, KITH_ECORRUPT, "docs key of %zu bytes", k.mv_size);
        }
        coll = ((const uint8_t *)k.mv_data)[0];
        if (coll < n)
            counts[coll].live++;
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? 0 : kith__mdb_err(mrc);
}

void
kith_status_free(kith_status *s)
{
    if (!s)
        return;
    kith_vv_free(&s->vv);
    free(s->collections);
    kith_holds_free(s->holds, s->nholds);
    kith_forks_free(s->forks, s->nforks);
    free(s);
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* This machine's clock against its peers': the median of how far ours is ahead of each peer
 * whose clock a handshake measured (its record holds theirs minus ours). */
static int
clock_median(kith_replica *r, kith_status *s)
{
    kith_peer *peers = NULL;
    size_t n = 0, m = 0;
    int64_t *ahead;
    int rc = kith_peers_get(r, &peers, &n);

    if (rc < 0)
        return rc;
    ahead = calloc(n ? n : 1, sizeof *ahead);
    if (ahead == NULL) {
        kith_peers_free(peers, n);
        return KITH_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        if (peers[i].trusted && peers[i].clock_checked_ms != 0)
            ahead[m++] = -peers[i].clock_offset_ms;
    if (m > 0) {
        qsort(ahead, m, sizeof *ahead, cmp_i64);
        s->clock_offset_ms = m % 2 ? ahead[m / 2] : ahead[m / 2 - 1] / 2 + ahead[m / 2] / 2;
    }
    s->clock_peers = m;
    free(ahead);
    kith_peers_free(peers, n);
    return 0;
}

int
kith_status_get(kith_replica *r, kith_status **out)
{
    kith_collection_count counts[256] = {{0}};
    kith_status *s;
    MDB_txn *txn;
    int rc;

    if (!r || !out)
        return KITH_EINVAL;
    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (!s)
        return KITH_ENOMEM;
    s->collections = calloc(256, sizeof(*s->collections));
    if (!s->collections) {
        rc = KITH_ENOMEM;
        goto out_free;
    }
    s->id = r->id;
    memcpy(s->pubkey, r->pk, KITH_PUBKEY_BYTES);
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        goto out_free;
    /* every collection this replica has a number for (declared, or met in ops), in the order
     * it met them */
    for (unsigned id = 0; id < 256 && rc == 0; id++) {
        rc = kith__names_name(r, txn, KITH__NAME_COLL, 0, (uint8_t)id, &counts[id].collection);
        if (rc == KITH_ENOTFOUND)
            rc = 0;
    }
    if (rc < 0 || (rc = count_docs(r, txn, counts, 256)) < 0)
        goto out_end;
    for (unsigned id = 0; id < 256; id++)
        if (counts[id].collection)
            s->collections[s->ncollections++] = counts[id];
    if ((rc = kith__vv_read(r, txn, &s->vv)) < 0 ||
        (rc = count_logged(r, txn, &s->ops_logged)) < 0 ||
        (rc = meta_u64(r, txn, "pending", &s->pending_ops)) < 0 ||
        (rc = count_open_conflicts(r, txn, &s->open_conflicts)) < 0 ||
        (rc = meta_u64(r, txn, "hlc", &s->hlc)) < 0 ||
        (rc = kith__holds_read(r, txn, kith__replica_now_ms(r), &s->holds, &s->nholds)) < 0 ||
        (rc = kith__forks_read(r, txn, &s->forks, &s->nforks)) < 0)
        goto out_end;
    struct kith__restored mark;
    if ((rc = kith__restored_get(r, txn, &mark)) < 0)
        goto out_end;
    if (rc == 1) {
        s->restored_seq = mark.seq;
        s->restored_from = mark.seen_from;
        s->restored_ms = mark.recorded_ms;
        s->restored_accepted = mark.accepted;
    }
    if ((rc = kith__group_info(r, txn, &s->group)) < 0)
        goto out_end;
    rc = 0;
    kith__view_end(r, txn);
    if ((rc = clock_median(r, s)) < 0)
        goto out_free;
    *out = s;
    return 0;
out_end:
    kith__view_end(r, txn);
out_free:
    kith_status_free(s);
    return rc;
}
