/*
 * cmd_conflicts.c — `kith conflicts [--all] [--json]` and `kith conflicts restore ID`.
 *
 * A conflict record is local: this replica saw two concurrent writes to one field and kept
 * the loser (spec/data-model.md "Conflicts"). Listing shows both values and both writes'
 * dots and clocks so a person can tell which device said what; restoring writes the losing
 * value again as a new, ordinary write, which then replicates like any edit. Records are
 * numbered locally, so their ids are plain decimal numbers, not hex.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static json_t *
side_json(kith_dot dot, uint64_t hlc, const kith_value *v)
{
    json_t *o = json_object();
    int bad = o == NULL;
    bad |= cli_jset(o, "origin", cli_json_id(dot.origin));
    bad |= cli_jset(o, "seq", json_integer((json_int_t)dot.seq));
    bad |= cli_jset(o, "hlc", cli_json_id(hlc));
    bad |= cli_jset(o, "time", cli_json_time((int64_t)(hlc >> 16)));
    bad |= cli_jset(o, "value", cli_value_json(v));
    return cli_json_done(o, bad);
}

static json_t *
conflict_json(const kith_conflict *k)
{
    json_t *o = json_object();
    int bad = o == NULL;
    bad |= cli_jset(o, "id", json_integer((json_int_t)k->id));
    bad |= cli_jset(o, "collection", json_string(k->collection));
    bad |= cli_jset(o, "doc", cli_json_docid(&k->doc));
    bad |= cli_jset(o, "field",
                    k->field != NULL && k->field[0] != '\0' ? json_string(k->field) : NULL);
    bad |= cli_jset(o, "winner", side_json(k->winner_dot, k->winner_hlc, &k->winner));
    bad |= cli_jset(o, "loser", side_json(k->loser_dot, k->loser_hlc, &k->loser));
    bad |= cli_jset(o, "recorded", cli_json_time(k->recorded_ms));
    bad |= cli_jset(o, "resolved", json_boolean(k->resolved));
    return cli_json_done(o, bad);
}

/* One side of a conflict for people: the value quoted (or `what` in parentheses when the
 * side is a whole-document event), then who wrote it and when, when that is known. */
static int
side_print(const struct cli *c, const char *label, const char *sgr, kith_dot dot, uint64_t hlc,
           const kith_value *v, const char *what)
{
    char origin[KITH_ID_HEX + 1], when[32], paren[32];
    char *text = what != NULL ? NULL : cli_value_text(v);
    if (what == NULL && text == NULL)
        return KITH_ENOMEM;
    printf("  %s%-8s%s  ", cli_sgr(c->color_out, sgr), label, cli_sgr(c->color_out, "0"));
    if (what != NULL) {
        snprintf(paren, sizeof paren, "(%s)", what);
        printf("%-24s", paren);
    } else if (v->type == KITH_TYPE_STRING) {
        printf("\"%s\"%*s", text, (int)(strlen(text) < 22 ? 22 - strlen(text) : 0), "");
    } else {
        printf("%-24s", text);
    }
    if (dot.origin != 0) {
        cli_id_hex(dot.origin, origin);
        cli_time((int64_t)(hlc >> 16), when);
        printf("  by %s:%llu", origin, (unsigned long long)dot.seq);
        if (hlc != 0)
            printf(" at %s", when);
    }
    putchar('\n');
    free(text);
    return 0;
}

static int
conflict_print(const struct cli *c, const kith_conflict *k)
{
    char doc[KITH_DOCID_HEX + 1], when[32];
    bool del = k->field == NULL || k->field[0] == '\0'; /* "": a delete was overruled */
    int rc;
    kith_docid_format(&k->doc, doc);
    cli_time(k->recorded_ms, when);
    printf("%sconflict %llu%s  %s %s  %s%s\n", cli_sgr(c->color_out, "1"),
           (unsigned long long)k->id, cli_sgr(c->color_out, "0"), k->collection, doc,
           del ? "(delete overruled by an edit)" : k->field, k->resolved ? "  [resolved]" : "");
    printf("  %-8s  %s\n", "recorded", when);
    /* a delete that lost: the winner is the concurrent edit, the loser the removal */
    rc = side_print(c, "winner", "32", k->winner_dot, k->winner_hlc, &k->winner,
                    del ? "edited" : NULL);
    if (rc == 0)
        rc = side_print(c, "loser", "31", k->loser_dot, k->loser_hlc, &k->loser,
                        del ? "deleted" : NULL);
    return rc;
}

/* What `conflicts` lists: the records `it` yields, in id order. The human form is no table
 * but blocks, which conflict_fill prints itself, a blank line between two. */
struct conflict_list {
    const struct cli *c;
    kith_iter *it;
    size_t n; /* records printed */
};

static int
conflict_fill(struct cli_list *l, void *ctx)
{
    struct conflict_list *cl = ctx;
    kith_conflict k;
    int rc;
    while ((rc = kith_iter_next_conflict(cl->it, &k)) == 0) {
        if (l->json) {
            rc = cli_list_json(l, conflict_json(&k));
        } else {
            if (cl->n > 0)
                putchar('\n');
            rc = conflict_print(cl->c, &k);
        }
        if (rc < 0)
            break;
        cl->n++;
    }
    return rc == KITH_ENOTFOUND ? 0 : rc;
}

int
cmd_conflicts(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool json = false, all = false;
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    struct conflict_list cl = {c, NULL, 0};
    struct cli_list l;
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'a':
            all = true;
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
    if ((rc = cli_begin(c, CLI_READ, &r, &t)) != CLI_OK)
        return rc;
    if ((krc = kith_iter_conflicts(t, all, &cl.it)) < 0) {
        rc = cli_fail_rc(c, r, "reading conflicts", krc);
        goto out_end;
    }
    cli_list_init(&l, json, "conflicts", 0, NULL);
    rc = cli_list_run(c, r, "reading conflicts", &l, conflict_fill, &cl);
    if (rc == CLI_OK && !json && cl.n == 0)
        printf("no %sconflicts\n", all ? "" : "open ");
    kith_iter_close(cl.it);
out_end:
    cli_end(r, &t);
    return rc;
}

int
cmd_conflicts_restore(struct cli *c, int argc, char **argv)
{
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    kith_conflict k;
    uint64_t id;
    int rc = cli_parse_simple(c, argc, argv, NULL, 1, 1), krc;
    if (rc >= 0)
        return rc;
    if (cli_parse_u64(argv[optind], &id) < 0 || id == 0)
        return cli_fail(c, "'%s' is not a conflict id (a number from 'kith conflicts')",
                        argv[optind]);
    if ((rc = cli_begin(c, CLI_WRITE, &r, &t)) != CLI_OK)
        return rc;
    krc = kith_conflict_get(t, id, &k);
    if (krc == KITH_ENOTFOUND) {
        rc = cli_fail(c, "no conflict %llu", (unsigned long long)id);
    } else if (krc < 0 || (krc = kith_conflict_resolve(t, id, true)) < 0 ||
               (krc = kith_txn_commit(&t)) < 0) {
        rc = cli_fail_rc(c, r, NULL, krc); /* a failed commit too: no "commit:" prefix here */
    } else {
        printf("restored conflict %llu\n", (unsigned long long)id);
    }
    cli_end(r, &t);
    return rc;
}
