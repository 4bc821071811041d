/*
 * mem_local.c — local commits of the in-memory replica (mem.h): writes made the way a
 * replica's write transaction makes them. Each write reads what its op must name from the
 * current state (the replaced dot of a register, the observed dots of an element, a flag or a
 * membership), takes the next seq, applies at once through the same path as received ops
 * (kith__memrep_apply_op), and is recorded, with copies of its value and observed dots, in
 * the commit being built, which names its collections and fields in a table of names (format
 * 2, spec/encoding.md "Commit"); kith__memrep_commit hands out a self-contained copy of it.
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
    m->bnn = 0;
    m->bbytes.len = 0;
    m->bdots.len = 0;
    m->building = true;
    return 0;
}

/* The names of collection c and field f (0: none) as name ids. */
static void
local_sids(const struct kith__memrep *m, int c, int f, uint32_t sid[2])
{
    sid[0] = m->colls[c].sid;
    sid[1] = f ? m->colls[c].fsid[f] : sid[0];
}

static bool
bname_has(const struct kith__memrep *m, uint32_t sid)
{
    for (size_t k = 0; k < m->bnn; k++)
        if (m->bnames[k] == sid)
            return true;
    return false;
}

/* The builder's index of name `sid`, appended when new (local_reserve made room). */
static uint16_t
bname_use(struct kith__memrep *m, uint32_t sid)
{
    size_t k = 0;
    while (k < m->bnn && m->bnames[k] != sid)
        k++;
    if (k == m->bnn)
        m->bnames[m->bnn++] = sid;
    return (uint16_t)k;
}

/* Make room in the builder for one op with n payload bytes and nobs observed dots, naming
 * collection c and field f (0: none). 0, KITH_ETOOBIG (the commit would name more than
 * KITH__MAX_COMMIT_NAMES names) or KITH_ENOMEM. */
static int
local_reserve(struct kith__memrep *m, size_t n, size_t nobs, int c, int f)
{
    uint32_t sid[2];
    local_sids(m, c, f, sid);
    size_t more = !bname_has(m, sid[0]) + (sid[1] != sid[0] && !bname_has(m, sid[1]));
    if (m->bnn + more > KITH__MAX_COMMIT_NAMES)
        return KITH_ETOOBIG;
    if (m->bnn + more > m->capbnames) {
        size_t cap = m->capbnames ? m->capbnames * 2 : 16;
        uint32_t *t = realloc(m->bnames, cap * sizeof *t);
        if (!t)
            return KITH_ENOMEM;
        m->bnames = t;
        struct kith__name *v = realloc(m->bnamev, cap * sizeof *v);
        if (!v)
            return KITH_ENOMEM;
        m->bnamev = v;
        m->capbnames = cap;
    }
    if (m->bn == m->bcap) {
        size_t cap = m->bcap ? m->bcap * 2 : 16;
        struct kith__op *o = realloc(m->bops, cap * sizeof *o);
        if (!o)
            return KITH_ENOMEM;
        m->bops = o;
        struct bfix *x = realloc(m->bfix, cap * sizeof *x);
        if (!x)
            return KITH_ENOMEM;
        m->bfix = x;
        m->bcap = cap;
    }
    int rc = kith__memrep_pool_reserve(&m->bbytes, 1, n);
    if (rc == 0)
        rc = kith__memrep_pool_reserve(&m->bdots, sizeof(kith_dot), nobs);
    return rc;
}

/*
 * Record and apply a local op, whose coll and field are the model's numbers. Its observed
 * dots (nobs of them) are already at the tail of m->bdots; local_reserve has succeeded for
 * it. The op's value is copied into the builder, so the caller's memory may go away
 * afterwards.
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
    int rc = kith__memrep_apply_op(m, op, op->coll, op->field, dot, m->b_hlc);
    if (rc < 0)
        return rc;
    uint32_t sid[2];
    local_sids(m, op->coll, op->field, sid);
    op->cname = bname_use(m, sid[0]);
    op->fname = op->field ? bname_use(m, sid[1]) : 0;
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

/* The start of every write: a commit is open, the names have numbers, the value fits the
 * kind and (live) the document is live. */
static int
local_start(struct kith__memrep *m, unsigned kind, const char *coll, const char *field,
            const kith_value *v, kith_dot doc, bool live, int *c, int *f)
{
    if (!m || !m->building || !v || (kith__op_has_field(kind) && !field))
        return KITH_EINVAL;
    int rc = kith__memrep_value_fits(kind, v, true);
    if (rc < 0)
        return rc;
    *f = 0;
    rc = kith__memrep_names_add(m, coll, kith__op_has_field(kind) ? field : NULL, c, f);
    if (rc < 0)
        return rc;
    if (live && !memb_live(m, *c, doc))
        return KITH_ENOTFOUND;
    return 0;
}

static struct kith__op
local_new(unsigned kind, int c, int f, kith_dot doc, const kith_value *v)
{
    struct kith__op op;
    memset(&op, 0, sizeof op);
    op.kind = (uint8_t)kind;
    op.coll = (uint8_t)c;
    op.field = (uint8_t)f;
    op.doc = doc;
    op.value = *v;
    return op;
}

static const kith_value null_value = {.type = KITH_TYPE_NULL};

int
kith__memrep_doc_create(struct kith__memrep *m, const char *coll, kith_dot *doc)
{
    int c, f;
    int rc =
        local_start(m, KITH_OP_DOC_ADD, coll, NULL, &null_value, (kith_dot){0, 0}, false, &c, &f);
    if (rc < 0)
        return rc;
    rc = local_reserve(m, 0, 0, c, 0);
    if (rc < 0)
        return rc;
    kith_dot self = {m->self, m->b_first + m->bn};
    struct kith__op op = local_new(KITH_OP_DOC_ADD, c, 0, self, &null_value);
    rc = local_op(m, &op, 0);
    if (rc == 0 && doc)
        *doc = self;
    return rc;
}

int
kith__memrep_doc_delete(struct kith__memrep *m, const char *coll, kith_dot doc)
{
    int c, f;
    int rc = local_start(m, KITH_OP_DOC_REMOVE, coll, NULL, &null_value, doc, true, &c, &f);
    if (rc < 0)
        return rc;
    const struct dset *x = dset_find(m, DS_MEMB, c, doc, 0);
    rc = local_reserve(m, 0, x->dn, c, 0);
    if (rc < 0)
        return rc;
    size_t nobs = dots_copy(dset_units(m, x), x->dn, local_obs(m), x->dn);
    struct kith__op op = local_new(KITH_OP_DOC_REMOVE, c, 0, doc, &null_value);
    return local_op(m, &op, nobs);
}

int
kith__memrep_field_set(struct kith__memrep *m, const char *coll, kith_dot doc, const char *field,
                       const kith_value *v)
{
    int c, f;
    int rc = local_start(m, KITH_OP_FIELD_SET, coll, field, v, doc, true, &c, &f);
    if (rc < 0)
        return rc;
    const uint8_t *p;
    size_t n;
    value_payload(v, &p, &n);
    rc = local_reserve(m, n, 0, c, f);
    if (rc < 0)
        return rc;
    struct kith__op op = local_new(KITH_OP_FIELD_SET, c, f, doc, v);
    const struct reg *r = reg_find(m, c, doc, f);
    if (r && r->w_s) {
        op.replaced.origin = r->w_o;
        op.replaced.seq = r->w_s;
    }
    return local_op(m, &op, 0);
}

static int
local_set_op(struct kith__memrep *m, uint8_t kind, const char *coll, kith_dot doc,
             const char *field, const char *elem, size_t len)
{
    kith_value v;
    memset(&v, 0, sizeof v);
    v.type = KITH_TYPE_STRING;
    v.u.s.ptr = elem;
    v.u.s.len = len;
    int c, f;
    int rc = local_start(m, kind, coll, field, &v, doc, true, &c, &f);
    if (rc < 0)
        return rc;
    uint64_t h = elem_hash(c, doc, f, elem, len);
    const struct elem *x = elem_find(m, c, doc, f, elem, len, h);
    size_t have = x ? x->dn : 0;
    if (kind == KITH_OP_SET_REMOVE && have == 0)
        return 0; /* nothing to remove: no op */
    rc = local_reserve(m, len, have, c, f);
    if (rc < 0)
        return rc;
    size_t nobs = have ? dots_copy(elem_dots(m, x), x->dn, local_obs(m), have) : 0;
    struct kith__op op = local_new(kind, c, f, doc, &v);
    return local_op(m, &op, nobs);
}

int
kith__memrep_set_add(struct kith__memrep *m, const char *coll, kith_dot doc, const char *field,
                     const char *elem, size_t len)
{
    return local_set_op(m, KITH_OP_SET_ADD, coll, doc, field, elem, len);
}

int
kith__memrep_set_remove(struct kith__memrep *m, const char *coll, kith_dot doc, const char *field,
                        const char *elem, size_t len)
{
    return local_set_op(m, KITH_OP_SET_REMOVE, coll, doc, field, elem, len);
}

int
kith__memrep_counter_add(struct kith__memrep *m, const char *coll, kith_dot doc, const char *field,
                         int64_t delta)
{
    kith_value v;
    memset(&v, 0, sizeof v);
    v.type = KITH_TYPE_INT;
    v.u.i = delta;
    int c, f;
    int rc = local_start(m, KITH_OP_COUNTER_ADD, coll, field, &v, doc, true, &c, &f);
    if (rc < 0)
        return rc;
    rc = local_reserve(m, 0, 0, c, f);
    if (rc < 0)
        return rc;
    struct kith__op op = local_new(KITH_OP_COUNTER_ADD, c, f, doc, &v);
    return local_op(m, &op, 0);
}

int
kith__memrep_flag_set(struct kith__memrep *m, const char *coll, kith_dot doc, const char *field,
                      bool on)
{
    unsigned kind = on ? KITH_OP_FLAG_ENABLE : KITH_OP_FLAG_DISABLE;
    int c, f;
    int rc = local_start(m, kind, coll, field, &null_value, doc, true, &c, &f);
    if (rc < 0)
        return rc;
    const struct dset *x = dset_find(m, DS_FLAG, c, doc, f);
    size_t have = x ? x->dn : 0;
    if (!on && have == 0)
        return 0; /* clearing a clear flag writes nothing */
    rc = local_reserve(m, 0, have, c, f);
    if (rc < 0)
        return rc;
    size_t nobs = have ? dots_copy(dset_units(m, x), x->dn, local_obs(m), have) : 0;
    struct kith__op op = local_new(kind, c, f, doc, &null_value);
    return local_op(m, &op, nobs);
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
        if (type_has_text(op->value.type))
            op->value.u.s.ptr = pool_str(&m->bbytes, m->bfix[i].voff);
        op->observed = op->nobserved ? (const kith_dot *)m->bdots.data + m->bfix[i].ooff : NULL;
    }
    for (size_t k = 0; k < m->bnn; k++) {
        const struct mname *x = &m->nm[m->bnames[k]];
        m->bnamev[k].ptr = (const char *)m->nbytes.data + x->off;
        m->bnamev[k].len = x->len;
    }
    struct kith__commit c = {.origin = m->self,
                             .first_seq = m->b_first,
                             .hlc = m->b_hlc,
                             .format = 2,
                             .nops = (uint32_t)m->bn,
                             .ops = m->bops,
                             .nnames = (uint32_t)m->bnn,
                             .names = m->bnamev};
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
    if (!c || (c->nops && !c->ops) || c->nops > KITH__MAX_COMMIT_OPS ||
        c->nnames > KITH__MAX_COMMIT_NAMES || (c->nnames && !c->names))
        return KITH_EINVAL;
    size_t nobs = 0, nbytes = 0;
    for (uint32_t k = 0; k < c->nnames; k++) {
        if (c->names[k].len > KITH__MAX_NAME_BYTES || (c->names[k].len && !c->names[k].ptr))
            return KITH_EINVAL;
        nbytes += c->names[k].len + 1;
    }
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
                  nobs * sizeof(kith_dot) + c->nnames * sizeof(struct kith__name) + nbytes;
    uint8_t *mem = malloc(size);
    if (!mem)
        return KITH_ENOMEM;
    struct kith__commit *copy = (struct kith__commit *)mem;
    struct kith__op *ops = (struct kith__op *)(mem + ALIGN8(sizeof *copy));
    kith_dot *dots = (kith_dot *)(ops + c->nops);
    struct kith__name *names = (struct kith__name *)(dots + nobs);
    uint8_t *bytes = (uint8_t *)(names + c->nnames);
    *copy = *c;
    copy->ops = c->nops ? ops : NULL;
    copy->names = c->nnames ? names : NULL;
    for (uint32_t k = 0; k < c->nnames; k++) {
        if (c->names[k].len)
            memcpy(bytes, c->names[k].ptr, c->names[k].len);
        bytes[c->names[k].len] = '\0';
        names[k].ptr = (const char *)bytes;
        names[k].len = c->names[k].len;
        bytes += c->names[k].len + 1;
    }
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
