/*
 * journal.c — the commits a fork's resolution set aside (spec/data-model.md FORK-10,
 * spec/storage.md "journal"), and writing them again. A commit in the journal left the log and
 * the state of this replica, but not the replica: its bytes stay, readable through
 * kith_iter_journal, and kith_journal_restore writes its ops again as new writes of this
 * replica, so an edit made on the history that lost is never lost, only moved.
 *
 * A restore works at the level of what the user did, not of dots: the set-aside commit's dots
 * name other ops in the history that won, so its ops cannot come back as they were. A document
 * it created is created anew (a new id, kept in the journal so that restoring a later commit
 * that edits it reaches the new one); a field it set is set again; an element added or removed,
 * an increment, a flag, a delete are made again. An op on a document that no longer exists here
 * is skipped and counted: writing it would fail the transaction, and its document is gone on
 * every replica the same way.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

/* A journal key of a document a restore created: old id(16) | "newdocid"; value: new id(16). */
#define MAP_KEY_BYTES 24
static const char MAP_TAG[8] = {'n', 'e', 'w', 'd', 'o', 'c', 'i', 'd'};

int
kith__journal_put(kith_replica *r, MDB_txn *txn, const MDB_val *k, const MDB_val *logv,
                  int64_t now_ms)
{
    MDB_val v = {logv->mv_size, NULL};
    int rc;

    if (r->journal == KITH__DBI_FREE)
        return kith__fail(r, KITH_EREADONLY, "%s: no journal in a replica opened read-only",
                          r->path);
    rc = kith__mdb_put(txn, r->journal, (MDB_val *)k, &v, MDB_RESERVE);
    if (rc != 0)
        return rc == MDB_MAP_FULL ? rc : kith__mdb_err(rc);
    memcpy(v.mv_data, logv->mv_data, logv->mv_size);
    /* the log's order slot carries, here, when it was set aside (and the restored bit) */
    kith__be64_put((uint8_t *)v.mv_data + 36, (uint64_t)(now_ms < 0 ? 0 : now_ms));
    return 0;
}

static int
mark_add(kith_txn *t, const struct kith__journal_mark *m)
{
    if (t->njmarks == t->capjmarks) {
        size_t cap = t->capjmarks ? 2 * t->capjmarks : 4;
        struct kith__journal_mark *p = realloc(t->jmarks, cap * sizeof *p);
        if (p == NULL)
            return KITH_ENOMEM;
        t->jmarks = p;
        t->capjmarks = cap;
    }
    t->jmarks[t->njmarks++] = *m;
    return 0;
}

int
kith__journal_mark(kith_txn *t)
{
    kith_replica *r = t->r;

    for (size_t i = 0; i < t->njmarks; i++) {
        const struct kith__journal_mark *m = &t->jmarks[i];
        uint8_t kb[MAP_KEY_BYTES], vb[16];
        MDB_val k = {16, kb}, v;
        int rc;

        if (m->is_map) {
            memcpy(kb, m->old.bytes, 16);
            memcpy(kb + 16, MAP_TAG, sizeof MAP_TAG);
            memcpy(vb, m->made.bytes, 16);
            k.mv_size = MAP_KEY_BYTES;
            v.mv_size = 16;
            v.mv_data = vb;
            rc = kith__mdb_put(t->txn, r->journal, &k, &v, 0);
        } else {
            kith__be64_put(kb, m->commit.origin);
            kith__be64_put(kb + 8, m->commit.seq);
            rc = kith__mdb_get(t->txn, r->journal, &k, &v);
            if (rc == 0) {
                /* copy: the put below may move the page the value lives on */
                uint8_t *copy = malloc(v.mv_size);
                if (copy == NULL)
                    return KITH_ENOMEM;
                memcpy(copy, v.mv_data, v.mv_size);
                uint64_t word = kith__be64_get(copy + 36) | KITH__JOURNAL_RESTORED;
                kith__be64_put(copy + 36, word);
                v.mv_data = copy;
                rc = kith__mdb_put(t->txn, r->journal, &k, &v, 0);
                free(copy);
            }
        }
        if (rc != 0)
            return rc == MDB_MAP_FULL ? rc : kith__mdb_err(rc);
    }
    return 0;
}

/* The id a restore gave the document `old`: in this transaction's marks, or the journal's. 1
 * with *made, 0 when none, or an error. */
static int
made_of(kith_txn *t, const kith_docid *old, kith_docid *made)
{
    uint8_t kb[MAP_KEY_BYTES];
    MDB_val k = {MAP_KEY_BYTES, kb}, v;
    int rc;

    for (size_t i = t->njmarks; i-- > 0;)
        if (t->jmarks[i].is_map && memcmp(t->jmarks[i].old.bytes, old->bytes, 16) == 0) {
            *made = t->jmarks[i].made;
            return 1;
        }
    memcpy(kb, old->bytes, 16);
    memcpy(kb + 16, MAP_TAG, sizeof MAP_TAG);
    rc = kith__mdb_get(t->txn, t->r->journal, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return kith__mdb_err(rc);
    if (v.mv_size != 16)
        return kith__fail(t->r, KITH_ECORRUPT, "journal: a document map of %zu bytes", v.mv_size);
    memcpy(made->bytes, v.mv_data, 16);
    return 1;
}

/* Where an op of the set-aside commit writes: the document a restore made of it, or itself. */
static int
target_of(kith_txn *t, const kith_docid *doc, kith_docid *out)
{
    int rc = made_of(t, doc, out);
    if (rc == 0)
        *out = *doc;
    return rc < 0 ? rc : 0;
}

/* A name of the commit as a C string (names are at most 64 bytes). */
static void
name_str(const struct kith__commit *c, uint16_t i, char out[KITH__MAX_NAME_BYTES + 1])
{
    const struct kith__name *nm = &c->names[i];
    size_t n = nm->len <= KITH__MAX_NAME_BYTES ? nm->len : KITH__MAX_NAME_BYTES;
    memcpy(out, nm->ptr, n);
    out[n] = '\0';
}

/* Write one op of the set-aside commit again. 1 when written, 0 when skipped (its document
 * is gone), or an error. */
static int
restore_op(kith_txn *t, const struct kith__commit *c, uint32_t i)
{
    const struct kith__op *op = &c->ops[i];
    char coll[KITH__MAX_NAME_BYTES + 1], field[KITH__MAX_NAME_BYTES + 1] = "";
    kith_docid old, doc;
    kith_value v;
    int rc;

    name_str(c, op->cname, coll);
    if (kith__op_has_field(op->kind))
        name_str(c, op->fname, field);
    kith__docid_from_dot(&old, op->doc);
    if (op->kind == KITH_OP_DOC_ADD) {
        struct kith__journal_mark m = {.is_map = true, .old = old};
        kith_dot d = {c->origin, c->first_seq + i};
        if (op->doc.origin != d.origin || op->doc.seq != d.seq)
            return 0; /* an add names the dot that makes it: not one this kith wrote */
        if ((rc = kith_doc_create(t, coll, &m.made)) < 0)
            return rc;
        return (rc = mark_add(t, &m)) < 0 ? rc : 1;
    }
    if ((rc = target_of(t, &old, &doc)) < 0)
        return rc;
    if ((rc = kith_doc_exists(t, coll, &doc)) <= 0)
        return rc;
    switch (op->kind) {
    case KITH_OP_DOC_REMOVE:
        rc = kith_doc_delete(t, coll, &doc);
        break;
    case KITH_OP_FIELD_SET:
        v = op->value;
        if (v.type == KITH_TYPE_REF && (rc = target_of(t, &op->value.u.ref, &v.u.ref)) < 0)
            return rc;
        rc = kith_field_set(t, coll, &doc, field, &v);
        break;
    case KITH_OP_SET_ADD:
        rc = kith_set_add(t, coll, &doc, field, op->value.u.s.ptr, op->value.u.s.len);
        break;
    case KITH_OP_SET_REMOVE:
        rc = kith_set_remove(t, coll, &doc, field, op->value.u.s.ptr, op->value.u.s.len);
        break;
    case KITH_OP_COUNTER_ADD:
        rc = kith_counter_add(t, coll, &doc, field, op->value.u.i);
        break;
    case KITH_OP_FLAG_ENABLE:
    case KITH_OP_FLAG_DISABLE:
        rc = kith_flag_set(t, coll, &doc, field, op->kind == KITH_OP_FLAG_ENABLE);
        break;
    default:
        return kith__fail(t->r, KITH_ECORRUPT, "journal: op of kind %u", op->kind);
    }
    return rc < 0 ? rc : 1;
}

int
kith_journal_restore(kith_txn *t, const kith_dot *commit, size_t *skipped)
{
    kith_replica *r;
    struct kith__arena arena = {0};
    struct kith__commit c;
    struct kith__journal_mark m = {.is_map = false};
    uint8_t kb[16], *copy;
    MDB_val k = {16, kb}, v, cv;
    size_t skip = 0;
    int rc;

    if (skipped != NULL)
        *skipped = 0;
    if (t == NULL || commit == NULL)
        return KITH_EINVAL;
    r = t->r;
    if (t->failed)
        return KITH_EBADTXN;
    if (!(t->flags & KITH_TXN_WRITE))
        return kith__fail(r, KITH_EREADONLY, "restoring from the journal needs a write txn");
    if (r->journal == KITH__DBI_FREE)
        return kith__fail(r, KITH_ENOTFOUND, "this replica has no journal");
    kith__be64_put(kb, commit->origin);
    kith__be64_put(kb + 8, commit->seq);
    rc = kith__mdb_get(t->txn, r->journal, &k, &v);
    if (rc == MDB_NOTFOUND)
        return kith__fail(r, KITH_ENOTFOUND,
                          "no commit %016llx:%llu in the journal (see kith journal)",
                          (unsigned long long)commit->origin, (unsigned long long)commit->seq);
    if (rc != 0)
        return kith__mdb_err(rc);
    if (v.mv_size >= KITH__LOG_HDR_BYTES &&
        (kith__be64_get((const uint8_t *)v.mv_data + 36) & KITH__JOURNAL_RESTORED))
        return kith__fail(r, KITH_EEXIST, "commit %016llx:%llu was restored already",
                          (unsigned long long)commit->origin, (unsigned long long)commit->seq);
    for (size_t i = 0; i < t->njmarks; i++)
        if (!t->jmarks[i].is_map && t->jmarks[i].commit.origin == commit->origin &&
            t->jmarks[i].commit.seq == commit->seq)
            return kith__fail(r, KITH_EEXIST,
                              "commit %016llx:%llu is restored in this "
                              "transaction already",
                              (unsigned long long)commit->origin, (unsigned long long)commit->seq);
    /* the writes below may move the page the entry lives on: decode a copy */
    copy = malloc(v.mv_size);
    if (copy == NULL)
        return KITH_ENOMEM;
    memcpy(copy, v.mv_data, v.mv_size);
    cv.mv_size = v.mv_size;
    cv.mv_data = copy;
    rc = kith__log_decode(r, &k, &cv, &c, &arena);
    for (uint32_t i = 0; rc == 0 && i < c.nops; i++) {
        rc = restore_op(t, &c, i);
        if (rc == 0)
            skip++;
        rc = rc < 0 ? rc : 0;
    }
    if (rc == 0) {
        m.commit = *commit;
        rc = mark_add(t, &m);
    }
    kith__arena_free(&arena);
    free(copy);
    if (rc == 0 && skipped != NULL)
        *skipped = skip;
    return rc;
}
