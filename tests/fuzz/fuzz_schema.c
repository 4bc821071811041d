/*
 * fuzz_schema.c — libFuzzer target for the schema document reader (core/schema.c,
 * spec/data-model.md "Schema document"). Any input must be refused or read without a crash
 * or a leak. An accepted document must write a canonical form that reads back to a schema
 * whose canonical form is the same bytes, with the same digest. The CRM schema is passed as
 * the known schema, so documents may refer to its collections; when the document is
 * compatible with it, the merge of the two must take the document again without a change.
 * Seeds: tests/fuzz/corpus/schema/.
 */
#include "schema.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kith__schema *known;

/* The canonical form of s; aborts when it cannot be written. */
static struct kith__wbuf
canonical(const struct kith__schema *s)
{
    struct kith__wbuf b = {0};
    if (kith__schema_json(s, &b) != 0)
        abort();
    return b;
}

static bool
same(const struct kith__wbuf *a, const struct kith__wbuf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kith__schema *s = NULL, *again = NULL, *merged = NULL;
    char why[256];
    bool changed = true;

    if (!known && kith__schema_parse(kith__crm_schema_json, strlen(kith__crm_schema_json), NULL,
                                     &known, why, sizeof why) != 0)
        abort();
    if (kith__schema_parse((const char *)data, size, known, &s, why, sizeof why) != 0) {
        if (s != NULL || strlen(why) == 0)
            abort(); /* a refusal leaves nothing behind and says why */
        return 0;
    }
    struct kith__wbuf j = canonical(s);
    if (j.len == 0 || j.data[j.len - 1] != '\n' ||
        kith__schema_parse((const char *)j.data, j.len, known, &again, why, sizeof why) != 0)
        abort(); /* the canonical form does not read back */
    struct kith__wbuf j2 = canonical(again);
    if (!same(&j, &j2))
        abort(); /* json(parse(json(s))) != json(s) */
    uint8_t d1[KITH_HASH_BYTES], d2[KITH_HASH_BYTES];
    kith__schema_digest(s, d1);
    kith__schema_digest(again, d2);
    if (memcmp(d1, d2, sizeof d1) != 0)
        abort();
    /* declared over the CRM schema (which it may contradict), then declared again */
    if (kith__schema_merge(known, s, &merged, &changed, why, sizeof why) == 0) {
        struct kith__schema *twice = NULL;
        struct kith__wbuf j3 = canonical(merged);
        if (kith__schema_merge(merged, again, &twice, &changed, why, sizeof why) != 0 || changed)
            abort(); /* a schema is compatible with itself */
        struct kith__wbuf j4 = canonical(twice);
        if (!same(&j3, &j4))
            abort();
        kith__wbuf_free(&j3);
        kith__wbuf_free(&j4);
        kith__schema_free(twice);
        kith__schema_free(merged);
    } else if (merged != NULL) {
        abort();
    }
    kith__wbuf_free(&j);
    kith__wbuf_free(&j2);
    kith__schema_free(again);
    kith__schema_free(s);
    return 0;
}
