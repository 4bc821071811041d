/*
 * mem_read.c — reading the in-memory replica (mem.h): documents, registers, set elements,
 * conflict records, and the canonical dump (spec/data-model.md "Canonical dump"), sorted
 * text in which two states holding the same ops give the same bytes.
 */
#include "mem_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reading -------------------------------------------------------------------------- */

uint64_t
kith__memrep_self(const struct kith__memrep *m)
{
    return m->self;
}

const kith_vv *
kith__memrep_vv(const struct kith__memrep *m)
{
    return &m->vv;
}

uint64_t
kith__memrep_hlc(const struct kith__memrep *m)
{
    return m->hlc;
}

uint64_t
kith__memrep_ops_applied(const struct kith__memrep *m)
{
    return m->ops_applied;
}

bool
kith__memrep_doc_live(const struct kith__memrep *m, const char *coll, kith_dot doc)
{
    int c;
    return kith__memrep_names_find(m, coll, NULL, &c, NULL) == 0 && memb_live(m, c, doc);
}

/* The units of a dset (NULL when there is none), for the reads below. */
static const struct dset *
dset_named(const struct kith__memrep *m, int kind, const char *coll, kith_dot doc,
           const char *field)
{
    int c, f = 0;
    if (kith__memrep_names_find(m, coll, field, &c, &f) < 0)
        return NULL;
    return dset_find(m, kind, c, doc, f);
}

size_t
kith__memrep_doc_dots(const struct kith__memrep *m, const char *coll, kith_dot doc, kith_dot *out,
                      size_t cap)
{
    const struct dset *x = dset_named(m, DS_MEMB, coll, doc, NULL);
    if (!x || x->dn == 0)
        return 0;
    return dots_copy(dset_units(m, x), x->dn, out, out ? cap : 0);
}

int
kith__memrep_field_get(const struct kith__memrep *m, const char *coll, kith_dot doc,
                       const char *field, kith_value *out, uint64_t *hlc, kith_dot *dot)
{
    int c, f;
    if (!field || kith__memrep_names_find(m, coll, field, &c, &f) < 0)
        return KITH_ENOTFOUND;
    const struct reg *r = reg_find(m, c, doc, f);
    if (!r || r->w_s == 0)
        return KITH_ENOTFOUND;
    if (out)
        *out = reg_value(m, r);
    if (hlc)
        *hlc = r->hlc;
    if (dot) {
        dot->origin = r->w_o;
        dot->seq = r->w_s;
    }
    return 0;
}

size_t
kith__memrep_set_dots(const struct kith__memrep *m, const char *coll, kith_dot doc,
                      const char *field, const char *elem, size_t len, kith_dot *out, size_t cap)
{
    int c, f;
    if (!field || kith__memrep_names_find(m, coll, field, &c, &f) < 0 || (len && !elem))
        return 0;
    uint64_t h = elem_hash(c, doc, f, elem, len);
    const struct elem *x = elem_find(m, c, doc, f, elem, len, h);
    if (!x)
        return 0;
    return dots_copy(elem_dots(m, x), x->dn, out, out ? cap : 0);
}

bool
kith__memrep_set_has(const struct kith__memrep *m, const char *coll, kith_dot doc,
                     const char *field, const char *elem, size_t len)
{
    return kith__memrep_set_dots(m, coll, doc, field, elem, len, NULL, 0) > 0;
}

/* The sum of a counter's per-origin totals, modulo 2^64. */
static int64_t
counter_sum(const struct kith__memrep *m, const struct dset *x)
{
    const uint8_t *p = dset_units(m, x);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < x->dn; i++)
        sum += load_be64(p + (size_t)i * KITH__DOT_BYTES + 8);
    return u64_as_i64(sum);
}

int
kith__memrep_counter_get(const struct kith__memrep *m, const char *coll, kith_dot doc,
                         const char *field, int64_t *out)
{
    const struct dset *x = field ? dset_named(m, DS_COUNTER, coll, doc, field) : NULL;
    if (!x || x->dn == 0)
        return KITH_ENOTFOUND;
    if (out)
        *out = counter_sum(m, x);
    return 0;
}

size_t
kith__memrep_flag_dots(const struct kith__memrep *m, const char *coll, kith_dot doc,
                       const char *field, kith_dot *out, size_t cap)
{
    const struct dset *x = field ? dset_named(m, DS_FLAG, coll, doc, field) : NULL;
    if (!x || x->dn == 0)
        return 0;
    return dots_copy(dset_units(m, x), x->dn, out, out ? cap : 0);
}

bool
kith__memrep_flag_get(const struct kith__memrep *m, const char *coll, kith_dot doc,
                      const char *field)
{
    return kith__memrep_flag_dots(m, coll, doc, field, NULL, 0) > 0;
}

/* The names of collection number c and its field number f. */
static const char *
coll_name(const struct kith__memrep *m, int c)
{
    return kith__memrep_name_str(m, m->colls[c].sid);
}

static const char *
field_name(const struct kith__memrep *m, int c, int f)
{
    return kith__memrep_name_str(m, m->colls[c].fsid[f]);
}

size_t
kith__memrep_nconflicts(const struct kith__memrep *m)
{
    return m->nconf;
}

int
kith__memrep_conflict_get(const struct kith__memrep *m, size_t i, struct kith__memrep_conflict *out)
{
    if (i >= m->nconf)
        return KITH_ENOTFOUND;
    const struct conflict *x = &m->conf[i];
    out->coll = coll_name(m, x->coll);
    out->field = x->field ? field_name(m, x->coll, x->field) : NULL;
    out->doc = x->doc;
    out->winner_dot = x->winner_dot;
    out->loser_dot = x->loser_dot;
    out->winner_hlc = x->winner_hlc;
    out->loser_hlc = x->loser_hlc;
    out->winner = x->winner;
    out->loser = x->loser;
    if (type_has_text(x->winner.type))
        out->winner.u.s.ptr = pool_str(&m->cbytes, x->woff);
    if (type_has_text(x->loser.type))
        out->loser.u.s.ptr = pool_str(&m->cbytes, x->loff);
    return 0;
}

/* ---- the canonical dump --------------------------------------------------------------- */

/* Text being built, with the first error kept. */
struct text {
    struct kith__wbuf *b;
    int err;
};

static void
put(struct text *t, const void *p, size_t n)
{
    if (t->err == 0 && kith__wbuf_put(t->b, p, n) < 0)
        t->err = KITH_ENOMEM;
}

static void putf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
putf(struct text *t, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        t->err = t->err ? t->err : KITH_EINVAL;
        return;
    }
    put(t, buf, (size_t)n);
}

static void
put_hex(struct text *t, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        char two[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
        put(t, two, 2);
    }
}

static void
put_str(struct text *t, const char *s)
{
    put(t, s, strlen(s));
}

/* "<coll> <docid> <letter> [<field>]" */
static void
put_key(struct text *t, const struct kith__memrep *m, int coll, uint64_t o, uint64_t s, char letter,
        int field)
{
    put_str(t, coll_name(m, coll));
    putf(t, " %016llx%016llx %c", (unsigned long long)o, (unsigned long long)s, letter);
    if (field) {
        put(t, " ", 1);
        put_str(t, field_name(m, coll, field));
    }
}

static void
put_dots(struct text *t, const uint8_t *base, uint32_t dn)
{
    for (uint32_t i = 0; i < dn; i++) {
        kith_dot d = kith__dot_get(base + (size_t)i * KITH__DOT_BYTES);
        putf(t, "%s%016llx:%llu", i ? "," : " ", (unsigned long long)d.origin,
             (unsigned long long)d.seq);
    }
}

static void
put_value(struct text *t, const kith_value *v)
{
    switch (v->type) {
    case KITH_TYPE_NULL:
        put(t, "null", 4);
        return;
    case KITH_TYPE_INT:
        putf(t, "i:%lld", (long long)v->u.i);
        return;
    case KITH_TYPE_TIME:
        putf(t, "t:%lld", (long long)v->u.i);
        return;
    case KITH_TYPE_BOOL:
        put(t, v->u.b ? "true" : "false", v->u.b ? 4 : 5);
        return;
    case KITH_TYPE_REF:
        put(t, "r:", 2);
        put_hex(t, v->u.ref.bytes, KITH_DOCID_BYTES);
        return;
    case KITH_TYPE_BYTES:
        put(t, "b:", 2);
        put_hex(t, (const uint8_t *)v->u.s.ptr, v->u.s.len);
        return;
    default:
        break;
    }
    put(t, v->type == KITH_TYPE_DATE ? "d\"" : v->type == KITH_TYPE_ENUM ? "e\"" : "s\"", 2);
    for (size_t i = 0; i < v->u.s.len; i++) {
        unsigned char c = (unsigned char)v->u.s.ptr[i];
        if (c == '"' || c == '\\')
            putf(t, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            putf(t, "\\x%02x", c);
        else
            put(t, &c, 1);
    }
    put(t, "\"", 1);
}

struct line {
    const uint8_t *p;
    size_t n;
};

static int
line_cmp(const void *a, const void *b)
{
    const struct line *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/*
 * Lines, each "\n"-terminated, sorted bytewise (documents by collection name then id; within
 * a document B, C, D, E, F, then fields by name, elements by bytes):
 *   <coll> <docid> B <field> true[ <dots>]              a set flag
 *   <coll> <docid> C <field> i:<sum>[ <origin hex>:<total>,...]   a counter
 *   <coll> <docid> D[ <dots>]                           membership (full: only non-empty)
 *   <coll> <docid> E <field> <element hex>[ <dots>]     a live element
 *   <coll> <docid> F <field> <value>[ @<hlc hex> <origin hex>:<seq>]   a register
 * Dots are "<origin hex>:<seq>" joined by ','; a counter's totals are signed decimal, one per
 * origin that added to it, by origin. The bracketed parts are left out with
 * KITH__MEMREP_DUMP_LIVE, which also leaves out documents that are not live and their content.
 * A cleared flag has no line: no dot of it is live, as for an element that was removed.
 */
int
kith__memrep_dump(const struct kith__memrep *m, unsigned flags, struct kith__wbuf *out)
{
    bool live_only = flags & KITH__MEMREP_DUMP_LIVE;
    struct kith__wbuf buf = {0};
    struct text t = {&buf, 0};
    size_t nlines = 0;
    size_t *starts = malloc((m->nregs + m->nelems + m->ndsets + 1) * sizeof *starts);
    struct line *lines = NULL;
    int rc = KITH_ENOMEM;
    if (!starts)
        goto out_free;
    for (size_t i = 0; i < m->capdsets; i++) {
        const struct dset *x = &m->dsets[i];
        kith_dot doc = {x->doc_o, x->doc_s};
        if (!x->used || x->dn == 0 || (live_only && !memb_live(m, x->coll, doc)))
            continue;
        starts[nlines++] = buf.len;
        const uint8_t *u = dset_units(m, x);
        switch (x->kind) {
        case DS_MEMB:
            put_key(&t, m, x->coll, x->doc_o, x->doc_s, 'D', 0);
            if (!live_only)
                put_dots(&t, u, x->dn);
            break;
        case DS_FLAG:
            put_key(&t, m, x->coll, x->doc_o, x->doc_s, 'B', x->field);
            put(&t, " true", 5);
            if (!live_only)
                put_dots(&t, u, x->dn);
            break;
        default:
            put_key(&t, m, x->coll, x->doc_o, x->doc_s, 'C', x->field);
            putf(&t, " i:%lld", (long long)counter_sum(m, x));
            for (uint32_t k = 0; k < x->dn && !live_only; k++)
                putf(&t, "%s%016llx:%lld", k ? "," : " ",
                     (unsigned long long)load_be64(u + (size_t)k * KITH__DOT_BYTES),
                     (long long)u64_as_i64(load_be64(u + (size_t)k * KITH__DOT_BYTES + 8)));
            break;
        }
        put(&t, "\n", 1);
    }
    for (size_t i = 0; i < m->capelems; i++) {
        const struct elem *x = &m->elems[i];
        kith_dot doc = {x->doc_o, x->doc_s};
        if (!x->used || x->dn == 0 || (live_only && !memb_live(m, x->coll, doc)))
            continue;
        starts[nlines++] = buf.len;
        put_key(&t, m, x->coll, x->doc_o, x->doc_s, 'E', x->field);
        put(&t, " ", 1);
        put_hex(&t, (const uint8_t *)pool_str(&m->bytes, x->eoff), x->elen);
        if (!live_only)
            put_dots(&t, elem_dots(m, x), x->dn);
        put(&t, "\n", 1);
    }
    for (size_t i = 0; i < m->capregs; i++) {
        const struct reg *x = &m->regs[i];
        kith_dot doc = {x->doc_o, x->doc_s};
        if (!x->used || x->w_s == 0 || (live_only && !memb_live(m, x->coll, doc)))
            continue;
        starts[nlines++] = buf.len;
        put_key(&t, m, x->coll, x->doc_o, x->doc_s, 'F', x->field);
        put(&t, " ", 1);
        kith_value v = reg_value(m, x);
        put_value(&t, &v);
        if (!live_only)
            putf(&t, " @%016llx %016llx:%llu", (unsigned long long)x->hlc,
                 (unsigned long long)x->w_o, (unsigned long long)x->w_s);
        put(&t, "\n", 1);
    }
    if (t.err) {
        rc = t.err;
        goto out_free;
    }
    lines = malloc((nlines + 1) * sizeof *lines);
    if (!lines)
        goto out_free;
    for (size_t i = 0; i < nlines; i++) {
        size_t end = i + 1 < nlines ? starts[i + 1] : buf.len;
        lines[i].p = buf.data + starts[i];
        lines[i].n = end - starts[i];
    }
    if (nlines > 0)
        qsort(lines, nlines, sizeof *lines, line_cmp);
    rc = kith__wbuf_reserve(out, buf.len);
    for (size_t i = 0; i < nlines && rc == 0; i++)
        rc = kith__wbuf_put(out, lines[i].p, lines[i].n);
out_free:
    free(lines);
    free(starts);
    kith__wbuf_free(&buf);
    return rc;
}
