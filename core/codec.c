/*
 * codec.c — the canonical byte form of a commit (spec/encoding.md "Commit"): the encoder the
 * store calls once per local transaction, the decoder it calls for every commit a peer sends,
 * and the dependencies (dots named) that decide when a received commit may be applied.
 *
 * Two formats are read. Format 2, the one written, names collections and fields by name (a
 * table of names per commit that the ops point into) and tags every value with its type, so
 * an op means the same on every replica whatever schema it declared: the decoder checks
 * structure only (sizes, UTF-8, names, tags) and never refuses an op for naming something
 * undeclared. Format 1 named the built-in CRM collections and fields by number and typed its
 * values by that schema; its commits stay in logs for ever (their bytes are chained and
 * signed), so they are still read, through core/v1.c, and checked as they always were.
 *
 * Canonical means one commit has exactly one byte form, because the chain hashes those bytes
 * and two replicas must agree on them. The encoder writes with msgpack-c's packer, whose
 * integers, strings and arrays are always in their shortest form; the decoder refuses
 * everything else, in three steps:
 *   1. kith__mp_guard walks the bytes: every header in the shortest form, no maps, floats or
 *      ext, every count no larger than the bytes left, arrays at most 4 deep, at most
 *      COMMIT_MAX_OBJECTS objects, nothing after the commit. Only then may msgpack-c see the
 *      bytes (it reserves memory for array headers before their elements arrive).
 *   2. msgpack_unpack into the arena's zone (kith__arena_zone), sized from the guard's object
 *      count and kept from one commit to the next, so a stream of commits allocates nothing;
 *      strings and bins stay views into the input.
 *   3. the objects become struct kith__op values (arrays of ops, names and observed dots in
 *      the caller's arena), each checked against the rules the encoder applies (op_rules).
 */
#include "core.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define COMMIT_MAX_DEPTH 4            /* commit > ops > op > reference */
#define COMMIT_MAX_OBJECTS (1u << 20) /* bounds the msgpack zone to ~24 MiB */
#define COMMIT_MAX_ORIGINS 256        /* other origins one commit may name */

/* Elements of each op kind before its observed pairs, by format; index by kind. */
static const uint32_t v1_fixed[6] = {0, 8, 4, 4, 6, 6};
static const uint32_t v2_fixed[9] = {0, 8, 4, 4, 6, 6, 6, 5, 5};

/* Format 2's op tag: kind * 16 + the value's type (FIELD_SET), or kind * 16. */
#define TAG(kind, type) ((uint64_t)(kind)*16u + (uint64_t)(type))

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

/* Which bytes a name may hold: 1 a letter (may start it), 2 a digit or '_' (may not). */
static const uint8_t name_class[256] = {
    ['0'] = 2, ['1'] = 2, ['2'] = 2, ['3'] = 2, ['4'] = 2, ['5'] = 2, ['6'] = 2, ['7'] = 2,
    ['8'] = 2, ['9'] = 2, ['_'] = 2, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,
    ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
    ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,
    ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,
    ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,
    ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

bool
kith__name_valid(const char *name, size_t len)
{
    const uint8_t *p = (const uint8_t *)name;
    if (!name || len == 0 || len > KITH__MAX_NAME_BYTES || name_class[p[0]] != 1)
        return false;
    for (size_t i = 1; i < len; i++)
        if (!name_class[p[i]])
            return false;
    return true;
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

/* "contacts" or "contacts.name": the op's names, for messages. */
static const char *
op_place(const struct kith__commit *c, const struct kith__op *op, char *buf, size_t cap)
{
    const struct kith__name *cn = &c->names[op->cname];
    if (kith__op_has_field(op->kind)) {
        const struct kith__name *fn = &c->names[op->fname];
        snprintf(buf, cap, "%.*s.%.*s", (int)cn->len, cn->ptr, (int)fn->len, fn->ptr);
    } else {
        snprintf(buf, cap, "%.*s", (int)cn->len, cn->ptr);
    }
    return buf;
}

/*
 * The rules both the encoder and the decoder apply to one op of `origin` at `seq`, once its
 * kind, names and value are known: dots in range and in order, observed dots only where the
 * kind has them. Returns 0, KITH_EMALFORMED or KITH_ETOOBIG with a reason in `why`.
 */
static int
op_rules(const struct kith__commit *c, const struct kith__op *op, uint64_t seq, char *why,
         size_t cap)
{
    char place[2 * KITH__MAX_NAME_BYTES + 2];
    uint64_t origin = c->origin;
    bool create = op->kind == KITH_OP_DOC_ADD && op->doc.origin == origin && op->doc.seq == seq;

    if (!create && !dot_ok(op->doc, origin, seq)) {
        say(why, cap, "%s: bad document dot", op_place(c, op, place, sizeof place));
        return KITH_EMALFORMED;
    }
    if (op->kind == KITH_OP_FIELD_SET) {
        if (!is_none(op->replaced) && !dot_ok(op->replaced, origin, seq)) {
            say(why, cap, "%s: bad replaced dot", op_place(c, op, place, sizeof place));
            return KITH_EMALFORMED;
        }
        if (op->value.type == KITH_TYPE_REF &&
            !dot_ok(kith__docid_to_dot(&op->value.u.ref), origin, seq)) {
            say(why, cap, "%s: bad reference", op_place(c, op, place, sizeof place));
            return KITH_EMALFORMED;
        }
    } else if (!is_none(op->replaced)) {
        say(why, cap, "%s: replaced dot on an op that replaces nothing",
            op_place(c, op, place, sizeof place));
        return KITH_EMALFORMED;
    }
    if (op->nobserved > 0 &&
        (op->kind == KITH_OP_FIELD_SET || op->kind == KITH_OP_COUNTER_ADD || create)) {
        say(why, cap, "%s: observed dots on an op that has none",
            op_place(c, op, place, sizeof place));
        return KITH_EMALFORMED;
    }
    if (op->nobserved > KITH__MAX_OBSERVED) {
        say(why, cap, "%s: too many observed dots", op_place(c, op, place, sizeof place));
        return KITH_ETOOBIG;
    }
    for (uint32_t i = 0; i < op->nobserved; i++) {
        if (!dot_ok(op->observed[i], origin, seq) ||
            (i > 0 && dot_cmp(op->observed[i - 1], op->observed[i]) >= 0)) {
            say(why, cap, "%s: observed dots bad, unsorted or repeated",
                op_place(c, op, place, sizeof place));
            return KITH_EMALFORMED;
        }
    }
    return 0;
}

/* A value's bytes fit the format (not the schema): lengths, and UTF-8 without NUL for text,
 * times within the years 0001..9999. 0, KITH_EMALFORMED or KITH_ETOOBIG. */
static int
value_shape(const kith_value *v)
{
    switch (v->type) {
    case KITH_TYPE_NULL:
    case KITH_TYPE_INT:
    case KITH_TYPE_BOOL:
    case KITH_TYPE_REF:
        return 0;
    case KITH_TYPE_TIME:
        return v->u.i >= KITH__TIME_MIN_MS && v->u.i <= KITH__TIME_MAX_MS ? 0 : KITH_EMALFORMED;
    case KITH_TYPE_STRING:
    case KITH_TYPE_DATE:
    case KITH_TYPE_ENUM:
    case KITH_TYPE_BYTES:
        if (v->u.s.len > KITH__MAX_VALUE_BYTES)
            return KITH_ETOOBIG;
        if (v->u.s.len > 0 && !v->u.s.ptr)
            return KITH_EMALFORMED;
        if (v->type == KITH_TYPE_BYTES || v->u.s.len == 0)
            return 0;
        if (memchr(v->u.s.ptr, '\0', v->u.s.len) || !kith__utf8_valid(v->u.s.ptr, v->u.s.len))
            return KITH_EMALFORMED;
        return 0;
    default:
        return KITH_EMALFORMED;
    }
}

/* A set element's bytes fit format 2: 1..KITH__MAX_ELEM_BYTES of UTF-8 without NUL. */
static int
elem_shape(const char *p, size_t len)
{
    if (len == 0)
        return KITH_EMALFORMED;
    if (len > KITH__MAX_ELEM_BYTES)
        return KITH_ETOOBIG;
    if (!p || memchr(p, '\0', len) || !kith__utf8_valid(p, len))
        return KITH_EMALFORMED;
    return 0;
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

/* ---- the name table (format 2): the names the ops use, in order of first use ------------- */

#define NAME_MAP 1024 /* input names remembered by index; beyond, each is searched */

struct name_table {
    uint32_t n;
    const struct kith__name *name[KITH__MAX_COMMIT_NAMES];
    const struct kith__name *in; /* the commit's names, as given */
    int16_t out_of[NAME_MAP];    /* input index -> output index, -1 until met */
};

/* The output index of the input name at `i`, adding it if new: >= 0, or -1 when the table
 * is full. A name met before by its input index costs one load. */
static long
names_use(struct name_table *t, uint32_t i)
{
    const struct kith__name *nm = &t->in[i];
    if (i < NAME_MAP && t->out_of[i] >= 0)
        return t->out_of[i];
    long k = 0;
    while ((uint32_t)k < t->n &&
           !(t->name[k]->len == nm->len && memcmp(t->name[k]->ptr, nm->ptr, nm->len) == 0))
        k++;
    if ((uint32_t)k == t->n) {
        if (t->n == KITH__MAX_COMMIT_NAMES)
            return -1;
        t->name[t->n++] = nm;
    }
    if (i < NAME_MAP)
        t->out_of[i] = (int16_t)k;
    return k;
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

/* Format 1's numbers for an op's names: 0, or KITH_EINVAL when format 1 has no such names or
 * the op does not fit the field's type there. */
static int
v1_numbers(const struct kith__commit *c, const struct kith__op *op, unsigned *coll, unsigned *field)
{
    const struct kith__name *cn = &c->names[op->cname];
    int cno = kith__v1_coll_number(cn->ptr, cn->len), fno = 0;
    if (cno < 0)
        return KITH_EINVAL;
    if (kith__op_has_field(op->kind)) {
        const struct kith__name *fn = &c->names[op->fname];
        fno = kith__v1_field_number((unsigned)cno, fn->ptr, fn->len);
        const kith_field_def *fd = fno > 0 ? kith__schema_field_def(cno, fno) : NULL;
        if (!fd || (op->kind == KITH_OP_FIELD_SET) == (fd->type == KITH_TYPE_SET))
            return KITH_EINVAL;
        if (op->kind == KITH_OP_FIELD_SET && op->value.type != KITH_TYPE_NULL &&
            op->value.type != fd->type)
            return KITH_EINVAL;
    }
    *coll = (unsigned)cno;
    *field = (unsigned)fno;
    return 0;
}

/* Check everything the encoder needs before it writes a byte, and gather the origin and name
 * tables. 0 or KITH_EINVAL. */
static int
encode_check(const struct kith__commit *c, struct origin_table *t, struct name_table *nt)
{
    unsigned last_kind = c->format == 1 ? KITH_OP_SET_REMOVE : KITH_OP_FLAG_DISABLE;
    if ((c->format != 1 && c->format != 2) || c->nops == 0 || c->nops > KITH__MAX_COMMIT_OPS ||
        !c->ops || c->first_seq == 0 || c->first_seq > UINT64_MAX - (c->nops - 1) ||
        (c->nnames > 0 && !c->names))
        return KITH_EINVAL;
    for (uint32_t i = 0; i < c->nops; i++) {
        const struct kith__op *op = &c->ops[i];
        bool has_field = kith__op_has_field(op->kind);
        unsigned cno, fno;
        if (op->kind < KITH_OP_FIELD_SET || op->kind > last_kind || op->cname >= c->nnames ||
            !kith__name_valid(c->names[op->cname].ptr, c->names[op->cname].len))
            return KITH_EINVAL;
        if (has_field && (op->fname >= c->nnames ||
                          !kith__name_valid(c->names[op->fname].ptr, c->names[op->fname].len)))
            return KITH_EINVAL;
        if ((op->nobserved > 0 && !op->observed) || op_rules(c, op, c->first_seq + i, NULL, 0) < 0)
            return KITH_EINVAL;
        switch (op->kind) {
        case KITH_OP_FIELD_SET:
            if (value_shape(&op->value) < 0)
                return KITH_EINVAL;
            break;
        case KITH_OP_SET_ADD:
        case KITH_OP_SET_REMOVE:
            if (op->value.type != KITH_TYPE_STRING ||
                elem_shape(op->value.u.s.ptr, op->value.u.s.len) < 0)
                return KITH_EINVAL;
            break;
        case KITH_OP_COUNTER_ADD:
            if (op->value.type != KITH_TYPE_INT)
                return KITH_EINVAL;
            break;
        default:
            break;
        }
        if (c->format == 1) {
            if (v1_numbers(c, op, &cno, &fno) < 0)
                return KITH_EINVAL;
        } else if (names_use(nt, op->cname) < 0 || (has_field && names_use(nt, op->fname) < 0)) {
            return KITH_EINVAL;
        }
        if (op_origins(t, c->origin, op) < 0)
            return KITH_EINVAL;
    }
    return 0;
}

/* The name or number an op writes for its collection (field: its field). */
static uint64_t
name_out(const struct kith__commit *c, struct name_table *nt, const struct kith__op *op, bool field)
{
    unsigned cno = 0, fno = 0;
    if (c->format == 1) {
        (void)v1_numbers(c, op, &cno, &fno); /* checked by encode_check */
        return field ? fno : cno;
    }
    return (uint64_t)names_use(nt, field ? op->fname : op->cname);
}

int
kith__commit_encode(const struct kith__commit *c, struct kith__wbuf *out)
{
    struct origin_table t;
    struct name_table nt;
    msgpack_packer pk;
    size_t start;
    int prc = 0;

    if (!c || !out)
        return KITH_EINVAL;
    t.n = 0;
    nt.n = 0;
    nt.in = c->names;
    for (uint32_t k = 0; k < c->nnames && k < NAME_MAP; k++)
        nt.out_of[k] = -1;
    if (encode_check(c, &t, &nt) < 0)
        return KITH_EINVAL;
    start = out->len;
    if (kith__wbuf_reserve(out, 16 + 9 * (size_t)t.n + 24 * (size_t)c->nops) < 0)
        return KITH_ENOMEM;
    msgpack_packer_init(&pk, out, kith__wbuf_write);
    prc |= msgpack_pack_array(&pk, c->format == 1 ? 3 : 4);
    prc |= msgpack_pack_uint64(&pk, c->hlc);
    prc |= msgpack_pack_array(&pk, t.n);
    for (uint32_t k = 0; k < t.n; k++)
        prc |= msgpack_pack_uint64(&pk, t.id[k]);
    if (c->format == 2) {
        prc |= msgpack_pack_array(&pk, nt.n);
        for (uint32_t k = 0; k < nt.n; k++)
            prc |= msgpack_pack_str(&pk, nt.name[k]->len) |
                   msgpack_pack_str_body(&pk, nt.name[k]->ptr, nt.name[k]->len);
    }
    prc |= msgpack_pack_array(&pk, c->nops);
    for (uint32_t i = 0; i < c->nops && prc == 0; i++) {
        const struct kith__op *op = &c->ops[i];
        if (c->format == 1) {
            prc |= msgpack_pack_array(&pk, v1_fixed[op->kind] + 2 * (size_t)op->nobserved);
            prc |= msgpack_pack_uint64(&pk, op->kind);
        } else {
            unsigned type = op->kind == KITH_OP_FIELD_SET ? (unsigned)op->value.type : 0;
            prc |= msgpack_pack_array(&pk, v2_fixed[op->kind] + 2 * (size_t)op->nobserved);
            prc |= msgpack_pack_uint64(&pk, TAG(op->kind, type));
        }
        prc |= msgpack_pack_uint64(&pk, name_out(c, &nt, op, false));
        prc |= pack_dot(&pk, &t, c->origin, op->doc);
        if (kith__op_has_field(op->kind))
            prc |= msgpack_pack_uint64(&pk, name_out(c, &nt, op, true));
        switch (op->kind) {
        case KITH_OP_FIELD_SET:
            prc |= pack_value(&pk, &t, c->origin, &op->value);
            prc |= pack_dot(&pk, &t, c->origin, op->replaced);
            break;
        case KITH_OP_SET_ADD:
        case KITH_OP_SET_REMOVE:
            prc |= msgpack_pack_str(&pk, op->value.u.s.len);
            prc |= msgpack_pack_str_body(&pk, op->value.u.s.ptr, op->value.u.s.len);
            break;
        case KITH_OP_COUNTER_ADD:
            prc |= msgpack_pack_int64(&pk, op->value.u.i);
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
    uint32_t used;       /* origins met so far, in order of first use */
    uint32_t nnames;     /* format 2: the name table's size */
    uint32_t names_used; /* names met so far, in order of first use */
    const struct kith__commit *c;
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

static bool
get_int(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return true;
    }
    return false;
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

/* Read a name index (format 2), enforcing the name table's order of first use. */
static inline int
get_name(struct decoder *d, const msgpack_object *o, uint16_t *out)
{
    uint64_t ni;
    if (!get_uint(o, &ni) || ni >= d->nnames || ni > d->names_used)
        return KITH_EMALFORMED;
    if (ni == d->names_used)
        d->names_used++;
    *out = (uint16_t)ni;
    return 0;
}

/* Read a value of type t; 0, KITH_EMALFORMED (the object is not of the type's form) or what
 * value_shape says. */
static inline int
get_value(struct decoder *d, const msgpack_object *o, kith_type t, kith_value *v)
{
    bool fits = false;
    v->type = t; /* the op it belongs to was zeroed */
    switch (t) {
    case KITH_TYPE_NULL:
        fits = o->type == MSGPACK_OBJECT_NIL;
        break;
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
        fits = get_int(o, &v->u.i);
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
    if (!fits)
        return KITH_EMALFORMED;
    return value_shape(v);
}

/* Read the observed dots from e[from..n) into the arena. */
static int
get_observed(struct decoder *d, const msgpack_object *e, uint32_t from, uint32_t n,
             struct kith__op *op, struct kith__arena *arena)
{
    uint32_t nobs = (n - from) / 2;
    int rc;
    if (nobs > KITH__MAX_OBSERVED)
        return KITH_ETOOBIG;
    if (nobs == 0)
        return 0;
    kith_dot *obs = kith__arena_alloc(arena, nobs * sizeof *obs);
    if (!obs)
        return KITH_ENOMEM;
    for (uint32_t j = 0; j < nobs; j++)
        if ((rc = get_dot(d, &e[from + 2 * j], &obs[j])) < 0)
            return rc;
    op->observed = obs;
    op->nobserved = nobs;
    return 0;
}

/* Decode format-2 op number `seq` from its msgpack array into *op. */
static int
get_op_v2(struct decoder *d, const msgpack_object *o, uint64_t seq, struct kith__op *op,
          struct kith__arena *arena)
{
    const msgpack_object *e;
    uint64_t tag;
    unsigned kind, type;
    uint32_t n;
    int rc;

    memset(op, 0, sizeof *op);
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 4)
        return KITH_EMALFORMED;
    e = o->via.array.ptr;
    n = o->via.array.size;
    if (!get_uint(&e[0], &tag))
        return KITH_EMALFORMED;
    kind = (unsigned)(tag / 16);
    type = (unsigned)(tag % 16);
    if (kind < KITH_OP_FIELD_SET || kind > KITH_OP_FLAG_DISABLE || tag >= 16 * 16 ||
        (kind == KITH_OP_FIELD_SET ? type > KITH_TYPE_ENUM : type != 0) || n < v2_fixed[kind] ||
        ((kind == KITH_OP_FIELD_SET || kind == KITH_OP_COUNTER_ADD) && n != v2_fixed[kind]) ||
        (n - v2_fixed[kind]) % 2 != 0)
        return KITH_EMALFORMED;
    op->kind = (uint8_t)kind;
    if ((rc = get_name(d, &e[1], &op->cname)) < 0 || (rc = get_dot(d, &e[2], &op->doc)) < 0)
        return rc;
    if (kith__op_has_field(kind) && (rc = get_name(d, &e[4], &op->fname)) < 0)
        return rc;
    switch (kind) {
    case KITH_OP_FIELD_SET:
        if ((rc = get_value(d, &e[5], (kith_type)type, &op->value)) < 0 ||
            (rc = get_dot(d, &e[6], &op->replaced)) < 0)
            return rc;
        break;
    case KITH_OP_SET_ADD:
    case KITH_OP_SET_REMOVE:
        if (e[5].type != MSGPACK_OBJECT_STR)
            return KITH_EMALFORMED;
        op->value.type = KITH_TYPE_STRING;
        op->value.u.s.ptr = e[5].via.str.ptr;
        op->value.u.s.len = e[5].via.str.size;
        if ((rc = elem_shape(op->value.u.s.ptr, op->value.u.s.len)) < 0)
            return rc;
        break;
    case KITH_OP_COUNTER_ADD:
        op->value.type = KITH_TYPE_INT;
        if (!get_int(&e[5], &op->value.u.i))
            return KITH_EMALFORMED;
        break;
    default:
        break;
    }
    if ((rc = get_observed(d, e, v2_fixed[kind], n, op, arena)) < 0)
        return rc;
    return op_rules(d->c, op, seq, d->why, d->why_cap);
}

/* Decode format-1 op number `seq`: numbers become names of kith__v1_names, and values are
 * typed and checked by the built-in schema, as format 1 always did. */
static int
get_op_v1(struct decoder *d, const msgpack_object *o, uint64_t seq, struct kith__op *op,
          struct kith__arena *arena)
{
    const msgpack_object *e;
    const kith_field_def *fd = NULL;
    const kith_collection_def *cd;
    uint64_t kind, coll, field = 0;
    uint32_t n;
    int rc;

    memset(op, 0, sizeof *op);
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 4)
        return KITH_EMALFORMED;
    e = o->via.array.ptr;
    n = o->via.array.size;
    if (!get_uint(&e[0], &kind) || kind < KITH_OP_FIELD_SET || kind > KITH_OP_SET_REMOVE ||
        n < v1_fixed[kind] || (kind == KITH_OP_FIELD_SET && n != v1_fixed[kind]) ||
        (n - v1_fixed[kind]) % 2 != 0)
        return KITH_EMALFORMED;
    if (!get_uint(&e[1], &coll))
        return KITH_EMALFORMED;
    cd = coll < 3 ? kith__schema_coll_def((int)coll) : NULL;
    if (!cd) {
        say(d->why, d->why_cap, "no such collection");
        return KITH_ESCHEMA;
    }
    op->kind = (uint8_t)kind;
    op->cname = (uint16_t)coll;
    if ((rc = get_dot(d, &e[2], &op->doc)) < 0)
        return rc;
    if (kith__op_has_field((unsigned)kind)) {
        if (!get_uint(&e[4], &field))
            return KITH_EMALFORMED;
        fd = field >= 1 && field < 256 ? kith__schema_field_def((int)coll, (int)field) : NULL;
        if (!fd) {
            say(d->why, d->why_cap, "%s: no such field", cd->name);
            return KITH_ESCHEMA;
        }
        if ((kind == KITH_OP_FIELD_SET) == (fd->type == KITH_TYPE_SET)) {
            say(d->why, d->why_cap, "%s.%s: op does not fit the field's type", cd->name, fd->name);
            return KITH_ESCHEMA;
        }
        op->fname = (uint16_t)kith__v1_field((unsigned)coll, (unsigned)field);
        if (kind == KITH_OP_FIELD_SET) {
            kith_type t = e[5].type == MSGPACK_OBJECT_NIL ? KITH_TYPE_NULL : fd->type;
            rc = get_value(d, &e[5], t, &op->value);
            if (rc == KITH_EMALFORMED) {
                say(d->why, d->why_cap, "%s.%s: value of the wrong type", cd->name, fd->name);
                return KITH_ESCHEMA;
            }
            if (rc == KITH_ETOOBIG)
                say(d->why, d->why_cap, "%s.%s: value too long", cd->name, fd->name);
            if (rc < 0 || (rc = get_dot(d, &e[6], &op->replaced)) < 0)
                return rc;
            if ((rc = kith__schema_check((int)coll, (int)field, &op->value, d->why, d->why_cap)) <
                0)
                return rc;
        } else {
            if (e[5].type != MSGPACK_OBJECT_STR)
                return KITH_EMALFORMED;
            if (e[5].via.str.size > KITH__MAX_VALUE_BYTES)
                return KITH_ETOOBIG;
            op->value.type = KITH_TYPE_STRING;
            op->value.u.s.ptr = e[5].via.str.ptr;
            op->value.u.s.len = e[5].via.str.size;
            if ((rc = kith__schema_check_elem((int)coll, (int)field, op->value.u.s.ptr,
                                              op->value.u.s.len, d->why, d->why_cap)) < 0)
                return rc;
        }
    }
    if ((rc = get_observed(d, e, v1_fixed[kind], n, op, arena)) < 0)
        return rc;
    return op_rules(d->c, op, seq, d->why, d->why_cap);
}

/* The format-2 name table: distinct valid names, into the arena. */
static int
get_names(struct decoder *d, const msgpack_object *o, struct kith__commit *c,
          struct kith__arena *arena)
{
    uint32_t n = o->via.array.size;
    struct kith__name *names;
    if (n > KITH__MAX_COMMIT_NAMES)
        return KITH_ETOOBIG;
    if (n > 2 * c->nops)
        return KITH_EMALFORMED; /* more names than the ops can use */
    names = n ? kith__arena_alloc(arena, n * sizeof *names) : NULL;
    if (n && !names)
        return KITH_ENOMEM;
    for (uint32_t k = 0; k < n; k++) {
        const msgpack_object *s = &o->via.array.ptr[k];
        if (s->type != MSGPACK_OBJECT_STR || !kith__name_valid(s->via.str.ptr, s->via.str.size))
            return KITH_EMALFORMED;
        names[k].ptr = s->via.str.ptr;
        names[k].len = s->via.str.size;
        for (uint32_t j = 0; j < k; j++)
            if (names[j].len == names[k].len &&
                memcmp(names[j].ptr, names[k].ptr, names[k].len) == 0)
                return KITH_EMALFORMED;
    }
    c->names = names;
    c->nnames = n;
    d->nnames = n;
    return 0;
}

static int
get_commit(struct decoder *d, const msgpack_object *root, uint64_t first_seq,
           struct kith__commit *c, struct kith__arena *arena)
{
    const msgpack_object *e, *ops;
    uint32_t nitems;
    int rc;

    if (root->type != MSGPACK_OBJECT_ARRAY ||
        (root->via.array.size != 3 && root->via.array.size != 4))
        return KITH_EMALFORMED;
    nitems = root->via.array.size;
    c->format = nitems == 3 ? 1 : 2;
    e = root->via.array.ptr;
    if (!get_uint(&e[0], &c->hlc) || e[1].type != MSGPACK_OBJECT_ARRAY ||
        e[nitems - 1].type != MSGPACK_OBJECT_ARRAY ||
        (nitems == 4 && e[2].type != MSGPACK_OBJECT_ARRAY))
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
    ops = e[nitems - 1].via.array.ptr;
    c->nops = e[nitems - 1].via.array.size;
    if (c->nops == 0)
        return KITH_EMALFORMED;
    if (c->nops > KITH__MAX_COMMIT_OPS)
        return KITH_ETOOBIG;
    if (first_seq == 0 || first_seq > UINT64_MAX - (c->nops - 1))
        return KITH_EMALFORMED;
    if (c->format == 1) {
        c->names = kith__v1_names;
        c->nnames = 19;
    } else if ((rc = get_names(d, &e[2], c, arena)) < 0) {
        return rc;
    }
    c->ops = kith__arena_alloc(arena, c->nops * sizeof *c->ops);
    if (!c->ops)
        return KITH_ENOMEM;
    d->c = c;
    for (uint32_t i = 0; i < c->nops; i++) {
        rc = c->format == 1 ? get_op_v1(d, &ops[i], first_seq + i, &c->ops[i], arena)
                            : get_op_v2(d, &ops[i], first_seq + i, &c->ops[i], arena);
        if (rc < 0)
            return rc;
    }
    if (d->used != d->norigins)
        return KITH_EMALFORMED; /* an origin no dot refers to */
    if (c->format == 2 && d->names_used != d->nnames)
        return KITH_EMALFORMED; /* a name no op uses */
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
