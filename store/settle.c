/*
 * settle.c — which forks this replica settles, and how (spec/data-model.md FORK-10,
 * decisions.md D-20). A fork is settled once a proof of it is held: the proof names the
 * history every replica keeps, so a replica holding another history of that origin after
 * the seq both share sets its own aside (batch_apply.c), and every replica treats the dots
 * after that seq as void for the commits that named them. The fork of this replica's own
 * origin is not settled here: setting its own history aside would make its next write reuse
 * seqs the kept history holds, a fork again. The device takes a new key instead (rekey.c,
 * FORK-11), after which its old origin is another origin and is settled here like any.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

int
kith__settled_read(kith_replica *r, MDB_txn *txn, struct kith__settled **out, size_t *n)
{
    kith_fork *forks = NULL;
    size_t nforks = 0, k = 0;
    struct kith__settled *list = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    if (r->proofs == KITH__DBI_FREE)
        return 0;
    rc = kith__forks_read(r, txn, &forks, &nforks);
    if (rc < 0 || nforks == 0)
        return rc;
    list = calloc(nforks, sizeof *list);
    if (list == NULL) {
        free(forks);
        return KITH_ENOMEM;
    }
    for (size_t i = 0; i < nforks && rc == 0; i++) {
        struct kith__origin_state st;
        kith_fork *f = &forks[i];
        if (f->origin == r->id)
            continue;
        if ((rc = kith__proof_describe(r, txn, f)) < 0 || !f->has_proof)
            continue;
        if ((rc = kith__origin_get(r, txn, f->origin, &st)) < 0)
            break;
        list[k].origin = f->origin;
        list[k].after = f->proof_seq;
        memcpy(list[k].keep, f->winner, KITH_HASH_BYTES);
        /* whatever this replica holds after the shared seq that is not the kept history */
        list[k].aside = st.have > f->proof_seq && f->holds != KITH_FORK_HOLDS_WINNER;
        k++;
    }
    free(forks);
    if (rc < 0 || k == 0) {
        free(list);
        return rc < 0 ? rc : 0;
    }
    *out = list;
    *n = k;
    return 0;
}

const struct kith__settled *
kith__settled_find(const struct kith__settled *list, size_t n, uint64_t origin)
{
    for (size_t i = 0; i < n; i++)
        if (list[i].origin == origin)
            return &list[i];
    return NULL;
}
