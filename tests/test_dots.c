/*
 * test_dots.c — dot sets and the LWW order (spec/data-model.md "OR-set", "LWW"):
 * kith__dots_apply against a reference model on generated sets (result sorted, unique,
 * observed dots gone, the add present, the add's origin's lower dots gone, everything else
 * kept), and the byte form of dots (DOT-1 .. DOT-3).
 */
#include "core.h"

#include <criterion/criterion.h>
#include <string.h>

#include "seeded_rng.h"

static int
cmp(kith_dot a, kith_dot b)
{
    return a.origin != b.origin ? (a.origin < b.origin ? -1 : 1)
                                : (a.seq != b.seq ? (a.seq < b.seq ? -1 : 1) : 0);
}

static bool
has(const kith_dot *s, size_t n, kith_dot d)
{
    for (size_t i = 0; i < n; i++)
        if (cmp(s[i], d) == 0)
            return true;
    return false;
}

/* Sort and dedupe a small array. */
static size_t
normalise(kith_dot *s, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && cmp(s[j - 1], s[j]) > 0; j--) {
            kith_dot t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || cmp(s[m - 1], s[i]) != 0)
            s[m++] = s[i];
    return m;
}

static kith_dot
rnd_dot(struct test_rng *r)
{
    kith_dot d = {1 + test_rng_below(r, 4), 1 + test_rng_below(r, 12)};
    if (test_rng_chance(r, 1, 10))
        d.origin = UINT64_MAX - test_rng_below(r, 2);
    return d;
}

/* DOT-1/2: dots_apply equals the model and keeps the set sorted and unique. */
Test(dots, apply_matches_model)
{
    uint64_t seed = kith_test_seed(5);
    unsigned cases = kith_test_cases(20000);
    for (unsigned c = 0; c < cases; c++) {
        struct test_rng r;
        kith_dot set[32], obs[16], add, expect[40];
        uint8_t in[32 * 16], out[33 * 16];
        test_rng_init(&r, seed, c);
        size_t n = normalise(set, 0);
        size_t want = (size_t)test_rng_below(&r, 20);
        for (size_t i = 0; i < want; i++)
            set[i] = rnd_dot(&r);
        n = normalise(set, want);
        size_t nobs = (size_t)test_rng_below(&r, 8);
        for (size_t i = 0; i < nobs; i++)
            obs[i] = test_rng_chance(&r, 2, 3) && n ? set[test_rng_below(&r, n)] : rnd_dot(&r);
        bool sorted_obs = test_rng_chance(&r, 3, 4);
        if (sorted_obs)
            nobs = normalise(obs, nobs);
        bool do_add = test_rng_chance(&r, 1, 2);
        add = rnd_dot(&r);
        add.seq += 12; /* an add is newer than what its origin had */
        if (do_add && test_rng_chance(&r, 1, 10) && n)
            add = set[test_rng_below(&r, n)]; /* re-applying an add already present */
        for (size_t i = 0; i < n; i++)
            kith__dot_put(in + 16 * i, set[i]);

        size_t m = kith__dots_apply(in, n, obs, nobs, do_add ? &add : NULL, out);

        size_t e = 0;
        for (size_t i = 0; i < n; i++) {
            if (has(obs, nobs, set[i]))
                continue;
            if (do_add && set[i].origin == add.origin && set[i].seq < add.seq)
                continue;
            expect[e++] = set[i];
        }
        if (do_add)
            expect[e++] = add;
        e = normalise(expect, e);
        cr_assert_eq(m, e, "KITH_SEED=%llu case %u: %zu dots, expected %zu",
                     (unsigned long long)seed, c, m, e);
        for (size_t i = 0; i < m; i++) {
            kith_dot d = kith__dot_get(out + 16 * i);
            cr_assert_eq(cmp(d, expect[i]), 0, "KITH_SEED=%llu case %u: dot %zu",
                         (unsigned long long)seed, c, i);
            if (i > 0)
                cr_assert_lt(memcmp(out + 16 * (i - 1), out + 16 * i, 16), 0,
                             "byte order must match dot order");
        }
        if (do_add)
            cr_assert(has(expect, e, add));
    }
}

Test(dots, apply_edges)
{
    uint8_t out[2 * 16];
    kith_dot add = {7, 3};
    /* empty set plus an add */
    cr_assert_eq(kith__dots_apply(NULL, 0, NULL, 0, &add, out), 1);
    kith_dot d = kith__dot_get(out);
    cr_assert(d.origin == 7 && d.seq == 3);
    /* removing everything */
    uint8_t in[16];
    kith__dot_put(in, add);
    cr_assert_eq(kith__dots_apply(in, 1, &add, 1, NULL, out), 0);
    /* a remove that observed nothing present */
    kith_dot other = {7, 2};
    cr_assert_eq(kith__dots_apply(in, 1, &other, 1, NULL, out), 1);
    /* a newer add of the same origin replaces the older dot */
    kith_dot newer = {7, 9};
    cr_assert_eq(kith__dots_apply(in, 1, NULL, 0, &newer, out), 1);
    d = kith__dot_get(out);
    cr_assert(d.origin == 7 && d.seq == 9);
}

/* DOT-3: the byte form is big-endian origin then seq, so bytes sort like dots. */
Test(dots, byte_form)
{
    uint8_t b[16];
    kith__dot_put(b, (kith_dot){0x0102030405060708ull, 0x1112131415161718ull});
    static const uint8_t want[16] = {1,    2,    3,    4,    5,    6,    7,    8,
                                     0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18};
    cr_assert_eq(memcmp(b, want, 16), 0);
    kith_dot d = kith__dot_get(b);
    cr_assert(d.origin == 0x0102030405060708ull && d.seq == 0x1112131415161718ull);
}

/* LWW order: hlc first, then origin, then seq. */
Test(dots, lww_order)
{
    kith_dot a = {1, 5}, b = {2, 1};
    cr_assert_lt(kith__lww_cmp(10, b, 11, a), 0);
    cr_assert_gt(kith__lww_cmp(11, a, 10, b), 0);
    cr_assert_lt(kith__lww_cmp(10, a, 10, b), 0);
    cr_assert_gt(kith__lww_cmp(10, b, 10, a), 0);
    cr_assert_lt(kith__lww_cmp(10, (kith_dot){1, 4}, 10, a), 0);
    cr_assert_eq(kith__lww_cmp(10, a, 10, a), 0);
}
