/*
 * wire.h — the sync protocol's messages (spec/protocol.md "Messages"): one msgpack array per
 * ZeroMQ frame, the first element naming the type. This header is the one table of the wire:
 * the limits, the message struct the session works with, the encoder and the decoder.
 *
 * Decoding never trusts a length field: kith__wire_guard walks the raw bytes first and refuses
 * any count larger than the bytes left, nesting deeper than KITH__WIRE_MAX_DEPTH and more
 * objects than the frame could hold, before msgpack-c reserves anything (DESIGN "Pitfalls").
 * Then the decoder checks the exact shape of each message type: element count, each type,
 * each size; a frame that is not exactly one well-formed message is KITH_EMALFORMED.
 *
 *  type  name     elements (after the type)                                     frame limit
 *  1     HELLO    proto u32, id u64, pk bin32, schema_v u64, schema bin32, vv,   256 KiB
 *                 and in protocol 3: heads bin(32 x vv entries), clock u64
 *                 and in protocol 4 also: group bin16, gdigest bin32
 *                 and in protocol 5 also: pdigest bin32
 *  2     WELCOME  as HELLO                                                       256 KiB
 *  3     REFUSE   code int (a KITH_E* number), reason str <= 200                 64 KiB
 *  4     BATCH    seq u64 >= 1, has_more bool, sender vv, batch bin             16 MiB
 *  5     ACK      seq u64 >= 1, vv                                               64 KiB
 *  6     DONE     vv                                                             64 KiB
 *  7     PING     nonce u64                                                      64 KiB
 *  8     PONG     nonce u64                                                      64 KiB
 *  9     BYE      (none)                                                         64 KiB
 *  10    JOIN     joiner pk bin32, device name str 1..63, mac bin32              64 KiB
 *  11    JOINED   group bin16, records [bin 1..4096, ...] (1..4096 of them)      16 MiB
 *  12    FETCH    origin u64, seqs [u64, ...] (1..64, strictly descending, >= 1),  64 KiB
 *                 chains bin(32 x seqs)                          (protocol 5 only)
 *  13    FETCHED  origin u64, after u64, batch bin (0 bytes: none)  (protocol 5)  16 MiB
 *
 * vv: a flat array [origin, seq, origin, seq, ...] of u64, origins strictly ascending, every
 * seq >= 1, at most KITH__WIRE_MAX_ORIGINS pairs. heads: the chain hash after each vv entry's
 * seq, 32 bytes each in vv order, in one bin of exactly 32 x (vv entries) bytes. clock: the
 * sender's wall clock in ms since 1970. group: the sender's group id, 16 zero bytes when it is
 * in none; gdigest: the digest of its group records (spec/groups.md GRP-12), zeros likewise.
 * pdigest: the digest of the fork proofs held (spec/encoding.md §10, "Digest"), zeros when
 * none. FETCH: "this replica's chain hash of `origin` after seqs[i] is chains[i]"; FETCHED
 * answers it with origin's run from seq after + 1 (after: the highest of the seqs whose chain
 * the answerer holds too, or 0) as a batch of format 3 (spec/protocol.md NET-33).
 * JOIN's mac: keyed BLAKE2b-256 (key: the invite's secret) of inviter pk || joiner pk || name
 * (spec/protocol.md NET-30); JOINED's records are the inviter's group records, signed.
 *
 * The one thing every protocol version keeps is where HELLO and WELCOME say which version
 * they speak: element 1, a u32. This kith speaks protocols 2 (kith 0.2, without heads and
 * clock), 3 (kith 0.3, without group and gdigest), 4 (kith 0.4, without pdigest) and 5,
 * each with its own exact layout; a HELLO or
 * WELCOME of any other version is decoded that far and no further, whatever its layout (protocol
 * 1's had no schema_v), so that the session can refuse it by its version and say so (NET-7) rather
 * than as a malformed frame; the encoder writes such a message as [type, proto] alone.
 */
#ifndef KITH_NET_WIRE_H
#define KITH_NET_WIRE_H

#include "kith.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KITH__WIRE_PROTO 5u                /* newest protocol version spoken here (NET-7) */
#define KITH__WIRE_PROTO_MIN 2u            /* oldest, spoken to a peer of kith 0.2 */
#define KITH__WIRE_MAX_FRAME (16u << 20)   /* any frame; ZMQ_MAXMSGSIZE on every socket */
#define KITH__WIRE_MAX_CONTROL (64u << 10) /* every frame but BATCH, HELLO, WELCOME */
#define KITH__WIRE_MAX_HELLO (256u << 10)  /* HELLO, WELCOME: 4096 x (vv pair + head) fit */
#define KITH__WIRE_MAX_ORIGINS 4096u       /* entries of a version vector */
#define KITH__WIRE_MAX_REASON 200u         /* bytes of a REFUSE reason */
#define KITH__WIRE_MAX_DEPTH 3             /* message array > vv array: depth 2 used */
#define KITH__WIRE_BATCH_OPS 16384u        /* ops per batch asked of kith_batch_create (NET-8) */
#define KITH__WIRE_BATCH_BYTES (4u << 20)  /* encoded bytes likewise */
#define KITH__WIRE_WINDOW 2u               /* batches in flight, unacknowledged (NET-8) */
#define KITH__WIRE_GROUP_BYTES 16u         /* a group id */
#define KITH__WIRE_MAX_NAME 63u            /* bytes of a device name in JOIN */
#define KITH__WIRE_MAX_RECORD 4096u        /* bytes of one group record in JOINED */
#define KITH__WIRE_MAX_RECORDS 4096u       /* records in one JOINED */
#define KITH__WIRE_MAX_SAMPLES 64u         /* seqs in one FETCH (NET-33) */

enum kith__msg_type {
    KITH__MSG_HELLO = 1,
    KITH__MSG_WELCOME = 2,
    KITH__MSG_REFUSE = 3,
    KITH__MSG_BATCH = 4,
    KITH__MSG_ACK = 5,
    KITH__MSG_DONE = 6,
    KITH__MSG_PING = 7,
    KITH__MSG_PONG = 8,
    KITH__MSG_BYE = 9,
    KITH__MSG_JOIN = 10,
    KITH__MSG_JOINED = 11,
    KITH__MSG_FETCH = 12, /* 14 and up are left for later messages */
    KITH__MSG_FETCHED = 13
};

/*
 * One message. After kith__wire_decode, pk, schema_digest, heads, data and reason are views
 * into the frame (or into `unpacked`), valid until kith__wire_clear; vv.entries is owned by
 * the message, and so are JOINED's records and record_lens arrays (their bytes are views). A
 * HELLO or WELCOME of a protocol this kith does not speak carries its type and proto alone
 * (pk and schema_digest NULL); one of protocol 2 has no heads (NULL) and no clock (0); one of
 * protocol 2 or 3 has no group and gdigest (NULL). For encoding the caller fills the fields its
 * type and proto use; vv and heads are borrowed.
 */
struct kith__msg {
    int type;                     /* enum kith__msg_type */
    uint32_t proto;               /* HELLO, WELCOME */
    uint64_t id;                  /* HELLO, WELCOME: the sender's replica id */
    const uint8_t *pk;            /* HELLO, WELCOME: KITH_PUBKEY_BYTES */
    uint64_t schema_version;      /* HELLO, WELCOME: the sender's kith_schema_info */
    const uint8_t *schema_digest; /* HELLO, WELCOME: KITH_HASH_BYTES, likewise */
    kith_vv vv;                   /* HELLO, WELCOME, BATCH (sender's), ACK, DONE */
    const uint8_t *heads;         /* HELLO, WELCOME of protocol 3: KITH_HASH_BYTES per vv entry,
                                     the chain hash after that entry's seq */
    uint64_t clock_ms;            /* HELLO, WELCOME of protocol 3: the sender's wall clock */
    const uint8_t *group;         /* HELLO, WELCOME of protocol 4: KITH__WIRE_GROUP_BYTES (NULL
                                     when encoding: zeros); JOIN: unused; JOINED: the group */
    const uint8_t *gdigest;       /* HELLO, WELCOME of protocol 4: KITH_HASH_BYTES (NULL when
                                     encoding: zeros) */
    const uint8_t *pdigest;       /* HELLO, WELCOME of protocol 5: KITH_HASH_BYTES, the digest
                                     of the proofs held (NULL when encoding: zeros) */
    uint64_t origin;              /* FETCH, FETCHED */
    size_t nsamples;              /* FETCH: how many seqs */
    const uint64_t *samples;      /* FETCH: the seqs (decoded: owned) */
    const uint8_t *chains;        /* FETCH: KITH_HASH_BYTES per seq, a view */
    uint64_t *owned_samples;
    uint64_t after;                /* FETCHED: the run starts at after + 1 */
    const uint8_t *join_pk;        /* JOIN: the joiner's key, KITH_PUBKEY_BYTES */
    const char *name;              /* JOIN: the joiner's device name, not NUL-terminated */
    size_t name_len;               /* JOIN */
    const uint8_t *mac;            /* JOIN: KITH_HASH_BYTES */
    size_t nrecords;               /* JOINED: how many records */
    const uint8_t *const *records; /* JOINED: each record's bytes (decoded: owned, views) */
    const size_t *record_lens;     /* JOINED: each record's length */
    const uint8_t **owned_records; /* decoder's: the arrays records/record_lens point at */
    size_t *owned_lens;
    uint64_t seq;              /* BATCH, ACK */
    bool has_more;             /* BATCH */
    const uint8_t *data;       /* BATCH, FETCHED: the kith batch bytes (FETCHED: may be none) */
    size_t len;                /* BATCH, FETCHED: their length */
    int32_t code;              /* REFUSE */
    const char *reason;        /* REFUSE: not NUL-terminated */
    size_t reason_len;         /* REFUSE */
    uint64_t nonce;            /* PING, PONG */
    msgpack_unpacked unpacked; /* decoder state the views may point into */
    bool has_unpacked;
};

/* A short name of a message type for logs ("HELLO"); "?" for anything else. */
const char *kith__wire_name(int type);

/*
 * Check that `p` holds exactly one msgpack object whose every length and count fits in the
 * bytes that follow it, nested at most `max_depth` deep, with at most `max_objects` objects.
 * Returns 0 or KITH_EMALFORMED. Reads nothing outside [p, p + len).
 */
int kith__wire_guard(const uint8_t *p, size_t len, int max_depth, size_t max_objects);

/*
 * Encode `m` into `out` (initialised by the caller with msgpack_sbuffer_init; appended to).
 * Returns 0, KITH_EINVAL (a field out of its limits: unknown type, vv too long, reason too
 * long, batch too large), KITH_ENOMEM.
 */
int kith__wire_encode(const struct kith__msg *m, msgpack_sbuffer *out);

/*
 * Decode one frame into `m` (which the caller clears with kith__wire_clear afterwards, also
 * on failure). Returns 0, KITH_ETOOBIG (frame above its type's limit), KITH_EMALFORMED
 * (anything else wrong: guard, shape, types, sizes, vv order, heads not 32 bytes for each vv
 * entry, a JOIN name that is empty, too long or holds a NUL, a JOINED without records or
 * with an empty or oversized one, a FETCH without seqs, with more than 64, a seq of 0 or seqs
 * not strictly descending, or chains not 32 bytes a seq), KITH_ENOMEM.
 */
int kith__wire_decode(const void *frame, size_t len, struct kith__msg *m);

/* Release what a decoded message owns; takes a zeroed or cleared message. */
void kith__wire_clear(struct kith__msg *m);

/* ---- version vectors owned by net/ (entries from malloc, released with kith__netvv_clear) -- */

/* Raise dst to the entry-wise maximum of dst and src. 0 or KITH_ENOMEM. */
int kith__netvv_merge(kith_vv *dst, const kith_vv *src);
/* Replace dst by a copy of src. 0 or KITH_ENOMEM. */
int kith__netvv_set(kith_vv *dst, const kith_vv *src);
/* Does a hold some op that b lacks (some origin with a higher seq in a)? */
bool kith__netvv_ahead(const kith_vv *a, const kith_vv *b);
bool kith__netvv_equal(const kith_vv *a, const kith_vv *b);
void kith__netvv_clear(kith_vv *vv);

#endif /* KITH_NET_WIRE_H */
