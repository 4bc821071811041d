/*
 * workload.c — the checker's generated writes, what was acknowledged, and the end checks
 * (spec/check.md "Workload", "Checks and verdict"). Every step is one write transaction at a
 * replica the seeded generator picks, through the public API only: documents created in every
 * collection with every field type of the schema (strings, dates, times, booleans, enums,
 * references, sets of tags and of references), edits and clears of any field, set adds and removes,
 * deletes, and now and then the same field written at two replicas back to back (a conflict).
 *
 * A transaction is acknowledged when kith_txn_commit returns 0. Its seqs are known (each
 * replica's own origin is written by this process alone, so its seqs run on from the last
 * acknowledged commit's), and so is every value it set. At the end every acknowledged commit
 * must be in every replica's vector, every value it set in the log at its seqs, and every
 * register must hold the value of the write with the largest (hlc, origin) that the log holds
 * for it: the LWW rule recomputed from the log, independently of the store's merge code.
 */
#include "check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VAL_CAP 100

struct doc {
    int coll;
    kith_docid id;
};

/* An acknowledged field write. */
struct wrec {
    int coll, field;
    kith_docid doc;
    char val[VAL_CAP]; /* canonical text of the value (val_text) */
};

/* An acknowledged commit of replica `rep`: seqs lo..hi, writes w[w0 .. w0+nw). */
struct ack {
    int rep;
    uint64_t lo, hi;
    size_t w0, nw;
};

struct ck_work {
    int n;
    kith_replica **reps;
    uint64_t seed, steps;
    uint64_t rng; /* reseeded from (seed, step) at every step */
    const kith_collection_def *schema;
    size_t ncoll;
    struct doc *docs;
    size_t ndocs, capdocs;
    uint64_t seq[CK_MAX_REPLICAS]; /* each replica's last acknowledged own seq */
    struct ack *acks;
    size_t nacks, capacks;
    struct wrec *w;
    size_t nw, capw;
    unsigned busy;    /* replicas another process writes to now (a bit each): skipped */
    size_t pending_w; /* writes of the open transaction start here */
    bool expect_ops;  /* the open transaction made a call that always writes an op */
    long lost;        /* acknowledged commits that wrote ops yet left the seq where it was */
    char lost_first[200];
    long serial; /* makes every generated value unique */
};

static bool
grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap * 2 : 256;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (q == NULL)
        return false;
    *p = q;
    *cap = c;
    return true;
}

/* A value as text, with its type, so that values from the API and from the log compare. */
static void
val_text(const kith_value *v, char out[VAL_CAP])
{
    char hex[KITH_DOCID_HEX + 1];

    switch (v->type) {
    case KITH_TYPE_NULL:
        snprintf(out, VAL_CAP, "null");
        break;
    case KITH_TYPE_INT:
    case KITH_TYPE_TIME:
        snprintf(out, VAL_CAP, "%d:%lld", (int)v->type, (long long)v->u.i);
        break;
    case KITH_TYPE_BOOL:
        snprintf(out, VAL_CAP, "%d:%d", (int)v->type, v->u.b ? 1 : 0);
        break;
    case KITH_TYPE_REF:
        kith_docid_format(&v->u.ref, hex);
        snprintf(out, VAL_CAP, "%d:%s", (int)v->type, hex);
        break;
    default:
        snprintf(out, VAL_CAP, "%d:%.*s", (int)v->type, (int)(v->u.s.len < 80 ? v->u.s.len : 80),
                 v->u.s.ptr);
    }
}

static uint64_t
own_seq(kith_replica *r)
{
    kith_vv vv;
    uint64_t id = kith_replica_id(r), seq = 0;

    if (kith_vv_get(r, &vv) < 0)
        return 0;
    for (size_t i = 0; i < vv.len; i++)
        if (vv.entries[i].origin == id)
            seq = vv.entries[i].seq;
    kith_vv_free(&vv);
    return seq;
}

int
ck_work_new(int n, kith_replica **reps, uint64_t seed, struct ck_work **out)
{
    struct ck_work *w = calloc(1, sizeof(*w));

    *out = NULL;
    if (w == NULL)
        return KITH_ENOMEM;
    w->n = n;
    w->reps = reps;
    w->seed = seed ^ 0x5bd1e995u;
    w->schema = kith_schema(&w->ncoll);
    for (int k = 0; k < n; k++)
        w->seq[k] = own_seq(reps[k]); /* what the replica's origin wrote before */
    *out = w;
    return 0;
}

void
ck_work_free(struct ck_work *w)
{
    if (w == NULL)
        return;
    free(w->docs);
    free(w->acks);
    free(w->w);
    free(w);
}

static int
coll_index(struct ck_work *w, const char *name)
{
    for (size_t i = 0; i < w->ncoll; i++)
        if (strcmp(w->schema[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int
field_index(struct ck_work *w, int coll, const char *name)
{
    for (size_t i = 0; i < w->schema[coll].nfields; i++)
        if (strcmp(w->schema[coll].fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* A known document of collection `coll` that exists in t's replica, or false. */
static bool
pick_doc(struct ck_work *w, kith_txn *t, int coll, struct doc *out)
{
    for (int tries = 0; tries < 8 && w->ndocs > 0; tries++) {
        struct doc *d = &w->docs[ck_below(&w->rng, w->ndocs)];
        const char *name = w->schema[d->coll].name;
        if (coll >= 0 && d->coll != coll)
            continue;
        if (kith_doc_exists(t, name, &d->id) == 1) {
            *out = *d;
            return true;
        }
    }
    return false;
}

/* A value for field f of collection c; false if none can be made here (no document to
 * refer to). `buf` holds string bytes and must outlive the write. */
static bool
gen_value(struct ck_work *w, kith_txn *t, int c, const kith_field_def *f, char *buf, size_t cap,
          kith_value *v)
{
    static const char *const words[] = {"ada", "brook", "cedar", "dune", "ember"};
    memset(v, 0, sizeof(*v));
    v->type = f->type;
    long s = ++w->serial;
    (void)c;
    switch (f->type) {
    case KITH_TYPE_STRING:
        snprintf(buf, cap, "%s%ld@r%d.example.org", words[s % 5], s, (int)(s % 7));
        v->u.s.ptr = buf;
        v->u.s.len = strlen(buf);
        return true;
    case KITH_TYPE_DATE:
        snprintf(buf, cap, "%04d-%02d-%02d", 1950 + (int)ck_below(&w->rng, 60),
                 1 + (int)ck_below(&w->rng, 12), 1 + (int)ck_below(&w->rng, 28));
        v->u.s.ptr = buf;
        v->u.s.len = strlen(buf);
        return true;
    case KITH_TYPE_TIME:
    case KITH_TYPE_INT:
        v->u.i = 1700000000000LL + (int64_t)ck_below(&w->rng, 100000000000ull);
        return true;
    case KITH_TYPE_BOOL:
        v->u.b = ck_below(&w->rng, 2) == 1;
        return true;
    case KITH_TYPE_ENUM: {
        size_t k = 0;
        while (f->enum_values && f->enum_values[k])
            k++;
        if (k == 0)
            return false;
        const char *e = f->enum_values[ck_below(&w->rng, k)];
        v->u.s.ptr = e;
        v->u.s.len = strlen(e);
        return true;
    }
    case KITH_TYPE_REF: {
        struct doc d;
        int rc = f->ref_collection ? coll_index(w, f->ref_collection) : -1;
        if (rc < 0 || !pick_doc(w, t, rc, &d))
            return false;
        v->u.ref = d.id;
        return true;
    }
    default:
        return false;
    }
}

static bool
record_write(struct ck_work *w, int c, int f, const kith_docid *doc, const kith_value *v)
{
    if (!grow((void **)&w->w, &w->capw, w->nw + 1, sizeof(*w->w)))
        return false;
    struct wrec *r = &w->w[w->nw++];
    r->coll = c;
    r->field = f;
    r->doc = *doc;
    val_text(v, r->val);
    return true;
}

/* Set field f of doc (collection c) to a generated value (or clear it); records the write.
 * Returns 0, 1 when no value could be made (nothing written), or < 0. */
static int
write_field(struct ck_work *w, kith_txn *t, int c, const kith_docid *doc, int f)
{
    const kith_field_def *def = &w->schema[c].fields[f];
    char buf[VAL_CAP];
    kith_value v;
    int rc;

    if (def->type == KITH_TYPE_SET) {
        char el[KITH_DOCID_HEX + 1];
        struct doc d;
        if (def->ref_collection) {
            int rc2 = coll_index(w, def->ref_collection);
            if (rc2 < 0 || !pick_doc(w, t, rc2, &d))
                return 1;
            kith_docid_format(&d.id, el);
        } else {
            snprintf(el, sizeof(el), "tag%d", (int)ck_below(&w->rng, 6));
        }
        if (ck_below(&w->rng, 3) == 0)
            return kith_set_remove(t, w->schema[c].name, doc, def->name, el, strlen(el));
        w->expect_ops = true;
        return kith_set_add(t, w->schema[c].name, doc, def->name, el, strlen(el));
    }
    if (!def->required && ck_below(&w->rng, 10) == 0) {
        memset(&v, 0, sizeof(v));
        v.type = KITH_TYPE_NULL;
    } else if (!gen_value(w, t, c, def, buf, sizeof(buf), &v)) {
        return 1;
    }
    rc = kith_field_set(t, w->schema[c].name, doc, def->name, &v);
    if (rc < 0)
        return rc;
    w->expect_ops = true;
    return record_write(w, c, f, doc, &v) ? 0 : KITH_ENOMEM;
}

/* Create a document of collection c with its required fields and some others. */
static int
create_doc(struct ck_work *w, kith_txn *t, int c, kith_docid *out)
{
    const kith_collection_def *cd = &w->schema[c];
    int rc = kith_doc_create(t, cd->name, out);

    if (rc < 0)
        return rc;
    for (size_t f = 0; f < cd->nfields; f++) {
        if (!cd->fields[f].required && ck_below(&w->rng, 2) == 0)
            continue;
        rc = write_field(w, t, c, out, (int)f);
        if (rc < 0)
            return rc;
        if (rc == 1 && cd->fields[f].required)
            return 1; /* no document to refer to yet */
    }
    return 0;
}

/* A transaction given up: the document was not there (rc KITH_ENOTFOUND, or 1 when no
 * document to refer to was found), or the replica refused a call (counted apart, with the
 * first reason kept for the report: the workload means to write only valid values). */
static void
abandon(struct ck_work *w, int k, kith_txn **t, int rc, struct ck_result *res)
{
    if (rc < 0 && rc != KITH_ENOTFOUND && res->refused++ == 0)
        snprintf(res->refused_first, sizeof(res->refused_first), "r%d: %s: %s", k, kith_errname(rc),
                 kith_errmsg(w->reps[k]));
    kith_txn_abort(t);
    w->nw = w->pending_w;
    res->skipped++;
}

/* Commit t and record it when acknowledged. Returns true when acknowledged. */
static bool
commit(struct ck_work *w, int k, kith_txn **t, struct ck_result *res)
{
    int rc = kith_txn_commit(t);
    if (rc < 0) {
        abandon(w, k, t, rc, res); /* *t is NULL already: only the counting */
        return false;
    }
    uint64_t seq = own_seq(w->reps[k]);
    res->commits++;
    res->writes += (long)(w->nw - w->pending_w);
    if (seq > w->seq[k] && grow((void **)&w->acks, &w->capacks, w->nacks + 1, sizeof(*w->acks))) {
        struct ack *a = &w->acks[w->nacks++];
        a->rep = k;
        a->lo = w->seq[k] + 1;
        a->hi = seq;
        a->w0 = w->pending_w;
        a->nw = w->nw - w->pending_w;
        w->seq[k] = seq;
    } else {
        if (w->expect_ops && w->lost++ == 0)
            snprintf(w->lost_first, sizeof(w->lost_first),
                     "r%d acknowledged a commit (%zu field writes among its ops), yet its seq "
                     "stayed at %llu: the commit is in no log",
                     k, w->nw - w->pending_w, (unsigned long long)w->seq[k]);
        w->nw = w->pending_w; /* wrote nothing (a remove of an absent element) */
    }
    w->pending_w = w->nw;
    return true;
}

/* One transaction at replica k: create, edit, delete. Returns the document it touched (for
 * a conflicting second write), or false. */
static bool
one_txn(struct ck_work *w, int k, int kind, struct doc *touched, int field, struct ck_result *res)
{
    kith_txn *t;
    int rc;

    res->txns++;
    if (kith_txn_begin(w->reps[k], KITH_TXN_WRITE, &t) < 0) {
        res->skipped++;
        return false;
    }
    w->pending_w = w->nw;
    w->expect_ops = kind != 1; /* a create or a delete always writes */
    if (kind == 0) {           /* create */
        int c = (int)ck_below(&w->rng, 10);
        c = c < 5 ? 0 : c < 8 ? 1 : 2;
        if (c >= (int)w->ncoll)
            c = 0;
        struct doc d = {c, {{0}}};
        rc = create_doc(w, t, c, &d.id);
        if (rc != 0) {
            abandon(w, k, &t, rc, res);
            return false;
        }
        if (!commit(w, k, &t, res))
            return false;
        if (grow((void **)&w->docs, &w->capdocs, w->ndocs + 1, sizeof(*w->docs)))
            w->docs[w->ndocs++] = d;
        *touched = d;
        return true;
    }
    struct doc d;
    if (touched->coll >= 0) {
        d = *touched;
        if (kith_doc_exists(t, w->schema[d.coll].name, &d.id) != 1) {
            abandon(w, k, &t, KITH_ENOTFOUND, res);
            return false;
        }
    } else if (!pick_doc(w, t, -1, &d)) {
        abandon(w, k, &t, KITH_ENOTFOUND, res);
        return false;
    }
    if (kind == 2) { /* delete */
        rc = kith_doc_delete(t, w->schema[d.coll].name, &d.id);
    } else { /* edit one to three fields */
        const kith_collection_def *cd = &w->schema[d.coll];
        int nf = field >= 0 ? 1 : 1 + (int)ck_below(&w->rng, 3);
        rc = 0;
        for (int i = 0; i < nf && rc >= 0; i++) {
            int f = field >= 0 ? field : (int)ck_below(&w->rng, cd->nfields);
            rc = write_field(w, t, d.coll, &d.id, f);
        }
    }
    if (rc < 0) {
        abandon(w, k, &t, rc, res);
        return false;
    }
    *touched = d;
    return commit(w, k, &t, res);
}

void
ck_work_step(struct ck_work *w, struct ck_result *res)
{
    /* A step's draws depend on the seed and the step number alone: how many draws an earlier
     * step used (it retries while documents have not arrived, which is timing) cannot shift
     * the later ones, so a replay with the same seed makes the same choices. */
    w->rng = w->seed + ++w->steps * 0xd1b54a32d192ed03ull;
    (void)ck_next(&w->rng);
    int k = (int)ck_below(&w->rng, (uint64_t)w->n);
    unsigned x = (unsigned)ck_below(&w->rng, 100);
    struct doc d = {-1, {{0}}};

    if (w->busy & (1u << k))
        return;
    if (w->ndocs < 4 || x < 25) {
        (void)one_txn(w, k, 0, &d, -1, res);
    } else if (x < 30) {
        (void)one_txn(w, k, 2, &d, -1, res);
    } else if (x < 45 && w->n > 1) {
        /* the same field written at two replicas back to back: concurrent, most likely */
        int k2 = (int)ck_below(&w->rng, (uint64_t)w->n - 1);
        k2 += k2 >= k;
        kith_txn *t;
        if (kith_txn_begin(w->reps[k], KITH_TXN_READ, &t) < 0 || !pick_doc(w, t, -1, &d)) {
            kith_txn_abort(&t);
            return;
        }
        kith_txn_abort(&t);
        const kith_collection_def *cd = &w->schema[d.coll];
        int f = (int)ck_below(&w->rng, cd->nfields);
        if (cd->fields[f].type == KITH_TYPE_SET)
            f = 0;
        struct doc d2 = d;
        if (one_txn(w, k, 1, &d, f, res) && !(w->busy & (1u << k2)) &&
            one_txn(w, k2, 1, &d2, f, res))
            res->conflicts++;
    } else {
        (void)one_txn(w, k, 1, &d, -1, res);
    }
}

/* ---- acknowledgements from a writer process --------------------------------------------- */

void
ck_work_busy(struct ck_work *w, int k, bool busy)
{
    if (busy)
        w->busy |= 1u << k;
    else
        w->busy &= ~(1u << k);
    w->seq[k] = own_seq(w->reps[k]); /* the other process wrote this origin meanwhile */
}

size_t
ck_work_nacks(const struct ck_work *w)
{
    return w->nacks;
}

/* "A<TAB>lo<TAB>hi" then "<TAB>coll<TAB>field<TAB>doc<TAB>value" per write, and a newline. */
int
ck_work_ack_text(const struct ck_work *w, size_t i, char *buf, size_t cap)
{
    const struct ack *a = &w->acks[i];
    char hex[KITH_DOCID_HEX + 1];
    int len =
        snprintf(buf, cap, "A\t%llu\t%llu", (unsigned long long)a->lo, (unsigned long long)a->hi);
    for (size_t j = 0; j < a->nw && len > 0 && (size_t)len < cap; j++) {
        const struct wrec *r = &w->w[a->w0 + j];
        kith_docid_format(&r->doc, hex);
        len += snprintf(buf + len, cap - (size_t)len, "\t%d\t%d\t%s\t%s", r->coll, r->field, hex,
                        r->val);
    }
    if (len < 0 || (size_t)len + 2 > cap)
        return KITH_ETOOSMALL;
    buf[len++] = '\n';
    buf[len] = 0;
    return len;
}

int
ck_work_import(struct ck_work *w, int k, char *line)
{
    char *save, *tok = strtok_r(line, "\t", &save);
    struct ack a = {k, 0, 0, w->nw, 0};

    if (tok == NULL || strcmp(tok, "A") != 0)
        return KITH_EMALFORMED;
    char *lo = strtok_r(NULL, "\t", &save), *hi = strtok_r(NULL, "\t", &save);
    if (lo == NULL || hi == NULL)
        return KITH_EMALFORMED;
    a.lo = strtoull(lo, NULL, 10);
    a.hi = strtoull(hi, NULL, 10);
    for (;;) {
        char *c = strtok_r(NULL, "\t", &save), *f = strtok_r(NULL, "\t", &save);
        char *d = strtok_r(NULL, "\t", &save), *v = strtok_r(NULL, "\t", &save);
        if (c == NULL)
            break;
        if (f == NULL || d == NULL || v == NULL ||
            !grow((void **)&w->w, &w->capw, w->nw + 1, sizeof(*w->w)))
            return KITH_EMALFORMED;
        struct wrec *r = &w->w[w->nw];
        r->coll = (int)strtol(c, NULL, 10);
        r->field = (int)strtol(f, NULL, 10);
        if (r->coll < 0 || (size_t)r->coll >= w->ncoll || r->field < 0 ||
            (size_t)r->field >= w->schema[r->coll].nfields || kith_docid_parse(d, &r->doc) < 0)
            return KITH_EMALFORMED;
        snprintf(r->val, sizeof(r->val), "%s", v);
        w->nw++;
        a.nw++;
    }
    if (!grow((void **)&w->acks, &w->capacks, w->nacks + 1, sizeof(*w->acks)))
        return KITH_ENOMEM;
    w->acks[w->nacks++] = a;
    w->pending_w = w->nw;
    return 0;
}

/* ---- the end checks ------------------------------------------------------------------- */

struct lent {
    uint64_t origin, seq, hlc;
    int kind, coll, field;
    kith_docid doc;
    char val[VAL_CAP];
};

static int
lent_by_dot(const void *a, const void *b)
{
    const struct lent *x = a, *y = b;
    if (x->origin != y->origin)
        return x->origin < y->origin ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int
lent_by_register(const void *a, const void *b)
{
    const struct lent *x = *(const struct lent *const *)a, *y = *(const struct lent *const *)b;
    int c;
    if (x->coll != y->coll)
        return x->coll - y->coll;
    if ((c = memcmp(x->doc.bytes, y->doc.bytes, KITH_DOCID_BYTES)) != 0)
        return c;
    if (x->field != y->field)
        return x->field - y->field;
    /* the winner is the greatest (hlc, origin, seq): spec/decisions.md D-4 */
    if (x->hlc != y->hlc)
        return x->hlc < y->hlc ? -1 : 1;
    if (x->origin != y->origin)
        return x->origin < y->origin ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Every op of r's log, copied. */
static int
read_log(struct ck_work *w, kith_replica *r, struct lent **out, size_t *n)
{
    kith_txn *t;
    kith_iter *it;
    kith_log_entry e;
    size_t cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = kith_txn_begin(r, KITH_TXN_READ, &t)) < 0)
        return rc;
    if ((rc = kith_iter_log(t, 0, &it)) < 0)
        goto out_abort;
    while ((rc = kith_iter_next_log(it, &e)) == 0) {
        if (!grow((void **)out, &cap, *n + 1, sizeof(**out))) {
            rc = KITH_ENOMEM;
            break;
        }
        struct lent *l = &(*out)[(*n)++];
        l->origin = e.dot.origin;
        l->seq = e.dot.seq;
        l->hlc = e.hlc;
        l->kind = (int)e.kind;
        l->coll = coll_index(w, e.collection);
        l->field = e.field && l->coll >= 0 ? field_index(w, l->coll, e.field) : -1;
        l->doc = e.doc;
        val_text(&e.value, l->val);
    }
    if (rc == KITH_ENOTFOUND)
        rc = 0;
    kith_iter_close(it);
out_abort:
    kith_txn_abort(&t);
    return rc;
}

static uint64_t
vv_seq(const kith_vv *vv, uint64_t origin)
{
    for (size_t i = 0; i < vv->len; i++)
        if (vv->entries[i].origin == origin)
            return vv->entries[i].seq;
    return 0;
}

static bool fail(struct ck_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool
fail(struct ck_result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->failure, sizeof(res->failure), fmt, ap);
    va_end(ap);
    return false;
}

static bool
check_acks(struct ck_work *w, const struct lent *log, size_t nlog, struct ck_result *res)
{
    kith_vv vv[CK_MAX_REPLICAS];
    bool ok = true;
    char hex[KITH_DOCID_HEX + 1];

    for (int k = 0; k < w->n; k++)
        if (kith_vv_get(w->reps[k], &vv[k]) < 0)
            vv[k].len = 0, vv[k].entries = NULL;
    for (size_t a = 0; a < w->nacks && ok; a++) {
        const struct ack *ac = &w->acks[a];
        uint64_t origin = kith_replica_id(w->reps[ac->rep]);
        for (int k = 0; k < w->n && ok; k++)
            if (vv_seq(&vv[k], origin) < ac->hi)
                ok = fail(res,
                          "acknowledged commit r%d:%llu..%llu is not in replica r%d (it holds "
                          "r%d up to %llu)",
                          ac->rep, (unsigned long long)ac->lo, (unsigned long long)ac->hi, k,
                          ac->rep, (unsigned long long)vv_seq(&vv[k], origin));
        struct lent key = {.origin = origin, .seq = ac->lo};
        const struct lent *first = bsearch(&key, log, nlog, sizeof(*log), lent_by_dot);
        if (ok && first == NULL)
            ok = fail(res, "acknowledged commit r%d:%llu..%llu is not in the log", ac->rep,
                      (unsigned long long)ac->lo, (unsigned long long)ac->hi);
        for (size_t i = 0; i < ac->nw && ok; i++) {
            const struct wrec *wr = &w->w[ac->w0 + i];
            bool found = false;
            for (const struct lent *l = first;
                 l < log + nlog && l->origin == origin && l->seq <= ac->hi && !found; l++)
                found = l->kind == KITH_OP_FIELD_SET && l->coll == wr->coll &&
                        l->field == wr->field && memcmp(&l->doc, &wr->doc, sizeof(l->doc)) == 0 &&
                        strcmp(l->val, wr->val) == 0;
            if (!found) {
                kith_docid_format(&wr->doc, hex);
                ok = fail(res,
                          "acknowledged write %s.%s of %s = %s (commit r%d:%llu..%llu) is not "
                          "in the log",
                          w->schema[wr->coll].name, w->schema[wr->coll].fields[wr->field].name, hex,
                          wr->val, ac->rep, (unsigned long long)ac->lo, (unsigned long long)ac->hi);
            }
            if (ok)
                res->acked_checked++;
        }
    }
    for (int k = 0; k < w->n; k++)
        kith_vv_free(&vv[k]);
    return ok;
}

/* Every register of every replica against the LWW winner recomputed from the log. */
static bool
check_registers(struct ck_work *w, const struct lent *log, size_t nlog, struct ck_result *res)
{
    const struct lent **sets = malloc((nlog + 1) * sizeof(*sets));
    size_t ns = 0;
    bool ok = true;
    char hex[KITH_DOCID_HEX + 1], got[VAL_CAP];

    if (sets == NULL)
        return fail(res, "out of memory");
    for (size_t i = 0; i < nlog; i++)
        if (log[i].kind == KITH_OP_FIELD_SET && log[i].coll >= 0 && log[i].field >= 0)
            sets[ns++] = &log[i];
    qsort(sets, ns, sizeof(*sets), lent_by_register);
    /* one replica at a time: a thread has at most one transaction open */
    for (int k = 0; k < w->n && ok; k++) {
        kith_txn *t;
        if (kith_txn_begin(w->reps[k], KITH_TXN_READ, &t) < 0) {
            ok = fail(res, "cannot read replica r%d: %s", k, kith_errmsg(w->reps[k]));
            break;
        }
        for (size_t i = 0; i < ns && ok; i++) {
            const struct lent *x = sets[i];
            if (i + 1 < ns && x->coll == sets[i + 1]->coll && x->field == sets[i + 1]->field &&
                memcmp(&x->doc, &sets[i + 1]->doc, sizeof(x->doc)) == 0)
                continue; /* not the last, hence not the greatest (hlc, origin, seq) */
            const char *cn = w->schema[x->coll].name;
            const char *fn = w->schema[x->coll].fields[x->field].name;
            kith_value v;
            if (kith_doc_exists(t, cn, &x->doc) != 1 || kith_field_get(t, cn, &x->doc, fn, &v) < 0)
                continue; /* deleted: its registers are not visible */
            val_text(&v, got);
            if (strcmp(got, x->val) != 0) {
                kith_docid_format(&x->doc, hex);
                ok = fail(res,
                          "replica r%d: %s.%s of %s holds %s; the LWW winner in the log is %s "
                          "(hlc %llu, origin %016llx)",
                          k, cn, fn, hex, got, x->val, (unsigned long long)x->hlc,
                          (unsigned long long)x->origin);
            } else if (k == 0) {
                res->fields_checked++;
            }
        }
        kith_txn_abort(&t);
    }
    free(sets);
    return ok;
}

bool
ck_work_ok(struct ck_work *w, struct ck_result *res)
{
    if (w->lost > 0)
        return fail(res, "%ld acknowledged commits lost; the first: %s", w->lost, w->lost_first);
    return true;
}

bool
ck_work_check(struct ck_work *w, struct ck_result *res)
{
    struct lent *log;
    size_t nlog;
    int rc;

    if (!ck_work_ok(w, res))
        return false;
    rc = read_log(w, w->reps[0], &log, &nlog);
    if (rc < 0)
        return fail(res, "cannot read the log of r0: %s", kith_strerror(rc));
    qsort(log, nlog, sizeof(*log), lent_by_dot);
    bool ok = check_acks(w, log, nlog, res) && check_registers(w, log, nlog, res);
    free(log);
    return ok;
}
