/*
 * rekey.c — a device takes a new key (spec/data-model.md FORK-11..14, spec/storage.md STO-32,
 * decisions.md D-22).
 *
 * A fork of this replica's own origin cannot be settled the way another origin's is: setting
 * its own history aside and writing on would sign seqs the winning history holds, a fork
 * again. So the device that holds the losing history stops writing under that key. It makes
 * a new key pair, and while the old key is still a member of the group it signs an ADD of the
 * new key under this device's name; meta then names the new key, which makes the old origin
 * "another origin" to this replica, and the ordinary settling of a fork (FORK-10) moves its
 * losing commits to the journal and rebuilds the state. Last, the set-aside commits are
 * written again through kith_journal_restore, as new writes under the new key.
 *
 * Three steps, each crash-safe on its own:
 *  1. the switch: the new secret key goes to a side file, key.next.<id> (fsync, then the
 *     directory), and ONE LMDB transaction signs the ADD, signs the old origin's head (its
 *     last signature, so that all of its history can be relayed), names the new key in meta
 *     "id" and "pk", drops the restored mark (it spoke of the old origin) and writes meta "rekeyed"
 *     with the re-issue pending when a fork was lost. After the commit the old key file is
 *     zeroed through a descriptor opened before it, and the side file renamed over `key`. An
 *     open (or another handle's next write transaction) that finds meta naming the side
 *     file's key finishes the rename (store/replica.c ident_from_files);
 *  2. the set-aside: kith__history_set_aside, which settles every fork a proof settles, the
 *     old origin's now among them (idempotent: a batch applied meanwhile may have done it);
 *  3. the re-issue: one write transaction restores every journal commit of the old origin
 *     after the shared seq not restored yet (each marked restored in that transaction), and
 *     then meta "rekeyed" drops its pending flag. Whoever finds the flag pending (the next
 *     writable open, the next batch that learns a proof) runs steps 2 and 3 again; restored
 *     commits are never restored twice, so running them again is harmless.
 *
 * No REMOVE of the old key is signed: the winning device holds the same key and may be
 * writing, and a removal voids every record the removed key signed concurrently (GRP-9).
 */
#include "store.h"
#include "view.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_GROWTHS 24

/* meta "rekeyed": old_id(8) | new_id(8) | rekeyed_ms(8) | fork_seq(8) | flags(1)
 * | ops_aside(8) | commits_reissued(8) | ops_skipped(8) */
#define REKEYED_BYTES 57
#define F_LOST 1u
#define F_PENDING 2u

static void
rec_encode(const kith_rekey_info *in, uint8_t out[REKEYED_BYTES])
{
    kith__be64_put(out, in->old_id);
    kith__be64_put(out + 8, in->new_id);
    kith__be64_put(out + 16, (uint64_t)in->rekeyed_ms);
    kith__be64_put(out + 24, in->fork_seq);
    out[32] = (uint8_t)((in->lost_fork ? F_LOST : 0) | (in->reissue_pending ? F_PENDING : 0));
    kith__be64_put(out + 33, in->ops_aside);
    kith__be64_put(out + 41, in->commits_reissued);
    kith__be64_put(out + 49, in->ops_skipped);
}

int
kith__rekey_read(kith_replica *r, MDB_txn *txn, kith_rekey_info *out)
{
    MDB_val v;
    const uint8_t *p;
    int rc = kith__meta_get(r, txn, "rekeyed", &v);

    memset(out, 0, sizeof *out);
    if (rc == KITH_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    if (v.mv_size != REKEYED_BYTES)
        return kith__fail(r, KITH_ECORRUPT, "meta rekeyed has %zu bytes, not %d", v.mv_size,
                          REKEYED_BYTES);
    p = v.mv_data;
    out->old_id = kith__be64_get(p);
    out->new_id = kith__be64_get(p + 8);
    out->rekeyed_ms = (int64_t)kith__be64_get(p + 16);
    out->fork_seq = kith__be64_get(p + 24);
    out->lost_fork = (p[32] & F_LOST) != 0;
    out->reissue_pending = (p[32] & F_PENDING) != 0;
    out->ops_aside = kith__be64_get(p + 33);
    out->commits_reissued = kith__be64_get(p + 41);
    out->ops_skipped = kith__be64_get(p + 49);
    return 1;
}

int
kith_rekey_get(kith_replica *r, kith_rekey_info *out)
{
    MDB_txn *txn;
    int rc;

    if (r == NULL || out == NULL)
        return KITH_EINVAL;
    memset(out, 0, sizeof *out);
    if ((rc = kith__view_begin(r, &txn)) < 0)
        return rc;
    rc = kith__rekey_read(r, txn, out);
    kith__view_end(r, txn);
    return rc;
}

/* Does this replica's own origin have a proof it lost? 1 with the shared seq in *after, 0
 * when not, or an error. */
static int
own_lost(kith_replica *r, MDB_txn *txn, uint64_t *after)
{
    kith_fork f;
    int rc;

    memset(&f, 0, sizeof f);
    f.origin = r->id;
    if ((rc = kith__proof_describe(r, txn, &f)) < 0)
        return rc;
    *after = f.proof_seq;
    return f.has_proof && f.holds == KITH_FORK_HOLDS_LOSER;
}

/* This device's name in its group: the name its key's admission gave. */
struct name_ctx {
    const uint8_t *pk;
    char name[KITH_DEVICE_NAME_MAX + 1];
    size_t len;
    bool found;
};

static int
name_fn(void *ctx, const struct kith__group *fold, const uint8_t gid[KITH__GROUP_ID_BYTES])
{
    struct name_ctx *c = ctx;
    const struct kith__group_member *m;
    size_t n;

    (void)gid;
    if (fold == NULL)
        return 0;
    m = kith__group_members(fold, &n);
    for (size_t i = 0; i < n && !c->found; i++)
        if (memcmp(m[i].pk, c->pk, KITH_PUBKEY_BYTES) == 0 && m[i].name_len > 0 &&
            m[i].name_len <= KITH_DEVICE_NAME_MAX) {
            memcpy(c->name, m[i].name, m[i].name_len);
            c->name[m[i].name_len] = '\0';
            c->len = m[i].name_len;
            c->found = true;
        }
    return 0;
}

/*
 * The old key's last signature: its head at `have`, kept in `sigs`. Once the replica writes
 * under the new key, the old origin is another origin here, relayed only up to a head it
 * signed (store/batch_build.c run_extend); its own heads were signed as its ops left (and not
 * kept), so commits never sent yet would stay here for good without this one. 0 or an error
 * (MDB_MAP_FULL as itself).
 */
static int
head_seal(kith_replica *r, MDB_txn *txn)
{
    struct kith__origin_state st;
    uint8_t kb[16], sig[KITH_SIG_BYTES];
    MDB_val k = {16, kb}, v = {KITH_SIG_BYTES, sig};
    int rc = kith__origin_get(r, txn, r->id, &st);

    if (rc < 0 || st.have == 0)
        return rc;
    kith__head_sign(r->sk, r->id, st.have, st.head, sig);
    kith__be64_put(kb, r->id);
    kith__be64_put(kb + 8, st.have);
    rc = kith__mdb_put(txn, r->sigs, &k, &v, 0);
    return rc == 0 || rc == MDB_MAP_FULL ? rc : kith__mdb_err(rc);
}

/* What the switch transaction did, for after its commit. */
struct switching {
    const uint8_t *pk, *sk; /* the new key pair */
    uint64_t new_id;
    bool only_if_lost; /* the automatic re-key: nothing to do unless a fork was lost */
    bool skip;         /* nothing was to do: abort, no switch */
    bool side_written; /* key.next.<new_id> exists */
    int wipe_fd;       /* the old key file, opened before the switch; -1: none */
    kith_rekey_info rec;
};

/*
 * Step 1 inside write txn `txn`: check, write the side file, sign the ADD with the old key,
 * name the new key in meta. Assumes r's identity is meta's in txn (kith__mdb_begin synced it)
 * and the caller holds r->wlock.
 */
static int
switch_in(kith_replica *r, MDB_txn *txn, struct switching *sw)
{
    uint8_t gid[16], digest[32], rb[REKEYED_BYTES];
    struct name_ctx nc = {r->pk, "", 0, false};
    MDB_val k = {8, (void *)"restored"};
    uint64_t after = 0;
    int lost, rc;

    if (!r->has_sk)
        return kith__fail(r, -EACCES, "%s/key: cannot be read, so no new key can be signed",
                          r->path);
    rc = kith__group_summary(r, txn, gid, digest);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return kith__fail(r, KITH_EINVAL,
                          "this replica is in no device group: the peers that trust its key "
                          "pairwise would not admit a new one. Join its peers' group (kith "
                          "invite on one, kith join on this one), then take a new key (kith "
                          "rekey)");
    if ((lost = own_lost(r, txn, &after)) < 0)
        return lost;
    if (sw->only_if_lost && !lost) {
        sw->skip = true; /* another handle re-keyed first, or no fork was lost */
        return 0;
    }
    if ((rc = kith__group_with(r, txn, name_fn, &nc)) < 0)
        return rc;
    if (!nc.found)
        return kith__fail(r, KITH_EINVAL,
                          "this replica is not a member of its group any more: no member "
                          "key can sign its new one");
    /* leftovers of re-keys cut short before they committed: no meta names them */
    (void)kith__key_next_sweep(r->path, sw->new_id);
    if (sw->wipe_fd < 0)
        sw->wipe_fd = kith__key_wipe_open(r->path);
    if (!sw->side_written) {
        if ((rc = kith__key_write_next(r->path, sw->new_id, sw->sk)) < 0)
            return kith__fail(r, rc, "%s/%s%016llx: %s", r->path, KITH__KEY_NEXT_PREFIX,
                              (unsigned long long)sw->new_id, kith_strerror(rc));
        sw->side_written = true;
    }
    if ((rc = kith__group_add_member(r, txn, sw->pk, nc.name, nc.len)) != 0)
        return rc;
    if ((rc = head_seal(r, txn)) != 0)
        return rc;
    rc = kith__mdb_del(txn, r->meta, &k, NULL); /* RESTORE-*: spoke of the old origin */
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc == MDB_MAP_FULL ? rc : kith__mdb_err(rc);
    memset(&sw->rec, 0, sizeof sw->rec);
    sw->rec.old_id = r->id;
    sw->rec.new_id = sw->new_id;
    sw->rec.rekeyed_ms = kith__now_ms();
    sw->rec.lost_fork = lost > 0;
    sw->rec.fork_seq = lost > 0 ? after : 0;
    sw->rec.reissue_pending = lost > 0;
    rec_encode(&sw->rec, rb);
    if ((rc = kith__meta_put_u64(r, txn, "id", sw->new_id)) < 0 ||
        (rc = kith__meta_put(r, txn, "pk", sw->pk, KITH_PUBKEY_BYTES)) < 0 ||
        (rc = kith__meta_put(r, txn, "rekeyed", rb, sizeof rb)) < 0)
        return rc;
    return 0;
}

/* Unlink the side file of a switch that did not commit. */
static void
side_drop(kith_replica *r, uint64_t id)
{
    char name[KITH__KEY_NEXT_NAME_BYTES], *p;

    kith__key_next_name(id, name);
    p = kith__path_join(r->path, name);
    if (p != NULL)
        (void)unlink(p);
    free(p);
}

/* Step 1: 1 when switched, 0 when nothing was to do (only_if_lost), or an error (nothing
 * changed). */
static int
rekey_switch(kith_replica *r, bool only_if_lost, kith_rekey_info *rec)
{
    uint8_t pk[KITH_PUBKEY_BYTES], sk[64];
    struct switching sw;
    MDB_txn *txn;
    int rc;

    if (crypto_sign_keypair(pk, sk) != 0)
        return KITH_ENOMEM;
    memset(&sw, 0, sizeof sw);
    sw.pk = pk;
    sw.sk = sk;
    sw.new_id = kith__id_from_pk(pk);
    sw.only_if_lost = only_if_lost;
    sw.wipe_fd = -1;
    pthread_mutex_lock(&r->wlock); /* no local write of this handle between begin and switch */
    for (int tries = 0;; tries++) {
        if ((rc = kith__mdb_begin(r, 0, &txn)) < 0)
            break;
        rc = switch_in(r, txn, &sw);
        if (rc == 0 && !sw.skip) {
            rc = kith__mdb_txn_commit(txn); /* frees txn, even when it fails */
            if (rc != 0 && rc != MDB_MAP_FULL)
                rc = kith__fail(r, kith__mdb_err(rc), "re-key: commit: %s", mdb_strerror(rc));
        } else {
            mdb_txn_abort(txn);
        }
        kith__mdb_end(r);
        if (rc == 0 && !sw.skip) {
            /* the handle writes under the new key from here on */
            kith__ident_set(r, sw.new_id, pk, sk);
        }
        if (rc != MDB_MAP_FULL)
            break;
        if (tries == MAX_GROWTHS) {
            rc = kith__fail(r, -ENOSPC, "the map cannot grow any further");
            break;
        }
        if ((rc = kith__map_grow(r)) < 0)
            break;
    }
    pthread_mutex_unlock(&r->wlock);
    sodium_memzero(sk, sizeof sk);
    if (rc != 0 || sw.skip) {
        if (sw.side_written)
            side_drop(r, sw.new_id);
        if (sw.wipe_fd >= 0)
            close(sw.wipe_fd);
        return rc;
    }
    /* the old secret key leaves the device: zeroed in place, then the new key takes its name
     * (another handle may have renamed it already: ENOTFOUND then) */
    if (sw.wipe_fd >= 0)
        (void)kith__key_wipe(sw.wipe_fd);
    rc = kith__key_adopt_next(r->path, sw.new_id);
    if (rc < 0 && rc != KITH_ENOTFOUND)
        return kith__fail(r, rc,
                          "re-keyed to %016llx, but %s/%s%016llx could not be renamed to key "
                          "(the next open does it): %s",
                          (unsigned long long)sw.new_id, r->path, KITH__KEY_NEXT_PREFIX,
                          (unsigned long long)sw.new_id, kith_strerror(rc));
    *rec = sw.rec;
    return 1;
}

/* A journal commit of the old origin after the shared seq. */
struct entry {
    uint64_t seq;
    uint32_t nops;
    bool restored;
};

/* The journal commits of `origin` after seq `after`, in seq order. *out released with
 * free(). */
static int
entries_read(kith_replica *r, MDB_txn *txn, uint64_t origin, uint64_t after, struct entry **out,
             size_t *n)
{
    struct entry *list = NULL;
    size_t cap = 0;
    uint8_t kb[16];
    MDB_val k = {16, kb}, v;
    MDB_cursor *cur;
    int rc, mrc;

    *out = NULL;
    *n = 0;
    if (r->journal == KITH__DBI_FREE)
        return 0;
    if ((rc = kith__mdb_err(kith__mdb_cursor_open(txn, r->journal, &cur))) < 0)
        return rc;
    kith__be64_put(kb, origin);
    kith__be64_put(kb + 8, after + 1);
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         mrc == 0 && k.mv_size >= 8 && kith__be64_get(k.mv_data) == origin;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *p = v.mv_data;
        if (k.mv_size != 16)
            continue; /* a document map ("newdocid"), keyed by a document id */
        if (v.mv_size < KITH__LOG_HDR_BYTES) {
            rc = kith__fail(r, KITH_ECORRUPT, "journal: an entry of %zu bytes", v.mv_size);
            break;
        }
        if (*n == cap) {
            size_t nc = cap ? 2 * cap : 16;
            struct entry *q = realloc(list, nc * sizeof *q);
            if (q == NULL) {
                rc = KITH_ENOMEM;
                break;
            }
            list = q;
            cap = nc;
        }
        list[*n].seq = kith__be64_get((const uint8_t *)k.mv_data + 8);
        list[*n].nops = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        list[*n].restored = (kith__be64_get(p + 36) & KITH__JOURNAL_RESTORED) != 0;
        (*n)++;
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = kith__mdb_err(mrc);
    if (rc < 0) {
        free(list);
        *n = 0;
        return rc;
    }
    *out = list;
    return 0;
}

/* Step 3's end: the re-issue is done; count what the journal holds of it. */
struct done_ctx {
    uint64_t old_id;
    uint64_t skipped;
    kith_rekey_info rec; /* out: the record written */
};

static int
done_fn(kith_replica *r, MDB_txn *txn, void *ctx)
{
    struct done_ctx *d = ctx;
    struct entry *list;
    uint8_t rb[REKEYED_BYTES];
    size_t n;
    int rc = kith__rekey_read(r, txn, &d->rec);

    if (rc <= 0 || !d->rec.reissue_pending || d->rec.old_id != d->old_id)
        return rc < 0 ? rc : 0;
    if ((rc = entries_read(r, txn, d->rec.old_id, d->rec.fork_seq, &list, &n)) < 0)
        return rc;
    d->rec.ops_aside = d->rec.commits_reissued = 0;
    for (size_t i = 0; i < n; i++) {
        d->rec.ops_aside += list[i].nops;
        d->rec.commits_reissued += list[i].restored;
    }
    free(list);
    d->rec.ops_skipped += d->skipped;
    d->rec.reissue_pending = false;
    rec_encode(&d->rec, rb);
    return kith__meta_put(r, txn, "rekeyed", rb, sizeof rb);
}

/* Steps 2 and 3, when meta "rekeyed" says the re-issue is pending. *rec gets the record as it
 * stands at the end. 0 or an error. */
static int
rekey_finish(kith_replica *r, kith_rekey_info *rec)
{
    struct done_ctx d = {0, 0, {0}};
    struct entry *list = NULL;
    size_t n = 0;
    kith_txn *t = NULL;
    bool wrote = false;
    MDB_txn *txn;
    int rc;

    if ((rc = kith__view_begin(r, &txn)) < 0)
        return rc;
    rc = kith__rekey_read(r, txn, rec);
    kith__view_end(r, txn);
    if (rc <= 0 || !rec->reissue_pending)
        return rc < 0 ? rc : 0;
    d.old_id = rec->old_id;
    /* step 2: the old origin is another origin now, and its proof settles it (FORK-10) */
    if ((rc = kith__history_set_aside(r, NULL, 0, NULL, NULL)) < 0)
        return rc;
    /* step 3: in one write transaction, every commit not restored yet */
    if ((rc = kith_txn_begin(r, KITH_TXN_WRITE, &t)) < 0)
        return rc;
    rc = entries_read(r, t->txn, rec->old_id, rec->fork_seq, &list, &n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        kith_dot dot = {rec->old_id, list[i].seq};
        size_t skipped = 0;
        if (list[i].restored)
            continue; /* by the user (kith journal restore), or a run of this before */
        rc = kith_journal_restore(t, &dot, &skipped);
        d.skipped += skipped;
        wrote = true;
    }
    free(list);
    if (rc < 0) {
        kith_txn_abort(&t);
        return kith__fail(r, rc,
                          "re-keyed from %016llx to %016llx, but writing its set-aside edits "
                          "again failed (they stay in the journal; the next open tries "
                          "again): %s",
                          (unsigned long long)rec->old_id, (unsigned long long)rec->new_id,
                          kith_errmsg(r)[0] ? kith_errmsg(r) : kith_strerror(rc));
    }
    if (wrote)
        rc = kith_txn_commit(&t);
    else
        kith_txn_abort(&t);
    if (rc < 0)
        return rc;
    if ((rc = kith__view_write(r, done_fn, &d)) < 0)
        return rc;
    if (d.rec.old_id != 0)
        *rec = d.rec;
    return 0;
}

int
kith_rekey(kith_replica *r, kith_rekey_info *info)
{
    kith_rekey_info rec;
    int rc;

    if (info != NULL)
        memset(info, 0, sizeof *info);
    if (r == NULL)
        return KITH_EINVAL;
    if (r->flags & KITH_RDONLY)
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    if (kith__txn_open_here())
        return kith__fail(r, KITH_EBADTXN,
                          "this thread has a transaction open; commit or abort it first");
    /* a re-key cut short before: its edits are written under the key it took, first */
    if ((rc = rekey_finish(r, &rec)) < 0)
        return rc;
    if ((rc = rekey_switch(r, false, &rec)) < 0)
        return rc;
    rc = rekey_finish(r, &rec);
    if (info != NULL)
        *info = rec;
    return rc;
}

/*
 * A re-key made before the proof: the replica took a new key while its old origin's fork had
 * no proof yet (a restored device that wrote, found at a handshake, RESTORE-4), and a proof
 * came since, which the batch just settled (the old origin is another origin): this
 * replica's old history after the shared seq went to the journal, and it is this device's own
 * edits. The re-issue is then marked pending in the record of that re-key, and runs.
 */

/* Does the journal hold commits of rec's old origin, after the shared seq its proof names,
 * not restored yet, while rec says no fork was lost? 1 with the seq in *after, 0, or an
 * error. */
static int
late_loss(kith_replica *r, MDB_txn *txn, const kith_rekey_info *rec, uint64_t *after)
{
    struct entry *list = NULL;
    kith_fork f;
    size_t n = 0;
    int open = 0, rc;

    if (rec->old_id == 0 || rec->lost_fork || rec->reissue_pending)
        return 0;
    memset(&f, 0, sizeof f);
    f.origin = rec->old_id;
    if ((rc = kith__proof_describe(r, txn, &f)) < 0 || !f.has_proof)
        return rc;
    if ((rc = entries_read(r, txn, rec->old_id, f.proof_seq, &list, &n)) < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        open |= !list[i].restored;
    free(list);
    *after = f.proof_seq;
    return open;
}

struct late_ctx {
    uint64_t old_id;
    bool marked;
};

static int
late_fn(kith_replica *r, MDB_txn *txn, void *ctx)
{
    struct late_ctx *lc = ctx;
    kith_rekey_info rec;
    uint8_t rb[REKEYED_BYTES];
    uint64_t after = 0;
    int rc = kith__rekey_read(r, txn, &rec);

    lc->marked = false;
    if (rc <= 0 || rec.old_id != lc->old_id)
        return rc < 0 ? rc : 0;
    if ((rc = late_loss(r, txn, &rec, &after)) <= 0)
        return rc;
    rec.lost_fork = true;
    rec.fork_seq = after;
    rec.reissue_pending = true;
    rec_encode(&rec, rb);
    lc->marked = true;
    return kith__meta_put(r, txn, "rekeyed", rb, sizeof rb);
}

int
kith__rekey_auto(kith_replica *r)
{
    kith_rekey_info rec;
    uint8_t gid[16], digest[32];
    uint64_t after;
    bool pending, lost = false, late = false;
    MDB_txn *txn;
    int rc;

    if ((r->flags & KITH_RDONLY) || kith__txn_open_here())
        return 0;
    if ((rc = kith__view_begin(r, &txn)) < 0)
        return rc;
    rc = kith__rekey_read(r, txn, &rec);
    pending = rc > 0 && rec.reissue_pending;
    if (rc > 0 && (rc = late_loss(r, txn, &rec, &after)) > 0)
        late = true;
    if (rc >= 0 && r->has_sk && (rc = own_lost(r, txn, &after)) > 0)
        lost = (rc = kith__group_summary(r, txn, gid, digest)) > 0;
    kith__view_end(r, txn);
    if (rc < 0)
        return rc;
    if (late) {
        struct late_ctx lc = {rec.old_id, false};
        if ((rc = kith__view_write(r, late_fn, &lc)) < 0)
            return rc;
        pending = lc.marked;
    }
    if (pending && (rc = rekey_finish(r, &rec)) < 0)
        return rc;
    if (!lost)
        return 0; /* in no group: kith status says what to do */
    rc = rekey_switch(r, true, &rec);
    if (rc == KITH_EINVAL)
        return 0; /* removed from its group: no member key signs a new one (kith status) */
    if (rc <= 0)
        return rc;
    return rekey_finish(r, &rec);
}

int
kith__rekey_resume(kith_replica *r)
{
    kith_rekey_info rec;

    if (r->flags & KITH_RDONLY)
        return 0;
    return rekey_finish(r, &rec);
}
