/*
 * test_group_bundles.c — group records travel inside batches of format 3 (spec/encoding.md
 * section 4, decisions.md D-19): a device that only ever receives bundles learns who joined
 * and takes their ops relayed by anyone, with no pairwise trust; a forged record refuses the
 * whole bundle and changes nothing.
 */
#include "kith_test.h"
#include "kt_group.h"
#include "store.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kith_buf
bundle_of(kith_replica *from)
{
    kith_buf b = {0};
    int rc = kith_batch_create(from, NULL, &b, NULL);
    cr_assert_eq(rc, 0, "batch_create: %s (%s)", kith_strerror(rc), kith_errmsg(from));
    return b;
}

static size_t
members_of(kith_replica *r)
{
    kith_group_info g;
    cr_assert_eq(kith_group_get(r, &g), 0);
    return g.members;
}

/*
 * a founds a group and admits b and c; later it admits d, whom b and c have never heard of.
 * d's bundle reaches b (its records say who d is), and b's bundle reaches c: c learns d's ADD
 * from it and takes d's op, relayed by b. Nobody trusts anybody pairwise.
 */
/* proves GRP-14, BAT-6 */
Test(group_bundles, a_member_learned_from_a_bundle_is_admitted_when_relayed)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new(), d = kt_new();
    int rc;

    cr_assert_eq(kith_group_create(a.r, "home", "laptop"), 0, "%s", kith_errmsg(a.r));
    kt_admit(a.r, b.r, "phone");
    kt_admit(a.r, c.r, "tablet");
    kt_admit(a.r, d.r, "new phone");
    cr_assert_eq(members_of(c.r), 3, "c holds the records of a, b and c only");
    kith_docid from_d = kt_contact(d.r, "written on the new phone");

    kith_buf bd = bundle_of(d.r);
    rc = kith_batch_apply(b.r, bd.data, bd.len, NULL);
    cr_assert_eq(rc, 0, "b takes d's bundle: %s (%s)", kith_strerror(rc), kith_errmsg(b.r));
    cr_assert_eq(members_of(b.r), 4);
    kith_buf bb = bundle_of(b.r);
    rc = kith_batch_apply(c.r, bb.data, bb.len, NULL);
    cr_assert_eq(rc, 0, "c takes b's bundle: %s (%s)", kith_strerror(rc), kith_errmsg(c.r));
    cr_assert_eq(members_of(c.r), 4);
    char name[64];
    kt_get_str(c.r, "contacts", &from_d, "name", name, sizeof name);
    cr_assert_str_eq(name, "written on the new phone");
    cr_assert_not(kith_is_trusted(c.r, (uint8_t[32]){0}), "no pairwise trust was set up");

    kith_free(bd.data);
    kith_free(bb.data);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
    kt_free(&d);
}

/* A bundle whose ADD record has a byte changed (its signature no longer verifies) is refused
 * whole, with a message that says so, and the receiver is as it was. */
/* proves GRP-14 */
Test(group_bundles, a_forged_record_refuses_the_bundle)
{
    struct kt_replica a = kt_new(), b = kt_new(), d = kt_new();
    struct kith__arena arena = {0};
    struct kith__wbuf out = {0};
    struct kith__batch bt;

    cr_assert_eq(kith_group_create(a.r, "home", "laptop"), 0);
    kt_admit(a.r, b.r, "phone");
    kt_admit(a.r, d.r, "new phone");
    kt_contact(d.r, "d");
    kith_buf bd = bundle_of(d.r);
    cr_assert_eq(kith__batch_decode(bd.data, bd.len, &bt, &arena), 0);
    cr_assert_gt(bt.nrecords, 0);
    char *before = kt_export(b.r);
    size_t members = members_of(b.r);
    size_t tried = 0;
    for (size_t i = 0; i < bt.nrecords; i++) {
        struct kith__group_rec rec;
        cr_assert_eq(kith__group_decode(bt.records[i].bytes, bt.records[i].len, &rec, NULL, 0), 0);
        if (rec.kind == KITH__GROUP_FOUND)
            continue; /* a changed FOUND founds another group: not ours, skipped (GRP-14) */
        tried++;
        uint8_t *forged = malloc(bt.records[i].len);
        memcpy(forged, bt.records[i].bytes, bt.records[i].len);
        forged[bt.records[i].len - 70] ^= 1; /* inside the encoding, before the signature */
        const uint8_t *was = bt.records[i].bytes;
        bt.records[i].bytes = forged;
        out.len = 0;
        cr_assert_eq(kith__batch_encode(&bt, &out), 0);
        int rc = kith_batch_apply(b.r, out.data, out.len, NULL);
        cr_assert_lt(rc, 0, "record %zu forged, yet the bundle applied", i);
        cr_assert(strstr(kith_errmsg(b.r), "record") != NULL, "%s", kith_errmsg(b.r));
        bt.records[i].bytes = was;
        free(forged);
    }
    cr_assert_eq(tried, 2, "the ADDs of b and d");
    char *after = kt_export(b.r);
    cr_assert_str_eq(before, after);
    cr_assert_eq(members_of(b.r), members);
    cr_assert_eq(kith_batch_apply(b.r, bd.data, bd.len, NULL), 0, "%s", kith_errmsg(b.r));

    free(before);
    free(after);
    kith__wbuf_free(&out);
    kith__arena_free(&arena);
    kith_free(bd.data);
    kt_free(&a);
    kt_free(&b);
    kt_free(&d);
}
