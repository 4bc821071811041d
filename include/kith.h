/*
 * kith.h — the public face of kith, a replication engine for offline-first apps.
 *
 * A replica is a directory holding one LMDB environment and an Ed25519 key pair. The app
 * writes to it locally and at once; replicas exchange signed batches of ops (as bundle files,
 * or over the network with kith_serve) and converge: concurrent edits merge deterministically,
 * and the app is told when one was overruled. spec/data-model.md, spec/encoding.md and
 * spec/protocol.md describe the model and the formats this header refers to.
 *
 * Threads and processes. A kith_replica may be shared by threads. A kith_txn belongs to the
 * thread that began it, and a thread has at most one transaction open at a time. Write
 * transactions are serialised (as LMDB's are): kith_txn_begin with KITH_TXN_WRITE waits for
 * the writer before it. Several processes may open one replica at once (the CLI while a daemon
 * runs). Do not use a handle after fork(); open the replica again in the child.
 *
 * Errors. Every call that can fail returns 0 or a negative code: one of KITH_E* below, or
 * -errno from the OS. kith_strerror() explains either; kith_errmsg() gives the detail of the
 * calling thread's last failure on a replica (which field, which origin).
 *
 * Ownership. Inputs are borrowed; kith keeps copies. Outputs are one of: a view into the
 * replica, valid until the transaction it was read in ends (kith_value strings, say); a
 * caller-owned struct; or an allocation released with kith_free() (bundles, exports, status).
 */
#ifndef KITH_H
#define KITH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KITH_API __attribute__((visibility("default")))
#define KITH_NODISCARD __attribute__((warn_unused_result))
#else
#define KITH_API
#define KITH_NODISCARD
#endif

#define KITH_VERSION_MAJOR 0
#define KITH_VERSION_MINOR 5
#define KITH_VERSION_PATCH 0
#define KITH_VERSION_STRING "0.5.0"

/* The library's version as "MAJOR.MINOR.PATCH" (may differ from the header's). */
KITH_API const char *kith_version(void);

/* ---------------------------------------------------------------------------------------
 * Errors: one table, expanded into the enum, kith_strerror() and kith_errname().
 * Numbers are pinned and never reused; they sit below -9000, where no errno reaches.
 */
#define KITH_ERRNO_MAP(X)                                                                          \
    X(KITH_EINVAL, -9001, "invalid argument")                                                      \
    X(KITH_ENOTFOUND, -9002, "not found")                                                          \
    X(KITH_ECORRUPT, -9003, "replica or data is damaged")                                          \
    X(KITH_EBADSIG, -9004, "signature does not verify")                                            \
    X(KITH_EUNTRUSTED, -9005, "origin is not trusted")                                             \
    X(KITH_ESCHEMA, -9006, "value does not fit the schema")                                        \
    X(KITH_EVERSION, -9007, "made by an incompatible kith version")                                \
    X(KITH_ETOOSMALL, -9008, "buffer too small")                                                   \
    X(KITH_ETOOBIG, -9009, "message or value too large")                                           \
    X(KITH_EMALFORMED, -9010, "malformed input")                                                   \
    X(KITH_EGAP, -9011, "ops are missing before this range")                                       \
    X(KITH_EFORK, -9012, "origin has signed two histories")                                        \
    X(KITH_EBADTXN, -9013, "transaction failed earlier, or this thread has one open already")      \
    X(KITH_EEXIST, -9014, "already exists")                                                        \
    X(KITH_EREADONLY, -9015, "transaction is read-only")                                           \
    X(KITH_EBUSY, -9016, "replica changed underneath; retry")                                      \
    X(KITH_ETIMEDOUT, -9017, "peer did not answer in time")                                        \
    X(KITH_EPROTO, -9018, "peer broke the protocol")                                               \
    X(KITH_ENOMEM, -9019, "out of memory")                                                         \
    X(KITH_ECLOSED, -9020, "interrupted by a stop request")                                        \
    X(KITH_ECANCELED, -9021, "cancelled by the caller")                                            \
    X(KITH_ERESTORED, -9022,                                                                       \
      "replica was restored from a copy: its newer ops are elsewhere; sync first")

enum kith_error {

#define KITH__ERR_ENUM(name, num, text) name = (num),
    KITH_ERRNO_MAP(KITH__ERR_ENUM)
#undef KITH__ERR_ENUM
};

/* A short sentence for any code this library returns, kith's or -errno; never NULL. */
KITH_API const char *kith_strerror(int rc);
/* The code's name ("KITH_EBADSIG", "EACCES"); never NULL. */
KITH_API const char *kith_errname(int rc);

/* ---------------------------------------------------------------------------------------
 * Identity and sizes.
 */
#define KITH_ID_BYTES 8      /* replica id: first 8 bytes of BLAKE2b(public key), a u64 */
#define KITH_PUBKEY_BYTES 32 /* Ed25519 public key */
#define KITH_DOCID_BYTES 16  /* document id: the dot that created it (origin, seq), big-endian */
#define KITH_HASH_BYTES 32   /* BLAKE2b-256 chain hash */
#define KITH_SIG_BYTES 64    /* Ed25519 signature */
#define KITH_ID_HEX 16       /* characters of a replica id in hex, without the NUL */
#define KITH_DOCID_HEX 32    /* characters of a document id in hex, without the NUL */

KITH_API size_t kith_docid_bytes(void);
KITH_API size_t kith_pubkey_bytes(void);

/* A dot names one op: the replica that made it and its sequence number there (1, 2, 3 …). */
typedef struct kith_dot {
    uint64_t origin;
    uint64_t seq;
} kith_dot;

/* A document id is the dot of the op that created the document. */
typedef struct kith_docid {
    uint8_t bytes[KITH_DOCID_BYTES];
} kith_docid;

/* Document id <-> 32 lowercase hex characters. parse returns KITH_EINVAL on anything else. */
KITH_API void kith_docid_format(const kith_docid *id, char out[KITH_DOCID_HEX + 1]);
KITH_API KITH_NODISCARD int kith_docid_parse(const char *hex, kith_docid *out);

/* ---------------------------------------------------------------------------------------
 * Values and the schema.
 */
typedef enum kith_type {
    KITH_TYPE_NULL = 0,   /* no value: a cleared field */
    KITH_TYPE_STRING = 1, /* UTF-8 text without NUL */
    KITH_TYPE_INT = 2,    /* signed 64-bit integer */
    KITH_TYPE_TIME = 3,   /* milliseconds since 1970-01-01T00:00:00Z, shown as ISO 8601 UTC */
    KITH_TYPE_BOOL = 4,
    KITH_TYPE_BYTES = 5,
    KITH_TYPE_REF = 6,  /* the id of a document in a named collection */
    KITH_TYPE_DATE = 7, /* a calendar date, "YYYY-MM-DD" (or "--MM-DD" without a year) */
    KITH_TYPE_ENUM = 8, /* a string from a fixed list */
    KITH_TYPE_SET = 9   /* a set of strings (an add-wins OR-set); not a kith_value type */
} kith_type;

/*
 * One value. Strings and bytes point at memory the caller owns when writing, and into the
 * replica when reading (valid until that transaction ends). Strings are not NUL-terminated
 * when read: use len.
 */
typedef struct kith_value {
    kith_type type;

    union {
        int64_t i;      /* INT, and TIME in milliseconds */
        bool b;         /* BOOL */
        kith_docid ref; /* REF */

        struct {
            const char *ptr;
            size_t len;
        } s; /* STRING, DATE, ENUM, BYTES */
    } u;
} kith_value;

/*
 * Parse `text` as a value of the named field's type, as the CLI does: ISO 8601 for times
 * ("2026-11-25T18:00:00Z", "2026-11-25T18:00:00.250+01:00", "2026-11-25" for midnight UTC),
 * decimal for integers, true/false for booleans, hex for references. On success, string-like
 * values point into `text`. Errors: KITH_ENOTFOUND (no such collection or field), KITH_ESCHEMA
 * (text does not fit; kith_errmsg-like detail goes to `why`, a caller buffer, may be NULL).
 */
KITH_API KITH_NODISCARD int kith_value_parse(const char *collection, const char *field,
                                             const char *text, kith_value *out, char *why,
                                             size_t why_cap);

/* Format a time as ISO 8601 UTC with milliseconds: "2026-11-25T18:00:00.000Z". */
KITH_API void kith_time_format(int64_t ms, char out[32]);

/* Parse an ISO 8601 time as kith_value_parse reads one ("2026-11-25T18:00:00Z",
 * "2026-11-25T18:00:00.250+01:00", "2026-11-25" for midnight UTC) into milliseconds since
 * 1970-01-01T00:00:00Z. 0, or KITH_EINVAL for anything else. */
KITH_API KITH_NODISCARD int kith_time_parse(const char *text, int64_t *ms);

/* Format a span of time for people, in its two largest units: "2 h 13 min", "3 d 4 h",
 * "45 s", "250 ms"; a negative span gets a leading "-". */
KITH_API void kith_duration_format(int64_t ms, char out[32]);

/* The schema, as a read-only table: collections and their fields, in a stable order. */
typedef struct kith_field_def {
    const char *name;
    kith_type type;
    bool required;
    const char *ref_collection;     /* REF, and SET of references: the collection referred to */
    const char *const *enum_values; /* ENUM: NULL-terminated list */
    size_t max_len;                 /* STRING/BYTES/SET elements: the longest accepted, in bytes */
    /* Appended in 0.2.0 (zero: as before): */
    int crdt;              /* kith_crdt; KITH_TYPE_SET above means a set of strings (or of
                              refs with ref_collection) whatever this says */
    bool email;            /* STRING: one '@' with text on both sides */
    bool has_min, has_max; /* INT: bounds */
    int64_t min, max;
} kith_field_def;

typedef struct kith_collection_def {
    const char *name;
    size_t nfields;
    const kith_field_def *fields;
    /* Appended in 0.2.0: */
    size_t nindexes;
    const struct kith_index_def *indexes;
} kith_collection_def;

/* How concurrent writes to a field merge (spec/data-model.md). */
typedef enum kith_crdt {
    KITH_CRDT_LWW = 0,     /* a register: the last write wins, the loser is a conflict */
    KITH_CRDT_SET = 1,     /* an add-wins set of elements */
    KITH_CRDT_COUNTER = 2, /* concurrent increments add up (a PN-counter); integers only */
    KITH_CRDT_FLAG = 3     /* an enable-wins flag: concurrent set and clear, set wins;
                              booleans only */
} kith_crdt;

/* An ordered secondary index on one field or a pair (LWW fields), named in
 * kith_iter_index as "collection.index". */
typedef struct kith_index_def {
    const char *name;
    size_t nfields;            /* 1 or 2 */
    const char *const *fields; /* field names, in key order */
} kith_index_def;

/* Bytes kith allocated for the caller (bundles, exports, schema documents): kith_free(data). */
typedef struct kith_buf {
    uint8_t *data;
    size_t len;
} kith_buf;

/* The built-in CRM schema (contacts, interactions, reminders) as the table above, with
 * KITH_TYPE_SET for its set fields. The pointer is static. */
KITH_API const kith_collection_def *kith_schema(size_t *ncollections);

/* The built-in CRM schema as a schema document (JSON, spec/data-model.md "Schema document"),
 * the one `kith` declares by default. Static. */
KITH_API const char *kith_schema_crm(void);

/* ---------------------------------------------------------------------------------------
 * Opening a replica.
 */
typedef struct kith_replica kith_replica;

enum kith_open_flags {
    KITH_CREATE = 1u << 0, /* create the replica and its key pair if the directory has none */
    KITH_NOSYNC = 1u << 1, /* do not fsync at commit (LMDB MDB_NOSYNC): faster, and a crash may
                              lose the last transactions, never corrupt the replica */
    KITH_RDONLY = 1u << 2  /* read only: write transactions fail with KITH_EREADONLY */
};

/*
 * Open the replica in directory `path`; with KITH_CREATE, create the directory, the LMDB
 * environment and an Ed25519 key pair (secret key in `path`/key, mode 0600) if absent.
 * Returns 0 and a new handle in *out, which the caller closes with kith_close(); on failure
 * *out is NULL and there is nothing to close.
 * Errors: KITH_ENOTFOUND (no replica and no KITH_CREATE), KITH_ECORRUPT (not a kith replica),
 * KITH_EVERSION (made by a newer kith), or -errno (-EACCES, -ENOSPC).
 */
KITH_API KITH_NODISCARD int kith_open(const char *path, unsigned flags, kith_replica **out);

/* Close the replica. Takes NULL. No transaction of it may be open. */
KITH_API void kith_close(kith_replica *r);

/* Detail of this thread's last failed call on `r` (which field, which origin); "" if none.
 * Each thread has its own: another thread's failures never show here. A call that succeeds
 * does not clear it, so read it right after the failure; valid until this thread's next call
 * on `r`. With r NULL: why this thread's last kith_open failed ("replica is damaged:
 * data.mdb is N bytes, ..."), "" when it succeeded or has nothing to add to its error code. */
KITH_API const char *kith_errmsg(const kith_replica *r);

/* This replica's id, public key, and the directory it lives in. */
KITH_API uint64_t kith_replica_id(const kith_replica *r);
KITH_API void kith_replica_pubkey(const kith_replica *r, uint8_t out[KITH_PUBKEY_BYTES]);
KITH_API const char *kith_replica_path(const kith_replica *r);

/* The replica id that belongs to a public key (first 8 bytes of BLAKE2b, big-endian). */
KITH_API uint64_t kith_id_from_pubkey(const uint8_t pk[KITH_PUBKEY_BYTES]);

/* ---------------------------------------------------------------------------------------
 * The replica's schema: the collections, fields and indexes its app declared
 * (spec/data-model.md "Schema document"). A declaration governs local writes (a value is
 * checked against its field) and the indexes kept; it never decides what is accepted from a
 * peer: received ops carry their names and value types, and ops naming what this replica has
 * not declared are stored, relayed, exported and verified like any other, and become
 * queryable through indexes once declared. Declaring is local and idempotent: an app
 * declares its schema every time it opens the replica, as it would run a migration.
 */

/*
 * Declare or extend the schema from a schema document. New collections, fields and indexes
 * are added (an index is built at once from what the replica holds); a field declared again
 * keeps its type and kind and takes the new constraints. An incompatible document (a field
 * redeclared with another type or kind, an index with other fields) or a bad one is refused
 * whole: KITH_ESCHEMA with kith_errmsg naming the field and both declarations, and nothing
 * changes. Declaring what is declared already writes nothing. Errors: KITH_ESCHEMA,
 * KITH_ETOOBIG, KITH_EREADONLY, -errno.
 */
KITH_API KITH_NODISCARD int kith_schema_apply(kith_replica *r, const char *json, size_t len);

/* The same, from the C table (kith_collection_def, with indexes). */
KITH_API KITH_NODISCARD int kith_schema_declare(kith_replica *r, const kith_collection_def *colls,
                                                size_t ncollections);

/* The declared schema as canonical JSON (the document's shape plus "version"), released
 * with kith_free(out->data). A replica that declared nothing gives {"collections":{},...}. */
KITH_API KITH_NODISCARD int kith_schema_json(kith_replica *r, kith_buf *out);

/* The schema's version (how many times a declaration changed it; 0: nothing declared) and
 * its digest (BLAKE2b-256 of its canonical JSON without the version). Either may be NULL. */
KITH_API KITH_NODISCARD int kith_schema_info(kith_replica *r, uint64_t *version,
                                             uint8_t digest[KITH_HASH_BYTES]);

/* As kith_value_parse, for a field of this replica's schema. */
KITH_API KITH_NODISCARD int kith_value_parse_in(kith_replica *r, const char *collection,
                                                const char *field, const char *text,
                                                kith_value *out, char *why, size_t why_cap);

/* ---------------------------------------------------------------------------------------
 * Transactions. Every read and write happens in one. A write transaction becomes one commit:
 * a run of ops with consecutive seqs, one LMDB transaction, all or nothing. Reads in a write
 * transaction see its own writes.
 */
typedef struct kith_txn kith_txn;

enum kith_txn_flags { KITH_TXN_READ = 0, KITH_TXN_WRITE = 1u << 0 };

/* Begin a transaction. Errors: KITH_EREADONLY (write on a read-only replica), KITH_EBADTXN
 * (this thread has a transaction open already, of this replica or another), -errno. */
KITH_API KITH_NODISCARD int kith_txn_begin(kith_replica *r, unsigned flags, kith_txn **out);

/*
 * Commit and free the transaction; *txn becomes NULL whether or not it succeeds. When this
 * returns 0 the commit is durable (unless KITH_NOSYNC) and observers have been called.
 * Errors: KITH_EBADTXN (a write in it failed), KITH_EBUSY, -errno (-ENOSPC, -EIO).
 */
KITH_API KITH_NODISCARD int kith_txn_commit(kith_txn **txn);

/* Abort and free; *txn becomes NULL. Takes NULL or a pointer to NULL. */
KITH_API void kith_txn_abort(kith_txn **txn);

/* ---------------------------------------------------------------------------------------
 * Documents and fields. Collections and fields are named as the replica's schema declares them
 * (writes need a declaration; reads also find what ops brought undeclared). A failed write
 * leaves the transaction able only to abort (KITH_EBADTXN afterwards), like LMDB's.
 */

/* Create a document; its id is returned at once (usable in the same transaction). */
KITH_API KITH_NODISCARD int kith_doc_create(kith_txn *t, const char *collection, kith_docid *out);

/* Delete a document (removes the membership dots this replica has seen). KITH_ENOTFOUND if
 * it does not exist. An edit made concurrently elsewhere keeps it alive (add wins). */
KITH_API KITH_NODISCARD int kith_doc_delete(kith_txn *t, const char *collection,
                                            const kith_docid *doc);

/* Does the document exist (is it a live member of its collection)? 1 yes, 0 no, or < 0. */
KITH_API KITH_NODISCARD int kith_doc_exists(kith_txn *t, const char *collection,
                                            const kith_docid *doc);

/*
 * Set a field (an LWW register) to `v`; KITH_TYPE_NULL clears it. The value is checked
 * against the schema first: KITH_ESCHEMA with kith_errmsg naming the field and the problem
 * (wrong type, not UTF-8, too long, required field cleared, unknown enum value, reference to
 * no document). KITH_ENOTFOUND if the document does not exist.
 */
KITH_API KITH_NODISCARD int kith_field_set(kith_txn *t, const char *collection,
                                           const kith_docid *doc, const char *field,
                                           const kith_value *v);

/* Read a field. KITH_TYPE_NULL if it was never set or was cleared; a counter reads as its sum
 * (an INT), a flag as a BOOL; a set field is KITH_ESCHEMA (use kith_iter_set). A field the
 * schema does not declare reads as whatever ops wrote to it. View valid until the
 * transaction ends. KITH_ENOTFOUND for an unknown collection/field or a missing document. */
KITH_API KITH_NODISCARD int kith_field_get(kith_txn *t, const char *collection,
                                           const kith_docid *doc, const char *field,
                                           kith_value *out);

/* Add or remove one element of a set field (an add-wins OR-set). Removing an absent element
 * is not an error and writes nothing. */
KITH_API KITH_NODISCARD int kith_set_add(kith_txn *t, const char *collection, const kith_docid *doc,
                                         const char *field, const char *elem, size_t len);
KITH_API KITH_NODISCARD int kith_set_remove(kith_txn *t, const char *collection,
                                            const kith_docid *doc, const char *field,
                                            const char *elem, size_t len);

/* Add `delta` (negative to subtract) to a counter field. The counter reads, through
 * kith_field_get, as a KITH_TYPE_INT: the sum of every increment from every replica. */
KITH_API KITH_NODISCARD int kith_counter_add(kith_txn *t, const char *collection,
                                             const kith_docid *doc, const char *field,
                                             int64_t delta);

/* Set or clear a flag field; it reads as a KITH_TYPE_BOOL. A set concurrent with a clear
 * wins. Clearing a clear flag writes nothing. */
KITH_API KITH_NODISCARD int kith_flag_set(kith_txn *t, const char *collection,
                                          const kith_docid *doc, const char *field, bool on);

/* ---------------------------------------------------------------------------------------
 * Iteration. An iterator lives inside its transaction and must be closed before it ends.
 */
typedef struct kith_iter kith_iter;

/* Every live document of a collection (declared, or brought by ops), in id order. */
KITH_API KITH_NODISCARD int kith_iter_docs(kith_txn *t, const char *collection, kith_iter **out);

/*
 * Documents through a declared index, in index order; `index` is "collection.index" (the
 * built-in schema's: "contacts.name" by name, "interactions.contact" by contact then time
 * `at`, "reminders.due" by due time). `eq` (may be NULL) fixes the first field of a two-field
 * index (the contact); `lo` and `hi` (may be NULL: open) bound the last field, lo inclusive,
 * hi exclusive, each of that field's type (a TIME and an INT bound each other). Errors:
 * KITH_ENOTFOUND (no such index declared), KITH_EINVAL (a bound of another type).
 */
KITH_API KITH_NODISCARD int kith_iter_index(kith_txn *t, const char *index, const kith_value *eq,
                                            const kith_value *lo, const kith_value *hi,
                                            kith_iter **out);

/* The set elements of one set field, in byte order. Each element's bytes are a view. */
KITH_API KITH_NODISCARD int kith_iter_set(kith_txn *t, const char *collection,
                                          const kith_docid *doc, const char *field,
                                          kith_iter **out);

/* One field of a document as kith_iter_fields gives it: every field the document holds a
 * value for, declared or not, by name. A set field gives KITH_TYPE_SET as its value's type
 * (read its elements with kith_iter_set); a counter an INT, a flag a BOOL. */
typedef struct kith_field_entry {
    const char *name; /* valid until the transaction ends */
    int crdt;         /* kith_crdt */
    kith_value value;
} kith_field_entry;

/* The fields of one document, by name. */
KITH_API KITH_NODISCARD int kith_iter_fields(kith_txn *t, const char *collection,
                                             const kith_docid *doc, kith_iter **out);
KITH_API KITH_NODISCARD int kith_iter_next_field(kith_iter *it, kith_field_entry *out);

/* Next document id (docs, index) or element (set, into elem/len). 0, KITH_ENOTFOUND at the
 * end, or another error. */
KITH_API KITH_NODISCARD int kith_iter_next(kith_iter *it, kith_docid *doc);
KITH_API KITH_NODISCARD int kith_iter_next_elem(kith_iter *it, const char **elem, size_t *len);
KITH_API void kith_iter_close(kith_iter *it);

/* ---------------------------------------------------------------------------------------
 * Conflicts: a concurrent write to one field that lost. Recorded on every replica that sees
 * both writes (a causal overwrite is not a conflict), kept until resolved.
 */
typedef struct kith_conflict {
    uint64_t id;            /* local number of the record, for get/resolve */
    const char *collection; /* valid while the replica is open */
    kith_docid doc;
    const char *field; /* valid while the replica is open; "" when a delete was overruled by a
                          concurrent edit (the document stayed alive) */
    kith_dot winner_dot, loser_dot;
    uint64_t winner_hlc, loser_hlc;
    kith_value winner, loser; /* views valid until the transaction ends */
    int64_t recorded_ms;      /* when this replica recorded it */
    bool resolved;
} kith_conflict;

KITH_API KITH_NODISCARD int kith_iter_conflicts(kith_txn *t, bool include_resolved,
                                                kith_iter **out);
KITH_API KITH_NODISCARD int kith_iter_next_conflict(kith_iter *it, kith_conflict *out);
KITH_API KITH_NODISCARD int kith_conflict_get(kith_txn *t, uint64_t id, kith_conflict *out);

/* Resolve a conflict in a write transaction: with restore_loser, write the losing value as a
 * new ordinary write (which replicates); either way mark the record resolved (local). */
KITH_API KITH_NODISCARD int kith_conflict_resolve(kith_txn *t, uint64_t id, bool restore_loser);

/* ---------------------------------------------------------------------------------------
 * Observers, called in the thread that committed, after the commit is durable, outside any
 * LMDB transaction. A callback must not begin a write transaction on the same replica.
 */
enum kith_change_source {
    KITH_CHANGE_LOCAL = 1, /* a local commit through this handle */
    KITH_CHANGE_REMOTE = 2 /* a batch or bundle applied through this handle */
};

typedef struct kith_changed_doc {
    const char *collection; /* valid while the replica is open */
    kith_docid doc;
} kith_changed_doc;

typedef struct kith_change {
    int source;
    size_t ndocs;
    const kith_changed_doc *docs; /* each document once; valid during the call */
} kith_change;

typedef void (*kith_change_fn)(void *ctx, const kith_change *change);
/* The conflict's values are valid during the call only. */
typedef void (*kith_conflict_fn)(void *ctx, const kith_conflict *conflict);

/* Set (or clear, with NULLs) the observers of this handle. */
KITH_API void kith_observe(kith_replica *r, kith_change_fn on_change, kith_conflict_fn on_conflict,
                           void *ctx);

/* ---------------------------------------------------------------------------------------
 * The change feed: every commit applied to the replica, by any process, in the order this
 * replica applied it (spec/storage.md "The change feed"). Observers hear only their own
 * handle's commits; a feed also hears the daemon's applies and other processes' writes, and
 * resumes after a restart from a cursor the app keeps. It reads what the replica stores
 * already (the apply order and the log), so writers pay nothing for it.
 *
 * A position in the feed is a cursor: the apply-order counter of the last commit seen, 0
 * before the first. An event is one commit applied to the state (a local transaction, a
 * commit of a batch or bundle, a held commit that fell due), with what it touched: each
 * document once, whether it created or deleted it, and the fields it wrote. What a commit
 * touched is not what changed: a write that lost to a concurrent one (last writer wins) is
 * listed all the same. Re-read the documents an event names to see their current state.
 *
 * A kith_feed belongs to one thread at a time. It holds no LMDB transaction between calls
 * (a long-lived reader would keep LMDB from reusing pages): kith_feed_next reads a chunk of
 * events in one read transaction and hands them out one by one. Close every feed before
 * kith_close() of its replica. A feed works on a replica opened read-only, and on one of an
 * earlier format.
 */
typedef struct kith_feed kith_feed;

/* One document a commit touched. */
typedef struct kith_feed_doc {
    const char *collection; /* valid while the replica is open */
    kith_docid doc;
    bool created;              /* the commit added the document (DOC_ADD) */
    bool deleted;              /* the commit removed it (DOC_REMOVE) */
    size_t nfields;            /* 0 when the commit wrote no field of it */
    const char *const *fields; /* the fields it wrote, each once, sorted by name; the names
                                  live as long as the replica, the array until the next
                                  kith_feed_next or kith_feed_close */
} kith_feed_doc;

/* One commit, as the feed gives it. */
typedef struct kith_feed_event {
    uint64_t cursor;    /* this commit's place in the apply order: a feed opened with it
                           starts right after this commit */
    int source;         /* kith_change_source: LOCAL when this replica made the commit (in
                           any process), REMOTE when it came from another replica */
    uint64_t origin;    /* the replica that made it */
    uint64_t first_seq; /* its ops' seqs, first_seq..last_seq */
    uint64_t last_seq;
    uint64_t hlc;              /* its timestamp */
    size_t ndocs;              /* at least 1 */
    const kith_feed_doc *docs; /* each document once, in the order the commit first touched
                                  them; valid until the next kith_feed_next or
                                  kith_feed_close */
} kith_feed_event;

/* kith_feed_open: start at the end of the feed, with the next commit applied. */
#define KITH_FEED_NOW UINT64_MAX

/*
 * Open a feed of the commits applied after cursor `since` (0: from the first commit;
 * KITH_FEED_NOW: from the next one applied). Returns 0 and a new feed in *out, closed with
 * kith_feed_close(); on failure *out is NULL. Errors: KITH_EINVAL (`since` lies beyond the
 * last commit applied: a cursor of another replica, or of a copy this one was restored from;
 * kith_errmsg says both), -EMFILE or -ENOSPC (the process or user has no inotify instance or
 * watch left: fs.inotify.max_user_instances, max_user_watches), -errno, KITH_ECORRUPT.
 */
KITH_API KITH_NODISCARD int kith_feed_open(kith_replica *r, uint64_t since, kith_feed **out);

/*
 * The next event, into *out: 0, or KITH_ENOTFOUND when the feed has caught up (it never
 * blocks). Views in *out are valid until the next kith_feed_next or kith_feed_close. An event
 * is handed out once: kith_feed_cursor() is then its cursor.
 * Errors: KITH_ECORRUPT (a commit in the apply order is missing from the log or does not
 * decode; kith_errmsg says which), KITH_ENOMEM, -errno. After an error the feed stays where
 * it was, and the call may be repeated.
 */
KITH_API KITH_NODISCARD int kith_feed_next(kith_feed *f, kith_feed_event *out);

/*
 * A file descriptor for poll/epoll/select (or a GUI main loop) that becomes readable when
 * any process commits to the replica. Read events with kith_feed_next until it returns
 * KITH_ENOTFOUND, which also drains the descriptor; after that, a commit by anyone makes it
 * readable again. It may be readable with nothing new (the replica's file is also written
 * for local records, such as peer bookkeeping): kith_feed_next then returns KITH_ENOTFOUND.
 * Owned by the feed: do not read or close it. With edge-triggered epoll, read until
 * KITH_ENOTFOUND every time.
 */
KITH_API int kith_feed_fd(const kith_feed *f);

/*
 * Wait until kith_feed_next may have an event: at once when it has not returned
 * KITH_ENOTFOUND since the last event, else until the descriptor becomes readable or
 * `timeout_ms` passes (-1: no limit; 0: just look). 0 when there may be an event,
 * KITH_ETIMEDOUT, or -EINTR when a signal arrived (check your stop flag and call again).
 */
KITH_API KITH_NODISCARD int kith_feed_wait(kith_feed *f, int timeout_ms);

/* The cursor of the last event handed out, or `since` (the end, for KITH_FEED_NOW) before
 * the first: what to store to resume after a restart. */
KITH_API uint64_t kith_feed_cursor(const kith_feed *f);

/* Close the feed and its descriptor. Takes NULL. */
KITH_API void kith_feed_close(kith_feed *f);

/* ---------------------------------------------------------------------------------------
 * Version vectors: origin -> highest seq applied, sorted by origin.
 */
typedef struct kith_vv {
    size_t len;
    kith_dot *entries; /* entries[i].seq is the highest seq applied from entries[i].origin */
} kith_vv;

/* Text form: "origin:seq,origin:seq" with origins in hex, e.g. "3fa2c1d0e4b59a71:42".
 * parse fills an allocation released with kith_vv_free(); "" is the empty vector. */
KITH_API KITH_NODISCARD int kith_vv_parse(const char *text, kith_vv *out);
KITH_API KITH_NODISCARD int kith_vv_format(const kith_vv *vv, char **out); /* kith_free */
KITH_API void kith_vv_free(kith_vv *vv);

/* The replica's version vector (an allocation released with kith_vv_free). */
KITH_API KITH_NODISCARD int kith_vv_get(kith_replica *r, kith_vv *out);

/* ---------------------------------------------------------------------------------------
 * Status.
 */
typedef struct kith_collection_count {
    const char *collection; /* every collection declared or brought by ops, in the order the
                               replica met them; valid while the replica is open */
    uint64_t live;
} kith_collection_count;

/* A replica's device group (kith_group_get; the group API is under "Device groups"). The
 * caller allocates it and kith_status embeds it, so it never grows: what a later version adds
 * about groups goes elsewhere. */
#define KITH_GROUP_ID_HEX 32 /* characters of a group id in hex, without the NUL */
#define KITH_DEVICE_NAME_MAX 63

typedef struct kith_group_info {
    bool in_group;                  /* false: in no group; every other field is zero */
    char id[KITH_GROUP_ID_HEX + 1]; /* the group id in lowercase hex */
    char name[KITH_DEVICE_NAME_MAX + 1];
    size_t members;                  /* live members, this replica included when it is one */
    size_t removed;                  /* keys removed */
    size_t records;                  /* group records held (valid or waiting) */
    bool self_removed;               /* this replica was removed: it writes nothing more */
    uint64_t self_cutoff;            /* and its ops after this seq are refused everywhere */
    bool needs_upgrade;              /* a record of a kind this kith does not know is held */
    uint8_t digest[KITH_HASH_BYTES]; /* BLAKE2b-256 over the valid records' hashes (GRP-12) */
} kith_group_info;

typedef struct kith_status {
    uint64_t id;
    uint8_t pubkey[KITH_PUBKEY_BYTES];
    kith_vv vv;           /* applied */
    uint64_t ops_logged;  /* every op in the log, all origins */
    uint64_t pending_ops; /* verified and logged, waiting for a dot they name or for the
                             clock (an op from more than a minute in the future) */
    uint64_t open_conflicts;
    uint64_t hlc; /* the replica's clock */
    size_t ncollections;
    kith_collection_count *collections;
    /* Appended in 0.1.0: why the pending ops wait, one entry per origin that has any, by
     * origin (kith_holds_get's list, read in the same transaction as the counts above). */
    size_t nholds;
    struct kith_hold *holds;
    /* Appended in 0.3.0: the forked origins (kith_forks_get's list, read in the same
     * transaction), and this machine's clock against its peers': the median over the peers
     * whose clock a handshake measured of how far ours is ahead of theirs (negative:
     * behind), and how many peers that is (0: none measured; the offset is then 0). Beyond
     * KITH_CLOCK_TOLERANCE_MS either way, this clock is the one to fix. */
    size_t nforks;
    struct kith_fork *forks;
    int64_t clock_offset_ms;
    size_t clock_peers;
    /* Appended in 0.3.0: this replica was restored from a copy (spec/data-model.md
     * RESTORE-*): peer `restored_from` showed, at `restored_ms`, that this replica's own
     * origin reaches seq `restored_seq`, beyond what this replica held then. Until it holds
     * them again (a sync with a peer that has them fetches them), local writes fail with
     * KITH_ERESTORED, unless the mark was accepted (kith_restored_accept). restored_seq is 0
     * when the replica is not marked. */
    uint64_t restored_seq;
    uint64_t restored_from;
    int64_t restored_ms;
    bool restored_accepted;
    /* Appended in 0.4.0: the device group (kith_group_get, read in the same transaction). */
    kith_group_info group;
} kith_status;

/* Allocates *out, released with kith_status_free(). */
KITH_API KITH_NODISCARD int kith_status_get(kith_replica *r, kith_status **out);
KITH_API void kith_status_free(kith_status *s);

/*
 * A replica that a peer shows to hold less of its own origin than the peer does was restored
 * from a copy (or lost commits): it is marked restored (kith_status_get's restored_* fields)
 * and refuses local writes with KITH_ERESTORED until a sync or bundle brings its own ops back,
 * so that it never signs a second history at seqs it used before (spec/data-model.md
 * RESTORE-1..5). When no device holds those ops any more, accept the loss: writes go on at
 * the next seq after what this replica holds, which forks its own origin wherever the lost ops
 * still exist (the fork is found and reported as any other). The mark stays, accepted, until
 * the replica holds the seq it named; a peer showing a higher seq later marks it again.
 * Returns 0 (also when the replica was not marked). Errors: KITH_EREADONLY, -errno.
 */
KITH_API KITH_NODISCARD int kith_restored_accept(kith_replica *r);

/*
 * Held ops: verified and logged, but not applied yet (spec/storage.md "Pending commits").
 * An origin's commits apply in seq order, so the first held one decides for all the rest
 * of that origin; `reason` says why it waits.
 */
typedef enum kith_hold_reason {
    KITH_HOLD_CLOCK = 1,      /* its timestamp is more than 60 s ahead of this machine's
                                 clock: it applies when the clock catches up */
    KITH_HOLD_DEPENDENCY = 2, /* it names an op not applied here (`missing`): it applies
                                 once that op arrives */
    KITH_HOLD_READY = 3       /* nothing holds it any more: kith_holds_apply, or the next
                                 batch or bundle applied here, applies it (kith_serve calls
                                 kith_holds_apply within a second) */
} kith_hold_reason;

typedef struct kith_hold {
    uint64_t origin;  /* the replica that made the held ops */
    uint64_t ops;     /* how many of its ops are held */
    int reason;       /* kith_hold_reason of the first held commit */
    int64_t ahead_ms; /* how far ahead of this machine's clock its newest held op is
                         stamped: the origin's clock lead, as its ops show it; 0 if none */
    uint64_t hlc;     /* the timestamp of its newest held op */
    kith_dot missing; /* KITH_HOLD_DEPENDENCY: the first op it waits for; else {0, 0} */
} kith_hold;

/* The held ops, one kith_hold per origin that has any, by origin; *n is 0 when nothing is
 * held. *out is released with kith_holds_free(). Errors: KITH_ECORRUPT, KITH_ENOMEM. */
KITH_API KITH_NODISCARD int kith_holds_get(kith_replica *r, kith_hold **out, size_t *n);
KITH_API void kith_holds_free(kith_hold *holds, size_t n);

/*
 * Forks: an origin that signed two histories (two devices writing under one key, a replica
 * restored from a copy and written to). A replica that meets the other history — in a
 * handshake, where both sides compare chain heads, or in a batch or bundle — records what
 * it saw, once per origin, and from then on takes nothing of that origin beyond `seq` and
 * sends nothing of it beyond `seq`, while every other origin syncs as before
 * (spec/data-model.md "Forks"). Where a batch or bundle shows both histories from a point
 * they share, the replica also keeps a fork proof: it names the branch every replica will
 * keep (the winner) and travels to replicas that never saw either branch. A replica whose
 * proof says it holds the losing branch (`holds`) is the one whose commits after `proof_seq`
 * go to the journal when the fork is settled (spec/data-model.md FORK-10).
 */
typedef enum kith_fork_source {
    KITH_FORK_HANDSHAKE = 1, /* a peer's handshake named another chain head at `seq` */
    KITH_FORK_BATCH = 2,     /* a batch or bundle carried the origin's signed other history */
    KITH_FORK_PROOF = 3      /* a fork proof received (seen_from 0): both histories, signed */
} kith_fork_source;

/* Which branch of a proven fork this replica holds (kith_fork.holds). */
typedef enum kith_fork_holds {
    KITH_FORK_HOLDS_NEITHER = 0, /* nothing of the origin beyond the proof's common seq, a
                                    third history, or no proof held */
    KITH_FORK_HOLDS_WINNER = 1,  /* the branch every replica keeps */
    KITH_FORK_HOLDS_LOSER = 2    /* the branch every replica sets aside */
} kith_fork_holds;

typedef struct kith_fork {
    uint64_t origin;                 /* the replica id that signed two histories */
    uint64_t seq;                    /* where they were seen to differ: ops of the origin
                                        beyond it are neither taken nor sent */
    uint8_t ours[KITH_HASH_BYTES];   /* our chain hash after seq; zeros when no commit of
                                        ours ends there */
    uint8_t theirs[KITH_HASH_BYTES]; /* the other history's chain hash after seq */
    uint64_t seen_from;              /* the peer that showed the other history */
    int64_t recorded_ms;             /* when this replica recorded it */
    int source;                      /* kith_fork_source */
    /* KITH_FORK_BATCH: the origin's signature over the other history's head (seq, chain),
     * the half of a fork proof that this replica does not hold in its own log */
    bool has_head;
    uint64_t head_seq;
    uint8_t head_chain[KITH_HASH_BYTES];
    uint8_t head_sig[KITH_SIG_BYTES];
    /* Appended in 0.4.0 (fork proofs, spec/data-model.md FORK-5..9): whether a proof is
     * held, one that any replica checks from its own bytes and that this replica forwards;
     * the last seq both histories share (`proof_seq`), each branch's chain hash after its
     * first commit there, the winner being the lower (D-14), and which one this replica holds.
     * When several proofs of the origin are held, the one with the lowest proof_seq and, of
     * those, the lowest winner: the branch that wins against every branch proven there. */
    bool has_proof;
    uint64_t proof_seq;
    uint8_t winner[KITH_HASH_BYTES];
    uint8_t loser[KITH_HASH_BYTES];
    int holds; /* kith_fork_holds */
} kith_fork;

/* The forks recorded here, one per origin, by origin; *n is 0 when there are none. *out is
 * released with kith_forks_free(). Errors: KITH_ECORRUPT, KITH_ENOMEM. */
KITH_API KITH_NODISCARD int kith_forks_get(kith_replica *r, kith_fork **out, size_t *n);
KITH_API void kith_forks_free(kith_fork *forks, size_t n);

/* ---------------------------------------------------------------------------------------
 * The op log.
 */
typedef enum kith_op_kind {
    KITH_OP_FIELD_SET = 1,
    KITH_OP_DOC_ADD = 2,
    KITH_OP_DOC_REMOVE = 3,
    KITH_OP_SET_ADD = 4,
    KITH_OP_SET_REMOVE = 5,
    KITH_OP_COUNTER_ADD = 6, /* value: the increment, an INT */
    KITH_OP_FLAG_ENABLE = 7,
    KITH_OP_FLAG_DISABLE = 8
} kith_op_kind;

typedef struct kith_log_entry {
    kith_dot dot;
    uint64_t hlc;
    kith_op_kind kind;
    const char *collection;
    kith_docid doc;
    const char *field; /* NULL for DOC_ADD and DOC_REMOVE */
    kith_value value;  /* FIELD_SET: the value; SET_*: the element as a STRING */
    kith_dot replaced; /* FIELD_SET: the dot it overwrote at its author, {0,0} if none */
    uint8_t chain[KITH_HASH_BYTES]; /* chain hash after the commit this op ends, else zeros */
    bool commit_end;                /* last op of its commit */
    bool applied;                   /* false while pending */
} kith_log_entry;

/* The log of one origin (origin != 0) or of all, by origin then seq. */
KITH_API KITH_NODISCARD int kith_iter_log(kith_txn *t, uint64_t origin, kith_iter **out);
KITH_API KITH_NODISCARD int kith_iter_next_log(kith_iter *it, kith_log_entry *out);

/* ---------------------------------------------------------------------------------------
 * The journal: commits set aside when a fork of their origin was resolved against the
 * history this replica held (spec/data-model.md FORK-10). They left the log and the state,
 * not the replica: each can be read, and restored, its ops written again as new writes of
 * this replica. Added in 0.4.0.
 */
typedef struct kith_journal_op {
    kith_log_entry op;    /* as in the log; op.applied is false, op.chain the set-aside one's */
    kith_dot commit;      /* its commit: origin and first seq, what kith_journal_restore takes */
    int64_t set_aside_ms; /* when this replica set it aside */
    bool restored;        /* kith_journal_restore wrote it again */
} kith_journal_op;

/* The journal's ops, of one origin (origin != 0) or of all, by origin then seq. */
KITH_API KITH_NODISCARD int kith_iter_journal(kith_txn *t, uint64_t origin, kith_iter **out);
KITH_API KITH_NODISCARD int kith_iter_next_journal(kith_iter *it, kith_journal_op *out);

/*
 * Write the ops of the set-aside commit `commit` (its origin and first seq) again, as new
 * writes of this replica in the write transaction t, and mark it restored when t commits. A
 * document it created is created anew (a new id; restoring a later commit that edits it
 * writes to the new one, so restore in seq order); a field set, an element added or removed,
 * an increment, a flag and a delete are made again. An op on a document that does not exist
 * here is skipped and counted in *skipped (may be NULL). KITH_ENOTFOUND (no such commit in
 * the journal), KITH_EEXIST (restored already), or an error of the writes (KITH_ESCHEMA when
 * this replica's schema does not declare a field the commit wrote).
 */
KITH_API KITH_NODISCARD int kith_journal_restore(kith_txn *t, const kith_dot *commit,
                                                 size_t *skipped);

/* ---------------------------------------------------------------------------------------
 * Bundles and batches: signed runs of ops, the same bytes in a file and on the wire
 * (spec/encoding.md). Each origin's ops in one start right after what the receiver holds
 * and end at a head that origin signed.
 */
typedef struct kith_batch_opts {
    const kith_vv *since; /* send only what this vector lacks; NULL: everything */
    uint64_t cursor;      /* resume point in this replica's apply order (0: start) */
    size_t max_ops;       /* stop after about this many ops, on a commit boundary (0: none) */
    size_t max_bytes;     /* likewise for encoded size (0: none) */
} kith_batch_opts;

typedef struct kith_batch_info {
    uint64_t ops; /* ops in the batch */
    uint64_t commits;
    uint64_t next_cursor; /* pass as cursor to continue */
    bool has_more;        /* more ops beyond this batch that `since` lacks */
} kith_batch_info;

/*
 * Build a batch of the ops that `opts->since` lacks, in this replica's apply order, signing
 * this replica's own head where the batch ends. `out->data` is released with kith_free().
 * `info` may be NULL. An empty batch (ops == 0) is valid. KITH_ECANCELED: the progress
 * callback said stop, and there is no batch.
 */
KITH_API KITH_NODISCARD int kith_batch_create(kith_replica *r, const kith_batch_opts *opts,
                                              kith_buf *out, kith_batch_info *info);

typedef struct kith_apply_info {
    uint64_t ops_new;     /* ops logged by this call */
    uint64_t ops_known;   /* ops already held (skipped) */
    uint64_t ops_applied; /* ops applied to the state by this call (may include older pending) */
    uint64_t ops_pending; /* ops still waiting after this call */
    uint64_t conflicts;   /* conflicts recorded */
    /* Appended in 0.3.0: */
    uint64_t forks; /* origins this call found forked (kith_forks_get): their runs were set
                       aside, every other origin's applied */
    /* Appended in 0.4.0: */
    uint64_t cut_off; /* origins removed from the group whose runs went beyond their cut-off:
                         set aside, every other origin's applied (kith_errmsg names the last) */
} kith_apply_info;

/*
 * Verify and apply a batch in one LMDB transaction: every origin trusted, every range
 * contiguous with what is held, every chain hash and signature correct, every value fit for
 * the schema — or nothing changes. Applying the same batch twice changes nothing the second
 * time. `info` may be NULL.
 *
 * A fork is not a failure of the batch: an origin whose signed run differs from the history
 * held here has forked; the evidence is recorded (kith_forks_get), that origin's run is set
 * aside, the other origins' runs are applied, and the call returns 0 with info->forks
 * counting the origins newly found forked. From then on nothing of a forked origin beyond
 * the fork's seq is taken from a batch or put into one (spec/data-model.md "Forks").
 * Errors: KITH_EMALFORMED, KITH_ETOOBIG, KITH_EUNTRUSTED, KITH_EBADSIG, KITH_EGAP,
 * KITH_ESCHEMA, KITH_EVERSION, KITH_ECANCELED (the progress callback said stop: nothing
 * changed), -errno; kith_errmsg names the origin and seq.
 */
KITH_API KITH_NODISCARD int kith_batch_apply(kith_replica *r, const void *data, size_t len,
                                             kith_apply_info *info);

/*
 * Apply the held commits whose turn has come. A commit held for a clock ahead of this
 * machine's applies once the clock is within a minute of it, but only when ops are applied
 * again: kith_serve calls this when a held commit falls due, and an app that keeps a
 * replica open without a daemon may call it (kith_holds_get says what waits, and how far
 * ahead). Commits that still wait stay held; nothing is written when nothing moves.
 * info->ops_applied counts what applied, info->ops_pending what still waits; `info` may be
 * NULL. Observers hear what applied, as KITH_CHANGE_REMOTE.
 * Errors: KITH_EREADONLY, KITH_ECORRUPT, -errno (-ENOSPC).
 */
KITH_API KITH_NODISCARD int kith_holds_apply(kith_replica *r, kith_apply_info *info);

/* A bundle file is a batch behind a file header. Write the bundle (all ops, or those
 * `since` lacks) to `path` ("-" is stdout), or apply the bundle in `path`. A bundle is
 * written to a temporary file beside `path` and renamed over it, so `path` is whole or as
 * it was; the batch is built before anything is written, so a write cancelled through the
 * progress callback (KITH_ECANCELED) leaves nothing behind, on stdout too. */
KITH_API KITH_NODISCARD int kith_bundle_write(kith_replica *r, const kith_vv *since,
                                              const char *path, kith_batch_info *info);
KITH_API KITH_NODISCARD int kith_bundle_apply(kith_replica *r, const char *path,
                                              kith_apply_info *info);

/* ---------------------------------------------------------------------------------------
 * Progress and cancellation of the calls that can take long: kith_batch_create and
 * kith_bundle_write (KITH_PROGRESS_BUILD), kith_batch_apply and kith_bundle_apply (APPLY),
 * kith_sync (SYNC) and kith_verify (VERIFY). Log compaction, when it comes, reports through
 * the same callback with an op of its own; a callback should draw an op it does not know as
 * plain numbers, not fail.
 */
typedef enum kith_progress_op {
    KITH_PROGRESS_BUILD = 1, /* kith_batch_create, kith_bundle_write: ops put in the batch */
    KITH_PROGRESS_APPLY = 2, /* kith_batch_apply, kith_bundle_apply: ops of the batch handled */
    KITH_PROGRESS_SYNC = 3,  /* kith_sync: ops sent plus ops received */
    KITH_PROGRESS_VERIFY = 4 /* kith_verify: ops checked in the log, then ops applied again */
} kith_progress_op;

typedef struct kith_progress {
    int op;         /* kith_progress_op */
    uint64_t done;  /* ops handled so far; never decreases during one call */
    uint64_t total; /* ops in all as far as known, 0 while unknown; done <= total when known */
} kith_progress;

/* Return 0 to go on, non-zero to cancel. */
typedef int (*kith_progress_fn)(void *ctx, const kith_progress *p);

/*
 * Set (or clear, with fn NULL) the progress callback of this handle. Each call named above
 * made through `r` calls it in the calling thread: once at the start (done 0), at intervals
 * (every 256 commits, each batch of a sync, and about every 100 ms while a sync waits for
 * its peer), and once when all its ops are handled (done == total). `total` is what the call
 * expects when it starts (the difference of version vectors, the ops in a batch, the ops
 * logged plus the ops applied for verify, which goes over both) and may be corrected as it
 * learns more, up or down, but never below `done`. Calls with the same numbers may repeat.
 *
 * When fn returns non-zero, the call stops at its next safe point and returns
 * KITH_ECANCELED, with nothing half done: an apply aborts its one transaction (nothing
 * changed; applying again later applies it in full); a build returns no batch and a bundle
 * write leaves no file (a file already at the path is untouched); a sync closes the session
 * between batches, so every batch it applied is whole, and records the peer as cancelled
 * (last_error "cancelled by the caller", failures unchanged), and the next sync goes on from
 * what both sides hold; verify stops with *report zeroed (it changes nothing anyway). The
 * final call (done == total) may cancel too: an apply calls it before its commit.
 *
 * The callback may be called inside the apply's write transaction, holding the replica's
 * writer lock: it must not call kith on the same replica (it may on another). kith_serve's
 * own sessions never call it. Set it before sharing the handle with threads that make these
 * calls, or while none of them runs: like kith_observe, this takes no lock.
 */
KITH_API void kith_progress_set(kith_replica *r, kith_progress_fn fn, void *ctx);

/* ---------------------------------------------------------------------------------------
 * Trust and peers. The trust set holds the public keys of the replicas (one user's devices)
 * whose ops this replica accepts. A peer record also keeps where it is and how syncing goes.
 */
typedef struct kith_peer {
    uint64_t id;
    uint8_t pubkey[KITH_PUBKEY_BYTES];
    char name[64];  /* "" if none */
    char addr[256]; /* ZeroMQ endpoint, "" if unknown */
    bool trusted;
    bool forked;          /* signed two histories: refused until re-trusted */
    kith_vv acked;        /* what the peer is known to hold */
    uint64_t cursor;      /* our apply-order position up to which it acknowledged */
    uint64_t pending_ops; /* ops we hold that it lacks (by vector difference) */
    int64_t last_sync_ms; /* 0 if never */
    uint32_t failures;    /* consecutive failed attempts (for backoff) */
    char last_error[256]; /* "" if the last attempt succeeded */
    /* Appended in 0.1.0: */
    bool failing;          /* `failures` reached the threshold of the process that recorded
                              them (kith_peer_record_ex): it keeps being retried, at the
                              longest backoff; the next success clears it */
    uint64_t held_ops;     /* ops this peer made that wait here (its kith_hold.ops) */
    int64_t held_ahead_ms; /* how far ahead of our clock they are stamped (kith_hold) */
    /* Appended in 0.2.0: the peer's schema as its last handshake told it (kith_schema_info);
     * version 0 and a zero digest when unknown. Peers with other schemas sync all the same. */
    uint64_t schema_version;
    uint8_t schema_digest[KITH_HASH_BYTES];
    /* Appended in 0.3.0: the peer's wall clock against ours at its last handshake of
     * protocol 3 (its clock minus ours, half the round trip allowed for when this side
     * dialled), and when that was measured; both 0 when never measured. */
    int64_t clock_offset_ms;
    int64_t clock_checked_ms;
    uint64_t fork_seq; /* its own origin has forked here at this seq (kith_forks_get); 0: not */
} kith_peer;

/* How far a peer's clock may be from ours before it is reported (kith_status_get's
 * clock_offset_ms, `kith peers`, the daemon's log): a twelfth of the minute beyond which a
 * commit is held for its clock (spec/data-model.md PEND-3), so that a drifting clock is
 * named long before its writes are held or win races they should not. */
#define KITH_CLOCK_TOLERANCE_MS 5000

/* Consecutive failed attempts after which a peer shows as failing, unless a daemon is told
 * otherwise (kith_serve_opts.failing_after). */
#define KITH_FAILING_AFTER 5

/* Trust a replica's key (adding or updating its record; name/addr may be NULL: unchanged). */
KITH_API KITH_NODISCARD int kith_trust_add(kith_replica *r, const uint8_t pk[KITH_PUBKEY_BYTES],
                                           const char *name, const char *addr);
/* Stop trusting (the record stays, with its history). A member of this replica's device group
 * stays admitted all the same: kith_device_remove removes it from the group. */
KITH_API KITH_NODISCARD int kith_trust_remove(kith_replica *r, uint64_t id);

/* Every peer record (trusted or not, never this replica itself), by id. *out is released
 * with kith_peers_free(). `acked`, and `pending_ops` with it, say what the peer is known to
 * hold: what it acknowledged in a sync, what it sent in batches and bundles, and every op it
 * made itself, however those reached this replica (spec/protocol.md NET-19). */
KITH_API KITH_NODISCARD int kith_peers_get(kith_replica *r, kith_peer **out, size_t *n);
KITH_API void kith_peers_free(kith_peer *peers, size_t n);

/* Record the outcome of a sync attempt with peer `id`: on success (error == NULL) its
 * acknowledged vector and cursor, last_sync = now and failures = 0; on failure the error and
 * failures + 1. `acked` may be NULL (unchanged). */
KITH_API KITH_NODISCARD int kith_peer_record(kith_replica *r, uint64_t id, const kith_vv *acked,
                                             uint64_t cursor, const char *error);
/* As kith_peer_record; a failure also marks the peer failing once its consecutive failures
 * reach `failing_after` (0: KITH_FAILING_AFTER), and a success clears the mark.
 * kith_peer_record is this with 0. Errors: KITH_ENOTFOUND (no such peer), KITH_EINVAL. */
KITH_API KITH_NODISCARD int kith_peer_record_ex(kith_replica *r, uint64_t id, const kith_vv *acked,
                                                uint64_t cursor, const char *error,
                                                uint32_t failing_after);

/* Is this key admitted: this replica's own, a trusted peer's (and not forked), or a live
 * member's of this replica's device group (kith_devices_get)? A removed member is not, even
 * when its key is also trusted pairwise. The daemon admits connections with this. */
KITH_API bool kith_is_trusted(kith_replica *r, const uint8_t pk[KITH_PUBKEY_BYTES]);

/* ---------------------------------------------------------------------------------------
 * Device groups (spec/groups.md, spec/data-model.md "Groups"). A replica belongs to at most
 * one group: the devices of one person. Membership is a set of signed records exchanged
 * beside the op log; every member accepts every other member's ops, relayed by anyone, with
 * no pairwise trust. A removed member's ops after its cut-off are refused everywhere, and it
 * can no longer connect. kith_trust_add stays for replicas outside the group.
 */

/*
 * Found a group with this replica as its first member: `group_name` names the group and
 * `device_name` this device (each 1 to 63 bytes of UTF-8 without NUL). Signs and stores the
 * group's FOUND record; the group id is the start of its hash.
 * Errors: KITH_EINVAL (a bad name), KITH_EEXIST (already in a group: kith_errmsg names it),
 * KITH_EREADONLY, -EACCES (the key file cannot be read), -errno.
 */
KITH_API KITH_NODISCARD int kith_group_create(kith_replica *r, const char *group_name,
                                              const char *device_name);

/* The replica's group: fills *out (in_group false when it is in none). Errors: KITH_ECORRUPT,
 * KITH_ENOMEM, -errno. */
KITH_API KITH_NODISCARD int kith_group_get(kith_replica *r, kith_group_info *out);

/* One key the group ever admitted. */
typedef struct kith_device {
    uint64_t id; /* its replica id (from the key) */
    uint8_t pubkey[KITH_PUBKEY_BYTES];
    char name[KITH_DEVICE_NAME_MAX + 1]; /* the device name its admission gave */
    uint64_t added_by;                   /* id of the member that signed its admission (its own
                                            id for the founder) */
    int64_t added_ms;                    /* when, by the signer's clock */
    int64_t last_seen_ms;                /* the last sync with it (its peer record); 0: never */
    bool removed;                        /* removed from the group: never a member again */
    uint64_t cutoff;                     /* when removed: its ops after this seq are refused */
    bool self;                           /* this replica */
} kith_device;

/*
 * Every key the group admitted, members and removed ones: the founder first, then by when
 * they were added, then by id. *n is 0 when the replica is in no group. *out is released with
 * kith_devices_free(). Errors: KITH_ECORRUPT, KITH_ENOMEM, -errno.
 */
KITH_API KITH_NODISCARD int kith_devices_get(kith_replica *r, kith_device **out, size_t *n);
KITH_API void kith_devices_free(kith_device *devices, size_t n);

/*
 * Remove member `id` from the group: signs a REMOVE whose cut-off is the highest seq of that
 * origin this replica holds, so its ops up to there stay accepted everywhere and every later
 * one is refused; the key can no longer connect, and never becomes a member again (the device
 * rejoins under a new key). Removing this replica itself retires its key: it then writes
 * nothing more (local writes fail with KITH_EUNTRUSTED) and says so in kith_group_get.
 * A removal wins over an add made concurrently.
 * Errors: KITH_ENOTFOUND (no member has that id; kith_errmsg says whether it was removed
 * already), KITH_EINVAL (this replica is in no group, or was removed itself), KITH_EREADONLY,
 * -EACCES (the key file cannot be read), -errno.
 */
KITH_API KITH_NODISCARD int kith_device_remove(kith_replica *r, uint64_t id);

/* The replica's secret key converted for ZeroMQ CURVE (X25519), and a public key likewise.
 * Secret material: the caller wipes it (sodium_memzero) when done. */
KITH_API KITH_NODISCARD int kith_curve_keys(kith_replica *r, uint8_t public_x[32],
                                            uint8_t secret_x[32]);
KITH_API KITH_NODISCARD int kith_curve_public(const uint8_t pk[KITH_PUBKEY_BYTES],
                                              uint8_t public_x[32]);

/* Sign `msg` with the replica's key for `context` (an 8-byte domain, as in spec/), and check
 * such a signature (0 or KITH_EBADSIG). For beacons and handshakes. */
KITH_API KITH_NODISCARD int kith_sign(kith_replica *r, const char context[8], const void *msg,
                                      size_t len, uint8_t sig[KITH_SIG_BYTES]);
KITH_API KITH_NODISCARD int kith_sign_verify(const uint8_t pk[KITH_PUBKEY_BYTES],
                                             const char context[8], const void *msg, size_t len,
                                             const uint8_t sig[KITH_SIG_BYTES]);

/* A fingerprint of the built-in schema (BLAKE2b of its canonical description): what a replica
 * made by kith 0.1 stored as its schema. Handshakes tell kith_schema_info instead. */
KITH_API void kith_schema_fingerprint(uint8_t out[KITH_HASH_BYTES]);

/* ---------------------------------------------------------------------------------------
 * Export and verification.
 */

/* The whole replicated state as canonical JSON (spec/encoding.md "Export"): sorted keys, no
 * insignificant space, one trailing newline. Replicas holding the same ops give the same
 * bytes. Local-only facts (conflicts, peers, pending ops) are not in it. kith_free(out->data) */
KITH_API KITH_NODISCARD int kith_export_json(kith_replica *r, kith_buf *out);

typedef struct kith_verify_report {
    uint64_t commits_checked;
    uint64_t ops_checked;
    uint64_t signatures_checked;
    uint64_t problems; /* 0 when the replica is sound */
    char first_problem[256];
} kith_verify_report;

/* Re-check every chain, signature, state entry and index against the log. Returns 0 when
 * the check ran (look at report->problems), or an error if it could not run
 * (KITH_ECANCELED: the progress callback said stop; the report is zeroed). */
KITH_API KITH_NODISCARD int kith_verify(kith_replica *r, kith_verify_report *report);

/* Release memory kith allocated for the caller (bundles, exports, formatted vectors). */
KITH_API void kith_free(void *p);

/* ---------------------------------------------------------------------------------------
 * Sync over ZeroMQ (net/; spec/protocol.md). CURVE-encrypted with the replica's key; only
 * trusted peers are admitted, in both directions.
 */
typedef struct kith_sync_info {
    uint64_t peer_id;
    uint64_t ops_sent, ops_received;
    uint64_t batches_sent, batches_received;
    bool converged; /* both sides hold the same ops at the end, and no origin has forked */
    /* Appended in 0.3.0: */
    uint64_t forks; /* origins this session found forked (at the handshake, or in a batch) */
    uint32_t proto; /* the protocol version the session spoke (2 with a kith 0.2 peer) */
    /* The peer held this replica's own origin up to this seq, beyond what this replica held
     * when the session began: it was restored from a copy (kith_restored_accept). 0: not.
     * The session fetched what the peer had of it unless that origin forked. */
    uint64_t restored_seq;
} kith_sync_info;

/*
 * One bidirectional session with the peer at `endpoint` ("tcp://127.0.0.1:7461"), then
 * return. `peer_pk` is the peer's key, or NULL to take it from the trusted peer recorded with
 * that address. Gives up after `timeout_ms` of silence (0: a default of 10 s). The peer record
 * is updated either way. `info` may be NULL.
 * Errors: KITH_EUNTRUSTED, KITH_ETIMEDOUT, KITH_EPROTO, KITH_EVERSION, KITH_ECANCELED (the
 * progress callback said stop: the batches applied before it are whole and kept, `info`
 * says how far it got, and the next sync goes on from there), and those of
 * kith_batch_apply.
 */
KITH_API KITH_NODISCARD int kith_sync(kith_replica *r, const char *endpoint, const uint8_t *peer_pk,
                                      int timeout_ms, kith_sync_info *info);

enum kith_log_level {
    KITH_LOG_ERROR = 3,
    KITH_LOG_WARNING = 4,
    KITH_LOG_INFO = 6,
    KITH_LOG_DEBUG = 7
};

typedef struct kith_serve_opts {
    const char *listen;       /* endpoint to bind, e.g. "tcp://127.0.0.1:7461"; NULL: none */
    const char *const *peers; /* endpoints to keep in sync with, besides the trusted peers
                                 that have an address: a trusted peer's recorded address,
                                 or "PUBKEY@ENDPOINT" with the key in hex */
    size_t npeers;
    int interval_ms;          /* anti-entropy period (0: 30 s) */
    bool discover;            /* announce and listen for UDP beacons on the LAN */
    int log_level;            /* kith_log_level; 0: KITH_LOG_INFO */
    bool log_json;            /* one JSON object per log line */
    const volatile int *stop; /* when non-NULL and set non-zero, kith_serve returns */
    int timeout_ms;           /* silence after which a peer is given up (0: 10 s); idle
                                 sessions are kept alive with PING every third of it */
    uint16_t beacon_port;     /* UDP port of discovery beacons (0: 7462) */
    /* Called once, from kith_serve's thread, when the daemon listens, with the endpoint it
     * bound; when `listen` names port "*" ("tcp://127.0.0.1:*"), the kernel's choice is
     * filled in. Binding port "*" and reading it here is the race-free way to serve on a
     * free port: a port probed free and bound later can be taken in between. May be NULL. */
    void (*on_listen)(void *arg, const char *endpoint);
    void *on_listen_arg;
    /* Where log lines go when set: each line at or below log_level, as its message alone
     * (no prefix, no newline; log_json does not apply), instead of stderr. Called from the
     * daemon's threads one line at a time, never two at once (under a lock of the daemon's
     * own, not stdio's); the line is valid during the call. For an app that runs the daemon
     * in a thread of its own. May be NULL. */
    void (*on_log)(void *arg, int level, const char *line);
    void *on_log_arg;
    /* Consecutive failed attempts after which a peer is shown as failing (in its record, so
     * `kith peers` sees it) and retried at the longest backoff, 30 s, until it answers
     * (0: KITH_FAILING_AFTER). */
    uint32_t failing_after;
    /* A connection must finish its CURVE handshake within this, or it is closed (0: 2 s). */
    int handshake_ms;
} kith_serve_opts;

/*
 * Run the sync daemon in this thread until *opts->stop is set, or SIGTERM or SIGINT arrives
 * (kith_serve blocks them and takes them through a signalfd). Logs to stderr, or to opts->on_log.
 * Returns 0 on a clean stop; a batch being applied is finished or rolled back, never half applied.
 *
 * Every connection costs the process a file descriptor. kith_serve never changes process
 * limits: a program that serves on a network should raise RLIMIT_NOFILE's soft limit (to the
 * hard one, as `kith serve` does) before calling it. Within the limit it has, kith_serve
 * closes connections that have not finished their handshake after opts->handshake_ms, keeps
 * at most 64 of them, sheds the oldest when fewer than 16 descriptors are free, and logs a
 * warning when descriptors run low (spec/protocol.md NET-22, NET-23).
 */
KITH_API KITH_NODISCARD int kith_serve(kith_replica *r, const kith_serve_opts *opts);

/* ---------------------------------------------------------------------------------------
 * Invites (spec/protocol.md NET-30, spec/encoding.md "Invite codes"). A member hands out a
 * code; a fresh replica joins with it over the network, proving the code's one-time secret,
 * and then syncs as any member. A code is refused when it is mistyped (before connecting),
 * expired, or used already.
 */
#define KITH_INVITE_EXPIRES_MS (10 * 60 * 1000) /* an invite's default lifetime */

typedef struct kith_invite_opts {
    int64_t expires_ms;       /* how long the code is good for (0: KITH_INVITE_EXPIRES_MS) */
    const char *const *addrs; /* endpoints the joiner is to try, "tcp://HOST:PORT"; none:
                                 where this replica's daemon last listened */
    size_t naddrs;            /* at most 8 */
    const char *group_name;   /* when the replica is in no group, the group it founds (NULL:
                                 "devices") */
    const char *device_name;  /* and this device's name in it (NULL: the host name) */
} kith_invite_opts;

/*
 * Make an invite: found a group first when the replica is in none (kith_group_create), draw a
 * random secret, keep it with its expiry in the replica (not replicated), and return the code
 * in *code (NUL-terminated, released with kith_free): Crockford base32 grouped by five. The
 * inviter's daemon (kith_serve) admits an unknown key while some invite is open, and only to
 * redeem it. `opts` may be NULL. A listen address with a wildcard host (0.0.0.0 or a star)
 * is offered as each IPv4 address of this machine's interfaces that are up.
 * Errors: KITH_EINVAL (no address to offer: pass addrs or run the daemon once; more than 8;
 * a bad name), KITH_EBUSY (64 invites open or recent), KITH_EREADONLY, -errno.
 */
KITH_API KITH_NODISCARD int kith_invite_create(kith_replica *r, const kith_invite_opts *opts,
                                               char **code);

typedef struct kith_join_info {
    char group_id[KITH_GROUP_ID_HEX + 1]; /* the group joined, in hex */
    uint64_t inviter_id;                  /* the replica that admitted this one */
    char endpoint[256];                   /* the inviter's address that answered */
    kith_sync_info sync;                  /* the first sync with the inviter */
} kith_join_info;

/*
 * Join the group of the replica that made `code`: check the code (a mistyped or flipped
 * character is refused here, before any connection), connect over CURVE to the inviter's key
 * at each address it names in turn, prove the code's secret (JOIN), adopt the group from the
 * records the inviter answers with, record the inviter as a trusted peer at the address that
 * answered, and sync with it (a new connection). `device_name` names this device in the group
 * (1 to 63 bytes of UTF-8, no NUL; NULL: the host name). `timeout_ms` bounds each step (0: 10 s).
 * `info` may be NULL. The group is adopted before the sync: a failed sync leaves a member that
 * syncs later. Errors: KITH_EMALFORMED (the code is mistyped; kith_errmsg says how), KITH_EVERSION
 * (made by a newer kith), KITH_EINVAL (a bad name; the code expired by this clock), KITH_EEXIST
 * (this replica is in a group with other members already), KITH_EUNTRUSTED (the inviter refused:
 * wrong secret, used or expired; kith_errmsg quotes it), KITH_ETIMEDOUT (no address answered),
 * the errors of kith_sync.
 */
KITH_API KITH_NODISCARD int kith_join(kith_replica *r, const char *code, const char *device_name,
                                      int timeout_ms, kith_join_info *info);

/* ---------------------------------------------------------------------------------------
 * Re-keying (spec/data-model.md FORK-11..14, decisions.md D-22). A device whose own key
 * signed the losing history of a fork (a copy of its replica, or a restored backup, wrote
 * too) takes a new key: the old key, still a member of the group, signs an ADD of the new
 * one under this device's name; its own commits after the seq both histories share go to
 * the journal and the state is rebuilt without them; the replica's id becomes the new key's;
 * and the set-aside edits are written again, as new writes under the new key, so nothing the
 * user typed is lost. The old secret key is wiped from this device; the device that won keeps
 * it (no REMOVE is signed: a removal would void what that device signs concurrently, GRP-9),
 * and kith_device_remove stays for the user. kith_batch_apply does this by itself when a
 * batch brings the proof that this replica's origin lost, if the replica is in a group and
 * its key file can be read. Added in 0.5.0.
 */
typedef struct kith_rekey_info {
    uint64_t old_id;           /* the id this replica wrote under before */
    uint64_t new_id;           /* the id it writes under now */
    int64_t rekeyed_ms;        /* when, by this machine's clock */
    bool lost_fork;            /* its own origin had forked and it held the losing history */
    uint64_t fork_seq;         /* then: the last seq of old_id both histories share */
    uint64_t ops_aside;        /* its own ops after fork_seq, set aside to the journal */
    uint64_t commits_reissued; /* set-aside commits written again under the new key */
    uint64_t ops_skipped;      /* their ops on documents that no longer exist (not written) */
    bool reissue_pending;      /* the re-issue has not run yet: the next writable open or
                                  batch finishes it (a crash cut the re-key short) */
} kith_rekey_info;

/*
 * Take a new key, as above (also when no fork was lost: then nothing is set aside). `info`
 * (may be NULL) gets what was done. A process or handle that has the replica open notices at
 * its next write transaction and writes under the new key. A crash at any point leaves the
 * old identity or the new one, whole: the new key is written to a side file and synced before
 * the switch commits, and the next open finishes a switch it finds half done.
 * Errors: KITH_EINVAL (the replica is in no device group: its peers trust its key pairwise
 * and would not admit a new one; or it was removed from its group; kith_errmsg says what to
 * do), KITH_EBADTXN (this thread has a transaction open), KITH_EREADONLY, -EACCES (the key
 * file cannot be read), -errno, and the errors of kith_journal_restore (the switch is then
 * made, and reissue_pending says the edits wait in the journal for the next try).
 */
KITH_API KITH_NODISCARD int kith_rekey(kith_replica *r, kith_rekey_info *info);

/* The last re-key of this replica: 1 with *out filled, 0 when it never re-keyed (*out
 * zeroed), or an error (KITH_ECORRUPT, -errno). */
KITH_API KITH_NODISCARD int kith_rekey_get(kith_replica *r, kith_rekey_info *out);

/*
 * Forks told to the app (spec/data-model.md FORK-21). `fn` is called once for each origin
 * whose fork this handle recorded, or whose proof it received or made, in a batch, a bundle
 * or a sync (the handshake of protocol 3 and 4 too), with the fork as kith_forks_get shows it
 * at that moment (settled: `holds` says which branch is kept here); a duplicate proof, or a
 * proof replaced by a shorter one of the same fork, is not told again, and nothing is told
 * for a batch or bundle that was refused. Like the observers of kith_observe: called in the
 * thread that committed, after the commit is durable and the fork settled, outside any LMDB
 * transaction; `fork` is valid during the call only. The callback may read the replica (a
 * read transaction, kith_forks_get) but must not begin a write transaction on it. In
 * kith_serve, it runs on the daemon's thread. fn NULL: none. Set it before sharing the
 * handle with threads that apply batches, or while none of them runs: this takes no lock.
 * Errors: KITH_EINVAL (r NULL). Added in 0.5.0.
 */
typedef void (*kith_fork_fn)(void *ctx, const kith_fork *fork);
KITH_API KITH_NODISCARD int kith_on_fork(kith_replica *r, kith_fork_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* KITH_H */
