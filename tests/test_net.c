/*
 * test_net.c — the wire codec and the transport of net/ (spec/protocol.md "Messages",
 * "Transport"): every message round-trips; the guard refuses counts the bytes cannot back,
 * deep nesting and trailing bytes; the decoder refuses every shape error; random and mutated
 * frames never crash it (KITH_SEED, KITH_CASES). On real sockets on 127.0.0.1: the ZAP handler
 * admits a listed CURVE key and hands its hex to the server as User-Id, refuses any other key
 * (the client sees the handshake fail; the server receives nothing), and a server socket with
 * no ZAP handler at all lets nobody in, because the domain is enforced. And the handshake's
 * protocol version on sessions driven by hand: a HELLO of protocol 1, as an older kith sends
 * it, or of a newer protocol is refused by its version with words for each side, and a
 * client whose HELLO an older kith could not read is told that the peer is older.
 */
#include "kith_test.h"
#include "net.h"
#include "wire.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* ---- codec --------------------------------------------------------------------------- */

static size_t
encode(const struct kith__msg *m, uint8_t **out)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(kith__wire_encode(m, &sb), 0);
    *out = (uint8_t *)sb.data;
    return sb.size;
}

/* proves NET-6 */
Test(wire, hello_round_trip)
{
    uint8_t pk[32], fp[32], *buf;
    kith_dot e[3] = {{1, 5}, {7, 1}, {0xffffffffffffffffull, 1ull << 40}};
    struct kith__msg m = {0}, d;
    for (int i = 0; i < 32; i++)
        pk[i] = (uint8_t)i, fp[i] = (uint8_t)(255 - i);
    m.type = KITH__MSG_HELLO;
    m.proto = 2;
    m.id = 0x3fa2c1d0e4b59a71ull;
    m.pk = pk;
    m.schema_version = 0x0123456789abcdefull;
    m.schema_digest = fp;
    m.vv.len = 3;
    m.vv.entries = e;
    size_t n = encode(&m, &buf);
    cr_assert_eq(buf[0], 0x97, "HELLO of protocol 2 is an array of 7");
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    cr_assert_eq(d.type, KITH__MSG_HELLO);
    cr_assert_eq(d.proto, 2);
    cr_assert_eq(d.id, m.id);
    cr_assert_arr_eq(d.pk, pk, 32);
    cr_assert_eq(d.schema_version, m.schema_version);
    cr_assert_arr_eq(d.schema_digest, fp, 32);
    cr_assert_eq(d.vv.len, 3);
    cr_assert_eq(d.vv.entries[2].origin, e[2].origin);
    cr_assert_eq(d.vv.entries[2].seq, e[2].seq);
    cr_assert_null(d.heads, "protocol 2 has no heads");
    cr_assert_eq(d.clock_ms, 0);
    kith__wire_clear(&d);
    free(buf);

    /* protocol 3: a head per vector entry in one bin, then the clock */
    uint8_t heads[3 * 32];
    for (size_t i = 0; i < sizeof heads; i++)
        heads[i] = (uint8_t)(i * 7);
    m.proto = 3;
    m.heads = heads;
    m.clock_ms = 1764093600250ull;
    n = encode(&m, &buf);
    cr_assert_eq(buf[0], 0x99, "HELLO of protocol 3 is an array of 9");
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    cr_assert_eq(d.proto, 3);
    cr_assert_eq(d.vv.len, 3);
    cr_assert_arr_eq(d.heads, heads, sizeof heads);
    cr_assert_eq(d.clock_ms, m.clock_ms);
    kith__wire_clear(&d);
    free(buf);

    /* protocol 4: the group and the digest of its records follow the clock */
    uint8_t gid[16], gd[32];
    for (int i = 0; i < 32; i++)
        gd[i] = (uint8_t)(0xa0 + i), gid[i % 16] = (uint8_t)(0x10 + i % 16);
    m.proto = 4;
    m.group = gid;
    m.gdigest = gd;
    n = encode(&m, &buf);
    cr_assert_eq(buf[0], 0x9b, "HELLO of protocol 4 is an array of 11");
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    cr_assert_eq(d.proto, 4);
    cr_assert_arr_eq(d.heads, heads, sizeof heads);
    cr_assert_eq(d.clock_ms, m.clock_ms);
    cr_assert_arr_eq(d.group, gid, 16);
    cr_assert_arr_eq(d.gdigest, gd, 32);
    kith__wire_clear(&d);
    free(buf);
    /* in no group: zeros, which an encoder writes for NULL */
    m.group = m.gdigest = NULL;
    n = encode(&m, &buf);
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    static const uint8_t zeros[32];
    cr_assert_arr_eq(d.group, zeros, 16);
    cr_assert_arr_eq(d.gdigest, zeros, 32);
    kith__wire_clear(&d);
    free(buf);
    /* protocol 5: the digest of the proofs held follows (NET-35); zeros for NULL */
    uint8_t pd[32];
    for (int i = 0; i < 32; i++)
        pd[i] = (uint8_t)(0x5a ^ i);
    m.proto = 5;
    m.pdigest = pd;
    n = encode(&m, &buf);
    cr_assert_eq(buf[0], 0x9c, "HELLO of protocol 5 is an array of 12");
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    cr_assert_eq(d.proto, 5);
    cr_assert_arr_eq(d.pdigest, pd, 32);
    cr_assert_arr_eq(d.heads, heads, sizeof heads);
    kith__wire_clear(&d);
    free(buf);
    /* a HELLO of 4 has no digest: 0.4.0 refuses a 12th element, so the digest is protocol 5 */
    m.proto = 4;
    n = encode(&m, &buf);
    cr_assert_eq(buf[0], 0x9b);
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    cr_assert_null(d.pdigest);
    kith__wire_clear(&d);
    buf[0] = 0x9c; /* 4's number with 5's count: malformed, as 0.4.0 finds it */
    uint8_t *longer = malloc(n + 34);
    cr_assert_not_null(longer);
    memcpy(longer, buf, n);
    longer[n] = 0xc4, longer[n + 1] = 32;
    memcpy(longer + n + 2, pd, 32);
    cr_assert_eq(kith__wire_decode(longer, n + 34, &d), KITH_EMALFORMED);
    kith__wire_clear(&d);
    free(longer);
    free(buf);
    m.pdigest = NULL;
    /* protocol 3 carries neither */
    m.proto = 3;
    m.group = gid;
    n = encode(&m, &buf);
    cr_assert_eq(buf[0], 0x99);
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    cr_assert_null(d.group);
    cr_assert_null(d.gdigest);
    kith__wire_clear(&d);
    free(buf);
    m.group = NULL;

    /* an empty vector has an empty bin of heads */
    m.vv.len = 0;
    m.heads = NULL;
    n = encode(&m, &buf);
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    cr_assert_eq(d.vv.len, 0);
    cr_assert_null(d.heads);
    kith__wire_clear(&d);
    free(buf);
}

/* A HELLO of protocol 3 with the vector `vv` (flat: origin, seq, ...; n pairs), a heads bin
 * of `nheads` bytes and, unless `clock` is false, a clock: for frames no encoder makes. */
static size_t
hello_v3_raw(const uint64_t *vv, size_t n, size_t nheads, bool clock, uint8_t **out)
{
    uint8_t pk[32] = {0}, fp[32] = {0}, heads[4 * 32 + 8] = {0};
    msgpack_sbuffer sb;
    msgpack_packer p;
    cr_assert_leq(nheads, sizeof heads);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&p, &sb, msgpack_sbuffer_write);
    cr_assert_eq(msgpack_pack_array(&p, clock ? 9 : 8), 0);
    cr_assert_eq(msgpack_pack_int(&p, KITH__MSG_HELLO), 0);
    cr_assert_eq(msgpack_pack_uint32(&p, 3), 0);
    cr_assert_eq(msgpack_pack_uint64(&p, 77), 0);
    cr_assert_eq(msgpack_pack_bin(&p, 32), 0);
    cr_assert_eq(msgpack_pack_bin_body(&p, pk, 32), 0);
    cr_assert_eq(msgpack_pack_uint64(&p, 0), 0);
    cr_assert_eq(msgpack_pack_bin(&p, 32), 0);
    cr_assert_eq(msgpack_pack_bin_body(&p, fp, 32), 0);
    cr_assert_eq(msgpack_pack_array(&p, 2 * n), 0);
    for (size_t i = 0; i < 2 * n; i++)
        cr_assert_eq(msgpack_pack_uint64(&p, vv[i]), 0);
    cr_assert_eq(msgpack_pack_bin(&p, nheads), 0);
    cr_assert_eq(msgpack_pack_bin_body(&p, heads, nheads), 0);
    if (clock)
        cr_assert_eq(msgpack_pack_uint64(&p, 1764093600000ull), 0);
    *out = (uint8_t *)sb.data;
    return sb.size;
}

/* Heads that do not match the vector one for one are malformed: too few, too many, a head
 * of 31 bytes, heads for origins the vector does not list, heads without a clock. */
/* proves NET-24 */
Test(wire, hello_heads_must_match_the_vector)
{
    const uint64_t vv[] = {5, 3, 9, 1};
    struct kith__msg d;
    uint8_t *buf;
    size_t n;

    n = hello_v3_raw(vv, 2, 64, true, &buf);
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0, "two entries, two heads");
    kith__wire_clear(&d);
    free(buf);
    const size_t bad[] = {0, 32, 63, 65, 96, 2 * 32 + 8};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = hello_v3_raw(vv, 2, bad[i], true, &buf);
        cr_assert_eq(kith__wire_decode(buf, n, &d), KITH_EMALFORMED, "%zu bytes of heads", bad[i]);
        kith__wire_clear(&d);
        free(buf);
    }
    /* an empty vector has no heads: one head names an origin the vector lacks */
    n = hello_v3_raw(vv, 0, 32, true, &buf);
    cr_assert_eq(kith__wire_decode(buf, n, &d), KITH_EMALFORMED);
    kith__wire_clear(&d);
    free(buf);
    n = hello_v3_raw(vv, 2, 64, false, &buf);
    cr_assert_eq(kith__wire_decode(buf, n, &d), KITH_EMALFORMED, "no clock");
    kith__wire_clear(&d);
    free(buf);
}

Test(wire, every_type_round_trips)
{
    static const uint8_t data[] = {0x93, 1, 2, 3};
    kith_dot e[1] = {{9, 9}};
    int types[] = {KITH__MSG_REFUSE, KITH__MSG_BATCH, KITH__MSG_ACK, KITH__MSG_DONE,
                   KITH__MSG_PING,   KITH__MSG_PONG,  KITH__MSG_BYE};
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        struct kith__msg m = {0}, d;
        uint8_t *buf;
        m.type = types[t];
        m.code = KITH_EVERSION;
        m.reason = "protocol 2";
        m.reason_len = 10;
        m.seq = 77;
        m.has_more = true;
        m.data = data;
        m.len = sizeof(data);
        m.vv.len = 1;
        m.vv.entries = e;
        m.nonce = 123456789;
        size_t n = encode(&m, &buf);
        cr_assert_eq(kith__wire_decode(buf, n, &d), 0, "type %d", m.type);
        cr_assert_eq(d.type, m.type);
        switch (m.type) {
        case KITH__MSG_REFUSE:
            cr_assert_eq(d.code, KITH_EVERSION);
            cr_assert_eq(d.reason_len, 10);
            cr_assert(memcmp(d.reason, "protocol 2", 10) == 0);
            break;
        case KITH__MSG_BATCH:
            cr_assert_eq(d.seq, 77);
            cr_assert(d.has_more);
            cr_assert_eq(d.len, sizeof(data));
            cr_assert_arr_eq(d.data, data, sizeof(data));
            cr_assert_eq(d.vv.len, 1);
            break;
        case KITH__MSG_ACK:
            cr_assert_eq(d.seq, 77);
            cr_assert_eq(d.vv.entries[0].seq, 9);
            break;
        case KITH__MSG_DONE:
            cr_assert_eq(d.vv.len, 1);
            break;
        case KITH__MSG_PING:
        case KITH__MSG_PONG:
            cr_assert_eq(d.nonce, 123456789);
            break;
        default:
            break;
        }
        kith__wire_clear(&d);
        free(buf);
    }
}

/* A HELLO of protocol 4 with a group of `glen` bytes and a digest of `dlen` (no digest when
 * dlen is 0 and `digest` false): for frames no encoder makes. */
static size_t
hello_v4_raw(size_t glen, size_t dlen, bool digest, uint8_t **out)
{
    uint8_t z[64] = {0};
    msgpack_sbuffer sb;
    msgpack_packer p;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&p, &sb, msgpack_sbuffer_write);
    cr_assert_eq(msgpack_pack_array(&p, digest ? 11 : 10), 0);
    cr_assert_eq(msgpack_pack_int(&p, KITH__MSG_HELLO), 0);
    cr_assert_eq(msgpack_pack_uint32(&p, 4), 0);
    cr_assert_eq(msgpack_pack_uint64(&p, 77), 0);
    cr_assert_eq(msgpack_pack_bin(&p, 32), 0);
    cr_assert_eq(msgpack_pack_bin_body(&p, z, 32), 0);
    cr_assert_eq(msgpack_pack_uint64(&p, 0), 0);
    cr_assert_eq(msgpack_pack_bin(&p, 32), 0);
    cr_assert_eq(msgpack_pack_bin_body(&p, z, 32), 0);
    cr_assert_eq(msgpack_pack_array(&p, 0), 0);
    cr_assert_eq(msgpack_pack_bin(&p, 0), 0);
    cr_assert_eq(msgpack_pack_uint64(&p, 1764093600000ull), 0);
    cr_assert_eq(msgpack_pack_bin(&p, glen), 0);
    cr_assert_eq(msgpack_pack_bin_body(&p, z, glen), 0);
    if (digest) {
        cr_assert_eq(msgpack_pack_bin(&p, dlen), 0);
        cr_assert_eq(msgpack_pack_bin_body(&p, z, dlen), 0);
    }
    *out = (uint8_t *)sb.data;
    return sb.size;
}

/* Protocol 4's group is 16 bytes and its digest 32, both present, exactly. */
/* proves NET-6, NET-29 */
Test(wire, hello_of_protocol_4_has_an_exact_group_and_digest)
{
    struct kith__msg d;
    uint8_t *buf;
    size_t n = hello_v4_raw(16, 32, true, &buf);
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    kith__wire_clear(&d);
    free(buf);
    const size_t g[] = {0, 15, 17, 32, 16, 16, 16}, dl[] = {32, 32, 32, 32, 31, 33, 16};
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
        n = hello_v4_raw(g[i], dl[i], true, &buf);
        cr_assert_eq(kith__wire_decode(buf, n, &d), KITH_EMALFORMED, "group %zu, digest %zu", g[i],
                     dl[i]);
        kith__wire_clear(&d);
        free(buf);
    }
    n = hello_v4_raw(16, 0, false, &buf);
    cr_assert_eq(kith__wire_decode(buf, n, &d), KITH_EMALFORMED, "no digest");
    kith__wire_clear(&d);
    free(buf);
}

/* JOIN and JOINED round-trip; bad names, sizes and counts are refused by encoder and decoder. */
/* proves NET-6, NET-30 */
Test(wire, join_and_joined_round_trip_and_are_exact)
{
    uint8_t pk[32], mac[32], gid[16], *buf;
    struct kith__msg m = {0}, d;
    for (int i = 0; i < 32; i++)
        pk[i] = (uint8_t)i, mac[i] = (uint8_t)(200 - i), gid[i % 16] = (uint8_t)(i + 1);
    m.type = KITH__MSG_JOIN;
    m.join_pk = pk;
    m.name = "Anna's phone";
    m.name_len = strlen(m.name);
    m.mac = mac;
    size_t n = encode(&m, &buf);
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    cr_assert_eq(d.type, KITH__MSG_JOIN);
    cr_assert_arr_eq(d.join_pk, pk, 32);
    cr_assert_eq(d.name_len, m.name_len);
    cr_assert(memcmp(d.name, m.name, m.name_len) == 0);
    cr_assert_arr_eq(d.mac, mac, 32);
    kith__wire_clear(&d);
    free(buf);

    /* names the decoder refuses, encoded by hand: empty, 64 bytes, a NUL, bad UTF-8 */
    const char *bad[] = {"", "0123456789012345678901234567890123456789012345678901234567890123",
                         "a\0b", "\xff\xfe"};
    const size_t blen[] = {0, 64, 3, 2};
    for (size_t i = 0; i < 4; i++) {
        msgpack_sbuffer sb;
        msgpack_packer p;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&p, &sb, msgpack_sbuffer_write);
        cr_assert_eq(msgpack_pack_array(&p, 4), 0);
        cr_assert_eq(msgpack_pack_int(&p, KITH__MSG_JOIN), 0);
        cr_assert_eq(msgpack_pack_bin(&p, 32), 0);
        cr_assert_eq(msgpack_pack_bin_body(&p, pk, 32), 0);
        cr_assert_eq(msgpack_pack_str(&p, blen[i]), 0);
        cr_assert_eq(msgpack_pack_str_body(&p, bad[i], blen[i]), 0);
        cr_assert_eq(msgpack_pack_bin(&p, 32), 0);
        cr_assert_eq(msgpack_pack_bin_body(&p, mac, 32), 0);
        cr_assert_eq(kith__wire_decode(sb.data, sb.size, &d), KITH_EMALFORMED, "name %zu", i);
        kith__wire_clear(&d);
        msgpack_sbuffer_destroy(&sb);
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    m.name_len = 0;
    cr_assert_eq(kith__wire_encode(&m, &sb), KITH_EINVAL);
    m.name_len = 64;
    m.name = bad[1];
    cr_assert_eq(kith__wire_encode(&m, &sb), KITH_EINVAL);

    /* JOINED: the group and its records */
    static const uint8_t r1[] = {1, 2, 3}, r2[] = {4};
    const uint8_t *recs[] = {r1, r2};
    size_t lens[] = {sizeof r1, sizeof r2};
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_JOINED;
    m.group = gid;
    m.nrecords = 2;
    m.records = recs;
    m.record_lens = lens;
    n = encode(&m, &buf);
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    cr_assert_eq(d.type, KITH__MSG_JOINED);
    cr_assert_arr_eq(d.group, gid, 16);
    cr_assert_eq(d.nrecords, 2);
    cr_assert_eq(d.record_lens[0], 3);
    cr_assert_arr_eq(d.records[0], r1, 3);
    cr_assert_eq(d.record_lens[1], 1);
    cr_assert_arr_eq(d.records[1], r2, 1);
    kith__wire_clear(&d);
    free(buf);
    lens[1] = 0;
    cr_assert_eq(kith__wire_encode(&m, &sb), KITH_EINVAL, "an empty record");
    lens[1] = KITH__WIRE_MAX_RECORD + 1;
    cr_assert_eq(kith__wire_encode(&m, &sb), KITH_EINVAL, "a record over 4 KiB");
    m.nrecords = 0;
    cr_assert_eq(kith__wire_encode(&m, &sb), KITH_EINVAL, "no records");
    msgpack_sbuffer_destroy(&sb);

    static const uint8_t empty[] = {0x93, 0x0b, 0xc4, 0x10, 1,  2,  3,  4,  5,  6,   7,
                                    8,    9,    10,   11,   12, 13, 14, 15, 16, 0x90};
    cr_assert_eq(kith__wire_decode(empty, sizeof empty, &d), KITH_EMALFORMED, "no records");
    kith__wire_clear(&d);
    static const uint8_t emptyrec[] = {0x93, 0x0b, 0xc4, 0x10, 1,  2,  3,  4,  5,    6,    7,   8,
                                       9,    10,   11,   12,   13, 14, 15, 16, 0x91, 0xc4, 0x00};
    cr_assert_eq(kith__wire_decode(emptyrec, sizeof emptyrec, &d), KITH_EMALFORMED, "empty record");
    kith__wire_clear(&d);
    static const uint8_t shortgid[] = {0x93, 0x0b, 0xc4, 0x01, 1, 0x91, 0xc4, 0x01, 7};
    cr_assert_eq(kith__wire_decode(shortgid, sizeof shortgid, &d), KITH_EMALFORMED);
    kith__wire_clear(&d);
    static const uint8_t twelve[] = {0x91, 0x0c};
    cr_assert_eq(kith__wire_decode(twelve, sizeof twelve, &d), KITH_EMALFORMED, "type 12");
    kith__wire_clear(&d);
}

Test(wire, encoder_refuses_out_of_limits)
{
    msgpack_sbuffer sb;
    struct kith__msg m = {0};
    msgpack_sbuffer_init(&sb);
    m.type = 42;
    cr_assert_eq(kith__wire_encode(&m, &sb), KITH_EINVAL);
    m.type = KITH__MSG_BATCH; /* no data, seq 0 */
    cr_assert_eq(kith__wire_encode(&m, &sb), KITH_EINVAL);
    m.type = KITH__MSG_DONE;
    m.vv.len = KITH__WIRE_MAX_ORIGINS + 1;
    m.vv.entries = calloc(m.vv.len, sizeof(kith_dot));
    cr_assert_eq(kith__wire_encode(&m, &sb), KITH_EINVAL);
    free(m.vv.entries);
    msgpack_sbuffer_destroy(&sb);
}

/* proves NET-6 */
Test(wire, guard_refuses_counts_the_bytes_cannot_back)
{
    /* array32 claiming 2^24 elements in 5 bytes: msgpack-c alone would reserve 400 MB */
    static const uint8_t big[] = {0xdd, 0x01, 0x00, 0x00, 0x00};
    static const uint8_t map[] = {0xdf, 0x00, 0x10, 0x00, 0x00, 0x01};
    static const uint8_t str[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    static const uint8_t deep[] = {0x91, 0x91, 0x91, 0x91, 0x01};
    static const uint8_t trailing[] = {0x91, 0x01, 0x02};
    static const uint8_t truncated[] = {0x92, 0x01};
    static const uint8_t never[] = {0xc1};
    static const uint8_t ok[] = {0x92, 0x01, 0x92, 0x02, 0x03};
    cr_assert_eq(kith__wire_guard(big, sizeof(big), 3, 100), KITH_EMALFORMED);
    cr_assert_eq(kith__wire_guard(map, sizeof(map), 3, 100), KITH_EMALFORMED);
    cr_assert_eq(kith__wire_guard(str, sizeof(str), 3, 100), KITH_EMALFORMED);
    cr_assert_eq(kith__wire_guard(deep, sizeof(deep), 3, 100), KITH_EMALFORMED);
    cr_assert_eq(kith__wire_guard(trailing, sizeof(trailing), 3, 100), KITH_EMALFORMED);
    cr_assert_eq(kith__wire_guard(truncated, sizeof(truncated), 3, 100), KITH_EMALFORMED);
    cr_assert_eq(kith__wire_guard(never, sizeof(never), 3, 100), KITH_EMALFORMED);
    cr_assert_eq(kith__wire_guard(ok, sizeof(ok), 3, 100), 0);
    cr_assert_eq(kith__wire_guard(ok, sizeof(ok), 3, 3), KITH_EMALFORMED);   /* object cap */
    cr_assert_eq(kith__wire_guard(ok, sizeof(ok), 2, 100), KITH_EMALFORMED); /* depth cap */
}

/* Hand-made frames with one thing wrong each. */
/* proves NET-6 */
Test(wire, decoder_refuses_every_shape_error)
{
    struct {
        const char *what;
        uint8_t bytes[48];
        size_t len;
        int want;
    } cases[] = {
        {"not an array", {0x05}, 1, KITH_EMALFORMED},
        {"empty array", {0x90}, 1, KITH_EMALFORMED},
        {"unknown type", {0x91, 0x0a}, 2, KITH_EMALFORMED},
        {"type as string", {0x91, 0xa1, '9'}, 3, KITH_EMALFORMED},
        {"BYE with extra", {0x92, 0x09, 0x00}, 3, KITH_EMALFORMED},
        {"PING without nonce", {0x91, 0x07}, 2, KITH_EMALFORMED},
        {"PING negative nonce", {0x92, 0x07, 0xff}, 3, KITH_EMALFORMED},
        {"ACK seq 0", {0x93, 0x05, 0x00, 0x90}, 4, KITH_EMALFORMED},
        {"ACK odd vv", {0x93, 0x05, 0x01, 0x91, 0x01}, 5, KITH_EMALFORMED},
        {"DONE vv seq 0", {0x92, 0x06, 0x92, 0x01, 0x00}, 5, KITH_EMALFORMED},
        {"DONE vv unsorted", {0x92, 0x06, 0x94, 0x02, 0x01, 0x01, 0x01}, 7, KITH_EMALFORMED},
        {"DONE vv repeated", {0x92, 0x06, 0x94, 0x02, 0x01, 0x02, 0x01}, 7, KITH_EMALFORMED},
        {"DONE vv nested", {0x92, 0x06, 0x91, 0x91, 0x01}, 5, KITH_EMALFORMED},
        {"BATCH empty data", {0x95, 0x04, 0x01, 0xc2, 0x90, 0xc4, 0x00}, 7, KITH_EMALFORMED},
        {"BATCH data as str", {0x95, 0x04, 0x01, 0xc2, 0x90, 0xa1, 'x'}, 7, KITH_EMALFORMED},
        {"BATCH more as int", {0x95, 0x04, 0x01, 0x01, 0x90, 0xc4, 0x01, 'x'}, 8, KITH_EMALFORMED},
        {"REFUSE code float", {0x93, 0x03, 0xca, 0, 0, 0, 0, 0xa0}, 8, KITH_EMALFORMED},
        {"HELLO short pk",
         {0x97, 0x01, 0x02, 0x01, 0xc4, 0x01, 0x00, 0x00, 0xc4, 0x00, 0x90},
         11,
         KITH_EMALFORMED},
        {"HELLO without schema_v", /* protocol 1's layout under protocol 2's number */
         {0x96, 0x01, 0x02, 0x01, 0xc4, 0x01, 0x00, 0xc4, 0x00, 0x90},
         10,
         KITH_EMALFORMED},
        {"HELLO without proto", {0x91, 0x01}, 2, KITH_EMALFORMED},
        {"HELLO proto as str", {0x92, 0x01, 0xa1, '2'}, 4, KITH_EMALFORMED},
        {"HELLO proto > u32", {0x92, 0x01, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, 11, KITH_EMALFORMED},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct kith__msg d;
        int rc = kith__wire_decode(cases[i].bytes, cases[i].len, &d);
        cr_expect_eq(rc, cases[i].want, "%s: got %d", cases[i].what, rc);
        kith__wire_clear(&d);
    }
}

/* proves NET-6 */
Test(wire, size_limits_per_type)
{
    /* a DONE padded past the control limit, and a frame past the frame limit */
    size_t n = KITH__WIRE_MAX_CONTROL + 16;
    uint8_t *buf = calloc(1, KITH__WIRE_MAX_FRAME + 1);
    struct kith__msg d;
    cr_assert(buf);
    buf[0] = 0x93; /* [4, ...] would be a BATCH: use ACK with a huge str (wrong anyway) */
    buf[1] = 0x06;
    buf[2] = 0x90;
    cr_assert_eq(kith__wire_decode(buf, n, &d), KITH_EMALFORMED); /* trailing: guard first */
    kith__wire_clear(&d);
    /* a well-formed REFUSE whose reason is long: control limit */
    buf[0] = 0x93;
    buf[1] = 0x03;
    buf[2] = 0x00;
    buf[3] = 0xdb;
    uint32_t sl = (uint32_t)(n - 8);
    buf[4] = (uint8_t)(sl >> 24);
    buf[5] = (uint8_t)(sl >> 16);
    buf[6] = (uint8_t)(sl >> 8);
    buf[7] = (uint8_t)sl;
    memset(buf + 8, 'a', sl);
    cr_assert_eq(kith__wire_decode(buf, n, &d), KITH_ETOOBIG);
    kith__wire_clear(&d);
    cr_assert_eq(kith__wire_decode(buf, KITH__WIRE_MAX_FRAME + 1, &d), KITH_ETOOBIG);
    kith__wire_clear(&d);
    free(buf);
}

static uint64_t
seed_from_env(void)
{
    const char *s = getenv("KITH_SEED");
    return s ? strtoull(s, NULL, 0) : 20261125;
}

static int
cases_from_env(int dflt)
{
    const char *s = getenv("KITH_CASES");
    long v = s ? strtol(s, NULL, 10) : 0;
    return v > 0 ? (int)v : dflt;
}

/* Random bytes, and valid frames with random bytes changed, cut or added: the decoder gives
 * 0 or a code, and what it accepts re-encodes to a frame it accepts again. */
/* proves NET-6 */
Test(wire, random_and_mutated_frames_never_crash)
{
    uint64_t seed = seed_from_env();
    unsigned char sb[randombytes_SEEDBYTES] = {0};
    memcpy(sb, &seed, sizeof(seed));
    int ncases = cases_from_env(20000);
    uint8_t *rnd = malloc((size_t)ncases * 64);
    cr_assert(rnd);
    randombytes_buf_deterministic(rnd, (size_t)ncases * 64, sb);

    uint8_t pk[32] = {1}, fp[32] = {2}, heads[64] = {3}, *valid;
    kith_dot e[2] = {{3, 4}, {5, 6}};
    struct kith__msg m = {0};
    m.type = KITH__MSG_HELLO;
    m.proto = KITH__WIRE_PROTO;
    m.heads = heads;
    m.clock_ms = 12345;
    m.pk = pk;
    m.schema_version = 9;
    m.schema_digest = fp;
    m.vv.len = 2;
    m.vv.entries = e;
    size_t vlen = encode(&m, &valid);

    for (int i = 0; i < ncases; i++) {
        const uint8_t *r = rnd + (size_t)i * 64;
        uint8_t buf[512];
        size_t len;
        if (r[0] & 1) {
            len = 1 + r[1] % 63;
            memcpy(buf, r + 1, len);
        } else {
            len = vlen;
            memcpy(buf, valid, vlen);
            for (int k = 0; k < 1 + r[1] % 4; k++)
                buf[r[2 + 2 * k] % len] = r[3 + 2 * k];
            if (r[12] & 1)
                len = 1 + r[13] % len;
        }
        struct kith__msg d;
        int rc = kith__wire_decode(buf, len, &d);
        cr_assert(rc == 0 || rc == KITH_EMALFORMED || rc == KITH_ETOOBIG,
                  "seed %llu case %d: rc %d", (unsigned long long)seed, i, rc);
        kith__wire_clear(&d);
    }
    free(valid);
    free(rnd);
}

/* A HELLO exactly as a kith of protocol 1 sends it: [1, 1, id, pk, fingerprint, vv]. */
static size_t
hello_v1(uint8_t **out)
{
    uint8_t pk[32], fp[32];
    msgpack_sbuffer sb;
    msgpack_packer p;
    memset(pk, 0x70, sizeof pk);
    memset(fp, 0xf1, sizeof fp);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&p, &sb, msgpack_sbuffer_write);
    cr_assert_eq(msgpack_pack_array(&p, 6), 0);
    cr_assert_eq(msgpack_pack_int(&p, KITH__MSG_HELLO), 0);
    cr_assert_eq(msgpack_pack_uint32(&p, 1), 0);
    cr_assert_eq(msgpack_pack_uint64(&p, 0x7070707070707070ull), 0);
    cr_assert_eq(msgpack_pack_bin(&p, 32), 0);
    cr_assert_eq(msgpack_pack_bin_body(&p, pk, 32), 0);
    cr_assert_eq(msgpack_pack_bin(&p, 32), 0);
    cr_assert_eq(msgpack_pack_bin_body(&p, fp, 32), 0);
    cr_assert_eq(msgpack_pack_array(&p, 2), 0);
    cr_assert_eq(msgpack_pack_uint64(&p, 5), 0);
    cr_assert_eq(msgpack_pack_uint64(&p, 12), 0);
    *out = (uint8_t *)sb.data;
    return sb.size;
}

/* proves NET-7 */
Test(wire, hello_of_another_protocol_is_read_as_far_as_its_version)
{
    struct kith__msg m = {0}, d;
    uint8_t *buf;
    size_t n = hello_v1(&buf);

    /* protocol 1's layout: the version, and nothing else, is read */
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    cr_assert_eq(d.type, KITH__MSG_HELLO);
    cr_assert_eq(d.proto, 1);
    cr_assert_null(d.pk);
    cr_assert_null(d.schema_digest);
    cr_assert_eq(d.vv.len, 0);
    kith__wire_clear(&d);
    free(buf);

    /* a newer protocol, in whatever layout; its encoding is the version alone */
    static const uint8_t v6[] = {0x94, 0x02, 0x06, 0xc0, 0xa1, 'x'};
    cr_assert_eq(kith__wire_decode(v6, sizeof v6, &d), 0);
    cr_assert_eq(d.type, KITH__MSG_WELCOME);
    cr_assert_eq(d.proto, 6);
    cr_assert_null(d.pk);
    kith__wire_clear(&d);
    m.type = KITH__MSG_WELCOME;
    m.proto = 6;
    n = encode(&m, &buf);
    cr_assert_eq(n, 3);
    cr_assert_arr_eq(buf, ((uint8_t[]){0x92, 0x02, 0x06}), 3);
    free(buf);

    /* protocols 2 to 5 each have their own exact shape: 3's, 4's or 5's number alone is not */
    static const uint8_t short3[] = {0x92, 0x01, 0x03}, short4[] = {0x92, 0x01, 0x04},
                         short5[] = {0x92, 0x01, 0x05};
    cr_assert_eq(kith__wire_decode(short3, sizeof short3, &d), KITH_EMALFORMED);
    kith__wire_clear(&d);
    cr_assert_eq(kith__wire_decode(short4, sizeof short4, &d), KITH_EMALFORMED);
    kith__wire_clear(&d);
    cr_assert_eq(kith__wire_decode(short5, sizeof short5, &d), KITH_EMALFORMED);
    kith__wire_clear(&d);

    /* this protocol's HELLO without its key is not encoded */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    m.type = KITH__MSG_HELLO;
    m.proto = KITH__WIRE_PROTO;
    cr_assert_eq(kith__wire_encode(&m, &sb), KITH_EINVAL);
    msgpack_sbuffer_destroy(&sb);
}

Test(wire, version_vector_helpers)
{
    kith_dot a_e[2] = {{1, 5}, {3, 1}}, b_e[2] = {{1, 4}, {2, 9}};
    kith_vv a = {2, a_e}, b = {2, b_e}, m = {0, NULL};
    cr_assert(kith__netvv_ahead(&a, &b));
    cr_assert(kith__netvv_ahead(&b, &a));
    cr_assert_eq(kith__netvv_merge(&m, &a), 0);
    cr_assert_eq(kith__netvv_merge(&m, &b), 0);
    cr_assert_eq(m.len, 3);
    cr_assert_eq(m.entries[0].seq, 5);
    cr_assert_eq(m.entries[1].seq, 9);
    cr_assert_eq(m.entries[2].seq, 1);
    cr_assert(!kith__netvv_ahead(&a, &m));
    cr_assert(kith__netvv_ahead(&m, &a));
    kith_vv c = {0, NULL};
    cr_assert_eq(kith__netvv_set(&c, &m), 0);
    cr_assert(kith__netvv_equal(&c, &m));
    kith__netvv_clear(&c);
    kith__netvv_clear(&m);
}

/* ---- CURVE and ZAP on real sockets ---------------------------------------------------- */

struct keys {
    uint8_t pub[32], sec[32];
};

static uint8_t allowed[32];

static bool
admit_one(void *ctx, const uint8_t curve_pk[32], const char **why)
{
    (void)ctx;
    *why = "not the one key";
    return sodium_memcmp(curve_pk, allowed, 32) == 0;
}

/* Send one frame from a client with `c` and wait up to `ms` for the server to receive it;
 * returns the User-Id the server saw ("" if none arrived) and the client's handshake event. */
static bool
try_client(void *zctx, void *router, const struct keys *srv, const struct keys *c, const char *ep,
           int ms, char *user, size_t cap, int *event)
{
    void *dealer, *mon;
    char mon_ep[64];
    bool got = false;

    snprintf(mon_ep, sizeof(mon_ep), "inproc://mon-%p", (void *)c);
    cr_assert_eq(kith__client_socket(zctx, c->pub, c->sec, srv->pub, ep, mon_ep, &dealer), 0);
    mon = zmq_socket(zctx, ZMQ_PAIR);
    cr_assert_eq(zmq_connect(mon, mon_ep), 0);
    cr_assert_eq(zmq_send(dealer, "hi", 2, 0), 2);
    user[0] = '\0';
    *event = 0;
    int64_t end = kith__mono_ms() + ms;
    while (kith__mono_ms() < end && !got) {
        zmq_pollitem_t it[2] = {{router, 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}};
        cr_assert(zmq_poll(it, 2, 50) >= 0);
        if (it[1].revents & ZMQ_POLLIN) {
            zmq_msg_t ev;
            zmq_msg_init(&ev);
            cr_assert(zmq_msg_recv(&ev, mon, 0) >= 0);
            uint16_t e;
            memcpy(&e, zmq_msg_data(&ev), 2);
            *event = e;
            zmq_msg_close(&ev);
            char addr[256];
            cr_assert(zmq_recv(mon, addr, sizeof(addr), 0) >= 0);
        }
        if (it[0].revents & ZMQ_POLLIN) {
            zmq_msg_t rid, body;
            zmq_msg_init(&rid);
            zmq_msg_init(&body);
            cr_assert(zmq_msg_recv(&rid, router, 0) >= 0);
            cr_assert(zmq_msg_recv(&body, router, 0) >= 0);
            const char *u = zmq_msg_gets(&body, "User-Id");
            snprintf(user, cap, "%s", u ? u : "");
            got = true;
            zmq_msg_close(&rid);
            zmq_msg_close(&body);
        }
    }
    zmq_close(mon);
    zmq_close(dealer);
    return got;
}

/* proves NET-2, NET-3, NET-4 */
Test(transport, zap_admits_listed_key_and_refuses_others)
{
    struct keys srv, good, bad;
    struct kith__log log;
    struct kith__zap zap;
    char ep[256], user[128], hex[65];
    void *zctx = zmq_ctx_new(), *router;
    int event;

    cr_assert_eq(sodium_init() >= 0, 1);
    crypto_box_keypair(srv.pub, srv.sec);
    crypto_box_keypair(good.pub, good.sec);
    crypto_box_keypair(bad.pub, bad.sec);
    memcpy(allowed, good.pub, 32);
    kith__log_init(&log, KITH_LOG_ERROR, false);
    cr_assert_eq(kith__zap_start(&zap, zctx, admit_one, NULL, &log), 0);
    cr_assert_eq(
        kith__server_socket(zctx, srv.sec, "tcp://127.0.0.1:*", 0, NULL, &router, ep, sizeof(ep)),
        0);
    cr_assert(strncmp(ep, "tcp://127.0.0.1:", 16) == 0, "bound %s", ep);

    cr_assert(try_client(zctx, router, &srv, &good, ep, 3000, user, sizeof(user), &event));
    kith__hex(good.pub, 32, hex);
    cr_assert_str_eq(user, hex);

    cr_assert(!try_client(zctx, router, &srv, &bad, ep, 800, user, sizeof(user), &event));
    cr_assert_eq(event, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);

    /* a client that has the wrong idea of the server's key fails too */
    struct keys wrong = srv;
    crypto_box_keypair(wrong.pub, wrong.sec);
    cr_assert(!try_client(zctx, router, &wrong, &good, ep, 800, user, sizeof(user), &event));

    zmq_close(router);
    kith__zap_stop(&zap);
    zmq_ctx_term(zctx);
}

/* proves NET-3 */
Test(transport, no_zap_handler_means_nobody_gets_in)
{
    struct keys srv, c;
    char ep[256], user[128];
    void *zctx = zmq_ctx_new(), *router;
    int event;

    cr_assert_eq(sodium_init() >= 0, 1);
    crypto_box_keypair(srv.pub, srv.sec);
    crypto_box_keypair(c.pub, c.sec);
    cr_assert_eq(
        kith__server_socket(zctx, srv.sec, "tcp://127.0.0.1:*", 0, NULL, &router, ep, sizeof(ep)),
        0);
    cr_assert(!try_client(zctx, router, &srv, &c, ep, 800, user, sizeof(user), &event));
    zmq_close(router);
    zmq_ctx_term(zctx);
}

/* proves NET-5 */
Test(transport, oversized_frame_is_dropped_by_the_socket)
{
    struct keys srv, c;
    struct kith__log log;
    struct kith__zap zap;
    char ep[256];
    void *zctx = zmq_ctx_new(), *router, *dealer;

    cr_assert_eq(sodium_init() >= 0, 1);
    crypto_box_keypair(srv.pub, srv.sec);
    crypto_box_keypair(c.pub, c.sec);
    memcpy(allowed, c.pub, 32);
    kith__log_init(&log, KITH_LOG_ERROR, false);
    cr_assert_eq(kith__zap_start(&zap, zctx, admit_one, NULL, &log), 0);
    cr_assert_eq(
        kith__server_socket(zctx, srv.sec, "tcp://127.0.0.1:*", 0, NULL, &router, ep, sizeof(ep)),
        0);
    /* a raw DEALER without the size limit, so the oversized frame leaves the client */
    dealer = zmq_socket(zctx, ZMQ_DEALER);
    cr_assert_eq(zmq_setsockopt(dealer, ZMQ_CURVE_SERVERKEY, srv.pub, 32), 0);
    cr_assert_eq(zmq_setsockopt(dealer, ZMQ_CURVE_PUBLICKEY, c.pub, 32), 0);
    cr_assert_eq(zmq_setsockopt(dealer, ZMQ_CURVE_SECRETKEY, c.sec, 32), 0);
    cr_assert_eq(zmq_connect(dealer, ep), 0);
    size_t big = KITH__WIRE_MAX_FRAME + 1024;
    void *buf = calloc(1, big);
    cr_assert_eq(zmq_send(dealer, buf, big, 0), (int)big);
    cr_assert_eq(zmq_send(dealer, "small", 5, 0), 5);
    free(buf);
    zmq_pollitem_t it = {router, 0, ZMQ_POLLIN, 0};
    int64_t end = kith__mono_ms() + 1500;
    int got = 0;
    while (kith__mono_ms() < end) {
        cr_assert(zmq_poll(&it, 1, 50) >= 0);
        if (it.revents & ZMQ_POLLIN) {
            char tmp[64];
            int n = zmq_recv(router, tmp, sizeof(tmp), ZMQ_DONTWAIT);
            cr_assert(n >= 0 && n <= 64, "a frame got through: %d bytes", n);
            got++;
        }
    }
    (void)got; /* "small" may come through a new connection; the big frame never does */
    zmq_close(dealer);
    zmq_close(router);
    kith__zap_stop(&zap);
    zmq_ctx_term(zctx);
}

/* ---- the daemon's log lines ------------------------------------------------------------ */

static void
redirect_stderr(void)
{
    cr_redirect_stderr();
}

Test(log, json_lines_are_json, .init = redirect_stderr)
{
    struct kith__log log;
    char line[2048];
    unsetenv("JOURNAL_STREAM");
    kith__log_init(&log, KITH_LOG_INFO, true);
    kith__log(&log, KITH_LOG_WARNING, "peer %s said \"%s\"", "x", "hi\n");
    kith__log(&log, KITH_LOG_DEBUG, "not shown at info");
    fflush(stderr);
    FILE *f = cr_get_redirected_stderr();
    cr_assert(fgets(line, sizeof(line), f));
    json_error_t err;
    json_t *o = json_loads(line, 0, &err);
    cr_assert(o, "not JSON: %s", line);
    cr_assert_str_eq(json_string_value(json_object_get(o, "level")), "warning");
    cr_assert_str_eq(json_string_value(json_object_get(o, "msg")), "peer x said \"hi\n\"");
    const char *t = json_string_value(json_object_get(o, "time"));
    cr_assert(t && strlen(t) == 24 && t[23] == 'Z', "time %s", t ? t : "(none)");
    json_decref(o);
    cr_assert_null(fgets(line, sizeof(line), f), "a debug line got through: %s", line);
}

Test(log, journald_prefixes, .init = redirect_stderr)
{
    struct kith__log log;
    setenv("JOURNAL_STREAM", "8:12345", 1);
    kith__log_init(&log, 0, false);
    kith__log(&log, KITH_LOG_ERROR, "cannot listen");
    kith__log(&log, KITH_LOG_INFO, "listening");
    fflush(stderr);
    cr_assert_stderr_eq_str("<3>cannot listen\n<6>listening\n");
}

/* ---- reconnect backoff ---------------------------------------------------------------- */

Test(backoff, doubles_with_jitter_up_to_a_cap)
{
    int64_t base = 250;
    for (uint32_t f = 1; f <= 12; f++) {
        int64_t nominal = base << (f - 1);
        if (nominal > 30000)
            nominal = 30000;
        int64_t lo = kith__backoff_ms(f, 0), hi = kith__backoff_ms(f, 999);
        cr_assert_eq(lo, nominal * 3 / 4, "failures %u: %lld", f, (long long)lo);
        cr_assert(hi < nominal * 5 / 4 && hi > lo, "failures %u: %lld", f, (long long)hi);
    }
    cr_assert_eq(kith__backoff_ms(1000, 500), 30000);
}

/* ---- the handshake's protocol version, on sessions driven by hand ------------------------ */

/* The frames a session sent (the send function of kith__session_*). */
struct sent {
    uint8_t *frame[8];
    size_t len[8];
    int n;
};

static int
capture(void *ctx, void *data, size_t len)
{
    struct sent *s = ctx;
    if (s->n == 8) {
        free(data);
        return 0;
    }
    s->frame[s->n] = data;
    s->len[s->n++] = len;
    return 0;
}

static void
sent_free(struct sent *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->frame[i]);
    s->n = 0;
}

static struct kith__peerstate the_peer;

static struct kith__peerstate *
find_the_peer(void *ctx, uint64_t id, const uint8_t pk[KITH_PUBKEY_BYTES])
{
    (void)ctx;
    the_peer.id = id;
    memcpy(the_peer.pk, pk, KITH_PUBKEY_BYTES);
    return &the_peer;
}

/* The REFUSE in frame i of `s`: its code, and its reason into reason (NUL-terminated). */
static int
refused(const struct sent *s, int i, char *reason, size_t cap)
{
    struct kith__msg d;
    cr_assert_lt(i, s->n);
    cr_assert_eq(kith__wire_decode(s->frame[i], s->len[i], &d), 0);
    cr_assert_eq(d.type, KITH__MSG_REFUSE, "sent %s, not REFUSE", kith__wire_name(d.type));
    int code = d.code;
    snprintf(reason, cap, "%.*s", (int)d.reason_len, d.reason);
    kith__wire_clear(&d);
    return code;
}

/* proves NET-7 */
Test(handshake, hello_of_protocol_1_is_refused_by_its_version)
{
    struct kt_replica r = kt_new();
    struct kith__session s;
    struct sent out = {0};
    char reason[256];
    uint8_t *hello;
    size_t n = hello_v1(&hello);

    kith__session_init_server(&s, r.r, NULL, find_the_peer, NULL, capture, &out);
    cr_assert_eq(kith__session_input(&s, hello, n), KITH_EVERSION);
    cr_assert_eq(s.state, KITH__SS_CLOSED);
    cr_assert_eq(s.error, KITH_EVERSION);
    cr_assert_str_eq(s.why, "peer runs an older kith (protocol 1): upgrade it");
    cr_assert_eq(out.n, 1, "one REFUSE, nothing else");
    cr_assert_eq(refused(&out, 0, reason, sizeof reason), KITH_EVERSION);
    cr_assert_str_eq(reason, "your kith is older (protocol 1, here 2 to 5): upgrade it");
    free(hello);
    sent_free(&out);

    /* a newer kith's HELLO: this side is the one to upgrade */
    static const uint8_t v6[] = {0x92, 0x01, 0x06};
    kith__session_init_server(&s, r.r, NULL, find_the_peer, NULL, capture, &out);
    cr_assert_eq(kith__session_input(&s, v6, sizeof v6), KITH_EVERSION);
    cr_assert_str_eq(s.why, "peer runs a newer kith (protocol 6, here 5): upgrade this one");
    cr_assert_eq(refused(&out, 0, reason, sizeof reason), KITH_EVERSION);
    cr_assert_str_eq(reason, "the refusing kith is older (protocol 5, yours 6): upgrade it");
    sent_free(&out);
    kt_free(&r);
}

/* proves NET-7: a kith of protocol 1 cannot read a HELLO of protocol 2 and refuses it as
 * malformed; the client says what that means */
Test(handshake, client_refused_as_malformed_is_told_the_peer_is_older)
{
    struct kt_replica r = kt_new(), p = kt_new();
    struct kith__peerstate peer;
    struct kith__session s;
    struct sent out = {0};
    struct kith__msg m, d;
    uint8_t digest[KITH_HASH_BYTES], *buf;
    uint64_t version;

    memset(&peer, 0, sizeof peer);
    peer.id = kith_replica_id(p.r);
    kith_replica_pubkey(p.r, peer.pk);
    cr_assert_eq(kith__session_start_client(&s, r.r, NULL, &peer, capture, &out), 0);

    /* the HELLO says the protocol and this replica's schema */
    cr_assert_eq(out.n, 1);
    cr_assert_eq(kith__wire_decode(out.frame[0], out.len[0], &d), 0);
    cr_assert_eq(d.type, KITH__MSG_HELLO);
    cr_assert_eq(d.proto, KITH__WIRE_PROTO);
    cr_assert_eq(kith_schema_info(r.r, &version, digest), 0);
    cr_assert_eq(d.schema_version, version);
    cr_assert_arr_eq(d.schema_digest, digest, sizeof digest);
    kith__wire_clear(&d);

    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_REFUSE;
    m.code = KITH_EMALFORMED;
    m.reason = "malformed frame of 120 bytes (message is malformed)";
    m.reason_len = strlen(m.reason);
    size_t n = encode(&m, &buf);
    cr_assert_eq(kith__session_input(&s, buf, n), KITH_EVERSION);
    cr_assert_eq(s.state, KITH__SS_CLOSED);
    cr_assert(strstr(s.why, "likely runs an older kith, upgrade it"), "%s", s.why);
    cr_assert(strstr(s.why, "malformed frame of 120 bytes"), "%s", s.why);
    free(buf);
    sent_free(&out);
    kith__peerstate_clear(&peer);
    kt_free(&r);
    kt_free(&p);
}

/* FETCH and FETCHED (protocol 5, NET-33): round trips, and the shapes refused. */
/* proves NET-33, NET-6 */
Test(wire, fetch_round_trip_and_refusals)
{
    uint64_t seqs[3] = {40, 39, 7};
    uint8_t chains[3 * 32], *buf;
    struct kith__msg m = {0}, d;
    for (size_t i = 0; i < sizeof chains; i++)
        chains[i] = (uint8_t)(i * 3);
    m.type = KITH__MSG_FETCH;
    m.origin = 0x1122334455667788ull;
    m.nsamples = 3;
    m.samples = seqs;
    m.chains = chains;
    size_t n = encode(&m, &buf);
    cr_assert_eq(buf[0], 0x94);
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    cr_assert_eq(d.type, KITH__MSG_FETCH);
    cr_assert_eq(d.origin, m.origin);
    cr_assert_eq(d.nsamples, 3);
    cr_assert_eq(d.samples[2], 7);
    cr_assert_arr_eq(d.chains, chains, sizeof chains);
    kith__wire_clear(&d);
    free(buf);

    /* not descending, a zero, none, too many: the encoder refuses them */
    msgpack_sbuffer sb;
    uint64_t up[2] = {3, 3}, zero[1] = {0}, many[65];
    uint8_t big[65 * 32] = {0};
    for (int i = 0; i < 65; i++)
        many[i] = (uint64_t)(100 - i);
    const uint64_t *bad[] = {up, zero, seqs, many};
    const size_t bad_n[] = {2, 1, 0, 65};
    for (int i = 0; i < 4; i++) {
        m.samples = bad[i];
        m.nsamples = bad_n[i];
        m.chains = big;
        msgpack_sbuffer_init(&sb);
        cr_assert_eq(kith__wire_encode(&m, &sb), KITH_EINVAL, "case %d", i);
        msgpack_sbuffer_destroy(&sb);
    }
    /* and the decoder too, written by hand: seqs ascending; chains one short */
    static const uint8_t asc[] = {0x94, 0x0c, 0x01, 0x92, 0x01, 0x02, 0xc4, 0x40};
    uint8_t frame[sizeof asc + 64] = {0};
    memcpy(frame, asc, sizeof asc);
    cr_assert_eq(kith__wire_decode(frame, sizeof frame, &d), KITH_EMALFORMED);
    kith__wire_clear(&d);
    frame[4] = 0x02, frame[5] = 0x01; /* descending now: well formed */
    cr_assert_eq(kith__wire_decode(frame, sizeof frame, &d), 0);
    kith__wire_clear(&d);
    frame[7] = 0x3f; /* 63 bytes of chains for two seqs */
    cr_assert_eq(kith__wire_decode(frame, sizeof frame - 1, &d), KITH_EMALFORMED);
    kith__wire_clear(&d);

    /* FETCHED: with a batch, and with none */
    uint8_t batch[5] = {1, 2, 3, 4, 5};
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_FETCHED;
    m.origin = 9;
    m.after = 12;
    m.data = batch;
    m.len = sizeof batch;
    n = encode(&m, &buf);
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    cr_assert_eq(d.type, KITH__MSG_FETCHED);
    cr_assert_eq(d.origin, 9);
    cr_assert_eq(d.after, 12);
    cr_assert_eq(d.len, 5);
    cr_assert_arr_eq(d.data, batch, 5);
    kith__wire_clear(&d);
    free(buf);
    m.data = NULL;
    m.len = 0;
    n = encode(&m, &buf);
    cr_assert_eq(kith__wire_decode(buf, n, &d), 0);
    cr_assert_eq(d.len, 0);
    cr_assert_null(d.data);
    kith__wire_clear(&d);
    free(buf);
}
