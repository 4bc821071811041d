/*
 * hlc.c — the hybrid logical clock (spec/data-model.md "Time"): 48 bits of wall-clock
 * milliseconds above 16 bits of counter, so that a write causally after another always has a
 * larger timestamp whatever the clocks say, and timestamps stay close to real time. The wall
 * clock arrives as an argument: core reads no clock.
 */
#include "core.h"

#define HLC_MS_MAX ((1ull << 48) - 1)

uint64_t
kith__hlc_tick(uint64_t last, uint64_t wall_ms)
{
    uint64_t now = KITH__HLC_MAKE(wall_ms > HLC_MS_MAX ? HLC_MS_MAX : wall_ms, 0);
    uint64_t next = last == UINT64_MAX ? UINT64_MAX : last + 1;
    return now > next ? now : next;
}

uint64_t
kith__hlc_observe(uint64_t local, uint64_t remote)
{
    return remote > local ? remote : local;
}

bool
kith__hlc_too_far_ahead(uint64_t hlc, uint64_t wall_ms)
{
    uint64_t ms = KITH__HLC_MS(hlc);
    return ms > wall_ms && ms - wall_ms > KITH__HLC_MAX_AHEAD_MS;
}
