/*
 * schema_info.c — what a replica says of its own schema in a handshake (kith_schema_info):
 * the version of its declared schema and the digest of it, as the replica stores them in its
 * `meta` database (store.h, spec/storage.md "meta"):
 *
 *   "schema_v"  u64 BE  how many times a declaration changed the schema (0: none)
 *   "schema"    32      BLAKE2b-256 of the schema's canonical JSON, without the version
 *
 * The declaring code writes both keys; this file only reads them, in one read transaction
 * so that the version and the digest belong together. A key never written reads as 0 or as
 * zeros: a replica made by an older kith has no "schema_v", and its "schema" holds the
 * fingerprint of the built-in schema it was made with, which it then reports as its digest
 * at version 0. Peers compare nothing here: the handshake records what a peer said and syncs
 * whatever it says (spec/protocol.md NET-7).
 */
#include "store.h"
#include "view.h"

#include <string.h>

int
kith_schema_info(kith_replica *r, uint64_t *version, uint8_t digest[KITH_HASH_BYTES])
{
    uint8_t d[KITH_HASH_BYTES] = {0};
    uint64_t v = 0;
    MDB_txn *txn;
    MDB_val val;
    int rc;

    if (version)
        *version = 0;
    if (digest)
        memset(digest, 0, KITH_HASH_BYTES);
    if (!r)
        return KITH_EINVAL;
    rc = kith__view_begin(r, &txn);
    if (rc < 0)
        return rc;
    rc = kith__meta_get_u64(r, txn, "schema_v", &v);
    if (rc < 0)
        goto out_end;
    rc = kith__meta_get(r, txn, "schema", &val);
    if (rc == KITH_ENOTFOUND) {
        rc = 0; /* nothing declared, nothing stored: zeros */
    } else if (rc == 0 && val.mv_size != KITH_HASH_BYTES) {
        rc = kith__fail(r, KITH_ECORRUPT, "meta schema has %zu bytes, not %d", val.mv_size,
                        KITH_HASH_BYTES);
    } else if (rc == 0) {
        memcpy(d, val.mv_data, KITH_HASH_BYTES); /* a view: copied before the txn ends */
    }
out_end:
    kith__view_end(r, txn);
    if (rc < 0)
        return rc;
    if (version)
        *version = v;
    if (digest)
        memcpy(digest, d, KITH_HASH_BYTES);
    return 0;
}
