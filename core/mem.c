/*
 * mem.c — a replica's state in memory (see mem.h): the reference model of the CRDT rules of
 * spec/data-model.md and the in-memory merge path of the bench. This file holds the rules and
 * applies commits; mem_table.c keeps the tables and pools, mem_names.c the model's numbers for
 * names, mem_local.c makes local commits, mem_read.c reads the state and renders the canonical
 * dump; mem_int.h is what they share.
 *
 * The rules themselves are in apply_field_set (LWW-1..4), apply_set_op (ORSET-1..3),
 * apply_counter_add (COUNTER-1..2), apply_flag (FLAG-1..3), apply_doc_add / apply_doc_remove /
 * touch (DOC-1..4, TOUCH-1..2) and kith__memrep_apply (PEND-1..3); the comparisons and dot-set
 * edits are core's (kith__lww_cmp, kith__dots_apply). Values are typed by the ops themselves:
 * the model knows no schema and checks only that a value fits its op's kind.
 *
 * Register values are stored here too (reg_store), where the compiler can inline the store
 * into the rule that makes it: a register keeps its payload slot and reuses it while the new
 * value fits, so the pools grow with the state, not with the number of ops applied.
 */
#include "mem_int.h"

#include <stdlib.h>
#include <string.h>

int
kith__memrep_new(uint64_t self, struct kith__memrep **out)
{
    *out = NULL;
    if (self == 0)
        return KITH_EINVAL;
    struct kith__memrep *m = calloc(1, sizeof *m);
    if (!m)
        return KITH_ENOMEM;
    m->self = self;
    m->capregs = m->capelems = m->capdsets = 64;
    m->regs = calloc(m->capregs, sizeof *m->regs);
    m->elems = calloc(m->capelems, sizeof *m->elems);
    m->dsets = calloc(m->capdsets, sizeof *m->dsets);
    if (!m->regs || !m->elems || !m->dsets) {
        kith__memrep_free(m);
        return KITH_ENOMEM;
    }
    *out = m;
    return 0;
}

void
kith__memrep_free(struct kith__memrep *m)
{
    if (!m)
        return;
    kith_vv_free(&m->vv);
    free(m->regs);
    free(m->elems);
    free(m->dsets);
    free(m->bytes.data);
    free(m->dots.data);
    free(m->scratch.data);
    free(m->conf);
    free(m->cbytes.data);
    free(m->nm);
    free(m->nslot);
    free(m->nbytes.data);
    free(m->colls);
    free(m->rn);
    free(m->rop);
    free(m->bops);
    free(m->bfix);
    free(m->bbytes.data);
    free(m->bdots.data);
    free(m->bnames);
    free(m->bnamev);
    free(m);
}

/* ---- register values ------------------------------------------------------------------ */

/*
 * A payload goes inline when it fits, else into r's pool slot, which is kept and reused while
 * later values fit it. v may point into m->bytes or into r itself.
 */
static int
reg_store(struct kith__memrep *m, struct reg *r, const kith_value *v)
{
    const uint8_t *p;
    size_t n;
    if (!value_payload(v, &p, &n)) {
        r->tflags = (uint8_t)v->type; /* a pool slot, if any, is given up */
        r->vlen = 0;
        r->u.vi = value_scalar(v);
        return 0;
    }
    uint8_t *dst;
    if ((r->tflags & REG_IN_POOL) && n <= r->u.pool.cap) {
        dst = m->bytes.data + r->u.pool.off;
    } else if (n <= REG_INLINE) {
        dst = r->u.inl;
        r->tflags = 0;
    } else {
        bool inside = p && m->bytes.data && p >= m->bytes.data && p < m->bytes.data + m->bytes.len;
        size_t src = inside ? (size_t)(p - m->bytes.data) : 0;
        uint32_t off;
        int rc = kith__memrep_pool_alloc(&m->bytes, 1, n, &off);
        if (rc < 0)
            return rc;
        if (inside)
            p = m->bytes.data + src;
        r->u.pool.off = off;
        r->u.pool.cap = (uint32_t)n;
        r->tflags = REG_IN_POOL;
        dst = m->bytes.data + off;
    }
    bytes_move(dst, p, n);
    r->vlen = (uint32_t)n;
    r->tflags = (uint8_t)((r->tflags & REG_IN_POOL) | (uint8_t)v->type);
    return 0;
}

/* ---- conflict records ----------------------------------------------------------------- */

static int
conflict_add(struct kith__memrep *m, int coll, kith_dot doc, int field, kith_dot wdot,
             uint64_t whlc, const kith_value *wv, kith_dot ldot, uint64_t lhlc,
             const kith_value *lv)
{
    if (m->nconf == m->capconf) {
        size_t cap = m->capconf ? m->capconf * 2 : 16;
        struct conflict *t = realloc(m->conf, cap * sizeof *t);
        if (!t)
            return KITH_ENOMEM;
        m->conf = t;
        m->capconf = cap;
    }
    const uint8_t *wp, *lp;
    size_t wn, ln;
    value_payload(wv, &wp, &wn);
    value_payload(lv, &lp, &ln);
    uint32_t woff, loff;
    int rc = kith__memrep_pool_alloc(&m->cbytes, 1, wn + ln, &woff);
    if (rc < 0)
        return rc;
    loff = woff + (uint32_t)wn;
    if (wn)
        memcpy(m->cbytes.data + woff, wp, wn);
    if (ln)
        memcpy(m->cbytes.data + loff, lp, ln);
    struct conflict *x = &m->conf[m->nconf++];
    memset(x, 0, sizeof *x);
    x->coll = (uint8_t)coll;
    x->field = (uint8_t)field;
    x->doc = doc;
    x->winner_dot = wdot;
    x->loser_dot = ldot;
    x->winner_hlc = whlc;
    x->loser_hlc = lhlc;
    x->winner = value_view((uint8_t)wv->type, value_scalar(wv), NULL, wn);
    x->loser = value_view((uint8_t)lv->type, value_scalar(lv), NULL, ln);
    if (wv->type == KITH_TYPE_REF)
        x->winner.u.ref = wv->u.ref;
    if (lv->type == KITH_TYPE_REF)
        x->loser.u.ref = lv->u.ref;
    x->woff = woff;
    x->loff = loff;
    return 0;
}

/* ---- the rules ------------------------------------------------------------------------ */

static const kith_value null_value = {.type = KITH_TYPE_NULL};

/*
 * Add `dot` to a membership or flag with nothing observed: what kith__dots_apply(units, NULL,
 * 0, &dot) makes, in place. A set holds at most one dot per origin (an add drops its origin's
 * lower dots, and an origin's ops arrive in seq order), so when dot's origin is there, its
 * seq is raised in place, and when it is not, dot is inserted where its origin sorts; either
 * way the order by (origin, seq) holds. Anything else goes through kith__dots_apply.
 */
static inline int
dset_dot_add(struct kith__memrep *m, struct dset *x, kith_dot dot)
{
    uint8_t *p = x->dn ? dots_at(m, x->inl, DSET_INLINE, x->doff, x->dcap) : NULL;
    uint32_t at = 0;
    for (; at < x->dn; at++, p += KITH__DOT_BYTES) {
        uint64_t o = load_be64(p);
        if (o == dot.origin && load_be64(p + 8) < dot.seq) {
            store_be64(p + 8, dot.seq);
            return 0;
        }
        if (o >= dot.origin)
            break;
    }
    if (at < x->dn && load_be64(p) == dot.origin) /* not below dot */
        return kith__memrep_dots_edit(m, x->inl, DSET_INLINE, &x->doff, &x->dn, &x->dcap, NULL, 0,
                                      &dot);
    return dset_unit_add(m, x, at, dot.origin, dot.seq);
}

/*
 * TOUCH-1: a write to a document adds the write's dot to its membership and drops the same
 * origin's lower dots (they are in the writer's past). DOC-4: when that brings a deleted
 * document back, the delete was overruled by this concurrent write: a field-0 conflict.
 */
static int
touch(struct kith__memrep *m, int coll, kith_dot doc, kith_dot dot, uint64_t hlc)
{
    struct dset *x;
    int rc = dset_get(m, DS_MEMB, coll, doc, 0, &x);
    if (rc < 0)
        return rc;
    bool revives = x->dn == 0 && (x->used & DSET_REMOVED);
    rc = dset_dot_add(m, x, dot);
    if (rc < 0 || !revives)
        return rc;
    return conflict_add(m, coll, doc, 0, dot, hlc, &null_value, (kith_dot){0, 0}, 0, &null_value);
}

/*
 * LWW-1..4: the register takes the write with the greatest (hlc, origin, seq). The write names
 * the dot it replaced at its author; when a current value exists and its dot is not that one,
 * the two writes were concurrent and a conflict (winner, loser, both values) is recorded,
 * whichever of them wins.
 */
static int
apply_field_set(struct kith__memrep *m, const struct kith__op *op, int coll, int field,
                kith_dot dot, uint64_t hlc)
{
    struct reg *r;
    int rc = reg_get(m, coll, op->doc, field, &r);
    if (rc < 0)
        return rc;
    kith_dot cur = {r->w_o, r->w_s};
    int cmp = 1;
    if (cur.seq != 0) { /* a write holds the register */
        cmp = kith__lww_cmp(hlc, dot, r->hlc, cur);
        if (cmp == 0)
            return 0; /* the same write again: nothing to do */
        if (!dot_eq(op->replaced, cur)) {
            kith_value old = reg_value(m, r);
            if (cmp > 0)
                rc = conflict_add(m, coll, op->doc, field, dot, hlc, &op->value, cur, r->hlc, &old);
            else
                rc = conflict_add(m, coll, op->doc, field, cur, r->hlc, &old, dot, hlc, &op->value);
            if (rc < 0)
                return rc;
        }
    }
    if (cmp < 0)
        return 0;
    rc = reg_store(m, r, &op->value);
    if (rc < 0)
        return rc;
    r->hlc = hlc;
    r->w_o = dot.origin;
    r->w_s = dot.seq;
    return 0;
}

/* ORSET-1..3: an add drops the dots it observed (and its origin's lower ones) and adds its
 * own; a remove drops the dots it observed. Dots it did not observe survive: add wins. */
static int
apply_set_op(struct kith__memrep *m, const struct kith__op *op, int coll, int field, kith_dot dot)
{
    struct elem *x;
    int rc = elem_get(m, coll, op->doc, field, op->value.u.s.ptr, op->value.u.s.len, &x);
    if (rc < 0)
        return rc;
    return kith__memrep_dots_edit(m, x->inl, ELEM_INLINE, &x->doff, &x->dn, &x->dcap, op->observed,
                                  op->nobserved, op->kind == KITH_OP_SET_ADD ? &dot : NULL);
}

/* FLAG-1..3: a flag is an OR-set of one element: an enable drops the dots it observed (and
 * its origin's lower ones) and adds its own, a disable drops the dots it observed. An enable
 * the disable did not observe survives: enable wins. The flag is set iff a dot is live. */
static int
apply_flag(struct kith__memrep *m, const struct kith__op *op, int coll, int field, kith_dot dot)
{
    struct dset *x;
    int rc = dset_get(m, DS_FLAG, coll, op->doc, field, &x);
    if (rc < 0)
        return rc;
    return kith__memrep_dots_edit(m, x->inl, DSET_INLINE, &x->doff, &x->dn, &x->dcap, op->observed,
                                  op->nobserved, op->kind == KITH_OP_FLAG_ENABLE ? &dot : NULL);
}

/*
 * COUNTER-1..2: a counter keeps one total per origin that added to it, and reads as their
 * sum. An origin's ops arrive once each and in seq order, so adding the delta to its total
 * is the whole merge; totals and sum wrap around modulo 2^64 (read as int64), which keeps the
 * sum independent of the order the deltas came in.
 */
static int
apply_counter_add(struct kith__memrep *m, const struct kith__op *op, int coll, int field,
                  kith_dot dot)
{
    struct dset *x;
    int rc = dset_get(m, DS_COUNTER, coll, op->doc, field, &x);
    if (rc < 0)
        return rc;
    uint64_t delta = (uint64_t)op->value.u.i; /* two's complement: adding it subtracts */
    uint8_t *p = x->dn ? dots_at(m, x->inl, DSET_INLINE, x->doff, x->dcap) : NULL;
    uint32_t at = 0;
    for (; at < x->dn; at++, p += KITH__DOT_BYTES) {
        uint64_t o = load_be64(p);
        if (o == dot.origin) {
            store_be64(p + 8, load_be64(p + 8) + delta);
            return 0;
        }
        if (o > dot.origin)
            break;
    }
    return dset_unit_add(m, x, at, dot.origin, delta);
}

/* DOC-1: creating a document adds the dot that names it to its membership (a DOC_ADD of an
 * existing document is an OR-set add like any other: it drops what it observed). */
static int
apply_doc_add(struct kith__memrep *m, const struct kith__op *op, int coll, kith_dot dot)
{
    struct dset *x;
    int rc = dset_get(m, DS_MEMB, coll, op->doc, 0, &x);
    if (rc < 0)
        return rc;
    if (op->nobserved == 0)
        return dset_dot_add(m, x, dot);
    return kith__memrep_dots_edit(m, x->inl, DSET_INLINE, &x->doff, &x->dn, &x->dcap, op->observed,
                                  op->nobserved, &dot);
}

/* DOC-2..4: a delete drops the membership dots it observed. Dots it did not observe (a
 * concurrent edit's touch) keep the document alive, and then the delete was overruled. */
static int
apply_doc_remove(struct kith__memrep *m, const struct kith__op *op, int coll, kith_dot dot,
                 uint64_t hlc)
{
    struct dset *x;
    int rc = dset_get(m, DS_MEMB, coll, op->doc, 0, &x);
    if (rc < 0)
        return rc;
    rc = kith__memrep_dots_edit(m, x->inl, DSET_INLINE, &x->doff, &x->dn, &x->dcap, op->observed,
                                op->nobserved, NULL);
    if (rc < 0)
        return rc;
    x->used |= DSET_REMOVED;
    if (x->dn == 0)
        return 0;
    kith_dot survivor = kith__dot_get(dset_units(m, x) + (size_t)(x->dn - 1) * KITH__DOT_BYTES);
    return conflict_add(m, coll, op->doc, 0, survivor, 0, &null_value, dot, hlc, &null_value);
}

/* One op, already checked. Every op but DOC_* touches its document (TOUCH-1). */
int
kith__memrep_apply_op(struct kith__memrep *m, const struct kith__op *op, int coll, int field,
                      kith_dot dot, uint64_t hlc)
{
    int rc;
    switch (op->kind) {
    case KITH_OP_FIELD_SET:
        rc = apply_field_set(m, op, coll, field, dot, hlc);
        break;
    case KITH_OP_SET_ADD:
    case KITH_OP_SET_REMOVE:
        rc = apply_set_op(m, op, coll, field, dot);
        break;
    case KITH_OP_COUNTER_ADD:
        rc = apply_counter_add(m, op, coll, field, dot);
        break;
    case KITH_OP_FLAG_ENABLE:
    case KITH_OP_FLAG_DISABLE:
        rc = apply_flag(m, op, coll, field, dot);
        break;
    case KITH_OP_DOC_ADD:
        return apply_doc_add(m, op, coll, dot);
    case KITH_OP_DOC_REMOVE:
        return apply_doc_remove(m, op, coll, dot, hlc);
    default:
        return KITH_EINVAL;
    }
    if (rc < 0)
        return rc;
    return touch(m, coll, op->doc, dot, hlc);
}

/* ---- values ----------------------------------------------------------------------------- */

/* Text as the encoder takes it: UTF-8 without a NUL byte. */
static bool
text_ok(const char *p, size_t n)
{
    return n == 0 || (!memchr(p, '\0', n) && kith__utf8_valid(p, n));
}

/* kith__memrep_value_fits, inline for check_op, which runs it on every op received without
 * the text checks: with `text` false it is a few compares. */
static inline int
value_fits(unsigned kind, const kith_value *v, bool text)
{
    switch (kind) {
    case KITH_OP_FIELD_SET:
        switch (v->type) {
        case KITH_TYPE_NULL:
        case KITH_TYPE_INT:
        case KITH_TYPE_BOOL:
        case KITH_TYPE_REF:
            return 0;
        case KITH_TYPE_TIME:
            return !text || (v->u.i >= KITH__TIME_MIN_MS && v->u.i <= KITH__TIME_MAX_MS)
                       ? 0
                       : KITH_EINVAL;
        case KITH_TYPE_STRING:
        case KITH_TYPE_DATE:
        case KITH_TYPE_ENUM:
        case KITH_TYPE_BYTES:
            if (v->u.s.len > KITH__MAX_VALUE_BYTES)
                return KITH_ETOOBIG;
            if (v->u.s.len && !v->u.s.ptr)
                return KITH_EINVAL;
            return !text || v->type == KITH_TYPE_BYTES || text_ok(v->u.s.ptr, v->u.s.len)
                       ? 0
                       : KITH_EINVAL;
        default:
            return KITH_EINVAL; /* SET is a field's kind, never a value's */
        }
    case KITH_OP_SET_ADD:
    case KITH_OP_SET_REMOVE:
        if (v->type != KITH_TYPE_STRING || v->u.s.len == 0 || !v->u.s.ptr)
            return KITH_EINVAL;
        if (v->u.s.len > KITH__MAX_ELEM_BYTES)
            return KITH_ETOOBIG;
        return !text || text_ok(v->u.s.ptr, v->u.s.len) ? 0 : KITH_EINVAL;
    case KITH_OP_COUNTER_ADD:
        return v->type == KITH_TYPE_INT ? 0 : KITH_EINVAL;
    case KITH_OP_DOC_ADD:
    case KITH_OP_DOC_REMOVE:
    case KITH_OP_FLAG_ENABLE:
    case KITH_OP_FLAG_DISABLE:
        return v->type == KITH_TYPE_NULL ? 0 : KITH_EINVAL;
    default:
        return KITH_EINVAL;
    }
}

int
kith__memrep_value_fits(unsigned kind, const kith_value *v, bool text)
{
    return value_fits(kind, v, text);
}

/* ---- applying commits ----------------------------------------------------------------- */

/* The version vector's seq for the origin last read while checking a commit: the vector does
 * not change until every op is checked, and a commit's ops mostly name documents of one
 * origin, so most of their dependencies cost no search. */
struct vv_memo {
    uint64_t origin, seq; /* origin 0: none read yet */
};

/* Is the dot applied, or made by an earlier op of this commit (op index i)? */
static bool
dep_ok(const struct kith__memrep *m, const struct kith__commit *c, uint32_t i, kith_dot d,
       struct vv_memo *vm)
{
    if (d.origin == 0 || d.seq == 0)
        return false;
    if (d.origin == c->origin)
        return d.seq < c->first_seq + i;
    if (d.origin != vm->origin) {
        vm->origin = d.origin;
        vm->seq = kith__vv_get(&m->vv, d.origin);
    }
    return vm->seq >= d.seq;
}

/* Check op i of c and give its names the model's numbers (m->rop[i]): 0, KITH_EINVAL
 * (structure, a value that does not fit the kind, a bad name), KITH_ETOOBIG, KITH_ENOMEM, or
 * KITH_EGAP (a dot it names is not applied: its document, a replaced dot, a referenced
 * document, an observed dot; PEND-2). Values are not checked for UTF-8: the decoder does. */
static int
check_op(struct kith__memrep *m, const struct kith__commit *c, uint32_t i, struct vv_memo *vm)
{
    const struct kith__op *op = &c->ops[i];
    kith_dot self = {c->origin, c->first_seq + i};
    if (op->doc.origin == 0 || op->doc.seq == 0)
        return KITH_EINVAL;
    if (op->nobserved > KITH__MAX_OBSERVED || (op->nobserved && !op->observed))
        return KITH_EINVAL;
    /* the value first (its refusal wins), by a value_fits of each kind: one switch in all */
    int rc;
    bool missing = false;
    switch (op->kind) {
    case KITH_OP_FIELD_SET:
        rc = value_fits(KITH_OP_FIELD_SET, &op->value, false);
        if (rc == 0 && op->nobserved)
            return KITH_EINVAL;
        if (rc == 0 && (op->replaced.origin || op->replaced.seq))
            missing = !dep_ok(m, c, i, op->replaced, vm);
        break;
    case KITH_OP_COUNTER_ADD:
        rc = value_fits(KITH_OP_COUNTER_ADD, &op->value, false);
        if (rc == 0 && op->nobserved)
            return KITH_EINVAL;
        break;
    case KITH_OP_DOC_ADD: /* creates the document named by its own dot, or adds to one */
        rc = value_fits(KITH_OP_DOC_ADD, &op->value, false);
        if (rc == 0 && dot_eq(op->doc, self) && op->nobserved)
            return KITH_EINVAL;
        break;
    default: /* refuses unknown kinds */
        rc = value_fits(op->kind, &op->value, false);
        break;
    }
    if (rc < 0)
        return rc == KITH_ETOOBIG ? rc : KITH_EINVAL;
    rc = resolve_op(m, c, i);
    if (rc < 0)
        return rc;
    /* the document (its creation) and a referenced document are dependencies too
     * (spec/encoding.md 3.6): their author had applied them */
    if (!dot_eq(op->doc, self) && !dep_ok(m, c, i, op->doc, vm))
        missing = true;
    if (op->kind == KITH_OP_FIELD_SET && op->value.type == KITH_TYPE_REF &&
        !dep_ok(m, c, i, kith__docid_to_dot(&op->value.u.ref), vm))
        missing = true;
    for (uint32_t k = 0; k < op->nobserved; k++)
        if (!dep_ok(m, c, i, op->observed[k], vm))
            missing = true;
    return missing ? KITH_EGAP : 0;
}

int
kith__memrep_apply(struct kith__memrep *m, const struct kith__commit *c, uint64_t wall_ms)
{
    if (!m || !c || m->building || c->origin == 0 || c->first_seq == 0 || c->nops == 0 || !c->ops ||
        c->nops > KITH__MAX_COMMIT_OPS || c->first_seq > UINT64_MAX - c->nops)
        return KITH_EINVAL;
    uint64_t last = c->first_seq + c->nops - 1;
    uint64_t have = kith__vv_get(&m->vv, c->origin);
    if (last <= have)
        return KITH__MEMREP_KNOWN;
    if (c->first_seq <= have)
        return KITH_EINVAL; /* straddles what is held: not one of this origin's commits */
    if (c->first_seq != have + 1)
        return KITH_EGAP; /* PEND-1: an origin's commits apply in seq order */
    int rc = kith__memrep_resolve_begin(m, c);
    if (rc < 0)
        return rc;
    int gap = 0;
    struct vv_memo vm = {0, 0};
    for (uint32_t i = 0; i < c->nops; i++) {
        rc = check_op(m, c, i, &vm);
        if (rc == KITH_EGAP)
            gap = rc;
        else if (rc < 0)
            return rc;
    }
    if (gap)
        return gap; /* PEND-2: wait for the dots it names */
    if (wall_ms != KITH__MEMREP_NO_CLOCK && kith__hlc_too_far_ahead(c->hlc, wall_ms))
        return KITH__MEMREP_TOO_EARLY; /* PEND-3 */
    rc = kith__vv_raise(&m->vv, c->origin, last);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < c->nops; i++) {
        rc = kith__memrep_apply_op(m, &c->ops[i], m->rop[i][0], m->rop[i][1],
                                   (kith_dot){c->origin, c->first_seq + i}, c->hlc);
        if (rc < 0)
            return rc;
    }
    m->hlc = kith__hlc_observe(m->hlc, c->hlc);
    m->ops_applied += c->nops;
    return 0;
}
