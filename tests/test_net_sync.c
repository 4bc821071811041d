/*
 * test_net_sync.c — sync over real sockets on 127.0.0.1 between real LMDB replicas
 * (spec/protocol.md): kith_sync against a daemon, both ways, to identical exports; daemons
 * pushing a write within a second; a chain A–B–C relaying; 3 and 5 daemons with random writes
 * and random connections converging; refusals (untrusted key, protocol version, schema) with
 * the replica unchanged. Bad peers and crashes are in test_net_peers.c.
 *
 * Daemons run as threads (kith_serve with a stop flag), each on a port taken from the kernel
 * (bind to port 0, read it, close). Every wait is bounded; KITH_SEED replays the random ones.
 */
#include "kith_test.h"
#include "net.h"
#include "net_test.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

/* proves NET-8, NET-9, NET-10 */
Test(sync, two_replicas_sync_both_ways)
{
    struct node b;
    struct kt_replica a = kt_new();
    node_init(&b);
    kt_trust_pair(&a, &b.k);
    kith_docid ca = kt_contact(a.r, "Ada");
    kith_docid cb = kt_contact(b.k.r, "Grace");
    kt_set_str(a.r, "contacts", &ca, "email", "ada@example.org");
    kt_set_str(b.k.r, "contacts", &cb, "phone", "+44 1");
    node_start(&b);

    kith_sync_info info;
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_replica_pubkey(b.k.r, pk);
    int rc = kith_sync(a.r, b.ep, pk, 5000, &info);
    cr_assert_eq(rc, 0, "kith_sync: %s", kith_strerror(rc));
    cr_assert(info.converged);
    cr_assert_eq(info.peer_id, kith_replica_id(b.k.r));
    cr_assert(info.ops_sent > 0 && info.ops_received > 0);
    cr_assert(info.batches_sent >= 1 && info.batches_received >= 1);
    expect_same_export(a.r, b.k.r);

    /* again: nothing to send, still converged, nothing sent twice */
    rc = kith_sync(a.r, b.ep, pk, 5000, &info);
    cr_assert_eq(rc, 0);
    cr_assert(info.converged);
    cr_assert_eq(info.ops_sent, 0);
    cr_assert_eq(info.ops_received, 0);

    /* the peer record says what the peer acknowledged */
    kith_peer *peers;
    size_t n;
    cr_assert_eq(kith_peers_get(a.r, &peers, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert(peers[0].last_sync_ms > 0);
    cr_assert_str_eq(peers[0].last_error, "");
    cr_assert_eq(peers[0].pending_ops, 0);
    kith_peers_free(peers, n);

    node_stop(&b);
    node_free(&b);
    kt_free(&a);
}

Test(sync, key_taken_from_the_peer_record)
{
    struct node b;
    struct kt_replica a = kt_new();
    uint8_t pk[KITH_PUBKEY_BYTES];
    node_init(&b);
    kt_trust_pair(&a, &b.k);
    kith_replica_pubkey(b.k.r, pk);
    kt_contact(a.r, "Ada");
    node_start(&b);
    cr_assert_eq(kith_trust_add(a.r, pk, "b", b.ep), 0);
    kith_sync_info info;
    cr_assert_eq(kith_sync(a.r, b.ep, NULL, 5000, &info), 0);
    cr_assert(info.converged);
    /* an address with no trusted key */
    cr_assert_eq(kith_sync(a.r, "tcp://127.0.0.1:1", NULL, 500, NULL), KITH_EUNTRUSTED);
    node_stop(&b);
    expect_same_export(a.r, b.k.r);
    node_free(&b);
    kt_free(&a);
}

/* proves NET-3, NET-4 */
Test(sync, untrusted_client_gets_nothing)
{
    struct node b;
    struct kt_replica c = kt_new();
    uint8_t pk[KITH_PUBKEY_BYTES];
    node_init(&b);
    kt_contact(b.k.r, "secret");
    kt_contact(c.r, "intruder");
    /* c trusts b, b does not trust c */
    kith_replica_pubkey(b.k.r, pk);
    cr_assert_eq(kith_trust_add(c.r, pk, NULL, NULL), 0);
    char *before = kt_export(b.k.r);
    char *c_before = kt_export(c.r);
    node_start(&b);
    int64_t t0 = kith__mono_ms();
    int rc = kith_sync(c.r, b.ep, pk, 3000, NULL);
    cr_assert(rc == KITH_EUNTRUSTED || rc == KITH_ETIMEDOUT, "rc %s", kith_errname(rc));
    cr_assert(kith__mono_ms() - t0 < 3500);
    if (rc == KITH_EUNTRUSTED)
        cr_assert(strstr(kith_errmsg(c.r), "not trusted there"), "%s", kith_errmsg(c.r));
    node_stop(&b);
    char *after = kt_export(b.k.r);
    char *c_after = kt_export(c.r);
    cr_assert_str_eq(before, after);
    cr_assert_str_eq(c_before, c_after);
    free(before);
    free(after);
    free(c_before);
    free(c_after);
    node_free(&b);
    kt_free(&c);
}

Test(sync, untrusted_server_is_not_contacted)
{
    struct node b;
    struct kt_replica a = kt_new();
    uint8_t pk[KITH_PUBKEY_BYTES];
    node_init(&b);
    kith_replica_pubkey(b.k.r, pk);
    /* refused before any connection, so no daemon needs to listen there */
    cr_assert_eq(kith_sync(a.r, "tcp://127.0.0.1:1", pk, 500, NULL), KITH_EUNTRUSTED);
    node_free(&b);
    kt_free(&a);
}

/* proves NET-13 */
Test(sync, silence_times_out)
{
    /* a port where nobody listens: the session waits timeout_ms, then gives up */
    struct kt_replica a = kt_new(), b = kt_new();
    uint8_t pk[KITH_PUBKEY_BYTES];
    char ep[64];
    kt_trust_pair(&a, &b);
    kith_replica_pubkey(b.r, pk);
    int held = nt_bound_port(ep); /* bound, never listening: nobody can answer there */
    int64_t t0 = kith__mono_ms();
    cr_assert_eq(kith_sync(a.r, ep, pk, 600, NULL), KITH_ETIMEDOUT);
    int64_t took = kith__mono_ms() - t0;
    cr_assert(strstr(kith_errmsg(a.r), "no answer from tcp://127.0.0.1:"), "errmsg: %s",
              kith_errmsg(a.r));
    cr_assert(took >= 550 && took < 2000, "took %lld ms", (long long)took);
    kith_peer *peers;
    size_t n;
    cr_assert_eq(kith_peers_get(a.r, &peers, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert(peers[0].failures >= 1);
    cr_assert(peers[0].last_error[0] != '\0');
    kith_peers_free(peers, n);
    close(held);
    kt_free(&a);
    kt_free(&b);
}

/* proves NET-8 */
Test(sync, many_ops_in_bounded_batches)
{
    struct node b;
    struct kt_replica a = kt_new();
    uint8_t pk[KITH_PUBKEY_BYTES];
    node_init(&b);
    kt_trust_pair(&a, &b.k);
    int nops = 2 * (int)KITH__WIRE_BATCH_OPS + 1000; /* three batches at least */
    add_ops(a.r, nops, 1);
    node_start(&b);
    kith_replica_pubkey(b.k.r, pk);
    kith_sync_info info;
    int rc = kith_sync(a.r, b.ep, pk, 10000, &info);
    cr_assert_eq(rc, 0, "%s", kith_strerror(rc));
    cr_assert(info.converged);
    cr_assert(info.batches_sent >= 3, "%llu batches", (unsigned long long)info.batches_sent);
    cr_assert(info.ops_sent >= (uint64_t)nops);
    node_stop(&b);
    expect_same_export(a.r, b.k.r);
    node_free(&b);
    kt_free(&a);
}

/* Stream everything `to` lacks from `from` as a session does, in batches asked for 1 to 8 ops
 * (at random): since = what `to` holds, from the cursor where the last batch ended. Returns the
 * batch count. */
static int
stream_in_small_batches(kith_replica *from, kith_replica *to, uint64_t *st)
{
    kith_batch_opts opts;
    kith_vv have = {0, NULL};
    int batches = 0;
    memset(&opts, 0, sizeof(opts));
    for (bool more = true; more; batches++) {
        kith_batch_info info;
        kith_apply_info ai;
        kith_buf buf = {NULL, 0};
        cr_assert(batches < 100000, "the stream does not end");
        cr_assert_eq(kith_vv_get(to, &have), 0);
        opts.since = &have;
        opts.max_ops = 1 + kt_below(st, 8);
        int rc = kith_batch_create(from, &opts, &buf, &info);
        cr_assert_eq(rc, 0, "batch create: %s (%s)", kith_strerror(rc), kith_errmsg(from));
        if (info.ops > 0) {
            rc = kith_batch_apply(to, buf.data, buf.len, &ai);
            cr_assert_eq(rc, 0, "batch apply: %s (%s)", kith_strerror(rc), kith_errmsg(to));
        }
        kith_free(buf.data);
        kith_vv_free(&have);
        opts.cursor = info.next_cursor;
        more = info.has_more;
    }
    return batches;
}

/* Commits of 1..3 field writes on a random one of a replica's contacts. */
static void
random_commit(kith_replica *r, const kith_docid *docs, int ndocs, uint64_t *st)
{
    static const char *const fields[] = {"name", "phone", "notes", "company"};
    kith_txn *t = kt_wbegin(r);
    int n = 1 + (int)kt_below(st, 3);
    for (int i = 0; i < n; i++) {
        char v[32];
        snprintf(v, sizeof(v), "v%llu", (unsigned long long)kt_next(st) % 100000);
        kith_value val = kt_str(v);
        const kith_docid *doc = &docs[kt_below(st, (uint64_t)ndocs)];
        int rc = kith_field_set(t, "contacts", doc, fields[kt_below(st, 4)], &val);
        cr_assert_eq(rc, 0, "%s (%s)", kith_strerror(rc), kith_errmsg(r));
    }
    kt_commit(t);
}

/* A relay's apply order interleaves origins, and a stream from it stops anywhere: every batch
 * must still hold each origin's commits contiguously, ending at signed heads, skipping what the
 * receiver holds (read from the log with a cursor per origin: steps, searches after a gap). */
Test(sync, relay_streams_interleaved_origins_in_small_batches)
{
    uint64_t seed = kt_seed(), st = seed;
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new(), d = kt_new();
    kt_trust_pair(&a, &b);
    kt_trust_pair(&a, &c);
    kt_trust_pair(&a, &d);
    kt_trust_pair(&b, &c);
    kt_trust_pair(&b, &d);
    kt_trust_pair(&c, &d);
    kith_docid da[4], dc[4];
    for (int i = 0; i < 4; i++) {
        da[i] = kt_contact(a.r, "from a");
        dc[i] = kt_contact(c.r, "from c");
    }
    int rounds = kt_cases(40);
    for (int i = 0; i < rounds; i++) {
        /* b hears a and c in turns, writes itself now and then: its order interleaves all */
        for (int k = (int)kt_below(&st, 3); k >= 0; k--)
            random_commit(a.r, da, 4, &st);
        (void)kt_sync(&a, &b);
        for (int k = (int)kt_below(&st, 3); k >= 0; k--)
            random_commit(c.r, dc, 4, &st);
        (void)kt_sync(&c, &b);
        if (kt_below(&st, 3) == 0)
            random_commit(b.r, da, 4, &st);
        /* d hears part of a directly, so the stream from b skips some of a's commits */
        if (i == rounds / 2)
            (void)kt_sync(&a, &d);
    }
    int batches = stream_in_small_batches(b.r, d.r, &st);
    cr_assert(batches > 1, "KITH_SEED=%llu", (unsigned long long)seed);
    char *x = kt_export(b.r), *y = kt_export(d.r);
    cr_assert_str_eq(x, y, "d differs from b (KITH_SEED=%llu)", (unsigned long long)seed);
    free(x);
    free(y);
    kith_verify_report rep;
    cr_assert_eq(kith_verify(d.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s (KITH_SEED=%llu)", rep.first_problem,
                 (unsigned long long)seed);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
    kt_free(&d);
}

/* proves NET-15 */
Test(daemon, push_reaches_the_peer_within_a_second)
{
    struct node a, b;
    node_init(&a);
    node_init(&b);
    node_link(&a, &b); /* a dials b */
    node_start(&b);
    node_start(&a);
    cr_assert(wait_converged((struct node *[]){&a, &b}, 2, 5000), "initial convergence");
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof(name), "pushed %d", i);
        int64_t t0 = kith__mono_ms();
        kith_docid c = kt_contact(a.k.r, name);
        cr_assert(wait_doc(b.k.r, &c, 1000), "write %d not on b within 1 s", i);
        int64_t t1 = kith__mono_ms();
        cr_log_info("push %d: %lld ms", i, (long long)(t1 - t0));
        /* and the other way, over the same connection */
        kith_docid d = kt_contact(b.k.r, name);
        cr_assert(wait_doc(a.k.r, &d, 1000), "write %d not on a within 1 s", i);
    }
    node_stop(&a);
    node_stop(&b);
    expect_same_export(a.k.r, b.k.r);
    node_free(&a);
    node_free(&b);
}

/* Pending ops of `r`'s record of `peer` (UINT64_MAX if it has none). */
static uint64_t
pending_for(kith_replica *r, uint64_t peer)
{
    kith_peer *p;
    size_t n;
    uint64_t pending = UINT64_MAX;

    cr_assert_eq(kith_peers_get(r, &p, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (p[i].id == peer && p[i].last_sync_ms > 0)
            pending = p[i].pending_ops;
    kith_peers_free(p, n);
    return pending;
}

/*
 * proves NET-11: the peer record is written at most once a second, yet it catches up with
 * every acknowledged batch while the session stays open, not only when it closes.
 */
Test(daemon, peer_record_catches_up_while_connected)
{
    struct node a, b;
    node_init(&a);
    node_init(&b);
    node_link(&a, &b); /* a dials b */
    node_start(&b);
    node_start(&a);
    cr_assert(wait_converged((struct node *[]){&a, &b}, 2, 5000), "initial convergence");
    kith_docid last;
    for (int i = 0; i < 20; i++) {
        char name[32];
        snprintf(name, sizeof(name), "recorded %d", i);
        last = kt_contact(a.k.r, name);
        nt_sleep_ms(5);
    }
    cr_assert(wait_doc(b.k.r, &last, 2000), "the writes did not reach b");
    uint64_t pending = UINT64_MAX;
    for (int waited = 0; waited < 2500; waited += 50) {
        pending = pending_for(a.k.r, kith_replica_id(b.k.r));
        if (pending == 0)
            break;
        nt_sleep_ms(50);
    }
    cr_assert_eq(pending, 0, "a's record of b still shows %llu pending ops 2.5 s after b had them",
                 (unsigned long long)pending);
    node_stop(&a);
    node_stop(&b);
    node_free(&a);
    node_free(&b);
}

/* proves NET-14 (relay) */
Test(daemon, chain_relays_writes)
{
    struct node a, b, c;
    node_init(&a);
    node_init(&b);
    node_init(&c);
    /* a and c trust each other's key (so c accepts a's ops) but never connect */
    kt_trust_pair(&a.k, &c.k);
    node_link(&a, &b);
    node_link(&c, &b);
    node_start(&a);
    node_start(&b);
    node_start(&c);
    kith_docid x = kt_contact(a.k.r, "from a");
    cr_assert(wait_doc(c.k.r, &x, 5000), "a's write did not reach c through b");
    kith_docid y = kt_contact(c.k.r, "from c");
    cr_assert(wait_doc(a.k.r, &y, 5000), "c's write did not reach a through b");
    cr_assert(wait_converged((struct node *[]){&a, &b, &c}, 3, 5000));
    node_stop(&a);
    node_stop(&b);
    node_stop(&c);
    node_free(&a);
    node_free(&b);
    node_free(&c);
}

static void
random_mesh(int n, int writes)
{
    struct node nodes[5];
    struct node *ptr[5];
    uint64_t seed = kt_seed(), st = seed;
    for (int i = 0; i < n; i++) {
        node_init(&nodes[i]);
        ptr[i] = &nodes[i];
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            kt_trust_pair(&nodes[i].k, &nodes[j].k);
    /* a random spanning tree, plus a random extra edge or two */
    for (int i = 1; i < n; i++)
        node_link(&nodes[i], &nodes[kt_below(&st, (uint64_t)i)]);
    for (int e = 0; e < n / 2; e++) {
        int i = (int)kt_below(&st, (uint64_t)n), j = (int)kt_below(&st, (uint64_t)n);
        if (i != j)
            node_link(&nodes[i], &nodes[j]);
    }
    for (int i = 0; i < n; i++)
        node_start(&nodes[i]);
    random_writes(ptr, n, writes, &st);
    bool ok = wait_converged(ptr, n, 15000);
    for (int i = 0; i < n; i++)
        node_stop(&nodes[i]);
    cr_assert(ok, "%d daemons did not converge (KITH_SEED=%llu)", n, (unsigned long long)seed);
    for (int i = 0; i < n; i++) {
        kith_verify_report rep;
        cr_assert_eq(kith_verify(nodes[i].k.r, &rep), 0);
        cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
        node_free(&nodes[i]);
    }
}

Test(daemon, three_daemons_converge)
{
    random_mesh(3, kt_cases(60));
}

Test(daemon, five_daemons_converge)
{
    random_mesh(5, kt_cases(100));
}

/* proves NET-7 */
Test(refuse, protocol_version_but_never_schema)
{
    struct node b;
    struct kt_replica x = kt_new();
    node_init(&b);
    kt_trust_pair(&x, &b.k);
    node_start(&b);
    struct raw raw;
    raw_open(&raw, &x, &b);

    /* a kith of protocol 1, as it speaks: refused by its version, told to upgrade */
    struct kith__msg m;
    raw_hello_v1(&raw);
    raw_expect(&raw, KITH__MSG_REFUSE, 3000, &m);
    cr_assert_eq(m.code, KITH_EVERSION);
    cr_assert(memmem(m.reason, m.reason_len, "older (protocol 1, here 2 to 5): upgrade it", 43),
              "%.*s", (int)m.reason_len, m.reason);
    kith__wire_clear(&m);

    /* a newer kith: refused, told this side is the older one */
    raw_hello(&raw, KITH__WIRE_PROTO + 1);
    raw_expect(&raw, KITH__MSG_REFUSE, 3000, &m);
    cr_assert_eq(m.code, KITH_EVERSION);
    cr_assert(memmem(m.reason, m.reason_len, "the refusing kith is older", 26), "%.*s",
              (int)m.reason_len, m.reason);
    kith__wire_clear(&m);

    /* another schema is welcome on the same connection, and recorded */
    nt_set_schema(x.r, 41, 0x41);
    raw_hello(&raw, KITH__WIRE_PROTO);
    raw_expect(&raw, KITH__MSG_WELCOME, 3000, &m);
    cr_assert_eq(m.id, kith_replica_id(b.k.r));
    kith__wire_clear(&m);
    nt_expect_peer_schema(b.k.r, kith_replica_id(x.r), 41, 0x41);

    raw_close(&raw);
    node_stop(&b);
    node_free(&b);
    kt_free(&x);
}

/* proves NET-7: replicas whose schemas differ (one app version ahead of another) sync both
 * ways, and each keeps what the other said of its schema; a later handshake updates it */
Test(sync, different_schemas_sync_both_ways_and_are_recorded)
{
    struct node b;
    struct kt_replica a = kt_new();
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_sync_info info;
    node_init(&b);
    kt_trust_pair(&a, &b.k);
    nt_set_schema(a.r, 3, 0xa3);
    nt_set_schema(b.k.r, 4, 0xb4);
    kt_contact(a.r, "Ada");
    kt_contact(b.k.r, "Grace");
    node_start(&b);
    kith_replica_pubkey(b.k.r, pk);

    int rc = kith_sync(a.r, b.ep, pk, 5000, &info);
    cr_assert_eq(rc, 0, "kith_sync: %s (%s)", kith_strerror(rc), kith_errmsg(a.r));
    cr_assert(info.converged);
    cr_assert(info.ops_sent > 0 && info.ops_received > 0);
    expect_same_export(a.r, b.k.r);
    nt_expect_peer_schema(a.r, kith_replica_id(b.k.r), 4, 0xb4); /* the dialer, from WELCOME */
    nt_expect_peer_schema(b.k.r, kith_replica_id(a.r), 3, 0xa3); /* the daemon, from HELLO */

    /* a's app is upgraded past b's: the next handshake says so */
    nt_set_schema(a.r, 5, 0xa5);
    kt_contact(a.r, "Hedy");
    rc = kith_sync(a.r, b.ep, pk, 5000, &info);
    cr_assert_eq(rc, 0, "kith_sync: %s (%s)", kith_strerror(rc), kith_errmsg(a.r));
    cr_assert(info.converged);
    expect_same_export(a.r, b.k.r);
    nt_expect_peer_schema(b.k.r, kith_replica_id(a.r), 5, 0xa5);
    nt_expect_peer_schema(a.r, kith_replica_id(b.k.r), 4, 0xb4);

    node_stop(&b);
    node_free(&b);
    kt_free(&a);
}

/* proves NET-7: two daemons with different schemas, each dialling the other, converge and
 * record each other's schema */
Test(daemon, different_schemas_converge_and_are_recorded)
{
    struct node a, b;
    struct node *nodes[] = {&a, &b};
    node_init(&a);
    node_init(&b);
    node_link(&a, &b);
    node_link(&b, &a);
    nt_set_schema(a.k.r, 7, 0x07);
    nt_set_schema(b.k.r, 2, 0x02);
    kt_contact(a.k.r, "Ada");
    kt_contact(b.k.r, "Grace");
    node_start(&a);
    node_start(&b);
    cr_assert(wait_converged(nodes, 2, 10000), "the daemons did not converge");
    node_stop(&a);
    node_stop(&b);
    nt_expect_peer_schema(a.k.r, kith_replica_id(b.k.r), 2, 0x02);
    nt_expect_peer_schema(b.k.r, kith_replica_id(a.k.r), 7, 0x07);
    node_free(&a);
    node_free(&b);
}

Test(daemon, reconnects_when_the_peer_comes_back)
{
    struct node a, b;
    node_init(&a);
    node_init(&b);
    node_link(&a, &b);
    node_start(&b);
    node_start(&a);
    kith_docid x = kt_contact(a.k.r, "before");
    cr_assert(wait_doc(b.k.r, &x, 3000));
    node_stop(&b); /* b goes away; a's link fails and backs off */
    kith_docid y = kt_contact(a.k.r, "while b was away");
    nt_sleep_ms(600);
    cr_assert(!has_doc(b.k.r, &y));
    node_start(&b); /* same address */
    cr_assert(wait_doc(b.k.r, &y, 5000), "a did not reconnect to b");
    kith_docid z = kt_contact(b.k.r, "after");
    cr_assert(wait_doc(a.k.r, &z, 3000));
    node_stop(&a);
    node_stop(&b);
    expect_same_export(a.k.r, b.k.r);
    kith_peer *peers;
    size_t n;
    cr_assert_eq(kith_peers_get(a.k.r, &peers, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(peers[0].last_error, "");
    cr_assert_eq(peers[0].failures, 0);
    kith_peers_free(peers, n);
    node_free(&a);
    node_free(&b);
}

Test(daemon, silent_dialled_peer_does_not_block_others)
{
    struct node a, b;
    struct kt_replica mute = kt_new();
    uint8_t pk[KITH_PUBKEY_BYTES];
    char ep[64];
    node_init(&a);
    node_init(&b);
    /* a TCP listener that accepts and never speaks: a's link to it hangs in the handshake */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 4), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
    kith_replica_pubkey(mute.r, pk);
    cr_assert_eq(kith_trust_add(a.k.r, pk, "mute", ep), 0);
    node_link(&a, &b);
    node_start(&b);
    node_start(&a);
    kith_docid x = kt_contact(a.k.r, "through");
    cr_assert(wait_doc(b.k.r, &x, 1000), "the silent peer held up the good one");
    nt_sleep_ms(a.o.timeout_ms + 500); /* the mute link times out meanwhile */
    kith_docid y = kt_contact(a.k.r, "still through");
    cr_assert(wait_doc(b.k.r, &y, 1000));
    node_stop(&a);
    node_stop(&b);
    kith_peer *peers;
    size_t n;
    cr_assert_eq(kith_peers_get(a.k.r, &peers, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (peers[i].id == kith_replica_id(mute.r)) {
            cr_assert(peers[i].failures >= 1);
            cr_assert(peers[i].last_error[0] != '\0');
        }
    kith_peers_free(peers, n);
    close(fd);
    node_free(&a);
    node_free(&b);
    kt_free(&mute);
}

/* proves NET-14 */
Test(daemon, tells_systemd_it_is_ready)
{
    struct node b;
    char path[100];
    node_init(&b);
    cr_assert(snprintf(path, sizeof(path), "%s/notify", b.k.root) < (int)sizeof(path));
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(setenv("NOTIFY_SOCKET", path, 1), 0);
    node_start(&b);
    struct timeval tv = {3, 0};
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    char buf[64] = {0};
    ssize_t got = recv(fd, buf, sizeof(buf) - 1, 0);
    cr_assert(got > 0, "no datagram");
    cr_assert_str_eq(buf, "READY=1");
    node_stop(&b);
    memset(buf, 0, sizeof(buf));
    got = recv(fd, buf, sizeof(buf) - 1, 0);
    cr_assert(got > 0);
    cr_assert_str_eq(buf, "STOPPING=1");
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    node_free(&b);
}

Test(daemon, peers_option_names_key_and_address)
{
    struct node a, b;
    uint8_t pb[KITH_PUBKEY_BYTES];
    char hex[2 * KITH_PUBKEY_BYTES + 1], spec[256];
    const char *list[2];
    node_init(&a);
    node_init(&b);
    kt_trust_pair(&a.k, &b.k); /* keys only: no address recorded anywhere */
    kith_replica_pubkey(b.k.r, pb);
    kith__hex(pb, sizeof(pb), hex);
    node_start(&b);
    snprintf(spec, sizeof(spec), "%s@%s", hex, b.ep);
    list[0] = spec;
    list[1] = "tcp://127.0.0.1:1"; /* no key known for it: warned about, not dialled */
    memset(&a.o, 0, sizeof(a.o));
    a.o.listen = "tcp://127.0.0.1:*";
    a.o.peers = list;
    a.o.npeers = 2;
    a.o.interval_ms = 1000;
    a.o.timeout_ms = 3000;
    a.o.log_level = nt_log_level();
    a.o.stop = &a.stop;
    cr_assert_eq(pthread_create(&a.th, NULL, nt_serve, &a), 0);
    a.running = true;
    kith_docid x = kt_contact(a.k.r, "via --peer");
    cr_assert(wait_doc(b.k.r, &x, 3000));
    node_stop(&a);
    node_stop(&b);
    node_free(&a);
    node_free(&b);
}

/* proves NET-18 */
Test(daemon, revoked_peer_stops_receiving_at_once)
{
    struct node a, b;
    node_init(&a);
    node_init(&b);
    node_link(&a, &b);
    node_start(&b);
    node_start(&a);
    kith_docid x = kt_contact(b.k.r, "before");
    cr_assert(wait_doc(a.k.r, &x, 3000));
    /* b revokes a while a's session to b is open */
    cr_assert_eq(kith_trust_remove(b.k.r, kith_replica_id(a.k.r)), 0);
    nt_sleep_ms(300);
    kith_docid y = kt_contact(b.k.r, "not for a any more");
    kith_docid z = kt_contact(a.k.r, "not for b either");
    nt_sleep_ms(1500); /* past a reconnect and an anti-entropy tick */
    cr_assert(!has_doc(a.k.r, &y), "a revoked peer still got a write");
    cr_assert(!has_doc(b.k.r, &z), "a revoked peer's write got in");
    node_stop(&a);
    node_stop(&b);
    node_free(&a);
    node_free(&b);
}

struct log_lines {
    pthread_mutex_t lock;
    char text[8192];
    int count, over_level;
};

static void
collect_line(void *arg, int level, const char *line)
{
    struct log_lines *l = arg;
    pthread_mutex_lock(&l->lock);
    size_t used = strlen(l->text);
    snprintf(l->text + used, sizeof(l->text) - used, "%d %s\n", level, line);
    l->count++;
    if (level > KITH_LOG_INFO)
        l->over_level++;
    pthread_mutex_unlock(&l->lock);
}

static void
redirect_stderr(void)
{
    cr_redirect_stderr();
}

/* An app running the daemon in a thread gets its lines through on_log, not on stderr. */
Test(daemon, log_lines_go_to_the_callback, .init = redirect_stderr)
{
    struct node b;
    struct kt_replica a = kt_new();
    struct log_lines lines = {.lock = PTHREAD_MUTEX_INITIALIZER};
    uint8_t pk[KITH_PUBKEY_BYTES];
    uint8_t pa[KITH_PUBKEY_BYTES];
    node_init(&b);
    kt_trust_pair(&a, &b.k);
    kith_replica_pubkey(a.r, pa);
    cr_assert_eq(kith_trust_add(b.k.r, pa, "laptop", NULL), 0);
    kith_replica_pubkey(b.k.r, pk);
    kt_contact(a.r, "Ada");
    memset(&b.o, 0, sizeof(b.o));
    b.o.listen = "tcp://127.0.0.1:*";
    b.o.log_level = KITH_LOG_INFO;
    b.o.stop = &b.stop;
    b.o.on_listen = nt_on_listen;
    b.o.on_listen_arg = &b;
    b.o.on_log = collect_line;
    b.o.on_log_arg = &lines;
    cr_assert_eq(pthread_create(&b.th, NULL, nt_serve, &b), 0);
    b.running = true;
    while (!__atomic_load_n(&b.listening, __ATOMIC_ACQUIRE))
        nt_sleep_ms(1);
    cr_assert_eq(kith_sync(a.r, b.ep, pk, 5000, NULL), 0);
    node_stop(&b);
    fflush(stderr);
    pthread_mutex_lock(&lines.lock);
    cr_assert(strstr(lines.text, "6 replica ") && strstr(lines.text, " listening on tcp://"), "%s",
              lines.text);
    cr_assert_eq(lines.over_level, 0, "a line above log_level: %s", lines.text);
    /* a session's lines name the peer as its record does, and its close says how long it
     * took and how many ops went each way */
    cr_assert(strstr(lines.text, "peer laptop (") && strstr(lines.text, ") connected"), "%s",
              lines.text);
    cr_assert(strstr(lines.text, "session with laptop (") && strstr(lines.text, " ms: ") &&
                  strstr(lines.text, "; 0 ops sent, 2 received"),
              "%s", lines.text);
    cr_assert(lines.count >= 2, "%s", lines.text);
    pthread_mutex_unlock(&lines.lock);
    cr_assert_stderr_eq_str("", "the daemon wrote to stderr");
    node_free(&b);
    kt_free(&a);
}
