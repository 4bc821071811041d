/*
 * fuzz_text.c — libFuzzer target for the text readers of core/ (spec/data-model.md "Schema"
 * and "Times"): kith__time_parse, kith_value_parse for every field of the schema, and the
 * value checks behind them. Any input must be refused or read without a crash; an accepted
 * time must format and parse back to itself, an accepted value must pass kith__schema_check
 * again, and a string value must be valid UTF-8 without NUL. Seeds: tests/fuzz/corpus/text/.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    int64_t ms;
    if (kith__time_parse(text, &ms) == 0) {
        char out[32];
        int64_t back;
        kith__time_format(ms, out);
        if (kith__time_parse(out, &back) != 0 || back != ms)
            abort(); /* an accepted time does not round-trip */
    }
    size_t ncoll;
    const kith_collection_def *s = kith_schema(&ncoll);
    for (size_t c = 0; c < ncoll; c++)
        for (size_t f = 0; f < s[c].nfields; f++) {
            kith_value v;
            char why[128];
            int rc = kith_value_parse(s[c].name, s[c].fields[f].name, text, &v, why, sizeof why);
            if (rc != 0)
                continue;
            if (s[c].fields[f].type == KITH_TYPE_SET) {
                if (kith__schema_check_elem((int)c, (int)f + 1, v.u.s.ptr, v.u.s.len, NULL, 0) != 0)
                    abort();
                continue;
            }
            if (kith__schema_check((int)c, (int)f + 1, &v, NULL, 0) != 0)
                abort(); /* parse accepted what the check refuses */
            if (v.type == KITH_TYPE_STRING &&
                (!kith__utf8_valid(v.u.s.ptr, v.u.s.len) || memchr(v.u.s.ptr, 0, v.u.s.len)))
                abort();
        }
    free(text);
    return 0;
}
