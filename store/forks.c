/*
 * forks.c — evidence that an origin signed two histories, and the chain heads a handshake
 * compares to find it (spec/data-model.md "Forks", spec/storage.md "forks", spec/protocol.md
 * NET-24..NET-26).
 *
 * A fork is found where two histories of one origin meet: a batch whose signed run differs
 * from the commits held here (store/batch_apply.c), or a handshake whose peer names, for a seq this
 * replica holds, another chain hash than its log has there. Either way one record per origin
 * is kept in the `forks` database, the first evidence found: later meetings find the origin
 * forked already and add nothing. The record is local evidence (the seq, both chain hashes,
 * the peer that showed the other history and, from a batch, the origin's signature over the
 * other history's head); the fork proof that any replica can check is kept beside it by
 * store/proofs.c, which also records a fork learnt from a proof alone (source 3), and
 * kith_forks_get reports each record with its proof's summary (FORK-4 .. FORK-9).
 *
 * The `forks` database is made by a writable open; a replica made before it, opened
 * read-only, has none, reads as having no fork, and is never written.
 */
#include "store.h"
#include "view.h"

#include <stdlib.h>
#include <string.h>

#define FORK_BASE_BYTES (8 + KITH_HASH_BYTES + KITH_HASH_BYTES + 8 + 8 + 1)
#define FORK_HEAD_BYTES (8 + KITH_HASH_BYTES + KITH_SIG_BYTES)

static int
fork_decode(kith_replica *r, uint64_t origin, const MDB_val *v, kith_fork *f)
{
    const uint8_t *p = v->mv_data;

    memset(f, 0, sizeof *f);
    if (v->mv_size != FORK_BASE_BYTES && v->mv_size != FORK_BASE_BYTES + FORK_HEAD_BYTES)
        return kith__fail(r, KITH_ECORRUPT, "forks: record of %016llx is %zu bytes",
                          (unsigned long long)origin, v->mv_size);
    f->origin = origin;
    f->seq = kith__be64_get(p);
    memcpy(f->ours, p + 8, KITH_HASH_BYTES);
    memcpy(f->theirs, p + 40, KITH_HASH_BYTES);
    f->seen_from = kith__be64_get(p + 72);
    f->recorded_ms = (int64_t)kith__be64_get(p + 80);
    f->source = p[88];
    if (v->mv_size > FORK_BASE_BYTES) {
        p += FORK_BASE_BYTES;
        f->has_head = true;
        f->head_seq = kith__be64_get(p);
        memcpy(f->head_chain, p + 8, KITH_HASH_BYTES);
        memcpy(f->head_sig, p + 40, KITH_SIG_BYTES);
    }
    return 0;
}

int
kith__fork_seq(kith_replica *r, MDB_txn *txn, uint64_t origin, uint64_t *seq)
{
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    int rc;

    if (r->forks == KITH__DBI_FREE)
        return 0;
    kith__be64_put(kb, origin);
    rc = kith__mdb_get(txn, r->forks, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return kith__mdb_err(rc);
    if (v.mv_size < 8)
        return kith__fail(r, KITH_ECORRUPT, "forks: record of %016llx is %zu bytes",
                          (unsigned long long)origin, v.mv_size);
    *seq = kith__be64_get(v.mv_data);
    return 1;
}

int
kith__fork_put(kith_replica *r, MDB_txn *txn, const kith_fork *f)
{
    uint8_t kb[8], vb[FORK_BASE_BYTES + FORK_HEAD_BYTES];
    MDB_val k = {8, kb}, v = {FORK_BASE_BYTES, vb};
    uint64_t seq;
    int rc = kith__fork_seq(r, txn, f->origin, &seq);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (r->forks == KITH__DBI_FREE)
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    kith__be64_put(kb, f->origin);
    kith__be64_put(vb, f->seq);
    memcpy(vb + 8, f->ours, KITH_HASH_BYTES);
    memcpy(vb + 40, f->theirs, KITH_HASH_BYTES);
    kith__be64_put(vb + 72, f->seen_from);
    kith__be64_put(vb + 80, (uint64_t)f->recorded_ms);
    vb[88] = (uint8_t)f->source;
    if (f->has_head) {
        uint8_t *p = vb + FORK_BASE_BYTES;
        kith__be64_put(p, f->head_seq);
        memcpy(p + 8, f->head_chain, KITH_HASH_BYTES);
        memcpy(p + 40, f->head_sig, KITH_SIG_BYTES);
        v.mv_size += FORK_HEAD_BYTES;
    }
    rc = kith__mdb_put(txn, r->forks, &k, &v, 0);
    if (rc != 0)
        return rc == MDB_MAP_FULL ? rc : kith__mdb_err(rc);
    kith__fork_note(r, f->origin); /* told to kith_on_fork after the commit */
    return 1;
}

int
kith__forks_read(kith_replica *r, MDB_txn *txn, kith_fork **out, size_t *n)
{
    kith_fork *list = NULL;
    size_t len = 0, cap = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, mrc;

    *out = NULL;
    *n = 0;
    if (r->forks == KITH__DBI_FREE)
        return 0;
    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->forks, &cur));
    if (rc < 0)
        return rc;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            rc = kith__fail(r, KITH_ECORRUPT, "forks: key of %zu bytes", k.mv_size);
            break;
        }
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 4;
            kith_fork *p = realloc(list, nc * sizeof *p);
            if (p == NULL) {
                rc = KITH_ENOMEM;
                break;
            }
            list = p;
            cap = nc;
        }
        rc = fork_decode(r, kith__be64_get(k.mv_data), &v, &list[len]);
        if (rc == 0)
            rc = kith__proof_describe(r, txn, &list[len]);
        if (rc < 0)
            break;
        len++;
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != MDB_NOTFOUND)
        rc = kith__mdb_err(mrc);
    if (rc < 0) {
        free(list);
        return rc;
    }
    *out = list;
    *n = len;
    return 0;
}

int
kith_forks_get(kith_replica *r, kith_fork **out, size_t *n)
{
    MDB_txn *txn;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (n != NULL)
        *n = 0;
    if (r == NULL || out == NULL || n == NULL)
        return KITH_EINVAL;
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = kith__forks_read(r, txn, out, n);
    kith__view_end(r, txn);
    return rc;
}

void
kith_forks_free(kith_fork *forks, size_t n)
{
    (void)n;
    free(forks);
}

int
kith__chain_at(kith_replica *r, MDB_txn *txn, uint64_t origin, uint64_t end,
               uint8_t out[KITH_HASH_BYTES])
{
    MDB_cursor *cur;
    uint8_t kb[16];
    MDB_val k = {16, kb}, v;
    int rc;

    if (end == 0) {
        memset(out, 0, KITH_HASH_BYTES);
        return 0;
    }
    rc = kith__mdb_cursor_open(txn, r->log, &cur);
    if (rc != 0)
        return kith__mdb_err(rc);
    /* the last commit of `origin` that starts at or before `end` */
    kith__be64_put(kb, origin);
    kith__be64_put(kb + 8, end + 1);
    rc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 || rc == MDB_NOTFOUND)
        rc = kith__mdb_cursor_get(cur, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);
    if (rc == 0) {
        const uint8_t *p = v.mv_data;
        if (k.mv_size == 16 && kith__be64_get(k.mv_data) == origin &&
            v.mv_size > KITH__LOG_HDR_BYTES) {
            uint32_t nops =
                (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            if (nops > 0 && kith__be64_get((const uint8_t *)k.mv_data + 8) + nops - 1 == end)
                memcpy(out, p + 4, KITH_HASH_BYTES);
            else
                rc = MDB_NOTFOUND;
        } else {
            rc = MDB_NOTFOUND;
        }
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        return KITH_ENOTFOUND;
    return rc == 0 ? 0 : kith__mdb_err(rc);
}

int
kith__heads_read(kith_replica *r, kith_vv *vv, uint8_t **heads)
{
    MDB_txn *txn;
    uint8_t *h = NULL;
    int rc;

    vv->len = 0;
    vv->entries = NULL;
    *heads = NULL;
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = kith__vv_read(r, txn, vv);
    if (rc == 0 && vv->len > 0 && (h = malloc(vv->len * KITH_HASH_BYTES)) == NULL)
        rc = KITH_ENOMEM;
    for (size_t i = 0; rc == 0 && i < vv->len; i++) {
        struct kith__origin_state o;
        uint64_t origin = vv->entries[i].origin, seq = vv->entries[i].seq;

        /* the usual case: nothing pending, and the record has the head at hand */
        rc = kith__origin_get(r, txn, origin, &o);
        if (rc == 0 && o.have == seq)
            memcpy(h + i * KITH_HASH_BYTES, o.head, KITH_HASH_BYTES);
        else if (rc == 0 && (rc = kith__chain_at(r, txn, origin, seq, h + i * KITH_HASH_BYTES)) ==
                                KITH_ENOTFOUND)
            rc = kith__fail(r, KITH_ECORRUPT, "log: no commit of %016llx ends at applied seq %llu",
                            (unsigned long long)origin, (unsigned long long)seq);
    }
    kith__view_end(r, txn);
    if (rc < 0) {
        free(h);
        kith_vv_free(vv);
        return rc;
    }
    *heads = h;
    return 0;
}

struct heads_ctx {
    uint64_t peer;
    const kith_vv *vv;
    const uint8_t *heads;
    int64_t now_ms;
    kith_fork *found; /* the forks found, recorded when `record` */
    size_t nfound;
    size_t ndiffer; /* origins whose heads differ, forks known before included */
    bool record;
};

/*
 * Compare the peer's heads with the log in `txn`, collecting into c->found the origins that
 * forked and are not recorded yet, and recording them when c->record. An origin the peer
 * holds more of than we do is the peer's to check (it has our head at our seq).
 */
static int
heads_compare(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct heads_ctx *c = arg;
    int rc = 0;

    c->nfound = c->ndiffer = 0;
    for (size_t i = 0; i < c->vv->len; i++) {
        uint64_t origin = c->vv->entries[i].origin, seq = c->vv->entries[i].seq, fseq;
        const uint8_t *theirs = c->heads + i * KITH_HASH_BYTES;
        struct kith__origin_state o;
        uint8_t ours[KITH_HASH_BYTES];

        if ((rc = kith__origin_get(r, txn, origin, &o)) < 0)
            return rc;
        if (o.have == 0 || seq > o.have)
            continue;
        bool ends = true; /* a commit of ours ends at seq */
        if (seq == o.have) {
            memcpy(ours, o.head, KITH_HASH_BYTES);
        } else if ((rc = kith__chain_at(r, txn, origin, seq, ours)) == KITH_ENOTFOUND) {
            memset(ours, 0, KITH_HASH_BYTES);
            ends = false;
        } else if (rc < 0) {
            return rc;
        }
        if (ends && memcmp(ours, theirs, KITH_HASH_BYTES) == 0)
            continue;
        c->ndiffer++;
        if ((rc = kith__fork_seq(r, txn, origin, &fseq)) != 0) {
            if (rc < 0)
                return rc;
            continue; /* known already */
        }
        kith_fork *f = &c->found[c->nfound++];
        memset(f, 0, sizeof *f);
        f->origin = origin;
        f->seq = seq;
        memcpy(f->ours, ours, KITH_HASH_BYTES);
        memcpy(f->theirs, theirs, KITH_HASH_BYTES);
        f->seen_from = c->peer;
        f->recorded_ms = c->now_ms;
        f->source = KITH_FORK_HANDSHAKE;
        if (c->record && ((rc = kith__fork_put(r, txn, f)) < 0 || rc == MDB_MAP_FULL))
            return rc;
    }
    return 0;
}

int
kith__heads_check(kith_replica *r, uint64_t peer, const kith_vv *vv, const uint8_t *heads,
                  kith_fork **found, size_t *nfound)
{
    struct heads_ctx c = {.peer = peer, .vv = vv, .heads = heads};
    MDB_txn *txn;
    int rc;

    *found = NULL;
    *nfound = 0;
    if (vv->len == 0)
        return 0;
    c.found = malloc(vv->len * sizeof *c.found);
    if (c.found == NULL)
        return KITH_ENOMEM;
    c.now_ms = kith__now_ms();
    /* a read first: a handshake takes the writer lock only when it found a new fork */
    rc = kith__view_begin(r, &txn);
    if (rc == 0) {
        rc = heads_compare(r, txn, &c);
        kith__view_end(r, txn);
    }
    if (rc == 0 && c.nfound > 0 && !(r->flags & KITH_RDONLY)) {
        c.record = true;
        rc = kith__view_write(r, heads_compare, &c);
        kith__fork_notes_end(r, rc == 0); /* kith_on_fork, after the commit */
    }
    if (rc < 0 || c.nfound == 0) {
        free(c.found);
        return rc < 0 ? rc : (int)c.ndiffer;
    }
    *found = c.found;
    *nfound = c.nfound;
    return (int)c.ndiffer;
}

/* ---- heads that differ, and a point both histories share (protocol 5, NET-33) ---------- */

int
kith__heads_differ(kith_replica *r, const kith_vv *vv, const uint8_t *heads,
                   struct kith__head_diff **out, size_t *n)
{
    struct kith__head_diff *list = NULL;
    MDB_txn *txn;
    size_t k = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if (vv->len == 0)
        return 0;
    if ((list = calloc(vv->len, sizeof *list)) == NULL)
        return KITH_ENOMEM;
    rc = kith__view_begin(r, &txn);
    if (rc < 0) {
        free(list);
        return rc;
    }
    for (size_t i = 0; rc == 0 && i < vv->len; i++) {
        uint64_t origin = vv->entries[i].origin, seq = vv->entries[i].seq;
        struct kith__origin_state o;
        uint8_t ours[KITH_HASH_BYTES];
        kith_fork f;

        if ((rc = kith__origin_get(r, txn, origin, &o)) < 0)
            break;
        if (o.have == 0 || seq > o.have)
            continue; /* the peer holds more: its check, not ours */
        if (seq == o.have)
            memcpy(ours, o.head, KITH_HASH_BYTES);
        else if ((rc = kith__chain_at(r, txn, origin, seq, ours)) == KITH_ENOTFOUND)
            rc = 0, memset(ours, 0, KITH_HASH_BYTES);
        if (rc < 0)
            break;
        if (memcmp(ours, heads + i * KITH_HASH_BYTES, KITH_HASH_BYTES) == 0)
            continue;
        memset(&f, 0, sizeof f);
        f.origin = origin;
        if ((rc = kith__proof_describe(r, txn, &f)) < 0)
            break;
        list[k].origin = origin;
        list[k].seq = seq;
        list[k].has_proof = f.has_proof;
        k++;
    }
    kith__view_end(r, txn);
    if (rc < 0 || k == 0) {
        free(list);
        return rc;
    }
    *out = list;
    *n = k;
    return 0;
}

/* The last commit of `origin` that starts at or before `seq`, positioned by `cur`: 1 with its
 * first seq, op count and chain, 0 when there is none. */
static int
commit_before(MDB_cursor *cur, uint64_t origin, uint64_t seq, uint64_t *first, uint32_t *nops,
              const uint8_t **chain)
{
    uint8_t kb[16];
    MDB_val k = {16, kb}, v;
    int rc;

    kith__be64_put(kb, origin);
    kith__be64_put(kb + 8, seq + 1);
    rc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 || rc == MDB_NOTFOUND)
        rc = kith__mdb_cursor_get(cur, &k, &v, rc == 0 ? MDB_PREV : MDB_LAST);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return kith__mdb_err(rc);
    if (k.mv_size != 16 || kith__be64_get(k.mv_data) != origin)
        return 0;
    if (v.mv_size <= KITH__LOG_HDR_BYTES)
        return KITH_ECORRUPT;
    const uint8_t *p = v.mv_data;
    *first = kith__be64_get((const uint8_t *)k.mv_data + 8);
    *nops = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    *chain = p + 4;
    return 1;
}

int
kith__chain_samples(kith_replica *r, uint64_t origin, uint64_t from, uint64_t *seqs,
                    uint8_t *chains, size_t max, size_t *n)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    uint64_t step = 1, target = from;
    int rc;

    *n = 0;
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->log, &cur));
    /* commit ends at or below from, from - 1, from - 3, from - 7, ...: the distance to the
     * point where two histories part is overshot by at most its own length */
    while (rc == 0 && target > 0 && *n < max) {
        uint64_t first = 0, end;
        uint32_t nops = 0;
        const uint8_t *chain = NULL;
        int found = commit_before(cur, origin, target, &first, &nops, &chain);
        if (found <= 0) {
            rc = found;
            break;
        }
        end = first + nops - 1;
        if (nops == 0 || end > target) {
            /* target falls inside a commit: the commit before it ends at first - 1 */
            target = first - 1;
            continue;
        }
        if (*n == 0 || end < seqs[*n - 1]) {
            seqs[*n] = end;
            memcpy(chains + *n * KITH_HASH_BYTES, chain, KITH_HASH_BYTES);
            (*n)++;
        }
        target = from > step ? from - step : 0;
        if (target >= end)
            target = end - 1;
        step = step * 2 + 1;
    }
    if (cur != NULL)
        mdb_cursor_close(cur);
    kith__view_end(r, txn);
    if (rc < 0)
        *n = 0;
    return rc;
}

int
kith__chain_shared(kith_replica *r, uint64_t origin, const uint64_t *seqs, const uint8_t *chains,
                   size_t n, uint64_t *after)
{
    MDB_txn *txn;
    int rc;

    *after = 0;
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        uint8_t ours[KITH_HASH_BYTES];
        rc = kith__chain_at(r, txn, origin, seqs[i], ours);
        if (rc == KITH_ENOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc < 0)
            break;
        if (memcmp(ours, chains + i * KITH_HASH_BYTES, KITH_HASH_BYTES) == 0) {
            *after = seqs[i]; /* the highest: seqs descend */
            break;
        }
    }
    kith__view_end(r, txn);
    return rc;
}

/* ---- telling the app: kith_on_fork ------------------------------------------------------ */

/*
 * The origins whose fork record or proofs a write transaction of this thread made new, noted
 * by kith__fork_put and proofs.c as they write, and told after the commit. A write
 * transaction belongs to one thread, and the callback runs in the thread that committed, so
 * the notes are the thread's own: no lock, and no other thread's transaction mixes in. An
 * attempt that is run again (the map grew) notes the same origins again; a list without
 * repeats makes that harmless. More than NOTES_MAX origins in one commit are not told one by
 * one (kith_forks_get has them all).
 */
#define NOTES_MAX 256

struct fork_notes {
    const kith_replica *r;
    size_t n;
    uint64_t origin[NOTES_MAX];
};

static _Thread_local struct fork_notes notes, told;

void
kith__fork_note(kith_replica *r, uint64_t origin)
{
    if (notes.r != r) {
        notes.r = r;
        notes.n = 0;
    }
    for (size_t i = 0; i < notes.n; i++)
        if (notes.origin[i] == origin)
            return;
    if (notes.n < NOTES_MAX)
        notes.origin[notes.n++] = origin;
}

size_t
kith__fork_notes_end(kith_replica *r, bool committed)
{
    kith_fork *f = NULL;
    size_t nf = 0;

    told.r = r;
    told.n = 0;
    if (notes.r != r || notes.n == 0) {
        notes.n = 0;
        return 0;
    }
    if (committed) {
        told.n = notes.n;
        memcpy(told.origin, notes.origin, notes.n * sizeof *notes.origin);
    }
    notes.n = 0;
    notes.r = NULL;
    if (told.n == 0 || r->on_fork == NULL)
        return told.n;
    /* as kith_forks_get shows them now: the record with its proof's summary, settled */
    if (kith_forks_get(r, &f, &nf) < 0)
        return told.n;
    for (size_t i = 0; i < told.n; i++)
        for (size_t j = 0; j < nf; j++)
            if (f[j].origin == told.origin[i])
                r->on_fork(r->fork_ctx, &f[j]);
    kith_forks_free(f, nf);
    return told.n;
}

const uint64_t *
kith__fork_notes_told(const kith_replica *r, size_t *n)
{
    *n = told.r == r ? told.n : 0;
    return told.origin;
}

int
kith_on_fork(kith_replica *r, kith_fork_fn fn, void *ctx)
{
    if (r == NULL)
        return KITH_EINVAL;
    r->on_fork = fn;
    r->fork_ctx = ctx;
    return 0;
}
