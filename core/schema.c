/*
 * schema.c — schemas as data (spec/data-model.md "Schema document"): reading a schema
 * document (JSON, with jansson) or the public C declaration (kith_collection_def) into one
 * struct kith__schema, with every rule a declaration must keep; freeing and looking up.
 *
 * Both readers end in the same checks (field_validate, index_build, resolve_refs), so a
 * document and a C table that say the same thing are refused or accepted alike, with the same
 * message. Messages name the place first ("deals.stage: enum without values"), as the value
 * checks name the field. Declarations keep the order they were written in (jansson keeps an
 * object's keys in document order); the canonical form sorts every key, so order is not part
 * of a schema's identity.
 *
 * Nothing here decides what a replica accepts from a peer (see core/schema.h). Extending a
 * schema is core/schema_merge.c, its canonical form and digest core/schema_json.c, the checks
 * of one value against its field core/fieldcheck.c, and the built-in CRM document with the
 * format-1 interface over it core/crm.c.
 */
#include "schema.h"
#include "schema_int.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const crdt_names[] = {"lww", "set", "counter", "flag"};

#define NAME_RULE "1 to 64 letters, digits or _, starting with a letter"

/* ---- messages and small helpers ------------------------------------------------------- */

int
kith__schema_refuse(char *why, size_t why_cap, const char *fmt, ...)
{
    if (why && why_cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_cap, fmt, ap);
        va_end(ap);
    }
    return KITH_ESCHEMA;
}

/* A name from the input as a message may show it: printable ASCII (others as '?'), at most
 * 64 bytes, then "...". */
static const char *
shown(const char *s, char buf[72])
{
    size_t i = 0;
    for (; s[i] && i < 64; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    if (s[i]) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

static char *
dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    if (n > 0)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
kith__schema_strdup(const char *s)
{
    return dup_n(s, strlen(s));
}

/* 1..64 of [A-Za-z0-9_], starting with a letter. */
static bool
name_ok(const char *s)
{
    size_t i = 0;
    if (!s || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    for (; s[i]; i++) {
        char c = s[i];
        if (i >= KITH__NAME_MAX || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                     (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

static bool
same_name(const char *a, const char *name, size_t len)
{
    return strlen(a) == len && memcmp(a, name, len) == 0;
}

const char *
kith__type_name(kith_type t)
{
    const struct kith__type *row = kith__type_of(t);
    return row ? row->name : "?";
}

const char *
kith__crdt_name(kith__crdt c)
{
    return (unsigned)c < 4 ? crdt_names[c] : "?";
}

/* ---- freeing -------------------------------------------------------------------------- */

static void
field_clear(struct kith__field_decl *f)
{
    free(f->name);
    for (size_t i = 0; i < f->nenum; i++)
        free(f->enum_values[i]);
    free(f->enum_values);
    free(f->ref);
    memset(f, 0, sizeof *f);
}

static void
coll_clear(struct kith__coll_decl *c)
{
    for (size_t i = 0; i < c->nfields; i++)
        field_clear(&c->fields[i]);
    free(c->fields);
    for (size_t i = 0; i < c->nindexes; i++)
        free(c->indexes[i].name);
    free(c->indexes);
    free(c->name);
    memset(c, 0, sizeof *c);
}

void
kith__schema_free(struct kith__schema *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ncoll; i++)
        coll_clear(&s->colls[i]);
    free(s->colls);
    free(s);
}

/* ---- lookups -------------------------------------------------------------------------- */

const struct kith__coll_decl *
kith__schema_find(const struct kith__schema *s, const char *name, size_t len)
{
    if (!s || !name)
        return NULL;
    for (size_t i = 0; i < s->ncoll; i++)
        if (same_name(s->colls[i].name, name, len))
            return &s->colls[i];
    return NULL;
}

const struct kith__field_decl *
kith__coll_field(const struct kith__coll_decl *c, const char *name, size_t len)
{
    if (!c || !name)
        return NULL;
    for (size_t i = 0; i < c->nfields; i++)
        if (same_name(c->fields[i].name, name, len))
            return &c->fields[i];
    return NULL;
}

const struct kith__index_decl *
kith__coll_index(const struct kith__coll_decl *c, const char *name, size_t len)
{
    if (!c || !name)
        return NULL;
    for (size_t i = 0; i < c->nindexes; i++)
        if (same_name(c->indexes[i].name, name, len))
            return &c->indexes[i];
    return NULL;
}

int
kith__schema_field_pos(const struct kith__coll_decl *c, const char *name)
{
    for (size_t i = 0; i < c->nfields; i++)
        if (strcmp(c->fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- the checks both readers end in ---------------------------------------------------- */

/*
 * Is field f of collection `coll` a declaration kith can keep? Assumes f->name is a good
 * name and that what the reader could not express is zero (max_len of a time, say). Whether
 * a ref's target exists is resolve_refs's part.
 */
static int
field_validate(const char *coll, const struct kith__field_decl *f, char *why, size_t why_cap)
{
    const char *fn = f->name;
    const struct kith__type *row = kith__type_of(f->type);
    char b[72];

    if (!row || f->type == KITH_TYPE_NULL)
        return kith__schema_refuse(why, why_cap, "%s.%s: unknown type %d", coll, fn, (int)f->type);
    if ((unsigned)f->crdt > KITH__CRDT_FLAG)
        return kith__schema_refuse(why, why_cap, "%s.%s: unknown crdt %d", coll, fn, (int)f->crdt);
    if (f->crdt == KITH__CRDT_COUNTER && f->type != KITH_TYPE_INT)
        return kith__schema_refuse(why, why_cap, "%s.%s: a counter must be of integers, not %s",
                                   coll, fn, row->name);
    if (f->crdt == KITH__CRDT_FLAG && f->type != KITH_TYPE_BOOL)
        return kith__schema_refuse(why, why_cap, "%s.%s: a flag must be of booleans, not %s", coll,
                                   fn, row->name);
    if (f->crdt == KITH__CRDT_SET && f->type != KITH_TYPE_STRING && f->type != KITH_TYPE_ENUM &&
        f->type != KITH_TYPE_DATE && f->type != KITH_TYPE_REF)
        return kith__schema_refuse(why, why_cap,
                                   "%s.%s: a set holds string, enum, date or ref elements, not %s",
                                   coll, fn, row->name);
    if (f->required && f->crdt != KITH__CRDT_LWW)
        return kith__schema_refuse(why, why_cap, "%s.%s: required applies to lww fields only", coll,
                                   fn);
    if (f->email && f->type != KITH_TYPE_STRING)
        return kith__schema_refuse(why, why_cap, "%s.%s: format email applies to strings only",
                                   coll, fn);
    if ((f->has_min || f->has_max) && (f->type != KITH_TYPE_INT || f->crdt != KITH__CRDT_LWW))
        return kith__schema_refuse(why, why_cap, "%s.%s: min and max bound integer lww fields only",
                                   coll, fn);
    if (f->has_min && f->has_max && f->min > f->max)
        return kith__schema_refuse(why, why_cap, "%s.%s: min is greater than max", coll, fn);
    if (f->max_len > KITH__MAX_VALUE_BYTES)
        return kith__schema_refuse(why, why_cap, "%s.%s: max must be 1 to %u", coll, fn,
                                   KITH__MAX_VALUE_BYTES);
    if (f->max_len && f->type != KITH_TYPE_STRING && f->type != KITH_TYPE_BYTES)
        return kith__schema_refuse(why, why_cap,
                                   "%s.%s: max applies to strings, bytes and integers", coll, fn);
    if (f->type == KITH_TYPE_ENUM) {
        if (f->nenum == 0)
            return kith__schema_refuse(why, why_cap, "%s.%s: enum without values", coll, fn);
        if (f->nenum > KITH__MAX_ENUM)
            return kith__schema_refuse(why, why_cap, "%s.%s: more than %d enum values", coll, fn,
                                       KITH__MAX_ENUM);
        for (size_t i = 0; i < f->nenum; i++) {
            const char *e = f->enum_values[i];
            size_t n = strlen(e);
            if (n < 1 || n > KITH__NAME_MAX || !kith__utf8_valid(e, n))
                return kith__schema_refuse(
                    why, why_cap, "%s.%s: enum values must be 1 to %d bytes of UTF-8 without NUL",
                    coll, fn, KITH__NAME_MAX);
            for (size_t k = 0; k < i; k++)
                if (strcmp(f->enum_values[k], e) == 0)
                    return kith__schema_refuse(why, why_cap, "%s.%s: enum value %s listed twice",
                                               coll, fn, shown(e, b));
        }
    } else if (f->nenum > 0) {
        return kith__schema_refuse(why, why_cap, "%s.%s: values apply to enums only", coll, fn);
    }
    if (f->type == KITH_TYPE_REF && !f->ref)
        return kith__schema_refuse(why, why_cap, "%s.%s: ref without to", coll, fn);
    if (f->type != KITH_TYPE_REF && f->ref)
        return kith__schema_refuse(why, why_cap, "%s.%s: to applies to refs only", coll, fn);
    return 0;
}

/*
 * Append index `iname` on the fields named names[0..nparts) to collection c, whose fields
 * are all read. The index is added before its checks, so that whatever is taken is freed
 * with c. Assumes room for one more index in c->indexes.
 */
static int
index_build(struct kith__coll_decl *c, const char *iname, size_t nparts, const char *const *names,
            char *why, size_t why_cap)
{
    struct kith__index_decl *x = &c->indexes[c->nindexes];
    char b[72];

    memset(x, 0, sizeof *x);
    x->name = kith__schema_strdup(iname);
    if (!x->name)
        return KITH_ENOMEM;
    c->nindexes++;
    if (nparts < 1 || nparts > 2)
        return kith__schema_refuse(why, why_cap, "%s.%s: an index names 1 or 2 fields", c->name,
                                   iname);
    for (size_t p = 0; p < nparts; p++) {
        int pos = names[p] ? kith__schema_field_pos(c, names[p]) : -1;
        if (pos < 0)
            return kith__schema_refuse(why, why_cap, "%s.%s: no field named %s", c->name, iname,
                                       names[p] ? shown(names[p], b) : "(null)");
        if (c->fields[pos].crdt != KITH__CRDT_LWW)
            return kith__schema_refuse(why, why_cap, "%s.%s: %s is a %s, not an lww field", c->name,
                                       iname, names[p], kith__crdt_name(c->fields[pos].crdt));
        if (p == 1 && x->parts[0] == (uint32_t)pos)
            return kith__schema_refuse(why, why_cap, "%s.%s: names %s twice", c->name, iname,
                                       names[p]);
        x->parts[p] = (uint32_t)pos;
    }
    x->nparts = (uint32_t)nparts;
    return 0;
}

int
kith__schema_resolve_refs(const struct kith__schema *s, const struct kith__schema *known, char *why,
                          size_t why_cap)
{
    for (size_t i = 0; i < s->ncoll; i++) {
        const struct kith__coll_decl *c = &s->colls[i];
        for (size_t k = 0; k < c->nfields; k++) {
            const char *to = c->fields[k].ref;
            if (to && !kith__schema_find(s, to, strlen(to)) &&
                !kith__schema_find(known, to, strlen(to))) {
                char b[72];
                return kith__schema_refuse(why, why_cap, "%s.%s: refers to no collection named %s",
                                           c->name, c->fields[k].name, shown(to, b));
            }
        }
    }
    return 0;
}

/* ---- reading a document ---------------------------------------------------------------- */

static int
read_field(const char *coll, json_t *obj, struct kith__field_decl *f, char *why, size_t why_cap)
{
    const char *fn = f->name, *key;
    json_t *val, *max = NULL, *min = NULL, *values = NULL;
    bool have_type = false;
    char b[72];

    if (!json_is_object(obj))
        return kith__schema_refuse(why, why_cap, "%s.%s: must be an object", coll, fn);
    json_object_foreach(obj, key, val)
    {
        if (strcmp(key, "type") == 0) {
            const char *t = json_string_value(val);
            if (!t)
                return kith__schema_refuse(why, why_cap, "%s.%s: type must be a string", coll, fn);
            if (strcmp(t, "set") == 0)
                return kith__schema_refuse(
                    why, why_cap, "%s.%s: unknown type set (a set is \"crdt\": \"set\")", coll, fn);
            if (kith__type_by_name(t, &f->type) < 0 || f->type == KITH_TYPE_NULL)
                return kith__schema_refuse(why, why_cap, "%s.%s: unknown type %s", coll, fn,
                                           shown(t, b));
            have_type = true;
        } else if (strcmp(key, "crdt") == 0) {
            const char *t = json_string_value(val);
            size_t k = 0;
            while (t && k < 4 && strcmp(t, crdt_names[k]) != 0)
                k++;
            if (!t || k == 4)
                return kith__schema_refuse(why, why_cap,
                                           "%s.%s: unknown crdt %s (lww, set, counter or flag)",
                                           coll, fn, t ? shown(t, b) : "(not a string)");
            f->crdt = (kith__crdt)k;
        } else if (strcmp(key, "required") == 0) {
            if (!json_is_boolean(val))
                return kith__schema_refuse(why, why_cap, "%s.%s: required must be true or false",
                                           coll, fn);
            f->required = json_is_true(val);
        } else if (strcmp(key, "max") == 0 || strcmp(key, "min") == 0) {
            if (!json_is_integer(val))
                return kith__schema_refuse(why, why_cap, "%s.%s: %s must be an integer", coll, fn,
                                           key);
            *(key[1] == 'a' ? &max : &min) = val;
        } else if (strcmp(key, "values") == 0) {
            values = val;
        } else if (strcmp(key, "to") == 0) {
            const char *t = json_string_value(val);
            if (!t)
                return kith__schema_refuse(why, why_cap, "%s.%s: to must be a collection name",
                                           coll, fn);
            f->ref = dup_n(t, json_string_length(val));
            if (!f->ref)
                return KITH_ENOMEM;
        } else if (strcmp(key, "format") == 0) {
            const char *t = json_string_value(val);
            if (!t || strcmp(t, "email") != 0)
                return kith__schema_refuse(why, why_cap, "%s.%s: unknown format %s (email)", coll,
                                           fn, t ? shown(t, b) : "(not a string)");
            f->email = true;
        } else {
            return kith__schema_refuse(why, why_cap, "%s.%s: unknown key %s", coll, fn,
                                       shown(key, b));
        }
    }
    if (!have_type)
        return kith__schema_refuse(why, why_cap, "%s.%s: missing type", coll, fn);
    if (max) {
        json_int_t m = json_integer_value(max);
        if (f->type == KITH_TYPE_INT) {
            f->has_max = true;
            f->max = (int64_t)m;
        } else if (f->type == KITH_TYPE_STRING || f->type == KITH_TYPE_BYTES) {
            if (m < 1 || m > KITH__MAX_VALUE_BYTES)
                return kith__schema_refuse(why, why_cap, "%s.%s: max must be 1 to %u", coll, fn,
                                           KITH__MAX_VALUE_BYTES);
            f->max_len = (size_t)m;
        } else {
            return kith__schema_refuse(
                why, why_cap, "%s.%s: max applies to strings, bytes and integers", coll, fn);
        }
    }
    if (min) {
        if (f->type != KITH_TYPE_INT)
            return kith__schema_refuse(why, why_cap, "%s.%s: min applies to integers only", coll,
                                       fn);
        f->has_min = true;
        f->min = (int64_t)json_integer_value(min);
    }
    if (values) {
        size_t n = json_array_size(values);
        if (f->type != KITH_TYPE_ENUM)
            return kith__schema_refuse(why, why_cap, "%s.%s: values apply to enums only", coll, fn);
        if (!json_is_array(values))
            return kith__schema_refuse(why, why_cap, "%s.%s: values must be an array of strings",
                                       coll, fn);
        if (n > KITH__MAX_ENUM)
            return kith__schema_refuse(why, why_cap, "%s.%s: more than %d enum values", coll, fn,
                                       KITH__MAX_ENUM);
        f->enum_values = calloc(n ? n : 1, sizeof *f->enum_values);
        if (!f->enum_values)
            return KITH_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(values, i);
            if (!json_is_string(e))
                return kith__schema_refuse(why, why_cap,
                                           "%s.%s: values must be an array of strings", coll, fn);
            f->enum_values[i] = dup_n(json_string_value(e), json_string_length(e));
            if (!f->enum_values[i])
                return KITH_ENOMEM;
            f->nenum++;
        }
    }
    return field_validate(coll, f, why, why_cap);
}

/*
 * The fields an index names that this document does not declare but `kc` (the collection as
 * declared before, may be NULL) does: copied in, so that a document may add an index on
 * fields declared earlier. Merging them back is a redeclaration that changes nothing.
 */
static int
index_fields_known(struct kith__coll_decl *c, const struct kith__coll_decl *kc, json_t *indexes)
{
    const char *key;
    json_t *val;

    if (!kc)
        return 0;
    json_object_foreach(indexes, key, val)
    {
        for (size_t p = 0; p < json_array_size(val) && p < 2; p++) {
            const char *fname = json_string_value(json_array_get(val, p));
            const struct kith__field_decl *kf =
                fname ? kith__coll_field(kc, fname, strlen(fname)) : NULL;
            if (!kf || kith__schema_field_pos(c, fname) >= 0)
                continue;
            if (c->nfields >= KITH__MAX_FIELDS)
                return 0; /* the count is refused below */
            struct kith__field_decl *f = realloc(c->fields, (c->nfields + 1) * sizeof *f);
            if (!f)
                return KITH_ENOMEM;
            c->fields = f;
            memset(&f[c->nfields], 0, sizeof *f);
            int rc = kith__schema_field_copy(&f[c->nfields], kf);
            c->nfields++;
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

static int
read_collection(json_t *obj, struct kith__coll_decl *c, const struct kith__coll_decl *kc, char *why,
                size_t why_cap)
{
    const char *key;
    json_t *val, *fields = NULL, *indexes = NULL;
    char b[72];
    int rc;

    if (!json_is_object(obj))
        return kith__schema_refuse(why, why_cap, "%s: must be an object", c->name);
    json_object_foreach(obj, key, val)
    {
        if (strcmp(key, "fields") != 0 && strcmp(key, "indexes") != 0)
            return kith__schema_refuse(why, why_cap, "%s: unknown key %s", c->name, shown(key, b));
        if (!json_is_object(val))
            return kith__schema_refuse(why, why_cap, "%s.%s: must be an object", c->name, key);
        *(key[0] == 'f' ? &fields : &indexes) = val;
    }
    if (fields) {
        size_t n = json_object_size(fields);
        if (n > KITH__MAX_FIELDS)
            return kith__schema_refuse(why, why_cap, "%s: more than %d fields", c->name,
                                       KITH__MAX_FIELDS);
        c->fields = calloc(n ? n : 1, sizeof *c->fields);
        if (!c->fields)
            return KITH_ENOMEM;
        json_object_foreach(fields, key, val)
        {
            struct kith__field_decl *f = &c->fields[c->nfields];
            if (!name_ok(key))
                return kith__schema_refuse(why, why_cap, "%s: bad field name %s (" NAME_RULE ")",
                                           c->name, shown(key, b));
            f->name = kith__schema_strdup(key);
            if (!f->name)
                return KITH_ENOMEM;
            c->nfields++;
            rc = read_field(c->name, val, f, why, why_cap);
            if (rc < 0)
                return rc;
        }
    }
    if (indexes && (rc = index_fields_known(c, kc, indexes)) < 0)
        return rc;
    if (indexes) {
        size_t n = json_object_size(indexes);
        if (n > KITH__MAX_INDEXES)
            return kith__schema_refuse(why, why_cap, "%s: more than %d indexes", c->name,
                                       KITH__MAX_INDEXES);
        c->indexes = calloc(n ? n : 1, sizeof *c->indexes);
        if (!c->indexes)
            return KITH_ENOMEM;
        json_object_foreach(indexes, key, val)
        {
            const char *names[2] = {NULL, NULL};
            size_t nparts = json_array_size(val);
            if (!name_ok(key))
                return kith__schema_refuse(why, why_cap, "%s: bad index name %s (" NAME_RULE ")",
                                           c->name, shown(key, b));
            if (!json_is_array(val) || nparts < 1 || nparts > 2)
                return kith__schema_refuse(why, why_cap, "%s.%s: an index names 1 or 2 fields",
                                           c->name, key);
            for (size_t p = 0; p < nparts; p++) {
                names[p] = json_string_value(json_array_get(val, p));
                if (!names[p])
                    return kith__schema_refuse(
                        why, why_cap, "%s.%s: an index names fields by their names", c->name, key);
            }
            rc = index_build(c, key, nparts, names, why, why_cap);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* Read the document's root object into s. */
static int
read_schema(json_t *root, const struct kith__schema *known, struct kith__schema *s, char *why,
            size_t why_cap)
{
    const char *key;
    json_t *val, *colls = NULL;
    char b[72];
    int rc;

    if (!json_is_object(root))
        return kith__schema_refuse(why, why_cap, "schema: must be a JSON object");
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "collections") == 0) {
            if (!json_is_object(val))
                return kith__schema_refuse(why, why_cap, "collections: must be an object");
            colls = val;
        } else if (strcmp(key, "version") != 0) {
            return kith__schema_refuse(why, why_cap, "schema: unknown key %s", shown(key, b));
        }
    }
    if (!colls)
        return kith__schema_refuse(why, why_cap, "schema: missing collections");
    size_t n = json_object_size(colls);
    if (n > KITH__MAX_COLLECTIONS)
        return kith__schema_refuse(why, why_cap, "schema: more than %d collections",
                                   KITH__MAX_COLLECTIONS);
    s->colls = calloc(n ? n : 1, sizeof *s->colls);
    if (!s->colls)
        return KITH_ENOMEM;
    json_object_foreach(colls, key, val)
    {
        struct kith__coll_decl *c = &s->colls[s->ncoll];
        if (!name_ok(key))
            return kith__schema_refuse(
                why, why_cap, "schema: bad collection name %s (" NAME_RULE ")", shown(key, b));
        c->name = kith__schema_strdup(key);
        if (!c->name)
            return KITH_ENOMEM;
        s->ncoll++;
        rc = read_collection(val, c, known ? kith__schema_find(known, key, strlen(key)) : NULL, why,
                             why_cap);
        if (rc < 0)
            return rc;
    }
    return kith__schema_resolve_refs(s, known, why, why_cap);
}

int
kith__schema_parse(const char *json, size_t len, const struct kith__schema *known,
                   struct kith__schema **out, char *why, size_t why_cap)
{
    json_error_t err;
    json_t *root;
    struct kith__schema *s;
    int rc;

    *out = NULL;
    if (why && why_cap)
        why[0] = '\0';
    if (!json)
        return kith__schema_refuse(why, why_cap, "schema: no document");
    if (len > KITH__SCHEMA_MAX_BYTES) {
        kith__schema_refuse(why, why_cap, "schema: larger than %u bytes", KITH__SCHEMA_MAX_BYTES);
        return KITH_ETOOBIG;
    }
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!root) {
        if (json_error_code(&err) == json_error_out_of_memory)
            return KITH_ENOMEM;
        return kith__schema_refuse(
            why, why_cap, "%s at line %d, column %d: %s",
            json_error_code(&err) == json_error_duplicate_key ? "duplicate name" : "malformed JSON",
            err.line, err.column, err.text);
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        json_decref(root);
        return KITH_ENOMEM;
    }
    rc = read_schema(root, known, s, why, why_cap);
    json_decref(root);
    if (rc < 0) {
        kith__schema_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- reading the C declaration --------------------------------------------------------- */

static int
def_field(const char *coll, const kith_field_def *d, struct kith__field_decl *f, char *why,
          size_t why_cap)
{
    f->required = d->required;
    f->email = d->email;
    f->has_min = d->has_min;
    f->has_max = d->has_max;
    f->min = d->min;
    f->max = d->max;
    if (d->type == KITH_TYPE_SET) {
        /* the format-1 spelling of a set: of strings, or of refs with ref_collection */
        f->crdt = KITH__CRDT_SET;
        f->type = d->ref_collection ? KITH_TYPE_REF : KITH_TYPE_STRING;
    } else {
        f->crdt = (kith__crdt)d->crdt;
        f->type = d->type;
    }
    if (f->type == KITH_TYPE_STRING || f->type == KITH_TYPE_BYTES)
        f->max_len = d->max_len; /* elsewhere (a date's 10) it says nothing */
    if (d->ref_collection) {
        f->ref = kith__schema_strdup(d->ref_collection);
        if (!f->ref)
            return KITH_ENOMEM;
    }
    if (d->enum_values) {
        size_t n = 0;
        while (d->enum_values[n] && n <= KITH__MAX_ENUM)
            n++;
        if (n > KITH__MAX_ENUM)
            return kith__schema_refuse(why, why_cap, "%s.%s: more than %d enum values", coll,
                                       f->name, KITH__MAX_ENUM);
        f->enum_values = calloc(n ? n : 1, sizeof *f->enum_values);
        if (!f->enum_values)
            return KITH_ENOMEM;
        for (; f->nenum < n; f->nenum++) {
            f->enum_values[f->nenum] = kith__schema_strdup(d->enum_values[f->nenum]);
            if (!f->enum_values[f->nenum])
                return KITH_ENOMEM;
        }
    }
    return field_validate(coll, f, why, why_cap);
}

static int
def_collection(const kith_collection_def *d, struct kith__coll_decl *c, char *why, size_t why_cap)
{
    char b[72];
    int rc;

    if (d->nfields > KITH__MAX_FIELDS)
        return kith__schema_refuse(why, why_cap, "%s: more than %d fields", c->name,
                                   KITH__MAX_FIELDS);
    if (d->nindexes > KITH__MAX_INDEXES)
        return kith__schema_refuse(why, why_cap, "%s: more than %d indexes", c->name,
                                   KITH__MAX_INDEXES);
    if ((d->nfields && !d->fields) || (d->nindexes && !d->indexes))
        return kith__schema_refuse(why, why_cap, "%s: fields or indexes missing", c->name);
    c->fields = calloc(d->nfields ? d->nfields : 1, sizeof *c->fields);
    c->indexes = calloc(d->nindexes ? d->nindexes : 1, sizeof *c->indexes);
    if (!c->fields || !c->indexes)
        return KITH_ENOMEM;
    for (size_t i = 0; i < d->nfields; i++) {
        const char *fn = d->fields[i].name;
        struct kith__field_decl *f = &c->fields[c->nfields];
        if (!fn)
            return kith__schema_refuse(why, why_cap, "%s: field %zu has no name", c->name, i + 1);
        if (!name_ok(fn))
            return kith__schema_refuse(why, why_cap, "%s: bad field name %s (" NAME_RULE ")",
                                       c->name, shown(fn, b));
        if (kith__schema_field_pos(c, fn) >= 0)
            return kith__schema_refuse(why, why_cap, "%s.%s: declared twice", c->name, fn);
        f->name = kith__schema_strdup(fn);
        if (!f->name)
            return KITH_ENOMEM;
        c->nfields++;
        rc = def_field(c->name, &d->fields[i], f, why, why_cap);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < d->nindexes; i++) {
        const kith_index_def *x = &d->indexes[i];
        if (!x->name)
            return kith__schema_refuse(why, why_cap, "%s: index %zu has no name", c->name, i + 1);
        if (!name_ok(x->name))
            return kith__schema_refuse(why, why_cap, "%s: bad index name %s (" NAME_RULE ")",
                                       c->name, shown(x->name, b));
        if (kith__coll_index(c, x->name, strlen(x->name)))
            return kith__schema_refuse(why, why_cap, "%s.%s: declared twice", c->name, x->name);
        if (x->nfields < 1 || x->nfields > 2 || !x->fields)
            return kith__schema_refuse(why, why_cap, "%s.%s: an index names 1 or 2 fields", c->name,
                                       x->name);
        rc = index_build(c, x->name, x->nfields, x->fields, why, why_cap);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int
kith__schema_from_defs(const kith_collection_def *colls, size_t n, const struct kith__schema *known,
                       struct kith__schema **out, char *why, size_t why_cap)
{
    struct kith__schema *s;
    char b[72];
    int rc = 0;

    *out = NULL;
    if (why && why_cap)
        why[0] = '\0';
    if (n > KITH__MAX_COLLECTIONS)
        return kith__schema_refuse(why, why_cap, "schema: more than %d collections",
                                   KITH__MAX_COLLECTIONS);
    if (n && !colls)
        return kith__schema_refuse(why, why_cap, "schema: no collections given");
    s = calloc(1, sizeof *s);
    if (!s)
        return KITH_ENOMEM;
    s->colls = calloc(n ? n : 1, sizeof *s->colls);
    if (!s->colls) {
        rc = KITH_ENOMEM;
        goto out_free;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *cn = colls[i].name;
        struct kith__coll_decl *c = &s->colls[s->ncoll];
        if (!cn)
            rc = kith__schema_refuse(why, why_cap, "schema: collection %zu has no name", i + 1);
        else if (!name_ok(cn))
            rc = kith__schema_refuse(why, why_cap, "schema: bad collection name %s (" NAME_RULE ")",
                                     shown(cn, b));
        else if (kith__schema_find(s, cn, strlen(cn)))
            rc = kith__schema_refuse(why, why_cap, "%s: declared twice", cn);
        else if (!(c->name = kith__schema_strdup(cn)))
            rc = KITH_ENOMEM;
        else {
            s->ncoll++;
            rc = def_collection(&colls[i], c, why, why_cap);
        }
    }
    if (rc == 0)
        rc = kith__schema_resolve_refs(s, known, why, why_cap);
    if (rc == 0) {
        *out = s;
        return 0;
    }
out_free:
    kith__schema_free(s);
    return rc;
}
