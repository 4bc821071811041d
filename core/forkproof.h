/*
 * forkproof.h — the fork proof, the pure part (spec/encoding.md §10 "Fork proofs",
 * spec/data-model.md FORK-4 .. FORK-9, decisions.md D-18): two histories of one origin, each
 * signed by it, that part at one seq. A proof is checked from its own bytes: the origin's
 * public key is in it (the origin id is derived from the key), and a receiver recomputes both
 * chains from the hash they share and checks both signatures. Nothing here reads a clock, a
 * file or randomness; the store builds proofs from its log (store/proofs.c) and keeps them.
 *
 * Byte layout (canonical msgpack, spec/encoding.md §1):
 *
 *   proof = fixarray(8) [ 1, key, c, base, win_commits, win_sig, lose_commits, lose_sig ]
 *   1            uint     the format version; another is KITH_EVERSION
 *   key          bin(32)  the origin's Ed25519 public key; origin = kith__id_from_pk(key)
 *   c            uint     the last seq both histories hold alike (0: they part at seq 1)
 *   base         bin(32)  the chain hash after seq c (32 zero bytes when c is 0)
 *   *_commits    array of bin, 1 .. KITH__FORKPROOF_MAX_COMMITS: the branch's commits from
 *                seq c + 1 on, each in its canonical encoding, ending at the signed head
 *   *_sig        bin(64)  the origin's head signature (spec/encoding.md SIG-1) over the
 *                branch's last seq and the chain hash after its last commit
 *
 * The two first commits differ; the winner (D-14) is the branch whose first commit gives the
 * lower chain hash, compared bytewise, and it comes first, so that one fork has one layout
 * whichever replica built it. A fork is named by (origin, c, winner's first chain hash,
 * loser's first chain hash): two proofs with the same name are the same fork, shown with
 * different signed heads.
 */
#ifndef KITH_FORKPROOF_H
#define KITH_FORKPROOF_H

#include "core.h"

#define KITH__FORKPROOF_VERSION 1u
#define KITH__FORKPROOF_MAX_BYTES (4u << 20) /* bytes of one encoded proof */
#define KITH__FORKPROOF_MAX_COMMITS 4096u    /* commits in one branch */
#define KITH__FORKPROOF_NAME_BYTES (8 + 8 + KITH_HASH_BYTES + KITH_HASH_BYTES)

/* One commit of a branch: a view into the proof's bytes or into the builder's memory. */
struct kith__fork_commit {
    const uint8_t *bytes;
    size_t len;
};

/* One of the two histories from seq c + 1 to a head the origin signed. */
struct kith__fork_branch {
    uint32_t ncommits;
    const struct kith__fork_commit *commits;
    uint8_t sig[KITH_SIG_BYTES];
    /* filled by encode, decode and verify: */
    uint8_t first[KITH_HASH_BYTES]; /* the chain hash after the first commit */
    /* filled by verify: */
    uint64_t head_seq;             /* the last seq of the last commit: what sig covers */
    uint8_t head[KITH_HASH_BYTES]; /* the chain hash after it */
};

struct kith__forkproof {
    uint8_t key[KITH_PUBKEY_BYTES];
    uint64_t origin; /* decode and verify fill it from key; encode ignores it */
    uint64_t c;
    uint8_t base[KITH_HASH_BYTES];
    struct kith__fork_branch win, lose; /* encode takes them in either order */
};

/* Does the branch whose first commit gives chain hash `a` win over the one giving `b`
 * (D-14, FORK-6)? The lower hash, bytewise. */
bool kith__fork_wins(const uint8_t a[KITH_HASH_BYTES], const uint8_t b[KITH_HASH_BYTES]);

/*
 * Append the canonical encoding of `p` to `out`: the branches are put in winner order (the
 * caller's `win` and `lose` may be either), their `first` hashes computed. Nothing is
 * signed or verified here. 0, KITH_EINVAL (a branch empty, the two first commits equal, c 0
 * with a base not zero, a branch over the commit limit), KITH_ETOOBIG (over
 * KITH__FORKPROOF_MAX_BYTES), KITH_ENOMEM; `why` (may be NULL) gets a one-line reason. On
 * failure `out` is as it was.
 */
int kith__forkproof_encode(const struct kith__forkproof *p, struct kith__wbuf *out, char *why,
                           size_t why_cap);

/*
 * Decode a proof of `len` bytes without checking its chains or signatures: structure,
 * canonical msgpack, limits, the version, the two first commits different and in winner
 * order, base zero when c is 0. The branches' commit arrays come from `arena`, their bytes
 * are views into `p`; `first` is filled. 0, KITH_EMALFORMED, KITH_ETOOBIG, KITH_EVERSION,
 * KITH_ENOMEM, with a one-line reason in `why`.
 */
int kith__forkproof_decode(const uint8_t *p, size_t len, struct kith__forkproof *out,
                           struct kith__arena *arena, char *why, size_t why_cap);

/*
 * Decode, then check the proof as FORK-5 says: each branch's commits decode as commits of
 * the origin from seq c + 1 on, and the origin's key verifies each branch's signature over
 * its last seq and the chain hash recomputed from base over its commits. Fills head_seq and
 * head. 0; KITH_EBADSIG (a signature does not verify); decode's errors, and KITH_EMALFORMED
 * or KITH_ETOOBIG for a commit that does not decode (or seqs past 2^64 - 1); a one-line
 * reason in `why`.
 */
int kith__forkproof_verify(const uint8_t *p, size_t len, struct kith__forkproof *out,
                           struct kith__arena *arena, char *why, size_t why_cap);

/* The fork's name (FORK-7): origin(8, BE) | c(8, BE) | win.first | lose.first, of a proof
 * decoded (or encoded: encode does not fill the struct, so call it on a decoded one). */
void kith__forkproof_name(const struct kith__forkproof *p, uint8_t out[KITH__FORKPROOF_NAME_BYTES]);

#endif /* KITH_FORKPROOF_H */
