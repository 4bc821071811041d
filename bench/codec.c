/*
 * codec.c — scenario 5, encode and decode: ops per second and bytes per op on the wire, for
 * FIELD_SET ops with 20-byte values in commits of 1, 10 and 100 ops (bench/gen.c).
 *
 *   codec.encode.cK     kith__commit_encode of every commit into one reused buffer;
 *   msgpack.unpack.cK   the bound of decoding: bare msgpack_unpack of the same bytes into one
 *                       reused zone (no guard, no checks, no conversion);
 *   codec.decode.cK     kith__commit_decode of every commit (guard, unpack, ops, schema
 *                       checks), the arena reset between commits as the store does;
 *   batch.encode.cK     kith__batch_encode of all the commits as one batch with one signed
 *                       head: its bytes per op are the wire size, all metadata included;
 *   batch.decode.cK     kith__batch_decode of that batch (structure only; commits stay views).
 */
#include "gen.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct bench_target t_decode = {"decode >= 5 M ops/s", BENCH_M_OPS_PER_S,
                                             BENCH_AT_LEAST, 5e6};
static const struct bench_target t_wire = {"wire <= 40 B/op (20-byte values)", BENCH_M_BYTES_PER_OP,
                                           BENCH_AT_MOST, 40};

static int
codec_case(const struct bench_opts *o, uint64_t n, uint32_t k)
{
    struct bench_stream s;
    struct bench_encoded e;
    struct kith__wbuf w = {0}, bw = {0};
    struct kith__arena arena = {0};
    struct kith__batch b = {0};
    double t[BENCH_MAX_REPS];
    char name[BENCH_NAME_MAX], bound[BENCH_NAME_MAX], params[96], why[128];
    int rc = -1;

    if (bench_stream_fields(&s, 0x1111222233334444ull, n, k, BENCH_DOCS, 100 + k) != 0)
        return -1;
    if (bench_stream_encode(&s, &e) != 0)
        goto out_stream;
    snprintf(params, sizeof params, "{\"commit\":%u,\"value\":%d,\"docs\":%u}", k,
             BENCH_VALUE_BYTES, BENCH_DOCS);
    struct bench_spec spec = {.params = params, .ops = n, .name = name, .unit = "op"};

    /* encode */
    if (kith__wbuf_reserve(&w, e.buf.len + 64) != 0)
        goto out_encoded;
    for (int r = 0; r < o->reps; r++) {
        w.len = 0;
        double t0 = bench_now();
        for (size_t i = 0; i < s.ncommits; i++)
            if (kith__commit_encode(&s.commits[i], &w) != 0)
                goto out_encoded;
        t[r] = bench_now() - t0;
    }
    snprintf(name, sizeof name, "codec.encode.c%u", k);
    spec.bytes_per_op = (double)w.len / (double)n;
    if (bench_report(o, &spec, t, o->reps) != 0)
        goto out_encoded;

    /* the bound of decoding: msgpack_unpack alone */
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 1 << 16))
        goto out_encoded;
    for (int r = 0; r < o->reps && rc == -1; r++) {
        double t0 = bench_now();
        for (size_t i = 0; i < e.ncommits; i++) {
            msgpack_object obj;
            size_t off = 0;
            if (msgpack_unpack((const char *)e.buf.data + e.off[i], e.off[i + 1] - e.off[i], &off,
                               &zone, &obj) != MSGPACK_UNPACK_SUCCESS) {
                rc = -2;
                break;
            }
            msgpack_zone_clear(&zone);
        }
        t[r] = bench_now() - t0;
    }
    msgpack_zone_destroy(&zone);
    if (rc == -2)
        goto out_encoded;
    rc = -1;
    snprintf(bound, sizeof bound, "msgpack.unpack.c%u", k);
    snprintf(name, sizeof name, "%s", bound);
    spec.bytes_per_op = 0;
    if (bench_report(o, &spec, t, o->reps) != 0)
        goto out_encoded;

    /* decode */
    for (int r = 0; r < o->reps; r++) {
        double t0 = bench_now();
        for (size_t i = 0; i < e.ncommits; i++) {
            struct kith__commit c;
            kith__arena_reset(&arena);
            if (kith__commit_decode(e.buf.data + e.off[i], e.off[i + 1] - e.off[i], s.origin,
                                    s.commits[i].first_seq, &c, &arena, why, sizeof why) != 0) {
                fprintf(stderr, "kith-bench: decode: %s\n", why);
                goto out_encoded;
            }
        }
        t[r] = bench_now() - t0;
    }
    snprintf(name, sizeof name, "codec.decode.c%u", k);
    spec.bound = bound;
    spec.target = &t_decode;
    if (bench_report(o, &spec, t, o->reps) != 0)
        goto out_encoded;
    spec.bound = NULL;
    spec.target = NULL;

    /* a batch of all of it: the wire size */
    struct kith__batch_commit *bc = calloc(e.ncommits, sizeof *bc);
    struct kith__batch_head head = {.origin = s.origin,
                                    .seq = s.commits[s.ncommits - 1].first_seq +
                                           s.commits[s.ncommits - 1].nops - 1};
    if (bc == NULL)
        goto out_encoded;
    for (size_t i = 0; i < e.ncommits; i++)
        bc[i] = (struct kith__batch_commit){s.origin, s.commits[i].first_seq, e.buf.data + e.off[i],
                                            e.off[i + 1] - e.off[i]};
    b = (struct kith__batch){
        .sender = s.origin, .ncommits = e.ncommits, .commits = bc, .nheads = 1, .heads = &head};
    for (int r = 0; r < o->reps; r++) {
        bw.len = 0;
        double t0 = bench_now();
        int brc = kith__batch_encode(&b, &bw);
        t[r] = bench_now() - t0;
        if (brc != 0)
            goto out_bc;
    }
    snprintf(name, sizeof name, "batch.encode.c%u", k);
    spec.bytes_per_op = (double)bw.len / (double)n;
    spec.target = &t_wire;
    if (bench_report(o, &spec, t, o->reps) != 0)
        goto out_bc;
    spec.target = NULL;
    for (int r = 0; r < o->reps; r++) {
        struct kith__batch d;
        kith__arena_reset(&arena);
        double t0 = bench_now();
        int brc = kith__batch_decode(bw.data, bw.len, &d, &arena);
        t[r] = bench_now() - t0;
        if (brc != 0 || d.ncommits != e.ncommits)
            goto out_bc;
    }
    snprintf(name, sizeof name, "batch.decode.c%u", k);
    rc = bench_report(o, &spec, t, o->reps);
out_bc:
    free(bc);
out_encoded:
    kith__arena_free(&arena);
    kith__wbuf_free(&bw);
    kith__wbuf_free(&w);
    bench_encoded_free(&e);
out_stream:
    bench_stream_free(&s);
    return rc;
}

int
bench_codec(const struct bench_opts *o)
{
    uint64_t n = bench_size(o, 200000, 1000);
    static const uint32_t sizes[] = {1, 10, 100};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (codec_case(o, n, sizes[i]) != 0)
            return -1;
    return 0;
}
