/*
 * group_fold.c — the membership fold (spec/groups.md GRP-4 .. GRP-12): from the set of
 * records held, which are valid and why not, who the members are, which keys are removed and
 * up to which seq their ops stay accepted, the heads and the digest.
 *
 * The rules are declarative: validity is a property of a record's causal past alone, and
 * liveness (GRP-9) a property of the whole valid set; neither depends on the order records
 * arrived in or are visited. The fold visits them in one topological order (Kahn's, ties by
 * lowest hash) only because a record's validity needs its parents' first. Causal pasts are
 * bit sets, one row of n bits per record (2 MiB for 4096 records), so "is a in the past of b"
 * is one bit test and a record's past is the union of its parents' rows: O(n^2 / 64) words to
 * build. Liveness of an admission asks for admissions of its author in its own past, each a
 * step back in topological order, evaluated with an explicit stack and memoised per question,
 * so a long chain of admissions costs neither recursion depth nor repeated work.
 *
 * Everything is recomputed from scratch by kith__group_fold; kith__group_add only decodes and
 * verifies a new record once, keeps a copy, and keeps the records sorted by hash.
 */
#include "group.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define WHY_BYTES 96
#define BASE_OK 255 /* decoded and signed by its author; the fold judges the rest */
#define NONE UINT32_MAX

struct held {
    uint8_t hash[KITH_HASH_BYTES];
    uint8_t *bytes;
    size_t len;
    struct kith__group_rec rec; /* views into bytes; valid when base == BASE_OK */
    uint8_t base;               /* BASE_OK, or MALFORMED, BADSIG, UNKNOWN */
    char why[WHY_BYTES];
};

struct kith__group {
    uint8_t gid[KITH__GROUP_ID_BYTES];
    struct held **held; /* sorted by hash */
    size_t n, cap;
    /* the last fold's results */
    struct kith__group_entry *entries;
    size_t nentries;
    struct kith__group_member *members;
    size_t nmembers;
    struct kith__group_removed *removed;
    size_t nremoved;
    uint8_t (*heads)[KITH_HASH_BYTES];
    size_t nheads;
    uint8_t digest[KITH_HASH_BYTES];
    bool upgrade;
};

/* ---- holding records ------------------------------------------------------------------ */

int
kith__group_new(const uint8_t gid[KITH__GROUP_ID_BYTES], struct kith__group **out)
{
    struct kith__group *g;
    if (!out)
        return KITH_EINVAL;
    *out = NULL;
    if (!gid)
        return KITH_EINVAL;
    if (!(g = calloc(1, sizeof *g)))
        return KITH_ENOMEM;
    memcpy(g->gid, gid, KITH__GROUP_ID_BYTES);
    crypto_generichash(g->digest, KITH_HASH_BYTES, NULL, 0, NULL, 0);
    *out = g;
    return 0;
}

static void
results_free(struct kith__group *g)
{
    free(g->entries);
    free(g->members);
    free(g->removed);
    free(g->heads);
    g->entries = NULL;
    g->members = NULL;
    g->removed = NULL;
    g->heads = NULL;
    g->nentries = g->nmembers = g->nremoved = g->nheads = 0;
    g->upgrade = false;
    crypto_generichash(g->digest, KITH_HASH_BYTES, NULL, 0, NULL, 0);
}

void
kith__group_free(struct kith__group *g)
{
    if (!g)
        return;
    results_free(g);
    for (size_t i = 0; i < g->n; i++) {
        free(g->held[i]->bytes);
        free(g->held[i]);
    }
    free(g->held);
    free(g);
}

/* The index of the record with `hash`, or where it would go (*found false). */
static size_t
held_search(const struct kith__group *g, const uint8_t hash[KITH_HASH_BYTES], bool *found)
{
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(g->held[mid]->hash, hash, KITH_HASH_BYTES);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

int
kith__group_add(struct kith__group *g, const uint8_t *p, size_t len)
{
    uint8_t hash[KITH_HASH_BYTES];
    struct held *h;
    bool found;
    size_t at;
    int rc;

    if (!g || (!p && len > 0))
        return KITH_EINVAL;
    if (len > KITH__GROUP_MAX_RECORD)
        return KITH_ETOOBIG;
    kith__group_hash(p ? p : (const uint8_t *)"", len, hash);
    at = held_search(g, hash, &found);
    if (found)
        return 1;
    if (g->n >= KITH__GROUP_MAX_RECORDS)
        return KITH_ETOOBIG;
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 16;
        struct held **grown = realloc(g->held, cap * sizeof *grown);
        if (!grown)
            return KITH_ENOMEM;
        g->held = grown;
        g->cap = cap;
    }
    if (!(h = calloc(1, sizeof *h)) || !(h->bytes = malloc(len ? len : 1))) {
        free(h);
        return KITH_ENOMEM;
    }
    memcpy(h->hash, hash, KITH_HASH_BYTES);
    if (len > 0)
        memcpy(h->bytes, p, len);
    h->len = len;
    rc = kith__group_verify(h->bytes, len, &h->rec, h->why, sizeof h->why);
    h->base = rc == 0               ? BASE_OK
              : rc == KITH_EBADSIG  ? KITH__GROUP_BADSIG
              : rc == KITH_EVERSION ? KITH__GROUP_UNKNOWN
                                    : KITH__GROUP_MALFORMED;
    memmove(g->held + at + 1, g->held + at, (g->n - at) * sizeof *g->held);
    g->held[at] = h;
    g->n++;
    return 0;
}

/* ---- the fold's working state --------------------------------------------------------- */

struct keylist {
    uint32_t *adm; /* valid FOUNDs and ADDs admitting the key, in topological order */
    uint32_t nadm;
    uint32_t *rem; /* valid REMOVEs of the key, in topological order */
    uint32_t nrem;
};

struct fold {
    struct kith__group *g;
    size_t n, words; /* records; 64-bit words in a row of the past */
    uint64_t *past;  /* n rows: bit a of row r is set when a is in r's causal past */
    uint32_t *poff;  /* parents of i: pidx[poff[i] .. poff[i + 1]), NONE if not held */
    uint32_t *pidx;
    uint32_t *coff, *cidx; /* children, the same way */
    uint8_t *status;
    const char **why;
    const uint8_t (*keys)[KITH_PUBKEY_BYTES]; /* distinct authors and members, sorted */
    size_t nkeys;
    uint32_t *author, *target; /* key index per record; target NONE unless FOUND/ADD/REMOVE */
    struct keylist *lists;
    uint32_t *slots;    /* the lists' storage */
    uint32_t *memo_gen; /* liveness memo: valid for question memo_gen == gen */
    uint8_t *memo;      /* 1 live, 0 void */
    uint32_t *cursor;   /* next admission to try, per record on the stack */
    uint32_t *stack;
    uint32_t gen;
};

static bool
bit(const uint64_t *row, size_t i)
{
    return (row[i / 64] >> (i % 64)) & 1u;
}

static uint64_t *
row(const struct fold *f, size_t i)
{
    return f->past + i * f->words;
}

static const struct kith__group_rec *
rec(const struct fold *f, size_t i)
{
    return &f->g->held[i]->rec;
}

static int
key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, KITH_PUBKEY_BYTES);
}

static uint32_t
key_index(const struct fold *f, const uint8_t pk[KITH_PUBKEY_BYTES])
{
    const uint8_t(*k)[KITH_PUBKEY_BYTES] =
        bsearch(pk, f->keys, f->nkeys, KITH_PUBKEY_BYTES, key_cmp);
    return k ? (uint32_t)(k - f->keys) : NONE;
}

/* The key a record admits (FOUND: its author; ADD: its member) or removes, else NONE. */
static bool
admits(const struct kith__group_rec *r)
{
    return r->kind == KITH__GROUP_FOUND || r->kind == KITH__GROUP_ADD;
}

/*
 * GRP-9 overtaken: is record x's author removed, within `P` (a row of the past, or NULL for
 * every valid record), by a REMOVE other than x that does not have x in its own past?
 */
static bool
overtaken(const struct fold *f, uint32_t x, const uint64_t *P)
{
    const struct keylist *l = &f->lists[f->author[x]];
    for (uint32_t k = 0; k < l->nrem; k++) {
        uint32_t m = l->rem[k];
        if ((!P || bit(P, m)) && m != x && !bit(row(f, m), x))
            return true;
    }
    return false;
}

/*
 * GRP-9 live: admission x is live within P when it is not overtaken and it is a FOUND, or
 * some admission of its author in its own past is live within P. Assumes x is valid and in P
 * (or P is NULL); every admission this asks about is in x's past, hence in P. Memoised for
 * the question f->gen, which the caller bumps whenever P changes.
 */
static bool
live(struct fold *f, uint32_t x, const uint64_t *P)
{
    size_t top = 0;
    if (f->memo_gen[x] == f->gen)
        return f->memo[x];
    f->stack[top++] = x;
    f->cursor[x] = 0;
    while (top > 0) {
        uint32_t y = f->stack[top - 1];
        int result = -1;
        if (f->cursor[y] == 0 && overtaken(f, y, P))
            result = 0;
        else if (f->cursor[y] == 0 && rec(f, y)->kind == KITH__GROUP_FOUND)
            result = 1;
        else {
            const struct keylist *l = &f->lists[f->author[y]];
            while (result < 0 && f->cursor[y] < l->nadm) {
                uint32_t a = l->adm[f->cursor[y]];
                if (!bit(row(f, y), a)) {
                    f->cursor[y]++;
                } else if (f->memo_gen[a] == f->gen) {
                    if (f->memo[a])
                        result = 1;
                    else
                        f->cursor[y]++;
                } else {
                    break; /* ask about a first; y resumes at the same cursor */
                }
            }
            if (result < 0 && f->cursor[y] < l->nadm) {
                uint32_t a = l->adm[f->cursor[y]];
                f->cursor[a] = 0;
                f->stack[top++] = a; /* a is in y's past: no cycle, top stays below n */
                continue;
            }
            if (result < 0)
                result = 0;
        }
        f->memo_gen[y] = f->gen;
        f->memo[y] = (uint8_t)result;
        top--;
    }
    return f->memo[x];
}

/* Is the author of r a member in the fold of r's causal past (GRP-7)? */
static bool
author_member(struct fold *f, uint32_t r)
{
    const struct keylist *l = &f->lists[f->author[r]];
    const uint64_t *P = row(f, r);
    for (uint32_t k = 0; k < l->nrem; k++)
        if (bit(P, l->rem[k]))
            return false; /* removed in its own past: never again (GRP-8) */
    f->gen++;
    for (uint32_t k = 0; k < l->nadm; k++)
        if (bit(P, l->adm[k]) && live(f, l->adm[k], P))
            return true;
    return false;
}

static void
fold_free(struct fold *f)
{
    free(f->past);
    free(f->poff);
    free(f->pidx);
    free(f->coff);
    free(f->cidx);
    free(f->status);
    free(f->why);
    free((void *)f->keys);
    free(f->author);
    free(f->target);
    free(f->lists);
    free(f->slots);
    free(f->memo_gen);
    free(f->memo);
    free(f->cursor);
    free(f->stack);
}

/* Parents and children as index lists, and the distinct keys with room in their lists. */
static int
fold_graph(struct fold *f)
{
    struct kith__group *g = f->g;
    size_t n = f->n, np = 0, nk = 0;
    uint8_t(*keys)[KITH_PUBKEY_BYTES];
    uint32_t *count;

    for (size_t i = 0; i < n; i++)
        if (g->held[i]->base == BASE_OK)
            np += rec(f, i)->nparents;
    f->poff = calloc(n + 1, sizeof *f->poff);
    f->pidx = malloc((np ? np : 1) * sizeof *f->pidx);
    f->coff = calloc(n + 1, sizeof *f->coff);
    f->cidx = malloc((np ? np : 1) * sizeof *f->cidx);
    keys = malloc((n ? 2 * n : 1) * sizeof *keys);
    f->keys = (const uint8_t(*)[KITH_PUBKEY_BYTES])keys;
    if (!f->poff || !f->pidx || !f->coff || !f->cidx || !keys)
        return KITH_ENOMEM;
    for (size_t i = 0, k = 0; i < n; i++) {
        const struct kith__group_rec *r = rec(f, i);
        f->poff[i] = (uint32_t)k;
        if (g->held[i]->base != BASE_OK)
            continue;
        for (uint32_t j = 0; j < r->nparents; j++, k++) {
            bool found;
            size_t at = held_search(g, kith__group_parent(r, j), &found);
            f->pidx[k] = found ? (uint32_t)at : NONE;
            if (found)
                f->coff[at + 1]++;
        }
        memcpy(keys[nk++], r->author, KITH_PUBKEY_BYTES);
        if (r->kind == KITH__GROUP_ADD || r->kind == KITH__GROUP_REMOVE)
            memcpy(keys[nk++], r->member, KITH_PUBKEY_BYTES);
    }
    f->poff[n] = (uint32_t)np;
    for (size_t i = 0; i < n; i++)
        f->coff[i + 1] += f->coff[i];
    if (!(count = calloc(n + 1, sizeof *count)))
        return KITH_ENOMEM;
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = f->poff[i]; k < f->poff[i + 1]; k++)
            if (f->pidx[k] != NONE)
                f->cidx[f->coff[f->pidx[k]] + count[f->pidx[k]]++] = (uint32_t)i;
    free(count);

    qsort(keys, nk, sizeof *keys, key_cmp);
    f->nkeys = 0;
    for (size_t i = 0; i < nk; i++)
        if (f->nkeys == 0 || memcmp(keys[f->nkeys - 1], keys[i], KITH_PUBKEY_BYTES) != 0)
            memmove(keys[f->nkeys++], keys[i], KITH_PUBKEY_BYTES);
    f->author = malloc((n ? n : 1) * sizeof *f->author);
    f->target = malloc((n ? n : 1) * sizeof *f->target);
    f->lists = calloc(f->nkeys ? f->nkeys : 1, sizeof *f->lists);
    f->slots = malloc((n ? n : 1) * sizeof *f->slots);
    if (!f->author || !f->target || !f->lists || !f->slots)
        return KITH_ENOMEM;
    /* Each record sits in at most one list (its target's), so n slots hold them all; give
     * each key room for every record that names it as a target. */
    for (size_t i = 0; i < n; i++) {
        const struct kith__group_rec *r = rec(f, i);
        f->author[i] = f->target[i] = NONE;
        if (g->held[i]->base != BASE_OK)
            continue;
        f->author[i] = key_index(f, r->author);
        if (r->kind == KITH__GROUP_FOUND)
            f->target[i] = f->author[i];
        else if (r->kind == KITH__GROUP_ADD || r->kind == KITH__GROUP_REMOVE)
            f->target[i] = key_index(f, r->member);
        if (f->target[i] != NONE) {
            if (admits(r))
                f->lists[f->target[i]].nadm++;
            else
                f->lists[f->target[i]].nrem++;
        }
    }
    uint32_t *s = f->slots;
    for (size_t k = 0; k < f->nkeys; k++) {
        f->lists[k].adm = s;
        s += f->lists[k].nadm;
        f->lists[k].rem = s;
        s += f->lists[k].nrem;
        f->lists[k].nadm = f->lists[k].nrem = 0; /* filled as records prove valid */
    }
    return 0;
}

/* A min-heap of record indexes: records are sorted by hash, so the least index is the lowest
 * hash, the tie-break of the topological order. */
static void
heap_push(uint32_t *h, size_t *n, uint32_t v)
{
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static uint32_t
heap_pop(uint32_t *h, size_t *n)
{
    uint32_t top = h[0], v = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1] < h[c])
            c++;
        if (h[c] >= v)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = v;
    return top;
}

/* GRP-4 .. GRP-7: the status of record i, whose held parents are all judged already. */
static void
judge(struct fold *f, uint32_t i)
{
    const struct held *h = f->g->held[i];
    const struct kith__group_rec *r = &h->rec;
    bool waiting = false, bad = false;

    f->why[i] = "";
    if (h->base != BASE_OK) {
        f->status[i] = h->base;
        f->why[i] = h->why;
        return;
    }
    if (r->kind == KITH__GROUP_FOUND ? memcmp(h->hash, f->g->gid, KITH__GROUP_ID_BYTES) != 0
                                     : memcmp(r->group, f->g->gid, KITH__GROUP_ID_BYTES) != 0) {
        f->status[i] = KITH__GROUP_FOREIGN;
        f->why[i] = r->kind == KITH__GROUP_FOUND ? "founds another group" : "of another group";
        return;
    }
    for (uint32_t k = f->poff[i]; k < f->poff[i + 1]; k++) {
        uint32_t p = f->pidx[k];
        if (p == NONE || f->status[p] == KITH__GROUP_WAITING || f->status[p] == KITH__GROUP_UNKNOWN)
            waiting = true;
        else if (!kith__group_status_valid(f->status[p]))
            bad = true;
    }
    if (bad) {
        f->status[i] = KITH__GROUP_BADPARENT;
        f->why[i] = "a parent is invalid";
        return;
    }
    if (waiting) {
        f->status[i] = KITH__GROUP_WAITING;
        f->why[i] = "a parent is not held yet";
        return;
    }
    uint64_t *P = row(f, i);
    for (uint32_t k = f->poff[i]; k < f->poff[i + 1]; k++) {
        const uint64_t *pp = row(f, f->pidx[k]);
        for (size_t w = 0; w < f->words; w++)
            P[w] |= pp[w];
        P[f->pidx[k] / 64] |= (uint64_t)1 << (f->pidx[k] % 64);
    }
    if (r->kind != KITH__GROUP_FOUND && !author_member(f, i)) {
        f->status[i] = KITH__GROUP_NOTMEMBER;
        f->why[i] = "its author was not a member in its causal past";
        return;
    }
    f->status[i] = KITH__GROUP_LIVE; /* valid; GRP-9 decides LIVE or VOID at the end */
    if (f->target[i] != NONE) {
        struct keylist *l = &f->lists[f->target[i]];
        if (admits(r))
            l->adm[l->nadm++] = i;
        else
            l->rem[l->nrem++] = i;
    }
}

/* Kahn's order, ties by lowest hash; every record is judged once its held parents are. */
static int
fold_order(struct fold *f)
{
    size_t n = f->n, nheap = 0, done = 0;
    uint32_t *indeg = calloc(n ? n : 1, sizeof *indeg);
    uint32_t *heap = malloc((n ? n : 1) * sizeof *heap);
    if (!indeg || !heap) {
        free(indeg);
        free(heap);
        return KITH_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        for (uint32_t k = f->poff[i]; k < f->poff[i + 1]; k++)
            indeg[i] += f->pidx[k] != NONE;
        if (indeg[i] == 0)
            heap_push(heap, &nheap, (uint32_t)i);
    }
    while (nheap > 0) {
        uint32_t i = heap_pop(heap, &nheap);
        judge(f, i);
        done++;
        for (uint32_t k = f->coff[i]; k < f->coff[i + 1]; k++)
            if (--indeg[f->cidx[k]] == 0)
                heap_push(heap, &nheap, f->cidx[k]);
    }
    /* A cycle needs a hash preimage; should one be held, its records wait for ever. */
    for (size_t i = 0; done < n && i < n; i++)
        if (indeg[i] != 0) {
            f->status[i] = KITH__GROUP_WAITING;
            f->why[i] = "a parent is not held yet";
        }
    free(indeg);
    free(heap);
    return 0;
}

/* GRP-11: the admission a member is shown with: a live one with no other live admission of
 * the key in its past, the lowest hash among such. */
static uint32_t
via(const struct fold *f, const struct keylist *l)
{
    uint32_t best = NONE;
    for (uint32_t k = 0; k < l->nadm; k++) {
        uint32_t a = l->adm[k];
        bool first = f->status[a] == KITH__GROUP_LIVE;
        for (uint32_t j = 0; first && j < l->nadm; j++)
            first = !(f->status[l->adm[j]] == KITH__GROUP_LIVE && bit(row(f, a), l->adm[j]));
        if (first && (best == NONE || a < best))
            best = a;
    }
    return best;
}

/* GRP-9 .. GRP-12 over every valid record: live or void, members, removed keys and their
 * cut-offs, heads, digest. */
static int
fold_results(struct fold *f)
{
    struct kith__group *g = f->g;
    size_t n = f->n;
    uint8_t *named = calloc(n ? n : 1, 1);
    crypto_generichash_state st;

    g->entries = calloc(n ? n : 1, sizeof *g->entries);
    g->members = calloc(f->nkeys ? f->nkeys : 1, sizeof *g->members);
    g->removed = calloc(f->nkeys ? f->nkeys : 1, sizeof *g->removed);
    g->heads = calloc(n ? n : 1, sizeof *g->heads);
    if (!named || !g->entries || !g->members || !g->removed || !g->heads) {
        free(named);
        return KITH_ENOMEM;
    }
    f->gen++;
    for (uint32_t i = 0; i < n; i++)
        if (f->status[i] == KITH__GROUP_LIVE && !live(f, i, NULL)) {
            f->status[i] = KITH__GROUP_VOID;
            f->why[i] = "its author was removed by a removal it did not see, or was admitted "
                        "by a void record";
        }
    for (size_t k = 0; k < f->nkeys; k++) {
        const struct keylist *l = &f->lists[k];
        if (l->nrem > 0) {
            /* GRP-10: the highest cut-off of the live removals; if every one is void, the
             * lowest any names */
            struct kith__group_removed *rm = &g->removed[g->nremoved++];
            uint64_t hi = 0, lo = UINT64_MAX;
            bool any_live = false;
            for (uint32_t j = 0; j < l->nrem; j++) {
                uint64_t c = rec(f, l->rem[j])->cutoff;
                if (f->status[l->rem[j]] == KITH__GROUP_LIVE) {
                    any_live = true;
                    hi = c > hi ? c : hi;
                }
                lo = c < lo ? c : lo;
            }
            memcpy(rm->pk, f->keys[k], KITH_PUBKEY_BYTES);
            rm->cutoff = any_live ? hi : lo;
            continue;
        }
        uint32_t a = via(f, l);
        if (a == NONE)
            continue;
        struct kith__group_member *m = &g->members[g->nmembers++];
        const struct kith__group_rec *r = rec(f, a);
        memcpy(m->pk, f->keys[k], KITH_PUBKEY_BYTES);
        m->name = r->name;
        m->name_len = r->name_len;
        memcpy(m->added_by, r->author, KITH_PUBKEY_BYTES);
        memcpy(m->via, g->held[a]->hash, KITH_HASH_BYTES);
        m->time_ms = r->time_ms;
    }
    for (size_t i = 0; i < n; i++)
        if (kith__group_status_valid(f->status[i]))
            for (uint32_t k = f->poff[i]; k < f->poff[i + 1]; k++)
                named[f->pidx[k]] = 1; /* a valid record's parents are held and valid */
    crypto_generichash_init(&st, NULL, 0, KITH_HASH_BYTES);
    for (size_t i = 0; i < n; i++) {
        struct kith__group_entry *e = &g->entries[i];
        memcpy(e->hash, g->held[i]->hash, KITH_HASH_BYTES);
        e->bytes = g->held[i]->bytes;
        e->len = g->held[i]->len;
        e->status = f->status[i];
        e->why = f->why[i];
        g->upgrade |= f->status[i] == KITH__GROUP_UNKNOWN;
        if (!kith__group_status_valid(f->status[i]))
            continue;
        crypto_generichash_update(&st, g->held[i]->hash, KITH_HASH_BYTES);
        if (!named[i])
            memcpy(g->heads[g->nheads++], g->held[i]->hash, KITH_HASH_BYTES);
    }
    crypto_generichash_final(&st, g->digest, KITH_HASH_BYTES);
    g->nentries = n;
    free(named);
    return 0;
}

int
kith__group_fold(struct kith__group *g)
{
    struct fold f = {0};
    size_t n;
    int rc;
    if (!g)
        return KITH_EINVAL;
    results_free(g);
    n = g->n;
    f.g = g;
    f.n = n;
    f.words = (n + 63) / 64;
    f.past = calloc(n ? n * f.words : 1, sizeof *f.past);
    f.status = calloc(n ? n : 1, 1);
    f.why = calloc(n ? n : 1, sizeof *f.why);
    f.memo_gen = calloc(n ? n : 1, sizeof *f.memo_gen);
    f.memo = calloc(n ? n : 1, 1);
    f.cursor = calloc(n ? n : 1, sizeof *f.cursor);
    f.stack = calloc(n ? n : 1, sizeof *f.stack);
    if (!f.past || !f.status || !f.why || !f.memo_gen || !f.memo || !f.cursor || !f.stack) {
        rc = KITH_ENOMEM;
        goto out_free;
    }
    if ((rc = fold_graph(&f)) < 0 || (rc = fold_order(&f)) < 0 || (rc = fold_results(&f)) < 0)
        goto out_free;
out_free:
    if (rc < 0)
        results_free(g);
    fold_free(&f);
    return rc;
}

/* ---- queries -------------------------------------------------------------------------- */

size_t
kith__group_count(const struct kith__group *g)
{
    return g->nentries;
}

const struct kith__group_entry *
kith__group_entry(const struct kith__group *g, size_t i)
{
    return i < g->nentries ? &g->entries[i] : NULL;
}

static int
hash_cmp(const void *key, const void *e)
{
    return memcmp(key, ((const struct kith__group_entry *)e)->hash, KITH_HASH_BYTES);
}

const struct kith__group_entry *
kith__group_find(const struct kith__group *g, const uint8_t hash[KITH_HASH_BYTES])
{
    return bsearch(hash, g->entries, g->nentries, sizeof *g->entries, hash_cmp);
}

bool
kith__group_is_member(const struct kith__group *g, const uint8_t pk[KITH_PUBKEY_BYTES])
{
    return bsearch(pk, g->members, g->nmembers, sizeof *g->members, key_cmp) != NULL;
}

bool
kith__group_cutoff(const struct kith__group *g, const uint8_t pk[KITH_PUBKEY_BYTES],
                   uint64_t *cutoff)
{
    const struct kith__group_removed *r =
        bsearch(pk, g->removed, g->nremoved, sizeof *g->removed, key_cmp);
    if (r && cutoff)
        *cutoff = r->cutoff;
    return r != NULL;
}

const struct kith__group_member *
kith__group_members(const struct kith__group *g, size_t *n)
{
    *n = g->nmembers;
    return g->members;
}

const struct kith__group_removed *
kith__group_removed(const struct kith__group *g, size_t *n)
{
    *n = g->nremoved;
    return g->removed;
}

const uint8_t (*kith__group_heads(const struct kith__group *g, size_t *n))[KITH_HASH_BYTES]
{
    *n = g->nheads;
    return (const uint8_t(*)[KITH_HASH_BYTES])g->heads;
}

void
kith__group_digest(const struct kith__group *g, uint8_t out[KITH_HASH_BYTES])
{
    memcpy(out, g->digest, KITH_HASH_BYTES);
}

bool
kith__group_needs_upgrade(const struct kith__group *g)
{
    return g->upgrade;
}

const char *
kith__group_status_name(enum kith__group_status s)
{
    static const char *const names[] = {"live",    "void",    "waiting",   "malformed", "badsig",
                                        "unknown", "foreign", "badparent", "notmember"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}
