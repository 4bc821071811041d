/*
 * dots.c — dots as bytes, the OR-set step on a dot set, and the LWW order on writes
 * (spec/data-model.md "OR-set" and "LWW"). A dot set is a sorted array of 16-byte big-endian
 * (origin, seq) pairs, the same bytes the store keeps in LMDB, so applying an op is one pass
 * over the stored value into a buffer one dot larger, with no decoding step and no allocation.
 */
#include "core.h"

#include <string.h>

void
kith__dot_put(uint8_t out[KITH__DOT_BYTES], kith_dot d)
{
    kith__be64_put(out, d.origin);
    kith__be64_put(out + 8, d.seq);
}

kith_dot
kith__dot_get(const uint8_t in[KITH__DOT_BYTES])
{
    kith_dot d = {kith__be64_get(in), kith__be64_get(in + 8)};
    return d;
}

static int
dot_cmp(kith_dot a, kith_dot b)
{
    if (a.origin != b.origin)
        return a.origin < b.origin ? -1 : 1;
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    return 0;
}

int
kith__lww_cmp(uint64_t hlc_a, kith_dot a, uint64_t hlc_b, kith_dot b)
{
    if (hlc_a != hlc_b)
        return hlc_a < hlc_b ? -1 : 1;
    return dot_cmp(a, b);
}

/* Is d among the nobs observed dots? A merge cursor when they are sorted (as decoded ops'
 * are), a scan otherwise. *cur advances past dots smaller than d. */
static bool
observed_has(const kith_dot *obs, size_t nobs, bool sorted, size_t *cur, kith_dot d)
{
    if (!sorted) {
        for (size_t i = 0; i < nobs; i++)
            if (dot_cmp(obs[i], d) == 0)
                return true;
        return false;
    }
    while (*cur < nobs && dot_cmp(obs[*cur], d) < 0)
        (*cur)++;
    return *cur < nobs && dot_cmp(obs[*cur], d) == 0;
}

/*
 * Contract: `in` holds n dots sorted by (origin, seq) without repeats; `out` has room for
 * n + 1 dots and does not overlap `in`. The result is sorted and without repeats too.
 */
size_t
kith__dots_apply(const uint8_t *in, size_t n, const kith_dot *observed, size_t nobs,
                 const kith_dot *add, uint8_t *out)
{
    bool sorted = true;
    size_t cur = 0, m = 0;
    bool added = add == NULL;
    for (size_t i = 1; i < nobs && sorted; i++)
        sorted = dot_cmp(observed[i - 1], observed[i]) < 0;
    for (size_t i = 0; i < n; i++) {
        kith_dot d = kith__dot_get(in + i * KITH__DOT_BYTES);
        if (!added && dot_cmp(*add, d) <= 0) {
            kith__dot_put(out + m++ * KITH__DOT_BYTES, *add);
            added = true;
            if (dot_cmp(*add, d) == 0)
                continue;
        }
        if (observed_has(observed, nobs, sorted, &cur, d))
            continue;
        if (add && d.origin == add->origin && d.seq < add->seq)
            continue; /* its author had seen it */
        memcpy(out + m++ * KITH__DOT_BYTES, in + i * KITH__DOT_BYTES, KITH__DOT_BYTES);
    }
    if (!added)
        kith__dot_put(out + m++ * KITH__DOT_BYTES, *add);
    return m;
}
