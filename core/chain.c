/*
 * chain.c — the integrity half of core: the per-origin hash chain over commits, the signed
 * chain heads, the replica id of a key, and the context-bound signatures used by beacons and
 * handshakes. Pure functions over memory; keys arrive as arguments (spec/encoding.md "Chain"
 * and "Signatures").
 *
 * One hash per commit: h = BLAKE2b-256(h_prev || commit bytes), fed to libsodium's
 * init/update/final so the commit is never copied. A head signature covers a fixed 56-byte
 * message, "kith-hd1" || origin BE8 || seq BE8 || h, built on the stack. kith_sign_verify
 * checks plain Ed25519 over context || msg: libsodium's multi-part crypto_sign_update API
 * computes Ed25519ph, a different signature, so the message is assembled in one buffer
 * (on the stack when small) and its length is capped at KITH__SIGN_MAX_MSG.
 */
#include "core.h"

#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_CONTEXT "kith-hd1"
#define CONTEXT_BYTES 8
#define HEAD_MSG_BYTES (CONTEXT_BYTES + 8 + 8 + KITH_HASH_BYTES) /* 56 */
#define SIGN_MAX_MSG (64u << 10)
#define SIGN_STACK_MSG 1024u

void
kith__chain_next(const uint8_t prev[KITH_HASH_BYTES], const uint8_t *commit, size_t len,
                 uint8_t out[KITH_HASH_BYTES])
{
    crypto_generichash_state st;
    int rc = crypto_generichash_init(&st, NULL, 0, KITH_HASH_BYTES);
    rc |= crypto_generichash_update(&st, prev, KITH_HASH_BYTES);
    rc |= crypto_generichash_update(&st, commit, len);
    rc |= crypto_generichash_final(&st, out, KITH_HASH_BYTES);
    /* libsodium fails these only for an output length outside 16..64 bytes. */
    assert(rc == 0);
    (void)rc;
}

static void
head_message(uint8_t msg[HEAD_MSG_BYTES], uint64_t origin, uint64_t seq,
             const uint8_t h[KITH_HASH_BYTES])
{
    memcpy(msg, HEAD_CONTEXT, CONTEXT_BYTES);
    kith__be64_put(msg + 8, origin);
    kith__be64_put(msg + 16, seq);
    memcpy(msg + 24, h, KITH_HASH_BYTES);
}

void
kith__head_sign(const uint8_t sk[64], uint64_t origin, uint64_t seq,
                const uint8_t h[KITH_HASH_BYTES], uint8_t sig[KITH_SIG_BYTES])
{
    uint8_t msg[HEAD_MSG_BYTES];
    head_message(msg, origin, seq, h);
    int rc = crypto_sign_detached(sig, NULL, msg, sizeof msg, sk);
    assert(rc == 0); /* Ed25519 signing cannot fail */
    (void)rc;
}

int
kith__head_verify(const uint8_t pk[KITH_PUBKEY_BYTES], uint64_t origin, uint64_t seq,
                  const uint8_t h[KITH_HASH_BYTES], const uint8_t sig[KITH_SIG_BYTES])
{
    uint8_t msg[HEAD_MSG_BYTES];
    head_message(msg, origin, seq, h);
    if (crypto_sign_verify_detached(sig, msg, sizeof msg, pk) != 0)
        return KITH_EBADSIG;
    return 0;
}

uint64_t
kith__id_from_pk(const uint8_t pk[KITH_PUBKEY_BYTES])
{
    uint8_t h[KITH_HASH_BYTES];
    int rc = crypto_generichash(h, sizeof h, pk, KITH_PUBKEY_BYTES, NULL, 0);
    assert(rc == 0);
    (void)rc;
    return kith__be64_get(h);
}

uint64_t
kith_id_from_pubkey(const uint8_t pk[KITH_PUBKEY_BYTES])
{
    return kith__id_from_pk(pk);
}

int
kith_sign_verify(const uint8_t pk[KITH_PUBKEY_BYTES], const char context[8], const void *msg,
                 size_t len, const uint8_t sig[KITH_SIG_BYTES])
{
    uint8_t small[CONTEXT_BYTES + SIGN_STACK_MSG];
    uint8_t *buf = small;
    int rc;
    if (!pk || !context || !sig || (!msg && len > 0))
        return KITH_EINVAL;
    if (len > SIGN_MAX_MSG)
        return KITH_ETOOBIG;
    if (len > SIGN_STACK_MSG) {
        buf = malloc(CONTEXT_BYTES + len);
        if (!buf)
            return KITH_ENOMEM;
    }
    memcpy(buf, context, CONTEXT_BYTES);
    if (len > 0)
        memcpy(buf + CONTEXT_BYTES, msg, len);
    rc = crypto_sign_verify_detached(sig, buf, CONTEXT_BYTES + len, pk) == 0 ? 0 : KITH_EBADSIG;
    if (buf != small)
        free(buf);
    return rc;
}

int
kith_curve_public(const uint8_t pk[KITH_PUBKEY_BYTES], uint8_t public_x[32])
{
    if (!pk || !public_x)
        return KITH_EINVAL;
    if (crypto_sign_ed25519_pk_to_curve25519(public_x, pk) != 0)
        return KITH_EINVAL; /* not a valid Ed25519 point */
    return 0;
}
