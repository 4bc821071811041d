/*
 * mem_local.c — local commits of the in-memory replica (mem.h): writes made the way a
 * replica's write transaction makes them. Each write reads what its op must name from the
 * current state (the replaced dot of a register, the observed dots of an element or of a
 * membership), takes the next seq, applies at once through the same path as received ops
 * (kith__memrep_apply_op), and is recorded, with copies of its value and observed dots, in
 * the commit being built; kith__memrep_commit hands out a self-contained copy of it.
 */
#include "mem_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- local commits -------------------------------------------------------------------- */

int
kith__memrep_begin(struct kith__memrep *m, uint64_t wall_ms)
{
    if (!m || m->building)
        return KITH_EINVAL;
    m->b_hlc = kith__hlc_tick(m->hlc, wall_ms);
    m->hlc = m->b_hlc;
    m->b_first = kith__vv_get(&m->vv, m->self) + 1;
    m->bn = 0;
    m->bbytes.len = 0;
    m->bdots.len = 0;
    m->building = true;
    return 0;
}

/* Make room in the builder for one op with n payload bytes and nobs observed dots. */
static int
local_reserve(struct kith__memrep *m, size_t n, size_t nobs)
{
    if (m->bn == m->bcap) {
        size_t cap = m->bcap ? m->bcap * 2 : 16;
        struct kith__op *o = realloc(m->bops, cap * sizeof *o);
        if (!o)
            return KITH_ENOMEM;
        m->bops = o;
        struct bfix *f = realloc(m->bfix, cap * sizeof *f);
        if (!f)
            return KITH_ENOMEM;
        m->bfix = f;
        m->bcap = cap;
    }
    int rc = kith__memrep_pool_reserve(&m->bbytes, 1, n);
    if (rc == 0)
        rc = kith__memrep_pool_reserve(&m->bdots, sizeof(kith_dot), nobs);
    return rc;
}

/*
 * Record and apply a local op. Its observed dots (nobs of them) are already at the tail of
 * m->bdots; local_reserve(m, payload, nobs) has succeeded. The op's value is copied into
 * the builder, so the caller's memory may go away afterwards.
 */
static int
local_op(struct kith__memrep *m, struct kith__op *op, size_t nobs)
{
    const uint8_t *p;
    size_t n;
    struct bfix fix = {(uint32_t)m->bbytes.len, (uint32_t)m->bdots.len};
    if (value_payload(&op->value, &p, &n) && op->value.type != KITH_TYPE_REF) {
        if (n)
            memcpy(m->bbytes.data + fix.voff, p, n);
        op->value.u.s.ptr = pool_str(&m->bbytes, fix.voff);
        m->bbytes.len += n;
    }
    op->observed = nobs ? (const kith_dot *)m->bdots.data + fix.ooff : NULL;
    op->nobserved = (uint32_t)nobs;
    m->bdots.len += nobs;
    kith_dot dot = {m->self, m->b_first + m->bn};
    int rc = kith__memrep_apply_op(m, op, dot, m->b_hlc);
    if (rc < 0)
        return rc;
    m->bops[m->bn] = *op;
    m->bfix[m->bn] = fix;
    m->bn++;
    m->ops_applied++;
    return 0;
}

static kith_dot *
local_obs(struct kith__memrep *m)
{
    return (kith_dot *)m->bdots.data + m->bdots.len;
}

int
kith__memrep_doc_create(struct kith__memrep *m, int coll, kith_dot *doc)
{
    if (!m || !m->building || !coll_ok(coll))
        return KITH_EINVAL;
    int rc = local_reserve(m, 0, 0);
    if (rc < 0)
        return rc;
    struct kith__op op;
    memset(&op, 0, sizeof op);
    op.kind = KITH_OP_DOC_ADD;
    op.coll = (uint8_t)coll;
    op.doc.origin = m->self;
    op.doc.seq = m->b_first + m->bn;
    op.value.type = KITH_TYPE_NULL;
    rc = local_op(m, &op, 0);
    if (rc == 0 && doc)
        *doc = op.doc;
    return rc;
}

int
kith__memrep_doc_delete(struct kith__memrep *m, int coll, kith_dot doc)
{
    if (!m || !m->building || !coll_ok(coll))
        return KITH_EINVAL;
    const struct memb *x = kith__memrep_memb_find(m, coll, doc);
    if (!x || x->dn == 0)
        return KITH_ENOTFOUND;
    int rc = local_reserve(m, 0, x->dn);
    if (rc < 0)
        return rc;
    size_t nobs = dots_copy(memb_dots(m, x), x->dn, local_obs(m), x->dn);
    struct kith__op op;
    memset(&op, 0, sizeof op);
    op.kind = KITH_OP_DOC_REMOVE;
    op.coll = (uint8_t)coll;
    op.doc = doc;
    op.value.type = KITH_TYPE_NULL;
    return local_op(m, &op, nobs);
}

int
kith__memrep_field_set(struct kith__memrep *m, int coll, kith_dot doc, int field,
                       const kith_value *v, char *why, size_t why_cap)
{
    if (!m || !m->building || !coll_ok(coll) || !v)
        return KITH_EINVAL;
    const kith_field_def *def = kith__schema_field_def(coll, field);
    if (!def || def->type == KITH_TYPE_SET)
        return KITH_EINVAL;
    int rc = kith__schema_check(coll, field, v, why, why_cap);
    if (rc < 0)
        return rc;
    if (!kith__memrep_doc_live(m, coll, doc))
        return KITH_ENOTFOUND;
    const uint8_t *p;
    size_t n;
    value_payload(v, &p, &n);
    rc = local_reserve(m, n, 0);
    if (rc < 0)
        return rc;
    struct kith__op op;
    memset(&op, 0, sizeof op);
    op.kind = KITH_OP_FIELD_SET;
    op.coll = (uint8_t)coll;
    op.field = (uint8_t)field;
    op.doc = doc;
    op.value = *v;
    const struct reg *r = kith__memrep_reg_find(m, coll, doc, field);
    if (r && r->w_s) {
        op.replaced.origin = r->w_o;
        op.replaced.seq = r->w_s;
    }
    return local_op(m, &op, 0);
}

static int
local_set_op(struct kith__memrep *m, uint8_t kind, int coll, kith_dot doc, int field,
             const char *elem, size_t len, char *why, size_t why_cap)
{
    if (!m || !m->building || !coll_ok(coll) || (len && !elem))
        return KITH_EINVAL;
    const kith_field_def *def = kith__schema_field_def(coll, field);
    if (!def || def->type != KITH_TYPE_SET)
        return KITH_EINVAL;
    int rc = kith__schema_check_elem(coll, field, elem, len, why, why_cap);
    if (rc < 0)
        return rc;
    if (!kith__memrep_doc_live(m, coll, doc))
        return KITH_ENOTFOUND;
    uint64_t h = bytes_hash(key_hash(coll, doc.origin, doc.seq, field), (const uint8_t *)elem, len);
    const struct elem *x = kith__memrep_elem_find(m, coll, doc, field, elem, len, h);
    size_t have = x ? x->dn : 0;
    if (kind == KITH_OP_SET_REMOVE && have == 0)
        return 0; /* nothing to remove: no op */
    rc = local_reserve(m, len, have);
    if (rc < 0)
        return rc;
    size_t nobs = have ? dots_copy(elem_dots(m, x), x->dn, local_obs(m), have) : 0;
    struct kith__op op;
    memset(&op, 0, sizeof op);
    op.kind = kind;
    op.coll = (uint8_t)coll;
    op.field = (uint8_t)field;
    op.doc = doc;
    op.value.type = KITH_TYPE_STRING;
    op.value.u.s.ptr = elem;
    op.value.u.s.len = len;
    return local_op(m, &op, nobs);
}

int
kith__memrep_set_add(struct kith__memrep *m, int coll, kith_dot doc, int field, const char *elem,
                     size_t len, char *why, size_t why_cap)
{
    return local_set_op(m, KITH_OP_SET_ADD, coll, doc, field, elem, len, why, why_cap);
}

int
kith__memrep_set_remove(struct kith__memrep *m, int coll, kith_dot doc, int field, const char *elem,
                        size_t len, char *why, size_t why_cap)
{
    return local_set_op(m, KITH_OP_SET_REMOVE, coll, doc, field, elem, len, why, why_cap);
}

int
kith__memrep_commit(struct kith__memrep *m, struct kith__commit **out)
{
    if (!m || !m->building || !out)
        return KITH_EINVAL;
    *out = NULL;
    if (m->bn == 0) {
        m->building = false;
        return 0;
    }
    for (size_t i = 0; i < m->bn; i++) { /* the builder's pools may have moved */
        struct kith__op *op = &m->bops[i];
        if (op->value.type != KITH_TYPE_REF && op->value.type != KITH_TYPE_NULL &&
            op->value.type != KITH_TYPE_INT && op->value.type != KITH_TYPE_TIME &&
            op->value.type != KITH_TYPE_BOOL)
            op->value.u.s.ptr = pool_str(&m->bbytes, m->bfix[i].voff);
        op->observed = op->nobserved ? (const kith_dot *)m->bdots.data + m->bfix[i].ooff : NULL;
    }
    struct kith__commit c = {.origin = m->self,
                             .first_seq = m->b_first,
                             .hlc = m->b_hlc,
                             .nops = (uint32_t)m->bn,
                             .ops = m->bops};
    int rc = kith__memrep_commit_copy(&c, out);
    if (rc < 0)
        return rc;
    rc = kith__vv_raise(&m->vv, m->self, m->b_first + m->bn - 1);
    if (rc < 0) {
        kith__memrep_commit_free(*out);
        *out = NULL;
        return rc;
    }
    m->building = false;
    return 0;
}

#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

int
kith__memrep_commit_copy(const struct kith__commit *c, struct kith__commit **out)
{
    *out = NULL;
    if (!c || (c->nops && !c->ops) || c->nops > KITH__MAX_COMMIT_OPS)
        return KITH_EINVAL;
    size_t nobs = 0, nbytes = 0;
    for (uint32_t i = 0; i < c->nops; i++) {
        const uint8_t *p;
        size_t n;
        if (c->ops[i].nobserved > KITH__MAX_OBSERVED)
            return KITH_EINVAL;
        nobs += c->ops[i].nobserved;
        if (value_payload(&c->ops[i].value, &p, &n) && c->ops[i].value.type != KITH_TYPE_REF) {
            if (n > KITH__MAX_VALUE_BYTES)
                return KITH_EINVAL;
            nbytes += n;
        }
    }
    size_t size = ALIGN8(sizeof(struct kith__commit)) + c->nops * sizeof(struct kith__op) +
                  nobs * sizeof(kith_dot) + nbytes;
    uint8_t *mem = malloc(size);
    if (!mem)
        return KITH_ENOMEM;
    struct kith__commit *copy = (struct kith__commit *)mem;
    struct kith__op *ops = (struct kith__op *)(mem + ALIGN8(sizeof *copy));
    kith_dot *dots = (kith_dot *)(ops + c->nops);
    uint8_t *bytes = (uint8_t *)(dots + nobs);
    *copy = *c;
    copy->ops = c->nops ? ops : NULL;
    for (uint32_t i = 0; i < c->nops; i++) {
        const struct kith__op *src = &c->ops[i];
        const uint8_t *p;
        size_t n;
        ops[i] = *src;
        if (src->nobserved) {
            memcpy(dots, src->observed, src->nobserved * sizeof *dots);
            ops[i].observed = dots;
            dots += src->nobserved;
        } else {
            ops[i].observed = NULL;
        }
        if (value_payload(&src->value, &p, &n) && src->value.type != KITH_TYPE_REF) {
            if (n)
                memcpy(bytes, p, n);
            ops[i].value.u.s.ptr = (const char *)bytes;
            bytes += n;
        }
    }
    *out = copy;
    return 0;
}

void
kith__memrep_commit_free(struct kith__commit *c)
{
    free(c);
}
