/*
 * holds.c — why ops wait: for every origin with commits logged but not applied (have >
 * applied in its origins record), how many ops wait, why the first of them does, and how far
 * ahead of this machine's clock the newest one is stamped (spec/storage.md "Pending commits",
 * STO-18).
 *
 * An origin's commits apply in seq order, so its first held commit (at applied + 1) decides
 * for the rest: it waits for the clock (stamped more than 60 s ahead), or for an op it names
 * that is not applied here, or for nothing any more (the next batch apply takes it). The
 * newest held commit (the one ending at `have`) carries the origin's latest timestamp, the
 * best sign of how far its clock runs ahead. Only those two commits are decoded, so the cost
 * is two log reads per origin that holds anything, whatever the number of held ops.
 */
#include "store.h"
#include "view.h"

#include <stdlib.h>
#include <string.h>

/* The log entry of `origin` whose key is the greatest at or below (origin, seq), decoded
 * into `c` (views into the map and `arena`). KITH_ECORRUPT when there is none. */
static int
held_commit(kith_replica *r, MDB_txn *txn, uint64_t origin, uint64_t seq, struct kith__commit *c,
            struct kith__arena *arena)
{
    MDB_cursor *cur;
    uint8_t kb[16];
    MDB_val k = {16, kb}, v;
    char why[160] = "";
    int rc;

    kith__be64_put(kb, origin);
    kith__be64_put(kb + 8, seq + 1);
    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->log, &cur));
    if (rc < 0)
        return rc;
    rc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    rc = kith__mdb_cursor_get(cur, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return kith__mdb_err(rc);
    if (rc == MDB_NOTFOUND || k.mv_size != 16 || kith__be64_get(k.mv_data) != origin ||
        v.mv_size <= KITH__LOG_HDR_BYTES)
        return kith__fail(r, KITH_ECORRUPT, "log: held commit %016llx:%llu is missing",
                          (unsigned long long)origin, (unsigned long long)seq);
    kith__arena_reset(arena);
    rc = kith__commit_decode(
        (const uint8_t *)v.mv_data + KITH__LOG_HDR_BYTES, v.mv_size - KITH__LOG_HDR_BYTES, origin,
        kith__be64_get((const uint8_t *)k.mv_data + 8), c, arena, why, sizeof why);
    if (rc < 0)
        return kith__fail(r, KITH_ECORRUPT, "log: held commit %016llx:%llu: %s",
                          (unsigned long long)origin, (unsigned long long)seq, why);
    return 0;
}

struct dep_scan {
    kith_replica *r;
    MDB_txn *txn;
    kith_dot missing; /* the first dot named and not applied; {0, 0} while none */
    int rc;
};

static void
dep_scan(void *ctx, uint64_t origin, uint64_t seq)
{
    struct dep_scan *d = ctx;
    struct kith__origin_state o;

    if (d->rc < 0 || d->missing.origin != 0)
        return;
    d->rc = kith__origin_get(d->r, d->txn, origin, &o);
    if (d->rc == 0 && o.applied < seq)
        d->missing = (kith_dot){origin, seq};
}

/* Fill `h` for `origin`, whose commits in (applied, have] are held. */
static int
hold_read(kith_replica *r, MDB_txn *txn, uint64_t origin, uint64_t applied, uint64_t have,
          int64_t now_ms, kith_hold *h, struct kith__arena *arena)
{
    struct kith__commit c;
    struct dep_scan d = {r, txn, {0, 0}, 0};
    int rc;

    memset(h, 0, sizeof *h);
    h->origin = origin;
    h->ops = have - applied;
    rc = held_commit(r, txn, origin, applied + 1, &c, arena);
    if (rc < 0)
        return rc;
    if (kith__hlc_too_far_ahead(c.hlc, (uint64_t)(now_ms < 0 ? 0 : now_ms))) {
        h->reason = KITH_HOLD_CLOCK;
    } else {
        kith__commit_deps(&c, dep_scan, &d);
        if (d.rc < 0)
            return d.rc;
        h->reason = d.missing.origin != 0 ? KITH_HOLD_DEPENDENCY : KITH_HOLD_READY;
        h->missing = d.missing;
    }
    h->hlc = c.hlc;
    if (have >= c.first_seq + c.nops) {
        rc = held_commit(r, txn, origin, have, &c, arena);
        if (rc < 0)
            return rc;
        if (c.hlc > h->hlc)
            h->hlc = c.hlc;
    }
    if ((int64_t)KITH__HLC_MS(h->hlc) > now_ms)
        h->ahead_ms = (int64_t)KITH__HLC_MS(h->hlc) - now_ms;
    return 0;
}

int
kith__holds_read(kith_replica *r, MDB_txn *txn, int64_t now_ms, kith_hold **out, size_t *n)
{
    struct kith__arena arena = {0};
    kith_hold *list = NULL;
    size_t len = 0, cap = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, mrc;

    *out = NULL;
    *n = 0;
    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->origins, &cur));
    if (rc < 0)
        return rc;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t applied, have;

        if (k.mv_size != 8 || v.mv_size != KITH__ORIGIN_VAL_BYTES) {
            rc = kith__fail(r, KITH_ECORRUPT, "origins record of %zu bytes", v.mv_size);
            goto out_cursor;
        }
        applied = kith__be64_get(v.mv_data);
        have = kith__be64_get((const uint8_t *)v.mv_data + 8);
        if (have <= applied)
            continue;
        if (len == cap) {
            kith_hold *grown;

            cap = cap ? cap * 2 : 4;
            grown = realloc(list, cap * sizeof *grown);
            if (!grown) {
                rc = KITH_ENOMEM;
                goto out_cursor;
            }
            list = grown;
        }
        rc =
            hold_read(r, txn, kith__be64_get(k.mv_data), applied, have, now_ms, &list[len], &arena);
        if (rc < 0)
            goto out_cursor;
        len++;
    }
    rc = mrc == MDB_NOTFOUND ? 0 : kith__mdb_err(mrc);
out_cursor:
    mdb_cursor_close(cur);
    kith__arena_free(&arena);
    if (rc < 0) {
        free(list);
        return rc;
    }
    *out = list;
    *n = len;
    return 0;
}

void
kith_holds_free(kith_hold *holds, size_t n)
{
    (void)n;
    free(holds);
}

int
kith_holds_get(kith_replica *r, kith_hold **out, size_t *n)
{
    MDB_txn *txn;
    int rc;

    if (!r || !out || !n)
        return KITH_EINVAL;
    *out = NULL;
    *n = 0;
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = kith__holds_read(r, txn, kith__replica_now_ms(r), out, n);
    kith__view_end(r, txn);
    return rc;
}
