/*
 * bench.h — the harness behind build/kith-bench: options, timing, samples, results, targets,
 * and the scenario table. A scenario runs its work --reps times, timing only the measured part
 * with CLOCK_MONOTONIC (set-up such as creating a replica or generating ops is outside the
 * clock), and hands the samples to bench_report(), which sorts them into min/median/max,
 * prints a table row (or, with --json, one JSON object per line on stdout), and remembers the
 * result so that later rows can be set beside the machine limit they are bound by and so that
 * the closing summary can say which target of issue #4 was met. Limits (scenario "limits") run
 * first, in the same process, so every ratio compares figures taken on the same machine within
 * the same minute.
 */
#ifndef KITH_BENCH_H
#define KITH_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_MAX_REPS 101
#define BENCH_MAX_RESULTS 256
#define BENCH_NAME_MAX 48

struct bench_opts {
    uint64_t ops;     /* --ops N: scale of every scenario (0: each scenario's default) */
    int reps;         /* --reps R: repetitions, min/median/max over them */
    bool json;        /* --json: JSON lines instead of the table */
    bool smoke;       /* --smoke: tiny sizes, every scenario, for CI */
    bool scaling;     /* --scaling: scenarios 2 and 6 at 10k, 100k, 1M */
    const char *only; /* --only NAME[,NAME]: comma list of scenario names, NULL: all */
    char dir[4096];   /* temp directory of this run (created, removed at exit) */
};

/* Which way a target compares: the value must be at least, or at most, the bound. */
enum bench_cmp { BENCH_AT_LEAST = 1, BENCH_AT_MOST = 2 };

/* What a target looks at in a result. */
enum bench_metric {
    BENCH_M_OPS_PER_S = 1, /* median ops/s */
    BENCH_M_RATIO = 2,     /* median ops/s divided by the bound's median ops/s */
    BENCH_M_BYTES_PER_OP = 3,
    BENCH_M_SECONDS = 4, /* median seconds */
    BENCH_M_EXTRA = 5    /* the result's extra value (latency percentiles, flatness) */
};

struct bench_target {
    const char *text; /* the target as issue #4 states it */
    enum bench_metric metric;
    enum bench_cmp cmp;
    double value;
    /* Where issue #4 measured the limit this target was set against: the limit's result name
     * here and the ops/s the issue saw. The summary then also judges the target scaled by
     * how fast that limit runs on this machine (NULL: the target is not scaled). */
    const char *ref_bound;
    double ref_ops_per_s;
};

/* What a scenario reports for one measured quantity. */
struct bench_spec {
    const char *name;       /* "apply.durable" */
    const char *params;     /* JSON object text of the parameters, e.g. {"commit":100} */
    uint64_t ops;           /* ops per repetition */
    double bytes_per_op;    /* 0: not relevant */
    const char *bound;      /* name of the limit result this one is bound by, or NULL */
    const char *unit;       /* what an "op" is: "op", "put", "hash", "msg", "txn" */
    const char *extra_name; /* optional extra figure ("p99_ms"), NULL if none */
    double extra;
    const struct bench_target *target; /* NULL if issue #4 sets none */
};

struct bench_result {
    char name[BENCH_NAME_MAX];
    double med_s, min_s, max_s; /* seconds per repetition */
    double ops_per_s;           /* ops / med_s */
    double bytes_per_op;
    uint64_t ops;
};

/* One scenario of the table: its name (for --only) and its entry point. */
struct bench_scenario {
    const char *name;
    const char *what;
    int (*run)(const struct bench_opts *o);
};

/* Default sizes (ops per repetition), shared by a kith scenario and the raw limit it is set
 * beside, so both do the same number of the same-sized puts. --ops N replaces each; the single
 * durable transaction count is capped at BENCH_N_LOCAL1_MAX since each costs an fsync. */
#define BENCH_VALUE_BYTES 20 /* the value size of every generated write */
#define BENCH_N_APPLY 50000u
#define BENCH_N_APPLY_SMOKE 500u
#define BENCH_N_LOCAL1 300u
#define BENCH_N_LOCAL1_SMOKE 20u
#define BENCH_N_LOCAL1_MAX 2000u
#define BENCH_N_LOCAL100 20000u
#define BENCH_N_LOCAL100_SMOKE 200u

/* A sampler of the peak anonymous resident memory (heap, stacks) during a measurement. */
struct bench_anon {
    pthread_t th;
    atomic_int stop;
    bool running;
    long base_kb; /* RssAnon when sampling started */
    long peak_kb; /* the highest RssAnon seen */
};

/* ---- bench/harness.c ---------------------------------------------------------------- */

/* Seconds on CLOCK_MONOTONIC. */
double bench_now(void);
/* Reset the peak resident set size (so the next getrusage peak is this scenario's); best
 * effort, a no-op where the kernel refuses. */
void bench_rss_reset(void);
/* Peak resident set size in KiB since the last reset (getrusage ru_maxrss). */
long bench_rss_peak_kb(void);
/* Start sampling RssAnon (every ms, in a thread); stop returns how far its peak rose above
 * where it started, in KiB: the heap the measured work needed. */
int bench_anon_start(struct bench_anon *a);
long bench_anon_stop(struct bench_anon *a);
/*
 * Report n samples (seconds per repetition) of the quantity `spec` describes: print a table
 * row or a JSON line and remember the result under spec->name. Returns 0, or -1 if the
 * result table is full.
 */
int bench_report(const struct bench_opts *o, const struct bench_spec *spec, double *samples, int n);
/* The median of n samples (not reordered). */
double bench_median(const double *samples, int n);
/*
 * Report one derived figure (a latency percentile, a curve's flatness) that is not a rate:
 * `what` names it ("p99_ms"), bound/bound_value (may be NULL/0) are what it is set beside.
 */
int bench_report_figure(const struct bench_opts *o, const char *name, const char *params,
                        const char *what, double value, const char *bound, double bound_value,
                        const struct bench_target *target);
/* A result reported earlier in this run, by name; NULL if there is none. */
const struct bench_result *bench_result_find(const char *name);
/* Print a section heading (table mode only). */
void bench_section(const struct bench_opts *o, const char *title);
/* Print a note under the table (stderr in JSON mode, so stdout stays JSON lines). */
void bench_note(const struct bench_opts *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Print every target seen and whether it was met; returns the number missed. */
int bench_targets_summary(const struct bench_opts *o);
/* Make a fresh empty directory under o->dir for one replica or environment, into out. */
int bench_tmpdir(const struct bench_opts *o, const char *tag, char *out, size_t cap);
/* Remove a directory tree (best effort). */
void bench_rmtree(const char *path);
/* A deterministic pseudo-random generator (splitmix64), so every run does the same work. */
uint64_t bench_rand(uint64_t *state);
/* Pick the size: --ops when given, else the smoke size or the default. */
uint64_t bench_size(const struct bench_opts *o, uint64_t dflt, uint64_t smoke);

/* ---- the scenarios, one file each ----------------------------------------------------- */

int bench_limits(const struct bench_opts *o); /* bench/limits.c: the machine (8) */
int bench_merge(const struct bench_opts *o);  /* bench/merge.c: in-memory merge (1) */
int bench_apply(const struct bench_opts *o);  /* bench/apply.c: durable apply (2) */
int bench_local(const struct bench_opts *o);  /* bench/apply.c: local writes (3) */
int bench_verify(const struct bench_opts *o); /* bench/verify.c: chain + signatures (4) */
int bench_codec(const struct bench_opts *o);  /* bench/codec.c: encode/decode (5) */

int bench_scaling(const struct bench_opts *o); /* bench/main.c: (2) and (6) over N (7) */
int bench_scale_apply(const struct bench_opts *o);
int bench_sync(const struct bench_opts *o); /* bench/sync.c: two peers on loopback (6) */
int bench_feed(const struct bench_opts *o); /* bench/feed.c: the change feed across processes */
int bench_scale_sync(const struct bench_opts *o);
/* Raw LMDB, one durable transaction of n puts, reported as "lmdb.one_txn.durable.<n>" whose
 * name is copied to `name`: the bound of a scaled apply. */
int bench_limits_lmdb_one(const struct bench_opts *o, uint64_t n, char *name, size_t cap);
/* Print the cost per op of the named results as a curve and report its flatness (max/min),
 * judged against the 1.5x target when `judge`. */
int bench_scale_curve(const struct bench_opts *o, const char *name, const char *const *results,
                      size_t n, bool judge);

#endif /* KITH_BENCH_H */
