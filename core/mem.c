/*
 * mem.c — a replica's state in memory (see mem.h): the reference model of the CRDT rules of
 * spec/data-model.md and the in-memory merge path of the bench.
 *
 * Three open-addressing tables with linear probing, each at most half full and doubled when
 * it would pass that: registers keyed by (collection, document, field), set elements keyed by
 * (collection, document, field, element bytes), and membership keyed by (collection,
 * document). Nothing is ever deleted from them: an element or a membership whose dot set is
 * empty is simply absent, which keeps probing simple and costs one entry per key ever seen.
 * Variable-sized data lives in pools addressed by offsets (so that growing a pool never
 * invalidates an entry): register payloads and element bytes in `bytes`, dot sets in `dots`
 * (16-byte big-endian dots, the form kith__dots_apply works on). A register keeps its payload
 * slot and reuses it while the new value fits, so the pools grow with the state, not with the
 * number of ops applied.
 *
 * The rules themselves are in apply_field_set (LWW-1..4), apply_set_op (ORSET-1..3),
 * apply_doc_add / apply_doc_remove / touch (DOC-1..4, TOUCH-1..2) and kith__memrep_apply
 * (PEND-1..3); the comparisons and dot-set edits are core's (kith__lww_cmp, kith__dots_apply).
 */
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pools ---------------------------------------------------------------------------- */

struct pool {
    uint8_t *data;
    size_t len, cap; /* in units of `unit` bytes */
};

/* Make room for `more` units of `unit` bytes; offsets stay below 2^32 units. */
static int
pool_reserve(struct pool *p, size_t unit, size_t more)
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
    int rc = pool_reserve(p, unit, n);
    if (rc < 0)
        return rc;
    *off = (uint32_t)p->len;
    p->len += n;
    return 0;
}

/* ---- entries and the state ------------------------------------------------------------ */

/* Payloads up to this size live in the register itself: one cache line less per write. */
#define REG_INLINE 24
#define REG_IN_POOL 0x80 /* tflags: the payload is in `bytes` at u.pool */

struct reg {
    uint64_t doc_o, doc_s;
    uint64_t hlc, w_o, w_s; /* the winning write */
    uint32_t vlen;          /* payload bytes (STRING, DATE, ENUM, BYTES, REF) */
    uint8_t used, coll, field;
    uint8_t tflags; /* the value's kith_type, | REG_IN_POOL */

    union {
        int64_t vi; /* INT, TIME; BOOL as 0/1 */

        struct {
            uint32_t off, cap;
        } pool;

        uint8_t inl[REG_INLINE];
    } u;
};

/* An element usually has one live dot: it is kept inline. */
#define ELEM_INLINE 1

struct elem {
    uint64_t doc_o, doc_s, hash;
    uint32_t eoff, elen;     /* element bytes in `bytes` */
    uint32_t doff, dn, dcap; /* dcap <= ELEM_INLINE: the dots are in inl, else in `dots` */
    uint8_t used, coll, field;
    uint8_t inl[ELEM_INLINE * KITH__DOT_BYTES];
};

/* Membership sets hold one dot per origin that wrote: usually one or two, kept inline. */
#define MEMB_INLINE 2

struct memb {
    uint64_t doc_o, doc_s;
    uint32_t doff, dn, dcap; /* dcap <= MEMB_INLINE: the dots are in inl, else in `dots` */
    uint8_t used, coll, removed;
    uint8_t inl[MEMB_INLINE * KITH__DOT_BYTES];
};

struct conflict {
    struct kith__memrep_conflict c; /* values' pointers unset; payloads in `cbytes` */
    uint32_t woff, loff;
};

/* One op of the local commit being built: where its copied payload and observed dots are. */
struct bfix {
    uint32_t voff, ooff;
};

struct kith__memrep {
    uint64_t self, hlc, ops_applied;
    kith_vv vv;
    struct reg *regs;
    size_t nregs, capregs;
    struct elem *elems;
    size_t nelems, capelems;
    struct memb *membs;
    size_t nmembs, capmembs;
    struct pool bytes;   /* unit 1 */
    struct pool dots;    /* unit KITH__DOT_BYTES */
    struct pool scratch; /* unit KITH__DOT_BYTES: kith__dots_apply output */
    struct conflict *conf;
    size_t nconf, capconf;
    struct pool cbytes; /* unit 1: conflict payloads */
    /* the local commit being built */
    bool building;
    uint64_t b_hlc, b_first;
    struct kith__op *bops;
    struct bfix *bfix;
    size_t bn, bcap;
    struct pool bbytes; /* unit 1 */
    struct pool bdots;  /* unit sizeof(kith_dot) */
};

static const uint8_t no_dots[KITH__DOT_BYTES];

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

static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return x;
}

static uint64_t
key_hash(int coll, uint64_t o, uint64_t s, int field)
{
    return mix64((o * 0xd6e8feb86659fd93ull) ^
                 (s + ((uint64_t)coll << 56 | (uint64_t)field << 48)));
}

static uint64_t
bytes_hash(uint64_t h, const uint8_t *p, size_t n)
{
    uint64_t f = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        f = (f ^ p[i]) * 0x100000001b3ull;
    return mix64(h ^ f ^ n);
}

static bool
dot_eq(kith_dot a, kith_dot b)
{
    return a.origin == b.origin && a.seq == b.seq;
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

static struct reg *
reg_find(const struct kith__memrep *m, int coll, kith_dot doc, int field)
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

static struct elem *
elem_find(const struct kith__memrep *m, int coll, kith_dot doc, int field, const void *e,
          size_t len, uint64_t h)
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
    struct elem *x = elem_find(m, coll, doc, field, e, len, h);
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

static struct memb *
memb_find(const struct kith__memrep *m, int coll, kith_dot doc)
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
    struct memb *x = memb_find(m, coll, doc);
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

/* Where a dot set's bytes are: its entry's inline room `inl` (ninl dots) while dcap <= ninl,
 * else the `dots` pool. */
static uint8_t *
dots_at(const struct kith__memrep *m, uint8_t *inl, uint32_t ninl, uint32_t doff, uint32_t dcap)
{
    if (dcap <= ninl)
        return inl;
    return m->dots.data + (size_t)doff * KITH__DOT_BYTES;
}

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
    int rc = pool_reserve(&m->scratch, KITH__DOT_BYTES, n + 1);
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

static size_t
dots_copy(const uint8_t *base, uint32_t dn, kith_dot *out, size_t cap)
{
    for (size_t i = 0; i < dn && i < cap; i++)
        out[i] = kith__dot_get(base + i * KITH__DOT_BYTES);
    return dn;
}

/* The bytes of a membership's / an element's dots (valid while dn > 0). */
static const uint8_t *
memb_dots(const struct kith__memrep *m, const struct memb *x)
{
    return dots_at(m, (uint8_t *)x->inl, MEMB_INLINE, x->doff, x->dcap);
}

static const uint8_t *
elem_dots(const struct kith__memrep *m, const struct elem *x)
{
    return x->dn ? dots_at(m, (uint8_t *)x->inl, ELEM_INLINE, x->doff, x->dcap) : no_dots;
}

/* ---- values --------------------------------------------------------------------------- */

/* The payload bytes of a value kept in a pool (strings, dates, enums, bytes, references). */
static bool
value_payload(const kith_value *v, const uint8_t **p, size_t *n)
{
    switch (v->type) {
    case KITH_TYPE_STRING:
    case KITH_TYPE_DATE:
    case KITH_TYPE_ENUM:
    case KITH_TYPE_BYTES:
        *p = (const uint8_t *)v->u.s.ptr;
        *n = v->u.s.len;
        return true;
    case KITH_TYPE_REF:
        *p = v->u.ref.bytes;
        *n = KITH_DOCID_BYTES;
        return true;
    default:
        *p = NULL;
        *n = 0;
        return false;
    }
}

/* A value whose payload is at `p` (pool memory), the scalar in `vi`. */
static kith_value
value_view(uint8_t type, int64_t vi, const uint8_t *p, size_t n)
{
    kith_value v;
    memset(&v, 0, sizeof v);
    v.type = (kith_type)type;
    switch (v.type) {
    case KITH_TYPE_INT:
    case KITH_TYPE_TIME:
        v.u.i = vi;
        break;
    case KITH_TYPE_BOOL:
        v.u.b = vi != 0;
        break;
    case KITH_TYPE_REF:
        if (p)
            memcpy(v.u.ref.bytes, p, KITH_DOCID_BYTES);
        break;
    case KITH_TYPE_STRING:
    case KITH_TYPE_DATE:
    case KITH_TYPE_ENUM:
    case KITH_TYPE_BYTES:
        v.u.s.ptr = (const char *)p;
        v.u.s.len = n;
        break;
    default:
        break;
    }
    return v;
}

static int64_t
value_scalar(const kith_value *v)
{
    if (v->type == KITH_TYPE_INT || v->type == KITH_TYPE_TIME)
        return v->u.i;
    if (v->type == KITH_TYPE_BOOL)
        return v->u.b ? 1 : 0;
    return 0;
}

static const uint8_t *
reg_payload(const struct kith__memrep *m, const struct reg *r)
{
    return r->tflags & REG_IN_POOL ? m->bytes.data + r->u.pool.off : r->u.inl;
}

static kith_value
reg_value(const struct kith__memrep *m, const struct reg *r)
{
    uint8_t type = r->tflags & (uint8_t)~REG_IN_POOL;
    if (type == KITH_TYPE_INT || type == KITH_TYPE_TIME || type == KITH_TYPE_BOOL)
        return value_view(type, r->u.vi, NULL, 0);
    return value_view(type, 0, reg_payload(m, r), r->vlen);
}

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
static int
apply_op(struct kith__memrep *m, const struct kith__op *op, kith_dot dot, uint64_t hlc)
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

static bool
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
    if (op->coll >= kith__schema_ncoll() || op->doc.origin == 0 || op->doc.seq == 0)
        return KITH_EINVAL;
    if (op->nobserved > KITH__MAX_OBSERVED || (op->nobserved && !op->observed))
        return KITH_EINVAL;
    const kith_field_def *def = kith__schema_field_def(op->coll, op->field);
    bool missing = false;
    switch (op->kind) {
    case KITH_OP_FIELD_SET:
        if (!def || def->type == KITH_TYPE_SET || op->nobserved)
            return KITH_EINVAL;
        if (op->value.type != KITH_TYPE_NULL && op->value.type != def->type)
            return KITH_EINVAL;
        if (!value_shape_ok(&op->value))
            return KITH_EINVAL;
        if (op->replaced.origin || op->replaced.seq)
            missing = !dep_ok(m, c, i, op->replaced);
        break;
    case KITH_OP_SET_ADD:
    case KITH_OP_SET_REMOVE:
        if (!def || def->type != KITH_TYPE_SET || op->value.type != KITH_TYPE_STRING ||
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
        rc = apply_op(m, &c->ops[i], dot, c->hlc);
        if (rc < 0)
            return rc;
    }
    m->hlc = kith__hlc_observe(m->hlc, c->hlc);
    m->ops_applied += c->nops;
    return 0;
}

/* ---- local commits -------------------------------------------------------------------- */

int
kith__memrep_begin(struct kith__memrep *m, uint64_t wall_ms)
{
    if (!m || m->building)
        return KITH_EINVAL;
    m->b_hlc = kith__hlc_tick(m->hlc, wall_ms);
    m->hlc = m->b_hlc;
    m->b_first = kith__vv_get(&m->vv, m->self) + 1;
    m->bn = 0;
    m->bbytes.len = 0;
    m->bdots.len = 0;
    m->building = true;
    return 0;
}

/* Make room in the builder for one op with n payload bytes and nobs observed dots. */
static int
local_reserve(struct kith__memrep *m, size_t n, size_t nobs)
{
    if (m->bn == m->bcap) {
        size_t cap = m->bcap ? m->bcap * 2 : 16;
        struct kith__op *o = realloc(m->bops, cap * sizeof *o);
        if (!o)
            return KITH_ENOMEM;
        m->bops = o;
        struct bfix *f = realloc(m->bfix, cap * sizeof *f);
        if (!f)
            return KITH_ENOMEM;
        m->bfix = f;
        m->bcap = cap;
    }
    int rc = pool_reserve(&m->bbytes, 1, n);
    if (rc == 0)
        rc = pool_reserve(&m->bdots, sizeof(kith_dot), nobs);
    return rc;
}

/*
 * Record and apply a local op. Its observed dots (nobs of them) are already at the tail of
 * m->bdots; local_reserve(m, payload, nobs) has succeeded. The op's value is copied into
 * the builder, so the caller's memory may go away afterwards.
 */
static int
local_op(struct kith__memrep *m, struct kith__op *op, size_t nobs)
{
    const uint8_t *p;
    size_t n;
    struct bfix fix = {(uint32_t)m->bbytes.len, (uint32_t)m->bdots.len};
    if (value_payload(&op->value, &p, &n) && op->value.type != KITH_TYPE_REF) {
        if (n)
            memcpy(m->bbytes.data + fix.voff, p, n);
        op->value.u.s.ptr = (const char *)m->bbytes.data + fix.voff;
        m->bbytes.len += n;
    }
    op->observed = nobs ? (const kith_dot *)m->bdots.data + fix.ooff : NULL;
    op->nobserved = (uint32_t)nobs;
    m->bdots.len += nobs;
    kith_dot dot = {m->self, m->b_first + m->bn};
    int rc = apply_op(m, op, dot, m->b_hlc);
    if (rc < 0)
        return rc;
    m->bops[m->bn] = *op;
    m->bfix[m->bn] = fix;
    m->bn++;
    m->ops_applied++;
    return 0;
}

static kith_dot *
local_obs(struct kith__memrep *m)
{
    return (kith_dot *)m->bdots.data + m->bdots.len;
}

static bool
coll_ok(int coll)
{
    return coll >= 0 && coll < kith__schema_ncoll();
}

int
kith__memrep_doc_create(struct kith__memrep *m, int coll, kith_dot *doc)
{
    if (!m || !m->building || !coll_ok(coll))
        return KITH_EINVAL;
    int rc = local_reserve(m, 0, 0);
    if (rc < 0)
        return rc;
    struct kith__op op;
    memset(&op, 0, sizeof op);
    op.kind = KITH_OP_DOC_ADD;
    op.coll = (uint8_t)coll;
    op.doc.origin = m->self;
    op.doc.seq = m->b_first + m->bn;
    op.value.type = KITH_TYPE_NULL;
    rc = local_op(m, &op, 0);
    if (rc == 0 && doc)
        *doc = op.doc;
    return rc;
}

int
kith__memrep_doc_delete(struct kith__memrep *m, int coll, kith_dot doc)
{
    if (!m || !m->building || !coll_ok(coll))
        return KITH_EINVAL;
    const struct memb *x = memb_find(m, coll, doc);
    if (!x || x->dn == 0)
        return KITH_ENOTFOUND;
    int rc = local_reserve(m, 0, x->dn);
    if (rc < 0)
        return rc;
    size_t nobs = dots_copy(memb_dots(m, x), x->dn, local_obs(m), x->dn);
    struct kith__op op;
    memset(&op, 0, sizeof op);
    op.kind = KITH_OP_DOC_REMOVE;
    op.coll = (uint8_t)coll;
    op.doc = doc;
    op.value.type = KITH_TYPE_NULL;
    return local_op(m, &op, nobs);
}

int
kith__memrep_field_set(struct kith__memrep *m, int coll, kith_dot doc, int field,
                       const kith_value *v, char *why, size_t why_cap)
{
    if (!m || !m->building || !coll_ok(coll) || !v)
        return KITH_EINVAL;
    const kith_field_def *def = kith__schema_field_def(coll, field);
    if (!def || def->type == KITH_TYPE_SET)
        return KITH_EINVAL;
    int rc = kith__schema_check(coll, field, v, why, why_cap);
    if (rc < 0)
        return rc;
    if (!kith__memrep_doc_live(m, coll, doc))
        return KITH_ENOTFOUND;
    const uint8_t *p;
    size_t n;
    value_payload(v, &p, &n);
    rc = local_reserve(m, n, 0);
    if (rc < 0)
        return rc;
    struct kith__op op;
    memset(&op, 0, sizeof op);
    op.kind = KITH_OP_FIELD_SET;
    op.coll = (uint8_t)coll;
    op.field = (uint8_t)field;
    op.doc = doc;
    op.value = *v;
    const struct reg *r = reg_find(m, coll, doc, field);
    if (r && r->w_s) {
        op.replaced.origin = r->w_o;
        op.replaced.seq = r->w_s;
    }
    return local_op(m, &op, 0);
}

static int
local_set_op(struct kith__memrep *m, uint8_t kind, int coll, kith_dot doc, int field,
             const char *elem, size_t len, char *why, size_t why_cap)
{
    if (!m || !m->building || !coll_ok(coll) || (len && !elem))
        return KITH_EINVAL;
    const kith_field_def *def = kith__schema_field_def(coll, field);
    if (!def || def->type != KITH_TYPE_SET)
        return KITH_EINVAL;
    int rc = kith__schema_check_elem(coll, field, elem, len, why, why_cap);
    if (rc < 0)
        return rc;
    if (!kith__memrep_doc_live(m, coll, doc))
        return KITH_ENOTFOUND;
    uint64_t h = bytes_hash(key_hash(coll, doc.origin, doc.seq, field), (const uint8_t *)elem, len);
    const struct elem *x = elem_find(m, coll, doc, field, elem, len, h);
    size_t have = x ? x->dn : 0;
    if (kind == KITH_OP_SET_REMOVE && have == 0)
        return 0; /* nothing to remove: no op */
    rc = local_reserve(m, len, have);
    if (rc < 0)
        return rc;
    size_t nobs = have ? dots_copy(elem_dots(m, x), x->dn, local_obs(m), have) : 0;
    struct kith__op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.coll = (uint8_t)coll;
    op.field = (uint8_t)field;
    op.doc = doc;
    op.value.type = KITH_TYPE_STRING;
    op.value.u.s.ptr = elem;
    op.value.u.s.len = len;
    return local_op(m, &op, nobs);
}

int
kith__memrep_set_add(struct kith__memrep *m, int coll, kith_dot doc, int field, const char *elem,
                     size_t len, char *why, size_t why_cap)
{
    return local_set_op(m, KITH_OP_SET_ADD, coll, doc, field, elem, len, why, why_cap);
}

int
kith__memrep_set_remove(struct kith__memrep *m, int coll, kith_dot doc, int field, const char *elem,
                        size_t len, char *why, size_t why_cap)
{
    return local_set_op(m, KITH_OP_SET_REMOVE, coll, doc, field, elem, len, why, why_cap);
}

int
kith__memrep_commit(struct kith__memrep *m, struct kith__commit **out)
{
    if (!m || !m->building || !out)
        return KITH_EINVAL;
    *out = NULL;
    if (m->bn == 0) {
        m->building = false;
        return 0;
    }
    for (size_t i = 0; i < m->bn; i++) { /* the builder's pools may have moved */
        struct kith__op *op = &m->bops[i];
        if (op->value.type != KITH_TYPE_REF && op->value.type != KITH_TYPE_NULL &&
            op->value.type != KITH_TYPE_INT && op->value.type != KITH_TYPE_TIME &&
            op->value.type != KITH_TYPE_BOOL)
            op->value.u.s.ptr = (const char *)m->bbytes.data + m->bfix[i].voff;
        op->observed = op->nobserved ? (const kith_dot *)m->bdots.data + m->bfix[i].ooff : NULL;
    }
    struct kith__commit c = {.origin = m->self,
                             .first_seq = m->b_first,
                             .hlc = m->b_hlc,
                             .nops = (uint32_t)m->bn,
                             .ops = m->bops};
    int rc = kith__memrep_commit_copy(&c, out);
    if (rc < 0)
        return rc;
    rc = kith__vv_raise(&m->vv, m->self, m->b_first + m->bn - 1);
    if (rc < 0) {
        kith__memrep_commit_free(*out);
        *out = NULL;
        return rc;
    }
    m->building = false;
    return 0;
}

#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

int
kith__memrep_commit_copy(const struct kith__commit *c, struct kith__commit **out)
{
    *out = NULL;
    if (!c || (c->nops && !c->ops) || c->nops > KITH__MAX_COMMIT_OPS)
        return KITH_EINVAL;
    size_t nobs = 0, nbytes = 0;
    for (uint32_t i = 0; i < c->nops; i++) {
        const uint8_t *p;
        size_t n;
        if (c->ops[i].nobserved > KITH__MAX_OBSERVED)
            return KITH_EINVAL;
        nobs += c->ops[i].nobserved;
        if (value_payload(&c->ops[i].value, &p, &n) && c->ops[i].value.type != KITH_TYPE_REF) {
            if (n > KITH__MAX_VALUE_BYTES)
                return KITH_EINVAL;
            nbytes += n;
        }
    }
    size_t size = ALIGN8(sizeof(struct kith__commit)) + c->nops * sizeof(struct kith__op) +
                  nobs * sizeof(kith_dot) + nbytes;
    uint8_t *mem = malloc(size);
    if (!mem)
        return KITH_ENOMEM;
    struct kith__commit *copy = (struct kith__commit *)mem;
    struct kith__op *ops = (struct kith__op *)(mem + ALIGN8(sizeof *copy));
    kith_dot *dots = (kith_dot *)(ops + c->nops);
    uint8_t *bytes = (uint8_t *)(dots + nobs);
    *copy = *c;
    copy->ops = c->nops ? ops : NULL;
    for (uint32_t i = 0; i < c->nops; i++) {
        const struct kith__op *src = &c->ops[i];
        const uint8_t *p;
        size_t n;
        ops[i] = *src;
        if (src->nobserved) {
            memcpy(dots, src->observed, src->nobserved * sizeof *dots);
            ops[i].observed = dots;
            dots += src->nobserved;
        } else {
            ops[i].observed = NULL;
        }
        if (value_payload(&src->value, &p, &n) && src->value.type != KITH_TYPE_REF) {
            if (n)
                memcpy(bytes, p, n);
            ops[i].value.u.s.ptr = (const char *)bytes;
            bytes += n;
        }
    }
    *out = copy;
    return 0;
}

void
kith__memrep_commit_free(struct kith__commit *c)
{
    free(c);
}

/* ---- reading -------------------------------------------------------------------------- */

uint64_t
kith__memrep_self(const struct kith__memrep *m)
{
    return m->self;
}

const kith_vv *
kith__memrep_vv(const struct kith__memrep *m)
{
    return &m->vv;
}

uint64_t
kith__memrep_hlc(const struct kith__memrep *m)
{
    return m->hlc;
}

uint64_t
kith__memrep_ops_applied(const struct kith__memrep *m)
{
    return m->ops_applied;
}

bool
kith__memrep_doc_live(const struct kith__memrep *m, int coll, kith_dot doc)
{
    const struct memb *x = coll_ok(coll) ? memb_find(m, coll, doc) : NULL;
    return x && x->dn > 0;
}

size_t
kith__memrep_doc_dots(const struct kith__memrep *m, int coll, kith_dot doc, kith_dot *out,
                      size_t cap)
{
    const struct memb *x = coll_ok(coll) ? memb_find(m, coll, doc) : NULL;
    if (!x)
        return 0;
    return dots_copy(x->dn ? memb_dots(m, x) : no_dots, x->dn, out, out ? cap : 0);
}

int
kith__memrep_field_get(const struct kith__memrep *m, int coll, kith_dot doc, int field,
                       kith_value *out, uint64_t *hlc, kith_dot *dot)
{
    const struct reg *r = coll_ok(coll) ? reg_find(m, coll, doc, field) : NULL;
    if (!r || r->w_s == 0)
        return KITH_ENOTFOUND;
    if (out)
        *out = reg_value(m, r);
    if (hlc)
        *hlc = r->hlc;
    if (dot) {
        dot->origin = r->w_o;
        dot->seq = r->w_s;
    }
    return 0;
}

size_t
kith__memrep_set_dots(const struct kith__memrep *m, int coll, kith_dot doc, int field,
                      const char *elem, size_t len, kith_dot *out, size_t cap)
{
    if (!coll_ok(coll))
        return 0;
    uint64_t h = bytes_hash(key_hash(coll, doc.origin, doc.seq, field), (const uint8_t *)elem, len);
    const struct elem *x = elem_find(m, coll, doc, field, elem, len, h);
    if (!x)
        return 0;
    return dots_copy(elem_dots(m, x), x->dn, out, out ? cap : 0);
}

bool
kith__memrep_set_has(const struct kith__memrep *m, int coll, kith_dot doc, int field,
                     const char *elem, size_t len)
{
    return kith__memrep_set_dots(m, coll, doc, field, elem, len, NULL, 0) > 0;
}

size_t
kith__memrep_nconflicts(const struct kith__memrep *m)
{
    return m->nconf;
}

int
kith__memrep_conflict_get(const struct kith__memrep *m, size_t i, struct kith__memrep_conflict *out)
{
    if (i >= m->nconf)
        return KITH_ENOTFOUND;
    const struct conflict *x = &m->conf[i];
    *out = x->c;
    if (out->winner.type != KITH_TYPE_REF)
        out->winner.u.s.ptr = (const char *)m->cbytes.data + x->woff;
    if (out->loser.type != KITH_TYPE_REF)
        out->loser.u.s.ptr = (const char *)m->cbytes.data + x->loff;
    if (out->winner.type == KITH_TYPE_INT || out->winner.type == KITH_TYPE_TIME ||
        out->winner.type == KITH_TYPE_BOOL || out->winner.type == KITH_TYPE_NULL)
        out->winner.u = x->c.winner.u;
    if (out->loser.type == KITH_TYPE_INT || out->loser.type == KITH_TYPE_TIME ||
        out->loser.type == KITH_TYPE_BOOL || out->loser.type == KITH_TYPE_NULL)
        out->loser.u = x->c.loser.u;
    return 0;
}

/* ---- the canonical dump --------------------------------------------------------------- */

/* Text being built, with the first error kept. */
struct text {
    struct kith__wbuf *b;
    int err;
};

static void
put(struct text *t, const void *p, size_t n)
{
    if (t->err == 0 && kith__wbuf_put(t->b, p, n) < 0)
        t->err = KITH_ENOMEM;
}

static void putf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
putf(struct text *t, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        t->err = t->err ? t->err : KITH_EINVAL;
        return;
    }
    put(t, buf, (size_t)n);
}

static void
put_hex(struct text *t, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        char two[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
        put(t, two, 2);
    }
}

static void
put_key(struct text *t, int coll, uint64_t o, uint64_t s)
{
    putf(t, "%d %016llx%016llx", coll, (unsigned long long)o, (unsigned long long)s);
}

static void
put_dots(struct text *t, const uint8_t *base, uint32_t dn)
{
    for (uint32_t i = 0; i < dn; i++) {
        kith_dot d = kith__dot_get(base + (size_t)i * KITH__DOT_BYTES);
        putf(t, "%s%016llx:%llu", i ? "," : " ", (unsigned long long)d.origin,
             (unsigned long long)d.seq);
    }
}

static void
put_value(struct text *t, const kith_value *v)
{
    switch (v->type) {
    case KITH_TYPE_NULL:
        put(t, "null", 4);
        return;
    case KITH_TYPE_INT:
        putf(t, "i:%lld", (long long)v->u.i);
        return;
    case KITH_TYPE_TIME:
        putf(t, "t:%lld", (long long)v->u.i);
        return;
    case KITH_TYPE_BOOL:
        put(t, v->u.b ? "true" : "false", v->u.b ? 4 : 5);
        return;
    case KITH_TYPE_REF:
        put(t, "r:", 2);
        put_hex(t, v->u.ref.bytes, KITH_DOCID_BYTES);
        return;
    case KITH_TYPE_BYTES:
        put(t, "b:", 2);
        put_hex(t, (const uint8_t *)v->u.s.ptr, v->u.s.len);
        return;
    default:
        break;
    }
    put(t, v->type == KITH_TYPE_DATE ? "d\"" : v->type == KITH_TYPE_ENUM ? "e\"" : "s\"", 2);
    for (size_t i = 0; i < v->u.s.len; i++) {
        unsigned char c = (unsigned char)v->u.s.ptr[i];
        if (c == '"' || c == '\\')
            putf(t, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            putf(t, "\\x%02x", c);
        else
            put(t, &c, 1);
    }
    put(t, "\"", 1);
}

struct line {
    const uint8_t *p;
    size_t n;
};

static int
line_cmp(const void *a, const void *b)
{
    const struct line *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/*
 * Lines, each "\n"-terminated, sorted bytewise (documents by collection then id; within a
 * document D before E before F, fields by number, elements by bytes):
 *   <coll> <docid> D[ <dots>]                           membership (full: only non-empty)
 *   <coll> <docid> E <ff> <element hex>[ <dots>]        a live element
 *   <coll> <docid> F <ff> <value>[ @<hlc hex> <origin hex>:<seq>]   a register
 * Dots are "<origin hex>:<seq>" joined by ','. The bracketed parts are left out with
 * KITH__MEMREP_DUMP_LIVE, which also leaves out documents that are not live and their content.
 */
int
kith__memrep_dump(const struct kith__memrep *m, unsigned flags, struct kith__wbuf *out)
{
    bool live_only = flags & KITH__MEMREP_DUMP_LIVE;
    struct kith__wbuf buf = {0};
    struct text t = {&buf, 0};
    size_t nlines = 0;
    size_t *starts = malloc((m->nregs + m->nelems + m->nmembs + 1) * sizeof *starts);
    struct line *lines = NULL;
    int rc = KITH_ENOMEM;
    if (!starts)
        goto out_free;
    for (size_t i = 0; i < m->capmembs; i++) {
        const struct memb *x = &m->membs[i];
        if (!x->used || x->dn == 0)
            continue;
        starts[nlines++] = buf.len;
        put_key(&t, x->coll, x->doc_o, x->doc_s);
        put(&t, " D", 2);
        if (!live_only)
            put_dots(&t, memb_dots(m, x), x->dn);
        put(&t, "\n", 1);
    }
    for (size_t i = 0; i < m->capelems; i++) {
        const struct elem *x = &m->elems[i];
        kith_dot doc = {x->doc_o, x->doc_s};
        if (!x->used || x->dn == 0 || (live_only && !kith__memrep_doc_live(m, x->coll, doc)))
            continue;
        starts[nlines++] = buf.len;
        put_key(&t, x->coll, x->doc_o, x->doc_s);
        putf(&t, " E %02d ", x->field);
        put_hex(&t, m->bytes.data + x->eoff, x->elen);
        if (!live_only)
            put_dots(&t, elem_dots(m, x), x->dn);
        put(&t, "\n", 1);
    }
    for (size_t i = 0; i < m->capregs; i++) {
        const struct reg *x = &m->regs[i];
        kith_dot doc = {x->doc_o, x->doc_s};
        if (!x->used || x->w_s == 0 || (live_only && !kith__memrep_doc_live(m, x->coll, doc)))
            continue;
        starts[nlines++] = buf.len;
        put_key(&t, x->coll, x->doc_o, x->doc_s);
        putf(&t, " F %02d ", x->field);
        kith_value v = reg_value(m, x);
        put_value(&t, &v);
        if (!live_only)
            putf(&t, " @%016llx %016llx:%llu", (unsigned long long)x->hlc,
                 (unsigned long long)x->w_o, (unsigned long long)x->w_s);
        put(&t, "\n", 1);
    }
    if (t.err) {
        rc = t.err;
        goto out_free;
    }
    lines = malloc((nlines + 1) * sizeof *lines);
    if (!lines)
        goto out_free;
    for (size_t i = 0; i < nlines; i++) {
        size_t end = i + 1 < nlines ? starts[i + 1] : buf.len;
        lines[i].p = buf.data + starts[i];
        lines[i].n = end - starts[i];
    }
    qsort(lines, nlines, sizeof *lines, line_cmp);
    rc = kith__wbuf_reserve(out, buf.len);
    for (size_t i = 0; i < nlines && rc == 0; i++)
        rc = kith__wbuf_put(out, lines[i].p, lines[i].n);
out_free:
    free(lines);
    free(starts);
    kith__wbuf_free(&buf);
    return rc;
}
