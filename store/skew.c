/*
 * skew.c — the wall clock as one replica reads it. A write stamps its commit with it and a
 * received batch holds back ops from too far ahead of it (spec/data-model.md "Time"); an
 * offset, zero unless kith-check skews one replica's clock (spec/check.md), lets the
 * checker give one replica a wrong clock without touching the machine's.
 */
#include "store.h"

int64_t
kith__replica_now_ms(const kith_replica *r)
{
    return kith__now_ms() + r->clock_offset_ms;
}

void
kith__replica_set_clock_offset(kith_replica *r, int64_t ms)
{
    r->clock_offset_ms = ms;
}
