/*
 * group.h — device groups, the pure part (spec/groups.md, decisions.md D-14): the signed
 * group record (encode, sign, decode, verify) and the membership fold, a deterministic function
 * from a set of records to the members of one group, their names and the removed keys with
 * their cut-offs. Nothing here reads a clock, a file or randomness: records, keys and the group
 * id come in as arguments, so the store, the sync and the model checker all run the same code.
 *
 * Byte layout of a signed record (spec/encoding.md "Group records"):
 *
 *   offset    size      content
 *   0         len - 64  the encoding: one canonical msgpack array (below)
 *   len - 64  64        Ed25519 over "kith-gr1" || encoding
 *
 *   encoding = [kind, group bin(16), author bin(32), parents [bin(32)...], time_ms, body...]
 *   FOUND  1  body: device name str, group name str     (group field all zero, no parents)
 *   ADD    2  body: member bin(32), device name str
 *   REMOVE 3  body: member bin(32), cutoff uint
 *   4..63     critical kinds not known yet: refused with KITH_EVERSION (GRP-3)
 *   64..127   ancillary kinds (RENAME will be 64): any canonical body, no effect here (GRP-3)
 *   CUTHEAD 65 body: member bin(32), seq uint, chain bin(32), head signature bin(64): the
 *             member's own head signature over (its id, seq, chain) as kith__head_sign makes
 *             it, checked with the record's signature (GRP-24)
 *
 * The record's hash is BLAKE2b-256 of all its bytes, encoding and signature (GRP-2).
 */
#ifndef KITH_GROUP_H
#define KITH_GROUP_H

#include "core.h"

#define KITH__GROUP_ID_BYTES 16
#define KITH__GROUP_CONTEXT "kith-gr1"
#define KITH__GROUP_MAX_PARENTS 64u
#define KITH__GROUP_MAX_NAME 63u      /* bytes of UTF-8, no NUL, at least 1 */
#define KITH__GROUP_MAX_RECORD 4096u  /* bytes of a signed record, signature included */
#define KITH__GROUP_MAX_RECORDS 8192u /* distinct records one fold holds */
#define KITH__GROUP_MAX_TIME ((1ull << 48) - 1)

enum kith__group_kind {
    KITH__GROUP_FOUND = 1,
    KITH__GROUP_ADD = 2,
    KITH__GROUP_REMOVE = 3,
    KITH__GROUP_CRITICAL_MAX = 63,  /* 4..63: a kind this kith cannot judge (EVERSION) */
    KITH__GROUP_ANCILLARY_MIN = 64, /* 64..127: judged as any record, no effect on members */
    KITH__GROUP_CUTHEAD = 65,       /* a removed member's signed head at a cut-off (GRP-24) */
    KITH__GROUP_ANCILLARY_MAX = 127
};

/* A decoded record, or one to encode. Views point into the bytes decoded or into the caller's
 * memory when encoding. */
struct kith__group_rec {
    uint8_t kind;                        /* enum kith__group_kind, or 64..127 */
    uint8_t group[KITH__GROUP_ID_BYTES]; /* zero in a FOUND */
    uint8_t author[KITH_PUBKEY_BYTES];   /* the signer */
    uint32_t nparents;                   /* 0 for FOUND, 1..64 otherwise */
    const uint8_t *parents; /* nparents hashes, ascending; read with kith__group_parent */
    uint32_t parent_stride; /* bytes from one to the next: 32 (0 means 32), 34 decoded */
    uint64_t time_ms;       /* the author's clock; shown, never judged */
    uint8_t member[KITH_PUBKEY_BYTES]; /* ADD, REMOVE: the key added or removed */
    const char *name;                  /* FOUND: founder's device; ADD: member's */
    uint32_t name_len;
    const char *group_name; /* FOUND: the group's name */
    uint32_t group_name_len;
    uint64_t cutoff; /* REMOVE: last seq of member's ops it accepts; CUTHEAD: the head's seq */
    uint8_t chain[KITH_HASH_BYTES];   /* CUTHEAD: the member's chain at seq `cutoff` */
    uint8_t head_sig[KITH_SIG_BYTES]; /* CUTHEAD: the member's signature of that head */
};

/* The i-th parent of r. */
static inline const uint8_t *
kith__group_parent(const struct kith__group_rec *r, uint32_t i)
{
    return r->parents + (size_t)i * (r->parent_stride ? r->parent_stride : KITH_HASH_BYTES);
}

/* Append the canonical encoding of r (unsigned). 0, KITH_EINVAL (a field out of its bounds,
 * parents not strictly ascending), KITH_ENOMEM. Of the ancillary kinds only CUTHEAD can be
 * built. */
int kith__group_encode(const struct kith__group_rec *r, struct kith__wbuf *out);

/*
 * Build a signed record: the encoding of r, then the Ed25519 signature under the context
 * "kith-gr1" with `sk` (libsodium's 64-byte form, whose public half must be r->author), and
 * its hash in `hash`. Appends to `out`. 0, KITH_EINVAL, KITH_ETOOBIG (over 4 KiB), KITH_ENOMEM.
 */
int kith__group_build(const struct kith__group_rec *r, const uint8_t sk[64], struct kith__wbuf *out,
                      uint8_t hash[KITH_HASH_BYTES]);

/*
 * Decode a signed record of `len` bytes without checking its signature: structure, canonical
 * form, bounds. Views in *out point into p. Returns 0, KITH_EMALFORMED, KITH_ETOOBIG (over
 * 4 KiB), KITH_EVERSION (a critical kind this kith does not know); `why` (may be NULL) gets a
 * one-line reason.
 */
int kith__group_decode(const uint8_t *p, size_t len, struct kith__group_rec *out, char *why,
                       size_t why_cap);

/* Decode as kith__group_decode, then check the signature against the author's key, and a
 * CUTHEAD's head signature against its member's key: KITH_EBADSIG when one does not verify. */
int kith__group_verify(const uint8_t *p, size_t len, struct kith__group_rec *out, char *why,
                       size_t why_cap);

/* The record's hash: BLAKE2b-256 over all `len` bytes, signature included (GRP-2). */
void kith__group_hash(const uint8_t *p, size_t len, uint8_t out[KITH_HASH_BYTES]);

/* ---- the fold (core/group_fold.c; spec/groups.md GRP-4 .. GRP-12) --------------------- */

/* What the fold made of a record. */
enum kith__group_status {
    KITH__GROUP_LIVE = 0,  /* valid, and it counts */
    KITH__GROUP_VOID,      /* valid, but its author's admission is overtaken (GRP-9) */
    KITH__GROUP_WAITING,   /* a parent is not held, or cannot be judged yet */
    KITH__GROUP_MALFORMED, /* does not decode */
    KITH__GROUP_BADSIG,    /* signature does not verify */
    KITH__GROUP_UNKNOWN,   /* a critical kind this kith does not know (GRP-3) */
    KITH__GROUP_FOREIGN,   /* of another group */
    KITH__GROUP_BADPARENT, /* a parent is invalid */
    KITH__GROUP_NOTMEMBER  /* its author was not a member in its causal past */
};

/* Is a record of this status part of the group's DAG (LIVE or VOID)? */
static inline bool
kith__group_status_valid(enum kith__group_status s)
{
    return s == KITH__GROUP_LIVE || s == KITH__GROUP_VOID;
}

const char *kith__group_status_name(enum kith__group_status s);

/* One current member. Views valid until the next kith__group_add or kith__group_free. */
struct kith__group_member {
    uint8_t pk[KITH_PUBKEY_BYTES];
    const char *name; /* from the admitting record, not NUL-terminated */
    uint32_t name_len;
    uint8_t added_by[KITH_PUBKEY_BYTES]; /* the admitting record's author (itself if founder) */
    uint8_t via[KITH_HASH_BYTES];        /* the admitting record (GRP-11) */
    uint64_t time_ms;                    /* the admitting record's time */
};

/* One removed key: never a member again (GRP-8). */
struct kith__group_removed {
    uint8_t pk[KITH_PUBKEY_BYTES];
    uint64_t cutoff; /* the last seq of its ops that stays accepted (GRP-10) */
};

/* One record held, as the fold judged it. */
struct kith__group_entry {
    uint8_t hash[KITH_HASH_BYTES];
    const uint8_t *bytes; /* the signed record, owned by the fold */
    size_t len;
    enum kith__group_status status;
    const char *why; /* a static one-line reason when not LIVE, else "" */
};

struct kith__group; /* the fold state: records held and the last fold's results */

/* A fold for the group whose FOUND has a hash starting with `gid`. 0 or KITH_ENOMEM; on
 * failure *out is NULL. Released with kith__group_free (which takes NULL). */
int kith__group_new(const uint8_t gid[KITH__GROUP_ID_BYTES], struct kith__group **out);
void kith__group_free(struct kith__group *g);

/*
 * Hold a copy of one signed record (any bytes: the fold judges them). Decodes and verifies it
 * once, here. Returns 0 when new, 1 when a record with the same hash is held already (nothing
 * changes), KITH_ETOOBIG (over 4 KiB, or more than 8192 records held), KITH_ENOMEM.
 * The results of the last fold stay as they were until kith__group_fold runs again.
 */
int kith__group_add(struct kith__group *g, const uint8_t *p, size_t len);

/* Recompute every result from the records held (GRP-4 .. GRP-12). 0 or KITH_ENOMEM (the
 * previous results are then cleared: nobody is a member). */
int kith__group_fold(struct kith__group *g);

/* Queries on the last fold. Arrays are sorted by key or hash; views live until the next add,
 * fold or free. */
size_t kith__group_count(const struct kith__group *g);
const struct kith__group_entry *kith__group_entry(const struct kith__group *g, size_t i);
const struct kith__group_entry *kith__group_find(const struct kith__group *g,
                                                 const uint8_t hash[KITH_HASH_BYTES]);
bool kith__group_is_member(const struct kith__group *g, const uint8_t pk[KITH_PUBKEY_BYTES]);
/* Is pk removed? Then *cutoff gets its cut-off (GRP-10). */
bool kith__group_cutoff(const struct kith__group *g, const uint8_t pk[KITH_PUBKEY_BYTES],
                        uint64_t *cutoff);
const struct kith__group_member *kith__group_members(const struct kith__group *g, size_t *n);
const struct kith__group_removed *kith__group_removed(const struct kith__group *g, size_t *n);
/* The valid records no valid record names as a parent: the parents of the next record. */
const uint8_t (*kith__group_heads(const struct kith__group *g, size_t *n))[KITH_HASH_BYTES];
/* BLAKE2b-256 over the hashes of the valid records, ascending (GRP-12). */
void kith__group_digest(const struct kith__group *g, uint8_t out[KITH_HASH_BYTES]);
/* Does some held record have a critical kind this kith does not know (GRP-3)? */
bool kith__group_needs_upgrade(const struct kith__group *g);

#endif /* KITH_GROUP_H */
