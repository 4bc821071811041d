/*
 * test_rekey.c — a device whose own key lost a fork takes a new key (spec/data-model.md
 * FORK-11..14, spec/storage.md STO-32, decisions.md D-22): real replicas in a real group,
 * copied on disk key and all, real signatures. The copy that holds the losing history
 * re-keys by itself when a batch brings the proof, re-issues its edits under the new key,
 * and every replica converges with nothing lost; a replica in no group is refused; another
 * process notices the switch; and a process killed anywhere in a re-key leaves the old
 * identity or the new one, whole.
 */
#include "kith_test.h"
#include "kt_group.h"
#include "net_test.h"
#include "store.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Everything `to` lacks from `from`, as a batch (records and proofs included). */
static void
sync_to(kith_replica *from, kith_replica *to)
{
    kith_vv vv = {0};
    kith_batch_opts o = {0};
    kith_buf b = {0};
    int rc;

    cr_assert_eq(kith_vv_get(to, &vv), 0);
    o.since = &vv;
    rc = kith_batch_create(from, &o, &b, NULL);
    cr_assert_eq(rc, 0, "batch_create: %s (%s)", kith_strerror(rc), kith_errmsg(from));
    rc = kith_batch_apply(to, b.data, b.len, NULL);
    cr_assert_eq(rc, 0, "batch_apply: %s (%s)", kith_strerror(rc), kith_errmsg(to));
    kith_free(b.data);
    kith_vv_free(&vv);
}

/* Everything `from` holds, as one batch (a bundle's content): a run from seq 1 shows where
 * two histories part. */
static void
sync_all(kith_replica *from, kith_replica *to)
{
    kith_buf b = {0};
    int rc = kith_batch_create(from, NULL, &b, NULL);

    cr_assert_eq(rc, 0, "batch_create: %s (%s)", kith_strerror(rc), kith_errmsg(from));
    rc = kith_batch_apply(to, b.data, b.len, NULL);
    cr_assert_eq(rc, 0, "batch_apply: %s (%s)", kith_strerror(rc), kith_errmsg(to));
    kith_free(b.data);
}

/* The public half of the key in dir/key. */
static void
key_file_pk(const char *dir, uint8_t pk[KITH_PUBKEY_BYTES])
{
    uint8_t sk[64];
    cr_assert_eq(kith__key_read(dir, KITH__KEY_FILE, sk), 0);
    memcpy(pk, sk + 32, KITH_PUBKEY_BYTES);
}

/* How many key.next.* side files dir holds. */
static int
side_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    cr_assert_not_null(d);
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, KITH__KEY_NEXT_PREFIX, strlen(KITH__KEY_NEXT_PREFIX)) == 0;
    closedir(d);
    return n;
}

static uint64_t
vv_of(kith_replica *r, uint64_t origin)
{
    kith_vv vv = {0};
    uint64_t seq = 0;
    cr_assert_eq(kith_vv_get(r, &vv), 0);
    for (size_t i = 0; i < vv.len; i++)
        if (vv.entries[i].origin == origin)
            seq = vv.entries[i].seq;
    kith_vv_free(&vv);
    return seq;
}

static void
verify_clean(kith_replica *r)
{
    kith_verify_report rep;
    cr_assert_eq(kith_verify(r, &rep), 0, "%s", kith_errmsg(r));
    cr_assert_eq(rep.problems, 0, "verify: %s", rep.first_problem);
}

/* Is `id` a device of r's group, and is it live? -1: not a device; 0 removed; 1 live. */
static int
device_state(kith_replica *r, uint64_t id)
{
    kith_device *d = NULL;
    size_t n = 0;
    int st = -1;

    cr_assert_eq(kith_devices_get(r, &d, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (d[i].id == id)
            st = d[i].removed ? 0 : 1;
    kith_devices_free(d, n);
    return st;
}

/* The holds of the proven fork of `origin` at r (KITH_FORK_HOLDS_*), or -1 without a proof. */
static int
holds_of(kith_replica *r, uint64_t origin)
{
    kith_fork *f = NULL;
    size_t n = 0;
    int h = -1;

    cr_assert_eq(kith_forks_get(r, &f, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (f[i].origin == origin && f[i].has_proof)
            h = f[i].holds;
    kith_forks_free(f, n);
    return h;
}

/* A device with its group: a founds "home" as "laptop", m is admitted as "phone", and m
 * holds a's first contact. */
static void
group_of_two(struct kt_replica *a, struct kt_replica *m, kith_docid *base)
{
    *a = kt_new();
    *m = kt_new();
    cr_assert_eq(kith_group_create(a->r, "home", "laptop"), 0, "%s", kith_errmsg(a->r));
    kt_admit(a->r, m->r, "phone");
    *base = kt_contact(a->r, "base");
    sync_to(a->r, m->r);
    sync_to(m->r, a->r);
}

/*
 * The scene of issue #10: a's directory copied (a backup restored elsewhere), each copy
 * written to, both branches reach m, which proves the fork. The copy whose branch lost takes a
 * new key when m's batch brings it the proof, writes its edits again under it, and after a
 * few exchanges the three replicas hold the same state, byte for byte, with every edit of
 * both copies in it; the new key was admitted everywhere by the ADD the old one signed, and
 * the old key still writes for the copy that won.
 */
/* proves FORK-11, FORK-12, FORK-13, FORK-14 */
Test(rekey, the_losing_copy_reissues_its_edits_and_everyone_converges, .timeout = 120)
{
    struct kt_replica a, m;
    kith_docid base;
    group_of_two(&a, &m, &base);
    uint64_t old = kith_replica_id(a.r);
    struct kt_replica a2 = kt_copy_of(&a);
    cr_assert_eq(kith_replica_id(a2.r), old);

    /* each copy writes: a new contact, a field of the shared one, a tag */
    kt_contact(a.r, "from-a");
    kt_set_str(a.r, "contacts", &base, "phone", "+1 555 0100");
    kt_contact(a2.r, "from-a2");
    kt_set_str(a2.r, "contacts", &base, "email", "base@example.com");
    kith_txn *t = kt_wbegin(a2.r);
    cr_assert_eq(kith_set_add(t, "contacts", &base, "tags", "copied", 6), 0);
    kt_commit(t);

    /* m takes a's branch, then a2's: the fork is found and proven there */
    sync_to(a.r, m.r);
    sync_all(a2.r, m.r);
    int mh = holds_of(m.r, old);
    /* m set its branch aside when it lost (holds neither then), or kept it */
    cr_assert(mh == KITH_FORK_HOLDS_WINNER || mh == KITH_FORK_HOLDS_NEITHER, "m holds a proof");

    /* the proof reaches both copies: the loser re-keys by itself, the winner does not */
    sync_to(m.r, a.r);
    sync_to(m.r, a2.r);
    kith_rekey_info ra, ra2;
    int ka = kith_rekey_get(a.r, &ra), ka2 = kith_rekey_get(a2.r, &ra2);
    cr_assert(ka >= 0 && ka2 >= 0);
    cr_assert_eq(ka + ka2, 1, "exactly one copy re-keyed (%d, %d)", ka, ka2);
    cr_assert_eq(ka == 0, mh == KITH_FORK_HOLDS_WINNER, "a's branch won at m: a keeps its key");
    struct kt_replica *win = ka == 0 ? &a : &a2;
    struct kt_replica *lose = ka == 0 ? &a2 : &a;
    kith_rekey_info ri;
    cr_assert_eq(kith_rekey_get(lose->r, &ri), 1, "%s", kith_errmsg(lose->r));
    cr_assert_eq(ri.old_id, old);
    cr_assert_neq(ri.new_id, old);
    cr_assert_eq(kith_replica_id(lose->r), ri.new_id);
    cr_assert(ri.lost_fork);
    cr_assert_not(ri.reissue_pending);
    cr_assert_gt(ri.ops_aside, 0);
    cr_assert_gt(ri.commits_reissued, 0);
    cr_assert_eq(ri.ops_skipped, 0);
    cr_assert_gt(vv_of(lose->r, ri.new_id), 0, "the edits were written again, new origin");
    cr_assert_eq(kith_rekey_get(win->r, &ri), 0);
    cr_assert_eq(kith_replica_id(win->r), old);
    cr_assert_eq(kith_rekey_get(lose->r, &ri), 1);
    uint64_t nid = ri.new_id;

    /* the old secret key left the losing device; its new one is in `key` */
    uint8_t pk[KITH_PUBKEY_BYTES], kpk[KITH_PUBKEY_BYTES];
    kith_replica_pubkey(lose->r, pk);
    key_file_pk(lose->dir, kpk);
    cr_assert_eq(memcmp(pk, kpk, sizeof pk), 0);
    cr_assert_eq(side_files(lose->dir), 0);

    /* exchanges until nothing moves (bounded) */
    struct kt_replica *all[3] = {&a, &a2, &m};
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                if (i != j)
                    sync_to(all[i]->r, all[j]->r);
    char *ea = kt_export(a.r), *ea2 = kt_export(a2.r), *em = kt_export(m.r);
    cr_assert_str_eq(ea, em);
    cr_assert_str_eq(ea2, em);
    /* nothing typed on either copy is lost */
    cr_assert(strstr(em, "\"from-a\"") != NULL);
    cr_assert(strstr(em, "\"from-a2\"") != NULL);
    cr_assert(strstr(em, "+1 555 0100") != NULL);
    cr_assert(strstr(em, "base@example.com") != NULL);
    cr_assert(strstr(em, "\"copied\"") != NULL);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(device_state(all[i]->r, nid), 1, "the new key is a live member");
        cr_assert_eq(device_state(all[i]->r, old), 1, "the old key stays, for the winner");
        cr_assert_gt(vv_of(all[i]->r, nid), 0);
        verify_clean(all[i]->r);
    }

    /* the winner still writes under the old key, and everyone takes it */
    kt_contact(win->r, "after");
    sync_to(win->r, m.r);
    sync_to(m.r, lose->r);
    char *e2 = kt_export(lose->r), *e3 = kt_export(win->r);
    cr_assert_str_eq(e2, e3);
    cr_assert(strstr(e2, "\"after\"") != NULL);
    /* and the loser writes under the new one */
    kt_contact(lose->r, "later");
    sync_to(lose->r, m.r);
    sync_to(m.r, win->r);
    char *e4 = kt_export(win->r), *e5 = kt_export(m.r);
    cr_assert_str_eq(e4, e5);
    cr_assert(strstr(e4, "\"later\"") != NULL);

    free(ea);
    free(ea2);
    free(em);
    free(e2);
    free(e3);
    free(e4);
    free(e5);
    kt_free(&a);
    kt_free(&a2);
    kt_free(&m);
}

/* A replica in no group: its peers trust its key pairwise and would not admit another, so a
 * re-key is refused and changes nothing, not even a file. */
/* proves FORK-12 */
Test(rekey, refused_in_no_group_with_nothing_changed)
{
    struct kt_replica a = kt_new();
    kt_contact(a.r, "x");
    uint64_t id = kith_replica_id(a.r);
    uint8_t pk[KITH_PUBKEY_BYTES], kpk[KITH_PUBKEY_BYTES];
    kith_replica_pubkey(a.r, pk);
    char *before = kt_export(a.r);
    kith_rekey_info ri;

    cr_assert_eq(kith_rekey(a.r, &ri), KITH_EINVAL);
    cr_assert(strstr(kith_errmsg(a.r), "no device group") != NULL, "%s", kith_errmsg(a.r));
    cr_assert_eq(ri.new_id, 0);
    cr_assert_eq(kith_replica_id(a.r), id);
    cr_assert_eq(kith_rekey_get(a.r, &ri), 0);
    key_file_pk(a.dir, kpk);
    cr_assert_eq(memcmp(pk, kpk, sizeof pk), 0);
    cr_assert_eq(side_files(a.dir), 0);
    char *after = kt_export(a.r);
    cr_assert_str_eq(before, after);
    kt_contact(a.r, "y"); /* writes go on as before */
    cr_assert_eq(kith_replica_id(a.r), id);
    kt_reopen(&a, KITH_NOSYNC);
    cr_assert_eq(kith_replica_id(a.r), id);
    free(before);
    free(after);
    kt_free(&a);
}

/* On demand, with no fork: a new key, admitted by the old, nothing set aside; the handle
 * writes under it at once and the replica opens as it. */
/* proves FORK-11, STO-32 */
Test(rekey, on_demand_in_a_group)
{
    struct kt_replica a, m;
    kith_docid base;
    group_of_two(&a, &m, &base);
    uint64_t old = kith_replica_id(a.r);
    kith_rekey_info ri;

    cr_assert_eq(kith_rekey(a.r, &ri), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(ri.old_id, old);
    cr_assert_eq(ri.new_id, kith_replica_id(a.r));
    cr_assert_not(ri.lost_fork);
    cr_assert_eq(ri.ops_aside, 0);
    kt_contact(a.r, "new key");
    cr_assert_eq(vv_of(a.r, ri.new_id), 2, "DOC_ADD and name under the new origin");
    sync_to(a.r, m.r);
    cr_assert_eq(device_state(m.r, ri.new_id), 1);
    cr_assert_eq(vv_of(m.r, ri.new_id), 2);
    kt_reopen(&a, KITH_NOSYNC);
    cr_assert_eq(kith_replica_id(a.r), ri.new_id);
    verify_clean(a.r);
    kt_free(&a);
    kt_free(&m);
}

/* Another process holding the replica open notices the switch at its next write: it writes
 * under the new key, and its commit verifies. */
/* proves FORK-11 */
Test(rekey, another_process_writes_under_the_new_key, .timeout = 60)
{
    struct kt_replica a, m;
    kith_docid base;
    group_of_two(&a, &m, &base);
    kith_close(a.r);
    a.r = NULL;
    int go[2], ready[2], status;
    char c = 0;
    cr_assert_eq(pipe(go), 0);
    cr_assert_eq(pipe(ready), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        kith_replica *r = NULL;
        uint64_t before;
        if (kith_open(a.dir, KITH_NOSYNC, &r) != 0)
            _exit(2);
        before = kith_replica_id(r);
        if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(3);
        kith_txn *t = NULL;
        kith_docid d;
        kith_value v = kt_str("child");
        if (kith_txn_begin(r, KITH_TXN_WRITE, &t) != 0 || kith_doc_create(t, "contacts", &d) != 0 ||
            kith_field_set(t, "contacts", &d, "name", &v) != 0 || kith_txn_commit(&t) != 0)
            _exit(4);
        kith_dot dd = kith__docid_to_dot(&d);
        if (kith_replica_id(r) == before || dd.origin != kith_replica_id(r))
            _exit(5);
        kith_close(r);
        _exit(0);
    }
    cr_assert_eq(read(ready[0], &c, 1), 1);
    kt_reopen(&a, KITH_NOSYNC);
    kith_rekey_info ri;
    cr_assert_eq(kith_rekey(a.r, &ri), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(write(go[1], "g", 1), 1);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %d", status);
    cr_assert_eq(vv_of(a.r, ri.new_id), 2, "the child's contact, under the new key");
    verify_clean(a.r);
    sync_to(a.r, m.r);
    verify_clean(m.r);
    kt_free(&a);
    kt_free(&m);
}

/* ---- crashes ------------------------------------------------------------------------------ */

static void
write_key(const char *dir, const char *name, const uint8_t sk[64])
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(sk, 1, 64, f), 64);
    cr_assert_eq(fclose(f), 0);
}

/*
 * Every point where a re-key can stop, laid out on disk from a real re-key's files: before
 * the switch commits (a side file no meta names: the old identity, and the next re-key sweeps
 * it), after it commits and before the old key is wiped, and after the wipe before the rename
 * (meta names the side file's key: the open takes it and renames it over `key`).
 */
/* proves STO-32 */
Test(rekey, every_crash_point_opens_as_one_identity)
{
    struct kt_replica a, m;
    kith_docid base;
    group_of_two(&a, &m, &base);
    uint64_t old = kith_replica_id(a.r);
    uint8_t old_sk[64], new_sk[64], zeros[64] = {0};
    cr_assert_eq(kith__key_read(a.dir, KITH__KEY_FILE, old_sk), 0);
    struct kt_replica before = kt_copy_of(&a); /* the replica as it was before the re-key */
    kith_close(before.r);
    before.r = NULL;
    kith_rekey_info ri;
    cr_assert_eq(kith_rekey(a.r, &ri), 0, "%s", kith_errmsg(a.r));
    cr_assert_eq(kith__key_read(a.dir, KITH__KEY_FILE, new_sk), 0);
    char side[KITH__KEY_NEXT_NAME_BYTES];
    kith__key_next_name(ri.new_id, side);
    kith_close(a.r);
    a.r = NULL;

    /* 1: side file written, switch not committed */
    write_key(before.dir, side, new_sk);
    kt_reopen(&before, KITH_NOSYNC);
    cr_assert_eq(kith_replica_id(before.r), old);
    cr_assert_eq(side_files(before.dir), 0, "the open swept the leftover");
    kt_contact(before.r, "still old");
    kith_rekey_info r2;
    cr_assert_eq(kith_rekey(before.r, &r2), 0, "%s", kith_errmsg(before.r));
    cr_assert_eq(side_files(before.dir), 0);
    verify_clean(before.r);

    /* 2: committed; `key` still the old one, the side file the new */
    write_key(a.dir, KITH__KEY_FILE, old_sk);
    write_key(a.dir, side, new_sk);
    kt_reopen(&a, KITH_NOSYNC);
    cr_assert_eq(kith_replica_id(a.r), ri.new_id);
    cr_assert_eq(side_files(a.dir), 0, "renamed over key");
    uint8_t kpk[KITH_PUBKEY_BYTES];
    key_file_pk(a.dir, kpk);
    cr_assert_eq(memcmp(kpk, new_sk + 32, sizeof kpk), 0);
    kt_contact(a.r, "after 2");
    verify_clean(a.r);

    /* 3: committed, old key wiped, not renamed; a read-only open takes the side file too */
    kith_close(a.r);
    a.r = NULL;
    write_key(a.dir, KITH__KEY_FILE, zeros);
    write_key(a.dir, side, new_sk);
    kt_reopen(&a, KITH_RDONLY);
    cr_assert_eq(kith_replica_id(a.r), ri.new_id);
    cr_assert_eq(side_files(a.dir), 1, "a reader renames nothing");
    kt_reopen(&a, KITH_NOSYNC);
    cr_assert_eq(kith_replica_id(a.r), ri.new_id);
    cr_assert_eq(side_files(a.dir), 0);
    kt_contact(a.r, "after 3");
    verify_clean(a.r);
    sync_to(a.r, m.r);
    verify_clean(m.r);
    sodium_memzero(old_sk, sizeof old_sk);
    sodium_memzero(new_sk, sizeof new_sk);
    kt_free(&a);
    kt_free(&before);
    kt_free(&m);
}

/* The child: re-key again and again, reporting each new id once kith_rekey returned. */
static void
rekey_child(const char *dir, int fd)
{
    kith_replica *r = NULL;

    if (kith_open(dir, 0, &r) != 0)
        _exit(2);
    for (;;) {
        kith_rekey_info ri;
        if (kith_rekey(r, &ri) != 0)
            _exit(3);
        if (write(fd, &ri.new_id, sizeof ri.new_id) != (ssize_t)sizeof ri.new_id)
            _exit(4);
    }
}

/* Killed at random moments while re-keying (KITH_SEED replays them): the replica opens, its id
 * is the last one reported or the one being taken, `key` holds that id's key, it verifies,
 * and it writes. */
/* proves STO-32 */
Test(rekey, sigkill_mid_rekey_leaves_one_identity, .timeout = 300)
{
    struct kt_replica a, m;
    kith_docid base;
    group_of_two(&a, &m, &base);
    uint64_t seed = kt_seed(), st = seed;
    int rounds = kt_cases(5);
    uint64_t last = kith_replica_id(a.r);
    kith_close(a.r);
    a.r = NULL;

    for (int round = 0; round < rounds; round++) {
        int fds[2], status;
        uint64_t got;
        int wait_for = (int)kt_below(&st, 3);
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            close(fds[0]);
            rekey_child(a.dir, fds[1]);
        }
        close(fds[1]);
        for (int n = 0; n < wait_for && read(fds[0], &got, sizeof got) == sizeof got; n++)
            last = got;
        struct timespec ts = {0, (long)kt_below(&st, 20000000)};
        nanosleep(&ts, NULL); /* where the kill lands, not a synchronisation */
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        while (read(fds[0], &got, sizeof got) == sizeof got)
            last = got; /* reported before it died */
        close(fds[0]);

        kt_reopen(&a, 0);
        uint64_t id = kith_replica_id(a.r);
        kith_rekey_info ri;
        int rk = kith_rekey_get(a.r, &ri);
        cr_assert(rk >= 0);
        cr_assert(id == last || (rk == 1 && ri.old_id == last && ri.new_id == id),
                  "seed %llu round %d: id %016llx, last reported %016llx", (unsigned long long)seed,
                  round, (unsigned long long)id, (unsigned long long)last);
        last = id;
        uint8_t pk[KITH_PUBKEY_BYTES], kpk[KITH_PUBKEY_BYTES];
        kith_replica_pubkey(a.r, pk);
        key_file_pk(a.dir, kpk);
        cr_assert_eq(memcmp(pk, kpk, sizeof pk), 0, "seed %llu round %d", (unsigned long long)seed,
                     round);
        cr_assert_eq(side_files(a.dir), 0);
        verify_clean(a.r);
        kt_contact(a.r, "written");
        kith_close(a.r);
        a.r = NULL;
    }
    kt_reopen(&a, KITH_NOSYNC);
    sync_to(a.r, m.r);
    verify_clean(m.r);
    cr_assert_eq(device_state(m.r, kith_replica_id(a.r)), 1);
    kt_free(&a);
    kt_free(&m);
}

/* ---- a re-key killed after a lost fork ---------------------------------------------------- */

/* The fork of the first test, up to m holding the proof: the copy whose branch lost is *lose. */
struct scene {
    struct kt_replica a, a2, m;
    kith_docid base;
    uint64_t old;
    struct kt_replica *lose, *win;
};

static void
scene_setup(struct scene *s)
{
    group_of_two(&s->a, &s->m, &s->base);
    s->old = kith_replica_id(s->a.r);
    s->a2 = kt_copy_of(&s->a);
    kt_contact(s->a.r, "from-a");
    kt_contact(s->a2.r, "from-a2");
    kt_set_str(s->a2.r, "contacts", &s->base, "email", "base@example.com");
    sync_to(s->a.r, s->m.r);
    sync_all(s->a2.r, s->m.r);
    int mh = holds_of(s->m.r, s->old);
    cr_assert(mh == KITH_FORK_HOLDS_WINNER || mh == KITH_FORK_HOLDS_NEITHER);
    s->win = mh == KITH_FORK_HOLDS_WINNER ? &s->a : &s->a2;
    s->lose = mh == KITH_FORK_HOLDS_WINNER ? &s->a2 : &s->a;
}

/*
 * The losing copy is killed at a random moment while it applies the batch that brings the
 * proof (KITH_SEED replays the moments): it opens as the old identity or the new one, a
 * re-issue the kill cut short is finished by that open, and after the exchanges every replica
 * holds the same state with both copies' edits.
 */
/* proves FORK-11, STO-32 */
Test(rekey, killed_while_rekeying_after_a_lost_fork, .timeout = 300)
{
    uint64_t seed = kt_seed(), st = seed;
    int rounds = kt_cases(3);

    for (int round = 0; round < rounds; round++) {
        struct scene s;
        scene_setup(&s);
        kith_vv vv = {0};
        kith_batch_opts o = {0};
        kith_buf b = {0};
        cr_assert_eq(kith_vv_get(s.lose->r, &vv), 0);
        o.since = &vv;
        cr_assert_eq(kith_batch_create(s.m.r, &o, &b, NULL), 0);
        kith_vv_free(&vv);
        kith_close(s.lose->r);
        s.lose->r = NULL;
        int fds[2], status;
        char c;
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            kith_replica *r = NULL;
            close(fds[0]);
            if (kith_open(s.lose->dir, 0, &r) != 0)
                _exit(2);
            if (write(fds[1], "o", 1) != 1)
                _exit(3);
            if (kith_batch_apply(r, b.data, b.len, NULL) != 0)
                _exit(4);
            _exit(write(fds[1], "d", 1) == 1 ? 0 : 5);
        }
        close(fds[1]);
        cr_assert_eq(read(fds[0], &c, 1), 1, "the child opened the replica");
        struct timespec ts = {0, (long)kt_below(&st, 30000000)};
        nanosleep(&ts, NULL); /* where the kill lands, not a synchronisation */
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0),
                  "seed %llu round %d: child status %d", (unsigned long long)seed, round, status);
        close(fds[0]);

        kt_reopen(s.lose, KITH_NOSYNC); /* finishes a re-issue left pending */
        kith_rekey_info ri;
        int rk = kith_rekey_get(s.lose->r, &ri);
        cr_assert(rk >= 0);
        if (rk == 1) {
            cr_assert_eq(kith_replica_id(s.lose->r), ri.new_id);
            cr_assert_not(ri.reissue_pending, "seed %llu round %d: the open finished it",
                          (unsigned long long)seed, round);
        } else {
            cr_assert_eq(kith_replica_id(s.lose->r), s.old, "killed before the switch");
        }
        uint8_t pk[KITH_PUBKEY_BYTES], kpk[KITH_PUBKEY_BYTES];
        kith_replica_pubkey(s.lose->r, pk);
        key_file_pk(s.lose->dir, kpk);
        cr_assert_eq(memcmp(pk, kpk, sizeof pk), 0);
        cr_assert_eq(side_files(s.lose->dir), 0);
        verify_clean(s.lose->r);
        /* the batch again (what a peer sends next): the re-key happens now if it had not */
        cr_assert_eq(kith_batch_apply(s.lose->r, b.data, b.len, NULL), 0, "%s",
                     kith_errmsg(s.lose->r));
        kith_free(b.data);
        cr_assert_eq(kith_rekey_get(s.lose->r, &ri), 1);
        cr_assert_not(ri.reissue_pending);
        cr_assert_gt(ri.commits_reissued, 0);

        struct kt_replica *all[3] = {&s.a, &s.a2, &s.m};
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    if (i != j)
                        sync_to(all[i]->r, all[j]->r);
        char *ea = kt_export(s.a.r), *ea2 = kt_export(s.a2.r), *em = kt_export(s.m.r);
        cr_assert_str_eq(ea, em, "seed %llu round %d", (unsigned long long)seed, round);
        cr_assert_str_eq(ea2, em, "seed %llu round %d", (unsigned long long)seed, round);
        cr_assert(strstr(em, "\"from-a\"") != NULL && strstr(em, "\"from-a2\"") != NULL);
        cr_assert(strstr(em, "base@example.com") != NULL);
        free(ea);
        free(ea2);
        free(em);
        kt_free(&s.a);
        kt_free(&s.a2);
        kt_free(&s.m);
    }
}

/*
 * A copy that took a new key before any proof existed (a restored device that wrote, whose
 * fork a handshake found without a proof: RESTORE-4, and kith rekey), then learns the proof:
 * when its old branch lost, the settling sets that branch aside and the edits are written
 * again under the key it took; when it won, the other copy re-keys. Either way the three
 * converge with both copies' edits.
 */
/* proves FORK-11, FORK-13 */
Test(rekey, a_rekey_before_the_proof_reissues_when_the_proof_comes, .timeout = 120)
{
    struct kt_replica a, m;
    kith_docid base;
    group_of_two(&a, &m, &base);
    uint64_t old = kith_replica_id(a.r);
    struct kt_replica a2 = kt_copy_of(&a);
    kt_contact(a.r, "from-a");
    kt_contact(a2.r, "from-a2");
    kith_rekey_info ri;
    cr_assert_eq(kith_rekey(a2.r, &ri), 0, "%s", kith_errmsg(a2.r));
    cr_assert_not(ri.lost_fork, "no proof yet");
    kt_contact(a2.r, "under the new key");

    sync_to(a.r, m.r);
    sync_all(a2.r, m.r); /* a2 relays its old branch and its new origin */
    int mh = holds_of(m.r, old);
    cr_assert(mh == KITH_FORK_HOLDS_WINNER || mh == KITH_FORK_HOLDS_NEITHER);
    struct kt_replica *all[3] = {&a, &a2, &m};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                if (i != j)
                    sync_to(all[i]->r, all[j]->r);
    cr_assert_eq(kith_rekey_get(a2.r, &ri), 1);
    if (mh == KITH_FORK_HOLDS_WINNER) { /* a's branch won: a2's old edits came back */
        cr_assert(ri.lost_fork);
        cr_assert_not(ri.reissue_pending);
        cr_assert_gt(ri.commits_reissued, 0);
        cr_assert_eq(kith_rekey_get(a.r, &ri), 0);
    } else { /* a2's branch won: a lost and re-keyed by itself */
        cr_assert_not(ri.lost_fork);
        cr_assert_eq(kith_rekey_get(a.r, &ri), 1);
        cr_assert(ri.lost_fork);
    }
    char *ea = kt_export(a.r), *ea2 = kt_export(a2.r), *em = kt_export(m.r);
    cr_assert_str_eq(ea, em);
    cr_assert_str_eq(ea2, em);
    cr_assert(strstr(em, "\"from-a\"") != NULL && strstr(em, "\"from-a2\"") != NULL);
    cr_assert(strstr(em, "\"under the new key\"") != NULL);
    for (int i = 0; i < 3; i++)
        verify_clean(all[i]->r);
    free(ea);
    free(ea2);
    free(em);
    kt_free(&a);
    kt_free(&a2);
    kt_free(&m);
}

/* Until the exports of x and y are equal, sync `from` with the daemon of n again (bounded). */
static void
sync_until_same(kith_replica *from, struct node *n, kith_replica *x, kith_replica *y)
{
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_sync_info info;
    bool same = false;
    int64_t end = kith__mono_ms() + 10000;

    kith_replica_pubkey(n->k.r, pk);
    while (!same && kith__mono_ms() < end) {
        int rc = kith_sync(from, n->ep, pk, 5000, &info);
        cr_assert_eq(rc, 0, "kith_sync: %s (%s)", kith_strerror(rc), kith_errmsg(from));
        char *ex = kt_export(x), *ey = kt_export(y);
        same = strcmp(ex, ey) == 0;
        free(ex);
        free(ey);
        if (!same)
            nt_sleep_ms(5);
    }
    cr_assert(same, "converged within the bound");
}

/*
 * Over the network: m's daemon holds the proof; the losing copy syncs with it and learns it
 * in the session's first batch, re-keys inside that session's apply, and its next sessions,
 * under the new key, are admitted (the ADD reached m) and carry the re-issued edits. The
 * winner syncs too, and all three hold one state.
 */
/* proves FORK-11, FORK-13 */
Test(rekey, the_loser_rekeys_in_a_sync_session, .timeout = 120)
{
    struct node m;
    struct kt_replica a = kt_new();
    kith_docid base;

    node_init(&m);
    cr_assert_eq(kith_group_create(a.r, "home", "laptop"), 0, "%s", kith_errmsg(a.r));
    kt_admit(a.r, m.k.r, "phone");
    base = kt_contact(a.r, "base");
    sync_to(a.r, m.k.r);
    sync_to(m.k.r, a.r);
    uint64_t old = kith_replica_id(a.r);
    struct kt_replica a2 = kt_copy_of(&a);
    kt_contact(a.r, "from-a");
    kt_contact(a2.r, "from-a2");
    kt_set_str(a2.r, "contacts", &base, "email", "base@example.com");
    sync_to(a.r, m.k.r);
    sync_all(a2.r, m.k.r);
    int mh = holds_of(m.k.r, old);
    cr_assert(mh == KITH_FORK_HOLDS_WINNER || mh == KITH_FORK_HOLDS_NEITHER);
    struct kt_replica *win = mh == KITH_FORK_HOLDS_WINNER ? &a : &a2;
    struct kt_replica *lose = mh == KITH_FORK_HOLDS_WINNER ? &a2 : &a;
    node_start(&m);

    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_sync_info info;
    kith_replica_pubkey(m.k.r, pk);
    int rc = kith_sync(lose->r, m.ep, pk, 5000, &info);
    cr_assert_eq(rc, 0, "kith_sync: %s (%s)", kith_strerror(rc), kith_errmsg(lose->r));
    kith_rekey_info ri;
    cr_assert_eq(kith_rekey_get(lose->r, &ri), 1, "re-keyed in the session");
    cr_assert(ri.lost_fork);
    cr_assert_gt(ri.commits_reissued, 0);
    cr_assert_eq(kith_replica_id(lose->r), ri.new_id);

    sync_until_same(lose->r, &m, lose->r, m.k.r);
    cr_assert_eq(device_state(m.k.r, ri.new_id), 1);
    sync_until_same(win->r, &m, win->r, m.k.r);
    sync_until_same(lose->r, &m, lose->r, win->r);
    char *e = kt_export(m.k.r);
    cr_assert(strstr(e, "\"from-a\"") != NULL && strstr(e, "\"from-a2\"") != NULL);
    cr_assert(strstr(e, "base@example.com") != NULL);
    free(e);
    node_free(&m);
    kt_free(&a);
    kt_free(&a2);
}

/* ---- a re-key while another thread builds batches ------------------------------------- */

struct builder_loop {
    kith_replica *a, *m;
    int stop;   /* set by the main thread (atomic) */
    int built;  /* batches built and applied at m */
    int busy;   /* KITH_EBUSY: built across a switch, to build again */
    int failed; /* the first other error, with its message */
    char msg[256];
};

static void *
build_and_apply(void *p)
{
    struct builder_loop *c = p;

    while (c->failed == 0 && (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE) || c->built == 0)) {
        kith_buf b = {0};
        int rc = kith_batch_create(c->a, NULL, &b, NULL);
        if (rc == KITH_EBUSY) {
            c->busy++;
            continue;
        }
        if (rc == 0) {
            rc = kith_batch_apply(c->m, b.data, b.len, NULL);
            kith_free(b.data);
            if (rc != 0)
                snprintf(c->msg, sizeof c->msg, "apply: %s", kith_errmsg(c->m));
        } else {
            snprintf(c->msg, sizeof c->msg, "create: %s", kith_errmsg(c->a));
        }
        if (rc != 0)
            c->failed = rc;
        else
            c->built++;
    }
    return NULL;
}

/* A handle's identity switches as one (id and secret key together) while another thread of
 * the same handle builds batches: every batch built is whole and signed by a key the group
 * admits, so the member takes each one, or the build says to build again (KITH_EBUSY) when
 * it straddled the switch; none is refused for a bad signature. */
/* proves FORK-11 */
Test(rekey, batches_built_during_a_rekey_are_whole, .timeout = 120)
{
    struct kt_replica a, m;
    kith_docid base;
    group_of_two(&a, &m, &base);
    struct builder_loop c = {.a = a.r, .m = m.r};
    pthread_t th;
    kith_rekey_info ri;

    cr_assert_eq(pthread_create(&th, NULL, build_and_apply, &c), 0);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(kith_rekey(a.r, &ri), 0, "%s", kith_errmsg(a.r));
        kt_contact(a.r, "written under the new key");
    }
    __atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(c.failed, 0, "%s (%s)", kith_strerror(c.failed), c.msg);
    cr_assert_gt(c.built, 0);
    sync_all(a.r, m.r);
    cr_assert_eq(vv_of(m.r, ri.new_id), vv_of(a.r, ri.new_id));
    cr_assert_eq(device_state(m.r, ri.new_id), 1);
    char *ea = kt_export(a.r), *em = kt_export(m.r);
    cr_assert_str_eq(ea, em);
    free(ea);
    free(em);
    verify_clean(m.r);
    kt_free(&a);
    kt_free(&m);
}
