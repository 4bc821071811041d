/*
 * types.c — the one table of value types: for each kith_type a value can have, its stored
 * form, its order and index-key form, its text form and its JSON form (spec/data-model.md
 * "Field types", spec/storage.md "regs", spec/export.md "Values").
 *
 * Every place that turns a value into bytes or text reads the row of its type here, so a new
 * type is one new row (Redis `dictType`, SQLite's opcode table). The forms are the ones kith
 * has always written, byte for byte: the stored form is the LMDB register value (a type byte,
 * then the payload), the index-key form is what the store's indexes hold (strings cut at 400
 * bytes and ended by 0x00, integers and times big-endian with the sign bit flipped, so that
 * memcmp order is value order), the text form is the CLI's, and the JSON form is the export's,
 * escaped exactly as jansson escapes (checked against jansson in tests/test_types.c) but
 * written without building a jansson tree. Pure functions over memory: no allocation except
 * the caller's output buffer.
 */
#include "schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INDEX_STRING_MAX 400 /* string bytes kept in an index key (LMDB keys are <= 511) */
#define JSON_SAFE_INT 9007199254740992ll /* 2^53: larger integers are exported as strings */

static const char hexdigits[] = "0123456789abcdef";

/* Write why (may be NULL) and return KITH_ESCHEMA. */
static int
reason(char *why, size_t why_cap, const char *text)
{
    if (why && why_cap > 0)
        snprintf(why, why_cap, "%s", text);
    return KITH_ESCHEMA;
}

/* Copy n bytes of s into out as a NUL-terminated string, cut to fit cap. */
static void
copy_out(char *out, size_t cap, const char *s, size_t n)
{
    if (cap == 0)
        return;
    if (n > cap - 1)
        n = cap - 1;
    if (n > 0)
        memcpy(out, s, n);
    out[n] = '\0';
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

/*
 * Is s[0..len) well-formed UTF-8 (RFC 3629)? Refuses overlong forms, surrogates
 * (U+D800..U+DFFF), code points above U+10FFFF and truncated sequences. NUL is valid
 * UTF-8; the schema refuses it separately.
 */
bool
kith__utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint64_t w;
        if (len - i >= 8 && (memcpy(&w, p + i, 8), (w & 0x8080808080808080ull) == 0)) {
            i += 8; /* eight ASCII bytes at once: most text is ASCII */
            continue;
        }
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xbf; /* range of the first continuation byte */
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            if (c == 0xe0)
                lo = 0xa0; /* overlong below U+0800 */
            else if (c == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            if (c == 0xf0)
                lo = 0x90; /* overlong below U+10000 */
            else if (c == 0xf4)
                hi = 0x8f; /* above U+10FFFF */
        } else {
            return false; /* continuation byte, C0/C1 overlongs, F5..FF */
        }
        if (len - i <= need)
            return false;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= need; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
        i += need + 1;
    }
    return true;
}

/* ---- dates ---------------------------------------------------------------------------- */

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

int
kith__date_check(const char *s, size_t len, char *why, size_t why_cap)
{
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y = 0, m, d;
    if (len > 0 && !s)
        return reason(why, why_cap, "missing text");
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
        return reason(why, why_cap, "not a date (YYYY-MM-DD or --MM-DD)");
    }
    bool ok = m >= 1 && m <= 12 && d >= 1 && d <= mdays[m - 1];
    if (ok && len == 10)
        ok = y >= 1 && !(m == 2 && d == 29 && !is_leap(y));
    if (!ok) {
        if (why && why_cap > 0)
            snprintf(why, why_cap, "%.*s is not a date", (int)len, s);
        return KITH_ESCHEMA;
    }
    return 0;
}

/* ---- JSON strings --------------------------------------------------------------------- */

/*
 * Append s[0..len) as a JSON string, escaped as jansson's dump escapes it (spec/export.md
 * "Canonical form"): '"' and '\\' and the control characters below 0x20 (\b \f \n \r \t by
 * name, the others as \u00XX with capital hex digits); everything else, '/' and non-ASCII
 * included, as it is. KITH_EINVAL for text that is not UTF-8, which JSON cannot carry.
 */
static int
json_string(const char *s, size_t len, struct kith__wbuf *out)
{
    if (len > 0 && !s)
        return KITH_EINVAL;
    if (!kith__utf8_valid(s, len))
        return KITH_EINVAL;
    /* at most 6 bytes per input byte, and the quotes */
    if (len > (SIZE_MAX - 2) / 6)
        return KITH_ENOMEM;
    int rc = kith__wbuf_reserve(out, 6 * len + 2);
    if (rc < 0)
        return rc;
    uint8_t *p = out->data + out->len;
    *p++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = c;
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *p++ = c;
            break;
        case '\b':
            *p++ = 'b';
            break;
        case '\f':
            *p++ = 'f';
            break;
        case '\n':
            *p++ = 'n';
            break;
        case '\r':
            *p++ = 'r';
            break;
        case '\t':
            *p++ = 't';
            break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = (uint8_t) "0123456789ABCDEF"[c >> 4];
            *p++ = (uint8_t) "0123456789ABCDEF"[c & 15];
            break;
        }
    }
    *p++ = '"';
    out->len = (size_t)(p - out->data);
    return 0;
}

/* Append `"<hex of p[0..n)>"`. */
static int
json_hex(const uint8_t *p, size_t n, struct kith__wbuf *out)
{
    if (n > (SIZE_MAX - 2) / 2)
        return KITH_ENOMEM;
    int rc = kith__wbuf_reserve(out, 2 * n + 2);
    if (rc < 0)
        return rc;
    uint8_t *o = out->data + out->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        *o++ = (uint8_t)hexdigits[p[i] >> 4];
        *o++ = (uint8_t)hexdigits[p[i] & 15];
    }
    *o++ = '"';
    out->len = (size_t)(o - out->data);
    return 0;
}

static int
put_str(struct kith__wbuf *out, const char *s)
{
    return kith__wbuf_put(out, s, strlen(s));
}

/* ---- NULL ----------------------------------------------------------------------------- */

static size_t
null_size(const kith_value *v)
{
    (void)v;
    return 0;
}

static void
null_store(const kith_value *v, uint8_t *out)
{
    (void)v;
    (void)out;
}

static int
null_load(const uint8_t *p, size_t n, kith_value *v)
{
    (void)p;
    (void)v;
    return n == 0 ? 0 : KITH_ECORRUPT;
}

static int
null_cmp(const kith_value *a, const kith_value *b)
{
    (void)a;
    (void)b;
    return 0;
}

static size_t
null_index_key(const kith_value *v, uint8_t *out, size_t cap)
{
    (void)v;
    (void)out;
    (void)cap;
    return 0;
}

static int
null_parse(const char *text, kith_value *v, char *why, size_t why_cap)
{
    (void)v;
    if (text[0] != '\0')
        return reason(why, why_cap, "no value is written as empty text");
    return 0;
}

static void
null_format(const kith_value *v, char *out, size_t cap)
{
    (void)v;
    copy_out(out, cap, "", 0);
}

static int
null_json(const kith_value *v, struct kith__wbuf *out)
{
    (void)v;
    return put_str(out, "null");
}

/* ---- byte strings: STRING, DATE, ENUM, BYTES -------------------------------------------- */

static size_t
str_size(const kith_value *v)
{
    return v->u.s.len;
}

static void
str_store(const kith_value *v, uint8_t *out)
{
    if (v->u.s.len > 0)
        memcpy(out, v->u.s.ptr, v->u.s.len);
}

static int
str_load(const uint8_t *p, size_t n, kith_value *v)
{
    v->u.s.ptr = (const char *)p;
    v->u.s.len = n;
    return 0;
}

/* Bytes in unsigned order, a prefix before the longer string. */
static int
str_cmp(const kith_value *a, const kith_value *b)
{
    size_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
    int c = n > 0 ? memcmp(a->u.s.ptr, b->u.s.ptr, n) : 0;
    if (c != 0)
        return c < 0 ? -1 : 1;
    return a->u.s.len < b->u.s.len ? -1 : a->u.s.len > b->u.s.len;
}

/* The first 400 bytes (fewer when cap is smaller), then a 0x00: a prefix sorts first. */
static size_t
str_index_key(const kith_value *v, uint8_t *out, size_t cap)
{
    size_t n = v->u.s.len;
    if (cap == 0)
        return 0;
    if (n > INDEX_STRING_MAX)
        n = INDEX_STRING_MAX;
    if (n > cap - 1)
        n = cap - 1;
    if (n > 0)
        memcpy(out, v->u.s.ptr, n);
    out[n] = 0;
    return n + 1;
}

/* STRING and ENUM: the text as it is (the field's check decides whether it fits). */
static int
text_parse(const char *text, kith_value *v, char *why, size_t why_cap)
{
    (void)why;
    (void)why_cap;
    v->u.s.ptr = text;
    v->u.s.len = strlen(text);
    return 0;
}

static int
date_parse(const char *text, kith_value *v, char *why, size_t why_cap)
{
    size_t len = strlen(text);
    int rc = kith__date_check(text, len, why, why_cap);
    if (rc < 0)
        return rc;
    v->u.s.ptr = text;
    v->u.s.len = len;
    return 0;
}

static void
text_format(const kith_value *v, char *out, size_t cap)
{
    copy_out(out, cap, v->u.s.ptr, v->u.s.len);
}

static int
text_json(const kith_value *v, struct kith__wbuf *out)
{
    return json_string(v->u.s.ptr, v->u.s.len, out);
}

/* Bytes have no text form that a value could point into. */
static int
bytes_parse(const char *text, kith_value *v, char *why, size_t why_cap)
{
    (void)text;
    (void)v;
    return reason(why, why_cap, "bytes cannot be given as text");
}

/* Lowercase hex, cut to whole bytes that fit. */
static void
bytes_format(const kith_value *v, char *out, size_t cap)
{
    const uint8_t *p = (const uint8_t *)v->u.s.ptr;
    size_t i = 0;
    if (cap == 0)
        return;
    for (; i < v->u.s.len && 2 * i + 2 < cap; i++) {
        out[2 * i] = hexdigits[p[i] >> 4];
        out[2 * i + 1] = hexdigits[p[i] & 15];
    }
    out[2 * i] = '\0';
}

static int
bytes_json(const kith_value *v, struct kith__wbuf *out)
{
    if (v->u.s.len > 0 && !v->u.s.ptr)
        return KITH_EINVAL;
    return json_hex((const uint8_t *)v->u.s.ptr, v->u.s.len, out);
}

/* ---- 64-bit integers: INT, TIME ------------------------------------------------------- */

static size_t
i64_size(const kith_value *v)
{
    (void)v;
    return 8;
}

static void
i64_store(const kith_value *v, uint8_t *out)
{
    kith__be64_put(out, (uint64_t)v->u.i);
}

static int
i64_load(const uint8_t *p, size_t n, kith_value *v)
{
    if (n != 8)
        return KITH_ECORRUPT;
    v->u.i = (int64_t)kith__be64_get(p);
    return 0;
}

static int
i64_cmp(const kith_value *a, const kith_value *b)
{
    return a->u.i < b->u.i ? -1 : a->u.i > b->u.i;
}

/* Big-endian with the sign bit flipped: unsigned byte order is signed value order. */
static size_t
i64_index_key(const kith_value *v, uint8_t *out, size_t cap)
{
    if (cap < 8)
        return 0;
    kith__be64_put(out, (uint64_t)v->u.i ^ (1ull << 63));
    return 8;
}

static int
int_parse(const char *text, kith_value *v, char *why, size_t why_cap)
{
    char *end = NULL;
    errno = 0;
    long long n = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' ||
        !(text[0] == '-' || (text[0] >= '0' && text[0] <= '9')))
        return reason(why, why_cap, "not a decimal integer");
    v->u.i = (int64_t)n;
    return 0;
}

static void
int_format(const kith_value *v, char *out, size_t cap)
{
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%lld", (long long)v->u.i);
    copy_out(out, cap, buf, n > 0 ? (size_t)n : 0);
}

/* A number while a double holds it exactly, else a string of decimal digits. */
static int
int_json(const kith_value *v, struct kith__wbuf *out)
{
    char buf[32];
    int n;
    if (v->u.i >= -JSON_SAFE_INT && v->u.i <= JSON_SAFE_INT)
        n = snprintf(buf, sizeof buf, "%lld", (long long)v->u.i);
    else
        n = snprintf(buf, sizeof buf, "\"%lld\"", (long long)v->u.i);
    return kith__wbuf_put(out, buf, (size_t)n);
}

static int
time_parse(const char *text, kith_value *v, char *why, size_t why_cap)
{
    if (kith__time_parse(text, &v->u.i) < 0)
        return reason(why, why_cap, "not a time (ISO 8601, e.g. 2026-11-25T18:00:00Z)");
    return 0;
}

static void
time_format(const kith_value *v, char *out, size_t cap)
{
    char buf[32];
    kith__time_format(v->u.i, buf);
    copy_out(out, cap, buf, strlen(buf));
}

static int
time_json(const kith_value *v, struct kith__wbuf *out)
{
    char buf[34];
    buf[0] = '"';
    kith__time_format(v->u.i, buf + 1);
    size_t n = strlen(buf);
    buf[n] = '"';
    return kith__wbuf_put(out, buf, n + 1);
}

/* ---- BOOL ----------------------------------------------------------------------------- */

static size_t
bool_size(const kith_value *v)
{
    (void)v;
    return 1;
}

static void
bool_store(const kith_value *v, uint8_t *out)
{
    out[0] = v->u.b ? 1 : 0;
}

static int
bool_load(const uint8_t *p, size_t n, kith_value *v)
{
    if (n != 1 || p[0] > 1)
        return KITH_ECORRUPT;
    v->u.b = p[0] != 0;
    return 0;
}

static int
bool_cmp(const kith_value *a, const kith_value *b)
{
    return (int)a->u.b - (int)b->u.b;
}

static size_t
bool_index_key(const kith_value *v, uint8_t *out, size_t cap)
{
    if (cap < 1)
        return 0;
    out[0] = v->u.b ? 1 : 0;
    return 1;
}

static int
bool_parse(const char *text, kith_value *v, char *why, size_t why_cap)
{
    if (strcmp(text, "true") == 0)
        v->u.b = true;
    else if (strcmp(text, "false") == 0)
        v->u.b = false;
    else
        return reason(why, why_cap, "not a boolean (true or false)");
    return 0;
}

static void
bool_format(const kith_value *v, char *out, size_t cap)
{
    const char *s = v->u.b ? "true" : "false";
    copy_out(out, cap, s, strlen(s));
}

static int
bool_json(const kith_value *v, struct kith__wbuf *out)
{
    return put_str(out, v->u.b ? "true" : "false");
}

/* ---- REF ------------------------------------------------------------------------------ */

static size_t
ref_size(const kith_value *v)
{
    (void)v;
    return KITH_DOCID_BYTES;
}

static void
ref_store(const kith_value *v, uint8_t *out)
{
    memcpy(out, v->u.ref.bytes, KITH_DOCID_BYTES);
}

static int
ref_load(const uint8_t *p, size_t n, kith_value *v)
{
    if (n != KITH_DOCID_BYTES)
        return KITH_ECORRUPT;
    memcpy(v->u.ref.bytes, p, KITH_DOCID_BYTES);
    return 0;
}

static int
ref_cmp(const kith_value *a, const kith_value *b)
{
    int c = memcmp(a->u.ref.bytes, b->u.ref.bytes, KITH_DOCID_BYTES);
    return c < 0 ? -1 : c > 0;
}

static size_t
ref_index_key(const kith_value *v, uint8_t *out, size_t cap)
{
    if (cap < KITH_DOCID_BYTES)
        return 0;
    memcpy(out, v->u.ref.bytes, KITH_DOCID_BYTES);
    return KITH_DOCID_BYTES;
}

static int
ref_parse(const char *text, kith_value *v, char *why, size_t why_cap)
{
    if (kith_docid_parse(text, &v->u.ref) < 0)
        return reason(why, why_cap, "not a document id (32 lowercase hex characters)");
    return 0;
}

static void
ref_format(const kith_value *v, char *out, size_t cap)
{
    char buf[KITH_DOCID_HEX + 1];
    kith_docid_format(&v->u.ref, buf);
    copy_out(out, cap, buf, KITH_DOCID_HEX);
}

static int
ref_json(const kith_value *v, struct kith__wbuf *out)
{
    return json_hex(v->u.ref.bytes, KITH_DOCID_BYTES, out);
}

/* ---- the table ------------------------------------------------------------------------ */

#define STRING_LIKE str_size, str_store, str_load, str_cmp, str_index_key
#define I64_LIKE i64_size, i64_store, i64_load, i64_cmp, i64_index_key

/* Indexed by kith_type; KITH_TYPE_SET (9) has no row. */
static const struct kith__type types[] = {
    {KITH_TYPE_NULL, "null", null_size, null_store, null_load, null_cmp, null_index_key, null_parse,
     null_format, null_json},
    {KITH_TYPE_STRING, "string", STRING_LIKE, text_parse, text_format, text_json},
    {KITH_TYPE_INT, "integer", I64_LIKE, int_parse, int_format, int_json},
    {KITH_TYPE_TIME, "time", I64_LIKE, time_parse, time_format, time_json},
    {KITH_TYPE_BOOL, "boolean", bool_size, bool_store, bool_load, bool_cmp, bool_index_key,
     bool_parse, bool_format, bool_json},
    {KITH_TYPE_BYTES, "bytes", STRING_LIKE, bytes_parse, bytes_format, bytes_json},
    {KITH_TYPE_REF, "ref", ref_size, ref_store, ref_load, ref_cmp, ref_index_key, ref_parse,
     ref_format, ref_json},
    {KITH_TYPE_DATE, "date", STRING_LIKE, date_parse, text_format, text_json},
    {KITH_TYPE_ENUM, "enum", STRING_LIKE, text_parse, text_format, text_json},
};

#define NTYPES (sizeof types / sizeof types[0])

const struct kith__type *
kith__type_of(kith_type t)
{
    if ((unsigned)t >= NTYPES)
        return NULL;
    return &types[t];
}

int
kith__type_by_name(const char *name, kith_type *out)
{
    if (!name)
        return KITH_ENOTFOUND;
    for (size_t i = 0; i < NTYPES; i++)
        if (strcmp(types[i].name, name) == 0) {
            if (out)
                *out = types[i].type;
            return 0;
        }
    return KITH_ENOTFOUND;
}

/* ---- values --------------------------------------------------------------------------- */

/* A value of a type without a row is stored as NULL, as the register layout always did. */
size_t
kith__value_stored_size(const kith_value *v)
{
    const struct kith__type *t = kith__type_of(v->type);
    return 1 + (t ? t->stored_size(v) : 0);
}

void
kith__value_store(const kith_value *v, uint8_t *out)
{
    const struct kith__type *t = kith__type_of(v->type);
    if (!t) {
        out[0] = KITH_TYPE_NULL;
        return;
    }
    out[0] = (uint8_t)v->type;
    t->store(v, out + 1);
}

int
kith__value_load(const uint8_t *p, size_t n, kith_value *v)
{
    memset(v, 0, sizeof *v);
    if (n < 1)
        return KITH_ECORRUPT;
    const struct kith__type *t = kith__type_of((kith_type)p[0]);
    if (!t)
        return KITH_ECORRUPT;
    v->type = t->type;
    int rc = t->load(p + 1, n - 1, v);
    if (rc < 0)
        memset(v, 0, sizeof *v);
    return rc;
}

int
kith__value_cmp(const kith_value *a, const kith_value *b)
{
    if (a->type != b->type)
        return (unsigned)a->type < (unsigned)b->type ? -1 : 1;
    const struct kith__type *t = kith__type_of(a->type);
    return t ? t->cmp(a, b) : 0;
}

int
kith__value_json(const kith_value *v, struct kith__wbuf *out)
{
    const struct kith__type *t = kith__type_of(v->type);
    if (!t)
        return KITH_EINVAL;
    return t->json(v, out);
}
