/*
 * check.h — kith-check, the convergence checker (spec/check.md). One run starts N replicas
 * with real daemons on loopback, drives a seeded workload through the public API while a
 * seeded schedule injects faults, heals everything and checks that the replicas converged and
 * kept every acknowledged write. The pieces:
 *
 *   main.c      options, the report (text or JSON), replays that shrink a failure
 *   run.c       one run: replicas, daemons, the fault schedule, heal, the verdict
 *   workload.c  the generated writes and what was acknowledged; the checks made at the end
 *   proxy.c     a TCP proxy per directed link: partitions, delays, connections cut
 *   daemon.c    the hidden daemon mode (kith-check --daemon): kith_serve with test hooks
 *   writer.c    the hidden writer mode (kith-check --writer): a writer process to SIGKILL
 *
 * The checker is a client of include/kith.h except for three internal hooks it alone turns
 * on: the message-fault table (net/fault.h), one replica's clock offset (store/skew.c) and,
 * in builds made for its own tests, the break switches (KITH_CHECK_BREAK).
 */
#ifndef KITH_CHECK_H
#define KITH_CHECK_H

#include "kith.h"

#include <stdbool.h>
#include <stdint.h>

/* Fault classes, each one bit of ck_opts.faults. */
enum ck_fault {
    CK_KILL = 0, /* SIGKILL a daemon, restart it later */
    CK_PART,     /* partition the replicas in two groups, heal later */
    CK_DELAY,    /* delay every byte of a link (both directions of a pair) */
    CK_CUT,      /* cut a link's TCP connections mid-stream */
    CK_MSG,      /* drop, duplicate and reorder messages inside the daemons' sessions */
    CK_SKEW,     /* one replica's clock is off by 5 s, ahead or behind */
    CK_BUNDLE,   /* a bundle carried by hand from one replica to another */
    CK_FARSKEW,  /* one replica's clock is off by 62 s: the others hold its ops back (or it
                    holds theirs); not in the default set, see spec/check.md */
    CK_WRITER,   /* a writer process of one replica, SIGKILLed after a while: every commit it
                    was told of must survive */
    CK_NFAULTS
};

extern const char *const ck_fault_names[CK_NFAULTS];

#define CK_ALL_FAULTS ((1u << CK_NFAULTS) - 1)
#define CK_DEFAULT_FAULTS (CK_ALL_FAULTS & ~(1u << CK_FARSKEW))
#define CK_MAX_REPLICAS 16

struct ck_opts {
    int replicas;
    uint64_t seed;
    int64_t time_ms; /* bound of the whole run: workload, then heal and checks */
    long ops;        /* transactions to attempt (0: as many as the time allows) */
    unsigned faults; /* CK_* bits */
    bool json;
    bool shrink;
    bool keep;     /* keep the run directory even when the run passes */
    bool discard;  /* remove it even when the run fails (the replays that shrink a failure) */
    int log_level; /* of the daemons, into their log files */
};

/* One fault the schedule started: the history a failure is replayed and shrunk from. */
struct ck_event {
    long step;     /* the transaction it came after */
    int kind;      /* enum ck_fault */
    int a, b;      /* KILL: a; PART: -; DELAY, CUT: a and b; BUNDLE: from a to b */
    unsigned side; /* PART: the replicas on one side, a bit each; DELAY: the delay in ms */
    int ms;        /* KILL: down for; PART, DELAY: lasting */
};

#define CK_MAX_EVENTS 1024

struct ck_result {
    bool pass;
    char failure[512]; /* the first failed check, "" when pass */
    char dir[256];     /* the run directory, kept on failure */
    long txns;         /* transactions attempted */
    long commits;      /* acknowledged (kith_txn_commit returned 0) */
    long writes;       /* acknowledged field writes, set edits, creates and deletes */
    long skipped;      /* transactions abandoned: the document was not there (yet) */
    long refused;      /* of those, abandoned because a call or the commit failed otherwise */
    char refused_first[256];
    long conflicts; /* pairs of deliberately conflicting writes */
    long faults[CK_NFAULTS];
    long planned[CK_NFAULTS]; /* the schedule's faults, made or not (a seed replays these) */
    uint64_t schedule;        /* a hash of the schedule: (transaction, kind, replicas) each */
    long restarts;
    long writer_acks; /* commits writer processes acknowledged and reported before the kill */
    int skew_replica; /* -1 if none */
    int64_t skew_ms;
    uint64_t msg_dropped, msg_duplicated, msg_reordered; /* reported by daemons that stopped */
    bool healed;                                         /* the run got as far as the heal */
    int64_t converge_ms; /* from the heal to identical exports; -1 if never */
    int64_t run_ms;
    uint64_t ops_logged; /* ops in each replica's log at the end */
    size_t export_bytes;
    long acked_checked;  /* acknowledged writes found in every replica */
    long fields_checked; /* LWW registers compared with the log's winner */
    int daemons_died;
    int nevents; /* the first CK_MAX_EVENTS faults started, in order */
    struct ck_event events[CK_MAX_EVENTS];
};

int ck_run(const struct ck_opts *o, struct ck_result *res);
int ck_daemon_main(int argc, char **argv);

/* seeded generator (splitmix64) */
uint64_t ck_next(uint64_t *st);
uint64_t ck_below(uint64_t *st, uint64_t n);
int64_t ck_mono_ms(void);
void ck_sleep_ms(int ms);

/* ---- proxy.c ---- */
struct ck_proxy;

/* Links from..to for every ordered pair of n replicas, each listening on a port the kernel
 * picks; ck_proxy_ep gives where `from` dials `to`. */
int ck_proxy_start(int n, struct ck_proxy **out);
const char *ck_proxy_ep(struct ck_proxy *p, int from, int to);
/* Where `to` listens now (a daemon's endpoint, "" while it is down). */
void ck_proxy_target(struct ck_proxy *p, int to, const char *endpoint);
void ck_proxy_block(struct ck_proxy *p, int from, int to, bool blocked);
void ck_proxy_delay(struct ck_proxy *p, int from, int to, int ms);
void ck_proxy_cut(struct ck_proxy *p, int from, int to);
void ck_proxy_stop(struct ck_proxy *p);

/* ---- workload.c ---- */
struct ck_work;

int ck_work_new(int n, kith_replica **reps, uint64_t seed, struct ck_work **out);
/* One transaction (or a pair of conflicting ones) at a replica the generator picks. */
void ck_work_step(struct ck_work *w, struct ck_result *res);
/* False, with the problem in res->failure, once an acknowledged commit is known lost (its
 * replica's seq did not move): checked after every step, so such a run stops at once. */
bool ck_work_ok(struct ck_work *w, struct ck_result *res);
/* The end checks: acknowledged writes in every replica, registers hold their LWW winners.
 * Returns false with the first problem in res->failure. */
bool ck_work_check(struct ck_work *w, struct ck_result *res);
void ck_work_free(struct ck_work *w);
/* Replica k is written by another process (a writer, section "Faults") from now, or no longer:
 * the workload leaves it alone meanwhile, and takes up its seqs where the other stopped. */
void ck_work_busy(struct ck_work *w, int k, bool busy);
/* Acknowledged commits so far, and one of them as a line of text for another process. */
size_t ck_work_nacks(const struct ck_work *w);
int ck_work_ack_text(const struct ck_work *w, size_t i, char *buf, size_t cap);
/* Record a commit of replica k acknowledged in another process, from its line (modified). */
int ck_work_import(struct ck_work *w, int k, char *line);

/* ---- writer.c ---- */
int ck_writer_main(int argc, char **argv);

#endif /* KITH_CHECK_H */
