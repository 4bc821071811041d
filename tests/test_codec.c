/*
 * test_codec.c — the commit codec for commits of format 1 (spec/encoding.md "Commit",
 * 3.5.2), which stay in logs for ever: round trips of every op kind and value type the
 * built-in schema has, refusal of every non-canonical form and of every truncation, the guard
 * against huge array headers, limits, dependencies, and the known-answer vector in
 * tests/data/commit-kat.txt (ENC-1 .. ENC-9 cite the spec's rules). Ops are built with
 * format 1's numbers, turned into names of kith__v1_names as the decoder turns them; format 2
 * has tests/test_codec2.c.
 *
 * The built-in schema has no INT or BYTES field: INT shares TIME's encoding (both are msgpack
 * ints), and bin is tested as a form the decoder refuses where a string is expected.
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

/* Collection and field numbers of the built-in schema. */
enum { CONTACTS = 0, INTERACTIONS = 1, REMINDERS = 2 };

enum { C_NAME = 1, C_EMAIL = 2, C_BIRTHDAY = 6, C_TAGS = 7 };

enum { I_CONTACT = 1, I_KIND = 2, I_AT = 3, I_PARTICIPANTS = 5 };

enum { R_CONTACT = 1, R_DUE = 2, R_TEXT = 3, R_DONE = 4 };

/* The part of every format-1 commit literal that says so. */
#define V1_COMMIT .format = 1, .names = kith__v1_names, .nnames = 19

static struct kith__arena arena;
static struct kith__wbuf buf, buf2;

static void
teardown(void)
{
    kith__arena_free(&arena);
    kith__wbuf_free(&buf);
    kith__wbuf_free(&buf2);
}

TestSuite(codec, .fini = teardown);

static kith_dot
dot(uint64_t o, uint64_t s)
{
    kith_dot d = {o, s};
    return d;
}

/* An op's names as format 1's numbers give them (cname: the collection's number, which is
 * its index in kith__v1_names; fname: the field's index there). */
static uint16_t
v1_fname(uint8_t coll, uint8_t field)
{
    int i = kith__v1_field(coll, field);
    return i < 0 ? 0xffff : (uint16_t)i;
}

static struct kith__op
op_doc(uint8_t kind, uint8_t coll, kith_dot doc, const kith_dot *obs, uint32_t nobs)
{
    struct kith__op op = {
        .kind = kind, .cname = coll, .doc = doc, .observed = obs, .nobserved = nobs};
    return op;
}

static struct kith__op
op_set(uint8_t coll, kith_dot doc, uint8_t field, kith_value v, kith_dot replaced)
{
    struct kith__op op = {.kind = KITH_OP_FIELD_SET,
                          .cname = coll,
                          .doc = doc,
                          .fname = v1_fname(coll, field),
                          .value = v,
                          .replaced = replaced};
    return op;
}

static struct kith__op
op_elem(uint8_t kind, uint8_t coll, kith_dot doc, uint8_t field, const char *elem,
        const kith_dot *obs, uint32_t nobs)
{
    struct kith__op op = {.kind = kind,
                          .cname = coll,
                          .doc = doc,
                          .fname = v1_fname(coll, field),
                          .observed = obs,
                          .nobserved = nobs};
    op.value.type = KITH_TYPE_STRING;
    op.value.u.s.ptr = elem;
    op.value.u.s.len = strlen(elem);
    return op;
}

static kith_value
vstr(kith_type t, const char *s)
{
    kith_value v = {.type = t};
    v.u.s.ptr = s;
    v.u.s.len = strlen(s);
    return v;
}

static kith_value
vint(kith_type t, int64_t i)
{
    kith_value v = {.type = t};
    v.u.i = i;
    return v;
}

static kith_value
vbool(bool b)
{
    kith_value v = {.type = KITH_TYPE_BOOL};
    v.u.b = b;
    return v;
}

static kith_value
vref(kith_dot d)
{
    kith_value v = {.type = KITH_TYPE_REF};
    kith__docid_from_dot(&v.u.ref, d);
    return v;
}

static const kith_dot obs_tags[] = {{OTHER_B, 4}, {ORIGIN, 1}, {OTHER_A, 9}, {OTHER_A, 12}};
/* sorted by (origin, seq): */
static const kith_dot obs_sorted[] = {{OTHER_B, 4}, {ORIGIN, 1}, {OTHER_A, 9}, {OTHER_A, 12}};

/* A commit using every op kind and every value type of the built-in schema. */
static struct kith__op big_ops[16];

static struct kith__commit
big_commit(void)
{
    static const kith_dot rm_obs[] = {{OTHER_A, 3}};
    static const kith_dot add_obs[] = {{OTHER_B, 2}, {OTHER_A, 5}};
    (void)obs_tags;
    uint32_t n = 0;
    kith_dot c1 = dot(ORIGIN, 10); /* created by op 0, first_seq 10 */
    big_ops[n++] = op_doc(KITH_OP_DOC_ADD, CONTACTS, c1, NULL, 0);
    big_ops[n++] =
        op_set(CONTACTS, c1, C_NAME, vstr(KITH_TYPE_STRING, "Ann \xc3\x89lise"), dot(0, 0));
    big_ops[n++] = op_set(CONTACTS, dot(OTHER_A, 7), C_EMAIL,
                          vstr(KITH_TYPE_STRING, "a-somewhat-longer-address-over-32@example.org"),
                          dot(OTHER_B, 3));
    big_ops[n++] = op_set(CONTACTS, c1, C_BIRTHDAY, vstr(KITH_TYPE_DATE, "1990-02-28"), dot(0, 0));
    big_ops[n++] =
        op_set(CONTACTS, dot(OTHER_A, 7), C_EMAIL, (kith_value){.type = 0}, dot(ORIGIN, 4));
    big_ops[n++] = op_elem(KITH_OP_SET_ADD, CONTACTS, c1, C_TAGS, "friend", NULL, 0);
    big_ops[n++] =
        op_elem(KITH_OP_SET_REMOVE, CONTACTS, dot(OTHER_B, 1), C_TAGS, "work", obs_sorted, 4);
    kith_dot i1 = dot(ORIGIN, 17);
    big_ops[n++] = op_doc(KITH_OP_DOC_ADD, INTERACTIONS, i1, NULL, 0);
    big_ops[n++] = op_set(INTERACTIONS, i1, I_CONTACT, vref(c1), dot(0, 0));
    big_ops[n++] = op_set(INTERACTIONS, i1, I_KIND, vstr(KITH_TYPE_ENUM, "meeting"), dot(0, 0));
    big_ops[n++] = op_set(INTERACTIONS, i1, I_AT, vint(KITH_TYPE_TIME, 1764093600250), dot(0, 0));
    big_ops[n++] =
        op_set(REMINDERS, dot(OTHER_B, 8), R_DUE, vint(KITH_TYPE_TIME, -86400000), dot(0, 0));
    big_ops[n++] = op_set(REMINDERS, dot(OTHER_B, 8), R_DONE, vbool(true), dot(OTHER_B, 9));
    big_ops[n++] = op_set(REMINDERS, dot(OTHER_B, 8), R_CONTACT, vref(dot(OTHER_A, 7)), dot(0, 0));
    big_ops[n++] = op_doc(KITH_OP_DOC_ADD, CONTACTS, dot(OTHER_A, 7), add_obs, 2);
    big_ops[n++] = op_doc(KITH_OP_DOC_REMOVE, CONTACTS, dot(OTHER_A, 2), rm_obs, 1);
    struct kith__commit c = {V1_COMMIT,       .origin = ORIGIN,
                             .first_seq = 10, .hlc = 0x0192a5b6c7d80003ull,
                             .nops = n,       .ops = big_ops};
    return c;
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

static void
assert_op_eq(const struct kith__op *a, const struct kith__op *b, uint32_t i)
{
    cr_assert_eq(a->kind, b->kind, "op %u kind", i);
    cr_assert_eq(a->cname, b->cname, "op %u collection", i);
    if (a->kind != KITH_OP_DOC_ADD && a->kind != KITH_OP_DOC_REMOVE)
        cr_assert_eq(a->fname, b->fname, "op %u field", i);
    cr_assert(a->doc.origin == b->doc.origin && a->doc.seq == b->doc.seq, "op %u doc", i);
    cr_assert(a->replaced.origin == b->replaced.origin && a->replaced.seq == b->replaced.seq,
              "op %u replaced", i);
    if (a->kind != KITH_OP_DOC_ADD && a->kind != KITH_OP_DOC_REMOVE)
        cr_assert(value_eq(&a->value, &b->value), "op %u value", i);
    cr_assert_eq(a->nobserved, b->nobserved, "op %u nobserved", i);
    for (uint32_t j = 0; j < a->nobserved; j++)
        cr_assert(a->observed[j].origin == b->observed[j].origin &&
                      a->observed[j].seq == b->observed[j].seq,
                  "op %u observed %u", i, j);
}

static int
decode(const uint8_t *p, size_t len, struct kith__commit *out)
{
    char why[128];
    kith__arena_reset(&arena);
    return kith__commit_decode(p, len, ORIGIN, 10, out, &arena, why, sizeof why);
}

/* ENC-1: every op kind and value type survives encode -> decode -> encode, byte for byte. */
Test(codec, round_trip_every_kind_and_type)
{
    struct kith__commit c = big_commit(), d;
    char why[128] = "";
    cr_assert_eq(kith__commit_encode(&c, &buf), 0);
    int rc = kith__commit_decode(buf.data, buf.len, ORIGIN, 10, &d, &arena, why, sizeof why);
    cr_assert_eq(rc, 0, "decode: %s (%s)", kith_strerror(rc), why);
    cr_assert_eq(d.origin, ORIGIN);
    cr_assert_eq(d.first_seq, 10);
    cr_assert_eq(d.hlc, c.hlc);
    cr_assert_eq(d.nops, c.nops);
    for (uint32_t i = 0; i < c.nops; i++)
        assert_op_eq(&d.ops[i], &c.ops[i], i);
    cr_assert_eq(kith__commit_encode(&d, &buf2), 0);
    cr_assert_eq(buf2.len, buf.len);
    cr_assert_eq(memcmp(buf.data, buf2.data, buf.len), 0);
    /* Strings are views into the input. */
    cr_assert((const uint8_t *)d.ops[1].value.u.s.ptr > buf.data &&
              (const uint8_t *)d.ops[1].value.u.s.ptr < buf.data + buf.len);
}

/* Integers at every width boundary round-trip in their shortest form. */
Test(codec, round_trip_integer_widths)
{
    static const int64_t vals[] = {0,
                                   1,
                                   127,
                                   128,
                                   255,
                                   256,
                                   65535,
                                   65536,
                                   4294967295ll,
                                   4294967296ll,
                                   -1,
                                   -32,
                                   -33,
                                   -128,
                                   -129,
                                   -32768,
                                   -32769,
                                   -2147483648ll,
                                   -2147483649ll,
                                   253402300799999ll,
                                   -62135596800000ll};
    for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
        struct kith__op ops[2] = {
            op_doc(KITH_OP_DOC_ADD, REMINDERS, dot(ORIGIN, 10), NULL, 0),
            op_set(REMINDERS, dot(ORIGIN, 10), R_DUE, vint(KITH_TYPE_TIME, vals[k]), dot(0, 0))};
        struct kith__commit c = {V1_COMMIT,       .origin = ORIGIN,
                                 .first_seq = 10, .hlc = (uint64_t)k << 40,
                                 .nops = 2,       .ops = ops},
                            d;
        buf.len = 0;
        cr_assert_eq(kith__commit_encode(&c, &buf), 0);
        cr_assert_eq(decode(buf.data, buf.len, &d), 0, "value %lld", (long long)vals[k]);
        cr_assert_eq(d.ops[1].value.u.i, vals[k]);
        cr_assert_eq(d.hlc, c.hlc);
    }
}

/* ENC-2: every proper prefix of a commit is refused. */
Test(codec, truncation_at_every_length_refused)
{
    struct kith__commit c = big_commit(), d;
    cr_assert_eq(kith__commit_encode(&c, &buf), 0);
    for (size_t n = 0; n < buf.len; n++) {
        int rc = decode(buf.data, n, &d);
        cr_assert(rc == KITH_EMALFORMED || rc == KITH_ESCHEMA, "prefix %zu gave %d", n, rc);
    }
}

/* ENC-3: canonical: any byte string the decoder accepts re-encodes to itself. Checked on
 * every single-byte change of a valid commit. */
Test(codec, accepted_mutations_reencode_identically)
{
    struct kith__commit c = big_commit(), d;
    cr_assert_eq(kith__commit_encode(&c, &buf), 0);
    uint8_t *m = malloc(buf.len);
    cr_assert_not_null(m);
    size_t accepted = 0;
    for (size_t i = 0; i < buf.len; i++) {
        for (unsigned delta = 1; delta < 256; delta += 17) {
            memcpy(m, buf.data, buf.len);
            m[i] = (uint8_t)(m[i] + delta);
            if (decode(m, buf.len, &d) != 0)
                continue;
            accepted++;
            buf2.len = 0;
            cr_assert_eq(kith__commit_encode(&d, &buf2), 0, "byte %zu +%u", i, delta);
            cr_assert(buf2.len == buf.len && memcmp(buf2.data, m, buf.len) == 0,
                      "byte %zu +%u accepted but not canonical", i, delta);
        }
    }
    cr_assert_gt(accepted, 0); /* some changes (in string bytes, hlc) are valid commits */
    free(m);
}

/* ---- hand-made byte strings ---------------------------------------------------------------
 * A tiny writer: canonical pieces through msgpack-c, non-canonical ones as raw bytes.
 */
static msgpack_packer pk;

static void
w_begin(void)
{
    buf.len = 0;
    msgpack_packer_init(&pk, &buf, kith__wbuf_write);
}

static void
w_raw(const char *hex)
{
    for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
        unsigned v;
        cr_assert_eq(sscanf(hex + i, "%2x", &v), 1);
        uint8_t b = (uint8_t)v;
        kith__wbuf_put(&buf, &b, 1);
    }
}

static void
w_u(uint64_t v)
{
    msgpack_pack_uint64(&pk, v);
}

static void
w_arr(size_t n)
{
    msgpack_pack_array(&pk, n);
}

static void
w_str(const char *s)
{
    msgpack_pack_str(&pk, strlen(s));
    msgpack_pack_str_body(&pk, s, strlen(s));
}

/* Head of a commit with `norigins` origin ids and `nops` ops, hlc 5. */
static void
w_head(size_t norigins, const uint64_t *origins, size_t nops)
{
    w_begin();
    w_arr(3);
    w_u(5);
    w_arr(norigins);
    for (size_t i = 0; i < norigins; i++)
        w_u(origins[i]);
    w_arr(nops);
}

/* [2, 0, 0, 10]: create contact at seq 10 */
static void
w_create(void)
{
    w_arr(4);
    w_u(2);
    w_u(0);
    w_u(0);
    w_u(10);
}

static int
decode_buf(void)
{
    struct kith__commit d;
    return decode(buf.data, buf.len, &d);
}

Test(codec, hand_made_valid_commit_accepted)
{
    w_head(0, NULL, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(0), w_u(10), w_u(C_NAME), w_str("Ann"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), 0);
}

/* ENC-4: integers, strings and arrays only in their shortest form. */
Test(codec, non_shortest_forms_refused)
{
    /* hlc 5 as uint8 */
    w_begin();
    w_arr(3), w_raw("cc05"), w_arr(0), w_arr(1), w_create();
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* hlc 200 as uint16 */
    w_begin();
    w_arr(3), w_raw("cd00c8"), w_arr(0), w_arr(1), w_create();
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* hlc as uint64 holding a 32-bit value */
    w_begin();
    w_arr(3), w_raw("cf00000000ffffffff"), w_arr(0), w_arr(1), w_create();
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* ops array as array16 of 1 */
    w_begin();
    w_arr(3), w_u(5), w_arr(0), w_raw("dc0001"), w_create();
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* the whole commit as array32 */
    w_begin();
    w_raw("dd00000003"), w_u(5), w_arr(0), w_arr(1), w_create();
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* a 3-byte name as str8 */
    w_head(0, NULL, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(0), w_u(10), w_u(C_NAME), w_raw("d903416e6e"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* a time of -5 as int8, and of 5 as int8 */
    w_head(0, NULL, 2);
    w_arr(4), w_u(2), w_u(REMINDERS), w_u(0), w_u(10);
    w_arr(8), w_u(1), w_u(REMINDERS), w_u(0), w_u(10), w_u(R_DUE), w_raw("d0fb"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    w_head(0, NULL, 2);
    w_arr(4), w_u(2), w_u(REMINDERS), w_u(0), w_u(10);
    w_arr(8), w_u(1), w_u(REMINDERS), w_u(0), w_u(10), w_u(R_DUE), w_raw("d005"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* the same with the shortest forms is fine */
    w_head(0, NULL, 2);
    w_arr(4), w_u(2), w_u(REMINDERS), w_u(0), w_u(10);
    w_arr(8), w_u(1), w_u(REMINDERS), w_u(0), w_u(10), w_u(R_DUE), w_raw("fb"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), 0);
}

/* ENC-5: types kith never writes are refused: maps, floats, ext, bin for a string. */
Test(codec, foreign_types_refused)
{
    w_begin();
    w_arr(3), w_raw("cb0000000000000000"), w_arr(0), w_arr(1), w_create();
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    w_begin();
    w_arr(3), w_u(5), w_raw("80"), w_arr(1), w_create();
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    w_begin();
    w_arr(3), w_u(5), w_arr(0), w_arr(1), w_arr(5), w_u(2), w_u(0), w_u(0), w_u(10),
        w_raw("d40100");
    cr_assert_neq(decode_buf(), 0);
    w_head(0, NULL, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(0), w_u(10), w_u(C_NAME), w_raw("c403416e6e"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_ESCHEMA);
    /* nil hlc */
    w_begin();
    w_arr(3), w_raw("c0"), w_arr(0), w_arr(1), w_create();
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* trailing byte */
    w_head(0, NULL, 1);
    w_create();
    w_raw("00");
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* a string where a set element's str is expected to be, as an int */
    w_head(0, NULL, 2);
    w_create();
    w_arr(6), w_u(4), w_u(0), w_u(0), w_u(10), w_u(C_TAGS), w_u(7);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
}

/* ENC-6: the origin table: no own origin, no duplicates, none unused, in order of first use. */
Test(codec, origin_table_rules)
{
    uint64_t two[2] = {OTHER_A, OTHER_B};
    /* valid: A first used, then B */
    w_head(2, two, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(1), w_u(3), w_u(C_NAME), w_str("x"), w_u(2), w_u(1);
    cr_assert_eq(decode_buf(), 0);
    /* B used before A */
    w_head(2, two, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(2), w_u(3), w_u(C_NAME), w_str("x"), w_u(1), w_u(1);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* B never used */
    w_head(2, two, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(1), w_u(3), w_u(C_NAME), w_str("x"), w_u(1), w_u(1);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* duplicate A */
    uint64_t dup[2] = {OTHER_A, OTHER_A};
    w_head(2, dup, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(1), w_u(3), w_u(C_NAME), w_str("x"), w_u(2), w_u(1);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* own origin in the table */
    uint64_t own[1] = {ORIGIN};
    w_head(1, own, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(1), w_u(3), w_u(C_NAME), w_str("x"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* index beyond the table */
    w_head(1, two, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(2), w_u(3), w_u(C_NAME), w_str("x"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* (k, 0) is not a dot */
    w_head(1, two, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(0), w_u(10), w_u(C_NAME), w_str("x"), w_u(1), w_u(0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
}

/* ENC-7: observed dots sorted by (origin, seq), unique; dots valid. */
Test(codec, observed_and_dot_rules)
{
    uint64_t two[2] = {OTHER_A, OTHER_B}; /* OTHER_B < ORIGIN < OTHER_A */
    /* doc (A,5), observed (B,1) (A,1) (A,2): sorted by origin id, first use A then B */
    w_head(2, two, 2);
    w_create();
    w_arr(10), w_u(3), w_u(0), w_u(1), w_u(5), w_u(2), w_u(1), w_u(1), w_u(1), w_u(1), w_u(2);
    cr_assert_eq(decode_buf(), 0);
    /* unsorted: (A,2) (A,1) */
    w_head(1, two, 2);
    w_create();
    w_arr(8), w_u(3), w_u(0), w_u(1), w_u(5), w_u(1), w_u(2), w_u(1), w_u(1);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* duplicate: (A,2) (A,2) */
    w_head(1, two, 2);
    w_create();
    w_arr(8), w_u(3), w_u(0), w_u(1), w_u(5), w_u(1), w_u(2), w_u(1), w_u(2);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* unsorted across origins: (A,1) then own (ORIGIN,1) */
    w_head(1, two, 2);
    w_create();
    w_arr(8), w_u(3), w_u(0), w_u(1), w_u(5), w_u(1), w_u(1), w_u(0), w_u(1);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* odd trailing element */
    w_head(1, two, 2);
    w_create();
    w_arr(7), w_u(3), w_u(0), w_u(1), w_u(5), w_u(1), w_u(1), w_u(0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* doc_seq 0 */
    w_head(0, NULL, 2);
    w_create();
    w_arr(4), w_u(3), w_u(0), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* own dot from the future: remove of doc (own, 12) at seq 11 */
    w_head(0, NULL, 2);
    w_create();
    w_arr(4), w_u(3), w_u(0), w_u(0), w_u(12);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* a new document that observed dots */
    w_head(1, two, 1);
    w_arr(6), w_u(2), w_u(0), w_u(0), w_u(10), w_u(1), w_u(1);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* DOC_ADD naming its own seq under another origin is an existing document: fine */
    w_head(1, two, 1);
    w_arr(6), w_u(2), w_u(0), w_u(1), w_u(10), w_u(1), w_u(1);
    cr_assert_eq(decode_buf(), 0);
    /* FIELD_SET with a replaced dot from the future */
    w_head(0, NULL, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(0), w_u(10), w_u(C_NAME), w_str("x"), w_u(0), w_u(11);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
}

/* ENC-8: kinds, collections and fields checked against the schema; values too. */
Test(codec, schema_rules)
{
    w_head(0, NULL, 1);
    w_arr(4), w_u(0), w_u(0), w_u(0), w_u(10);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    w_head(0, NULL, 1);
    w_arr(4), w_u(6), w_u(0), w_u(0), w_u(10);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    w_head(0, NULL, 1);
    w_arr(4), w_u(2), w_u(9), w_u(0), w_u(10);
    cr_assert_eq(decode_buf(), KITH_ESCHEMA);
    w_head(0, NULL, 1);
    w_arr(4), w_u(2), w_u(300), w_u(0), w_u(10);
    cr_assert_eq(decode_buf(), KITH_ESCHEMA);
    /* field 0 and field 99 */
    w_head(0, NULL, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(0), w_u(10), w_u(0), w_str("x"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_ESCHEMA);
    w_head(0, NULL, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(0), w_u(10), w_u(99), w_str("x"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_ESCHEMA);
    /* FIELD_SET on a set field; SET_ADD on a string field */
    w_head(0, NULL, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(0), w_u(10), w_u(C_TAGS), w_str("x"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_ESCHEMA);
    w_head(0, NULL, 2);
    w_create();
    w_arr(6), w_u(4), w_u(0), w_u(0), w_u(10), w_u(C_NAME), w_str("x");
    cr_assert_eq(decode_buf(), KITH_ESCHEMA);
    /* required field cleared; int where a string belongs; invalid UTF-8; bad date; bad enum */
    w_head(0, NULL, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(0), w_u(10), w_u(C_NAME), w_raw("c0"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_ESCHEMA);
    w_head(0, NULL, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(0), w_u(10), w_u(C_NAME), w_u(3), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_ESCHEMA);
    w_head(0, NULL, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(0), w_u(10), w_u(C_NAME), w_raw("a2c328"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_ESCHEMA);
    w_head(0, NULL, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(0), w_u(10), w_u(C_BIRTHDAY), w_str("1990-02-30"), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_ESCHEMA);
    w_head(0, NULL, 2);
    w_arr(4), w_u(2), w_u(INTERACTIONS), w_u(0), w_u(10);
    w_arr(8), w_u(1), w_u(INTERACTIONS), w_u(0), w_u(10), w_u(I_KIND), w_str("party"), w_u(0),
        w_u(0);
    cr_assert_eq(decode_buf(), KITH_ESCHEMA);
    /* a reference that is not a 2-array */
    w_head(0, NULL, 2);
    w_arr(4), w_u(2), w_u(INTERACTIONS), w_u(0), w_u(10);
    w_arr(8), w_u(1), w_u(INTERACTIONS), w_u(0), w_u(10), w_u(I_CONTACT), w_u(3), w_u(0), w_u(0);
    cr_assert_eq(decode_buf(), KITH_ESCHEMA);
    /* the why buffer names the field */
    char why[128] = "";
    struct kith__commit d;
    w_head(0, NULL, 2);
    w_create();
    w_arr(8), w_u(1), w_u(0), w_u(0), w_u(10), w_u(C_NAME), w_raw("a2c328"), w_u(0), w_u(0);
    cr_assert_eq(kith__commit_decode(buf.data, buf.len, ORIGIN, 10, &d, &arena, why, sizeof why),
                 KITH_ESCHEMA);
    cr_assert(strstr(why, "name") != NULL, "why: %s", why);
}

/* ENC-9: the guard: a 5-byte header claiming 2^24 elements is refused before any
 * allocation; nesting and object counts are bounded. */
Test(codec, guard_refuses_huge_headers_and_depth)
{
    static const uint8_t huge[] = {0xdd, 0x01, 0x00, 0x00, 0x00};
    static const uint8_t huge_str[] = {0x93, 0x05, 0x90, 0x91, 0xdb, 0x7f, 0xff, 0xff, 0xff};
    struct kith__commit d;
    cr_assert_eq(decode(huge, sizeof huge, &d), KITH_EMALFORMED);
    cr_assert_eq(decode(huge_str, sizeof huge_str, &d), KITH_EMALFORMED);
    cr_assert_eq(arena.cap, 0); /* nothing was taken from the arena either */
    /* 5 levels of arrays */
    w_begin();
    w_arr(3), w_u(5), w_arr(0), w_arr(1), w_arr(4), w_u(2), w_u(0), w_arr(1), w_arr(1), w_u(1),
        w_u(10);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* an array of 70000 zeros in place of the ops: well-formed msgpack, refused by the ops
     * limit (KITH__MAX_COMMIT_OPS) without trouble */
    w_begin();
    w_arr(3), w_u(5), w_arr(0), w_arr(70000);
    for (int i = 0; i < 70000; i++)
        w_u(0);
    cr_assert_eq(decode_buf(), KITH_ETOOBIG);
    /* the guard on its own */
    size_t nobj = 0;
    cr_assert_eq(kith__mp_guard(huge, sizeof huge, 4, 100, &nobj), KITH_EMALFORMED);
    w_begin();
    w_arr(3), w_u(1), w_u(2), w_u(3);
    cr_assert_eq(kith__mp_guard(buf.data, buf.len, 1, 100, &nobj), 0);
    cr_assert_eq(nobj, 4);
    cr_assert_eq(kith__mp_guard(buf.data, buf.len, 1, 3, &nobj), KITH_ETOOBIG);
    cr_assert_eq(kith__mp_guard(buf.data, buf.len, 0, 100, &nobj), KITH_EMALFORMED);
}

/* A random msgpack tree of the kinds kith writes (every width of ints, strs, bins, nil,
 * bools, arrays up to 20 long, so fixarray and array 16 both occur), at most 7 deep. */
static void
w_tree(struct test_rng *r, unsigned depth)
{
    static const uint64_t widths[] = {5, 200, 60000, 70000, 5000000000ull};
    static const int64_t negs[] = {-3, -100, -1000, -100000, -5000000000ll};
    static const char blob[40] = "0123456789012345678901234567890123456789";
    switch (depth >= 7 ? test_rng_below(r, 5) : test_rng_below(r, 7)) {
    case 0:
        w_u(widths[test_rng_below(r, 5)]);
        break;
    case 1:
        msgpack_pack_int64(&pk, negs[test_rng_below(r, 5)]);
        break;
    case 2: {
        size_t n = (size_t)test_rng_below(r, sizeof blob);
        msgpack_pack_str(&pk, n), msgpack_pack_str_body(&pk, blob, n);
        break;
    }
    case 3: {
        size_t n = (size_t)test_rng_below(r, sizeof blob);
        msgpack_pack_bin(&pk, n), msgpack_pack_bin_body(&pk, blob, n);
        break;
    }
    case 4:
        test_rng_chance(r, 1, 2) ? msgpack_pack_nil(&pk) : msgpack_pack_true(&pk);
        break;
    default: {
        size_t n = (size_t)test_rng_below(r, depth < 2 ? 21 : 5);
        w_arr(n);
        for (size_t i = 0; i < n; i++)
            w_tree(r, depth + 1);
        break;
    }
    }
}

/* The guard's answer worked out the slow way: a recursive walk with kith__mp_head. Returns
 * false if the bytes are not one complete object; else the object count and array depth. */
static bool
walk(const uint8_t *p, size_t len, size_t *off, unsigned depth, size_t *count, unsigned *maxd)
{
    struct kith__mp_head h;
    if (*off > len || kith__mp_head(p + *off, len - *off, &h) != 0)
        return false;
    *off += h.size;
    (*count)++;
    if (h.type == KITH__MP_STR || h.type == KITH__MP_BIN) {
        if (h.v > len - *off)
            return false;
        *off += (size_t)h.v;
    } else if (h.type == KITH__MP_ARRAY) {
        if (depth + 1 > *maxd)
            *maxd = depth + 1;
        for (uint64_t i = 0; i < h.v; i++)
            if (!walk(p, len, off, depth + 1, count, maxd))
                return false;
    }
    return true;
}

/* ENC-9: the guard's one-pass walk (depth tracked at array headers only, objects counted from
 * array counts) agrees with a recursive walk on generated trees: accepted exactly when deep
 * and small enough, with the same object count; every prefix and a trailing byte refused. */
Test(codec, guard_agrees_with_a_recursive_walk)
{
    uint64_t seed = kith_test_seed(20261125);
    unsigned cases = kith_test_cases(400);
    for (unsigned k = 0; k < cases; k++) {
        struct test_rng r;
        test_rng_init(&r, seed, k);
        w_begin();
        w_tree(&r, 0);
        size_t off = 0, count = 0, nobj = 0;
        unsigned maxd = 0;
        cr_assert(walk(buf.data, buf.len, &off, 0, &count, &maxd) && off == buf.len);
        unsigned max_depth = (unsigned)test_rng_below(&r, 9);
        size_t max_objects = count - 2 + (size_t)test_rng_below(&r, 4);
        int rc = kith__mp_guard(buf.data, buf.len, max_depth, max_objects, &nobj);
        bool deep = maxd > max_depth, big = count > max_objects, ok;
        if (!deep && !big)
            ok = rc == 0 && nobj == count;
        else if (deep != big)
            ok = rc == (deep ? KITH_EMALFORMED : KITH_ETOOBIG);
        else
            ok = rc == KITH_EMALFORMED || rc == KITH_ETOOBIG;
        cr_assert(ok, "KITH_SEED=%llu case %u: depth %u/%u, objects %zu/%zu, rc %d, nobj %zu",
                  (unsigned long long)seed, k, maxd, max_depth, count, max_objects, rc, nobj);
        for (size_t n = 0; n < buf.len; n++) {
            rc = kith__mp_guard(buf.data, n, 8, count + 1, &nobj);
            cr_assert_eq(rc, KITH_EMALFORMED, "KITH_SEED=%llu case %u: prefix %zu gave %d",
                         (unsigned long long)seed, k, n, rc);
        }
        kith__wbuf_put(&buf, "", 1);
        cr_assert_eq(kith__mp_guard(buf.data, buf.len, 8, count + 1, &nobj), KITH_EMALFORMED);
    }
}

/* ENC-4: the guard's inline paths for uint forms take the shortest form only: at each width,
 * the smallest value that needs it passes and the largest that does not is refused. */
Test(codec, guard_uint_forms_at_their_boundaries)
{
    static const struct {
        const char *hex;
        int rc;
    } cases[] = {
        {"cc7f", KITH_EMALFORMED},
        {"cc80", 0},
        {"ccff", 0},
        {"cd00ff", KITH_EMALFORMED},
        {"cd0100", 0},
        {"ce0000ffff", KITH_EMALFORMED},
        {"ce00010000", 0},
        {"cf00000000ffffffff", KITH_EMALFORMED},
        {"cf0000000100000000", 0},
        {"cfffffffffffffffff", 0},
        {"cd01", KITH_EMALFORMED}, /* cut short */
        {"ce000100", KITH_EMALFORMED},
        {"cf00000001000000", KITH_EMALFORMED},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t nobj = 0;
        w_begin();
        w_raw(cases[i].hex);
        cr_assert_eq(kith__mp_guard(buf.data, buf.len, 4, 10, &nobj), cases[i].rc, "%s",
                     cases[i].hex);
        /* the same inside an array, followed by another element */
        w_begin();
        w_arr(2), w_raw(cases[i].hex), w_u(1);
        cr_assert_eq(kith__mp_guard(buf.data, buf.len, 4, 10, &nobj), cases[i].rc, "[%s, 1]",
                     cases[i].hex);
    }
}

/* The decoder's msgpack zone stays with the arena: a stream of small commits reuses it (no
 * allocation per commit), a larger commit grows it, and both decode correctly after. */
Test(codec, zone_kept_by_the_arena)
{
    struct kith__commit c = big_commit(), d;
    cr_assert_eq(kith__commit_encode(&c, &buf), 0);
    cr_assert_null(arena.zone);
    cr_assert_eq(decode(buf.data, buf.len, &d), 0);
    struct msgpack_zone *z = arena.zone;
    cr_assert_not_null(z);
    for (int i = 0; i < 100; i++) {
        cr_assert_eq(decode(buf.data, buf.len, &d), 0);
        cr_assert_eq(d.nops, c.nops);
        cr_assert_eq(arena.zone, z, "the zone was replaced for a commit it had room for");
    }
    /* 600 ops: more than the first zone holds */
    static struct kith__op many[600];
    many[0] = op_doc(KITH_OP_DOC_ADD, CONTACTS, dot(ORIGIN, 10), NULL, 0);
    for (uint32_t i = 1; i < 600; i++)
        many[i] = op_set(CONTACTS, dot(ORIGIN, 10), C_NAME, vstr(KITH_TYPE_STRING, "Ann"),
                         i > 1 ? dot(ORIGIN, 9 + i) : dot(0, 0));
    struct kith__commit m = {V1_COMMIT, .origin = ORIGIN, .first_seq = 10,
                             .hlc = 1,  .nops = 600,      .ops = many};
    buf2.len = 0;
    cr_assert_eq(kith__commit_encode(&m, &buf2), 0);
    cr_assert_eq(decode(buf2.data, buf2.len, &d), 0);
    cr_assert_eq(d.nops, 600);
    for (uint32_t i = 0; i < 600; i++)
        assert_op_eq(&d.ops[i], &many[i], i);
    cr_assert_geq(arena.zone->chunk_size, 600 * 9 * sizeof(msgpack_object));
    z = arena.zone;
    cr_assert_eq(decode(buf.data, buf.len, &d), 0);
    cr_assert_eq(d.nops, c.nops);
    cr_assert_eq(arena.zone, z);
    kith__arena_free(&arena);
    cr_assert_null(arena.zone);
}

Test(codec, limits)
{
    /* more than KITH__MAX_OBSERVED observed dots */
    size_t n = KITH__MAX_OBSERVED + 1;
    w_head(0, NULL, 2);
    w_create();
    w_arr(4 + 2 * n), w_u(3), w_u(0), w_u(0), w_u(10);
    for (size_t i = 0; i < n; i++)
        w_u(0), w_u(1 + i);
    /* (own dots 1..4097 at seq 11 are also from the future, but the limit comes first) */
    cr_assert_eq(decode_buf(), KITH_ETOOBIG);
    /* too many ops to encode */
    struct kith__op one = op_doc(KITH_OP_DOC_ADD, CONTACTS, dot(ORIGIN, 1), NULL, 0);
    struct kith__commit c = {V1_COMMIT, .origin = ORIGIN, .first_seq = 1,
                             .nops = KITH__MAX_COMMIT_OPS + 1, .ops = &one};
    cr_assert_eq(kith__commit_encode(&c, &buf), KITH_EINVAL);
    /* first_seq whose ops would overflow the seq space */
    w_head(0, NULL, 1);
    w_arr(4), w_u(3), w_u(0), w_u(0), w_u(1);
    struct kith__commit d;
    cr_assert_eq(kith__commit_decode(buf.data, buf.len, ORIGIN, 0, &d, &arena, NULL, 0),
                 KITH_EMALFORMED);
    cr_assert_eq(kith__commit_decode(buf.data, buf.len, ORIGIN, 5, &d, &arena, NULL, 0), 0);
}

/* The encoder refuses what the decoder would refuse, and leaves the buffer as it was. */
Test(codec, encoder_refuses_bad_ops)
{
    const kith_dot unsorted[] = {{OTHER_A, 2}, {OTHER_A, 1}};
    struct kith__op cases[][2] = {
        {op_doc(KITH_OP_DOC_ADD, CONTACTS, dot(ORIGIN, 10), NULL, 0),
         op_doc(KITH_OP_DOC_REMOVE, CONTACTS, dot(ORIGIN, 10), unsorted, 2)},
        {op_doc(KITH_OP_DOC_ADD, CONTACTS, dot(ORIGIN, 10), NULL, 0),
         op_set(CONTACTS, dot(ORIGIN, 10), C_NAME, vint(KITH_TYPE_INT, 3), dot(0, 0))},
        {op_doc(KITH_OP_DOC_ADD, CONTACTS, dot(ORIGIN, 10), NULL, 0),
         op_set(CONTACTS, dot(ORIGIN, 10), C_TAGS, vstr(KITH_TYPE_STRING, "x"), dot(0, 0))},
        {op_doc(KITH_OP_DOC_ADD, CONTACTS, dot(ORIGIN, 10), NULL, 0),
         op_set(CONTACTS, dot(ORIGIN, 10), C_NAME, vstr(KITH_TYPE_STRING, "x"), dot(OTHER_A, 0))},
        {op_doc(KITH_OP_DOC_ADD, CONTACTS, dot(ORIGIN, 10), NULL, 0),
         op_doc(7, CONTACTS, dot(ORIGIN, 10), NULL, 0)},
        {op_doc(KITH_OP_DOC_ADD, CONTACTS, dot(ORIGIN, 10), NULL, 0),
         op_doc(KITH_OP_DOC_ADD, 5, dot(ORIGIN, 10), NULL, 0)},
        {op_doc(KITH_OP_DOC_ADD, CONTACTS, dot(ORIGIN, 10), unsorted, 1),
         op_doc(KITH_OP_DOC_REMOVE, CONTACTS, dot(ORIGIN, 10), NULL, 0)},
    };
    kith__wbuf_put(&buf, "abc", 3);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct kith__commit c = {V1_COMMIT, .origin = ORIGIN, .first_seq = 10, .nops = 2,
                                 .ops = cases[k]};
        cr_assert_eq(kith__commit_encode(&c, &buf), KITH_EINVAL, "case %zu", k);
        cr_assert_eq(buf.len, 3);
    }
}

struct dep_log {
    size_t n;
    kith_dot d[16];
};

static void
dep_fn(void *ctx, uint64_t origin, uint64_t seq)
{
    struct dep_log *l = ctx;
    cr_assert_lt(l->n, 16);
    l->d[l->n++] = dot(origin, seq);
}

/* Dependencies: the highest seq per other origin among doc, replaced, reference and observed
 * dots; own origin left out (its order is the chain's). */
Test(codec, deps_highest_per_other_origin)
{
    struct kith__commit c = big_commit();
    struct dep_log l = {0};
    kith__commit_deps(&c, dep_fn, &l);
    cr_assert_eq(l.n, 2);
    cr_assert_eq(l.d[0].origin, OTHER_B); /* ascending origin */
    cr_assert_eq(l.d[0].seq, 9);          /* replaced (B,9) beats doc (B,8), obs (B,4) */
    cr_assert_eq(l.d[1].origin, OTHER_A);
    cr_assert_eq(l.d[1].seq, 12); /* observed (A,12) */
}

/* ---- known-answer vector ------------------------------------------------------------------ */

/* Read "key=value" lines of a vector file; the value of `key` into out. */
static bool
kat_get(const char *file, const char *key, char *out, size_t cap)
{
    char path[512], line[8192];
    snprintf(path, sizeof path, "%s/tests/data/%s", KITH_SOURCE_DIR, file);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    bool found = false;
    size_t klen = strlen(key);
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            snprintf(out, cap, "%s", line + klen + 1);
            out[strcspn(out, "\r\n")] = '\0';
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* The big commit's bytes are pinned: a change to the encoding breaks this test. */
Test(codec, known_answer_commit_bytes)
{
    char hex[8192], mine[8192];
    struct kith__commit c = big_commit();
    cr_assert_eq(kith__commit_encode(&c, &buf), 0);
    cr_assert(kat_get("commit-kat.txt", "commit", hex, sizeof hex));
    cr_assert_lt(buf.len * 2, sizeof mine);
    for (size_t i = 0; i < buf.len; i++)
        snprintf(mine + 2 * i, 3, "%02x", buf.data[i]);
    mine[2 * buf.len] = '\0';
    cr_assert_str_eq(mine, hex);
}

/* Generated commits: random ops round-trip and re-encode identically. */
Test(codec, generated_round_trips)
{
    uint64_t seed = kith_test_seed(20261125);
    unsigned cases = kith_test_cases(300);
    static struct kith__op ops[64];
    static kith_dot obs[64][8];
    static const char *const names[] = {"a", "Bob", "x-long-name-longer-than-32-bytes....."};
    static const uint64_t others[] = {OTHER_A, OTHER_B, 7, 0xffffffffffffffffull};
    for (unsigned k = 0; k < cases; k++) {
        struct test_rng r;
        test_rng_init(&r, seed, k);
        uint32_t n = 1 + (uint32_t)test_rng_below(&r, 64);
        uint64_t first = 1 + test_rng_below(&r, 1000);
        for (uint32_t i = 0; i < n; i++) {
            uint64_t seq = first + i;
            kith_dot doc = i > 0 && test_rng_chance(&r, 1, 2)
                               ? dot(ORIGIN, first)
                               : dot(others[test_rng_below(&r, 4)], 1 + test_rng_below(&r, 50));
            uint32_t nobs = (uint32_t)test_rng_below(&r, 5);
            for (uint32_t j = 0; j < nobs; j++)
                obs[i][j] = dot(others[test_rng_below(&r, 4)], 1 + test_rng_below(&r, 1000));
            /* sort and dedupe */
            for (uint32_t a = 1; a < nobs; a++)
                for (uint32_t b = a; b > 0 && (obs[i][b - 1].origin > obs[i][b].origin ||
                                               (obs[i][b - 1].origin == obs[i][b].origin &&
                                                obs[i][b - 1].seq > obs[i][b].seq));
                     b--) {
                    kith_dot t = obs[i][b];
                    obs[i][b] = obs[i][b - 1];
                    obs[i][b - 1] = t;
                }
            uint32_t m = 0;
            for (uint32_t j = 0; j < nobs; j++)
                if (m == 0 || obs[i][m - 1].origin != obs[i][j].origin ||
                    obs[i][m - 1].seq != obs[i][j].seq)
                    obs[i][m++] = obs[i][j];
            nobs = m;
            switch (i == 0 ? 0 : test_rng_below(&r, 5)) {
            case 0:
                ops[i] = op_doc(KITH_OP_DOC_ADD, CONTACTS, i == 0 ? dot(ORIGIN, seq) : doc,
                                i == 0 ? NULL : obs[i], i == 0 ? 0 : nobs);
                break;
            case 1:
                ops[i] = op_doc(KITH_OP_DOC_REMOVE, CONTACTS, doc, obs[i], nobs);
                break;
            case 2:
                ops[i] = op_elem(test_rng_chance(&r, 1, 2) ? KITH_OP_SET_ADD : KITH_OP_SET_REMOVE,
                                 CONTACTS, doc, C_TAGS, names[test_rng_below(&r, 2)], obs[i], nobs);
                break;
            case 3:
                ops[i] = op_set(
                    REMINDERS, doc, R_DUE, vint(KITH_TYPE_TIME, (int64_t)test_rng_u64(&r) >> 24),
                    test_rng_chance(&r, 1, 2) ? dot(0, 0)
                                              : dot(others[test_rng_below(&r, 4)], 1 + i));
                break;
            default:
                ops[i] = op_set(
                    CONTACTS, doc, C_NAME, vstr(KITH_TYPE_STRING, names[test_rng_below(&r, 3)]),
                    seq > 1 && test_rng_chance(&r, 1, 2) ? dot(ORIGIN, seq - 1) : dot(0, 0));
                break;
            }
        }
        struct kith__commit c = {V1_COMMIT,          .origin = ORIGIN,
                                 .first_seq = first, .hlc = test_rng_u64(&r),
                                 .nops = n,          .ops = ops},
                            d;
        buf.len = buf2.len = 0;
        int rc = kith__commit_encode(&c, &buf);
        cr_assert_eq(rc, 0, "KITH_SEED=%llu case %u: encode %d", (unsigned long long)seed, k, rc);
        kith__arena_reset(&arena);
        char why[128] = "";
        rc = kith__commit_decode(buf.data, buf.len, ORIGIN, first, &d, &arena, why, sizeof why);
        cr_assert_eq(rc, 0, "KITH_SEED=%llu case %u: decode %d %s", (unsigned long long)seed, k, rc,
                     why);
        for (uint32_t i = 0; i < n; i++)
            assert_op_eq(&d.ops[i], &c.ops[i], i);
        cr_assert_eq(kith__commit_encode(&d, &buf2), 0);
        cr_assert(buf.len == buf2.len && memcmp(buf.data, buf2.data, buf.len) == 0,
                  "KITH_SEED=%llu case %u: not canonical", (unsigned long long)seed, k);
    }
}
