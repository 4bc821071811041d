/*
 * test_iter.c — reading a replica in order (store/iter.c, store/status.c): documents by id,
 * the three indexes with their ranges and their upkeep when a keyed field changes, set
 * elements in byte order, dead documents skipped, the op log as written, conflicts listed,
 * resolved and restored, and the status counts. Real replicas in mkdtemp directories.
 */
#include "kith.h"
#include "kith_test.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------------- */

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

struct fixture {
    char dir[64];
    kith_replica *r[3];
};

static struct fixture fx;

static kith_replica *
open_replica(int i)
{
    char path[96];
    kith_replica *r = NULL;

    snprintf(path, sizeof path, "%s/r%d", fx.dir, i);
    cr_assert_eq(kith_open(path, KITH_CREATE | KITH_NOSYNC, &r), 0);
    cr_assert_eq(kith_schema_apply(r, kith_schema_crm(), strlen(kith_schema_crm())), 0);
    fx.r[i] = r;
    return r;
}

static void
setup(void)
{
    snprintf(fx.dir, sizeof fx.dir, "/tmp/kith-test-iter-XXXXXX");
    cr_assert_not_null(mkdtemp(fx.dir));
    memset(fx.r, 0, sizeof fx.r);
    open_replica(0);
}

static void
teardown(void)
{
    for (int i = 0; i < 3; i++)
        kith_close(fx.r[i]);
    nftw(fx.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static kith_value
tm(int64_t ms)
{
    kith_value v = {.type = KITH_TYPE_TIME};
    v.u.i = ms;
    return v;
}

static kith_value
ref(const kith_docid *d)
{
    kith_value v = {.type = KITH_TYPE_REF};
    v.u.ref = *d;
    return v;
}

static kith_docid
contact(kith_txn *t, const char *name)
{
    kith_docid d;
    kith_value v = kt_str(name);
    cr_assert_eq(kith_doc_create(t, "contacts", &d), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &d, "name", &v), 0);
    return d;
}

static kith_docid
interaction(kith_txn *t, const kith_docid *c, int64_t at)
{
    kith_docid d;
    kith_value vc = ref(c), vk = kt_str("call"), va = tm(at);
    vk.type = KITH_TYPE_ENUM;
    cr_assert_eq(kith_doc_create(t, "interactions", &d), 0);
    cr_assert_eq(kith_field_set(t, "interactions", &d, "contact", &vc), 0);
    cr_assert_eq(kith_field_set(t, "interactions", &d, "kind", &vk), 0);
    cr_assert_eq(kith_field_set(t, "interactions", &d, "at", &va), 0);
    return d;
}

static kith_docid
reminder(kith_txn *t, int64_t due, const char *text)
{
    kith_docid d;
    kith_value vd = tm(due), vt = kt_str(text);
    cr_assert_eq(kith_doc_create(t, "reminders", &d), 0);
    cr_assert_eq(kith_field_set(t, "reminders", &d, "due", &vd), 0);
    cr_assert_eq(kith_field_set(t, "reminders", &d, "text", &vt), 0);
    return d;
}

/* Drain a docs/index iterator into ids (at most cap); returns the count. */
static size_t
drain(kith_iter *it, kith_docid *ids, size_t cap)
{
    size_t n = 0;
    kith_docid d;
    int rc;

    while ((rc = kith_iter_next(it, &d)) == 0) {
        cr_assert_lt(n, cap, "iterator gives more than %zu ids", cap);
        ids[n++] = d;
    }
    cr_assert_eq(rc, KITH_ENOTFOUND, "iterator ended with %s", kith_strerror(rc));
    kith_iter_close(it);
    return n;
}

static size_t
index_ids(kith_txn *t, const char *index, const kith_value *eq, const kith_value *lo,
          const kith_value *hi, kith_docid *ids, size_t cap)
{
    kith_iter *it = NULL;
    int rc = kith_iter_index(t, index, eq, lo, hi, &it);
    cr_assert_eq(rc, 0, "iter_index %s: %s", index, kith_strerror(rc));
    return drain(it, ids, cap);
}

static bool
same(const kith_docid *a, const kith_docid *b)
{
    return memcmp(a->bytes, b->bytes, KITH_DOCID_BYTES) == 0;
}

static void
expect_ids(const kith_docid *got, size_t n, const kith_docid *const *want, size_t nwant,
           const char *what)
{
    cr_assert_eq(n, nwant, "%s: %zu ids, expected %zu", what, n, nwant);
    for (size_t i = 0; i < n; i++)
        cr_assert(same(&got[i], want[i]), "%s: id %zu is not the expected one", what, i);
}

TestSuite(iter, .init = setup, .fini = teardown);

/* ---- documents ---------------------------------------------------------------------------- */

Test(iter, docs_in_id_order_and_dead_ones_skipped)
{
    kith_replica *r = fx.r[0];
    kith_docid c[5], got[8];
    kith_txn *t = kt_wbegin(r);
    kith_iter *it;

    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%d", i);
        c[i] = contact(t, name);
    }
    reminder(t, 1000, "not a contact");
    kt_commit(t);
    t = kt_wbegin(r);
    cr_assert_eq(kith_doc_delete(t, "contacts", &c[2]), 0);
    kt_commit(t);

    t = kt_rbegin(r);
    cr_assert_eq(kith_iter_docs(t, "contacts", &it), 0);
    const kith_docid *want[] = {&c[0], &c[1], &c[3], &c[4]};
    expect_ids(got, drain(it, got, 8), want, 4, "contacts");
    cr_assert_eq(kith_iter_docs(t, "interactions", &it), 0);
    cr_assert_eq(drain(it, got, 8), 0);
    cr_assert_eq(kith_iter_docs(t, "nope", &it), KITH_ENOTFOUND);
    cr_assert_null(it);
    kith_txn_abort(&t);
}

Test(iter, docs_iteration_sees_own_writes_in_a_write_txn)
{
    kith_replica *r = fx.r[0];
    kith_docid got[4];
    kith_txn *t = kt_wbegin(r);
    kith_iter *it;
    kith_docid a = contact(t, "a");

    cr_assert_eq(kith_iter_docs(t, "contacts", &it), 0);
    const kith_docid *want[] = {&a};
    expect_ids(got, drain(it, got, 4), want, 1, "own write");
    kith_txn_abort(&t);
    t = kt_rbegin(r);
    cr_assert_eq(kith_iter_docs(t, "contacts", &it), 0);
    cr_assert_eq(drain(it, got, 4), 0, "aborted write is visible");
    kith_txn_abort(&t);
}

/* ---- indexes ------------------------------------------------------------------------------ */

Test(iter, contacts_name_order_ranges_and_rename)
{
    kith_replica *r = fx.r[0];
    kith_docid got[8];
    kith_txn *t = kt_wbegin(r);
    kith_docid carol = contact(t, "carol"), alice = contact(t, "alice"), bob = contact(t, "bob"),
               al = contact(t, "al"), zed = contact(t, "Zed");
    kt_commit(t);

    t = kt_rbegin(r);
    const kith_docid *all[] = {&zed, &al, &alice, &bob, &carol}; /* byte order: 'Z' < 'a' */
    expect_ids(got, index_ids(t, "contacts.name", NULL, NULL, NULL, got, 8), all, 5, "all");
    kith_value lo = kt_str("alice"), hi = kt_str("bob"), b = kt_str("b"), empty = kt_str("");
    const kith_docid *w1[] = {&alice};
    expect_ids(got, index_ids(t, "contacts.name", NULL, &lo, &hi, got, 8), w1, 1, "[alice,bob)");
    const kith_docid *w2[] = {&bob, &carol};
    expect_ids(got, index_ids(t, "contacts.name", NULL, &b, NULL, got, 8), w2, 2, "[b,)");
    const kith_docid *w3[] = {&zed, &al};
    expect_ids(got, index_ids(t, "contacts.name", NULL, NULL, &lo, got, 8), w3, 2, "[,alice)");
    cr_assert_eq(index_ids(t, "contacts.name", NULL, &hi, &hi, got, 8), 0, "empty range");
    expect_ids(got, index_ids(t, "contacts.name", NULL, &empty, NULL, got, 8), all, 5, "[\"\",)");
    kith_txn_abort(&t);

    /* Renaming moves the entry; deleting hides it. */
    t = kt_wbegin(r);
    kith_value aaron = kt_str("aaron");
    cr_assert_eq(kith_field_set(t, "contacts", &bob, "name", &aaron), 0);
    cr_assert_eq(kith_doc_delete(t, "contacts", &al), 0);
    const kith_docid *w4[] = {&zed, &bob, &alice, &carol};
    expect_ids(got, index_ids(t, "contacts.name", NULL, NULL, NULL, got, 8), w4, 4, "in txn");
    kt_commit(t);
    t = kt_rbegin(r);
    expect_ids(got, index_ids(t, "contacts.name", NULL, NULL, NULL, got, 8), w4, 4, "renamed");
    cr_assert_eq(index_ids(t, "contacts.name", NULL, &b, &hi, got, 8), 0, "old name still there");
    kith_txn_abort(&t);
}

Test(iter, interactions_by_contact_then_time)
{
    kith_replica *r = fx.r[0];
    kith_docid got[16];
    kith_txn *t = kt_wbegin(r);
    kith_docid a = contact(t, "a"), b = contact(t, "b");
    /* Times on both sides of the epoch: the key flips the sign bit. */
    kith_docid a3 = interaction(t, &a, 3000), a1 = interaction(t, &a, -5000),
               b2 = interaction(t, &b, 2000), a2 = interaction(t, &a, 2000),
               b1 = interaction(t, &b, -1);
    kt_commit(t);

    t = kt_rbegin(r);
    kith_value ea = ref(&a), eb = ref(&b);
    const kith_docid *wa[] = {&a1, &a2, &a3};
    expect_ids(got, index_ids(t, "interactions.contact", &ea, NULL, NULL, got, 16), wa, 3, "a");
    const kith_docid *wb[] = {&b1, &b2};
    expect_ids(got, index_ids(t, "interactions.contact", &eb, NULL, NULL, got, 16), wb, 2, "b");
    kith_value lo = tm(-1), hi = tm(3000);
    const kith_docid *wa2[] = {&a2};
    expect_ids(got, index_ids(t, "interactions.contact", &ea, &lo, &hi, got, 16), wa2, 1,
               "a [-1,3000)");
    kith_value lo2 = tm(3000);
    const kith_docid *wa3[] = {&a3};
    expect_ids(got, index_ids(t, "interactions.contact", &ea, &lo2, NULL, got, 16), wa3, 1,
               "a [3000,)");
    /* Without a contact: every contact's, bounded by time. */
    size_t n = index_ids(t, "interactions.contact", NULL, NULL, NULL, got, 16);
    cr_assert_eq(n, 5);
    n = index_ids(t, "interactions.contact", NULL, &lo, &hi, got, 16);
    cr_assert_eq(n, 3, "[-1,3000) over all contacts gives %zu", n); /* b1, b2, a2 */
    /* Wrong bound types are refused. */
    kith_iter *it = NULL;
    kith_value s = kt_str("x");
    cr_assert_eq(kith_iter_index(t, "interactions.contact", &s, NULL, NULL, &it), KITH_EINVAL);
    cr_assert_eq(kith_iter_index(t, "interactions.contact", &ea, &s, NULL, &it), KITH_EINVAL);
    cr_assert_eq(kith_iter_index(t, "no.such", NULL, NULL, NULL, &it), KITH_ENOTFOUND);
    cr_assert_null(it);
    kith_txn_abort(&t);

    /* Moving an interaction in time or to another contact moves its entry. */
    t = kt_wbegin(r);
    kith_value at = tm(10000);
    cr_assert_eq(kith_field_set(t, "interactions", &a1, "at", &at), 0);
    cr_assert_eq(kith_field_set(t, "interactions", &a2, "contact", &eb), 0);
    kt_commit(t);
    t = kt_rbegin(r);
    const kith_docid *wa4[] = {&a3, &a1};
    expect_ids(got, index_ids(t, "interactions.contact", &ea, NULL, NULL, got, 16), wa4, 2,
               "a after moves");
    const kith_docid *wb4[] = {&b1, &b2, &a2};
    expect_ids(got, index_ids(t, "interactions.contact", &eb, NULL, NULL, got, 16), wb4, 3,
               "b after moves");
    kith_txn_abort(&t);

    /* A deleted interaction disappears from the index. */
    t = kt_wbegin(r);
    cr_assert_eq(kith_doc_delete(t, "interactions", &a3), 0);
    kt_commit(t);
    t = kt_rbegin(r);
    const kith_docid *wa5[] = {&a1};
    expect_ids(got, index_ids(t, "interactions.contact", &ea, NULL, NULL, got, 16), wa5, 1,
               "a after delete");
    kith_txn_abort(&t);
}

Test(iter, reminders_by_due)
{
    kith_replica *r = fx.r[0];
    kith_docid got[8];
    kith_txn *t = kt_wbegin(r);
    kith_docid r3 = reminder(t, 300, "c"), r1 = reminder(t, 100, "a"), r2 = reminder(t, 200, "b");
    kt_commit(t);

    t = kt_rbegin(r);
    const kith_docid *all[] = {&r1, &r2, &r3};
    expect_ids(got, index_ids(t, "reminders.due", NULL, NULL, NULL, got, 8), all, 3, "all");
    kith_value lo = tm(150), hi = tm(300);
    const kith_docid *w[] = {&r2};
    expect_ids(got, index_ids(t, "reminders.due", NULL, &lo, &hi, got, 8), w, 1, "[150,300)");
    kith_iter *it = NULL;
    kith_value eq = tm(1);
    cr_assert_eq(kith_iter_index(t, "reminders.due", &eq, NULL, NULL, &it), KITH_EINVAL);
    kith_txn_abort(&t);

    t = kt_wbegin(r);
    kith_value due = tm(50);
    cr_assert_eq(kith_field_set(t, "reminders", &r3, "due", &due), 0);
    cr_assert_eq(kith_doc_delete(t, "reminders", &r2), 0);
    kt_commit(t);
    t = kt_rbegin(r);
    const kith_docid *w2[] = {&r3, &r1};
    expect_ids(got, index_ids(t, "reminders.due", NULL, NULL, NULL, got, 8), w2, 2, "moved");
    kith_txn_abort(&t);
}

/* ---- sets --------------------------------------------------------------------------------- */

Test(iter, set_elements_in_byte_order)
{
    kith_replica *r = fx.r[0];
    kith_txn *t = kt_wbegin(r);
    kith_docid c = contact(t, "a");
    const char *tags[] = {"work", "b", "Zoo", "ba", "\xc3\xa9t\xc3\xa9", "a"};
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(kith_set_add(t, "contacts", &c, "tags", tags[i], strlen(tags[i])), 0);
    cr_assert_eq(kith_set_add(t, "contacts", &c, "tags", "b", 1), 0); /* again */
    cr_assert_eq(kith_set_remove(t, "contacts", &c, "tags", "work", 4), 0);
    kt_commit(t);

    t = kt_rbegin(r);
    kith_iter *it;
    const char *want[] = {"Zoo", "a", "b", "ba", "\xc3\xa9t\xc3\xa9"};
    const char *e;
    size_t len, n = 0;
    int rc;
    cr_assert_eq(kith_iter_set(t, "contacts", &c, "tags", &it), 0);
    while ((rc = kith_iter_next_elem(it, &e, &len)) == 0) {
        cr_assert_lt(n, 5);
        cr_assert_eq(len, strlen(want[n]));
        cr_assert_eq(memcmp(e, want[n], len), 0, "element %zu", n);
        n++;
    }
    cr_assert_eq(rc, KITH_ENOTFOUND);
    cr_assert_eq(n, 5);
    kith_docid d;
    cr_assert_eq(kith_iter_next(it, &d), KITH_EINVAL, "next on a set iterator");
    kith_iter_close(it);
    cr_assert_eq(kith_iter_set(t, "contacts", &c, "name", &it), KITH_EINVAL);
    cr_assert_eq(kith_iter_set(t, "contacts", &c, "nope", &it), KITH_ENOTFOUND);
    kith_txn_abort(&t);

    /* A deleted document has no set to iterate. */
    t = kt_wbegin(r);
    cr_assert_eq(kith_doc_delete(t, "contacts", &c), 0);
    cr_assert_eq(kith_iter_set(t, "contacts", &c, "tags", &it), KITH_ENOTFOUND);
    kith_txn_abort(&t);
}

/* ---- the log ------------------------------------------------------------------------------ */

Test(iter, log_entries_match_what_was_written)
{
    kith_replica *r = fx.r[0];
    uint64_t me = kith_replica_id(r);
    kith_txn *t = kt_wbegin(r);
    kith_docid c = contact(t, "ada");
    cr_assert_eq(kith_set_add(t, "contacts", &c, "tags", "math", 4), 0);
    kt_commit(t);
    t = kt_wbegin(r);
    kith_value e = kt_str("ada@example.org");
    cr_assert_eq(kith_field_set(t, "contacts", &c, "email", &e), 0);
    kt_commit(t);

    t = kt_rbegin(r);
    kith_iter *it;
    kith_log_entry le[8];
    size_t n = 0;
    int rc;
    cr_assert_eq(kith_iter_log(t, 0, &it), 0);
    while ((rc = kith_iter_next_log(it, &le[n])) == 0) {
        cr_assert_lt(n, 7);
        n++;
    }
    cr_assert_eq(rc, KITH_ENOTFOUND);
    kith_iter_close(it);
    cr_assert_eq(n, 4, "4 ops logged, got %zu", n);
    static const uint8_t zero[KITH_HASH_BYTES];
    kith_op_kind kinds[] = {KITH_OP_DOC_ADD, KITH_OP_FIELD_SET, KITH_OP_SET_ADD, KITH_OP_FIELD_SET};
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(le[i].dot.origin, me);
        cr_assert_eq(le[i].dot.seq, i + 1);
        cr_assert_eq(le[i].kind, kinds[i], "op %zu kind %d", i, le[i].kind);
        cr_assert_str_eq(le[i].collection, "contacts");
        cr_assert(same(&le[i].doc, &c));
        cr_assert(le[i].applied);
        bool end = i == 2 || i == 3;
        cr_assert_eq(le[i].commit_end, end, "op %zu commit_end", i);
        cr_assert_eq(memcmp(le[i].chain, zero, KITH_HASH_BYTES) != 0, end, "op %zu chain", i);
    }
    cr_assert_eq(le[0].hlc, le[2].hlc, "one hlc per commit");
    cr_assert_gt(le[3].hlc, le[2].hlc);
    cr_assert_null(le[0].field);
    cr_assert_str_eq(le[1].field, "name");
    cr_assert_eq(le[1].value.type, KITH_TYPE_STRING);
    cr_assert_eq(le[1].value.u.s.len, 3);
    cr_assert_eq(memcmp(le[1].value.u.s.ptr, "ada", 3), 0);
    cr_assert_str_eq(le[2].field, "tags");
    cr_assert_eq(le[2].value.u.s.len, 4);
    cr_assert_eq(memcmp(le[2].value.u.s.ptr, "math", 4), 0);
    cr_assert_str_eq(le[3].field, "email");
    cr_assert_eq(memcmp(le[2].chain, le[3].chain, KITH_HASH_BYTES) != 0, 1);
    kith_txn_abort(&t);

    /* Filtering by origin: ours gives the same 4, another gives nothing. */
    t = kt_rbegin(r);
    cr_assert_eq(kith_iter_log(t, me, &it), 0);
    n = 0;
    while (kith_iter_next_log(it, &le[0]) == 0)
        n++;
    kith_iter_close(it);
    cr_assert_eq(n, 4);
    cr_assert_eq(kith_iter_log(t, me ^ 1, &it), 0);
    cr_assert_eq(kith_iter_next_log(it, &le[0]), KITH_ENOTFOUND);
    kith_iter_close(it);
    kith_txn_abort(&t);
}

/* ---- status ------------------------------------------------------------------------------- */

Test(iter, status_counts)
{
    kith_replica *r = fx.r[0];
    kith_status *s = NULL;
    cr_assert_eq(kith_status_get(r, &s), 0);
    cr_assert_eq(s->id, kith_replica_id(r));
    cr_assert_eq(s->vv.len, 0);
    cr_assert_eq(s->ops_logged, 0);
    cr_assert_eq(s->ncollections, 3);
    kith_status_free(s);

    kith_txn *t = kt_wbegin(r);
    kith_docid a = contact(t, "a");
    contact(t, "b");
    reminder(t, 5, "x");
    cr_assert_eq(kith_doc_delete(t, "contacts", &a), 0);
    kt_commit(t);
    cr_assert_eq(kith_status_get(r, &s), 0);
    cr_assert_eq(s->vv.len, 1);
    cr_assert_eq(s->vv.entries[0].origin, kith_replica_id(r));
    cr_assert_eq(s->vv.entries[0].seq, 8); /* 2 x (add, name) + add, due, text + delete */
    cr_assert_eq(s->ops_logged, 8);
    cr_assert_eq(s->pending_ops, 0);
    cr_assert_eq(s->open_conflicts, 0);
    cr_assert_gt(s->hlc, 0);
    cr_assert_str_eq(s->collections[0].collection, "contacts");
    cr_assert_eq(s->collections[0].live, 1);
    cr_assert_eq(s->collections[1].live, 0);
    cr_assert_eq(s->collections[2].live, 1);
    kith_status_free(s);

    kith_vv vv;
    cr_assert_eq(kith_vv_get(r, &vv), 0);
    cr_assert_eq(vv.len, 1);
    cr_assert_eq(vv.entries[0].seq, 8);
    kith_vv_free(&vv);
}

/* ---- conflicts ---------------------------------------------------------------------------- */

static size_t
conflicts(kith_replica *r, bool include_resolved, kith_conflict *out, size_t cap)
{
    kith_txn *t = kt_rbegin(r);
    kith_iter *it;
    kith_conflict c;
    size_t n = 0;
    int rc;

    cr_assert_eq(kith_iter_conflicts(t, include_resolved, &it), 0);
    while ((rc = kith_iter_next_conflict(it, &c)) == 0) {
        cr_assert_lt(n, cap);
        out[n++] = c;
    }
    cr_assert_eq(rc, KITH_ENOTFOUND);
    kith_iter_close(it);
    kith_txn_abort(&t);
    return n;
}

Test(conflicts, listed_resolved_and_restored)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kt_trust_pair(&a, &b);
    kith_docid c = kt_contact(a.r, "first");
    kt_sync(&a, &b);
    kt_set_str(a.r, "contacts", &c, "name", "from a");
    kt_set_str(b.r, "contacts", &c, "name", "from b");
    kt_sync(&a, &b);
    kt_sync(&b, &a);

    char va[64], vb[64];
    kt_get_str(a.r, "contacts", &c, "name", va, sizeof va);
    kt_get_str(b.r, "contacts", &c, "name", vb, sizeof vb);
    cr_assert_str_eq(va, vb, "replicas disagree on the winner");
    const char *loser = strcmp(va, "from a") == 0 ? "from b" : "from a";

    kith_conflict list[4];
    cr_assert_eq(conflicts(a.r, false, list, 4), 1);
    uint64_t id_a = list[0].id;
    cr_assert_eq(conflicts(b.r, false, list, 4), 1);
    uint64_t id = list[0].id;

    /* The record, read by id, on b. */
    kith_txn *t = kt_rbegin(b.r);
    kith_conflict got;
    cr_assert_eq(kith_conflict_get(t, id, &got), 0);
    cr_assert_str_eq(got.collection, "contacts");
    cr_assert_str_eq(got.field, "name");
    cr_assert(same(&got.doc, &c));
    cr_assert_not(got.resolved);
    cr_assert_gt(got.recorded_ms, 0);
    cr_assert_eq(got.winner.type, KITH_TYPE_STRING);
    cr_assert_eq(got.winner.u.s.len, strlen(va));
    cr_assert_eq(memcmp(got.winner.u.s.ptr, va, strlen(va)), 0);
    cr_assert_eq(got.loser.u.s.len, strlen(loser));
    cr_assert_eq(memcmp(got.loser.u.s.ptr, loser, strlen(loser)), 0);
    cr_assert_neq(got.winner_dot.origin, got.loser_dot.origin);
    cr_assert_geq(got.winner_hlc, got.loser_hlc);
    cr_assert_eq(kith_conflict_get(t, id + 100, &got), KITH_ENOTFOUND);
    cr_assert_eq(kith_conflict_resolve(t, id, false), KITH_EREADONLY);
    kith_txn_abort(&t);

    /* Resolve on a without restoring: the value stays, the record is marked. */
    t = kt_wbegin(a.r);
    cr_assert_eq(kith_conflict_resolve(t, id_a, false), 0);
    kt_commit(t);
    kith_conflict la[4];
    cr_assert_eq(conflicts(a.r, false, la, 4), 0);
    cr_assert_eq(conflicts(a.r, true, la, 4), 1);
    cr_assert(la[0].resolved);
    kith_status *s;
    cr_assert_eq(kith_status_get(a.r, &s), 0);
    cr_assert_eq(s->open_conflicts, 0);
    kith_status_free(s);
    kt_get_str(a.r, "contacts", &c, "name", va, sizeof va);
    cr_assert_str_neq(va, loser);

    /* Restore on b: the loser becomes the value, as a new write that replicates. */
    cr_assert_eq(conflicts(b.r, false, list, 4), 1);
    t = kt_wbegin(b.r);
    cr_assert_eq(kith_conflict_resolve(t, list[0].id, true), 0);
    kt_commit(t);
    kt_get_str(b.r, "contacts", &c, "name", vb, sizeof vb);
    cr_assert_str_eq(vb, loser);
    cr_assert_eq(conflicts(b.r, false, list, 4), 0);
    kith_apply_info info = kt_sync(&b, &a);
    cr_assert_eq(info.ops_new, 1);
    kt_get_str(a.r, "contacts", &c, "name", va, sizeof va);
    cr_assert_str_eq(va, loser, "the restored value did not replicate");
    cr_assert_eq(conflicts(a.r, false, list, 4), 0, "a causal overwrite is not a conflict");
    kt_free(&a);
    kt_free(&b);
}

Test(conflicts, overruled_delete_restored_deletes_again)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kt_trust_pair(&a, &b);
    kith_docid c = kt_contact(a.r, "doomed");
    kt_sync(&a, &b);
    kith_txn *t = kt_wbegin(a.r);
    cr_assert_eq(kith_doc_delete(t, "contacts", &c), 0);
    kt_commit(t);
    kt_set_str(b.r, "contacts", &c, "email", "still@here.org");
    kt_sync(&a, &b);
    kt_sync(&b, &a);

    /* Add wins: the edit keeps the document alive on both, and both say so. */
    kith_replica *reps[2] = {a.r, b.r};
    kith_conflict list[4];
    for (int i = 0; i < 2; i++) {
        t = kt_rbegin(reps[i]);
        cr_assert_eq(kith_doc_exists(t, "contacts", &c), 1, "replica %d lost the document", i);
        kith_txn_abort(&t);
        cr_assert_eq(conflicts(reps[i], false, list, 4), 1, "replica %d", i);
        cr_assert_str_eq(list[0].field, "", "a delete overruled has no field");
        cr_assert(same(&list[0].doc, &c));
    }

    /* Restoring the loser (the delete) deletes the document again, everywhere. */
    cr_assert_eq(conflicts(a.r, false, list, 4), 1);
    t = kt_wbegin(a.r);
    cr_assert_eq(kith_conflict_resolve(t, list[0].id, true), 0);
    cr_assert_eq(kith_doc_exists(t, "contacts", &c), 0);
    kt_commit(t);
    kt_sync(&a, &b);
    for (int i = 0; i < 2; i++) {
        t = kt_rbegin(reps[i]);
        cr_assert_eq(kith_doc_exists(t, "contacts", &c), 0, "replica %d kept the document", i);
        kith_txn_abort(&t);
    }
    cr_assert_eq(conflicts(a.r, false, list, 4), 0);
    kt_free(&a);
    kt_free(&b);
}

Test(conflicts, resolve_is_visible_in_its_txn_and_undone_by_abort)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kt_trust_pair(&a, &b);
    kith_docid c = kt_contact(a.r, "x");
    kt_sync(&a, &b);
    kt_set_str(a.r, "contacts", &c, "name", "ya");
    kt_set_str(b.r, "contacts", &c, "name", "yb");
    kt_sync(&b, &a);
    kith_conflict list[4], got;
    cr_assert_eq(conflicts(a.r, false, list, 4), 1);

    char before[32], after[32];
    kt_get_str(a.r, "contacts", &c, "name", before, sizeof before);
    kith_txn *t = kt_wbegin(a.r);
    cr_assert_eq(kith_conflict_resolve(t, list[0].id, true), 0);
    cr_assert_eq(kith_conflict_get(t, list[0].id, &got), 0);
    cr_assert(got.resolved, "not resolved inside its own transaction");
    kith_txn_abort(&t);
    cr_assert_eq(conflicts(a.r, false, list, 4), 1, "an aborted resolve stuck");
    kt_get_str(a.r, "contacts", &c, "name", after, sizeof after);
    cr_assert_str_eq(before, after, "an aborted restore changed the value");

    t = kt_wbegin(a.r);
    cr_assert_eq(kith_conflict_resolve(t, 999, false), KITH_ENOTFOUND);
    kith_txn_abort(&t);
    kt_free(&a);
    kt_free(&b);
}

/* A transaction that only resolves a conflict, after a write that made no op (a tag that was
 * not there) opened the store's cursors: its commit must close them before LMDB frees them
 * with the transaction (found by the generated convergence test under ASan, KITH_SEED=
 * 27979213520302: a double free). */
Test(conflicts, resolve_after_a_write_that_made_no_op)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kt_trust_pair(&a, &b);
    kith_docid c = kt_contact(a.r, "x");
    kt_sync(&a, &b);
    kt_set_str(a.r, "contacts", &c, "name", "ya");
    kt_set_str(b.r, "contacts", &c, "name", "yb");
    kt_sync(&b, &a);
    kith_conflict list[4];
    cr_assert_eq(conflicts(a.r, false, list, 4), 1);

    kith_txn *t = kt_wbegin(a.r);
    cr_assert_eq(kith_set_remove(t, "contacts", &c, "tags", "absent", 6), 0);
    cr_assert_eq(kith_conflict_resolve(t, list[0].id, false), 0);
    cr_assert_eq(kith_txn_commit(&t), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(conflicts(a.r, false, list, 4), 0, "the resolve was not committed");
    kith_verify_report rep;
    cr_assert_eq(kith_verify(a.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    kt_free(&a);
    kt_free(&b);
}

/* A commit that names a dot its receiver lacks waits: status counts it pending and the log
 * shows it not applied, until the missing ops arrive. */
Test(status, pending_ops_counted_and_logged_as_not_applied)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new();
    kt_trust_pair(&a, &b);
    kt_trust_pair(&a, &c);
    kt_trust_pair(&b, &c);
    kith_docid x = kt_contact(a.r, "x"); /* a: seqs 1, 2 */
    kt_sync(&a, &b);
    kt_set_str(b.r, "contacts", &x, "email", "x@example.org"); /* b: seq 1, names a's dot */

    /* b sends c only its own commit, as if c already held a's. */
    kith_dot e = {kith_replica_id(a.r), 2};
    kith_vv pretend = {1, &e};
    kith_batch_opts opts = {.since = &pretend};
    kith_buf buf = {0};
    kith_apply_info info = {0};
    cr_assert_eq(kith_batch_create(b.r, &opts, &buf, NULL), 0);
    int rc = kith_batch_apply(c.r, buf.data, buf.len, &info);
    kith_free(buf.data);
    cr_assert_eq(rc, 0, "apply: %s (%s)", kith_strerror(rc), kith_errmsg(c.r));
    cr_assert_eq(info.ops_new, 1);
    cr_assert_eq(info.ops_pending, 1);

    kith_status *s;
    cr_assert_eq(kith_status_get(c.r, &s), 0);
    cr_assert_eq(s->pending_ops, 1);
    cr_assert_eq(s->ops_logged, 1);
    cr_assert_eq(s->vv.len, 0, "a pending op is not in the version vector");
    cr_assert_eq(s->collections[0].live, 0);
    kith_status_free(s);
    kith_txn *t = kt_rbegin(c.r);
    kith_iter *it;
    kith_log_entry le;
    cr_assert_eq(kith_iter_log(t, 0, &it), 0);
    cr_assert_eq(kith_iter_next_log(it, &le), 0);
    cr_assert_eq(le.dot.origin, kith_replica_id(b.r));
    cr_assert_not(le.applied);
    cr_assert(le.commit_end);
    cr_assert_eq(le.replaced.origin, 0, "email was never set before");
    cr_assert_eq(kith_iter_next_log(it, &le), KITH_ENOTFOUND);
    kith_iter_close(it);
    kith_txn_abort(&t);
    kith_verify_report rep;
    cr_assert_eq(kith_verify(c.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);

    /* a's ops arrive: the pending commit applies. */
    kt_sync(&a, &c);
    cr_assert_eq(kith_status_get(c.r, &s), 0);
    cr_assert_eq(s->pending_ops, 0);
    cr_assert_eq(s->ops_logged, 3);
    cr_assert_eq(s->vv.len, 2);
    cr_assert_eq(s->collections[0].live, 1);
    kith_status_free(s);
    char v[32];
    kt_get_str(c.r, "contacts", &x, "email", v, sizeof v);
    cr_assert_str_eq(v, "x@example.org");
    cr_assert_eq(kith_verify(c.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
}

/* Deleting each document as the iterator passes it: every one is visited once. */
Test(iter, delete_while_iterating_visits_each_once)
{
    kith_replica *r = fx.r[0];
    kith_docid c[40], got;
    kith_txn *t = kt_wbegin(r);
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "n%02d", 39 - i);
        c[i] = contact(t, name);
    }
    kt_commit(t);

    t = kt_wbegin(r);
    kith_iter *it;
    int n = 0, rc;
    cr_assert_eq(kith_iter_index(t, "contacts.name", NULL, NULL, NULL, &it), 0);
    while ((rc = kith_iter_next(it, &got)) == 0) {
        cr_assert_lt(n, 40);
        cr_assert(same(&got, &c[39 - n]), "visit %d out of order", n);
        cr_assert_eq(kith_doc_delete(t, "contacts", &got), 0);
        n++;
    }
    cr_assert_eq(rc, KITH_ENOTFOUND);
    kith_iter_close(it);
    cr_assert_eq(n, 40);
    kith_txn_abort(&t);

    /* The same over the docs database itself, which each delete changes under the cursor. */
    t = kt_wbegin(r);
    n = 0;
    cr_assert_eq(kith_iter_docs(t, "contacts", &it), 0);
    while ((rc = kith_iter_next(it, &got)) == 0) {
        cr_assert_lt(n, 40);
        cr_assert(same(&got, &c[n]), "visit %d out of order", n);
        cr_assert_eq(kith_doc_delete(t, "contacts", &got), 0);
        n++;
    }
    cr_assert_eq(rc, KITH_ENOTFOUND);
    kith_iter_close(it);
    cr_assert_eq(n, 40);
    kt_commit(t);
    t = kt_rbegin(r);
    cr_assert_eq(kith_iter_docs(t, "contacts", &it), 0);
    cr_assert_eq(kith_iter_next(it, &got), KITH_ENOTFOUND);
    kith_iter_close(it);
    kith_txn_abort(&t);
}
