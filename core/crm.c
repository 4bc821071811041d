/*
 * crm.c — the built-in CRM schema (contacts, interactions, reminders) as a schema document,
 * and the format-1 interface over it: the public kith_collection_def table (kith_schema),
 * collection and field numbers, the value checks by number, kith_value_parse and the
 * fingerprint that format-1 peers compare (spec/data-model.md "Schema", "Fingerprint" and
 * "The CRM document").
 *
 * The document is the single source: it is parsed once (pthread_once) and the static table is
 * built from it, in the document's order, so the numbers and the fingerprint are what the
 * static table always gave: collection numbers are indexes from 0, field numbers indexes plus
 * one (0 is the document's membership in op encodings). The fingerprint keeps the format-1
 * canonical text rendering of the table, byte for byte, since old replicas store it. Should
 * the parse fail for want of memory, the table is empty and every lookup fails.
 */
#include "schema.h"

#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* In declaration order, which is the format-1 numbering. Sets of strings are
 * {"type":"string","crdt":"set"}; reminders.done stays an LWW boolean (making it a flag would
 * change the kind of what replicas already hold). */
const char kith__crm_schema_json[] =
    "{\"collections\": {\n"
    "  \"contacts\": {\n"
    "    \"fields\": {\n"
    "      \"name\":     {\"type\": \"string\", \"required\": true, \"max\": 256},\n"
    "      \"email\":    {\"type\": \"string\", \"max\": 320, \"format\": \"email\"},\n"
    "      \"phone\":    {\"type\": \"string\", \"max\": 64},\n"
    "      \"company\":  {\"type\": \"string\", \"max\": 256},\n"
    "      \"notes\":    {\"type\": \"string\", \"max\": 16384},\n"
    "      \"birthday\": {\"type\": \"date\"},\n"
    "      \"tags\":     {\"type\": \"string\", \"crdt\": \"set\", \"max\": 64}},\n"
    "    \"indexes\": {\"name\": [\"name\"]}},\n"
    "  \"interactions\": {\n"
    "    \"fields\": {\n"
    "      \"contact\":      {\"type\": \"ref\", \"to\": \"contacts\", \"required\": true},\n"
    "      \"kind\":         {\"type\": \"enum\", \"required\": true,\n"
    "                       \"values\": [\"call\", \"meeting\", \"message\", \"email\", "
    "\"note\"]},\n"
    "      \"at\":           {\"type\": \"time\", \"required\": true},\n"
    "      \"summary\":      {\"type\": \"string\", \"max\": 4096},\n"
    "      \"participants\": {\"type\": \"ref\", \"to\": \"contacts\", \"crdt\": \"set\"}},\n"
    "    \"indexes\": {\"contact\": [\"contact\", \"at\"]}},\n"
    "  \"reminders\": {\n"
    "    \"fields\": {\n"
    "      \"contact\": {\"type\": \"ref\", \"to\": \"contacts\"},\n"
    "      \"due\":     {\"type\": \"time\", \"required\": true},\n"
    "      \"text\":    {\"type\": \"string\", \"required\": true, \"max\": 4096},\n"
    "      \"done\":    {\"type\": \"boolean\"}},\n"
    "    \"indexes\": {\"due\": [\"due\"]}}}}\n";

const char *
kith_schema_crm(void)
{
    return kith__crm_schema_json;
}

/* ---- the parsed document and the table built from it ---------------------------------- */

static struct crm {
    struct kith__schema *schema;
    kith_collection_def *colls; /* one per collection of schema, same order */
    size_t ncoll;
} crm; /* written once under crm_once, read-only after */

static pthread_once_t crm_once = PTHREAD_ONCE_INIT;

static void
table_free(kith_collection_def *colls, size_t n)
{
    for (size_t c = 0; colls && c < n; c++) {
        kith_field_def *fields = (kith_field_def *)colls[c].fields;
        kith_index_def *indexes = (kith_index_def *)colls[c].indexes;
        for (size_t f = 0; fields && f < colls[c].nfields; f++)
            free((void *)fields[f].enum_values);
        for (size_t i = 0; indexes && i < colls[c].nindexes; i++)
            free((void *)indexes[i].fields);
        free(fields);
        free(indexes);
    }
    free(colls);
}

/* The format-1 row of a declared field: sets as KITH_TYPE_SET, and the lengths format 1
 * gave what a document leaves implicit (a date's 10 characters, a document id's 32). */
static int
field_def(const struct kith__field_decl *d, kith_field_def *out)
{
    memset(out, 0, sizeof *out);
    out->name = d->name;
    out->type = d->crdt == KITH__CRDT_SET ? KITH_TYPE_SET : d->type;
    out->required = d->required;
    out->ref_collection = d->ref;
    out->max_len = d->max_len;
    if (d->type == KITH_TYPE_DATE)
        out->max_len = 10;
    if (d->crdt == KITH__CRDT_SET && d->type == KITH_TYPE_REF)
        out->max_len = KITH_DOCID_HEX;
    out->crdt = (int)d->crdt;
    out->email = d->email;
    out->has_min = d->has_min;
    out->has_max = d->has_max;
    out->min = d->min;
    out->max = d->max;
    if (d->type == KITH_TYPE_ENUM) {
        const char **values = calloc(d->nenum + 1, sizeof *values);
        if (!values)
            return KITH_ENOMEM;
        for (size_t i = 0; i < d->nenum; i++)
            values[i] = d->enum_values[i];
        out->enum_values = values;
    }
    return 0;
}

static int
coll_def(const struct kith__coll_decl *d, kith_collection_def *out)
{
    kith_field_def *fields = calloc(d->nfields + 1, sizeof *fields);
    kith_index_def *indexes = calloc(d->nindexes + 1, sizeof *indexes);
    out->name = d->name;
    out->fields = fields;
    out->indexes = indexes;
    if (!fields || !indexes)
        return KITH_ENOMEM;
    for (; out->nfields < d->nfields; out->nfields++)
        if (field_def(&d->fields[out->nfields], &fields[out->nfields]) < 0)
            return KITH_ENOMEM;
    for (; out->nindexes < d->nindexes; out->nindexes++) {
        const struct kith__index_decl *x = &d->indexes[out->nindexes];
        const char **names = calloc(x->nparts, sizeof *names);
        if (!names)
            return KITH_ENOMEM;
        for (uint32_t p = 0; p < x->nparts; p++)
            names[p] = d->fields[x->parts[p]].name;
        indexes[out->nindexes].name = x->name;
        indexes[out->nindexes].nfields = x->nparts;
        indexes[out->nindexes].fields = names;
    }
    return 0;
}

static void
crm_init(void)
{
    struct kith__schema *s = NULL;
    kith_collection_def *colls = NULL;
    size_t n = 0;

    if (kith__schema_parse(kith__crm_schema_json, strlen(kith__crm_schema_json), NULL, &s, NULL,
                           0) < 0)
        return;
    colls = calloc(s->ncoll + 1, sizeof *colls);
    if (!colls)
        goto out_fail;
    for (; n < s->ncoll; n++)
        if (coll_def(&s->colls[n], &colls[n]) < 0) {
            n++;
            goto out_fail;
        }
    crm.schema = s;
    crm.colls = colls;
    crm.ncoll = s->ncoll;
    return;
out_fail:
    table_free(colls, n);
    kith__schema_free(s);
}

static const struct crm *
crm_get(void)
{
    pthread_once(&crm_once, crm_init);
    return &crm;
}

/* ---- lookups by number ---------------------------------------------------------------- */

const kith_collection_def *
kith_schema(size_t *ncollections)
{
    const struct crm *m = crm_get();
    if (ncollections)
        *ncollections = m->ncoll;
    return m->colls;
}

int
kith__schema_ncoll(void)
{
    return (int)crm_get()->ncoll;
}

int
kith__schema_coll(const char *name)
{
    const struct crm *m = crm_get();
    if (!name)
        return KITH_ENOTFOUND;
    for (size_t i = 0; i < m->ncoll; i++)
        if (strcmp(m->colls[i].name, name) == 0)
            return (int)i;
    return KITH_ENOTFOUND;
}

int
kith__schema_field(int coll, const char *name)
{
    const kith_collection_def *c = kith__schema_coll_def(coll);
    if (!c || !name)
        return KITH_ENOTFOUND;
    for (size_t i = 0; i < c->nfields; i++)
        if (strcmp(c->fields[i].name, name) == 0)
            return (int)i + 1;
    return KITH_ENOTFOUND;
}

const kith_collection_def *
kith__schema_coll_def(int coll)
{
    const struct crm *m = crm_get();
    if (coll < 0 || (size_t)coll >= m->ncoll)
        return NULL;
    return &m->colls[coll];
}

const kith_field_def *
kith__schema_field_def(int coll, int field)
{
    const kith_collection_def *c = kith__schema_coll_def(coll);
    if (!c || field < 1 || (size_t)field > c->nfields)
        return NULL;
    return &c->fields[field - 1];
}

/* The declaration behind a field number (the table was checked to match). */
static const struct kith__field_decl *
field_decl(int coll, int field)
{
    if (!kith__schema_field_def(coll, field))
        return NULL;
    return &crm.schema->colls[coll].fields[field - 1];
}

/* ---- checks by number ----------------------------------------------------------------- */

static int fail(const char *name, char *why, size_t why_cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Write "name: message" into why (may be NULL) and return KITH_ESCHEMA. */
static int
fail(const char *name, char *why, size_t why_cap, const char *fmt, ...)
{
    if (why && why_cap > 0) {
        int n = snprintf(why, why_cap, "%s: ", name ? name : "value");
        if (n >= 0 && (size_t)n < why_cap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(why + n, why_cap - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return KITH_ESCHEMA;
}

int
kith__schema_check(int coll, int field, const kith_value *v, char *why, size_t why_cap)
{
    const struct kith__field_decl *d = field_decl(coll, field);
    if (why && why_cap)
        why[0] = '\0';
    if (!d)
        return fail(NULL, why, why_cap, "no field %d in collection %d", field, coll);
    if (!v)
        return fail(d->name, why, why_cap, "missing value");
    if (d->crdt == KITH__CRDT_SET)
        return fail(d->name, why, why_cap, "is a set: add or remove elements");
    return kith__field_check(d, v, why, why_cap);
}

int
kith__schema_check_elem(int coll, int field, const char *elem, size_t len, char *why,
                        size_t why_cap)
{
    const struct kith__field_decl *d = field_decl(coll, field);
    if (why && why_cap)
        why[0] = '\0';
    if (!d)
        return fail(NULL, why, why_cap, "no field %d in collection %d", field, coll);
    if (d->crdt != KITH__CRDT_SET)
        return fail(d->name, why, why_cap, "is not a set");
    kith_value v = {.type = KITH_TYPE_STRING, .u.s = {elem, len}};
    return kith__field_check(d, &v, why, why_cap);
}

/* ---- text -> value -------------------------------------------------------------------- */

/*
 * The CLI's reading of a value. Empty text clears an optional field (KITH_TYPE_NULL) and is
 * refused for a required one; for a SET field the text is one element (KITH_TYPE_STRING).
 */
int
kith_value_parse(const char *collection, const char *field, const char *text, kith_value *out,
                 char *why, size_t why_cap)
{
    if (why && why_cap)
        why[0] = '\0';
    if (!text || !out) {
        fail(NULL, why, why_cap, "missing text");
        return KITH_EINVAL;
    }
    int coll = kith__schema_coll(collection);
    if (coll < 0) {
        if (why && why_cap)
            snprintf(why, why_cap, "no collection named %s", collection ? collection : "(null)");
        return KITH_ENOTFOUND;
    }
    int fno = kith__schema_field(coll, field);
    if (fno < 0) {
        if (why && why_cap)
            snprintf(why, why_cap, "no field named %s in %s", field ? field : "(null)", collection);
        return KITH_ENOTFOUND;
    }
    const struct kith__field_decl *d = field_decl(coll, fno);
    size_t len = strlen(text);
    kith_value v;
    memset(&v, 0, sizeof v);

    if (d->crdt == KITH__CRDT_SET) {
        int rc = kith__schema_check_elem(coll, fno, text, len, why, why_cap);
        if (rc < 0)
            return rc;
        v.type = KITH_TYPE_STRING;
        v.u.s.ptr = text;
        v.u.s.len = len;
        *out = v;
        return 0;
    }
    if (len == 0) {
        v.type = KITH_TYPE_NULL;
    } else {
        const struct kith__type *t = kith__type_of(d->type);
        char reason[128];
        v.type = d->type;
        if (t->parse(text, &v, reason, sizeof reason) < 0)
            return fail(d->name, why, why_cap, "%s", reason);
    }
    int rc = kith__schema_check(coll, fno, &v, why, why_cap);
    if (rc < 0)
        return rc;
    *out = v;
    return 0;
}

/* ---- fingerprint (format 1) ----------------------------------------------------------- */

static const char *
type_name1(kith_type t)
{
    static const char *const names[] = {"null",  "string",    "integer", "time", "boolean",
                                        "bytes", "reference", "date",    "enum", "set"};
    if ((unsigned)t < sizeof names / sizeof names[0])
        return names[t];
    return "unknown";
}

/*
 * The canonical description, one line per collection and per field, "\n"-terminated:
 *   kith-schema 1
 *   collection <index> <name> <nfields>
 *   field <number> <name> <type name> <required 0|1> <max_len> <ref collection or -> <enum
 *   values joined by ',' or ->
 */
void
kith_schema_fingerprint(uint8_t out[KITH_HASH_BYTES])
{
    crypto_generichash_state st;
    char line[512];
    size_t ncoll;
    const kith_collection_def *collections = kith_schema(&ncoll);
    int rc = crypto_generichash_init(&st, NULL, 0, KITH_HASH_BYTES);
    if (rc != 0)
        goto out_fail;
    int n = snprintf(line, sizeof line, "kith-schema 1\n");
    rc = crypto_generichash_update(&st, (const unsigned char *)line, (size_t)n);
    for (size_t c = 0; c < ncoll && rc == 0; c++) {
        const kith_collection_def *cd = &collections[c];
        n = snprintf(line, sizeof line, "collection %zu %s %zu\n", c, cd->name, cd->nfields);
        rc = crypto_generichash_update(&st, (const unsigned char *)line, (size_t)n);
        for (size_t f = 0; f < cd->nfields && rc == 0; f++) {
            const kith_field_def *fd = &cd->fields[f];
            char enums[256] = "-";
            size_t used = 0;
            for (const char *const *e = fd->enum_values; e && *e; e++) {
                int k = snprintf(enums + used, sizeof enums - used, "%s%s", used ? "," : "", *e);
                if (k > 0 && (size_t)k < sizeof enums - used)
                    used += (size_t)k;
            }
            n = snprintf(line, sizeof line, "field %zu %s %s %d %zu %s %s\n", f + 1, fd->name,
                         type_name1(fd->type), fd->required ? 1 : 0, fd->max_len,
                         fd->ref_collection ? fd->ref_collection : "-", enums);
            if (n < 0 || (size_t)n >= sizeof line)
                goto out_fail;
            rc = crypto_generichash_update(&st, (const unsigned char *)line, (size_t)n);
        }
    }
    if (rc == 0)
        rc = crypto_generichash_final(&st, out, KITH_HASH_BYTES);
    if (rc == 0)
        return;
out_fail:
    /* BLAKE2b with these parameters cannot fail; should it, no two schemas must look alike. */
    memset(out, 0, KITH_HASH_BYTES);
}
