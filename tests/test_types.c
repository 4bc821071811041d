/*
 * test_types.c — the value-type table (core/types.c; spec/data-model.md "Field types",
 * rules TYPE-1 …). Known answers pin each form to the bytes kith has always written (the
 * LMDB register value, the index keys of store/apply.c, the export's JSON); generated values
 * then check the laws: load(store(v)) = v, cmp is a total order that agrees with the byte
 * order of index keys, parse(format(v)) = v, and the JSON form equals what jansson writes for
 * the value the way store/export.c builds it. KITH_SEED replays a run, KITH_CASES scales it.
 */
#include "schema.h"
#include "seeded_rng.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIME_MIN_MS (-62135596800000LL)
#define TIME_MAX_MS (253402300799999LL)

static const kith_type all_types[] = {KITH_TYPE_NULL, KITH_TYPE_STRING, KITH_TYPE_INT,
                                      KITH_TYPE_TIME, KITH_TYPE_BOOL,   KITH_TYPE_BYTES,
                                      KITH_TYPE_REF,  KITH_TYPE_DATE,   KITH_TYPE_ENUM};
#define NTYPES (sizeof all_types / sizeof all_types[0])

/* A generated value; string-like ones point into buf. */
struct gen {
    kith_value v;
    char buf[600];
};

static const char *const alphabet[] = {"a",
                                       "b",
                                       "z",
                                       "A",
                                       "0",
                                       " ",
                                       "\"",
                                       "\\",
                                       "/",
                                       "\n",
                                       "\t",
                                       "\x01",
                                       "\x1f",
                                       "\x7f",
                                       "\xc3\xa9",
                                       "\xe2\x82\xac",
                                       "\xf0\x9f\x98\x80",
                                       "\xe2\x80\xa8"};

/* Text of up to `most` bytes from the alphabet, valid UTF-8 without NUL. */
static size_t
gen_text(struct test_rng *r, char *out, size_t most)
{
    size_t n = 0, want = (size_t)test_rng_below(r, most + 1);
    while (n < want) {
        const char *a = alphabet[test_rng_below(r, sizeof alphabet / sizeof alphabet[0])];
        size_t k = strlen(a);
        if (n + k > want)
            break;
        memcpy(out + n, a, k);
        n += k;
    }
    return n;
}

static int64_t
gen_i64(struct test_rng *r)
{
    switch (test_rng_below(r, 4)) {
    case 0:
        return (int64_t)test_rng_below(r, 7) - 3;
    case 1:
        return (int64_t)test_rng_u64(r);
    case 2: {
        static const int64_t edges[] = {INT64_MIN,
                                        INT64_MIN + 1,
                                        -1,
                                        0,
                                        1,
                                        INT64_MAX - 1,
                                        INT64_MAX,
                                        9007199254740992LL,
                                        -9007199254740992LL,
                                        9007199254740993LL,
                                        -9007199254740993LL};
        return edges[test_rng_below(r, sizeof edges / sizeof edges[0])];
    }
    default:
        return (int64_t)test_rng_below(r, 2000001) - 1000000;
    }
}

static void
gen_value(struct test_rng *r, kith_type t, struct gen *g)
{
    memset(&g->v, 0, sizeof g->v);
    g->v.type = t;
    switch (t) {
    case KITH_TYPE_NULL:
        break;
    case KITH_TYPE_STRING:
    case KITH_TYPE_ENUM:
        g->v.u.s.ptr = g->buf;
        g->v.u.s.len = gen_text(r, g->buf, test_rng_chance(r, 1, 8) ? 500 : 12);
        break;
    case KITH_TYPE_BYTES: {
        size_t n = (size_t)test_rng_below(r, test_rng_chance(r, 1, 8) ? 500 : 6);
        for (size_t i = 0; i < n; i++)
            g->buf[i] = (char)(test_rng_chance(r, 1, 2) ? test_rng_below(r, 3) : test_rng_u64(r));
        g->v.u.s.ptr = g->buf;
        g->v.u.s.len = n;
        break;
    }
    case KITH_TYPE_DATE: {
        unsigned y = 1 + (unsigned)test_rng_below(r, 9999), m = 1 + (unsigned)test_rng_below(r, 12);
        unsigned d = 1 + (unsigned)test_rng_below(r, 28);
        if (test_rng_chance(r, 1, 4))
            snprintf(g->buf, sizeof g->buf, "--%02u-%02u", m, d);
        else
            snprintf(g->buf, sizeof g->buf, "%04u-%02u-%02u", y, m, d);
        g->v.u.s.ptr = g->buf;
        g->v.u.s.len = strlen(g->buf);
        break;
    }
    case KITH_TYPE_INT:
        g->v.u.i = gen_i64(r);
        break;
    case KITH_TYPE_TIME:
        g->v.u.i = test_rng_chance(r, 1, 2)
                       ? gen_i64(r)
                       : TIME_MIN_MS +
                             (int64_t)test_rng_below(r, (uint64_t)(TIME_MAX_MS - TIME_MIN_MS + 1));
        break;
    case KITH_TYPE_BOOL:
        g->v.u.b = test_rng_chance(r, 1, 2);
        break;
    case KITH_TYPE_REF:
        for (int i = 0; i < KITH_DOCID_BYTES; i++)
            g->v.u.ref.bytes[i] =
                (uint8_t)(test_rng_chance(r, 1, 2) ? test_rng_below(r, 2) : test_rng_u64(r));
        break;
    default:
        cr_assert_fail("no generator for type %d", t);
    }
}

/* b: often a near copy of a (same prefix, one byte changed, cut or extended). */
static void
gen_pair(struct test_rng *r, kith_type t, struct gen *a, struct gen *b)
{
    gen_value(r, t, a);
    gen_value(r, t, b);
    if (!test_rng_chance(r, 1, 2))
        return;
    switch (t) {
    case KITH_TYPE_STRING:
    case KITH_TYPE_ENUM:
    case KITH_TYPE_BYTES:
    case KITH_TYPE_DATE: {
        size_t n = a->v.u.s.len;
        memcpy(b->buf, a->buf, n);
        b->v.u.s.ptr = b->buf;
        b->v.u.s.len = n;
        switch (test_rng_below(r, 3)) {
        case 0:
            if (n > 0)
                b->v.u.s.len = (size_t)test_rng_below(r, n);
            break;
        case 1:
            if (n < sizeof b->buf - 1)
                b->buf[b->v.u.s.len++] = t == KITH_TYPE_BYTES ? 0 : 'a';
            break;
        default:
            if (n > 0)
                b->buf[test_rng_below(r, n)] ^= t == KITH_TYPE_BYTES ? 0x81 : 0x01;
            break;
        }
        break;
    }
    case KITH_TYPE_INT:
    case KITH_TYPE_TIME: {
        int64_t delta = (int64_t)test_rng_below(r, 3) - 1;
        b->v.u.i = a->v.u.i;
        if ((delta > 0 && a->v.u.i < INT64_MAX) || (delta < 0 && a->v.u.i > INT64_MIN))
            b->v.u.i += delta;
        break;
    }
    case KITH_TYPE_REF:
        b->v.u.ref = a->v.u.ref;
        b->v.u.ref.bytes[test_rng_below(r, 16)] ^= (uint8_t)(1u << test_rng_below(r, 8));
        break;
    default:
        break;
    }
}

static int
sign(int x)
{
    return (x > 0) - (x < 0);
}

/* Unsigned byte order, a prefix first: LMDB's order of keys. */
static int
key_cmp(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return sign(c);
    return (na > nb) - (na < nb);
}

static void
store(const kith_value *v, uint8_t *out, size_t cap, size_t *n)
{
    *n = kith__value_stored_size(v);
    cr_assert_leq(*n, cap);
    kith__value_store(v, out);
}

/* TYPE-1: one row per value type, named as schema documents name them. */
Test(types, table_rows_and_names)
{
    static const char *names[] = {"null",  "string", "integer", "time", "boolean",
                                  "bytes", "ref",    "date",    "enum"};
    for (size_t i = 0; i < NTYPES; i++) {
        const struct kith__type *t = kith__type_of(all_types[i]);
        cr_assert_not_null(t);
        cr_assert_eq(t->type, all_types[i]);
        cr_assert_str_eq(t->name, names[i]);
        kith_type back = KITH_TYPE_SET;
        cr_assert_eq(kith__type_by_name(names[i], &back), 0);
        cr_assert_eq(back, all_types[i]);
    }
    cr_assert_null(kith__type_of(KITH_TYPE_SET));
    cr_assert_null(kith__type_of((kith_type)42));
    cr_assert_null(kith__type_of((kith_type)-1));
    cr_assert_eq(kith__type_by_name("set", NULL), KITH_ENOTFOUND);
    cr_assert_eq(kith__type_by_name("reference", NULL), KITH_ENOTFOUND);
    cr_assert_eq(kith__type_by_name("String", NULL), KITH_ENOTFOUND);
    cr_assert_eq(kith__type_by_name(NULL, NULL), KITH_ENOTFOUND);
}

/* TYPE-2: the stored form is the register value of spec/storage.md, byte for byte. */
Test(types, stored_form_known_answers)
{
    uint8_t out[64];
    size_t n;
    kith_value v = {.type = KITH_TYPE_INT, .u.i = -2};
    store(&v, out, sizeof out, &n);
    cr_assert_eq(n, 9);
    cr_assert_eq(memcmp(out, "\x02\xff\xff\xff\xff\xff\xff\xff\xfe", 9), 0);
    v = (kith_value){.type = KITH_TYPE_TIME, .u.i = 0x0102030405060708LL};
    store(&v, out, sizeof out, &n);
    cr_assert_eq(memcmp(out, "\x03\x01\x02\x03\x04\x05\x06\x07\x08", 9), 0);
    v = (kith_value){.type = KITH_TYPE_BOOL, .u.b = true};
    store(&v, out, sizeof out, &n);
    cr_assert(n == 2 && out[0] == 4 && out[1] == 1);
    v = (kith_value){.type = KITH_TYPE_STRING, .u.s = {"Ann", 3}};
    store(&v, out, sizeof out, &n);
    cr_assert(n == 4 && memcmp(out,
                               "\x01"
                               "Ann",
                               4) == 0);
    v = (kith_value){.type = KITH_TYPE_DATE, .u.s = {"--05-17", 7}};
    store(&v, out, sizeof out, &n);
    cr_assert(n == 8 && memcmp(out, "\x07--05-17", 8) == 0);
    v = (kith_value){.type = KITH_TYPE_ENUM, .u.s = {"call", 4}};
    store(&v, out, sizeof out, &n);
    cr_assert(n == 5 && memcmp(out,
                               "\x08"
                               "call",
                               5) == 0);
    v = (kith_value){.type = KITH_TYPE_BYTES, .u.s = {"\0\1", 2}};
    store(&v, out, sizeof out, &n);
    cr_assert(n == 3 && memcmp(out, "\x05\0\1", 3) == 0);
    v = (kith_value){.type = KITH_TYPE_REF};
    for (int i = 0; i < 16; i++)
        v.u.ref.bytes[i] = (uint8_t)i;
    store(&v, out, sizeof out, &n);
    cr_assert(n == 17 && out[0] == 6 && out[16] == 15);
    v = (kith_value){.type = KITH_TYPE_NULL};
    store(&v, out, sizeof out, &n);
    cr_assert(n == 1 && out[0] == 0);
    /* a type without a row is stored as NULL, as the register layout always did */
    v = (kith_value){.type = KITH_TYPE_SET};
    store(&v, out, sizeof out, &n);
    cr_assert(n == 1 && out[0] == 0);
}

/* TYPE-2: damaged stored values are refused. */
Test(types, load_refuses_damage)
{
    kith_value v;

    static const struct {
        const char *bytes;
        size_t n;
    } bad[] = {{"", 0},
               {"\x00\x00", 2},
               {"\x02\x00", 2},
               {"\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00", 10},
               {"\x03\x00\x00\x00\x00\x00\x00\x00", 8},
               {"\x04", 1},
               {"\x04\x02", 2},
               {"\x04\x00\x00", 3},
               {"\x06\x00", 2},
               {"\x09", 1},
               {"\x0a"
                "abc",
                4},
               {"\xff", 1}};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v.type = KITH_TYPE_INT;
        cr_assert_eq(kith__value_load((const uint8_t *)bad[i].bytes, bad[i].n, &v), KITH_ECORRUPT,
                     "accepted damaged value #%zu", i);
        cr_assert_eq(v.type, KITH_TYPE_NULL);
    }
    cr_assert_eq(kith__value_load((const uint8_t *)"\x01", 1, &v), 0);
    cr_assert(v.type == KITH_TYPE_STRING && v.u.s.len == 0);
}

/* TYPE-2 (generated): load(store(v)) = v for every type; string-like loads are views. */
Test(types, store_load_round_trip)
{
    uint64_t seed = kith_test_seed(20261206);
    unsigned cases = kith_test_cases(3000);
    for (unsigned c = 0; c < cases; c++) {
        struct test_rng r;
        struct gen g;
        uint8_t buf[700];
        size_t n;
        kith_value back;
        test_rng_init(&r, seed, c);
        kith_type t = all_types[c % NTYPES];
        gen_value(&r, t, &g);
        store(&g.v, buf, sizeof buf, &n);
        cr_assert_eq(n, 1 + kith__type_of(t)->stored_size(&g.v));
        cr_assert_eq(buf[0], (uint8_t)t);
        cr_assert_eq(kith__value_load(buf, n, &back), 0, "KITH_SEED=%llu case %u",
                     (unsigned long long)seed, c);
        cr_assert_eq(back.type, t);
        cr_assert_eq(kith__value_cmp(&g.v, &back), 0, "KITH_SEED=%llu case %u type %d",
                     (unsigned long long)seed, c, t);
        if (t == KITH_TYPE_STRING || t == KITH_TYPE_BYTES || t == KITH_TYPE_DATE ||
            t == KITH_TYPE_ENUM)
            cr_assert_eq((const uint8_t *)back.u.s.ptr, buf + 1);
    }
}

/* TYPE-3: index keys are what store/apply.c has always written. */
Test(types, index_key_known_answers)
{
    uint8_t k[512];
    char big[500];
    kith_value v = {.type = KITH_TYPE_STRING, .u.s = {"Ann", 3}};
    cr_assert_eq(kith__type_of(v.type)->index_key(&v, k, sizeof k), 4);
    cr_assert_eq(memcmp(k, "Ann", 4), 0);
    memset(big, 'x', sizeof big);
    v.u.s.ptr = big;
    v.u.s.len = sizeof big;
    cr_assert_eq(kith__type_of(v.type)->index_key(&v, k, sizeof k), 401);
    cr_assert(k[399] == 'x' && k[400] == 0);
    cr_assert_eq(kith__type_of(v.type)->index_key(&v, k, 24), 24, "cut to the room given");
    cr_assert_eq(k[23], 0);
    v = (kith_value){.type = KITH_TYPE_TIME, .u.i = 0};
    cr_assert_eq(kith__type_of(v.type)->index_key(&v, k, sizeof k), 8);
    cr_assert_eq(memcmp(k, "\x80\0\0\0\0\0\0\0", 8), 0);
    v.u.i = -1;
    kith__type_of(v.type)->index_key(&v, k, sizeof k);
    cr_assert_eq(memcmp(k, "\x7f\xff\xff\xff\xff\xff\xff\xff", 8), 0);
    v = (kith_value){.type = KITH_TYPE_INT, .u.i = INT64_MIN};
    kith__type_of(v.type)->index_key(&v, k, sizeof k);
    cr_assert_eq(memcmp(k, "\0\0\0\0\0\0\0\0", 8), 0);
    v = (kith_value){.type = KITH_TYPE_REF};
    memset(v.u.ref.bytes, 0xab, 16);
    cr_assert_eq(kith__type_of(v.type)->index_key(&v, k, sizeof k), 16);
    cr_assert(k[0] == 0xab && k[15] == 0xab);
    v = (kith_value){.type = KITH_TYPE_BOOL, .u.b = true};
    cr_assert_eq(kith__type_of(v.type)->index_key(&v, k, sizeof k), 1);
    cr_assert_eq(k[0], 1);
    v = (kith_value){.type = KITH_TYPE_NULL};
    cr_assert_eq(kith__type_of(v.type)->index_key(&v, k, sizeof k), 0);
}

/* TYPE-3 (generated): cmp is a total order, and for every type the sign of cmp is the sign
 * of the byte order of the index keys (strings: when they differ within the 400-byte cut). */
Test(types, cmp_agrees_with_index_keys)
{
    uint64_t seed = kith_test_seed(20261207);
    unsigned cases = kith_test_cases(20000);
    for (unsigned c = 0; c < cases; c++) {
        struct test_rng r;
        struct gen a, b, m;
        uint8_t ka[512], kb[512], km[512];
        test_rng_init(&r, seed, c);
        kith_type t = all_types[c % NTYPES];
        const struct kith__type *row = kith__type_of(t);
        gen_pair(&r, t, &a, &b);
        gen_value(&r, t, &m);
        int ab = row->cmp(&a.v, &b.v);
        cr_assert_eq(sign(ab), -sign(row->cmp(&b.v, &a.v)),
                     "KITH_SEED=%llu case %u: not "
                     "antisymmetric",
                     (unsigned long long)seed, c);
        cr_assert_eq(row->cmp(&a.v, &a.v), 0);
        cr_assert_eq(kith__value_cmp(&a.v, &b.v), ab);
        size_t na = row->index_key(&a.v, ka, sizeof ka), nb = row->index_key(&b.v, kb, sizeof kb);
        size_t nm = row->index_key(&m.v, km, sizeof km);
        int kab = key_cmp(ka, na, kb, nb);
        bool stringy = t == KITH_TYPE_STRING || t == KITH_TYPE_BYTES || t == KITH_TYPE_ENUM ||
                       t == KITH_TYPE_DATE;
        bool cut = stringy && (a.v.u.s.len > 400 || b.v.u.s.len > 400);
        bool cut_m = stringy && (a.v.u.s.len > 400 || m.v.u.s.len > 400);
        if (!cut)
            cr_assert_eq(kab, sign(ab), "KITH_SEED=%llu case %u type %s: keys order %d, cmp %d",
                         (unsigned long long)seed, c, row->name, kab, ab);
        else if (kab != 0)
            cr_assert_eq(kab, sign(ab), "KITH_SEED=%llu case %u: cut keys disagree",
                         (unsigned long long)seed, c);
        /* transitivity through a third value */
        int am = row->cmp(&a.v, &m.v), mb = row->cmp(&m.v, &b.v);
        if (am <= 0 && mb <= 0)
            cr_assert_leq(ab, 0, "KITH_SEED=%llu case %u: not transitive", (unsigned long long)seed,
                          c);
        if (!cut_m)
            cr_assert_eq(key_cmp(ka, na, km, nm), sign(am));
    }
}

/* TYPE-3: values of different types order by type number. */
Test(types, cmp_across_types)
{
    kith_value n = {.type = KITH_TYPE_NULL}, s = {.type = KITH_TYPE_STRING, .u.s = {"z", 1}};
    kith_value i = {.type = KITH_TYPE_INT, .u.i = -5}, e = {.type = KITH_TYPE_ENUM};
    cr_assert_lt(kith__value_cmp(&n, &s), 0);
    cr_assert_lt(kith__value_cmp(&s, &i), 0);
    cr_assert_gt(kith__value_cmp(&e, &i), 0);
    cr_assert_eq(kith__value_cmp(&n, &n), 0);
}

static void
fmt(const kith_value *v, char *out, size_t cap)
{
    kith__type_of(v->type)->format(v, out, cap);
}

/* TYPE-4: the text forms, as the CLI reads and writes them. */
Test(types, text_known_answers)
{
    char out[128], why[128];
    kith_value v;
    const struct kith__type *t = kith__type_of(KITH_TYPE_TIME);
    cr_assert_eq(t->parse("2026-11-25T18:00:00.250+01:00", &v, why, sizeof why), 0);
    cr_assert_eq(v.u.i, 1795629600000LL - 3600000 + 250);
    v.type = KITH_TYPE_TIME;
    fmt(&v, out, sizeof out);
    cr_assert_str_eq(out, "2026-11-25T17:00:00.250Z");
    cr_assert_eq(t->parse("soon", &v, why, sizeof why), KITH_ESCHEMA);
    cr_assert_str_eq(why, "not a time (ISO 8601, e.g. 2026-11-25T18:00:00Z)");

    t = kith__type_of(KITH_TYPE_INT);
    cr_assert_eq(t->parse("-9223372036854775808", &v, why, sizeof why), 0);
    cr_assert_eq(v.u.i, INT64_MIN);
    static const char *bad_ints[] = {"",   " 1", "+1", "1 ", "1.0", "0x10", "9223372036854775808",
                                     "abc"};
    for (size_t i = 0; i < sizeof bad_ints / sizeof bad_ints[0]; i++) {
        cr_assert_eq(t->parse(bad_ints[i], &v, why, sizeof why), KITH_ESCHEMA, "%s", bad_ints[i]);
        cr_assert_str_eq(why, "not a decimal integer");
    }
    v = (kith_value){.type = KITH_TYPE_INT, .u.i = -42};
    fmt(&v, out, sizeof out);
    cr_assert_str_eq(out, "-42");

    t = kith__type_of(KITH_TYPE_BOOL);
    cr_assert_eq(t->parse("yes", &v, why, sizeof why), KITH_ESCHEMA);
    cr_assert_str_eq(why, "not a boolean (true or false)");
    v = (kith_value){.type = KITH_TYPE_BOOL, .u.b = true};
    fmt(&v, out, sizeof out);
    cr_assert_str_eq(out, "true");

    t = kith__type_of(KITH_TYPE_REF);
    cr_assert_eq(t->parse("000102030405060708090A0B0C0D0E0F", &v, why, sizeof why), KITH_ESCHEMA);
    cr_assert_str_eq(why, "not a document id (32 lowercase hex characters)");
    cr_assert_eq(t->parse("000102030405060708090a0b0c0d0e0f0", &v, why, sizeof why), KITH_ESCHEMA);

    t = kith__type_of(KITH_TYPE_DATE);
    cr_assert_eq(t->parse("2026-02-30", &v, why, sizeof why), KITH_ESCHEMA);
    cr_assert_str_eq(why, "2026-02-30 is not a date");
    cr_assert_eq(t->parse("17.05.1990", &v, why, sizeof why), KITH_ESCHEMA);
    cr_assert_str_eq(why, "not a date (YYYY-MM-DD or --MM-DD)");

    t = kith__type_of(KITH_TYPE_BYTES);
    cr_assert_eq(t->parse("00ff", &v, why, sizeof why), KITH_ESCHEMA);
    cr_assert_str_eq(why, "bytes cannot be given as text");
    v = (kith_value){.type = KITH_TYPE_BYTES, .u.s = {"\x00\xff\x10", 3}};
    fmt(&v, out, sizeof out);
    cr_assert_str_eq(out, "00ff10");
    fmt(&v, out, 6);
    cr_assert_str_eq(out, "00ff", "cut to whole bytes");

    v = (kith_value){.type = KITH_TYPE_NULL};
    fmt(&v, out, sizeof out);
    cr_assert_str_eq(out, "");
    cr_assert_eq(kith__type_of(KITH_TYPE_NULL)->parse("", &v, why, sizeof why), 0);
    cr_assert_eq(kith__type_of(KITH_TYPE_NULL)->parse("x", &v, why, sizeof why), KITH_ESCHEMA);

    v = (kith_value){.type = KITH_TYPE_STRING, .u.s = {"hello", 5}};
    fmt(&v, out, 4);
    cr_assert_str_eq(out, "hel", "cut to fit, NUL-terminated");
}

/* TYPE-4 (generated): parse(format(v)) = v for every type with a text form. */
Test(types, text_round_trip)
{
    uint64_t seed = kith_test_seed(20261208);
    unsigned cases = kith_test_cases(5000);
    for (unsigned c = 0; c < cases; c++) {
        struct test_rng r;
        struct gen g;
        char text[1200], why[128];
        kith_value back;
        test_rng_init(&r, seed, c);
        kith_type t = all_types[c % NTYPES];
        if (t == KITH_TYPE_BYTES)
            continue; /* no text to read back into: formatted as hex only */
        gen_value(&r, t, &g);
        if (t == KITH_TYPE_TIME && (g.v.u.i < TIME_MIN_MS || g.v.u.i > TIME_MAX_MS))
            g.v.u.i =
                TIME_MIN_MS + (int64_t)((uint64_t)g.v.u.i % (uint64_t)(TIME_MAX_MS - TIME_MIN_MS));
        const struct kith__type *row = kith__type_of(t);
        row->format(&g.v, text, sizeof text);
        memset(&back, 0, sizeof back);
        back.type = t;
        cr_assert_eq(row->parse(text, &back, why, sizeof why), 0,
                     "KITH_SEED=%llu case %u: %s refused \"%s\": %s", (unsigned long long)seed, c,
                     row->name, text, why);
        cr_assert_eq(row->cmp(&g.v, &back), 0, "KITH_SEED=%llu case %u: %s \"%s\" came back other",
                     (unsigned long long)seed, c, row->name, text);
    }
}

/* The JSON of a value the way store/export.c builds it with jansson, dumped as the export
 * dumps it; NULL where jansson refuses (text that is not UTF-8). */
static char *
jansson_form(const kith_value *v)
{
    json_t *j = NULL;
    char tbuf[40];
    switch (v->type) {
    case KITH_TYPE_NULL:
        j = json_null();
        break;
    case KITH_TYPE_STRING:
    case KITH_TYPE_DATE:
    case KITH_TYPE_ENUM:
        j = json_stringn(v->u.s.ptr ? v->u.s.ptr : "", v->u.s.len);
        break;
    case KITH_TYPE_BYTES: {
        char *h = malloc(2 * v->u.s.len + 1);
        for (size_t i = 0; i < v->u.s.len; i++)
            snprintf(h + 2 * i, 3, "%02x", (uint8_t)v->u.s.ptr[i]);
        h[2 * v->u.s.len] = '\0';
        j = json_string(h);
        free(h);
        break;
    }
    case KITH_TYPE_INT:
        if (v->u.i >= -9007199254740992LL && v->u.i <= 9007199254740992LL) {
            j = json_integer((json_int_t)v->u.i);
        } else {
            snprintf(tbuf, sizeof tbuf, "%lld", (long long)v->u.i);
            j = json_string(tbuf);
        }
        break;
    case KITH_TYPE_TIME:
        kith__time_format(v->u.i, tbuf);
        j = json_string(tbuf);
        break;
    case KITH_TYPE_BOOL:
        j = json_boolean(v->u.b);
        break;
    case KITH_TYPE_REF: {
        char h[33];
        kith_docid_format(&v->u.ref, h);
        j = json_string(h);
        break;
    }
    default:
        break;
    }
    if (!j)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    return s;
}

static void
json_matches(const kith_value *v, const char *ctx)
{
    struct kith__wbuf b = {0};
    char *want = jansson_form(v);
    int rc = kith__value_json(v, &b);
    if (!want) {
        cr_assert_eq(rc, KITH_EINVAL, "%s: jansson refuses, kith__value_json gave %d", ctx, rc);
    } else {
        cr_assert_eq(rc, 0, "%s", ctx);
        cr_assert(b.len == strlen(want) && memcmp(b.data, want, b.len) == 0,
                  "%s: got %.*s, jansson writes %s", ctx, (int)b.len, (const char *)b.data, want);
    }
    free(want);
    kith__wbuf_free(&b);
}

/* TYPE-5: the JSON forms of spec/export.md, known answers. */
Test(types, json_known_answers)
{
    struct kith__wbuf b = {0};
    kith_value v = {.type = KITH_TYPE_STRING, .u.s = {"a\"b\\c/\n\x01\x7f\xc3\xa9", 11}};
    cr_assert_eq(kith__value_json(&v, &b), 0);
    cr_assert_eq(b.len, strlen("\"a\\\"b\\\\c/\\n\\u0001\x7f\xc3\xa9\""));
    cr_assert_eq(memcmp(b.data, "\"a\\\"b\\\\c/\\n\\u0001\x7f\xc3\xa9\"", b.len), 0);
    b.len = 0;
    v = (kith_value){.type = KITH_TYPE_INT, .u.i = 9007199254740993LL};
    cr_assert_eq(kith__value_json(&v, &b), 0);
    cr_assert_eq(memcmp(b.data, "\"9007199254740993\"", b.len), 0);
    b.len = 0;
    v = (kith_value){.type = KITH_TYPE_TIME, .u.i = 1795629600000LL};
    cr_assert_eq(kith__value_json(&v, &b), 0);
    cr_assert_eq(memcmp(b.data, "\"2026-11-25T18:00:00.000Z\"", b.len), 0);
    b.len = 0;
    v = (kith_value){.type = KITH_TYPE_NULL};
    cr_assert_eq(kith__value_json(&v, &b), 0);
    cr_assert_eq(memcmp(b.data, "null", b.len), 0);
    b.len = 0;
    v = (kith_value){.type = KITH_TYPE_STRING, .u.s = {"\xff", 1}};
    cr_assert_eq(kith__value_json(&v, &b), KITH_EINVAL);
    v = (kith_value){.type = KITH_TYPE_SET};
    cr_assert_eq(kith__value_json(&v, &b), KITH_EINVAL);
    kith__wbuf_free(&b);

    /* every byte below 0x80 alone, and each escape jansson writes */
    for (int c = 0; c < 0x80; c++) {
        char s[1] = {(char)c}, ctx[32];
        v = (kith_value){.type = KITH_TYPE_STRING, .u.s = {s, 1}};
        snprintf(ctx, sizeof ctx, "byte 0x%02x", c);
        json_matches(&v, ctx);
    }
}

/* TYPE-5 (generated): the JSON form equals jansson's dump of what the export builds, for
 * every type, including strings with escapes, non-ASCII and damaged UTF-8. */
Test(types, json_matches_jansson)
{
    uint64_t seed = kith_test_seed(20261209);
    unsigned cases = kith_test_cases(5000);
    for (unsigned c = 0; c < cases; c++) {
        struct test_rng r;
        struct gen g;
        char ctx[64];
        test_rng_init(&r, seed, c);
        kith_type t = all_types[c % NTYPES];
        gen_value(&r, t, &g);
        if (t == KITH_TYPE_STRING && g.v.u.s.len > 0 && test_rng_chance(&r, 1, 4))
            g.buf[test_rng_below(&r, g.v.u.s.len)] = (char)test_rng_u64(&r); /* maybe damaged */
        snprintf(ctx, sizeof ctx, "KITH_SEED=%llu case %u", (unsigned long long)seed, c);
        json_matches(&g.v, ctx);
    }
}
