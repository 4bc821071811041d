/*
 * fuzz_group.c — libFuzzer target for group records and the membership fold (spec/encoding.md
 * "Group records", spec/groups.md). The input is a run of records, each behind a 16-bit
 * big-endian length. Each must be refused or decoded without a crash, a leak or a large
 * allocation; an accepted record of a known kind must re-encode to exactly its bytes. Then
 * the records go into a fold for the group the first record founds, forwards and then
 * backwards into a second fold: both must give the same digest, members and heads, no member
 * may be removed, and a member's admitting record must be live.
 *
 * The seeds are real signed histories (so the fuzzer recombines records whose signatures
 * verify), a removal with its CUTHEAD among them: `KITH_FUZZ_WRITE_SEEDS=dir fuzz_group` writes
 * them from fixed keys.
 * Seeds: tests/fuzz/corpus/group/.
 */
#include "group.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECS 64

struct key {
    uint8_t pk[32], sk[64];
};

static struct key
key_make(unsigned i)
{
    struct key k;
    uint8_t seed[32] = {0};
    seed[0] = (uint8_t)i;
    seed[1] = 0x66;
    crypto_sign_seed_keypair(k.pk, k.sk, seed);
    return k;
}

/* One seed under construction: records appended with their length prefix. */
struct seed {
    struct kith__wbuf out;
    uint8_t hash[16][32];
    uint8_t gid[16];
    unsigned n;
};

/* Append a record by key `by` whose parents are the records numbered in `par` (-1 ends). */
static void
seed_rec(struct seed *s, unsigned kind, const struct key *by, const struct key *who,
         uint64_t cutoff, const int *par)
{
    struct kith__group_rec r = {0};
    struct kith__wbuf one = {0};
    uint8_t parents[8][32];
    uint32_t np = 0;
    while (par[np] >= 0) {
        memcpy(parents[np], s->hash[par[np]], 32);
        np++;
    }
    for (uint32_t i = 1; i < np; i++) /* ascending, as the encoding wants */
        for (uint32_t j = i; j > 0 && memcmp(parents[j - 1], parents[j], 32) > 0; j--) {
            uint8_t t[32];
            memcpy(t, parents[j], 32);
            memcpy(parents[j], parents[j - 1], 32);
            memcpy(parents[j - 1], t, 32);
        }
    r.kind = (uint8_t)kind;
    if (kind != KITH__GROUP_FOUND)
        memcpy(r.group, s->gid, 16);
    memcpy(r.author, by->pk, 32);
    r.parents = parents[0];
    r.nparents = np;
    r.time_ms = 1795629600000ull + s->n;
    if (who)
        memcpy(r.member, who->pk, 32);
    r.name = "device";
    r.name_len = 6;
    r.group_name = "home";
    r.group_name_len = 4;
    r.cutoff = cutoff;
    if (kind == KITH__GROUP_CUTHEAD) { /* who's head at seq `cutoff`, signed by who */
        memset(r.chain, 0xc7, sizeof r.chain);
        kith__head_sign(who->sk, kith__id_from_pk(who->pk), cutoff, r.chain, r.head_sig);
    }
    if (kith__group_build(&r, by->sk, &one, s->hash[s->n]) != 0)
        abort();
    if (kind == KITH__GROUP_FOUND && s->n == 0)
        memcpy(s->gid, s->hash[0], 16);
    uint8_t len[2] = {(uint8_t)(one.len >> 8), (uint8_t)one.len};
    kith__wbuf_put(&s->out, len, 2);
    kith__wbuf_put(&s->out, one.data, one.len);
    kith__wbuf_free(&one);
    s->n++;
}

#define P(...) ((const int[]){__VA_ARGS__, -1})

static void
seed_write(const char *dir, const char *name, struct seed *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s->out.data, 1, s->out.len, f) != s->out.len || fclose(f) != 0)
        abort();
    kith__wbuf_free(&s->out);
    memset(s, 0, sizeof *s);
}

static void
write_seeds(const char *dir)
{
    struct key a = key_make(1), b = key_make(2), c = key_make(3), d = key_make(4);
    struct seed s = {0};
    seed_rec(&s, KITH__GROUP_FOUND, &a, NULL, 0, P(-1));
    seed_write(dir, "found", &s);

    seed_rec(&s, KITH__GROUP_FOUND, &a, NULL, 0, P(-1));
    seed_rec(&s, KITH__GROUP_ADD, &a, &b, 0, P(0));
    seed_rec(&s, KITH__GROUP_ADD, &b, &c, 0, P(1));
    seed_rec(&s, KITH__GROUP_REMOVE, &a, &c, 7, P(1));
    seed_rec(&s, KITH__GROUP_REMOVE, &b, &c, 9, P(2));
    seed_write(dir, "concurrent-add-remove", &s);

    seed_rec(&s, KITH__GROUP_FOUND, &a, NULL, 0, P(-1));
    seed_rec(&s, KITH__GROUP_ADD, &a, &b, 0, P(0));
    seed_rec(&s, KITH__GROUP_REMOVE, &a, &b, 5, P(1));
    seed_rec(&s, KITH__GROUP_CUTHEAD, &a, &b, 5, P(2));
    seed_write(dir, "removal-with-cuthead", &s);

    seed_rec(&s, KITH__GROUP_FOUND, &a, NULL, 0, P(-1));
    seed_rec(&s, KITH__GROUP_ADD, &a, &b, 0, P(0));
    seed_rec(&s, KITH__GROUP_ADD, &b, &c, 0, P(1));
    seed_rec(&s, KITH__GROUP_REMOVE, &a, &b, 3, P(2));
    seed_rec(&s, KITH__GROUP_ADD, &b, &d, 0, P(2));
    seed_rec(&s, KITH__GROUP_REMOVE, &d, &a, 1, P(4));
    seed_rec(&s, KITH__GROUP_ADD, &a, &b, 0, P(3, 5));
    seed_write(dir, "void-after-removal", &s);

    seed_rec(&s, KITH__GROUP_FOUND, &a, NULL, 0, P(-1));
    seed_rec(&s, KITH__GROUP_ADD, &a, &b, 0, P(0));
    seed_rec(&s, KITH__GROUP_REMOVE, &a, &b, 4, P(1));
    seed_rec(&s, KITH__GROUP_REMOVE, &b, &a, 6, P(1));
    seed_rec(&s, KITH__GROUP_REMOVE, &b, &b, 600, P(1));
    seed_rec(&s, KITH__GROUP_ADD, &c, &d, 0, P(0));
    seed_rec(&s, KITH__GROUP_FOUND, &c, NULL, 0, P(-1));
    seed_write(dir, "mutual-removal-and-outsiders", &s);
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

static void
fold_check(const struct kith__group *g)
{
    size_t nm, nr;
    const struct kith__group_member *m = kith__group_members(g, &nm);
    kith__group_removed(g, &nr);
    for (size_t i = 0; i < nm; i++) {
        const struct kith__group_entry *e = kith__group_find(g, m[i].via);
        if (kith__group_cutoff(g, m[i].pk, NULL) || !e || e->status != KITH__GROUP_LIVE)
            abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *rec[MAX_RECS];
    size_t len[MAX_RECS], n = 0, off = 0;
    struct kith__wbuf again = {0};
    struct kith__group *g1 = NULL, *g2 = NULL;
    uint8_t gid[32] = {0}, d1[32], d2[32];

    while (n < MAX_RECS && off + 2 <= size) {
        size_t l = (size_t)data[off] << 8 | data[off + 1];
        if (l > size - off - 2)
            break;
        rec[n] = data + off + 2;
        len[n++] = l;
        off += 2 + l;
    }
    for (size_t i = 0; i < n; i++) {
        struct kith__group_rec r;
        char why[128];
        int rc = kith__group_decode(rec[i], len[i], &r, why, sizeof why);
        if (rc != 0) {
            if (rc != KITH_EMALFORMED && rc != KITH_ETOOBIG && rc != KITH_EVERSION)
                abort();
            continue;
        }
        if (r.kind > KITH__GROUP_REMOVE && r.kind != KITH__GROUP_CUTHEAD)
            continue;
        again.len = 0;
        if (kith__group_encode(&r, &again) != 0 || again.len != len[i] - KITH_SIG_BYTES ||
            memcmp(again.data, rec[i], again.len) != 0)
            abort(); /* accepted but not canonical */
    }
    kith__wbuf_free(&again);
    if (n == 0)
        return 0;

    kith__group_hash(rec[0], len[0], gid);
    if (kith__group_new(gid, &g1) != 0 || kith__group_new(gid, &g2) != 0)
        abort();
    for (size_t i = 0; i < n; i++)
        (void)kith__group_add(g1, rec[i], len[i]);
    for (size_t i = n; i-- > 0;)
        (void)kith__group_add(g2, rec[i], len[i]);
    if (kith__group_fold(g1) != 0 || kith__group_fold(g2) != 0)
        abort();
    fold_check(g1);
    kith__group_digest(g1, d1);
    kith__group_digest(g2, d2);
    size_t nm1, nm2, nh1, nh2;
    const struct kith__group_member *m1 = kith__group_members(g1, &nm1);
    const struct kith__group_member *m2 = kith__group_members(g2, &nm2);
    const uint8_t(*h1)[32] = kith__group_heads(g1, &nh1);
    const uint8_t(*h2)[32] = kith__group_heads(g2, &nh2);
    if (memcmp(d1, d2, 32) != 0 || nm1 != nm2 || nh1 != nh2 ||
        (nh1 && memcmp(h1, h2, 32 * nh1) != 0))
        abort();
    for (size_t i = 0; i < nm1; i++)
        if (memcmp(m1[i].pk, m2[i].pk, 32) != 0 || memcmp(m1[i].via, m2[i].via, 32) != 0)
            abort();
    kith__group_free(g1);
    kith__group_free(g2);
    return 0;
}
