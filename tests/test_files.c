/*
 * test_files.c — a replica's files outside LMDB (store/files.c, spec/storage.md STO-1, STO-2,
 * STO-21): a data.mdb cut short of the pages its meta page names is refused with the sizes,
 * while one whose missing tail holds only free pages (which LMDB may leave unwritten) is
 * accepted and reads whole; the detail of a failed open; a creation cut short is finished by
 * the next create, and a key beside an empty data.mdb is damage, never a new replica.
 */
#include "kith_test.h"
#include "store.h"

#include <criterion/criterion.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Write `n` keys from `from` (or delete them), 1000-byte values, in one transaction. */
static void
keys(MDB_env *env, int from, int to, bool del)
{
    MDB_txn *t;
    MDB_dbi d;
    char val[1000];

    memset(val, 'v', sizeof val);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &t), 0);
    cr_assert_eq(mdb_dbi_open(t, NULL, 0, &d), 0);
    for (int i = from; i < to; i++) {
        char k[16];
        MDB_val kv = {(size_t)snprintf(k, sizeof k, "k%05d", i), k}, vv = {sizeof val, val};
        cr_assert_eq(del ? mdb_del(t, d, &kv, NULL) : mdb_put(t, d, &kv, &vv, 0), 0);
    }
    cr_assert_eq(mdb_txn_commit(t), 0);
}

/* Is page `pg` in the free list of env? */
static bool
page_free(MDB_env *env, size_t pg)
{
    MDB_txn *t;
    MDB_cursor *c;
    MDB_val k, v;
    bool found = false;

    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &t), 0);
    cr_assert_eq(mdb_cursor_open(t, 0, &c), 0); /* FREE_DBI */
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !found;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const size_t *idl = v.mv_data;
        for (size_t i = 1; i <= idl[0]; i++)
            found |= idl[i] == pg;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    return found;
}

/* Count the entries of the main database: reads every page the file must hold. */
static size_t
count_keys(const char *dir)
{
    MDB_env *env;
    MDB_txn *t;
    MDB_cursor *c;
    MDB_val k, v;
    size_t n = 0;

    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &t), 0);
    cr_assert_eq(mdb_cursor_open(t, KITH__DBI_MAIN, &c), 0);
    while (mdb_cursor_get(c, &k, &v, n == 0 ? MDB_FIRST : MDB_NEXT) == 0)
        n++;
    mdb_cursor_close(c);
    mdb_txn_abort(t);
    mdb_env_close(env);
    return n;
}

Test(files, cut_through_free_pages_only_is_accepted_one_more_is_not)
{
    char *dir = kt_tmpdir(), path[512], why[200];
    MDB_env *env;
    MDB_envinfo info;
    size_t last, keep;

    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_mapsize(env, 1 << 26), 0);
    cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
    /* pages written, freed, then the commits after free the top pages they moved off */
    keys(env, 0, 10, false);
    keys(env, 10, 200, false);
    keys(env, 10, 200, true);
    keys(env, 0, 1, false);
    keys(env, 1, 2, false);
    cr_assert_eq(mdb_env_info(env, &info), 0);
    last = info.me_last_pgno;
    keep = last + 1;
    while (keep > 2 && page_free(env, keep - 1))
        keep--;
    mdb_env_close(env);
    cr_assert_lt(keep, last + 1, "this LMDB left no free page at the end (last page %zu)", last);

    snprintf(path, sizeof path, "%s/data.mdb", dir);
    cr_assert_eq(truncate(path, (off_t)(keep * 4096)), 0);
    cr_assert_eq(kith__datafile_check(dir, why, sizeof why), 0, "%s", why);
    cr_assert_eq(count_keys(dir), 10);

    cr_assert_eq(truncate(path, (off_t)((keep - 1) * 4096)), 0);
    cr_assert_eq(kith__datafile_check(dir, why, sizeof why), KITH_ECORRUPT);
    char want[200];
    snprintf(want, sizeof want, "replica is damaged: data.mdb is %zu bytes, the database needs %zu",
             (keep - 1) * 4096, (last + 1) * 4096);
    cr_assert_str_eq(why, want);
    kt_rmtree(dir);
    free(dir);
}

Test(files, zero_bytes_is_damage_not_a_bad_descriptor)
{
    char *dir = kt_tmpdir(), path[512], why[200];
    FILE *f;

    snprintf(path, sizeof path, "%s/data.mdb", dir);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert_eq(kith__datafile_check(dir, why, sizeof why), KITH_ECORRUPT);
    cr_assert_str_eq(why, "replica is damaged: data.mdb is 0 bytes, without a valid meta page");
    kt_rmtree(dir);
    free(dir);
}

static void
write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static bool
exists(const char *dir, const char *name)
{
    char path[512];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

Test(files, open_failure_detail_is_kith_errmsg_null)
{
    struct kt_replica k = kt_new();
    char path[512];
    kith_replica *r = NULL;

    kith_close(k.r);
    k.r = NULL;
    snprintf(path, sizeof path, "%s/data.mdb", k.dir);
    cr_assert_eq(truncate(path, 4096), 0);
    cr_assert_eq(kith_open(k.dir, KITH_RDONLY, &r), KITH_ECORRUPT);
    cr_assert_null(r);
    cr_assert(strstr(kith_errmsg(NULL), "replica is damaged: data.mdb is 4096 bytes") != NULL,
              "detail: %s", kith_errmsg(NULL));
    kt_free(&k);
}

Test(files, interrupted_creation_is_not_found_then_finished_by_create)
{
    char *dir = kt_tmpdir();
    uint8_t pk[KITH_PUBKEY_BYTES], sk[64], got[KITH_PUBKEY_BYTES];
    kith_replica *r = NULL;

    /* what a creation cut short by a full disk leaves: its key, an empty data.mdb */
    crypto_sign_keypair(pk, sk);
    write_file(dir, "key.tmp", sk, sizeof sk);
    write_file(dir, "data.mdb", "", 0);
    cr_assert_eq(kith_open(dir, 0, &r), KITH_ENOTFOUND);
    cr_assert(strstr(kith_errmsg(NULL), "creation did not finish") != NULL);
    cr_assert_eq(kith_open(dir, KITH_CREATE, &r), 0, "%s", kith_errmsg(NULL));
    kith_replica_pubkey(r, got);
    cr_assert_arr_eq(got, pk, sizeof pk, "the creation keeps the key it had written");
    kith_close(r);
    cr_assert(exists(dir, "key") && !exists(dir, "key.tmp"));
    cr_assert_eq(kith_open(dir, KITH_RDONLY, &r), 0);
    kith_close(r);
    kt_rmtree(dir);
    free(dir);
}

Test(files, key_beside_empty_data_is_damage_even_for_create)
{
    struct kt_replica k = kt_new();
    char path[512];
    kith_replica *r = NULL;

    kith_close(k.r);
    k.r = NULL;
    snprintf(path, sizeof path, "%s/data.mdb", k.dir);
    cr_assert_eq(truncate(path, 0), 0);
    cr_assert_eq(kith_open(k.dir, KITH_CREATE, &r), KITH_ECORRUPT,
                 "a new history under an old key would fork it");
    cr_assert_null(r);
    cr_assert_eq(kith_open(k.dir, KITH_RDONLY, &r), KITH_ECORRUPT);
    kt_free(&k);
}
