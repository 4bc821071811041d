/*
 * test_compat.c — what earlier versions wrote must keep working. tests/data/vN/ holds a
 * replica and a bundle written by kith with format N (tests/data/vN/make.sh says how); every
 * later version must open the replica, find it sound, show the same state, and merge the
 * bundle into a new replica to the same state. Add a new vN/ when a format changes; never
 * regenerate an old one.
 */
#include "kith_test.h"
#include "store.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define V1 KITH_SOURCE_DIR "/tests/data/v1"
#define V2 KITH_SOURCE_DIR "/tests/data/v2"
#define V3 KITH_SOURCE_DIR "/tests/data/v3"
#define V4 KITH_SOURCE_DIR "/tests/data/v4"

static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    cr_assert_geq(n, 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

static void
copy_file(const char *from, const char *to, mode_t mode)
{
    size_t n;
    char *data = slurp(from, &n);
    FILE *f = fopen(to, "wb");

    cr_assert_not_null(f, "%s: %s", to, strerror(errno));
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(chmod(to, mode), 0);
    free(data);
}

static void
pubkey_of(const char *path, uint8_t pk[KITH_PUBKEY_BYTES])
{
    char *hex = slurp(path, NULL);

    for (size_t i = 0; i < KITH_PUBKEY_BYTES; i++) {
        unsigned byte;
        cr_assert_eq(sscanf(hex + 2 * i, "%2x", &byte), 1, "%s: not a hex key", path);
        pk[i] = (uint8_t)byte;
    }
    free(hex);
}

static void
assert_exports(kith_replica *r, const char *expected_path)
{
    char *expected = slurp(expected_path, NULL);
    char *got = kt_export(r);

    cr_assert_str_eq(got, expected, "the state differs from what format 1 wrote");
    free(expected);
    free(got);
}

/* A copy of the replica of fixture directory `vdir` in a fresh directory; the caller
 * removes it. */
static char *
fixture_copy_of(const char *vdir, const char *replica)
{
    char *dir = kt_tmpdir(), path[512], from[512];
    snprintf(from, sizeof from, "%s/%s/data.mdb", vdir, replica);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    copy_file(from, path, 0600);
    snprintf(from, sizeof from, "%s/%s/key", vdir, replica);
    snprintf(path, sizeof path, "%s/key", dir);
    copy_file(from, path, 0600);
    return dir;
}

static char *
fixture_copy(const char *vdir)
{
    return fixture_copy_of(vdir, "replica-a");
}

Test(compat, v1_replica_opens_verifies_and_shows_the_same_state)
{
    char *dir = fixture_copy(V1);
    kith_replica *r = NULL;
    kith_verify_report rep;

    cr_assert_eq(kith_open(dir, 0, &r), 0, "open: %s", kith_errmsg(r));
    cr_assert_eq(kith_verify(r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    cr_assert_gt(rep.ops_checked, 0);
    assert_exports(r, V1 "/export.json");
    /* and it still takes new writes on top of the old log */
    kt_contact(r, "Mary Somerville");
    cr_assert_eq(kith_verify(r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    kith_close(r);
    kt_rmtree(dir);
    free(dir);
}

Test(compat, v1_bundle_merges_into_a_new_replica)
{
    struct kt_replica x = kt_new();
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_apply_info info;

    pubkey_of(V1 "/a.pub", pk);
    cr_assert_eq(kith_trust_add(x.r, pk, "a", NULL), 0);
    pubkey_of(V1 "/b.pub", pk);
    cr_assert_eq(kith_trust_add(x.r, pk, "b", NULL), 0);
    cr_assert_eq(kith_bundle_apply(x.r, V1 "/b.kb", &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_gt(info.ops_new, 0);
    cr_assert_eq(info.ops_pending, 0);
    assert_exports(x.r, V1 "/export.json");
    kt_free(&x);
}

static uint32_t
format_of(const char *dir)
{
    kith_replica *r = NULL;
    MDB_txn *txn;
    MDB_val v;
    uint32_t fmt;
    cr_assert_eq(kith_open(dir, KITH_RDONLY, &r), 0);
    cr_assert_eq(kith__mdb_begin(r, MDB_RDONLY, &txn), 0);
    cr_assert_eq(kith__meta_get(r, txn, "format", &v), 0);
    fmt = (uint32_t)((const uint8_t *)v.mv_data)[3];
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    kith_close(r);
    return fmt;
}

/* STO-25: read-only, a format-1 replica is read through format 1's names and the built-in
 * schema, and stays format 1; opened to write, it is upgraded in place. */
Test(compat, v1_replica_read_only_then_upgraded)
{
    char *dir = fixture_copy(V1);
    kith_replica *r = NULL;
    kith_txn *t;
    kith_iter *it;
    kith_docid d;
    kith_value lo = kt_str("B");
    size_t n = 0;

    cr_assert_eq(kith_open(dir, KITH_RDONLY, &r), 0, "%s", kith_errmsg(NULL));
    assert_exports(r, V1 "/export.json");
    cr_assert_eq(kith_txn_begin(r, KITH_TXN_READ, &t), 0);
    cr_assert_eq(kith_iter_index(t, "contacts.name", NULL, &lo, NULL, &it), 0, "%s",
                 kith_errmsg(r));
    while (kith_iter_next(it, &d) == 0)
        n++;
    kith_iter_close(it);
    cr_assert_eq(n, 1, "Charles Babbage, the one contact named from B on");
    kith_field_entry e;
    cr_assert_eq(kith_iter_docs(t, "contacts", &it), 0);
    cr_assert_eq(kith_iter_next(it, &d), 0);
    kith_iter_close(it);
    kith_iter *fields;
    cr_assert_eq(kith_iter_fields(t, "contacts", &d, &fields), 0, "%s", kith_errmsg(r));
    cr_assert_eq(kith_iter_next_field(fields, &e), 0);
    cr_assert_str_eq(e.name, "birthday");
    kith_iter_close(fields);
    kith_txn_abort(&t);
    kith_close(r);
    cr_assert_eq(format_of(dir), 1, "a read-only open changes nothing");

    cr_assert_eq(kith_open(dir, 0, &r), 0, "%s", kith_errmsg(NULL));
    kith_close(r);
    cr_assert_eq(format_of(dir), 2, "opened to write, it is upgraded");
    uint64_t version = 0;
    cr_assert_eq(kith_open(dir, 0, &r), 0);
    cr_assert_eq(kith_schema_info(r, &version, NULL), 0);
    cr_assert_eq(version, 1, "the built-in schema declared by the upgrade");
    assert_exports(r, V1 "/export.json");
    kith_close(r);
    kt_rmtree(dir);
    free(dir);
}

/* An upgraded format-1 replica and a new one sync both ways and converge; the old log's
 * commits of format 1 travel beside new ones of format 2. */
Test(compat, v1_replica_keeps_syncing_with_a_new_one)
{
    char *dir = fixture_copy(V1);
    struct kt_replica x = kt_new();
    struct kt_replica old = {.dir = dir, .root = NULL, .r = NULL};
    kith_verify_report rep;
    uint8_t pk[KITH_PUBKEY_BYTES];

    cr_assert_eq(kith_open(dir, 0, &old.r), 0, "%s", kith_errmsg(NULL));
    /* the old replica trusts b (its fixture peer) already; add x both ways */
    kith_replica_pubkey(x.r, pk);
    cr_assert_eq(kith_trust_add(old.r, pk, "x", NULL), 0);
    kith_replica_pubkey(old.r, pk);
    cr_assert_eq(kith_trust_add(x.r, pk, "a", NULL), 0);
    pubkey_of(V1 "/b.pub", pk);
    cr_assert_eq(kith_trust_add(x.r, pk, "b", NULL), 0);
    kt_sync(&old, &x);
    kith_docid mary = kt_contact(x.r, "Mary Somerville");
    kith_docid ada = kt_contact(old.r, "Ada (new)");
    kt_sync(&x, &old);
    kt_sync(&old, &x);
    char *a = kt_export(old.r), *b = kt_export(x.r);
    cr_assert_str_eq(a, b);
    cr_assert(strstr(a, "Mary Somerville") && strstr(a, "Ada (new)"));
    (void)mary;
    (void)ada;
    cr_assert_eq(kith_verify(old.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    cr_assert_eq(kith_verify(x.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    free(a);
    free(b);
    kith_close(old.r);
    kt_rmtree(dir);
    free(dir);
    kt_free(&x);
}

/* Format 2: a replica that declared an app's schema (deals) beside the built-in one opens,
 * verifies, shows the same state, and keeps its index; its peer's bundle, made by a replica
 * that never declared deals, merges into a new replica to the same state. */
Test(compat, v2_replica_and_bundle)
{
    char *dir = fixture_copy(V2);
    kith_replica *r = NULL;
    kith_verify_report rep;
    uint64_t version = 0;

    cr_assert_eq(kith_open(dir, 0, &r), 0, "open: %s", kith_errmsg(NULL));
    cr_assert_eq(kith_verify(r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    assert_exports(r, V2 "/export.json");
    cr_assert_eq(kith_schema_info(r, &version, NULL), 0);
    cr_assert_eq(version, 2, "the built-in schema, then deals");
    kith_txn *t = kt_rbegin(r);
    kith_iter *it;
    kith_docid d;
    cr_assert_eq(kith_iter_index(t, "deals.by_contact", NULL, NULL, NULL, &it), 0, "%s",
                 kith_errmsg(r));
    cr_assert_eq(kith_iter_next(it, &d), 0);
    kith_value v;
    cr_assert_eq(kith_field_get(t, "deals", &d, "views", &v), 0);
    cr_assert_eq(v.type, KITH_TYPE_INT);
    cr_assert_eq(v.u.i, 3);
    kith_iter_close(it);
    kith_txn_abort(&t);
    kith_close(r);
    kt_rmtree(dir);
    free(dir);

    struct kt_replica x = kt_new();
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_apply_info info;
    pubkey_of(V2 "/a.pub", pk);
    cr_assert_eq(kith_trust_add(x.r, pk, "a", NULL), 0);
    pubkey_of(V2 "/b.pub", pk);
    cr_assert_eq(kith_trust_add(x.r, pk, "b", NULL), 0);
    cr_assert_eq(kith_bundle_apply(x.r, V2 "/b.kb", &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(info.ops_pending, 0);
    assert_exports(x.r, V2 "/export.json");
    kt_free(&x);
}

/* Format 3 (kith 0.4.0): a replica in a group of its own that settled a fork of a peer's
 * origin opens read-only and writable, verifies, shows the same state, its fork with the
 * proof, its group and the journal of the history it set aside, which restores; its bundle
 * (batch format 3, with its group's records and the proof) brings a new replica to the same
 * state and settles the fork there too. */
Test(compat, v3_replica_and_bundle)
{
    char *dir = fixture_copy_of(V3, "replica-b");
    kith_replica *r = NULL;
    kith_verify_report rep;
    kith_fork *forks = NULL;
    size_t n = 0;
    uint8_t pk[KITH_PUBKEY_BYTES];

    cr_assert_eq(kith_open(dir, KITH_RDONLY, &r), 0, "open: %s", kith_errmsg(NULL));
    assert_exports(r, V3 "/export.json");
    kith_close(r);
    cr_assert_eq(kith_open(dir, 0, &r), 0, "open: %s", kith_errmsg(NULL));
    cr_assert_eq(kith_verify(r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    assert_exports(r, V3 "/export.json");
    kith_group_info g;
    cr_assert_eq(kith_group_get(r, &g), 0);
    cr_assert_str_eq(g.name, "office");
    cr_assert_eq(kith_forks_get(r, &forks, &n), 0);
    cr_assert_eq(n, 1);
    pubkey_of(V3 "/a.pub", pk);
    cr_assert_eq(forks[0].origin, kith_id_from_pubkey(pk));
    cr_assert(forks[0].has_proof);
    cr_assert_eq(forks[0].holds, KITH_FORK_HOLDS_WINNER);
    kith_forks_free(forks, n);
    kith_txn *t = kt_rbegin(r);
    kith_iter *it = NULL;
    kith_journal_op op;
    size_t ops = 0;
    kith_dot commit = {0, 0};
    cr_assert_eq(kith_iter_journal(t, 0, &it), 0);
    while (kith_iter_next_journal(it, &op) == 0) {
        ops++;
        commit = op.commit;
        cr_assert_not(op.restored);
    }
    kith_iter_close(it);
    kith_txn_abort(&t);
    cr_assert_eq(ops, 2, "the contact of the history b set aside");
    t = kt_wbegin(r);
    cr_assert_eq(kith_journal_restore(t, &commit, NULL), 0, "%s", kith_errmsg(r));
    kt_commit(t);
    char *after = kt_export(r);
    cr_assert(strstr(after, "Grace Hopper") != NULL, "the set-aside contact written again");
    free(after);
    kith_close(r);
    kt_rmtree(dir);
    free(dir);

    struct kt_replica x = kt_new();
    kith_apply_info info;
    cr_assert_eq(kith_trust_add(x.r, pk, "a", NULL), 0);
    pubkey_of(V3 "/b.pub", pk);
    cr_assert_eq(kith_trust_add(x.r, pk, "b", NULL), 0);
    cr_assert_eq(kith_bundle_apply(x.r, V3 "/b.kb", &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(info.ops_pending, 0);
    assert_exports(x.r, V3 "/export.json");
    cr_assert_eq(kith_forks_get(x.r, &forks, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert(forks[0].has_proof, "the proof came in the bundle");
    cr_assert_eq(forks[0].source, KITH_FORK_PROOF);
    kith_forks_free(forks, n);
    kt_free(&x);
}

/* Format 4 (kith 0.5.0): the copy of a replica whose own history lost a fork took a new key
 * (D-22): it opens read-only and writable, verifies, shows the same state and its re-key,
 * the fork with its proof, both keys live in its group, and the journal of its lost history
 * restored under the new key; its bundle (the ADD of the new key signed by the old one, the
 * proof) brings a new replica to the same state. */
Test(compat, v4_rekeyed_replica_and_bundle)
{
    char *dir = fixture_copy_of(V4, "replica-l");
    kith_replica *r = NULL;
    kith_verify_report rep;
    kith_rekey_info ri;
    kith_fork *forks = NULL;
    size_t n = 0;
    uint8_t old_pk[KITH_PUBKEY_BYTES], new_pk[KITH_PUBKEY_BYTES];

    pubkey_of(V4 "/old.pub", old_pk);
    pubkey_of(V4 "/new.pub", new_pk);
    cr_assert_eq(kith_open(dir, KITH_RDONLY, &r), 0, "open: %s", kith_errmsg(NULL));
    assert_exports(r, V4 "/export.json");
    kith_close(r);
    cr_assert_eq(kith_open(dir, 0, &r), 0, "open: %s", kith_errmsg(NULL));
    cr_assert_eq(kith_replica_id(r), kith_id_from_pubkey(new_pk));
    cr_assert_eq(kith_verify(r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    assert_exports(r, V4 "/export.json");
    cr_assert_eq(kith_rekey_get(r, &ri), 1);
    cr_assert_eq(ri.old_id, kith_id_from_pubkey(old_pk));
    cr_assert_eq(ri.new_id, kith_id_from_pubkey(new_pk));
    cr_assert(ri.lost_fork);
    cr_assert_eq(ri.commits_reissued, 1);
    cr_assert_not(ri.reissue_pending);
    cr_assert_eq(kith_forks_get(r, &forks, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(forks[0].origin, ri.old_id);
    cr_assert(forks[0].has_proof);
    kith_forks_free(forks, n);
    cr_assert(kith_is_trusted(r, old_pk), "the old key stays a member for the winning device");
    cr_assert(kith_is_trusted(r, new_pk));
    kith_txn *t = kt_rbegin(r);
    kith_iter *it = NULL;
    kith_journal_op op;
    size_t ops = 0;
    cr_assert_eq(kith_iter_journal(t, 0, &it), 0);
    while (kith_iter_next_journal(it, &op) == 0) {
        ops++;
        cr_assert(op.restored, "the lost history was written again under the new key");
    }
    kith_iter_close(it);
    kith_txn_abort(&t);
    cr_assert_eq(ops, 3);
    t = kt_wbegin(r); /* it writes under the new key */
    kith_docid doc;
    cr_assert_eq(kith_doc_create(t, "contacts", &doc), 0, "%s", kith_errmsg(r));
    char hex[KITH_DOCID_HEX + 1], id[17];
    kith_docid_format(&doc, hex);
    snprintf(id, sizeof id, "%016llx", (unsigned long long)ri.new_id);
    cr_assert_eq(strncmp(hex, id, 16), 0, "a new document's id is a dot of the new key");
    kt_commit(t);
    kith_close(r);
    kt_rmtree(dir);
    free(dir);

    struct kt_replica x = kt_new();
    kith_apply_info info;
    cr_assert_eq(kith_trust_add(x.r, old_pk, "old", NULL), 0);
    cr_assert_eq(kith_trust_add(x.r, new_pk, "new", NULL), 0);
    cr_assert_eq(kith_bundle_apply(x.r, V4 "/l.kb", &info), 0, "%s", kith_errmsg(x.r));
    cr_assert_eq(info.ops_pending, 0);
    assert_exports(x.r, V4 "/export.json");
    cr_assert_eq(kith_forks_get(x.r, &forks, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert(forks[0].has_proof, "the proof came in the bundle");
    kith_forks_free(forks, n);
    kt_free(&x);
}
