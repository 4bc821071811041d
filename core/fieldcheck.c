/*
 * fieldcheck.c — the checks a local write passes against its field's declaration
 * (spec/data-model.md "Checks"): the value's type, required fields, lengths, UTF-8 without
 * NUL, enum membership, real dates, times in the years 0001..9999, integer bounds, the e-mail
 * rule, and the form of a set's elements.
 *
 * These are the rules and the messages kith has always had; they now read everything from a
 * struct kith__field_decl instead of the static table, so a declared field gets exactly the
 * checks and the wording a built-in one had. Messages are "<field>: <problem>", fixed text an
 * app may show as it is. Whether a referenced document exists is the store's part.
 */
#include "schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Times are accepted from 0001-01-01T00:00:00.000Z to 9999-12-31T23:59:59.999Z. */
#define TIME_MIN_MS (-62135596800000LL)
#define TIME_MAX_MS (253402300799999LL)

/* Type names as messages have always shown them ("expected reference, got string"). */
static const char *const shown_types[] = {"null",  "string",    "integer", "time", "boolean",
                                          "bytes", "reference", "date",    "enum", "set"};

static const char *
shown_type(kith_type t)
{
    if ((unsigned)t < sizeof shown_types / sizeof shown_types[0])
        return shown_types[t];
    return "unknown";
}

static int fail(const struct kith__field_decl *f, char *why, size_t why_cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Write "field: message" into why (may be NULL) and return KITH_ESCHEMA. */
static int
fail(const struct kith__field_decl *f, char *why, size_t why_cap, const char *fmt, ...)
{
    if (why && why_cap > 0) {
        int n = snprintf(why, why_cap, "%s: ", f ? f->name : "value");
        if (n >= 0 && (size_t)n < why_cap) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(why + n, why_cap - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return KITH_ESCHEMA;
}

/* The longest text or bytes the field takes: its max, else what an op can carry. */
static size_t
max_len(const struct kith__field_decl *f)
{
    return f->max_len ? f->max_len : KITH__MAX_VALUE_BYTES;
}

static int
check_email(const struct kith__field_decl *f, const char *s, size_t len, char *why, size_t why_cap)
{
    const char *at = len ? memchr(s, '@', len) : NULL;
    if (!at || at == s || at == s + len - 1 || memchr(at + 1, '@', len - (size_t)(at - s) - 1))
        return fail(f, why, why_cap, "must contain one '@' with text on both sides");
    return 0;
}

/* The common text checks: length, no NUL, UTF-8. */
static int
check_text(const struct kith__field_decl *f, const char *s, size_t len, char *why, size_t why_cap)
{
    if (len > 0 && !s)
        return fail(f, why, why_cap, "missing text");
    if (len > max_len(f))
        return fail(f, why, why_cap, "longer than %zu bytes", max_len(f));
    if (len > 0 && memchr(s, '\0', len))
        return fail(f, why, why_cap, "contains a NUL byte");
    if (!kith__utf8_valid(s, len))
        return fail(f, why, why_cap, "not valid UTF-8");
    return 0;
}

static int
check_date(const struct kith__field_decl *f, const char *s, size_t len, char *why, size_t why_cap)
{
    char reason[128];
    if (kith__date_check(s, len, reason, sizeof reason) < 0)
        return fail(f, why, why_cap, "%s", reason);
    return 0;
}

static int
check_enum(const struct kith__field_decl *f, const char *s, size_t len, char *why, size_t why_cap)
{
    if (len > 0 && !s)
        return fail(f, why, why_cap, "missing text");
    for (size_t i = 0; i < f->nenum; i++)
        if (strlen(f->enum_values[i]) == len && memcmp(f->enum_values[i], s, len) == 0)
            return 0;
    char list[256];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < f->nenum; i++) {
        int n =
            snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", f->enum_values[i]);
        if (n < 0 || (size_t)n >= sizeof list - used)
            break;
        used += (size_t)n;
    }
    return fail(f, why, why_cap, "must be one of %s", list);
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

/* One element of a set field, given as its text in a STRING value. */
static int
check_element(const struct kith__field_decl *f, const kith_value *v, char *why, size_t why_cap)
{
    if (v->type != KITH_TYPE_STRING)
        return fail(f, why, why_cap, "is a set: add or remove elements");
    const char *s = v->u.s.ptr;
    size_t len = v->u.s.len;
    switch (f->type) {
    case KITH_TYPE_REF:
        if (!is_docid_hex(s, len))
            return fail(f, why, why_cap,
                        "element must be a document id (32 lowercase hex characters)");
        return 0;
    case KITH_TYPE_ENUM:
        return check_enum(f, s, len, why, why_cap);
    case KITH_TYPE_DATE:
        return check_date(f, s, len, why, why_cap);
    case KITH_TYPE_STRING: {
        if (len == 0 || len > max_len(f))
            return fail(f, why, why_cap, "element must be 1 to %zu bytes", max_len(f));
        int rc = check_text(f, s, len, why, why_cap);
        if (rc == 0 && f->email)
            rc = check_email(f, s, len, why, why_cap);
        return rc;
    }
    default:
        return fail(f, why, why_cap, "unsupported element type");
    }
}

/* A value for an LWW register of f's type (not NULL). */
static int
check_register(const struct kith__field_decl *f, const kith_value *v, char *why, size_t why_cap)
{
    int rc;
    switch (f->type) {
    case KITH_TYPE_STRING:
        rc = check_text(f, v->u.s.ptr, v->u.s.len, why, why_cap);
        if (rc < 0)
            return rc;
        if (f->required && v->u.s.len == 0)
            return fail(f, why, why_cap, "is required and cannot be empty");
        if (f->email)
            return check_email(f, v->u.s.ptr, v->u.s.len, why, why_cap);
        return 0;
    case KITH_TYPE_BYTES:
        if (v->u.s.len > 0 && !v->u.s.ptr)
            return fail(f, why, why_cap, "missing bytes");
        if (v->u.s.len > max_len(f))
            return fail(f, why, why_cap, "longer than %zu bytes", max_len(f));
        return 0;
    case KITH_TYPE_DATE:
        if (v->u.s.len > 0 && !v->u.s.ptr)
            return fail(f, why, why_cap, "missing text");
        return check_date(f, v->u.s.ptr, v->u.s.len, why, why_cap);
    case KITH_TYPE_ENUM:
        return check_enum(f, v->u.s.ptr, v->u.s.len, why, why_cap);
    case KITH_TYPE_TIME:
        if (v->u.i < TIME_MIN_MS || v->u.i > TIME_MAX_MS)
            return fail(f, why, why_cap, "time outside the years 0001 to 9999");
        return 0;
    case KITH_TYPE_INT:
        if (f->has_min && v->u.i < f->min)
            return fail(f, why, why_cap, "must be at least %lld", (long long)f->min);
        if (f->has_max && v->u.i > f->max)
            return fail(f, why, why_cap, "must be at most %lld", (long long)f->max);
        return 0;
    case KITH_TYPE_BOOL:
    case KITH_TYPE_REF:
        return 0;
    default:
        return fail(f, why, why_cap, "unsupported type");
    }
}

int
kith__field_check(const struct kith__field_decl *f, const kith_value *v, char *why, size_t why_cap)
{
    if (why && why_cap)
        why[0] = '\0';
    if (!f)
        return fail(NULL, why, why_cap, "no such field");
    if (!v)
        return fail(f, why, why_cap, "missing value");
    switch (f->crdt) {
    case KITH__CRDT_SET:
        return check_element(f, v, why, why_cap);
    case KITH__CRDT_COUNTER:
        if (v->type != KITH_TYPE_INT)
            return fail(f, why, why_cap, "is a counter: expected an integer to add, got %s",
                        shown_type(v->type));
        return 0;
    case KITH__CRDT_FLAG:
        if (v->type != KITH_TYPE_BOOL)
            return fail(f, why, why_cap, "is a flag: expected a boolean, got %s",
                        shown_type(v->type));
        return 0;
    case KITH__CRDT_LWW:
        break;
    default:
        return fail(f, why, why_cap, "unsupported crdt");
    }
    if (v->type == KITH_TYPE_NULL) {
        if (f->required)
            return fail(f, why, why_cap, "is required and cannot be cleared");
        return 0;
    }
    if (v->type != f->type)
        return fail(f, why, why_cap, "expected %s, got %s", shown_type(f->type),
                    shown_type(v->type));
    return check_register(f, v, why, why_cap);
}
