/*
 * verify.c — scenario 4, verification: the hash chain and the head signatures for N ops in
 * commits of 1, 10 and 100 ops, with a signed head every 1,000 ops (a published range, as a
 * batch of 1,000 ops carries one), checked the way kith_batch_apply checks a run: one
 * kith__chain_next per commit over its canonical bytes, one kith__head_verify per range.
 *
 *   sodium.verify.cK   the bound: the same hashes and verifies written directly against
 *                      libsodium (init/update/update/final, crypto_sign_verify_detached);
 *   verify.cK          kith__chain_next + kith__head_verify; its ed25519_share says how much
 *                      of the time the signature checks take (from ed25519.verify measured in
 *                      the limits), so "bounded by BLAKE2b, not by Ed25519" can be read off.
 */
#include "gen.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RANGE_OPS 1000u

static const struct bench_target t_verify = {"verify >= 2 M ops/s (ranges of 1000)",
                                             BENCH_M_OPS_PER_S, BENCH_AT_LEAST, 2e6};

struct ranges {
    size_t n;
    size_t *last_commit; /* index of the commit that ends range i */
    uint64_t *seq;       /* the head's seq */
    uint8_t (*sig)[KITH_SIG_BYTES];
};

static int
verify_case(const struct bench_opts *o, uint64_t n, uint32_t k, const uint8_t *pk,
            const uint8_t *sk)
{
    struct bench_stream s;
    struct bench_encoded e;
    struct ranges rg = {0};
    double t[BENCH_MAX_REPS];
    char name[BENCH_NAME_MAX], bound[BENCH_NAME_MAX], params[96];
    uint8_t h[KITH_HASH_BYTES];
    int rc = -1;

    if (bench_stream_fields(&s, kith__id_from_pk(pk), n, k, BENCH_DOCS, 200 + k) != 0)
        return -1;
    if (bench_stream_encode(&s, &e) != 0)
        goto out_stream;
    /* Sign a head at the first commit end at or past every RANGE_OPS ops, and at the end. */
    rg.last_commit = calloc(s.ncommits, sizeof *rg.last_commit);
    rg.seq = calloc(s.ncommits, sizeof *rg.seq);
    rg.sig = calloc(s.ncommits, sizeof *rg.sig);
    if (rg.last_commit == NULL || rg.seq == NULL || rg.sig == NULL)
        goto out_ranges;
    memset(h, 0, sizeof h);
    uint64_t since = 0;
    for (size_t i = 0; i < s.ncommits; i++) {
        kith__chain_next(h, e.buf.data + e.off[i], e.off[i + 1] - e.off[i], h);
        since += s.commits[i].nops;
        if (since >= RANGE_OPS || i + 1 == s.ncommits) {
            rg.last_commit[rg.n] = i;
            rg.seq[rg.n] = s.commits[i].first_seq + s.commits[i].nops - 1;
            kith__head_sign(sk, s.origin, rg.seq[rg.n], h, rg.sig[rg.n]);
            rg.n++;
            since = 0;
        }
    }
    snprintf(params, sizeof params, "{\"commit\":%u,\"range\":%u,\"value\":%d}", k, RANGE_OPS,
             BENCH_VALUE_BYTES);
    struct bench_spec spec = {.params = params, .ops = n, .name = name, .unit = "op"};

    /* the bound: libsodium alone doing the same work */
    for (int r = 0; r < o->reps; r++) {
        size_t next = 0;
        double t0 = bench_now();
        memset(h, 0, sizeof h);
        for (size_t i = 0; i < s.ncommits; i++) {
            crypto_generichash_state st;
            if (crypto_generichash_init(&st, NULL, 0, sizeof h) != 0 ||
                crypto_generichash_update(&st, h, sizeof h) != 0 ||
                crypto_generichash_update(&st, e.buf.data + e.off[i], e.off[i + 1] - e.off[i]) !=
                    0 ||
                crypto_generichash_final(&st, h, sizeof h) != 0)
                goto out_ranges;
            if (next < rg.n && rg.last_commit[next] == i) {
                uint8_t msg[56];
                memcpy(msg, "kith-hd1", 8);
                kith__be64_put(msg + 8, s.origin);
                kith__be64_put(msg + 16, rg.seq[next]);
                memcpy(msg + 24, h, 32);
                if (crypto_sign_verify_detached(rg.sig[next], msg, sizeof msg, pk) != 0)
                    goto out_ranges;
                next++;
            }
        }
        t[r] = bench_now() - t0;
    }
    snprintf(bound, sizeof bound, "sodium.verify.c%u", k);
    snprintf(name, sizeof name, "%s", bound);
    if (bench_report(o, &spec, t, o->reps) != 0)
        goto out_ranges;

    for (int r = 0; r < o->reps; r++) {
        size_t next = 0;
        double t0 = bench_now();
        memset(h, 0, sizeof h);
        for (size_t i = 0; i < s.ncommits; i++) {
            kith__chain_next(h, e.buf.data + e.off[i], e.off[i + 1] - e.off[i], h);
            if (next < rg.n && rg.last_commit[next] == i) {
                if (kith__head_verify(pk, s.origin, rg.seq[next], h, rg.sig[next]) != 0) {
                    fprintf(stderr, "kith-bench: verify: head %zu does not verify\n", next);
                    goto out_ranges;
                }
                next++;
            }
        }
        t[r] = bench_now() - t0;
    }
    snprintf(name, sizeof name, "verify.c%u", k);
    spec.bound = bound;
    spec.target = &t_verify;
    const struct bench_result *ed = bench_result_find("ed25519.verify");
    if (ed != NULL && ed->ops_per_s > 0) {
        spec.extra_name = "ed25519_share";
        spec.extra = ((double)rg.n / ed->ops_per_s) / bench_median(t, o->reps);
    }
    rc = bench_report(o, &spec, t, o->reps);
out_ranges:
    free(rg.last_commit);
    free(rg.seq);
    free(rg.sig);
    bench_encoded_free(&e);
out_stream:
    bench_stream_free(&s);
    return rc;
}

int
bench_verify(const struct bench_opts *o)
{
    uint64_t n = bench_size(o, 200000, 2000);
    static const uint32_t sizes[] = {1, 10, 100};
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    uint8_t seed[crypto_sign_SEEDBYTES] = {4, 2};
    int rc = 0;
    if (sodium_init() < 0 || crypto_sign_seed_keypair(pk, sk, seed) != 0)
        return -1;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && rc == 0; i++)
        rc = verify_case(o, n, sizes[i], pk, sk);
    sodium_memzero(sk, sizeof sk);
    return rc;
}
