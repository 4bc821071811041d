/*
 * feed.c — the change feed across processes (kith_feed_*; spec/storage.md section 14):
 *
 *   feed.latency    a child process opens the replica on its own and waits in poll() on
 *                   kith_feed_fd; the parent commits one small write at a time (one field,
 *                   KITH_NOSYNC: an fsync would come before the measured window anyway) and
 *                   records CLOCK_MONOTONIC right after kith_txn_commit returns; the child
 *                   records it when kith_feed_next hands out that commit. Both clocks are the
 *                   machine's monotonic clock, so the difference is the delay from a commit in
 *                   one process to the event in another: inotify's wakeup, the scheduler, the
 *                   child's read transaction and decode. Timestamps are shared through a
 *                   MAP_SHARED anonymous mapping; the parent writes again only after the child
 *                   acknowledged through a pipe (each wait bounded). p50, p90, p99 in ms;
 *                   and the p50 from before kith_txn_begin (the write's own cost included).
 *   feed.read       how fast a feed reads a backlog: N single-field commits, then a feed
 *                   opened at 0 reads them all (kith_feed_next until KITH_ENOTFOUND), events/s.
 */
#include "replica.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define FEED_WAIT_MS 10000 /* the longest either side waits for the other */

static const struct bench_target t_feed_p50 = {"feed latency across processes, median < 5 ms",
                                               BENCH_M_EXTRA, BENCH_AT_MOST, 5};

static int
cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Set a field of `doc` to a value made from i, in a write transaction of its own. */
static int
write_one(kith_replica *r, const kith_docid *doc, uint64_t i)
{
    char v[BENCH_VALUE_BYTES];
    kith_txn *t = NULL;
    snprintf(v, sizeof v, "f%018llu", (unsigned long long)i);
    kith_value val = {.type = KITH_TYPE_STRING, .u.s = {v, BENCH_VALUE_BYTES - 1}};
    if (kith_txn_begin(r, KITH_TXN_WRITE, &t) < 0)
        return -1;
    if (kith_field_set(t, "contacts", doc, "notes", &val) < 0) {
        kith_txn_abort(&t);
        return -1;
    }
    return kith_txn_commit(&t) < 0 ? -1 : 0;
}

/* A replica under o->dir holding one contact (its id in *doc), closed again. 0 or -1. */
static int
make_replica(const struct bench_opts *o, char *dir, size_t cap, kith_docid *doc)
{
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    kith_value name = {.type = KITH_TYPE_STRING, .u.s = {"feed", 4}};
    int rc = -1;

    if (bench_receiver_open(o, NULL, KITH_NOSYNC, dir, cap, &r) != 0)
        return -1;
    if (kith_txn_begin(r, KITH_TXN_WRITE, &t) == 0 && kith_doc_create(t, "contacts", doc) == 0 &&
        kith_field_set(t, "contacts", doc, "name", &name) == 0 && kith_txn_commit(&t) == 0)
        rc = 0;
    kith_txn_abort(&t);
    kith_close(r);
    return rc;
}

/*
 * The watching child: open the replica, start a feed at its end, say so on `ack`, then for
 * each of n events wait in poll() on the feed's descriptor, record when kith_feed_next
 * handed it out into seen[i], and acknowledge. Exits 0, or 1 on any failure or wait that
 * ran out.
 */
static void
child_watch(const char *dir, uint64_t n, double *seen, int ack)
{
    kith_replica *r = NULL;
    kith_feed *f = NULL;
    kith_feed_event e;
    uint64_t got = 0, start;
    char one = 1;

    if (kith_open(dir, KITH_RDONLY, &r) != 0 || kith_feed_open(r, KITH_FEED_NOW, &f) != 0)
        _exit(1);
    start = kith_feed_cursor(f);
    if (write(ack, &one, 1) != 1)
        _exit(1);
    while (got < n) {
        struct pollfd p = {.fd = kith_feed_fd(f), .events = POLLIN};
        int rc;
        while ((rc = kith_feed_next(f, &e)) == 0) {
            double now = bench_now();
            if (e.cursor != start + got + 1)
                _exit(1); /* every commit once, in order */
            seen[got++] = now;
            if (write(ack, &one, 1) != 1)
                _exit(1);
        }
        if (rc != KITH_ENOTFOUND)
            _exit(1);
        if (got < n && poll(&p, 1, FEED_WAIT_MS) != 1)
            _exit(1);
    }
    kith_feed_close(f);
    kith_close(r);
    _exit(0);
}

/* Wait for one byte on fd, at most FEED_WAIT_MS. 0 or -1. */
static int
wait_ack(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char b;
    if (poll(&p, 1, FEED_WAIT_MS) != 1 || read(fd, &b, 1) != 1)
        return -1;
    return 0;
}

static int
feed_latency(const struct bench_opts *o)
{
    uint64_t n = o->smoke ? 20 : 1000;
    char dir[4200] = "", params[160];
    kith_docid doc;
    kith_replica *r = NULL;
    double *shared = MAP_FAILED, *lat = calloc(n, sizeof *lat), *begun = calloc(n, sizeof *begun);
    int pipefd[2] = {-1, -1}, st, rc = -1;
    pid_t pid = -1;

    if (lat == NULL || begun == NULL || make_replica(o, dir, sizeof dir, &doc) != 0)
        goto out;
    /* committed[n] then seen[n], visible to both processes */
    shared = mmap(NULL, 2 * n * sizeof(double), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                  -1, 0);
    if (shared == MAP_FAILED || pipe(pipefd) != 0)
        goto out;
    pid = fork();
    if (pid < 0)
        goto out;
    if (pid == 0) {
        close(pipefd[0]);
        child_watch(dir, n, shared + n, pipefd[1]);
    }
    close(pipefd[1]);
    pipefd[1] = -1;
    if (kith_open(dir, KITH_NOSYNC, &r) != 0 || wait_ack(pipefd[0]) != 0)
        goto out;
    for (uint64_t i = 0; i < n; i++) {
        begun[i] = bench_now();
        if (write_one(r, &doc, i) != 0)
            goto out;
        shared[i] = bench_now();
        if (wait_ack(pipefd[0]) != 0) {
            fprintf(stderr, "kith-bench: feed: write %llu was not seen in %d ms\n",
                    (unsigned long long)i, FEED_WAIT_MS);
            goto out;
        }
    }
    rc = 0;
out:
    kith_close(r);
    if (pid > 0) {
        if (rc != 0)
            kill(pid, SIGKILL);
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        if (rc == 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
            fprintf(stderr, "kith-bench: feed: the watching process failed\n");
            rc = -1;
        }
    }
    if (rc == 0) {
        for (uint64_t i = 0; i < n; i++)
            lat[i] = (shared[n + i] - shared[i]) * 1e3;
        qsort(lat, n, sizeof *lat, cmp_double);
        snprintf(params, sizeof params,
                 "{\"writes\":%llu,\"wait\":\"poll on kith_feed_fd\",\"sync\":\"nosync\"}",
                 (unsigned long long)n);
        if (bench_report_figure(o, "feed.latency.p50", params, "ms", lat[n / 2], NULL, 0,
                                &t_feed_p50) != 0 ||
            bench_report_figure(o, "feed.latency.p90", params, "ms", lat[(n * 90) / 100], NULL, 0,
                                NULL) != 0 ||
            bench_report_figure(o, "feed.latency.p99", params, "ms", lat[(n * 99) / 100], NULL, 0,
                                NULL) != 0)
            rc = -1;
        bench_note(o, "feed latency min %.3f ms, max %.3f ms over %llu writes", lat[0], lat[n - 1],
                   (unsigned long long)n);
        /* The same from before kith_txn_begin: the write itself, then the wakeup. */
        for (uint64_t i = 0; i < n; i++)
            lat[i] = (shared[n + i] - begun[i]) * 1e3;
        qsort(lat, n, sizeof *lat, cmp_double);
        if (bench_report_figure(o, "feed.latency.from_begin.p50", params, "ms", lat[n / 2], NULL, 0,
                                NULL) != 0)
            rc = -1;
    }
    if (pipefd[0] >= 0)
        close(pipefd[0]);
    if (pipefd[1] >= 0)
        close(pipefd[1]);
    if (shared != MAP_FAILED)
        munmap(shared, 2 * n * sizeof(double));
    free(lat);
    free(begun);
    if (dir[0])
        bench_rmtree(dir);
    return rc;
}

static int
feed_read(const struct bench_opts *o)
{
    uint64_t n = bench_size(o, 20000, 500);
    char dir[4200] = "", params[96];
    kith_docid doc;
    kith_replica *r = NULL;
    double t[BENCH_MAX_REPS];
    int rc = -1;

    if (make_replica(o, dir, sizeof dir, &doc) != 0 || kith_open(dir, KITH_NOSYNC, &r) != 0)
        goto out;
    for (uint64_t i = 1; i < n; i++) /* the contact's creation is the first commit */
        if (write_one(r, &doc, i) != 0)
            goto out;
    for (int rep = 0; rep < o->reps; rep++) {
        kith_feed *f = NULL;
        kith_feed_event e;
        uint64_t got = 0;
        int krc;
        double t0 = bench_now();
        if (kith_feed_open(r, 0, &f) != 0)
            goto out;
        while ((krc = kith_feed_next(f, &e)) == 0)
            got++;
        t[rep] = bench_now() - t0;
        kith_feed_close(f);
        if (krc != KITH_ENOTFOUND || got != n) {
            fprintf(stderr, "kith-bench: feed: read %llu of %llu events\n", (unsigned long long)got,
                    (unsigned long long)n);
            goto out;
        }
    }
    snprintf(params, sizeof params, "{\"commits\":%llu,\"ops_per_commit\":1}",
             (unsigned long long)n);
    struct bench_spec spec = {.name = "feed.read", .params = params, .ops = n, .unit = "event"};
    rc = bench_report(o, &spec, t, o->reps);
out:
    kith_close(r);
    if (dir[0])
        bench_rmtree(dir);
    return rc;
}

int
bench_feed(const struct bench_opts *o)
{
    if (feed_latency(o) != 0)
        return -1;
    return feed_read(o);
}
