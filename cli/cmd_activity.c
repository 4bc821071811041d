/*
 * cmd_activity.c — what happens around contacts: `kith interaction add|ls` and
 * `kith reminder add|done|ls`.
 *
 * Interactions and reminders refer to contacts by id (KITH_TYPE_REF); the CLI resolves the
 * contact arguments (full ids or unique prefixes) inside the same write transaction that
 * stores the reference, so it never points at a contact the transaction cannot see. Lists
 * come in index order: interactions of one contact by time through "interactions.contact",
 * reminders by due time through "reminders.due"; all interactions, which no index orders by
 * time alone, are sorted here (spec/cli.md).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

#define MAX_WITH 256 /* --with options per command line */

/* The contact's name for a table cell, or its id when it has none (deleted since). */
static char *
contact_label(kith_txn *t, const kith_value *ref)
{
    char hex[KITH_DOCID_HEX + 1];
    kith_value name;
    if (ref->type != KITH_TYPE_REF)
        return cli_value_text(ref);
    if (kith_field_get(t, "contacts", &ref->u.ref, "name", &name) == 0 &&
        name.type == KITH_TYPE_STRING)
        return cli_value_text(&name);
    kith_docid_format(&ref->u.ref, hex);
    return cli_value_text(&(kith_value){.type = KITH_TYPE_STRING, .u.s = {hex, strlen(hex)}});
}

static int
set_field(const struct cli *c, kith_replica *r, kith_txn *t, const char *collection,
          const kith_docid *doc, const char *field, const kith_value *v)
{
    int krc = kith_field_set(t, collection, doc, field, v);
    return krc < 0 ? cli_fail_rc(c, r, field, krc) : CLI_OK;
}

/* A field to write and its value (fields whose value is null are left unset). */
struct field_val {
    const char *field;
    const kith_value *value;
};

/* Create a document of `collection` about the contact `contact` names (a full id or a unique
 * prefix): its "contact" field refers to it, then the fields in fv[0..n) are written, in
 * order. CLI_OK with the new id in *doc, or the failure reported; the transaction is the
 * caller's. */
static int
add_for_contact(const struct cli *c, kith_replica *r, kith_txn *t, const char *collection,
                const char *contact, const struct field_val *fv, size_t n, kith_docid *doc)
{
    kith_value ref = {.type = KITH_TYPE_REF};
    int rc, krc;
    if ((rc = cli_resolve(c, t, "contacts", contact, &ref.u.ref)) != CLI_OK)
        return rc;
    if ((krc = kith_doc_create(t, collection, doc)) < 0)
        return cli_fail_rc(c, r, NULL, krc);
    rc = set_field(c, r, t, collection, doc, "contact", &ref);
    for (size_t i = 0; rc == CLI_OK && i < n; i++)
        if (fv[i].value->type != KITH_TYPE_NULL)
            rc = set_field(c, r, t, collection, doc, fv[i].field, fv[i].value);
    return rc;
}

int
cmd_interaction_add(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"kind", required_argument, NULL, 'k'},    {"at", required_argument, NULL, 'a'},
        {"summary", required_argument, NULL, 's'}, {"with", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *with[MAX_WITH];
    size_t nwith = 0;
    kith_value kind = {.type = KITH_TYPE_NULL}, at = {.type = KITH_TYPE_NULL},
               summary = {.type = KITH_TYPE_NULL};
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    kith_docid doc;
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'k':
            if (cli_value(c, "interactions", "kind", optarg, &kind) != CLI_OK)
                return CLI_FAIL;
            break;
        case 'a':
            if (cli_value(c, "interactions", "at", optarg, &at) != CLI_OK)
                return CLI_FAIL;
            break;
        case 's':
            if (cli_value(c, "interactions", "summary", optarg, &summary) != CLI_OK)
                return CLI_FAIL;
            break;
        case 'w':
            if (nwith == MAX_WITH)
                return cli_usage_error(c, "too many --with options (at most %d)", MAX_WITH);
            with[nwith++] = optarg;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error(c,
                               argc - optind < 1 ? "missing CONTACT" : "unexpected argument '%s'",
                               argv[optind + 1 < argc ? optind + 1 : 0]);
    if (kind.type == KITH_TYPE_NULL)
        return cli_usage_error(c, "--kind is required");
    if (at.type == KITH_TYPE_NULL)
        at = (kith_value){.type = KITH_TYPE_TIME, .u.i = cli_now_ms()};

    const struct field_val fv[] = {{"kind", &kind}, {"at", &at}, {"summary", &summary}};
    if ((rc = cli_begin(c, CLI_WRITE, &r, &t)) != CLI_OK)
        return rc;
    rc = add_for_contact(c, r, t, "interactions", argv[optind], fv, 3, &doc);
    for (size_t i = 0; rc == CLI_OK && i < nwith; i++) {
        kith_docid who;
        char whohex[KITH_DOCID_HEX + 1];
        if ((rc = cli_resolve(c, t, "contacts", with[i], &who)) != CLI_OK)
            break;
        kith_docid_format(&who, whohex);
        krc = kith_set_add(t, "interactions", &doc, "participants", whohex, KITH_DOCID_HEX);
        if (krc < 0)
            rc = cli_fail_rc(c, r, "participants", krc);
    }
    return cli_finish_new(c, r, &t, rc, &doc);
}

/* ---- listing ------------------------------------------------------------------------------- */

/* One document to list and the key it is sorted by. */
struct listed {
    kith_docid doc;
    int64_t at;
};

static int
by_time(const void *a, const void *b)
{
    const struct listed *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return memcmp(x->doc.bytes, y->doc.bytes, KITH_DOCID_BYTES);
}

/* Every live document of `collection`, sorted by the TIME field `field`. *out is malloc'd. */
static int
collect_sorted(kith_txn *t, const char *collection, const char *field, struct listed **out,
               size_t *n)
{
    kith_iter *it = NULL;
    struct listed *v = NULL;
    size_t len = 0, cap = 0;
    kith_docid doc;
    int rc = kith_iter_docs(t, collection, &it);
    if (rc < 0)
        return rc;
    while ((rc = kith_iter_next(it, &doc)) == 0) {
        kith_value val;
        if ((rc = kith_field_get(t, collection, &doc, field, &val)) < 0)
            break;
        if (len == cap) {
            struct listed *nv = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof *v);
            if (nv == NULL) {
                rc = KITH_ENOMEM;
                break;
            }
            v = nv;
        }
        v[len].doc = doc;
        v[len].at = val.type == KITH_TYPE_TIME ? val.u.i : INT64_MIN;
        len++;
    }
    kith_iter_close(it);
    if (rc != KITH_ENOTFOUND) {
        free(v);
        return rc < 0 ? rc : KITH_ENOMEM;
    }
    if (len > 1)
        qsort(v, len, sizeof *v, by_time);
    *out = v;
    *n = len;
    return 0;
}

/* Columns of a list: a field name, or a special "contact" column showing the name. */
struct list_spec {
    const char *collection;
    size_t ncols;
    const char *const *head;
    const char *const *fields; /* per column after ID; "contact" shows the contact's name */
    const char *key;           /* the top-level JSON key */
};

/* One document as an element of the list: a JSON object, or a table row. */
static int
list_elem(struct cli_list *l, kith_txn *t, const struct list_spec *ls, const kith_docid *doc)
{
    char hex[KITH_DOCID_HEX + 1], *cell[8] = {NULL};
    const char *row[9];
    bool ok = true;
    int rc;
    if (l->json) {
        json_t *d = cli_doc_json(t, ls->collection, doc, &rc);
        return d != NULL ? cli_list_json(l, d) : rc;
    }
    kith_docid_format(doc, hex);
    row[0] = hex;
    for (size_t i = 0; i < ls->ncols - 1 && ok; i++) {
        const kith_field_def *f = cli_field(ls->collection, ls->fields[i]);
        if (strcmp(ls->fields[i], "contact") == 0) {
            kith_value ref;
            ok = kith_field_get(t, ls->collection, doc, "contact", &ref) == 0 &&
                 (cell[i] = contact_label(t, &ref)) != NULL;
        } else if (f != NULL && f->type == KITH_TYPE_SET) {
            ok = (cell[i] = cli_set_text(t, ls->collection, doc, ls->fields[i])) != NULL;
        } else {
            ok = (cell[i] = cli_field_text(t, ls->collection, doc, ls->fields[i])) != NULL;
        }
        row[i + 1] = cell[i];
    }
    rc = ok ? cli_list_row(l, row) : KITH_ENOMEM;
    for (size_t i = 0; i < 8; i++)
        free(cell[i]);
    return rc;
}

/*
 * What a list of interactions or reminders shows: the documents of an index range, read
 * afresh by each pass (the first pass takes `it`, opened by the command to report a bad
 * index in its own words), or documents already sorted into docs[0..n).
 */
struct activity_list {
    kith_txn *t;
    const struct list_spec *ls;
    const char *index;         /* the index, or NULL for docs[] */
    const kith_value *eq, *hi; /* its range, as kith_iter_index takes them */
    kith_iter *it;             /* the first pass's iterator; NULL once used */
    const struct listed *docs; /* when index is NULL */
    size_t n;
};

static int
activity_fill(struct cli_list *l, void *ctx)
{
    struct activity_list *al = ctx;
    kith_docid doc;
    int rc = 0;
    if (al->index == NULL) {
        for (size_t i = 0; rc == 0 && i < al->n; i++)
            rc = list_elem(l, al->t, al->ls, &al->docs[i].doc);
        return rc;
    }
    if (al->it == NULL &&
        (rc = kith_iter_index(al->t, al->index, al->eq, NULL, al->hi, &al->it)) < 0)
        return rc;
    while (rc == 0 && (rc = kith_iter_next(al->it, &doc)) == 0)
        rc = list_elem(l, al->t, al->ls, &doc);
    kith_iter_close(al->it);
    al->it = NULL;
    return rc == KITH_ENOTFOUND ? 0 : rc;
}

/* List what `al` describes as a table or as {"<key>": [...]}; `what` words a failure. */
static int
print_list(const struct cli *c, kith_replica *r, const char *what, struct activity_list *al,
           bool json)
{
    struct cli_list l;
    int rc;
    cli_list_init(&l, json, al->ls->key, al->ls->ncols, al->ls->head);
    rc = cli_list_run(c, r, what, &l, activity_fill, al);
    kith_iter_close(al->it); /* left open only when the list failed before reading it */
    al->it = NULL;
    return rc;
}

int
cmd_interaction_ls(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"contact", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const head[] = {"ID", "AT", "KIND", "CONTACT", "SUMMARY"};
    static const char *const fields[] = {"at", "kind", "contact", "summary"};
    static const struct list_spec spec = {"interactions", 5, head, fields, "interactions"};
    const char *contact = NULL;
    bool json = false;
    kith_replica *r = NULL;
    kith_value eq = {.type = KITH_TYPE_REF};
    struct activity_list al = {.ls = &spec};
    struct listed *sorted = NULL;
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'c':
            contact = optarg;
            break;
        case 'j':
            json = true;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (optind < argc)
        return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
    if ((rc = cli_begin(c, CLI_READ, &r, &al.t)) != CLI_OK)
        return rc;
    if (contact != NULL) {
        if ((rc = cli_resolve(c, al.t, "contacts", contact, &eq.u.ref)) != CLI_OK)
            goto out_end;
        al.index = "interactions.contact";
        al.eq = &eq;
        if ((krc = kith_iter_index(al.t, al.index, al.eq, NULL, NULL, &al.it)) < 0) {
            rc = cli_fail_rc(c, r, "interactions.contact", krc);
            goto out_end;
        }
    } else if ((krc = collect_sorted(al.t, "interactions", "at", &sorted, &al.n)) < 0) {
        rc = cli_fail_rc(c, r, "listing interactions", krc);
        goto out_end;
    }
    al.docs = sorted;
    rc = print_list(c, r, "listing interactions", &al, json);
    free(sorted);
out_end:
    cli_end(r, &al.t);
    return rc;
}

/* ---- reminders --------------------------------------------------------------------------------
 */

int
cmd_reminder_add(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"due", required_argument, NULL, 'd'},
        {"text", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kith_value due = {.type = KITH_TYPE_NULL}, text = {.type = KITH_TYPE_NULL},
               done = {.type = KITH_TYPE_BOOL, .u.b = false};
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    kith_docid doc;
    int ch, rc;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'd':
            if (cli_value(c, "reminders", "due", optarg, &due) != CLI_OK)
                return CLI_FAIL;
            break;
        case 't':
            if (optarg[0] == '\0')
                return cli_fail(c, "text: required, cannot be empty");
            if (cli_value(c, "reminders", "text", optarg, &text) != CLI_OK)
                return CLI_FAIL;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error(c,
                               argc - optind < 1 ? "missing CONTACT" : "unexpected argument '%s'",
                               argv[optind + 1 < argc ? optind + 1 : 0]);
    if (due.type == KITH_TYPE_NULL)
        return cli_usage_error(c, "--due is required");
    if (text.type == KITH_TYPE_NULL)
        return cli_usage_error(c, "--text is required");

    const struct field_val fv[] = {{"due", &due}, {"text", &text}, {"done", &done}};
    if ((rc = cli_begin(c, CLI_WRITE, &r, &t)) != CLI_OK)
        return rc;
    rc = add_for_contact(c, r, t, "reminders", argv[optind], fv, 3, &doc);
    return cli_finish_new(c, r, &t, rc, &doc);
}

int
cmd_reminder_done(struct cli *c, int argc, char **argv)
{
    kith_value done = {.type = KITH_TYPE_BOOL, .u.b = true};
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    kith_docid doc;
    int rc = cli_parse_simple(c, argc, argv, NULL, 1, 1);
    if (rc >= 0)
        return rc;
    if ((rc = cli_begin(c, CLI_WRITE, &r, &t)) != CLI_OK)
        return rc;
    if ((rc = cli_resolve(c, t, "reminders", argv[optind], &doc)) == CLI_OK)
        rc = set_field(c, r, t, "reminders", &doc, "done", &done);
    return cli_finish(c, r, &t, rc);
}

int
cmd_reminder_ls(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"due-before", required_argument, NULL, 'b'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const head[] = {"ID", "DUE", "DONE", "CONTACT", "TEXT"};
    static const char *const fields[] = {"due", "done", "contact", "text"};
    static const struct list_spec spec = {"reminders", 5, head, fields, "reminders"};
    kith_value before = {.type = KITH_TYPE_NULL};
    bool json = false;
    kith_replica *r = NULL;
    struct activity_list al = {.ls = &spec, .index = "reminders.due"};
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'b':
            if (cli_value(c, "reminders", "due", optarg, &before) != CLI_OK)
                return CLI_FAIL;
            break;
        case 'j':
            json = true;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (optind < argc)
        return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
    if ((rc = cli_begin(c, CLI_READ, &r, &al.t)) != CLI_OK)
        return rc;
    al.hi = before.type == KITH_TYPE_NULL ? NULL : &before;
    if ((krc = kith_iter_index(al.t, al.index, NULL, NULL, al.hi, &al.it)) < 0)
        rc = cli_fail_rc(c, r, "listing reminders", krc);
    else
        rc = print_list(c, r, "listing reminders", &al, json);
    cli_end(r, &al.t);
    return rc;
}
