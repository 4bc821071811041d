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
#include "schema.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

/* Longest range key: idx(1) + contact(16) + at(8), or idx(1) + a name (max_len bytes).
 * LMDB's default key limit is 511 bytes, so no key can be longer than this. */
#define ITER_KEY_MAX 512

enum iter_kind {
    ITER_DOCS = 1,
    ITER_INDEX,
    ITER_SET,
    ITER_CONFLICTS,
    ITER_LOG,
    ITER_FIELDS,
    ITER_JOURNAL
};

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
    /* index: the collection whose membership decides liveness, and a filter on the second
     * part of a two-field index iterated without its first (the range is then not one key
     * interval): the first part's type says where the second begins */
    int coll;
    bool filter;
    kith_type first_type;
    uint8_t flo[ITER_KEY_MAX], fhi[ITER_KEY_MAX];
    size_t flo_len, fhi_len;
    bool has_flo, has_fhi;
    /* fields: the document's fields, gathered and sorted at open */
    kith_field_entry *fields;
    size_t nfields, next_field;
    /* conflicts */
    bool include_resolved;
    /* log: the decoded commit being expanded into entries */
    uint64_t origin; /* 0: every origin */
    struct kith__arena arena;
    struct kith__commit commit;
    uint32_t next_op; /* index in commit.ops of the next entry */
    bool have_commit;
    uint8_t chain[KITH_HASH_BYTES];
    const char *log_names[2]; /* the interned names of the last entry, and their indexes */
    uint16_t log_cname, log_fname;
    uint64_t state_origin; /* origin whose `applied` is cached below */
    uint64_t state_applied;
    bool have_state;
    uint64_t journal_word; /* journal: the entry's set-aside time and restored bit */
};

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
    free(it->fields);
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

/* The local number of a collection declared or seen in ops, or KITH_ENOTFOUND. */
static int
coll_number(kith_txn *t, const char *collection)
{
    uint8_t coll;
    int rc = kith__names_get(t->r, t->txn, NULL, KITH__NAME_COLL, 0, collection, strlen(collection),
                             false, &coll);
    if (rc == KITH_ENOTFOUND)
        return kith__fail(t->r, KITH_ENOTFOUND, "no collection \"%s\"", collection);
    return rc < 0 ? rc : coll;
}

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
    if ((coll = coll_number(t, collection)) < 0)
        return coll;
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
text_like(kith_type t)
{
    return t == KITH_TYPE_STRING || t == KITH_TYPE_DATE || t == KITH_TYPE_ENUM ||
           t == KITH_TYPE_BYTES;
}

/* Does a bound of type `have` fit a part of type `want`? Times and integers bound each other. */
static bool
bound_fits(kith_type have, kith_type want)
{
    bool num_have = have == KITH_TYPE_TIME || have == KITH_TYPE_INT;
    bool num_want = want == KITH_TYPE_TIME || want == KITH_TYPE_INT;
    return have == want || (num_have && num_want);
}

/* A bound's bytes in the index: text without its 0x00 end (so that every text >= the bound
 * sorts at or after it), anything else in its index-key form. 0 when it does not fit. */
static size_t
bound_key(const kith_value *v, uint8_t *out, size_t cap)
{
    if (text_like(v->type)) {
        if (v->u.s.len > cap || v->u.s.len >= 400 || (v->u.s.len && !v->u.s.ptr))
            return 0;
        if (v->u.s.len)
            memcpy(out, v->u.s.ptr, v->u.s.len);
        return v->u.s.len;
    }
    const struct kith__type *ty = kith__type_of(v->type);
    return ty && v->type != KITH_TYPE_NULL ? ty->index_key(v, out, cap) : 0;
}

/* Is the key's last part (after the first, which has type it->first_type) within the
 * filter's [flo, fhi)? */
static int
filter_pass(const kith_iter *it, const uint8_t *key, size_t len)
{
    size_t at = 1, end = len - KITH_DOCID_BYTES;
    if (text_like(it->first_type)) {
        const uint8_t *z = memchr(key + 1, 0, end - 1);
        if (!z)
            return KITH_ECORRUPT;
        at = (size_t)(z - key) + 1;
    } else {
        at += it->first_type == KITH_TYPE_REF ? 16 : it->first_type == KITH_TYPE_BOOL ? 1 : 8;
    }
    if (at > end)
        return KITH_ECORRUPT;
    const uint8_t *p = key + at;
    size_t n = end - at;
    if (it->has_flo) {
        size_t m = n < it->flo_len ? n : it->flo_len;
        int c = memcmp(p, it->flo, m);
        if (c < 0 || (c == 0 && n < it->flo_len))
            return 0;
    }
    if (it->has_fhi) {
        size_t m = n < it->fhi_len ? n : it->fhi_len;
        int c = memcmp(p, it->fhi, m);
        if (c > 0 || (c == 0 && n >= it->fhi_len))
            return 0;
    }
    return 1;
}

int
kith_iter_index(kith_txn *t, const char *index, const kith_value *eq, const kith_value *lo,
                const kith_value *hi, kith_iter **out)
{
    const struct kith__sschema *ss;
    const struct kith__coll_decl *cd = NULL;
    const struct kith__index_decl *id = NULL;
    const char *dot;
    uint8_t coll, idx;
    kith_type last;
    kith_iter *it;
    size_t n;
    int rc;

    if (!out)
        return KITH_EINVAL;
    *out = NULL;
    if ((rc = txn_check(t)) < 0)
        return rc;
    if (!index)
        return KITH_EINVAL;
    dot = strchr(index, '.');
    if ((rc = kith__schema_current(t->r, t->txn, &ss)) < 0)
        return rc;
    if (dot && ss->decl && (cd = kith__schema_find(ss->decl, index, (size_t)(dot - index))))
        id = kith__coll_index(cd, dot + 1, strlen(dot + 1));
    if (!id)
        return kith__fail(t->r, KITH_ENOTFOUND, "no index \"%s\"", index);
    rc = kith__names_get(t->r, t->txn, NULL, KITH__NAME_COLL, 0, cd->name, strlen(cd->name), false,
                         &coll);
    if (rc == 0)
        rc = kith__names_get(t->r, t->txn, NULL, KITH__NAME_INDEX, coll, id->name, strlen(id->name),
                             false, &idx);
    if (rc < 0)
        return kith__fail(t->r, rc == KITH_ENOTFOUND ? KITH_ECORRUPT : rc,
                          "index \"%s\" is declared but not kept", index);
    last = cd->fields[id->parts[id->nparts - 1]].type;
    if ((eq && (id->nparts != 2 || !bound_fits(eq->type, cd->fields[id->parts[0]].type))) ||
        (lo && !bound_fits(lo->type, last)) || (hi && !bound_fits(hi->type, last)))
        return kith__fail(t->r, KITH_EINVAL, "bad bounds for index \"%s\"", index);
    rc = iter_new(t, ITER_INDEX, t->r->index, &it);
    if (rc < 0)
        return rc;
    it->coll = coll;
    it->prefix[0] = idx;
    it->prefix_len = 1;
    if (eq) {
        const struct kith__type *ty = kith__type_of(eq->type);
        n = ty && eq->type != KITH_TYPE_NULL ? ty->index_key(eq, it->prefix + 1, 247) : 0;
        if (n == 0)
            rc = KITH_EINVAL;
        it->prefix_len += n;
    }
    memcpy(it->lo, it->prefix, it->prefix_len);
    it->lo_len = it->prefix_len;
    if (id->nparts == 2 && !eq && (lo || hi)) {
        /* without the first part the last part's values are not one interval: filter them */
        it->filter = true;
        it->first_type = cd->fields[id->parts[0]].type;
        if (lo && (it->has_flo = true) && !(it->flo_len = bound_key(lo, it->flo, 247)) &&
            !text_like(lo->type))
            rc = KITH_EINVAL;
        if (hi && (it->has_fhi = true) && !(it->fhi_len = bound_key(hi, it->fhi, 247)) &&
            !text_like(hi->type))
            rc = KITH_EINVAL;
    } else {
        if (lo) {
            n = bound_key(lo, it->lo + it->lo_len, ITER_KEY_MAX - it->lo_len - 1);
            if (n == 0 && !text_like(lo->type))
                rc = KITH_EINVAL;
            it->lo_len += n;
        }
        if (hi) {
            memcpy(it->hi, it->prefix, it->prefix_len);
            n = bound_key(hi, it->hi + it->prefix_len, ITER_KEY_MAX - it->prefix_len - 1);
            if (n == 0 && !text_like(hi->type))
                rc = KITH_EINVAL;
            it->hi_len = it->prefix_len + n;
            it->has_hi = true;
        }
    }
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
            if (it->filter) {
                rc = filter_pass(it, k.mv_data, k.mv_size);
                if (rc < 0)
                    return kith__fail(it->t->r, KITH_ECORRUPT, "an index key is damaged");
                if (rc == 0)
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
    const struct kith__sschema *ss;
    const struct kith__coll_decl *cd;
    const struct kith__field_decl *fd = NULL;
    kith_iter *it;
    uint8_t fld;
    int coll, rc;

    if (!out)
        return KITH_EINVAL;
    *out = NULL;
    if ((rc = txn_check(t)) < 0)
        return rc;
    if (!collection || !doc || !field)
        return KITH_EINVAL;
    if ((coll = coll_number(t, collection)) < 0)
        return coll;
    if ((rc = kith__schema_current(t->r, t->txn, &ss)) < 0)
        return rc;
    if (ss->decl && (cd = kith__schema_find(ss->decl, collection, strlen(collection))))
        fd = kith__coll_field(cd, field, strlen(field));
    if (fd && fd->crdt != KITH__CRDT_SET)
        return kith__fail(t->r, KITH_EINVAL, "%s.%s is not a set", collection, field);
    rc = kith__names_get(t->r, t->txn, NULL, KITH__NAME_FIELD, (uint8_t)coll, field, strlen(field),
                         false, &fld);
    if (rc == KITH_ENOTFOUND)
        return kith__fail(t->r, KITH_ENOTFOUND, "no field \"%s\" in %s", field, collection);
    if (rc < 0)
        return rc;
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
    it->prefix[1 + KITH_DOCID_BYTES] = fld;
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
        rc = kith__conflict_decode(it->t->r, it->t->txn, id, v.mv_data, v.mv_size, out);
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
    rc = kith__conflict_decode(t->r, t->txn, id, v.mv_data, v.mv_size, out);
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
    rc = kith__conflict_decode(t->r, t->txn, id, copy, v.mv_size, &c);
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

int
kith__log_decode(kith_replica *r, const MDB_val *k, const MDB_val *v, struct kith__commit *c,
                 struct kith__arena *arena)
{
    char why[128] = "";
    uint64_t origin, first;
    const uint8_t *p = v->mv_data;
    int rc;

    if (k->mv_size != 16 || v->mv_size < KITH__LOG_HDR_BYTES)
        return kith__fail(r, KITH_ECORRUPT, "log record of %zu bytes", v->mv_size);
    origin = kith__be64_get(k->mv_data);
    first = kith__be64_get((const uint8_t *)k->mv_data + 8);
    kith__arena_reset(arena);
    rc = kith__commit_decode(p + KITH__LOG_HDR_BYTES, v->mv_size - KITH__LOG_HDR_BYTES, origin,
                             first, c, arena, why, sizeof(why));
    if (rc < 0)
        return kith__fail(r, rc == KITH_ENOMEM ? rc : KITH_ECORRUPT,
                          "logged commit %016llx:%llu does not decode: %s",
                          (unsigned long long)origin, (unsigned long long)first, why);
    if (c->nops == 0 ||
        c->nops != ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]))
        return kith__fail(r, KITH_ECORRUPT, "logged commit %016llx:%llu op count",
                          (unsigned long long)origin, (unsigned long long)first);
    return 0;
}

/* Decode the next commit of the range into it->commit; KITH_ENOTFOUND at the end. */
static int
log_load(kith_iter *it)
{
    MDB_val k, v;
    uint64_t origin;
    int rc;

    do /* the journal also keeps the documents its restores made: longer keys */
        rc = range_next(it, &k, &v);
    while (rc == 0 && it->kind == ITER_JOURNAL && k.mv_size != 16);
    if (rc < 0)
        return rc;
    rc = kith__log_decode(it->t->r, &k, &v, &it->commit, &it->arena);
    if (rc < 0)
        return rc;
    origin = it->commit.origin;
    memcpy(it->chain, (const uint8_t *)v.mv_data + 4, KITH_HASH_BYTES);
    if (it->kind == ITER_JOURNAL) {
        it->journal_word = kith__be64_get((const uint8_t *)v.mv_data + 36);
        it->state_applied = 0; /* nothing of the journal is applied */
    } else if (!it->have_state || it->state_origin != origin) {
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
    it->log_names[0] = it->log_names[1] = NULL; /* the names are the new commit's */
    return 0;
}

int
kith_iter_next_log(kith_iter *it, kith_log_entry *out)
{
    const struct kith__op *op;
    const struct kith__name *nm;
    int rc;

    if (!it || !out || (it->kind != ITER_LOG && it->kind != ITER_JOURNAL))
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
    /* ops of a commit mostly share names: intern one only when it changes */
    if (!it->log_names[0] || it->log_cname != op->cname) {
        nm = &it->commit.names[op->cname];
        if (!(it->log_names[0] = kith__name_intern(it->t->r, nm->ptr, nm->len)))
            return KITH_ENOMEM;
        it->log_cname = op->cname;
    }
    out->collection = it->log_names[0];
    kith__docid_from_dot(&out->doc, op->doc);
    if (kith__op_has_field(op->kind)) {
        if (!it->log_names[1] || it->log_fname != op->fname) {
            nm = &it->commit.names[op->fname];
            if (!(it->log_names[1] = kith__name_intern(it->t->r, nm->ptr, nm->len)))
                return KITH_ENOMEM;
            it->log_fname = op->fname;
        }
        out->field = it->log_names[1];
    }
    if (op->kind == KITH_OP_FIELD_SET || op->kind == KITH_OP_SET_ADD ||
        op->kind == KITH_OP_SET_REMOVE || op->kind == KITH_OP_COUNTER_ADD)
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

int
kith_iter_journal(kith_txn *t, uint64_t origin, kith_iter **out)
{
    int rc;

    if (!out)
        return KITH_EINVAL;
    *out = NULL;
    if ((rc = txn_check(t)) < 0)
        return rc;
    if (t->r->journal == KITH__DBI_FREE)
        return KITH_ENOTFOUND; /* a replica made before 0.4.0, read before its upgrade */
    rc = kith_iter_log(t, origin, out);
    if (rc < 0)
        return rc;
    mdb_cursor_close((*out)->cur);
    (*out)->cur = NULL;
    (*out)->kind = ITER_JOURNAL;
    rc = kith__mdb_err(kith__mdb_cursor_open(t->txn, t->r->journal, &(*out)->cur));
    if (rc < 0) {
        kith_iter_close(*out);
        *out = NULL;
    }
    return rc;
}

int
kith_iter_next_journal(kith_iter *it, kith_journal_op *out)
{
    int rc;

    if (!it || !out || it->kind != ITER_JOURNAL)
        return KITH_EINVAL;
    rc = kith_iter_next_log(it, &out->op);
    if (rc < 0)
        return rc;
    out->commit.origin = it->commit.origin;
    out->commit.seq = it->commit.first_seq;
    out->set_aside_ms = (int64_t)(it->journal_word & ~KITH__JOURNAL_RESTORED);
    out->restored = (it->journal_word & KITH__JOURNAL_RESTORED) != 0;
    return 0;
}

/* ---- the fields of a document ----------------------------------------------------------- */

static int
field_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const kith_field_entry *)a)->name, ((const kith_field_entry *)b)->name);
}

/* Does the set field hold any element? */
static int
set_nonempty(kith_txn *t, uint8_t coll, const kith_docid *doc, uint8_t field)
{
    uint8_t kb[18];
    MDB_val k = {sizeof kb, kb}, v;
    MDB_cursor *c;
    int rc = kith__mdb_cursor_open(t->txn, t->r->elems, &c);

    if (rc != 0)
        return kith__mdb_err(rc);
    kb[0] = coll;
    memcpy(kb + 1, doc->bytes, KITH_DOCID_BYTES);
    kb[17] = field;
    rc = kith__mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    int found = rc == 0 && k.mv_size > sizeof kb && memcmp(k.mv_data, kb, sizeof kb) == 0;
    mdb_cursor_close(c);
    return rc != 0 && rc != MDB_NOTFOUND ? kith__mdb_err(rc) : found;
}

/* Gather field number f (named name[0..len)) into it->fields when the document holds a
 * value for it. 0 or an error. */
static int
field_visit(kith_iter *it, const struct kith__coll_decl *cd, uint8_t coll, const kith_docid *doc,
            uint8_t f, const char *p, size_t len)
{
    kith_txn *t = it->t;
    const char *name = kith__name_intern(t->r, p, len);
    const struct kith__field_decl *fd = cd && name ? kith__coll_field(cd, name, len) : NULL;
    kith_field_entry *e = &it->fields[it->nfields];
    int kind = fd ? (int)fd->crdt : -1, rc;

    if (!name)
        return KITH_ENOMEM;
    if (kind == KITH__CRDT_SET) {
        rc = set_nonempty(t, coll, doc, f);
    } else {
        rc = kith__field_read(t, coll, doc, f, kind, &e->value, &kind);
        if (rc == 0 && !fd) {
            rc = set_nonempty(t, coll, doc, f);
            kind = KITH__CRDT_SET;
        }
    }
    if (rc <= 0 || (kind == KITH__CRDT_LWW && e->value.type == KITH_TYPE_NULL))
        return rc < 0 ? rc : 0;
    if (kind == KITH__CRDT_SET)
        e->value.type = KITH_TYPE_SET;
    e->name = name;
    e->crdt = kind;
    it->nfields++;
    return 0;
}

int
kith_iter_fields(kith_txn *t, const char *collection, const kith_docid *doc, kith_iter **out)
{
    const struct kith__sschema *ss;
    const struct kith__coll_decl *cd = NULL;
    uint8_t start[2];
    MDB_val k, v;
    kith_iter *it;
    int coll, rc;

    if (!out)
        return KITH_EINVAL;
    *out = NULL;
    if ((rc = txn_check(t)) < 0)
        return rc;
    if (!collection || !doc)
        return KITH_EINVAL;
    if ((coll = coll_number(t, collection)) < 0)
        return coll;
    if ((rc = doc_live(t, coll, doc->bytes)) <= 0)
        return rc < 0 ? rc : kith__fail(t->r, KITH_ENOTFOUND, "no such document in %s", collection);
    if ((rc = kith__schema_current(t->r, t->txn, &ss)) < 0)
        return rc;
    if (ss->decl)
        cd = kith__schema_find(ss->decl, collection, strlen(collection));
    if ((rc = iter_new(t, ITER_FIELDS, t->r->names == KITH__DBI_FREE ? t->r->meta : t->r->names,
                       &it)) < 0)
        return rc;
    it->fields = calloc(256, sizeof *it->fields);
    if (!it->fields) {
        kith_iter_close(it);
        return KITH_ENOMEM;
    }
    if (t->r->names == KITH__DBI_FREE) {
        /* a format-1 replica before its upgrade: its fields are format 1's */
        for (unsigned f = 1; rc == 0 && kith__v1_field((unsigned)coll, f) >= 0; f++) {
            const struct kith__name *nm = &kith__v1_names[kith__v1_field((unsigned)coll, f)];
            rc = field_visit(it, cd, (uint8_t)coll, doc, (uint8_t)f, nm->ptr, nm->len);
        }
    } else {
        /* every field numbered in the collection: names 'F' | coll | number -> name */
        start[0] = 'F';
        start[1] = (uint8_t)coll;
        k.mv_size = 2;
        k.mv_data = start;
        for (rc = kith__mdb_cursor_get(it->cur, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = kith__mdb_cursor_get(it->cur, &k, &v, MDB_NEXT)) {
            const uint8_t *key = k.mv_data;
            if (k.mv_size != 3 || key[0] != 'F' || key[1] != (uint8_t)coll)
                break;
            if ((rc = field_visit(it, cd, (uint8_t)coll, doc, key[2], v.mv_data, v.mv_size)) < 0)
                break;
        }
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        kith_iter_close(it);
        return rc > 0 ? kith__mdb_err(rc) : rc;
    }
    qsort(it->fields, it->nfields, sizeof *it->fields, field_entry_cmp);
    *out = it;
    return 0;
}

int
kith_iter_next_field(kith_iter *it, kith_field_entry *out)
{
    if (!it || !out || it->kind != ITER_FIELDS)
        return KITH_EINVAL;
    if (it->next_field >= it->nfields)
        return KITH_ENOTFOUND;
    *out = it->fields[it->next_field++];
    return 0;
}
