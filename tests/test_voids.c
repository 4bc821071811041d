/*
 * test_voids.c — void dots and their tombstones (spec/data-model.md FORK-15..18, storage.md
 * STO-33, decisions.md D-23). After a fork of origin F settled at shared seq c, a commit of
 * another origin X that observed a dot (F, s > c) of the set-aside history applies on a
 * replica that settled the fork without waiting for the op the kept history puts at (F, s).
 * So one replica applies the kept op K first and X after it, another X first and K after it.
 * The state must be the same either way: X's removal of (F, s) leaves a tombstone where K
 * had not come, and K's add of (F, s) to that set is then dropped.
 *
 * The fork is real: replica F writes, its directory (key included) is copied to F', and both
 * write at dot (F, c + 1) an op that adds that dot to the same set (an element, a flag, a
 * document's membership through an edit). B sees both branches and makes the proof (FORK-8).
 * X holds the losing branch and removes the dot from the set (an element removed, a flag
 * cleared, the document deleted). R1 takes the kept branch, then X's batch (K before X); R2
 * takes the proof, then X's batch, then the kept branch (X before K). Their exports are equal
 * byte for byte, and equal to every other replica's once everyone has exchanged everything.
 * While R2 holds the tombstone, kith_verify finds it as its own rebuild makes it, and finds it
 * missing when it is deleted behind kith's back.
 */
#include "forkproof.h"
#include "kith.h"
#include "kith_test.h"
#include "store.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char schema[] = "{\"collections\":{\"contacts\":{\"fields\":{"
                             "\"pinned\":{\"type\":\"boolean\",\"crdt\":\"flag\"}}}}}";

/* A batch of everything `from` holds (since NULL, as a bundle). */
static kith_buf
batch_all(kith_replica *from)
{
    kith_buf b = {0};
    int rc = kith_batch_create(from, NULL, &b, NULL);
    cr_assert_eq(rc, 0, "batch_create: %s (%s)", kith_strerror(rc), kith_errmsg(from));
    return b;
}

static kith_apply_info
apply(kith_replica *to, const kith_buf *b)
{
    kith_apply_info info = {0};
    int rc = kith_batch_apply(to, b->data, b->len, &info);
    cr_assert_eq(rc, 0, "batch_apply: %s (%s)", kith_strerror(rc), kith_errmsg(to));
    return info;
}

static kith_apply_info
full_sync(kith_replica *from, kith_replica *to)
{
    kith_buf b = batch_all(from);
    kith_apply_info info = apply(to, &b);
    kith_free(b.data);
    return info;
}

/* Records in r's voids database. */
static size_t
nvoids(kith_replica *r)
{
    MDB_txn *txn;
    MDB_stat st;
    cr_assert_eq(kith__mdb_begin(r, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_stat(txn, r->voids, &st), 0);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    return st.ms_entries;
}

/* Every proof r holds, absorbed by `to` in a write transaction of its own. */
struct proof_copy {
    kith_replica *to;
    MDB_txn *txn;
    size_t added;
};

static int
absorb_one(void *ctx, const uint8_t *proof, size_t len)
{
    struct proof_copy *pc = ctx;
    size_t added = 0;
    int rc = kith__proof_absorb(pc->to, pc->txn, &proof, &len, 1, &added);
    pc->added += added;
    return rc;
}

static size_t
give_proofs(kith_replica *from, kith_replica *to)
{
    MDB_txn *rtxn;
    struct proof_copy pc = {to, NULL, 0};
    cr_assert_eq(kith__mdb_begin(to, 0, &pc.txn), 0);
    cr_assert_eq(kith__mdb_begin(from, MDB_RDONLY, &rtxn), 0);
    int rc = kith__proof_collect(from, rtxn, absorb_one, &pc);
    mdb_txn_abort(rtxn);
    kith__mdb_end(from);
    cr_assert_eq(rc, 0, "absorb: %s (%s)", kith_strerror(rc), kith_errmsg(to));
    cr_assert_eq(mdb_txn_commit(pc.txn), 0);
    kith__mdb_end(to);
    return pc.added;
}

static void
verify_clean(kith_replica *r, const char *who)
{
    kith_verify_report rep;
    int rc = kith_verify(r, &rep);
    cr_assert_eq(rc, 0, "%s: verify: %s", who, kith_errmsg(r));
    cr_assert_eq(rep.problems, 0, "%s: verify: %s", who, rep.first_problem);
}

static void
schema_declare(kith_replica *r)
{
    int rc = kith_schema_apply(r, schema, strlen(schema));
    cr_assert_eq(rc, 0, "schema: %s (%s)", kith_strerror(rc), kith_errmsg(r));
}

/* FORK-18: r's one tombstone deleted behind kith's back is a problem kith_verify reports; put
 * back, r verifies clean again. */
static void
tombstone_lost_is_found(kith_replica *r)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    uint8_t key[64], val[1024];
    size_t klen, vlen;
    kith_verify_report rep;

    cr_assert_eq(kith__mdb_begin(r, 0, &txn), 0);
    cr_assert_eq(mdb_cursor_open(txn, r->voids, &c), 0);
    cr_assert_eq(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
    cr_assert(k.mv_size <= sizeof key && v.mv_size <= sizeof val);
    klen = k.mv_size;
    vlen = v.mv_size;
    memcpy(key, k.mv_data, klen);
    memcpy(val, v.mv_data, vlen);
    cr_assert_eq(mdb_cursor_del(c, 0), 0);
    mdb_cursor_close(c);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(r);
    cr_assert_eq(kith_verify(r, &rep), 0);
    cr_assert_eq(rep.problems, 1, "%llu problems", (unsigned long long)rep.problems);
    cr_assert(strstr(rep.first_problem, "void dot tombstone") != NULL, "%s", rep.first_problem);

    cr_assert_eq(kith__mdb_begin(r, 0, &txn), 0);
    k.mv_size = klen;
    k.mv_data = key;
    v.mv_size = vlen;
    v.mv_data = val;
    cr_assert_eq(mdb_put(txn, r->voids, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(r);
    verify_clean(r, "the tombstone put back");
}

/* ---- the hand-built cases ---------------------------------------------------------------- */

enum kind { ELEMENT, FLAG, DOCUMENT };

/* The branch's commit at c + 1: its first op adds (F, c + 1) to the set of `kind` on ada
 * (an element, a flag, ada's membership through the edit), its name differs per branch. */
static void
branch_write(kith_replica *r, enum kind kind, const kith_docid *ada, const char *name)
{
    kith_txn *t = kt_wbegin(r);
    kith_value v = kt_str(name);
    if (kind == ELEMENT)
        cr_assert_eq(kith_set_add(t, "contacts", ada, "tags", "vip", 3), 0);
    else if (kind == FLAG)
        cr_assert_eq(kith_flag_set(t, "contacts", ada, "pinned", true), 0);
    cr_assert_eq(kith_field_set(t, "contacts", ada, "name", &v), 0);
    kt_commit(t);
}

/* X's commit: it removes what the branch it holds added (the dot (F, c + 1), or for the
 * document the dot of the branch's edit, the last on ada). */
static void
x_write(kith_replica *r, enum kind kind, const kith_docid *ada)
{
    kith_txn *t = kt_wbegin(r);
    if (kind == ELEMENT)
        cr_assert_eq(kith_set_remove(t, "contacts", ada, "tags", "vip", 3), 0);
    else if (kind == FLAG)
        cr_assert_eq(kith_flag_set(t, "contacts", ada, "pinned", false), 0);
    else
        cr_assert_eq(kith_doc_delete(t, "contacts", ada), 0);
    kt_commit(t);
}

static void
both_orders(enum kind kind)
{
    struct kt_replica f = kt_new(), b = kt_new(), x = kt_new(), r1 = kt_new(), r2 = kt_new(), fp;
    struct kt_replica *all[] = {&f, &b, &x, &r1, &r2};
    for (size_t i = 0; i < 5; i++) {
        schema_declare(all[i]->r);
        for (size_t j = i + 1; j < 5; j++)
            kt_trust_pair(all[i], all[j]);
    }
    kith_docid ada = kt_contact(f.r, "Ada");
    for (size_t i = 1; i < 5; i++)
        kt_sync(&f, all[i]);

    /* the fork: F and F' each write their own op at (F, c + 1) */
    fp = kt_copy_of(&f);
    branch_write(f.r, kind, &ada, "Ada A");
    branch_write(fp.r, kind, &ada, "Ada B");
    /* B sees both histories: the proof, and which branch it keeps */
    full_sync(f.r, b.r);
    full_sync(fp.r, b.r);
    kith_fork *fk = NULL;
    size_t nf = 0;
    cr_assert_eq(kith_forks_get(b.r, &fk, &nf), 0);
    cr_assert_eq(nf, 1);
    cr_assert(fk[0].has_proof, "B made no proof");
    bool f_wins = fk[0].holds == KITH_FORK_HOLDS_WINNER; /* B held F's branch first */
    kith_forks_free(fk, nf);
    kith_replica *winner = f_wins ? f.r : fp.r, *loser = f_wins ? fp.r : f.r;

    /* X takes the losing branch before it knows of the fork, and removes the dot */
    full_sync(loser, x.r);
    x_write(x.r, kind, &ada);
    kith_buf from_x = batch_all(x.r);

    /* R1: the kept op K, then X's commit (K before X) */
    full_sync(winner, r1.r);
    kith_apply_info i1 = apply(r1.r, &from_x);
    cr_assert_eq(i1.forks, 1, "R1 finds the fork in X's batch");
    cr_assert_eq(nvoids(r1.r), 0, "R1 applied X after K: no tombstone");

    /* R2: the proof, X's commit (void dot: it applies at once), then K */
    cr_assert_eq(give_proofs(b.r, r2.r), 1);
    kith_apply_info i2 = apply(r2.r, &from_x);
    cr_assert_eq(i2.ops_pending, 0, "X's commit waits for nothing");
    cr_assert_eq(nvoids(r2.r), 1, "X removed a dot R2 had not applied: a tombstone");
    verify_clean(r2.r, "R2 with a tombstone");
    tombstone_lost_is_found(r2.r);
    full_sync(winner, r2.r);
    cr_assert_eq(nvoids(r2.r), 0, "K's add used the tombstone up");

    char *e1 = kt_export(r1.r), *e2 = kt_export(r2.r);
    cr_assert_str_eq(e1, e2, "K then X, X then K: one state");
    if (kind == DOCUMENT)
        cr_assert(strstr(e1, "Ada") == NULL, "ada was deleted: %s", e1);
    else
        cr_assert(strstr(e1, kind == ELEMENT ? "vip" : "pinned") == NULL,
                  "the dot X observed was removed: %s", e1);
    verify_clean(r1.r, "R1");
    verify_clean(r2.r, "R2");

    /* everyone exchanges everything: every replica but the writers ends in that state (all[0]
     * is F, a writer) */
    for (size_t j = 1; j < 5; j++)
        full_sync(winner, all[j]->r);
    for (int round = 0; round < 2; round++)
        for (size_t i = 1; i < 5; i++)
            for (size_t j = 1; j < 5; j++)
                if (i != j)
                    full_sync(all[i]->r, all[j]->r);
    for (size_t i = 1; i < 5; i++) {
        char *e = kt_export(all[i]->r);
        cr_assert_str_eq(e, e1, "replica %zu", i);
        free(e);
        verify_clean(all[i]->r, "every replica");
        cr_assert_eq(nvoids(all[i]->r), 0);
    }
    free(e1);
    free(e2);
    kith_free(from_x.data);
    kt_free(&fp);
    for (size_t i = 0; i < 5; i++)
        kt_free(all[i]);
}

/* proves FORK-15, FORK-16, FORK-17, FORK-18 */
Test(voids, an_element_removed_before_its_add_came_stays_removed)
{
    both_orders(ELEMENT);
}

/* proves FORK-15, FORK-16 */
Test(voids, a_flag_cleared_before_its_enable_came_stays_clear)
{
    both_orders(FLAG);
}

/* proves FORK-15, FORK-16 */
Test(voids, a_document_deleted_before_the_edit_it_saw_came_stays_deleted)
{
    both_orders(DOCUMENT);
}

/* ---- generated histories ------------------------------------------------------------------ */

/*
 * One history: F makes three contacts that everyone holds; F and its copy F' then run one
 * script of commits (tags added, the flag enabled, names set, each commit ending with a name
 * of its branch so the histories part at once), the same ops on both one time in two, so that
 * both branches put an add of one dot into one set; X and Y take one branch (from F, F' or
 * each other) before anyone knows of the fork and write removals (tags removed, flags cleared,
 * contacts deleted) and adds. Then random deliveries between everyone but the writers, from
 * everyone, full or since the receiver's vector, cut at a random op limit, and at the end full
 * rounds until nothing moves. Every replica but the writers must then hold one export and one
 * voids database, byte for byte, and verify clean.
 */
#define GEN_REPLICAS 7 /* F, F', X, Y, three observers */
#define GEN_F 0
#define GEN_FP 1
#define GEN_X 2
#define GEN_Y 3

static const char *const gen_tags[] = {"a", "b", "c"};

struct gen {
    uint64_t seed, rng;
    int history;
    struct kt_replica r[GEN_REPLICAS];
    kith_docid docs[3];
    uint64_t tombstones; /* tombstones seen after a delivery, summed */
};

#define GCHECK(g, cond, ...)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "KITH_SEED=%llu history %d: ", (unsigned long long)(g)->seed,          \
                    (g)->history);                                                                 \
            cr_assert(false, __VA_ARGS__);                                                         \
        }                                                                                          \
    } while (0)

/* One op of a branch's script, drawn from `rng`; names carry the branch's letter. */
static void
gen_branch_op(kith_txn *t, uint64_t *rng, const kith_docid *docs, char branch)
{
    const kith_docid *d = &docs[kt_below(rng, 3)];
    int rc = 0;

    if (kith_doc_exists(t, "contacts", d) != 1)
        return;
    switch (kt_below(rng, 3)) {
    case 0: {
        const char *tag = gen_tags[kt_below(rng, 3)];
        rc = kith_set_add(t, "contacts", d, "tags", tag, strlen(tag));
        break;
    }
    case 1:
        rc = kith_flag_set(t, "contacts", d, "pinned", true);
        break;
    default: {
        char name[32];
        snprintf(name, sizeof name, "%c%u", branch, (unsigned)kt_below(rng, 100));
        kith_value v = kt_str(name);
        rc = kith_field_set(t, "contacts", d, "name", &v);
        break;
    }
    }
    cr_assert_eq(rc, 0, "branch op: %s", kith_strerror(rc));
}

static void
gen_branch(struct gen *g, int i, uint64_t script, int ncommits)
{
    kith_replica *r = g->r[i].r;
    char branch = i == GEN_F ? 'A' : 'B';

    for (int c = 0; c < ncommits; c++) {
        kith_txn *t = kt_wbegin(r);
        for (int k = 1 + (int)kt_below(&script, 3); k > 0; k--)
            gen_branch_op(t, &script, g->docs, branch);
        char name[32];
        snprintf(name, sizeof name, "%c end %d", branch, c);
        kith_value v = kt_str(name);
        cr_assert_eq(kith_field_set(t, "contacts", &g->docs[0], "name", &v), 0);
        kt_commit(t);
    }
}

/* An honest writer's commit: mostly removals of what it holds, now and then an add. */
static void
gen_honest(struct gen *g, int i)
{
    kith_replica *r = g->r[i].r;
    kith_txn *t = kt_wbegin(r);

    for (int k = 1 + (int)kt_below(&g->rng, 3); k > 0; k--) {
        const kith_docid *d = &g->docs[kt_below(&g->rng, 3)];
        const char *tag = gen_tags[kt_below(&g->rng, 3)];
        int rc = kith_doc_exists(t, "contacts", d);
        GCHECK(g, rc >= 0, "doc_exists: %s", kith_strerror(rc));
        if (rc == 0)
            continue;
        switch (kt_below(&g->rng, 6)) {
        case 0:
        case 1:
            rc = kith_set_remove(t, "contacts", d, "tags", tag, strlen(tag));
            break;
        case 2:
            rc = kith_flag_set(t, "contacts", d, "pinned", false);
            break;
        case 3:
            rc = kith_doc_delete(t, "contacts", d);
            break;
        case 4:
            rc = kith_set_add(t, "contacts", d, "tags", tag, strlen(tag));
            break;
        default:
            rc = kith_flag_set(t, "contacts", d, "pinned", true);
            break;
        }
        GCHECK(g, rc == 0, "honest op: %s (%s)", kith_strerror(rc), kith_errmsg(r));
    }
    kt_commit(t);
}

/* A batch from i to j: everything, or what j's vector lacks, cut at max_ops (0: no cut).
 * Returns whether anything moved. */
static bool
gen_deliver(struct gen *g, int i, int j, bool since, size_t max_ops)
{
    kith_batch_opts opts = {.max_ops = max_ops};
    kith_apply_info info = {0};
    kith_buf buf = {0};
    kith_vv vv = {0};
    int rc;

    if (since) {
        GCHECK(g, kith_vv_get(g->r[j].r, &vv) == 0, "vv_get");
        opts.since = &vv;
    }
    rc = kith_batch_create(g->r[i].r, &opts, &buf, NULL);
    GCHECK(g, rc == 0, "batch_create %d: %s (%s)", i, kith_strerror(rc), kith_errmsg(g->r[i].r));
    if (since)
        kith_vv_free(&vv);
    rc = kith_batch_apply(g->r[j].r, buf.data, buf.len, &info);
    kith_free(buf.data);
    GCHECK(g, rc == 0 || rc == KITH_EGAP, "batch_apply %d -> %d: %s (%s)", i, j, kith_strerror(rc),
           kith_errmsg(g->r[j].r));
    g->tombstones += nvoids(g->r[j].r);
    return info.ops_new > 0 || info.ops_applied > 0 || info.forks > 0;
}

/* The voids database of r, every key and value in order, as one malloc'd buffer. */
static uint8_t *
voids_bytes(kith_replica *r, size_t *len)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    uint8_t *out = NULL;
    size_t n = 0;

    cr_assert_eq(kith__mdb_begin(r, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_cursor_open(txn, r->voids, &c), 0);
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        out = realloc(out, n + k.mv_size + v.mv_size + 4);
        cr_assert_not_null(out);
        out[n++] = (uint8_t)k.mv_size;
        memcpy(out + n, k.mv_data, k.mv_size);
        n += k.mv_size;
        out[n++] = (uint8_t)(v.mv_size >> 8);
        out[n++] = (uint8_t)v.mv_size;
        memcpy(out + n, v.mv_data, v.mv_size);
        n += v.mv_size;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    *len = n;
    return out;
}

static void
gen_history(struct gen *g)
{
    g->r[GEN_F] = kt_new();
    for (int i = 2; i < GEN_REPLICAS; i++)
        g->r[i] = kt_new();
    for (int i = 0; i < GEN_REPLICAS; i++) {
        if (i == GEN_FP)
            continue;
        schema_declare(g->r[i].r);
        for (int j = i + 1; j < GEN_REPLICAS; j++)
            if (j != GEN_FP)
                kt_trust_pair(&g->r[i], &g->r[j]);
    }
    kith_txn *t = kt_wbegin(g->r[GEN_F].r);
    for (int k = 0; k < 3; k++) {
        kith_value v = kt_str("common");
        cr_assert_eq(kith_doc_create(t, "contacts", &g->docs[k]), 0);
        cr_assert_eq(kith_field_set(t, "contacts", &g->docs[k], "name", &v), 0);
        cr_assert_eq(kith_set_add(t, "contacts", &g->docs[k], "tags", "a", 1), 0);
    }
    kt_commit(t);
    for (int i = 2; i < GEN_REPLICAS; i++)
        kt_sync(&g->r[GEN_F], &g->r[i]);

    /* the fork, and the branches' scripts: one script for both one time in two */
    g->r[GEN_FP] = kt_copy_of(&g->r[GEN_F]);
    uint64_t script = kt_next(&g->rng);
    int ncommits = 1 + (int)kt_below(&g->rng, 3);
    gen_branch(g, GEN_F, script, ncommits);
    gen_branch(g, GEN_FP, kt_below(&g->rng, 2) ? script : kt_next(&g->rng),
               1 + (int)kt_below(&g->rng, 3));

    /* X and Y take a branch before anyone knows of the fork, and write */
    kt_sync(&g->r[kt_below(&g->rng, 2) ? GEN_F : GEN_FP], &g->r[GEN_X]);
    gen_honest(g, GEN_X);
    int ysrc = (int)kt_below(&g->rng, 3); /* F, F' or X */
    kt_sync(&g->r[ysrc == 2 ? GEN_X : ysrc], &g->r[GEN_Y]);
    gen_honest(g, GEN_Y);
    if (kt_below(&g->rng, 2))
        gen_honest(g, GEN_X);

    /* random deliveries to everyone but the writers, X and Y writing now and then */
    for (int step = 30 + (int)kt_below(&g->rng, 30); step > 0; step--) {
        int i = (int)kt_below(&g->rng, GEN_REPLICAS), j = 2 + (int)kt_below(&g->rng, 5);
        if (kt_below(&g->rng, 8) == 0) {
            gen_honest(g, kt_below(&g->rng, 2) ? GEN_X : GEN_Y);
            continue;
        }
        if (i != j)
            gen_deliver(g, i, j, kt_below(&g->rng, 2),
                        kt_below(&g->rng, 2) ? 0 : 1 + kt_below(&g->rng, 4));
    }
    /* the end: full rounds until nothing moves */
    for (int round = 0;; round++) {
        bool moved = false;
        GCHECK(g, round < 20, "no quiescence after 20 rounds");
        for (int i = 0; i < GEN_REPLICAS; i++)
            for (int j = 2; j < GEN_REPLICAS; j++)
                if (i != j)
                    moved |= gen_deliver(g, i, j, false, 0);
        if (!moved)
            break;
    }

    char *e0 = kt_export(g->r[2].r);
    size_t v0len, vlen;
    uint8_t *v0 = voids_bytes(g->r[2].r, &v0len);
    for (int i = 2; i < GEN_REPLICAS; i++) {
        kith_verify_report rep;
        int rc = kith_verify(g->r[i].r, &rep);
        GCHECK(g, rc == 0 && rep.problems == 0, "replica %d fails verify: %s", i,
               rc == 0 ? rep.first_problem : kith_strerror(rc));
        kith_hold *h = NULL;
        size_t nh = 0;
        GCHECK(g, kith_holds_get(g->r[i].r, &h, &nh) == 0 && nh == 0,
               "replica %d holds %zu commits waiting", i, nh);
        kith_holds_free(h, nh);
        char *e = kt_export(g->r[i].r);
        GCHECK(g, strcmp(e, e0) == 0, "replica %d's export differs from replica 2's", i);
        free(e);
        uint8_t *vb = voids_bytes(g->r[i].r, &vlen);
        GCHECK(g, vlen == v0len && (vlen == 0 || memcmp(vb, v0, vlen) == 0),
               "replica %d's tombstones differ from replica 2's", i);
        free(vb);
    }
    free(e0);
    free(v0);
    for (int i = 0; i < GEN_REPLICAS; i++)
        kt_free(&g->r[i]);
}

/* proves FORK-15, FORK-16, FORK-17, FORK-18 */
Test(voids, generated_histories_converge_whatever_the_order, .timeout = 600)
{
    uint64_t seed = kt_seed(), tombstones = 0;
    int cases = kt_cases(25);

    for (int h = 0; h < cases; h++) {
        struct gen *g = calloc(1, sizeof *g);
        cr_assert_not_null(g);
        g->seed = seed;
        g->history = h;
        g->rng = seed ^ ((uint64_t)h * 0x9e3779b97f4a7c15ull);
        gen_history(g);
        tombstones += g->tombstones;
        free(g);
    }
    fprintf(stderr, "voids: %d histories, %llu tombstones seen after deliveries\n", cases,
            (unsigned long long)tombstones);
    cr_assert_gt(tombstones, 0, "no history made a tombstone: the generator misses the case");
}
