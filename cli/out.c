/*
 * out.c — how the CLI speaks: error lines on stderr ("kith: contact add: email: not valid
 * UTF-8"), option parsing that reports mistakes as usage errors, aligned tables for people
 * and JSON for programs.
 *
 * Everything printed for people passes through one filter that replaces control characters,
 * because names and notes arrive from other replicas and must not be able to move the cursor
 * or recolour a terminal. JSON is built with jansson and printed with sorted keys, so its
 * byte form is stable; ids, keys and hashes are lowercase hex strings and times ISO 8601 UTC
 * strings (spec/cli.md "JSON conventions").
 *
 * Lists are written element by element as the command reads them (spec/cli.md CLI-11), so
 * the memory a listing takes does not grow with its length: JSON elements are dumped one at
 * a time inside a hand-written {"<key>": [...]}, and tables are read twice, once to size
 * the columns and once to print.
 */
#include "cli.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---------------------------------------------------------------------------- */

static void
vreport(const struct cli *c, const char *fmt, va_list ap)
{
    bool color = c != NULL && c->color_err;
    fprintf(stderr, "%skith:%s ", cli_sgr(color, "1;31"), cli_sgr(color, "0"));
    if (c != NULL && c->name != NULL)
        fprintf(stderr, "%s: ", c->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int
cli_fail(const struct cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int
cli_usage_error(const struct cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(c, fmt, ap);
    va_end(ap);
    if (c != NULL && c->usage != NULL)
        fprintf(stderr, "usage: kith %s\n", c->usage);
    else
        fprintf(stderr, "usage: kith [--dir DIR] COMMAND [ARGS]   (kith help lists them)\n");
    return CLI_USAGE;
}

int
cli_fail_rc(const struct cli *c, kith_replica *r, const char *what, int rc)
{
    const char *detail = r != NULL ? kith_errmsg(r) : "";
    if (detail == NULL || detail[0] == '\0')
        detail = kith_strerror(rc);
    /* the library's detail often names the field already: "email: not valid UTF-8" */
    if (what != NULL && !(strncmp(detail, what, strlen(what)) == 0 && detail[strlen(what)] == ':'))
        return cli_fail(c, "%s: %s", what, detail);
    return cli_fail(c, "%s", detail);
}

int
cli_help(const struct cli *c)
{
    printf("usage: kith %s\n", c->usage);
    if (c->summary != NULL)
        printf("\n%s.\n\nman kith has every option and the --json output.\n", c->summary);
    return CLI_OK;
}

/* ---- options ----------------------------------------------------------------------------- */

int
cli_opt_other(const struct cli *c, int ch)
{
    return ch == 'h' ? cli_help(c) : CLI_USAGE;
}

void
cli_opt_reset(void)
{
    optind = 0; /* glibc: 0 re-initialises, including the '+' and permutation state */
    opterr = 0; /* errors are ours to word */
}

int
cli_getopt(const struct cli *c, int argc, char **argv, const char *optstring,
           const struct option *longopts)
{
    int ch = getopt_long(argc, argv, optstring, longopts, NULL);
    if (ch == '?') {
        const char *arg = optind - 1 >= 1 && optind - 1 < argc ? argv[optind - 1] : "";
        if (optopt != 0 && strncmp(arg, "--", 2) != 0)
            cli_usage_error(c, "unknown option '-%c'", optopt);
        else
            cli_usage_error(c, "unknown option '%s'", arg);
        return '?';
    }
    if (ch == ':') {
        /* the option lacking its value is the last element getopt consumed */
        const char *arg = optind - 1 >= 1 && optind - 1 < argc ? argv[optind - 1] : "";
        if (strncmp(arg, "--", 2) == 0)
            cli_usage_error(c, "option '%s' needs a value", arg);
        else
            cli_usage_error(c, "option '-%c' needs a value", optopt);
        return '?';
    }
    return ch;
}

/* ---- colour ------------------------------------------------------------------------------- */

const char *
cli_sgr(bool on, const char *code)
{
    static const char *const codes[][2] = {
        {"0", "\033[0m"},   {"1", "\033[1m"},   {"2", "\033[2m"},   {"1;31", "\033[1;31m"},
        {"32", "\033[32m"}, {"31", "\033[31m"}, {"33", "\033[33m"},
    };
    if (!on)
        return "";
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(codes[i][0], code) == 0)
            return codes[i][1];
    return "";
}

/* ---- text for people --------------------------------------------------------------------- */

/* A copy of s[0..len) with control characters (C0, DEL) replaced by '?'. */
static char *
clean_copy(const char *s, size_t len)
{
    char *out = malloc(len + 1);
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        out[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
    }
    out[len] = '\0';
    return out;
}

/* Write s with control characters (C0, DEL) replaced by '?', as clean_copy would. */
static int
put_clean(const char *s, FILE *f)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (putc((ch < 0x20 || ch == 0x7f) ? '?' : (char)ch, f) == EOF)
            return -1;
    }
    return 0;
}

/* Display width, counting one column per UTF-8 code point (good enough for aligning). A
 * control character counts one column, as the '?' that replaces it. */
static size_t
text_width(const char *s)
{
    size_t w = 0;
    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

/* ---- lists, written as they are produced -------------------------------------------------- */

/* Remember the first failed write to stdout; returns the code that stops the fill. */
static int
list_write_failed(struct cli_list *l)
{
    if (l->werr == 0)
        l->werr = errno != 0 ? errno : EIO;
    return -l->werr;
}

/*
 * Pass jansson's output through, shifting every line after the first right by one array
 * element's indent. Line breaks in JSON_INDENT output only ever separate tokens (inside
 * strings they are escaped as "\n"), so this is exactly how the element would be printed
 * nested in {"<key>": [...]}.
 */
static int
write_nested(const char *buf, size_t len, void *data)
{
    FILE *f = data;
    while (len > 0) {
        const char *nl = memchr(buf, '\n', len);
        size_t run = nl != NULL ? (size_t)(nl - buf) + 1 : len;
        if (fwrite(buf, 1, run, f) != run || (nl != NULL && fputs("    ", f) == EOF))
            return -1;
        buf += run;
        len -= run;
    }
    return 0;
}

int
cli_list_json(struct cli_list *l, json_t *elem)
{
    int rc = 0;
    if (elem == NULL)
        return KITH_ENOMEM;
    errno = 0;
    if (l->n == 0) {
        /* the opening, as cli_json_print_in would print it: {\n  "<key>": [\n    */
        json_t *key = json_string(l->key);
        if (key == NULL) {
            json_decref(elem);
            return KITH_ENOMEM;
        }
        if (fputs("{\n  ", stdout) == EOF || json_dumpf(key, stdout, JSON_ENCODE_ANY) < 0 ||
            fputs(": [\n    ", stdout) == EOF)
            rc = list_write_failed(l);
        json_decref(key);
    } else if (fputs(",\n    ", stdout) == EOF) {
        rc = list_write_failed(l);
    }
    if (rc == 0 &&
        json_dump_callback(elem, write_nested, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) < 0)
        rc = list_write_failed(l);
    json_decref(elem);
    if (rc == 0)
        l->n++;
    return rc;
}

/* One row of the table: widen the columns (measuring pass) or print it aligned. */
static int
table_row(struct cli_list *l, const char *const *row, bool header)
{
    if (l->measuring) {
        for (size_t i = 0; i < l->ncols; i++) {
            size_t w = text_width(row[i] != NULL ? row[i] : "-");
            if (w > l->width[i])
                l->width[i] = w;
        }
        return 0;
    }
    errno = 0;
    if (header && fputs(cli_sgr(l->color, "1"), stdout) == EOF)
        return list_write_failed(l);
    for (size_t i = 0; i < l->ncols; i++) {
        const char *cell = row[i] != NULL ? row[i] : "-";
        if (put_clean(cell, stdout) < 0 ||
            (i + 1 < l->ncols && printf("%*s", (int)(l->width[i] - text_width(cell) + 2), "") < 0))
            return list_write_failed(l);
    }
    if ((header && fputs(cli_sgr(l->color, "0"), stdout) == EOF) || putchar('\n') == EOF)
        return list_write_failed(l);
    return 0;
}

int
cli_list_row(struct cli_list *l, const char *const *row)
{
    int rc = table_row(l, row, false);
    if (rc == 0)
        l->n++;
    return rc;
}

void
cli_list_init(struct cli_list *l, bool json, const char *key, size_t ncols, const char *const *head)
{
    assert(ncols <= CLI_LIST_MAXCOLS);
    memset(l, 0, sizeof *l);
    l->json = json;
    l->key = key;
    l->ncols = ncols;
    l->head = head;
}

/* A list that failed: the write error, or the fill's code in the caller's words. */
static int
list_failed(const struct cli *c, kith_replica *r, const char *what, const struct cli_list *l,
            int rc)
{
    if (l->werr != 0)
        return cli_fail(c, "writing output: %s", strerror(l->werr));
    return cli_fail_rc(c, r, what, rc);
}

int
cli_list_run(const struct cli *c, kith_replica *r, const char *what, struct cli_list *l,
             cli_list_fill fill, void *ctx)
{
    bool table = !l->json && l->ncols > 0;
    int rc;
    l->color = c->color_out;
    if (table) {
        l->measuring = true;
        table_row(l, l->head, true);
        if ((rc = fill(l, ctx)) < 0)
            return list_failed(c, r, what, l, rc);
        l->measuring = false;
        l->n = 0;
        if ((rc = table_row(l, l->head, true)) < 0)
            return list_failed(c, r, what, l, rc);
    }
    if ((rc = fill(l, ctx)) < 0)
        return list_failed(c, r, what, l, rc);
    if (l->json) {
        errno = 0;
        if (l->n == 0) {
            json_t *empty = json_array();
            if (empty == NULL)
                return cli_fail(c, "%s", kith_strerror(KITH_ENOMEM));
            return cli_json_print_in(c, l->key, empty);
        }
        if (fputs("\n  ]\n}\n", stdout) == EOF)
            return list_failed(c, r, what, l, list_write_failed(l));
    }
    errno = 0;
    if (fflush(stdout) == EOF || ferror(stdout))
        return list_failed(c, r, what, l, list_write_failed(l));
    return CLI_OK;
}

void
cli_time(int64_t ms, char out[32])
{
    kith_time_format(ms, out);
}

char *
cli_value_text(const kith_value *v)
{
    char buf[80];
    switch (v->type) {
    case KITH_TYPE_NULL:
        return clean_copy("-", 1);
    case KITH_TYPE_STRING:
    case KITH_TYPE_DATE:
    case KITH_TYPE_ENUM:
        return clean_copy(v->u.s.ptr, v->u.s.len);
    case KITH_TYPE_TIME:
        cli_time(v->u.i, buf);
        break;
    case KITH_TYPE_INT:
        snprintf(buf, sizeof buf, "%lld", (long long)v->u.i);
        break;
    case KITH_TYPE_BOOL:
        snprintf(buf, sizeof buf, "%s", v->u.b ? "yes" : "no");
        break;
    case KITH_TYPE_REF:
        kith_docid_format(&v->u.ref, buf);
        break;
    case KITH_TYPE_BYTES: {
        char *out = malloc(v->u.s.len * 2 + 1);
        if (out != NULL)
            cli_hex((const uint8_t *)v->u.s.ptr, v->u.s.len, out);
        return out;
    }
    default:
        snprintf(buf, sizeof buf, "?");
        break;
    }
    return clean_copy(buf, strlen(buf));
}

/* ---- JSON ----------------------------------------------------------------------------------- */

json_t *
cli_json_time(int64_t ms)
{
    char buf[32];
    cli_time(ms, buf);
    return json_string(buf);
}

json_t *
cli_json_hex(const uint8_t *bytes, size_t len)
{
    char *buf = malloc(len * 2 + 1);
    json_t *j;
    if (buf == NULL)
        return NULL;
    cli_hex(bytes, len, buf);
    j = json_string(buf);
    free(buf);
    return j;
}

json_t *
cli_json_id(uint64_t id)
{
    char buf[KITH_ID_HEX + 1];
    cli_id_hex(id, buf);
    return json_string(buf);
}

json_t *
cli_json_docid(const kith_docid *d)
{
    char buf[KITH_DOCID_HEX + 1];
    kith_docid_format(d, buf);
    return json_string(buf);
}

json_t *
cli_json_vv(const kith_vv *vv)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < vv->len; i++) {
        char key[KITH_ID_HEX + 1];
        cli_id_hex(vv->entries[i].origin, key);
        if (json_object_set_new(o, key, json_integer((json_int_t)vv->entries[i].seq)) < 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

json_t *
cli_value_json(const kith_value *v)
{
    switch (v->type) {
    case KITH_TYPE_NULL:
        return json_null();
    case KITH_TYPE_STRING:
    case KITH_TYPE_DATE:
    case KITH_TYPE_ENUM:
        return json_stringn(v->u.s.ptr, v->u.s.len);
    case KITH_TYPE_TIME:
        return cli_json_time(v->u.i);
    case KITH_TYPE_INT: {
        char buf[24];
        if (v->u.i >= -(INT64_C(1) << 53) && v->u.i <= (INT64_C(1) << 53))
            return json_integer((json_int_t)v->u.i);
        snprintf(buf, sizeof buf, "%lld", (long long)v->u.i); /* as spec/export.md */
        return json_string(buf);
    }
    case KITH_TYPE_BOOL:
        return json_boolean(v->u.b);
    case KITH_TYPE_REF:
        return cli_json_docid(&v->u.ref);
    case KITH_TYPE_BYTES:
        return cli_json_hex((const uint8_t *)v->u.s.ptr, v->u.s.len);
    default:
        return json_null();
    }
}

int
cli_jset(json_t *obj, const char *key, json_t *val)
{
    if (obj == NULL) {
        json_decref(val);
        return -1;
    }
    if (val == NULL)
        val = json_null();
    return json_object_set_new(obj, key, val) < 0 ? -1 : 0;
}

json_t *
cli_json_done(json_t *o, int bad)
{
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int
cli_json_print(const struct cli *c, json_t *j)
{
    int rc = CLI_OK;
    if (j == NULL)
        return cli_fail(c, "building JSON output: %s", kith_strerror(KITH_ENOMEM));
    if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) < 0 || fputc('\n', stdout) == EOF)
        rc = cli_fail(c, "writing output: %s", strerror(errno));
    json_decref(j);
    return rc;
}

int
cli_json_print_in(const struct cli *c, const char *key, json_t *val)
{
    json_t *o = json_object();
    return cli_json_print(c, cli_json_done(o, cli_jset(o, key, val)));
}

/* --json and --quiet (-q) where their flag is not NULL, and --help. */
static int
parse_flags(const struct cli *c, int argc, char **argv, bool *json, bool *quiet, int min, int max)
{
    struct option opts[4];
    size_t k = 0;
    int ch, n;

    if (json != NULL)
        opts[k++] = (struct option){"json", no_argument, NULL, 'j'};
    if (quiet != NULL)
        opts[k++] = (struct option){"quiet", no_argument, NULL, 'q'};
    opts[k++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[k] = (struct option){NULL, 0, NULL, 0};
    if (json != NULL)
        *json = false;
    if (quiet != NULL)
        *quiet = false;
    while ((ch = cli_getopt(c, argc, argv, quiet != NULL ? ":qh" : ":h", opts)) != -1) {
        switch (ch) {
        case 'j':
            *json = true;
            break;
        case 'q':
            *quiet = true;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    n = argc - optind;
    if (n < min)
        return cli_usage_error(c, "missing argument");
    if (n > max)
        return cli_usage_error(c, "unexpected argument '%s'", argv[optind + max]);
    return -1;
}

int
cli_parse_simple(const struct cli *c, int argc, char **argv, bool *json, int min, int max)
{
    return parse_flags(c, argc, argv, json, NULL, min, max);
}

int
cli_parse_long(const struct cli *c, int argc, char **argv, bool *json, bool *quiet, int min,
               int max)
{
    return parse_flags(c, argc, argv, json, quiet, min, max);
}
