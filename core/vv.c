/*
 * vv.c — version vectors: origin -> highest seq applied, kept as an array sorted by origin
 * with no seq-0 entries (spec/data-model.md "Version vectors"), and their text form
 * "origin:seq,origin:seq" (16 lowercase hex digits, a colon, decimal), sorted by origin, ""
 * for the empty vector. Parsing accepts any order and repeated origins (the highest seq
 * wins) but nothing else: a sync peer or a CLI user gets KITH_EINVAL for anything malformed.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Index of the first entry whose origin is >= origin. */
static size_t
vv_find(const kith_vv *vv, uint64_t origin)
{
    size_t lo = 0, hi = vv->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (vv->entries[mid].origin < origin)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint64_t
kith__vv_get(const kith_vv *vv, uint64_t origin)
{
    size_t i = vv_find(vv, origin);
    return i < vv->len && vv->entries[i].origin == origin ? vv->entries[i].seq : 0;
}

int
kith__vv_raise(kith_vv *vv, uint64_t origin, uint64_t seq)
{
    size_t i = vv_find(vv, origin);
    if (i < vv->len && vv->entries[i].origin == origin) {
        if (vv->entries[i].seq < seq)
            vv->entries[i].seq = seq;
        return 0;
    }
    if (seq == 0)
        return 0;
    kith_dot *e = realloc(vv->entries, (vv->len + 1) * sizeof *e);
    if (!e)
        return KITH_ENOMEM;
    memmove(&e[i + 1], &e[i], (vv->len - i) * sizeof *e);
    e[i].origin = origin;
    e[i].seq = seq;
    vv->entries = e;
    vv->len++;
    return 0;
}

bool
kith__vv_dominates(const kith_vv *a, const kith_vv *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (kith__vv_get(a, b->entries[i].origin) < b->entries[i].seq)
            return false;
    return true;
}

uint64_t
kith__vv_missing(const kith_vv *a, const kith_vv *b)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < a->len; i++) {
        uint64_t have = kith__vv_get(b, a->entries[i].origin);
        if (a->entries[i].seq > have) {
            uint64_t d = a->entries[i].seq - have;
            sum = d > UINT64_MAX - sum ? UINT64_MAX : sum + d;
        }
    }
    return sum;
}

/* dst is overwritten, not released first: pass a zeroed or already released vector. */
int
kith__vv_copy(kith_vv *dst, const kith_vv *src)
{
    kith_dot *e = NULL;
    if (src->len > 0) {
        e = malloc(src->len * sizeof *e);
        if (!e)
            return KITH_ENOMEM;
        memcpy(e, src->entries, src->len * sizeof *e);
    }
    dst->entries = e;
    dst->len = src->len;
    return 0;
}

void
kith_vv_free(kith_vv *vv)
{
    if (!vv)
        return;
    free(vv->entries);
    vv->entries = NULL;
    vv->len = 0;
}

/* Parse one "origin:seq" at s (up to a ',' or the end); *end points past it. */
static int
parse_entry(const char *s, const char **end, uint64_t *origin, uint64_t *seq)
{
    uint64_t o = 0, q = 0;
    for (int i = 0; i < KITH_ID_HEX; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return KITH_EINVAL;
        o = o << 4 | (uint64_t)d;
    }
    s += KITH_ID_HEX;
    if (*s++ != ':')
        return KITH_EINVAL;
    if (*s < '0' || *s > '9')
        return KITH_EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (q > (UINT64_MAX - d) / 10)
            return KITH_EINVAL; /* does not fit 64 bits */
        q = q * 10 + d;
    }
    if (*s != ',' && *s != '\0')
        return KITH_EINVAL;
    *end = s;
    *origin = o;
    *seq = q;
    return 0;
}

int
kith_vv_parse(const char *text, kith_vv *out)
{
    kith_vv vv = {0};
    const char *s = text;
    int rc = 0;
    if (!text || !out)
        return KITH_EINVAL;
    while (*s && rc == 0) {
        uint64_t origin, seq;
        rc = parse_entry(s, &s, &origin, &seq);
        if (rc == 0)
            rc = kith__vv_raise(&vv, origin, seq);
        if (rc == 0 && *s == ',' && *++s == '\0')
            rc = KITH_EINVAL; /* trailing comma */
    }
    if (rc < 0) {
        kith_vv_free(&vv);
        return rc;
    }
    *out = vv;
    return 0;
}

int
kith_vv_format(const kith_vv *vv, char **out)
{
    /* 16 hex + ':' + up to 20 digits + ',' per entry, and the NUL */
    size_t cap, n = 0;
    char *s;
    if (!vv || !out)
        return KITH_EINVAL;
    cap = vv->len * (KITH_ID_HEX + 1 + 20 + 1) + 1;
    s = malloc(cap);
    if (!s)
        return KITH_ENOMEM;
    s[0] = '\0';
    for (size_t i = 0; i < vv->len; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s%016llx:%llu", i ? "," : "",
                              (unsigned long long)vv->entries[i].origin,
                              (unsigned long long)vv->entries[i].seq);
    *out = s;
    return 0;
}
