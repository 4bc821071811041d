/*
 * apply.c — the store through the public API: scenario 2 (durable apply of a remote batch),
 * scenario 3 (local writes), and the apply half of scenario 7 (scaling).
 *
 *   apply.durable    a fresh replica that trusts the source applies the source's N ops
 *                    with kith_batch_apply: decode, chain and signature verification, log,
 *                    apply order, registers, membership, indexes; durable commit. Bound:
 *                    lmdb.one_txn.durable, the same number of raw puts of the same key and
 *                    value sizes in one durable transaction (a batch is one transaction).
 *   apply.nosync     the same with KITH_NOSYNC (MDB_NOSYNC). Bound: lmdb.c1000.nosync.
 *   local.txn1.*     single-field transactions (kith_txn_begin, kith_field_set, commit) on one
 *                    of 100 contacts. Bound (durable): lmdb.c1.durable, one put per durable
 *                    LMDB commit; target: within 1.2x of it.
 *   local.txn100.*   N fields in transactions of 100. Bound (durable): lmdb.c100.durable.
 *   scale.apply.N    apply.durable at N = 10k, 100k, 1M (--scaling), each beside raw LMDB at
 *                    the same N; the cost per op as a curve, flat within 1.5x as the target.
 *
 * Only the apply or the writes are timed; making the source, the batch and the receiver is not.
 */
#include "replica.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct bench_target t_apply = {"durable apply >= 0.5 M ops/s",
                                            BENCH_M_OPS_PER_S,
                                            BENCH_AT_LEAST,
                                            5e5,
                                            "lmdb.one_txn.durable",
                                            2.5e6};
static const struct bench_target t_apply_ratio = {"durable apply within 2x of raw LMDB",
                                                  BENCH_M_RATIO, BENCH_AT_LEAST, 0.5};
static const struct bench_target t_txn1 = {"1-field durable txn within 1.2x of bare commit",
                                           BENCH_M_RATIO, BENCH_AT_LEAST, 1 / 1.2};
static const struct bench_target t_txn100 = {"100-field txns >= 0.2 M fields/s durable",
                                             BENCH_M_OPS_PER_S,
                                             BENCH_AT_LEAST,
                                             2e5,
                                             "lmdb.c1000.durable",
                                             2.5e5};
static const struct bench_target t_apply_mem = {"1M-op apply heap growth <= 2x its batch size",
                                                BENCH_M_RATIO, BENCH_AT_MOST, 2};
static const struct bench_target t_flat = {"cost per op flat 10k..1M (max/min <= 1.5)",
                                           BENCH_M_EXTRA, BENCH_AT_MOST, 1.5};
static const struct bench_target t_rise = {"cost per op never rises 10k..1M by > 1.5x",
                                           BENCH_M_EXTRA, BENCH_AT_MOST, 1.5};

/* One repetition: a fresh receiver applies every batch of src; seconds in *t. */
static int
apply_rep(const struct bench_opts *o, const struct bench_source *src, unsigned flags, double *t,
          long *anon)
{
    struct bench_anon sampler;
    char dir[4200];
    kith_replica *r = NULL;
    uint64_t applied = 0;
    int rc = bench_receiver_open(o, src, flags, dir, sizeof dir, &r);
    if (rc != 0)
        return -1;
    bench_anon_start(&sampler);
    double t0 = bench_now();
    for (size_t i = 0; i < src->nbatches && rc == 0; i++) {
        kith_apply_info ai;
        rc = kith_batch_apply(r, src->batches[i].data, src->batches[i].len, &ai);
        if (rc < 0)
            fprintf(stderr, "kith-bench: batch apply: %s: %s\n", kith_strerror(rc), kith_errmsg(r));
        else
            applied += ai.ops_applied;
    }
    *t = bench_now() - t0;
    long peak = bench_anon_stop(&sampler);
    if (peak > *anon)
        *anon = peak;
    kith_close(r);
    bench_rmtree(dir);
    if (rc == 0 && applied != src->ops) {
        fprintf(stderr, "kith-bench: applied %llu of %llu ops\n", (unsigned long long)applied,
                (unsigned long long)src->ops);
        rc = -1;
    }
    return rc < 0 ? -1 : 0;
}

static int
apply_case(const struct bench_opts *o, const struct bench_source *src, const char *name,
           unsigned flags, const char *bound, bool targets, long *anon_out)
{
    double t[BENCH_MAX_REPS];
    char params[160];
    long anon = 0;
    for (int r = 0; r < o->reps; r++)
        if (apply_rep(o, src, flags, &t[r], &anon) != 0)
            return -1;
    if (anon_out != NULL)
        *anon_out = anon;
    snprintf(params, sizeof params,
             "{\"commit\":10,\"batches\":%zu,\"sync\":\"%s\",\"docs\":%u,\"value\":%d}",
             src->nbatches, (flags & KITH_NOSYNC) ? "nosync" : "durable", src->ndocs,
             BENCH_VALUE_BYTES);
    struct bench_spec spec = {.name = name,
                              .params = params,
                              .ops = src->ops,
                              .bytes_per_op = (double)src->batch_bytes / (double)src->ops,
                              .unit = "op",
                              .bound = bound,
                              .extra_name = "anon_growth_kb",
                              .extra = (double)anon,
                              .target = targets ? &t_apply : NULL};
    if (bench_report(o, &spec, t, o->reps) != 0)
        return -1;
    if (targets) {
        /* The same figure against the second target (ratio to raw LMDB). */
        char name2[BENCH_NAME_MAX];
        snprintf(name2, sizeof name2, "%s.vs_lmdb", name);
        spec.name = name2;
        spec.target = &t_apply_ratio;
        return bench_report(o, &spec, t, o->reps);
    }
    return 0;
}

int
bench_apply(const struct bench_opts *o)
{
    struct bench_source src;
    uint64_t n = bench_size(o, BENCH_N_APPLY, BENCH_N_APPLY_SMOKE);
    int rc = -1;
    if (bench_source_make(o, n, &src) != 0)
        return -1;
    if (bench_source_batches(&src, 0) != 0)
        goto out;
    if (apply_case(o, &src, "apply.durable", 0, "lmdb.one_txn.durable", true, NULL) == 0 &&
        apply_case(o, &src, "apply.nosync", KITH_NOSYNC, "lmdb.c1000.nosync", false, NULL) == 0)
        rc = 0;
out:
    bench_source_free(&src);
    return rc;
}

/* ---- local writes ------------------------------------------------------------------------ */

static int
local_rep(const struct bench_opts *o, uint64_t n, uint32_t per_txn, unsigned flags, double *t)
{
    enum { NDOCS = 100 };

    static const char *const fields[] = {"name", "phone", "company", "notes"};
    char dir[4200], v[BENCH_VALUE_BYTES];
    kith_replica *r = NULL;
    kith_txn *txn = NULL;
    kith_docid docs[NDOCS];
    uint64_t seed = 77;
    int rc;

    if (bench_receiver_open(o, NULL, flags, dir, sizeof dir, &r) != 0)
        return -1;
    memset(v, 'v', sizeof v);
    kith_value val = {.type = KITH_TYPE_STRING, .u.s = {v, BENCH_VALUE_BYTES}};
    rc = kith_txn_begin(r, KITH_TXN_WRITE, &txn);
    for (int i = 0; rc == 0 && i < NDOCS; i++) {
        rc = kith_doc_create(txn, "contacts", &docs[i]);
        if (rc == 0)
            rc = kith_field_set(txn, "contacts", &docs[i], "name", &val);
    }
    if (rc == 0)
        rc = kith_txn_commit(&txn);
    kith_txn_abort(&txn);

    double t0 = bench_now();
    for (uint64_t done = 0; rc == 0 && done < n;) {
        rc = kith_txn_begin(r, KITH_TXN_WRITE, &txn);
        for (uint32_t i = 0; rc == 0 && i < per_txn && done < n; i++, done++) {
            uint64_t x = bench_rand(&seed);
            v[x % BENCH_VALUE_BYTES] = (char)('a' + (x >> 8) % 26);
            rc = kith_field_set(txn, "contacts", &docs[x % NDOCS], fields[(x >> 32) % 4], &val);
        }
        if (rc == 0)
            rc = kith_txn_commit(&txn);
        kith_txn_abort(&txn);
    }
    *t = bench_now() - t0;
    if (rc < 0)
        fprintf(stderr, "kith-bench: local write: %s: %s\n", kith_strerror(rc), kith_errmsg(r));
    kith_close(r);
    bench_rmtree(dir);
    return rc < 0 ? -1 : 0;
}

static int
local_case(const struct bench_opts *o, const char *name, uint64_t n, uint32_t per_txn,
           unsigned flags, const char *bound, const struct bench_target *target)
{
    double t[BENCH_MAX_REPS];
    char params[96];
    for (int r = 0; r < o->reps; r++)
        if (local_rep(o, n, per_txn, flags, &t[r]) != 0)
            return -1;
    snprintf(params, sizeof params, "{\"fields_per_txn\":%u,\"sync\":\"%s\",\"value\":%d}", per_txn,
             (flags & KITH_NOSYNC) ? "nosync" : "durable", BENCH_VALUE_BYTES);
    struct bench_spec spec = {.name = name,
                              .params = params,
                              .ops = n,
                              .unit = "field",
                              .bound = bound,
                              .target = target};
    return bench_report(o, &spec, t, o->reps);
}

int
bench_local(const struct bench_opts *o)
{
    uint64_t n1 = bench_size(o, BENCH_N_LOCAL1, BENCH_N_LOCAL1_SMOKE);
    uint64_t n100 = bench_size(o, BENCH_N_LOCAL100, BENCH_N_LOCAL100_SMOKE);
    if (n1 > BENCH_N_LOCAL1_MAX)
        n1 = BENCH_N_LOCAL1_MAX;
    if (local_case(o, "local.txn1.durable", n1, 1, 0, "lmdb.c1.durable", &t_txn1) != 0 ||
        local_case(o, "local.txn100.durable", n100, 100, 0, "lmdb.c100.durable", &t_txn100) != 0 ||
        local_case(o, "local.txn1.nosync", n1, 1, KITH_NOSYNC, NULL, NULL) != 0 ||
        local_case(o, "local.txn100.nosync", n100, 100, KITH_NOSYNC, "lmdb.c1000.nosync", NULL) !=
            0)
        return -1;
    return 0;
}

/* ---- scaling ----------------------------------------------------------------------------- */

/* Print the curve of cost per op over the sizes and report its flatness (max/min). */
int
bench_scale_curve(const struct bench_opts *o, const char *name, const char *const *results,
                  size_t n, bool judge)
{
    double lo = 0, hi = 0, low_so_far = 0, rise = 1;
    char params[64], growth[BENCH_NAME_MAX];
    for (size_t i = 0; i < n; i++) { /* results[] in increasing N */
        const struct bench_result *r = bench_result_find(results[i]);
        if (r == NULL || r->ops == 0)
            return -1;
        double per = r->med_s / (double)r->ops;
        if (i == 0 || per < lo)
            lo = per;
        if (i == 0 || per > hi)
            hi = per;
        if (i > 0 && low_so_far > 0 && per / low_so_far > rise)
            rise = per / low_so_far;
        if (i == 0 || per < low_so_far)
            low_so_far = per;
        bench_note(o, "curve %-22s %9llu ops  %8.3f us/op", results[i], (unsigned long long)r->ops,
                   per * 1e6);
    }
    snprintf(params, sizeof params, "{\"sizes\":%zu}", n);
    if (bench_report_figure(o, name, params, "max_over_min_cost_per_op", lo > 0 ? hi / lo : 0, NULL,
                            0, judge ? &t_flat : NULL) != 0)
        return -1;
    /* what "no hidden quadratic" asks: a larger N never costs more per op than a smaller one
     * did (a cost that falls with N is fixed costs spread over more ops) */
    const char *dot = strrchr(name, '.');
    snprintf(growth, sizeof growth, "%.*s.growth", dot ? (int)(dot - name) : (int)strlen(name),
             name);
    return bench_report_figure(o, growth, params, "max_rise_of_cost_per_op", rise, NULL, 0,
                               judge ? &t_rise : NULL);
}

int
bench_scale_apply(const struct bench_opts *o)
{
    static const uint64_t sizes[] = {10000, 100000, 1000000};
    static const uint64_t smoke_sizes[] = {200, 400, 800};
    const uint64_t *sz = o->smoke ? smoke_sizes : sizes;
    char names[3][BENCH_NAME_MAX], bounds[3][BENCH_NAME_MAX];
    const char *list[3], *blist[3];
    long anon[3] = {0, 0, 0};
    uint64_t bytes[3] = {0, 0, 0};
    for (size_t i = 0; i < 3; i++) {
        struct bench_source src;
        char bound[BENCH_NAME_MAX];
        struct bench_opts oi = *o;
        oi.ops = sz[i];
        bench_rss_reset();
        if (bench_limits_lmdb_one(&oi, sz[i], bound, sizeof bound) != 0)
            return -1;
        snprintf(bounds[i], sizeof bounds[i], "%s", bound);
        blist[i] = bounds[i];
        if (bench_source_make(o, sz[i], &src) != 0)
            return -1;
        snprintf(names[i], sizeof names[i], "scale.apply.%lluk",
                 (unsigned long long)(sz[i] / 1000));
        if (o->smoke)
            snprintf(names[i], sizeof names[i], "scale.apply.%llu", (unsigned long long)sz[i]);
        list[i] = names[i];
        bench_rss_reset();
        int rc = bench_source_batches(&src, 0);
        if (rc == 0)
            rc = apply_case(o, &src, names[i], 0, bound, false, &anon[i]);
        bytes[i] = src.batch_bytes;
        bench_source_free(&src);
        if (rc != 0)
            return -1;
    }
    /* The bound's own curve: raw LMDB random puts also cost more per put as the tree grows. */
    if (bench_scale_curve(o, "scale.lmdb.flatness", blist, 3, false) != 0 ||
        bench_scale_curve(o, "scale.apply.flatness", list, 3, true) != 0)
        return -1;
    /* Memory: a bundle is one batch, so the peak may follow the batch; the ratio says by how
     * much the heap grew during the apply per byte of batch (the bench holds the batch itself
     * before the clock starts, so it is not counted). */
    for (size_t i = 0; i < 3; i++) {
        char name[BENCH_NAME_MAX], params[64];
        snprintf(name, sizeof name, "%.40s.mem", names[i]);
        snprintf(params, sizeof params, "{\"ops\":%llu}", (unsigned long long)sz[i]);
        if (bench_report_figure(o, name, params, "anon_growth_kb", (double)anon[i],
                                "batch size (kB)", (double)bytes[i] / 1024,
                                i == 2 ? &t_apply_mem : NULL) != 0)
            return -1;
    }
    return 0;
}
