/*
 * proofs.c — fork proofs kept in the store: made from a batch that shows the other history
 * of a forked origin, received from peers and bundles, listed for them, and described in
 * kith_fork (spec/data-model.md FORK-5 .. FORK-9, spec/storage.md "proofs", decisions.md
 * D-18). The proof itself, its bytes and its check, is core/forkproof.c.
 *
 * Why here and not in the forks record: an origin has one fork record (the first evidence,
 * local), but a proof is evidence anyone can check and forward, and one origin may be shown
 * forked at more than one point (three copies of a key). So the `proofs` database keys each
 * proof by the fork it names, (origin, c, both first chain hashes): the same fork built by
 * two replicas from different signed heads lands on one key, where the shorter proof is kept
 * (then the lower bytes), so replicas that exchange proofs end up holding the same bytes.
 *
 * Making one needs, on each side of the point c where the two histories part, the commits
 * from c + 1 to a head the origin signed: the batch's run gives one side (its commits and its
 * heads), this replica's log and `sigs` the other (its own origin's heads it signs itself,
 * as batch_build.c does). Each side stops at the first signed head it reaches, so a proof is
 * as small as the heads at hand allow. A proof made here is checked as a received one is
 * before it is kept: a head of the batch that does not verify makes no proof, and the next
 * head of the run is tried.
 */
#include "forkproof.h"
#include "store.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TRIES 4 /* heads of a batch's run tried as the end of its branch */

/* Read a log record of (origin, first_seq): 1 with its parts, 0 when none starts there. */
static int
log_at(kith_replica *r, MDB_txn *txn, uint64_t origin, uint64_t first_seq, uint32_t *nops,
       const uint8_t **chain, const uint8_t **bytes, size_t *len)
{
    uint8_t kb[16];
    MDB_val k = {16, kb}, v;
    uint64_t order;
    int rc;

    kith__be64_put(kb, origin);
    kith__be64_put(kb + 8, first_seq);
    rc = kith__mdb_get(txn, r->log, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return kith__fail(r, kith__mdb_err(rc), "log: %s", mdb_strerror(rc));
    rc = kith__log_parse(r, &v, nops, chain, &order, bytes, len);
    return rc < 0 ? rc : 1;
}

/* A head of `origin` at `seq` held in sigs: 1 with the signature, 0 when none. */
static int
sig_at(kith_replica *r, MDB_txn *txn, uint64_t origin, uint64_t seq, uint8_t sig[KITH_SIG_BYTES])
{
    uint8_t kb[16];
    MDB_val k = {16, kb}, v;
    int rc;

    kith__be64_put(kb, origin);
    kith__be64_put(kb + 8, seq);
    rc = kith__mdb_get(txn, r->sigs, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return kith__fail(r, kith__mdb_err(rc), "sigs: %s", mdb_strerror(rc));
    if (v.mv_size != KITH_SIG_BYTES)
        return kith__fail(r, KITH_ECORRUPT, "sigs: record of %zu bytes", v.mv_size);
    memcpy(sig, v.mv_data, KITH_SIG_BYTES);
    return 1;
}

/* The first proof of `origin` (the lowest c): 1 with its key in kb, 0 when none. */
static int
first_of(kith_replica *r, MDB_txn *txn, uint64_t origin, uint8_t kb[KITH__FORKPROOF_NAME_BYTES])
{
    MDB_cursor *cur;
    MDB_val k = {8, kb}, v;
    int rc;

    memset(kb, 0, KITH__FORKPROOF_NAME_BYTES);
    kith__be64_put(kb, origin);
    rc = kith__mdb_cursor_open(txn, r->proofs, &cur);
    if (rc != 0)
        return kith__mdb_err(rc);
    rc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size == KITH__FORKPROOF_NAME_BYTES && kith__be64_get(k.mv_data) == origin) {
        memcpy(kb, k.mv_data, KITH__FORKPROOF_NAME_BYTES);
        rc = 1;
    } else if (rc == 0 || rc == MDB_NOTFOUND) {
        rc = 0;
    } else {
        rc = kith__mdb_err(rc);
    }
    mdb_cursor_close(cur);
    return rc;
}

/*
 * Keep the verified proof `p` (`len` bytes, decoded into f) under its name. 1 when the name
 * is new, 0 when it was held (the shorter, then lower, bytes stay), or an error
 * (MDB_MAP_FULL as itself).
 */
static int
proof_keep(kith_replica *r, MDB_txn *txn, const uint8_t *p, size_t len,
           const struct kith__forkproof *f)
{
    uint8_t kb[KITH__FORKPROOF_NAME_BYTES];
    MDB_val k = {sizeof kb, kb}, v;
    int rc, isnew;

    if (r->proofs == KITH__DBI_FREE)
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    kith__forkproof_name(f, kb);
    rc = kith__mdb_get(txn, r->proofs, &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return kith__fail(r, kith__mdb_err(rc), "proofs: %s", mdb_strerror(rc));
    isnew = rc == MDB_NOTFOUND;
    if (!isnew && (v.mv_size < len || (v.mv_size == len && memcmp(v.mv_data, p, len) <= 0)))
        return 0;
    v.mv_size = len;
    v.mv_data = (void *)p;
    rc = kith__mdb_put(txn, r->proofs, &k, &v, 0);
    if (rc != 0)
        return rc == MDB_MAP_FULL
                   ? rc
                   : kith__fail(r, kith__mdb_err(rc), "proofs: %s", mdb_strerror(rc));
    if (isnew)
        kith__fork_note(r, f->origin); /* told to kith_on_fork after the commit */
    return isnew;
}

/* Which first chain hash of f does this replica's log hold after seq f->c? */
static int
holds_of(kith_replica *r, MDB_txn *txn, uint64_t origin, uint64_t c, const uint8_t *win,
         const uint8_t *lose, int *holds, uint64_t *end, uint8_t ours[KITH_HASH_BYTES])
{
    uint32_t nops;
    const uint8_t *chain, *bytes;
    size_t len;
    int rc;

    *holds = KITH_FORK_HOLDS_NEITHER;
    *end = 0;
    if (c == UINT64_MAX)
        return 0;
    rc = log_at(r, txn, origin, c + 1, &nops, &chain, &bytes, &len);
    if (rc <= 0)
        return rc;
    *end = c + nops;
    memcpy(ours, chain, KITH_HASH_BYTES);
    if (memcmp(chain, win, KITH_HASH_BYTES) == 0)
        *holds = KITH_FORK_HOLDS_WINNER;
    else if (memcmp(chain, lose, KITH_HASH_BYTES) == 0)
        *holds = KITH_FORK_HOLDS_LOSER;
    return 0;
}

int
kith__proof_describe(kith_replica *r, MDB_txn *txn, kith_fork *f)
{
    uint8_t kb[KITH__FORKPROOF_NAME_BYTES], ours[KITH_HASH_BYTES];
    uint64_t end;
    int rc;

    f->has_proof = false;
    f->proof_seq = 0;
    memset(f->winner, 0, KITH_HASH_BYTES);
    memset(f->loser, 0, KITH_HASH_BYTES);
    f->holds = KITH_FORK_HOLDS_NEITHER;
    if (r->proofs == KITH__DBI_FREE)
        return 0;
    rc = first_of(r, txn, f->origin, kb);
    if (rc <= 0)
        return rc;
    f->has_proof = true;
    f->proof_seq = kith__be64_get(kb + 8);
    memcpy(f->winner, kb + 16, KITH_HASH_BYTES);
    memcpy(f->loser, kb + 16 + KITH_HASH_BYTES, KITH_HASH_BYTES);
    return holds_of(r, txn, f->origin, f->proof_seq, f->winner, f->loser, &f->holds, &end, ours);
}

int
kith__proof_collect(kith_replica *r, MDB_txn *txn,
                    int (*emit)(void *ctx, const uint8_t *proof, size_t len), void *ctx)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, mrc;

    if (r->proofs == KITH__DBI_FREE)
        return 0;
    rc = kith__mdb_cursor_open(txn, r->proofs, &cur);
    if (rc != 0)
        return kith__mdb_err(rc);
    rc = 0;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        rc = emit(ctx, v.mv_data, v.mv_size);
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != MDB_NOTFOUND)
        rc = kith__fail(r, kith__mdb_err(mrc), "proofs: %s", mdb_strerror(mrc));
    return rc;
}

/*
 * Record the fork that the verified proof f shows, unless its origin has a record: source
 * KITH_FORK_PROOF, at the end of this replica's first commit after c (c + 1 when it holds
 * none), the other history's first chain hash, and that history's signed head. 0 or an
 * error (MDB_MAP_FULL as itself).
 */
static int
fork_from_proof(kith_replica *r, MDB_txn *txn, const struct kith__forkproof *f)
{
    const struct kith__fork_branch *other;
    kith_fork k;
    uint64_t end;
    int holds, rc;

    memset(&k, 0, sizeof k);
    k.origin = f->origin;
    rc = holds_of(r, txn, f->origin, f->c, f->win.first, f->lose.first, &holds, &end, k.ours);
    if (rc < 0)
        return rc;
    if (end == 0) {
        end = f->c + 1;
        memset(k.ours, 0, KITH_HASH_BYTES);
    }
    other = holds == KITH_FORK_HOLDS_WINNER ? &f->lose : &f->win;
    k.seq = end;
    memcpy(k.theirs, other->first, KITH_HASH_BYTES);
    k.recorded_ms = kith__now_ms();
    k.source = KITH_FORK_PROOF;
    k.has_head = true;
    k.head_seq = other->head_seq;
    memcpy(k.head_chain, other->head, KITH_HASH_BYTES);
    memcpy(k.head_sig, other->sig, KITH_SIG_BYTES);
    rc = kith__fork_put(r, txn, &k);
    return rc < 0 ? rc : 0;
}

int
kith__proof_absorb(kith_replica *r, MDB_txn *txn, const uint8_t *const *proofs, const size_t *lens,
                   size_t n, size_t *added)
{
    struct kith__arena arena = {0};
    struct kith__forkproof *f; /* each proof as checked; its commit views are not kept */
    char why[200];
    int rc = 0;

    *added = 0;
    if (n == 0)
        return 0;
    if (r->proofs == KITH__DBI_FREE || r->forks == KITH__DBI_FREE)
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    if ((f = calloc(n, sizeof *f)) == NULL)
        return KITH_ENOMEM;
    /* every proof is checked before anything is written: one bad proof stores nothing */
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint8_t pk[KITH_PUBKEY_BYTES];
        kith__arena_reset(&arena);
        rc = kith__forkproof_verify(proofs[i], lens[i], &f[i], &arena, why, sizeof why);
        if (rc < 0) {
            rc = rc == KITH_ENOMEM ? rc
                                   : kith__fail(r, rc, "fork proof %zu of %zu does not verify: %s",
                                                i + 1, n, why);
            break;
        }
        f[i].win.commits = f[i].lose.commits = NULL; /* views into the arena, reset next */
        uint64_t cutoff;
        rc = kith__origin_key(r, txn, f[i].origin, pk, &cutoff);
        if (rc == KITH_EUNTRUSTED || (rc == 0 && sodium_memcmp(pk, f[i].key, sizeof pk) != 0))
            rc = kith__fail(r, KITH_EUNTRUSTED,
                            "fork proof %zu of %zu: origin %016llx is not one this replica "
                            "trusts with that key",
                            i + 1, n, (unsigned long long)f[i].origin);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = proof_keep(r, txn, proofs[i], lens[i], &f[i]);
        if (rc < 0)
            break;
        *added += (size_t)rc;
        rc = fork_from_proof(r, txn, &f[i]);
    }
    kith__arena_free(&arena);
    free(f);
    if (rc < 0)
        *added = 0;
    return rc < 0 ? rc : 0;
}

/* ---- making a proof from a batch's run and this replica's log -------------------------- */

struct making {
    kith_replica *r;
    MDB_txn *txn;
    uint64_t origin;
    struct kith__forkproof p; /* p.win is the batch's side and p.lose this replica's until
                                 the encoder puts them in winner order */
    struct kith__fork_commit *ours, *theirs;
    size_t nours, ntheirs;
    size_t bytes; /* of both branches' commits so far */
    struct kith__wbuf enc;
    struct kith__arena arena;
};

/*
 * This replica's side: its commits of the origin from c + 1 to the first head it holds a
 * signature for (its own origin: the first commit's end, signed now). 1 when found, 0 when
 * the log has no such head within the limits, or an error.
 */
static int
ours_collect(struct making *m, uint64_t have)
{
    kith_replica *r = m->r;
    uint64_t seq = m->p.c;
    int rc;

    while (seq < have && m->nours < KITH__FORKPROOF_MAX_COMMITS) {
        uint32_t nops;
        const uint8_t *chain, *bytes;
        size_t len;
        rc = log_at(r, m->txn, m->origin, seq + 1, &nops, &chain, &bytes, &len);
        if (rc <= 0)
            return rc < 0 ? rc : 0; /* no commit starts there: not a history to show */
        m->bytes += len;
        if (m->bytes > KITH__FORKPROOF_MAX_BYTES)
            return 0;
        m->ours[m->nours++] = (struct kith__fork_commit){bytes, len};
        seq += nops;
        if (m->origin == r->id && r->has_sk) {
            kith__head_sign(r->sk, r->id, seq, chain, m->p.lose.sig);
            return 1;
        }
        rc = sig_at(r, m->txn, m->origin, seq, m->p.lose.sig);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Is there a head of `origin` at `seq` in the batch? Its signature then. */
static const struct kith__batch_head *
batch_head(const struct kith__batch *b, uint64_t origin, uint64_t seq)
{
    for (size_t i = 0; i < b->nheads; i++)
        if (b->heads[i].origin == origin && b->heads[i].seq == seq)
            return &b->heads[i];
    return NULL;
}

/* Encode the proof as it stands, check it as a received one, keep it: 1 kept (or held), 0
 * when it does not verify, or an error. */
static int
try_keep(struct making *m)
{
    struct kith__forkproof f;
    char why[200];
    int rc;

    m->p.lose.commits = m->ours;
    m->p.lose.ncommits = (uint32_t)m->nours;
    m->p.win.commits = m->theirs;
    m->p.win.ncommits = (uint32_t)m->ntheirs;
    m->enc.len = 0;
    rc = kith__forkproof_encode(&m->p, &m->enc, why, sizeof why);
    if (rc == KITH_ENOMEM)
        return rc;
    if (rc < 0)
        return 0;
    kith__arena_reset(&m->arena);
    rc = kith__forkproof_verify(m->enc.data, m->enc.len, &f, &m->arena, why, sizeof why);
    if (rc == KITH_ENOMEM)
        return rc;
    if (rc < 0)
        return 0;
    rc = proof_keep(m->r, m->txn, m->enc.data, m->enc.len, &f);
    return rc < 0 ? rc : 1;
}

/*
 * Find where the run of m->origin in b parts from the log: the first commit of the run that
 * the log does not hold byte for byte, at a seq the log holds, after a commit both hold
 * (or at seq 1). Sets m->p.c and m->p.base; returns its index in b, or SIZE_MAX when the
 * run does not part from the log that way; errors in *rc.
 */
static size_t
parting(struct making *m, const struct kith__batch *b, uint64_t have, int *rc)
{
    bool started = false;
    uint64_t next = 0;

    *rc = 0;
    for (size_t i = 0; i < b->ncommits; i++) {
        const struct kith__batch_commit *bc = &b->commits[i];
        uint32_t nops;
        const uint8_t *chain, *bytes;
        size_t len;
        if (bc->origin != m->origin)
            continue;
        if (!started) {
            started = true;
            if (bc->first_seq == 0 || bc->first_seq > have)
                return SIZE_MAX;
            *rc = kith__chain_at(m->r, m->txn, m->origin, bc->first_seq - 1, m->p.base);
            if (*rc < 0) {
                if (*rc == KITH_ENOTFOUND)
                    *rc = 0; /* the run starts inside a commit of ours: no common chain */
                return SIZE_MAX;
            }
        } else if (bc->first_seq != next) {
            return SIZE_MAX;
        }
        if (bc->first_seq > have)
            return SIZE_MAX; /* extends what is held: nothing parts */
        *rc = log_at(m->r, m->txn, m->origin, bc->first_seq, &nops, &chain, &bytes, &len);
        if (*rc < 0)
            return SIZE_MAX;
        if (*rc == 0 || len != bc->len || memcmp(bytes, bc->bytes, len) != 0) {
            *rc = 0;
            m->p.c = bc->first_seq - 1;
            return i;
        }
        memcpy(m->p.base, chain, KITH_HASH_BYTES);
        next = bc->first_seq + nops;
    }
    *rc = 0;
    return SIZE_MAX;
}

int
kith__proof_from_batch(kith_replica *r, MDB_txn *txn, const struct kith__batch *b, uint64_t origin)
{
    struct making m;
    struct kith__origin_state o;
    uint8_t kb[KITH__FORKPROOF_NAME_BYTES];
    size_t at, run = 0;
    uint64_t seq;
    int rc, tries = 0;

    if (r->proofs == KITH__DBI_FREE)
        return 0;
    if ((rc = first_of(r, txn, origin, kb)) != 0)
        return rc < 0 ? rc : 0; /* one proof of an origin is enough to show it */
    memset(&m, 0, sizeof m);
    m.r = r;
    m.txn = txn;
    m.origin = origin;
    if (kith__origin_key(r, txn, origin, m.p.key, &seq) < 0)
        return 0;
    if ((rc = kith__origin_get(r, txn, origin, &o)) < 0)
        return rc;
    for (size_t i = 0; i < b->ncommits; i++)
        run += b->commits[i].origin == origin;
    at = parting(&m, b, o.have, &rc);
    if (rc < 0 || at == SIZE_MAX)
        return rc;
    m.ours = calloc(KITH__FORKPROOF_MAX_COMMITS, sizeof *m.ours);
    m.theirs = calloc(run < KITH__FORKPROOF_MAX_COMMITS ? run : KITH__FORKPROOF_MAX_COMMITS,
                      sizeof *m.theirs);
    if (m.ours == NULL || m.theirs == NULL) {
        rc = KITH_ENOMEM;
        goto out_free;
    }
    rc = ours_collect(&m, o.have);
    if (rc <= 0)
        goto out_free;
    rc = 0;
    /* their side: the run from the parting commit, to the first head of it that verifies */
    seq = m.p.c;
    for (size_t i = at; i < b->ncommits && rc == 0 && tries < MAX_TRIES; i++) {
        const struct kith__batch_commit *bc = &b->commits[i];
        const struct kith__batch_head *hd;
        struct kith__commit c;
        char why[160];
        if (bc->origin != origin)
            continue;
        if (bc->first_seq != seq + 1 || m.ntheirs == KITH__FORKPROOF_MAX_COMMITS ||
            (m.bytes += bc->len) > KITH__FORKPROOF_MAX_BYTES)
            break;
        kith__arena_reset(&m.arena);
        if (kith__commit_decode(bc->bytes, bc->len, origin, bc->first_seq, &c, &m.arena, why,
                                sizeof why) < 0 ||
            c.nops == 0)
            break;
        m.theirs[m.ntheirs++] = (struct kith__fork_commit){bc->bytes, bc->len};
        seq += c.nops;
        if ((hd = batch_head(b, origin, seq)) == NULL)
            continue;
        memcpy(m.p.win.sig, hd->sig, KITH_SIG_BYTES);
        tries++;
        rc = try_keep(&m);
    }
out_free:
    free(m.ours);
    free(m.theirs);
    kith__wbuf_free(&m.enc);
    kith__arena_free(&m.arena);
    return rc;
}

int
kith__proof_digest(kith_replica *r, uint8_t out[KITH_HASH_BYTES])
{
    crypto_generichash_state st;
    MDB_cursor *cur;
    MDB_txn *txn;
    MDB_val k, v;
    size_t n = 0;
    int rc, mrc;

    memset(out, 0, KITH_HASH_BYTES);
    if (r->proofs == KITH__DBI_FREE)
        return 0;
    if ((rc = kith__mdb_begin(r, MDB_RDONLY, &txn)) < 0)
        return rc;
    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->proofs, &cur));
    if (rc == 0) {
        crypto_generichash_init(&st, NULL, 0, KITH_HASH_BYTES);
        for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
             mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            uint8_t len[8];
            kith__be64_put(len, v.mv_size);
            crypto_generichash_update(&st, k.mv_data, k.mv_size);
            crypto_generichash_update(&st, len, sizeof len);
            crypto_generichash_update(&st, v.mv_data, v.mv_size);
            n++;
        }
        mdb_cursor_close(cur);
        if (mrc != MDB_NOTFOUND)
            rc = kith__fail(r, kith__mdb_err(mrc), "proofs: %s", mdb_strerror(mrc));
        else if (n > 0)
            crypto_generichash_final(&st, out, KITH_HASH_BYTES);
    }
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    return rc < 0 ? rc : n > 0;
}
