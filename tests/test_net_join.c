/*
 * test_net_join.c — invites and joining over the network (spec/protocol.md NET-29..NET-31,
 * spec/encoding.md "Invite codes"): a real daemon thread on 127.0.0.1, port "*", the joiner's
 * kith_join over real ZeroMQ with CURVE. A joined replica syncs with the inviter as a member,
 * with no pairwise trust on the inviter's side; ops relay through a member to a device the
 * origin never met; an expired, a used and a forged code (valid check, wrong secret) are
 * refused by the inviter with a reason, and a code with a flipped character is refused before
 * any connection; a removed device is refused at connect and its open session closed.
 */
#include "invite.h"
#include "net_test.h"

#include <sodium.h>

/* The daemon's log lines, collected under a lock (the daemon's threads write them). */
struct lines {
    pthread_mutex_t lock;
    char text[65536];
    size_t len;
};

static void
on_line(void *arg, int level, const char *line)
{
    struct lines *l = arg;
    (void)level;
    pthread_mutex_lock(&l->lock);
    int n = snprintf(l->text + l->len, sizeof l->text - l->len, "%s\n", line);
    if (n > 0 && (size_t)n < sizeof l->text - l->len)
        l->len += (size_t)n;
    pthread_mutex_unlock(&l->lock);
}

static bool
logged(struct lines *l, const char *needle)
{
    pthread_mutex_lock(&l->lock);
    bool found = strstr(l->text, needle) != NULL;
    pthread_mutex_unlock(&l->lock);
    return found;
}

/* Wait (bounded) until the log holds `needle`. */
static bool
wait_logged(struct lines *l, const char *needle, int ms)
{
    int64_t end = kith__mono_ms() + ms;
    do {
        if (logged(l, needle))
            return true;
        nt_sleep_ms(5);
    } while (kith__mono_ms() < end);
    return false;
}

/* node_start with the daemon's lines going to `l`. */
static void
start_logged(struct node *n, struct lines *l)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
    memset(&n->o, 0, sizeof(n->o));
    n->o.listen = "tcp://127.0.0.1:*";
    n->o.interval_ms = 1000;
    n->o.timeout_ms = 3000;
    n->o.log_level = KITH_LOG_DEBUG;
    n->o.stop = &n->stop;
    n->o.on_listen = nt_on_listen;
    n->o.on_listen_arg = n;
    n->o.on_log = on_line;
    n->o.on_log_arg = l;
    n->stop = 0;
    n->listening = 0;
    n->rc = -1;
    cr_assert_eq(pthread_create(&n->th, NULL, nt_serve, n), 0);
    n->running = true;
    int64_t end = kith__mono_ms() + 10000;
    while (!__atomic_load_n(&n->listening, __ATOMIC_ACQUIRE)) {
        cr_assert_lt(kith__mono_ms(), end, "daemon did not listen");
        nt_sleep_ms(1);
    }
}

static char *
invite(kith_replica *r, int64_t expires_ms)
{
    kith_invite_opts o = {0};
    char *code = NULL;
    o.expires_ms = expires_ms;
    int rc = kith_invite_create(r, &o, &code);
    cr_assert_eq(rc, 0, "invite: %s (%s)", kith_strerror(rc), kith_errmsg(r));
    cr_assert(code);
    return code;
}

static int
join(kith_replica *r, const char *code, const char *name, kith_join_info *info)
{
    return kith_join(r, code, name, 5000, info);
}

static size_t
devices(kith_replica *r, uint64_t id, kith_device *out)
{
    kith_device *d = NULL;
    size_t n = 0;
    cr_assert_eq(kith_devices_get(r, &d, &n), 0);
    for (size_t i = 0; i < n && out; i++)
        if (d[i].id == id)
            *out = d[i];
    kith_devices_free(d, n);
    return n;
}

static bool
in_group(kith_replica *r, char id[KITH_GROUP_ID_HEX + 1])
{
    kith_group_info g;
    cr_assert_eq(kith_group_get(r, &g), 0);
    if (id)
        snprintf(id, KITH_GROUP_ID_HEX + 1, "%s", g.id);
    return g.in_group;
}

/* The secret of `code`, or a code with the same everything and another secret. */
static char *
with_secret(const char *code, uint8_t fill)
{
    struct kith__invite iv;
    char *out = malloc(KITH__INVITE_MAX_CODE);
    cr_assert(out);
    cr_assert_eq(kith__invite_decode(code, strlen(code), &iv, NULL, 0), 0);
    memset(iv.secret, fill, sizeof iv.secret);
    cr_assert_eq(kith__invite_encode(&iv, out, KITH__INVITE_MAX_CODE, NULL), 0);
    return out;
}

/* ---- joining ---------------------------------------------------------------------------- */

/* A fresh replica joins with the code the daemon's replica made, is in its group, holds its
 * ops, and its own writes are taken by the inviter, which never trusted its key. */
/* proves NET-29, NET-30, NET-31 */
Test(join, invite_then_join_then_sync_as_a_member)
{
    struct node a;
    struct lines la;
    struct kt_replica b = kt_new();
    kith_join_info info;
    char ga[KITH_GROUP_ID_HEX + 1], gb[KITH_GROUP_ID_HEX + 1];
    uint8_t pa[KITH_PUBKEY_BYTES], pb[KITH_PUBKEY_BYTES];

    node_init(&a);
    start_logged(&a, &la);
    kith_docid da = kt_contact(a.k.r, "from a");
    char *code = invite(a.k.r, 0);
    struct kith__invite iv;
    cr_assert_eq(kith__invite_decode(code, strlen(code), &iv, NULL, 0), 0);
    cr_assert_eq(iv.naddrs, 1);
    cr_assert_str_eq(iv.addrs[0], a.ep, "the address the daemon bound");
    cr_assert(in_group(a.k.r, ga), "the first invite founds the group");

    int rc = join(b.r, code, "phone", &info);
    cr_assert_eq(rc, 0, "join: %s (%s)", kith_strerror(rc), kith_errmsg(b.r));
    cr_assert(in_group(b.r, gb));
    cr_assert_str_eq(ga, gb);
    cr_assert_str_eq(info.group_id, ga);
    cr_assert_eq(info.inviter_id, kith_replica_id(a.k.r));
    cr_assert_str_eq(info.endpoint, a.ep);
    cr_assert_eq(info.sync.proto, KITH__WIRE_PROTO);
    cr_assert(has_doc(b.r, &da), "synced after joining");
    kith_device dev;
    cr_assert_eq(devices(a.k.r, kith_replica_id(b.r), &dev), 2);
    cr_assert_str_eq(dev.name, "phone");
    cr_assert_eq(dev.added_by, kith_replica_id(a.k.r));
    cr_assert_not(dev.removed);
    cr_assert_eq(devices(b.r, 0, NULL), 2);
    cr_assert(wait_logged(&la, "joined the group", 3000), "%s", la.text);

    /* b's own write reaches a: a admits b as a member, with no trust of its own */
    kith_replica_pubkey(b.r, pb);
    kith_replica_pubkey(a.k.r, pa);
    kith_docid db = kt_contact(b.r, "from b");
    kith_sync_info si;
    rc = kith_sync(b.r, a.ep, pa, 5000, &si);
    cr_assert_eq(rc, 0, "sync: %s (%s)", kith_strerror(rc), kith_errmsg(b.r));
    cr_assert(si.converged);
    cr_assert(wait_doc(a.k.r, &db, 3000));
    kith_peer *peers = NULL;
    size_t n = 0;
    cr_assert_eq(kith_peers_get(a.k.r, &peers, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (peers[i].id == kith_replica_id(b.r))
            cr_assert_not(peers[i].trusted, "no pairwise trust on the inviter's side");
    kith_peers_free(peers, n);
    cr_assert(kith_is_trusted(a.k.r, pb), "a member");

    /* a second join with the same code: used */
    struct kt_replica c = kt_new();
    char *again = invite(a.k.r, 0); /* keeps ZAP open for unknown keys */
    rc = join(c.r, code, "tablet", NULL);
    cr_assert_eq(rc, KITH_EUNTRUSTED);
    cr_assert(strstr(kith_errmsg(c.r), "used already"), "%s", kith_errmsg(c.r));
    cr_assert_not(in_group(c.r, NULL));
    cr_assert_eq(devices(a.k.r, 0, NULL), 2, "nobody added");
    free(again);
    free(code);
    kt_free(&c);
    kt_free(&b);
    node_free(&a);
}

/* With no invite open, an unknown key is refused at connect: the used code finds the door
 * shut, and says so without waiting for a timeout. */
/* proves NET-31 */
Test(join, no_open_invite_refuses_unknown_keys_at_connect)
{
    struct node a;
    struct lines la;
    struct kt_replica b = kt_new(), c = kt_new();

    node_init(&a);
    start_logged(&a, &la);
    char *code = invite(a.k.r, 0);
    cr_assert_eq(join(b.r, code, "phone", NULL), 0, "%s", kith_errmsg(b.r));
    int64_t t0 = kith__mono_ms();
    int rc = join(c.r, code, "tablet", NULL);
    cr_assert_eq(rc, KITH_EUNTRUSTED, "%s", kith_strerror(rc));
    cr_assert(strstr(kith_errmsg(c.r), "no open invite"), "%s", kith_errmsg(c.r));
    cr_assert_lt(kith__mono_ms() - t0, 4000, "refused at the handshake, not by a timeout");
    cr_assert(wait_logged(&la, "refused a connection", 3000), "%s", la.text);
    cr_assert_not(in_group(c.r, NULL));
    free(code);
    kt_free(&b);
    kt_free(&c);
    node_free(&a);
}

/* An expired code is refused by the joiner's clock before it connects, and by the inviter's
 * when a JOIN for it arrives anyway (another invite holds the door open). */
/* proves NET-30 */
Test(join, expired_code_refused)
{
    struct node a;
    struct lines la;
    struct kt_replica b = kt_new();

    node_init(&a);
    start_logged(&a, &la);
    char *code = invite(a.k.r, 1); /* good for a millisecond, rounded up to the second */
    struct kith__invite iv;
    cr_assert_eq(kith__invite_decode(code, strlen(code), &iv, NULL, 0), 0);
    int64_t end = kith__mono_ms() + 3000;
    while (kith__now_ms() < (int64_t)iv.expiry_s * 1000) {
        cr_assert_lt(kith__mono_ms(), end);
        nt_sleep_ms(10);
    }
    cr_assert_not(kith__invite_open(a.k.r, kith__now_ms()));
    int rc = join(b.r, code, "phone", NULL);
    cr_assert_eq(rc, KITH_EINVAL);
    cr_assert(strstr(kith_errmsg(b.r), "expired"), "%s", kith_errmsg(b.r));

    /* the inviter's own judgement: a JOIN with the expired secret, sent by hand */
    char *open = invite(a.k.r, 0);
    struct raw raw;
    struct kith__msg m, ans;
    uint8_t pk[KITH_PUBKEY_BYTES], mac[KITH_HASH_BYTES];
    kith_replica_pubkey(b.r, pk);
    kith__invite_mac(iv.secret, iv.inviter, pk, "phone", 5, mac);
    raw_open(&raw, &b, &a);
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_JOIN;
    m.join_pk = pk;
    m.name = "phone";
    m.name_len = 5;
    m.mac = mac;
    raw_send(&raw, &m);
    cr_assert(raw_recv(&raw, 3000, &ans), "an answer");
    cr_assert_eq(ans.type, KITH__MSG_REFUSE);
    cr_assert_eq(ans.code, KITH_EUNTRUSTED);
    cr_assert(memmem(ans.reason, ans.reason_len, "expired", 7), "%.*s", (int)ans.reason_len,
              ans.reason);
    kith__wire_clear(&ans);
    raw_close(&raw);
    cr_assert_eq(devices(a.k.r, 0, NULL), 1, "nobody added");
    cr_assert_not(in_group(b.r, NULL));
    free(open);
    free(code);
    kt_free(&b);
    node_free(&a);
}

/* A code with a valid check but another secret (forged, or mixed up): the inviter refuses
 * it as a wrong secret and changes nothing; the joiner stays in no group. */
/* proves NET-30 */
Test(join, wrong_secret_refused)
{
    struct node a;
    struct lines la;
    struct kt_replica b = kt_new();

    node_init(&a);
    start_logged(&a, &la);
    char *code = invite(a.k.r, 0);
    char *forged = with_secret(code, 0x5a);
    int rc = join(b.r, forged, "phone", NULL);
    cr_assert_eq(rc, KITH_EUNTRUSTED, "%s", kith_strerror(rc));
    cr_assert(strstr(kith_errmsg(b.r), "wrong secret"), "%s", kith_errmsg(b.r));
    cr_assert(wait_logged(&la, "wrong secret", 3000), "%s", la.text);
    cr_assert_not(in_group(b.r, NULL));
    cr_assert_eq(devices(a.k.r, 0, NULL), 1);
    /* the real code still works: a wrong guess does not use it up */
    rc = join(b.r, code, "phone", NULL);
    cr_assert_eq(rc, 0, "%s", kith_errmsg(b.r));
    free(forged);
    free(code);
    kt_free(&b);
    node_free(&a);
}

/* A code with one character changed or one bit flipped is refused before anything goes on
 * the network: its address is a port where nothing answers, which a connection attempt would
 * have run into. */
/* proves INV-2, NET-30 */
Test(join, flipped_bit_refused_before_connecting)
{
    struct kt_replica a = kt_new(), b = kt_new();
    char ep[64], *code = NULL;
    int fd = nt_bound_port(ep);
    const char *addrs[] = {ep};
    kith_invite_opts o = {0};
    o.addrs = addrs;
    o.naddrs = 1;
    cr_assert_eq(kith_invite_create(a.r, &o, &code), 0, "%s", kith_errmsg(a.r));
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    size_t len = strlen(code);
    for (size_t i = 0; i < len; i += 7) {
        if (code[i] == '-')
            continue;
        char keep = code[i];
        int v = (int)(strchr(alphabet, keep) - alphabet);
        code[i] = alphabet[v ^ (1 << (i % 5))];
        int64_t t0 = kith__mono_ms();
        int rc = kith_join(b.r, code, "phone", 5000, NULL);
        cr_assert_eq(rc, KITH_EMALFORMED, "position %zu: %s", i, kith_strerror(rc));
        cr_assert(strstr(kith_errmsg(b.r), "mistyped") || strstr(kith_errmsg(b.r), "long"), "%s",
                  kith_errmsg(b.r));
        cr_assert_lt(kith__mono_ms() - t0, 500, "no connection was tried");
        code[i] = keep;
    }
    kith_peer *peers = NULL;
    size_t n = 0;
    cr_assert_eq(kith_peers_get(b.r, &peers, &n), 0);
    cr_assert_eq(n, 0, "no peer recorded");
    kith_peers_free(peers, n);
    cr_assert_not(in_group(b.r, NULL));
    /* a name that is no device name is refused before connecting too */
    cr_assert_eq(kith_join(b.r, code, "", 5000, NULL), KITH_EINVAL);
    close(fd);
    free(code);
    kt_free(&a);
    kt_free(&b);
}

/* A replica in a group with other members cannot join another one. */
/* proves NET-30 */
Test(join, a_member_of_another_group_is_refused)
{
    struct node a, x;
    struct lines la, lx;
    struct kt_replica b = kt_new();

    node_init(&a);
    node_init(&x);
    start_logged(&a, &la);
    start_logged(&x, &lx);
    char *ca = invite(a.k.r, 0), *cx = invite(x.k.r, 0);
    cr_assert_eq(join(b.r, ca, "phone", NULL), 0, "%s", kith_errmsg(b.r));
    int rc = join(b.r, cx, "phone", NULL);
    cr_assert_eq(rc, KITH_EEXIST);
    cr_assert(strstr(kith_errmsg(b.r), "members already"), "%s", kith_errmsg(b.r));
    cr_assert_eq(devices(x.k.r, 0, NULL), 1);
    free(ca);
    free(cx);
    kt_free(&b);
    node_free(&a);
    node_free(&x);
}

/* A connection admitted only because an invite is open can redeem it and do nothing else:
 * its HELLO is refused as untrusted, a JOIN naming another key than the connection's is
 * refused, and so is a JOIN after a handshake. */
/* proves NET-30, NET-31 */
Test(join, an_invite_admits_a_stranger_to_join_only)
{
    struct node a;
    struct lines la;
    struct kt_replica x = kt_new(), y = kt_new();
    struct raw raw;
    struct kith__msg m, ans;
    uint8_t px[KITH_PUBKEY_BYTES], py[KITH_PUBKEY_BYTES], mac[KITH_HASH_BYTES] = {0};

    node_init(&a);
    start_logged(&a, &la);
    char *code = invite(a.k.r, 0);
    kith_replica_pubkey(x.r, px);
    kith_replica_pubkey(y.r, py);

    raw_open(&raw, &x, &a);
    raw_hello(&raw, KITH__WIRE_PROTO);
    cr_assert(raw_recv(&raw, 3000, &ans), "an answer to HELLO");
    cr_assert_eq(ans.type, KITH__MSG_REFUSE);
    cr_assert_eq(ans.code, KITH_EUNTRUSTED);
    kith__wire_clear(&ans);

    /* the next frame opens a new session: a JOIN for y's key from x's connection */
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_JOIN;
    m.join_pk = py;
    m.name = "y";
    m.name_len = 1;
    m.mac = mac;
    raw_send(&raw, &m);
    cr_assert(raw_recv(&raw, 3000, &ans), "an answer to JOIN");
    cr_assert_eq(ans.type, KITH__MSG_REFUSE);
    cr_assert_eq(ans.code, KITH_EUNTRUSTED);
    cr_assert(memmem(ans.reason, ans.reason_len, "not the key", 11), "%.*s", (int)ans.reason_len,
              ans.reason);
    kith__wire_clear(&ans);
    raw_close(&raw);
    cr_assert_eq(devices(a.k.r, 0, NULL), 1, "nobody added");
    cr_assert(kith__invite_open(a.k.r, kith__now_ms()), "the invite is still open");

    /* a member's JOIN after its HELLO is out of place */
    struct kt_replica b = kt_new();
    cr_assert_eq(join(b.r, code, "phone", NULL), 0, "%s", kith_errmsg(b.r));
    raw_open(&raw, &b, &a);
    raw_hello(&raw, KITH__WIRE_PROTO);
    raw_expect(&raw, KITH__MSG_WELCOME, 3000, &ans);
    kith__wire_clear(&ans);
    uint8_t pb[KITH_PUBKEY_BYTES];
    kith_replica_pubkey(b.r, pb);
    m.join_pk = pb;
    raw_send(&raw, &m);
    int64_t end = kith__mono_ms() + 3000;
    for (;;) {
        cr_assert(raw_recv(&raw, (int)(end - kith__mono_ms()), &ans), "no REFUSE");
        if (ans.type == KITH__MSG_REFUSE)
            break;
        kith__wire_clear(&ans);
    }
    cr_assert_eq(ans.code, KITH_EPROTO, "%.*s", (int)ans.reason_len, ans.reason);
    kith__wire_clear(&ans);
    raw_close(&raw);
    free(code);
    kt_free(&b);
    kt_free(&x);
    kt_free(&y);
    node_free(&a);
}

/* ---- relay and removal -------------------------------------------------------------------- */

/* A invites B, B invites C. C gets A's ops through B; then A and C sync directly, neither
 * trusting the other's key: each knows the other as a member, once B's records reached A. */
/* proves NET-29, NET-31 */
Test(join, relay_through_a_member_then_direct_without_trust)
{
    struct node a, b;
    struct lines la, lb;
    struct kt_replica c = kt_new();
    uint8_t pa[KITH_PUBKEY_BYTES], pc[KITH_PUBKEY_BYTES];
    kith_sync_info si;

    node_init(&a);
    node_init(&b);
    start_logged(&a, &la);
    start_logged(&b, &lb);
    kith_docid da = kt_contact(a.k.r, "from a");
    char *code = invite(a.k.r, 0);
    int rc = join(b.k.r, code, "laptop", NULL);
    cr_assert_eq(rc, 0, "%s", kith_errmsg(b.k.r));
    cr_assert(has_doc(b.k.r, &da));
    free(code);

    code = invite(b.k.r, 0);
    rc = join(c.r, code, "phone", NULL);
    cr_assert_eq(rc, 0, "%s", kith_errmsg(c.r));
    cr_assert(has_doc(c.r, &da), "a's op, relayed by b");
    free(code);

    /* B's daemon dials A (it recorded A's address when it joined) and hands over the ADD of
     * C; A then admits C, which it never met */
    kith_replica_pubkey(a.k.r, pa);
    kith_replica_pubkey(c.r, pc);
    int64_t end = kith__mono_ms() + 10000;
    while (!kith_is_trusted(a.k.r, pc)) {
        cr_assert_lt(kith__mono_ms(), end, "A never learnt of C\n--- a:\n%s\n--- b:\n%s", la.text,
                     lb.text);
        nt_sleep_ms(20);
    }
    kith_docid dc = kt_contact(c.r, "from c");
    rc = kith_sync(c.r, a.ep, pa, 5000, &si);
    cr_assert_eq(rc, 0, "direct: %s (%s)", kith_strerror(rc), kith_errmsg(c.r));
    cr_assert(wait_doc(a.k.r, &dc, 3000));
    kith_peer *peers = NULL;
    size_t n = 0;
    cr_assert_eq(kith_peers_get(a.k.r, &peers, &n), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_not(peers[i].id == kith_replica_id(c.r) && peers[i].trusted);
    kith_peers_free(peers, n);
    kt_free(&c);
    node_free(&b);
    node_free(&a);
}

/* A device removed from the group is refused at connect, with the reason in the daemon's
 * log; a session it had open is closed when the removal is written. */
/* proves NET-31 */
Test(join, removed_device_refused_at_connect)
{
    struct node a, b;
    struct lines la, lb;
    uint8_t pa[KITH_PUBKEY_BYTES];
    kith_sync_info si;

    node_init(&a);
    node_init(&b);
    start_logged(&a, &la);
    char *code = invite(a.k.r, 0);
    int rc = join(b.k.r, code, "old phone", NULL);
    cr_assert_eq(rc, 0, "%s", kith_errmsg(b.k.r));
    free(code);
    /* b's daemon dials a and keeps the session open */
    start_logged(&b, &lb);
    cr_assert(wait_logged(&la, "connected", 5000), "%s", la.text);

    cr_assert_eq(kith_device_remove(a.k.r, kith_replica_id(b.k.r)), 0, "%s", kith_errmsg(a.k.r));
    cr_assert(wait_logged(&la, "removed from the group", 5000), "%s", la.text);
    node_stop(&b);

    kith_replica_pubkey(a.k.r, pa);
    rc = kith_sync(b.k.r, a.ep, pa, 5000, &si);
    cr_assert_eq(rc, KITH_EUNTRUSTED, "%s", kith_strerror(rc));
    cr_assert(wait_logged(&la, "a device removed from the group", 3000), "%s", la.text);
    node_free(&b);
    node_free(&a);
}
