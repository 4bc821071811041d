/*
 * test_vv.c — version vectors (spec/data-model.md "Version vectors"): get, raise, dominates,
 * missing and copy against a simple reference model on generated cases, and the text form:
 * round trips, any order and repeats taken by their maximum, junk refused (VV-1 .. VV-4).
 * KITH_SEED and KITH_CASES steer the generated cases.
 */
#include "core.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "seeded_rng.h"

#define NORIG 6
static const uint64_t origins[NORIG] = {0x0000000000000001ull, 0x00000000ffffffffull,
                                        0x3fa2c1d0e4b59a71ull, 0x7fffffffffffffffull,
                                        0x8000000000000000ull, 0xffffffffffffffffull};

/* Reference model: seq per origin index. */
struct model {
    uint64_t seq[NORIG];
};

static void
gen(struct test_rng *r, struct model *m, kith_vv *vv)
{
    memset(m, 0, sizeof *m);
    unsigned n = (unsigned)test_rng_below(r, 12);
    for (unsigned i = 0; i < n; i++) {
        unsigned k = (unsigned)test_rng_below(r, NORIG);
        uint64_t s =
            test_rng_chance(r, 1, 8) ? UINT64_MAX - test_rng_below(r, 3) : test_rng_below(r, 20);
        cr_assert_eq(kith__vv_raise(vv, origins[k], s), 0);
        if (s > m->seq[k])
            m->seq[k] = s;
    }
}

static void
check_invariants(const kith_vv *vv, uint64_t seed, unsigned c)
{
    for (size_t i = 0; i < vv->len; i++) {
        cr_assert_neq(vv->entries[i].seq, 0, "KITH_SEED=%llu case %u: seq 0 entry",
                      (unsigned long long)seed, c);
        if (i > 0)
            cr_assert_lt(vv->entries[i - 1].origin, vv->entries[i].origin,
                         "KITH_SEED=%llu case %u: unsorted", (unsigned long long)seed, c);
    }
}

/* VV-1: get/raise/dominates/missing/copy agree with the model. */
Test(vv, operations_match_model)
{
    uint64_t seed = kith_test_seed(7);
    unsigned cases = kith_test_cases(2000);
    for (unsigned c = 0; c < cases; c++) {
        struct test_rng r;
        struct model ma, mb;
        kith_vv a = {0}, b = {0}, copy = {0};
        test_rng_init(&r, seed, c);
        gen(&r, &ma, &a);
        gen(&r, &mb, &b);
        check_invariants(&a, seed, c);
        bool dom = true;
        uint64_t missing = 0;
        for (int k = 0; k < NORIG; k++) {
            cr_assert_eq(kith__vv_get(&a, origins[k]), ma.seq[k], "KITH_SEED=%llu case %u: get",
                         (unsigned long long)seed, c);
            if (ma.seq[k] < mb.seq[k])
                dom = false;
            if (ma.seq[k] > mb.seq[k]) {
                uint64_t d = ma.seq[k] - mb.seq[k];
                missing = d > UINT64_MAX - missing ? UINT64_MAX : missing + d;
            }
        }
        cr_assert_eq(kith__vv_dominates(&a, &b), dom, "KITH_SEED=%llu case %u: dominates",
                     (unsigned long long)seed, c);
        cr_assert_eq(kith__vv_missing(&a, &b), missing, "KITH_SEED=%llu case %u: missing",
                     (unsigned long long)seed, c);
        cr_assert(kith__vv_dominates(&a, &a));
        cr_assert_eq(kith__vv_missing(&a, &a), 0);
        cr_assert_eq(kith__vv_copy(&copy, &a), 0);
        cr_assert_eq(copy.len, a.len);
        cr_assert(a.len == 0 || memcmp(copy.entries, a.entries, a.len * sizeof *a.entries) == 0);
        /* text round trip */
        char *text = NULL;
        kith_vv back = {0};
        cr_assert_eq(kith_vv_format(&a, &text), 0);
        cr_assert_eq(kith_vv_parse(text, &back), 0, "KITH_SEED=%llu case %u: parse '%s'",
                     (unsigned long long)seed, c, text);
        cr_assert_eq(back.len, a.len);
        cr_assert(a.len == 0 || memcmp(back.entries, a.entries, a.len * sizeof *a.entries) == 0);
        kith_free(text);
        kith_vv_free(&back);
        kith_vv_free(&copy);
        kith_vv_free(&a);
        kith_vv_free(&b);
    }
}

/* VV-2: the text form is sorted, 16 lowercase hex digits, decimal seqs, "" when empty. */
Test(vv, format)
{
    kith_vv vv = {0};
    char *text = NULL;
    cr_assert_eq(kith_vv_format(&vv, &text), 0);
    cr_assert_str_eq(text, "");
    kith_free(text);
    cr_assert_eq(kith__vv_raise(&vv, 0x3fa2c1d0e4b59a71ull, 42), 0);
    cr_assert_eq(kith__vv_raise(&vv, 0x01, UINT64_MAX), 0);
    cr_assert_eq(kith__vv_raise(&vv, 0x02, 0), 0); /* seq 0: no entry */
    cr_assert_eq(kith_vv_format(&vv, &text), 0);
    cr_assert_str_eq(text, "0000000000000001:18446744073709551615,3fa2c1d0e4b59a71:42");
    kith_free(text);
    kith_vv_free(&vv);
    kith_vv_free(NULL);
}

/* VV-3: any order and repeated origins parse, the highest seq winning. */
Test(vv, parse_order_and_repeats)
{
    kith_vv vv = {0};
    cr_assert_eq(kith_vv_parse("3fa2c1d0e4b59a71:42,0000000000000001:7,3fa2c1d0e4b59a71:40,"
                               "0000000000000001:9,0000000000000005:0",
                               &vv),
                 0);
    cr_assert_eq(vv.len, 2);
    cr_assert_eq(vv.entries[0].origin, 1);
    cr_assert_eq(vv.entries[0].seq, 9);
    cr_assert_eq(vv.entries[1].origin, 0x3fa2c1d0e4b59a71ull);
    cr_assert_eq(vv.entries[1].seq, 42);
    kith_vv_free(&vv);
    cr_assert_eq(kith_vv_parse("", &vv), 0);
    cr_assert_eq(vv.len, 0);
}

/* VV-4: junk is refused with KITH_EINVAL and *out untouched. */
Test(vv, parse_refuses_junk)
{
    static const char *const junk[] = {
        ",",
        "0000000000000001:1,",
        ",0000000000000001:1",
        "0000000000000001:1,,0000000000000002:1",
        "000000000000001:1",
        "00000000000000001:1",
        "000000000000000g:1",
        "000000000000000A:1",
        "0000000000000001:",
        "0000000000000001",
        "0000000000000001:-1",
        "0000000000000001:+1",
        "0000000000000001: 1",
        " 0000000000000001:1",
        "0000000000000001:1 ",
        "0000000000000001:1x",
        "0000000000000001:18446744073709551616",
        "0000000000000001:99999999999999999999",
        "0000000000000001;1",
        "0x00000000000001:1",
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        kith_vv vv = {.len = 77, .entries = NULL};
        cr_assert_eq(kith_vv_parse(junk[i], &vv), KITH_EINVAL, "accepted '%s'", junk[i]);
        cr_assert_eq(vv.len, 77);
    }
    kith_vv vv;
    cr_assert_eq(kith_vv_parse(NULL, &vv), KITH_EINVAL);
}
