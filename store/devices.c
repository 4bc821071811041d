/*
 * devices.c — the device group as the public API shows it: founding a group, reading it,
 * listing its devices, removing one, and converting an older replica's trust set into a
 * group when it is first opened writable (spec/groups.md GRP-16 .. GRP-20, include/kith.h
 * "Device groups"). The records, the cached fold and what the rest of the store asks of
 * them are store/group.c; this file only reads the fold and signs records through it.
 */
#include "store.h"
#include "view.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UPGRADE_GROUP_NAME "devices"

static bool
name_ok(const char *s)
{
    size_t len = s != NULL ? strlen(s) : 0;

    return len >= 1 && len <= KITH__GROUP_MAX_NAME && kith__utf8_valid(s, len);
}

/* ---- founding ------------------------------------------------------------------------- */

struct create_ctx {
    const char *group_name, *device_name;
};

static int
in_group_fn(void *ctx, const struct kith__group *fold, const uint8_t gid[KITH__GROUP_ID_BYTES])
{
    (void)fold;
    if (gid != NULL)
        sodium_bin2hex(ctx, 2 * KITH__GROUP_ID_BYTES + 1, gid, KITH__GROUP_ID_BYTES);
    return gid != NULL;
}

static int
create_txn(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct create_ctx *c = arg;
    struct kith__group_rec rec;
    char hex[2 * KITH__GROUP_ID_BYTES + 1];
    int rc = kith__group_with(r, txn, in_group_fn, hex);

    if (rc < 0)
        return rc;
    if (rc == 1)
        return kith__fail(r, KITH_EEXIST, "this replica is in group %s already", hex);
    memset(&rec, 0, sizeof rec);
    rec.kind = KITH__GROUP_FOUND;
    rec.name = c->device_name;
    rec.name_len = (uint32_t)strlen(c->device_name);
    rec.group_name = c->group_name;
    rec.group_name_len = (uint32_t)strlen(c->group_name);
    return kith__group_sign(r, txn, &rec, NULL);
}

int
kith_group_create(kith_replica *r, const char *group_name, const char *device_name)
{
    struct create_ctx c = {group_name, device_name};

    if (r == NULL)
        return KITH_EINVAL;
    if (!name_ok(group_name) || !name_ok(device_name))
        return kith__fail(r, KITH_EINVAL,
                          "a group name and a device name are 1 to 63 bytes of UTF-8 without NUL");
    if (r->flags & KITH_RDONLY)
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    return kith__view_write(r, create_txn, &c);
}

/* ---- reading -------------------------------------------------------------------------- */

/* The valid admission of `pk` that shows it: its via when a member, else the earliest valid
 * FOUND or ADD of it (by time, then hash). Decoded into *out (views into the fold). */
static bool
admission_of(const struct kith__group *fold, const uint8_t pk[KITH_PUBKEY_BYTES],
             const uint8_t *via, struct kith__group_rec *out)
{
    bool found = false;

    for (size_t i = 0; i < kith__group_count(fold); i++) {
        const struct kith__group_entry *e = kith__group_entry(fold, i);
        struct kith__group_rec rec;
        if (!kith__group_status_valid(e->status) ||
            kith__group_decode(e->bytes, e->len, &rec, NULL, 0) < 0)
            continue;
        if (via != NULL && memcmp(e->hash, via, KITH_HASH_BYTES) != 0)
            continue;
        if (!((rec.kind == KITH__GROUP_FOUND && memcmp(rec.author, pk, KITH_PUBKEY_BYTES) == 0) ||
              (rec.kind == KITH__GROUP_ADD && memcmp(rec.member, pk, KITH_PUBKEY_BYTES) == 0)))
            continue;
        if (!found || rec.time_ms < out->time_ms) {
            *out = rec;
            found = true;
        }
    }
    return found;
}

static void
name_copy(char *dst, const char *src, size_t len)
{
    if (len > KITH_DEVICE_NAME_MAX)
        len = KITH_DEVICE_NAME_MAX;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

struct info_ctx {
    kith_replica *r;
    kith_group_info *out;
};

static int
info_fn(void *ctx, const struct kith__group *fold, const uint8_t gid[KITH__GROUP_ID_BYTES])
{
    struct info_ctx *c = ctx;
    kith_group_info *o = c->out;
    size_t nm, nr;

    memset(o, 0, sizeof *o);
    if (fold == NULL)
        return 0;
    o->in_group = true;
    sodium_bin2hex(o->id, sizeof o->id, gid, KITH__GROUP_ID_BYTES);
    (void)kith__group_members(fold, &nm);
    (void)kith__group_removed(fold, &nr);
    o->members = nm;
    o->removed = nr;
    o->records = kith__group_count(fold);
    o->self_removed = kith__group_cutoff(fold, c->r->pk, &o->self_cutoff);
    o->needs_upgrade = kith__group_needs_upgrade(fold);
    kith__group_digest(fold, o->digest);
    for (size_t i = 0; i < kith__group_count(fold); i++) {
        const struct kith__group_entry *e = kith__group_entry(fold, i);
        struct kith__group_rec rec;
        if (kith__group_status_valid(e->status) &&
            memcmp(e->hash, gid, KITH__GROUP_ID_BYTES) == 0 &&
            kith__group_decode(e->bytes, e->len, &rec, NULL, 0) == 0 &&
            rec.kind == KITH__GROUP_FOUND)
            name_copy(o->name, rec.group_name, rec.group_name_len);
    }
    return 0;
}

int
kith__group_info(kith_replica *r, MDB_txn *txn, kith_group_info *out)
{
    struct info_ctx c = {r, out};

    return kith__group_with(r, txn, info_fn, &c);
}

int
kith_group_get(kith_replica *r, kith_group_info *out)
{
    MDB_txn *txn;
    int rc;

    if (r == NULL || out == NULL)
        return KITH_EINVAL;
    memset(out, 0, sizeof *out);
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = kith__group_info(r, txn, out);
    kith__view_end(r, txn);
    return rc;
}

struct list_ctx {
    kith_replica *r;
    kith_device *list;
    size_t n;
};

static int
list_add(struct list_ctx *c, const uint8_t pk[KITH_PUBKEY_BYTES], const struct kith__group_rec *adm)
{
    kith_device *d = &c->list[c->n++];

    memset(d, 0, sizeof *d);
    memcpy(d->pubkey, pk, KITH_PUBKEY_BYTES);
    d->id = kith__id_from_pk(pk);
    d->self = memcmp(pk, c->r->pk, KITH_PUBKEY_BYTES) == 0;
    name_copy(d->name, adm->name, adm->name_len);
    d->added_by = kith__id_from_pk(adm->author);
    d->added_ms = (int64_t)adm->time_ms;
    return 0;
}

static int
list_fn(void *ctx, const struct kith__group *fold, const uint8_t gid[KITH__GROUP_ID_BYTES])
{
    struct list_ctx *c = ctx;
    const struct kith__group_member *m;
    const struct kith__group_removed *rm;
    size_t nm, nr;

    (void)gid;
    if (fold == NULL)
        return 0;
    m = kith__group_members(fold, &nm);
    rm = kith__group_removed(fold, &nr);
    c->list = calloc(nm + nr + 1, sizeof *c->list);
    if (c->list == NULL)
        return KITH_ENOMEM;
    for (size_t i = 0; i < nm; i++) {
        struct kith__group_rec adm;
        memset(&adm, 0, sizeof adm);
        memcpy(adm.author, m[i].added_by, KITH_PUBKEY_BYTES);
        adm.name = m[i].name;
        adm.name_len = m[i].name_len;
        adm.time_ms = m[i].time_ms;
        list_add(c, m[i].pk, &adm);
    }
    for (size_t i = 0; i < nr; i++) {
        struct kith__group_rec adm;
        if (!admission_of(fold, rm[i].pk, NULL, &adm))
            continue; /* removed before it was ever added here: not a device of the group */
        list_add(c, rm[i].pk, &adm);
        c->list[c->n - 1].removed = true;
        c->list[c->n - 1].cutoff = rm[i].cutoff;
    }
    return 0;
}

static int
device_cmp(const void *a, const void *b)
{
    const kith_device *x = a, *y = b;
    bool fx = x->added_by == x->id, fy = y->added_by == y->id; /* the founder */

    if (fx != fy)
        return fx ? -1 : 1;
    if (x->added_ms != y->added_ms)
        return x->added_ms < y->added_ms ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

void
kith_devices_free(kith_device *devices, size_t n)
{
    (void)n;
    free(devices);
}

int
kith_devices_get(kith_replica *r, kith_device **out, size_t *n)
{
    struct list_ctx c = {r, NULL, 0};
    MDB_txn *txn;
    int rc;

    if (r == NULL || out == NULL || n == NULL)
        return KITH_EINVAL;
    *out = NULL;
    *n = 0;
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = kith__group_with(r, txn, list_fn, &c);
    for (size_t i = 0; i < c.n && rc == 0; i++)
        if (!c.list[i].self)
            rc = kith__peer_last_sync(r, txn, c.list[i].id, &c.list[i].last_seen_ms);
    kith__view_end(r, txn);
    if (rc < 0) {
        free(c.list);
        return rc;
    }
    if (c.n > 0)
        qsort(c.list, c.n, sizeof *c.list, device_cmp);
    *out = c.list;
    *n = c.n;
    if (c.n == 0) {
        free(c.list);
        *out = NULL;
    }
    return 0;
}

/* ---- removing ------------------------------------------------------------------------- */

struct remove_ctx {
    kith_replica *r;
    uint64_t id;
    uint8_t pk[KITH_PUBKEY_BYTES];
};

static int
remove_find(void *ctx, const struct kith__group *fold, const uint8_t gid[KITH__GROUP_ID_BYTES])
{
    struct remove_ctx *c = ctx;
    const struct kith__group_member *m;
    const struct kith__group_removed *rm;
    size_t nm, nr;
    uint64_t cutoff;

    (void)gid;
    if (fold == NULL)
        return kith__fail(c->r, KITH_EINVAL, "this replica is in no group");
    if (kith__group_cutoff(fold, c->r->pk, &cutoff))
        return kith__fail(c->r, KITH_EINVAL,
                          "this replica was removed from its group: it removes nobody");
    m = kith__group_members(fold, &nm);
    for (size_t i = 0; i < nm; i++) {
        if (kith__id_from_pk(m[i].pk) == c->id) {
            memcpy(c->pk, m[i].pk, KITH_PUBKEY_BYTES);
            return 0;
        }
    }
    rm = kith__group_removed(fold, &nr);
    for (size_t i = 0; i < nr; i++)
        if (kith__id_from_pk(rm[i].pk) == c->id)
            return kith__fail(c->r, KITH_ENOTFOUND,
                              "device %016llx was removed already (its ops after seq %llu are "
                              "refused)",
                              (unsigned long long)c->id, (unsigned long long)rm[i].cutoff);
    return kith__fail(c->r, KITH_ENOTFOUND, "no member of the group has id %016llx",
                      (unsigned long long)c->id);
}

/* The removed member's signed head at the cut-off, as a CUTHEAD naming the REMOVE (GRP-24):
 * with it every replica that takes the removal can keep and relay the member's ops exactly up
 * to the cut-off. Written when this replica holds that head (its last run of the member ended
 * there with one); else nothing. */
static int
cuthead_sign(kith_replica *r, MDB_txn *txn, const uint8_t pk[KITH_PUBKEY_BYTES], uint64_t id,
             uint64_t seq, const uint8_t chain[KITH_HASH_BYTES],
             const uint8_t remove[KITH_HASH_BYTES])
{
    struct kith__group_rec rec;
    uint8_t kb[16];
    MDB_val k = {sizeof kb, kb}, v;
    int rc;

    kith__be64_put(kb, id);
    kith__be64_put(kb + 8, seq);
    rc = kith__mdb_get(txn, r->sigs, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return kith__mdb_err(rc);
    if (v.mv_size != KITH_SIG_BYTES ||
        kith__head_verify(pk, id, seq, chain, (const uint8_t *)v.mv_data) != 0)
        return 0; /* not a head of the chain held here (kith verify reports it) */
    memset(&rec, 0, sizeof rec);
    rec.kind = KITH__GROUP_CUTHEAD;
    memcpy(rec.member, pk, KITH_PUBKEY_BYTES);
    rec.cutoff = seq;
    memcpy(rec.chain, chain, KITH_HASH_BYTES);
    memcpy(rec.head_sig, v.mv_data, KITH_SIG_BYTES);
    rec.nparents = 1;
    rec.parents = remove;
    rec.parent_stride = KITH_HASH_BYTES;
    return kith__group_sign(r, txn, &rec, NULL);
}

static int
remove_txn(kith_replica *r, MDB_txn *txn, void *arg)
{
    struct remove_ctx *c = arg;
    struct kith__origin_state o;
    struct kith__group_rec rec;
    uint8_t hash[KITH_HASH_BYTES];
    int rc = kith__group_with(r, txn, remove_find, c);

    if (rc < 0)
        return rc;
    rc = kith__origin_get(r, txn, c->id, &o);
    if (rc < 0)
        return rc;
    memset(&rec, 0, sizeof rec);
    rec.kind = KITH__GROUP_REMOVE;
    memcpy(rec.member, c->pk, KITH_PUBKEY_BYTES);
    rec.cutoff = o.have; /* every op of it held here stays accepted (GRP-20) */
    rc = kith__group_sign(r, txn, &rec, hash);
    if (rc != 0 || o.have == 0 || c->id == r->id)
        return rc; /* nothing of it held, or a device retiring its key: no head to carry */
    return cuthead_sign(r, txn, c->pk, c->id, o.have, o.head, hash);
}

int
kith_device_remove(kith_replica *r, uint64_t id)
{
    struct remove_ctx c;
    int rc;

    if (r == NULL)
        return KITH_EINVAL;
    if (r->flags & KITH_RDONLY)
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    memset(&c, 0, sizeof c);
    c.r = r;
    c.id = id;
    rc = kith__view_write(r, remove_txn, &c);
    if (rc < 0)
        return rc;
    /* the cut-off is what this replica holds, so nothing goes (GRP-21); but commits of other
     * origins that wait for the removed origin beyond it wait no longer (GRP-22) */
    return kith_holds_apply(r, NULL);
}

/* ---- the upgrade of a replica made before groups (GRP-17) --------------------------- */

struct upgrade_ctx {
    uint8_t (*pk)[KITH_PUBKEY_BYTES];
    char (*name)[KITH__GROUP_MAX_NAME + 1];
    size_t n, cap;
};

static int
upgrade_take(void *ctx, const uint8_t pk[KITH_PUBKEY_BYTES], const char *name)
{
    struct upgrade_ctx *u = ctx;

    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 8;
        void *p = realloc(u->pk, cap * sizeof *u->pk), *q;
        if (p == NULL)
            return KITH_ENOMEM;
        u->pk = p;
        q = realloc(u->name, cap * sizeof *u->name);
        if (q == NULL)
            return KITH_ENOMEM;
        u->name = q;
        u->cap = cap;
    }
    memcpy(u->pk[u->n], pk, KITH_PUBKEY_BYTES);
    if (name_ok(name))
        snprintf(u->name[u->n], sizeof u->name[u->n], "%s", name);
    else
        snprintf(u->name[u->n], sizeof u->name[u->n], "peer %016llx",
                 (unsigned long long)kith__id_from_pk(pk));
    u->n++;
    return 0;
}

/* This device's name in a group it founds on upgrade: the host's name when it is one. */
static void
device_name(char out[KITH__GROUP_MAX_NAME + 1])
{
    char host[256];

    if (gethostname(host, sizeof host) == 0) {
        host[sizeof host - 1] = '\0';
        host[KITH__GROUP_MAX_NAME] = '\0';
        if (name_ok(host)) {
            size_t n = strnlen(host, KITH__GROUP_MAX_NAME);
            memcpy(out, host, n);
            out[n] = '\0';
            return;
        }
    }
    snprintf(out, KITH__GROUP_MAX_NAME + 1, "%s", "this device");
}

int
kith__group_upgrade(kith_replica *r, MDB_txn *txn)
{
    struct upgrade_ctx u = {NULL, NULL, 0, 0};
    struct kith__group_rec rec;
    char me[KITH__GROUP_MAX_NAME + 1];
    int rc;

    if (!r->has_sk)
        return 0; /* nothing can be signed: the replica stays in no group */
    rc = kith__peers_each_trusted(r, txn, upgrade_take, &u);
    if (rc < 0 || u.n == 0)
        goto out_free;
    device_name(me);
    memset(&rec, 0, sizeof rec);
    rec.kind = KITH__GROUP_FOUND;
    rec.name = me;
    rec.name_len = (uint32_t)strlen(me);
    rec.group_name = UPGRADE_GROUP_NAME;
    rec.group_name_len = (uint32_t)strlen(UPGRADE_GROUP_NAME);
    rc = kith__group_sign(r, txn, &rec, NULL);
    for (size_t i = 0; i < u.n && rc == 0; i++) {
        memset(&rec, 0, sizeof rec);
        rec.kind = KITH__GROUP_ADD;
        memcpy(rec.member, u.pk[i], KITH_PUBKEY_BYTES);
        rec.name = u.name[i];
        rec.name_len = (uint32_t)strlen(u.name[i]);
        rc = kith__group_sign(r, txn, &rec, NULL);
    }
    if (rc == MDB_MAP_FULL)
        rc = -ENOSPC; /* in the open's transaction, which does not grow the map */
    if (rc < 0)
        rc = kith__fail(r, rc, "%s: cannot convert the trust set to a group: %s", r->path,
                        kith_strerror(rc));
out_free:
    free(u.pk);
    free(u.name);
    return rc;
}
