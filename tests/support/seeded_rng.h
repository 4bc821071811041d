/*
 * seeded_rng.h — the random source of generated tests: a stream of bytes from libsodium's
 * randombytes_buf_deterministic, keyed by (KITH_SEED, case number), so that any failing case
 * replays from the seed and case printed with it. KITH_SEED and KITH_CASES come from the
 * environment (kith_test_seed / kith_test_cases). Header-only so each test file stays one
 * translation unit.
 */
#ifndef KITH_SEEDED_RNG_H
#define KITH_SEEDED_RNG_H

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct test_rng {
    uint8_t seed[randombytes_SEEDBYTES];
    uint8_t buf[4096];
    size_t pos;
    uint64_t block;
};

/* KITH_SEED from the environment (decimal), else `dflt`. */
static inline uint64_t
kith_test_seed(uint64_t dflt)
{
    const char *s = getenv("KITH_SEED");
    if (!s || !*s)
        return dflt;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    return end && *end == '\0' ? (uint64_t)v : dflt;
}

/* KITH_CASES from the environment (a positive decimal), else `dflt`. */
static inline unsigned
kith_test_cases(unsigned dflt)
{
    const char *s = getenv("KITH_CASES");
    if (!s || !*s)
        return dflt;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    return end && *end == '\0' && v > 0 && v < 100000000ul ? (unsigned)v : dflt;
}

static inline void
test_rng_refill(struct test_rng *r)
{
    for (int i = 0; i < 8; i++)
        r->seed[24 + i] = (uint8_t)(r->block >> (8 * i));
    r->block++;
    randombytes_buf_deterministic(r->buf, sizeof r->buf, r->seed);
    r->pos = 0;
}

static inline void
test_rng_init(struct test_rng *r, uint64_t seed, uint64_t case_no)
{
    memset(r, 0, sizeof *r);
    memcpy(r->seed, "kith-tst", 8);
    for (int i = 0; i < 8; i++) {
        r->seed[8 + i] = (uint8_t)(seed >> (8 * i));
        r->seed[16 + i] = (uint8_t)(case_no >> (8 * i));
    }
    test_rng_refill(r);
}

static inline uint64_t
test_rng_u64(struct test_rng *r)
{
    if (r->pos + 8 > sizeof r->buf)
        test_rng_refill(r);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | r->buf[r->pos + (size_t)i];
    r->pos += 8;
    return v;
}

/* Uniform in [0, n), n > 0 (the modulo bias is irrelevant for tests). */
static inline uint64_t
test_rng_below(struct test_rng *r, uint64_t n)
{
    return test_rng_u64(r) % n;
}

/* True with probability num/den. */
static inline int
test_rng_chance(struct test_rng *r, unsigned num, unsigned den)
{
    return test_rng_below(r, den) < num;
}

#endif /* KITH_SEEDED_RNG_H */
