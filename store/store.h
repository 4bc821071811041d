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
 *             "schema"   32       digest of the declared schema (kith_schema_info); a
 *                                  replica made by an older kith: the fingerprint of the
 *                                  built-in schema it was made with
 *             "schema_v" u64 BE   version of the declared schema; absent: 0
 *             "restored" 33       this replica was restored from a copy (store/restored.c):
 *                                  seq(8) | seen_from(8) | recorded_ms(8) | have(8)
 *                                  | accepted(1); absent: not marked
 *             "invites"  32 x n   the invites handed out (store/invite.c), n <= 64:
 *                                  secret(16) | expiry_ms(8) | used_ms(8; 0: unused),
 *                                  kept a day past their expiry; local, never replicated
 *             "listen"   1..255   the endpoint the daemon last bound (store/invite.c), what
 *                                  an invite offers when no address is given
 *             "group"    32       the device group this replica is in (store/group.c):
 *                                  gid(16) | stamp(16); absent: in no group. The stamp is
 *                                  16 random bytes drawn anew by every change to the
 *                                  `groups` database, so a cached fold is current exactly
 *                                  when its stamp is the one read in the transaction
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
 *  peers      id(8) -> pk(32) | flags(4 BE: 1 trusted, 2 forked, 4 failing) | cursor(8)
 *                      | last_sync_ms(8, two's complement) | failures(4)
 *                      | name_len(1) name | addr_len(2) addr | error_len(2) error
 *                      | nacked(4) | nacked x (origin(8) | seq(8))
 *                      | schema_version(8) | schema_digest(32)
 *             cursor, last_sync_ms, failures, last error: the last sync attempt;
 *             name <= 63, addr and error <= 255 bytes, no NUL; the acked vector is sorted
 *             by origin without zero seqs; schema_*: as the peer's last handshake told
 *             them (kith_schema_info), absent in a record written before 0.2.0 (read as
 *             0 and zeros). Appended after the schema in 0.3.0:
                      | clock_offset_ms(8, two's complement) | clock_checked_ms(8, two's
                        complement)
             the peer's clock minus ours at a handshake, and when it was measured; absent
             in an older record (read as 0 and 0: never measured). No record for the
             replica itself (store/peer.c)

 *  forks      origin(8) -> seq(8) | ours(32) | theirs(32) | seen_from(8)
 *                      | recorded_ms(8, two's complement) | source(1)          89 bytes
 *                      [ | head_seq(8) | head_chain(32) | head_sig(64) ]      +104
 *             one record per forked origin, the first evidence found (store/forks.c,
 *             kith_fork): the seq where the two histories were seen to differ, our chain
 *             hash after it (zeros when no commit of ours ends there) and the other
 *             history's, the peer that showed it, and source 1 (a handshake's head) or 2
 *             (a batch's signed run, then with the origin's signed head of that history).
 *             Created empty by a writable open; a read-only open of a replica made before
 *             0.3.0 has none and reads no fork (forks == KITH__DBI_FREE)
 *
 *  journal    origin(8) | first_seq(8) -> nops(4) | chain(32) | word(8) | commit bytes
 *             a commit set aside when a fork was resolved against the history held here
 *             (spec/data-model.md FORK-10): the log's record, its order slot holding when it
 *             was set aside (ms) with bit 63 set once kith_journal_restore wrote it again
 *             old docid(16) | "newdocid" -> docid(16)
 *             the document a restore created for one the set-aside commit had created.
 *             Created by a writable open; none in a replica made before 0.4.0 opened
 *             read-only (journal == KITH__DBI_FREE)
 *  groups     hash(32) -> signed group record (core/group.h; spec/groups.md)
 *             the records of the replica's group that are valid, waiting, or of a critical
 *             kind this kith does not know; the key is the record's BLAKE2b-256 hash (GRP-2).
 *             Created by a writable open; a read-only open of a replica made before 0.4.0
 *             has none (groups == KITH__DBI_FREE) and reads as in no group. The writable open
 *             that creates it in an existing replica converts its trust set to a group
 *             (spec/groups.md GRP-17)

 *  proofs     origin(8) | c(8) | win_first(32) | lose_first(32) -> proof bytes
 *             the fork proofs held (store/proofs.c, spec/encoding.md §10): the key is the
 *             fork's name (FORK-7), so an origin's proofs sort by the seq c where its
 *             histories part; of two proofs with one name the shorter is kept (then the
 *             lower bytes). Created empty by a writable open; none in a replica made before 0.4.0
 *             opened read-only (proofs == KITH__DBI_FREE)
 *
 *  voids      origin(8) | seq(8) -> entries, each kind(1) | len(2, BE) | set key (len)
 *             tombstones of void dots (spec/data-model.md FORK-15..18, storage.md STO-33):
 *             an op applied on a replica that settled a fork removed the dot (origin, seq)
 *             from the dot set under `set key` (kind 'd': docs, 'e': elems, 'f': flags)
 *             before the op at that dot was applied here; when that op adds its dot to that
 *             set, the dot is dropped at once and the entry goes; once the origin's applied
 *             passes seq, the record goes. Entries sorted by kind, then key as LMDB orders
 *             keys, no repeats. State: emptied with the rest by a rebuild. Created by a
 *             writable open; none in a replica made before 0.4.0 opened read-only
 *             (voids == KITH__DBI_FREE)
 */
#ifndef KITH_STORE_H
#define KITH_STORE_H

#include "core.h"
#include "group.h"
#include "kith.h"

#include <lmdb.h>
#include <pthread.h>

#define KITH__STORE_FORMAT 2u
#define KITH__MAP_INITIAL (64ull << 20)

#define KITH__ORIGIN_VAL_BYTES 48
#define KITH__LOG_HDR_BYTES (4 + 32 + 8)
#define KITH__REG_HDR_BYTES 24
#define KITH__PEER_TRUSTED 1u
#define KITH__PEER_FORKED 2u
#define KITH__PEER_FAILING 4u

#define KITH__INDEX_KEY_MAX 511  /* LMDB's longest key */
#define KITH__COUNT_KEY_BYTES 26 /* coll | doc | field | origin */

struct kith_replica {
    MDB_env *env;
    MDB_dbi meta, origins, log, sigs, order, regs, elems, docs, conflicts, index, peers;
    MDB_dbi names, counts, flagdb; /* KITH__DBI_FREE in a format-1 replica opened read-only */
    MDB_dbi forks;                 /* KITH__DBI_FREE in an older replica opened read-only */
    MDB_dbi journal;               /* likewise: made before 0.4.0 */
    MDB_dbi groups;                /* likewise: a replica made before 0.4.0, read-only */
    MDB_dbi proofs;                /* likewise: made before 0.4.0 */
    MDB_dbi voids;                 /* likewise: made before 0.4.0 */
    uint64_t id;
    uint8_t pk[KITH_PUBKEY_BYTES];
    uint8_t sk[64]; /* Ed25519 secret key; wiped at close */
    bool has_sk;    /* sk was read; false on a read-only open by a user the key file refuses */
    unsigned flags; /* kith_open flags */
    char *path;
    pthread_rwlock_t resize; /* txns hold it shared; growing the map holds it exclusive */
    pthread_mutex_t wlock;   /* held by a local write txn from begin to end, across map
                                growth, so no other thread's commit makes its seqs stale */
    kith_change_fn on_change;
    kith_conflict_fn on_conflict;
    void *observer_ctx;
    kith_progress_fn progress_fn; /* kith_progress_set; NULL: none */
    void *progress_ctx;
    int64_t clock_offset_ms;    /* added to the wall clock; 0 but in kith-check's skewed replica */
    pthread_mutex_t names_lock; /* interned names and the schema below */
    struct kith__interned *interned; /* store/names.c */
    struct kith__sschema *schema;    /* the declared schema last loaded (store/schema.c); older
                                        ones stay behind it until close, for readers */
    pthread_mutex_t ident_lock;      /* id, pk, sk and has_sk as one: a re-key (D-22) changes
                                        them while other threads may build batches */
    pthread_mutex_t group_lock;      /* the cached fold below */
    struct kith__group_cache *group; /* the fold of the group's records, as of a stamp
                                        (store/group.c); NULL until first needed */
    uint64_t group_folds;            /* how many times it was built (tests read it) */
    kith_fork_fn on_fork;            /* kith_on_fork; NULL: none */
    void *fork_ctx;
};

/* ---- store/names.c: local numbers for the names ops use ------------------------------- */

#define KITH__NAME_COLL 'c'
#define KITH__NAME_FIELD 'f'
#define KITH__NAME_INDEX 'i'
#define KITH__NAMES_CACHE 64 /* slots, a power of two */

/* A write transaction's memory of the names it looked up (names are never renumbered): a
 * direct-mapped table, a slot per hash of (kind, parent, name); `n` counts the slots filled. */
struct kith__names_cache {
    uint32_t n;

    struct {
        char kind;
        uint8_t parent, id, len;
        const char *name; /* interned */
    } e[KITH__NAMES_CACHE];
};

/* The local number of a collection (parent 0), a field of collection `parent`, or an index of
 * collection `parent`; with `create`, a name not numbered yet gets the next number. `nc` may
 * be NULL. 0, KITH_ENOTFOUND, KITH_ETOOBIG (no number left), KITH_ENOMEM, or an LMDB error. */
int kith__names_get(kith_replica *r, MDB_txn *txn, struct kith__names_cache *nc, char kind,
                    uint8_t parent, const char *name, size_t len, bool create, uint8_t *id);
/* The name of a number, interned: 0, KITH_ENOTFOUND, or an error. */
int kith__names_name(kith_replica *r, MDB_txn *txn, char kind, uint8_t parent, uint8_t id,
                     const char **out);
/* Give every op of a decoded commit its local numbers (op->coll, op->field). */
struct kith__applier;
int kith__names_resolve(struct kith__applier *a, struct kith__commit *c);
/* Number the format-1 names as format 1 did (the upgrade of a format-1 replica). */
int kith__names_seed_v1(kith_replica *r, MDB_txn *txn);
/* A NUL-terminated copy of a name that lives as long as r. NULL when out of memory. */
const char *kith__name_intern(kith_replica *r, const char *p, size_t len);
void kith__names_free(kith_replica *r);

/* ---- store/schema.c: the declared schema, as the store uses it ------------------------ */

/* An index as the store keeps it: its number and its fields' local numbers. */
struct kith__index_plan {
    uint8_t coll, id, nparts;
    uint8_t part[2];
};

struct kith__sschema {
    uint64_t version;          /* meta "schema_v" it was loaded at */
    struct kith__schema *decl; /* NULL: nothing declared */
    size_t nplans;
    struct kith__index_plan *plans; /* by coll */
    /* per collection number, the fields some index keys: a write to any other field skips
     * the plans (most writes) */
    uint64_t (*indexed)[4];
    struct kith__sschema *older;
};

/* The declared schema as of `txn` (reloaded when another handle or process changed it). */
int kith__schema_current(kith_replica *r, MDB_txn *txn, const struct kith__sschema **out);
void kith__schema_release(kith_replica *r);
/* The upgrade of a format-1 replica: number its names as format 1 did and declare the
 * built-in CRM schema, in `txn`. */
int kith__schema_upgrade_v1(kith_replica *r, MDB_txn *txn);

/* A change or conflict noticed inside a transaction, reported to observers after commit. */
struct kith__event_log {
    kith_changed_doc *docs; /* changed documents, deduplicated at report time */
    size_t ndocs, capdocs;
    uint64_t *conflicts; /* ids of conflicts recorded */
    size_t nconflicts, capconflicts;
};

/* Stable storage for the values and observed dots of the ops a write transaction builds:
 * a list of blocks that never move, so an op's views stay valid until the transaction ends
 * (and survive a replay after map growth). */
struct kith__mem_block;

struct kith__mem {
    struct kith__mem_block *head;
};

void *kith__mem_alloc(struct kith__mem *m, size_t n); /* NULL on ENOMEM */
void kith__mem_free(struct kith__mem *m);

/* An origin's record as cached by an applier, written back when dirty. */
struct kith__origin_state {
    uint64_t applied, have;
    uint8_t head[KITH_HASH_BYTES];
};

struct kith__origin_slot {
    uint64_t origin;
    struct kith__origin_state st;
    bool dirty;
};

/*
 * The state of applying ops inside one LMDB write transaction (store/apply.c): cursors and
 * scratch buffers reused across ops, the conflict counter, a membership "touch" not yet
 * written, and a cache of the origins records touched. One per write transaction.
 */
struct kith__applier {
    kith_replica *r;
    MDB_txn *txn;
    MDB_cursor *regs_c, *elems_c, *docs_c;
    struct kith__event_log *ev; /* NULL: nobody listens, gather nothing */
    int64_t now_ms;             /* recorded_ms of conflicts */
    uint64_t conflict_id;       /* last conflict id used (valid when conflict_loaded) */
    bool conflict_loaded, conflict_dirty;
    uint64_t conflicts; /* conflicts recorded through this applier */
    bool no_conflicts;  /* record none (a rebuild: they were recorded the first time) */
    bool touch_pending; /* a membership touch waits to be written */
    uint8_t touch_coll;
    kith_dot touch_doc, touch_dot;
    uint64_t touch_hlc;
    uint8_t *scratch; /* reused: old values, dot sets, keys */
    size_t scratch_cap;
    struct kith__origin_slot *origins;
    size_t norigins, caporigins;
    struct kith__wcache *wc;            /* write-back cache of regs, docs, index; NULL: off */
    struct kith__names_cache names;     /* names looked up in this transaction */
    const struct kith__sschema *schema; /* the indexes to keep */
    MDB_cursor *counts_c, *flags_c;     /* opened on first use */
    const char *coll_names[256];        /* interned names of collection numbers, for events */
    bool voids;      /* void dots may be observed: keep tombstones (kith__apply_voids) */
    uint64_t nvoids; /* records in the voids database (valid when `voids`) */
};

/* What a restore from the journal writes at commit (store/journal.c): an entry restored, or
 * the document it made for one the set-aside commit had made. */
struct kith__journal_mark {
    bool is_map;
    kith_dot commit;      /* !is_map: the entry */
    kith_docid old, made; /* is_map */
};

#define KITH__JOURNAL_RESTORED (1ull << 63)

struct kith_txn {
    kith_replica *r;
    MDB_txn *txn;
    unsigned flags;        /* KITH_TXN_WRITE */
    bool failed;           /* a write failed: only abort remains */
    bool holds_resize;     /* holds r->resize shared */
    bool holds_wlock;      /* holds r->wlock (write transactions) */
    bool started;          /* the first write happened: hlc and base_applied are set */
    uint64_t base_applied; /* own applied seq when the first write happened */
    /* the commit being built (write transactions) */
    struct kith__commit commit;
    uint32_t capops;
    struct kith__mem mem;    /* copies of values and observed dots of the ops; read copies */
    struct kith__applier ap; /* valid while ap_open */
    bool ap_open;
    struct kith__event_log events;
    struct kith__wbuf enc; /* the commit's encoding, at commit */
    uint64_t *resolved;    /* conflicts resolved in this txn, marked again at commit */
    size_t nresolved, capresolved;
    struct kith__name *names; /* the commit's names, two per op (the encoder dedups) */
    uint32_t capnames;
    struct kith__journal_mark *jmarks; /* restores from the journal, written at commit */
    size_t njmarks, capjmarks;
};

/* Read field `field` (a local number) of a document as the kind `crdt` (a kith__crdt, or -1:
 * whatever it holds). 1 when it holds a value, 0 when not, or an error; *kind gets the kind
 * read; a set reads as KITH_TYPE_SET. Views are valid until the transaction ends. */
int kith__field_read(kith_txn *t, uint8_t coll, const kith_docid *doc, uint8_t field, int crdt,
                     kith_value *out, int *kind);

/* Has this thread a transaction open (kith_txn_begin)? */
bool kith__txn_open_here(void);

/* ---- store/progress.c: reporting to kith_progress_set's callback ------------------------ */

/*
 * The progress of one long call. A reporter whose fn is NULL reports nothing and never
 * cancels, so a call made for kith_serve's sessions (which pass NULL, or a zeroed reporter)
 * costs nothing. The numbers it hands on never go backwards: `done` only grows, and is held
 * to `total` when that is known (a total that turns out short is raised by the end call).
 */
struct kith__progress {
    kith_progress_fn fn; /* NULL: nobody listens */
    void *ctx;
    kith_replica *r; /* for the error detail of a cancel */
    kith_progress p; /* what was reported last */
    bool cancelled;  /* fn said stop: every later report returns KITH_ECANCELED */
};

/* Every this many commits, a loop reports (a power of two). */
#define KITH__PROGRESS_EVERY 256u

/* Take r's callback for a call of kind `op` (a kith_progress_op). Reports nothing yet. */
void kith__progress_init(struct kith__progress *pg, kith_replica *r, int op);
/* Report `done` of `total` (0: keep the total known). 0, or KITH_ECANCELED (with r's error
 * detail set) once fn said stop. Takes NULL: 0. */
int kith__progress_report(struct kith__progress *pg, uint64_t done, uint64_t total);
/* Report the end: done == total == `total` (at least what was reported done). 0 or
 * KITH_ECANCELED. Takes NULL. */
int kith__progress_end(struct kith__progress *pg, uint64_t total);

/* The reporter to pass down: pg when someone listens, else NULL (loops test it alone). */
static inline struct kith__progress *
kith__progress_live(struct kith__progress *pg)
{
    return pg != NULL && pg->fn != NULL ? pg : NULL;
}

/* kith_batch_create and kith_batch_apply reporting to `pg` (NULL: to nobody), for the callers
 * inside the library: kith_bundle_* with the replica's reporter, sessions with none. `xo`
 * NULL: format 3 with everything (what kith_batch_create and bundles write). */
/* What a batch carries besides ops, and in which format (spec/encoding.md "Batch"). */
struct kith__build_opts {
    uint32_t format;      /* KITH__BATCH_FORMAT, or 2 for a peer that cannot read it */
    bool include_records; /* the group's records (format 3) */
    bool include_proofs;  /* the fork proofs held (format 3) */
};

/* The batch format a session of protocol `proto` sends: 3 from protocol 4, else 2. */
#define KITH__BATCH_FORMAT_FOR_PROTO(proto) ((proto) >= 4 ? 3u : 2u)
int kith__batch_create(kith_replica *r, const kith_batch_opts *opts,
                       const struct kith__build_opts *xo, kith_buf *out, kith_batch_info *info,
                       struct kith__progress *pg);
int kith__batch_apply(kith_replica *r, const void *data, size_t len, kith_apply_info *info,
                      struct kith__progress *pg);

/* A history of `origin` to set aside: its commits after seq `after` (spec/data-model.md
 * FORK-10). */
struct kith__aside {
    uint64_t origin;
    uint64_t after;
};

/* Set aside the histories asides[0..n) in one write transaction: their commits move from the
 * log to the journal (store/journal.c), their signed heads go, and when any had been applied
 * the state is rebuilt from the log without them; the commits kept are applied as their
 * dependencies allow. *ops_aside (may be NULL) gets the ops moved. 0 or an error (nothing
 * changed). */
int kith__history_set_aside(kith_replica *r, const struct kith__aside *asides, size_t n,
                            uint64_t *ops_aside, kith_apply_info *info);
/* Parse a log value: nops, chain, order, commit bytes (views into `v`). 0 or KITH_ECORRUPT.
 * In batch_build.c, which parses one per commit it sends; batch_apply.c reads held ones. */
int kith__log_parse(kith_replica *r, const MDB_val *v, uint32_t *nops, const uint8_t **chain,
                    uint64_t *order, const uint8_t **bytes, size_t *len);

/* ---- store/replica.c ----------------------------------------------------------------- */

/* Map an LMDB return code to kith's: MDB_NOTFOUND -> KITH_ENOTFOUND, MDB_CORRUPTED and
 * friends -> KITH_ECORRUPT, MDB_MAP_FULL stays visible as itself for the growth loop, errno
 * values -> -errno. */
int kith__mdb_err(int mdb_rc);
/* Set r's error detail (printf-style) and return rc, for `return kith__fail(r, rc, ...)`. */
int kith__fail(kith_replica *r, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Begin an LMDB transaction, taking r->resize shared and handling MDB_MAP_RESIZED. */
int kith__mdb_begin(kith_replica *r, unsigned mdb_flags, MDB_txn **out);
/* Release what kith__mdb_begin took, after the LMDB txn was committed or aborted. */
void kith__mdb_end(kith_replica *r);
/* Double the map (no transaction of this process open). */
int kith__map_grow(kith_replica *r);
/* Wall clock in milliseconds (the store is where time enters). */
int64_t kith__now_ms(void);
/* The wall clock as replica r reads it when it stamps and admits ops: kith__now_ms plus r's
 * clock offset. kith__replica_set_clock_offset is a test hook (kith-check's clock skew of one
 * replica, spec/check.md); nothing else sets an offset. */
int64_t kith__replica_now_ms(const kith_replica *r);
void kith__replica_set_clock_offset(kith_replica *r, int64_t ms);

/* The name of database `dbi` of r for messages ("log"; LMDB's own two: "free-page list",
 * "main"). Never NULL. */
const char *kith__dbi_name(const kith_replica *r, MDB_dbi dbi);
#define KITH__DBI_FREE ((MDB_dbi)0) /* LMDB's FREE_DBI */
#define KITH__DBI_MAIN ((MDB_dbi)1) /* LMDB's MAIN_DBI: the table of named databases */

/* ---- store/files.c --------------------------------------------------------------------- */

#define KITH__KEY_FILE "key"    /* the secret key of a whole replica */
#define KITH__KEY_TMP "key.tmp" /* the key of a replica being created */

/* dir "/" name, malloc'd; NULL when out of memory. */
char *kith__path_join(const char *dir, const char *name);
/* 1 if dir/name exists, 0 if not, -errno when that cannot be told (-EACCES). */
int kith__file_probe(const char *dir, const char *name);
/* Can this process write dir/name (or create it in dir, when it is absent)? */
bool kith__file_writable(const char *dir, const char *name);
/* fsync the directory itself. 0 or -errno. */
int kith__fsync_dir(const char *dir);
/* Write sk to dir/key.tmp (O_EXCL, mode 0600, fsync). 0 or -errno; no key.tmp on failure. */
int kith__key_write_tmp(const char *dir, const uint8_t sk[64]);
/* Rename dir/key.tmp to dir/key and fsync dir: the last step of a creation. 0 or -errno. */
int kith__key_commit(const char *dir);
/* Read a 64-byte key from dir/name. 0, KITH_ECORRUPT (absent or not 64 bytes), or -errno. */
int kith__key_read(const char *dir, const char *name, uint8_t sk[64]);
/* 0 if dir holds only a creation's leftovers (lock.mdb, key.tmp, and data.mdb when
 * with_data), KITH_ECORRUPT if it holds anything else, -errno if it cannot be read. */
int kith__dir_only_ours(const char *dir, bool with_data);

/* Check dir/data.mdb against the last page its newer meta page names, before LMDB maps it
 * (a page past the end of the file would raise SIGBUS). 0 when it holds them (or its missing
 * pages are all free); KITH_ECORRUPT with "replica is damaged: data.mdb is N bytes, ..." in
 * `why`; or -errno from opening or reading it (`why` empty). */
int kith__datafile_check(const char *dir, char *why, size_t whylen);
/* Create dir/lock.mdb if absent and give it its blocks (fallocate), so that LMDB's writes
 * through its map cannot fault on a full disk. 0 or -errno (-ENOSPC, -EACCES). */
int kith__lockfile_prepare(const char *dir);

/* ---- store/guard.c --------------------------------------------------------------------- */

/* The environment's assert callback (mdb_env_set_assert): inside a kith__mdb_* call below,
 * turns LMDB's assertion into that call returning MDB_CORRUPTED; elsewhere LMDB aborts. */
void kith__mdb_on_assert(MDB_env *env, const char *msg);
/* LMDB's calls of the same names and contracts, except that an LMDB assertion on a damaged
 * page returns MDB_CORRUPTED (the cursor or transaction is then only fit to be closed or
 * aborted; a commit that asserted has been aborted), and MDB_CORRUPTED or MDB_PAGE_NOTFOUND
 * put "database NAME cannot be read: ..." in the replica's error detail (when the
 * environment's userctx is the replica). */
int kith__mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int kith__mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags);
int kith__mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int kith__mdb_cursor_get(MDB_cursor *c, MDB_val *key, MDB_val *data, MDB_cursor_op op);
int kith__mdb_cursor_put(MDB_cursor *c, MDB_val *key, MDB_val *data, unsigned flags);
int kith__mdb_cursor_del(MDB_cursor *c, unsigned flags);
int kith__mdb_cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **out);
int kith__mdb_stat(MDB_txn *txn, MDB_dbi dbi, MDB_stat *out);
int kith__mdb_dbi_open(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *out);
int kith__mdb_txn_commit(MDB_txn *txn);

/* Open with a chosen initial map size for a new replica (0: KITH__MAP_INITIAL); a test hook
 * for map growth. */
int kith__open_sized(const char *path, unsigned flags, size_t mapsize, kith_replica **out);

/* meta helpers; a u64 never written reads as 0 */
int kith__meta_get(kith_replica *r, MDB_txn *txn, const char *key, MDB_val *out);
int kith__meta_put(kith_replica *r, MDB_txn *txn, const char *key, const void *p, size_t n);
int kith__meta_get_u64(kith_replica *r, MDB_txn *txn, const char *key, uint64_t *out);
int kith__meta_put_u64(kith_replica *r, MDB_txn *txn, const char *key, uint64_t v);

/* ---- store/apply.c: the one path from an op to the state, local and remote alike ------- */

/*
 * The applier: kith__apply_begin opens cursors in `txn` (a write txn); kith__apply_op applies
 * one op of dot `dot` and timestamp `hlc`; kith__apply_finish writes what is cached (the
 * pending touch, dirty origins records, the conflict counter); kith__apply_end releases
 * everything (after finish, or instead of it when the txn is aborted). `ev` may be NULL.
 * kith__apply_op assumes (a) the op was validated (schema; decoded or built locally),
 * (b) every dot it names is applied, (c) ops of one origin arrive in seq order.
 */
int kith__apply_begin(struct kith__applier *a, kith_replica *r, MDB_txn *txn,
                      struct kith__event_log *ev);
int kith__apply_op(struct kith__applier *a, uint64_t hlc, kith_dot dot, const struct kith__op *op);
int kith__apply_flush(struct kith__applier *a); /* write the pending membership touch */
/* Turn on the write-back cache (received batches): registers, memberships and index entries
 * are read at most once and written once per key, at kith__apply_finish, in key order. Only
 * for an applier whose transaction reads those databases through it alone. `expect`: about
 * how many keys it will hold (sizes its table). */
int kith__apply_cache(struct kith__applier *a, size_t expect);
int kith__apply_finish(struct kith__applier *a);
void kith__apply_end(struct kith__applier *a);
/* The cached origins record of `origin` (loaded on first use); NULL on error (*rc set). */
struct kith__origin_slot *kith__apply_origin(struct kith__applier *a, uint64_t origin, int *rc);

/*
 * Apply the commit `c` (already verified) through `a`: every op in order, then the
 * commit's origin record (applied) and the clock are the caller's. Assumes (a) every dot the
 * commit names is applied, (b) c->first_seq == origins[c->origin].applied + 1.
 */
int kith__apply_commit(struct kith__applier *a, struct kith__commit *c);

/* Decode a conflicts record (views into p: valid while p is; names interned). 0,
 * KITH_ECORRUPT, or an error reading the names. */
int kith__conflict_decode(kith_replica *r, MDB_txn *txn, uint64_t id, const uint8_t *p, size_t len,
                          kith_conflict *out);

/* ---- store/wcache.c: the records the apply path reads and writes -------------------- */

enum kith__wc_kind { KITH__WC_NONE = 0, KITH__WC_REGS = 1, KITH__WC_DOCS = 2, KITH__WC_INDEX = 3 };
struct kith__wc_entry;

/*
 * Read the record under `key` in the database of `kind` (cursor `c`): through a->wc when it
 * is on (REGS, DOCS), else with the cursor (left on the record, so kith__rec_put overwrites it
 * in place). *val is a view valid until the next write; *ent is for put/del.
 */
int kith__rec_get(struct kith__applier *a, uint8_t kind, MDB_cursor *c, const uint8_t *key,
                  size_t klen, const uint8_t **val, size_t *vlen, bool *found,
                  struct kith__wc_entry **ent);
/* Write (or delete, after a found get) the record kith__rec_get read. */
int kith__rec_put(struct kith__applier *a, MDB_cursor *c, const uint8_t *key, size_t klen,
                  const void *val, size_t vlen, bool found, struct kith__wc_entry *ent);
int kith__rec_del(struct kith__applier *a, MDB_cursor *c, struct kith__wc_entry *ent);
/* Cached index entry: present or not at the end; `born`: it cannot be in the database. */
int kith__wcache_index(struct kith__applier *a, const uint8_t *key, size_t n, bool add, bool born);
/* Whether a cached record was absent from the database when the cache first read it. */
bool kith__wcache_born(const struct kith__wc_entry *e);
/* Write every dirty entry in (database, key) order; free the cache. */
int kith__wcache_flush(struct kith__applier *a);
/* Start loading what a commit's ops will look up in the cache (a hint). */
void kith__wcache_prefetch(struct kith__applier *a, const struct kith__commit *c);
/* Between commits: flush and empty the cache when it has outgrown its budget. */
int kith__wcache_spill(struct kith__applier *a);
extern size_t kith__wcache_budget; /* bytes; 12 MiB (tests lower it to make spills happen) */
void kith__wcache_free(struct kith__wcache *c);

/* The origins record, read or written directly. A missing record reads as all zeros. */
int kith__origin_get(kith_replica *r, MDB_txn *txn, uint64_t origin, struct kith__origin_state *o);
int kith__origin_put(kith_replica *r, MDB_txn *txn, uint64_t origin,
                     const struct kith__origin_state *o);

/* ---- store/iter.c --------------------------------------------------------------------- */

/* Decode the log record k -> v (store.h, log) into *c, resetting `arena` first: views point
 * into v's bytes and the arena (valid while both are). Checks the record's size and op
 * count. The one decoding of logged commits, shared by kith_iter_log and the change feed.
 * 0, KITH_ECORRUPT (kith_errmsg names the commit) or KITH_ENOMEM. */
int kith__log_decode(kith_replica *r, const MDB_val *k, const MDB_val *v, struct kith__commit *c,
                     struct kith__arena *arena);

/* ---- store/journal.c ------------------------------------------------------------------- */

/* Put the log record k -> logv into the journal, set aside now. 0, MDB_MAP_FULL, or an
 * error. */
int kith__journal_put(kith_replica *r, MDB_txn *txn, const MDB_val *k, const MDB_val *logv,
                      int64_t now_ms);
/* Write what t's restores from the journal left to write (t->jmarks), in t->txn; at commit,
 * and again after a map growth replay. */
int kith__journal_mark(kith_txn *t);

/* Mark the conflicts listed in t->resolved as resolved, in t->txn. kith_txn_commit calls it
 * (also when the transaction has no ops, and again after a map growth replay). */
int kith__conflicts_mark(kith_txn *t);

/* ---- store/peer.c --------------------------------------------------------------------- */

/* The key of an admitted origin: this replica, a trusted unforked peer, or a live member of
 * the group (store/group.c: kith__origin_key without removed members). KITH_EUNTRUSTED
 * otherwise. */
int kith__trusted_key(kith_replica *r, MDB_txn *txn, uint64_t origin,
                      uint8_t pk[KITH_PUBKEY_BYTES]);
/* A sync with peer `id` was cancelled by its caller (kith_progress_set): keep what it
 * acknowledged (`acked` and `cursor`, as a success would) and `why` as the last error, and
 * leave failures, the failing mark and last_sync as they were, so that a cancel is not counted
 * toward backoff. 0, KITH_ENOTFOUND, or an error. */
int kith__peer_record_cancelled(kith_replica *r, uint64_t id, const kith_vv *acked, uint64_t cursor,
                                const char *why);
/* A live member of the group (pk) was heard at `addr`: record the address in its peer record,
 * made (not trusted pairwise, GRP-14) when there is none; a pairwise trust it has stays as it
 * is. 0, KITH_EUNTRUSTED (not a live member), KITH_EINVAL, or an error. */
int kith__peer_member_addr(kith_replica *r, const uint8_t pk[KITH_PUBKEY_BYTES], const char *addr);
/* The pairwise key of `origin`: 0 with its key when its peer record is trusted and not
 * forked, KITH_EUNTRUSTED when there is a record that is not, KITH_ENOTFOUND when there is
 * none; or an error. */
int kith__peer_trusted(kith_replica *r, MDB_txn *txn, uint64_t origin,
                       uint8_t pk[KITH_PUBKEY_BYTES]);
/* Is there a peer record of `origin` marked forked? 1, 0, or an error. */
int kith__peer_forked(kith_replica *r, MDB_txn *txn, uint64_t origin);
/* Call fn for every trusted, unforked peer (key, name), in id order; a negative return from
 * fn stops the walk and is returned. */
int kith__peers_each_trusted(kith_replica *r, MDB_txn *txn,
                             int (*fn)(void *ctx, const uint8_t pk[KITH_PUBKEY_BYTES],
                                       const char *name),
                             void *ctx);
/* The last sync time with peer `id` (0: never, or no record). 0 or an error. */
int kith__peer_last_sync(kith_replica *r, MDB_txn *txn, uint64_t id, int64_t *ms);
/* Mark an origin forked (keeps the rest of its record). */
int kith__peer_mark_forked(kith_replica *r, MDB_txn *txn, uint64_t origin);
/* Peer `id` holds the ops up to each of held[0..n) (origin, seq): raise its acknowledged
 * vector to them (NET-19). Nothing happens when it has no record. 0 or an error. */
int kith__peer_learn(kith_replica *r, MDB_txn *txn, uint64_t id, const kith_dot *held, size_t n);
/* The same for what applying batch `b` shows: its sender holds every run in it up to the run's
 * signed head, and each origin its own ops up to its head. 0 or an error (MDB_MAP_FULL too). */
int kith__peer_learn_batch(kith_replica *r, MDB_txn *txn, const struct kith__batch *b);
/* Peer `id` told its schema version and digest in a handshake (spec/protocol.md NET-7): keep
 * them in its record, in a write transaction of its own, taken only when the record says
 * something else. 1 when the record changed, 0 when it said so already, KITH_ENOTFOUND (no
 * record of `id`), KITH_EREADONLY, or an error. */
int kith__peer_record_schema(kith_replica *r, uint64_t id, uint64_t version,
                             const uint8_t digest[KITH_HASH_BYTES]);
/* Peer `id`'s clock is `offset_ms` from ours (its minus ours), measured at `now_ms`: keep it
 * in its record when the record has none, differs from it by more than a second, or was
 * measured more than an hour ago, so that a reconnecting peer costs no write. 1 when the
 * offset crossed KITH_CLOCK_TOLERANCE_MS from within it (or from unknown), 0 otherwise, or
 * KITH_ENOTFOUND, KITH_EREADONLY, or an error. */
int kith__peer_record_clock(kith_replica *r, uint64_t id, int64_t offset_ms, int64_t now_ms);

/* ---- store/forks.c: evidence of origins that signed two histories --------------------- */

/* Is `origin` forked here? 1 with the fork's seq in *seq, 0 when not, or an error. */
int kith__fork_seq(kith_replica *r, MDB_txn *txn, uint64_t origin, uint64_t *seq);
/* Record `f` unless its origin has a record already (the first evidence is kept): 1 when
 * written, 0 when one was there, or an error (MDB_MAP_FULL comes back as itself). */
int kith__fork_put(kith_replica *r, MDB_txn *txn, const kith_fork *f);
/* Every fork record, by origin. *out is released with free(). */
int kith__forks_read(kith_replica *r, MDB_txn *txn, kith_fork **out, size_t *n);
/* The chain hash after seq `end` of `origin` as logged, when a logged commit ends exactly
 * there (end 0: zeros). 0, KITH_ENOTFOUND, or an error. */
int kith__chain_at(kith_replica *r, MDB_txn *txn, uint64_t origin, uint64_t end,
                   uint8_t out[KITH_HASH_BYTES]);
/* This replica's applied vector and, for each entry, the chain hash after that seq (what a
 * handshake of protocol 3 tells, spec/protocol.md NET-24), read in one transaction.
 * *heads (KITH_HASH_BYTES per entry, in vector order) is released with free(), vv with
 * kith_vv_free. */
int kith__heads_read(kith_replica *r, kith_vv *vv, uint8_t **heads);
/* Compare a peer's vector and heads with this replica's log (NET-25): every origin whose
 * head at the peer's seq, within what this replica holds, differs from ours (or where no
 * commit of ours ends) has forked. The forks not recorded yet are recorded, seen from
 * `peer`, in one write transaction taken only when there is one; *found (released with
 * free(), may be NULL when *nfound is 0) lists them. `heads` holds KITH_HASH_BYTES per entry
 * of `vv`. Returns how many origins' heads differ, forks recorded before included (0: the
 * two agree on every seq both hold), or an error. */
int kith__heads_check(kith_replica *r, uint64_t peer, const kith_vv *vv, const uint8_t *heads,
                      kith_fork **found, size_t *nfound);

/* ---- store/group.c: the replica's device group (spec/groups.md GRP-13 ..) ------------- */

/* The replica's group id and record digest (GRP-12); zeros and 0 when it is in no group.
 * Returns 1 when in a group, 0 when not, or an error. */
int kith__group_summary(kith_replica *r, MDB_txn *txn, uint8_t gid[16], uint8_t digest[32]);
/* May the holder of pk connect, and its ops be taken (relayed by anyone)? 1 when pk is this
 * replica, a trusted peer (kith_trust_add, not forked), or a live member of the group; 0
 * otherwise (a removed member: 0, even when its key is also trusted pairwise). Errors
 * negative. */
int kith__admits_key(kith_replica *r, MDB_txn *txn, const uint8_t pk[32]);
/* Is pk a removed member? 1 with its cut-off (the last seq of its ops that stays accepted)
 * in *cutoff, 0 when not removed, or an error. */
int kith__group_cutoff_of(kith_replica *r, MDB_txn *txn, const uint8_t pk[32], uint64_t *cutoff);
/* Every removed member's origin and cut-off (GRP-10; `after` is the cut-off), by origin:
 * what a replica keeps of each (GRP-21). *out is released with free() (NULL when *n is 0).
 * 0 or an error. */
int kith__group_cutoffs(kith_replica *r, MDB_txn *txn, struct kith__aside **out, size_t *n);
/* Keep the heads of `origin` that the valid CUTHEAD records held carry (GRP-25): each at a seq
 * at or below `upto` where a logged commit of it ends with the same chain goes into sigs, as
 * a received head would. 0 or an error (MDB_MAP_FULL comes back as itself). */
int kith__group_cutheads_keep(kith_replica *r, MDB_txn *txn, uint64_t origin, uint64_t upto);
/* Take signed records received from a peer (in a batch, a bundle, a join). Records of
 * another group than ours, or any when we are in no group, are skipped (0, not an error).
 * A record that is malformed, badly signed, or signed by a non-member (fold status
 * MALFORMED, BADSIG, NOTMEMBER, BADPARENT) makes the whole call fail with a clear
 * kith_errmsg (KITH_EMALFORMED / KITH_EBADSIG / KITH_EUNTRUSTED) and store nothing;
 * WAITING records are kept (their parents may come later), and so are records of a critical
 * kind this kith does not know (GRP-3). *added (may be NULL) gets the count of new records
 * stored. Written in `txn` (a write txn the caller commits). */
int kith__group_absorb(kith_replica *r, MDB_txn *txn, const uint8_t *const *recs,
                       const size_t *lens, size_t n, size_t *added);
/* Every record held (valid or waiting), for a peer or a bundle, in hash order. `emit`'s views
 * are valid until it returns; a negative return from it stops the walk and is returned. */
int kith__group_collect(kith_replica *r, MDB_txn *txn,
                        int (*emit)(void *ctx, const uint8_t *rec, size_t len), void *ctx);
/* Admit a joiner: sign and store an ADD of pk with its device name, in txn. KITH_EINVAL (not
 * in a group, this replica not a live member, a bad name), KITH_EEXIST (pk is a member
 * already, or was removed: a removed key never returns), or an error. */
int kith__group_add_member(kith_replica *r, MDB_txn *txn, const uint8_t pk[32], const char *name,
                           size_t name_len);
/* Join: a replica in no group adopts the group of these records (they must hold a live
 * ADD of this replica's key in group gid), in txn. KITH_EEXIST with a clear message when
 * already in another group that has other members (a group of this replica alone is left:
 * its records are dropped); KITH_EUNTRUSTED when the records do not admit this replica;
 * the errors of kith__group_absorb for bad records. */
int kith__group_adopt(kith_replica *r, MDB_txn *txn, const uint8_t gid[16],
                      const uint8_t *const *recs, const size_t *lens, size_t n);

/* The key of `origin` when its ops may be taken: this replica, a trusted unforked peer, or
 * a member of the group (live or removed). *cutoff gets the last seq of its ops to take:
 * UINT64_MAX, or a removed member's cut-off (GRP-10). KITH_EUNTRUSTED otherwise. */
int kith__origin_key(kith_replica *r, MDB_txn *txn, uint64_t origin, uint8_t pk[KITH_PUBKEY_BYTES],
                     uint64_t *cutoff);
/* A writable open that made the `groups` database in an existing replica: when it trusts
 * peers, found a group and add their keys (GRP-17). 0 or an error. */
int kith__group_upgrade(kith_replica *r, MDB_txn *txn);
/* A local write: KITH_EUNTRUSTED (kith_errmsg says why) when this replica was removed from
 * its group, else 0, or an error (GRP-16). */
int kith__group_refuse_write(kith_replica *r, MDB_txn *txn);
/* The group as kith_group_get tells it, read in `txn` (store/devices.c). */
int kith__group_info(kith_replica *r, MDB_txn *txn, kith_group_info *out);
/* Release the cached fold (kith_close). */
void kith__group_release(kith_replica *r);
/* Run fn with the fold current in `txn` (fold and gid NULL: in no group) under the handle's
 * group lock: fn must call none of the functions above. Returns fn's code, or an error. */
int kith__group_with(kith_replica *r, MDB_txn *txn,
                     int (*fn)(void *ctx, const struct kith__group *fold,
                               const uint8_t gid[KITH__GROUP_ID_BYTES]),
                     void *ctx);
/* Sign `rec` with this replica's key and store it, in txn: a FOUND (the replica must be in no
 * group; it is in the new one after) or a record of the current group, whose parents are
 * the fold's heads (author, group, time and parents are filled here). hash (may be NULL)
 * gets the record's hash. 0, KITH_EINVAL (in no group), -EACCES (no key), or an error. */
int kith__group_sign(kith_replica *r, MDB_txn *txn, struct kith__group_rec *rec,
                     uint8_t hash[KITH_HASH_BYTES]);

/* ---- store/proofs.c: fork proofs held, made and received (data-model.md FORK-5..9) ---- */

/* Every proof held, for a peer or a bundle, by name: emit gets a view into the map, valid
 * until txn ends or writes, and stops the walk by returning < 0 (which this returns). 0 or
 * an error. */
int kith__proof_collect(kith_replica *r, MDB_txn *txn,
                        int (*emit)(void *ctx, const uint8_t *proof, size_t len), void *ctx);
/* Take proofs received: each is verified from its own bytes and O's key in it (and that
 * key must be one this replica admits: kith__origin_key's rule for O's id, the one a batch's
 * run of O meets); a proof that
 * does not verify fails the call with a clear kith_errmsg, storing nothing; a valid new
 * one is stored and records the fork of its origin (forks DB, as evidence, source
 * "proof") if none is recorded. *added = new proofs. Written in txn; MDB_MAP_FULL comes
 * back as itself (the caller grows the map and runs its transaction again). Every proof is
 * checked before the first write, so a refusal writes nothing; after any error the caller
 * aborts txn, as after any failed write. */
int kith__proof_absorb(kith_replica *r, MDB_txn *txn, const uint8_t *const *proofs,
                       const size_t *lens, size_t n, size_t *added);
/* Batch `b` carries a run of `origin`, which is forked here and whose run is set aside: when
 * no proof of the origin is held and the run parts from this replica's log after a commit
 * both hold, with a head the origin signed on each side (FORK-8), make the proof and keep
 * it, in txn. 1 when kept, 0 when the evidence does not suffice (nothing written), or an
 * error (MDB_MAP_FULL as itself). */
int kith__proof_from_batch(kith_replica *r, MDB_txn *txn, const struct kith__batch *b,
                           uint64_t origin);
/* Fill f's proof fields (has_proof, proof_seq, winner, loser, holds) from the first proof of
 * f->origin by name (the lowest c, then the lowest winner), if one is held. 0 or an error. */
int kith__proof_describe(kith_replica *r, MDB_txn *txn, kith_fork *f);
/* The digest of the proofs held (spec/encoding.md §10 "Digest"; protocol 5's pdigest), in a
 * read transaction of its own: BLAKE2b-256 over each proof in name order as name (80) |
 * length (8, BE) | bytes. 1 with it in out, 0 when none is held (out zeros), or an error. */
int kith__proof_digest(kith_replica *r, uint8_t out[KITH_HASH_BYTES]);

/* ---- store/settle.c: the forks this replica settles (data-model.md FORK-10) ------------ */

/* A fork of another origin that a proof held here settles: the history kept is the proof's
 * winner; `after` is the last seq both histories share. */
struct kith__settled {
    uint64_t origin;
    uint64_t after;
    uint8_t keep[KITH_HASH_BYTES]; /* the kept history's chain hash after its first commit */
    bool aside; /* this replica holds another history after `after`: it goes to the journal */
};

/* Every fork settled by the proofs held (not this replica's own origin's: FORK-10). *out is
 * released with free() (NULL when *n is 0). 0 or an error. */
int kith__settled_read(kith_replica *r, MDB_txn *txn, struct kith__settled **out, size_t *n);
const struct kith__settled *kith__settled_find(const struct kith__settled *list, size_t n,
                                               uint64_t origin);

/* ---- store/invite.c: invites handed out, and where the daemon listens (D-17) ----------- */

/* Keep a new invite (secret, expiry) in meta "invites". 0, KITH_EBUSY (64 open or recent),
 * KITH_EREADONLY, or an error. */
int kith__invite_put(kith_replica *r, const uint8_t secret[16], int64_t expiry_ms);
/* Is some invite unused and unexpired at now_ms? (false also when it cannot be read) */
bool kith__invite_open(kith_replica *r, int64_t now_ms);
/* A JOIN arrived: find the invite whose secret makes `mac` (core/invite.h kith__invite_mac),
 * and in one write transaction mark it used and add `joiner` to the group with its name
 * (kith__group_add_member). 0, or KITH_EUNTRUSTED (no invite has that secret, it was used,
 * it expired), or the errors of kith__group_add_member; `why` gets a sentence for the
 * joiner either way on failure. */
int kith__invite_redeem(kith_replica *r, const uint8_t joiner[KITH_PUBKEY_BYTES], const char *name,
                        size_t name_len, const uint8_t mac[KITH_HASH_BYTES], int64_t now_ms,
                        char *why, size_t why_cap);
/* kith__group_adopt in a write transaction of its own (kith_join). */
int kith__join_adopt(kith_replica *r, const uint8_t gid[16], const uint8_t *const *recs,
                     const size_t *lens, size_t n);
/* Record the endpoint the daemon bound (written only when it changed). 0 or an error. */
int kith__listen_record(kith_replica *r, const char *endpoint);
/* The endpoint recorded, into out (cap bytes, NUL-terminated). 0, KITH_ENOTFOUND (never
 * recorded), KITH_ETOOSMALL, or an error. */
int kith__listen_get(kith_replica *r, char *out, size_t cap);

/* ---- store/restored.c: a replica restored from a copy (data-model.md RESTORE-*) ------- */

/* The mark in meta "restored". */
struct kith__restored {
    uint64_t seq;        /* the highest seq of our own origin a peer showed */
    uint64_t seen_from;  /* that peer */
    int64_t recorded_ms; /* when it was marked */
    uint64_t have;       /* our own origin's `have` then */
    bool accepted;       /* kith_restored_accept: writes go on all the same */
};

/* Read the mark: 1 with *out, 0 when there is none, or an error. */
int kith__restored_get(kith_replica *r, MDB_txn *txn, struct kith__restored *out);
/* A peer showed that our own origin reaches `seq`: when that is beyond what we hold and
 * beyond the mark (if any), mark the replica restored, in a write transaction of its own
 * taken only then (never on a read-only handle). 1 when marked now, 2 when `seq` is beyond
 * what we hold but the mark says so already (or the handle is read-only), 0 when `seq` is not
 * beyond what we hold, or an error. */
int kith__restored_note(kith_replica *r, uint64_t peer, uint64_t seq);
/* A peer that holds our own origin up to `peer_seq` finished sending and we hold less: it
 * kept our origin's ops back, which it does only for a forked origin, so our history differs
 * from its (RESTORE-4). Record a fork of our own origin at our `have` (returned in *have),
 * seen from `peer`, the other history's head unknown (zeros), unless one is recorded. 1 when
 * recorded, 0 when not (nothing missing, have 0, forked already, read-only), or an error. */
int kith__restored_fork(kith_replica *r, uint64_t peer, uint64_t peer_seq, uint64_t *have);
/* Our own origin's `have` is now `have` in `txn`: clear the mark when it reaches its seq.
 * 0 or an error. */
int kith__restored_settle(kith_replica *r, MDB_txn *txn, uint64_t have);
/* A local write with our own `have` at `have`: KITH_ERESTORED (kith_errmsg says how to go
 * on) when the replica is marked, not accepted, and `have` is below the mark. Else 0 (or 1:
 * marked but allowed), or an error. */
int kith__restored_refuse(kith_replica *r, MDB_txn *txn, uint64_t have);

/* ---- store/holds.c -------------------------------------------------------------------- */

/* The held ops of every origin (kith_holds_get), read in `txn` with the wall clock at
 * `now_ms`. *out is released with free(). 0, KITH_ECORRUPT, KITH_ENOMEM or an LMDB error. */
int kith__holds_read(kith_replica *r, MDB_txn *txn, int64_t now_ms, kith_hold **out, size_t *n);

/* ---- event log (store/txn.c) ---------------------------------------------------------- */

/* `collection`: an interned name (kith__name_intern). */
int kith__event_doc(struct kith__event_log *ev, const char *collection, kith_dot doc);
int kith__event_conflict(struct kith__event_log *ev, uint64_t conflict_id);
/* Call r's observers for what `ev` gathered, then clear it. */
void kith__event_report(kith_replica *r, struct kith__event_log *ev, int source);
void kith__event_free(struct kith__event_log *ev);

/* ---- index keys (store/apply.c) ------------------------------------------------------- */

/* Maintain the indexes of `plans` for a register change of (coll, doc, field) from old to new
 * value. Reads the document's other registers from txn as needed. */
int kith__index_update(kith_replica *r, MDB_txn *txn, const struct kith__sschema *ss, int coll,
                       kith_dot doc, int field, const kith_value *old_v, const kith_value *new_v);
/* Add the entries of index `p` for every document of its collection (a new index). */
int kith__index_build(kith_replica *r, MDB_txn *txn, const struct kith__index_plan *p);

/* ---- store/files.c and store/rekey.c: taking a new key (data-model.md FORK-11..14) ---- */

/* A re-key writes the new secret key beside `key` first, as key.next.<16 hex of its id>
 * (spec/storage.md STO-32): meta names the new key once the switch commits, and the side
 * file is renamed over `key` after that. */
#define KITH__KEY_NEXT_PREFIX "key.next."
#define KITH__KEY_NEXT_NAME_BYTES 26 /* "key.next." + 16 hex + NUL */

/* The side file's name for the key of replica id `id`. */
void kith__key_next_name(uint64_t id, char out[KITH__KEY_NEXT_NAME_BYTES]);
/* Write sk to dir/key.next.<id> (mode 0600, truncating a leftover), fsync it and the
 * directory. 0 or -errno; no file on failure. */
int kith__key_write_next(const char *dir, uint64_t id, const uint8_t sk[64]);
/* Read dir/key.next.<id>: kith__key_read's codes (KITH_ECORRUPT when absent). */
int kith__key_read_next(const char *dir, uint64_t id, uint8_t sk[64]);
/* Rename dir/key.next.<id> over dir/key and fsync the directory. 0, KITH_ENOTFOUND (no such
 * side file: another handle renamed it), or -errno. */
int kith__key_adopt_next(const char *dir, uint64_t id);
/* Unlink every key.next.* in dir but the one of `keep` (leftovers of re-keys a crash cut
 * short before they committed). Call only inside a write transaction. 0 or -errno. */
int kith__key_next_sweep(const char *dir, uint64_t keep);
/* Open dir/key for writing: a descriptor, or -errno. kith__key_wipe zeroes the 64 bytes
 * through it, fsyncs and closes it (0 or -errno): the old key file is wiped through the
 * inode opened before the switch, whichever name it has by then. */
int kith__key_wipe_open(const char *dir);
int kith__key_wipe(int fd);

/* The handle's identity (id, pk, secret key) as meta names it in `txn`: when another handle
 * or process re-keyed the replica, reload the public key from meta and the secret key from
 * `key` or the re-key's side file (renaming it into place when txn is a write txn and the
 * handle writable). Called by kith__mdb_begin for every write transaction: one meta read
 * when nothing changed. 0 or an error. */
int kith__ident_sync(kith_replica *r, MDB_txn *txn, bool write);

/* The last re-key, meta "rekeyed" (store/rekey.c): 1 with *out, 0 when never, or an error. */
int kith__rekey_read(kith_replica *r, MDB_txn *txn, kith_rekey_info *out);
/* After a batch that learnt a fork proof (kith_batch_apply's settle step): re-key when this
 * replica's own origin lost a fork, it is in a group and its key can be read, and finish a
 * re-key whose re-issue is pending. 0 (also when nothing was to do), or an error. */
int kith__rekey_auto(kith_replica *r);
/* Finish a re-key cut short (a writable open): set the losing history aside and re-issue it.
 * 0 or an error. */
int kith__rekey_resume(kith_replica *r);

/* ---- void dots (store/apply.c) ------------------------------------------------------ */

/* Keep tombstones of void dots through this applier (spec/data-model.md FORK-15..18): for an
 * applier whose commits may name a void dot, i.e. on a replica that settled a fork (a batch
 * apply with a settled list; verify's rebuild). Reads the voids database's size. 0,
 * KITH_EREADONLY (no voids database), or an error. */
int kith__apply_voids(struct kith__applier *a);

/* ---- store/forks.c: what protocol 5 compares and asks for (spec/protocol.md NET-33) --- */

/* An origin whose chain head a peer named differs from this replica's at that seq. */
struct kith__head_diff {
    uint64_t origin;
    uint64_t seq;   /* the peer's seq, at or below our `have` */
    bool has_proof; /* a proof of the origin is held here already */
};

/* Compare the peer's heads (one per vv entry) with this replica's log at the seqs both hold,
 * recording nothing: the origins whose heads differ, in *out (released with free(), NULL when
 * *n is 0). 0 or an error. */
int kith__heads_differ(kith_replica *r, const kith_vv *vv, const uint8_t *heads,
                       struct kith__head_diff **out, size_t *n);
/* Up to `max` chain hashes of `origin` from this replica's log, at commit ends at or below
 * from, from - 1, from - 3, from - 7, ... (strictly descending, each >= 1): seqs[i] and
 * chains[32 * i]. 0 or an error; *n 0 when nothing of the origin is held at or below from. */
int kith__chain_samples(kith_replica *r, uint64_t origin, uint64_t from, uint64_t *seqs,
                        uint8_t *chains, size_t max, size_t *n);
/* The highest seqs[i] at which this replica's chain of `origin` is chains[32 * i] (seqs
 * descending), in *after; 0 when none is. 0 or an error. */
int kith__chain_shared(kith_replica *r, uint64_t origin, const uint64_t *seqs,
                       const uint8_t *chains, size_t n, uint64_t *after);

/* ---- store/forks.c: kith_on_fork ----------------------------------------------------- */

/* A write of this thread's transaction made a fork record or a proof of `origin` new (called
 * by kith__fork_put and proofs.c); told after the commit by kith__fork_notes_end. */
void kith__fork_note(kith_replica *r, uint64_t origin);
/* The write transaction that noted forks ended: when `committed`, call r's kith_on_fork for
 * each origin noted, as kith_forks_get shows it now (outside any transaction); else forget
 * them. Returns how many were told (also with no callback set). Every path that may write a
 * fork record or a proof calls it once its transaction ended. */
size_t kith__fork_notes_end(kith_replica *r, bool committed);
/* The origins the last kith__fork_notes_end of this thread on r told (for the daemon's log);
 * valid until this thread's next call of it. */
const uint64_t *kith__fork_notes_told(const kith_replica *r, size_t *n);

/* ---- store/replica.c: the identity, whole ------------------------------------------- */

/* A consistent copy of the handle's identity (its id, and its secret key when has_sk): a
 * re-key may switch it while this thread reads (D-22). Wipe `sk` after use. */
void kith__ident_copy(kith_replica *r, uint64_t *id, uint8_t sk[64], bool *has_sk);
/* Set the handle's identity, under the lock kith__ident_copy takes. sk NULL: not readable. */
void kith__ident_set(kith_replica *r, uint64_t id, const uint8_t pk[KITH_PUBKEY_BYTES],
                     const uint8_t *sk);

#endif /* KITH_STORE_H */
