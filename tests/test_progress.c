/*
 * test_progress.c — kith_progress_set (spec/decisions.md D-11): every long call reports done 0
 * at its start, never goes backwards, keeps done <= total and ends with done == total; and a
 * callback that says stop gets KITH_ECANCELED with nothing half done. A cancelled apply
 * leaves the export and the vector byte for byte as they were and applies in full later; a
 * cancelled bundle write leaves no file (and a file already there untouched); a cancelled
 * verify leaves no scratch directory; a cancelled sync keeps only whole batches, records the
 * peer as cancelled without a failure, and the next sync converges. kith_serve's own sessions
 * never call the callback.
 *
 * Real LMDB replicas in temporary directories; the sync runs against a daemon thread on a
 * port of 127.0.0.1 the kernel picked (net_test.h). Cancels are decided by the numbers the
 * callback is given, never by time, so every run takes the same path.
 */
#include "kith_test.h"
#include "net_test.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_CALLS 4096

/* What a callback saw, and when it says stop. */
struct seen {
    kith_progress calls[MAX_CALLS];
    size_t n;            /* calls recorded (at most MAX_CALLS) */
    size_t ncalls;       /* calls made */
    uint64_t stop_at;    /* say stop once done >= this (0: never) ... */
    bool stop_at_end;    /* ... or once done == total, total known ... */
    size_t stop_on_call; /* ... or at this call, the first being 1 (0: never) */
    bool stopped;        /* it said stop */
};

static int
on_progress(void *ctx, const kith_progress *p)
{
    struct seen *s = ctx;

    if (s->n < MAX_CALLS)
        s->calls[s->n++] = *p;
    s->ncalls++;
    if ((s->stop_at != 0 && p->done >= s->stop_at) ||
        (s->stop_at_end && p->total != 0 && p->done == p->total) || s->ncalls == s->stop_on_call) {
        s->stopped = true;
        return 1;
    }
    return 0;
}

/* The calls of one finished call: op as given, done 0 first, done never decreasing, done <=
 * total when total is known, and a last call with done == total == `total`. */
static void
expect_reports(const struct seen *s, int op, uint64_t total)
{
    cr_assert(s->n >= 2 && s->n == s->ncalls, "%zu calls", s->ncalls);
    cr_expect_eq(s->calls[0].done, 0);
    for (size_t i = 0; i < s->n; i++) {
        const kith_progress *p = &s->calls[i];
        cr_expect_eq(p->op, op, "call %zu: op %d", i, p->op);
        if (p->total != 0)
            cr_expect_leq(p->done, p->total, "call %zu: %llu of %llu", i,
                          (unsigned long long)p->done, (unsigned long long)p->total);
        if (i > 0)
            cr_expect_geq(p->done, s->calls[i - 1].done, "call %zu went back", i);
    }
    cr_expect_eq(s->calls[s->n - 1].done, total, "ended at %llu of %llu",
                 (unsigned long long)s->calls[s->n - 1].done, (unsigned long long)total);
    cr_expect_eq(s->calls[s->n - 1].total, total);
}

/* `n` commits of one new contact each (two ops: the document and its name). */
static void
contacts(kith_replica *r, int n, const char *prefix)
{
    for (int i = 0; i < n; i++) {
        char name[48];
        snprintf(name, sizeof name, "%s %d", prefix, i);
        kt_contact(r, name);
    }
}

/* `ncommits` commits of `per` contacts each (2 * per ops a commit). */
static void
bulk(kith_replica *r, int ncommits, int per)
{
    for (int c = 0; c < ncommits; c++) {
        kith_txn *t = kt_wbegin(r);
        for (int i = 0; i < per; i++) {
            char name[48];
            kith_docid d;
            kith_value v;
            snprintf(name, sizeof name, "bulk %d-%d", c, i);
            v = kt_str(name);
            cr_assert_eq(kith_doc_create(t, "contacts", &d), 0);
            cr_assert_eq(kith_field_set(t, "contacts", &d, "name", &v), 0);
        }
        kt_commit(t);
    }
}

static char *
vv_text(kith_replica *r)
{
    kith_vv vv = {0};
    char *text = NULL, *copy;
    cr_assert_eq(kith_vv_get(r, &vv), 0);
    cr_assert_eq(kith_vv_format(&vv, &text), 0);
    copy = strdup(text);
    kith_free(text);
    kith_vv_free(&vv);
    return copy;
}

static uint64_t
ops_logged(kith_replica *r)
{
    kith_status *st = NULL;
    uint64_t n;
    cr_assert_eq(kith_status_get(r, &st), 0);
    n = st->ops_logged;
    kith_status_free(st);
    return n;
}

static void
expect_sound(kith_replica *r)
{
    kith_verify_report rep;
    cr_assert_eq(kith_verify(r, &rep), 0);
    cr_expect_eq(rep.problems, 0, "verify: %s", rep.first_problem);
}

/* How many entries directory `dir` holds besides "." and "..". */
static int
count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    cr_assert(d != NULL);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, 4096);
    cr_assert(f != NULL && buf != NULL);
    size_t n = fread(buf, 1, 4095, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* proves D-11 (reports of build, apply and verify) */
Test(progress, build_apply_verify_report_from_zero_to_the_total)
{
    struct kt_replica a = kt_new(), b = kt_new();
    static struct seen built, applied, verified;
    kith_batch_info bi;
    kith_apply_info ai;
    kith_verify_report rep;
    char path[512];

    kt_trust_pair(&a, &b);
    contacts(a.r, 700, "a");
    snprintf(path, sizeof path, "%s/bundle", a.root);

    kith_progress_set(a.r, on_progress, &built);
    cr_assert_eq(kith_bundle_write(a.r, NULL, path, &bi), 0);
    expect_reports(&built, KITH_PROGRESS_BUILD, bi.ops);
    cr_expect_eq(bi.ops, 1400);
    cr_expect_geq(built.n, 4, "start, every 256 commits, end: %zu calls", built.n);

    kith_progress_set(b.r, on_progress, &applied);
    cr_assert_eq(kith_bundle_apply(b.r, path, &ai), 0);
    expect_reports(&applied, KITH_PROGRESS_APPLY, ai.ops_new + ai.ops_known);
    cr_expect_eq(ai.ops_new, 1400);
    cr_expect_geq(applied.n, 4);
    /* the start, before the file is read, does not know the total yet */
    cr_expect_eq(applied.calls[0].total, 0);

    kith_progress_set(b.r, on_progress, &verified);
    cr_assert_eq(kith_verify(b.r, &rep), 0);
    cr_expect_eq(rep.problems, 0);
    /* verify goes over the log, then applies every applied op again */
    expect_reports(&verified, KITH_PROGRESS_VERIFY, 2 * rep.ops_checked);
    cr_expect_eq(verified.calls[0].total, 2 * rep.ops_checked, "known from the start");

    /* cleared: nothing is called any more */
    size_t before = verified.ncalls;
    kith_progress_set(b.r, NULL, &verified);
    cr_assert_eq(kith_verify(b.r, &rep), 0);
    cr_expect_eq(verified.ncalls, before);
    kt_free(&a);
    kt_free(&b);
}

/* proves D-11 (a batch in memory: build with since, and apply) */
Test(progress, batch_create_and_apply_report_the_ops_they_carry)
{
    struct kt_replica a = kt_new(), b = kt_new();
    static struct seen built, applied;
    kith_batch_opts opts = {0};
    kith_batch_info bi;
    kith_apply_info ai;
    kith_buf buf;
    kith_vv since = {0};

    kt_trust_pair(&a, &b);
    contacts(a.r, 300, "a");
    kt_sync(&a, &b);
    bulk(a.r, 600, 2); /* 2400 ops that b lacks */
    cr_assert_eq(kith_vv_get(b.r, &since), 0);
    opts.since = &since;
    kith_progress_set(a.r, on_progress, &built);
    cr_assert_eq(kith_batch_create(a.r, &opts, &buf, &bi), 0);
    expect_reports(&built, KITH_PROGRESS_BUILD, 2400);
    cr_expect_eq(built.calls[0].total, 2400, "the vectors' difference, from the start");
    cr_expect_eq(bi.ops, 2400);

    kith_progress_set(b.r, on_progress, &applied);
    cr_assert_eq(kith_batch_apply(b.r, buf.data, buf.len, &ai), 0);
    expect_reports(&applied, KITH_PROGRESS_APPLY, 2400);
    cr_expect_eq(applied.calls[0].total, 2400, "the batch's runs, before any is applied");
    kith_free(buf.data);
    kith_vv_free(&since);
    kt_free(&a);
    kt_free(&b);
}

/* Apply a's bundle to b with a callback that stops as `s` says; b must be as it was. */
static void
cancelled_apply_changes_nothing(struct seen *s, bool bundle)
{
    struct kt_replica a = kt_new(), b = kt_new();
    kith_apply_info ai;
    char path[512];
    kith_buf buf = {0};

    kt_trust_pair(&a, &b);
    contacts(a.r, 1500, "a");
    contacts(b.r, 3, "b");
    kith_docid mine = kt_contact(b.r, "mine");
    kt_set_str(b.r, "contacts", &mine, "email", "mine@example.org");
    snprintf(path, sizeof path, "%s/bundle", a.root);
    cr_assert_eq(kith_bundle_write(a.r, NULL, path, NULL), 0);
    cr_assert_eq(kith_batch_create(a.r, NULL, &buf, NULL), 0);
    char *export_before = kt_export(b.r), *vv_before = vv_text(b.r);
    uint64_t logged_before = ops_logged(b.r);

    kith_progress_set(b.r, on_progress, s);
    int rc =
        bundle ? kith_bundle_apply(b.r, path, &ai) : kith_batch_apply(b.r, buf.data, buf.len, &ai);
    cr_assert_eq(rc, KITH_ECANCELED, "apply: %s", kith_errname(rc));
    cr_expect(s->stopped);
    cr_expect(strstr(kith_errmsg(b.r), "cancelled") != NULL, "errmsg: %s", kith_errmsg(b.r));
    cr_expect_eq(ai.ops_new, 0);
    kith_progress_set(b.r, NULL, NULL);

    /* nothing half-applied: the state, the vector and the log are as they were */
    char *export_after = kt_export(b.r), *vv_after = vv_text(b.r);
    cr_expect_str_eq(export_after, export_before);
    cr_expect_str_eq(vv_after, vv_before);
    cr_expect_eq(ops_logged(b.r), logged_before);
    expect_sound(b.r);

    /* and it applies in full later, converging with the source */
    cr_assert_eq(kith_bundle_apply(b.r, path, &ai), 0);
    cr_expect_eq(ai.ops_new, 3000);
    kt_sync(&b, &a);
    char *ea = kt_export(a.r), *eb = kt_export(b.r);
    cr_expect_str_eq(ea, eb);
    expect_sound(b.r);
    free(ea);
    free(eb);
    free(export_before);
    free(export_after);
    free(vv_before);
    free(vv_after);
    kith_free(buf.data);
    kt_free(&a);
    kt_free(&b);
}

/* proves D-11 (apply: one transaction aborted, nothing changed, applies in full later) */
Test(progress, cancel_halfway_through_a_bundle_apply_changes_nothing)
{
    static struct seen s = {.stop_at = 1500};
    cancelled_apply_changes_nothing(&s, true);
    /* it stopped halfway, at a report between commits, not at the start or the end */
    cr_expect_geq(s.calls[s.n - 1].done, 1500);
    cr_expect_lt(s.calls[s.n - 1].done, 3000);
}

/* proves D-11 (the end report of an apply comes before its commit) */
Test(progress, cancel_at_the_end_of_a_batch_apply_changes_nothing)
{
    static struct seen s = {.stop_at_end = true};
    cancelled_apply_changes_nothing(&s, false);
    cr_expect_eq(s.calls[s.n - 1].done, 3000);
}

/* proves D-11 (apply: cancelled at its first call, before the file is read) */
Test(progress, cancel_at_the_start_of_a_bundle_apply_changes_nothing)
{
    static struct seen s = {.stop_on_call = 1};
    cancelled_apply_changes_nothing(&s, true);
    cr_expect_eq(s.ncalls, 1);
    cr_expect_eq(s.calls[0].done, 0);
}

/* proves D-11 (bundle write: no file, and a file already there untouched) */
Test(progress, cancel_during_a_bundle_write_leaves_no_file)
{
    struct kt_replica a = kt_new();
    static struct seen s = {.stop_at = 600};
    char dir[512], path[600], other[600];
    kith_batch_info bi;
    FILE *f;

    contacts(a.r, 800, "a");
    snprintf(dir, sizeof dir, "%s/out", a.root);
    cr_assert_eq(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/new.bundle", dir);
    kith_progress_set(a.r, on_progress, &s);
    cr_assert_eq(kith_bundle_write(a.r, NULL, path, &bi), KITH_ECANCELED);
    cr_expect(s.stopped);
    cr_expect_eq(bi.ops, 0);
    cr_expect_eq(count_entries(dir), 0, "no bundle and no temporary file");

    /* a bundle already at the path stays as it was */
    snprintf(other, sizeof other, "%s/old.bundle", dir);
    f = fopen(other, "w");
    cr_assert(f != NULL);
    fputs("the previous bundle", f);
    fclose(f);
    s.n = s.ncalls = 0;
    s.stopped = false;
    cr_assert_eq(kith_bundle_write(a.r, NULL, other, NULL), KITH_ECANCELED);
    char *text = read_file(other);
    cr_expect_str_eq(text, "the previous bundle");
    cr_expect_eq(count_entries(dir), 1);
    free(text);

    /* and without the callback it is written */
    kith_progress_set(a.r, NULL, NULL);
    cr_assert_eq(kith_bundle_write(a.r, NULL, path, &bi), 0);
    cr_expect_eq(bi.ops, 1600);
    kt_free(&a);
}

/* proves D-11 (verify: stops, zeroed report, nothing left behind) */
Test(progress, cancel_verify)
{
    struct kt_replica a = kt_new();
    static struct seen s;
    kith_verify_report rep;
    char *tmp = kt_tmpdir();

    contacts(a.r, 1200, "a");
    cr_assert_eq(setenv("TMPDIR", tmp, 1), 0); /* where verify makes its scratch state */
    char *before = kt_export(a.r);

    /* in the first pass (the log: 2400 ops), and in the second (the state, again 2400) */
    uint64_t stops[] = {600, 3600};
    for (size_t i = 0; i < 2; i++) {
        memset(&s, 0, sizeof s);
        s.stop_at = stops[i];
        kith_progress_set(a.r, on_progress, &s);
        memset(&rep, 0xff, sizeof rep);
        cr_assert_eq(kith_verify(a.r, &rep), KITH_ECANCELED);
        cr_expect(s.stopped);
        cr_expect_eq(rep.problems, 0);
        cr_expect_eq(rep.ops_checked, 0, "the report is zeroed");
        cr_expect_lt(s.calls[s.n - 1].done, s.calls[s.n - 1].total);
        cr_expect_eq(count_entries(tmp), 0, "no scratch directory is left");
    }
    kith_progress_set(a.r, NULL, NULL);
    char *after = kt_export(a.r);
    cr_expect_str_eq(after, before);
    expect_sound(a.r);
    free(before);
    free(after);
    kt_rmtree(tmp);
    free(tmp);
    kt_free(&a);
}

/* Counts calls from any thread: the daemon's must never come. */
static int
count_calls(void *ctx, const kith_progress *p)
{
    (void)p;
    __atomic_add_fetch((int *)ctx, 1, __ATOMIC_RELAXED);
    return 0;
}

static uint64_t
peer_of(kith_replica *r, uint64_t id, kith_peer *out)
{
    kith_peer *peers = NULL;
    size_t n = 0;
    bool found = false;
    cr_assert_eq(kith_peers_get(r, &peers, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (peers[i].id == id) {
            *out = peers[i];
            out->acked.entries = NULL; /* freed below */
            out->acked.len = 0;
            found = true;
        }
    kith_peers_free(peers, n);
    cr_assert(found);
    return out->failures;
}

/* proves D-11 (sync: whole batches, cancelled record, resumes and converges; kith_serve
 * never calls the callback) */
Test(progress, cancel_a_sync_halfway_then_sync_again)
{
    static struct seen s, again;
    struct node b;
    struct kt_replica a = kt_new();
    kith_sync_info info;
    kith_peer rec;
    uint8_t pk[KITH_PUBKEY_BYTES];
    int daemon_calls = 0;

    node_init(&b);
    kt_trust_pair(&a, &b.k);
    contacts(a.r, 2, "a"); /* 4 ops to send */
    bulk(b.k.r, 40, 500);  /* 40,000 ops to receive: batches of 16,000 (NET-8) */
    kith_progress_set(b.k.r, count_calls, &daemon_calls);
    node_start(&b);
    kith_replica_pubkey(b.k.r, pk);

    /* stop once the first batch is in: the callback hears of each batch applied */
    s.stop_at = 10000;
    kith_progress_set(a.r, on_progress, &s);
    int rc = kith_sync(a.r, b.ep, pk, 20000, &info);
    cr_assert_eq(rc, KITH_ECANCELED, "kith_sync: %s (%s)", kith_errname(rc), kith_errmsg(a.r));
    cr_expect(s.stopped);
    cr_expect_eq(s.calls[0].done, 0);
    for (size_t i = 1; i < s.n; i++)
        cr_expect_geq(s.calls[i].done, s.calls[i - 1].done);
    cr_expect_eq(s.calls[s.n - 1].total, 40004, "what the vectors differ by");
    cr_expect(info.batches_received >= 1);
    cr_expect(info.ops_received > 0 && info.ops_received < 40000, "received %llu",
              (unsigned long long)info.ops_received);

    /* only whole batches: what a holds of b is exactly what the batches it applied carried */
    kith_vv vv = {0};
    cr_assert_eq(kith_vv_get(a.r, &vv), 0);
    uint64_t held = 0;
    for (size_t i = 0; i < vv.len; i++)
        if (vv.entries[i].origin == kith_replica_id(b.k.r))
            held = vv.entries[i].seq;
    kith_vv_free(&vv);
    cr_expect_eq(held, info.ops_received);
    cr_expect_eq(held % 1000, 0, "batches end on commits of 1000 ops: %llu",
                 (unsigned long long)held);
    kith_progress_set(a.r, NULL, NULL);
    expect_sound(a.r);

    /* the record says cancelled, and a cancel is no failure */
    cr_expect_eq(peer_of(a.r, kith_replica_id(b.k.r), &rec), 0);
    cr_expect_str_eq(rec.last_error, kith_strerror(KITH_ECANCELED));
    cr_expect(!rec.failing);

    /* the next sync goes on from what a holds and converges */
    kith_progress_set(a.r, on_progress, &again);
    rc = kith_sync(a.r, b.ep, pk, 20000, &info);
    cr_assert_eq(rc, 0, "kith_sync: %s (%s)", kith_errname(rc), kith_errmsg(a.r));
    cr_expect(info.converged);
    cr_expect_eq(info.ops_received, 40000 - held);
    expect_reports(&again, KITH_PROGRESS_SYNC, info.ops_sent + info.ops_received);
    expect_same_export(a.r, b.k.r);
    cr_expect_eq(peer_of(a.r, kith_replica_id(b.k.r), &rec), 0);
    cr_expect_str_eq(rec.last_error, "");

    node_stop(&b);
    cr_expect_eq(__atomic_load_n(&daemon_calls, __ATOMIC_RELAXED), 0,
                 "kith_serve called the callback %d times", daemon_calls);
    node_free(&b);
    kt_free(&a);
}
