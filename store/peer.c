/*
 * peer.c — the trust set and the peer records: which replicas' ops this replica accepts, and
 * what it knows about syncing with each (address, what it acknowledged, retries, last error).
 *
 * One record per peer in the `peers` database, keyed by replica id (8 bytes BE). The value
 * starts with the fixed part store.h names (pk, flags) and goes on with length-prefixed
 * fields, all big-endian, laid out in store.h and spec/storage.md ("peers"):
 *
 *   pk(32) | flags(4) | cursor(8) | last_sync_ms(8) | failures(4)
 *   | name_len(1) name | addr_len(2) addr | error_len(2) error | nacked(4) | nacked x dot(16)
 *   | schema_version(8) | schema_digest(32) | clock_offset_ms(8) | clock_checked_ms(8)
 *
 * Length-prefixed fields rather than msgpack: the record is small, local, and decoded on the
 * hot path of every batch apply (kith__trusted_key); a fixed layout is checked in a few
 * comparisons and needs no allocation to read the key. The schema fields were appended by
 * kith 0.2.0: a record written before ends after the vector and reads as version 0 and a zero
 * digest (schema unknown), and is written back whole at its next change; the clock fields
 * were appended by 0.3.0 likewise (a record without them: never measured). A record of any
 * other shape is KITH_ECORRUPT. This replica itself is always trusted and never has a record.
 */
#include "store.h"
#include "view.h"

#include <stdlib.h>
#include <string.h>

#define PEER_FIXED_BYTES (32 + 4 + 8 + 8 + 4)
#define PEER_SCHEMA_BYTES (8 + KITH_HASH_BYTES) /* the tail appended in 0.2.0 */
#define PEER_CLOCK_BYTES (8 + 8)                /* and the one appended in 0.3.0 */
#define CLOCK_MOVED_MS 1000          /* an offset that moved less is not written again ... */
#define CLOCK_STALE_MS (3600 * 1000) /* ... unless the one recorded is this old */
#define PEER_NAME_MAX (sizeof(((kith_peer *)0)->name) - 1)
#define PEER_ADDR_MAX (sizeof(((kith_peer *)0)->addr) - 1)
#define PEER_ERROR_MAX (sizeof(((kith_peer *)0)->last_error) - 1)

/* A decoded peer record. Strings are copied into the kith_peer-sized buffers. */
struct peer_rec {
    uint8_t pk[KITH_PUBKEY_BYTES];
    uint32_t flags;
    uint64_t cursor;
    int64_t last_sync_ms;
    uint32_t failures;
    char name[64];
    char addr[256];
    char error[256];
    kith_vv acked;                          /* owned: entries from malloc */
    uint64_t schema_version;                /* as the peer's last handshake told it; 0 */
    uint8_t schema_digest[KITH_HASH_BYTES]; /* and zeros when unknown */
    int64_t clock_offset_ms;                /* its clock minus ours at a handshake */
    int64_t clock_checked_ms;               /* when; 0: never measured */
};

static uint32_t
be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Copy a length-prefixed string of at most `max` bytes into `out` (room for max + 1). */
static int
take_str(const uint8_t **p, const uint8_t *end, size_t lenbytes, size_t max, char *out)
{
    size_t n;

    if ((size_t)(end - *p) < lenbytes)
        return KITH_ECORRUPT;
    n = lenbytes == 1 ? (*p)[0] : ((size_t)(*p)[0] << 8 | (*p)[1]);
    *p += lenbytes;
    if (n > max || (size_t)(end - *p) < n)
        return KITH_ECORRUPT;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return 0;
}

static void
rec_free(struct peer_rec *rec)
{
    free(rec->acked.entries);
    rec->acked.entries = NULL;
    rec->acked.len = 0;
}

/*
 * Decode a record value. Assumes nothing of `val` (a damaged replica gives KITH_ECORRUPT).
 * When `full` is false only pk and flags are read (no allocation).
 */
static int
rec_decode(const MDB_val *val, bool full, struct peer_rec *rec)
{
    const uint8_t *p = val->mv_data, *end = p + val->mv_size;
    uint32_t n;
    int rc;

    memset(rec, 0, sizeof(*rec));
    if (val->mv_size < PEER_FIXED_BYTES)
        return KITH_ECORRUPT;
    memcpy(rec->pk, p, KITH_PUBKEY_BYTES);
    rec->flags = be32_get(p + 32);
    if (!full)
        return 0;
    rec->cursor = kith__be64_get(p + 36);
    rec->last_sync_ms = (int64_t)kith__be64_get(p + 44);
    rec->failures = be32_get(p + 52);
    p += PEER_FIXED_BYTES;
    if ((rc = take_str(&p, end, 1, PEER_NAME_MAX, rec->name)) < 0 ||
        (rc = take_str(&p, end, 2, PEER_ADDR_MAX, rec->addr)) < 0 ||
        (rc = take_str(&p, end, 2, PEER_ERROR_MAX, rec->error)) < 0)
        return rc;
    if (end - p < 4)
        return KITH_ECORRUPT;
    n = be32_get(p);
    p += 4;
    /* the vector, then nothing (a record from before 0.2.0), the schema tail (0.2.0), or
     * the schema and clock tails */
    size_t vbytes = (size_t)n * KITH__DOT_BYTES, left = (size_t)(end - p);
    if (left != vbytes && left != vbytes + PEER_SCHEMA_BYTES &&
        left != vbytes + PEER_SCHEMA_BYTES + PEER_CLOCK_BYTES)
        return KITH_ECORRUPT;
    if (n > 0) {
        rec->acked.entries = malloc((size_t)n * sizeof(kith_dot));
        if (!rec->acked.entries)
            return KITH_ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
            rec->acked.entries[i] = kith__dot_get(p + (size_t)i * KITH__DOT_BYTES);
            if (rec->acked.entries[i].seq == 0 ||
                (i > 0 && rec->acked.entries[i].origin <= rec->acked.entries[i - 1].origin)) {
                rec_free(rec);
                return KITH_ECORRUPT;
            }
        }
        rec->acked.len = n;
    }
    p += (size_t)n * KITH__DOT_BYTES;
    if (p < end) {
        rec->schema_version = kith__be64_get(p);
        memcpy(rec->schema_digest, p + 8, KITH_HASH_BYTES);
        p += PEER_SCHEMA_BYTES;
    }
    if (p < end) {
        rec->clock_offset_ms = (int64_t)kith__be64_get(p);
        rec->clock_checked_ms = (int64_t)kith__be64_get(p + 8);
    }
    return 0;
}

/* Encode a record into `out` (malloc'd; the caller frees). */
static int
rec_encode(const struct peer_rec *rec, MDB_val *out)
{
    size_t nl = strlen(rec->name), al = strlen(rec->addr), el = strlen(rec->error);
    size_t size = PEER_FIXED_BYTES + 1 + nl + 2 + al + 2 + el + 4 +
                  rec->acked.len * KITH__DOT_BYTES + PEER_SCHEMA_BYTES + PEER_CLOCK_BYTES;
    uint8_t *buf, *p;

    if (nl > PEER_NAME_MAX || al > PEER_ADDR_MAX || el > PEER_ERROR_MAX ||
        rec->acked.len > UINT32_MAX)
        return KITH_EINVAL;
    buf = malloc(size);
    if (!buf)
        return KITH_ENOMEM;
    p = buf;
    memcpy(p, rec->pk, KITH_PUBKEY_BYTES);
    be32_put(p + 32, rec->flags);
    kith__be64_put(p + 36, rec->cursor);
    kith__be64_put(p + 44, (uint64_t)rec->last_sync_ms);
    be32_put(p + 52, rec->failures);
    p += PEER_FIXED_BYTES;
    *p++ = (uint8_t)nl;
    memcpy(p, rec->name, nl);
    p += nl;
    *p++ = (uint8_t)(al >> 8);
    *p++ = (uint8_t)al;
    memcpy(p, rec->addr, al);
    p += al;
    *p++ = (uint8_t)(el >> 8);
    *p++ = (uint8_t)el;
    memcpy(p, rec->error, el);
    p += el;
    be32_put(p, (uint32_t)rec->acked.len);
    p += 4;
    for (size_t i = 0; i < rec->acked.len; i++, p += KITH__DOT_BYTES)
        kith__dot_put(p, rec->acked.entries[i]);
    kith__be64_put(p, rec->schema_version);
    memcpy(p + 8, rec->schema_digest, KITH_HASH_BYTES);
    p += PEER_SCHEMA_BYTES;
    kith__be64_put(p, (uint64_t)rec->clock_offset_ms);
    kith__be64_put(p + 8, (uint64_t)rec->clock_checked_ms);
    out->mv_data = buf;
    out->mv_size = size;
    return 0;
}

static void
id_key(uint8_t key[8], MDB_val *k, uint64_t id)
{
    kith__be64_put(key, id);
    k->mv_data = key;
    k->mv_size = 8;
}

/* Read the record of `id`: 0, KITH_ENOTFOUND, KITH_ECORRUPT, or an LMDB error. */
static int
rec_get(kith_replica *r, MDB_txn *txn, uint64_t id, bool full, struct peer_rec *rec)
{
    uint8_t key[8];
    MDB_val k, v;
    int rc;

    id_key(key, &k, id);
    rc = kith__mdb_get(txn, r->peers, &k, &v);
    if (rc != 0)
        return kith__mdb_err(rc);
    rc = rec_decode(&v, full, rec);
    if (rc == KITH_ECORRUPT)
        return kith__fail(r, rc, "peer record %016llx is damaged", (unsigned long long)id);
    return rc;
}

/* As rec_get (full), but a live member of the group with no record yet gets an empty one
 * (its key, not trusted pairwise), so that what a sync with it records is kept and `kith
 * devices` can say when it was last seen (spec/groups.md GRP-14). */
static int
rec_get_or_member(kith_replica *r, MDB_txn *txn, uint64_t id, struct peer_rec *rec)
{
    uint8_t pk[KITH_PUBKEY_BYTES];
    uint64_t cutoff;
    int rc = rec_get(r, txn, id, true, rec);

    if (rc != KITH_ENOTFOUND || id == r->id)
        return rc;
    if (kith__origin_key(r, txn, id, pk, &cutoff) != 0 || cutoff != UINT64_MAX)
        return KITH_ENOTFOUND; /* not a member (or a removed one) */
    memset(rec, 0, sizeof *rec);
    memcpy(rec->pk, pk, KITH_PUBKEY_BYTES);
    return 0;
}

static int
rec_put(kith_replica *r, MDB_txn *txn, uint64_t id, const struct peer_rec *rec)
{
    uint8_t key[8];
    MDB_val k, v;
    int rc;

    rc = rec_encode(rec, &v);
    if (rc < 0)
        return rc;
    id_key(key, &k, id);
    rc = kith__mdb_put(txn, r->peers, &k, &v, 0);
    free(v.mv_data);
    return rc == 0 ? 0 : kith__mdb_err(rc);
}

/* Copy `s` into a record field of capacity cap (with the NUL); KITH_EINVAL if too long. */
static int
set_str(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);

    if (n >= cap)
        return KITH_EINVAL;
    memcpy(dst, s, n + 1);
    return 0;
}

/* ---- trust ---------------------------------------------------------------------------- */

struct trust_add_ctx {
    const uint8_t *pk;
    uint64_t id;
    const char *name, *addr;
};

static int
trust_add_txn(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct trust_add_ctx *c = arg;
    struct peer_rec rec;
    int rc;

    rc = rec_get(r, txn, c->id, true, &rec);
    if (rc == KITH_ENOTFOUND) {
        memset(&rec, 0, sizeof(rec));
        memcpy(rec.pk, c->pk, KITH_PUBKEY_BYTES);
    } else if (rc < 0) {
        return rc;
    } else if (memcmp(rec.pk, c->pk, KITH_PUBKEY_BYTES) != 0) {
        rec_free(&rec);
        return kith__fail(r, KITH_EEXIST, "another key already has replica id %016llx",
                          (unsigned long long)c->id);
    }
    /* Trusting again clears a fork mark: the user has decided. */
    rec.flags = (rec.flags | KITH__PEER_TRUSTED) & ~(uint32_t)KITH__PEER_FORKED;
    if ((c->name && set_str(rec.name, sizeof(rec.name), c->name) < 0) ||
        (c->addr && set_str(rec.addr, sizeof(rec.addr), c->addr) < 0)) {
        rec_free(&rec);
        return kith__fail(r, KITH_EINVAL, "peer name or address too long");
    }
    rc = rec_put(r, txn, c->id, &rec);
    rec_free(&rec);
    return rc;
}

int
kith_trust_add(kith_replica *r, const uint8_t pk[KITH_PUBKEY_BYTES], const char *name,
               const char *addr)
{
    struct trust_add_ctx c = {.pk = pk, .name = name, .addr = addr};

    if (!r || !pk)
        return KITH_EINVAL;
    c.id = kith__id_from_pk(pk);
    if (c.id == r->id)
        return kith__fail(r, KITH_EINVAL, "that key is this replica's own");
    if ((name && strlen(name) > PEER_NAME_MAX) || (addr && strlen(addr) > PEER_ADDR_MAX))
        return kith__fail(r, KITH_EINVAL, "peer name (max %zu) or address (max %zu) too long",
                          (size_t)PEER_NAME_MAX, (size_t)PEER_ADDR_MAX);
    return kith__view_write(r, trust_add_txn, &c);
}

static int
trust_remove_txn(kith_replica *r, MDB_txn *txn, void *arg)
{
    uint64_t id = *(uint64_t *)arg;
    struct peer_rec rec;
    int rc;

    rc = rec_get(r, txn, id, true, &rec);
    if (rc == KITH_ENOTFOUND)
        return kith__fail(r, rc, "no peer %016llx", (unsigned long long)id);
    if (rc < 0)
        return rc;
    rec.flags &= ~(uint32_t)KITH__PEER_TRUSTED;
    rc = rec_put(r, txn, id, &rec);
    rec_free(&rec);
    return rc;
}

struct member_addr_ctx {
    uint64_t id;
    const char *addr;
};

static int
member_addr_txn(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct member_addr_ctx *c = arg;
    struct peer_rec rec;
    int rc = rec_get_or_member(r, txn, c->id, &rec);

    if (rc == KITH_ENOTFOUND)
        return kith__fail(r, KITH_EUNTRUSTED, "%016llx is not a member of this replica's group",
                          (unsigned long long)c->id);
    if (rc < 0)
        return rc;
    if (strcmp(rec.addr, c->addr) != 0) {
        if (set_str(rec.addr, sizeof(rec.addr), c->addr) < 0)
            rc = kith__fail(r, KITH_EINVAL, "peer address too long");
        else
            rc = rec_put(r, txn, c->id, &rec);
    }
    rec_free(&rec);
    return rc;
}

int
kith__peer_member_addr(kith_replica *r, const uint8_t pk[KITH_PUBKEY_BYTES], const char *addr)
{
    struct member_addr_ctx c = {.id = kith__id_from_pk(pk), .addr = addr};

    if (c.id == r->id || strlen(addr) > PEER_ADDR_MAX)
        return kith__fail(r, KITH_EINVAL, "not a peer's address");
    return kith__view_write(r, member_addr_txn, &c);
}

int
kith_trust_remove(kith_replica *r, uint64_t id)
{
    if (!r)
        return KITH_EINVAL;
    if (id == r->id)
        return kith__fail(r, KITH_EINVAL, "a replica always trusts itself");
    return kith__view_write(r, trust_remove_txn, &id);
}

bool
kith_is_trusted(kith_replica *r, const uint8_t pk[KITH_PUBKEY_BYTES])
{
    uint8_t have[KITH_PUBKEY_BYTES];
    MDB_txn *txn;
    bool ok;

    if (!r || !pk)
        return false;
    if (kith__view_begin(r, &txn) < 0)
        return false;
    ok = kith__trusted_key(r, txn, kith__id_from_pk(pk), have) == 0 &&
         memcmp(have, pk, KITH_PUBKEY_BYTES) == 0;
    kith__view_end(r, txn);
    return ok;
}

int
kith__trusted_key(kith_replica *r, MDB_txn *txn, uint64_t origin, uint8_t pk[KITH_PUBKEY_BYTES])
{
    uint64_t cutoff;
    int rc = kith__origin_key(r, txn, origin, pk, &cutoff);

    if (rc == 0 && cutoff != UINT64_MAX)
        return KITH_EUNTRUSTED; /* a removed member */
    return rc;
}

int
kith__peer_trusted(kith_replica *r, MDB_txn *txn, uint64_t origin, uint8_t pk[KITH_PUBKEY_BYTES])
{
    struct peer_rec rec;
    int rc = rec_get(r, txn, origin, false, &rec);

    if (rc < 0)
        return rc;
    if (!(rec.flags & KITH__PEER_TRUSTED) || (rec.flags & KITH__PEER_FORKED))
        return KITH_EUNTRUSTED;
    memcpy(pk, rec.pk, KITH_PUBKEY_BYTES);
    return 0;
}

int
kith__peer_forked(kith_replica *r, MDB_txn *txn, uint64_t origin)
{
    struct peer_rec rec;
    int rc = rec_get(r, txn, origin, false, &rec);

    if (rc == KITH_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    return (rec.flags & KITH__PEER_FORKED) != 0;
}

int
kith__peers_each_trusted(kith_replica *r, MDB_txn *txn,
                         int (*fn)(void *ctx, const uint8_t pk[KITH_PUBKEY_BYTES],
                                   const char *name),
                         void *ctx)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, mrc;

    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->peers, &cur));
    if (rc < 0)
        return rc;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct peer_rec rec;
        if (k.mv_size != 8 || rec_decode(&v, true, &rec) < 0) {
            rc = kith__fail(r, KITH_ECORRUPT, "a peer record is damaged");
            break;
        }
        if ((rec.flags & KITH__PEER_TRUSTED) && !(rec.flags & KITH__PEER_FORKED))
            rc = fn(ctx, rec.pk, rec.name);
        rec_free(&rec);
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = kith__mdb_err(mrc);
    return rc;
}

int
kith__peer_last_sync(kith_replica *r, MDB_txn *txn, uint64_t id, int64_t *ms)
{
    struct peer_rec rec;
    int rc = rec_get(r, txn, id, true, &rec);

    *ms = 0;
    if (rc == KITH_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    *ms = rec.last_sync_ms;
    rec_free(&rec);
    return 0;
}

int
kith__peer_key(kith_replica *r, MDB_txn *txn, uint64_t origin, uint8_t pk[KITH_PUBKEY_BYTES])
{
    struct peer_rec rec;
    int rc;

    if (origin == r->id) {
        memcpy(pk, r->pk, KITH_PUBKEY_BYTES);
        return 0;
    }
    rc = rec_get(r, txn, origin, false, &rec);
    if (rc == 0)
        memcpy(pk, rec.pk, KITH_PUBKEY_BYTES);
    if (rc == KITH_ENOTFOUND) {
        /* a member of the group (or a removed one) has no record until it connects */
        uint64_t cutoff;
        rc = kith__origin_key(r, txn, origin, pk, &cutoff);
        if (rc == KITH_EUNTRUSTED)
            rc = KITH_ENOTFOUND;
    }
    return rc;
}

int
kith__peer_mark_forked(kith_replica *r, MDB_txn *txn, uint64_t origin)
{
    struct peer_rec rec;
    int rc;

    if (origin == r->id)
        return KITH_EINVAL;
    rc = rec_get(r, txn, origin, true, &rec);
    if (rc < 0)
        return rc;
    rec.flags |= KITH__PEER_FORKED;
    rc = rec_put(r, txn, origin, &rec);
    rec_free(&rec);
    return rc;
}

int
kith__peer_learn(kith_replica *r, MDB_txn *txn, uint64_t id, const kith_dot *held, size_t n)
{
    struct peer_rec rec;
    bool raised = false;
    int rc;

    if (id == r->id || n == 0)
        return 0;
    rc = rec_get(r, txn, id, true, &rec);
    if (rc == KITH_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (kith__vv_get(&rec.acked, held[i].origin) >= held[i].seq)
            continue;
        rc = kith__vv_raise(&rec.acked, held[i].origin, held[i].seq);
        raised = true;
    }
    if (rc == 0 && raised)
        rc = rec_put(r, txn, id, &rec);
    rec_free(&rec);
    return rc;
}

/*
 * What a batch tells about its sender and its origins (NET-19): the sender held every run it
 * sent, up to the run's signed head, and an origin holds its own ops up to its head. Their
 * records learn it in the batch's own transaction, so a peer's pending count drops for ops it
 * made or sent whatever way they came (a bundle, a relay, a session with a third replica).
 */
int
kith__peer_learn_batch(kith_replica *r, MDB_txn *txn, const struct kith__batch *b)
{
    kith_dot *held;
    int rc;

    if (b->nheads == 0)
        return 0;
    held = malloc(b->nheads * sizeof *held);
    if (held == NULL)
        return KITH_ENOMEM;
    for (size_t i = 0; i < b->nheads; i++)
        held[i] = (kith_dot){b->heads[i].origin, b->heads[i].seq};
    rc = kith__peer_learn(r, txn, b->sender, held, b->nheads);
    for (size_t i = 0; i < b->nheads && rc == 0; i++)
        if (held[i].origin != b->sender)
            rc = kith__peer_learn(r, txn, held[i].origin, &held[i], 1);
    free(held);
    return rc;
}

/* ---- peer list and sync outcomes ------------------------------------------------------ */

void
kith_peers_free(kith_peer *peers, size_t n)
{
    if (!peers)
        return;
    for (size_t i = 0; i < n; i++)
        free(peers[i].acked.entries);
    free(peers);
}

int
kith_peers_get(kith_replica *r, kith_peer **out, size_t *n)
{
    kith_peer *list = NULL, *grown;
    size_t len = 0, cap = 0, nholds = 0;
    kith_hold *holds = NULL;
    kith_fork *forks = NULL;
    size_t nforks = 0;
    kith_vv ours = {0};
    MDB_cursor *cur;
    MDB_txn *txn;
    MDB_val k, v;
    int rc, mrc;

    if (!r || !out || !n)
        return KITH_EINVAL;
    *out = NULL;
    *n = 0;
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = kith__vv_read(r, txn, &ours);
    if (rc < 0)
        goto out_end;
    rc = kith__holds_read(r, txn, kith__replica_now_ms(r), &holds, &nholds);
    if (rc == 0)
        rc = kith__forks_read(r, txn, &forks, &nforks);
    if (rc < 0)
        goto out_vv;
    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->peers, &cur));
    if (rc < 0)
        goto out_vv;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct peer_rec rec;
        kith_peer *p;

        if (k.mv_size != 8) {
            rc = kith__fail(r, KITH_ECORRUPT, "peer key of %zu bytes", k.mv_size);
            goto out_cursor;
        }
        rc = rec_decode(&v, true, &rec);
        if (rc < 0) {
            if (rc == KITH_ECORRUPT)
                kith__fail(r, rc, "peer record %016llx is damaged",
                           (unsigned long long)kith__be64_get(k.mv_data));
            goto out_cursor;
        }
        if (len == cap) {
            cap = cap ? cap * 2 : 8;
            grown = realloc(list, cap * sizeof(*list));
            if (!grown) {
                rec_free(&rec);
                rc = KITH_ENOMEM;
                goto out_cursor;
            }
            list = grown;
        }
        p = &list[len++];
        memset(p, 0, sizeof(*p));
        p->id = kith__be64_get(k.mv_data);
        memcpy(p->pubkey, rec.pk, KITH_PUBKEY_BYTES);
        memcpy(p->name, rec.name, sizeof(p->name));
        memcpy(p->addr, rec.addr, sizeof(p->addr));
        memcpy(p->last_error, rec.error, sizeof(p->last_error));
        p->trusted = (rec.flags & KITH__PEER_TRUSTED) != 0;
        p->forked = (rec.flags & KITH__PEER_FORKED) != 0;
        p->acked = rec.acked; /* ownership moves to the list */
        p->cursor = rec.cursor;
        p->last_sync_ms = rec.last_sync_ms;
        p->failures = rec.failures;
        p->failing = (rec.flags & KITH__PEER_FAILING) != 0;
        p->schema_version = rec.schema_version;
        memcpy(p->schema_digest, rec.schema_digest, KITH_HASH_BYTES);
        p->clock_offset_ms = rec.clock_offset_ms;
        p->clock_checked_ms = rec.clock_checked_ms;
        for (size_t i = 0; i < nforks; i++)
            if (forks[i].origin == p->id)
                p->fork_seq = forks[i].seq;
        /* a peer holds every op it made (NET-19), however they reached us */
        rc = kith__vv_raise(&p->acked, p->id, kith__vv_get(&ours, p->id));
        if (rc < 0)
            goto out_cursor;
        p->pending_ops = kith__vv_missing(&ours, &p->acked);
        for (size_t i = 0; i < nholds; i++) {
            if (holds[i].origin == p->id) {
                p->held_ops = holds[i].ops;
                p->held_ahead_ms = holds[i].ahead_ms;
            }
        }
    }
    if (mrc != MDB_NOTFOUND) {
        rc = kith__mdb_err(mrc);
        goto out_cursor;
    }
    *out = list;
    *n = len;
    list = NULL;
    len = 0;
    rc = 0;
out_cursor:
    mdb_cursor_close(cur);
    kith_peers_free(list, len);
out_vv:
    free(forks);
    kith_holds_free(holds, nholds);
    kith_vv_free(&ours);
out_end:
    kith__view_end(r, txn);
    return rc;
}

struct record_ctx {
    uint64_t id;
    const kith_vv *acked;
    uint64_t cursor;
    const char *error;
    int64_t now_ms;
    uint32_t failing_after; /* failures in a row that make the peer failing (>= 1) */
    bool cancelled;         /* a cancel: the acked vector and the error, failures unchanged */
};

static int
peer_record_txn(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct record_ctx *c = arg;
    struct peer_rec rec;
    int rc;

    rc = rec_get_or_member(r, txn, c->id, &rec);
    if (rc == KITH_ENOTFOUND)
        return kith__fail(r, rc, "no peer %016llx", (unsigned long long)c->id);
    if (rc < 0)
        return rc;
    if (c->error) {
        size_t n = strlen(c->error);

        if (n > PEER_ERROR_MAX)
            n = PEER_ERROR_MAX; /* a long message is cut, never refused */
        memcpy(rec.error, c->error, n);
        rec.error[n] = '\0';
        if (!c->cancelled && rec.failures < UINT32_MAX)
            rec.failures++;
        if (!c->cancelled && rec.failures >= c->failing_after)
            rec.flags |= KITH__PEER_FAILING;
    }
    if (c->cancelled) {
        rec.cursor = c->cursor;
    } else if (c->error == NULL) {
        rec.cursor = c->cursor;
        rec.last_sync_ms = c->now_ms;
        rec.failures = 0;
        rec.error[0] = '\0';
        rec.flags &= ~(uint32_t)KITH__PEER_FAILING;
    }
    if (c->acked && (c->cancelled || c->error == NULL)) {
        kith_vv copy = {0};

        rc = kith__vv_copy(&copy, c->acked);
        if (rc < 0)
            goto out_rec;
        rec_free(&rec);
        rec.acked = copy;
    }
    rc = rec_put(r, txn, c->id, &rec);
out_rec:
    rec_free(&rec);
    return rc;
}

int
kith__peer_record_cancelled(kith_replica *r, uint64_t id, const kith_vv *acked, uint64_t cursor,
                            const char *why)
{
    struct record_ctx c = {.id = id,
                           .acked = acked,
                           .cursor = cursor,
                           .error = why != NULL ? why : kith_strerror(KITH_ECANCELED),
                           .failing_after = KITH_FAILING_AFTER,
                           .cancelled = true};

    c.now_ms = kith__now_ms();
    return kith__view_write(r, peer_record_txn, &c);
}

int
kith_peer_record(kith_replica *r, uint64_t id, const kith_vv *acked, uint64_t cursor,
                 const char *error)
{
    return kith_peer_record_ex(r, id, acked, cursor, error, 0);
}

int
kith_peer_record_ex(kith_replica *r, uint64_t id, const kith_vv *acked, uint64_t cursor,
                    const char *error, uint32_t failing_after)
{
    struct record_ctx c = {.id = id,
                           .acked = acked,
                           .cursor = cursor,
                           .error = error,
                           .failing_after = failing_after ? failing_after : KITH_FAILING_AFTER};

    if (!r)
        return KITH_EINVAL;
    if (acked) {
        for (size_t i = 0; i < acked->len; i++)
            if (acked->entries[i].seq == 0 ||
                (i > 0 && acked->entries[i].origin <= acked->entries[i - 1].origin))
                return kith__fail(r, KITH_EINVAL, "acknowledged vector is not sorted");
    }
    c.now_ms = kith__now_ms();
    return kith__view_write(r, peer_record_txn, &c);
}

/* ---- what a peer's handshake told ----------------------------------------------------- */

struct schema_ctx {
    uint64_t id;
    uint64_t version;
    const uint8_t *digest;
    bool changed; /* the record said something else, and was written */
};

/* Does the record of c->id say what c says? 1 yes, 0 no, or an error. */
static int
schema_same(kith_replica *r, MDB_txn *txn, const struct schema_ctx *c)
{
    struct peer_rec rec;
    int rc = rec_get_or_member(r, txn, c->id, &rec);

    if (rc == KITH_ENOTFOUND)
        return kith__fail(r, rc, "no peer %016llx", (unsigned long long)c->id);
    if (rc < 0)
        return rc;
    rc = rec.schema_version == c->version &&
         memcmp(rec.schema_digest, c->digest, KITH_HASH_BYTES) == 0;
    rec_free(&rec);
    return rc;
}

static int
schema_txn(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct schema_ctx *c = arg;
    struct peer_rec rec;
    int rc;

    c->changed = false;
    rc = rec_get_or_member(r, txn, c->id, &rec);
    if (rc == KITH_ENOTFOUND)
        return kith__fail(r, rc, "no peer %016llx", (unsigned long long)c->id);
    if (rc < 0)
        return rc;
    if (rec.schema_version != c->version ||
        memcmp(rec.schema_digest, c->digest, KITH_HASH_BYTES) != 0) {
        rec.schema_version = c->version;
        memcpy(rec.schema_digest, c->digest, KITH_HASH_BYTES);
        rc = rec_put(r, txn, c->id, &rec);
        c->changed = rc == 0;
    }
    rec_free(&rec);
    return rc;
}

/*
 * A peer says what it says at every handshake, and mostly the same as last time: the record
 * is compared in a read transaction first, so that a session's opening takes the writer lock
 * (and the disk) only when the peer's schema changed, not at every reconnect.
 */
int
kith__peer_record_schema(kith_replica *r, uint64_t id, uint64_t version,
                         const uint8_t digest[KITH_HASH_BYTES])
{
    struct schema_ctx c = {.id = id, .version = version, .digest = digest};
    MDB_txn *txn;
    int rc;

    if (!r || !digest)
        return KITH_EINVAL;
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = schema_same(r, txn, &c);
    kith__view_end(r, txn);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    rc = kith__view_write(r, schema_txn, &c);
    if (rc < 0)
        return rc;
    return c.changed ? 1 : 0;
}

/* ---- what a peer's clock said ---------------------------------------------------------- */

struct clock_ctx {
    uint64_t id;
    int64_t offset_ms, now_ms;
    bool crossed; /* the offset went beyond the tolerance from within it, or from unknown */
};

static int64_t
abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

/* Does the record need the new figure? 1 yes, 0 no, or an error. */
static int
clock_due(kith_replica *r, MDB_txn *txn, struct clock_ctx *c, bool write)
{
    struct peer_rec rec;
    int rc = rec_get_or_member(r, txn, c->id, &rec);

    if (rc == KITH_ENOTFOUND)
        return kith__fail(r, rc, "no peer %016llx", (unsigned long long)c->id);
    if (rc < 0)
        return rc;
    bool due = rec.clock_checked_ms == 0 ||
               abs64(rec.clock_offset_ms - c->offset_ms) > CLOCK_MOVED_MS ||
               c->now_ms - rec.clock_checked_ms > CLOCK_STALE_MS;
    c->crossed =
        abs64(c->offset_ms) > KITH_CLOCK_TOLERANCE_MS &&
        (rec.clock_checked_ms == 0 || abs64(rec.clock_offset_ms) <= KITH_CLOCK_TOLERANCE_MS);
    due |= c->crossed;
    if (due && write) {
        rec.clock_offset_ms = c->offset_ms;
        rec.clock_checked_ms = c->now_ms;
        rc = rec_put(r, txn, c->id, &rec);
    }
    rec_free(&rec);
    return rc < 0 ? rc : due;
}

static int
clock_txn(kith_replica *r, MDB_txn *txn, void *arg)
{
    int rc = clock_due(r, txn, arg, true);
    return rc < 0 ? rc : 0;
}

/* Read first, as kith__peer_record_schema does: most handshakes find the figure recorded. */
int
kith__peer_record_clock(kith_replica *r, uint64_t id, int64_t offset_ms, int64_t now_ms)
{
    struct clock_ctx c = {.id = id, .offset_ms = offset_ms, .now_ms = now_ms};
    MDB_txn *txn;
    int rc;

    if (!r)
        return KITH_EINVAL;
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = clock_due(r, txn, &c, false);
    kith__view_end(r, txn);
    if (rc <= 0)
        return rc;
    rc = kith__view_write(r, clock_txn, &c);
    if (rc < 0)
        return rc;
    return c.crossed ? 1 : 0;
}
