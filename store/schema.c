/*
 * schema.c — the replica's declared schema (spec/data-model.md "Schema document"): kept in
 * `meta` as its canonical JSON ("schema.json") with a version ("schema_v", one more at every
 * change) and a digest ("schema"), loaded into memory with the local numbers of its indexes,
 * and changed by kith_schema_apply and kith_schema_declare.
 *
 * A declaration is local (spec/decisions.md): it governs what this replica's app may write
 * and which indexes it keeps, never what it accepts. Each handle keeps the schema it loaded
 * and checks the version at the start of every write, so an index declared by another process
 * (the CLI beside a daemon) is kept by every writer from its next transaction on. Schemas a
 * handle has replaced stay allocated until it closes: readers may still hold them.
 */
#include "schema.h"
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROWTHS 24

static void
sschema_free(struct kith__sschema *s)
{
    while (s) {
        struct kith__sschema *older = s->older;
        kith__schema_free(s->decl);
        free(s->plans);
        free(s->indexed);
        free(s);
        s = older;
    }
}

void
kith__schema_release(kith_replica *r)
{
    sschema_free(r->schema);
    r->schema = NULL;
}

/* The index plans of a schema: numbers looked up (create: given out) in txn. */
static int
plans_build(kith_replica *r, MDB_txn *txn, struct kith__sschema *ss, bool create)
{
    const struct kith__schema *d = ss->decl;
    size_t n = 0;

    for (size_t c = 0; d && c < d->ncoll; c++)
        n += d->colls[c].nindexes;
    ss->plans = calloc(n ? n : 1, sizeof *ss->plans);
    if (!ss->plans)
        return KITH_ENOMEM;
    for (size_t c = 0; d && c < d->ncoll; c++) {
        const struct kith__coll_decl *cd = &d->colls[c];
        uint8_t coll;
        int rc = kith__names_get(r, txn, NULL, KITH__NAME_COLL, 0, cd->name, strlen(cd->name),
                                 create, &coll);
        if (rc == KITH_ENOTFOUND)
            continue; /* declared elsewhere, not numbered here yet: nothing to index */
        if (rc < 0)
            return rc;
        for (size_t f = 0; f < cd->nfields && create; f++) {
            uint8_t fid;
            rc = kith__names_get(r, txn, NULL, KITH__NAME_FIELD, coll, cd->fields[f].name,
                                 strlen(cd->fields[f].name), true, &fid);
            if (rc < 0)
                return rc;
        }
        for (size_t i = 0; i < cd->nindexes; i++) {
            const struct kith__index_decl *id = &cd->indexes[i];
            struct kith__index_plan *p = &ss->plans[ss->nplans];
            rc = kith__names_get(r, txn, NULL, KITH__NAME_INDEX, coll, id->name, strlen(id->name),
                                 create, &p->id);
            for (uint32_t k = 0; rc == 0 && k < id->nparts; k++) {
                const char *fname = cd->fields[id->parts[k]].name;
                rc = kith__names_get(r, txn, NULL, KITH__NAME_FIELD, coll, fname, strlen(fname),
                                     create, &p->part[k]);
            }
            if (rc == KITH_ENOTFOUND)
                continue;
            if (rc < 0)
                return rc;
            p->coll = coll;
            p->nparts = (uint8_t)id->nparts;
            if (!ss->indexed && !(ss->indexed = calloc(256, sizeof *ss->indexed)))
                return KITH_ENOMEM;
            for (uint8_t k = 0; k < p->nparts; k++)
                ss->indexed[coll][p->part[k] >> 6] |= 1ull << (p->part[k] & 63);
            ss->nplans++;
        }
    }
    return 0;
}

/* Load the schema stored in txn at `version`. */
static int
sschema_load(kith_replica *r, MDB_txn *txn, uint64_t version, struct kith__sschema **out)
{
    struct kith__sschema *ss = calloc(1, sizeof *ss);
    char why[256] = "";
    MDB_val v;
    int rc;

    if (!ss)
        return KITH_ENOMEM;
    ss->version = version;
    rc = version ? kith__meta_get(r, txn, "schema.json", &v) : KITH_ENOTFOUND;
    if (r->names == KITH__DBI_FREE) {
        /* a format-1 replica read before its upgrade: its schema is the built-in one */
        v.mv_data = (void *)kith__crm_schema_json;
        v.mv_size = strlen(kith__crm_schema_json);
        rc = 0;
    }
    if (rc == 0) {
        rc = kith__schema_parse(v.mv_data, v.mv_size, NULL, &ss->decl, why, sizeof why);
        if (rc < 0)
            rc = kith__fail(r, KITH_ECORRUPT, "meta: the stored schema does not parse: %s", why);
    } else if (rc == KITH_ENOTFOUND) {
        rc = 0;
    }
    if (rc == 0)
        rc = plans_build(r, txn, ss, false);
    if (rc < 0) {
        sschema_free(ss);
        return rc;
    }
    *out = ss;
    return 0;
}

int
kith__schema_current(kith_replica *r, MDB_txn *txn, const struct kith__sschema **out)
{
    struct kith__sschema *ss;
    uint64_t version;
    int rc = kith__meta_get_u64(r, txn, "schema_v", &version);

    if (rc < 0)
        return rc;
    pthread_mutex_lock(&r->names_lock);
    ss = r->schema;
    pthread_mutex_unlock(&r->names_lock);
    if (ss && ss->version == version) {
        *out = ss;
        return 0;
    }
    if ((rc = sschema_load(r, txn, version, &ss)) < 0)
        return rc;
    pthread_mutex_lock(&r->names_lock);
    ss->older = r->schema;
    r->schema = ss;
    pthread_mutex_unlock(&r->names_lock);
    *out = ss;
    return 0;
}

/* ---- declaring ------------------------------------------------------------------------- */

/* Write `next` as the stored schema (version + 1) and build its new indexes, in txn. */
static int
schema_store(kith_replica *r, MDB_txn *txn, const struct kith__sschema *old,
             struct kith__sschema *next)
{
    struct kith__wbuf json = {0};
    uint8_t digest[KITH_HASH_BYTES];
    int rc = plans_build(r, txn, next, true);

    for (size_t i = 0; rc == 0 && i < next->nplans; i++) {
        bool known = false;
        for (size_t j = 0; old && j < old->nplans; j++)
            known |= old->plans[j].id == next->plans[i].id;
        if (!known)
            rc = kith__index_build(r, txn, &next->plans[i]);
    }
    if (rc == 0)
        rc = kith__schema_json(next->decl, &json);
    if (rc == 0) {
        kith__schema_digest(next->decl, digest);
        if ((rc = kith__meta_put(r, txn, "schema.json", json.data, json.len)) == 0 &&
            (rc = kith__meta_put(r, txn, "schema", digest, sizeof digest)) == 0)
            rc = kith__meta_put_u64(r, txn, "schema_v", next->version);
    }
    kith__wbuf_free(&json);
    return rc;
}

/* A schema declaration read against the schema it extends (`known`, for refs and indexes). */
typedef int (*schema_reader)(const void *src, size_t n, const struct kith__schema *known,
                             struct kith__schema **out, char *why, size_t why_cap);

static int
read_document(const void *src, size_t n, const struct kith__schema *known,
              struct kith__schema **out, char *why, size_t why_cap)
{
    return kith__schema_parse(src, n, known, out, why, why_cap);
}

static int
read_defs(const void *src, size_t n, const struct kith__schema *known, struct kith__schema **out,
          char *why, size_t why_cap)
{
    return kith__schema_from_defs(src, n, known, out, why, why_cap);
}

/*
 * Read a declaration against the stored schema, merge it in and store the result when it
 * changed: all in one write transaction, so the schema it was read against is the one it
 * extends.
 */
static int
schema_declare(kith_replica *r, schema_reader read, const void *src, size_t n)
{
    char why[512] = "";
    int rc = 0;

    if (r->flags & KITH_RDONLY)
        return kith__fail(r, KITH_EREADONLY, "the replica is open read-only");
    if (kith__txn_open_here())
        return kith__fail(r, KITH_EBADTXN, "a schema is declared with no transaction open");
    pthread_mutex_lock(&r->wlock); /* one writer of this handle at a time, as kith_txn does */
    for (int tries = 0;; tries++) {
        const struct kith__sschema *cur;
        struct kith__schema *add = NULL;
        struct kith__sschema *next = NULL;
        bool changed = false;
        MDB_txn *txn;

        if ((rc = kith__mdb_begin(r, 0, &txn)) < 0)
            break;
        rc = kith__schema_current(r, txn, &cur);
        if (rc == 0)
            rc = read(src, n, cur->decl, &add, why, sizeof why);
        if (rc == 0 && !(next = calloc(1, sizeof *next)))
            rc = KITH_ENOMEM;
        if (rc == 0)
            rc = kith__schema_merge(cur->decl, add, &next->decl, &changed, why, sizeof why);
        if (rc == KITH_ESCHEMA || rc == KITH_ETOOBIG)
            rc = kith__fail(r, rc, "%s", why);
        if (rc == 0 && changed) {
            next->version = cur->version + 1;
            rc = schema_store(r, txn, cur, next);
        }
        if (rc == 0 && changed)
            rc = kith__mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        kith__mdb_end(r);
        sschema_free(next);
        kith__schema_free(add);
        if (rc != MDB_MAP_FULL || tries == MAX_GROWTHS) {
            if (rc == MDB_MAP_FULL)
                rc = -ENOSPC;
            else if (rc > 0)
                rc = kith__mdb_err(rc);
            break;
        }
        if ((rc = kith__map_grow(r)) < 0)
            break;
    }
    pthread_mutex_unlock(&r->wlock);
    return rc;
}

int
kith_schema_apply(kith_replica *r, const char *json, size_t len)
{
    if (!r || (!json && len > 0))
        return KITH_EINVAL;
    if (len > KITH__SCHEMA_MAX_BYTES)
        return kith__fail(r, KITH_ETOOBIG, "schema document of %zu bytes (at most %u)", len,
                          KITH__SCHEMA_MAX_BYTES);
    return schema_declare(r, read_document, json, len);
}

int
kith_schema_declare(kith_replica *r, const kith_collection_def *colls, size_t n)
{
    if (!r || (!colls && n > 0))
        return KITH_EINVAL;
    return schema_declare(r, read_defs, colls, n);
}

int
kith_schema_json(kith_replica *r, kith_buf *out)
{
    struct kith__wbuf json = {0};
    const struct kith__sschema *cur;
    struct kith__schema empty = {0};
    char tail[48];
    MDB_txn *txn;
    int rc, n;

    if (!r || !out)
        return KITH_EINVAL;
    out->data = NULL;
    out->len = 0;
    if ((rc = kith__mdb_begin(r, MDB_RDONLY, &txn)) < 0)
        return rc;
    rc = kith__schema_current(r, txn, &cur);
    if (rc == 0)
        rc = kith__schema_json(cur->decl ? cur->decl : &empty, &json);
    /* the canonical form ends in "}\n": the version goes in as its last key */
    if (rc == 0 && (json.len < 2 || json.data[json.len - 2] != '}'))
        rc = KITH_ECORRUPT;
    if (rc == 0) {
        json.len -= 2;
        n = snprintf(tail, sizeof tail, ",\"version\":%" PRIu64 "}\n", cur->version);
        rc = kith__wbuf_put(&json, tail, (size_t)n);
    }
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    if (rc < 0) {
        kith__wbuf_free(&json);
        return rc;
    }
    out->data = json.data;
    out->len = json.len;
    return 0;
}

int
kith_value_parse_in(kith_replica *r, const char *collection, const char *field, const char *text,
                    kith_value *out, char *why, size_t why_cap)
{
    const struct kith__sschema *cur;
    const struct kith__coll_decl *cd = NULL;
    const struct kith__field_decl *fd = NULL;
    MDB_txn *txn;
    int rc;

    if (why && why_cap)
        why[0] = '\0';
    if (!r || !collection || !field || !text || !out)
        return KITH_EINVAL;
    if ((rc = kith__mdb_begin(r, MDB_RDONLY, &txn)) < 0)
        return rc;
    rc = kith__schema_current(r, txn, &cur);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    if (rc < 0)
        return rc;
    if (cur->decl)
        cd = kith__schema_find(cur->decl, collection, strlen(collection));
    if (cd)
        fd = kith__coll_field(cd, field, strlen(field));
    if (!fd) {
        if (why && why_cap)
            snprintf(why, why_cap, "%s.%s is not declared", collection, field);
        return KITH_ENOTFOUND;
    }
    memset(out, 0, sizeof *out);
    if (fd->crdt == KITH__CRDT_SET) {
        out->type = KITH_TYPE_STRING; /* an element, in its text form */
        out->u.s.ptr = text;
        out->u.s.len = strlen(text);
    } else if (text[0] == '\0' && fd->crdt == KITH__CRDT_LWW) {
        out->type = KITH_TYPE_NULL; /* empty text clears the field */
    } else {
        const struct kith__type *ty = kith__type_of(fd->type);
        if (!ty)
            return KITH_ESCHEMA;
        out->type = fd->type; /* a row's parse fills the value, not its type */
        if ((rc = ty->parse(text, out, why, why_cap)) < 0)
            return rc;
    }
    return kith__field_check(fd, out, why, why_cap);
}

/* ---- format 1 -------------------------------------------------------------------------- */

int
kith__schema_upgrade_v1(kith_replica *r, MDB_txn *txn)
{
    struct kith__sschema next = {.version = 1};
    char why[256] = "";
    int rc = kith__names_seed_v1(r, txn);

    if (rc < 0)
        return rc;
    rc = kith__schema_parse(kith__crm_schema_json, strlen(kith__crm_schema_json), NULL, &next.decl,
                            why, sizeof why);
    if (rc < 0)
        return kith__fail(r, rc, "the built-in schema does not parse: %s", why);
    /* the format-1 indexes exist already, under the numbers the seed gave them */
    struct kith__sschema old = {0};
    rc = plans_build(r, txn, &next, true);
    if (rc == 0) {
        old.plans = next.plans;
        old.nplans = next.nplans;
        next.plans = NULL;
        next.nplans = 0;
        rc = schema_store(r, txn, &old, &next);
    }
    free(old.plans);
    free(next.plans);
    free(next.indexed);
    kith__schema_free(next.decl);
    return rc;
}
