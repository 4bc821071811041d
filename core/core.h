/*
 * core.h — what core/ offers the layers above it: the hybrid logical clock, version vectors,
 * dot sets, the LWW order, the schema, the op and commit codec, batches, and the hash chain
 * with its signatures. Everything here is a pure function over memory: no file, socket, clock
 * or randomness (time, keys and random bytes arrive as arguments), so tests replay any
 * schedule. spec/data-model.md and spec/encoding.md are the reference for every rule here.
 */
#ifndef KITH_CORE_H
#define KITH_CORE_H

#include "kith.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- hybrid logical clock (spec/data-model.md "Time") --------------------------------- */

#define KITH__HLC_MS(h) ((h) >> 16)
#define KITH__HLC_MAKE(ms, counter) (((uint64_t)(ms) << 16) | ((uint64_t)(counter)&0xffffu))
/* An op more than this far ahead of the local wall clock waits (DESIGN "Clock skew"). */
#define KITH__HLC_MAX_AHEAD_MS 60000u

/* The timestamp of a local write: max(wall_ms << 16, last + 1). */
uint64_t kith__hlc_tick(uint64_t last, uint64_t wall_ms);
/* The clock after seeing a remote timestamp: max(local, remote). */
uint64_t kith__hlc_observe(uint64_t local, uint64_t remote);
/* Is `hlc` too far ahead of `wall_ms` to be applied now? */
bool kith__hlc_too_far_ahead(uint64_t hlc, uint64_t wall_ms);

/* ---- version vectors (kith_vv, entries sorted by origin, no seq 0 entries) ------------- */

uint64_t kith__vv_get(const kith_vv *vv, uint64_t origin);
/* Raise vv[origin] to seq if it is lower (inserting in order). 0 or KITH_ENOMEM. */
int kith__vv_raise(kith_vv *vv, uint64_t origin, uint64_t seq);
/* Does a hold everything b holds? */
bool kith__vv_dominates(const kith_vv *a, const kith_vv *b);
/* Ops a holds that b lacks: sum over origins of max(0, a[o] - b[o]). */
uint64_t kith__vv_missing(const kith_vv *a, const kith_vv *b);
int kith__vv_copy(kith_vv *dst, const kith_vv *src);

/* ---- the LWW order: (hlc, origin, seq), a total order on writes ------------------------- */

/* < 0, 0, > 0 as write a is older than, the same as, newer than write b. */
int kith__lww_cmp(uint64_t hlc_a, kith_dot a, uint64_t hlc_b, kith_dot b);

/* ---- dot sets (the live dots of one OR-set element, or of a document's membership) ------
 * Stored as a sorted array of 16-byte big-endian (origin, seq) pairs: this is also their
 * byte form in LMDB values.
 */
#define KITH__DOT_BYTES 16
void kith__dot_put(uint8_t out[KITH__DOT_BYTES], kith_dot d);
kith_dot kith__dot_get(const uint8_t in[KITH__DOT_BYTES]);
/*
 * Apply one OR-set op to the dot set `in` (n dots): drop the `nobs` observed dots, and when
 * `add` is set, also drop dots of add->origin with a lower seq (its author saw them) and
 * insert *add. Writes the result to `out` (room for n + 1 dots) and returns its count.
 */
size_t kith__dots_apply(const uint8_t *in, size_t n, const kith_dot *observed, size_t nobs,
                        const kith_dot *add, uint8_t *out);

/* ---- document ids -------------------------------------------------------------------- */

void kith__docid_from_dot(kith_docid *id, kith_dot d);
kith_dot kith__docid_to_dot(const kith_docid *id);

/* ---- the schema (core/schema.c) ------------------------------------------------------- */

/* Collection and field numbers are their indexes in kith_schema(), from 0; fields of a
 * collection from 1 (0 is the document's membership in op encodings). */
int kith__schema_coll(const char *name);                    /* index, or KITH_ENOTFOUND */
int kith__schema_field(int coll, const char *name);         /* number >= 1, or KITH_ENOTFOUND */
const kith_collection_def *kith__schema_coll_def(int coll); /* NULL if out of range */
const kith_field_def *kith__schema_field_def(int coll, int field); /* NULL if out of range */
int kith__schema_ncoll(void);
/*
 * Check a value for a field: type, UTF-8 (strings, dates, enums, set elements), no NUL in
 * strings, length, enum membership, date syntax, required fields not NULL. Returns 0, or
 * KITH_ESCHEMA with a one-line reason in `why` ("email: not valid UTF-8").
 * References are checked for type only (whether the document exists is the store's part).
 */
int kith__schema_check(int coll, int field, const kith_value *v, char *why, size_t why_cap);
/* Check one element of a SET field likewise. */
int kith__schema_check_elem(int coll, int field, const char *elem, size_t len, char *why,
                            size_t why_cap);

/* ISO 8601 parse and format (core/timefmt.c). parse: 0 or KITH_EINVAL. */
int kith__time_parse(const char *text, int64_t *ms);
void kith__time_format(int64_t ms, char out[32]);
bool kith__utf8_valid(const char *s, size_t len);

/* ---- ops and commits (core/codec.c; spec/encoding.md "Commit") ------------------------- */

/* A name an op uses (a collection or a field), as a commit's name table holds it: a view
 * into the commit's bytes or into memory of whoever built the commit. */
struct kith__name {
    const char *ptr;
    uint32_t len;
};

/* A decoded op. Views (strings, observed dots) point into the encoded bytes or the arena
 * passed to the decoder. An op names its collection and field by their place in the commit's
 * name table (`cname`, `fname`); `coll` and `field` are the store's local numbers for them,
 * filled by the store (store/names.c) and by the in-memory model, never by the codec. */
struct kith__op {
    uint8_t kind;             /* kith_op_kind */
    uint8_t coll;             /* local collection number (the store's or the model's) */
    uint8_t field;            /* local field number (>= 1) for field ops; 0 for DOC_* */
    uint16_t cname;           /* the collection: index into the commit's names */
    uint16_t fname;           /* the field: index into the commit's names (field ops only) */
    kith_dot doc;             /* the document: the dot that created it */
    kith_dot replaced;        /* FIELD_SET: the dot it overwrote at its author, {0,0} if none */
    kith_value value;         /* FIELD_SET: the value; SET_*: the element as KITH_TYPE_STRING;
                                 COUNTER_ADD: the increment as KITH_TYPE_INT */
    const kith_dot *observed; /* SET_*, FLAG_* and DOC_*: the dots its author had seen */
    uint32_t nobserved;
};

/* A commit: the ops of one local transaction, with consecutive seqs from first_seq. */
struct kith__commit {
    uint64_t origin;
    uint64_t first_seq;
    uint64_t hlc;   /* one timestamp for the whole commit */
    uint8_t format; /* 2, or 1 for a commit of the first format (read, never written) */
    uint32_t nops;
    struct kith__op *ops;
    uint32_t nnames; /* the collection and field names its ops use */
    const struct kith__name *names;
};

/* Does the op kind change a field (and so name one)? */
static inline bool
kith__op_has_field(unsigned kind)
{
    return kind == KITH_OP_FIELD_SET || kind >= KITH_OP_SET_ADD;
}

/* The names of format 1 (spec/encoding.md "Format 1"): the built-in CRM collections and
 * fields, numbered as that format numbers them. Index 0..2 are the collections; the field
 * numbered f (from 1) of collection c is at kith__v1_field(c, f), -1 when there is none. */
extern const struct kith__name kith__v1_names[];
int kith__v1_field(unsigned coll, unsigned field);

/* The indexes a replica of format 1 keeps, numbered 1..3 in this order, by collection. */
struct kith__v1_index {
    unsigned coll;
    struct kith__name name;
};
extern const struct kith__v1_index kith__v1_indexes[3];
/* The format-1 number of a collection (0..2) or field (1..) by name, -1 when none. */
int kith__v1_coll_number(const char *name, size_t len);
int kith__v1_field_number(unsigned coll, const char *name, size_t len);

/* A growable output buffer. */
struct kith__wbuf {
    uint8_t *data;
    size_t len, cap;
};

int kith__wbuf_reserve(struct kith__wbuf *b, size_t more); /* 0 or KITH_ENOMEM */
int kith__wbuf_put(struct kith__wbuf *b, const void *p, size_t n);
void kith__wbuf_free(struct kith__wbuf *b);

struct msgpack_zone; /* msgpack-c's (msgpack/zone.h); core.h does not include msgpack.h */

/* A bump allocator for decoded views, reset between commits; no per-op malloc. Zeroed before
 * first use, released with kith__arena_free. */
struct kith__arena {
    uint8_t *data;
    size_t used, cap;
    struct msgpack_zone *zone; /* the commit decoder's scratch zone, kept across resets */
};

void *kith__arena_alloc(struct kith__arena *a, size_t n); /* NULL on ENOMEM */
void kith__arena_reset(struct kith__arena *a);
void kith__arena_free(struct kith__arena *a);
/* The arena's msgpack zone, emptied, with room for `size` bytes in its one chunk; it stays
 * the arena's (reset keeps it, kith__arena_free frees it). NULL when out of memory. */
struct msgpack_zone *kith__arena_zone(struct kith__arena *a, size_t size);

/* ---- msgpack reading and writing shared by the codec and batches (core/util.c) ---------- */

/* A msgpack_packer write callback that appends to the struct kith__wbuf in `data`: 0 or -1. */
int kith__wbuf_write(void *data, const char *buf, size_t len);

/* The msgpack types kith encodings use; everything else (maps, floats, ext) is refused. */
enum kith__mp_type {
    KITH__MP_UINT, /* v: the value */
    KITH__MP_NINT, /* v: the (negative) value as two's complement int64 */
    KITH__MP_NIL,
    KITH__MP_BOOL, /* v: 0 or 1 */
    KITH__MP_STR,  /* v: length in bytes; the bytes follow the header */
    KITH__MP_BIN,  /* v: length in bytes; the bytes follow the header */
    KITH__MP_ARRAY /* v: element count */
};

struct kith__mp_head {
    enum kith__mp_type type;
    uint64_t v;
    size_t size; /* bytes of the header itself */
};

/*
 * Read the one msgpack header at p (n bytes available). Refuses (KITH_EMALFORMED) a header cut
 * short, a type kith never writes, and any header not in the shortest form msgpack-c's packer
 * writes (spec/encoding.md "Canonical msgpack"). Does not look at what follows the header.
 */
int kith__mp_head(const uint8_t *p, size_t n, struct kith__mp_head *h);

/* Reading a value the guard (kith__mp_guard) has proved whole, header by header: the group
 * record and fork proof decoders share it. */
struct kith__mp_cursor {
    const uint8_t *p;
    size_t left;
};

/* The next header, which must be of `type`; the guard has run, so only the type can fail. */
static inline bool
kith__mp_next(struct kith__mp_cursor *c, enum kith__mp_type type, uint64_t *v)
{
    struct kith__mp_head h;
    if (kith__mp_head(c->p, c->left, &h) < 0 || h.type != type)
        return false;
    c->p += h.size;
    c->left -= h.size;
    *v = h.v;
    return true;
}

/*
 * The guard run before msgpack-c sees untrusted bytes: walk the one object that must cover
 * p[0..len) exactly, with kith__mp_head's rules, every count and length no larger than the
 * bytes left, arrays nested at most max_depth deep (the outermost is depth 1) and at most
 * max_objects objects in all. 0 with the count in *nobjects, KITH_EMALFORMED or KITH_ETOOBIG.
 */
int kith__mp_guard(const uint8_t *p, size_t len, unsigned max_depth, size_t max_objects,
                   size_t *nobjects);

/* Limits on anything decoded (spec/encoding.md "Limits"). */
#define KITH__MAX_COMMIT_OPS 65536u
#define KITH__MAX_VALUE_BYTES 65536u
#define KITH__MAX_OBSERVED 4096u
#define KITH__MAX_ELEM_BYTES 493u   /* a set element: an LMDB key holds it with 18 bytes more */
#define KITH__MAX_NAME_BYTES 64u    /* a collection or field name: [A-Za-z][A-Za-z0-9_]* */
#define KITH__MAX_COMMIT_NAMES 512u /* distinct names in one commit */
/* Times are accepted from 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z. */
#define KITH__TIME_MIN_MS (-62135596800000LL)
#define KITH__TIME_MAX_MS (253402300799999LL)

/* Is this a name a collection, field or index may have? */
bool kith__name_valid(const char *name, size_t len);
#define KITH__MAX_BATCH_BYTES (64u << 20)

/* Append the canonical encoding of `c` (origin and first_seq are not in the bytes: they
 * are the commit's place in its chain). 0, KITH_EINVAL (bad op), KITH_ENOMEM. */
int kith__commit_encode(const struct kith__commit *c, struct kith__wbuf *out);

/*
 * Decode a commit of `origin` starting at `first_seq`. Checks every length against the bytes
 * left before reserving anything, the structure, the kinds, and that each value fits the
 * schema; refuses a non-canonical encoding (so that one commit has one byte form).
 * Returns 0, KITH_EMALFORMED, KITH_ETOOBIG, KITH_ESCHEMA (why says which field), KITH_ENOMEM.
 */
int kith__commit_decode(const uint8_t *p, size_t len, uint64_t origin, uint64_t first_seq,
                        struct kith__commit *out, struct kith__arena *arena, char *why,
                        size_t why_cap);

/* The highest seq per origin that a commit names (replaced and observed dots): it may be
 * applied once the replica holds them. Calls fn for each (origin, seq). */
void kith__commit_deps(const struct kith__commit *c,
                       void (*fn)(void *ctx, uint64_t origin, uint64_t seq), void *ctx);

/* ---- batches (core/batch.c; spec/encoding.md "Batch") --------------------------------- */

struct kith__batch_commit {
    uint64_t origin;
    uint64_t first_seq;
    const uint8_t *bytes; /* the canonical commit encoding */
    size_t len;
};

struct kith__batch_head {
    uint64_t origin;
    uint64_t seq;
    uint8_t sig[KITH_SIG_BYTES];
};

/* Format 3: the chain hash an origin's run in the batch starts from (after first_seq - 1). */
struct kith__batch_base {
    uint64_t origin;
    uint8_t hash[KITH_HASH_BYTES];
};

/* A signed item carried whole (a group record, a fork proof): a view of its bytes. */
struct kith__batch_item {
    const uint8_t *bytes;
    size_t len;
};

#define KITH__BATCH_FORMAT 3u       /* written by kith_batch_create */
#define KITH__BATCH_MAX_ITEMS 8192u /* group records, and proofs, per batch */

struct kith__batch {
    uint32_t version; /* the format: 1, 2 or 3 when decoded; to encode, 3 or 2 (0, 1: 2) */
    uint64_t sender;
    size_t ncommits;
    struct kith__batch_commit *commits;
    size_t nheads;
    struct kith__batch_head *heads;
    /* format 3 only (empty otherwise) */
    size_t nbases; /* decoded: one per origin of the batch; encoded: a missing one is zeros */
    struct kith__batch_base *bases;
    size_t nrecords; /* signed group records (core/group.h), each at most 4 KiB */
    struct kith__batch_item *records;
    size_t nproofs; /* fork proofs */
    struct kith__batch_item *proofs;
};

/* The run base the batch names for `origin`, or NULL (format 1 and 2 name none). */
const uint8_t *kith__batch_base_of(const struct kith__batch *b, uint64_t origin);

/* Encode a batch. Commits of one origin must be in seq order and contiguous. */
int kith__batch_encode(const struct kith__batch *b, struct kith__wbuf *out);
/* Decode a batch; arrays come from the arena, commit bytes are views into `p`. Checks
 * structure and limits only (not signatures, not commit contents). */
int kith__batch_decode(const uint8_t *p, size_t len, struct kith__batch *out,
                       struct kith__arena *arena);

/* ---- the hash chain and signatures (core/chain.c; spec/encoding.md "Chain") ----------- */

/* h = BLAKE2b-256(prev || commit bytes); prev is 32 zero bytes before an origin's first. */
void kith__chain_next(const uint8_t prev[KITH_HASH_BYTES], const uint8_t *commit, size_t len,
                      uint8_t out[KITH_HASH_BYTES]);
/* Ed25519 over "kith-hd1" || origin (8, BE) || seq (8, BE) || h (32). */
void kith__head_sign(const uint8_t sk[64], uint64_t origin, uint64_t seq,
                     const uint8_t h[KITH_HASH_BYTES], uint8_t sig[KITH_SIG_BYTES]);
int kith__head_verify(const uint8_t pk[KITH_PUBKEY_BYTES], uint64_t origin, uint64_t seq,
                      const uint8_t h[KITH_HASH_BYTES], const uint8_t sig[KITH_SIG_BYTES]);
/* Replica id of a key: the first 8 bytes of BLAKE2b-256(pk), big-endian. */
uint64_t kith__id_from_pk(const uint8_t pk[KITH_PUBKEY_BYTES]);

/* ---- byte order helpers --------------------------------------------------------------- */

/* Keys are big-endian everywhere (LMDB order = natural order); these are on every hot path,
 * so where the compiler has a byte swap they are one load or store and one bswap. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
static inline void
kith__be64_put(uint8_t *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, sizeof v);
}

static inline uint64_t
kith__be64_get(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return __builtin_bswap64(v);
}
#else
static inline void
kith__be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t
kith__be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
#endif

#endif /* KITH_CORE_H */
