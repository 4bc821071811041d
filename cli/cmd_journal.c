/*
 * cmd_journal.c — `kith journal`: the commits a fork's resolution set aside, listed as the log
 * lists ops, and `kith journal restore`, which writes one (or all) again as new writes
 * (spec/data-model.md FORK-10, spec/cli.md).
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct journal_list {
    kith_txn *t;
    uint64_t origin;
    kith_iter *it; /* the first pass's iterator; NULL once used */
    uint64_t n;
};

static json_t *
journal_op_json(const kith_journal_op *e)
{
    json_t *o = log_entry_json(&e->op);
    int bad = o == NULL;
    char commit[64], origin[KITH_ID_HEX + 1];

    cli_id_hex(e->commit.origin, origin);
    snprintf(commit, sizeof commit, "%s:%llu", origin, (unsigned long long)e->commit.seq);
    bad |= cli_jset(o, "commit", json_string(commit));
    bad |= cli_jset(o, "set_aside", cli_json_time(e->set_aside_ms));
    bad |= cli_jset(o, "restored", json_boolean(e->restored));
    return cli_json_done(o, bad);
}

static int
journal_fill(struct cli_list *l, void *ctx)
{
    struct journal_list *jl = ctx;
    kith_journal_op e;
    int rc = 0;

    if (jl->it == NULL && (rc = kith_iter_journal(jl->t, jl->origin, &jl->it)) < 0)
        return rc;
    jl->n = 0;
    while (rc == 0 && (rc = kith_iter_next_journal(jl->it, &e)) == 0) {
        rc = l->json ? cli_list_json(l, journal_op_json(&e))
                     : log_entry_row(l, &e.op, e.restored ? " (restored)" : " (set aside)");
        jl->n++;
    }
    kith_iter_close(jl->it);
    jl->it = NULL;
    return rc == KITH_ENOTFOUND ? 0 : rc;
}

int
cmd_journal(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"origin", required_argument, NULL, 'o'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const head[] = {"DOT",      "TIME",  "OP",   "COLLECTION",
                                       "DOCUMENT", "FIELD", "VALUE"};
    struct journal_list jl = {NULL, 0, NULL, 0};
    bool json = false;
    kith_replica *r = NULL;
    struct cli_list l;
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'o':
            if (cli_parse_id(optarg, &jl.origin) < 0 || jl.origin == 0)
                return cli_usage_error(c, "--origin: '%s' is not a replica id (16 hex digits)",
                                       optarg);
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
    if ((rc = cli_begin(c, CLI_READ, &r, &jl.t)) != CLI_OK)
        return rc;
    krc = kith_iter_journal(jl.t, jl.origin, &jl.it);
    if (krc == KITH_ENOTFOUND) { /* a replica made before the journal, read-only */
        if (json)
            printf("{\"ops\":[]}\n");
        else
            printf("the journal is empty\n");
        goto out_end;
    }
    if (krc < 0) {
        rc = cli_fail_rc(c, r, "reading the journal", krc);
        goto out_end;
    }
    cli_list_init(&l, json, "ops", 7, head);
    rc = cli_list_run(c, r, "reading the journal", &l, journal_fill, &jl);
    if (rc == CLI_OK && !json && jl.n == 0)
        printf("the journal is empty\n");
    kith_iter_close(jl.it);
out_end:
    cli_end(r, &jl.t);
    return rc;
}

/* The commits of the journal not restored yet, in order (origin, then seq). */
static int
pending_commits(kith_txn *t, kith_dot **out, size_t *n)
{
    kith_iter *it = NULL;
    kith_journal_op e;
    size_t cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = kith_iter_journal(t, 0, &it)) < 0)
        return rc == KITH_ENOTFOUND ? 0 : rc;
    while ((rc = kith_iter_next_journal(it, &e)) == 0) {
        if (e.restored || (*n > 0 && (*out)[*n - 1].origin == e.commit.origin &&
                           (*out)[*n - 1].seq == e.commit.seq))
            continue;
        if (*n == cap) {
            kith_dot *p = realloc(*out, (cap = cap ? 2 * cap : 16) * sizeof *p);
            if (p == NULL) {
                rc = KITH_ENOMEM;
                break;
            }
            *out = p;
        }
        (*out)[(*n)++] = e.commit;
    }
    kith_iter_close(it);
    return rc == KITH_ENOTFOUND ? 0 : rc;
}

/* Parse ORIGIN:SEQ, as `kith journal` shows a commit's first op. */
static int
parse_dot(const char *text, kith_dot *d)
{
    char origin[KITH_ID_HEX + 1];
    const char *colon = strchr(text, ':');

    if (colon == NULL || colon - text != KITH_ID_HEX)
        return -1;
    memcpy(origin, text, KITH_ID_HEX);
    origin[KITH_ID_HEX] = '\0';
    return cli_parse_id(origin, &d->origin) < 0 || d->origin == 0 ||
                   cli_parse_u64(colon + 1, &d->seq) < 0 || d->seq == 0
               ? -1
               : 0;
}

int
cmd_journal_restore(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    kith_dot one, *todo = NULL;
    size_t n = 0, skipped = 0, skip;
    bool all = false;
    int ch, rc, krc = 0;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        if (ch == 'a')
            all = true;
        else
            return cli_opt_other(c, ch);
    }
    if (all == (optind < argc) || argc - optind > 1)
        return cli_usage_error(c, "give one commit (ORIGIN:SEQ, as 'kith journal' shows it) "
                                  "or --all");
    if (!all && parse_dot(argv[optind], &one) < 0)
        return cli_fail(c,
                        "'%s' is not a commit: ORIGIN:SEQ, 16 hex digits, a colon and the "
                        "seq of its first op, as 'kith journal' shows it",
                        argv[optind]);
    if ((rc = cli_begin(c, CLI_WRITE, &r, &t)) != CLI_OK)
        return rc;
    if (all) {
        krc = pending_commits(t, &todo, &n);
    } else {
        todo = malloc(sizeof *todo);
        if (todo == NULL)
            krc = KITH_ENOMEM;
        else
            todo[n++] = one;
    }
    for (size_t i = 0; krc == 0 && i < n; i++) {
        krc = kith_journal_restore(t, &todo[i], &skip);
        skipped += skip;
    }
    if (krc == 0)
        krc = kith_txn_commit(&t);
    if (krc < 0) {
        rc = cli_fail_rc(c, r, "nothing was restored", krc);
    } else if (n == 0) {
        printf("nothing to restore: every commit of the journal is restored\n");
    } else {
        printf("restored %zu commit%s", n, n == 1 ? "" : "s");
        if (skipped > 0)
            printf(" (%zu op%s skipped: their documents are gone)", skipped,
                   skipped == 1 ? "" : "s");
        printf("\n");
    }
    free(todo);
    cli_end(r, &t);
    return rc;
}
