/*
 * fuzz_commit.c — libFuzzer target for the commit decoder (spec/encoding.md "Commit"). Any
 * input must be refused or decoded without a crash, a leak or a large allocation, and an
 * accepted input must re-encode to exactly itself (the canonical-form promise). The first
 * byte picks first_seq so that the own-dot rules are exercised; the rest is the commit.
 * Seeds: tests/fuzz/corpus/commit/.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

static void
dep(void *ctx, uint64_t origin, uint64_t seq)
{
    (void)origin;
    *(uint64_t *)ctx += seq;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kith__arena arena;
    static struct kith__wbuf out;
    struct kith__commit c;
    char why[128];
    uint64_t sum = 0;

    if (size < 1)
        return 0;
    uint64_t first_seq = data[0] == 0xff ? UINT64_MAX - 3 : data[0];
    kith__arena_reset(&arena);
    if (kith__commit_decode(data + 1, size - 1, 0x1111111111111111ull, first_seq, &c, &arena, why,
                            sizeof why) != 0)
        return 0;
    kith__commit_deps(&c, dep, &sum);
    out.len = 0;
    if (kith__commit_encode(&c, &out) != 0 || out.len != size - 1 ||
        memcmp(out.data, data + 1, size - 1) != 0)
        abort(); /* accepted but not canonical */
    return 0;
}
