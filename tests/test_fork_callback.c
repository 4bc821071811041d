/*
 * test_fork_callback.c — kith_on_fork (spec/data-model.md FORK-21): the app is told once for
 * each origin whose fork a batch or bundle recorded, or whose proof it brought or made, after
 * the commit and with the fork settled; never for a duplicate, never for a batch refused.
 *
 * The fork is real: F writes, its directory (key included) is copied to F', each writes its
 * own edit. B trusts F and holds F's branch; C trusts F and holds neither.
 */
#include "kith.h"
#include "kith_test.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct told {
    int calls;
    kith_fork last;
    kith_replica *r;
    size_t forks_seen; /* kith_forks_get from inside the callback: it may read */
};

static void
on_fork(void *ctx, const kith_fork *f)
{
    struct told *t = ctx;
    kith_fork *all = NULL;
    size_t n = 0;
    t->calls++;
    t->last = *f;
    cr_assert_eq(kith_forks_get(t->r, &all, &n), 0, "a read inside the callback");
    t->forks_seen = n;
    kith_forks_free(all, n);
}

static void
trust(struct kt_replica *to, struct kt_replica *from)
{
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_replica_pubkey(from->r, pk);
    cr_assert_eq(kith_trust_add(to->r, pk, "peer", NULL), 0);
}

static kith_buf
batch_of(kith_replica *r)
{
    kith_buf b = {0};
    int rc = kith_batch_create(r, NULL, &b, NULL);
    cr_assert_eq(rc, 0, "%s (%s)", kith_strerror(rc), kith_errmsg(r));
    return b;
}

static size_t
nforks(kith_replica *r)
{
    kith_fork *f = NULL;
    size_t n = 0;
    cr_assert_eq(kith_forks_get(r, &f, &n), 0);
    kith_forks_free(f, n);
    return n;
}

struct world {
    struct kt_replica f, fp, b, c;
    uint64_t origin;
};

static void
world_make(struct world *w)
{
    w->f = kt_new();
    w->b = kt_new();
    w->c = kt_new();
    trust(&w->b, &w->f);
    trust(&w->c, &w->f);
    w->origin = kith_replica_id(w->f.r);
    kt_contact(w->f.r, "Ada");
    kt_sync(&w->f, &w->b);
    kt_sync(&w->f, &w->c);
    w->fp = kt_copy_of(&w->f);
    kt_contact(w->f.r, "Grace");
    kt_contact(w->fp.r, "Hedy");
    kt_sync(&w->f, &w->b); /* B holds F's branch */
}

static void
world_free(struct world *w)
{
    kt_free(&w->f);
    kt_free(&w->fp);
    kt_free(&w->b);
    kt_free(&w->c);
}

/* A batch that shows the other history: one call, after the commit, with the proof and
 * the fork settled; the same batch again, and a bundle of it, tell nothing. */
/* proves FORK-21 */
Test(fork_callback, once_per_new_fork_from_a_batch)
{
    struct world w;
    struct told t = {0};
    world_make(&w);
    t.r = w.b.r;
    cr_assert_eq(kith_on_fork(w.b.r, on_fork, &t), 0);
    kith_buf other = batch_of(w.fp.r);
    kith_apply_info info;
    int rc = kith_batch_apply(w.b.r, other.data, other.len, &info);
    cr_assert_eq(rc, 0, "%s (%s)", kith_strerror(rc), kith_errmsg(w.b.r));
    cr_assert_eq(info.forks, 1);
    cr_assert_eq(t.calls, 1);
    cr_assert_eq(t.last.origin, w.origin);
    cr_assert_eq(t.last.source, KITH_FORK_BATCH);
    cr_assert(t.last.has_proof, "the proof made in the same commit is in the one call");
    cr_assert_neq(t.last.holds, KITH_FORK_HOLDS_LOSER, "told once settled: the loser went aside");
    cr_assert_eq(t.forks_seen, 1, "the callback may read: the commit is done");
    /* the same batch again: nothing new */
    cr_assert_eq(kith_batch_apply(w.b.r, other.data, other.len, &info), 0);
    cr_assert_eq(t.calls, 1);
    kith_free(other.data);
    /* cleared: no more calls */
    cr_assert_eq(kith_on_fork(w.b.r, NULL, NULL), 0);
    cr_assert_eq(kith_on_fork(NULL, on_fork, &t), KITH_EINVAL);
    world_free(&w);
}

/* A replica that never saw either branch learns the fork from a bundle's proof: one call,
 * source "proof"; the bundle again tells nothing. */
/* proves FORK-21, FORK-9 */
Test(fork_callback, once_per_new_proof_from_a_bundle)
{
    struct world w;
    struct told t = {0};
    char path[600];
    world_make(&w);
    kith_buf other = batch_of(w.fp.r);
    cr_assert_eq(kith_batch_apply(w.b.r, other.data, other.len, NULL), 0);
    kith_free(other.data);
    snprintf(path, sizeof path, "%s/b.kith", w.b.root);
    cr_assert_eq(kith_bundle_write(w.b.r, NULL, path, NULL), 0);
    trust(&w.c, &w.b); /* the bundle's sender */
    t.r = w.c.r;
    cr_assert_eq(kith_on_fork(w.c.r, on_fork, &t), 0);
    int rc = kith_bundle_apply(w.c.r, path, NULL);
    cr_assert_eq(rc, 0, "%s (%s)", kith_strerror(rc), kith_errmsg(w.c.r));
    cr_assert_eq(t.calls, 1);
    cr_assert_eq(t.last.origin, w.origin);
    cr_assert_eq(t.last.source, KITH_FORK_PROOF);
    cr_assert(t.last.has_proof);
    cr_assert_eq(kith_bundle_apply(w.c.r, path, NULL), 0);
    cr_assert_eq(t.calls, 1, "a duplicate proof is not told");
    world_free(&w);
}

/* A batch that is refused (here: its sender is not trusted) changes nothing and tells
 * nothing, though it carries the other history. */
/* proves FORK-21 */
Test(fork_callback, not_for_a_refused_batch)
{
    struct world w;
    struct told t = {0};
    world_make(&w);
    struct kt_replica d = kt_new();
    trust(&d, &w.fp);
    kt_sync(&w.fp, &d); /* D relays F's other branch; B does not trust D */
    kt_contact(d.r, "from d");
    t.r = w.b.r;
    cr_assert_eq(kith_on_fork(w.b.r, on_fork, &t), 0);
    kith_buf relay = batch_of(d.r);
    int rc = kith_batch_apply(w.b.r, relay.data, relay.len, NULL);
    cr_assert_eq(rc, KITH_EUNTRUSTED, "%s", kith_strerror(rc));
    cr_assert_eq(t.calls, 0);
    cr_assert_eq(nforks(w.b.r), 0);
    kith_free(relay.data);
    /* and the next accepted batch is told alone, not with the refused one's leftovers */
    kith_buf other = batch_of(w.fp.r);
    cr_assert_eq(kith_batch_apply(w.b.r, other.data, other.len, NULL), 0);
    cr_assert_eq(t.calls, 1);
    kith_free(other.data);
    kt_free(&d);
    world_free(&w);
}
