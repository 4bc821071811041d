/*
 * mem_names.c — the in-memory replica's names (mem.h): its own small numbers for the
 * collection and field names that ops carry.
 *
 * Commits name collections and fields by name, through a table of names per commit
 * (spec/encoding.md "Commit"), and the numbers that entries and ops use are local: each
 * replica gives a collection name the next number the first time it meets it, and a field
 * name the next number of its collection, as the store does in its names database. Two
 * replicas therefore number the same names differently, and nothing that leaves the model
 * (commits by name, the canonical dump, conflict records) shows a number.
 *
 * Names are interned in one hash table (linear probing, at most half full) so that a name is
 * compared once; collections map an interned name to their fields by a short array, and each
 * name remembers its field number in the collection it was last numbered in. When a commit
 * is begun, each of its names is looked up once (struct rname) and takes the numbers it
 * already has, so an op's numbers cost a few array reads; only a name's first use in the
 * model, or as a field of another collection, goes through kith__memrep_resolve_op.
 */
#include "mem_int.h"

#include <stdlib.h>
#include <string.h>

/* Load 8 or 4 bytes at p, in the host's order (hashes and comparisons never leave memory). */
static inline uint64_t
load8(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

static inline uint64_t
load4(const char *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    return w;
}

/*
 * A name's hash. Every commit applied hashes each of its names, mostly short ones: up to 16
 * bytes are two loads that overlap (the first and last 8, or 4, bytes), longer names add a
 * step per 8 bytes between them, and names of 1 to 3 bytes are read by the byte.
 */
static inline uint64_t
name_hash(const char *p, size_t len)
{
    uint64_t a = 0, b = 0;
    if (len >= 8) {
        a = load8(p);
        b = load8(p + len - 8);
        for (size_t i = 8; i + 8 < len; i += 8)
            a = (a ^ load8(p + i)) * 0x9e3779b97f4a7c15ull;
    } else if (len >= 4) {
        a = load4(p);
        b = load4(p + len - 4);
    } else if (len > 0) {
        a = (uint8_t)p[0] | (uint64_t)(uint8_t)p[len / 2] << 8 |
            (uint64_t)(uint8_t)p[len - 1] << 16;
    }
    return mix64(a ^ (b * 0xd6e8feb86659fd93ull) ^ (len << 56) ^ 0x6b6974682d6e6dull);
}

/* Are the len bytes at p and q equal? Names up to 16 bytes without a call to memcmp. */
static inline bool
name_eq(const char *p, const char *q, size_t len)
{
    if (len >= 8 && len <= 16)
        return load8(p) == load8(q) && load8(p + len - 8) == load8(q + len - 8);
    if (len >= 4 && len < 8)
        return load4(p) == load4(q) && load4(p + len - 4) == load4(q + len - 4);
    return len == 0 || memcmp(p, q, len) == 0;
}

/* The id of the name whose hash is h, or -1. */
static inline long
name_lookup(const struct kith__memrep *m, const char *p, size_t len, uint64_t h)
{
    if (m->capnslot == 0)
        return -1;
    size_t mask = m->capnslot - 1;
    for (size_t i = h & mask; m->nslot[i]; i = (i + 1) & mask) {
        const struct mname *x = &m->nm[m->nslot[i] - 1];
        if (x->hash == h && x->len == len && name_eq((const char *)m->nbytes.data + x->off, p, len))
            return (long)m->nslot[i] - 1;
    }
    return -1;
}

long
kith__memrep_name_find(const struct kith__memrep *m, const char *p, size_t len)
{
    return name_lookup(m, p, len, name_hash(p, len));
}

static int
slots_grow(struct kith__memrep *m)
{
    size_t cap = m->capnslot ? m->capnslot * 2 : 64;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t)
        return KITH_ENOMEM;
    for (size_t k = 0; k < m->nnm; k++) {
        size_t i = m->nm[k].hash & (cap - 1);
        while (t[i])
            i = (i + 1) & (cap - 1);
        t[i] = (uint32_t)k + 1;
    }
    free(m->nslot);
    m->nslot = t;
    m->capnslot = cap;
    return 0;
}

/* Intern a name that is not interned yet, whose hash is h. */
static int
name_insert(struct kith__memrep *m, const char *p, size_t len, uint64_t h, uint32_t *sid)
{
    if (!kith__name_valid(p, len))
        return KITH_EINVAL;
    if ((m->nnm + 1) * 2 > m->capnslot) {
        int rc = slots_grow(m);
        if (rc < 0)
            return rc;
    }
    if (m->nnm == m->capnm) {
        size_t cap = m->capnm ? m->capnm * 2 : 32;
        struct mname *t = realloc(m->nm, cap * sizeof *t);
        if (!t)
            return KITH_ENOMEM;
        m->nm = t;
        m->capnm = cap;
    }
    uint32_t off;
    int rc = kith__memrep_pool_alloc(&m->nbytes, 1, len + 1, &off);
    if (rc < 0)
        return rc;
    memcpy(m->nbytes.data + off, p, len);
    m->nbytes.data[off + len] = '\0';
    struct mname *x = &m->nm[m->nnm];
    x->off = off;
    x->len = (uint32_t)len;
    x->hash = h;
    x->coll = -1;
    x->fcoll = -1;
    x->field = 0;
    size_t i = x->hash & (m->capnslot - 1);
    while (m->nslot[i])
        i = (i + 1) & (m->capnslot - 1);
    m->nslot[i] = (uint32_t)m->nnm + 1;
    *sid = (uint32_t)m->nnm++;
    return 0;
}

int
kith__memrep_name_add(struct kith__memrep *m, const char *p, size_t len, uint32_t *sid)
{
    uint64_t h = name_hash(p, len);
    long have = name_lookup(m, p, len, h);
    if (have < 0)
        return name_insert(m, p, len, h, sid);
    *sid = (uint32_t)have;
    return 0;
}

const char *
kith__memrep_name_str(const struct kith__memrep *m, uint32_t sid)
{
    return (const char *)m->nbytes.data + m->nm[sid].off;
}

int
kith__memrep_coll_add(struct kith__memrep *m, uint32_t sid)
{
    if (m->nm[sid].coll >= 0)
        return m->nm[sid].coll;
    if (m->ncolls == MEMREP_MAXCOLL)
        return KITH_ETOOBIG;
    if (m->ncolls == m->capcolls) {
        size_t cap = m->capcolls ? m->capcolls * 2 : 4;
        struct mcoll *t = realloc(m->colls, cap * sizeof *t);
        if (!t)
            return KITH_ENOMEM;
        m->colls = t;
        m->capcolls = cap;
    }
    struct mcoll *c = &m->colls[m->ncolls];
    c->sid = sid;
    c->nfields = 0;
    m->nm[sid].coll = (int16_t)m->ncolls;
    return (int)m->ncolls++;
}

static int
field_find(const struct kith__memrep *m, int coll, uint32_t sid)
{
    const struct mcoll *c = &m->colls[coll];
    for (uint32_t f = 1; f <= c->nfields; f++)
        if (c->fsid[f] == sid)
            return (int)f;
    return KITH_ENOTFOUND;
}

int
kith__memrep_field_add(struct kith__memrep *m, int coll, uint32_t sid)
{
    struct mname *x = &m->nm[sid];
    if (x->fcoll == coll)
        return x->field;
    int f = field_find(m, coll, sid);
    if (f < 0) {
        struct mcoll *c = &m->colls[coll];
        if (c->nfields == MEMREP_MAXFIELD)
            return KITH_ETOOBIG;
        c->fsid[++c->nfields] = sid;
        f = (int)c->nfields;
    }
    x->fcoll = (int16_t)coll;
    x->field = (uint8_t)f;
    return f;
}

int
kith__memrep_names_find(const struct kith__memrep *m, const char *coll, const char *field, int *c,
                        int *f)
{
    long sid = coll ? kith__memrep_name_find(m, coll, strlen(coll)) : -1;
    if (sid < 0 || m->nm[sid].coll < 0)
        return KITH_ENOTFOUND;
    *c = m->nm[sid].coll;
    if (!field)
        return 0;
    sid = kith__memrep_name_find(m, field, strlen(field));
    if (sid < 0)
        return KITH_ENOTFOUND;
    *f = field_find(m, *c, (uint32_t)sid);
    return *f < 0 ? KITH_ENOTFOUND : 0;
}

int
kith__memrep_names_add(struct kith__memrep *m, const char *coll, const char *field, int *c, int *f)
{
    uint32_t sid;
    if (!coll)
        return KITH_EINVAL;
    int rc = kith__memrep_name_add(m, coll, strlen(coll), &sid);
    if (rc < 0)
        return rc;
    rc = kith__memrep_coll_add(m, sid);
    if (rc < 0)
        return rc;
    *c = rc;
    if (!field)
        return 0;
    rc = kith__memrep_name_add(m, field, strlen(field), &sid);
    if (rc < 0)
        return rc;
    rc = kith__memrep_field_add(m, *c, sid);
    if (rc < 0)
        return rc;
    *f = rc;
    return 0;
}

/* ---- a commit's names, while it is applied ----------------------------------------------- */

int
kith__memrep_resolve_begin(struct kith__memrep *m, const struct kith__commit *c)
{
    if (c->nnames > KITH__MAX_COMMIT_NAMES || (c->nnames && !c->names))
        return KITH_EINVAL;
    if (c->nnames > m->caprn) {
        struct rname *t = realloc(m->rn, c->nnames * sizeof *t);
        if (!t)
            return KITH_ENOMEM;
        m->rn = t;
        m->caprn = c->nnames;
    }
    if (c->nops > m->caprop) {
        uint8_t(*t)[2] = realloc(m->rop, c->nops * sizeof *t);
        if (!t)
            return KITH_ENOMEM;
        m->rop = t;
        m->caprop = c->nops;
    }
    for (uint32_t k = 0; k < c->nnames; k++) {
        const struct kith__name *n = &c->names[k];
        long sid = n->len <= KITH__MAX_NAME_BYTES && (n->ptr || n->len == 0)
                       ? name_lookup(m, n->ptr, n->len, name_hash(n->ptr, n->len))
                       : -1; /* not a name the model can have: refused if an op uses it */
        const struct mname *x = sid >= 0 ? &m->nm[sid] : NULL;
        m->rn[k] =
            (struct rname){(int32_t)sid, x ? x->coll : -1, x ? x->fcoll : -1, x ? x->field : 0};
    }
    return 0;
}

/* The id of the commit's name number k, interned when first used. */
static int
resolve_name(struct kith__memrep *m, const struct kith__commit *c, uint32_t k, uint32_t *sid)
{
    if (k >= c->nnames)
        return KITH_EINVAL;
    if (m->rn[k].sid < 0) {
        int rc = kith__memrep_name_add(m, c->names[k].ptr, c->names[k].len, sid);
        if (rc < 0)
            return rc;
        m->rn[k].sid = (int32_t)*sid;
    }
    *sid = (uint32_t)m->rn[k].sid;
    return 0;
}

int
kith__memrep_resolve_op(struct kith__memrep *m, const struct kith__commit *c, uint32_t i)
{
    const struct kith__op *op = &c->ops[i];
    uint32_t sid;
    int rc = resolve_name(m, c, op->cname, &sid);
    if (rc < 0)
        return rc;
    int coll = m->nm[sid].coll >= 0 ? m->nm[sid].coll : kith__memrep_coll_add(m, sid);
    if (coll < 0)
        return coll;
    m->rn[op->cname].coll = (int16_t)coll;
    m->rop[i][0] = (uint8_t)coll;
    m->rop[i][1] = 0;
    if (!kith__op_has_field(op->kind))
        return 0;
    rc = resolve_name(m, c, op->fname, &sid);
    if (rc < 0)
        return rc;
    struct rname *r = &m->rn[op->fname];
    if (r->fcoll != coll) {
        int f = kith__memrep_field_add(m, coll, sid);
        if (f < 0)
            return f;
        r->fcoll = (int16_t)coll;
        r->field = (uint8_t)f;
    }
    m->rop[i][1] = r->field;
    return 0;
}
