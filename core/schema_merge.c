/*
 * schema_merge.c — extending a schema (spec/data-model.md "Compatibility"): the union of the
 * schema a replica has and a new declaration, refused whole when the declaration would change
 * what ops already held mean.
 *
 * A field keeps its type, its kind and its ref target for good, since values of the old type
 * and ops of the old kind may already be stored and relayed; its constraints only govern
 * local writes, so they take the new declaration's values, and an enum may only gain values.
 * The result is built as a new schema (the base is never touched), new declarations after the
 * old ones, and whether anything changed is read off the canonical forms, which do not depend
 * on the order things were declared in.
 */
#include "schema.h"
#include "schema_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
kith__schema_field_copy(struct kith__field_decl *dst, const struct kith__field_decl *src)
{
    *dst = *src;
    dst->name = NULL;
    dst->ref = NULL;
    dst->enum_values = NULL;
    dst->nenum = 0;
    if (!(dst->name = kith__schema_strdup(src->name)) ||
        (src->ref && !(dst->ref = kith__schema_strdup(src->ref))))
        return KITH_ENOMEM;
    if (src->nenum) {
        dst->enum_values = calloc(src->nenum, sizeof *dst->enum_values);
        if (!dst->enum_values)
            return KITH_ENOMEM;
        for (; dst->nenum < src->nenum; dst->nenum++)
            if (!(dst->enum_values[dst->nenum] = kith__schema_strdup(src->enum_values[dst->nenum])))
                return KITH_ENOMEM;
    }
    return 0;
}

/* Copy src into dst (zeroed), with room for `extra_fields` and `extra_indexes` more. */
static int
coll_copy(struct kith__coll_decl *dst, const struct kith__coll_decl *src, size_t extra_fields,
          size_t extra_indexes)
{
    if (!(dst->name = kith__schema_strdup(src->name)))
        return KITH_ENOMEM;
    dst->fields = calloc(src->nfields + extra_fields + 1, sizeof *dst->fields);
    dst->indexes = calloc(src->nindexes + extra_indexes + 1, sizeof *dst->indexes);
    if (!dst->fields || !dst->indexes)
        return KITH_ENOMEM;
    for (; dst->nfields < src->nfields; dst->nfields++)
        if (kith__schema_field_copy(&dst->fields[dst->nfields], &src->fields[dst->nfields]) < 0) {
            dst->nfields++; /* so that the partial copy is freed */
            return KITH_ENOMEM;
        }
    for (; dst->nindexes < src->nindexes; dst->nindexes++) {
        dst->indexes[dst->nindexes] = src->indexes[dst->nindexes];
        if (!(dst->indexes[dst->nindexes].name =
                  kith__schema_strdup(src->indexes[dst->nindexes].name)))
            return KITH_ENOMEM;
    }
    return 0;
}

/* "integer counter", "ref to contacts lww" */
static void
describe(const struct kith__field_decl *f, char *out, size_t cap)
{
    snprintf(out, cap, "%s%s%s %s", kith__type_name(f->type), f->ref ? " to " : "",
             f->ref ? f->ref : "", kith__crdt_name(f->crdt));
}

/* "contact, at" */
static void
describe_index(const struct kith__coll_decl *c, const struct kith__index_decl *x, char *out,
               size_t cap)
{
    snprintf(out, cap, "%s%s%s", c->fields[x->parts[0]].name, x->nparts > 1 ? ", " : "",
             x->nparts > 1 ? c->fields[x->parts[1]].name : "");
}

static bool
enum_has(const struct kith__field_decl *f, const char *v)
{
    for (size_t i = 0; i < f->nenum; i++)
        if (strcmp(f->enum_values[i], v) == 0)
            return true;
    return false;
}

/* Field `f` of collection `coll` declared again as `a`: keep its type, crdt and target, take
 * the new constraints, let the enum grow. */
static int
field_redeclare(const char *coll, struct kith__field_decl *f, const struct kith__field_decl *a,
                char *why, size_t why_cap)
{
    bool same_ref = (!f->ref && !a->ref) || (f->ref && a->ref && strcmp(f->ref, a->ref) == 0);
    if (f->type != a->type || f->crdt != a->crdt || !same_ref) {
        char was[160], now[160];
        describe(f, was, sizeof was);
        describe(a, now, sizeof now);
        return kith__schema_refuse(why, why_cap, "%s.%s: declared as %s, now %s", coll, f->name,
                                   was, now);
    }
    if (f->type == KITH_TYPE_ENUM) {
        size_t grow = 0;
        for (size_t i = 0; i < f->nenum; i++)
            if (!enum_has(a, f->enum_values[i]))
                return kith__schema_refuse(why, why_cap,
                                           "%s.%s: enum values may only grow, and %s is missing",
                                           coll, f->name, f->enum_values[i]);
        for (size_t i = 0; i < a->nenum; i++)
            grow += !enum_has(f, a->enum_values[i]);
        if (f->nenum + grow > KITH__MAX_ENUM)
            return kith__schema_refuse(why, why_cap, "%s.%s: more than %d enum values", coll,
                                       f->name, KITH__MAX_ENUM);
        if (grow) {
            char **v = realloc(f->enum_values, (f->nenum + grow) * sizeof *v);
            if (!v)
                return KITH_ENOMEM;
            f->enum_values = v;
            for (size_t i = 0; i < a->nenum; i++) {
                if (enum_has(f, a->enum_values[i]))
                    continue;
                if (!(v[f->nenum] = kith__schema_strdup(a->enum_values[i])))
                    return KITH_ENOMEM;
                f->nenum++;
            }
        }
    }
    f->required = a->required;
    f->email = a->email;
    f->max_len = a->max_len;
    f->has_min = a->has_min;
    f->has_max = a->has_max;
    f->min = a->min;
    f->max = a->max;
    return 0;
}

/* Merge collection `a` into `c`, which has room for a's fields and indexes. */
static int
coll_merge(struct kith__coll_decl *c, const struct kith__coll_decl *a, char *why, size_t why_cap)
{
    int rc;
    for (size_t i = 0; i < a->nfields; i++) {
        int pos = kith__schema_field_pos(c, a->fields[i].name);
        if (pos >= 0) {
            rc = field_redeclare(c->name, &c->fields[pos], &a->fields[i], why, why_cap);
        } else {
            if (c->nfields >= KITH__MAX_FIELDS)
                return kith__schema_refuse(why, why_cap, "%s: more than %d fields", c->name,
                                           KITH__MAX_FIELDS);
            rc = kith__schema_field_copy(&c->fields[c->nfields], &a->fields[i]);
            c->nfields++;
        }
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < a->nindexes; i++) {
        const struct kith__index_decl *ax = &a->indexes[i];
        struct kith__index_decl x = {.nparts = ax->nparts};
        for (uint32_t p = 0; p < ax->nparts; p++)
            x.parts[p] = (uint32_t)kith__schema_field_pos(c, a->fields[ax->parts[p]].name);
        const struct kith__index_decl *old = kith__coll_index(c, ax->name, strlen(ax->name));
        if (old) {
            if (old->nparts != x.nparts || old->parts[0] != x.parts[0] ||
                (x.nparts > 1 && old->parts[1] != x.parts[1])) {
                char was[160], now[160];
                describe_index(c, old, was, sizeof was);
                describe_index(c, &x, now, sizeof now);
                return kith__schema_refuse(why, why_cap, "%s.%s: index declared on %s, now on %s",
                                           c->name, ax->name, was, now);
            }
            continue;
        }
        if (c->nindexes >= KITH__MAX_INDEXES)
            return kith__schema_refuse(why, why_cap, "%s: more than %d indexes", c->name,
                                       KITH__MAX_INDEXES);
        if (!(x.name = kith__schema_strdup(ax->name)))
            return KITH_ENOMEM;
        c->indexes[c->nindexes++] = x;
    }
    return 0;
}

static int
schema_merge(const struct kith__schema *base, const struct kith__schema *add,
             struct kith__schema *s, char *why, size_t why_cap)
{
    size_t nb = base ? base->ncoll : 0;
    int rc;

    s->colls = calloc(nb + add->ncoll + 1, sizeof *s->colls);
    if (!s->colls)
        return KITH_ENOMEM;
    for (size_t i = 0; i < nb; i++) {
        const struct kith__coll_decl *a =
            kith__schema_find(add, base->colls[i].name, strlen(base->colls[i].name));
        s->ncoll++;
        rc = coll_copy(&s->colls[i], &base->colls[i], a ? a->nfields : 0, a ? a->nindexes : 0);
        if (rc == 0 && a)
            rc = coll_merge(&s->colls[i], a, why, why_cap);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < add->ncoll; i++) {
        if (kith__schema_find(base, add->colls[i].name, strlen(add->colls[i].name)))
            continue;
        if (s->ncoll >= KITH__MAX_COLLECTIONS)
            return kith__schema_refuse(why, why_cap, "schema: more than %d collections",
                                       KITH__MAX_COLLECTIONS);
        rc = coll_copy(&s->colls[s->ncoll++], &add->colls[i], 0, 0);
        if (rc < 0)
            return rc;
    }
    return kith__schema_resolve_refs(s, NULL, why, why_cap);
}

int
kith__schema_merge(const struct kith__schema *base, const struct kith__schema *add,
                   struct kith__schema **out, bool *changed, char *why, size_t why_cap)
{
    static const struct kith__schema empty = {0, NULL};
    struct kith__wbuf was = {0}, now = {0};
    struct kith__schema *s;
    int rc;

    *out = NULL;
    if (changed)
        *changed = false;
    if (why && why_cap)
        why[0] = '\0';
    s = calloc(1, sizeof *s);
    if (!s)
        return KITH_ENOMEM;
    rc = schema_merge(base, add ? add : &empty, s, why, why_cap);
    if (rc == 0 && changed) {
        rc = kith__schema_json(base ? base : &empty, &was);
        if (rc == 0)
            rc = kith__schema_json(s, &now);
        if (rc == 0)
            *changed = was.len != now.len || memcmp(was.data, now.data, was.len) != 0;
        kith__wbuf_free(&was);
        kith__wbuf_free(&now);
    }
    if (rc < 0) {
        kith__schema_free(s);
        return rc;
    }
    *out = s;
    return 0;
}
