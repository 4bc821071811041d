/*
 * fuzz_wire.c — libFuzzer target for the sync protocol's frame decoder (spec/protocol.md
 * "Messages"), guard included. Any input must be refused or decoded without a crash, a leak
 * or a large allocation; an accepted message must encode again to a frame that decodes to
 * the same message. Seeds: tests/fuzz/corpus/wire/.
 */
#include "wire.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kith__msg m, again;
    msgpack_sbuffer sb;

    if (kith__wire_decode(data, size, &m) != 0) {
        kith__wire_clear(&m);
        return 0;
    }
    msgpack_sbuffer_init(&sb);
    if (kith__wire_encode(&m, &sb) != 0 || kith__wire_decode(sb.data, sb.size, &again) != 0)
        abort(); /* accepted but not re-encodable */
    if (again.type != m.type || again.seq != m.seq || again.id != m.id || again.nonce != m.nonce ||
        again.vv.len != m.vv.len || again.len != m.len || again.proto != m.proto ||
        again.clock_ms != m.clock_ms || (again.heads == NULL) != (m.heads == NULL) ||
        (m.heads && memcmp(again.heads, m.heads, m.vv.len * KITH_HASH_BYTES) != 0) ||
        (m.len && memcmp(again.data, m.data, m.len) != 0) ||
        (m.vv.len && memcmp(again.vv.entries, m.vv.entries, m.vv.len * sizeof(kith_dot)) != 0))
        abort(); /* the round trip changed the message */
    /* protocol 4's group, JOIN and JOINED */
    if ((again.group == NULL) != (m.group == NULL) ||
        (m.group && memcmp(again.group, m.group, KITH__WIRE_GROUP_BYTES) != 0) ||
        (again.gdigest == NULL) != (m.gdigest == NULL) ||
        (m.gdigest && memcmp(again.gdigest, m.gdigest, KITH_HASH_BYTES) != 0) ||
        (m.join_pk && memcmp(again.join_pk, m.join_pk, KITH_PUBKEY_BYTES) != 0) ||
        (m.mac && memcmp(again.mac, m.mac, KITH_HASH_BYTES) != 0) || again.name_len != m.name_len ||
        (m.name_len && memcmp(again.name, m.name, m.name_len)) || again.nrecords != m.nrecords)
        abort();
    /* protocol 5's proof digest, FETCH and FETCHED */
    if ((again.pdigest == NULL) != (m.pdigest == NULL) ||
        (m.pdigest && memcmp(again.pdigest, m.pdigest, KITH_HASH_BYTES) != 0) ||
        again.origin != m.origin || again.after != m.after || again.nsamples != m.nsamples ||
        (m.nsamples && (memcmp(again.samples, m.samples, m.nsamples * sizeof *m.samples) != 0 ||
                        memcmp(again.chains, m.chains, m.nsamples * KITH_HASH_BYTES) != 0)))
        abort();
    for (size_t i = 0; i < m.nrecords; i++)
        if (again.record_lens[i] != m.record_lens[i] ||
            memcmp(again.records[i], m.records[i], m.record_lens[i]) != 0)
            abort();
    kith__wire_clear(&again);
    kith__wire_clear(&m);
    msgpack_sbuffer_destroy(&sb);
    return 0;
}
