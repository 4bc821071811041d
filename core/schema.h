/*
 * schema.h — schemas as data (core/schema.c, core/types.c): the value-type table, declared
 * collections, fields and indexes, their JSON form (spec/data-model.md "Schema document"),
 * the checks a local write passes, and the compatibility rule for extending a schema.
 *
 * A schema never decides whether a received op is accepted: ops carry their names and their
 * value types (spec/encoding.md "Commit, format 2"), so a replica stores and relays what it
 * has no declaration for. A declaration decides what a local write may do, how a value is
 * read from text, and which indexes the store keeps.
 */
#ifndef KITH_SCHEMA_H
#define KITH_SCHEMA_H

#include "core.h"

/* ---- the value-type table (core/types.c) ------------------------------------------------ */

/* Limits of a declaration (spec/data-model.md "Schema limits"). */
#define KITH__NAME_MAX 64                 /* bytes of a collection, field or index name */
#define KITH__MAX_COLLECTIONS 250         /* collections one schema declares */
#define KITH__MAX_FIELDS 250              /* fields of one collection */
#define KITH__MAX_INDEXES 32              /* indexes of one collection */
#define KITH__MAX_ENUM 256                /* values of one enum */
#define KITH__SCHEMA_MAX_BYTES (1u << 20) /* a schema document */

/* One row per kith_type that a value can have (not KITH_TYPE_SET). */
struct kith__type {
    kith_type type;
    const char *name; /* as in schema documents: "string", "integer", "time", "date",
                         "boolean", "bytes", "enum", "ref"; "null" for KITH_TYPE_NULL */
    /* bytes of the store form's payload (after its type byte), given the value */
    size_t (*stored_size)(const kith_value *v);
    /* write the payload; `out` has stored_size bytes */
    void (*store)(const kith_value *v, uint8_t *out);
    /* read a payload of n bytes: 0 or KITH_ECORRUPT; string-like values are views */
    int (*load)(const uint8_t *p, size_t n, kith_value *v);
    /* order of two values of this type (for indexes and range bounds) */
    int (*cmp)(const kith_value *a, const kith_value *b);
    /* the index-key form: at most `cap` bytes (cap >= 24) written, count returned; strings
       are cut at 400 bytes and end with a 0x00, integers and times are 8 bytes big-endian
       with the sign bit flipped, references 16 bytes, booleans 1 byte */
    size_t (*index_key)(const kith_value *v, uint8_t *out, size_t cap);
    /* text form (the CLI's): parse and format. parse: 0 or KITH_ESCHEMA with a reason in
       why ("not a time"); views point into text. format: NUL-terminated, truncated to cap */
    int (*parse)(const char *text, kith_value *v, char *why, size_t why_cap);
    void (*format)(const kith_value *v, char *out, size_t cap);
    /* the canonical JSON form (spec/export.md): appended to out; 0 or KITH_ENOMEM */
    int (*json)(const kith_value *v, struct kith__wbuf *out);
};

/* The row of a type, NULL for KITH_TYPE_SET and anything unknown. */
const struct kith__type *kith__type_of(kith_type t);
/* The type named `name` in a schema document ("string", ...): 0 or KITH_ENOTFOUND. */
int kith__type_by_name(const char *name, kith_type *out);
/* A value's stored form (type byte, then payload), and back (KITH_ECORRUPT when damaged). */
size_t kith__value_stored_size(const kith_value *v);
void kith__value_store(const kith_value *v, uint8_t *out);
int kith__value_load(const uint8_t *p, size_t n, kith_value *v);
/* Total order over values: by type number first, then by the type's cmp. */
int kith__value_cmp(const kith_value *a, const kith_value *b);
/* Append the canonical JSON form of a value (null for KITH_TYPE_NULL). 0, KITH_ENOMEM, or
 * KITH_EINVAL for a type without a row or text that is not UTF-8 (JSON cannot carry it). */
int kith__value_json(const kith_value *v, struct kith__wbuf *out);
/* Is s[0..len) a date: "YYYY-MM-DD" (year 0001..9999, a day of the Gregorian calendar) or
 * "--MM-DD" (a day of some year)? 0, or KITH_ESCHEMA with the reason in why ("not a date
 * (YYYY-MM-DD or --MM-DD)", "2026-02-30 is not a date"). */
int kith__date_check(const char *s, size_t len, char *why, size_t why_cap);

/* ---- declarations (core/schema.c) ------------------------------------------------------- */

typedef enum kith__crdt {
    KITH__CRDT_LWW = 0,     /* a last-writer-wins register (FIELD_SET ops) */
    KITH__CRDT_SET = 1,     /* an add-wins set of elements (SET_ADD, SET_REMOVE) */
    KITH__CRDT_COUNTER = 2, /* a PN-counter: per-origin totals (COUNTER_ADD) */
    KITH__CRDT_FLAG = 3     /* an enable-wins flag (FLAG_ENABLE, FLAG_DISABLE) */
} kith__crdt;

struct kith__field_decl {
    char *name;
    kith_type type; /* the value type; for a set, its elements' type */
    kith__crdt crdt;
    bool required;
    bool email;     /* "format": "email" */
    size_t max_len; /* strings, bytes, set elements: longest accepted in bytes (0: the
                       encoding's limit) */
    bool has_min, has_max;
    int64_t min, max; /* integers */
    size_t nenum;
    char **enum_values; /* enum: in declared order */
    char *ref;          /* ref (and a set of refs): the collection referred to */
};

struct kith__index_decl {
    char *name;
    uint32_t nparts;   /* 1 or 2 */
    uint32_t parts[2]; /* field positions in the collection (indexes into fields) */
};

struct kith__coll_decl {
    char *name;
    size_t nfields;
    struct kith__field_decl *fields; /* in declared order */
    size_t nindexes;
    struct kith__index_decl *indexes; /* in declared order */
};

struct kith__schema {
    size_t ncoll;
    struct kith__coll_decl *colls; /* in declared order */
};

/*
 * Parse a schema document (spec/data-model.md "Schema document"). Refuses, with a one-line
 * reason in `why` naming the place ("deals.stage: enum without values"): malformed JSON (with
 * its line and column), unknown keys, an unknown type or crdt, a kind the type cannot have (a
 * counter of strings), a ref to a collection neither this document nor `known` declares,
 * duplicate names, names that are not 1..64 of [A-Za-z0-9_] starting with a letter, an index
 * naming a field that does not exist or is not an LWW register, anything over the limits
 * above. `known` may be NULL. Returns 0, KITH_ESCHEMA, KITH_ETOOBIG or KITH_ENOMEM.
 */
int kith__schema_parse(const char *json, size_t len, const struct kith__schema *known,
                       struct kith__schema **out, char *why, size_t why_cap);

/* Build a schema from the public C declaration (kith_collection_def). Same checks. */
int kith__schema_from_defs(const kith_collection_def *colls, size_t n,
                           const struct kith__schema *known, struct kith__schema **out, char *why,
                           size_t why_cap);

/*
 * The union of `base` (may be NULL) and `add`: new collections, fields and indexes are
 * added; a field declared again must keep its type, its crdt and its ref target (KITH_ESCHEMA
 * otherwise, `why` naming the field and both declarations: "deals.amount: declared as
 * integer counter, now string lww"); its constraints (required, max, min, format) take the
 * new values, and an enum's values may only grow. An index declared again must name the same
 * fields. *changed says whether the result differs from base. 0, KITH_ESCHEMA, KITH_ENOMEM.
 */
int kith__schema_merge(const struct kith__schema *base, const struct kith__schema *add,
                       struct kith__schema **out, bool *changed, char *why, size_t why_cap);

/* The canonical JSON form: the document's shape, keys sorted, no spaces, defaults left out,
 * "\n" at the end. Parsing it gives the same schema; equal schemas give equal bytes. */
int kith__schema_json(const struct kith__schema *s, struct kith__wbuf *out);

/* BLAKE2b-256 of the canonical JSON form. */
void kith__schema_digest(const struct kith__schema *s, uint8_t out[KITH_HASH_BYTES]);

void kith__schema_free(struct kith__schema *s);

const struct kith__coll_decl *kith__schema_find(const struct kith__schema *s, const char *name,
                                                size_t len);
const struct kith__field_decl *kith__coll_field(const struct kith__coll_decl *c, const char *name,
                                                size_t len);
const struct kith__index_decl *kith__coll_index(const struct kith__coll_decl *c, const char *name,
                                                size_t len);

/*
 * The checks of a local write (spec/data-model.md "Checks"): for an LWW field, `v` has the
 * field's type or is NULL (refused for a required field), strings are UTF-8 without NUL and
 * at most max_len bytes, a required string is not empty, integers lie in [min, max], enums
 * are one of the values, dates are real dates, times lie in the years 0001..9999, and an
 * email field has one '@' with text on both sides. For a set field, `v` is one element
 * (STRING holding the element's text form; a set of refs: 32 hex digits). Whether a
 * referenced document exists is the store's part. 0 or KITH_ESCHEMA, `why` like
 * "email: must contain one '@' with text on both sides".
 */
int kith__field_check(const struct kith__field_decl *f, const kith_value *v, char *why,
                      size_t why_cap);

/* The built-in CRM schema document (contacts, interactions, reminders). */
extern const char kith__crm_schema_json[];

#endif /* KITH_SCHEMA_H */
