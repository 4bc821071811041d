/*
 * export.c — the replicated state as canonical JSON (spec/export.md): every live document of
 * every collection holding one, with its fields, and the applied version vector. Two replicas
 * that applied the same ops print the same bytes, so `kith export | sha256sum` is the test of
 * convergence; local facts (conflicts, peers, pending ops, declarations) are left out for
 * that reason.
 *
 * Everything is written in order by hand: the top-level keys, the collections sorted by name,
 * documents in the order of their LMDB keys (which is the order of their hex ids), a
 * document's fields sorted by name, set elements in byte order (their LMDB key order) and the
 * vector sorted by origin. Values take the JSON form of the value-type table (core/types.c),
 * which escapes strings as jansson does and never writes an integer a double cannot hold
 * exactly as a number (ids and hashes are hex strings, times ISO 8601 strings, INT values
 * beyond +-2^53 decimal strings). Field names need no escaping ([A-Za-z0-9_]). No tree of the
 * state is built: a document's fields are gathered in one buffer and sorted by name.
 */
#include "schema.h"
#include "store.h"
#include "view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT_FORMAT "kith-export-1"

/* A document's fields as they are gathered: each field's name and its JSON text in `text`. */
struct doc_field {
    const char *name; /* interned */
    size_t off, len;
    size_t seq; /* order of gathering: of two fields of one name the later is shown */
};

struct doc_text {
    struct kith__wbuf text;
    struct doc_field *f;
    size_t n, cap;
    const char *fname[256]; /* the collection's field names, looked up once each */
};

/* Begin field `name`: its value is what is appended to d->text until the next begin. */
static int
field_begin(struct doc_text *d, const char *name)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 16;
        struct doc_field *f = realloc(d->f, cap * sizeof *f);
        if (!f)
            return KITH_ENOMEM;
        d->f = f;
        d->cap = cap;
    }
    d->f[d->n].name = name;
    d->f[d->n].off = d->text.len;
    d->f[d->n].seq = d->n;
    d->n++;
    return 0;
}

static void
field_end(struct doc_text *d)
{
    d->f[d->n - 1].len = d->text.len - d->f[d->n - 1].off;
}

static int
field_cmp(const void *a, const void *b)
{
    const struct doc_field *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c != 0 ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* Write the gathered fields as one JSON object, sorted by name, and empty the gathering. */
static int
doc_emit(struct doc_text *d, struct kith__wbuf *out)
{
    int rc = kith__wbuf_put(out, "{", 1);
    bool first = true;

    qsort(d->f, d->n, sizeof *d->f, field_cmp);
    for (size_t i = 0; i < d->n && rc == 0; i++) {
        if (i + 1 < d->n && strcmp(d->f[i].name, d->f[i + 1].name) == 0)
            continue; /* one name, two kinds (declared apart): the later kind is shown */
        if ((!first && (rc = kith__wbuf_put(out, ",", 1)) < 0) ||
            (rc = kith__wbuf_put(out, "\"", 1)) < 0 ||
            (rc = kith__wbuf_put(out, d->f[i].name, strlen(d->f[i].name))) < 0 ||
            (rc = kith__wbuf_put(out, "\":", 2)) < 0)
            break;
        rc = kith__wbuf_put(out, d->text.data + d->f[i].off, d->f[i].len);
        first = false;
    }
    if (rc == 0)
        rc = kith__wbuf_put(out, "}", 1);
    d->n = 0;
    d->text.len = 0;
    return rc;
}

/* A value's JSON; text that JSON cannot carry (not UTF-8) is damage. */
static int
value_text(kith_replica *r, const kith_value *v, struct doc_text *d)
{
    int rc = kith__value_json(v, &d->text);
    return rc == KITH_EINVAL ? kith__fail(r, KITH_ECORRUPT, "a value is not UTF-8") : rc;
}

/* The name of field number `field` of collection `coll` (interned), looked up once per
 * collection exported. */
static int
field_name(kith_replica *r, MDB_txn *txn, struct doc_text *d, uint8_t coll, uint8_t field,
           const char **out)
{
    int rc = 0;
    if (!d->fname[field])
        rc = kith__names_name(r, txn, KITH__NAME_FIELD, coll, field, &d->fname[field]);
    if (rc == KITH_ENOTFOUND)
        return kith__fail(r, KITH_ECORRUPT, "field %u of collection %u has no name", field, coll);
    *out = d->fname[field];
    return rc;
}

/*
 * Add the registers of document (coll, doc) to `obj`: the keys of `regs` from coll | doc
 * on. Skips NULL values. KITH_ECORRUPT names the damaged record.
 */
static int
doc_registers(kith_replica *r, MDB_txn *txn, MDB_cursor *cur, const uint8_t prefix[17],
              struct doc_text *d)
{
    MDB_val k = {17, (void *)prefix}, v;
    int mrc;

    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        const char *fname;
        kith_value val;
        int rc;

        if (k.mv_size < 17 || memcmp(kp, prefix, 17) != 0)
            break;
        if (k.mv_size != 18 || v.mv_size < KITH__REG_HDR_BYTES + 1)
            return kith__fail(r, KITH_ECORRUPT, "register record of %zu bytes", v.mv_size);
        rc = kith__value_load((const uint8_t *)v.mv_data + KITH__REG_HDR_BYTES,
                              v.mv_size - KITH__REG_HDR_BYTES, &val);
        if (rc < 0)
            return kith__fail(r, KITH_ECORRUPT, "register %u of a document is damaged", kp[17]);
        if (val.type == KITH_TYPE_NULL)
            continue;
        if ((rc = field_name(r, txn, d, kp[0], kp[17], &fname)) < 0 ||
            (rc = field_begin(d, fname)) < 0 || (rc = value_text(r, &val, d)) < 0)
            return rc;
        field_end(d);
    }
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : kith__mdb_err(mrc);
}

/* Add the set fields of document (coll, doc), elements in key (byte) order. */
static int
doc_sets(kith_replica *r, MDB_txn *txn, MDB_cursor *cur, const uint8_t prefix[17],
         struct doc_text *d)
{
    MDB_val k = {17, (void *)prefix}, v;
    int field = -1, mrc, rc = 0;

    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        kith_value elem = {.type = KITH_TYPE_STRING};

        if (k.mv_size < 17 || memcmp(kp, prefix, 17) != 0)
            break;
        if (k.mv_size < 18)
            return kith__fail(r, KITH_ECORRUPT, "element key of %zu bytes", k.mv_size);
        if (kp[17] != field) {
            const char *fname;
            if (field >= 0) {
                if ((rc = kith__wbuf_put(&d->text, "]", 1)) < 0)
                    return rc;
                field_end(d);
            }
            if ((rc = field_name(r, txn, d, kp[0], kp[17], &fname)) < 0 ||
                (rc = field_begin(d, fname)) < 0 || (rc = kith__wbuf_put(&d->text, "[", 1)) < 0)
                return rc;
            field = kp[17];
        } else if ((rc = kith__wbuf_put(&d->text, ",", 1)) < 0) {
            return rc;
        }
        elem.u.s.ptr = (const char *)kp + 18;
        elem.u.s.len = k.mv_size - 18;
        if ((rc = value_text(r, &elem, d)) < 0)
            return rc;
    }
    if (field >= 0) {
        if ((rc = kith__wbuf_put(&d->text, "]", 1)) < 0)
            return rc;
        field_end(d);
    }
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : kith__mdb_err(mrc);
}

/* Add the counters of the document: one number per field, the sum of its origins' totals
 * (a counter that sums to 0 is shown, once incremented at all). */
static int
doc_counters(kith_replica *r, MDB_txn *txn, MDB_cursor *cur, const uint8_t prefix[17],
             struct doc_text *d)
{
    MDB_val k = {17, (void *)prefix}, v;
    uint64_t sum = 0;
    int field = -1, mrc, rc = 0;

    if (cur == NULL)
        return 0;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        bool same = mrc == 0 && k.mv_size >= 17 && memcmp(kp, prefix, 17) == 0;
        if (same && (k.mv_size != KITH__COUNT_KEY_BYTES || v.mv_size != 8))
            return kith__fail(r, KITH_ECORRUPT, "counter record of %zu bytes", v.mv_size);
        if (field >= 0 && (!same || kp[17] != field)) {
            const char *fname;
            kith_value val = {.type = KITH_TYPE_INT};
            memcpy(&val.u.i, &sum, sizeof sum);
            if ((rc = field_name(r, txn, d, prefix[0], (uint8_t)field, &fname)) < 0 ||
                (rc = field_begin(d, fname)) < 0 || (rc = value_text(r, &val, d)) < 0)
                return rc;
            field_end(d);
            sum = 0;
        }
        if (!same)
            break;
        field = kp[17];
        sum += kith__be64_get(v.mv_data);
    }
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : kith__mdb_err(mrc);
}

/* Add the flags of the document that are set, as true (a clear flag is absent, as an empty
 * set is). */
static int
doc_flags(kith_replica *r, MDB_txn *txn, MDB_cursor *cur, const uint8_t prefix[17],
          struct doc_text *d)
{
    MDB_val k = {17, (void *)prefix}, v;
    int mrc, rc;

    if (cur == NULL)
        return 0;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        const char *fname;
        if (k.mv_size < 17 || memcmp(kp, prefix, 17) != 0)
            break;
        if (k.mv_size != 18)
            return kith__fail(r, KITH_ECORRUPT, "flag key of %zu bytes", k.mv_size);
        if ((rc = field_name(r, txn, d, kp[0], kp[17], &fname)) < 0 ||
            (rc = field_begin(d, fname)) < 0 || (rc = kith__wbuf_put(&d->text, "true", 4)) < 0)
            return rc;
        field_end(d);
    }
    return mrc == 0 || mrc == MDB_NOTFOUND ? 0 : kith__mdb_err(mrc);
}

static int
emit(struct kith__wbuf *out, const char *s)
{
    return kith__wbuf_put(out, s, strlen(s));
}

/* `"key":` for a collection name, which needs no escaping ([A-Za-z0-9_]). */
static int
emit_key(struct kith__wbuf *out, const char *key)
{
    int rc = emit(out, "\"");
    if (rc == 0)
        rc = emit(out, key);
    return rc == 0 ? emit(out, "\":") : rc;
}

/*
 * Write the live documents of collection `coll` as {"docid":{fields},...}. Documents come in
 * the order of their docs keys, which is the order of their hex ids; each document's fields
 * are gathered and written sorted by name, so no tree of the whole state is built.
 */
static int
collection_json(kith_replica *r, MDB_txn *txn, int coll, struct kith__wbuf *out)
{
    MDB_cursor *docs_c, *regs_c, *elems_c, *counts_c = NULL, *flags_c = NULL;
    struct doc_text d = {0};
    uint8_t start = (uint8_t)coll;
    MDB_val k = {1, &start}, v;
    bool first = true;
    int rc, mrc;

    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->docs, &docs_c));
    if (rc < 0)
        return rc;
    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->regs, &regs_c));
    if (rc < 0)
        goto out_docs;
    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->elems, &elems_c));
    if (rc < 0)
        goto out_regs;
    if (r->counts != KITH__DBI_FREE &&
        ((rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->counts, &counts_c))) < 0 ||
         (rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->flagdb, &flags_c))) < 0))
        goto out_elems;
    rc = emit(out, "{");
    for (mrc = kith__mdb_cursor_get(docs_c, &k, &v, MDB_SET_RANGE); rc == 0 && mrc == 0;
         mrc = kith__mdb_cursor_get(docs_c, &k, &v, MDB_NEXT)) {
        uint8_t prefix[17];
        char id[KITH_DOCID_HEX + 5];
        kith_docid docid;

        if (k.mv_size != 17) {
            rc = kith__fail(r, KITH_ECORRUPT, "docs key of %zu bytes", k.mv_size);
            goto out_elems;
        }
        memcpy(prefix, k.mv_data, 17);
        if (prefix[0] != coll)
            break;
        memcpy(docid.bytes, prefix + 1, KITH_DOCID_BYTES);
        id[0] = first ? '"' : ',';
        id[1] = '"';
        kith_docid_format(&docid, id + 2);
        memcpy(id + 2 + KITH_DOCID_HEX, "\":", 3);
        rc = kith__wbuf_put(out, first ? id + 1 : id,
                            first ? KITH_DOCID_HEX + 3 : KITH_DOCID_HEX + 4);
        first = false;
        if (rc < 0)
            goto out_elems;
        if ((rc = doc_registers(r, txn, regs_c, prefix, &d)) == 0 &&
            (rc = doc_sets(r, txn, elems_c, prefix, &d)) == 0 &&
            (rc = doc_counters(r, txn, counts_c, prefix, &d)) == 0 &&
            (rc = doc_flags(r, txn, flags_c, prefix, &d)) == 0)
            rc = doc_emit(&d, out);
    }
    if (rc == 0)
        rc = mrc == 0 || mrc == MDB_NOTFOUND ? emit(out, "}") : kith__mdb_err(mrc);
out_elems:
    kith__wbuf_free(&d.text);
    free(d.f);
    if (flags_c)
        mdb_cursor_close(flags_c);
    if (counts_c)
        mdb_cursor_close(counts_c);
    mdb_cursor_close(elems_c);
out_regs:
    mdb_cursor_close(regs_c);
out_docs:
    mdb_cursor_close(docs_c);
    return rc;
}

/* {"origin":seq,...}: entries are sorted by origin, which is the order of their hex. */
static int
vv_json(const kith_vv *vv, struct kith__wbuf *out)
{
    int rc = emit(out, "{");

    for (size_t i = 0; i < vv->len && rc == 0; i++) {
        char item[KITH_ID_HEX + 32];
        uint64_t o = vv->entries[i].origin;
        int n;

        n = snprintf(item, sizeof(item), "%s\"%016llx\":%llu", i ? "," : "", (unsigned long long)o,
                     (unsigned long long)vv->entries[i].seq);
        rc = kith__wbuf_put(out, item, (size_t)n);
    }
    return rc == 0 ? emit(out, "}") : rc;
}

/* Collection indexes in the byte order of their names (the schema's order need not be). */
struct coll_entry {
    const char *name; /* interned */
    uint8_t id;
};

static int
coll_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct coll_entry *)a)->name, ((const struct coll_entry *)b)->name);
}

/* Does collection `coll` hold a live document? */
static int
coll_nonempty(kith_replica *r, MDB_txn *txn, uint8_t coll)
{
    MDB_cursor *c;
    MDB_val k = {1, &coll}, v;
    int mrc = kith__mdb_cursor_open(txn, r->docs, &c);

    if (mrc != 0)
        return kith__mdb_err(mrc);
    mrc = kith__mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    int found = mrc == 0 && k.mv_size >= 1 && ((const uint8_t *)k.mv_data)[0] == coll;
    mdb_cursor_close(c);
    return mrc == 0 || mrc == MDB_NOTFOUND ? found : kith__mdb_err(mrc);
}

/*
 * The collections that hold a live document, sorted by name. Which collections a replica has
 * declared, or numbered, is its own affair: only what the ops made is exported, so replicas
 * with other schemas that hold the same ops export the same bytes.
 */
static int
export_collections(kith_replica *r, MDB_txn *txn, struct coll_entry *out, size_t *n)
{
    *n = 0;
    for (unsigned id = 0; id < 256; id++) {
        const char *name;
        int rc = kith__names_name(r, txn, KITH__NAME_COLL, 0, (uint8_t)id, &name);
        if (rc == KITH_ENOTFOUND)
            continue;
        if (rc < 0)
            return rc;
        if ((rc = coll_nonempty(r, txn, (uint8_t)id)) < 0)
            return rc;
        if (rc == 1) {
            out[*n].name = name;
            out[(*n)++].id = (uint8_t)id;
        }
    }
    qsort(out, *n, sizeof *out, coll_entry_cmp);
    return 0;
}

int
kith_export_json(kith_replica *r, kith_buf *out)
{
    struct coll_entry colls[256];
    struct kith__wbuf b = {0};
    kith_vv vv = {0};
    MDB_txn *txn;
    size_t ncoll;
    int rc;

    if (!r || !out)
        return KITH_EINVAL;
    out->data = NULL;
    out->len = 0;
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = export_collections(r, txn, colls, &ncoll);
    /* Top-level keys in byte order: collections, format, vv. */
    if (rc == 0)
        rc = emit(&b, "{\"collections\":{");
    for (size_t c = 0; c < ncoll && rc == 0; c++) {
        if ((c == 0 || (rc = emit(&b, ",")) == 0) && (rc = emit_key(&b, colls[c].name)) == 0)
            rc = collection_json(r, txn, colls[c].id, &b);
    }
    if (rc == 0)
        rc = kith__vv_read(r, txn, &vv);
    kith__view_end(r, txn);
    if (rc == 0)
        rc = emit(&b, "},\"format\":\"" EXPORT_FORMAT "\",\"vv\":");
    if (rc == 0)
        rc = vv_json(&vv, &b);
    if (rc == 0)
        rc = emit(&b, "}\n");
    kith_vv_free(&vv);
    if (rc < 0) {
        kith__wbuf_free(&b);
        return rc;
    }
    out->data = b.data;
    out->len = b.len;
    return 0;
}
