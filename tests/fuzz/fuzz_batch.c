/*
 * fuzz_batch.c — libFuzzer target for the batch decoder (spec/encoding.md "Batch"), and
 * through it the commit decoder on every commit a batch carries. Any input must be refused
 * or decoded without a crash, a leak or a large allocation; an accepted batch must re-encode
 * to exactly itself (one of format 1 re-encodes as format 2, carrying the same commits).
 * Seeds: tests/fuzz/corpus/batch/.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kith__arena arena, arena2, commit_arena;
    static struct kith__wbuf out;
    struct kith__batch b;

    kith__arena_reset(&arena);
    if (kith__batch_decode(data, size, &b, &arena) != 0)
        return 0;
    out.len = 0;
    if (kith__batch_encode(&b, &out) != 0) {
        /* only a batch of format 1 may carry a commit that format 2 cannot carry (a damaged
         * one of format 2's shape): the commit decoder must refuse it */
        bool refused = false;
        for (size_t i = 0; i < b.ncommits && size > 1 && data[1] == 1; i++) {
            struct kith__commit c;
            kith__arena_reset(&commit_arena);
            refused |=
                kith__commit_decode(b.commits[i].bytes, b.commits[i].len, b.commits[i].origin,
                                    b.commits[i].first_seq, &c, &commit_arena, NULL, 0) != 0;
        }
        if (!refused)
            abort();
        return 0;
    }
    if (size > 1 && data[1] == 1) {
        /* format 1 (kith 0.1's bundles) is read, and written again as format 2: that must
         * decode to the same commits, byte for byte */
        struct kith__batch again;
        kith__arena_reset(&arena2);
        if (kith__batch_decode(out.data, out.len, &again, &arena2) != 0 ||
            again.ncommits != b.ncommits || again.nheads != b.nheads)
            abort();
        for (size_t i = 0; i < b.ncommits; i++)
            if (again.commits[i].len != b.commits[i].len ||
                memcmp(again.commits[i].bytes, b.commits[i].bytes, b.commits[i].len) != 0)
                abort();
    } else if (out.len != size || memcmp(out.data, data, size) != 0) {
        abort(); /* accepted but not canonical */
    }
    for (size_t i = 0; i < b.ncommits; i++) {
        struct kith__commit c;
        kith__arena_reset(&commit_arena);
        (void)kith__commit_decode(b.commits[i].bytes, b.commits[i].len, b.commits[i].origin,
                                  b.commits[i].first_seq, &c, &commit_arena, NULL, 0);
    }
    return 0;
}
