/*
 * schema.c — the built-in CRM schema (contacts, interactions, reminders) as one static table,
 * and the checks every value passes before it is written or accepted from a peer.
 *
 * The table is the single source: collection numbers are indexes into it (from 0), field
 * numbers are indexes into a collection's fields plus one (0 is the document's membership in
 * op encodings), and the fingerprint that peers compare in their handshake is a hash of a
 * canonical text rendering of it. A rule the table cannot express (an e-mail address needs
 * one '@') sits in a small table of extra checks beside it. Checks are pure functions; their
 * messages name the field and the problem ("email: not valid UTF-8") so that an app or the
 * CLI can show them unchanged. spec/data-model.md "Schema" states the same rules with ids.
 *
 * libsodium is used here for BLAKE2b only (the fingerprint).
 */
#include "core.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the table ------------------------------------------------------------------------ */

static const char *const interaction_kinds[] = {"call",  "meeting", "message",
                                                "email", "note",    NULL};

static const kith_field_def contact_fields[] = {
    {.name = "name", .type = KITH_TYPE_STRING, .required = true, .max_len = 256},
    {.name = "email", .type = KITH_TYPE_STRING, .max_len = 320},
    {.name = "phone", .type = KITH_TYPE_STRING, .max_len = 64},
    {.name = "company", .type = KITH_TYPE_STRING, .max_len = 256},
    {.name = "notes", .type = KITH_TYPE_STRING, .max_len = 16384},
    {.name = "birthday", .type = KITH_TYPE_DATE, .max_len = 10},
    {.name = "tags", .type = KITH_TYPE_SET, .max_len = 64},
};

static const kith_field_def interaction_fields[] = {
    {.name = "contact", .type = KITH_TYPE_REF, .required = true, .ref_collection = "contacts"},
    {.name = "kind", .type = KITH_TYPE_ENUM, .required = true, .enum_values = interaction_kinds},
    {.name = "at", .type = KITH_TYPE_TIME, .required = true},
    {.name = "summary", .type = KITH_TYPE_STRING, .max_len = 4096},
    {.name = "participants",
     .type = KITH_TYPE_SET,
     .ref_collection = "contacts",
     .max_len = KITH_DOCID_HEX},
};

static const kith_field_def reminder_fields[] = {
    {.name = "contact", .type = KITH_TYPE_REF, .ref_collection = "contacts"},
    {.name = "due", .type = KITH_TYPE_TIME, .required = true},
    {.name = "text", .type = KITH_TYPE_STRING, .required = true, .max_len = 4096},
    {.name = "done", .type = KITH_TYPE_BOOL},
};

#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

static const kith_collection_def collections[] = {
    {.name = "contacts", .nfields = NFIELDS(contact_fields), .fields = contact_fields},
    {.name = "interactions", .nfields = NFIELDS(interaction_fields), .fields = interaction_fields},
    {.name = "reminders", .nfields = NFIELDS(reminder_fields), .fields = reminder_fields},
};

#define NCOLL ((int)NFIELDS(collections))

/* Times are accepted from 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z. */
#define TIME_MIN_MS (-62135596800000LL)
#define TIME_MAX_MS (253402300799999LL)

/* Rules the table cannot express, by (collection, field number). */
static int check_email(const kith_field_def *def, const char *s, size_t len, char *why,
                       size_t why_cap);

static const struct extra_rule {
    int coll, field;
    int (*check)(const kith_field_def *def, const char *s, size_t len, char *why, size_t why_cap);
} extra_rules[] = {
    {0, 2, check_email},
};

/* ---- lookups -------------------------------------------------------------------------- */

const kith_collection_def *
kith_schema(size_t *ncollections)
{
    if (ncollections)
        *ncollections = (size_t)NCOLL;
    return collections;
}

int
kith__schema_ncoll(void)
{
    return NCOLL;
}

int
kith__schema_coll(const char *name)
{
    if (!name)
        return KITH_ENOTFOUND;
    for (int i = 0; i < NCOLL; i++)
        if (strcmp(collections[i].name, name) == 0)
            return i;
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
    if (coll < 0 || coll >= NCOLL)
        return NULL;
    return &collections[coll];
}

const kith_field_def *
kith__schema_field_def(int coll, int field)
{
    const kith_collection_def *c = kith__schema_coll_def(coll);
    if (!c || field < 1 || (size_t)field > c->nfields)
        return NULL;
    return &c->fields[field - 1];
}

/* ---- checks --------------------------------------------------------------------------- */

static const char *const type_names[] = {"null",  "string",    "integer", "time", "boolean",
                                         "bytes", "reference", "date",    "enum", "set"};

static const char *
type_name(kith_type t)
{
    if ((unsigned)t < NFIELDS(type_names))
        return type_names[t];
    return "unknown";
}

/* Write "field: message" into why (may be NULL) and return KITH_ESCHEMA. */
static int fail(const kith_field_def *def, char *why, size_t why_cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(const kith_field_def *def, char *why, size_t why_cap, const char *fmt, ...)
{
    if (why && why_cap > 0) {
        int n = snprintf(why, why_cap, "%s: ", def ? def->name : "value");
        if (n >= 0 && (size_t)n < why_cap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(why + n, why_cap - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return KITH_ESCHEMA;
}

static int
check_email(const kith_field_def *def, const char *s, size_t len, char *why, size_t why_cap)
{
    const char *at = memchr(s, '@', len);
    if (!at || at == s || at == s + len - 1 || memchr(at + 1, '@', len - (size_t)(at - s) - 1))
        return fail(def, why, why_cap, "must contain one '@' with text on both sides");
    return 0;
}

/* The common text checks: UTF-8, no NUL, length. */
static int
check_text(const kith_field_def *def, const char *s, size_t len, char *why, size_t why_cap)
{
    if (len > 0 && !s)
        return fail(def, why, why_cap, "missing text");
    if (def->max_len && len > def->max_len)
        return fail(def, why, why_cap, "longer than %zu bytes", def->max_len);
    if (len > 0 && memchr(s, '\0', len))
        return fail(def, why, why_cap, "contains a NUL byte");
    if (!kith__utf8_valid(s, len))
        return fail(def, why, why_cap, "not valid UTF-8");
    return 0;
}

static bool
is_leap(unsigned y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned
two_digits(const char *s)
{
    return (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
}

static bool
all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* DATE: "YYYY-MM-DD" (year 0001..9999, a real calendar day) or "--MM-DD" (a day that exists
 * in some year, so --02-29 is accepted). */
static int
check_date(const kith_field_def *def, const char *s, size_t len, char *why, size_t why_cap)
{
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y = 0, m, d;
    if (len == 10 && all_digits(s, 4) && s[4] == '-' && all_digits(s + 5, 2) && s[7] == '-' &&
        all_digits(s + 8, 2)) {
        y = two_digits(s) * 100 + two_digits(s + 2);
        m = two_digits(s + 5);
        d = two_digits(s + 8);
    } else if (len == 7 && s[0] == '-' && s[1] == '-' && all_digits(s + 2, 2) && s[4] == '-' &&
               all_digits(s + 5, 2)) {
        m = two_digits(s + 2);
        d = two_digits(s + 5);
    } else {
        return fail(def, why, why_cap, "not a date (YYYY-MM-DD or --MM-DD)");
    }
    bool ok = m >= 1 && m <= 12 && d >= 1 && d <= mdays[m - 1];
    if (ok && len == 10)
        ok = y >= 1 && !(m == 2 && d == 29 && !is_leap(y));
    if (!ok)
        return fail(def, why, why_cap, "%.*s is not a date", (int)len, s);
    return 0;
}

static bool
is_docid_hex(const char *s, size_t len)
{
    if (len != KITH_DOCID_HEX || !s)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static int
check_enum(const kith_field_def *def, const char *s, size_t len, char *why, size_t why_cap)
{
    for (const char *const *e = def->enum_values; e && *e; e++)
        if (strlen(*e) == len && memcmp(*e, s, len) == 0)
            return 0;
    char list[256];
    size_t used = 0;
    list[0] = '\0';
    for (const char *const *e = def->enum_values; e && *e; e++) {
        int n = snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *e);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    return fail(def, why, why_cap, "must be one of %s", list);
}

int
kith__schema_check(int coll, int field, const kith_value *v, char *why, size_t why_cap)
{
    const kith_field_def *def = kith__schema_field_def(coll, field);
    if (why && why_cap)
        why[0] = '\0';
    if (!def)
        return fail(NULL, why, why_cap, "no field %d in collection %d", field, coll);
    if (!v)
        return fail(def, why, why_cap, "missing value");
    if (def->type == KITH_TYPE_SET)
        return fail(def, why, why_cap, "is a set: add or remove elements");
    if (v->type == KITH_TYPE_NULL) {
        if (def->required)
            return fail(def, why, why_cap, "is required and cannot be cleared");
        return 0;
    }
    if (v->type != def->type)
        return fail(def, why, why_cap, "expected %s, got %s", type_name(def->type),
                    type_name(v->type));
    int rc;
    switch (def->type) {
    case KITH_TYPE_STRING:
        rc = check_text(def, v->u.s.ptr, v->u.s.len, why, why_cap);
        if (rc < 0)
            return rc;
        if (def->required && v->u.s.len == 0)
            return fail(def, why, why_cap, "is required and cannot be empty");
        for (size_t i = 0; i < NFIELDS(extra_rules); i++)
            if (extra_rules[i].coll == coll && extra_rules[i].field == field) {
                rc = extra_rules[i].check(def, v->u.s.ptr, v->u.s.len, why, why_cap);
                if (rc < 0)
                    return rc;
            }
        return 0;
    case KITH_TYPE_BYTES:
        if (v->u.s.len > 0 && !v->u.s.ptr)
            return fail(def, why, why_cap, "missing bytes");
        if (def->max_len && v->u.s.len > def->max_len)
            return fail(def, why, why_cap, "longer than %zu bytes", def->max_len);
        return 0;
    case KITH_TYPE_DATE:
        if (v->u.s.len > 0 && !v->u.s.ptr)
            return fail(def, why, why_cap, "missing text");
        return check_date(def, v->u.s.ptr, v->u.s.len, why, why_cap);
    case KITH_TYPE_ENUM:
        if (v->u.s.len > 0 && !v->u.s.ptr)
            return fail(def, why, why_cap, "missing text");
        return check_enum(def, v->u.s.ptr, v->u.s.len, why, why_cap);
    case KITH_TYPE_TIME:
        if (v->u.i < TIME_MIN_MS || v->u.i > TIME_MAX_MS)
            return fail(def, why, why_cap, "time outside the years 0001 to 9999");
        return 0;
    case KITH_TYPE_INT:
    case KITH_TYPE_BOOL:
    case KITH_TYPE_REF:
        return 0;
    default:
        return fail(def, why, why_cap, "unsupported type");
    }
}

int
kith__schema_check_elem(int coll, int field, const char *elem, size_t len, char *why,
                        size_t why_cap)
{
    const kith_field_def *def = kith__schema_field_def(coll, field);
    if (why && why_cap)
        why[0] = '\0';
    if (!def)
        return fail(NULL, why, why_cap, "no field %d in collection %d", field, coll);
    if (def->type != KITH_TYPE_SET)
        return fail(def, why, why_cap, "is not a set");
    if (def->ref_collection) {
        if (!is_docid_hex(elem, len))
            return fail(def, why, why_cap,
                        "element must be a document id (32 lowercase hex characters)");
        return 0;
    }
    if (len == 0 || len > def->max_len)
        return fail(def, why, why_cap, "element must be 1 to %zu bytes", def->max_len);
    return check_text(def, elem, len, why, why_cap);
}

/* ---- text -> value -------------------------------------------------------------------- */

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

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
    const kith_field_def *def = kith__schema_field_def(coll, fno);
    size_t len = strlen(text);
    kith_value v;
    memset(&v, 0, sizeof v);

    if (def->type == KITH_TYPE_SET) {
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
        switch (def->type) {
        case KITH_TYPE_STRING:
        case KITH_TYPE_DATE:
        case KITH_TYPE_ENUM:
            v.type = def->type;
            v.u.s.ptr = text;
            v.u.s.len = len;
            break;
        case KITH_TYPE_TIME:
            v.type = KITH_TYPE_TIME;
            if (kith__time_parse(text, &v.u.i) < 0)
                return fail(def, why, why_cap, "not a time (ISO 8601, e.g. 2026-11-25T18:00:00Z)");
            break;
        case KITH_TYPE_BOOL:
            v.type = KITH_TYPE_BOOL;
            if (strcmp(text, "true") == 0)
                v.u.b = true;
            else if (strcmp(text, "false") == 0)
                v.u.b = false;
            else
                return fail(def, why, why_cap, "not a boolean (true or false)");
            break;
        case KITH_TYPE_INT: {
            char *end = NULL;
            errno = 0;
            long long n = strtoll(text, &end, 10);
            if (errno != 0 || end == text || *end != '\0' ||
                !(text[0] == '-' || (text[0] >= '0' && text[0] <= '9')))
                return fail(def, why, why_cap, "not a decimal integer");
            v.type = KITH_TYPE_INT;
            v.u.i = (int64_t)n;
            break;
        }
        case KITH_TYPE_REF:
            if (!is_docid_hex(text, len))
                return fail(def, why, why_cap, "not a document id (32 lowercase hex characters)");
            v.type = KITH_TYPE_REF;
            for (size_t i = 0; i < KITH_DOCID_BYTES; i++)
                v.u.ref.bytes[i] = (uint8_t)(hexval(text[2 * i]) << 4 | hexval(text[2 * i + 1]));
            break;
        case KITH_TYPE_BYTES:
            /* Bytes cannot point into the text; no built-in field has this type. */
            return fail(def, why, why_cap, "bytes cannot be given as text");
        default:
            return fail(def, why, why_cap, "unsupported type");
        }
    }
    int rc = kith__schema_check(coll, fno, &v, why, why_cap);
    if (rc < 0)
        return rc;
    *out = v;
    return 0;
}

/* ---- fingerprint ---------------------------------------------------------------------- */

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
    int rc = crypto_generichash_init(&st, NULL, 0, KITH_HASH_BYTES);
    if (rc != 0)
        goto out_fail;
    int n = snprintf(line, sizeof line, "kith-schema 1\n");
    rc = crypto_generichash_update(&st, (const unsigned char *)line, (size_t)n);
    for (int c = 0; c < NCOLL && rc == 0; c++) {
        const kith_collection_def *cd = &collections[c];
        n = snprintf(line, sizeof line, "collection %d %s %zu\n", c, cd->name, cd->nfields);
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
                         type_name(fd->type), fd->required ? 1 : 0, fd->max_len,
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
