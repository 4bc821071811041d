/*
 * limits.c — scenario 8, the machine's limits, measured in the same run as kith so that each
 * kith figure can be printed beside the bare library doing the same work:
 *
 *   lmdb.*         raw LMDB puts of 24-byte keys and 40-byte values in random order (the size
 *                  of a kith register key and a short value): commit every 1000 with MDB_NOSYNC,
 *                  commit every 1000 durable, commit every 100 durable, one put per durable
 *                  commit, and one big durable transaction;
 *   blake2b.100B   crypto_generichash (BLAKE2b-256) over 100-byte inputs;
 *   ed25519.verify crypto_sign_verify_detached over a 56-byte signed-head message;
 *   zmq.push       100-byte messages PUSH -> PULL over tcp on 127.0.0.1, one thread each side;
 *   zmq.rtt        round trips of a 100-byte message REQ -> REP -> REQ on 127.0.0.1;
 *   cpu.lww_loop   a bare in-memory LWW merge loop: an array of 10,000 x 6 registers and a
 *                  pre-generated array of random writes, keep the greater (hlc, origin, seq).
 *
 * Every return of LMDB, libsodium and libzmq is checked; a failure ends the scenario with -1.
 */
#include "bench.h"

#include <lmdb.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define KEY_BYTES 24
#define VAL_BYTES 40
#define MSG_BYTES 100

/* ---- LMDB ------------------------------------------------------------------------------ */

/*
 * One repetition: a fresh environment under o->dir, n puts of the records in `kv` (n records
 * of KEY_BYTES + VAL_BYTES) in their (random) order, committing every `every` puts (0: one
 * transaction), with or without MDB_NOSYNC. The clock runs from the first txn begin to the
 * last commit's return.
 */
static int
lmdb_rep(const struct bench_opts *o, const uint8_t *kv, uint64_t n, uint64_t every, bool durable,
         double *seconds)
{
    char dir[4200];
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int rc;

    if (bench_tmpdir(o, "lmdb", dir, sizeof dir) != 0)
        return -1;
    rc = mdb_env_create(&env);
    if (rc != 0)
        goto out_rmdir;
    size_t map = (size_t)n * 256 + (64u << 20);
    rc = mdb_env_set_mapsize(env, map);
    if (rc == 0)
        rc = mdb_env_open(env, dir, MDB_NOTLS | (durable ? 0 : MDB_NOSYNC), 0600);
    if (rc != 0)
        goto out_env;
    rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, NULL, 0, &dbi);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0)
        goto out_env;

    double t0 = bench_now();
    rc = mdb_txn_begin(env, NULL, 0, &txn);
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        MDB_val k = {KEY_BYTES, (void *)(kv + i * (KEY_BYTES + VAL_BYTES))};
        MDB_val v = {VAL_BYTES, (void *)(kv + i * (KEY_BYTES + VAL_BYTES) + KEY_BYTES)};
        rc = mdb_put(txn, dbi, &k, &v, 0);
        if (rc == 0 && every != 0 && (i + 1) % every == 0 && i + 1 < n) {
            rc = mdb_txn_commit(txn);
            txn = NULL;
            if (rc == 0)
                rc = mdb_txn_begin(env, NULL, 0, &txn);
        }
    }
    if (rc == 0) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    *seconds = bench_now() - t0;
    if (txn != NULL)
        mdb_txn_abort(txn);
out_env:
    if (rc != 0)
        fprintf(stderr, "kith-bench: lmdb: %s\n", mdb_strerror(rc));
    mdb_env_close(env);
out_rmdir:
    bench_rmtree(dir);
    return rc == 0 ? 0 : -1;
}

static int
lmdb_case(const struct bench_opts *o, const char *name, const uint8_t *kv, uint64_t n,
          uint64_t every, bool durable)
{
    double s[BENCH_MAX_REPS];
    char params[128];
    for (int i = 0; i < o->reps; i++)
        if (lmdb_rep(o, kv, n, every, durable, &s[i]) != 0)
            return -1;
    snprintf(params, sizeof params, "{\"commit_every\":%llu,\"sync\":\"%s\",\"key\":24,\"val\":40}",
             (unsigned long long)(every ? every : n), durable ? "durable" : "nosync");
    struct bench_spec spec = {.name = name, .params = params, .ops = n, .unit = "put"};
    return bench_report(o, &spec, s, o->reps);
}

static uint8_t *
make_records(uint64_t n)
{
    uint8_t *kv = malloc((size_t)n * (KEY_BYTES + VAL_BYTES));
    uint64_t st = 42;
    if (kv == NULL)
        return NULL;
    for (size_t i = 0; i < (size_t)n * (KEY_BYTES + VAL_BYTES); i += 8) {
        uint64_t r = bench_rand(&st);
        memcpy(kv + i, &r, 8);
    }
    return kv;
}

static int
limits_lmdb(const struct bench_opts *o)
{
    uint64_t n = bench_size(o, BENCH_N_APPLY, BENCH_N_APPLY_SMOKE);
    uint64_t n100 = bench_size(o, BENCH_N_LOCAL100, BENCH_N_LOCAL100_SMOKE);
    uint64_t n1 = bench_size(o, BENCH_N_LOCAL1, BENCH_N_LOCAL1_SMOKE);
    if (n1 > BENCH_N_LOCAL1_MAX)
        n1 = BENCH_N_LOCAL1_MAX;
    uint64_t nmax = n > n100 ? n : n100;
    uint8_t *kv = make_records(nmax);
    int rc = -1;
    if (kv == NULL)
        return -1;
    if (lmdb_case(o, "lmdb.c1000.nosync", kv, n, 1000, false) == 0 &&
        lmdb_case(o, "lmdb.c1000.durable", kv, n, 1000, true) == 0 &&
        lmdb_case(o, "lmdb.one_txn.durable", kv, n, 0, true) == 0 &&
        lmdb_case(o, "lmdb.c100.durable", kv, n100, 100, true) == 0 &&
        lmdb_case(o, "lmdb.c1.durable", kv, n1, 1, true) == 0)
        rc = 0;
    free(kv);
    return rc;
}

int
bench_limits_lmdb_one(const struct bench_opts *o, uint64_t n, char *name, size_t cap)
{
    uint8_t *kv = make_records(n);
    int rc;
    if (kv == NULL)
        return -1;
    if (n % 1000 == 0)
        snprintf(name, cap, "lmdb.one_txn.durable.%lluk", (unsigned long long)(n / 1000));
    else
        snprintf(name, cap, "lmdb.one_txn.durable.%llu", (unsigned long long)n);
    rc = lmdb_case(o, name, kv, n, 0, true);
    free(kv);
    return rc;
}

/* ---- libsodium ------------------------------------------------------------------------- */

/* Results are stored here so the compiler cannot drop the work that made them. */
static volatile uint8_t sink;

static int
limits_blake2b(const struct bench_opts *o)
{
    uint64_t n = bench_size(o, 500000, 10000);
    uint8_t buf[4096 + MSG_BYTES], h[32];
    double s[BENCH_MAX_REPS];
    uint64_t st = 7;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)bench_rand(&st);
    for (int r = 0; r < o->reps; r++) {
        double t0 = bench_now();
        for (uint64_t i = 0; i < n; i++) {
            if (crypto_generichash(h, sizeof h, buf + (i * 64) % 4096, MSG_BYTES, NULL, 0) != 0)
                return -1;
            sink = h[0];
        }
        s[r] = bench_now() - t0;
    }
    struct bench_spec spec = {
        .name = "blake2b.100B", .params = "{\"input\":100,\"out\":32}", .ops = n, .unit = "hash"};
    return bench_report(o, &spec, s, o->reps);
}

static int
limits_ed25519(const struct bench_opts *o)
{
    enum { NMSG = 16, LEN = 56 };

    uint64_t n = bench_size(o, 5000, 200);
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char seed[crypto_sign_SEEDBYTES] = {1};
    unsigned char msg[NMSG][LEN], sig[NMSG][crypto_sign_BYTES];
    double s[BENCH_MAX_REPS];
    uint64_t st = 9;
    if (crypto_sign_seed_keypair(pk, sk, seed) != 0)
        return -1;
    for (int i = 0; i < NMSG; i++) {
        for (int j = 0; j < LEN; j++)
            msg[i][j] = (unsigned char)bench_rand(&st);
        if (crypto_sign_detached(sig[i], NULL, msg[i], LEN, sk) != 0)
            return -1;
    }
    sodium_memzero(sk, sizeof sk);
    for (int r = 0; r < o->reps; r++) {
        double t0 = bench_now();
        for (uint64_t i = 0; i < n; i++)
            if (crypto_sign_verify_detached(sig[i % NMSG], msg[i % NMSG], LEN, pk) != 0)
                return -1;
        s[r] = bench_now() - t0;
    }
    struct bench_spec spec = {
        .name = "ed25519.verify", .params = "{\"msg\":56}", .ops = n, .unit = "verify"};
    return bench_report(o, &spec, s, o->reps);
}

/* ---- ZeroMQ ---------------------------------------------------------------------------- */

struct zmq_peer {
    void *ctx;
    char endpoint[256];
    uint64_t n;
    int type; /* ZMQ_PUSH: send n messages; ZMQ_REP: echo n messages */
    int rc;
};

static void *
zmq_peer_main(void *arg)
{
    struct zmq_peer *p = arg;
    uint8_t msg[MSG_BYTES] = {0};
    void *sock = zmq_socket(p->ctx, p->type);
    p->rc = -1;
    if (sock == NULL)
        return NULL;
    int linger = 0;
    if (zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_connect(sock, p->endpoint) != 0)
        goto out_close;
    for (uint64_t i = 0; i < p->n; i++) {
        if (p->type == ZMQ_REP && zmq_recv(sock, msg, sizeof msg, 0) != MSG_BYTES)
            goto out_close;
        if (zmq_send(sock, msg, sizeof msg, 0) != MSG_BYTES)
            goto out_close;
    }
    p->rc = 0;
out_close:
    if (p->type == ZMQ_PUSH && p->rc == 0) {
        /* Let the last messages leave before the socket goes. */
        linger = 2000;
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    }
    zmq_close(sock);
    return NULL;
}

/*
 * One repetition: bind a PULL (or REQ) socket on an ephemeral loopback port, start the peer
 * thread, and time receiving n messages (or n round trips) from the first byte sent.
 */
static int
zmq_rep(int mytype, int peertype, uint64_t n, double *seconds)
{
    struct zmq_peer p = {.n = n, .type = peertype, .rc = -1};
    uint8_t msg[MSG_BYTES] = {0};
    size_t elen = sizeof p.endpoint;
    pthread_t th;
    bool started = false;
    int rc = -1, linger = 0;

    p.ctx = zmq_ctx_new();
    if (p.ctx == NULL)
        return -1;
    void *sock = zmq_socket(p.ctx, mytype);
    if (sock == NULL)
        goto out_ctx;
    if (zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(sock, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, p.endpoint, &elen) != 0)
        goto out_sock;
    double t0 = bench_now();
    if (pthread_create(&th, NULL, zmq_peer_main, &p) != 0)
        goto out_sock;
    started = true;
    rc = 0;
    for (uint64_t i = 0; i < n && rc == 0; i++) {
        if (mytype == ZMQ_REQ && zmq_send(sock, msg, sizeof msg, 0) != MSG_BYTES)
            rc = -1;
        else if (zmq_recv(sock, msg, sizeof msg, 0) != MSG_BYTES)
            rc = -1;
    }
    *seconds = bench_now() - t0;
    if (rc != 0)
        fprintf(stderr, "kith-bench: zmq: %s\n", zmq_strerror(zmq_errno()));
out_sock:
    zmq_close(sock);
    if (started) {
        /* After a failure the peer may be blocked in a send: shutting the context down
         * makes that return ETERM, so the join always ends. */
        if (rc != 0)
            zmq_ctx_shutdown(p.ctx);
        pthread_join(th, NULL);
        if (p.rc != 0)
            rc = -1;
    }
out_ctx:
    zmq_ctx_term(p.ctx);
    return rc;
}

static int
limits_zmq(const struct bench_opts *o)
{
    uint64_t n = bench_size(o, 200000, 10000);
    uint64_t nrt = o->smoke ? 200 : 10000;
    double s[BENCH_MAX_REPS];
    for (int r = 0; r < o->reps; r++)
        if (zmq_rep(ZMQ_PULL, ZMQ_PUSH, n, &s[r]) != 0)
            return -1;
    struct bench_spec push = {.name = "zmq.push",
                              .params = "{\"msg\":100,\"transport\":\"tcp loopback\"}",
                              .ops = n,
                              .unit = "msg"};
    if (bench_report(o, &push, s, o->reps) != 0)
        return -1;
    for (int r = 0; r < o->reps; r++)
        if (zmq_rep(ZMQ_REQ, ZMQ_REP, nrt, &s[r]) != 0)
            return -1;
    struct bench_spec rtt = {.name = "zmq.rtt",
                             .params = "{\"msg\":100,\"transport\":\"tcp loopback\"}",
                             .ops = nrt,
                             .unit = "round trip"};
    return bench_report(o, &rtt, s, o->reps);
}

/* ---- a bare LWW merge loop --------------------------------------------------------------- */

struct bare_reg {
    uint64_t hlc, origin, seq;
    uint32_t val;
};

struct bare_op {
    uint32_t reg;
    uint32_t val;
    uint64_t hlc, origin, seq;
};

static int
limits_lww_loop(const struct bench_opts *o)
{
    enum { DOCS = 10000, FIELDS = 6 };

    uint64_t n = bench_size(o, 1000000, 10000);
    struct bare_reg *regs = calloc(DOCS * FIELDS, sizeof *regs);
    struct bare_op *ops = malloc((size_t)n * sizeof *ops);
    double s[BENCH_MAX_REPS];
    uint64_t st = 11, sum = 0;
    int rc = -1;
    if (regs == NULL || ops == NULL)
        goto out_free;
    for (uint64_t i = 0; i < n; i++) {
        ops[i].reg = (uint32_t)(bench_rand(&st) % (DOCS * FIELDS));
        ops[i].val = (uint32_t)i;
        ops[i].hlc = (1000000 + i / 4) << 16;
        ops[i].origin = 1 + bench_rand(&st) % 3;
        ops[i].seq = i + 1;
    }
    for (int r = 0; r < o->reps; r++) {
        memset(regs, 0, DOCS * FIELDS * sizeof *regs);
        double t0 = bench_now();
        for (uint64_t i = 0; i < n; i++) {
            const struct bare_op *op = &ops[i];
            struct bare_reg *g = &regs[op->reg];
            if (op->hlc > g->hlc ||
                (op->hlc == g->hlc &&
                 (op->origin > g->origin || (op->origin == g->origin && op->seq > g->seq)))) {
                g->hlc = op->hlc;
                g->origin = op->origin;
                g->seq = op->seq;
                g->val = op->val;
            }
        }
        s[r] = bench_now() - t0;
        for (size_t i = 0; i < DOCS * FIELDS; i++)
            sum += regs[i].val;
    }
    struct bench_spec spec = {
        .name = "cpu.lww_loop", .params = "{\"docs\":10000,\"fields\":6}", .ops = n, .unit = "op"};
    rc = sum == UINT64_MAX ? -1 : bench_report(o, &spec, s, o->reps);
out_free:
    free(ops);
    free(regs);
    return rc;
}

int
bench_limits(const struct bench_opts *o)
{
    if (sodium_init() < 0)
        return -1;
    if (limits_lmdb(o) != 0 || limits_blake2b(o) != 0 || limits_ed25519(o) != 0 ||
        limits_zmq(o) != 0 || limits_lww_loop(o) != 0)
        return -1;
    return 0;
}
