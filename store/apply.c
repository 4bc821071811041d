/*
 * apply.c — the one path from an op to the replica's state, for local writes and received
 * batches alike: LWW registers with their conflict records, OR-set elements, document
 * membership (with the touch rule), the query indexes, and the events observers hear of.
 *
 * This is the hot path of merging (issue #4), so an applier is opened once per LMDB write
 * transaction and reused for every op: its cursors stay open, one scratch buffer grows to
 * the largest op and is reused, origins records are cached and written back once. A register
 * costs one cursor lookup and one put; a document's membership is touched once per commit
 * (the touch of a run of ops on one document waits in the applier until another document,
 * a DOC_* op or the end of the commit writes it), which gives the same state as touching at
 * every op because a touch drops the same origin's lower dots (spec/storage.md "Apply").
 * Records are read and written through store/wcache.c, which caches them for batches.
 *
 * On a replica that settled a fork, an op may observe a void dot that is not applied here yet
 * (spec/data-model.md FORK-15..18): its removal then leaves a tombstone in the voids
 * database, and the op at that dot, when it comes, adds its dot to that set only to drop it,
 * so the dot sets hold what they would had the ops come in the other order. An applier does
 * this only when told to (kith__apply_voids); every other one pays a test of a zero count.
 */
#include "schema.h"
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define REG_KEY_BYTES 18
#define DOC_KEY_BYTES 17
#define ELEM_KEY_MAX 511
#define CONFLICT_HDR (1 + 16 + 1 + 1 + 8 + 24 + 24 + 4)

/* ---- origins ----------------------------------------------------------------------- */

int
kith__origin_get(kith_replica *r, MDB_txn *txn, uint64_t origin, struct kith__origin_state *o)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    int rc;

    memset(o, 0, sizeof *o);
    kith__be64_put(kb, origin);
    rc = kith__mdb_get(txn, r->origins, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return kith__fail(r, kith__mdb_err(rc), "origins: %s", mdb_strerror(rc));
    if (v.mv_size != KITH__ORIGIN_VAL_BYTES)
        return kith__fail(r, KITH_ECORRUPT, "origins: record of %016llx has %zu bytes",
                          (unsigned long long)origin, v.mv_size);
    o->applied = kith__be64_get(v.mv_data);
    o->have = kith__be64_get((const uint8_t *)v.mv_data + 8);
    memcpy(o->head, (const uint8_t *)v.mv_data + 16, KITH_HASH_BYTES);
    return 0;
}

int
kith__origin_put(kith_replica *r, MDB_txn *txn, uint64_t origin, const struct kith__origin_state *o)
{
    uint8_t kb[8], vb[KITH__ORIGIN_VAL_BYTES];
    MDB_val k = {8, kb}, v = {sizeof vb, vb};

    kith__be64_put(kb, origin);
    kith__be64_put(vb, o->applied);
    kith__be64_put(vb + 8, o->have);
    memcpy(vb + 16, o->head, KITH_HASH_BYTES);
    return kith__mdb_err(kith__mdb_put(txn, r->origins, &k, &v, 0));
}

struct kith__origin_slot *
kith__apply_origin(struct kith__applier *a, uint64_t origin, int *rc)
{
    struct kith__origin_slot *s;

    for (size_t i = 0; i < a->norigins; i++)
        if (a->origins[i].origin == origin)
            return &a->origins[i];
    if (a->norigins == a->caporigins) {
        size_t cap = a->caporigins ? a->caporigins * 2 : 8;
        s = realloc(a->origins, cap * sizeof *s);
        if (s == NULL) {
            *rc = KITH_ENOMEM;
            return NULL;
        }
        a->origins = s;
        a->caporigins = cap;
    }
    s = &a->origins[a->norigins];
    *rc = kith__origin_get(a->r, a->txn, origin, &s->st);
    if (*rc < 0)
        return NULL;
    s->origin = origin;
    s->dirty = false;
    a->norigins++;
    return s;
}

/* ---- applier lifetime ------------------------------------------------------------------ */

static int
scratch(struct kith__applier *a, size_t n)
{
    if (n <= a->scratch_cap)
        return 0;
    size_t cap = a->scratch_cap ? a->scratch_cap : 4096;
    while (cap < n)
        cap *= 2;
    uint8_t *p = realloc(a->scratch, cap);
    if (p == NULL)
        return KITH_ENOMEM;
    a->scratch = p;
    a->scratch_cap = cap;
    return 0;
}

int
kith__apply_begin(struct kith__applier *a, kith_replica *r, MDB_txn *txn,
                  struct kith__event_log *ev)
{
    int rc;

    memset(a, 0, sizeof *a);
    a->r = r;
    a->txn = txn;
    a->ev = ev;
    a->now_ms = kith__now_ms();
    if ((rc = kith__mdb_cursor_open(txn, r->regs, &a->regs_c)) != 0)
        goto out_fail;
    if ((rc = kith__mdb_cursor_open(txn, r->elems, &a->elems_c)) != 0)
        goto out_fail;
    if ((rc = kith__mdb_cursor_open(txn, r->docs, &a->docs_c)) != 0)
        goto out_fail;
    if (scratch(a, 4096) < 0) {
        rc = ENOMEM;
        goto out_fail;
    }
    if ((rc = kith__schema_current(r, txn, &a->schema)) < 0) {
        kith__apply_end(a);
        return rc;
    }
    return 0;
out_fail:
    kith__apply_end(a);
    return kith__fail(r, kith__mdb_err(rc), "cannot open cursors: %s", mdb_strerror(rc));
}

void
kith__apply_end(struct kith__applier *a)
{
    if (a->regs_c)
        mdb_cursor_close(a->regs_c);
    if (a->elems_c)
        mdb_cursor_close(a->elems_c);
    if (a->docs_c)
        mdb_cursor_close(a->docs_c);
    if (a->counts_c)
        mdb_cursor_close(a->counts_c);
    if (a->flags_c)
        mdb_cursor_close(a->flags_c);
    a->regs_c = a->elems_c = a->docs_c = a->counts_c = a->flags_c = NULL;
    kith__wcache_free(a->wc);
    a->wc = NULL;
    free(a->scratch);
    free(a->origins);
    a->scratch = NULL;
    a->origins = NULL;
    a->scratch_cap = a->norigins = a->caporigins = 0;
}

int
kith__apply_finish(struct kith__applier *a)
{
    int rc = kith__apply_flush(a);

    if (rc == 0)
        rc = kith__wcache_flush(a);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < a->norigins; i++) {
        if (!a->origins[i].dirty)
            continue;
        rc = kith__origin_put(a->r, a->txn, a->origins[i].origin, &a->origins[i].st);
        if (rc < 0)
            return rc;
        a->origins[i].dirty = false;
    }
    if (a->conflict_dirty) {
        rc = kith__meta_put_u64(a->r, a->txn, "conflict", a->conflict_id);
        if (rc < 0)
            return rc;
        a->conflict_dirty = false;
    }
    return 0;
}

/* ---- conflicts ------------------------------------------------------------------------ */

/*
 * Record a conflict (field 0: a delete overruled by a concurrent edit). Values may be NULL
 * (stored as NULL values). Assumes the values do not point into a->scratch.
 */
static int
conflict_record(struct kith__applier *a, uint8_t coll, kith_dot doc, uint8_t field, uint64_t w_hlc,
                kith_dot w_dot, const kith_value *w_val, uint64_t l_hlc, kith_dot l_dot,
                const kith_value *l_val)
{
    static const kith_value null_value = {.type = KITH_TYPE_NULL};
    uint8_t kb[8], *p;
    size_t wn, ln, n;
    MDB_val k = {8, kb}, v;
    int rc;

    if (a->no_conflicts)
        return 0; /* a rebuild applies again what recorded them once */
    if (w_val == NULL)
        w_val = &null_value;
    if (l_val == NULL)
        l_val = &null_value;
    if (!a->conflict_loaded) {
        rc = kith__meta_get_u64(a->r, a->txn, "conflict", &a->conflict_id);
        if (rc < 0)
            return rc;
        a->conflict_loaded = true;
    }
    wn = kith__value_stored_size(w_val);
    ln = kith__value_stored_size(l_val);
    n = CONFLICT_HDR + wn + ln;
    kith__be64_put(kb, a->conflict_id + 1);
    v.mv_size = n;
    v.mv_data = NULL;
    /* MDB_RESERVE: build the record in place, no copy */
    rc = kith__mdb_put(a->txn, a->r->conflicts, &k, &v, MDB_RESERVE | MDB_APPEND);
    if (rc == MDB_KEYEXIST)
        rc = kith__mdb_put(a->txn, a->r->conflicts, &k, &v, MDB_RESERVE);
    if (rc != 0)
        return kith__mdb_err(rc);
    p = v.mv_data;
    p[0] = coll;
    kith__dot_put(p + 1, doc);
    p[17] = field;
    p[18] = 0; /* resolved */
    kith__be64_put(p + 19, (uint64_t)a->now_ms);
    kith__be64_put(p + 27, w_hlc);
    kith__be64_put(p + 35, w_dot.origin);
    kith__be64_put(p + 43, w_dot.seq);
    kith__be64_put(p + 51, l_hlc);
    kith__be64_put(p + 59, l_dot.origin);
    kith__be64_put(p + 67, l_dot.seq);
    p[75] = (uint8_t)(wn >> 24);
    p[76] = (uint8_t)(wn >> 16);
    p[77] = (uint8_t)(wn >> 8);
    p[78] = (uint8_t)wn;
    kith__value_store(w_val, p + CONFLICT_HDR);
    kith__value_store(l_val, p + CONFLICT_HDR + wn);
    a->conflict_id++;
    a->conflict_dirty = true;
    a->conflicts++;
    if (a->ev != NULL)
        return kith__event_conflict(a->ev, a->conflict_id);
    return 0;
}

/* ---- indexes -------------------------------------------------------------------------- */

/* Add or remove one index entry: through the cache when `a` has one (`born`: see
 * index_update). */
static int
index_put(struct kith__applier *a, kith_replica *r, MDB_txn *txn, const uint8_t *key, size_t n,
          bool add, bool born)
{
    MDB_val k = {n, (void *)key}, v = {0, NULL};
    int rc;

    if (a != NULL && a->wc != NULL)
        return kith__wcache_index(a, key, n, add, born);
    rc = add ? kith__mdb_put(txn, r->index, &k, &v, 0) : kith__mdb_del(txn, r->index, &k, NULL);
    if (rc == MDB_NOTFOUND && !add)
        rc = 0;
    return kith__mdb_err(rc);
}

/* Read one register's current value into *out (NULL type if absent), through the cache
 * when `a` has one. Views valid until the next write. */
static int
reg_read(struct kith__applier *a, kith_replica *r, MDB_txn *txn, int coll, kith_dot doc, int field,
         kith_value *out)
{
    uint8_t kb[REG_KEY_BYTES];
    MDB_val k = {sizeof kb, kb}, v;
    int rc;

    kb[0] = (uint8_t)coll;
    kith__dot_put(kb + 1, doc);
    kb[17] = (uint8_t)field;
    if (a != NULL && a->wc != NULL) {
        const uint8_t *val;
        size_t vlen;
        bool found;
        struct kith__wc_entry *e;
        rc = kith__rec_get(a, KITH__WC_REGS, a->regs_c, kb, sizeof kb, &val, &vlen, &found, &e);
        if (rc < 0)
            return rc;
        v.mv_data = (void *)val;
        v.mv_size = vlen;
        rc = found ? 0 : MDB_NOTFOUND;
    } else {
        rc = kith__mdb_get(txn, r->regs, &k, &v);
    }
    if (rc == MDB_NOTFOUND) {
        memset(out, 0, sizeof *out);
        return 0;
    }
    if (rc != 0)
        return kith__mdb_err(rc);
    if (v.mv_size < KITH__REG_HDR_BYTES + 1)
        return KITH_ECORRUPT;
    return kith__value_load((const uint8_t *)v.mv_data + KITH__REG_HDR_BYTES,
                            v.mv_size - KITH__REG_HDR_BYTES, out);
}

/*
 * The key of index `p` for a document whose parts hold `parts` (NULL or a NULL value: the
 * document has no entry). Each part in its type's index-key form (core/types.c); 0 when
 * there is no entry.
 */
static size_t
index_key(const struct kith__index_plan *p, const kith_value *const parts[2], kith_dot doc,
          uint8_t *kb, size_t cap)
{
    size_t n = 1, each = (cap - 1 - KITH__DOT_BYTES) / p->nparts; /* a part's share */
    kb[0] = p->id;
    for (uint8_t k = 0; k < p->nparts; k++) {
        const struct kith__type *ty = parts[k] ? kith__type_of(parts[k]->type) : NULL;
        if (!ty || parts[k]->type == KITH_TYPE_NULL)
            return 0;
        n += ty->index_key(parts[k], kb + n, each);
    }
    kith__dot_put(kb + n, doc);
    return n + KITH__DOT_BYTES;
}

/*
 * Move the index entries of a document whose `field` changed from old_v to new_v. `born`: the
 * register was not in the database when this applier's cache first read it; every index key
 * naming the document needs that register, so none can be in the database either.
 */
static int
index_update(struct kith__applier *a, kith_replica *r, MDB_txn *txn, const struct kith__sschema *ss,
             int coll, kith_dot doc, int field, const kith_value *old_v, const kith_value *new_v,
             bool born)
{
    uint8_t kb[KITH__INDEX_KEY_MAX];

    if (!ss || !ss->indexed || !(ss->indexed[coll][field >> 6] >> (field & 63) & 1))
        return 0; /* no index keys this field */
    for (size_t i = 0; i < ss->nplans; i++) {
        const struct kith__index_plan *p = &ss->plans[i];
        int me = p->part[0] == field ? 0 : p->nparts == 2 && p->part[1] == field ? 1 : -1;
        kith_value other; /* the other part; a view, which the index key copies at once */
        int rc;
        if (p->coll != coll || me < 0)
            continue;
        if (p->nparts == 2 && (rc = reg_read(a, r, txn, coll, doc, p->part[1 - me], &other)) < 0)
            return rc;
        for (int pass = 0; pass < 2; pass++) {
            const kith_value *parts[2] = {NULL, NULL};
            parts[me] = pass == 0 ? old_v : new_v;
            if (p->nparts == 2)
                parts[1 - me] = &other;
            size_t n = index_key(p, parts, doc, kb, sizeof kb);
            if (n > 0 && (rc = index_put(a, r, txn, kb, n, pass == 1, born)) < 0)
                return rc;
        }
    }
    return 0;
}

int
kith__index_update(kith_replica *r, MDB_txn *txn, const struct kith__sschema *ss, int coll,
                   kith_dot doc, int field, const kith_value *old_v, const kith_value *new_v)
{
    return index_update(NULL, r, txn, ss, coll, doc, field, old_v, new_v, false);
}

int
kith__index_build(kith_replica *r, MDB_txn *txn, const struct kith__index_plan *p)
{
    uint8_t kb[KITH__INDEX_KEY_MAX], start[1] = {p->coll};
    MDB_val k = {1, start}, v;
    MDB_cursor *c;
    int rc = kith__mdb_cursor_open(txn, r->regs, &c);

    if (rc != 0)
        return kith__mdb_err(rc);
    for (rc = kith__mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = kith__mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *key = k.mv_data;
        kith_value first, second, val;
        const kith_value *parts[2] = {&first, &second};
        if (k.mv_size != REG_KEY_BYTES || key[0] != p->coll)
            break;
        if (key[17] != p->part[0])
            continue;
        kith_dot doc = kith__dot_get(key + 1);
        if (v.mv_size < KITH__REG_HDR_BYTES + 1 ||
            kith__value_load((const uint8_t *)v.mv_data + KITH__REG_HDR_BYTES,
                             v.mv_size - KITH__REG_HDR_BYTES, &val) < 0) {
            rc = KITH_ECORRUPT;
            break;
        }
        first = val;
        if (p->nparts == 2 && (rc = reg_read(NULL, r, txn, p->coll, doc, p->part[1], &second)) < 0)
            break;
        size_t n = index_key(p, parts, doc, kb, sizeof kb);
        if (n > 0 && (rc = index_put(NULL, r, txn, kb, n, true, false)) < 0)
            break;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc < 0 ? rc : kith__mdb_err(rc);
}

/* ---- registers ------------------------------------------------------------------------- */

static int
reg_apply(struct kith__applier *a, uint64_t hlc, kith_dot dot, const struct kith__op *op)
{
    uint8_t kb[REG_KEY_BYTES];
    size_t nv = kith__value_stored_size(&op->value), oldlen;
    const uint8_t *oldval;
    struct kith__wc_entry *ent;
    kith_value old_v;
    uint64_t old_hlc;
    kith_dot old_dot;
    uint8_t *newbuf, *oldbuf;
    bool found, wins = true;
    int rc;

    kb[0] = op->coll;
    kith__dot_put(kb + 1, op->doc);
    kb[17] = op->field;
    rc = kith__rec_get(a, KITH__WC_REGS, a->regs_c, kb, sizeof kb, &oldval, &oldlen, &found, &ent);
    if (rc < 0)
        return rc;
    if (found && oldlen < KITH__REG_HDR_BYTES + 1)
        return kith__fail(a->r, KITH_ECORRUPT, "regs: short register");
    rc = scratch(a, KITH__REG_HDR_BYTES + nv + (found ? oldlen : 0));
    if (rc < 0)
        return rc;
    newbuf = a->scratch;
    oldbuf = a->scratch + KITH__REG_HDR_BYTES + nv;
    if (found) {
        /* copy the old register out of the map: the put below may overwrite it */
        memcpy(oldbuf, oldval, oldlen);
        old_hlc = kith__be64_get(oldbuf);
        old_dot.origin = kith__be64_get(oldbuf + 8);
        old_dot.seq = kith__be64_get(oldbuf + 16);
        rc = kith__value_load(oldbuf + KITH__REG_HDR_BYTES, oldlen - KITH__REG_HDR_BYTES, &old_v);
        if (rc < 0)
            return kith__fail(a->r, rc, "regs: bad value");
        wins = kith__lww_cmp(hlc, dot, old_hlc, old_dot) > 0;
#ifdef KITH_CHECK_BREAK_MERGE
        /* kith-check's deliberately wrong merge rule (spec/check.md "Hooks inside the library"): a
         * concurrent write wins when it arrives last, so the order of arrival decides. */
        if (op->replaced.origin != old_dot.origin || op->replaced.seq != old_dot.seq)
            wins = true;
#endif
        if (op->replaced.origin != old_dot.origin || op->replaced.seq != old_dot.seq) {
            /* the write did not see the current one: concurrent */
            rc = wins ? conflict_record(a, op->coll, op->doc, op->field, hlc, dot, &op->value,
                                        old_hlc, old_dot, &old_v)
                      : conflict_record(a, op->coll, op->doc, op->field, old_hlc, old_dot, &old_v,
                                        hlc, dot, &op->value);
            if (rc < 0)
                return rc;
        }
        if (!wins)
            return 0;
    }
    kith__be64_put(newbuf, hlc);
    kith__be64_put(newbuf + 8, dot.origin);
    kith__be64_put(newbuf + 16, dot.seq);
    kith__value_store(&op->value, newbuf + KITH__REG_HDR_BYTES);
    rc = kith__rec_put(a, a->regs_c, kb, sizeof kb, newbuf, KITH__REG_HDR_BYTES + nv, found, ent);
    if (rc != 0)
        return rc;
    if (found && kith__value_cmp(&old_v, &op->value) == 0)
        return 0;
    return index_update(a, a->r, a->txn, a->schema, op->coll, op->doc, op->field,
                        found ? &old_v : NULL, &op->value, kith__wcache_born(ent));
}

/* ---- void dots: tombstones (spec/data-model.md FORK-15..18, storage.md STO-33) ------------ */

#define VOID_DOCS 'd'    /* the docs database: a document's membership */
#define VOID_ELEMS 'e'   /* elems: an OR-set element */
#define VOID_FLAGS 'f'   /* flags */
#define VOID_ENTRY_HDR 3 /* kind(1) | len(2) */

int
kith__apply_voids(struct kith__applier *a)
{
    MDB_stat st;
    int rc;

    if (a->r->voids == KITH__DBI_FREE)
        return kith__fail(a->r, KITH_EREADONLY, "a replica made before 0.5.0 opened read-only");
    rc = kith__mdb_stat(a->txn, a->r->voids, &st);
    if (rc != 0)
        return kith__fail(a->r, kith__mdb_err(rc), "voids: %s", mdb_strerror(rc));
    a->voids = true;
    a->nvoids = st.ms_entries;
    return 0;
}

/* Entries sort by kind, then by key as LMDB orders keys (bytes, then a prefix first). */
static int
void_entry_cmp(uint8_t ka, const uint8_t *a, size_t na, uint8_t kb, const uint8_t *b, size_t nb)
{
    int c;

    if (ka != kb)
        return ka < kb ? -1 : 1;
    c = memcmp(a, b, na < nb ? na : nb);
    if (c != 0)
        return c;
    return na < nb ? -1 : na > nb;
}

/*
 * Find (kind, key) in the voids record `v` (vlen bytes): *off gets the offset of the entry
 * that is it (*found) or that it would go before; *elen the entry's length when found.
 * 0 or KITH_ECORRUPT (an empty record, an empty entry, or one that runs past the record).
 */
static int
void_find(struct kith__applier *a, const uint8_t *v, size_t vlen, uint8_t kind, const uint8_t *key,
          size_t klen, size_t *off, size_t *elen, bool *found)
{
    size_t p = 0;

    *found = false;
    if (vlen == 0)
        return kith__fail(a->r, KITH_ECORRUPT, "voids: an empty record");
    while (p < vlen) {
        size_t n;
        int c;
        if (vlen - p < VOID_ENTRY_HDR || (n = (size_t)v[p + 1] << 8 | v[p + 2]) == 0 ||
            vlen - p - VOID_ENTRY_HDR < n)
            return kith__fail(a->r, KITH_ECORRUPT, "voids: a record of %zu bytes is cut short",
                              vlen);
        c = void_entry_cmp(v[p], v + p + VOID_ENTRY_HDR, n, kind, key, klen);
        if (c >= 0) {
            *found = c == 0;
            *elen = VOID_ENTRY_HDR + n;
            break;
        }
        p += VOID_ENTRY_HDR + n;
    }
    *off = p;
    return 0;
}

/* Keep the tombstone (kind, key) of the void dot d: an op removed d from that set before the
 * op at d was applied here (FORK-15). Uses a->scratch. */
static int
void_note(struct kith__applier *a, uint8_t kind, const uint8_t *key, size_t klen, kith_dot d)
{
    uint8_t kb[KITH__DOT_BYTES], *p;
    MDB_val k = {sizeof kb, kb}, v = {0, NULL};
    size_t off = 0, elen = 0, vlen = 0;
    bool found = false;
    int rc;

    kith__dot_put(kb, d);
    rc = kith__mdb_get(a->txn, a->r->voids, &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return kith__mdb_err(rc);
    if (rc == 0) {
        vlen = v.mv_size;
        if ((rc = void_find(a, v.mv_data, vlen, kind, key, klen, &off, &elen, &found)) < 0 || found)
            return rc; /* kept already */
    }
    if ((rc = scratch(a, vlen + VOID_ENTRY_HDR + klen)) < 0)
        return rc;
    p = a->scratch; /* the record rebuilt out of the map: the put below may move it */
    if (vlen > 0)
        memcpy(p, v.mv_data, off);
    p[off] = kind;
    p[off + 1] = (uint8_t)(klen >> 8);
    p[off + 2] = (uint8_t)klen;
    memcpy(p + off + VOID_ENTRY_HDR, key, klen);
    if (vlen > off)
        memcpy(p + off + VOID_ENTRY_HDR + klen, (const uint8_t *)v.mv_data + off, vlen - off);
    a->nvoids += vlen == 0;
    v.mv_size = vlen + VOID_ENTRY_HDR + klen;
    v.mv_data = p;
    return kith__mdb_err(kith__mdb_put(a->txn, a->r->voids, &k, &v, 0));
}

/* The op at dot d adds d to the set (kind, key): is there a tombstone of it? *hit says; a
 * tombstone found is used up. Uses a->scratch. Out of line and cold: dots_update, which calls
 * it only where tombstones are kept, stays small enough to be inlined into the touch. */
__attribute__((noinline, cold)) static int
void_take(struct kith__applier *a, uint8_t kind, const uint8_t *key, size_t klen, kith_dot d,
          bool *hit)
{
    uint8_t kb[KITH__DOT_BYTES];
    MDB_val k = {sizeof kb, kb}, v;
    size_t off, elen, vlen;
    int rc;

    *hit = false;
    kith__dot_put(kb, d);
    rc = kith__mdb_get(a->txn, a->r->voids, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return kith__mdb_err(rc);
    vlen = v.mv_size;
    if ((rc = void_find(a, v.mv_data, vlen, kind, key, klen, &off, &elen, hit)) < 0 || !*hit)
        return rc;
    if (vlen == elen) {
        a->nvoids--;
        return kith__mdb_err(kith__mdb_del(a->txn, a->r->voids, &k, NULL));
    }
    if ((rc = scratch(a, vlen - elen)) < 0)
        return rc;
    memcpy(a->scratch, v.mv_data, off);
    memcpy(a->scratch + off, (const uint8_t *)v.mv_data + off + elen, vlen - off - elen);
    v.mv_size = vlen - elen;
    v.mv_data = a->scratch;
    return kith__mdb_err(kith__mdb_put(a->txn, a->r->voids, &k, &v, 0));
}

/* Op `op` of dot `dot` removes its observed dots from the set (kind, key): keep a tombstone of
 * each one not applied here (FORK-15). Its own origin's are applied, or earlier in its
 * commit. */
static int
voids_observed(struct kith__applier *a, uint8_t kind, const uint8_t *key, size_t klen, kith_dot dot,
               const struct kith__op *op)
{
    for (uint32_t i = 0; i < op->nobserved; i++) {
        kith_dot o = op->observed[i];
        struct kith__origin_slot *s;
        int rc = 0;
        if (o.origin == dot.origin)
            continue;
        if ((s = kith__apply_origin(a, o.origin, &rc)) == NULL)
            return rc;
        if (s->st.applied < o.seq && (rc = void_note(a, kind, key, klen, o)) < 0)
            return rc;
    }
    return 0;
}

/* The commit's dots first..last of `origin` are applied: a tombstone of any of them that no
 * add used can never be used, and goes (FORK-17). */
static int
voids_passed(struct kith__applier *a, uint64_t origin, uint64_t first, uint64_t last)
{
    uint8_t kb[KITH__DOT_BYTES];
    MDB_val k = {sizeof kb, kb}, v;
    MDB_cursor *c;
    int rc = kith__mdb_cursor_open(a->txn, a->r->voids, &c), mrc;

    if (rc != 0)
        return kith__mdb_err(rc);
    kith__dot_put(kb, (kith_dot){origin, first});
    for (mrc = kith__mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
         mrc == 0 && k.mv_size == KITH__DOT_BYTES && kith__be64_get(k.mv_data) == origin &&
         kith__be64_get((const uint8_t *)k.mv_data + 8) <= last;
         mrc = kith__mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if ((mrc = kith__mdb_cursor_del(c, 0)) != 0)
            break;
        a->nvoids--;
    }
    mdb_cursor_close(c);
    return mrc == MDB_NOTFOUND || mrc == 0 ? 0 : kith__mdb_err(mrc);
}

/* Drop dot d from the n sorted dots at p, if there. Returns the count left. */
static size_t
dots_drop(uint8_t *p, size_t n, kith_dot d)
{
    uint8_t db[KITH__DOT_BYTES];

    kith__dot_put(db, d);
    for (size_t i = 0; i < n; i++)
        if (memcmp(p + i * KITH__DOT_BYTES, db, KITH__DOT_BYTES) == 0) {
            memmove(p + i * KITH__DOT_BYTES, p + (i + 1) * KITH__DOT_BYTES,
                    (n - i - 1) * KITH__DOT_BYTES);
            return n - 1;
        }
    return n;
}

/* ---- dot sets: elements and membership ---------------------------------------------------- */

/*
 * Apply an OR-set op to the dot set under `key` in the database of `kind` (cursor `c`; `vkind`
 * its VOID_* letter): drop observed, add `add` (may be NULL). An add whose dot has a
 * tombstone on this set (FORK-16) is made and its dot then dropped. The key is deleted when
 * no dot is left. *before and *after get the counts of dots (before: 0 if the key was
 * absent); the dots after are left in a->scratch.
 */
static int
dots_update(struct kith__applier *a, uint8_t kind, uint8_t vkind, MDB_cursor *c, const uint8_t *key,
            size_t klen, const kith_dot *observed, size_t nobs, const kith_dot *add, size_t *before,
            size_t *after)
{
    const uint8_t *val;
    struct kith__wc_entry *ent;
    size_t n = 0, m, vlen;
    bool found, drop = false;
    int rc;

    /* before the read: a write to voids may move what the read returns */
    if (add != NULL && a->nvoids > 0 && (rc = void_take(a, vkind, key, klen, *add, &drop)) < 0)
        return rc;
    rc = kith__rec_get(a, kind, c, key, klen, &val, &vlen, &found, &ent);
    if (rc < 0)
        return rc;
    if (found) {
        if (vlen % KITH__DOT_BYTES != 0 || vlen == 0)
            return kith__fail(a->r, KITH_ECORRUPT, "dot set of %zu bytes", vlen);
        n = vlen / KITH__DOT_BYTES;
    }
    *before = n;
    rc = scratch(a, (n + 1) * KITH__DOT_BYTES);
    if (rc < 0)
        return rc;
    m = kith__dots_apply(n ? val : NULL, n, observed, nobs, add, a->scratch);
    if (drop)
        m = dots_drop(a->scratch, m, *add);
    *after = m;
    if (m == n && add == NULL)
        return 0; /* nothing observed was there: nothing changes */
    if (m == 0)
        return n == 0 ? 0 : kith__rec_del(a, c, ent);
    return kith__rec_put(a, c, key, klen, a->scratch, m * KITH__DOT_BYTES, found, ent);
}

/* Has this replica applied the op that created `doc` (so a missing membership means the
 * document was deleted here), judged before applying `dot`? */
static int
doc_created_here(struct kith__applier *a, kith_dot doc, kith_dot dot, bool *out)
{
    struct kith__origin_slot *s;
    int rc = 0;

    if (doc.origin == dot.origin) {
        *out = doc.seq < dot.seq;
        return 0;
    }
    s = kith__apply_origin(a, doc.origin, &rc);
    if (s == NULL)
        return rc;
    *out = s->st.applied >= doc.seq;
    return 0;
}

int
kith__apply_flush(struct kith__applier *a)
{
    uint8_t kb[DOC_KEY_BYTES];
    size_t before = 0, after = 0;
    bool created = false;
    int rc;

    if (!a->touch_pending)
        return 0;
    a->touch_pending = false;
    kb[0] = a->touch_coll;
    kith__dot_put(kb + 1, a->touch_doc);
    rc = dots_update(a, KITH__WC_DOCS, VOID_DOCS, a->docs_c, kb, sizeof kb, NULL, 0, &a->touch_dot,
                     &before, &after);
    if (rc < 0 || before > 0 || after == 0)
        return rc; /* after 0: the touch's dot was removed before it came (FORK-16) */
    /* the document was not live: an edit for a document deleted here brings it back */
    rc = doc_created_here(a, a->touch_doc, a->touch_dot, &created);
    if (rc < 0 || !created)
        return rc;
    return conflict_record(a, a->touch_coll, a->touch_doc, 0, a->touch_hlc, a->touch_dot, NULL, 0,
                           (kith_dot){0, 0}, NULL);
}

static int
touch(struct kith__applier *a, uint64_t hlc, kith_dot dot, const struct kith__op *op)
{
    int rc;

    if (a->touch_pending && a->touch_coll == op->coll && a->touch_doc.origin == op->doc.origin &&
        a->touch_doc.seq == op->doc.seq && a->touch_dot.origin == dot.origin) {
        a->touch_dot = dot; /* a later dot of the same origin supersedes the earlier touch */
        a->touch_hlc = hlc;
        return 0;
    }
    rc = kith__apply_flush(a);
    if (rc < 0)
        return rc;
    a->touch_pending = true;
    a->touch_coll = op->coll;
    a->touch_doc = op->doc;
    a->touch_dot = dot;
    a->touch_hlc = hlc;
    return 0;
}

static int
elem_apply(struct kith__applier *a, kith_dot dot, const struct kith__op *op)
{
    uint8_t kb[ELEM_KEY_MAX];
    size_t before, after, len = op->value.u.s.len;

    if (18 + len > ELEM_KEY_MAX)
        return kith__fail(a->r, KITH_ETOOBIG, "set element of %zu bytes is too long", len);
    kb[0] = op->coll;
    kith__dot_put(kb + 1, op->doc);
    kb[17] = op->field;
    if (len > 0)
        memcpy(kb + 18, op->value.u.s.ptr, len);
    if (a->voids) {
        int rc = voids_observed(a, VOID_ELEMS, kb, 18 + len, dot, op);
        if (rc < 0)
            return rc;
    }
    return dots_update(a, KITH__WC_NONE, VOID_ELEMS, a->elems_c, kb, 18 + len, op->observed,
                       op->nobserved, op->kind == KITH_OP_SET_ADD ? &dot : NULL, &before, &after);
}

static int
doc_apply(struct kith__applier *a, uint64_t hlc, kith_dot dot, const struct kith__op *op)
{
    uint8_t kb[DOC_KEY_BYTES];
    size_t before, after;
    int rc = kith__apply_flush(a);

    if (rc < 0)
        return rc;
    kb[0] = op->coll;
    kith__dot_put(kb + 1, op->doc);
    if (a->voids && (rc = voids_observed(a, VOID_DOCS, kb, sizeof kb, dot, op)) < 0)
        return rc;
    if (op->kind == KITH_OP_DOC_ADD)
        return dots_update(a, KITH__WC_DOCS, VOID_DOCS, a->docs_c, kb, sizeof kb, op->observed,
                           op->nobserved, &dot, &before, &after);
    rc = dots_update(a, KITH__WC_DOCS, VOID_DOCS, a->docs_c, kb, sizeof kb, op->observed,
                     op->nobserved, NULL, &before, &after);
    if (rc < 0 || after == 0)
        return rc;
    /* a dot the delete had not seen keeps the document: the delete was overruled */
    kith_dot survivor = kith__dot_get(a->scratch + (after - 1) * KITH__DOT_BYTES);
    return conflict_record(a, op->coll, op->doc, 0, 0, survivor, NULL, hlc, dot, NULL);
}

/* ---- counters and flags ------------------------------------------------------------------ */

static int
cursor_for(struct kith__applier *a, MDB_dbi dbi, MDB_cursor **c)
{
    int rc;
    if (*c != NULL)
        return 0;
    if (dbi == KITH__DBI_FREE)
        return kith__fail(a->r, KITH_EREADONLY, "a format-1 replica opened read-only");
    rc = kith__mdb_cursor_open(a->txn, dbi, c);
    return rc != 0 ? kith__mdb_err(rc) : 0;
}

/* A counter keeps one total per origin: coll | doc | field | origin -> total (8, BE,
 * two's complement). An increment adds to its origin's total; the value is the sum. */
static int
counter_apply(struct kith__applier *a, kith_dot dot, const struct kith__op *op)
{
    uint8_t kb[KITH__COUNT_KEY_BYTES], vb[8];
    const uint8_t *val;
    struct kith__wc_entry *ent;
    size_t vlen;
    bool found;
    int rc = cursor_for(a, a->r->counts, &a->counts_c);

    if (rc < 0)
        return rc;
    kb[0] = op->coll;
    kith__dot_put(kb + 1, op->doc);
    kb[17] = op->field;
    kith__be64_put(kb + 18, dot.origin);
    rc = kith__rec_get(a, KITH__WC_NONE, a->counts_c, kb, sizeof kb, &val, &vlen, &found, &ent);
    if (rc < 0)
        return rc;
    if (found && vlen != 8)
        return kith__fail(a->r, KITH_ECORRUPT, "counts: total of %zu bytes", vlen);
    /* unsigned: wrapping is defined, and the same on every replica */
    kith__be64_put(vb, (found ? kith__be64_get(val) : 0) + (uint64_t)op->value.u.i);
    return kith__rec_put(a, a->counts_c, kb, sizeof kb, vb, sizeof vb, found, ent);
}

/* A flag is the dot set of its enables: coll | doc | field -> dots. An enable adds its dot
 * and drops those it saw; a disable drops those it saw; set while any dot is left. */
static int
flag_apply(struct kith__applier *a, kith_dot dot, const struct kith__op *op)
{
    uint8_t kb[REG_KEY_BYTES];
    size_t before, after;
    int rc = cursor_for(a, a->r->flagdb, &a->flags_c);

    if (rc < 0)
        return rc;
    kb[0] = op->coll;
    kith__dot_put(kb + 1, op->doc);
    kb[17] = op->field;
    if (a->voids && (rc = voids_observed(a, VOID_FLAGS, kb, sizeof kb, dot, op)) < 0)
        return rc;
    return dots_update(a, KITH__WC_NONE, VOID_FLAGS, a->flags_c, kb, sizeof kb, op->observed,
                       op->nobserved, op->kind == KITH_OP_FLAG_ENABLE ? &dot : NULL, &before,
                       &after);
}

/* The interned name of local collection `coll`, looked up once per applier. */
static const char *
coll_name(struct kith__applier *a, uint8_t coll)
{
    if (!a->coll_names[coll] &&
        kith__names_name(a->r, a->txn, KITH__NAME_COLL, 0, coll, &a->coll_names[coll]) < 0)
        return NULL;
    return a->coll_names[coll];
}

int
kith__apply_op(struct kith__applier *a, uint64_t hlc, kith_dot dot, const struct kith__op *op)
{
    int rc;

    switch (op->kind) {
    case KITH_OP_FIELD_SET:
        rc = reg_apply(a, hlc, dot, op);
        break;
    case KITH_OP_SET_ADD:
    case KITH_OP_SET_REMOVE:
        rc = elem_apply(a, dot, op);
        break;
    case KITH_OP_COUNTER_ADD:
        rc = counter_apply(a, dot, op);
        break;
    case KITH_OP_FLAG_ENABLE:
    case KITH_OP_FLAG_DISABLE:
        rc = flag_apply(a, dot, op);
        break;
    case KITH_OP_DOC_ADD:
    case KITH_OP_DOC_REMOVE:
        rc = doc_apply(a, hlc, dot, op);
        break;
    default:
        return kith__fail(a->r, KITH_EMALFORMED, "op kind %u", op->kind);
    }
    if (rc == 0 && kith__op_has_field(op->kind))
        rc = touch(a, hlc, dot, op); /* an edit keeps its document alive (spec: TOUCH) */
    if (rc < 0 || a->ev == NULL)
        return rc;
    const char *name = coll_name(a, op->coll);
    return name ? kith__event_doc(a->ev, name, op->doc) : KITH_ENOMEM;
}

int
kith__apply_commit(struct kith__applier *a, struct kith__commit *c)
{
    int rc = kith__names_resolve(a, c);

    if (rc < 0)
        return rc;
    kith__wcache_prefetch(a, c);
    for (uint32_t i = 0; i < c->nops; i++) {
        kith_dot dot = {c->origin, c->first_seq + i};
        rc = kith__apply_op(a, c->hlc, dot, &c->ops[i]);
        if (rc < 0)
            return rc;
    }
    rc = kith__apply_flush(a);
    if (rc == 0 && a->nvoids > 0)
        rc = voids_passed(a, c->origin, c->first_seq, c->first_seq + c->nops - 1);
    return rc < 0 ? rc : kith__wcache_spill(a);
}

int
kith__conflict_decode(kith_replica *r, MDB_txn *txn, uint64_t id, const uint8_t *p, size_t len,
                      kith_conflict *out)
{
    size_t wn;
    int rc;

    memset(out, 0, sizeof *out);
    if (len < CONFLICT_HDR + 2)
        return KITH_ECORRUPT;
    wn = (size_t)p[75] << 24 | (size_t)p[76] << 16 | (size_t)p[77] << 8 | p[78];
    if (wn < 1 || wn > len - CONFLICT_HDR - 1)
        return KITH_ECORRUPT;
    rc = kith__names_name(r, txn, KITH__NAME_COLL, 0, p[0], &out->collection);
    if (rc == 0 && p[17] == 0)
        out->field = ""; /* the document itself: a delete overruled */
    else if (rc == 0)
        rc = kith__names_name(r, txn, KITH__NAME_FIELD, p[0], p[17], &out->field);
    if (rc < 0)
        return rc == KITH_ENOTFOUND ? KITH_ECORRUPT : rc;
    out->id = id;
    memcpy(out->doc.bytes, p + 1, KITH_DOCID_BYTES);
    out->resolved = p[18] != 0;
    out->recorded_ms = (int64_t)kith__be64_get(p + 19);
    out->winner_hlc = kith__be64_get(p + 27);
    out->winner_dot.origin = kith__be64_get(p + 35);
    out->winner_dot.seq = kith__be64_get(p + 43);
    out->loser_hlc = kith__be64_get(p + 51);
    out->loser_dot.origin = kith__be64_get(p + 59);
    out->loser_dot.seq = kith__be64_get(p + 67);
    rc = kith__value_load(p + CONFLICT_HDR, wn, &out->winner);
    if (rc == 0)
        rc = kith__value_load(p + CONFLICT_HDR + wn, len - CONFLICT_HDR - wn, &out->loser);
    return rc < 0 ? KITH_ECORRUPT : 0;
}
