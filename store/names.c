/*
 * names.c — the replica's local numbers for the names ops use. Ops name collections and
 * fields by name (spec/encoding.md "Commit"); the state's keys hold a one-byte number instead,
 * given out by this replica in order of first sight and kept for ever in the `names`
 * database (spec/storage.md "names"). Two replicas may number the same name differently: the
 * numbers never leave the replica, so nothing depends on them but its own keys.
 *
 * A replica made by format 1 keeps that format's numbers (contacts 0, its name 1, ...), seeded
 * when it is upgraded, so none of its state is rewritten. Opened read-only before its
 * upgrade, it has no `names` database, and the format-1 table answers instead.
 *
 * Lookups in a write transaction go through a small cache in the applier, so a batch of many
 * commits naming the same few fields reads each name once. Names handed to the app (events,
 * conflicts) are interned copies that live as long as the replica handle.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#define KEY_MAX (3 + KITH__MAX_NAME_BYTES)

/* The first number of each kind and the last one given out. */
static uint8_t
first_id(char kind)
{
    return kind == KITH__NAME_COLL ? 0 : 1;
}

#define LAST_ID 250

/* ---- interning ----------------------------------------------------------------------- */

struct kith__interned {
    struct kith__interned *next;
    size_t len;
    char name[];
};

const char *
kith__name_intern(kith_replica *r, const char *p, size_t len)
{
    struct kith__interned *e;
    const char *out = NULL;

    pthread_mutex_lock(&r->names_lock);
    for (e = r->interned; e; e = e->next)
        if (e->len == len && memcmp(e->name, p, len) == 0) {
            out = e->name;
            break;
        }
    if (!out && (e = malloc(sizeof *e + len + 1)) != NULL) {
        e->len = len;
        memcpy(e->name, p, len);
        e->name[len] = '\0';
        e->next = r->interned;
        r->interned = e;
        out = e->name;
    }
    pthread_mutex_unlock(&r->names_lock);
    return out;
}

void
kith__names_free(kith_replica *r)
{
    struct kith__interned *e = r->interned, *next;
    for (; e; e = next) {
        next = e->next;
        free(e);
    }
    r->interned = NULL;
}

/* ---- the format-1 table, for a replica not upgraded yet ------------------------------ */

static int
v1_get(char kind, uint8_t parent, const char *name, size_t len, uint8_t *id)
{
    int n = -1;
    if (kind == KITH__NAME_COLL) {
        n = kith__v1_coll_number(name, len);
    } else if (kind == KITH__NAME_FIELD) {
        n = kith__v1_field_number(parent, name, len);
    } else {
        for (unsigned i = 0; i < 3; i++)
            if (kith__v1_indexes[i].coll == parent && kith__v1_indexes[i].name.len == len &&
                memcmp(kith__v1_indexes[i].name.ptr, name, len) == 0)
                n = (int)i + 1;
    }
    if (n < 0)
        return KITH_ENOTFOUND;
    *id = (uint8_t)n;
    return 0;
}

/* ---- lookups -------------------------------------------------------------------------- */

static size_t
fwd_key(uint8_t *kb, char kind, uint8_t parent, const char *name, size_t len)
{
    kb[0] = (uint8_t)kind;
    kb[1] = parent;
    memcpy(kb + 2, name, len);
    return 2 + len;
}

/* Give `name` the next number of its kind: 0, KITH_ETOOBIG, or an LMDB error. */
static int
names_create(kith_replica *r, MDB_txn *txn, char kind, uint8_t parent, const char *name, size_t len,
             uint8_t *id)
{
    uint8_t ck[3] = {'#', (uint8_t)kind, kind == KITH__NAME_FIELD ? parent : 0};
    uint8_t kb[KEY_MAX], rk[3], next;
    MDB_val k = {sizeof ck, ck}, v;
    int rc = kith__mdb_get(txn, r->names, &k, &v);

    if (rc == MDB_NOTFOUND)
        next = first_id(kind);
    else if (rc != 0)
        return kith__mdb_err(rc);
    else if (v.mv_size != 1)
        return kith__fail(r, KITH_ECORRUPT, "names: bad counter");
    else
        next = *(const uint8_t *)v.mv_data;
    if (next > LAST_ID)
        return kith__fail(r, KITH_ETOOBIG, "too many %s names: %.*s gets no number",
                          kind == KITH__NAME_COLL    ? "collection"
                          : kind == KITH__NAME_FIELD ? "field"
                                                     : "index",
                          (int)len, name);
    *id = next;
    next++;
    v.mv_size = 1;
    v.mv_data = &next;
    if ((rc = kith__mdb_put(txn, r->names, &k, &v, 0)) != 0)
        return kith__mdb_err(rc);
    k.mv_size = fwd_key(kb, kind, parent, name, len);
    k.mv_data = kb;
    v.mv_size = 1;
    v.mv_data = id;
    if ((rc = kith__mdb_put(txn, r->names, &k, &v, MDB_NOOVERWRITE)) != 0)
        return kith__mdb_err(rc);
    rk[0] = (uint8_t)(kind - 'a' + 'A');
    rk[1] = parent;
    rk[2] = *id;
    k.mv_size = sizeof rk;
    k.mv_data = rk;
    v.mv_size = len;
    v.mv_data = (void *)name;
    return kith__mdb_err(kith__mdb_put(txn, r->names, &k, &v, MDB_NOOVERWRITE));
}

static uint32_t
cache_slot(char kind, uint8_t parent, const char *name, size_t len)
{
    const uint8_t *p = (const uint8_t *)name;
    uint32_t h = (uint32_t)kind * 31u + parent * 131u + (uint32_t)len * 7u;
    h = h * 33u + p[0];
    h = h * 33u + p[len - 1];
    h = h * 33u + p[len / 2];
    return (h ^ (h >> 7)) & (KITH__NAMES_CACHE - 1);
}

int
kith__names_get(kith_replica *r, MDB_txn *txn, struct kith__names_cache *nc, char kind,
                uint8_t parent, const char *name, size_t len, bool create, uint8_t *id)
{
    uint8_t kb[KEY_MAX];
    MDB_val k, v;
    int rc;

    if (len == 0 || len > KITH__MAX_NAME_BYTES)
        return KITH_ENOTFOUND;
    uint32_t slot = cache_slot(kind, parent, name, len);
    if (nc && nc->e[slot].name && nc->e[slot].kind == kind && nc->e[slot].parent == parent &&
        nc->e[slot].len == len && memcmp(nc->e[slot].name, name, len) == 0) {
        *id = nc->e[slot].id;
        return 0;
    }
    if (r->names == KITH__DBI_FREE)
        rc = v1_get(kind, parent, name, len, id);
    else {
        k.mv_size = fwd_key(kb, kind, parent, name, len);
        k.mv_data = kb;
        rc = kith__mdb_get(txn, r->names, &k, &v);
        if (rc == 0 && v.mv_size == 1)
            *id = *(const uint8_t *)v.mv_data;
        else if (rc == 0)
            return kith__fail(r, KITH_ECORRUPT, "names: bad record");
        else if (rc != MDB_NOTFOUND)
            return kith__mdb_err(rc);
        else if (!create)
            rc = KITH_ENOTFOUND;
        else if ((rc = names_create(r, txn, kind, parent, name, len, id)) < 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    if (nc) {
        const char *stable = kith__name_intern(r, name, len);
        if (!stable)
            return KITH_ENOMEM;
        uint32_t i = slot;
        if (!nc->e[i].name)
            nc->n++;
        nc->e[i].kind = kind;
        nc->e[i].parent = parent;
        nc->e[i].id = *id;
        nc->e[i].len = (uint8_t)len;
        nc->e[i].name = stable;
    }
    return 0;
}

int
kith__names_name(kith_replica *r, MDB_txn *txn, char kind, uint8_t parent, uint8_t id,
                 const char **out)
{
    uint8_t rk[3] = {(uint8_t)(kind - 'a' + 'A'), parent, id};
    MDB_val k = {sizeof rk, rk}, v;
    int rc;

    if (r->names == KITH__DBI_FREE) {
        int i = kind == KITH__NAME_COLL ? (id < 3 ? id : -1) : kith__v1_field(parent, id);
        if (kind == KITH__NAME_INDEX || i < 0)
            return KITH_ENOTFOUND;
        *out = kith__name_intern(r, kith__v1_names[i].ptr, kith__v1_names[i].len);
        return *out ? 0 : KITH_ENOMEM;
    }
    rc = kith__mdb_get(txn, r->names, &k, &v);
    if (rc == MDB_NOTFOUND)
        return KITH_ENOTFOUND;
    if (rc != 0)
        return kith__mdb_err(rc);
    *out = kith__name_intern(r, v.mv_data, v.mv_size);
    return *out ? 0 : KITH_ENOMEM;
}

int
kith__names_resolve(struct kith__applier *a, struct kith__commit *c)
{
    /* Each name of the commit is looked up once: collections by their index in the commit's
     * table, fields by their (collection, field) pair; most commits use a handful. */
    enum { PAIRS = 32 };

    int16_t coll_of[KITH__MAX_COMMIT_NAMES];

    struct {
        uint16_t cname, fname;
        uint8_t id;
    } pairs[PAIRS];

    uint32_t npairs = 0;
    int rc;

    if (c->nnames > KITH__MAX_COMMIT_NAMES)
        return KITH_ETOOBIG;
    for (uint32_t k = 0; k < c->nnames; k++)
        coll_of[k] = -1;
    for (uint32_t i = 0; i < c->nops; i++) {
        struct kith__op *op = &c->ops[i];
        if (coll_of[op->cname] < 0) {
            const struct kith__name *cn = &c->names[op->cname];
            uint8_t id;
            rc = kith__names_get(a->r, a->txn, &a->names, KITH__NAME_COLL, 0, cn->ptr, cn->len,
                                 true, &id);
            if (rc < 0)
                return rc;
            coll_of[op->cname] = id;
        }
        op->coll = (uint8_t)coll_of[op->cname];
        op->field = 0;
        if (!kith__op_has_field(op->kind))
            continue;
        uint32_t p = 0;
        while (p < npairs && (pairs[p].cname != op->cname || pairs[p].fname != op->fname))
            p++;
        if (p < npairs) {
            op->field = pairs[p].id;
            continue;
        }
        const struct kith__name *fn = &c->names[op->fname];
        rc = kith__names_get(a->r, a->txn, &a->names, KITH__NAME_FIELD, op->coll, fn->ptr, fn->len,
                             true, &op->field);
        if (rc < 0)
            return rc;
        if (npairs < PAIRS) {
            pairs[npairs].cname = op->cname;
            pairs[npairs].fname = op->fname;
            pairs[npairs++].id = op->field;
        }
    }
    return 0;
}

/* ---- format 1 -------------------------------------------------------------------------- */

int
kith__names_seed_v1(kith_replica *r, MDB_txn *txn)
{
    uint8_t id;
    int rc;

    for (unsigned c = 0; c < 3; c++) {
        const struct kith__name *cn = &kith__v1_names[c];
        if ((rc = kith__names_get(r, txn, NULL, KITH__NAME_COLL, 0, cn->ptr, cn->len, true, &id)) <
            0)
            return rc;
        if (id != c)
            return kith__fail(r, KITH_ECORRUPT, "names: %s is not number %u", cn->ptr, c);
        for (unsigned f = 1; kith__v1_field(c, f) >= 0; f++) {
            const struct kith__name *fn = &kith__v1_names[kith__v1_field(c, f)];
            if ((rc = kith__names_get(r, txn, NULL, KITH__NAME_FIELD, (uint8_t)c, fn->ptr, fn->len,
                                      true, &id)) < 0)
                return rc;
            if (id != f)
                return kith__fail(r, KITH_ECORRUPT, "names: %s is not number %u", fn->ptr, f);
        }
    }
    for (unsigned i = 0; i < 3; i++) {
        const struct kith__v1_index *x = &kith__v1_indexes[i];
        if ((rc = kith__names_get(r, txn, NULL, KITH__NAME_INDEX, (uint8_t)x->coll, x->name.ptr,
                                  x->name.len, true, &id)) < 0)
            return rc;
        if (id != i + 1)
            return kith__fail(r, KITH_ECORRUPT, "names: index %s is not number %u", x->name.ptr,
                              i + 1);
    }
    return 0;
}
