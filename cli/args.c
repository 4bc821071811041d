/*
 * args.c — turning command-line text into values: hex ids and keys, decimal numbers,
 * durations ("30s"), field values through kith_value_parse (the built-in schema) or by the
 * type a replica declared (cli_parse_typed), and document ids given as a unique hex prefix.
 *
 * A document id is the dot that created it, origin first (spec/data-model.md), so the ids of
 * one replica's documents share their first 16 hex digits; a prefix is unique only once it
 * reaches the seq part. Prefixes are resolved by iterating the live documents of the
 * collection in the caller's transaction, so the answer agrees with what the command then
 * writes.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CLI_PREFIX_MIN 6 /* shortest accepted id prefix, in hex digits */

void
cli_hex(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

void
cli_id_hex(uint64_t id, char out[KITH_ID_HEX + 1])
{
    uint8_t be[8];
    for (int i = 0; i < 8; i++)
        be[i] = (uint8_t)(id >> (56 - 8 * i));
    cli_hex(be, 8, out);
}

static int
hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int
cli_unhex(const char *text, uint8_t *out, size_t len)
{
    if (strlen(text) != 2 * len)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int
cli_parse_id(const char *text, uint64_t *out)
{
    uint8_t be[8];
    uint64_t id = 0;
    if (cli_unhex(text, be, 8) < 0)
        return -1;
    for (int i = 0; i < 8; i++)
        id = id << 8 | be[i];
    *out = id;
    return 0;
}

int
cli_parse_u64(const char *text, uint64_t *out)
{
    char *end;
    unsigned long long v;
    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int
cli_parse_duration(const char *text, int *ms)
{
    char *end;
    double v, scale;
    if (!((text[0] >= '0' && text[0] <= '9') || text[0] == '.'))
        return -1;
    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || end == text)
        return -1;
    if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
        scale = 1000;
    else if (strcmp(end, "ms") == 0)
        scale = 1;
    else if (strcmp(end, "m") == 0)
        scale = 60000;
    else if (strcmp(end, "h") == 0)
        scale = 3600000;
    else
        return -1;
    v *= scale;
    if (!(v >= 1 && v <= 2147483647.0)) /* also refuses NaN */
        return -1;
    *ms = (int)v;
    return 0;
}

int64_t
cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
cli_value(const struct cli *c, const char *collection, const char *field, const char *text,
          kith_value *out)
{
    char why[256] = "";
    int rc = kith_value_parse(collection, field, text, out, why, sizeof why);
    if (rc < 0) {
        if (why[0] == '\0')
            return cli_fail(c, "%s: %s", field, kith_strerror(rc));
        /* the library's reason usually names the field already */
        if (strncmp(why, field, strlen(field)) == 0 && why[strlen(field)] == ':')
            return cli_fail(c, "%s", why);
        return cli_fail(c, "%s: %s", field, why);
    }
    return CLI_OK;
}

/* The singular of a collection name for messages: "contacts" -> "contact". */
static int
noun_len(const char *collection)
{
    size_t n = strlen(collection);
    return (int)(n > 1 && collection[n - 1] == 's' ? n - 1 : n);
}

int
cli_resolve(const struct cli *c, kith_txn *t, const char *collection, const char *text,
            kith_docid *out)
{
    size_t len = strlen(text);
    char lower[KITH_DOCID_HEX + 1];
    kith_iter *it = NULL;
    kith_docid doc;
    size_t matches = 0;
    int rc;

    if (len < CLI_PREFIX_MIN || len > KITH_DOCID_HEX)
        return cli_fail(c, "'%s': not a document id (%d to %d hex digits)", text, CLI_PREFIX_MIN,
                        KITH_DOCID_HEX);
    for (size_t i = 0; i < len; i++) {
        if (hexval(text[i]) < 0)
            return cli_fail(c, "'%s': not a document id (hex digits only)", text);
        lower[i] = (char)(text[i] >= 'A' && text[i] <= 'F' ? text[i] - 'A' + 'a' : text[i]);
    }
    lower[len] = '\0';

    if (len == KITH_DOCID_HEX) {
        if (kith_docid_parse(lower, &doc) < 0)
            return cli_fail(c, "'%s': not a document id", text);
        rc = kith_doc_exists(t, collection, &doc);
        if (rc < 0)
            return cli_fail_rc(c, NULL, collection, rc);
        if (rc == 0)
            return cli_fail(c, "no %.*s with id %s", noun_len(collection), collection, lower);
        *out = doc;
        return CLI_OK;
    }

    rc = kith_iter_docs(t, collection, &it);
    if (rc < 0)
        return cli_fail_rc(c, NULL, collection, rc);
    while ((rc = kith_iter_next(it, &doc)) == 0) {
        char hex[KITH_DOCID_HEX + 1];
        kith_docid_format(&doc, hex);
        if (memcmp(hex, lower, len) == 0) {
            if (++matches > 1)
                break;
            *out = doc;
        }
    }
    kith_iter_close(it);
    if (rc < 0 && rc != KITH_ENOTFOUND)
        return cli_fail_rc(c, NULL, collection, rc);
    if (matches == 0)
        return cli_fail(c, "no %.*s with an id starting %s", noun_len(collection), collection,
                        lower);
    if (matches > 1)
        return cli_fail(c, "id prefix %s is ambiguous in %s; give more digits", lower, collection);
    return CLI_OK;
}

/* Say why text is not a value of its type; returns KITH_ESCHEMA. */
static int
not_a(char *why, size_t cap, const char *what)
{
    snprintf(why, cap, "%s", what);
    return KITH_ESCHEMA;
}

int
cli_parse_typed(const char *type, char *text, kith_value *out, char *why, size_t cap)
{
    memset(out, 0, sizeof *out);
    why[0] = '\0';
    if (strcmp(type, "string") == 0 || strcmp(type, "enum") == 0 || strcmp(type, "date") == 0) {
        out->type = type[0] == 's'   ? KITH_TYPE_STRING
                    : type[0] == 'e' ? KITH_TYPE_ENUM
                                     : KITH_TYPE_DATE;
        out->u.s.ptr = text;
        out->u.s.len = strlen(text);
    } else if (strcmp(type, "integer") == 0) {
        char *end;
        long long n;
        errno = 0;
        n = strtoll(text, &end, 10);
        if (errno != 0 || end == text || *end != '\0' ||
            !(text[0] == '-' || (text[0] >= '0' && text[0] <= '9')))
            return not_a(why, cap, "not a decimal integer");
        out->type = KITH_TYPE_INT;
        out->u.i = (int64_t)n;
    } else if (strcmp(type, "boolean") == 0) {
        if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0)
            return not_a(why, cap, "not a boolean (true or false)");
        out->type = KITH_TYPE_BOOL;
        out->u.b = text[0] == 't';
    } else if (strcmp(type, "time") == 0) {
        out->type = KITH_TYPE_TIME;
        if (kith_time_parse(text, &out->u.i) < 0)
            return not_a(why, cap, "not a time (ISO 8601, e.g. 2026-11-25T18:00:00Z)");
    } else if (strcmp(type, "ref") == 0) {
        out->type = KITH_TYPE_REF;
        if (kith_docid_parse(text, &out->u.ref) < 0)
            return not_a(why, cap, "not a document id (32 lowercase hex characters)");
    } else if (strcmp(type, "bytes") == 0) {
        size_t len = strlen(text);
        for (size_t i = 0; i < len; i++)
            if (hexval(text[i]) < 0 || len % 2 != 0)
                return not_a(why, cap, "not bytes in hex (an even number of hex digits)");
        for (size_t i = 0; i < len / 2; i++) /* in place: each byte behind its digits */
            text[i] = (char)(hexval(text[2 * i]) << 4 | hexval(text[2 * i + 1]));
        out->type = KITH_TYPE_BYTES;
        out->u.s.ptr = text;
        out->u.s.len = len / 2;
    } else {
        snprintf(why, cap, "declared as %s, a type this kith does not know", type);
        return KITH_ESCHEMA;
    }
    return 0;
}

int
cli_resolve_ref(const struct cli *c, kith_txn *t, const char *what, const char *to,
                const char *text, bool live, kith_docid *out)
{
    struct cli fc = *c;
    char name[160], lower[KITH_DOCID_HEX + 1];
    size_t len = strlen(text);

    if (!live && len == KITH_DOCID_HEX) {
        for (size_t i = 0; i <= len; i++)
            lower[i] = (char)(text[i] >= 'A' && text[i] <= 'F' ? text[i] - 'A' + 'a' : text[i]);
        if (kith_docid_parse(lower, out) == 0)
            return CLI_OK;
    }
    snprintf(name, sizeof name, "%s: %s", c->name, what);
    fc.name = name;
    return cli_resolve(&fc, t, to, text, out);
}

const kith_collection_def *
cli_collection(const char *name)
{
    size_t n = 0;
    const kith_collection_def *defs = kith_schema(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

const kith_field_def *
cli_field(const char *collection, const char *field)
{
    const kith_collection_def *def = cli_collection(collection);
    if (def == NULL)
        return NULL;
    for (size_t i = 0; i < def->nfields; i++)
        if (strcmp(def->fields[i].name, field) == 0)
            return &def->fields[i];
    return NULL;
}
