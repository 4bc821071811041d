/*
 * codec.c — the canonical byte form of a commit (spec/encoding.md "Commit"): the encoder the
 * store calls once per local transaction, the decoder it calls for every commit a peer sends,
 * and the dependencies (dots named) that decide when a received commit may be applied.
 *
 * Canonical means one commit has exactly one byte form, because the chain hashes those bytes
 * and two replicas must agree on them. The encoder writes with msgpack-c's packer, whose
 * integers, strings and arrays are always in their shortest form; the decoder refuses
 * everything else. It does so in three steps:
 *   1. kith__mp_guard walks the bytes: every header in the shortest form, no maps, floats or
 *      ext, every count no larger than the bytes left, arrays at most 4 deep, at most
 *      COMMIT_MAX_OBJECTS objects, nothing after the commit. Only then may msgpack-c see the
 *      bytes (it reserves memory for array headers before their elements arrive).
 *   2. msgpack_unpack into the arena's zone (kith__arena_zone), sized from the guard's object
 *      count and kept from one commit to the next, so a stream of commits allocates nothing;
 *      strings and bins stay views into the input.
 *   3. the objects become struct kith__op values (arrays of ops and observed dots in the
 *      caller's arena), each checked against the rules the encoder applies (op_rules, shared
 *      by both; the decoder hands it the collection and field it has looked up already) and
 *      against the schema (kith__schema_check / kith__schema_check_elem).
 * Per op of a 100-op commit (callgrind, spec/encoding.md "How kith decodes"): the guard ~200
 * instructions, msgpack_unpack ~500, the schema checks ~270, the rest ~250. msgpack_unpack is
 * the largest step; it stays because kith builds on msgpack-c, and the guard is what makes it
 * safe on untrusted input.
 */
#include "core.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define COMMIT_MAX_DEPTH 4            /* commit > ops > op > reference */
#define COMMIT_MAX_OBJECTS (1u << 20) /* bounds the msgpack zone to ~24 MiB */
#define COMMIT_MAX_ORIGINS 256        /* other origins one commit may name */

/* Fixed elements of each op kind before its observed pairs; index by kind. */
static const uint32_t op_fixed[6] = {0, 8, 4, 4, 6, 6};

/* Write a reason for a refusal into the caller's buffer, when there is one. */
static void
say(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (!why || cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

static bool
is_none(kith_dot d)
{
    return d.origin == 0 && d.seq == 0;
}

static int
dot_cmp(kith_dot a, kith_dot b)
{
    if (a.origin != b.origin)
        return a.origin < b.origin ? -1 : 1;
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    return 0;
}

/*
 * A dot an op of `origin` at `seq` may name: seq >= 1, and a dot of the op's own origin must
 * come before the op (a commit cannot name its own future).
 */
static bool
dot_ok(kith_dot d, uint64_t origin, uint64_t seq)
{
    return d.seq >= 1 && (d.origin != origin || d.seq < seq);
}

/*
 * The rules both the encoder and the decoder apply to one op of `origin` at `seq` (value
 * types are the decoder's part: it reads them by the schema), given the op's kind is known,
 * cd is its collection and fd its field (NULL for document ops, whose field is 0). Returns
 * 0, KITH_EMALFORMED or KITH_ESCHEMA with a reason in `why`.
 */
static int
op_rules(const struct kith__op *op, const kith_collection_def *cd, const kith_field_def *fd,
         uint64_t origin, uint64_t seq, char *why, size_t cap)
{
    if (fd && (op->kind == KITH_OP_FIELD_SET) == (fd->type == KITH_TYPE_SET)) {
        say(why, cap, "%s.%s: op does not fit the field's type", cd->name, fd->name);
        return KITH_ESCHEMA;
    }
    bool create = op->kind == KITH_OP_DOC_ADD && op->doc.origin == origin && op->doc.seq == seq;
    if (!create && !dot_ok(op->doc, origin, seq)) {
        say(why, cap, "%s: bad document dot", cd->name);
        return KITH_EMALFORMED;
    }
    if (op->kind == KITH_OP_FIELD_SET) {
        if (!is_none(op->replaced) && !dot_ok(op->replaced, origin, seq)) {
            say(why, cap, "%s.%s: bad replaced dot", cd->name, fd->name);
            return KITH_EMALFORMED;
        }
        if (op->value.type == KITH_TYPE_REF &&
            !dot_ok(kith__docid_to_dot(&op->value.u.ref), origin, seq)) {
            say(why, cap, "%s.%s: bad reference", cd->name, fd->name);
            return KITH_EMALFORMED;
        }
        if (op->nobserved != 0) {
            say(why, cap, "%s.%s: field set with observed dots", cd->name, fd->name);
            return KITH_EMALFORMED;
        }
        return 0;
    }
    if (!is_none(op->replaced)) {
        say(why, cap, "%s: replaced dot on an op that replaces nothing", cd->name);
        return KITH_EMALFORMED;
    }
    if (create && op->nobserved != 0) {
        say(why, cap, "%s: a new document observed dots", cd->name);
        return KITH_EMALFORMED;
    }
    if (op->nobserved > KITH__MAX_OBSERVED) {
        say(why, cap, "%s: too many observed dots", cd->name);
        return KITH_ETOOBIG;
    }
    for (uint32_t i = 0; i < op->nobserved; i++) {
        if (!dot_ok(op->observed[i], origin, seq) ||
            (i > 0 && dot_cmp(op->observed[i - 1], op->observed[i]) >= 0)) {
            say(why, cap, "%s: observed dots bad, unsorted or repeated", cd->name);
            return KITH_EMALFORMED;
        }
    }
    return 0;
}

/* op_rules for an op as the encoder is given it: kind, collection and field looked up here. */
static int
op_check(const struct kith__op *op, uint64_t origin, uint64_t seq, char *why, size_t cap)
{
    const kith_collection_def *cd = kith__schema_coll_def(op->coll);
    const kith_field_def *fd = NULL;
    if (op->kind < KITH_OP_FIELD_SET || op->kind > KITH_OP_SET_REMOVE) {
        say(why, cap, "unknown op kind");
        return KITH_EMALFORMED;
    }
    if (!cd) {
        say(why, cap, "no such collection");
        return KITH_ESCHEMA;
    }
    if (op->kind == KITH_OP_DOC_ADD || op->kind == KITH_OP_DOC_REMOVE) {
        if (op->field != 0) {
            say(why, cap, "%s: document op names a field", cd->name);
            return KITH_EMALFORMED;
        }
    } else {
        fd = kith__schema_field_def(op->coll, op->field);
        if (!fd || op->field == 0) {
            say(why, cap, "%s: no such field", cd->name);
            return KITH_ESCHEMA;
        }
    }
    return op_rules(op, cd, fd, origin, seq, why, cap);
}

/* ---- the origin table: other origins in order of first use ------------------------------ */

struct origin_table {
    uint32_t n;
    uint64_t id[COMMIT_MAX_ORIGINS];
};

/* Index (>= 1) of `id` in the table, 0 if absent. */
static uint32_t
table_find(const struct origin_table *t, uint64_t id)
{
    for (uint32_t k = 0; k < t->n; k++)
        if (t->id[k] == id)
            return k + 1;
    return 0;
}

/* Note a dot's origin (encoder, first pass). 0 or KITH_EINVAL when the table is full. */
static int
table_use(struct origin_table *t, uint64_t own, kith_dot d)
{
    if (d.seq == 0 || d.origin == own || table_find(t, d.origin))
        return 0;
    if (t->n == COMMIT_MAX_ORIGINS)
        return KITH_EINVAL;
    t->id[t->n++] = d.origin;
    return 0;
}

static int
op_origins(struct origin_table *t, uint64_t own, const struct kith__op *op)
{
    int rc = table_use(t, own, op->doc);
    if (op->kind == KITH_OP_FIELD_SET) {
        if (op->value.type == KITH_TYPE_REF)
            rc |= table_use(t, own, kith__docid_to_dot(&op->value.u.ref));
        rc |= table_use(t, own, op->replaced);
    }
    for (uint32_t i = 0; i < op->nobserved; i++)
        rc |= table_use(t, own, op->observed[i]);
    return rc ? KITH_EINVAL : 0;
}

/* ---- encoding ---------------------------------------------------------------------------- */

static int
pack_dot(msgpack_packer *pk, const struct origin_table *t, uint64_t own, kith_dot d)
{
    uint64_t oi = 0;
    if (d.seq != 0 && d.origin != own)
        oi = table_find(t, d.origin);
    return msgpack_pack_uint64(pk, oi) | msgpack_pack_uint64(pk, d.seq);
}

/* Does a value's type fit a field of type `ft`? (NULL fits every field.) */
static bool
value_fits(const kith_value *v, kith_type ft)
{
    if (v->type == KITH_TYPE_NULL)
        return true;
    if (v->type != ft)
        return false;
    switch (v->type) {
    case KITH_TYPE_STRING:
    case KITH_TYPE_DATE:
    case KITH_TYPE_ENUM:
    case KITH_TYPE_BYTES:
        return v->u.s.len <= KITH__MAX_VALUE_BYTES && (v->u.s.ptr || v->u.s.len == 0);
    case KITH_TYPE_INT:
    case KITH_TYPE_TIME:
    case KITH_TYPE_BOOL:
    case KITH_TYPE_REF:
        return true;
    default:
        return false;
    }
}

static int
pack_value(msgpack_packer *pk, const struct origin_table *t, uint64_t own, const kith_value *v)
{
    switch (v->type) {
    case KITH_TYPE_NULL:
        return msgpack_pack_nil(pk);
    case KITH_TYPE_STRING:
    case KITH_TYPE_DATE:
    case KITH_TYPE_ENUM:
        return msgpack_pack_str(pk, v->u.s.len) | msgpack_pack_str_body(pk, v->u.s.ptr, v->u.s.len);
    case KITH_TYPE_BYTES:
        return msgpack_pack_bin(pk, v->u.s.len) | msgpack_pack_bin_body(pk, v->u.s.ptr, v->u.s.len);
    case KITH_TYPE_INT:
    case KITH_TYPE_TIME:
        return msgpack_pack_int64(pk, v->u.i);
    case KITH_TYPE_BOOL:
        return v->u.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case KITH_TYPE_REF:
        return msgpack_pack_array(pk, 2) | pack_dot(pk, t, own, kith__docid_to_dot(&v->u.ref));
    default:
        return -1;
    }
}

/* Check everything the encoder needs before it writes a byte. 0 or KITH_EINVAL. */
static int
encode_check(const struct kith__commit *c, struct origin_table *t)
{
    if (c->nops == 0 || c->nops > KITH__MAX_COMMIT_OPS || !c->ops || c->first_seq == 0 ||
        c->first_seq > UINT64_MAX - (c->nops - 1))
        return KITH_EINVAL;
    for (uint32_t i = 0; i < c->nops; i++) {
        const struct kith__op *op = &c->ops[i];
        if (op_check(op, c->origin, c->first_seq + i, NULL, 0) < 0)
            return KITH_EINVAL;
        if (op->nobserved > 0 && !op->observed)
            return KITH_EINVAL;
        if (op->kind == KITH_OP_FIELD_SET &&
            !value_fits(&op->value, kith__schema_field_def(op->coll, op->field)->type))
            return KITH_EINVAL;
        if ((op->kind == KITH_OP_SET_ADD || op->kind == KITH_OP_SET_REMOVE) &&
            (op->value.type != KITH_TYPE_STRING || !value_fits(&op->value, KITH_TYPE_STRING)))
            return KITH_EINVAL;
        if (op_origins(t, c->origin, op) < 0)
            return KITH_EINVAL;
    }
    return 0;
}

int
kith__commit_encode(const struct kith__commit *c, struct kith__wbuf *out)
{
    struct origin_table t;
    msgpack_packer pk;
    size_t start;
    int prc = 0;

    if (!c || !out)
        return KITH_EINVAL;
    t.n = 0;
    if (encode_check(c, &t) < 0)
        return KITH_EINVAL;
    start = out->len;
    if (kith__wbuf_reserve(out, 16 + 9 * (size_t)t.n + 24 * (size_t)c->nops) < 0)
        return KITH_ENOMEM;
    msgpack_packer_init(&pk, out, kith__wbuf_write);
    prc |= msgpack_pack_array(&pk, 3);
    prc |= msgpack_pack_uint64(&pk, c->hlc);
    prc |= msgpack_pack_array(&pk, t.n);
    for (uint32_t k = 0; k < t.n; k++)
        prc |= msgpack_pack_uint64(&pk, t.id[k]);
    prc |= msgpack_pack_array(&pk, c->nops);
    for (uint32_t i = 0; i < c->nops && prc == 0; i++) {
        const struct kith__op *op = &c->ops[i];
        prc |= msgpack_pack_array(&pk, op_fixed[op->kind] + 2 * (size_t)op->nobserved);
        prc |= msgpack_pack_uint64(&pk, op->kind);
        prc |= msgpack_pack_uint64(&pk, op->coll);
        prc |= pack_dot(&pk, &t, c->origin, op->doc);
        switch (op->kind) {
        case KITH_OP_FIELD_SET:
            prc |= msgpack_pack_uint64(&pk, op->field);
            prc |= pack_value(&pk, &t, c->origin, &op->value);
            prc |= pack_dot(&pk, &t, c->origin, op->replaced);
            break;
        case KITH_OP_SET_ADD:
        case KITH_OP_SET_REMOVE:
            prc |= msgpack_pack_uint64(&pk, op->field);
            prc |= msgpack_pack_str(&pk, op->value.u.s.len);
            prc |= msgpack_pack_str_body(&pk, op->value.u.s.ptr, op->value.u.s.len);
            break;
        default:
            break;
        }
        for (uint32_t j = 0; j < op->nobserved; j++)
            prc |= pack_dot(&pk, &t, c->origin, op->observed[j]);
    }
    if (prc != 0) {
        out->len = start; /* the only way a write fails is memory */
        return KITH_ENOMEM;
    }
    return 0;
}

/* ---- decoding ---------------------------------------------------------------------------- */

struct decoder {
    uint64_t origin;
    const msgpack_object *origins; /* the origin table as decoded */
    uint32_t norigins;
    uint32_t used; /* origins met so far, in order of first use */
    char *why;
    size_t why_cap;
};

static bool
get_uint(const msgpack_object *o, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *v = o->via.u64;
    return true;
}

/* Read a dot (oi, seq) from two objects, enforcing the origin table's order of first use. */
static inline int
get_dot(struct decoder *d, const msgpack_object *o, kith_dot *out)
{
    uint64_t oi, seq;
    if (!get_uint(&o[0], &oi) || !get_uint(&o[1], &seq))
        return KITH_EMALFORMED;
    if (oi == 0) {
        out->origin = seq == 0 ? 0 : d->origin;
        out->seq = seq;
        return 0;
    }
    if (seq == 0 || oi > d->used + 1 || oi > d->norigins)
        return KITH_EMALFORMED;
    if (oi == d->used + 1)
        d->used++;
    out->origin = d->origins[oi - 1].via.u64;
    out->seq = seq;
    return 0;
}

static int
get_value(struct decoder *d, const msgpack_object *o, const kith_collection_def *cd,
          const kith_field_def *fd, kith_value *v)
{
    bool fits = false;
    if (o->type == MSGPACK_OBJECT_NIL) {
        v->type = KITH_TYPE_NULL;
        return 0;
    }
    v->type = fd->type;
    switch (fd->type) {
    case KITH_TYPE_STRING:
    case KITH_TYPE_DATE:
    case KITH_TYPE_ENUM:
        if ((fits = o->type == MSGPACK_OBJECT_STR)) {
            v->u.s.ptr = o->via.str.ptr;
            v->u.s.len = o->via.str.size;
        }
        break;
    case KITH_TYPE_BYTES:
        if ((fits = o->type == MSGPACK_OBJECT_BIN)) {
            v->u.s.ptr = o->via.bin.ptr;
            v->u.s.len = o->via.bin.size;
        }
        break;
    case KITH_TYPE_INT:
    case KITH_TYPE_TIME:
        if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            v->u.i = o->via.i64;
            fits = true;
        } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
            v->u.i = (int64_t)o->via.u64;
            fits = true;
        }
        break;
    case KITH_TYPE_BOOL:
        if ((fits = o->type == MSGPACK_OBJECT_BOOLEAN))
            v->u.b = o->via.boolean;
        break;
    case KITH_TYPE_REF:
        if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 2) {
            kith_dot ref;
            int rc = get_dot(d, o->via.array.ptr, &ref);
            if (rc < 0)
                return rc;
            kith__docid_from_dot(&v->u.ref, ref);
            fits = true;
        }
        break;
    default:
        break;
    }
    if (!fits) {
        say(d->why, d->why_cap, "%s.%s: value of the wrong type", cd->name, fd->name);
        return KITH_ESCHEMA;
    }
    if ((fd->type == KITH_TYPE_STRING || fd->type == KITH_TYPE_DATE || fd->type == KITH_TYPE_ENUM ||
         fd->type == KITH_TYPE_BYTES) &&
        v->u.s.len > KITH__MAX_VALUE_BYTES) {
        say(d->why, d->why_cap, "%s.%s: value too long", cd->name, fd->name);
        return KITH_ETOOBIG;
    }
    return 0;
}

/* Decode op number `seq` from its msgpack array into *op; observed dots go to the arena. */
static int
get_op(struct decoder *d, const msgpack_object *o, uint64_t seq, struct kith__op *op,
       struct kith__arena *arena)
{
    const msgpack_object *e;
    const kith_field_def *fd = NULL;
    uint64_t kind, coll, field = 0;
    uint32_t n, nobs;
    int rc;

    memset(op, 0, sizeof *op);
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 4)
        return KITH_EMALFORMED;
    e = o->via.array.ptr;
    n = o->via.array.size;
    if (!get_uint(&e[0], &kind) || kind < KITH_OP_FIELD_SET || kind > KITH_OP_SET_REMOVE ||
        n < op_fixed[kind] || (kind == KITH_OP_FIELD_SET && n != op_fixed[kind]) ||
        (n - op_fixed[kind]) % 2 != 0)
        return KITH_EMALFORMED;
    if (!get_uint(&e[1], &coll))
        return KITH_EMALFORMED;
    const kith_collection_def *cd = coll < 256 ? kith__schema_coll_def((int)coll) : NULL;
    if (!cd) {
        say(d->why, d->why_cap, "no such collection");
        return KITH_ESCHEMA;
    }
    op->kind = (uint8_t)kind;
    op->coll = (uint8_t)coll;
    if ((rc = get_dot(d, &e[2], &op->doc)) < 0)
        return rc;
    if (kind == KITH_OP_FIELD_SET || kind == KITH_OP_SET_ADD || kind == KITH_OP_SET_REMOVE) {
        if (!get_uint(&e[4], &field))
            return KITH_EMALFORMED;
        fd = field >= 1 && field < 256 ? kith__schema_field_def((int)coll, (int)field) : NULL;
        if (!fd) {
            say(d->why, d->why_cap, "%s: no such field", cd->name);
            return KITH_ESCHEMA;
        }
        op->field = (uint8_t)field;
        if (kind == KITH_OP_FIELD_SET) {
            if (fd->type == KITH_TYPE_SET) {
                say(d->why, d->why_cap, "%s.%s: set field given a value", cd->name, fd->name);
                return KITH_ESCHEMA;
            }
            if ((rc = get_value(d, &e[5], cd, fd, &op->value)) < 0)
                return rc;
            if ((rc = get_dot(d, &e[6], &op->replaced)) < 0)
                return rc;
            if ((rc = kith__schema_check(op->coll, op->field, &op->value, d->why, d->why_cap)) < 0)
                return rc;
        } else {
            if (e[5].type != MSGPACK_OBJECT_STR)
                return KITH_EMALFORMED;
            if (e[5].via.str.size > KITH__MAX_VALUE_BYTES)
                return KITH_ETOOBIG;
            op->value.type = KITH_TYPE_STRING;
            op->value.u.s.ptr = e[5].via.str.ptr;
            op->value.u.s.len = e[5].via.str.size;
            if ((rc = kith__schema_check_elem(op->coll, op->field, op->value.u.s.ptr,
                                              op->value.u.s.len, d->why, d->why_cap)) < 0)
                return rc;
        }
    }
    nobs = (n - op_fixed[kind]) / 2;
    if (nobs > KITH__MAX_OBSERVED)
        return KITH_ETOOBIG;
    if (nobs > 0) {
        kith_dot *obs = kith__arena_alloc(arena, nobs * sizeof *obs);
        if (!obs)
            return KITH_ENOMEM;
        for (uint32_t j = 0; j < nobs; j++)
            if ((rc = get_dot(d, &e[op_fixed[kind] + 2 * j], &obs[j])) < 0)
                return rc;
        op->observed = obs;
        op->nobserved = nobs;
    }
    return op_rules(op, cd, fd, d->origin, seq, d->why, d->why_cap);
}

static int
get_commit(struct decoder *d, const msgpack_object *root, uint64_t first_seq,
           struct kith__commit *c, struct kith__arena *arena)
{
    const msgpack_object *e, *ops;
    int rc;

    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 3)
        return KITH_EMALFORMED;
    e = root->via.array.ptr;
    if (!get_uint(&e[0], &c->hlc) || e[1].type != MSGPACK_OBJECT_ARRAY ||
        e[2].type != MSGPACK_OBJECT_ARRAY)
        return KITH_EMALFORMED;
    d->origins = e[1].via.array.ptr;
    d->norigins = e[1].via.array.size;
    if (d->norigins > COMMIT_MAX_ORIGINS)
        return KITH_ETOOBIG;
    for (uint32_t k = 0; k < d->norigins; k++) {
        uint64_t id;
        if (!get_uint(&d->origins[k], &id) || id == d->origin)
            return KITH_EMALFORMED;
        for (uint32_t j = 0; j < k; j++)
            if (d->origins[j].via.u64 == id)
                return KITH_EMALFORMED;
    }
    ops = e[2].via.array.ptr;
    c->nops = e[2].via.array.size;
    if (c->nops == 0)
        return KITH_EMALFORMED;
    if (c->nops > KITH__MAX_COMMIT_OPS)
        return KITH_ETOOBIG;
    if (first_seq == 0 || first_seq > UINT64_MAX - (c->nops - 1))
        return KITH_EMALFORMED;
    c->ops = kith__arena_alloc(arena, c->nops * sizeof *c->ops);
    if (!c->ops)
        return KITH_ENOMEM;
    for (uint32_t i = 0; i < c->nops; i++)
        if ((rc = get_op(d, &ops[i], first_seq + i, &c->ops[i], arena)) < 0)
            return rc;
    if (d->used != d->norigins)
        return KITH_EMALFORMED; /* an origin no dot refers to */
    return 0;
}

int
kith__commit_decode(const uint8_t *p, size_t len, uint64_t origin, uint64_t first_seq,
                    struct kith__commit *out, struct kith__arena *arena, char *why, size_t why_cap)
{
    struct decoder d = {.origin = origin, .why = why, .why_cap = why_cap};
    struct kith__commit c = {.origin = origin, .first_seq = first_seq};
    msgpack_zone *zone;
    msgpack_object root;
    size_t nobjects = 0, off = 0;
    int rc;

    if (why && why_cap > 0)
        why[0] = '\0';
    if (!p || !out || !arena)
        return KITH_EINVAL;
    if (len > KITH__MAX_BATCH_BYTES)
        rc = KITH_ETOOBIG;
    else
        rc = kith__mp_guard(p, len, COMMIT_MAX_DEPTH, COMMIT_MAX_OBJECTS, &nobjects);
    if (rc == 0) {
        if (!(zone = kith__arena_zone(arena, nobjects * sizeof(msgpack_object) + 64)))
            return KITH_ENOMEM;
        switch (msgpack_unpack((const char *)p, len, &off, zone, &root)) {
        case MSGPACK_UNPACK_SUCCESS:
            rc = off == len ? get_commit(&d, &root, first_seq, &c, arena) : KITH_EMALFORMED;
            break;
        case MSGPACK_UNPACK_NOMEM_ERROR:
            rc = KITH_ENOMEM;
            break;
        default:
            rc = KITH_EMALFORMED; /* the guard passed it, so this is not expected */
            break;
        }
    }
    if (rc == 0)
        *out = c;
    else if (why && why_cap > 0 && why[0] == '\0')
        snprintf(why, why_cap, "commit: %s", kith_strerror(rc));
    return rc;
}

/* ---- dependencies ------------------------------------------------------------------------ */

struct deps {
    uint64_t own;
    uint32_t n;
    kith_dot top[64]; /* sorted by origin, highest seq named per origin */
    void (*fn)(void *ctx, uint64_t origin, uint64_t seq);
    void *ctx;
};

static void
deps_flush(struct deps *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        s->fn(s->ctx, s->top[i].origin, s->top[i].seq);
    s->n = 0;
}

static void
deps_note(struct deps *s, kith_dot d)
{
    uint32_t lo = 0, hi = s->n;
    if (d.seq == 0 || d.origin == s->own)
        return;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (s->top[mid].origin < d.origin)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->n && s->top[lo].origin == d.origin) {
        if (s->top[lo].seq < d.seq)
            s->top[lo].seq = d.seq;
        return;
    }
    if (s->n == sizeof s->top / sizeof s->top[0]) {
        deps_flush(s); /* a commit naming this many origins reports some twice */
        lo = 0;
    }
    memmove(&s->top[lo + 1], &s->top[lo], (s->n - lo) * sizeof s->top[0]);
    s->top[lo] = d;
    s->n++;
}

void
kith__commit_deps(const struct kith__commit *c,
                  void (*fn)(void *ctx, uint64_t origin, uint64_t seq), void *ctx)
{
    struct deps s = {.own = c->origin, .fn = fn, .ctx = ctx};
    for (uint32_t i = 0; i < c->nops; i++) {
        const struct kith__op *op = &c->ops[i];
        deps_note(&s, op->doc);
        if (op->kind == KITH_OP_FIELD_SET) {
            deps_note(&s, op->replaced);
            if (op->value.type == KITH_TYPE_REF)
                deps_note(&s, kith__docid_to_dot(&op->value.u.ref));
        }
        for (uint32_t j = 0; j < op->nobserved; j++)
            deps_note(&s, op->observed[j]);
    }
    deps_flush(&s);
}
