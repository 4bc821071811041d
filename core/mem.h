/*
 * mem.h — a replica's state held in memory: the reference model of kith's CRDT rules, and
 * the in-memory merge path that bench/ measures.
 *
 * It holds what a replica's LMDB state holds (registers, set elements, document membership,
 * conflict records, the version vector and the clock) in open-addressing hash tables, and it
 * changes them by exactly the rules of spec/data-model.md: LWW registers ordered by (hlc,
 * origin, seq) with the replaced-dot conflict rule (LWW-*), add-wins OR-sets with observed dots
 * (ORSET-*), membership with the touch rule (DOC-*, TOUCH-*), and the pending rules (PEND-*)
 * reported to the caller instead of queued. Local writes are made the way a real replica makes
 * them (replaced and observed dots read from the current state, the next seq, one HLC per
 * commit), so tests can generate histories that respect the model, and a canonical dump
 * renders the whole state as sorted text so that replicas can be compared byte for byte.
 *
 * No I/O, no clock, no randomness: wall-clock time is an argument. Applying a commit does not
 * allocate per op: tables grow by doubling and values are copied into byte pools the state
 * owns. Not thread-safe; one state per thread. Implemented in core/mem.c (tables, rules,
 * apply), mem_local.c (local commits) and mem_read.c (reads, dump), sharing mem_int.h.
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
 * Apply a decoded commit (a local one made elsewhere, or a remote one) atomically. Assumes
 * its values passed the schema (the decoder checks them); checks the structure itself.
 * Returns 0 (applied; the clock observed its HLC), KITH__MEMREP_KNOWN,
 * KITH__MEMREP_TOO_EARLY, KITH_EGAP (first_seq is not the next of its origin, or a dot it
 * names — its document's, a replaced, referenced or observed one — is not applied yet:
 * PEND-1/PEND-2), KITH_EINVAL (a commit that overlaps what is held without matching it, an
 * op that names no real field or has the wrong kind of value), or KITH_ENOMEM. Every refusal
 * leaves the state unchanged, except KITH_ENOMEM, after which the state must be freed.
 * Refused while a local commit is open (KITH_EINVAL).
 */
int kith__memrep_apply(struct kith__memrep *m, const struct kith__commit *c, uint64_t wall_ms);

/* ---- local writes, as a replica's write transaction makes them ------------------------ */

/*
 * Open a local commit: its HLC is kith__hlc_tick(clock, wall_ms) and its first seq the next
 * of this replica. Each write below applies at once (later writes and reads see it) and
 * becomes one op. kith__memrep_commit closes it. A write that fails changes nothing (but
 * after KITH_ENOMEM the state must be freed) and the commit stays open. Errors of the writes:
 * KITH_EINVAL (no commit open, bad collection or field number, a set operation on a non-set field
 * or the reverse), KITH_ESCHEMA (the value does not fit: `why`, may be NULL, says which field and
 * why), KITH_ENOTFOUND (the document is not live here), KITH_ENOMEM.
 */
int kith__memrep_begin(struct kith__memrep *m, uint64_t wall_ms);
int kith__memrep_doc_create(struct kith__memrep *m, int coll, kith_dot *doc);
int kith__memrep_doc_delete(struct kith__memrep *m, int coll, kith_dot doc);
int kith__memrep_field_set(struct kith__memrep *m, int coll, kith_dot doc, int field,
                           const kith_value *v, char *why, size_t why_cap);
int kith__memrep_set_add(struct kith__memrep *m, int coll, kith_dot doc, int field,
                         const char *elem, size_t len, char *why, size_t why_cap);
/* Removing an element that is not there writes nothing and returns 0. */
int kith__memrep_set_remove(struct kith__memrep *m, int coll, kith_dot doc, int field,
                            const char *elem, size_t len, char *why, size_t why_cap);

/*
 * Close the local commit. *out receives a self-contained copy of it (one allocation, released
 * with kith__memrep_commit_free), to be delivered to other states; NULL when the commit wrote
 * nothing (no seq was used). 0 or KITH_EINVAL (none open), KITH_ENOMEM (the commit stays open).
 */
int kith__memrep_commit(struct kith__memrep *m, struct kith__commit **out);

/* A self-contained copy of any commit (ops, values, observed dots in one allocation). */
int kith__memrep_commit_copy(const struct kith__commit *c, struct kith__commit **out);
void kith__memrep_commit_free(struct kith__commit *c);

/* ---- reading ---------------------------------------------------------------------------- */

uint64_t kith__memrep_self(const struct kith__memrep *m);
/* The version vector (origin -> highest seq applied) and the clock. */
const kith_vv *kith__memrep_vv(const struct kith__memrep *m);
uint64_t kith__memrep_hlc(const struct kith__memrep *m);
/* Ops applied to this state, local and remote. */
uint64_t kith__memrep_ops_applied(const struct kith__memrep *m);

bool kith__memrep_doc_live(const struct kith__memrep *m, int coll, kith_dot doc);
/* The membership dots of a document, sorted by (origin, seq); returns how many there are
 * (copies at most cap into out, which may be NULL). */
size_t kith__memrep_doc_dots(const struct kith__memrep *m, int coll, kith_dot doc, kith_dot *out,
                             size_t cap);
/*
 * A register: its value (a view valid until the state next changes), and the HLC and dot of
 * the write that holds it (either may be NULL). KITH_ENOTFOUND if never written. A cleared
 * field reads as KITH_TYPE_NULL with the dot of the write that cleared it.
 */
int kith__memrep_field_get(const struct kith__memrep *m, int coll, kith_dot doc, int field,
                           kith_value *out, uint64_t *hlc, kith_dot *dot);
/* Is the element live in the set field; and its live dots, as kith__memrep_doc_dots. */
bool kith__memrep_set_has(const struct kith__memrep *m, int coll, kith_dot doc, int field,
                          const char *elem, size_t len);
size_t kith__memrep_set_dots(const struct kith__memrep *m, int coll, kith_dot doc, int field,
                             const char *elem, size_t len, kith_dot *out, size_t cap);

/* A conflict record (LWW-4, DOC-4). Values are views valid until the state next changes.
 * field 0: a delete overruled by a concurrent write that kept the document (DOC-4): winner_dot
 * the write (winner_hlc 0 when applying the delete found it), loser_dot the DOC_REMOVE, or
 * (0, 0) when the write revived a document that a delete had emptied. Values are NULL. */
struct kith__memrep_conflict {
    int coll, field;
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

/* Only live documents and their fields and elements, without clocks or dots: what an export
 * shows. Without it, the dump holds every register, element and membership entry with its
 * HLC and dots: the whole replicated state. Conflicts and the clock are local, never in it. */
#define KITH__MEMREP_DUMP_LIVE 1u

/*
 * Append the state as sorted lines of text to `out` (spec/data-model.md "Canonical dump"):
 * two states holding the same ops give the same bytes. 0 or KITH_ENOMEM.
 */
int kith__memrep_dump(const struct kith__memrep *m, unsigned flags, struct kith__wbuf *out);

#endif /* KITH_MEM_H */
