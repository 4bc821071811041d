/*
 * batch_apply.c — applying batches; building one is batch_build.c.
 *
 * The receiver changes nothing until everything checks: each origin trusted, each run
 * contiguous with what it holds (commits it already holds must be byte-identical: a
 * different commit under a valid signature is a fork, whose evidence is kept (forks.c) and
 * whose run is set aside while the other origins' runs apply; nothing of a forked origin
 * beyond its fork is taken or sent from then on), the chain recomputed over the new commits,
 * the head signature verified, every commit decoded and checked against the schema. Then ONE
 * LMDB write transaction logs the new commits and applies each one whose named dots are
 * applied and whose clock is not too far ahead, retrying older pending commits until nothing
 * moves; kith_holds_apply runs that transaction without a batch, for the held commits alone.
 * spec/storage.md "Batches" and "Pending"; bundle files are in bundle.c.
 */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROWTHS 24

static int
log_get(kith_replica *r, MDB_txn *txn, uint64_t origin, uint64_t first_seq, MDB_val *v)
{
    uint8_t kb[16];
    MDB_val k = {16, kb};

    kith__be64_put(kb, origin);
    kith__be64_put(kb + 8, first_seq);
    return kith__mdb_err(kith__mdb_get(txn, r->log, &k, v));
}

/* What the verification pass learned about each commit of the batch. */
struct cinfo {
    uint32_t nops;
    bool known;                     /* already held, byte-identical */
    bool skip;                      /* its origin forked: set aside, not taken */
    uint8_t chain[KITH_HASH_BYTES]; /* chain hash after it */
};

struct applying {
    kith_replica *r;
    MDB_txn *txn;
    struct kith__applier ap;
    struct kith__event_log events;
    struct kith__batch b;
    struct kith__arena arena;  /* the batch's arrays */
    struct kith__arena carena; /* one decoded commit at a time */
    struct cinfo *ci;
    struct kith__wbuf copy; /* a pending commit's bytes, copied out of the map */
    uint64_t order, hlc, pending;
    int64_t now_ms;
    kith_apply_info info;
    uint64_t *aside; /* origins whose runs are set aside (forked), this attempt */
    size_t naside, capaside;
    uint8_t log_tail[16]; /* the log's greatest key in this txn (zeros: none) */
    bool log_tail_known;
    bool held_only;  /* no batch: only the held commits are tried again (kith_holds_apply) */
    bool rebuilding; /* the state was emptied: every commit is applied again (set_asides) */
    const struct kith__aside *asides; /* histories to set aside before anything else */
    size_t nasides;
    const struct kith__aside *settled; /* forks settled: their dots after `after` name two ops */
    size_t nsettled;
    struct kith__settled *found; /* forks settled by the proofs held (settle.c), this attempt */
    size_t nfound;
    struct kith__aside *cuts; /* removed members' cut-offs (group.c), this attempt (GRP-21) */
    size_t ncuts;
    uint64_t ops_aside;        /* ops moved to the journal by this attempt */
    struct kith__progress *pg; /* NULL: nobody listens */
    uint64_t pg_total;         /* ops in the batch, as its runs and heads say */
    uint64_t pg_done;          /* ops of the batch handled by this attempt */
    char why[200];
};

struct deps_ctx {
    struct applying *s;
    bool ready;
    int rc;
};

/*
 * Is the dot (origin, seq) one that a settled fork made void (spec/data-model.md FORK-10)?
 * Beyond the seq the two histories share, a dot of a forked origin named two ops, and the one
 * a commit meant may be the one set aside: waiting for "the" op at that dot would wait for
 * the wrong one, or for ever where the kept history never gets that far. So a commit that
 * names such a dot waits only for the shared history: the same rule on every replica that
 * settled the fork, whatever it held.
 */
static bool
dot_void(const struct applying *s, uint64_t origin, uint64_t seq, uint64_t applied)
{
    for (size_t i = 0; i < s->nsettled; i++)
        if (s->settled[i].origin == origin && seq > s->settled[i].after &&
            applied >= s->settled[i].after)
            return true;
    for (size_t i = 0; i < s->nfound; i++)
        if (s->found[i].origin == origin && seq > s->found[i].after && applied >= s->found[i].after)
            return true;
    /* a removed origin's dots beyond its cut-off name ops no member takes: a commit waits for
     * it only up to the cut-off (spec/groups.md GRP-22) */
    for (size_t i = 0; i < s->ncuts; i++)
        if (s->cuts[i].origin == origin && seq > s->cuts[i].after && applied >= s->cuts[i].after)
            return true;
    return false;
}

static void
dep_check(void *ctx, uint64_t origin, uint64_t seq)
{
    struct deps_ctx *d = ctx;
    struct kith__origin_slot *slot;
    int rc = 0;

    if (!d->ready || d->rc < 0)
        return;
    slot = kith__apply_origin(&d->s->ap, origin, &rc);
    if (slot == NULL) {
        d->rc = rc;
        d->ready = false;
        return;
    }
    if (slot->st.applied < seq && !dot_void(d->s, origin, seq, slot->st.applied))
        d->ready = false;
}

/* May the decoded commit `c` be applied now? */
static int
commit_ready(struct applying *s, const struct kith__commit *c, bool *ready)
{
    struct kith__origin_slot *slot;
    struct deps_ctx d = {s, true, 0};
    int rc = 0;

    slot = kith__apply_origin(&s->ap, c->origin, &rc);
    if (slot == NULL)
        return rc;
    *ready = false;
    if (slot->st.applied != c->first_seq - 1)
        return 0;
    if (kith__hlc_too_far_ahead(c->hlc, (uint64_t)s->now_ms))
        return 0;
    kith__commit_deps(c, dep_check, &d);
    if (d.rc < 0)
        return d.rc;
    *ready = d.ready;
    return 0;
}

/* Apply a decoded commit and record it in the apply order. Returns its order counter. */
static int
commit_apply(struct applying *s, struct kith__commit *c, uint64_t *order)
{
    struct kith__origin_slot *slot;
    uint8_t kb[8], vb[16];
    MDB_val k = {8, kb}, v = {16, vb};
    int rc = kith__apply_commit(&s->ap, c);

    if (rc < 0)
        return rc;
    slot = kith__apply_origin(&s->ap, c->origin, &rc);
    if (slot == NULL)
        return rc;
    slot->st.applied = c->first_seq + c->nops - 1;
    slot->dirty = true;
    s->hlc = kith__hlc_observe(s->hlc, c->hlc);
    *order = ++s->order;
    kith__be64_put(kb, *order);
    kith__be64_put(vb, c->origin);
    kith__be64_put(vb + 8, c->first_seq);
    rc = kith__mdb_put(s->txn, s->r->order, &k, &v, MDB_APPEND);
    if (rc != 0)
        return rc == MDB_MAP_FULL ? rc : kith__mdb_err(rc);
    s->info.ops_applied += c->nops;
    return 0;
}

static int
log_put(struct applying *s, uint64_t origin, uint64_t first_seq, uint32_t nops,
        const uint8_t chain[KITH_HASH_BYTES], uint64_t order, const uint8_t *bytes, size_t len)
{
    uint8_t kb[16];
    MDB_val k = {16, kb}, v = {KITH__LOG_HDR_BYTES + len, NULL};
    unsigned flags = MDB_RESERVE;
    uint8_t *p;
    int rc;

    kith__be64_put(kb, origin);
    kith__be64_put(kb + 8, first_seq);
    if (!s->log_tail_known) {
        MDB_cursor *cur;
        MDB_val tk, tv;
        rc = kith__mdb_cursor_open(s->txn, s->r->log, &cur);
        if (rc != 0)
            return kith__mdb_err(rc);
        rc = kith__mdb_cursor_get(cur, &tk, &tv, MDB_LAST);
        mdb_cursor_close(cur);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return kith__mdb_err(rc);
        memset(s->log_tail, 0, sizeof s->log_tail);
        if (rc == 0)
            memcpy(s->log_tail, tk.mv_data, tk.mv_size < 16 ? tk.mv_size : 16);
        s->log_tail_known = true;
    }
    /*
     * A commit past the log's last key is appended: LMDB then fills the last page instead of
     * splitting it in two, so a batch of one origin leaves full pages behind, not half-full
     * ones (half the log's pages written, and half the heap its dirty pages take).
     */
    if (memcmp(kb, s->log_tail, 16) > 0) {
        flags |= MDB_APPEND;
        memcpy(s->log_tail, kb, 16);
    }
    rc = kith__mdb_put(s->txn, s->r->log, &k, &v, flags);
    if (rc != 0)
        return rc == MDB_MAP_FULL ? rc : kith__mdb_err(rc);
    p = v.mv_data;
    p[0] = (uint8_t)(nops >> 24);
    p[1] = (uint8_t)(nops >> 16);
    p[2] = (uint8_t)(nops >> 8);
    p[3] = (uint8_t)nops;
    memcpy(p + 4, chain, KITH_HASH_BYTES);
    kith__be64_put(p + 36, order);
    memcpy(p + KITH__LOG_HDR_BYTES, bytes, len);
    return 0;
}

/* Decode commit i of the batch into the commit arena (reset first). */
static int
decode_one(struct applying *s, size_t i, struct kith__commit *c)
{
    const struct kith__batch_commit *bc = &s->b.commits[i];
    int rc;

    kith__arena_reset(&s->carena);
    s->why[0] = '\0';
    rc = kith__commit_decode(bc->bytes, bc->len, bc->origin, bc->first_seq, c, &s->carena, s->why,
                             sizeof s->why);
    if (rc < 0)
        return kith__fail(s->r, rc, "origin %016llx seq %llu: %s", (unsigned long long)bc->origin,
                          (unsigned long long)bc->first_seq,
                          s->why[0] ? s->why : kith_strerror(rc));
    if (c->nops == 0)
        return kith__fail(s->r, KITH_EMALFORMED, "origin %016llx seq %llu: empty commit",
                          (unsigned long long)bc->origin, (unsigned long long)bc->first_seq);
    return 0;
}

static int aside_mark(struct applying *s, uint64_t origin);

/* Set the run of `origin` aside: its origin forked, so none of it is taken (FORK-3). */
static int
set_aside(struct applying *s, uint64_t origin)
{
    int rc = kith__proof_from_batch(s->r, s->txn, &s->b, origin); /* FORK-8 */
    if (rc < 0)
        return rc;
    return aside_mark(s, origin);
}

/* None of the batch's run of `origin` is taken, nor its head kept. */
static int
aside_mark(struct applying *s, uint64_t origin)
{
    if (s->naside == s->capaside) {
        size_t cap = s->capaside ? s->capaside * 2 : 4;
        uint64_t *p = realloc(s->aside, cap * sizeof *p);
        if (p == NULL)
            return KITH_ENOMEM;
        s->aside = p;
        s->capaside = cap;
    }
    s->aside[s->naside++] = origin;
    for (size_t i = 0; i < s->b.ncommits; i++)
        if (s->b.commits[i].origin == origin)
            s->ci[i].skip = true;
    return 0;
}

static bool
is_aside(const struct applying *s, uint64_t origin)
{
    for (size_t i = 0; i < s->naside; i++)
        if (s->aside[i] == origin)
            return true;
    return false;
}

/*
 * The run of `origin` differs from the history held here: after seq `seq` its chain hash is
 * `theirs`, and its head (`head`, over chain `h`) verified: the origin signed two histories.
 * Keep the evidence (the first found for the origin) and set the run aside. 0, MDB_MAP_FULL,
 * or an error.
 */
static int
record_fork(struct applying *s, uint64_t origin, uint64_t seq,
            const uint8_t theirs[KITH_HASH_BYTES], const struct kith__batch_head *head,
            const uint8_t h[KITH_HASH_BYTES])
{
    kith_fork f;
    int rc;

    memset(&f, 0, sizeof f);
    f.origin = origin;
    f.seq = seq;
    rc = kith__chain_at(s->r, s->txn, origin, f.seq, f.ours);
    if (rc == KITH_ENOTFOUND)
        memset(f.ours, 0, KITH_HASH_BYTES); /* no commit of ours ends there */
    else if (rc < 0)
        return rc;
    memcpy(f.theirs, theirs, KITH_HASH_BYTES);
    f.seen_from = s->b.sender;
    f.recorded_ms = kith__now_ms();
    f.source = KITH_FORK_BATCH;
    f.has_head = true;
    f.head_seq = head->seq;
    memcpy(f.head_chain, h, KITH_HASH_BYTES);
    memcpy(f.head_sig, head->sig, KITH_SIG_BYTES);
    rc = kith__fork_put(s->r, s->txn, &f);
    if (rc < 0 || rc == MDB_MAP_FULL)
        return rc;
    s->info.forks += (uint64_t)rc;
    return set_aside(s, origin);
}

/*
 * A run of format 3 names the chain hash it starts from (`base`, after seq first - 1), so it
 * verifies on its own, from the origin's signature, wherever it starts within what is held:
 * `h` gets the base. Where this replica's history after first - 1 has another hash, or no
 * commit of it ends there, the origin signed two histories (*mismatch). A run from seq 1
 * starts from zeros.
 */
static int
run_base(struct applying *s, const struct kith__origin_slot *slot, uint64_t first,
         const uint8_t base[KITH_HASH_BYTES], uint8_t h[KITH_HASH_BYTES], bool *mismatch)
{
    static const uint8_t zeros[KITH_HASH_BYTES];
    uint8_t ours[KITH_HASH_BYTES];
    int rc = 0;

    if (first == 1 && memcmp(base, zeros, KITH_HASH_BYTES) != 0)
        return kith__fail(s->r, KITH_EMALFORMED,
                          "origin %016llx: a run from seq 1 must start from the zero hash",
                          (unsigned long long)slot->origin);
    memcpy(h, base, KITH_HASH_BYTES);
    if (first == slot->st.have + 1)
        memcpy(ours, slot->st.head, KITH_HASH_BYTES);
    else
        rc = kith__chain_at(s->r, s->txn, slot->origin, first - 1, ours);
    if (rc == KITH_ENOTFOUND) {
        *mismatch = true; /* no commit of ours ends where theirs does */
        return 0;
    }
    if (rc < 0)
        return rc;
    *mismatch = memcmp(ours, base, KITH_HASH_BYTES) != 0;
    return 0;
}

/*
 * Verify the run of `origin` in the batch (the commits with that origin, in batch order):
 * trusted, starting within what is held, held commits identical, the chain recomputed and
 * the head signature correct. Only the run's last commit is decoded here (for the head's
 * seq); batch_write decodes each new commit once and checks that it follows the one before.
 * Fills s->ci for the run's commits.
 */
static int
verify_run(struct applying *s, uint64_t origin)
{
    kith_replica *r = s->r;
    struct kith__origin_slot *slot;
    uint8_t pk[KITH_PUBKEY_BYTES], h[KITH_HASH_BYTES];
    const struct kith__batch_head *head = NULL;
    const uint8_t *base = kith__batch_base_of(&s->b, origin); /* format 3 */
    uint64_t next = 0, end = 0, prev_first = 0, fseq, fork_seq = 0, cutoff;
    bool mismatch = false, started = false, seen_new = false;
    size_t last_i = 0, fork_i = SIZE_MAX;
    int rc = kith__origin_key(r, s->txn, origin, pk, &cutoff);
    const struct kith__settled *settled = kith__settled_find(s->found, s->nfound, origin);

    if ((rc == KITH_EUNTRUSTED || rc == KITH_ENOTFOUND) && !s->held_only) {
        /* in a group, a run of an origin not admitted (yet) is set aside, as a removed one's
         * beyond its cut-off is: the runs of admitted origins beside it apply, and it comes
         * again with a later batch once its admission has arrived (D-25). Outside a group
         * the batch is refused, as it always was. */
        uint8_t gid[KITH__GROUP_ID_BYTES], digest[KITH_HASH_BYTES];
        int in = kith__group_summary(r, s->txn, gid, digest);
        if (in < 0)
            return in;
        if (in == 1) {
            kith__fail(r, 0,
                       "origin %016llx is not trusted, nor a member of this replica's group: "
                       "its run was set aside",
                       (unsigned long long)origin);
            return aside_mark(s, origin);
        }
    }
    if (rc < 0)
        return kith__fail(r, rc == KITH_ENOTFOUND ? KITH_EUNTRUSTED : rc,
                          "origin %016llx is not trusted, nor a member of this replica's group",
                          (unsigned long long)origin);
    /* a removed replica takes its own ops back only up to its cut-off (GRP-21) */
    if (origin == r->id && (rc = kith__group_cutoff_of(r, s->txn, r->pk, &cutoff)) <= 0) {
        if (rc < 0)
            return rc;
        cutoff = UINT64_MAX;
    }
    rc = kith__fork_seq(r, s->txn, origin, &fseq);
    if (rc < 0)
        return rc;
    if (rc > 0 && kith__settled_find(s->found, s->nfound, origin) == NULL)
        return set_aside(s, origin); /* forked and not settled: nothing more of it (FORK-3) */
    slot = kith__apply_origin(&s->ap, origin, &rc);
    if (slot == NULL)
        return rc;
    for (size_t i = 0; i < s->b.ncommits; i++) {
        const struct kith__batch_commit *bc = &s->b.commits[i];
        struct cinfo *ci = &s->ci[i];
        if (bc->origin != origin)
            continue;
        if (!started) {
            started = true;
            if (bc->first_seq == 0 || bc->first_seq > slot->st.have + 1)
                return kith__fail(r, KITH_EGAP,
                                  "origin %016llx: batch starts at seq %llu, this replica "
                                  "holds up to %llu%s",
                                  (unsigned long long)origin, (unsigned long long)bc->first_seq,
                                  (unsigned long long)slot->st.have,
                                  origin == r->id ? " of its own origin: it was restored from "
                                                    "a copy, and its ops after the copy must "
                                                    "come first (RESTORE-3)"
                                                  : "");
            if (base != NULL) {
                rc = run_base(s, slot, bc->first_seq, base, h, &mismatch);
                if (rc < 0)
                    return rc;
                fork_seq = bc->first_seq - 1; /* where the two differ, if they do */
            } else if (bc->first_seq == slot->st.have + 1) {
                memcpy(h, slot->st.head, KITH_HASH_BYTES);
            } else if (kith__chain_at(r, s->txn, origin, bc->first_seq - 1, h) < 0) {
                /* does not start at a commit boundary held here: the chain before it is
                 * unknown, so its head cannot verify (KITH_EBADSIG below) */
                memset(h, 0, KITH_HASH_BYTES);
                mismatch = true;
                fork_i = i;
            }
            next = bc->first_seq;
        } else if (bc->first_seq <= prev_first) {
            return kith__fail(r, KITH_EMALFORMED, "origin %016llx: seq %llu out of order",
                              (unsigned long long)origin, (unsigned long long)bc->first_seq);
        }
        prev_first = bc->first_seq;
        last_i = i;
        ci->known = false;
        ci->nops = 0;
        if (bc->first_seq <= slot->st.have) {
            /* held already: must be the very same commit, where the last one ended */
            MDB_val lv;
            uint32_t nops = 0;
            const uint8_t *chain, *bytes;
            uint64_t order;
            size_t len;
            if (seen_new || bc->first_seq != next)
                return kith__fail(r, KITH_EMALFORMED,
                                  "origin %016llx: commit at seq %llu where %llu was due",
                                  (unsigned long long)origin, (unsigned long long)bc->first_seq,
                                  (unsigned long long)next);
            rc = log_get(r, s->txn, origin, bc->first_seq, &lv);
            if (rc == 0)
                rc = kith__log_parse(r, &lv, &nops, &chain, &order, &bytes, &len);
            if (rc == KITH_ENOTFOUND ||
                (rc == 0 && (len != bc->len || memcmp(bytes, bc->bytes, len) != 0))) {
                if (!mismatch)
                    fork_i = i; /* the first commit that differs */
                mismatch = true;
                rc = 0;
            }
            if (rc < 0)
                return rc;
            if (mismatch) {
                struct kith__commit c;
                rc = decode_one(s, i, &c);
                if (rc < 0)
                    return rc;
                nops = c.nops;
            }
            ci->known = !mismatch;
            ci->nops = nops;
            next = bc->first_seq + nops;
        } else {
            seen_new = true;
        }
        kith__chain_next(h, bc->bytes, bc->len, ci->chain);
        memcpy(h, ci->chain, KITH_HASH_BYTES);
        /* a settled fork: the commit after the shared seq must be the kept history's, which
         * a run of the other starting right there would pass with the shared base (FORK-10) */
        if (settled != NULL && bc->first_seq == settled->after + 1 &&
            memcmp(ci->chain, settled->keep, KITH_HASH_BYTES) != 0) {
            if (!mismatch)
                fork_i = i;
            mismatch = true;
            if (ci->nops == 0) {
                struct kith__commit c;
                if ((rc = decode_one(s, i, &c)) < 0)
                    return rc;
                ci->nops = c.nops;
            }
        }
    }
    /*
     * Check the signature before decoding the run's last commit: a damaged commit is then
     * refused for what it is (the chain no longer matches what the origin signed), not for
     * whatever its bytes happen to decode to. The head is the origin's highest in the batch.
     */
    for (size_t i = 0; i < s->b.nheads; i++)
        if (s->b.heads[i].origin == origin && (head == NULL || s->b.heads[i].seq > head->seq))
            head = &s->b.heads[i];
    if (head == NULL)
        return kith__fail(r, KITH_EBADSIG, "origin %016llx: the batch has no signed head for it",
                          (unsigned long long)origin);
    if (kith__head_verify(pk, origin, head->seq, h, head->sig) < 0)
        return kith__fail(r, KITH_EBADSIG,
                          "origin %016llx: signature of the head at seq %llu does not verify",
                          (unsigned long long)origin, (unsigned long long)head->seq);
    /* the signed head must close the run: its seq is the end of the last commit */
    if (s->ci[last_i].nops > 0) {
        end = s->b.commits[last_i].first_seq + s->ci[last_i].nops - 1;
    } else {
        struct kith__commit c;
        rc = decode_one(s, last_i, &c);
        if (rc < 0)
            return rc;
        s->ci[last_i].nops = c.nops;
        end = c.first_seq + c.nops - 1;
    }
    if (head->seq != end)
        return kith__fail(r, KITH_EBADSIG, "origin %016llx: no signed head at seq %llu",
                          (unsigned long long)origin, (unsigned long long)end);
    if (mismatch && fork_i == SIZE_MAX) /* the histories differ before the run: at its base */
        return record_fork(s, origin, fork_seq, base, head, h);
    if (mismatch) /* they differ at commit fork_i of the run */
        return record_fork(s, origin, s->b.commits[fork_i].first_seq + s->ci[fork_i].nops - 1,
                           s->ci[fork_i].chain, head, h);
    if (end > cutoff) {
        /* removed from the group: nothing after its cut-off is taken (GRP-15) */
        s->info.cut_off++;
        kith__fail(r, 0,
                   "origin %016llx was removed from the group: its ops after seq %llu are "
                   "refused, and its run to seq %llu was set aside",
                   (unsigned long long)origin, (unsigned long long)cutoff, (unsigned long long)end);
        return set_aside(s, origin);
    }
    return 0;
}

/* Apply the pending commits of every origin whose turn has come, until nothing moves. */
static int
apply_pending(struct applying *s)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t *origins = NULL;
    size_t n = 0, cap = 0;
    int rc;

    /* the origins with pending commits: have > applied */
    rc = kith__mdb_cursor_open(s->txn, s->r->origins, &cur);
    if (rc != 0)
        return kith__mdb_err(rc);
    for (rc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8)
            continue;
        uint64_t origin = kith__be64_get(k.mv_data);
        struct kith__origin_slot *slot = kith__apply_origin(&s->ap, origin, &rc);
        if (slot == NULL)
            break;
        if (slot->st.have <= slot->st.applied)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            uint64_t *p = realloc(origins, nc * sizeof *p);
            if (p == NULL) {
                rc = KITH_ENOMEM;
                break;
            }
            origins = p;
            cap = nc;
        }
        origins[n++] = origin;
    }
    mdb_cursor_close(cur);
    /* slots of origins new in this batch are not in the database yet */
    for (size_t i = 0; i < s->ap.norigins && (rc == 0 || rc == MDB_NOTFOUND); i++) {
        struct kith__origin_slot *slot = &s->ap.origins[i];
        bool listed = false;
        for (size_t j = 0; j < n; j++)
            listed |= origins[j] == slot->origin;
        if (listed || slot->st.have <= slot->st.applied)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            uint64_t *p = realloc(origins, nc * sizeof *p);
            if (p == NULL) {
                rc = KITH_ENOMEM;
                break;
            }
            origins = p;
            cap = nc;
        }
        origins[n++] = slot->origin;
    }
    if (rc != 0 && rc != MDB_NOTFOUND) {
        free(origins);
        return rc < 0 ? rc : kith__mdb_err(rc);
    }
    rc = 0;
    for (bool progress = true; progress && rc == 0;) {
        progress = false;
        for (size_t i = 0; i < n && rc == 0; i++) {
            struct kith__origin_slot *slot = kith__apply_origin(&s->ap, origins[i], &rc);
            struct kith__commit c;
            MDB_val lv;
            uint32_t nops;
            const uint8_t *chain, *bytes;
            uint64_t order;
            size_t len;
            bool ready;
            uint8_t ch[KITH_HASH_BYTES];
            if (slot == NULL || slot->st.have <= slot->st.applied)
                continue;
            uint64_t first = slot->st.applied + 1;
            rc = log_get(s->r, s->txn, origins[i], first, &lv);
            if (rc == 0)
                rc = kith__log_parse(s->r, &lv, &nops, &chain, &order, &bytes, &len);
            if (rc < 0) {
                rc = kith__fail(s->r, rc == KITH_ENOTFOUND ? KITH_ECORRUPT : rc,
                                "log: pending commit %016llx:%llu is missing",
                                (unsigned long long)origins[i], (unsigned long long)first);
                break;
            }
            /* copy out of the map: applying writes, and the log entry is rewritten */
            s->copy.len = 0;
            rc = kith__wbuf_put(&s->copy, bytes, len);
            if (rc < 0)
                break;
            memcpy(ch, chain, KITH_HASH_BYTES);
            kith__arena_reset(&s->carena);
            rc = kith__commit_decode(s->copy.data, len, origins[i], first, &c, &s->carena, s->why,
                                     sizeof s->why);
            if (rc < 0) {
                rc = kith__fail(s->r, KITH_ECORRUPT, "log: pending %016llx:%llu: %s",
                                (unsigned long long)origins[i], (unsigned long long)first, s->why);
                break;
            }
            rc = commit_ready(s, &c, &ready);
            if (rc < 0 || !ready)
                continue;
            rc = commit_apply(s, &c, &order);
            if (rc == 0)
                rc = log_put(s, origins[i], first, c.nops, ch, order, s->copy.data, len);
            if (rc == 0) {
                s->pending -= c.nops <= s->pending ? c.nops : s->pending;
                progress = true;
            }
        }
    }
    free(origins);
    return rc;
}

/* Log (and where possible apply) every new commit, in batch order; then the pending. */
static int
batch_write(struct applying *s)
{
    int rc;

    s->pg_done = 0;
    for (size_t i = 0; i < s->b.ncommits; i++) {
        const struct kith__batch_commit *bc = &s->b.commits[i];
        struct cinfo *ci = &s->ci[i];
        struct kith__origin_slot *slot;
        struct kith__commit c;
        uint64_t order = 0;
        bool ready;

        if (s->pg != NULL && (i & (KITH__PROGRESS_EVERY - 1)) == KITH__PROGRESS_EVERY - 1 &&
            (rc = kith__progress_report(s->pg, s->pg_done, 0)) < 0)
            return rc;
        if (ci->known || ci->skip) {
            s->pg_done += ci->nops;
            continue;
        }
        rc = decode_one(s, i, &c);
        if (rc < 0)
            return rc;
        slot = kith__apply_origin(&s->ap, bc->origin, &rc);
        if (slot == NULL)
            return rc;
        if (bc->first_seq != slot->st.have + 1)
            return kith__fail(s->r, KITH_EMALFORMED,
                              "origin %016llx: commit at seq %llu where %llu was due",
                              (unsigned long long)bc->origin, (unsigned long long)bc->first_seq,
                              (unsigned long long)(slot->st.have + 1));
        rc = commit_ready(s, &c, &ready);
        if (rc < 0)
            return rc;
        if (ready) {
            rc = commit_apply(s, &c, &order);
            if (rc < 0)
                return rc;
        } else {
            s->pending += c.nops;
        }
        rc = log_put(s, bc->origin, bc->first_seq, c.nops, ci->chain, order, bc->bytes, bc->len);
        if (rc < 0)
            return rc;
        slot = kith__apply_origin(&s->ap, bc->origin, &rc); /* the cache may have moved */
        if (slot == NULL)
            return rc;
        slot->st.have = bc->first_seq + c.nops - 1;
        memcpy(slot->st.head, ci->chain, KITH_HASH_BYTES);
        slot->dirty = true;
        s->info.ops_new += c.nops;
        s->pg_done += c.nops;
    }
    for (size_t i = 0; i < s->b.nheads; i++) {
        uint8_t kb[16];
        MDB_val k = {16, kb}, v = {KITH_SIG_BYTES, s->b.heads[i].sig};
        if (s->naside > 0 && is_aside(s, s->b.heads[i].origin))
            continue; /* the other history's head: kept in the fork's record only */
        kith__be64_put(kb, s->b.heads[i].origin);
        kith__be64_put(kb + 8, s->b.heads[i].seq);
        rc = kith__mdb_put(s->txn, s->r->sigs, &k, &v, 0);
        if (rc != 0)
            return rc == MDB_MAP_FULL ? rc : kith__mdb_err(rc);
    }
    if (s->pending > 0) {
        rc = apply_pending(s);
        if (rc < 0 || rc == MDB_MAP_FULL)
            return rc;
    }
    rc = kith__peer_learn_batch(s->r, s->txn, &s->b); /* NET-19 */
    if (rc < 0)
        return rc;
    /* our own ops came back: a restored replica that holds them again may write (RESTORE-3) */
    for (size_t i = 0; i < s->ap.norigins; i++)
        if (s->ap.origins[i].origin == s->r->id && s->ap.origins[i].dirty &&
            (rc = kith__restored_settle(s->r, s->txn, s->ap.origins[i].st.have)) < 0)
            return rc;
    if ((rc = kith__meta_put_u64(s->r, s->txn, "pending", s->pending)) < 0 ||
        (rc = kith__meta_put_u64(s->r, s->txn, "order", s->order)) < 0 ||
        (rc = kith__meta_put_u64(s->r, s->txn, "hlc", s->hlc)) < 0)
        return rc;
    return kith__apply_finish(&s->ap);
}

/* ---- setting a history aside, and rebuilding the state without it ------------------------
 * A fork resolved against the history held here (spec/data-model.md FORK-10): the commits of
 * the origin after the seq both histories share leave the log for the journal, their signed
 * heads go, the origin's record steps back to that seq, and the state is made again from the
 * log through the one apply path, in this transaction. Every commit kept becomes pending, and
 * apply_pending applies each whose turn has come, so a commit of another origin that named
 * a dot of the set-aside history waits for the dot to come back (from the other history),
 * as any commit waits for its dependencies: every replica then holds the same ops and
 * reaches the same state, whatever it held before. The apply order gets new counters after
 * the last one (counters are never reused; a change feed reports the rebuilt commits as new
 * events, FEED-8). Conflicts already recorded are kept: the rebuild records none again.
 */

/* Move `origin`'s commits after seq `after` from the log to the journal, and their
 * signatures out of sigs; step its origins record back. *moved: ops moved; *applied_gone:
 * whether any of them had been applied to the state. */
static int
move_to_journal(struct applying *s, uint64_t origin, uint64_t after, uint64_t *moved,
                bool *applied_gone)
{
    kith_replica *r = s->r;
    struct kith__origin_state st;
    uint8_t kb[16];
    MDB_val k = {16, kb}, v;
    MDB_cursor *cur;
    int64_t now = kith__now_ms();
    int rc, mrc;

    *moved = 0;
    *applied_gone = false;
    if ((rc = kith__origin_get(r, s->txn, origin, &st)) < 0)
        return rc;
    if (st.have <= after)
        return 0; /* nothing of the other history is held */
    if ((rc = kith__chain_at(r, s->txn, origin, after, st.head)) < 0)
        return kith__fail(r, rc == KITH_ENOTFOUND ? KITH_ECORRUPT : rc,
                          "origin %016llx: no commit held here ends at seq %llu, where the "
                          "two histories part",
                          (unsigned long long)origin, (unsigned long long)after);
    rc = kith__mdb_err(kith__mdb_cursor_open(s->txn, r->log, &cur));
    if (rc < 0)
        return rc;
    kith__be64_put(kb, origin);
    kith__be64_put(kb + 8, after + 1);
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         mrc == 0 && k.mv_size == 16 && kith__be64_get(k.mv_data) == origin;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint32_t nops;
        const uint8_t *chain, *bytes;
        uint64_t order;
        size_t len;
        if ((rc = kith__log_parse(r, &v, &nops, &chain, &order, &bytes, &len)) < 0)
            break;
        if (order != 0)
            *applied_gone = true;
        if ((rc = kith__journal_put(r, s->txn, &k, &v, now)) != 0)
            break;
        if ((mrc = mdb_cursor_del(cur, 0)) != 0)
            break;
        *moved += nops;
        if (order == 0)
            s->pending -= nops <= s->pending ? nops : s->pending;
    }
    mdb_cursor_close(cur);
    if (rc != 0)
        return rc;
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return mrc == MDB_MAP_FULL ? mrc : kith__mdb_err(mrc);
    /* their signed heads: a head after `after` signs the other history */
    rc = kith__mdb_err(kith__mdb_cursor_open(s->txn, r->sigs, &cur));
    if (rc < 0)
        return rc;
    k.mv_size = 16;
    k.mv_data = kb;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         mrc == 0 && k.mv_size == 16 && kith__be64_get(k.mv_data) == origin;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if ((mrc = mdb_cursor_del(cur, 0)) != 0)
            break;
    mdb_cursor_close(cur);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return mrc == MDB_MAP_FULL ? mrc : kith__mdb_err(mrc);
    st.have = after;
    if (st.applied > after)
        st.applied = after;
    return kith__origin_put(r, s->txn, origin, &st);
}

/* Empty the state (void dots' tombstones too) and the apply order, and make every logged
 * commit pending again: the origins records' applied go to 0, `pending` to all that is held.
 * The apply then starts from nothing (apply_pending). Local numbers of names stay. */
static int
state_reset(struct applying *s)
{
    kith_replica *r = s->r;
    const MDB_dbi dbis[] = {r->regs,   r->elems,  r->docs,  r->index,
                            r->counts, r->flagdb, r->order, r->voids};
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, mrc;

    for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++)
        if (dbis[i] != KITH__DBI_FREE && (mrc = mdb_drop(s->txn, dbis[i], 0)) != 0)
            return mrc == MDB_MAP_FULL ? mrc : kith__mdb_err(mrc);
    s->pending = 0;
    rc = kith__mdb_err(kith__mdb_cursor_open(s->txn, r->origins, &cur));
    if (rc < 0)
        return rc;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint8_t vb[KITH__ORIGIN_VAL_BYTES];
        MDB_val nv = {sizeof vb, vb};
        if (k.mv_size != 8 || v.mv_size != KITH__ORIGIN_VAL_BYTES)
            continue;
        memcpy(vb, v.mv_data, sizeof vb); /* applied(8) | have(8) | head(32) */
        s->pending += kith__be64_get(vb + 8);
        if (kith__be64_get(vb) == 0)
            continue;
        kith__be64_put(vb, 0);
        if ((mrc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT)) != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return mrc == MDB_MAP_FULL ? mrc : kith__mdb_err(mrc);
    s->ap.no_conflicts = true; /* until the rebuild is done: they were recorded before */
    s->rebuilding = true;
    return 0;
}

/*
 * Where a removed origin's history held here is cut (GRP-21): *after gets the highest seq at
 * or below `cutoff` where a commit of it ends and a head it signed is held (0: none), or
 * UINT64_MAX when nothing held ends beyond the cut-off. A commit that straddles the cut-off
 * goes whole, as a run ending beyond it is refused whole (GRP-15); and so do the commits
 * after the last signed head within the cut-off, which this replica could not relay (a run
 * verifies only against a head): kept here, they would make this replica's state one no
 * other can reach. A replica holding the head relays them, and they come back. This
 * replica's own origin needs no held head: it signs its own.
 */
static int
cut_point(struct applying *s, uint64_t origin, uint64_t cutoff, uint64_t *after)
{
    struct kith__origin_state st;
    uint8_t kb[16];
    MDB_val k = {16, kb}, v;
    MDB_cursor *cur;
    int rc, mrc;

    *after = UINT64_MAX;
    if ((rc = kith__origin_get(s->r, s->txn, origin, &st)) < 0)
        return rc == KITH_ENOTFOUND ? 0 : rc;
    if (st.have <= cutoff)
        return 0;
    /* a head the origin signed at the cut-off may have come with the removal (GRP-25) */
    if (origin != s->r->id && (rc = kith__group_cutheads_keep(s->r, s->txn, origin, cutoff)) != 0)
        return rc;
    rc = kith__mdb_err(kith__mdb_cursor_open(s->txn, s->r->log, &cur));
    if (rc < 0)
        return rc;
    kith__be64_put(kb, origin);
    kith__be64_put(kb + 8, cutoff + 1);
    mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    mrc = kith__mdb_cursor_get(cur, &k, &v, mrc == 0 ? MDB_PREV : MDB_LAST);
    *after = 0;
    if (mrc == 0 && k.mv_size == 16 && kith__be64_get(k.mv_data) == origin &&
        kith__be64_get((const uint8_t *)k.mv_data + 8) <= cutoff) {
        uint64_t first = kith__be64_get((const uint8_t *)k.mv_data + 8), order;
        uint32_t nops;
        const uint8_t *chain, *bytes;
        size_t len;
        rc = kith__log_parse(s->r, &v, &nops, &chain, &order, &bytes, &len);
        *after = first + nops - 1 <= cutoff ? first + nops - 1 : first - 1;
    } else if (mrc != 0 && mrc != MDB_NOTFOUND) {
        rc = kith__mdb_err(mrc);
    }
    mdb_cursor_close(cur);
    if (rc < 0 || origin == s->r->id || *after == 0)
        return rc; /* this replica signs its own heads */
    /* another origin's ops are kept up to a head it signed, so that they can be relayed */
    rc = kith__mdb_err(kith__mdb_cursor_open(s->txn, s->r->sigs, &cur));
    if (rc < 0)
        return rc;
    k.mv_size = 16;
    k.mv_data = kb;
    kith__be64_put(kb, origin);
    kith__be64_put(kb + 8, *after + 1);
    mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    mrc = kith__mdb_cursor_get(cur, &k, &v, mrc == 0 ? MDB_PREV : MDB_LAST);
    if (mrc == 0 && k.mv_size == 16 && kith__be64_get(k.mv_data) == origin)
        *after = kith__be64_get((const uint8_t *)k.mv_data + 8);
    else if (mrc == 0 || mrc == MDB_NOTFOUND)
        *after = 0;
    else
        rc = kith__mdb_err(mrc);
    mdb_cursor_close(cur);
    return rc;
}

/* Set aside every history s->asides names, and every removed origin's commits beyond its
 * cut-off; rebuild the state when one had been applied. */
static int
set_asides(struct applying *s)
{
    bool reset = false;
    int rc;

    s->ops_aside = 0;
    for (size_t i = 0; i < s->nasides + s->nfound; i++) {
        uint64_t moved, origin, after;
        bool applied_gone;
        if (i < s->nasides) {
            origin = s->asides[i].origin;
            after = s->asides[i].after;
        } else if (s->found[i - s->nasides].aside) {
            origin = s->found[i - s->nasides].origin;
            after = s->found[i - s->nasides].after;
        } else {
            continue;
        }
        rc = move_to_journal(s, origin, after, &moved, &applied_gone);
        if (rc != 0)
            return rc;
        s->ops_aside += moved;
        reset |= applied_gone;
    }
    /* a removed origin's commits that end beyond its cut-off (GRP-21) */
    for (size_t i = 0; i < s->ncuts; i++) {
        uint64_t moved, after;
        bool applied_gone;
        if ((rc = cut_point(s, s->cuts[i].origin, s->cuts[i].after, &after)) != 0)
            return rc;
        if (after == UINT64_MAX)
            continue; /* nothing held beyond the cut-off */
        rc = move_to_journal(s, s->cuts[i].origin, after, &moved, &applied_gone);
        if (rc != 0)
            return rc;
        s->ops_aside += moved;
        reset |= applied_gone;
    }
    return reset ? state_reset(s) : 0;
}

/* After a rebuild, commits still pending must say so in the log (order 0): their entries
 * still carry the counters of the apply order that was emptied. */
static int
pending_unmark(struct applying *s)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, mrc;

    rc = kith__mdb_err(kith__mdb_cursor_open(s->txn, s->r->origins, &cur));
    if (rc < 0)
        return rc;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t origin;
        struct kith__origin_slot *slot;
        if (k.mv_size != 8)
            continue;
        origin = kith__be64_get(k.mv_data);
        slot = kith__apply_origin(&s->ap, origin, &rc);
        if (slot == NULL)
            break;
        for (uint64_t seq = slot->st.applied + 1; seq <= slot->st.have;) {
            MDB_val lv;
            uint32_t nops;
            const uint8_t *chain, *bytes;
            uint64_t order;
            size_t len;
            rc = log_get(s->r, s->txn, origin, seq, &lv);
            if (rc == 0)
                rc = kith__log_parse(s->r, &lv, &nops, &chain, &order, &bytes, &len);
            if (rc < 0)
                break;
            if (order != 0) {
                uint8_t kb[16];
                MDB_val lk = {16, kb}, nv = {lv.mv_size, NULL};
                kith__be64_put(kb, origin);
                kith__be64_put(kb + 8, seq);
                s->copy.len = 0;
                if ((rc = kith__wbuf_put(&s->copy, lv.mv_data, lv.mv_size)) < 0)
                    break;
                kith__be64_put(s->copy.data + 36, 0);
                nv.mv_data = s->copy.data;
                if ((rc = kith__mdb_put(s->txn, s->r->log, &lk, &nv, 0)) != 0) {
                    rc = rc == MDB_MAP_FULL ? rc : kith__mdb_err(rc);
                    break;
                }
            }
            seq += nops;
        }
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    if (rc != 0)
        return rc;
    return mrc == MDB_NOTFOUND ? 0 : kith__mdb_err(mrc);
}

/* What takes a batch's signed items: kith__group_absorb, kith__proof_absorb. */
typedef int (*absorb_fn)(kith_replica *r, MDB_txn *txn, const uint8_t *const *items,
                         const size_t *lens, size_t n, size_t *added);

/* Take the batch's group records (store/group.c judges them) or fork proofs (store/proofs.c
 * checks each from its own bytes), `what` naming one: a record forged or signed by a
 * non-member, or a proof that does not verify, refuses the whole batch. */
static int
absorb_items(struct applying *s, const struct kith__batch_item *items, size_t n, absorb_fn fn,
             const char *what)
{
    const uint8_t **p = malloc(n * sizeof *p);
    size_t *lens = malloc(n * sizeof *lens), added = 0;
    int rc = KITH_ENOMEM;

    if (p != NULL && lens != NULL) {
        for (size_t i = 0; i < n; i++) {
            p[i] = items[i].bytes;
            lens[i] = items[i].len;
        }
        rc = fn(s->r, s->txn, p, lens, n, &added);
        if (rc < 0 && rc != MDB_MAP_FULL) {
            char why[sizeof s->why];
            snprintf(why, sizeof why, "%s", kith_errmsg(s->r));
            rc = kith__fail(s->r, rc, "batch from %016llx: a %s is refused: %s",
                            (unsigned long long)s->b.sender, what, why);
        }
    }
    free(p);
    free(lens);
    return rc;
}

/* One attempt: verify everything, then write and commit. MDB_MAP_FULL comes back as is. */
static int
batch_attempt(struct applying *s, bool observe)
{
    kith_replica *r = s->r;
    uint64_t *seen = NULL;
    size_t nseen = 0;
    int rc = kith__mdb_begin(r, 0, &s->txn);

    if (rc < 0)
        return rc;
    rc = kith__apply_begin(&s->ap, r, s->txn, observe ? &s->events : NULL);
    if (rc < 0)
        goto out_txn;
    /* only the applier reads the state in this txn; an op is ~35 bytes of a commit and
     * touches a register, a membership and now and then an index key */
    size_t bytes = 0;
    for (size_t i = 0; i < s->b.ncommits; i++)
        bytes += s->b.commits[i].len;
    rc = kith__apply_cache(&s->ap, bytes / 16);
    if (rc < 0)
        goto out_applier;
    memset(&s->info, 0, sizeof s->info);
    s->naside = 0;
    s->rebuilding = false;
    for (size_t i = 0; i < s->b.ncommits; i++)
        s->ci[i].skip = false;
    s->log_tail_known = false;
    s->events.ndocs = s->events.nconflicts = 0;
    s->now_ms = kith__replica_now_ms(r);
    if ((rc = kith__meta_get_u64(r, s->txn, "order", &s->order)) < 0 ||
        (rc = kith__meta_get_u64(r, s->txn, "hlc", &s->hlc)) < 0 ||
        (rc = kith__meta_get_u64(r, s->txn, "pending", &s->pending)) < 0)
        goto out_applier;
    /* group records before anything they admit: the proofs' origins, the sender, the runs
     * (D-19), and before the cut-offs they set (GRP-21) */
    if (s->b.nrecords > 0 && (rc = absorb_items(s, s->b.records, s->b.nrecords, kith__group_absorb,
                                                "group record")) != 0)
        goto out_applier;
    /* proofs, then the forks they settle: a history set aside goes before anything reads
     * the origins records or the state (FORK-10) */
    if (s->b.nproofs > 0 &&
        (rc = absorb_items(s, s->b.proofs, s->b.nproofs, kith__proof_absorb, "fork proof")) != 0)
        goto out_applier;
    free(s->found);
    s->found = NULL;
    s->nfound = 0;
    if ((rc = kith__settled_read(r, s->txn, &s->found, &s->nfound)) < 0)
        goto out_applier;
    free(s->cuts);
    s->cuts = NULL;
    s->ncuts = 0;
    if ((rc = kith__group_cutoffs(r, s->txn, &s->cuts, &s->ncuts)) < 0)
        goto out_applier;
    bool settle = s->nasides > 0 || s->ncuts > 0;
    for (size_t i = 0; i < s->nfound; i++)
        settle |= s->found[i].aside;
    if (settle && (rc = set_asides(s)) != 0)
        goto out_applier;
    /* where a fork is settled, or a removed origin cut off, a commit may observe a void
     * dot: tombstones (FORK-15, GRP-22) */
    if (s->nsettled + s->nfound + s->ncuts > 0 && (rc = kith__apply_voids(&s->ap)) < 0)
        goto out_applier;
    /* the sender too must be trusted: a relayed batch comes from a device of this user */
    if (!s->held_only) {
        uint8_t pk[KITH_PUBKEY_BYTES];
        rc = kith__trusted_key(r, s->txn, s->b.sender, pk);
        if (rc < 0) {
            rc = kith__fail(r, KITH_EUNTRUSTED,
                            "batch sender %016llx is not trusted, nor a member of this "
                            "replica's group",
                            (unsigned long long)s->b.sender);
            goto out_applier;
        }
    }
    /* verify each origin's run, once per origin */
    seen = calloc(s->b.ncommits ? s->b.ncommits : 1, sizeof *seen);
    if (seen == NULL) {
        rc = KITH_ENOMEM;
        goto out_applier;
    }
    for (size_t i = 0; i < s->b.ncommits; i++) {
        bool done = false;
        for (size_t j = 0; j < nseen && !done; j++)
            done = seen[j] == s->b.commits[i].origin;
        if (done)
            continue;
        seen[nseen++] = s->b.commits[i].origin;
        rc = verify_run(s, s->b.commits[i].origin);
        if (rc != 0)
            goto out_applier; /* an error, or MDB_MAP_FULL recording a fork */
    }
    for (size_t i = 0; i < s->b.ncommits; i++)
        if (s->ci[i].known)
            s->info.ops_known += s->ci[i].nops;
    rc = batch_write(s);
    if (rc != 0)
        goto out_applier;
    if (s->rebuilding) {
        s->ap.no_conflicts = false;
        if ((rc = pending_unmark(s)) != 0)
            goto out_applier;
    }
    if (s->held_only && s->info.ops_applied == 0 && s->ops_aside == 0 && !s->rebuilding) {
        rc = 0; /* nothing moved: nothing to commit, nor to sync to disk */
        goto out_applier;
    }
    /* the end report comes before the commit, so that a cancel there still changes nothing */
    if ((rc = kith__progress_end(s->pg, s->pg_total)) < 0)
        goto out_applier;
    kith__apply_end(&s->ap);
    rc = kith__mdb_txn_commit(s->txn);
    kith__mdb_end(r);
    free(seen);
    if (rc != 0)
        return rc == MDB_MAP_FULL
                   ? rc
                   : kith__fail(r, kith__mdb_err(rc), "commit: %s", mdb_strerror(rc));
    s->info.conflicts = s->ap.conflicts;
    s->info.ops_pending = s->pending;
    return 0;
out_applier:
    s->info.conflicts = 0;
    s->info.ops_pending = s->pending;
    kith__apply_end(&s->ap);
out_txn:
    mdb_txn_abort(s->txn);
    kith__mdb_end(r);
    free(seen);
    return rc;
}

/* Attempt, growing the map and trying again while it is full. */
static int
apply_growing(struct applying *s)
{
    kith_replica *r = s->r;
    int rc;

    for (int tries = 0;; tries++) {
        s->ap.conflicts = 0;
        rc = batch_attempt(s, r->on_change != NULL || r->on_conflict != NULL);
        if (rc != MDB_MAP_FULL)
            return rc;
        if (tries == MAX_GROWTHS)
            return kith__fail(r, -ENOSPC, "the map cannot grow any further");
        rc = kith__map_grow(r);
        if (rc < 0)
            return rc;
    }
}

static void
applying_free(struct applying *s)
{
    free(s->found);
    free(s->cuts);
    free(s->ci);
    free(s->aside);
    kith__event_free(&s->events);
    kith__wbuf_free(&s->copy);
    kith__arena_free(&s->carena);
    kith__arena_free(&s->arena);
}

/* The ops batch `b` carries: per origin, from its first commit's first seq to its highest
 * signed head (a run is contiguous and ends at a head; a batch that is not so is refused
 * later, and then the total does not matter). */
static uint64_t
batch_total(const struct kith__batch *b)
{
    uint64_t total = 0;

    for (size_t i = 0; i < b->nheads; i++) {
        uint64_t origin = b->heads[i].origin, end = 0;
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = b->heads[j].origin == origin;
        if (dup)
            continue;
        for (size_t j = i; j < b->nheads; j++)
            if (b->heads[j].origin == origin && b->heads[j].seq > end)
                end = b->heads[j].seq;
        for (size_t j = 0; j < b->ncommits; j++) {
            if (b->commits[j].origin != origin)
                continue;
            if (b->commits[j].first_seq >= 1 && b->commits[j].first_seq <= end)
                total += end - b->commits[j].first_seq + 1;
            break;
        }
    }
    return total;
}

int
kith_batch_apply(kith_replica *r, const void *data, size_t len, kith_apply_info *info)
{
    struct kith__progress pg;

    kith__progress_init(&pg, r, KITH_PROGRESS_APPLY);
    return kith__batch_apply(r, data, len, info, kith__progress_live(&pg));
}

int
kith__batch_apply(kith_replica *r, const void *data, size_t len, kith_apply_info *info,
                  struct kith__progress *pg)
{
    struct applying s;
    bool committed = false;
    int rc;

    if (info != NULL)
        memset(info, 0, sizeof *info);
    if (r == NULL || (data == NULL && len > 0))
        return KITH_EINVAL;
    if (r->flags & KITH_RDONLY)
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    if (len > KITH__MAX_BATCH_BYTES)
        return kith__fail(r, KITH_ETOOBIG, "batch of %zu bytes is over the limit of %u", len,
                          KITH__MAX_BATCH_BYTES);
    memset(&s, 0, sizeof s);
    s.r = r;
    rc = kith__batch_decode(data, len, &s.b, &s.arena);
    if (rc < 0) {
        rc = kith__fail(r, rc, "batch does not decode: %s", kith_strerror(rc));
        goto out_free;
    }
    s.ci = calloc(s.b.ncommits ? s.b.ncommits : 1, sizeof *s.ci);
    if (s.ci == NULL) {
        rc = KITH_ENOMEM;
        goto out_free;
    }
    if (pg != NULL) {
        s.pg = pg;
        s.pg_total = batch_total(&s.b);
        if ((rc = kith__progress_report(pg, 0, s.pg_total)) < 0)
            goto out_free;
    }
    rc = apply_growing(&s);
    committed = rc == 0;
    if (rc == 0) {
        if (info != NULL)
            *info = s.info;
        kith__event_report(r, &s.events, KITH_CHANGE_REMOTE);
    }
    /* a fork found here may have made a proof that settles it: settle now, not at the next
     * batch (a second transaction; a crash between leaves it to the next one) */
    if (rc == 0 && s.info.forks > 0)
        rc = kith__history_set_aside(r, NULL, 0, NULL, NULL);
    /* a proof that this replica's own origin lost: it takes a new key (FORK-11, D-22) */
    if (rc == 0 && (s.info.forks > 0 || s.b.nproofs > 0))
        rc = kith__rekey_auto(r);
out_free:
    kith__fork_notes_end(r, committed); /* kith_on_fork: after the commit and the settling */
    applying_free(&s);
    return rc;
}

int
kith_holds_apply(kith_replica *r, kith_apply_info *info)
{
    struct applying s;
    int rc;

    if (info != NULL)
        memset(info, 0, sizeof *info);
    if (r == NULL)
        return KITH_EINVAL;
    if (r->flags & KITH_RDONLY)
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    memset(&s, 0, sizeof s);
    s.r = r;
    s.held_only = true;
    s.b.sender = r->id;
    s.ci = calloc(1, sizeof *s.ci);
    if (s.ci == NULL)
        return KITH_ENOMEM;
    rc = apply_growing(&s);
    if (rc == 0) {
        if (info != NULL)
            *info = s.info;
        kith__event_report(r, &s.events, KITH_CHANGE_REMOTE);
    }
    applying_free(&s);
    return rc;
}

int
kith__history_set_aside(kith_replica *r, const struct kith__aside *asides, size_t n,
                        uint64_t *ops_aside, kith_apply_info *info)
{
    struct applying s;
    int rc;

    if (info != NULL)
        memset(info, 0, sizeof *info);
    if (ops_aside != NULL)
        *ops_aside = 0;
    if (r == NULL || (n > 0 && asides == NULL))
        return KITH_EINVAL;
    if (r->flags & KITH_RDONLY)
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    memset(&s, 0, sizeof s);
    s.r = r;
    s.held_only = true;
    s.b.sender = r->id;
    s.asides = s.settled = asides;
    s.nasides = s.nsettled = n;
    s.ci = calloc(1, sizeof *s.ci);
    if (s.ci == NULL)
        return KITH_ENOMEM;
    rc = apply_growing(&s);
    if (rc == 0) {
        if (info != NULL)
            *info = s.info;
        if (ops_aside != NULL)
            *ops_aside = s.ops_aside;
        kith__event_report(r, &s.events, KITH_CHANGE_REMOTE);
    }
    applying_free(&s);
    return rc;
}
