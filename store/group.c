/*
 * group.c — the replica's device group in the store: its records in the `groups` database,
 * the fold of them cached on the handle, and what the rest of the store asks of it (who is
 * admitted, who was removed and from which seq on, which records to send and to take).
 * spec/groups.md GRP-13 .. GRP-20, spec/storage.md "groups"; the records and the fold
 * themselves are core/group.h.
 *
 * The fold is a pure function of the records held, recomputed whole (tens of records), so
 * the store keeps one per handle and asks only whether it is still current. Every change to
 * the `groups` database draws a new 16-byte stamp into meta "group" beside the group id; a
 * cached fold is current exactly when the stamp it was built at is the one the transaction
 * reads. One meta lookup per question, then: a batch apply that brings no record never
 * refolds, and records written by another process (a daemon beside the CLI) or by a write
 * transaction that was aborted after the fold was built (its stamp is never seen again) are
 * noticed. The cache is shared by the handle's threads under group_lock.
 */
#include "group.h"
#include "store.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define META_GROUP "group"
#define META_GROUP_BYTES (KITH__GROUP_ID_BYTES + 16)

/* One key the group knows: a live member (cutoff UINT64_MAX) or a removed one. */
struct member_ix {
    uint64_t id;
    uint8_t pk[KITH_PUBKEY_BYTES];
    uint64_t cutoff;
};

struct kith__group_cache {
    uint8_t meta[META_GROUP_BYTES]; /* gid | stamp it was built at */
    struct kith__group *fold;
    struct member_ix *ix; /* by id, then key */
    size_t nix;
    uint8_t digest[KITH_HASH_BYTES];
};

/* ---- the cache -------------------------------------------------------------------------- */

static void
cache_free(struct kith__group_cache *c)
{
    if (c == NULL)
        return;
    kith__group_free(c->fold);
    free(c->ix);
    free(c);
}

void
kith__group_release(kith_replica *r)
{
    cache_free(r->group);
    r->group = NULL;
}

/* meta "group": 1 with its 32 bytes in m, 0 when absent, or an error. */
static int
meta_read(kith_replica *r, MDB_txn *txn, uint8_t m[META_GROUP_BYTES])
{
    MDB_val v;
    int rc = kith__meta_get(r, txn, META_GROUP, &v);

    if (rc == KITH_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    if (v.mv_size != META_GROUP_BYTES)
        return kith__fail(r, KITH_ECORRUPT, "meta group: %zu bytes", v.mv_size);
    memcpy(m, v.mv_data, META_GROUP_BYTES);
    return 1;
}

/* The group is `gid` and its records changed: a new stamp. */
static int
meta_write(kith_replica *r, MDB_txn *txn, const uint8_t gid[KITH__GROUP_ID_BYTES])
{
    uint8_t m[META_GROUP_BYTES];

    memcpy(m, gid, KITH__GROUP_ID_BYTES);
    randombytes_buf(m + KITH__GROUP_ID_BYTES, META_GROUP_BYTES - KITH__GROUP_ID_BYTES);
    return kith__meta_put(r, txn, META_GROUP, m, sizeof m);
}

static int
ix_cmp(const void *a, const void *b)
{
    const struct member_ix *x = a, *y = b;

    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return memcmp(x->pk, y->pk, KITH_PUBKEY_BYTES);
}

/* Build a fold of group gid from every record in the `groups` database. */
static int
fold_from_db(kith_replica *r, MDB_txn *txn, const uint8_t gid[KITH__GROUP_ID_BYTES],
             struct kith__group **out)
{
    struct kith__group *g;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = kith__group_new(gid, &g), mrc;

    *out = NULL;
    if (rc < 0)
        return rc;
    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->groups, &cur));
    if (rc < 0)
        goto out_free;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rc >= 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        rc = kith__group_add(g, v.mv_data, v.mv_size);
    mdb_cursor_close(cur);
    if (rc >= 0 && mrc != MDB_NOTFOUND)
        rc = kith__mdb_err(mrc);
    if (rc >= 0)
        rc = kith__group_fold(g);
    if (rc < 0) {
        rc = kith__fail(r, rc, "groups: the records cannot be read: %s", kith_strerror(rc));
        goto out_free;
    }
    *out = g;
    return 0;
out_free:
    kith__group_free(g);
    return rc;
}

static int
cache_build(kith_replica *r, MDB_txn *txn, const uint8_t m[META_GROUP_BYTES],
            struct kith__group_cache **out)
{
    struct kith__group_cache *c = calloc(1, sizeof *c);
    const struct kith__group_member *mem;
    const struct kith__group_removed *rem;
    size_t nm, nr;
    int rc;

    if (c == NULL)
        return KITH_ENOMEM;
    memcpy(c->meta, m, META_GROUP_BYTES);
    rc = fold_from_db(r, txn, m, &c->fold);
    if (rc < 0)
        goto out_free;
    mem = kith__group_members(c->fold, &nm);
    rem = kith__group_removed(c->fold, &nr);
    c->ix = calloc(nm + nr + 1, sizeof *c->ix);
    if (c->ix == NULL) {
        rc = KITH_ENOMEM;
        goto out_free;
    }
    for (size_t i = 0; i < nm; i++, c->nix++) {
        c->ix[c->nix].id = kith__id_from_pk(mem[i].pk);
        memcpy(c->ix[c->nix].pk, mem[i].pk, KITH_PUBKEY_BYTES);
        c->ix[c->nix].cutoff = UINT64_MAX;
    }
    for (size_t i = 0; i < nr; i++, c->nix++) {
        c->ix[c->nix].id = kith__id_from_pk(rem[i].pk);
        memcpy(c->ix[c->nix].pk, rem[i].pk, KITH_PUBKEY_BYTES);
        c->ix[c->nix].cutoff = rem[i].cutoff;
    }
    qsort(c->ix, c->nix, sizeof *c->ix, ix_cmp);
    kith__group_digest(c->fold, c->digest);
    *out = c;
    return 0;
out_free:
    cache_free(c);
    return rc;
}

/*
 * Take group_lock and find the fold current in `txn`: *out is NULL when the replica is in no
 * group. The lock is held on return, also on error; fold_put releases it. *out lives until
 * then.
 */
static int
fold_get(kith_replica *r, MDB_txn *txn, struct kith__group_cache **out)
{
    uint8_t m[META_GROUP_BYTES];
    int rc;

    pthread_mutex_lock(&r->group_lock);
    *out = NULL;
    if (r->groups == KITH__DBI_FREE)
        return 0; /* a replica made before groups, read-only */
    rc = meta_read(r, txn, m);
    if (rc <= 0)
        return rc;
    if (r->group == NULL || sodium_memcmp(r->group->meta, m, META_GROUP_BYTES) != 0) {
        struct kith__group_cache *c;
        rc = cache_build(r, txn, m, &c);
        if (rc < 0)
            return rc;
        cache_free(r->group);
        r->group = c;
        r->group_folds++;
    }
    *out = r->group;
    return 0;
}

static void
fold_put(kith_replica *r)
{
    pthread_mutex_unlock(&r->group_lock);
}

static const struct member_ix *
ix_find(const struct kith__group_cache *c, uint64_t id)
{
    size_t lo = 0, hi = c->nix;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->ix[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->nix && c->ix[lo].id == id ? &c->ix[lo] : NULL;
}

/* ---- records in the database ---------------------------------------------------------- */

/* Store one record under its hash: 1 when new, 0 when held already, or an error. */
static int
rec_put(kith_replica *r, MDB_txn *txn, const uint8_t *p, size_t len)
{
    uint8_t h[KITH_HASH_BYTES];
    MDB_val k = {KITH_HASH_BYTES, h}, v = {len, (void *)p};
    int rc;

    kith__group_hash(p, len, h);
    rc = kith__mdb_put(txn, r->groups, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return 0;
    if (rc != 0)
        return rc == MDB_MAP_FULL ? rc : kith__mdb_err(rc);
    return 1;
}

/*
 * The group a record names without decoding it whole (a critical kind this kith does not
 * know cannot be decoded, yet must be kept when it is ours, GRP-3): the FOUND of `gid` and
 * records whose group field is `gid` are ours (1), every other well-formed head is another
 * group's (0), and bytes that do not start as a record are left to the fold to refuse (1).
 */
static int
rec_ours(const uint8_t *p, size_t len, const uint8_t gid[KITH__GROUP_ID_BYTES])
{
    size_t at;

    if (len < 4)
        return 1;
    if (p[0] >= 0x90 && p[0] <= 0x9f)
        at = 1;
    else if (p[0] == 0xdc)
        at = 3;
    else
        return 1;
    if (len < at + 1 + 2 + KITH__GROUP_ID_BYTES || p[at] > 0x7f)
        return 1;
    if (p[at] == KITH__GROUP_FOUND) {
        uint8_t h[KITH_HASH_BYTES];
        kith__group_hash(p, len, h);
        return memcmp(h, gid, KITH__GROUP_ID_BYTES) == 0;
    }
    if (p[at + 1] != 0xc4 || p[at + 2] != KITH__GROUP_ID_BYTES)
        return 1;
    return memcmp(p + at + 3, gid, KITH__GROUP_ID_BYTES) == 0;
}

/* A copy of fold c's records in a new fold of the same group (not folded yet). */
static int
fold_copy(const struct kith__group_cache *c, const uint8_t gid[KITH__GROUP_ID_BYTES],
          struct kith__group **out)
{
    struct kith__group *g;
    int rc = kith__group_new(gid, &g);

    *out = NULL;
    if (rc < 0)
        return rc;
    for (size_t i = 0; c != NULL && i < kith__group_count(c->fold) && rc >= 0; i++) {
        const struct kith__group_entry *e = kith__group_entry(c->fold, i);
        rc = kith__group_add(g, e->bytes, e->len);
    }
    if (rc < 0) {
        kith__group_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

/*
 * Add the records of group gid among recs to g, fold, and judge the new ones (GRP-18): the
 * first that is invalid fails the call, naming it. `fresh` (n entries) gets, for each record,
 * whether it is new, ours and to be stored. 0 or an error.
 */
static int
judge(kith_replica *r, struct kith__group *g, const uint8_t gid[KITH__GROUP_ID_BYTES],
      const uint8_t *const *recs, const size_t *lens, size_t n, bool *fresh)
{
    char hex[2 * KITH_HASH_BYTES + 1];
    int rc;

    for (size_t i = 0; i < n; i++) {
        fresh[i] = false;
        if (recs[i] == NULL || lens[i] == 0)
            return kith__fail(r, KITH_EMALFORMED, "group record %zu is empty", i);
        if (!rec_ours(recs[i], lens[i], gid))
            continue;
        rc = kith__group_add(g, recs[i], lens[i]);
        if (rc == KITH_ETOOBIG)
            return kith__fail(r, KITH_ETOOBIG,
                              "group record %zu: over 4096 bytes, or more than %u records", i,
                              KITH__GROUP_MAX_RECORDS);
        if (rc < 0)
            return rc;
        fresh[i] = rc == 0;
    }
    rc = kith__group_fold(g);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        uint8_t h[KITH_HASH_BYTES];
        const struct kith__group_entry *e;
        if (!fresh[i])
            continue;
        kith__group_hash(recs[i], lens[i], h);
        e = kith__group_find(g, h);
        if (e == NULL)
            return KITH_ECORRUPT; /* it was just added */
        sodium_bin2hex(hex, sizeof hex, h, 8);
        switch (e->status) {
        case KITH__GROUP_LIVE:
        case KITH__GROUP_VOID:
        case KITH__GROUP_WAITING:
        case KITH__GROUP_UNKNOWN:
            break;
        case KITH__GROUP_FOREIGN:
            fresh[i] = false;
            break;
        case KITH__GROUP_MALFORMED:
            return kith__fail(r, KITH_EMALFORMED, "group record %s: malformed: %s", hex, e->why);
        case KITH__GROUP_BADSIG:
            return kith__fail(r, KITH_EBADSIG, "group record %s: %s", hex, e->why);
        case KITH__GROUP_BADPARENT:
        case KITH__GROUP_NOTMEMBER:
            return kith__fail(r, KITH_EUNTRUSTED, "group record %s: refused (%s): %s", hex,
                              kith__group_status_name(e->status), e->why);
        }
    }
    return 0;
}

/*
 * Drop from the database every record held that the fold `g` now finds invalid: a record
 * kept while it waited whose parents, now here, show it signed by a non-member (or naming an
 * invalid parent). Its status cannot change again (GRP-5), and a peer would refuse every
 * record sent with it (GRP-18). Returns how many were dropped, or an error.
 */
static int
purge_invalid(kith_replica *r, MDB_txn *txn, const struct kith__group *g)
{
    int dropped = 0;

    for (size_t i = 0; i < kith__group_count(g); i++) {
        const struct kith__group_entry *e = kith__group_entry(g, i);
        MDB_val k = {KITH_HASH_BYTES, (void *)e->hash};
        int rc;
        if (kith__group_status_valid(e->status) || e->status == KITH__GROUP_WAITING ||
            e->status == KITH__GROUP_UNKNOWN)
            continue;
        rc = kith__mdb_del(txn, r->groups, &k, NULL);
        if (rc == MDB_NOTFOUND)
            continue; /* one of the call's own, refused before anything was stored */
        if (rc != 0)
            return rc == MDB_MAP_FULL ? rc : kith__mdb_err(rc);
        dropped++;
    }
    return dropped;
}

/* Store the records `fresh` marks, count them in *added, and drop those held that g finds
 * invalid now. Then a new stamp when anything changed (or force_meta). */
static int
store_fresh(kith_replica *r, MDB_txn *txn, const struct kith__group *g,
            const uint8_t gid[KITH__GROUP_ID_BYTES], const uint8_t *const *recs, const size_t *lens,
            size_t n, const bool *fresh, size_t *added, bool force_meta)
{
    size_t count = 0;
    int rc;

    for (size_t i = 0; i < n; i++) {
        if (!fresh[i])
            continue;
        rc = rec_put(r, txn, recs[i], lens[i]);
        if (rc < 0 || rc == MDB_MAP_FULL)
            return rc;
        count += (size_t)rc;
    }
    if (added != NULL)
        *added = count;
    rc = purge_invalid(r, txn, g);
    if (rc < 0 || rc == MDB_MAP_FULL)
        return rc;
    if (count > 0 || rc > 0 || force_meta)
        return meta_write(r, txn, gid);
    return 0;
}

/* ---- the internal contract (store.h) ------------------------------------------------- */

int
kith__group_summary(kith_replica *r, MDB_txn *txn, uint8_t gid[16], uint8_t digest[32])
{
    struct kith__group_cache *c;
    int rc = fold_get(r, txn, &c);

    memset(gid, 0, KITH__GROUP_ID_BYTES);
    memset(digest, 0, KITH_HASH_BYTES);
    if (rc == 0 && c != NULL) {
        memcpy(gid, c->meta, KITH__GROUP_ID_BYTES);
        memcpy(digest, c->digest, KITH_HASH_BYTES);
        rc = 1;
    }
    fold_put(r);
    return rc;
}

int
kith__origin_key(kith_replica *r, MDB_txn *txn, uint64_t origin, uint8_t pk[KITH_PUBKEY_BYTES],
                 uint64_t *cutoff)
{
    struct kith__group_cache *c;
    bool found = false;
    int rc;

    *cutoff = UINT64_MAX;
    if (origin == r->id) {
        memcpy(pk, r->pk, KITH_PUBKEY_BYTES);
        return 0;
    }
    rc = fold_get(r, txn, &c);
    if (rc == 0 && c != NULL) {
        const struct member_ix *m = ix_find(c, origin);
        if (m != NULL) {
            memcpy(pk, m->pk, KITH_PUBKEY_BYTES);
            *cutoff = m->cutoff;
            found = true;
        }
    }
    fold_put(r);
    if (rc < 0)
        return rc;
    if (found && *cutoff != UINT64_MAX)
        return 0; /* removed: taken up to its cut-off, whatever trust says (GRP-14) */
    if (found) {
        /* a member whose key was found forked is refused as a forked peer is */
        rc = kith__peer_forked(r, txn, origin);
        return rc < 0 ? rc : rc == 1 ? KITH_EUNTRUSTED : 0;
    }
    rc = kith__peer_trusted(r, txn, origin, pk);
    return rc == KITH_ENOTFOUND ? KITH_EUNTRUSTED : rc;
}

int
kith__admits_key(kith_replica *r, MDB_txn *txn, const uint8_t pk[32])
{
    uint8_t have[KITH_PUBKEY_BYTES];
    uint64_t cutoff;
    int rc;

    if (memcmp(pk, r->pk, KITH_PUBKEY_BYTES) == 0)
        return 1;
    rc = kith__origin_key(r, txn, kith__id_from_pk(pk), have, &cutoff);
    if (rc == KITH_EUNTRUSTED)
        return 0;
    if (rc < 0)
        return rc;
    return cutoff == UINT64_MAX && sodium_memcmp(have, pk, KITH_PUBKEY_BYTES) == 0;
}

int
kith__group_cutoff_of(kith_replica *r, MDB_txn *txn, const uint8_t pk[32], uint64_t *cutoff)
{
    struct kith__group_cache *c;
    int rc = fold_get(r, txn, &c);

    if (rc == 0 && c != NULL)
        rc = kith__group_cutoff(c->fold, pk, cutoff) ? 1 : 0;
    fold_put(r);
    return rc;
}

int
kith__group_cutoffs(kith_replica *r, MDB_txn *txn, struct kith__aside **out, size_t *n)
{
    struct kith__group_cache *c;
    struct kith__aside *list = NULL;
    size_t k = 0;
    int rc = fold_get(r, txn, &c);

    *out = NULL;
    *n = 0;
    for (size_t i = 0; rc == 0 && c != NULL && i < c->nix; i++) {
        if (c->ix[i].cutoff == UINT64_MAX)
            continue;
        if (list == NULL && (list = calloc(c->nix, sizeof *list)) == NULL) {
            rc = KITH_ENOMEM;
            break;
        }
        list[k].origin = c->ix[i].id;
        list[k].after = c->ix[i].cutoff;
        k++;
    }
    fold_put(r);
    if (rc < 0 || k == 0) {
        free(list);
        return rc < 0 ? rc : 0;
    }
    *out = list;
    *n = k;
    return 0;
}

int
kith__group_cutheads_keep(kith_replica *r, MDB_txn *txn, uint64_t origin, uint64_t upto)
{
    struct kith__group_cache *c;
    int rc = fold_get(r, txn, &c);

    for (size_t i = 0; rc == 0 && c != NULL && i < kith__group_count(c->fold); i++) {
        const struct kith__group_entry *e = kith__group_entry(c->fold, i);
        struct kith__group_rec rec;
        uint8_t chain[KITH_HASH_BYTES], kb[16];
        MDB_val k = {sizeof kb, kb}, v = {KITH_SIG_BYTES, rec.head_sig};
        if (!kith__group_status_valid(e->status) ||
            kith__group_decode(e->bytes, e->len, &rec, NULL, 0) < 0 ||
            rec.kind != KITH__GROUP_CUTHEAD || rec.cutoff > upto ||
            kith__id_from_pk(rec.member) != origin)
            continue; /* the fold checked the head signature when it took the record */
        rc = kith__chain_at(r, txn, origin, rec.cutoff, chain);
        if (rc == KITH_ENOTFOUND || (rc == 0 && sodium_memcmp(chain, rec.chain, sizeof chain))) {
            rc = 0; /* no commit ends there, or another history: not this head */
            continue;
        }
        if (rc < 0)
            break;
        kith__be64_put(kb, origin);
        kith__be64_put(kb + 8, rec.cutoff);
        rc = kith__mdb_put(txn, r->sigs, &k, &v, 0);
        if (rc != 0 && rc != MDB_MAP_FULL)
            rc = kith__mdb_err(rc);
    }
    fold_put(r);
    return rc;
}

int
kith__group_absorb(kith_replica *r, MDB_txn *txn, const uint8_t *const *recs, const size_t *lens,
                   size_t n, size_t *added)
{
    struct kith__group_cache *c;
    struct kith__group *g = NULL;
    uint8_t gid[KITH__GROUP_ID_BYTES];
    bool *fresh;
    int rc;

    if (added != NULL)
        *added = 0;
    if (n == 0)
        return 0;
    if (recs == NULL || lens == NULL)
        return KITH_EINVAL;
    rc = fold_get(r, txn, &c);
    if (rc == 0 && c != NULL) {
        memcpy(gid, c->meta, KITH__GROUP_ID_BYTES);
        rc = fold_copy(c, gid, &g);
    }
    fold_put(r);
    if (rc < 0 || g == NULL)
        return rc; /* in no group: nothing is ours */
    fresh = calloc(n, sizeof *fresh);
    if (fresh == NULL) {
        rc = KITH_ENOMEM;
        goto out_free;
    }
    rc = judge(r, g, gid, recs, lens, n, fresh);
    if (rc == 0)
        rc = store_fresh(r, txn, g, gid, recs, lens, n, fresh, added, false);
    free(fresh);
out_free:
    kith__group_free(g);
    return rc;
}

int
kith__group_collect(kith_replica *r, MDB_txn *txn,
                    int (*emit)(void *ctx, const uint8_t *rec, size_t len), void *ctx)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, mrc;

    if (r->groups == KITH__DBI_FREE)
        return 0;
    rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->groups, &cur));
    if (rc < 0)
        return rc;
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0 && rc >= 0;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        rc = emit(ctx, v.mv_data, v.mv_size);
    mdb_cursor_close(cur);
    if (rc >= 0 && mrc != MDB_NOTFOUND)
        rc = kith__mdb_err(mrc);
    return rc < 0 ? rc : 0;
}

/* ---- signing records ------------------------------------------------------------------ */

/* Sign rec (author, time and parents filled here from r and c's heads), store it, and draw
 * a new stamp. `c` may be NULL for a FOUND. Assumes the caller holds group_lock when c is
 * not NULL; out gets the record's hash (may be NULL). */
static int
sign_store(kith_replica *r, MDB_txn *txn, struct kith__group_rec *rec,
           const struct kith__group_cache *c, uint8_t out[KITH_HASH_BYTES])
{
    uint8_t parents[KITH__GROUP_MAX_PARENTS * KITH_HASH_BYTES], h[KITH_HASH_BYTES];
    struct kith__wbuf buf = {0};
    int64_t now = kith__replica_now_ms(r);
    int rc;

    if (!r->has_sk)
        return kith__fail(r, -EACCES, "%s/key: cannot be read, so no group record can be signed",
                          r->path);
    memcpy(rec->author, r->pk, KITH_PUBKEY_BYTES);
    rec->time_ms = now < 0 ? 0 : (uint64_t)now > KITH__GROUP_MAX_TIME ? 0 : (uint64_t)now;
    if (rec->kind != KITH__GROUP_CUTHEAD)
        rec->nparents = 0;
    rec->parent_stride = KITH_HASH_BYTES;
    if (c != NULL) {
        size_t nh;
        const uint8_t(*heads)[KITH_HASH_BYTES] = kith__group_heads(c->fold, &nh);
        if (nh > KITH__GROUP_MAX_PARENTS)
            nh = KITH__GROUP_MAX_PARENTS; /* the lowest 64; a later record names the rest */
        memcpy(parents, heads, nh * KITH_HASH_BYTES);
        if (rec->kind != KITH__GROUP_CUTHEAD || rec->nparents == 0) {
            rec->nparents = (uint32_t)nh;
            rec->parents = parents;
        } /* else a CUTHEAD names the REMOVE it goes with (GRP-24) */
    }
    rc = kith__group_build(rec, r->sk, &buf, h);
    if (rc < 0) {
        kith__wbuf_free(&buf);
        return kith__fail(r, rc, "cannot build the group record: %s", kith_strerror(rc));
    }
    rc = rec_put(r, txn, buf.data, buf.len);
    kith__wbuf_free(&buf);
    if (rc < 0 || rc == MDB_MAP_FULL)
        return rc;
    if (out != NULL)
        memcpy(out, h, KITH_HASH_BYTES);
    return 0;
}

/* A name for a record: 1..63 bytes of UTF-8 without NUL. */
static bool
name_ok(const char *s, size_t len)
{
    return s != NULL && len >= 1 && len <= KITH__GROUP_MAX_NAME && memchr(s, 0, len) == NULL &&
           kith__utf8_valid(s, len);
}

int
kith__group_add_member(kith_replica *r, MDB_txn *txn, const uint8_t pk[32], const char *name,
                       size_t name_len)
{
    struct kith__group_cache *c;
    struct kith__group_rec rec;
    uint8_t gid[KITH__GROUP_ID_BYTES];
    uint64_t cutoff;
    int rc;

    if (!name_ok(name, name_len))
        return kith__fail(r, KITH_EINVAL, "a device name is 1 to 63 bytes of UTF-8 without NUL");
    rc = fold_get(r, txn, &c);
    if (rc < 0)
        goto out_put;
    if (c == NULL) {
        rc = kith__fail(r, KITH_EINVAL, "this replica is in no group (kith_group_create)");
        goto out_put;
    }
    if (!kith__group_is_member(c->fold, r->pk)) {
        rc = kith__fail(r, KITH_EINVAL,
                        "this replica is not a member of its group any more: it cannot add one");
        goto out_put;
    }
    if (kith__group_cutoff(c->fold, pk, &cutoff)) {
        rc = kith__fail(r, KITH_EEXIST,
                        "that key was removed from the group, and a removed key never returns "
                        "(GRP-8): the device joins again under a new key");
        goto out_put;
    }
    if (kith__group_is_member(c->fold, pk)) {
        rc = kith__fail(r, KITH_EEXIST, "that key is a member of the group already");
        goto out_put;
    }
    memset(&rec, 0, sizeof rec);
    rec.kind = KITH__GROUP_ADD;
    memcpy(gid, c->meta, KITH__GROUP_ID_BYTES);
    memcpy(rec.group, gid, KITH__GROUP_ID_BYTES);
    memcpy(rec.member, pk, KITH_PUBKEY_BYTES);
    rec.name = name;
    rec.name_len = (uint32_t)name_len;
    rc = sign_store(r, txn, &rec, c, NULL);
    if (rc == 0)
        rc = meta_write(r, txn, gid);
out_put:
    fold_put(r);
    return rc;
}

/* Empty the `groups` database (leaving a group of this replica alone). */
static int
records_drop(kith_replica *r, MDB_txn *txn)
{
    int rc = mdb_drop(txn, r->groups, 0);

    return rc == 0 ? 0 : rc == MDB_MAP_FULL ? rc : kith__mdb_err(rc);
}

int
kith__group_adopt(kith_replica *r, MDB_txn *txn, const uint8_t gid[16], const uint8_t *const *recs,
                  const size_t *lens, size_t n)
{
    struct kith__group_cache *c;
    struct kith__group *g = NULL;
    bool drop = false, *fresh = NULL;
    char hex[2 * KITH__GROUP_ID_BYTES + 1];
    int rc;

    if (gid == NULL || (n > 0 && (recs == NULL || lens == NULL)))
        return KITH_EINVAL;
    rc = fold_get(r, txn, &c);
    if (rc == 0 && c != NULL) {
        size_t nm, others = 0;
        const struct kith__group_member *m = kith__group_members(c->fold, &nm);
        for (size_t i = 0; i < nm; i++)
            others += memcmp(m[i].pk, r->pk, KITH_PUBKEY_BYTES) != 0;
        sodium_bin2hex(hex, sizeof hex, c->meta, KITH__GROUP_ID_BYTES);
        if (memcmp(c->meta, gid, KITH__GROUP_ID_BYTES) == 0)
            rc = fold_copy(c, gid, &g); /* joined already: take what is new */
        else if (others > 0)
            rc = kith__fail(r, KITH_EEXIST,
                            "this replica is in group %s already, with %zu other device%s: it "
                            "cannot join another",
                            hex, others, others == 1 ? "" : "s");
        else
            drop = true; /* a group of this replica alone: left for the new one */
    }
    fold_put(r);
    if (rc < 0)
        return rc;
    if (g == NULL && (rc = kith__group_new(gid, &g)) < 0)
        return rc;
    fresh = calloc(n ? n : 1, sizeof *fresh);
    if (fresh == NULL) {
        rc = KITH_ENOMEM;
        goto out_free;
    }
    rc = judge(r, g, gid, recs, lens, n, fresh);
    if (rc < 0)
        goto out_free;
    if (!kith__group_is_member(g, r->pk)) {
        sodium_bin2hex(hex, sizeof hex, gid, KITH__GROUP_ID_BYTES);
        rc = kith__fail(r, KITH_EUNTRUSTED,
                        "the records of group %s hold no live ADD of this replica's key", hex);
        goto out_free;
    }
    if (drop && (rc = records_drop(r, txn)) != 0)
        goto out_free;
    rc = store_fresh(r, txn, g, gid, recs, lens, n, fresh, NULL, true);
out_free:
    free(fresh);
    kith__group_free(g);
    return rc;
}

int
kith__group_refuse_write(kith_replica *r, MDB_txn *txn)
{
    struct kith__group_cache *c;
    char hex[2 * KITH__GROUP_ID_BYTES + 1];
    uint64_t cutoff = 0;
    bool removed = false;
    int rc = fold_get(r, txn, &c);

    if (rc == 0 && c != NULL) {
        removed = kith__group_cutoff(c->fold, r->pk, &cutoff);
        sodium_bin2hex(hex, sizeof hex, c->meta, KITH__GROUP_ID_BYTES);
    }
    fold_put(r);
    if (rc < 0 || !removed)
        return rc;
    return kith__fail(r, KITH_EUNTRUSTED,
                      "this replica was removed from group %s: every member refuses its ops "
                      "after seq %llu, so it writes nothing more (GRP-16); join again under a "
                      "new key (a new replica)",
                      hex, (unsigned long long)cutoff);
}

/* ---- for devices.c ------------------------------------------------------------------- */

int
kith__group_with(kith_replica *r, MDB_txn *txn,
                 int (*fn)(void *ctx, const struct kith__group *fold,
                           const uint8_t gid[KITH__GROUP_ID_BYTES]),
                 void *ctx)
{
    struct kith__group_cache *c;
    int rc = fold_get(r, txn, &c);

    if (rc == 0)
        rc = fn(ctx, c ? c->fold : NULL, c ? c->meta : NULL);
    fold_put(r);
    return rc;
}

int
kith__group_sign(kith_replica *r, MDB_txn *txn, struct kith__group_rec *rec,
                 uint8_t hash[KITH_HASH_BYTES])
{
    struct kith__group_cache *c;
    uint8_t gid[KITH__GROUP_ID_BYTES];
    int rc;

    if (rec->kind == KITH__GROUP_FOUND) {
        uint8_t h[KITH_HASH_BYTES];
        memset(rec->group, 0, KITH__GROUP_ID_BYTES);
        rc = records_drop(r, txn);
        if (rc == 0)
            rc = sign_store(r, txn, rec, NULL, h);
        if (rc == 0 && hash != NULL)
            memcpy(hash, h, KITH_HASH_BYTES);
        return rc == 0 ? meta_write(r, txn, h) : rc;
    }
    rc = fold_get(r, txn, &c);
    if (rc == 0 && c == NULL)
        rc = kith__fail(r, KITH_EINVAL, "this replica is in no group (kith_group_create)");
    if (rc == 0) {
        memcpy(gid, c->meta, KITH__GROUP_ID_BYTES);
        memcpy(rec->group, gid, KITH__GROUP_ID_BYTES);
        rc = sign_store(r, txn, rec, c, hash);
    }
    fold_put(r);
    return rc == 0 ? meta_write(r, txn, gid) : rc;
}
