/*
 * daemon.h — the daemon's state, shared by serve.c (the poll loop, receiving, timers, pushes)
 * and links.c (the peers it dials, trust sweeps, discovery). spec/protocol.md "Daemon".
 */
#ifndef KITH_NET_DAEMON_H
#define KITH_NET_DAEMON_H

#include "net.h"

#define MAX_LINKS 64
#define MAX_INBOUND 128
#define MAX_PEERS 256
#define MAX_POLL (MAX_LINKS + 5)
#define BACKOFF_BASE_MS 250
#define BACKOFF_MAX_MS 30000
#define RECHECKS 8

struct daemon;

/* An outgoing connection to one peer. */
struct link {
    bool used;
    bool wanted; /* still in the configuration (refresh marks) */
    char endpoint[256];
    uint8_t pk[KITH_PUBKEY_BYTES];
    uint64_t id;
    void *sock; /* NULL while waiting to (re)connect */
    struct kith__session s;
    uint32_t failures;
    int64_t next_attempt_ms;
    struct daemon *d;
};

/* A peer connected to our ROUTER, known by its routing id. */
struct inbound {
    bool used;
    uint8_t rid[256];
    size_t rid_len;
    struct kith__session s;
    struct daemon *d;
};

struct daemon {
    kith_replica *r;
    const kith_serve_opts *o;
    struct kith__log log;
    void *zctx;
    void *router;
    struct kith__zap zap;
    struct kith__guard guard; /* sheds connections that do not finish their handshake */
    char bound[256];
    uint8_t cpub[32], csec[32];
    struct link links[MAX_LINKS];
    struct inbound in[MAX_INBOUND];
    struct kith__peerstate *peers[MAX_PEERS];
    size_t npeers;
    int sigfd, inofd, bfd;
    kith_vv last_vv;                       /* the vector last pushed (net-owned) */
    uint8_t last_gdigest[KITH_HASH_BYTES]; /* the group record digest last offered (NET-29) */
    int interval_ms, timeout_ms;
    uint16_t beacon_port;
    int64_t next_ae_ms, next_beacon_ms, next_vv_check_ms;
    int64_t next_hold_check_ms;   /* when to look for held commits that have fallen due */
    int64_t recheck_ms[RECHECKS]; /* look at the vector again then (0: no) */
    struct kith__beacon_gate gate;
    bool *warned; /* opts->peers endpoints we have complained about */
    bool stopping;
};

/* ---- links.c -------------------------------------------------------------------------- */

/* The shared state of the peer with this id (created, from its record, when first seen);
 * NULL when the table is full. A kith__peer_fn for server sessions. */
struct kith__peerstate *kith__daemon_peer(void *daemon, uint64_t id,
                                          const uint8_t pk[KITH_PUBKEY_BYTES]);
/* Close a link's socket (its session must be closed already or not care). */
void kith__link_disconnect(struct link *l);
/* The link failed: close its session (code, why) and socket, and schedule the next attempt
 * after kith__backoff_ms. */
void kith__link_fail(struct link *l, int code, const char *why);
/* Connect the link and send HELLO; on failure, kith__link_fail. */
void kith__link_connect(struct link *l);
/* Re-read the links from the peer records and opts->peers; drop the ones no longer wanted. */
void kith__links_refresh(struct daemon *d);
/* Close every open session whose peer is no longer trusted. */
void kith__daemon_sweep_trust(struct daemon *d);
/* Handle the beacons queued on d->bfd. */
void kith__daemon_on_beacon(struct daemon *d);

#endif /* KITH_NET_DAEMON_H */
