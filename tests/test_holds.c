/*
 * test_holds.c — held ops explained (store/holds.c, STO-18): a commit from a clock ten
 * minutes ahead, and one that names an op this replica lacks, are held; kith_holds_get,
 * kith_status_get and kith_peers_get say which origin, how many ops, why, and how far ahead
 * the clock is; the CLI's `bundle apply`, `status` and `peers` say it too, and so does the
 * daemon's log after a batch that leaves ops held. Also the span format those messages use
 * (kith_duration_format).
 */
#include "kith_test.h"
#include "net.h"
#include "store.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define AHEAD_MS 600000 /* ten minutes */

/* A signed batch from `a` of one commit (seq 1: a DOC_ADD) stamped AHEAD_MS in the future. */
static const struct kith__name contacts_name[] = {{"contacts", 8}};

static void
future_batch(struct kt_replica *a, struct kith__wbuf *out)
{
    struct kith__commit c = {0};
    struct kith__op op = {0};
    struct kith__wbuf enc = {0};
    struct kith__batch bt = {0};
    struct kith__batch_commit bc;
    struct kith__batch_head hd;
    uint8_t zero[KITH_HASH_BYTES] = {0}, h[KITH_HASH_BYTES];

    op.kind = KITH_OP_DOC_ADD;
    op.cname = 0; /* "contacts", the commit's one name */
    op.doc.origin = kith_replica_id(a->r);
    op.doc.seq = 1;
    c.origin = kith_replica_id(a->r);
    c.first_seq = 1;
    c.hlc = KITH__HLC_MAKE(kith__now_ms() + AHEAD_MS, 0);
    c.nops = 1;
    c.ops = &op;
    c.format = 2;
    c.names = contacts_name;
    c.nnames = 1;
    cr_assert_eq(kith__commit_encode(&c, &enc), 0);
    kith__chain_next(zero, enc.data, enc.len, h);
    bc = (struct kith__batch_commit){c.origin, 1, enc.data, enc.len};
    hd.origin = c.origin;
    hd.seq = 1;
    kith__head_sign(a->r->sk, c.origin, 1, h, hd.sig);
    bt.sender = c.origin;
    bt.ncommits = 1;
    bt.commits = &bc;
    bt.nheads = 1;
    bt.heads = &hd;
    cr_assert_eq(kith__batch_encode(&bt, out), 0);
    kith__wbuf_free(&enc);
}

static void
assert_clock_hold(const kith_hold *h, uint64_t origin)
{
    cr_assert_eq(h->origin, origin);
    cr_assert_eq(h->ops, 1);
    cr_assert_eq(h->reason, KITH_HOLD_CLOCK);
    cr_assert_gt(h->ahead_ms, AHEAD_MS - 60000, "ahead %lld ms", (long long)h->ahead_ms);
    cr_assert_leq(h->ahead_ms, AHEAD_MS);
    cr_assert_eq(h->missing.origin, 0);
}

Test(holds, clock_ahead_is_explained)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct kith__wbuf out = {0};
    kith_apply_info info;
    kith_hold *h = NULL;
    size_t n = 99;
    uint64_t aid = kith_replica_id(a.r);

    kt_trust_pair(&a, &b);
    cr_assert_eq(kith_holds_get(b.r, &h, &n), 0);
    cr_assert_eq(n, 0, "nothing held yet");
    kith_holds_free(h, n);

    future_batch(&a, &out);
    cr_assert_eq(kith_batch_apply(b.r, out.data, out.len, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(info.ops_pending, 1);

    cr_assert_eq(kith_holds_get(b.r, &h, &n), 0);
    cr_assert_eq(n, 1);
    assert_clock_hold(&h[0], aid);
    kith_holds_free(h, n);

    kith_status *s = NULL;
    cr_assert_eq(kith_status_get(b.r, &s), 0);
    cr_assert_eq(s->pending_ops, 1);
    cr_assert_eq(s->nholds, 1, "status explains its pending ops");
    assert_clock_hold(&s->holds[0], aid);
    kith_status_free(s);

    kith_peer *p = NULL;
    size_t np = 0;
    cr_assert_eq(kith_peers_get(b.r, &p, &np), 0);
    cr_assert_eq(np, 1);
    cr_assert_eq(p[0].id, aid);
    cr_assert_eq(p[0].held_ops, 1);
    cr_assert_gt(p[0].held_ahead_ms, AHEAD_MS - 60000);
    cr_assert_eq(p[0].pending_ops, 0, "a held op is not applied: nothing of ours it lacks");
    kith_peers_free(p, np);
    kith__wbuf_free(&out);
    kt_free(&a);
    kt_free(&b);
}

/* c edits a's contact; b gets c's edit without a's ops: the edit waits for a's op. */
Test(holds, missing_dependency_is_explained)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new();
    kith_batch_opts opts = {0};
    kith_buf buf = {0};
    kith_apply_info info;
    kith_hold *h = NULL;
    size_t n = 0;

    kt_trust_pair(&a, &b);
    kt_trust_pair(&a, &c);
    kt_trust_pair(&b, &c);
    kith_docid d = kt_contact(a.r, "Ada"); /* a:1 DOC_ADD, a:2 name */
    kt_sync(&a, &c);
    kt_set_str(c.r, "contacts", &d, "name", "Ada L.");
    /* a batch of c's own ops only: `since` claims b holds a's */
    kith_dot e = {kith_replica_id(a.r), 2};
    kith_vv since = {1, &e};
    opts.since = &since;
    cr_assert_eq(kith_batch_create(c.r, &opts, &buf, NULL), 0);
    cr_assert_eq(kith_batch_apply(b.r, buf.data, buf.len, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(info.ops_pending, 1);
    cr_assert_eq(kith_holds_get(b.r, &h, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(h[0].origin, kith_replica_id(c.r));
    cr_assert_eq(h[0].ops, 1);
    cr_assert_eq(h[0].reason, KITH_HOLD_DEPENDENCY);
    cr_assert_eq(h[0].missing.origin, kith_replica_id(a.r));
    cr_assert_geq(h[0].missing.seq, 1);
    cr_assert_leq(h[0].missing.seq, 2);
    cr_assert_eq(h[0].ahead_ms, 0);
    kith_holds_free(h, n);
    /* once a's ops arrive, nothing is held */
    kt_sync(&a, &b);
    cr_assert_eq(kith_holds_get(b.r, &h, &n), 0);
    cr_assert_eq(n, 0);
    kith_holds_free(h, n);
    kith_free(buf.data);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
}

Test(holds, duration_format)
{
    char s[32];
    kith_duration_format(0, s);
    cr_assert_str_eq(s, "0 ms");
    kith_duration_format(250, s);
    cr_assert_str_eq(s, "250 ms");
    kith_duration_format(45999, s);
    cr_assert_str_eq(s, "45 s");
    kith_duration_format(600000, s);
    cr_assert_str_eq(s, "10 min");
    kith_duration_format((2 * 60 + 13) * 60000 + 5000, s);
    cr_assert_str_eq(s, "2 h 13 min");
    kith_duration_format((3 * 24 + 4) * 3600000LL, s);
    cr_assert_str_eq(s, "3 d 4 h");
    kith_duration_format(-90000, s);
    cr_assert_str_eq(s, "-1 min 30 s");
    kith_duration_format(INT64_MIN, s);
    cr_assert_eq(s[0], '-');
}

/* Run the CLI; its stdout in `out` (cap bytes). Returns the exit status. */
static int run_cli(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
run_cli(char *out, size_t cap, const char *fmt, ...)
{
    const char *bin = getenv("KITH_BIN");
    char cmd[1024], args[900];
    va_list ap;
    FILE *p;
    size_t got;
    int st;

    cr_assert_not_null(bin, "KITH_BIN is not set (run through ctest)");
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s 2>/dev/null", bin, args);
    p = popen(cmd, "r");
    cr_assert_not_null(p);
    got = fread(out, 1, cap - 1, p);
    out[got] = '\0';
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(holds, cli_says_which_origin_and_how_far_ahead)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct kith__wbuf out = {0};
    char path[512], want[128], aid[KITH_ID_HEX + 1], text[8192];
    FILE *f;

    kt_trust_pair(&a, &b);
    future_batch(&a, &out);
    snprintf(path, sizeof path, "%s/future.bundle", b.root);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite("KITHBDL1", 1, 8, f), 8);
    cr_assert_eq(fwrite(out.data, 1, out.len, f), out.len);
    cr_assert_eq(fclose(f), 0);
    snprintf(aid, sizeof aid, "%016llx", (unsigned long long)kith_replica_id(a.r));
    kith_close(b.r); /* the CLI opens it */
    b.r = NULL;

    cr_assert_eq(run_cli(text, sizeof text, "--dir '%s' bundle apply '%s'", b.dir, path), 0);
    snprintf(want, sizeof want, "1 op held: origin %s, clock ", aid);
    cr_assert_not_null(strstr(text, want), "bundle apply said: %s", text);
    cr_assert_not_null(strstr(text, "ahead (they apply when the clock catches up)"), "%s", text);
    cr_assert(strstr(text, "clock 9 min") || strstr(text, "clock 10 min"), "%s", text);

    cr_assert_eq(run_cli(text, sizeof text, "--dir '%s' status", b.dir), 0);
    cr_assert_not_null(strstr(text, want), "status said: %s", text);

    cr_assert_eq(run_cli(text, sizeof text, "--dir '%s' status --json", b.dir), 0);
    cr_assert_not_null(strstr(text, "\"reason\": \"clock_ahead\""), "%s", text);
    snprintf(want, sizeof want, "\"origin\": \"%s\"", aid);
    cr_assert_not_null(strstr(text, want), "%s", text);

    cr_assert_eq(run_cli(text, sizeof text, "--dir '%s' peers --json", b.dir), 0);
    cr_assert_not_null(strstr(text, "\"held_ops\": 1"), "%s", text);
    cr_assert_eq(run_cli(text, sizeof text, "--dir '%s' peers", b.dir), 0);
    cr_assert(strstr(text, "1, clock 9 min") || strstr(text, "1, clock 10 min"), "%s", text);

    kith__wbuf_free(&out);
    kt_free(&a);
    kt_free(&b);
}

static void
redirect_stderr(void)
{
    cr_redirect_stderr();
}

/* What the daemon logs after applying a batch from `peer` that left ops held. */
Test(holds, daemon_log_names_origin_and_lead, .init = redirect_stderr)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct kith__wbuf out = {0};
    struct kith__log log;
    char line[512], want[128];

    kt_trust_pair(&a, &b);
    future_batch(&a, &out);
    cr_assert_eq(kith_batch_apply(b.r, out.data, out.len, NULL), 0);
    unsetenv("JOURNAL_STREAM");
    kith__log_init(&log, KITH_LOG_INFO, false);
    kith__log_holds(&log, b.r, kith_replica_id(a.r));
    fflush(stderr);
    FILE *f = cr_get_redirected_stderr();
    cr_assert(fgets(line, sizeof line, f), "nothing logged");
    snprintf(want, sizeof want, "1 op of origin %016llx held: its clock is ",
             (unsigned long long)kith_replica_id(a.r));
    cr_assert_not_null(strstr(line, want), "logged: %s", line);
    cr_assert(strstr(line, "is 9 min") || strstr(line, "is 10 min"), "logged: %s", line);
    cr_assert_not_null(strstr(line, "warning"), "logged: %s", line);
    kith__wbuf_free(&out);
    kt_free(&a);
    kt_free(&b);
}

/* The id of the document future_batch creates: a's dot (origin, 1). */
static kith_docid
first_doc(struct kt_replica *a)
{
    kith_docid d;
    kith__be64_put(d.bytes, kith_replica_id(a->r));
    kith__be64_put(d.bytes + 8, 1);
    return d;
}

static bool
doc_exists(kith_replica *r, const kith_docid *doc)
{
    kith_txn *t = kt_rbegin(r);
    int rc = kith_doc_exists(t, "contacts", doc);
    kith_txn_abort(&t);
    cr_assert(rc >= 0);
    return rc == 1;
}

/* A clock hold falls due as the clock catches up; kith_holds_apply applies it then, and
 * not before (nothing is written while nothing moves). */
Test(holds, clock_hold_applies_when_the_clock_catches_up)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct kith__wbuf out = {0};
    kith_apply_info info;
    kith_hold *h = NULL;
    size_t n = 0;
    kith_docid doc = first_doc(&a);

    kt_trust_pair(&a, &b);
    future_batch(&a, &out);
    cr_assert_eq(kith_batch_apply(b.r, out.data, out.len, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(info.ops_pending, 1);
    cr_assert_eq(kith_holds_apply(b.r, &info), 0);
    cr_assert_eq(info.ops_applied, 0, "not due yet");
    cr_assert_eq(info.ops_pending, 1);
    cr_assert(!doc_exists(b.r, &doc));

    kith__replica_set_clock_offset(b.r, AHEAD_MS); /* ten minutes pass */
    cr_assert_eq(kith_holds_get(b.r, &h, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(h[0].reason, KITH_HOLD_READY);
    kith_holds_free(h, n);
    cr_assert_eq(kith_holds_apply(b.r, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(info.ops_applied, 1);
    cr_assert_eq(info.ops_pending, 0);
    cr_assert(doc_exists(b.r, &doc));
    cr_assert_eq(kith_holds_get(b.r, &h, &n), 0);
    cr_assert_eq(n, 0);
    kith_holds_free(h, n);
    kith_verify_report rep;
    cr_assert_eq(kith_verify(b.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    kith__wbuf_free(&out);
    kt_free(&a);
    kt_free(&b);
}

struct serving {
    kith_replica *r;
    kith_serve_opts o;
    volatile int stop;
    int rc;
};

static void *
serve_thread(void *arg)
{
    struct serving *sv = arg;
    sv->rc = kith_serve(sv->r, &sv->o);
    return NULL;
}

/* With the peers quiet, nothing arrives to apply a commit that fell due: the daemon does. */
Test(holds, daemon_applies_a_hold_that_falls_due, .timeout = 60)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct kith__wbuf out = {0};
    kith_apply_info info;
    kith_docid doc = first_doc(&a);
    struct serving sv = {.r = b.r, .rc = -1};
    pthread_t th;

    kt_trust_pair(&a, &b);
    future_batch(&a, &out);
    cr_assert_eq(kith_batch_apply(b.r, out.data, out.len, &info), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(info.ops_pending, 1);
    sv.o.stop = &sv.stop;
    sv.o.log_level = KITH_LOG_ERROR;
    cr_assert_eq(pthread_create(&th, NULL, serve_thread, &sv), 0);
    struct timespec pause = {0, 20 * 1000000L};
    for (int i = 0; i < 50; i++) /* a second of the daemon's turns: nothing is due */
        nanosleep(&pause, NULL);
    cr_assert(!doc_exists(b.r, &doc));
    kith__replica_set_clock_offset(b.r, AHEAD_MS); /* ten minutes pass */
    bool applied = false;
    for (int i = 0; i < 500 && !applied; i++) { /* at most 10 s */
        nanosleep(&pause, NULL);
        applied = doc_exists(b.r, &doc);
    }
    sv.stop = 1;
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(sv.rc, 0);
    cr_assert(applied, "the daemon did not apply the commit that fell due");
    kith__wbuf_free(&out);
    kt_free(&a);
    kt_free(&b);
}
