/*
 * guard.c — the LMDB calls the store makes on pages it reads, run so that a damaged page
 * becomes KITH_ECORRUPT with a message naming the database instead of a dead process.
 *
 * LMDB checks some page facts with assertions (`IS_LEAF(mp)` when a cursor steps onto a
 * sibling page that was zeroed, say): it calls the environment's assert callback, prints the
 * message and calls abort(). Every environment kith opens gets `on_assert` as that callback.
 * Each wrapper below records, in a thread-local frame, the environment it calls into and a
 * sigsetjmp point; `on_assert` copies LMDB's message into the frame and siglongjmps back to
 * the wrapper, which returns MDB_CORRUPTED as if LMDB had returned it. An assertion outside
 * any wrapper (or from another environment) is left to LMDB, which aborts as before.
 *
 * What the jump leaves behind: the interrupted LMDB call does not finish, so the cursor it
 * was given is in no defined position and the transaction may hold half-made changes (a
 * write call). Callers already treat an error from these calls as the end of the
 * transaction: a read transaction is aborted (it holds only a reader slot, and LMDB takes no
 * lock during a read), a kith write transaction is marked failed and aborted, which drops
 * its dirty pages and releases the writer lock. LMDB takes no mutex during a page read, so
 * none is left held; a few bytes LMDB allocated during the call may leak. The choice and its
 * alternatives are recorded in spec/decisions.md D-8.
 *
 * MDB_CORRUPTED and MDB_PAGE_NOTFOUND returned the ordinary way get the same message, so
 * `kith_errmsg` says which database could not be read either way. And an EIO that a full disk
 * caused is given back as ENOSPC (eio_cause).
 */
#include "store.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

/* A wrapper's frame: where on_assert jumps to, and what it saw. */
struct guard {
    sigjmp_buf jb;
    /* what the wrapped call runs on: its environment is looked up only when something went
     * wrong (three calls into LMDB per cursor operation otherwise); `env` is set up front
     * only where the call may free its transaction (commit) */
    MDB_env *env;
    MDB_txn *txn;
    MDB_cursor *cur;
    struct guard *prev; /* the enclosing frame (none in practice: wrappers do not nest) */
    char msg[200];      /* LMDB's assertion text */
};

static _Thread_local struct guard *current;

static MDB_env *
guard_env(const struct guard *g)
{
    if (g->env != NULL)
        return g->env;
    return mdb_txn_env(g->txn != NULL ? g->txn : mdb_cursor_txn(g->cur));
}

void
kith__mdb_on_assert(MDB_env *env, const char *msg)
{
    struct guard *g = current;

    if (g == NULL || guard_env(g) != env)
        return; /* not ours to catch: LMDB prints and aborts */
    snprintf(g->msg, sizeof g->msg, "%s", msg);
    current = g->prev;
    siglongjmp(g->jb, 1);
}

/*
 * Put why `dbi` of `env` could not be read in the replica's error detail, when rc says it was
 * damage. Returns rc unchanged.
 */
static int
damage_note(MDB_env *env, MDB_dbi dbi, int rc, const char *assert_msg)
{
    kith_replica *r;
    const char *name;

    if (rc != MDB_CORRUPTED && rc != MDB_PAGE_NOTFOUND)
        return rc;
    r = env != NULL ? mdb_env_get_userctx(env) : NULL;
    if (r == NULL)
        return rc;
    name = kith__dbi_name(r, dbi);
    if (assert_msg[0] != '\0')
        kith__fail(r, KITH_ECORRUPT, "database %s cannot be read: a damaged page (LMDB: %s)", name,
                   assert_msg);
    else
        kith__fail(r, KITH_ECORRUPT, "database %s cannot be read: %s", name, mdb_strerror(rc));
    return rc;
}

/*
 * LMDB reports a short write (the disk filled in the middle of a page run) as EIO, not as
 * the ENOSPC that caused it. When a call that may write pages fails with EIO and the file
 * system holding data.mdb has less than KITH__EIO_FULL_BYTES left for us, the cause was the
 * full disk: say ENOSPC, so the user frees space rather than suspects the hardware.
 */
#define KITH__EIO_FULL_BYTES (1u << 20)

static int
eio_cause(MDB_env *env, int rc)
{
    struct statvfs vfs;
    mdb_filehandle_t fd;

    if (rc != EIO || env == NULL || mdb_env_get_fd(env, &fd) != 0 || fstatvfs(fd, &vfs) != 0)
        return rc;
    if ((uint64_t)vfs.f_bavail * vfs.f_frsize < KITH__EIO_FULL_BYTES)
        return ENOSPC;
    return rc;
}

/* What a failed call's code means: damage named in the replica's detail, a full disk for
 * an EIO. Off the fast path: only for the codes it changes or explains. */
static int
guard_failed(const struct guard *g, MDB_dbi dbi, int rc)
{
    MDB_env *env = guard_env(g);
    if (g->cur != NULL)
        dbi = mdb_cursor_dbi(g->cur);
    return eio_cause(env, damage_note(env, dbi, rc, g->msg));
}

/* Run `call` (an expression setting rc) guarded, on the environment of txn_ or of cursor
 * cur_ (env_ when the call may free the transaction); `g`, `rc` declared by the caller. */
#define GUARDED(env_, txn_, cur_, dbi_, call_)                                                     \
    do {                                                                                           \
        g.env = (env_);                                                                            \
        g.txn = (txn_);                                                                            \
        g.cur = (cur_);                                                                            \
        g.prev = current;                                                                          \
        g.msg[0] = '\0';                                                                           \
        if (sigsetjmp(g.jb, 0) == 0) {                                                             \
            current = &g;                                                                          \
            rc = (call_);                                                                          \
            current = g.prev;                                                                      \
        } else {                                                                                   \
            rc = MDB_CORRUPTED;                                                                    \
        }                                                                                          \
        if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == EIO)                           \
            rc = guard_failed(&g, (dbi_), rc);                                                     \
    } while (0)

int
kith__mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
    struct guard g;
    int rc;

    GUARDED(NULL, txn, NULL, dbi, mdb_get(txn, dbi, key, data));
    return rc;
}

int
kith__mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags)
{
    struct guard g;
    int rc;

    GUARDED(NULL, txn, NULL, dbi, mdb_put(txn, dbi, key, data, flags));
    return rc;
}

int
kith__mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data)
{
    struct guard g;
    int rc;

    GUARDED(NULL, txn, NULL, dbi, mdb_del(txn, dbi, key, data));
    return rc;
}

int
kith__mdb_cursor_get(MDB_cursor *c, MDB_val *key, MDB_val *data, MDB_cursor_op op)
{
    struct guard g;
    int rc;

    GUARDED(NULL, NULL, c, 0, mdb_cursor_get(c, key, data, op));
    return rc;
}

int
kith__mdb_cursor_put(MDB_cursor *c, MDB_val *key, MDB_val *data, unsigned flags)
{
    struct guard g;
    int rc;

    GUARDED(NULL, NULL, c, 0, mdb_cursor_put(c, key, data, flags));
    return rc;
}

int
kith__mdb_cursor_del(MDB_cursor *c, unsigned flags)
{
    struct guard g;
    int rc;

    GUARDED(NULL, NULL, c, 0, mdb_cursor_del(c, flags));
    return rc;
}

int
kith__mdb_cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **out)
{
    struct guard g;
    int rc;

    *out = NULL;
    GUARDED(NULL, txn, NULL, dbi, mdb_cursor_open(txn, dbi, out));
    return rc;
}

int
kith__mdb_stat(MDB_txn *txn, MDB_dbi dbi, MDB_stat *out)
{
    struct guard g;
    int rc;

    GUARDED(NULL, txn, NULL, dbi, mdb_stat(txn, dbi, out));
    return rc;
}

int
kith__mdb_dbi_open(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *out)
{
    struct guard g;
    int rc;

    GUARDED(NULL, txn, NULL, KITH__DBI_MAIN, mdb_dbi_open(txn, name, flags, out));
    return rc;
}

int
kith__mdb_txn_commit(MDB_txn *txn)
{
    struct guard g;
    MDB_env *env = mdb_txn_env(txn);
    int rc;

    GUARDED(env, NULL, NULL, KITH__DBI_FREE, mdb_txn_commit(txn));
    if (g.msg[0] != '\0')
        mdb_txn_abort(txn); /* the commit stopped before freeing it; its pages are dropped */
    return rc;
}
