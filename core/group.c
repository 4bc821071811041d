/*
 * group.c — the group record: its one canonical encoding, its signature and its hash
 * (spec/encoding.md "Group records", spec/groups.md GRP-1 .. GRP-3).
 *
 * A record is small and flat (one array, one nested array of parents), so the decoder reads
 * it in place with the strict header reader after the guard has walked the bytes, as the
 * batch decoder does: msgpack-c never sees them, and nothing is allocated. The signature
 * covers "kith-gr1" || encoding; a signed record is the encoding followed by the 64 signature
 * bytes, and its hash covers both, so a record's identity is every byte a replica stores and
 * sends: two signatures of one encoding are two records, and a digest over hashes compares
 * exactly the bytes two replicas hold.
 */
#include "group.h"

#include <assert.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CONTEXT_BYTES 8
#define GUARD_DEPTH 3      /* record > parents, or record > an ancillary body's array */
#define GUARD_OBJECTS 512u /* a record of 4 KiB with 64 parents has 75 */
#define HEAD_FIELDS 5u     /* kind, group, author, parents, time_ms */

static void
say(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

static bool
zero16(const uint8_t *p)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < KITH__GROUP_ID_BYTES; i++)
        acc |= p[i];
    return acc == 0;
}

/* A device or group name: 1..63 bytes of UTF-8 without NUL. */
static bool
name_ok(const char *s, size_t len)
{
    return s && len >= 1 && len <= KITH__GROUP_MAX_NAME && memchr(s, 0, len) == NULL &&
           kith__utf8_valid(s, len);
}

static bool
parents_ascending(const struct kith__group_rec *r)
{
    for (uint32_t i = 1; i < r->nparents; i++)
        if (memcmp(kith__group_parent(r, i - 1), kith__group_parent(r, i), KITH_HASH_BYTES) >= 0)
            return false;
    return true;
}

/* The fields of a record that the encoder and the decoder both check. */
static const char *
rec_rules(const struct kith__group_rec *r)
{
    if (r->kind == KITH__GROUP_FOUND) {
        if (!zero16(r->group))
            return "a FOUND names no group (its group field is zero)";
        if (r->nparents != 0)
            return "a FOUND has no parents";
        if (!name_ok(r->name, r->name_len) || !name_ok(r->group_name, r->group_name_len))
            return "a name is not 1..63 bytes of UTF-8 without NUL";
    } else {
        if (r->nparents == 0)
            return "only a FOUND has no parents";
        if (r->kind == KITH__GROUP_ADD && !name_ok(r->name, r->name_len))
            return "a name is not 1..63 bytes of UTF-8 without NUL";
        if (r->kind == KITH__GROUP_CUTHEAD && r->cutoff == 0)
            return "a CUTHEAD names a head at seq 0";
    }
    if (r->nparents > KITH__GROUP_MAX_PARENTS)
        return "more than 64 parents";
    if (r->nparents > 0 && !r->parents)
        return "parents missing";
    if (!parents_ascending(r))
        return "parents not in ascending order, or repeated";
    if (r->time_ms > KITH__GROUP_MAX_TIME)
        return "time beyond 48 bits";
    return NULL;
}

int
kith__group_encode(const struct kith__group_rec *r, struct kith__wbuf *out)
{
    msgpack_packer pk;
    int prc = 0;
    if (!r || !out)
        return KITH_EINVAL;
    if ((r->kind < KITH__GROUP_FOUND || r->kind > KITH__GROUP_REMOVE) &&
        r->kind != KITH__GROUP_CUTHEAD)
        return KITH_EINVAL;
    if (rec_rules(r))
        return KITH_EINVAL;
    msgpack_packer_init(&pk, out, kith__wbuf_write);
    prc |= msgpack_pack_array(&pk, HEAD_FIELDS + (r->kind == KITH__GROUP_CUTHEAD ? 4 : 2));
    prc |= msgpack_pack_uint8(&pk, r->kind);
    prc |= msgpack_pack_bin(&pk, KITH__GROUP_ID_BYTES);
    prc |= msgpack_pack_bin_body(&pk, r->group, KITH__GROUP_ID_BYTES);
    prc |= msgpack_pack_bin(&pk, KITH_PUBKEY_BYTES);
    prc |= msgpack_pack_bin_body(&pk, r->author, KITH_PUBKEY_BYTES);
    prc |= msgpack_pack_array(&pk, r->nparents);
    for (uint32_t i = 0; i < r->nparents; i++) {
        prc |= msgpack_pack_bin(&pk, KITH_HASH_BYTES);
        prc |= msgpack_pack_bin_body(&pk, kith__group_parent(r, i), KITH_HASH_BYTES);
    }
    prc |= msgpack_pack_uint64(&pk, r->time_ms);
    switch (r->kind) {
    case KITH__GROUP_FOUND:
        prc |= msgpack_pack_str(&pk, r->name_len);
        prc |= msgpack_pack_str_body(&pk, r->name, r->name_len);
        prc |= msgpack_pack_str(&pk, r->group_name_len);
        prc |= msgpack_pack_str_body(&pk, r->group_name, r->group_name_len);
        break;
    case KITH__GROUP_ADD:
        prc |= msgpack_pack_bin(&pk, KITH_PUBKEY_BYTES);
        prc |= msgpack_pack_bin_body(&pk, r->member, KITH_PUBKEY_BYTES);
        prc |= msgpack_pack_str(&pk, r->name_len);
        prc |= msgpack_pack_str_body(&pk, r->name, r->name_len);
        break;
    case KITH__GROUP_REMOVE:
        prc |= msgpack_pack_bin(&pk, KITH_PUBKEY_BYTES);
        prc |= msgpack_pack_bin_body(&pk, r->member, KITH_PUBKEY_BYTES);
        prc |= msgpack_pack_uint64(&pk, r->cutoff);
        break;
    default: /* CUTHEAD */
        prc |= msgpack_pack_bin(&pk, KITH_PUBKEY_BYTES);
        prc |= msgpack_pack_bin_body(&pk, r->member, KITH_PUBKEY_BYTES);
        prc |= msgpack_pack_uint64(&pk, r->cutoff);
        prc |= msgpack_pack_bin(&pk, KITH_HASH_BYTES);
        prc |= msgpack_pack_bin_body(&pk, r->chain, KITH_HASH_BYTES);
        prc |= msgpack_pack_bin(&pk, KITH_SIG_BYTES);
        prc |= msgpack_pack_bin_body(&pk, r->head_sig, KITH_SIG_BYTES);
        break;
    }
    return prc ? KITH_ENOMEM : 0;
}

/* Ed25519 over context || encoding, assembled in one buffer: pure Ed25519, not Ed25519ph
 * (chain.c says why). The encoding is at most 4 KiB - 64, so the buffer is on the stack. */
static void
signed_message(uint8_t *buf, const uint8_t *enc, size_t len)
{
    memcpy(buf, KITH__GROUP_CONTEXT, CONTEXT_BYTES);
    memcpy(buf + CONTEXT_BYTES, enc, len);
}

int
kith__group_build(const struct kith__group_rec *r, const uint8_t sk[64], struct kith__wbuf *out,
                  uint8_t hash[KITH_HASH_BYTES])
{
    uint8_t msg[CONTEXT_BYTES + KITH__GROUP_MAX_RECORD];
    size_t start;
    int rc;
    if (!r || !sk || !out || !hash)
        return KITH_EINVAL;
    if (sodium_memcmp(sk + 32, r->author, KITH_PUBKEY_BYTES) != 0)
        return KITH_EINVAL; /* the key must sign as the author it names */
    start = out->len;
    if ((rc = kith__group_encode(r, out)) < 0)
        goto out_truncate;
    size_t len = out->len - start;
    if (len + KITH_SIG_BYTES > KITH__GROUP_MAX_RECORD) {
        rc = KITH_ETOOBIG;
        goto out_truncate;
    }
    if ((rc = kith__wbuf_reserve(out, KITH_SIG_BYTES)) < 0)
        goto out_truncate;
    signed_message(msg, out->data + start, len);
    rc = crypto_sign_detached(out->data + out->len, NULL, msg, CONTEXT_BYTES + len, sk);
    assert(rc == 0); /* Ed25519 signing cannot fail */
    out->len += KITH_SIG_BYTES;
    kith__group_hash(out->data + start, out->len - start, hash);
    return 0;
out_truncate:
    out->len = start;
    return rc;
}

void
kith__group_hash(const uint8_t *p, size_t len, uint8_t out[KITH_HASH_BYTES])
{
    int rc = crypto_generichash(out, KITH_HASH_BYTES, p, len, NULL, 0);
    assert(rc == 0); /* fails only for an output length outside 16..64 */
    (void)rc;
}

/* ---- decoding ------------------------------------------------------------------------- */

/* A bin or str of `type` and length within [min, max]; *bytes points at its body. */
static bool
next_bytes(struct kith__mp_cursor *c, enum kith__mp_type type, uint64_t min, uint64_t max,
           const uint8_t **bytes, uint64_t *len)
{
    if (!kith__mp_next(c, type, len) || *len < min || *len > max)
        return false;
    *bytes = c->p;
    c->p += *len;
    c->left -= (size_t)*len;
    return true;
}

static bool
next_fixed(struct kith__mp_cursor *c, uint8_t *out, size_t n)
{
    const uint8_t *b;
    uint64_t len;
    if (!next_bytes(c, KITH__MP_BIN, n, n, &b, &len))
        return false;
    memcpy(out, b, n);
    return true;
}

static bool
next_name(struct kith__mp_cursor *c, const char **name, uint32_t *name_len)
{
    const uint8_t *b;
    uint64_t len;
    if (!next_bytes(c, KITH__MP_STR, 1, KITH__GROUP_MAX_NAME, &b, &len))
        return false;
    *name = (const char *)b;
    *name_len = (uint32_t)len;
    return name_ok(*name, len);
}

/* Step over one object of any type (the guard proved it well formed). */
static void
skip(struct kith__mp_cursor *c)
{
    struct kith__mp_head h;
    uint64_t more = 1;
    while (more > 0) {
        (void)kith__mp_head(c->p, c->left, &h);
        c->p += h.size;
        c->left -= h.size;
        more--;
        if (h.type == KITH__MP_ARRAY)
            more += h.v;
        else if (h.type == KITH__MP_STR || h.type == KITH__MP_BIN) {
            c->p += h.v;
            c->left -= (size_t)h.v;
        }
    }
}

int
kith__group_decode(const uint8_t *p, size_t len, struct kith__group_rec *out, char *why,
                   size_t why_cap)
{
    struct kith__group_rec r;
    struct kith__mp_cursor c;
    uint64_t nfields, v, n;
    size_t enc_len, nobjects;
    const uint8_t *b;
    const char *bad;
    int rc;

    if (!p || !out)
        return KITH_EINVAL;
    memset(&r, 0, sizeof r);
    if (len > KITH__GROUP_MAX_RECORD) {
        say(why, why_cap, "record of %zu bytes, over %u", len, KITH__GROUP_MAX_RECORD);
        return KITH_ETOOBIG;
    }
    if (len <= KITH_SIG_BYTES) {
        say(why, why_cap, "record too short for its signature");
        return KITH_EMALFORMED;
    }
    enc_len = len - KITH_SIG_BYTES;
    if ((rc = kith__mp_guard(p, enc_len, GUARD_DEPTH, GUARD_OBJECTS, &nobjects)) < 0) {
        say(why, why_cap, "not one canonical msgpack object before the signature");
        return rc == KITH_ETOOBIG ? KITH_EMALFORMED : rc;
    }
    c = (struct kith__mp_cursor){p, enc_len};
    if (!kith__mp_next(&c, KITH__MP_ARRAY, &nfields) || nfields < HEAD_FIELDS ||
        !kith__mp_next(&c, KITH__MP_UINT, &v) || v == 0 || v > KITH__GROUP_ANCILLARY_MAX) {
        say(why, why_cap, "not a group record");
        return KITH_EMALFORMED;
    }
    r.kind = (uint8_t)v;
    if (r.kind > KITH__GROUP_REMOVE && r.kind <= KITH__GROUP_CRITICAL_MAX) {
        say(why, why_cap, "record kind %u is not known to this version", r.kind);
        return KITH_EVERSION;
    }
    if (!next_fixed(&c, r.group, KITH__GROUP_ID_BYTES) ||
        !next_fixed(&c, r.author, KITH_PUBKEY_BYTES)) {
        say(why, why_cap, "group or author is not a bin of 16 or 32 bytes");
        return KITH_EMALFORMED;
    }
    if (!kith__mp_next(&c, KITH__MP_ARRAY, &n) || n > KITH__GROUP_MAX_PARENTS) {
        say(why, why_cap, "parents are not an array of at most 64");
        return KITH_EMALFORMED;
    }
    r.nparents = (uint32_t)n;
    r.parents = n ? c.p + 2 : NULL; /* each parent is c4 20 and its 32 bytes */
    r.parent_stride = 2 + KITH_HASH_BYTES;
    for (uint64_t i = 0; i < n; i++) {
        if (!next_bytes(&c, KITH__MP_BIN, KITH_HASH_BYTES, KITH_HASH_BYTES, &b, &v)) {
            say(why, why_cap, "a parent is not a bin of 32 bytes");
            return KITH_EMALFORMED;
        }
    }
    if (!kith__mp_next(&c, KITH__MP_UINT, &r.time_ms)) {
        say(why, why_cap, "time is not a uint");
        return KITH_EMALFORMED;
    }
    switch (r.kind) {
    case KITH__GROUP_FOUND:
        if (nfields != HEAD_FIELDS + 2 || !next_name(&c, &r.name, &r.name_len) ||
            !next_name(&c, &r.group_name, &r.group_name_len))
            goto out_body;
        break;
    case KITH__GROUP_ADD:
        if (nfields != HEAD_FIELDS + 2 || !next_fixed(&c, r.member, KITH_PUBKEY_BYTES) ||
            !next_name(&c, &r.name, &r.name_len))
            goto out_body;
        break;
    case KITH__GROUP_REMOVE:
        if (nfields != HEAD_FIELDS + 2 || !next_fixed(&c, r.member, KITH_PUBKEY_BYTES) ||
            !kith__mp_next(&c, KITH__MP_UINT, &r.cutoff))
            goto out_body;
        break;
    case KITH__GROUP_CUTHEAD:
        if (nfields != HEAD_FIELDS + 4 || !next_fixed(&c, r.member, KITH_PUBKEY_BYTES) ||
            !kith__mp_next(&c, KITH__MP_UINT, &r.cutoff) ||
            !next_fixed(&c, r.chain, KITH_HASH_BYTES) ||
            !next_fixed(&c, r.head_sig, KITH_SIG_BYTES))
            goto out_body;
        break;
    default: /* ancillary: any canonical body */
        for (uint64_t i = HEAD_FIELDS; i < nfields; i++)
            skip(&c);
        break;
    }
    if (c.left != 0)
        goto out_body; /* the guard proved one object and the array its count */
    if ((bad = rec_rules(&r)) != NULL) {
        say(why, why_cap, "%s", bad);
        return KITH_EMALFORMED;
    }
    *out = r;
    say(why, why_cap, "%s", "");
    return 0;
out_body:
    say(why, why_cap, "the body does not fit the record's kind");
    return KITH_EMALFORMED;
}

int
kith__group_verify(const uint8_t *p, size_t len, struct kith__group_rec *out, char *why,
                   size_t why_cap)
{
    uint8_t msg[CONTEXT_BYTES + KITH__GROUP_MAX_RECORD];
    int rc = kith__group_decode(p, len, out, why, why_cap);
    if (rc < 0)
        return rc;
    signed_message(msg, p, len - KITH_SIG_BYTES);
    if (crypto_sign_verify_detached(p + len - KITH_SIG_BYTES, msg,
                                    CONTEXT_BYTES + len - KITH_SIG_BYTES, out->author) != 0) {
        say(why, why_cap, "the signature does not verify with the author's key");
        return KITH_EBADSIG;
    }
    if (out->kind == KITH__GROUP_CUTHEAD &&
        kith__head_verify(out->member, kith__id_from_pk(out->member), out->cutoff, out->chain,
                          out->head_sig) != 0) {
        say(why, why_cap, "the head signature does not verify with the member's key");
        return KITH_EBADSIG;
    }
    return 0;
}
