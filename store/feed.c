/*
 * feed.c — the change feed: the `order` database read forward, each commit decoded from its
 * log entry into the documents and fields it touched, and an inotify descriptor on data.mdb
 * that wakes the app when any process commits (spec/storage.md "The change feed",
 * spec/decisions.md D-10).
 *
 * Nothing new is stored. `order` already lists every commit in the order this replica applied
 * it, and its counter is the cursor: a feed remembers the last counter it handed out and
 * reads the entries after it. The log holds each commit's bytes, decoded here by the same
 * function kith_iter_log uses (kith__log_decode). So every writer, in any process and of any
 * kith version, feeds the feed at no cost to itself.
 *
 * Events are read in chunks: one read transaction gathers up to FEED_CHUNK_EVENTS commits (or
 * FEED_CHUNK_OPS ops) into the feed's own memory, and is ended before the first is handed
 * out, so a feed never pins LMDB pages between calls. A chunk's documents and field arrays
 * live in an arena reset when the next chunk is read; names are interned (they live as long
 * as the replica).
 *
 * Waking. kith never opens LMDB with MDB_WRITEMAP, so every commit of every process pwrite()s
 * data.mdb, its meta page last; inotify reports IN_MODIFY after each write is in the page
 * cache. A refill drains the descriptor *before* it reads `order`, so a commit that lands
 * after the read makes it readable again. One gap remains, inside LMDB: a writer publishes
 * the new transaction id to readers (in lock.mdb) a moment after its meta page write, so a
 * reader woken by that write can begin a snapshot one commit too old, drain nothing more and
 * sleep through the commit. A refill therefore compares its snapshot's id with the newest
 * meta page in the map (mdb_env_info) and begins again, yielding, until they agree.
 */
#include "view.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#define FEED_CHUNK_EVENTS 64 /* commits read in one read transaction, at most */
#define FEED_CHUNK_OPS 4096  /* ... or about this many ops (never fewer than one commit) */
#define FEED_CATCHUP_MS 1000 /* how long a refill waits for LMDB to publish a written commit */

/* One op of a commit, as the grouping into documents sorts it. */
struct feed_key {
    kith_dot doc;
    uint32_t op;    /* index in the commit: the sort keeps the commit's order per document */
    uint16_t cname; /* the collection: index into the commit's names */
    uint16_t fname; /* the field, for field ops */
    uint8_t kind;
};

/* A document being gathered: the event's entry and where the commit first touched it. */
struct feed_group {
    kith_feed_doc d;
    uint32_t first;
};

struct kith_feed {
    kith_replica *r;
    int fd;          /* inotify instance watching data.mdb for IN_MODIFY */
    uint64_t cursor; /* the last event handed out, or where the feed started */
    bool caught_up;  /* the last kith_feed_next found nothing after `cursor` */
    /* the chunk: events read in one transaction, handed out from `next` */
    kith_feed_event *events;
    size_t nevents, next;
    struct kith__arena out; /* the chunk's documents and field arrays */
    /* scratch reused from commit to commit */
    struct kith__arena dec; /* the commit being decoded */
    struct feed_key *keys;
    struct feed_group *groups;
    size_t capkeys, capgroups;
    const char *names[KITH__MAX_COMMIT_NAMES]; /* a commit's names, interned when first used */
};

/* ---- one commit into one event ---------------------------------------------------------- */

static int
key_cmp(const void *pa, const void *pb)
{
    const struct feed_key *a = pa, *b = pb;

    if (a->cname != b->cname)
        return a->cname < b->cname ? -1 : 1;
    if (a->doc.origin != b->doc.origin)
        return a->doc.origin < b->doc.origin ? -1 : 1;
    if (a->doc.seq != b->doc.seq)
        return a->doc.seq < b->doc.seq ? -1 : 1;
    return a->op < b->op ? -1 : a->op > b->op;
}

static int
group_cmp(const void *pa, const void *pb)
{
    const struct feed_group *a = pa, *b = pb;

    return a->first < b->first ? -1 : a->first > b->first;
}

static int
name_cmp(const void *pa, const void *pb)
{
    return strcmp(*(const char *const *)pa, *(const char *const *)pb);
}

/* Grow an array of `size`-byte elements to hold n. 0 or KITH_ENOMEM. */
static int
grow(void **arr, size_t *cap, size_t n, size_t size)
{
    size_t c = *cap ? *cap : 16;
    void *p;

    if (n <= *cap)
        return 0;
    while (c < n)
        c *= 2;
    if (!(p = realloc(*arr, c * size)))
        return KITH_ENOMEM;
    *arr = p;
    *cap = c;
    return 0;
}

/* The interned name number `i` of commit `c` (cached in f->names for this commit). */
static const char *
commit_name(kith_feed *f, const struct kith__commit *c, uint16_t i)
{
    if (!f->names[i])
        f->names[i] = kith__name_intern(f->r, c->names[i].ptr, c->names[i].len);
    return f->names[i];
}

/*
 * Fill *ev with what commit `c` touched: its documents in the order it first touched them,
 * each once, with the fields it wrote sorted by name and deduplicated. The documents and the
 * field arrays go into f->out. Assumes (a) c was decoded by kith__log_decode (every name index
 * is within c->nnames), (b) c->nops >= 1.
 */
static int
event_build(kith_feed *f, const struct kith__commit *c, kith_feed_event *ev)
{
    size_t ngroups = 0, i, j;
    kith_feed_doc *docs;
    int rc;

    if ((rc = grow((void **)&f->keys, &f->capkeys, c->nops, sizeof *f->keys)) < 0)
        return rc;
    memset(f->names, 0, c->nnames * sizeof f->names[0]);
    for (i = 0; i < c->nops; i++) {
        const struct kith__op *op = &c->ops[i];
        f->keys[i] =
            (struct feed_key){op->doc, (uint32_t)i, op->cname,
                              kith__op_has_field(op->kind) ? op->fname : UINT16_MAX, op->kind};
    }
    if (c->nops > 1)
        qsort(f->keys, c->nops, sizeof *f->keys, key_cmp);
    for (i = 0; i < c->nops; i = j) {
        struct feed_group *g;
        const char **fields;
        size_t nf = 0;

        for (j = i + 1; j < c->nops && f->keys[j].cname == f->keys[i].cname &&
                        f->keys[j].doc.origin == f->keys[i].doc.origin &&
                        f->keys[j].doc.seq == f->keys[i].doc.seq;
             j++)
            ;
        if ((rc = grow((void **)&f->groups, &f->capgroups, ngroups + 1, sizeof *f->groups)) < 0)
            return rc;
        g = &f->groups[ngroups++];
        memset(g, 0, sizeof *g);
        g->first = f->keys[i].op;
        if (!(g->d.collection = commit_name(f, c, f->keys[i].cname)))
            return KITH_ENOMEM;
        kith__docid_from_dot(&g->d.doc, f->keys[i].doc);
        for (size_t k = i; k < j; k++)
            nf += f->keys[k].fname != UINT16_MAX;
        fields = nf ? kith__arena_alloc(&f->out, nf * sizeof *fields) : NULL;
        if (nf && !fields)
            return KITH_ENOMEM;
        nf = 0;
        for (size_t k = i; k < j; k++) {
            const struct feed_key *key = &f->keys[k];

            g->d.created |= key->kind == KITH_OP_DOC_ADD;
            g->d.deleted |= key->kind == KITH_OP_DOC_REMOVE;
            if (key->fname == UINT16_MAX)
                continue;
            if (!(fields[nf++] = commit_name(f, c, key->fname)))
                return KITH_ENOMEM;
        }
        if (nf > 1) {
            size_t m = 1;
            qsort(fields, nf, sizeof *fields, name_cmp);
            for (size_t k = 1; k < nf; k++)
                if (strcmp(fields[m - 1], fields[k]) != 0)
                    fields[m++] = fields[k];
            nf = m;
        }
        g->d.nfields = nf;
        g->d.fields = fields;
    }
    if (ngroups > 1)
        qsort(f->groups, ngroups, sizeof *f->groups, group_cmp);
    if (!(docs = kith__arena_alloc(&f->out, ngroups * sizeof *docs)))
        return KITH_ENOMEM;
    for (i = 0; i < ngroups; i++)
        docs[i] = f->groups[i].d;
    ev->source = c->origin == f->r->id ? KITH_CHANGE_LOCAL : KITH_CHANGE_REMOTE;
    ev->origin = c->origin;
    ev->first_seq = c->first_seq;
    ev->last_seq = c->first_seq + c->nops - 1;
    ev->hlc = c->hlc;
    ev->ndocs = ngroups;
    ev->docs = docs;
    return 0;
}

/* ---- reading a chunk -------------------------------------------------------------------- */

/* Read what inotify queued, until none is left. 0 or -errno. */
static int
fd_drain(int fd)
{
    _Alignas(struct inotify_event) char buf[4096];

    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK ? -errno : 0;
    }
}

/*
 * Begin a read transaction that sees every commit whose meta page is in data.mdb: LMDB
 * publishes a commit to new readers (in lock.mdb) only after writing its meta page, so a
 * snapshot begun in between is one commit behind what woke us. Begin again until the
 * snapshot's id reaches the newest meta page, for at most FEED_CATCHUP_MS (a writer stopped
 * in between; then go on with what is published).
 */
static int
view_begin_current(kith_replica *r, MDB_txn **out)
{
    struct timespec start, now;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &start);
    for (unsigned tries = 0;; tries++) {
        MDB_envinfo info;

        if ((rc = kith__mdb_begin(r, MDB_RDONLY, out)) < 0)
            return rc;
        if (mdb_env_info(r->env, &info) != 0 || mdb_txn_id(*out) >= info.me_last_txnid)
            return 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >
            FEED_CATCHUP_MS)
            return 0;
        mdb_txn_abort(*out);
        kith__mdb_end(r);
        *out = NULL;
        if (tries < 64) {
            sched_yield();
        } else {
            struct timespec pause = {0, 100 * 1000};
            nanosleep(&pause, NULL);
        }
    }
}

/* The last counter of `order` in txn (0 when it is empty). */
static int
order_end(kith_replica *r, MDB_txn *txn, uint64_t *end)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int mrc;

    *end = 0;
    if ((mrc = kith__mdb_cursor_open(txn, r->order, &cur)) != 0)
        return kith__mdb_err(mrc);
    mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (mrc == MDB_NOTFOUND)
        return 0;
    if (mrc != 0)
        return kith__mdb_err(mrc);
    if (k.mv_size != 8)
        return kith__fail(r, KITH_ECORRUPT, "apply-order key of %zu bytes", k.mv_size);
    *end = kith__be64_get(k.mv_data);
    return 0;
}

/* Read the commits after f->cursor into a new chunk, in txn. 0 (maybe none), or an error. */
static int
chunk_read(kith_feed *f, MDB_txn *txn)
{
    kith_replica *r = f->r;
    struct kith__commit c;
    uint8_t kb[8];
    MDB_val k = {sizeof kb, kb}, v;
    MDB_cursor *cur;
    size_t ops = 0;
    int rc = 0, mrc;

    if (f->cursor == UINT64_MAX)
        return 0;
    if ((mrc = kith__mdb_cursor_open(txn, r->order, &cur)) != 0)
        return kith__mdb_err(mrc);
    kith__be64_put(kb, f->cursor + 1);
    for (mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
         mrc == 0 && f->nevents < FEED_CHUNK_EVENTS && ops < FEED_CHUNK_OPS;
         mrc = kith__mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        kith_feed_event *ev = &f->events[f->nevents];
        MDB_val log;

        if (k.mv_size != 8 || v.mv_size != 16) {
            rc = kith__fail(r, KITH_ECORRUPT, "apply-order entry of %zu bytes", v.mv_size);
            break;
        }
        memset(ev, 0, sizeof *ev);
        ev->cursor = kith__be64_get(k.mv_data);
        if ((mrc = kith__mdb_get(txn, r->log, &v, &log)) != 0) {
            rc = mrc == MDB_NOTFOUND
                     ? kith__fail(r, KITH_ECORRUPT,
                                  "commit %016llx:%llu (apply order %llu) is "
                                  "not in the log",
                                  (unsigned long long)kith__be64_get(v.mv_data),
                                  (unsigned long long)kith__be64_get((uint8_t *)v.mv_data + 8),
                                  (unsigned long long)ev->cursor)
                     : kith__mdb_err(mrc);
            break;
        }
        if ((rc = kith__log_decode(r, &v, &log, &c, &f->dec)) < 0 ||
            (rc = event_build(f, &c, ev)) < 0)
            break;
        f->nevents++;
        ops += c.nops;
    }
    mdb_cursor_close(cur);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = kith__mdb_err(mrc);
    return rc;
}

/* Drain the descriptor, then read the next chunk (empty when caught up). */
static int
chunk_refill(kith_feed *f)
{
    MDB_txn *txn;
    int rc;

    f->nevents = f->next = 0;
    kith__arena_reset(&f->out);
    if ((rc = fd_drain(f->fd)) < 0)
        return kith__fail(f->r, rc, "reading the feed's inotify descriptor: %s", kith_strerror(rc));
    if ((rc = view_begin_current(f->r, &txn)) < 0)
        return rc;
    rc = chunk_read(f, txn);
    kith__view_end(f->r, txn);
    if (rc < 0)
        f->nevents = 0; /* nothing of a chunk that failed is handed out; the call may repeat */
    return rc;
}

/* ---- the API ---------------------------------------------------------------------------- */

int
kith_feed_open(kith_replica *r, uint64_t since, kith_feed **out)
{
    kith_feed *f;
    MDB_txn *txn;
    uint64_t end;
    char *path;
    int rc;

    if (!out)
        return KITH_EINVAL;
    *out = NULL;
    if (!r)
        return KITH_EINVAL;
    if (!(f = calloc(1, sizeof *f)) ||
        !(f->events = calloc(FEED_CHUNK_EVENTS, sizeof *f->events))) {
        free(f);
        return KITH_ENOMEM;
    }
    f->r = r;
    f->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (f->fd < 0) {
        rc = kith__fail(r, -errno, "cannot make an inotify instance for the feed: %s",
                        strerror(errno));
        goto out_free;
    }
    /* Watch first, read the end after: a commit in between then wakes the descriptor. */
    if (!(path = kith__path_join(r->path, "data.mdb"))) {
        rc = KITH_ENOMEM;
        goto out_free;
    }
    rc = inotify_add_watch(f->fd, path, IN_MODIFY) < 0 ? -errno : 0;
    if (rc < 0)
        kith__fail(r, rc, "cannot watch %s for the feed: %s", path, strerror(-rc));
    free(path);
    if (rc < 0)
        goto out_free;
    if ((rc = kith__view_begin(r, &txn)) < 0)
        goto out_free;
    rc = order_end(r, txn, &end);
    kith__view_end(r, txn);
    if (rc < 0)
        goto out_free;
    if (since != KITH_FEED_NOW && since > end) {
        rc = kith__fail(r, KITH_EINVAL,
                        "feed cursor %llu is past this replica's last commit, %llu: a cursor of "
                        "another replica, or of a copy this one was restored from",
                        (unsigned long long)since, (unsigned long long)end);
        goto out_free;
    }
    f->cursor = since == KITH_FEED_NOW ? end : since;
    *out = f;
    return 0;
out_free:
    kith_feed_close(f);
    return rc;
}

int
kith_feed_next(kith_feed *f, kith_feed_event *out)
{
    int rc;

    if (!f || !out)
        return KITH_EINVAL;
    if (f->next == f->nevents) {
        if ((rc = chunk_refill(f)) < 0) {
            f->caught_up = false; /* the descriptor may be drained: kith_feed_wait must not wait */
            return rc;
        }
        f->caught_up = f->nevents == 0;
        if (f->caught_up)
            return KITH_ENOTFOUND;
    }
    *out = f->events[f->next++];
    f->cursor = out->cursor;
    return 0;
}

int
kith_feed_fd(const kith_feed *f)
{
    return f ? f->fd : KITH_EINVAL;
}

int
kith_feed_wait(kith_feed *f, int timeout_ms)
{
    struct pollfd p;
    int n;

    if (!f)
        return KITH_EINVAL;
    if (f->next < f->nevents || !f->caught_up)
        return 0;
    p.fd = f->fd;
    p.events = POLLIN;
    n = poll(&p, 1, timeout_ms < 0 ? -1 : timeout_ms);
    if (n < 0)
        return -errno;
    return n > 0 ? 0 : KITH_ETIMEDOUT;
}

uint64_t
kith_feed_cursor(const kith_feed *f)
{
    return f ? f->cursor : 0;
}

void
kith_feed_close(kith_feed *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    kith__arena_free(&f->out);
    kith__arena_free(&f->dec);
    free(f->keys);
    free(f->groups);
    free(f->events);
    free(f);
}
