/*
 * store.h — the replica in LMDB: the handles behind kith_replica and kith_txn, the named
 * databases and the byte layout of every key and value in them (spec/storage.md says the
 * same in prose). Keys are big-endian so that LMDB's order is the natural one: an origin's
 * log in seq order, the apply order by counter, a document's fields together.
 *
 * One environment, opened with MDB_NOTLS (read transactions are not tied to threads) and
 * never MDB_WRITEMAP (a full disk would kill the process with SIGBUS). The map starts at
 * 64 MiB and doubles when a transaction meets MDB_MAP_FULL: the transaction is aborted, the
 * map grown under the replica's resize lock (no transaction of this process may be open
 * then), and the work redone. Another process that grew the map shows up as MDB_MAP_RESIZED
 * at txn begin, answered by mdb_env_set_mapsize(env, 0).
 *
 * Named databases (all plain keys; none uses MDB_DUPSORT):
 *
 *  meta       text key -> value
 *             "format"   u32 BE   layout version, KITH__STORE_FORMAT
 *             "id"       u64 BE   this replica's id
 *             "pk"       32       this replica's Ed25519 public key
 *             "hlc"      u64 BE   the clock: highest timestamp issued or seen
 *             "order"    u64 BE   last apply-order counter used
 *             "conflict" u64 BE   last conflict id used
 *             "pending"  u64 BE   ops logged but not applied, all origins
 *             "schema"   32       fingerprint of the schema the replica was made with
 *
 *  origins    origin(8) -> applied(8) | have(8) | head(32)                     48 bytes
 *             applied: highest seq applied to the state (the version vector entry)
 *             have:    highest seq verified and logged (have >= applied; the commits in
 *                      (applied, have] are pending)
 *             head:    chain hash after seq `have` (zeros when have == 0)
 *
 *  log        origin(8) | first_seq(8) -> nops(4) | chain(32) | order(8) | commit bytes
 *             chain: hash after this commit; order: apply-order counter, 0 while pending;
 *             commit bytes: the canonical encoding (spec/encoding.md "Commit")
 *
 *  sigs       origin(8) | seq(8) -> sig(64)       signed chain heads, own and received
 *
 *  order      counter(8) -> origin(8) | first_seq(8)        commits in apply order
 *
 *  regs       coll(1) | doc(16) | field(1) -> hlc(8) | origin(8) | seq(8) | value
 *             value: type(1) then payload: STRING/DATE/ENUM/BYTES raw bytes; INT/TIME
 *             8 BE (two's complement); BOOL 1; REF 16; NULL nothing
 *
 *  elems      coll(1) | doc(16) | field(1) | elem bytes -> dots (16 each, sorted)
 *             the live dots of one OR-set element; the key is deleted when none is left
 *
 *  docs       coll(1) | doc(16) -> dots (16 each, sorted)
 *             document membership; live iff the key exists (deleted when empty)
 *
 *  conflicts  id(8) -> coll(1) | doc(16) | field(1) | resolved(1) | recorded_ms(8)
 *                      | winner hlc(8) origin(8) seq(8) | loser hlc(8) origin(8) seq(8)
 *                      | winner value len(4) | winner value | loser value
 *             values in the regs form (type byte + payload); field 0 records a delete that
 *             a concurrent edit overruled (the document stayed)
 *
 *  index      idx(1) | parts | doc(16) -> empty
 *             idx 1 contacts.name:         name bytes | 0x00 | doc
 *             idx 2 interactions.contact:  contact(16) | at(8, sign bit flipped) | doc
 *             idx 3 reminders.due:         due(8, sign bit flipped) | doc
 *             an entry exists while the document's registers hold all its parts (whether or
 *             not the document is live; iteration skips dead ones)
 *
 *  peers      id(8) -> pk(32) | flags(4 BE: 1 trusted, 2 forked) | cursor(8)
 *                      | last_sync_ms(8, two's complement) | failures(4)
 *                      | name_len(1) name | addr_len(2) addr | error_len(2) error
 *                      | nacked(4) | nacked x (origin(8) | seq(8))
 *             cursor, last_sync_ms, failures, last error: the last sync attempt;
 *             name <= 63, addr and error <= 255 bytes, no NUL; the acked vector is sorted
 *             by origin without zero seqs. No record for the replica itself (store/peer.c)
 */
#ifndef KITH_STORE_H
#define KITH_STORE_H

#include "core.h"
#include "kith.h"

#include <lmdb.h>
#include <pthread.h>

#define KITH__STORE_FORMAT 1u
#define KITH__MAP_INITIAL (64ull << 20)

#define KITH__ORIGIN_VAL_BYTES 48
#define KITH__LOG_HDR_BYTES (4 + 32 + 8)
#define KITH__REG_HDR_BYTES 24
#define KITH__PEER_TRUSTED 1u
#define KITH__PEER_FORKED 2u

enum kith__index_id {
    KITH__IDX_CONTACTS_NAME = 1,
    KITH__IDX_INTERACTIONS_CONTACT = 2,
    KITH__IDX_REMINDERS_DUE = 3
};

struct kith_replica {
    MDB_env *env;
    MDB_dbi meta, origins, log, sigs, order, regs, elems, docs, conflicts, index, peers;
    uint64_t id;
    uint8_t pk[KITH_PUBKEY_BYTES];
    uint8_t sk[64];             /* Ed25519 secret key; wiped at close */
    unsigned flags;             /* kith_open flags */
    char *path;
    pthread_rwlock_t resize;    /* txns hold it shared; growing the map holds it exclusive */
    pthread_mutex_t errlock;    /* guards errmsg */
    char errmsg[512];
    kith_change_fn on_change;
    kith_conflict_fn on_conflict;
    void *observer_ctx;
};

/* A change or conflict noticed inside a transaction, reported to observers after commit. */
struct kith__event_log {
    kith_changed_doc *docs;     /* changed documents, deduplicated at report time */
    size_t ndocs, capdocs;
    uint64_t *conflicts;        /* ids of conflicts recorded */
    size_t nconflicts, capconflicts;
};

struct kith_txn {
    kith_replica *r;
    MDB_txn *txn;
    unsigned flags;             /* KITH_TXN_WRITE */
    bool failed;                /* a write failed: only abort remains */
    bool holds_resize;          /* holds r->resize shared */
    /* the commit being built (write transactions) */
    struct kith__commit commit;
    uint32_t capops;
    struct kith__arena arena;   /* copies of values and observed dots of the ops */
    struct kith__event_log events;
};

/* ---- store/replica.c ----------------------------------------------------------------- */

/* Map an LMDB return code to kith's: MDB_NOTFOUND -> KITH_ENOTFOUND, MDB_CORRUPTED and
 * friends -> KITH_ECORRUPT, MDB_MAP_FULL stays visible as itself for the growth loop, errno
 * values -> -errno. */
int kith__mdb_err(int mdb_rc);
/* Set r's error detail (printf-style) and return rc, for `return kith__fail(r, rc, ...)`. */
int kith__fail(kith_replica *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Begin an LMDB transaction, taking r->resize shared and handling MDB_MAP_RESIZED. */
int kith__mdb_begin(kith_replica *r, unsigned mdb_flags, MDB_txn **out);
/* Release what kith__mdb_begin took, after the LMDB txn was committed or aborted. */
void kith__mdb_end(kith_replica *r);
/* Double the map (no transaction of this process open). */
int kith__map_grow(kith_replica *r);
/* Wall clock in milliseconds (the store is where time enters). */
int64_t kith__now_ms(void);

/* meta helpers */
int kith__meta_get_u64(kith_replica *r, MDB_txn *txn, const char *key, uint64_t *out);
int kith__meta_put_u64(kith_replica *r, MDB_txn *txn, const char *key, uint64_t v);

/* ---- store/apply.c: the one path from an op to the state, local and remote alike ------- */

/*
 * Apply the commit `c` (already verified) to the state in `txn`: registers, elements,
 * membership, indexes, conflicts; events into `ev`. Assumes (a) every dot the commit names
 * is applied, (b) c->first_seq == origins[c->origin].applied + 1. Does not touch the log,
 * the origins record or the clock (the caller does).
 */
int kith__apply_commit(kith_replica *r, MDB_txn *txn, const struct kith__commit *c,
                       struct kith__event_log *ev);

/* Register value <-> regs byte form. encode writes into `out` (room for 1 + payload). */
size_t kith__regval_size(const kith_value *v);
void kith__regval_encode(const kith_value *v, uint8_t *out);
int kith__regval_decode(const uint8_t *p, size_t len, kith_value *out);

/* The origins record. A missing record reads as all zeros. */
struct kith__origin_state {
    uint64_t applied, have;
    uint8_t head[KITH_HASH_BYTES];
};
int kith__origin_get(kith_replica *r, MDB_txn *txn, uint64_t origin, struct kith__origin_state *o);
int kith__origin_put(kith_replica *r, MDB_txn *txn, uint64_t origin,
                     const struct kith__origin_state *o);

/* ---- store/peer.c --------------------------------------------------------------------- */

/* The key of a trusted, unforked origin (this replica counts as trusted). KITH_EUNTRUSTED
 * otherwise. */
int kith__trusted_key(kith_replica *r, MDB_txn *txn, uint64_t origin,
                      uint8_t pk[KITH_PUBKEY_BYTES]);
/* Mark an origin forked (keeps the rest of its record). */
int kith__peer_mark_forked(kith_replica *r, MDB_txn *txn, uint64_t origin);

/* ---- event log (store/txn.c) ---------------------------------------------------------- */

int kith__event_doc(struct kith__event_log *ev, int coll, kith_dot doc);
int kith__event_conflict(struct kith__event_log *ev, uint64_t conflict_id);
/* Call r's observers for what `ev` gathered, then clear it. */
void kith__event_report(kith_replica *r, struct kith__event_log *ev, int source);
void kith__event_free(struct kith__event_log *ev);

/* ---- index keys (store/apply.c) ------------------------------------------------------- */

/* Maintain the indexes for a register change of (coll, doc, field) from old to new value.
 * Reads the document's other registers from txn as needed. */
int kith__index_update(kith_replica *r, MDB_txn *txn, int coll, kith_dot doc, int field,
                       const kith_value *old_v, const kith_value *new_v);

#endif /* KITH_STORE_H */
