/*
 * fuzz_forkproof.c — libFuzzer target for fork proofs (spec/encoding.md §10). The input is
 * one proof. It must be refused with one of the decoder's codes and a reason, or decode; a
 * decoded proof must re-encode to exactly its bytes, also with its branches given the other
 * way round (the layout is canonical and the winner goes first), and a proof that verifies
 * must decode to the same fork name and heads that close its branches.
 *
 * The seeds are real proofs (commits from the commit encoder, heads signed with a fixed key),
 * so the fuzzer works on bytes whose signatures verify: `KITH_FUZZ_WRITE_SEEDS=dir
 * fuzz_forkproof` writes them. Seeds: tests/fuzz/corpus/forkproof/.
 */
#include "forkproof.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXC 8

static const struct kith__name names[] = {{"contacts", 8}, {"name", 4}};

struct hist {
    size_t n;
    struct kith__wbuf enc[MAXC];
    struct kith__fork_commit view[MAXC];
    uint64_t last[MAXC];
    uint8_t chain[MAXC][KITH_HASH_BYTES];
};

static void
commit_add(struct hist *h, uint64_t origin, const char *value, uint32_t nops)
{
    struct kith__op ops[4];
    struct kith__commit c = {0};
    uint64_t first = h->n ? h->last[h->n - 1] + 1 : 1;
    static const uint8_t zero[KITH_HASH_BYTES];

    memset(ops, 0, sizeof ops);
    for (uint32_t i = 0; i < nops; i++) {
        ops[i].kind = KITH_OP_FIELD_SET;
        ops[i].fname = 1;
        ops[i].doc = (kith_dot){0x0101010101010101ull, 7};
        ops[i].value.type = KITH_TYPE_STRING;
        ops[i].value.u.s.ptr = value;
        ops[i].value.u.s.len = strlen(value);
    }
    c.origin = origin;
    c.first_seq = first;
    c.hlc = KITH__HLC_MAKE(1795629600000ull + h->n, 0);
    c.format = 2;
    c.nops = nops;
    c.ops = ops;
    c.names = names;
    c.nnames = 2;
    if (kith__commit_encode(&c, &h->enc[h->n]) != 0)
        abort();
    h->view[h->n] = (struct kith__fork_commit){h->enc[h->n].data, h->enc[h->n].len};
    h->last[h->n] = first + nops - 1;
    kith__chain_next(h->n ? h->chain[h->n - 1] : zero, h->enc[h->n].data, h->enc[h->n].len,
                     h->chain[h->n]);
    h->n++;
}

/* Write the proof of histories a and b, which share their first `common` commits. */
static void
seed_write(const char *dir, const char *name, const uint8_t pk[32], const uint8_t sk[64],
           struct hist *a, struct hist *b, size_t common)
{
    struct kith__forkproof p = {0};
    struct kith__wbuf out = {0};
    struct hist *h[2] = {a, b};
    struct kith__fork_branch *br[2] = {&p.win, &p.lose};
    char path[4096];
    uint64_t origin = kith__id_from_pk(pk);

    memcpy(p.key, pk, 32);
    p.c = common ? a->last[common - 1] : 0;
    if (common)
        memcpy(p.base, a->chain[common - 1], KITH_HASH_BYTES);
    for (int i = 0; i < 2; i++) {
        br[i]->ncommits = (uint32_t)(h[i]->n - common);
        br[i]->commits = &h[i]->view[common];
        kith__head_sign(sk, origin, h[i]->last[h[i]->n - 1], h[i]->chain[h[i]->n - 1], br[i]->sig);
    }
    if (kith__forkproof_encode(&p, &out, NULL, 0) != 0)
        abort();
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0)
        abort();
    kith__wbuf_free(&out);
    for (int i = 0; i < 2; i++) {
        for (size_t j = 0; j < h[i]->n; j++)
            kith__wbuf_free(&h[i]->enc[j]);
        memset(h[i], 0, sizeof *h[i]);
    }
}

static void
write_seeds(const char *dir)
{
    uint8_t seed[32] = {0}, pk[32], sk[64];
    struct hist a = {0}, b = {0};
    seed[0] = 0x46;
    crypto_sign_seed_keypair(pk, sk, seed);
    uint64_t o = kith__id_from_pk(pk);

    commit_add(&a, o, "Ada", 1);
    commit_add(&b, o, "Bob", 1);
    seed_write(dir, "at-seq-1", pk, sk, &a, &b, 0);

    for (int i = 0; i < 2; i++) {
        commit_add(&a, o, "common", 2);
        commit_add(&b, o, "common", 2);
    }
    commit_add(&a, o, "Ada", 3);
    commit_add(&a, o, "Ada Lovelace", 1);
    commit_add(&b, o, "Bob", 1);
    seed_write(dir, "after-common", pk, sk, &a, &b, 2);

    commit_add(&a, o, "x", 1);
    for (int i = 0; i < 6; i++)
        commit_add(&b, o, "longer", 4);
    seed_write(dir, "long-branch", pk, sk, &a, &b, 0);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (sodium_init() < 0)
        abort();
    const char *dir = getenv("KITH_FUZZ_WRITE_SEEDS");
    if (dir) {
        write_seeds(dir);
        exit(0);
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kith__arena arena = {0};
    struct kith__wbuf again = {0};
    struct kith__forkproof d, v, swapped;
    uint8_t n1[KITH__FORKPROOF_NAME_BYTES], n2[KITH__FORKPROOF_NAME_BYTES];
    char why[200];

    why[0] = '\0';
    int rc = kith__forkproof_decode(data, size, &d, &arena, why, sizeof why);
    if (rc != 0) {
        if ((rc != KITH_EMALFORMED && rc != KITH_ETOOBIG && rc != KITH_EVERSION) || !why[0])
            abort();
        if (kith__forkproof_verify(data, size, &v, &arena, why, sizeof why) != rc)
            abort(); /* verify decodes first */
        kith__arena_free(&arena);
        return 0;
    }
    if (d.origin != kith__id_from_pk(d.key) || !kith__fork_wins(d.win.first, d.lose.first))
        abort();
    if (kith__forkproof_encode(&d, &again, NULL, 0) != 0 || again.len != size ||
        memcmp(again.data, data, size) != 0)
        abort(); /* accepted but not canonical */
    swapped = d;
    swapped.win = d.lose;
    swapped.lose = d.win;
    again.len = 0;
    if (kith__forkproof_encode(&swapped, &again, NULL, 0) != 0 || again.len != size ||
        memcmp(again.data, data, size) != 0)
        abort(); /* the winner is not first whatever the order given */
    rc = kith__forkproof_verify(data, size, &v, &arena, why, sizeof why);
    if (rc == 0) {
        kith__forkproof_name(&d, n1);
        kith__forkproof_name(&v, n2);
        if (memcmp(n1, n2, sizeof n1) != 0 || v.win.head_seq <= v.c || v.lose.head_seq <= v.c ||
            v.win.head_seq - v.c < v.win.ncommits || v.lose.head_seq - v.c < v.lose.ncommits)
            abort();
    } else if ((rc != KITH_EMALFORMED && rc != KITH_EBADSIG && rc != KITH_ETOOBIG &&
                rc != KITH_ENOMEM) ||
               !why[0]) {
        abort();
    }
    kith__wbuf_free(&again);
    kith__arena_free(&arena);
    return 0;
}
