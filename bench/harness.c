/*
 * harness.c — what every scenario shares: the clock, peak RSS, sorting samples into
 * min/median/max, the table and JSON output, the list of results (so a kith figure can be set
 * beside the machine limit measured earlier in the same run), the targets of issue #4 with
 * met / MISSED, temporary directories, and a seeded generator.
 *
 * Output: the table goes to stdout, one row per result; with --json each result is one compact
 * JSON object on its own line of stdout (jansson, keys sorted), and notes go to stderr, so
 * `kith-bench --json | jq` works. Ratios are kith's median ops/s over the bound's median ops/s:
 * 1.0 means kith runs as fast as the bare library doing the same number of operations.
 */
#include "bench.h"

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct target_seen {
    char name[BENCH_NAME_MAX];
    const struct bench_target *t;
    double value;   /* what was measured, in the target's metric */
    bool evaluated; /* false when the bound was not measured */
    bool met;
};

static struct bench_result results[BENCH_MAX_RESULTS];
static size_t nresults;
static struct target_seen targets[BENCH_MAX_RESULTS];
static size_t ntargets;
static bool header_printed;

double
bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void
bench_rss_reset(void)
{
    /* "5" resets the peak RSS the kernel keeps for this process (Linux >= 4.0). */
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f == NULL)
        return;
    fputs("5", f);
    fclose(f);
}

long
bench_rss_peak_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss;
}

/* ---- peak anonymous memory, sampled ------------------------------------------------------
 * ru_maxrss counts file pages mapped by LMDB (the whole database, once read), so it grows with
 * the data whatever the heap does. RssAnon is the heap and stacks alone; the kernel keeps no
 * peak of it, so a thread samples it every millisecond while a measurement runs. */

static long
rss_anon_kb(void)
{
    char line[128];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "RssAnon:", 8) == 0) {
            v = strtol(line + 8, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static void *
anon_sampler(void *arg)
{
    struct bench_anon *a = arg;
    while (!atomic_load(&a->stop)) {
        long v = rss_anon_kb();
        if (v > a->peak_kb)
            a->peak_kb = v;
        usleep(1000);
    }
    return NULL;
}

int
bench_anon_start(struct bench_anon *a)
{
    /* Give freed heap back first, so memory the work reuses shows up as growth. */
    malloc_trim(0);
    atomic_init(&a->stop, 0);
    a->peak_kb = a->base_kb = rss_anon_kb();
    a->running = pthread_create(&a->th, NULL, anon_sampler, a) == 0;
    return a->running ? 0 : -1;
}

long
bench_anon_stop(struct bench_anon *a)
{
    if (a->running) {
        atomic_store(&a->stop, 1);
        pthread_join(a->th, NULL);
        a->running = false;
    }
    long v = rss_anon_kb();
    if (v > a->peak_kb)
        a->peak_kb = v;
    return a->peak_kb - a->base_kb;
}

uint64_t
bench_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t
bench_size(const struct bench_opts *o, uint64_t dflt, uint64_t smoke)
{
    if (o->ops != 0)
        return o->ops;
    return o->smoke ? smoke : dflt;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double
bench_median(const double *samples, int n)
{
    double s[BENCH_MAX_REPS];
    if (n < 1 || n > BENCH_MAX_REPS)
        return 0;
    memcpy(s, samples, sizeof s[0] * (size_t)n);
    qsort(s, (size_t)n, sizeof s[0], cmp_double);
    return (n % 2) ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Record a target judged on `value` (for the summary); NULL when the table is full. */
static struct target_seen *
target_note(const char *name, const struct bench_target *t, double value, bool evaluated)
{
    struct target_seen *ts;

    if (ntargets == BENCH_MAX_RESULTS)
        return NULL;
    ts = &targets[ntargets++];
    snprintf(ts->name, sizeof ts->name, "%s", name);
    ts->t = t;
    ts->evaluated = evaluated;
    ts->value = value;
    ts->met = t->cmp == BENCH_AT_LEAST ? value >= t->value : value <= t->value;
    return ts;
}

/* Add the target's verdict to a result object, print it as one line and free it. */
static int
json_emit(json_t *j, const struct target_seen *ts)
{
    if (ts != NULL) {
        json_object_set_new(j, "target", json_string(ts->t->text));
        if (ts->evaluated)
            json_object_set_new(j, "target_met", json_boolean(ts->met));
    }
    char *line = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
    json_decref(j);
    if (line == NULL)
        return -1;
    puts(line);
    free(line);
    fflush(stdout);
    return 0;
}

const struct bench_result *
bench_result_find(const char *name)
{
    for (size_t i = 0; i < nresults; i++)
        if (strcmp(results[i].name, name) == 0)
            return &results[i];
    return NULL;
}

/* "1.23 M" style: three significant figures with an SI prefix. */
static void
si(double v, char *out, size_t cap)
{
    const char *p = "";
    if (v >= 1e9) {
        v /= 1e9;
        p = " G";
    } else if (v >= 1e6) {
        v /= 1e6;
        p = " M";
    } else if (v >= 1e3) {
        v /= 1e3;
        p = " k";
    }
    if (v >= 100)
        snprintf(out, cap, "%.0f%s", v, p);
    else if (v >= 10)
        snprintf(out, cap, "%.1f%s", v, p);
    else
        snprintf(out, cap, "%.2f%s", v, p);
}

/* Nanoseconds, microseconds or milliseconds per op, whichever reads best. */
static void
per_op(double seconds, char *out, size_t cap)
{
    if (seconds >= 1e-3)
        snprintf(out, cap, "%.2f ms", seconds * 1e3);
    else if (seconds >= 1e-6)
        snprintf(out, cap, "%.2f us", seconds * 1e6);
    else
        snprintf(out, cap, "%.1f ns", seconds * 1e9);
}

static double
metric_value(const struct bench_target *t, const struct bench_result *r, const struct bench_spec *s,
             double ratio)
{
    switch (t->metric) {
    case BENCH_M_OPS_PER_S:
        return r->ops_per_s;
    case BENCH_M_RATIO:
        return ratio;
    case BENCH_M_BYTES_PER_OP:
        return r->bytes_per_op;
    case BENCH_M_SECONDS:
        return r->med_s;
    case BENCH_M_EXTRA:
        return s->extra;
    }
    return 0;
}

/* The parameters for the table: {"commit":100,"sync":"durable"} -> commit=100 sync=durable. */
static void
params_text(const char *json, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = json; *p && n + 1 < cap; p++) {
        char c = *p;
        if (c == '{' || c == '}' || c == '"')
            continue;
        out[n++] = c == ':' ? '=' : c == ',' ? ' ' : c;
    }
    out[n] = '\0';
}

static void
print_header(void)
{
    printf("%-26s %-30s %9s %10s %21s %10s %7s %7s  %-22s %7s  %s\n", "result", "params", "ops",
           "median/s", "min..max /s", "per op", "B/op", "RSS MB", "bound", "ratio", "target");
    header_printed = true;
}

int
bench_report(const struct bench_opts *o, const struct bench_spec *spec, double *samples, int n)
{
    if (nresults == BENCH_MAX_RESULTS || n < 1)
        return -1;
    qsort(samples, (size_t)n, sizeof samples[0], cmp_double);
    struct bench_result *r = &results[nresults++];
    snprintf(r->name, sizeof r->name, "%s", spec->name);
    r->min_s = samples[0];
    r->max_s = samples[n - 1];
    r->med_s = (n % 2) ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2;
    r->ops = spec->ops;
    r->ops_per_s = r->med_s > 0 ? (double)spec->ops / r->med_s : 0;
    r->bytes_per_op = spec->bytes_per_op;
    long rss = bench_rss_peak_kb();

    const struct bench_result *b = spec->bound ? bench_result_find(spec->bound) : NULL;
    double ratio = (b != NULL && b->ops_per_s > 0) ? r->ops_per_s / b->ops_per_s : 0;

    struct target_seen *ts =
        spec->target == NULL
            ? NULL
            : target_note(spec->name, spec->target, metric_value(spec->target, r, spec, ratio),
                          !(spec->target->metric == BENCH_M_RATIO && b == NULL));

    const char *params = spec->params ? spec->params : "{}";
    if (o->json) {
        json_error_t err;
        json_t *p = json_loads(params, 0, &err);
        json_t *j = json_object();
        if (j == NULL)
            return -1;
        json_object_set_new(j, "name", json_string(spec->name));
        json_object_set_new(j, "params", p ? p : json_string(params));
        json_object_set_new(j, "unit", json_string(spec->unit ? spec->unit : "op"));
        json_object_set_new(j, "ops", json_integer((json_int_t)spec->ops));
        json_object_set_new(j, "reps", json_integer(n));
        json_object_set_new(j, "seconds", json_real(r->med_s));
        json_object_set_new(j, "seconds_min", json_real(r->min_s));
        json_object_set_new(j, "seconds_max", json_real(r->max_s));
        json_object_set_new(j, "ops_per_s", json_real(r->ops_per_s));
        json_object_set_new(j, "ops_per_s_min", json_real(r->max_s > 0 ? spec->ops / r->max_s : 0));
        json_object_set_new(j, "ops_per_s_max", json_real(r->min_s > 0 ? spec->ops / r->min_s : 0));
        if (spec->bytes_per_op > 0)
            json_object_set_new(j, "bytes_per_op", json_real(spec->bytes_per_op));
        json_object_set_new(j, "peak_rss_kb", json_integer(rss));
        if (spec->extra_name)
            json_object_set_new(j, spec->extra_name, json_real(spec->extra));
        if (spec->bound) {
            json_object_set_new(j, "bound", json_string(spec->bound));
            if (b != NULL) {
                json_object_set_new(j, "bound_ops_per_s", json_real(b->ops_per_s));
                json_object_set_new(j, "ratio", json_real(ratio));
            }
        }
        return json_emit(j, ts);
    }

    if (!header_printed)
        print_header();
    char kv[128];
    params_text(params, kv, sizeof kv);
    char med[32], lo[32], hi[32], range[72], pop[32], bpo[16] = "-", rat[16] = "-", bnd[40] = "-",
                                                      tgt[80] = "";
    si(r->ops_per_s, med, sizeof med);
    si(r->max_s > 0 ? (double)spec->ops / r->max_s : 0, lo, sizeof lo);
    si(r->min_s > 0 ? (double)spec->ops / r->min_s : 0, hi, sizeof hi);
    snprintf(range, sizeof range, "%s..%s", lo, hi);
    per_op(spec->ops ? r->med_s / (double)spec->ops : 0, pop, sizeof pop);
    if (spec->bytes_per_op > 0)
        snprintf(bpo, sizeof bpo, "%.1f", spec->bytes_per_op);
    if (spec->bound) {
        snprintf(bnd, sizeof bnd, "%s", spec->bound);
        if (b != NULL)
            snprintf(rat, sizeof rat, "%.2fx", ratio);
        else
            snprintf(rat, sizeof rat, "n/a");
    }
    if (ts != NULL)
        snprintf(tgt, sizeof tgt, "%s %s",
                 !ts->evaluated ? "n/a"
                 : ts->met      ? "met"
                                : "MISSED",
                 ts->t->text);
    printf("%-26s %-30s %9llu %10s %21s %10s %7s %7.1f  %-22s %7s  %s\n", spec->name, kv,
           (unsigned long long)spec->ops, med, range, pop, bpo, (double)rss / 1024.0, bnd, rat,
           tgt);
    if (spec->extra_name)
        printf("%-26s   %s = %.4g\n", "", spec->extra_name, spec->extra);
    fflush(stdout);
    return 0;
}

int
bench_report_figure(const struct bench_opts *o, const char *name, const char *params,
                    const char *what, double value, const char *bound, double bound_value,
                    const struct bench_target *target)
{
    bool ratio = target != NULL && target->metric == BENCH_M_RATIO;
    struct target_seen *ts =
        target == NULL
            ? NULL
            : target_note(name, target, ratio && bound_value > 0 ? value / bound_value : value,
                          !ratio || bound_value > 0);
    if (o->json) {
        json_error_t err;
        json_t *p = json_loads(params ? params : "{}", 0, &err);
        json_t *j = json_object();
        if (j == NULL)
            return -1;
        json_object_set_new(j, "name", json_string(name));
        json_object_set_new(j, "params", p ? p : json_object());
        json_object_set_new(j, what, json_real(value));
        json_object_set_new(j, "peak_rss_kb", json_integer(bench_rss_peak_kb()));
        if (bound != NULL) {
            json_object_set_new(j, "bound", json_string(bound));
            json_object_set_new(j, "bound_value", json_real(bound_value));
            json_object_set_new(j, "ratio", json_real(bound_value > 0 ? value / bound_value : 0));
        }
        return json_emit(j, ts);
    }
    char kv[128], rat[128] = "";
    params_text(params ? params : "{}", kv, sizeof kv);
    if (bound != NULL && bound_value > 0)
        snprintf(rat, sizeof rat, "  (%s %.4g: %.2fx)", bound, bound_value, value / bound_value);
    printf("%-26s %-30s %s = %.4g%s%s%s%s\n", name, kv, what, value, rat, ts ? "  " : "",
           ts ? (!ts->evaluated ? "n/a "
                 : ts->met      ? "met "
                                : "MISSED ")
              : "",
           ts ? target->text : "");
    fflush(stdout);
    return 0;
}

void
bench_section(const struct bench_opts *o, const char *title)
{
    if (o->json)
        return;
    printf("\n== %s ==\n", title);
    header_printed = false;
}

void
bench_note(const struct bench_opts *o, const char *fmt, ...)
{
    FILE *f = o->json ? stderr : stdout;
    va_list ap;
    va_start(ap, fmt);
    fputs("   note: ", f);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    va_end(ap);
    fflush(f);
}

int
bench_targets_summary(const struct bench_opts *o)
{
    int missed = 0;
    FILE *f = o->json ? stderr : stdout;
    if (ntargets == 0)
        return 0;
    fprintf(f, "\n== targets of issue #4 (medians; the ratios are what count) ==\n");
    for (size_t i = 0; i < ntargets; i++) {
        const struct target_seen *t = &targets[i];
        const char *verdict = !t->evaluated ? "n/a   " : t->met ? "met   " : "MISSED";
        if (t->evaluated && !t->met)
            missed++;
        fprintf(f, "  %s  %-26s %-58s measured %.4g\n", verdict, t->name, t->t->text, t->value);
        /* the same target scaled to this machine, by the limit it was set against */
        const struct bench_result *ref =
            t->t->ref_bound && t->evaluated ? bench_result_find(t->t->ref_bound) : NULL;
        if (ref != NULL && ref->ops_per_s > 0) {
            double scale = ref->ops_per_s / t->t->ref_ops_per_s;
            double want = t->t->cmp == BENCH_AT_LEAST ? t->t->value * scale : t->t->value / scale;
            bool met = t->t->cmp == BENCH_AT_LEAST ? t->value >= want : t->value <= want;
            char text[128];
            snprintf(text, sizeof text, "  scaled: %s %.3g/s here, %.3g/s in the issue: %s %.4g",
                     t->t->ref_bound, ref->ops_per_s, t->t->ref_ops_per_s,
                     t->t->cmp == BENCH_AT_LEAST ? ">=" : "<=", want);
            fprintf(f, "  %s  %-26s %-58s\n", met ? "met   " : "MISSED", "", text);
        }
    }
    fflush(f);
    return missed;
}

int
bench_tmpdir(const struct bench_opts *o, const char *tag, char *out, size_t cap)
{
    static unsigned counter;
    int n = snprintf(out, cap, "%s/%s-%u", o->dir, tag, ++counter);
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    if (mkdir(out, 0700) != 0)
        return -errno;
    return 0;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void
bench_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
