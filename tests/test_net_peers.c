/*
 * test_net_peers.c — bad peers and crashes (spec/protocol.md "Errors"): a trusted key
 * sending garbage, a forged signature, a tampered op, an out-of-order or replayed batch, an
 * ACK for nothing, a HELLO naming another key than the connection's, a multi-part message,
 * an oversized frame, or nothing at all: each is refused or timed out, the daemon's replica
 * does not change, and another peer is served all along. Trust removed is trust gone at the
 * next connection. A daemon killed with SIGKILL in the middle of a sync of tens of thousands
 * of ops restarts and converges: verify passes, and the resumed session sends exactly what
 * the replica lacked, nothing twice.
 */
#include "core.h"
#include "kith_test.h"
#include "net_test.h"

#include <criterion/criterion.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

/* A batch of everything x holds. */
static kith_buf
make_batch(kith_replica *x)
{
    kith_batch_opts o;
    kith_buf b = {NULL, 0};
    memset(&o, 0, sizeof(o));
    cr_assert_eq(kith_batch_create(x, &o, &b, NULL), 0);
    cr_assert(b.len > 0);
    return b;
}

/* The batch with one byte of its first head's signature, or of its first commit, flipped
 * (decoded and re-encoded with core's codec, so only that byte differs in meaning). */
static struct kith__wbuf
tamper(const kith_buf *in, bool signature)
{
    struct kith__batch bt;
    struct kith__arena ar = {0};
    struct kith__wbuf out = {0};
    cr_assert_eq(kith__batch_decode(in->data, in->len, &bt, &ar), 0);
    cr_assert(bt.nheads > 0 && bt.ncommits > 0);
    if (signature) {
        bt.heads[0].sig[7] ^= 0x20;
    } else {
        /* the last byte of the commit is inside its last op's value: a name letter */
        uint8_t *copy = malloc(bt.commits[0].len);
        memcpy(copy, bt.commits[0].bytes, bt.commits[0].len);
        copy[bt.commits[0].len - 1] ^= 0x01;
        bt.commits[0].bytes = copy;
    }
    cr_assert_eq(kith__batch_encode(&bt, &out), 0);
    if (!signature)
        free((void *)bt.commits[0].bytes);
    kith__arena_free(&ar);
    return out;
}

static void
send_batch(struct raw *raw, uint64_t seq, const void *data, size_t len)
{
    struct kith__msg m;
    memset(&m, 0, sizeof(m));
    m.type = KITH__MSG_BATCH;
    m.seq = seq;
    m.data = data;
    m.len = len;
    cr_assert_eq(kith_vv_get(raw->x->r, &m.vv), 0);
    raw_send(raw, &m);
    kith_vv_free(&m.vv);
}

static void
hello_ok(struct raw *raw)
{
    struct kith__msg m;
    raw_hello(raw, KITH__WIRE_PROTO);
    raw_expect(raw, KITH__MSG_WELCOME, 3000, &m);
    kith__wire_clear(&m);
}

static int
expect_refuse(struct raw *raw, const char *what)
{
    struct kith__msg m;
    int64_t end = kith__mono_ms() + 3000;
    for (;;) {
        cr_assert(kith__mono_ms() < end, "%s: no REFUSE", what);
        cr_assert(raw_recv(raw, 3000, &m), "%s: no REFUSE", what);
        if (m.type == KITH__MSG_REFUSE)
            break;
        cr_assert(m.type != KITH__MSG_ACK, "%s: acknowledged", what);
        kith__wire_clear(&m);
    }
    int code = m.code;
    cr_log_info("%s: refused with %s: %.*s", what, kith_errname(code), (int)m.reason_len, m.reason);
    kith__wire_clear(&m);
    return code;
}

static void
good_peer_syncs(struct kt_replica *good, struct node *b)
{
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_sync_info info;
    kith_replica_pubkey(b->k.r, pk);
    int rc = kith_sync(good->r, b->ep, pk, 5000, &info);
    cr_assert_eq(rc, 0, "good peer: %s", kith_strerror(rc));
    cr_assert(info.converged);
}

/* proves NET-5, NET-6, NET-7, NET-9, section 3.6 */
Test(peers, bad_frames_refused_replica_unchanged_others_served)
{
    struct node b;
    struct kt_replica x = kt_new(), good = kt_new();
    node_init(&b);
    kt_trust_pair(&x, &b.k);
    kt_trust_pair(&good, &b.k);
    kt_contact(x.r, "from x, never to arrive");
    kt_contact(b.k.r, "b's own");
    kith_buf batch = make_batch(x.r);
    struct kith__wbuf forged = tamper(&batch, true);
    struct kith__wbuf altered = tamper(&batch, false);
    node_start(&b);
    char *before = kt_export(b.k.r);
    struct raw raw;
    raw_open(&raw, &x, &b);

    raw_send_bytes(&raw, "\xc1garbage", 8);
    cr_assert_eq(expect_refuse(&raw, "garbage before HELLO"), KITH_EMALFORMED);

    send_batch(&raw, 1, batch.data, batch.len);
    cr_assert_eq(expect_refuse(&raw, "BATCH before HELLO"), KITH_EPROTO);

    hello_ok(&raw);
    send_batch(&raw, 1, forged.data, forged.len);
    cr_assert_eq(expect_refuse(&raw, "forged signature"), KITH_EBADSIG);

    hello_ok(&raw);
    send_batch(&raw, 1, altered.data, altered.len);
    int rc = expect_refuse(&raw, "tampered op");
    cr_assert(rc == KITH_EBADSIG || rc == KITH_ECORRUPT || rc == KITH_EMALFORMED ||
                  rc == KITH_ESCHEMA,
              "%s", kith_errname(rc));

    hello_ok(&raw);
    send_batch(&raw, 2, batch.data, batch.len);
    cr_assert_eq(expect_refuse(&raw, "out of order"), KITH_EPROTO);

    good_peer_syncs(&good, &b); /* served between two bad sessions */

    hello_ok(&raw);
    raw_send_bytes(&raw, "\x93\x05\x01\x01", 4); /* ACK with a vv that is not an array */
    cr_assert_eq(expect_refuse(&raw, "bad shape"), KITH_EMALFORMED);

    hello_ok(&raw);
    {
        struct kith__msg m;
        memset(&m, 0, sizeof(m));
        m.type = KITH__MSG_ACK;
        m.seq = 9;
        raw_send(&raw, &m);
    }
    cr_assert_eq(expect_refuse(&raw, "ACK for nothing"), KITH_EPROTO);

    {
        /* HELLO that names good's key over x's connection */
        struct kith__msg m;
        uint8_t pk[KITH_PUBKEY_BYTES], digest[KITH_HASH_BYTES];
        memset(&m, 0, sizeof(m));
        kith_replica_pubkey(good.r, pk);
        cr_assert_eq(kith_schema_info(good.r, &m.schema_version, digest), 0);
        m.type = KITH__MSG_HELLO;
        m.proto = KITH__WIRE_PROTO;
        m.id = kith_replica_id(good.r);
        m.pk = pk;
        m.schema_digest = digest;
        raw_send(&raw, &m);
        cr_assert_eq(expect_refuse(&raw, "HELLO with another key"), KITH_EUNTRUSTED);
    }

    hello_ok(&raw);
    cr_assert_eq(zmq_send(raw.sock, "\x91\x07", 2, ZMQ_SNDMORE), 2);
    cr_assert_eq(zmq_send(raw.sock, "\x91\x07", 2, 0), 2);
    cr_assert_eq(expect_refuse(&raw, "multi-part"), KITH_EMALFORMED);
    raw_close(&raw);

    /* an oversized frame: the socket drops the connection; the daemon goes on */
    raw_open_ep(&raw, &x, b.k.r, b.ep, false);
    size_t big = KITH__WIRE_MAX_FRAME + 4096;
    uint8_t *huge = calloc(1, big);
    cr_assert(huge);
    raw_send_bytes(&raw, huge, big);
    free(huge);
    struct kith__msg m;
    cr_assert(!raw_recv(&raw, 500, &m), "an answer to an oversized frame");
    raw_close(&raw);

    good_peer_syncs(&good, &b);
    node_stop(&b);
    /* b now holds good's ops (none) and nothing of x's */
    char *after = kt_export(b.k.r);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    kith_free(batch.data);
    kith__wbuf_free(&forged);
    kith__wbuf_free(&altered);
    node_free(&b);
    kt_free(&x);
    kt_free(&good);
}

/* proves NET-9, NET-10 */
Test(peers, replayed_batch_changes_nothing)
{
    struct node b;
    struct kt_replica x = kt_new();
    struct kith__msg m;
    node_init(&b);
    kt_trust_pair(&x, &b.k);
    kt_contact(x.r, "once");
    kith_buf batch = make_batch(x.r);
    node_start(&b);
    struct raw raw;
    raw_open(&raw, &x, &b);

    hello_ok(&raw);
    send_batch(&raw, 1, batch.data, batch.len);
    raw_expect(&raw, KITH__MSG_ACK, 3000, &m);
    cr_assert_eq(m.seq, 1);
    kith__wire_clear(&m);
    char *once = kt_export(b.k.r);
    kith_status *s1;
    cr_assert_eq(kith_status_get(b.k.r, &s1), 0);

    /* the same batch again in the same session: out of order */
    send_batch(&raw, 1, batch.data, batch.len);
    cr_assert_eq(expect_refuse(&raw, "replay in session"), KITH_EPROTO);

    /* in a new session: acknowledged, and nothing changes */
    hello_ok(&raw);
    send_batch(&raw, 1, batch.data, batch.len);
    raw_expect(&raw, KITH__MSG_ACK, 3000, &m);
    kith__wire_clear(&m);
    raw_close(&raw);
    node_stop(&b);

    char *twice = kt_export(b.k.r);
    cr_assert_str_eq(once, twice);
    kith_status *s2;
    cr_assert_eq(kith_status_get(b.k.r, &s2), 0);
    cr_assert_eq(s1->ops_logged, s2->ops_logged);
    expect_same_export(x.r, b.k.r);
    kith_status_free(s1);
    kith_status_free(s2);
    free(once);
    free(twice);
    kith_free(batch.data);
    node_free(&b);
    kt_free(&x);
}

/* proves NET-12, NET-13 */
Test(peers, silent_peers_do_not_block_others)
{
    struct node b;
    struct kt_replica x = kt_new(), y = kt_new(), good = kt_new();
    node_init(&b);
    kt_trust_pair(&x, &b.k);
    kt_trust_pair(&y, &b.k);
    kt_trust_pair(&good, &b.k);
    add_ops(b.k.r, 3000, 7); /* so that x's session has batches waiting for ACKs */
    node_start(&b);
    struct raw rx, ry;
    raw_open(&rx, &x, &b); /* says HELLO, then never acknowledges */
    raw_open(&ry, &y, &b); /* connects and says nothing */
    raw_hello(&rx, KITH__WIRE_PROTO);
    nt_sleep_ms(100);
    int64_t t0 = kith__mono_ms();
    good_peer_syncs(&good, &b);
    int64_t took = kith__mono_ms() - t0;
    cr_assert(took < 2500, "good peer took %lld ms", (long long)took);
    expect_same_export(good.r, b.k.r);
    raw_close(&rx);
    raw_close(&ry);
    node_stop(&b);
    node_free(&b);
    kt_free(&x);
    kt_free(&y);
    kt_free(&good);
}

/* proves NET-3 */
Test(peers, trust_removed_applies_at_once)
{
    struct node b;
    struct kt_replica x = kt_new();
    uint8_t pk[KITH_PUBKEY_BYTES];
    node_init(&b);
    kt_trust_pair(&x, &b.k);
    node_start(&b);
    kith_replica_pubkey(b.k.r, pk);
    cr_assert_eq(kith_sync(x.r, b.ep, pk, 3000, NULL), 0);
    cr_assert_eq(kith_trust_remove(b.k.r, kith_replica_id(x.r)), 0);
    kt_contact(x.r, "after removal");
    int rc = kith_sync(x.r, b.ep, pk, 2000, NULL);
    cr_assert(rc == KITH_EUNTRUSTED || rc == KITH_ETIMEDOUT, "%s", kith_errname(rc));
    node_stop(&b);
    char *bx = kt_export(b.k.r);
    cr_assert_null(strstr(bx, "after removal"));
    free(bx);
    node_free(&b);
    kt_free(&x);
}

/* ---- SIGKILL in the middle of a sync ------------------------------------------------- */

/* Children of the crash tests: killed and reaped after each test whatever happened, and
 * killed by the kernel if the test process dies first. */
static pid_t kids[8];

static void
track(pid_t pid)
{
    for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
        if (kids[i] == 0) {
            kids[i] = pid;
            return;
        }
}

static void
reaped(pid_t pid)
{
    for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
        if (kids[i] == pid)
            kids[i] = 0;
}

static void
reap_kids(void)
{
    for (size_t i = 0; i < sizeof(kids) / sizeof(kids[0]); i++)
        if (kids[i] > 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
            kids[i] = 0;
        }
}

static pid_t
fork_child(void)
{
    pid_t parent = getpid(), pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(5);
        return 0;
    }
    track(pid);
    return pid;
}

static int
wait_kid(pid_t pid)
{
    int status = -1;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    reaped(pid);
    return status;
}

static void
write_endpoint(void *arg, const char *endpoint)
{
    int fd = *(int *)arg;
    char buf[64] = {0};
    snprintf(buf, sizeof(buf), "%s", endpoint);
    if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
        _exit(4);
}

/* A daemon process serving the replica in `dir` on a port the kernel picks; returns once it
 * listens, with its endpoint in ep. */
static pid_t
fork_daemon(const char *dir, char ep[64])
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork_child();
    if (pid == 0) {
        kith_replica *r;
        close(fds[0]);
        if (kith_open(dir, KITH_NOSYNC, &r) < 0)
            _exit(3);
        kith_serve_opts o;
        memset(&o, 0, sizeof(o));
        o.listen = "tcp://127.0.0.1:*";
        o.timeout_ms = 2000;
        o.log_level = nt_log_level();
        o.on_listen = write_endpoint;
        o.on_listen_arg = &fds[1];
        int rc = kith_serve(r, &o);
        kith_close(r);
        _exit(rc == 0 ? 0 : 1);
    }
    close(fds[1]);
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 10000), 1, "the daemon did not listen");
    cr_assert_eq(read(fds[0], ep, 64), 64, "the daemon did not listen");
    ep[63] = 0;
    close(fds[0]);
    return pid;
}

/* Kill `pid` once the replica in `dir` (being written by it) holds at least `ops` ops:
 * after some batches were applied and before the last. */
struct killer {
    pid_t pid;
    const char *dir;
    uint64_t ops;
    bool fired;
};

static uint64_t
held_ops(kith_replica *r)
{
    kith_vv vv;
    uint64_t n = 0;
    if (kith_vv_get(r, &vv) < 0)
        return 0;
    for (size_t i = 0; i < vv.len; i++)
        n += vv.entries[i].seq;
    kith_vv_free(&vv);
    return n;
}

static void *
kill_later(void *arg)
{
    struct killer *k = arg;
    kith_replica *r = NULL;
    for (int i = 0; i < 10000 && !k->fired; i++) {
        if (!r && kith_open(k->dir, KITH_RDONLY, &r) < 0)
            r = NULL;
        if (r && held_ops(r) >= k->ops) {
            kill(k->pid, SIGKILL);
            k->fired = true;
        } else {
            nt_sleep_ms(1);
        }
    }
    kith_close(r);
    return NULL;
}

static uint64_t
vv_ops(kith_replica *r)
{
    kith_vv vv;
    uint64_t n = 0;
    cr_assert_eq(kith_vv_get(r, &vv), 0);
    for (size_t i = 0; i < vv.len; i++)
        n += vv.entries[i].seq;
    kith_vv_free(&vv);
    return n;
}

/* proves NET-9, NET-11, NET-16 */
Test(crash, daemon_killed_mid_sync_resumes_without_resending, .timeout = 120, .fini = reap_kids)
{
    struct kt_replica a = kt_new(), b = kt_new();
    uint8_t pk[KITH_PUBKEY_BYTES];
    char ep[64];
    uint64_t seed = kt_seed(), st = seed;
    int total = kt_cases(100000);

    kt_trust_pair(&a, &b);
    add_ops(a.r, total, 3);
    uint64_t a_ops = vv_ops(a.r);
    kith_replica_pubkey(b.r, pk);
    kith_close(b.r); /* the daemon's process owns it now */
    b.r = NULL;
    pid_t pid = fork_daemon(b.dir, ep);
    struct killer k = {pid, b.dir, 1 + kt_below(&st, (uint64_t)total / 2), false};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, kill_later, &k), 0);
    kith_sync_info info1;
    int rc = kith_sync(a.r, ep, pk, 1500, &info1);
    pthread_join(th, NULL);
    int status = wait_kid(pid);
    cr_assert(k.fired && WIFSIGNALED(status), "the daemon was not killed mid-sync (KITH_SEED=%llu)",
              (unsigned long long)seed);
    cr_log_info("first sync: %s, %llu ops sent before the kill (KITH_SEED=%llu)", kith_errname(rc),
                (unsigned long long)info1.ops_sent, (unsigned long long)seed);

    /* what survived the kill: whole batches only */
    kith_replica *rb;
    cr_assert_eq(kith_open(b.dir, KITH_NOSYNC, &rb), 0);
    uint64_t held = vv_ops(rb);
    kith_verify_report rep;
    cr_assert_eq(kith_verify(rb, &rep), 0);
    cr_assert_eq(rep.problems, 0, "after the kill: %s", rep.first_problem);
    kith_close(rb);
    cr_assert(held < a_ops, "the kill came after the sync had ended (KITH_SEED=%llu)",
              (unsigned long long)seed);

    pid = fork_daemon(b.dir, ep);
    nt_sleep_ms(150);
    kith_sync_info info2;
    rc = kith_sync(a.r, ep, pk, 10000, &info2);
    cr_assert_eq(rc, 0, "resumed sync: %s (KITH_SEED=%llu)", kith_strerror(rc),
                 (unsigned long long)seed);
    cr_assert(info2.converged);
    cr_log_info("resumed: %llu ops held, %llu sent", (unsigned long long)held,
                (unsigned long long)info2.ops_sent);
    /* nothing sent twice: the resumed session carried exactly what b lacked */
    cr_assert_eq(info2.ops_sent, a_ops - held, "sent %llu, lacked %llu (KITH_SEED=%llu)",
                 (unsigned long long)info2.ops_sent, (unsigned long long)(a_ops - held),
                 (unsigned long long)seed);
    cr_assert_eq(kill(pid, SIGTERM), 0);
    status = wait_kid(pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "daemon did not stop cleanly");

    kt_reopen(&b, KITH_NOSYNC);
    cr_assert_eq(kith_verify(b.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    cr_assert_eq(vv_ops(b.r), a_ops);
    expect_same_export(a.r, b.r);
    kt_free(&a);
    kt_free(&b);
}

/* kith_sync in a child process, its result written to `fd`. */
static pid_t
fork_sync(const char *dir, const char *ep, const uint8_t *pk, int fd)
{
    pid_t pid = fork_child();
    if (pid == 0) {
        kith_replica *r;
        kith_sync_info info;
        if (kith_open(dir, KITH_NOSYNC, &r) < 0)
            _exit(3);
        memset(&info, 0, sizeof(info));
        int rc = kith_sync(r, ep, pk, 5000, &info);
        if (rc < 0)
            fprintf(stderr, "kith_sync in the child: %s (%s)\n", kith_errname(rc), kith_errmsg(r));
        if (write(fd, &info, sizeof(info)) != (ssize_t)sizeof(info))
            rc = -1;
        kith_close(r);
        _exit(rc == 0 ? 0 : 1);
    }
    return pid;
}

/* proves NET-11, NET-12 */
Test(crash, client_killed_mid_sync_resumes_without_resending, .timeout = 120, .fini = reap_kids)
{
    struct kt_replica a = kt_new(), b = kt_new();
    uint8_t pk[KITH_PUBKEY_BYTES];
    char ep[64];
    int fds[2];
    uint64_t seed = kt_seed(), st = seed;

    kt_trust_pair(&a, &b);
    add_ops(a.r, kt_cases(100000), 4);
    uint64_t a_ops = vv_ops(a.r);
    kith_replica_pubkey(a.r, pk);
    kith_close(a.r);
    a.r = NULL;
    kith_close(b.r);
    b.r = NULL;
    cr_assert_eq(pipe(fds), 0);

    pid_t server = fork_daemon(a.dir, ep); /* a serves; b pulls and is killed */
    pid_t client = fork_sync(b.dir, ep, pk, fds[1]);
    struct killer k = {client, b.dir, 1 + kt_below(&st, a_ops / 2), false};
    kill_later(&k);
    int status = wait_kid(client);
    cr_assert(k.fired && WIFSIGNALED(status), "the client was not killed mid-sync (KITH_SEED=%llu)",
              (unsigned long long)seed);

    kith_replica *rb;
    kith_verify_report rep;
    cr_assert_eq(kith_open(b.dir, KITH_NOSYNC, &rb), 0);
    uint64_t held = vv_ops(rb);
    cr_assert_eq(kith_verify(rb, &rep), 0);
    cr_assert_eq(rep.problems, 0, "after the kill: %s", rep.first_problem);
    kith_close(rb);
    cr_assert(held < a_ops);

    client = fork_sync(b.dir, ep, pk, fds[1]);
    status = wait_kid(client);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "resumed sync failed");
    kith_sync_info info;
    cr_assert_eq(read(fds[0], &info, sizeof(info)), (ssize_t)sizeof(info));
    cr_log_info("client killed holding %llu of %llu ops; resumed session received %llu",
                (unsigned long long)held, (unsigned long long)a_ops,
                (unsigned long long)info.ops_received);
    cr_assert(info.converged);
    cr_assert_eq(info.ops_received, a_ops - held, "received %llu, lacked %llu (KITH_SEED=%llu)",
                 (unsigned long long)info.ops_received, (unsigned long long)(a_ops - held),
                 (unsigned long long)seed);
    cr_assert_eq(kill(server, SIGTERM), 0);
    status = wait_kid(server);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fds[0]);
    close(fds[1]);

    kt_reopen(&a, KITH_NOSYNC);
    kt_reopen(&b, KITH_NOSYNC);
    cr_assert_eq(kith_verify(b.r, &rep), 0);
    cr_assert_eq(rep.problems, 0, "%s", rep.first_problem);
    expect_same_export(a.r, b.r);
    kt_free(&a);
    kt_free(&b);
}

/* proves NET-9: a relaying peer cannot alter another origin's ops */
Test(peers, tampered_op_in_relayed_batch_refused)
{
    struct node b;
    struct kt_replica a = kt_new(), x = kt_new();
    node_init(&b);
    kt_trust_pair(&a, &x);
    kt_trust_pair(&a, &b.k);
    kt_trust_pair(&x, &b.k);
    kt_contact(a.r, "written on a, relayed by x");
    kt_sync(&a, &x); /* x now holds a's commits and a's signed head */
    kith_buf batch = make_batch(x.r);

    /* flip the last byte of a's first commit inside x's batch */
    struct kith__batch bt;
    struct kith__arena ar = {0};
    struct kith__wbuf out = {0};
    cr_assert_eq(kith__batch_decode(batch.data, batch.len, &bt, &ar), 0);
    uint8_t *copy = NULL;
    for (size_t i = 0; i < bt.ncommits && !copy; i++)
        if (bt.commits[i].origin == kith_replica_id(a.r)) {
            copy = malloc(bt.commits[i].len);
            memcpy(copy, bt.commits[i].bytes, bt.commits[i].len);
            copy[bt.commits[i].len - 1] ^= 0x01;
            bt.commits[i].bytes = copy;
        }
    cr_assert(copy, "x's batch carries none of a's commits");
    cr_assert_eq(kith__batch_encode(&bt, &out), 0);

    node_start(&b);
    char *before = kt_export(b.k.r);
    struct raw raw;
    raw_open(&raw, &x, &b);
    hello_ok(&raw);
    send_batch(&raw, 1, out.data, out.len);
    int rc = expect_refuse(&raw, "tampered relayed op");
    cr_assert(rc == KITH_EBADSIG || rc == KITH_ECORRUPT || rc == KITH_EMALFORMED ||
                  rc == KITH_ESCHEMA,
              "%s", kith_errname(rc));
    /* the untampered batch is fine */
    hello_ok(&raw);
    send_batch(&raw, 1, batch.data, batch.len);
    struct kith__msg m;
    raw_expect(&raw, KITH__MSG_ACK, 3000, &m);
    kith__wire_clear(&m);
    raw_close(&raw);
    node_stop(&b);
    char *after = kt_export(b.k.r);
    cr_assert_str_neq(before, after);
    expect_same_export(x.r, b.k.r);
    free(before);
    free(after);
    free(copy);
    kith__wbuf_free(&out);
    kith__arena_free(&ar);
    kith_free(batch.data);
    node_free(&b);
    kt_free(&a);
    kt_free(&x);
}

/* Start a's daemon with a short timeout and a failing threshold of 2. */
static void
start_impatient(struct node *a)
{
    memset(&a->o, 0, sizeof(a->o));
    a->o.listen = "tcp://127.0.0.1:*";
    a->o.interval_ms = 1000;
    a->o.timeout_ms = 300;
    a->o.log_level = nt_log_level();
    a->o.stop = &a->stop;
    a->o.on_listen = nt_on_listen;
    a->o.on_listen_arg = a;
    a->o.failing_after = 2;
    a->stop = 0;
    cr_assert_eq(pthread_create(&a->th, NULL, nt_serve, a), 0);
    a->running = true;
}

static kith_peer
only_peer(kith_replica *r)
{
    kith_peer *p = NULL, one;
    size_t n = 0;
    cr_assert_eq(kith_peers_get(r, &p, &n), 0);
    cr_assert_eq(n, 1);
    one = p[0];
    one.acked.len = 0;
    one.acked.entries = NULL;
    kith_peers_free(p, n);
    return one;
}

/* proves NET-20: a peer that never answers (connections to its address are refused) is shown
 * as failing in its record once the daemon's threshold of attempts in a row have failed, with
 * the last error, and the daemon keeps retrying it at the longest backoff, also after a
 * restart. */
Test(peers, unreachable_peer_shown_failing, .timeout = 60)
{
    struct node a, b;
    uint8_t pb[KITH_PUBKEY_BYTES];
    char dead[64];
    int fd = nt_bound_port(dead);
    kith_peer p;

    node_init(&a);
    node_init(&b);
    kith_replica_pubkey(b.k.r, pb);
    cr_assert_eq(kith_trust_add(a.k.r, pb, NULL, dead), 0);
    start_impatient(&a);
    p = only_peer(a.k.r);
    for (int64_t end = kith__mono_ms() + 20000; !p.failing && kith__mono_ms() < end;) {
        nt_sleep_ms(50);
        p = only_peer(a.k.r);
        if (!p.failing)
            cr_assert_lt(p.failures, 2, "two failures and not failing");
    }
    cr_assert(p.failing, "the daemon never marked the peer failing");
    cr_assert_geq(p.failures, 2);
    cr_assert_str_neq(p.last_error, "");
    node_stop(&a);
    /* restarted, the daemon tries once at once, then waits the longest step (>= 22.5 s),
     * instead of starting over at 250 ms */
    uint32_t before = only_peer(a.k.r).failures;
    start_impatient(&a);
    nt_sleep_ms(2500);
    p = only_peer(a.k.r);
    cr_assert_eq(p.failures, before + 1, "%u failures after the restart, %u before",
                 (unsigned)p.failures, (unsigned)before);
    cr_assert(p.failing);
    node_free(&a);
    node_free(&b);
    close(fd);
    /* the retries of a failing peer wait the longest step (30 s, with jitter) */
    cr_assert_eq(kith__link_backoff_ms(1, 2, 0), kith__backoff_ms(1, 0));
    cr_assert_eq(kith__link_backoff_ms(2, 2, 0), 30000 * 3 / 4);
    cr_assert_eq(kith__link_backoff_ms(3, 2, 999), kith__backoff_ms(UINT32_MAX, 999));
    cr_assert_eq(kith__link_backoff_ms(4, 0, 0), kith__backoff_ms(4, 0), "default threshold 5");
    cr_assert_eq(kith__link_backoff_ms(5, 0, 0), 30000 * 3 / 4);
}

/* The pending count of `who` in r's peer records. */
static uint64_t
pending_for(kith_replica *r, kith_replica *who)
{
    kith_peer *p = NULL;
    size_t n = 0;
    uint64_t pending = UINT64_MAX;
    cr_assert_eq(kith_peers_get(r, &p, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (p[i].id == kith_replica_id(who))
            pending = p[i].pending_ops;
    kith_peers_free(p, n);
    return pending;
}

/* proves NET-19 over the network: a's writes reach c only through b's daemon; c's record of
 * a, which c never meets, counts none of them as pending for a. */
Test(peers, relayed_ops_are_not_pending_for_their_origin, .timeout = 60)
{
    struct node a, b, c;
    node_init(&a);
    node_init(&b);
    node_init(&c);
    kt_trust_pair(&a.k, &c.k);
    node_link(&a, &b);
    node_link(&c, &b);
    node_start(&a);
    node_start(&b);
    node_start(&c);
    add_ops(a.k.r, 14, 1);
    cr_assert(wait_converged((struct node *[]){&a, &b, &c}, 3, 10000));
    cr_assert_eq(pending_for(c.k.r, a.k.r), 0, "c shows a's own ops as pending for a");
    uint64_t pb = UINT64_MAX;
    for (int64_t end = kith__mono_ms() + 5000; pb != 0 && kith__mono_ms() < end; nt_sleep_ms(50))
        pb = pending_for(c.k.r, b.k.r);
    cr_assert_eq(pb, 0, "c's record of b, which relayed a's ops");
    node_free(&a);
    node_free(&b);
    node_free(&c);
}
