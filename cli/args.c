/*
 * args.c — turning command-line text into values: hex ids and keys, decimal numbers,
 * durations ("30s"), field values through kith_value_parse, and document ids given as a
 * unique hex prefix.
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
