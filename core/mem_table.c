/*
 * mem_table.c — the storage of the in-memory replica (mem.h): byte pools and the three
 * open-addressing tables the rules of core/mem.c read and write.
 *
 * Each table uses linear probing, is kept at most half full and is doubled when it would pass
 * that: registers keyed by (collection, document, field), set elements keyed by (collection,
 * document, field, element bytes), and dsets keyed by (kind, collection, document, field):
 * memberships, flags and counters, each a sorted array of 16-byte units (mem_int.h). Nothing
 * is ever deleted: an element or a dset whose array is empty is simply absent to readers,
 * which keeps probing simple and costs one entry per key ever seen.
 */
#include "mem_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- pools ---------------------------------------------------------------------------- */

int
kith__memrep_pool_reserve(struct pool *p, size_t unit, size_t more)
{
    if (more <= p->cap - p->len)
        return 0;
    if (more > UINT32_MAX - p->len)
        return KITH_ENOMEM;
    size_t cap = p->cap ? p->cap : 256;
    while (cap - p->len < more)
        cap *= 2;
    if (cap > UINT32_MAX)
        cap = UINT32_MAX;
    uint8_t *d = realloc(p->data, cap * unit);
    if (!d)
        return KITH_ENOMEM;
    p->data = d;
    p->cap = cap;
    return 0;
}

int
kith__memrep_pool_alloc(struct pool *p, size_t unit, size_t n, uint32_t *off)
{
    int rc = kith__memrep_pool_reserve(p, unit, n);
    if (rc < 0)
        return rc;
    *off = (uint32_t)p->len;
    p->len += n;
    return 0;
}

/* ---- registers ------------------------------------------------------------------------ */

static int
reg_grow(struct kith__memrep *m)
{
    size_t cap = m->capregs * 2;
    struct reg *t = calloc(cap, sizeof *t);
    if (!t)
        return KITH_ENOMEM;
    for (size_t k = 0; k < m->capregs; k++) {
        const struct reg *r = &m->regs[k];
        if (!r->used)
            continue;
        size_t i = key_hash(r->coll, r->doc_o, r->doc_s, r->field) & (cap - 1);
        while (t[i].used)
            i = (i + 1) & (cap - 1);
        t[i] = *r;
    }
    free(m->regs);
    m->regs = t;
    m->capregs = cap;
    return 0;
}

int
kith__memrep_reg_insert(struct kith__memrep *m, uint64_t h, size_t slot, int coll, kith_dot doc,
                        int field, struct reg **out)
{
    if ((m->nregs + 1) * 2 > m->capregs) {
        int rc = reg_grow(m);
        if (rc < 0)
            return rc;
        slot = h & (m->capregs - 1);
        while (m->regs[slot].used)
            slot = (slot + 1) & (m->capregs - 1);
    }
    struct reg *r = &m->regs[slot];
    memset(r, 0, sizeof *r);
    r->used = 1;
    r->coll = (uint8_t)coll;
    r->field = (uint8_t)field;
    r->doc_o = doc.origin;
    r->doc_s = doc.seq;
    m->nregs++;
    *out = r;
    return 0;
}

/* ---- set elements --------------------------------------------------------------------- */

static int
elem_grow(struct kith__memrep *m)
{
    size_t cap = m->capelems * 2;
    struct elem *t = calloc(cap, sizeof *t);
    if (!t)
        return KITH_ENOMEM;
    for (size_t k = 0; k < m->capelems; k++) {
        if (!m->elems[k].used)
            continue;
        size_t i = m->elems[k].hash & (cap - 1);
        while (t[i].used)
            i = (i + 1) & (cap - 1);
        t[i] = m->elems[k];
    }
    free(m->elems);
    m->elems = t;
    m->capelems = cap;
    return 0;
}

int
kith__memrep_elem_insert(struct kith__memrep *m, uint64_t h, size_t slot, int coll, kith_dot doc,
                         int field, const char *e, size_t len, struct elem **out)
{
    if ((m->nelems + 1) * 2 > m->capelems) {
        int rc = elem_grow(m);
        if (rc < 0)
            return rc;
        slot = h & (m->capelems - 1);
        while (m->elems[slot].used)
            slot = (slot + 1) & (m->capelems - 1);
    }
    uint32_t off = 0;
    int rc = kith__memrep_pool_alloc(&m->bytes, 1, len, &off);
    if (rc < 0)
        return rc;
    bytes_move(m->bytes.data + off, (const uint8_t *)e, len);
    struct elem *x = &m->elems[slot];
    memset(x, 0, sizeof *x);
    x->used = 1;
    x->coll = (uint8_t)coll;
    x->field = (uint8_t)field;
    x->doc_o = doc.origin;
    x->doc_s = doc.seq;
    x->hash = h;
    x->eoff = off;
    x->elen = (uint32_t)len;
    m->nelems++;
    *out = x;
    return 0;
}

/* ---- memberships, flags and counters -------------------------------------------------- */

static int
dset_rehash(struct kith__memrep *m)
{
    size_t cap = m->capdsets * 2;
    struct dset *t = calloc(cap, sizeof *t);
    if (!t)
        return KITH_ENOMEM;
    for (size_t k = 0; k < m->capdsets; k++) {
        const struct dset *x = &m->dsets[k];
        if (!x->used)
            continue;
        size_t i = dset_hash(x->kind, x->coll, x->doc_o, x->doc_s, x->field) & (cap - 1);
        while (t[i].used)
            i = (i + 1) & (cap - 1);
        t[i] = *x;
    }
    free(m->dsets);
    m->dsets = t;
    m->capdsets = cap;
    return 0;
}

int
kith__memrep_dset_insert(struct kith__memrep *m, uint64_t h, size_t slot, int kind, int coll,
                         kith_dot doc, int field, struct dset **out)
{
    if ((m->ndsets + 1) * 2 > m->capdsets) {
        int rc = dset_rehash(m);
        if (rc < 0)
            return rc;
        slot = h & (m->capdsets - 1);
        while (m->dsets[slot].used)
            slot = (slot + 1) & (m->capdsets - 1);
    }
    struct dset *x = &m->dsets[slot];
    memset(x, 0, sizeof *x);
    x->used = DSET_USED;
    x->kind = (uint8_t)kind;
    x->coll = (uint8_t)coll;
    x->field = (uint8_t)field;
    x->doc_o = doc.origin;
    x->doc_s = doc.seq;
    m->ndsets++;
    *out = x;
    return 0;
}

/* Move n units at `from` to a pool slot of twice what they need; the entry then points there. */
static int
units_move(struct kith__memrep *m, uint32_t ninl, const uint8_t *from, size_t n, uint32_t *doff,
           uint32_t *dcap)
{
    uint32_t off;
    size_t cap = n * 2 > ninl ? n * 2 : ninl + 1;
    bool inside =
        m->dots.data && from >= m->dots.data && from < m->dots.data + m->dots.len * KITH__DOT_BYTES;
    size_t src = inside ? (size_t)(from - m->dots.data) : 0;
    int rc = kith__memrep_pool_alloc(&m->dots, KITH__DOT_BYTES, cap, &off);
    if (rc < 0)
        return rc;
    if (inside)
        from = m->dots.data + src;
    if (n)
        memmove(m->dots.data + (size_t)off * KITH__DOT_BYTES, from, n * KITH__DOT_BYTES);
    *doff = off;
    *dcap = (uint32_t)cap;
    return 0;
}

int
kith__memrep_dots_edit(struct kith__memrep *m, uint8_t *inl, uint32_t ninl, uint32_t *doff,
                       uint32_t *dn, uint32_t *dcap, const kith_dot *obs, size_t nobs,
                       const kith_dot *add)
{
    size_t n = *dn;
    int rc = kith__memrep_pool_reserve(&m->scratch, KITH__DOT_BYTES, n + 1);
    if (rc < 0)
        return rc;
    const uint8_t *in = n ? dots_at(m, inl, ninl, *doff, *dcap) : no_dots;
    size_t k = kith__dots_apply(in, n, obs, nobs, add, m->scratch.data);
    bool inline_now = *dcap <= ninl;
    if (inline_now && k <= ninl) {
        *dcap = ninl;
    } else if (k > *dcap || inline_now) {
        /* the set moves to a bigger pool slot (twice what it needs) only when it outgrows
         * its own; its units are in scratch meanwhile */
        uint32_t off;
        size_t cap = k * 2 > ninl ? k * 2 : ninl + 1;
        rc = kith__memrep_pool_alloc(&m->dots, KITH__DOT_BYTES, cap, &off);
        if (rc < 0)
            return rc;
        *doff = off;
        *dcap = (uint32_t)cap;
    }
    if (k)
        memcpy(dots_at(m, inl, ninl, *doff, *dcap), m->scratch.data, k * KITH__DOT_BYTES);
    *dn = (uint32_t)k;
    return 0;
}

int
kith__memrep_dset_grow(struct kith__memrep *m, struct dset *x)
{
    const uint8_t *from = x->dn ? dset_units(m, x) : no_dots;
    return units_move(m, DSET_INLINE, from, x->dn, &x->doff, &x->dcap);
}
