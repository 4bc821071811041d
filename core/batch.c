/*
 * batch.c — the batch, the one payload of wire messages and bundle files (spec/encoding.md
 * "Batch"): a sender, an origin table, the commits (each origin's in seq order) and the
 * signed heads that end each origin's run.
 *
 * A batch is flat: one array of three arrays of integers and bins. So the decoder reads it in
 * place with the strict header reader (kith__mp_head) after the guard has proved the shape,
 * instead of handing it to msgpack_unpack: a zone would cost 24 bytes per object, and a
 * batch may hold 64 MiB of small objects. Commit bytes and signatures stay views into the
 * input; the two result arrays come from the caller's arena. Nothing here verifies a
 * signature or decodes a commit: the store does that per origin, in one transaction.
 */
#include "core.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_VERSION 1u
#define BATCH_MAX_ORIGINS 1024u
/* The smallest canonical commit: [hlc, [], [[2, coll, 0, seq]]] with one-byte integers. */
#define COMMIT_MIN_BYTES 9u

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
    msgpack_packer pk;
    size_t start, need = 32;
    int prc = 0, rc = KITH_EINVAL;

    if (!b || !out || (b->ncommits && !b->commits) || (b->nheads && !b->heads))
        return KITH_EINVAL;
    t = calloc(1, sizeof *t);
    if (!t)
        return KITH_ENOMEM;
    for (size_t i = 0; i < b->ncommits; i++) {
        const struct kith__batch_commit *c = &b->commits[i];
        if (c->first_seq == 0 || c->len < COMMIT_MIN_BYTES || !c->bytes ||
            c->len > KITH__MAX_BATCH_BYTES || table_step(t, c->origin, c->first_seq, 0) < 0)
            goto out_table;
        need += 24 + c->len;
    }
    for (size_t i = 0; i < b->nheads; i++) {
        if (table_step(t, b->heads[i].origin, b->heads[i].seq, 1) < 0)
            goto out_table;
        need += 24 + KITH_SIG_BYTES;
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
    prc |= msgpack_pack_array(&pk, 5);
    prc |= msgpack_pack_uint64(&pk, BATCH_VERSION);
    prc |= msgpack_pack_uint64(&pk, b->sender);
    prc |= msgpack_pack_array(&pk, t->n);
    for (size_t k = 0; k < t->n; k++)
        prc |= msgpack_pack_uint64(&pk, t->id[k]);
    prc |= msgpack_pack_array(&pk, 3 * b->ncommits);
    for (size_t i = 0; i < b->ncommits; i++) {
        const struct kith__batch_commit *c = &b->commits[i];
        prc |= msgpack_pack_uint64(&pk, (uint64_t)table_index(t, c->origin));
        prc |= msgpack_pack_uint64(&pk, c->first_seq);
        prc |= msgpack_pack_bin(&pk, c->len);
        prc |= msgpack_pack_bin_body(&pk, c->bytes, c->len);
    }
    prc |= msgpack_pack_array(&pk, 3 * b->nheads);
    for (size_t i = 0; i < b->nheads; i++) {
        const struct kith__batch_head *h = &b->heads[i];
        prc |= msgpack_pack_uint64(&pk, (uint64_t)table_index(t, h->origin));
        prc |= msgpack_pack_uint64(&pk, h->seq);
        prc |= msgpack_pack_bin(&pk, KITH_SIG_BYTES);
        prc |= msgpack_pack_bin_body(&pk, h->sig, KITH_SIG_BYTES);
    }
    rc = 0;
    if (prc != 0) {
        out->len = start;
        rc = KITH_ENOMEM;
    }
out_table:
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

int
kith__batch_decode(const uint8_t *p, size_t len, struct kith__batch *out, struct kith__arena *arena)
{
    struct cursor c = {p, len};
    struct kith__batch b = {0};
    struct kith__mp_head h;
    uint64_t v, norigins, n, used = 0;
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
    if (h.v != BATCH_VERSION)
        return KITH_EVERSION;
    if ((rc = kith__mp_guard(p, len, 2, len, &nobjects)) < 0)
        return rc;

    if ((rc = next(&c, KITH__MP_ARRAY, &v)) < 0 || v != 5 ||
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
    }

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
    if (used != norigins || c.left != 0)
        return KITH_EMALFORMED; /* an unused origin; the guard already refused trailing bytes */
    *out = b;
    return 0;
}
