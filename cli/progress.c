/*
 * progress.c — what the long commands (bundle create and apply, sync, verify) show while they
 * run, and how Ctrl-C stops them (spec/cli.md "Progress and Ctrl-C", CLI-21 and CLI-22).
 *
 * The library calls back with done/total (kith_progress_set); this draws one line on stderr,
 * redrawn in place with "\r" at most ten times a second and erased before the command prints
 * its result, so that the result reads as it would without it. The line is for a person at a
 * terminal only: never when stderr is not one or TERM is "dumb", never with --json or
 * --quiet. NO_COLOR asks for no colour, and the line has none, so it does not hide it.
 *
 * SIGINT sets a flag that the same callback returns, so the library stops at its next safe
 * point with KITH_ECANCELED and nothing half done; the command then says so and exits 130,
 * as a shell reports a command stopped by Ctrl-C. A SIGINT that whoever started kith set to be
 * ignored (a background job of a script) stays ignored.
 */
#include "cli.h"

#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REDRAW_MS 100 /* at most ten lines a second */

static volatile sig_atomic_t interrupted;

static void
on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

void
cli_sigint_catch(void)
{
    struct sigaction old, sa;

    if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler == SIG_IGN)
        return;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* the library's reads and writes go on; its polls wake */
    sigaction(SIGINT, &sa, NULL);
}

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* n in decimal with a comma every three digits: "12,345". */
static void
grouped(uint64_t n, char out[32])
{
    char digits[24];
    int len = snprintf(digits, sizeof digits, "%llu", (unsigned long long)n), j = 0;

    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            out[j++] = ',';
        out[j++] = digits[i];
    }
    out[j] = '\0';
}

size_t
cli_progress_format(char *out, size_t cap, const char *what, uint64_t done, uint64_t total)
{
    char d[32], t[32];
    int n;

    grouped(done, d);
    if (total == 0) {
        n = snprintf(out, cap, "%s  %s ops", what, d);
    } else {
        grouped(total, t);
        n = snprintf(out, cap, "%s  %s / %s ops  %u%%", what, d, t,
                     (unsigned)((double)done * 100.0 / (double)total));
    }
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static int
on_progress(void *ctx, const kith_progress *pr)
{
    struct cli_progress *p = ctx;
    int64_t now;
    char line[200];
    size_t n;

    if (interrupted)
        return 1;
    if (!p->draw)
        return 0;
    now = mono_ms();
    if (p->drawn && now - p->last_ms < REDRAW_MS)
        return 0;
    line[0] = '\r';
    n = 1 + cli_progress_format(line + 1, sizeof line - 8, p->what, pr->done, pr->total);
    memcpy(line + n, "\033[K", 3); /* erase what a longer line left */
    (void)!write(STDERR_FILENO, line, n + 3);
    p->drawn = true;
    p->last_ms = now;
    return interrupted;
}

void
cli_progress_begin(struct cli_progress *p, kith_replica *r, const char *what, bool quiet)
{
    const char *term = getenv("TERM");

    memset(p, 0, sizeof *p);
    p->r = r;
    p->what = what;
    p->draw = !quiet && isatty(STDERR_FILENO) == 1 && !(term != NULL && strcmp(term, "dumb") == 0);
    cli_sigint_catch();
    kith_progress_set(r, on_progress, p);
}

void
cli_progress_end(struct cli_progress *p)
{
    if (p->r != NULL)
        kith_progress_set(p->r, NULL, NULL);
    if (p->drawn)
        (void)!write(STDERR_FILENO, "\r\033[K", 4);
    p->drawn = false;
}

bool
cli_interrupted(void)
{
    return interrupted != 0;
}

int
cli_cancelled(const struct cli *c, const char *what_holds)
{
    cli_fail(c, "cancelled; %s", what_holds);
    return CLI_CANCELLED;
}
