/*
 * test_feed.c — the change feed (store/feed.c; spec/storage.md "The change feed", FEED-n;
 * spec/decisions.md D-10). Generated histories of local commits, batches and bundles between
 * three replicas: each replica's feed lists exactly the commits it applied, in the order it
 * applied them, each with the documents and fields its author wrote, and agrees with the
 * observers. Held commits appear when they apply. A cursor resumes. The descriptor wakes for
 * commits made by another process (opened separately in a child), on a read-only handle,
 * and on a replica of format 1.
 */
#include "kith_test.h"
#include "store.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define V1 KITH_SOURCE_DIR "/tests/data/v1"
#define DESC_MAX 2048
#define WAIT_MS 10000 /* the longest a test waits for a wakeup that must come */

/* ---- describing commits ------------------------------------------------------------------ */

/* One commit as the test knows it: its author's range and what the author wrote. */
struct known {
    uint64_t origin, first, last;
    char desc[DESC_MAX];
};

/* A document touched by a commit being written, in the order the commit first touched it. */
struct wdoc {
    kith_docid doc;
    bool created, deleted;
    const char *fields[16];
    size_t nfields;
};

struct wcommit {
    struct wdoc docs[8];
    size_t ndocs;
};

static int
str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "contacts/<id>:+-:f1,f2;" per document: the form both sides of a comparison are put in. */
static void
desc_add(char *out, const char *coll, const kith_docid *doc, bool created, bool deleted,
         const char *const *fields, size_t n)
{
    char hex[KITH_DOCID_HEX + 1];
    size_t len = strlen(out);

    kith_docid_format(doc, hex);
    len += (size_t)snprintf(out + len, DESC_MAX - len, "%s/%s:%s%s:", coll, hex, created ? "+" : "",
                            deleted ? "-" : "");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, DESC_MAX - len, "%s%s", i ? "," : "", fields[i]);
    cr_assert_lt(len + 1, DESC_MAX);
    snprintf(out + len, DESC_MAX - len, ";");
}

static void
desc_event(const kith_feed_event *e, char out[DESC_MAX])
{
    out[0] = '\0';
    for (size_t i = 0; i < e->ndocs; i++) {
        const kith_feed_doc *d = &e->docs[i];
        for (size_t j = 1; j < d->nfields; j++)
            cr_assert_lt(strcmp(d->fields[j - 1], d->fields[j]), 0, "fields sorted, each once");
        desc_add(out, d->collection, &d->doc, d->created, d->deleted, d->fields, d->nfields);
    }
}

static void
desc_commit(struct wcommit *w, char out[DESC_MAX])
{
    out[0] = '\0';
    for (size_t i = 0; i < w->ndocs; i++) {
        struct wdoc *d = &w->docs[i];
        size_t m = 0;
        qsort(d->fields, d->nfields, sizeof d->fields[0], str_cmp);
        for (size_t j = 0; j < d->nfields; j++)
            if (m == 0 || strcmp(d->fields[m - 1], d->fields[j]) != 0)
                d->fields[m++] = d->fields[j];
        desc_add(out, "contacts", &d->doc, d->created, d->deleted, d->fields, m);
    }
}

static struct wdoc *
wtouch(struct wcommit *w, const kith_docid *doc)
{
    for (size_t i = 0; i < w->ndocs; i++)
        if (memcmp(w->docs[i].doc.bytes, doc->bytes, KITH_DOCID_BYTES) == 0)
            return &w->docs[i];
    cr_assert_lt(w->ndocs, 8);
    struct wdoc *d = &w->docs[w->ndocs++];
    memset(d, 0, sizeof *d);
    d->doc = *doc;
    return d;
}

/* ---- reading a feed ---------------------------------------------------------------------- */

/* Every event after *cursor (a feed opened there and closed again), appended to ev[]; *cursor
 * advances. Checks the cursors rise. Returns how many were read. */
static size_t
feed_read(kith_replica *r, uint64_t *cursor, kith_feed_event *ev, char (*desc)[DESC_MAX],
          size_t cap)
{
    kith_feed *f = NULL;
    kith_feed_event e;
    size_t n = 0;
    int rc;

    cr_assert_eq(kith_feed_open(r, *cursor, &f), 0, "%s", kith_errmsg(r));
    cr_assert_eq(kith_feed_cursor(f), *cursor);
    while ((rc = kith_feed_next(f, &e)) == 0) {
        cr_assert_lt(n, cap);
        cr_assert_gt(e.cursor, *cursor, "cursors rise");
        cr_assert_eq(kith_feed_cursor(f), e.cursor);
        cr_assert_geq(e.ndocs, 1);
        cr_assert_eq(e.source,
                     e.origin == kith_replica_id(r) ? KITH_CHANGE_LOCAL : KITH_CHANGE_REMOTE);
        *cursor = e.cursor;
        ev[n] = e;
        ev[n].docs = NULL; /* views: only the description outlives the call */
        desc_event(&e, desc[n]);
        n++;
    }
    cr_assert_eq(rc, KITH_ENOTFOUND, "%s: %s", kith_strerror(rc), kith_errmsg(r));
    kith_feed_close(f);
    return n;
}

/* ---- observers, for the cross-check -------------------------------------------------------- */

struct seen {
    char docs[256][KITH_DOCID_HEX + 1];
    size_t n;
};

static void
seen_add(struct seen *s, const kith_docid *doc)
{
    char hex[KITH_DOCID_HEX + 1];

    kith_docid_format(doc, hex);
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->docs[i], hex) == 0)
            return;
    cr_assert_lt(s->n, 256);
    memcpy(s->docs[s->n++], hex, sizeof hex);
}

static void
on_change(void *ctx, const kith_change *c)
{
    for (size_t i = 0; i < c->ndocs; i++)
        seen_add(ctx, &c->docs[i].doc);
}

static bool
seen_same(const struct seen *a, const struct seen *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        size_t j = 0;
        while (j < b->n && strcmp(a->docs[i], b->docs[j]) != 0)
            j++;
        if (j == b->n)
            return false;
    }
    return true;
}

/* ---- generated histories -------------------------------------------------------------------- */

#define NREP 3
#define MAX_KNOWN 1024

struct world {
    struct kt_replica k[NREP];
    uint64_t cursor[NREP];
    struct seen obs[NREP];
    struct known *known;
    size_t nknown;
    uint64_t rng;
    uint64_t values; /* a counter that makes every written value new */
    char bundle[512];
};

static uint64_t
vv_of(kith_replica *r, uint64_t origin)
{
    kith_vv vv = {0};
    uint64_t seq = 0;

    cr_assert_eq(kith_vv_get(r, &vv), 0);
    for (size_t i = 0; i < vv.len; i++)
        if (vv.entries[i].origin == origin)
            seq = vv.entries[i].seq;
    kith_vv_free(&vv);
    return seq;
}

/* A live contact of the write transaction's view, picked at random; false when none. */
static bool
pick_live(struct world *w, kith_txn *t, kith_docid *out)
{
    kith_docid ids[512];
    size_t n = 0;
    kith_iter *it = NULL;

    if (kith_iter_docs(t, "contacts", &it) == KITH_ENOTFOUND)
        return false;
    cr_assert_not_null(it);
    while (n < 512 && kith_iter_next(it, &ids[n]) == 0)
        n++;
    kith_iter_close(it);
    if (n == 0)
        return false;
    *out = ids[kt_below(&w->rng, n)];
    return true;
}

/* One local commit of 1..3 random actions on replica x; records what it wrote. */
static void
local_commit(struct world *w, int x)
{
    kith_replica *r = w->k[x].r;
    struct wcommit wc = {.ndocs = 0};
    kith_txn *t = kt_wbegin(r);
    int actions = 1 + (int)kt_below(&w->rng, 3);
    static const char *const plain[] = {"phone", "company", "notes"};
    char val[64];
    kith_docid doc;

    for (int i = 0; i < actions; i++) {
        unsigned what = (unsigned)kt_below(&w->rng, 10);
        snprintf(val, sizeof val, "v%llu", (unsigned long long)++w->values);
        kith_value v = kt_str(val);
        if (what < 3 || !pick_live(w, t, &doc)) {
            cr_assert_eq(kith_doc_create(t, "contacts", &doc), 0, "%s", kith_errmsg(r));
            cr_assert_eq(kith_field_set(t, "contacts", &doc, "name", &v), 0, "%s", kith_errmsg(r));
            struct wdoc *d = wtouch(&wc, &doc);
            d->created = true;
            d->fields[d->nfields++] = "name";
        } else if (what < 7) {
            const char *field = plain[kt_below(&w->rng, 3)];
            cr_assert_eq(kith_field_set(t, "contacts", &doc, field, &v), 0, "%s", kith_errmsg(r));
            struct wdoc *d = wtouch(&wc, &doc);
            cr_assert_lt(d->nfields, 16);
            d->fields[d->nfields++] = field;
        } else if (what < 9) {
            cr_assert_eq(kith_set_add(t, "contacts", &doc, "tags", val, strlen(val)), 0, "%s",
                         kith_errmsg(r));
            struct wdoc *d = wtouch(&wc, &doc);
            cr_assert_lt(d->nfields, 16);
            d->fields[d->nfields++] = "tags";
        } else {
            cr_assert_eq(kith_doc_delete(t, "contacts", &doc), 0, "%s", kith_errmsg(r));
            wtouch(&wc, &doc)->deleted = true;
        }
    }
    uint64_t id = kith_replica_id(r), before = vv_of(r, id);
    kt_commit(t);
    cr_assert_lt(w->nknown, MAX_KNOWN);
    struct known *kn = &w->known[w->nknown++];
    kn->origin = id;
    kn->first = before + 1;
    kn->last = vv_of(r, id);
    desc_commit(&wc, kn->desc);
}

static const struct known *
known_find(const struct world *w, uint64_t origin, uint64_t first)
{
    for (size_t i = 0; i < w->nknown; i++)
        if (w->known[i].origin == origin && w->known[i].first == first)
            return &w->known[i];
    return NULL;
}

/* Apply to y what it lacks from x, as a batch or as a bundle file. */
static void
carry(struct world *w, int x, int y, bool bundle)
{
    if (!bundle) {
        (void)kt_sync(&w->k[x], &w->k[y]);
        return;
    }
    kith_vv vv = {0};
    kith_apply_info info;
    cr_assert_eq(kith_vv_get(w->k[y].r, &vv), 0);
    cr_assert_eq(kith_bundle_write(w->k[x].r, &vv, w->bundle, NULL), 0, "%s",
                 kith_errmsg(w->k[x].r));
    cr_assert_eq(kith_bundle_apply(w->k[y].r, w->bundle, &info), 0, "%s", kith_errmsg(w->k[y].r));
    kith_vv_free(&vv);
}

/*
 * After a step: each replica's feed lists, after its cursor, exactly the commits the step
 * applied there — per origin, the seqs between the vectors before and after, contiguous and
 * rising, as whole commits — each described as its author wrote it, and touching the
 * documents the observers heard of.
 */
static void
check_step(struct world *w, kith_vv *before)
{
    static kith_feed_event ev[MAX_KNOWN];
    static char desc[MAX_KNOWN][DESC_MAX];

    for (int x = 0; x < NREP; x++) {
        kith_replica *r = w->k[x].r;
        size_t n = feed_read(r, &w->cursor[x], ev, desc, MAX_KNOWN);
        kith_vv after = {0};
        struct seen fed = {.n = 0};

        cr_assert_eq(kith_vv_get(r, &after), 0);
        for (size_t o = 0; o < after.len; o++) {
            uint64_t origin = after.entries[o].origin, from = 0;
            for (size_t j = 0; j < before[x].len; j++)
                if (before[x].entries[j].origin == origin)
                    from = before[x].entries[j].seq;
            for (size_t i = 0; i < n; i++) {
                if (ev[i].origin != origin)
                    continue;
                cr_assert_eq(ev[i].first_seq, from + 1,
                             "replica %d: origin %016llx's commits in seq order, none twice "
                             "(got %llu after %llu)",
                             x, (unsigned long long)origin, (unsigned long long)ev[i].first_seq,
                             (unsigned long long)from);
                const struct known *kn = known_find(w, origin, ev[i].first_seq);
                cr_assert_not_null(kn, "a commit nobody wrote");
                cr_assert_eq(ev[i].last_seq, kn->last);
                cr_assert_str_eq(desc[i], kn->desc, "replica %d: commit %016llx:%llu", x,
                                 (unsigned long long)origin, (unsigned long long)kn->first);
                from = ev[i].last_seq;
            }
            cr_assert_eq(from, after.entries[o].seq,
                         "replica %d: the feed lists every commit applied from %016llx", x,
                         (unsigned long long)origin);
        }
        for (size_t i = 0; i < n; i++) {
            bool listed = false;
            for (size_t o = 0; o < after.len; o++)
                listed |= after.entries[o].origin == ev[i].origin;
            cr_assert(listed, "an event of an origin not applied");
        }
        /* The observers heard of the same documents (the feed's; parse them back). */
        for (size_t i = 0; i < n; i++)
            for (char *p = desc[i]; (p = strchr(p, '/')) != NULL; p++) {
                kith_docid d;
                char hex[KITH_DOCID_HEX + 1];
                memcpy(hex, p + 1, KITH_DOCID_HEX);
                hex[KITH_DOCID_HEX] = '\0';
                cr_assert_eq(kith_docid_parse(hex, &d), 0);
                seen_add(&fed, &d);
            }
        cr_assert(seen_same(&fed, &w->obs[x]), "replica %d: the feed and the observer differ", x);
        w->obs[x].n = 0;
        kith_vv_free(&before[x]);
        before[x] = after;
    }
}

/* FEED-1, FEED-2, FEED-3 */
Test(feed, lists_every_applied_commit_in_order_as_its_author_wrote_it)
{
    uint64_t seed = kt_seed();
    int cases = kt_cases(8);

    for (int c = 0; c < cases; c++) {
        struct world *w = calloc(1, sizeof *w);
        kith_vv before[NREP];

        cr_assert_not_null(w);
        w->known = calloc(MAX_KNOWN, sizeof *w->known);
        cr_assert_not_null(w->known);
        w->rng = seed + (uint64_t)c;
        for (int x = 0; x < NREP; x++) {
            w->k[x] = kt_new();
            kith_observe(w->k[x].r, on_change, NULL, &w->obs[x]);
        }
        snprintf(w->bundle, sizeof w->bundle, "%s/bundle", w->k[0].root);
        for (int x = 0; x < NREP; x++)
            for (int y = x + 1; y < NREP; y++)
                kt_trust_pair(&w->k[x], &w->k[y]);
        for (int x = 0; x < NREP; x++) {
            memset(&before[x], 0, sizeof before[x]);
            cr_assert_eq(kith_vv_get(w->k[x].r, &before[x]), 0);
        }
        for (int step = 0; step < 40; step++) {
            int x = (int)kt_below(&w->rng, NREP), y = (x + 1 + (int)kt_below(&w->rng, 2)) % NREP;
            unsigned what = (unsigned)kt_below(&w->rng, 4);
            if (what < 2)
                local_commit(w, x);
            else
                carry(w, x, y, what == 3);
            check_step(w, before);
        }
        /* The whole feed again from 0: the same, contiguous cursors from 1. */
        for (int x = 0; x < NREP; x++) {
            static kith_feed_event ev[MAX_KNOWN];
            static char desc[MAX_KNOWN][DESC_MAX];
            uint64_t cur = 0;
            size_t n = feed_read(w->k[x].r, &cur, ev, desc, MAX_KNOWN);
            cr_assert_eq(cur, w->cursor[x]);
            for (size_t i = 0; i < n; i++)
                cr_assert_eq(ev[i].cursor, i + 1, "apply order counts 1, 2, 3 ...");
            kith_vv_free(&before[x]);
        }
        for (int x = 0; x < NREP; x++)
            kt_free(&w->k[x]);
        free(w->known);
        free(w);
    }
}

/* ---- resuming, and where a feed starts ------------------------------------------------------ */

static kith_docid
write_n(kith_replica *r, int n)
{
    kith_docid doc = kt_contact(r, "first");
    for (int i = 1; i < n; i++) {
        char v[32];
        snprintf(v, sizeof v, "phone %d", i);
        kt_set_str(r, "contacts", &doc, "phone", v);
    }
    return doc;
}

/* FEED-4 */
Test(feed, a_cursor_resumes_right_after_its_commit)
{
    struct kt_replica a = kt_new();
    kith_feed *f = NULL;
    kith_feed_event e;
    uint64_t mid;

    write_n(a.r, 150); /* more than a chunk */
    cr_assert_eq(kith_feed_open(a.r, 0, &f), 0);
    for (int i = 0; i < 70; i++) {
        cr_assert_eq(kith_feed_next(f, &e), 0);
        cr_assert_eq(e.cursor, (uint64_t)i + 1);
        cr_assert_eq(e.first_seq, i == 0 ? 1u : (uint64_t)i + 2, "the first commit has 2 ops");
    }
    mid = kith_feed_cursor(f);
    cr_assert_eq(mid, 70);
    kith_feed_close(f);

    kt_reopen(&a, KITH_NOSYNC); /* a restart */
    cr_assert_eq(kith_feed_open(a.r, mid, &f), 0);
    for (uint64_t i = mid + 1; i <= 150; i++) {
        cr_assert_eq(kith_feed_next(f, &e), 0);
        cr_assert_eq(e.cursor, i);
        cr_assert_eq(e.ndocs, 1);
        cr_assert_eq(e.docs[0].nfields, 1);
        cr_assert_str_eq(e.docs[0].fields[0], "phone");
        cr_assert(!e.docs[0].created && !e.docs[0].deleted);
        cr_assert_eq(e.source, KITH_CHANGE_LOCAL);
        cr_assert_eq(e.origin, kith_replica_id(a.r));
    }
    cr_assert_eq(kith_feed_next(f, &e), KITH_ENOTFOUND);
    cr_assert_eq(kith_feed_next(f, &e), KITH_ENOTFOUND, "caught up stays caught up");
    cr_assert_eq(kith_feed_cursor(f), 150);
    kith_feed_close(f);
    kt_free(&a);
}

/* FEED-4 */
Test(feed, now_starts_at_the_end_and_a_cursor_past_it_is_refused)
{
    struct kt_replica a = kt_new();
    kith_feed *f = NULL;
    kith_feed_event e;

    write_n(a.r, 5);
    cr_assert_eq(kith_feed_open(a.r, KITH_FEED_NOW, &f), 0);
    cr_assert_eq(kith_feed_cursor(f), 5);
    cr_assert_eq(kith_feed_next(f, &e), KITH_ENOTFOUND);
    kith_docid doc = kt_contact(a.r, "later");
    cr_assert_eq(kith_feed_next(f, &e), 0);
    cr_assert_eq(e.cursor, 6);
    cr_assert(e.docs[0].created);
    cr_assert_eq(memcmp(e.docs[0].doc.bytes, doc.bytes, KITH_DOCID_BYTES), 0);
    cr_assert_str_eq(e.docs[0].collection, "contacts");
    kith_feed_close(f);

    f = (kith_feed *)&e; /* must become NULL */
    cr_assert_eq(kith_feed_open(a.r, 7, &f), KITH_EINVAL);
    cr_assert_null(f);
    cr_assert_neq(strstr(kith_errmsg(a.r), "past"), NULL, "%s", kith_errmsg(a.r));
    cr_assert_eq(kith_feed_open(a.r, 6, &f), 0, "the end itself is a cursor");
    cr_assert_eq(kith_feed_next(f, &e), KITH_ENOTFOUND);
    kith_feed_close(f);
    kith_feed_close(NULL);
    cr_assert_eq(kith_feed_open(NULL, 0, &f), KITH_EINVAL);
    kt_free(&a);
}

/* FEED-3: one commit touching several documents, each once, fields sorted and once. */
Test(feed, an_event_lists_each_document_once_in_first_touch_order)
{
    struct kt_replica a = kt_new();
    kith_docid x = kt_contact(a.r, "x"), y = kt_contact(a.r, "y"), z;
    kith_value v = kt_str("v");
    kith_feed *f = NULL;
    kith_feed_event e;
    kith_txn *t = kt_wbegin(a.r);

    cr_assert_eq(kith_field_set(t, "contacts", &y, "phone", &v), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &x, "notes", &v), 0);
    cr_assert_eq(kith_set_add(t, "contacts", &y, "tags", "t", 1), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &y, "company", &v), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &y, "phone", &v), 0);
    cr_assert_eq(kith_doc_create(t, "contacts", &z), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &z, "name", &v), 0);
    cr_assert_eq(kith_doc_delete(t, "contacts", &x), 0);
    kt_commit(t);

    cr_assert_eq(kith_feed_open(a.r, 2, &f), 0);
    cr_assert_eq(kith_feed_next(f, &e), 0);
    cr_assert_eq(e.ndocs, 3);
    cr_assert_eq(memcmp(e.docs[0].doc.bytes, y.bytes, 16), 0);
    cr_assert_eq(e.docs[0].nfields, 3);
    cr_assert_str_eq(e.docs[0].fields[0], "company");
    cr_assert_str_eq(e.docs[0].fields[1], "phone");
    cr_assert_str_eq(e.docs[0].fields[2], "tags");
    cr_assert(!e.docs[0].created && !e.docs[0].deleted);
    cr_assert_eq(memcmp(e.docs[1].doc.bytes, x.bytes, 16), 0);
    cr_assert(e.docs[1].deleted && !e.docs[1].created);
    cr_assert_eq(e.docs[1].nfields, 1);
    cr_assert_str_eq(e.docs[1].fields[0], "notes");
    cr_assert_eq(memcmp(e.docs[2].doc.bytes, z.bytes, 16), 0);
    cr_assert(e.docs[2].created);
    cr_assert_eq(e.first_seq + 7, e.last_seq);
    cr_assert_eq(kith_feed_next(f, &e), KITH_ENOTFOUND);
    kith_feed_close(f);
    kt_free(&a);
}

/* ---- held commits --------------------------------------------------------------------------- */

/* FEED-2: a commit held for a missing dependency is listed when it applies, after what it
 * waited for; one held for a clock ahead, when kith_holds_apply applies it. */
Test(feed, held_commits_are_listed_when_they_apply)
{
    struct kt_replica a = kt_new(), b = kt_new(), c = kt_new();
    kith_batch_opts opts = {0};
    kith_apply_info info;
    kith_buf buf = {0};
    kith_vv fake = {0};
    kith_feed *f = NULL;
    kith_feed_event e;

    kt_trust_pair(&a, &b);
    kt_trust_pair(&a, &c);
    kt_trust_pair(&b, &c);
    kith_docid doc = kt_contact(a.r, "from a"); /* a:1..2 */
    kt_sync(&a, &b);
    kt_set_str(b.r, "contacts", &doc, "phone", "from b"); /* b:1, names a's doc */

    /* b sends c only its own commit, as if c held a's: it waits for a's ops */
    cr_assert_eq(kith_vv_get(b.r, &fake), 0);
    for (size_t i = 0; i < fake.len; i++)
        if (fake.entries[i].origin == kith_replica_id(b.r))
            fake.entries[i].seq = 0;
    opts.since = &fake;
    cr_assert_eq(kith_batch_create(b.r, &opts, &buf, NULL), 0, "%s", kith_errmsg(b.r));
    cr_assert_eq(kith_batch_apply(c.r, buf.data, buf.len, &info), 0, "%s", kith_errmsg(c.r));
    cr_assert_eq(info.ops_pending, 1);
    kith_free(buf.data);
    kith_vv_free(&fake);

    cr_assert_eq(kith_feed_open(c.r, 0, &f), 0);
    cr_assert_eq(kith_feed_next(f, &e), KITH_ENOTFOUND, "a held commit is not applied");
    kt_sync(&a, &c);
    cr_assert_eq(kith_feed_next(f, &e), 0);
    cr_assert_eq(e.origin, kith_replica_id(a.r));
    cr_assert_eq(e.source, KITH_CHANGE_REMOTE);
    cr_assert(e.docs[0].created);
    cr_assert_eq(kith_feed_next(f, &e), 0);
    cr_assert_eq(e.origin, kith_replica_id(b.r), "the held commit, after what it waited for");
    cr_assert_eq(e.first_seq, 1);
    cr_assert_str_eq(e.docs[0].fields[0], "phone");
    cr_assert_eq(kith_feed_next(f, &e), KITH_ENOTFOUND);

    /* a's clock runs ten minutes ahead: its commit waits at c until c's clock catches up */
    kith__replica_set_clock_offset(a.r, 600000);
    kt_set_str(a.r, "contacts", &doc, "notes", "from the future");
    kt_sync(&a, &c);
    cr_assert_eq(kith_feed_next(f, &e), KITH_ENOTFOUND, "held for the clock");
    kith__replica_set_clock_offset(c.r, 600000);
    cr_assert_eq(kith_holds_apply(c.r, &info), 0);
    cr_assert_eq(info.ops_applied, 1);
    cr_assert_eq(kith_feed_next(f, &e), 0);
    cr_assert_eq(e.origin, kith_replica_id(a.r));
    cr_assert_str_eq(e.docs[0].fields[0], "notes");
    cr_assert_eq(kith_feed_next(f, &e), KITH_ENOTFOUND);
    kith_feed_close(f);
    kt_free(&a);
    kt_free(&b);
    kt_free(&c);
}

/* ---- the descriptor ---------------------------------------------------------------------------
 */

static bool
readable(kith_feed *f, int ms)
{
    struct pollfd p = {.fd = kith_feed_fd(f), .events = POLLIN};
    int n = poll(&p, 1, ms);
    cr_assert_geq(n, 0, "poll: %s", strerror(errno));
    return n == 1;
}

/* In a child: open the replica in `dir` on its own and commit `n` writes, one by one. */
static pid_t
child_writes(const char *dir, int n)
{
    pid_t pid = fork();

    cr_assert_geq(pid, 0);
    if (pid != 0)
        return pid;
    kith_replica *r = NULL;
    if (kith_open(dir, KITH_NOSYNC, &r) != 0)
        _exit(2);
    kith_docid doc;
    kith_txn *t = NULL;
    int bad = kith_txn_begin(r, KITH_TXN_WRITE, &t) != 0 ||
              kith_doc_create(t, "contacts", &doc) != 0 || kith_txn_commit(&t) != 0;
    for (int i = 1; i < n && !bad; i++) {
        char v[32];
        snprintf(v, sizeof v, "child %d", i);
        kith_value val = {.type = KITH_TYPE_STRING, .u.s = {v, strlen(v)}};
        bad = kith_txn_begin(r, KITH_TXN_WRITE, &t) != 0 ||
              kith_field_set(t, "contacts", &doc, "phone", &val) != 0 || kith_txn_commit(&t) != 0;
    }
    kith_close(r);
    _exit(bad ? 3 : 0);
}

static void
child_done(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the writing child failed (%d)", st);
}

/* Wait with the feed until `want` events arrived (or WAIT_MS without a wakeup); how many. */
static int
wait_events(kith_feed *f, int want, uint64_t *last)
{
    kith_feed_event e;
    int got = 0, rc;

    while (got < want) {
        while ((rc = kith_feed_next(f, &e)) == 0) {
            cr_assert_eq(e.cursor, *last + 1, "every commit once, in order");
            *last = e.cursor;
            got++;
        }
        cr_assert_eq(rc, KITH_ENOTFOUND, "%s", kith_strerror(rc));
        if (got < want && kith_feed_wait(f, WAIT_MS) == KITH_ETIMEDOUT)
            break;
    }
    return got;
}

/* FEED-5: the descriptor wakes for commits of another process, and is drained by next. */
Test(feed, the_descriptor_wakes_for_commits_of_another_process)
{
    struct kt_replica a = kt_new();
    kith_feed *f = NULL;
    kith_feed_event e;
    uint64_t last = 0;

    kt_contact(a.r, "before");
    cr_assert_eq(kith_feed_open(a.r, KITH_FEED_NOW, &f), 0);
    last = kith_feed_cursor(f);
    cr_assert_eq(last, 1);
    cr_assert_eq(kith_feed_next(f, &e), KITH_ENOTFOUND);
    cr_assert(!readable(f, 0), "nothing written yet");
    cr_assert_eq(kith_feed_wait(f, 0), KITH_ETIMEDOUT);

    /* one commit, waited for with poll() as an event loop would */
    child_done(child_writes(a.dir, 1));
    cr_assert(readable(f, WAIT_MS), "a commit by another process wakes the descriptor");
    cr_assert_eq(kith_feed_next(f, &e), 0);
    cr_assert_eq(e.cursor, 2);
    cr_assert_eq(e.source, KITH_CHANGE_LOCAL, "made by this replica, in another process");
    cr_assert(e.docs[0].created);
    cr_assert_eq(kith_feed_next(f, &e), KITH_ENOTFOUND);
    cr_assert(!readable(f, 0), "drained by kith_feed_next");
    last = 2;

    /* many commits racing with the reader: none is missed, none seen twice */
    pid_t pid = child_writes(a.dir, 200);
    int got = wait_events(f, 200, &last);
    child_done(pid);
    cr_assert_eq(got, 200, "saw %d of 200 commits", got);
    cr_assert_eq(kith_feed_next(f, &e), KITH_ENOTFOUND);
    kith_feed_close(f);
    kt_free(&a);
}

/* FEED-6: a read-only handle has a feed, woken by another handle's commits. */
Test(feed, works_on_a_read_only_handle)
{
    struct kt_replica a = kt_new();
    kith_replica *ro = NULL;
    kith_feed *f = NULL;
    uint64_t last = 0;

    write_n(a.r, 3);
    cr_assert_eq(kith_open(a.dir, KITH_RDONLY, &ro), 0);
    cr_assert_eq(kith_feed_open(ro, 0, &f), 0);
    cr_assert_eq(wait_events(f, 3, &last), 3);
    kt_contact(a.r, "more");
    child_done(child_writes(a.dir, 2));
    cr_assert_eq(wait_events(f, 3, &last), 3);
    cr_assert_eq(last, 6);
    kith_feed_close(f);
    kith_close(ro);
    kt_free(&a);
}

/* ---- a replica of format 1 ------------------------------------------------------------------ */

/* The events of a whole feed, described one per line into out. */
static size_t
feed_all(kith_replica *r, char *out, size_t cap)
{
    kith_feed *f = NULL;
    kith_feed_event e;
    size_t n = 0, len = 0;
    int rc;

    out[0] = '\0';
    cr_assert_eq(kith_feed_open(r, 0, &f), 0, "%s", kith_errmsg(r));
    while ((rc = kith_feed_next(f, &e)) == 0) {
        char d[DESC_MAX];
        desc_event(&e, d);
        len +=
            (size_t)snprintf(out + len, cap - len, "%llu %d %016llx:%llu-%llu %s\n",
                             (unsigned long long)e.cursor, e.source, (unsigned long long)e.origin,
                             (unsigned long long)e.first_seq, (unsigned long long)e.last_seq, d);
        cr_assert_lt(len, cap);
        n++;
    }
    cr_assert_eq(rc, KITH_ENOTFOUND);
    kith_feed_close(f);
    return n;
}

/* FEED-7: a replica of format 1, read-only (not upgraded) and after its upgrade. */
Test(feed, reads_a_replica_of_format_1)
{
    char *dir = kt_tmpdir(), path[512];
    static char before[1 << 16], after[1 << 16];
    kith_replica *r = NULL;
    kith_vv vv = {0};
    uint64_t ops = 0;

    snprintf(path, sizeof path, "%s/data.mdb", dir);
    kt_copy_file(V1 "/replica-a/data.mdb", path);
    snprintf(path, sizeof path, "%s/key", dir);
    kt_copy_file(V1 "/replica-a/key", path);

    cr_assert_eq(kith_open(dir, KITH_RDONLY, &r), 0, "%s", kith_errmsg(NULL));
    size_t n = feed_all(r, before, sizeof before);
    cr_assert_eq(kith_vv_get(r, &vv), 0);
    for (size_t i = 0; i < vv.len; i++)
        ops += vv.entries[i].seq;
    kith_vv_free(&vv);
    cr_assert_geq(n, 8, "%s", before);
    cr_assert_neq(strstr(before, " 1 "), NULL, "local commits: %s", before);
    cr_assert_neq(strstr(before, " 2 "), NULL, "b's commits: %s", before);
    cr_assert_neq(strstr(before, "contacts/"), NULL);
    cr_assert_neq(strstr(before, "interactions/"), NULL);
    cr_assert_neq(strstr(before, ":+:"), NULL, "created documents");
    cr_assert_neq(strstr(before, ":-:"), NULL, "the deleted contact");
    kith_close(r);

    cr_assert_eq(kith_open(dir, 0, &r), 0, "%s", kith_errmsg(NULL)); /* upgrades it */
    cr_assert_eq(feed_all(r, after, sizeof after), n);
    cr_assert_str_eq(after, before, "the upgrade renumbers no commit");
    kith_docid doc = kt_contact(r, "new");
    (void)doc;
    cr_assert_eq(feed_all(r, after, sizeof after), n + 1);
    kith_close(r);
    kt_rmtree(dir);
    free(dir);
    (void)ops;
}
