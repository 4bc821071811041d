/*
 * docs.c — a document of any collection as the CLI shows it: a JSON object of every field it
 * holds, declared or not, and the text of each value for people (`kith get`, `kith ls`).
 *
 * kith_iter_fields lists what a document holds by name, with each field's kind, whether or
 * not this replica declared it, so a replica that relays another app's collections shows
 * their documents as the app's own replicas do. The declaration adds the fields a document
 * holds no value for, each as its kind reads when empty, so that a script finds every
 * declared key (spec/cli.md CLI-9). People get the same object rendered as text, so the two
 * forms cannot disagree.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* What a declared field shows when the document holds no value for it: null for a register,
 * [] for a set, 0 for a counter (it sums no increments), false for a flag. */
static json_t *
absent_json(int kind)
{
    switch (kind) {
    case KITH_CRDT_SET:
        return json_array();
    case KITH_CRDT_COUNTER:
        return json_integer(0);
    case KITH_CRDT_FLAG:
        return json_false();
    default:
        return json_null();
    }
}

json_t *
cli_doc_all_json(kith_txn *t, const char *coll, json_t *cdecl, const kith_docid *doc, int *rc)
{
    json_t *o = json_object(), *fd;
    kith_iter *it = NULL;
    kith_field_entry e;
    const char *name;

    *rc = KITH_ENOMEM;
    if (o == NULL)
        return NULL;
    if ((*rc = kith_iter_fields(t, coll, doc, &it)) < 0)
        goto fail;
    while ((*rc = kith_iter_next_field(it, &e)) == 0) {
        json_t *val = e.value.type == KITH_TYPE_SET ? cli_set_json(t, coll, doc, e.name, rc)
                                                    : cli_value_json(&e.value);
        if (val == NULL) {
            if (e.value.type != KITH_TYPE_SET)
                *rc = KITH_ENOMEM;
            goto fail;
        }
        if (cli_jset(o, e.name, val) < 0) {
            *rc = KITH_ENOMEM;
            goto fail;
        }
    }
    if (*rc != KITH_ENOTFOUND)
        goto fail;
    *rc = KITH_ENOMEM;
    json_object_foreach(cli_decl_fields(cdecl), name, fd)
    {
        if (json_object_get(o, name) == NULL && cli_jset(o, name, absent_json(cli_decl_kind(fd))))
            goto fail;
    }
    if (cli_jset(o, "id", cli_json_docid(doc)) < 0)
        goto fail;
    kith_iter_close(it);
    *rc = 0;
    return o;
fail:
    kith_iter_close(it);
    json_decref(o);
    return NULL;
}

/* Append s to the heap string *buf (length *len), control characters as '?'. 0 or -1. */
static int
append_clean(char **buf, size_t *len, const char *s, size_t n)
{
    char *grown = realloc(*buf, *len + n + 1);
    if (grown == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        grown[*len + i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    *len += n;
    grown[*len] = '\0';
    *buf = grown;
    return 0;
}

char *
cli_json_text(json_t *v)
{
    char num[32], *out = NULL;
    size_t len = 0, i;
    json_t *e;
    int bad = 0;

    if (json_is_array(v) && json_array_size(v) > 0) {
        json_array_foreach(v, i, e)
        {
            char *one = cli_json_text(e);
            bad |= one == NULL || (i > 0 && append_clean(&out, &len, ", ", 2) < 0) ||
                   append_clean(&out, &len, one, strlen(one)) < 0;
            free(one);
        }
    } else if (json_is_string(v)) {
        bad = append_clean(&out, &len, json_string_value(v), json_string_length(v));
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        bad = append_clean(&out, &len, num, strlen(num));
    } else if (json_is_boolean(v)) {
        bad = append_clean(&out, &len, json_is_true(v) ? "yes" : "no", json_is_true(v) ? 3 : 2);
    } else {
        bad = append_clean(&out, &len, "-", 1);
    }
    if (bad) {
        free(out);
        return NULL;
    }
    return out;
}
