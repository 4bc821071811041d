/*
 * schema_int.h — what the files of the schema module share among themselves and no one else
 * calls: core/schema.c (reading documents and C tables), core/schema_merge.c (extending a
 * schema) and core/schema_json.c (the canonical form and the digest).
 */
#ifndef KITH_SCHEMA_INT_H
#define KITH_SCHEMA_INT_H

#include "schema.h"

/* Write the printf-style message into why (may be NULL) and return KITH_ESCHEMA. */
int kith__schema_refuse(char *why, size_t why_cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A malloc'd copy of s, NULL when out of memory. */
char *kith__schema_strdup(const char *s);
/* A type's name in documents ("integer"), "?" for a number without a row. */
const char *kith__type_name(kith_type t);
/* A kind's name in documents ("counter"), "?" for an unknown one. */
const char *kith__crdt_name(kith__crdt c);
/* The position of field `name` in c, or -1. */
int kith__schema_field_pos(const struct kith__coll_decl *c, const char *name);
/* A deep copy of a field's declaration into dst (zeroed). 0 or KITH_ENOMEM (what was taken
 * stays in dst, for the caller's free). */
int kith__schema_field_copy(struct kith__field_decl *dst, const struct kith__field_decl *src);
/* Does every `to` of s name a collection of s or of known (may be NULL)? 0 or KITH_ESCHEMA. */
int kith__schema_resolve_refs(const struct kith__schema *s, const struct kith__schema *known,
                              char *why, size_t why_cap);

#endif /* KITH_SCHEMA_INT_H */
