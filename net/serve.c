/*
 * serve.c — kith_serve, the sync daemon (spec/protocol.md "Daemon"). One thread, one
 * zmq_poll loop over: the ROUTER that peers connect to (CURVE, ZAP-checked), one DEALER per
 * known peer (trusted peers with an address, and opts->peers), a signalfd for SIGTERM and
 * SIGINT, an inotify watch on the replica's data.mdb (a commit by any process modifies it, so
 * a write by the CLI or an app is pushed without polling), and the discovery beacon socket.
 * Timers (anti-entropy, keep-alive, per-peer timeouts, reconnect backoff, beacons) are
 * checked each turn; the poll never sleeps more than 100 ms, so a stop request is seen fast.
 * The ROUTER's monitor events go to the guard (transport.c), which sheds connections that
 * have not finished their handshake when there are too many or descriptors run low.
 *
 * No call blocks on a peer: sends are non-blocking and bounded by the window, receives are
 * drained without waiting, and a peer that stops answering is dropped after timeout_ms while
 * the others go on. A batch is applied inside kith_batch_apply (one LMDB transaction), so a
 * stop between two frames never leaves half a batch.
 */
#include "daemon.h"
#include "store.h" /* kith__listen_record */

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

/* When to look at the vector again after an inotify wake-up (ms). The commit usually shows
 * within a millisecond or two, but on a loaded machine the meta page's sync can take longer:
 * looks close together at first keep a miss from costing a whole 20 ms step (each look is one
 * read transaction); 20 and 250 ms are the safety net. */
static const int recheck_after[RECHECKS] = {1, 2, 3, 5, 8, 12, 20, 250};

static int
inbound_send(void *ctx, void *data, size_t len)
{
    struct inbound *in = ctx;
    return kith__send_frame(in->d->router, in->rid, in->rid_len, data, len);
}

/* ---- receiving ----------------------------------------------------------------------- */

/* Receive one message of one or more frames; returns the frame count (the last in *m), 0 when
 * nothing is queued, or < 0. The routing id (ROUTER) goes to rid. */
static int
recv_message(void *sock, bool router, uint8_t *rid, size_t *rid_len, zmq_msg_t *m)
{
    int parts = 0, more = 1;

    if (router) {
        zmq_msg_t r;
        zmq_msg_init(&r);
        if (zmq_msg_recv(&r, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&r);
            return errno == EAGAIN ? 0 : -errno;
        }
        *rid_len = zmq_msg_size(&r) <= 255 ? zmq_msg_size(&r) : 255;
        memcpy(rid, zmq_msg_data(&r), *rid_len);
        more = zmq_msg_more(&r);
        zmq_msg_close(&r);
        if (!more)
            return KITH_EMALFORMED;
    }
    while (more) {
        if (parts > 0)
            zmq_msg_close(m);
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, router ? 0 : ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(m);
            return parts == 0 && e == EAGAIN ? 0 : -e;
        }
        parts++;
        more = zmq_msg_more(m);
    }
    return parts;
}

static struct inbound *
inbound_find(struct daemon *d, const uint8_t *rid, size_t rid_len, bool create)
{
    struct inbound *free_slot = NULL;
    for (size_t i = 0; i < MAX_INBOUND; i++) {
        struct inbound *in = &d->in[i];
        if (!in->used) {
            if (!free_slot)
                free_slot = in;
        } else if (in->rid_len == rid_len && memcmp(in->rid, rid, rid_len) == 0) {
            return in;
        }
    }
    if (!create || !free_slot)
        return NULL;
    memset(free_slot, 0, sizeof(*free_slot));
    free_slot->used = true;
    free_slot->d = d;
    memcpy(free_slot->rid, rid, rid_len);
    free_slot->rid_len = rid_len;
    kith__session_init_server(&free_slot->s, d->r, &d->log, kith__daemon_peer, d, inbound_send,
                              free_slot);
    return free_slot;
}

static void
on_router(struct daemon *d)
{
    for (int k = 0; k < 64; k++) {
        uint8_t rid[256];
        size_t rid_len = 0;
        zmq_msg_t m;
        int parts = recv_message(d->router, true, rid, &rid_len, &m);
        if (parts == 0)
            return;
        if (parts < 0) {
            kith__log(&d->log, KITH_LOG_WARNING, "a peer sent a frame without content");
            continue;
        }
        int fd = zmq_msg_get(&m, ZMQ_SRCFD);
        if (fd >= 0)
            kith__guard_admitted(&d->guard, fd);
        struct inbound *in = inbound_find(d, rid, rid_len, true);
        if (!in) {
            kith__log(&d->log, KITH_LOG_WARNING, "too many connected peers; one ignored");
            zmq_msg_close(&m);
            continue;
        }
        if (in->s.state == KITH__SS_NEW && !in->s.has_zap_curve) {
            const char *user = zmq_msg_gets(&m, "User-Id");
            size_t got = 0;
            if (user &&
                sodium_hex2bin(in->s.zap_curve, 32, user, strlen(user), NULL, &got, NULL) == 0 &&
                got == 32)
                in->s.has_zap_curve = true;
        }
        if (parts > 1)
            kith__session_close(&in->s, KITH_EMALFORMED, true, false,
                                "multi-part message of %d frames", parts);
        else
            (void)kith__session_input(&in->s, zmq_msg_data(&m), zmq_msg_size(&m));
        zmq_msg_close(&m);
        if (in->s.state == KITH__SS_CLOSED)
            in->used = false;
    }
}

static void
on_link(struct daemon *d, struct link *l)
{
    (void)d;
    for (int k = 0; k < 64 && l->sock; k++) {
        zmq_msg_t m;
        int parts = recv_message(l->sock, false, NULL, NULL, &m);
        if (parts == 0)
            return;
        if (parts < 0) {
            kith__link_fail(l, parts, "receive failed");
            return;
        }
        if (parts > 1)
            kith__session_close(&l->s, KITH_EMALFORMED, true, false, "multi-part message");
        else
            (void)kith__session_input(&l->s, zmq_msg_data(&m), zmq_msg_size(&m));
        zmq_msg_close(&m);
        if (l->s.state == KITH__SS_CLOSED) {
            kith__link_fail(l, l->s.error, l->s.why);
            return;
        }
        if (l->s.state == KITH__SS_OPEN && l->failures) {
            l->failures = 0;
            kith__log(&d->log, KITH_LOG_INFO, "peer %016llx at %s: connected",
                      (unsigned long long)l->id, l->endpoint);
        }
    }
}

/* ---- push, relay, anti-entropy ------------------------------------------------------- */

static void
want_all(struct daemon *d)
{
    for (size_t i = 0; i < MAX_LINKS; i++)
        if (d->links[i].used && d->links[i].sock && d->links[i].s.state == KITH__SS_OPEN)
            d->links[i].s.want = true;
    for (size_t i = 0; i < MAX_INBOUND; i++)
        if (d->in[i].used && d->in[i].s.state == KITH__SS_OPEN)
            d->in[i].s.want = true;
}

/* Has the replica's vector moved since we last pushed? Then every peer may lack something. */
static void
check_vv(struct daemon *d)
{
    kith_vv cur = {0, NULL};
    if (kith_vv_get(d->r, &cur) < 0)
        return;
    if (kith__netvv_ahead(&cur, &d->last_vv)) {
        kith__log(&d->log, KITH_LOG_DEBUG, "the replica changed: pushing");
        want_all(d);
        (void)kith__netvv_set(&d->last_vv, &cur);
    }
    kith_vv_free(&cur);
}

/* Did the group's records change (a device joined here, a batch brought records, another
 * process removed a device)? Then every open session of protocol 4 with a member of the same
 * group owes the peer our records again (NET-29): its next batch carries them. */
static void
check_group(struct daemon *d)
{
    uint8_t gid[KITH__WIRE_GROUP_BYTES], digest[KITH_HASH_BYTES];
    MDB_txn *txn;
    int rc;

    if (kith__mdb_begin(d->r, MDB_RDONLY, &txn) < 0)
        return;
    rc = kith__group_summary(d->r, txn, gid, digest);
    mdb_txn_abort(txn);
    kith__mdb_end(d->r);
    if (rc <= 0 || memcmp(digest, d->last_gdigest, sizeof digest) == 0)
        return;
    memcpy(d->last_gdigest, digest, sizeof digest);
    for (size_t i = 0; i < MAX_LINKS + MAX_INBOUND; i++) {
        struct kith__session *s =
            i < MAX_LINKS ? (d->links[i].used && d->links[i].sock ? &d->links[i].s : NULL)
                          : (d->in[i - MAX_LINKS].used ? &d->in[i - MAX_LINKS].s : NULL);
        if (!s || s->state != KITH__SS_OPEN || s->proto < 4 ||
            memcmp(s->peer_group, gid, sizeof gid) != 0 ||
            memcmp(s->peer_gdigest, digest, sizeof digest) == 0)
            continue;
        memcpy(s->group, gid, sizeof gid);
        memcpy(s->gdigest, digest, sizeof digest);
        s->records_due = true;
        s->want = true;
    }
}

static void
drain_inotify(struct daemon *d)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int64_t now = kith__mono_ms();
    while (read(d->inofd, buf, sizeof(buf)) > 0)
        ;
    kith__daemon_sweep_trust(d);
    check_vv(d);
    check_group(d);
    /* LMDB writes the meta page (our event) a moment before it publishes the new txnid to
     * readers, so the commit that woke us may not be visible yet: look again shortly. */
    for (int i = 0; i < RECHECKS; i++)
        d->recheck_ms[i] = now + recheck_after[i];
}

/* A commit held for a clock ahead of ours falls due as the clock catches up, but nothing
 * arrives to apply it once the peers fall quiet: look each second while anything is held,
 * and apply what is due. Reading the holds is cheap; a write happens only when one is due. */
static void
apply_due_holds(struct daemon *d)
{
    kith_hold *holds = NULL;
    size_t n = 0;
    bool due = false;

    if (kith_holds_get(d->r, &holds, &n) < 0)
        return;
    for (size_t i = 0; i < n && !due; i++)
        due = holds[i].reason == KITH_HOLD_READY;
    kith_holds_free(holds, n);
    if (!due)
        return;
    kith_apply_info info;
    int rc = kith_holds_apply(d->r, &info);
    if (rc < 0)
        kith__log(&d->log, KITH_LOG_WARNING, "cannot apply held ops: %s (%s)", kith_strerror(rc),
                  kith_errmsg(d->r));
    else if (info.ops_applied > 0)
        kith__log(&d->log, KITH_LOG_INFO, "applied %llu held ops whose time came; %llu still held",
                  (unsigned long long)info.ops_applied, (unsigned long long)info.ops_pending);
}

static void
timers(struct daemon *d)
{
    int64_t now = kith__mono_ms();

    if (now >= d->next_hold_check_ms) {
        d->next_hold_check_ms = now + 1000;
        apply_due_holds(d);
    }

    for (size_t i = 0; i < MAX_LINKS; i++) {
        struct link *l = &d->links[i];
        if (!l->used)
            continue;
        if (!l->sock) {
            if (now >= l->next_attempt_ms && !d->stopping)
                kith__link_connect(l);
            continue;
        }
        if (now - l->s.last_rx_ms > d->timeout_ms) {
            kith__link_fail(l, KITH_ETIMEDOUT,
                            l->s.state == KITH__SS_HELLO ? "no answer to HELLO"
                                                         : "peer went silent");
        } else if (l->s.state == KITH__SS_OPEN && now - l->s.last_tx_ms > d->timeout_ms / 3 &&
                   now - l->s.last_rx_ms > d->timeout_ms / 3) {
            if (kith__session_ping(&l->s) < 0)
                kith__link_fail(l, l->s.error, "could not send PING");
        }
        kith__session_tick(&l->s);
    }
    for (size_t i = 0; i < MAX_INBOUND; i++) {
        struct inbound *in = &d->in[i];
        if (in->used && now - in->s.last_rx_ms > d->timeout_ms) {
            kith__session_close(&in->s, KITH_ETIMEDOUT, false, false, "peer went silent");
            in->used = false;
        } else if (in->used) {
            kith__session_tick(&in->s);
        }
    }
    if (now >= d->next_ae_ms) {
        d->next_ae_ms = now + d->interval_ms;
        kith__links_refresh(d);
        kith__daemon_sweep_trust(d);
        check_group(d);
        for (size_t i = 0; i < MAX_LINKS; i++)
            if (d->links[i].used && d->links[i].sock)
                (void)kith__session_announce(&d->links[i].s);
    }
    if (d->bfd >= 0 && d->bound[0] && now >= d->next_beacon_ms) {
        int period = d->interval_ms / 4;
        period = period < 500 ? 500 : period > 5000 ? 5000 : period;
        d->next_beacon_ms = now + period;
        int rc = kith__beacon_send(d->bfd, d->r, d->beacon_port, d->bound);
        if (rc < 0)
            kith__log(&d->log, KITH_LOG_DEBUG, "beacon not sent: %s", kith_strerror(rc));
    }
    for (int i = 0; i < RECHECKS; i++)
        if (d->recheck_ms[i] && now >= d->recheck_ms[i]) {
            d->recheck_ms[i] = 0;
            check_vv(d);
        }
    if (d->inofd < 0 && now >= d->next_vv_check_ms) {
        d->next_vv_check_ms = now + 200; /* no inotify: look at the vector instead */
        check_vv(d);
    }
}

static void
pump_all(struct daemon *d)
{
    bool applied = false;
    for (size_t i = 0; i < MAX_LINKS; i++)
        if (d->links[i].used && d->links[i].sock && d->links[i].s.applied) {
            d->links[i].s.applied = false;
            applied = true;
        }
    for (size_t i = 0; i < MAX_INBOUND; i++)
        if (d->in[i].used && d->in[i].s.applied) {
            d->in[i].s.applied = false;
            applied = true;
        }
    if (applied) {
        check_vv(d); /* relay what we just received to everyone else */
        check_group(d);
    }
    for (size_t i = 0; i < MAX_LINKS; i++) {
        struct link *l = &d->links[i];
        if (l->used && l->sock && l->s.state == KITH__SS_CLOSED) {
            kith__link_fail(l, l->s.error, l->s.why); /* closed from elsewhere (superseded) */
            continue;
        }
        if (l->used && l->sock && l->s.state == KITH__SS_OPEN) {
            (void)kith__session_pump(&l->s);
            if (l->s.state == KITH__SS_CLOSED)
                kith__link_fail(l, l->s.error, l->s.why);
        }
    }
    for (size_t i = 0; i < MAX_INBOUND; i++) {
        struct inbound *in = &d->in[i];
        if (in->used && in->s.state == KITH__SS_CLOSED) {
            in->used = false;
            continue;
        }
        if (in->used && in->s.state == KITH__SS_OPEN) {
            (void)kith__session_pump(&in->s);
            if (in->s.state == KITH__SS_CLOSED)
                in->used = false;
        }
    }
}

/* ---- set-up and the loop ------------------------------------------------------------- */

static void
on_signal(struct daemon *d)
{
    struct signalfd_siginfo si;
    while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        kith__log(&d->log, KITH_LOG_INFO, "stopping on %s",
                  si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
        d->stopping = true;
    }
}

static int
watch_replica(struct daemon *d)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/data.mdb", kith_replica_path(d->r));
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    d->inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->inofd < 0)
        return -errno;
    if (inotify_add_watch(d->inofd, path, IN_MODIFY | IN_CLOSE_WRITE) < 0) {
        int rc = -errno;
        close(d->inofd);
        d->inofd = -1;
        return rc;
    }
    return 0;
}

static void
run(struct daemon *d)
{
    while (!d->stopping) {
        zmq_pollitem_t items[MAX_POLL];
        struct link *owner[MAX_POLL];
        int n = 0, irouter = -1, isig = -1, iino = -1, ibea = -1, imon = -1;

        if (d->o->stop && *d->o->stop) {
            kith__log(&d->log, KITH_LOG_INFO, "stopping on request");
            break;
        }
        memset(owner, 0, sizeof(owner));
        if (d->router) {
            irouter = n;
            items[n++] = (zmq_pollitem_t){d->router, 0, ZMQ_POLLIN, 0};
        }
        for (size_t i = 0; i < MAX_LINKS; i++)
            if (d->links[i].used && d->links[i].sock) {
                owner[n] = &d->links[i];
                items[n++] = (zmq_pollitem_t){d->links[i].sock, 0, ZMQ_POLLIN, 0};
            }
        isig = n;
        items[n++] = (zmq_pollitem_t){NULL, d->sigfd, ZMQ_POLLIN, 0};
        if (d->inofd >= 0) {
            iino = n;
            items[n++] = (zmq_pollitem_t){NULL, d->inofd, ZMQ_POLLIN, 0};
        }
        if (d->bfd >= 0) {
            ibea = n;
            items[n++] = (zmq_pollitem_t){NULL, d->bfd, ZMQ_POLLIN, 0};
        }
        if (d->guard.mon) {
            imon = n;
            items[n++] = (zmq_pollitem_t){d->guard.mon, 0, ZMQ_POLLIN, 0};
        }
        long wait = 100;
        int64_t now = kith__mono_ms();
        for (int i = 0; i < RECHECKS; i++)
            if (d->recheck_ms[i] && d->recheck_ms[i] - now < wait)
                wait = d->recheck_ms[i] > now ? (long)(d->recheck_ms[i] - now) : 0;
        int rc = zmq_poll(items, n, wait);
        if (rc < 0 && errno != EINTR) {
            kith__log(&d->log, KITH_LOG_ERROR, "poll failed: %s", strerror(errno));
            break;
        }
        if (rc > 0) {
            if (items[isig].revents & ZMQ_POLLIN)
                on_signal(d);
            if (irouter >= 0 && (items[irouter].revents & ZMQ_POLLIN))
                on_router(d);
            for (int i = 0; i < n; i++)
                if (owner[i] && (items[i].revents & ZMQ_POLLIN))
                    on_link(d, owner[i]);
            if (iino >= 0 && (items[iino].revents & ZMQ_POLLIN))
                drain_inotify(d);
            if (ibea >= 0 && (items[ibea].revents & ZMQ_POLLIN))
                kith__daemon_on_beacon(d);
            if (imon >= 0 && (items[imon].revents & ZMQ_POLLIN))
                kith__guard_on_events(&d->guard);
        }
        kith__guard_tick(&d->guard);
        timers(d);
        pump_all(d);
    }
}

KITH_API int
kith_serve(kith_replica *r, const kith_serve_opts *opts)
{
    struct daemon *d;
    sigset_t set, old;
    int rc;

    if (!r || !opts || (opts->npeers && !opts->peers))
        return KITH_EINVAL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return KITH_ENOMEM;
    d->r = r;
    d->o = opts;
    d->sigfd = d->inofd = d->bfd = -1;
    kith__log_init(&d->log, opts->log_level, opts->log_json);
    if ((rc = kith__log_to(&d->log, opts->on_log, opts->on_log_arg)) < 0)
        goto out_free;
    d->interval_ms = opts->interval_ms > 0 ? opts->interval_ms : 30000;
    d->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : KITH__NET_TIMEOUT_MS;
    d->beacon_port = opts->beacon_port ? opts->beacon_port : KITH__BEACON_PORT;
    if (opts->npeers && !(d->warned = calloc(opts->npeers, sizeof(bool)))) {
        rc = KITH_ENOMEM;
        goto out_free;
    }

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if ((rc = -pthread_sigmask(SIG_BLOCK, &set, &old)) < 0)
        goto out_free;
    d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (d->sigfd < 0) {
        rc = -errno;
        goto out_sigmask;
    }
    if ((rc = watch_replica(d)) < 0)
        kith__log(&d->log, KITH_LOG_WARNING,
                  "cannot watch the replica (%s); checking its vector every 200 ms instead",
                  kith_strerror(rc));
    if ((rc = kith_curve_keys(r, d->cpub, d->csec)) < 0)
        goto out_fds;
    d->zctx = zmq_ctx_new();
    if (!d->zctx) {
        rc = -ENOMEM;
        goto out_fds;
    }
    if (opts->listen) {
        int handshake_ms = opts->handshake_ms > 0 ? opts->handshake_ms : KITH__HANDSHAKE_MS;
        rc = kith__zap_start(&d->zap, d->zctx, kith__admit_trusted, r, &d->log);
        if (rc < 0)
            goto out_ctx;
        rc = kith__guard_open(&d->guard, d->zctx, handshake_ms, &d->log);
        if (rc < 0)
            goto out_zap;
        rc = kith__server_socket(d->zctx, d->csec, opts->listen, handshake_ms, d->guard.endpoint,
                                 &d->router, d->bound, sizeof(d->bound));
        if (rc < 0) {
            kith__log(&d->log, KITH_LOG_ERROR, "cannot listen on %s: %s", opts->listen,
                      kith_strerror(rc));
            goto out_guard;
        }
        kith__guard_bound(&d->guard, d->bound);
        /* what kith_invite_create offers a joiner when it is given no address (D-17) */
        if ((rc = kith__listen_record(r, d->bound)) < 0 && rc != KITH_EREADONLY)
            kith__log(&d->log, KITH_LOG_WARNING, "could not record the listen address: %s",
                      kith_strerror(rc));
        kith__log(&d->log, KITH_LOG_INFO, "replica %016llx listening on %s",
                  (unsigned long long)kith_replica_id(r), d->bound);
        kith__log(&d->log, KITH_LOG_DEBUG,
                  "%ld of %ld file descriptors in use; handshakes must finish within %d ms",
                  d->guard.fd_used, d->guard.fd_limit, handshake_ms);
        if (opts->on_listen)
            opts->on_listen(opts->on_listen_arg, d->bound);
    }
    {
        /* a mark from before this start: say once that writes wait for a peer (RESTORE-5) */
        kith_status *st = NULL;
        if (kith_status_get(r, &st) == 0 && st->restored_seq != 0 && !st->restored_accepted)
            kith__log(&d->log, KITH_LOG_WARNING,
                      "this replica was restored from a copy: peer %016llx holds its own ops up "
                      "to seq %llu; local writes fail until a sync takes them back",
                      (unsigned long long)st->restored_from, (unsigned long long)st->restored_seq);
        kith_status_free(st);
    }
    if (opts->discover) {
        d->bfd = kith__beacon_open(d->beacon_port);
        if (d->bfd < 0)
            kith__log(&d->log, KITH_LOG_WARNING, "discovery off: %s", kith_strerror(d->bfd));
    }
    {
        kith_vv cur = {0, NULL};
        if (kith_vv_get(r, &cur) == 0) {
            (void)kith__netvv_set(&d->last_vv, &cur);
            kith_vv_free(&cur);
        }
    }
    kith__links_refresh(d);
    d->next_ae_ms = kith__mono_ms() + d->interval_ms;
    kith__sd_notify("READY=1");
    run(d);
    kith__sd_notify("STOPPING=1");
    rc = 0;

    for (size_t i = 0; i < MAX_LINKS; i++) {
        struct link *l = &d->links[i];
        if (l->used && l->sock && l->s.state != KITH__SS_CLOSED)
            kith__session_close(&l->s, 0, false, true, "stopping");
        kith__link_disconnect(l);
    }
    for (size_t i = 0; i < MAX_INBOUND; i++)
        if (d->in[i].used && d->in[i].s.state != KITH__SS_CLOSED)
            kith__session_close(&d->in[i].s, 0, false, true, "stopping");
    on_signal(d); /* consume a signal that came late, before unblocking it */
out_guard:
    kith__guard_close(&d->guard, d->router);
    if (d->router)
        zmq_close(d->router);
out_zap:
    kith__zap_stop(&d->zap);
out_ctx:
    zmq_ctx_term(d->zctx);
out_fds:
    if (d->bfd >= 0)
        close(d->bfd);
    if (d->inofd >= 0)
        close(d->inofd);
    close(d->sigfd);
out_sigmask:
    pthread_sigmask(SIG_SETMASK, &old, NULL);
out_free:
    kith__log_close(&d->log);
    sodium_memzero(d->csec, sizeof(d->csec));
    for (size_t i = 0; i < d->npeers; i++) {
        kith__peerstate_clear(d->peers[i]);
        free(d->peers[i]);
    }
    kith__netvv_clear(&d->last_vv);
    free(d->warned);
    free(d);
    return rc;
}
