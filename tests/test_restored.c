/*
 * test_restored.c — a replica restored from a copy knows it (spec/data-model.md RESTORE-1..5,
 * decision D-15): a peer that holds more of its own origin marks it at the handshake; local
 * writes are refused with KITH_ERESTORED until its own ops are back, across a reopen; one sync
 * (kith_sync, or a daemon dialling it) takes them back and clears the mark, and writes go on
 * at the next seq; kith_restored_accept is the way out when no device holds them; and a
 * restored replica that wrote before it synced finds its own origin forked while the other
 * origins still sync.
 *
 * A "backup" is a copy of the replica's files (data.mdb and its key) taken while nothing has
 * it open, and restoring puts them back over the directory while nothing has it open. The
 * peer is a real daemon on 127.0.0.1, port "*".
 */
#include "net_test.h"

#include <fcntl.h>
#include <sys/stat.h>

static void
copy_file(const char *from_dir, const char *to_dir, const char *name)
{
    char src[512], dst[512], buf[65536];
    snprintf(src, sizeof src, "%s/%s", from_dir, name);
    snprintf(dst, sizeof dst, "%s/%s", to_dir, name);
    int in = open(src, O_RDONLY), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert(in >= 0 && out >= 0, "copy %s", name);
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        cr_assert(n >= 0);
        if (n == 0)
            break;
        cr_assert_eq(write(out, buf, (size_t)n), n);
    }
    close(in);
    close(out);
}

/* Copy a's files to a fresh directory (a is closed meanwhile, then opened again). */
static char *
backup(struct node *a)
{
    char *dir = kt_tmpdir();
    kith_close(a->k.r);
    a->k.r = NULL;
    copy_file(a->k.dir, dir, "data.mdb");
    copy_file(a->k.dir, dir, "key");
    kt_reopen(&a->k, KITH_NOSYNC);
    return dir;
}

/* Put the backup back over a's directory while nothing has it open, then open it. */
static void
restore(struct node *a, const char *dir)
{
    char lock[512];
    kith_close(a->k.r);
    a->k.r = NULL;
    snprintf(lock, sizeof lock, "%s/lock.mdb", a->k.dir);
    unlink(lock);
    copy_file(dir, a->k.dir, "data.mdb");
    copy_file(dir, a->k.dir, "key");
    kt_reopen(&a->k, KITH_NOSYNC);
}

static uint64_t
own_seq(kith_replica *r)
{
    kith_vv vv;
    uint64_t seq = 0;
    cr_assert_eq(kith_vv_get(r, &vv), 0);
    for (size_t i = 0; i < vv.len; i++)
        if (vv.entries[i].origin == kith_replica_id(r))
            seq = vv.entries[i].seq;
    kith_vv_free(&vv);
    return seq;
}

static kith_status *
status(kith_replica *r)
{
    kith_status *s = NULL;
    cr_assert_eq(kith_status_get(r, &s), 0);
    return s;
}

static uint64_t
restored_seq(kith_replica *r)
{
    kith_status *s = status(r);
    uint64_t seq = s->restored_seq;
    kith_status_free(s);
    return seq;
}

/* A write of one contact: its code (the transaction is aborted on failure). */
static int
try_write(kith_replica *r, const char *name)
{
    kith_txn *t;
    kith_docid d;
    kith_value v = kt_str(name);
    int rc = kith_txn_begin(r, KITH_TXN_WRITE, &t);
    if (rc < 0)
        return rc;
    rc = kith_doc_create(t, "contacts", &d);
    if (rc == 0)
        rc = kith_field_set(t, "contacts", &d, "name", &v);
    if (rc < 0) {
        kith_txn_abort(&t);
        return rc;
    }
    return kith_txn_commit(&t);
}

static kith_sync_info
sync_with(struct node *a, struct node *b)
{
    kith_sync_info info;
    int rc = kith_sync(a->k.r, b->ep, NULL, 5000, &info);
    cr_assert_eq(rc, 0, "sync: %s (%s)", kith_errname(rc), kith_errmsg(a->k.r));
    return info;
}

static void
expect_verified(kith_replica *r)
{
    kith_verify_report rep;
    cr_assert_eq(kith_verify(r, &rep), 0);
    cr_expect_eq(rep.problems, 0, "verify: %s", rep.first_problem);
}

/*
 * a (not serving) and b (a daemon a dials) share a's first writes; a is backed up, writes
 * three more commits and syncs them to b, and the backup is put back over a. Returns the
 * backup's directory; *lost is the seq of a's own origin that only b holds now.
 */
static char *
restored_pair(struct node *a, struct node *b, uint64_t *lost)
{
    node_init(a);
    node_init(b);
    node_link(a, b);
    node_start(b);
    kt_contact(a->k.r, "Ada");
    kt_contact(a->k.r, "Grace");
    kt_contact(b->k.r, "Barbara");
    cr_assert(sync_with(a, b).converged);
    char *dir = backup(a);
    uint64_t before = own_seq(a->k.r);
    kt_contact(a->k.r, "Edsger");
    kt_contact(a->k.r, "Tony");
    kt_contact(a->k.r, "Niklaus");
    cr_assert(sync_with(a, b).converged);
    *lost = own_seq(a->k.r);
    cr_assert_gt(*lost, before);
    restore(a, dir);
    cr_assert_eq(own_seq(a->k.r), before, "the backup holds less");
    return dir;
}

/* RESTORE-1, RESTORE-3: one sync finds it, takes the own ops back and clears the mark. */
Test(restored, one_sync_takes_own_ops_back)
{
    struct node a, b;
    uint64_t lost;
    char *dir = restored_pair(&a, &b, &lost);

    kith_sync_info info = sync_with(&a, &b);
    cr_expect_eq(info.restored_seq, lost, "the session names the seq to reach");
    cr_expect(info.converged);
    cr_expect_eq(info.forks, 0);
    cr_expect_eq(own_seq(a.k.r), lost, "its own ops are back");
    cr_expect_eq(restored_seq(a.k.r), 0, "the mark is cleared");
    /* writes go on at the next seq, not over the ones it used before */
    cr_assert_eq(try_write(a.k.r, "Alan"), 0, "%s", kith_errmsg(a.k.r));
    cr_expect_eq(own_seq(a.k.r), lost + 2, "a contact is two ops, after seq %llu",
                 (unsigned long long)lost);
    cr_expect(sync_with(&a, &b).converged);
    expect_same_export(a.k.r, b.k.r);
    expect_verified(a.k.r);
    expect_verified(b.k.r);
    kith_fork *f = NULL;
    size_t n = 9;
    cr_assert_eq(kith_forks_get(b.k.r, &f, &n), 0);
    cr_expect_eq(n, 0, "nothing forked");
    kith_forks_free(f, n);
    kt_rmtree(dir);
    free(dir);
    node_free(&a);
    node_free(&b);
}

/* RESTORE-2: marked, a write is refused with KITH_ERESTORED naming the peer and the seq,
 * also after a reopen; the sync then clears it. */
Test(restored, writes_refused_until_own_ops_are_back)
{
    struct node a, b;
    uint64_t lost;
    char *dir = restored_pair(&a, &b, &lost);
    uint64_t have = own_seq(a.k.r);
    char want[64];

    /* what a handshake with b does first (the session then goes on to fetch) */
    cr_assert_eq(kith__restored_note(a.k.r, kith_replica_id(b.k.r), lost), 1);
    cr_assert_eq(kith__restored_note(a.k.r, kith_replica_id(b.k.r), lost), 2, "marked once");
    cr_assert_eq(try_write(a.k.r, "Alan"), KITH_ERESTORED);
    snprintf(want, sizeof want, "up to seq %llu", (unsigned long long)lost);
    cr_expect(strstr(kith_errmsg(a.k.r), want) != NULL, "errmsg: %s", kith_errmsg(a.k.r));
    cr_expect(strstr(kith_errmsg(a.k.r), "restored --accept") != NULL);
    cr_expect_eq(own_seq(a.k.r), have, "nothing written");

    kt_reopen(&a.k, KITH_NOSYNC);
    kith_status *s = status(a.k.r);
    cr_expect_eq(s->restored_seq, lost);
    cr_expect_eq(s->restored_from, kith_replica_id(b.k.r));
    cr_expect(!s->restored_accepted);
    cr_expect_gt(s->restored_ms, 0);
    kith_status_free(s);
    cr_expect_eq(try_write(a.k.r, "Alan"), KITH_ERESTORED, "the mark survives a reopen");

    kith_sync_info info = sync_with(&a, &b);
    cr_expect_eq(info.restored_seq, lost);
    cr_expect_eq(restored_seq(a.k.r), 0);
    cr_assert_eq(try_write(a.k.r, "Alan"), 0, "%s", kith_errmsg(a.k.r));
    cr_expect(sync_with(&a, &b).converged);
    expect_same_export(a.k.r, b.k.r);
    kt_rmtree(dir);
    free(dir);
    node_free(&a);
    node_free(&b);
}

/* RESTORE-3 through the daemon: the restored replica serves, its peer's daemon dials it, and
 * the restored one's own ops come back without anyone calling kith_sync. */
Test(restored, daemon_recovers)
{
    struct node a, b;
    uint64_t lost;
    char *dir = restored_pair(&a, &b, &lost);

    node_link(&b, &a); /* b dials a too, once a listens */
    node_start(&a);
    int64_t end = kith__mono_ms() + 15000;
    while ((own_seq(a.k.r) < lost || restored_seq(a.k.r) != 0) && kith__mono_ms() < end)
        nt_sleep_ms(20);
    cr_assert_eq(own_seq(a.k.r), lost, "the daemon took its own ops back");
    cr_assert_eq(restored_seq(a.k.r), 0);
    cr_assert_eq(try_write(a.k.r, "Alan"), 0, "%s", kith_errmsg(a.k.r));
    struct node *both[] = {&a, &b};
    cr_expect(wait_converged(both, 2, 15000));
    kt_rmtree(dir);
    free(dir);
    node_free(&a);
    node_free(&b);
}

/* RESTORE-5: with no device left that holds the newer ops, accepting the mark lets writes go
 * on at the next seq after what the replica holds. */
Test(restored, accept_lets_writes_go_on)
{
    struct node a, b;
    uint64_t lost;
    char *dir = restored_pair(&a, &b, &lost);
    uint64_t have = own_seq(a.k.r);

    cr_assert_eq(kith__restored_note(a.k.r, kith_replica_id(b.k.r), lost), 1);
    cr_assert_eq(try_write(a.k.r, "Alan"), KITH_ERESTORED);
    cr_assert_eq(kith_restored_accept(a.k.r), 0);
    kith_status *s = status(a.k.r);
    cr_expect_eq(s->restored_seq, lost, "the mark stays, accepted");
    cr_expect(s->restored_accepted);
    kith_status_free(s);
    cr_assert_eq(try_write(a.k.r, "Alan"), 0, "%s", kith_errmsg(a.k.r));
    cr_expect_eq(own_seq(a.k.r), have + 2);
    /* the same peer, met again, does not mark it again */
    cr_expect_eq(kith__restored_note(a.k.r, kith_replica_id(b.k.r), lost), 2);
    cr_assert_eq(try_write(a.k.r, "Kurt"), 0, "%s", kith_errmsg(a.k.r));
    cr_assert_eq(kith_restored_accept(a.k.r), 0, "accepting twice is harmless");
    kt_rmtree(dir);
    free(dir);
    node_free(&a);
    node_free(&b);
}

/* RESTORE-4: the restored replica wrote before it synced. Its own origin has forked: both
 * sides record it, neither takes the other's history of it, and the other origins flow. */
Test(restored, wrote_before_sync_is_a_fork_of_its_own_origin)
{
    struct node a, b;
    uint64_t lost;
    char *dir = restored_pair(&a, &b, &lost);
    uint64_t have = own_seq(a.k.r);

    cr_assert_eq(try_write(a.k.r, "Alan"), 0, "it does not know yet");
    cr_assert_lt(own_seq(a.k.r), lost);
    kith_docid bd = kt_contact(b.k.r, "Frances"); /* an honest op of another origin */

    kith_sync_info info;
    cr_assert_eq(kith_sync(a.k.r, b.ep, NULL, 5000, &info), 0, "%s", kith_errmsg(a.k.r));
    cr_expect(!info.converged);
    cr_expect_eq(info.restored_seq, lost);
    cr_expect_geq(info.forks, 1);
    cr_expect(has_doc(a.k.r, &bd), "the other origin's ops still flow");

    kith_fork *f = NULL;
    size_t n = 0;
    bool own = false;
    cr_assert_eq(kith_forks_get(a.k.r, &f, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (f[i].origin == kith_replica_id(a.k.r)) {
            own = true;
            cr_expect_eq(f[i].seq, have + 2, "at the seq it holds");
            cr_expect_eq(f[i].seen_from, kith_replica_id(b.k.r));
        }
    kith_forks_free(f, n);
    cr_expect(own, "the restored replica reports its own origin forked");
    cr_assert_eq(kith_forks_get(b.k.r, &f, &n), 0);
    own = false;
    for (size_t i = 0; i < n; i++)
        own |= f[i].origin == kith_replica_id(a.k.r);
    kith_forks_free(f, n);
    cr_expect(own, "the peer reports a's origin forked");
    cr_expect_eq(try_write(a.k.r, "Kurt"), KITH_ERESTORED, "and it writes no further");
    /* b's seqs of a's origin were never overwritten by a's other history: in protocol 5 b
     * fetched it, proved the fork and settled it (FORK-10), keeping its own history where it
     * won, and where it lost setting it aside after the shared seq and taking a's (NET-33) */
    kith_vv vv;
    kith_fork fb = {0};
    cr_assert_eq(kith_forks_get(b.k.r, &f, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (f[i].origin == kith_replica_id(a.k.r))
            fb = f[i];
    kith_forks_free(f, n);
    cr_expect(fb.has_proof, "b proved the fork in the session");
    cr_assert_eq(kith_vv_get(b.k.r, &vv), 0);
    cr_expect_eq(fb.holds, KITH_FORK_HOLDS_WINNER, "b holds the kept history either way");
    uint64_t held = kith__vv_get(&vv, kith_replica_id(a.k.r));
    cr_expect(held == lost || held == own_seq(a.k.r), "b holds %llu: its history (%llu) or a's",
              (unsigned long long)held, (unsigned long long)lost);
    kith_vv_free(&vv);
    kt_rmtree(dir);
    free(dir);
    node_free(&a);
    node_free(&b);
}
