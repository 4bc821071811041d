/*
 * cmd_group.c — `kith group create`, `kith group`, `kith devices` and `kith devices rm`: the
 * replica's device group (spec/cli.md CLI-23 .. CLI-26; include/kith.h "Device groups").
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

json_t *
cli_group_json(const kith_group_info *g)
{
    json_t *o = json_object();
    int bad = o == NULL;

    bad |= cli_jset(o, "in_group", json_boolean(g->in_group));
    bad |= cli_jset(o, "id", g->in_group ? json_string(g->id) : NULL);
    bad |= cli_jset(o, "name", g->in_group ? json_string(g->name) : NULL);
    bad |= cli_jset(o, "members", json_integer((json_int_t)g->members));
    bad |= cli_jset(o, "removed", json_integer((json_int_t)g->removed));
    bad |= cli_jset(o, "records", json_integer((json_int_t)g->records));
    bad |= cli_jset(o, "digest", g->in_group ? cli_json_hex(g->digest, sizeof g->digest) : NULL);
    bad |= cli_jset(o, "self_removed", json_boolean(g->self_removed));
    bad |= cli_jset(o, "self_cutoff",
                    g->self_removed ? json_integer((json_int_t)g->self_cutoff) : NULL);
    bad |= cli_jset(o, "needs_upgrade", json_boolean(g->needs_upgrade));
    return cli_json_done(o, bad);
}

void
cli_group_text(const kith_group_info *g, char *out, size_t cap)
{
    if (!g->in_group) {
        snprintf(out, cap, "none (kith group create, or join one)");
        return;
    }
    snprintf(out, cap, "%s (%s), %zu member%s%s%s", g->name, g->id, g->members,
             g->members == 1 ? "" : "s",
             g->self_removed ? "; THIS REPLICA WAS REMOVED: it writes nothing more" : "",
             g->needs_upgrade ? "; a record needs a newer kith" : "");
}

/* A default device name: the host's. */
static void
host_name(char out[KITH_DEVICE_NAME_MAX + 1])
{
    char host[256];

    if (gethostname(host, sizeof host) == 0 && host[0] != '\0') {
        host[sizeof host - 1] = '\0';
        size_t len = strnlen(host, KITH_DEVICE_NAME_MAX);
        memcpy(out, host, len);
        out[len] = '\0';
        return;
    }
    snprintf(out, KITH_DEVICE_NAME_MAX + 1, "%s", "this device");
}

static int
show(const struct cli *c, kith_replica *r, bool json)
{
    kith_group_info g;
    int krc = kith_group_get(r, &g);

    if (krc < 0)
        return cli_fail_rc(c, r, "reading the group", krc);
    if (json)
        return cli_json_print(c, cli_group_json(&g));
    if (!g.in_group) {
        printf("in no group: kith group create NAME founds one\n");
        return CLI_OK;
    }
    printf("group     %s\n", g.name);
    printf("id        %s\n", g.id);
    printf("members   %zu\n", g.members);
    if (g.removed > 0)
        printf("removed   %zu\n", g.removed);
    if (g.self_removed)
        printf("this replica was removed: every member refuses its ops after seq %llu, and it "
               "writes nothing more\n",
               (unsigned long long)g.self_cutoff);
    if (g.needs_upgrade)
        printf("a group record of a kind this kith does not know is held: upgrade kith\n");
    return CLI_OK;
}

int
cmd_group(struct cli *c, int argc, char **argv)
{
    kith_replica *r = NULL;
    bool json;
    int rc = cli_parse_simple(c, argc, argv, &json, 0, 0);

    if (rc >= 0)
        return rc;
    if ((rc = cli_open(c, CLI_READ, &r)) != CLI_OK)
        return rc;
    rc = show(c, r, json);
    kith_close(r);
    return rc;
}

int
cmd_group_create(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"device-name", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char device[KITH_DEVICE_NAME_MAX + 1];
    const char *dev = NULL;
    kith_replica *r = NULL;
    bool json = false;
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'd':
            dev = optarg;
            break;
        case 'j':
            json = true;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error(c, argc - optind < 1 ? "missing NAME" : "too many arguments");
    if (dev == NULL) {
        host_name(device);
        dev = device;
    }
    if ((rc = cli_open(c, CLI_WRITE, &r)) != CLI_OK)
        return rc;
    if ((krc = kith_group_create(r, argv[optind], dev)) < 0)
        rc = cli_fail_rc(c, r, NULL, krc);
    else
        rc = show(c, r, json);
    kith_close(r);
    return rc;
}

/* ---- devices -------------------------------------------------------------------------- */

/* The fork recorded of a device's key, if any (FORK-4: a copy of it wrote too). */
static const kith_fork *
fork_of(const kith_fork *forks, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (forks[i].origin == id)
            return &forks[i];
    return NULL;
}

static json_t *
fork_json(const kith_fork *f)
{
    json_t *o;
    int bad;

    if (f == NULL)
        return json_null();
    o = json_object();
    bad = o == NULL;
    bad |= cli_jset(o, "seq", json_integer((json_int_t)f->seq));
    bad |= cli_jset(o, "proven", json_boolean(f->has_proof));
    bad |= cli_jset(o, "common_seq", f->has_proof ? json_integer((json_int_t)f->proof_seq) : NULL);
    return cli_json_done(o, bad);
}

static json_t *
device_json(const kith_device *d, const kith_fork *f)
{
    json_t *o = json_object();
    int bad = o == NULL;

    bad |= cli_jset(o, "id", cli_json_id(d->id));
    bad |= cli_jset(o, "pubkey", cli_json_hex(d->pubkey, sizeof d->pubkey));
    bad |= cli_jset(o, "name", json_string(d->name));
    bad |= cli_jset(o, "added_by", cli_json_id(d->added_by));
    bad |= cli_jset(o, "added", cli_json_time(d->added_ms));
    bad |= cli_jset(o, "last_seen", d->last_seen_ms != 0 ? cli_json_time(d->last_seen_ms) : NULL);
    bad |= cli_jset(o, "removed", json_boolean(d->removed));
    bad |= cli_jset(o, "cutoff", d->removed ? json_integer((json_int_t)d->cutoff) : NULL);
    bad |= cli_jset(o, "self", json_boolean(d->self));
    bad |= cli_jset(o, "fork", fork_json(f));
    return cli_json_done(o, bad);
}

static int
device_row(struct cli_list *l, const kith_device *d, const kith_fork *f)
{
    char id[KITH_ID_HEX + 1], by[KITH_ID_HEX + 1], added[32], seen[32], removed[48], forked[48];

    cli_id_hex(d->id, id);
    cli_id_hex(d->added_by, by);
    cli_time(d->added_ms, added);
    if (d->self)
        snprintf(seen, sizeof seen, "(this replica)");
    else if (d->last_seen_ms != 0)
        cli_time(d->last_seen_ms, seen);
    else
        snprintf(seen, sizeof seen, "never");
    if (d->removed)
        snprintf(removed, sizeof removed, "after seq %llu", (unsigned long long)d->cutoff);
    if (f != NULL && f->has_proof)
        snprintf(forked, sizeof forked, "from seq %llu, proven",
                 (unsigned long long)f->proof_seq + 1); /* as kith forks says it */
    else if (f != NULL)
        snprintf(forked, sizeof forked, "at seq %llu", (unsigned long long)f->seq);
    const char *row[] = {d->name,
                         id,
                         d->added_by == d->id ? "(founder)" : by,
                         added,
                         seen,
                         d->removed ? removed : NULL,
                         f != NULL ? forked : NULL};
    return cli_list_row(l, row);
}

struct device_list {
    const kith_device *d;
    size_t n;
    const kith_fork *forks;
    size_t nforks;
};

static int
device_fill(struct cli_list *l, void *ctx)
{
    const struct device_list *dl = ctx;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < dl->n; i++) {
        const kith_fork *f = fork_of(dl->forks, dl->nforks, dl->d[i].id);
        rc = l->json ? cli_list_json(l, device_json(&dl->d[i], f)) : device_row(l, &dl->d[i], f);
    }
    return rc;
}

int
cmd_devices(struct cli *c, int argc, char **argv)
{
    static const char *const head[] = {"NAME",      "ID",      "ADDED BY", "ADDED",
                                       "LAST SEEN", "REMOVED", "FORKED"};
    kith_replica *r = NULL;
    kith_device *d = NULL;
    kith_fork *forks = NULL;
    size_t nforks = 0;
    kith_group_info g;
    struct device_list dl;
    struct cli_list l;
    size_t n = 0;
    bool json;
    int rc = cli_parse_simple(c, argc, argv, &json, 0, 0), krc;

    if (rc >= 0)
        return rc;
    if ((rc = cli_open(c, CLI_READ, &r)) != CLI_OK)
        return rc;
    if ((krc = kith_group_get(r, &g)) < 0 || (krc = kith_devices_get(r, &d, &n)) < 0 ||
        (krc = kith_forks_get(r, &forks, &nforks)) < 0) {
        rc = cli_fail_rc(c, r, "reading the group", krc);
        goto out_free;
    }
    if (!json && !g.in_group) {
        printf("in no group: kith group create NAME founds one\n");
        goto out_free;
    }
    dl.d = d;
    dl.n = n;
    dl.forks = forks;
    dl.nforks = nforks;
    cli_list_init(&l, json, "devices", sizeof head / sizeof head[0], head);
    rc = cli_list_run(c, NULL, NULL, &l, device_fill, &dl);
    if (rc == CLI_OK && !json && g.self_removed)
        printf("this replica was removed from the group: its ops after seq %llu are refused "
               "everywhere, and it writes nothing more\n",
               (unsigned long long)g.self_cutoff);
out_free:
    kith_devices_free(d, n);
    kith_forks_free(forks, nforks);
    kith_close(r);
    return rc;
}

int
cmd_devices_rm(struct cli *c, int argc, char **argv)
{
    kith_replica *r = NULL;
    uint64_t id;
    int rc = cli_parse_simple(c, argc, argv, NULL, 1, 1), krc;

    if (rc >= 0)
        return rc;
    if (cli_parse_id(argv[optind], &id) < 0)
        return cli_fail(c, "'%s' is not a device id (16 hex digits, from 'kith devices')",
                        argv[optind]);
    if ((rc = cli_open(c, CLI_WRITE, &r)) != CLI_OK)
        return rc;
    if ((krc = kith_device_remove(r, id)) < 0)
        rc = cli_fail_rc(c, r, NULL, krc);
    else
        printf("removed: %s (its ops after what this replica holds are refused everywhere)\n",
               argv[optind]);
    kith_close(r);
    return rc;
}
