/*
 * fault.c — the message-fault table of the convergence checker (fault.h; spec/check.md
 * "Message faults"). Off by default: kith__fault_frame answers PASS until kith-check's daemon
 * mode enables it. A drop, duplicate or held-back frame inside the CURVE stream is what a
 * buggy peer or a broken relay would produce; the session is expected to refuse it, close,
 * and resume on the next connection without losing or applying anything twice.
 */
#include "fault.h"
#include "net.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static struct {
    volatile sig_atomic_t on;
    uint64_t rng;
    unsigned drop, dup, hold; /* per mille */
    const struct kith__session *held_for;
    int64_t held_opened_ms; /* with held_for, names the session the frame belongs to */
    void *held;
    size_t held_len;
    uint64_t ndrop, ndup, nhold;
} ft;

static unsigned
per_mille(void)
{
    /* splitmix64: seeded, so that one seed gives one sequence of decisions */
    uint64_t z = (ft.rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (unsigned)((z ^ (z >> 31)) % 1000);
}

void
kith__fault_enable(uint64_t seed, unsigned drop, unsigned dup, unsigned hold)
{
    ft.rng = seed;
    ft.drop = drop;
    ft.dup = dup;
    ft.hold = hold;
    ft.on = 1;
}

void
kith__fault_disable(void)
{
    ft.on = 0;
}

enum kith__fault_action
kith__fault_frame(const struct kith__session *s, const void *frame, size_t len)
{
    unsigned x;

    if (!ft.on)
        return KITH__FAULT_PASS;
    x = per_mille();
    if (x < ft.drop) {
        ft.ndrop++;
        return KITH__FAULT_DROP;
    }
    x -= ft.drop;
    if (x < ft.dup) {
        ft.ndup++;
        return KITH__FAULT_DUP;
    }
    x -= ft.dup;
    if (x < ft.hold && ft.held == NULL) {
        ft.held = malloc(len ? len : 1);
        if (ft.held == NULL)
            return KITH__FAULT_PASS;
        memcpy(ft.held, frame, len);
        ft.held_len = len;
        ft.held_for = s;
        ft.held_opened_ms = s->opened_ms;
        ft.nhold++;
        return KITH__FAULT_HOLD;
    }
    return KITH__FAULT_PASS;
}

int
kith__fault_release(const struct kith__session *s, void **frame, size_t *len)
{
    if (ft.held == NULL || ft.held_for != s)
        return 0;
    if (ft.held_opened_ms != s->opened_ms) {
        /* its session ended and another took the struct: the frame is lost with the old one */
        free(ft.held);
        ft.held = NULL;
        return 0;
    }
    *frame = ft.held;
    *len = ft.held_len;
    ft.held = NULL;
    return 1;
}

void
kith__fault_counts(uint64_t *dropped, uint64_t *duplicated, uint64_t *held)
{
    *dropped = ft.ndrop;
    *duplicated = ft.ndup;
    *held = ft.nhold;
}
