/*
 * fault.c — the message-fault table of the convergence checker (fault.h; spec/check.md
 * "Faults"). Off by default: kith__fault_frame answers PASS until kith-check's daemon
 * mode enables it. A drop, duplicate or held-back frame inside the CURVE stream is what a
 * buggy peer or a broken relay would produce; the session is expected to refuse it, close,
 * and resume on the next connection without losing or applying anything twice.
 */
#include "fault.h"
#include "net.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define HELD_SLOTS 8

/* A frame held back for one session, named by its struct and the time it opened (a struct
 * is reused by later sessions). */
struct held {
    const struct kith__session *s;
    int64_t opened_ms;
    void *frame; /* NULL: the slot is free */
    size_t len;
    uint64_t when; /* frames seen before it was held: the oldest slot is reused first */
};

static struct {
    volatile sig_atomic_t on;
    uint64_t rng;
    unsigned drop, dup, hold; /* per mille */
    struct held held[HELD_SLOTS];
    uint64_t frames;
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
    if (x < ft.hold) {
        struct held *h = &ft.held[0];
        for (int i = 0; i < HELD_SLOTS; i++) {
            if (ft.held[i].frame && ft.held[i].s == s)
                return KITH__FAULT_PASS; /* one held frame per session */
            if (!ft.held[i].frame || (h->frame && ft.held[i].when < h->when))
                h = &ft.held[i];
        }
        void *copy = malloc(len ? len : 1);
        if (copy == NULL)
            return KITH__FAULT_PASS;
        free(h->frame); /* all slots taken: the oldest held frame is lost */
        memcpy(copy, frame, len);
        *h = (struct held){s, s->opened_ms, copy, len, ft.frames++};
        ft.nhold++;
        return KITH__FAULT_HOLD;
    }
    return KITH__FAULT_PASS;
}

int
kith__fault_release(const struct kith__session *s, void **frame, size_t *len)
{
    for (int i = 0; i < HELD_SLOTS; i++) {
        struct held *h = &ft.held[i];
        if (h->frame == NULL || h->s != s)
            continue;
        if (h->opened_ms != s->opened_ms) {
            /* its session ended and another took the struct: lost with the old session */
            free(h->frame);
            h->frame = NULL;
            return 0;
        }
        *frame = h->frame;
        *len = h->len;
        h->frame = NULL;
        return 1;
    }
    return 0;
}

void
kith__fault_counts(uint64_t *dropped, uint64_t *duplicated, uint64_t *held)
{
    *dropped = ft.ndrop;
    *duplicated = ft.ndup;
    *held = ft.nhold;
}
