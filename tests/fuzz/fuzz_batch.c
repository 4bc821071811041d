/*
 * fuzz_batch.c — libFuzzer target for the batch decoder (spec/encoding.md "Batch"), and
 * through it the commit decoder on every commit a batch carries. Any input must be refused
 * or decoded without a crash, a leak or a large allocation; an accepted batch must re-encode
 * to exactly itself. Seeds: tests/fuzz/corpus/batch/.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kith__arena arena, commit_arena;
    static struct kith__wbuf out;
    struct kith__batch b;

    kith__arena_reset(&arena);
    if (kith__batch_decode(data, size, &b, &arena) != 0)
        return 0;
    out.len = 0;
    if (kith__batch_encode(&b, &out) != 0 || out.len != size || memcmp(out.data, data, size) != 0)
        abort(); /* accepted but not canonical */
    for (size_t i = 0; i < b.ncommits; i++) {
        struct kith__commit c;
        kith__arena_reset(&commit_arena);
        (void)kith__commit_decode(b.commits[i].bytes, b.commits[i].len, b.commits[i].origin,
                                  b.commits[i].first_seq, &c, &commit_arena, NULL, 0);
    }
    return 0;
}
