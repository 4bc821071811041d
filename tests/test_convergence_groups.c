/*
 * test_convergence_groups.c — generated histories with removals in them (issue #10, item 1;
 * spec/groups.md GRP-10, GRP-14, GRP-15, GRP-21, GRP-22). Each history makes 3–6 replicas
 * (temporary directories) in one device group, with no pairwise trust: the first founds it
 * and admits the others, and every one holds every record before the history starts. Then it
 * interleaves random local transactions (contacts made, renamed and deleted, tags, and
 * interactions that reference contacts, so that ops of one origin depend on another's) with
 * random partial exchanges (kith_batch_create with since = the receiver's vector or, one time
 * in four, a third replica's, and a random op limit, into an in-flight queue delivered late,
 * out of order and more than once, as in test_convergence.c) and random removals: a random
 * replica that does not know itself removed removes a random key it holds to be a member,
 * itself included (a device retiring its key), at the cut-off it holds. Removals travel only
 * in batches, so they are often concurrent: two members removing the same key at different
 * cut-offs, members removing each other, a removed device removing others before it learns of
 * its own removal, and a replica writing on or relaying ops beyond its cut-off before it
 * knows. At most n - 2 distinct keys are removed, so two members stay.
 *
 * A replica that knows itself removed writes nothing (its writes fail with KITH_EUNTRUSTED,
 * GRP-16, which is checked). At the end: late deliveries, then rounds of (every pair
 * exchanges with since = the receiver's vector until nothing moves; every replica sends every
 * other a full batch) until a round moves nothing. Checked:
 *
 *  1. Every apply returns 0, KITH_EGAP (a stale batch), or KITH_EUNTRUSTED when the receiver
 *     knows the sender removed (its batches are refused at the sender check, GRP-14), and a
 *     batch is never refused for an origin's run beyond a cut-off (GRP-15 sets it aside).
 *  2. Every replica the final records keep as a member (a *stayer*) holds the same records,
 *     and for each removed key the log of its origin at every stayer ends at the same seq, at
 *     or below its final cut-off; at it whenever a stayer made a removal at that cut-off (it
 *     holds the ops and the head, and the head travels with the removal, GRP-24, GRP-25).
 *     Short of it only when no stayer can get the ops (GRP-26: every holder removed in turn,
 *     or a stayer set them aside under a lower cut-off before the higher came): counted and
 *     printed, with how many of those a stayer once held. Nothing is held waiting at a
 *     stayer. A write refused with KITH_EBUSY while the writer's own commits wait is counted,
 *     and allowed only in a history where some origin stays short.
 *  3. Stayers' exports are identical, byte for byte; a removed replica that holds the same
 *     records and the same log as the stayers (it received everything and kept nothing more)
 *     exports the same bytes too; every replica's log of a removed origin ends at or below
 *     the cut-off its own records give (it rolled back, GRP-21).
 *  4. kith_verify is clean on every replica, and whatever a replica set aside in its journal
 *     is of a removed origin beyond its cut-off as that replica's records give it.
 *
 * KITH_CASES histories (default 30), from KITH_SEED (printed; set it to replay). A failure
 * names the seed and the history.
 */
#include "kith.h"
#include "kith_test.h"
#include "store.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPLICAS 6
#define MAX_POOL 256
#define MAX_QUEUE 48
#define MAX_ROUNDS 30

struct msg {
    int to;
    uint8_t *data;
    size_t len;
};

struct world {
    uint64_t seed;
    int history;
    uint64_t rng;
    int n;
    struct kt_replica r[MAX_REPLICAS];
    uint64_t id[MAX_REPLICAS];
    bool target[MAX_REPLICAS]; /* some removal of it was made */
    int ntargets;
    kith_docid contacts[MAX_POOL], interactions[MAX_POOL];
    size_t ncontacts, ninteractions;
    struct msg q[MAX_QUEUE];
    size_t nq;
    uint64_t txns, refused_writes, batches, applied, gaps, untrusted, cut_off, removals;
    uint64_t set_aside, short_of_cutoff, short_held, removed_equal, own_waits;
    uint64_t ever[MAX_REPLICAS][MAX_REPLICAS];   /* the highest seq of origin o replica i held */
    uint64_t cut_by[MAX_REPLICAS][MAX_REPLICAS]; /* remover i's cut-off for o, + 1 (0: none) */
};

static uint64_t total_txns, total_refused_writes, total_batches, total_applied, total_gaps,
    total_untrusted, total_cut_off, total_removals, total_set_aside, total_short, total_short_held,
    total_removed_equal, total_concurrent, total_own_waits;

#define CHECK(w, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "KITH_SEED=%llu history %d: ", (unsigned long long)(w)->seed,          \
                    (w)->history);                                                                 \
            cr_assert(false, __VA_ARGS__);                                                         \
        }                                                                                          \
    } while (0)

#define OK(w, r, call)                                                                             \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        CHECK(w, rc_ == 0, "%s: %s (%s)", #call, kith_strerror(rc_), kith_errmsg(r));              \
    } while (0)

static uint64_t
below(struct world *w, uint64_t n)
{
    return kt_below(&w->rng, n);
}

/* ---- the group ------------------------------------------------------------------------------ */

/* The records r holds, copied out. */
struct recs {
    uint8_t *p[256];
    size_t len[256];
    size_t n;
};

static int
take_rec(void *ctx, const uint8_t *rec, size_t len)
{
    struct recs *s = ctx;

    if (s->n == 256)
        return KITH_ETOOBIG;
    s->p[s->n] = malloc(len);
    if (s->p[s->n] == NULL)
        return KITH_ENOMEM;
    memcpy(s->p[s->n], rec, len);
    s->len[s->n++] = len;
    return 0;
}

static void
recs_free(struct recs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->p[i]);
    s->n = 0;
}

static void
recs_of(struct world *w, kith_replica *r, struct recs *s)
{
    MDB_txn *txn;

    s->n = 0;
    OK(w, r, kith__mdb_begin(r, MDB_RDONLY, &txn));
    int rc = kith__group_collect(r, txn, take_rec, s);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    CHECK(w, rc == 0, "collect: %s", kith_strerror(rc));
}

/* r0 admits replica i; i adopts the group from r0's records. */
static void
admit(struct world *w, int i)
{
    kith_replica *m = w->r[0].r, *j = w->r[i].r;
    uint8_t pk[KITH_PUBKEY_BYTES], gid[16], digest[32];
    char name[16];
    struct recs s;
    MDB_txn *txn;

    kith_replica_pubkey(j, pk);
    snprintf(name, sizeof name, "r%d", i);
    OK(w, m, kith__mdb_begin(m, 0, &txn));
    OK(w, m, kith__group_add_member(m, txn, pk, name, strlen(name)));
    CHECK(w, kith__group_summary(m, txn, gid, digest) == 1, "r0 is in no group");
    OK(w, m, kith__mdb_txn_commit(txn));
    kith__mdb_end(m);
    recs_of(w, m, &s);
    OK(w, j, kith__mdb_begin(j, 0, &txn));
    OK(w, j, kith__group_adopt(j, txn, gid, (const uint8_t *const *)s.p, s.len, s.n));
    OK(w, j, kith__mdb_txn_commit(txn));
    kith__mdb_end(j);
    recs_free(&s);
}

static void
push_records(struct world *w, int from, int to)
{
    kith_replica *r = w->r[to].r;
    struct recs s;
    MDB_txn *txn;

    recs_of(w, w->r[from].r, &s);
    OK(w, r, kith__mdb_begin(r, 0, &txn));
    OK(w, r, kith__group_absorb(r, txn, (const uint8_t *const *)s.p, s.len, s.n, NULL));
    OK(w, r, kith__mdb_txn_commit(txn));
    kith__mdb_end(r);
    recs_free(&s);
}

static kith_group_info
group_of(struct world *w, int i)
{
    kith_group_info g;
    OK(w, w->r[i].r, kith_group_get(w->r[i].r, &g));
    return g;
}

static void seqs_of(struct world *w, int i, uint64_t origin, uint64_t *applied, uint64_t *have,
                    uint64_t *waiting);

/* Is `id` removed in replica i's records? 1 with its cut-off, else 0. */
static bool
removed_at(struct world *w, int i, uint64_t id, uint64_t *cutoff)
{
    kith_device *d = NULL;
    size_t n = 0;
    bool removed = false;

    OK(w, w->r[i].r, kith_devices_get(w->r[i].r, &d, &n));
    for (size_t k = 0; k < n; k++)
        if (d[k].id == id && d[k].removed) {
            removed = true;
            *cutoff = d[k].cutoff;
        }
    kith_devices_free(d, n);
    return removed;
}

/* Replica i removes a random key it holds to be a member, itself included. */
static void
random_removal(struct world *w, int i)
{
    kith_device *d = NULL;
    size_t n = 0, live = 0;
    uint64_t pick[MAX_REPLICAS];
    int target = -1;

    if (group_of(w, i).self_removed)
        return;
    OK(w, w->r[i].r, kith_devices_get(w->r[i].r, &d, &n));
    for (size_t k = 0; k < n; k++)
        if (!d[k].removed && live < MAX_REPLICAS)
            pick[live++] = d[k].id;
    kith_devices_free(d, n);
    if (live == 0)
        return;
    uint64_t id = pick[below(w, live)];
    for (int k = 0; k < w->n; k++)
        if (w->id[k] == id)
            target = k;
    CHECK(w, target >= 0, "a member no replica is");
    if (!w->target[target] && w->ntargets >= w->n - 2)
        return; /* two members stay */
    OK(w, w->r[i].r, kith_device_remove(w->r[i].r, id));
    {
        uint64_t applied, have, waiting;
        seqs_of(w, i, id, &applied, &have, &waiting);
        w->cut_by[i][target] = have + 1; /* the cut-off it named: what it held */
    }
    if (!w->target[target])
        w->ntargets++;
    w->target[target] = true;
    w->removals++;
}

/* ---- writes --------------------------------------------------------------------------------- */

static kith_value
strv(const char *s)
{
    kith_value v = {.type = KITH_TYPE_STRING};
    v.u.s.ptr = s;
    v.u.s.len = strlen(s);
    return v;
}

static const kith_docid *
pick_live(struct world *w, kith_txn *t, const char *coll, const kith_docid *pool, size_t n)
{
    for (int tries = 0; n > 0 && tries < 4; tries++) {
        size_t span = below(w, 2) && n > 3 ? 3 : n;
        const kith_docid *d = &pool[n - 1 - below(w, span)];
        int rc = kith_doc_exists(t, coll, d);
        CHECK(w, rc >= 0, "doc_exists: %s", kith_strerror(rc));
        if (rc == 1)
            return d;
    }
    return NULL;
}

static void
random_op(struct world *w, kith_replica *r, kith_txn *t)
{
    static const char *const names[] = {"Ada", "Bob", "Cy", "Dee", "Eve", "\xc3\x89mile"};
    static const char *const tags[] = {"a", "b", "family", "work"};
    const kith_docid *d;
    kith_docid nd;
    char buf[64];
    kith_value v;

    switch (below(w, 8)) {
    case 0:
    case 1:
        OK(w, r, kith_doc_create(t, "contacts", &nd));
        v = strv(names[below(w, 6)]);
        OK(w, r, kith_field_set(t, "contacts", &nd, "name", &v));
        if (w->ncontacts < MAX_POOL)
            w->contacts[w->ncontacts++] = nd;
        return;
    case 2:
        if ((d = pick_live(w, t, "contacts", w->contacts, w->ncontacts)))
            OK(w, r, kith_doc_delete(t, "contacts", d));
        return;
    case 3:
        if (!(d = pick_live(w, t, "contacts", w->contacts, w->ncontacts)))
            return;
        {
            const char *tag = tags[below(w, 4)];
            if (below(w, 3))
                OK(w, r, kith_set_add(t, "contacts", d, "tags", tag, strlen(tag)));
            else
                OK(w, r, kith_set_remove(t, "contacts", d, "tags", tag, strlen(tag)));
        }
        return;
    case 4:
        if (!(d = pick_live(w, t, "contacts", w->contacts, w->ncontacts)))
            return;
        OK(w, r, kith_doc_create(t, "interactions", &nd));
        v.type = KITH_TYPE_REF;
        v.u.ref = *d;
        OK(w, r, kith_field_set(t, "interactions", &nd, "contact", &v));
        v = strv("call");
        v.type = KITH_TYPE_ENUM;
        OK(w, r, kith_field_set(t, "interactions", &nd, "kind", &v));
        v.type = KITH_TYPE_TIME;
        v.u.i = 1764000000000 + (int64_t)below(w, 1000) * 60000;
        OK(w, r, kith_field_set(t, "interactions", &nd, "at", &v));
        if (w->ninteractions < MAX_POOL)
            w->interactions[w->ninteractions++] = nd;
        return;
    case 5:
        if (!(d = pick_live(w, t, "interactions", w->interactions, w->ninteractions)))
            return;
        snprintf(buf, sizeof buf, "talked %u", (unsigned)below(w, 100));
        v = strv(buf);
        OK(w, r, kith_field_set(t, "interactions", d, "summary", &v));
        return;
    default:
        if (!(d = pick_live(w, t, "contacts", w->contacts, w->ncontacts)))
            return;
        snprintf(buf, sizeof buf, "n%u", (unsigned)below(w, 1000));
        v = strv(buf);
        OK(w, r, kith_field_set(t, "contacts", d, "name", &v));
        return;
    }
}

/* Does replica i hold commits of its own origin waiting? */
static bool
own_held(struct world *w, int i)
{
    kith_hold *h = NULL;
    size_t n = 0;
    bool held = false;

    OK(w, w->r[i].r, kith_holds_get(w->r[i].r, &h, &n));
    for (size_t k = 0; k < n; k++)
        held |= h[k].origin == w->id[i];
    kith_holds_free(h, n);
    return held;
}

/* A random transaction at i; one that knows itself removed is refused (GRP-16). */
static void
local_txn(struct world *w, int i)
{
    kith_replica *r = w->r[i].r;
    kith_txn *t = NULL;
    bool removed = group_of(w, i).self_removed;
    int rc = kith_txn_begin(r, KITH_TXN_WRITE, &t);

    if (removed && rc == KITH_EUNTRUSTED) {
        w->refused_writes++;
        return;
    }
    CHECK(w, rc == 0, "txn_begin at %d: %s (%s)", i, kith_strerror(rc), kith_errmsg(r));
    kith_value v = strv("x");
    kith_docid nd;
    rc = kith_doc_create(t, "contacts", &nd);
    if (removed && rc == KITH_EUNTRUSTED) {
        kith_txn_abort(&t);
        w->refused_writes++;
        return;
    }
    CHECK(w, rc == 0, "doc_create at %d: %s (%s)", i, kith_strerror(rc), kith_errmsg(r));
    OK(w, r, kith_field_set(t, "contacts", &nd, "name", &v));
    if (w->ncontacts < MAX_POOL)
        w->contacts[w->ncontacts++] = nd;
    for (int k = (int)below(w, 4); k > 0; k--)
        random_op(w, r, t);
    rc = kith_txn_commit(&t);
    if (removed && rc == KITH_EUNTRUSTED) {
        w->refused_writes++;
        return;
    }
    if (rc == KITH_EBUSY && own_held(w, i)) {
        /* its own commits wait for ops a rollback took (GRP-21: kept only up to a signed
         * head) until a replica holding the head sends them again (D-25) */
        w->own_waits++;
        return;
    }
    CHECK(w, !removed, "replica %d wrote though it knows itself removed", i);
    CHECK(w, rc == 0, "commit at %d: %s (%s)", i, kith_strerror(rc), kith_errmsg(r));
    w->txns++;
}

/* ---- exchanges ------------------------------------------------------------------------------ */

static void
build(struct world *w, int i, int basis, size_t max_ops, kith_buf *buf)
{
    kith_replica *r = w->r[i].r;
    kith_batch_opts opts = {.max_ops = max_ops};
    kith_vv since;

    if (basis >= 0) {
        OK(w, r, kith_vv_get(w->r[basis].r, &since));
        opts.since = &since;
    }
    OK(w, r, kith_batch_create(r, &opts, buf, NULL));
    if (basis >= 0)
        kith_vv_free(&since);
    w->batches++;
}

static void
send(struct world *w, int i, int j, size_t max_ops)
{
    kith_buf buf = {0};
    int basis = below(w, 4) == 0 ? (int)below(w, (uint64_t)w->n) : j;

    build(w, i, basis, max_ops, &buf);
    for (int copies = below(w, 4) == 0 ? 2 : 1; copies > 0; copies--) {
        if (w->nq == MAX_QUEUE) {
            free(w->q[0].data);
            memmove(&w->q[0], &w->q[1], (MAX_QUEUE - 1) * sizeof w->q[0]);
            w->nq--;
        }
        struct msg *m = &w->q[w->nq++];
        m->to = j;
        m->len = buf.len;
        m->data = malloc(buf.len ? buf.len : 1);
        CHECK(w, m->data != NULL, "out of memory");
        memcpy(m->data, buf.data, buf.len);
    }
    kith_free(buf.data);
}

/* Apply a batch at j: did anything move? */
static bool
deliver_to(struct world *w, int j, const uint8_t *data, size_t len)
{
    kith_replica *r = w->r[j].r;
    kith_apply_info info = {0};
    uint8_t gid[16], before[32], after[32];
    MDB_txn *txn;
    int rc;

    OK(w, r, kith__mdb_begin(r, MDB_RDONLY, &txn));
    rc = kith__group_summary(r, txn, gid, before);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    CHECK(w, rc == 1, "replica %d is in no group", j);
    rc = kith_batch_apply(r, data, len, &info);
    if (rc == KITH_EGAP) {
        w->gaps++;
        return false;
    }
    if (rc == KITH_EUNTRUSTED) {
        /* only a sender this replica knows removed */
        CHECK(w, strstr(kith_errmsg(r), "batch sender") != NULL, "replica %d: %s", j,
              kith_errmsg(r));
        w->untrusted++;
        return false;
    }
    CHECK(w, rc == 0, "batch_apply to %d: %s (%s)", j, kith_strerror(rc), kith_errmsg(r));
    CHECK(w, info.forks == 0, "replica %d found a fork", j);
    for (int o = 0; o < w->n; o++) {
        uint64_t applied, have, waiting;
        seqs_of(w, j, w->id[o], &applied, &have, &waiting);
        if (have > w->ever[j][o])
            w->ever[j][o] = have;
    }
    w->applied++;
    w->cut_off += info.cut_off;
    OK(w, r, kith__mdb_begin(r, MDB_RDONLY, &txn));
    rc = kith__group_summary(r, txn, gid, after);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    CHECK(w, rc == 1, "replica %d is in no group", j);
    return info.ops_new > 0 || info.ops_applied > 0 || memcmp(before, after, 32) != 0;
}

static void
deliver_one(struct world *w)
{
    size_t k = below(w, w->nq);
    struct msg m = w->q[k];

    deliver_to(w, m.to, m.data, m.len);
    if (below(w, 3) != 0) {
        free(m.data);
        w->q[k] = w->q[--w->nq];
    }
}

static bool
quiesce(struct world *w)
{
    bool any = false;

    for (int round = 0;; round++) {
        bool moved = false;

        CHECK(w, round < MAX_ROUNDS, "no quiescence after %d rounds", MAX_ROUNDS);
        for (int i = 0; i < w->n; i++)
            for (int j = 0; j < w->n; j++) {
                if (i == j)
                    continue;
                kith_buf buf = {0};
                build(w, i, j, 0, &buf);
                moved |= deliver_to(w, j, buf.data, buf.len);
                kith_free(buf.data);
            }
        if (!moved)
            return any;
        any = true;
    }
}

static bool
full_round(struct world *w)
{
    bool moved = false;

    for (int i = 0; i < w->n; i++)
        for (int j = 0; j < w->n; j++) {
            if (i == j)
                continue;
            kith_buf buf = {0};
            build(w, i, -1, 0, &buf);
            moved |= deliver_to(w, j, buf.data, buf.len);
            kith_free(buf.data);
        }
    return moved;
}

/* ---- the end -------------------------------------------------------------------------------- */

/* Applied and held seq of `origin` at replica i, and how many ops wait there in all. */
static void
seqs_of(struct world *w, int i, uint64_t origin, uint64_t *applied, uint64_t *have,
        uint64_t *waiting)
{
    kith_replica *r = w->r[i].r;
    kith_vv vv = {0};
    kith_hold *h = NULL;
    size_t n = 0;

    *applied = 0;
    *waiting = 0;
    OK(w, r, kith_vv_get(r, &vv));
    for (size_t k = 0; k < vv.len; k++)
        if (vv.entries[k].origin == origin)
            *applied = vv.entries[k].seq;
    kith_vv_free(&vv);
    *have = *applied;
    OK(w, r, kith_holds_get(r, &h, &n));
    for (size_t k = 0; k < n; k++) {
        if (h[k].origin == origin)
            *have += h[k].ops;
        *waiting += h[k].ops;
    }
    kith_holds_free(h, n);
}

static bool
same_vv(struct world *w, int i, int j)
{
    kith_vv a = {0}, b = {0};
    bool same;

    OK(w, w->r[i].r, kith_vv_get(w->r[i].r, &a));
    OK(w, w->r[j].r, kith_vv_get(w->r[j].r, &b));
    same = a.len == b.len;
    for (size_t k = 0; same && k < a.len; k++)
        same = a.entries[k].origin == b.entries[k].origin && a.entries[k].seq == b.entries[k].seq;
    kith_vv_free(&a);
    kith_vv_free(&b);
    return same;
}

/* Replica i's journal: only removed origins' ops beyond their cut-offs, as i's records say. */
static void
check_journal(struct world *w, int i)
{
    kith_replica *r = w->r[i].r;
    kith_txn *t = kt_rbegin(r);
    kith_iter *it = NULL;
    kith_journal_op op;
    int rc;

    OK(w, r, kith_iter_journal(t, 0, &it));
    while ((rc = kith_iter_next_journal(it, &op)) == 0) {
        uint64_t cutoff = 0;
        bool removed = removed_at(w, i, op.commit.origin, &cutoff);
        /* a cut-off that rose again brings ops back to the log; the journal keeps its copy */
        CHECK(w, removed, "replica %d set aside ops of %016llx, which it does not hold removed", i,
              (unsigned long long)op.commit.origin);
        w->set_aside++;
    }
    CHECK(w, rc == KITH_ENOTFOUND, "iter_next_journal: %s", kith_strerror(rc));
    kith_iter_close(it);
    kith_txn_abort(&t);
}

static void
check_end(struct world *w)
{
    int ref = -1;
    kith_group_info g[MAX_REPLICAS];
    bool stays[MAX_REPLICAS];
    char *ex[MAX_REPLICAS];

    for (int i = 0; i < w->n; i++) {
        g[i] = group_of(w, i);
        ex[i] = kt_export(w->r[i].r);
    }
    /* the stayers: members by their own records; they hold the same records */
    for (int i = 0; i < w->n; i++) {
        stays[i] = !g[i].self_removed;
        if (stays[i] && ref < 0)
            ref = i;
    }
    CHECK(w, ref >= 0, "nobody stays");
    for (int i = 0; i < w->n; i++) {
        uint64_t cutoff;
        if (!stays[i])
            continue;
        CHECK(w, memcmp(g[i].digest, g[ref].digest, 32) == 0,
              "stayers %d and %d hold different records", ref, i);
        CHECK(w, !removed_at(w, ref, w->id[i], &cutoff), "replica %d stays at %d, not at %d", i, i,
              ref);
    }
    for (int o = 0; o < w->n; o++) {
        uint64_t cutoff = 0, applied, have, waiting, end = 0;
        bool removed = removed_at(w, ref, w->id[o], &cutoff);
        for (int i = 0; i < w->n; i++) {
            seqs_of(w, i, w->id[o], &applied, &have, &waiting);
            if (stays[i])
                CHECK(w, waiting == 0, "replica %d holds %llu ops waiting", i,
                      (unsigned long long)waiting);
            uint64_t own_cut;
            if (removed_at(w, i, w->id[o], &own_cut))
                CHECK(w, have <= own_cut,
                      "replica %d holds %016llx up to %llu, beyond the cut-off %llu it knows", i,
                      (unsigned long long)w->id[o], (unsigned long long)have,
                      (unsigned long long)own_cut);
            if (!stays[i])
                continue;
            if (i == ref)
                end = have;
            CHECK(w, have == end, "stayers %d and %d hold %016llx up to %llu and %llu", ref, i,
                  (unsigned long long)w->id[o], (unsigned long long)end, (unsigned long long)have);
        }
        if (!removed)
            continue;
        CHECK(w, end <= cutoff, "the stayers hold %016llx beyond its cut-off",
              (unsigned long long)w->id[o]);
        /* short of it when no stayer ever held a head the origin signed at or below the
         * cut-off past `end`: only removed replicas, whose batches nobody takes, hold one */
        if (end < cutoff) {
            bool by_stayer = false, held = false;
            for (int i = 0; i < w->n; i++) {
                by_stayer |= stays[i] && w->cut_by[i][o] == cutoff + 1;
                held |= stays[i] && w->ever[i][o] >= cutoff;
            }
            /* a stayer that removed it at this cut-off holds the ops up to it and the head
             * (GRP-24), and relays them: the stayers reach it */
            CHECK(w, !by_stayer,
                  "the stayers hold %016llx up to %llu only, though stayer made the removal at "
                  "its cut-off %llu",
                  (unsigned long long)w->id[o], (unsigned long long)end,
                  (unsigned long long)cutoff);
            w->short_held += held;
        }
        w->short_of_cutoff += end < cutoff;
    }
    for (int i = 0; i < w->n; i++) {
        if (stays[i]) {
            CHECK(w, strcmp(ex[i], ex[ref]) == 0, "exports of stayers %d and %d differ", ref, i);
        } else if (memcmp(g[i].digest, g[ref].digest, 32) == 0 && same_vv(w, i, ref)) {
            CHECK(w, strcmp(ex[i], ex[ref]) == 0,
                  "removed replica %d holds what stayer %d holds, and exports otherwise", i, ref);
            w->removed_equal++;
        }
        kith_verify_report rep;
        OK(w, w->r[i].r, kith_verify(w->r[i].r, &rep));
        CHECK(w, rep.problems == 0, "verify at %d: %s", i, rep.first_problem);
        check_journal(w, i);
    }
    for (int i = 0; i < w->n; i++)
        free(ex[i]);
}

static void
run_history(uint64_t seed, int history)
{
    struct world *w = calloc(1, sizeof *w);

    cr_assert_not_null(w);
    w->seed = seed;
    w->history = history;
    w->rng = seed ^ ((uint64_t)history * 0xd1b54a32d192ed03ull);
    w->n = 3 + (int)below(w, 4);
    for (int i = 0; i < w->n; i++) {
        w->r[i] = kt_new();
        w->id[i] = kith_replica_id(w->r[i].r);
    }
    OK(w, w->r[0].r, kith_group_create(w->r[0].r, "home", "r0"));
    for (int i = 1; i < w->n; i++)
        admit(w, i);
    for (int i = 1; i < w->n; i++)
        push_records(w, 0, i);

    int steps = 40 + (int)below(w, 50);
    uint64_t removal_odds = 8 + below(w, 20);
    for (int s = 0; s < steps; s++) {
        uint64_t what = below(w, removal_odds);
        int i = (int)below(w, (uint64_t)w->n), j;
        if (what == 0) {
            random_removal(w, i);
        } else if (what < removal_odds * 4 / 10) {
            local_txn(w, i);
        } else if (what < removal_odds * 7 / 10) {
            do
                j = (int)below(w, (uint64_t)w->n);
            while (j == i);
            send(w, i, j, below(w, 2) ? 0 : 1 + below(w, 12));
        } else if (w->nq > 0) {
            deliver_one(w);
        }
    }
    while (w->nq > 0) {
        size_t k = below(w, w->nq);
        deliver_to(w, w->q[k].to, w->q[k].data, w->q[k].len);
        free(w->q[k].data);
        w->q[k] = w->q[--w->nq];
    }
    for (int round = 0;; round++) {
        CHECK(w, round < MAX_ROUNDS, "the full rounds go on after %d", MAX_ROUNDS);
        quiesce(w);
        if (!full_round(w))
            break;
    }
    check_end(w);
    /* a commit of its own waits for ever only on ops no stayer can get (GRP-26) */
    CHECK(w, w->own_waits == 0 || w->short_of_cutoff > 0,
          "%llu writes refused: the writer's own commits waited, though no origin stays short",
          (unsigned long long)w->own_waits);

    total_txns += w->txns;
    total_refused_writes += w->refused_writes;
    total_batches += w->batches;
    total_applied += w->applied;
    total_gaps += w->gaps;
    total_untrusted += w->untrusted;
    total_cut_off += w->cut_off;
    total_removals += w->removals;
    total_concurrent += w->removals > (uint64_t)w->ntargets;
    total_set_aside += w->set_aside;
    total_short += w->short_of_cutoff;
    total_short_held += w->short_held;
    total_removed_equal += w->removed_equal;
    total_own_waits += w->own_waits;
    for (int i = 0; i < w->n; i++)
        kt_free(&w->r[i]);
    free(w);
}

Test(convergence_groups, random_histories_with_removals, .timeout = 600)
{
    uint64_t seed = kt_seed();
    int cases = kt_cases(30);

    for (int h = 0; h < cases; h++)
        run_history(seed, h);
    fprintf(stderr,
            "convergence_groups: %d histories, %llu local txns (%llu refused: removed; %llu "
            "refused: own commits waiting), %llu "
            "batches built, %llu applied, %llu refused as gaps, %llu refused from removed "
            "senders, %llu runs set aside beyond a cut-off; %llu removals (%llu histories with "
            "more removals than keys removed); at the end %llu ops in journals, %llu removed "
            "origins short of their cut-off (%llu of them once held by a stayer), %llu removed "
            "replicas equal to the stayers\n",
            cases, (unsigned long long)total_txns, (unsigned long long)total_refused_writes,
            (unsigned long long)total_own_waits, (unsigned long long)total_batches,
            (unsigned long long)total_applied, (unsigned long long)total_gaps,
            (unsigned long long)total_untrusted, (unsigned long long)total_cut_off,
            (unsigned long long)total_removals, (unsigned long long)total_concurrent,
            (unsigned long long)total_set_aside, (unsigned long long)total_short,
            (unsigned long long)total_short_held, (unsigned long long)total_removed_equal);
}
