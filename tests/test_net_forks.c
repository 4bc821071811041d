/*
 * test_net_forks.c — the handshake of protocol 3 (spec/protocol.md NET-24..NET-26): forks
 * found at equal seqs the first time two holders of different histories meet, on both sides,
 * while the other origins sync; heads that do not fit the vector refused with nothing
 * changed; the peer's clock measured and a clock beyond the tolerance named once; and a peer
 * of protocol 2 (kith 0.2) still synced, in either role.
 *
 * Sessions driven by hand are wired to each other through in-memory queues (no sockets), so
 * that the tests can play a kith of protocol 2 (a session whose newest protocol is 2 says
 * and refuses exactly what kith 0.2 does) and read the log lines; the end-to-end scenario of
 * issue #10 runs a real daemon on 127.0.0.1, port "*".
 */
#include "net_test.h"

#include <sodium.h>
#include <sys/stat.h>

/* ---- two sessions wired back to back ----------------------------------------------------- */

#define QMAX 64

struct queue {
    uint8_t *frame[QMAX];
    size_t len[QMAX];
    int n;
};

static int
q_send(void *ctx, void *data, size_t len)
{
    struct queue *q = ctx;
    if (q->n == QMAX) {
        free(data);
        return KITH_EBUSY;
    }
    q->frame[q->n] = data;
    q->len[q->n++] = len;
    return 0;
}

static void
q_deliver(struct queue *q, struct kith__session *to)
{
    int n = q->n;
    q->n = 0;
    for (int i = 0; i < n; i++) {
        (void)kith__session_input(to, q->frame[i], q->len[i]);
        free(q->frame[i]);
    }
}

/* The log lines of both sessions, one after another. */
struct lines {
    char text[16384];
    size_t len;
};

static void
on_line(void *arg, int level, const char *line)
{
    struct lines *l = arg;
    (void)level;
    int n = snprintf(l->text + l->len, sizeof l->text - l->len, "%s\n", line);
    if (n > 0 && (size_t)n < sizeof l->text - l->len)
        l->len += (size_t)n;
}

static size_t
count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

struct wire {
    struct kith__session cli, srv;
    struct kith__peerstate cpeer; /* the client's state of the server */
    struct kith__peerstate speer; /* the server's state of the client */
    struct queue to_srv, to_cli;
    struct kith__log log;
    struct lines lines;
};

static struct kith__peerstate *
find_speer(void *ctx, uint64_t id, const uint8_t pk[KITH_PUBKEY_BYTES])
{
    struct wire *w = ctx;
    w->speer.id = id;
    memcpy(w->speer.pk, pk, KITH_PUBKEY_BYTES);
    return &w->speer;
}

static void
wire_init(struct wire *w)
{
    memset(w, 0, sizeof *w);
    kith__log_init(&w->log, KITH_LOG_DEBUG, false);
    cr_assert_eq(kith__log_to(&w->log, on_line, &w->lines), 0);
}

/* A server session of `b` (whose newest protocol is b_max; 0: this kith's) for a connection
 * that ZAP admitted with a's key. */
static void
wire_server(struct wire *w, kith_replica *b, const uint8_t pa[KITH_PUBKEY_BYTES], uint32_t b_max)
{
    kith__session_init_server(&w->srv, b, &w->log, find_speer, w, q_send, &w->to_cli);
    w->srv.proto_max = b_max;
    cr_assert_eq(kith_curve_public(pa, w->srv.zap_curve), 0);
    w->srv.has_zap_curve = true;
}

/* Client `a` dials server `b`; the newest protocol each speaks is given (0: this kith's).
 * Runs both until the client is finished or either closed; returns the client's state. */
static int
wire_run(struct wire *w, kith_replica *a, kith_replica *b, uint32_t a_max, uint32_t b_max)
{
    uint8_t pa[KITH_PUBKEY_BYTES];

    kith_replica_pubkey(a, pa);
    wire_server(w, b, pa, b_max);
    w->cpeer.id = kith_replica_id(b);
    kith_replica_pubkey(b, w->cpeer.pk);
    /* start_client sends HELLO at once: set the protocol it offers through the hint */
    if (a_max)
        w->cpeer.proto_hint = a_max;
    cr_assert_eq(kith__session_start_client(&w->cli, a, &w->log, &w->cpeer, q_send, &w->to_srv), 0);
    w->cli.proto_max = a_max;
    for (int turn = 0; turn < 1000; turn++) {
        /* the daemon's ROUTER: after a session closed, the next frame opens another */
        if (w->srv.state == KITH__SS_CLOSED && w->to_srv.n > 0)
            wire_server(w, b, pa, b_max);
        q_deliver(&w->to_srv, &w->srv);
        q_deliver(&w->to_cli, &w->cli);
        (void)kith__session_pump(&w->cli);
        (void)kith__session_pump(&w->srv);
        if (kith__session_finished(&w->cli) && w->to_srv.n == 0 && w->to_cli.n == 0)
            break;
        if (w->cli.state == KITH__SS_CLOSED)
            break;
    }
    return w->cli.state;
}

static void
wire_free(struct wire *w)
{
    kith__session_close(&w->cli, 0, false, true, "done");
    q_deliver(&w->to_srv, &w->srv);
    kith__session_close(&w->srv, 0, false, false, "done");
    for (int i = 0; i < w->to_srv.n; i++)
        free(w->to_srv.frame[i]);
    for (int i = 0; i < w->to_cli.n; i++)
        free(w->to_cli.frame[i]);
    kith__log_close(&w->log);
    kith__peerstate_clear(&w->cpeer);
    kith__peerstate_clear(&w->speer);
}

/* The peer record of `id` in r (asserts it exists). */
static kith_peer
peer_of(kith_replica *r, uint64_t id)
{
    kith_peer *p = NULL, out;
    size_t n = 0;
    bool found = false;
    cr_assert_eq(kith_peers_get(r, &p, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (p[i].id == id) {
            out = p[i];
            out.acked.entries = NULL; /* freed below */
            out.acked.len = 0;
            found = true;
        }
    kith_peers_free(p, n);
    cr_assert(found, "no peer %016llx", (unsigned long long)id);
    return out;
}

static size_t
forks_of(kith_replica *r, kith_fork *out)
{
    kith_fork *f = NULL;
    size_t n = 0;
    cr_assert_eq(kith_forks_get(r, &f, &n), 0);
    if (n > 0 && out)
        *out = f[0];
    kith_forks_free(f, n);
    return n;
}

/* A copy of replica a (its directory, key included) opened as root/name: the same origin. */
static kith_replica *
clone_of(struct kt_replica *a, const char *root, const char *name)
{
    char dir[512], cmd[1400];
    kith_replica *clone = NULL;

    kith_close(a->r);
    snprintf(dir, sizeof dir, "%s/%s", root, name);
    cr_assert_eq(mkdir(dir, 0700), 0);
    snprintf(cmd, sizeof cmd, "cp '%s/data.mdb' '%s/key' '%s/'", a->dir, a->dir, dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(kith_open(a->dir, KITH_NOSYNC, &a->r), 0);
    cr_assert_eq(kith_open(dir, KITH_NOSYNC, &clone), 0);
    return clone;
}

static void
apply_all(kith_replica *from, kith_replica *to)
{
    kith_buf b = {0};
    cr_assert_eq(kith_batch_create(from, NULL, &b, NULL), 0);
    int rc = kith_batch_apply(to, b.data, b.len, NULL);
    cr_assert_eq(rc, 0, "%s (%s)", kith_strerror(rc), kith_errmsg(to));
    kith_free(b.data);
}

/* ---- protocol 4 and the steps down ------------------------------------------------------- */

/* Two replicas of this kith speak protocol 5: no refusal, no hint. */
/* proves NET-7 */
Test(proto5, two_replicas_of_this_kith_speak_protocol_5)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct wire w;
    kt_trust_pair(&a, &b);
    kith_docid da = kt_contact(a.r, "from a");

    wire_init(&w);
    cr_assert_eq(wire_run(&w, a.r, b.r, 0, 0), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert(kith__session_finished(&w.cli));
    cr_assert_eq(w.cli.proto, 5);
    cr_assert_eq(w.srv.proto, 5);
    cr_assert_eq(w.cli.stats.proto, 5);
    cr_assert_eq(w.cpeer.proto_hint, 0);
    cr_assert_null(strstr(w.lines.text, "refused protocol"), "%s", w.lines.text);
    cr_assert(has_doc(b.r, &da));
    static const uint8_t none[16];
    cr_assert_arr_eq(w.srv.peer_group, none, 16, "a replica in no group says zeros");
    cr_assert_not(w.cli.records_due);
    wire_free(&w);
    kt_free(&a);
    kt_free(&b);
}

/* A kith 0.3 server refuses a HELLO of protocol 5, then of 4, for its version; the client says
 * HELLO again one lower each time, down to protocol 3, and they sync with the fork check and the
 * clock of protocol 3. The next dial starts in protocol 3. */
/* proves NET-7 */
Test(proto4, a_kith_0_3_server_is_spoken_to_in_protocol_3)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct wire w;
    kt_trust_pair(&a, &b);
    kith_docid da = kt_contact(a.r, "from a"), db = kt_contact(b.r, "from b");

    wire_init(&w);
    cr_assert_eq(wire_run(&w, a.r, b.r, 0, 3), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert(kith__session_finished(&w.cli));
    cr_assert_eq(w.cli.proto, 3);
    cr_assert_eq(w.srv.proto, 3);
    cr_assert_eq(w.cli.stats.proto, 3);
    cr_assert_eq(w.cpeer.proto_hint, 3, "remembered for the next dial");
    cr_assert(strstr(w.lines.text, "refused protocol 5"), "%s", w.lines.text);
    cr_assert(strstr(w.lines.text, "refused protocol 4"), "%s", w.lines.text);
    cr_assert(strstr(w.lines.text, "peer runs a newer kith (protocol 5, here 3)"), "%s",
              w.lines.text);
    cr_assert(strstr(w.lines.text, "peer runs a newer kith (protocol 4, here 3)"), "%s",
              w.lines.text);
    cr_assert_null(strstr(w.lines.text, "refused protocol 3"), "%s", w.lines.text);
    cr_assert(has_doc(b.r, &da));
    cr_assert(has_doc(a.r, &db));
    cr_assert_neq(peer_of(a.r, kith_replica_id(b.r)).clock_checked_ms, 0, "protocol 3's clock");
    wire_free(&w);

    wire_init(&w);
    kt_contact(a.r, "again");
    w.cpeer.proto_hint = 3; /* what the daemon's peer state kept */
    cr_assert_eq(wire_run(&w, a.r, b.r, 0, 3), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert_eq(w.cli.proto, 3);
    cr_assert_null(strstr(w.lines.text, "refused protocol"), "%s", w.lines.text);
    expect_same_export(a.r, b.r);
    wire_free(&w);
    kt_free(&a);
    kt_free(&b);
}

/* A kith 0.3 client says HELLO in protocol 3: this server answers WELCOME in protocol 3. A
 * peer state that remembered protocol 2 for it learns the higher one. */
/* proves NET-7 */
Test(proto4, a_kith_0_3_client_is_answered_in_protocol_3)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct wire w;
    kt_trust_pair(&a, &b);
    kith_docid da = kt_contact(a.r, "from a"), db = kt_contact(b.r, "from b");

    wire_init(&w);
    w.speer.proto_hint = 2;
    cr_assert_eq(wire_run(&w, a.r, b.r, 3, 0), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert(kith__session_finished(&w.cli));
    cr_assert_eq(w.srv.proto, 3);
    cr_assert_eq(w.speer.proto_hint, 3, "it speaks 3 now: dialled in 3");
    cr_assert(has_doc(b.r, &da));
    cr_assert(has_doc(a.r, &db));
    wire_free(&w);

    /* and one that speaks the newest clears the hint */
    wire_init(&w);
    w.speer.proto_hint = 3;
    cr_assert_eq(wire_run(&w, a.r, b.r, 0, 0), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert_eq(w.speer.proto_hint, 0);
    wire_free(&w);
    kt_free(&a);
    kt_free(&b);
}

/* A kith 0.4 server (protocol 4, whose HELLO has no proof digest and refuses a 12th element)
 * refuses a HELLO of protocol 5 for its version; the client says HELLO again in protocol 4
 * and they sync, with protocol 4's groups and proofs in every first batch; a kith 0.4
 * client is answered in protocol 4. */
/* proves NET-7, NET-35 */
Test(proto4, a_kith_0_4_peer_still_syncs_in_protocol_4)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct wire w;
    kt_trust_pair(&a, &b);
    kith_docid da = kt_contact(a.r, "from a"), db = kt_contact(b.r, "from b");

    wire_init(&w);
    cr_assert_eq(wire_run(&w, a.r, b.r, 0, 4), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert(kith__session_finished(&w.cli));
    cr_assert_eq(w.cli.proto, 4);
    cr_assert_eq(w.srv.proto, 4);
    cr_assert_eq(w.cpeer.proto_hint, 4, "remembered for the next dial");
    cr_assert(strstr(w.lines.text, "refused protocol 5"), "%s", w.lines.text);
    cr_assert(strstr(w.lines.text, "peer runs a newer kith (protocol 5, here 4)"), "%s",
              w.lines.text);
    cr_assert_null(strstr(w.lines.text, "refused protocol 4"), "%s", w.lines.text);
    cr_assert(has_doc(b.r, &da));
    cr_assert(has_doc(a.r, &db));
    wire_free(&w);

    wire_init(&w);
    kt_contact(b.r, "again");
    cr_assert_eq(wire_run(&w, a.r, b.r, 4, 0), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert_eq(w.srv.proto, 4, "a 0.4 client is answered in its protocol");
    cr_assert_null(strstr(w.lines.text, "refused protocol"), "%s", w.lines.text);
    expect_same_export(a.r, b.r);
    wire_free(&w);
    kt_free(&a);
    kt_free(&b);
}

/* ---- protocol 2 -------------------------------------------------------------------------- */

/* A kith 0.2 server refuses a HELLO of protocol 5, then of 4, then of 3, for its version; the
 * client says HELLO again one protocol lower each time on the same connection, and the two sync
 * both ways in protocol 2, without heads or clocks. The next dial starts in protocol 2 at once. */
/* proves NET-7 */
Test(proto2, a_kith_0_2_server_is_spoken_to_in_protocol_2)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct wire w;
    kt_trust_pair(&a, &b);
    kith_docid da = kt_contact(a.r, "from a"), db = kt_contact(b.r, "from b");

    wire_init(&w);
    cr_assert_eq(wire_run(&w, a.r, b.r, 0, 2), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert(kith__session_finished(&w.cli));
    cr_assert_eq(w.cli.proto, 2);
    cr_assert_eq(w.srv.proto, 2);
    cr_assert_eq(w.cli.stats.proto, 2);
    cr_assert_eq(w.cpeer.proto_hint, 2, "remembered for the next dial");
    cr_assert(strstr(w.lines.text, "refused protocol 5"), "%s", w.lines.text);
    cr_assert(strstr(w.lines.text, "refused protocol 4"), "%s", w.lines.text);
    cr_assert(strstr(w.lines.text, "refused protocol 3"), "%s", w.lines.text);
    cr_assert(strstr(w.lines.text, "peer runs a newer kith (protocol 5, here 2)"), "%s",
              w.lines.text);
    cr_assert(strstr(w.lines.text, "peer runs a newer kith (protocol 4, here 2)"), "%s",
              w.lines.text);
    cr_assert(strstr(w.lines.text, "peer runs a newer kith (protocol 3, here 2)"), "%s",
              w.lines.text);
    cr_assert(has_doc(b.r, &da));
    cr_assert(has_doc(a.r, &db));
    cr_assert_eq(peer_of(a.r, kith_replica_id(b.r)).clock_checked_ms, 0, "no clock in protocol 2");
    cr_assert_eq(peer_of(b.r, kith_replica_id(a.r)).clock_checked_ms, 0);
    wire_free(&w);

    /* dialled again: protocol 2 from the start, no refusal */
    wire_init(&w);
    kt_contact(a.r, "again");
    cr_assert_eq(wire_run(&w, a.r, b.r, 2, 2), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert_null(strstr(w.lines.text, "refused protocol"), "%s", w.lines.text);
    expect_same_export(a.r, b.r);
    wire_free(&w);
    kt_free(&a);
    kt_free(&b);
}

/* A kith 0.2 client says HELLO in protocol 2: this server answers WELCOME in protocol 2. */
/* proves NET-7 */
Test(proto2, a_kith_0_2_client_is_answered_in_protocol_2)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct wire w;
    kt_trust_pair(&a, &b);
    kith_docid da = kt_contact(a.r, "from a"), db = kt_contact(b.r, "from b");

    wire_init(&w);
    cr_assert_eq(wire_run(&w, a.r, b.r, 2, 0), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert(kith__session_finished(&w.cli));
    cr_assert_eq(w.srv.proto, 2);
    cr_assert(has_doc(b.r, &da));
    cr_assert(has_doc(a.r, &db));
    wire_free(&w);
    kt_free(&a);
    kt_free(&b);
}

/* ---- forks at the handshake -------------------------------------------------------------- */

/* Two replicas hold different histories of one origin at the same seqs and meet in protocol
 * 4 (one of them a kith 0.4): both find the fork at the handshake, log it once, and sync a
 * third origin all the same; the next session finds nothing new and still says it did not
 * converge. */
/* proves NET-25 */
Test(fork, found_at_equal_seqs_by_both_sides_and_logged_once)
{
    struct kt_replica a = kt_new(), b = kt_new(), e = kt_new(), c = kt_new();
    char *root = kt_tmpdir();
    struct wire w;

    kt_trust_pair(&a, &b);
    kt_trust_pair(&a, &e);
    kt_trust_pair(&b, &e);
    kt_trust_pair(&c, &b);
    kt_trust_pair(&c, &e);
    kt_contact(a.r, "before");
    kith_replica *copy = clone_of(&a, root, "copy");
    kt_contact(a.r, "branch one");
    kt_contact(copy, "branch two");
    apply_all(a.r, b.r);
    apply_all(copy, e.r);
    kith_docid dc = kt_contact(c.r, "honest c");
    apply_all(c.r, e.r);
    uint64_t origin = kith_replica_id(a.r);

    wire_init(&w);
    cr_assert_eq(wire_run(&w, b.r, e.r, 0, 4), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert_eq(w.cli.stats.forks, 1);
    cr_assert_eq(w.srv.stats.forks, 1);
    cr_assert(w.cli.diverged);
    kith_fork fb, fe;
    cr_assert_eq(forks_of(b.r, &fb), 1);
    cr_assert_eq(forks_of(e.r, &fe), 1);
    cr_assert_eq(fb.origin, origin);
    cr_assert_eq(fb.seen_from, kith_replica_id(e.r));
    cr_assert_eq(fb.source, KITH_FORK_HANDSHAKE);
    cr_assert_eq(fe.seen_from, kith_replica_id(b.r));
    cr_assert_eq(fb.seq, fe.seq, "equal seqs");
    cr_assert_arr_eq(fb.ours, fe.theirs, KITH_HASH_BYTES);
    cr_assert_arr_eq(fb.theirs, fe.ours, KITH_HASH_BYTES);
    cr_assert_eq(count(w.lines.text, "has forked"), 2, "%s", w.lines.text);
    cr_assert(has_doc(b.r, &dc), "the third origin synced past the fork");
    wire_free(&w);

    wire_init(&w);
    w.cpeer.proto_hint = 4;
    cr_assert_eq(wire_run(&w, b.r, e.r, 0, 4), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert_eq(w.cli.stats.forks, 0, "found once");
    cr_assert(w.cli.diverged, "still two histories");
    cr_assert_eq(count(w.lines.text, "has forked"), 0, "%s", w.lines.text);
    wire_free(&w);

    kith_close(copy);
    kt_rmtree(root);
    free(root);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
    kt_free(&e);
}

/* Protocol 5, unequal seqs: B holds the origin's other history only up to where A's goes on.
 * A finds the difference at the handshake (it holds more) and asks B for its history; B finds
 * it at the base of A's run (its first batch starts past the point where the two part) and
 * asks A for its history. One session: both hold the proof, the same winner, the fork settled
 * on each side; the third origin synced. */
/* proves NET-33, NET-34, FORK-19 */
Test(fork, proven_in_one_session_at_unequal_seqs)
{
    struct kt_replica a = kt_new(), b = kt_new(), x = kt_new(), c = kt_new();
    char *root = kt_tmpdir();
    struct wire w;

    kt_trust_pair(&x, &a);
    kt_trust_pair(&x, &b);
    kt_trust_pair(&a, &b);
    kt_trust_pair(&c, &a);
    kt_trust_pair(&c, &b);
    kt_contact(x.r, "shared one");
    kt_contact(x.r, "shared two");
    kith_replica *copy = clone_of(&x, root, "copy");
    kt_contact(x.r, "a's branch one");
    kt_contact(x.r, "a's branch two");
    kt_contact(x.r, "a's branch three");
    kt_contact(copy, "b's branch");
    apply_all(x.r, a.r);
    apply_all(copy, b.r);
    kith_docid dc = kt_contact(c.r, "honest c");
    apply_all(c.r, a.r);
    uint64_t origin = kith_replica_id(x.r);

    wire_init(&w);
    cr_assert_eq(wire_run(&w, b.r, a.r, 0, 0), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert(kith__session_finished(&w.cli));
    kith_fork fa, fb;
    cr_assert_eq(forks_of(a.r, &fa), 1);
    cr_assert_eq(forks_of(b.r, &fb), 1);
    cr_assert_eq(fa.origin, origin);
    cr_assert(fa.has_proof && fb.has_proof, "%s", w.lines.text);
    cr_assert_eq(memcmp(fa.winner, fb.winner, KITH_HASH_BYTES), 0);
    cr_assert_eq(fa.proof_seq, fb.proof_seq);
    cr_assert_eq(fb.source, KITH_FORK_BATCH);
    /* each side asked to prove it; the one whose branch lost asked once more, for the kept
     * history, so both end this one session with it */
    cr_assert_eq(count(w.lines.text, "asking for it"), 3, "%s", w.lines.text);
    cr_assert(has_doc(b.r, &dc));
    wire_free(&w);
    expect_same_export(a.r, b.r);

    /* the next session: nothing new */
    wire_init(&w);
    cr_assert_eq(wire_run(&w, b.r, a.r, 0, 0), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert_eq(w.cli.stats.forks, 0);
    cr_assert_eq(count(w.lines.text, "asking for it"), 0, "%s", w.lines.text);
    wire_free(&w);
    expect_same_export(a.r, b.r);

    kith_close(copy);
    kt_rmtree(root);
    free(root);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
    kt_free(&x);
}

/* Protocol 5 sends proofs only where the digests differ: two replicas holding the same proof
 * exchange no batch at all, where protocol 4 sends every proof in each side's first batch. */
/* proves NET-35, NET-32 */
Test(fork, proofs_travel_only_when_the_digests_differ)
{
    struct kt_replica a = kt_new(), b = kt_new(), e = kt_new();
    char *root = kt_tmpdir();
    struct wire w;

    kt_trust_pair(&a, &b);
    kt_trust_pair(&a, &e);
    kt_trust_pair(&b, &e);
    kt_contact(a.r, "before");
    kith_replica *copy = clone_of(&a, root, "copy");
    kt_contact(a.r, "branch one");
    kt_contact(copy, "branch two");
    apply_all(a.r, b.r);
    apply_all(copy, b.r);
    apply_all(a.r, b.r);
    apply_all(copy, b.r);
    apply_all(b.r, e.r); /* e absorbs b's proof and takes the kept branch */
    kith_fork fb, fe;
    cr_assert_eq(forks_of(b.r, &fb), 1);
    cr_assert_eq(forks_of(e.r, &fe), 1);
    cr_assert(fb.has_proof && fe.has_proof);

    wire_init(&w);
    cr_assert_eq(wire_run(&w, b.r, e.r, 0, 0), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert(kith__session_finished(&w.cli));
    cr_assert_eq(w.cli.proto, 5);
    cr_assert_arr_eq(w.cli.pdigest, w.srv.pdigest, KITH_HASH_BYTES, "the same proofs");
    cr_assert_eq(w.cli.stats.batches_sent, 0, "equal digests: no proofs sent");
    cr_assert_eq(w.srv.stats.batches_sent, 0);
    wire_free(&w);

    wire_init(&w);
    w.cpeer.proto_hint = 4;
    cr_assert_eq(wire_run(&w, b.r, e.r, 0, 4), KITH__SS_OPEN, "%s", w.cli.why);
    cr_assert_eq(w.cli.proto, 4);
    cr_assert_eq(w.cli.stats.batches_sent, 1, "protocol 4: every proof, every session");
    cr_assert_eq(w.srv.stats.batches_sent, 1);
    wire_free(&w);

    kith_close(copy);
    kt_rmtree(root);
    free(root);
    kt_free(&a);
    kt_free(&b);
    kt_free(&e);
}

/* ---- clocks ------------------------------------------------------------------------------ */

/* Each side records the other's clock; beyond the tolerance both name it once, with the
 * figure, and status says which way this clock is off. */
/* proves NET-26 */
Test(clock, offsets_recorded_and_named_beyond_the_tolerance)
{
    struct kt_replica a = kt_new(), b = kt_new();
    struct wire w;
    kt_trust_pair(&a, &b);

    /* within the tolerance: recorded, not named */
    kith__replica_set_clock_offset(b.r, 2000);
    wire_init(&w);
    cr_assert_eq(wire_run(&w, a.r, b.r, 0, 0), KITH__SS_OPEN, "%s", w.cli.why);
    kith_peer pb = peer_of(a.r, kith_replica_id(b.r)), pa = peer_of(b.r, kith_replica_id(a.r));
    cr_assert(pb.clock_checked_ms != 0 && pa.clock_checked_ms != 0);
    cr_assert(pb.clock_offset_ms > 1500 && pb.clock_offset_ms < 2500, "%lld",
              (long long)pb.clock_offset_ms);
    cr_assert(pa.clock_offset_ms < -1500 && pa.clock_offset_ms > -2500, "%lld",
              (long long)pa.clock_offset_ms);
    cr_assert_null(strstr(w.lines.text, "tolerance"), "%s", w.lines.text);
    wire_free(&w);

    /* 20 s ahead: named on both sides, once */
    kith__replica_set_clock_offset(b.r, 20000);
    for (int round = 0; round < 2; round++) {
        wire_init(&w);
        cr_assert_eq(wire_run(&w, a.r, b.r, 0, 0), KITH__SS_OPEN, "%s", w.cli.why);
        cr_assert_eq(count(w.lines.text, "more than the tolerance of 5 s"), round ? 0 : 2, "%s",
                     w.lines.text);
        if (!round) {
            cr_assert(strstr(w.lines.text, "its clock is 20 s ahead of this one's") ||
                          strstr(w.lines.text, "its clock is 19 s ahead of this one's"),
                      "%s", w.lines.text);
            cr_assert(strstr(w.lines.text, "behind of this one's"), "%s", w.lines.text);
        }
        wire_free(&w);
    }
    kith_status *st = NULL;
    cr_assert_eq(kith_status_get(a.r, &st), 0);
    cr_assert_eq(st->clock_peers, 1);
    cr_assert(st->clock_offset_ms < -19000 && st->clock_offset_ms > -21000, "%lld",
              (long long)st->clock_offset_ms);
    kith_status_free(st);
    cr_assert_eq(kith_status_get(b.r, &st), 0);
    cr_assert(st->clock_offset_ms > 19000, "b is the one ahead");
    kith_status_free(st);
    kt_free(&a);
    kt_free(&b);
}

/* ---- over the network -------------------------------------------------------------------- */

/* kith_on_fork: count the calls and keep the last fork told. */
struct told {
    int calls;
    kith_fork last;
};

static void
on_fork(void *ctx, const kith_fork *f)
{
    struct told *t = ctx;
    t->calls++;
    t->last = *f;
}

/* Wait (bounded) until r holds a proof of `origin`; the daemon applies in its own thread. */
static bool
wait_proof(kith_replica *r, kith_fork *out, int ms)
{
    int64_t end = kith__mono_ms() + ms;
    do {
        kith_fork f;
        if (forks_of(r, &f) == 1 && f.has_proof) {
            *out = f;
            return true;
        }
        nt_sleep_ms(2);
    } while (kith__mono_ms() < end);
    return false;
}

/* Issue #10's scenario: a replica's directory copied (key included), a different edit in
 * each copy, one branch given to B and the other to E by bundle; B syncs once with E's
 * daemon. Both find the fork at equal seqs, each asks the other for its history from a point
 * both hold (protocol 5), and each ends the session with the proof and the same winner, the
 * fork settled; a third origin's ops still flow. A third replica that never saw either
 * branch gets the proof in its next sync. */
/* proves NET-33, NET-34, NET-35, FORK-1, FORK-8, FORK-19, FORK-21 */
Test(fork, found_and_proven_over_the_network_at_equal_seqs)
{
    struct node e;
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new(), t = kt_new();
    char *root = kt_tmpdir();
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_sync_info info;
    struct told told = {0};

    node_init(&e);
    kt_trust_pair(&a, &b);
    kt_trust_pair(&a, &e.k);
    kt_trust_pair(&b, &e.k);
    kt_trust_pair(&c, &b);
    kt_trust_pair(&c, &e.k);
    kt_trust_pair(&a, &t);
    kt_trust_pair(&b, &t);
    kt_trust_pair(&c, &t);
    kt_trust_pair(&e.k, &t);
    kt_contact(a.r, "before");
    kith_replica *copy = clone_of(&a, root, "copy");
    kt_contact(a.r, "one edit");
    kt_contact(copy, "another edit");
    apply_all(a.r, b.r);
    apply_all(copy, e.k.r);
    kith_docid dc = kt_contact(c.r, "third origin");
    apply_all(c.r, e.k.r);
    kith_docid db = kt_contact(b.r, "from b");
    uint64_t origin = kith_replica_id(a.r);
    cr_assert_eq(kith_on_fork(b.r, on_fork, &told), 0);
    node_start(&e);
    kith_replica_pubkey(e.k.r, pk);

    int rc = kith_sync(b.r, e.ep, pk, 5000, &info);
    cr_assert_eq(rc, 0, "kith_sync: %s (%s)", kith_strerror(rc), kith_errmsg(b.r));
    cr_assert_eq(info.proto, KITH__WIRE_PROTO);
    cr_assert_eq(info.forks, 1);
    cr_assert_not(info.converged);
    kith_fork fb, fe;
    cr_assert_eq(forks_of(b.r, &fb), 1);
    cr_assert_eq(fb.origin, origin);
    cr_assert_eq(fb.seen_from, kith_replica_id(e.k.r));
    cr_assert_eq(fb.source, KITH_FORK_BATCH, "recorded from the fetched, signed history");
    cr_assert(fb.has_proof, "b proved it in the session");
    cr_assert_eq(told.calls, 1, "told once: the fork and its proof came in one commit");
    cr_assert_eq(told.last.origin, origin);
    cr_assert(told.last.has_proof);
    /* the daemon made its proof before it said DONE, which kith_sync waited for */
    cr_assert_eq(forks_of(e.k.r, &fe), 1);
    cr_assert(fe.has_proof, "the daemon ends the session with the proof too");
    cr_assert_eq(fe.seen_from, kith_replica_id(b.r));
    cr_assert_eq(memcmp(fe.winner, fb.winner, KITH_HASH_BYTES), 0, "one winner");
    cr_assert_eq(fe.proof_seq, fb.proof_seq);
    /* the side whose branch lost set it aside and fetched the kept one in the same session */
    cr_assert_eq(fb.holds, KITH_FORK_HOLDS_WINNER);
    cr_assert_eq(fe.holds, KITH_FORK_HOLDS_WINNER);
    cr_assert(has_doc(b.r, &dc), "the third origin's ops flowed");
    cr_assert(wait_doc(e.k.r, &db, 5000), "b's ops flowed");
    char *eb = kt_export(b.r), *ee = NULL;
    bool same = false;
    int64_t end = kith__mono_ms() + 5000;
    do {
        free(ee);
        ee = kt_export(e.k.r);
        same = strcmp(eb, ee) == 0;
        if (!same)
            nt_sleep_ms(2);
    } while (!same && kith__mono_ms() < end);
    cr_assert_str_eq(eb, ee, "one state after one session: the winning branch");
    free(eb);
    free(ee);

    /* again: nothing new to tell */
    rc = kith_sync(b.r, e.ep, pk, 5000, &info);
    cr_assert_eq(rc, 0);
    cr_assert_eq(info.forks, 0);
    cr_assert_eq(told.calls, 1);

    /* a third replica that never saw either branch: its next sync brings the proof */
    kith_fork ft;
    cr_assert_eq(forks_of(t.r, NULL), 0);
    rc = kith_sync(t.r, e.ep, pk, 5000, &info);
    cr_assert_eq(rc, 0, "kith_sync: %s (%s)", kith_strerror(rc), kith_errmsg(t.r));
    cr_assert(wait_proof(t.r, &ft, 5000));
    cr_assert_eq(ft.source, KITH_FORK_PROOF);
    cr_assert_eq(memcmp(ft.winner, fb.winner, KITH_HASH_BYTES), 0);

    node_stop(&e);
    node_free(&e);
    kith_close(copy);
    kt_rmtree(root);
    free(root);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
    kt_free(&t);
}

/* Heads are only the peer's word: a trusted peer whose HELLO names another chain head for an
 * honest origin is asked for that history (FETCH), and when it has none to show (it answers
 * with nothing, or with the origin's true history), nothing is recorded: no fork, no proof,
 * the origin still syncs. */
/* proves NET-33, FORK-20 */
Test(fork, a_peer_lying_about_heads_records_no_fork)
{
    struct node b;
    struct kt_replica x = kt_new(), h = kt_new();
    node_init(&b);
    kt_trust_pair(&x, &b.k);
    kt_trust_pair(&h, &b.k);
    kt_trust_pair(&h, &x);
    kt_contact(h.r, "honest one");
    kt_contact(h.r, "honest two");
    apply_all(h.r, x.r);
    apply_all(h.r, b.k.r);
    uint64_t honest = kith_replica_id(h.r);
    node_start(&b);

    for (int answer = 0; answer < 2; answer++) {
        struct raw raw;
        raw_open(&raw, &x, &b);
        uint8_t pk[KITH_PUBKEY_BYTES], digest[KITH_HASH_BYTES], *heads = NULL;
        struct kith__msg m;
        memset(&m, 0, sizeof m);
        kith_replica_pubkey(x.r, pk);
        cr_assert_eq(kith_schema_info(x.r, &m.schema_version, digest), 0);
        m.type = KITH__MSG_HELLO;
        m.proto = KITH__WIRE_PROTO;
        m.id = kith_replica_id(x.r);
        m.pk = pk;
        m.schema_digest = digest;
        cr_assert_eq(kith__heads_read(x.r, &m.vv, &heads), 0);
        bool forged = false;
        for (size_t i = 0; i < m.vv.len; i++)
            if (m.vv.entries[i].origin == honest) {
                heads[i * KITH_HASH_BYTES] ^= 0x55; /* the lie */
                forged = true;
            }
        cr_assert(forged);
        m.heads = heads;
        m.clock_ms = (uint64_t)kith__replica_now_ms(x.r);
        raw_send(&raw, &m);
        struct kith__msg w, f;
        raw_expect(&raw, KITH__MSG_WELCOME, 3000, &w);
        kith__wire_clear(&w);
        raw_expect(&raw, KITH__MSG_FETCH, 3000, &f);
        cr_assert_eq(f.origin, honest, "asked for the history the heads disagree on");
        kith__wire_clear(&f);
        struct kith__msg out;
        memset(&out, 0, sizeof out);
        out.type = KITH__MSG_FETCHED;
        out.origin = honest;
        kith_buf buf = {0};
        if (answer == 1) {
            /* the true history, from seq 1: nothing in it differs */
            kith_batch_opts opts = {0};
            cr_assert_eq(kith_batch_create(x.r, &opts, &buf, NULL), 0);
            out.data = buf.data;
            out.len = buf.len;
        }
        raw_send(&raw, &out);
        kith_free(buf.data);
        /* frames are handled in order: its PONG says the answer was applied */
        struct kith__msg ping, pong;
        memset(&ping, 0, sizeof ping);
        ping.type = KITH__MSG_PING;
        ping.nonce = 77;
        raw_send(&raw, &ping);
        raw_expect(&raw, KITH__MSG_PONG, 3000, &pong);
        cr_assert_eq(pong.nonce, 77);
        kith__wire_clear(&pong);
        raw_close(&raw);
        kith_vv_free(&m.vv);
        free(heads);
        cr_assert_eq(forks_of(b.k.r, NULL), 0, "no fork recorded on the peer's word");
    }
    node_stop(&b);
    cr_assert_eq(forks_of(b.k.r, NULL), 0);
    /* the honest origin still syncs */
    kith_docid d3 = kt_contact(h.r, "honest three");
    apply_all(h.r, b.k.r);
    cr_assert(has_doc(b.k.r, &d3));
    node_free(&b);
    kt_free(&x);
    kt_free(&h);
}

/* A fork proof reaches, over the network, a daemon that never saw either branch: the first
 * batch of a protocol-4 session carries it (NET-32), the daemon settles the fork (FORK-10)
 * and takes the winning branch, if the client holds it, and never the losing one. */
/* proves NET-32, FORK-9, FORK-10 */
Test(fork, the_proof_reaches_a_third_replica_over_the_network)
{
    struct node e;
    struct kt_replica a = kt_new(), b = kt_new();
    char *root = kt_tmpdir();
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_sync_info info;
    kith_fork fb, fe;

    node_init(&e);
    kt_trust_pair(&a, &b);
    kt_trust_pair(&a, &e.k);
    kt_trust_pair(&b, &e.k);
    kt_contact(a.r, "before");
    kith_replica *copy = clone_of(&a, root, "copy");
    kt_contact(a.r, "branch one");
    kt_contact(copy, "branch two");
    apply_all(a.r, b.r);
    apply_all(copy, b.r); /* b sees both: fork, proof, settled */
    apply_all(a.r, b.r);
    apply_all(copy, b.r);
    cr_assert_eq(forks_of(b.r, &fb), 1);
    cr_assert(fb.has_proof);
    cr_assert_eq(fb.holds, KITH_FORK_HOLDS_WINNER, "b took the winning branch");
    node_start(&e);
    kith_replica_pubkey(e.k.r, pk);

    int rc = kith_sync(b.r, e.ep, pk, 5000, &info);
    cr_assert_eq(rc, 0, "kith_sync: %s (%s)", kith_strerror(rc), kith_errmsg(b.r));
    cr_assert_eq(info.proto, KITH__WIRE_PROTO);
    /* the daemon applies in its own thread: wait, bounded, for the state to arrive */
    char *eb = kt_export(b.r), *ee = NULL;
    bool same = false;
    int64_t end = kith__mono_ms() + 5000;
    do {
        free(ee);
        ee = kt_export(e.k.r);
        same = strcmp(eb, ee) == 0;
        if (!same)
            nt_sleep_ms(2);
    } while (!same && kith__mono_ms() < end);
    cr_assert_str_eq(eb, ee, "one state: the winning branch, nothing of the other");
    cr_assert_eq(forks_of(e.k.r, &fe), 1);
    cr_assert(fe.has_proof);
    cr_assert_eq(fe.holds, KITH_FORK_HOLDS_WINNER);
    cr_assert_eq(fe.source, KITH_FORK_PROOF);
    cr_assert_eq(memcmp(fe.winner, fb.winner, KITH_HASH_BYTES), 0);
    free(eb);
    free(ee);

    node_stop(&e);
    node_free(&e);
    kith_close(copy);
    kt_rmtree(root);
    free(root);
    kt_free(&a);
    kt_free(&b);
}

/* A HELLO whose heads do not fit its vector is refused as malformed, and the daemon's replica
 * is unchanged: no fork, no clock, nothing else. */
/* proves NET-24 */
Test(fork, malformed_heads_refused_with_nothing_changed)
{
    struct node b;
    struct kt_replica x = kt_new();
    node_init(&b);
    kt_trust_pair(&x, &b.k);
    kt_contact(x.r, "x");
    kt_contact(b.k.r, "b");
    apply_all(x.r, b.k.r);
    char *before = kt_export(b.k.r);
    node_start(&b);
    struct raw raw;
    raw_open(&raw, &x, &b);

    uint8_t pk[KITH_PUBKEY_BYTES], digest[KITH_HASH_BYTES], *heads = NULL;
    kith_vv vv = {0};
    kith_replica_pubkey(x.r, pk);
    cr_assert_eq(kith_schema_info(x.r, NULL, digest), 0);
    cr_assert_eq(kith__heads_read(x.r, &vv, &heads), 0);
    cr_assert(vv.len >= 1);
    /* one head short, a head of 31 bytes, one too many */
    const size_t lens[] = {(vv.len - 1) * 32, vv.len * 32 - 1, (vv.len + 1) * 32};
    for (size_t i = 0; i < 3; i++) {
        msgpack_sbuffer sb;
        msgpack_packer p;
        uint8_t body[32 * 8] = {0};
        cr_assert_leq(lens[i], sizeof body);
        memcpy(body, heads, lens[i] < vv.len * 32 ? lens[i] : vv.len * 32);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&p, &sb, msgpack_sbuffer_write);
        cr_assert_eq(msgpack_pack_array(&p, 9), 0);
        cr_assert_eq(msgpack_pack_int(&p, KITH__MSG_HELLO), 0);
        cr_assert_eq(msgpack_pack_uint32(&p, 3), 0);
        cr_assert_eq(msgpack_pack_uint64(&p, kith_replica_id(x.r)), 0);
        cr_assert_eq(msgpack_pack_bin(&p, 32), 0);
        cr_assert_eq(msgpack_pack_bin_body(&p, pk, 32), 0);
        cr_assert_eq(msgpack_pack_uint64(&p, 0), 0);
        cr_assert_eq(msgpack_pack_bin(&p, 32), 0);
        cr_assert_eq(msgpack_pack_bin_body(&p, digest, 32), 0);
        cr_assert_eq(msgpack_pack_array(&p, 2 * vv.len), 0);
        for (size_t j = 0; j < vv.len; j++) {
            cr_assert_eq(msgpack_pack_uint64(&p, vv.entries[j].origin), 0);
            cr_assert_eq(msgpack_pack_uint64(&p, vv.entries[j].seq), 0);
        }
        cr_assert_eq(msgpack_pack_bin(&p, lens[i]), 0);
        cr_assert_eq(msgpack_pack_bin_body(&p, body, lens[i]), 0);
        cr_assert_eq(msgpack_pack_uint64(&p, 1), 0);
        raw_send_bytes(&raw, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
        struct kith__msg m;
        cr_assert(raw_recv(&raw, 3000, &m), "no answer");
        cr_assert_eq(m.type, KITH__MSG_REFUSE);
        cr_assert_eq(m.code, KITH_EMALFORMED, "%.*s", (int)m.reason_len, m.reason);
        kith__wire_clear(&m);
    }
    /* the well-formed HELLO after them is welcome: the refusals left nothing behind */
    raw_hello(&raw, KITH__WIRE_PROTO);
    struct kith__msg m;
    raw_expect(&raw, KITH__MSG_WELCOME, 3000, &m);
    cr_assert_eq(m.proto, KITH__WIRE_PROTO);
    cr_assert_eq(m.vv.len * KITH_HASH_BYTES > 0, true);
    kith__wire_clear(&m);
    raw_close(&raw);
    node_stop(&b);
    cr_assert_eq(forks_of(b.k.r, NULL), 0);
    char *after = kt_export(b.k.r);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    free(heads);
    kith_vv_free(&vv);
    node_free(&b);
    kt_free(&x);
}
