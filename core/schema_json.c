/*
 * schema_json.c — the canonical form of a schema (spec/data-model.md "Canonical form") and its
 * digest, BLAKE2b-256 of that form.
 *
 * The form is the document's shape with every key sorted, no whitespace and the defaults left
 * out, so that equal schemas give equal bytes whatever order they were declared in, and
 * reading the form back gives the same bytes. It is written by hand rather than dumped by
 * jansson so that the defaults and the bytes are fixed by this file alone; strings are
 * escaped as core/types.c escapes a STRING value (as jansson does). libsodium is used for
 * BLAKE2b only.
 */
#include "schema.h"
#include "schema_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Orders pointers to declarations (coll, field or index: each begins with its name). */
static int
by_name(const void *a, const void *b)
{
    const char *const *x = *(const void *const *)a;
    const char *const *y = *(const void *const *)b;
    return strcmp(*x, *y);
}

/* Fill order[0..n) with pointers to the n structs of `size` bytes at base, sorted by name. */
static void
sort_by_name(const void **order, const void *base, size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++)
        order[i] = (const char *)base + i * size;
    if (n > 1)
        qsort(order, n, sizeof *order, by_name);
}

static int
put(struct kith__wbuf *o, const char *s)
{
    return kith__wbuf_put(o, s, strlen(s));
}

/* `,"key":` (without the comma for the first key of an object). */
static int
put_key(struct kith__wbuf *o, bool *first, const char *key)
{
    int rc = *first ? 0 : put(o, ",");
    *first = false;
    if (rc == 0)
        rc = put(o, "\"");
    if (rc == 0)
        rc = put(o, key);
    return rc == 0 ? put(o, "\":") : rc;
}

static int
put_string(struct kith__wbuf *o, const char *s)
{
    kith_value v = {.type = KITH_TYPE_STRING, .u.s = {s, strlen(s)}};
    return kith__value_json(&v, o);
}

static int
put_int(struct kith__wbuf *o, long long v)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", v);
    return kith__wbuf_put(o, buf, (size_t)n);
}

/* A field's object: keys in byte order, defaults left out. */
static int
field_json(const struct kith__field_decl *f, struct kith__wbuf *o)
{
    bool first = true;
    int rc = put(o, "{");
    if (rc == 0 && f->crdt != KITH__CRDT_LWW && (rc = put_key(o, &first, "crdt")) == 0)
        rc = put_string(o, kith__crdt_name(f->crdt));
    if (rc == 0 && f->email && (rc = put_key(o, &first, "format")) == 0)
        rc = put(o, "\"email\"");
    if (rc == 0 && f->type == KITH_TYPE_INT && f->has_max && (rc = put_key(o, &first, "max")) == 0)
        rc = put_int(o, f->max);
    if (rc == 0 && f->type != KITH_TYPE_INT && f->max_len && (rc = put_key(o, &first, "max")) == 0)
        rc = put_int(o, (long long)f->max_len);
    if (rc == 0 && f->has_min && (rc = put_key(o, &first, "min")) == 0)
        rc = put_int(o, f->min);
    if (rc == 0 && f->required && (rc = put_key(o, &first, "required")) == 0)
        rc = put(o, "true");
    if (rc == 0 && f->ref && (rc = put_key(o, &first, "to")) == 0)
        rc = put_string(o, f->ref);
    if (rc == 0 && (rc = put_key(o, &first, "type")) == 0)
        rc = put_string(o, kith__type_name(f->type));
    if (rc == 0 && f->type == KITH_TYPE_ENUM && (rc = put_key(o, &first, "values")) == 0) {
        rc = put(o, "[");
        for (size_t i = 0; i < f->nenum && rc == 0; i++) {
            if (i > 0)
                rc = put(o, ",");
            if (rc == 0)
                rc = put_string(o, f->enum_values[i]);
        }
        if (rc == 0)
            rc = put(o, "]");
    }
    return rc == 0 ? put(o, "}") : rc;
}

static int
coll_json(const struct kith__coll_decl *c, const void **order, struct kith__wbuf *o)
{
    bool first = true;
    int rc = put(o, "{");
    if (rc == 0 && c->nfields > 0 && (rc = put_key(o, &first, "fields")) == 0) {
        bool ffirst = true;
        sort_by_name(order, c->fields, c->nfields, sizeof *c->fields);
        rc = put(o, "{");
        for (size_t i = 0; i < c->nfields && rc == 0; i++) {
            const struct kith__field_decl *f = order[i];
            if ((rc = put_key(o, &ffirst, f->name)) == 0)
                rc = field_json(f, o);
        }
        if (rc == 0)
            rc = put(o, "}");
    }
    if (rc == 0 && c->nindexes > 0 && (rc = put_key(o, &first, "indexes")) == 0) {
        bool ifirst = true;
        sort_by_name(order, c->indexes, c->nindexes, sizeof *c->indexes);
        rc = put(o, "{");
        for (size_t i = 0; i < c->nindexes && rc == 0; i++) {
            const struct kith__index_decl *x = order[i];
            if ((rc = put_key(o, &ifirst, x->name)) == 0)
                rc = put(o, "[");
            for (uint32_t p = 0; p < x->nparts && rc == 0; p++) {
                if (p > 0)
                    rc = put(o, ",");
                if (rc == 0)
                    rc = put_string(o, c->fields[x->parts[p]].name);
            }
            if (rc == 0)
                rc = put(o, "]");
        }
        if (rc == 0)
            rc = put(o, "}");
    }
    return rc == 0 ? put(o, "}") : rc;
}

int
kith__schema_json(const struct kith__schema *s, struct kith__wbuf *out)
{
    size_t most = s->ncoll;
    const void **order, **inner;
    bool first = true;
    int rc;

    for (size_t i = 0; i < s->ncoll; i++) {
        if (s->colls[i].nfields > most)
            most = s->colls[i].nfields;
        if (s->colls[i].nindexes > most)
            most = s->colls[i].nindexes;
    }
    order = malloc(2 * (most + 1) * sizeof *order);
    if (!order)
        return KITH_ENOMEM;
    inner = order + most + 1;
    sort_by_name(order, s->colls, s->ncoll, sizeof *s->colls);
    rc = put(out, "{\"collections\":{");
    for (size_t i = 0; i < s->ncoll && rc == 0; i++) {
        const struct kith__coll_decl *c = order[i];
        if ((rc = put_key(out, &first, c->name)) == 0)
            rc = coll_json(c, inner, out);
    }
    if (rc == 0)
        rc = put(out, "}}\n");
    free(order);
    return rc;
}

/* A schema that cannot be written out for want of memory gets the zero digest. */
void
kith__schema_digest(const struct kith__schema *s, uint8_t out[KITH_HASH_BYTES])
{
    struct kith__wbuf b = {0};
    if (kith__schema_json(s, &b) < 0 ||
        crypto_generichash(out, KITH_HASH_BYTES, b.data, b.len, NULL, 0) != 0)
        memset(out, 0, KITH_HASH_BYTES);
    kith__wbuf_free(&b);
}
