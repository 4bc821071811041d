/*
 * replica.h — source and receiver replicas for the store and sync scenarios (bench/replica.c),
 * built with the public API only.
 */
#ifndef KITH_BENCH_REPLICA_H
#define KITH_BENCH_REPLICA_H

#include "bench.h"
#include "kith.h"

/* A closed replica holding `ops` ops of its own, and (after bench_source_batches) the
 * batches that carry all of them to an empty replica. */
struct bench_source {
    char dir[4200];
    uint8_t pk[KITH_PUBKEY_BYTES];
    uint64_t id;
    uint64_t ops;
    uint32_t ndocs;
    kith_buf batches[64];
    size_t nbatches;
    uint64_t batch_ops, batch_bytes;
};

/* Write a source of exactly n ops (n >= 2) under o->dir. 0 or -1 (said on stderr). */
int bench_source_make(const struct bench_opts *o, uint64_t n, struct bench_source *src);
/* Cut its whole history into batches of at most max_ops ops (0: as few as the size cap
 * allows). 0 or -1. */
int bench_source_batches(struct bench_source *src, size_t max_ops);
/* Free the batches and remove the source's directory. */
void bench_source_free(struct bench_source *src);
/* A fresh replica under o->dir (path into dir), opened with KITH_CREATE | flags, trusting
 * the source when src is not NULL. 0 or -1. */
int bench_receiver_open(const struct bench_opts *o, const struct bench_source *src, unsigned flags,
                        char *dir, size_t cap, kith_replica **out);

#endif /* KITH_BENCH_REPLICA_H */
