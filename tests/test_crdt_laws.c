/*
 * test_crdt_laws.c — the CRDT rules of spec/data-model.md, on the in-memory model
 * (core/mem.c). Fixed scenarios pin each rule (the ids in comments are the spec's); generated
 * histories check the laws: 3 to 5 replicas make random local commits (documents created and
 * deleted; fields set to random values, set elements added and removed, counters incremented
 * by any int64, flags enabled and disabled) interleaved with random partial syncs under
 * skewed clocks; every commit goes through the codec (encoded, decoded, re-encoded to the
 * same bytes) and the decoded copy is what the others receive; then every replica receives
 * every commit in a random order, with duplicates and dropped deliveries that come again
 * later, and all states must be byte-identical. Half the cases deliver in causal order, half
 * in any order that only respects the dots each commit names (what a store's pending queue
 * allows). Merge is checked commutative, associative and idempotent at the level of sets of
 * commits, and conflicts are checked to be recorded exactly for the registers whose writes
 * fork. Each law runs on four workloads: registers and sets, counters, flags, and every kind
 * at once.
 *
 * KITH_SEED replays a run (the seed and case number are printed with every failure) and
 * KITH_CASES sets the number of generated cases.
 */
#include "core.h"
#include "mem.h"
#include "seeded_rng.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1795629600000ull /* 2026-11-25T18:00:00Z */

/* The names the fixed scenarios write; the model knows no schema, only names. */
#define C_CONTACTS "contacts"
#define C_REMINDERS "reminders"
#define F_NAME "name"
#define F_EMAIL "email"
#define F_PHONE "phone"
#define F_TAGS "tags"

static const kith_dot NODOT = {0, 0};

static bool
dot_is(kith_dot a, kith_dot b)
{
    return a.origin == b.origin && a.seq == b.seq;
}

/* ---- small helpers ------------------------------------------------------------------- */

static struct kith__memrep *
new_mem(uint64_t id)
{
    struct kith__memrep *m = NULL;
    cr_assert_eq(kith__memrep_new(id, &m), 0);
    return m;
}

static kith_value
sv(const char *s)
{
    kith_value v;
    memset(&v, 0, sizeof v);
    v.type = KITH_TYPE_STRING;
    v.u.s.ptr = s;
    v.u.s.len = strlen(s);
    return v;
}

static void
set_str(struct kith__memrep *m, const char *coll, kith_dot doc, const char *field, const char *s)
{
    kith_value v = sv(s);
    int rc = kith__memrep_field_set(m, coll, doc, field, &v);
    cr_assert_eq(rc, 0, "field_set: %s", kith_errname(rc));
}

static void
tag(struct kith__memrep *m, kith_dot doc, bool add, const char *t)
{
    int rc = add ? kith__memrep_set_add(m, C_CONTACTS, doc, F_TAGS, t, strlen(t))
                 : kith__memrep_set_remove(m, C_CONTACTS, doc, F_TAGS, t, strlen(t));
    cr_assert_eq(rc, 0);
}

static struct kith__commit *
commit(struct kith__memrep *m)
{
    struct kith__commit *c = NULL;
    cr_assert_eq(kith__memrep_commit(m, &c), 0);
    cr_assert_not_null(c);
    return c;
}

static void
apply_ok(struct kith__memrep *m, const struct kith__commit *c)
{
    int rc = kith__memrep_apply(m, c, KITH__MEMREP_NO_CLOCK);
    cr_assert_eq(rc, 0, "apply: %d", rc);
}

static char *
dump(const struct kith__memrep *m, unsigned flags)
{
    struct kith__wbuf b = {0};
    cr_assert_eq(kith__memrep_dump(m, flags, &b), 0);
    cr_assert_eq(kith__wbuf_put(&b, "", 1), 0);
    return (char *)b.data;
}

static void
assert_same(const struct kith__memrep *a, const struct kith__memrep *b)
{
    for (unsigned f = 0; f <= KITH__MEMREP_DUMP_LIVE; f++) {
        char *x = dump(a, f), *y = dump(b, f);
        cr_assert_str_eq(x, y);
        free(x);
        free(y);
    }
}

static bool
str_is(kith_value v, const char *s)
{
    return v.type == KITH_TYPE_STRING && v.u.s.len == strlen(s) &&
           memcmp(v.u.s.ptr, s, v.u.s.len) == 0;
}

/* A contact created on `a` and delivered to `b`. */
static kith_dot
shared_contact(struct kith__memrep *a, struct kith__memrep *b, uint64_t wall)
{
    kith_dot doc;
    cr_assert_eq(kith__memrep_begin(a, wall), 0);
    cr_assert_eq(kith__memrep_doc_create(a, C_CONTACTS, &doc), 0);
    set_str(a, C_CONTACTS, doc, F_NAME, "Ann");
    struct kith__commit *c = commit(a);
    apply_ok(b, c);
    kith__memrep_commit_free(c);
    return doc;
}

/* ---- fixed scenarios ----------------------------------------------------------------- */

/* LWW-1..4, worked example "Two devices edit the same contact". */
Test(crdt, concurrent_writes_record_one_conflict_everywhere)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2);
    kith_dot doc = shared_contact(a, b, T0);

    cr_assert_eq(kith__memrep_begin(a, T0 + 1000), 0);
    set_str(a, C_CONTACTS, doc, F_EMAIL, "ann@home.org");
    struct kith__commit *ca = commit(a);
    cr_assert_eq(kith__memrep_begin(b, T0 + 2000), 0); /* later clock: b's write wins */
    set_str(b, C_CONTACTS, doc, F_EMAIL, "ann@work.com");
    struct kith__commit *cb = commit(b);
    cr_assert(dot_is(ca->ops[0].replaced, NODOT));
    apply_ok(a, cb);
    apply_ok(b, ca);

    for (int i = 0; i < 2; i++) {
        struct kith__memrep *m = i ? b : a;
        kith_value v;
        cr_assert_eq(kith__memrep_field_get(m, C_CONTACTS, doc, F_EMAIL, &v, NULL, NULL), 0);
        cr_assert(str_is(v, "ann@work.com"));
        cr_assert_eq(kith__memrep_nconflicts(m), 1, "replica %d", i);
        struct kith__memrep_conflict k;
        cr_assert_eq(kith__memrep_conflict_get(m, 0, &k), 0);
        cr_assert_str_eq(k.coll, C_CONTACTS);
        cr_assert_str_eq(k.field, F_EMAIL);
        cr_assert(k.winner_dot.origin == 0xb2 && k.loser_dot.origin == 0xa1);
        cr_assert(str_is(k.winner, "ann@work.com") && str_is(k.loser, "ann@home.org"));
        cr_assert_gt(k.winner_hlc, k.loser_hlc);
    }
    assert_same(a, b);

    /* LWW-3: a causal overwrite (a has seen both) is no conflict anywhere */
    cr_assert_eq(kith__memrep_begin(a, T0 + 3000), 0);
    set_str(a, C_CONTACTS, doc, F_EMAIL, "ann@new.org");
    struct kith__commit *c2 = commit(a);
    cr_assert_eq(c2->ops[0].replaced.origin, 0xb2);
    apply_ok(b, c2);
    cr_assert_eq(kith__memrep_nconflicts(a), 1);
    cr_assert_eq(kith__memrep_nconflicts(b), 1);
    assert_same(a, b);
    kith__memrep_commit_free(ca);
    kith__memrep_commit_free(cb);
    kith__memrep_commit_free(c2);
    kith__memrep_free(a);
    kith__memrep_free(b);
}

/* LWW-2: equal HLCs are ordered by origin, then seq; the loser is recorded on both sides
 * even though it arrived last on one and first on the other. */
Test(crdt, equal_clocks_order_by_origin)
{
    struct kith__memrep *a = new_mem(0x10), *b = new_mem(0x20);
    kith_dot doc = shared_contact(a, b, T0);
    uint64_t h = kith__memrep_hlc(b);
    cr_assert_eq(kith__memrep_hlc(a), h);
    cr_assert_eq(kith__memrep_begin(a, 0), 0); /* both tick from the same clock */
    set_str(a, C_CONTACTS, doc, F_PHONE, "1");
    struct kith__commit *ca = commit(a);
    cr_assert_eq(kith__memrep_begin(b, 0), 0);
    set_str(b, C_CONTACTS, doc, F_PHONE, "2");
    struct kith__commit *cb = commit(b);
    cr_assert_eq(ca->hlc, cb->hlc);
    apply_ok(a, cb);
    apply_ok(b, ca);
    kith_value v;
    cr_assert_eq(kith__memrep_field_get(a, C_CONTACTS, doc, F_PHONE, &v, NULL, NULL), 0);
    cr_assert(str_is(v, "2"), "origin 0x20 > 0x10 wins");
    assert_same(a, b);
    cr_assert_eq(kith__memrep_nconflicts(a), 1);
    cr_assert_eq(kith__memrep_nconflicts(b), 1);
    kith__memrep_commit_free(ca);
    kith__memrep_commit_free(cb);
    kith__memrep_free(a);
    kith__memrep_free(b);
}

/* DOC-2..4, worked example "Delete against edit". */
Test(crdt, delete_concurrent_with_edit_keeps_the_document)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2);
    kith_dot doc = shared_contact(a, b, T0);
    cr_assert_eq(kith__memrep_begin(a, T0 + 1000), 0);
    cr_assert_eq(kith__memrep_doc_delete(a, C_CONTACTS, doc), 0);
    struct kith__commit *del = commit(a);
    cr_assert(!kith__memrep_doc_live(a, C_CONTACTS, doc));
    cr_assert_eq(kith__memrep_begin(b, T0 + 500), 0);
    set_str(b, C_CONTACTS, doc, F_PHONE, "555");
    struct kith__commit *ed = commit(b);
    apply_ok(a, ed);
    apply_ok(b, del);
    for (int i = 0; i < 2; i++) {
        struct kith__memrep *m = i ? b : a;
        cr_assert(kith__memrep_doc_live(m, C_CONTACTS, doc), "replica %d lost the document", i);
        kith_value v;
        cr_assert_eq(kith__memrep_field_get(m, C_CONTACTS, doc, F_PHONE, &v, NULL, NULL), 0);
        cr_assert(str_is(v, "555"));
        cr_assert_eq(kith__memrep_nconflicts(m), 1);
        struct kith__memrep_conflict k;
        cr_assert_eq(kith__memrep_conflict_get(m, 0, &k), 0);
        cr_assert_null(k.field, "a membership conflict");
        cr_assert_eq(k.winner_dot.origin, 0xb2);
        /* b saw the delete arrive and knows it; a saw the edit revive its deleted contact */
        cr_assert_eq(k.loser_dot.origin, i ? 0xa1 : 0);
    }
    assert_same(a, b);
    /* a delete that has seen the edit removes the document everywhere, without conflict */
    cr_assert_eq(kith__memrep_begin(a, T0 + 2000), 0);
    cr_assert_eq(kith__memrep_doc_delete(a, C_CONTACTS, doc), 0);
    struct kith__commit *del2 = commit(a);
    apply_ok(b, del2);
    cr_assert(!kith__memrep_doc_live(a, C_CONTACTS, doc) &&
              !kith__memrep_doc_live(b, C_CONTACTS, doc));
    cr_assert_eq(kith__memrep_nconflicts(b), 1);
    assert_same(a, b);
    kith__memrep_commit_free(del);
    kith__memrep_commit_free(ed);
    kith__memrep_commit_free(del2);
    kith__memrep_free(a);
    kith__memrep_free(b);
}

/* ORSET-1..3, worked example "Tag added on one device, removed on another". */
Test(crdt, add_concurrent_with_remove_keeps_the_tag)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2);
    kith_dot doc = shared_contact(a, b, T0);
    cr_assert_eq(kith__memrep_begin(a, T0 + 10), 0);
    tag(a, doc, true, "vip");
    tag(a, doc, true, "old");
    struct kith__commit *c1 = commit(a);
    apply_ok(b, c1);

    cr_assert_eq(kith__memrep_begin(a, T0 + 20), 0);
    tag(a, doc, false, "vip");
    tag(a, doc, false, "old");
    struct kith__commit *ra = commit(a);
    cr_assert_eq(kith__memrep_begin(b, T0 + 15), 0);
    tag(b, doc, true, "vip");  /* re-add, observing a's dot */
    tag(b, doc, false, "old"); /* concurrent remove of the same dot */
    tag(b, doc, true, "new");
    struct kith__commit *rb = commit(b);
    cr_assert_eq(rb->ops[0].nobserved, 1);
    apply_ok(a, rb);
    apply_ok(b, ra);
    for (int i = 0; i < 2; i++) {
        struct kith__memrep *m = i ? b : a;
        cr_assert(kith__memrep_set_has(m, C_CONTACTS, doc, F_TAGS, "vip", 3), "add wins");
        cr_assert(!kith__memrep_set_has(m, C_CONTACTS, doc, F_TAGS, "old", 3));
        cr_assert(kith__memrep_set_has(m, C_CONTACTS, doc, F_TAGS, "new", 3));
        kith_dot d[4];
        cr_assert_eq(kith__memrep_set_dots(m, C_CONTACTS, doc, F_TAGS, "vip", 3, d, 4), 1);
        cr_assert_eq(d[0].origin, 0xb2);
    }
    assert_same(a, b);
    /* two concurrent adds keep two dots; a remove that saw both empties the element */
    cr_assert_eq(kith__memrep_begin(a, T0 + 30), 0);
    tag(a, doc, true, "x");
    struct kith__commit *xa = commit(a);
    cr_assert_eq(kith__memrep_begin(b, T0 + 30), 0);
    tag(b, doc, true, "x");
    struct kith__commit *xb = commit(b);
    apply_ok(a, xb);
    apply_ok(b, xa);
    cr_assert_eq(kith__memrep_set_dots(a, C_CONTACTS, doc, F_TAGS, "x", 1, NULL, 0), 2);
    cr_assert_eq(kith__memrep_begin(a, T0 + 40), 0);
    tag(a, doc, false, "x");
    struct kith__commit *xr = commit(a);
    cr_assert_eq(xr->ops[0].nobserved, 2);
    apply_ok(b, xr);
    cr_assert(!kith__memrep_set_has(b, C_CONTACTS, doc, F_TAGS, "x", 1));
    assert_same(a, b);
    struct kith__commit *all[] = {c1, ra, rb, xa, xb, xr};
    for (size_t i = 0; i < 6; i++)
        kith__memrep_commit_free(all[i]);
    kith__memrep_free(a);
    kith__memrep_free(b);
}

/* TOUCH-2: an edit and a delete of the same document in one commit leave it deleted on the
 * author and on every receiver. */
Test(crdt, edit_then_delete_in_one_commit_stays_deleted)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2);
    kith_dot doc = shared_contact(a, b, T0);
    cr_assert_eq(kith__memrep_begin(a, T0 + 10), 0);
    set_str(a, C_CONTACTS, doc, F_PHONE, "1");
    tag(a, doc, true, "t");
    cr_assert_eq(kith__memrep_doc_delete(a, C_CONTACTS, doc), 0);
    struct kith__commit *c = commit(a);
    cr_assert_eq(c->nops, 3);
    cr_assert_eq(c->ops[2].nobserved, 1, "the delete observes the commit's own touch");
    cr_assert_eq(c->ops[2].observed[0].seq, c->first_seq + 1);
    apply_ok(b, c);
    cr_assert(!kith__memrep_doc_live(a, C_CONTACTS, doc));
    cr_assert(!kith__memrep_doc_live(b, C_CONTACTS, doc));
    cr_assert_eq(kith__memrep_nconflicts(b), 0);
    assert_same(a, b);
    kith__memrep_commit_free(c);
    kith__memrep_free(a);
    kith__memrep_free(b);
}

/* TOUCH-1: edits from many commits leave at most one membership dot per origin. */
Test(crdt, membership_stays_bounded_by_origins)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2);
    kith_dot doc = shared_contact(a, b, T0);
    for (int i = 0; i < 50; i++) {
        struct kith__memrep *w = i % 3 ? a : b, *r = i % 3 ? b : a;
        cr_assert_eq(kith__memrep_begin(w, T0 + 100 + (uint64_t)i), 0);
        set_str(w, C_CONTACTS, doc, F_PHONE, i % 2 ? "1" : "2");
        if (i % 5 == 0)
            tag(w, doc, i % 10 == 0, "t");
        struct kith__commit *c = commit(w);
        apply_ok(r, c);
        kith__memrep_commit_free(c);
        cr_assert_leq(kith__memrep_doc_dots(a, C_CONTACTS, doc, NULL, 0), 2);
    }
    kith_dot d[4];
    cr_assert_eq(kith__memrep_doc_dots(b, C_CONTACTS, doc, d, 4), 2);
    cr_assert(d[0].origin == 0xa1 && d[1].origin == 0xb2);
    assert_same(a, b);
    kith__memrep_free(a);
    kith__memrep_free(b);
}

/* PEND-1, PEND-2: a commit waits for its origin's earlier commits and for the dots it names;
 * a refused commit changes nothing; a known one is skipped. */
Test(crdt, pending_rules)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2), *c = new_mem(0xc3);
    kith_dot doc = shared_contact(a, b, T0);
    struct kith__commit *create = NULL;
    cr_assert_eq(kith__memrep_begin(b, T0 + 10), 0);
    set_str(b, C_CONTACTS, doc, F_NAME, "Anna"); /* names a's write */
    struct kith__commit *cb = commit(b);
    cr_assert_eq(cb->ops[0].replaced.origin, 0xa1);
    char *before = dump(c, 0);
    cr_assert_eq(kith__memrep_apply(c, cb, KITH__MEMREP_NO_CLOCK), KITH_EGAP);
    char *after = dump(c, 0);
    cr_assert_str_eq(before, after);
    cr_assert_eq(kith__vv_get(kith__memrep_vv(c), 0xb2), 0);
    free(before);
    free(after);

    /* a's commits 1..2 (create + name) and 3 (phone): 3 before 1..2 is a gap */
    cr_assert_eq(kith__memrep_begin(a, T0 + 20), 0);
    set_str(a, C_CONTACTS, doc, F_PHONE, "9");
    struct kith__commit *ca3 = commit(a);
    cr_assert_eq(ca3->first_seq, 3);
    cr_assert_eq(kith__memrep_apply(c, ca3, KITH__MEMREP_NO_CLOCK), KITH_EGAP);
    /* a's first commit again: the same local writes at the same clock make the same commit */
    struct kith__memrep *a2 = new_mem(0xa1);
    cr_assert_eq(kith__memrep_begin(a2, T0), 0);
    kith_dot doc2;
    cr_assert_eq(kith__memrep_doc_create(a2, C_CONTACTS, &doc2), 0);
    set_str(a2, C_CONTACTS, doc2, F_NAME, "Ann");
    create = commit(a2);
    cr_assert(dot_is(doc2, doc), "the same history gives the same document id");
    apply_ok(c, create);
    cr_assert_eq(kith__memrep_apply(c, create, KITH__MEMREP_NO_CLOCK), KITH__MEMREP_KNOWN);
    apply_ok(c, cb);
    apply_ok(c, ca3);
    cr_assert_eq(kith__memrep_apply(c, cb, KITH__MEMREP_NO_CLOCK), KITH__MEMREP_KNOWN);
    apply_ok(b, ca3);
    assert_same(b, c);

    /* a commit that straddles what is held, and malformed ops, are refused */
    struct kith__commit bad = *ca3;
    bad.first_seq = 3;
    bad.nops = 2;
    struct kith__op two[2] = {ca3->ops[0], ca3->ops[0]};
    bad.ops = two;
    cr_assert_eq(kith__memrep_apply(c, &bad, KITH__MEMREP_NO_CLOCK), KITH_EINVAL);
    struct kith__op op = ca3->ops[0];
    struct kith__commit one = {.origin = 0xd4,
                               .first_seq = 1,
                               .hlc = T0 << 16,
                               .format = 2,
                               .nops = 1,
                               .ops = &op,
                               .nnames = ca3->nnames,
                               .names = ca3->names};
    op.cname = (uint16_t)ca3->nnames; /* no such name */
    cr_assert_eq(kith__memrep_apply(c, &one, KITH__MEMREP_NO_CLOCK), KITH_EINVAL);
    op = ca3->ops[0];
    op.value.type = KITH_TYPE_SET; /* a field's kind, never a value's */
    cr_assert_eq(kith__memrep_apply(c, &one, KITH__MEMREP_NO_CLOCK), KITH_EINVAL);
    op = ca3->ops[0];
    op.kind = KITH_OP_COUNTER_ADD; /* a counter's delta is an INT */
    cr_assert_eq(kith__memrep_apply(c, &one, KITH__MEMREP_NO_CLOCK), KITH_EINVAL);
    op = ca3->ops[0];
    op.kind = KITH_OP_SET_ADD;
    op.value.u.s.len = 0; /* an element is never empty */
    cr_assert_eq(kith__memrep_apply(c, &one, KITH__MEMREP_NO_CLOCK), KITH_EINVAL);
    op = ca3->ops[0];
    op.kind = 9; /* no such kind */
    cr_assert_eq(kith__memrep_apply(c, &one, KITH__MEMREP_NO_CLOCK), KITH_EINVAL);
    struct kith__name bad_names[2] = {ca3->names[0], {"not a name", 10}};
    one.names = bad_names;
    op = ca3->ops[0];
    op.fname = 1;
    cr_assert_eq(kith__memrep_apply(c, &one, KITH__MEMREP_NO_CLOCK), KITH_EINVAL);
    one.names = ca3->names;
    op = create->ops[0]; /* DOC_ADD of its own document may not observe */
    op.doc.origin = 0xd4;
    op.nobserved = 1;
    op.observed = &create->ops[0].doc;
    cr_assert_eq(kith__memrep_apply(c, &one, KITH__MEMREP_NO_CLOCK), KITH_EINVAL);
    op.nobserved = 0;
    op.observed = NULL;
    op.doc.seq = 1;
    apply_ok(c, &one);
    cr_assert(kith__memrep_doc_live(c, C_CONTACTS, op.doc));

    kith__memrep_commit_free(create);
    kith__memrep_commit_free(cb);
    kith__memrep_commit_free(ca3);
    kith__memrep_free(a);
    kith__memrep_free(a2);
    kith__memrep_free(b);
    kith__memrep_free(c);
}

/* PEND-3, HLC-1..2: a commit more than 60 s ahead of the local clock waits; once applied, the
 * clock has moved past it, so the next local write orders after it. */
Test(crdt, clock_skew_waits)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2);
    uint64_t ahead = T0 + 120000;
    cr_assert_eq(kith__memrep_begin(a, ahead), 0);
    kith_dot doc;
    cr_assert_eq(kith__memrep_doc_create(a, C_CONTACTS, &doc), 0);
    set_str(a, C_CONTACTS, doc, F_NAME, "Ann");
    struct kith__commit *c = commit(a);
    char *before = dump(b, 0);
    cr_assert_eq(kith__memrep_apply(b, c, T0), KITH__MEMREP_TOO_EARLY);
    cr_assert_eq(kith__memrep_apply(b, c, ahead - 60001), KITH__MEMREP_TOO_EARLY);
    char *after = dump(b, 0);
    cr_assert_str_eq(before, after);
    cr_assert_eq(kith__memrep_hlc(b), 0);
    cr_assert_eq(kith__memrep_apply(b, c, ahead - 60000), 0);
    cr_assert_geq(kith__memrep_hlc(b), c->hlc);
    cr_assert_eq(kith__memrep_begin(b, T0 + 1), 0); /* b's wall clock is still behind */
    set_str(b, C_CONTACTS, doc, F_NAME, "Anna");
    struct kith__commit *cb = commit(b);
    cr_assert_gt(cb->hlc, c->hlc);
    apply_ok(a, cb);
    kith_value v;
    cr_assert_eq(kith__memrep_field_get(a, C_CONTACTS, doc, F_NAME, &v, NULL, NULL), 0);
    cr_assert(str_is(v, "Anna"), "the causally later write wins despite the slower clock");
    cr_assert_eq(kith__memrep_nconflicts(a), 0);
    free(before);
    free(after);
    kith__memrep_commit_free(c);
    kith__memrep_commit_free(cb);
    kith__memrep_free(a);
    kith__memrep_free(b);
}

/* The local API refuses what a replica's transaction refuses, and changes nothing then. It
 * knows no schema: a value only has to fit its op's kind (a declared schema's rules are the
 * store's), so an e-mail address without '@' is just a string here. */
Test(crdt, local_writes_are_checked)
{
    struct kith__memrep *a = new_mem(0xa1);
    kith_dot doc;
    kith_value v = sv("x");
    cr_assert_eq(kith__memrep_field_set(a, C_CONTACTS, NODOT, F_NAME, &v), KITH_EINVAL,
                 "none open");
    cr_assert_eq(kith__memrep_begin(a, T0), 0);
    cr_assert_eq(kith__memrep_begin(a, T0), KITH_EINVAL);
    cr_assert_eq(kith__memrep_doc_create(a, C_CONTACTS, &doc), 0);
    v = sv("nobody");
    cr_assert_eq(kith__memrep_field_set(a, C_CONTACTS, doc, F_EMAIL, &v), 0, "no schema here");
    /* values that fit no op of the kind */
    cr_assert_eq(kith__memrep_set_add(a, C_CONTACTS, doc, F_TAGS, "", 0), KITH_EINVAL);
    cr_assert_eq(kith__memrep_set_add(a, C_CONTACTS, doc, F_TAGS, "a\0b", 3), KITH_EINVAL);
    cr_assert_eq(kith__memrep_set_add(a, C_CONTACTS, doc, F_TAGS, "\xff", 1), KITH_EINVAL);
    char big[KITH__MAX_ELEM_BYTES + 1];
    memset(big, 'a', sizeof big);
    cr_assert_eq(kith__memrep_set_add(a, C_CONTACTS, doc, F_TAGS, big, sizeof big), KITH_ETOOBIG);
    v.type = KITH_TYPE_SET;
    cr_assert_eq(kith__memrep_field_set(a, C_CONTACTS, doc, F_PHONE, &v), KITH_EINVAL);
    v = sv("caf\xc3");
    cr_assert_eq(kith__memrep_field_set(a, C_CONTACTS, doc, F_PHONE, &v), KITH_EINVAL, "UTF-8");
    memset(&v, 0, sizeof v);
    v.type = KITH_TYPE_TIME;
    v.u.i = KITH__TIME_MAX_MS + 1;
    cr_assert_eq(kith__memrep_field_set(a, C_CONTACTS, doc, F_PHONE, &v), KITH_EINVAL);
    /* names */
    v = sv("x");
    cr_assert_eq(kith__memrep_field_set(a, C_CONTACTS, doc, "no spaces", &v), KITH_EINVAL);
    cr_assert_eq(kith__memrep_field_set(a, C_CONTACTS, doc, "", &v), KITH_EINVAL);
    cr_assert_eq(kith__memrep_field_set(a, C_CONTACTS, doc, NULL, &v), KITH_EINVAL);
    cr_assert_eq(kith__memrep_doc_create(a, "1st", NULL), KITH_EINVAL);
    cr_assert_eq(kith__memrep_counter_add(a, C_CONTACTS, doc, "_x", 1), KITH_EINVAL);
    /* the document must be live here; it is named by its collection too */
    kith_dot ghost = {0xa1, 99};
    cr_assert_eq(kith__memrep_field_set(a, C_CONTACTS, ghost, F_PHONE, &v), KITH_ENOTFOUND);
    cr_assert_eq(kith__memrep_field_set(a, C_REMINDERS, doc, F_PHONE, &v), KITH_ENOTFOUND);
    cr_assert_eq(kith__memrep_counter_add(a, C_CONTACTS, ghost, "visits", 1), KITH_ENOTFOUND);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, ghost, "starred", true), KITH_ENOTFOUND);
    cr_assert_eq(kith__memrep_doc_delete(a, C_CONTACTS, ghost), KITH_ENOTFOUND);
    /* writes of nothing make no op */
    cr_assert_eq(kith__memrep_set_remove(a, C_CONTACTS, doc, F_TAGS, "absent", 6), 0);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, doc, "starred", false), 0);
    struct kith__commit *c = commit(a);
    cr_assert_eq(c->nops, 2, "failed and empty writes made no ops");
    cr_assert_eq(c->format, 2);
    cr_assert_eq(c->nnames, 2, "contacts and email");
    cr_assert_str_eq(c->names[c->ops[1].cname].ptr, "contacts");
    cr_assert_str_eq(c->names[c->ops[1].fname].ptr, "email");
    kith__memrep_commit_free(c);
    cr_assert_eq(kith__memrep_begin(a, T0), 0);
    cr_assert_eq(kith__memrep_set_remove(a, C_CONTACTS, doc, F_TAGS, "absent", 6), 0);
    c = (struct kith__commit *)1;
    cr_assert_eq(kith__memrep_commit(a, &c), 0);
    cr_assert_null(c, "an empty commit is no commit");
    cr_assert_eq(kith__vv_get(kith__memrep_vv(a), 0xa1), 2);
    kith__memrep_free(a);
}

/* ---- names ---------------------------------------------------------------------------- */

/* Names: each replica numbers the names it meets in its own order, and nothing shows it:
 * commits carry names, conflicts and dumps give names. */
Test(crdt, replicas_number_names_independently)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2);
    kith_dot r;
    cr_assert_eq(kith__memrep_begin(b, T0), 0); /* b meets reminders and text first */
    cr_assert_eq(kith__memrep_doc_create(b, C_REMINDERS, &r), 0);
    set_str(b, C_REMINDERS, r, "text", "call Ann");
    struct kith__commit *cr = commit(b);
    kith_dot doc = shared_contact(a, b, T0 + 1);
    apply_ok(a, cr);
    cr_assert_eq(kith__memrep_begin(a, T0 + 2), 0);
    set_str(a, C_CONTACTS, doc, F_PHONE, "1");
    set_str(a, C_REMINDERS, r, "text", "call Anne");
    struct kith__commit *ca = commit(a);
    cr_assert_eq(kith__memrep_begin(b, T0 + 3), 0);
    set_str(b, C_REMINDERS, r, "text", "call Bob");
    set_str(b, C_CONTACTS, doc, F_PHONE, "2");
    struct kith__commit *cb = commit(b);
    cr_assert_neq(ca->ops[0].coll, cb->ops[1].coll, "the two number contacts differently");
    apply_ok(a, cb);
    apply_ok(b, ca);
    assert_same(a, b);
    for (int i = 0; i < 2; i++) {
        struct kith__memrep *m = i ? b : a;
        cr_assert_eq(kith__memrep_nconflicts(m), 2);
        for (size_t k = 0; k < 2; k++) {
            struct kith__memrep_conflict x;
            cr_assert_eq(kith__memrep_conflict_get(m, k, &x), 0);
            bool phone = strcmp(x.coll, C_CONTACTS) == 0 && strcmp(x.field, F_PHONE) == 0;
            bool text = strcmp(x.coll, C_REMINDERS) == 0 && strcmp(x.field, "text") == 0;
            cr_assert(phone || text, "%s.%s", x.coll, x.field);
        }
    }
    /* reads of names never seen are absent, and create nothing */
    cr_assert(!kith__memrep_doc_live(a, "nothing", doc));
    cr_assert_eq(kith__memrep_field_get(a, C_CONTACTS, doc, "nothing", NULL, NULL, NULL),
                 KITH_ENOTFOUND);
    cr_assert(!kith__memrep_set_has(a, C_CONTACTS, doc, "nothing", "x", 1));
    cr_assert(!kith__memrep_flag_get(a, C_CONTACTS, doc, "nothing"));
    assert_same(a, b);
    kith__memrep_commit_free(cr);
    kith__memrep_commit_free(ca);
    kith__memrep_commit_free(cb);
    kith__memrep_free(a);
    kith__memrep_free(b);
}

/* A commit of format 1 decodes to the names of kith__v1_names, and applies by them like one
 * of format 2: a contact created by one and edited by the other is one document. */
Test(crdt, format_1_commits_apply_by_their_names)
{
    struct kith__op ops[3];
    memset(ops, 0, sizeof ops);
    ops[0].kind = KITH_OP_DOC_ADD;
    ops[0].cname = 0; /* contacts */
    ops[0].doc = (kith_dot){0xa1, 1};
    ops[1].kind = KITH_OP_FIELD_SET;
    ops[1].cname = 0;
    ops[1].fname = (uint16_t)kith__v1_field(0, 1); /* name */
    ops[1].doc = ops[0].doc;
    ops[1].value = sv("Ann");
    ops[2].kind = KITH_OP_SET_ADD;
    ops[2].cname = 0;
    ops[2].fname = (uint16_t)kith__v1_field(0, 7); /* tags */
    ops[2].doc = ops[0].doc;
    ops[2].value = sv("vip");
    struct kith__commit v1 = {.origin = 0xa1,
                              .first_seq = 1,
                              .hlc = T0 << 16,
                              .format = 1,
                              .nops = 3,
                              .ops = ops,
                              .nnames = 19,
                              .names = kith__v1_names};
    struct kith__memrep *b = new_mem(0xb2), *c = new_mem(0xc3);
    apply_ok(b, &v1);
    kith_value v;
    cr_assert_eq(kith__memrep_field_get(b, C_CONTACTS, ops[0].doc, F_NAME, &v, NULL, NULL), 0);
    cr_assert(str_is(v, "Ann"));
    cr_assert(kith__memrep_set_has(b, C_CONTACTS, ops[0].doc, F_TAGS, "vip", 3));
    cr_assert_eq(kith__memrep_begin(b, T0 + 10), 0);
    set_str(b, C_CONTACTS, ops[0].doc, F_NAME, "Anna");
    struct kith__commit *cb = commit(b);
    cr_assert_eq(cb->format, 2);
    apply_ok(c, &v1);
    apply_ok(c, cb);
    assert_same(b, c);
    cr_assert_eq(kith__memrep_nconflicts(c), 0, "it replaced the format-1 write");
    kith__memrep_commit_free(cb);
    kith__memrep_free(b);
    kith__memrep_free(c);
}

/* The commits the model makes are format-2 commits the codec takes: every kind of op,
 * encoded, decoded and applied elsewhere, gives the same state. */
Test(crdt, local_commits_round_trip_through_the_codec)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2);
    cr_assert_eq(kith__memrep_begin(a, T0), 0);
    kith_dot doc, gone;
    cr_assert_eq(kith__memrep_doc_create(a, C_CONTACTS, &doc), 0);
    cr_assert_eq(kith__memrep_doc_create(a, C_REMINDERS, &gone), 0);
    set_str(a, C_CONTACTS, doc, F_NAME, "Zoë");
    kith_value v;
    memset(&v, 0, sizeof v);
    v.type = KITH_TYPE_REF;
    kith__docid_from_dot(&v.u.ref, doc);
    cr_assert_eq(kith__memrep_field_set(a, C_REMINDERS, gone, "contact", &v), 0);
    memset(&v, 0, sizeof v);
    v.type = KITH_TYPE_BYTES;
    v.u.s.ptr = "\0\1";
    v.u.s.len = 2;
    cr_assert_eq(kith__memrep_field_set(a, C_CONTACTS, doc, "photo", &v), 0);
    tag(a, doc, true, "vip");
    tag(a, doc, false, "vip");
    cr_assert_eq(kith__memrep_counter_add(a, C_CONTACTS, doc, "visits", -9), 0);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, doc, "starred", true), 0);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, doc, "starred", false), 0);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, doc, "pinned", true), 0);
    cr_assert_eq(kith__memrep_doc_delete(a, C_REMINDERS, gone), 0);
    struct kith__commit *c = commit(a);
    cr_assert_eq(c->nops, 12);
    struct kith__wbuf enc = {0};
    struct kith__arena arena = {0};
    struct kith__commit d;
    char why[128] = "";
    cr_assert_eq(kith__commit_encode(c, &enc), 0);
    int rc = kith__commit_decode(enc.data, enc.len, c->origin, c->first_seq, &d, &arena, why,
                                 sizeof why);
    cr_assert_eq(rc, 0, "decode: %s %s", kith_errname(rc), why);
    apply_ok(b, &d);
    assert_same(a, b);
    int64_t n;
    cr_assert_eq(kith__memrep_counter_get(b, C_CONTACTS, doc, "visits", &n), 0);
    cr_assert_eq(n, -9);
    cr_assert(kith__memrep_flag_get(b, C_CONTACTS, doc, "pinned"));
    cr_assert(!kith__memrep_flag_get(b, C_CONTACTS, doc, "starred"));
    kith__wbuf_free(&enc);
    kith__arena_free(&arena);
    kith__memrep_commit_free(c);
    kith__memrep_free(a);
    kith__memrep_free(b);
}

/* ---- counters and flags ------------------------------------------------------------- */

static int64_t
counter(const struct kith__memrep *m, kith_dot doc, const char *field)
{
    int64_t v = 0;
    cr_assert_eq(kith__memrep_counter_get(m, C_CONTACTS, doc, field, &v), 0);
    return v;
}

/* COUNTER-1: increments made concurrently on two replicas add up on both, in either order;
 * an origin's later increments add to its own total. */
Test(crdt, concurrent_increments_add_up)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2);
    kith_dot doc = shared_contact(a, b, T0);
    cr_assert_eq(kith__memrep_counter_get(a, C_CONTACTS, doc, "visits", NULL), KITH_ENOTFOUND);
    cr_assert_eq(kith__memrep_begin(a, T0 + 10), 0);
    cr_assert_eq(kith__memrep_counter_add(a, C_CONTACTS, doc, "visits", 3), 0);
    cr_assert_eq(kith__memrep_counter_add(a, C_CONTACTS, doc, "visits", 4), 0);
    struct kith__commit *ca = commit(a);
    cr_assert_eq(ca->ops[0].kind, KITH_OP_COUNTER_ADD);
    cr_assert_eq(ca->ops[0].value.type, KITH_TYPE_INT);
    cr_assert_eq(ca->ops[0].value.u.i, 3);
    cr_assert_eq(kith__memrep_begin(b, T0 + 10), 0); /* the same clock: no order between them */
    cr_assert_eq(kith__memrep_counter_add(b, C_CONTACTS, doc, "visits", 10), 0);
    struct kith__commit *cb = commit(b);
    cr_assert_eq(counter(a, doc, "visits"), 7);
    cr_assert_eq(counter(b, doc, "visits"), 10);
    apply_ok(a, cb);
    apply_ok(b, ca);
    cr_assert_eq(counter(a, doc, "visits"), 17);
    cr_assert_eq(counter(b, doc, "visits"), 17);
    cr_assert_eq(kith__memrep_nconflicts(a), 0, "counters merge without conflicts");
    cr_assert_eq(kith__memrep_nconflicts(b), 0);
    assert_same(a, b);
    /* and a third replica gets the same from the two commits in any order */
    for (int order = 0; order < 2; order++) {
        struct kith__memrep *c = new_mem(0xc3);
        struct kith__memrep *a2 = new_mem(0xa1);
        cr_assert_eq(kith__memrep_begin(a2, T0), 0);
        kith_dot d2;
        cr_assert_eq(kith__memrep_doc_create(a2, C_CONTACTS, &d2), 0);
        set_str(a2, C_CONTACTS, d2, F_NAME, "Ann");
        struct kith__commit *create = commit(a2);
        apply_ok(c, create);
        apply_ok(c, order ? cb : ca);
        apply_ok(c, order ? ca : cb);
        assert_same(a, c);
        kith__memrep_commit_free(create);
        kith__memrep_free(a2);
        kith__memrep_free(c);
    }
    kith__memrep_commit_free(ca);
    kith__memrep_commit_free(cb);
    kith__memrep_free(a);
    kith__memrep_free(b);
}

/* COUNTER-2: deltas may be negative, totals and sums wrap around modulo 2^64 (as int64), and a
 * counter that sums to 0 is still there. */
Test(crdt, counter_takes_negative_deltas_and_wraps)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2);
    kith_dot doc = shared_contact(a, b, T0);
    cr_assert_eq(kith__memrep_begin(a, T0 + 10), 0);
    cr_assert_eq(kith__memrep_counter_add(a, C_CONTACTS, doc, "n", -5), 0);
    cr_assert_eq(kith__memrep_counter_add(a, C_CONTACTS, doc, "n", 2), 0);
    cr_assert_eq(kith__memrep_counter_add(a, C_CONTACTS, doc, "max", INT64_MAX), 0);
    cr_assert_eq(kith__memrep_counter_add(a, C_CONTACTS, doc, "max", 1), 0);
    cr_assert_eq(kith__memrep_counter_add(a, C_CONTACTS, doc, "min", INT64_MIN), 0);
    struct kith__commit *ca = commit(a);
    cr_assert_eq(counter(a, doc, "n"), -3);
    cr_assert_eq(counter(a, doc, "max"), INT64_MIN, "INT64_MAX + 1 wraps");
    cr_assert_eq(kith__memrep_begin(b, T0 + 10), 0);
    cr_assert_eq(kith__memrep_counter_add(b, C_CONTACTS, doc, "n", 3), 0);
    cr_assert_eq(kith__memrep_counter_add(b, C_CONTACTS, doc, "max", -1), 0);
    cr_assert_eq(kith__memrep_counter_add(b, C_CONTACTS, doc, "min", -1), 0);
    struct kith__commit *cb = commit(b);
    apply_ok(a, cb);
    apply_ok(b, ca);
    for (int i = 0; i < 2; i++) {
        struct kith__memrep *m = i ? b : a;
        cr_assert_eq(counter(m, doc, "n"), 0, "-3 + 3");
        cr_assert_eq(counter(m, doc, "max"), INT64_MAX, "wraps back");
        cr_assert_eq(counter(m, doc, "min"), INT64_MAX, "INT64_MIN - 1 wraps");
    }
    assert_same(a, b);
    char *live = dump(a, KITH__MEMREP_DUMP_LIVE);
    cr_assert_not_null(strstr(live, " C n i:0\n"), "a counter at 0 still shows: %s", live);
    cr_assert_not_null(strstr(live, " C max i:9223372036854775807\n"));
    free(live);
    char *full = dump(a, 0);
    cr_assert_not_null(strstr(full, " C min i:9223372036854775807 00000000000000a1:-"
                                    "9223372036854775808,00000000000000b2:-1\n"),
                       "%s", full);
    free(full);
    kith__memrep_commit_free(ca);
    kith__memrep_commit_free(cb);
    kith__memrep_free(a);
    kith__memrep_free(b);
}

/* FLAG-2: an enable concurrent with a disable wins, on both sides. */
Test(crdt, concurrent_enable_and_disable_leave_the_flag_set)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2);
    kith_dot doc = shared_contact(a, b, T0);
    cr_assert_eq(kith__memrep_begin(a, T0 + 10), 0);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, doc, "starred", true), 0);
    struct kith__commit *on = commit(a);
    cr_assert_eq(on->ops[0].kind, KITH_OP_FLAG_ENABLE);
    cr_assert_eq(on->ops[0].nobserved, 0);
    apply_ok(b, on);
    cr_assert(kith__memrep_flag_get(b, C_CONTACTS, doc, "starred"));
    /* b disables what it saw; a, concurrently and later by the clock, enables again */
    cr_assert_eq(kith__memrep_begin(b, T0 + 30), 0);
    cr_assert_eq(kith__memrep_flag_set(b, C_CONTACTS, doc, "starred", false), 0);
    struct kith__commit *off = commit(b);
    cr_assert_eq(off->ops[0].kind, KITH_OP_FLAG_DISABLE);
    cr_assert_eq(off->ops[0].nobserved, 1);
    cr_assert(!kith__memrep_flag_get(b, C_CONTACTS, doc, "starred"));
    cr_assert_eq(kith__memrep_begin(a, T0 + 20), 0);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, doc, "starred", true), 0);
    struct kith__commit *again = commit(a);
    cr_assert_eq(again->ops[0].nobserved, 1, "the re-enable replaces the dot it saw");
    apply_ok(a, off);
    apply_ok(b, again);
    for (int i = 0; i < 2; i++) {
        struct kith__memrep *m = i ? b : a;
        cr_assert(kith__memrep_flag_get(m, C_CONTACTS, doc, "starred"), "enable wins");
        kith_dot d[2];
        cr_assert_eq(kith__memrep_flag_dots(m, C_CONTACTS, doc, "starred", d, 2), 1);
        cr_assert(dot_is(d[0], (kith_dot){0xa1, again->first_seq}));
        cr_assert_eq(kith__memrep_nconflicts(m), 0);
    }
    assert_same(a, b);
    /* two concurrent enables keep two dots; one disable that saw both clears it */
    cr_assert_eq(kith__memrep_begin(b, T0 + 40), 0);
    cr_assert_eq(kith__memrep_flag_set(b, C_CONTACTS, doc, "pinned", true), 0);
    struct kith__commit *pb = commit(b);
    cr_assert_eq(kith__memrep_begin(a, T0 + 40), 0);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, doc, "pinned", true), 0);
    struct kith__commit *pa = commit(a);
    apply_ok(a, pb);
    apply_ok(b, pa);
    cr_assert_eq(kith__memrep_flag_dots(a, C_CONTACTS, doc, "pinned", NULL, 0), 2);
    cr_assert_eq(kith__memrep_begin(a, T0 + 50), 0);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, doc, "pinned", false), 0);
    struct kith__commit *pr = commit(a);
    cr_assert_eq(pr->ops[0].nobserved, 2);
    apply_ok(b, pr);
    cr_assert(!kith__memrep_flag_get(b, C_CONTACTS, doc, "pinned"));
    assert_same(a, b);
    struct kith__commit *all[] = {on, off, again, pa, pb, pr};
    for (size_t i = 0; i < 6; i++)
        kith__memrep_commit_free(all[i]);
    kith__memrep_free(a);
    kith__memrep_free(b);
}

/* FLAG-3: a disable made after seeing an enable clears the flag everywhere, and a cleared
 * flag leaves no trace in the dump (nor does clearing it again write anything). */
Test(crdt, disable_after_observing_enable_clears_the_flag)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2);
    kith_dot doc = shared_contact(a, b, T0);
    char *before = dump(b, 0);
    cr_assert_eq(kith__memrep_begin(a, T0 + 10), 0);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, doc, "starred", true), 0);
    struct kith__commit *on = commit(a);
    apply_ok(b, on);
    cr_assert_eq(kith__memrep_begin(b, T0 + 20), 0);
    cr_assert_eq(kith__memrep_flag_set(b, C_CONTACTS, doc, "starred", false), 0);
    struct kith__commit *off = commit(b);
    apply_ok(a, off);
    for (int i = 0; i < 2; i++) {
        struct kith__memrep *m = i ? b : a;
        cr_assert(!kith__memrep_flag_get(m, C_CONTACTS, doc, "starred"));
        char *live = dump(m, KITH__MEMREP_DUMP_LIVE);
        cr_assert_null(strstr(live, "starred"), "a cleared flag is left out: %s", live);
        free(live);
    }
    assert_same(a, b);
    cr_assert_eq(kith__memrep_begin(a, T0 + 30), 0);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, doc, "starred", false), 0);
    struct kith__commit *none = (struct kith__commit *)1;
    cr_assert_eq(kith__memrep_commit(a, &none), 0);
    cr_assert_null(none, "clearing a clear flag writes nothing");
    /* the two ops moved b's membership on, nothing else of them remains */
    char *after = dump(b, 0);
    cr_assert_str_neq(before, after);
    cr_assert_null(strstr(after, " B "), "%s", after);
    free(before);
    free(after);
    kith__memrep_commit_free(on);
    kith__memrep_commit_free(off);
    kith__memrep_free(a);
    kith__memrep_free(b);
}

/* TOUCH-1, DOC-3: counter and flag ops touch their document like any write: concurrent with a
 * delete, they keep it alive on every replica. */
Test(crdt, counter_and_flag_ops_keep_a_document_alive)
{
    const char *field[2] = {"visits", "starred"};
    for (int kind = 0; kind < 2; kind++) {
        struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2);
        kith_dot doc = shared_contact(a, b, T0);
        cr_assert_eq(kith__memrep_begin(a, T0 + 10), 0);
        cr_assert_eq(kith__memrep_doc_delete(a, C_CONTACTS, doc), 0);
        struct kith__commit *del = commit(a);
        cr_assert_eq(kith__memrep_begin(b, T0 + 5), 0);
        cr_assert_eq(kind ? kith__memrep_flag_set(b, C_CONTACTS, doc, field[kind], true)
                          : kith__memrep_counter_add(b, C_CONTACTS, doc, field[kind], 1),
                     0);
        struct kith__commit *ed = commit(b);
        apply_ok(a, ed);
        apply_ok(b, del);
        for (int i = 0; i < 2; i++) {
            struct kith__memrep *m = i ? b : a;
            cr_assert(kith__memrep_doc_live(m, C_CONTACTS, doc), "%s, replica %d", field[kind], i);
            kith_dot d[2];
            cr_assert_eq(kith__memrep_doc_dots(m, C_CONTACTS, doc, d, 2), 1);
            cr_assert(dot_is(d[0], (kith_dot){0xb2, 1}));
            cr_assert_eq(kith__memrep_nconflicts(m), 1, "the overruled delete");
        }
        assert_same(a, b);
        kith__memrep_commit_free(del);
        kith__memrep_commit_free(ed);
        kith__memrep_free(a);
        kith__memrep_free(b);
    }
}

/* ---- generated histories --------------------------------------------------------------- */

/*
 * What the generators write: a few collections whose fields are of every kind. The model
 * knows no schema; this table is only the generators' (and it names types and kinds the way
 * an app's schema would, so histories look like real ones).
 */
enum fkind { K_LWW = 1, K_SET = 2, K_COUNTER = 4, K_FLAG = 8 };

/* Workloads: which kinds of field ops a history's commits hold (documents are always created
 * and deleted too). */
#define W_CLASSIC (K_LWW | K_SET)
#define W_MIXED (K_LWW | K_SET | K_COUNTER | K_FLAG)

struct tfield {
    const char *name;
    unsigned kind;  /* enum fkind */
    kith_type type; /* K_LWW: the values written; K_SET: STRING, or REF for document ids */
    bool init;      /* usually written in the commit that creates the document */
};

struct tcoll {
    const char *name;
    unsigned weight; /* in tenths: how often a new document is of this collection */
    size_t nf;
    struct tfield f[8];
};

static const struct tcoll tcolls[] = {
    {"contacts",
     6,
     8,
     {{"name", K_LWW, KITH_TYPE_STRING, true},
      {"email", K_LWW, KITH_TYPE_STRING, false},
      {"phone", K_LWW, KITH_TYPE_STRING, false},
      {"birthday", K_LWW, KITH_TYPE_DATE, false},
      {"photo", K_LWW, KITH_TYPE_BYTES, false},
      {"tags", K_SET, KITH_TYPE_STRING, false},
      {"visits", K_COUNTER, KITH_TYPE_INT, true},
      {"starred", K_FLAG, KITH_TYPE_BOOL, false}}},
    {"interactions",
     3,
     8,
     {{"contact", K_LWW, KITH_TYPE_REF, true},
      {"kind", K_LWW, KITH_TYPE_ENUM, true},
      {"at", K_LWW, KITH_TYPE_TIME, true},
      {"summary", K_LWW, KITH_TYPE_STRING, false},
      {"duration", K_LWW, KITH_TYPE_INT, false},
      {"participants", K_SET, KITH_TYPE_REF, false},
      {"minutes", K_COUNTER, KITH_TYPE_INT, false},
      {"pinned", K_FLAG, KITH_TYPE_BOOL, true}}},
    {"reminders",
     1,
     6,
     {{"due", K_LWW, KITH_TYPE_TIME, true},
      {"text", K_LWW, KITH_TYPE_STRING, true},
      {"done", K_LWW, KITH_TYPE_BOOL, false},
      {"snoozes", K_COUNTER, KITH_TYPE_INT, false},
      {"urgent", K_FLAG, KITH_TYPE_BOOL, false},
      {"late", K_FLAG, KITH_TYPE_BOOL, false}}},
};

#define NTCOLL (sizeof tcolls / sizeof tcolls[0])

#define MAXR 5

struct hist {
    struct kith__commit *c;
    kith_vv ctx; /* what its author had applied before it: its causal past */
};

struct docref {
    size_t coll; /* index in tcolls */
    kith_dot dot;
};

struct world {
    struct test_rng rng;
    uint64_t seed;
    unsigned case_no;
    unsigned kinds; /* the workload: enum fkind bits */
    int nrep;
    bool causal; /* deliver only commits whose causal past is applied */
    bool coarse; /* one shared clock ticking in whole seconds: many equal HLCs */
    struct kith__memrep *rep[MAXR];
    int64_t skew[MAXR];
    uint64_t now;
    struct hist *h;
    size_t nh, caph;
    size_t *order[MAXR]; /* indexes into h, in each replica's apply order */
    unsigned long waits_gap, waits_clock, duplicates; /* outcomes seen, to check coverage */
    size_t norder[MAXR];
    struct docref *docs;
    size_t ndocs, capdocs;
    struct kith__arena arena; /* decoding each commit made */
    struct kith__wbuf enc, enc2;
};

/* Failure messages start with what replays them: CTXF "text", CTXA(w), args... */
#define CTXF "KITH_SEED=%llu case %u: "
#define CTXA(w) (unsigned long long)(w)->seed, (w)->case_no
#define CTX(w) CTXF, CTXA(w)

static uint64_t
wall(const struct world *w, int r)
{
    return (uint64_t)((int64_t)w->now + w->skew[r]);
}

static uint64_t
below(struct world *w, uint64_t n)
{
    return test_rng_below(&w->rng, n);
}

static void
push_order(struct world *w, int r, size_t idx)
{
    size_t *o = realloc(w->order[r], (w->norder[r] + 1) * sizeof *o);
    cr_assert_not_null(o);
    o[w->norder[r]++] = idx;
    w->order[r] = o;
}

static bool
has(const struct world *w, int r, const struct kith__commit *c)
{
    return kith__vv_get(kith__memrep_vv(w->rep[r]), c->origin) >= c->first_seq;
}

static void
world_init(struct world *w, uint64_t seed, unsigned case_no, unsigned kinds)
{
    memset(w, 0, sizeof *w);
    test_rng_init(&w->rng, seed, case_no);
    w->seed = seed;
    w->case_no = case_no;
    w->kinds = kinds;
    w->nrep = 3 + (int)below(w, 3);
    w->causal = case_no % 2 == 1;
    w->coarse = below(w, 3) == 0;
    w->now = T0 + below(w, 1000000);
    for (int r = 0; r < w->nrep; r++) {
        uint64_t id;
        bool dup;
        do { /* distinct, non-zero ids; sometimes small so that origins order predictably */
            id = below(w, 2) ? test_rng_u64(&w->rng) | 1 : 1 + below(w, 8);
            dup = false;
            for (int k = 0; k < r; k++)
                dup |= kith__memrep_self(w->rep[k]) == id;
        } while (dup);
        w->rep[r] = new_mem(id);
        /* most clocks close to each other, some far ahead or behind */
        w->skew[r] =
            below(w, 4) == 0 ? (int64_t)below(w, 300000) - 150000 : (int64_t)below(w, 2000) - 1000;
        if (w->coarse)
            w->skew[r] = 0;
    }
}

static void
world_free(struct world *w)
{
    for (int r = 0; r < w->nrep; r++) {
        kith__memrep_free(w->rep[r]);
        free(w->order[r]);
    }
    for (size_t i = 0; i < w->nh; i++) {
        kith__memrep_commit_free(w->h[i].c);
        kith_vv_free(&w->h[i].ctx);
    }
    free(w->h);
    free(w->docs);
    kith__arena_free(&w->arena);
    kith__wbuf_free(&w->enc);
    kith__wbuf_free(&w->enc2);
}

/* A random live document at r, or -1. */
static long
pick_doc(struct world *w, int r)
{
    if (w->ndocs == 0)
        return -1;
    for (int tries = 0; tries < 8; tries++) {
        size_t i = (size_t)below(w, w->ndocs);
        const struct docref *d = &w->docs[i];
        if (kith__memrep_doc_live(w->rep[r], tcolls[d->coll].name, d->dot))
            return (long)i;
    }
    return -1;
}

static const char *const names[] = {"Ann", "Anne", "Bob", "Zoë", "名前", "x"};
static const char *const emails[] = {"ann@home.org", "ann@work.com", "b@c"};
static const char *const dates[] = {"1990-05-17", "--02-29", "2000-02-29"};
static const char *const kinds[] = {"call", "meeting", "message", "email", "note"};
static const char *const tags[] = {"vip", "work", "family", "é", "x"};

/* A document the author has (a replica refuses a reference to one it lacks). */
static kith_dot
held_doc(struct world *w, int author)
{
    const struct kith__memrep *m = w->rep[author];
    size_t start = (size_t)below(w, w->ndocs), i = 0;
    kith_dot d = NODOT;
    for (; i < w->ndocs; i++) { /* the document being written is one, so this ends */
        d = w->docs[(start + i) % w->ndocs].dot;
        if (d.origin == kith__memrep_self(m) || kith__vv_get(kith__memrep_vv(m), d.origin) >= d.seq)
            break;
    }
    cr_assert_lt(i, w->ndocs);
    return d;
}

/* A random value of the field's type (strings from small pools, so writes collide); now and
 * then NULL, which clears. */
static kith_value
random_value(struct world *w, int author, const struct tfield *f, char *scratch)
{
    kith_value v;
    memset(&v, 0, sizeof v);
    if (below(w, 10) == 0)
        return v;
    v.type = f->type;
    switch (f->type) {
    case KITH_TYPE_STRING:
        if (strcmp(f->name, "email") == 0)
            v.u.s.ptr = emails[below(w, 3)];
        else if (below(w, 3) == 0) {
            snprintf(scratch, 32, "v%u", (unsigned)below(w, 1000));
            v.u.s.ptr = scratch;
        } else
            v.u.s.ptr = names[below(w, 6)];
        v.u.s.len = strlen(v.u.s.ptr);
        break;
    case KITH_TYPE_DATE:
        v.u.s.ptr = dates[below(w, 3)];
        v.u.s.len = strlen(v.u.s.ptr);
        break;
    case KITH_TYPE_ENUM:
        v.u.s.ptr = kinds[below(w, 5)];
        v.u.s.len = strlen(v.u.s.ptr);
        break;
    case KITH_TYPE_BYTES: /* any bytes, NUL included, sometimes none */
        v.u.s.len = (size_t)below(w, 5);
        for (size_t i = 0; i < v.u.s.len; i++)
            scratch[i] = (char)below(w, 3);
        v.u.s.ptr = scratch;
        break;
    case KITH_TYPE_TIME:
        v.u.i = (int64_t)(T0 + below(w, 86400000));
        break;
    case KITH_TYPE_INT:
        v.u.i = below(w, 4) ? (int64_t)below(w, 7) - 3 : (int64_t)test_rng_u64(&w->rng);
        break;
    case KITH_TYPE_BOOL:
        v.u.b = below(w, 2);
        break;
    case KITH_TYPE_REF:
        kith__docid_from_dot(&v.u.ref, held_doc(w, author));
        break;
    default:
        cr_assert_fail("no generator for type %d", f->type);
    }
    return v;
}

/* A counter's delta: mostly small, of either sign; now and then any int64 at all, extremes
 * included, so that totals and sums wrap. */
static int64_t
random_delta(struct world *w)
{
    uint64_t k = below(w, 12);
    if (k == 0)
        return INT64_MAX;
    if (k == 1)
        return INT64_MIN;
    if (k == 2)
        return (int64_t)test_rng_u64(&w->rng);
    return (int64_t)below(w, 9) - 4;
}

/* One write of field f of document d by replica r, as its kind writes. */
static void
gen_write(struct world *w, int r, struct docref d, const struct tfield *f)
{
    struct kith__memrep *m = w->rep[r];
    const char *coll = tcolls[d.coll].name;
    char scratch[32];
    int rc = 0;
    switch (f->kind) {
    case K_LWW: {
        kith_value v = random_value(w, r, f, scratch);
        rc = kith__memrep_field_set(m, coll, d.dot, f->name, &v);
        break;
    }
    case K_SET: {
        char hex[KITH_DOCID_HEX + 1];
        const char *e = tags[below(w, 5)];
        if (f->type == KITH_TYPE_REF) {
            kith_docid id;
            kith__docid_from_dot(&id, w->docs[below(w, w->ndocs)].dot);
            kith_docid_format(&id, hex);
            e = hex;
        }
        rc = below(w, 5) < 3 ? kith__memrep_set_add(m, coll, d.dot, f->name, e, strlen(e))
                             : kith__memrep_set_remove(m, coll, d.dot, f->name, e, strlen(e));
        break;
    }
    case K_COUNTER:
        rc = kith__memrep_counter_add(m, coll, d.dot, f->name, random_delta(w));
        break;
    default:
        rc = kith__memrep_flag_set(m, coll, d.dot, f->name, below(w, 20) < 11);
        break;
    }
    cr_assert_eq(rc, 0, CTXF "%s.%s: %s", CTXA(w), coll, f->name, kith_errname(rc));
}

static void
gen_create(struct world *w, int r)
{
    uint64_t k = below(w, 10);
    size_t coll = 0;
    for (unsigned acc = tcolls[0].weight; k >= acc; acc += tcolls[++coll].weight)
        ;
    struct docref d = {coll, NODOT};
    cr_assert_eq(kith__memrep_doc_create(w->rep[r], tcolls[coll].name, &d.dot), 0);
    if (w->ndocs == w->capdocs) {
        w->capdocs = w->capdocs ? 2 * w->capdocs : 32;
        w->docs = realloc(w->docs, w->capdocs * sizeof *w->docs);
        cr_assert_not_null(w->docs);
    }
    w->docs[w->ndocs++] = d;
    /* the first fields, usually in the same commit */
    for (size_t f = 0; f < tcolls[coll].nf; f++) {
        const struct tfield *tf = &tcolls[coll].f[f];
        if (tf->init && (tf->kind & w->kinds) && below(w, 8) != 0)
            gen_write(w, r, d, tf);
    }
}

static void
gen_op(struct world *w, int r)
{
    uint64_t k = below(w, 100);
    if (k < 15 || w->ndocs == 0) {
        gen_create(w, r);
    } else if (k < 94) {
        long i = pick_doc(w, r);
        if (i < 0)
            return;
        struct docref d = w->docs[i];
        const struct tcoll *tc = &tcolls[d.coll];
        size_t allowed[8], n = 0; /* the fields of kinds the workload writes */
        for (size_t f = 0; f < tc->nf; f++)
            if (tc->f[f].kind & w->kinds)
                allowed[n++] = f;
        if (n > 0)
            gen_write(w, r, d, &tc->f[allowed[below(w, n)]]);
    } else {
        long i = pick_doc(w, r);
        if (i >= 0)
            cr_assert_eq(
                kith__memrep_doc_delete(w->rep[r], tcolls[w->docs[i].coll].name, w->docs[i].dot),
                0);
    }
}

/*
 * The commit as others receive it: encoded (it must be a valid format-2 commit), decoded, and
 * encoded again to the same bytes; the history keeps the decoded copy, so every other
 * replica applies what a peer would send.
 */
static struct kith__commit *
through_codec(struct world *w, struct kith__commit *c)
{
    struct kith__commit d;
    char why[128] = "";
    w->enc.len = w->enc2.len = 0;
    cr_assert_eq(kith__commit_encode(c, &w->enc), 0, CTXF "encode", CTXA(w));
    kith__arena_reset(&w->arena);
    int rc = kith__commit_decode(w->enc.data, w->enc.len, c->origin, c->first_seq, &d, &w->arena,
                                 why, sizeof why);
    cr_assert_eq(rc, 0, CTXF "decode: %s %s", CTXA(w), kith_errname(rc), why);
    cr_assert_eq(kith__commit_encode(&d, &w->enc2), 0, CTX(w));
    cr_assert(w->enc.len == w->enc2.len && memcmp(w->enc.data, w->enc2.data, w->enc.len) == 0,
              CTXF "a decoded commit encodes to other bytes", CTXA(w));
    struct kith__commit *copy = NULL;
    cr_assert_eq(kith__memrep_commit_copy(&d, &copy), 0);
    kith__memrep_commit_free(c);
    return copy;
}

static void
gen_commit(struct world *w, int r)
{
    struct kith__memrep *m = w->rep[r];
    kith_vv ctx = {0};
    cr_assert_eq(kith__vv_copy(&ctx, kith__memrep_vv(m)), 0);
    cr_assert_eq(kith__memrep_begin(m, wall(w, r)), 0);
    unsigned nops = 1 + (unsigned)below(w, 4);
    for (unsigned i = 0; i < nops; i++)
        gen_op(w, r);
    struct kith__commit *c = NULL;
    cr_assert_eq(kith__memrep_commit(m, &c), 0);
    if (!c) {
        kith_vv_free(&ctx);
        return;
    }
    c = through_codec(w, c);
    if (w->nh == w->caph) {
        w->caph = w->caph ? 2 * w->caph : 64;
        w->h = realloc(w->h, w->caph * sizeof *w->h);
        cr_assert_not_null(w->h);
    }
    w->h[w->nh].c = c;
    w->h[w->nh].ctx = ctx;
    push_order(w, r, w->nh);
    w->nh++;
}

/*
 * Try to deliver history entry idx to replica r. Returns true when it was applied now.
 * Checks that the outcome is one the model allows for this delivery mode.
 */
static bool
deliver(struct world *w, int r, size_t idx)
{
    const struct hist *h = &w->h[idx];
    bool had = has(w, r, h->c);
    if (w->causal && !had && !kith__vv_dominates(kith__memrep_vv(w->rep[r]), &h->ctx))
        return false; /* its causal past is not here yet: not sent in this mode */
    int rc = kith__memrep_apply(w->rep[r], h->c, wall(w, r));
    if (had) {
        w->duplicates++;
        cr_assert_eq(rc, KITH__MEMREP_KNOWN, CTXF "duplicate gave %d", CTXA(w), rc);
        return false;
    }
    if (rc == 0) {
        push_order(w, r, idx);
        return true;
    }
    if (rc == KITH_EGAP)
        w->waits_gap++;
    if (rc == KITH__MEMREP_TOO_EARLY)
        w->waits_clock++;
    if (w->causal)
        cr_assert_eq(rc, KITH__MEMREP_TOO_EARLY, CTXF "causal delivery refused: %d", CTXA(w), rc);
    else
        cr_assert(rc == KITH_EGAP || rc == KITH__MEMREP_TOO_EARLY, CTXF "apply gave %d", CTXA(w),
                  rc);
    return false;
}

/* A partial sync: r receives some of what src applied, in src's order, some dropped. */
static void
gen_sync(struct world *w, int src, int r)
{
    size_t budget = 1 + (size_t)below(w, 12);
    size_t n = w->norder[src];
    for (size_t k = 0; k < n && budget > 0; k++) {
        size_t idx = w->order[src][k];
        if (has(w, r, w->h[idx].c))
            continue;
        if (below(w, 8) == 0)
            continue; /* dropped on the way */
        if (deliver(w, r, idx))
            budget--;
    }
}

static void
gen_history(struct world *w, unsigned steps)
{
    for (unsigned s = 0; s < steps; s++) {
        w->now += w->coarse ? 1000 * below(w, 2) : below(w, 3000);
        int r = (int)below(w, (uint64_t)w->nrep);
        if (below(w, 3) == 0) {
            int src = (int)below(w, (uint64_t)w->nrep);
            if (src != r)
                gen_sync(w, src, r);
        } else {
            gen_commit(w, r);
        }
    }
}

/* Every commit to r in a random order, with duplicates and drops, until it holds them all. */
static void
deliver_all(struct world *w, int r)
{
    size_t *pend = malloc((w->nh + 1) * sizeof *pend);
    size_t np = 0;
    cr_assert_not_null(pend);
    for (size_t i = 0; i < w->nh; i++)
        if (!has(w, r, w->h[i].c))
            pend[np++] = i;
    size_t attempts = 0, limit = 40 * w->nh + 100;
    while (np > 0 && attempts++ < limit) {
        w->now += below(w, 400);
        if (below(w, 5) == 0 && w->nh > 0) { /* a duplicate of anything */
            size_t i = (size_t)below(w, w->nh);
            if (has(w, r, w->h[i].c))
                deliver(w, r, i); /* must be KITH__MEMREP_KNOWN */
        }
        size_t k = (size_t)below(w, np);
        if (below(w, 6) == 0)
            continue; /* dropped: it stays pending and comes again */
        if (deliver(w, r, pend[k]))
            pend[k] = pend[--np];
    }
    /* whatever is left (clocks far ahead): in history order, which is causal, much later */
    w->now += 3600000;
    for (size_t i = 0; i < w->nh; i++)
        if (!has(w, r, w->h[i].c))
            cr_assert(deliver(w, r, i), CTXF "history order refused", CTXA(w));
    free(pend);
}

/* An op's collection and field names (NUL-terminated in the history's copies); field NULL
 * for document ops. */
static const char *
op_coll(const struct kith__commit *c, const struct kith__op *op)
{
    return c->names[op->cname].ptr;
}

static const char *
op_field(const struct kith__commit *c, const struct kith__op *op)
{
    return kith__op_has_field(op->kind) ? c->names[op->fname].ptr : NULL;
}

static int
str_cmp(const char *a, const char *b)
{
    return a && b ? strcmp(a, b) : (a != NULL) - (b != NULL);
}

struct regkey {
    const char *coll, *field;
    kith_dot doc, replaced;
};

static int
regkey_cmp(const void *a, const void *b)
{
    const struct regkey *x = a, *y = b;
    int c = str_cmp(x->coll, y->coll);
    if (c == 0)
        c = str_cmp(x->field, y->field);
    if (c)
        return c;
    uint64_t xa[4] = {x->doc.origin, x->doc.seq, x->replaced.origin, x->replaced.seq};
    uint64_t ya[4] = {y->doc.origin, y->doc.seq, y->replaced.origin, y->replaced.seq};
    for (int i = 0; i < 4; i++)
        if (xa[i] != ya[i])
            return xa[i] < ya[i] ? -1 : 1;
    return 0;
}

/* Sort and keep one of each (coll, doc, field); replaced is ignored by the caller. */
static size_t
unique_regs(struct regkey *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        k[i].replaced = NODOT;
    if (n > 0)
        qsort(k, n, sizeof *k, regkey_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || regkey_cmp(&k[u - 1], &k[i]) != 0)
            k[u++] = k[i];
    return u;
}

/*
 * LWW-4 as a law: with every write applied, a replica holds a conflict for a register iff
 * two writes to it name the same replaced dot (the writes fork); never otherwise. Counters
 * and flags merge without conflicts.
 */
static void
check_conflicts_iff_fork(struct world *w)
{
    size_t nw = 0;
    for (size_t i = 0; i < w->nh; i++)
        nw += w->h[i].c->nops;
    struct regkey *writes = malloc((nw + 1) * sizeof *writes), *forks = NULL;
    cr_assert_not_null(writes);
    size_t n = 0, nf = 0;
    for (size_t i = 0; i < w->nh; i++)
        for (uint32_t k = 0; k < w->h[i].c->nops; k++) {
            const struct kith__commit *c = w->h[i].c;
            const struct kith__op *op = &c->ops[k];
            if (op->kind == KITH_OP_FIELD_SET)
                writes[n++] =
                    (struct regkey){op_coll(c, op), op_field(c, op), op->doc, op->replaced};
        }
    if (n > 0)
        qsort(writes, n, sizeof *writes, regkey_cmp);
    forks = malloc((n + 1) * sizeof *forks);
    cr_assert_not_null(forks);
    for (size_t i = 1; i < n; i++)
        if (regkey_cmp(&writes[i - 1], &writes[i]) == 0)
            forks[nf++] = writes[i];
    nf = unique_regs(forks, nf);
    for (int r = 0; r < w->nrep; r++) {
        size_t nc = kith__memrep_nconflicts(w->rep[r]), m = 0;
        struct regkey *got = malloc((nc + 1) * sizeof *got);
        cr_assert_not_null(got);
        for (size_t i = 0; i < nc; i++) {
            struct kith__memrep_conflict c;
            cr_assert_eq(kith__memrep_conflict_get(w->rep[r], i, &c), 0);
            if (c.field != NULL)
                got[m++] = (struct regkey){c.coll, c.field, c.doc, NODOT};
        }
        m = unique_regs(got, m);
        cr_assert_eq(m, nf, CTXF "replica %d: conflicts on %zu registers, %zu forked", CTXA(w), r,
                     m, nf);
        for (size_t i = 0; i < m; i++)
            cr_assert_eq(regkey_cmp(&got[i], &forks[i]), 0, CTXF "replica %d", CTXA(w), r);
        free(got);
    }
    free(writes);
    free(forks);
}

/* One op of the history with its dot and names, for the oracle. */
struct hop {
    const struct kith__op *op;
    kith_dot dot;
    uint64_t hlc;
    const char *coll, *field;
};

/* The dot sets an op may belong to: its document's membership, one set element, one flag. */
enum { DS_DOC, DS_ELEM, DS_FLAGS };

static bool
is_set_op(const struct kith__op *op)
{
    return op->kind == KITH_OP_SET_ADD || op->kind == KITH_OP_SET_REMOVE;
}

static bool
is_flag_op(const struct kith__op *op)
{
    return op->kind == KITH_OP_FLAG_ENABLE || op->kind == KITH_OP_FLAG_DISABLE;
}

/* Does op o act on the dot set `which` that op ref belongs to? */
static bool
same_set(const struct hop *o, const struct hop *ref, int which)
{
    if (strcmp(o->coll, ref->coll) != 0 || !dot_is(o->op->doc, ref->op->doc))
        return false;
    switch (which) {
    case DS_DOC:
        return true;
    case DS_ELEM:
        return is_set_op(o->op) && strcmp(o->field, ref->field) == 0 &&
               o->op->value.u.s.len == ref->op->value.u.s.len &&
               memcmp(o->op->value.u.s.ptr, ref->op->value.u.s.ptr, o->op->value.u.s.len) == 0;
    default:
        return is_flag_op(o->op) && strcmp(o->field, ref->field) == 0;
    }
}

/* Does op o add its own dot to a dot set `which` it acts on? */
static bool
adds(const struct kith__op *o, int which)
{
    return which == DS_DOC    ? o->kind != KITH_OP_DOC_REMOVE
           : which == DS_ELEM ? o->kind == KITH_OP_SET_ADD
                              : o->kind == KITH_OP_FLAG_ENABLE;
}

/* Do the observed dots of op o (acting on a dot set `which`) remove dots from it? A write's
 * observed dots are its element's or flag's, never its document's. */
static bool
observes(const struct kith__op *o, int which)
{
    return which != DS_DOC || o->kind == KITH_OP_DOC_ADD || o->kind == KITH_OP_DOC_REMOVE;
}

/*
 * The rules restated over the whole history, independently of the order of application:
 * LWW-1: a register holds its greatest write by (hlc, origin, seq).
 * COUNTER-1: a counter is the sum (mod 2^64) of every delta added to it.
 * ORSET-4 / FLAG-3 / TOUCH-3: an element's (a flag's) live dots are its adds' (enables') dots
 * that no op on it observed and that no later add (enable) of the same origin replaced; a
 * document's live dots are the dots of its DOC_ADD and of every write to it (touches) that no
 * DOC_REMOVE or DOC_ADD observed, the highest of each origin only. Checks replica r.
 */
static void
check_against_oracle(struct world *w, int r)
{
    size_t n = 0;
    for (size_t i = 0; i < w->nh; i++)
        n += w->h[i].c->nops;
    struct hop *ops = malloc((n + 1) * sizeof *ops);
    kith_dot *want = malloc((n + 1) * sizeof *want), *got = malloc((n + 1) * sizeof *got);
    cr_assert(ops && want && got);
    n = 0;
    for (size_t i = 0; i < w->nh; i++) {
        const struct kith__commit *c = w->h[i].c;
        for (uint32_t k = 0; k < c->nops; k++)
            ops[n++] = (struct hop){&c->ops[k],
                                    {c->origin, c->first_seq + k},
                                    c->hlc,
                                    op_coll(c, &c->ops[k]),
                                    op_field(c, &c->ops[k])};
    }
    struct kith__memrep *m = w->rep[r];
    for (size_t i = 0; i < n; i++) {
        const struct kith__op *op = ops[i].op;
        const char *coll = ops[i].coll, *field = ops[i].field;
        if (op->kind == KITH_OP_FIELD_SET) {
            /* LWW-1 */
            size_t best = i;
            for (size_t j = 0; j < n; j++) {
                const struct kith__op *o = ops[j].op;
                if (o->kind == KITH_OP_FIELD_SET && strcmp(ops[j].coll, coll) == 0 &&
                    strcmp(ops[j].field, field) == 0 && dot_is(o->doc, op->doc) &&
                    kith__lww_cmp(ops[j].hlc, ops[j].dot, ops[best].hlc, ops[best].dot) > 0)
                    best = j;
            }
            kith_value v;
            kith_dot d;
            cr_assert_eq(kith__memrep_field_get(m, coll, op->doc, field, &v, NULL, &d), 0, CTX(w));
            cr_assert(dot_is(d, ops[best].dot), CTXF "register not held by its greatest write",
                      CTXA(w));
            const kith_value *e = &ops[best].op->value;
            cr_assert_eq(v.type, e->type, CTX(w));
            if (v.type == KITH_TYPE_REF)
                cr_assert_eq(memcmp(&v.u.ref, &e->u.ref, sizeof v.u.ref), 0, CTX(w));
            else if (v.type == KITH_TYPE_INT || v.type == KITH_TYPE_TIME)
                cr_assert_eq(v.u.i, e->u.i, CTX(w));
            else if (v.type == KITH_TYPE_BOOL)
                cr_assert_eq(v.u.b, e->u.b, CTX(w));
            else if (v.type != KITH_TYPE_NULL)
                cr_assert(v.u.s.len == e->u.s.len &&
                              (v.u.s.len == 0 || memcmp(v.u.s.ptr, e->u.s.ptr, v.u.s.len) == 0),
                          CTX(w));
        }
        if (op->kind == KITH_OP_COUNTER_ADD) {
            /* COUNTER-1 */
            uint64_t sum = 0;
            for (size_t j = 0; j < n; j++)
                if (ops[j].op->kind == KITH_OP_COUNTER_ADD && strcmp(ops[j].coll, coll) == 0 &&
                    strcmp(ops[j].field, field) == 0 && dot_is(ops[j].op->doc, op->doc))
                    sum += (uint64_t)ops[j].op->value.u.i;
            int64_t have;
            cr_assert_eq(kith__memrep_counter_get(m, coll, op->doc, field, &have), 0, CTX(w));
            cr_assert_eq((uint64_t)have, sum, CTXF "counter %s.%s is %lld", CTXA(w), coll, field,
                         (long long)have);
        }
        for (int which = DS_DOC; which <= DS_FLAGS; which++) {
            if ((which == DS_ELEM && !is_set_op(op)) || (which == DS_FLAGS && !is_flag_op(op)))
                continue;
            /* the dot set that op i belongs to: collect its live dots */
            size_t nw = 0;
            for (size_t j = 0; j < n; j++) {
                if (!adds(ops[j].op, which) || !same_set(&ops[j], &ops[i], which))
                    continue;
                bool dead = false;
                for (size_t k = 0; k < n && !dead; k++) {
                    const struct kith__op *o = ops[k].op;
                    if (!same_set(&ops[k], &ops[i], which))
                        continue;
                    if (adds(o, which))
                        dead = ops[k].dot.origin == ops[j].dot.origin &&
                               ops[k].dot.seq > ops[j].dot.seq;
                    for (uint32_t q = 0; q < o->nobserved && !dead && observes(o, which); q++)
                        dead = dot_is(o->observed[q], ops[j].dot);
                }
                if (!dead)
                    want[nw++] = ops[j].dot;
            }
            size_t ng = which == DS_DOC ? kith__memrep_doc_dots(m, coll, op->doc, got, n)
                        : which == DS_ELEM
                            ? kith__memrep_set_dots(m, coll, op->doc, field, op->value.u.s.ptr,
                                                    op->value.u.s.len, got, n)
                            : kith__memrep_flag_dots(m, coll, op->doc, field, got, n);
            cr_assert_eq(ng, nw, CTXF "%s: %zu live dots, the rules say %zu", CTXA(w),
                         which == DS_DOC    ? "membership"
                         : which == DS_ELEM ? "element"
                                            : "flag",
                         ng, nw);
            for (size_t a = 0; a < nw; a++) {
                bool found = false;
                for (size_t b = 0; b < ng; b++)
                    found |= dot_is(want[a], got[b]);
                cr_assert(found, CTXF "a live dot is missing", CTXA(w));
            }
        }
    }
    free(ops);
    free(want);
    free(got);
}

/* What a workload's cases reached, so that a law is not proved on histories without the
 * concurrency it is about. */
struct reach {
    unsigned cases;
    uint64_t commits, conflicts;
    unsigned long gaps, clocks, dups;
    unsigned long multi_origin_counters;  /* counters that origins added to concurrently */
    unsigned long flags_set, flags_clear; /* flags set at the end; flag ops left clear */
    unsigned long flags_multi;            /* set flags held by concurrent enables */
};

/* What replica 0 holds at the end: flags that flag ops left clear, and from the full dump,
 * set flags and counters, and those of them with dots or totals of several origins. */
static void
count_reach(struct world *w, struct reach *re)
{
    for (size_t i = 0; i < w->nh; i++) {
        const struct kith__commit *c = w->h[i].c;
        for (uint32_t k = 0; k < c->nops; k++) {
            const struct kith__op *op = &c->ops[k];
            if (is_flag_op(op) &&
                !kith__memrep_flag_get(w->rep[0], op_coll(c, op), op->doc, op_field(c, op)))
                re->flags_clear++;
        }
    }
    char *full = dump(w->rep[0], 0);
    for (char *l = full; *l; l = strchr(l, '\n') + 1) {
        /* "<coll> <docid> <letter> ..." */
        const char *end = strchr(l, '\n'), *p = strchr(strchr(l, ' ') + 1, ' ') + 1;
        bool several = memchr(p, ',', (size_t)(end - p)) != NULL;
        if (*p == 'B') {
            re->flags_set++;
            re->flags_multi += several;
        } else if (*p == 'C') {
            re->multi_origin_counters += several;
        }
    }
    free(full);
}

/* Convergence: random histories of the workload, then everything delivered to everyone in
 * random orders, with duplicates and drops. */
static void
converge_cases(unsigned kinds, unsigned first_case, unsigned dflt, struct reach *re)
{
    uint64_t seed = kith_test_seed(20261125);
    unsigned cases = kith_test_cases(dflt);
    memset(re, 0, sizeof *re);
    re->cases = cases;
    for (unsigned cs = first_case; cs < first_case + cases; cs++) {
        struct world w;
        world_init(&w, seed, cs, kinds);
        gen_history(&w, 20 + (unsigned)below(&w, 40));
        for (int r = 0; r < w.nrep; r++)
            deliver_all(&w, r);
        char *want = dump(w.rep[0], 0), *want_live = dump(w.rep[0], KITH__MEMREP_DUMP_LIVE);
        for (int r = 1; r < w.nrep; r++) {
            cr_assert(kith__vv_dominates(kith__memrep_vv(w.rep[r]), kith__memrep_vv(w.rep[0])) &&
                          kith__vv_dominates(kith__memrep_vv(w.rep[0]), kith__memrep_vv(w.rep[r])),
                      CTX(&w));
            char *got = dump(w.rep[r], 0), *got_live = dump(w.rep[r], KITH__MEMREP_DUMP_LIVE);
            cr_assert_str_eq(got, want, CTXF "replica %d differs from replica 0", CTXA(&w), r);
            cr_assert_str_eq(got_live, want_live, CTX(&w));
            free(got);
            free(got_live);
        }
        /* a replica that made nothing itself and took the history in creation order */
        struct kith__memrep *fresh = new_mem(0xfeedfacecafebeefull);
        for (size_t i = 0; i < w.nh; i++)
            cr_assert_eq(kith__memrep_apply(fresh, w.h[i].c, KITH__MEMREP_NO_CLOCK), 0, CTX(&w));
        char *got = dump(fresh, 0);
        cr_assert_str_eq(got, want, CTXF "in-order replay differs", CTXA(&w));
        free(got);
        kith__memrep_free(fresh);
        check_conflicts_iff_fork(&w);
        check_against_oracle(&w, (int)below(&w, (uint64_t)w.nrep));
        count_reach(&w, re);
        re->commits += w.nh;
        re->conflicts += kith__memrep_nconflicts(w.rep[0]);
        re->gaps += w.waits_gap;
        re->clocks += w.waits_clock;
        re->dups += w.duplicates;
        free(want);
        free(want_live);
        world_free(&w);
    }
    /* the generator must reach the pending paths and duplicates */
    if (cases >= 100)
        cr_assert(re->gaps > 0 && re->clocks > 0 && re->dups > 0,
                  "pending paths not reached: %lu %lu %lu", re->gaps, re->clocks, re->dups);
    cr_log_info("%u cases, %llu commits, %llu conflicts on replica 0, %lu waits for dots, "
                "%lu for the clock, %lu duplicates, %lu counters of several origins, %lu set "
                "flags, %lu of them of several origins, %lu flag ops left clear",
                cases, (unsigned long long)re->commits, (unsigned long long)re->conflicts, re->gaps,
                re->clocks, re->dups, re->multi_origin_counters, re->flags_set, re->flags_multi,
                re->flags_clear);
}

/* CONV-1 on registers, sets and documents. */
Test(crdt_laws, replicas_converge_under_any_delivery, .timeout = 300)
{
    struct reach re;
    converge_cases(W_CLASSIC, 0, 2000, &re);
    /* the generator must actually produce concurrency, or the law proves nothing */
    if (re.cases >= 100)
        cr_assert_gt(re.conflicts, re.cases / 4, "too few conflicts: %llu",
                     (unsigned long long)re.conflicts);
}

/* CONV-1, COUNTER-1..2 on counters: concurrent increments from several origins add up
 * whatever the order, duplicates and losses. */
Test(crdt_laws, counters_converge_under_any_delivery, .timeout = 300)
{
    struct reach re;
    converge_cases(K_COUNTER, 3000000, 1000, &re);
    if (re.cases >= 100)
        cr_assert_gt(re.multi_origin_counters, 0, "no counter of several origins");
}

/* CONV-1, FLAG-1..3 on flags: enables and disables from several origins. */
Test(crdt_laws, flags_converge_under_any_delivery, .timeout = 300)
{
    struct reach re;
    converge_cases(K_FLAG, 4000000, 1000, &re);
    if (re.cases >= 100)
        cr_assert(re.flags_multi > 0 && re.flags_clear > 0 && re.flags_set > 0,
                  "flags not reached: %lu %lu %lu", re.flags_set, re.flags_multi, re.flags_clear);
}

/* CONV-1 on a workload of every kind at once: registers, sets, counters, flags, documents
 * created and deleted, in the same documents. */
Test(crdt_laws, mixed_workload_converges_under_any_delivery, .timeout = 300)
{
    struct reach re;
    converge_cases(W_MIXED, 5000000, 2000, &re);
    if (re.cases >= 100)
        cr_assert(re.conflicts > 0 && re.multi_origin_counters > 0 && re.flags_multi > 0,
                  "kinds not reached: %llu %lu %lu", (unsigned long long)re.conflicts,
                  re.multi_origin_counters, re.flags_multi);
}

/* Apply replica src's commits to m in src's apply order. */
static void
merge_from(struct world *w, struct kith__memrep *m, int src)
{
    for (size_t k = 0; k < w->norder[src]; k++) {
        int rc = kith__memrep_apply(m, w->h[w->order[src][k]].c, KITH__MEMREP_NO_CLOCK);
        cr_assert(rc == 0 || rc == KITH__MEMREP_KNOWN, CTXF "merge gave %d", CTXA(w), rc);
    }
}

static char *
merged(struct world *w, const int *srcs, int n)
{
    struct kith__memrep *m = new_mem(0xfeedfacecafebeefull);
    for (int i = 0; i < n; i++)
        merge_from(w, m, srcs[i]);
    char *d = dump(m, 0);
    kith__memrep_free(m);
    return d;
}

/*
 * MERGE-1..3: merging the commit sets that replicas hold (each closed under the dots it
 * names) is commutative, associative and idempotent, and a set merged into an empty state
 * gives exactly the state of the replica that held it.
 */
static void
merge_cases(unsigned kinds, unsigned first_case, unsigned dflt)
{
    uint64_t seed = kith_test_seed(20261125);
    unsigned cases = kith_test_cases(dflt) / 2 + 1;
    for (unsigned cs = first_case; cs < first_case + cases; cs++) {
        struct world w;
        world_init(&w, seed, cs, kinds);
        w.causal = false;
        gen_history(&w, 20 + (unsigned)below(&w, 40));
        int a = 0, b = 1, c = 2;
        /* idempotent, and one replica's set rebuilds that replica */
        char *ra = dump(w.rep[a], 0);
        char *x = merged(&w, (int[]){a}, 1), *y = merged(&w, (int[]){a, a}, 2);
        cr_assert_str_eq(x, ra, CTXF "A into empty != A", CTXA(&w));
        cr_assert_str_eq(y, ra, CTXF "A + A != A", CTXA(&w));
        free(x);
        free(y);
        /* commutative */
        x = merged(&w, (int[]){a, b}, 2);
        y = merged(&w, (int[]){b, a}, 2);
        cr_assert_str_eq(x, y, CTXF "A+B != B+A", CTXA(&w));
        free(x);
        free(y);
        /* associative: (A+B)+C = A+(B+C); the inner merge is a replica receiving the others */
        struct kith__memrep *bc = new_mem(0xb0c0);
        merge_from(&w, bc, b);
        merge_from(&w, bc, c);
        struct kith__memrep *a_bc = new_mem(0xa0);
        merge_from(&w, a_bc, a);
        int rc;
        for (size_t i = 0; i < w.nh; i++) /* bc's contents, in history (causal) order */
            if (kith__vv_get(kith__memrep_vv(bc), w.h[i].c->origin) >= w.h[i].c->first_seq) {
                rc = kith__memrep_apply(a_bc, w.h[i].c, KITH__MEMREP_NO_CLOCK);
                cr_assert(rc == 0 || rc == KITH__MEMREP_KNOWN, CTX(&w));
            }
        x = merged(&w, (int[]){a, b, c}, 3);
        y = dump(a_bc, 0);
        cr_assert_str_eq(x, y, CTXF "(A+B)+C != A+(B+C)", CTXA(&w));
        free(x);
        free(y);
        x = merged(&w, (int[]){c, a, b}, 3);
        y = merged(&w, (int[]){b, c, a}, 3);
        cr_assert_str_eq(x, y, CTXF "C+A+B != B+C+A", CTXA(&w));
        free(x);
        free(y);
        free(ra);
        kith__memrep_free(bc);
        kith__memrep_free(a_bc);
        world_free(&w);
    }
}

Test(crdt_laws, merge_is_commutative_associative_idempotent, .timeout = 300)
{
    merge_cases(W_CLASSIC, 1000000, 2000);
}

Test(crdt_laws, counter_merge_is_commutative_associative_idempotent, .timeout = 300)
{
    merge_cases(K_COUNTER, 3500000, 1000);
}

Test(crdt_laws, flag_merge_is_commutative_associative_idempotent, .timeout = 300)
{
    merge_cases(K_FLAG, 4500000, 1000);
}

Test(crdt_laws, mixed_merge_is_commutative_associative_idempotent, .timeout = 300)
{
    merge_cases(W_MIXED, 5500000, 2000);
}

/* PEND-2: the document's own creation and a referenced document are dependencies too. */
Test(crdt, edits_wait_for_the_documents_they_name)
{
    struct kith__memrep *a = new_mem(0xa1), *b = new_mem(0xb2), *c = new_mem(0xc3);
    kith_dot doc = shared_contact(a, b, T0);
    cr_assert_eq(kith__memrep_begin(b, T0 + 10), 0);
    set_str(b, C_CONTACTS, doc, F_PHONE, "1"); /* replaces nothing, names only the document */
    struct kith__commit *cb1 = commit(b);
    cr_assert(dot_is(cb1->ops[0].replaced, NODOT));
    cr_assert_eq(kith__memrep_apply(c, cb1, KITH__MEMREP_NO_CLOCK), KITH_EGAP);
    cr_assert_eq(kith__memrep_begin(b, T0 + 11), 0);
    kith_dot rem;
    cr_assert_eq(kith__memrep_doc_create(b, C_REMINDERS, &rem), 0);
    kith_value ref;
    memset(&ref, 0, sizeof ref);
    ref.type = KITH_TYPE_REF;
    kith__docid_from_dot(&ref.u.ref, doc);
    cr_assert_eq(kith__memrep_field_set(b, C_REMINDERS, rem, "contact", &ref), 0);
    struct kith__commit *cb = commit(b);
    /* a commit whose only outside dot is the reference */
    struct kith__memrep *e = new_mem(0xe5);
    cr_assert_eq(kith__memrep_begin(e, T0 + 20), 0);
    cr_assert_eq(kith__memrep_doc_create(e, C_REMINDERS, &rem), 0);
    cr_assert_eq(kith__memrep_field_set(e, C_REMINDERS, rem, "contact", &ref), 0);
    struct kith__commit *ce = commit(e);
    cr_assert_eq(kith__memrep_apply(c, ce, KITH__MEMREP_NO_CLOCK), KITH_EGAP);
    struct kith__memrep *a2 = new_mem(0xa1); /* a's first commit again, for c */
    cr_assert_eq(kith__memrep_begin(a2, T0), 0);
    kith_dot doc2;
    cr_assert_eq(kith__memrep_doc_create(a2, C_CONTACTS, &doc2), 0);
    set_str(a2, C_CONTACTS, doc2, F_NAME, "Ann");
    struct kith__commit *ca = commit(a2);
    apply_ok(c, ca);
    apply_ok(c, ce);
    apply_ok(c, cb1);
    apply_ok(c, cb);
    kith__memrep_commit_free(cb1);
    kith__memrep_commit_free(ce);
    kith__memrep_commit_free(ca);
    kith__memrep_free(e);
    kith__memrep_free(a2);
    cr_assert_eq(kith__vv_get(kith__memrep_vv(c), 0xb2), 3);
    kith__memrep_commit_free(cb);
    kith__memrep_free(a);
    kith__memrep_free(b);
    kith__memrep_free(c);
}

/* The canonical dump's lines (spec/data-model.md "Canonical dump"), full and live-only: by
 * names, whatever numbers the model gave them. */
Test(crdt, canonical_dump_format)
{
    struct kith__memrep *a = new_mem(0xa1);
    kith_dot doc, gone;
    cr_assert_eq(kith__memrep_begin(a, 1000), 0);
    cr_assert_eq(kith__memrep_doc_create(a, C_REMINDERS, &gone), 0); /* numbered first */
    cr_assert_eq(kith__memrep_doc_create(a, C_CONTACTS, &doc), 0);
    set_str(a, C_CONTACTS, doc, F_NAME, "A \"q\"\\\n");
    tag(a, doc, true, "vip");
    cr_assert_eq(kith__memrep_counter_add(a, C_CONTACTS, doc, "visits", 5), 0);
    cr_assert_eq(kith__memrep_counter_add(a, C_CONTACTS, doc, "visits", -7), 0);
    cr_assert_eq(kith__memrep_counter_add(a, C_CONTACTS, doc, "zero", 0), 0);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, doc, "starred", true), 0);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, doc, "cleared", true), 0);
    cr_assert_eq(kith__memrep_flag_set(a, C_CONTACTS, doc, "cleared", false), 0);
    kith_value t;
    memset(&t, 0, sizeof t);
    t.type = KITH_TYPE_TIME;
    t.u.i = -1;
    cr_assert_eq(kith__memrep_field_set(a, C_REMINDERS, gone, "due", &t), 0);
    cr_assert_eq(kith__memrep_doc_delete(a, C_REMINDERS, gone), 0);
    struct kith__commit *c = commit(a);
    char *full = dump(a, 0), *live = dump(a, KITH__MEMREP_DUMP_LIVE);
    const char *want_full =
        "contacts 00000000000000a10000000000000002 B starred true 00000000000000a1:8\n"
        "contacts 00000000000000a10000000000000002 C visits i:-2 00000000000000a1:-2\n"
        "contacts 00000000000000a10000000000000002 C zero i:0 00000000000000a1:0\n"
        "contacts 00000000000000a10000000000000002 D 00000000000000a1:10\n"
        "contacts 00000000000000a10000000000000002 E tags 766970 00000000000000a1:4\n"
        "contacts 00000000000000a10000000000000002 F name s\"A \\\"q\\\"\\\\\\x0a\" "
        "@0000000003e80000 00000000000000a1:3\n"
        "reminders 00000000000000a10000000000000001 F due t:-1 @0000000003e80000 "
        "00000000000000a1:11\n";
    const char *want_live = "contacts 00000000000000a10000000000000002 B starred true\n"
                            "contacts 00000000000000a10000000000000002 C visits i:-2\n"
                            "contacts 00000000000000a10000000000000002 C zero i:0\n"
                            "contacts 00000000000000a10000000000000002 D\n"
                            "contacts 00000000000000a10000000000000002 E tags 766970\n"
                            "contacts 00000000000000a10000000000000002 F name "
                            "s\"A \\\"q\\\"\\\\\\x0a\"\n";
    cr_assert_str_eq(full, want_full);
    cr_assert_str_eq(live, want_live);
    /* a replica that met the names in another order dumps the same bytes */
    struct kith__memrep *b = new_mem(0xb2);
    cr_assert_eq(kith__memrep_begin(b, 1), 0);
    kith_dot own;
    cr_assert_eq(kith__memrep_doc_create(b, "interactions", &own), 0);
    cr_assert_eq(kith__memrep_counter_add(b, "interactions", own, "zero", 1), 0);
    cr_assert_eq(kith__memrep_doc_delete(b, "interactions", own), 0);
    kith__memrep_commit_free(commit(b));
    apply_ok(b, c);
    char *full_b = dump(b, 0), *live_b = dump(b, KITH__MEMREP_DUMP_LIVE);
    cr_assert_eq(strncmp(full_b, "contacts", 8), 0);
    cr_assert_str_eq(strstr(full_b, "reminders"), strstr(full, "reminders"));
    cr_assert_str_eq(live_b, live);
    free(full_b);
    free(live_b);
    kith__memrep_free(b);
    kith__memrep_commit_free(c);
    free(full);
    free(live);
    kith__memrep_free(a);
}
