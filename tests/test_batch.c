/*
 * test_batch.c — batches and bundles between replicas (store/batch_build.c,
 * store/batch_apply.c, store/apply.c): round trips, idempotent re-apply, conflicts on both
 * sides, delete against edit, add against remove, pending commits, and every kind of bad
 * batch refused with the replica unchanged: tampered at every byte, truncated at every
 * length, untrusted, with a gap, forked; relays verified against the author's signature;
 * bundle files.
 */
#include "kith_test.h"
#include "store.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Everything of `from` (a bundle-like batch, since = NULL). */
static kith_buf
batch_all(kith_replica *from)
{
    kith_buf b = {0};
    int rc = kith_batch_create(from, NULL, &b, NULL);
    cr_assert_eq(rc, 0, "batch_create: %s (%s)", kith_strerror(rc), kith_errmsg(from));
    return b;
}

/* A fingerprint of the whole state a batch could change: export, vector, status counts. */
static char *
state_of(kith_replica *r)
{
    char *exp = kt_export(r), *vvs = NULL, *out;
    kith_vv vv = {0};
    kith_status *st = NULL;
    size_t n;

    cr_assert_eq(kith_vv_get(r, &vv), 0);
    cr_assert_eq(kith_vv_format(&vv, &vvs), 0);
    cr_assert_eq(kith_status_get(r, &st), 0);
    n = strlen(exp) + strlen(vvs) + 128;
    out = malloc(n);
    snprintf(out, n, "%s|%s|%llu|%llu|%llu", exp, vvs, (unsigned long long)st->ops_logged,
             (unsigned long long)st->pending_ops, (unsigned long long)st->open_conflicts);
    kith_status_free(st);
    kith_vv_free(&vv);
    kith_free(vvs);
    free(exp);
    return out;
}

static uint64_t
open_conflicts(kith_replica *r)
{
    kith_status *st = NULL;
    uint64_t n;
    cr_assert_eq(kith_status_get(r, &st), 0);
    n = st->open_conflicts;
    kith_status_free(st);
    return n;
}

/* The conflicts of a replica, in id order (at most cap). */
static size_t
conflicts_of(kith_replica *r, kith_conflict *out, size_t cap)
{
    kith_txn *t = NULL;
    kith_iter *it = NULL;
    size_t n = 0;
    kith_conflict c;

    cr_assert_eq(kith_txn_begin(r, KITH_TXN_READ, &t), 0);
    cr_assert_eq(kith_iter_conflicts(t, true, &it), 0);
    while (kith_iter_next_conflict(it, &c) == 0) {
        if (n < cap) {
            out[n] = c;
            out[n].winner.type = out[n].loser.type = KITH_TYPE_NULL; /* views end below */
        }
        n++;
    }
    kith_iter_close(it);
    kith_txn_abort(&t);
    return n;
}

static void
write_str(kith_replica *r, const kith_docid *doc, const char *field, const char *v)
{
    kt_set_str(r, "contacts", doc, field, v);
}

Test(batch, round_trip_between_two_replicas)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kith_docid c1, c2;
    char buf[64];

    kt_trust_pair(&a, &b);
    c1 = kt_contact(a.r, "Ada");
    c2 = kt_contact(a.r, "Charles");
    write_str(a.r, &c1, "company", "Analytical Engines");
    kith_apply_info info = kt_sync(&a, &b);
    cr_assert_eq(info.ops_new, 5);
    cr_assert_eq(info.ops_applied, 5);
    cr_assert_eq(info.ops_pending, 0);
    cr_assert_str_eq(kt_get_str(b.r, "contacts", &c1, "company", buf, sizeof buf),
                     "Analytical Engines");
    /* and back: b edits, a receives */
    write_str(b.r, &c2, "email", "charles@example.org");
    info = kt_sync(&b, &a);
    cr_assert_eq(info.ops_new, 1);
    cr_assert_str_eq(kt_get_str(a.r, "contacts", &c2, "email", buf, sizeof buf),
                     "charles@example.org");
    char *ea = kt_export(a.r), *eb = kt_export(b.r);
    cr_assert_str_eq(ea, eb);
    free(ea);
    free(eb);
    /* nothing left to send either way */
    info = kt_sync(&a, &b);
    cr_assert_eq(info.ops_new, 0);
    kith_verify_report rep;
    cr_assert_eq(kith_verify(b.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    kt_free(&a);
    kt_free(&b);
}

Test(batch, reapply_changes_nothing)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kith_apply_info info;
    kith_buf buf;
    char *before;

    kt_trust_pair(&a, &b);
    for (int i = 0; i < 5; i++)
        kt_contact(a.r, "someone");
    buf = batch_all(a.r);
    cr_assert_eq(kith_batch_apply(b.r, buf.data, buf.len, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(info.ops_new, 10);
    before = state_of(b.r);
    cr_assert_eq(kith_batch_apply(b.r, buf.data, buf.len, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(info.ops_new, 0);
    cr_assert_eq(info.ops_known, 10);
    cr_assert_eq(info.ops_applied, 0);
    char *after = state_of(b.r);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    kith_free(buf.data);
    kt_free(&a);
    kt_free(&b);
}

/* Flip each byte of a batch in turn: every variant is refused and b stays as it was. */
Test(batch, tampered_byte_anywhere_is_refused, .timeout = 120)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kith_docid c;
    kith_buf buf;
    char *before;
    uint64_t seed = kt_seed(), st = seed;

    kt_trust_pair(&a, &b);
    c = kt_contact(a.r, "Grace Hopper");
    write_str(a.r, &c, "notes", "compilers");
    kt_contact(a.r, "Alan");
    /* b holds part of it already, so known commits are checked too */
    kt_sync(&a, &b);
    write_str(a.r, &c, "company", "Navy");
    buf = batch_all(a.r);
    before = state_of(b.r);
    for (size_t pos = 0; pos < buf.len; pos++) {
        uint8_t saved = buf.data[pos];
        buf.data[pos] ^= (uint8_t)(1u << kt_below(&st, 8));
        kith_apply_info info;
        int rc = kith_batch_apply(b.r, buf.data, buf.len, &info);
        cr_assert_lt(rc, 0, "byte %zu of %zu flipped was accepted (KITH_SEED=%llu)", pos, buf.len,
                     (unsigned long long)seed);
        buf.data[pos] = saved;
    }
    char *after = state_of(b.r);
    cr_assert_str_eq(before, after);
    /* the untouched batch still applies */
    cr_assert_eq(kith_batch_apply(b.r, buf.data, buf.len, NULL), 0, "%s", kith_errmsg(b.r));
    free(before);
    free(after);
    kith_free(buf.data);
    kt_free(&a);
    kt_free(&b);
}

static void
next_head(const uint8_t *p, size_t n, size_t *at, struct kith__mp_head *h)
{
    cr_assert_eq(kith__mp_head(p + *at, n - *at, h), 0, "batch byte %zu", *at);
    *at += h->size;
}

/* Where the commits of a batch lie in its bytes: the bins of its commit triples (encoding.md
 * 4). Returns how many (at most cap). */
static size_t
wire_commits(const uint8_t *p, size_t n, size_t *off, size_t *len, size_t cap)
{
    struct kith__mp_head h;
    size_t at = 0, found = 0;
    uint64_t k;

    next_head(p, n, &at, &h); /* the batch */
    next_head(p, n, &at, &h); /* version */
    next_head(p, n, &at, &h); /* sender */
    next_head(p, n, &at, &h); /* origins */
    for (k = h.v; k > 0; k--)
        next_head(p, n, &at, &h);
    next_head(p, n, &at, &h); /* names */
    for (k = h.v; k > 0; k--) {
        next_head(p, n, &at, &h);
        at += h.v;
    }
    next_head(p, n, &at, &h); /* commits */
    for (k = h.v / 3; k > 0; k--) {
        next_head(p, n, &at, &h);
        next_head(p, n, &at, &h);
        next_head(p, n, &at, &h); /* the bin */
        if (found < cap) {
            off[found] = at;
            len[found++] = h.v;
        }
        at += h.v;
    }
    return found;
}

/*
 * A damaged new commit is refused as a bad signature, whatever its bytes now decode to: the
 * chain is recomputed and the head checked before the commit is decoded (spec/storage.md).
 */
Test(batch, damaged_commit_is_refused_as_a_bad_signature, .timeout = 120)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct kith__arena arena = {0};
    struct kith__batch parsed;
    kith_buf buf;
    char *before, *after;

    kt_trust_pair(&a, &b);
    kith_docid c = kt_contact(a.r, "Hedy Lamarr");
    write_str(a.r, &c, "notes", "frequency hopping");
    buf = batch_all(a.r);
    cr_assert_eq(kith__batch_decode(buf.data, buf.len, &parsed, &arena), 0);
    cr_assert_gt(parsed.ncommits, 0);
    size_t off[16], len[16], n = wire_commits(buf.data, buf.len, off, len, 16), badsig = 0;
    cr_assert_eq(n, parsed.ncommits);
    before = state_of(b.r);
    for (size_t i = 0; i < n; i++) {
        for (size_t pos = off[i]; pos < off[i] + len[i]; pos++) {
            buf.data[pos] ^= 0x01;
            int rc = kith_batch_apply(b.r, buf.data, buf.len, NULL);
            /* a commit's names travel as indexes into the batch's table (encoding.md 4):
             * a damaged index can also make the batch malformed */
            cr_assert(rc == KITH_EBADSIG || rc == KITH_EMALFORMED, "commit %zu byte %zu: %s (%s)",
                      i, pos - off[i], kith_errname(rc), kith_errmsg(b.r));
            badsig += rc == KITH_EBADSIG;
            buf.data[pos] ^= 0x01;
        }
        cr_assert_gt(badsig, 0);
    }
    after = state_of(b.r);
    cr_assert_str_eq(before, after);
    cr_assert_eq(kith_batch_apply(b.r, buf.data, buf.len, NULL), 0, "%s", kith_errmsg(b.r));
    free(before);
    free(after);
    kith__arena_free(&arena);
    kith_free(buf.data);
    kt_free(&a);
    kt_free(&b);
}

Test(batch, truncated_at_every_length_is_refused, .timeout = 120)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kith_buf buf;
    char *before;

    kt_trust_pair(&a, &b);
    kith_docid c = kt_contact(a.r, "Katherine");
    write_str(a.r, &c, "notes", "orbits");
    buf = batch_all(a.r);
    before = state_of(b.r);
    for (size_t len = 0; len < buf.len; len++) {
        int rc = kith_batch_apply(b.r, buf.data, len, NULL);
        cr_assert_lt(rc, 0, "a batch cut to %zu of %zu bytes was accepted", len, buf.len);
    }
    /* and with a byte too many */
    uint8_t *longer = malloc(buf.len + 1);
    memcpy(longer, buf.data, buf.len);
    longer[buf.len] = 0;
    cr_assert_eq(kith_batch_apply(b.r, longer, buf.len + 1, NULL), KITH_EMALFORMED);
    free(longer);
    char *after = state_of(b.r);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    kith_free(buf.data);
    kt_free(&a);
    kt_free(&b);
}

Test(batch, untrusted_origin_is_refused)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kith_buf buf;
    char *before;

    kt_contact(a.r, "Mallory");
    buf = batch_all(a.r);
    before = state_of(b.r);
    cr_assert_eq(kith_batch_apply(b.r, buf.data, buf.len, NULL), KITH_EUNTRUSTED);
    cr_assert_neq(strstr(kith_errmsg(b.r), "trusted"), NULL, "%s", kith_errmsg(b.r));
    char *after = state_of(b.r);
    cr_assert_str_eq(before, after);
    /* trusting the key, then distrusting it again */
    kt_trust_pair(&a, &b);
    cr_assert_eq(kith_trust_remove(b.r, kith_replica_id(a.r)), 0);
    cr_assert_eq(kith_batch_apply(b.r, buf.data, buf.len, NULL), KITH_EUNTRUSTED);
    free(before);
    free(after);
    kith_free(buf.data);
    kt_free(&a);
    kt_free(&b);
}

Test(batch, gap_is_refused)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kith_batch_opts opts = {0};
    kith_vv since = {0};
    kith_buf buf = {0};
    char *before;

    kt_trust_pair(&a, &b);
    kt_contact(a.r, "first");
    kt_contact(a.r, "second");
    /* as if b held a's first commit: it does not */
    kith_dot e = {kith_replica_id(a.r), 2};
    since.len = 1;
    since.entries = &e;
    opts.since = &since;
    cr_assert_eq(kith_batch_create(a.r, &opts, &buf, NULL), 0);
    before = state_of(b.r);
    cr_assert_eq(kith_batch_apply(b.r, buf.data, buf.len, NULL), KITH_EGAP);
    char *after = state_of(b.r);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    kith_free(buf.data);
    kt_free(&a);
    kt_free(&b);
}

/* a -> b -> c: c never meets a but verifies a's signature on what b relays. */
Test(batch, relay_verifies_the_author)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new();
    uint8_t pa[KITH_PUBKEY_BYTES];
    kith_docid d;
    char buf[64];

    kt_trust_pair(&a, &b);
    kt_trust_pair(&b, &c);
    kith_replica_pubkey(a.r, pa);
    cr_assert_eq(kith_trust_add(c.r, pa, "a", NULL), 0);
    for (int i = 0; i < 3; i++)
        d = kt_contact(a.r, "relayed");
    write_str(a.r, &d, "notes", "via b");
    kt_sync(&a, &b);
    write_str(b.r, &d, "company", "b's edit");
    /* in small batches: a's run must still end at a head a signed */
    kith_vv vv = {0};
    uint64_t cursor = 0;
    int rounds = 0;
    for (bool more = true; more; rounds++) {
        kith_batch_opts opts = {.cursor = cursor, .max_ops = 1};
        kith_batch_info bi;
        kith_buf bb = {0};
        cr_assert_eq(kith_vv_get(c.r, &vv), 0);
        opts.since = &vv;
        cr_assert_eq(kith_batch_create(b.r, &opts, &bb, &bi), 0, "%s", kith_errmsg(b.r));
        cr_assert_eq(kith_batch_apply(c.r, bb.data, bb.len, NULL), 0, "%s", kith_errmsg(c.r));
        kith_free(bb.data);
        kith_vv_free(&vv);
        cursor = bi.next_cursor;
        more = bi.has_more;
        cr_assert_lt(rounds, 20);
    }
    cr_assert_gt(rounds, 1);
    cr_assert_str_eq(kt_get_str(c.r, "contacts", &d, "notes", buf, sizeof buf), "via b");
    cr_assert_str_eq(kt_get_str(c.r, "contacts", &d, "company", buf, sizeof buf), "b's edit");
    char *eb = kt_export(b.r), *ec = kt_export(c.r);
    cr_assert_str_eq(eb, ec);
    free(eb);
    free(ec);
    /* c does not trust a: the relay is refused */
    struct kt_replica c2 = kt_new();
    kt_trust_pair(&b, &c2);
    kith_buf all = batch_all(b.r);
    cr_assert_eq(kith_batch_apply(c2.r, all.data, all.len, NULL), KITH_EUNTRUSTED);
    kith_free(all.data);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
    kt_free(&c2);
}

/* A copy of replica a (its directory, key included) opened at root/clone: the same origin,
 * which will write a history of its own. a is closed and opened again around the copy. */
static kith_replica *
clone_of(struct kt_replica *a, const char *root)
{
    char dir[512], from[600], to[600];
    kith_replica *clone = NULL;

    kith_close(a->r);
    snprintf(dir, sizeof dir, "%s/clone", root);
    cr_assert_eq(mkdir(dir, 0700), 0);
    snprintf(from, sizeof from, "%s/data.mdb", a->dir);
    snprintf(to, sizeof to, "%s/data.mdb", dir);
    kt_copy_file(from, to);
    snprintf(from, sizeof from, "%s/key", a->dir);
    snprintf(to, sizeof to, "%s/key", dir);
    kt_copy_file(from, to);
    cr_assert_eq(kith_open(a->dir, KITH_NOSYNC, &a->r), 0);
    cr_assert_eq(kith_open(dir, KITH_NOSYNC, &clone), 0);
    cr_assert_eq(kith_replica_id(clone), kith_replica_id(a->r));
    return clone;
}

static uint64_t
vv_of(kith_replica *r, uint64_t origin)
{
    kith_vv vv = {0};
    uint64_t seq = 0;
    cr_assert_eq(kith_vv_get(r, &vv), 0);
    for (size_t i = 0; i < vv.len; i++)
        if (vv.entries[i].origin == origin)
            seq = vv.entries[i].seq;
    kith_vv_free(&vv);
    return seq;
}

/* The one fork record of r (asserts there is exactly one). */
static kith_fork
the_fork(kith_replica *r)
{
    kith_fork *f = NULL, out;
    size_t n = 0;
    cr_assert_eq(kith_forks_get(r, &f, &n), 0);
    cr_assert_eq(n, 1, "%zu fork records", n);
    out = f[0];
    kith_forks_free(f, n);
    return out;
}

/* The ops in r's journal (commits set aside by a settled fork). */
static size_t
journal_ops(kith_replica *r)
{
    kith_txn *t = NULL;
    kith_iter *it = NULL;
    kith_journal_op op;
    size_t n = 0;

    cr_assert_eq(kith_txn_begin(r, KITH_TXN_READ, &t), 0);
    cr_assert_eq(kith_iter_journal(t, 0, &it), 0);
    while (kith_iter_next_journal(it, &op) == 0)
        n++;
    kith_iter_close(it);
    kith_txn_abort(&t);
    return n;
}

/*
 * A replica cloned (same key) writes a different commit at the same seq: a fork. The batch
 * is not refused; the evidence is kept, and since the batch shows both histories from the
 * seq they share, so is a proof, which settles the fork at once (FORK-10): when the history
 * b held loses, it goes to b's journal and b's state is that of a replica that never held
 * it; then the kept history is taken like any other, and the lost one never again. Which
 * history wins depends on the keys, so the scenario runs until both outcomes were seen.
 * Returns whether b's history lost.
 */
static bool
fork_scenario(void)
{
    struct kt_replica a = kt_new(), b = kt_new();
    char *root = kt_tmpdir();
    kith_apply_info info;

    kt_trust_pair(&a, &b);
    kt_contact(a.r, "before the fork");
    kt_sync(&a, &b);
    kith_replica *clone = clone_of(&a, root);
    uint64_t origin = kith_replica_id(a.r), at = vv_of(a.r, origin);
    kt_contact(a.r, "history one");
    kt_contact(clone, "history two");
    kt_sync(&a, &b);
    uint64_t held = vv_of(b.r, origin);
    char *before = state_of(b.r);
    kith_buf fork = batch_all(clone);
    cr_assert_eq(kith_batch_apply(b.r, fork.data, fork.len, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(info.forks, 1);
    cr_assert_eq(info.ops_new, 0);
    kith_fork f = the_fork(b.r);
    cr_assert_eq(f.origin, origin);
    cr_assert_eq(f.seq, held, "the first commit that differs ends at %llu",
                 (unsigned long long)held);
    cr_assert(f.seq > at);
    cr_assert_eq(f.seen_from, kith_replica_id(clone));
    cr_assert_eq(f.source, KITH_FORK_BATCH);
    cr_assert(f.has_head);
    cr_assert_eq(f.head_seq, held);
    cr_assert(memcmp(f.ours, f.theirs, KITH_HASH_BYTES) != 0);
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_replica_pubkey(a.r, pk);
    cr_assert_eq(kith__head_verify(pk, origin, f.head_seq, f.head_chain, f.head_sig), 0,
                 "the other history's head, as the origin signed it");
    cr_assert(f.has_proof, "a full batch shows both histories from where they part");
    cr_assert_eq(f.proof_seq, at);
    bool one_lost = journal_ops(b.r) > 0;
    char *after = state_of(b.r);
    if (one_lost) {
        cr_assert_eq(f.holds, KITH_FORK_HOLDS_NEITHER);
        cr_assert_eq(vv_of(b.r, origin), at, "b holds the shared history only");
        cr_assert_eq(journal_ops(b.r), held - at);
        cr_assert(strstr(after, "history one") == NULL);
    } else {
        cr_assert_eq(f.holds, KITH_FORK_HOLDS_WINNER);
        cr_assert_str_eq(before, after, "nothing of the other history was taken");
    }
    /* the same batch again: the kept history is taken, the lost one never */
    cr_assert_eq(kith_batch_apply(b.r, fork.data, fork.len, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(info.forks, 0);
    cr_assert_eq(vv_of(b.r, origin), held);
    char *again = state_of(b.r);
    cr_assert((strstr(again, "history two") != NULL) == one_lost);
    cr_assert((strstr(again, "history one") != NULL) == !one_lost);
    /* the peer record is not marked: the origin's key still connects and relays */
    kith_peer *peers = NULL;
    size_t n = 0;
    cr_assert_eq(kith_peers_get(b.r, &peers, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_not(peers[0].forked);
    kith_peers_free(peers, n);
    /* a writes on, on history one: taken where it won, set aside where it lost */
    kt_contact(a.r, "after");
    kith_buf next = batch_all(a.r);
    cr_assert_eq(kith_batch_apply(b.r, next.data, next.len, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(info.ops_new > 0, !one_lost);
    kith_status *st = NULL;
    cr_assert_eq(kith_status_get(b.r, &st), 0);
    cr_assert_eq(st->nforks, 1);
    cr_assert_eq(st->forks[0].origin, origin);
    kith_status_free(st);
    kith_verify_report rep;
    cr_assert_eq(kith_verify(b.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    kith_free(next.data);
    kith_free(fork.data);
    free(before);
    free(after);
    free(again);
    kith_close(clone);
    kt_rmtree(root);
    free(root);
    kt_free(&a);
    kt_free(&b);
    return one_lost;
}

/* proves STO-12, FORK-10 */
Test(batch, forked_history_is_detected_and_settled, .timeout = 120)
{
    bool seen[2] = {false, false};

    for (int i = 0; i < 40 && !(seen[0] && seen[1]); i++)
        seen[fork_scenario()] = true;
    cr_assert(seen[0] && seen[1], "both outcomes of a fork's settlement were seen");
}

/* Exchange full bundles between x and y, both ways, until neither takes anything. */
static void
exchange(struct kt_replica *x, struct kt_replica *y)
{
    for (int round = 0; round < 4; round++) {
        kith_apply_info i1, i2;
        kith_buf bx = batch_all(x->r), by = batch_all(y->r);
        cr_assert_eq(kith_batch_apply(y->r, bx.data, bx.len, &i1), 0, "%s", kith_errmsg(y->r));
        cr_assert_eq(kith_batch_apply(x->r, by.data, by.len, &i2), 0, "%s", kith_errmsg(x->r));
        kith_free(bx.data);
        kith_free(by.data);
        if (i1.ops_new + i2.ops_new + i1.ops_applied + i2.ops_applied == 0)
            return;
    }
    cr_assert_fail("bundles still moved ops after four rounds");
}

/* One bundle carries a forked origin's other history and an honest origin's ops: the honest
 * ops apply, the forked run is set aside; the same the other way round, where the relay holds
 * the other branch. The proof the first bundle makes travels in the next ones, settles the
 * fork on both and on a third replica that never saw either branch, and all three end with
 * the same state, the losing branch in the journal of whoever held it. */
/* proves STO-12, FORK-2, FORK-9, FORK-10 */
Test(batch, honest_ops_pass_a_forked_origin_in_one_bundle_both_ways)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new(), d = kt_new();
    char *root = kt_tmpdir();
    kith_apply_info info;

    kt_trust_pair(&a, &b);
    kt_trust_pair(&a, &c);
    kt_trust_pair(&b, &c);
    kt_trust_pair(&a, &d);
    kt_trust_pair(&b, &d);
    kt_trust_pair(&c, &d);
    kith_replica *clone = clone_of(&a, root);
    uint64_t origin = kith_replica_id(a.r);
    kt_contact(a.r, "branch one");
    kt_contact(clone, "branch two");
    kt_sync(&a, &b); /* b holds branch one */
    kith_buf two = batch_all(clone);
    cr_assert_eq(kith_batch_apply(c.r, two.data, two.len, NULL), 0); /* c holds branch two */
    kith_free(two.data);
    uint64_t fork_seq = vv_of(b.r, origin);
    cr_assert_eq(vv_of(c.r, origin), fork_seq);

    /* c relays branch two and its own ops to b */
    kith_docid from_c = kt_contact(c.r, "honest c");
    kith_buf bundle = batch_all(c.r);
    cr_assert_eq(kith_batch_apply(b.r, bundle.data, bundle.len, &info), 0, "%s", kith_errmsg(b.r));
    kith_free(bundle.data);
    cr_assert_eq(info.forks, 1);
    cr_assert(info.ops_new > 0, "c's own ops were taken");
    char name[64];
    kt_get_str(b.r, "contacts", &from_c, "name", name, sizeof name);
    cr_assert_str_eq(name, "honest c");
    kith_fork fb = the_fork(b.r);
    cr_assert_eq(fb.seen_from, kith_replica_id(c.r));
    cr_assert(fb.has_proof);
    bool one_lost = journal_ops(b.r) > 0;

    /* b relays its own ops, the proof and, where it won, branch one to c */
    kith_docid from_b = kt_contact(b.r, "honest b");
    bundle = batch_all(b.r);
    cr_assert_eq(kith_batch_apply(c.r, bundle.data, bundle.len, &info), 0, "%s", kith_errmsg(c.r));
    kith_free(bundle.data);
    kt_get_str(c.r, "contacts", &from_b, "name", name, sizeof name);
    cr_assert_str_eq(name, "honest b");
    cr_assert(the_fork(c.r).has_proof, "the proof travelled in b's bundle");
    cr_assert_eq(journal_ops(c.r) > 0, !one_lost, "c set branch two aside when it lost");

    /* a fresh replica learns the fork from a bundle, and holds the kept branch */
    exchange(&b, &c);
    bundle = batch_all(b.r);
    cr_assert_eq(kith_batch_apply(d.r, bundle.data, bundle.len, &info), 0, "%s", kith_errmsg(d.r));
    kith_free(bundle.data);
    cr_assert(the_fork(d.r).has_proof);
    cr_assert_eq(vv_of(d.r, origin), fork_seq);
    char *sb = state_of(b.r), *sc = state_of(c.r), *sd = state_of(d.r);
    cr_assert_str_eq(sb, sc);
    cr_assert_str_eq(sb, sd);
    cr_assert(strstr(sb, one_lost ? "branch two" : "branch one") != NULL);
    cr_assert(strstr(sb, one_lost ? "branch one" : "branch two") == NULL);
    /* no edit lost: the losing branch is in the journal of the one that held it */
    cr_assert_eq(journal_ops(one_lost ? b.r : c.r), 2, "the losing contact: add and name");
    cr_assert_eq(journal_ops(d.r), 0);

    /* the origin writes on, on branch one: taken where it won, never where it lost */
    kt_contact(a.r, "later");
    bundle = batch_all(a.r);
    cr_assert_eq(kith_batch_apply(b.r, bundle.data, bundle.len, &info), 0);
    kith_free(bundle.data);
    cr_assert_eq(vv_of(b.r, origin) > fork_seq, !one_lost);

    free(sb);
    free(sc);
    free(sd);
    kith_close(clone);
    kt_rmtree(root);
    free(root);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
    kt_free(&d);
}

/* A batch built with `since` by the holder of the other branch: its run of the forked origin
 * starts beyond the fork, past every commit the two share. Format 3 names the chain hash the
 * run starts from, so the receiver verifies the run from the origin's signature, finds the
 * fork at that base, sets the run aside and applies the honest ops beside it. A batch of
 * format 2, which names no base, is refused whole (its head cannot verify from the
 * receiver's chain): what a kith 0.3.0 peer still sends. */
/* proves STO-12, FORK-2, BAT-6 */
Test(batch, a_run_built_with_since_finds_the_fork_at_its_base)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new();
    char *root = kt_tmpdir();
    kith_apply_info info;

    kt_trust_pair(&a, &b);
    kt_trust_pair(&a, &c);
    kt_trust_pair(&b, &c);
    kith_replica *clone = clone_of(&a, root);
    uint64_t origin = kith_replica_id(a.r);
    kt_contact(a.r, "branch one");
    kt_contact(clone, "branch two");
    kt_sync(&a, &b); /* b holds branch one */
    kith_buf two = batch_all(clone);
    cr_assert_eq(kith_batch_apply(c.r, two.data, two.len, NULL), 0); /* c holds branch two */
    kith_free(two.data);
    uint64_t fork_seq = vv_of(b.r, origin);
    cr_assert_eq(vv_of(c.r, origin), fork_seq);
    kt_contact(clone, "branch two, later");
    two = batch_all(clone);
    cr_assert_eq(kith_batch_apply(c.r, two.data, two.len, NULL), 0);
    kith_free(two.data);
    kith_docid from_c = kt_contact(c.r, "honest c");

    kith_vv since = {0};
    cr_assert_eq(kith_vv_get(b.r, &since), 0);
    kith_batch_opts opts = {.since = &since};
    struct kith__build_opts v2 = {2, false, false};
    kith_buf old = {0}, cur = {0};
    cr_assert_eq(kith__batch_create(c.r, &opts, &v2, &old, NULL, NULL), 0);
    cr_assert_eq(kith_batch_create(c.r, &opts, &cur, NULL), 0);
    kith_vv_free(&since);
    char *before = state_of(b.r);
    cr_assert_eq(kith_batch_apply(b.r, old.data, old.len, &info), KITH_EBADSIG);
    char *unchanged = state_of(b.r);
    cr_assert_str_eq(before, unchanged);

    cr_assert_eq(kith_batch_apply(b.r, cur.data, cur.len, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(info.forks, 1);
    char name[64];
    kt_get_str(b.r, "contacts", &from_c, "name", name, sizeof name);
    cr_assert_str_eq(name, "honest c");
    cr_assert_eq(vv_of(b.r, origin), fork_seq, "nothing of branch two was taken");
    kith_fork f = the_fork(b.r);
    cr_assert_eq(f.origin, origin);
    cr_assert_eq(f.seq, fork_seq, "found at the run's base, the end of what both hold");
    cr_assert_eq(f.source, KITH_FORK_BATCH);
    cr_assert_eq(f.seen_from, kith_replica_id(c.r));
    cr_assert(memcmp(f.ours, f.theirs, KITH_HASH_BYTES) != 0);
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_replica_pubkey(a.r, pk);
    cr_assert(f.has_head && f.head_seq > fork_seq);
    cr_assert_eq(kith__head_verify(pk, origin, f.head_seq, f.head_chain, f.head_sig), 0);
    /* and the honest runs of the old format apply once the fork is known (the run is set
     * aside before its signature is checked) */
    cr_assert_eq(kith_batch_apply(b.r, old.data, old.len, &info), 0, "%s", kith_errmsg(b.r));

    kith_free(old.data);
    kith_free(cur.data);
    free(before);
    free(unchanged);
    kith_close(clone);
    kt_rmtree(root);
    free(root);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
}

/* A run of format 3 that names a base other than zeros for seq 1 is refused. */
Test(batch, a_run_from_seq_one_starts_from_zeros)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct kith__arena arena = {0};
    struct kith__batch bt;
    struct kith__wbuf out = {0};

    kt_trust_pair(&a, &b);
    kt_contact(a.r, "one");
    kith_buf buf = batch_all(a.r);
    cr_assert_eq(kith__batch_decode(buf.data, buf.len, &bt, &arena), 0);
    cr_assert_eq(bt.version, 3);
    cr_assert_eq(bt.nbases, 1);
    bt.bases[0].hash[5] ^= 1;
    cr_assert_eq(kith__batch_encode(&bt, &out), 0);
    cr_assert_eq(kith_batch_apply(b.r, out.data, out.len, NULL), KITH_EMALFORMED);
    cr_assert(strstr(kith_errmsg(b.r), "zero hash") != NULL, "%s", kith_errmsg(b.r));
    cr_assert_eq(vv_of(b.r, kith_replica_id(a.r)), 0);
    kith__wbuf_free(&out);
    kith__arena_free(&arena);
    kith_free(buf.data);
    kt_free(&a);
    kt_free(&b);
}

/* Concurrent writes of one field: a conflict on both replicas, the same winner on both. */
Test(batch, concurrent_writes_record_conflicts_on_both)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kith_conflict ca[4], cb[4];
    char va[64], vb[64];

    kt_trust_pair(&a, &b);
    kith_docid c = kt_contact(a.r, "Hedy");
    kt_sync(&a, &b);
    write_str(a.r, &c, "company", "MGM");
    write_str(b.r, &c, "company", "Frequency hopping");
    kt_sync(&a, &b);
    kt_sync(&b, &a);
    cr_assert_str_eq(kt_get_str(a.r, "contacts", &c, "company", va, sizeof va),
                     kt_get_str(b.r, "contacts", &c, "company", vb, sizeof vb));
    cr_assert_eq(conflicts_of(a.r, ca, 4), 1);
    cr_assert_eq(conflicts_of(b.r, cb, 4), 1);
    cr_assert_str_eq(ca[0].field, "company");
    cr_assert_eq(ca[0].winner_dot.origin, cb[0].winner_dot.origin);
    cr_assert_eq(ca[0].winner_dot.seq, cb[0].winner_dot.seq);
    cr_assert_eq(ca[0].loser_dot.seq, cb[0].loser_dot.seq);
    /* a causal overwrite is no conflict */
    write_str(a.r, &c, "company", "Hollywood");
    kt_sync(&a, &b);
    cr_assert_eq(open_conflicts(b.r), 1);
    write_str(b.r, &c, "company", "Vienna");
    kt_sync(&b, &a);
    cr_assert_eq(open_conflicts(a.r), 1);
    char *ea = kt_export(a.r), *eb = kt_export(b.r);
    cr_assert_str_eq(ea, eb);
    free(ea);
    free(eb);
    kt_free(&a);
    kt_free(&b);
}

/* A delete on one side, an edit on the other: the document survives with the edit, and both
 * replicas record a field-0 conflict. */
Test(batch, delete_concurrent_with_edit_keeps_the_document)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kith_txn *t = NULL;
    kith_conflict cs[4];
    char buf[64];

    kt_trust_pair(&a, &b);
    kith_docid c = kt_contact(a.r, "Radia");
    kt_sync(&a, &b);
    cr_assert_eq(kith_txn_begin(a.r, KITH_TXN_WRITE, &t), 0);
    cr_assert_eq(kith_doc_delete(t, "contacts", &c), 0);
    cr_assert_eq(kith_txn_commit(&t), 0);
    write_str(b.r, &c, "notes", "spanning tree");
    kt_sync(&a, &b);
    kt_sync(&b, &a);
    for (int i = 0; i < 2; i++) {
        kith_replica *r = i == 0 ? a.r : b.r;
        cr_assert_eq(kith_txn_begin(r, KITH_TXN_READ, &t), 0);
        cr_assert_eq(kith_doc_exists(t, "contacts", &c), 1, "replica %d lost it", i);
        kith_txn_abort(&t);
        cr_assert_str_eq(kt_get_str(r, "contacts", &c, "notes", buf, sizeof buf), "spanning tree");
        size_t n = conflicts_of(r, cs, 4);
        cr_assert_eq(n, 1, "replica %d has %zu conflicts", i, n);
        cr_assert_str_eq(cs[0].field, "");
    }
    char *ea = kt_export(a.r), *eb = kt_export(b.r);
    cr_assert_str_eq(ea, eb);
    free(ea);
    free(eb);
    kt_free(&a);
    kt_free(&b);
}

static bool
has_tag(kith_replica *r, const kith_docid *c, const char *tag)
{
    kith_txn *t = NULL;
    kith_iter *it = NULL;
    const char *e;
    size_t len;
    bool found = false;

    cr_assert_eq(kith_txn_begin(r, KITH_TXN_READ, &t), 0);
    cr_assert_eq(kith_iter_set(t, "contacts", c, "tags", &it), 0);
    while (kith_iter_next_elem(it, &e, &len) == 0)
        found |= len == strlen(tag) && memcmp(e, tag, len) == 0;
    kith_iter_close(it);
    kith_txn_abort(&t);
    return found;
}

static void
tag(kith_replica *r, const kith_docid *c, const char *t_, bool add)
{
    kith_txn *t = NULL;
    cr_assert_eq(kith_txn_begin(r, KITH_TXN_WRITE, &t), 0);
    if (add)
        cr_assert_eq(kith_set_add(t, "contacts", c, "tags", t_, strlen(t_)), 0);
    else
        cr_assert_eq(kith_set_remove(t, "contacts", c, "tags", t_, strlen(t_)), 0);
    cr_assert_eq(kith_txn_commit(&t), 0);
}

Test(batch, add_concurrent_with_remove_keeps_the_tag)
{
    struct kt_replica a = kt_new(), b = kt_new();

    kt_trust_pair(&a, &b);
    kith_docid c = kt_contact(a.r, "Frances");
    tag(a.r, &c, "friend", true);
    tag(a.r, &c, "old", true);
    kt_sync(&a, &b);
    tag(a.r, &c, "friend", false);
    tag(b.r, &c, "friend", true); /* re-added concurrently: a new dot */
    tag(b.r, &c, "old", false);
    kt_sync(&a, &b);
    kt_sync(&b, &a);
    cr_assert(has_tag(a.r, &c, "friend"));
    cr_assert(has_tag(b.r, &c, "friend"));
    cr_assert(!has_tag(a.r, &c, "old"));
    cr_assert(!has_tag(b.r, &c, "old"));
    char *ea = kt_export(a.r), *eb = kt_export(b.r);
    cr_assert_str_eq(ea, eb);
    free(ea);
    free(eb);
    kt_free(&a);
    kt_free(&b);
}

/* b's edit of a's contact reaches c before a's commits: it waits, then applies. */
Test(batch, commits_wait_for_the_dots_they_name)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new();
    uint8_t pa[KITH_PUBKEY_BYTES];
    kith_batch_opts opts = {0};
    kith_apply_info info;
    kith_buf buf = {0};
    char s[64];

    kt_trust_pair(&a, &b);
    kt_trust_pair(&b, &c);
    kith_replica_pubkey(a.r, pa);
    cr_assert_eq(kith_trust_add(c.r, pa, "a", NULL), 0);
    kith_docid d = kt_contact(a.r, "Barbara");
    kt_sync(&a, &b);
    write_str(b.r, &d, "name", "Barbara Liskov");
    /* only b's own commit, as if c held a's */
    kith_dot e = {kith_replica_id(a.r), 2};
    kith_vv since = {1, &e};
    opts.since = &since;
    cr_assert_eq(kith_batch_create(b.r, &opts, &buf, NULL), 0);
    cr_assert_eq(kith_batch_apply(c.r, buf.data, buf.len, &info), 0, "%s", kith_errmsg(c.r));
    kith_free(buf.data);
    cr_assert_eq(info.ops_new, 1);
    cr_assert_eq(info.ops_applied, 0);
    cr_assert_eq(info.ops_pending, 1);
    info = kt_sync(&a, &c);
    cr_assert_eq(info.ops_new, 2);
    cr_assert_eq(info.ops_applied, 3);
    cr_assert_eq(info.ops_pending, 0);
    cr_assert_str_eq(kt_get_str(c.r, "contacts", &d, "name", s, sizeof s), "Barbara Liskov");
    cr_assert_eq(open_conflicts(c.r), 0);
    kith_verify_report rep;
    cr_assert_eq(kith_verify(c.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
}

Test(batch, bundle_files)
{
    struct kt_replica a = kt_new(), b = kt_new();
    char path[512], bad[600];
    kith_apply_info info;
    kith_batch_info bi;
    struct stat st;
    FILE *f;

    kt_trust_pair(&a, &b);
    kt_contact(a.r, "Margaret");
    snprintf(path, sizeof path, "%s/out.kb", a.root);
    cr_assert_eq(kith_bundle_write(a.r, NULL, path, &bi), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(bi.ops, 2);
    cr_assert_eq(stat(path, &st), 0);
    char *before = state_of(b.r);
    /* a bad header, a truncated file, trailing bytes: all refused */
    snprintf(bad, sizeof bad, "%s/bad.kb", a.root);
    f = fopen(bad, "wb");
    fputs("KITHBDL2", f);
    fclose(f);
    cr_assert_eq(kith_bundle_apply(b.r, bad, NULL), KITH_EMALFORMED);
    cr_assert_eq(truncate(path, st.st_size - 1), 0);
    cr_assert_lt(kith_bundle_apply(b.r, path, NULL), 0);
    cr_assert_eq(kith_bundle_write(a.r, NULL, path, NULL), 0);
    f = fopen(path, "ab");
    fputc(0, f);
    fclose(f);
    cr_assert_eq(kith_bundle_apply(b.r, path, NULL), KITH_EMALFORMED);
    snprintf(bad, sizeof bad, "%s/none.kb", a.root);
    cr_assert_lt(kith_bundle_apply(b.r, bad, NULL), 0);
    char *after = state_of(b.r);
    cr_assert_str_eq(before, after);
    cr_assert_eq(kith_bundle_write(a.r, NULL, path, NULL), 0);
    cr_assert_eq(kith_bundle_apply(b.r, path, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(info.ops_new, 2);
    free(before);
    free(after);
    kt_free(&a);
    kt_free(&b);
}

struct heard {
    int changes, conflicts, source;
};

static void
heard_change(void *ctx, const kith_change *ch)
{
    struct heard *h = ctx;
    h->changes++;
    h->source = ch->source;
}

static void
heard_conflict(void *ctx, const kith_conflict *c)
{
    struct heard *h = ctx;
    cr_assert_str_eq(c->field, "company");
    h->conflicts++;
}

Test(batch, observers_hear_remote_changes_and_conflicts)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct heard h = {0};

    kt_trust_pair(&a, &b);
    kith_docid c = kt_contact(a.r, "Annie");
    kt_sync(&a, &b);
    write_str(a.r, &c, "company", "NASA");
    write_str(b.r, &c, "company", "NACA");
    kith_observe(b.r, heard_change, heard_conflict, &h);
    kt_sync(&a, &b);
    cr_assert_eq(h.changes, 1);
    cr_assert_eq(h.source, KITH_CHANGE_REMOTE);
    cr_assert_eq(h.conflicts, 1);
    kt_free(&a);
    kt_free(&b);
}

/* A batch bigger than the receiver's whole map: applied after growing it, in one piece. */
Test(batch, apply_grows_a_tiny_map, .timeout = 120)
{
    struct kt_replica a = kt_new(), b = kt_new_flags(KITH_NOSYNC, 256 << 10);
    char notes[8000];
    kith_txn *t = NULL;
    kith_docid id;

    kt_trust_pair(&a, &b);
    memset(notes, 'n', sizeof notes - 1);
    notes[sizeof notes - 1] = '\0';
    for (int i = 0; i < 40; i++) {
        cr_assert_eq(kith_txn_begin(a.r, KITH_TXN_WRITE, &t), 0);
        for (int j = 0; j < 10; j++) {
            kith_value v = {.type = KITH_TYPE_STRING};
            v.u.s.ptr = notes;
            v.u.s.len = 4000 + (size_t)(i * 10 + j);
            cr_assert_eq(kith_doc_create(t, "contacts", &id), 0);
            kith_value name = {.type = KITH_TYPE_STRING, .u.s = {"n", 1}};
            cr_assert_eq(kith_field_set(t, "contacts", &id, "name", &name), 0);
            cr_assert_eq(kith_field_set(t, "contacts", &id, "notes", &v), 0);
        }
        cr_assert_eq(kith_txn_commit(&t), 0);
    }
    kith_apply_info info = kt_sync(&a, &b);
    cr_assert_eq(info.ops_new, 40 * 30);
    cr_assert_eq(info.ops_applied, 40 * 30);
    char *ea = kt_export(a.r), *eb = kt_export(b.r);
    cr_assert_str_eq(ea, eb);
    free(ea);
    free(eb);
    kt_free(&a);
    kt_free(&b);
}

/*
 * Set elements (written as they come), the log, and a write cache spilled between commits (its
 * budget made tiny every other time) all write during this apply. Receivers start from maps of
 * 32-200 KiB, all too small for the batch, so the map runs out at a different point each time;
 * the map must have grown, and the batch must apply whole and verify clean.
 */
Test(batch, apply_grows_a_tiny_map_in_every_write_path, .timeout = 240)
{
    struct kt_replica a = kt_new();
    size_t budget = kith__wcache_budget;
    kith_docid ids[40];
    char tag[64], name[32];
    kith_txn *t;

    for (int i = 0; i < 40; i++)
        ids[i] = kt_contact(a.r, "start");
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "a-%d", i);
        kt_set_str(a.r, "contacts", &ids[i], "name", name);
    }
    for (int c = 0; c < 12; c++) {
        t = kt_wbegin(a.r);
        for (int i = 0; i < 40; i++) {
            snprintf(tag, sizeof tag, "tag-%04d-%03d-padding-padding-padding-padding-pad", c, i);
            cr_assert_eq(kith_set_add(t, "contacts", &ids[i], "tags", tag, strlen(tag)), 0);
        }
        kt_commit(t);
    }
    char *want = kt_export(a.r);
    for (size_t map = 32 << 10; map <= 200 << 10; map += 4 << 10) {
        struct kt_replica b = kt_new_flags(KITH_NOSYNC, map);
        kt_trust_pair(&a, &b);
        kith__wcache_budget = (map / 1024) % 2 ? 20000 : budget;
        kith_apply_info info = kt_sync(&a, &b);
        kith__wcache_budget = budget;
        cr_assert_eq(info.ops_applied, info.ops_new, "map %zu", map);
        MDB_envinfo env;
        cr_assert_eq(mdb_env_info(b.r->env, &env), 0);
        cr_assert_gt(env.me_mapsize, map, "map %zu never grew: the test tests nothing", map);
        char *got = kt_export(b.r);
        cr_assert_str_eq(got, want, "map %zu", map);
        free(got);
        kith_verify_report rep;
        cr_assert_eq(kith_verify(b.r, &rep), 0);
        cr_assert_eq(rep.problems, 0, "map %zu: %s", map, rep.first_problem);
        kt_free(&b);
    }
    free(want);
    kt_free(&a);
}

/* Random damage (several bytes changed, cut, or grown): never a crash, never a change. */
Test(batch, random_damage_is_refused, .timeout = 120)
{
    struct kt_replica a = kt_new(), b = kt_new();
    uint64_t seed = kt_seed(), st = seed;
    int cases = kt_cases(1500);
    kith_buf buf;
    uint8_t *m;

    kt_trust_pair(&a, &b);
    kith_docid c = kt_contact(a.r, "Ida");
    tag(a.r, &c, "pioneer", true);
    kt_set_str(a.r, "contacts", &c, "notes", "first ever");
    buf = batch_all(a.r);
    char *before = state_of(b.r);
    m = malloc(buf.len + 64);
    cr_assert_not_null(m);
    for (int i = 0; i < cases; i++) {
        size_t len = buf.len;
        memcpy(m, buf.data, buf.len);
        int flips = 1 + (int)kt_below(&st, 6);
        for (int f = 0; f < flips; f++) /* never a no-op: xor with 1..255 */
            m[kt_below(&st, len)] ^= (uint8_t)(1 + kt_below(&st, 255));
        switch (kt_below(&st, 4)) {
        case 0:
            len = kt_below(&st, len);
            break;
        case 1:
            for (size_t extra = 1 + kt_below(&st, 63); extra > 0; extra--)
                m[len++] = (uint8_t)kt_next(&st);
            break;
        default:
            break;
        }
        if (len == buf.len && memcmp(m, buf.data, len) == 0)
            m[0] ^= 0x01; /* two flips undid each other */
        int rc = kith_batch_apply(b.r, m, len, NULL);
        cr_assert_lt(rc, 0, "case %d accepted (KITH_SEED=%llu)", i, (unsigned long long)seed);
    }
    char *after = state_of(b.r);
    cr_assert_str_eq(before, after);
    free(m);
    free(before);
    free(after);
    kith_free(buf.data);
    kt_free(&a);
    kt_free(&b);
}
