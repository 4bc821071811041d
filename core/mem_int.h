/*
 * mem_int.h — the inside of the in-memory replica (core/mem.c, mem_local.c, mem_read.c): its
 * tables and pools, and the small helpers the three files share. Nothing outside those files
 * includes it; mem.h is the interface.
 *
 * Entries are plain structs in open-addressing arrays; variable-sized data sits in pools and
 * is addressed by offset, so that growing a pool never invalidates an entry. Small payloads
 * (register values up to REG_INLINE bytes, membership sets of up to MEMB_INLINE dots, an
 * element's single dot) live in the entry itself, which keeps a field write to two cache
 * lines.
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

/* Field types by (collection, field number), cached from the schema for the apply checks. */
#define MEMREP_MAXCOLL 8
#define MEMREP_MAXFIELD 32
#define MEMREP_NOFIELD 0xff

struct kith__memrep {
    int ncoll;                                      /* kith__schema_ncoll() */
    uint8_t ftype[MEMREP_MAXCOLL][MEMREP_MAXFIELD]; /* kith_type, or MEMREP_NOFIELD */
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

static inline bool
coll_ok(int coll)
{
    return coll >= 0 && coll < kith__schema_ncoll();
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

/* The bytes of a membership's / an element's dots (valid while dn > 0). */
static inline const uint8_t *
memb_dots(const struct kith__memrep *m, const struct memb *x)
{
    return dots_at(m, (uint8_t *)x->inl, MEMB_INLINE, x->doff, x->dcap);
}

static inline const uint8_t *
elem_dots(const struct kith__memrep *m, const struct elem *x)
{
    return x->dn ? dots_at(m, (uint8_t *)x->inl, ELEM_INLINE, x->doff, x->dcap) : no_dots;
}

/* ---- values --------------------------------------------------------------------------- */

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

/* ---- shared by the three files (mem.c) ----------------------------------------------- */

struct reg *kith__memrep_reg_find(const struct kith__memrep *m, int coll, kith_dot doc, int field);
/* h: bytes_hash(key_hash(coll, doc, field), e, len) */
struct elem *kith__memrep_elem_find(const struct kith__memrep *m, int coll, kith_dot doc, int field,
                                    const void *e, size_t len, uint64_t h);
struct memb *kith__memrep_memb_find(const struct kith__memrep *m, int coll, kith_dot doc);
/* Apply one op (already checked) with its dot and HLC: the rules of spec/data-model.md. */
int kith__memrep_apply_op(struct kith__memrep *m, const struct kith__op *op, kith_dot dot,
                          uint64_t hlc);

#endif /* KITH_MEM_INT_H */
