/*
 * test_schemas.c — schemas as data in a replica (spec/data-model.md "Schema document",
 * spec/decisions.md D-9): an app declares collections, fields and indexes at run time and
 * writes every kind (register, set, counter, flag); a declaration that does not fit is refused
 * whole with a message and changes nothing; an index declared later is built from what is
 * held; replicas given different schemas (none, v1, v1 plus a field and an index) write
 * concurrently, sync in a chain through one that declared nothing, and export the same bytes.
 */
#include "kith.h"
#include "kith_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The deals app, version 1, exactly as issue #9 writes it. */
static const char deals_v1[] =
    "{\"collections\": {\n"
    "  \"deals\": {\n"
    "    \"fields\": {\n"
    "      \"title\":   {\"type\": \"string\", \"required\": true, \"max\": 200},\n"
    "      \"amount\":  {\"type\": \"integer\", \"min\": 0},\n"
    "      \"stage\":   {\"type\": \"enum\", \"values\": [\"lead\", \"won\", \"lost\"]},\n"
    "      \"contact\": {\"type\": \"ref\", \"to\": \"contacts\"},\n"
    "      \"closes\":  {\"type\": \"time\"},\n"
    "      \"labels\":  {\"type\": \"string\", \"crdt\": \"set\"},\n"
    "      \"views\":   {\"type\": \"integer\", \"crdt\": \"counter\"},\n"
    "      \"starred\": {\"type\": \"boolean\", \"crdt\": \"flag\"}},\n"
    "    \"indexes\": {\"by_contact\": [\"contact\", \"closes\"]}}}}";

/* Version 2 adds a field and an index on it. */
static const char deals_v2[] =
    "{\"collections\": {\"deals\": {\"fields\": {"
    "\"probability\": {\"type\": \"integer\", \"min\": 0, \"max\": 100}},"
    "\"indexes\": {\"by_probability\": [\"probability\"]}}}}";

static void
declare(kith_replica *r, const char *json)
{
    int rc = kith_schema_apply(r, json, strlen(json));
    cr_assert_eq(rc, 0, "declare: %s (%s)", kith_strerror(rc), kith_errmsg(r));
}

static uint64_t
version(kith_replica *r)
{
    uint64_t v = 99;
    cr_assert_eq(kith_schema_info(r, &v, NULL), 0);
    return v;
}

static kith_value
vint(int64_t i)
{
    kith_value v = {.type = KITH_TYPE_INT};
    v.u.i = i;
    return v;
}

static kith_value
vtime(int64_t ms)
{
    kith_value v = {.type = KITH_TYPE_TIME};
    v.u.i = ms;
    return v;
}

static kith_value
vref(const kith_docid *d)
{
    kith_value v = {.type = KITH_TYPE_REF};
    v.u.ref = *d;
    return v;
}

static kith_value
venum(const char *s)
{
    kith_value v = kt_str(s);
    v.type = KITH_TYPE_ENUM;
    return v;
}

/* A deal with a title, for a contact, closing at `closes`. */
static kith_docid
deal(kith_replica *r, const char *title, const kith_docid *contact, int64_t closes)
{
    kith_txn *t = kt_wbegin(r);
    kith_docid d;
    kith_value v = kt_str(title);
    cr_assert_eq(kith_doc_create(t, "deals", &d), 0, "%s", kith_errmsg(r));
    cr_assert_eq(kith_field_set(t, "deals", &d, "title", &v), 0, "%s", kith_errmsg(r));
    v = vref(contact);
    cr_assert_eq(kith_field_set(t, "deals", &d, "contact", &v), 0, "%s", kith_errmsg(r));
    v = vtime(closes);
    cr_assert_eq(kith_field_set(t, "deals", &d, "closes", &v), 0, "%s", kith_errmsg(r));
    kt_commit(t);
    return d;
}

static int64_t
get_int(kith_replica *r, const kith_docid *d, const char *field, kith_type want)
{
    kith_txn *t = kt_rbegin(r);
    kith_value v;
    int rc = kith_field_get(t, "deals", d, field, &v);
    cr_assert_eq(rc, 0, "%s: %s", field, kith_errmsg(r));
    cr_assert_eq(v.type, want, "%s has type %d", field, v.type);
    int64_t out = want == KITH_TYPE_BOOL ? v.u.b : v.u.i;
    kith_txn_abort(&t);
    return out;
}

/* Every kind a declaration can have, written and read back. */
Test(schemas, every_kind_written_and_read)
{
    struct kt_replica a = kt_new();
    kith_docid ada = kt_contact(a.r, "Ada");
    declare(a.r, deals_v1);
    cr_assert_eq(version(a.r), 2, "the CRM was 1, deals makes 2");
    kith_docid d = deal(a.r, "Engines", &ada, 1764000000000);
    kith_txn *t = kt_wbegin(a.r);
    kith_value v = vint(1200);
    cr_assert_eq(kith_field_set(t, "deals", &d, "amount", &v), 0, "%s", kith_errmsg(a.r));
    v = venum("won");
    cr_assert_eq(kith_field_set(t, "deals", &d, "stage", &v), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(kith_set_add(t, "deals", &d, "labels", "hot", 3), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(kith_counter_add(t, "deals", &d, "views", 5), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(kith_counter_add(t, "deals", &d, "views", -2), 0);
    cr_assert_eq(kith_flag_set(t, "deals", &d, "starred", true), 0, "%s", kith_errmsg(a.r));
    kt_commit(t);
    cr_assert_eq(get_int(a.r, &d, "amount", KITH_TYPE_INT), 1200);
    cr_assert_eq(get_int(a.r, &d, "views", KITH_TYPE_INT), 3);
    cr_assert_eq(get_int(a.r, &d, "starred", KITH_TYPE_BOOL), 1);
    t = kt_wbegin(a.r);
    cr_assert_eq(kith_flag_set(t, "deals", &d, "starred", false), 0);
    kt_commit(t);
    cr_assert_eq(get_int(a.r, &d, "starred", KITH_TYPE_BOOL), 0);

    /* the fields of the document, by name */
    static const char *const want[] = {"amount", "closes", "contact", "labels",
                                       "stage",  "title",  "views"};
    kith_iter *it;
    kith_field_entry e;
    size_t n = 0;
    t = kt_rbegin(a.r);
    cr_assert_eq(kith_iter_fields(t, "deals", &d, &it), 0);
    while (kith_iter_next_field(it, &e) == 0) {
        cr_assert_lt(n, 7);
        cr_assert_str_eq(e.name, want[n], "field %zu", n);
        n++;
    }
    cr_assert_eq(n, 7, "a clear flag is not listed; %zu fields", n);
    kith_iter_close(it);
    kith_txn_abort(&t);

    /* the export shows each kind by its own rule */
    char *x = kt_export(a.r);
    cr_assert(strstr(x, "\"views\":3") != NULL, "%s", x);
    cr_assert(strstr(x, "\"labels\":[\"hot\"]") != NULL, "%s", x);
    cr_assert(strstr(x, "starred") == NULL, "%s", x);
    cr_assert(strstr(x, "\"stage\":\"won\"") != NULL, "%s", x);
    free(x);
    kith_verify_report rep;
    cr_assert_eq(kith_verify(a.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    kt_free(&a);
}

/* Local writes are checked against the declaration; wrong kinds are named. */
Test(schemas, local_writes_checked)
{
    struct kt_replica a = kt_new();
    kith_docid ada = kt_contact(a.r, "Ada");
    declare(a.r, deals_v1);
    kith_docid d = deal(a.r, "Engines", &ada, 1);

    struct {
        const char *field;
        kith_value v;
        const char *msg;
    } bad[] = {
        {"amount", vint(-1), "amount"},
        {"stage", venum("maybe"), "stage: must be one of lead, won, lost"},
        {"title", kt_str(""), "title"},
        {"views", vint(1), "views: a counter field (use counter add)"},
        {"labels", kt_str("x"), "labels: a set field (use set add/remove)"},
        {"nope", vint(1), "deals has no field nope"},
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kith_txn *t = kt_wbegin(a.r);
        int rc = kith_field_set(t, "deals", &d, bad[i].field, &bad[i].v);
        cr_assert_lt(rc, 0, "%s accepted", bad[i].field);
        cr_assert(strstr(kith_errmsg(a.r), bad[i].msg) != NULL, "%s: \"%s\"", bad[i].field,
                  kith_errmsg(a.r));
        kith_txn_abort(&t);
    }
    kith_txn *t = kt_wbegin(a.r);
    cr_assert_eq(kith_counter_add(t, "deals", &d, "amount", 1), KITH_ESCHEMA);
    kith_txn_abort(&t);
    t = kt_wbegin(a.r);
    cr_assert_eq(kith_flag_set(t, "deals", &d, "views", true), KITH_ESCHEMA);
    kith_txn_abort(&t);
    t = kt_wbegin(a.r);
    kith_docid x;
    cr_assert_eq(kith_doc_create(t, "undeclared", &x), KITH_ENOTFOUND);
    kith_txn_abort(&t);
    kt_free(&a);
}

/* A declaration that does not fit is refused whole, with the field and both declarations
 * named, and nothing changes; so is a bad document. */
Test(schemas, bad_declarations_change_nothing)
{
    struct kt_replica a = kt_new();
    declare(a.r, deals_v1);
    uint64_t v = version(a.r);
    kith_buf before, after;
    cr_assert_eq(kith_schema_json(a.r, &before), 0);

    struct {
        const char *json;
        int rc;
        const char *msg;
    } bad[] = {
        {"{\"collections\":{\"deals\":{\"fields\":{\"amount\":{\"type\":\"string\"}}}}}",
         KITH_ESCHEMA, "amount"},
        {"{\"collections\":{\"deals\":{\"fields\":{\"views\":{\"type\":\"integer\"}}}}}",
         KITH_ESCHEMA, "views"},
        {"{\"collections\":{\"deals\":{\"fields\":{\"contact\":{\"type\":\"ref\",\"to\":"
         "\"deals\"}}}}}",
         KITH_ESCHEMA, "contact"},
        {"{\"collections\":{\"x\":{\"fields\":{\"a\":{\"type\":\"float\"}}}}}", KITH_ESCHEMA,
         "float"},
        {"{\"collections\":{\"x\":{\"fields\":{\"a\":{\"type\":\"ref\",\"to\":\"nowhere\"}}}}}",
         KITH_ESCHEMA, "nowhere"},
        {"{\"collections\":{\"x\":{\"fields\":{\"a\":{\"type\":\"string\"},"
         "\"a\":{\"type\":\"string\"}}}}}",
         KITH_ESCHEMA, "a"},
        {"{\"collections\":{\"x\":", KITH_ESCHEMA, "line"},
        {"{\"collections\":{\"x\":{\"fields\":{\"a\":{\"type\":\"string\",\"crdt\":\"counter\"}}}}"
         "}",
         KITH_ESCHEMA, "counter"},
        {"{\"collections\":{\"x\":{\"fields\":{\"a\":{\"type\":\"string\"}},\"indexes\":"
         "{\"i\":[\"b\"]}}}}",
         KITH_ESCHEMA, "b"},
    };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = kith_schema_apply(a.r, bad[i].json, strlen(bad[i].json));
        cr_assert_eq(rc, bad[i].rc, "case %zu: %s (%s)", i, kith_strerror(rc), kith_errmsg(a.r));
        cr_assert(strstr(kith_errmsg(a.r), bad[i].msg) != NULL, "case %zu: \"%s\"", i,
                  kith_errmsg(a.r));
        cr_assert_eq(version(a.r), v, "case %zu changed the version", i);
    }
    /* too big */
    size_t big = (1u << 20) + 2;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    cr_assert_eq(kith_schema_apply(a.r, huge, big), KITH_ETOOBIG);
    free(huge);
    cr_assert_eq(kith_schema_json(a.r, &after), 0);
    cr_assert(before.len == after.len && memcmp(before.data, after.data, before.len) == 0);
    /* declaring the same again writes nothing and keeps the version */
    declare(a.r, deals_v1);
    cr_assert_eq(version(a.r), v);
    kith_free(before.data);
    kith_free(after.data);
    kt_free(&a);
}

/* An index declared after the data exists is built from it, and kept from then on. */
Test(schemas, index_declared_later_is_built)
{
    struct kt_replica a = kt_new();
    kith_docid ada = kt_contact(a.r, "Ada"), bob = kt_contact(a.r, "Bob");
    const char *no_index =
        "{\"collections\":{\"deals\":{\"fields\":{\"title\":{\"type\":\"string\"},"
        "\"contact\":{\"type\":\"ref\",\"to\":\"contacts\"},\"closes\":{\"type\":\"time\"}}}}}";
    declare(a.r, no_index);
    kith_docid d1 = deal(a.r, "one", &ada, 300), d2 = deal(a.r, "two", &ada, 100);
    (void)deal(a.r, "three", &bob, 200);
    kith_txn *t = kt_rbegin(a.r);
    kith_iter *it;
    cr_assert_eq(kith_iter_index(t, "deals.by_contact", NULL, NULL, NULL, &it), KITH_ENOTFOUND);
    kith_txn_abort(&t);
    declare(a.r, deals_v1);
    kith_docid d3 = deal(a.r, "four", &ada, 200);
    /* ada's deals by closing time, from 150 up to (not including) 400 */
    kith_value eq = vref(&ada), lo = vtime(150), hi = vtime(400);
    kith_docid got[4];
    size_t n = 0;
    t = kt_rbegin(a.r);
    cr_assert_eq(kith_iter_index(t, "deals.by_contact", &eq, &lo, &hi, &it), 0, "%s",
                 kith_errmsg(a.r));
    while (n < 4 && kith_iter_next(it, &got[n]) == 0)
        n++;
    kith_iter_close(it);
    kith_txn_abort(&t);
    cr_assert_eq(n, 2);
    cr_assert_eq(memcmp(&got[0], &d3, sizeof d3), 0, "200 first");
    cr_assert_eq(memcmp(&got[1], &d1, sizeof d1), 0, "then 300");
    (void)d2;
    kith_verify_report rep;
    cr_assert_eq(kith_verify(a.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    kt_free(&a);
}

/* Ops for a collection a replica never declared are stored, relayed and exported; once it
 * declares them they are indexed too. Three replicas with three schema versions converge. */
Test(schemas, three_schema_versions_converge_through_a_relay)
{
    struct kt_replica none = kt_new(), v1 = kt_new(), v2 = kt_new();
    kt_trust_pair(&none, &v1);
    kt_trust_pair(&none, &v2);
    kt_trust_pair(&v1, &v2);
    kith_docid ada = kt_contact(v1.r, "Ada");
    kt_sync(&v1, &none);
    kt_sync(&none, &v2);
    declare(v1.r, deals_v1);
    declare(v2.r, deals_v1);
    declare(v2.r, deals_v2);
    /* concurrent writes on both ends of the chain */
    kith_docid d1 = deal(v1.r, "from v1", &ada, 1000);
    kith_docid d2 = deal(v2.r, "from v2", &ada, 2000);
    kith_txn *t = kt_wbegin(v2.r);
    kith_value p = vint(70);
    cr_assert_eq(kith_field_set(t, "deals", &d2, "probability", &p), 0, "%s", kith_errmsg(v2.r));
    cr_assert_eq(kith_counter_add(t, "deals", &d2, "views", 4), 0);
    kt_commit(t);
    t = kt_wbegin(v1.r);
    cr_assert_eq(kith_counter_add(t, "deals", &d1, "views", 1), 0);
    cr_assert_eq(kith_flag_set(t, "deals", &d1, "starred", true), 0);
    cr_assert_eq(kith_set_add(t, "deals", &d1, "labels", "a", 1), 0);
    kt_commit(t);
    /* v1 -> none -> v2 and back: the middle one declared nothing of deals */
    kt_sync(&v1, &none);
    kt_sync(&none, &v2);
    kt_sync(&v2, &none);
    kt_sync(&none, &v1);
    /* concurrent increments of one counter, and a flag set against a clear */
    t = kt_wbegin(v1.r);
    cr_assert_eq(kith_counter_add(t, "deals", &d2, "views", 10), 0);
    cr_assert_eq(kith_flag_set(t, "deals", &d1, "starred", false), 0);
    kt_commit(t);
    t = kt_wbegin(v2.r);
    cr_assert_eq(kith_counter_add(t, "deals", &d2, "views", 100), 0);
    cr_assert_eq(kith_flag_set(t, "deals", &d1, "starred", true), 0);
    kt_commit(t);
    kt_sync(&v1, &none);
    kt_sync(&v2, &none);
    kt_sync(&none, &v1);
    kt_sync(&none, &v2);
    char *xn = kt_export(none.r), *x1 = kt_export(v1.r), *x2 = kt_export(v2.r);
    cr_assert_str_eq(xn, x1);
    cr_assert_str_eq(xn, x2);
    cr_assert(strstr(xn, "\"probability\":70") != NULL, "%s", xn);
    cr_assert(strstr(xn, "\"views\":114") != NULL, "concurrent increments add up: %s", xn);
    cr_assert(strstr(xn, "\"starred\":true") != NULL, "enable wins: %s", xn);
    /* v1 has no declaration of probability, but reads it as held */
    kith_txn *rt = kt_rbegin(v1.r);
    kith_value got;
    cr_assert_eq(kith_field_get(rt, "deals", &d2, "probability", &got), 0, "%s", kith_errmsg(v1.r));
    cr_assert_eq(got.type, KITH_TYPE_INT);
    cr_assert_eq(got.u.i, 70);
    kith_txn_abort(&rt);
    /* the relay declares deals now: its index holds what it had relayed */
    declare(none.r, deals_v1);
    declare(none.r, deals_v2);
    kith_iter *it;
    kith_docid hit;
    kith_value lo = vint(50);
    rt = kt_rbegin(none.r);
    cr_assert_eq(kith_iter_index(rt, "deals.by_probability", NULL, &lo, NULL, &it), 0);
    cr_assert_eq(kith_iter_next(it, &hit), 0);
    cr_assert_eq(memcmp(&hit, &d2, sizeof hit), 0);
    cr_assert_eq(kith_iter_next(it, &hit), KITH_ENOTFOUND);
    kith_iter_close(it);
    kith_txn_abort(&rt);
    char *xn2 = kt_export(none.r);
    cr_assert_str_eq(xn, xn2, "declaring changes no export");
    kith_verify_report rep;
    struct kt_replica *all[] = {&none, &v1, &v2};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(kith_verify(all[i]->r, &rep), 0);
        cr_assert_eq(rep.problems, 0, "replica %d: %s", i, rep.first_problem);
    }
    free(xn);
    free(x1);
    free(x2);
    free(xn2);
    kt_free(&none);
    kt_free(&v1);
    kt_free(&v2);
}

/* The schema as JSON carries its version; the C declaration is the same path. */
Test(schemas, json_and_c_declarations_agree)
{
    struct kt_replica a = kt_new(), b = kt_new();
    static const char *const parts[] = {"contact", "closes"};
    static const char *const stages[] = {"lead", "won", "lost", NULL};
    static const kith_field_def fields[] = {
        {.name = "title", .type = KITH_TYPE_STRING, .required = true, .max_len = 200},
        {.name = "amount", .type = KITH_TYPE_INT, .has_min = true, .min = 0},
        {.name = "stage", .type = KITH_TYPE_ENUM, .enum_values = stages},
        {.name = "contact", .type = KITH_TYPE_REF, .ref_collection = "contacts"},
        {.name = "closes", .type = KITH_TYPE_TIME},
        {.name = "labels", .type = KITH_TYPE_STRING, .crdt = KITH_CRDT_SET},
        {.name = "views", .type = KITH_TYPE_INT, .crdt = KITH_CRDT_COUNTER},
        {.name = "starred", .type = KITH_TYPE_BOOL, .crdt = KITH_CRDT_FLAG},
    };
    static const kith_index_def idx[] = {{.name = "by_contact", .nfields = 2, .fields = parts}};
    static const kith_collection_def deals = {
        .name = "deals", .nfields = 8, .fields = fields, .nindexes = 1, .indexes = idx};
    declare(a.r, deals_v1);
    cr_assert_eq(kith_schema_declare(b.r, &deals, 1), 0, "%s", kith_errmsg(b.r));
    kith_buf ja, jb;
    cr_assert_eq(kith_schema_json(a.r, &ja), 0);
    cr_assert_eq(kith_schema_json(b.r, &jb), 0);
    cr_assert_eq(ja.len, jb.len);
    cr_assert_eq(memcmp(ja.data, jb.data, ja.len), 0, "%.*s\n%.*s", (int)ja.len, ja.data,
                 (int)jb.len, jb.data);
    cr_assert(strstr((char *)ja.data, "\"version\":2}") != NULL, "%.*s", (int)ja.len, ja.data);
    uint8_t da[KITH_HASH_BYTES], db[KITH_HASH_BYTES];
    cr_assert_eq(kith_schema_info(a.r, NULL, da), 0);
    cr_assert_eq(kith_schema_info(b.r, NULL, db), 0);
    cr_assert_eq(memcmp(da, db, sizeof da), 0);
    kith_free(ja.data);
    kith_free(jb.data);
    kt_free(&a);
    kt_free(&b);
}

/* Text read as a declared field's value, and checked against its declaration. */
Test(schemas, value_parse_in_reads_declared_types)
{
    struct kt_replica a = kt_new();
    declare(a.r, deals_v1);
    kith_value v;
    char why[128];
    cr_assert_eq(kith_value_parse_in(a.r, "deals", "amount", "1200", &v, why, sizeof why), 0, "%s",
                 why);
    cr_assert_eq(v.type, KITH_TYPE_INT);
    cr_assert_eq(v.u.i, 1200);
    cr_assert_eq(
        kith_value_parse_in(a.r, "deals", "closes", "2026-12-06T10:00:00Z", &v, why, sizeof why), 0,
        "%s", why);
    cr_assert_eq(v.type, KITH_TYPE_TIME);
    cr_assert_eq(kith_value_parse_in(a.r, "deals", "stage", "won", &v, why, sizeof why), 0);
    cr_assert_eq(v.type, KITH_TYPE_ENUM);
    cr_assert_eq(kith_value_parse_in(a.r, "deals", "title", "", &v, why, sizeof why), KITH_ESCHEMA,
                 "a required field is not cleared");
    cr_assert_eq(kith_value_parse_in(a.r, "deals", "amount", "-3", &v, why, sizeof why),
                 KITH_ESCHEMA);
    cr_assert(strstr(why, "amount") != NULL, "%s", why);
    cr_assert_eq(kith_value_parse_in(a.r, "deals", "stage", "maybe", &v, why, sizeof why),
                 KITH_ESCHEMA);
    cr_assert_eq(kith_value_parse_in(a.r, "deals", "labels", "hot", &v, why, sizeof why), 0);
    cr_assert_eq(v.type, KITH_TYPE_STRING, "a set field reads one element");
    cr_assert_eq(kith_value_parse_in(a.r, "deals", "nope", "1", &v, why, sizeof why),
                 KITH_ENOTFOUND);
    kt_free(&a);
}

/* Two handles on one replica (as the CLI beside a daemon): an index one declares is kept by
 * the other's writes from its next transaction on, and the other's schema reads it. */
Test(schemas, a_declaration_by_another_handle_is_seen)
{
    struct kt_replica a = kt_new(), peer = kt_new();
    kith_replica *second = NULL;
    const char *no_index =
        "{\"collections\":{\"deals\":{\"fields\":{\"title\":{\"type\":\"string\"},"
        "\"contact\":{\"type\":\"ref\",\"to\":\"contacts\"},\"closes\":{\"type\":\"time\"}}}}}";
    kt_trust_pair(&a, &peer);
    declare(a.r, no_index);
    declare(peer.r, no_index);
    cr_assert_eq(kith_open(a.dir, KITH_NOSYNC, &second), 0);
    kith_docid ada = kt_contact(peer.r, "Ada");
    (void)deal(peer.r, "before", &ada, 100);
    kt_sync(&peer, &a); /* the first handle has loaded the schema without the index */
    declare(second, deals_v1);
    (void)deal(peer.r, "after", &ada, 200);
    kt_sync(&peer, &a); /* applied through the first handle */
    kith_docid own = deal(a.r, "local", &ada, 300);
    (void)own;
    kith_txn *t = kt_rbegin(second);
    kith_iter *it;
    kith_docid d;
    size_t n = 0;
    kith_value eq = vref(&ada);
    cr_assert_eq(kith_iter_index(t, "deals.by_contact", &eq, NULL, NULL, &it), 0, "%s",
                 kith_errmsg(second));
    while (kith_iter_next(it, &d) == 0)
        n++;
    kith_iter_close(it);
    kith_txn_abort(&t);
    cr_assert_eq(n, 3, "built from what was held, then kept by the other handle: %zu", n);
    kith_verify_report rep;
    cr_assert_eq(kith_verify(a.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    uint64_t v1 = 0, v2 = 0;
    cr_assert_eq(kith_schema_info(a.r, &v1, NULL), 0);
    cr_assert_eq(kith_schema_info(second, &v2, NULL), 0);
    cr_assert_eq(v1, v2);
    kith_close(second);
    kt_free(&a);
    kt_free(&peer);
}

/* A document may add an index on fields declared before, without declaring them again. */
Test(schemas, an_index_on_fields_declared_before)
{
    struct kt_replica a = kt_new();
    kith_docid ada = kt_contact(a.r, "Ada");
    declare(a.r, deals_v1);
    kith_docid d = deal(a.r, "Engines", &ada, 1);
    kith_txn *t = kt_wbegin(a.r);
    kith_value v = vint(500);
    cr_assert_eq(kith_field_set(t, "deals", &d, "amount", &v), 0);
    kt_commit(t);
    uint64_t before = version(a.r);
    declare(a.r, "{\"collections\":{\"deals\":{\"indexes\":{\"by_amount\":[\"amount\"]}}}}");
    cr_assert_eq(version(a.r), before + 1);
    kith_value lo = vint(100);
    kith_iter *it;
    kith_docid got;
    t = kt_rbegin(a.r);
    cr_assert_eq(kith_iter_index(t, "deals.by_amount", NULL, &lo, NULL, &it), 0, "%s",
                 kith_errmsg(a.r));
    cr_assert_eq(kith_iter_next(it, &got), 0);
    cr_assert_eq(memcmp(&got, &d, sizeof d), 0);
    kith_iter_close(it);
    kith_txn_abort(&t);
    /* a field declared nowhere is still refused */
    const char *bad = "{\"collections\":{\"deals\":{\"indexes\":{\"by_x\":[\"x\"]}}}}";
    cr_assert_eq(kith_schema_apply(a.r, bad, strlen(bad)), KITH_ESCHEMA);
    cr_assert(strstr(kith_errmsg(a.r), "x") != NULL);
    kt_free(&a);
}
