/*
 * cmd_schema.c — `kith schema show|apply`, and the CLI's reading of the replica's declared
 * schema, which the generic commands (cmd_generic.c) consult for kinds and types.
 *
 * The CLI knows a replica's schema only as kith_schema_json gives it: the canonical form of
 * spec/data-model.md 2.4.5 plus "version", parsed with jansson. Its objects have sorted keys,
 * so fields and indexes are listed by name here; the library keeps the order they were
 * declared in, but kith.h offers no way to read it. Defaults are left out of the canonical
 * form (no "crdt" means lww, no "required" means false), which cli_decl_kind and the
 * constraint text below put back. Declaring is the library's business, all or nothing:
 * `schema apply` passes the document through and reports the library's message when it is
 * refused (spec/cli.md CLI-13).
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_MAX_BYTES (1u << 20) /* a schema document's limit (SCHEMA-15) */

/* ---- the declared schema ------------------------------------------------------------------ */

int
cli_decl_load(const struct cli *c, kith_replica *r, json_t **out)
{
    kith_buf buf = {0};
    json_error_t jerr;
    int krc = kith_schema_json(r, &buf);

    *out = NULL;
    if (krc < 0)
        return cli_fail_rc(c, r, "reading the schema", krc);
    *out = json_loadb((const char *)buf.data, buf.len, JSON_REJECT_DUPLICATES, &jerr);
    kith_free(buf.data);
    if (*out == NULL || !json_is_object(json_object_get(*out, "collections"))) {
        json_decref(*out);
        *out = NULL;
        return cli_fail(c, "reading the schema: the library's JSON does not parse: %s", jerr.text);
    }
    return CLI_OK;
}

json_t *
cli_decl_coll(json_t *schema, const char *collection)
{
    json_t *coll = json_object_get(json_object_get(schema, "collections"), collection);
    return json_is_object(coll) ? coll : NULL;
}

json_t *
cli_decl_fields(json_t *coll)
{
    json_t *fields = json_object_get(coll, "fields");
    return json_is_object(fields) ? fields : NULL;
}

json_t *
cli_decl_field(json_t *coll, const char *field)
{
    json_t *f = json_object_get(cli_decl_fields(coll), field);
    return json_is_object(f) ? f : NULL;
}

int
cli_decl_kind(json_t *field)
{
    const char *k = json_string_value(json_object_get(field, "crdt"));
    if (k == NULL || strcmp(k, "lww") == 0)
        return KITH_CRDT_LWW;
    if (strcmp(k, "set") == 0)
        return KITH_CRDT_SET;
    if (strcmp(k, "counter") == 0)
        return KITH_CRDT_COUNTER;
    if (strcmp(k, "flag") == 0)
        return KITH_CRDT_FLAG;
    return -1;
}

const char *
cli_decl_type(json_t *field)
{
    const char *t = json_string_value(json_object_get(field, "type"));
    return t != NULL ? t : "?";
}

const char *
cli_kind_name(int kind)
{
    switch (kind) {
    case KITH_CRDT_LWW:
        return "lww";
    case KITH_CRDT_SET:
        return "set";
    case KITH_CRDT_COUNTER:
        return "counter";
    case KITH_CRDT_FLAG:
        return "flag";
    default:
        return "?";
    }
}

/* ---- kith schema show ------------------------------------------------------------------- */

/* The constraints of a declared field for people ("required, max 200"), into out. */
static void
constraints_text(json_t *field, char *out, size_t cap)
{
    size_t off = 0;
    json_t *v;
    out[0] = '\0';
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (off < cap) {                                                                           \
            int n_ = snprintf(out + off, cap - off, "%s", off > 0 ? ", " : "");                    \
            off += n_ > 0 ? (size_t)n_ : 0;                                                        \
        }                                                                                          \
        if (off < cap) {                                                                           \
            int n_ = snprintf(out + off, cap - off, __VA_ARGS__);                                  \
            off += n_ > 0 ? (size_t)n_ : 0;                                                        \
        }                                                                                          \
    } while (0)
    if (json_is_true(json_object_get(field, "required")))
        ADD("required");
    if ((v = json_object_get(field, "to")) != NULL && json_is_string(v))
        ADD("to %s", json_string_value(v));
    if ((v = json_object_get(field, "min")) != NULL && json_is_integer(v))
        ADD("min %lld", (long long)json_integer_value(v));
    if ((v = json_object_get(field, "max")) != NULL && json_is_integer(v))
        ADD("max %lld", (long long)json_integer_value(v));
    if ((v = json_object_get(field, "format")) != NULL && json_is_string(v))
        ADD("format %s", json_string_value(v));
    if ((v = json_object_get(field, "values")) != NULL && json_is_array(v)) {
        size_t i;
        json_t *e;
        ADD("values ");
        json_array_foreach(v, i, e)
        {
            if (off < cap) {
                int n = snprintf(out + off, cap - off, "%s%s", i > 0 ? "|" : "",
                                 json_string_value(e) ? json_string_value(e) : "?");
                off += n > 0 ? (size_t)n : 0;
            }
        }
    }
#undef ADD
    if (off >= cap && cap > 4)
        memcpy(out + cap - 4, "...", 4); /* cut, and say so */
}

/* Print text with control characters as '?' (names are checked by the library to be
 * [A-Za-z0-9_], but enum values are any text). */
static void
put_text(const char *s)
{
    for (; *s != '\0'; s++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

/* One collection: its fields (name, type, kind, constraints) and indexes, aligned. */
static void
coll_print(const struct cli *c, const char *name, json_t *coll)
{
    const char *b = cli_sgr(c->color_out, "1"), *n = cli_sgr(c->color_out, "0");
    json_t *fields = cli_decl_fields(coll), *indexes = json_object_get(coll, "indexes"), *f;
    size_t wname = 5, wtype = 4; /* "index", "type" */
    const char *fname;
    char cons[1024];

    json_object_foreach(fields, fname, f)
    {
        if (strlen(fname) > wname)
            wname = strlen(fname);
        if (strlen(cli_decl_type(f)) > wtype)
            wtype = strlen(cli_decl_type(f));
    }
    printf("\n%s%s%s\n", b, name, n);
    if (json_object_size(fields) == 0)
        printf("  (no fields)\n");
    json_object_foreach(fields, fname, f)
    {
        constraints_text(f, cons, sizeof cons);
        printf("  %-*s  %-*s  %-*s", (int)wname, fname, (int)wtype, cli_decl_type(f),
               cons[0] != '\0' ? 7 : 0, cli_kind_name(cli_decl_kind(f)));
        if (cons[0] != '\0') {
            printf("  ");
            put_text(cons);
        }
        putchar('\n');
    }
    json_object_foreach(indexes, fname, f)
    {
        size_t i;
        json_t *part;
        printf("  index %s:", fname);
        json_array_foreach(f, i, part)
        {
            printf("%s %s", i > 0 ? "," : "",
                   json_string_value(part) ? json_string_value(part) : "?");
        }
        putchar('\n');
    }
}

int
cmd_schema_show(struct cli *c, int argc, char **argv)
{
    kith_replica *r = NULL;
    uint64_t version = 0;
    uint8_t digest[KITH_HASH_BYTES];
    char hex[2 * KITH_HASH_BYTES + 1];
    json_t *schema = NULL, *coll;
    const char *name;
    bool json;
    int rc = cli_parse_simple(c, argc, argv, &json, 0, 0), krc;
    if (rc >= 0)
        return rc;
    if ((rc = cli_open(c, CLI_READ, &r)) != CLI_OK)
        return rc;
    if (json) {
        /* the library's canonical bytes, as `kith export` prints its own */
        kith_buf buf = {0};
        if ((krc = kith_schema_json(r, &buf)) < 0) {
            rc = cli_fail_rc(c, r, "reading the schema", krc);
        } else {
            if (fwrite(buf.data, 1, buf.len, stdout) != buf.len)
                rc = cli_fail(c, "writing output: %s", strerror(errno));
            kith_free(buf.data);
        }
        goto out_close;
    }
    if ((krc = kith_schema_info(r, &version, digest)) < 0) {
        rc = cli_fail_rc(c, r, "reading the schema", krc);
        goto out_close;
    }
    if ((rc = cli_decl_load(c, r, &schema)) != CLI_OK)
        goto out_close;
    cli_hex(digest, sizeof digest, hex);
    printf("version  %llu\ndigest   %s\n", (unsigned long long)version,
           version > 0 ? hex : "- (nothing declared)");
    json_object_foreach(json_object_get(schema, "collections"), name, coll)
    {
        coll_print(c, name, coll);
    }
    json_decref(schema);
out_close:
    kith_close(r);
    return rc;
}

/* ---- kith schema apply ------------------------------------------------------------------ */

/* Read all of `path` ("-": stdin) into a heap buffer, at most `max` + 1 bytes (one more than
 * the library accepts, so that it can say the document is too big). 0 or -errno. */
static int
read_all(const char *path, size_t max, char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 4096, n = 0;
    char *buf;
    int rc = 0;

    *out = NULL;
    *len = 0;
    if (f == NULL)
        return -errno;
    if ((buf = malloc(cap)) == NULL) {
        rc = -ENOMEM;
        goto out_close;
    }
    for (;;) {
        size_t got;
        if (n == cap) {
            char *grown = cap > max ? NULL : realloc(buf, cap * 2);
            if (grown == NULL)
                break; /* past the limit: the library refuses what we have */
            buf = grown;
            cap *= 2;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = errno != 0 ? -errno : -EIO;
            break;
        }
    }
    if (rc < 0) {
        free(buf);
        buf = NULL;
        n = 0;
    }
    *out = buf;
    *len = n;
out_close:
    if (f != stdin)
        fclose(f);
    return rc;
}

int
cmd_schema_apply(struct cli *c, int argc, char **argv)
{
    kith_replica *r = NULL;
    uint64_t before = 0, after = 0;
    char *doc = NULL;
    size_t len = 0;
    const char *path;
    int rc = cli_parse_simple(c, argc, argv, NULL, 1, 1), krc;
    if (rc >= 0)
        return rc;
    path = argv[optind];
    if ((krc = read_all(path, SCHEMA_MAX_BYTES, &doc, &len)) < 0)
        return cli_fail(c, "%s: %s", path, kith_strerror(krc));
    if ((rc = cli_open(c, CLI_WRITE, &r)) != CLI_OK)
        goto out_free;
    if ((krc = kith_schema_info(r, &before, NULL)) < 0) {
        rc = cli_fail_rc(c, r, "reading the schema", krc);
    } else if ((krc = kith_schema_apply(r, doc, len)) < 0) {
        const char *detail = kith_errmsg(r);
        rc = cli_fail(c, "%s: refused, nothing changed: %s", path,
                      detail[0] != '\0' ? detail : kith_strerror(krc));
    } else if ((krc = kith_schema_info(r, &after, NULL)) < 0) {
        rc = cli_fail_rc(c, r, "reading the schema", krc);
    } else if (after == before) {
        printf("unchanged, version %llu\n", (unsigned long long)after);
    } else {
        printf("schema version %llu\n", (unsigned long long)after);
    }
    kith_close(r);
out_free:
    free(doc);
    return rc;
}
