/*
 * test_convergence.c — generated end-to-end convergence on the real store. Each history
 * makes 3–5 replicas (KITH_NOSYNC, in temporary directories) that all trust each other,
 * then interleaves random local transactions through the public API (contacts created and
 * deleted, fields set and cleared, tags added and removed, interactions and reminders, and a
 * counter and a flag that only some replicas declare: the others relay them undeclared) with
 * random partial exchanges: kith_batch_create(since = the receiver's vector, a random op
 * limit) into an in-flight queue whose messages are delivered late, out of order, more than
 * once (a batch that no longer fits is refused with KITH_EGAP or goes pending: both fine,
 * and it is redelivered later). At the end every pair exchanges until nothing moves, some
 * recorded conflicts are resolved (restoring losers as new writes) and everything travels
 * again; then nothing may be pending, kith_verify must be clean on every replica, every
 * export the same bytes, and the whole LMDB state of one replica (dead documents, dots and
 * clocks included) byte for byte what the reference model (core/mem.h) makes of its log.
 *
 * KITH_CASES histories (default 100), from KITH_SEED (printed; set it to replay). Replica
 * keys are random, so a replay repeats the choices, not the ids. A failure names the seed
 * and the history.
 */
#include "kith.h"
#include "kith_test.h"
#include "mem.h"
#include "schema.h"
#include "store.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPLICAS 5
#define MAX_POOL 512
#define MAX_QUEUE 48
#define MAX_ROUNDS 30

enum { C_CONTACTS, C_INTERACTIONS, C_REMINDERS, NCOLL };

static const char *const COLL[NCOLL] = {"contacts", "interactions", "reminders"};

struct msg {
    int to;
    uint8_t *data;
    size_t len;
};

struct world {
    uint64_t seed;
    int history;
    uint64_t rng;
    int n;
    struct kt_replica r[MAX_REPLICAS];
    kith_docid pool[NCOLL][MAX_POOL]; /* every document made anywhere */
    size_t npool[NCOLL];
    struct msg q[MAX_QUEUE];
    size_t nq;
    /* tallies, for the figures printed at the end */
    uint64_t txns, batches, applied, refused_gap, resolved, left_pending;
};

static uint64_t total_txns, total_batches, total_applied, total_gap, total_resolved,
    total_open_conflicts, total_pending;

#define CHECK(w, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "KITH_SEED=%llu history %d: ", (unsigned long long)(w)->seed,          \
                    (w)->history);                                                                 \
            cr_assert(false, __VA_ARGS__);                                                         \
        }                                                                                          \
    } while (0)

static uint64_t
below(struct world *w, uint64_t n)
{
    return kt_below(&w->rng, n);
}

static kith_value
strv(const char *s)
{
    kith_value v = {.type = KITH_TYPE_STRING};
    v.u.s.ptr = s;
    v.u.s.len = strlen(s);
    return v;
}

/* A document of collection c from the pool that is live on replica `t`'s side, or NULL. */
static const kith_docid *
pick_live(struct world *w, kith_txn *t, int c)
{
    if (w->npool[c] == 0)
        return NULL;
    for (int tries = 0; tries < 4; tries++) {
        /* Half the picks go to the first few documents, so that replicas often edit the
         * same ones concurrently: that is where conflicts and add-wins deletes happen. */
        size_t span = below(w, 2) && w->npool[c] > 3 ? 3 : w->npool[c];
        const kith_docid *d = &w->pool[c][below(w, span)];
        int rc = kith_doc_exists(t, COLL[c], d);
        CHECK(w, rc >= 0, "doc_exists: %s", kith_strerror(rc));
        if (rc == 1)
            return d;
    }
    return NULL;
}

static void
pool_add(struct world *w, int c, const kith_docid *d)
{
    if (w->npool[c] < MAX_POOL)
        w->pool[c][w->npool[c]++] = *d;
}

#define OK(w, call)                                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        CHECK(w, rc_ == 0, "%s: %s (%s)", #call, kith_strerror(rc_), kith_errmsg(r));              \
    } while (0)

/*
 * Resolve the first open conflict in t, if any. The loser is restored only where that is
 * sure to be a valid write: a contact field of a live contact, or a delete (which deletes
 * the document again if it is live); a restored reference might name a deleted contact.
 */
static void
resolve_one(struct world *w, kith_replica *r, kith_txn *t)
{
    kith_iter *it = NULL;
    kith_conflict c;
    bool restore = below(w, 2) == 0;
    int rc;

    OK(w, kith_iter_conflicts(t, false, &it));
    rc = kith_iter_next_conflict(it, &c);
    kith_iter_close(it);
    if (rc == KITH_ENOTFOUND)
        return;
    CHECK(w, rc == 0, "next_conflict: %s", kith_strerror(rc));
    if (restore && c.field[0] != '\0') {
        rc = kith_doc_exists(t, c.collection, &c.doc);
        CHECK(w, rc >= 0, "doc_exists: %s", kith_strerror(rc));
        restore = rc == 1 && strcmp(c.collection, "contacts") == 0;
    }
    OK(w, kith_conflict_resolve(t, c.id, restore));
    w->resolved++;
}

/* One random op in the write transaction t of replica r. */
/* The fields beyond the built-in schema, declared by the even replicas only. */
static const char extra_schema[] = "{\"collections\":{\"contacts\":{\"fields\":{"
                                   "\"score\":{\"type\":\"integer\",\"crdt\":\"counter\"},"
                                   "\"pinned\":{\"type\":\"boolean\",\"crdt\":\"flag\"}}}}}";

static bool
declares_extra(const struct world *w, const kith_replica *r)
{
    for (int i = 0; i < w->n; i++)
        if (w->r[i].r == r)
            return i % 2 == 0;
    return false;
}

static void
random_op(struct world *w, kith_replica *r, kith_txn *t)
{
    static const char *const names[] = {"Ada", "Bob", "Cy", "Dee", "Eve", "\xc3\x89mile"};
    static const char *const tags[] = {"a", "b", "family", "work"};
    static const char *const kinds[] = {"call", "meeting", "message", "email", "note"};
    const kith_docid *d;
    kith_docid nd;
    char buf[64];
    kith_value v;

    switch (below(w, 15)) {
    case 0:
    case 1: /* new contact */
        OK(w, kith_doc_create(t, "contacts", &nd));
        v = strv(names[below(w, 6)]);
        OK(w, kith_field_set(t, "contacts", &nd, "name", &v));
        pool_add(w, C_CONTACTS, &nd);
        break;
    case 2: /* delete a contact */
        if ((d = pick_live(w, t, C_CONTACTS)))
            OK(w, kith_doc_delete(t, "contacts", d));
        break;
    case 3: /* set or clear a contact field */
        if (!(d = pick_live(w, t, C_CONTACTS)))
            break;
        switch (below(w, 4)) {
        case 0:
            v = strv(names[below(w, 6)]);
            OK(w, kith_field_set(t, "contacts", d, "name", &v));
            break;
        case 1:
            snprintf(buf, sizeof buf, "u%u@example.org", (unsigned)below(w, 50));
            v = strv(buf);
            OK(w, kith_field_set(t, "contacts", d, "email", &v));
            break;
        case 2:
            snprintf(buf, sizeof buf, "19%02u-0%u-1%u", (unsigned)below(w, 100),
                     1 + (unsigned)below(w, 9), (unsigned)below(w, 10));
            v = strv(buf);
            v.type = KITH_TYPE_DATE;
            OK(w, kith_field_set(t, "contacts", d, "birthday", &v));
            break;
        default:
            v.type = KITH_TYPE_NULL;
            OK(w, kith_field_set(t, "contacts", d, below(w, 2) ? "company" : "email", &v));
            break;
        }
        break;
    case 4:
    case 5: /* tags */
        if (!(d = pick_live(w, t, C_CONTACTS)))
            break;
        {
            const char *tag = tags[below(w, 4)];
            if (below(w, 3))
                OK(w, kith_set_add(t, "contacts", d, "tags", tag, strlen(tag)));
            else
                OK(w, kith_set_remove(t, "contacts", d, "tags", tag, strlen(tag)));
        }
        break;
    case 6: /* new interaction */
        if (!(d = pick_live(w, t, C_CONTACTS)))
            break;
        OK(w, kith_doc_create(t, "interactions", &nd));
        v.type = KITH_TYPE_REF;
        v.u.ref = *d;
        OK(w, kith_field_set(t, "interactions", &nd, "contact", &v));
        v = strv(kinds[below(w, 5)]);
        v.type = KITH_TYPE_ENUM;
        OK(w, kith_field_set(t, "interactions", &nd, "kind", &v));
        v.type = KITH_TYPE_TIME;
        v.u.i = 1764000000000 + (int64_t)below(w, 1000) * 60000;
        OK(w, kith_field_set(t, "interactions", &nd, "at", &v));
        pool_add(w, C_INTERACTIONS, &nd);
        break;
    case 7: /* edit an interaction */
        if (!(d = pick_live(w, t, C_INTERACTIONS)))
            break;
        if (below(w, 2)) {
            v.type = KITH_TYPE_TIME;
            v.u.i = 1764000000000 + (int64_t)below(w, 1000) * 60000;
            OK(w, kith_field_set(t, "interactions", d, "at", &v));
        } else if (below(w, 2)) {
            snprintf(buf, sizeof buf, "talked %u", (unsigned)below(w, 100));
            v = strv(buf);
            OK(w, kith_field_set(t, "interactions", d, "summary", &v));
        } else {
            /* participants: a set of contact ids; add a live one, or remove one */
            const kith_docid *p = pick_live(w, t, C_CONTACTS);
            if (p) {
                kith_docid_format(p, buf);
                if (below(w, 3))
                    OK(w, kith_set_add(t, "interactions", d, "participants", buf, 32));
                else
                    OK(w, kith_set_remove(t, "interactions", d, "participants", buf, 32));
            }
        }
        break;
    case 8: /* new reminder */
        OK(w, kith_doc_create(t, "reminders", &nd));
        v.type = KITH_TYPE_TIME;
        v.u.i = 1764000000000 + (int64_t)below(w, 1000) * 3600000;
        OK(w, kith_field_set(t, "reminders", &nd, "due", &v));
        v = strv("do it");
        OK(w, kith_field_set(t, "reminders", &nd, "text", &v));
        if (below(w, 2) && (d = pick_live(w, t, C_CONTACTS))) {
            v.type = KITH_TYPE_REF;
            v.u.ref = *d;
            OK(w, kith_field_set(t, "reminders", &nd, "contact", &v));
        }
        pool_add(w, C_REMINDERS, &nd);
        break;
    case 9: /* edit a reminder */
        if (!(d = pick_live(w, t, C_REMINDERS)))
            break;
        if (below(w, 2)) {
            v.type = KITH_TYPE_BOOL;
            v.u.b = below(w, 2);
            OK(w, kith_field_set(t, "reminders", d, "done", &v));
        } else {
            v.type = KITH_TYPE_TIME;
            v.u.i = 1764000000000 + (int64_t)below(w, 1000) * 3600000;
            OK(w, kith_field_set(t, "reminders", d, "due", &v));
        }
        break;
    case 10: /* delete an interaction or a reminder */
    {
        int c = below(w, 2) ? C_INTERACTIONS : C_REMINDERS;
        if ((d = pick_live(w, t, c)))
            OK(w, kith_doc_delete(t, COLL[c], d));
        break;
    }
    case 12: /* resolve an open conflict, restoring the loser as a new write half the time */
        resolve_one(w, r, t);
        break;
    case 13: /* the counter: concurrent increments add up */
        if (declares_extra(w, r) && (d = pick_live(w, t, C_CONTACTS)))
            OK(w, kith_counter_add(t, "contacts", d, "score", (int64_t)below(w, 7) - 2));
        break;
    case 14: /* the flag: set against clear, set wins */
        if (declares_extra(w, r) && (d = pick_live(w, t, C_CONTACTS)))
            OK(w, kith_flag_set(t, "contacts", d, "pinned", below(w, 3) != 0));
        break;
    default: /* rename to a random name: concurrent renames make conflicts */
        if ((d = pick_live(w, t, C_CONTACTS))) {
            snprintf(buf, sizeof buf, "n%u", (unsigned)below(w, 1000));
            v = strv(buf);
            OK(w, kith_field_set(t, "contacts", d, "name", &v));
        }
        break;
    }
}

static void
local_txn(struct world *w, int i)
{
    kith_replica *r = w->r[i].r;
    kith_txn *t = NULL;
    int nops = 1 + (int)below(w, 4);

    OK(w, kith_txn_begin(r, KITH_TXN_WRITE, &t));
    for (int k = 0; k < nops; k++)
        random_op(w, r, t);
    OK(w, kith_txn_commit(&t));
    w->txns++;
}

/* Build a batch from i for what j holds now (or, sometimes, what another replica holds) and
 * queue it for j (maybe twice). */
static void
send(struct world *w, int i, int j, size_t max_ops)
{
    kith_replica *r = w->r[i].r;
    kith_batch_opts opts = {.max_ops = max_ops};
    kith_vv since;
    kith_buf buf = {0};

    /* One batch in four is built for what a third replica holds (as a relay that guessed
     * wrong would): it may start past what j holds and must then be refused or wait. */
    int basis = below(w, 4) == 0 ? (int)below(w, w->n) : j;
    OK(w, kith_vv_get(w->r[basis].r, &since));
    opts.since = &since;
    OK(w, kith_batch_create(r, &opts, &buf, NULL));
    kith_vv_free(&since);
    w->batches++;
    for (int copies = below(w, 4) == 0 ? 2 : 1; copies > 0; copies--) {
        if (w->nq == MAX_QUEUE) {
            free(w->q[0].data);
            memmove(&w->q[0], &w->q[1], (MAX_QUEUE - 1) * sizeof w->q[0]);
            w->nq--;
        }
        struct msg *m = &w->q[w->nq++];
        m->to = j;
        m->len = buf.len;
        m->data = malloc(buf.len ? buf.len : 1);
        CHECK(w, m->data != NULL, "out of memory");
        memcpy(m->data, buf.data, buf.len);
    }
    kith_free(buf.data);
}

/* Apply a batch to replica j: it must apply or be refused as not contiguous. */
static bool
deliver_to(struct world *w, int j, const uint8_t *data, size_t len)
{
    kith_replica *r = w->r[j].r;
    kith_apply_info info = {0};
    int rc = kith_batch_apply(r, data, len, &info);

    if (rc == KITH_EGAP) {
        w->refused_gap++;
        return false;
    }
    CHECK(w, rc == 0, "batch_apply to %d: %s (%s)", j, kith_strerror(rc), kith_errmsg(r));
    w->applied++;
    if (info.ops_pending > 0)
        w->left_pending++;
    return info.ops_new > 0 || info.ops_applied > 0;
}

/* Deliver one queued message; it stays queued (to arrive again) one time in three. */
static void
deliver_one(struct world *w)
{
    size_t k = below(w, w->nq);
    struct msg m = w->q[k];

    deliver_to(w, m.to, m.data, m.len);
    if (below(w, 3) != 0) {
        free(m.data);
        w->q[k] = w->q[--w->nq];
    }
}

/* Every pair exchanges in full until a whole round moves nothing. */
static void
quiesce(struct world *w)
{
    for (int round = 0;; round++) {
        bool moved = false;

        CHECK(w, round < MAX_ROUNDS, "no quiescence after %d rounds", MAX_ROUNDS);
        for (int i = 0; i < w->n; i++)
            for (int j = 0; j < w->n; j++) {
                if (i == j)
                    continue;
                kith_replica *r = w->r[i].r;
                kith_batch_opts opts = {0};
                kith_vv since;
                kith_buf buf = {0};
                OK(w, kith_vv_get(w->r[j].r, &since));
                opts.since = &since;
                OK(w, kith_batch_create(r, &opts, &buf, NULL));
                kith_vv_free(&since);
                moved |= deliver_to(w, j, buf.data, buf.len);
                kith_free(buf.data);
            }
        if (!moved)
            return;
    }
}

/* ---- the store against the reference model (core/mem.h) ---------------------------------- */

struct lines {
    struct kith__wbuf text;
    size_t *starts;
    size_t n, cap;
};

static void
line_begin(struct world *w, struct lines *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->starts = realloc(l->starts, l->cap * sizeof *l->starts);
        CHECK(w, l->starts != NULL, "out of memory");
    }
    l->starts[l->n++] = l->text.len;
}

static void textf(struct world *w, struct lines *l, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
textf(struct world *w, struct lines *l, const char *fmt, ...)
{
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    CHECK(w, n >= 0 && (size_t)n < sizeof buf, "line too long");
    CHECK(w, kith__wbuf_put(&l->text, buf, (size_t)n) == 0, "out of memory");
}

static void
text_hex(struct world *w, struct lines *l, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        textf(w, l, "%02x", p[i]);
}

static void
text_dots(struct world *w, struct lines *l, const uint8_t *p, size_t bytes)
{
    for (size_t i = 0; i < bytes / KITH__DOT_BYTES; i++) {
        kith_dot d = kith__dot_get(p + i * KITH__DOT_BYTES);
        textf(w, l, "%s%016llx:%llu", i ? "," : " ", (unsigned long long)d.origin,
              (unsigned long long)d.seq);
    }
}

/* The name of collection number coll (field 0) or of its field, from the replica's names. */
static void
text_name(struct world *w, struct lines *l, kith_replica *r, MDB_txn *txn, int coll, int field)
{
    const char *name = NULL;
    int rc = field
                 ? kith__names_name(r, txn, KITH__NAME_FIELD, (uint8_t)coll, (uint8_t)field, &name)
                 : kith__names_name(r, txn, KITH__NAME_COLL, 0, (uint8_t)coll, &name);
    CHECK(w, rc == 0, "no name for %d.%d", coll, field);
    textf(w, l, "%s", name);
}

static void
text_key(struct world *w, struct lines *l, kith_replica *r, MDB_txn *txn, const uint8_t *k)
{
    text_name(w, l, r, txn, k[0], 0);
    textf(w, l, " ");
    text_hex(w, l, k + 1, KITH_DOCID_BYTES);
}

static void
text_value(struct world *w, struct lines *l, const kith_value *v)
{
    switch (v->type) {
    case KITH_TYPE_NULL:
        textf(w, l, "null");
        return;
    case KITH_TYPE_INT:
        textf(w, l, "i:%lld", (long long)v->u.i);
        return;
    case KITH_TYPE_TIME:
        textf(w, l, "t:%lld", (long long)v->u.i);
        return;
    case KITH_TYPE_BOOL:
        textf(w, l, "%s", v->u.b ? "true" : "false");
        return;
    case KITH_TYPE_REF:
        textf(w, l, "r:");
        text_hex(w, l, v->u.ref.bytes, KITH_DOCID_BYTES);
        return;
    case KITH_TYPE_BYTES:
        textf(w, l, "b:");
        text_hex(w, l, (const uint8_t *)v->u.s.ptr, v->u.s.len);
        return;
    default:
        break;
    }
    textf(w, l, "%c\"", v->type == KITH_TYPE_DATE ? 'd' : v->type == KITH_TYPE_ENUM ? 'e' : 's');
    for (size_t i = 0; i < v->u.s.len; i++) {
        unsigned char c = (unsigned char)v->u.s.ptr[i];
        if (c == '"' || c == '\\')
            textf(w, l, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            textf(w, l, "\\x%02x", c);
        else
            textf(w, l, "%c", c);
    }
    textf(w, l, "\"");
}

static const struct kith__wbuf *lines_text;

static int
line_cmp(const void *a, const void *b)
{
    const size_t *x = a, *y = b;
    const char *base = (const char *)lines_text->data;
    const char *p = base + x[0], *q = base + y[0];
    size_t n = (size_t)(strchr(p, '\n') - p), m = (size_t)(strchr(q, '\n') - q);
    int c = memcmp(p, q, n < m ? n : m);
    return c ? c : (n > m) - (n < m);
}

/*
 * The whole replicated state of a replica's LMDB databases (membership, elements and
 * registers, with their dots and clocks), rendered in the reference model's canonical dump
 * format (spec/data-model.md "Canonical dump") and sorted. Caller frees the result.
 */
static char *
store_dump(struct world *w, kith_replica *r)
{
    struct lines l = {0};
    MDB_dbi dbis[5] = {r->docs, r->elems, r->regs, r->flagdb, r->counts};
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;

    CHECK(w, kith__mdb_begin(r, MDB_RDONLY, &txn) == 0, "read txn");
    for (int d = 0; d < 5; d++) {
        CHECK(w, mdb_cursor_open(txn, dbis[d], &cur) == 0, "cursor");
        int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        while (rc == 0) {
            const uint8_t *kp = k.mv_data, *vp = v.mv_data;
            line_begin(w, &l);
            text_key(w, &l, r, txn, kp);
            if (d == 0) {
                textf(w, &l, " D");
                text_dots(w, &l, vp, v.mv_size);
            } else if (d == 1) {
                textf(w, &l, " E ");
                text_name(w, &l, r, txn, kp[0], kp[17]);
                textf(w, &l, " ");
                text_hex(w, &l, kp + 18, k.mv_size - 18);
                text_dots(w, &l, vp, v.mv_size);
            } else if (d == 2) {
                kith_value val;
                textf(w, &l, " F ");
                text_name(w, &l, r, txn, kp[0], kp[17]);
                textf(w, &l, " ");
                CHECK(w, kith__value_load(vp + 24, v.mv_size - 24, &val) == 0, "regval");
                text_value(w, &l, &val);
                textf(w, &l, " @%016llx %016llx:%llu", (unsigned long long)kith__be64_get(vp),
                      (unsigned long long)kith__be64_get(vp + 8),
                      (unsigned long long)kith__be64_get(vp + 16));
            } else if (d == 3) {
                textf(w, &l, " B ");
                text_name(w, &l, r, txn, kp[0], kp[17]);
                textf(w, &l, " true");
                text_dots(w, &l, vp, v.mv_size);
            } else {
                /* a counter: one line for its per-origin totals, which are consecutive keys */
                uint8_t prefix[18];
                uint64_t sum = 0;
                struct kith__wbuf totals = {0};
                memcpy(prefix, kp, 18);
                textf(w, &l, " C ");
                text_name(w, &l, r, txn, kp[0], kp[17]);
                do {
                    char item[64];
                    int64_t total;
                    uint64_t raw = kith__be64_get(v.mv_data);
                    memcpy(&total, &raw, sizeof total);
                    sum += raw;
                    int n = snprintf(
                        item, sizeof item, "%s%016llx:%lld", totals.len ? "," : " ",
                        (unsigned long long)kith__be64_get((const uint8_t *)k.mv_data + 18),
                        (long long)total);
                    CHECK(w, kith__wbuf_put(&totals, item, (size_t)n) == 0, "out of memory");
                    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
                } while (rc == 0 && memcmp(k.mv_data, prefix, 18) == 0);
                int64_t total_sum;
                memcpy(&total_sum, &sum, sizeof sum);
                textf(w, &l, " i:%lld%.*s\n", (long long)total_sum, (int)totals.len,
                      (const char *)totals.data);
                kith__wbuf_free(&totals);
                continue;
            }
            textf(w, &l, "\n");
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    kith__mdb_end(r);

    lines_text = &l.text;
    if (l.n > 0) /* an empty state has no lines, and qsort may not be given NULL */
        qsort(l.starts, l.n, sizeof *l.starts, line_cmp);
    char *out = malloc(l.text.len + 1);
    size_t len = 0;
    CHECK(w, out != NULL, "out of memory");
    for (size_t i = 0; i < l.n; i++) {
        const char *p = (const char *)l.text.data + l.starts[i];
        size_t n = (size_t)(strchr(p, '\n') - p) + 1;
        memcpy(out + len, p, n);
        len += n;
    }
    out[len] = '\0';
    free(l.starts);
    kith__wbuf_free(&l.text);
    return out;
}

/* Re-apply replica r's log, in its apply order, to the reference model and dump it. */
static char *
model_dump(struct world *w, kith_replica *r)
{
    struct kith__memrep *m = NULL;
    struct kith__arena arena = {0};
    struct kith__wbuf out = {0};
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    char why[128];

    CHECK(w, kith__memrep_new(kith_replica_id(r), &m) == 0, "memrep");
    CHECK(w, kith__mdb_begin(r, MDB_RDONLY, &txn) == 0, "read txn");
    CHECK(w, mdb_cursor_open(txn, r->order, &cur) == 0, "cursor");
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        MDB_val lv;
        struct kith__commit c;
        uint64_t origin = kith__be64_get(v.mv_data);
        uint64_t first = kith__be64_get((const uint8_t *)v.mv_data + 8);
        CHECK(w, mdb_get(txn, r->log, &v, &lv) == 0, "logged commit");
        kith__arena_reset(&arena);
        CHECK(w,
              kith__commit_decode((const uint8_t *)lv.mv_data + KITH__LOG_HDR_BYTES,
                                  lv.mv_size - KITH__LOG_HDR_BYTES, origin, first, &c, &arena, why,
                                  sizeof why) == 0,
              "decode: %s", why);
        int arc = kith__memrep_apply(m, &c, KITH__MEMREP_NO_CLOCK);
        CHECK(w, arc == 0, "the model refuses commit %016llx:%llu in apply order: %d",
              (unsigned long long)origin, (unsigned long long)first, arc);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    kith__mdb_end(r);
    CHECK(w, kith__memrep_dump(m, 0, &out) == 0, "dump");
    char *text = malloc(out.len + 1);
    CHECK(w, text != NULL, "out of memory");
    if (out.len > 0) /* an empty model dumps nothing, and memcpy may not be given NULL */
        memcpy(text, out.data, out.len);
    text[out.len] = '\0';
    kith__wbuf_free(&out);
    kith__arena_free(&arena);
    kith__memrep_free(m);
    return text;
}

/* The store's state must be, byte for byte, what the reference model makes of the same log. */
static void
check_against_model(struct world *w, int i)
{
    char *s = store_dump(w, w->r[i].r), *m = model_dump(w, w->r[i].r);

    if (strcmp(s, m) != 0) {
        size_t k = 0;
        while (s[k] == m[k])
            k++;
        while (k > 0 && s[k - 1] != '\n')
            k--;
        CHECK(w, false, "replica %d: store and model differ at\n  store: %.200s\n  model: %.200s",
              i, s + k, m + k);
    }
    free(s);
    free(m);
}

static void
check_converged(struct world *w)
{
    char *first = kt_export(w->r[0].r);

    /* Each replica sound on its own first: a failure here points at one replica. */
    for (int i = 0; i < w->n; i++) {
        kith_status *s = NULL;
        kith_verify_report rep;
        kith_replica *r = w->r[i].r;

        OK(w, kith_status_get(r, &s));
        CHECK(w, s->pending_ops == 0, "replica %d still has %llu ops pending", i,
              (unsigned long long)s->pending_ops);
        total_open_conflicts += s->open_conflicts;
        kith_status_free(s);
        OK(w, kith_verify(r, &rep));
        CHECK(w, rep.problems == 0, "replica %d fails verify (%llu problems): %s", i,
              (unsigned long long)rep.problems, rep.first_problem);
    }
    check_against_model(w, 0);
    for (int i = 1; i < w->n; i++) {
        char *e = kt_export(w->r[i].r);
        if (strcmp(e, first) != 0) {
            size_t k = 0;
            while (e[k] == first[k])
                k++;
            k = k > 120 ? k - 120 : 0;
            CHECK(w, false, "replica %d and replica 0 export different bytes:\n  %.240s\n  %.240s",
                  i, e + k, first + k);
        }
        free(e);
    }
    free(first);
}

static void
run_history(uint64_t seed, int history)
{
    struct world *w = calloc(1, sizeof *w);

    cr_assert_not_null(w);
    w->seed = seed;
    w->history = history;
    w->rng = seed ^ ((uint64_t)history * 0xd1b54a32d192ed03ull);
    w->n = 3 + (int)below(w, MAX_REPLICAS - 2);
    for (int i = 0; i < w->n; i++) {
        w->r[i] = kt_new();
        kith_replica *r = w->r[i].r;
        if (i % 2 == 0)
            OK(w, kith_schema_apply(r, extra_schema, strlen(extra_schema)));
    }
    for (int i = 0; i < w->n; i++)
        for (int j = i + 1; j < w->n; j++)
            kt_trust_pair(&w->r[i], &w->r[j]);

    int steps = 20 + (int)below(w, 40);
    for (int s = 0; s < steps; s++) {
        uint64_t what = below(w, 10);
        if (what < 5) {
            local_txn(w, (int)below(w, w->n));
        } else if (what < 8) {
            int i = (int)below(w, w->n), j = (int)below(w, w->n - 1);
            if (j >= i)
                j++;
            send(w, i, j, below(w, 2) ? 0 : 1 + below(w, 12));
        } else if (w->nq > 0) {
            deliver_one(w);
        }
    }
    /* Late deliveries of whatever is still in flight, in random order. */
    while (w->nq > 0) {
        size_t k = below(w, w->nq);
        deliver_to(w, w->q[k].to, w->q[k].data, w->q[k].len);
        free(w->q[k].data);
        w->q[k] = w->q[--w->nq];
    }
    quiesce(w);
    /* Now that every replica holds every write, resolve some of the conflicts the merge
     * recorded (restoring losers as new writes), and let those writes travel too. */
    for (int k = (int)below(w, 4); k > 0; k--) {
        kith_replica *r = w->r[below(w, w->n)].r;
        kith_txn *t = NULL;

        OK(w, kith_txn_begin(r, KITH_TXN_WRITE, &t));
        for (int m = 1 + (int)below(w, 3); m > 0; m--)
            resolve_one(w, r, t);
        OK(w, kith_txn_commit(&t));
    }
    quiesce(w);
    check_converged(w);

    total_txns += w->txns;
    total_batches += w->batches;
    total_applied += w->applied;
    total_gap += w->refused_gap;
    total_resolved += w->resolved;
    total_pending += w->left_pending;
    for (int i = 0; i < w->n; i++)
        kt_free(&w->r[i]);
    free(w);
}

Test(convergence, random_histories_converge, .timeout = 300)
{
    uint64_t seed = kt_seed();
    int cases = kt_cases(100);

    for (int h = 0; h < cases; h++)
        run_history(seed, h);
    fprintf(
        stderr,
        "convergence: %d histories, %llu local txns, %llu batches built, %llu applied, "
        "%llu refused as gaps, %llu left ops pending, %llu conflicts resolved, %llu left open\n",
        cases, (unsigned long long)total_txns, (unsigned long long)total_batches,
        (unsigned long long)total_applied, (unsigned long long)total_gap,
        (unsigned long long)total_pending, (unsigned long long)total_resolved,
        (unsigned long long)total_open_conflicts);
}
