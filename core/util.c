/*
 * util.c — the small memory tools the codec stands on: a growable output buffer (kith__wbuf),
 * a bump arena for decoded views (kith__arena) that also keeps the commit decoder's msgpack
 * zone, and the strict msgpack header reader and guard that every decoder of untrusted bytes
 * runs first.
 *
 * The arena hands out memory that stays put until the next reset: when a block fills, a
 * larger one is taken and the old one is chained behind it (its address in the new block's
 * first bytes), so earlier views stay valid; reset frees all but the newest block, which the
 * next commit reuses. The zone is kept the same way (kith__arena_zone). A steady stream of
 * commits therefore allocates nothing.
 *
 * The guard exists because msgpack-c reserves memory for an array header before any element
 * arrives (DESIGN.md "Pitfalls"): five bytes could ask for 2^32 objects. It also refuses every
 * header that is not in msgpack-c's shortest form, which is half of what makes the commit
 * encoding canonical (spec/encoding.md "Canonical msgpack").
 */
#include "core.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

int
kith__wbuf_reserve(struct kith__wbuf *b, size_t more)
{
    if (more <= b->cap - b->len)
        return 0;
    if (more > SIZE_MAX / 2 - b->len)
        return KITH_ENOMEM;
    size_t want = b->len + more;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return KITH_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int
kith__wbuf_put(struct kith__wbuf *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = kith__wbuf_reserve(b, n);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void
kith__wbuf_free(struct kith__wbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int
kith__wbuf_write(void *data, const char *buf, size_t len)
{
    return kith__wbuf_put(data, buf, len) < 0 ? -1 : 0;
}

/* ---- arena ------------------------------------------------------------------------------
 * Block layout: [address of the previous block, padded to ARENA_HDR][memory handed out].
 * a->data is the newest block, a->cap its size, a->used the bytes taken in it (header
 * included).
 */
#define ARENA_HDR 16
#define ARENA_ALIGN 16
#define ARENA_MIN 4096

static void *
arena_prev(const uint8_t *block)
{
    void *prev;
    memcpy(&prev, block, sizeof prev);
    return prev;
}

static void
arena_set_prev(uint8_t *block, void *prev)
{
    memcpy(block, &prev, sizeof prev);
}

void *
kith__arena_alloc(struct kith__arena *a, size_t n)
{
    if (n > SIZE_MAX / 4)
        return NULL;
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (!a->data || n > a->cap - a->used) {
        size_t cap = a->cap ? a->cap * 2 : ARENA_MIN;
        while (cap < n + ARENA_HDR)
            cap *= 2;
        uint8_t *block = malloc(cap);
        if (!block)
            return NULL;
        arena_set_prev(block, a->data);
        a->data = block;
        a->cap = cap;
        a->used = ARENA_HDR;
    }
    void *p = a->data + a->used;
    a->used += n;
    return p;
}

void
kith__arena_reset(struct kith__arena *a)
{
    if (!a->data)
        return;
    uint8_t *old = arena_prev(a->data);
    while (old) {
        uint8_t *prev = arena_prev(old);
        free(old);
        old = prev;
    }
    arena_set_prev(a->data, NULL);
    a->used = ARENA_HDR;
}

void
kith__arena_free(struct kith__arena *a)
{
    kith__arena_reset(a);
    free(a->data);
    a->data = NULL;
    a->used = a->cap = 0;
    if (a->zone)
        msgpack_zone_free(a->zone);
    a->zone = NULL;
}

/*
 * msgpack_zone_init mallocs its first chunk and msgpack_zone_destroy frees it: ~150 of the
 * ~2,700 instructions of decoding a one-op commit. So the zone stays with the arena:
 * msgpack_zone_clear frees every chunk but the first and empties it, and a commit needing more
 * than the first chunk holds replaces the zone with one twice as large (or as large as needed).
 * Like the arena's newest block, the zone keeps the size of the largest commit seen.
 */
struct msgpack_zone *
kith__arena_zone(struct kith__arena *a, size_t size)
{
    if (a->zone && a->zone->chunk_size >= size) {
        msgpack_zone_clear(a->zone);
        return a->zone;
    }
    size_t cap = a->zone ? a->zone->chunk_size * 2 : ARENA_MIN;
    if (cap < size)
        cap = size;
    if (a->zone)
        msgpack_zone_free(a->zone);
    a->zone = msgpack_zone_new(cap);
    return a->zone;
}

/* ---- msgpack ----------------------------------------------------------------------------
 * The guard reads every header of every commit a peer sends, so it is written for the common
 * case: one-byte forms (fixints, fixstr, fixarray, nil, bools) are told apart by a compare or
 * two on the type byte, inline in its loop; only the multi-byte forms go through the forms
 * table (head_long), shared with kith__mp_head so that both apply the same rules.
 */

/* The n = 1, 2, 4 or 8 big-endian bytes at p. */
static inline uint64_t
be_load(const uint8_t *p, unsigned n)
{
    switch (n) {
    case 1:
        return p[0];
    case 2:
        return (uint64_t)p[0] << 8 | p[1];
    case 4:
        return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
    default:
        return kith__be64_get(p);
    }
}

/*
 * The multi-byte forms from 0xc4 to 0xdd: type, bytes after the type byte, and the smallest
 * value (for NINT: magnitude - 1) the form may carry, below which a shorter form exists.
 * extra == 0 marks a form kith never writes (ext, floats).
 */
static const struct {
    uint8_t type, extra;
    uint64_t min;
} forms[0xdd - 0xc4 + 1] = {
    [0xc4 - 0xc4] = {KITH__MP_BIN, 1, 0},           [0xc5 - 0xc4] = {KITH__MP_BIN, 2, 1u << 8},
    [0xc6 - 0xc4] = {KITH__MP_BIN, 4, 1u << 16},    [0xcc - 0xc4] = {KITH__MP_UINT, 1, 1u << 7},
    [0xcd - 0xc4] = {KITH__MP_UINT, 2, 1u << 8},    [0xce - 0xc4] = {KITH__MP_UINT, 4, 1u << 16},
    [0xcf - 0xc4] = {KITH__MP_UINT, 8, 1ull << 32}, [0xd0 - 0xc4] = {KITH__MP_NINT, 1, 32},
    [0xd1 - 0xc4] = {KITH__MP_NINT, 2, 1u << 7},    [0xd2 - 0xc4] = {KITH__MP_NINT, 4, 1u << 15},
    [0xd3 - 0xc4] = {KITH__MP_NINT, 8, 1ull << 31}, [0xd9 - 0xc4] = {KITH__MP_STR, 1, 32},
    [0xda - 0xc4] = {KITH__MP_STR, 2, 1u << 8},     [0xdb - 0xc4] = {KITH__MP_STR, 4, 1u << 16},
    [0xdc - 0xc4] = {KITH__MP_ARRAY, 2, 16},        [0xdd - 0xc4] = {KITH__MP_ARRAY, 4, 1u << 16},
};

/* Read a header whose type byte p[0] is not a one-byte form (n >= 1 bytes available). */
static inline int
head_long(const uint8_t *p, size_t n, struct kith__mp_head *h)
{
    uint8_t b = p[0];
    /* maps, floats, ext and 0xc1 are refused */
    if (b < 0xc4 || b > 0xdd || forms[b - 0xc4].extra == 0)
        return KITH_EMALFORMED;
    unsigned extra = forms[b - 0xc4].extra; /* bytes of value after the type byte */
    uint64_t min = forms[b - 0xc4].min;     /* the smallest value this form may carry */
    if (n - 1 < extra)
        return KITH_EMALFORMED;
    uint64_t v = be_load(p + 1, extra);
    h->type = (enum kith__mp_type)forms[b - 0xc4].type;
    h->size = 1 + extra;
    h->v = v;
    if (h->type == KITH__MP_NINT) {
        /* Signed forms carry negative values only, below the next shorter form's range:
         * `min` is the magnitude that the form's smallest-in-magnitude value exceeds. */
        if (!(p[1] & 0x80))
            return KITH_EMALFORMED;
        if (extra < 8)
            v |= ~(uint64_t)0 << (8 * extra); /* sign-extend */
        h->v = v;
        return ~v < min ? KITH_EMALFORMED : 0; /* ~v == -(v + 1), the magnitude - 1 */
    }
    return v < min ? KITH_EMALFORMED : 0;
}

int
kith__mp_head(const uint8_t *p, size_t n, struct kith__mp_head *h)
{
    if (n == 0)
        return KITH_EMALFORMED;
    uint8_t b = p[0];
    h->size = 1;
    if (b <= 0x7f) {
        h->type = KITH__MP_UINT;
        h->v = b;
    } else if (b >= 0xe0) {
        h->type = KITH__MP_NINT;
        h->v = (uint64_t)(int64_t)(int8_t)b;
    } else if (b >= 0x90 && b <= 0x9f) {
        h->type = KITH__MP_ARRAY;
        h->v = b & 0x0fu;
    } else if (b >= 0xa0 && b <= 0xbf) {
        h->type = KITH__MP_STR;
        h->v = b & 0x1fu;
    } else if (b == 0xc0) {
        h->type = KITH__MP_NIL;
        h->v = 0;
    } else if (b == 0xc2 || b == 0xc3) {
        h->type = KITH__MP_BOOL;
        h->v = b == 0xc3;
    } else {
        return head_long(p, n, h);
    }
    return 0;
}

/*
 * One pass, no recursion. `left` counts the objects still to read (the elements announced by
 * the arrays open so far, less those read); an array opened with `left` at L is complete when
 * `left` is back at L, kept in close[] per open array. Depth only matters when an array header
 * arrives, so closed arrays are dropped from close[] then: by that time `left` is below their
 * mark (no array opened since they closed, so `left` has only gone down). The object count is
 * 1 + the sum of all array counts, so it is added up at array headers only.
 */
int
kith__mp_guard(const uint8_t *p, size_t len, unsigned max_depth, size_t max_objects,
               size_t *nobjects)
{
    size_t close[16];
    unsigned depth = 0;
    size_t off = 0, left = 1, count = 1;
    if (max_depth > sizeof close / sizeof close[0])
        return KITH_EINVAL;
    if (max_objects == 0)
        return KITH_ETOOBIG;
    while (left > 0) {
        size_t n; /* bytes of a str or bin, or elements of an array */
        if (off >= len)
            return KITH_EMALFORMED;
        uint8_t b = p[off];
        left--;
        if (b <= 0x7f || b >= 0xe0) {
            off++; /* fixint, negative fixint */
            continue;
        }
        if ((b & 0xe0) == 0xa0) {
            n = b & 0x1fu; /* fixstr */
            off++;
        } else if ((b & 0xf0) == 0x90) {
            n = b & 0x0fu; /* fixarray */
            off++;
            goto array;
        } else if (b >= 0xcc && b <= 0xcf) {
            unsigned extra = 1u << (b - 0xcc); /* uint 8, 16, 32, 64 */
            if (len - off - 1 < extra || be_load(p + off + 1, extra) < forms[b - 0xc4].min)
                return KITH_EMALFORMED;
            off += 1 + extra;
            continue;
        } else if (b == 0xc0 || b == 0xc2 || b == 0xc3) {
            off++; /* nil, false, true */
            continue;
        } else {
            struct kith__mp_head h;
            int rc = head_long(p + off, len - off, &h);
            if (rc < 0)
                return rc;
            off += h.size;
            if (h.type != KITH__MP_STR && h.type != KITH__MP_BIN && h.type != KITH__MP_ARRAY)
                continue;
            if (h.v > len - off)
                return KITH_EMALFORMED;
            n = (size_t)h.v;
            if (h.type == KITH__MP_ARRAY)
                goto array;
        }
        if (n > len - off)
            return KITH_EMALFORMED;
        off += n;
        continue;
    array:
        if (n > len - off) /* every element takes at least one byte */
            return KITH_EMALFORMED;
        while (depth > 0 && left < close[depth - 1])
            depth--;
        if (depth >= max_depth)
            return KITH_EMALFORMED;
        count += n;
        if (count > max_objects)
            return KITH_ETOOBIG;
        if (n > 0) {
            close[depth++] = left;
            left += n;
        }
    }
    if (off != len)
        return KITH_EMALFORMED; /* trailing bytes */
    *nobjects = count;
    return 0;
}
