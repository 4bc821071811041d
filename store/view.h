/*
 * view.h — helpers shared by the read side of the store (status.c, peer.c, export.c,
 * verify.c): reading the version vector and walking a database inside a transaction the
 * caller already holds. Private to store/; the write path does not depend on it.
 */
#ifndef KITH_STORE_VIEW_H
#define KITH_STORE_VIEW_H

#include "store.h"

/* The applied version vector, read from the origins database in `txn` (sorted by origin,
 * no zero entries). *out is an allocation released with kith_vv_free; on failure it is
 * empty. 0, KITH_ECORRUPT (a record of the wrong size), KITH_ENOMEM, or an LMDB error. */
int kith__vv_read(kith_replica *r, MDB_txn *txn, kith_vv *out);

/* Begin a read-only LMDB transaction (kith__mdb_begin with MDB_RDONLY) and end it. */
int kith__view_begin(kith_replica *r, MDB_txn **out);
void kith__view_end(kith_replica *r, MDB_txn *txn);

/* Run `fn` in a write transaction of its own, committing when it returns 0, aborting and
 * returning its code otherwise. On MDB_MAP_FULL the map is grown and `fn` runs again, so
 * `fn` must keep no effects outside the transaction. */
int kith__view_write(kith_replica *r, int (*fn)(kith_replica *r, MDB_txn *txn, void *ctx),
                     void *ctx);

/* The public key of `origin`, trusted or not (this replica's own, its peer record's, or its
 * group record's), for checking signatures already accepted. 0, KITH_ENOTFOUND (no record),
 * or an error. */
int kith__peer_key(kith_replica *r, MDB_txn *txn, uint64_t origin, uint8_t pk[KITH_PUBKEY_BYTES]);

#endif /* KITH_STORE_VIEW_H */
