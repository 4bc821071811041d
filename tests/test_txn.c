/*
 * test_txn.c — the replica and its local transactions (store/replica.c, store/txn.c):
 * creating, reopening and refusing directories, the key file, commit and abort,
 * read-your-writes, schema refusals that change nothing, observers, map growth from a tiny
 * map, and two processes writing to one replica in turn.
 */
#include "kith_test.h"
#include "store.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t
applied_seq(kith_replica *r)
{
    kith_vv vv = {0};
    uint64_t seq = 0;

    cr_assert_eq(kith_vv_get(r, &vv), 0);
    for (size_t i = 0; i < vv.len; i++)
        if (vv.entries[i].origin == kith_replica_id(r))
            seq = vv.entries[i].seq;
    kith_vv_free(&vv);
    return seq;
}

Test(txn, create_reopen_keeps_everything)
{
    struct kt_replica k = kt_new();
    uint8_t pk1[32], pk2[32];
    uint64_t id = kith_replica_id(k.r);
    char buf[64];

    kith_replica_pubkey(k.r, pk1);
    kith_docid c = kt_contact(k.r, "Ada Lovelace");
    kt_set_str(k.r, "contacts", &c, "email", "ada@example.org");
    kt_reopen(&k, 0);
    cr_assert_eq(kith_replica_id(k.r), id);
    kith_replica_pubkey(k.r, pk2);
    cr_assert_arr_eq(pk1, pk2, 32);
    cr_assert_str_eq(kt_get_str(k.r, "contacts", &c, "name", buf, sizeof buf), "Ada Lovelace");
    cr_assert_str_eq(kt_get_str(k.r, "contacts", &c, "email", buf, sizeof buf), "ada@example.org");
    cr_assert_eq(applied_seq(k.r), 3); /* DOC_ADD, name, email */
    cr_assert_str_eq(kith_replica_path(k.r), k.dir);
    kt_free(&k);
}

Test(txn, key_file_is_private)
{
    struct kt_replica k = kt_new();
    char path[512];
    struct stat st, dst;

    snprintf(path, sizeof path, "%s/key", k.dir);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "key mode %o", st.st_mode & 0777);
    cr_assert_eq(st.st_size, 64);
    cr_assert_eq(stat(k.dir, &dst), 0);
    cr_assert_eq(dst.st_mode & 0777, 0700, "dir mode %o", dst.st_mode & 0777);
    kt_free(&k);
}

Test(txn, refuses_what_is_not_a_replica)
{
    char *root = kt_tmpdir();
    char dir[512], file[600];
    kith_replica *r = (kith_replica *)1;
    FILE *f;

    snprintf(dir, sizeof dir, "%s/none", root);
    cr_assert_eq(kith_open(dir, 0, &r), KITH_ENOTFOUND);
    cr_assert_null(r);
    /* a directory holding something else */
    snprintf(file, sizeof file, "%s/notes.txt", root);
    f = fopen(file, "w");
    cr_assert_not_null(f);
    fputs("hello\n", f);
    fclose(f);
    cr_assert_eq(kith_open(root, KITH_CREATE, &r), KITH_ECORRUPT);
    cr_assert_null(r);
    cr_assert_eq(kith_open(root, 0, &r), KITH_ENOTFOUND);
    /* a plain file */
    cr_assert_eq(kith_open(file, KITH_CREATE, &r), KITH_ECORRUPT);
    /* bad arguments */
    cr_assert_eq(kith_open(NULL, 0, &r), KITH_EINVAL);
    cr_assert_eq(kith_open(dir, KITH_CREATE | KITH_RDONLY, &r), KITH_EINVAL);
    kt_rmtree(root);
    free(root);
}

Test(txn, refuses_a_newer_format_and_a_foreign_key)
{
    struct kt_replica k = kt_new(), other = kt_new();
    char kp[512], okp[512];
    uint8_t fmt[4] = {0, 0, 0, 99}, key[64];
    kith_replica *r = NULL;
    MDB_txn *txn;
    MDB_val mk = {6, "format"}, mv = {4, fmt};
    FILE *f;

    cr_assert_eq(kith__mdb_begin(k.r, 0, &txn), 0);
    cr_assert_eq(mdb_put(txn, k.r->meta, &mk, &mv, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(k.r);
    kith_close(k.r);
    k.r = NULL;
    cr_assert_eq(kith_open(k.dir, 0, &r), KITH_EVERSION);
    cr_assert_null(r);

    /* the other replica's key beside a third one's data */
    struct kt_replica third = kt_new();
    kith_close(third.r);
    third.r = NULL;
    snprintf(kp, sizeof kp, "%s/key", third.dir);
    snprintf(okp, sizeof okp, "%s/key", other.dir);
    f = fopen(okp, "rb");
    cr_assert_eq(fread(key, 1, 64, f), 64);
    fclose(f);
    kith_close(other.r);
    other.r = NULL;
    f = fopen(kp, "wb");
    cr_assert_eq(fwrite(key, 1, 64, f), 64);
    fclose(f);
    int rc = kith_open(third.dir, 0, &r);
    cr_assert_eq(rc, KITH_ECORRUPT, "%s", kith_strerror(rc));
    kt_free(&third);
    kt_free(&k);
    kt_free(&other);
}

Test(txn, abort_leaves_nothing)
{
    struct kt_replica k = kt_new();
    kith_txn *t = NULL;
    kith_docid id;
    kith_value v = kt_str("Grace");

    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_WRITE, &t), 0);
    cr_assert_eq(kith_doc_create(t, "contacts", &id), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &id, "name", &v), 0);
    cr_assert_eq(kith_doc_exists(t, "contacts", &id), 1);
    kith_txn_abort(&t);
    cr_assert_null(t);
    kith_txn_abort(&t); /* takes a pointer to NULL */
    kith_txn_abort(NULL);
    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_READ, &t), 0);
    cr_assert_eq(kith_doc_exists(t, "contacts", &id), 0);
    kith_txn_abort(&t);
    cr_assert_eq(applied_seq(k.r), 0);
    /* an empty write transaction commits nothing */
    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_WRITE, &t), 0);
    cr_assert_eq(kith_txn_commit(&t), 0);
    cr_assert_null(t);
    cr_assert_eq(applied_seq(k.r), 0);
    kt_free(&k);
}

Test(txn, reads_see_own_writes)
{
    struct kt_replica k = kt_new();
    kith_txn *t = NULL;
    kith_docid id, ix;
    kith_value v = kt_str("Alan"), got;
    const char *elem;
    size_t len;
    kith_iter *it;

    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_WRITE, &t), 0);
    cr_assert_eq(kith_doc_create(t, "contacts", &id), 0);
    cr_assert_eq(kith_field_get(t, "contacts", &id, "email", &got), 0);
    cr_assert_eq(got.type, KITH_TYPE_NULL);
    cr_assert_eq(kith_field_set(t, "contacts", &id, "name", &v), 0);
    cr_assert_eq(kith_field_get(t, "contacts", &id, "name", &got), 0);
    cr_assert_eq(got.type, KITH_TYPE_STRING);
    cr_assert_eq(got.u.s.len, 4);
    cr_assert_eq(memcmp(got.u.s.ptr, "Alan", 4), 0);
    v = kt_str("Alan Turing");
    cr_assert_eq(kith_field_set(t, "contacts", &id, "name", &v), 0);
    /* the earlier view stays valid until the transaction ends */
    cr_assert_eq(memcmp(got.u.s.ptr, "Alan", 4), 0);
    cr_assert_eq(kith_field_get(t, "contacts", &id, "name", &got), 0);
    cr_assert_eq(got.u.s.len, 11);
    cr_assert_eq(kith_set_add(t, "contacts", &id, "tags", "math", 4), 0);
    cr_assert_eq(kith_set_add(t, "contacts", &id, "tags", "war", 3), 0);
    cr_assert_eq(kith_set_remove(t, "contacts", &id, "tags", "war", 3), 0);
    cr_assert_eq(kith_set_remove(t, "contacts", &id, "tags", "absent", 6), 0);
    /* an interaction refers to the contact made in this same transaction */
    cr_assert_eq(kith_doc_create(t, "interactions", &ix), 0);
    kith_value ref = {.type = KITH_TYPE_REF, .u.ref = id};
    cr_assert_eq(kith_field_set(t, "interactions", &ix, "contact", &ref), 0);
    kith_value at = {.type = KITH_TYPE_TIME, .u.i = 1764093600000};
    cr_assert_eq(kith_field_set(t, "interactions", &ix, "at", &at), 0);
    cr_assert_eq(kith_txn_commit(&t), 0, "%s", kith_errmsg(k.r));

    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_READ, &t), 0);
    cr_assert_eq(kith_iter_set(t, "contacts", &id, "tags", &it), 0);
    cr_assert_eq(kith_iter_next_elem(it, &elem, &len), 0);
    cr_assert_eq(len, 4);
    cr_assert_eq(memcmp(elem, "math", 4), 0);
    cr_assert_eq(kith_iter_next_elem(it, &elem, &len), KITH_ENOTFOUND);
    kith_iter_close(it);
    kith_txn_abort(&t);
    /* 1 add + 2 names + 2 adds + 1 remove + interaction add + 2 fields */
    cr_assert_eq(applied_seq(k.r), 9);
    kt_free(&k);
}

/* Each refused write leaves the transaction failed and the replica unchanged. */
Test(txn, schema_refusals_change_nothing)
{
    struct kt_replica k = kt_new();
    kith_docid c = kt_contact(k.r, "Edsger"), ghost, ix;
    char *before = kt_export(k.r), *after;
    kith_txn *t = NULL;
    kith_value v;
    uint64_t seq = applied_seq(k.r);
    int rc;

    memset(&ghost, 0xab, sizeof ghost);
    for (int i = 0; i < 9; i++) {
        cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_WRITE, &t), 0);
        /* a good write first: it must vanish with the failed transaction */
        v = kt_str("changed");
        cr_assert_eq(kith_field_set(t, "contacts", &c, "company", &v), 0);
        switch (i) {
        case 0: /* wrong type */
            v = (kith_value){.type = KITH_TYPE_INT, .u.i = 5};
            rc = kith_field_set(t, "contacts", &c, "name", &v);
            cr_assert_eq(rc, KITH_ESCHEMA);
            break;
        case 1: /* required field cleared */
            v = (kith_value){.type = KITH_TYPE_NULL};
            rc = kith_field_set(t, "contacts", &c, "name", &v);
            cr_assert_eq(rc, KITH_ESCHEMA);
            break;
        case 2: /* not UTF-8 */
            v = kt_str("\xff\xfe");
            rc = kith_field_set(t, "contacts", &c, "notes", &v);
            cr_assert_eq(rc, KITH_ESCHEMA);
            break;
        case 3: /* unknown field */
            v = kt_str("x");
            rc = kith_field_set(t, "contacts", &c, "shoe_size", &v);
            cr_assert_eq(rc, KITH_ENOTFOUND);
            break;
        case 4: /* missing document */
            v = kt_str("x");
            rc = kith_field_set(t, "contacts", &ghost, "notes", &v);
            cr_assert_eq(rc, KITH_ENOTFOUND);
            break;
        case 5: /* reference to no document */
            cr_assert_eq(kith_doc_create(t, "interactions", &ix), 0);
            v = (kith_value){.type = KITH_TYPE_REF, .u.ref = ghost};
            rc = kith_field_set(t, "interactions", &ix, "contact", &v);
            cr_assert_eq(rc, KITH_ESCHEMA);
            break;
        case 6: /* bad enum value */
            cr_assert_eq(kith_doc_create(t, "interactions", &ix), 0);
            v = kt_str("telepathy");
            rc = kith_field_set(t, "interactions", &ix, "kind", &v);
            cr_assert_eq(rc, KITH_ESCHEMA);
            break;
        case 7: /* unknown collection */
            rc = kith_doc_create(t, "planets", &ix);
            cr_assert_eq(rc, KITH_ENOTFOUND);
            break;
        case 8: /* bad date */
            v = kt_str("2026-13-45");
            rc = kith_field_set(t, "contacts", &c, "birthday", &v);
            cr_assert_eq(rc, KITH_ESCHEMA);
            break;
        }
        cr_assert_neq(kith_errmsg(k.r)[0], '\0', "case %d: no detail", i);
        /* only abort remains */
        v = kt_str("again");
        cr_assert_eq(kith_field_set(t, "contacts", &c, "company", &v), KITH_EBADTXN);
        cr_assert_eq(kith_txn_commit(&t), KITH_EBADTXN);
        cr_assert_null(t);
    }
    after = kt_export(k.r);
    cr_assert_str_eq(before, after);
    cr_assert_eq(applied_seq(k.r), seq);
    free(before);
    free(after);
    kt_free(&k);
}

Test(txn, delete_then_write_is_refused)
{
    struct kt_replica k = kt_new();
    kith_docid c = kt_contact(k.r, "Barbara");
    kith_txn *t = NULL;
    kith_value v = kt_str("x");

    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_WRITE, &t), 0);
    cr_assert_eq(kith_doc_delete(t, "contacts", &c), 0);
    cr_assert_eq(kith_doc_exists(t, "contacts", &c), 0);
    cr_assert_eq(kith_txn_commit(&t), 0);
    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_WRITE, &t), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &c, "notes", &v), KITH_ENOTFOUND);
    kith_txn_abort(&t);
    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_WRITE, &t), 0);
    cr_assert_eq(kith_doc_delete(t, "contacts", &c), KITH_ENOTFOUND);
    kith_txn_abort(&t);
    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_READ, &t), 0);
    cr_assert_eq(kith_doc_create(t, "contacts", &c), KITH_EREADONLY);
    kith_txn_abort(&t);
    kt_free(&k);
}

Test(txn, read_only_replica_refuses_writes)
{
    struct kt_replica k = kt_new();
    kith_docid c = kt_contact(k.r, "Donald");
    kith_txn *t = NULL;
    char buf[32];

    kt_reopen(&k, KITH_RDONLY);
    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_WRITE, &t), KITH_EREADONLY);
    cr_assert_null(t);
    cr_assert_str_eq(kt_get_str(k.r, "contacts", &c, "name", buf, sizeof buf), "Donald");
    kt_free(&k);
}

struct seen {
    int calls;
    size_t ndocs;
    int source;
    int conflicts;
};

static void
on_change(void *ctx, const kith_change *ch)
{
    struct seen *s = ctx;
    s->calls++;
    s->ndocs = ch->ndocs;
    s->source = ch->source;
}

static void
on_conflict(void *ctx, const kith_conflict *c)
{
    struct seen *s = ctx;
    (void)c;
    s->conflicts++;
}

Test(txn, observers_hear_each_commit_once)
{
    struct kt_replica k = kt_new();
    struct seen s = {0};
    kith_txn *t = NULL;
    kith_docid a, b;
    kith_value v = kt_str("A");

    kith_observe(k.r, on_change, on_conflict, &s);
    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_WRITE, &t), 0);
    cr_assert_eq(kith_doc_create(t, "contacts", &a), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &a, "name", &v), 0);
    cr_assert_eq(kith_doc_create(t, "contacts", &b), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &b, "name", &v), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &a, "company", &v), 0, "%s", kith_errmsg(k.r));
    cr_assert_eq(s.calls, 0);
    cr_assert_eq(kith_txn_commit(&t), 0);
    cr_assert_eq(s.calls, 1);
    cr_assert_eq(s.ndocs, 2);
    cr_assert_eq(s.source, KITH_CHANGE_LOCAL);
    cr_assert_eq(s.conflicts, 0);
    /* aborted: not heard */
    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_WRITE, &t), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &a, "company", &v), 0);
    kith_txn_abort(&t);
    cr_assert_eq(s.calls, 1);
    kith_observe(k.r, NULL, NULL, NULL);
    kt_free(&k);
}

/* An observer reads the replica it was told about: its commit is over for this thread. */
static int observer_reads;

static void
on_change_reads(void *ctx, const kith_change *change)
{
    kith_replica *r = ctx;
    kith_txn *t = NULL;
    (void)change;
    cr_assert_eq(kith_txn_begin(r, KITH_TXN_READ, &t), 0, "%s", kith_errmsg(r));
    kith_txn_abort(&t);
    observer_reads++;
}

/* A thread has at most one transaction open: a second is refused, not a deadlock (a second
 * write would wait for the lock the first holds) nor a silent break of LMDB's rules. */
Test(txn, second_transaction_in_a_thread_is_refused, .timeout = 30)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kith_txn *t = NULL, *u = NULL;
    static const unsigned kinds[2] = {KITH_TXN_READ, KITH_TXN_WRITE};

    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            cr_assert_eq(kith_txn_begin(a.r, kinds[i], &t), 0);
            cr_assert_eq(kith_txn_begin(a.r, kinds[j], &u), KITH_EBADTXN);
            cr_assert_null(u);
            cr_assert(strstr(kith_errmsg(a.r), "transaction open already"), "%s", kith_errmsg(a.r));
            cr_assert_eq(kith_txn_begin(b.r, kinds[j], &u), KITH_EBADTXN, "another replica");
            kith_txn_abort(&t);
            cr_assert_eq(kith_txn_begin(a.r, kinds[j], &u), 0, "free again after abort");
            kith_txn_abort(&u);
        }
    /* a commit, failed or not, frees the thread too */
    kt_commit(kt_wbegin(a.r));
    cr_assert_eq(kith_txn_begin(b.r, KITH_TXN_WRITE, &u), 0);
    kith_txn_abort(&u);
    kith_observe(a.r, on_change_reads, NULL, a.r);
    kt_contact(a.r, "observed");
    kith_observe(a.r, NULL, NULL, NULL);
    cr_assert_eq(observer_reads, 1);
    kt_free(&a);
    kt_free(&b);
}

/* Each thread fails on the shared replica with a field of its own, over and over, and must
 * always read its own field's message: kith_errmsg is per thread. */
struct err_worker {
    kith_replica *r;
    const char *field;
    int rounds, wrong, empty;
    char seen[256];
};

static void *
err_worker_run(void *arg)
{
    struct err_worker *w = arg;
    kith_docid d = {{0}};
    for (int i = 0; i < w->rounds; i++) {
        kith_txn *t = NULL;
        kith_value v;
        /* read transactions, so that the threads fail at the same time */
        if (kith_txn_begin(w->r, KITH_TXN_READ, &t) != 0)
            continue;
        if (kith_field_get(t, "contacts", &d, w->field, &v) < 0) {
            const char *m = kith_errmsg(w->r);
            if (m[0] == '\0')
                w->empty++;
            else if (!strstr(m, w->field)) {
                w->wrong++;
                snprintf(w->seen, sizeof w->seen, "%s", m);
            }
        }
        kith_txn_abort(&t);
    }
    return NULL;
}

Test(txn, errmsg_is_per_thread, .timeout = 60)
{
    struct kt_replica k = kt_new();
    static const char *const fields[] = {"no_such_field_one", "no_such_field_two",
                                         "no_such_field_three", "no_such_field_four"};
    struct err_worker w[4];
    pthread_t th[4];

    for (int i = 0; i < 4; i++) {
        w[i] = (struct err_worker){.r = k.r, .field = fields[i], .rounds = 20000};
        cr_assert_eq(pthread_create(&th[i], NULL, err_worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pthread_join(th[i], NULL), 0);
        cr_assert_eq(w[i].empty, 0, "thread %d read no message", i);
        cr_assert_eq(w[i].wrong, 0, "thread %d read another thread's message: %s", i, w[i].seen);
    }
    cr_assert_str_eq(kith_errmsg(k.r), "", "this thread failed on nothing");
    kt_free(&k);
}

/* Start from a 256 KiB map and write ~24 MB: every MDB_MAP_FULL is met by growth. */
Test(txn, map_grows_from_tiny, .timeout = 120)
{
    struct kt_replica k = kt_new_flags(KITH_NOSYNC, 256 << 10);
    char big[4000];
    kith_docid first = {0}, id;
    kith_txn *t = NULL;
    MDB_envinfo info;

    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (int i = 0; i < 300; i++) {
        cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_WRITE, &t), 0);
        for (int j = 0; j < 20; j++) {
            kith_value v = kt_str(big);
            v.u.s.len = 3000 + (size_t)j;
            cr_assert_eq(kith_doc_create(t, "contacts", &id), 0, "%s", kith_errmsg(k.r));
            kith_value name = kt_str("a contact with a long note");
            cr_assert_eq(kith_field_set(t, "contacts", &id, "name", &name), 0, "%d/%d: %s", i, j,
                         kith_errmsg(k.r));
            cr_assert_eq(kith_field_set(t, "contacts", &id, "notes", &v), 0, "%s",
                         kith_errmsg(k.r));
            if (i == 0 && j == 0)
                first = id;
        }
        cr_assert_eq(kith_txn_commit(&t), 0, "%d: %s", i, kith_errmsg(k.r));
    }
    cr_assert_eq(mdb_env_info(k.r->env, &info), 0);
    cr_assert_gt(info.me_mapsize, (size_t)16 << 20);
    cr_assert_eq(applied_seq(k.r), 300 * 60);
    kt_reopen(&k, 0);
    cr_assert_eq(applied_seq(k.r), 300 * 60);
    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_READ, &t), 0);
    cr_assert_eq(kith_doc_exists(t, "contacts", &first), 1);
    kith_txn_abort(&t);
    kt_free(&k);
}

/* Two processes open one replica and write in turn (a pipe passes the turn); both see all. */
Test(txn, two_processes_write_in_turn, .timeout = 60)
{
    /* a small map: each process grows it in turn and the other adopts the new size */
    struct kt_replica k = kt_new_flags(KITH_NOSYNC, 256 << 10);
    static char notes[12001];
    memset(notes, 'q', sizeof notes - 1);
    int to_child[2], to_parent[2];
    const int rounds = 20;
    char turn = 't';
    pid_t pid;
    int status;

    kith_close(k.r);
    k.r = NULL;
    cr_assert_eq(pipe(to_child), 0);
    cr_assert_eq(pipe(to_parent), 0);
    pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        kith_replica *r = NULL;
        int bad = kith_open(k.dir, 0, &r) != 0;
        for (int i = 0; i < rounds && !bad; i++) {
            char name[32];
            if (read(to_child[0], &turn, 1) != 1)
                _exit(3);
            snprintf(name, sizeof name, "child %d", i);
            kith_txn *t = NULL;
            kith_docid id;
            kith_value v = kt_str(name);
            bad |= kith_txn_begin(r, KITH_TXN_WRITE, &t) != 0;
            bad |= !bad && kith_doc_create(t, "contacts", &id) != 0;
            bad |= !bad && kith_field_set(t, "contacts", &id, "name", &v) != 0;
            v = kt_str(notes);
            bad |= !bad && kith_field_set(t, "contacts", &id, "notes", &v) != 0;
            bad |= !bad && kith_txn_commit(&t) != 0;
            if (write(to_parent[1], &turn, 1) != 1)
                _exit(3);
        }
        kith_close(r);
        _exit(bad ? 1 : 0);
    }
    cr_assert_eq(kith_open(k.dir, 0, &k.r), 0);
    for (int i = 0; i < rounds; i++) {
        char name[32];
        snprintf(name, sizeof name, "parent %d", i);
        kith_docid id = kt_contact(k.r, name);
        kt_set_str(k.r, "contacts", &id, "notes", notes);
        cr_assert_eq(write(to_child[1], &turn, 1), 1);
        cr_assert_eq(read(to_parent[0], &turn, 1), 1);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed");
    /* every contact of both, 3 ops each, in one chain */
    cr_assert_eq(applied_seq(k.r), 6 * rounds);
    MDB_envinfo info;
    cr_assert_eq(mdb_env_info(k.r->env, &info), 0);
    cr_assert_gt(info.me_mapsize, (size_t)256 << 10, "the map never grew");
    kith_txn *t = NULL;
    kith_iter *it;
    kith_docid d;
    int n = 0;
    cr_assert_eq(kith_txn_begin(k.r, KITH_TXN_READ, &t), 0);
    cr_assert_eq(kith_iter_docs(t, "contacts", &it), 0);
    while (kith_iter_next(it, &d) == 0)
        n++;
    kith_iter_close(it);
    kith_txn_abort(&t);
    cr_assert_eq(n, 2 * rounds);
    kith_verify_report rep;
    cr_assert_eq(kith_verify(k.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    kt_free(&k);
}

/* A data file cut short is refused at open, not read past its end (SIGBUS). */
Test(txn, truncated_data_file_is_refused)
{
    struct kt_replica k = kt_new();
    char path[512];
    kith_replica *r = NULL;

    for (int i = 0; i < 50; i++)
        kt_contact(k.r, "a name long enough to fill some pages of the map");
    kith_close(k.r);
    k.r = NULL;
    snprintf(path, sizeof path, "%s/data.mdb", k.dir);
    cr_assert_eq(truncate(path, 8192), 0);
    cr_assert_eq(kith_open(k.dir, 0, &r), KITH_ECORRUPT);
    cr_assert_null(r);
    kt_free(&k);
}

struct thread_arg {
    kith_replica *r;
    int id, n, failures;
};

static void *
writer_thread(void *p)
{
    struct thread_arg *a = p;
    char name[64], notes[6000];

    memset(notes, 'w', sizeof notes - 1);
    notes[sizeof notes - 1] = '\0';
    for (int i = 0; i < a->n; i++) {
        kith_txn *t = NULL;
        kith_docid id;
        kith_value v;
        snprintf(name, sizeof name, "thread %d item %d", a->id, i);
        int brc = kith_txn_begin(a->r, KITH_TXN_WRITE, &t);
        if (brc != 0) {
            fprintf(stderr, "thread %d begin: %s (%s)\n", a->id, kith_strerror(brc),
                    kith_errmsg(a->r));
            a->failures++;
            continue;
        }
        v = kt_str(name);
        int rc = kith_doc_create(t, "contacts", &id);
        if (rc == 0)
            rc = kith_field_set(t, "contacts", &id, "name", &v);
        v = kt_str(notes);
        if (rc == 0)
            rc = kith_field_set(t, "contacts", &id, "notes", &v);
        if (rc == 0)
            rc = kith_txn_commit(&t);
        else
            kith_txn_abort(&t);
        if (rc != 0) {
            fprintf(stderr, "thread %d item %d: %s (%s)\n", a->id, i, kith_strerror(rc),
                    kith_errmsg(a->r));
            a->failures++;
        }
    }
    return NULL;
}

static void *
reader_thread(void *p)
{
    struct thread_arg *a = p;

    for (int i = 0; i < a->n; i++) {
        kith_txn *t = NULL;
        kith_iter *it = NULL;
        kith_docid d;
        if (kith_txn_begin(a->r, KITH_TXN_READ, &t) != 0 ||
            kith_iter_docs(t, "contacts", &it) != 0) {
            a->failures++;
            kith_txn_abort(&t);
            continue;
        }
        while (kith_iter_next(it, &d) == 0) {
            kith_value v;
            if (kith_field_get(t, "contacts", &d, "name", &v) != 0 || v.type != KITH_TYPE_STRING)
                a->failures++;
        }
        kith_iter_close(it);
        kith_txn_abort(&t);
    }
    return NULL;
}

/* Threads share one handle: writers grow a tiny map while readers read; all commits land. */
Test(txn, threads_share_a_replica_across_growth, .timeout = 120)
{
    struct kt_replica k = kt_new_flags(KITH_NOSYNC, 256 << 10);
    struct thread_arg args[4];
    pthread_t th[4];
    const int per = 60;

    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){.r = k.r, .id = i, .n = i < 3 ? per : 40};
        cr_assert_eq(pthread_create(&th[i], NULL, i < 3 ? writer_thread : reader_thread, &args[i]),
                     0);
    }
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pthread_join(th[i], NULL), 0);
        cr_assert_eq(args[i].failures, 0, "thread %d: %d failures", i, args[i].failures);
    }
    cr_assert_eq(applied_seq(k.r), 3 * per * 3);
    kith_verify_report rep;
    cr_assert_eq(kith_verify(k.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    kt_free(&k);
}
