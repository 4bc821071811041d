/*
 * net_test.h — helpers of the net tests (test_net_sync.c, test_net_peers.c, test_discovery.c),
 * header-only so that each test file stays one translation unit: daemons as threads on ports
 * the kernel picked, waits that always end, exports compared, bulk and random writes, and a
 * raw client that speaks the wire protocol by hand (to send what a good peer never would).
 * Every helper asserts, so a test reads as its steps. KITH_TEST_LOG=7 shows the daemons' logs.
 */
#ifndef KITH_NET_TEST_H
#define KITH_NET_TEST_H

#include "kith_test.h"
#include "net.h"
#include "store.h"
#include "wire.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define NT_UNUSED __attribute__((unused))

#define NT_MAX_DIALERS 8

struct node {
    struct kt_replica k;
    char ep[64]; /* where it listens: "" until started; the last address after a stop */
    kith_serve_opts o;
    volatile int stop;
    volatile int listening;
    pthread_t th;
    int rc;
    bool running;
    struct node *dialers[NT_MAX_DIALERS]; /* nodes to tell this one's address when it binds */
    int ndialers;
};

static NT_UNUSED void
nt_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A TCP socket bound to a port on 127.0.0.1 and never listening, so that no process can
 * answer there while it is open: connections to ep are refused. Returns the fd to close. */
static NT_UNUSED int
nt_bound_port(char ep[64])
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(ep, 64, "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
    return fd;
}

static NT_UNUSED int
nt_log_level(void)
{
    const char *s = getenv("KITH_TEST_LOG");
    return s ? (int)strtol(s, NULL, 10) : KITH_LOG_ERROR;
}

static NT_UNUSED void
node_init(struct node *n)
{
    memset(n, 0, sizeof(*n));
    n->k = kt_new();
}

/* Record in `a` b's key with b's address (a dials b). */
static NT_UNUSED void
nt_record_address(struct node *a, struct node *b)
{
    uint8_t pb[KITH_PUBKEY_BYTES];
    kith_replica_pubkey(b->k.r, pb);
    cr_assert_eq(kith_trust_add(a->k.r, pb, NULL, b->ep), 0);
}

/* a dials b (a records b's key with its address); b trusts a. A daemon listens on a port the
 * kernel picks when it binds (no port is probed free and bound later, which another process
 * could take in between), so b's address reaches a when b starts, if it has not yet. */
static NT_UNUSED void
node_link(struct node *a, struct node *b)
{
    uint8_t pa[KITH_PUBKEY_BYTES], pb[KITH_PUBKEY_BYTES];
    kith_replica_pubkey(a->k.r, pa);
    kith_replica_pubkey(b->k.r, pb);
    cr_assert_eq(kith_trust_add(b->k.r, pa, NULL, NULL), 0);
    cr_assert_lt(b->ndialers, NT_MAX_DIALERS);
    b->dialers[b->ndialers++] = a;
    if (b->running)
        nt_record_address(a, b);
    else
        cr_assert_eq(kith_trust_add(a->k.r, pb, NULL, NULL), 0);
}

static void
nt_on_listen(void *arg, const char *endpoint)
{
    struct node *n = arg;
    snprintf(n->ep, sizeof(n->ep), "%s", endpoint);
    __atomic_store_n(&n->listening, 1, __ATOMIC_RELEASE);
}

static void *
nt_serve(void *arg)
{
    struct node *n = arg;
    n->rc = kith_serve(n->k.r, &n->o);
    return NULL;
}

/* Start n's daemon and return once it listens, on a port the kernel picks; every start (a
 * restart too) gets a fresh port, and the nodes that dial n are given the new address, as a
 * device that comes back on another port would announce itself. Binding the old port again
 * could race with any other process on the machine taking it meanwhile. */
static NT_UNUSED void
node_start(struct node *n)
{
    memset(&n->o, 0, sizeof(n->o));
    n->o.listen = "tcp://127.0.0.1:*";
    n->o.interval_ms = 1000;
    n->o.timeout_ms = 3000;
    n->o.log_level = nt_log_level();
    n->o.stop = &n->stop;
    n->o.on_listen = nt_on_listen;
    n->o.on_listen_arg = n;
    n->stop = 0;
    n->listening = 0;
    n->rc = -1;
    cr_assert_eq(pthread_create(&n->th, NULL, nt_serve, n), 0);
    n->running = true;
    int64_t end = kith__mono_ms() + 10000;
    while (!__atomic_load_n(&n->listening, __ATOMIC_ACQUIRE)) {
        if (kith__mono_ms() > end) {
            n->stop = 1;
            pthread_join(n->th, NULL);
            n->running = false;
            cr_assert_fail("daemon did not listen on %s: %s", n->o.listen, kith_errname(n->rc));
        }
        nt_sleep_ms(1);
    }
    for (int i = 0; i < n->ndialers; i++)
        nt_record_address(n->dialers[i], n);
}

static NT_UNUSED void
node_stop(struct node *n)
{
    if (!n->running)
        return;
    n->stop = 1;
    cr_assert_eq(pthread_join(n->th, NULL), 0);
    n->running = false;
    cr_assert_eq(n->rc, 0, "kith_serve returned %s", kith_errname(n->rc));
}

static NT_UNUSED void
node_free(struct node *n)
{
    node_stop(n);
    kt_free(&n->k);
}

/* Give r the schema version and digest `digest` (filled with `fill`), as the declaring code
 * stores them in meta ("schema_v", "schema"): what its handshakes then tell. */
static NT_UNUSED void
nt_set_schema(kith_replica *r, uint64_t version, uint8_t fill)
{
    uint8_t digest[KITH_HASH_BYTES];
    MDB_txn *txn;
    memset(digest, fill, sizeof digest);
    cr_assert_eq(kith__mdb_begin(r, 0, &txn), 0);
    cr_assert_eq(kith__meta_put_u64(r, txn, "schema_v", version), 0);
    cr_assert_eq(kith__meta_put(r, txn, "schema", digest, sizeof digest), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(r);
}

/* What r's record of peer `id` says of its schema: asserts the version and the digest's fill. */
static NT_UNUSED void
nt_expect_peer_schema(kith_replica *r, uint64_t id, uint64_t version, uint8_t fill)
{
    uint8_t want[KITH_HASH_BYTES];
    kith_peer *peers = NULL;
    size_t n = 0;
    bool found = false;
    memset(want, fill, sizeof want);
    cr_assert_eq(kith_peers_get(r, &peers, &n), 0);
    for (size_t i = 0; i < n; i++) {
        if (peers[i].id != id)
            continue;
        found = true;
        cr_expect_eq(peers[i].schema_version, version, "peer %016llx: version %llu, not %llu",
                     (unsigned long long)id, (unsigned long long)peers[i].schema_version,
                     (unsigned long long)version);
        cr_expect_arr_eq(peers[i].schema_digest, want, sizeof want, "peer %016llx: digest",
                         (unsigned long long)id);
    }
    kith_peers_free(peers, n);
    cr_assert(found, "no record of peer %016llx", (unsigned long long)id);
}

static NT_UNUSED void
expect_same_export(kith_replica *a, kith_replica *b)
{
    char *x = kt_export(a), *y = kt_export(b);
    cr_assert_str_eq(x, y);
    free(x);
    free(y);
}

static NT_UNUSED bool
wait_converged(struct node **nodes, int n, int ms)
{
    int64_t end = kith__mono_ms() + ms;
    do {
        char *first = kt_export(nodes[0]->k.r);
        bool same = true;
        for (int i = 1; i < n && same; i++) {
            char *e = kt_export(nodes[i]->k.r);
            same = strcmp(first, e) == 0;
            free(e);
        }
        free(first);
        if (same)
            return true;
        nt_sleep_ms(50);
    } while (kith__mono_ms() < end);
    return false;
}

static NT_UNUSED bool
has_doc(kith_replica *r, const kith_docid *doc)
{
    kith_txn *t;
    cr_assert_eq(kith_txn_begin(r, KITH_TXN_READ, &t), 0);
    int rc = kith_doc_exists(t, "contacts", doc);
    kith_txn_abort(&t);
    cr_assert(rc >= 0);
    return rc == 1;
}

static NT_UNUSED bool
wait_doc(kith_replica *r, const kith_docid *doc, int ms)
{
    int64_t end = kith__mono_ms() + ms;
    do {
        if (has_doc(r, doc))
            return true;
        nt_sleep_ms(2);
    } while (kith__mono_ms() < end);
    return false;
}

/* About `nops` ops in transactions of ~100: contacts with a name and an email. */
static NT_UNUSED void
add_ops(kith_replica *r, int nops, int tag)
{
    int made = 0;
    while (made < nops) {
        kith_txn *t;
        cr_assert_eq(kith_txn_begin(r, KITH_TXN_WRITE, &t), 0);
        for (int i = 0; i < 33 && made < nops; i++) {
            kith_docid d;
            char name[48];
            snprintf(name, sizeof(name), "contact %d-%d", tag, made);
            kith_value v = {.type = KITH_TYPE_STRING};
            v.u.s.ptr = name;
            v.u.s.len = strlen(name);
            cr_assert_eq(kith_doc_create(t, "contacts", &d), 0);
            cr_assert_eq(kith_field_set(t, "contacts", &d, "name", &v), 0);
            char mail[64];
            snprintf(mail, sizeof(mail), "c%d.%d@example.org", tag, made);
            kith_value e = {.type = KITH_TYPE_STRING};
            e.u.s.ptr = mail;
            e.u.s.len = strlen(mail);
            cr_assert_eq(kith_field_set(t, "contacts", &d, "email", &e), 0);
            made += 3;
        }
        cr_assert_eq(kith_txn_commit(&t), 0);
    }
}

/* Random writes spread over the nodes while their daemons run: new contacts, and edits of
 * contacts made anywhere (concurrent edits included), with short pauses between. */
static NT_UNUSED void
random_writes(struct node **nodes, int n, int writes, uint64_t *st)
{
    kith_docid *docs = calloc((size_t)writes + 1, sizeof(*docs));
    int ndocs = 0;
    cr_assert(docs);
    for (int w = 0; w < writes; w++) {
        kith_replica *r = nodes[kt_below(st, (uint64_t)n)]->k.r;
        char text[48];
        snprintf(text, sizeof(text), "w%d@example.org", w);
        if (ndocs == 0 || kt_below(st, 3) == 0) {
            docs[ndocs++] = kt_contact(r, text);
        } else {
            kith_docid *d = &docs[kt_below(st, (uint64_t)ndocs)];
            if (has_doc(r, d))
                kt_set_str(r, "contacts", d, kt_below(st, 2) ? "email" : "notes", text);
        }
        if (kt_below(st, 4) == 0)
            nt_sleep_ms((int)kt_below(st, 20));
    }
    free(docs);
}

/* ---- a raw client speaking the wire protocol by hand --------------------------------- */

struct raw {
    void *zctx, *sock;
    struct kt_replica *x;
};

static NT_UNUSED void
raw_open_ep(struct raw *raw, struct kt_replica *x, kith_replica *server, const char *ep, bool limit)
{
    uint8_t pub[32], sec[32], srv[32], pk[KITH_PUBKEY_BYTES];
    raw->x = x;
    raw->zctx = zmq_ctx_new();
    cr_assert(raw->zctx);
    cr_assert_eq(kith_curve_keys(x->r, pub, sec), 0);
    kith_replica_pubkey(server, pk);
    cr_assert_eq(kith_curve_public(pk, srv), 0);
    if (limit) {
        cr_assert_eq(kith__client_socket(raw->zctx, pub, sec, srv, ep, NULL, &raw->sock), 0);
    } else {
        int linger = 0;
        raw->sock = zmq_socket(raw->zctx, ZMQ_DEALER);
        cr_assert(raw->sock);
        cr_assert_eq(zmq_setsockopt(raw->sock, ZMQ_LINGER, &linger, sizeof(linger)), 0);
        cr_assert_eq(zmq_setsockopt(raw->sock, ZMQ_CURVE_SERVERKEY, srv, 32), 0);
        cr_assert_eq(zmq_setsockopt(raw->sock, ZMQ_CURVE_PUBLICKEY, pub, 32), 0);
        cr_assert_eq(zmq_setsockopt(raw->sock, ZMQ_CURVE_SECRETKEY, sec, 32), 0);
        cr_assert_eq(zmq_connect(raw->sock, ep), 0);
    }
}

static NT_UNUSED void
raw_open(struct raw *raw, struct kt_replica *x, struct node *server)
{
    raw_open_ep(raw, x, server->k.r, server->ep, true);
}

static NT_UNUSED void
raw_close(struct raw *raw)
{
    zmq_close(raw->sock);
    zmq_ctx_term(raw->zctx);
}

static NT_UNUSED void
raw_send_bytes(struct raw *raw, const void *p, size_t n)
{
    cr_assert_eq(zmq_send(raw->sock, p, n, 0), (int)n);
}

static NT_UNUSED void
raw_send(struct raw *raw, const struct kith__msg *m)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(kith__wire_encode(m, &sb), 0);
    raw_send_bytes(raw, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* HELLO as x, speaking protocol `proto` and telling x's schema (kith_schema_info); in
 * protocol 3 with x's chain heads and clock. A HELLO of a protocol this kith does not speak
 * is the version alone ([1, proto], wire.h). */
static NT_UNUSED void
raw_hello(struct raw *raw, uint32_t proto)
{
    struct kith__msg m;
    uint8_t pk[KITH_PUBKEY_BYTES], digest[KITH_HASH_BYTES], *heads = NULL;
    memset(&m, 0, sizeof(m));
    kith_replica_pubkey(raw->x->r, pk);
    cr_assert_eq(kith_schema_info(raw->x->r, &m.schema_version, digest), 0);
    m.type = KITH__MSG_HELLO;
    m.proto = proto;
    m.id = kith_replica_id(raw->x->r);
    m.pk = pk;
    m.schema_digest = digest;
    cr_assert_eq(kith__heads_read(raw->x->r, &m.vv, &heads), 0);
    m.heads = heads;
    m.clock_ms = (uint64_t)kith__replica_now_ms(raw->x->r);
    raw_send(raw, &m);
    kith_vv_free(&m.vv);
    free(heads);
}

/* HELLO as x exactly as a kith of protocol 1 sends it: [1, 1, id, pk, fingerprint, vv]. */
static NT_UNUSED void
raw_hello_v1(struct raw *raw)
{
    uint8_t pk[KITH_PUBKEY_BYTES], fp[KITH_HASH_BYTES];
    msgpack_sbuffer sb;
    msgpack_packer p;
    kith_vv vv;
    kith_replica_pubkey(raw->x->r, pk);
    kith_schema_fingerprint(fp);
    cr_assert_eq(kith_vv_get(raw->x->r, &vv), 0);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&p, &sb, msgpack_sbuffer_write);
    cr_assert_eq(msgpack_pack_array(&p, 6), 0);
    cr_assert_eq(msgpack_pack_int(&p, KITH__MSG_HELLO), 0);
    cr_assert_eq(msgpack_pack_uint32(&p, 1), 0);
    cr_assert_eq(msgpack_pack_uint64(&p, kith_replica_id(raw->x->r)), 0);
    cr_assert_eq(msgpack_pack_bin(&p, sizeof pk), 0);
    cr_assert_eq(msgpack_pack_bin_body(&p, pk, sizeof pk), 0);
    cr_assert_eq(msgpack_pack_bin(&p, sizeof fp), 0);
    cr_assert_eq(msgpack_pack_bin_body(&p, fp, sizeof fp), 0);
    cr_assert_eq(msgpack_pack_array(&p, 2 * vv.len), 0);
    for (size_t i = 0; i < vv.len; i++) {
        cr_assert_eq(msgpack_pack_uint64(&p, vv.entries[i].origin), 0);
        cr_assert_eq(msgpack_pack_uint64(&p, vv.entries[i].seq), 0);
    }
    kith_vv_free(&vv);
    raw_send_bytes(raw, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

/* The next message within ms, or false. */
static NT_UNUSED bool
raw_recv(struct raw *raw, int ms, struct kith__msg *out)
{
    zmq_pollitem_t it = {raw->sock, 0, ZMQ_POLLIN, 0};
    memset(out, 0, sizeof(*out));
    if (zmq_poll(&it, 1, ms) <= 0)
        return false;
    zmq_msg_t m;
    zmq_msg_init(&m);
    cr_assert(zmq_msg_recv(&m, raw->sock, 0) >= 0);
    /* copy: the message's views must outlive the zmq_msg */
    size_t n = zmq_msg_size(&m);
    static uint8_t *keep[64];
    static int nkeep;
    uint8_t *copy = malloc(n);
    cr_assert(copy);
    memcpy(copy, zmq_msg_data(&m), n);
    zmq_msg_close(&m);
    free(keep[nkeep % 64]);
    keep[nkeep++ % 64] = copy;
    cr_assert_eq(kith__wire_decode(copy, n, out), 0);
    return true;
}

/* Skip PONG/DONE/ACK/BATCH until a message of `type` (asserts it comes within ms). */
static NT_UNUSED void
raw_expect(struct raw *raw, int type, int ms, struct kith__msg *out)
{
    int64_t end = kith__mono_ms() + ms;
    for (;;) {
        int64_t left = end - kith__mono_ms();
        cr_assert(left > 0, "no %s within %d ms", kith__wire_name(type), ms);
        cr_assert(raw_recv(raw, (int)left, out), "no %s within %d ms", kith__wire_name(type), ms);
        if (out->type == type)
            return;
        cr_assert(out->type != KITH__MSG_REFUSE, "refused: %.*s", (int)out->reason_len,
                  out->reason);
        kith__wire_clear(out);
    }
}

#endif /* KITH_NET_TEST_H */
