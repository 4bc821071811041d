/*
 * batch_build.c — building batches; applying one is batch_apply.c.
 *
 * A batch carries the commits a receiver lacks, in the sender's apply order, each origin's
 * run contiguous and ending at a head that origin signed (spec/encoding.md "Batch"). The
 * sender signs its own head where its run ends and keeps that signature; for any other
 * origin it only forwards runs that end at a head the origin signed, extending a run to the
 * next signed head it holds when needed. Nothing of a forked origin beyond its fork is sent
 * (data-model.md FORK-3). spec/storage.md "Batches"; bundle files are in bundle.c.
 */
#include "store.h"
#include "view.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room kept below the decoder's limit for the batch's own framing. */
#define BATCH_BYTES_CAP (KITH__MAX_BATCH_BYTES - (1u << 20))

/* One origin's run in a batch being built. */
struct run {
    uint64_t origin;
    uint64_t last;                  /* last seq included */
    uint8_t chain[KITH_HASH_BYTES]; /* chain hash after `last` */
    uint8_t base[KITH_HASH_BYTES];  /* chain hash before the run's first commit (format 3) */
};

/*
 * A log cursor of one origin and where it stands. An origin's commits leave in seq order, which
 * is the log's key order: the next one is usually the entry after the cursor, one step instead
 * of a search from the B-tree's root.
 */
struct logpos {
    uint64_t origin;
    uint64_t next; /* first seq of the entry after the cursor's (0: not positioned) */
    MDB_cursor *cur;
};

/* A forked origin: nothing of it beyond `cap` leaves this replica (data-model.md FORK-3). */
struct fork_cap {
    uint64_t origin;
    uint64_t cap; /* the highest seq at or below the fork at which a head can be signed */
};

/* Signed items a batch carries whole (group records, fork proofs), copied out of the map. */
struct items {
    struct kith__batch_item *v;
    size_t n, cap;
};

struct builder {
    kith_replica *r;
    uint64_t self;  /* the handle's id, as one copy with sk (a re-key may switch it) */
    uint8_t sk[64]; /* its secret key, when has_sk; wiped at the end */
    bool has_sk;
    MDB_txn *txn;
    struct kith__batch b;
    struct items records, proofs;
    struct fork_cap *caps;
    size_t ncaps;
    size_t capcommits;
    struct run *runs;
    size_t nruns, capruns;
    struct logpos *pos;
    size_t npos, cappos;
    uint64_t ops, bytes;
};

/* The identity copied must be the one the read transaction's meta names (D-22): a handle
 * that only reads has not seen another process's re-key, and one of this handle's threads may
 * switch between the transaction's start and the copy. Take meta's (the key files hold it),
 * or, when the handle's identity moved again meanwhile, let the caller build again. */
static int
ident_check(struct builder *bd)
{
    uint64_t id;
    int rc = kith__meta_get_u64(bd->r, bd->txn, "id", &id);

    if (rc < 0 || id == bd->self)
        return rc;
    if ((rc = kith__ident_sync(bd->r, bd->txn, false)) < 0)
        return rc;
    sodium_memzero(bd->sk, sizeof bd->sk);
    kith__ident_copy(bd->r, &bd->self, bd->sk, &bd->has_sk);
    bd->b.sender = bd->self;
    if (id != bd->self)
        return kith__fail(bd->r, KITH_EBUSY,
                          "the replica took a new key while a batch was built: build it again");
    return 0;
}

static struct run *
run_find(struct builder *bd, uint64_t origin)
{
    for (size_t i = 0; i < bd->nruns; i++)
        if (bd->runs[i].origin == origin)
            return &bd->runs[i];
    return NULL;
}

static struct run *
run_add(struct builder *bd, uint64_t origin)
{
    if (bd->nruns == bd->capruns) {
        size_t cap = bd->capruns ? bd->capruns * 2 : 8;
        struct run *p = realloc(bd->runs, cap * sizeof *p);
        if (p == NULL)
            return NULL;
        bd->runs = p;
        bd->capruns = cap;
    }
    struct run *rn = &bd->runs[bd->nruns++];
    memset(rn, 0, sizeof *rn);
    rn->origin = origin;
    return rn;
}

/* Parse a log value: nops, chain, order, commit bytes. */
int
kith__log_parse(kith_replica *r, const MDB_val *v, uint32_t *nops, const uint8_t **chain,
                uint64_t *order, const uint8_t **bytes, size_t *len)
{
    const uint8_t *p = v->mv_data;

    if (v->mv_size < KITH__LOG_HDR_BYTES + 1)
        return kith__fail(r, KITH_ECORRUPT, "log: entry of %zu bytes", v->mv_size);
    *nops = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (*nops == 0)
        return kith__fail(r, KITH_ECORRUPT, "log: entry without ops");
    *chain = p + 4;
    *order = kith__be64_get(p + 36);
    *bytes = p + KITH__LOG_HDR_BYTES;
    *len = v->mv_size - KITH__LOG_HDR_BYTES;
    return 0;
}

static struct logpos *
logpos_get(struct builder *bd, uint64_t origin, int *rc)
{
    for (size_t i = 0; i < bd->npos; i++)
        if (bd->pos[i].origin == origin)
            return &bd->pos[i];
    if (bd->npos == bd->cappos) {
        size_t cap = bd->cappos ? bd->cappos * 2 : 4;
        struct logpos *p = realloc(bd->pos, cap * sizeof *p);
        if (p == NULL) {
            *rc = KITH_ENOMEM;
            return NULL;
        }
        bd->pos = p;
        bd->cappos = cap;
    }
    struct logpos *lp = &bd->pos[bd->npos];
    *rc = kith__mdb_err(kith__mdb_cursor_open(bd->txn, bd->r->log, &lp->cur));
    if (*rc < 0)
        return NULL;
    lp->origin = origin;
    lp->next = 0;
    bd->npos++;
    return lp;
}

/* The log entry of the commit (origin, first_seq), like batch_apply.c's log_get, read with
 * the origin's cursor: a step forward when it follows the entry read last, else a search. */
static int
log_read(struct builder *bd, uint64_t origin, uint64_t first_seq, MDB_val *v)
{
    uint8_t kb[16];
    MDB_val k;
    struct logpos *lp;
    int rc = 0;

    lp = logpos_get(bd, origin, &rc);
    if (lp == NULL)
        return rc;
    kith__be64_put(kb, origin);
    kith__be64_put(kb + 8, first_seq);
    rc = MDB_NOTFOUND;
    if (lp->next != 0 && lp->next == first_seq) {
        rc = kith__mdb_cursor_get(lp->cur, &k, v, MDB_NEXT);
        if (rc != 0 && rc != MDB_NOTFOUND)
            return kith__mdb_err(rc);
        if (rc == 0 && (k.mv_size != 16 || memcmp(k.mv_data, kb, 16) != 0))
            rc = MDB_NOTFOUND; /* a gap: search for it */
    }
    if (rc != 0) {
        k.mv_size = 16;
        k.mv_data = kb;
        rc = kith__mdb_cursor_get(lp->cur, &k, v, MDB_SET_KEY);
    }
    if (rc != 0) {
        lp->next = 0;
        return kith__mdb_err(rc);
    }
    lp->next = 0;
    if (v->mv_size >= 4) {
        const uint8_t *p = v->mv_data;
        uint32_t nops = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        lp->next = nops ? first_seq + nops : 0; /* kith__log_parse refuses an empty entry */
    }
    return 0;
}

/* Append a commit (a view into the read txn's map) to the batch being built. */
static int
builder_push(struct builder *bd, uint64_t origin, uint64_t first_seq, const uint8_t *bytes,
             size_t len, uint32_t nops)
{
    if (bd->b.ncommits == bd->capcommits) {
        size_t cap = bd->capcommits ? bd->capcommits * 2 : 64;
        struct kith__batch_commit *p = realloc(bd->b.commits, cap * sizeof *p);
        if (p == NULL)
            return KITH_ENOMEM;
        bd->b.commits = p;
        bd->capcommits = cap;
    }
    struct kith__batch_commit *c = &bd->b.commits[bd->b.ncommits++];
    c->origin = origin;
    c->first_seq = first_seq;
    c->bytes = bytes;
    c->len = len;
    bd->ops += nops;
    bd->bytes += len + 24;
    return 0;
}

/*
 * No head of the origin is signed at or after the run's end: it was held here only through a
 * history set aside after it (spec/data-model.md FORK-10), whose heads went with it. The run
 * goes back to the last head signed within it, and what follows stays here until a head of
 * the kept history covers it; a run with no head at all leaves the batch.
 */
static int
run_trim(struct builder *bd, struct run *rn)
{
    uint64_t first = 0, keep = 0;
    uint8_t kb[16];
    MDB_val k = {16, kb}, v;
    MDB_cursor *cur;
    size_t j = 0;
    int rc, mrc;

    for (size_t i = 0; i < bd->b.ncommits && first == 0; i++)
        if (bd->b.commits[i].origin == rn->origin)
            first = bd->b.commits[i].first_seq;
    rc = kith__mdb_err(kith__mdb_cursor_open(bd->txn, bd->r->sigs, &cur));
    if (rc < 0)
        return rc;
    kith__be64_put(kb, rn->origin);
    kith__be64_put(kb + 8, rn->last + 1);
    mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (mrc == 0 || mrc == MDB_NOTFOUND)
        mrc = kith__mdb_cursor_get(cur, &k, &v, mrc == 0 ? MDB_PREV : MDB_LAST);
    if (mrc == 0 && k.mv_size == 16 && kith__be64_get(k.mv_data) == rn->origin)
        keep = kith__be64_get((const uint8_t *)k.mv_data + 8);
    else if (mrc != 0 && mrc != MDB_NOTFOUND)
        rc = kith__mdb_err(mrc);
    mdb_cursor_close(cur);
    if (rc < 0)
        return rc;
    if (keep < first)
        keep = 0; /* no head within the run: none of it goes */
    for (size_t i = 0; i < bd->b.ncommits; i++) {
        const struct kith__batch_commit *c = &bd->b.commits[i];
        if (c->origin == rn->origin && c->first_seq > keep)
            continue;
        bd->b.commits[j++] = *c;
    }
    bd->b.ncommits = j;
    bd->ops -= rn->last - (keep ? keep : first - 1);
    if (keep == 0) {
        rn->last = 0; /* dropped: no head, no base */
        return 0;
    }
    rn->last = keep;
    rc = kith__chain_at(bd->r, bd->txn, rn->origin, keep, rn->chain);
    return rc == KITH_ENOTFOUND
               ? kith__fail(bd->r, KITH_ECORRUPT,
                            "origin %016llx: a head signed at seq %llu, where "
                            "no commit held here ends",
                            (unsigned long long)rn->origin, (unsigned long long)keep)
               : rc;
}

/* Extend a foreign run to the next head its origin signed. */
static int
run_extend(struct builder *bd, struct run *rn)
{
    uint8_t kb[16];
    MDB_val k = {16, kb}, v;
    int rc;

    for (;;) {
        kith__be64_put(kb, rn->origin);
        kith__be64_put(kb + 8, rn->last);
        rc = kith__mdb_get(bd->txn, bd->r->sigs, &k, &v);
        if (rc == 0)
            return 0;
        if (rc != MDB_NOTFOUND)
            return kith__mdb_err(rc);
        /* no signature ends here: take the next commit of this origin */
        uint32_t nops;
        const uint8_t *chain, *bytes;
        uint64_t order;
        size_t len;
        rc = log_read(bd, rn->origin, rn->last + 1, &v);
        if (rc == KITH_ENOTFOUND)
            return run_trim(bd, rn);
        if (rc < 0)
            return rc;
        rc = kith__log_parse(bd->r, &v, &nops, &chain, &order, &bytes, &len);
        if (rc < 0)
            return rc;
        rc = builder_push(bd, rn->origin, rn->last + 1, bytes, len, nops);
        if (rc < 0)
            return rc;
        rn->last += nops;
        memcpy(rn->chain, chain, KITH_HASH_BYTES);
    }
}

/* The forks read so far, to which the keys removed from the group are added as forks at
 * their cut-offs (the lower seq when an origin is both). */
struct removed_caps {
    kith_fork **forks;
    size_t *n;
};

static int
removed_caps(void *ctx, const struct kith__group *fold, const uint8_t gid[KITH__GROUP_ID_BYTES])
{
    struct removed_caps *rc = ctx;
    const struct kith__group_removed *rm;
    size_t nr;

    (void)gid;
    if (fold == NULL || (rm = kith__group_removed(fold, &nr), nr == 0))
        return 0;
    kith_fork *grown = realloc(*rc->forks, (*rc->n + nr) * sizeof *grown);
    if (grown == NULL)
        return KITH_ENOMEM;
    *rc->forks = grown;
    for (size_t i = 0; i < nr; i++) {
        uint64_t origin = kith__id_from_pk(rm[i].pk);
        size_t j = 0;
        while (j < *rc->n && grown[j].origin != origin)
            j++;
        if (j == *rc->n) {
            memset(&grown[j], 0, sizeof grown[j]);
            grown[j].origin = origin;
            grown[j].seq = rm[i].cutoff;
            (*rc->n)++;
        } else if (rm[i].cutoff < grown[j].seq) {
            grown[j].seq = rm[i].cutoff;
        }
    }
    return 0;
}

/*
 * The forked origins and how far each may be sent: this replica's own up to the fork's seq
 * (its heads are signed as the batch is built); another's up to the highest head at or
 * below the fork that `sigs` holds, since a run ends at a head its origin signed. Nothing
 * of a forked origin when no such head exists. Keys removed from the group are capped the
 * same way at their cut-offs (spec/groups.md GRP-15). The list is empty, and costs two
 * lookups, while nothing has forked and nobody was removed.
 */
static int
caps_load(struct builder *bd)
{
    kith_fork *forks = NULL;
    size_t n = 0;
    struct removed_caps rcx = {&forks, &n};
    int rc = kith__forks_read(bd->r, bd->txn, &forks, &n);

    if (rc == 0)
        rc = kith__group_with(bd->r, bd->txn, removed_caps, &rcx);
    if (rc < 0 || n == 0) {
        free(forks);
        return rc;
    }
    bd->caps = calloc(n, sizeof *bd->caps);
    if (bd->caps == NULL) {
        free(forks);
        return KITH_ENOMEM;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct fork_cap *fc;
        /* a fork a proof settled: the kept history leaves freely; another, up to the seq
         * both share, until this replica sets it aside (FORK-10) */
        if ((rc = kith__proof_describe(bd->r, bd->txn, &forks[i])) < 0)
            break;
        if (forks[i].has_proof && forks[i].holds == KITH_FORK_HOLDS_WINNER)
            continue;
        fc = &bd->caps[bd->ncaps++];
        fc->origin = forks[i].origin;
        fc->cap = forks[i].has_proof ? forks[i].proof_seq : forks[i].seq;
        if (fc->origin == bd->self)
            continue;
        MDB_cursor *cur;
        uint8_t kb[16];
        MDB_val k = {16, kb}, v;
        rc = kith__mdb_err(kith__mdb_cursor_open(bd->txn, bd->r->sigs, &cur));
        if (rc < 0)
            break;
        kith__be64_put(kb, fc->origin);
        kith__be64_put(kb + 8, fc->cap + 1);
        int mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (mrc == 0 || mrc == MDB_NOTFOUND)
            mrc = kith__mdb_cursor_get(cur, &k, &v, mrc == 0 ? MDB_PREV : MDB_LAST);
        fc->cap = 0;
        if (mrc == 0 && k.mv_size == 16 && kith__be64_get(k.mv_data) == fc->origin)
            fc->cap = kith__be64_get((const uint8_t *)k.mv_data + 8);
        else if (mrc != 0 && mrc != MDB_NOTFOUND)
            rc = kith__mdb_err(mrc);
        mdb_cursor_close(cur);
    }
    free(forks);
    return rc;
}

static int
items_push(void *ctx, const uint8_t *p, size_t len)
{
    struct items *it = ctx;
    uint8_t *copy;

    if (it->n == it->cap) {
        size_t cap = it->cap ? 2 * it->cap : 16;
        struct kith__batch_item *v = realloc(it->v, cap * sizeof *v);
        if (v == NULL)
            return KITH_ENOMEM;
        it->v = v;
        it->cap = cap;
    }
    if ((copy = malloc(len)) == NULL)
        return KITH_ENOMEM;
    memcpy(copy, p, len);
    it->v[it->n].bytes = copy;
    it->v[it->n++].len = len;
    return 0;
}

static void
items_free(struct items *it)
{
    for (size_t i = 0; i < it->n; i++)
        free((void *)it->v[i].bytes);
    free(it->v);
}

/* Does the commit of `origin` ending at `last` stay here because its origin forked? */
static bool
capped(const struct builder *bd, uint64_t origin, uint64_t last)
{
    for (size_t i = 0; i < bd->ncaps; i++)
        if (bd->caps[i].origin == origin)
            return last > bd->caps[i].cap;
    return false;
}

/* The ops a batch for `opts` will carry, as this replica's vector in `txn` says: what
 * `since` lacks, at most max_ops (the batch may stop short of it, or add a foreign run's tail
 * up to its signed head; the end report gives the true count). */
static int
build_total(kith_replica *r, MDB_txn *txn, const kith_batch_opts *opts, uint64_t *total)
{
    static const kith_vv none;
    kith_vv mine = {0, NULL};
    int rc = kith__vv_read(r, txn, &mine);

    if (rc < 0)
        return rc;
    *total = kith__vv_missing(&mine, opts->since != NULL ? opts->since : &none);
    if (opts->max_ops != 0 && *total > opts->max_ops)
        *total = opts->max_ops;
    kith_vv_free(&mine);
    return 0;
}

int
kith_batch_create(kith_replica *r, const kith_batch_opts *opts, kith_buf *out,
                  kith_batch_info *info)
{
    struct kith__progress pg;

    kith__progress_init(&pg, r, KITH_PROGRESS_BUILD);
    return kith__batch_create(r, opts, NULL, out, info, kith__progress_live(&pg));
}

int
kith__batch_create(kith_replica *r, const kith_batch_opts *opts, const struct kith__build_opts *xo,
                   kith_buf *out, kith_batch_info *info, struct kith__progress *pg)
{
    static const kith_batch_opts no_opts;
    static const struct kith__build_opts everything = {KITH__BATCH_FORMAT, true, true};
    struct builder bd;
    struct kith__wbuf wb = {0};
    MDB_cursor *cur = NULL;
    uint8_t kb[8];
    MDB_val k = {8, kb}, v;
    uint64_t next_cursor, max_bytes;
    bool has_more = false;
    int rc;

    if (out != NULL) {
        out->data = NULL;
        out->len = 0;
    }
    if (info != NULL)
        memset(info, 0, sizeof *info);
    if (r == NULL || out == NULL)
        return KITH_EINVAL;
    if (opts == NULL)
        opts = &no_opts;
    if (xo == NULL)
        xo = &everything;
    if (xo->format != 2 && xo->format != 3)
        return KITH_EINVAL;
    memset(&bd, 0, sizeof bd);
    bd.r = r;
    bd.b.version = xo->format;
    next_cursor = opts->cursor;
    max_bytes =
        opts->max_bytes && opts->max_bytes < BATCH_BYTES_CAP ? opts->max_bytes : BATCH_BYTES_CAP;
    rc = kith__mdb_begin(r, MDB_RDONLY, &bd.txn);
    if (rc < 0)
        return rc;
    kith__ident_copy(r, &bd.self, bd.sk, &bd.has_sk);
    bd.b.sender = bd.self;
    if ((rc = ident_check(&bd)) < 0)
        goto out_txn;
    rc = caps_load(&bd);
    if (rc < 0)
        goto out_txn;
    if (pg != NULL) {
        uint64_t total = 0;
        rc = build_total(r, bd.txn, opts, &total);
        if (rc == 0)
            rc = kith__progress_report(pg, 0, total);
        if (rc < 0)
            goto out_txn;
    }
    /* the group's records first: the receiver needs them to admit the runs (D-19) */
    if (xo->format >= 3 && xo->include_records &&
        (rc = kith__group_collect(r, bd.txn, items_push, &bd.records)) < 0)
        goto out_txn;
    if (xo->format >= 3 && xo->include_proofs &&
        (rc = kith__proof_collect(r, bd.txn, items_push, &bd.proofs)) < 0)
        goto out_txn;
    bd.b.records = bd.records.v;
    bd.b.nrecords = bd.records.n;
    bd.b.proofs = bd.proofs.v;
    bd.b.nproofs = bd.proofs.n;
    rc = kith__mdb_err(kith__mdb_cursor_open(bd.txn, r->order, &cur));
    if (rc < 0)
        goto out_txn;
    kith__be64_put(kb, opts->cursor + 1);
    rc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (; rc == 0; rc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint64_t counter, origin, first, last, since;
        uint32_t nops;
        const uint8_t *chain, *bytes;
        uint64_t order;
        size_t len;
        MDB_val lv;
        struct run *rn;

        if (k.mv_size != 8 || v.mv_size != 16) {
            rc = kith__fail(r, KITH_ECORRUPT, "order: bad entry");
            goto out_cursor;
        }
        counter = kith__be64_get(k.mv_data);
        origin = kith__be64_get(v.mv_data);
        first = kith__be64_get((const uint8_t *)v.mv_data + 8);
        since = opts->since ? kith__vv_get(opts->since, origin) : 0;
        if (first <= since) {
            /* held: a version vector entry always ends a commit (commits apply whole), so
             * the receiver holds all of it; skip without reading the log */
            next_cursor = counter;
            continue;
        }
        rc = log_read(&bd, origin, first, &lv);
        if (rc < 0) {
            rc = kith__fail(r, rc == KITH_ENOTFOUND ? KITH_ECORRUPT : rc,
                            "order %llu names %016llx:%llu, not in the log",
                            (unsigned long long)counter, (unsigned long long)origin,
                            (unsigned long long)first);
            goto out_cursor;
        }
        rc = kith__log_parse(r, &lv, &nops, &chain, &order, &bytes, &len);
        if (rc < 0)
            goto out_cursor;
        last = first + nops - 1;
        rn = run_find(&bd, origin);
        if (last <= since || (rn != NULL && last <= rn->last) ||
            (bd.ncaps > 0 && capped(&bd, origin, last))) {
            next_cursor = counter; /* the receiver holds it, it is in this batch, or it
                                      goes beyond its origin's fork */
            continue;
        }
        if (bd.ops > 0 &&
            ((opts->max_ops && bd.ops + nops > opts->max_ops) || bd.bytes + len + 24 > max_bytes)) {
            has_more = true;
            break;
        }
        if (rn != NULL && first != rn->last + 1) {
            rc = kith__fail(r, KITH_ECORRUPT, "order: %016llx:%llu out of seq order",
                            (unsigned long long)origin, (unsigned long long)first);
            goto out_cursor;
        }
        if (rn == NULL && (rn = run_add(&bd, origin)) == NULL) {
            rc = KITH_ENOMEM;
            goto out_cursor;
        }
        if (rn->last == 0 && xo->format >= 3 &&
            (rc = kith__chain_at(r, bd.txn, origin, first - 1, rn->base)) < 0) {
            rc = kith__fail(r, rc == KITH_ENOTFOUND ? KITH_ECORRUPT : rc,
                            "log: no commit of %016llx ends at seq %llu, before %llu",
                            (unsigned long long)origin, (unsigned long long)first - 1,
                            (unsigned long long)first);
            goto out_cursor;
        }
        rc = builder_push(&bd, origin, first, bytes, len, nops);
        if (rc < 0)
            goto out_cursor;
        rn->last = last;
        memcpy(rn->chain, chain, KITH_HASH_BYTES);
        next_cursor = counter;
        if (pg != NULL && (bd.b.ncommits & (KITH__PROGRESS_EVERY - 1)) == 0 &&
            (rc = kith__progress_report(pg, bd.ops, 0)) < 0)
            goto out_cursor;
    }
    if (rc != 0 && rc != MDB_NOTFOUND && !has_more) {
        rc = kith__fail(r, kith__mdb_err(rc), "order: %s", mdb_strerror(rc));
        goto out_cursor;
    }
    /*
     * Every run ends at a signed head: others' as stored, our own signed now. Our own are not
     * stored: Ed25519 signatures are deterministic, so signing again gives the same bytes, and
     * signing (~40 us) is far cheaper than the durable write that keeping them would cost on
     * every push. Building a batch therefore writes nothing.
     */
    bd.b.heads = calloc(bd.nruns ? bd.nruns : 1, sizeof *bd.b.heads);
    if (xo->format >= 3)
        bd.b.bases = calloc(bd.nruns ? bd.nruns : 1, sizeof *bd.b.bases);
    if (bd.b.heads == NULL || (xo->format >= 3 && bd.b.bases == NULL)) {
        rc = KITH_ENOMEM;
        goto out_cursor;
    }
    for (size_t i = 0; i < bd.nruns; i++) {
        struct run *rn = &bd.runs[i];
        struct kith__batch_head *h;
        uint8_t skb[16];
        MDB_val sk = {16, skb}, sv;
        if (rn->origin != bd.self) {
            rc = run_extend(&bd, rn);
            if (rc < 0)
                goto out_cursor;
            if (rn->last == 0)
                continue; /* trimmed away: no head was signed within it */
        }
        h = &bd.b.heads[bd.b.nheads++];
        h->origin = rn->origin;
        h->seq = rn->last;
        kith__be64_put(skb, rn->origin);
        kith__be64_put(skb + 8, rn->last);
        rc = kith__mdb_get(bd.txn, r->sigs, &sk, &sv);
        if (rc == 0 && sv.mv_size == KITH_SIG_BYTES) {
            memcpy(h->sig, sv.mv_data, KITH_SIG_BYTES);
        } else if (rn->origin == bd.self && !bd.has_sk) {
            rc =
                kith__fail(r, -EACCES, "%s/key: cannot be read, so no head can be signed", r->path);
            goto out_cursor;
        } else if (rn->origin == bd.self) {
            kith__head_sign(bd.sk, bd.self, rn->last, rn->chain, h->sig);
        } else {
            rc = kith__fail(r, KITH_ECORRUPT, "sigs: bad signature record");
            goto out_cursor;
        }
    }
    for (size_t i = 0; xo->format >= 3 && i < bd.nruns; i++) {
        if (bd.runs[i].last == 0)
            continue;
        bd.b.bases[bd.b.nbases].origin = bd.runs[i].origin;
        memcpy(bd.b.bases[bd.b.nbases++].hash, bd.runs[i].base, KITH_HASH_BYTES);
    }
    rc = kith__batch_encode(&bd.b, &wb);
    if (rc < 0)
        rc = kith__fail(r, rc, "cannot encode the batch");
out_cursor:
    for (size_t i = 0; i < bd.npos; i++)
        mdb_cursor_close(bd.pos[i].cur);
    mdb_cursor_close(cur);
out_txn:
    mdb_txn_abort(bd.txn);
    kith__mdb_end(r);
    free(bd.b.commits);
    free(bd.b.heads);
    free(bd.b.bases);
    items_free(&bd.records);
    items_free(&bd.proofs);
    free(bd.runs);
    free(bd.pos);
    free(bd.caps);
    sodium_memzero(bd.sk, sizeof bd.sk);
    if (rc == 0)
        rc = kith__progress_end(pg, bd.ops); /* outside the read transaction */
    if (rc < 0) {
        kith__wbuf_free(&wb);
        return rc;
    }
    out->data = wb.data;
    out->len = wb.len;
    if (info != NULL) {
        info->ops = bd.ops;
        info->commits = bd.b.ncommits;
        info->next_cursor = next_cursor;
        info->has_more = has_more;
    }
    return 0;
}
