/*
 * test_export.c — the canonical JSON export (store/export.c, spec/export.md): the exact
 * bytes for known states, only live documents and non-NULL fields, every value type in its
 * documented form, byte-identical output from replicas that merged the same ops in different
 * orders (EXP-1), and the same bytes after closing and reopening (EXP-2).
 */
#include "kith.h"
#include "kith_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
hex_id(uint64_t id, char out[17])
{
    snprintf(out, 17, "%016llx", (unsigned long long)id);
}

/* EXP-3: only collections holding a live document appear, whatever the replica declared
 * (decisions.md D-9): an empty replica exports no collection. */
Test(export, empty_replica)
{
    struct kt_replica a = kt_new();
    char *e = kt_export(a.r);
    cr_assert_str_eq(e, "{\"collections\":{},\"format\":\"kith-export-1\",\"vv\":{}}\n");
    free(e);
    kith_docid c = kt_contact(a.r, "Ada");
    kith_txn *t = kt_wbegin(a.r);
    cr_assert_eq(kith_doc_delete(t, "contacts", &c), 0);
    kt_commit(t);
    e = kt_export(a.r);
    cr_assert(strstr(e, "\"collections\":{}") != NULL, "a collection emptied by a delete: %s", e);
    free(e);
    kt_free(&a);
}

Test(export, exact_bytes_of_a_small_state)
{
    struct kt_replica a = kt_new();
    kith_txn *t = kt_wbegin(a.r);
    kith_docid c, gone, i, rem;
    kith_value name = kt_str("Zo\xc3\xab \"Z\""), email = kt_str("zoe@example.org"),
               notes = kt_str("cleared later"), bday = kt_str("--04-12");
    bday.type = KITH_TYPE_DATE;
    cr_assert_eq(kith_doc_create(t, "contacts", &c), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &c, "name", &name), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &c, "email", &email), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &c, "notes", &notes), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &c, "birthday", &bday), 0);
    cr_assert_eq(kith_set_add(t, "contacts", &c, "tags", "work", 4), 0);
    cr_assert_eq(kith_set_add(t, "contacts", &c, "tags", "Family", 6), 0);
    cr_assert_eq(kith_doc_create(t, "contacts", &gone), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &gone, "name", &name), 0);
    kith_value vc = {.type = KITH_TYPE_REF}, kind = kt_str("call"), at = {.type = KITH_TYPE_TIME};
    vc.u.ref = c;
    kind.type = KITH_TYPE_ENUM;
    at.u.i = 1764093600250; /* 2025-11-25T18:00:00.250Z */
    cr_assert_eq(kith_doc_create(t, "interactions", &i), 0);
    cr_assert_eq(kith_field_set(t, "interactions", &i, "contact", &vc), 0);
    cr_assert_eq(kith_field_set(t, "interactions", &i, "kind", &kind), 0);
    cr_assert_eq(kith_field_set(t, "interactions", &i, "at", &at), 0);
    kith_value due = {.type = KITH_TYPE_TIME}, text = kt_str("call back"),
               done = {.type = KITH_TYPE_BOOL};
    due.u.i = -1000; /* 1969-12-31T23:59:59.000Z */
    done.u.b = false;
    cr_assert_eq(kith_doc_create(t, "reminders", &rem), 0);
    cr_assert_eq(kith_field_set(t, "reminders", &rem, "due", &due), 0);
    cr_assert_eq(kith_field_set(t, "reminders", &rem, "text", &text), 0);
    cr_assert_eq(kith_field_set(t, "reminders", &rem, "done", &done), 0);
    kt_commit(t);
    t = kt_wbegin(a.r);
    kith_value null = {.type = KITH_TYPE_NULL};
    cr_assert_eq(kith_field_set(t, "contacts", &c, "notes", &null), 0);
    cr_assert_eq(kith_doc_delete(t, "contacts", &gone), 0);
    kt_commit(t);

    char cid[33], iid[33], rid[33], me[17], want[1024];
    kith_docid_format(&c, cid);
    kith_docid_format(&i, iid);
    kith_docid_format(&rem, rid);
    hex_id(kith_replica_id(a.r), me);
    snprintf(want, sizeof want,
             "{\"collections\":{\"contacts\":{\"%s\":{\"birthday\":\"--04-12\","
             "\"email\":\"zoe@example.org\",\"name\":\"Zo\xc3\xab \\\"Z\\\"\","
             "\"tags\":[\"Family\",\"work\"]}},"
             "\"interactions\":{\"%s\":{\"at\":\"2025-11-25T18:00:00.250Z\",\"contact\":\"%s\","
             "\"kind\":\"call\"}},"
             "\"reminders\":{\"%s\":{\"done\":false,\"due\":\"1969-12-31T23:59:59.000Z\","
             "\"text\":\"call back\"}}},"
             "\"format\":\"kith-export-1\",\"vv\":{\"%s\":19}}\n",
             cid, iid, cid, rid, me);
    char *e = kt_export(a.r);
    cr_assert_str_eq(e, want);
    free(e);
    kt_free(&a);
}

Test(export, emptied_set_is_absent)
{
    struct kt_replica a = kt_new();
    kith_docid c = kt_contact(a.r, "x");
    kith_txn *t = kt_wbegin(a.r);
    cr_assert_eq(kith_set_add(t, "contacts", &c, "tags", "t", 1), 0);
    kt_commit(t);
    char *with = kt_export(a.r);
    cr_assert_not_null(strstr(with, "\"tags\":[\"t\"]"));
    t = kt_wbegin(a.r);
    cr_assert_eq(kith_set_remove(t, "contacts", &c, "tags", "t", 1), 0);
    kt_commit(t);
    char *without = kt_export(a.r);
    cr_assert_null(strstr(without, "tags"), "%s", without);
    free(with);
    free(without);
    kt_free(&a);
}

/* Three replicas write, then merge in different orders: the exports agree byte for byte,
 * including a concurrent edit of one field and a delete concurrent with an edit. */
Test(export, same_ops_in_different_orders_give_the_same_bytes)
{
    struct kt_replica r[3] = {kt_new(), kt_new(), kt_new()};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            kt_trust_pair(&r[i], &r[j]);
    kith_docid shared = kt_contact(r[0].r, "shared");
    kt_sync(&r[0], &r[1]);
    kt_sync(&r[0], &r[2]);
    kt_set_str(r[0].r, "contacts", &shared, "name", "from zero");
    kt_set_str(r[1].r, "contacts", &shared, "name", "from one");
    kith_txn *t = kt_wbegin(r[2].r);
    cr_assert_eq(kith_doc_delete(t, "contacts", &shared), 0);
    kt_commit(t);
    kt_contact(r[1].r, "one's own");
    kith_docid c2 = kt_contact(r[2].r, "two's own");
    t = kt_wbegin(r[2].r);
    cr_assert_eq(kith_set_add(t, "contacts", &c2, "tags", "b", 1), 0);
    cr_assert_eq(kith_set_add(t, "contacts", &c2, "tags", "a", 1), 0);
    kt_commit(t);

    /* r0 hears 1 then 2; r1 hears 2 then 0; r2 hears 0 then 1 (and relays). */
    kt_sync(&r[1], &r[0]);
    kt_sync(&r[2], &r[0]);
    kt_sync(&r[2], &r[1]);
    kt_sync(&r[0], &r[1]);
    kt_sync(&r[0], &r[2]);
    kt_sync(&r[1], &r[2]);
    char *e0 = kt_export(r[0].r), *e1 = kt_export(r[1].r), *e2 = kt_export(r[2].r);
    cr_assert_str_eq(e0, e1);
    cr_assert_str_eq(e0, e2);
    cr_assert_not_null(strstr(e0, "two's own"));
    cr_assert_not_null(strstr(e0, "\"tags\":[\"a\",\"b\"]"));
    /* The edits concurrent with the delete keep the shared contact. */
    char sid[33];
    kith_docid_format(&shared, sid);
    cr_assert_not_null(strstr(e0, sid), "the edited contact was lost: %s", e0);

    /* Reopening changes nothing. */
    for (int i = 0; i < 3; i++)
        kt_reopen(&r[i], KITH_NOSYNC);
    char *again = kt_export(r[1].r);
    cr_assert_str_eq(again, e1);
    free(again);
    again = kt_export(r[2].r);
    cr_assert_str_eq(again, e0);
    free(again);
    free(e0);
    free(e1);
    free(e2);
    for (int i = 0; i < 3; i++)
        kt_free(&r[i]);
}

Test(export, conflicts_and_peers_are_not_exported)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kt_trust_pair(&a, &b);
    kith_docid c = kt_contact(a.r, "x");
    kt_sync(&a, &b);
    kt_set_str(a.r, "contacts", &c, "name", "ya");
    kt_set_str(b.r, "contacts", &c, "name", "yb");
    kt_sync(&a, &b);
    kt_sync(&b, &a);
    kith_status *s;
    cr_assert_eq(kith_status_get(a.r, &s), 0);
    cr_assert_eq(s->open_conflicts, 1);
    kith_status_free(s);
    char *ea = kt_export(a.r), *eb = kt_export(b.r);
    cr_assert_str_eq(ea, eb);
    cr_assert_null(strstr(ea, "conflict"));
    cr_assert_null(strstr(ea, "peer"));
    free(ea);
    free(eb);
    kt_free(&a);
    kt_free(&b);
}
