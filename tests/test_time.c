/*
 * test_time.c — ISO 8601 parse and format (core/timefmt.c; spec/data-model.md "Times").
 * Fixed cases pin the calendar (leap days, offsets across midnight, 1970, 2038, the ends of
 * the accepted range); generated cases round-trip random instants through format and parse,
 * with and without offsets, and compare the calendar with the C library's gmtime_r as an
 * independent oracle. KITH_SEED replays, KITH_CASES scales.
 */
#include "core.h"
#include "seeded_rng.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MIN_MS (-62135596800000LL)
#define MAX_MS (253402300799999LL)

static int64_t
parse_ok(const char *text)
{
    int64_t ms = 0;
    int rc = kith__time_parse(text, &ms);
    cr_assert_eq(rc, 0, "parse \"%s\" failed: %d", text, rc);
    return ms;
}

static void
expect_format(int64_t ms, const char *want)
{
    char out[32];
    kith__time_format(ms, out);
    cr_assert_str_eq(out, want, "format %lld", (long long)ms);
}

/* TIME-1: the basic forms and their instants. */
Test(time, parses_fixed_instants)
{
    cr_assert_eq(parse_ok("2026-11-25T18:00:00Z"), 1795629600000LL);
    cr_assert_eq(parse_ok("2026-11-25T18:00:00.000Z"), 1795629600000LL);
    cr_assert_eq(parse_ok("2026-11-25T18:00Z"), 1795629600000LL);
    cr_assert_eq(parse_ok("2026-11-25t18:00:00z"), 1795629600000LL);
    cr_assert_eq(parse_ok("2026-11-25"), 1795564800000LL);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(parse_ok("1970-01-01"), 0);
    cr_assert_eq(parse_ok("1969-12-31T23:59:59.999Z"), -1);
    cr_assert_eq(parse_ok("2038-01-19T03:14:08Z"), 2147483648000LL);
    cr_assert_eq(parse_ok("9999-12-31T23:59:59.999Z"), MAX_MS);
    cr_assert_eq(parse_ok("0001-01-01T00:00:00Z"), MIN_MS);
    cr_assert_eq(parse_ok("0001-01-01"), MIN_MS);
}

/* TIME-2: fractions of 1 to 9 digits, milliseconds kept by truncation. */
Test(time, fractions)
{
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.5Z"), 500);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.25Z"), 250);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.123456789Z"), 123);
    cr_assert_eq(parse_ok("1970-01-01T00:00:00.999999999Z"), 999);
    cr_assert_eq(parse_ok("1970-01-01T00:00:01,5Z"), 1500);
    int64_t ms;
    cr_assert_eq(kith__time_parse("1970-01-01T00:00:00.1234567890Z", &ms), KITH_EINVAL);
    cr_assert_eq(kith__time_parse("1970-01-01T00:00:00.Z", &ms), KITH_EINVAL);
    cr_assert_eq(kith__time_parse("1970-01-01T00:00.5Z", &ms), KITH_EINVAL);
}

/* TIME-3: offsets, including ones that move the instant to another day, month or year. */
Test(time, offsets_cross_midnight)
{
    cr_assert_eq(parse_ok("2026-11-25T18:00:00.250+01:00"), 1795629600000LL - 3600000 + 250);
    cr_assert_eq(parse_ok("2026-11-25T19:00:00+0100"), 1795629600000LL);
    cr_assert_eq(parse_ok("2026-11-25T19:00:00+01"), 1795629600000LL);
    cr_assert_eq(parse_ok("2026-11-25T12:30:00-05:30"), 1795629600000LL);
    cr_assert_eq(parse_ok("2026-11-25T18:00:00-00:00"), 1795629600000LL);
    expect_format(parse_ok("2026-11-25T23:30:00-01:00"), "2026-11-26T00:30:00.000Z");
    expect_format(parse_ok("2026-01-01T00:30:00+01:00"), "2025-12-31T23:30:00.000Z");
    expect_format(parse_ok("2024-02-28T23:00:00-02:00"), "2024-02-29T01:00:00.000Z");
    expect_format(parse_ok("2023-03-01T00:15:00+00:30"), "2023-02-28T23:45:00.000Z");
    expect_format(parse_ok("1970-01-01T00:00:00+00:01"), "1969-12-31T23:59:00.000Z");
}

/* TIME-4: leap years of the proleptic Gregorian calendar. */
Test(time, leap_days)
{
    int64_t ms;
    cr_assert_eq(parse_ok("2024-02-29T12:00:00Z"), 1709208000000LL);
    cr_assert_eq(parse_ok("2000-02-29"), 951782400000LL);
    expect_format(parse_ok("0004-02-29"), "0004-02-29T00:00:00.000Z");
    expect_format(parse_ok("1600-02-29"), "1600-02-29T00:00:00.000Z");
    cr_assert_eq(kith__time_parse("2023-02-29", &ms), KITH_EINVAL);
    cr_assert_eq(kith__time_parse("1900-02-29", &ms), KITH_EINVAL);
    cr_assert_eq(kith__time_parse("2100-02-29T00:00:00Z", &ms), KITH_EINVAL);
    cr_assert_eq(parse_ok("2024-03-01") - parse_ok("2024-02-28"), 2 * 86400000LL);
    cr_assert_eq(parse_ok("2023-03-01") - parse_ok("2023-02-28"), 86400000LL);
}

/* TIME-5: everything else is refused, and *ms is left alone. */
Test(time, refusals)
{
    static const char *bad[] = {
        "",
        "2026",
        "2026-11",
        "2026-11-25T",
        "2026-11-25T18:00:00",
        "2026-11-25T18Z",
        "2026-11-25 18:00:00Z",
        " 2026-11-25",
        "2026-11-25 ",
        "2026-11-25T18:00:00Zjunk",
        "+2026-11-25",
        "20261125",
        "2026-1-25",
        "2026-13-01",
        "2026-00-10",
        "2026-11-00",
        "2026-11-31",
        "2026-04-31",
        "2026-11-25T24:00:00Z",
        "2026-11-25T18:60:00Z",
        "2026-11-25T18:00:60Z",
        "2026-11-25T18:00:00+24:00",
        "2026-11-25T18:00:00+01:60",
        "2026-11-25T18:00:00+1",
        "2026-11-25T18:00:00+01:0",
        "2026-11-25T18:00:00+010",
        "0000-01-01",
        "0000-12-31T23:59:59Z",
        "10000-01-01",
        "9999-12-31T23:59:59.999-00:01",
        "0001-01-01T00:00:00+00:01",
        "tomorrow",
        "2026-11-25T18:00:00UTC",
        "2026-11-25T18:00:00.000",
        "2026-11-25T18:00:00.-1Z",
        "２０２６-11-25",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 4242;
        cr_expect_eq(kith__time_parse(bad[i], &ms), KITH_EINVAL, "accepted \"%s\"", bad[i]);
        cr_expect_eq(ms, 4242, "\"%s\" changed the output", bad[i]);
    }
    int64_t ms;
    cr_assert_eq(kith__time_parse(NULL, &ms), KITH_EINVAL);
    cr_assert_eq(kith__time_parse("2026-11-25", NULL), KITH_EINVAL);
}

/* TIME-6: format, including times before 1970 and outside the four-digit years. */
Test(time, format_fixed)
{
    expect_format(0, "1970-01-01T00:00:00.000Z");
    expect_format(1795629600000LL, "2026-11-25T18:00:00.000Z");
    expect_format(-1, "1969-12-31T23:59:59.999Z");
    expect_format(-86400000LL, "1969-12-31T00:00:00.000Z");
    expect_format(-86400001LL, "1969-12-30T23:59:59.999Z");
    expect_format(2147483647999LL, "2038-01-19T03:14:07.999Z");
    expect_format(MAX_MS, "9999-12-31T23:59:59.999Z");
    expect_format(MIN_MS, "0001-01-01T00:00:00.000Z");
    expect_format(MAX_MS + 1, "+10000-01-01T00:00:00.000Z");
    expect_format(MIN_MS - 1, "0000-12-31T23:59:59.999Z");
    expect_format(MIN_MS - 367LL * 86400000, "-0001-12-31T00:00:00.000Z");
    char out[32];
    kith_time_format(1795629600123LL, out);
    cr_assert_str_eq(out, "2026-11-25T18:00:00.123Z");
    kith__time_format(INT64_MAX, out);
    cr_assert(strlen(out) < 32 && out[0] == '+', "INT64_MAX gave %s", out);
    kith__time_format(INT64_MIN, out);
    cr_assert(strlen(out) < 32 && out[0] == '-', "INT64_MIN gave %s", out);
}

/* Floor division for the oracle. */
static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* TIME-7 (generated): format then parse is the identity on the accepted range, with and
 * without an offset; the calendar agrees with gmtime_r. */
Test(time, generated_round_trips)
{
    uint64_t seed = kith_test_seed(20261125);
    unsigned cases = kith_test_cases(20000);
    for (unsigned c = 0; c < cases; c++) {
        struct test_rng rng;
        test_rng_init(&rng, seed, c);
        int64_t ms;
        switch (test_rng_below(&rng, 4)) {
        case 0: /* anywhere in the range */
            ms = MIN_MS + (int64_t)test_rng_below(&rng, (uint64_t)(MAX_MS - MIN_MS) + 1);
            break;
        case 1: /* near the epoch */
            ms = (int64_t)test_rng_below(&rng, 4000000000000ull) - 2000000000000LL;
            break;
        case 2: /* near a midnight */
            ms = (MIN_MS / 86400000 + (int64_t)test_rng_below(&rng, 3652059)) * 86400000LL +
                 (int64_t)test_rng_below(&rng, 7200000) - 3600000;
            if (ms < MIN_MS)
                ms = MIN_MS;
            if (ms > MAX_MS)
                ms = MAX_MS;
            break;
        default: /* the ends */
            ms = test_rng_chance(&rng, 1, 2) ? MIN_MS + (int64_t)test_rng_below(&rng, 1000000)
                                             : MAX_MS - (int64_t)test_rng_below(&rng, 1000000);
            break;
        }
        char text[32];
        kith__time_format(ms, text);
        int64_t back = 0;
        cr_assert_eq(kith__time_parse(text, &back), 0,
                     "KITH_SEED=%llu case %u: \"%s\" does not parse", (unsigned long long)seed, c,
                     text);
        cr_assert_eq(back, ms, "KITH_SEED=%llu case %u: %lld -> %s -> %lld",
                     (unsigned long long)seed, c, (long long)ms, text, (long long)back);

        /* the oracle */
        time_t secs = (time_t)floor_div(ms, 1000);
        struct tm tm;
        cr_assert(gmtime_r(&secs, &tm) != NULL);
        char want[96];
        snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(ms - floor_div(ms, 1000) * 1000));
        cr_assert_str_eq(text, want, "KITH_SEED=%llu case %u: %lld", (unsigned long long)seed, c,
                         (long long)ms);

        /* the same instant written with an offset */
        int64_t off_min = (int64_t)test_rng_below(&rng, 2 * 23 * 60 + 1) - 23 * 60;
        int64_t local = ms + off_min * 60000;
        if (local < MIN_MS || local > MAX_MS)
            continue;
        char ltext[32], with_off[96];
        kith__time_format(local, ltext);
        ltext[strlen(ltext) - 1] = '\0'; /* drop the Z */
        int64_t a = off_min < 0 ? -off_min : off_min;
        if (test_rng_chance(&rng, 1, 2))
            snprintf(with_off, sizeof with_off, "%s%c%02lld:%02lld", ltext, off_min < 0 ? '-' : '+',
                     (long long)(a / 60), (long long)(a % 60));
        else
            snprintf(with_off, sizeof with_off, "%s%c%02lld%02lld", ltext, off_min < 0 ? '-' : '+',
                     (long long)(a / 60), (long long)(a % 60));
        back = 0;
        cr_assert_eq(kith__time_parse(with_off, &back), 0,
                     "KITH_SEED=%llu case %u: \"%s\" does not parse", (unsigned long long)seed, c,
                     with_off);
        cr_assert_eq(back, ms, "KITH_SEED=%llu case %u: %s -> %lld, want %lld",
                     (unsigned long long)seed, c, with_off, (long long)back, (long long)ms);
    }
}

/* The public parser is the one kith_value_parse uses for times. */
Test(time, public_parse)
{
    int64_t ms = 1;
    cr_assert_eq(kith_time_parse("2026-11-25T18:00:00.250Z", &ms), 0);
    cr_assert_eq(ms, 1795629600250);
    cr_assert_eq(kith_time_parse("2026-11-25", &ms), 0);
    cr_assert_eq(ms, 1795564800000);
    cr_assert_eq(kith_time_parse("tomorrow", &ms), KITH_EINVAL);
    cr_assert_eq(kith_time_parse(NULL, &ms), KITH_EINVAL);
    cr_assert_eq(kith_time_parse("2026-11-25", NULL), KITH_EINVAL);
}
