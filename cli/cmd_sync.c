/*
 * cmd_sync.c — moving ops between replicas by hand: `kith trust`, `kith peers` and
 * `kith bundle create|apply`.
 *
 * A bundle is the same signed batch that network sync sends, in a file (spec/encoding.md
 * "Bundle"). Applying one is all or nothing inside the library: an untrusted origin, a
 * broken chain or signature, a gap or a truncated file is refused before anything is
 * written, and the CLI reports the library's reason in one line. Bundles are binary, so
 * `bundle create` refuses to write one to a terminal.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

json_t *
cli_peer_json(const kith_peer *p)
{
    json_t *o = json_object();
    int bad = o == NULL;
    bad |= cli_jset(o, "id", cli_json_id(p->id));
    bad |= cli_jset(o, "pubkey", cli_json_hex(p->pubkey, sizeof p->pubkey));
    bad |= cli_jset(o, "name", p->name[0] != '\0' ? json_string(p->name) : NULL);
    bad |= cli_jset(o, "addr", p->addr[0] != '\0' ? json_string(p->addr) : NULL);
    bad |= cli_jset(o, "trusted", json_boolean(p->trusted));
    bad |= cli_jset(o, "forked", json_boolean(p->forked));
    bad |= cli_jset(o, "acked", cli_json_vv(&p->acked));
    bad |= cli_jset(o, "pending_ops", json_integer((json_int_t)p->pending_ops));
    bad |= cli_jset(o, "last_sync", p->last_sync_ms != 0 ? cli_json_time(p->last_sync_ms) : NULL);
    bad |= cli_jset(o, "failures", json_integer((json_int_t)p->failures));
    bad |= cli_jset(o, "last_error", p->last_error[0] != '\0' ? json_string(p->last_error) : NULL);
    bad |= cli_jset(o, "failing", json_boolean(p->failing));
    bad |= cli_jset(o, "held_ops", json_integer((json_int_t)p->held_ops));
    bad |= cli_jset(o, "held_ahead_ms", json_integer((json_int_t)p->held_ahead_ms));
    bad |= cli_schema_json(o, p->schema_version, p->schema_digest);
    bool measured = p->clock_checked_ms != 0;
    bad |= cli_jset(o, "clock_offset_ms",
                    measured ? json_integer((json_int_t)p->clock_offset_ms) : NULL);
    bad |= cli_jset(o, "clock_checked", measured ? cli_json_time(p->clock_checked_ms) : NULL);
    bad |= cli_jset(o, "fork_seq", p->fork_seq ? json_integer((json_int_t)p->fork_seq) : NULL);
    return cli_json_done(o, bad);
}

/* A zero digest is no schema told (a peer never met, one from before protocol 2) or none
 * stored: BLAKE2b never gives 32 zero bytes. */
static bool
schema_known(const uint8_t digest[KITH_HASH_BYTES])
{
    for (size_t i = 0; i < KITH_HASH_BYTES; i++)
        if (digest[i] != 0)
            return true;
    return false;
}

void
cli_schema_text(uint64_t version, const uint8_t digest[KITH_HASH_BYTES], char out[32])
{
    char hex[2 * KITH_HASH_BYTES + 1];

    out[0] = '\0';
    if (!schema_known(digest))
        return;
    cli_hex(digest, KITH_HASH_BYTES, hex);
    snprintf(out, 32, "v%llu %.8s", (unsigned long long)version, hex);
}

int
cli_schema_json(json_t *obj, uint64_t version, const uint8_t digest[KITH_HASH_BYTES])
{
    bool known = schema_known(digest);
    int bad = 0;

    bad |= cli_jset(obj, "schema_version", known ? json_integer((json_int_t)version) : NULL);
    bad |= cli_jset(obj, "schema_digest", known ? cli_json_hex(digest, KITH_HASH_BYTES) : NULL);
    return bad;
}

static const char *
hold_reason_name(int reason)
{
    switch (reason) {
    case KITH_HOLD_CLOCK:
        return "clock_ahead";
    case KITH_HOLD_DEPENDENCY:
        return "missing_dependency";
    default:
        return "ready";
    }
}

json_t *
cli_hold_json(const kith_hold *h)
{
    json_t *o = json_object(), *missing = NULL;
    char span[32];
    int bad = o == NULL;

    kith_duration_format(h->ahead_ms, span);
    if (h->reason == KITH_HOLD_DEPENDENCY) {
        missing = json_object();
        bad |= missing == NULL;
        bad |= cli_jset(missing, "origin", cli_json_id(h->missing.origin));
        bad |= cli_jset(missing, "seq", json_integer((json_int_t)h->missing.seq));
    }
    bad |= cli_jset(o, "origin", cli_json_id(h->origin));
    bad |= cli_jset(o, "ops", json_integer((json_int_t)h->ops));
    bad |= cli_jset(o, "reason", json_string(hold_reason_name(h->reason)));
    bad |= cli_jset(o, "ahead_ms", json_integer((json_int_t)h->ahead_ms));
    bad |= cli_jset(o, "ahead", json_string(span));
    bad |= cli_jset(o, "hlc", cli_json_id(h->hlc));
    bad |= cli_jset(o, "time", cli_json_time((int64_t)(h->hlc >> 16)));
    bad |= cli_jset(o, "missing", missing);
    return cli_json_done(o, bad);
}

void
cli_hold_text(const kith_hold *h, char *out, size_t cap)
{
    char id[KITH_ID_HEX + 1], span[32], dep[KITH_ID_HEX + 1];

    cli_id_hex(h->origin, id);
    kith_duration_format(h->ahead_ms, span);
    if (h->reason == KITH_HOLD_CLOCK) {
        snprintf(out, cap,
                 "%llu op%s held: origin %s, clock %s ahead (they apply when the clock catches "
                 "up)",
                 (unsigned long long)h->ops, h->ops == 1 ? "" : "s", id, span);
    } else if (h->reason == KITH_HOLD_DEPENDENCY) {
        cli_id_hex(h->missing.origin, dep);
        snprintf(out, cap, "%llu op%s held: origin %s, waiting for op %s:%llu",
                 (unsigned long long)h->ops, h->ops == 1 ? "" : "s", id, dep,
                 (unsigned long long)h->missing.seq);
    } else {
        snprintf(out, cap,
                 "%llu op%s held: origin %s, ready (they apply at the next sync or bundle)",
                 (unsigned long long)h->ops, h->ops == 1 ? "" : "s", id);
    }
}

json_t *
cli_fork_json(const kith_fork *f)
{
    json_t *o = json_object();
    int bad = o == NULL;
    bool ends = false;

    for (size_t i = 0; i < KITH_HASH_BYTES; i++)
        ends |= f->ours[i] != 0;
    bad |= cli_jset(o, "origin", cli_json_id(f->origin));
    bad |= cli_jset(o, "seq", json_integer((json_int_t)f->seq));
    bad |= cli_jset(o, "ours", ends ? cli_json_hex(f->ours, KITH_HASH_BYTES) : NULL);
    bad |= cli_jset(o, "theirs", cli_json_hex(f->theirs, KITH_HASH_BYTES));
    bad |= cli_jset(o, "seen_from", cli_json_id(f->seen_from));
    bad |= cli_jset(o, "found", cli_json_time(f->recorded_ms));
    bad |= cli_jset(o, "source", json_string(cli_fork_source(f->source)));
    bad |=
        cli_jset(o, "signed_head_seq", f->has_head ? json_integer((json_int_t)f->head_seq) : NULL);
    json_t *proof = NULL;
    if (f->has_proof) {
        proof = json_object();
        bad |= proof == NULL;
        bad |= cli_jset(proof, "common_seq", json_integer((json_int_t)f->proof_seq));
        bad |= cli_jset(proof, "winner", cli_json_hex(f->winner, KITH_HASH_BYTES));
        bad |= cli_jset(proof, "loser", cli_json_hex(f->loser, KITH_HASH_BYTES));
        bad |= cli_jset(proof, "holds", json_string(cli_fork_holds(f)));
    }
    bad |= cli_jset(o, "proof", proof);
    return cli_json_done(o, bad);
}

void
cli_fork_text(const kith_fork *f, char *out, size_t cap)
{
    char id[KITH_ID_HEX + 1], from[KITH_ID_HEX + 1], when[32], win[2 * KITH_HASH_BYTES + 1];
    int len;

    cli_id_hex(f->origin, id);
    cli_id_hex(f->seen_from, from);
    cli_time(f->recorded_ms, when);
    if (f->source == KITH_FORK_PROOF)
        len = snprintf(out, cap,
                       "origin %s forked at seq %llu: a fork proof showed another history (%s); "
                       "its ops beyond seq %llu are neither taken nor sent",
                       id, (unsigned long long)f->seq, when, (unsigned long long)f->seq);
    else
        len = snprintf(out, cap,
                       "origin %s forked at seq %llu: peer %s showed another history (%s, %s); "
                       "its ops beyond seq %llu are neither taken nor sent",
                       id, (unsigned long long)f->seq, from,
                       f->source == KITH_FORK_BATCH ? "a signed batch" : "at the handshake", when,
                       (unsigned long long)f->seq);
    if (!f->has_proof || len < 0 || (size_t)len >= cap)
        return;
    cli_hex(f->winner, KITH_HASH_BYTES, win);
    win[16] = '\0';
    snprintf(out + len, cap - (size_t)len,
             "; proof held: the branch from seq %llu with chain %s wins, this replica holds %s",
             (unsigned long long)f->proof_seq + 1, win,
             f->holds == KITH_FORK_HOLDS_WINNER  ? "the winning branch"
             : f->holds == KITH_FORK_HOLDS_LOSER ? "the losing branch"
                                                 : "neither");
}

static int
fork_newer(const void *a, const void *b)
{
    int64_t x = ((const kith_fork *)a)->recorded_ms, y = ((const kith_fork *)b)->recorded_ms;
    return (x < y) - (x > y);
}

void
cli_warn_forks(const struct cli *c, kith_replica *r, uint64_t n)
{
    kith_fork *f = NULL;
    size_t nf = 0;
    char line[512];

    if (n == 0 || kith_forks_get(r, &f, &nf) < 0)
        return;
    qsort(f, nf, sizeof *f, fork_newer);
    for (size_t i = 0; i < nf && i < n; i++) {
        cli_fork_text(&f[i], line, sizeof line);
        fprintf(stderr, "kith: %s: warning: %s (kith status lists the forks)\n",
                c->name ? c->name : "kith", line);
    }
    kith_forks_free(f, nf);
}

void
cli_clock_text(int64_t ms, char out[40])
{
    char span[32];

    kith_duration_format(ms < 0 ? -ms : ms, span);
    snprintf(out, 40, "%s%s", ms < 0 ? "-" : ms > 0 ? "+" : "", span);
}

/* A peer record as a row of `kith peers`. 0, or the code of a failed write. */
static int
peer_row(struct cli_list *l, const kith_peer *p)
{
    char id[KITH_ID_HEX + 1], pending[24], when[32] = "never", fails[16], held[64] = "", span[32];
    char schema[32], clock[48] = "", state[64] = "";
    cli_id_hex(p->id, id);
    if (p->clock_checked_ms != 0) {
        char off[40];
        cli_clock_text(p->clock_offset_ms, off);
        bool over = p->clock_offset_ms > KITH_CLOCK_TOLERANCE_MS ||
                    p->clock_offset_ms < -KITH_CLOCK_TOLERANCE_MS;
        snprintf(clock, sizeof clock, "%s%s", off, over ? " (off)" : "");
    }
    if (p->fork_seq != 0)
        snprintf(state, sizeof state, "forked at %llu%s", (unsigned long long)p->fork_seq,
                 p->failing ? ", failing" : "");
    else if (p->failing)
        snprintf(state, sizeof state, "failing");
    cli_schema_text(p->schema_version, p->schema_digest, schema);
    snprintf(pending, sizeof pending, "%llu", (unsigned long long)p->pending_ops);
    snprintf(fails, sizeof fails, "%u", (unsigned)p->failures);
    if (p->last_sync_ms != 0)
        cli_time(p->last_sync_ms, when);
    if (p->held_ops != 0) {
        kith_duration_format(p->held_ahead_ms, span);
        if (p->held_ahead_ms > 0)
            snprintf(held, sizeof held, "%llu, clock %s ahead", (unsigned long long)p->held_ops,
                     span);
        else
            snprintf(held, sizeof held, "%llu", (unsigned long long)p->held_ops);
    }
    const char *row[] = {id,
                         p->name[0] ? p->name : NULL,
                         p->addr[0] ? p->addr : NULL,
                         p->forked    ? "forked"
                         : p->trusted ? "trusted"
                                      : "no",
                         state[0] ? state : NULL,
                         schema[0] ? schema : NULL,
                         clock[0] ? clock : NULL,
                         pending,
                         held[0] ? held : NULL,
                         when,
                         fails,
                         p->last_error[0] ? p->last_error : NULL};
    return cli_list_row(l, row);
}

/* What `peers` and `trust --list` show: peers[0..n), or only the trusted ones. */
struct peer_list {
    const kith_peer *peers;
    size_t n;
    bool trusted_only;
};

static int
peer_fill(struct cli_list *l, void *ctx)
{
    const struct peer_list *pl = ctx;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < pl->n; i++) {
        if (pl->trusted_only && !pl->peers[i].trusted)
            continue;
        rc = l->json ? cli_list_json(l, cli_peer_json(&pl->peers[i])) : peer_row(l, &pl->peers[i]);
    }
    return rc;
}

/* List peer records (all, or the trusted ones) as a table or {"peers": [...]}. */
static int
list_peers(const struct cli *c, bool json, bool trusted_only)
{
    static const char *const head[] = {"ID",    "NAME",      "ADDRESS",  "TRUST",
                                       "STATE", "SCHEMA",    "CLOCK",    "PENDING",
                                       "HELD",  "LAST SYNC", "FAILURES", "LAST ERROR"};
    kith_replica *r = NULL;
    kith_peer *peers = NULL;
    size_t n = 0;
    struct peer_list pl = {NULL, 0, trusted_only};
    struct cli_list l;
    int rc, krc;

    if ((rc = cli_open(c, CLI_READ, &r)) != CLI_OK)
        return rc;
    if ((krc = kith_peers_get(r, &peers, &n)) < 0) {
        rc = cli_fail_rc(c, r, "reading peers", krc);
        goto out_close;
    }
    pl.peers = peers;
    pl.n = n;
    cli_list_init(&l, json, "peers", sizeof head / sizeof head[0], head);
    rc = cli_list_run(c, NULL, NULL, &l, peer_fill, &pl);
    kith_peers_free(peers, n);
out_close:
    kith_close(r);
    return rc;
}

int
cmd_peers(struct cli *c, int argc, char **argv)
{
    bool json;
    int rc = cli_parse_simple(c, argc, argv, &json, 0, 0);
    if (rc >= 0)
        return rc;
    return list_peers(c, json, false);
}

/* Stop trusting the replica `text` names (its id, or its public key); its record stays. */
static int
untrust(const struct cli *c, const char *text)
{
    uint8_t pk[KITH_PUBKEY_BYTES];
    uint64_t id;
    kith_replica *r = NULL;
    kith_peer *peers = NULL;
    size_t n = 0;
    bool known = false;
    int rc, krc;

    if (cli_unhex(text, pk, sizeof pk) == 0)
        id = kith_id_from_pubkey(pk);
    else if (cli_parse_id(text, &id) < 0)
        return cli_fail(c, "'%s' is neither a replica id (16 hex digits) nor a public key", text);
    if ((rc = cli_open(c, CLI_WRITE, &r)) != CLI_OK)
        return rc;
    if ((krc = kith_peers_get(r, &peers, &n)) < 0) {
        rc = cli_fail_rc(c, r, "reading peers", krc);
        goto out_close;
    }
    for (size_t i = 0; i < n; i++)
        known |= peers[i].id == id && peers[i].trusted;
    kith_peers_free(peers, n);
    if (!known) {
        rc = cli_fail(c, "%s is not a trusted replica", text);
        goto out_close;
    }
    if ((krc = kith_trust_remove(r, id)) < 0) {
        rc = cli_fail_rc(c, r, NULL, krc);
        goto out_close;
    }
    printf("no longer trusted: %s\n", text);
out_close:
    kith_close(r);
    return rc;
}

int
cmd_trust(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"addr", required_argument, NULL, 'a'},
        {"list", no_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'j'},
        {"remove", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL, *addr = NULL, *remove = NULL;
    bool list = false, json = false;
    uint8_t pk[KITH_PUBKEY_BYTES], own[KITH_PUBKEY_BYTES];
    kith_replica *r = NULL;
    char id[KITH_ID_HEX + 1];
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'n':
            name = optarg;
            break;
        case 'a':
            addr = optarg;
            break;
        case 'l':
            list = true;
            break;
        case 'j':
            json = true;
            break;
        case 'r':
            remove = optarg;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (remove != NULL) {
        if (list || json || name != NULL || addr != NULL || optind < argc)
            return cli_usage_error(c, "--remove takes no other arguments");
        return untrust(c, remove);
    }
    if (list) {
        if (name != NULL || addr != NULL || optind < argc)
            return cli_usage_error(c, "--list takes no other arguments");
        return list_peers(c, json, true);
    }
    if (json)
        return cli_usage_error(c, "--json goes with --list");
    if (argc - optind != 1)
        return cli_usage_error(c, argc - optind < 1 ? "missing PUBKEY" : "too many arguments");
    if (cli_unhex(argv[optind], pk, sizeof pk) < 0)
        return cli_fail(c, "'%s' is not a public key (64 hex digits, from 'kith id')",
                        argv[optind]);
    if (name != NULL && strlen(name) >= sizeof((kith_peer *)0)->name)
        return cli_fail(c, "--name: longer than %zu bytes", sizeof((kith_peer *)0)->name - 1);
    if (addr != NULL && strlen(addr) >= sizeof((kith_peer *)0)->addr)
        return cli_fail(c, "--addr: longer than %zu bytes", sizeof((kith_peer *)0)->addr - 1);

    if ((rc = cli_open(c, CLI_WRITE, &r)) != CLI_OK)
        return rc;
    kith_replica_pubkey(r, own);
    if (memcmp(own, pk, sizeof pk) == 0) {
        rc = cli_fail(c, "that is this replica's own key");
        goto out_close;
    }
    if ((krc = kith_trust_add(r, pk, name, addr)) < 0) {
        rc = cli_fail_rc(c, r, NULL, krc);
        goto out_close;
    }
    cli_id_hex(kith_id_from_pubkey(pk), id);
    printf("trusted %s%s%s\n", id, name != NULL ? " " : "", name != NULL ? name : "");
out_close:
    kith_close(r);
    return rc;
}

/* ---- bundles ----------------------------------------------------------------------------------
 */

int
cmd_bundle_create(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"since", required_argument, NULL, 's'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = "-", *since_text = NULL;
    kith_vv since = {0};
    kith_batch_info info = {0};
    kith_replica *r = NULL;
    struct cli_progress pg;
    bool quiet = false;
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":o:qh", opts)) != -1) {
        switch (ch) {
        case 'o':
            if (optarg[0] == '\0')
                return cli_usage_error(c, "-o: empty file name");
            path = optarg;
            break;
        case 's':
            since_text = optarg;
            break;
        case 'q':
            quiet = true;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (optind < argc)
        return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
    if (strcmp(path, "-") == 0 && isatty(STDOUT_FILENO))
        return cli_usage_error(c, "a bundle is binary; not writing it to a terminal (use -o)");
    if (since_text != NULL && kith_vv_parse(since_text, &since) < 0)
        return cli_fail(c, "--since: '%s' is not a version vector (origin:seq,...)", since_text);

    if ((rc = cli_open(c, CLI_READ, &r)) != CLI_OK)
        goto out_vv;
    cli_progress_begin(&pg, r, "writing bundle", quiet);
    krc = kith_bundle_write(r, since_text != NULL ? &since : NULL, path, &info);
    cli_progress_end(&pg);
    if (krc == KITH_ECANCELED) {
        rc = cli_cancelled(c, "no bundle was written");
        goto out_close;
    }
    if (krc < 0) {
        rc = cli_fail_rc(c, r, path, krc);
        goto out_close;
    }
    if (!quiet)
        fprintf(stderr, "kith: bundle: %llu op%s in %llu commit%s written to %s\n",
                (unsigned long long)info.ops, info.ops == 1 ? "" : "s",
                (unsigned long long)info.commits, info.commits == 1 ? "" : "s",
                strcmp(path, "-") == 0 ? "stdout" : path);
out_close:
    kith_close(r);
out_vv:
    kith_vv_free(&since);
    return rc;
}

int
cmd_bundle_apply(struct cli *c, int argc, char **argv)
{
    kith_apply_info info = {0};
    kith_replica *r = NULL;
    kith_hold *holds = NULL;
    size_t nholds = 0;
    struct cli_progress pg;
    bool json, quiet;
    int rc = cli_parse_long(c, argc, argv, &json, &quiet, 1, 1), krc;
    const char *path;
    if (rc >= 0)
        return rc;
    path = argv[optind];
    if (strcmp(path, "-") != 0 && access(path, R_OK) != 0)
        return cli_fail(c, "%s: cannot read it", path);
    if ((rc = cli_open(c, CLI_WRITE, &r)) != CLI_OK)
        return rc;
    cli_progress_begin(&pg, r, "applying bundle", json || quiet);
    krc = kith_bundle_apply(r, path, &info);
    cli_progress_end(&pg);
    if (krc == KITH_ECANCELED) {
        rc = cli_cancelled(c, "nothing was half-applied");
        goto out_close;
    }
    if (krc < 0) {
        const char *detail = kith_errmsg(r);
        if (detail == NULL || detail[0] == '\0')
            detail = kith_strerror(krc);
        rc = cli_fail(c, "%s: refused, nothing changed: %s (%s)", path, detail, kith_errname(krc));
        goto out_close;
    }
    if (info.ops_pending > 0 && (krc = kith_holds_get(r, &holds, &nholds)) < 0) {
        rc = cli_fail_rc(c, r, "reading held ops", krc);
        goto out_close;
    }
    if (json) {
        json_t *o = json_object();
        int bad = o == NULL;
        bad |= cli_jset(o, "ops_new", json_integer((json_int_t)info.ops_new));
        bad |= cli_jset(o, "ops_known", json_integer((json_int_t)info.ops_known));
        bad |= cli_jset(o, "ops_applied", json_integer((json_int_t)info.ops_applied));
        bad |= cli_jset(o, "ops_pending", json_integer((json_int_t)info.ops_pending));
        bad |= cli_jset(o, "conflicts", json_integer((json_int_t)info.conflicts));
        bad |= cli_jset(o, "forks", json_integer((json_int_t)info.forks));
        bad |= cli_jset(o, "cut_off", json_integer((json_int_t)info.cut_off));
        json_t *arr = json_array();
        bad |= arr == NULL;
        for (size_t i = 0; !bad && i < nholds; i++)
            bad |= json_array_append_new(arr, cli_hold_json(&holds[i])) < 0;
        bad |= cli_jset(o, "holds", arr);
        rc = cli_json_print(c, cli_json_done(o, bad));
    } else {
        printf("%llu new op%s (%llu already known), %llu applied, %llu pending, "
               "%llu conflict%s\n",
               (unsigned long long)info.ops_new, info.ops_new == 1 ? "" : "s",
               (unsigned long long)info.ops_known, (unsigned long long)info.ops_applied,
               (unsigned long long)info.ops_pending, (unsigned long long)info.conflicts,
               info.conflicts == 1 ? "" : "s");
        for (size_t i = 0; i < nholds; i++) {
            char line[256];
            cli_hold_text(&holds[i], line, sizeof line);
            printf("%s\n", line);
        }
    }
    /* The honest part applied: that is what the command promises, so it succeeds; the
     * fork is a standing condition of the replica, named here and by `kith status`. */
    cli_warn_forks(c, r, info.forks);
    if (info.cut_off > 0) /* likewise a removed device's ops past its cut-off (GRP-15) */
        fprintf(stderr, "kith: %s: warning: %s\n", c->name, kith_errmsg(r));
out_close:
    kith_holds_free(holds, nholds);
    kith_close(r);
    return rc;
}
