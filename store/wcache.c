/*
 * wcache.c — the write-back cache of a received batch's apply (store/apply.c), and the
 * record accessors the apply path reads and writes through, cached or not.
 *
 * A batch touches the same registers, memberships and index entries again and again (a
 * contact edited in many commits). With the cache on, those three databases are read at most
 * once per key and written once per key when the applier finishes, in key order, instead of
 * once per op in random order. Entries and their values live in blocks that never move (the
 * table holds only a hash and a pointer per slot, so growing it moves 16 bytes per key, and an
 * entry returned by rec_get stays valid until the cache is freed); memory is bounded by the
 * distinct keys of the batch. Local transactions do not use it:
 * their reads go to LMDB directly. spec/storage.md "Applying ops" (STO-9).
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

/* 48 bytes; a key longer than 24 bytes follows it whole (shorter ones are p0..p2) */
struct kith__wc_entry {
    uint64_t p0, p1, p2; /* the key's first 24 bytes, big-endian, zero-padded: fast order */
    uint8_t *val;
    uint32_t klen, vlen, vcap;
    uint8_t kind;
    bool exists, dirty;
    bool born; /* not in the database when first met in this cache */
};

#if defined(__GNUC__)
#define WC_PREFETCH(p) __builtin_prefetch(p)
#else
#define WC_PREFETCH(p) ((void)(p))
#endif

#define WC_SPARE_CLASSES 40 /* entry sizes up to 640 bytes: 48 + the longest key (511) */

struct wc_slot {
    uint64_t h;               /* wc_hash of the entry's key */
    struct kith__wc_entry *e; /* NULL: empty */
};

struct kith__wcache {
    struct wc_slot *slots; /* open addressing; cap a power of two, at most half full */
    size_t cap, n;
    size_t bytes; /* taken from mem: entries, long keys, values */
    struct kith__mem mem;
    struct kith__wc_entry *spare[WC_SPARE_CLASSES]; /* dropped entries by size / 16, reused */
};

/*
 * What the cache may hold (bytes) before kith__wcache_spill writes it out between two commits:
 * entries and values, plus the slot table. It keeps a large batch's heap bounded whatever the
 * batch does (an index key per name ever written, say), and is well above what a batch of
 * KITH__WIRE_BATCH_OPS ops over 10,000 documents needs, so sync batches flush once.
 */
size_t kith__wcache_budget = 12u << 20;

static void *
wc_alloc(struct kith__wcache *c, size_t n)
{
    void *p = kith__mem_alloc(&c->mem, n);

    if (p != NULL)
        c->bytes += (n + 15) & ~(size_t)15;
    return p;
}

/* The key of an entry: in place when long, else rebuilt from p0..p2 into buf. */
static const uint8_t *
wc_key(const struct kith__wc_entry *e, uint8_t buf[24])
{
    if (e->klen > 24)
        return (const uint8_t *)(e + 1);
    kith__be64_put(buf, e->p0);
    kith__be64_put(buf + 8, e->p1);
    kith__be64_put(buf + 16, e->p2);
    return buf;
}

/* 8 bytes as a big-endian integer: one load and a byte swap where the compiler offers it
 * (kith__be64_get's byte loop was over a third of wc_find). */
static inline uint64_t
wc_be64(const uint8_t *b)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;

    memcpy(&v, b, sizeof v);
    return __builtin_bswap64(v);
#elif defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint64_t v;

    memcpy(&v, b, sizeof v);
    return v;
#else
    return kith__be64_get(b);
#endif
}

/* The first 24 bytes of a key as three big-endian integers (zero-padded). */
static void
wc_prefix(const uint8_t *k, size_t n, uint64_t p[3])
{
    uint8_t b[24] = {0};

    memcpy(b, k, n < 24 ? n : 24);
    p[0] = wc_be64(b);
    p[1] = wc_be64(b + 8);
    p[2] = wc_be64(b + 16);
}

static uint64_t
wc_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Every key byte reaches the low bits the table uses (keys of one origin differ only in a
 * few bytes of the seq and the field). */
static uint64_t
wc_hash(uint8_t kind, const uint64_t p[3], const uint8_t *k, size_t n)
{
    uint64_t h = wc_mix(p[0] + 0x9e3779b97f4a7c15ull);

    h = wc_mix(h ^ p[1]);
    h = wc_mix(h ^ p[2] ^ ((uint64_t)kind << 56) ^ n);
    if (n > 24) {
        for (size_t i = 24; i < n; i++)
            h = (h ^ k[i]) * 0x100000001b3ull;
        h = wc_mix(h);
    }
    return h;
}

static int
wc_grow(struct kith__wcache *c)
{
    size_t cap = c->cap ? c->cap * 2 : 1024;
    struct wc_slot *slots = calloc(cap, sizeof *slots);

    if (slots == NULL)
        return KITH_ENOMEM;
    for (size_t i = 0; i < c->cap; i++) {
        if (c->slots[i].e == NULL)
            continue;
        size_t j = c->slots[i].h & (cap - 1);
        while (slots[j].e != NULL)
            j = (j + 1) & (cap - 1);
        slots[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
    return 0;
}

static size_t
wc_entry_size(size_t klen)
{
    return (sizeof(struct kith__wc_entry) + (klen > 24 ? klen : 0) + 15) & ~(size_t)15;
}

/* The entry of (kind, key), added (not loaded) when missing: *added tells, *slot says where.
 * NULL on ENOMEM. */
static struct kith__wc_entry *
wc_find_at(struct kith__wcache *c, uint8_t kind, const uint8_t *key, size_t klen, bool *added,
           size_t *slot)
{
    uint64_t p[3], h;
    size_t j;

    *added = false;
    if ((c->n + 1) * 2 > c->cap && wc_grow(c) < 0)
        return NULL;
    wc_prefix(key, klen, p);
    h = wc_hash(kind, p, key, klen);
    for (j = h & (c->cap - 1);; j = (j + 1) & (c->cap - 1)) {
        struct kith__wc_entry *e = c->slots[j].e;
        if (e == NULL)
            break;
        if (c->slots[j].h == h && e->p0 == p[0] && e->p1 == p[1] && e->p2 == p[2] &&
            e->kind == kind && e->klen == klen &&
            (klen <= 24 || memcmp((const uint8_t *)(e + 1) + 24, key + 24, klen - 24) == 0)) {
            *slot = j;
            return e;
        }
    }
    size_t size = wc_entry_size(klen);
    struct kith__wc_entry *e = c->spare[size / 16];
    if (e != NULL)
        c->spare[size / 16] = (struct kith__wc_entry *)(void *)e->val;
    else
        e = wc_alloc(c, size);
    if (e == NULL)
        return NULL;
    e->p0 = p[0];
    e->p1 = p[1];
    e->p2 = p[2];
    if (klen > 24)
        memcpy(e + 1, key, klen);
    e->klen = (uint32_t)klen;
    e->kind = kind;
    e->val = NULL;
    e->vlen = e->vcap = 0;
    e->exists = e->dirty = e->born = false;
    c->slots[j].h = h;
    c->slots[j].e = e;
    c->n++;
    *added = true;
    *slot = j;
    return e;
}

static struct kith__wc_entry *
wc_find(struct kith__wcache *c, uint8_t kind, const uint8_t *key, size_t klen, bool *added)
{
    size_t slot;

    return wc_find_at(c, kind, key, klen, added, &slot);
}

/*
 * Forget the entry in slot j (one without a value): its memory goes to the spares of its size,
 * and the entries after it in the probe run move back, so that every entry stays reachable
 * from its home slot without tombstones.
 */
static void
wc_drop(struct kith__wcache *c, size_t j)
{
    struct kith__wc_entry *e = c->slots[j].e;
    size_t mask = c->cap - 1, size = wc_entry_size(e->klen);

    e->val = (uint8_t *)(void *)c->spare[size / 16];
    c->spare[size / 16] = e;
    for (size_t i = j;;) {
        j = (j + 1) & mask;
        if (c->slots[j].e == NULL) {
            c->slots[i].e = NULL;
            break;
        }
        size_t home = c->slots[j].h & mask;
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays)
            continue;
        c->slots[i] = c->slots[j];
        i = j;
    }
    c->n--;
}

static int
wc_set(struct kith__wcache *c, struct kith__wc_entry *e, const void *val, size_t len)
{
    if (len > e->vcap) {
        size_t cap = len < 32 ? 32 : len;
        uint8_t *p = wc_alloc(c, cap);
        if (p == NULL)
            return KITH_ENOMEM;
        e->val = p;
        e->vcap = (uint32_t)cap;
    }
    if (len > 0)
        memcpy(e->val, val, len);
    e->vlen = (uint32_t)len;
    e->exists = true;
    e->dirty = true;
    return 0;
}

void
kith__wcache_free(struct kith__wcache *c)
{
    if (c == NULL)
        return;
    kith__mem_free(&c->mem);
    free(c->slots);
    free(c);
}

int
kith__apply_cache(struct kith__applier *a, size_t expect)
{
    size_t cap = 1024, most = kith__wcache_budget / 4 / sizeof(struct wc_slot);

    if (a->wc != NULL)
        return 0;
    a->wc = calloc(1, sizeof *a->wc);
    if (a->wc == NULL)
        return KITH_ENOMEM;
    /* the table sized for what is expected up front: growing it rehashes every entry, each a
     * cache miss, and that was a sixth of the time spent finding entries */
    while (cap < 2 * expect && cap < most)
        cap *= 2;
    a->wc->slots = calloc(cap, sizeof *a->wc->slots);
    if (a->wc->slots == NULL) {
        free(a->wc);
        a->wc = NULL;
        return KITH_ENOMEM;
    }
    a->wc->cap = cap;
    return 0;
}

/* Order of two entries: (database, key), keys compared as bytes, a prefix first. */
static inline int
wc_cmp(const struct kith__wc_entry *a, const struct kith__wc_entry *b)
{
    size_t n = a->klen < b->klen ? a->klen : b->klen;
    int c;

    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->p0 != b->p0)
        return a->p0 < b->p0 ? -1 : 1;
    if (a->p1 != b->p1)
        return a->p1 < b->p1 ? -1 : 1;
    if (a->p2 != b->p2)
        return a->p2 < b->p2 ? -1 : 1;
    c = n > 24 ? memcmp((const uint8_t *)(a + 1) + 24, (const uint8_t *)(b + 1) + 24, n - 24) : 0;
    return c != 0 ? c : (a->klen > b->klen) - (a->klen < b->klen);
}

/*
 * Sort v[0..n) with wc_cmp, using tmp (n entries): a bottom-up merge sort with the comparison
 * inlined (qsort's call per comparison was most of the flush's sorting cost), runs of 16
 * sorted by insertion first, and a merge skipped when its two halves are already in order.
 */
static void
wc_sort(struct kith__wc_entry **v, struct kith__wc_entry **tmp, size_t n)
{
    enum { RUN = 16 };
    struct kith__wc_entry **src = v, **dst = tmp;

    for (size_t lo = 0; lo < n; lo += RUN) {
        size_t hi = lo + RUN < n ? lo + RUN : n;
        for (size_t i = lo + 1; i < hi; i++) {
            struct kith__wc_entry *x = v[i];
            size_t j = i;
            for (; j > lo && wc_cmp(v[j - 1], x) > 0; j--)
                v[j] = v[j - 1];
            v[j] = x;
        }
    }
    for (size_t w = RUN; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            if (mid == hi || wc_cmp(src[mid - 1], src[mid]) <= 0) {
                memcpy(dst + lo, src + lo, (hi - lo) * sizeof *src);
                continue;
            }
            while (i < mid && j < hi)
                dst[k++] = wc_cmp(src[j], src[i]) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        struct kith__wc_entry **t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof *v);
}

/* Whether an entry's key sorts after `tail` (LMDB's default order: bytes, a prefix first). */
static bool
wc_key_after(const uint8_t *key, size_t klen, const uint8_t *tail, size_t tail_len)
{
    size_t n = klen < tail_len ? klen : tail_len;
    int c = memcmp(key, tail, n);

    return c > 0 || (c == 0 && klen > tail_len);
}

/* Write every dirty entry, in (database, key) order. */
int
kith__wcache_flush(struct kith__applier *a)
{
    struct kith__wcache *c = a->wc;
    struct kith__wc_entry **dirty;
    MDB_cursor *idx = NULL;
    uint8_t tail[512], kbuf[24]; /* LMDB's keys are at most 511 bytes */
    size_t n = 0, tail_len = 0;
    int rc = 0;

    if (c == NULL || c->n == 0)
        return 0;
    dirty = malloc(2 * c->n * sizeof *dirty);
    if (dirty == NULL)
        return KITH_ENOMEM;
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].e != NULL && c->slots[i].e->dirty)
            dirty[n++] = c->slots[i].e;
    wc_sort(dirty, dirty + c->n, n);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct kith__wc_entry *e = dirty[i];
        MDB_cursor *cur = e->kind == KITH__WC_REGS   ? a->regs_c
                          : e->kind == KITH__WC_DOCS ? a->docs_c
                                                     : idx;
        MDB_val k = {e->klen, (void *)wc_key(e, kbuf)}, v = {e->vlen, e->val};
        if (cur == NULL) {
            rc = kith__mdb_cursor_open(a->txn, a->r->index, &idx);
            if (rc != 0)
                break;
            cur = idx;
        }
        if (i == 0 || e->kind != dirty[i - 1]->kind) {
            /* the database's last key: what sorts after it can be appended */
            MDB_val tk, tv;
            rc = kith__mdb_cursor_get(cur, &tk, &tv, MDB_LAST);
            if (rc != 0 && rc != MDB_NOTFOUND)
                break;
            tail_len = rc != 0 ? 0 : tk.mv_size < sizeof tail ? tk.mv_size : sizeof tail;
            if (tail_len > 0)
                memcpy(tail, tk.mv_data, tail_len);
            rc = 0;
        }
        if (e->exists && wc_key_after(k.mv_data, k.mv_size, tail, tail_len)) {
            /* past the end, in key order: LMDB fills the last page rather than splitting
             * it, so a new replica's state is written in full pages and without searches */
            rc = kith__mdb_cursor_put(cur, &k, &v, MDB_APPEND);
            memcpy(tail, k.mv_data, k.mv_size);
            tail_len = k.mv_size;
        } else if (e->exists) {
            rc = kith__mdb_cursor_put(cur, &k, &v, 0);
        } else {
            rc = kith__mdb_cursor_get(cur, &k, &v, MDB_SET);
            if (rc == 0)
                rc = kith__mdb_cursor_del(cur, 0);
            else if (rc == MDB_NOTFOUND)
                rc = 0;
        }
        e->dirty = false;
    }
    if (idx != NULL)
        mdb_cursor_close(idx);
    free(dirty);
    return rc == 0 ? 0 : rc == MDB_MAP_FULL ? rc : kith__mdb_err(rc);
}

/*
 * Start loading the slots and entries a commit's ops will look up (each op's register and
 * membership), all at once: found one by one, each is a cache miss the op waits for in turn
 * (perf put half of wc_find's time on those two loads). Only a hint; nothing changes.
 */
void
kith__wcache_prefetch(struct kith__applier *a, const struct kith__commit *c)
{
    enum { MAX = 32 };
    struct kith__wcache *w = a->wc;
    size_t at[MAX], n = 0;

    if (w == NULL || w->n == 0)
        return;
    for (uint32_t i = 0; i < c->nops && n + 2 <= MAX; i++) {
        const struct kith__op *op = &c->ops[i];
        uint8_t kb[18];
        uint64_t p[3];
        kb[0] = op->coll;
        kith__dot_put(kb + 1, op->doc);
        wc_prefix(kb, 17, p);
        at[n++] = wc_hash(KITH__WC_DOCS, p, kb, 17) & (w->cap - 1);
        if (op->kind == KITH_OP_FIELD_SET) {
            kb[17] = op->field;
            wc_prefix(kb, 18, p);
            at[n++] = wc_hash(KITH__WC_REGS, p, kb, 18) & (w->cap - 1);
        }
    }
    for (size_t k = 0; k < n; k++)
        WC_PREFETCH(&w->slots[at[k]]);
    for (size_t k = 0; k < n; k++)
        if (w->slots[at[k]].e != NULL)
            WC_PREFETCH(w->slots[at[k]].e);
}

/* Write the cache out and empty it once it holds more than kith__wcache_budget. Only between two
 * commits: no entry may be held by a caller then. */
int
kith__wcache_spill(struct kith__applier *a)
{
    struct kith__wcache *c = a->wc;
    int rc;

    if (c == NULL || c->bytes + c->cap * sizeof *c->slots <= kith__wcache_budget)
        return 0;
    rc = kith__wcache_flush(a);
    if (rc != 0)
        return rc;
    kith__mem_free(&c->mem);
    memset(c->slots, 0, c->cap * sizeof *c->slots);
    memset(c->spare, 0, sizeof c->spare);
    c->n = 0;
    c->bytes = 0;
    return 0;
}

/*
 * Read the record under `key` in the database of `kind` (cursor `c`): through the cache when
 * it is on (KITH__WC_REGS, KITH__WC_DOCS), else with the cursor (left on the record: rec_put may
 * then overwrite in place). *val is a view valid until the next write.
 */
int
kith__rec_get(struct kith__applier *a, uint8_t kind, MDB_cursor *c, const uint8_t *key, size_t klen,
              const uint8_t **val, size_t *vlen, bool *found, struct kith__wc_entry **ent)
{
    MDB_val k = {klen, (void *)key}, v;
    bool added;
    int rc;

    *ent = NULL;
    if (a->wc != NULL && kind != KITH__WC_NONE) {
        struct kith__wc_entry *e = wc_find(a->wc, kind, key, klen, &added);
        if (e == NULL)
            return KITH_ENOMEM;
        if (added) {
            /* MDB_SET, not MDB_SET_KEY: k keeps pointing at the caller's key */
            rc = kith__mdb_cursor_get(c, &k, &v, MDB_SET);
            if (rc != 0 && rc != MDB_NOTFOUND)
                return kith__mdb_err(rc);
            if (rc == 0) {
                rc = wc_set(a->wc, e, v.mv_data, v.mv_size);
                if (rc < 0)
                    return rc;
                e->dirty = false;
            } else {
                e->born = true;
            }
        }
        *ent = e;
        *found = e->exists;
        *val = e->val;
        *vlen = e->vlen;
        return 0;
    }
    /* MDB_SET, not MDB_SET_KEY: a key pointing into a dirty page would be moved under
     * LMDB's feet by the put that follows and inserted as garbage */
    rc = kith__mdb_cursor_get(c, &k, &v, MDB_SET);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return kith__mdb_err(rc);
    *found = rc == 0;
    *val = rc == 0 ? v.mv_data : NULL;
    *vlen = rc == 0 ? v.mv_size : 0;
    return 0;
}

/* Write the record read by rec_get (`found`, `ent` as it returned them). */
int
kith__rec_put(struct kith__applier *a, MDB_cursor *c, const uint8_t *key, size_t klen,
              const void *val, size_t vlen, bool found, struct kith__wc_entry *ent)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};

    if (ent != NULL)
        return wc_set(a->wc, ent, val, vlen);
    /* found: the cursor still sits on the record (only other databases were written since
     * rec_get), so overwrite it in place without a second search */
    return kith__mdb_err(kith__mdb_cursor_put(c, &k, &v, found ? MDB_CURRENT : 0));
}

/* Delete the record read (and found) by rec_get. */
int
kith__rec_del(struct kith__applier *a, MDB_cursor *c, struct kith__wc_entry *ent)
{
    (void)a;
    if (ent != NULL) {
        ent->exists = false;
        ent->dirty = true;
        return 0;
    }
    return kith__mdb_err(kith__mdb_cursor_del(c, 0));
}

bool
kith__wcache_born(const struct kith__wc_entry *e)
{
    return e != NULL && e->born;
}

/*
 * Record the final presence of an index entry (no load needed: a put or delete of the final
 * state is enough). `born`: the key cannot be in the database (it derives from a register the
 * database did not hold), so an entry added and removed again in this cache is forgotten
 * rather than kept as a delete. Without that, a batch that renames contacts over and over
 * would hold an entry for every name it ever wrote.
 */
int
kith__wcache_index(struct kith__applier *a, const uint8_t *key, size_t n, bool add, bool born)
{
    bool added;
    size_t slot;
    struct kith__wc_entry *e = wc_find_at(a->wc, KITH__WC_INDEX, key, n, &added, &slot);

    if (e == NULL)
        return KITH_ENOMEM;
    if (!add && born) {
        wc_drop(a->wc, slot);
        return 0;
    }
    e->exists = add;
    e->dirty = true;
    return 0;
}
