/*
 * main.c — build/kith-bench: parse the options, make the run's temporary directory, run the
 * machine limits first and then each selected scenario, print the targets of issue #4 with
 * met / MISSED, and remove the temporary directory. bench/README.md explains every scenario
 * and keeps the last figures measured.
 *
 * Exit status: 0 when every selected scenario ran (missing a speed target is reported, not an
 * error: the bench tells the truth, the smoke test only checks that it still runs), 1 when a
 * scenario failed, 2 on a usage error.
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kith.h"

/* Every scenario, in the order they run; "limits" first, since the others are set beside it. */
static const struct bench_scenario scenarios[] = {
    {"limits", "the machine: raw LMDB, BLAKE2b, Ed25519, ZeroMQ, bare merge loop", bench_limits},
    {"merge", "core merge in memory: LWW, OR-set, two origins both ways", bench_merge},
    {"apply", "durable apply of a remote batch into LMDB (kith_batch_apply)", bench_apply},
    {"local", "local writes: single-field transactions and transactions of 100", bench_local},
    {"sync", "two-peer sync over ZeroMQ on loopback, and push latency", bench_sync},
    {"feed", "change feed: commit-to-event delay across processes, backlog read rate", bench_feed},
    {"verify", "verification: hash chain + head signatures, commits of 1/10/100", bench_verify},
    {"codec", "encode/decode: commits and batches, ops/s and bytes per op", bench_codec},
    {"scaling", "scaling: apply and sync at 10k, 100k, 1M ops (--scaling)", bench_scaling},
};

#define NSCENARIOS (sizeof scenarios / sizeof scenarios[0])

static void
usage(FILE *f)
{
    fprintf(f, "usage: kith-bench [--ops N] [--reps R] [--json] [--smoke] [--scaling]\n"
               "                  [--only NAME[,NAME]] [--dir DIR]\n"
               "  --ops N       scale every scenario to N ops (default: per scenario)\n"
               "  --reps R      repetitions; min/median/max over them (default 5)\n"
               "  --json        one JSON object per result on stdout\n"
               "  --smoke       tiny sizes, every scenario, fast (CI)\n"
               "  --scaling     also run apply and sync at 10k, 100k and 1M ops\n"
               "  --only LIST   run only these scenarios; add limits for the ratios\n"
               "  --dir DIR     where temporary replicas go (default /tmp); removed after\n"
               "scenarios:\n");
    for (size_t i = 0; i < NSCENARIOS; i++)
        fprintf(f, "  %-10s %s\n", scenarios[i].name, scenarios[i].what);
}

/* Is `name` in the comma list `list`? */
static bool
in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        if (e == NULL)
            break;
        p = e + 1;
    }
    return false;
}

static bool
parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        return false;
    *out = (uint64_t)v;
    return true;
}

/* A count with an optional k or M suffix: --ops 100k, --ops 1M. */
static bool
parse_size(const char *s, uint64_t *out)
{
    char buf[32];
    size_t n = strlen(s);
    uint64_t mult = 1;
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n + 1);
    if (buf[n - 1] == 'k' || buf[n - 1] == 'K') {
        mult = 1000;
        buf[n - 1] = '\0';
    } else if (buf[n - 1] == 'M' || buf[n - 1] == 'm') {
        mult = 1000000;
        buf[n - 1] = '\0';
    }
    if (!parse_u64(buf, out) || *out == 0 || *out > UINT64_MAX / mult)
        return false;
    *out *= mult;
    return true;
}

/* What the figures came from: CPU model, cores, load at the start, date, kith version. */
static void
machine_header(const struct bench_opts *o)
{
    char model[128] = "unknown", line[256], when[32];
    double load[3] = {0, 0, 0};
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f != NULL) {
        while (fgets(line, sizeof line, f) != NULL) {
            char *colon = strchr(line, ':');
            if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
                snprintf(model, sizeof model, "%s", colon + 2);
                model[strcspn(model, "\n")] = '\0';
                break;
            }
        }
        fclose(f);
    }
    if (getloadavg(load, 3) < 0)
        load[0] = -1;
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    bench_note(o, "kith %s, %s, %ld cores, load %.2f %.2f %.2f at start, %s, reps %d%s",
               kith_version(), model, sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2],
               when, o->reps, o->smoke ? ", smoke sizes" : "");
}

int
bench_scaling(const struct bench_opts *o)
{
    if (!o->scaling && !o->smoke) {
        bench_note(o, "skipped: run with --scaling (N = 10k, 100k, 1M; several minutes)");
        return 0;
    }
    if (bench_scale_apply(o) != 0)
        return -1;
    return bench_scale_sync(o);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {{"ops", required_argument, NULL, 'n'},
                                             {"reps", required_argument, NULL, 'r'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"smoke", no_argument, NULL, 's'},
                                             {"scaling", no_argument, NULL, 'S'},
                                             {"only", required_argument, NULL, 'o'},
                                             {"dir", required_argument, NULL, 'd'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct bench_opts o = {.reps = 5};
    const char *base = "/tmp";
    bool reps_given = false;
    int c;

    while ((c = getopt_long(argc, argv, "n:r:jsSo:d:h", longopts, NULL)) != -1) {
        uint64_t v;
        switch (c) {
        case 'n':
            if (!parse_size(optarg, &v)) {
                fprintf(stderr, "kith-bench: --ops wants a positive count, got '%s'\n", optarg);
                return 2;
            }
            o.ops = v;
            break;
        case 'r':
            if (!parse_u64(optarg, &v) || v < 1 || v > BENCH_MAX_REPS) {
                fprintf(stderr, "kith-bench: --reps wants 1..%d, got '%s'\n", BENCH_MAX_REPS,
                        optarg);
                return 2;
            }
            o.reps = (int)v;
            reps_given = true;
            break;
        case 'j':
            o.json = true;
            break;
        case 's':
            o.smoke = true;
            break;
        case 'S':
            o.scaling = true;
            break;
        case 'o':
            o.only = optarg;
            break;
        case 'd':
            base = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "kith-bench: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (o.only != NULL) {
        for (const char *p = o.only; *p;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            bool known = false;
            for (size_t i = 0; i < NSCENARIOS; i++)
                if (strlen(scenarios[i].name) == len && strncmp(p, scenarios[i].name, len) == 0)
                    known = true;
            if (!known) {
                fprintf(stderr, "kith-bench: no scenario '%.*s' (see --help)\n", (int)len, p);
                return 2;
            }
            if (e == NULL)
                break;
            p = e + 1;
        }
    }
    if (o.smoke && !reps_given)
        o.reps = 1;

    int n = snprintf(o.dir, sizeof o.dir, "%s/kith-bench.XXXXXX", base);
    if (n < 0 || (size_t)n >= sizeof o.dir || mkdtemp(o.dir) == NULL) {
        fprintf(stderr, "kith-bench: cannot make a temporary directory under %s\n", base);
        return 1;
    }

    machine_header(&o);
    int failed = 0;
    for (size_t i = 0; i < NSCENARIOS; i++) {
        const struct bench_scenario *s = &scenarios[i];
        if (o.only != NULL && !in_list(o.only, s->name))
            continue;
        bench_section(&o, s->what);
        bench_rss_reset();
        if (s->run(&o) != 0) {
            fprintf(stderr, "kith-bench: scenario %s failed\n", s->name);
            failed++;
        }
    }
    bench_targets_summary(&o);
    bench_rmtree(o.dir);
    return failed ? 1 : 0;
}
