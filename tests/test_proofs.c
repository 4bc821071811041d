/*
 * test_proofs.c — fork proofs in the store (spec/data-model.md FORK-5 .. FORK-9, storage.md
 * "proofs"): made in the transaction that sets a forked origin's run aside when the batch
 * shows the other history from a point both hold, described in kith_forks_get, collected for
 * peers, and absorbed by a replica that never saw either branch; a proof that does not verify,
 * or of an origin the receiver does not trust, is refused and changes nothing.
 *
 * The fork is real: replica F writes, its directory (key included) is copied to F', and each
 * writes its own edit. B trusts F's key and holds F's branch; C trusts it and holds neither.
 */
#include "forkproof.h"
#include "kith.h"
#include "kith_test.h"
#include "kt_group.h"
#include "store.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* `to` trusts `from`'s key (one way). */
static void
trust(struct kt_replica *to, struct kt_replica *from)
{
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_replica_pubkey(from->r, pk);
    int rc = kith_trust_add(to->r, pk, "peer", NULL);
    cr_assert_eq(rc, 0, "trust: %s (%s)", kith_strerror(rc), kith_errmsg(to->r));
}

/* A full batch from `from` (since NULL, as a bundle), applied to `to`. */
static kith_apply_info
full_sync(struct kt_replica *from, struct kt_replica *to)
{
    kith_batch_opts opts = {0};
    kith_apply_info info = {0};
    kith_buf buf = {0};
    int rc = kith_batch_create(from->r, &opts, &buf, NULL);
    cr_assert_eq(rc, 0, "batch_create: %s (%s)", kith_strerror(rc), kith_errmsg(from->r));
    rc = kith_batch_apply(to->r, buf.data, buf.len, &info);
    cr_assert_eq(rc, 0, "batch_apply: %s (%s)", kith_strerror(rc), kith_errmsg(to->r));
    kith_free(buf.data);
    return info;
}

/* The one fork record of `origin` at r (asserts there is exactly one record). */
static kith_fork
fork_of(kith_replica *r, uint64_t origin)
{
    kith_fork *f = NULL, out;
    size_t n = 0;
    int rc = kith_forks_get(r, &f, &n);
    cr_assert_eq(rc, 0, "forks_get: %s", kith_strerror(rc));
    cr_assert_eq(n, 1, "%zu fork records", n);
    cr_assert_eq(f[0].origin, origin);
    out = f[0];
    kith_forks_free(f, n);
    return out;
}

static size_t
nforks(kith_replica *r)
{
    kith_fork *f = NULL;
    size_t n = 0;
    cr_assert_eq(kith_forks_get(r, &f, &n), 0);
    kith_forks_free(f, n);
    return n;
}

/* ---- proofs in and out of the store ------------------------------------------------------- */

struct proofs {
    size_t n;
    uint8_t *p[8];
    size_t len[8];
};

static int
collect_one(void *ctx, const uint8_t *proof, size_t len)
{
    struct proofs *ps = ctx;
    cr_assert_lt(ps->n, 8);
    ps->p[ps->n] = malloc(len);
    cr_assert_not_null(ps->p[ps->n]);
    memcpy(ps->p[ps->n], proof, len);
    ps->len[ps->n++] = len;
    return 0;
}

static struct proofs
collect(kith_replica *r)
{
    struct proofs ps = {0};
    MDB_txn *txn;
    cr_assert_eq(kith__mdb_begin(r, MDB_RDONLY, &txn), 0);
    int rc = kith__proof_collect(r, txn, collect_one, &ps);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    cr_assert_eq(rc, 0, "collect: %s", kith_strerror(rc));
    return ps;
}

static void
proofs_free(struct proofs *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        free(ps->p[i]);
    ps->n = 0;
}

/* Absorb ps into r in a write transaction of its own, committed when the call succeeds. */
static int
absorb(kith_replica *r, const struct proofs *ps, size_t *added)
{
    MDB_txn *txn;
    cr_assert_eq(kith__mdb_begin(r, 0, &txn), 0);
    int rc = kith__proof_absorb(r, txn, (const uint8_t *const *)ps->p, ps->len, ps->n, added);
    if (rc == 0)
        cr_assert_eq(mdb_txn_commit(txn), 0);
    else
        mdb_txn_abort(txn);
    kith__mdb_end(r);
    return rc;
}

/* BLAKE2b over every key and value of every named database of r: its whole content. */
static void
digest(kith_replica *r, uint8_t out[32])
{
    crypto_generichash_state st;
    MDB_txn *txn;
    MDB_cursor *names, *cur;
    MDB_val k, v, dk, dv;
    char name[64];

    crypto_generichash_init(&st, NULL, 0, 32);
    cr_assert_eq(kith__mdb_begin(r, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_cursor_open(txn, KITH__DBI_MAIN, &names), 0);
    for (int rc = mdb_cursor_get(names, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(names, &k, &v, MDB_NEXT)) {
        MDB_dbi dbi;
        cr_assert_lt(k.mv_size, sizeof name);
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = '\0';
        cr_assert_eq(mdb_dbi_open(txn, name, 0, &dbi), 0, "%s", name);
        crypto_generichash_update(&st, k.mv_data, k.mv_size);
        cr_assert_eq(mdb_cursor_open(txn, dbi, &cur), 0);
        for (int rc2 = mdb_cursor_get(cur, &dk, &dv, MDB_FIRST); rc2 == 0;
             rc2 = mdb_cursor_get(cur, &dk, &dv, MDB_NEXT)) {
            crypto_generichash_update(&st, dk.mv_data, dk.mv_size);
            crypto_generichash_update(&st, dv.mv_data, dv.mv_size);
        }
        mdb_cursor_close(cur);
    }
    mdb_cursor_close(names);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    crypto_generichash_final(&st, out, 32);
}

/* The world of these tests: F and its copy F' forked after F's first contact; B holds F's
 * branch, C nothing of either. */
struct world {
    struct kt_replica f, fp, b, c;
    uint64_t origin, p; /* F's origin, and its seq when copied */
};

static void
world_make(struct world *w)
{
    w->f = kt_new();
    w->b = kt_new();
    w->c = kt_new();
    trust(&w->b, &w->f);
    trust(&w->c, &w->f);
    w->origin = kith_replica_id(w->f.r);
    kith_docid ada = kt_contact(w->f.r, "Ada");
    kt_sync(&w->f, &w->b);
    kt_sync(&w->f, &w->c); /* C holds the common history, no branch */
    kith_status *s;
    cr_assert_eq(kith_status_get(w->f.r, &s), 0);
    w->p = kith__vv_get(&s->vv, w->origin);
    kith_status_free(s);
    w->fp = kt_copy_of(&w->f);
    kt_set_str(w->f.r, "contacts", &ada, "name", "Ada Lovelace");
    kt_contact(w->f.r, "Grace");
    kt_set_str(w->fp.r, "contacts", &ada, "name", "Ada Byron");
    kt_sync(&w->f, &w->b); /* B holds branch A */
}

static void
world_free(struct world *w)
{
    kt_free(&w->f);
    kt_free(&w->fp);
    kt_free(&w->b);
    kt_free(&w->c);
}

/* FORK-8: a full batch of the other history makes the proof in the transaction that records
 * the fork; kith_forks_get shows it, with the winner and the branch held. */
Test(proofs, made_when_a_batch_shows_both_histories)
{
    struct world w;
    world_make(&w);
    kith_apply_info info = full_sync(&w.fp, &w.b);
    cr_assert_eq(info.forks, 1);
    kith_fork f = fork_of(w.b.r, w.origin);
    cr_assert_eq(f.source, KITH_FORK_BATCH);
    cr_assert(f.has_proof, "no proof made");
    cr_assert_eq(f.proof_seq, w.p);
    cr_assert(kith__fork_wins(f.winner, f.loser));
    /* B held F's branch (its first commit after p is F's, in f.ours): kept where it won,
     * set aside at once where it lost (FORK-10) */
    bool b_won = memcmp(f.winner, f.ours, 32) == 0;
    cr_assert_eq(memcmp(b_won ? f.winner : f.loser, f.ours, 32), 0);
    cr_assert_eq(memcmp(b_won ? f.loser : f.winner, f.theirs, 32), 0);
    cr_assert_eq(f.holds, b_won ? KITH_FORK_HOLDS_WINNER : KITH_FORK_HOLDS_NEITHER);
    struct proofs ps = collect(w.b.r);
    cr_assert_eq(ps.n, 1);
    struct kith__arena arena = {0};
    struct kith__forkproof d;
    char why[200];
    cr_assert_eq(kith__forkproof_verify(ps.p[0], ps.len[0], &d, &arena, why, sizeof why), 0, "%s",
                 why);
    cr_assert_eq(d.origin, w.origin);
    cr_assert_eq(d.c, w.p);
    /* each side stops at its first signed head: F' signed one head (its one commit), B holds
     * F's head at the end of F's run (two commits) */
    cr_assert_eq(d.win.ncommits + d.lose.ncommits, 3);
    kith__arena_free(&arena);
    proofs_free(&ps);
    /* F' takes F's full batch: it forked its own origin, and signs its own side's head */
    info = full_sync(&w.f, &w.fp);
    cr_assert_eq(info.forks, 1);
    kith_fork g = fork_of(w.fp.r, w.origin);
    cr_assert(g.has_proof);
    cr_assert_eq(memcmp(g.winner, f.winner, 32), 0);
    cr_assert_eq(g.holds, b_won ? KITH_FORK_HOLDS_LOSER : KITH_FORK_HOLDS_WINNER);
    /* a replica that saw only the commits before the fork never recorded one */
    cr_assert_eq(nforks(w.c.r), 0);
    world_free(&w);
}

/* FORK-9, FORK-10: a replica that never saw either branch learns the fork from the proof
 * alone, and settles it. */
Test(proofs, a_third_replica_learns_from_the_proof)
{
    struct world w;
    world_make(&w);
    full_sync(&w.fp, &w.b);
    struct proofs ps = collect(w.b.r);
    cr_assert_eq(ps.n, 1);
    size_t added = 99;
    int rc = absorb(w.c.r, &ps, &added);
    cr_assert_eq(rc, 0, "absorb: %s (%s)", kith_strerror(rc), kith_errmsg(w.c.r));
    cr_assert_eq(added, 1);
    kith_fork f = fork_of(w.c.r, w.origin), fb = fork_of(w.b.r, w.origin);
    cr_assert_eq(f.source, KITH_FORK_PROOF);
    cr_assert_eq(f.seen_from, 0);
    cr_assert(f.has_proof);
    cr_assert_eq(f.proof_seq, w.p);
    cr_assert_eq(f.seq, w.p + 1);
    cr_assert_eq(f.holds, KITH_FORK_HOLDS_NEITHER);
    cr_assert_eq(memcmp(f.winner, fb.winner, 32), 0);
    cr_assert_eq(memcmp(f.loser, fb.loser, 32), 0);
    cr_assert(f.has_head);
    /* the same proof again: nothing new, nothing changed */
    uint8_t d1[32], d2[32];
    digest(w.c.r, d1);
    cr_assert_eq(absorb(w.c.r, &ps, &added), 0);
    cr_assert_eq(added, 0);
    digest(w.c.r, d2);
    cr_assert_eq(memcmp(d1, d2, 32), 0);
    /* FORK-10: the proof settles the fork at C, which takes the kept branch from whichever
     * side holds it and never the other */
    full_sync(&w.f, &w.c);
    full_sync(&w.fp, &w.c);
    full_sync(&w.f, &w.c);
    cr_assert_eq(fork_of(w.c.r, w.origin).holds, KITH_FORK_HOLDS_WINNER, "C holds the kept branch");
    /* and C forwards the proof: it holds the same bytes B holds */
    struct proofs pc = collect(w.c.r);
    cr_assert_eq(pc.n, 1);
    cr_assert_eq(pc.len[0], ps.len[0]);
    cr_assert_eq(memcmp(pc.p[0], ps.p[0], ps.len[0]), 0);
    proofs_free(&pc);
    proofs_free(&ps);
    world_free(&w);
}

/* FORK-7: two replicas that built the proof of one fork from different heads hold one proof
 * each, by the same name; exchanging them leaves both with the same (the shorter) bytes. */
Test(proofs, one_fork_one_name)
{
    struct world w;
    world_make(&w);
    full_sync(&w.fp, &w.b);
    full_sync(&w.f, &w.fp);
    struct proofs pb = collect(w.b.r), pf = collect(w.fp.r);
    cr_assert_eq(pb.n, 1);
    cr_assert_eq(pf.n, 1);
    size_t added;
    cr_assert_eq(absorb(w.b.r, &pf, &added), 0, "%s", kith_errmsg(w.b.r));
    cr_assert_eq(added, 0);
    cr_assert_eq(absorb(w.fp.r, &pb, &added), 0, "%s", kith_errmsg(w.fp.r));
    cr_assert_eq(added, 0);
    struct proofs qb = collect(w.b.r), qf = collect(w.fp.r);
    cr_assert_eq(qb.n, 1);
    cr_assert_eq(qf.n, 1);
    cr_assert_eq(qb.len[0], qf.len[0]);
    cr_assert_eq(memcmp(qb.p[0], qf.p[0], qb.len[0]), 0);
    cr_assert_leq(qb.len[0], pb.len[0]);
    cr_assert_leq(qb.len[0], pf.len[0]);
    proofs_free(&pb);
    proofs_free(&pf);
    proofs_free(&qb);
    proofs_free(&qf);
    world_free(&w);
}

/* FORK-9: a proof that does not verify (each byte changed in turn, a sample), or of an
 * origin the receiver does not trust, fails the call with a message and changes nothing,
 * also when a good proof comes with it. */
Test(proofs, bad_proofs_change_nothing, .timeout = 120)
{
    struct world w;
    world_make(&w);
    full_sync(&w.fp, &w.b);
    struct proofs ps = collect(w.b.r);
    cr_assert_eq(ps.n, 1);
    uint8_t before[32], after[32];
    digest(w.c.r, before);
    uint8_t *bad = malloc(ps.len[0]);
    cr_assert_not_null(bad);
    uint64_t rng = kt_seed();
    for (size_t i = 0; i < ps.len[0]; i += 1 + (size_t)kt_below(&rng, 7)) {
        memcpy(bad, ps.p[0], ps.len[0]);
        bad[i] ^= (uint8_t)(1 + kt_below(&rng, 255));
        struct proofs two = {2, {ps.p[0], bad}, {ps.len[0], ps.len[0]}};
        size_t added = 99;
        int rc = absorb(w.c.r, &two, &added);
        cr_assert(rc == KITH_EBADSIG || rc == KITH_EMALFORMED || rc == KITH_ETOOBIG ||
                      rc == KITH_EVERSION || rc == KITH_EUNTRUSTED,
                  "byte %zu: %s", i, kith_strerror(rc));
        cr_assert_eq(added, 0);
        cr_assert(strstr(kith_errmsg(w.c.r), "fork proof 2 of 2") != NULL, "byte %zu: %s", i,
                  kith_errmsg(w.c.r));
    }
    digest(w.c.r, after);
    cr_assert_eq(memcmp(before, after, 32), 0, "a refused proof changed the replica");
    cr_assert_eq(nforks(w.c.r), 0);
    /* a valid proof of an origin the receiver does not trust */
    struct kt_replica d = kt_new();
    digest(d.r, before);
    size_t added = 99;
    int rc = absorb(d.r, &ps, &added);
    cr_assert_eq(rc, KITH_EUNTRUSTED, "%s", kith_strerror(rc));
    cr_assert(strstr(kith_errmsg(d.r), "not one this replica trusts") != NULL, "%s",
              kith_errmsg(d.r));
    digest(d.r, after);
    cr_assert_eq(memcmp(before, after, 32), 0);
    cr_assert_eq(nforks(d.r), 0);
    kt_free(&d);
    free(bad);
    proofs_free(&ps);
    world_free(&w);
}

/* A batch that shows no other history makes no proof: a full batch of the same branch, and
 * a run that starts past what the receiver holds. */
Test(proofs, no_proof_without_both_histories)
{
    struct world w;
    world_make(&w);
    full_sync(&w.f, &w.b); /* the same branch again */
    cr_assert_eq(nforks(w.b.r), 0);
    struct proofs ps = collect(w.b.r);
    cr_assert_eq(ps.n, 0);
    world_free(&w);
}

/* A proof decoded (asserts it verifies). */
static struct kith__forkproof
decoded(const uint8_t *p, size_t len, struct kith__arena *arena)
{
    struct kith__forkproof d;
    char why[200];
    int rc = kith__forkproof_verify(p, len, &d, arena, why, sizeof why);
    cr_assert_eq(rc, 0, "%s: %s", kith_strerror(rc), why);
    return d;
}

/* A local transaction of F: a new contact, or a rename of one it holds. */
static void
write_one(kith_replica *r, const kith_docid *docs, size_t ndocs, uint64_t *rng, int tag)
{
    char name[32];
    snprintf(name, sizeof name, "%c%llu", tag, (unsigned long long)kt_below(rng, 1000000));
    if (ndocs > 0 && kt_below(rng, 2))
        kt_set_str(r, "contacts", &docs[kt_below(rng, ndocs)], "name", name);
    else
        kt_contact(r, name);
}

/* FORK-6..9 on generated forks: a common history of 0..2 contacts (0: the histories part at
 * seq 1), then 1..3 transactions on each side, the receiver B taking F's branch in one batch
 * or one batch per transaction. B (holding F's branch) and F' (holding its own) build proofs
 * of one fork: the same name and winner, each holding another branch; F' ends its own side at
 * its first commit (it signs its own head), and so does B when it took a head per
 * transaction. C, which holds neither, absorbs both: one proof, the shorter, the same winner. */
Test(proofs, generated_forks_agree, .timeout = 300)
{
    uint64_t rng = kt_seed();
    int cases = kt_cases(10);
    for (int n = 0; n < cases; n++) {
        struct kt_replica f = kt_new(), b = kt_new(), c = kt_new();
        kith_docid docs[8];
        size_t ndocs = 0, common = (size_t)kt_below(&rng, 3);
        bool per_txn = kt_below(&rng, 2);
        trust(&b, &f);
        trust(&c, &f);
        uint64_t origin = kith_replica_id(f.r);
        for (size_t i = 0; i < common; i++)
            docs[ndocs++] = kt_contact(f.r, "common");
        if (common > 0) {
            kt_sync(&f, &b);
            kt_sync(&f, &c);
        }
        struct kt_replica fp = kt_copy_of(&f);
        int na = 1 + (int)kt_below(&rng, 3), nb = 1 + (int)kt_below(&rng, 3);
        for (int i = 0; i < na; i++) {
            write_one(f.r, docs, ndocs, &rng, 'A');
            if (per_txn)
                kt_sync(&f, &b);
        }
        for (int i = 0; i < nb; i++)
            write_one(fp.r, docs, ndocs, &rng, 'B');
        kt_sync(&f, &b);
        cr_assert_eq(full_sync(&fp, &b).forks, 1, "case %d", n);
        cr_assert_eq(full_sync(&f, &fp).forks, 1, "case %d", n);
        kith_fork kb = fork_of(b.r, origin), kf = fork_of(fp.r, origin);
        cr_assert(kb.has_proof && kf.has_proof, "case %d: proofs %d %d", n, kb.has_proof,
                  kf.has_proof);
        cr_assert_eq(kb.proof_seq, 2 * common, "case %d", n); /* a contact is 2 ops */
        cr_assert_eq(kf.proof_seq, kb.proof_seq);
        cr_assert_eq(memcmp(kb.winner, kf.winner, 32), 0, "case %d: two winners", n);
        cr_assert_eq(memcmp(kb.loser, kf.loser, 32), 0);
        /* settled at once (FORK-10): the side that held the losing branch set it aside */
        cr_assert(kb.holds != KITH_FORK_HOLDS_LOSER, "case %d: a losing branch kept", n);
        /* F' forked its own origin: it keeps its branch until it takes a new key */
        cr_assert((kb.holds == KITH_FORK_HOLDS_WINNER) != (kf.holds == KITH_FORK_HOLDS_WINNER),
                  "case %d: one side holds the kept branch (%d %d)", n, kb.holds, kf.holds);

        struct proofs pb = collect(b.r), pf = collect(fp.r);
        struct kith__arena arena = {0};
        struct kith__forkproof db = decoded(pb.p[0], pb.len[0], &arena);
        const struct kith__fork_branch *own =
            kf.holds == KITH_FORK_HOLDS_WINNER ? &db.win : &db.lose;
        struct kith__forkproof df = decoded(pf.p[0], pf.len[0], &arena);
        const struct kith__fork_branch *fown =
            kf.holds == KITH_FORK_HOLDS_WINNER ? &df.win : &df.lose;
        const struct kith__fork_branch *bown =
            kb.holds == KITH_FORK_HOLDS_WINNER ? &db.win : &db.lose;
        cr_assert_eq(fown->ncommits, 1, "case %d: F' signs its own first commit", n);
        cr_assert_eq(own->ncommits, (uint32_t)nb, "case %d: F' sent one run, one head", n);
        if (per_txn)
            cr_assert_eq(bown->ncommits, 1, "case %d: B holds a head per commit", n);
        else
            cr_assert_eq(bown->ncommits, (uint32_t)na, "case %d", n);
        kith__arena_free(&arena);

        struct proofs both = {2, {pb.p[0], pf.p[0]}, {pb.len[0], pf.len[0]}};
        size_t added;
        int rc = absorb(c.r, &both, &added);
        cr_assert_eq(rc, 0, "case %d: %s (%s)", n, kith_strerror(rc), kith_errmsg(c.r));
        cr_assert_eq(added, 1, "case %d: one fork, %zu proofs", n, added);
        kith_fork kc = fork_of(c.r, origin);
        cr_assert_eq(kc.source, KITH_FORK_PROOF);
        cr_assert_eq(kc.holds, KITH_FORK_HOLDS_NEITHER);
        cr_assert_eq(memcmp(kc.winner, kb.winner, 32), 0);
        struct proofs pc = collect(c.r);
        cr_assert_eq(pc.n, 1);
        size_t shorter = pb.len[0] < pf.len[0] ||
                                 (pb.len[0] == pf.len[0] && memcmp(pb.p[0], pf.p[0], pb.len[0]) < 0)
                             ? 0
                             : 1;
        cr_assert_eq(pc.len[0], both.len[shorter]);
        cr_assert_eq(memcmp(pc.p[0], both.p[shorter], pc.len[0]), 0, "case %d: not the shorter", n);
        /* C, settled by the proofs alone, takes the kept branch and never the other */
        full_sync(&f, &c);
        full_sync(&fp, &c);
        cr_assert_eq(fork_of(c.r, origin).holds, KITH_FORK_HOLDS_WINNER, "case %d", n);
        cr_assert_eq(full_sync(&f, &c).ops_new + full_sync(&fp, &c).ops_new, 0, "case %d", n);
        proofs_free(&pb);
        proofs_free(&pf);
        proofs_free(&pc);
        kt_free(&f);
        kt_free(&fp);
        kt_free(&b);
        kt_free(&c);
    }
}

/* The proof is kept in the batch's transaction: where that transaction meets a full map, it
 * is redone in a grown one, and the proof is kept once, whatever size the map started at. */
Test(proofs, kept_across_map_growth, .timeout = 300)
{
    char notes[16000];
    size_t grew = 0;
    memset(notes, 'n', sizeof notes - 1);
    notes[sizeof notes - 1] = '\0';
    struct kt_replica f = kt_new();
    kith_docid ada = kt_contact(f.r, "Ada");
    struct kt_replica fp = kt_copy_of(&f);
    kt_set_str(f.r, "contacts", &ada, "notes", notes);
    notes[0] = 'm';
    kt_set_str(fp.r, "contacts", &ada, "notes", notes);
    uint64_t origin = kith_replica_id(f.r);
    for (size_t map = 32 << 10; map <= 160 << 10; map += 8 << 10) {
        struct kt_replica b = kt_new_flags(KITH_NOSYNC, map);
        trust(&b, &f);
        full_sync(&f, &b);
        MDB_envinfo before;
        cr_assert_eq(mdb_env_info(b.r->env, &before), 0);
        cr_assert_eq(full_sync(&fp, &b).forks, 1, "map %zu", map);
        MDB_envinfo env;
        cr_assert_eq(mdb_env_info(b.r->env, &env), 0);
        grew += env.me_mapsize > before.me_mapsize;
        kith_fork k = fork_of(b.r, origin);
        cr_assert(k.has_proof, "map %zu: no proof", map);
        struct proofs ps = collect(b.r);
        cr_assert_eq(ps.n, 1, "map %zu", map);
        cr_assert_gt(ps.len[0], 2 * 15000, "map %zu: the proof holds both notes", map);
        proofs_free(&ps);
        kt_free(&b);
    }
    cr_assert_gt(grew, 0, "no map grew while the fork was recorded: the test tests nothing");
    kt_free(&f);
    kt_free(&fp);
}

/* FORK-6 with three histories: a key copied twice, each copy writing its own edit at the same
 * seq. Two replicas each prove one pair of branches; a third absorbs both proofs, keeps both
 * (two names), and shows as the winner the branch whose first chain hash is the lowest of
 * the three, which is the winner of each proof it appears in. */
Test(proofs, three_histories_one_winner)
{
    struct kt_replica f = kt_new(), b = kt_new(), d = kt_new(), c = kt_new();
    trust(&b, &f);
    trust(&d, &f);
    trust(&c, &f);
    uint64_t origin = kith_replica_id(f.r);
    kith_docid ada = kt_contact(f.r, "Ada");
    struct kt_replica f2 = kt_copy_of(&f), f3 = kt_copy_of(&f);
    kt_set_str(f.r, "contacts", &ada, "name", "Ada one");
    kt_set_str(f2.r, "contacts", &ada, "name", "Ada two");
    kt_set_str(f3.r, "contacts", &ada, "name", "Ada three");
    kt_sync(&f, &b); /* B: branch 1, then proves 1 against 2 */
    cr_assert_eq(full_sync(&f2, &b).forks, 1);
    kt_sync(&f3, &d); /* D: branch 3, then proves 3 against 2 */
    cr_assert_eq(full_sync(&f2, &d).forks, 1);
    struct proofs pb = collect(b.r), pd = collect(d.r);
    cr_assert_eq(pb.n, 1);
    cr_assert_eq(pd.n, 1);
    struct proofs both = {2, {pb.p[0], pd.p[0]}, {pb.len[0], pd.len[0]}};
    size_t added;
    cr_assert_eq(absorb(c.r, &both, &added), 0, "%s", kith_errmsg(c.r));
    cr_assert_eq(added, 2);
    struct proofs pc = collect(c.r);
    cr_assert_eq(pc.n, 2);
    /* the three first chain hashes, from the two proofs */
    struct kith__arena arena = {0};
    struct kith__forkproof x = decoded(pb.p[0], pb.len[0], &arena),
                           y = decoded(pd.p[0], pd.len[0], &arena);
    const uint8_t *lowest = x.win.first;
    if (kith__fork_wins(y.win.first, lowest))
        lowest = y.win.first;
    kith_fork k = fork_of(c.r, origin);
    cr_assert(k.has_proof);
    cr_assert_eq(memcmp(k.winner, lowest, 32), 0, "the winner shown is not the lowest branch");
    cr_assert(kith__fork_wins(k.winner, x.lose.first) && kith__fork_wins(k.winner, y.lose.first));
    kith__arena_free(&arena);
    proofs_free(&pb);
    proofs_free(&pd);
    proofs_free(&pc);
    kt_free(&f);
    kt_free(&f2);
    kt_free(&f3);
    kt_free(&b);
    kt_free(&d);
    kt_free(&c);
}

/* ---- a fork of a group member's key ------------------------------------------------------- */

/* FORK-8, FORK-9 with device groups: the forked key is admitted by membership alone (no
 * pairwise trust anywhere), its proof is made and absorbed by members, and refused by a
 * replica outside the group. */
Test(proofs, a_group_members_fork)
{
    struct kt_replica f = kt_new(), b = kt_new(), c = kt_new(), x = kt_new();
    cr_assert_eq(kith_group_create(f.r, "home", "f"), 0, "%s", kith_errmsg(f.r));
    kt_admit(f.r, b.r, "b");
    kt_admit(f.r, c.r, "c");
    uint64_t origin = kith_replica_id(f.r);
    kith_docid ada = kt_contact(f.r, "Ada");
    kt_sync(&f, &b);
    struct kt_replica fp = kt_copy_of(&f);
    kt_set_str(f.r, "contacts", &ada, "name", "Ada Lovelace");
    kt_set_str(fp.r, "contacts", &ada, "name", "Ada Byron");
    kt_sync(&f, &b);
    cr_assert_eq(full_sync(&fp, &b).forks, 1);
    kith_fork k = fork_of(b.r, origin);
    cr_assert(k.has_proof, "a member's fork gets no proof");
    struct proofs ps = collect(b.r);
    cr_assert_eq(ps.n, 1);
    size_t added;
    int rc = absorb(c.r, &ps, &added);
    cr_assert_eq(rc, 0, "%s (%s)", kith_strerror(rc), kith_errmsg(c.r));
    cr_assert_eq(added, 1);
    cr_assert_eq(fork_of(c.r, origin).source, KITH_FORK_PROOF);
    uint8_t before[32], after[32];
    digest(x.r, before);
    cr_assert_eq(absorb(x.r, &ps, &added), KITH_EUNTRUSTED);
    digest(x.r, after);
    cr_assert_eq(memcmp(before, after, 32), 0);
    proofs_free(&ps);
    kt_free(&f);
    kt_free(&fp);
    kt_free(&b);
    kt_free(&c);
    kt_free(&x);
}

/* Put (or, with val NULL, delete) one entry of r's database `dbi` behind kith's back. */
static void
poke(kith_replica *r, MDB_dbi dbi, const void *key, size_t klen, const void *val, size_t vlen)
{
    MDB_txn *txn;
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    cr_assert_eq(kith__mdb_begin(r, 0, &txn), 0);
    cr_assert_eq(val ? mdb_put(txn, dbi, &k, &v, 0) : mdb_del(txn, dbi, &k, NULL), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(r);
}

static kith_verify_report
verified(kith_replica *r)
{
    kith_verify_report rep;
    int rc = kith_verify(r, &rep);
    cr_assert_eq(rc, 0, "verify: %s (%s)", kith_strerror(rc), kith_errmsg(r));
    return rep;
}

/* kith verify re-checks the proofs database: a proof that does not verify from its own bytes,
 * one kept under another name than its bytes give, and one whose origin has no fork record
 * are each named; the sound database is not. */
/* proves FORK-5, FORK-7, FORK-9 */
Test(proofs, verify_checks_the_proofs_held)
{
    struct world w;
    world_make(&w);
    full_sync(&w.fp, &w.b);
    struct proofs ps = collect(w.b.r);
    cr_assert_eq(ps.n, 1);
    kith_verify_report rep = verified(w.b.r);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);

    struct kith__arena arena = {0};
    struct kith__forkproof d;
    uint8_t name[KITH__FORKPROOF_NAME_BYTES], other[KITH__FORKPROOF_NAME_BYTES];
    char why[200];
    cr_assert_eq(kith__forkproof_verify(ps.p[0], ps.len[0], &d, &arena, why, sizeof why), 0);
    kith__forkproof_name(&d, name);
    kith__arena_free(&arena);

    /* a byte of a signature flipped: the proof no longer verifies */
    uint8_t *bad = malloc(ps.len[0]);
    cr_assert_not_null(bad);
    memcpy(bad, ps.p[0], ps.len[0]);
    bad[ps.len[0] - 1] ^= 1;
    poke(w.b.r, w.b.r->proofs, name, sizeof name, bad, ps.len[0]);
    rep = verified(w.b.r);
    cr_assert_eq(rep.problems, 1, "%s", rep.first_problem);
    cr_assert(strstr(rep.first_problem, "does not verify"), "%s", rep.first_problem);
    poke(w.b.r, w.b.r->proofs, name, sizeof name, ps.p[0], ps.len[0]);
    cr_assert_eq(verified(w.b.r).problems, 0);

    /* the sound proof kept under another name (c one higher) */
    memcpy(other, name, sizeof other);
    other[15] ^= 1;
    poke(w.b.r, w.b.r->proofs, other, sizeof other, ps.p[0], ps.len[0]);
    rep = verified(w.b.r);
    cr_assert_eq(rep.problems, 1, "%s", rep.first_problem);
    cr_assert(strstr(rep.first_problem, "another name"), "%s", rep.first_problem);
    poke(w.b.r, w.b.r->proofs, other, sizeof other, NULL, 0);

    /* the fork record gone: the proof's origin is not recorded forked */
    uint8_t ok[8];
    kith__be64_put(ok, w.origin);
    poke(w.b.r, w.b.r->forks, ok, sizeof ok, NULL, 0);
    rep = verified(w.b.r);
    cr_assert_eq(rep.problems, 1, "%s", rep.first_problem);
    cr_assert(strstr(rep.first_problem, "no fork record"), "%s", rep.first_problem);
    free(bad);
    proofs_free(&ps);
    world_free(&w);
}
