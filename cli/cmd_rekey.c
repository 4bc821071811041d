/*
 * cmd_rekey.c — `kith rekey [--json]`: this device takes a new key (spec/cli.md CLI-31,
 * spec/data-model.md FORK-11..14), and how `kith status` and `kith forks` say that it did.
 *
 * The library re-keys by itself when a batch brings the proof that this replica's own key
 * signed the losing history of a fork; the command is for the cases it cannot: a replica
 * whose key file could not be read then, one that joined a group since, or a user who wants
 * a new key for its own sake. A replica in no group is refused (kith_rekey says why), and
 * `kith status` says what to do when its own origin lost and it has not re-keyed.
 */
#include "cli.h"

#include <stdio.h>

json_t *
cli_rekey_json(const kith_rekey_info *ri)
{
    json_t *o = json_object();
    int bad = o == NULL;

    bad |= cli_jset(o, "old_id", cli_json_id(ri->old_id));
    bad |= cli_jset(o, "new_id", cli_json_id(ri->new_id));
    bad |= cli_jset(o, "when", cli_json_time(ri->rekeyed_ms));
    bad |= cli_jset(o, "lost_fork", json_boolean(ri->lost_fork));
    bad |= cli_jset(o, "fork_seq", ri->lost_fork ? json_integer((json_int_t)ri->fork_seq) : NULL);
    bad |= cli_jset(o, "ops_aside", json_integer((json_int_t)ri->ops_aside));
    bad |= cli_jset(o, "commits_reissued", json_integer((json_int_t)ri->commits_reissued));
    bad |= cli_jset(o, "ops_skipped", json_integer((json_int_t)ri->ops_skipped));
    bad |= cli_jset(o, "reissue_pending", json_boolean(ri->reissue_pending));
    return cli_json_done(o, bad);
}

void
cli_rekey_text(const kith_rekey_info *ri, char *out, size_t cap)
{
    char from[KITH_ID_HEX + 1], to[KITH_ID_HEX + 1], when[32];
    int n;

    cli_id_hex(ri->old_id, from);
    cli_id_hex(ri->new_id, to);
    cli_time(ri->rekeyed_ms, when);
    n = snprintf(out, cap, "%s -> %s (%s)", from, to, when);
    if (n < 0 || (size_t)n >= cap || !ri->lost_fork)
        return;
    if (ri->reissue_pending)
        snprintf(out + n, cap - (size_t)n,
                 ": its history after seq %llu lost a fork; writing its edits again is pending "
                 "(the next open or kith rekey does it)",
                 (unsigned long long)ri->fork_seq);
    else
        snprintf(out + n, cap - (size_t)n,
                 ": its history after seq %llu lost a fork; %llu op%s set aside, %llu commit%s "
                 "written again under the new key%s",
                 (unsigned long long)ri->fork_seq, (unsigned long long)ri->ops_aside,
                 ri->ops_aside == 1 ? "" : "s", (unsigned long long)ri->commits_reissued,
                 ri->commits_reissued == 1 ? "" : "s",
                 ri->ops_skipped > 0 ? " (ops on documents gone since skipped)" : "");
}

const char *
cli_rekey_advice(const kith_status *s)
{
    for (size_t i = 0; i < s->nforks; i++) {
        const kith_fork *f = &s->forks[i];
        if (f->origin != s->id || !f->has_proof || f->holds != KITH_FORK_HOLDS_LOSER)
            continue;
        return s->group.in_group
                   ? "this replica's own key signed the losing history of a fork: take a new key "
                     "(kith rekey) to write its edits again under it"
                   : "this replica's own key signed the losing history of a fork, and it is in no "
                     "device group, so its peers would not admit a new key: join their group "
                     "(kith invite on one of them, kith join here), then kith rekey";
    }
    return NULL;
}

int
cmd_rekey(struct cli *c, int argc, char **argv)
{
    kith_replica *r = NULL;
    kith_rekey_info ri;
    char line[512];
    bool json;
    int rc = cli_parse_simple(c, argc, argv, &json, 0, 0), krc;

    if (rc >= 0)
        return rc;
    if ((rc = cli_open(c, CLI_WRITE, &r)) != CLI_OK)
        return rc;
    krc = kith_rekey(r, &ri);
    if (krc < 0 && ri.new_id == 0) {
        rc = cli_fail_rc(c, r, "taking a new key", krc);
        goto out_close;
    }
    if (krc < 0) /* the switch is made, the re-issue waits: say both */
        rc = cli_fail_rc(c, r, "writing the set-aside edits again", krc);
    if (json) {
        int jrc = cli_json_print(c, cli_rekey_json(&ri));
        if (rc == CLI_OK)
            rc = jrc;
    } else {
        cli_rekey_text(&ri, line, sizeof line);
        printf("re-keyed %s\n", line);
    }
out_close:
    kith_close(r);
    return rc;
}
