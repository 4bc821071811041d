/*
 * txn.c — the replica and transaction around one command's work: open the replica and begin
 * a transaction in one step, then commit (writes) or abort (reads) and close in one step.
 *
 * Every command that reads documents or writes ops does the same dance around its own few
 * lines, and reports the library's failures the same way (cli_fail_rc), so the dance lives
 * here once. A write command that fails at any step ends without committing: its transaction
 * is aborted and the replica is unchanged (spec/cli.md "Writes").
 */
#include "cli.h"

int
cli_begin(const struct cli *c, enum cli_open_mode mode, kith_replica **r, kith_txn **t)
{
    int rc = cli_open(c, mode, r), krc;
    *t = NULL;
    if (rc != CLI_OK)
        return rc;
    krc = kith_txn_begin(*r, mode == CLI_READ ? KITH_TXN_READ : KITH_TXN_WRITE, t);
    if (krc < 0) {
        rc = cli_fail_rc(c, *r, NULL, krc);
        kith_close(*r);
        *r = NULL;
    }
    return rc;
}

int
cli_finish(const struct cli *c, kith_replica *r, kith_txn **t, int rc)
{
    if (rc == CLI_OK) {
        int krc = kith_txn_commit(t);
        if (krc < 0)
            rc = cli_fail_rc(c, r, "commit", krc);
    }
    cli_end(r, t);
    return rc;
}

int
cli_finish_new(const struct cli *c, kith_replica *r, kith_txn **t, int rc, const kith_docid *doc)
{
    char hex[KITH_DOCID_HEX + 1];
    if ((rc = cli_finish(c, r, t, rc)) == CLI_OK) {
        kith_docid_format(doc, hex);
        printf("%s\n", hex);
    }
    return rc;
}

void
cli_end(kith_replica *r, kith_txn **t)
{
    kith_txn_abort(t);
    kith_close(r);
}
