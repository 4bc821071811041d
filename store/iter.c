/*
 * iter.c — reading the replica in order: the documents of a collection, the indexes, the
 * elements of a set field, the conflict records and the op log. Every iterator is one
 * struct kith_iter with a kind tag and one LMDB cursor inside the caller's transaction; it
 * walks a key range of one named database (store.h gives the layouts) and allocates nothing
 * per step. Conflicts are also resolved here, because resolving is reading a record and
 * writing it back, plus (to restore the loser) one ordinary field write; the transaction
 * remembers what it resolved so that kith_txn_commit marks it again (kith__conflicts_mark)
 * even when it has no op to commit or has to replay after growing the map.
 *
 * A range is a key prefix every entry must start with, an inclusive lower key to seek to and
 * an exclusive upper key to stop at (spec/storage.md, "index"). Index entries exist for dead
 * documents too (store.h), so index iteration checks membership for each entry. Views handed
 * out (set elements, log values, conflict values) point into LMDB pages: valid until the
 * transaction ends, or until a write in it.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

/* Longest range key: idx(1) + contact(16) + at(8), or idx(1) + a name (max_len bytes).
 * LMDB's default key limit is 511 bytes, so no key can be longer than this. */
#define ITER_KEY_MAX 512

enum iter_kind { ITER_DOCS = 1, ITER_INDEX, ITER_SET, ITER_CONFLICTS, ITER_LOG };

struct kith_iter {
    enum iter_kind kind;
    kith_txn *t;
    MDB_cursor *cur;
    bool started; /* the cursor has been positioned */
    bool done;    /* the range is exhausted */
    /* docs, index, set: the key range */
    uint8_t prefix[ITER_KEY_MAX];
    size_t prefix_len;
    uint8_t lo[ITER_KEY_MAX]; /* first key to seek to (starts with prefix) */
    size_t lo_len;
    uint8_t hi[ITER_KEY_MAX]; /* exclusive bound, when has_hi */
    size_t hi_len;
    bool has_hi;
    /* index: the collection whose membership decides liveness, and a filter on `at` for
     * interactions.contact without a contact (the range is then not one key interval) */
    int coll;
    bool filter_at;
    bool has_at_lo, has_at_hi;
    int64_t at_lo, at_hi;
    /* conflicts */
    bool include_resolved;
    /* log: the decoded commit being expanded into entries */
    uint64_t origin; /* 0: every origin */
    struct kith__arena arena;
    struct kith__commit commit;
    uint32_t next_op; /* index in commit.ops of the next entry */
    bool have_commit;
    uint8_t chain[KITH_HASH_BYTES];
    uint64_t state_origin; /* origin whose `applied` is cached below */
    uint64_t state_applied;
    bool have_state;
};

/* Sign-flipped big-endian: signed order becomes byte order (store.h, index keys). */
static void
put_time_key(uint8_t *p, int64_t ms)
{
    kith__be64_put(p, (uint64_t)ms ^ 0x8000000000000000ull);
}

static int64_t
get_time_key(const uint8_t *p)
{
    return (int64_t)(kith__be64_get(p) ^ 0x8000000000000000ull);
}

static int
txn_check(kith_txn *t)
{
    if (!t || !t->txn)
        return KITH_EINVAL;
    if (t->failed)
        return KITH_EBADTXN;
    return 0;
}

static int
iter_new(kith_txn *t, enum iter_kind kind, MDB_dbi dbi, kith_iter **out)
{
    kith_iter *it;
    int rc;

    it = calloc(1, sizeof(*it));
    if (!it)
        return KITH_ENOMEM;
    it->kind = kind;
    it->t = t;
    it->coll = -1;
    rc = kith__mdb_err(kith__mdb_cursor_open(t->txn, dbi, &it->cur));
    if (rc < 0) {
        free(it);
        return rc;
    }
    *out = it;
    return 0;
}

void
kith_iter_close(kith_iter *it)
{
    if (!it)
        return;
    mdb_cursor_close(it->cur);
    kith__arena_free(&it->arena);
    free(it);
}

/*
 * Step the cursor to the next key in the iterator's range, or set done. Returns 0 with the
 * key and value in k/v, KITH_ENOTFOUND at the end, or an error.
 */
static int
range_next(kith_iter *it, MDB_val *k, MDB_val *v)
{
    int mrc;

    if (it->done)
        return KITH_ENOTFOUND;
    if (!it->started) {
        k->mv_data = it->lo;
        k->mv_size = it->lo_len;
        mrc = it->lo_len ? kith__mdb_cursor_get(it->cur, k, v, MDB_SET_RANGE)
                         : kith__mdb_cursor_get(it->cur, k, v, MDB_FIRST);
        it->started = true;
    } else {
        mrc = kith__mdb_cursor_get(it->cur, k, v, MDB_NEXT);
    }
    if (mrc == MDB_NOTFOUND)
        goto end;
    if (mrc != 0)
        return kith__mdb_err(mrc);
    if (k->mv_size < it->prefix_len || memcmp(k->mv_data, it->prefix, it->prefix_len) != 0)
        goto end;
    if (it->has_hi) {
        size_t n = k->mv_size < it->hi_len ? k->mv_size : it->hi_len;
        int c = memcmp(k->mv_data, it->hi, n);

        if (c > 0 || (c == 0 && k->mv_size >= it->hi_len))
            goto end;
    }
    return 0;
end:
    it->done = true;
    return KITH_ENOTFOUND;
}

/* ---- documents ------------------------------------------------------------------------ */

int
kith_iter_docs(kith_txn *t, const char *collection, kith_iter **out)
{
    kith_iter *it;
    int coll, rc;

    if (!out)
        return KITH_EINVAL;
    *out = NULL;
    if ((rc = txn_check(t)) < 0)
        return rc;
    if (!collection)
        return KITH_EINVAL;
    coll = kith__schema_coll(collection);
    if (coll < 0)
        return kith__fail(t->r, KITH_ENOTFOUND, "no collection \"%s\"", collection);
    rc = iter_new(t, ITER_DOCS, t->r->docs, &it);
    if (rc < 0)
        return rc;
    it->coll = coll;
    it->prefix[0] = (uint8_t)coll;
    it->prefix_len = 1;
    it->lo[0] = (uint8_t)coll;
    it->lo_len = 1;
    *out = it;
    return 0;
}

/* Is document `doc` (16 bytes) of collection `coll` live? 1, 0, or an error. */
static int
doc_live(kith_txn *t, int coll, const uint8_t *doc)
{
    uint8_t key[1 + KITH_DOCID_BYTES];
    MDB_val k = {sizeof(key), key}, v;
    int mrc;

    key[0] = (uint8_t)coll;
    memcpy(key + 1, doc, KITH_DOCID_BYTES);
    mrc = kith__mdb_get(t->txn, t->r->docs, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return 0;
    return mrc == 0 ? 1 : kith__mdb_err(mrc);
}

/* ---- indexes -------------------------------------------------------------------------- */

static bool
is_time(const kith_value *v)
{
    return v->type == KITH_TYPE_TIME || v->type == KITH_TYPE_INT;
}

/* Fill the range of contacts.name: names in [lo, hi). */
static int
range_name(kith_iter *it, const kith_value *lo, const kith_value *hi)
{
    const kith_value *b[2] = {lo, hi};

    for (int i = 0; i < 2; i++)
        if (b[i] && (b[i]->type != KITH_TYPE_STRING || b[i]->u.s.len >= ITER_KEY_MAX - 1 ||
                     (b[i]->u.s.len && !b[i]->u.s.ptr)))
            return KITH_EINVAL;
    it->prefix[0] = KITH__IDX_CONTACTS_NAME;
    it->prefix_len = 1;
    it->lo[0] = KITH__IDX_CONTACTS_NAME;
    it->lo_len = 1;
    /* Names hold no NUL and are followed by 0x00 in the key, so key order is name order and
     * idx | lo is the first key of a name >= lo, idx | hi the first of a name >= hi. */
    if (lo && lo->u.s.len) {
        memcpy(it->lo + 1, lo->u.s.ptr, lo->u.s.len);
        it->lo_len += lo->u.s.len;
    }
    if (hi) {
        it->hi[0] = KITH__IDX_CONTACTS_NAME;
        if (hi->u.s.len)
            memcpy(it->hi + 1, hi->u.s.ptr, hi->u.s.len);
        it->hi_len = 1 + hi->u.s.len;
        it->has_hi = true;
    }
    return 0;
}

/* Fill the range of a time-keyed index after `base` (idx, or idx | contact). */
static void
range_time(kith_iter *it, const uint8_t *base, size_t base_len, const kith_value *lo,
           const kith_value *hi)
{
    memcpy(it->prefix, base, base_len);
    it->prefix_len = base_len;
    memcpy(it->lo, base, base_len);
    it->lo_len = base_len;
    if (lo) {
        put_time_key(it->lo + base_len, lo->u.i);
        it->lo_len += 8;
    }
    if (hi) {
        memcpy(it->hi, base, base_len);
        put_time_key(it->hi + base_len, hi->u.i);
        it->hi_len = base_len + 8;
        it->has_hi = true;
    }
}

int
kith_iter_index(kith_txn *t, const char *index, const kith_value *eq, const kith_value *lo,
                const kith_value *hi, kith_iter **out)
{
    uint8_t base[1 + KITH_DOCID_BYTES];
    kith_iter *it;
    int rc;

    if (!out)
        return KITH_EINVAL;
    *out = NULL;
    if ((rc = txn_check(t)) < 0)
        return rc;
    if (!index)
        return KITH_EINVAL;
    rc = iter_new(t, ITER_INDEX, t->r->index, &it);
    if (rc < 0)
        return rc;
    if (strcmp(index, "contacts.name") == 0) {
        it->coll = kith__schema_coll("contacts");
        rc = eq ? KITH_EINVAL : range_name(it, lo, hi);
    } else if (strcmp(index, "interactions.contact") == 0) {
        it->coll = kith__schema_coll("interactions");
        if ((eq && eq->type != KITH_TYPE_REF) || (lo && !is_time(lo)) || (hi && !is_time(hi))) {
            rc = KITH_EINVAL;
        } else if (eq) {
            base[0] = KITH__IDX_INTERACTIONS_CONTACT;
            memcpy(base + 1, eq->u.ref.bytes, KITH_DOCID_BYTES);
            range_time(it, base, sizeof(base), lo, hi);
        } else {
            /* Without a contact the times are not one interval: filter them. */
            base[0] = KITH__IDX_INTERACTIONS_CONTACT;
            range_time(it, base, 1, NULL, NULL);
            it->filter_at = true;
            it->has_at_lo = lo != NULL;
            it->has_at_hi = hi != NULL;
            it->at_lo = lo ? lo->u.i : 0;
            it->at_hi = hi ? hi->u.i : 0;
        }
    } else if (strcmp(index, "reminders.due") == 0) {
        it->coll = kith__schema_coll("reminders");
        if (eq || (lo && !is_time(lo)) || (hi && !is_time(hi))) {
            rc = KITH_EINVAL;
        } else {
            base[0] = KITH__IDX_REMINDERS_DUE;
            range_time(it, base, 1, lo, hi);
        }
    } else {
        kith_iter_close(it);
        return kith__fail(t->r, KITH_ENOTFOUND, "no index \"%s\"", index);
    }
    if (rc == 0 && it->coll < 0)
        rc = KITH_ECORRUPT; /* the built-in schema lacks the collection: cannot happen */
    if (rc < 0) {
        kith_iter_close(it);
        return kith__fail(t->r, rc, "bad bounds for index \"%s\"", index);
    }
    *out = it;
    return 0;
}

int
kith_iter_next(kith_iter *it, kith_docid *doc)
{
    MDB_val k, v;
    int rc;

    if (!it || !doc || (it->kind != ITER_DOCS && it->kind != ITER_INDEX))
        return KITH_EINVAL;
    for (;;) {
        const uint8_t *id;

        rc = range_next(it, &k, &v);
        if (rc < 0)
            return rc;
        if (k.mv_size < it->prefix_len + KITH_DOCID_BYTES)
            return kith__fail(it->t->r, KITH_ECORRUPT, "short key in a docs or index range");
        id = (const uint8_t *)k.mv_data + k.mv_size - KITH_DOCID_BYTES;
        if (it->kind == ITER_INDEX) {
            if (it->filter_at) {
                int64_t at;

                if (k.mv_size != 1 + KITH_DOCID_BYTES + 8 + KITH_DOCID_BYTES)
                    return kith__fail(it->t->r, KITH_ECORRUPT, "interactions index key");
                at = get_time_key((const uint8_t *)k.mv_data + 1 + KITH_DOCID_BYTES);
                if ((it->has_at_lo && at < it->at_lo) || (it->has_at_hi && at >= it->at_hi))
                    continue;
            }
            rc = doc_live(it->t, it->coll, id);
            if (rc < 0)
                return rc;
            if (rc == 0)
                continue;
        }
        memcpy(doc->bytes, id, KITH_DOCID_BYTES);
        return 0;
    }
}

/* ---- set elements --------------------------------------------------------------------- */

int
kith_iter_set(kith_txn *t, const char *collection, const kith_docid *doc, const char *field,
              kith_iter **out)
{
    const kith_field_def *def;
    kith_iter *it;
    int coll, fld, rc;

    if (!out)
        return KITH_EINVAL;
    *out = NULL;
    if ((rc = txn_check(t)) < 0)
        return rc;
    if (!collection || !doc || !field)
        return KITH_EINVAL;
    coll = kith__schema_coll(collection);
    if (coll < 0)
        return kith__fail(t->r, KITH_ENOTFOUND, "no collection \"%s\"", collection);
    fld = kith__schema_field(coll, field);
    if (fld < 0)
        return kith__fail(t->r, KITH_ENOTFOUND, "no field \"%s\" in %s", field, collection);
    def = kith__schema_field_def(coll, fld);
    if (!def || def->type != KITH_TYPE_SET)
        return kith__fail(t->r, KITH_EINVAL, "%s.%s is not a set", collection, field);
    rc = doc_live(t, coll, doc->bytes);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return kith__fail(t->r, KITH_ENOTFOUND, "no such document in %s", collection);
    rc = iter_new(t, ITER_SET, t->r->elems, &it);
    if (rc < 0)
        return rc;
    it->prefix[0] = (uint8_t)coll;
    memcpy(it->prefix + 1, doc->bytes, KITH_DOCID_BYTES);
    it->prefix[1 + KITH_DOCID_BYTES] = (uint8_t)fld;
    it->prefix_len = 2 + KITH_DOCID_BYTES;
    memcpy(it->lo, it->prefix, it->prefix_len);
    it->lo_len = it->prefix_len;
    *out = it;
    return 0;
}

int
kith_iter_next_elem(kith_iter *it, const char **elem, size_t *len)
{
    MDB_val k, v;
    int rc;

    if (!it || !elem || !len || it->kind != ITER_SET)
        return KITH_EINVAL;
    rc = range_next(it, &k, &v);
    if (rc < 0)
        return rc;
    *elem = (const char *)k.mv_data + it->prefix_len;
    *len = k.mv_size - it->prefix_len;
    return 0;
}

/* ---- conflicts ------------------------------------------------------------------------ */

/* The resolved flag's offset in a conflict record (store.h, conflicts); the record is
 * decoded by kith__conflict_decode (store/apply.c), which the observers share. */
#define CF_RESOLVED 18

int
kith_iter_conflicts(kith_txn *t, bool include_resolved, kith_iter **out)
{
    kith_iter *it;
    int rc;

    if (!out)
        return KITH_EINVAL;
    *out = NULL;
    if ((rc = txn_check(t)) < 0)
        return rc;
    rc = iter_new(t, ITER_CONFLICTS, t->r->conflicts, &it);
    if (rc < 0)
        return rc;
    it->include_resolved = include_resolved;
    *out = it;
    return 0;
}

int
kith_iter_next_conflict(kith_iter *it, kith_conflict *out)
{
    MDB_val k, v;
    int rc;

    if (!it || !out || it->kind != ITER_CONFLICTS)
        return KITH_EINVAL;
    for (;;) {
        uint64_t id;

        rc = range_next(it, &k, &v);
        if (rc < 0)
            return rc;
        if (k.mv_size != 8)
            return kith__fail(it->t->r, KITH_ECORRUPT, "conflict key of %zu bytes", k.mv_size);
        id = kith__be64_get(k.mv_data);
        rc = kith__conflict_decode(id, v.mv_data, v.mv_size, out);
        if (rc < 0)
            return kith__fail(it->t->r, rc, "conflict record %llu is damaged",
                              (unsigned long long)id);
        if (out->resolved && !it->include_resolved)
            continue;
        return 0;
    }
}

/* Read conflict `id` in `t`: the record's bytes in *val (a view). */
static int
conflict_raw(kith_txn *t, uint64_t id, uint8_t key[8], MDB_val *val)
{
    MDB_val k = {8, key};
    int mrc;

    kith__be64_put(key, id);
    mrc = kith__mdb_get(t->txn, t->r->conflicts, &k, val);
    if (mrc == MDB_NOTFOUND)
        return kith__fail(t->r, KITH_ENOTFOUND, "no conflict %llu", (unsigned long long)id);
    return kith__mdb_err(mrc);
}

int
kith_conflict_get(kith_txn *t, uint64_t id, kith_conflict *out)
{
    uint8_t key[8];
    MDB_val v;
    int rc;

    if (!out)
        return KITH_EINVAL;
    if ((rc = txn_check(t)) < 0)
        return rc;
    rc = conflict_raw(t, id, key, &v);
    if (rc < 0)
        return rc;
    rc = kith__conflict_decode(id, v.mv_data, v.mv_size, out);
    if (rc < 0)
        return kith__fail(t->r, rc, "conflict record %llu is damaged", (unsigned long long)id);
    return 0;
}

/* Set the resolved byte of conflict `id` in t->txn; a record that is gone is left alone. */
static int
conflict_mark(kith_txn *t, uint64_t id)
{
    uint8_t key[8], *copy;
    MDB_val k = {8, key}, v;
    int rc, mrc;

    kith__be64_put(key, id);
    mrc = kith__mdb_get(t->txn, t->r->conflicts, &k, &v);
    if (mrc == MDB_NOTFOUND)
        return 0;
    if (mrc != 0)
        return kith__mdb_err(mrc);
    if (v.mv_size <= CF_RESOLVED)
        return kith__fail(t->r, KITH_ECORRUPT, "conflict record %llu is damaged",
                          (unsigned long long)id);
    if (((const uint8_t *)v.mv_data)[CF_RESOLVED] == 1)
        return 0;
    copy = malloc(v.mv_size);
    if (!copy)
        return KITH_ENOMEM;
    memcpy(copy, v.mv_data, v.mv_size);
    copy[CF_RESOLVED] = 1;
    v.mv_data = copy;
    rc = kith__mdb_err(kith__mdb_put(t->txn, t->r->conflicts, &k, &v, 0));
    free(copy);
    return rc;
}

int
kith__conflicts_mark(kith_txn *t)
{
    for (size_t i = 0; i < t->nresolved; i++) {
        int rc = conflict_mark(t, t->resolved[i]);

        if (rc < 0)
            return rc;
    }
    return 0;
}

int
kith_conflict_resolve(kith_txn *t, uint64_t id, bool restore_loser)
{
    kith_conflict c;
    uint8_t key[8], *copy;
    MDB_val v;
    int rc;

    if ((rc = txn_check(t)) < 0)
        return rc;
    if (!(t->flags & KITH_TXN_WRITE))
        return kith__fail(t->r, KITH_EREADONLY, "resolving a conflict needs a write txn");
    rc = conflict_raw(t, id, key, &v);
    if (rc < 0)
        return rc;
    /* The loser's value is a view into the record: copy it before a write in this txn can
     * move the page it lives on. */
    copy = malloc(v.mv_size);
    if (!copy)
        return KITH_ENOMEM;
    memcpy(copy, v.mv_data, v.mv_size);
    rc = kith__conflict_decode(id, copy, v.mv_size, &c);
    if (rc < 0) {
        rc = kith__fail(t->r, rc, "conflict record %llu is damaged", (unsigned long long)id);
        goto out_copy;
    }
    if (t->nresolved == t->capresolved) {
        size_t cap = t->capresolved ? t->capresolved * 2 : 4;
        uint64_t *grown = realloc(t->resolved, cap * sizeof(*grown));

        if (!grown) {
            rc = KITH_ENOMEM;
            goto out_copy;
        }
        t->resolved = grown;
        t->capresolved = cap;
    }
    if (restore_loser) {
        if (c.field[0]) {
            rc = kith_field_set(t, c.collection, &c.doc, c.field, &c.loser);
        } else {
            /* The loser was a delete: restoring it deletes the document again. */
            rc = kith_doc_exists(t, c.collection, &c.doc);
            if (rc == 1)
                rc = kith_doc_delete(t, c.collection, &c.doc);
        }
        if (rc < 0)
            goto out_copy; /* the failed write already left t able only to abort */
    }
    /* Marked now, so reads in this txn see it, and again by kith_txn_commit, which may have
     * to replay the transaction after growing the map. */
    rc = conflict_mark(t, id);
    if (rc < 0) {
        t->failed = true;
        goto out_copy;
    }
    t->resolved[t->nresolved++] = id;
out_copy:
    free(copy);
    return rc;
}

/* ---- the op log ----------------------------------------------------------------------- */

int
kith_iter_log(kith_txn *t, uint64_t origin, kith_iter **out)
{
    kith_iter *it;
    int rc;

    if (!out)
        return KITH_EINVAL;
    *out = NULL;
    if ((rc = txn_check(t)) < 0)
        return rc;
    rc = iter_new(t, ITER_LOG, t->r->log, &it);
    if (rc < 0)
        return rc;
    it->origin = origin;
    if (origin != 0) {
        kith__be64_put(it->prefix, origin);
        it->prefix_len = 8;
        memcpy(it->lo, it->prefix, 8);
        it->lo_len = 8;
    }
    *out = it;
    return 0;
}

/* Decode the next commit of the range into it->commit; KITH_ENOTFOUND at the end. */
static int
log_load(kith_iter *it)
{
    char why[128] = "";
    MDB_val k, v;
    uint64_t origin, first;
    const uint8_t *p;
    int rc;

    rc = range_next(it, &k, &v);
    if (rc < 0)
        return rc;
    if (k.mv_size != 16 || v.mv_size < KITH__LOG_HDR_BYTES)
        return kith__fail(it->t->r, KITH_ECORRUPT, "log record of %zu bytes", v.mv_size);
    origin = kith__be64_get(k.mv_data);
    first = kith__be64_get((const uint8_t *)k.mv_data + 8);
    p = v.mv_data;
    kith__arena_reset(&it->arena);
    rc = kith__commit_decode(p + KITH__LOG_HDR_BYTES, v.mv_size - KITH__LOG_HDR_BYTES, origin,
                             first, &it->commit, &it->arena, why, sizeof(why));
    if (rc < 0)
        return kith__fail(it->t->r, rc == KITH_ENOMEM ? rc : KITH_ECORRUPT,
                          "logged commit %016llx:%llu does not decode: %s",
                          (unsigned long long)origin, (unsigned long long)first, why);
    if (it->commit.nops == 0 || it->commit.nops != ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                                                    (uint32_t)p[2] << 8 | p[3]))
        return kith__fail(it->t->r, KITH_ECORRUPT, "logged commit %016llx:%llu op count",
                          (unsigned long long)origin, (unsigned long long)first);
    memcpy(it->chain, p + 4, KITH_HASH_BYTES);
    if (!it->have_state || it->state_origin != origin) {
        struct kith__origin_state st;

        rc = kith__origin_get(it->t->r, it->t->txn, origin, &st);
        if (rc < 0)
            return rc;
        it->state_origin = origin;
        it->state_applied = st.applied;
        it->have_state = true;
    }
    it->next_op = 0;
    it->have_commit = true;
    return 0;
}

int
kith_iter_next_log(kith_iter *it, kith_log_entry *out)
{
    const struct kith__op *op;
    const kith_collection_def *cdef;
    int rc;

    if (!it || !out || it->kind != ITER_LOG)
        return KITH_EINVAL;
    if (!it->have_commit || it->next_op >= it->commit.nops) {
        it->have_commit = false;
        rc = log_load(it);
        if (rc < 0)
            return rc;
    }
    op = &it->commit.ops[it->next_op];
    memset(out, 0, sizeof(*out));
    out->dot.origin = it->commit.origin;
    out->dot.seq = it->commit.first_seq + it->next_op;
    out->hlc = it->commit.hlc;
    out->kind = (kith_op_kind)op->kind;
    cdef = kith__schema_coll_def(op->coll);
    if (!cdef)
        return kith__fail(it->t->r, KITH_ECORRUPT, "logged op names collection %u", op->coll);
    out->collection = cdef->name;
    kith__docid_from_dot(&out->doc, op->doc);
    if (op->field != 0) {
        const kith_field_def *fdef = kith__schema_field_def(op->coll, op->field);

        if (!fdef)
            return kith__fail(it->t->r, KITH_ECORRUPT, "logged op names field %u", op->field);
        out->field = fdef->name;
    }
    if (op->kind == KITH_OP_FIELD_SET || op->kind == KITH_OP_SET_ADD ||
        op->kind == KITH_OP_SET_REMOVE)
        out->value = op->value;
    else
        out->value.type = KITH_TYPE_NULL;
    out->replaced = op->replaced;
    out->commit_end = it->next_op + 1 == it->commit.nops;
    if (out->commit_end)
        memcpy(out->chain, it->chain, KITH_HASH_BYTES);
    out->applied = out->dot.seq <= it->state_applied;
    it->next_op++;
    return 0;
}
