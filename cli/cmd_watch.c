/*
 * cmd_watch.c — `kith watch`: the change feed (kith_feed_*) as a stream of lines, one per
 * document a commit touched, or one JSON object per commit with --json, each flushed as it is
 * written, so a script (or `kith watch --json | jq`) sees a commit of any process at once and
 * can resume after a restart with --since and the last cursor it read (spec/cli.md "kith
 * watch").
 *
 * It waits in poll() on three descriptors: the feed's, a signalfd for SIGINT and SIGTERM
 * (blocked, so a signal between two polls is not lost and a stop is always clean: exit 0
 * after the last whole line), and stdout itself, with no events asked for, so that a reader
 * that goes away (a pipe's POLLERR) stops the command even while nothing is written. A write
 * that fails with EPIPE stops it the same way. It runs in kith's own process, not a child,
 * as serve and sync do, since it owns its signals (cli/main.c).
 */
#include "cli.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define WATCH_STOP_CHECK 64 /* events printed between looks at the stop signals */

struct watch {
    bool json;
    kith_feed *feed;
    int sigfd;
    bool stop; /* a signal came, or stdout went away */
    int werr;  /* errno of a failed write to stdout, 0 if none */
};

static const char *
source_name(int source)
{
    return source == KITH_CHANGE_LOCAL ? "local" : "remote";
}

/* One commit as one compact JSON line (keys sorted, like every --json of the CLI). */
static json_t *
event_json(const kith_feed_event *e)
{
    json_t *o = json_object(), *docs = json_array();
    int bad = docs == NULL;

    for (size_t i = 0; i < e->ndocs && !bad; i++) {
        const kith_feed_doc *d = &e->docs[i];
        json_t *doc = json_object(), *fields = json_array();
        int dbad = fields == NULL;

        for (size_t j = 0; j < d->nfields && !dbad; j++)
            dbad |= json_array_append_new(fields, json_string(d->fields[j])) < 0;
        dbad |= cli_jset(doc, "collection", json_string(d->collection));
        dbad |= cli_jset(doc, "doc", cli_json_docid(&d->doc));
        dbad |= cli_jset(doc, "created", json_boolean(d->created));
        dbad |= cli_jset(doc, "deleted", json_boolean(d->deleted));
        dbad |= cli_jset(doc, "fields", fields);
        doc = cli_json_done(doc, dbad);
        bad |= doc == NULL || json_array_append_new(docs, doc) < 0;
    }
    bad |= cli_jset(o, "cursor", json_integer((json_int_t)e->cursor));
    bad |= cli_jset(o, "source", json_string(source_name(e->source)));
    bad |= cli_jset(o, "origin", cli_json_id(e->origin));
    bad |= cli_jset(o, "first_seq", json_integer((json_int_t)e->first_seq));
    bad |= cli_jset(o, "last_seq", json_integer((json_int_t)e->last_seq));
    bad |= cli_jset(o, "hlc", cli_json_id(e->hlc));
    bad |= cli_jset(o, "time", cli_json_time((int64_t)(e->hlc >> 16)));
    bad |= cli_jset(o, "docs", docs);
    return cli_json_done(o, bad);
}

/* Print one event and flush it. 0, or -errno of the failed write, or KITH_ENOMEM. */
static int
event_print(const struct watch *w, const kith_feed_event *e)
{
    char origin[KITH_ID_HEX + 1], doc[KITH_DOCID_HEX + 1];

    if (w->json) {
        json_t *j = event_json(e);
        int rc = 0;
        if (j == NULL)
            return KITH_ENOMEM;
        if (json_dumpf(j, stdout, JSON_COMPACT | JSON_SORT_KEYS) < 0 || fputc('\n', stdout) == EOF)
            rc = errno ? -errno : -EIO;
        json_decref(j);
        if (rc < 0)
            return rc;
    } else {
        cli_id_hex(e->origin, origin);
        for (size_t i = 0; i < e->ndocs; i++) {
            const kith_feed_doc *d = &e->docs[i];
            const char *what = d->created && d->deleted ? "created,deleted"
                               : d->created             ? "created"
                               : d->deleted             ? "deleted"
                                                        : "changed";
            kith_docid_format(&d->doc, doc);
            printf("%llu %s %s %s %s %s ", (unsigned long long)e->cursor, source_name(e->source),
                   origin, d->collection, doc, what);
            for (size_t j = 0; j < d->nfields; j++)
                printf("%s%s", j ? "," : "", d->fields[j]);
            printf("%s\n", d->nfields ? "" : "-");
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout))
        return errno ? -errno : -EIO;
    return 0;
}

/* Wait for a commit, a stop signal, or stdout going away (timeout_ms -1: as long as it
 * takes; 0: just look). Sets w->stop for the last two. 0, or -errno. */
static int
watch_wait(struct watch *w, int timeout_ms)
{
    struct pollfd p[3] = {
        {.fd = kith_feed_fd(w->feed), .events = POLLIN},
        {.fd = w->sigfd, .events = POLLIN},
        {.fd = STDOUT_FILENO, .events = 0}, /* POLLERR/POLLHUP: the reader went away */
    };
    int n = poll(p, 3, timeout_ms);

    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    if (p[1].revents & POLLIN) {
        struct signalfd_siginfo si;
        /* taken, so that restoring the mask at the end does not deliver it after all */
        while (read(w->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
            ;
        w->stop = true;
    }
    if (p[2].revents & (POLLERR | POLLHUP))
        w->stop = true;
    return 0;
}

/* Print what the feed holds until it has caught up (or a stop). 0 or an error code. */
static int
watch_drain(struct watch *w)
{
    kith_feed_event e;
    int rc, n = 0;

    while (!w->stop && (rc = kith_feed_next(w->feed, &e)) == 0) {
        if ((rc = event_print(w, &e)) < 0) {
            w->werr = rc == KITH_ENOMEM ? 0 : -rc;
            return rc;
        }
        if (++n % WATCH_STOP_CHECK == 0 && (rc = watch_wait(w, 0)) < 0)
            return rc;
    }
    return w->stop || rc == KITH_ENOTFOUND ? 0 : rc;
}

int
cmd_watch(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"since", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"no-follow", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct watch w = {.json = false, .feed = NULL, .sigfd = -1, .stop = false, .werr = 0};
    uint64_t since = KITH_FEED_NOW;
    bool follow = true;
    kith_replica *r = NULL;
    sigset_t set, old;
    int ch, rc, krc;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 's':
            if (strcmp(optarg, "now") == 0)
                since = KITH_FEED_NOW;
            else if (cli_parse_u64(optarg, &since) < 0 || since == KITH_FEED_NOW)
                return cli_usage_error(c, "--since: '%s' is not a cursor (a number, or now)",
                                       optarg);
            break;
        case 'j':
            w.json = true;
            break;
        case 'n':
            follow = false;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (optind < argc)
        return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);

    /* Signals first: one that arrives while the replica opens still stops us cleanly. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, &old) != 0)
        return cli_fail(c, "cannot block SIGINT and SIGTERM: %s", strerror(errno));
    if ((w.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        rc = cli_fail(c, "cannot take SIGINT and SIGTERM: %s", strerror(errno));
        sigprocmask(SIG_SETMASK, &old, NULL);
        return rc;
    }
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is EPIPE from the write, and a clean stop */

    if ((rc = cli_open(c, CLI_READ, &r)) != CLI_OK)
        goto out_signals;
    if ((krc = kith_feed_open(r, since, &w.feed)) < 0) {
        rc = cli_fail_rc(c, r, "opening the feed", krc);
        goto out_close;
    }
    for (;;) {
        if ((krc = watch_drain(&w)) < 0)
            break;
        if (w.stop || !follow)
            break;
        if ((krc = watch_wait(&w, -1)) < 0)
            break;
        if (w.stop)
            break;
    }
    if (w.werr == EPIPE) {
        __fpurge(stdout); /* the reader went away: nothing left to tell, nor to flush */
        clearerr(stdout);
    } else if (w.werr != 0) {
        rc = cli_fail(c, "writing output: %s", strerror(w.werr));
    } else if (krc < 0) {
        rc = cli_fail_rc(c, r, "reading the feed", krc);
    }
    kith_feed_close(w.feed);
out_close:
    kith_close(r);
out_signals:
    if (w.sigfd >= 0) {
        struct signalfd_siginfo si;
        /* one that came during the clean-up is a stop request too: taken, not delivered */
        while (read(w.sigfd, &si, sizeof si) == (ssize_t)sizeof si)
            ;
        close(w.sigfd);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}
