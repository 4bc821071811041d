/*
 * cmd_replica.c — the commands about the replica as a whole: init, id, status, log, export
 * and verify.
 *
 * They read much and write nothing (init aside), so they open the replica read-only: a
 * mistake in them cannot change the state. `export` prints the library's canonical bytes
 * untouched, because byte equality between replicas is the convergence check users and
 * tests rely on (spec/encoding.md "Export").
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void
print_identity(kith_replica *r, bool color)
{
    uint8_t pk[KITH_PUBKEY_BYTES];
    char id[KITH_ID_HEX + 1], pkhex[2 * KITH_PUBKEY_BYTES + 1];
    kith_replica_pubkey(r, pk);
    cli_hex(pk, sizeof pk, pkhex);
    cli_id_hex(kith_replica_id(r), id);
    printf("%sid%s      %s\n", cli_sgr(color, "1"), cli_sgr(color, "0"), id);
    printf("%spubkey%s  %s\n", cli_sgr(color, "1"), cli_sgr(color, "0"), pkhex);
    printf("%sdir%s     %s\n", cli_sgr(color, "1"), cli_sgr(color, "0"), kith_replica_path(r));
}

static json_t *
identity_json(kith_replica *r)
{
    uint8_t pk[KITH_PUBKEY_BYTES];
    json_t *o = json_object();
    int bad = 0;
    kith_replica_pubkey(r, pk);
    bad |= cli_jset(o, "id", cli_json_id(kith_replica_id(r)));
    bad |= cli_jset(o, "pubkey", cli_json_hex(pk, sizeof pk));
    bad |= cli_jset(o, "dir", json_string(kith_replica_path(r)));
    return cli_json_done(o, bad);
}

/* init and id: open the replica (creating it, for init) and say who it is. */
static int
identity(struct cli *c, int argc, char **argv, enum cli_open_mode mode)
{
    kith_replica *r = NULL;
    bool json;
    int rc = cli_parse_simple(c, argc, argv, &json, 0, 0);
    if (rc >= 0)
        return rc;
    rc = cli_open(c, mode, &r);
    if (rc != CLI_OK)
        return rc;
    if (json)
        rc = cli_json_print(c, identity_json(r));
    else
        print_identity(r, c->color_out);
    kith_close(r);
    return rc;
}

int
cmd_init(struct cli *c, int argc, char **argv)
{
    return identity(c, argc, argv, CLI_CREATE);
}

int
cmd_id(struct cli *c, int argc, char **argv)
{
    return identity(c, argc, argv, CLI_READ);
}

/* ---- status ---------------------------------------------------------------------------------- */

/* The replica's own schema, as kith_schema_info tells it (what its handshakes say). */
struct schema_info {
    uint64_t version;
    uint8_t digest[KITH_HASH_BYTES];
};

/* The seq `vv` holds for `origin` (0: none). */
static uint64_t
vv_seq(const kith_vv *vv, uint64_t origin)
{
    for (size_t i = 0; i < vv->len; i++)
        if (vv->entries[i].origin == origin)
            return vv->entries[i].seq;
    return 0;
}

static json_t *
status_json(kith_replica *r, const kith_status *s, const struct schema_info *schema,
            const kith_peer *peers, size_t npeers, const char *vvtext)
{
    json_t *o = json_object(), *colls = json_object(), *arr = json_array();
    int bad = o == NULL || colls == NULL || arr == NULL;
    bad |= cli_jset(o, "id", cli_json_id(s->id));
    bad |= cli_jset(o, "pubkey", cli_json_hex(s->pubkey, sizeof s->pubkey));
    bad |= cli_jset(o, "dir", json_string(kith_replica_path(r)));
    bad |= cli_jset(o, "hlc", cli_json_id(s->hlc));
    bad |= cli_jset(o, "clock", cli_json_time((int64_t)(s->hlc >> 16)));
    bad |= cli_jset(o, "vv", cli_json_vv(&s->vv));
    bad |= cli_jset(o, "vv_text", json_string(vvtext));
    bad |= cli_jset(o, "ops_logged", json_integer((json_int_t)s->ops_logged));
    bad |= cli_jset(o, "pending_ops", json_integer((json_int_t)s->pending_ops));
    bad |= cli_jset(o, "open_conflicts", json_integer((json_int_t)s->open_conflicts));
    bad |= cli_schema_json(o, schema->version, schema->digest);
    for (size_t i = 0; !bad && i < s->ncollections; i++)
        bad |= cli_jset(colls, s->collections[i].collection,
                        json_integer((json_int_t)s->collections[i].live));
    for (size_t i = 0; !bad && i < npeers; i++)
        bad |= json_array_append_new(arr, cli_peer_json(&peers[i])) < 0;
    bad |= cli_jset(o, "collections", json_incref(colls));
    bad |= cli_jset(o, "peers", json_incref(arr));
    json_decref(colls);
    json_decref(arr);
    arr = json_array();
    bad |= arr == NULL;
    for (size_t i = 0; !bad && i < s->nholds; i++)
        bad |= json_array_append_new(arr, cli_hold_json(&s->holds[i])) < 0;
    bad |= cli_jset(o, "holds", arr);
    arr = json_array();
    bad |= arr == NULL;
    for (size_t i = 0; !bad && i < s->nforks; i++)
        bad |= json_array_append_new(arr, cli_fork_json(&s->forks[i])) < 0;
    bad |= cli_jset(o, "forks", arr);
    bool measured = s->clock_peers > 0;
    bad |= cli_jset(o, "clock_offset_ms",
                    measured ? json_integer((json_int_t)s->clock_offset_ms) : NULL);
    bad |= cli_jset(o, "clock_peers", json_integer((json_int_t)s->clock_peers));
    json_t *rest = NULL;
    if (s->restored_seq != 0) {
        rest = json_object();
        bad |= rest == NULL;
        bad |= cli_jset(rest, "seq", json_integer((json_int_t)s->restored_seq));
        bad |= cli_jset(rest, "from", cli_json_id(s->restored_from));
        bad |= cli_jset(rest, "recorded", cli_json_time(s->restored_ms));
        bad |= cli_jset(rest, "have", json_integer((json_int_t)vv_seq(&s->vv, s->id)));
        bad |= cli_jset(rest, "accepted", json_boolean(s->restored_accepted));
    }
    bad |= cli_jset(o, "restored", rest);
    kith_rekey_info ri;
    const char *advice = cli_rekey_advice(s);
    bad |= cli_jset(o, "rekeyed", kith_rekey_get(r, &ri) > 0 ? cli_rekey_json(&ri) : NULL);
    bad |= cli_jset(o, "rekey_advice", advice != NULL ? json_string(advice) : NULL);
    bad |= cli_jset(o, "group", cli_group_json(&s->group));
    bad |= cli_jset(o, "clock_off",
                    json_boolean(measured && (s->clock_offset_ms > KITH_CLOCK_TOLERANCE_MS ||
                                              s->clock_offset_ms < -KITH_CLOCK_TOLERANCE_MS)));
    return cli_json_done(o, bad);
}

static void
status_text(const struct cli *c, kith_replica *r, const kith_status *s,
            const struct schema_info *schema, const kith_peer *peers, size_t npeers,
            const char *vvtext)
{
    char id[KITH_ID_HEX + 1], pk[2 * KITH_PUBKEY_BYTES + 1], clock[32], text[32];
    const char *b = cli_sgr(c->color_out, "1"), *n = cli_sgr(c->color_out, "0");
    cli_id_hex(s->id, id);
    cli_hex(s->pubkey, sizeof s->pubkey, pk);
    cli_time((int64_t)(s->hlc >> 16), clock);
    printf("%sreplica%s        %s\n", b, n, id);
    printf("%spubkey%s         %s\n", b, n, pk);
    printf("%sdir%s            %s\n", b, n, kith_replica_path(r));
    cli_schema_text(schema->version, schema->digest, text);
    printf("%sschema%s         %s\n", b, n, text[0] != '\0' ? text : "(none declared)");
    printf("%sclock%s          %s (+%u)\n", b, n, clock, (unsigned)(s->hlc & 0xffff));
    if (s->clock_peers > 0) {
        char off[40];
        bool over = s->clock_offset_ms > KITH_CLOCK_TOLERANCE_MS ||
                    s->clock_offset_ms < -KITH_CLOCK_TOLERANCE_MS;
        cli_clock_text(s->clock_offset_ms, off);
        printf("%sclock vs peers%s %s (median of %zu peer%s)%s\n", b, n, off, s->clock_peers,
               s->clock_peers == 1 ? "" : "s",
               over ? s->clock_offset_ms > 0
                          ? ": AHEAD by more than the 5 s tolerance, fix this clock"
                          : ": BEHIND by more than the 5 s tolerance, fix this clock"
                    : "");
    }
    printf("%sversion%s        %s\n", b, n, vvtext[0] != '\0' ? vvtext : "(empty)");
    printf("%sops logged%s     %llu\n", b, n, (unsigned long long)s->ops_logged);
    printf("%spending ops%s    %llu\n", b, n, (unsigned long long)s->pending_ops);
    for (size_t i = 0; i < s->nholds; i++) {
        char line[256];
        cli_hold_text(&s->holds[i], line, sizeof line);
        printf("               %s\n", line);
    }
    printf("%sconflicts%s      %llu open\n", b, n, (unsigned long long)s->open_conflicts);
    {
        char group[256];
        cli_group_text(&s->group, group, sizeof group);
        printf("%sgroup%s          %s\n", b, n, group);
    }
    if (s->restored_seq != 0) {
        char from[KITH_ID_HEX + 1], when[32];
        cli_id_hex(s->restored_from, from);
        cli_time(s->restored_ms, when);
        printf("%srestored%s       from a copy: peer %s holds this replica's own ops up to seq "
               "%llu, this replica up to %llu (seen %s)\n",
               b, n, from, (unsigned long long)s->restored_seq,
               (unsigned long long)vv_seq(&s->vv, s->id), when);
        printf("               %s\n",
               s->restored_accepted
                   ? "accepted (kith restored --accept): writes go on, forking this origin"
                   : "local writes are refused until a sync with that peer takes them back "
                     "(kith sync), or kith restored --accept");
    }
    if (s->nforks > 0)
        printf("%sforks%s          %zu origin%s\n", b, n, s->nforks, s->nforks == 1 ? "" : "s");
    for (size_t i = 0; i < s->nforks; i++) {
        char line[512];
        cli_fork_text(&s->forks[i], line, sizeof line);
        printf("               %s\n", line);
    }
    {
        kith_rekey_info ri;
        const char *advice = cli_rekey_advice(s);
        char line[512];
        if (kith_rekey_get(r, &ri) > 0) {
            cli_rekey_text(&ri, line, sizeof line);
            printf("%srekeyed%s        %s\n", b, n, line);
        }
        if (advice != NULL)
            printf("               %s\n", advice);
    }
    for (size_t i = 0; i < s->ncollections; i++)
        printf("%s%-15s%s%llu\n", b, s->collections[i].collection, n,
               (unsigned long long)s->collections[i].live);
    if (npeers == 0) {
        printf("%speers%s          none\n", b, n);
        return;
    }
    printf("%speers%s\n", b, n);
    for (size_t i = 0; i < npeers; i++) {
        const kith_peer *p = &peers[i];
        char pid[KITH_ID_HEX + 1], when[32] = "never";
        cli_id_hex(p->id, pid);
        if (p->last_sync_ms != 0)
            cli_time(p->last_sync_ms, when);
        printf("  %s %-10s %s, %llu pending, last sync %s", pid, p->name[0] != '\0' ? p->name : "-",
               p->forked    ? "FORKED"
               : p->trusted ? "trusted"
                            : "untrusted",
               (unsigned long long)p->pending_ops, when);
        cli_schema_text(p->schema_version, p->schema_digest, text);
        if (text[0] != '\0')
            printf(", schema %s", text);
        if (p->held_ops != 0) {
            char span[32];
            kith_duration_format(p->held_ahead_ms, span);
            printf(", %llu held", (unsigned long long)p->held_ops);
            if (p->held_ahead_ms > 0)
                printf(" (clock %s ahead)", span);
        }
        if (p->fork_seq != 0)
            printf(", ITS ORIGIN FORKED at seq %llu", (unsigned long long)p->fork_seq);
        if (p->clock_checked_ms != 0) {
            char off[40];
            cli_clock_text(p->clock_offset_ms, off);
            printf(", clock %s", off);
        }
        if (p->failing)
            printf(", FAILING");
        if (p->failures != 0)
            printf(", %u failures", (unsigned)p->failures);
        if (p->last_error[0] != '\0')
            printf(", last error: %s", p->last_error);
        putchar('\n');
    }
}

int
cmd_status(struct cli *c, int argc, char **argv)
{
    kith_replica *r = NULL;
    kith_status *s = NULL;
    kith_peer *peers = NULL;
    size_t npeers = 0;
    struct schema_info schema;
    char *vvtext = NULL;
    bool json;
    int rc = cli_parse_simple(c, argc, argv, &json, 0, 0), krc;
    if (rc >= 0)
        return rc;
    rc = cli_open(c, CLI_READ, &r);
    if (rc != CLI_OK)
        return rc;
    if ((krc = kith_status_get(r, &s)) < 0) {
        rc = cli_fail_rc(c, r, "reading status", krc);
        goto out_close;
    }
    if ((krc = kith_schema_info(r, &schema.version, schema.digest)) < 0) {
        rc = cli_fail_rc(c, r, "reading the schema", krc);
        goto out_status;
    }
    if ((krc = kith_peers_get(r, &peers, &npeers)) < 0) {
        rc = cli_fail_rc(c, r, "reading peers", krc);
        goto out_status;
    }
    if ((krc = kith_vv_format(&s->vv, &vvtext)) < 0) {
        rc = cli_fail_rc(c, r, "version vector", krc);
        goto out_peers;
    }
    if (json)
        rc = cli_json_print(c, status_json(r, s, &schema, peers, npeers, vvtext));
    else
        status_text(c, r, s, &schema, peers, npeers, vvtext);
    kith_free(vvtext);
out_peers:
    kith_peers_free(peers, npeers);
out_status:
    kith_status_free(s);
out_close:
    kith_close(r);
    return rc;
}

/* ---- log ------------------------------------------------------------------------------------- */

static const char *
op_kind_name(kith_op_kind k)
{
    switch (k) {
    case KITH_OP_FIELD_SET:
        return "field_set";
    case KITH_OP_DOC_ADD:
        return "doc_add";
    case KITH_OP_DOC_REMOVE:
        return "doc_remove";
    case KITH_OP_SET_ADD:
        return "set_add";
    case KITH_OP_SET_REMOVE:
        return "set_remove";
    case KITH_OP_COUNTER_ADD:
        return "counter_add";
    case KITH_OP_FLAG_ENABLE:
        return "flag_enable";
    case KITH_OP_FLAG_DISABLE:
        return "flag_disable";
    }
    return "unknown";
}

static bool
zero_hash(const uint8_t *h)
{
    for (size_t i = 0; i < KITH_HASH_BYTES; i++)
        if (h[i] != 0)
            return false;
    return true;
}

json_t *
log_entry_json(const kith_log_entry *e)
{
    json_t *o = json_object(), *rep = NULL;
    int bad = o == NULL;
    bool has_value =
        e->kind == KITH_OP_FIELD_SET || e->kind == KITH_OP_SET_ADD || e->kind == KITH_OP_SET_REMOVE;
    bad |= cli_jset(o, "origin", cli_json_id(e->dot.origin));
    bad |= cli_jset(o, "seq", json_integer((json_int_t)e->dot.seq));
    bad |= cli_jset(o, "hlc", cli_json_id(e->hlc));
    bad |= cli_jset(o, "time", cli_json_time((int64_t)(e->hlc >> 16)));
    bad |= cli_jset(o, "op", json_string(op_kind_name(e->kind)));
    bad |= cli_jset(o, "collection", json_string(e->collection != NULL ? e->collection : ""));
    bad |= cli_jset(o, "doc", cli_json_docid(&e->doc));
    bad |= cli_jset(o, "field", e->field != NULL ? json_string(e->field) : NULL);
    bad |= cli_jset(o, "value", has_value ? cli_value_json(&e->value) : NULL);
    if (e->kind == KITH_OP_FIELD_SET && e->replaced.origin != 0) {
        rep = json_object();
        bad |= cli_jset(rep, "origin", cli_json_id(e->replaced.origin));
        bad |= cli_jset(rep, "seq", json_integer((json_int_t)e->replaced.seq));
    }
    bad |= cli_jset(o, "replaced", rep);
    bad |= cli_jset(o, "commit_end", json_boolean(e->commit_end));
    bad |= cli_jset(o, "chain",
                    e->commit_end && !zero_hash(e->chain) ? cli_json_hex(e->chain, KITH_HASH_BYTES)
                                                          : NULL);
    bad |= cli_jset(o, "applied", json_boolean(e->applied));
    return cli_json_done(o, bad);
}

int
log_entry_row(struct cli_list *l, const kith_log_entry *e, const char *note)
{
    char dot[64], when[32], doc[KITH_DOCID_HEX + 1], origin[KITH_ID_HEX + 1], op[48];
    char *value = NULL;
    int rc;
    cli_id_hex(e->dot.origin, origin);
    snprintf(dot, sizeof dot, "%s:%llu", origin, (unsigned long long)e->dot.seq);
    cli_time((int64_t)(e->hlc >> 16), when);
    snprintf(op, sizeof op, "%s%s%s", op_kind_name(e->kind), e->commit_end ? " ." : "",
             note != NULL ? note
             : e->applied ? ""
                          : " (pending)");
    kith_docid_format(&e->doc, doc);
    if (e->kind == KITH_OP_FIELD_SET || e->kind == KITH_OP_SET_ADD ||
        e->kind == KITH_OP_SET_REMOVE) {
        value = cli_value_text(&e->value);
        if (value == NULL)
            return KITH_ENOMEM;
    }
    const char *row[] = {dot, when, op, e->collection, doc, e->field, value};
    rc = cli_list_row(l, row);
    free(value);
    return rc;
}

/* What `log` lists: at most `limit` entries of the log (one origin's, or all), read afresh
 * by each pass; the first pass takes `it`, opened by the command. */
struct log_list {
    kith_txn *t;
    uint64_t origin, limit;
    kith_iter *it; /* the first pass's iterator; NULL once used */
};

static int
log_fill(struct cli_list *l, void *ctx)
{
    struct log_list *ll = ctx;
    kith_log_entry e;
    uint64_t shown = 0;
    int rc = 0;
    if (ll->it == NULL && (rc = kith_iter_log(ll->t, ll->origin, &ll->it)) < 0)
        return rc;
    while (rc == 0 && shown < ll->limit && (rc = kith_iter_next_log(ll->it, &e)) == 0) {
        rc = l->json ? cli_list_json(l, log_entry_json(&e)) : log_entry_row(l, &e, NULL);
        shown++;
    }
    kith_iter_close(ll->it);
    ll->it = NULL;
    return rc == KITH_ENOTFOUND ? 0 : rc;
}

int
cmd_log(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"origin", required_argument, NULL, 'o'},
        {"limit", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const head[] = {"DOT",      "TIME",  "OP",   "COLLECTION",
                                       "DOCUMENT", "FIELD", "VALUE"};
    struct log_list ll = {NULL, 0, UINT64_MAX, NULL};
    bool json = false;
    kith_replica *r = NULL;
    struct cli_list l;
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'o':
            if (cli_parse_id(optarg, &ll.origin) < 0 || ll.origin == 0)
                return cli_usage_error(c, "--origin: '%s' is not a replica id (16 hex digits)",
                                       optarg);
            break;
        case 'n':
            if (cli_parse_u64(optarg, &ll.limit) < 0)
                return cli_usage_error(c, "--limit: '%s' is not a number", optarg);
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

    if ((rc = cli_begin(c, CLI_READ, &r, &ll.t)) != CLI_OK)
        return rc;
    if ((krc = kith_iter_log(ll.t, ll.origin, &ll.it)) < 0) {
        rc = cli_fail_rc(c, r, "reading the log", krc);
        goto out_end;
    }
    cli_list_init(&l, json, "entries", 7, head);
    rc = cli_list_run(c, r, "reading the log", &l, log_fill, &ll);
    kith_iter_close(ll.it); /* left open only when the list failed before reading it */
out_end:
    cli_end(r, &ll.t);
    return rc;
}

/* ---- export and verify ---------------------------------------------------------------------- */

int
cmd_export(struct cli *c, int argc, char **argv)
{
    kith_replica *r = NULL;
    kith_buf buf = {0};
    int rc = cli_parse_simple(c, argc, argv, NULL, 0, 0), krc;
    if (rc >= 0)
        return rc;
    rc = cli_open(c, CLI_READ, &r);
    if (rc != CLI_OK)
        return rc;
    if ((krc = kith_export_json(r, &buf)) < 0) {
        rc = cli_fail_rc(c, r, NULL, krc);
    } else {
        if (fwrite(buf.data, 1, buf.len, stdout) != buf.len)
            rc = cli_fail(c, "writing output: %s", strerror(errno));
        kith_free(buf.data);
    }
    kith_close(r);
    return rc;
}

int
cmd_verify(struct cli *c, int argc, char **argv)
{
    kith_replica *r = NULL;
    kith_verify_report rep;
    struct cli_progress pg;
    bool json, quiet;
    int rc = cli_parse_long(c, argc, argv, &json, &quiet, 0, 0), krc;
    if (rc >= 0)
        return rc;
    rc = cli_open(c, CLI_READ, &r);
    if (rc != CLI_OK)
        return rc;
    memset(&rep, 0, sizeof rep);
    cli_progress_begin(&pg, r, "verifying", json || quiet);
    krc = kith_verify(r, &rep);
    cli_progress_end(&pg);
    if (krc == KITH_ECANCELED) {
        rc = cli_cancelled(c, "nothing was changed");
        goto out_close;
    }
    if (krc < 0) {
        rc = cli_fail_rc(c, r, "could not check the replica", krc);
        goto out_close;
    }
    if (json) {
        json_t *o = json_object();
        int bad = o == NULL;
        bad |= cli_jset(o, "ok", json_boolean(rep.problems == 0));
        bad |= cli_jset(o, "commits_checked", json_integer((json_int_t)rep.commits_checked));
        bad |= cli_jset(o, "ops_checked", json_integer((json_int_t)rep.ops_checked));
        bad |= cli_jset(o, "signatures_checked", json_integer((json_int_t)rep.signatures_checked));
        bad |= cli_jset(o, "problems", json_integer((json_int_t)rep.problems));
        bad |=
            cli_jset(o, "first_problem", rep.problems != 0 ? json_string(rep.first_problem) : NULL);
        rc = cli_json_print(c, cli_json_done(o, bad));
    } else if (rep.problems == 0) {
        printf("ok: %llu commits, %llu ops, %llu signatures checked\n",
               (unsigned long long)rep.commits_checked, (unsigned long long)rep.ops_checked,
               (unsigned long long)rep.signatures_checked);
    }
    if (rep.problems != 0) {
        cli_fail(c, "replica is damaged: %llu problem%s; first: %s",
                 (unsigned long long)rep.problems, rep.problems == 1 ? "" : "s", rep.first_problem);
        rc = CLI_FAIL;
    }
out_close:
    kith_close(r);
    return rc;
}

/* ---- restored ---------------------------------------------------------------------------- */

/*
 * `kith restored [--accept]`: whether this replica was restored from a copy, and the way out
 * when no device holds its newer ops any more (spec/cli.md, D-15). Exit 0 when it is not
 * marked or the mark is accepted, 1 while writes are refused.
 */
int
cmd_restored(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"accept", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool accept = false, json = false;
    kith_replica *r = NULL;
    kith_status *s = NULL;
    char from[KITH_ID_HEX + 1];
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'a':
            accept = true;
            break;
        case 'j':
            json = true;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (argc - optind != 0)
        return cli_usage_error(c, "too many arguments");
    if ((rc = cli_open(c, accept ? CLI_WRITE : CLI_READ, &r)) != CLI_OK)
        return rc;
    if (accept && (krc = kith_restored_accept(r)) < 0) {
        rc = cli_fail_rc(c, r, "accepting the restore", krc);
        goto out_close;
    }
    if ((krc = kith_status_get(r, &s)) < 0) {
        rc = cli_fail_rc(c, r, "reading the status", krc);
        goto out_close;
    }
    uint64_t have = vv_seq(&s->vv, s->id);
    cli_id_hex(s->restored_from, from);
    if (json) {
        json_t *o = json_object();
        int bad = o == NULL;
        bad |= cli_jset(o, "restored", json_boolean(s->restored_seq != 0));
        bad |=
            cli_jset(o, "seq", s->restored_seq ? json_integer((json_int_t)s->restored_seq) : NULL);
        bad |= cli_jset(o, "from", s->restored_seq ? json_string(from) : NULL);
        bad |= cli_jset(o, "recorded", s->restored_seq ? cli_json_time(s->restored_ms) : NULL);
        bad |= cli_jset(o, "have", json_integer((json_int_t)have));
        bad |= cli_jset(o, "accepted", json_boolean(s->restored_accepted));
        rc = cli_json_print(c, cli_json_done(o, bad));
    } else if (s->restored_seq == 0) {
        printf("not restored: no peer has shown more of this replica's own ops than it holds\n");
    } else if (s->restored_accepted) {
        printf("restored from a copy, accepted: peer %s held this replica's own ops up to seq "
               "%llu, this replica holds up to %llu; its next write is seq %llu, a fork of its "
               "own origin wherever the newer ops still exist\n",
               from, (unsigned long long)s->restored_seq, (unsigned long long)have,
               (unsigned long long)have + 1);
    } else {
        printf("restored from a copy: peer %s holds this replica's own ops up to seq %llu, this "
               "replica up to %llu; local writes are refused until a sync with it takes them "
               "back (kith sync), or kith restored --accept when no device holds them any more\n",
               from, (unsigned long long)s->restored_seq, (unsigned long long)have);
    }
    if (rc == CLI_OK && s->restored_seq != 0 && !s->restored_accepted)
        rc = CLI_FAIL;
out_close:
    kith_status_free(s);
    kith_close(r);
    return rc;
}
