/*
 * test_group.c — device groups, the pure core (core/group.c, core/group_fold.c): the record
 * codec and signatures (spec/encoding.md "Group records", GRP-1 .. GRP-3), and the membership
 * fold (spec/groups.md GRP-4 .. GRP-12). Fixed scenarios pin each rule; generated histories
 * check the fold against an oracle written straight from the rules in this file (causal pasts
 * by walking parents, liveness by plain recursion, no bit sets, no topological order), and
 * check that every delivery of the same set — shuffled, duplicated, one record at a time —
 * folds to the same statuses, members, cut-offs, heads and digest, and that a parent-closed
 * subset agrees with the whole on every record's validity (GRP-5).
 *
 * Histories: 3 to 7 devices; the founder and the devices it and others add make ADDs and
 * REMOVEs with whatever they have synced so far (so records are concurrent, and a removed
 * device goes on writing until it learns of its removal), sync with each other at random,
 * and now and then a forged record is thrown in: signed by an outsider, for another group,
 * with a flipped signature, a second FOUND, or a child of a forged one.
 *
 * KITH_SEED replays a run (the seed and case number are printed with every failure) and
 * KITH_CASES sets the number of generated cases.
 */
#include "core.h"
#include "group.h"
#include "seeded_rng.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1795629600000ull /* 2026-11-25T18:00:00Z */

static void
setup(void)
{
    cr_assert_geq(sodium_init(), 0);
}

TestSuite(group, .init = setup);

struct dev {
    uint8_t pk[32], sk[64];
    char name[16];
};

static struct dev
dev_make(unsigned i)
{
    struct dev d;
    uint8_t seed[32] = {0};
    seed[0] = (uint8_t)i;
    seed[1] = 0x6b;
    cr_assert_eq(crypto_sign_seed_keypair(d.pk, d.sk, seed), 0);
    snprintf(d.name, sizeof d.name, "dev%u", i);
    return d;
}

/* A signed record, held in memory the test frees with rec_free. */
struct rbytes {
    uint8_t *p;
    size_t len;
    uint8_t hash[32];
};

static struct rbytes
build(unsigned kind, const struct dev *author, const uint8_t gid[16], const uint8_t *parents,
      uint32_t nparents, uint64_t t, const uint8_t *member, const char *name, uint64_t cutoff)
{
    struct kith__group_rec r = {0};
    struct kith__wbuf out = {0};
    struct rbytes b;
    r.kind = (uint8_t)kind;
    if (kind != KITH__GROUP_FOUND)
        memcpy(r.group, gid, 16);
    memcpy(r.author, author->pk, 32);
    r.parents = parents;
    r.nparents = nparents;
    r.time_ms = t;
    if (member)
        memcpy(r.member, member, 32);
    r.name = name ? name : author->name;
    r.name_len = (uint32_t)strlen(r.name);
    r.group_name = "home";
    r.group_name_len = 4;
    r.cutoff = cutoff;
    cr_assert_eq(kith__group_build(&r, author->sk, &out, b.hash), 0, "build kind %u", kind);
    b.p = out.data;
    b.len = out.len;
    return b;
}

static void
rec_free(struct rbytes *b)
{
    free(b->p);
    b->p = NULL;
}

/* Parents given as records, sorted as the encoding wants them. */
static int
hash_order(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static uint32_t
parents_of(uint8_t out[][32], const struct rbytes *const *recs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        memcpy(out[i], recs[i]->hash, 32);
    qsort(out, n, 32, hash_order);
    return n;
}

static struct kith__group *
fold_of(const uint8_t gid[16], const struct rbytes *const *recs, size_t n)
{
    struct kith__group *g = NULL;
    cr_assert_eq(kith__group_new(gid, &g), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_geq(kith__group_add(g, recs[i]->p, recs[i]->len), 0);
    cr_assert_eq(kith__group_fold(g), 0);
    return g;
}

static enum kith__group_status
status_of(const struct kith__group *g, const struct rbytes *r)
{
    const struct kith__group_entry *e = kith__group_find(g, r->hash);
    cr_assert_not_null(e);
    return e->status;
}

/* ---- the record codec (GRP-1 .. GRP-3) -------------------------------------------------- */

/* A founder, an ADD and a REMOVE: the three kinds, built by one device. */
struct trio {
    struct dev a, b;
    uint8_t gid[16];
    struct rbytes found, add, rem;
};

static struct trio
trio_make(void)
{
    struct trio t;
    uint8_t par[1][32];
    t.a = dev_make(1);
    t.b = dev_make(2);
    t.found = build(KITH__GROUP_FOUND, &t.a, NULL, NULL, 0, T0, NULL, "laptop", 0);
    memcpy(t.gid, t.found.hash, 16);
    memcpy(par[0], t.found.hash, 32);
    t.add = build(KITH__GROUP_ADD, &t.a, t.gid, par[0], 1, T0 + 1, t.b.pk, "phone", 0);
    memcpy(par[0], t.add.hash, 32);
    t.rem = build(KITH__GROUP_REMOVE, &t.a, t.gid, par[0], 1, T0 + 2, t.b.pk, NULL, 41);
    return t;
}

static void
trio_free(struct trio *t)
{
    rec_free(&t->found);
    rec_free(&t->add);
    rec_free(&t->rem);
}

/* GRP-1, GRP-2: decode gives back every field, re-encoding gives the same bytes, the hash is
 * BLAKE2b-256 of all bytes, and the signature is plain Ed25519 over "kith-gr1" || encoding. */
Test(group, record_round_trip)
{
    struct trio t = trio_make();
    const struct rbytes *all[] = {&t.found, &t.add, &t.rem};
    for (int i = 0; i < 3; i++) {
        struct kith__group_rec r;
        struct kith__wbuf again = {0};
        uint8_t h[32], msg[8 + 4096];
        char why[128];
        const struct rbytes *b = all[i];
        cr_assert_eq(kith__group_verify(b->p, b->len, &r, why, sizeof why), 0, "%s", why);
        cr_assert_eq(r.kind, i + 1);
        cr_assert_eq(memcmp(r.author, t.a.pk, 32), 0);
        cr_assert_eq(r.time_ms, T0 + (uint64_t)i);
        cr_assert_eq(kith__group_encode(&r, &again), 0);
        cr_assert_eq(again.len, b->len - 64);
        cr_assert_eq(memcmp(again.data, b->p, again.len), 0, "re-encoding differs");
        kith__wbuf_free(&again);
        cr_assert_eq(crypto_generichash(h, 32, b->p, b->len, NULL, 0), 0);
        cr_assert_eq(memcmp(h, b->hash, 32), 0, "hash covers encoding and signature");
        memcpy(msg, "kith-gr1", 8);
        memcpy(msg + 8, b->p, b->len - 64);
        cr_assert_eq(crypto_sign_verify_detached(b->p + b->len - 64, msg, 8 + b->len - 64, t.a.pk),
                     0);
    }
    struct kith__group_rec r;
    cr_assert_eq(kith__group_decode(t.found.p, t.found.len, &r, NULL, 0), 0);
    cr_assert_eq(r.nparents, 0);
    cr_assert(r.name_len == 6 && memcmp(r.name, "laptop", 6) == 0);
    cr_assert(r.group_name_len == 4 && memcmp(r.group_name, "home", 4) == 0);
    cr_assert_eq(kith__group_decode(t.add.p, t.add.len, &r, NULL, 0), 0);
    cr_assert_eq(memcmp(r.group, t.gid, 16), 0);
    cr_assert_eq(r.nparents, 1);
    cr_assert_eq(memcmp(kith__group_parent(&r, 0), t.found.hash, 32), 0);
    cr_assert_eq(memcmp(r.member, t.b.pk, 32), 0);
    cr_assert(r.name_len == 5 && memcmp(r.name, "phone", 5) == 0);
    cr_assert_eq(kith__group_decode(t.rem.p, t.rem.len, &r, NULL, 0), 0);
    cr_assert_eq(r.cutoff, 41);
    trio_free(&t);
}

/* The FOUND's exact bytes: the layout of spec/encoding.md "Group records". */
Test(group, found_bytes)
{
    struct trio t = trio_make();
    const uint8_t *p = t.found.p;
    cr_assert_eq(p[0], 0x97); /* fixarray(7) */
    cr_assert_eq(p[1], 0x01); /* FOUND */
    cr_assert(p[2] == 0xc4 && p[3] == 16);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(p[4 + i], 0);
    cr_assert(p[20] == 0xc4 && p[21] == 32 && memcmp(p + 22, t.a.pk, 32) == 0);
    cr_assert_eq(p[54], 0x90); /* no parents */
    cr_assert_eq(p[55], 0xcf); /* time, uint 64 */
    cr_assert_eq(kith__be64_get(p + 56), T0);
    cr_assert(p[64] == 0xa6 && memcmp(p + 65, "laptop", 6) == 0);
    cr_assert(p[71] == 0xa4 && memcmp(p + 72, "home", 4) == 0);
    cr_assert_eq(t.found.len, 76 + 64);
    trio_free(&t);
}

/* GRP-1: every single-bit change of a signed record is refused, by the decoder or by the
 * signature; so is every truncation and every extension. */
Test(group, bit_flips_refused)
{
    struct trio t = trio_make();
    const struct rbytes *all[] = {&t.found, &t.add, &t.rem};
    for (int k = 0; k < 3; k++) {
        const struct rbytes *b = all[k];
        uint8_t buf[4200];
        struct kith__group_rec r;
        for (size_t i = 0; i < b->len * 8; i++) {
            memcpy(buf, b->p, b->len);
            buf[i / 8] ^= (uint8_t)(1u << (i % 8));
            int rc = kith__group_verify(buf, b->len, &r, NULL, 0);
            cr_assert(rc == KITH_EMALFORMED || rc == KITH_EBADSIG || rc == KITH_EVERSION,
                      "record %d bit %zu: %d", k, i, rc);
        }
        for (size_t len = 0; len < b->len; len++)
            cr_assert_neq(kith__group_verify(b->p, len, &r, NULL, 0), 0, "cut to %zu", len);
        memcpy(buf, b->p, b->len);
        buf[b->len] = 0;
        cr_assert_neq(kith__group_verify(buf, b->len + 1, &r, NULL, 0), 0);
    }
    trio_free(&t);
}

/* A record signed by another key than the author it names is refused (EBADSIG), and the
 * builder will not make one. */
Test(group, forged_author_refused)
{
    struct trio t = trio_make();
    struct kith__group_rec r;
    struct kith__wbuf out = {0};
    uint8_t h[32], buf[512];
    cr_assert_eq(kith__group_decode(t.add.p, t.add.len, &r, NULL, 0), 0);
    cr_assert_eq(kith__group_build(&r, t.b.sk, &out, h), KITH_EINVAL);
    /* put b's key as author, keep a's signature */
    memcpy(buf, t.add.p, t.add.len);
    memcpy(buf + 22, t.b.pk, 32);
    char why[128];
    cr_assert_eq(kith__group_verify(buf, t.add.len, &r, why, sizeof why), KITH_EBADSIG);
    cr_assert(strstr(why, "signature"), "%s", why);
    trio_free(&t);
}

/* Hand-made encodings that break one rule each (GRP-1, GRP-3). */
static int
decode_hex(const char *hex, uint8_t *buf, size_t *len)
{
    struct kith__group_rec r;
    size_t n = 0;
    cr_assert_eq(sodium_hex2bin(buf, 4096, hex, strlen(hex), " ", &n, NULL), 0);
    memset(buf + n, 0x55, 64); /* a signature-sized tail */
    *len = n + 64;
    return kith__group_decode(buf, *len, &r, NULL, 0);
}

#define GID "c410 00000000000000000000000000000000"
#define PK "c420 0101010101010101010101010101010101010101010101010101010101010101"
#define H1 "c420 1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "c420 2222222222222222222222222222222222222222222222222222222222222222"

Test(group, encodings_refused)
{
    uint8_t buf[4200];
    size_t len;
    /* a valid ADD shape, to show the table below differs from it in one rule each */
    cr_assert_eq(decode_hex("97 02 " GID " " PK " 92 " H1 " " H2 " 05 " PK " a1 78", buf, &len), 0);
    cr_assert_eq(decode_hex("97 02 " GID " " PK " 92 " H2 " " H1 " 05 " PK " a1 78", buf, &len),
                 KITH_EMALFORMED, "parents out of order");
    cr_assert_eq(decode_hex("97 02 " GID " " PK " 92 " H1 " " H1 " 05 " PK " a1 78", buf, &len),
                 KITH_EMALFORMED, "a parent repeated");
    cr_assert_eq(decode_hex("97 02 " GID " " PK " 90 05 " PK " a1 78", buf, &len), KITH_EMALFORMED,
                 "an ADD without parents");
    cr_assert_eq(decode_hex("97 01 " GID " " PK " 91 " H1 " 05 a1 78 a1 78", buf, &len),
                 KITH_EMALFORMED, "a FOUND with a parent");
    cr_assert_eq(decode_hex("97 01 c410 01000000000000000000000000000000 " PK " 90 05 a1 78 a1 78",
                            buf, &len),
                 KITH_EMALFORMED, "a FOUND naming a group");
    cr_assert_eq(decode_hex("97 01 " GID " " PK " 90 05 a1 78 a1 78", buf, &len), 0);
    cr_assert_eq(decode_hex("97 01 " GID " " PK " 90 05 a0 a1 78", buf, &len), KITH_EMALFORMED,
                 "an empty name");
    cr_assert_eq(decode_hex("97 01 " GID " " PK " 90 05 a2 7800 a1 78", buf, &len), KITH_EMALFORMED,
                 "a NUL in a name");
    cr_assert_eq(decode_hex("97 01 " GID " " PK " 90 05 a2 c328 a1 78", buf, &len), KITH_EMALFORMED,
                 "a name not UTF-8");
    cr_assert_eq(decode_hex("97 01 " GID " " PK " 90 05 d9 40 "
                            "78787878787878787878787878787878787878787878787878787878787878787878"
                            "787878787878787878787878787878787878787878787878787878787878 a1 78",
                            buf, &len),
                 KITH_EMALFORMED, "a name of 64 bytes");
    cr_assert_eq(decode_hex("97 01 " GID " " PK " 90 cc05 a1 78 a1 78", buf, &len), KITH_EMALFORMED,
                 "time not in its shortest form");
    cr_assert_eq(decode_hex("97 01 " GID " " PK " 90 cf0001000000000000 a1 78 a1 78", buf, &len),
                 KITH_EMALFORMED, "time beyond 48 bits");
    cr_assert_eq(decode_hex("96 02 " GID " " PK " 91 " H1 " 05 " PK, buf, &len), KITH_EMALFORMED,
                 "an ADD without a name");
    cr_assert_eq(decode_hex("98 02 " GID " " PK " 91 " H1 " 05 " PK " a1 78 00", buf, &len),
                 KITH_EMALFORMED, "an ADD with a field more");
    cr_assert_eq(decode_hex("97 03 " GID " " PK " 91 " H1 " 05 " PK " d0 05", buf, &len),
                 KITH_EMALFORMED, "a cutoff in a signed form");
    cr_assert_eq(decode_hex("97 03 " GID " " PK " 91 " H1 " 05 " PK " 2a", buf, &len), 0);
    cr_assert_eq(decode_hex("97 02 c40f 000000000000000000000000000000 " PK " 91 " H1 " 05 " PK
                            " a1 78",
                            buf, &len),
                 KITH_EMALFORMED, "a group of 15 bytes");
    cr_assert_eq(decode_hex("97 00 " GID " " PK " 91 " H1 " 05 " PK " a1 78", buf, &len),
                 KITH_EMALFORMED, "kind 0");
    cr_assert_eq(decode_hex("97 cc80 " GID " " PK " 91 " H1 " 05 " PK " a1 78", buf, &len),
                 KITH_EMALFORMED, "kind 128");
    /* GRP-3: a critical kind this version does not know, and an ancillary one */
    cr_assert_eq(decode_hex("97 04 " GID " " PK " 91 " H1 " 05 " PK " a1 78", buf, &len),
                 KITH_EVERSION);
    cr_assert_eq(decode_hex("97 3f " GID " " PK " 91 " H1 " 05 " PK " a1 78", buf, &len),
                 KITH_EVERSION);
    cr_assert_eq(decode_hex("97 40 " GID " " PK " 91 " H1 " 05 " PK " a1 78", buf, &len), 0);
    cr_assert_eq(decode_hex("96 40 " GID " " PK " 91 " H1 " 05 92 01 c0", buf, &len), 0);
    cr_assert_eq(decode_hex("95 40 " GID " " PK " 90 05", buf, &len), KITH_EMALFORMED,
                 "only a FOUND has no parents");
    cr_assert_eq(decode_hex("96 40 " GID " " PK " 91 " H1 " 05 81 01 02", buf, &len),
                 KITH_EMALFORMED, "a map in an ancillary body");
    cr_assert_eq(decode_hex("97 02 " GID " " PK " 91 " H1 " 05 " PK " a1 78 00", buf, &len),
                 KITH_EMALFORMED, "a byte after the object");
    /* the guard: a count no input can hold costs nothing */
    cr_assert_eq(decode_hex("dd 01000000", buf, &len), KITH_EMALFORMED);
    memset(buf, 0x90, sizeof buf);
    struct kith__group_rec r;
    cr_assert_eq(kith__group_decode(buf, 4097, &r, NULL, 0), KITH_ETOOBIG);
}

/* A CUTHEAD (kind 65) by a, naming the REMOVE, carrying b's head at seq 41 signed with `hsk`
 * (b's key for a good one). */
static struct rbytes
cuthead_build(const struct trio *t, const uint8_t *hsk, const uint8_t chain[32])
{
    struct kith__group_rec r = {0};
    struct kith__wbuf out = {0};
    struct rbytes b;
    r.kind = KITH__GROUP_CUTHEAD;
    memcpy(r.group, t->gid, 16);
    memcpy(r.author, t->a.pk, 32);
    r.parents = t->rem.hash;
    r.nparents = 1;
    r.time_ms = T0 + 3;
    memcpy(r.member, t->b.pk, 32);
    r.cutoff = 41;
    memcpy(r.chain, chain, 32);
    kith__head_sign(hsk, kith__id_from_pk(t->b.pk), 41, chain, r.head_sig);
    cr_assert_eq(kith__group_build(&r, t->a.sk, &out, b.hash), 0);
    b.p = out.data;
    b.len = out.len;
    return b;
}

/* GRP-24: a CUTHEAD decodes to its fields and encodes back to the same bytes; its head
 * signature is checked with the record's, so one the member did not make is refused as a
 * bad signature (the fold says BADSIG) while the record signature itself verifies; a good one
 * is valid under the REMOVE and changes no member or cut-off. */
Test(group, cuthead_carries_a_signed_head)
{
    struct trio t = trio_make();
    uint8_t chain[32];
    struct kith__group_rec r;
    struct kith__wbuf again = {0};
    char why[128];
    memset(chain, 0x5a, sizeof chain);
    struct rbytes good = cuthead_build(&t, t.b.sk, chain);
    struct rbytes bad = cuthead_build(&t, t.a.sk, chain); /* a signs b's head: forged */

    cr_assert_eq(kith__group_verify(good.p, good.len, &r, why, sizeof why), 0, "%s", why);
    cr_assert_eq(r.kind, KITH__GROUP_CUTHEAD);
    cr_assert_eq(r.cutoff, 41);
    cr_assert_arr_eq(r.member, t.b.pk, 32);
    cr_assert_arr_eq(r.chain, chain, 32);
    cr_assert_eq(kith__group_encode(&r, &again), 0);
    cr_assert_eq(again.len, good.len - 64);
    cr_assert_arr_eq(again.data, good.p, again.len);
    kith__wbuf_free(&again);
    cr_assert_eq(kith__group_decode(bad.p, bad.len, &r, NULL, 0), 0);
    cr_assert_eq(kith__group_verify(bad.p, bad.len, &r, why, sizeof why), KITH_EBADSIG);
    cr_assert(strstr(why, "head signature") != NULL, "%s", why);
    /* seq 0 is no head */
    r.cutoff = 0;
    cr_assert_eq(kith__group_encode(&r, &again), KITH_EINVAL);
    kith__wbuf_free(&again);

    const struct rbytes *set[] = {&t.found, &t.add, &t.rem, &good, &bad};
    struct kith__group *g = fold_of(t.gid, set, 5);
    uint64_t c = 0;
    cr_assert_eq(status_of(g, &good), KITH__GROUP_LIVE);
    cr_assert_eq(status_of(g, &bad), KITH__GROUP_BADSIG);
    cr_assert(kith__group_cutoff(g, t.b.pk, &c) && c == 41);
    cr_assert_not(kith__group_is_member(g, t.b.pk));
    cr_assert_not(kith__group_needs_upgrade(g));
    kith__group_free(g);
    rec_free(&good);
    rec_free(&bad);
    trio_free(&t);
}

/* Bounds at their edge: 64 parents and two names of 63 bytes still fit in a record. */
Test(group, largest_record_fits)
{
    struct dev a = dev_make(1);
    uint8_t par[64][32], gid[16] = {1};
    char name[64];
    memset(name, 'n', 63);
    name[63] = '\0';
    for (int i = 0; i < 64; i++) {
        memset(par[i], 0, 32);
        par[i][0] = (uint8_t)i;
    }
    struct rbytes r =
        build(KITH__GROUP_ADD, &a, gid, par[0], 64, KITH__GROUP_MAX_TIME, a.pk, name, 0);
    struct kith__group_rec d;
    cr_assert_leq(r.len, KITH__GROUP_MAX_RECORD);
    cr_assert_eq(kith__group_verify(r.p, r.len, &d, NULL, 0), 0);
    cr_assert_eq(d.nparents, 64);
    cr_assert_eq(memcmp(kith__group_parent(&d, 63), par[63], 32), 0);
    struct kith__group_rec big = d; /* views into r, freed at the end */
    struct kith__wbuf out = {0};
    uint8_t many[65][32] = {{0}};
    for (int i = 0; i < 65; i++)
        many[i][31] = (uint8_t)i;
    big.parents = many[0];
    big.parent_stride = 0;
    big.nparents = 65;
    cr_assert_eq(kith__group_encode(&big, &out), KITH_EINVAL);
    big.nparents = 2;
    big.name_len = 64;
    cr_assert_eq(kith__group_encode(&big, &out), KITH_EINVAL);
    kith__wbuf_free(&out);
    rec_free(&r);
}

/* ---- the fold, fixed scenarios (GRP-4 .. GRP-12) ---------------------------------------- */

/* One history under construction: the founder a and devices b..e. */
struct hist {
    struct dev d[6]; /* d[1] = a, the founder */
    uint8_t gid[16];
    struct rbytes r[32];
    size_t n;
};

static struct hist *
hist_new(void)
{
    struct hist *h = calloc(1, sizeof *h);
    cr_assert_not_null(h);
    for (unsigned i = 0; i < 6; i++)
        h->d[i] = dev_make(i);
    h->r[0] = build(KITH__GROUP_FOUND, &h->d[1], NULL, NULL, 0, T0, NULL, "laptop", 0);
    memcpy(h->gid, h->r[0].hash, 16);
    h->n = 1;
    return h;
}

static void
hist_free(struct hist *h)
{
    for (size_t i = 0; i < h->n; i++)
        rec_free(&h->r[i]);
    free(h);
}

/* Append a record by device `by` with the given parents (indexes into h->r, -1 ends). */
static const struct rbytes *
hist_rec(struct hist *h, unsigned kind, unsigned by, unsigned who, uint64_t cutoff,
         const int *parents)
{
    uint8_t par[8][32];
    const struct rbytes *pr[8];
    uint32_t np = 0;
    while (parents[np] >= 0) {
        pr[np] = &h->r[parents[np]];
        np++;
    }
    parents_of(par, pr, np);
    h->r[h->n] =
        build(kind, &h->d[by], h->gid, par[0], np, T0 + h->n, h->d[who].pk, h->d[who].name, cutoff);
    return &h->r[h->n++];
}

#define P(...) ((const int[]){__VA_ARGS__, -1})

static struct kith__group *
hist_fold(const struct hist *h)
{
    const struct rbytes *all[32];
    for (size_t i = 0; i < h->n; i++)
        all[i] = &h->r[i];
    return fold_of(h->gid, all, h->n);
}

static bool
member(const struct kith__group *g, const struct hist *h, unsigned i)
{
    return kith__group_is_member(g, h->d[i].pk);
}

Test(group, founder_alone)
{
    struct hist *h = hist_new();
    struct kith__group *g = hist_fold(h);
    size_t n;
    const struct kith__group_member *m = kith__group_members(g, &n);
    cr_assert_eq(n, 1);
    cr_assert_eq(memcmp(m[0].pk, h->d[1].pk, 32), 0);
    cr_assert(m[0].name_len == 6 && memcmp(m[0].name, "laptop", 6) == 0);
    cr_assert_eq(memcmp(m[0].added_by, h->d[1].pk, 32), 0);
    cr_assert_eq(memcmp(m[0].via, h->r[0].hash, 32), 0);
    cr_assert_eq(m[0].time_ms, T0);
    const uint8_t(*heads)[32] = kith__group_heads(g, &n);
    cr_assert(n == 1 && memcmp(heads[0], h->r[0].hash, 32) == 0);
    uint8_t d[32], want[32];
    kith__group_digest(g, d);
    crypto_generichash(want, 32, h->r[0].hash, 32, NULL, 0);
    cr_assert_eq(memcmp(d, want, 32), 0, "GRP-12: digest over the sorted hashes");
    cr_assert_not(kith__group_needs_upgrade(g));
    kith__group_free(g);
    hist_free(h);
}

/* GRP-5: a record waits for a parent not held, and counts once it arrives. */
Test(group, waits_for_parent)
{
    struct hist *h = hist_new();
    const struct rbytes *add = hist_rec(h, KITH__GROUP_ADD, 1, 2, 0, P(0));
    struct kith__group *g = fold_of(h->gid, &add, 1);
    cr_assert_eq(status_of(g, add), KITH__GROUP_WAITING);
    cr_assert_not(member(g, h, 2));
    cr_assert_eq(kith__group_add(g, h->r[0].p, h->r[0].len), 0);
    cr_assert_eq(kith__group_fold(g), 0);
    cr_assert_eq(status_of(g, add), KITH__GROUP_LIVE);
    cr_assert(member(g, h, 1) && member(g, h, 2));
    size_t n;
    const struct kith__group_member *m = kith__group_members(g, &n);
    cr_assert_eq(n, 2);
    const struct kith__group_member *mb = memcmp(m[0].pk, h->d[2].pk, 32) == 0 ? &m[0] : &m[1];
    cr_assert_eq(memcmp(mb->added_by, h->d[1].pk, 32), 0);
    cr_assert_eq(memcmp(mb->via, add->hash, 32), 0);
    kith__group_free(g);
    hist_free(h);
}

/* GRP-7: a REMOVE signed by a key that is not a member is invalid and removes nobody; a record
 * naming it as a parent is invalid too (GRP-5). */
Test(group, removal_by_non_member_invalid)
{
    struct hist *h = hist_new();
    const struct rbytes *rem = hist_rec(h, KITH__GROUP_REMOVE, 3, 1, 0, P(0));
    const struct rbytes *add = hist_rec(h, KITH__GROUP_ADD, 1, 2, 0, P(0, 1));
    struct kith__group *g = hist_fold(h);
    cr_assert_eq(status_of(g, rem), KITH__GROUP_NOTMEMBER);
    cr_assert_eq(status_of(g, add), KITH__GROUP_BADPARENT);
    cr_assert(member(g, h, 1));
    cr_assert_not(member(g, h, 2));
    cr_assert_not(kith__group_cutoff(g, h->d[1].pk, NULL));
    size_t n;
    kith__group_heads(g, &n);
    cr_assert_eq(n, 1, "invalid records are not heads");
    kith__group_free(g);
    hist_free(h);
}

/* GRP-6: records of another group, a second FOUND, and a record whose group field is
 * changed (its signature then fails) count for nothing here. */
Test(group, foreign_records_refused)
{
    struct hist *h = hist_new();
    struct rbytes other = build(KITH__GROUP_FOUND, &h->d[2], NULL, NULL, 0, T0, NULL, "x", 0);
    uint8_t ogid[16], par[1][32];
    memcpy(ogid, other.hash, 16);
    memcpy(par[0], h->r[0].hash, 32);
    struct rbytes wrong = build(KITH__GROUP_ADD, &h->d[1], ogid, par[0], 1, T0, h->d[3].pk, "c", 0);
    struct rbytes moved = {0};
    const struct rbytes *add = hist_rec(h, KITH__GROUP_ADD, 1, 2, 0, P(0));
    moved.len = add->len;
    moved.p = malloc(moved.len);
    memcpy(moved.p, add->p, moved.len);
    memcpy(moved.p + 4, ogid, 16);
    crypto_generichash(moved.hash, 32, moved.p, moved.len, NULL, 0);
    const struct rbytes *all[] = {&h->r[0], &other, &wrong, &moved};
    struct kith__group *g = fold_of(h->gid, all, 4);
    cr_assert_eq(status_of(g, &other), KITH__GROUP_FOREIGN);
    cr_assert_eq(status_of(g, &wrong), KITH__GROUP_FOREIGN);
    cr_assert_eq(status_of(g, &moved), KITH__GROUP_BADSIG);
    size_t n;
    kith__group_members(g, &n);
    cr_assert_eq(n, 1);
    kith__group_free(g);
    rec_free(&other);
    rec_free(&wrong);
    rec_free(&moved);
    hist_free(h);
}

/* GRP-8: a removal wins over a concurrent add. */
Test(group, remove_wins_over_concurrent_add)
{
    struct hist *h = hist_new();
    hist_rec(h, KITH__GROUP_ADD, 1, 2, 0, P(0));                                /* 1: a adds b */
    const struct rbytes *addc = hist_rec(h, KITH__GROUP_ADD, 1, 3, 0, P(1));    /* a adds c */
    const struct rbytes *remc = hist_rec(h, KITH__GROUP_REMOVE, 2, 3, 7, P(1)); /* b removes c */
    struct kith__group *g = hist_fold(h);
    cr_assert_eq(status_of(g, addc), KITH__GROUP_LIVE);
    cr_assert_eq(status_of(g, remc), KITH__GROUP_LIVE);
    cr_assert_not(member(g, h, 3));
    uint64_t c = 0;
    cr_assert(kith__group_cutoff(g, h->d[3].pk, &c));
    cr_assert_eq(c, 7);
    size_t n;
    kith__group_heads(g, &n);
    cr_assert_eq(n, 2, "the two concurrent records are both heads");
    kith__group_free(g);
    hist_free(h);
}

/* GRP-8: a removed key never returns, whoever adds it again later. */
Test(group, removed_key_never_returns)
{
    struct hist *h = hist_new();
    hist_rec(h, KITH__GROUP_ADD, 1, 2, 0, P(0));                              /* 1 */
    hist_rec(h, KITH__GROUP_REMOVE, 1, 2, 3, P(1));                           /* 2 */
    const struct rbytes *again = hist_rec(h, KITH__GROUP_ADD, 1, 2, 0, P(2)); /* 3 */
    const struct rbytes *late = hist_rec(h, KITH__GROUP_ADD, 2, 4, 0, P(3));  /* b adds d */
    struct kith__group *g = hist_fold(h);
    cr_assert_eq(status_of(g, again), KITH__GROUP_LIVE);
    cr_assert_not(member(g, h, 2));
    cr_assert_eq(status_of(g, late), KITH__GROUP_NOTMEMBER, "b's removal is in its past");
    cr_assert_not(member(g, h, 4));
    kith__group_free(g);
    hist_free(h);
}

/* GRP-9: what a removed device signs without having seen its removal admits nobody, nor does
 * what the keys it admitted sign; what it signed before, in the past of its removal, stands. */
Test(group, records_after_removal_void)
{
    struct hist *h = hist_new();
    hist_rec(h, KITH__GROUP_ADD, 1, 2, 0, P(0));                                /* 1: a adds b */
    const struct rbytes *addc = hist_rec(h, KITH__GROUP_ADD, 2, 3, 0, P(1));    /* 2: b adds c */
    const struct rbytes *remb = hist_rec(h, KITH__GROUP_REMOVE, 1, 2, 9, P(2)); /* 3: a rm b */
    const struct rbytes *addd = hist_rec(h, KITH__GROUP_ADD, 2, 4, 0, P(2));    /* 4: b adds d */
    const struct rbytes *adde = hist_rec(h, KITH__GROUP_ADD, 4, 5, 0, P(4));    /* 5: d adds e */
    const struct rbytes *remc = hist_rec(h, KITH__GROUP_REMOVE, 4, 3, 0, P(5)); /* 6: d rm c */
    struct kith__group *g = hist_fold(h);
    cr_assert_eq(status_of(g, addc), KITH__GROUP_LIVE, "in the past of b's removal");
    cr_assert_eq(status_of(g, remb), KITH__GROUP_LIVE);
    cr_assert_eq(status_of(g, addd), KITH__GROUP_VOID);
    cr_assert_eq(status_of(g, adde), KITH__GROUP_VOID, "d was admitted by a void record");
    cr_assert_eq(status_of(g, remc), KITH__GROUP_VOID);
    cr_assert(member(g, h, 1));
    cr_assert_not(member(g, h, 3), "a valid removal removes, void or not (GRP-8)");
    cr_assert_not(member(g, h, 2));
    cr_assert_not(member(g, h, 4), "admitted only by a void ADD");
    cr_assert_not(member(g, h, 5), "admitted by a key a void ADD admitted");
    /* a void REMOVE still removes (GRP-8), but its cut-off does not count (GRP-10) */
    uint64_t c = 1;
    cr_assert(kith__group_cutoff(g, h->d[3].pk, &c));
    cr_assert_eq(c, 0);
    /* once b's removal is in their past, b's records are invalid, not void */
    const struct rbytes *after = hist_rec(h, KITH__GROUP_ADD, 2, 5, 0, P(3, 4));
    kith__group_free(g);
    g = hist_fold(h);
    cr_assert_eq(status_of(g, after), KITH__GROUP_NOTMEMBER);
    kith__group_free(g);
    hist_free(h);
}

/* GRP-10: the cut-off of a key removed by concurrent removals is the highest a live one
 * names; the removed key's own concurrent self-removal, void, cannot raise it. */
Test(group, cutoff_is_max_of_concurrent_removals)
{
    struct hist *h = hist_new();
    hist_rec(h, KITH__GROUP_ADD, 1, 2, 0, P(0));     /* 1: a adds b */
    hist_rec(h, KITH__GROUP_ADD, 1, 3, 0, P(1));     /* 2: a adds c */
    hist_rec(h, KITH__GROUP_REMOVE, 1, 3, 10, P(2)); /* 3: a removes c at 10 */
    hist_rec(h, KITH__GROUP_REMOVE, 2, 3, 20, P(2)); /* 4: b removes c at 20 */
    const struct rbytes *self = hist_rec(h, KITH__GROUP_REMOVE, 3, 3, 1000000, P(2));
    struct kith__group *g = hist_fold(h);
    uint64_t c = 0;
    cr_assert(kith__group_cutoff(g, h->d[3].pk, &c));
    cr_assert_eq(c, 20);
    cr_assert_eq(status_of(g, self), KITH__GROUP_VOID);
    size_t n;
    const struct kith__group_removed *rm = kith__group_removed(g, &n);
    cr_assert(n == 1 && memcmp(rm[0].pk, h->d[3].pk, 32) == 0 && rm[0].cutoff == 20);
    kith__group_free(g);
    hist_free(h);
}

/* GRP-8, GRP-10: a device may remove itself (retiring its key); its removal is live. */
Test(group, self_removal)
{
    struct hist *h = hist_new();
    hist_rec(h, KITH__GROUP_ADD, 1, 2, 0, P(0));
    const struct rbytes *self = hist_rec(h, KITH__GROUP_REMOVE, 2, 2, 5, P(1));
    struct kith__group *g = hist_fold(h);
    uint64_t c = 0;
    cr_assert_eq(status_of(g, self), KITH__GROUP_LIVE);
    cr_assert(kith__group_cutoff(g, h->d[2].pk, &c) && c == 5);
    cr_assert_not(member(g, h, 2));
    kith__group_free(g);
    hist_free(h);
}

/* GRP-8, GRP-10: two devices removing each other concurrently are both removed; neither
 * removal is live, so each cut-off is the lowest named for that key. */
Test(group, mutual_removal_removes_both)
{
    struct hist *h = hist_new();
    hist_rec(h, KITH__GROUP_ADD, 1, 2, 0, P(0));
    hist_rec(h, KITH__GROUP_ADD, 1, 3, 0, P(1));
    const struct rbytes *r1 = hist_rec(h, KITH__GROUP_REMOVE, 2, 3, 4, P(2));
    const struct rbytes *r2 = hist_rec(h, KITH__GROUP_REMOVE, 3, 2, 6, P(2));
    struct kith__group *g = hist_fold(h);
    uint64_t c;
    cr_assert_eq(status_of(g, r1), KITH__GROUP_VOID);
    cr_assert_eq(status_of(g, r2), KITH__GROUP_VOID);
    cr_assert_not(member(g, h, 2));
    cr_assert_not(member(g, h, 3));
    cr_assert(member(g, h, 1));
    cr_assert(kith__group_cutoff(g, h->d[3].pk, &c) && c == 4);
    cr_assert(kith__group_cutoff(g, h->d[2].pk, &c) && c == 6);
    kith__group_free(g);
    hist_free(h);
}

/* Idempotence: a record held twice is held once. */
Test(group, adding_twice_changes_nothing)
{
    struct hist *h = hist_new();
    hist_rec(h, KITH__GROUP_ADD, 1, 2, 0, P(0));
    hist_rec(h, KITH__GROUP_REMOVE, 2, 1, 3, P(1));
    struct kith__group *g = hist_fold(h);
    uint8_t d1[32], d2[32];
    size_t n1, n2;
    kith__group_digest(g, d1);
    kith__group_members(g, &n1);
    for (size_t i = 0; i < h->n; i++)
        cr_assert_eq(kith__group_add(g, h->r[i].p, h->r[i].len), 1);
    cr_assert_eq(kith__group_fold(g), 0);
    kith__group_digest(g, d2);
    kith__group_members(g, &n2);
    cr_assert_eq(memcmp(d1, d2, 32), 0);
    cr_assert_eq(n1, n2);
    cr_assert_eq(kith__group_count(g), h->n);
    kith__group_free(g);
    hist_free(h);
}

/* Sign arbitrary encoding bytes as `d` would. */
static struct rbytes
sign_raw(const struct dev *d, const uint8_t *enc, size_t len)
{
    struct rbytes b;
    uint8_t msg[8 + 4096];
    b.len = len + 64;
    b.p = malloc(b.len);
    memcpy(b.p, enc, len);
    memcpy(msg, "kith-gr1", 8);
    memcpy(msg + 8, enc, len);
    crypto_sign_detached(b.p + len, NULL, msg, 8 + len, d->sk);
    crypto_generichash(b.hash, 32, b.p, b.len, NULL, 0);
    return b;
}

/* GRP-3: a critical kind this version does not know cannot be judged: it and what descends
 * from it wait, and the fold says an upgrade is needed. An ancillary kind is judged like any
 * record and changes no membership. */
Test(group, unknown_kinds)
{
    struct hist *h = hist_new();
    const struct rbytes *add = hist_rec(h, KITH__GROUP_ADD, 1, 2, 0, P(0));
    uint8_t enc[512];
    size_t len = add->len - 64;
    memcpy(enc, add->p, len);
    enc[1] = 0x04;
    struct rbytes crit = sign_raw(&h->d[1], enc, len);
    enc[1] = 0x40;
    struct rbytes anc = sign_raw(&h->d[1], enc, len);
    struct rbytes anc_out = sign_raw(&h->d[3], enc, len); /* author field still a: bad sig */
    memcpy(enc + 22, h->d[3].pk, 32);
    struct rbytes anc_nm = sign_raw(&h->d[3], enc, len);
    uint8_t par[1][32];
    memcpy(par[0], crit.hash, 32);
    struct rbytes child =
        build(KITH__GROUP_ADD, &h->d[1], h->gid, par[0], 1, T0, h->d[4].pk, "d", 0);
    const struct rbytes *all[] = {&h->r[0], &crit, &anc, &anc_out, &anc_nm, &child};
    struct kith__group *g = fold_of(h->gid, all, 6);
    cr_assert_eq(status_of(g, &crit), KITH__GROUP_UNKNOWN);
    cr_assert_eq(status_of(g, &child), KITH__GROUP_WAITING);
    cr_assert_eq(status_of(g, &anc), KITH__GROUP_LIVE);
    cr_assert_eq(status_of(g, &anc_out), KITH__GROUP_BADSIG);
    cr_assert_eq(status_of(g, &anc_nm), KITH__GROUP_NOTMEMBER);
    cr_assert(kith__group_needs_upgrade(g));
    cr_assert_not(member(g, h, 2), "the ancillary copy of an ADD admits nobody");
    cr_assert_not(member(g, h, 4));
    kith__group_free(g);
    rec_free(&crit);
    rec_free(&anc);
    rec_free(&anc_out);
    rec_free(&anc_nm);
    rec_free(&child);
    hist_free(h);
}

/* ---- generated histories against an oracle --------------------------------------------- */

#define MAXD 7
#define MAXREC 160
#define NOUT 2 /* outsiders: keys never added, who sign anyway */

struct world {
    struct test_rng rng;
    uint64_t seed;
    unsigned case_no;
    struct dev dev[MAXD + NOUT];
    int ndev;
    uint8_t gid[16];
    struct rbytes rec[MAXREC];
    struct kith__group_rec dec[MAXREC]; /* decoded, when base == BASE_OK */
    int base[MAXREC];                   /* -1 decoded and signed, else a status */
    size_t n;
    bool view[MAXD][MAXREC]; /* what each device holds */
    uint64_t now;
};

#define CTXF "KITH_SEED=%llu case %u: "
#define CTXA(w) (unsigned long long)(w)->seed, (w)->case_no

static uint64_t
below(struct world *w, uint64_t n)
{
    return test_rng_below(&w->rng, n);
}

static int
find_rec(const struct world *w, const uint8_t *hash)
{
    for (size_t i = 0; i < w->n; i++)
        if (memcmp(w->rec[i].hash, hash, 32) == 0)
            return (int)i;
    return -1;
}

static void
push(struct world *w, struct rbytes b)
{
    cr_assert_lt(w->n, MAXREC);
    size_t i = w->n++;
    w->rec[i] = b;
    int rc = kith__group_verify(b.p, b.len, &w->dec[i], NULL, 0);
    w->base[i] = rc == 0               ? -1
                 : rc == KITH_EBADSIG  ? KITH__GROUP_BADSIG
                 : rc == KITH_EVERSION ? KITH__GROUP_UNKNOWN
                                       : KITH__GROUP_MALFORMED;
}

/* The oracle: GRP-4 .. GRP-11 as written, over the records of `in`. */
struct oracle {
    const struct world *w;
    const bool *in;
    int st[MAXREC];            /* -2 not judged yet */
    bool past[MAXREC][MAXREC]; /* past[i][j]: j is in the causal past of i */
    bool valid[MAXREC];        /* the set V */
};

static bool
o_admits(const struct kith__group_rec *r, const uint8_t *pk)
{
    return (r->kind == KITH__GROUP_FOUND && memcmp(r->author, pk, 32) == 0) ||
           (r->kind == KITH__GROUP_ADD && memcmp(r->member, pk, 32) == 0);
}

static bool
o_removes(const struct kith__group_rec *r, const uint8_t *pk)
{
    return r->kind == KITH__GROUP_REMOVE && memcmp(r->member, pk, 32) == 0;
}

static bool
is_valid(int st)
{
    return st == KITH__GROUP_LIVE || st == KITH__GROUP_VOID;
}

/* overtaken(x, P): some valid REMOVE of x's author in P, other than x, without x in its past */
static bool
o_overtaken(const struct oracle *o, size_t x, const bool *P)
{
    const struct world *w = o->w;
    for (size_t m = 0; m < w->n; m++)
        if (P[m] && m != x && o_removes(&w->dec[m], w->dec[x].author) && !o->past[m][x])
            return true;
    return false;
}

/* live(x, P): not overtaken, and a FOUND or admitted in its own past by a live admission */
static bool
o_live(const struct oracle *o, size_t x, const bool *P)
{
    const struct world *w = o->w;
    if (o_overtaken(o, x, P))
        return false;
    if (w->dec[x].kind == KITH__GROUP_FOUND)
        return true;
    for (size_t a = 0; a < w->n; a++)
        if (o->past[x][a] && o_admits(&w->dec[a], w->dec[x].author) && o_live(o, a, P))
            return true;
    return false;
}

/* member(k, P): admitted by a live admission in P and removed by nothing in P */
static bool
o_member(const struct oracle *o, const uint8_t *pk, const bool *P)
{
    const struct world *w = o->w;
    for (size_t m = 0; m < w->n; m++)
        if (P[m] && o_removes(&w->dec[m], pk))
            return false;
    for (size_t a = 0; a < w->n; a++)
        if (P[a] && o_admits(&w->dec[a], pk) && o_live(o, a, P))
            return true;
    return false;
}

static int
o_status(struct oracle *o, size_t i)
{
    const struct world *w = o->w;
    const struct kith__group_rec *r = &w->dec[i];
    bool waiting = false, bad = false;
    if (o->st[i] != -2)
        return o->st[i];
    if (w->base[i] != -1)
        return o->st[i] = w->base[i];
    if (r->kind == KITH__GROUP_FOUND ? memcmp(w->rec[i].hash, w->gid, 16) != 0
                                     : memcmp(r->group, w->gid, 16) != 0)
        return o->st[i] = KITH__GROUP_FOREIGN;
    for (uint32_t k = 0; k < r->nparents; k++) {
        int p = find_rec(w, kith__group_parent(r, k));
        int s = p < 0 || !o->in[p] ? KITH__GROUP_WAITING : o_status(o, (size_t)p);
        if (s == KITH__GROUP_WAITING || s == KITH__GROUP_UNKNOWN)
            waiting = true;
        else if (!is_valid(s))
            bad = true;
    }
    if (bad)
        return o->st[i] = KITH__GROUP_BADPARENT;
    if (waiting)
        return o->st[i] = KITH__GROUP_WAITING;
    for (uint32_t k = 0; k < r->nparents; k++) {
        int p = find_rec(w, kith__group_parent(r, k));
        o->past[i][p] = true;
        for (size_t j = 0; j < w->n; j++)
            o->past[i][j] |= o->past[p][j];
    }
    if (r->kind != KITH__GROUP_FOUND && !o_member(o, r->author, o->past[i]))
        return o->st[i] = KITH__GROUP_NOTMEMBER;
    return o->st[i] = KITH__GROUP_LIVE;
}

static void
o_run(struct oracle *o, const struct world *w, const bool *in)
{
    memset(o, 0, sizeof *o);
    o->w = w;
    o->in = in;
    for (size_t i = 0; i < MAXREC; i++)
        o->st[i] = -2;
    for (size_t i = 0; i < w->n; i++)
        if (in[i])
            o->valid[i] = is_valid(o_status(o, i));
    for (size_t i = 0; i < w->n; i++)
        if (o->valid[i] && !o_live(o, i, o->valid))
            o->st[i] = KITH__GROUP_VOID;
}

/* Heads of a device's view: what it names as parents of its next record. */
static uint32_t
view_heads(const struct world *w, int d, uint8_t out[][32])
{
    uint32_t n = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (!w->view[d][i])
            continue;
        bool named = false;
        for (size_t j = 0; j < w->n && !named; j++)
            if (w->view[d][j] && w->base[j] == -1)
                for (uint32_t k = 0; k < w->dec[j].nparents; k++)
                    named |= memcmp(kith__group_parent(&w->dec[j], k), w->rec[i].hash, 32) == 0;
        if (!named && n < KITH__GROUP_MAX_PARENTS)
            memcpy(out[n++], w->rec[i].hash, 32);
    }
    qsort(out, n, 32, hash_order);
    return n;
}

/* A device writes what it has synced: ADD or REMOVE, as a member of its own view. */
static void
step_write(struct world *w, int d, struct oracle *o)
{
    uint8_t par[KITH__GROUP_MAX_PARENTS][32];
    o_run(o, w, w->view[d]);
    bool is_member = o_member(o, w->dev[d].pk, o->valid);
    if (!is_member && below(w, 4) != 0)
        return; /* now and then a device that is not a member signs anyway */
    uint32_t np = view_heads(w, d, par);
    if (np == 0)
        return;
    int e = (int)below(w, (uint64_t)w->ndev);
    bool add = below(w, 10) < 8;
    struct rbytes b = build(add ? KITH__GROUP_ADD : KITH__GROUP_REMOVE, &w->dev[d], w->gid, par[0],
                            np, w->now++, w->dev[e].pk, w->dev[e].name, below(w, 100));
    push(w, b);
    w->view[d][w->n - 1] = is_member; /* refused by its own device when not */
}

/* A forged or broken record, held by nobody but thrown into the delivery. */
static void
step_forge(struct world *w)
{
    uint8_t par[KITH__GROUP_MAX_PARENTS][32];
    int d = (int)below(w, (uint64_t)w->ndev);
    uint32_t np = view_heads(w, d, par);
    const struct dev *out = &w->dev[MAXD + (int)below(w, NOUT)];
    uint8_t other[16];
    memset(other, 0xee, 16);
    switch (below(w, 5)) {
    case 0: /* an outsider adds itself */
        if (np > 0)
            push(w, build(KITH__GROUP_ADD, out, w->gid, par[0], np, w->now++, out->pk, "o", 0));
        break;
    case 1: /* a member writes for another group */
        if (np > 0)
            push(w, build(KITH__GROUP_REMOVE, &w->dev[d], other, par[0], np, w->now++, w->dev[0].pk,
                          NULL, 1));
        break;
    case 2: { /* a flipped signature */
        struct rbytes b = build(KITH__GROUP_ADD, &w->dev[d], w->gid, par[0], np ? np : 1, w->now++,
                                out->pk, "o", 0);
        b.p[b.len - 1 - below(w, 64)] ^= 0x10;
        crypto_generichash(b.hash, 32, b.p, b.len, NULL, 0);
        push(w, b);
        break;
    }
    case 3: /* someone founds another group */
        push(w, build(KITH__GROUP_FOUND, &w->dev[d], NULL, NULL, 0, w->now++, NULL, "f", 0));
        break;
    default: /* a member's record on top of a forged one */
        for (size_t i = w->n; i-- > 0;)
            if (w->base[i] == -1 && w->dec[i].kind != KITH__GROUP_FOUND &&
                find_rec(w, w->rec[i].hash) >= 0 && !w->view[0][i]) {
                bool held = false;
                for (int k = 0; k < w->ndev; k++)
                    held |= w->view[k][i];
                if (held)
                    continue;
                memcpy(par[0], w->rec[i].hash, 32);
                push(w, build(KITH__GROUP_ADD, &w->dev[d], w->gid, par[0], 1, w->now++,
                              w->dev[d].pk, "p", 0));
                break;
            }
        break;
    }
}

static void
world_make(struct world *w, uint64_t seed, unsigned case_no)
{
    memset(w, 0, sizeof *w);
    w->seed = seed;
    w->case_no = case_no;
    test_rng_init(&w->rng, seed, case_no);
    w->ndev = 3 + (int)below(w, MAXD - 2);
    for (int i = 0; i < MAXD + NOUT; i++)
        w->dev[i] = dev_make((unsigned)(i + 10));
    w->now = T0;
    push(w, build(KITH__GROUP_FOUND, &w->dev[0], NULL, NULL, 0, w->now++, NULL, "founder", 0));
    memcpy(w->gid, w->rec[0].hash, 16);
    w->view[0][0] = true;
    struct oracle *o = malloc(sizeof *o);
    cr_assert_not_null(o);
    unsigned steps = 20 + (unsigned)below(w, 60);
    for (unsigned s = 0; s < steps && w->n + 2 < MAXREC; s++) {
        int d = (int)below(w, (uint64_t)w->ndev);
        uint64_t what = below(w, 20);
        if (what < 9) {
            step_write(w, d, o);
        } else if (what < 19) { /* d learns all that e holds */
            int e = (int)below(w, (uint64_t)w->ndev);
            for (size_t i = 0; i < w->n; i++)
                w->view[d][i] |= w->view[e][i];
        } else {
            step_forge(w);
        }
    }
    free(o);
}

static void
world_free(struct world *w)
{
    for (size_t i = 0; i < w->n; i++)
        rec_free(&w->rec[i]);
}

/* Everything a fold says, as bytes, so that two folds compare with one memcmp. */
static void
summary(const struct kith__group *g, struct kith__wbuf *out)
{
    size_t n;
    uint8_t d[32];
    out->len = 0;
    for (size_t i = 0; i < kith__group_count(g); i++) {
        const struct kith__group_entry *e = kith__group_entry(g, i);
        cr_assert_eq(kith__wbuf_put(out, e->hash, 32), 0);
        cr_assert_eq(kith__wbuf_put(out, &e->status, sizeof e->status), 0);
    }
    const struct kith__group_member *m = kith__group_members(g, &n);
    for (size_t i = 0; i < n; i++) {
        kith__wbuf_put(out, m[i].pk, 32);
        kith__wbuf_put(out, m[i].name, m[i].name_len);
        kith__wbuf_put(out, m[i].added_by, 32);
        kith__wbuf_put(out, m[i].via, 32);
        kith__wbuf_put(out, &m[i].time_ms, 8);
    }
    const struct kith__group_removed *r = kith__group_removed(g, &n);
    for (size_t i = 0; i < n; i++) {
        kith__wbuf_put(out, r[i].pk, 32);
        kith__wbuf_put(out, &r[i].cutoff, 8);
    }
    const uint8_t(*h)[32] = kith__group_heads(g, &n);
    kith__wbuf_put(out, h, 32 * n);
    kith__group_digest(g, d);
    kith__wbuf_put(out, d, 32);
}

/* Fold the records of `in` delivered in a random order, some twice, one add at a time with
 * folds in between now and then. */
static struct kith__group *
deliver(struct world *w, const bool *in)
{
    size_t order[2 * MAXREC], n = 0;
    struct kith__group *g = NULL;
    for (size_t i = 0; i < w->n; i++)
        if (in[i]) {
            order[n++] = i;
            if (below(w, 4) == 0)
                order[n++] = i;
        }
    for (size_t i = n; i > 1; i--) {
        size_t j = below(w, i), t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    cr_assert_eq(kith__group_new(w->gid, &g), 0);
    for (size_t i = 0; i < n; i++) {
        cr_assert_geq(kith__group_add(g, w->rec[order[i]].p, w->rec[order[i]].len), 0);
        if (below(w, 8) == 0)
            cr_assert_eq(kith__group_fold(g), 0);
    }
    cr_assert_eq(kith__group_fold(g), 0);
    return g;
}

/* The fold agrees with the oracle on every record, member, removal, head and the digest. */
static void
check_oracle(const struct world *w, const struct kith__group *g, const bool *in,
             const struct oracle *o)
{
    size_t nin = 0, nvalid = 0, nm, nr, nh;
    crypto_generichash_state st;
    uint8_t(*vh)[32] = malloc(MAXREC * 32), want[32], got[32];
    for (size_t i = 0; i < w->n; i++) {
        if (!in[i])
            continue;
        nin++;
        const struct kith__group_entry *e = kith__group_find(g, w->rec[i].hash);
        cr_assert_not_null(e, CTXF "record %zu not held", CTXA(w), i);
        cr_assert_eq((int)e->status, o->st[i], CTXF "record %zu: fold says %s, oracle %s", CTXA(w),
                     i, kith__group_status_name(e->status),
                     kith__group_status_name((enum kith__group_status)o->st[i]));
        if (o->valid[i])
            memcpy(vh[nvalid++], w->rec[i].hash, 32);
    }
    cr_assert_eq(kith__group_count(g), nin, CTXF "distinct records", CTXA(w));
    qsort(vh, nvalid, 32, hash_order);
    crypto_generichash_init(&st, NULL, 0, 32);
    for (size_t i = 0; i < nvalid; i++)
        crypto_generichash_update(&st, vh[i], 32);
    crypto_generichash_final(&st, want, 32);
    kith__group_digest(g, got);
    cr_assert_eq(memcmp(want, got, 32), 0, CTXF "digest", CTXA(w));
    free(vh);

    const struct kith__group_member *m = kith__group_members(g, &nm);
    const struct kith__group_removed *r = kith__group_removed(g, &nr);
    size_t seen_m = 0, seen_r = 0;
    for (int k = 0; k < MAXD + NOUT; k++) {
        const uint8_t *pk = w->dev[k].pk;
        bool removed = false, any_live = false, is_member;
        uint64_t hi = 0, lo = UINT64_MAX, c;
        for (size_t i = 0; i < w->n; i++)
            if (o->valid[i] && o_removes(&w->dec[i], pk)) {
                removed = true;
                lo = w->dec[i].cutoff < lo ? w->dec[i].cutoff : lo;
                if (o->st[i] == KITH__GROUP_LIVE) {
                    any_live = true;
                    hi = w->dec[i].cutoff > hi ? w->dec[i].cutoff : hi;
                }
            }
        cr_assert_eq(kith__group_cutoff(g, pk, &c), removed, CTXF "key %d removed?", CTXA(w), k);
        if (removed) {
            seen_r++;
            cr_assert_eq(c, any_live ? hi : lo, CTXF "key %d cut-off", CTXA(w), k);
        }
        is_member = !removed && o_member(o, pk, o->valid);
        cr_assert_eq(kith__group_is_member(g, pk), is_member, CTXF "key %d member?", CTXA(w), k);
        if (!is_member)
            continue;
        seen_m++;
        /* GRP-11: via a live admission with no live admission of the key in its past */
        int best = -1;
        for (size_t a = 0; a < w->n; a++) {
            if (!(o->st[a] == KITH__GROUP_LIVE && o_admits(&w->dec[a], pk)))
                continue;
            bool first = true;
            for (size_t b = 0; b < w->n; b++)
                if (o->past[a][b] && o->st[b] == KITH__GROUP_LIVE && o_admits(&w->dec[b], pk))
                    first = false;
            if (first && (best < 0 || memcmp(w->rec[a].hash, w->rec[best].hash, 32) < 0))
                best = (int)a;
        }
        cr_assert_geq(best, 0);
        const struct kith__group_member *mm = NULL;
        for (size_t i = 0; i < nm; i++)
            if (memcmp(m[i].pk, pk, 32) == 0)
                mm = &m[i];
        cr_assert_not_null(mm);
        cr_assert_eq(memcmp(mm->via, w->rec[best].hash, 32), 0, CTXF "key %d via", CTXA(w), k);
        cr_assert_eq(memcmp(mm->added_by, w->dec[best].author, 32), 0);
        cr_assert_eq(mm->time_ms, w->dec[best].time_ms);
    }
    cr_assert_eq(nm, seen_m, CTXF "members", CTXA(w));
    cr_assert_eq(nr, seen_r, CTXF "removed keys", CTXA(w));
    (void)r;

    /* heads: the valid records no valid record names as a parent, ascending */
    const uint8_t(*h)[32] = kith__group_heads(g, &nh);
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (!o->valid[i])
            continue;
        bool named = false;
        for (size_t j = 0; j < w->n && !named; j++)
            if (o->valid[j])
                for (uint32_t p = 0; p < w->dec[j].nparents; p++)
                    named |= memcmp(kith__group_parent(&w->dec[j], p), w->rec[i].hash, 32) == 0;
        if (named)
            continue;
        bool listed = false;
        for (size_t x = 0; x < nh; x++)
            listed |= memcmp(h[x], w->rec[i].hash, 32) == 0;
        cr_assert(listed, CTXF "record %zu is a head", CTXA(w), i);
        k++;
    }
    cr_assert_eq(nh, k, CTXF "heads", CTXA(w));
    for (size_t x = 1; x < nh; x++)
        cr_assert_lt(memcmp(h[x - 1], h[x], 32), 0);
}

/* GRP-4 .. GRP-12 on generated histories: the fold equals the oracle; every delivery order,
 * with duplicates and folds in between, gives the same results; a parent-closed subset (one
 * device's view) agrees with the whole on validity, and void there stays void in the whole. */
Test(group, generated_histories_order_independent)
{
    uint64_t seed = kith_test_seed(20261125);
    unsigned cases = kith_test_cases(300);
    struct world *w = malloc(sizeof *w);
    struct oracle *o = malloc(sizeof *o), *os = malloc(sizeof *os);
    struct kith__wbuf s1 = {0}, s2 = {0};
    bool all[MAXREC];
    unsigned long nvoid = 0, nnot = 0, nremoved = 0, nwait = 0, nmembers = 0;
    cr_assert(w && o && os);
    for (unsigned c = 0; c < cases; c++) {
        world_make(w, seed, c);
        for (size_t i = 0; i < MAXREC; i++)
            all[i] = i < w->n;
        o_run(o, w, all);
        struct kith__group *g = deliver(w, all);
        check_oracle(w, g, all, o);
        summary(g, &s1);
        for (int k = 0; k < 3; k++) {
            struct kith__group *g2 = deliver(w, all);
            summary(g2, &s2);
            cr_assert(s1.len == s2.len && memcmp(s1.data, s2.data, s1.len) == 0,
                      CTXF "delivery %d folds differently", CTXA(w), k);
            kith__group_free(g2);
        }
        int d = (int)below(w, (uint64_t)w->ndev);
        o_run(os, w, w->view[d]);
        struct kith__group *gs = deliver(w, w->view[d]);
        check_oracle(w, gs, w->view[d], os);
        for (size_t i = 0; i < w->n; i++) {
            if (!w->view[d][i])
                continue;
            cr_assert_eq(os->valid[i], o->valid[i], CTXF "record %zu valid in a subset", CTXA(w),
                         i);
            if (os->st[i] == KITH__GROUP_VOID)
                cr_assert_eq(o->st[i], KITH__GROUP_VOID, CTXF "void stays void", CTXA(w));
        }
        /* any subset, parents or not: records wait for what is missing */
        bool some[MAXREC];
        for (size_t i = 0; i < MAXREC; i++)
            some[i] = i < w->n && below(w, 4) != 0;
        o_run(os, w, some);
        struct kith__group *gr = deliver(w, some);
        check_oracle(w, gr, some, os);
        for (size_t i = 0; i < w->n; i++)
            nwait += some[i] && os->st[i] == KITH__GROUP_WAITING;
        kith__group_free(gr);
        for (size_t i = 0; i < w->n; i++) {
            nvoid += o->st[i] == KITH__GROUP_VOID;
            nnot += o->st[i] == KITH__GROUP_NOTMEMBER;
        }
        size_t nm, nr;
        kith__group_members(g, &nm);
        kith__group_removed(g, &nr);
        nmembers += nm;
        nremoved += nr;
        kith__group_free(g);
        kith__group_free(gs);
        world_free(w);
    }
    /* the generator must reach the cases the rules are about */
    cr_assert_gt(nvoid, 0, "no void record generated");
    cr_assert_gt(nnot, 0, "no record by a non-member generated");
    cr_assert_gt(nremoved, 0, "no removal generated");
    cr_assert_gt(nmembers, cases, "no device ever added");
    cr_assert_gt(nwait, 0, "no record waited for a parent");
    fprintf(stderr,
            "group: %u cases, %lu void, %lu not-member, %lu waiting, %lu removed, %lu members\n",
            cases, nvoid, nnot, nwait, nremoved, nmembers);
    kith__wbuf_free(&s1);
    kith__wbuf_free(&s2);
    free(w);
    free(o);
    free(os);
}

/* A chain of 4096 admissions, each device adding the next, folds without recursion; a
 * removal of the second device concurrent with the whole chain voids all of it (GRP-9). */
Test(group, long_admission_chain)
{
    enum { N = 4095 };
    struct kith__group *g = NULL;
    struct dev *d = malloc((N + 1) * sizeof *d);
    struct rbytes *r = malloc((N + 1) * sizeof *r);
    uint8_t par[1][32];
    cr_assert(d && r);
    for (unsigned i = 0; i <= N; i++) {
        uint8_t seed[32] = {0};
        seed[0] = (uint8_t)i;
        seed[1] = (uint8_t)(i >> 8);
        seed[2] = 0x77;
        crypto_sign_seed_keypair(d[i].pk, d[i].sk, seed);
        snprintf(d[i].name, sizeof d[i].name, "d%u", i);
    }
    r[0] = build(KITH__GROUP_FOUND, &d[0], NULL, NULL, 0, T0, NULL, "d0", 0);
    for (unsigned i = 1; i < N; i++) {
        memcpy(par[0], r[i - 1].hash, 32);
        r[i] =
            build(KITH__GROUP_ADD, &d[i - 1], r[0].hash, par[0], 1, T0 + i, d[i].pk, d[i].name, 0);
    }
    cr_assert_eq(kith__group_new(r[0].hash, &g), 0);
    for (unsigned i = N; i-- > 0;)
        cr_assert_eq(kith__group_add(g, r[i].p, r[i].len), 0);
    cr_assert_eq(kith__group_fold(g), 0);
    size_t n;
    kith__group_members(g, &n);
    cr_assert_eq(n, N);
    cr_assert(kith__group_is_member(g, d[N - 1].pk));
    /* the founder removes d1 having seen only d1's admission */
    memcpy(par[0], r[1].hash, 32);
    r[N] = build(KITH__GROUP_REMOVE, &d[0], r[0].hash, par[0], 1, T0, d[1].pk, NULL, 0);
    cr_assert_eq(kith__group_add(g, r[N].p, r[N].len), 0);
    cr_assert_eq(kith__group_fold(g), 0);
    kith__group_members(g, &n);
    cr_assert_eq(n, 1, "only the founder is left");
    cr_assert_eq(kith__group_find(g, r[N - 1].hash)->status, KITH__GROUP_VOID);
    const uint8_t(*h)[32] = kith__group_heads(g, &n);
    cr_assert_eq(n, 2);
    (void)h;
    kith__group_free(g);
    for (unsigned i = 0; i <= N; i++)
        rec_free(&r[i]);
    free(r);
    free(d);
}

/* ---- known answers (tests/data/group-kat.txt) -------------------------------------------- */

static size_t
kat_bytes(const char *key, uint8_t *out, size_t cap)
{
    char path[512], line[16384];
    size_t klen = strlen(key), len = 0;
    bool found = false;
    snprintf(path, sizeof path, "%s/tests/data/group-kat.txt", KITH_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
            char *hex = line + klen + 1;
            hex[strcspn(hex, "\r\n")] = '\0';
            cr_assert_eq(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &len, NULL), 0);
            found = true;
        }
    }
    fclose(f);
    cr_assert(found, "no %s in the vector file", key);
    return len;
}

/* GRP-1, GRP-2: the builder makes exactly the vector file's bytes and hashes from its keys
 * (Ed25519 signing is deterministic), and the fold of the three gives the expected group. */
Test(group, group_kat)
{
    struct dev a, b;
    uint8_t seed[32], want[2][4096], hash[3][32], wh[32];
    struct kith__wbuf out = {0};
    struct kith__group_rec r = {0};
    size_t n;

    kat_bytes("seed_a", seed, sizeof seed);
    crypto_sign_seed_keypair(a.pk, a.sk, seed);
    kat_bytes("seed_b", seed, sizeof seed);
    crypto_sign_seed_keypair(b.pk, b.sk, seed);
    cr_assert_eq(kat_bytes("pk_a", wh, 32), 32);
    cr_assert_eq(memcmp(wh, a.pk, 32), 0);

    r.kind = KITH__GROUP_FOUND;
    memcpy(r.author, a.pk, 32);
    r.time_ms = 0x019abc2c21faull;
    r.name = "laptop";
    r.name_len = 6;
    r.group_name = "home";
    r.group_name_len = 4;
    cr_assert_eq(kith__group_build(&r, a.sk, &out, hash[0]), 0);
    n = kat_bytes("found", want[0], sizeof want[0]);
    cr_assert(n == out.len && memcmp(want[0], out.data, n) == 0, "FOUND bytes");
    kat_bytes("found_hash", wh, 32);
    cr_assert_eq(memcmp(wh, hash[0], 32), 0);

    out.len = 0;
    memset(&r, 0, sizeof r);
    r.kind = KITH__GROUP_ADD;
    memcpy(r.group, hash[0], 16);
    memcpy(r.author, a.pk, 32);
    r.parents = hash[0];
    r.nparents = 1;
    r.time_ms = 0x019abc2c21fbull;
    memcpy(r.member, b.pk, 32);
    r.name = "phone";
    r.name_len = 5;
    cr_assert_eq(kith__group_build(&r, a.sk, &out, hash[1]), 0);
    n = kat_bytes("add", want[0], sizeof want[0]);
    cr_assert(n == out.len && memcmp(want[0], out.data, n) == 0, "ADD bytes");
    kat_bytes("add_hash", wh, 32);
    cr_assert_eq(memcmp(wh, hash[1], 32), 0);
    kith__wbuf_free(&out);

    struct kith__group *g = NULL;
    const char *keys[] = {"found", "add", "remove"};
    cr_assert_eq(kith__group_new(hash[0], &g), 0);
    for (int i = 2; i >= 0; i--) {
        n = kat_bytes(keys[i], want[1], sizeof want[1]);
        cr_assert_eq(kith__group_add(g, want[1], n), 0);
    }
    cr_assert_eq(kith__group_fold(g), 0);
    kat_bytes("remove_hash", hash[2], 32);
    cr_assert_eq(kith__group_find(g, hash[2])->status, KITH__GROUP_LIVE);
    uint64_t c = 0;
    cr_assert(kith__group_is_member(g, a.pk));
    cr_assert(kith__group_cutoff(g, b.pk, &c) && c == 42);
    kith__group_members(g, &n);
    cr_assert_eq(n, 1);
    kith__group_free(g);
}
