/*
 * test_convergence_forks.c — generated histories with a fork in them (issue #10). Each
 * history makes 3–5 replicas (KITH_NOSYNC, temporary directories) that trust each other and
 * interleaves random local transactions (contacts made, renamed and deleted, tags, and
 * interactions that reference contacts, so that ops of one origin depend on another's) with
 * random partial exchanges: kith_batch_create(since = the receiver's vector or, one time in
 * four, a third replica's; a random op limit) into an in-flight queue delivered late, out of
 * order and more than once, as in test_convergence.c. At a random moment one replica F is
 * forked: it is closed, its data.mdb and key are copied into a new directory, and both are
 * opened again; the copy F' has F's identity, trusts what F trusts and is trusted by all. F
 * and F' each write at once (so each holds its own branch beyond the fork seq P) and then go
 * on writing and exchanging with random others; one time in three F goes quiet until the end
 * (F' takes its place). One history in four is an equal-seqs fork: F and F' write the same
 * number of ops right after the copy and nothing of their origin after that, so the two
 * branches end at the same seq. At the end: late deliveries, then rounds of (every pair
 * exchanges with since = the receiver's vector until nothing moves; every replica sends every
 * other a full batch, since = NULL, as a bundle would be) until a round moves nothing and
 * finds no new fork.
 *
 * What the spec promises (spec/data-model.md FORK-1..10, spec/storage.md section 6) and what
 * is checked, with "branch" meaning the commits of F's origin beyond P, A written by F and B
 * by F', the writers F and F' (whose own origin forked: they keep their own branch, FORK-10)
 * told apart from the others:
 *
 *  1. Every apply returns 0 or KITH_EGAP (a stale batch: redelivered later). A batch whose run
 *     of F's origin is of another branch than the receiver holds is never an error: a run of
 *     batch format 3 names the chain hash it starts from, so it verifies on its own wherever
 *     it starts within what the receiver holds, and a forked origin's run is set aside
 *     (FORK-2, FORK-3). A call records at most one fork, never one of an honest origin.
 *  2. At the end every replica knows the fork with a proof (proofs travel in full batches,
 *     FORK-9), and all name the same winner.
 *  3. Every replica but the writers holds exactly the winning branch, as its writer holds it
 *     (FORK-10: the losing branch was set aside where it was held, the winning one taken), and
 *     nothing is held waiting: a commit that named a dot of the losing branch applied, that
 *     dot void. Their exports are identical, byte for byte, in every history: an op that
 *     removed a void dot before the kept history's op at that dot arrived left a tombstone
 *     that keeps the dot out when it comes (FORK-15..18, D-23); and so are the tombstones
 *     they hold (FORK-17).
 *  4. No edit lost: the losing branch is whole in its writer's log, and what a replica set
 *     aside is in its journal: commits of the losing branch only, as its writer logged them.
 *  5. Honest origins (every origin but F's) flow (FORK-2): at the end every replica logs the
 *     same commits of each of them. kith_verify is clean on every replica.
 *
 * KITH_CASES histories (default 30), from KITH_SEED (printed; set it to replay). A failure
 * names the seed and the history.
 */
#include "kith.h"
#include "kith_test.h"
#include "store.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_REPLICAS 6 /* 3–5, and F' */
#define MAX_POOL 256
#define MAX_QUEUE 48
#define MAX_ROUNDS 30

enum { NONE = 0, BRANCH_A = 1, BRANCH_B = 2 };

struct msg {
    int to;
    int branch; /* of F's origin, as the sender held it when it built the batch */
    uint8_t *data;
    size_t len;
};

struct world {
    uint64_t seed;
    int history;
    uint64_t rng;
    int n; /* replicas, F' included once made */
    struct kt_replica r[MAX_REPLICAS];
    int branch[MAX_REPLICAS]; /* which branch of F's origin each holds beyond P */
    int f, fp;                /* F and F' (fp < 0 before the fork) */
    bool quiet_f;             /* F takes no part until the end */
    bool equal;               /* F and F' write the same number of ops, then stop */
    uint64_t origin, p;       /* F's origin, and its seq when it was copied */
    kith_docid contacts[MAX_POOL], interactions[MAX_POOL];
    size_t ncontacts, ninteractions;
    struct msg q[MAX_QUEUE];
    size_t nq;
    bool final; /* in the last exchanges */
    uint64_t txns, batches, applied, gaps, at_base, detected, detected_final, held, set_aside;
    uint64_t exports_compared;
};

static uint64_t total_txns, total_batches, total_applied, total_gaps, total_at_base, total_detected,
    total_detected_final, total_held, total_knowing, total_holders, total_equal, total_equal_final,
    total_set_aside, total_exports;

#define CHECK(w, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "KITH_SEED=%llu history %d: ", (unsigned long long)(w)->seed,          \
                    (w)->history);                                                                 \
            cr_assert(false, __VA_ARGS__);                                                         \
        }                                                                                          \
    } while (0)

#define OK(w, r, call)                                                                             \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        CHECK(w, rc_ == 0, "%s: %s (%s)", #call, kith_strerror(rc_), kith_errmsg(r));              \
    } while (0)

static uint64_t
below(struct world *w, uint64_t n)
{
    return kt_below(&w->rng, n);
}

/* Is replica i writing and exchanging now? */
static bool
active(const struct world *w, int i)
{
    return !(w->quiet_f && i == w->f);
}

static int
pick_active(struct world *w)
{
    for (;;) {
        int i = (int)below(w, (uint64_t)w->n);
        if (active(w, i))
            return i;
    }
}

/* ---- what a replica holds of an origin ----------------------------------------------------- */

/* Applied seq and logged seq (applied + held) of `origin` at r. */
static void
seqs_of(struct world *w, kith_replica *r, uint64_t origin, uint64_t *applied, uint64_t *have)
{
    kith_vv vv = {0};
    kith_hold *h = NULL;
    size_t n = 0;

    *applied = 0;
    OK(w, r, kith_vv_get(r, &vv));
    for (size_t i = 0; i < vv.len; i++)
        if (vv.entries[i].origin == origin)
            *applied = vv.entries[i].seq;
    kith_vv_free(&vv);
    *have = *applied;
    OK(w, r, kith_holds_get(r, &h, &n));
    for (size_t i = 0; i < n; i++)
        if (h[i].origin == origin)
            *have += h[i].ops;
    kith_holds_free(h, n);
}

static uint64_t
have_of(struct world *w, int i, uint64_t origin)
{
    uint64_t applied, have;
    seqs_of(w, w->r[i].r, origin, &applied, &have);
    return have;
}

/* Replica i's fork record of F's origin, if it has one. */
static bool
knows(struct world *w, int i, kith_fork *out)
{
    kith_replica *r = w->r[i].r;
    kith_fork *f = NULL;
    size_t n = 0;
    bool found = false;

    OK(w, r, kith_forks_get(r, &f, &n));
    for (size_t k = 0; k < n; k++) {
        CHECK(w, f[k].origin == w->origin, "replica %d records a fork of honest origin %016llx", i,
              (unsigned long long)f[k].origin);
        if (out)
            *out = f[k];
        found = true;
    }
    kith_forks_free(f, n);
    return found;
}

/* An origin's log at a replica: the seq and chain hash at every commit end. */
struct hist {
    size_t n, cap;
    uint64_t *seq;
    uint8_t (*chain)[KITH_HASH_BYTES];
    uint64_t have;
};

static void
hist_of(struct world *w, int i, uint64_t origin, struct hist *h)
{
    kith_replica *r = w->r[i].r;
    kith_txn *t = kt_rbegin(r);
    kith_iter *it = NULL;
    kith_log_entry e;
    int rc;

    memset(h, 0, sizeof *h);
    OK(w, r, kith_iter_log(t, origin, &it));
    while ((rc = kith_iter_next_log(it, &e)) == 0) {
        CHECK(w, e.dot.origin == origin && e.dot.seq == h->have + 1,
              "replica %d: the log of %016llx is not contiguous at %llu", i,
              (unsigned long long)origin, (unsigned long long)e.dot.seq);
        h->have = e.dot.seq;
        if (!e.commit_end)
            continue;
        if (h->n == h->cap) {
            h->cap = h->cap ? 2 * h->cap : 64;
            h->seq = realloc(h->seq, h->cap * sizeof *h->seq);
            h->chain = realloc(h->chain, h->cap * sizeof *h->chain);
            CHECK(w, h->seq && h->chain, "out of memory");
        }
        h->seq[h->n] = e.dot.seq;
        memcpy(h->chain[h->n], e.chain, KITH_HASH_BYTES);
        h->n++;
    }
    CHECK(w, rc == KITH_ENOTFOUND, "iter_next_log: %s", kith_strerror(rc));
    kith_iter_close(it);
    kith_txn_abort(&t);
}

static void
hist_free(struct hist *h)
{
    free(h->seq);
    free(h->chain);
}

/* ---- writes --------------------------------------------------------------------------------- */

static kith_value
strv(const char *s)
{
    kith_value v = {.type = KITH_TYPE_STRING};
    v.u.s.ptr = s;
    v.u.s.len = strlen(s);
    return v;
}

/* A document from the pool that is live at t, or NULL. */
static const kith_docid *
pick_live(struct world *w, kith_txn *t, const char *coll, const kith_docid *pool, size_t n)
{
    for (int tries = 0; n > 0 && tries < 4; tries++) {
        size_t span = below(w, 2) && n > 3 ? 3 : n;
        const kith_docid *d = &pool[below(w, span)];
        int rc = kith_doc_exists(t, coll, d);
        CHECK(w, rc >= 0, "doc_exists: %s", kith_strerror(rc));
        if (rc == 1)
            return d;
    }
    return NULL;
}

/* One random op; returns how many ops it wrote. */
static int
random_op(struct world *w, kith_replica *r, kith_txn *t)
{
    static const char *const names[] = {"Ada", "Bob", "Cy", "Dee", "Eve", "\xc3\x89mile"};
    static const char *const tags[] = {"a", "b", "family", "work"};
    const kith_docid *d;
    kith_docid nd;
    char buf[64];
    kith_value v;

    switch (below(w, 8)) {
    case 0:
    case 1: /* new contact */
        OK(w, r, kith_doc_create(t, "contacts", &nd));
        v = strv(names[below(w, 6)]);
        OK(w, r, kith_field_set(t, "contacts", &nd, "name", &v));
        if (w->ncontacts < MAX_POOL)
            w->contacts[w->ncontacts++] = nd;
        return 2;
    case 2: /* delete a contact */
        if (!(d = pick_live(w, t, "contacts", w->contacts, w->ncontacts)))
            return 0;
        OK(w, r, kith_doc_delete(t, "contacts", d));
        return 1;
    case 3: /* tags */
        if (!(d = pick_live(w, t, "contacts", w->contacts, w->ncontacts)))
            return 0;
        {
            const char *tag = tags[below(w, 4)];
            if (below(w, 3))
                OK(w, r, kith_set_add(t, "contacts", d, "tags", tag, strlen(tag)));
            else
                OK(w, r, kith_set_remove(t, "contacts", d, "tags", tag, strlen(tag)));
        }
        return 1;
    case 4: /* an interaction with a contact: depends on whoever made the contact */
        if (!(d = pick_live(w, t, "contacts", w->contacts, w->ncontacts)))
            return 0;
        OK(w, r, kith_doc_create(t, "interactions", &nd));
        v.type = KITH_TYPE_REF;
        v.u.ref = *d;
        OK(w, r, kith_field_set(t, "interactions", &nd, "contact", &v));
        v = strv("call");
        v.type = KITH_TYPE_ENUM;
        OK(w, r, kith_field_set(t, "interactions", &nd, "kind", &v));
        v.type = KITH_TYPE_TIME;
        v.u.i = 1764000000000 + (int64_t)below(w, 1000) * 60000;
        OK(w, r, kith_field_set(t, "interactions", &nd, "at", &v));
        if (w->ninteractions < MAX_POOL)
            w->interactions[w->ninteractions++] = nd;
        return 4;
    case 5: /* edit an interaction */
        if (!(d = pick_live(w, t, "interactions", w->interactions, w->ninteractions)))
            return 0;
        snprintf(buf, sizeof buf, "talked %u", (unsigned)below(w, 100));
        v = strv(buf);
        OK(w, r, kith_field_set(t, "interactions", d, "summary", &v));
        return 1;
    default: /* rename: concurrent renames make conflicts */
        if (!(d = pick_live(w, t, "contacts", w->contacts, w->ncontacts)))
            return 0;
        snprintf(buf, sizeof buf, "n%u", (unsigned)below(w, 1000));
        v = strv(buf);
        OK(w, r, kith_field_set(t, "contacts", d, "name", &v));
        return 1;
    }
}

static void
local_txn(struct world *w, int i)
{
    kith_replica *r = w->r[i].r;
    kith_txn *t = NULL;

    OK(w, r, kith_txn_begin(r, KITH_TXN_WRITE, &t));
    for (int k = 1 + (int)below(w, 4); k > 0; k--)
        random_op(w, r, t);
    OK(w, r, kith_txn_commit(&t));
    w->txns++;
}

/* n new contacts at replica i, one commit each (two ops each). */
static void
contacts_txns(struct world *w, int i, int n)
{
    for (int k = 0; k < n; k++) {
        /* the branches' commits differ in their bytes, whatever their clocks say */
        kith_docid d = kt_contact(w->r[i].r, i == w->f ? "branch A" : "branch B");
        if (w->ncontacts < MAX_POOL)
            w->contacts[w->ncontacts++] = d;
        w->txns++;
    }
}

/* ---- the fork ------------------------------------------------------------------------------- */

static void
copy_file(struct world *w, const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;

    CHECK(w, in && out, "copy %s", from);
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        CHECK(w, fwrite(buf, 1, n, out) == n, "write %s", to);
    fclose(in);
    CHECK(w, fclose(out) == 0, "close %s", to);
}

/* F's directory copied, key included, into a new replica F' (closed around the copy). */
static void
fork_replica(struct world *w)
{
    struct kt_replica *f = &w->r[w->f], *c = &w->r[w->n];
    char from[600], to[600];
    size_t len;

    kith_close(f->r);
    f->r = NULL;
    c->root = kt_tmpdir();
    len = strlen(c->root) + 16;
    c->dir = malloc(len);
    CHECK(w, c->dir != NULL, "out of memory");
    snprintf(c->dir, len, "%s/replica", c->root);
    CHECK(w, mkdir(c->dir, 0700) == 0, "mkdir");
    snprintf(from, sizeof from, "%s/data.mdb", f->dir);
    snprintf(to, sizeof to, "%s/data.mdb", c->dir);
    copy_file(w, from, to);
    snprintf(from, sizeof from, "%s/key", f->dir);
    snprintf(to, sizeof to, "%s/key", c->dir);
    copy_file(w, from, to);
    CHECK(w, kith_open(f->dir, KITH_NOSYNC, &f->r) == 0, "reopen F");
    CHECK(w, kith_open(c->dir, KITH_NOSYNC, &c->r) == 0, "open F'");
    CHECK(w, kith_replica_id(c->r) == w->origin, "F' has F's identity");
    w->fp = w->n++;
    w->p = have_of(w, w->f, w->origin);
    CHECK(w, have_of(w, w->fp, w->origin) == w->p, "F' holds what F held");
    /* Each writes its own branch at once: F holds A beyond P and F' holds B, so neither can
     * take the other's (one more history of the origin would be a second fork). */
    int m = 1 + (int)below(w, 3);
    if (w->equal) {
        contacts_txns(w, w->f, m);
        contacts_txns(w, w->fp, m);
    } else {
        contacts_txns(w, w->f, 1);
        local_txn(w, w->f);
        contacts_txns(w, w->fp, 1);
        local_txn(w, w->fp);
    }
    w->branch[w->f] = BRANCH_A;
    w->branch[w->fp] = BRANCH_B;
    CHECK(w, have_of(w, w->f, w->origin) > w->p && have_of(w, w->fp, w->origin) > w->p,
          "both branches go beyond P");
    if (w->equal)
        CHECK(w, have_of(w, w->f, w->origin) == have_of(w, w->fp, w->origin),
              "equal branches end at the same seq");
}

/* May replica i write now? In an equal-seqs history, F and F' write nothing more. */
static bool
may_write(const struct world *w, int i)
{
    return !(w->equal && w->fp >= 0 && (i == w->f || i == w->fp));
}

/* ---- exchanges ------------------------------------------------------------------------------ */

/* Build a batch from i for what `basis` holds (NULL: everything). */
static void
build(struct world *w, int i, int basis, size_t max_ops, kith_buf *buf)
{
    kith_replica *r = w->r[i].r;
    kith_batch_opts opts = {.max_ops = max_ops};
    kith_vv since;

    if (basis >= 0) {
        OK(w, r, kith_vv_get(w->r[basis].r, &since));
        opts.since = &since;
    }
    OK(w, r, kith_batch_create(r, &opts, buf, NULL));
    if (basis >= 0)
        kith_vv_free(&since);
    w->batches++;
}

static void
send(struct world *w, int i, int j, size_t max_ops)
{
    kith_buf buf = {0};
    int basis = below(w, 4) == 0 ? (int)below(w, (uint64_t)w->n) : j;

    build(w, i, basis, max_ops, &buf);
    for (int copies = below(w, 4) == 0 ? 2 : 1; copies > 0; copies--) {
        if (w->nq == MAX_QUEUE) {
            free(w->q[0].data);
            memmove(&w->q[0], &w->q[1], (MAX_QUEUE - 1) * sizeof w->q[0]);
            w->nq--;
        }
        struct msg *m = &w->q[w->nq++];
        m->to = j;
        m->branch = w->branch[i];
        m->len = buf.len;
        m->data = malloc(buf.len ? buf.len : 1);
        CHECK(w, m->data != NULL, "out of memory");
        memcpy(m->data, buf.data, buf.len);
    }
    kith_free(buf.data);
}

/* Which branch replica i holds beyond P: the one whose first commit after P it logs, as
 * its writer logged it. */
static int
branch_held(struct world *w, int i)
{
    struct hist h, a;
    int held = NONE;

    hist_of(w, i, w->origin, &h);
    hist_of(w, w->f, w->origin, &a);
    for (size_t k = 0; k < h.n; k++)
        if (h.seq[k] > w->p) {
            bool in_a = k < a.n && a.seq[k] == h.seq[k] &&
                        memcmp(a.chain[k], h.chain[k], KITH_HASH_BYTES) == 0;
            held = in_a ? BRANCH_A : BRANCH_B;
            break;
        }
    hist_free(&h);
    hist_free(&a);
    return held;
}

/* The run of F's origin in a batch: where it starts (0: none), and whether it carries a
 * commit beyond P (of the sender's branch) and one beyond P at a seq up to `have`. */
struct frun {
    uint64_t first;
    bool beyond_p, beyond_p_held;
};

static struct frun
frun_of(struct world *w, const uint8_t *data, size_t len, uint64_t have)
{
    struct kith__batch b;
    struct kith__arena arena = {0};
    struct frun fr = {0};

    CHECK(w, kith__batch_decode(data, len, &b, &arena) == 0, "a batch that does not decode");
    for (size_t k = 0; k < b.ncommits; k++) {
        const struct kith__batch_commit *c = &b.commits[k];
        if (c->origin != w->origin)
            continue;
        if (fr.first == 0)
            fr.first = c->first_seq;
        if (c->first_seq > w->p) {
            fr.beyond_p = true;
            if (c->first_seq <= have)
                fr.beyond_p_held = true;
        }
    }
    kith__arena_free(&arena);
    return fr;
}

/*
 * Apply a batch (built when its sender held `branch` of F's origin) to replica j and check
 * what invariants 1, 2 and 4 say of it. Returns whether anything moved.
 */
static bool
deliver_to(struct world *w, int j, int branch, const uint8_t *data, size_t len)
{
    kith_replica *r = w->r[j].r;
    kith_apply_info info = {0};
    bool forked = w->fp >= 0, knew = forked && knows(w, j, NULL);
    uint64_t have = forked ? have_of(w, j, w->origin) : 0;
    struct frun fr = forked ? frun_of(w, data, len, have) : (struct frun){0};
    /* the run is of the other branch than j holds beyond P */
    bool other = forked && fr.beyond_p && w->branch[j] != NONE && branch != w->branch[j];
    int rc = kith_batch_apply(r, data, len, &info);

    if (rc == KITH_EGAP) {
        w->gaps++;
        return false;
    }
    CHECK(w, rc == 0, "batch_apply to %d: %s (%s)", j, kith_strerror(rc), kith_errmsg(r));
    w->applied++;
    if (!forked) {
        CHECK(w, info.forks == 0, "replica %d found a fork before there was one", j);
        return info.ops_new > 0 || info.ops_applied > 0;
    }

    kith_fork f;
    bool knows_now = knows(w, j, &f);
    uint64_t after = have_of(w, j, w->origin);
    /* the run differs from what j holds: at a commit beyond P, or already at its base */
    bool at_base = fr.first > w->p + 1;

    CHECK(w, info.forks <= 1 && (info.forks == 0 || (knows_now && !knew)),
          "replica %d: info.forks %llu", j, (unsigned long long)info.forks);
    if (knows_now && !knew) {
        CHECK(w, f.seq > w->p || f.source == KITH_FORK_PROOF,
              "replica %d: fork record source %d seq %llu (P %llu)", j, f.source,
              (unsigned long long)f.seq, (unsigned long long)w->p);
        w->detected++;
        w->detected_final += w->final;
        w->at_base += at_base && other;
    }
    /* which branch j holds beyond P now: a settled fork may have swapped it */
    w->branch[j] = after > w->p ? branch_held(w, j) : NONE;
    return info.ops_new > 0 || info.ops_applied > 0 || info.forks > 0;
}

static void
deliver_one(struct world *w)
{
    size_t k = below(w, w->nq);
    struct msg m = w->q[k];

    if (active(w, m.to))
        deliver_to(w, m.to, m.branch, m.data, m.len);
    if (below(w, 3) != 0 || !active(w, m.to)) {
        free(m.data);
        w->q[k] = w->q[--w->nq];
    }
}

/* Every pair exchanges with since = the receiver's vector until a round moves nothing. */
static bool
quiesce(struct world *w)
{
    bool any = false;

    for (int round = 0;; round++) {
        bool moved = false;

        CHECK(w, round < MAX_ROUNDS, "no quiescence after %d rounds", MAX_ROUNDS);
        for (int i = 0; i < w->n; i++)
            for (int j = 0; j < w->n; j++) {
                if (i == j)
                    continue;
                kith_buf buf = {0};
                build(w, i, j, 0, &buf);
                moved |= deliver_to(w, j, w->branch[i], buf.data, buf.len);
                kith_free(buf.data);
            }
        if (!moved)
            return any;
        any = true;
    }
}

/* Every replica sends every other a full batch, as a bundle would be. */
static bool
full_round(struct world *w)
{
    bool moved = false;
    uint64_t detected = w->detected;

    for (int i = 0; i < w->n; i++)
        for (int j = 0; j < w->n; j++) {
            if (i == j)
                continue;
            kith_buf buf = {0};
            build(w, i, -1, 0, &buf);
            moved |= deliver_to(w, j, w->branch[i], buf.data, buf.len);
            kith_free(buf.data);
        }
    return moved || w->detected > detected;
}

/* ---- the end -------------------------------------------------------------------------------- */

/* The journal of replica i: every commit in it is one of `lost`'s, as its writer logged it. */
static size_t
check_journal(struct world *w, int i, const struct hist *lost)
{
    kith_replica *r = w->r[i].r;
    kith_txn *t = kt_rbegin(r);
    kith_iter *it = NULL;
    kith_journal_op op;
    size_t n = 0;
    int rc;

    OK(w, r, kith_iter_journal(t, 0, &it));
    while ((rc = kith_iter_next_journal(it, &op)) == 0) {
        CHECK(w, op.commit.origin == w->origin && op.commit.seq > w->p,
              "replica %d set aside %016llx:%llu, not of the forked origin beyond P", i,
              (unsigned long long)op.commit.origin, (unsigned long long)op.commit.seq);
        n++;
        if (!op.op.commit_end)
            continue;
        bool found = false;
        for (size_t k = 0; k < lost->n && !found; k++)
            found = lost->seq[k] == op.op.dot.seq &&
                    memcmp(lost->chain[k], op.op.chain, KITH_HASH_BYTES) == 0;
        CHECK(w, found,
              "replica %d set aside a commit ending at %llu that the losing branch "
              "does not hold",
              i, (unsigned long long)op.op.dot.seq);
    }
    CHECK(w, rc == KITH_ENOTFOUND, "iter_next_journal: %s", kith_strerror(rc));
    kith_iter_close(it);
    kith_txn_abort(&t);
    return n;
}

/* A digest (FNV-1a) of r's voids database, every key and value in order: the tombstones of
 * void dots are state, the same on replicas that applied the same commits (FORK-17). */
static uint64_t
voids_digest(struct world *w, kith_replica *r)
{
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_val k, v;
    uint64_t h = 14695981039346656037ull;
    int rc;

    CHECK(w, kith__mdb_begin(r, MDB_RDONLY, &txn) == 0, "voids: begin");
    CHECK(w, mdb_cursor_open(txn, r->voids, &c) == 0, "voids: cursor");
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const MDB_val *parts[2] = {&k, &v};
        for (int p = 0; p < 2; p++) {
            h = (h ^ parts[p]->mv_size) * 1099511628211ull;
            for (size_t b = 0; b < parts[p]->mv_size; b++)
                h = (h ^ ((const uint8_t *)parts[p]->mv_data)[b]) * 1099511628211ull;
        }
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    CHECK(w, rc == MDB_NOTFOUND, "voids: %s", mdb_strerror(rc));
    return h;
}

static void
check_end(struct world *w)
{
    struct hist branches[3], mine, ref;
    char *export0 = NULL;
    uint64_t voids0 = 0;
    int winner = NONE;

    hist_of(w, w->f, w->origin, &branches[BRANCH_A]);
    hist_of(w, w->fp, w->origin, &branches[BRANCH_B]);
    /* was there a fork at all: do the writers' logs part after P? */
    bool parted = false;
    for (size_t k = 0; k < branches[BRANCH_A].n && k < branches[BRANCH_B].n; k++)
        parted |=
            branches[BRANCH_A].seq[k] != branches[BRANCH_B].seq[k] ||
            memcmp(branches[BRANCH_A].chain[k], branches[BRANCH_B].chain[k], KITH_HASH_BYTES) != 0;
    w->exports_compared += parted;
    for (int i = 0; i < w->n; i++) {
        kith_verify_report rep;
        kith_replica *r = w->r[i].r;
        kith_fork f;
        bool writer = i == w->f || i == w->fp;

        OK(w, r, kith_verify(r, &rep));
        CHECK(w, rep.problems == 0, "replica %d fails verify (%llu problems): %s", i,
              (unsigned long long)rep.problems, rep.first_problem);
        if (!parted)
            continue;
        /* 2: every replica knows, with a proof, and all name one winner */
        CHECK(w, knows(w, i, &f), "replica %d never learned of the fork", i);
        CHECK(w, f.has_proof, "replica %d knows the fork but holds no proof", i);
        int win = memcmp(f.winner, branches[BRANCH_A].chain[0], KITH_HASH_BYTES) == 0 ? BRANCH_A
                                                                                      : BRANCH_B;
        for (size_t k = 0; k < branches[BRANCH_A].n; k++)
            if (branches[BRANCH_A].seq[k] > w->p) {
                win = memcmp(f.winner, branches[BRANCH_A].chain[k], KITH_HASH_BYTES) == 0
                          ? BRANCH_A
                          : BRANCH_B;
                break;
            }
        CHECK(w, winner == NONE || winner == win, "replica %d names another winner", i);
        winner = win;
        total_knowing++;
        total_holders++;
        if (writer)
            continue;
        /* 3: exactly the winning branch, nothing held, one export */
        hist_of(w, i, w->origin, &mine);
        const struct hist *b = &branches[win];
        CHECK(w, mine.n == b->n && mine.have == b->have,
              "replica %d holds %llu of %016llx where the winning branch ends at %llu", i,
              (unsigned long long)mine.have, (unsigned long long)w->origin,
              (unsigned long long)b->have);
        for (size_t k = 0; k < mine.n; k++)
            CHECK(w,
                  mine.seq[k] == b->seq[k] &&
                      memcmp(mine.chain[k], b->chain[k], KITH_HASH_BYTES) == 0,
                  "replica %d: commit %zu of %016llx (seq %llu) is not the winning branch's", i, k,
                  (unsigned long long)w->origin, (unsigned long long)mine.seq[k]);
        hist_free(&mine);
        kith_hold *h = NULL;
        size_t nh = 0;
        OK(w, r, kith_holds_get(r, &h, &nh));
        for (size_t k = 0; k < nh; k++)
            w->held += h[k].ops;
        CHECK(w, nh == 0, "replica %d holds %zu commits waiting at the end", i, nh);
        kith_holds_free(h, nh);
        char *exp = kt_export(r);
        uint64_t vd = voids_digest(w, r);
        if (export0 == NULL) {
            export0 = exp;
            voids0 = vd;
        } else {
            CHECK(w, strcmp(exp, export0) == 0, "replica %d's export differs", i);
            CHECK(w, vd == voids0, "replica %d's tombstones of void dots differ", i);
            free(exp);
        }
        /* 4: what it set aside is the losing branch's */
        w->set_aside += check_journal(w, i, &branches[win == BRANCH_A ? BRANCH_B : BRANCH_A]);
    }
    free(export0);
    hist_free(&branches[BRANCH_A]);
    hist_free(&branches[BRANCH_B]);

    /* 5: every honest origin logged the same everywhere */
    for (int o = 0; o < w->n; o++) {
        uint64_t origin = kith_replica_id(w->r[o].r);
        if (origin == w->origin)
            continue;
        hist_of(w, o, origin, &ref);
        for (int i = 0; i < w->n; i++) {
            if (i == o)
                continue;
            hist_of(w, i, origin, &mine);
            CHECK(w, mine.have == ref.have && mine.n == ref.n,
                  "replica %d holds %llu ops of honest origin %d, which holds %llu", i,
                  (unsigned long long)mine.have, o, (unsigned long long)ref.have);
            for (size_t k = 0; k < mine.n; k++)
                CHECK(w,
                      mine.seq[k] == ref.seq[k] &&
                          memcmp(mine.chain[k], ref.chain[k], KITH_HASH_BYTES) == 0,
                      "replica %d: commit %zu of honest origin %d differs", i, k, o);
            hist_free(&mine);
        }
        hist_free(&ref);
    }
}

static void
run_history(uint64_t seed, int history)
{
    struct world *w = calloc(1, sizeof *w);

    cr_assert_not_null(w);
    w->seed = seed;
    w->history = history;
    w->rng = seed ^ ((uint64_t)history * 0xd1b54a32d192ed03ull);
    w->n = 3 + (int)below(w, 3);
    w->fp = -1;
    w->f = (int)below(w, (uint64_t)w->n);
    w->equal = below(w, 4) == 0;
    for (int i = 0; i < w->n; i++)
        w->r[i] = kt_new();
    for (int i = 0; i < w->n; i++)
        for (int j = i + 1; j < w->n; j++)
            kt_trust_pair(&w->r[i], &w->r[j]);
    w->origin = kith_replica_id(w->r[w->f].r);

    int steps = 30 + (int)below(w, 40), fork_at = (int)below(w, (uint64_t)steps);
    for (int s = 0; s < steps; s++) {
        if (s == fork_at) {
            fork_replica(w);
            w->quiet_f = below(w, 3) == 0;
        }
        uint64_t what = below(w, 10);
        if (what < 4) {
            int i = pick_active(w);
            if (may_write(w, i))
                local_txn(w, i);
        } else if (what < 7) {
            int i = pick_active(w), j;
            do
                j = pick_active(w);
            while (j == i);
            send(w, i, j, below(w, 2) ? 0 : 1 + below(w, 12));
        } else if (w->nq > 0) {
            deliver_one(w);
        }
    }
    w->quiet_f = false;
    w->final = true;
    while (w->nq > 0) {
        size_t k = below(w, w->nq);
        deliver_to(w, w->q[k].to, w->q[k].branch, w->q[k].data, w->q[k].len);
        free(w->q[k].data);
        w->q[k] = w->q[--w->nq];
    }
    for (int round = 0;; round++) {
        CHECK(w, round < MAX_ROUNDS, "the full rounds go on after %d", MAX_ROUNDS);
        quiesce(w);
        if (!full_round(w))
            break;
    }
    check_end(w);

    total_txns += w->txns;
    total_batches += w->batches;
    total_applied += w->applied;
    total_gaps += w->gaps;
    total_at_base += w->at_base;
    total_detected += w->detected;
    total_detected_final += w->detected_final;
    total_held += w->held;
    total_set_aside += w->set_aside;
    total_exports += w->exports_compared;
    total_equal += w->equal;
    total_equal_final += w->equal && w->detected == w->detected_final;
    for (int i = 0; i < w->n; i++)
        kt_free(&w->r[i]);
    free(w);
}

Test(convergence_forks, random_histories_with_a_fork, .timeout = 300)
{
    uint64_t seed = kt_seed();
    int cases = kt_cases(30);

    for (int h = 0; h < cases; h++)
        run_history(seed, h);
    fprintf(stderr,
            "convergence_forks: %d histories, %llu local txns, %llu batches built, %llu "
            "applied, %llu refused as gaps, %llu forks recorded (%llu in the last exchanges, "
            "%llu at a run's base); at the end %llu replicas of forked histories hold a proof, "
            "%llu ops set aside to journals, %llu ops held, %llu forked histories with exports "
            "compared; %llu equal-seqs forks (%llu found only in the last exchanges)\n",
            cases, (unsigned long long)total_txns, (unsigned long long)total_batches,
            (unsigned long long)total_applied, (unsigned long long)total_gaps,
            (unsigned long long)total_detected, (unsigned long long)total_detected_final,
            (unsigned long long)total_at_base, (unsigned long long)total_knowing,
            (unsigned long long)total_set_aside, (unsigned long long)total_held,
            (unsigned long long)total_exports, (unsigned long long)total_equal,
            (unsigned long long)total_equal_final);
}
