/*
 * replica.c — opening and closing a replica, and the small services every store file
 * leans on: LMDB error mapping, the per-handle error detail, the resize lock around every
 * LMDB transaction, map growth, the wall clock, meta values, and the replica's key pair
 * (signing, and its X25519 twin for ZeroMQ CURVE).
 *
 * A replica directory holds LMDB's data.mdb and lock.mdb and `key`, the 64-byte Ed25519
 * secret key (libsodium's form: seed then public key), mode 0600. Creation writes the key to
 * key.tmp (fsync), then the environment and the meta records in one LMDB transaction, and
 * renames key.tmp to key last (fsync of the directory): a directory without `key` holds no
 * replica yet, and the next KITH_CREATE open finishes what it holds. Before LMDB maps
 * anything, data.mdb is checked against its meta page and lock.mdb given its blocks
 * (store/files.c). spec/storage.md "Files", "Map growth" and sections 11-13 give the rules
 * in prose.
 */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_DBS 24

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
/* Why this thread's last kith_open failed, for kith_errmsg(NULL): there is no handle then. */
static _Thread_local char open_detail[512];
static int sodium_rc;

static void
sodium_setup(void)
{
    sodium_rc = sodium_init() < 0 ? KITH_ENOMEM : 0;
}

int
kith__mdb_err(int mdb_rc)
{
    switch (mdb_rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return KITH_ENOTFOUND;
    case MDB_KEYEXIST:
        return KITH_EEXIST;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_BAD_DBI:
    case MDB_INCOMPATIBLE:
        return KITH_ECORRUPT;
    case MDB_VERSION_MISMATCH:
        return KITH_EVERSION;
    case MDB_MAP_FULL:
    case MDB_MAP_RESIZED:
        return mdb_rc; /* seen by the growth loops */
    case MDB_BAD_TXN:
        return KITH_EBADTXN;
    case MDB_BAD_VALSIZE:
    case MDB_TXN_FULL:
    case MDB_CURSOR_FULL:
    case MDB_PAGE_FULL:
        return KITH_ETOOBIG;
    case MDB_READERS_FULL:
    case MDB_TLS_FULL:
    case MDB_DBS_FULL:
        return -EAGAIN;
    case MDB_PANIC:
    case MDB_BAD_RSLOT:
        return -EIO;
    case ENOMEM:
        return KITH_ENOMEM;
    default:
        if (mdb_rc > 0)
            return -mdb_rc;
        if (mdb_rc > MDB_KEYEXIST)
            return mdb_rc; /* already kith's (or -errno): pass it on */
        return KITH_ECORRUPT;
    }
}

/*
 * kith_errmsg is per thread (kith.h): a thread keeps the detail of its last failure on each
 * of the few replicas it used last, so two threads never read each other's message and need
 * no lock. A replica is known by its address and its id: a replica opened later at a freed
 * address shows no old message unless it is the same replica.
 */
#define ERR_SLOTS 4

struct err_slot {
    const kith_replica *r;
    uint64_t id;
    char msg[512];
};

static _Thread_local struct err_slot err_slots[ERR_SLOTS];
static _Thread_local unsigned err_next;

static struct err_slot *
err_slot_of(const kith_replica *r)
{
    for (unsigned i = 0; i < ERR_SLOTS; i++)
        if (err_slots[i].r == r && err_slots[i].id == r->id)
            return &err_slots[i];
    return NULL;
}

int
kith__fail(kith_replica *r, int rc, const char *fmt, ...)
{
    struct err_slot *e;
    va_list ap;

    if (r == NULL)
        return rc;
    e = err_slot_of(r);
    if (e == NULL) {
        e = &err_slots[err_next++ % ERR_SLOTS];
        e->r = r;
        e->id = r->id;
    }
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return rc;
}

const char *
kith_errmsg(const kith_replica *r)
{
    const struct err_slot *e;

    if (r == NULL)
        return open_detail;
    e = err_slot_of(r);
    return e ? e->msg : "";
}

int64_t
kith__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Adopt the map size another process chose (no transaction of this process may be open:
 * hence the exclusive lock).
 */
static int
adopt_map_size(kith_replica *r)
{
    int rc;

    pthread_rwlock_wrlock(&r->resize);
    rc = kith__mdb_err(mdb_env_set_mapsize(r->env, 0));
    pthread_rwlock_unlock(&r->resize);
    return rc;
}

int
kith__mdb_begin(kith_replica *r, unsigned mdb_flags, MDB_txn **out)
{
    int rc;

    *out = NULL;
    for (int tries = 0;; tries++) {
        pthread_rwlock_rdlock(&r->resize);
        rc = mdb_txn_begin(r->env, NULL, mdb_flags, out);
        if (rc == 0 && !(mdb_flags & MDB_RDONLY) && (rc = kith__ident_sync(r, *out, true)) < 0) {
            /* another handle re-keyed the replica and its key cannot be read (D-22) */
            mdb_txn_abort(*out);
            pthread_rwlock_unlock(&r->resize);
            *out = NULL;
            return rc;
        }
        if (rc == 0)
            return 0;
        pthread_rwlock_unlock(&r->resize);
        *out = NULL;
        if (rc != MDB_MAP_RESIZED || tries == 8)
            return kith__fail(r, rc == MDB_MAP_RESIZED ? -EAGAIN : kith__mdb_err(rc),
                              "cannot begin a transaction: %s", mdb_strerror(rc));
        rc = adopt_map_size(r);
        if (rc < 0)
            return kith__fail(r, rc, "cannot adopt the grown map");
    }
}

void
kith__mdb_end(kith_replica *r)
{
    pthread_rwlock_unlock(&r->resize);
}

int
kith__map_grow(kith_replica *r)
{
    MDB_envinfo info;
    int rc;

    pthread_rwlock_wrlock(&r->resize);
    rc = mdb_env_info(r->env, &info);
    if (rc == 0) {
        size_t size = info.me_mapsize;
        size_t next = size > SIZE_MAX / 2 ? SIZE_MAX : size * 2;
        rc = mdb_env_set_mapsize(r->env, next);
    }
    pthread_rwlock_unlock(&r->resize);
    if (rc != 0)
        return kith__fail(r, kith__mdb_err(rc), "cannot grow the map: %s", mdb_strerror(rc));
    return 0;
}

int
kith__meta_get(kith_replica *r, MDB_txn *txn, const char *key, MDB_val *out)
{
    MDB_val k = {strlen(key), (void *)key};
    int rc = kith__mdb_get(txn, r->meta, &k, out);

    return kith__mdb_err(rc);
}

int
kith__meta_get_u64(kith_replica *r, MDB_txn *txn, const char *key, uint64_t *out)
{
    MDB_val v;
    int rc = kith__meta_get(r, txn, key, &v);

    *out = 0;
    if (rc == KITH_ENOTFOUND)
        return 0; /* a counter never written is 0 */
    if (rc < 0)
        return rc;
    if (v.mv_size != 8)
        return kith__fail(r, KITH_ECORRUPT, "meta %s has %zu bytes, not 8", key, v.mv_size);
    *out = kith__be64_get(v.mv_data);
    return 0;
}

int
kith__meta_put(kith_replica *r, MDB_txn *txn, const char *key, const void *p, size_t n)
{
    MDB_val k = {strlen(key), (void *)key};
    MDB_val v = {n, (void *)p};

    return kith__mdb_err(kith__mdb_put(txn, r->meta, &k, &v, 0));
}

int
kith__meta_put_u64(kith_replica *r, MDB_txn *txn, const char *key, uint64_t val)
{
    uint8_t b[8];

    kith__be64_put(b, val);
    return kith__meta_put(r, txn, key, b, sizeof b);
}

/* ---- files ------------------------------------------------------------------------- */

/* ---- open / close ------------------------------------------------------------------- */

struct dbi_name {
    const char *name;
    size_t offset;
};

static const struct dbi_name DBIS[] = {
    {"meta", offsetof(kith_replica, meta)},
    {"origins", offsetof(kith_replica, origins)},
    {"log", offsetof(kith_replica, log)},
    {"sigs", offsetof(kith_replica, sigs)},
    {"order", offsetof(kith_replica, order)},
    {"regs", offsetof(kith_replica, regs)},
    {"elems", offsetof(kith_replica, elems)},
    {"docs", offsetof(kith_replica, docs)},
    {"conflicts", offsetof(kith_replica, conflicts)},
    {"index", offsetof(kith_replica, index)},
    {"peers", offsetof(kith_replica, peers)},
    /* format 2: */
    {"names", offsetof(kith_replica, names)},
    {"counts", offsetof(kith_replica, counts)},
    {"flags", offsetof(kith_replica, flagdb)},
    /* 0.3.0, format 2 still: */
    {"forks", offsetof(kith_replica, forks)},
    /* 0.4.0, format 2 still: */
    {"journal", offsetof(kith_replica, journal)},
    {"groups", offsetof(kith_replica, groups)},
    {"proofs", offsetof(kith_replica, proofs)},
    {"voids", offsetof(kith_replica, voids)},
};

#define FORMAT1_DBIS 11 /* the databases format 1 has: the first ones above */

const char *
kith__dbi_name(const kith_replica *r, MDB_dbi dbi)
{
    if (dbi == KITH__DBI_FREE)
        return "free-page list";
    if (dbi == KITH__DBI_MAIN)
        return "main";
    for (size_t i = 0; i < sizeof DBIS / sizeof DBIS[0]; i++)
        if (*(const MDB_dbi *)((const char *)r + DBIS[i].offset) == dbi)
            return DBIS[i].name;
    return "(unknown)";
}

static int
open_dbis(kith_replica *r, MDB_txn *txn, unsigned flags)
{
    for (size_t i = 0; i < sizeof DBIS / sizeof DBIS[0]; i++) {
        MDB_dbi *dbi = (MDB_dbi *)((char *)r + DBIS[i].offset);
        int rc = kith__mdb_dbi_open(txn, DBIS[i].name, flags, dbi);
        if (rc == MDB_NOTFOUND && i >= FORMAT1_DBIS && (r->flags & KITH_RDONLY)) {
            *dbi = KITH__DBI_FREE; /* a format-1 replica read before its upgrade, or one
                                     made before 0.3.0 (no forks) or 0.4.0 (no journal,
                                     no groups, no proofs, no voids) */
            continue;
        }
        if (rc == MDB_NOTFOUND)
            return kith__fail(r, KITH_ECORRUPT, "%s: database %s is missing", r->path,
                              DBIS[i].name);
        if (rc != 0)
            return kith__fail(r, kith__mdb_err(rc), "%s: cannot open database %s: %s", r->path,
                              DBIS[i].name, mdb_strerror(rc));
    }
    return 0;
}

/*
 * Write the meta records of a new replica (format, id, pk, schema, clock and counters).
 * Assumes (a) txn is a write txn, (b) the dbis are open, (c) r->pk and r->id are set.
 */
static int
meta_create(kith_replica *r, MDB_txn *txn)
{
    uint8_t fmt[4] = {0, 0, 0, KITH__STORE_FORMAT};
    int rc;

    if ((rc = kith__meta_put(r, txn, "format", fmt, 4)) < 0 ||
        (rc = kith__meta_put_u64(r, txn, "id", r->id)) < 0 ||
        (rc = kith__meta_put(r, txn, "pk", r->pk, KITH_PUBKEY_BYTES)) < 0 ||
        (rc = kith__meta_put_u64(r, txn, "schema_v", 0)) < 0 ||
        (rc = kith__meta_put_u64(r, txn, "hlc", 0)) < 0 ||
        (rc = kith__meta_put_u64(r, txn, "order", 0)) < 0 ||
        (rc = kith__meta_put_u64(r, txn, "conflict", 0)) < 0 ||
        (rc = kith__meta_put_u64(r, txn, "pending", 0)) < 0)
        return kith__fail(r, rc, "%s: cannot write the replica's meta records", r->path);
    return 0;
}

/*
 * Find the secret key of public key `pk` (the one meta names) among the replica's key files:
 * `key`, else the side file of a re-key, key.next.<id> (STO-32), which `adopt` renames over
 * `key` (the caller holds LMDB's writer lock, so no re-key is between its steps). Sets r's
 * identity when found (has_sk true), else only its public half (has_sk false: nothing can be
 * signed). Tries three times, since another process may rename the side file between the
 * reads. 0, KITH_ENOTFOUND (no key file holds it), or an error reading the files.
 */
static int
ident_from_files(kith_replica *r, const uint8_t pk[KITH_PUBKEY_BYTES], bool adopt)
{
    uint8_t sk[64];
    uint64_t id = kith__id_from_pk(pk);
    int rc = 0;

    for (int tries = 0; tries < 3; tries++) {
        rc = kith__key_read(r->path, KITH__KEY_FILE, sk);
        if (rc == 0 && sodium_memcmp(sk + 32, pk, KITH_PUBKEY_BYTES) == 0)
            break;
        rc = kith__key_read_next(r->path, id, sk);
        if (rc == 0 && sodium_memcmp(sk + 32, pk, KITH_PUBKEY_BYTES) == 0) {
            if (adopt && (rc = kith__key_adopt_next(r->path, id)) == KITH_ENOTFOUND)
                rc = 0; /* another handle renamed it just now: `key` holds it */
            break;
        }
        rc = KITH_ENOTFOUND;
    }
    kith__ident_set(r, id, pk, rc == 0 ? sk : NULL);
    sodium_memzero(sk, sizeof sk);
    if (rc == KITH_ENOTFOUND)
        return rc; /* no key file holds it: the caller judges */
    return rc < 0 ? kith__fail(r, rc, "%s/key: %s", r->path, kith_strerror(rc)) : 0;
}

void
kith__ident_copy(kith_replica *r, uint64_t *id, uint8_t sk[64], bool *has_sk)
{
    pthread_mutex_lock(&r->ident_lock);
    *id = r->id;
    *has_sk = r->has_sk;
    memcpy(sk, r->sk, 64);
    pthread_mutex_unlock(&r->ident_lock);
}

void
kith__ident_set(kith_replica *r, uint64_t id, const uint8_t pk[KITH_PUBKEY_BYTES],
                const uint8_t *sk)
{
    pthread_mutex_lock(&r->ident_lock);
    sodium_memzero(r->sk, sizeof r->sk);
    if (sk != NULL)
        memcpy(r->sk, sk, sizeof r->sk);
    memcpy(r->pk, pk, KITH_PUBKEY_BYTES);
    r->id = id;
    r->has_sk = sk != NULL;
    pthread_mutex_unlock(&r->ident_lock);
}

int
kith__ident_sync(kith_replica *r, MDB_txn *txn, bool write)
{
    MDB_val k = {2, (void *)"id"}, v;
    int rc = kith__mdb_get(txn, r->meta, &k, &v);

    if (rc != 0 || v.mv_size != 8 || kith__be64_get(v.mv_data) == r->id)
        return 0; /* the common case: one read of meta; a missing id is meta_check's to judge */
    k.mv_size = 2;
    k.mv_data = (void *)"pk";
    rc = kith__mdb_get(txn, r->meta, &k, &v);
    if (rc != 0 || v.mv_size != KITH_PUBKEY_BYTES)
        return kith__fail(r, KITH_ECORRUPT, "%s: meta names a new id but no key", r->path);
    rc = ident_from_files(r, v.mv_data, write && !(r->flags & KITH_RDONLY));
    return rc == KITH_ENOTFOUND ? 0 : rc; /* a key this process cannot read: nothing is signed */
}

/* Check the meta records against the key: format, id, public key. */
static int
meta_check(kith_replica *r, MDB_txn *txn, uint32_t *format)
{
    MDB_val v;
    uint64_t id;
    uint32_t fmt;
    int rc = kith__meta_get(r, txn, "format", &v);

    if (rc == KITH_ENOTFOUND)
        return kith__fail(r, KITH_ECORRUPT, "%s: not a kith replica (no format record)", r->path);
    if (rc < 0)
        return rc;
    if (v.mv_size != 4)
        return kith__fail(r, KITH_ECORRUPT, "%s: bad format record", r->path);
    fmt = (uint32_t)((const uint8_t *)v.mv_data)[0] << 24 |
          (uint32_t)((const uint8_t *)v.mv_data)[1] << 16 |
          (uint32_t)((const uint8_t *)v.mv_data)[2] << 8 | ((const uint8_t *)v.mv_data)[3];
    if (fmt > KITH__STORE_FORMAT)
        return kith__fail(r, KITH_EVERSION, "%s: layout version %u is newer than this kith's %u",
                          r->path, fmt, KITH__STORE_FORMAT);
    if (fmt == 0)
        return kith__fail(r, KITH_ECORRUPT, "%s: bad layout version 0", r->path);
    *format = fmt;
    rc = kith__meta_get(r, txn, "pk", &v);
    if (rc == 0 && v.mv_size == KITH_PUBKEY_BYTES && !r->has_sk) {
        memcpy(r->pk, v.mv_data, KITH_PUBKEY_BYTES); /* the key file is not readable to us */
        r->id = kith__id_from_pk(r->pk);
    }
    if (rc == 0 && v.mv_size == KITH_PUBKEY_BYTES && r->has_sk &&
        sodium_memcmp(v.mv_data, r->pk, KITH_PUBKEY_BYTES) != 0) {
        /* a re-key that committed its switch and was cut short before renaming its side
         * file over `key` (STO-32): the side file holds the key meta names */
        rc = ident_from_files(r, v.mv_data, !(r->flags & KITH_RDONLY));
        if (rc == KITH_ENOTFOUND)
            return kith__fail(r, KITH_ECORRUPT, "%s: the key file does not belong to this replica",
                              r->path);
        if (rc < 0)
            return rc;
        rc = kith__meta_get(r, txn, "pk", &v);
    }
    if (rc < 0 || v.mv_size != KITH_PUBKEY_BYTES ||
        sodium_memcmp(v.mv_data, r->pk, KITH_PUBKEY_BYTES) != 0)
        return kith__fail(r, KITH_ECORRUPT, "%s: the key file does not belong to this replica",
                          r->path);
    rc = kith__meta_get_u64(r, txn, "id", &id);
    if (rc < 0 || id != r->id)
        return kith__fail(r, KITH_ECORRUPT, "%s: replica id does not match its key", r->path);
    return 0;
}

/* Format 1 -> 2 in place (spec/storage.md "Upgrade"): the names keep format 1's numbers, so
 * no state is rewritten; the built-in schema becomes the declared one; the commits of format
 * 1 stay in the log as they are (their bytes are chained and signed). */
static int
upgrade_v1(kith_replica *r, MDB_txn *txn)
{
    uint8_t fmt[4] = {0, 0, 0, KITH__STORE_FORMAT};
    int rc = kith__schema_upgrade_v1(r, txn);

    if (rc == 0)
        rc = kith__meta_put(r, txn, "format", fmt, 4);
    if (rc < 0)
        return kith__fail(r, rc, "%s: cannot upgrade the replica from format 1: %s", r->path,
                          kith_errmsg(r)[0] ? kith_errmsg(r) : kith_strerror(rc));
    return 0;
}

static bool
meta_empty(kith_replica *r, MDB_txn *txn)
{
    MDB_val v;

    return kith__meta_get(r, txn, "format", &v) == KITH_ENOTFOUND;
}

/*
 * Bring up the LMDB side: environment, databases, and (when `create`) the meta records.
 * Assumes r->path, r->flags, r->pk, r->id are set.
 */
static int
env_setup(kith_replica *r, bool create, bool data_exists, size_t mapsize)
{
    unsigned envflags = MDB_NOTLS;
    MDB_txn *txn;
    int rc;

    if (r->flags & KITH_NOSYNC)
        envflags |= MDB_NOSYNC;
    if (r->flags & KITH_RDONLY)
        envflags |= MDB_RDONLY;
    if ((r->flags & KITH_RDONLY) && !kith__file_writable(r->path, "lock.mdb"))
        envflags |= MDB_NOLOCK; /* a reader who may not write: see spec/storage.md STO-23 */
    rc = mdb_env_create(&r->env);
    if (rc != 0) {
        r->env = NULL;
        return kith__fail(r, kith__mdb_err(rc), "cannot create the LMDB environment");
    }
    (void)mdb_env_set_userctx(r->env, r); /* for kith__mdb_on_assert's messages */
    (void)mdb_env_set_assert(r->env, kith__mdb_on_assert);
    if ((rc = mdb_env_set_maxdbs(r->env, MAX_DBS)) != 0 ||
        (rc = mdb_env_set_maxreaders(r->env, 126)) != 0)
        return kith__fail(r, kith__mdb_err(rc), "cannot configure LMDB: %s", mdb_strerror(rc));
    if (!data_exists) {
        rc = mdb_env_set_mapsize(r->env, mapsize ? mapsize : KITH__MAP_INITIAL);
        if (rc != 0)
            return kith__fail(r, kith__mdb_err(rc), "cannot set the map size");
    }
    rc = mdb_env_open(r->env, r->path, envflags, 0600);
    if (rc != 0) {
        int err = rc == MDB_INVALID ? KITH_ECORRUPT : kith__mdb_err(rc);
        return kith__fail(r, err, "%s: cannot open LMDB: %s", r->path, kith_strerror(err));
    }
    {
        int dead = 0; /* clear reader slots of processes that died (killed CLI runs) */
        (void)mdb_reader_check(r->env, &dead);
    }
    if (r->flags & KITH_RDONLY) {
        rc = kith__mdb_err(mdb_txn_begin(r->env, NULL, MDB_RDONLY, &txn));
        if (rc < 0)
            return kith__fail(r, rc, "%s: cannot read the replica", r->path);
        uint32_t fmt;
        rc = open_dbis(r, txn, 0);
        if (rc == 0)
            rc = meta_check(r, txn, &fmt);
        if (rc == 0)
            rc = kith__mdb_err(kith__mdb_txn_commit(txn)); /* keeps the dbi handles */
        else
            mdb_txn_abort(txn);
        return rc;
    }
    rc = kith__mdb_err(mdb_txn_begin(r->env, NULL, 0, &txn));
    if (rc < 0)
        return kith__fail(r, rc, "%s: cannot write the replica", r->path);
    /* meta first: an existing environment without it is not a replica */
    rc = kith__mdb_dbi_open(txn, "meta", create ? MDB_CREATE : 0, &r->meta);
    if (rc == MDB_NOTFOUND) {
        rc = kith__fail(r, KITH_ECORRUPT, "%s: not a kith replica", r->path);
        goto out_abort;
    }
    if (rc != 0) {
        rc = kith__fail(r, kith__mdb_err(rc), "%s: %s", r->path, mdb_strerror(rc));
        goto out_abort;
    }
    if (meta_empty(r, txn)) {
        if (!create) {
            rc = kith__fail(r, KITH_ECORRUPT, "%s: not a kith replica (empty)", r->path);
            goto out_abort;
        }
        rc = open_dbis(r, txn, MDB_CREATE);
        if (rc == 0)
            rc = meta_create(r, txn);
    } else {
        uint32_t fmt = 0;
        MDB_dbi probe;
        /* a replica made before groups converts its trust set to a group (GRP-17), once:
         * when this open makes the database */
        int had_groups = kith__mdb_dbi_open(txn, "groups", 0, &probe);
        if (had_groups != 0 && had_groups != MDB_NOTFOUND) {
            rc = kith__fail(r, kith__mdb_err(had_groups), "%s: cannot open database groups: %s",
                            r->path, mdb_strerror(had_groups));
            goto out_abort;
        }
        rc = open_dbis(r, txn, MDB_CREATE); /* databases a later format added */
        if (rc == 0)
            rc = meta_check(r, txn, &fmt);
        if (rc == 0 && fmt == 1)
            rc = upgrade_v1(r, txn);
        if (rc == 0 && had_groups == MDB_NOTFOUND)
            rc = kith__group_upgrade(r, txn);
        /* side files of re-keys cut short before their switch committed (STO-32): no meta
         * names them, and under the writer lock no re-key is between its steps */
        if (rc == 0)
            (void)kith__key_next_sweep(r->path, r->id);
    }
    if (rc < 0)
        goto out_abort;
    rc = kith__mdb_err(kith__mdb_txn_commit(txn));
    if (rc < 0)
        return kith__fail(r, rc, "%s: cannot commit the replica's setup: %s", r->path,
                          kith_strerror(rc));
    return 0;
out_abort:
    mdb_txn_abort(txn);
    return rc;
}

/*
 * Take up a creation in r->path: the key of key.tmp when it is whole, else a new key written
 * there; a data.mdb left beside it is kept when LMDB can use it (env_setup then checks or
 * writes its meta records), and deleted when it is cut short or belongs to no whole key, since
 * a replica without its key file never held anything (the key is renamed into place last).
 * Assumes (a) there is no key file, (b) the directory holds only a creation's leftovers.
 */
static int
create_resume(kith_replica *r, bool *has_data)
{
    char why[200], *data;
    bool drop = false;
    int rc = kith__key_read(r->path, KITH__KEY_TMP, r->sk);

    if (rc < 0) {
        if (crypto_sign_keypair(r->pk, r->sk) != 0)
            return KITH_ENOMEM;
        rc = kith__key_write_tmp(r->path, r->sk);
        if (rc < 0)
            return kith__fail(r, rc, "%s/%s: %s", r->path, KITH__KEY_TMP, kith_strerror(rc));
        drop = *has_data;
    } else {
        memcpy(r->pk, r->sk + 32, KITH_PUBKEY_BYTES);
        drop = *has_data && kith__datafile_check(r->path, why, sizeof why) < 0;
    }
    r->has_sk = true;
    if (!drop)
        return 0;
    data = kith__path_join(r->path, "data.mdb");
    if (data == NULL)
        return KITH_ENOMEM;
    rc = unlink(data) == 0 || errno == ENOENT ? 0 : -errno;
    free(data);
    if (rc < 0)
        return kith__fail(r, rc, "%s/data.mdb: %s", r->path, kith_strerror(rc));
    *has_data = false;
    return 0;
}

static void
replica_free(kith_replica *r)
{
    if (r == NULL)
        return;
    if (r->env != NULL)
        mdb_env_close(r->env);
    sodium_memzero(r->sk, sizeof r->sk);
    kith__schema_release(r);
    kith__names_free(r);
    kith__group_release(r);
    pthread_rwlock_destroy(&r->resize);
    pthread_mutex_destroy(&r->wlock);
    pthread_mutex_destroy(&r->names_lock);
    pthread_mutex_destroy(&r->group_lock);
    pthread_mutex_destroy(&r->ident_lock);
    free(r->path);
    free(r);
}

/* Open with a chosen initial map size for a new replica (0: KITH__MAP_INITIAL); tests use
 * a small one to exercise growth. */
int
kith__open_sized(const char *path, unsigned flags, size_t mapsize, kith_replica **out)
{
    kith_replica *r;
    struct stat st;
    bool has_key, has_tmp, has_data, create;
    int rc;

    open_detail[0] = '\0';
    if (out == NULL)
        return KITH_EINVAL;
    *out = NULL;
    if (path == NULL || *path == '\0' ||
        (flags & ~(unsigned)(KITH_CREATE | KITH_NOSYNC | KITH_RDONLY)) != 0 ||
        ((flags & KITH_CREATE) && (flags & KITH_RDONLY)))
        return KITH_EINVAL;
    pthread_once(&sodium_once, sodium_setup);
    if (sodium_rc < 0)
        return sodium_rc;

    if (stat(path, &st) != 0) {
        if (errno != ENOENT)
            return -errno;
        if (!(flags & KITH_CREATE))
            return KITH_ENOTFOUND;
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -errno;
    } else if (!S_ISDIR(st.st_mode)) {
        return KITH_ECORRUPT;
    }

    r = calloc(1, sizeof *r);
    if (r == NULL)
        return KITH_ENOMEM;
    if (pthread_rwlock_init(&r->resize, NULL) != 0) {
        free(r);
        return KITH_ENOMEM;
    }
    if (pthread_mutex_init(&r->wlock, NULL) != 0) {
        pthread_rwlock_destroy(&r->resize);
        free(r);
        return KITH_ENOMEM;
    }
    if (pthread_mutex_init(&r->names_lock, NULL) != 0) {
        pthread_mutex_destroy(&r->wlock);
        pthread_rwlock_destroy(&r->resize);
        free(r);
        return KITH_ENOMEM;
    }
    if (pthread_mutex_init(&r->group_lock, NULL) != 0) {
        pthread_mutex_destroy(&r->names_lock);
        pthread_mutex_destroy(&r->wlock);
        pthread_rwlock_destroy(&r->resize);
        free(r);
        return KITH_ENOMEM;
    }
    if (pthread_mutex_init(&r->ident_lock, NULL) != 0) {
        pthread_mutex_destroy(&r->group_lock);
        pthread_mutex_destroy(&r->names_lock);
        pthread_mutex_destroy(&r->wlock);
        pthread_rwlock_destroy(&r->resize);
        free(r);
        return KITH_ENOMEM;
    }
    r->flags = flags;
    r->path = strdup(path);
    if (r->path == NULL) {
        rc = KITH_ENOMEM;
        goto out_free;
    }

    rc = kith__file_probe(path, KITH__KEY_FILE);
    has_key = rc > 0;
    if (rc >= 0)
        rc = kith__file_probe(path, KITH__KEY_TMP);
    has_tmp = rc > 0;
    if (rc >= 0)
        rc = kith__file_probe(path, "data.mdb");
    if (rc < 0) {
        rc = kith__fail(r, rc, "%s: %s", path, kith_strerror(rc)); /* EACCES: not "no replica" */
        goto out_free;
    }
    has_data = rc > 0;
    create = false;
    if (!has_key) {
        /* Nothing here is a replica yet: a creation writes key.tmp, then the environment and
         * its meta records, and renames key.tmp to key last. key.tmp, or data.mdb beside it,
         * is a creation that did not finish; data.mdb alone is a replica that lost its key. */
        if (has_data && !has_tmp) {
            rc = kith__fail(r, KITH_ECORRUPT, "replica is damaged: data.mdb without a key file");
            goto out_free;
        }
        if (!(flags & KITH_CREATE)) {
            rc = KITH_ENOTFOUND;
            if (has_data || has_tmp)
                kith__fail(r, rc, "%s: the replica's creation did not finish", path);
            goto out_free;
        }
        rc = kith__dir_only_ours(path, has_tmp);
        if (rc < 0) {
            rc = kith__fail(r, rc, "%s: not empty and not a kith replica", path);
            goto out_free;
        }
        rc = create_resume(r, &has_data);
        if (rc < 0)
            goto out_free;
        create = true;
    } else {
        rc = kith__key_read(path, KITH__KEY_FILE, r->sk);
        if (rc == -EACCES && (flags & KITH_RDONLY) && has_data) {
            rc = 0; /* a reader who may not see the secret key: identity from meta (env_setup) */
        } else if (rc == 0) {
            r->has_sk = true;
            memcpy(r->pk, r->sk + 32, KITH_PUBKEY_BYTES);
        }
        if (rc < 0) {
            rc = kith__fail(r, rc, "%s/key: %s", path,
                            rc == KITH_ECORRUPT ? "not a 64-byte key" : kith_strerror(rc));
            goto out_free;
        }
        if (!has_data) {
            /* a key without data: a creation by an earlier kith, which wrote the key first */
            if (!(flags & KITH_CREATE)) {
                rc = kith__fail(r, KITH_ENOTFOUND, "%s: the replica's creation did not finish",
                                path);
                goto out_free;
            }
            create = true;
        } else {
            char why[200];
            rc = kith__datafile_check(path, why, sizeof why);
            if (rc < 0) {
                rc = why[0] != '\0' ? kith__fail(r, rc, "%s", why)
                                    : kith__fail(r, rc, "%s/data.mdb: %s", path, kith_strerror(rc));
                goto out_free;
            }
        }
    }
    if (r->has_sk)
        r->id = kith__id_from_pk(r->pk);
    if (!(flags & KITH_RDONLY) && (rc = kith__lockfile_prepare(path)) < 0) {
        rc = kith__fail(r, rc, "%s/lock.mdb: %s", path, kith_strerror(rc));
        goto out_free;
    }
    rc = env_setup(r, create || (flags & KITH_CREATE), has_data, mapsize);
    if (rc < 0)
        goto out_free;
    if (!has_key && (rc = kith__key_commit(path)) < 0) {
        rc = kith__fail(r, rc, "%s/key: %s", path, kith_strerror(rc));
        goto out_free;
    }
    /* a re-key whose edits were not written again yet (a crash): finish it now; when it
     * cannot (this thread has a transaction open), the next batch or open does */
    (void)kith__rekey_resume(r);
    *out = r;
    return 0;
out_free:
    snprintf(open_detail, sizeof open_detail, "%s", kith_errmsg(r));
    replica_free(r);
    return rc;
}

int
kith_open(const char *path, unsigned flags, kith_replica **out)
{
    return kith__open_sized(path, flags, 0, out);
}

void
kith_close(kith_replica *r)
{
    replica_free(r);
}

uint64_t
kith_replica_id(const kith_replica *r)
{
    return r->id;
}

void
kith_replica_pubkey(const kith_replica *r, uint8_t out[KITH_PUBKEY_BYTES])
{
    memcpy(out, r->pk, KITH_PUBKEY_BYTES);
}

const char *
kith_replica_path(const kith_replica *r)
{
    return r->path;
}

/* ---- keys ------------------------------------------------------------------------------ */

int
kith_sign(kith_replica *r, const char context[8], const void *msg, size_t len,
          uint8_t sig[KITH_SIG_BYTES])
{
    uint8_t *buf;

    if (r == NULL || context == NULL || (msg == NULL && len > 0) || sig == NULL ||
        len > SIZE_MAX - 8)
        return KITH_EINVAL;
    if (!r->has_sk)
        return kith__fail(r, -EACCES, "%s/key: cannot be read, so nothing can be signed", r->path);
    buf = malloc(len + 8);
    if (buf == NULL)
        return KITH_ENOMEM;
    memcpy(buf, context, 8);
    if (len > 0)
        memcpy(buf + 8, msg, len);
    if (crypto_sign_detached(sig, NULL, buf, len + 8, r->sk) != 0) {
        free(buf);
        return KITH_EINVAL;
    }
    free(buf);
    return 0;
}

int
kith_curve_keys(kith_replica *r, uint8_t public_x[32], uint8_t secret_x[32])
{
    if (r == NULL || public_x == NULL || secret_x == NULL)
        return KITH_EINVAL;
    if (!r->has_sk)
        return kith__fail(r, -EACCES, "%s/key: cannot be read", r->path);
    if (crypto_sign_ed25519_pk_to_curve25519(public_x, r->pk) != 0)
        return kith__fail(r, KITH_ECORRUPT, "the public key has no X25519 form");
    if (crypto_sign_ed25519_sk_to_curve25519(secret_x, r->sk) != 0)
        return kith__fail(r, KITH_ECORRUPT, "the secret key has no X25519 form");
    return 0;
}
