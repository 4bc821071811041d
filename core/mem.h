/*
 * mem.h — a replica's state held in memory: the reference model of kith's CRDT rules, and
 * the in-memory merge path that bench/ measures.
 *
 * It holds what a replica's LMDB state holds (registers, set elements, counters, flags,
 * document membership, conflict records, the version vector and the clock) in open-addressing
 * hash tables, and it changes them by exactly the rules of spec/data-model.md: LWW registers
 * ordered by (hlc, origin, seq) with the replaced-dot conflict rule (LWW-*), add-wins OR-sets
 * with observed dots (ORSET-*), PN-counters (COUNTER-*), enable-wins flags (FLAG-*),
 * membership with the touch rule (DOC-*, TOUCH-*), and the pending rules (PEND-*) reported to
 * the caller instead of queued. Local writes are made the way a real replica makes them
 * (replaced and observed dots read from the current state, the next seq, one HLC per commit,
 * names in a format-2 name table), so tests can generate histories that respect the model,
 * and a canonical dump renders the whole state by name as sorted text so that replicas can be
 * compared byte for byte.
 *
 * It knows no schema: collections and fields are whatever names the ops carry, numbered by
 * the model itself on first sight (mem_names.c), and values are typed by the ops. It checks
 * only that a value fits its op's kind; a declared schema's rules are core/schema.c's, applied
 * by the store to local writes.
 *
 * No I/O, no clock, no randomness: wall-clock time is an argument. Applying a commit does not
 * allocate per op: tables grow by doubling and values are copied into byte pools the state
 * owns. Not thread-safe; one state per thread. Implemented in core/mem.c (rules, apply),
 * mem_table.c (tables), mem_names.c (names), mem_local.c (local commits) and mem_read.c
 * (reads, dump), sharing mem_int.h.
 */
#ifndef KITH_MEM_H
#define KITH_MEM_H

#include "core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kith__memrep;

/* Create an empty state for the replica `self` (its id, != 0). 0 or KITH_ENOMEM; on failure
 * *out is NULL. Release with kith__memrep_free(), which takes NULL. */
int kith__memrep_new(uint64_t self, struct kith__memrep **out);
void kith__memrep_free(struct kith__memrep *m);

/* ---- applying commits from any origin ------------------------------------------------- */

/* Return values of kith__memrep_apply besides 0 (applied) and negative errors:
 * KNOWN, every op of the commit was applied before; TOO_EARLY, its HLC is more than 60 s
 * ahead of wall_ms (PEND-3). Either way nothing changed. */
#define KITH__MEMREP_KNOWN 1
#define KITH__MEMREP_TOO_EARLY 2
/* Pass as wall_ms to skip the clock-skew rule. */
#define KITH__MEMREP_NO_CLOCK UINT64_MAX

/*
 * Apply a decoded commit (a local one made elsewhere, or a remote one, of either format)
 * atomically. Its ops' names are given the model's numbers (op->coll and op->field are
 * ignored); its values are assumed to have passed the decoder (UTF-8 is not checked again),
 * and the rest of its structure is checked here. Returns 0 (applied; the clock observed its
 * HLC), KITH__MEMREP_KNOWN, KITH__MEMREP_TOO_EARLY, KITH_EGAP (first_seq is not the next of
 * its origin, or a dot it names — its document's, a replaced, referenced or observed one — is
 * not applied yet: PEND-1/PEND-2), KITH_EINVAL (a commit that overlaps what is held without
 * matching it, a bad name or name index, an op whose value does not fit its kind or that has
 * observed dots it may not have), KITH_ETOOBIG (more than 256 collections, or 255 fields in
 * one, in all), or KITH_ENOMEM. Every refusal leaves the state unchanged (names it numbered
 * stay numbered, which no read shows), except KITH_ENOMEM, after which the state must be
 * freed. Refused while a local commit is open (KITH_EINVAL).
 */
int kith__memrep_apply(struct kith__memrep *m, const struct kith__commit *c, uint64_t wall_ms);

/* ---- local writes, as a replica's write transaction makes them ------------------------ */

/*
 * Open a local commit: its HLC is kith__hlc_tick(clock, wall_ms) and its first seq the next
 * of this replica. Each write below applies at once (later writes and reads see it) and
 * becomes one op. kith__memrep_commit closes it. Collections and fields are named by
 * NUL-terminated names ([A-Za-z][A-Za-z0-9_]*, at most 64 bytes); a name never seen before
 * is numbered. A write that fails changes nothing (but after KITH_ENOMEM the state must be
 * freed) and the commit stays open. Errors of the writes: KITH_EINVAL (no commit open, not a
 * name, a value that does not fit the op: SET type, text that is not UTF-8 or holds a NUL, a
 * time outside the years 0001..9999, an empty element), KITH_ETOOBIG (a value or element
 * longer than KITH__MAX_VALUE_BYTES / KITH__MAX_ELEM_BYTES, more names than the model or one
 * commit holds), KITH_ENOTFOUND (the document is not live here), KITH_ENOMEM.
 */
int kith__memrep_begin(struct kith__memrep *m, uint64_t wall_ms);
int kith__memrep_doc_create(struct kith__memrep *m, const char *coll, kith_dot *doc);
int kith__memrep_doc_delete(struct kith__memrep *m, const char *coll, kith_dot doc);
/* A FIELD_SET of any value but a SET (NULL clears). */
int kith__memrep_field_set(struct kith__memrep *m, const char *coll, kith_dot doc,
                           const char *field, const kith_value *v);
int kith__memrep_set_add(struct kith__memrep *m, const char *coll, kith_dot doc, const char *field,
                         const char *elem, size_t len);
/* Removing an element that is not there writes nothing and returns 0. */
int kith__memrep_set_remove(struct kith__memrep *m, const char *coll, kith_dot doc,
                            const char *field, const char *elem, size_t len);
/* A COUNTER_ADD of delta (any int64, 0 too: the counter then exists). */
int kith__memrep_counter_add(struct kith__memrep *m, const char *coll, kith_dot doc,
                             const char *field, int64_t delta);
/* on: a FLAG_ENABLE observing the flag's live dots; off: a FLAG_DISABLE observing them, or
 * nothing (and 0) when the flag is not set. */
int kith__memrep_flag_set(struct kith__memrep *m, const char *coll, kith_dot doc, const char *field,
                          bool on);

/*
 * Close the local commit. *out receives a self-contained copy of it, of format 2 (one
 * allocation, released with kith__memrep_commit_free), to be delivered to other states; NULL
 * when the commit wrote nothing (no seq was used). 0 or KITH_EINVAL (none open), KITH_ENOMEM
 * (the commit stays open).
 */
int kith__memrep_commit(struct kith__memrep *m, struct kith__commit **out);

/* A self-contained copy of any commit (ops, values, observed dots and names in one
 * allocation; its names are NUL-terminated after their len bytes). */
int kith__memrep_commit_copy(const struct kith__commit *c, struct kith__commit **out);
void kith__memrep_commit_free(struct kith__commit *c);

/* ---- reading ---------------------------------------------------------------------------- */

/* Collections and fields are named as for writes; a name the model has never seen reads as
 * absent (KITH_ENOTFOUND, false or 0). */

uint64_t kith__memrep_self(const struct kith__memrep *m);
/* The version vector (origin -> highest seq applied) and the clock. */
const kith_vv *kith__memrep_vv(const struct kith__memrep *m);
uint64_t kith__memrep_hlc(const struct kith__memrep *m);
/* Ops applied to this state, local and remote. */
uint64_t kith__memrep_ops_applied(const struct kith__memrep *m);

bool kith__memrep_doc_live(const struct kith__memrep *m, const char *coll, kith_dot doc);
/* The membership dots of a document, sorted by (origin, seq); returns how many there are
 * (copies at most cap into out, which may be NULL). */
size_t kith__memrep_doc_dots(const struct kith__memrep *m, const char *coll, kith_dot doc,
                             kith_dot *out, size_t cap);
/*
 * A register: its value (a view valid until the state next changes), and the HLC and dot of
 * the write that holds it (either may be NULL). KITH_ENOTFOUND if never written. A cleared
 * field reads as KITH_TYPE_NULL with the dot of the write that cleared it.
 */
int kith__memrep_field_get(const struct kith__memrep *m, const char *coll, kith_dot doc,
                           const char *field, kith_value *out, uint64_t *hlc, kith_dot *dot);
/* Is the element live in the set field; and its live dots, as kith__memrep_doc_dots. */
bool kith__memrep_set_has(const struct kith__memrep *m, const char *coll, kith_dot doc,
                          const char *field, const char *elem, size_t len);
size_t kith__memrep_set_dots(const struct kith__memrep *m, const char *coll, kith_dot doc,
                             const char *field, const char *elem, size_t len, kith_dot *out,
                             size_t cap);
/* A counter's value, the sum of every delta applied to it (modulo 2^64, as an int64): 0, or
 * KITH_ENOTFOUND when no COUNTER_ADD was ever applied to it. */
int kith__memrep_counter_get(const struct kith__memrep *m, const char *coll, kith_dot doc,
                             const char *field, int64_t *out);
/* Is the flag set (a live dot); and its live dots, as kith__memrep_doc_dots. */
bool kith__memrep_flag_get(const struct kith__memrep *m, const char *coll, kith_dot doc,
                           const char *field);
size_t kith__memrep_flag_dots(const struct kith__memrep *m, const char *coll, kith_dot doc,
                              const char *field, kith_dot *out, size_t cap);

/* A conflict record (LWW-4, DOC-4). Names and values are views valid until the state next
 * changes. field NULL: a delete overruled by a concurrent write that kept the document
 * (DOC-4): winner_dot the write (winner_hlc 0 when applying the delete found it), loser_dot
 * the DOC_REMOVE, or (0, 0) when the write revived a document that a delete had emptied.
 * Values are NULL then. */
struct kith__memrep_conflict {
    const char *coll;  /* NUL-terminated */
    const char *field; /* NUL-terminated; NULL for the document's membership */
    kith_dot doc;
    kith_dot winner_dot, loser_dot;
    uint64_t winner_hlc, loser_hlc;
    kith_value winner, loser;
};

size_t kith__memrep_nconflicts(const struct kith__memrep *m);
/* Record i (0 <= i < nconflicts), in the order they were recorded. KITH_ENOTFOUND past them. */
int kith__memrep_conflict_get(const struct kith__memrep *m, size_t i,
                              struct kith__memrep_conflict *out);

/* ---- the canonical dump ------------------------------------------------------------------ */

/* Only live documents and their fields, elements, counters and set flags, without clocks or
 * dots: what an export shows. Without it, the dump holds every register, element, counter,
 * flag and membership entry with its HLC, dots or totals: the whole replicated state.
 * Conflicts, the clock and the model's numbers are local, never in it. */
#define KITH__MEMREP_DUMP_LIVE 1u

/*
 * Append the state as sorted lines of text to `out` (spec/data-model.md "Canonical dump"):
 * two states holding the same ops give the same bytes. 0 or KITH_ENOMEM.
 */
int kith__memrep_dump(const struct kith__memrep *m, unsigned flags, struct kith__wbuf *out);

#endif /* KITH_MEM_H */
