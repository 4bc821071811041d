/*
 * batch.c — the batch, the one payload of wire messages and bundle files (spec/encoding.md
 * "Batch"): a sender, an origin table, the commits (each origin's in seq order) and the
 * signed heads that end each origin's run.
 *
 * A batch is flat: one array of arrays of integers, strs and bins. So the decoder reads it in
 * place with the strict header reader (kith__mp_head) after the guard has proved the shape,
 * instead of handing it to msgpack_unpack: a zone would cost 24 bytes per object, and a
 * batch may hold 64 MiB of small objects. Commit bytes and signatures stay views into the
 * input; the two result arrays come from the caller's arena. Nothing here verifies a
 * signature or decodes a commit: the store does that per origin, in one transaction.
 */
#include "core.h"
#include "group.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* Format 3 is written by the store; 2 by sessions with peers of protocol 3 or lower (and by
 * the encoder when asked for no format); 1 is still read. */
#define BATCH_MAX_ORIGINS 1024u
#define BATCH_MAX_NAMES 65535u
/* The smallest canonical commit: [hlc, [], [[2, coll, 0, seq]]] with one-byte integers. */
#define COMMIT_MIN_BYTES 9u

/* ---- names on the wire --------------------------------------------------------------------
 * A format-2 commit carries its own table of names (strs), which its canonical bytes hash. In
 * a batch of format 2 that table travels as indexes into one table of names for the whole
 * batch, so a name costs its bytes once per batch, not once per commit: the encoder swaps
 * each commit's strs for indexes and the decoder swaps them back into the canonical bytes,
 * in the arena. Nothing else in the commit moves, so this is a copy, not a re-encoding.
 */

struct name_set {
    uint32_t n, cap;     /* cap a power of two, at least twice n */
    uint32_t *slot;      /* index + 1 into names, 0 for empty */
    const uint8_t **ptr; /* the names, in order of first use */
    uint32_t *len;
};

static uint32_t
name_hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void
name_set_free(struct name_set *s)
{
    free(s->slot);
    free(s->ptr);
    free(s->len);
    memset(s, 0, sizeof *s);
}

/* The index of a name, adding it when new (add) or refusing a repeat (!add): >= 0, or
 * KITH_ENOMEM, KITH_ETOOBIG (too many names), KITH_EMALFORMED (a repeat when !add). */
static long
name_set_put(struct name_set *s, const uint8_t *p, uint32_t n, bool add)
{
    if (2 * (s->n + 1) > s->cap) {
        uint32_t cap = s->cap ? 2 * s->cap : 64;
        uint32_t *slot = calloc(cap, sizeof *slot);
        const uint8_t **ptr = realloc(s->ptr, cap / 2 * sizeof *ptr);
        uint32_t *len = ptr ? realloc(s->len, cap / 2 * sizeof *len) : NULL;
        if (ptr)
            s->ptr = ptr;
        if (len)
            s->len = len;
        if (!slot || !ptr || !len) {
            free(slot);
            return KITH_ENOMEM;
        }
        for (uint32_t k = 0; k < s->n; k++) {
            uint32_t i = name_hash(s->ptr[k], s->len[k]) & (cap - 1);
            while (slot[i])
                i = (i + 1) & (cap - 1);
            slot[i] = k + 1;
        }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    uint32_t i = name_hash(p, n) & (s->cap - 1);
    for (; s->slot[i]; i = (i + 1) & (s->cap - 1)) {
        uint32_t k = s->slot[i] - 1;
        if (s->len[k] == n && memcmp(s->ptr[k], p, n) == 0)
            return add ? (long)k : KITH_EMALFORMED;
    }
    if (s->n == BATCH_MAX_NAMES)
        return KITH_ETOOBIG;
    s->slot[i] = s->n + 1;
    s->ptr[s->n] = p;
    s->len[s->n] = n;
    return (long)s->n++;
}

static size_t
uint_size(uint64_t v)
{
    return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : 5;
}

static size_t
str_head_size(uint64_t n)
{
    return n < 32 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : 5;
}

/* Where a commit keeps its names: `at` the offset of the names array's first element, `end`
 * the offset after its last, `n` their count. Returns 0; 1 for bytes that are not a commit
 * of format 2 (one of format 1 has no names; what is no commit at all travels as it is, and
 * the commit decoder refuses it); or KITH_EMALFORMED for a commit of format 2 whose head is
 * damaged. The elements are checked to be of type `want`. */
static int
names_span(const uint8_t *p, size_t len, enum kith__mp_type want, size_t *at, size_t *end,
           uint64_t *n)
{
    struct kith__mp_head h;
    size_t off = 0;
    if (kith__mp_head(p, len, &h) < 0 || h.type != KITH__MP_ARRAY || h.v != 4)
        return 1; /* format 1, or not a commit at all: the store's decoder will say */
    off += h.size;
    if (kith__mp_head(p + off, len - off, &h) < 0 || h.type != KITH__MP_UINT) /* hlc */
        return KITH_EMALFORMED;
    off += h.size;
    if (kith__mp_head(p + off, len - off, &h) < 0 || h.type != KITH__MP_ARRAY)
        return KITH_EMALFORMED;
    off += h.size;
    for (uint64_t k = h.v; k > 0; k--) { /* the origins */
        struct kith__mp_head o;
        if (kith__mp_head(p + off, len - off, &o) < 0 || o.type != KITH__MP_UINT)
            return KITH_EMALFORMED;
        off += o.size;
    }
    if (kith__mp_head(p + off, len - off, &h) < 0 || h.type != KITH__MP_ARRAY)
        return KITH_EMALFORMED;
    off += h.size;
    *at = off;
    *n = h.v;
    for (uint64_t k = h.v; k > 0; k--) {
        struct kith__mp_head e;
        if (kith__mp_head(p + off, len - off, &e) < 0 || e.type != want)
            return KITH_EMALFORMED;
        off += e.size;
        if (want == KITH__MP_STR) {
            if (e.v > len - off)
                return KITH_EMALFORMED;
            off += (size_t)e.v;
        }
    }
    *end = off;
    return 0;
}

/* How a canonical commit goes on the wire, as names_intern planned it: its length there,
 * where its names lie (at == end: it travels as it is), and their indexes in the batch's
 * table, ix[first .. first + n) of the batch's one array. */
struct wire_commit {
    size_t len, at, end, first, n;
};

struct wire_plan {
    struct wire_commit *c;
    uint32_t *ix;
    size_t nix, capix;
};

/* Note a canonical commit's names in the batch's table and plan its wire form in *w.
 * 0, KITH_EINVAL (a commit of format 2's shape that the decoder would refuse: it cannot
 * travel), KITH_ETOOBIG, KITH_ENOMEM. */
static int
names_intern(struct name_set *s, struct wire_plan *plan, const uint8_t *p, size_t len,
             struct wire_commit *w)
{
    uint64_t n;
    int rc = names_span(p, len, KITH__MP_STR, &w->at, &w->end, &n);
    w->first = plan->nix;
    w->n = 0;
    if (rc != 0) {
        w->len = len;
        w->at = w->end = len;
        return rc == 1 ? 0 : KITH_EINVAL;
    }
    if (plan->nix + n > plan->capix) {
        size_t cap = plan->capix ? plan->capix : 256;
        while (cap < plan->nix + n)
            cap *= 2;
        uint32_t *ix = realloc(plan->ix, cap * sizeof *ix);
        if (!ix)
            return KITH_ENOMEM;
        plan->ix = ix;
        plan->capix = cap;
    }
    w->len = w->at + (len - w->end);
    for (size_t off = w->at; off < w->end;) {
        struct kith__mp_head e;
        (void)kith__mp_head(p + off, len - off, &e);
        if (!kith__name_valid((const char *)p + off + e.size, (size_t)e.v))
            return KITH_EINVAL;
        long k = name_set_put(s, p + off + e.size, (uint32_t)e.v, true);
        if (k < 0)
            return (int)k;
        plan->ix[plan->nix++] = (uint32_t)k;
        w->n++;
        w->len += uint_size((uint64_t)k);
        off += e.size + (size_t)e.v;
    }
    return 0;
}

/* Write a canonical commit as it goes on the wire, as names_intern planned it: the bytes
 * around its names as they are, its names as indexes. */
static int
names_pack(msgpack_packer *pk, const struct wire_plan *plan, const uint8_t *p, size_t len,
           const struct wire_commit *w)
{
    int prc = msgpack_pack_bin(pk, w->len);
    if (w->at == w->end)
        return prc | msgpack_pack_bin_body(pk, p, len);
    prc |= msgpack_pack_bin_body(pk, p, w->at);
    for (size_t i = 0; i < w->n; i++)
        prc |= msgpack_pack_uint64(pk, plan->ix[w->first + i]);
    return prc | msgpack_pack_bin_body(pk, p + w->end, len - w->end);
}

/* Rebuild the canonical bytes of a commit received in a batch of format 2, whose names are
 * indexes into the batch's table (`names`, `used` of them met so far in order of first use).
 * A format-1 commit stays as it is. */
static int
names_unpack(const struct name_set *names, uint64_t *used, struct kith__batch_commit *bc,
             struct kith__arena *arena)
{
    size_t at, end, off, canon;
    uint64_t n;
    int rc = names_span(bc->bytes, bc->len, KITH__MP_UINT, &at, &end, &n);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    canon = at + (bc->len - end);
    for (off = at; off < end;) {
        struct kith__mp_head e;
        (void)kith__mp_head(bc->bytes + off, bc->len - off, &e);
        if (e.v >= names->n || e.v > *used)
            return KITH_EMALFORMED;
        if (e.v == *used)
            (*used)++;
        canon += str_head_size(names->len[e.v]) + names->len[e.v];
        off += e.size;
    }
    if (canon > KITH__MAX_BATCH_BYTES)
        return KITH_ETOOBIG;
    uint8_t *q = kith__arena_alloc(arena, canon), *w = q;
    if (!q)
        return KITH_ENOMEM;
    memcpy(w, bc->bytes, at);
    w += at;
    for (off = at; off < end;) {
        struct kith__mp_head e;
        (void)kith__mp_head(bc->bytes + off, bc->len - off, &e);
        uint32_t l = names->len[e.v];
        if (l < 32) {
            *w++ = (uint8_t)(0xa0 | l);
        } else { /* names are at most 64 bytes */
            *w++ = 0xd9;
            *w++ = (uint8_t)l;
        }
        memcpy(w, names->ptr[e.v], l);
        w += l;
        off += e.size;
    }
    memcpy(w, bc->bytes + end, bc->len - end);
    bc->bytes = q;
    bc->len = canon;
    return 0;
}

/* ---- encoding ---------------------------------------------------------------------------- */

struct table {
    size_t n;
    uint64_t id[BATCH_MAX_ORIGINS];
    uint64_t last[BATCH_MAX_ORIGINS][2]; /* last first_seq, last head seq, per origin */
};

/* Index of id in the table, adding it if new; -1 when the table is full. */
static long
table_index(struct table *t, uint64_t id)
{
    for (size_t k = t->n; k-- > 0;)
        if (t->id[k] == id)
            return (long)k;
    if (t->n == BATCH_MAX_ORIGINS)
        return -1;
    t->id[t->n] = id;
    return (long)t->n++;
}

/* Note item value v (a first_seq, or a head's seq when `head`) of origin id: 0, or -1 when
 * the table is full or v does not exceed the origin's previous one. */
static int
table_step(struct table *t, uint64_t id, uint64_t v, int head)
{
    long k = table_index(t, id);
    if (k < 0 || v <= t->last[k][head])
        return -1;
    t->last[k][head] = v;
    return 0;
}

int
kith__batch_encode(const struct kith__batch *b, struct kith__wbuf *out)
{
    struct table *t;
    struct name_set names = {0};
    struct wire_plan plan = {0};
    msgpack_packer pk;
    size_t start, need = 32;
    uint32_t version;
    int prc = 0, rc = KITH_EINVAL;

    if (!b || !out || (b->ncommits && !b->commits) || (b->nheads && !b->heads) ||
        (b->nbases && !b->bases) || (b->nrecords && !b->records) || (b->nproofs && !b->proofs))
        return KITH_EINVAL;
    version = b->version > 1 ? b->version : 2; /* a decoded format-1 batch is written as 2 */
    if ((version != 2 && version != 3) ||
        (version == 2 && (b->nbases || b->nrecords || b->nproofs)) ||
        b->nrecords > KITH__BATCH_MAX_ITEMS || b->nproofs > KITH__BATCH_MAX_ITEMS)
        return KITH_EINVAL;
    t = calloc(1, sizeof *t);
    plan.c = calloc(b->ncommits ? b->ncommits : 1, sizeof *plan.c);
    if (!t || !plan.c) {
        rc = KITH_ENOMEM;
        goto out_table;
    }
    for (size_t i = 0; i < b->ncommits; i++) {
        const struct kith__batch_commit *c = &b->commits[i];
        if (c->first_seq == 0 || c->len < COMMIT_MIN_BYTES || !c->bytes ||
            c->len > KITH__MAX_BATCH_BYTES || table_step(t, c->origin, c->first_seq, 0) < 0)
            goto out_table;
        if ((rc = names_intern(&names, &plan, c->bytes, c->len, &plan.c[i])) < 0)
            goto out_table;
        rc = KITH_EINVAL;
        need += 24 + plan.c[i].len;
    }
    for (size_t i = 0; i < b->nheads; i++) {
        if (table_step(t, b->heads[i].origin, b->heads[i].seq, 1) < 0)
            goto out_table;
        need += 24 + KITH_SIG_BYTES;
    }
    for (uint32_t k = 0; k < names.n; k++)
        need += 2 + names.len[k];
    for (size_t i = 0; i < b->nbases; i++) /* a base names an origin of the batch */
        for (size_t k = 0; k <= t->n; k++)
            if (k == t->n)
                goto out_table;
            else if (t->id[k] == b->bases[i].origin)
                break;
    if (version == 3)
        need += 9 + t->n * (2 + KITH_HASH_BYTES);
    for (size_t i = 0; i < b->nrecords; i++) {
        if (b->records[i].len == 0 || b->records[i].len > KITH__GROUP_MAX_RECORD ||
            !b->records[i].bytes)
            goto out_table;
        need += 3 + b->records[i].len;
    }
    for (size_t i = 0; i < b->nproofs; i++) {
        if (b->proofs[i].len == 0 || b->proofs[i].len > KITH__MAX_BATCH_BYTES ||
            !b->proofs[i].bytes)
            goto out_table;
        need += 5 + b->proofs[i].len;
    }
    if (need > KITH__MAX_BATCH_BYTES) {
        rc = KITH_ETOOBIG;
        goto out_table;
    }
    start = out->len;
    rc = kith__wbuf_reserve(out, need + 9 * t->n);
    if (rc < 0)
        goto out_table;
    msgpack_packer_init(&pk, out, kith__wbuf_write);
    prc |= msgpack_pack_array(&pk, version == 3 ? 9 : 6);
    prc |= msgpack_pack_uint64(&pk, version);
    prc |= msgpack_pack_uint64(&pk, b->sender);
    prc |= msgpack_pack_array(&pk, t->n);
    for (size_t k = 0; k < t->n; k++)
        prc |= msgpack_pack_uint64(&pk, t->id[k]);
    prc |= msgpack_pack_array(&pk, names.n);
    for (uint32_t k = 0; k < names.n; k++)
        prc |= msgpack_pack_str(&pk, names.len[k]) |
               msgpack_pack_str_body(&pk, names.ptr[k], names.len[k]);
    prc |= msgpack_pack_array(&pk, 3 * b->ncommits);
    for (size_t i = 0; i < b->ncommits; i++) {
        const struct kith__batch_commit *c = &b->commits[i];
        prc |= msgpack_pack_uint64(&pk, (uint64_t)table_index(t, c->origin));
        prc |= msgpack_pack_uint64(&pk, c->first_seq);
        prc |= names_pack(&pk, &plan, c->bytes, c->len, &plan.c[i]);
    }
    prc |= msgpack_pack_array(&pk, 3 * b->nheads);
    for (size_t i = 0; i < b->nheads; i++) {
        const struct kith__batch_head *h = &b->heads[i];
        prc |= msgpack_pack_uint64(&pk, (uint64_t)table_index(t, h->origin));
        prc |= msgpack_pack_uint64(&pk, h->seq);
        prc |= msgpack_pack_bin(&pk, KITH_SIG_BYTES);
        prc |= msgpack_pack_bin_body(&pk, h->sig, KITH_SIG_BYTES);
    }
    if (version == 3) {
        static const uint8_t zeros[KITH_HASH_BYTES];
        prc |= msgpack_pack_array(&pk, t->n);
        for (size_t k = 0; k < t->n; k++) {
            const uint8_t *base = zeros;
            for (size_t i = 0; i < b->nbases; i++)
                if (b->bases[i].origin == t->id[k])
                    base = b->bases[i].hash;
            prc |= msgpack_pack_bin(&pk, KITH_HASH_BYTES);
            prc |= msgpack_pack_bin_body(&pk, base, KITH_HASH_BYTES);
        }
        prc |= msgpack_pack_array(&pk, b->nrecords);
        for (size_t i = 0; i < b->nrecords; i++)
            prc |= msgpack_pack_bin(&pk, b->records[i].len) |
                   msgpack_pack_bin_body(&pk, b->records[i].bytes, b->records[i].len);
        prc |= msgpack_pack_array(&pk, b->nproofs);
        for (size_t i = 0; i < b->nproofs; i++)
            prc |= msgpack_pack_bin(&pk, b->proofs[i].len) |
                   msgpack_pack_bin_body(&pk, b->proofs[i].bytes, b->proofs[i].len);
    }
    rc = 0;
    if (prc != 0) {
        out->len = start;
        rc = KITH_ENOMEM;
    }
out_table:
    name_set_free(&names);
    free(plan.c);
    free(plan.ix);
    free(t);
    return rc;
}

/* ---- decoding ---------------------------------------------------------------------------- */

struct cursor {
    const uint8_t *p;
    size_t left;
};

/* Read the next header, which must be of type `type`; *v gets its value. The guard has run,
 * so a failure here means a wrong type, not a short buffer. */
static int
next(struct cursor *c, enum kith__mp_type type, uint64_t *v)
{
    struct kith__mp_head h;
    int rc = kith__mp_head(c->p, c->left, &h);
    if (rc < 0)
        return rc;
    if (h.type != type)
        return KITH_EMALFORMED;
    c->p += h.size;
    c->left -= h.size;
    *v = h.v;
    return 0;
}

/* Read a bin header and step over its bytes, which *bytes then points at. */
static int
next_bin(struct cursor *c, const uint8_t **bytes, uint64_t *len)
{
    int rc = next(c, KITH__MP_BIN, len);
    if (rc < 0)
        return rc;
    *bytes = c->p;
    c->p += *len;
    c->left -= (size_t)*len;
    return 0;
}

/* Read a str header and step over its bytes, which *bytes then points at. */
static int
next_str(struct cursor *c, const uint8_t **bytes, uint64_t *len)
{
    int rc = next(c, KITH__MP_STR, len);
    if (rc < 0)
        return rc;
    *bytes = c->p;
    c->p += *len;
    c->left -= (size_t)*len;
    return 0;
}

/* Read an origin index: below the table size, and first uses in table order. */
static int
next_origin(struct cursor *c, uint64_t n, uint64_t *used, uint64_t *index)
{
    int rc = next(c, KITH__MP_UINT, index);
    if (rc < 0)
        return rc;
    if (*index >= n || *index > *used)
        return KITH_EMALFORMED;
    if (*index == *used)
        (*used)++;
    return 0;
}

/* Read an array of signed items, each a bin of 1 .. max bytes, at most KITH__BATCH_MAX_ITEMS. */
static int
decode_items(struct cursor *c, size_t max, struct kith__batch_item **out, size_t *n,
             struct kith__arena *arena)
{
    uint64_t count, len;
    int rc = next(c, KITH__MP_ARRAY, &count);

    if (rc < 0)
        return rc;
    if (count > KITH__BATCH_MAX_ITEMS)
        return KITH_ETOOBIG;
    *n = (size_t)count;
    *out = NULL;
    if (count == 0)
        return 0;
    *out = kith__arena_alloc(arena, (size_t)count * sizeof **out);
    if (*out == NULL)
        return KITH_ENOMEM;
    for (size_t i = 0; i < *n; i++) {
        if ((rc = next_bin(c, &(*out)[i].bytes, &len)) < 0)
            return rc;
        if (len == 0)
            return KITH_EMALFORMED;
        if (len > max)
            return KITH_ETOOBIG;
        (*out)[i].len = (size_t)len;
    }
    return 0;
}

/* Format 3's tail: a base per origin, in the origin table's order, then records and proofs. */
static int
decode_v3(struct cursor *c, const uint64_t *ids, size_t norigins, struct kith__batch *b,
          struct kith__arena *arena)
{
    uint64_t n, len;
    int rc = next(c, KITH__MP_ARRAY, &n);

    if (rc < 0)
        return rc;
    if (n != norigins)
        return KITH_EMALFORMED;
    b->nbases = norigins;
    b->bases = NULL;
    if (norigins > 0 && (b->bases = kith__arena_alloc(arena, norigins * sizeof *b->bases)) == NULL)
        return KITH_ENOMEM;
    for (size_t k = 0; k < norigins; k++) {
        const uint8_t *hash;
        if ((rc = next_bin(c, &hash, &len)) < 0)
            return rc;
        if (len != KITH_HASH_BYTES)
            return KITH_EMALFORMED;
        b->bases[k].origin = ids[k];
        memcpy(b->bases[k].hash, hash, KITH_HASH_BYTES);
    }
    if ((rc = decode_items(c, KITH__GROUP_MAX_RECORD, &b->records, &b->nrecords, arena)) < 0)
        return rc;
    return decode_items(c, KITH__MAX_BATCH_BYTES, &b->proofs, &b->nproofs, arena);
}

const uint8_t *
kith__batch_base_of(const struct kith__batch *b, uint64_t origin)
{
    for (size_t k = 0; k < b->nbases; k++)
        if (b->bases[k].origin == origin)
            return b->bases[k].hash;
    return NULL;
}

static int
batch_decode(const uint8_t *p, size_t len, struct kith__batch *out, struct kith__arena *arena,
             struct name_set *names)
{
    struct cursor c = {p, len};
    struct kith__batch b = {0};
    struct kith__mp_head h;
    uint64_t v, version, norigins, n, used = 0, names_used = 0;
    uint64_t *ids, *last;
    size_t nobjects;
    int rc;

    if (!p || !out || !arena)
        return KITH_EINVAL;
    if (len > KITH__MAX_BATCH_BYTES)
        return KITH_ETOOBIG;
    /* The version comes first, so that a later format is told apart from damage. */
    if ((rc = kith__mp_head(p, len, &h)) < 0)
        return rc;
    if (h.type != KITH__MP_ARRAY || h.v == 0)
        return KITH_EMALFORMED;
    if ((rc = kith__mp_head(p + h.size, len - h.size, &h)) < 0)
        return rc;
    if (h.type != KITH__MP_UINT)
        return KITH_EMALFORMED;
    if (h.v < 1 || h.v > KITH__BATCH_FORMAT)
        return KITH_EVERSION;
    version = h.v;
    if ((rc = kith__mp_guard(p, len, 2, len, &nobjects)) < 0)
        return rc;

    if ((rc = next(&c, KITH__MP_ARRAY, &v)) < 0 ||
        v != (version == 1   ? 5
              : version == 2 ? 6
                             : 9) ||
        (rc = next(&c, KITH__MP_UINT, &v)) < 0 || (rc = next(&c, KITH__MP_UINT, &b.sender)) < 0 ||
        (rc = next(&c, KITH__MP_ARRAY, &norigins)) < 0)
        return rc < 0 ? rc : KITH_EMALFORMED;
    if (norigins > BATCH_MAX_ORIGINS)
        return KITH_ETOOBIG;
    ids = kith__arena_alloc(arena, 2 * (norigins ? norigins : 1) * sizeof *ids);
    if (!ids)
        return KITH_ENOMEM;
    last = ids + norigins; /* per origin: the last first_seq, then the last head seq */
    for (uint64_t k = 0; k < norigins; k++) {
        if ((rc = next(&c, KITH__MP_UINT, &ids[k])) < 0)
            return rc;
        for (uint64_t j = 0; j < k; j++)
            if (ids[j] == ids[k])
                return KITH_EMALFORMED;
        last[k] = 0;
    }

    if (version >= 2) {
        if ((rc = next(&c, KITH__MP_ARRAY, &n)) < 0)
            return rc;
        if (n > BATCH_MAX_NAMES)
            return KITH_ETOOBIG;
        for (uint64_t k = 0; k < n; k++) {
            const uint8_t *name;
            uint64_t nlen;
            if ((rc = next_str(&c, &name, &nlen)) < 0)
                return rc;
            if (!kith__name_valid((const char *)name, (size_t)nlen))
                return KITH_EMALFORMED;
            if ((rc = (int)name_set_put(names, name, (uint32_t)nlen, false)) < 0)
                return rc;
        }
    }

    if ((rc = next(&c, KITH__MP_ARRAY, &n)) < 0)
        return rc;
    if (n % 3 != 0)
        return KITH_EMALFORMED;
    b.ncommits = (size_t)(n / 3);
    if (b.ncommits > 0) {
        b.commits = kith__arena_alloc(arena, b.ncommits * sizeof *b.commits);
        if (!b.commits)
            return KITH_ENOMEM;
    }
    for (size_t i = 0; i < b.ncommits; i++) {
        struct kith__batch_commit *bc = &b.commits[i];
        uint64_t oi, blen;
        if ((rc = next_origin(&c, norigins, &used, &oi)) < 0 ||
            (rc = next(&c, KITH__MP_UINT, &bc->first_seq)) < 0 ||
            (rc = next_bin(&c, &bc->bytes, &blen)) < 0)
            return rc;
        if (bc->first_seq <= last[oi] || blen < COMMIT_MIN_BYTES)
            return KITH_EMALFORMED; /* each origin's commits in seq order */
        last[oi] = bc->first_seq;
        bc->origin = ids[oi];
        bc->len = (size_t)blen;
        if (version >= 2 && (rc = names_unpack(names, &names_used, bc, arena)) < 0)
            return rc;
    }
    if (names_used != names->n)
        return KITH_EMALFORMED; /* a name no commit uses */

    for (uint64_t k = 0; k < norigins; k++)
        last[k] = 0;
    if ((rc = next(&c, KITH__MP_ARRAY, &n)) < 0)
        return rc;
    if (n % 3 != 0)
        return KITH_EMALFORMED;
    b.nheads = (size_t)(n / 3);
    if (b.nheads > 0) {
        b.heads = kith__arena_alloc(arena, b.nheads * sizeof *b.heads);
        if (!b.heads)
            return KITH_ENOMEM;
    }
    for (size_t i = 0; i < b.nheads; i++) {
        struct kith__batch_head *bh = &b.heads[i];
        const uint8_t *sig;
        uint64_t oi, slen;
        if ((rc = next_origin(&c, norigins, &used, &oi)) < 0 ||
            (rc = next(&c, KITH__MP_UINT, &bh->seq)) < 0 || (rc = next_bin(&c, &sig, &slen)) < 0)
            return rc;
        if (slen != KITH_SIG_BYTES || bh->seq <= last[oi])
            return KITH_EMALFORMED;
        last[oi] = bh->seq;
        bh->origin = ids[oi];
        memcpy(bh->sig, sig, KITH_SIG_BYTES);
    }
    if (used != norigins)
        return KITH_EMALFORMED; /* an unused origin */
    b.version = (uint32_t)version;
    if (version >= 3 && (rc = decode_v3(&c, ids, (size_t)norigins, &b, arena)) < 0)
        return rc;
    if (c.left != 0)
        return KITH_EMALFORMED; /* an unused origin; the guard already refused trailing bytes */
    *out = b;
    return 0;
}

int
kith__batch_decode(const uint8_t *p, size_t len, struct kith__batch *out, struct kith__arena *arena)
{
    struct name_set names = {0};
    int rc = batch_decode(p, len, out, arena, &names);
    name_set_free(&names);
    return rc;
}
