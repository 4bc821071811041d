/*
 * mem.c — a replica's state in memory (see mem.h): the reference model of the CRDT rules of
 * spec/data-model.md and the in-memory merge path of the bench. This file holds the tables
 * and the rules, and applies commits; mem_local.c makes local commits, mem_read.c reads the
 * state and renders the canonical dump; mem_int.h is what they share.
 *
 * Three open-addressing tables with linear probing, each at most half full and doubled when
 * it would pass that: registers keyed by (collection, document, field), set elements keyed by
 * (collection, document, field, element bytes), and membership keyed by (collection,
 * document). Nothing is ever deleted from them: an element or a membership whose dot set is
 * empty is simply absent, which keeps probing simple and costs one entry per key ever seen.
 * A register keeps its payload slot and reuses it while the new value fits, so the pools grow
 * with the state, not with the number of ops applied.
 *
 * The rules themselves are in apply_field_set (LWW-1..4), apply_set_op (ORSET-1..3),
 * apply_doc_add / apply_doc_remove / touch (DOC-1..4, TOUCH-1..2) and kith__memrep_apply
 * (PEND-1..3); the comparisons and dot-set edits are core's (kith__lww_cmp, kith__dots_apply).
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

static int
pool_alloc(struct pool *p, size_t unit, size_t n, uint32_t *off)
{
    int rc = kith__memrep_pool_reserve(p, unit, n);
    if (rc < 0)
        return rc;
    *off = (uint32_t)p->len;
    p->len += n;
    return 0;
}

/* Big-endian u64 load and store for the hot path (core.h's byte loops, as one bswap). */
static inline uint64_t
load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#elif !defined(__GNUC__)
    v = kith__be64_get(p);
#endif
    return v;
}

static inline void
store_be64(uint8_t *p, uint64_t v)
{
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
#elif defined(__GNUC__)
    memcpy(p, &v, 8);
#else
    kith__be64_put(p, v);
#endif
}

int
kith__memrep_new(uint64_t self, struct kith__memrep **out)
{
    *out = NULL;
    if (self == 0)
        return KITH_EINVAL;
    struct kith__memrep *m = calloc(1, sizeof *m);
    if (!m)
        return KITH_ENOMEM;
    m->self = self;
    m->ncoll = kith__schema_ncoll();
    if (m->ncoll > MEMREP_MAXCOLL) { /* the built-in schema fits; a bigger one needs room */
        free(m);
        return KITH_EINVAL;
    }
    memset(m->ftype, MEMREP_NOFIELD, sizeof m->ftype);
    for (int c = 0; c < m->ncoll; c++)
        for (int f = 1; f < MEMREP_MAXFIELD; f++) {
            const kith_field_def *def = kith__schema_field_def(c, f);
            if (def)
                m->ftype[c][f] = (uint8_t)def->type;
        }
    m->capregs = m->capelems = m->capmembs = 64;
    m->regs = calloc(m->capregs, sizeof *m->regs);
    m->elems = calloc(m->capelems, sizeof *m->elems);
    m->membs = calloc(m->capmembs, sizeof *m->membs);
    if (!m->regs || !m->elems || !m->membs) {
        kith__memrep_free(m);
        return KITH_ENOMEM;
    }
    *out = m;
    return 0;
}

void
kith__memrep_free(struct kith__memrep *m)
{
    if (!m)
        return;
    kith_vv_free(&m->vv);
    free(m->regs);
    free(m->elems);
    free(m->membs);
    free(m->bytes.data);
    free(m->dots.data);
    free(m->scratch.data);
    free(m->conf);
    free(m->cbytes.data);
    free(m->bops);
    free(m->bfix);
    free(m->bbytes.data);
    free(m->bdots.data);
    free(m);
}

/* ---- the three tables ----------------------------------------------------------------- */

struct reg *
kith__memrep_reg_find(const struct kith__memrep *m, int coll, kith_dot doc, int field)
{
    size_t mask = m->capregs - 1;
    for (size_t i = key_hash(coll, doc.origin, doc.seq, field) & mask;; i = (i + 1) & mask) {
        struct reg *r = &m->regs[i];
        if (!r->used)
            return NULL;
        if (r->doc_o == doc.origin && r->doc_s == doc.seq && r->coll == coll && r->field == field)
            return r;
    }
}

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

/* The register for the key, inserted empty (used, no value yet: vtype NULL, w_s 0). */
static int
reg_get(struct kith__memrep *m, int coll, kith_dot doc, int field, struct reg **out)
{
    if ((m->nregs + 1) * 2 > m->capregs) {
        int rc = reg_grow(m);
        if (rc < 0)
            return rc;
    }
    size_t mask = m->capregs - 1;
    size_t i = key_hash(coll, doc.origin, doc.seq, field) & mask;
    for (;; i = (i + 1) & mask) {
        struct reg *r = &m->regs[i];
        if (!r->used)
            break;
        if (r->doc_o == doc.origin && r->doc_s == doc.seq && r->coll == coll && r->field == field) {
            *out = r;
            return 0;
        }
    }
    struct reg *r = &m->regs[i];
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

struct elem *
kith__memrep_elem_find(const struct kith__memrep *m, int coll, kith_dot doc, int field,
                       const void *e, size_t len, uint64_t h)
{
    size_t mask = m->capelems - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct elem *x = &m->elems[i];
        if (!x->used)
            return NULL;
        if (x->hash == h && x->doc_o == doc.origin && x->doc_s == doc.seq && x->coll == coll &&
            x->field == field && x->elen == len &&
            (len == 0 || memcmp(m->bytes.data + x->eoff, e, len) == 0))
            return x;
    }
}

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

static int
elem_get(struct kith__memrep *m, int coll, kith_dot doc, int field, const char *e, size_t len,
         struct elem **out)
{
    uint64_t h = bytes_hash(key_hash(coll, doc.origin, doc.seq, field), (const uint8_t *)e, len);
    struct elem *x = kith__memrep_elem_find(m, coll, doc, field, e, len, h);
    if (x) {
        *out = x;
        return 0;
    }
    if ((m->nelems + 1) * 2 > m->capelems) {
        int rc = elem_grow(m);
        if (rc < 0)
            return rc;
    }
    uint32_t off = 0;
    int rc = pool_alloc(&m->bytes, 1, len, &off);
    if (rc < 0)
        return rc;
    if (len)
        memcpy(m->bytes.data + off, e, len);
    size_t i = h & (m->capelems - 1);
    while (m->elems[i].used)
        i = (i + 1) & (m->capelems - 1);
    x = &m->elems[i];
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

struct memb *
kith__memrep_memb_find(const struct kith__memrep *m, int coll, kith_dot doc)
{
    size_t mask = m->capmembs - 1;
    for (size_t i = key_hash(coll, doc.origin, doc.seq, 0) & mask;; i = (i + 1) & mask) {
        struct memb *x = &m->membs[i];
        if (!x->used)
            return NULL;
        if (x->doc_o == doc.origin && x->doc_s == doc.seq && x->coll == coll)
            return x;
    }
}

static int
memb_grow(struct kith__memrep *m)
{
    size_t cap = m->capmembs * 2;
    struct memb *t = calloc(cap, sizeof *t);
    if (!t)
        return KITH_ENOMEM;
    for (size_t k = 0; k < m->capmembs; k++) {
        const struct memb *x = &m->membs[k];
        if (!x->used)
            continue;
        size_t i = key_hash(x->coll, x->doc_o, x->doc_s, 0) & (cap - 1);
        while (t[i].used)
            i = (i + 1) & (cap - 1);
        t[i] = *x;
    }
    free(m->membs);
    m->membs = t;
    m->capmembs = cap;
    return 0;
}

static int
memb_get(struct kith__memrep *m, int coll, kith_dot doc, struct memb **out)
{
    struct memb *x = kith__memrep_memb_find(m, coll, doc);
    if (x) {
        *out = x;
        return 0;
    }
    if ((m->nmembs + 1) * 2 > m->capmembs) {
        int rc = memb_grow(m);
        if (rc < 0)
            return rc;
    }
    size_t i = key_hash(coll, doc.origin, doc.seq, 0) & (m->capmembs - 1);
    while (m->membs[i].used)
        i = (i + 1) & (m->capmembs - 1);
    x = &m->membs[i];
    memset(x, 0, sizeof *x);
    x->used = 1;
    x->coll = (uint8_t)coll;
    x->doc_o = doc.origin;
    x->doc_s = doc.seq;
    m->nmembs++;
    *out = x;
    return 0;
}

/* ---- dot sets ------------------------------------------------------------------------- */

/*
 * Apply one OR-set edit to the dot set (*doff, *dn, *dcap, inline room `inl` for ninl): drop
 * `obs`, and with `add`, drop add's origin's lower dots and insert it (kith__dots_apply). The
 * set moves to a bigger pool slot (twice what it needs) only when it outgrows its own.
 */
static int
dots_edit(struct kith__memrep *m, uint8_t *inl, uint32_t ninl, uint32_t *doff, uint32_t *dn,
          uint32_t *dcap, const kith_dot *obs, size_t nobs, const kith_dot *add)
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
        uint32_t off;
        size_t cap = k * 2 > ninl ? k * 2 : ninl + 1;
        rc = pool_alloc(&m->dots, KITH__DOT_BYTES, cap, &off);
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

/* ---- values --------------------------------------------------------------------------- */

/*
 * Store v in r. A payload goes inline when it fits, else into r's pool slot, which is kept
 * and reused while later values fit it. v may point into m->bytes or into r itself.
 */
static int
reg_store(struct kith__memrep *m, struct reg *r, const kith_value *v)
{
    const uint8_t *p;
    size_t n;
    if (!value_payload(v, &p, &n)) {
        r->tflags = (uint8_t)v->type; /* a pool slot, if any, is given up */
        r->vlen = 0;
        r->u.vi = value_scalar(v);
        return 0;
    }
    uint8_t *dst;
    if ((r->tflags & REG_IN_POOL) && n <= r->u.pool.cap) {
        dst = m->bytes.data + r->u.pool.off;
    } else if (n <= REG_INLINE) {
        dst = r->u.inl;
        r->tflags = 0;
    } else {
        bool inside = p && m->bytes.data && p >= m->bytes.data && p < m->bytes.data + m->bytes.len;
        size_t src = inside ? (size_t)(p - m->bytes.data) : 0;
        uint32_t off;
        int rc = pool_alloc(&m->bytes, 1, n, &off);
        if (rc < 0)
            return rc;
        if (inside)
            p = m->bytes.data + src;
        r->u.pool.off = off;
        r->u.pool.cap = (uint32_t)n;
        r->tflags = REG_IN_POOL;
        dst = m->bytes.data + off;
    }
    if (n)
        memmove(dst, p, n);
    r->vlen = (uint32_t)n;
    r->tflags = (uint8_t)((r->tflags & REG_IN_POOL) | (uint8_t)v->type);
    return 0;
}

/* ---- conflict records ----------------------------------------------------------------- */

static int
conflict_add(struct kith__memrep *m, int coll, kith_dot doc, int field, kith_dot wdot,
             uint64_t whlc, const kith_value *wv, kith_dot ldot, uint64_t lhlc,
             const kith_value *lv)
{
    if (m->nconf == m->capconf) {
        size_t cap = m->capconf ? m->capconf * 2 : 16;
        struct conflict *t = realloc(m->conf, cap * sizeof *t);
        if (!t)
            return KITH_ENOMEM;
        m->conf = t;
        m->capconf = cap;
    }
    const uint8_t *wp, *lp;
    size_t wn, ln;
    value_payload(wv, &wp, &wn);
    value_payload(lv, &lp, &ln);
    uint32_t woff, loff;
    int rc = pool_alloc(&m->cbytes, 1, wn + ln, &woff);
    if (rc < 0)
        return rc;
    loff = woff + (uint32_t)wn;
    if (wn)
        memcpy(m->cbytes.data + woff, wp, wn);
    if (ln)
        memcpy(m->cbytes.data + loff, lp, ln);
    struct conflict *x = &m->conf[m->nconf++];
    memset(x, 0, sizeof *x);
    x->c.coll = coll;
    x->c.field = field;
    x->c.doc = doc;
    x->c.winner_dot = wdot;
    x->c.loser_dot = ldot;
    x->c.winner_hlc = whlc;
    x->c.loser_hlc = lhlc;
    x->c.winner = value_view((uint8_t)wv->type, value_scalar(wv), NULL, wn);
    x->c.loser = value_view((uint8_t)lv->type, value_scalar(lv), NULL, ln);
    if (wv->type == KITH_TYPE_REF)
        x->c.winner.u.ref = wv->u.ref;
    if (lv->type == KITH_TYPE_REF)
        x->c.loser.u.ref = lv->u.ref;
    x->woff = woff;
    x->loff = loff;
    return 0;
}

/* ---- the rules ------------------------------------------------------------------------ */

static const kith_value null_value = {.type = KITH_TYPE_NULL};

/*
 * TOUCH-1: a write to a document adds the write's dot to its membership and drops the same
 * origin's lower dots (they are in the writer's past). DOC-4: when that brings a deleted
 * document back, the delete was overruled by this concurrent write: a field-0 conflict.
 */
static int
touch(struct kith__memrep *m, int coll, kith_dot doc, kith_dot dot, uint64_t hlc)
{
    struct memb *x;
    int rc = memb_get(m, coll, doc, &x);
    if (rc < 0)
        return rc;
    bool revives = x->dn == 0 && x->removed;
    /*
     * The common case, without kith__dots_apply: a set holds at most one dot per origin (an
     * add drops its origin's lower dots, and an origin's ops arrive in seq order), so when
     * the writer's origin is there, the touch replaces that dot's seq in place; the order by
     * (origin, seq) is unchanged.
     */
    uint8_t *p = x->dn ? dots_at(m, x->inl, MEMB_INLINE, x->doff, x->dcap) : NULL;
    for (uint32_t i = 0; i < x->dn; i++, p += KITH__DOT_BYTES)
        if (load_be64(p) == dot.origin && load_be64(p + 8) < dot.seq) {
            store_be64(p + 8, dot.seq);
            return 0;
        }
    rc = dots_edit(m, x->inl, MEMB_INLINE, &x->doff, &x->dn, &x->dcap, NULL, 0, &dot);
    if (rc < 0 || !revives)
        return rc;
    return conflict_add(m, coll, doc, 0, dot, hlc, &null_value, (kith_dot){0, 0}, 0, &null_value);
}

/*
 * LWW-1..4: the register takes the write with the greatest (hlc, origin, seq). The write names
 * the dot it replaced at its author; when a current value exists and its dot is not that one,
 * the two writes were concurrent and a conflict (winner, loser, both values) is recorded,
 * whichever of them wins.
 */
static int
apply_field_set(struct kith__memrep *m, const struct kith__op *op, kith_dot dot, uint64_t hlc)
{
    struct reg *r;
    int rc = reg_get(m, op->coll, op->doc, op->field, &r);
    if (rc < 0)
        return rc;
    kith_dot cur = {r->w_o, r->w_s};
    int cmp = 1;
    if (cur.seq != 0) { /* a write holds the register */
        cmp = kith__lww_cmp(hlc, dot, r->hlc, cur);
        if (cmp == 0)
            return 0; /* the same write again: nothing to do */
        if (!dot_eq(op->replaced, cur)) {
            kith_value old = reg_value(m, r);
            if (cmp > 0)
                rc = conflict_add(m, op->coll, op->doc, op->field, dot, hlc, &op->value, cur,
                                  r->hlc, &old);
            else
                rc = conflict_add(m, op->coll, op->doc, op->field, cur, r->hlc, &old, dot, hlc,
                                  &op->value);
            if (rc < 0)
                return rc;
        }
    }
    if (cmp < 0)
        return 0;
    rc = reg_store(m, r, &op->value);
    if (rc < 0)
        return rc;
    r->hlc = hlc;
    r->w_o = dot.origin;
    r->w_s = dot.seq;
    return 0;
}

/* ORSET-1..3: an add drops the dots it observed (and its origin's lower ones) and adds its
 * own; a remove drops the dots it observed. Dots it did not observe survive: add wins. */
static int
apply_set_op(struct kith__memrep *m, const struct kith__op *op, kith_dot dot)
{
    struct elem *x;
    int rc = elem_get(m, op->coll, op->doc, op->field, op->value.u.s.ptr, op->value.u.s.len, &x);
    if (rc < 0)
        return rc;
    return dots_edit(m, x->inl, ELEM_INLINE, &x->doff, &x->dn, &x->dcap, op->observed,
                     op->nobserved, op->kind == KITH_OP_SET_ADD ? &dot : NULL);
}

/* DOC-1: creating a document adds the dot that names it to its membership (a DOC_ADD of an
 * existing document is an OR-set add like any other: it drops what it observed). */
static int
apply_doc_add(struct kith__memrep *m, const struct kith__op *op, kith_dot dot)
{
    struct memb *x;
    int rc = memb_get(m, op->coll, op->doc, &x);
    if (rc < 0)
        return rc;
    return dots_edit(m, x->inl, MEMB_INLINE, &x->doff, &x->dn, &x->dcap, op->observed,
                     op->nobserved, &dot);
}

/* DOC-2..4: a delete drops the membership dots it observed. Dots it did not observe (a
 * concurrent edit's touch) keep the document alive, and then the delete was overruled. */
static int
apply_doc_remove(struct kith__memrep *m, const struct kith__op *op, kith_dot dot, uint64_t hlc)
{
    struct memb *x;
    int rc = memb_get(m, op->coll, op->doc, &x);
    if (rc < 0)
        return rc;
    rc = dots_edit(m, x->inl, MEMB_INLINE, &x->doff, &x->dn, &x->dcap, op->observed, op->nobserved,
                   NULL);
    if (rc < 0)
        return rc;
    x->removed = 1;
    if (x->dn == 0)
        return 0;
    kith_dot survivor = kith__dot_get(memb_dots(m, x) + (size_t)(x->dn - 1) * KITH__DOT_BYTES);
    return conflict_add(m, op->coll, op->doc, 0, survivor, 0, &null_value, dot, hlc, &null_value);
}

/* One op, already checked. */
int
kith__memrep_apply_op(struct kith__memrep *m, const struct kith__op *op, kith_dot dot, uint64_t hlc)
{
    int rc;
    switch (op->kind) {
    case KITH_OP_FIELD_SET:
        rc = apply_field_set(m, op, dot, hlc);
        break;
    case KITH_OP_SET_ADD:
    case KITH_OP_SET_REMOVE:
        rc = apply_set_op(m, op, dot);
        break;
    case KITH_OP_DOC_ADD:
        return apply_doc_add(m, op, dot);
    case KITH_OP_DOC_REMOVE:
        return apply_doc_remove(m, op, dot, hlc);
    default:
        return KITH_EINVAL;
    }
    if (rc < 0)
        return rc;
    return touch(m, op->coll, op->doc, dot, hlc);
}

/* ---- applying commits ----------------------------------------------------------------- */

/* Is the dot applied, or made by an earlier op of this commit (op index i)? */
static bool
dep_ok(const struct kith__memrep *m, const struct kith__commit *c, uint32_t i, kith_dot d)
{
    if (d.origin == 0 || d.seq == 0)
        return false;
    if (d.origin == c->origin)
        return d.seq < c->first_seq + i;
    return kith__vv_get(&m->vv, d.origin) >= d.seq;
}

static inline bool
value_shape_ok(const kith_value *v)
{
    const uint8_t *p;
    size_t n;
    if (value_payload(v, &p, &n) && v->type != KITH_TYPE_REF)
        return n <= KITH__MAX_VALUE_BYTES && (n == 0 || p != NULL);
    return true;
}

/* Check op i of c: 0, KITH_EINVAL (structure) or KITH_EGAP (a dot it names is not applied:
 * its document, a replaced dot, a referenced document, an observed dot; PEND-2). */
static int
check_op(const struct kith__memrep *m, const struct kith__commit *c, uint32_t i)
{
    const struct kith__op *op = &c->ops[i];
    kith_dot self = {c->origin, c->first_seq + i};
    if (op->coll >= m->ncoll || op->doc.origin == 0 || op->doc.seq == 0)
        return KITH_EINVAL;
    if (op->nobserved > KITH__MAX_OBSERVED || (op->nobserved && !op->observed))
        return KITH_EINVAL;
    uint8_t ftype = op->field < MEMREP_MAXFIELD ? m->ftype[op->coll][op->field] : MEMREP_NOFIELD;
    bool missing = false;
    switch (op->kind) {
    case KITH_OP_FIELD_SET:
        if (ftype == MEMREP_NOFIELD || ftype == KITH_TYPE_SET || op->nobserved)
            return KITH_EINVAL;
        if (op->value.type != KITH_TYPE_NULL && op->value.type != (kith_type)ftype)
            return KITH_EINVAL;
        if (!value_shape_ok(&op->value))
            return KITH_EINVAL;
        if (op->replaced.origin || op->replaced.seq)
            missing = !dep_ok(m, c, i, op->replaced);
        break;
    case KITH_OP_SET_ADD:
    case KITH_OP_SET_REMOVE:
        if (ftype != KITH_TYPE_SET || op->value.type != KITH_TYPE_STRING ||
            !value_shape_ok(&op->value))
            return KITH_EINVAL;
        break;
    case KITH_OP_DOC_ADD: /* creates the document named by its own dot, or adds to one */
        if (op->field != 0 || (dot_eq(op->doc, self) && op->nobserved))
            return KITH_EINVAL;
        break;
    case KITH_OP_DOC_REMOVE:
        if (op->field != 0)
            return KITH_EINVAL;
        break;
    default:
        return KITH_EINVAL;
    }
    /* the document (its creation) and a referenced document are dependencies too
     * (spec/encoding.md 3.6): their author had applied them */
    if (!dot_eq(op->doc, self) && !dep_ok(m, c, i, op->doc))
        missing = true;
    if (op->kind == KITH_OP_FIELD_SET && op->value.type == KITH_TYPE_REF &&
        !dep_ok(m, c, i, kith__docid_to_dot(&op->value.u.ref)))
        missing = true;
    for (uint32_t k = 0; k < op->nobserved; k++)
        if (!dep_ok(m, c, i, op->observed[k]))
            missing = true;
    return missing ? KITH_EGAP : 0;
}

int
kith__memrep_apply(struct kith__memrep *m, const struct kith__commit *c, uint64_t wall_ms)
{
    if (!m || !c || m->building || c->origin == 0 || c->first_seq == 0 || c->nops == 0 || !c->ops ||
        c->nops > KITH__MAX_COMMIT_OPS || c->first_seq > UINT64_MAX - c->nops)
        return KITH_EINVAL;
    uint64_t last = c->first_seq + c->nops - 1;
    uint64_t have = kith__vv_get(&m->vv, c->origin);
    if (last <= have)
        return KITH__MEMREP_KNOWN;
    if (c->first_seq <= have)
        return KITH_EINVAL; /* straddles what is held: not one of this origin's commits */
    if (c->first_seq != have + 1)
        return KITH_EGAP; /* PEND-1: an origin's commits apply in seq order */
    int gap = 0;
    for (uint32_t i = 0; i < c->nops; i++) {
        int rc = check_op(m, c, i);
        if (rc == KITH_EINVAL)
            return rc;
        if (rc < 0)
            gap = rc;
    }
    if (gap)
        return gap; /* PEND-2: wait for the dots it names */
    if (wall_ms != KITH__MEMREP_NO_CLOCK && kith__hlc_too_far_ahead(c->hlc, wall_ms))
        return KITH__MEMREP_TOO_EARLY; /* PEND-3 */
    int rc = kith__vv_raise(&m->vv, c->origin, last);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < c->nops; i++) {
        kith_dot dot = {c->origin, c->first_seq + i};
        rc = kith__memrep_apply_op(m, &c->ops[i], dot, c->hlc);
        if (rc < 0)
            return rc;
    }
    m->hlc = kith__hlc_observe(m->hlc, c->hlc);
    m->ops_applied += c->nops;
    return 0;
}
