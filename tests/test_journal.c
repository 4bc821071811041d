/*
 * test_journal.c — setting a history aside and restoring from the journal (spec/data-model.md
 * FORK-10, spec/storage.md "journal"): the commits of an origin after a seq leave the log for
 * the journal, the state is rebuilt from what stays (byte for byte the state of a replica
 * that never held them), commits of other origins that named their dots wait again, and a
 * restore writes the set-aside ops again as new writes, documents it created made anew.
 */
#include "kith_test.h"
#include "store.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kith_buf
batch_all(kith_replica *from)
{
    kith_buf b = {0};
    int rc = kith_batch_create(from, NULL, &b, NULL);
    cr_assert_eq(rc, 0, "batch_create: %s (%s)", kith_strerror(rc), kith_errmsg(from));
    return b;
}

static void
apply(kith_replica *to, const kith_buf *b)
{
    int rc = kith_batch_apply(to, b->data, b->len, NULL);
    cr_assert_eq(rc, 0, "batch_apply: %s (%s)", kith_strerror(rc), kith_errmsg(to));
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

static uint64_t
pending_of(kith_replica *r)
{
    kith_status *st = NULL;
    uint64_t n;
    cr_assert_eq(kith_status_get(r, &st), 0);
    n = st->pending_ops;
    kith_status_free(st);
    return n;
}

/* The journal's ops: how many, how many restored, and the distinct commits (up to 8). */
struct journal_view {
    size_t ops, restored, ncommits;
    kith_dot commits[8];
};

static struct journal_view
journal_of(kith_replica *r)
{
    struct journal_view jv = {0};
    kith_txn *t = kt_rbegin(r);
    kith_iter *it = NULL;
    kith_journal_op op;
    int rc;

    cr_assert_eq(kith_iter_journal(t, 0, &it), 0);
    while ((rc = kith_iter_next_journal(it, &op)) == 0) {
        jv.ops++;
        jv.restored += op.restored;
        cr_assert_not(op.op.applied);
        cr_assert_gt(op.set_aside_ms, 0);
        if (jv.ncommits == 0 || jv.commits[jv.ncommits - 1].seq != op.commit.seq) {
            cr_assert_lt(jv.ncommits, 8);
            jv.commits[jv.ncommits++] = op.commit;
        }
    }
    cr_assert_eq(rc, KITH_ENOTFOUND, "%s", kith_strerror(rc));
    kith_iter_close(it);
    kith_txn_abort(&t);
    return jv;
}

static void
verify_clean(kith_replica *r)
{
    kith_verify_report rep;
    cr_assert_eq(kith_verify(r, &rep), 0, "%s", kith_errmsg(r));
    cr_assert_eq(rep.problems, 0, "verify: %s", rep.first_problem);
}

/*
 * a writes X, then (after seq S) Y and X's phone; b takes both, overwrites X's phone (naming a's
 * dot beyond S) and writes a contact of its own. Setting a's history after S aside in b: b's log of
 * a ends at S, the journal holds a's later commit, b's edit (which named a dot now void) applies,
 * and b's export is the export of a replica c that only ever got a up to S and b's ops, settled the
 * same way.
 */
/* proves FORK-10 */
Test(journal, a_history_set_aside_leaves_the_state_of_a_replica_that_never_held_it)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new();
    kt_trust_pair(&a, &b);
    kt_trust_pair(&a, &c);
    kt_trust_pair(&b, &c);
    uint64_t ida = kith_replica_id(a.r);

    kith_docid x = kt_contact(a.r, "x");
    kith_buf upto_s = batch_all(a.r);
    uint64_t s = vv_of(a.r, ida);
    kith_txn *t = kt_wbegin(a.r);
    kith_docid y;
    kith_value phone = kt_str("+1 555 0100");
    cr_assert_eq(kith_doc_create(t, "contacts", &y), 0);
    kith_value yname = kt_str("y");
    cr_assert_eq(kith_field_set(t, "contacts", &y, "name", &yname), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &x, "phone", &phone), 0);
    kt_commit(t);
    kt_sync(&a, &b);
    kt_set_str(b.r, "contacts", &x, "phone", "+1 555 0199"); /* replaces a's dot after S */
    kith_docid z = kt_contact(b.r, "z");
    verify_clean(b.r);

    struct kith__aside aside = {ida, s};
    uint64_t moved = 0;
    cr_assert_eq(kith__history_set_aside(b.r, &aside, 1, &moved, NULL), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(moved, 3, "a's second commit: create, name, phone");
    cr_assert_eq(vv_of(b.r, ida), s);
    cr_assert_eq(pending_of(b.r), 0, "b's edit named a void dot: it applies");
    verify_clean(b.r);
    struct journal_view jv = journal_of(b.r);
    cr_assert_eq(jv.ops, 3);
    cr_assert_eq(jv.ncommits, 1);
    cr_assert_eq(jv.commits[0].origin, ida);
    cr_assert_eq(jv.commits[0].seq, s + 1);

    /* c: a up to S, then everything b holds now; b's edit waits in c until c settles the
     * fork too */
    apply(c.r, &upto_s);
    kith_buf from_b = batch_all(b.r);
    apply(c.r, &from_b);
    cr_assert_eq(pending_of(c.r), 3, "b's edit, and b's next commit behind it");
    cr_assert_eq(kith__history_set_aside(c.r, &aside, 1, &moved, NULL), 0, "%s", kith_errmsg(c.r));
    cr_assert_eq(moved, 0);
    cr_assert_eq(pending_of(c.r), 0);
    char *eb = kt_export(b.r), *ec = kt_export(c.r);
    cr_assert_str_eq(eb, ec);
    cr_assert(strstr(eb, "+1 555 0100") == NULL, "a's phone for x was set aside");
    cr_assert(strstr(eb, "+1 555 0199") != NULL, "b's applies");
    char name[64];
    kt_get_str(b.r, "contacts", &z, "name", name, sizeof name);
    cr_assert_str_eq(name, "z");

    /* nothing more to set aside: nothing changes */
    cr_assert_eq(kith__history_set_aside(b.r, &aside, 1, &moved, NULL), 0);
    cr_assert_eq(moved, 0);
    char *again = kt_export(b.r);
    cr_assert_str_eq(eb, again);

    free(eb);
    free(ec);
    free(again);
    kith_free(upto_s.data);
    kith_free(from_b.data);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
}

/* A restore writes the set-aside ops again as b's own: y is made anew with its name, x gets
 * its phone back, and the entry is marked restored; a second restore is refused. */
/* proves FORK-10 */
Test(journal, restore_writes_the_ops_again_as_new_writes)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kt_trust_pair(&a, &b);
    uint64_t ida = kith_replica_id(a.r), idb = kith_replica_id(b.r);

    kith_docid x = kt_contact(a.r, "x");
    uint64_t s = vv_of(a.r, ida);
    kith_txn *t = kt_wbegin(a.r);
    kith_docid y;
    kith_value yname = kt_str("y"), phone = kt_str("+1 555 0100");
    cr_assert_eq(kith_doc_create(t, "contacts", &y), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &y, "name", &yname), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &x, "phone", &phone), 0);
    cr_assert_eq(kith_set_add(t, "contacts", &x, "tags", "friend", 6), 0);
    kt_commit(t);
    kt_sync(&a, &b);
    struct kith__aside aside = {ida, s};
    cr_assert_eq(kith__history_set_aside(b.r, &aside, 1, NULL, NULL), 0, "%s", kith_errmsg(b.r));
    uint64_t own = vv_of(b.r, idb);

    kith_dot commit = {ida, s + 1}, none = {ida, s + 99};
    size_t skipped = 9;
    t = kt_wbegin(b.r);
    cr_assert_eq(kith_journal_restore(t, &none, &skipped), KITH_ENOTFOUND);
    kith_txn_abort(&t);
    t = kt_wbegin(b.r);
    cr_assert_eq(kith_journal_restore(t, &commit, &skipped), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(skipped, 0);
    cr_assert_eq(kith_journal_restore(t, &commit, &skipped), KITH_EEXIST);
    kith_txn_abort(&t); /* aborted: nothing restored, nothing marked */
    cr_assert_eq(journal_of(b.r).restored, 0);
    t = kt_wbegin(b.r);
    cr_assert_eq(kith_journal_restore(t, &commit, &skipped), 0, "%s", kith_errmsg(b.r));
    kt_commit(t);

    struct journal_view jv = journal_of(b.r);
    cr_assert_eq(jv.restored, jv.ops);
    cr_assert_eq(vv_of(b.r, idb), own + 4, "four ops written again under b's own origin");
    char phone_now[64];
    kt_get_str(b.r, "contacts", &x, "phone", phone_now, sizeof phone_now);
    cr_assert_str_eq(phone_now, "+1 555 0100");
    t = kt_rbegin(b.r);
    cr_assert_eq(kith_doc_exists(t, "contacts", &y), 0, "the old id names nothing here");
    kith_iter *it = NULL;
    kith_docid d;
    size_t ys = 0;
    cr_assert_eq(kith_iter_docs(t, "contacts", &it), 0);
    while (kith_iter_next(it, &d) == 0) {
        kith_value v;
        cr_assert_eq(kith_field_get(t, "contacts", &d, "name", &v), 0);
        if (v.type == KITH_TYPE_STRING && v.u.s.len == 1 && v.u.s.ptr[0] == 'y') {
            kith_dot dd = kith__docid_to_dot(&d);
            cr_assert_eq(dd.origin, idb, "y made anew by b");
            ys++;
        }
    }
    kith_iter_close(it);
    kith_txn_abort(&t);
    cr_assert_eq(ys, 1);
    t = kt_wbegin(b.r);
    cr_assert_eq(kith_journal_restore(t, &commit, &skipped), KITH_EEXIST);
    kith_txn_abort(&t);
    verify_clean(b.r);

    /* the restored writes travel as any: a takes them */
    kt_sync(&b, &a);
    kt_get_str(a.r, "contacts", &x, "phone", phone_now, sizeof phone_now);
    cr_assert_str_eq(phone_now, "+1 555 0100");
    kt_free(&a);
    kt_free(&b);
}
