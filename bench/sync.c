/*
 * sync.c — scenario 6, two peers over ZeroMQ on loopback (CURVE on, as always), and the sync
 * half of scenario 7 (scaling). Public API only: kith_serve in a thread, kith_sync in this one.
 *
 *   sync.push       A holds N ops (the source), B is empty and durable and serves on
 *                   127.0.0.1; A calls kith_sync(B) and the clock stops when it returns with
 *                   both sides converged (B durable-applies every batch before acknowledging).
 *   sync.pull       the other direction: A serves, the empty B calls kith_sync(A).
 *                   Bound of both: lmdb.c1000.durable (the sync's batches of up to
 *                   KITH__WIRE_BATCH_OPS ops are each one durable transaction on B; raw puts
 *                   committed every 1,000).
 *   sync.latency    both daemons run (A's knows B's address and pushes on change); the main
 *                   thread writes one field on A (a durable transaction through A's handle)
 *                   and waits until B's change observer (kith_observe on B's handle, called by
 *                   B's daemon thread after the applying commit is durable) reports it; 1,000
 *                   writes, one at a time; median and p99. Its bound is computed from limits
 *                   measured in this run: two durable one-put LMDB commits (A's write, B's
 *                   apply) plus one ZeroMQ round trip.
 *   scale.sync.N    sync.push at N = 10k, 100k, 1M (--scaling), with the curve of cost per op.
 */
#include "replica.h"
#include "wire.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SYNC_TIMEOUT_MS 60000
#define EVENT_TIMEOUT_S 10.0

static const struct bench_target t_sync_rate = {"sync >= 0.333 M ops/s (1M ops in 3 s)",
                                                BENCH_M_OPS_PER_S,
                                                BENCH_AT_LEAST,
                                                1e6 / 3,
                                                "lmdb.c1000.durable",
                                                2.5e5};
static const struct bench_target t_sync_1m = {"sync of 1M ops from empty < 3 s",
                                              BENCH_M_SECONDS,
                                              BENCH_AT_MOST,
                                              3,
                                              "lmdb.c1000.durable",
                                              2.5e5};
static const struct bench_target t_sync_mem = {
    "sync peak memory bounded by batch size (1M/100k <= 1.5x)", BENCH_M_EXTRA, BENCH_AT_MOST, 1.5};
static const struct bench_target t_p50 = {"push latency median < 2 ms", BENCH_M_EXTRA,
                                          BENCH_AT_MOST, 2};
static const struct bench_target t_p99 = {"push latency p99 < 10 ms", BENCH_M_EXTRA, BENCH_AT_MOST,
                                          10};

/* A daemon running kith_serve in its own thread. */
struct daemon {
    kith_replica *r;
    kith_serve_opts opts;
    char listen[64];
    const char *peers[1];
    char peer[64];
    volatile int stop;
    pthread_t th;
    int rc;
    bool running;
};

static void *
daemon_main(void *arg)
{
    struct daemon *d = arg;
    d->rc = kith_serve(d->r, &d->opts);
    return NULL;
}

/* A loopback port nobody listens on now (the kernel's choice; released before use). */
static int
free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;
    int port = -1, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Start kith_serve on r: listening on a fresh loopback port when `listen`, and keeping in
 * sync with `peer` when not NULL. */
static int
daemon_start(struct daemon *d, kith_replica *r, bool listen, const char *peer)
{
    memset(d, 0, sizeof *d);
    d->r = r;
    d->opts.log_level = getenv("KITH_BENCH_LOG") ? KITH_LOG_DEBUG : KITH_LOG_ERROR;
    d->opts.stop = &d->stop;
    d->opts.interval_ms = 3600 * 1000; /* no anti-entropy during a measurement */
    d->opts.log_json = getenv("KITH_BENCH_LOG") != NULL;
    if (listen) {
        int port = free_port();
        if (port < 0)
            return -1;
        snprintf(d->listen, sizeof d->listen, "tcp://127.0.0.1:%d", port);
        d->opts.listen = d->listen;
    }
    if (peer != NULL) {
        snprintf(d->peer, sizeof d->peer, "%s", peer);
        d->peers[0] = d->peer;
        d->opts.peers = d->peers;
        d->opts.npeers = 1;
    }
    if (pthread_create(&d->th, NULL, daemon_main, d) != 0)
        return -1;
    d->running = true;
    usleep(50000); /* let it bind before anyone connects */
    return 0;
}

static int
daemon_stop(struct daemon *d)
{
    if (!d->running)
        return 0;
    d->stop = 1;
    pthread_join(d->th, NULL);
    d->running = false;
    if (d->rc < 0)
        fprintf(stderr, "kith-bench: kith_serve: %s\n", kith_strerror(d->rc));
    return d->rc < 0 ? -1 : 0;
}

static uint64_t
vv_of(kith_replica *r, uint64_t origin)
{
    kith_vv vv;
    uint64_t seq = 0;
    if (kith_vv_get(r, &vv) != 0)
        return 0;
    for (size_t i = 0; i < vv.len; i++)
        if (vv.entries[i].origin == origin)
            seq = vv.entries[i].seq;
    kith_vv_free(&vv);
    return seq;
}

/* One repetition of a sync from empty: `pull` chooses which side calls kith_sync. */
static int
sync_rep(const struct bench_opts *o, const struct bench_source *src, bool pull, double *t,
         long *anon)
{
    struct bench_anon sampler;
    char dir[4200];
    kith_replica *a = NULL, *b = NULL;
    struct daemon d;
    kith_sync_info info;
    int rc = -1;

    if (bench_receiver_open(o, src, 0, dir, sizeof dir, &b) != 0)
        return -1;
    if (kith_open(src->dir, 0, &a) < 0)
        goto out_b;
    uint8_t bpk[KITH_PUBKEY_BYTES];
    kith_replica_pubkey(b, bpk);
    if (kith_trust_add(a, bpk, "bench-b", NULL) < 0)
        goto out_a;
    kith_replica *server = pull ? a : b, *client = pull ? b : a;
    uint8_t spk[KITH_PUBKEY_BYTES];
    kith_replica_pubkey(server, spk);
    if (daemon_start(&d, server, true, NULL) != 0)
        goto out_a;
    bench_anon_start(&sampler);
    double t0 = bench_now();
    rc = kith_sync(client, d.listen, spk, SYNC_TIMEOUT_MS, &info);
    *t = bench_now() - t0;
    long peak = bench_anon_stop(&sampler);
    if (peak > *anon)
        *anon = peak;
    if (rc < 0)
        fprintf(stderr, "kith-bench: kith_sync: %s: %s\n", kith_strerror(rc), kith_errmsg(client));
    if (daemon_stop(&d) != 0 && rc == 0)
        rc = -1;
    if (rc == 0 && (!info.converged || vv_of(b, src->id) != src->ops)) {
        fprintf(stderr, "kith-bench: sync did not converge: B holds %llu of %llu ops\n",
                (unsigned long long)vv_of(b, src->id), (unsigned long long)src->ops);
        rc = -1;
    }
out_a:
    kith_close(a);
out_b:
    kith_close(b);
    bench_rmtree(dir);
    return rc < 0 ? -1 : 0;
}

static int
sync_case(const struct bench_opts *o, const struct bench_source *src, const char *name, bool pull,
          const struct bench_target *target, long *anon_out)
{
    double t[BENCH_MAX_REPS];
    char params[128];
    long anon = 0;
    for (int r = 0; r < o->reps; r++)
        if (sync_rep(o, src, pull, &t[r], &anon) != 0)
            return -1;
    if (anon_out != NULL)
        *anon_out = anon;
    snprintf(params, sizeof params,
             "{\"direction\":\"%s\",\"sync\":\"durable\",\"commit\":10,\"batch_ops\":%u}",
             pull ? "pull" : "push", KITH__WIRE_BATCH_OPS);
    struct bench_spec spec = {.name = name,
                              .params = params,
                              .ops = src->ops,
                              .unit = "op",
                              .bound = "lmdb.c1000.durable",
                              .extra_name = "anon_growth_kb",
                              .extra = (double)anon,
                              .target = target};
    return bench_report(o, &spec, t, o->reps);
}

/* ---- push latency ------------------------------------------------------------------------ */

struct watch {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    uint64_t events; /* remote changes reported on B */
    double last;     /* when the last one was reported */
};

static void
on_change(void *ctx, const kith_change *c)
{
    struct watch *w = ctx;
    if (c->source != KITH_CHANGE_REMOTE)
        return;
    double now = bench_now();
    pthread_mutex_lock(&w->lock);
    w->events++;
    w->last = now;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

/* Wait until more than `seen` remote changes were reported; their time in *at. */
static int
wait_event(struct watch *w, uint64_t seen, double *at)
{
    int rc = 0;
    double deadline = bench_now() + EVENT_TIMEOUT_S;
    pthread_mutex_lock(&w->lock);
    while (w->events <= seen && rc == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&w->cond, &w->lock, &ts);
        if (w->events <= seen && bench_now() > deadline)
            rc = -1;
    }
    *at = w->last;
    pthread_mutex_unlock(&w->lock);
    return rc;
}

static int
cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static int
one_write(kith_replica *a, const kith_docid *doc, uint64_t i)
{
    char v[BENCH_VALUE_BYTES];
    kith_txn *t = NULL;
    snprintf(v, sizeof v, "w%018llu", (unsigned long long)i);
    kith_value val = {.type = KITH_TYPE_STRING, .u.s = {v, BENCH_VALUE_BYTES - 1}};
    int rc = kith_txn_begin(a, KITH_TXN_WRITE, &t);
    if (rc == 0)
        rc = kith_field_set(t, "contacts", doc, "phone", &val);
    if (rc == 0)
        rc = kith_txn_commit(&t);
    kith_txn_abort(&t);
    return rc;
}

static int
sync_latency(const struct bench_opts *o)
{
    uint64_t n = o->smoke ? 20 : 1000;
    char adir[4200], bdir[4200];
    kith_replica *a = NULL, *b = NULL;
    struct daemon da = {0}, db = {0};
    struct watch w = {.events = 0};
    double *lat = calloc(n, sizeof *lat), *local = calloc(n, sizeof *local);
    double *rest = calloc(n, sizeof *rest);
    uint8_t apk[KITH_PUBKEY_BYTES], bpk[KITH_PUBKEY_BYTES];
    kith_docid doc;
    kith_txn *t = NULL;
    int rc = -1;

    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    if (lat == NULL || local == NULL || rest == NULL ||
        bench_receiver_open(o, NULL, 0, adir, sizeof adir, &a) != 0)
        goto out;
    if (bench_receiver_open(o, NULL, 0, bdir, sizeof bdir, &b) != 0)
        goto out;
    kith_replica_pubkey(a, apk);
    kith_replica_pubkey(b, bpk);
    kith_observe(b, on_change, NULL, &w);
    if (kith_trust_add(b, apk, "bench-a", NULL) < 0)
        goto out;
    if (daemon_start(&db, b, true, NULL) != 0)
        goto out;
    if (kith_trust_add(a, bpk, "bench-b", db.listen) < 0)
        goto out;
    /* A document to write to, created before A's daemon starts; its arrival warms up. */
    kith_value name = {.type = KITH_TYPE_STRING, .u.s = {"latency", 7}};
    if (kith_txn_begin(a, KITH_TXN_WRITE, &t) < 0 || kith_doc_create(t, "contacts", &doc) < 0 ||
        kith_field_set(t, "contacts", &doc, "name", &name) < 0 || kith_txn_commit(&t) < 0) {
        kith_txn_abort(&t);
        goto out;
    }
    if (daemon_start(&da, a, false, NULL) != 0)
        goto out;
    double at;
    if (wait_event(&w, 0, &at) != 0) {
        fprintf(stderr, "kith-bench: latency: the first write never reached B\n");
        goto out;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seen;
        pthread_mutex_lock(&w.lock);
        seen = w.events;
        pthread_mutex_unlock(&w.lock);
        double t0 = bench_now();
        if (one_write(a, &doc, i) < 0)
            goto out;
        local[i] = bench_now() - t0;
        if (wait_event(&w, seen, &at) != 0) {
            fprintf(stderr, "kith-bench: latency: write %llu did not reach B in %.0f s\n",
                    (unsigned long long)i, EVENT_TIMEOUT_S);
            goto out;
        }
        lat[i] = at - t0;
    }
    rc = 0;
out:
    if (daemon_stop(&da) != 0 || daemon_stop(&db) != 0)
        rc = -1;
    if (rc == 0 && vv_of(b, kith_replica_id(a)) != n + 2) {
        fprintf(stderr, "kith-bench: latency: B holds %llu of A's %llu ops\n",
                (unsigned long long)vv_of(b, kith_replica_id(a)), (unsigned long long)n + 2);
        rc = -1;
    }
    if (rc == 0) {
        for (uint64_t i = 0; i < n; i++)
            rest[i] = lat[i] - local[i];
        qsort(lat, n, sizeof *lat, cmp_double);
        double p50 = lat[n / 2] * 1e3, p99 = lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] * 1e3;
        const struct bench_result *c1 = bench_result_find("lmdb.c1.durable");
        const struct bench_result *rt = bench_result_find("zmq.rtt");
        double bound = 0;
        if (c1 && rt && c1->ops_per_s > 0 && rt->ops_per_s > 0)
            bound = (2 / c1->ops_per_s + 1 / rt->ops_per_s) * 1e3;
        char params[128];
        snprintf(params, sizeof params,
                 "{\"writes\":%llu,\"observe\":\"kith_observe on B\",\"sync\":\"durable\"}",
                 (unsigned long long)n);
        if (bench_report_figure(o, "sync.latency.p50", params, "ms", p50,
                                bound > 0 ? "2 durable commits + zmq rtt (ms)" : NULL, bound,
                                &t_p50) != 0 ||
            bench_report_figure(o, "sync.latency.p99", params, "ms", p99,
                                bound > 0 ? "2 durable commits + zmq rtt (ms)" : NULL, bound,
                                &t_p99) != 0)
            rc = -1;
        bench_note(o, "latency min %.3f ms, max %.3f ms over %llu writes", lat[0] * 1e3,
                   lat[n - 1] * 1e3, (unsigned long long)n);
        /* Where it goes: A's own durable commit, and the rest (noticing the change, sending,
         * B's verify and durable apply). */
        qsort(local, n, sizeof *local, cmp_double);
        qsort(rest, n, sizeof *rest, cmp_double);
        if (bench_report_figure(o, "sync.latency.a_commit.p50", params, "ms", local[n / 2] * 1e3,
                                "lmdb.c1.durable (ms)", c1 ? 1e3 / c1->ops_per_s : 0, NULL) != 0 ||
            bench_report_figure(o, "sync.latency.rest.p50", params, "ms", rest[n / 2] * 1e3, NULL,
                                0, NULL) != 0)
            rc = -1;
    }
    kith_close(a);
    kith_close(b);
    if (a != NULL)
        bench_rmtree(adir);
    if (b != NULL)
        bench_rmtree(bdir);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    free(lat);
    free(local);
    free(rest);
    return rc;
}

int
bench_sync(const struct bench_opts *o)
{
    struct bench_source src;
    uint64_t n = bench_size(o, BENCH_N_APPLY, BENCH_N_APPLY_SMOKE);
    int rc = -1;
    if (bench_source_make(o, n, &src) != 0)
        return -1;
    if (sync_case(o, &src, "sync.push", false, &t_sync_rate, NULL) == 0 &&
        sync_case(o, &src, "sync.pull", true, &t_sync_rate, NULL) == 0)
        rc = 0;
    /* A sync streams batches that the receiver applies with kith_batch_apply: set it beside
     * the apply measured in this run (same N, same history), to show what bounds it. */
    const struct bench_result *ap = bench_result_find("apply.durable");
    const struct bench_result *sp = bench_result_find("sync.push");
    if (rc == 0 && ap != NULL && sp != NULL && ap->ops == sp->ops &&
        bench_report_figure(o, "sync.push.vs_apply", "{}", "ops_per_s", sp->ops_per_s,
                            "apply.durable (ops/s)", ap->ops_per_s, NULL) != 0)
        rc = -1;
    bench_source_free(&src);
    if (rc == 0)
        rc = sync_latency(o);
    return rc;
}

int
bench_scale_sync(const struct bench_opts *o)
{
    static const uint64_t sizes[] = {10000, 100000, 1000000};
    static const uint64_t smoke_sizes[] = {200, 400, 800};
    const uint64_t *sz = o->smoke ? smoke_sizes : sizes;
    char names[3][BENCH_NAME_MAX];
    const char *list[3];
    long anon[3] = {0, 0, 0};
    for (size_t i = 0; i < 3; i++) {
        struct bench_source src;
        if (bench_source_make(o, sz[i], &src) != 0)
            return -1;
        if (o->smoke)
            snprintf(names[i], sizeof names[i], "scale.sync.%llu", (unsigned long long)sz[i]);
        else
            snprintf(names[i], sizeof names[i], "scale.sync.%lluk",
                     (unsigned long long)(sz[i] / 1000));
        list[i] = names[i];
        bench_rss_reset();
        int rc =
            sync_case(o, &src, names[i], false, sz[i] == 1000000 ? &t_sync_1m : NULL, &anon[i]);
        bench_source_free(&src);
        if (rc != 0)
            return -1;
    }
    if (bench_scale_curve(o, "scale.sync.flatness", list, 3, true) != 0)
        return -1;
    /*
     * Memory: a sync streams bounded batches, so the heap it needs must not follow N. The two
     * larger sizes both stream many full batches; the smallest is one partial batch, and as the
     * first sync of the process it also pays once for what later ones reuse (thread stacks,
     * ZeroMQ's and the allocator's arenas), so it is no fair base. (The smaller size's growth
     * counts as at least 1 MiB, so noise in a tiny figure is no verdict.)
     */
    char params[64];
    snprintf(params, sizeof params, "{\"small\":%llu,\"large\":%llu}", (unsigned long long)sz[1],
             (unsigned long long)sz[2]);
    return bench_report_figure(o, "scale.sync.mem", params, "anon_growth_large_over_small",
                               (double)anon[2] / (double)(anon[1] > 1024 ? anon[1] : 1024), NULL, 0,
                               &t_sync_mem);
}
