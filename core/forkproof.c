/*
 * forkproof.c — the fork proof: its one canonical encoding, its decoder and its check
 * (spec/encoding.md §10, spec/data-model.md FORK-4 .. FORK-9, decisions.md D-18).
 *
 * A proof is flat (one array holding two arrays of commits), so the decoder runs the guard
 * over the raw bytes and then reads the headers in place, as the batch and group decoders
 * do: msgpack-c never sees the proof, and the only allocation is the array of commit views
 * in the caller's arena. Checking decodes each commit with the commit decoder (for its op
 * count: the seq a signed head names is where the last commit ends, so the seqs must be
 * recomputed, not believed) and hashes the chain from the base, so it costs what applying the
 * same commits from a batch costs, plus two signature checks.
 *
 * The winner goes first. That is what makes the layout canonical (the same two branches give
 * the same bytes whichever order a builder found them in) and lets a reader see the winner
 * without hashing; the decoder hashes the two first commits anyway and refuses a proof whose
 * order is not the winner's, so a proof cannot claim a winner.
 */
#include "forkproof.h"

#include <msgpack.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define FIELDS 8u
#define GUARD_DEPTH 2 /* the proof > a branch's commits */
#define GUARD_OBJECTS (FIELDS + 2u * KITH__FORKPROOF_MAX_COMMITS)

static void
say(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

static bool
zero32(const uint8_t *p)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < KITH_HASH_BYTES; i++)
        acc |= p[i];
    return acc == 0;
}

bool
kith__fork_wins(const uint8_t a[KITH_HASH_BYTES], const uint8_t b[KITH_HASH_BYTES])
{
    return memcmp(a, b, KITH_HASH_BYTES) < 0;
}

void
kith__forkproof_name(const struct kith__forkproof *p, uint8_t out[KITH__FORKPROOF_NAME_BYTES])
{
    kith__be64_put(out, p->origin);
    kith__be64_put(out + 8, p->c);
    memcpy(out + 16, p->win.first, KITH_HASH_BYTES);
    memcpy(out + 16 + KITH_HASH_BYTES, p->lose.first, KITH_HASH_BYTES);
}

/* ---- encoding ------------------------------------------------------------------------- */

static int
pack_branch(msgpack_packer *pk, const struct kith__fork_branch *b)
{
    int prc = msgpack_pack_array(pk, b->ncommits);
    for (uint32_t i = 0; i < b->ncommits; i++) {
        prc |= msgpack_pack_bin(pk, b->commits[i].len);
        prc |= msgpack_pack_bin_body(pk, b->commits[i].bytes, b->commits[i].len);
    }
    prc |= msgpack_pack_bin(pk, KITH_SIG_BYTES);
    prc |= msgpack_pack_bin_body(pk, b->sig, KITH_SIG_BYTES);
    return prc;
}

int
kith__forkproof_encode(const struct kith__forkproof *p, struct kith__wbuf *out, char *why,
                       size_t why_cap)
{
    const struct kith__fork_branch *br[2];
    uint8_t first[2][KITH_HASH_BYTES];
    msgpack_packer pk;
    size_t start;
    int prc = 0;

    if (!p || !out)
        return KITH_EINVAL;
    br[0] = &p->win;
    br[1] = &p->lose;
    for (int i = 0; i < 2; i++) {
        if (br[i]->ncommits == 0 || !br[i]->commits) {
            say(why, why_cap, "a branch has no commits");
            return KITH_EINVAL;
        }
        if (br[i]->ncommits > KITH__FORKPROOF_MAX_COMMITS) {
            say(why, why_cap, "a branch of %u commits, over %u", br[i]->ncommits,
                KITH__FORKPROOF_MAX_COMMITS);
            return KITH_EINVAL;
        }
        kith__chain_next(p->base, br[i]->commits[0].bytes, br[i]->commits[0].len, first[i]);
    }
    if (p->c == 0 && !zero32(p->base)) {
        say(why, why_cap, "the base of a fork at seq 1 is not 32 zero bytes");
        return KITH_EINVAL;
    }
    if (memcmp(first[0], first[1], KITH_HASH_BYTES) == 0) {
        say(why, why_cap, "the two histories agree at seq %llu: no fork there",
            (unsigned long long)p->c + 1);
        return KITH_EINVAL;
    }
    if (!kith__fork_wins(first[0], first[1])) {
        const struct kith__fork_branch *t = br[0];
        br[0] = br[1];
        br[1] = t;
    }
    start = out->len;
    msgpack_packer_init(&pk, out, kith__wbuf_write);
    prc |= msgpack_pack_array(&pk, FIELDS);
    prc |= msgpack_pack_uint8(&pk, KITH__FORKPROOF_VERSION);
    prc |= msgpack_pack_bin(&pk, KITH_PUBKEY_BYTES);
    prc |= msgpack_pack_bin_body(&pk, p->key, KITH_PUBKEY_BYTES);
    prc |= msgpack_pack_uint64(&pk, p->c);
    prc |= msgpack_pack_bin(&pk, KITH_HASH_BYTES);
    prc |= msgpack_pack_bin_body(&pk, p->base, KITH_HASH_BYTES);
    prc |= pack_branch(&pk, br[0]);
    prc |= pack_branch(&pk, br[1]);
    if (prc) {
        out->len = start;
        return KITH_ENOMEM;
    }
    if (out->len - start > KITH__FORKPROOF_MAX_BYTES) {
        say(why, why_cap, "a proof of %zu bytes, over %u", out->len - start,
            KITH__FORKPROOF_MAX_BYTES);
        out->len = start;
        return KITH_ETOOBIG;
    }
    say(why, why_cap, "%s", "");
    return 0;
}

/* ---- decoding ------------------------------------------------------------------------- */

/* A bin of exactly n bytes, copied to out. */
static bool
next_fixed(struct kith__mp_cursor *c, uint8_t *out, size_t n)
{
    uint64_t len;
    if (!kith__mp_next(c, KITH__MP_BIN, &len) || len != n)
        return false;
    memcpy(out, c->p, n);
    c->p += n;
    c->left -= n;
    return true;
}

static int
read_branch(struct kith__mp_cursor *c, const char *name, struct kith__fork_branch *b,
            struct kith__arena *arena, char *why, size_t why_cap)
{
    struct kith__fork_commit *commits;
    uint64_t n, len;

    if (!kith__mp_next(c, KITH__MP_ARRAY, &n)) {
        say(why, why_cap, "the %s branch's commits are not an array", name);
        return KITH_EMALFORMED;
    }
    if (n == 0) {
        say(why, why_cap, "the %s branch has no commits", name);
        return KITH_EMALFORMED;
    }
    if (n > KITH__FORKPROOF_MAX_COMMITS) {
        say(why, why_cap, "the %s branch holds %llu commits, over %u", name, (unsigned long long)n,
            KITH__FORKPROOF_MAX_COMMITS);
        return KITH_ETOOBIG;
    }
    commits = kith__arena_alloc(arena, (size_t)n * sizeof *commits);
    if (!commits)
        return KITH_ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        if (!kith__mp_next(c, KITH__MP_BIN, &len) || len == 0) {
            say(why, why_cap, "commit %llu of the %s branch is not a bin of at least 1 byte",
                (unsigned long long)i + 1, name);
            return KITH_EMALFORMED;
        }
        commits[i].bytes = c->p;
        commits[i].len = (size_t)len;
        c->p += len;
        c->left -= (size_t)len;
    }
    if (!next_fixed(c, b->sig, KITH_SIG_BYTES)) {
        say(why, why_cap, "the %s branch's signature is not a bin of 64 bytes", name);
        return KITH_EMALFORMED;
    }
    b->ncommits = (uint32_t)n;
    b->commits = commits;
    return 0;
}

int
kith__forkproof_decode(const uint8_t *p, size_t len, struct kith__forkproof *out,
                       struct kith__arena *arena, char *why, size_t why_cap)
{
    struct kith__forkproof f;
    struct kith__mp_head h;
    struct kith__mp_cursor c;
    uint64_t v;
    size_t nobjects;
    int rc;

    if (!p || !out || !arena)
        return KITH_EINVAL;
    memset(&f, 0, sizeof f);
    if (len > KITH__FORKPROOF_MAX_BYTES) {
        say(why, why_cap, "a proof of %zu bytes, over %u", len, KITH__FORKPROOF_MAX_BYTES);
        return KITH_ETOOBIG;
    }
    /* the version before the rest: a later format of another shape is not damage */
    if (kith__mp_head(p, len, &h) < 0 || h.type != KITH__MP_ARRAY || h.v == 0) {
        say(why, why_cap, "not a fork proof (no array)");
        return KITH_EMALFORMED;
    }
    c = (struct kith__mp_cursor){p + h.size, len - h.size};
    if (!kith__mp_next(&c, KITH__MP_UINT, &v)) {
        say(why, why_cap, "not a fork proof (no version)");
        return KITH_EMALFORMED;
    }
    if (v != KITH__FORKPROOF_VERSION) {
        say(why, why_cap, "fork proof version %llu is not known to this version",
            (unsigned long long)v);
        return KITH_EVERSION;
    }
    if ((rc = kith__mp_guard(p, len, GUARD_DEPTH, GUARD_OBJECTS, &nobjects)) < 0) {
        say(why, why_cap, "%s",
            rc == KITH_ETOOBIG ? "too many objects for a fork proof"
                               : "not one canonical msgpack object");
        return rc;
    }
    if (h.v != FIELDS) {
        say(why, why_cap, "a fork proof has %u fields, not %llu", FIELDS, (unsigned long long)h.v);
        return KITH_EMALFORMED;
    }
    if (!next_fixed(&c, f.key, KITH_PUBKEY_BYTES)) {
        say(why, why_cap, "the key is not a bin of 32 bytes");
        return KITH_EMALFORMED;
    }
    if (!kith__mp_next(&c, KITH__MP_UINT, &f.c)) {
        say(why, why_cap, "the common seq is not a uint");
        return KITH_EMALFORMED;
    }
    if (!next_fixed(&c, f.base, KITH_HASH_BYTES)) {
        say(why, why_cap, "the base is not a bin of 32 bytes");
        return KITH_EMALFORMED;
    }
    if ((rc = read_branch(&c, "winning", &f.win, arena, why, why_cap)) < 0 ||
        (rc = read_branch(&c, "losing", &f.lose, arena, why, why_cap)) < 0)
        return rc;
    if (c.left != 0) {
        say(why, why_cap, "bytes after the proof"); /* the guard proved one object */
        return KITH_EMALFORMED;
    }
    if (f.c == 0 && !zero32(f.base)) {
        say(why, why_cap, "the base of a fork at seq 1 is not 32 zero bytes");
        return KITH_EMALFORMED;
    }
    kith__chain_next(f.base, f.win.commits[0].bytes, f.win.commits[0].len, f.win.first);
    kith__chain_next(f.base, f.lose.commits[0].bytes, f.lose.commits[0].len, f.lose.first);
    rc = memcmp(f.win.first, f.lose.first, KITH_HASH_BYTES);
    if (rc == 0) {
        say(why, why_cap, "the two histories agree at seq %llu: no fork there",
            (unsigned long long)f.c + 1);
        return KITH_EMALFORMED;
    }
    if (rc > 0) {
        say(why, why_cap, "the branches are not in winner order (lower first chain hash first)");
        return KITH_EMALFORMED;
    }
    f.origin = kith__id_from_pk(f.key);
    *out = f;
    say(why, why_cap, "%s", "");
    return 0;
}

/* ---- checking ------------------------------------------------------------------------- */

/* Recompute branch b's chain and seqs from the base, then check its signature. */
static int
branch_check(const struct kith__forkproof *f, struct kith__fork_branch *b, const char *name,
             struct kith__arena *scratch, char *why, size_t why_cap)
{
    uint8_t h[KITH_HASH_BYTES];
    uint64_t seq = f->c;
    char cwhy[160];
    int rc;

    memcpy(h, f->base, KITH_HASH_BYTES);
    for (uint32_t i = 0; i < b->ncommits; i++) {
        struct kith__commit cm;
        if (seq == UINT64_MAX) {
            say(why, why_cap, "the %s branch runs past seq 2^64 - 1", name);
            return KITH_EMALFORMED;
        }
        kith__arena_reset(scratch);
        rc = kith__commit_decode(b->commits[i].bytes, b->commits[i].len, f->origin, seq + 1, &cm,
                                 scratch, cwhy, sizeof cwhy);
        if (rc == 0 && cm.nops == 0) {
            rc = KITH_EMALFORMED;
            snprintf(cwhy, sizeof cwhy, "empty commit");
        }
        if (rc < 0) {
            if (rc == KITH_ENOMEM)
                return rc;
            say(why, why_cap, "commit %u of the %s branch (seq %llu): %s", i + 1, name,
                (unsigned long long)seq + 1, cwhy[0] ? cwhy : kith_strerror(rc));
            return rc == KITH_ETOOBIG ? rc : KITH_EMALFORMED;
        }
        if (cm.nops - 1 > UINT64_MAX - (seq + 1)) {
            say(why, why_cap, "the %s branch runs past seq 2^64 - 1", name);
            return KITH_EMALFORMED;
        }
        seq += cm.nops;
        kith__chain_next(h, b->commits[i].bytes, b->commits[i].len, h);
    }
    if (kith__head_verify(f->key, f->origin, seq, h, b->sig) < 0) {
        say(why, why_cap, "the %s branch's head at seq %llu does not verify with the origin's key",
            name, (unsigned long long)seq);
        return KITH_EBADSIG;
    }
    b->head_seq = seq;
    memcpy(b->head, h, KITH_HASH_BYTES);
    return 0;
}

int
kith__forkproof_verify(const uint8_t *p, size_t len, struct kith__forkproof *out,
                       struct kith__arena *arena, char *why, size_t why_cap)
{
    struct kith__arena scratch = {0};
    struct kith__forkproof f;
    int rc = kith__forkproof_decode(p, len, &f, arena, why, why_cap);

    if (rc < 0)
        return rc;
    rc = branch_check(&f, &f.win, "winning", &scratch, why, why_cap);
    if (rc == 0)
        rc = branch_check(&f, &f.lose, "losing", &scratch, why, why_cap);
    kith__arena_free(&scratch);
    if (rc < 0)
        return rc;
    *out = f;
    return 0;
}
