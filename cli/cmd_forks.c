/*
 * cmd_forks.c — `kith forks [--json]`: the origins this replica found to have signed two
 * histories, one row each (spec/cli.md CLI-29, spec/data-model.md "Forks").
 *
 * A row says where the fork was seen (the seq, and how: a handshake, a batch or a proof
 * received), whether a fork proof is held, and when one is, which branch wins (the lower
 * chain hash after each branch's first commit, shown by its first 16 hex digits, as the
 * proof names it) and whether this replica holds the winning or the losing branch: the one
 * that resolution keeps, or the one it sets aside. `kith status` shows the same records as
 * lines of text; the JSON objects are the ones `kith status --json` lists under "forks". A
 * replica that took a new key after its own origin lost (kith rekey, FORK-11) says so below
 * the table, old id -> new id (`kith status --json`: "rekeyed").
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

const char *
cli_fork_source(int source)
{
    switch (source) {
    case KITH_FORK_HANDSHAKE:
        return "handshake";
    case KITH_FORK_BATCH:
        return "batch";
    case KITH_FORK_PROOF:
        return "proof";
    default:
        return "unknown";
    }
}

const char *
cli_fork_holds(const kith_fork *f)
{
    if (!f->has_proof)
        return NULL;
    switch (f->holds) {
    case KITH_FORK_HOLDS_WINNER:
        return "winner";
    case KITH_FORK_HOLDS_LOSER:
        return "loser";
    default:
        return "neither";
    }
}

struct forks_list {
    const kith_fork *f;
    size_t n;
};

static int
forks_fill(struct cli_list *l, void *ctx)
{
    const struct forks_list *fl = ctx;
    int rc = 0;

    for (size_t i = 0; i < fl->n && rc == 0; i++) {
        const kith_fork *f = &fl->f[i];
        if (l->json) {
            rc = cli_list_json(l, cli_fork_json(f));
            continue;
        }
        char origin[KITH_ID_HEX + 1], seq[24], proof[32], winner[2 * KITH_HASH_BYTES + 1];
        cli_id_hex(f->origin, origin);
        snprintf(seq, sizeof seq, "%llu", (unsigned long long)f->seq);
        if (f->has_proof) {
            snprintf(proof, sizeof proof, "from seq %llu", (unsigned long long)f->proof_seq + 1);
            cli_hex(f->winner, KITH_HASH_BYTES, winner);
            winner[16] = '\0';
        }
        const char *row[6] = {origin,
                              seq,
                              cli_fork_source(f->source),
                              f->has_proof ? proof : "no",
                              f->has_proof ? winner : NULL,
                              cli_fork_holds(f)};
        rc = cli_list_row(l, row);
    }
    return rc;
}

int
cmd_forks(struct cli *c, int argc, char **argv)
{
    static const char *const head[] = {"ORIGIN", "SEQ", "SOURCE", "PROOF", "WINNER", "HOLDS"};
    struct forks_list fl = {NULL, 0};
    kith_fork *forks = NULL;
    kith_replica *r = NULL;
    struct cli_list l;
    bool json = false;
    int rc, krc;

    if ((rc = cli_parse_simple(c, argc, argv, &json, 0, 0)) >= 0)
        return rc;
    if ((rc = cli_open(c, CLI_READ, &r)) != CLI_OK)
        return rc;
    if ((krc = kith_forks_get(r, &forks, &fl.n)) < 0) {
        rc = cli_fail_rc(c, r, "reading forks", krc);
        goto out_close;
    }
    fl.f = forks;
    cli_list_init(&l, json, "forks", 6, head);
    if (!json && fl.n == 0)
        printf("no forks\n");
    else
        rc = cli_list_run(c, r, "reading forks", &l, forks_fill, &fl);
    if (!json && rc == CLI_OK) {
        kith_rekey_info ri;
        char line[512];
        if (kith_rekey_get(r, &ri) > 0) {
            cli_rekey_text(&ri, line, sizeof line);
            printf("this replica re-keyed: %s\n", line);
        }
    }
    kith_forks_free(forks, fl.n);
out_close:
    kith_close(r);
    return rc;
}
