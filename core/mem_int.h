/*
 * mem_int.h — the inside of the in-memory replica (core/mem.c, mem_table.c, mem_names.c,
 * mem_local.c, mem_read.c): its tables, pools and names, and the small helpers those files
 * share. Nothing outside them includes it; mem.h is the interface.
 *
 * Entries are plain structs in open-addressing arrays; variable-sized data sits in pools and
 * is addressed by offset, so that growing a pool never invalidates an entry. Small payloads
 * (register values up to REG_INLINE bytes, membership, flag and counter arrays of up to
 * DSET_INLINE units, an element's single dot) live in the entry itself, which keeps a field
 * write to two cache lines. Entries name their collection and field by the model's own
 * numbers (see "names" below), never by a commit's.
 */
#ifndef KITH_MEM_INT_H
#define KITH_MEM_INT_H

#include "mem.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ---- pools ---------------------------------------------------------------------------- */

struct pool {
    uint8_t *data;
    size_t len, cap; /* in units of `unit` bytes */
};

/* The byte at offset `off` of a unit-1 pool, or "" while the pool is empty (no NULL + 0). */
static inline const char *
pool_str(const struct pool *p, size_t off)
{
    return p->data ? (const char *)p->data + off : "";
}

/* Make room for `more` units of `unit` bytes; offsets stay below 2^32 units. 0 or ENOMEM. */
int kith__memrep_pool_reserve(struct pool *p, size_t unit, size_t more);

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

/*
 * The sorted arrays of 16-byte units kept per (kind, collection, document, field): a
 * document's membership (field 0) and a flag, both sets of dots (origin, seq), and a
 * counter, its (origin, total) pairs, both halves big-endian, so that they sort by origin
 * like dots. Membership and flags hold one dot per origin that wrote, counters one pair per
 * origin that added: usually one or two, kept inline.
 */
enum dset_kind { DS_MEMB, DS_FLAG, DS_COUNTER };

#define DSET_INLINE 2

/* dset.used: the slot holds an entry; and for DS_MEMB, a DOC_REMOVE was applied to it (DOC-4).
 * One byte for both keeps a dset at 64 bytes. */
#define DSET_USED 1
#define DSET_REMOVED 2

struct dset {
    uint64_t doc_o, doc_s;
    uint32_t doff, dn, dcap; /* dcap <= DSET_INLINE: the units are in inl, else in `dots` */
    uint8_t used;            /* DSET_USED, | DSET_REMOVED; 0 for an empty slot */
    uint8_t kind, coll, field;
    uint8_t inl[DSET_INLINE * KITH__DOT_BYTES];
};

/* A conflict record, its values' payloads in `cbytes` at woff and loff. */
struct conflict {
    uint8_t coll, field;
    kith_dot doc, winner_dot, loser_dot;
    uint64_t winner_hlc, loser_hlc;
    kith_value winner, loser; /* pointers unset: payloads are in `cbytes` */
    uint32_t woff, loff;
};

/* One op of the local commit being built: where its copied payload and observed dots are. */
struct bfix {
    uint32_t voff, ooff;
};

/* ---- names ------------------------------------------------------------------------------
 * The model's own numbers for collection and field names (mem_names.c explains why):
 * every name it meets is interned once (its id is its index in `nm`); a collection name gets
 * the next collection number the first time it names a collection, a field name the next
 * field number of its collection. Numbers fit an op's uint8_t coll and field.
 */
#define MEMREP_MAXCOLL 256  /* collections 0..255 */
#define MEMREP_MAXFIELD 255 /* fields 1..255 of each collection */

struct mname {
    uint32_t off, len; /* the bytes in `nbytes`, NUL-terminated */
    uint64_t hash;
    int16_t coll;  /* the collection number it names, or -1 */
    int16_t fcoll; /* the collection it last got a field number in, or -1 */
    uint8_t field; /* that field number */
};

struct mcoll {
    uint32_t sid;                       /* its name */
    uint32_t nfields;                   /* fields 1..nfields are numbered */
    uint32_t fsid[MEMREP_MAXFIELD + 1]; /* fsid[f]: the name of field f */
};

/* A commit's name, as resolved while applying it: the name's id, the collection number it
 * names, and its field number in collection fcoll. Names the model knows are looked up when
 * the commit is begun, with the numbers they already have; others when an op first uses
 * them. */
struct rname {
    int32_t sid;   /* -1 until resolved */
    int16_t coll;  /* -1 while it names no collection */
    int16_t fcoll; /* -1 while it has no field number */
    uint8_t field;
};

struct kith__memrep {
    uint64_t self, hlc, ops_applied;
    kith_vv vv;
    struct reg *regs;
    size_t nregs, capregs;
    struct elem *elems;
    size_t nelems, capelems;
    struct dset *dsets;
    size_t ndsets, capdsets;
    struct pool bytes;   /* unit 1 */
    struct pool dots;    /* unit KITH__DOT_BYTES */
    struct pool scratch; /* unit KITH__DOT_BYTES: kith__dots_apply output */
    struct conflict *conf;
    size_t nconf, capconf;
    struct pool cbytes; /* unit 1: conflict payloads */
    /* names */
    struct mname *nm;
    size_t nnm, capnm;
    uint32_t *nslot; /* open addressing over nm: index + 1, 0 empty */
    size_t capnslot;
    struct pool nbytes; /* unit 1 */
    struct mcoll *colls;
    size_t ncolls, capcolls;
    /* applying a commit: its names as resolved, and each op's numbers */
    struct rname *rn;
    size_t caprn;
    uint8_t (*rop)[2];
    size_t caprop;
    /* the local commit being built */
    bool building;
    uint64_t b_hlc, b_first;
    struct kith__op *bops;
    struct bfix *bfix;
    size_t bn, bcap;
    struct pool bbytes;        /* unit 1 */
    struct pool bdots;         /* unit sizeof(kith_dot) */
    uint32_t *bnames;          /* its name table: name ids in order of first use */
    struct kith__name *bnamev; /* the same as views, filled when it is handed out */
    size_t bnn, capbnames;
};

static const uint8_t no_dots[KITH__DOT_BYTES];

/* ---- helpers ------------------------------------------------------------------------- */

static inline uint64_t
mix64(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return x;
}

static inline uint64_t
key_hash(int coll, uint64_t o, uint64_t s, int field)
{
    return mix64((o * 0xd6e8feb86659fd93ull) ^
                 (s + ((uint64_t)coll << 56 | (uint64_t)field << 48)));
}

static inline uint64_t
dset_hash(int kind, int coll, uint64_t o, uint64_t s, int field)
{
    return key_hash(coll, o, s ^ ((uint64_t)kind << 40), field);
}

static inline uint64_t
bytes_hash(uint64_t h, const uint8_t *p, size_t n)
{
    uint64_t f = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        f = (f ^ p[i]) * 0x100000001b3ull;
    return mix64(h ^ f ^ n);
}

static inline bool
dot_eq(kith_dot a, kith_dot b)
{
    return a.origin == b.origin && a.seq == b.seq;
}

/* ---- dot sets ------------------------------------------------------------------------- */

/* Where a dot set's bytes are: its entry's inline room `inl` (ninl dots) while dcap <= ninl,
 * else the `dots` pool. */
static inline uint8_t *
dots_at(const struct kith__memrep *m, uint8_t *inl, uint32_t ninl, uint32_t doff, uint32_t dcap)
{
    if (dcap <= ninl)
        return inl;
    return m->dots.data + (size_t)doff * KITH__DOT_BYTES;
}

static inline size_t
dots_copy(const uint8_t *base, uint32_t dn, kith_dot *out, size_t cap)
{
    for (size_t i = 0; i < dn && i < cap; i++)
        out[i] = kith__dot_get(base + i * KITH__DOT_BYTES);
    return dn;
}

/* The bytes of a dset's units / an element's dots (valid while dn > 0). */
static inline const uint8_t *
dset_units(const struct kith__memrep *m, const struct dset *x)
{
    return dots_at(m, (uint8_t *)x->inl, DSET_INLINE, x->doff, x->dcap);
}

static inline const uint8_t *
elem_dots(const struct kith__memrep *m, const struct elem *x)
{
    return x->dn ? dots_at(m, (uint8_t *)x->inl, ELEM_INLINE, x->doff, x->dcap) : no_dots;
}

/* ---- values --------------------------------------------------------------------------- */

/* Does a value of this type carry bytes of its own (u.s)? */
static inline bool
type_has_text(kith_type t)
{
    return t == KITH_TYPE_STRING || t == KITH_TYPE_DATE || t == KITH_TYPE_ENUM ||
           t == KITH_TYPE_BYTES;
}

/* The payload bytes of a value kept in a pool (strings, dates, enums, bytes, references). */
static inline bool
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
static inline kith_value
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

static inline int64_t
value_scalar(const kith_value *v)
{
    if (v->type == KITH_TYPE_INT || v->type == KITH_TYPE_TIME)
        return v->u.i;
    if (v->type == KITH_TYPE_BOOL)
        return v->u.b ? 1 : 0;
    return 0;
}

static inline const uint8_t *
reg_payload(const struct kith__memrep *m, const struct reg *r)
{
    return r->tflags & REG_IN_POOL ? m->bytes.data + r->u.pool.off : r->u.inl;
}

static inline kith_value
reg_value(const struct kith__memrep *m, const struct reg *r)
{
    uint8_t type = r->tflags & (uint8_t)~REG_IN_POOL;
    if (type == KITH_TYPE_INT || type == KITH_TYPE_TIME || type == KITH_TYPE_BOOL)
        return value_view(type, r->u.vi, NULL, 0);
    return value_view(type, 0, reg_payload(m, r), r->vlen);
}

/*
 * memmove, without a call for up to 24 bytes, as most register values, set elements and dset
 * moves are: up to three overlapping loads cover the bytes, and every load comes before any
 * store, so that src and dst may overlap.
 */
static inline void
bytes_move(uint8_t *dst, const uint8_t *src, size_t n)
{
    uint64_t a, b, c;
    uint32_t x, y;
    if (n > 24) {
        memmove(dst, src, n);
    } else if (n >= 8) {
        memcpy(&a, src, 8);
        memcpy(&b, src + n / 2 - 4, 8);
        memcpy(&c, src + n - 8, 8);
        memcpy(dst, &a, 8);
        memcpy(dst + n / 2 - 4, &b, 8);
        memcpy(dst + n - 8, &c, 8);
    } else if (n >= 4) {
        memcpy(&x, src, 4);
        memcpy(&y, src + n - 4, 4);
        memcpy(dst, &x, 4);
        memcpy(dst + n - 4, &y, 4);
    } else if (n > 0) {
        uint8_t b0 = src[0], b1 = src[n / 2], b2 = src[n - 1];
        dst[0] = b0;
        dst[n / 2] = b1;
        dst[n - 1] = b2;
    }
}

/* Big-endian u64 load and store for the hot path (core.h's, without the size checks). */
static inline uint64_t
load_be64(const uint8_t *p)
{
    return kith__be64_get(p);
}

static inline void
store_be64(uint8_t *p, uint64_t v)
{
    kith__be64_put(p, v);
}

/* The int64 a uint64 holds in two's complement, without implementation-defined casts. */
static inline int64_t
u64_as_i64(uint64_t u)
{
    return u <= INT64_MAX ? (int64_t)u : -(int64_t)(UINT64_MAX - u) - 1;
}

/* ---- pools and tables (mem_table.c) ----------------------------------------------------- */

/* Take n units at the end of a pool; *off is where they start. 0 or KITH_ENOMEM. */
int kith__memrep_pool_alloc(struct pool *p, size_t unit, size_t n, uint32_t *off);

/*
 * Each table has a find (NULL when absent) and a get, which inserts an empty entry when the
 * key is new (and may move every entry of that table: earlier pointers into it are stale).
 * Finds and gets are inline: every op makes two or three of them (its entry and its
 * document's membership), and inlined into the rules they cost no call and fold the kind and
 * field a rule passes as constants. A probe that misses gives the empty slot it ended on; a
 * get that misses calls the table's insert, out of line, with the key's hash and that slot,
 * which the insert fills unless the table must grow first. Inserts return 0 or KITH_ENOMEM;
 * a new register holds no value yet (type NULL, w_s 0), a new element or dset no units.
 */
int kith__memrep_reg_insert(struct kith__memrep *m, uint64_t h, size_t slot, int coll, kith_dot doc,
                            int field, struct reg **out);
int kith__memrep_elem_insert(struct kith__memrep *m, uint64_t h, size_t slot, int coll,
                             kith_dot doc, int field, const char *e, size_t len, struct elem **out);
int kith__memrep_dset_insert(struct kith__memrep *m, uint64_t h, size_t slot, int kind, int coll,
                             kith_dot doc, int field, struct dset **out);

static inline struct reg *
reg_probe(const struct kith__memrep *m, uint64_t h, int coll, kith_dot doc, int field, size_t *slot)
{
    size_t mask = m->capregs - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        struct reg *r = &m->regs[i];
        if (!r->used)
            break;
        if (r->doc_o == doc.origin && r->doc_s == doc.seq && r->coll == coll && r->field == field)
            return r;
    }
    *slot = i;
    return NULL;
}

static inline struct reg *
reg_find(const struct kith__memrep *m, int coll, kith_dot doc, int field)
{
    size_t slot;
    return reg_probe(m, key_hash(coll, doc.origin, doc.seq, field), coll, doc, field, &slot);
}

static inline int
reg_get(struct kith__memrep *m, int coll, kith_dot doc, int field, struct reg **out)
{
    uint64_t h = key_hash(coll, doc.origin, doc.seq, field);
    size_t slot;
    struct reg *r = reg_probe(m, h, coll, doc, field, &slot);
    if (!r)
        return kith__memrep_reg_insert(m, h, slot, coll, doc, field, out);
    *out = r;
    return 0;
}

/* The hash of an element's key: elem_find's h and the entry's `hash`. */
static inline uint64_t
elem_hash(int coll, kith_dot doc, int field, const void *e, size_t len)
{
    return bytes_hash(key_hash(coll, doc.origin, doc.seq, field), (const uint8_t *)e, len);
}

static inline struct elem *
elem_probe(const struct kith__memrep *m, int coll, kith_dot doc, int field, const void *e,
           size_t len, uint64_t h, size_t *slot)
{
    size_t mask = m->capelems - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        struct elem *x = &m->elems[i];
        if (!x->used)
            break;
        if (x->hash == h && x->doc_o == doc.origin && x->doc_s == doc.seq && x->coll == coll &&
            x->field == field && x->elen == len &&
            (len == 0 || memcmp(m->bytes.data + x->eoff, e, len) == 0))
            return x;
    }
    *slot = i;
    return NULL;
}

static inline struct elem *
elem_find(const struct kith__memrep *m, int coll, kith_dot doc, int field, const void *e,
          size_t len, uint64_t h)
{
    size_t slot;
    return elem_probe(m, coll, doc, field, e, len, h, &slot);
}

static inline int
elem_get(struct kith__memrep *m, int coll, kith_dot doc, int field, const char *e, size_t len,
         struct elem **out)
{
    uint64_t h = elem_hash(coll, doc, field, e, len);
    size_t slot;
    struct elem *x = elem_probe(m, coll, doc, field, e, len, h, &slot);
    if (!x)
        return kith__memrep_elem_insert(m, h, slot, coll, doc, field, e, len, out);
    *out = x;
    return 0;
}

/* kind: enum dset_kind; field 0 with DS_MEMB. */
static inline struct dset *
dset_probe(const struct kith__memrep *m, uint64_t h, int kind, int coll, kith_dot doc, int field,
           size_t *slot)
{
    size_t mask = m->capdsets - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        struct dset *x = &m->dsets[i];
        if (!x->used)
            break;
        if (x->doc_o == doc.origin && x->doc_s == doc.seq && x->kind == kind && x->coll == coll &&
            x->field == field)
            return x;
    }
    *slot = i;
    return NULL;
}

static inline struct dset *
dset_find(const struct kith__memrep *m, int kind, int coll, kith_dot doc, int field)
{
    size_t slot;
    return dset_probe(m, dset_hash(kind, coll, doc.origin, doc.seq, field), kind, coll, doc, field,
                      &slot);
}

static inline int
dset_get(struct kith__memrep *m, int kind, int coll, kith_dot doc, int field, struct dset **out)
{
    uint64_t h = dset_hash(kind, coll, doc.origin, doc.seq, field);
    size_t slot;
    struct dset *x = dset_probe(m, h, kind, coll, doc, field, &slot);
    if (!x)
        return kith__memrep_dset_insert(m, h, slot, kind, coll, doc, field, out);
    *out = x;
    return 0;
}

/* Is the document a live member of collection number coll? */
static inline bool
memb_live(const struct kith__memrep *m, int coll, kith_dot doc)
{
    const struct dset *x = dset_find(m, DS_MEMB, coll, doc, 0);
    return x && x->dn > 0;
}

/*
 * Apply one OR-set edit to the dot set (*doff, *dn, *dcap, inline room `inl` for ninl): drop
 * `obs`, and with `add`, drop add's origin's lower dots and insert it (kith__dots_apply).
 */
int kith__memrep_dots_edit(struct kith__memrep *m, uint8_t *inl, uint32_t ninl, uint32_t *doff,
                           uint32_t *dn, uint32_t *dcap, const kith_dot *obs, size_t nobs,
                           const kith_dot *add);
/* Move x's units to a pool slot of twice what they need, to make room for more. 0 or
 * KITH_ENOMEM. */
int kith__memrep_dset_grow(struct kith__memrep *m, struct dset *x);

/* Insert the unit (a, b), both halves big-endian, at index `at` of x's sorted units (x may
 * move to a bigger pool slot to make room). 0 or KITH_ENOMEM. */
static inline int
dset_unit_add(struct kith__memrep *m, struct dset *x, uint32_t at, uint64_t a, uint64_t b)
{
    if (x->dn + 1 > (x->dcap <= DSET_INLINE ? DSET_INLINE : x->dcap)) {
        int rc = kith__memrep_dset_grow(m, x);
        if (rc < 0)
            return rc;
    }
    uint8_t *p = dots_at(m, x->inl, DSET_INLINE, x->doff, x->dcap) + (size_t)at * KITH__DOT_BYTES;
    bytes_move(p + KITH__DOT_BYTES, p, (size_t)(x->dn - at) * KITH__DOT_BYTES);
    store_be64(p, a);
    store_be64(p + 8, b);
    x->dn++;
    return 0;
}

/* ---- names (mem_names.c) ---------------------------------------------------------------- */

/* The id of a name, interned when new: 0, KITH_EINVAL (not a name: kith__name_valid),
 * KITH_ENOMEM. */
int kith__memrep_name_add(struct kith__memrep *m, const char *p, size_t len, uint32_t *sid);
/* The id of a known name, or -1. */
long kith__memrep_name_find(const struct kith__memrep *m, const char *p, size_t len);
/* A name's bytes, NUL-terminated; valid until the state next changes. */
const char *kith__memrep_name_str(const struct kith__memrep *m, uint32_t sid);
/* The number of collection name `sid`, given it when new: >= 0, KITH_ETOOBIG, KITH_ENOMEM. */
int kith__memrep_coll_add(struct kith__memrep *m, uint32_t sid);
/* The number of field name `sid` in collection `coll`, given it when new: >= 1, KITH_ETOOBIG. */
int kith__memrep_field_add(struct kith__memrep *m, int coll, uint32_t sid);
/* The numbers of a collection and (when field is not NULL) a field, by NUL-terminated names:
 * find looks them up (KITH_ENOTFOUND when either has none), add gives new ones (KITH_EINVAL
 * for a string that is not a name, KITH_ETOOBIG, KITH_ENOMEM). */
int kith__memrep_names_find(const struct kith__memrep *m, const char *coll, const char *field,
                            int *c, int *f);
int kith__memrep_names_add(struct kith__memrep *m, const char *coll, const char *field, int *c,
                           int *f);
/* Resolving a commit's names while applying it: begin (room for its names and ops, and the
 * names the model knows resolved with their numbers; 0, KITH_EINVAL for a bad name table,
 * KITH_ENOMEM), then for op i its collection and field numbers into m->rop[i] (0, KITH_EINVAL
 * for a bad name or index, KITH_ETOOBIG, KITH_ENOMEM). */
int kith__memrep_resolve_begin(struct kith__memrep *m, const struct kith__commit *c);
int kith__memrep_resolve_op(struct kith__memrep *m, const struct kith__commit *c, uint32_t i);

/* kith__memrep_resolve_op for every op: a few array reads when the op's names have the
 * numbers it needs, as all do but a name's first use in the model or in a collection. */
static inline int
resolve_op(struct kith__memrep *m, const struct kith__commit *c, uint32_t i)
{
    const struct kith__op *op = &c->ops[i];
    const struct rname *rn = m->rn;
    int coll = op->cname < c->nnames ? rn[op->cname].coll : -1;
    int field = 0;
    if (coll < 0)
        return kith__memrep_resolve_op(m, c, i);
    if (kith__op_has_field(op->kind)) {
        if (op->fname >= c->nnames || rn[op->fname].fcoll != coll)
            return kith__memrep_resolve_op(m, c, i);
        field = rn[op->fname].field;
    }
    m->rop[i][0] = (uint8_t)coll;
    m->rop[i][1] = (uint8_t)field;
    return 0;
}

/* ---- the rules (mem.c) -------------------------------------------------------------------- */

/*
 * Does the op's value fit its kind? FIELD_SET: a value of any type but SET (NULL clears);
 * SET_*: a non-empty STRING of at most KITH__MAX_ELEM_BYTES; COUNTER_ADD: an INT; DOC_* and
 * FLAG_*: NULL. Lengths within KITH__MAX_VALUE_BYTES. With `text`, also what the encoder
 * refuses: strings, dates and enums (and elements) that are not UTF-8 or hold a NUL, times
 * outside the years 0001..9999. 0, KITH_EINVAL, KITH_ETOOBIG.
 */
int kith__memrep_value_fits(unsigned kind, const kith_value *v, bool text);
/* Apply one op (already checked) of collection number coll and field number field (0 for
 * DOC_*), the model's numbers (the op's own coll and field are not read), with its dot and
 * HLC: the rules of spec/data-model.md. */
int kith__memrep_apply_op(struct kith__memrep *m, const struct kith__op *op, int coll, int field,
                          kith_dot dot, uint64_t hlc);

#endif /* KITH_MEM_INT_H */
