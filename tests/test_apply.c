/*
 * test_apply.c — the apply path (store/apply.c): register values round trip, replicas that
 * receive the same ops in any order and batch split converge (generated histories; KITH_SEED
 * replays one, KITH_CASES scales the count), index entries follow register changes (also
 * through received ops), and a commit from a clock too far ahead waits as pending.
 */
#include "kith_test.h"
#include "schema.h"
#include "store.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

Test(apply, regval_round_trip)
{
    kith_value vals[8];
    uint8_t buf[64];

    memset(vals, 0, sizeof vals);
    vals[0].type = KITH_TYPE_NULL;
    vals[1] = kt_str("héllo");
    vals[2] = (kith_value){.type = KITH_TYPE_INT, .u.i = -42};
    vals[3] = (kith_value){.type = KITH_TYPE_TIME, .u.i = 1764093600123};
    vals[4] = (kith_value){.type = KITH_TYPE_BOOL, .u.b = true};
    vals[5].type = KITH_TYPE_REF;
    memset(vals[5].u.ref.bytes, 0x5a, KITH_DOCID_BYTES);
    vals[6] = kt_str("2026-11-25");
    vals[6].type = KITH_TYPE_DATE;
    vals[7] = kt_str("");
    vals[7].type = KITH_TYPE_BYTES;
    for (int i = 0; i < 8; i++) {
        kith_value out;
        size_t n = kith__value_stored_size(&vals[i]);
        cr_assert_leq(n, sizeof buf);
        kith__value_store(&vals[i], buf);
        cr_assert_eq(kith__value_load(buf, n, &out), 0, "value %d", i);
        cr_assert_eq(out.type, vals[i].type);
        switch (out.type) {
        case KITH_TYPE_INT:
        case KITH_TYPE_TIME:
            cr_assert_eq(out.u.i, vals[i].u.i);
            break;
        case KITH_TYPE_BOOL:
            cr_assert_eq(out.u.b, vals[i].u.b);
            break;
        case KITH_TYPE_REF:
            cr_assert_arr_eq(out.u.ref.bytes, vals[i].u.ref.bytes, KITH_DOCID_BYTES);
            break;
        case KITH_TYPE_NULL:
            break;
        default:
            cr_assert_eq(out.u.s.len, vals[i].u.s.len);
            cr_assert_eq(memcmp(out.u.s.ptr, vals[i].u.s.ptr, out.u.s.len), 0);
        }
        /* a byte short or long is refused for fixed-size types */
        if (n > 1 && out.type != KITH_TYPE_STRING && out.type != KITH_TYPE_DATE)
            cr_assert_lt(kith__value_load(buf, n - 1, &out), 0);
    }
    uint8_t bad[2] = {99, 0};
    kith_value out;
    cr_assert_lt(kith__value_load(bad, 2, &out), 0);
    cr_assert_lt(kith__value_load(bad, 0, &out), 0);
}

/* ---- generated histories -------------------------------------------------------------- */

#define NREP 3
#define NDOCS 4

static const char *const FIELDS[] = {"name", "company", "notes"};
static const char *const TAGS[] = {"a", "b", "c"};

/* Move what `to` lacks from `from`, in batches of a random size. */
static void
sync_split(struct kt_replica *from, struct kt_replica *to, uint64_t *st)
{
    uint64_t cursor = 0;
    int rounds = 0;

    for (bool more = true; more; rounds++) {
        kith_vv vv = {0};
        kith_batch_opts o = {.cursor = cursor, .max_ops = 1 + kt_below(st, 6)};
        kith_batch_info bi;
        kith_buf b = {0};
        kith_apply_info ai;
        cr_assert_eq(kith_vv_get(to->r, &vv), 0);
        o.since = &vv;
        cr_assert_eq(kith_batch_create(from->r, &o, &b, &bi), 0, "%s", kith_errmsg(from->r));
        int rc = kith_batch_apply(to->r, b.data, b.len, &ai);
        cr_assert_eq(rc, 0, "apply: %s (%s)", kith_strerror(rc), kith_errmsg(to->r));
        /* half the time, deliver the same batch again */
        if (kt_below(st, 2) == 0) {
            cr_assert_eq(kith_batch_apply(to->r, b.data, b.len, &ai), 0);
            cr_assert_eq(ai.ops_new, 0);
        }
        kith_free(b.data);
        kith_vv_free(&vv);
        cursor = bi.next_cursor;
        more = bi.has_more;
        cr_assert_lt(rounds, 10000);
    }
}

/* One random local transaction of 1 to 3 writes on replica r (docs known to it). */
static void
random_txn(kith_replica *r, kith_docid *docs, int *ndocs, uint64_t *st, int step)
{
    kith_txn *t = NULL;
    int nw = 1 + (int)kt_below(st, 3), rc = 0;
    char val[32];

    cr_assert_eq(kith_txn_begin(r, KITH_TXN_WRITE, &t), 0);
    for (int w = 0; w < nw && rc == 0; w++) {
        kith_docid *d = &docs[kt_below(st, (uint64_t)*ndocs)];
        uint64_t what = kt_below(st, 10);
        snprintf(val, sizeof val, "v%d.%d", step, w);
        if (what < 5) {
            kith_value v = kt_str(val);
            rc = kith_field_set(t, "contacts", d, FIELDS[kt_below(st, 3)], &v);
        } else if (what < 7) {
            const char *tg = TAGS[kt_below(st, 3)];
            rc = kith_set_add(t, "contacts", d, "tags", tg, 1);
        } else if (what < 8) {
            const char *tg = TAGS[kt_below(st, 3)];
            rc = kith_set_remove(t, "contacts", d, "tags", tg, 1);
        } else if (what < 9) {
            rc = kith_doc_delete(t, "contacts", d);
        } else if (*ndocs < 64) {
            kith_docid nd;
            kith_value v = kt_str(val);
            rc = kith_doc_create(t, "contacts", &nd);
            if (rc == 0)
                rc = kith_field_set(t, "contacts", &nd, "name", &v);
            if (rc == 0)
                docs[(*ndocs)++] = nd;
        }
    }
    if (rc == KITH_ENOTFOUND) {
        kith_txn_abort(&t); /* wrote to a document deleted here: fine, drop the txn */
        return;
    }
    cr_assert_eq(rc, 0, "%s (%s)", kith_strerror(rc), kith_errmsg(r));
    cr_assert_eq(kith_txn_commit(&t), 0);
}

Test(apply, any_delivery_order_converges, .timeout = 240)
{
    uint64_t seed = kt_seed();
    int cases = kt_cases(12);

    for (int cs = 0; cs < cases; cs++) {
        uint64_t st = seed + (uint64_t)cs;
        struct kt_replica rep[NREP];
        kith_docid docs[NREP][80];
        int ndocs[NREP];

        for (int i = 0; i < NREP; i++)
            rep[i] = kt_new();
        for (int i = 0; i < NREP; i++)
            for (int j = i + 1; j < NREP; j++)
                kt_trust_pair(&rep[i], &rep[j]);
        for (int d = 0; d < NDOCS; d++)
            docs[0][d] = kt_contact(rep[0].r, "seed");
        ndocs[0] = NDOCS;
        for (int i = 1; i < NREP; i++) {
            kt_sync(&rep[0], &rep[i]);
            memcpy(docs[i], docs[0], sizeof docs[0]);
            ndocs[i] = NDOCS;
        }
        for (int step = 0; step < 60; step++) {
            int a = (int)kt_below(&st, NREP);
            if (kt_below(&st, 4) == 0) {
                int b = (int)kt_below(&st, NREP);
                if (a != b) {
                    sync_split(&rep[a], &rep[b], &st);
                    /* b now knows a's documents */
                    for (int d = 0; d < ndocs[a]; d++) {
                        bool have = false;
                        for (int e = 0; e < ndocs[b]; e++)
                            have |= memcmp(&docs[b][e], &docs[a][d], sizeof(kith_docid)) == 0;
                        if (!have && ndocs[b] < 80)
                            docs[b][ndocs[b]++] = docs[a][d];
                    }
                }
            } else {
                random_txn(rep[a].r, docs[a], &ndocs[a], &st, step);
            }
        }
        /* everyone gets everything, in a seeded order */
        for (int round = 0; round < 2; round++)
            for (int i = 0; i < NREP; i++)
                for (int j = 0; j < NREP; j++)
                    if (i != j)
                        sync_split(&rep[i], &rep[j], &st);
        char *e0 = kt_export(rep[0].r);
        for (int i = 1; i < NREP; i++) {
            char *ei = kt_export(rep[i].r);
            cr_assert_str_eq(e0, ei, "case %d: replicas 0 and %d differ (KITH_SEED=%llu)", cs, i,
                             (unsigned long long)seed);
            free(ei);
        }
        for (int i = 0; i < NREP; i++) {
            kith_verify_report vr;
            cr_assert_eq(kith_verify(rep[i].r, &vr), 0);
            cr_assert_eq(vr.problems, 0, "case %d replica %d: %s (KITH_SEED=%llu)", cs, i,
                         vr.first_problem, (unsigned long long)seed);
            kith_status *s = NULL;
            cr_assert_eq(kith_status_get(rep[i].r, &s), 0);
            cr_assert_eq(s->pending_ops, 0);
            kith_status_free(s);
        }
        free(e0);
        for (int i = 0; i < NREP; i++)
            kt_free(&rep[i]);
    }
}

/* ---- indexes ---------------------------------------------------------------------------- */

static int
count_index(kith_replica *r, const char *index, const kith_value *eq)
{
    kith_txn *t = NULL;
    kith_iter *it = NULL;
    kith_docid d;
    int n = 0;

    cr_assert_eq(kith_txn_begin(r, KITH_TXN_READ, &t), 0);
    cr_assert_eq(kith_iter_index(t, index, eq, NULL, NULL, &it), 0);
    while (kith_iter_next(it, &d) == 0)
        n++;
    kith_iter_close(it);
    kith_txn_abort(&t);
    return n;
}

static int
raw_index_entries(kith_replica *r)
{
    MDB_txn *txn;
    MDB_stat st;
    cr_assert_eq(kith__mdb_begin(r, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_stat(txn, r->index, &st), 0);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    return (int)st.ms_entries;
}

Test(apply, indexes_follow_the_registers)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kith_docid x, y, ix;
    kith_txn *t = NULL;

    kt_trust_pair(&a, &b);
    x = kt_contact(a.r, "Xavier");
    y = kt_contact(a.r, "Yvonne");
    cr_assert_eq(raw_index_entries(a.r), 2);
    cr_assert_eq(kith_txn_begin(a.r, KITH_TXN_WRITE, &t), 0);
    cr_assert_eq(kith_doc_create(t, "interactions", &ix), 0);
    kith_value ref = {.type = KITH_TYPE_REF, .u.ref = x};
    kith_value at = {.type = KITH_TYPE_TIME, .u.i = 1000};
    kith_value kind = kt_str("call");
    kind.type = KITH_TYPE_ENUM;
    cr_assert_eq(kith_field_set(t, "interactions", &ix, "contact", &ref), 0);
    /* no time yet: no entry */
    cr_assert_eq(kith_field_set(t, "interactions", &ix, "kind", &kind), 0);
    cr_assert_eq(kith_field_set(t, "interactions", &ix, "at", &at), 0);
    cr_assert_eq(kith_txn_commit(&t), 0);
    cr_assert_eq(raw_index_entries(a.r), 3);
    cr_assert_eq(count_index(a.r, "interactions.contact", &ref), 1);
    /* move it to y, on the other replica, and bring it back */
    kt_sync(&a, &b);
    cr_assert_eq(kith_txn_begin(b.r, KITH_TXN_WRITE, &t), 0);
    kith_value ref2 = {.type = KITH_TYPE_REF, .u.ref = y};
    cr_assert_eq(kith_field_set(t, "interactions", &ix, "contact", &ref2), 0);
    at.u.i = 2000;
    cr_assert_eq(kith_field_set(t, "interactions", &ix, "at", &at), 0);
    cr_assert_eq(kith_txn_commit(&t), 0);
    kt_set_str(b.r, "contacts", &x, "name", "Xena");
    kt_sync(&b, &a);
    for (int i = 0; i < 2; i++) {
        kith_replica *r = i ? b.r : a.r;
        cr_assert_eq(count_index(r, "interactions.contact", &ref), 0, "replica %d", i);
        cr_assert_eq(count_index(r, "interactions.contact", &ref2), 1, "replica %d", i);
        cr_assert_eq(raw_index_entries(r), 3, "replica %d: stale entries", i);
        cr_assert_eq(count_index(r, "contacts.name", NULL), 2);
    }
    kt_free(&a);
    kt_free(&b);
}

/*
 * A history that renames contacts, moves reminders and re-files interactions many times,
 * received as batches: once by a fresh replica (the index keys of new documents come and go
 * inside one batch) and once in two halves (the second half changes documents already held),
 * each with the apply's write cache at its normal size and at a size so small that it is
 * written out between most commits. Every receiver must hold exactly the sender's indexes.
 */
static void
churn_commit(kith_replica *r, const kith_docid *c, const kith_docid *rem, const kith_docid *ix,
             int n, uint64_t *rng)
{
    kith_txn *t = kt_wbegin(r);
    char name[32];

    for (int k = 0; k < 6; k++) {
        int i = (int)kt_below(rng, (uint64_t)n);
        kith_value v;
        switch (kt_below(rng, 4)) {
        case 0:
        case 1:
            snprintf(name, sizeof name, "n%llu", (unsigned long long)kt_below(rng, 50));
            v = kt_str(name);
            cr_assert_eq(kith_field_set(t, "contacts", &c[i], "name", &v), 0);
            break;
        case 2:
            v = (kith_value){.type = KITH_TYPE_TIME, .u.i = (int64_t)kt_below(rng, 40) * 1000};
            cr_assert_eq(kith_field_set(t, "reminders", &rem[i], "due", &v), 0);
            break;
        default:
            v = (kith_value){.type = KITH_TYPE_REF, .u.ref = c[kt_below(rng, (uint64_t)n)]};
            cr_assert_eq(kith_field_set(t, "interactions", &ix[i], "contact", &v), 0);
            v = (kith_value){.type = KITH_TYPE_TIME, .u.i = (int64_t)kt_below(rng, 40) * 1000};
            cr_assert_eq(kith_field_set(t, "interactions", &ix[i], "at", &v), 0);
            break;
        }
    }
    kt_commit(t);
}

static void
assert_same_indexes(kith_replica *want, kith_replica *got, const char *what)
{
    kith_verify_report rep;
    char *a = kt_export(want), *b = kt_export(got);

    cr_assert_eq(raw_index_entries(got), raw_index_entries(want), "%s: index entries", what);
    cr_assert_eq(kith_verify(got, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s: %s", what, rep.first_problem);
    cr_assert_str_eq(a, b, "%s: exports differ", what);
    free(a);
    free(b);
}

Test(apply, index_churn_in_large_batches, .timeout = 240)
{
    enum { N = 40 };

    uint64_t seed = kt_seed(), rng = seed;
    int ncommits = kt_cases(2000) / 4 + 50;
    struct kt_replica a = kt_new();
    kith_docid c[N], rem[N], ix[N];
    kith_txn *t = kt_wbegin(a.r);
    size_t budget = kith__wcache_budget;

    fprintf(stderr, "apply.index_churn: KITH_SEED=%llu\n", (unsigned long long)seed);
    for (int i = 0; i < N; i++) {
        kith_value nm = kt_str("start"), due = {.type = KITH_TYPE_TIME, .u.i = 1},
                   txt = kt_str("call back"), kind = kt_str("call");
        kind.type = KITH_TYPE_ENUM;
        cr_assert_eq(kith_doc_create(t, "contacts", &c[i]), 0);
        cr_assert_eq(kith_field_set(t, "contacts", &c[i], "name", &nm), 0);
        cr_assert_eq(kith_doc_create(t, "reminders", &rem[i]), 0);
        cr_assert_eq(kith_field_set(t, "reminders", &rem[i], "due", &due), 0);
        cr_assert_eq(kith_field_set(t, "reminders", &rem[i], "text", &txt), 0);
        kith_value ref = {.type = KITH_TYPE_REF, .u.ref = c[i]};
        cr_assert_eq(kith_doc_create(t, "interactions", &ix[i]), 0);
        cr_assert_eq(kith_field_set(t, "interactions", &ix[i], "contact", &ref), 0);
        cr_assert_eq(kith_field_set(t, "interactions", &ix[i], "kind", &kind), 0);
        cr_assert_eq(kith_field_set(t, "interactions", &ix[i], "at", &due), 0);
    }
    kt_commit(t);
    for (int round = 0; round < 4; round++) {
        bool tiny = round & 1, halves = round & 2;
        struct kt_replica b = kt_new();
        char what[64];
        snprintf(what, sizeof what, "round %d (%s cache, %s)", round, tiny ? "tiny" : "normal",
                 halves ? "two batches" : "one batch");
        kt_trust_pair(&a, &b);
        if (round == 0) {
            for (int k = 0; k < ncommits; k++) /* the first half of the history */
                churn_commit(a.r, c, rem, ix, N, &rng);
        }
        kith__wcache_budget = tiny ? 20000 : budget;
        if (halves) {
            kt_sync(&a, &b);
            for (int k = 0; k < ncommits; k++) /* changes to documents b now holds */
                churn_commit(a.r, c, rem, ix, N, &rng);
        }
        kt_sync(&a, &b);
        kith__wcache_budget = budget;
        assert_same_indexes(a.r, b.r, what);
        kt_free(&b);
    }
    kt_free(&a);
}

/* ---- clock skew ------------------------------------------------------------------------- */

/* A commit from a replica whose clock runs 10 minutes ahead is logged but waits. */
static const struct kith__name contacts_name[] = {{"contacts", 8}};

Test(apply, commit_from_the_future_waits)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct kith__commit c = {0};
    struct kith__op op = {0};
    struct kith__wbuf enc = {0}, out = {0};
    struct kith__batch bt = {0};
    struct kith__batch_commit bc;
    struct kith__batch_head hd;
    uint8_t zero[KITH_HASH_BYTES] = {0}, h[KITH_HASH_BYTES];
    kith_apply_info info;

    kt_trust_pair(&a, &b);
    op.kind = KITH_OP_DOC_ADD;
    op.cname = 0; /* "contacts", the commit's one name */
    op.doc.origin = kith_replica_id(a.r);
    op.doc.seq = 1;
    c.origin = kith_replica_id(a.r);
    c.first_seq = 1;
    c.hlc = KITH__HLC_MAKE(kith__now_ms() + 600000, 0);
    c.nops = 1;
    c.ops = &op;
    c.format = 2;
    c.names = contacts_name;
    c.nnames = 1;
    cr_assert_eq(kith__commit_encode(&c, &enc), 0);
    kith__chain_next(zero, enc.data, enc.len, h);
    bc = (struct kith__batch_commit){c.origin, 1, enc.data, enc.len};
    hd.origin = c.origin;
    hd.seq = 1;
    kith__head_sign(a.r->sk, c.origin, 1, h, hd.sig);
    bt.sender = c.origin;
    bt.ncommits = 1;
    bt.commits = &bc;
    bt.nheads = 1;
    bt.heads = &hd;
    cr_assert_eq(kith__batch_encode(&bt, &out), 0);
    cr_assert_eq(kith_batch_apply(b.r, out.data, out.len, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(info.ops_new, 1);
    cr_assert_eq(info.ops_applied, 0);
    cr_assert_eq(info.ops_pending, 1);
    kith_status *s = NULL;
    cr_assert_eq(kith_status_get(b.r, &s), 0);
    cr_assert_eq(s->pending_ops, 1);
    cr_assert_eq(s->vv.len, 0);
    cr_assert_lt(KITH__HLC_MS(s->hlc), (uint64_t)kith__now_ms() + 60000, "the clock was dragged");
    kith_status_free(s);
    /* again: known, still waiting */
    cr_assert_eq(kith_batch_apply(b.r, out.data, out.len, &info), 0);
    cr_assert_eq(info.ops_known, 1);
    cr_assert_eq(info.ops_pending, 1);
    kith__wbuf_free(&enc);
    kith__wbuf_free(&out);
    kt_free(&a);
    kt_free(&b);
}
