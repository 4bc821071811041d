/*
 * main.c — kith-check's command line, report and shrinking (spec/check.md). Exit status:
 * 0 the run passed, 1 it failed (the report says which check and how to replay it), 2 usage.
 * On a failure the checker replays the seed with fewer transactions (halving, at most five
 * times) and then without each fault class in turn, keeping every reduction that still
 * fails, within eight replays in all, and prints the smallest failing history it found.
 */
#include "check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define MAX_REPLAYS 8 /* in all */
#define MAX_HALVINGS 5

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: kith-check [options]\n"
            "  Start replicas with real daemons on loopback, write to them while injecting\n"
            "  faults, heal, and check that they converged and kept every acknowledged write.\n"
            "  --replicas N    replicas and daemons (default 5, at most %d)\n"
            "  --seed S        replay this seed (default: a random one, printed)\n"
            "  --time T        bound of the run: 30s (default), 2m, 500ms\n"
            "  --ops N         transactions to attempt (default: as many as half the time allows)\n"
            "  --faults LIST   fault classes, comma-separated, or default, all or none:\n"
            "                  kill,partition,delay,cut,message,skew,bundle,writer (the\n"
            "                  default) and far-skew (a clock 62 s off, beyond the hold-back\n"
            "                  limit)\n"
            "  --json          one JSON object on stdout instead of the text report\n"
            "  --no-shrink     on failure, do not replay to find a smaller failing history\n"
            "  --keep          keep the run directory (replicas, daemon logs) even on success\n"
            "  --log-level N   daemons' log level into their logs (default 4, warnings)\n"
            "Exit status: 0 pass, 1 fail, 2 usage.\n",
            CK_MAX_REPLICAS);
}

static bool
parse_time(const char *s, int64_t *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0)
        return false;
    if (strcmp(end, "ms") == 0)
        *ms = (int64_t)v;
    else if (*end == 0 || strcmp(end, "s") == 0)
        *ms = (int64_t)(v * 1000);
    else if (strcmp(end, "m") == 0)
        *ms = (int64_t)(v * 60000);
    else if (strcmp(end, "h") == 0)
        *ms = (int64_t)(v * 3600000);
    else
        return false;
    return *ms >= 1000;
}

static bool
parse_faults(const char *s, unsigned *out)
{
    char buf[256];
    *out = 0;
    if (strcmp(s, "all") == 0 || strcmp(s, "default") == 0) {
        *out = strcmp(s, "all") == 0 ? CK_ALL_FAULTS : CK_DEFAULT_FAULTS;
        return true;
    }
    if (strcmp(s, "none") == 0)
        return true;
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int k = 0;
        while (k < CK_NFAULTS && strcmp(tok, ck_fault_names[k]) != 0)
            k++;
        if (k == CK_NFAULTS)
            return false;
        *out |= 1u << k;
    }
    return true;
}

static void
faults_text(unsigned mask, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    if (mask == CK_ALL_FAULTS || mask == CK_DEFAULT_FAULTS) {
        snprintf(out, cap, mask == CK_ALL_FAULTS ? "all" : "default");
        return;
    }
    for (int k = 0; k < CK_NFAULTS; k++)
        if (mask & (1u << k))
            len +=
                (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "", ck_fault_names[k]);
    if (len == 0)
        snprintf(out, cap, "none");
}

static void
replay_line(const struct ck_opts *o, long ops, unsigned faults, char *out, size_t cap)
{
    char f[128];
    faults_text(faults, f, sizeof(f));
    snprintf(out, cap, "kith-check --seed %llu --replicas %d --ops %ld --faults %s",
             (unsigned long long)o->seed, o->replicas, ops, f);
}

static void
side_text(unsigned side, int n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    for (int k = 0; k < n && len < cap; k++)
        if (side & (1u << k))
            len += (size_t)snprintf(out + len, cap - len, "%sr%d", len ? "," : "", k);
}

static void
event_text(const struct ck_event *e, int n, char *out, size_t cap)
{
    char one[64], other[64];
    int len = snprintf(out, cap, "after transaction %ld: ", e->step);
    size_t l = len < 0 ? 0 : (size_t)len < cap ? (size_t)len : cap - 1;

    switch (e->kind) {
    case CK_KILL:
        snprintf(out + l, cap - l, "kill r%d, restarted %d ms later", e->a, e->ms);
        break;
    case CK_PART:
        side_text(e->side, n, one, sizeof(one));
        side_text(~e->side & ((1u << n) - 1), n, other, sizeof(other));
        snprintf(out + l, cap - l, "partition {%s} | {%s} for %d ms", one, other, e->ms);
        break;
    case CK_DELAY:
        snprintf(out + l, cap - l, "delay r%d <-> r%d by %u ms for %d ms", e->a, e->b, e->side,
                 e->ms);
        break;
    case CK_CUT:
        snprintf(out + l, cap - l, "cut the connections r%d <-> r%d", e->a, e->b);
        break;
    case CK_BUNDLE:
        snprintf(out + l, cap - l, "bundle by hand r%d -> r%d", e->a, e->b);
        break;
    case CK_WRITER:
        snprintf(out + l, cap - l, "a writer process of r%d, SIGKILLed after %d ms", e->a, e->ms);
        break;
    default:
        snprintf(out + l, cap - l, "%s", ck_fault_names[e->kind]);
    }
}

/* The faults of a failed run, as text lines (at most 40) or a JSON array (all). */
static void
print_history(const struct ck_opts *o, const struct ck_result *r, json_t *js)
{
    char line[256];
    json_t *a = js ? json_array() : NULL;

    if (!js)
        printf("  history:    %d faults%s\n", r->nevents, r->nevents ? ":" : "");
    for (int i = 0; i < r->nevents; i++) {
        event_text(&r->events[i], o->replicas, line, sizeof(line));
        if (a)
            json_array_append_new(a, json_string(line));
        else if (i < 40)
            printf("              %s\n", line);
    }
    if (!js && r->nevents > 40)
        printf("              ... and %d more (--json lists them all)\n", r->nevents - 40);
    if (js)
        json_object_set_new(js, "history", a);
}

static void
print_text(const struct ck_opts *o, const struct ck_result *r)
{
    printf("kith-check: seed %llu, %d replicas, %.1f s\n", (unsigned long long)o->seed, o->replicas,
           (double)r->run_ms / 1000.0);
    printf("  operations: %ld transactions, %ld acknowledged (%ld writes), %ld abandoned "
           "(document not there yet), %ld conflicting pairs\n",
           r->txns, r->commits, r->writes, r->skipped, r->conflicts);
    if (r->refused > 0)
        printf("              %ld refused by the replica, the first: %s\n", r->refused,
               r->refused_first);
    printf("  faults:     %ld kills (%ld restarts), %ld partitions, %ld delays, %ld cuts, "
           "%ld bundles by hand\n",
           r->faults[CK_KILL], r->restarts, r->faults[CK_PART], r->faults[CK_DELAY],
           r->faults[CK_CUT], r->faults[CK_BUNDLE]);
    if (o->faults & (1u << CK_WRITER))
        printf("              %ld writer processes killed, %ld of their commits "
               "acknowledged\n",
               r->faults[CK_WRITER], r->writer_acks);
    if (o->faults & (1u << CK_MSG))
        printf("              messages: %llu dropped, %llu duplicated, %llu reordered\n",
               (unsigned long long)r->msg_dropped, (unsigned long long)r->msg_duplicated,
               (unsigned long long)r->msg_reordered);
    if (r->skew_replica >= 0)
        printf("              clock of r%d off by %+.1f s\n", r->skew_replica,
               (double)r->skew_ms / 1000.0);
    if (r->converge_ms >= 0)
        printf("  heal:       converged %.2f s after the heal\n", (double)r->converge_ms / 1000.0);
    else if (r->healed)
        printf("  heal:       did not converge\n");
    else
        printf("  heal:       not reached (the run stopped at the first failure)\n");
    if (r->pass)
        printf("  checks:     %d exports identical (%zu bytes), %llu ops logged once each, "
               "verify clean, %ld acknowledged writes present, %ld registers hold their LWW "
               "winner, no daemon died\n",
               o->replicas, r->export_bytes, (unsigned long long)r->ops_logged, r->acked_checked,
               r->fields_checked);
    printf("  verdict:    %s%s\n", r->pass ? "PASS" : "FAIL: ", r->pass ? "" : r->failure);
    if (r->dir[0])
        printf("  kept:       %s (replicas and daemon logs)\n", r->dir);
}

static json_t *
result_json(const struct ck_opts *o, const struct ck_result *r)
{
    json_t *f = json_object();
    for (int k = 0; k < CK_NFAULTS; k++)
        json_object_set_new(f, ck_fault_names[k], json_integer(r->faults[k]));
    json_object_set_new(f, "restarts", json_integer(r->restarts));
    json_object_set_new(f, "writer_acks", json_integer(r->writer_acks));
    json_object_set_new(f, "messages_dropped", json_integer((json_int_t)r->msg_dropped));
    json_object_set_new(f, "messages_duplicated", json_integer((json_int_t)r->msg_duplicated));
    json_object_set_new(f, "messages_reordered", json_integer((json_int_t)r->msg_reordered));
    if (r->skew_replica >= 0) {
        json_object_set_new(f, "skew_replica", json_integer(r->skew_replica));
        json_object_set_new(f, "skew_ms", json_integer(r->skew_ms));
    }
    /* the schedule a seed replays: the faults drawn, made or not, and a hash of which and
     * where (what happened also depends on timing: a writer still running, a daemon down) */
    json_t *p = json_object();
    char hash[17];
    for (int k = 0; k < CK_NFAULTS; k++)
        json_object_set_new(p, ck_fault_names[k], json_integer(r->planned[k]));
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)r->schedule);
    json_object_set_new(p, "hash", json_string(hash));
    return json_pack("{s:s, s:s?, s:I, s:i, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:o, "
                     "s:b, s:I, s:I, s:I, s:I, s:I, s:i}",
                     "verdict", r->pass ? "pass" : "fail", "failure", r->pass ? NULL : r->failure,
                     "seed", (json_int_t)o->seed, "replicas", o->replicas, "run_ms",
                     (json_int_t)r->run_ms, "operations", "transactions", (json_int_t)r->txns,
                     "acknowledged", (json_int_t)r->commits, "writes", (json_int_t)r->writes,
                     "abandoned", (json_int_t)r->skipped, "refused", (json_int_t)r->refused,
                     "conflicts", (json_int_t)r->conflicts, "faults", f, "schedule", p, "healed",
                     r->healed, "converge_ms", (json_int_t)r->converge_ms, "ops_logged",
                     (json_int_t)r->ops_logged, "export_bytes", (json_int_t)r->export_bytes,
                     "acked_checked", (json_int_t)r->acked_checked, "registers_checked",
                     (json_int_t)r->fields_checked, "daemons_died", r->daemons_died);
}

/* Replays with fewer transactions, then fewer fault classes, keeping what still fails. */
static void
shrink(const struct ck_opts *o, const struct ck_result *first, json_t *js)
{
    struct ck_opts t = *o;
    struct ck_result *r = malloc(sizeof(*r)), *best = malloc(sizeof(*best));
    long ops = first->txns;
    unsigned faults = o->faults;
    int replays = 0;
    char line[256];

    if (r == NULL || best == NULL) {
        free(r);
        free(best);
        return;
    }
    *best = *first;
    t.keep = false;
    t.discard = true;
    t.shrink = false;
    while (replays < MAX_HALVINGS && ops / 2 >= 10) {
        t.ops = ops / 2;
        t.faults = faults;
        replays++;
        if (!o->json)
            fprintf(stderr, "kith-check: shrinking: replay with %ld transactions...\n", t.ops);
        if (ck_run(&t, r) == 0)
            break;
        ops = t.ops;
        *best = *r;
    }
    for (int k = 0; k < CK_NFAULTS && replays < MAX_REPLAYS; k++) {
        if (!(faults & (1u << k)))
            continue;
        t.ops = ops;
        t.faults = faults & ~(1u << k);
        replays++;
        if (!o->json)
            fprintf(stderr, "kith-check: shrinking: replay without %s faults...\n",
                    ck_fault_names[k]);
        if (ck_run(&t, r) != 0) {
            faults = t.faults;
            *best = *r;
        }
    }
    replay_line(o, ops, faults, line, sizeof(line));
    if (js) {
        json_t *sj = json_pack("{s:I, s:s, s:i, s:s}", "ops", (json_int_t)ops, "replay", line,
                               "replays", replays, "failure", best->failure);
        print_history(&t, best, sj);
        json_object_set_new(js, "shrunk", sj);
    } else {
        char f[128];
        faults_text(faults, f, sizeof(f));
        printf("  shrunk:     smallest failing history found in %d replays: %ld transactions, "
               "faults %s\n",
               replays, ops, f);
        printf("              failing with: %s\n", best->failure);
        print_history(&t, best, NULL);
        printf("  replay it:  %s\n", line);
    }
    free(r);
    free(best);
}

int
main(int argc, char **argv)
{
    struct ck_opts o;
    struct ck_result *r;
    bool seeded = false;

    if (argc >= 2 && strcmp(argv[1], "--daemon") == 0)
        return ck_daemon_main(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "--writer") == 0)
        return ck_writer_main(argc, argv);
    memset(&o, 0, sizeof(o));
    o.replicas = 5;
    o.time_ms = 30000;
    o.faults = CK_DEFAULT_FAULTS;
    o.shrink = true;
    o.log_level = KITH_LOG_WARNING;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "--no-shrink") == 0) {
            o.shrink = false;
        } else if (strcmp(a, "--keep") == 0) {
            o.keep = true;
        } else if (v == NULL) {
            fprintf(stderr, "kith-check: %s needs a value, or is unknown\n", a);
            usage(stderr);
            return 2;
        } else if (strcmp(a, "--replicas") == 0) {
            long n = strtol(v, &end, 10);
            if (*end || n < 2 || n > CK_MAX_REPLICAS) {
                fprintf(stderr, "kith-check: --replicas: 2 to %d\n", CK_MAX_REPLICAS);
                return 2;
            }
            o.replicas = (int)n;
            i++;
        } else if (strcmp(a, "--seed") == 0) {
            o.seed = strtoull(v, &end, 10);
            if (*end) {
                fprintf(stderr, "kith-check: --seed: a decimal number\n");
                return 2;
            }
            seeded = true;
            i++;
        } else if (strcmp(a, "--time") == 0) {
            if (!parse_time(v, &o.time_ms)) {
                fprintf(stderr, "kith-check: --time: a duration of 1s or more (30s, 2m)\n");
                return 2;
            }
            i++;
        } else if (strcmp(a, "--ops") == 0) {
            o.ops = strtol(v, &end, 10);
            if (*end || o.ops < 1) {
                fprintf(stderr, "kith-check: --ops: a positive number\n");
                return 2;
            }
            i++;
        } else if (strcmp(a, "--faults") == 0) {
            if (!parse_faults(v, &o.faults)) {
                fprintf(stderr, "kith-check: --faults: a list of kill,partition,delay,cut,"
                                "message,skew,bundle,writer,far-skew, or default, all, none\n");
                return 2;
            }
            i++;
        } else if (strcmp(a, "--log-level") == 0) {
            o.log_level = (int)strtol(v, &end, 10);
            i++;
        } else {
            fprintf(stderr, "kith-check: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!seeded && getrandom(&o.seed, sizeof(o.seed), 0) != (ssize_t)sizeof(o.seed))
        o.seed = (uint64_t)ck_mono_ms();
    if (!seeded)
        o.seed %= 1000000000ull; /* short enough to type */
    if (!o.json)
        fprintf(stderr, "kith-check: seed %llu (replay with --seed %llu)\n",
                (unsigned long long)o.seed, (unsigned long long)o.seed);

    r = malloc(sizeof(*r)); /* a result holds the fault history: too big for the stack */
    if (r == NULL)
        return 1;
    int rc = ck_run(&o, r);
    json_t *js = o.json ? result_json(&o, r) : NULL;
    if (o.json && js == NULL) {
        fprintf(stderr, "kith-check: cannot build the JSON report\n");
        o.json = false;
    }
    if (!o.json)
        print_text(&o, r);
    if (rc != 0) {
        char line[256];
        replay_line(&o, r->txns, o.faults, line, sizeof(line));
        if (js)
            json_object_set_new(js, "replay", json_string(line));
        else
            printf("  replay:     %s\n", line);
        if (o.shrink)
            shrink(&o, r, js);
        else
            print_history(&o, r, js);
    }
    if (js) {
        char *s = json_dumps(js, JSON_SORT_KEYS | JSON_COMPACT);
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(js);
    }
    free(r);
    return rc == 0 ? 0 : 1;
}
