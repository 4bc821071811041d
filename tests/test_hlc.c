/*
 * test_hlc.c — the hybrid logical clock (spec/data-model.md "Time"): a tick is later than
 * the last timestamp and than any observed one, follows the wall clock when it is ahead,
 * and too_far_ahead marks timestamps more than 60 s ahead (HLC-1 .. HLC-3).
 */
#include "core.h"

#include <criterion/criterion.h>

#include "seeded_rng.h"

#define T0 1764093600000ull /* 2025-11-25T18:00:00Z in ms */

/* HLC-1: ticks are strictly monotonic whatever the wall clock does. */
Test(hlc, monotonic)
{
    uint64_t seed = kith_test_seed(11);
    struct test_rng r;
    test_rng_init(&r, seed, 0);
    uint64_t h = 0, wall = T0;
    for (int i = 0; i < 100000; i++) {
        /* the wall clock jumps back and forth by up to a second */
        wall = wall + test_rng_below(&r, 2000) - 1000;
        uint64_t next = kith__hlc_tick(h, wall);
        cr_assert_gt(next, h, "KITH_SEED=%llu step %d", (unsigned long long)seed, i);
        cr_assert_geq(KITH__HLC_MS(next), wall > KITH__HLC_MS(h) ? wall : KITH__HLC_MS(h));
        h = next;
    }
}

/* HLC-2: after observing a remote timestamp, the next tick is greater than it. */
Test(hlc, causal)
{
    uint64_t seed = kith_test_seed(12);
    unsigned cases = kith_test_cases(10000);
    for (unsigned c = 0; c < cases; c++) {
        struct test_rng r;
        test_rng_init(&r, seed, c);
        uint64_t local = KITH__HLC_MAKE(T0 + test_rng_below(&r, 100000), test_rng_below(&r, 4));
        uint64_t remote = KITH__HLC_MAKE(T0 + test_rng_below(&r, 100000), test_rng_below(&r, 4));
        uint64_t wall = T0 + test_rng_below(&r, 100000);
        uint64_t seen = kith__hlc_observe(local, remote);
        cr_assert_geq(seen, local);
        cr_assert_geq(seen, remote);
        uint64_t t = kith__hlc_tick(seen, wall);
        cr_assert_gt(t, remote, "KITH_SEED=%llu case %u", (unsigned long long)seed, c);
        cr_assert_gt(t, local, "KITH_SEED=%llu case %u", (unsigned long long)seed, c);
    }
    /* same millisecond: the counter goes up */
    uint64_t a = KITH__HLC_MAKE(T0, 5);
    cr_assert_eq(kith__hlc_tick(a, T0), KITH__HLC_MAKE(T0, 6));
    /* the wall clock ahead: counter back to 0 */
    cr_assert_eq(kith__hlc_tick(a, T0 + 1), KITH__HLC_MAKE(T0 + 1, 0));
    /* saturation instead of wrapping */
    cr_assert_eq(kith__hlc_tick(UINT64_MAX, T0), UINT64_MAX);
}

/* HLC-3: too far ahead means more than KITH__HLC_MAX_AHEAD_MS in front of the wall clock. */
Test(hlc, too_far_ahead)
{
    cr_assert(!kith__hlc_too_far_ahead(KITH__HLC_MAKE(T0, 0), T0));
    cr_assert(!kith__hlc_too_far_ahead(KITH__HLC_MAKE(T0 - 100000, 0), T0));
    cr_assert(!kith__hlc_too_far_ahead(KITH__HLC_MAKE(T0 + 60000, 0xffff), T0));
    cr_assert(kith__hlc_too_far_ahead(KITH__HLC_MAKE(T0 + 60001, 0), T0));
    cr_assert(kith__hlc_too_far_ahead(UINT64_MAX, T0));
    cr_assert(!kith__hlc_too_far_ahead(0, 0));
}
