/*
 * gen.h — generated commit streams shared by the core scenarios (bench/gen.c).
 */
#ifndef KITH_BENCH_GEN_H
#define KITH_BENCH_GEN_H

#include "bench.h"
#include "core.h"

#define BENCH_DOCS 10000u

/* N FIELD_SET ops of one origin in commits of `per_commit`, all memory owned by the stream. */
struct bench_stream {
    uint64_t origin;
    uint64_t nops;
    uint32_t ndocs;
    size_t ncommits;
    struct kith__commit *commits;
    struct kith__op *ops;
    char *values; /* nops * BENCH_VALUE_BYTES */
};

/* The canonical bytes of every commit of a stream, back to back; commit i is
 * buf.data[off[i] .. off[i + 1]). */
struct bench_encoded {
    struct kith__wbuf buf;
    size_t *off;
    size_t ncommits;
};

/* 0, or -1 when out of memory or asked for nothing. */
int bench_stream_fields(struct bench_stream *s, uint64_t origin, uint64_t nops, uint32_t per_commit,
                        uint32_t ndocs, uint64_t seed);
void bench_stream_free(struct bench_stream *s);
int bench_stream_encode(const struct bench_stream *s, struct bench_encoded *e);
void bench_encoded_free(struct bench_encoded *e);

#endif /* KITH_BENCH_GEN_H */
