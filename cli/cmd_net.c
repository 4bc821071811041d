/*
 * cmd_net.c — `kith serve` and `kith sync`: thin wrappers over kith_serve() and kith_sync()
 * (net/, spec/protocol.md).
 *
 * All the daemon's behaviour — sockets, signals, logging, retries — lives in the library so
 * that an embedding app gets the same daemon; this file only turns flags into a
 * kith_serve_opts and reports the outcome. `kith sync` exits 0 only when both sides ended
 * holding the same ops: not while they hold two histories of a forked origin, which it names
 * on stderr when the session found the fork (spec/decisions.md D-12).
 *
 * One exception: `kith serve` raises its soft limit of open files to the hard one before
 * serving. Every connection costs the daemon a descriptor, and the usual soft limit is what a
 * flood of idle connections exhausts first; kith_serve leaves process limits to the program
 * that embeds it (spec/decisions.md D-6).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_PEERS 64 /* --peer options per command line */

/* Raise RLIMIT_NOFILE's soft limit to the hard one. An unlimited hard limit cannot be the
 * soft one (the kernel caps it at fs.nr_open), so that case asks for 2^20, the usual cap.
 * Failure leaves the limit as it was: the daemon then warns when descriptors run low. */
static void
raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
}

int
cmd_serve(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"peer", required_argument, NULL, 'p'},
        {"interval", required_argument, NULL, 'i'},
        {"discover", no_argument, NULL, 'd'},
        {"log-json", no_argument, NULL, 'J'},
        {"verbose", no_argument, NULL, 'v'},
        {"failing-after", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *peers[MAX_PEERS];
    kith_serve_opts so = {0};
    kith_replica *r = NULL;
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":vh", opts)) != -1) {
        switch (ch) {
        case 'l':
            so.listen = optarg;
            break;
        case 'p':
            if (so.npeers == MAX_PEERS)
                return cli_usage_error(c, "too many --peer options (at most %d)", MAX_PEERS);
            peers[so.npeers++] = optarg;
            break;
        case 'i':
            if (cli_parse_duration(optarg, &so.interval_ms) < 0)
                return cli_usage_error(c, "--interval: '%s' is not a duration (30s, 500ms, 2m)",
                                       optarg);
            break;
        case 'd':
            so.discover = true;
            break;
        case 'f': {
            uint64_t n;
            if (cli_parse_u64(optarg, &n) < 0 || n == 0 || n > UINT32_MAX)
                return cli_usage_error(
                    c, "--failing-after: '%s' is not a count of attempts (1 or more)", optarg);
            so.failing_after = (uint32_t)n;
            break;
        }
        case 'J':
            so.log_json = true;
            break;
        case 'v':
            so.log_level = KITH_LOG_DEBUG;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (optind < argc)
        return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
    so.peers = peers;
    if ((rc = cli_open(c, CLI_WRITE, &r)) != CLI_OK)
        return rc;
    raise_nofile();
    if ((krc = kith_serve(r, &so)) < 0)
        rc = cli_fail_rc(c, r, NULL, krc);
    kith_close(r);
    return rc;
}

/* Is `endpoint` the address of a trusted peer? (kith_sync finds the peer's key that way.) */
static bool
known_address(kith_replica *r, const char *endpoint)
{
    kith_peer *peers = NULL;
    size_t n = 0;
    bool found = false;
    if (kith_peers_get(r, &peers, &n) < 0)
        return true; /* cannot tell: let the library's message stand */
    for (size_t i = 0; i < n && !found; i++)
        found = peers[i].trusted && strcmp(peers[i].addr, endpoint) == 0;
    kith_peers_free(peers, n);
    return found;
}

int
cmd_sync(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int timeout_ms = 10000, ch, rc, krc;
    bool json = false, quiet = false;
    kith_sync_info info = {0};
    kith_replica *r = NULL;
    struct cli_progress pg;
    char peer[KITH_ID_HEX + 1];

    while ((ch = cli_getopt(c, argc, argv, ":qh", opts)) != -1) {
        switch (ch) {
        case 't':
            if (cli_parse_duration(optarg, &timeout_ms) < 0)
                return cli_usage_error(c, "--timeout: '%s' is not a duration (10s, 500ms)", optarg);
            break;
        case 'j':
            json = true;
            break;
        case 'q':
            quiet = true;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (argc - optind != 1)
        return cli_usage_error(c, argc - optind < 1 ? "missing ENDPOINT" : "too many arguments");
    if ((rc = cli_open(c, CLI_WRITE, &r)) != CLI_OK)
        return rc;
    cli_progress_begin(&pg, r, "syncing", json || quiet);
    krc = kith_sync(r, argv[optind], NULL, timeout_ms, &info);
    cli_progress_end(&pg);
    if (krc == KITH_ECANCELED) {
        rc = cli_cancelled(c, "every batch applied is whole; the next sync goes on from there");
        goto out_close;
    }
    if (krc == KITH_EUNTRUSTED && !known_address(r, argv[optind])) {
        rc = cli_fail(c, "%s: no trusted peer has this address (kith trust PUBKEY --addr %s)",
                      argv[optind], argv[optind]);
        goto out_close;
    }
    if (krc < 0) {
        rc = cli_fail_rc(c, r, argv[optind], krc);
        goto out_close;
    }
    cli_id_hex(info.peer_id, peer);
    cli_warn_forks(c, r, info.forks);
    kith_fork *forks = NULL;
    size_t nforks = 0;
    if (kith_forks_get(r, &forks, &nforks) < 0)
        nforks = 0;
    kith_forks_free(forks, nforks);
    /* RESTORE-5: say whether this replica was restored, and whether it took its ops back */
    kith_status *st = NULL;
    uint64_t still = 0;
    if (kith_status_get(r, &st) == 0 && !st->restored_accepted)
        still = st->restored_seq;
    kith_status_free(st);
    if (info.restored_seq != 0 && !json && !quiet)
        fprintf(stderr,
                "kith: sync: warning: this replica was restored from a copy: %s holds its own "
                "ops up to seq %llu; %s\n",
                peer, (unsigned long long)info.restored_seq,
                still == 0 ? "they were taken back, and writes go on"
                           : "they are not back yet, so local writes are refused (kith status)");
    if (json) {
        json_t *o = json_object();
        int bad = o == NULL;
        bad |= cli_jset(o, "peer", json_string(peer));
        bad |= cli_jset(o, "endpoint", json_string(argv[optind]));
        bad |= cli_jset(o, "ops_sent", json_integer((json_int_t)info.ops_sent));
        bad |= cli_jset(o, "ops_received", json_integer((json_int_t)info.ops_received));
        bad |= cli_jset(o, "batches_sent", json_integer((json_int_t)info.batches_sent));
        bad |= cli_jset(o, "batches_received", json_integer((json_int_t)info.batches_received));
        bad |= cli_jset(o, "converged", json_boolean(info.converged));
        bad |= cli_jset(o, "forks_found", json_integer((json_int_t)info.forks));
        bad |= cli_jset(o, "forked_origins", json_integer((json_int_t)nforks));
        bad |= cli_jset(o, "protocol", json_integer((json_int_t)info.proto));
        bad |= cli_jset(o, "restored_seq",
                        info.restored_seq ? json_integer((json_int_t)info.restored_seq) : NULL);
        bad |= cli_jset(o, "restored_pending", json_boolean(still != 0));
        rc = cli_json_print(c, cli_json_done(o, bad));
    } else {
        printf("synced with %s: sent %llu ops in %llu batches, received %llu ops in %llu "
               "batches; %s%s\n",
               peer, (unsigned long long)info.ops_sent, (unsigned long long)info.batches_sent,
               (unsigned long long)info.ops_received, (unsigned long long)info.batches_received,
               info.converged ? "converged" : "not converged",
               !info.converged && nforks > 0 ? " (an origin has forked: kith status)" : "");
    }
    if (rc == CLI_OK && !info.converged)
        rc = CLI_FAIL;
out_close:
    kith_close(r);
    return rc;
}
