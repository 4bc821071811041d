/*
 * test_invite.c — invite codes (core/invite.c; spec/encoding.md §11, INV-1..INV-4): generated
 * invites round-trip through their code; every code with one character changed, dropped or
 * doubled, and every payload with one bit flipped, is refused before anything connects; the
 * typing rules (case, I/L/O, dashes and spaces) read the same invite; the bounds of every
 * field; and the JOIN MAC covers both keys and the name. KITH_SEED replays a run, KITH_CASES
 * scales it.
 */
#include "invite.h"
#include "kith_test.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* A random invite: any key, secret and expiry, 0..8 addresses of every kind. */
static void
gen_invite(uint64_t *st, struct kith__invite *iv)
{
    memset(iv, 0, sizeof *iv);
    for (int i = 0; i < KITH_PUBKEY_BYTES; i++)
        iv->inviter[i] = (uint8_t)kt_below(st, 256);
    for (int i = 0; i < KITH__INVITE_SECRET_BYTES; i++)
        iv->secret[i] = (uint8_t)kt_below(st, 256);
    iv->expiry_s = kt_below(st, 3) == 0 ? kt_below(st, KITH__INVITE_MAX_EXPIRY + 1)
                                        : 1700000000 + kt_below(st, 100000000);
    iv->naddrs = (size_t)kt_below(st, KITH__INVITE_MAX_ADDRS + 1);
    for (size_t i = 0; i < iv->naddrs; i++) {
        char *ep = iv->addrs[i];
        unsigned port = 1 + (unsigned)kt_below(st, 65535);
        switch (kt_below(st, 4)) {
        case 0:
            snprintf(ep, sizeof iv->addrs[i], "tcp://%u.%u.%u.%u:%u", (unsigned)kt_below(st, 256),
                     (unsigned)kt_below(st, 256), (unsigned)kt_below(st, 256),
                     (unsigned)kt_below(st, 256), port);
            break;
        case 1:
            snprintf(ep, sizeof iv->addrs[i], "tcp://[fe80::%x:%x]:%u",
                     1 + (unsigned)kt_below(st, 0xfffe), 1 + (unsigned)kt_below(st, 0xfffe), port);
            break;
        case 2:
            snprintf(ep, sizeof iv->addrs[i], "tcp://device-%u.local:%u",
                     (unsigned)kt_below(st, 1000), port);
            break;
        default: {
            /* any printable text, of any length up to the limit */
            size_t n = 1 + (size_t)kt_below(st, KITH__INVITE_MAX_ENDPOINT);
            for (size_t j = 0; j < n; j++)
                ep[j] = (char)(0x21 + kt_below(st, 0x7e - 0x21 + 1));
            ep[n] = '\0';
        }
        }
    }
}

static void
expect_same(const struct kith__invite *a, const struct kith__invite *b)
{
    cr_assert_arr_eq(a->inviter, b->inviter, KITH_PUBKEY_BYTES);
    cr_assert_arr_eq(a->secret, b->secret, KITH__INVITE_SECRET_BYTES);
    cr_assert_eq(a->expiry_s, b->expiry_s);
    cr_assert_eq(a->naddrs, b->naddrs);
    for (size_t i = 0; i < a->naddrs; i++)
        cr_assert_str_eq(a->addrs[i], b->addrs[i]);
}

/* The symbols of a code, without its dashes. */
static size_t
bare(const char *code, char *out)
{
    size_t n = 0;
    for (; *code; code++)
        if (*code != '-')
            out[n++] = *code;
    out[n] = '\0';
    return n;
}

/* proves INV-1 */
Test(invite, generated_invites_round_trip)
{
    uint64_t st = kt_seed();
    int cases = kt_cases(500);
    for (int c = 0; c < cases; c++) {
        struct kith__invite iv, back;
        char code[KITH__INVITE_MAX_CODE], why[200];
        size_t len;
        gen_invite(&st, &iv);
        cr_assert_eq(kith__invite_encode(&iv, code, sizeof code, &len), 0, "case %d", c);
        cr_assert_eq(strlen(code), len);
        /* groups of five, upper case, the alphabet only */
        for (size_t i = 0; i < len; i++) {
            if (i % 6 == 5)
                cr_assert_eq(code[i], '-', "case %d: a dash at %zu", c, i);
            else
                cr_assert(strchr(alphabet, code[i]) && code[i], "case %d: '%c'", c, code[i]);
        }
        cr_assert_neq(code[len - 1], '-');
        int rc = kith__invite_decode(code, len, &back, why, sizeof why);
        cr_assert_eq(rc, 0, "case %d: %s", c, why);
        expect_same(&iv, &back);
    }
}

/* A LAN invite with one IPv4 address is 66 bytes: 106 symbols, 127 characters with the
 * dashes. */
/* proves INV-1 */
Test(invite, a_lan_invite_is_short)
{
    struct kith__invite iv = {0};
    char code[KITH__INVITE_MAX_CODE];
    size_t len;
    iv.expiry_s = 1764093600;
    iv.naddrs = 1;
    snprintf(iv.addrs[0], sizeof iv.addrs[0], "tcp://192.168.178.20:7461");
    cr_assert_eq(kith__invite_encode(&iv, code, sizeof code, &len), 0);
    cr_assert_eq(len, 127, "%zu: %s", len, code);
}

/* Every code with one character replaced by any other symbol, removed, or doubled is
 * refused, with a reason. */
/* proves INV-2 */
Test(invite, every_single_character_change_is_refused)
{
    uint64_t st = kt_seed();
    int cases = kt_cases(6);
    for (int c = 0; c < cases; c++) {
        struct kith__invite iv, back;
        char code[KITH__INVITE_MAX_CODE], b[KITH__INVITE_MAX_CODE], t[KITH__INVITE_MAX_CODE + 1];
        char why[200];
        gen_invite(&st, &iv);
        if (iv.naddrs > 2)
            iv.naddrs = 2; /* keeps the 31 x length cases quick */
        cr_assert_eq(kith__invite_encode(&iv, code, sizeof code, NULL), 0);
        size_t n = bare(code, b);
        for (size_t i = 0; i < n; i++) {
            for (int k = 0; k < 32; k++) {
                if (alphabet[k] == b[i])
                    continue;
                memcpy(t, b, n + 1);
                t[i] = alphabet[k];
                why[0] = '\0';
                cr_assert_eq(kith__invite_decode(t, n, &back, why, sizeof why), KITH_EMALFORMED,
                             "case %d: '%c' at %zu for '%c' passed", c, alphabet[k], i, b[i]);
                cr_assert(why[0], "a reason");
                static const uint8_t zero[KITH__INVITE_SECRET_BYTES];
                cr_assert_arr_eq(back.secret, zero, sizeof zero, "nothing left behind");
            }
            /* dropped */
            memcpy(t, b, i);
            memcpy(t + i, b + i + 1, n - i);
            cr_assert_eq(kith__invite_decode(t, n - 1, &back, NULL, 0), KITH_EMALFORMED);
            /* doubled */
            memcpy(t, b, i + 1);
            memcpy(t + i + 1, b + i, n - i + 1);
            cr_assert_eq(kith__invite_decode(t, n + 1, &back, NULL, 0), KITH_EMALFORMED);
        }
    }
}

/* One bit flipped anywhere in the 5-bit symbols, as a damaged copy would have it. */
/* proves INV-2 */
Test(invite, every_flipped_bit_is_refused)
{
    uint64_t st = kt_seed();
    int cases = kt_cases(20);
    for (int c = 0; c < cases; c++) {
        struct kith__invite iv, back;
        char code[KITH__INVITE_MAX_CODE], b[KITH__INVITE_MAX_CODE];
        gen_invite(&st, &iv);
        cr_assert_eq(kith__invite_encode(&iv, code, sizeof code, NULL), 0);
        size_t n = bare(code, b);
        for (size_t i = 0; i < n; i++) {
            int v = (int)(strchr(alphabet, b[i]) - alphabet);
            for (int bit = 0; bit < 5; bit++) {
                char keep = b[i];
                b[i] = alphabet[v ^ (1 << bit)];
                cr_assert_eq(kith__invite_decode(b, n, &back, NULL, 0), KITH_EMALFORMED,
                             "case %d: bit %d of symbol %zu", c, bit, i);
                b[i] = keep;
            }
        }
    }
}

/* Typing: lower case, I and L for 1, O for 0, dashes and spaces anywhere read the same. */
/* proves INV-3 */
Test(invite, typing_variants_read_the_same_invite)
{
    uint64_t st = kt_seed();
    for (int c = 0; c < 50; c++) {
        struct kith__invite iv, back;
        char code[KITH__INVITE_MAX_CODE], typed[2 * KITH__INVITE_MAX_CODE];
        gen_invite(&st, &iv);
        cr_assert_eq(kith__invite_encode(&iv, code, sizeof code, NULL), 0);
        size_t n = 0;
        for (const char *p = code; *p; p++) {
            char ch = *p;
            if (ch == '-') {
                typed[n++] = kt_below(&st, 2) ? ' ' : '-';
                continue;
            }
            if (ch == '1' && kt_below(&st, 2))
                ch = kt_below(&st, 2) ? 'I' : 'l';
            else if (ch == '0' && kt_below(&st, 2))
                ch = kt_below(&st, 2) ? 'O' : 'o';
            else if (ch >= 'A' && ch <= 'Z' && kt_below(&st, 2))
                ch = (char)(ch - 'A' + 'a');
            typed[n++] = ch;
            if (kt_below(&st, 20) == 0)
                typed[n++] = kt_below(&st, 2) ? '\n' : '\t';
        }
        cr_assert_eq(kith__invite_decode(typed, n, &back, NULL, 0), 0, "%.*s", (int)n, typed);
        expect_same(&iv, &back);
    }
    /* U is not in the alphabet, nor is any punctuation */
    char why[200];
    struct kith__invite back;
    cr_assert_eq(kith__invite_decode("ABCDU", 5, &back, why, sizeof why), KITH_EMALFORMED);
    cr_assert(strstr(why, "'U'"), "%s", why);
    cr_assert_eq(kith__invite_decode("ABC.D", 5, &back, why, sizeof why), KITH_EMALFORMED);
    cr_assert_eq(kith__invite_decode("", 0, &back, why, sizeof why), KITH_EMALFORMED);
    cr_assert_eq(kith__invite_decode(NULL, 0, &back, why, sizeof why), KITH_EMALFORMED);
}

/* A code whose check holds but whose payload says another version or does not parse.
 * Built here the way the encoder builds one, with a payload the encoder would never write. */
static size_t
forge(const uint8_t *p, size_t n, char *out)
{
    uint8_t buf[KITH__INVITE_MAX_BYTES], h[32];
    crypto_generichash_state s;
    memcpy(buf, p, n);
    crypto_generichash_init(&s, NULL, 0, 32);
    crypto_generichash_update(&s, (const uint8_t *)"kith-iv1", 8);
    crypto_generichash_update(&s, buf, n);
    crypto_generichash_final(&s, h, 32);
    memcpy(buf + n, h, 4);
    n += 4;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; k < (n * 8 + 4) / 5;) {
        while (bits < 5) {
            acc = (acc << 8) | (i < n ? buf[i] : 0);
            i++;
            bits += 8;
        }
        out[k++] = alphabet[(acc >> (bits - 5)) & 31];
        bits -= 5;
    }
    out[k] = '\0';
    return k;
}

/* proves INV-1, INV-4 */
Test(invite, bounds_of_every_field)
{
    struct kith__invite iv = {0}, back;
    char code[KITH__INVITE_MAX_CODE], why[200];
    size_t len;

    /* the largest invite fits KITH__INVITE_MAX_CODE exactly or under */
    iv.expiry_s = KITH__INVITE_MAX_EXPIRY;
    iv.naddrs = KITH__INVITE_MAX_ADDRS;
    for (size_t i = 0; i < iv.naddrs; i++) {
        memset(iv.addrs[i], 'x', KITH__INVITE_MAX_ENDPOINT);
        iv.addrs[i][KITH__INVITE_MAX_ENDPOINT] = '\0';
    }
    cr_assert_eq(kith__invite_encode(&iv, code, sizeof code, &len), 0);
    cr_assert_lt(len, sizeof code);
    cr_assert_eq(kith__invite_decode(code, len, &back, why, sizeof why), 0, "%s", why);
    expect_same(&iv, &back);
    cr_assert_eq(kith__invite_encode(&iv, code, len, NULL), KITH_ETOOSMALL, "no room for NUL");

    /* beyond the bounds: refused by the encoder */
    iv.naddrs = KITH__INVITE_MAX_ADDRS + 1;
    cr_assert_eq(kith__invite_encode(&iv, code, sizeof code, NULL), KITH_EINVAL);
    iv.naddrs = 1;
    iv.expiry_s = KITH__INVITE_MAX_EXPIRY + 1;
    cr_assert_eq(kith__invite_encode(&iv, code, sizeof code, NULL), KITH_EINVAL);
    iv.expiry_s = 0;
    iv.addrs[0][0] = '\0';
    cr_assert_eq(kith__invite_encode(&iv, code, sizeof code, NULL), KITH_EINVAL, "empty address");
    snprintf(iv.addrs[0], sizeof iv.addrs[0], "tcp://a b:1");
    cr_assert_eq(kith__invite_encode(&iv, code, sizeof code, NULL), KITH_EINVAL, "a space");
    /* no address at all is a valid invite (the joiner passes one) */
    iv.naddrs = 0;
    cr_assert_eq(kith__invite_encode(&iv, code, sizeof code, &len), 0);
    cr_assert_eq(kith__invite_decode(code, len, &back, NULL, 0), 0);
    cr_assert_eq(back.naddrs, 0);

    /* text that looks like an address but is not canonical travels as it is */
    const char *texts[] = {"tcp://010.0.0.1:7461", "tcp://1.2.3.4:07461", "tcp://1.2.3.4:65536",
                           "tcp://[::1]:80",       "tcp://[::01]:80",     "ipc:///run/kith.sock",
                           "tcp://*:7461"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        iv.naddrs = 1;
        snprintf(iv.addrs[0], sizeof iv.addrs[0], "%s", texts[i]);
        cr_assert_eq(kith__invite_encode(&iv, code, sizeof code, &len), 0, "%s", texts[i]);
        cr_assert_eq(kith__invite_decode(code, len, &back, NULL, 0), 0);
        cr_assert_str_eq(back.addrs[0], texts[i]);
    }

    /* payloads no encoder writes, with a valid check */
    uint8_t p[200] = {0};
    p[0] = 2; /* a newer version */
    len = forge(p, 55, code);
    cr_assert_eq(kith__invite_decode(code, len, &back, why, sizeof why), KITH_EVERSION);
    cr_assert(strstr(why, "newer kith"), "%s", why);
    p[0] = 1;
    p[54] = 9; /* nine addresses */
    len = forge(p, 55, code);
    cr_assert_eq(kith__invite_decode(code, len, &back, why, sizeof why), KITH_EMALFORMED);
    p[54] = 1; /* one address, not there */
    len = forge(p, 55, code);
    cr_assert_eq(kith__invite_decode(code, len, &back, why, sizeof why), KITH_EMALFORMED);
    p[55] = 0x04; /* IPv4 with port 0 */
    len = forge(p, 62, code);
    cr_assert_eq(kith__invite_decode(code, len, &back, why, sizeof why), KITH_EMALFORMED);
    p[61] = 80; /* IPv4 0.0.0.0:80 is well formed; one byte after it is not */
    len = forge(p, 62, code);
    cr_assert_eq(kith__invite_decode(code, len, &back, why, sizeof why), 0, "%s", why);
    cr_assert_str_eq(back.addrs[0], "tcp://0.0.0.0:80");
    len = forge(p, 63, code);
    cr_assert_eq(kith__invite_decode(code, len, &back, why, sizeof why), KITH_EMALFORMED);
    p[55] = 0x74; /* text of 6 bytes holding a control character */
    p[56] = 6;
    memcpy(p + 57, "ab\ncde", 6);
    len = forge(p, 63, code);
    cr_assert_eq(kith__invite_decode(code, len, &back, why, sizeof why), KITH_EMALFORMED);
    p[55] = 0x05; /* an unknown kind */
    len = forge(p, 63, code);
    cr_assert_eq(kith__invite_decode(code, len, &back, why, sizeof why), KITH_EMALFORMED);
    cr_assert(strstr(why, "unknown kind"), "%s", why);
}

/* The JOIN MAC depends on the secret, both keys and the name. */
/* proves NET-30 */
Test(invite, join_mac_covers_secret_keys_and_name)
{
    uint8_t s[16] = {1}, a[32] = {2}, b[32] = {3}, m0[32], m1[32];
    kith__invite_mac(s, a, b, "phone", 5, m0);
    kith__invite_mac(s, a, b, "phone", 5, m1);
    cr_assert_arr_eq(m0, m1, 32);
    s[15] ^= 1;
    kith__invite_mac(s, a, b, "phone", 5, m1);
    cr_assert(memcmp(m0, m1, 32) != 0);
    s[15] ^= 1;
    kith__invite_mac(s, b, a, "phone", 5, m1);
    cr_assert(memcmp(m0, m1, 32) != 0, "keys in order");
    kith__invite_mac(s, a, b, "phonf", 5, m1);
    cr_assert(memcmp(m0, m1, 32) != 0);
}
