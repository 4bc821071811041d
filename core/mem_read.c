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
kith__memrep_doc_live(const struct kith__memrep *m, int coll, kith_dot doc)
{
    const struct memb *x = coll_ok(coll) ? kith__memrep_memb_find(m, coll, doc) : NULL;
    return x && x->dn > 0;
}

size_t
kith__memrep_doc_dots(const struct kith__memrep *m, int coll, kith_dot doc, kith_dot *out,
                      size_t cap)
{
    const struct memb *x = coll_ok(coll) ? kith__memrep_memb_find(m, coll, doc) : NULL;
    if (!x)
        return 0;
    return dots_copy(x->dn ? memb_dots(m, x) : no_dots, x->dn, out, out ? cap : 0);
}

int
kith__memrep_field_get(const struct kith__memrep *m, int coll, kith_dot doc, int field,
                       kith_value *out, uint64_t *hlc, kith_dot *dot)
{
    const struct reg *r = coll_ok(coll) ? kith__memrep_reg_find(m, coll, doc, field) : NULL;
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
kith__memrep_set_dots(const struct kith__memrep *m, int coll, kith_dot doc, int field,
                      const char *elem, size_t len, kith_dot *out, size_t cap)
{
    if (!coll_ok(coll))
        return 0;
    uint64_t h = bytes_hash(key_hash(coll, doc.origin, doc.seq, field), (const uint8_t *)elem, len);
    const struct elem *x = kith__memrep_elem_find(m, coll, doc, field, elem, len, h);
    if (!x)
        return 0;
    return dots_copy(elem_dots(m, x), x->dn, out, out ? cap : 0);
}

bool
kith__memrep_set_has(const struct kith__memrep *m, int coll, kith_dot doc, int field,
                     const char *elem, size_t len)
{
    return kith__memrep_set_dots(m, coll, doc, field, elem, len, NULL, 0) > 0;
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
    *out = x->c;
    if (out->winner.type != KITH_TYPE_REF)
        out->winner.u.s.ptr = pool_str(&m->cbytes, x->woff);
    if (out->loser.type != KITH_TYPE_REF)
        out->loser.u.s.ptr = pool_str(&m->cbytes, x->loff);
    if (out->winner.type == KITH_TYPE_INT || out->winner.type == KITH_TYPE_TIME ||
        out->winner.type == KITH_TYPE_BOOL || out->winner.type == KITH_TYPE_NULL)
        out->winner.u = x->c.winner.u;
    if (out->loser.type == KITH_TYPE_INT || out->loser.type == KITH_TYPE_TIME ||
        out->loser.type == KITH_TYPE_BOOL || out->loser.type == KITH_TYPE_NULL)
        out->loser.u = x->c.loser.u;
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
put_key(struct text *t, int coll, uint64_t o, uint64_t s)
{
    putf(t, "%d %016llx%016llx", coll, (unsigned long long)o, (unsigned long long)s);
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
 * Lines, each "\n"-terminated, sorted bytewise (documents by collection then id; within a
 * document D before E before F, fields by number, elements by bytes):
 *   <coll> <docid> D[ <dots>]                           membership (full: only non-empty)
 *   <coll> <docid> E <ff> <element hex>[ <dots>]        a live element
 *   <coll> <docid> F <ff> <value>[ @<hlc hex> <origin hex>:<seq>]   a register
 * Dots are "<origin hex>:<seq>" joined by ','. The bracketed parts are left out with
 * KITH__MEMREP_DUMP_LIVE, which also leaves out documents that are not live and their content.
 */
int
kith__memrep_dump(const struct kith__memrep *m, unsigned flags, struct kith__wbuf *out)
{
    bool live_only = flags & KITH__MEMREP_DUMP_LIVE;
    struct kith__wbuf buf = {0};
    struct text t = {&buf, 0};
    size_t nlines = 0;
    size_t *starts = malloc((m->nregs + m->nelems + m->nmembs + 1) * sizeof *starts);
    struct line *lines = NULL;
    int rc = KITH_ENOMEM;
    if (!starts)
        goto out_free;
    for (size_t i = 0; i < m->capmembs; i++) {
        const struct memb *x = &m->membs[i];
        if (!x->used || x->dn == 0)
            continue;
        starts[nlines++] = buf.len;
        put_key(&t, x->coll, x->doc_o, x->doc_s);
        put(&t, " D", 2);
        if (!live_only)
            put_dots(&t, memb_dots(m, x), x->dn);
        put(&t, "\n", 1);
    }
    for (size_t i = 0; i < m->capelems; i++) {
        const struct elem *x = &m->elems[i];
        kith_dot doc = {x->doc_o, x->doc_s};
        if (!x->used || x->dn == 0 || (live_only && !kith__memrep_doc_live(m, x->coll, doc)))
            continue;
        starts[nlines++] = buf.len;
        put_key(&t, x->coll, x->doc_o, x->doc_s);
        putf(&t, " E %02d ", x->field);
        put_hex(&t, (const uint8_t *)pool_str(&m->bytes, x->eoff), x->elen);
        if (!live_only)
            put_dots(&t, elem_dots(m, x), x->dn);
        put(&t, "\n", 1);
    }
    for (size_t i = 0; i < m->capregs; i++) {
        const struct reg *x = &m->regs[i];
        kith_dot doc = {x->doc_o, x->doc_s};
        if (!x->used || x->w_s == 0 || (live_only && !kith__memrep_doc_live(m, x->coll, doc)))
            continue;
        starts[nlines++] = buf.len;
        put_key(&t, x->coll, x->doc_o, x->doc_s);
        putf(&t, " F %02d ", x->field);
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
