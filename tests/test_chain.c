/*
 * test_chain.c — the hash chain, signed heads, replica ids and context signatures
 * (spec/encoding.md "Chain" and "Signatures"), against the known-answer vector in
 * tests/data/commit-kat.txt, and refusal of a signature when any signed byte changes.
 */
#include "core.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static void
setup(void)
{
    cr_assert_geq(sodium_init(), 0);
}

TestSuite(chain, .init = setup);

/* Read the value of `key` from the vector file into out (NUL-terminated). */
static void
kat_get(const char *key, char *out, size_t cap)
{
    char path[512], line[8192];
    snprintf(path, sizeof path, "%s/tests/data/commit-kat.txt", KITH_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    size_t klen = strlen(key);
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            snprintf(out, cap, "%s", line + klen + 1);
            out[strcspn(out, "\r\n")] = '\0';
            found = true;
        }
    }
    fclose(f);
    cr_assert(found, "no %s in the vector file", key);
}

/* The value of `key` as bytes; returns the length. */
static size_t
kat_bytes(const char *key, uint8_t *out, size_t cap)
{
    char hex[8192];
    size_t len = 0;
    kat_get(key, hex, sizeof hex);
    cr_assert_eq(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &len, NULL), 0, "%s", key);
    return len;
}

struct kat {
    uint8_t commit[4096];
    size_t len;
    uint8_t seed[32], pk[32], sk[64], chain1[32], chain2[32], headsig[64], curve[32], ctxsig[64];
    uint64_t origin;
};

static void
kat_load(struct kat *k)
{
    char hex[64];
    k->len = kat_bytes("commit", k->commit, sizeof k->commit);
    cr_assert_eq(kat_bytes("seed", k->seed, 32), 32);
    cr_assert_eq(kat_bytes("pk", k->pk, 32), 32);
    cr_assert_eq(kat_bytes("chain1", k->chain1, 32), 32);
    cr_assert_eq(kat_bytes("chain2", k->chain2, 32), 32);
    cr_assert_eq(kat_bytes("headsig", k->headsig, 64), 64);
    cr_assert_eq(kat_bytes("curve_pk", k->curve, 32), 32);
    cr_assert_eq(kat_bytes("ctxsig", k->ctxsig, 64), 64);
    kat_get("origin", hex, sizeof hex);
    k->origin = strtoull(hex, NULL, 16);
    uint8_t pk[32];
    cr_assert_eq(crypto_sign_seed_keypair(pk, k->sk, k->seed), 0);
    cr_assert_eq(memcmp(pk, k->pk, 32), 0, "seed does not give the vector's key");
}

/* CHAIN-1: h = BLAKE2b-256(prev || commit), prev zero for the first commit. */
Test(chain, known_answer_chain)
{
    struct kat k;
    uint8_t zero[32] = {0}, h[32];
    kat_load(&k);
    kith__chain_next(zero, k.commit, k.len, h);
    cr_assert_eq(memcmp(h, k.chain1, 32), 0);
    kith__chain_next(h, k.commit, k.len, h); /* out may be prev */
    cr_assert_eq(memcmp(h, k.chain2, 32), 0);
}

/* ID-1: a replica id is the first 8 bytes of BLAKE2b-256(pk), big-endian. */
Test(chain, known_answer_id)
{
    struct kat k;
    kat_load(&k);
    cr_assert_eq(kith__id_from_pk(k.pk), k.origin);
    cr_assert_eq(kith_id_from_pubkey(k.pk), k.origin);
}

/* SIG-1: the head signature is deterministic Ed25519 over the 56-byte head message. */
Test(chain, known_answer_head_signature)
{
    struct kat k;
    uint8_t sig[64];
    kat_load(&k);
    kith__head_sign(k.sk, k.origin, 25, k.chain1, sig);
    cr_assert_eq(memcmp(sig, k.headsig, 64), 0);
    cr_assert_eq(kith__head_verify(k.pk, k.origin, 25, k.chain1, k.headsig), 0);
    /* the same message through libsodium directly */
    uint8_t msg[56];
    memcpy(msg, "kith-hd1", 8);
    kith__be64_put(msg + 8, k.origin);
    kith__be64_put(msg + 16, 25);
    memcpy(msg + 24, k.chain1, 32);
    cr_assert_eq(crypto_sign_verify_detached(k.headsig, msg, sizeof msg, k.pk), 0);
}

/* SIG-2: changing any bit of origin, seq, hash or signature makes verification fail. */
Test(chain, head_signature_refused_on_any_change)
{
    struct kat k;
    kat_load(&k);
    for (int bit = 0; bit < 64; bit++) {
        cr_assert_eq(kith__head_verify(k.pk, k.origin ^ (1ull << bit), 25, k.chain1, k.headsig),
                     KITH_EBADSIG, "origin bit %d", bit);
        cr_assert_eq(kith__head_verify(k.pk, k.origin, 25 ^ (1ull << bit), k.chain1, k.headsig),
                     KITH_EBADSIG, "seq bit %d", bit);
    }
    for (int i = 0; i < 32; i++) {
        uint8_t h[32];
        memcpy(h, k.chain1, 32);
        h[i] ^= 0x01;
        cr_assert_eq(kith__head_verify(k.pk, k.origin, 25, h, k.headsig), KITH_EBADSIG,
                     "hash byte %d", i);
    }
    for (int i = 0; i < 64; i++) {
        for (int b = 0; b < 8; b += 7) {
            uint8_t sig[64];
            memcpy(sig, k.headsig, 64);
            sig[i] ^= (uint8_t)(1u << b);
            cr_assert_eq(kith__head_verify(k.pk, k.origin, 25, k.chain1, sig), KITH_EBADSIG,
                         "signature byte %d bit %d", i, b);
        }
    }
    /* another key */
    uint8_t pk2[32], sk2[64];
    crypto_sign_keypair(pk2, sk2);
    cr_assert_eq(kith__head_verify(pk2, k.origin, 25, k.chain1, k.headsig), KITH_EBADSIG);
}

/* A changed commit byte changes the chain hash. */
Test(chain, every_commit_byte_counts)
{
    struct kat k;
    uint8_t zero[32] = {0}, h[32];
    kat_load(&k);
    for (size_t i = 0; i < k.len; i++) {
        k.commit[i] ^= 0x80;
        kith__chain_next(zero, k.commit, k.len, h);
        cr_assert_neq(memcmp(h, k.chain1, 32), 0, "byte %zu", i);
        k.commit[i] ^= 0x80;
    }
    kith__chain_next(k.chain2, k.commit, k.len, h); /* a different prev too */
    cr_assert_neq(memcmp(h, k.chain2, 32), 0);
}

/* SIG-3: kith_sign_verify is plain Ed25519 over context || msg. */
Test(chain, context_signature)
{
    struct kat k;
    kat_load(&k);
    cr_assert_eq(kith_sign_verify(k.pk, "kith-tst", "hello", 5, k.ctxsig), 0);
    cr_assert_eq(kith_sign_verify(k.pk, "kith-tsu", "hello", 5, k.ctxsig), KITH_EBADSIG);
    cr_assert_eq(kith_sign_verify(k.pk, "kith-tst", "hellp", 5, k.ctxsig), KITH_EBADSIG);
    cr_assert_eq(kith_sign_verify(k.pk, "kith-tst", "hell", 4, k.ctxsig), KITH_EBADSIG);
    cr_assert_eq(kith_sign_verify(k.pk, "kith-tst", NULL, 5, k.ctxsig), KITH_EINVAL);

    /* a long message (heap path) and the size limit */
    size_t n = 60000;
    uint8_t *m = malloc(8 + n), sig[64];
    cr_assert_not_null(m);
    memcpy(m, "kith-big", 8);
    for (size_t i = 0; i < n; i++)
        m[8 + i] = (uint8_t)(i * 31);
    cr_assert_eq(crypto_sign_detached(sig, NULL, m, 8 + n, k.sk), 0);
    cr_assert_eq(kith_sign_verify(k.pk, "kith-big", m + 8, n, sig), 0);
    m[8 + n - 1] ^= 1;
    cr_assert_eq(kith_sign_verify(k.pk, "kith-big", m + 8, n, sig), KITH_EBADSIG);
    free(m);
    cr_assert_eq(kith_sign_verify(k.pk, "kith-big", "x", (64u << 10) + 1, sig), KITH_ETOOBIG);
}

Test(chain, curve_public)
{
    struct kat k;
    uint8_t x[32];
    kat_load(&k);
    cr_assert_eq(kith_curve_public(k.pk, x), 0);
    cr_assert_eq(memcmp(x, k.curve, 32), 0);
    uint8_t bad[32];
    memset(bad, 0xff, sizeof bad); /* not a point */
    cr_assert_eq(kith_curve_public(bad, x), KITH_EINVAL);
}

/* Errors and ids that live beside the chain (core/errors.c). */
Test(chain, errors_and_names)
{
    cr_assert_str_eq(kith_errname(KITH_EBADSIG), "KITH_EBADSIG");
    cr_assert_str_eq(kith_strerror(KITH_EBADSIG), "signature does not verify");
    cr_assert_str_eq(kith_errname(KITH_ECLOSED), "KITH_ECLOSED");
    cr_assert_str_eq(kith_errname(-13), "EACCES");
    cr_assert_str_eq(kith_strerror(-13), "permission denied");
    cr_assert_str_eq(kith_errname(-28), "ENOSPC");
    cr_assert_str_eq(kith_errname(0), "OK");
    cr_assert_not_null(kith_strerror(-99999));
    cr_assert_not_null(kith_errname(-99999));
    cr_assert_not_null(kith_strerror(12345));
    cr_assert_str_eq(kith_version(), KITH_VERSION_STRING);
    cr_assert_eq(kith_docid_bytes(), 16);
    cr_assert_eq(kith_pubkey_bytes(), 32);
}

Test(chain, docid_text)
{
    kith_docid id, back;
    char hex[KITH_DOCID_HEX + 1];
    kith__docid_from_dot(&id, (kith_dot){0x0123456789abcdefull, 42});
    kith_docid_format(&id, hex);
    cr_assert_str_eq(hex, "0123456789abcdef000000000000002a");
    cr_assert_eq(kith_docid_parse(hex, &back), 0);
    cr_assert_eq(memcmp(&id, &back, sizeof id), 0);
    kith_dot d = kith__docid_to_dot(&back);
    cr_assert(d.origin == 0x0123456789abcdefull && d.seq == 42);
    cr_assert_eq(kith_docid_parse("0123456789ABCDEF000000000000002a", &back), KITH_EINVAL);
    cr_assert_eq(kith_docid_parse("0123456789abcdef000000000000002", &back), KITH_EINVAL);
    cr_assert_eq(kith_docid_parse("0123456789abcdef000000000000002a0", &back), KITH_EINVAL);
    cr_assert_eq(kith_docid_parse("0123456789abcdef00000000000000 a", &back), KITH_EINVAL);
    cr_assert_eq(kith_docid_parse("", &back), KITH_EINVAL);
    cr_assert_eq(kith_docid_parse(NULL, &back), KITH_EINVAL);
}
