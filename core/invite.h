/*
 * invite.h — invite codes, the pure part (spec/encoding.md §11 "Invite codes", decisions.md
 * D-14 "Pairing", D-17): what `kith invite` prints and `kith join` reads, encoded and decoded
 * without any I/O, and the JOIN message's MAC. A code carries the inviter's key (so the joiner
 * connects over CURVE to the right device), a one-time secret (which the joiner proves with the
 * MAC), an expiry and the inviter's addresses. It is typed by people, so it is Crockford
 * base32 in groups of five, read case-insensitively with I and L as 1 and O as 0, and it ends
 * with a 4-byte BLAKE2b check: a mistyped character or a flipped bit is refused before any
 * connection is tried.
 *
 * Byte layout of the payload (then base32, then grouped):
 *
 *   offset  size  content
 *   0       1     version: 1 (another is KITH_EVERSION)
 *   1       32    inviter's Ed25519 public key
 *   33      16    secret
 *   49      5     expiry, seconds since 1970, big-endian (40 bits)
 *   54      1     n, the number of addresses, 0..8
 *   55      ...   n addresses, each one of:
 *                   0x04, IPv4 (4), port (2, big-endian)          "tcp://A.B.C.D:PORT"
 *                   0x06, IPv6 (16), port (2, big-endian)         "tcp://[V6]:PORT"
 *                   0x74, length (1, 1..255), that many bytes     any other endpoint, as is
 *   end-4   4     check: the first 4 bytes of BLAKE2b-256("kith-iv1" || every byte before)
 */
#ifndef KITH_INVITE_H
#define KITH_INVITE_H

#include "core.h"

#define KITH__INVITE_VERSION 1
#define KITH__INVITE_SECRET_BYTES 16
#define KITH__INVITE_MAX_ADDRS 8
#define KITH__INVITE_MAX_ENDPOINT 255 /* characters of one address */
#define KITH__INVITE_CHECK_BYTES 4
#define KITH__INVITE_MAX_EXPIRY ((1ull << 40) - 1)
#define KITH__INVITE_CONTEXT "kith-iv1"
/* The largest payload: the fixed part, eight text addresses of 255 characters, the check. */
#define KITH__INVITE_MAX_BYTES (55 + KITH__INVITE_MAX_ADDRS * (2 + KITH__INVITE_MAX_ENDPOINT) + 4)
/* Characters of the longest code with its dashes, and a NUL. */
#define KITH__INVITE_MAX_CODE ((KITH__INVITE_MAX_BYTES * 8 + 4) / 5 * 6 / 5 + 2)

/* One invite, as encoded or decoded. */
struct kith__invite {
    uint8_t inviter[KITH_PUBKEY_BYTES];
    uint8_t secret[KITH__INVITE_SECRET_BYTES];
    uint64_t expiry_s; /* seconds since 1970; at most 2^40 - 1 */
    size_t naddrs;
    char addrs[KITH__INVITE_MAX_ADDRS][KITH__INVITE_MAX_ENDPOINT + 1]; /* NUL-terminated */
};

/*
 * Write the code of `iv` into out (capacity `cap`, NUL-terminated): Crockford base32 in
 * upper case, a dash after every five characters but the last. Its length (without the NUL)
 * goes to *len (may be NULL). Returns 0, KITH_EINVAL (more than 8 addresses, an empty one,
 * one over 255 characters or with a byte outside printable ASCII, an expiry beyond 2^40 - 1),
 * or KITH_ETOOSMALL when cap is short (KITH__INVITE_MAX_CODE is always enough; out NULL with
 * cap 0 asks for the length alone).
 */
int kith__invite_encode(const struct kith__invite *iv, char *out, size_t cap, size_t *len);

/*
 * Read a code of `len` characters. Dashes, spaces, tabs and line breaks are skipped; letters
 * are read in either case, I and L as 1, O as 0. Returns 0 with *out filled, or, with a
 * sentence for the user in `why` (may be NULL): KITH_EMALFORMED (a character outside the
 * alphabet, a length no code has, a check that does not match, a payload that does not
 * parse), KITH_EVERSION (made by a newer kith). Nothing is read outside [code, code + len).
 */
int kith__invite_decode(const char *code, size_t len, struct kith__invite *out, char *why,
                        size_t why_cap);

/*
 * The MAC a joiner proves the secret with (spec/protocol.md NET-30): keyed BLAKE2b-256, key =
 * the secret, over inviter pk || joiner pk || device name.
 */
void kith__invite_mac(const uint8_t secret[KITH__INVITE_SECRET_BYTES],
                      const uint8_t inviter[KITH_PUBKEY_BYTES],
                      const uint8_t joiner[KITH_PUBKEY_BYTES], const char *name, size_t name_len,
                      uint8_t mac[KITH_HASH_BYTES]);

#endif /* KITH_INVITE_H */
