/*
 * progress.c — kith_progress_set and the reporter the long calls use (batch build and
 * apply, bundles, sync, verify): spec/decisions.md D-11.
 *
 * The callback belongs to the handle, like the observers, and is called in the thread making
 * the call. A reporter copies it when its call starts, so the numbers of one call go to one
 * callback. Loops report every KITH__PROGRESS_EVERY commits, a test of a counter's low bits,
 * so a call with no callback pays a branch per commit and nothing else; the cancel is
 * honoured where the call can stop whole (before its commit, between batches).
 */
#include "store.h"

void
kith_progress_set(kith_replica *r, kith_progress_fn fn, void *ctx)
{
    if (r == NULL)
        return;
    r->progress_fn = fn;
    r->progress_ctx = fn != NULL ? ctx : NULL;
}

void
kith__progress_init(struct kith__progress *pg, kith_replica *r, int op)
{
    pg->fn = r != NULL ? r->progress_fn : NULL;
    pg->ctx = r != NULL ? r->progress_ctx : NULL;
    pg->r = r;
    pg->p.op = op;
    pg->p.done = 0;
    pg->p.total = 0;
    pg->cancelled = false;
}

static int
cancelled(struct kith__progress *pg)
{
    return kith__fail(pg->r, KITH_ECANCELED,
                      "cancelled by the progress callback at %llu of %llu ops",
                      (unsigned long long)pg->p.done, (unsigned long long)pg->p.total);
}

int
kith__progress_report(struct kith__progress *pg, uint64_t done, uint64_t total)
{
    if (pg == NULL || pg->fn == NULL)
        return 0;
    if (pg->cancelled)
        return cancelled(pg);
    if (total != 0)
        pg->p.total = total > pg->p.done ? total : pg->p.done;
    if (done > pg->p.done)
        pg->p.done = done;
    if (pg->p.total != 0 && pg->p.done > pg->p.total)
        pg->p.done = pg->p.total;
    if (pg->fn(pg->ctx, &pg->p) != 0) {
        pg->cancelled = true;
        return cancelled(pg);
    }
    return 0;
}

int
kith__progress_end(struct kith__progress *pg, uint64_t total)
{
    if (pg == NULL || pg->fn == NULL)
        return 0;
    if (total < pg->p.done)
        total = pg->p.done;
    pg->p.total = total; /* a total guessed long is corrected down here */
    return kith__progress_report(pg, total, total);
}
