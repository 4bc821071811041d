/*
 * test_batch_codec.c — the batch format (spec/encoding.md "Batch"): round trip, refusal of every
 * truncation and of each structural fault, the version check, the guard, and a pinned
 * encoding (BAT-1 .. BAT-4 cite the spec).
 */
#include "core.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#define A 0x2222222222222222ull
#define B 0x0333333333333333ull

static struct kith__arena arena;
static struct kith__wbuf buf;

static void
teardown(void)
{
    kith__arena_free(&arena);
    kith__wbuf_free(&buf);
}

TestSuite(batch_codec, .fini = teardown);

/* Two small valid commits' bytes (the batch does not look inside). */
static const uint8_t c1[] = {0x93, 0x05, 0x90, 0x91, 0x94, 0x02, 0x00, 0x00, 0x01};
static const uint8_t c2[] = {0x93, 0x06, 0x90, 0x92, 0x94, 0x02, 0x00,
                             0x00, 0x02, 0x94, 0x02, 0x01, 0x00, 0x03};

static struct kith__batch_commit commits[3];
static struct kith__batch_head heads[2];

static struct kith__batch
sample(void)
{
    commits[0] = (struct kith__batch_commit){A, 1, c1, sizeof c1};
    commits[1] = (struct kith__batch_commit){B, 7, c2, sizeof c2};
    commits[2] = (struct kith__batch_commit){A, 2, c2, sizeof c2};
    heads[0] = (struct kith__batch_head){.origin = A, .seq = 3};
    heads[1] = (struct kith__batch_head){.origin = B, .seq = 8};
    memset(heads[0].sig, 0xa5, 64);
    memset(heads[1].sig, 0x5a, 64);
    struct kith__batch b = {
        .sender = A, .ncommits = 3, .commits = commits, .nheads = 2, .heads = heads};
    return b;
}

static int
decode(const uint8_t *p, size_t len, struct kith__batch *out)
{
    kith__arena_reset(&arena);
    return kith__batch_decode(p, len, out, &arena);
}

/* BAT-1: round trip, commit bytes as views into the input. */
Test(batch_codec, round_trip)
{
    struct kith__batch b = sample(), d;
    cr_assert_eq(kith__batch_encode(&b, &buf), 0);
    cr_assert_eq(decode(buf.data, buf.len, &d), 0);
    cr_assert_eq(d.sender, A);
    cr_assert_eq(d.ncommits, 3);
    cr_assert_eq(d.nheads, 2);
    for (size_t i = 0; i < 3; i++) {
        cr_assert_eq(d.commits[i].origin, b.commits[i].origin);
        cr_assert_eq(d.commits[i].first_seq, b.commits[i].first_seq);
        cr_assert_eq(d.commits[i].len, b.commits[i].len);
        cr_assert_eq(memcmp(d.commits[i].bytes, b.commits[i].bytes, d.commits[i].len), 0);
        cr_assert(d.commits[i].bytes > buf.data && d.commits[i].bytes < buf.data + buf.len);
    }
    for (size_t i = 0; i < 2; i++) {
        cr_assert_eq(d.heads[i].origin, b.heads[i].origin);
        cr_assert_eq(d.heads[i].seq, b.heads[i].seq);
        cr_assert_eq(memcmp(d.heads[i].sig, b.heads[i].sig, 64), 0);
    }
    /* re-encoding gives the same bytes */
    struct kith__wbuf again = {0};
    cr_assert_eq(kith__batch_encode(&d, &again), 0);
    cr_assert(again.len == buf.len && memcmp(again.data, buf.data, buf.len) == 0);
    kith__wbuf_free(&again);
}

/* BAT-2: the byte layout, pinned. */
Test(batch_codec, known_bytes)
{
    struct kith__batch b = sample();
    commits[1].first_seq = 7;
    b.ncommits = 2;
    b.nheads = 0;
    cr_assert_eq(kith__batch_encode(&b, &buf), 0);
    char hex[512] = "";
    for (size_t i = 0; i < buf.len; i++)
        snprintf(hex + 2 * i, 3, "%02x", buf.data[i]);
    /* format 2; these commits are of format 1, which have no names: they travel as they are */
    cr_assert_str_eq(hex, "9602cf2222222222222222"
                          "92cf2222222222222222cf0333333333333333"
                          "90"
                          "96"
                          "0001c409930590919402000001"
                          "0107c40e93069092940200000294020100"
                          "03"
                          "90");
}

/* Format 3: the sample with a base for one origin (the other's is zeros), two records and a
 * proof; round trip, re-encoding, and every truncation refused. */
static struct kith__batch
sample3(struct kith__batch_base *base, struct kith__batch_item items[3])
{
    static const uint8_t rec1[] = {1, 2, 3}, rec2[] = {4}, proof[] = {9, 9};
    struct kith__batch b = sample();
    b.version = 3;
    base->origin = B;
    memset(base->hash, 0x3c, KITH_HASH_BYTES);
    b.nbases = 1;
    b.bases = base;
    items[0] = (struct kith__batch_item){rec1, sizeof rec1};
    items[1] = (struct kith__batch_item){rec2, sizeof rec2};
    items[2] = (struct kith__batch_item){proof, sizeof proof};
    b.nrecords = 2;
    b.records = items;
    b.nproofs = 1;
    b.proofs = items + 2;
    return b;
}

Test(batch_codec, format3_round_trip)
{
    struct kith__batch_base base;
    struct kith__batch_item items[3];
    struct kith__batch b = sample3(&base, items), d;
    static const uint8_t zeros[KITH_HASH_BYTES];

    cr_assert_eq(kith__batch_encode(&b, &buf), 0);
    cr_assert_eq(buf.data[0], 0x99);
    cr_assert_eq(buf.data[1], 3);
    cr_assert_eq(decode(buf.data, buf.len, &d), 0);
    cr_assert_eq(d.version, 3);
    cr_assert_eq(d.ncommits, 3);
    cr_assert_eq(d.nbases, 2); /* one per origin, in the table's order: A then B */
    cr_assert_eq(d.bases[0].origin, A);
    cr_assert_eq(memcmp(d.bases[0].hash, zeros, KITH_HASH_BYTES), 0);
    cr_assert_eq(memcmp(kith__batch_base_of(&d, B), base.hash, KITH_HASH_BYTES), 0);
    cr_assert_null(kith__batch_base_of(&d, 77));
    cr_assert_eq(d.nrecords, 2);
    cr_assert(d.records[0].len == 3 && memcmp(d.records[0].bytes, items[0].bytes, 3) == 0);
    cr_assert(d.records[1].len == 1 && d.records[1].bytes[0] == 4);
    cr_assert(d.nproofs == 1 && d.proofs[0].len == 2 && d.proofs[0].bytes[1] == 9);
    struct kith__wbuf again = {0};
    cr_assert_eq(kith__batch_encode(&d, &again), 0);
    cr_assert(again.len == buf.len && memcmp(again.data, buf.data, buf.len) == 0);
    kith__wbuf_free(&again);
    for (size_t n = 0; n < buf.len; n++)
        cr_assert_eq(decode(buf.data, n, &d), KITH_EMALFORMED, "prefix %zu", n);
}

/* Format 3's faults: a base count that is not the origin count, a base of another size, an
 * empty item, an oversized record; and what format 2 cannot carry is refused by the encoder. */
Test(batch_codec, format3_faults)
{
    struct kith__batch_base base;
    struct kith__batch_item items[3];
    struct kith__batch b = sample3(&base, items), d;
    static uint8_t big[4200];

    /* [3, 0, [], [], [], [], bases, [], []] with one base too many */
    static const uint8_t extra_base[] = {
        0x99, 0x03, 0x00, 0x90, 0x90, 0x90, 0x90, 0x91, 0xc4, 0x20, 0, 0, 0,    0,   0,
        0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0, 0, 0,    0,   0,
        0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0, 0, 0x90, 0x90};
    static const uint8_t empty_record[] = {0x99, 0x03, 0x00, 0x90, 0x90, 0x90,
                                           0x90, 0x90, 0x91, 0xc4, 0x00, 0x90};
    cr_assert_eq(decode(extra_base, sizeof extra_base, &d), KITH_EMALFORMED);
    cr_assert_eq(decode(empty_record, sizeof empty_record, &d), KITH_EMALFORMED);

    items[0] = (struct kith__batch_item){big, 4097}; /* over a group record's 4 KiB */
    cr_assert_eq(kith__batch_encode(&b, &buf), KITH_EINVAL);
    items[0].len = 4096;
    cr_assert_eq(kith__batch_encode(&b, &buf), 0);
    /* a record of 4097 bytes on the wire: [3, 0, [], [], [], [], [], [bin 4097], []] */
    static const uint8_t head[] = {0x99, 0x03, 0x00, 0x90, 0x90, 0x90,
                                   0x90, 0x90, 0x91, 0xc5, 0x10, 0x01};
    memcpy(big, head, sizeof head);
    big[sizeof head + 4097] = 0x90;
    cr_assert_eq(decode(big, sizeof head + 4098, &d), KITH_ETOOBIG);
    buf.len = 0;
    b.version = 2; /* format 2 has no place for bases, records or proofs */
    cr_assert_eq(kith__batch_encode(&b, &buf), KITH_EINVAL);
    b.nbases = b.nrecords = b.nproofs = 0;
    cr_assert_eq(kith__batch_encode(&b, &buf), 0);
    cr_assert_eq(buf.data[1], 2);
    base.origin = 77; /* a base for an origin the batch does not carry */
    b = sample3(&base, items);
    b.bases[0].origin = 77;
    cr_assert_eq(kith__batch_encode(&b, &buf), KITH_EINVAL);
}

Test(batch_codec, empty_batch)
{
    struct kith__batch b = {.sender = 42}, d;
    cr_assert_eq(kith__batch_encode(&b, &buf), 0);
    cr_assert_eq(buf.len, 7); /* 96 02 2a 90 90 90 90 */
    cr_assert_eq(decode(buf.data, buf.len, &d), 0);
    cr_assert_eq(d.sender, 42);
    cr_assert_eq(d.ncommits + d.nheads, 0);
}

Test(batch_codec, truncation_at_every_length_refused)
{
    struct kith__batch b = sample(), d;
    cr_assert_eq(kith__batch_encode(&b, &buf), 0);
    for (size_t n = 0; n < buf.len; n++)
        cr_assert_eq(decode(buf.data, n, &d), KITH_EMALFORMED, "prefix %zu", n);
    /* and one byte more */
    uint8_t *m = malloc(buf.len + 1);
    memcpy(m, buf.data, buf.len);
    m[buf.len] = 0;
    cr_assert_eq(decode(m, buf.len + 1, &d), KITH_EMALFORMED);
    free(m);
}

/* BAT-3: an unknown format version is KITH_EVERSION, whatever follows. */
Test(batch_codec, version)
{
    static const uint8_t v4[] = {0x96, 0x04, 0x00, 0x90, 0x90, 0x90, 0x90};
    static const uint8_t v4_other_shape[] = {0x93, 0x04, 0x80, 0xca};
    static const uint8_t v3[] = {0x99, 0x03, 0x00, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90};
    static const uint8_t v3_shape_of_v2[] = {0x96, 0x03, 0x00, 0x90, 0x90, 0x90, 0x90};
    static const uint8_t v2[] = {0x96, 0x02, 0x00, 0x90, 0x90, 0x90, 0x90};
    static const uint8_t v2_shape_of_v1[] = {0x95, 0x02, 0x00, 0x90, 0x90, 0x90};
    static const uint8_t v1[] = {0x95, 0x01, 0x00, 0x90, 0x90, 0x90};
    struct kith__batch d;
    cr_assert_eq(decode(v4, sizeof v4, &d), KITH_EVERSION);
    cr_assert_eq(decode(v4_other_shape, sizeof v4_other_shape, &d), KITH_EVERSION);
    cr_assert_eq(decode(v3, sizeof v3, &d), 0);
    cr_assert_eq(d.version, 3);
    cr_assert_eq(decode(v3_shape_of_v2, sizeof v3_shape_of_v2, &d), KITH_EMALFORMED);
    cr_assert_eq(decode(v2, sizeof v2, &d), 0);
    cr_assert_eq(decode(v2_shape_of_v1, sizeof v2_shape_of_v1, &d), KITH_EMALFORMED);
    cr_assert_eq(decode(v1, sizeof v1, &d), 0);
}

static msgpack_packer pk;

static void
w_begin(uint64_t norigins)
{
    buf.len = 0;
    msgpack_packer_init(&pk, &buf, kith__wbuf_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 9);
    msgpack_pack_array(&pk, norigins);
    for (uint64_t k = 0; k < norigins; k++)
        msgpack_pack_uint64(&pk, k == 0 ? A : k == 1 ? B : k + 100);
}

static void
w_commit(uint64_t oi, uint64_t seq, const uint8_t *bytes, size_t len)
{
    msgpack_pack_uint64(&pk, oi);
    msgpack_pack_uint64(&pk, seq);
    msgpack_pack_bin(&pk, len);
    msgpack_pack_bin_body(&pk, bytes, len);
}

static int
decode_buf(void)
{
    struct kith__batch d;
    return decode(buf.data, buf.len, &d);
}

/* BAT-4: structural faults. */
Test(batch_codec, structure_refused)
{
    uint8_t sig[64] = {0};
    /* valid reference case */
    w_begin(1);
    msgpack_pack_array(&pk, 3), w_commit(0, 1, c1, sizeof c1);
    msgpack_pack_array(&pk, 3), w_commit(0, 1, sig, 64);
    cr_assert_eq(decode_buf(), 0);
    /* signature of 63 bytes */
    w_begin(1);
    msgpack_pack_array(&pk, 3), w_commit(0, 1, c1, sizeof c1);
    msgpack_pack_array(&pk, 3), w_commit(0, 1, sig, 63);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* commits array not a multiple of 3 */
    w_begin(1);
    msgpack_pack_array(&pk, 4), w_commit(0, 1, c1, sizeof c1), msgpack_pack_uint64(&pk, 0);
    msgpack_pack_array(&pk, 0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* origin index out of range */
    w_begin(1);
    msgpack_pack_array(&pk, 3), w_commit(1, 1, c1, sizeof c1);
    msgpack_pack_array(&pk, 0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* unused origin */
    w_begin(2);
    msgpack_pack_array(&pk, 3), w_commit(0, 1, c1, sizeof c1);
    msgpack_pack_array(&pk, 0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* origins used out of table order */
    w_begin(2);
    msgpack_pack_array(&pk, 6), w_commit(1, 1, c1, sizeof c1), w_commit(0, 1, c1, sizeof c1);
    msgpack_pack_array(&pk, 0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* duplicate origin ids */
    buf.len = 0;
    msgpack_pack_array(&pk, 5), msgpack_pack_uint64(&pk, 1), msgpack_pack_uint64(&pk, 9);
    msgpack_pack_array(&pk, 2), msgpack_pack_uint64(&pk, A), msgpack_pack_uint64(&pk, A);
    msgpack_pack_array(&pk, 6), w_commit(0, 1, c1, sizeof c1), w_commit(1, 2, c1, sizeof c1);
    msgpack_pack_array(&pk, 0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* one origin's commits out of seq order, or repeated */
    w_begin(1);
    msgpack_pack_array(&pk, 6), w_commit(0, 5, c1, sizeof c1), w_commit(0, 4, c1, sizeof c1);
    msgpack_pack_array(&pk, 0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    w_begin(1);
    msgpack_pack_array(&pk, 6), w_commit(0, 5, c1, sizeof c1), w_commit(0, 5, c1, sizeof c1);
    msgpack_pack_array(&pk, 0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* first_seq 0; a commit too short to be one; a head at seq 0 */
    w_begin(1);
    msgpack_pack_array(&pk, 3), w_commit(0, 0, c1, sizeof c1);
    msgpack_pack_array(&pk, 0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    w_begin(1);
    msgpack_pack_array(&pk, 3), w_commit(0, 1, c1, 8);
    msgpack_pack_array(&pk, 0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    w_begin(1);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_array(&pk, 3), w_commit(0, 0, sig, 64);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* commit bytes as str instead of bin */
    w_begin(1);
    msgpack_pack_array(&pk, 3), msgpack_pack_uint64(&pk, 0), msgpack_pack_uint64(&pk, 1);
    msgpack_pack_str(&pk, sizeof c1), msgpack_pack_str_body(&pk, c1, sizeof c1);
    msgpack_pack_array(&pk, 0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* a sixth element */
    buf.len = 0;
    msgpack_pack_array(&pk, 6), msgpack_pack_uint64(&pk, 1), msgpack_pack_uint64(&pk, 9);
    msgpack_pack_array(&pk, 0), msgpack_pack_array(&pk, 0), msgpack_pack_array(&pk, 0);
    msgpack_pack_array(&pk, 0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
    /* a map in place of the heads */
    buf.len = 0;
    msgpack_pack_array(&pk, 5), msgpack_pack_uint64(&pk, 1), msgpack_pack_uint64(&pk, 9);
    msgpack_pack_array(&pk, 0), msgpack_pack_array(&pk, 0), msgpack_pack_map(&pk, 0);
    cr_assert_eq(decode_buf(), KITH_EMALFORMED);
}

/* The guard: huge counts and lengths are refused without allocating. */
Test(batch_codec, guard)
{
    static const uint8_t huge_arr[] = {0x95, 0x01, 0x00, 0xdd, 0x01, 0x00, 0x00, 0x00};
    static const uint8_t huge_bin[] = {0x95, 0x01, 0x00, 0x91, 0x00, 0x93, 0x00,
                                       0x01, 0xc6, 0x7f, 0xff, 0xff, 0xff};
    struct kith__batch d;
    cr_assert_eq(decode(huge_arr, sizeof huge_arr, &d), KITH_EMALFORMED);
    cr_assert_eq(decode(huge_bin, sizeof huge_bin, &d), KITH_EMALFORMED);
    cr_assert_eq(arena.cap, 0);
    cr_assert_eq(kith__batch_decode(huge_arr, KITH__MAX_BATCH_BYTES + 1ull, &d, &arena),
                 KITH_ETOOBIG);
}

Test(batch_codec, encoder_refuses_bad_batches)
{
    struct kith__batch b = sample();
    commits[2].first_seq = 1; /* A: 1 then 1 */
    kith__wbuf_put(&buf, "x", 1);
    cr_assert_eq(kith__batch_encode(&b, &buf), KITH_EINVAL);
    b = sample();
    heads[0].seq = 0;
    cr_assert_eq(kith__batch_encode(&b, &buf), KITH_EINVAL);
    b = sample();
    commits[0].len = 3;
    cr_assert_eq(kith__batch_encode(&b, &buf), KITH_EINVAL);
    cr_assert_eq(buf.len, 1);
}
