/*
 * test_schema_info.c — kith_schema_info (store/schema_info.c): the version and digest read
 * from the meta keys "schema_v" and "schema", written here directly as the declaring code
 * writes them; a missing key reads as 0 or zeros (a replica made by an older kith has no
 * "schema_v"); either output may be NULL; a value of the wrong size is KITH_ECORRUPT with
 * the key named, and leaves the outputs zeroed.
 */
#include "kith.h"
#include "kith_test.h"
#include "store.h"

#include <criterion/criterion.h>
#include <string.h>

/* Put (p != NULL) or delete (p == NULL) the meta key `key` of r, in a transaction of its own. */
static void
meta_set(kith_replica *r, const char *key, const void *p, size_t n)
{
    MDB_txn *txn;
    MDB_val k = {strlen(key), (void *)key};
    int rc;

    cr_assert_eq(kith__mdb_begin(r, 0, &txn), 0);
    if (p) {
        rc = kith__meta_put(r, txn, key, p, n);
    } else {
        rc = kith__mdb_del(txn, r->meta, &k, NULL);
        rc = rc == MDB_NOTFOUND ? 0 : rc;
    }
    cr_assert_eq(rc, 0, "meta %s: %d", key, rc);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(r);
}

static void
meta_set_u64(kith_replica *r, const char *key, uint64_t v)
{
    uint8_t b[8];

    kith__be64_put(b, v);
    meta_set(r, key, b, sizeof b);
}

Test(schema_info, reads_the_version_and_the_digest)
{
    struct kt_replica a = kt_new();
    uint8_t digest[KITH_HASH_BYTES], want[KITH_HASH_BYTES];
    uint64_t version = 99;

    for (int i = 0; i < KITH_HASH_BYTES; i++)
        want[i] = (uint8_t)(0xa0 + i);
    meta_set_u64(a.r, "schema_v", 0x0102030405060708ull);
    meta_set(a.r, "schema", want, sizeof want);
    cr_assert_eq(kith_schema_info(a.r, &version, digest), 0);
    cr_assert_eq(version, 0x0102030405060708ull);
    cr_assert_arr_eq(digest, want, sizeof want);

    /* either output may be NULL */
    version = 0;
    cr_assert_eq(kith_schema_info(a.r, &version, NULL), 0);
    cr_assert_eq(version, 0x0102030405060708ull);
    memset(digest, 0, sizeof digest);
    cr_assert_eq(kith_schema_info(a.r, NULL, digest), 0);
    cr_assert_arr_eq(digest, want, sizeof want);
    cr_assert_eq(kith_schema_info(a.r, NULL, NULL), 0);
    kt_free(&a);
}

Test(schema_info, missing_keys_read_as_zero)
{
    struct kt_replica a = kt_new();
    uint8_t digest[KITH_HASH_BYTES], zeros[KITH_HASH_BYTES] = {0}, fp[KITH_HASH_BYTES];
    uint64_t version = 99;

    /* as an older kith left it: the fingerprint it was made with, no version */
    kith_schema_fingerprint(fp);
    meta_set(a.r, "schema_v", NULL, 0);
    meta_set(a.r, "schema", fp, sizeof fp);
    cr_assert_eq(kith_schema_info(a.r, &version, digest), 0);
    cr_assert_eq(version, 0);
    cr_assert_arr_eq(digest, fp, sizeof fp);

    /* nothing stored at all */
    meta_set(a.r, "schema", NULL, 0);
    memset(digest, 0xff, sizeof digest);
    version = 99;
    cr_assert_eq(kith_schema_info(a.r, &version, digest), 0);
    cr_assert_eq(version, 0);
    cr_assert_arr_eq(digest, zeros, sizeof zeros);
    kt_free(&a);
}

Test(schema_info, wrong_sizes_are_corrupt)
{
    struct kt_replica a = kt_new();
    uint8_t digest[KITH_HASH_BYTES], zeros[KITH_HASH_BYTES] = {0}, short_digest[31] = {1};
    uint64_t version = 99;

    meta_set_u64(a.r, "schema_v", 3);
    meta_set(a.r, "schema", short_digest, sizeof short_digest);
    memset(digest, 0xff, sizeof digest);
    cr_assert_eq(kith_schema_info(a.r, &version, digest), KITH_ECORRUPT);
    cr_assert(strstr(kith_errmsg(a.r), "schema"), "errmsg: %s", kith_errmsg(a.r));
    cr_assert_eq(version, 0);
    cr_assert_arr_eq(digest, zeros, sizeof zeros);

    meta_set(a.r, "schema", NULL, 0);
    meta_set(a.r, "schema_v", "\x01\x02\x03", 3);
    cr_assert_eq(kith_schema_info(a.r, &version, digest), KITH_ECORRUPT);
    cr_assert(strstr(kith_errmsg(a.r), "schema_v"), "errmsg: %s", kith_errmsg(a.r));
    cr_assert_eq(kith_schema_info(NULL, &version, digest), KITH_EINVAL);
    kt_free(&a);
}
