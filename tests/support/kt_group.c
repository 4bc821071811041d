/*
 * kt_group.c — see kt_group.h.
 */
#include "kt_group.h"

#include "store.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

struct records {
    uint8_t **p;
    size_t *len;
    size_t n, cap;
};

static int
take_record(void *ctx, const uint8_t *rec, size_t len)
{
    struct records *s = ctx;

    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->p = realloc(s->p, s->cap * sizeof *s->p);
        s->len = realloc(s->len, s->cap * sizeof *s->len);
        cr_assert(s->p != NULL && s->len != NULL);
    }
    s->p[s->n] = malloc(len);
    cr_assert_not_null(s->p[s->n]);
    memcpy(s->p[s->n], rec, len);
    s->len[s->n++] = len;
    return 0;
}

void
kt_admit(kith_replica *member, kith_replica *joiner, const char *name)
{
    uint8_t pk[KITH_PUBKEY_BYTES], gid[16], digest[32];
    struct records s = {0};
    MDB_txn *txn;
    int rc;

    kith_replica_pubkey(joiner, pk);
    cr_assert_eq(kith__mdb_begin(member, 0, &txn), 0);
    rc = kith__group_add_member(member, txn, pk, name, strlen(name));
    cr_assert_eq(rc, 0, "add: %s (%s)", kith_strerror(rc), kith_errmsg(member));
    cr_assert_eq(kith__group_summary(member, txn, gid, digest), 1);
    cr_assert_eq(kith__group_collect(member, txn, take_record, &s), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(member);
    cr_assert_eq(kith__mdb_begin(joiner, 0, &txn), 0);
    rc = kith__group_adopt(joiner, txn, gid, (const uint8_t *const *)s.p, s.len, s.n);
    cr_assert_eq(rc, 0, "adopt: %s (%s)", kith_strerror(rc), kith_errmsg(joiner));
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(joiner);
    for (size_t i = 0; i < s.n; i++)
        free(s.p[i]);
    free(s.p);
    free(s.len);
}
