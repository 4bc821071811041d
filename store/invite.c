/*
 * invite.c — the invites this replica has handed out, and the endpoint its daemon listens on
 * (spec/storage.md meta "invites", "listen"; spec/protocol.md NET-30; decisions.md D-17).
 *
 * Invites are local, never replicated: they live in one meta entry, a small table of
 * secret | expiry | used, pruned of entries a day past their expiry whenever one is added.
 * The inviter needs the secret itself (not a hash of it) because the joiner proves it with a
 * MAC keyed by it. Redeeming an invite is one write transaction: the invite is marked used
 * and the joiner's ADD is signed and stored together, so a code admits exactly one device,
 * even when two joiners race with it.
 */
#include "invite.h"
#include "store.h"
#include "view.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define META_INVITES "invites"
#define META_LISTEN "listen"
#define ENTRY_BYTES 32 /* secret(16) | expiry_ms(8) | used_ms(8) */
#define MAX_INVITES 64
#define KEEP_AFTER_MS (24 * 3600 * 1000LL) /* refusals say "expired" for a day, then "unknown" */

struct table {
    uint8_t e[MAX_INVITES][ENTRY_BYTES];
    size_t n;
};

static int
table_read(kith_replica *r, MDB_txn *txn, struct table *t)
{
    MDB_val v;
    int rc = kith__meta_get(r, txn, META_INVITES, &v);

    t->n = 0;
    if (rc == KITH_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    if (v.mv_size % ENTRY_BYTES != 0 || v.mv_size / ENTRY_BYTES > MAX_INVITES)
        return kith__fail(r, KITH_ECORRUPT, "meta invites has %zu bytes", v.mv_size);
    t->n = v.mv_size / ENTRY_BYTES;
    memcpy(t->e, v.mv_data, v.mv_size);
    return 0;
}

static int64_t
expiry_of(const uint8_t *e)
{
    return (int64_t)kith__be64_get(e + 16);
}

static int64_t
used_of(const uint8_t *e)
{
    return (int64_t)kith__be64_get(e + 24);
}

struct put_ctx {
    const uint8_t *secret;
    int64_t expiry_ms, now_ms;
};

static int
put_txn(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct put_ctx *c = arg;
    struct table t, keep;
    int rc = table_read(r, txn, &t);

    if (rc < 0)
        return rc;
    keep.n = 0;
    for (size_t i = 0; i < t.n; i++)
        if (expiry_of(t.e[i]) + KEEP_AFTER_MS > c->now_ms)
            memcpy(keep.e[keep.n++], t.e[i], ENTRY_BYTES);
    if (keep.n == MAX_INVITES)
        return kith__fail(r, KITH_EBUSY, "%d invites are open or recent: wait for them to expire",
                          MAX_INVITES);
    memcpy(keep.e[keep.n], c->secret, KITH__INVITE_SECRET_BYTES);
    kith__be64_put(keep.e[keep.n] + 16, (uint64_t)c->expiry_ms);
    kith__be64_put(keep.e[keep.n] + 24, 0);
    keep.n++;
    rc = kith__meta_put(r, txn, META_INVITES, keep.e, keep.n * ENTRY_BYTES);
    sodium_memzero(&t, sizeof t);
    sodium_memzero(&keep, sizeof keep);
    return rc;
}

int
kith__invite_put(kith_replica *r, const uint8_t secret[KITH__INVITE_SECRET_BYTES],
                 int64_t expiry_ms)
{
    struct put_ctx c = {secret, expiry_ms, kith__now_ms()};
    if (r->flags & KITH_RDONLY)
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    return kith__view_write(r, put_txn, &c);
}

bool
kith__invite_open(kith_replica *r, int64_t now_ms)
{
    struct table t;
    MDB_txn *txn;
    bool open = false;

    if (kith__view_begin(r, &txn) < 0)
        return false;
    if (table_read(r, txn, &t) == 0)
        for (size_t i = 0; i < t.n && !open; i++)
            open = used_of(t.e[i]) == 0 && expiry_of(t.e[i]) > now_ms;
    kith__view_end(r, txn);
    sodium_memzero(&t, sizeof t);
    return open;
}

struct redeem_ctx {
    const uint8_t *joiner;
    const char *name;
    size_t name_len;
    const uint8_t *mac;
    int64_t now_ms;
    char *why;
    size_t why_cap;
};

static int
redeem_txn(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct redeem_ctx *c = arg;
    struct table t;
    uint8_t want[KITH_HASH_BYTES];
    size_t hit = SIZE_MAX;
    int rc = table_read(r, txn, &t);

    if (rc < 0)
        return rc;
    for (size_t i = 0; i < t.n && hit == SIZE_MAX; i++) {
        kith__invite_mac(t.e[i], r->pk, c->joiner, c->name, c->name_len, want);
        if (sodium_memcmp(want, c->mac, KITH_HASH_BYTES) == 0)
            hit = i;
    }
    sodium_memzero(want, sizeof want);
    if (hit == SIZE_MAX) {
        rc = KITH_EUNTRUSTED;
        snprintf(c->why, c->why_cap,
                 "wrong secret: no invite of this device has it (a forged or mistaken code)");
    } else if (used_of(t.e[hit]) != 0) {
        rc = KITH_EUNTRUSTED;
        snprintf(c->why, c->why_cap, "the invite was used already: ask for a new one");
    } else if (expiry_of(t.e[hit]) <= c->now_ms) {
        rc = KITH_EUNTRUSTED;
        snprintf(c->why, c->why_cap, "the invite expired %lld s ago: ask for a new one",
                 (long long)((c->now_ms - expiry_of(t.e[hit])) / 1000));
    } else {
        kith__be64_put(t.e[hit] + 24, (uint64_t)c->now_ms);
        rc = kith__meta_put(r, txn, META_INVITES, t.e, t.n * ENTRY_BYTES);
        if (rc == 0)
            rc = kith__group_add_member(r, txn, c->joiner, c->name, c->name_len);
        if (rc < 0)
            snprintf(c->why, c->why_cap, "could not add the device: %s (%s)", kith_strerror(rc),
                     kith_errmsg(r));
    }
    sodium_memzero(&t, sizeof t);
    return rc;
}

int
kith__invite_redeem(kith_replica *r, const uint8_t joiner[KITH_PUBKEY_BYTES], const char *name,
                    size_t name_len, const uint8_t mac[KITH_HASH_BYTES], int64_t now_ms, char *why,
                    size_t why_cap)
{
    struct redeem_ctx c = {joiner, name, name_len, mac, now_ms, why, why_cap};
    if (why_cap)
        why[0] = '\0';
    if (r->flags & KITH_RDONLY) {
        snprintf(why, why_cap, "the inviter's replica is read-only");
        return KITH_EREADONLY;
    }
    return kith__view_write(r, redeem_txn, &c);
}

struct listen_ctx {
    const char *endpoint;
};

static int
listen_txn(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct listen_ctx *c = arg;
    MDB_val v;
    size_t n = strlen(c->endpoint);
    int rc = kith__meta_get(r, txn, META_LISTEN, &v);

    if (rc == 0 && v.mv_size == n && memcmp(v.mv_data, c->endpoint, n) == 0)
        return 0; /* as recorded */
    if (rc < 0 && rc != KITH_ENOTFOUND)
        return rc;
    return kith__meta_put(r, txn, META_LISTEN, c->endpoint, n);
}

int
kith__listen_record(kith_replica *r, const char *endpoint)
{
    struct listen_ctx c = {endpoint};
    MDB_txn *txn;
    MDB_val v;
    bool same = false;

    if (!endpoint || !*endpoint || strlen(endpoint) > KITH__INVITE_MAX_ENDPOINT)
        return KITH_EINVAL;
    if (r->flags & KITH_RDONLY)
        return KITH_EREADONLY;
    /* most starts bind where the last one did: look before taking the writer lock */
    if (kith__view_begin(r, &txn) == 0) {
        same = kith__meta_get(r, txn, META_LISTEN, &v) == 0 && v.mv_size == strlen(endpoint) &&
               memcmp(v.mv_data, endpoint, v.mv_size) == 0;
        kith__view_end(r, txn);
    }
    return same ? 0 : kith__view_write(r, listen_txn, &c);
}

int
kith__listen_get(kith_replica *r, char *out, size_t cap)
{
    MDB_txn *txn;
    MDB_val v;
    int rc = kith__view_begin(r, &txn);

    if (rc < 0)
        return rc;
    rc = kith__meta_get(r, txn, META_LISTEN, &v);
    if (rc == 0) {
        if (v.mv_size >= cap)
            rc = KITH_ETOOSMALL;
        else {
            memcpy(out, v.mv_data, v.mv_size);
            out[v.mv_size] = '\0';
        }
    }
    kith__view_end(r, txn);
    return rc;
}

struct adopt_ctx {
    const uint8_t *gid;
    const uint8_t *const *recs;
    const size_t *lens;
    size_t n;
};

static int
adopt_txn(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct adopt_ctx *c = arg;
    return kith__group_adopt(r, txn, c->gid, c->recs, c->lens, c->n);
}

int
kith__join_adopt(kith_replica *r, const uint8_t gid[16], const uint8_t *const *recs,
                 const size_t *lens, size_t n)
{
    struct adopt_ctx c = {gid, recs, lens, n};
    if (r->flags & KITH_RDONLY)
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    return kith__view_write(r, adopt_txn, &c);
}
