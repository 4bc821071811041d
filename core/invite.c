/*
 * invite.c — invite codes (invite.h has the layout; spec/encoding.md §11, decisions.md D-17).
 *
 * A code is read by a person off one screen and typed into another, so everything here is
 * about typing: Crockford's base32 alphabet has no U (no accidental words) and no I, L, O
 * (read as 1, 1, 0), letters are read in either case, and the dashes that group it are
 * skipped like any space. The 4-byte check catches a mistyped character before anything is
 * sent: a code with one wrong character passes it with probability 2^-32. Addresses that are
 * plain IPv4 or IPv6 endpoints take 7 or 19 bytes instead of their text, which keeps a LAN
 * invite at 106 characters (127 with the dashes). The decoding is exact: a payload has one code
 * (padding bits are zero, the length is that of a whole number of bytes), so every character
 * counts.
 */
#include "invite.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXED_BYTES 55 /* version, inviter, secret, expiry, count */
#define KIND_V4 0x04
#define KIND_V6 0x06
#define KIND_TEXT 0x74

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

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

/* The value of a typed character: 0..31, -1 to skip it (grouping), -2 when it is none. */
static int
symbol(char c)
{
    if (c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r')
        return -1;
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    if (c == 'I' || c == 'L')
        c = '1';
    else if (c == 'O')
        c = '0';
    for (int i = 0; i < 32; i++)
        if (alphabet[i] == c)
            return i;
    return -2;
}

static void
check_of(const uint8_t *p, size_t n, uint8_t out[KITH__INVITE_CHECK_BYTES])
{
    crypto_generichash_state st;
    uint8_t h[KITH_HASH_BYTES];
    /* libsodium fails these only for an output length outside 16..64 bytes */
    (void)crypto_generichash_init(&st, NULL, 0, sizeof h);
    (void)crypto_generichash_update(&st, (const uint8_t *)KITH__INVITE_CONTEXT, 8);
    (void)crypto_generichash_update(&st, p, n);
    (void)crypto_generichash_final(&st, h, sizeof h);
    memcpy(out, h, KITH__INVITE_CHECK_BYTES);
}

/* Is `ep` a plain "tcp://A.B.C.D:PORT" or "tcp://[V6]:PORT" whose address and port print
 * back as the same text? Then its kind and bytes (address, then port) go to kind/bytes. */
static bool
compact(const char *ep, uint8_t *kind, uint8_t bytes[18], size_t *nbytes)
{
    char host[64], again[128], text[INET6_ADDRSTRLEN];
    const char *h, *colon;
    unsigned long port;
    char *end;
    bool v6;

    if (strncmp(ep, "tcp://", 6) != 0)
        return false;
    h = ep + 6;
    v6 = h[0] == '[';
    colon = v6 ? strstr(h, "]:") : strrchr(h, ':');
    if (!colon)
        return false;
    size_t hlen = (size_t)(colon - h) - (v6 ? 1 : 0);
    if (hlen == 0 || hlen >= sizeof host)
        return false;
    memcpy(host, h + (v6 ? 1 : 0), hlen);
    host[hlen] = '\0';
    const char *ps = colon + (v6 ? 2 : 1);
    if (*ps < '1' || *ps > '9')
        return false; /* no sign, no leading zero, no empty port */
    port = strtoul(ps, &end, 10);
    if (*end != '\0' || port > 65535)
        return false;
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, bytes) != 1 ||
        !inet_ntop(v6 ? AF_INET6 : AF_INET, bytes, text, sizeof text))
        return false;
    snprintf(again, sizeof again, v6 ? "tcp://[%s]:%lu" : "tcp://%s:%lu", text, port);
    if (strcmp(again, ep) != 0)
        return false; /* not canonical text: it travels as text, byte for byte */
    size_t alen = v6 ? 16 : 4;
    bytes[alen] = (uint8_t)(port >> 8);
    bytes[alen + 1] = (uint8_t)port;
    *nbytes = alen + 2;
    *kind = v6 ? KIND_V6 : KIND_V4;
    return true;
}

/* Is this an endpoint a code can carry as text: 1..255 bytes of printable ASCII? */
static bool
printable(const char *ep, size_t n)
{
    if (n == 0 || n > KITH__INVITE_MAX_ENDPOINT)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ep[i] < 0x21 || ep[i] > 0x7e)
            return false;
    return true;
}

int
kith__invite_encode(const struct kith__invite *iv, char *out, size_t cap, size_t *len)
{
    uint8_t p[KITH__INVITE_MAX_BYTES];
    size_t n = 0, chars = 0, need;

    if (!iv || (!out && cap) || iv->naddrs > KITH__INVITE_MAX_ADDRS ||
        iv->expiry_s > KITH__INVITE_MAX_EXPIRY)
        return KITH_EINVAL;
    p[n++] = KITH__INVITE_VERSION;
    memcpy(p + n, iv->inviter, KITH_PUBKEY_BYTES);
    n += KITH_PUBKEY_BYTES;
    memcpy(p + n, iv->secret, KITH__INVITE_SECRET_BYTES);
    n += KITH__INVITE_SECRET_BYTES;
    for (int i = 4; i >= 0; i--)
        p[n++] = (uint8_t)(iv->expiry_s >> (8 * i));
    p[n++] = (uint8_t)iv->naddrs;
    for (size_t i = 0; i < iv->naddrs; i++) {
        const char *ep = iv->addrs[i];
        size_t elen = strnlen(ep, KITH__INVITE_MAX_ENDPOINT + 1), nb;
        uint8_t kind, bytes[18];
        if (!printable(ep, elen))
            return KITH_EINVAL;
        if (compact(ep, &kind, bytes, &nb)) {
            p[n++] = kind;
            memcpy(p + n, bytes, nb);
            n += nb;
        } else {
            p[n++] = KIND_TEXT;
            p[n++] = (uint8_t)elen;
            memcpy(p + n, ep, elen);
            n += elen;
        }
    }
    check_of(p, n, p + n);
    n += KITH__INVITE_CHECK_BYTES;

    size_t symbols = (n * 8 + 4) / 5;
    need = symbols + (symbols - 1) / 5 + 1;
    if (len)
        *len = need - 1;
    if (cap < need)
        return KITH_ETOOSMALL;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0, s = 0; s < symbols; s++) {
        while (bits < 5) {
            acc = (acc << 8) | (i < n ? p[i] : 0);
            i++;
            bits += 8;
        }
        if (s > 0 && s % 5 == 0)
            out[chars++] = '-';
        out[chars++] = alphabet[(acc >> (bits - 5)) & 31u];
        bits -= 5;
    }
    out[chars] = '\0';
    return 0;
}

/* Parse the payload p[0 .. n) (check already verified) into *out. */
static int
parse(const uint8_t *p, size_t n, struct kith__invite *out, char *why, size_t why_cap)
{
    size_t off = FIXED_BYTES;

    if (n < FIXED_BYTES) {
        say(why, why_cap, "the code is too short to be an invite");
        return KITH_EMALFORMED;
    }
    if (p[0] != KITH__INVITE_VERSION) {
        say(why, why_cap,
            "the code is of invite version %u, made by a newer kith: upgrade this one", p[0]);
        return KITH_EVERSION;
    }
    memcpy(out->inviter, p + 1, KITH_PUBKEY_BYTES);
    memcpy(out->secret, p + 33, KITH__INVITE_SECRET_BYTES);
    out->expiry_s = 0;
    for (int i = 0; i < 5; i++)
        out->expiry_s = (out->expiry_s << 8) | p[49 + i];
    out->naddrs = p[54];
    if (out->naddrs > KITH__INVITE_MAX_ADDRS) {
        say(why, why_cap, "the code names %zu addresses, more than %d", out->naddrs,
            KITH__INVITE_MAX_ADDRS);
        return KITH_EMALFORMED;
    }
    for (size_t i = 0; i < out->naddrs; i++) {
        char *ep = out->addrs[i], text[INET6_ADDRSTRLEN];
        if (off >= n)
            goto out_short;
        uint8_t kind = p[off++];
        if (kind == KIND_V4 || kind == KIND_V6) {
            size_t alen = kind == KIND_V6 ? 16 : 4;
            if (n - off < alen + 2)
                goto out_short;
            unsigned port = (unsigned)p[off + alen] << 8 | p[off + alen + 1];
            if (port == 0 ||
                !inet_ntop(kind == KIND_V6 ? AF_INET6 : AF_INET, p + off, text, sizeof text)) {
                say(why, why_cap, "address %zu of the code has port 0", i + 1);
                return KITH_EMALFORMED;
            }
            snprintf(ep, KITH__INVITE_MAX_ENDPOINT + 1,
                     kind == KIND_V6 ? "tcp://[%s]:%u" : "tcp://%s:%u", text, port);
            off += alen + 2;
        } else if (kind == KIND_TEXT) {
            if (off >= n || n - off - 1 < p[off])
                goto out_short;
            size_t elen = p[off++];
            if (!printable((const char *)p + off, elen)) {
                say(why, why_cap, "address %zu of the code is not printable text", i + 1);
                return KITH_EMALFORMED;
            }
            memcpy(ep, p + off, elen);
            ep[elen] = '\0';
            off += elen;
        } else {
            say(why, why_cap, "address %zu of the code is of an unknown kind (%u)", i + 1, kind);
            return KITH_EMALFORMED;
        }
    }
    if (off != n) {
        say(why, why_cap, "the code has %zu bytes after its addresses", n - off);
        return KITH_EMALFORMED;
    }
    return 0;
out_short:
    say(why, why_cap, "the code ends inside its addresses");
    return KITH_EMALFORMED;
}

int
kith__invite_decode(const char *code, size_t len, struct kith__invite *out, char *why,
                    size_t why_cap)
{
    uint8_t p[KITH__INVITE_MAX_BYTES], check[KITH__INVITE_CHECK_BYTES];
    size_t n = 0, symbols = 0;
    uint32_t acc = 0;
    int bits = 0, rc;

    if (!out)
        return KITH_EINVAL;
    memset(out, 0, sizeof(*out));
    if (!code) {
        say(why, why_cap, "no code given");
        return KITH_EMALFORMED;
    }
    for (size_t i = 0; i < len; i++) {
        int v = symbol(code[i]);
        if (v == -1)
            continue;
        if (v == -2) {
            unsigned char c = (unsigned char)code[i];
            if (c >= 0x20 && c < 0x7f)
                say(why, why_cap, "the code cannot hold '%c' (character %zu): it is mistyped", c,
                    i + 1);
            else
                say(why, why_cap, "the code cannot hold byte 0x%02x (at %zu): it is mistyped", c,
                    i + 1);
            return KITH_EMALFORMED;
        }
        if (n == sizeof p) {
            say(why, why_cap, "the code is longer than any invite");
            return KITH_EMALFORMED;
        }
        symbols++;
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            p[n++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    /* the padding is the zero bits of the last symbol, fewer than five: a symbol more or less,
     * or padding that is not zero, is a character typed wrong */
    if (symbols != (n * 8 + 4) / 5 || (acc & ((1u << bits) - 1)) != 0 ||
        n < FIXED_BYTES + KITH__INVITE_CHECK_BYTES) {
        say(why, why_cap,
            "the code is %zu characters long, which no invite is: a character is missing, "
            "doubled or mistyped",
            symbols);
        return KITH_EMALFORMED;
    }
    n -= KITH__INVITE_CHECK_BYTES;
    check_of(p, n, check);
    if (sodium_memcmp(check, p + n, KITH__INVITE_CHECK_BYTES) != 0) {
        say(why, why_cap, "the code's check does not match: a character is mistyped");
        return KITH_EMALFORMED;
    }
    rc = parse(p, n, out, why, why_cap);
    if (rc < 0)
        sodium_memzero(out, sizeof(*out)); /* nothing half decoded, no secret left behind */
    sodium_memzero(p, sizeof p);
    return rc;
}

void
kith__invite_mac(const uint8_t secret[KITH__INVITE_SECRET_BYTES],
                 const uint8_t inviter[KITH_PUBKEY_BYTES], const uint8_t joiner[KITH_PUBKEY_BYTES],
                 const char *name, size_t name_len, uint8_t mac[KITH_HASH_BYTES])
{
    crypto_generichash_state st;
    (void)crypto_generichash_init(&st, secret, KITH__INVITE_SECRET_BYTES, KITH_HASH_BYTES);
    (void)crypto_generichash_update(&st, inviter, KITH_PUBKEY_BYTES);
    (void)crypto_generichash_update(&st, joiner, KITH_PUBKEY_BYTES);
    (void)crypto_generichash_update(&st, (const uint8_t *)name, name_len);
    (void)crypto_generichash_final(&st, mac, KITH_HASH_BYTES);
    sodium_memzero(&st, sizeof st);
}
