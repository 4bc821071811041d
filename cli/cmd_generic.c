/*
 * cmd_generic.c — `kith put|get|ls|rm`: the documents of any collection, with fields of every
 * kind (spec/cli.md "Documents of any collection").
 *
 * What a field takes comes from the replica's declaration (cmd_schema.c): a register is set
 * with FIELD=VALUE, a set is changed with FIELD+=ELEM and FIELD-=ELEM, a counter with
 * FIELD+=N and FIELD-=N, a flag with FIELD=true|false. `put` checks every argument against
 * the declaration (the field exists, takes its operator, its text reads as its type, a new
 * document gets its required fields) before it begins its one write transaction, resolves
 * document ids (and references given as prefixes, CLI-6) inside it before the first write,
 * and aborts on any failure, the library's checks of each value as it is written included,
 * so that a refused command changes nothing (CLI-5).
 *
 * Reading shows what a document holds, declared here or not: a replica that relays another
 * app's collections lists them too. A document is built once as a JSON object (docs.c), in
 * the shape of `contact show --json`, and the human forms are rendered from that object, so
 * that `get`, `ls` and their --json cannot disagree.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* ---- what the declaration says, in words ------------------------------------------------ */

static int
not_declared_coll(const struct cli *c, const char *coll)
{
    return cli_fail(c,
                    "no collection %s is declared here; declare it in a schema document and run "
                    "'kith schema apply FILE'",
                    coll);
}

/* A collection to read: declared, or held (received from a replica that declared it). 0 when
 * it is either, with *none set when it is declared but no document of it was ever made;
 * otherwise the failure reported and CLI_FAIL. */
static int
coll_readable(const struct cli *c, kith_replica *r, kith_txn *t, json_t *cdecl, const char *coll,
              bool *none)
{
    kith_iter *it = NULL;
    int krc = kith_iter_docs(t, coll, &it);
    kith_iter_close(it);
    *none = false;
    if (krc == KITH_ENOTFOUND && cdecl != NULL) {
        *none = true;
        return CLI_OK;
    }
    if (krc == KITH_ENOTFOUND)
        return cli_fail(c,
                        "no collection %s: none is declared here and no document of it is held "
                        "(declare one with 'kith schema apply FILE')",
                        coll);
    return krc < 0 ? cli_fail_rc(c, r, coll, krc) : CLI_OK;
}

/* Open the replica, read its schema, then begin a transaction: the schema is read first,
 * in the library's own transaction (cli_decl_load). CLI_OK with all three, or the failure
 * reported and nothing to release. */
static int
begin_with_schema(const struct cli *c, enum cli_open_mode mode, kith_replica **r, json_t **schema,
                  kith_txn **t)
{
    int rc, krc;
    *t = NULL;
    *schema = NULL;
    if ((rc = cli_open(c, mode, r)) != CLI_OK)
        return rc;
    if ((rc = cli_decl_load(c, *r, schema)) != CLI_OK) {
        kith_close(*r);
        *r = NULL;
        return rc;
    }
    krc = kith_txn_begin(*r, mode == CLI_READ ? KITH_TXN_READ : KITH_TXN_WRITE, t);
    if (krc < 0) {
        rc = cli_fail_rc(c, *r, NULL, krc);
        json_decref(*schema);
        *schema = NULL;
        kith_close(*r);
        *r = NULL;
    }
    return rc;
}

/* Report a value that does not parse or fit, naming the field once ("amount: must be at
 * least 0"), as cli_value does for the built-in schema. */
static int
value_fail(const struct cli *c, const char *what, const char *why, int krc)
{
    size_t n = strlen(what);
    if (why[0] == '\0')
        return cli_fail(c, "%s: %s", what, kith_strerror(krc));
    if (strncmp(why, what, n) == 0 && why[n] == ':')
        return cli_fail(c, "%s", why);
    return cli_fail(c, "%s: %s", what, why);
}

/* ---- kith put ----------------------------------------------------------------------------- */

enum put_op { PUT_SET, PUT_ADD, PUT_SUB };

static const char *const op_text[] = {"=", "+=", "-="};

/* One FIELD=VALUE, FIELD+=VALUE or FIELD-=VALUE of `put`, checked before anything is written. */
struct assign {
    const char *field; /* the field's name, cut out of its argument */
    char *text;        /* the value's text, after the operator (bytes: decoded in place) */
    enum put_op op;
    int kind;                      /* the declared field's kith_crdt */
    const char *to;                /* a reference (or a set of them) given as text: the
                                      collection it refers to, resolved in the transaction */
    kith_value v;                  /* a register's value, a counter's delta, a flag's BOOL */
    char elem[KITH_DOCID_HEX + 1]; /* a set of references: the element, once resolved */
};

/* The operator does not fit the field's kind: say which ones it takes. */
static int
wrong_op(const struct cli *c, const struct assign *a, json_t *fd)
{
    const char *f = a->field, *op = op_text[a->op];
    switch (a->kind) {
    case KITH_CRDT_SET:
        return cli_fail(c, "%s: a set takes %s+=ELEMENT or %s-=ELEMENT, not %s", f, f, f, op);
    case KITH_CRDT_COUNTER:
        return cli_fail(c, "%s: a counter takes %s+=N or %s-=N, not %s", f, f, f, op);
    case KITH_CRDT_FLAG:
        return cli_fail(c, "%s: a flag takes %s=true or %s=false, not %s", f, f, f, op);
    default:
        return cli_fail(c, "%s: a %s field takes %s=VALUE, not %s", f, cli_decl_type(fd), f, op);
    }
}

/* Check one assignment against the collection's declaration and parse its value. */
static int
assign_check(const struct cli *c, kith_replica *r, const char *coll, json_t *cdecl,
             struct assign *a)
{
    json_t *fd = cli_decl_field(cdecl, a->field);
    char why[256] = "";
    int krc;

    if (fd == NULL)
        return cli_fail(c,
                        "%s: no field %s is declared in %s; declare it in a schema document and "
                        "run 'kith schema apply FILE'",
                        a->field, a->field, coll);
    a->kind = cli_decl_kind(fd);
    if (a->kind < 0)
        return cli_fail(c, "%s: declared with a kind this kith does not know", a->field);
    if ((a->kind == KITH_CRDT_LWW || a->kind == KITH_CRDT_FLAG) != (a->op == PUT_SET))
        return wrong_op(c, a, fd);
    if (strcmp(cli_decl_type(fd), "ref") == 0 && a->text[0] != '\0') {
        a->to = json_string_value(json_object_get(fd, "to"));
        if (a->to != NULL)
            return CLI_OK; /* an id or a prefix: resolved in the transaction */
    }
    /* the library reads and checks the text as the field declares; bytes it cannot read
     * from text, and the CLI takes them as hex */
    if (strcmp(cli_decl_type(fd), "bytes") == 0 && a->text[0] != '\0')
        krc = cli_parse_typed("bytes", a->text, &a->v, why, sizeof why);
    else
        krc = kith_value_parse_in(r, coll, a->field, a->text, &a->v, why, sizeof why);
    if (krc < 0)
        return value_fail(c, a->field, why, krc);
    if (a->kind == KITH_CRDT_COUNTER && a->op == PUT_SUB) {
        if (a->v.u.i == INT64_MIN)
            return cli_fail(c, "%s: cannot subtract %s", a->field, a->text);
        a->v.u.i = -a->v.u.i;
    }
    return CLI_OK;
}

/* A new document needs a value for every required register. */
static int
required_check(const struct cli *c, const char *coll, json_t *cdecl, const struct assign *as,
               size_t n)
{
    const char *name;
    json_t *fd;
    json_object_foreach(cli_decl_fields(cdecl), name, fd)
    {
        bool given = false;
        if (!json_is_true(json_object_get(fd, "required")) || cli_decl_kind(fd) != KITH_CRDT_LWW)
            continue;
        for (size_t i = 0; i < n && !given; i++)
            given = strcmp(as[i].field, name) == 0 && as[i].text[0] != '\0';
        if (!given)
            return cli_fail(c, "%s: required; a new document of %s needs %s=VALUE", name, coll,
                            name);
    }
    return CLI_OK;
}

/* Write one assignment; the transaction is the caller's. */
static int
assign_write(const struct cli *c, kith_replica *r, kith_txn *t, const char *coll,
             const kith_docid *doc, const struct assign *a)
{
    const char *e = a->to != NULL ? a->elem : a->text;
    int krc;
    switch (a->kind) {
    case KITH_CRDT_SET:
        krc = a->op == PUT_ADD ? kith_set_add(t, coll, doc, a->field, e, strlen(e))
                               : kith_set_remove(t, coll, doc, a->field, e, strlen(e));
        break;
    case KITH_CRDT_COUNTER:
        krc = kith_counter_add(t, coll, doc, a->field, a->v.u.i);
        break;
    case KITH_CRDT_FLAG:
        krc = kith_flag_set(t, coll, doc, a->field, a->v.u.b);
        break;
    default:
        krc = kith_field_set(t, coll, doc, a->field, &a->v);
        break;
    }
    return krc < 0 ? cli_fail_rc(c, r, a->field, krc) : CLI_OK;
}

/* Split the operands after COLL [ID] into assignments (argv is ours to cut). Usage errors
 * only: whether a field exists and takes its operator is the declaration's business. */
static int
assign_split(const struct cli *c, int argc, char **argv, int first, struct assign *as, size_t *n)
{
    *n = 0;
    for (int i = first; i < argc; i++) {
        char *eq = strchr(argv[i], '='), *end = eq;
        struct assign *a = &as[*n];
        if (eq == NULL)
            return cli_usage_error(c, "'%s': expected FIELD=VALUE, FIELD+=VALUE or FIELD-=VALUE",
                                   argv[i]);
        a->op = PUT_SET;
        if (eq > argv[i] && (eq[-1] == '+' || eq[-1] == '-')) {
            a->op = eq[-1] == '+' ? PUT_ADD : PUT_SUB;
            end = eq - 1;
        }
        if (end == argv[i])
            return cli_usage_error(c, "'%s': no field name before '%s'", argv[i], op_text[a->op]);
        *end = '\0';
        a->field = argv[i];
        a->text = eq + 1;
        for (size_t j = 0; a->op == PUT_SET && j < *n; j++)
            if (as[j].op == PUT_SET && strcmp(as[j].field, a->field) == 0)
                return cli_usage_error(c, "%s given twice", a->field);
        (*n)++;
    }
    return CLI_OK;
}

int
cmd_put(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct assign *as = NULL;
    size_t n = 0;
    const char *coll, *id = NULL;
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    json_t *schema = NULL, *cdecl;
    kith_docid doc;
    int ch, rc, krc, first;

    if ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1)
        return cli_opt_other(c, ch);
    if (optind >= argc)
        return cli_usage_error(c, "missing COLL");
    coll = argv[optind];
    first = optind + 1;
    if (first < argc && strchr(argv[first], '=') == NULL)
        id = argv[first++];
    if (id != NULL && first == argc)
        return cli_usage_error(c, "nothing to change: give FIELD=VALUE after the ID");
    if ((as = calloc((size_t)(argc - first) + 1, sizeof *as)) == NULL)
        return cli_fail(c, "%s", kith_strerror(KITH_ENOMEM));
    if ((rc = assign_split(c, argc, argv, first, as, &n)) != CLI_OK)
        goto out_free;

    if ((rc = cli_open(c, CLI_WRITE, &r)) != CLI_OK)
        goto out_free;
    if ((rc = cli_decl_load(c, r, &schema)) != CLI_OK)
        goto out_close;
    if ((cdecl = cli_decl_coll(schema, coll)) == NULL) {
        rc = not_declared_coll(c, coll);
        goto out_close;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = assign_check(c, r, coll, cdecl, &as[i])) != CLI_OK)
            goto out_close;
    if (id == NULL && (rc = required_check(c, coll, cdecl, as, n)) != CLI_OK)
        goto out_close;

    if ((krc = kith_txn_begin(r, KITH_TXN_WRITE, &t)) < 0) {
        rc = cli_fail_rc(c, r, NULL, krc);
        goto out_close;
    }
    if (id != NULL)
        rc = cli_resolve(c, t, coll, id, &doc);
    for (size_t i = 0; rc == CLI_OK && i < n; i++) {
        struct assign *a = &as[i];
        kith_docid ref;
        if (a->to == NULL)
            continue;
        if ((rc = cli_resolve_ref(c, t, a->field, a->to, a->text, a->op != PUT_SUB, &ref)) !=
            CLI_OK)
            break;
        if (a->kind == KITH_CRDT_SET) {
            kith_docid_format(&ref, a->elem);
        } else {
            a->v.type = KITH_TYPE_REF;
            a->v.u.ref = ref;
        }
    }
    if (rc == CLI_OK && id == NULL && (krc = kith_doc_create(t, coll, &doc)) < 0)
        rc = cli_fail_rc(c, r, NULL, krc);
    for (size_t i = 0; rc == CLI_OK && i < n; i++)
        rc = assign_write(c, r, t, coll, &doc, &as[i]);
    rc = id == NULL ? cli_finish_new(c, r, &t, rc, &doc) : cli_finish(c, r, &t, rc);
    r = NULL; /* closed by cli_finish */
out_close:
    json_decref(schema);
    kith_close(r);
out_free:
    free(as);
    return rc;
}

/* ---- kith rm -------------------------------------------------------------------------------- */

int
cmd_rm(struct cli *c, int argc, char **argv)
{
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    json_t *schema = NULL;
    kith_docid doc;
    bool none;
    int rc = cli_parse_simple(c, argc, argv, NULL, 2, 2), krc;
    const char *coll = argv[optind];
    if (rc >= 0)
        return rc;
    if ((rc = begin_with_schema(c, CLI_WRITE, &r, &schema, &t)) != CLI_OK)
        return rc;
    if ((rc = coll_readable(c, r, t, cli_decl_coll(schema, coll), coll, &none)) == CLI_OK &&
        cli_decl_coll(schema, coll) == NULL)
        rc = not_declared_coll(c, coll); /* held from another replica: read only here */
    if (rc == CLI_OK && (rc = cli_resolve(c, t, coll, argv[optind + 1], &doc)) == CLI_OK &&
        (krc = kith_doc_delete(t, coll, &doc)) < 0)
        rc = cli_fail_rc(c, r, NULL, krc);
    json_decref(schema);
    return cli_finish(c, r, &t, rc);
}

/* ---- kith get ----------------------------------------------------------------------------- */

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Print a document as "field  value" lines: "id" first, then the fields by name. */
static int
doc_print(const struct cli *c, json_t *o)
{
    const char *b = cli_sgr(c->color_out, "1"), *n = cli_sgr(c->color_out, "0");
    size_t nkeys = json_object_size(o), k = 0, w = 2;
    const char **keys = calloc(nkeys + 1, sizeof *keys), *key;
    json_t *v;
    int rc = 0;

    if (keys == NULL)
        return KITH_ENOMEM;
    json_object_foreach(o, key, v)
    {
        if (strcmp(key, "id") == 0)
            continue;
        keys[k++] = key;
        if (strlen(key) > w)
            w = strlen(key);
    }
    qsort(keys, k, sizeof *keys, cmp_str);
    printf("%s%-*s%s  %s\n", b, (int)w, "id", n, json_string_value(json_object_get(o, "id")));
    for (size_t i = 0; i < k && rc == 0; i++) {
        char *text = cli_json_text(json_object_get(o, keys[i]));
        if (text == NULL) {
            rc = KITH_ENOMEM;
            break;
        }
        /* the names of undeclared fields come from other replicas' ops: no control bytes */
        printf("%s", b);
        for (const char *p = keys[i]; *p != '\0'; p++)
            putchar((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
        printf("%s%*s  %s\n", n, (int)(w - strlen(keys[i])), "", text);
        free(text);
    }
    free(keys);
    return rc;
}

int
cmd_get(struct cli *c, int argc, char **argv)
{
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    json_t *schema = NULL, *cdecl, *o;
    kith_docid doc;
    bool json, none;
    int rc = cli_parse_simple(c, argc, argv, &json, 2, 2), krc;
    const char *coll = argv[optind];
    if (rc >= 0)
        return rc;
    if ((rc = begin_with_schema(c, CLI_READ, &r, &schema, &t)) != CLI_OK)
        return rc;
    cdecl = cli_decl_coll(schema, coll);
    if ((rc = coll_readable(c, r, t, cdecl, coll, &none)) != CLI_OK ||
        (rc = cli_resolve(c, t, coll, argv[optind + 1], &doc)) != CLI_OK)
        goto out_end;
    if ((o = cli_doc_all_json(t, coll, cdecl, &doc, &krc)) == NULL)
        rc = cli_fail_rc(c, r, NULL, krc);
    else if (json)
        rc = cli_json_print(c, o);
    else {
        if ((krc = doc_print(c, o)) < 0)
            rc = cli_fail_rc(c, r, NULL, krc);
        json_decref(o);
    }
out_end:
    json_decref(schema);
    cli_end(r, &t);
    return rc;
}

/* ---- kith ls ---------------------------------------------------------------------------- */

/* What `ls` lists, and how: the documents of `coll` in id order or through an index, at most
 * `limit`, read afresh by each pass over them. */
struct doc_list {
    kith_txn *t;
    const char *coll;
    json_t *cdecl;        /* the collection's declaration, or NULL */
    bool none;            /* declared, and no document of it was ever made: empty */
    char index[140];      /* "coll.index", or "" for id order */
    const kith_value *eq; /* the index's bounds (kith_iter_index), or NULL */
    const kith_value *lo;
    const kith_value *hi;
    uint64_t limit;
    kith_iter *it; /* the first pass's iterator, opened by the command */
    size_t ncols;  /* the table's field columns, after ID */
    const char *cols[CLI_LIST_MAXCOLS - 1];
};

static int
list_open(struct doc_list *dl, kith_iter **it)
{
    if (dl->index[0] != '\0')
        return kith_iter_index(dl->t, dl->index, dl->eq, dl->lo, dl->hi, it);
    return kith_iter_docs(dl->t, dl->coll, it);
}

/* Call visit for each listed document, in order; 0 or the first failure. */
static int
list_walk(struct doc_list *dl, int (*visit)(struct doc_list *, const kith_docid *, void *),
          void *arg)
{
    kith_iter *it = dl->it;
    kith_docid doc;
    uint64_t n = 0;
    int rc = 0;

    dl->it = NULL;
    if (dl->none)
        return 0;
    if (it == NULL && (rc = list_open(dl, &it)) < 0)
        return rc;
    while (rc == 0 && n < dl->limit && (rc = kith_iter_next(it, &doc)) == 0) {
        rc = visit(dl, &doc, arg);
        n++;
    }
    kith_iter_close(it);
    return rc == KITH_ENOTFOUND ? 0 : rc;
}

/* Take a field the listed documents hold into the table's columns, after the declared ones,
 * keeping the first by name when there are more than fit. */
static void
col_add(struct doc_list *dl, size_t ndecl, const char *name)
{
    size_t i, cap = CLI_LIST_MAXCOLS - 1;
    for (i = 0; i < dl->ncols; i++)
        if (strcmp(dl->cols[i], name) == 0)
            return;
    for (i = ndecl; i < dl->ncols && strcmp(dl->cols[i], name) < 0; i++)
        ;
    if (i == cap)
        return;
    if (dl->ncols == cap)
        dl->ncols--;
    memmove(&dl->cols[i + 1], &dl->cols[i], (dl->ncols - i) * sizeof dl->cols[0]);
    dl->cols[i] = name;
    dl->ncols++;
}

/* The scan before a table: the fields documents hold that are not declared get columns. */
static int
scan_visit(struct doc_list *dl, const kith_docid *doc, void *arg)
{
    size_t ndecl = *(const size_t *)arg;
    kith_iter *it = NULL;
    kith_field_entry e;
    int rc = kith_iter_fields(dl->t, dl->coll, doc, &it);
    while (rc == 0 && (rc = kith_iter_next_field(it, &e)) == 0)
        if (cli_decl_field(dl->cdecl, e.name) == NULL)
            col_add(dl, ndecl, e.name);
    kith_iter_close(it);
    return rc == KITH_ENOTFOUND ? 0 : rc;
}

/* One document of the list: a JSON element, or a table row of the columns' texts. */
static int
list_visit(struct doc_list *dl, const kith_docid *doc, void *arg)
{
    struct cli_list *l = arg;
    const char *row[CLI_LIST_MAXCOLS];
    char hex[KITH_DOCID_HEX + 1], *cell[CLI_LIST_MAXCOLS] = {NULL};
    json_t *o;
    int rc;

    if ((o = cli_doc_all_json(dl->t, dl->coll, dl->cdecl, doc, &rc)) == NULL)
        return rc;
    if (l->json)
        return cli_list_json(l, o);
    kith_docid_format(doc, hex);
    row[0] = hex;
    rc = 0;
    for (size_t i = 0; i < dl->ncols; i++)
        if ((row[i + 1] = cell[i] = cli_json_text(json_object_get(o, dl->cols[i]))) == NULL)
            rc = KITH_ENOMEM;
    if (rc == 0)
        rc = cli_list_row(l, row);
    for (size_t i = 0; i < dl->ncols; i++)
        free(cell[i]);
    json_decref(o);
    return rc;
}

static int
list_fill(struct cli_list *l, void *ctx)
{
    return list_walk(ctx, list_visit, l);
}

/* Parse an index bound (--eq, --from, --to) for part `field` of the index: its value in
 * *out, or, for a reference, the text in *ref_text to resolve in the transaction. */
static int
bound_parse(const struct cli *c, struct doc_list *dl, const char *opt, const char *field,
            char *text, kith_value *out, const char **ref_text)
{
    const char *type = cli_decl_type(cli_decl_field(dl->cdecl, field));
    char why[256] = "", what[96];
    int krc;
    snprintf(what, sizeof what, "%s (%s)", opt, field);
    if (text[0] == '\0')
        return cli_fail(c, "%s: empty value", what);
    if (strcmp(type, "ref") == 0) {
        *ref_text = text;
        return CLI_OK;
    }
    krc = cli_parse_typed(type, text, out, why, sizeof why);
    return krc < 0 ? value_fail(c, what, why, krc) : CLI_OK;
}

/* The index `name` ("NAME" or "COLL.NAME") of the collection, its parts in parts[0..n). */
static int
index_find(const struct cli *c, struct doc_list *dl, const char *name, const char *parts[2],
           size_t *n)
{
    size_t clen = strlen(dl->coll);
    json_t *indexes = json_object_get(dl->cdecl, "indexes"), *ix, *p;
    const char *key;
    size_t i;

    if (strncmp(name, dl->coll, clen) == 0 && name[clen] == '.')
        name += clen + 1;
    ix = json_object_get(indexes, name);
    if (!json_is_array(ix) || json_array_size(ix) < 1 || json_array_size(ix) > 2) {
        char known[512] = "";
        size_t off = 0;
        json_object_foreach(indexes, key, p)
        {
            int w = snprintf(known + off, sizeof known - off, "%s%s", off ? ", " : "", key);
            if (w < 0 || (size_t)w >= sizeof known - off)
                break;
            off += (size_t)w;
        }
        return cli_fail(c, "--index: no index %s is declared in %s (%s%s)", name, dl->coll,
                        off ? "its indexes: " : "it has none", known);
    }
    if ((size_t)snprintf(dl->index, sizeof dl->index, "%s.%s", dl->coll, name) >= sizeof dl->index)
        return cli_fail(c, "--index: name too long");
    *n = json_array_size(ix);
    json_array_foreach(ix, i, p) parts[i] = json_string_value(p) ? json_string_value(p) : "";
    return CLI_OK;
}

int
cmd_ls(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"index", required_argument, NULL, 'i'}, {"eq", required_argument, NULL, 'e'},
        {"from", required_argument, NULL, 'f'},  {"to", required_argument, NULL, 't'},
        {"limit", required_argument, NULL, 'n'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    struct doc_list dl = {.limit = UINT64_MAX};
    const char *index = NULL, *ref[3] = {NULL, NULL, NULL};
    char *text[3] = {NULL, NULL, NULL};
    const char *parts[2], *opt[3] = {"--eq", "--from", "--to"};
    char headbuf[CLI_LIST_MAXCOLS - 1][68];
    const char *head[CLI_LIST_MAXCOLS] = {"ID"};
    kith_value bound[3];
    kith_replica *r = NULL;
    json_t *schema = NULL;
    struct cli_list l;
    size_t nparts = 0, ndecl = 0;
    bool json = false;
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'i':
            index = optarg;
            break;
        case 'e':
            text[0] = optarg;
            break;
        case 'f':
            text[1] = optarg;
            break;
        case 't':
            text[2] = optarg;
            break;
        case 'n':
            if (cli_parse_u64(optarg, &dl.limit) < 0)
                return cli_usage_error(c, "--limit: '%s' is not a number", optarg);
            break;
        case 'j':
            json = true;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (optind >= argc)
        return cli_usage_error(c, "missing COLL");
    if (optind + 1 < argc)
        return cli_usage_error(c, "unexpected argument '%s'", argv[optind + 1]);
    for (int i = 0; i < 3; i++)
        if (text[i] != NULL && index == NULL)
            return cli_usage_error(c, "%s bounds an index: give --index NAME", opt[i]);
    dl.coll = argv[optind];

    if ((rc = cli_open(c, CLI_READ, &r)) != CLI_OK)
        return rc;
    if ((rc = cli_decl_load(c, r, &schema)) != CLI_OK)
        goto out_close;
    dl.cdecl = cli_decl_coll(schema, dl.coll);
    if (index != NULL && dl.cdecl == NULL) {
        rc = not_declared_coll(c, dl.coll);
        goto out_close;
    }
    if (index != NULL && (rc = index_find(c, &dl, index, parts, &nparts)) != CLI_OK)
        goto out_close;
    if (text[0] != NULL && nparts != 2) {
        rc = cli_fail(c, "--eq: index %s is on one field, %s; --eq fixes the first of two", index,
                      parts[0]);
        goto out_close;
    }
    for (int i = 0; i < 3; i++)
        if (text[i] != NULL &&
            (rc = bound_parse(c, &dl, opt[i], i == 0 ? parts[0] : parts[nparts - 1], text[i],
                              &bound[i], &ref[i])) != CLI_OK)
            goto out_close;
    if ((krc = kith_txn_begin(r, KITH_TXN_READ, &dl.t)) < 0) {
        rc = cli_fail_rc(c, r, NULL, krc);
        goto out_close;
    }
    if ((rc = coll_readable(c, r, dl.t, dl.cdecl, dl.coll, &dl.none)) != CLI_OK)
        goto out_end;
    for (int i = 0; i < 3; i++) {
        if (ref[i] != NULL) {
            const char *f = i == 0 ? parts[0] : parts[nparts - 1];
            json_t *to = json_object_get(cli_decl_field(dl.cdecl, f), "to");
            bound[i].type = KITH_TYPE_REF;
            if ((rc = cli_resolve_ref(c, dl.t, opt[i], json_string_value(to), ref[i], false,
                                      &bound[i].u.ref)) != CLI_OK)
                goto out_end;
        }
    }
    dl.eq = text[0] != NULL ? &bound[0] : NULL;
    dl.lo = text[1] != NULL ? &bound[1] : NULL;
    dl.hi = text[2] != NULL ? &bound[2] : NULL;
    if (!dl.none && (krc = list_open(&dl, &dl.it)) < 0) {
        rc = cli_fail_rc(c, r, dl.index[0] != '\0' ? dl.index : dl.coll, krc);
        goto out_end;
    }
    if (!json) {
        /* the columns: the declared fields by name, then the others documents hold */
        const char *name;
        json_t *fd;
        json_object_foreach(cli_decl_fields(dl.cdecl), name, fd)
        {
            if (dl.ncols < CLI_LIST_MAXCOLS - 1)
                dl.cols[dl.ncols++] = name;
        }
        ndecl = dl.ncols;
        if ((krc = list_walk(&dl, scan_visit, &ndecl)) < 0) {
            rc = cli_fail_rc(c, r, "listing", krc);
            goto out_end;
        }
        for (size_t i = 0; i < dl.ncols; i++) {
            size_t j;
            for (j = 0; dl.cols[i][j] != '\0' && j + 1 < sizeof headbuf[i]; j++)
                headbuf[i][j] =
                    (char)(dl.cols[i][j] >= 'a' && dl.cols[i][j] <= 'z' ? dl.cols[i][j] - 'a' + 'A'
                                                                        : dl.cols[i][j]);
            headbuf[i][j] = '\0';
            head[i + 1] = headbuf[i];
        }
    }
    cli_list_init(&l, json, dl.coll, 1 + dl.ncols, head);
    rc = cli_list_run(c, r, "listing", &l, list_fill, &dl);
out_end:
    kith_iter_close(dl.it); /* left open only when the list failed before reading it */
    cli_end(r, &dl.t);
    r = NULL;
out_close:
    json_decref(schema);
    kith_close(r);
    return rc;
}
