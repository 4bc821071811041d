/*
 * merge.c — scenario 1, the core merge in memory (core/mem.h): decoded remote commits applied
 * to an in-memory replica state by exactly the CRDT rules the store applies.
 *
 * The histories are made the way a replica makes them: an author state writes through
 * kith__memrep_begin / _field_set / _set_add / _commit, so every op names the dot it replaced
 * or observed, and each commit comes out self-contained, naming its collection and fields by
 * name (format 2): the receiver gives them its own numbers as it applies them. The contacts
 * written here have six register fields (name, email, phone, company, notes, birthday) and one
 * set (tags), so the registers are 10,000 contacts x 6 fields; values are 20 bytes (the
 * birthday a 10-byte date).
 * Commits hold 10 ops. Each repetition starts from a fresh receiver that already holds the
 * 10,000 documents (applied outside the clock); only the applies of the measured commits are
 * timed.
 *
 *   merge.lww          N FIELD_SET ops of one remote origin, random (document, field);
 *   merge.orset        N SET_ADD / SET_REMOVE ops on tags (16 possible tags per contact);
 *   merge.concurrent   two origins write N/2 field ops each, concurrently, from the same
 *                      10,000 documents; A applies B's history and B applies A's (N applies
 *                      in all, many of them concurrent writes that record a conflict); then
 *                      the two canonical dumps must be identical, or the scenario fails.
 * The bound of each is cpu.lww_loop: the bare loop that keeps the greater (hlc, origin, seq).
 */
#include "gen.h"
#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PER_COMMIT 10u
#define DOCS_PER_COMMIT 100u
#define WALL0 1764000000000ull
#define NTAGS 16

static const char *const fields[6] = {"name", "email", "phone", "company", "notes", "birthday"};

static const struct bench_target t_merge = {"core merge >= 10 M field ops/s", BENCH_M_OPS_PER_S,
                                            BENCH_AT_LEAST, 1e7};

/* A history: the commits an author made, in order. */
struct history {
    struct kith__commit **c;
    size_t n, cap;
    uint64_t ops;
};

static int
history_push(struct history *h, struct kith__commit *c)
{
    if (c == NULL)
        return 0;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        struct kith__commit **p = realloc(h->c, cap * sizeof *p);
        if (p == NULL) {
            kith__memrep_commit_free(c);
            return -1;
        }
        h->c = p;
        h->cap = cap;
    }
    h->c[h->n++] = c;
    h->ops += c->nops;
    return 0;
}

static void
history_free(struct history *h)
{
    for (size_t i = 0; i < h->n; i++)
        kith__memrep_commit_free(h->c[i]);
    free(h->c);
    memset(h, 0, sizeof *h);
}

/* Apply every commit of h to m (in order); 0 or -1 naming the refusal. */
static int
history_apply(struct kith__memrep *m, const struct history *h)
{
    for (size_t i = 0; i < h->n; i++) {
        int rc = kith__memrep_apply(m, h->c[i], KITH__MEMREP_NO_CLOCK);
        if (rc != 0) {
            fprintf(stderr, "kith-bench: merge: commit %zu refused (%d)\n", i, rc);
            return -1;
        }
    }
    return 0;
}

/* The author `a` creates ndocs contacts with a name, in commits of DOCS_PER_COMMIT. */
static int
make_docs(struct kith__memrep *a, uint32_t ndocs, kith_dot *docs, struct history *h)
{
    kith_value name = {.type = KITH_TYPE_STRING, .u.s = {"a contact of twenty b", 20}};
    uint64_t wall = WALL0;
    for (uint32_t i = 0; i < ndocs; i += DOCS_PER_COMMIT) {
        struct kith__commit *c = NULL;
        if (kith__memrep_begin(a, wall++) != 0)
            return -1;
        for (uint32_t j = i; j < ndocs && j < i + DOCS_PER_COMMIT; j++)
            if (kith__memrep_doc_create(a, "contacts", &docs[j]) != 0 ||
                kith__memrep_field_set(a, "contacts", docs[j], "name", &name) != 0)
                return -1;
        if (kith__memrep_commit(a, &c) != 0 || history_push(h, c) != 0)
            return -1;
    }
    return 0;
}

/* n random register writes by author `a`, PER_COMMIT per commit. */
static int
make_field_writes(struct kith__memrep *a, const kith_dot *docs, uint32_t ndocs, uint64_t n,
                  uint64_t seed, uint64_t wall, struct history *h)
{
    char v[BENCH_VALUE_BYTES];
    char email[BENCH_VALUE_BYTES] = "abcdefgh@example.org";
    char date[11] = "1990-05-17";
    for (uint64_t done = 0; done < n;) {
        struct kith__commit *c = NULL;
        if (kith__memrep_begin(a, wall++) != 0)
            return -1;
        for (uint32_t i = 0; i < PER_COMMIT && done < n; i++, done++) {
            uint64_t r = bench_rand(&seed);
            size_t f = (size_t)((r >> 32) % 6); /* fields[f] */
            kith_value val = {.type = KITH_TYPE_STRING};
            for (int j = 0; j < BENCH_VALUE_BYTES; j++)
                v[j] = (char)('a' + (bench_rand(&seed) % 26));
            if (f == 1) { /* email */
                memcpy(email, v, 8);
                val.u.s.ptr = email;
                val.u.s.len = BENCH_VALUE_BYTES;
            } else if (f == 5) { /* birthday */
                date[8] = (char)('1' + r % 2);
                date[9] = (char)('0' + (r >> 8) % 9);
                val.type = KITH_TYPE_DATE;
                val.u.s.ptr = date;
                val.u.s.len = 10;
            } else {
                val.u.s.ptr = v;
                val.u.s.len = BENCH_VALUE_BYTES;
            }
            int rc = kith__memrep_field_set(a, "contacts", docs[r % ndocs], fields[f], &val);
            if (rc != 0) {
                fprintf(stderr, "kith-bench: merge: field_set: %s\n", kith_strerror(rc));
                return -1;
            }
        }
        if (kith__memrep_commit(a, &c) != 0 || history_push(h, c) != 0)
            return -1;
    }
    return 0;
}

/* n random tag adds and removes by author `a`: a tag present is removed or added again (half
 * each), a tag absent is added, so every call writes one op. */
static int
make_set_writes(struct kith__memrep *a, const kith_dot *docs, uint32_t ndocs, uint64_t n,
                uint64_t seed, uint64_t wall, struct history *h)
{
    char tag[8] = "tag-00";
    for (uint64_t done = 0; done < n;) {
        struct kith__commit *c = NULL;
        if (kith__memrep_begin(a, wall++) != 0)
            return -1;
        for (uint32_t i = 0; i < PER_COMMIT && done < n; i++, done++) {
            uint64_t r = bench_rand(&seed);
            kith_dot d = docs[r % ndocs];
            int t = (int)((r >> 32) % NTAGS);
            tag[4] = (char)('0' + t / 10);
            tag[5] = (char)('0' + t % 10);
            bool remove = kith__memrep_set_has(a, "contacts", d, "tags", tag, 6) && ((r >> 40) & 1);
            int rc = remove ? kith__memrep_set_remove(a, "contacts", d, "tags", tag, 6)
                            : kith__memrep_set_add(a, "contacts", d, "tags", tag, 6);
            if (rc != 0)
                return -1;
        }
        if (kith__memrep_commit(a, &c) != 0 || history_push(h, c) != 0)
            return -1;
    }
    return 0;
}

/* Time applying `work` to fresh states of `self` that first hold `base` and `own`. */
static int
time_apply(const struct bench_opts *o, uint64_t self, const struct history *base,
           const struct history *own, const struct history *work, double *t)
{
    for (int r = 0; r < o->reps; r++) {
        struct kith__memrep *m = NULL;
        if (kith__memrep_new(self, &m) != 0)
            return -1;
        if (history_apply(m, base) != 0 || (own && history_apply(m, own) != 0)) {
            kith__memrep_free(m);
            return -1;
        }
        double t0 = bench_now();
        int rc = history_apply(m, work);
        t[r] = bench_now() - t0;
        kith__memrep_free(m);
        if (rc != 0)
            return -1;
    }
    return 0;
}

static int
merge_one_origin(const struct bench_opts *o, uint64_t n, bool sets)
{
    enum { AUTHOR = 0xb0b, RECV = 0xa11ce };
    struct kith__memrep *a = NULL;
    struct history base = {0}, work = {0};
    kith_dot *docs = calloc(BENCH_DOCS, sizeof *docs);
    double t[BENCH_MAX_REPS];
    char params[128];
    int rc = -1;

    if (docs == NULL || kith__memrep_new(AUTHOR, &a) != 0)
        goto out;
    if (make_docs(a, BENCH_DOCS, docs, &base) != 0)
        goto out;
    if ((sets ? make_set_writes(a, docs, BENCH_DOCS, n, 31, WALL0 + 1000000, &work)
              : make_field_writes(a, docs, BENCH_DOCS, n, 17, WALL0 + 1000000, &work)) != 0)
        goto out;
    if (time_apply(o, RECV, &base, NULL, &work, t) != 0)
        goto out;
    snprintf(params, sizeof params, "{\"docs\":%u,\"%s\":%d,\"commit\":%u}", BENCH_DOCS,
             sets ? "tags" : "fields", sets ? NTAGS : 6, PER_COMMIT);
    struct bench_spec spec = {.name = sets ? "merge.orset" : "merge.lww",
                              .params = params,
                              .ops = work.ops,
                              .unit = "op",
                              .bound = "cpu.lww_loop",
                              .target = sets ? NULL : &t_merge};
    rc = bench_report(o, &spec, t, o->reps);
out:
    history_free(&base);
    history_free(&work);
    kith__memrep_free(a);
    free(docs);
    return rc;
}

static int
merge_concurrent(const struct bench_opts *o, uint64_t n)
{
    enum { X = 0xc0de, A = 0xa, B = 0xb };
    struct kith__memrep *x = NULL, *a = NULL, *b = NULL, *ma = NULL, *mb = NULL;
    struct history base = {0}, ha = {0}, hb = {0};
    struct kith__wbuf da = {0}, db = {0};
    kith_dot *docs = calloc(BENCH_DOCS, sizeof *docs);
    double t[BENCH_MAX_REPS], ta[BENCH_MAX_REPS], tb[BENCH_MAX_REPS];
    char params[128];
    int rc = -1;

    if (docs == NULL || kith__memrep_new(X, &x) != 0 || kith__memrep_new(A, &a) != 0 ||
        kith__memrep_new(B, &b) != 0)
        goto out;
    if (make_docs(x, BENCH_DOCS, docs, &base) != 0 || history_apply(a, &base) != 0 ||
        history_apply(b, &base) != 0)
        goto out;
    /* Same wall clocks on both sides: equal timestamps, ties broken by origin. */
    if (make_field_writes(a, docs, BENCH_DOCS, n / 2, 41, WALL0 + 1000000, &ha) != 0 ||
        make_field_writes(b, docs, BENCH_DOCS, n - n / 2, 43, WALL0 + 1000000, &hb) != 0)
        goto out;
    if (time_apply(o, A, &base, &ha, &hb, ta) != 0 || time_apply(o, B, &base, &hb, &ha, tb) != 0)
        goto out;
    for (int r = 0; r < o->reps; r++)
        t[r] = ta[r] + tb[r];

    /* Convergence: both merged states must dump the same bytes. */
    if (kith__memrep_new(A, &ma) != 0 || kith__memrep_new(B, &mb) != 0 ||
        history_apply(ma, &base) != 0 || history_apply(ma, &ha) != 0 ||
        history_apply(ma, &hb) != 0 || history_apply(mb, &base) != 0 ||
        history_apply(mb, &hb) != 0 || history_apply(mb, &ha) != 0)
        goto out;
    if (kith__memrep_dump(ma, 0, &da) != 0 || kith__memrep_dump(mb, 0, &db) != 0)
        goto out;
    if (da.len != db.len || memcmp(da.data, db.data, da.len) != 0) {
        fprintf(stderr, "kith-bench: merge.concurrent: the two states did NOT converge\n");
        goto out;
    }
    snprintf(params, sizeof params,
             "{\"docs\":%u,\"fields\":6,\"commit\":%u,\"origins\":2,\"converged\":true}",
             BENCH_DOCS, PER_COMMIT);
    struct bench_spec spec = {.name = "merge.concurrent",
                              .params = params,
                              .ops = ha.ops + hb.ops,
                              .unit = "op",
                              .bound = "cpu.lww_loop",
                              .extra_name = "conflicts_each_side",
                              .extra = (double)kith__memrep_nconflicts(ma)};
    if (kith__memrep_nconflicts(ma) != kith__memrep_nconflicts(mb))
        bench_note(o,
                   "conflict records: %zu on A, %zu on B (local; the counts depend on the "
                   "order each side saw the writes in, the states do not)",
                   kith__memrep_nconflicts(ma), kith__memrep_nconflicts(mb));
    rc = bench_report(o, &spec, t, o->reps);
out:
    kith__wbuf_free(&da);
    kith__wbuf_free(&db);
    history_free(&base);
    history_free(&ha);
    history_free(&hb);
    kith__memrep_free(ma);
    kith__memrep_free(mb);
    kith__memrep_free(x);
    kith__memrep_free(a);
    kith__memrep_free(b);
    free(docs);
    return rc;
}

int
bench_merge(const struct bench_opts *o)
{
    uint64_t n = bench_size(o, 500000, 2000);
    if (merge_one_origin(o, n, false) != 0 || merge_one_origin(o, n, true) != 0 ||
        merge_concurrent(o, n) != 0)
        return -1;
    return 0;
}
