/*
 * fuzz_invite.c — libFuzzer target for invite codes (core/invite.c; spec/encoding.md §11).
 * Any text must be refused or decoded without a crash or a read outside it; an accepted code
 * must encode again to a code that decodes to the same invite, and that code must be the
 * canonical form of the input (the same symbols, upper case, grouped by five). A refusal must
 * say why and leave nothing of the secret behind. Seeds: tests/fuzz/corpus/invite/.
 */
#include "invite.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* The input's symbols as the decoder reads them (canonical upper case, no grouping). */
static size_t
symbols_of(const uint8_t *p, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < cap; i++) {
        char c = (char)p[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c == 'I' || c == 'L')
            c = '1';
        if (c == 'O')
            c = '0';
        if (c && strchr(alphabet, c))
            out[k++] = c;
    }
    return k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char code[KITH__INVITE_MAX_CODE], a[2 * KITH__INVITE_MAX_CODE],
        b[2 * KITH__INVITE_MAX_CODE];
    struct kith__invite iv, again;
    char why[256] = "";
    size_t len;

    int rc = kith__invite_decode((const char *)data, size, &iv, why, sizeof why);
    if (rc != 0) {
        static const uint8_t zero[KITH__INVITE_SECRET_BYTES];
        if (why[0] == '\0' || memcmp(iv.secret, zero, sizeof zero) != 0)
            abort(); /* a refusal says why and keeps nothing */
        return 0;
    }
    if (kith__invite_encode(&iv, code, sizeof code, &len) != 0 ||
        kith__invite_decode(code, len, &again, NULL, 0) != 0)
        abort(); /* accepted but not re-encodable */
    if (memcmp(&iv, &again, sizeof iv) != 0)
        abort(); /* the round trip changed the invite */
    size_t na = symbols_of(data, size, a, sizeof a),
           nb = symbols_of((const uint8_t *)code, len, b, sizeof b);
    if (na != nb || memcmp(a, b, na) != 0)
        abort(); /* two codes for one invite */
    return 0;
}
