/*
 * cmd_contact.c — `kith contact add|set|tag|rm|ls|show`.
 *
 * Every write command parses and checks all of its arguments before it opens the replica,
 * then makes its changes in one write transaction, which becomes one commit; if any step
 * fails the transaction is aborted, so a bad argument changes nothing (spec/cli.md
 * "Writes"). The generic document-to-JSON function lives here too, since contacts are the
 * richest documents; interactions and reminders use it as well.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#define CONTACTS "contacts"
#define MAX_TAGS 256 /* per command line */

/* A contact field given on the command line, checked before anything is written. */
struct field_arg {
    const char *field;
    kith_value value;
};

/* A plausible e-mail address: one '@' with something on both sides, no spaces or control
 * characters. Deliverability is not our business; catching "bob.example.com" is. */
static bool
email_plausible(const char *s)
{
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') != NULL)
        return false;
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* Parse one FIELD=VALUE (or an option's value) for a contact into *out. */
static int
contact_field(const struct cli *c, const char *field, const char *text, struct field_arg *out)
{
    const kith_field_def *def = cli_field(CONTACTS, field);
    out->field = field;
    if (def == NULL)
        return cli_fail(c, "%s: no such contact field", field);
    if (def->type == KITH_TYPE_SET)
        return cli_fail(c, "%s: a set; change it with 'kith contact tag'", field);
    if (text[0] == '\0') {
        if (def->required)
            return cli_fail(c, "%s: required, cannot be empty", field);
        out->value.type = KITH_TYPE_NULL;
        return CLI_OK;
    }
    if (strcmp(field, "email") == 0 && !email_plausible(text))
        return cli_fail(c, "email: '%s' is not an e-mail address", text);
    return cli_value(c, CONTACTS, field, text, &out->value);
}

/* Write the fields in *fa and the tags in one go; the transaction is the caller's. */
static int
write_fields(const struct cli *c, kith_replica *r, kith_txn *t, const kith_docid *doc,
             const struct field_arg *fa, size_t nfa)
{
    for (size_t i = 0; i < nfa; i++) {
        int krc = kith_field_set(t, CONTACTS, doc, fa[i].field, &fa[i].value);
        if (krc < 0)
            return cli_fail_rc(c, r, fa[i].field, krc);
    }
    return CLI_OK;
}

int
cmd_contact_add(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"email", required_argument, NULL, 'e'},
        {"phone", required_argument, NULL, 'p'},
        {"company", required_argument, NULL, 'c'},
        {"notes", required_argument, NULL, 'N'},
        {"birthday", required_argument, NULL, 'b'},
        {"tag", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct field_arg fa[8];
    const char *tags[MAX_TAGS];
    size_t nfa = 0, ntags = 0;
    bool have_name = false;
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    kith_docid doc;
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        const char *field = NULL;
        switch (ch) {
        case 'n':
            field = "name";
            have_name = true;
            break;
        case 'e':
            field = "email";
            break;
        case 'p':
            field = "phone";
            break;
        case 'c':
            field = "company";
            break;
        case 'N':
            field = "notes";
            break;
        case 'b':
            field = "birthday";
            break;
        case 't':
            if (ntags == MAX_TAGS)
                return cli_usage_error(c, "too many --tag options (at most %d)", MAX_TAGS);
            if (optarg[0] == '\0')
                return cli_fail(c, "tag: empty");
            tags[ntags++] = optarg;
            continue;
        default:
            return cli_opt_other(c, ch);
        }
        for (size_t i = 0; i < nfa; i++)
            if (strcmp(fa[i].field, field) == 0)
                return cli_usage_error(c, "--%s given twice", field);
        if (contact_field(c, field, optarg, &fa[nfa]) != CLI_OK)
            return CLI_FAIL;
        nfa++;
    }
    if (optind < argc)
        return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
    if (!have_name)
        return cli_usage_error(c, "--name is required");

    if ((rc = cli_begin(c, CLI_WRITE, &r, &t)) != CLI_OK)
        return rc;
    if ((krc = kith_doc_create(t, CONTACTS, &doc)) < 0)
        return cli_finish(c, r, &t, cli_fail_rc(c, r, NULL, krc));
    if ((rc = write_fields(c, r, t, &doc, fa, nfa)) != CLI_OK)
        return cli_finish(c, r, &t, rc);
    for (size_t i = 0; i < ntags; i++) {
        if ((krc = kith_set_add(t, CONTACTS, &doc, "tags", tags[i], strlen(tags[i]))) < 0)
            return cli_finish(c, r, &t, cli_fail_rc(c, r, "tags", krc));
    }
    return cli_finish_new(c, r, &t, CLI_OK, &doc);
}

int
cmd_contact_set(struct cli *c, int argc, char **argv)
{
    struct field_arg *fa = NULL;
    size_t nfa = 0;
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    kith_docid doc;
    int rc = cli_parse_simple(c, argc, argv, NULL, 2, argc);
    if (rc >= 0)
        return rc;
    const char *id = argv[optind];
    fa = calloc((size_t)(argc - optind), sizeof *fa);
    if (fa == NULL)
        return cli_fail(c, "%s", kith_strerror(KITH_ENOMEM));
    for (int i = optind + 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL || eq == argv[i]) {
            rc = cli_usage_error(c, "'%s': expected FIELD=VALUE", argv[i]);
            goto out_free;
        }
        *eq = '\0'; /* argv is ours to cut */
        for (size_t j = 0; j < nfa; j++)
            if (strcmp(fa[j].field, argv[i]) == 0) {
                rc = cli_usage_error(c, "%s given twice", argv[i]);
                goto out_free;
            }
        if ((rc = contact_field(c, argv[i], eq + 1, &fa[nfa])) != CLI_OK)
            goto out_free;
        nfa++;
    }

    if ((rc = cli_begin(c, CLI_WRITE, &r, &t)) != CLI_OK)
        goto out_free;
    if ((rc = cli_resolve(c, t, CONTACTS, id, &doc)) == CLI_OK)
        rc = write_fields(c, r, t, &doc, fa, nfa);
    rc = cli_finish(c, r, &t, rc);
out_free:
    free(fa);
    return rc;
}

int
cmd_contact_tag(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    kith_docid doc;
    int ch, rc, krc;

    /* '+': stop at the ID, so that "-TAG" after it is a value, not an option */
    if ((ch = cli_getopt(c, argc, argv, "+:h", opts)) != -1)
        return cli_opt_other(c, ch);
    if (argc - optind < 2)
        return cli_usage_error(c, argc - optind < 1 ? "missing ID" : "no tags given");
    for (int i = optind + 1; i < argc; i++) {
        const char *tag = argv[i] + (argv[i][0] == '+' || argv[i][0] == '-');
        if (tag[0] == '\0')
            return cli_fail(c, "tag: empty");
    }

    if ((rc = cli_begin(c, CLI_WRITE, &r, &t)) != CLI_OK)
        return rc;
    rc = cli_resolve(c, t, CONTACTS, argv[optind], &doc);
    for (int i = optind + 1; rc == CLI_OK && i < argc; i++) {
        bool remove = argv[i][0] == '-';
        const char *tag = argv[i] + (argv[i][0] == '+' || argv[i][0] == '-');
        krc = remove ? kith_set_remove(t, CONTACTS, &doc, "tags", tag, strlen(tag))
                     : kith_set_add(t, CONTACTS, &doc, "tags", tag, strlen(tag));
        if (krc < 0)
            rc = cli_fail_rc(c, r, "tags", krc);
    }
    return cli_finish(c, r, &t, rc);
}

int
cmd_contact_rm(struct cli *c, int argc, char **argv)
{
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    kith_docid doc;
    int rc = cli_parse_simple(c, argc, argv, NULL, 1, 1), krc;
    if (rc >= 0)
        return rc;
    if ((rc = cli_begin(c, CLI_WRITE, &r, &t)) != CLI_OK)
        return rc;
    if ((rc = cli_resolve(c, t, CONTACTS, argv[optind], &doc)) == CLI_OK &&
        (krc = kith_doc_delete(t, CONTACTS, &doc)) < 0)
        rc = cli_fail_rc(c, r, NULL, krc);
    return cli_finish(c, r, &t, rc);
}

/* ---- reading ----------------------------------------------------------------------------- */

json_t *
cli_set_json(kith_txn *t, const char *collection, const kith_docid *doc, const char *field, int *rc)
{
    json_t *arr = json_array();
    kith_iter *it = NULL;
    const char *elem;
    size_t len;
    if (arr == NULL) {
        *rc = KITH_ENOMEM;
        return NULL;
    }
    if ((*rc = kith_iter_set(t, collection, doc, field, &it)) < 0) {
        json_decref(arr);
        return NULL;
    }
    while ((*rc = kith_iter_next_elem(it, &elem, &len)) == 0) {
        if (json_array_append_new(arr, json_stringn(elem, len)) < 0) {
            *rc = KITH_ENOMEM;
            break;
        }
    }
    kith_iter_close(it);
    if (*rc != KITH_ENOTFOUND) {
        json_decref(arr);
        return NULL;
    }
    *rc = 0;
    return arr;
}

json_t *
cli_doc_json(kith_txn *t, const char *collection, const kith_docid *doc, int *rc)
{
    const kith_collection_def *def = cli_collection(collection);
    json_t *o = json_object();
    *rc = KITH_ENOMEM;
    if (o == NULL || def == NULL || cli_jset(o, "id", cli_json_docid(doc)) < 0)
        goto fail;
    for (size_t i = 0; i < def->nfields; i++) {
        const kith_field_def *f = &def->fields[i];
        json_t *val;
        if (f->type == KITH_TYPE_SET) {
            val = cli_set_json(t, collection, doc, f->name, rc);
            if (val == NULL)
                goto fail;
        } else {
            kith_value v;
            if ((*rc = kith_field_get(t, collection, doc, f->name, &v)) < 0)
                goto fail;
            val = cli_value_json(&v);
        }
        *rc = KITH_ENOMEM;
        if (cli_jset(o, f->name, val) < 0)
            goto fail;
    }
    *rc = 0;
    return o;
fail:
    json_decref(o);
    return NULL;
}

/* A field of a document rendered for a table cell (heap string; "-" when unset). */
char *
cli_field_text(kith_txn *t, const char *collection, const kith_docid *doc, const char *field)
{
    kith_value v;
    if (kith_field_get(t, collection, doc, field, &v) < 0)
        return NULL;
    return cli_value_text(&v);
}

/* The elements of a set field joined with ", " (a heap string), "" when empty. */
char *
cli_set_text(kith_txn *t, const char *collection, const kith_docid *doc, const char *field)
{
    int rc;
    json_t *arr = cli_set_json(t, collection, doc, field, &rc);
    size_t n, total = 1, off = 0;
    char *out;
    if (arr == NULL)
        return NULL;
    n = json_array_size(arr);
    for (size_t i = 0; i < n; i++)
        total += json_string_length(json_array_get(arr, i)) + 2;
    out = malloc(total);
    if (out != NULL) {
        for (size_t i = 0; i < n; i++) {
            json_t *s = json_array_get(arr, i);
            size_t len = json_string_length(s);
            if (i > 0) {
                memcpy(out + off, ", ", 2);
                off += 2;
            }
            memcpy(out + off, json_string_value(s), len);
            off += len;
        }
        out[off] = '\0';
    }
    json_decref(arr);
    return out;
}

/* A contact as a row of `contact ls`. 0, or KITH_ENOMEM, or the code of a failed write. */
static int
contact_row(struct cli_list *l, kith_txn *t, const kith_docid *doc)
{
    static const char *const cols[] = {"name", "email", "phone", "company"};
    char hex[KITH_DOCID_HEX + 1], *cell[5] = {NULL};
    bool ok = true;
    int rc;
    kith_docid_format(doc, hex);
    for (size_t i = 0; i < 4; i++)
        ok &= (cell[i] = cli_field_text(t, CONTACTS, doc, cols[i])) != NULL;
    ok &= (cell[4] = cli_set_text(t, CONTACTS, doc, "tags")) != NULL;
    const char *row[] = {hex,     cell[0], cell[1],
                         cell[2], cell[3], cell[4] != NULL && cell[4][0] != '\0' ? cell[4] : "-"};
    rc = ok ? cli_list_row(l, row) : KITH_ENOMEM;
    for (size_t i = 0; i < 5; i++)
        free(cell[i]);
    return rc;
}

/* What `contact ls` lists: the contacts in name order, from the index iterator `it` (opened
 * by the command, for the first pass; each later pass opens its own). */
struct contact_list {
    kith_txn *t;
    kith_iter *it;
};

static int
contact_fill(struct cli_list *l, void *ctx)
{
    struct contact_list *cl = ctx;
    kith_docid doc;
    int rc = 0;
    if (cl->it == NULL &&
        (rc = kith_iter_index(cl->t, "contacts.name", NULL, NULL, NULL, &cl->it)) < 0)
        return rc;
    while (rc == 0 && (rc = kith_iter_next(cl->it, &doc)) == 0) {
        if (l->json) {
            json_t *o = cli_doc_json(cl->t, CONTACTS, &doc, &rc);
            rc = o != NULL ? cli_list_json(l, o) : rc;
        } else {
            rc = contact_row(l, cl->t, &doc);
        }
    }
    kith_iter_close(cl->it);
    cl->it = NULL;
    return rc == KITH_ENOTFOUND ? 0 : rc;
}

int
cmd_contact_ls(struct cli *c, int argc, char **argv)
{
    static const char *const head[] = {"ID", "NAME", "EMAIL", "PHONE", "COMPANY", "TAGS"};
    kith_replica *r = NULL;
    struct contact_list cl = {NULL, NULL};
    struct cli_list l;
    bool json;
    int rc = cli_parse_simple(c, argc, argv, &json, 0, 0), krc;
    if (rc >= 0)
        return rc;
    if ((rc = cli_begin(c, CLI_READ, &r, &cl.t)) != CLI_OK)
        return rc;
    if ((krc = kith_iter_index(cl.t, "contacts.name", NULL, NULL, NULL, &cl.it)) < 0) {
        rc = cli_fail_rc(c, r, "contacts.name", krc);
        goto out_end;
    }
    cli_list_init(&l, json, "contacts", 6, head);
    rc = cli_list_run(c, r, "listing contacts", &l, contact_fill, &cl);
    kith_iter_close(cl.it); /* left open only when the list failed before reading it */
out_end:
    cli_end(r, &cl.t);
    return rc;
}

/* Print a document as "field  value" lines, fields in schema order, names padded to at
 * least minw columns. */
static int
doc_print(const struct cli *c, kith_txn *t, const char *collection, const kith_docid *doc,
          size_t minw)
{
    const kith_collection_def *def = cli_collection(collection);
    const char *b = cli_sgr(c->color_out, "1"), *n = cli_sgr(c->color_out, "0");
    char hex[KITH_DOCID_HEX + 1];
    size_t w = minw;
    if (def == NULL)
        return KITH_ENOTFOUND;
    for (size_t i = 0; i < def->nfields; i++)
        if (strlen(def->fields[i].name) > w)
            w = strlen(def->fields[i].name);
    kith_docid_format(doc, hex);
    printf("%s%-*s%s  %s\n", b, (int)w, "id", n, hex);
    for (size_t i = 0; i < def->nfields; i++) {
        const kith_field_def *f = &def->fields[i];
        char *text = f->type == KITH_TYPE_SET ? cli_set_text(t, collection, doc, f->name)
                                              : cli_field_text(t, collection, doc, f->name);
        if (text == NULL)
            return KITH_ENOMEM;
        printf("%s%-*s%s  %s\n", b, (int)w, f->name, n, text[0] != '\0' ? text : "-");
        free(text);
    }
    return 0;
}

/*
 * For people: the contact's activity under its fields — how many interactions and the latest,
 * how many open reminders and the next one due. Interactions come from the index
 * "interactions.contact" (by time); reminders are few, so they are filtered by contact here.
 */
static int
activity_print(const struct cli *c, kith_txn *t, const kith_docid *doc, int width)
{
    const char *b = cli_sgr(c->color_out, "1"), *n = cli_sgr(c->color_out, "0");
    kith_value eq = {.type = KITH_TYPE_REF};
    kith_iter *it = NULL;
    kith_docid cur, last, next;
    uint64_t count = 0, open = 0;
    int rc;

    eq.u.ref = *doc;
    if ((rc = kith_iter_index(t, "interactions.contact", &eq, NULL, NULL, &it)) < 0)
        return rc;
    while ((rc = kith_iter_next(it, &cur)) == 0) {
        last = cur;
        count++;
    }
    kith_iter_close(it);
    if (rc != KITH_ENOTFOUND)
        return rc;
    printf("%s%-*s%s  %llu", b, width, "interactions", n, (unsigned long long)count);
    if (count > 0) {
        char *at = cli_field_text(t, "interactions", &last, "at");
        char *kind = cli_field_text(t, "interactions", &last, "kind");
        char *sum = cli_field_text(t, "interactions", &last, "summary");
        if (at != NULL && kind != NULL && sum != NULL)
            printf(", latest %s %s: %s", at, kind, sum);
        free(at);
        free(kind);
        free(sum);
    }
    putchar('\n');

    if ((rc = kith_iter_index(t, "reminders.due", NULL, NULL, NULL, &it)) < 0)
        return rc;
    while ((rc = kith_iter_next(it, &cur)) == 0) {
        kith_value who, done;
        if ((rc = kith_field_get(t, "reminders", &cur, "contact", &who)) < 0 ||
            (rc = kith_field_get(t, "reminders", &cur, "done", &done)) < 0)
            break;
        if (who.type != KITH_TYPE_REF || memcmp(who.u.ref.bytes, doc->bytes, KITH_DOCID_BYTES))
            continue;
        if (done.type == KITH_TYPE_BOOL && done.u.b)
            continue;
        if (open++ == 0)
            next = cur;
    }
    kith_iter_close(it);
    if (rc != KITH_ENOTFOUND)
        return rc;
    printf("%s%-*s%s  %llu open", b, width, "reminders", n, (unsigned long long)open);
    if (open > 0) {
        char *due = cli_field_text(t, "reminders", &next, "due");
        char *text = cli_field_text(t, "reminders", &next, "text");
        if (due != NULL && text != NULL)
            printf(", next %s: %s", due, text);
        free(due);
        free(text);
    }
    putchar('\n');
    return 0;
}

int
cmd_contact_show(struct cli *c, int argc, char **argv)
{
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    kith_docid doc;
    bool json;
    int rc = cli_parse_simple(c, argc, argv, &json, 1, 1), krc;
    if (rc >= 0)
        return rc;
    if ((rc = cli_begin(c, CLI_READ, &r, &t)) != CLI_OK)
        return rc;
    if ((rc = cli_resolve(c, t, CONTACTS, argv[optind], &doc)) != CLI_OK)
        goto out_end;
    if (json) {
        json_t *o = cli_doc_json(t, CONTACTS, &doc, &krc);
        if (o == NULL)
            rc = cli_fail_rc(c, r, NULL, krc);
        else
            rc = cli_json_print(c, o);
    } else if ((krc = doc_print(c, t, CONTACTS, &doc, 12)) < 0 ||
               (krc = activity_print(c, t, &doc, 12)) < 0) {
        rc = cli_fail_rc(c, r, NULL, krc);
    }
out_end:
    cli_end(r, &t);
    return rc;
}
