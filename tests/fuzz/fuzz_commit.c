/*
 * fuzz_commit.c — libFuzzer target for the commit decoder (spec/encoding.md "Commit"). Any
 * input must be refused or decoded without a crash, a leak or a large allocation, and an
 * accepted input must re-encode to exactly itself (the canonical-form promise). The first
 * byte picks first_seq so that the own-dot rules are exercised; the rest is the commit.
 * The guard is also checked against msgpack-c: whatever it lets through, msgpack_unpack must
 * read whole, as exactly the number of objects the guard counted.
 * Seeds: tests/fuzz/corpus/commit/.
 */
#include "core.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static void
dep(void *ctx, uint64_t origin, uint64_t seq)
{
    (void)origin;
    *(uint64_t *)ctx += seq;
}

static size_t
objects(const msgpack_object *o)
{
    size_t n = 1;
    if (o->type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t i = 0; i < o->via.array.size; i++)
            n += objects(&o->via.array.ptr[i]);
    return n;
}

/* The guard's promise to msgpack-c: what it passes is one complete object of that size. */
static void
guard_vs_msgpack(const uint8_t *p, size_t len)
{
    msgpack_zone zone;
    msgpack_object root;
    size_t nobjects = 0, off = 0;
    if (kith__mp_guard(p, len, 4, 1u << 20, &nobjects) != 0)
        return;
    if (!msgpack_zone_init(&zone, nobjects * sizeof(msgpack_object) + 64))
        return;
    if (msgpack_unpack((const char *)p, len, &off, &zone, &root) != MSGPACK_UNPACK_SUCCESS ||
        off != len || objects(&root) != nobjects)
        abort();
    msgpack_zone_destroy(&zone);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct kith__arena arena;
    static struct kith__wbuf out;
    struct kith__commit c;
    char why[128];
    uint64_t sum = 0;

    if (size < 1)
        return 0;
    guard_vs_msgpack(data + 1, size - 1);
    uint64_t first_seq = data[0] == 0xff ? UINT64_MAX - 3 : data[0];
    kith__arena_reset(&arena);
    if (kith__commit_decode(data + 1, size - 1, 0x1111111111111111ull, first_seq, &c, &arena, why,
                            sizeof why) != 0)
        return 0;
    kith__commit_deps(&c, dep, &sum);
    out.len = 0;
    if (kith__commit_encode(&c, &out) != 0 || out.len != size - 1 ||
        memcmp(out.data, data + 1, size - 1) != 0)
        abort(); /* accepted but not canonical */
    return 0;
}
