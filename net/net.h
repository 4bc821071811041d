/*
 * net.h — what the files of net/ share: the logger (log.c), the CURVE sockets and the ZAP
 * handler (transport.c), the session state machine that both kith_sync and the daemon drive
 * (session.c), and the LAN beacon (beacon.c). spec/protocol.md is the reference; the message
 * table is in wire.h.
 *
 * A session knows nothing of sockets: it is given a function that sends one frame, and fed
 * the frames that arrive. So one engine serves the DEALER of kith_sync, the DEALERs of the
 * daemon and every peer on the daemon's ROUTER, and the tests can drive it directly.
 */
#ifndef KITH_NET_H
#define KITH_NET_H

#include "kith.h"
#include "wire.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93 /* a draft name in Debian's zmq.h; libzmq 4.3 honours it */
#endif

#define KITH__ZAP_DOMAIN "kith"
#define KITH__NET_TIMEOUT_MS 10000 /* default silence after which a peer is given up */
#define KITH__PING_MS 1000         /* kith_sync pings after this much silence */
#define KITH__SUPERSEDE_MS 1000    /* a streaming session silent this long yields to a new one */
#define KITH__FETCH_MAX 16         /* origins one session asks the peer's history of (NET-33) */

/* ---- log.c ------------------------------------------------------------------------------ */

struct kith__log {
    int level;    /* kith_log_level: lines above it are dropped */
    bool json;    /* one JSON object per line */
    bool journal; /* stderr is the journal: "<N>" prefixes */
    void (*fn)(void *arg, int level, const char *line); /* set: lines go here, not stderr */
    void *arg;
    pthread_mutex_t fn_lock; /* one line at a time to fn (kith__log_to .. kith__log_close) */
};

void kith__log_init(struct kith__log *log, int level, bool json);
/* Hand the lines to fn (kith_serve_opts.on_log) instead of writing them, until
 * kith__log_close; fn NULL: stderr. 0 or KITH_ENOMEM. */
int kith__log_to(struct kith__log *log, void (*fn)(void *arg, int level, const char *line),
                 void *arg);
/* Undo kith__log_to (no line may be logged any more). */
void kith__log_close(struct kith__log *log);
/* One line on stderr, written whole (safe from several threads). `log` may be NULL: quiet. */
void kith__log(const struct kith__log *log, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Tell systemd (when $NOTIFY_SOCKET is set) `state`, e.g. "READY=1". Errors are ignored. */
void kith__sd_notify(const char *state);
/* Monotonic milliseconds, for timeouts. */
int64_t kith__mono_ms(void);
/* Lowercase hex of `n` bytes into out (2n + 1). */
void kith__hex(const uint8_t *p, size_t n, char *out);

/* ---- transport.c ---------------------------------------------------------------------- */

/* Does the ZAP handler admit this client CURVE key? When not, *why (a static sentence) says
 * why for the log and the ZAP status text. */
typedef bool (*kith__admit_fn)(void *ctx, const uint8_t curve_pk[32], const char **why);

struct kith__zap {
    void *sock; /* REP on inproc://zeromq.zap.01, owned by the thread once started */
    pthread_t thread;
    atomic_int stop;
    kith__admit_fn admit;
    void *admit_ctx;
    const struct kith__log *log;
    bool running;
    int64_t log_window_ms; /* refusals are logged at most a few per window */
    unsigned log_count, log_suppressed;
};

/* May this Ed25519 key sync with replica r (links.c)? A trusted, unforked peer, or a live
 * member of r's group (NET-3). Read at each call, so a change applies at once. */
bool kith__peer_admitted(kith_replica *r, const uint8_t pk[KITH_PUBKEY_BYTES]);

/* The admit function of a replica (links.c; NET-3, NET-31): keys that kith_curve_public maps
 * from an admitted Ed25519 key (kith__peer_admitted: a trusted, unforked peer or a live
 * member), and, while some invite is open, any key that is not a removed member's (such a
 * connection can only redeem the invite: JOIN). Read at each request, so trust, membership
 * and invites apply at once. A removed member is refused with a reason that says so. */
bool kith__admit_trusted(void *replica, const uint8_t curve_pk[32], const char **why);

/* Bind the ZAP endpoint in `zctx` (before any CURVE server socket exists) and start its
 * thread. 0, or -errno from ZeroMQ. */
int kith__zap_start(struct kith__zap *z, void *zctx, kith__admit_fn admit, void *admit_ctx,
                    const struct kith__log *log);
/* Stop the thread and close its socket. Takes a never-started handler. */
void kith__zap_stop(struct kith__zap *z);

/* A ROUTER with CURVE server on, the ZAP domain enforced, bound to `endpoint`; the endpoint
 * actually bound (port resolved) into `bound`. With handshake_ms > 0, a connection that has
 * not finished its handshake by then is closed (ZMQ_HANDSHAKE_IVL; else libzmq's 30 s). With
 * `monitor` (an inproc endpoint, may be NULL), the events a kith__guard reads are reported
 * there from before the bind, so no accepted connection is missed. 0 or -errno. */
int kith__server_socket(void *zctx, const uint8_t secret_x[32], const char *endpoint,
                        int handshake_ms, const char *monitor, void **out, char *bound,
                        size_t bound_cap);

/* ---- transport.c: the guard against connection floods (spec/protocol.md NET-22, NET-23) -- */

#define KITH__HANDSHAKE_MS 2000   /* the daemon's handshake interval, unless opts say otherwise */
#define KITH__PREAUTH_MAX 64      /* connections kept that have not finished their handshake */
#define KITH__FD_RESERVE 16       /* descriptors kept free for the daemon's own sockets */
#define KITH__GUARD_WARN_MS 10000 /* at most one warning of each kind per this window */

/* One accepted connection that has not (as far as the guard knows) finished its handshake. */
struct kith__preauth {
    int fd;           /* libzmq's descriptor, from ZMQ_EVENT_ACCEPTED */
    bool closing;     /* shut down by the guard; libzmq has not reported it closed yet */
    uint64_t ino;     /* the socket's inode when the event was read */
    int64_t since_ms; /* when the event was read */
};

/* Watches a ROUTER's monitor events: counts its pre-handshake connections and the process's
 * descriptors, and sheds the oldest pre-handshake connections beyond KITH__PREAUTH_MAX or when
 * fewer than KITH__FD_RESERVE descriptors are free. One thread (the daemon's) uses it. */
struct kith__guard {
    void *mon;         /* PAIR connected to `endpoint` */
    char endpoint[64]; /* inproc endpoint of the ROUTER's monitor */
    const struct kith__log *log;
    int handshake_ms; /* the ROUTER's handshake interval */
    uint16_t port;    /* the ROUTER's TCP port (0: not TCP): accepted sockets have it */
    /* the connections, oldest first, and how many */
    struct kith__preauth conn[2 * KITH__PREAUTH_MAX];
    unsigned n;
    /* RLIMIT_NOFILE's soft limit (0: unknown), and the descriptors open: counted at
     * fd_counted_ms, then moved by events (-1: unknown) */
    long fd_limit, fd_used;
    int64_t fd_counted_ms;
    bool exhausted; /* an accept failed for want of descriptors since the last count */
    /* when each kind of warning was last logged, and what happened since */
    int64_t warn_fd_ms, warn_cap_ms;
    unsigned shed_fd, shed_cap, refused;
};

/* Create the guard's PAIR and connect it to a fresh inproc endpoint (g->endpoint), before the
 * ROUTER is made with that endpoint as `monitor`. 0 or -errno. */
int kith__guard_open(struct kith__guard *g, void *zctx, int handshake_ms,
                     const struct kith__log *log);
/* The ROUTER is bound to `bound`: note its port, count descriptors. */
void kith__guard_bound(struct kith__guard *g, const char *bound);
/* Read the queued monitor events and shed what must go. */
void kith__guard_on_events(struct kith__guard *g);
/* A frame arrived from the connection on `fd` (ZMQ_SRCFD): it finished its handshake. */
void kith__guard_admitted(struct kith__guard *g, int fd);
/* Call every turn of the loop: forget connections older than the handshake interval (they
 * finished it, or libzmq closed them), recount descriptors now and then, shed, and warn. */
void kith__guard_tick(struct kith__guard *g);
/* Stop the ROUTER's monitor (router may be NULL) and close the PAIR. Takes a zeroed guard. */
void kith__guard_close(struct kith__guard *g, void *router);
/* A DEALER with CURVE client keys, connected to `endpoint` whose CURVE key is server_x;
 * with `monitor` (an inproc endpoint, may be NULL), failed handshakes and refused connection
 * attempts (ZMQ_EVENT_CONNECT_RETRIED) are reported there (set before connecting, so none is
 * missed). */
int kith__client_socket(void *zctx, const uint8_t public_x[32], const uint8_t secret_x[32],
                        const uint8_t server_x[32], const char *endpoint, const char *monitor,
                        void **out);
/* Send `len` bytes owned by malloc as one frame (ZeroMQ frees them, also on failure), after
 * an optional routing-id frame. 0, KITH_EBUSY (the peer's queue is full), or -errno. */
int kith__send_frame(void *sock, const void *rid, size_t rid_len, void *data, size_t len);

/* ---- session.c ------------------------------------------------------------------------ */

/* What this replica knows of one peer, shared by every session with it. */
struct kith__peerstate {
    uint64_t id;
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_vv known;                  /* ops the peer is known to hold (net-owned vv) */
    uint64_t acked_cursor;          /* every commit of ours at order <= this is held by the peer */
    uint64_t send_cursor;           /* where the streaming session goes on */
    struct kith__session *streamer; /* the one session sending to this peer, or NULL */
    int64_t last_record_ms;         /* when the peer record was last written */
    bool dirty;                     /* known/acked_cursor moved since the record was written */
    bool loaded;                    /* known/acked_cursor were read from the peer record */
    uint32_t failing_after;         /* failures in a row that mark it failing (0: default) */
    uint32_t proto_hint;            /* it refused our newest protocol: dial it with this one
                                       (0: unknown, try the newest); cleared when it says
                                       it speaks the newest */
    char name[64];                  /* its name in the peer record, for the log; "" if none */
};

enum kith__session_state {
    KITH__SS_NEW = 0,   /* server: waiting for HELLO */
    KITH__SS_HELLO = 1, /* client: HELLO sent, waiting for WELCOME */
    KITH__SS_OPEN = 2,
    KITH__SS_CLOSED = 3
};

struct kith__inflight {
    uint64_t seq;
    uint64_t next_cursor;
    uint64_t ops;
};

/* Sends one frame; takes ownership of `data` (malloc'd) in every case. */
typedef int (*kith__send_fn)(void *ctx, void *data, size_t len);
/* Server: the shared state of the peer with this id and key (created when first seen). */
typedef struct kith__peerstate *(*kith__peer_fn)(void *ctx, uint64_t id,
                                                 const uint8_t pk[KITH_PUBKEY_BYTES]);

struct kith__session {
    kith_replica *r;
    const struct kith__log *log;
    int state; /* enum kith__session_state */
    bool client;
    kith__send_fn send;
    void *send_ctx;
    kith__peer_fn find_peer; /* server only */
    void *peer_ctx;
    uint8_t zap_curve[32]; /* server: the client's CURVE key, as ZAP saw it */
    bool has_zap_curve;
    struct kith__peerstate *peer;
    uint64_t recv_seq; /* last BATCH seq applied */
    uint64_t send_seq; /* last BATCH seq sent */
    struct kith__inflight win[KITH__WIRE_WINDOW];
    unsigned win_head, nwin; /* ring of unacknowledged batches, oldest at win_head */
    bool want;               /* there may be ops the peer lacks: pump should look */
    bool done_sent;          /* DONE sent since the last BATCH we sent */
    bool peer_done;          /* DONE received since the last BATCH received */
    bool applied;            /* a batch changed the replica (for relaying); caller clears */
    bool diverged;           /* the peer holds another history of some origin (its heads
                                differ from ours, or a batch of it forked) */
    int64_t last_rx_ms, last_tx_ms, opened_ms;
    uint32_t proto;        /* the protocol version spoken (client: offered in HELLO) */
    uint32_t proto_max;    /* the newest this side speaks: KITH__WIRE_PROTO, or lower in a
                              test that plays an older kith (0: KITH__WIRE_PROTO) */
    int64_t hello_mono_ms; /* client: when HELLO left, for the round trip */
    int64_t hello_wall_ms; /* client: the clock HELLO carried */
    uint64_t restored_seq; /* the peer's handshake held our own origin up to this seq, beyond
                              what we held then (RESTORE-1); 0: not */
    uint8_t group[KITH__WIRE_GROUP_BYTES];      /* protocol 4: our group as our HELLO/WELCOME said
                                                   (zeros: in none) */
    uint8_t gdigest[KITH_HASH_BYTES];           /* and the digest of our group records */
    uint8_t peer_group[KITH__WIRE_GROUP_BYTES]; /* protocol 4: the peer's, from its handshake */
    uint8_t peer_gdigest[KITH_HASH_BYTES];
    bool records_due; /* same group, other digest: our next batch carries our group records,
                         and one is sent even with no ops in it (NET-29) */
    bool proofs_due;  /* protocol 4 and fork proofs held (protocol 5: and the peer's digest
                         of them differs): the next batch carries them */
    uint8_t pdigest[KITH_HASH_BYTES];      /* protocol 4 and up: the digest of our proofs as
                                              last looked at (zeros: none held) */
    uint8_t peer_pdigest[KITH_HASH_BYTES]; /* protocol 5: the peer's, from its handshake */
    unsigned fetch_out;                    /* protocol 5: FETCHes sent, not answered yet */
    unsigned nfetched;                     /* origins asked for in this session */
    uint64_t fetched[KITH__FETCH_MAX];     /* which: each is asked for at most twice a session
                                              (to prove the fork; for the kept history) */
    int error;                             /* why it closed (0: BYE) */
    char why[256];                         /* the detail, for logs and the peer record */
    kith_sync_info stats;
};

/* ---- fetch.c: the other history of a forked origin (protocol 5, spec/protocol.md NET-33) -- */

/* After the handshake: ask the peer for its history of each origin whose heads differ and
 * of which no proof is held (FETCH); nothing is recorded from the heads alone. */
void kith__fetch_suspects(struct kith__session *s, const kith_vv *vv, const uint8_t *heads);
/* Ask the peer for its history of `origin` from a point both share, below `from` (once per
 * origin and session). 0, or the error that closed the session. */
int kith__fetch_ask(struct kith__session *s, uint64_t origin, uint64_t from);
/* FETCH received: answer FETCHED with our run of the origin from the highest point both
 * share. 0 or the error that closed the session. */
int kith__fetch_answer(struct kith__session *s, const struct kith__msg *m);
/* FETCHED received: apply its batch (a fork it shows is recorded and proven there), settle
 * what a new proof settles. 0 or the error that closed the session. */
int kith__fetch_take(struct kith__session *s, const struct kith__msg *m);
/* After a batch applied: when its transaction told forks (kith__fork_notes_told) and one of
 * them is settled here with our history set aside while the peer counts it held, ask for the
 * peer's history from the shared seq (the kept one, NET-33). */
void kith__fetch_kept_after_batch(struct kith__session *s);
/* Our proofs changed (made or absorbed): the next batch carries them (protocol 4 and up). */
void kith__fetch_proofs_check(struct kith__session *s);
/* Log each fork the last transaction of this thread told (kith__fork_notes_told), once. */
void kith__log_forks_told(struct kith__session *s, const char *how);

/* A client session: sends HELLO at once. `peer` is the caller's; its id and pk are set. */
int kith__session_start_client(struct kith__session *s, kith_replica *r,
                               const struct kith__log *log, struct kith__peerstate *peer,
                               kith__send_fn send, void *send_ctx);
/* "name (id)" or "id": how the log names the session's peer. */
const char *kith__session_peer_name(const struct kith__session *s, char *buf, size_t cap);
/* A server session, waiting for HELLO. */
void kith__session_init_server(struct kith__session *s, kith_replica *r,
                               const struct kith__log *log, kith__peer_fn find_peer, void *peer_ctx,
                               kith__send_fn send, void *send_ctx);
/* Encode and send one message (after an ACK or at any time); 0 or the send's error. */
int kith__session_send(struct kith__session *s, const struct kith__msg *m);
/* JOIN received by a server session (join.c; NET-30): redeem the invite it proves, answer
 * JOINED or REFUSE, and close the session. 0 or the error that closed it. */
int kith__session_join(struct kith__session *s, const struct kith__msg *m);
/* Handle one received frame. Returns 0, or the error that closed the session (after a
 * REFUSE was sent where one is due, and a log line). */
int kith__session_input(struct kith__session *s, const void *frame, size_t len);
/* Send what the peer lacks, up to the window; DONE when nothing is left. 0 or an error that
 * closed the session. */
int kith__session_pump(struct kith__session *s);
/* Close: send REFUSE(code, why) if `refuse`, BYE if `bye`, release the stream, write the peer
 * record. Idempotent. */
void kith__session_close(struct kith__session *s, int code, bool refuse, bool bye, const char *fmt,
                         ...) __attribute__((format(printf, 5, 6)));
/* Send a PING (keep-alive while idle). 0 or the error that closed the session. */
int kith__session_ping(struct kith__session *s);
/* Anti-entropy: look again for what the peer lacks and end with a DONE carrying our
 * vector, so the peer can do the same. */
int kith__session_announce(struct kith__session *s);
/* Both sides said DONE and nothing of ours is unacknowledged. */
bool kith__session_finished(const struct kith__session *s);
/* Write the peer record now (acked vv and cursor; error as given, NULL for success). */
void kith__session_record(struct kith__session *s, const char *error);
/* Write the peer record if what the peer holds moved since it was last written and that was
 * a second ago or more (spec NET-11). Call it on every turn of a loop that keeps sessions. */
void kith__session_tick(struct kith__session *s);
/* Initialise a peer state from the replica's peer record, if there is one. */
void kith__peerstate_load(struct kith__peerstate *p, kith_replica *r);
void kith__peerstate_clear(struct kith__peerstate *p);

/* ---- links.c ------------------------------------------------------------------------ */

/* The wait before the next attempt after `failures` failures in a row (>= 1): 250 ms doubled
 * per failure, at most 30 s, times 0.75 + jitter/2000 (jitter uniform in 0..999). */
int64_t kith__backoff_ms(uint32_t failures, uint32_t jitter);
/* The same for a daemon's link, which holds at the longest step once the peer is failing:
 * `failures` >= `failing_after` (0: KITH_FAILING_AFTER). */
int64_t kith__link_backoff_ms(uint32_t failures, uint32_t failing_after, uint32_t jitter);

/* Log one line per origin whose ops a batch from `peer` left held (which origin, how many
 * ops, why: how far ahead its clock is, or the op they wait for). */
void kith__log_holds(const struct kith__log *log, kith_replica *r, uint64_t peer);

/* ---- beacon.c ------------------------------------------------------------------------- */

#define KITH__BEACON_PORT 7462
#define KITH__BEACON_GROUP "239.255.77.61"
#define KITH__BEACON_MAX 512

struct kith__beacon_msg {
    uint64_t id;
    uint8_t pk[KITH_PUBKEY_BYTES];
    int64_t time_ms;
    char endpoint[256]; /* with a wildcard host replaced by the sender's address */
};

#define KITH__BEACON_PER_SEC 50
#define KITH__BEACON_SLOTS 64

/* Which beacons are worth a look: a rate limit, and per replica the last one handled. */
struct kith__beacon_seen {
    uint64_t id;
    int64_t last_ms;   /* monotonic, when its last beacon was handled */
    int64_t last_time; /* the beacon's own time, to refuse replays */
};

struct kith__beacon_gate {
    int64_t bucket_start_ms;
    int bucket_count;
    struct kith__beacon_seen seen[KITH__BEACON_SLOTS];
};

/* May another datagram be looked at now? At most KITH__BEACON_PER_SEC a second, counted
 * before any signature is checked, so a flood costs reads, not verifications. */
bool kith__beacon_rate_ok(struct kith__beacon_gate *g, int64_t now_ms);
/* Read and discard one datagram. 0, -EAGAIN when none is queued, or -errno. */
int kith__beacon_drop(int fd);
/* Admit a checked beacon: false for our own id, within a second of the last from that id,
 * or not newer than it (a replay). */
bool kith__beacon_admit(struct kith__beacon_gate *g, const struct kith__beacon_msg *b,
                        uint64_t self, int64_t now_ms);

/* A UDP socket bound to `port` on all IPv4 addresses, joined to the beacon group. fd or
 * -errno. */
int kith__beacon_open(uint16_t port);
/* The signed beacon of this replica for `endpoint` at `time_ms` (wall clock). 0 or an error. */
int kith__beacon_build(kith_replica *r, const char *endpoint, int64_t time_ms,
                       uint8_t out[KITH__BEACON_MAX], size_t *len);
/* Announce `endpoint` on every broadcast-capable interface and the group. 0 or -errno. */
int kith__beacon_send(int fd, kith_replica *r, uint16_t port, const char *endpoint);
/* Read one datagram and check it: format, signature ("kith-bc1"), freshness. 0 with *out
 * filled, KITH_EMALFORMED / KITH_EBADSIG / KITH_EINVAL (stale), -EAGAIN when nothing is
 * queued. Trust is the caller's check. */
int kith__beacon_recv(int fd, struct kith__beacon_msg *out);

#endif /* KITH_NET_H */
