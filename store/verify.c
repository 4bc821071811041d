/*
 * verify.c — `kith verify`: re-check a replica against its own log without trusting any
 * derived record. Two passes, both read-only on the replica:
 *
 *  1. The log. Every origin's commits are walked in seq order: keys contiguous from seq 1,
 *     each commit decodes, its chain hash recomputed from the previous one equals the stored
 *     one, the origins record's `have` and head match the last commit, `applied` falls on a
 *     commit end, every stored signature sits on a commit end and verifies against the
 *     origin's key, applied commits are in the apply order and pending ones are not, and the
 *     meta "pending" counter is the sum of what waits.
 *
 *  2. The state. Every applied commit is applied again, in apply order and through the one
 *     apply path (store/apply.c), into a scratch LMDB environment in a temporary directory
 *     that is removed afterwards; the scratch registers, elements, membership and indexes are
 *     then compared entry by entry with the replica's. Any difference is a register changed
 *     behind kith's back, a lost or stray index entry, or a damaged record. Conflict records
 *     are local history, not state, and are not compared. The tombstones of void dots
 *     (spec/data-model.md FORK-18) are state: the rebuild keeps them as the replica's
 *     applier did (the same commits in the same order make the same ones), and the voids
 *     database is compared too.
 *
 * Progress (spec/decisions.md D-11) counts the ops of both passes: the log's ops checked, then
 * the applied ops applied again; the total is what the origins records say of both.
 *
 * The scratch environment costs disk about the size of the state; an in-memory model could
 * avoid that, but re-applying through store/apply.c checks the stored bytes against exactly
 * what kith writes, keys and encodings included, which a second model of the rules could not.
 */
#include "store.h"
#include "view.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Commits re-applied per scratch write transaction (bounds LMDB's dirty page list). */
#define VERIFY_CHUNK 2048
#define VERIFY_SCRATCH_MIN_MAP (1ull << 30)

struct verify {
    kith_replica *r;
    MDB_txn *txn; /* the replica's read transaction */
    kith_verify_report *rep;
    struct kith__arena arena;
    struct kith__progress *pg; /* NULL: nobody listens */
    uint64_t pg_done;          /* ops checked in pass 1 plus ops applied again in pass 2 */
    uint64_t pg_commits;       /* commits of both passes, for reporting every so many */
};

/* Count a commit of `nops` ops as handled; report every KITH__PROGRESS_EVERY commits. */
static int
verify_step(struct verify *v, uint32_t nops)
{
    v->pg_done += nops;
    if (v->pg == NULL || (++v->pg_commits & (KITH__PROGRESS_EVERY - 1)) != 0)
        return 0;
    return kith__progress_report(v->pg, v->pg_done, 0);
}

/* What the two passes will go over, as the origins records say: every op logged and every
 * op applied. A damaged record makes it wrong, never the check: the end report corrects it. */
static int
verify_total(struct verify *v, uint64_t *total)
{
    MDB_cursor *cur;
    MDB_val k, val;
    int rc, mrc;

    *total = 0;
    rc = kith__mdb_err(kith__mdb_cursor_open(v->txn, v->r->origins, &cur));
    if (rc < 0)
        return rc;
    for (mrc = kith__mdb_cursor_get(cur, &k, &val, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &val, MDB_NEXT))
        if (val.mv_size == KITH__ORIGIN_VAL_BYTES)
            *total +=
                kith__be64_get((const uint8_t *)val.mv_data + 8) + kith__be64_get(val.mv_data);
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? 0 : kith__mdb_err(mrc);
}

static void problem(struct verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
problem(struct verify *v, const char *fmt, ...)
{
    va_list ap;

    if (v->rep->problems++ == 0) {
        va_start(ap, fmt);
        vsnprintf(v->rep->first_problem, sizeof(v->rep->first_problem), fmt, ap);
        va_end(ap);
    }
}

static uint32_t
be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Up to 24 bytes of a key in hex, for messages. */
static void
key_hex(const MDB_val *k, char out[64])
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = k->mv_data;
    size_t n = k->mv_size < 24 ? k->mv_size : 24, j = 0;

    for (size_t i = 0; i < n; i++) {
        out[j++] = digits[p[i] >> 4];
        out[j++] = digits[p[i] & 15];
    }
    if (n < k->mv_size) {
        out[j++] = '.';
        out[j++] = '.';
    }
    out[j] = '\0';
}

/* ---- pass 1: the log ------------------------------------------------------------------ */

/* What the walk of one origin's log found. */
struct origin_walk {
    uint64_t origin;
    uint64_t next_seq;             /* the seq the next commit must start at */
    uint8_t head[KITH_HASH_BYTES]; /* recomputed chain hash after the last commit */
    bool applied_on_boundary;      /* some commit ends at the origins record's applied */
    struct kith__origin_state st;
    bool have_key;
    uint8_t pk[KITH_PUBKEY_BYTES];
};

static int
walk_start(struct verify *v, struct origin_walk *w, uint64_t origin)
{
    int rc;

    memset(w, 0, sizeof(*w));
    w->origin = origin;
    w->next_seq = 1;
    rc = kith__origin_get(v->r, v->txn, origin, &w->st);
    if (rc < 0)
        return rc;
    w->applied_on_boundary = w->st.applied == 0;
    rc = kith__peer_key(v->r, v->txn, origin, w->pk);
    if (rc == 0)
        w->have_key = true;
    else if (rc != KITH_ENOTFOUND)
        return rc;
    return 0;
}

static void
walk_finish(struct verify *v, const struct origin_walk *w)
{
    uint64_t last = w->next_seq - 1;

    if (w->st.have != last)
        problem(v, "origin %016llx: origins record says %llu ops logged, the log holds %llu",
                (unsigned long long)w->origin, (unsigned long long)w->st.have,
                (unsigned long long)last);
    else if (memcmp(w->st.head, w->head, KITH_HASH_BYTES) != 0)
        problem(v, "origin %016llx: chain head in the origins record is not the log's",
                (unsigned long long)w->origin);
    if (w->st.applied > w->st.have || !w->applied_on_boundary)
        problem(v, "origin %016llx: applied seq %llu is not the end of a logged commit",
                (unsigned long long)w->origin, (unsigned long long)w->st.applied);
}

/* Check the apply-order entry of a logged commit. */
static int
check_order(struct verify *v, uint64_t origin, uint64_t first, uint64_t last, uint64_t order,
            uint64_t applied, uint64_t *napplied)
{
    uint8_t key[8];
    MDB_val k = {8, key}, val;
    int mrc;

    if (last > applied) {
        if (order != 0)
            problem(v, "commit %016llx:%llu is pending but has apply order %llu",
                    (unsigned long long)origin, (unsigned long long)first,
                    (unsigned long long)order);
        return 0;
    }
    (*napplied)++;
    if (order == 0) {
        problem(v, "commit %016llx:%llu is applied but has no apply order",
                (unsigned long long)origin, (unsigned long long)first);
        return 0;
    }
    kith__be64_put(key, order);
    mrc = kith__mdb_get(v->txn, v->r->order, &k, &val);
    if (mrc != 0 && mrc != MDB_NOTFOUND)
        return kith__mdb_err(mrc);
    if (mrc == MDB_NOTFOUND || val.mv_size != 16 || kith__be64_get(val.mv_data) != origin ||
        kith__be64_get((const uint8_t *)val.mv_data + 8) != first)
        problem(v, "apply order %llu does not name commit %016llx:%llu", (unsigned long long)order,
                (unsigned long long)origin, (unsigned long long)first);
    return 0;
}

/* Check one logged commit (key k, value val) of the origin being walked. */
static int
check_commit(struct verify *v, struct origin_walk *w, const MDB_val *k, const MDB_val *val,
             uint64_t *napplied)
{
    const uint8_t *p = val->mv_data;
    uint64_t first = kith__be64_get((const uint8_t *)k->mv_data + 8), last, order;
    struct kith__commit c;
    uint8_t skey[16];
    MDB_val sk = {16, skey}, sv;
    char why[128] = "";
    uint32_t nops;
    int rc, mrc;

    if (val->mv_size < KITH__LOG_HDR_BYTES) {
        problem(v, "commit %016llx:%llu: log record of %zu bytes", (unsigned long long)w->origin,
                (unsigned long long)first, val->mv_size);
        return 1; /* cannot go on with this origin */
    }
    if (first != w->next_seq) {
        problem(v, "origin %016llx: log jumps from seq %llu to %llu", (unsigned long long)w->origin,
                (unsigned long long)(w->next_seq - 1), (unsigned long long)first);
        return 1;
    }
    nops = be32(p);
    order = kith__be64_get(p + 4 + KITH_HASH_BYTES);
    last = first + nops - 1;
    v->rep->commits_checked++;
    v->rep->ops_checked += nops;
    kith__arena_reset(&v->arena);
    rc = kith__commit_decode(p + KITH__LOG_HDR_BYTES, val->mv_size - KITH__LOG_HDR_BYTES, w->origin,
                             first, &c, &v->arena, why, sizeof(why));
    if (rc == KITH_ENOMEM)
        return rc;
    if (rc < 0)
        problem(v, "commit %016llx:%llu does not decode: %s", (unsigned long long)w->origin,
                (unsigned long long)first, why);
    else if (c.nops != nops)
        problem(v, "commit %016llx:%llu holds %u ops, its record says %u",
                (unsigned long long)w->origin, (unsigned long long)first, c.nops, nops);
    if (nops == 0)
        return 1;
    kith__chain_next(w->head, p + KITH__LOG_HDR_BYTES, val->mv_size - KITH__LOG_HDR_BYTES, w->head);
    if (memcmp(w->head, p + 4, KITH_HASH_BYTES) != 0)
        problem(v, "commit %016llx:%llu: stored chain hash is not the recomputed one",
                (unsigned long long)w->origin, (unsigned long long)first);
    kith__be64_put(skey, w->origin);
    kith__be64_put(skey + 8, last);
    mrc = kith__mdb_get(v->txn, v->r->sigs, &sk, &sv);
    if (mrc == 0) {
        v->rep->signatures_checked++;
        if (sv.mv_size != KITH_SIG_BYTES)
            problem(v, "signature of %016llx:%llu has %zu bytes", (unsigned long long)w->origin,
                    (unsigned long long)last, sv.mv_size);
        else if (!w->have_key)
            problem(v, "origin %016llx: no key to check its signatures",
                    (unsigned long long)w->origin);
        else if (kith__head_verify(w->pk, w->origin, last, w->head, sv.mv_data) < 0)
            problem(v, "signature of %016llx:%llu does not verify", (unsigned long long)w->origin,
                    (unsigned long long)last);
    } else if (mrc != MDB_NOTFOUND) {
        return kith__mdb_err(mrc);
    }
    if (last == w->st.applied)
        w->applied_on_boundary = true;
    w->next_seq = last + 1;
    rc = check_order(v, w->origin, first, last, order, w->st.applied, napplied);
    if (rc == 0)
        rc = verify_step(v, nops);
    return rc < 0 ? rc : 0;
}

/* Every signature must sit on the last seq of a logged commit. */
static int
check_sig_places(struct verify *v, uint64_t nsigs_on_commits)
{
    MDB_stat st;
    MDB_cursor *sigs, *log;
    MDB_val k, val;
    int rc, mrc;

    rc = kith__mdb_err(kith__mdb_stat(v->txn, v->r->sigs, &st));
    if (rc < 0 || st.ms_entries == nsigs_on_commits)
        return rc;
    rc = kith__mdb_err(kith__mdb_cursor_open(v->txn, v->r->sigs, &sigs));
    if (rc < 0)
        return rc;
    rc = kith__mdb_err(kith__mdb_cursor_open(v->txn, v->r->log, &log));
    if (rc < 0)
        goto out_sigs;
    for (mrc = kith__mdb_cursor_get(sigs, &k, &val, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(sigs, &k, &val, MDB_NEXT)) {
        uint8_t key[16];
        MDB_val lk = {16, key}, lv;
        uint64_t origin, seq;
        bool ok = false;
        int lrc;

        if (k.mv_size != 16) {
            problem(v, "signature key of %zu bytes", k.mv_size);
            continue;
        }
        origin = kith__be64_get(k.mv_data);
        seq = kith__be64_get((const uint8_t *)k.mv_data + 8);
        kith__be64_put(key, origin);
        kith__be64_put(key + 8, seq + 1);
        lrc = kith__mdb_cursor_get(log, &lk, &lv, MDB_SET_RANGE);
        lrc = lrc == 0 ? kith__mdb_cursor_get(log, &lk, &lv, MDB_PREV)
                       : kith__mdb_cursor_get(log, &lk, &lv, MDB_LAST);
        if (lrc == 0 && lk.mv_size == 16 && lv.mv_size >= 4 &&
            kith__be64_get(lk.mv_data) == origin) {
            uint64_t first = kith__be64_get((const uint8_t *)lk.mv_data + 8);

            ok = first + be32(lv.mv_data) - 1 == seq;
        } else if (lrc != 0 && lrc != MDB_NOTFOUND) {
            rc = kith__mdb_err(lrc);
            goto out_log;
        }
        if (!ok)
            problem(v, "signature of %016llx:%llu is not on the end of a logged commit",
                    (unsigned long long)origin, (unsigned long long)seq);
    }
    rc = mrc == MDB_NOTFOUND ? 0 : kith__mdb_err(mrc);
out_log:
    mdb_cursor_close(log);
out_sigs:
    mdb_cursor_close(sigs);
    return rc;
}

/* Origins records with no log at all must claim nothing: all zeros. */
static int
check_unlogged_origins(struct verify *v)
{
    static const uint8_t zero[KITH__ORIGIN_VAL_BYTES];
    MDB_cursor *cur, *log;
    MDB_val k, val;
    int rc, mrc;

    rc = kith__mdb_err(kith__mdb_cursor_open(v->txn, v->r->origins, &cur));
    if (rc < 0)
        return rc;
    rc = kith__mdb_err(kith__mdb_cursor_open(v->txn, v->r->log, &log));
    if (rc < 0)
        goto out_cur;
    for (mrc = kith__mdb_cursor_get(cur, &k, &val, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        MDB_val lk = k, lv;
        int lrc;

        if (k.mv_size != 8 || val.mv_size != KITH__ORIGIN_VAL_BYTES) {
            problem(v, "origins record of %zu bytes", val.mv_size);
            continue;
        }
        lrc = kith__mdb_cursor_get(log, &lk, &lv, MDB_SET_RANGE);
        if (lrc != 0 && lrc != MDB_NOTFOUND) {
            rc = kith__mdb_err(lrc);
            goto out_log;
        }
        if ((lrc == MDB_NOTFOUND || memcmp(lk.mv_data, k.mv_data, 8) != 0) &&
            memcmp(val.mv_data, zero, KITH__ORIGIN_VAL_BYTES) != 0)
            problem(v, "origin %016llx: origins record claims ops the log lacks",
                    (unsigned long long)kith__be64_get(k.mv_data));
    }
    rc = mrc == MDB_NOTFOUND ? 0 : kith__mdb_err(mrc);
out_log:
    mdb_cursor_close(log);
out_cur:
    mdb_cursor_close(cur);
    return rc;
}

static int
verify_log(struct verify *v)
{
    struct origin_walk w;
    uint64_t napplied = 0, pending = 0, pending_meta, nsigs_before;
    bool walking = false, skip = false;
    MDB_cursor *cur;
    MDB_stat st;
    MDB_val k, val;
    int rc, mrc;

    rc = kith__mdb_err(kith__mdb_cursor_open(v->txn, v->r->log, &cur));
    if (rc < 0)
        return rc;
    nsigs_before = v->rep->signatures_checked;
    for (mrc = kith__mdb_cursor_get(cur, &k, &val, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        uint64_t origin;

        if (k.mv_size != 16) {
            problem(v, "log key of %zu bytes", k.mv_size);
            continue;
        }
        origin = kith__be64_get(k.mv_data);
        if (!walking || origin != w.origin) {
            if (walking) {
                walk_finish(v, &w);
                pending += w.st.have - (w.st.applied < w.st.have ? w.st.applied : w.st.have);
            }
            rc = walk_start(v, &w, origin);
            if (rc < 0)
                goto out_cursor;
            walking = true;
            skip = false;
        }
        if (skip)
            continue;
        rc = check_commit(v, &w, &k, &val, &napplied);
        if (rc < 0)
            goto out_cursor;
        skip = rc > 0; /* a broken sequence: the rest of this origin would only echo it */
    }
    if (mrc != MDB_NOTFOUND) {
        rc = kith__mdb_err(mrc);
        goto out_cursor;
    }
    if (walking) {
        walk_finish(v, &w);
        pending += w.st.have - (w.st.applied < w.st.have ? w.st.applied : w.st.have);
    }
    rc = kith__meta_get_u64(v->r, v->txn, "pending", &pending_meta);
    if (rc == KITH_ENOTFOUND) {
        pending_meta = 0;
        rc = 0;
    }
    if (rc < 0)
        goto out_cursor;
    if (pending_meta != pending)
        problem(v, "meta says %llu ops pending, the origins records %llu",
                (unsigned long long)pending_meta, (unsigned long long)pending);
    rc = kith__mdb_err(kith__mdb_stat(v->txn, v->r->order, &st));
    if (rc < 0)
        goto out_cursor;
    if (st.ms_entries != napplied)
        problem(v, "apply order holds %zu commits, %llu are applied", (size_t)st.ms_entries,
                (unsigned long long)napplied);
    rc = check_sig_places(v, v->rep->signatures_checked - nsigs_before);
    if (rc == 0)
        rc = check_unlogged_origins(v);
out_cursor:
    mdb_cursor_close(cur);
    return rc;
}

/* ---- pass 2: the state, rebuilt in a scratch environment ------------------------------- */

struct scratch {
    char dir[PATH_MAX];
    kith_replica s; /* only env and the dbis are real; enough for store/apply.c */
    bool env_open, locks_init;
};

static const char *const STATE_DBS[] = {"meta",  "origins", "regs",   "elems", "docs", "conflicts",
                                        "index", "names",   "counts", "flags", "voids"};

static MDB_dbi *
scratch_dbi(kith_replica *s, size_t i)
{
    MDB_dbi *dbis[] = {&s->meta,  &s->origins, &s->regs,   &s->elems,  &s->docs, &s->conflicts,
                       &s->index, &s->names,   &s->counts, &s->flagdb, &s->voids};

    return dbis[i];
}

/* Give the scratch state the replica's local numbers and declared schema, so that its keys
 * and indexes are the replica's: the names database and the schema's meta records are
 * copied (a format-1 replica read before its upgrade gets what the upgrade would write). */
static int
scratch_names(struct verify *v, kith_replica *s, MDB_txn *stxn)
{
    static const char *const keys[] = {"schema.json", "schema_v", "schema"};
    MDB_cursor *c;
    MDB_val k, val;
    int rc, mrc;

    if (v->r->names == KITH__DBI_FREE)
        return kith__schema_upgrade_v1(s, stxn);
    rc = kith__mdb_err(kith__mdb_cursor_open(v->txn, v->r->names, &c));
    if (rc < 0)
        return rc;
    for (mrc = kith__mdb_cursor_get(c, &k, &val, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(c, &k, &val, MDB_NEXT))
        if ((mrc = kith__mdb_put(stxn, s->names, &k, &val, MDB_APPEND)) != 0)
            break;
    mdb_cursor_close(c);
    if (mrc != MDB_NOTFOUND)
        return kith__mdb_err(mrc);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        rc = kith__meta_get(v->r, v->txn, keys[i], &val);
        if (rc == KITH_ENOTFOUND)
            continue;
        if (rc < 0 || (rc = kith__meta_put(s, stxn, keys[i], val.mv_data, val.mv_size)) < 0)
            return rc;
    }
    return 0;
}

static void
scratch_close(struct scratch *sc)
{
    char path[PATH_MAX + 16];

    kith__schema_release(&sc->s);
    kith__names_free(&sc->s);
    if (sc->env_open)
        mdb_env_close(sc->s.env);
    if (sc->locks_init) {
        pthread_rwlock_destroy(&sc->s.resize);
        pthread_mutex_destroy(&sc->s.names_lock);
    }
    if (sc->dir[0]) {
        snprintf(path, sizeof(path), "%s/data.mdb", sc->dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/lock.mdb", sc->dir);
        unlink(path);
        rmdir(sc->dir);
    }
}

static int
scratch_open(struct verify *v, struct scratch *sc)
{
    const char *tmp = getenv("TMPDIR");
    MDB_envinfo info;
    MDB_txn *txn;
    size_t mapsize;
    int rc;

    memset(sc, 0, sizeof(*sc));
    if (!tmp || !*tmp || strlen(tmp) > sizeof(sc->dir) - 32)
        tmp = "/tmp";
    snprintf(sc->dir, sizeof(sc->dir), "%s/kith-verify-XXXXXX", tmp);
    if (!mkdtemp(sc->dir)) {
        sc->dir[0] = '\0';
        return kith__fail(v->r, -errno, "cannot make a scratch directory for verify");
    }
    if (pthread_rwlock_init(&sc->s.resize, NULL) != 0)
        return KITH_ENOMEM;
    if (pthread_mutex_init(&sc->s.names_lock, NULL) != 0) {
        pthread_rwlock_destroy(&sc->s.resize);
        return KITH_ENOMEM;
    }
    sc->locks_init = true;
    sc->s.id = v->r->id;
    memcpy(sc->s.pk, v->r->pk, KITH_PUBKEY_BYTES);
    sc->s.flags = KITH_NOSYNC;
    sc->s.path = sc->dir;
    rc = kith__mdb_err(mdb_env_info(v->r->env, &info));
    if (rc < 0)
        return rc;
    /* The state is a part of the replica: twice the replica's map always holds it. */
    mapsize = info.me_mapsize * 2;
    if (mapsize < VERIFY_SCRATCH_MIN_MAP)
        mapsize = VERIFY_SCRATCH_MIN_MAP;
    rc = kith__mdb_err(mdb_env_create(&sc->s.env));
    if (rc < 0)
        return rc;
    sc->env_open = true;
    if ((rc = mdb_env_set_maxdbs(sc->s.env, 16)) != 0 ||
        (rc = mdb_env_set_mapsize(sc->s.env, mapsize)) != 0 ||
        (rc = mdb_env_open(sc->s.env, sc->dir, MDB_NOSYNC | MDB_NOMETASYNC | MDB_NOLOCK, 0600)) !=
            0)
        return kith__fail(v->r, kith__mdb_err(rc), "verify scratch: %s", mdb_strerror(rc));
    rc = kith__mdb_err(mdb_txn_begin(sc->s.env, NULL, 0, &txn));
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < sizeof(STATE_DBS) / sizeof(STATE_DBS[0]); i++) {
        rc = kith__mdb_err(
            kith__mdb_dbi_open(txn, STATE_DBS[i], MDB_CREATE, scratch_dbi(&sc->s, i)));
        if (rc < 0) {
            mdb_txn_abort(txn);
            return rc;
        }
    }
    if ((rc = scratch_names(v, &sc->s, txn)) < 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    return kith__mdb_err(kith__mdb_txn_commit(txn));
}

/*
 * Re-apply every applied commit of the replica, in apply order, into the scratch state.
 * Returns 0 (problems counted in the report: the rebuild stops at the first commit it cannot
 * apply, and *complete says whether it got to the end), or an error.
 */
static int
rebuild(struct verify *v, struct scratch *sc, bool *complete)
{
    struct kith__applier ap;
    bool ap_open = false;
    MDB_cursor *cur;
    MDB_txn *stxn = NULL;
    MDB_val k, val;
    size_t in_txn = 0;
    int rc, mrc;

    *complete = false;
    rc = kith__mdb_err(kith__mdb_cursor_open(v->txn, v->r->order, &cur));
    if (rc < 0)
        return rc;
    for (mrc = kith__mdb_cursor_get(cur, &k, &val, MDB_FIRST); mrc == 0;
         mrc = kith__mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
        struct kith__commit c;
        struct kith__origin_slot *slot;
        MDB_val lk = val, lv;
        char why[128] = "";
        int lrc;

        if (val.mv_size != 16) {
            problem(v, "apply order record of %zu bytes", val.mv_size);
            goto out_stop;
        }
        lrc = kith__mdb_get(v->txn, v->r->log, &lk, &lv);
        if (lrc != 0 || lv.mv_size < KITH__LOG_HDR_BYTES) {
            if (lrc != 0 && lrc != MDB_NOTFOUND) {
                rc = kith__mdb_err(lrc);
                goto out_txn;
            }
            problem(v, "apply order names commit %016llx:%llu, which is not logged",
                    (unsigned long long)kith__be64_get(val.mv_data),
                    (unsigned long long)kith__be64_get((const uint8_t *)val.mv_data + 8));
            goto out_stop;
        }
        kith__arena_reset(&v->arena);
        rc = kith__commit_decode((const uint8_t *)lv.mv_data + KITH__LOG_HDR_BYTES,
                                 lv.mv_size - KITH__LOG_HDR_BYTES, kith__be64_get(val.mv_data),
                                 kith__be64_get((const uint8_t *)val.mv_data + 8), &c, &v->arena,
                                 why, sizeof(why));
        if (rc == KITH_ENOMEM)
            goto out_txn;
        if (rc < 0)
            goto out_stop; /* pass 1 reported it */
        if (!stxn) {
            rc = kith__mdb_err(mdb_txn_begin(sc->s.env, NULL, 0, &stxn));
            if (rc < 0)
                goto out_txn;
            rc = kith__apply_begin(&ap, &sc->s, stxn, NULL);
            if (rc < 0)
                goto out_txn;
            ap_open = true;
            /* tombstones of void dots as the replica keeps them (FORK-18): a replica that
             * settled no fork never applies a commit before a dot it observed, so none */
            if (v->r->voids != KITH__DBI_FREE && (rc = kith__apply_voids(&ap)) < 0)
                goto out_txn;
        }
        rc = kith__apply_commit(&ap, &c);
        if (rc == 0) {
            slot = kith__apply_origin(&ap, c.origin, &rc);
            if (slot) {
                slot->st.applied = c.first_seq + c.nops - 1;
                slot->dirty = true;
            }
        }
        if (rc < 0) {
            if (rc == KITH_ENOMEM || rc == MDB_MAP_FULL || rc > -9000) /* not the log's fault */
                goto out_txn;
            problem(v, "commit %016llx:%llu cannot be applied again: %s (%s)",
                    (unsigned long long)c.origin, (unsigned long long)c.first_seq,
                    kith_strerror(rc), kith_errmsg(&sc->s));
            goto out_stop;
        }
        if ((rc = verify_step(v, c.nops)) < 0)
            goto out_txn;
        if (++in_txn == VERIFY_CHUNK) {
            rc = kith__apply_finish(&ap);
            kith__apply_end(&ap);
            ap_open = false;
            if (rc == 0)
                rc = kith__mdb_err(kith__mdb_txn_commit(stxn));
            else
                mdb_txn_abort(stxn);
            stxn = NULL;
            in_txn = 0;
            if (rc < 0)
                goto out_txn;
        }
    }
    if (mrc != MDB_NOTFOUND) {
        rc = kith__mdb_err(mrc);
        goto out_txn;
    }
    if (stxn) {
        rc = kith__apply_finish(&ap);
        kith__apply_end(&ap);
        ap_open = false;
        if (rc == 0)
            rc = kith__mdb_err(kith__mdb_txn_commit(stxn));
        else
            mdb_txn_abort(stxn);
        stxn = NULL;
        if (rc < 0)
            goto out_txn;
    }
    *complete = true;
out_stop:
    rc = 0;
out_txn:
    if (ap_open)
        kith__apply_end(&ap);
    if (stxn)
        mdb_txn_abort(stxn);
    mdb_cursor_close(cur);
    return rc;
}

/* Compare one database of the replica with the scratch one, entry by entry. */
static int
compare_db(struct verify *v, MDB_txn *stxn, MDB_dbi real, MDB_dbi scratch, const char *what)
{
    MDB_cursor *a, *b;
    MDB_val ka, va, kb, vb;
    char hex[64];
    int rc, ra, rb;

    rc = kith__mdb_err(kith__mdb_cursor_open(v->txn, real, &a));
    if (rc < 0)
        return rc;
    rc = kith__mdb_err(kith__mdb_cursor_open(stxn, scratch, &b));
    if (rc < 0)
        goto out_a;
    ra = kith__mdb_cursor_get(a, &ka, &va, MDB_FIRST);
    rb = kith__mdb_cursor_get(b, &kb, &vb, MDB_FIRST);
    /* both walks go on while neither failed; a failed real walk is a damaged database */
    while ((ra == 0 || rb == 0) && (ra == 0 || ra == MDB_NOTFOUND) &&
           (rb == 0 || rb == MDB_NOTFOUND)) {
        int c;

        if (ra == 0 && rb == 0) {
            size_t n = ka.mv_size < kb.mv_size ? ka.mv_size : kb.mv_size;

            c = memcmp(ka.mv_data, kb.mv_data, n);
            if (c == 0)
                c = ka.mv_size < kb.mv_size ? -1 : ka.mv_size > kb.mv_size;
        } else {
            c = ra == 0 ? -1 : 1;
        }
        if (c == 0) {
            if (va.mv_size != vb.mv_size || memcmp(va.mv_data, vb.mv_data, va.mv_size) != 0) {
                key_hex(&ka, hex);
                problem(v, "%s entry %s differs from what the log gives", what, hex);
            }
            ra = kith__mdb_cursor_get(a, &ka, &va, MDB_NEXT);
            rb = kith__mdb_cursor_get(b, &kb, &vb, MDB_NEXT);
        } else if (c < 0) {
            key_hex(&ka, hex);
            problem(v, "%s entry %s is not what the log gives", what, hex);
            ra = kith__mdb_cursor_get(a, &ka, &va, MDB_NEXT);
        } else {
            key_hex(&kb, hex);
            problem(v, "%s entry %s is missing", what, hex);
            rb = kith__mdb_cursor_get(b, &kb, &vb, MDB_NEXT);
        }
    }
    if (ra == MDB_CORRUPTED || ra == MDB_PAGE_NOTFOUND) {
        problem(v, "%s", kith_errmsg(v->r)); /* names the database; go on with the others */
        rc = 0;
    } else if (ra != MDB_NOTFOUND && ra != 0)
        rc = kith__mdb_err(ra);
    else if (rb != MDB_NOTFOUND && rb != 0)
        rc = kith__mdb_err(rb);
    else
        rc = 0;
    mdb_cursor_close(b);
out_a:
    mdb_cursor_close(a);
    return rc;
}

static int
verify_state(struct verify *v)
{
    struct scratch sc;
    MDB_txn *stxn;
    bool complete;
    int rc;

    rc = scratch_open(v, &sc);
    if (rc < 0)
        goto out_scratch;
    rc = rebuild(v, &sc, &complete);
    if (rc < 0 || !complete)
        goto out_scratch;
    rc = kith__mdb_err(mdb_txn_begin(sc.s.env, NULL, MDB_RDONLY, &stxn));
    if (rc < 0)
        goto out_scratch;
    if ((rc = compare_db(v, stxn, v->r->regs, sc.s.regs, "register")) == 0 &&
        (rc = compare_db(v, stxn, v->r->elems, sc.s.elems, "set element")) == 0 &&
        (rc = compare_db(v, stxn, v->r->docs, sc.s.docs, "membership")) == 0 &&
        (v->r->counts == KITH__DBI_FREE ||
         ((rc = compare_db(v, stxn, v->r->counts, sc.s.counts, "counter")) == 0 &&
          (rc = compare_db(v, stxn, v->r->flagdb, sc.s.flagdb, "flag")) == 0)) &&
        (v->r->voids == KITH__DBI_FREE ||
         (rc = compare_db(v, stxn, v->r->voids, sc.s.voids, "void dot tombstone")) == 0))
        rc = compare_db(v, stxn, v->r->index, sc.s.index, "index");
    mdb_txn_abort(stxn);
out_scratch:
    scratch_close(&sc);
    return rc;
}

int
kith_verify(kith_replica *r, kith_verify_report *report)
{
    struct verify v = {0};
    struct kith__progress pg;
    uint64_t total = 0;
    int rc;

    if (!r || !report)
        return KITH_EINVAL;
    memset(report, 0, sizeof(*report));
    v.r = r;
    v.rep = report;
    kith__progress_init(&pg, r, KITH_PROGRESS_VERIFY);
    v.pg = kith__progress_live(&pg);
    rc = kith__view_begin(r, &v.txn);
    if (rc < 0)
        return rc;
    if (v.pg != NULL && (rc = verify_total(&v, &total)) == 0)
        rc = kith__progress_report(v.pg, 0, total);
    if (rc == 0)
        rc = verify_log(&v);
    if (rc == 0)
        rc = verify_state(&v);
    if (rc == KITH_ECORRUPT) {
        /* a page that cannot be read (its detail names the database) is a finding, not a
         * reason to give up without a report */
        const char *why = kith_errmsg(r);
        problem(&v, "%s", why[0] != '\0' ? why : kith_strerror(rc));
        rc = 0;
    }
    kith__view_end(r, v.txn);
    kith__arena_free(&v.arena);
    if (rc == 0)
        rc = kith__progress_end(v.pg, v.pg_done); /* outside the read transaction */
    if (rc == KITH_ECANCELED)
        memset(report, 0, sizeof(*report)); /* nothing was concluded */
    return rc;
}
