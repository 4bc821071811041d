/*
 * test_groups_store.c — device groups in the store (store/group.c, store/devices.c;
 * spec/groups.md GRP-13 .. GRP-20): founding, adding and removing members on real replicas
 * with real signatures; ops relayed A -> B -> C with no pairwise trust; a removal racing an
 * add, delivered in generated interleavings, ending in the same members everywhere; a removed
 * key's ops beyond its cut-off set aside while honest runs in the same batch apply; ops taken
 * beyond a cut-off before the removal was known rolled back to the journal, also for a cut-off
 * that rises and falls again (GRP-21, GRP-22); a run of an origin not admitted yet set aside
 * rather than refusing the batch (GRP-23); forged
 * records and a removal signed by a non-member refused with nothing stored; the v1 and v2
 * fixtures' trust sets converted to groups; and the group surviving close and open and being
 * seen by a handle in another process.
 */
#include "kith.h"
#include "kith_test.h"
#include "kt_group.h"
#include "store.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define V1 KITH_SOURCE_DIR "/tests/data/v1"
#define V2 KITH_SOURCE_DIR "/tests/data/v2"

/* ---- helpers -------------------------------------------------------------------------- */

/* The group records a replica holds, copied out. */
struct recs {
    uint8_t *p[512];
    size_t len[512];
    size_t n;
};

static int
take_rec(void *ctx, const uint8_t *rec, size_t len)
{
    struct recs *s = ctx;

    cr_assert_lt(s->n, 512);
    s->p[s->n] = malloc(len);
    cr_assert_not_null(s->p[s->n]);
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

static struct recs
recs_of(kith_replica *r)
{
    struct recs s = {.n = 0};
    MDB_txn *txn;

    cr_assert_eq(kith__mdb_begin(r, MDB_RDONLY, &txn), 0);
    cr_assert_eq(kith__group_collect(r, txn, take_rec, &s), 0);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    return s;
}

/* Absorb records[from, from + n) into r in one write transaction; returns the code (and
 * commits only on success). */
static int
absorb(kith_replica *r, const struct recs *s, size_t from, size_t n, size_t *added)
{
    MDB_txn *txn;
    int rc;

    cr_assert_eq(kith__mdb_begin(r, 0, &txn), 0);
    rc = kith__group_absorb(r, txn, (const uint8_t *const *)s->p + from, s->len + from, n, added);
    if (rc == 0)
        cr_assert_eq(mdb_txn_commit(txn), 0);
    else
        mdb_txn_abort(txn);
    kith__mdb_end(r);
    return rc;
}

/* Send every record `from` holds to `to`. */
static void
push_records(kith_replica *from, kith_replica *to)
{
    struct recs s = recs_of(from);
    int rc = absorb(to, &s, 0, s.n, NULL);

    cr_assert_eq(rc, 0, "absorb: %s (%s)", kith_strerror(rc), kith_errmsg(to));
    recs_free(&s);
}

static kith_group_info
info_of(kith_replica *r)
{
    kith_group_info g;
    int rc = kith_group_get(r, &g);

    cr_assert_eq(rc, 0, "group_get: %s (%s)", kith_strerror(rc), kith_errmsg(r));
    return g;
}

/* Batch from `from` of what `to` lacks, applied to `to`: the apply's code, info in *info. */
static int
sync_rc(kith_replica *from, kith_replica *to, kith_apply_info *info)
{
    kith_batch_opts opts = {0};
    kith_vv vv = {0};
    kith_buf buf = {0};
    int rc;

    cr_assert_eq(kith_vv_get(to, &vv), 0);
    opts.since = &vv;
    rc = kith_batch_create(from, &opts, &buf, NULL);
    cr_assert_eq(rc, 0, "batch_create: %s (%s)", kith_strerror(rc), kith_errmsg(from));
    rc = kith_batch_apply(to, buf.data, buf.len, info);
    kith_free(buf.data);
    kith_vv_free(&vv);
    return rc;
}

static uint64_t
seq_of(kith_replica *r, uint64_t origin)
{
    kith_vv vv;
    uint64_t s = 0;

    cr_assert_eq(kith_vv_get(r, &vv), 0);
    for (size_t i = 0; i < vv.len; i++)
        if (vv.entries[i].origin == origin)
            s = vv.entries[i].seq;
    kith_vv_free(&vv);
    return s;
}

/* Every key and value of the groups database and meta "group", as one byte string. */
static char *
groups_dump(kith_replica *r, size_t *len)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    char *out = NULL;
    FILE *f = open_memstream(&out, len);

    cr_assert_not_null(f);
    cr_assert_eq(kith__mdb_begin(r, MDB_RDONLY, &txn), 0);
    cr_assert_eq(mdb_cursor_open(txn, r->groups, &c), 0);
    while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
        fwrite(k.mv_data, 1, k.mv_size, f);
        fwrite(v.mv_data, 1, v.mv_size, f);
    }
    mdb_cursor_close(c);
    if (kith__meta_get(r, txn, "group", &v) == 0)
        fwrite(v.mv_data, 1, v.mv_size, f);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    fclose(f);
    return out;
}

static size_t
count_devices(kith_replica *r, size_t *removed)
{
    kith_device *d = NULL;
    size_t n = 0, live = 0;

    cr_assert_eq(kith_devices_get(r, &d, &n), 0);
    *removed = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i].removed)
            (*removed)++;
        else
            live++;
    }
    kith_devices_free(d, n);
    return live;
}

/* ---- found, add, remove --------------------------------------------------------------- */

Test(groups_store, found_add_and_remove)
{
    struct kt_replica a = kt_new(), b = kt_new();
    uint8_t pa[32], pb[32];
    kith_device *d = NULL;
    size_t n = 0, removed;

    kith_replica_pubkey(a.r, pa);
    kith_replica_pubkey(b.r, pb);
    cr_assert_not(info_of(a.r).in_group, "a new replica is in no group");
    cr_assert_eq(kith_devices_get(a.r, &d, &n), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(kith_group_create(a.r, "", "laptop"), KITH_EINVAL);
    cr_assert_eq(kith_group_create(a.r, "home", "laptop"), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(kith_group_create(a.r, "home", "laptop"), KITH_EEXIST);
    cr_assert(strstr(kith_errmsg(a.r), "in group") != NULL, "%s", kith_errmsg(a.r));

    kith_group_info g = info_of(a.r);
    cr_assert(g.in_group);
    cr_assert_str_eq(g.name, "home");
    cr_assert_eq(strlen(g.id), KITH_GROUP_ID_HEX);
    cr_assert_eq(g.members, 1);
    cr_assert_eq(g.records, 1);

    kt_admit(a.r, b.r, "phone");
    kith_group_info gb = info_of(b.r);
    cr_assert_str_eq(gb.id, g.id, "the joiner is in the founder's group");
    cr_assert_eq(gb.members, 2);
    cr_assert_eq(memcmp(gb.digest, info_of(a.r).digest, 32), 0, "same records, same digest");
    cr_assert(kith_is_trusted(a.r, pb), "a member is admitted with no pairwise trust");
    cr_assert(kith_is_trusted(b.r, pa));

    cr_assert_eq(kith_devices_get(b.r, &d, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(d[0].name, "laptop");
    cr_assert_eq(d[0].id, kith_replica_id(a.r));
    cr_assert_eq(d[0].added_by, kith_replica_id(a.r), "the founder added itself");
    cr_assert_not(d[0].self);
    cr_assert_str_eq(d[1].name, "phone");
    cr_assert_eq(d[1].added_by, kith_replica_id(a.r));
    cr_assert(d[1].self);
    cr_assert_gt(d[1].added_ms, 0);
    cr_assert_not(d[1].removed);
    kith_devices_free(d, n);

    /* a sync with a member that has no peer record is recorded: it is last seen then */
    cr_assert_eq(kith_peer_record(b.r, kith_replica_id(a.r), NULL, 0, NULL), 0, "%s",
                 kith_errmsg(b.r));
    cr_assert_eq(kith_peer_record(b.r, 0x1234, NULL, 0, NULL), KITH_ENOTFOUND);
    cr_assert_eq(kith_devices_get(b.r, &d, &n), 0);
    cr_assert_gt(d[0].last_seen_ms, 0);
    cr_assert_eq(d[1].last_seen_ms, 0, "this replica is never seen");
    kith_devices_free(d, n);
    kith_peer *peers = NULL;
    size_t np = 0;
    cr_assert_eq(kith_peers_get(b.r, &peers, &np), 0);
    cr_assert_eq(np, 1);
    cr_assert_not(peers[0].trusted, "a member's record adds no pairwise trust");
    kith_peers_free(peers, np);
    cr_assert(kith_is_trusted(b.r, pa));

    /* adding again, or a key of the group, is refused */
    MDB_txn *txn;
    cr_assert_eq(kith__mdb_begin(a.r, 0, &txn), 0);
    cr_assert_eq(kith__group_add_member(a.r, txn, pb, "again", 5), KITH_EEXIST);
    mdb_txn_abort(txn);
    kith__mdb_end(a.r);

    /* b writes; a takes it; a removes b with the cut-off at what it holds */
    kt_contact(b.r, "Ada");
    kith_apply_info info;
    cr_assert_eq(sync_rc(b.r, a.r, &info), 0, "%s", kith_errmsg(a.r));
    uint64_t held = seq_of(a.r, kith_replica_id(b.r));
    cr_assert_gt(held, 0);
    cr_assert_eq(kith_device_remove(a.r, kith_replica_id(b.r)), 0, "%s", kith_errmsg(a.r));
    cr_assert_not(kith_is_trusted(a.r, pb), "a removed member is not admitted");
    cr_assert_eq(kith_device_remove(a.r, kith_replica_id(b.r)), KITH_ENOTFOUND);
    cr_assert(strstr(kith_errmsg(a.r), "removed already") != NULL, "%s", kith_errmsg(a.r));
    cr_assert_eq(kith_device_remove(a.r, 0x1234), KITH_ENOTFOUND);
    cr_assert(strstr(kith_errmsg(a.r), "no member") != NULL, "%s", kith_errmsg(a.r));
    cr_assert_eq(count_devices(a.r, &removed), 1);
    cr_assert_eq(removed, 1);
    cr_assert_eq(kith_devices_get(a.r, &d, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert(d[1].removed);
    cr_assert_eq(d[1].cutoff, held, "the cut-off is the highest seq of it a holds");
    kith_devices_free(d, n);

    /* a removed key never returns */
    cr_assert_eq(kith__mdb_begin(a.r, 0, &txn), 0);
    cr_assert_eq(kith__group_add_member(a.r, txn, pb, "phone", 5), KITH_EEXIST);
    cr_assert(strstr(kith_errmsg(a.r), "never returns") != NULL, "%s", kith_errmsg(a.r));
    mdb_txn_abort(txn);
    kith__mdb_end(a.r);

    /* b learns it: it says so, and writes nothing more (GRP-16) */
    push_records(a.r, b.r);
    kith_group_info rb = info_of(b.r);
    cr_assert(rb.self_removed);
    cr_assert_eq(rb.self_cutoff, held);
    kith_txn *t = NULL;
    kith_docid doc;
    cr_assert_eq(kith_txn_begin(b.r, KITH_TXN_WRITE, &t), 0);
    int rc = kith_doc_create(t, "contacts", &doc);
    if (rc == 0) {
        kith_value v = kt_str("Bob");
        rc = kith_field_set(t, "contacts", &doc, "name", &v);
    }
    if (rc == 0)
        rc = kith_txn_commit(&t);
    else
        kith_txn_abort(&t);
    cr_assert_eq(rc, KITH_EUNTRUSTED, "a removed replica's write: %s", kith_strerror(rc));
    cr_assert(strstr(kith_errmsg(b.r), "removed from group") != NULL, "%s", kith_errmsg(b.r));
    cr_assert_eq(kith_device_remove(b.r, kith_replica_id(a.r)), KITH_EINVAL);
    kt_free(&a);
    kt_free(&b);
}

Test(groups_store, joining_a_second_group_is_refused)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new(), d = kt_new();
    uint8_t gid[16], digest[32];

    cr_assert_eq(kith_group_create(a.r, "one", "a"), 0);
    kt_admit(a.r, b.r, "b");
    cr_assert_eq(kith_group_create(c.r, "two", "c"), 0);
    kt_admit(c.r, d.r, "d");
    /* c adds b's key in its group; b, in group one with a, cannot adopt group two */
    uint8_t pb[32];
    kith_replica_pubkey(b.r, pb);
    MDB_txn *txn;
    cr_assert_eq(kith__mdb_begin(c.r, 0, &txn), 0);
    cr_assert_eq(kith__group_add_member(c.r, txn, pb, "b", 1), 0);
    cr_assert_eq(kith__group_summary(c.r, txn, gid, digest), 1);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(c.r);
    struct recs s = recs_of(c.r);
    size_t before_len, after_len;
    char *before = groups_dump(b.r, &before_len);
    cr_assert_eq(kith__mdb_begin(b.r, 0, &txn), 0);
    int rc = kith__group_adopt(b.r, txn, gid, (const uint8_t *const *)s.p, s.len, s.n);
    mdb_txn_abort(txn);
    kith__mdb_end(b.r);
    cr_assert_eq(rc, KITH_EEXIST);
    cr_assert(strstr(kith_errmsg(b.r), "1 other device") != NULL, "%s", kith_errmsg(b.r));
    char *after = groups_dump(b.r, &after_len);
    cr_assert(before_len == after_len && memcmp(before, after, before_len) == 0);
    free(before);
    free(after);

    /* records of group two are skipped by a member of group one */
    size_t added = 99;
    cr_assert_eq(absorb(b.r, &s, 0, s.n, &added), 0);
    cr_assert_eq(added, 0);
    /* records that do not admit the adopter are refused */
    struct kt_replica e = kt_new();
    cr_assert_eq(kith__mdb_begin(e.r, 0, &txn), 0);
    rc = kith__group_adopt(e.r, txn, gid, (const uint8_t *const *)s.p, s.len, s.n);
    mdb_txn_abort(txn);
    kith__mdb_end(e.r);
    cr_assert_eq(rc, KITH_EUNTRUSTED);
    cr_assert(strstr(kith_errmsg(e.r), "no live ADD") != NULL, "%s", kith_errmsg(e.r));
    /* a group of the replica alone is left for the one it joins */
    cr_assert_eq(kith_group_create(e.r, "alone", "e"), 0);
    kt_admit(c.r, e.r, "e");
    cr_assert_eq(memcmp(info_of(e.r).digest, info_of(c.r).digest, 32), 0);
    recs_free(&s);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
    kt_free(&d);
    kt_free(&e);
}

/* ---- relay ---------------------------------------------------------------------------- */

Test(groups_store, relay_through_a_member_with_no_pairwise_trust)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new(), x = kt_new();
    kith_apply_info info;
    kith_peer *peers = NULL;
    size_t n = 0;
    char buf[64];

    cr_assert_eq(kith_group_create(a.r, "home", "a"), 0);
    kt_admit(a.r, b.r, "b");
    kt_admit(a.r, c.r, "c");
    push_records(a.r, b.r); /* b learns of c */
    kith_docid doc = kt_contact(a.r, "Ada");
    (void)info_of(b.r); /* b's fold is current */
    uint64_t folds = b.r->group_folds;
    cr_assert_eq(sync_rc(a.r, b.r, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_gt(info.ops_applied, 0);
    cr_assert_eq(b.r->group_folds, folds, "a batch that brings no record does not refold");
    /* c has never heard from a: the batch comes from b, a's ops inside */
    cr_assert_eq(sync_rc(b.r, c.r, &info), 0, "%s", kith_errmsg(c.r));
    cr_assert_gt(info.ops_applied, 0);
    cr_assert_str_eq(kt_get_str(c.r, "contacts", &doc, "name", buf, sizeof buf), "Ada");
    cr_assert_eq(kith_peers_get(c.r, &peers, &n), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_not(peers[i].trusted, "no pairwise trust was added");
    kith_peers_free(peers, n);
    /* verify finds a's key in the group, with no peer record of a: a's head is checked */
    kith_verify_report rep;
    cr_assert_eq(kith_verify(c.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    cr_assert_geq(rep.signatures_checked, 1);
    /* a replica outside the group refuses the same batch, naming why */
    int rc = sync_rc(b.r, x.r, &info);
    cr_assert_eq(rc, KITH_EUNTRUSTED);
    cr_assert(strstr(kith_errmsg(x.r), "nor a member") != NULL, "%s", kith_errmsg(x.r));
    cr_assert_eq(seq_of(x.r, kith_replica_id(a.r)), 0);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
    kt_free(&x);
}

/* ---- a removed key's ops beyond its cut-off -------------------------------------------- */

Test(groups_store, removed_ops_beyond_cutoff_set_aside_honest_runs_apply)
{
    struct kt_replica f = kt_new(), x = kt_new(), y = kt_new();
    kith_apply_info info;
    char buf[64];

    cr_assert_eq(kith_group_create(f.r, "home", "f"), 0);
    kt_admit(f.r, x.r, "x");
    kt_admit(f.r, y.r, "y");
    push_records(f.r, x.r);
    push_records(f.r, y.r);
    kt_contact(x.r, "before");
    cr_assert_eq(sync_rc(x.r, f.r, &info), 0, "%s", kith_errmsg(f.r));
    cr_assert_eq(sync_rc(x.r, y.r, &info), 0, "%s", kith_errmsg(y.r));
    uint64_t cut = seq_of(f.r, kith_replica_id(x.r));
    cr_assert_eq(kith_device_remove(f.r, kith_replica_id(x.r)), 0, "%s", kith_errmsg(f.r));
    /* x, not knowing, writes on; y, not knowing either, takes it */
    kith_docid late = kt_contact(x.r, "after the removal");
    cr_assert_eq(sync_rc(x.r, y.r, &info), 0, "%s", kith_errmsg(y.r));
    cr_assert_gt(seq_of(y.r, kith_replica_id(x.r)), cut);
    kith_docid honest = kt_contact(y.r, "honest");
    /* y relays both runs to f: x's beyond its cut-off is set aside, y's applies */
    cr_assert_eq(sync_rc(y.r, f.r, &info), 0, "%s", kith_errmsg(f.r));
    cr_assert_eq(info.cut_off, 1);
    cr_assert_gt(info.ops_applied, 0);
    cr_assert(strstr(kith_errmsg(f.r), "removed from the group") != NULL, "%s", kith_errmsg(f.r));
    cr_assert_eq(seq_of(f.r, kith_replica_id(x.r)), cut, "nothing of x beyond its cut-off");
    cr_assert_str_eq(kt_get_str(f.r, "contacts", &honest, "name", buf, sizeof buf), "honest");
    kith_txn *t = kt_rbegin(f.r);
    kith_value v;
    int rc = kith_field_get(t, "contacts", &late, "name", &v);
    cr_assert(rc != 0 || v.type != KITH_TYPE_STRING, "the late contact is not at f");
    kith_txn_abort(&t);
    /* and x can no longer connect or send: its batch is refused at the sender check */
    cr_assert_eq(sync_rc(x.r, f.r, &info), KITH_EUNTRUSTED);
    /* a batch from y again sets the run aside again, and stays harmless */
    cr_assert_eq(sync_rc(y.r, f.r, &info), 0, "%s", kith_errmsg(f.r));
    cr_assert_eq(seq_of(f.r, kith_replica_id(x.r)), cut);
    /* once y knows of the removal, its batches carry x's ops only up to the cut-off */
    struct kt_replica w = kt_new();
    kt_admit(f.r, w.r, "w");
    push_records(f.r, y.r);
    cr_assert_eq(sync_rc(y.r, w.r, &info), 0, "%s", kith_errmsg(w.r));
    cr_assert_eq(info.cut_off, 0, "y sent nothing beyond the cut-off");
    cr_assert_eq(seq_of(w.r, kith_replica_id(x.r)), cut, "and everything up to it");
    cr_assert_gt(seq_of(w.r, kith_replica_id(y.r)), 0);
    kt_free(&w);
    kt_free(&f);
    kt_free(&x);
    kt_free(&y);
}

/* ---- rollback: ops applied beyond a cut-off before the removal was known (GRP-21) ----- */

/* Ops of `origin` in r's journal: every commit of it there starts beyond `after`, and no
 * other origin's is there. */
static uint64_t
journal_ops(kith_replica *r, uint64_t origin, uint64_t after)
{
    kith_txn *t = kt_rbegin(r);
    kith_iter *it = NULL;
    kith_journal_op op;
    uint64_t n = 0;
    int rc;

    cr_assert_eq(kith_iter_journal(t, 0, &it), 0);
    while ((rc = kith_iter_next_journal(it, &op)) == 0) {
        cr_assert_eq(op.commit.origin, origin, "only the removed origin's ops are set aside");
        cr_assert_gt(op.commit.seq, after, "a commit within the cut-off was set aside");
        n++;
    }
    cr_assert_eq(rc, KITH_ENOTFOUND);
    kith_iter_close(it);
    kith_txn_abort(&t);
    return n;
}

static void
verify_clean(kith_replica *r)
{
    kith_verify_report rep;
    int rc = kith_verify(r, &rep);

    cr_assert_eq(rc, 0, "verify: %s (%s)", kith_strerror(rc), kith_errmsg(r));
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
}

static void
same_export(kith_replica *a, kith_replica *b, const char *what)
{
    char *ea = kt_export(a), *eb = kt_export(b);

    cr_assert_str_eq(ea, eb, "%s", what);
    free(ea);
    free(eb);
}

Test(groups_store, ops_beyond_a_cutoff_applied_before_the_removal_are_rolled_back)
{
    struct kt_replica a = kt_new(), b = kt_new(), x = kt_new(), y = kt_new();
    kith_apply_info info;
    char buf[64];

    cr_assert_eq(kith_group_create(a.r, "home", "a"), 0);
    kt_admit(a.r, b.r, "b");
    kt_admit(a.r, x.r, "x");
    kt_admit(a.r, y.r, "y");
    push_records(a.r, b.r);
    push_records(a.r, x.r);
    uint64_t bid = kith_replica_id(b.r);
    for (int i = 0; i < 5; i++)
        kt_contact(b.r, "kept");
    cr_assert_eq(sync_rc(b.r, a.r, &info), 0, "%s", kith_errmsg(a.r));
    uint64_t cut = seq_of(a.r, bid);
    cr_assert_eq(kith_device_remove(a.r, bid), 0, "%s", kith_errmsg(a.r));
    /* b writes on, not knowing; x takes all of it and writes over it, not knowing either */
    kith_docid late[5];
    for (int i = 0; i < 5; i++)
        late[i] = kt_contact(b.r, "beyond the cut-off");
    cr_assert_eq(sync_rc(b.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    uint64_t end = seq_of(x.r, bid);
    cr_assert_gt(end, cut);
    kt_set_str(x.r, "contacts", &late[4], "name", "renamed by x");
    kith_docid mine = kt_contact(x.r, "x's own");
    /* y only ever sees b's ops up to the cut-off, from a */
    cr_assert_eq(sync_rc(a.r, y.r, &info), 0, "%s", kith_errmsg(y.r));
    cr_assert_eq(seq_of(y.r, bid), cut);
    /* x learns of the removal from a batch of a's: what it held beyond the cut-off goes; x
     * took b's ops in one run ending beyond it, so it held no head b signed at the cut-off,
     * but the removal came with b's head there (a CUTHEAD, GRP-24): x keeps b's ops exactly
     * up to the cut-off (GRP-25) */
    cr_assert_eq(sync_rc(a.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(seq_of(x.r, bid), cut, "x keeps b's ops up to the cut-off");
    cr_assert_eq(journal_ops(x.r, bid, cut), end - cut, "b's later ops are in x's journal");
    verify_clean(x.r);
    /* x's own commit over a rolled-back op waited for b up to the cut-off only */
    cr_assert_eq(sync_rc(a.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(seq_of(x.r, bid), cut, "x holds b's ops up to the cut-off");
    cr_assert_eq(info.ops_pending, 0, "x's commit over a rolled-back op waits no longer");
    cr_assert_str_eq(kt_get_str(x.r, "contacts", &mine, "name", buf, sizeof buf), "x's own");
    verify_clean(x.r);
    /* x and y exchange: both now hold the same ops, and states equal byte for byte */
    cr_assert_eq(sync_rc(x.r, y.r, &info), 0, "%s", kith_errmsg(y.r));
    cr_assert_eq(info.cut_off, 0, "x sends nothing beyond the cut-off");
    cr_assert_eq(info.ops_pending, 0, "y waits for none of b's ops beyond the cut-off");
    cr_assert_eq(sync_rc(y.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(sync_rc(x.r, a.r, &info), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(seq_of(y.r, bid), cut);
    same_export(x.r, y.r, "x rolled back equals y that never held b's late ops");
    same_export(x.r, a.r, "and a");
    verify_clean(y.r);
    verify_clean(a.r);
    /* the journal stays, a later batch rolls nothing back twice */
    cr_assert_eq(sync_rc(y.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(journal_ops(x.r, bid, cut), end - cut);
    cr_assert_eq(journal_ops(y.r, bid, 0), 0);
    cr_assert_eq(seq_of(x.r, bid), cut);
    kt_free(&a);
    kt_free(&b);
    kt_free(&x);
    kt_free(&y);
}

/* GRP-24, GRP-25: x took b's ops 1..end in one run, so it holds no head b signed at the
 * cut-off; the removal comes to x with b's head at the cut-off (a CUTHEAD the remover signed
 * in the removal's transaction), outside any batch, and the next apply keeps b's ops exactly
 * up to the cut-off. x can relay them: a fresh member y that hears of b only from x ends with
 * the same ops and the same state. */
Test(groups_store, the_head_at_the_cutoff_travels_with_the_removal)
{
    struct kt_replica a = kt_new(), b = kt_new(), x = kt_new(), y = kt_new();
    kith_apply_info info;

    cr_assert_eq(kith_group_create(a.r, "home", "a"), 0);
    kt_admit(a.r, b.r, "b");
    kt_admit(a.r, x.r, "x");
    kt_admit(a.r, y.r, "y");
    push_records(a.r, b.r);
    push_records(a.r, x.r);
    uint64_t bid = kith_replica_id(b.r);
    for (int i = 0; i < 5; i++)
        kt_contact(b.r, "kept");
    cr_assert_eq(sync_rc(b.r, a.r, &info), 0, "%s", kith_errmsg(a.r));
    uint64_t cut = seq_of(a.r, bid);
    cr_assert_gt(cut, 1);
    size_t before = info_of(a.r).records;
    cr_assert_eq(kith_device_remove(a.r, bid), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(info_of(a.r).records, before + 2, "a REMOVE and its CUTHEAD");
    for (int i = 0; i < 5; i++)
        kt_contact(b.r, "beyond the cut-off");
    cr_assert_eq(sync_rc(b.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    uint64_t end = seq_of(x.r, bid);
    cr_assert_gt(end, cut);
    /* the records only, then any apply: x keeps 1..cut, the rest goes to its journal */
    push_records(a.r, x.r);
    cr_assert_eq(kith_holds_apply(x.r, NULL), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(seq_of(x.r, bid), cut, "x keeps b's ops exactly up to the cut-off");
    cr_assert_eq(journal_ops(x.r, bid, cut), end - cut);
    verify_clean(x.r);
    /* y hears of b from x alone */
    cr_assert_eq(sync_rc(x.r, y.r, &info), 0, "%s", kith_errmsg(y.r));
    cr_assert_eq(info.cut_off, 0, "x sends nothing beyond the cut-off");
    cr_assert_eq(info.ops_pending, 0);
    cr_assert_eq(seq_of(y.r, bid), cut, "x relays b's ops up to the cut-off");
    same_export(x.r, y.r, "y, which only ever heard of b from x");
    same_export(x.r, a.r, "and a, the remover");
    verify_clean(y.r);
    kt_free(&a);
    kt_free(&b);
    kt_free(&x);
    kt_free(&y);
}

/* GRP-24, GRP-18: a CUTHEAD whose head the member did not sign (here signed by the remover
 * itself) is a bad signature: taking it fails with KITH_EBADSIG, and nothing of the call is
 * stored, the good records beside it included. */
Test(groups_store, a_forged_head_in_a_cuthead_is_refused)
{
    struct kt_replica a = kt_new(), b = kt_new(), x = kt_new();
    kith_apply_info info;
    struct kith__group_rec rec, rm = {0};
    struct kith__wbuf out = {0};
    uint8_t parent[KITH_HASH_BYTES] = {0}, h[KITH_HASH_BYTES];

    cr_assert_eq(kith_group_create(a.r, "home", "a"), 0);
    kt_admit(a.r, b.r, "b");
    kt_admit(a.r, x.r, "x");
    kt_contact(b.r, "b's");
    cr_assert_eq(sync_rc(b.r, a.r, &info), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(kith_device_remove(a.r, kith_replica_id(b.r)), 0, "%s", kith_errmsg(a.r));
    struct recs s = recs_of(a.r);
    for (size_t i = 0; i < s.n; i++)
        if (kith__group_decode(s.p[i], s.len[i], &rec, NULL, 0) == 0 &&
            rec.kind == KITH__GROUP_REMOVE) {
            rm = rec;
            kith__group_hash(s.p[i], s.len[i], parent);
        }
    cr_assert_eq(rm.kind, KITH__GROUP_REMOVE);
    memset(&rec, 0, sizeof rec);
    rec.kind = KITH__GROUP_CUTHEAD;
    memcpy(rec.group, rm.group, sizeof rec.group);
    memcpy(rec.author, rm.author, KITH_PUBKEY_BYTES);
    rec.parents = parent;
    rec.nparents = 1;
    rec.time_ms = rm.time_ms + 1;
    memcpy(rec.member, rm.member, KITH_PUBKEY_BYTES);
    rec.cutoff = rm.cutoff;
    memset(rec.chain, 0x33, sizeof rec.chain);
    kith__head_sign(a.r->sk, kith_replica_id(b.r), rec.cutoff, rec.chain, rec.head_sig);
    cr_assert_eq(kith__group_build(&rec, a.r->sk, &out, h), 0);
    cr_assert_lt(s.n, 512);
    s.p[s.n] = out.data; /* recs_free frees it */
    s.len[s.n++] = out.len;
    size_t before = info_of(x.r).records;
    int rc = absorb(x.r, &s, 0, s.n, NULL);
    cr_assert_eq(rc, KITH_EBADSIG, "%s (%s)", kith_strerror(rc), kith_errmsg(x.r));
    cr_assert(strstr(kith_errmsg(x.r), "head signature") != NULL, "%s", kith_errmsg(x.r));
    cr_assert_eq(info_of(x.r).records, before, "nothing of the call stored");
    cr_assert_eq(info_of(x.r).removed, 0);
    /* without it, the same records are taken */
    s.n--;
    free(out.data);
    cr_assert_eq(absorb(x.r, &s, 0, s.n, NULL), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(info_of(x.r).records, s.n);
    recs_free(&s);
    kt_free(&a);
    kt_free(&b);
    kt_free(&x);
}

Test(groups_store, a_cutoff_that_moves_is_followed_up_and_down)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new(), x = kt_new(), y = kt_new();
    kith_apply_info info;

    cr_assert_eq(kith_group_create(a.r, "home", "a"), 0);
    kt_admit(a.r, b.r, "b");
    kt_admit(a.r, c.r, "c");
    kt_admit(a.r, x.r, "x");
    kt_admit(a.r, y.r, "y");
    push_records(a.r, b.r);
    push_records(a.r, c.r);
    push_records(a.r, x.r);
    uint64_t bid = kith_replica_id(b.r), cid = kith_replica_id(c.r);
    kt_contact(b.r, "b1");
    kt_contact(b.r, "b2");
    cr_assert_eq(sync_rc(b.r, a.r, &info), 0, "%s", kith_errmsg(a.r));
    uint64_t cut1 = seq_of(a.r, bid);
    cr_assert_eq(kith_device_remove(a.r, bid), 0, "%s", kith_errmsg(a.r));
    kith_docid b3 = kt_contact(b.r, "b3");
    kt_contact(b.r, "b4");
    cr_assert_eq(sync_rc(b.r, c.r, &info), 0, "%s", kith_errmsg(c.r));
    uint64_t cut2 = seq_of(c.r, bid);
    /* c removes b too, concurrently, having taken more of it: the cut-off is the higher */
    cr_assert_eq(kith_device_remove(c.r, bid), 0, "%s", kith_errmsg(c.r));
    kith_docid b5 = kt_contact(b.r, "b5");
    cr_assert_eq(sync_rc(b.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    uint64_t end = seq_of(x.r, bid);
    cr_assert(cut1 < cut2 && cut2 < end);
    /* x writes over ops on both sides of the lower cut-off */
    kt_set_str(x.r, "contacts", &b3, "name", "b3 by x");
    kt_set_str(x.r, "contacts", &b5, "name", "b5 by x");
    /* x learns of a's removal first: down to cut1, where b's head came with the removal */
    cr_assert_eq(sync_rc(a.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(seq_of(x.r, bid), cut1);
    verify_clean(x.r);
    cr_assert_eq(sync_rc(a.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(seq_of(x.r, bid), cut1);
    verify_clean(x.r);
    /* then of c's, with c's ops of b up to cut2: up to cut2, from c */
    cr_assert_eq(sync_rc(c.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(seq_of(x.r, bid), cut2, "the higher cut-off: b's ops up to it come back");
    cr_assert_eq(info.ops_pending, 0);
    verify_clean(x.r);
    /* y sees b only through c and a, never beyond cut2 */
    cr_assert_eq(sync_rc(c.r, y.r, &info), 0, "%s", kith_errmsg(y.r));
    cr_assert_eq(sync_rc(a.r, y.r, &info), 0, "%s", kith_errmsg(y.r));
    cr_assert_eq(sync_rc(x.r, y.r, &info), 0, "%s", kith_errmsg(y.r));
    cr_assert_eq(sync_rc(y.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(seq_of(y.r, bid), cut2);
    same_export(x.r, y.r, "after the cut-off rose");
    /* a removes c, not having seen c's removal of b: that removal is overtaken, void, and the
     * cut-off falls back to a's (GRP-10) */
    cr_assert_eq(kith_device_remove(a.r, cid), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(sync_rc(a.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(seq_of(x.r, bid), cut1, "down again to cut1");
    cr_assert_eq(sync_rc(a.r, y.r, &info), 0, "%s", kith_errmsg(y.r));
    cr_assert_eq(seq_of(y.r, bid), cut1, "b's head at cut1 came with a's removal");
    cr_assert_eq(journal_ops(y.r, bid, cut1), cut2 - cut1);
    cr_assert_eq(sync_rc(a.r, y.r, &info), 0, "%s", kith_errmsg(y.r));
    cr_assert_eq(seq_of(y.r, bid), cut1);
    cr_assert_eq(sync_rc(x.r, y.r, &info), 0, "%s", kith_errmsg(y.r));
    cr_assert_eq(sync_rc(y.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(sync_rc(x.r, a.r, &info), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(sync_rc(a.r, x.r, &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(seq_of(a.r, bid), cut1);
    same_export(x.r, y.r, "after the cut-off fell");
    same_export(x.r, a.r, "a, which never held b beyond cut1");
    verify_clean(x.r);
    verify_clean(y.r);
    verify_clean(a.r);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
    kt_free(&x);
    kt_free(&y);
}

/* A batch whose sender is admitted but one of whose origins is not (yet): a peer outside the
 * group, trusted pairwise, relays ops of a key the group has not admitted. The run is set
 * aside and the sender's own ops apply (not a refusal of the whole batch, which would stop
 * everything that sender sends); once the key is admitted, its ops come with the next batch. */
Test(groups_store, a_run_of_an_origin_not_admitted_yet_is_set_aside_not_refused)
{
    struct kt_replica r = kt_new(), p = kt_new(), o = kt_new();
    kith_apply_info info;
    uint8_t po[KITH_PUBKEY_BYTES];
    char buf[64];

    cr_assert_eq(kith_group_create(r.r, "home", "r"), 0);
    kt_trust_pair(&r, &p); /* p: linked pairwise, outside the group */
    kt_trust_pair(&p, &o); /* o: trusted by p only */
    kith_docid od = kt_contact(o.r, "o's");
    cr_assert_eq(sync_rc(o.r, p.r, &info), 0, "%s", kith_errmsg(p.r));
    kith_docid pd = kt_contact(p.r, "p's");
    cr_assert_eq(sync_rc(p.r, r.r, &info), 0, "%s", kith_errmsg(r.r));
    cr_assert(strstr(kith_errmsg(r.r), "set aside") != NULL, "%s", kith_errmsg(r.r));
    cr_assert_eq(seq_of(r.r, kith_replica_id(o.r)), 0, "nothing of o");
    cr_assert_gt(seq_of(r.r, kith_replica_id(p.r)), 0, "p's own ops applied");
    cr_assert_str_eq(kt_get_str(r.r, "contacts", &pd, "name", buf, sizeof buf), "p's");
    verify_clean(r.r);
    /* o is admitted: the same kind of batch brings its ops */
    kith_replica_pubkey(o.r, po);
    MDB_txn *txn;
    cr_assert_eq(kith__mdb_begin(r.r, 0, &txn), 0);
    cr_assert_eq(kith__group_add_member(r.r, txn, po, "o", 1), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(r.r);
    cr_assert_eq(sync_rc(p.r, r.r, &info), 0, "%s", kith_errmsg(r.r));
    cr_assert_gt(seq_of(r.r, kith_replica_id(o.r)), 0);
    cr_assert_str_eq(kt_get_str(r.r, "contacts", &od, "name", buf, sizeof buf), "o's");
    verify_clean(r.r);
    /* outside a group the batch is refused whole, as it always was */
    struct kt_replica q = kt_new();
    kt_trust_pair(&q, &p);
    cr_assert_eq(sync_rc(p.r, q.r, &info), KITH_EUNTRUSTED);
    cr_assert_eq(seq_of(q.r, kith_replica_id(p.r)), 0);
    kt_free(&q);
    kt_free(&r);
    kt_free(&p);
    kt_free(&o);
}

/* ---- bad input ------------------------------------------------------------------------ */

Test(groups_store, forged_record_and_non_member_removal_refused_nothing_stored)
{
    struct kt_replica a = kt_new(), b = kt_new(), n = kt_new();
    size_t before_len, after_len, added = 7;
    char *before, *after;
    uint8_t gid[16], digest[32], pb[32];
    MDB_txn *txn;

    cr_assert_eq(kith_group_create(a.r, "home", "a"), 0);
    kt_admit(a.r, b.r, "b");
    /* b adds a device; a receives that record with one bit flipped, beside a good one */
    struct kt_replica c = kt_new();
    uint8_t pc[32];
    kith_replica_pubkey(c.r, pc);
    cr_assert_eq(kith__mdb_begin(b.r, 0, &txn), 0);
    cr_assert_eq(kith__group_add_member(b.r, txn, pc, "c", 1), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(b.r);
    struct recs s = recs_of(b.r);
    before = groups_dump(a.r, &before_len);
    for (size_t bit = 0; bit < 2; bit++) {
        for (size_t i = 0; i < s.n; i++) {
            struct recs one = {.n = 0};
            one.p[0] = malloc(s.len[i]);
            memcpy(one.p[0], s.p[i], s.len[i]);
            one.len[0] = s.len[i];
            /* the signature's last byte, or a byte of the name near the encoding's end */
            one.p[0][bit == 0 ? s.len[i] - 1 : s.len[i] - 65] ^= 0x01;
            one.n = 1;
            int rc = absorb(a.r, &one, 0, 1, &added);
            if (rc == 0) {
                /* a FOUND with other bytes founds another group: skipped, not stored */
                struct kith__group_rec dec;
                cr_assert_eq(kith__group_decode(s.p[i], s.len[i], &dec, NULL, 0), 0);
                cr_assert_eq(dec.kind, KITH__GROUP_FOUND);
                cr_assert_eq(added, 0);
                recs_free(&one);
                continue;
            }
            cr_assert(rc == KITH_EBADSIG || rc == KITH_EMALFORMED, "%s", kith_strerror(rc));
            cr_assert(strstr(kith_errmsg(a.r), "group record") != NULL, "%s", kith_errmsg(a.r));
            recs_free(&one);
        }
    }
    /* a batch with every good record and one forged one stores nothing */
    struct recs all = recs_of(b.r);
    size_t add_i = all.n;
    for (size_t i = 0; i < all.n; i++) {
        struct kith__group_rec dec;
        cr_assert_eq(kith__group_decode(all.p[i], all.len[i], &dec, NULL, 0), 0);
        if (dec.kind == KITH__GROUP_ADD)
            add_i = i;
    }
    cr_assert_lt(add_i, all.n);
    all.p[all.n] = malloc(all.len[add_i]);
    memcpy(all.p[all.n], all.p[add_i], all.len[add_i]);
    all.len[all.n] = all.len[add_i];
    all.p[all.n][all.len[add_i] - 1] ^= 0x80;
    all.n++;
    cr_assert_eq(absorb(a.r, &all, 0, all.n, &added), KITH_EBADSIG);
    after = groups_dump(a.r, &after_len);
    cr_assert(before_len == after_len && memcmp(before, after, before_len) == 0,
              "a refused call stores nothing");
    free(before);
    free(after);
    recs_free(&all);

    /* n, not a member, signs a REMOVE of b in a's group with a's heads as parents */
    cr_assert_eq(kith__mdb_begin(a.r, MDB_RDONLY, &txn), 0);
    cr_assert_eq(kith__group_summary(a.r, txn, gid, digest), 1);
    mdb_txn_abort(txn);
    kith__mdb_end(a.r);
    struct recs ar = recs_of(a.r);
    uint8_t parent[32];
    kith__group_hash(ar.p[0], ar.len[0], parent);
    struct kith__group_rec rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = KITH__GROUP_REMOVE;
    memcpy(rec.group, gid, 16);
    kith_replica_pubkey(n.r, rec.author);
    kith_replica_pubkey(b.r, pb);
    memcpy(rec.member, pb, 32);
    rec.nparents = 1;
    rec.parents = parent;
    rec.time_ms = 1;
    struct kith__wbuf w = {0};
    uint8_t h[32];
    cr_assert_eq(kith__group_build(&rec, n.r->sk, &w, h), 0);
    struct recs bad = {.n = 1};
    bad.p[0] = w.data;
    bad.len[0] = w.len;
    before = groups_dump(a.r, &before_len);
    int rc = absorb(a.r, &bad, 0, 1, &added);
    cr_assert_eq(rc, KITH_EUNTRUSTED);
    cr_assert(strstr(kith_errmsg(a.r), "notmember") != NULL, "%s", kith_errmsg(a.r));
    after = groups_dump(a.r, &after_len);
    cr_assert(before_len == after_len && memcmp(before, after, before_len) == 0);
    cr_assert(kith_is_trusted(a.r, pb), "b is still a member");
    free(before);
    free(after);
    kith__wbuf_free(&w);
    recs_free(&ar);
    recs_free(&s);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
    kt_free(&n);
}

/* A record that waits for its parent is kept; once the parent shows it signed by a
 * non-member it is dropped, so the records this replica sends on are all accepted. */
Test(groups_store, waiting_record_found_invalid_later_is_dropped)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new(), n = kt_new();
    uint8_t pn[32], gid[16], digest[32], h[32];
    MDB_txn *txn;

    cr_assert_eq(kith_group_create(a.r, "home", "a"), 0);
    kt_admit(a.r, b.r, "b");
    kt_admit(a.r, c.r, "c");
    push_records(a.r, b.r);
    /* b signs an ADD that a has not seen; n, no member, signs one naming it as parent */
    kith_replica_pubkey(n.r, pn);
    struct kt_replica d = kt_new();
    uint8_t pd[32];
    kith_replica_pubkey(d.r, pd);
    struct recs before_b = recs_of(b.r);
    cr_assert_eq(kith__mdb_begin(b.r, 0, &txn), 0);
    cr_assert_eq(kith__group_add_member(b.r, txn, pd, "d", 1), 0);
    cr_assert_eq(kith__group_summary(b.r, txn, gid, digest), 1);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(b.r);
    struct recs after_b = recs_of(b.r);
    size_t new_i = after_b.n;
    for (size_t i = 0; i < after_b.n; i++) {
        bool old = false;
        for (size_t j = 0; j < before_b.n && !old; j++)
            old = before_b.len[j] == after_b.len[i] &&
                  memcmp(before_b.p[j], after_b.p[i], after_b.len[i]) == 0;
        if (!old)
            new_i = i;
    }
    cr_assert_lt(new_i, after_b.n);
    kith__group_hash(after_b.p[new_i], after_b.len[new_i], h);
    struct kith__group_rec rec;
    memset(&rec, 0, sizeof rec);
    rec.kind = KITH__GROUP_ADD;
    memcpy(rec.group, gid, 16);
    memcpy(rec.author, pn, 32);
    memcpy(rec.member, pn, 32);
    rec.name = "n";
    rec.name_len = 1;
    rec.nparents = 1;
    rec.parents = h;
    rec.time_ms = 1;
    struct kith__wbuf w = {0};
    uint8_t hn[32];
    cr_assert_eq(kith__group_build(&rec, n.r->sk, &w, hn), 0);
    struct recs bad = {.n = 1};
    bad.p[0] = w.data;
    bad.len[0] = w.len;
    size_t added = 0;
    cr_assert_eq(absorb(a.r, &bad, 0, 1, &added), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(added, 1, "a waiting record is kept");
    struct recs held = recs_of(a.r);
    cr_assert_eq(held.n, before_b.n + 1);
    recs_free(&held);
    /* b's ADD arrives: n's record is judged, found signed by a non-member, and dropped */
    cr_assert_eq(absorb(a.r, &after_b, 0, after_b.n, &added), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(added, 1);
    held = recs_of(a.r);
    cr_assert_eq(held.n, after_b.n, "the invalid record is gone");
    for (size_t i = 0; i < held.n; i++)
        cr_assert_not(held.len[i] == w.len && memcmp(held.p[i], w.data, w.len) == 0);
    recs_free(&held);
    cr_assert_not(kith_is_trusted(a.r, pn));
    /* and what a sends on is accepted whole */
    push_records(a.r, c.r);
    cr_assert_eq(memcmp(info_of(c.r).digest, info_of(b.r).digest, 32), 0);
    kith__wbuf_free(&w);
    recs_free(&before_b);
    recs_free(&after_b);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
    kt_free(&d);
    kt_free(&n);
}

/* ---- a removal racing an add, delivered in generated orders ---------------------------- */

#define RACE_REPLICAS 4

Test(groups_store, removal_racing_an_add_converges_in_every_delivery_order)
{
    uint64_t seed = kt_seed(), st = seed;
    int cases = kt_cases(6);

    for (int cs = 0; cs < cases; cs++) {
        struct kt_replica m[RACE_REPLICAS], z = kt_new();
        uint8_t pz[32];
        kith_replica_pubkey(z.r, pz);
        for (int i = 0; i < RACE_REPLICAS; i++)
            m[i] = kt_new();
        cr_assert_eq(kith_group_create(m[0].r, "home", "m0"), 0);
        for (int i = 1; i < RACE_REPLICAS; i++)
            kt_admit(m[0].r, m[i].r, i == 1 ? "m1" : i == 2 ? "m2" : "m3");
        for (int i = 1; i < RACE_REPLICAS; i++)
            push_records(m[0].r, m[i].r);
        /* concurrently, none seeing the others: a remover removes the adder, the adder adds
         * z, and (sometimes) a third member removes z or adds it too */
        int remover = (int)kt_below(&st, RACE_REPLICAS), adder;
        do
            adder = (int)kt_below(&st, RACE_REPLICAS);
        while (adder == remover);
        int third = (int)kt_below(&st, RACE_REPLICAS), what = (int)kt_below(&st, 3);
        MDB_txn *txn;
        cr_assert_eq(kith__mdb_begin(m[adder].r, 0, &txn), 0);
        cr_assert_eq(kith__group_add_member(m[adder].r, txn, pz, "z", 1), 0);
        cr_assert_eq(mdb_txn_commit(txn), 0);
        kith__mdb_end(m[adder].r);
        cr_assert_eq(kith_device_remove(m[remover].r, kith_replica_id(m[adder].r)), 0, "%s",
                     kith_errmsg(m[remover].r));
        if (third != remover && third != adder && what == 1) {
            cr_assert_eq(kith__mdb_begin(m[third].r, 0, &txn), 0);
            cr_assert_eq(kith__group_add_member(m[third].r, txn, pz, "z too", 5), 0);
            cr_assert_eq(mdb_txn_commit(txn), 0);
            kith__mdb_end(m[third].r);
        }
        /* every record made, from everyone */
        struct recs pool = {.n = 0};
        for (int i = 0; i < RACE_REPLICAS; i++) {
            struct recs s = recs_of(m[i].r);
            for (size_t j = 0; j < s.n; j++) {
                bool dup = false;
                for (size_t k = 0; k < pool.n && !dup; k++)
                    dup = pool.len[k] == s.len[j] && memcmp(pool.p[k], s.p[j], s.len[j]) == 0;
                if (dup) {
                    free(s.p[j]);
                    continue;
                }
                pool.p[pool.n] = s.p[j];
                pool.len[pool.n++] = s.len[j];
            }
        }
        /* each replica takes them one at a time in its own shuffled order, some twice */
        for (int i = 0; i < RACE_REPLICAS; i++) {
            size_t order[64], n = pool.n;
            cr_assert_leq(n, 64);
            for (size_t j = 0; j < n; j++)
                order[j] = j;
            for (size_t j = n; j > 1; j--) {
                size_t k = (size_t)kt_below(&st, j), t = order[j - 1];
                order[j - 1] = order[k];
                order[k] = t;
            }
            for (size_t j = 0; j < n; j++) {
                int rc = absorb(m[i].r, &pool, order[j], 1, NULL);
                cr_assert_eq(rc, 0, "case %d: absorb: %s (%s) KITH_SEED=%llu", cs,
                             kith_strerror(rc), kith_errmsg(m[i].r), (unsigned long long)seed);
                if (kt_below(&st, 4) == 0)
                    cr_assert_eq(absorb(m[i].r, &pool, order[j], 1, NULL), 0);
            }
        }
        /* the same members everywhere; the removal won; z's admission by the removed adder
         * is void unless a member that stayed added it too */
        kith_group_info g0 = info_of(m[0].r);
        uint8_t pa[32];
        kith_replica_pubkey(m[adder].r, pa);
        for (int i = 0; i < RACE_REPLICAS; i++) {
            kith_group_info gi = info_of(m[i].r);
            cr_assert_eq(memcmp(gi.digest, g0.digest, 32), 0, "case %d KITH_SEED=%llu", cs,
                         (unsigned long long)seed);
            cr_assert_eq(gi.members, g0.members);
            cr_assert_eq(gi.removed, 1);
            cr_assert_not(kith_is_trusted(m[i].r, pa) && i != adder,
                          "the removed adder is admitted by m%d", i);
            bool z_in = third != remover && third != adder && what == 1;
            cr_assert_eq(kith_is_trusted(m[i].r, pz), z_in, "case %d: z at m%d KITH_SEED=%llu", cs,
                         i, (unsigned long long)seed);
        }
        cr_assert(info_of(m[adder].r).self_removed);
        recs_free(&pool);
        for (int i = 0; i < RACE_REPLICAS; i++)
            kt_free(&m[i]);
        kt_free(&z);
    }
}

/* ---- upgrade -------------------------------------------------------------------------- */

static char *
fixture_copy(const char *vdir)
{
    char *dir = kt_tmpdir(), path[512], from[512];

    snprintf(from, sizeof from, "%s/replica-a/data.mdb", vdir);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    kt_copy_file(from, path);
    snprintf(from, sizeof from, "%s/replica-a/key", vdir);
    snprintf(path, sizeof path, "%s/key", dir);
    kt_copy_file(from, path);
    return dir;
}

static void
pubkey_file(const char *path, uint8_t pk[32])
{
    FILE *f = fopen(path, "r");
    char hex[80] = {0};

    cr_assert_not_null(f);
    cr_assert_not_null(fgets(hex, sizeof hex, f));
    fclose(f);
    for (size_t i = 0; i < 32; i++) {
        unsigned byte;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &byte), 1);
        pk[i] = (uint8_t)byte;
    }
}

static void
upgrade_fixture(const char *vdir)
{
    char *dir = fixture_copy(vdir), pubpath[512];
    kith_replica *r = NULL;
    uint8_t pb[32];

    snprintf(pubpath, sizeof pubpath, "%s/b.pub", vdir);
    pubkey_file(pubpath, pb);
    /* read-only first: no groups database, no group, nothing written */
    cr_assert_eq(kith_open(dir, KITH_RDONLY, &r), 0, "%s", kith_errmsg(r));
    cr_assert_not(info_of(r).in_group);
    cr_assert(kith_is_trusted(r, pb), "pairwise trust as before");
    kith_close(r);
    /* writable: the trust set becomes a group of a and b (GRP-17) */
    cr_assert_eq(kith_open(dir, 0, &r), 0, "%s", kith_errmsg(r));
    kith_group_info g = info_of(r);
    cr_assert(g.in_group);
    cr_assert_eq(g.members, 2);
    cr_assert(kith_is_trusted(r, pb));
    kith_device *d = NULL;
    size_t n = 0;
    cr_assert_eq(kith_devices_get(r, &d, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert(d[0].self, "the upgraded replica founded the group");
    cr_assert_eq(memcmp(d[1].pubkey, pb, 32), 0);
    cr_assert_str_eq(d[1].name, "b", "the peer's name names the device");
    kith_devices_free(d, n);
    kith_verify_report rep;
    cr_assert_eq(kith_verify(r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    kith_close(r);
    /* once: a second open keeps the same group */
    cr_assert_eq(kith_open(dir, 0, &r), 0, "%s", kith_errmsg(r));
    kith_group_info g2 = info_of(r);
    cr_assert_str_eq(g2.id, g.id);
    cr_assert_eq(g2.records, g.records);
    kith_close(r);
    kt_rmtree(dir);
    free(dir);
}

Test(groups_store, v1_trust_set_converts_to_a_group)
{
    upgrade_fixture(V1);
}

Test(groups_store, v2_trust_set_converts_to_a_group)
{
    upgrade_fixture(V2);
}

/* A replica of 0.3 (no groups database): with no trusted peer it stays in no group; with one
 * it founds a group on its next writable open; a new replica trusting a peer does not. */
Test(groups_store, older_replica_without_trust_stays_in_no_group)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new();
    uint8_t pb[32];
    MDB_txn *txn;

    kith_replica_pubkey(b.r, pb);
    cr_assert_eq(kith_trust_add(c.r, pb, "b", NULL), 0);
    kt_reopen(&c, KITH_NOSYNC);
    cr_assert_not(info_of(c.r).in_group, "a replica made with groups converts nothing");
    for (int i = 0; i < 2; i++) {
        struct kt_replica *k = i == 0 ? &a : &c;
        cr_assert_eq(kith__mdb_begin(k->r, 0, &txn), 0);
        cr_assert_eq(mdb_drop(txn, k->r->groups, 1), 0); /* as 0.3 made it */
        cr_assert_eq(mdb_txn_commit(txn), 0);
        kith__mdb_end(k->r);
        kt_reopen(k, KITH_NOSYNC);
    }
    cr_assert_not(info_of(a.r).in_group);
    cr_assert(info_of(c.r).in_group);
    cr_assert_eq(info_of(c.r).members, 2);
    cr_assert(kith_is_trusted(c.r, pb));
    /* outside a group, pairwise trust works as before */
    cr_assert_eq(kith_trust_add(a.r, pb, "b", NULL), 0);
    kt_contact(b.r, "Ada");
    kith_apply_info info;
    cr_assert_eq(sync_rc(b.r, a.r, &info), 0, "%s", kith_errmsg(a.r));
    cr_assert_gt(info.ops_applied, 0);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
}

/* ---- persistence ---------------------------------------------------------------------- */

Test(groups_store, group_survives_close_and_open)
{
    struct kt_replica a = kt_new(), b = kt_new();

    cr_assert_eq(kith_group_create(a.r, "home", "a"), 0);
    kt_admit(a.r, b.r, "b");
    kith_group_info g = info_of(a.r);
    kt_reopen(&a, KITH_NOSYNC);
    kt_reopen(&b, KITH_NOSYNC);
    kith_group_info ga = info_of(a.r), gb = info_of(b.r);
    cr_assert_str_eq(ga.id, g.id);
    cr_assert_eq(ga.members, 2);
    cr_assert_eq(memcmp(ga.digest, g.digest, 32), 0);
    cr_assert_eq(memcmp(gb.digest, g.digest, 32), 0);
    kt_reopen(&a, KITH_RDONLY);
    cr_assert_eq(info_of(a.r).members, 2, "read-only too");
    kt_free(&a);
    kt_free(&b);
}

Test(groups_store, records_written_by_another_process_are_seen)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new();
    uint8_t pc[32];
    int fds[2];
    char ok = 0;

    kith_replica_pubkey(c.r, pc);
    cr_assert_eq(kith_group_create(a.r, "home", "a"), 0);
    kt_admit(a.r, b.r, "b");
    cr_assert_eq(info_of(a.r).members, 2); /* the fold is cached now */
    cr_assert_not(kith_is_trusted(a.r, pc));
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        /* another process: its own handle adds c, and removes b */
        kith_replica *r = NULL;
        MDB_txn *txn;
        char res = 1;
        close(fds[0]);
        if (kith_open(a.dir, KITH_NOSYNC, &r) == 0 && kith__mdb_begin(r, 0, &txn) == 0) {
            if (kith__group_add_member(r, txn, pc, "c", 1) == 0 && mdb_txn_commit(txn) == 0)
                res = 0;
            else
                res = 2;
            kith__mdb_end(r);
            if (res == 0 && kith_device_remove(r, kith_replica_id(b.r)) != 0)
                res = 3;
        }
        kith_close(r);
        if (write(fds[1], &res, 1) != 1)
            _exit(4);
        _exit(0);
    }
    close(fds[1]);
    cr_assert_eq(read(fds[0], &ok, 1), 1);
    close(fds[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert_eq(ok, 0, "the child failed at step %d", ok);
    kith_group_info g = info_of(a.r);
    cr_assert_eq(g.members, 2, "a and c");
    cr_assert_eq(g.removed, 1, "b");
    cr_assert(kith_is_trusted(a.r, pc));
    uint8_t pb[32];
    kith_replica_pubkey(b.r, pb);
    cr_assert_not(kith_is_trusted(a.r, pb));
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
}
