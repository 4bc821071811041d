/*
 * test_util.c — the memory tools under the codec (core/util.c): the arena keeps every block's
 * memory in place until reset and hands out 16-byte aligned memory, the output buffer grows,
 * and the msgpack header reader accepts exactly the shortest forms of spec/encoding.md
 * section 1 (checked against msgpack-c's own packer at every width boundary).
 */
#include "core.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <string.h>

Test(util, arena_keeps_earlier_memory_across_growth)
{
    struct kith__arena a = {0};
    uint8_t *ptrs[200];
    size_t sizes[200];
    for (int i = 0; i < 200; i++) {
        sizes[i] = (size_t)(i * 37 % 3000) + 1;
        ptrs[i] = kith__arena_alloc(&a, sizes[i]);
        cr_assert_not_null(ptrs[i]);
        cr_assert_eq((uintptr_t)ptrs[i] % 16, 0);
        memset(ptrs[i], i, sizes[i]);
    }
    for (int i = 0; i < 200; i++)
        for (size_t j = 0; j < sizes[i]; j++)
            cr_assert_eq(ptrs[i][j], (uint8_t)i, "block %d byte %zu overwritten", i, j);
    size_t cap = a.cap;
    kith__arena_reset(&a);
    cr_assert_eq(a.cap, cap); /* the newest block stays for reuse */
    void *p = kith__arena_alloc(&a, 100);
    cr_assert_not_null(p);
    cr_assert_eq(a.cap, cap);
    cr_assert_null(kith__arena_alloc(&a, SIZE_MAX / 2));
    kith__arena_free(&a);
    cr_assert_null(a.data);
    kith__arena_free(&a); /* twice is fine */
}

Test(util, wbuf_grows_and_writes)
{
    struct kith__wbuf b = {0};
    for (int i = 0; i < 10000; i++) {
        uint8_t x = (uint8_t)i;
        cr_assert_eq(kith__wbuf_put(&b, &x, 1), 0);
    }
    cr_assert_eq(b.len, 10000);
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(b.data[i], (uint8_t)i);
    cr_assert_eq(kith__wbuf_write(&b, "abc", 3), 0);
    cr_assert_eq(memcmp(b.data + 10000, "abc", 3), 0);
    cr_assert_eq(kith__wbuf_reserve(&b, SIZE_MAX - 10), KITH_ENOMEM);
    kith__wbuf_free(&b);
    cr_assert_null(b.data);
}

static void
check_int(int64_t v, bool negative)
{
    struct kith__wbuf b = {0};
    msgpack_packer pk;
    struct kith__mp_head h;
    msgpack_packer_init(&pk, &b, kith__wbuf_write);
    msgpack_pack_int64(&pk, v);
    cr_assert_eq(kith__mp_head(b.data, b.len, &h), 0, "packer form of %lld refused", (long long)v);
    cr_assert_eq(h.size, b.len);
    cr_assert_eq(h.type, negative ? KITH__MP_NINT : KITH__MP_UINT);
    cr_assert_eq((int64_t)h.v, v);
    if (b.len > 1)
        cr_assert_eq(kith__mp_head(b.data, b.len - 1, &h), KITH_EMALFORMED);
    kith__wbuf_free(&b);
}

/* Every width boundary of msgpack-c's integers is read back; one form wider is refused. */
Test(util, mp_head_integers)
{
    static const int64_t pos[] = {0,     127,   128,          255,          256,
                                  65535, 65536, 4294967295ll, 4294967296ll, INT64_MAX};
    static const int64_t neg[] = {-1,     -32,    -33,           -128,          -129,
                                  -32768, -32769, -2147483648ll, -2147483649ll, INT64_MIN};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        check_int(pos[i], false);
    for (size_t i = 0; i < sizeof neg / sizeof neg[0]; i++)
        check_int(neg[i], true);
    struct kith__mp_head h;
    static const uint8_t wide[][9] = {{0xcc, 0x7f},
                                      {0xcd, 0x00, 0xff},
                                      {0xce, 0x00, 0x00, 0xff, 0xff},
                                      {0xcf, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
                                      {0xd0, 0xe0},
                                      {0xd0, 0x05},
                                      {0xd1, 0xff, 0x80},
                                      {0xd2, 0xff, 0xff, 0x80, 0x00},
                                      {0xd3, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0},
                                      {0xd9, 31},
                                      {0xda, 0x00, 0xff},
                                      {0xdb, 0x00, 0x00, 0xff, 0xff},
                                      {0xc5, 0x00, 0xff},
                                      {0xc6, 0x00, 0x00, 0xff, 0xff},
                                      {0xdc, 0x00, 0x0f},
                                      {0xdd, 0x00, 0x00, 0xff, 0xff}};
    static const size_t wide_len[] = {2, 3, 5, 9, 2, 2, 3, 5, 9, 2, 3, 5, 3, 5, 3, 5};
    for (size_t i = 0; i < sizeof wide_len / sizeof wide_len[0]; i++)
        cr_assert_eq(kith__mp_head(wide[i], wide_len[i], &h), KITH_EMALFORMED, "form %zu", i);
    /* types kith never writes */
    static const uint8_t foreign[] = {0x80, 0x8f, 0xc1, 0xc7, 0xc8, 0xc9, 0xca, 0xcb,
                                      0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xde, 0xdf};
    uint8_t padded[16] = {0};
    for (size_t i = 0; i < sizeof foreign; i++) {
        padded[0] = foreign[i];
        cr_assert_eq(kith__mp_head(padded, sizeof padded, &h), KITH_EMALFORMED, "0x%02x",
                     foreign[i]);
    }
}

/* Strings, bins and arrays at their width boundaries. */
Test(util, mp_head_lengths)
{
    static const size_t lens[] = {0, 15, 16, 31, 32, 255, 256, 65535, 65536};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        struct kith__wbuf b = {0};
        msgpack_packer pk;
        struct kith__mp_head h;
        msgpack_packer_init(&pk, &b, kith__wbuf_write);
        msgpack_pack_str(&pk, lens[i]);
        size_t s1 = b.len;
        msgpack_pack_bin(&pk, lens[i]);
        size_t s2 = b.len;
        msgpack_pack_array(&pk, lens[i]);
        cr_assert_eq(kith__mp_head(b.data, b.len, &h), 0);
        cr_assert(h.type == KITH__MP_STR && h.v == lens[i] && h.size == s1);
        cr_assert_eq(kith__mp_head(b.data + s1, b.len - s1, &h), 0);
        cr_assert(h.type == KITH__MP_BIN && h.v == lens[i] && h.size == s2 - s1);
        cr_assert_eq(kith__mp_head(b.data + s2, b.len - s2, &h), 0);
        cr_assert(h.type == KITH__MP_ARRAY && h.v == lens[i] && h.size == b.len - s2);
        kith__wbuf_free(&b);
    }
}
