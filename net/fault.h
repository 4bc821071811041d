/*
 * fault.h — message faults for the convergence checker (spec/check.md "Faults"):
 * a table of probabilities with its own seeded generator that kith__session_input consults
 * for every frame it receives, to drop it, deliver it twice, or hold it back and deliver it
 * after the session's next frame (a reorder). The table is off unless kith__fault_enable was
 * called: only kith-check's daemon mode calls it; kith serve, kith_sync and the tests never do.
 * One table per process (a daemon runs its sessions in one thread), so it is a global on
 * purpose; it is hidden like every internal symbol.
 */
#ifndef KITH_FAULT_H
#define KITH_FAULT_H

#include <stddef.h>
#include <stdint.h>

struct kith__session;

enum kith__fault_action {
    KITH__FAULT_PASS = 0, /* deliver */
    KITH__FAULT_DROP,     /* forget the frame */
    KITH__FAULT_DUP,      /* deliver it twice */
    KITH__FAULT_HOLD      /* kept; delivered after the session's next frame */
};

/* Per-mille probabilities of each fault for every received frame, and the generator's seed.
 * Not thread-safe: call before the daemon starts. */
void kith__fault_enable(uint64_t seed, unsigned drop, unsigned dup, unsigned hold);
/* Stop injecting (async-signal-safe: a signal handler may call it). A held frame still
 * comes out after the next one. */
void kith__fault_disable(void);

/* What to do with this frame of session s. KITH__FAULT_HOLD means the table kept a copy. */
enum kith__fault_action kith__fault_frame(const struct kith__session *s, const void *frame,
                                          size_t len);
/* A frame held for session s (the same session: same struct and open time), to deliver now;
 * the caller frees *frame with free(). 0 if none. Up to eight sessions may each have one
 * frame held; a ninth hold loses the oldest. */
int kith__fault_release(const struct kith__session *s, void **frame, size_t *len);

/* Frames dropped, duplicated and held so far (for the daemon's exit line). */
void kith__fault_counts(uint64_t *dropped, uint64_t *duplicated, uint64_t *held);

#endif /* KITH_FAULT_H */
