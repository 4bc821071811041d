/*
 * run.c — one run of the checker (spec/check.md "A run"): N replicas in a fresh directory,
 * each trusting the others at the address of the proxy link that leads to it; a daemon per
 * replica, a child process re-executing this program in its hidden daemon mode; the workload
 * in this process, opening every replica through the public API while the daemons serve
 * them; the fault schedule, drawn from the seed, interleaved with the workload; then the
 * heal, the wait for identical exports, the daemons' clean stop and the checks.
 *
 * Faults are placed by transaction number, so one seed with one --ops gives the same writes
 * and the same faults at the same points of the workload (the daemons' timing is the
 * machine's: a replay repeats the schedule, not every interleaving).
 */
#include "check.h"
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *const ck_fault_names[CK_NFAULTS] = {"kill", "partition", "delay",    "cut",   "message",
                                                "skew", "bundle",    "far-skew", "writer"};

#define MSG_FAULT_PER_MILLE 15 /* each of drop, duplicate, reorder, per received message */
#define MAX_ACTIVE 32

struct daemon {
    pid_t pid; /* 0 while down */
    char ep[64];
    int64_t restart_at; /* mono ms; 0: not scheduled */
};

struct active {
    int kind;      /* CK_PART, CK_DELAY */
    unsigned mask; /* CK_PART: one side; CK_DELAY: the pair's two bits */
    int64_t until;
};

/* A writer process (fault `writer`): its pipe, and what arrived of its last line. */
struct writer {
    pid_t pid; /* 0: none running */
    int k, fd;
    int64_t kill_at;
    size_t len;
    char buf[16384];
};

struct run {
    const struct ck_opts *o;
    struct ck_result *res;
    int n;
    kith_replica *reps[CK_MAX_REPLICAS];
    struct daemon d[CK_MAX_REPLICAS];
    struct ck_proxy *px;
    uint64_t frng; /* the fault schedule's generator */
    struct active act[MAX_ACTIVE];
    int nact;
    bool partitioned;
    bool failed;
    struct ck_work *w;
    struct writer wr;
    long fault_txn; /* the last transaction number the fault schedule drew for */
};

uint64_t
ck_next(uint64_t *st)
{
    uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t
ck_below(uint64_t *st, uint64_t n)
{
    return n ? ck_next(st) % n : 0;
}

int64_t
ck_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
ck_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bool fail(struct run *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool
fail(struct run *x, const char *fmt, ...)
{
    va_list ap;
    if (x->failed)
        return false; /* the first failure is the one reported */
    va_start(ap, fmt);
    vsnprintf(x->res->failure, sizeof(x->res->failure), fmt, ap);
    va_end(ap);
    x->failed = true;
    return false;
}

static void
status_text(int status, char *out, size_t cap)
{
    if (WIFEXITED(status))
        snprintf(out, cap, "exit status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, cap, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(out, cap, "status %#x", status);
}

/* ---- daemons ---------------------------------------------------------------------------- */

/* Run this executable again with argv (a hidden mode), its stdout and stderr appended to
 * logp and fd 3 the write end of a pipe whose read end goes to *readfd. The pid, or -1 with
 * errno set. */
static pid_t
spawn_self(char *const argv[], const char *logp, int *readfd)
{
    int fds[2], logfd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0)
        return -1;
    if (pipe2(fds, O_CLOEXEC) < 0) {
        int e = errno;
        close(logfd);
        errno = e;
        return -1;
    }
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        /* async-signal-safe calls only: other threads of the checker may hold locks */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(5);
        if (dup2(fds[1], 3) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
            _exit(6);
        closefrom(4);
        execv("/proc/self/exe", argv);
        _exit(7);
    }
    int e = errno;
    close(fds[1]);
    close(logfd);
    if (pid < 0) {
        close(fds[0]);
        errno = e;
        return -1;
    }
    *readfd = fds[0];
    return pid;
}

static bool
daemon_start(struct run *x, int k)
{
    char dir[PATH_MAX], logp[PATH_MAX], a_skew[32], a_seed[32], a_p[3][16], a_lvl[16];
    unsigned msg = (x->o->faults & (1u << CK_MSG)) ? MSG_FAULT_PER_MILLE : 0;
    int rfd;

    snprintf(dir, sizeof(dir), "%s/r%d", x->res->dir, k);
    snprintf(logp, sizeof(logp), "%s/daemon-r%d.log", x->res->dir, k);
    snprintf(a_skew, sizeof(a_skew), "%lld",
             (long long)(k == x->res->skew_replica ? x->res->skew_ms : 0));
    snprintf(
        a_seed, sizeof(a_seed), "%llu",
        (unsigned long long)(x->o->seed * 131 + (uint64_t)k * 7919 + (uint64_t)x->res->restarts));
    for (int i = 0; i < 3; i++)
        snprintf(a_p[i], sizeof(a_p[i]), "%u", msg);
    snprintf(a_lvl, sizeof(a_lvl), "%d", x->o->log_level);
    char *argv[] = {"kith-check", "--daemon", dir,    "3",   a_skew, a_seed,
                    a_p[0],       a_p[1],     a_p[2], a_lvl, NULL};
    pid_t pid = spawn_self(argv, logp, &rfd);
    if (pid < 0)
        return fail(x, "cannot start daemon r%d: %s", k, strerror(errno));
    x->d[k].pid = pid;
    struct pollfd p = {.fd = rfd, .events = POLLIN};
    char ep[64];
    bool ok = poll(&p, 1, 15000) == 1 && read(rfd, ep, sizeof(ep)) == (ssize_t)sizeof(ep);
    close(rfd);
    if (!ok) {
        int status = 0;
        char st[64];
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        x->d[k].pid = 0;
        status_text(status, st, sizeof(st));
        return fail(x, "daemon r%d did not listen (%s); see its log", k, st);
    }
    ep[63] = 0;
    snprintf(x->d[k].ep, sizeof(x->d[k].ep), "%s", ep);
    x->d[k].restart_at = 0;
    ck_proxy_target(x->px, k, ep);
    return true;
}

static void
daemon_kill(struct run *x, int k)
{
    if (x->d[k].pid <= 0)
        return;
    if (x->px)
        ck_proxy_target(x->px, k, "");
    kill(x->d[k].pid, SIGKILL);
    waitpid(x->d[k].pid, NULL, 0);
    x->d[k].pid = 0;
}

/* Any daemon that exited without being told to is a failure. */
static void
daemons_alive(struct run *x)
{
    for (int k = 0; k < x->n; k++) {
        int status;
        if (x->d[k].pid <= 0 || waitpid(x->d[k].pid, &status, WNOHANG) != x->d[k].pid)
            continue;
        char st[64];
        status_text(status, st, sizeof(st));
        x->d[k].pid = 0;
        x->res->daemons_died++;
        fail(x, "daemon r%d died: %s", k, st);
    }
}

/* Add up the message-fault counts r_k's daemons wrote when they stopped cleanly (a killed
 * daemon takes its counts with it, so the figures are a lower bound). */
static void
daemon_counts(struct run *x, int k)
{
    char logp[PATH_MAX], line[512];
    unsigned long long d = 0, u = 0, h = 0;
    snprintf(logp, sizeof(logp), "%s/daemon-r%d.log", x->res->dir, k);
    FILE *f = fopen(logp, "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "faults dropped=");
        unsigned long long a, b, c;
        if (p && sscanf(p, "faults dropped=%llu duplicated=%llu reordered=%llu", &a, &b, &c) == 3)
            d += a, u += b, h += c;
    }
    fclose(f);
    x->res->msg_dropped += d;
    x->res->msg_duplicated += u;
    x->res->msg_reordered += h;
    x->res->faults[CK_MSG] += (long)(d + u + h);
}

/* SIGTERM every daemon and expect a clean exit within 10 s. */
static void
daemons_stop(struct run *x)
{
    for (int k = 0; k < x->n; k++)
        if (x->d[k].pid > 0)
            kill(x->d[k].pid, SIGTERM);
    for (int k = 0; k < x->n; k++) {
        int status = 0;
        pid_t got = 0;
        if (x->d[k].pid <= 0)
            continue;
        for (int i = 0; i < 1000 && got == 0; i++) {
            got = waitpid(x->d[k].pid, &status, WNOHANG);
            if (got == 0)
                ck_sleep_ms(10);
        }
        if (got == 0) {
            kill(x->d[k].pid, SIGKILL);
            waitpid(x->d[k].pid, &status, 0);
        }
        x->d[k].pid = 0;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            char st[64];
            status_text(status, st, sizeof(st));
            x->res->daemons_died++;
            fail(x, "daemon r%d did not stop cleanly: %s", k, st);
        }
    }
    for (int k = 0; k < x->n; k++)
        daemon_counts(x, k);
}

/* ---- faults ----------------------------------------------------------------------------- */

static void
partition(struct run *x, unsigned side, bool blocked)
{
    for (int i = 0; i < x->n; i++)
        for (int j = 0; j < x->n; j++)
            if (i != j && ((side >> i) & 1) != ((side >> j) & 1))
                ck_proxy_block(x->px, i, j, blocked);
}

static void
pair_delay(struct run *x, int a, int b, int ms)
{
    ck_proxy_delay(x->px, a, b, ms);
    ck_proxy_delay(x->px, b, a, ms);
}

static void
add_active(struct run *x, int kind, unsigned mask, int64_t until)
{
    if (x->nact < MAX_ACTIVE)
        x->act[x->nact++] = (struct active){kind, mask, until};
}

static void
end_active(struct run *x, struct active *a)
{
    if (a->kind == CK_PART) {
        partition(x, a->mask, false);
        x->partitioned = false;
    } else {
        int i = __builtin_ctz(a->mask), j = 31 - __builtin_clz(a->mask);
        pair_delay(x, i, j, 0);
    }
}

static void
bundle(struct run *x, int a, int b)
{
    char path[PATH_MAX];
    kith_vv since;
    snprintf(path, sizeof(path), "%s/bundle", x->res->dir);
    if (kith_vv_get(x->reps[b], &since) < 0)
        return;
    int rc = kith_bundle_write(x->reps[a], &since, path, NULL);
    kith_vv_free(&since);
    if (rc == 0)
        rc = kith_bundle_apply(x->reps[b], path, NULL);
    if (rc < 0)
        fail(x, "bundle r%d -> r%d: %s (%s)", a, b, kith_strerror(rc), kith_errmsg(x->reps[b]));
    unlink(path);
}

static void
two(struct run *x, int *a, int *b)
{
    *a = (int)ck_below(&x->frng, (uint64_t)x->n);
    *b = (int)ck_below(&x->frng, (uint64_t)x->n - 1);
    *b += *b >= *a;
}

/* Start a writer process on replica k; the workload leaves k alone meanwhile. */
static void
writer_start(struct run *x, int k, int64_t kill_at)
{
    char dir[PATH_MAX], logp[PATH_MAX], a_seed[32], a_skew[32];
    int rfd;

    snprintf(dir, sizeof(dir), "%s/r%d", x->res->dir, k);
    snprintf(logp, sizeof(logp), "%s/writer-r%d.log", x->res->dir, k);
    snprintf(a_seed, sizeof(a_seed), "%llu",
             (unsigned long long)(x->o->seed * 31 + (uint64_t)x->res->txns));
    snprintf(a_skew, sizeof(a_skew), "%lld",
             (long long)(k == x->res->skew_replica ? x->res->skew_ms : 0));
    char *argv[] = {"kith-check", "--writer", dir, "3", a_seed, a_skew, NULL};
    ck_work_busy(x->w, k, true);
    pid_t pid = spawn_self(argv, logp, &rfd);
    if (pid < 0) {
        ck_work_busy(x->w, k, false);
        fail(x, "cannot start a writer of r%d: %s", k, strerror(errno));
        return;
    }
    fcntl(rfd, F_SETFL, O_NONBLOCK);
    x->wr.pid = pid;
    x->wr.k = k;
    x->wr.fd = rfd;
    x->wr.kill_at = kill_at;
    x->wr.len = 0;
}

/* Take in the whole lines the writer sent: each is a commit it was told is durable. */
static void
writer_read(struct run *x)
{
    for (;;) {
        ssize_t n = read(x->wr.fd, x->wr.buf + x->wr.len, sizeof(x->wr.buf) - 1 - x->wr.len);
        if (n <= 0)
            break;
        x->wr.len += (size_t)n;
        x->wr.buf[x->wr.len] = 0;
        char *start = x->wr.buf, *nl;
        while ((nl = strchr(start, '\n')) != NULL) {
            *nl = 0;
            if (ck_work_import(x->w, x->wr.k, start) < 0)
                fail(x, "a writer of r%d sent a line that does not parse", x->wr.k);
            else
                x->res->writer_acks++;
            start = nl + 1;
        }
        x->wr.len -= (size_t)(start - x->wr.buf);
        memmove(x->wr.buf, start, x->wr.len);
    }
}

/* SIGKILL the writer (in a transaction, a commit, or between two), then read what it sent
 * before it died; the workload takes the replica back. */
static void
writer_kill(struct run *x)
{
    int status = 0;
    if (x->wr.pid <= 0)
        return;
    kill(x->wr.pid, SIGKILL);
    waitpid(x->wr.pid, &status, 0);
    writer_read(x); /* a line cut by the kill stays unread: it was not reported */
    close(x->wr.fd);
    x->wr.pid = 0;
    ck_work_busy(x->w, x->wr.k, false);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
        char st[64];
        status_text(status, st, sizeof(st));
        fail(x, "a writer of r%d ended by itself (%s); see its log", x->wr.k, st);
    }
}

/* Maybe start a fault now (drawn from the schedule's generator), and end those due. */
static void fault_draw(struct run *x, int64_t now, unsigned dyn);

static void
faults_tick(struct run *x)
{
    int64_t now = ck_mono_ms();
    unsigned dyn = x->o->faults & ((1u << CK_KILL) | (1u << CK_PART) | (1u << CK_DELAY) |
                                   (1u << CK_CUT) | (1u << CK_BUNDLE) | (1u << CK_WRITER));

    for (int k = 0; k < x->n; k++)
        if (x->d[k].pid == 0 && x->d[k].restart_at && now >= x->d[k].restart_at) {
            x->res->restarts++;
            daemon_start(x, k);
        }
    if (x->wr.pid > 0) {
        writer_read(x);
        if (now >= x->wr.kill_at)
            writer_kill(x);
    }
    for (int i = 0; i < x->nact;)
        if (now >= x->act[i].until) {
            end_active(x, &x->act[i]);
            x->act[i] = x->act[--x->nact];
        } else {
            i++;
        }
    /* one draw per transaction number, used or not, so that the schedule depends on the seed
     * and the transaction alone: how many steps it took to make a transaction (a step waits
     * for a document that has not arrived, or makes two) is timing */
    long upto = x->o->ops > 0 && x->res->txns > x->o->ops ? x->o->ops : x->res->txns;
    while (x->fault_txn < upto) {
        x->fault_txn++;
        fault_draw(x, now, dyn);
    }
}

/* The fault of one transaction number, if the schedule has one; whether it can happen now
 * (a writer already running, too many daemons down) is the run's state, so the schedule is
 * also counted apart (planned) from what happened (faults). */
static void
fault_draw(struct run *x, int64_t now, unsigned dyn)
{
    uint64_t roll = ck_below(&x->frng, 16), pick = ck_next(&x->frng);
    int dur = 300 + (int)ck_below(&x->frng, 2700);
    int a, b;
    two(x, &a, &b);
    if (roll != 0 || dyn == 0 || x->n < 2)
        return;
    int kind;
    do
        kind = (int)(pick++ % CK_NFAULTS);
    while (!(dyn & (1u << kind)));
    x->res->planned[kind]++;
    x->res->schedule = (x->res->schedule ^ (uint64_t)x->fault_txn ^ ((uint64_t)kind << 32) ^
                        ((uint64_t)a << 40) ^ ((uint64_t)b << 48)) *
                       0x100000001b3ull;
    struct ck_event ev = {x->fault_txn, kind, a, b, 0, dur};
    switch (kind) {
    case CK_KILL: {
        int down = 0;
        for (int k = 0; k < x->n; k++)
            down += x->d[k].pid == 0;
        if (x->d[a].pid == 0 || down + 1 > x->n / 2)
            return;
        daemon_kill(x, a);
        x->d[a].restart_at = now + dur / 2;
        ev.ms = dur / 2;
        break;
    }
    case CK_PART: {
        if (x->partitioned)
            return;
        unsigned side = (unsigned)(pick >> 8) & ((1u << x->n) - 1);
        if (side == 0 || side == (1u << x->n) - 1)
            side = 1u << a;
        partition(x, side, true);
        x->partitioned = true;
        ev.side = side;
        add_active(x, CK_PART, side, now + dur);
        break;
    }
    case CK_DELAY:
        ev.side = 20 + (unsigned)((pick >> 8) % 180); /* the delay, in ms */
        pair_delay(x, a, b, (int)ev.side);
        add_active(x, CK_DELAY, (1u << a) | (1u << b), now + dur);
        break;
    case CK_CUT:
        ck_proxy_cut(x->px, a, b);
        ck_proxy_cut(x->px, b, a);
        break;
    case CK_BUNDLE:
        bundle(x, a, b);
        break;
    case CK_WRITER:
        if (x->wr.pid > 0)
            return; /* one at a time */
        writer_start(x, a, now + dur);
        break;
    }
    x->res->faults[kind]++;
    if (x->res->nevents < CK_MAX_EVENTS)
        x->res->events[x->res->nevents++] = ev;
}

/* Everything back: links open, no delays, every daemon up, message faults off. */
static void
heal(struct run *x)
{
    writer_kill(x);
    for (int i = 0; i < x->nact; i++)
        end_active(x, &x->act[i]);
    x->nact = 0;
    for (int k = 0; k < x->n; k++)
        if (x->d[k].pid == 0 && !x->failed) {
            x->res->restarts += x->d[k].restart_at != 0;
            daemon_start(x, k);
        }
    for (int k = 0; k < x->n; k++)
        if (x->d[k].pid > 0)
            kill(x->d[k].pid, SIGUSR1);
}

/* ---- the end ---------------------------------------------------------------------------- */

static char *
export_of(struct run *x, int k, size_t *len)
{
    kith_buf b;
    int rc = kith_export_json(x->reps[k], &b);
    if (rc < 0) {
        fail(x, "export of r%d: %s", k, kith_strerror(rc));
        return NULL;
    }
    *len = b.len;
    return (char *)b.data;
}

static char *
vv_of(kith_replica *r)
{
    kith_vv vv;
    char *text = NULL;
    if (kith_vv_get(r, &vv) < 0)
        return NULL;
    if (kith_vv_format(&vv, &text) < 0)
        text = NULL;
    kith_vv_free(&vv);
    return text;
}

static bool
str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

/*
 * Do all replicas export the same bytes, with nothing pending? With `final`, a difference is
 * the run's failure. Either way, replicas that hold the same ops (the same vector, nothing
 * pending, unchanged while their exports were read) yet export different bytes have broken
 * the first promise: that is a failure at once, without waiting for a deadline.
 */
static bool
converged(struct run *x, bool final)
{
    char *vb[CK_MAX_REPLICAS] = {0}, *ex[CK_MAX_REPLICAS] = {0};
    size_t len[CK_MAX_REPLICAS] = {0};
    bool same = true, stable = true, sameops = true;
    int differs = -1;

    for (int k = 0; k < x->n; k++) {
        kith_status *s;
        vb[k] = vv_of(x->reps[k]);
        if (kith_status_get(x->reps[k], &s) < 0) {
            same = stable = false;
            continue;
        }
        if (s->pending_ops > 0) {
            if (final && same)
                fail(x, "r%d holds %llu pending ops", k, (unsigned long long)s->pending_ops);
            same = stable = false;
        }
        kith_status_free(s);
        ex[k] = export_of(x, k, &len[k]);
        char *va = vv_of(x->reps[k]);
        stable = stable && ex[k] && str_eq(vb[k], va);
        kith_free(va);
        sameops = sameops && str_eq(vb[0], vb[k]);
        if (k > 0 && differs < 0 &&
            !(ex[0] && ex[k] && len[0] == len[k] && memcmp(ex[0], ex[k], len[0]) == 0))
            differs = k;
    }
    same = same && differs < 0 && ex[0] != NULL;
    if (!same && differs > 0 && (final || (stable && sameops))) {
        size_t i = 0, l0 = len[0], lk = len[differs];
        while (ex[0] && ex[differs] && i < l0 && i < lk && ex[0][i] == ex[differs][i])
            i++;
        fail(x, "%sexports differ: r0 (%zu bytes) and r%d (%zu bytes), first at byte %zu",
             stable && sameops ? "same ops, yet " : "", l0, differs, lk, i);
    }
    if (same)
        x->res->export_bytes = len[0];
    for (int k = 0; k < x->n; k++) {
        kith_free(vb[k]);
        kith_free(ex[k]);
    }
    return same;
}

static void
final_checks(struct run *x, struct ck_work *w)
{
    char *vv0 = NULL;

    if (!converged(x, true))
        return;
    for (int k = 0; k < x->n; k++) {
        kith_verify_report rep;
        kith_status *s;
        char *vv;
        int rc = kith_verify(x->reps[k], &rep);
        if (rc < 0) {
            fail(x, "verify of r%d could not run: %s", k, kith_strerror(rc));
            break;
        }
        if (rep.problems > 0) {
            fail(x, "verify of r%d: %llu problems, first: %s", k, (unsigned long long)rep.problems,
                 rep.first_problem);
            break;
        }
        if (kith_status_get(x->reps[k], &s) < 0) {
            fail(x, "status of r%d", k);
            break;
        }
        uint64_t total = 0;
        for (size_t i = 0; i < s->vv.len; i++)
            total += s->vv.entries[i].seq;
        /* every op logged once and applied once: the log holds exactly the vector's ops */
        if (s->ops_logged != total)
            fail(x, "r%d logs %llu ops but its vector counts %llu", k,
                 (unsigned long long)s->ops_logged, (unsigned long long)total);
        x->res->ops_logged = s->ops_logged;
        rc = kith_vv_format(&s->vv, &vv);
        kith_status_free(s);
        if (rc < 0)
            break;
        if (vv0 == NULL)
            vv0 = vv;
        else {
            if (strcmp(vv0, vv) != 0)
                fail(x, "vectors differ: r0 %s, r%d %s", vv0, k, vv);
            kith_free(vv);
        }
    }
    kith_free(vv0);
    if (!x->failed && !ck_work_check(w, x->res))
        x->failed = true;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int
ck_run(const struct ck_opts *o, struct ck_result *res)
{
    struct run x;
    struct ck_work *w = NULL;
    const char *tmp = getenv("TMPDIR");
    int64_t t0 = ck_mono_ms();

    memset(&x, 0, sizeof(x));
    memset(res, 0, sizeof(*res));
    x.o = o;
    x.res = res;
    x.n = o->replicas;
    x.frng = o->seed ^ 0xfa017ull;
    res->converge_ms = -1;
    res->skew_replica = -1;
    snprintf(res->dir, sizeof(res->dir), "%s/kith-check.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(res->dir) == NULL) {
        snprintf(res->failure, sizeof(res->failure), "cannot make a run directory: %s",
                 strerror(errno));
        return -1;
    }
    if (o->faults & ((1u << CK_SKEW) | (1u << CK_FARSKEW))) {
        /* 5 s stays under the minute beyond which ops are held back; 62 s goes over it */
        bool far = o->faults & (1u << CK_FARSKEW);
        uint64_t s = o->seed ^ 0x5e3ull;
        res->skew_replica = (int)ck_below(&s, (uint64_t)x.n);
        res->skew_ms = (far ? 62000 : 5000) * (ck_below(&s, 2) ? 1 : -1);
        res->faults[far ? CK_FARSKEW : CK_SKEW] = 1;
    }
    if (ck_proxy_start(x.n, &x.px) < 0) {
        fail(&x, "cannot start the proxies");
        goto out;
    }
    for (int k = 0; k < x.n; k++) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s/r%d", res->dir, k);
        int rc = kith_open(dir, KITH_CREATE | KITH_NOSYNC, &x.reps[k]);
        if (rc < 0) {
            fail(&x, "cannot create replica r%d: %s", k, kith_strerror(rc));
            goto out;
        }
        rc = kith_schema_apply(x.reps[k], kith_schema_crm(), strlen(kith_schema_crm()));
        if (rc < 0) {
            fail(&x, "cannot declare the schema of r%d: %s", k, kith_errmsg(x.reps[k]));
            goto out;
        }
        if (k == res->skew_replica)
            kith__replica_set_clock_offset(x.reps[k], res->skew_ms);
    }
    for (int i = 0; i < x.n; i++)
        for (int j = 0; j < x.n; j++) {
            uint8_t pk[KITH_PUBKEY_BYTES];
            char name[16];
            if (i == j)
                continue;
            kith_replica_pubkey(x.reps[j], pk);
            snprintf(name, sizeof(name), "r%d", j);
            if (kith_trust_add(x.reps[i], pk, name, ck_proxy_ep(x.px, i, j)) < 0) {
                fail(&x, "cannot trust r%d at r%d", j, i);
                goto out;
            }
        }
    for (int k = 0; k < x.n; k++)
        if (!daemon_start(&x, k))
            goto out;
    if (ck_work_new(x.n, x.reps, o->seed, &w) < 0) {
        fail(&x, "out of memory");
        goto out;
    }
    x.w = w;

    /* the workload, with faults: half the time (or --ops transactions) */
    int64_t work_end = t0 + o->time_ms / 2;
    uint64_t pace = o->seed ^ 0x9ace;
    while (!x.failed && (o->ops > 0 ? res->txns < o->ops : ck_mono_ms() < work_end)) {
        if (o->ops > 0 && ck_mono_ms() > t0 + o->time_ms * 3 / 4)
            break; /* --time bounds --ops */
        ck_work_step(w, res);
        if (!ck_work_ok(w, res)) {
            x.failed = true;
            break;
        }
        faults_tick(&x);
        daemons_alive(&x);
        ck_sleep_ms(1 + (int)ck_below(&pace, 6));
    }
    if (x.failed)
        goto out;

    /* heal, and wait for identical exports */
    int64_t healed = ck_mono_ms();
    int64_t deadline = t0 + o->time_ms - 2000;
    if (deadline < healed + 10000)
        deadline = healed + 10000;
    heal(&x);
    res->healed = true;
    while (!x.failed) {
        daemons_alive(&x);
        if (converged(&x, false)) {
            res->converge_ms = ck_mono_ms() - healed;
            break;
        }
        if (ck_mono_ms() > deadline) {
            double secs = (double)(ck_mono_ms() - healed) / 1000.0;
            char why[sizeof(res->failure)];
            converged(&x, true); /* names the first difference */
            snprintf(why, sizeof(why), "%s", x.failed ? res->failure : "replicas differ");
            x.failed = false;
            fail(&x, "no convergence within %.1f s of the heal: %s", secs, why);
            break;
        }
        ck_sleep_ms(100);
    }
    daemons_alive(&x);
    daemons_stop(&x);
    if (!x.failed)
        final_checks(&x, w);

out:
    if (x.wr.pid > 0) {
        kill(x.wr.pid, SIGKILL);
        waitpid(x.wr.pid, NULL, 0);
        close(x.wr.fd);
    }
    for (int k = 0; k < x.n; k++)
        daemon_kill(&x, k);
    ck_proxy_stop(x.px);
    ck_work_free(w);
    for (int k = 0; k < x.n; k++)
        kith_close(x.reps[k]);
    res->pass = !x.failed;
    res->run_ms = ck_mono_ms() - t0;
    if ((res->pass && !o->keep) || o->discard) {
        nftw(res->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        res->dir[0] = 0;
    }
    return res->pass ? 0 : 1;
}
