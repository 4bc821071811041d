/*
 * test_verify.c — kith_verify (store/verify.c) passes on healthy replicas and catches damage
 * made behind kith's back with the LMDB API directly: a flipped byte in a logged commit, a
 * wrong chain hash, a bad signature, a register, membership or index entry changed, missing
 * or added. It reports and never repairs: the replica is the same afterwards.
 */
#include "kith.h"
#include "kith_test.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A replica with some of everything: contacts with tags, a delete, an interaction and a
 * reminder, in several commits. */
static void
populate(kith_replica *r)
{
    kith_docid a = kt_contact(r, "ada"), b = kt_contact(r, "bob"), i, rem;
    kith_txn *t = kt_wbegin(r);
    cr_assert_eq(kith_set_add(t, "contacts", &a, "tags", "x", 1), 0);
    cr_assert_eq(kith_set_add(t, "contacts", &a, "tags", "y", 1), 0);
    kt_commit(t);
    t = kt_wbegin(r);
    kith_value vc = {.type = KITH_TYPE_REF}, kind = {.type = KITH_TYPE_ENUM},
               at = {.type = KITH_TYPE_TIME}, text = {.type = KITH_TYPE_STRING};
    vc.u.ref = a;
    kind.u.s.ptr = "note";
    kind.u.s.len = 4;
    at.u.i = 1000;
    text.u.s.ptr = "t";
    text.u.s.len = 1;
    cr_assert_eq(kith_doc_create(t, "interactions", &i), 0);
    cr_assert_eq(kith_field_set(t, "interactions", &i, "contact", &vc), 0);
    cr_assert_eq(kith_field_set(t, "interactions", &i, "kind", &kind), 0);
    cr_assert_eq(kith_field_set(t, "interactions", &i, "at", &at), 0);
    cr_assert_eq(kith_doc_create(t, "reminders", &rem), 0);
    cr_assert_eq(kith_field_set(t, "reminders", &rem, "due", &at), 0);
    cr_assert_eq(kith_field_set(t, "reminders", &rem, "text", &text), 0);
    cr_assert_eq(kith_doc_delete(t, "contacts", &b), 0);
    kt_commit(t);
    kt_set_str(r, "contacts", &a, "email", "ada@example.org");
}

static kith_verify_report
verify(kith_replica *r)
{
    kith_verify_report rep;
    int rc = kith_verify(r, &rep);
    cr_assert_eq(rc, 0, "verify could not run: %s", kith_strerror(rc));
    return rep;
}

static void
expect_clean(kith_replica *r)
{
    kith_verify_report rep = verify(r);
    cr_assert_eq(rep.problems, 0, "healthy replica: %s", rep.first_problem);
    cr_assert_gt(rep.commits_checked, 0);
}

/* Damage a closed replica's database `db` with `fn` in one LMDB write transaction. */
typedef void (*damage_fn)(MDB_txn *txn, MDB_dbi dbi, void *ctx);

static void
damage(struct kt_replica *k, const char *db, damage_fn fn, void *ctx)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;

    kith_close(k->r);
    k->r = NULL;
    cr_assert_eq(mdb_env_create(&env), 0);
    cr_assert_eq(mdb_env_set_maxdbs(env, 32), 0);
    cr_assert_eq(mdb_env_open(env, k->dir, 0, 0600), 0);
    cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
    cr_assert_eq(mdb_dbi_open(txn, db, 0, &dbi), 0);
    fn(txn, dbi, ctx);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    kt_reopen(k, KITH_NOSYNC);
}

/* Rewrite the first record of the database for which `pick` says yes, changing byte `at`
 * of its value (negative: from the end). */
struct flip {
    long at;
    bool (*pick)(const MDB_val *k, const MDB_val *v);
    bool done;
};

static void
flip_value(MDB_txn *txn, MDB_dbi dbi, void *ctx)
{
    struct flip *f = ctx;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    cr_assert_eq(mdb_cursor_open(txn, dbi, &cur), 0);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (f->pick && !f->pick(&k, &v))
            continue;
        uint8_t *copy = malloc(v.mv_size);
        uint8_t kcopy[512];
        memcpy(copy, v.mv_data, v.mv_size);
        memcpy(kcopy, k.mv_data, k.mv_size);
        size_t pos = f->at < 0 ? v.mv_size - (size_t)(-f->at) : (size_t)f->at;
        cr_assert_lt(pos, v.mv_size);
        copy[pos] ^= 0x01;
        MDB_val nk = {k.mv_size, kcopy}, nv = {v.mv_size, copy};
        cr_assert_eq(mdb_put(txn, dbi, &nk, &nv, 0), 0);
        free(copy);
        f->done = true;
        break;
    }
    mdb_cursor_close(cur);
    cr_assert(f->done, "nothing to damage");
}

static void
delete_first(MDB_txn *txn, MDB_dbi dbi, void *ctx)
{
    MDB_cursor *cur;
    MDB_val k, v;
    (void)ctx;

    cr_assert_eq(mdb_cursor_open(txn, dbi, &cur), 0);
    cr_assert_eq(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
    cr_assert_eq(mdb_cursor_del(cur, 0), 0);
    mdb_cursor_close(cur);
}

static void
expect_problem(kith_replica *r, const char *word)
{
    kith_verify_report rep = verify(r);
    cr_assert_gt(rep.problems, 0, "damage not found");
    cr_assert_not_null(strstr(rep.first_problem, word), "first problem \"%s\" lacks \"%s\"",
                       rep.first_problem, word);
}

Test(verify, healthy_replicas_pass_and_are_unchanged)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kt_trust_pair(&a, &b);
    populate(a.r);
    kt_sync(&a, &b);
    kt_contact(b.r, "b's own");
    kt_sync(&b, &a);

    char *before = kt_export(a.r);
    kith_status *s;
    cr_assert_eq(kith_status_get(a.r, &s), 0);
    kith_verify_report rep = verify(a.r);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    cr_assert_str_eq(rep.first_problem, "");
    cr_assert_eq(rep.ops_checked, s->ops_logged);
    cr_assert_geq(rep.commits_checked, 6);
    cr_assert_geq(rep.signatures_checked, 1, "the head b signed was not checked");
    kith_status_free(s);
    char *after = kt_export(a.r);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    expect_clean(b.r);
    kt_free(&a);
    kt_free(&b);
}

Test(verify, empty_replica_passes)
{
    struct kt_replica a = kt_new();
    kith_verify_report rep = verify(a.r);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    cr_assert_eq(rep.commits_checked, 0);
    kt_free(&a);
}

Test(verify, flipped_byte_in_a_logged_commit)
{
    struct kt_replica a = kt_new();
    populate(a.r);
    expect_clean(a.r);
    struct flip f = {.at = -1};
    damage(&a, "log", flip_value, &f);
    expect_problem(a.r, "commit");
    kt_free(&a);
}

Test(verify, wrong_chain_hash)
{
    struct kt_replica a = kt_new();
    populate(a.r);
    expect_clean(a.r);
    struct flip f = {.at = 4 + 7}; /* inside the stored chain hash */
    damage(&a, "log", flip_value, &f);
    expect_problem(a.r, "chain hash");
    kt_free(&a);
}

Test(verify, bad_signature)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kt_trust_pair(&a, &b);
    populate(a.r);
    kt_sync(&a, &b);
    expect_clean(b.r);
    struct flip f = {.at = 10};
    damage(&b, "sigs", flip_value, &f);
    expect_problem(b.r, "signature");
    kt_free(&a);
    kt_free(&b);
}

static bool
is_string_register(const MDB_val *k, const MDB_val *v)
{
    (void)k;
    return v->mv_size > 25 && ((const uint8_t *)v->mv_data)[24] == KITH_TYPE_STRING;
}

Test(verify, register_changed_behind_kiths_back)
{
    struct kt_replica a = kt_new();
    populate(a.r);
    expect_clean(a.r);
    struct flip f = {.at = -1, .pick = is_string_register};
    damage(&a, "regs", flip_value, &f);
    expect_problem(a.r, "register");
    kt_free(&a);
}

Test(verify, membership_removed_behind_kiths_back)
{
    struct kt_replica a = kt_new();
    populate(a.r);
    expect_clean(a.r);
    damage(&a, "docs", delete_first, NULL);
    expect_problem(a.r, "membership");
    kt_free(&a);
}

Test(verify, missing_index_entry)
{
    struct kt_replica a = kt_new();
    populate(a.r);
    expect_clean(a.r);
    damage(&a, "index", delete_first, NULL);
    expect_problem(a.r, "index");
    kith_verify_report rep = verify(a.r);
    cr_assert_not_null(strstr(rep.first_problem, "missing"), "%s", rep.first_problem);
    kt_free(&a);
}

static void
add_index_entry(MDB_txn *txn, MDB_dbi dbi, void *ctx)
{
    uint8_t key[1 + 3 + 1 + 16] = {1, 'z', 'z', 'z', 0};
    MDB_val k = {sizeof key, key}, v = {0, NULL};
    (void)ctx;
    memset(key + 5, 0xab, 16);
    cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
}

Test(verify, extra_index_entry)
{
    struct kt_replica a = kt_new();
    populate(a.r);
    expect_clean(a.r);
    damage(&a, "index", add_index_entry, NULL);
    expect_problem(a.r, "index");
    kt_free(&a);
}

/* ---- generated: every flipped byte of replicated data is found ---------------------------- */

static void
copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ssize_t n;

    cr_assert(in >= 0 && out >= 0, "copy %s", from);
    while ((n = read(in, buf, sizeof buf)) > 0)
        cr_assert_eq(write(out, buf, (size_t)n), n);
    cr_assert_eq(n, 0);
    close(in);
    close(out);
}

/* Copy a closed replica's files (not the lock file) into a new directory `to`. */
static void
copy_replica(const char *from, const char *to)
{
    DIR *d = opendir(from);
    struct dirent *e;
    char a[1024], b[1024];

    cr_assert_not_null(d);
    cr_assert_eq(mkdir(to, 0700), 0);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strcmp(e->d_name, "lock.mdb") == 0)
            continue;
        snprintf(a, sizeof a, "%s/%s", from, e->d_name);
        snprintf(b, sizeof b, "%s/%s", to, e->d_name);
        copy_file(a, b);
    }
    closedir(d);
}

struct rflip {
    uint64_t *rng;
    char what[160];
};

/* Flip one bit of one byte of a random record's key or value (the key when the value is
 * empty). A record whose key changes is deleted and put again under the new key. */
static void
flip_random(MDB_txn *txn, MDB_dbi dbi, void *ctx)
{
    struct rflip *f = ctx;
    MDB_stat st;
    MDB_cursor *cur;
    MDB_val k, v;
    uint8_t key[512], *val;

    cr_assert_eq(mdb_stat(txn, dbi, &st), 0);
    cr_assert_gt(st.ms_entries, 0);
    size_t pick = kt_below(f->rng, st.ms_entries);
    cr_assert_eq(mdb_cursor_open(txn, dbi, &cur), 0);
    cr_assert_eq(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
    for (size_t i = 0; i < pick; i++)
        cr_assert_eq(mdb_cursor_get(cur, &k, &v, MDB_NEXT), 0);
    size_t klen = k.mv_size, vlen = v.mv_size;
    memcpy(key, k.mv_data, klen);
    val = malloc(vlen ? vlen : 1);
    memcpy(val, v.mv_data, vlen);
    bool in_key = vlen == 0 || kt_below(f->rng, 4) == 0;
    size_t pos = kt_below(f->rng, in_key ? klen : vlen);
    uint8_t bit = (uint8_t)(1u << kt_below(f->rng, 8));
    snprintf(f->what, sizeof f->what, "record %zu of %zu, %s byte %zu of %zu, bit %02x", pick,
             (size_t)st.ms_entries, in_key ? "key" : "value", pos, in_key ? klen : vlen, bit);
    if (in_key) {
        cr_assert_eq(mdb_cursor_del(cur, 0), 0);
        key[pos] ^= bit;
    } else {
        val[pos] ^= bit;
    }
    mdb_cursor_close(cur);
    MDB_val nk = {klen, key}, nv = {vlen, val};
    cr_assert_eq(mdb_put(txn, dbi, &nk, &nv, 0), 0);
    free(val);
}

Test(verify, every_flipped_byte_of_replicated_data_is_found, .timeout = 240)
{
    /* The replicated state and the log; meta counters other than "pending", conflicts and
     * peers are local bookkeeping that verify does not claim to check. */
    static const char *const dbs[] = {"log",  "sigs",  "origins", "order",
                                      "regs", "elems", "docs",    "index"};
    struct kt_replica a = kt_new(), b = kt_new();
    kt_trust_pair(&a, &b);
    populate(a.r);
    kt_sync(&a, &b);
    populate(b.r);
    kt_sync(&b, &a);
    expect_clean(b.r);
    kith_close(b.r);
    b.r = NULL;

    uint64_t seed = kt_seed(), rng = seed;
    int cases = kt_cases(40);
    char *root = kt_tmpdir();
    for (int i = 0; i < cases; i++) {
        char dir[600];
        struct kt_replica c = {.dir = dir, .root = NULL, .r = NULL};
        struct rflip f = {.rng = &rng};
        const char *db = dbs[kt_below(&rng, sizeof dbs / sizeof dbs[0])];
        kith_verify_report rep;

        snprintf(dir, sizeof dir, "%s/c%d", root, i);
        copy_replica(b.dir, dir);
        cr_assert_eq(kith_open(dir, KITH_NOSYNC, &c.r), 0);
        damage(&c, db, flip_random, &f);
        int rc = kith_verify(c.r, &rep);
        cr_assert_eq(rc, 0, "KITH_SEED=%llu case %d: %s %s: verify could not run: %s",
                     (unsigned long long)seed, i, db, f.what, kith_strerror(rc));
        cr_assert_gt(rep.problems, 0, "KITH_SEED=%llu case %d: %s %s: not found",
                     (unsigned long long)seed, i, db, f.what);
        kith_close(c.r);
    }
    kt_rmtree(root);
    free(root);
    kt_free(&a);
    kt_free(&b);
}

/* verify works in a scratch directory under TMPDIR and leaves nothing behind there. */
Test(verify, scratch_space_is_removed)
{
    struct kt_replica a = kt_new();
    populate(a.r);
    char *tmp = kt_tmpdir();
    cr_assert_eq(setenv("TMPDIR", tmp, 1), 0);
    expect_clean(a.r);
    DIR *d = opendir(tmp);
    struct dirent *e;
    int n = 0;
    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    cr_assert_eq(n, 0, "verify left %d entries in TMPDIR", n);
    /* It does work there: with no usable TMPDIR it cannot run, and says so. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/missing", tmp);
    cr_assert_eq(setenv("TMPDIR", bad, 1), 0);
    kith_verify_report rep;
    cr_assert_lt(kith_verify(a.r, &rep), 0);
    kt_rmtree(tmp);
    free(tmp);
    kt_free(&a);
}

/* Zero every page of dir/data.mdb that holds `needle` (the live leaf and any stale copies). */
static size_t
zero_pages_holding(const char *dir, const char *needle)
{
    char path[512];
    uint8_t page[4096];
    size_t n = strlen(needle), zeroed = 0;
    int fd;

    snprintf(path, sizeof path, "%s/data.mdb", dir);
    fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    for (off_t off = 2 * 4096; pread(fd, page, sizeof page, off) == (ssize_t)sizeof page;
         off += 4096) {
        if (memmem(page, sizeof page, needle, n) == NULL)
            continue;
        memset(page, 0, sizeof page);
        cr_assert_eq(pwrite(fd, page, sizeof page, off), (ssize_t)sizeof page);
        zeroed++;
    }
    close(fd);
    return zeroed;
}

/* STO-21: a leaf page zeroed in the middle of the log makes LMDB assert when a cursor steps
 * onto it. verify reports it as a problem naming the database; reading the log fails with
 * KITH_ECORRUPT and says so; the process is not aborted. */
Test(verify, zeroed_log_page_is_a_problem_not_an_abort)
{
    struct kt_replica k = kt_new_flags(KITH_NOSYNC, 0);
    kith_verify_report rep;
    kith_iter *it = NULL;
    kith_log_entry e;
    kith_txn *t;
    char name[64];
    int rc;

    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof name, "contact-%05d-with-a-long-enough-name-to-fill-pages", i);
        kt_contact(k.r, name);
    }
    kith_close(k.r);
    k.r = NULL;
    cr_assert_gt(zero_pages_holding(k.dir, "contact-00150-"), 0);
    kt_reopen(&k, KITH_RDONLY);
    cr_assert_eq(kith_verify(k.r, &rep), 0, "%s", kith_errmsg(k.r));
    cr_assert_geq(rep.problems, 1);
    cr_assert(strstr(rep.first_problem, "database log cannot be read") != NULL, "first: %s",
              rep.first_problem);
    t = kt_rbegin(k.r);
    cr_assert_eq(kith_iter_log(t, 0, &it), 0);
    while ((rc = kith_iter_next_log(it, &e)) == 0)
        ;
    cr_assert_eq(rc, KITH_ECORRUPT);
    cr_assert(strstr(kith_errmsg(k.r), "database log cannot be read") != NULL, "%s",
              kith_errmsg(k.r));
    kith_iter_close(it);
    kith_txn_abort(&t);
    kt_free(&k);
}
