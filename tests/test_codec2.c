/*
 * test_codec2.c — commits of format 2 (spec/encoding.md "Commit") and the names they carry on
 * the wire (spec/encoding.md "Batch"): every op kind and value type round-trips byte for
 * byte, names of any collection or field are accepted (never a schema's refusal), the name
 * table's rules, tags, the worked example, generated round trips, and batches whose names
 * travel once per batch (ENC-3, ENC-8, ENC-10, BAT-5).
 */
#include "core.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "seeded_rng.h"

#define ORIGIN 0x1111111111111111ull
#define OTHER_A 0x2222222222222222ull
#define OTHER_B 0x0333333333333333ull

static struct kith__arena arena, barena;
static struct kith__wbuf buf, buf2;

static void
teardown(void)
{
    kith__arena_free(&arena);
    kith__arena_free(&barena);
    kith__wbuf_free(&buf);
    kith__wbuf_free(&buf2);
}

TestSuite(codec2, .fini = teardown);

#define NAME(s)                                                                                    \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

/* Names with repeats, as a transaction builds them: the encoder writes each once. */
static const struct kith__name names[] = {
    NAME("deals"),  NAME("title"),    NAME("deals"),    NAME("amount"),  NAME("stage"),
    NAME("labels"), NAME("views"),    NAME("starred"),  NAME("contact"), NAME("closes"),
    NAME("photo"),  NAME("birthday"), NAME("archived"), NAME("Notes_2"), NAME("contacts"),
};

enum {
    N_DEALS = 0,
    N_TITLE = 1,
    N_DEALS2 = 2,
    N_AMOUNT = 3,
    N_STAGE = 4,
    N_LABELS = 5,
    N_VIEWS = 6,
    N_STARRED = 7,
    N_CONTACT = 8,
    N_CLOSES = 9,
    N_PHOTO = 10,
    N_BIRTHDAY = 11,
    N_ARCHIVED = 12,
    N_NOTES = 13,
    N_CONTACTS = 14
};

static kith_dot
dot(uint64_t o, uint64_t s)
{
    kith_dot d = {o, s};
    return d;
}

static struct kith__op
op(uint8_t kind, uint16_t c, kith_dot doc, uint16_t f)
{
    struct kith__op o = {.kind = kind, .cname = c, .fname = f, .doc = doc};
    return o;
}

static struct kith__op
op_set(uint16_t c, kith_dot doc, uint16_t f, kith_value v, kith_dot replaced)
{
    struct kith__op o = op(KITH_OP_FIELD_SET, c, doc, f);
    o.value = v;
    o.replaced = replaced;
    return o;
}

static kith_value
vstr(kith_type t, const char *s, size_t n)
{
    kith_value v = {.type = t};
    v.u.s.ptr = s;
    v.u.s.len = n;
    return v;
}

static kith_value
vint(kith_type t, int64_t i)
{
    kith_value v = {.type = t};
    v.u.i = i;
    return v;
}

/* Every kind and every value type, on names no schema declares. */
static struct kith__op ops_all[20];
static const kith_dot obs2[] = {{OTHER_B, 2}, {OTHER_A, 5}};
static const kith_dot obs1[] = {{OTHER_A, 3}};

static struct kith__commit
all_commit(void)
{
    uint32_t n = 0;
    kith_dot d = dot(ORIGIN, 10);
    kith_value b = {.type = KITH_TYPE_BOOL}, ref = {.type = KITH_TYPE_REF};
    b.u.b = true;
    kith__docid_from_dot(&ref.u.ref, dot(OTHER_A, 7));
    ops_all[n++] = op(KITH_OP_DOC_ADD, N_DEALS, d, 0);
    ops_all[n++] =
        op_set(N_DEALS2, d, N_TITLE, vstr(KITH_TYPE_STRING, "Big \xc3\xa9 deal", 11), dot(0, 0));
    ops_all[n++] = op_set(N_DEALS, d, N_AMOUNT, vint(KITH_TYPE_INT, -5000000000ll), dot(0, 0));
    ops_all[n++] = op_set(N_DEALS, d, N_STAGE, vstr(KITH_TYPE_ENUM, "won", 3), dot(0, 0));
    ops_all[n++] = op_set(N_DEALS, d, N_CLOSES, vint(KITH_TYPE_TIME, 1764093600250), dot(0, 0));
    ops_all[n++] = op_set(N_DEALS, d, N_BIRTHDAY, vstr(KITH_TYPE_DATE, "--02-29", 7), dot(0, 0));
    ops_all[n++] = op_set(N_DEALS, d, N_PHOTO, vstr(KITH_TYPE_BYTES, "\x00\x01\xff", 3), dot(0, 0));
    ops_all[n++] = op_set(N_DEALS, d, N_ARCHIVED, b, dot(OTHER_B, 9));
    ops_all[n++] = op_set(N_DEALS, d, N_CONTACT, ref, dot(0, 0));
    ops_all[n++] =
        op_set(N_DEALS, d, N_NOTES, (kith_value){.type = KITH_TYPE_NULL}, dot(ORIGIN, 4));
    struct kith__op o = op(KITH_OP_SET_ADD, N_DEALS, d, N_LABELS);
    o.value = vstr(KITH_TYPE_STRING, "hot", 3);
    ops_all[n++] = o;
    o = op(KITH_OP_SET_REMOVE, N_DEALS, dot(OTHER_B, 1), N_LABELS);
    o.value = vstr(KITH_TYPE_STRING, "cold", 4);
    o.observed = obs2;
    o.nobserved = 2;
    ops_all[n++] = o;
    o = op(KITH_OP_COUNTER_ADD, N_DEALS, d, N_VIEWS);
    o.value = vint(KITH_TYPE_INT, -3);
    ops_all[n++] = o;
    o = op(KITH_OP_FLAG_ENABLE, N_DEALS, d, N_STARRED);
    o.observed = obs1;
    o.nobserved = 1;
    ops_all[n++] = o;
    o = op(KITH_OP_FLAG_DISABLE, N_DEALS, dot(OTHER_A, 7), N_STARRED);
    o.observed = obs2;
    o.nobserved = 2;
    ops_all[n++] = o;
    ops_all[n++] = op(KITH_OP_DOC_REMOVE, N_CONTACTS, dot(OTHER_A, 2), 0);
    ops_all[n - 1].observed = obs1;
    ops_all[n - 1].nobserved = 1;
    struct kith__commit c = {.format = 2,
                             .origin = ORIGIN,
                             .first_seq = 10,
                             .hlc = 0x0192a5b6c7d80003ull,
                             .nops = n,
                             .ops = ops_all,
                             .nnames = sizeof names / sizeof names[0],
                             .names = names};
    return c;
}

static bool
name_eq(const struct kith__name *a, const struct kith__name *b)
{
    return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

static bool
value_eq(const kith_value *a, const kith_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case KITH_TYPE_NULL:
        return true;
    case KITH_TYPE_INT:
    case KITH_TYPE_TIME:
        return a->u.i == b->u.i;
    case KITH_TYPE_BOOL:
        return a->u.b == b->u.b;
    case KITH_TYPE_REF:
        return memcmp(a->u.ref.bytes, b->u.ref.bytes, KITH_DOCID_BYTES) == 0;
    default:
        return a->u.s.len == b->u.s.len && memcmp(a->u.s.ptr, b->u.s.ptr, a->u.s.len) == 0;
    }
}

/* The decoded op means what the built one did: same kind, names, dots and value. */
static void
assert_same_op(const struct kith__commit *dc, const struct kith__op *a,
               const struct kith__commit *bc, const struct kith__op *b, uint32_t i)
{
    cr_assert_eq(a->kind, b->kind, "op %u kind", i);
    cr_assert(name_eq(&dc->names[a->cname], &bc->names[b->cname]), "op %u collection", i);
    if (kith__op_has_field(a->kind))
        cr_assert(name_eq(&dc->names[a->fname], &bc->names[b->fname]), "op %u field", i);
    cr_assert(a->doc.origin == b->doc.origin && a->doc.seq == b->doc.seq, "op %u doc", i);
    cr_assert(a->replaced.origin == b->replaced.origin && a->replaced.seq == b->replaced.seq,
              "op %u replaced", i);
    if (a->kind != KITH_OP_DOC_ADD && a->kind != KITH_OP_DOC_REMOVE &&
        a->kind != KITH_OP_FLAG_ENABLE && a->kind != KITH_OP_FLAG_DISABLE)
        cr_assert(value_eq(&a->value, &b->value), "op %u value", i);
    cr_assert_eq(a->nobserved, b->nobserved, "op %u nobserved", i);
    for (uint32_t j = 0; j < a->nobserved; j++)
        cr_assert(a->observed[j].origin == b->observed[j].origin &&
                      a->observed[j].seq == b->observed[j].seq,
                  "op %u observed %u", i, j);
}

static int
decode(const uint8_t *p, size_t len, struct kith__commit *out, char *why)
{
    kith__arena_reset(&arena);
    return kith__commit_decode(p, len, ORIGIN, 10, out, &arena, why, 128);
}

/* ENC-3, ENC-8: every kind and type on undeclared names round-trips, byte for byte. */
Test(codec2, round_trip_every_kind_and_type)
{
    struct kith__commit c = all_commit(), d;
    char why[128] = "";
    cr_assert_eq(kith__commit_encode(&c, &buf), 0);
    cr_assert_eq(buf.data[0], 0x94, "format 2 is a fixarray of 4");
    int rc = decode(buf.data, buf.len, &d, why);
    cr_assert_eq(rc, 0, "decode: %s (%s)", kith_strerror(rc), why);
    cr_assert_eq(d.format, 2);
    cr_assert_eq(d.nops, c.nops);
    cr_assert_eq(d.nnames, 14, "each name once: %u", d.nnames);
    for (uint32_t i = 0; i < c.nops; i++)
        assert_same_op(&d, &d.ops[i], &c, &c.ops[i], i);
    cr_assert_eq(kith__commit_encode(&d, &buf2), 0);
    cr_assert(buf.len == buf2.len && memcmp(buf.data, buf2.data, buf.len) == 0);
}

/* Every truncation of a valid commit is refused. */
Test(codec2, truncation_refused)
{
    struct kith__commit c = all_commit(), d;
    char why[128];
    cr_assert_eq(kith__commit_encode(&c, &buf), 0);
    for (size_t n = 0; n < buf.len; n++)
        cr_assert_lt(decode(buf.data, n, &d, why), 0, "accepted %zu of %zu bytes", n, buf.len);
}

/* One changed byte either is refused or decodes to a commit that re-encodes to itself. */
Test(codec2, mutations_refused_or_canonical)
{
    struct kith__commit c = all_commit(), d;
    char why[128];
    cr_assert_eq(kith__commit_encode(&c, &buf), 0);
    for (size_t i = 0; i < buf.len; i++)
        for (unsigned delta = 1; delta < 256; delta += 37) {
            uint8_t saved = buf.data[i];
            buf.data[i] = (uint8_t)(saved + delta);
            if (decode(buf.data, buf.len, &d, why) == 0) {
                buf2.len = 0;
                cr_assert_eq(kith__commit_encode(&d, &buf2), 0);
                cr_assert(buf2.len == buf.len && memcmp(buf2.data, buf.data, buf.len) == 0,
                          "byte %zu +%u accepted but not canonical", i, delta);
            }
            buf.data[i] = saved;
        }
}

/* ---- hand-made bytes ------------------------------------------------------------------- */

static msgpack_packer pk;

static void
start(uint32_t nnames)
{
    buf.len = 0;
    msgpack_packer_init(&pk, &buf, kith__wbuf_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_array(&pk, nnames);
}

static void
str(const char *s)
{
    msgpack_pack_str(&pk, strlen(s));
    msgpack_pack_str_body(&pk, s, strlen(s));
}

static void
u(uint64_t v)
{
    msgpack_pack_uint64(&pk, v);
}

/* A commit at first_seq 10: the names given, then ops written by the caller. */
static int
check(void)
{
    struct kith__commit d;
    char why[128];
    return decode(buf.data, buf.len, &d, why);
}

/* ENC-10: names in order of first use, once each, all used, of the right form. */
Test(codec2, name_table_rules)
{
    /* valid: [create "a"; set "a"."b" = "x"] */
    start(2), str("a"), str("b"), msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
    msgpack_pack_array(&pk, 8), u(17), u(0), u(0), u(10), u(1), str("x"), u(0), u(0);
    cr_assert_eq(check(), 0);
    /* a name used ahead of first-use order */
    start(2), str("a"), str("b"), msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 4), u(32), u(1), u(0), u(10);
    cr_assert_eq(check(), KITH_EMALFORMED);
    /* an unused name */
    start(2), str("a"), str("b"), msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
    cr_assert_eq(check(), KITH_EMALFORMED);
    /* a repeated name */
    start(2), str("a"), str("a"), msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
    msgpack_pack_array(&pk, 8), u(17), u(1), u(0), u(10), u(0), str("x"), u(0), u(0);
    cr_assert_eq(check(), KITH_EMALFORMED);
    /* names of the wrong form */
    static const char *const bad[] = {
        "",         "1a",
        "_a",       "a-b",
        "a.b",      "a b",
        "\xc3\xa9", "a0123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        start(1), str(bad[i]), msgpack_pack_array(&pk, 1);
        msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
        cr_assert_eq(check(), KITH_EMALFORMED, "name \"%s\" accepted", bad[i]);
    }
    /* the longest name is 64 bytes */
    start(1), str("a012345678901234567890123456789012345678901234567890123456789012"),
        msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
    cr_assert_eq(check(), 0);
    /* a field index beyond the table */
    start(1), str("a"), msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 6), u(96), u(0), u(0), u(10), u(1), u(1);
    cr_assert_eq(check(), KITH_EMALFORMED);
    /* a collection and a field may share a name */
    start(1), str("a"), msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
    msgpack_pack_array(&pk, 6), u(96), u(0), u(0), u(10), u(0), u(7);
    cr_assert_eq(check(), 0);
}

/* Tags: kind * 16 + type, the type only for FIELD_SET; values of their tag's form. */
Test(codec2, tags_and_values)
{
    for (unsigned tag = 0; tag < 300; tag++) {
        unsigned kind = tag / 16, type = tag % 16;
        start(2), str("a"), str("b"), msgpack_pack_array(&pk, 2);
        msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
        if (kind == KITH_OP_FIELD_SET) {
            msgpack_pack_array(&pk, 8), u(tag), u(0), u(0), u(10), u(1);
            msgpack_pack_nil(&pk), u(0), u(0);
            /* only NULL's tag takes nil */
            cr_assert_eq(check() == 0, type == KITH_TYPE_NULL, "tag %u", tag);
        } else if (kind == KITH_OP_COUNTER_ADD) {
            msgpack_pack_array(&pk, 6), u(tag), u(0), u(0), u(10), u(1), u(5);
            cr_assert_eq(check() == 0, type == 0, "tag %u", tag);
        } else {
            msgpack_pack_array(&pk, 5), u(tag), u(0), u(0), u(10), u(1);
            cr_assert_eq(check() == 0,
                         type == 0 && (kind == KITH_OP_FLAG_ENABLE || kind == KITH_OP_FLAG_DISABLE),
                         "tag %u", tag);
        }
    }

    /* each type's form, and the others refused */
    struct {
        unsigned type;
        void (*write)(void);
    } forms[] = {
        {KITH_TYPE_STRING, NULL}, {KITH_TYPE_INT, NULL},   {KITH_TYPE_TIME, NULL},
        {KITH_TYPE_BOOL, NULL},   {KITH_TYPE_BYTES, NULL}, {KITH_TYPE_REF, NULL},
        {KITH_TYPE_DATE, NULL},   {KITH_TYPE_ENUM, NULL},
    };

    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        for (unsigned shape = 0; shape < 6; shape++) {
            unsigned t = forms[i].type;
            start(2), str("a"), str("b"), msgpack_pack_array(&pk, 2);
            msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
            msgpack_pack_array(&pk, 8), u(16 + t), u(0), u(0), u(10), u(1);
            switch (shape) {
            case 0:
                str("text");
                break;
            case 1:
                msgpack_pack_int64(&pk, -7);
                break;
            case 2:
                msgpack_pack_true(&pk);
                break;
            case 3:
                msgpack_pack_bin(&pk, 2), msgpack_pack_bin_body(&pk, "\x01\x02", 2);
                break;
            case 4:
                msgpack_pack_array(&pk, 2), u(0), u(3);
                break;
            default:
                msgpack_pack_nil(&pk);
                break;
            }
            u(0), u(0);
            bool text = t == KITH_TYPE_STRING || t == KITH_TYPE_DATE || t == KITH_TYPE_ENUM;
            bool ok = (shape == 0 && text) ||
                      (shape == 1 && (t == KITH_TYPE_INT || t == KITH_TYPE_TIME)) ||
                      (shape == 2 && t == KITH_TYPE_BOOL) || (shape == 3 && t == KITH_TYPE_BYTES) ||
                      (shape == 4 && t == KITH_TYPE_REF);
            cr_assert_eq(check() == 0, ok, "type %u shape %u", t, shape);
        }
    /* text that is not UTF-8, or holds a NUL; a time outside the years 0001..9999 */
    const char *bad[] = {"\xff", "a\0b"};
    size_t badlen[] = {1, 3};
    for (int i = 0; i < 2; i++) {
        start(2), str("a"), str("b"), msgpack_pack_array(&pk, 2);
        msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
        msgpack_pack_array(&pk, 8), u(17), u(0), u(0), u(10), u(1);
        msgpack_pack_str(&pk, badlen[i]), msgpack_pack_str_body(&pk, bad[i], badlen[i]);
        u(0), u(0);
        cr_assert_eq(check(), KITH_EMALFORMED, "bad text %d", i);
    }
    start(2), str("a"), str("b"), msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
    msgpack_pack_array(&pk, 8), u(16 + KITH_TYPE_TIME), u(0), u(0), u(10), u(1);
    msgpack_pack_int64(&pk, 253402300800000ll), u(0), u(0);
    cr_assert_eq(check(), KITH_EMALFORMED);
    /* set elements: 1..493 bytes */
    for (unsigned n = 0; n <= 494; n += 493) {
        char e[494];
        memset(e, 'x', sizeof e);
        start(2), str("a"), str("b"), msgpack_pack_array(&pk, 2);
        msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
        msgpack_pack_array(&pk, 6), u(64), u(0), u(0), u(10), u(1);
        msgpack_pack_str(&pk, n), msgpack_pack_str_body(&pk, e, n);
        cr_assert_eq(check() == 0, n == 493, "element of %u bytes", n);
    }
}

/* Observed dots only where a kind has them; a counter's delta is one int. */
Test(codec2, observed_dots_per_kind)
{
    start(2), str("a"), str("b"), msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
    msgpack_pack_array(&pk, 8), u(96), u(0), u(0), u(10), u(1), u(5), u(0), u(10);
    cr_assert_eq(check(), KITH_EMALFORMED, "counter with observed dots");
    start(2), str("a"), str("b"), msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
    msgpack_pack_array(&pk, 7), u(112), u(0), u(0), u(10), u(1), u(0), u(10);
    cr_assert_eq(check(), 0, "flag enable observing the create");
    start(2), str("a"), str("b"), msgpack_pack_array(&pk, 2);
    msgpack_pack_array(&pk, 4), u(32), u(0), u(0), u(10);
    msgpack_pack_array(&pk, 6), u(112), u(0), u(0), u(10), u(1), u(0);
    cr_assert_eq(check(), KITH_EMALFORMED, "half an observed dot");
}

/* The worked example of spec/encoding.md 3.5.1. */
Test(codec2, worked_example_bytes)
{
    static const struct kith__name nm[] = {NAME("contacts"), NAME("name"), NAME("tags"),
                                           NAME("reminders")};
    static const kith_dot rm_obs[] = {{OTHER_A, 4}};
    struct kith__op o[4];
    kith_dot d = dot(ORIGIN, 10);
    o[0] = op(KITH_OP_DOC_ADD, 0, d, 0);
    o[1] = op_set(0, d, 1, vstr(KITH_TYPE_STRING, "Ann", 3), dot(0, 0));
    o[2] = op(KITH_OP_SET_ADD, 0, d, 2);
    o[2].value = vstr(KITH_TYPE_STRING, "friend", 6);
    o[3] = op(KITH_OP_DOC_REMOVE, 3, dot(OTHER_A, 3), 0);
    o[3].observed = rm_obs;
    o[3].nobserved = 1;
    struct kith__commit c = {.format = 2,
                             .origin = ORIGIN,
                             .first_seq = 10,
                             .hlc = 0x019abc2c21fa0000ull,
                             .nops = 4,
                             .ops = o,
                             .nnames = 4,
                             .names = nm};
    static const char expect[] =
        "94cf019abc2c21fa000091cf222222222222222294a8636f6e7461637473a46e616d65a474616773a972656d69"
        "6e6465727394942000000a981100000a01a3416e6e0000964000000a02a6667269656e6496300301030104";
    char hex[2 * 256 + 1];
    cr_assert_eq(kith__commit_encode(&c, &buf), 0);
    cr_assert_lt(buf.len, 256);
    for (size_t i = 0; i < buf.len; i++)
        snprintf(hex + 2 * i, 3, "%02x", buf.data[i]);
    cr_assert_str_eq(hex, expect);
}

/* ---- generated ------------------------------------------------------------------------- */

static const struct kith__name gen_names[] = {NAME("c0"), NAME("c1"),  NAME("f0"), NAME("f1"),
                                              NAME("f2"), NAME("Zed"), NAME("x_9")};

static void
gen_commit(struct test_rng *r, struct kith__commit *c, struct kith__op *ops, kith_dot (*obs)[6],
           char (*text)[40])
{
    static const uint64_t others[] = {OTHER_A, OTHER_B, 7, 0xffffffffffffffffull};
    uint32_t n = 1 + (uint32_t)test_rng_below(r, 40);
    uint64_t first = 1 + test_rng_below(r, 1000);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t seq = first + i;
        kith_dot doc = i > 0 && test_rng_chance(r, 1, 2)
                           ? dot(ORIGIN, first)
                           : dot(others[test_rng_below(r, 4)], 1 + test_rng_below(r, 50));
        uint32_t nobs = 0;
        for (uint32_t j = 0, want = (uint32_t)test_rng_below(r, 4); j < want; j++) {
            kith_dot o = dot(others[test_rng_below(r, 4)], 1 + test_rng_below(r, 1000));
            uint32_t at = nobs;
            bool dup = false;
            for (uint32_t q = 0; q < nobs; q++)
                dup |= obs[i][q].origin == o.origin && obs[i][q].seq == o.seq;
            if (dup)
                continue;
            while (at > 0 && (obs[i][at - 1].origin > o.origin ||
                              (obs[i][at - 1].origin == o.origin && obs[i][at - 1].seq > o.seq))) {
                obs[i][at] = obs[i][at - 1];
                at--;
            }
            obs[i][at] = o;
            nobs++;
        }
        uint16_t cn = (uint16_t)test_rng_below(r, 7), fn = (uint16_t)test_rng_below(r, 7);
        unsigned kind = i == 0 ? KITH_OP_DOC_ADD : 1 + (unsigned)test_rng_below(r, 8);
        struct kith__op *o = &ops[i];
        *o = op((uint8_t)kind, cn, i == 0 ? dot(ORIGIN, seq) : doc, fn);
        switch (kind) {
        case KITH_OP_FIELD_SET: {
            kith_type t = (kith_type)test_rng_below(r, 9);
            size_t len = (size_t)test_rng_below(r, 40);
            for (size_t q = 0; q < len; q++)
                text[i][q] = (char)('a' + test_rng_below(r, 26));
            kith_value v = {.type = t};
            if (t == KITH_TYPE_INT)
                v.u.i = (int64_t)test_rng_u64(r);
            else if (t == KITH_TYPE_TIME)
                v.u.i = (int64_t)(test_rng_u64(r) >> 22) - (1ll << 40);
            else if (t == KITH_TYPE_BOOL)
                v.u.b = test_rng_chance(r, 1, 2);
            else if (t == KITH_TYPE_REF)
                kith__docid_from_dot(&v.u.ref, dot(others[test_rng_below(r, 4)], 1 + i));
            else if (t != KITH_TYPE_NULL)
                v = vstr(t, text[i], len);
            o->value = v;
            o->replaced =
                test_rng_chance(r, 1, 2) ? dot(0, 0) : dot(others[test_rng_below(r, 4)], 3);
            break;
        }
        case KITH_OP_SET_ADD:
        case KITH_OP_SET_REMOVE:
            text[i][0] = (char)('a' + test_rng_below(r, 26));
            o->value = vstr(KITH_TYPE_STRING, text[i], 1 + (size_t)test_rng_below(r, 3));
            memset(text[i] + 1, 'q', 3);
            break;
        case KITH_OP_COUNTER_ADD:
            o->value = vint(KITH_TYPE_INT, (int64_t)test_rng_u64(r));
            break;
        default:
            break;
        }
        if (kind != KITH_OP_FIELD_SET && kind != KITH_OP_COUNTER_ADD && i > 0) {
            o->observed = obs[i];
            o->nobserved = nobs;
        }
    }
    memset(c, 0, sizeof *c);
    c->format = 2;
    c->origin = ORIGIN;
    c->first_seq = first;
    c->hlc = test_rng_u64(r);
    c->nops = n;
    c->ops = ops;
    c->names = gen_names;
    c->nnames = 7;
}

/* ENC-3: generated commits of every kind decode to what was built and re-encode to themselves. */
Test(codec2, generated_round_trips)
{
    uint64_t seed = kith_test_seed(20261206);
    unsigned cases = kith_test_cases(400);
    static struct kith__op ops[40];
    static kith_dot obs[40][6];
    static char text[40][40];
    for (unsigned k = 0; k < cases; k++) {
        struct test_rng r;
        struct kith__commit c, d;
        char why[128] = "";
        test_rng_init(&r, seed, k);
        gen_commit(&r, &c, ops, obs, text);
        buf.len = buf2.len = 0;
        int rc = kith__commit_encode(&c, &buf);
        cr_assert_eq(rc, 0, "KITH_SEED=%llu case %u: encode %d", (unsigned long long)seed, k, rc);
        kith__arena_reset(&arena);
        rc = kith__commit_decode(buf.data, buf.len, ORIGIN, c.first_seq, &d, &arena, why,
                                 sizeof why);
        cr_assert_eq(rc, 0, "KITH_SEED=%llu case %u: decode %d %s", (unsigned long long)seed, k, rc,
                     why);
        for (uint32_t i = 0; i < c.nops; i++)
            assert_same_op(&d, &d.ops[i], &c, &c.ops[i], i);
        cr_assert_eq(kith__commit_encode(&d, &buf2), 0);
        cr_assert(buf.len == buf2.len && memcmp(buf.data, buf2.data, buf.len) == 0,
                  "KITH_SEED=%llu case %u: not canonical", (unsigned long long)seed, k);
    }
}

/* ---- batches: names once per batch ------------------------------------------------------ */

/* BAT-5: a batch of generated commits decodes to the canonical bytes of each, its names are
 * sent once, and it re-encodes to itself. */
Test(codec2, batch_names_travel_once)
{
    uint64_t seed = kith_test_seed(20261207);
    static struct kith__op ops[40];
    static kith_dot obs[40][6];
    static char text[40][40];
    static struct kith__wbuf canon[50];
    struct kith__batch_commit bc[50];
    size_t canon_total = 0, names_total = 0;
    struct test_rng r;
    uint64_t seq = 1;

    test_rng_init(&r, seed, 0);
    for (int i = 0; i < 50; i++) {
        struct kith__commit c;
        gen_commit(&r, &c, ops, obs, text);
        /* renumber to make the 50 commits one contiguous run of ORIGIN */
        c.first_seq = seq;
        ops[0].doc = dot(ORIGIN, seq);
        for (uint32_t k = 1; k < c.nops; k++) {
            if (ops[k].doc.origin == ORIGIN)
                ops[k].doc = dot(ORIGIN, seq);
            if (ops[k].replaced.origin == ORIGIN)
                ops[k].replaced = dot(0, 0);
            if (ops[k].kind == KITH_OP_FIELD_SET && ops[k].value.type == KITH_TYPE_REF)
                kith__docid_from_dot(&ops[k].value.u.ref, dot(OTHER_A, 1));
        }
        for (uint32_t k = 1; k < c.nops; k++)
            for (uint32_t q = 0; q < ops[k].nobserved; q++)
                if (ops[k].observed[q].origin == ORIGIN)
                    ops[k].nobserved = 0; /* keep dots of this origin behind the op */
        canon[i].len = 0;
        cr_assert_eq(kith__commit_encode(&c, &canon[i]), 0, "commit %d", i);
        bc[i] = (struct kith__batch_commit){ORIGIN, seq, canon[i].data, canon[i].len};
        canon_total += canon[i].len;
        seq += c.nops;
    }
    for (size_t k = 0; k < 7; k++)
        names_total += gen_names[k].len;
    struct kith__batch b = {.sender = ORIGIN, .ncommits = 50, .commits = bc};
    struct kith__batch d;
    buf.len = 0;
    cr_assert_eq(kith__batch_encode(&b, &buf), 0);
    /* every name the commits use is written once in the whole batch: in its table */
    for (size_t k = 0; k < 7; k++) {
        uint8_t str[8];
        size_t seen = 0, n = 1 + gen_names[k].len;
        str[0] = (uint8_t)(0xa0 | gen_names[k].len);
        memcpy(str + 1, gen_names[k].ptr, gen_names[k].len);
        for (size_t at = 0; at + n <= buf.len; at++)
            seen += memcmp(buf.data + at, str, n) == 0;
        cr_assert_leq(seen, 1, "%s is written %zu times", gen_names[k].ptr, seen);
    }
    kith__arena_reset(&barena);
    cr_assert_eq(kith__batch_decode(buf.data, buf.len, &d, &barena), 0);
    cr_assert_eq(d.ncommits, 50);
    for (int i = 0; i < 50; i++)
        cr_assert(d.commits[i].len == canon[i].len &&
                      memcmp(d.commits[i].bytes, canon[i].data, canon[i].len) == 0,
                  "commit %d is not its canonical bytes after the trip", i);
    buf2.len = 0;
    cr_assert_eq(kith__batch_encode(&d, &buf2), 0);
    cr_assert(buf2.len == buf.len && memcmp(buf2.data, buf.data, buf.len) == 0);
    /* every truncation of the batch is refused */
    for (size_t n = 0; n < buf.len; n += 7) {
        kith__arena_reset(&barena);
        cr_assert_lt(kith__batch_decode(buf.data, n, &d, &barena), 0, "%zu bytes", n);
    }
    for (int i = 0; i < 50; i++)
        kith__wbuf_free(&canon[i]);
}

/* A batch of format 1 (kith 0.1's bundles) still decodes; a format-1 commit in a batch of
 * format 2 travels as it is. */
Test(codec2, batch_formats)
{
    static const struct kith__name v1c[] = {NAME("contacts")};
    (void)v1c;
    struct kith__op o = op(KITH_OP_DOC_ADD, 0, dot(ORIGIN, 1), 0);
    struct kith__commit c1 = {.format = 1,
                              .origin = ORIGIN,
                              .first_seq = 1,
                              .hlc = 5,
                              .nops = 1,
                              .ops = &o,
                              .names = kith__v1_names,
                              .nnames = 19};
    struct kith__wbuf cb = {0};
    struct kith__batch d;
    cr_assert_eq(kith__commit_encode(&c1, &cb), 0);
    cr_assert_eq(cb.data[0], 0x93);
    struct kith__batch_commit bc = {ORIGIN, 1, cb.data, cb.len};
    struct kith__batch b = {.sender = ORIGIN, .ncommits = 1, .commits = &bc};
    buf.len = 0;
    cr_assert_eq(kith__batch_encode(&b, &buf), 0);
    kith__arena_reset(&barena);
    cr_assert_eq(kith__batch_decode(buf.data, buf.len, &d, &barena), 0);
    cr_assert(d.commits[0].len == cb.len && memcmp(d.commits[0].bytes, cb.data, cb.len) == 0);
    /* the same as format 1: [1, sender, [origin], [0, 1, bin], []] */
    buf.len = 0;
    msgpack_packer_init(&pk, &buf, kith__wbuf_write);
    msgpack_pack_array(&pk, 5), u(1), u(ORIGIN), msgpack_pack_array(&pk, 1), u(ORIGIN);
    msgpack_pack_array(&pk, 3), u(0), u(1);
    msgpack_pack_bin(&pk, cb.len), msgpack_pack_bin_body(&pk, cb.data, cb.len);
    msgpack_pack_array(&pk, 0);
    kith__arena_reset(&barena);
    cr_assert_eq(kith__batch_decode(buf.data, buf.len, &d, &barena), 0);
    cr_assert_eq(d.ncommits, 1);
    /* format 4 is not read */
    buf.data[1] = 4;
    cr_assert_eq(kith__batch_decode(buf.data, buf.len, &d, &barena), KITH_EVERSION);
    kith__wbuf_free(&cb);
}
