/*
 * join.c — kith_invite_create and kith_join (spec/protocol.md NET-30, NET-31; decisions.md
 * D-14 "Pairing", D-17). The inviter keeps a one-time secret and prints a code that carries
 * it with its key and addresses (core/invite.c); its daemon admits unknown keys while an
 * invite is open, and such a connection may only redeem it (session.c on_join). The joiner
 * checks the code before anything goes on the network, connects over CURVE to the inviter's
 * key (so it talks to the right device) under its own key, proves the secret with a MAC,
 * adopts the group from the records JOINED carries, and then syncs with the inviter on a new
 * connection, as any member does. The inviter's side of JOIN is here too (kith__session_join,
 * called by session.c for a JOIN in a server session).
 */
#include "invite.h"
#include "net.h"
#include "store.h" /* kith__fail, kith__invite_*, kith__listen_get, kith__join_adopt, groups */

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

/* ---- kith_invite_create ----------------------------------------------------------------- */

static bool
name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n >= 1 && n <= KITH_DEVICE_NAME_MAX && kith__utf8_valid(s, n);
}

/* This host's name as a device name (cut to 63 bytes), or "device". */
static void
host_name(char out[KITH_DEVICE_NAME_MAX + 1])
{
    char host[256];
    if (gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = '\0';
        size_t n = strnlen(host, KITH_DEVICE_NAME_MAX);
        while (n > 0 && !kith__utf8_valid(host, n))
            n--; /* not inside a character */
        memcpy(out, host, n);
        out[n] = '\0';
        if (n > 0)
            return;
    }
    snprintf(out, KITH_DEVICE_NAME_MAX + 1, "device");
}

/* Add `ep` to iv's addresses; one with a wildcard host becomes one per IPv4 address of the
 * interfaces that are up (loopback last, and only when nothing else is). */
static int
add_address(struct kith__invite *iv, const char *ep)
{
    const char *host = strncmp(ep, "tcp://", 6) == 0 ? ep + 6 : NULL;
    const char *port = host ? strrchr(host, ':') : NULL;
    struct ifaddrs *ifs = NULL;
    size_t before = iv->naddrs;

    if (!host || !port ||
        !((port - host == 1 && host[0] == '*') ||
          (port - host == 7 && strncmp(host, "0.0.0.0", 7) == 0))) {
        if (iv->naddrs == KITH__INVITE_MAX_ADDRS || strlen(ep) > KITH__INVITE_MAX_ENDPOINT)
            return KITH_EINVAL;
        snprintf(iv->addrs[iv->naddrs++], sizeof iv->addrs[0], "%s", ep);
        return 0;
    }
    if (getifaddrs(&ifs) != 0)
        return -errno;
    for (int loop = 0; loop < 2; loop++) {
        for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
            char text[INET_ADDRSTRLEN];
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
                ((i->ifa_flags & IFF_LOOPBACK) != 0) != (loop == 1))
                continue;
            if (iv->naddrs == KITH__INVITE_MAX_ADDRS)
                break;
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, text, sizeof text);
            snprintf(iv->addrs[iv->naddrs++], sizeof iv->addrs[0], "tcp://%s%s", text, port);
        }
        if (iv->naddrs > before)
            break;
    }
    freeifaddrs(ifs);
    return 0;
}

KITH_API int
kith_invite_create(kith_replica *r, const kith_invite_opts *opts, char **code)
{
    static const kith_invite_opts none;
    struct kith__invite iv;
    kith_group_info g;
    char host[KITH_DEVICE_NAME_MAX + 1] = "", listen[KITH__INVITE_MAX_ENDPOINT + 1];
    int64_t expires, now = kith__now_ms();
    size_t len;
    int rc;

    if (code)
        *code = NULL;
    if (!r || !code)
        return KITH_EINVAL;
    if (!opts)
        opts = &none;
    if (opts->naddrs > KITH__INVITE_MAX_ADDRS || (opts->naddrs && !opts->addrs))
        return kith__fail(r, KITH_EINVAL, "an invite names at most %d addresses",
                          KITH__INVITE_MAX_ADDRS);
    expires = opts->expires_ms > 0 ? opts->expires_ms : KITH_INVITE_EXPIRES_MS;
    memset(&iv, 0, sizeof iv);
    for (size_t i = 0; i < opts->naddrs; i++)
        if (!opts->addrs[i] || (rc = add_address(&iv, opts->addrs[i])) < 0)
            return kith__fail(r, KITH_EINVAL, "address %zu cannot go in an invite: %s", i + 1,
                              opts->addrs[i] ? opts->addrs[i] : "(null)");
    if (opts->naddrs == 0) {
        rc = kith__listen_get(r, listen, sizeof listen);
        if (rc == KITH_ENOTFOUND)
            return kith__fail(r, KITH_EINVAL,
                              "no address to offer: this replica's daemon has never listened; "
                              "start it (kith serve) or give the address (--addr)");
        if (rc < 0 || (rc = add_address(&iv, listen)) < 0)
            return kith__fail(r, rc, "the address the daemon listened on: %s", kith_strerror(rc));
    }
    if (iv.naddrs == 0)
        return kith__fail(r, KITH_EINVAL, "no address to offer: no network interface is up");

    if ((rc = kith_group_get(r, &g)) < 0)
        return rc;
    if (!g.in_group) {
        const char *device = opts->device_name;
        if (!device) {
            host_name(host);
            device = host;
        }
        rc = kith_group_create(r, opts->group_name ? opts->group_name : "devices", device);
        if (rc < 0)
            return rc;
    } else if (g.self_removed) {
        return kith__fail(r, KITH_EINVAL,
                          "this device was removed from its group: it cannot "
                          "invite anyone");
    }

    kith_replica_pubkey(r, iv.inviter);
    randombytes_buf(iv.secret, sizeof iv.secret);
    iv.expiry_s = (uint64_t)((now + expires + 999) / 1000);
    if ((rc = kith__invite_encode(&iv, NULL, 0, &len)) != KITH_ETOOSMALL && rc < 0) {
        rc = kith__fail(r, rc, "the invite cannot be encoded");
        goto out_wipe;
    }
    if (!(*code = malloc(len + 1))) {
        rc = KITH_ENOMEM;
        goto out_wipe;
    }
    if ((rc = kith__invite_encode(&iv, *code, len + 1, NULL)) < 0 ||
        (rc = kith__invite_put(r, iv.secret, (int64_t)iv.expiry_s * 1000)) < 0) {
        free(*code);
        *code = NULL;
    }
out_wipe:
    sodium_memzero(&iv, sizeof iv);
    return rc;
}

/* ---- the inviter's side: JOIN in a server session ---------------------------------------- */

/* The records JOINED carries, collected from the store (copies: the views end with the txn). */
struct records {
    uint8_t **rec;
    size_t *len, n, cap;
};

static int
collect_one(void *ctx, const uint8_t *rec, size_t len)
{
    struct records *v = ctx;
    if (v->n == KITH__WIRE_MAX_RECORDS)
        return KITH_ETOOBIG;
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 16;
        uint8_t **r = realloc(v->rec, cap * sizeof(*r));
        if (!r)
            return KITH_ENOMEM;
        v->rec = r;
        size_t *l = realloc(v->len, cap * sizeof(*l));
        if (!l)
            return KITH_ENOMEM;
        v->len = l;
        v->cap = cap;
    }
    if (!(v->rec[v->n] = malloc(len)))
        return KITH_ENOMEM;
    memcpy(v->rec[v->n], rec, len);
    v->len[v->n++] = len;
    return 0;
}

static void
records_free(struct records *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->rec[i]);
    free(v->rec);
    free(v->len);
}

/* JOINED: our group id and every group record we hold. */
static int
send_joined(struct kith__session *s)
{
    struct records v = {0};
    struct kith__msg m;
    uint8_t gid[KITH__WIRE_GROUP_BYTES], digest[KITH_HASH_BYTES];
    MDB_txn *txn;
    int rc = kith__mdb_begin(s->r, MDB_RDONLY, &txn);

    if (rc < 0)
        return rc;
    rc = kith__group_summary(s->r, txn, gid, digest);
    if (rc == 0)
        rc = KITH_EINVAL; /* in no group: nothing to join */
    if (rc > 0)
        rc = kith__group_collect(s->r, txn, collect_one, &v);
    mdb_txn_abort(txn);
    kith__mdb_end(s->r);
    if (rc == 0) {
        memset(&m, 0, sizeof(m));
        m.type = KITH__MSG_JOINED;
        m.group = gid;
        m.nrecords = v.n;
        m.records = (const uint8_t *const *)v.rec;
        m.record_lens = v.len;
        rc = kith__session_send(s, &m);
    }
    records_free(&v);
    return rc;
}

/*
 * JOIN (NET-30): a device holding one of our invite codes proves its secret. The key in JOIN
 * must be the one this connection authenticated with; the invite is redeemed (marked used and
 * the joiner's ADD written, in one transaction) and JOINED answers with the group's records.
 * The session then ends: the new member connects again to sync, admitted as a member.
 */
int
kith__session_join(struct kith__session *s, const struct kith__msg *m)
{
    uint8_t x[32];
    char why[200], hex[17];
    int rc;

    kith__hex(m->join_pk, 8, hex);
    if (s->client || s->state != KITH__SS_NEW) {
        kith__session_close(s, KITH_EPROTO, true, false, "JOIN in the middle of a session");
        return KITH_EPROTO;
    }
    if (!s->has_zap_curve || kith_curve_public(m->join_pk, x) < 0 ||
        sodium_memcmp(x, s->zap_curve, 32) != 0) {
        kith__session_close(s, KITH_EUNTRUSTED, true, false,
                            "JOIN key is not the key this connection authenticated with");
        return KITH_EUNTRUSTED;
    }
    rc = kith__invite_redeem(s->r, m->join_pk, m->name, m->name_len, m->mac, kith__now_ms(), why,
                             sizeof why);
    if (rc < 0) {
        kith__session_close(s, rc, true, false, "join of device %.*s (key %s…) refused: %s",
                            (int)m->name_len, m->name, hex, why);
        return rc;
    }
    rc = send_joined(s);
    if (rc < 0) {
        kith__session_close(s, rc, true, false, "could not answer JOIN: %s", kith_strerror(rc));
        return rc;
    }
    kith__session_close(s, 0, false, false, "device %.*s (key %s…) joined the group",
                        (int)m->name_len, m->name, hex);
    return 0;
}

/* ---- kith_join ------------------------------------------------------------------------ */

/* What one attempt at one address came to. */
enum attempt {
    ATTEMPT_JOINED,    /* the records are adopted */
    ATTEMPT_REFUSED,   /* the inviter said no (final) */
    ATTEMPT_UNREACHED, /* no answer, refused connection or handshake: try the next address */
};

/* The next event on the monitor: a kith code for a failed handshake, KITH_ECLOSED for a
 * refused TCP connection, or 0. */
static int
monitor_event(void *mon)
{
    zmq_msg_t ev, addr;
    uint16_t event = 0;

    zmq_msg_init(&ev);
    zmq_msg_init(&addr);
    if (zmq_msg_recv(&ev, mon, ZMQ_DONTWAIT) >= 0) {
        if (zmq_msg_more(&ev))
            (void)zmq_msg_recv(&addr, mon, ZMQ_DONTWAIT);
        if (zmq_msg_size(&ev) >= 2)
            memcpy(&event, zmq_msg_data(&ev), sizeof(event));
    }
    zmq_msg_close(&addr);
    zmq_msg_close(&ev);
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        return KITH_EUNTRUSTED;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
        event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        return KITH_EPROTO;
    if (event == ZMQ_EVENT_CONNECT_RETRIED)
        return KITH_ECLOSED;
    return 0;
}

struct joiner {
    kith_replica *r;
    const struct kith__invite *iv;
    const char *name;
    int timeout_ms;
    void *zctx;
    uint8_t pub[32], sec[32], srv[32];
    char why[300]; /* the last attempt's failure */
    int rc;        /* its code */
};

/* Send JOIN to `ep` and wait for the answer; on JOINED adopt the group. */
static enum attempt
attempt(struct joiner *j, const char *ep, size_t k)
{
    struct kith__msg m, in;
    uint8_t pk[KITH_PUBKEY_BYTES], mac[KITH_HASH_BYTES];
    char mon_ep[64];
    void *sock = NULL, *mon = NULL;
    msgpack_sbuffer sb;
    enum attempt out = ATTEMPT_UNREACHED;
    int rc;

    snprintf(mon_ep, sizeof mon_ep, "inproc://kith-join-mon-%zu", k);
    if ((rc = kith__client_socket(j->zctx, j->pub, j->sec, j->srv, ep, mon_ep, &sock)) < 0) {
        j->rc = rc;
        snprintf(j->why, sizeof j->why, "%s: cannot connect: %s", ep, kith_strerror(rc));
        return ATTEMPT_UNREACHED;
    }
    mon = zmq_socket(j->zctx, ZMQ_PAIR);
    if (mon && zmq_connect(mon, mon_ep) != 0) {
        zmq_close(mon);
        mon = NULL;
    }
    kith_replica_pubkey(j->r, pk);
    kith__invite_mac(j->iv->secret, j->iv->inviter, pk, j->name, strlen(j->name), mac);
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_JOIN;
    m.join_pk = pk;
    m.name = j->name;
    m.name_len = strlen(j->name);
    m.mac = mac;
    msgpack_sbuffer_init(&sb);
    if ((rc = kith__wire_encode(&m, &sb)) == 0) {
        size_t len = sb.size;
        rc = kith__send_frame(sock, NULL, 0, msgpack_sbuffer_release(&sb), len);
    }
    msgpack_sbuffer_destroy(&sb);
    sodium_memzero(mac, sizeof mac);
    if (rc < 0) {
        j->rc = rc;
        snprintf(j->why, sizeof j->why, "%s: could not send JOIN: %s", ep, kith_strerror(rc));
        goto out_close;
    }
    j->rc = KITH_ETIMEDOUT;
    snprintf(j->why, sizeof j->why, "%s: no answer in %d ms", ep, j->timeout_ms);
    for (int64_t end = kith__mono_ms() + j->timeout_ms; kith__mono_ms() < end;) {
        zmq_pollitem_t items[2] = {{sock, 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}};
        int64_t left = end - kith__mono_ms();
        if (zmq_poll(items, mon ? 2 : 1, left < 100 ? (long)left : 100) < 0 && errno != EINTR)
            break;
        if (mon && (items[1].revents & ZMQ_POLLIN)) {
            int ev = monitor_event(mon);
            if (ev == KITH_EUNTRUSTED) {
                /* ZAP said no: no invite is open there, or this key was removed */
                j->rc = KITH_EUNTRUSTED;
                snprintf(j->why, sizeof j->why,
                         "%s refused the connection: the inviter has no open invite (it expired "
                         "or was used) or does not admit this device",
                         ep);
                out = ATTEMPT_REFUSED;
                break;
            }
            if (ev < 0) {
                j->rc = ev == KITH_ECLOSED ? KITH_ETIMEDOUT : ev;
                snprintf(j->why, sizeof j->why, "%s: %s", ep,
                         ev == KITH_ECLOSED ? "connection refused" : "handshake failed");
                break;
            }
        }
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;
        zmq_msg_t f;
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f);
            continue;
        }
        rc = kith__wire_decode(zmq_msg_data(&f), zmq_msg_size(&f), &in);
        if (rc < 0 || (in.type != KITH__MSG_JOINED && in.type != KITH__MSG_REFUSE)) {
            j->rc = rc < 0 ? rc : KITH_EPROTO;
            snprintf(j->why, sizeof j->why, "%s answered JOIN with %s", ep,
                     rc < 0 ? "a malformed frame" : kith__wire_name(in.type));
            out = ATTEMPT_REFUSED;
        } else if (in.type == KITH__MSG_REFUSE) {
            j->rc = in.code <= -9001 && in.code >= -9100 ? in.code : KITH_EPROTO;
            snprintf(j->why, sizeof j->why, "the inviter refused: %.*s", (int)in.reason_len,
                     in.reason);
            out = ATTEMPT_REFUSED;
        } else {
            rc = kith__join_adopt(j->r, in.group, in.records, in.record_lens, in.nrecords);
            j->rc = rc;
            if (rc < 0)
                snprintf(j->why, sizeof j->why, "the group's records were not taken: %s (%s)",
                         kith_strerror(rc), kith_errmsg(j->r));
            out = rc < 0 ? ATTEMPT_REFUSED : ATTEMPT_JOINED;
        }
        kith__wire_clear(&in);
        zmq_msg_close(&f);
        break;
    }
out_close:
    if (mon)
        zmq_close(mon);
    zmq_close(sock);
    return out;
}

KITH_API int
kith_join(kith_replica *r, const char *code, const char *device_name, int timeout_ms,
          kith_join_info *info)
{
    struct kith__invite iv;
    struct joiner j;
    kith_group_info g;
    char why[200];
    int64_t now = kith__now_ms();
    int rc;

    if (info)
        memset(info, 0, sizeof *info);
    if (!r || !code)
        return KITH_EINVAL;
    rc = kith__invite_decode(code, strlen(code), &iv, why, sizeof why);
    if (rc < 0)
        return kith__fail(r, rc, "%s", why);
    char host[KITH_DEVICE_NAME_MAX + 1];
    if (!device_name) {
        host_name(host);
        device_name = host;
    }
    if (!name_ok(device_name)) {
        rc = kith__fail(r, KITH_EINVAL, "a device name is 1 to %d bytes of UTF-8 without NUL",
                        KITH_DEVICE_NAME_MAX);
        goto out_wipe;
    }
    if ((int64_t)iv.expiry_s * 1000 <= now) {
        rc = kith__fail(r, KITH_EINVAL,
                        "the invite expired %lld s ago (by this device's clock): ask for a new one",
                        (long long)((now - (int64_t)iv.expiry_s * 1000) / 1000));
        goto out_wipe;
    }
    if (iv.naddrs == 0) {
        rc = kith__fail(r, KITH_EINVAL, "the invite names no address to connect to");
        goto out_wipe;
    }
    uint8_t self[KITH_PUBKEY_BYTES];
    kith_replica_pubkey(r, self);
    if (memcmp(self, iv.inviter, sizeof self) == 0) {
        rc = kith__fail(r, KITH_EINVAL, "this is this device's own invite");
        goto out_wipe;
    }
    if ((rc = kith_group_get(r, &g)) < 0)
        goto out_wipe;
    if (g.in_group && g.members > 1) {
        rc = kith__fail(r, KITH_EEXIST,
                        "this device is in group %s with %zu members already: a device "
                        "belongs to one group",
                        g.id, g.members);
        goto out_wipe;
    }

    memset(&j, 0, sizeof j);
    j.r = r;
    j.iv = &iv;
    j.name = device_name;
    j.timeout_ms = timeout_ms > 0 ? timeout_ms : KITH__NET_TIMEOUT_MS;
    if ((rc = kith_curve_keys(r, j.pub, j.sec)) < 0 ||
        (rc = kith_curve_public(iv.inviter, j.srv)) < 0)
        goto out_wipe_keys;
    if (!(j.zctx = zmq_ctx_new())) {
        rc = -ENOMEM;
        goto out_wipe_keys;
    }
    enum attempt got = ATTEMPT_UNREACHED;
    size_t k = 0;
    for (; k < iv.naddrs && got == ATTEMPT_UNREACHED; k++)
        got = attempt(&j, iv.addrs[k], k);
    zmq_ctx_term(j.zctx);
    if (got != ATTEMPT_JOINED) {
        rc = kith__fail(r, j.rc < 0 ? j.rc : KITH_ETIMEDOUT, "%s", j.why);
        goto out_wipe_keys;
    }
    const char *ep = iv.addrs[k - 1];
    if (info) {
        if (kith_group_get(r, &g) == 0)
            snprintf(info->group_id, sizeof info->group_id, "%s", g.id);
        info->inviter_id = kith_id_from_pubkey(iv.inviter);
        snprintf(info->endpoint, sizeof info->endpoint, "%s", ep);
    }
    /* the inviter is where this device syncs first, and keeps its address */
    if ((rc = kith_trust_add(r, iv.inviter, NULL, ep)) < 0) {
        rc = kith__fail(r, rc, "joined, but the inviter's address was not recorded: %s",
                        kith_strerror(rc));
        goto out_wipe_keys;
    }
    rc = kith_sync(r, ep, iv.inviter, j.timeout_ms, info ? &info->sync : NULL);
out_wipe_keys:
    sodium_memzero(j.sec, sizeof j.sec);
out_wipe:
    sodium_memzero(&iv, sizeof iv);
    return rc;
}
