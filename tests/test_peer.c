/*
 * test_peer.c — the trust set and peer records (store/peer.c): add, update, remove and list;
 * a replica always trusts itself; sync outcomes recorded (acknowledged vector, cursor,
 * failures, last error) and the pending count derived from them; a forked origin refused
 * until trusted again; a damaged record reported; the peer's schema as its handshakes told
 * it, kept through the record's other changes, and read as unknown from a record written
 * before the schema fields were appended; and, end to end, a batch from an origin that is
 * not (or no longer) trusted refused by kith_batch_apply with nothing changed.
 */
#include "kith.h"
#include "store.h"
#include "view.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static char dir[64];
static kith_replica *A, *B, *C;

static kith_replica *
open_replica(const char *name)
{
    char path[96];
    kith_replica *r = NULL;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    int rc = kith_open(path, KITH_CREATE | KITH_NOSYNC, &r);
    cr_assert_eq(rc, 0, "open %s: %s", path, kith_strerror(rc));
    rc = kith_schema_apply(r, kith_schema_crm(), strlen(kith_schema_crm()));
    cr_assert_eq(rc, 0, "declare: %s", kith_errmsg(r));
    return r;
}

static void
setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/kith-test-peer-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    A = open_replica("a");
    B = open_replica("b");
    C = open_replica("c");
}

static void
teardown(void)
{
    kith_close(A);
    kith_close(B);
    kith_close(C);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
pk_of(kith_replica *r, uint8_t pk[KITH_PUBKEY_BYTES])
{
    kith_replica_pubkey(r, pk);
}

/* One local commit on r: a contact named `name`. */
static void
write_contact(kith_replica *r, const char *name)
{
    kith_txn *t = NULL;
    kith_docid d;
    kith_value v = {.type = KITH_TYPE_STRING};

    v.u.s.ptr = name;
    v.u.s.len = strlen(name);
    cr_assert_eq(kith_txn_begin(r, KITH_TXN_WRITE, &t), 0);
    cr_assert_eq(kith_doc_create(t, "contacts", &d), 0);
    cr_assert_eq(kith_field_set(t, "contacts", &d, "name", &v), 0);
    cr_assert_eq(kith_txn_commit(&t), 0);
}

static uint64_t
vv_total(kith_replica *r)
{
    kith_vv vv;
    uint64_t n = 0;

    cr_assert_eq(kith_vv_get(r, &vv), 0);
    for (size_t i = 0; i < vv.len; i++)
        n += vv.entries[i].seq;
    kith_vv_free(&vv);
    return n;
}

TestSuite(peer, .init = setup, .fini = teardown);

Test(peer, trust_add_list_and_update)
{
    uint8_t pa[32], pb[32], pc[32];
    kith_peer *peers = NULL;
    size_t n = 0;

    pk_of(A, pa);
    pk_of(B, pb);
    pk_of(C, pc);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(n, 0);
    kith_peers_free(peers, n);

    cr_assert(kith_is_trusted(A, pa), "a replica trusts itself");
    cr_assert_not(kith_is_trusted(A, pb));
    cr_assert_eq(kith_trust_add(A, pb, "phone", "tcp://127.0.0.1:7461"), 0);
    cr_assert(kith_is_trusted(A, pb));
    cr_assert_not(kith_is_trusted(A, pc));

    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_eq(peers[0].id, kith_replica_id(B));
    cr_assert_eq(peers[0].id, kith_id_from_pubkey(pb));
    cr_assert_eq(memcmp(peers[0].pubkey, pb, 32), 0);
    cr_assert_str_eq(peers[0].name, "phone");
    cr_assert_str_eq(peers[0].addr, "tcp://127.0.0.1:7461");
    cr_assert(peers[0].trusted);
    cr_assert_not(peers[0].forked);
    cr_assert_eq(peers[0].acked.len, 0);
    cr_assert_eq(peers[0].last_sync_ms, 0);
    cr_assert_eq(peers[0].failures, 0);
    cr_assert_str_eq(peers[0].last_error, "");
    kith_peers_free(peers, n);

    /* NULL name keeps the name; a new address replaces the old one. Peers come by id. */
    cr_assert_eq(kith_trust_add(A, pb, NULL, "tcp://127.0.0.1:9000"), 0);
    cr_assert_eq(kith_trust_add(A, pc, "laptop", NULL), 0);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_lt(peers[0].id, peers[1].id);
    kith_peer *pB = peers[0].id == kith_replica_id(B) ? &peers[0] : &peers[1];
    kith_peer *pC = pB == &peers[0] ? &peers[1] : &peers[0];
    cr_assert_str_eq(pB->name, "phone");
    cr_assert_str_eq(pB->addr, "tcp://127.0.0.1:9000");
    cr_assert_str_eq(pC->name, "laptop");
    cr_assert_str_eq(pC->addr, "");
    kith_peers_free(peers, n);
}

Test(peer, bad_trust_requests_change_nothing)
{
    uint8_t pa[32], pb[32];
    char longname[80];
    kith_peer *peers = NULL;
    size_t n = 0;

    pk_of(A, pa);
    pk_of(B, pb);
    cr_assert_eq(kith_trust_add(A, pa, "me", NULL), KITH_EINVAL);
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_eq(kith_trust_add(A, pb, longname, NULL), KITH_EINVAL);
    cr_assert_eq(kith_trust_remove(A, kith_replica_id(B)), KITH_ENOTFOUND);
    cr_assert_eq(kith_trust_remove(A, kith_replica_id(A)), KITH_EINVAL);
    cr_assert_eq(kith_peer_record(A, kith_replica_id(B), NULL, 0, NULL), KITH_ENOTFOUND);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(n, 0);
    kith_peers_free(peers, n);
}

Test(peer, trust_remove_keeps_the_record)
{
    uint8_t pb[32];
    kith_peer *peers = NULL;
    size_t n = 0;

    pk_of(B, pb);
    cr_assert_eq(kith_trust_add(A, pb, "phone", NULL), 0);
    cr_assert_eq(kith_trust_remove(A, kith_replica_id(B)), 0);
    cr_assert_not(kith_is_trusted(A, pb));
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_not(peers[0].trusted);
    cr_assert_str_eq(peers[0].name, "phone");
    kith_peers_free(peers, n);
    cr_assert_eq(kith_trust_add(A, pb, NULL, NULL), 0);
    cr_assert(kith_is_trusted(A, pb));
}

Test(peer, sync_outcomes_recorded)
{
    uint8_t pb[32];
    kith_peer *peers = NULL;
    size_t n = 0;
    uint64_t b = kith_replica_id(B), a = kith_replica_id(A);

    pk_of(B, pb);
    cr_assert_eq(kith_trust_add(A, pb, NULL, NULL), 0);
    for (int i = 0; i < 4; i++)
        write_contact(A, "x"); /* 8 ops */

    /* Two failures, then a success. */
    cr_assert_eq(kith_peer_record(A, b, NULL, 0, "connection refused"), 0);
    char longerr[600];
    memset(longerr, 'e', sizeof longerr - 1);
    longerr[sizeof longerr - 1] = '\0';
    cr_assert_eq(kith_peer_record(A, b, NULL, 0, longerr), 0);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(peers[0].failures, 2);
    cr_assert_eq(strlen(peers[0].last_error), 255, "a long error is cut, not refused");
    cr_assert_eq(peers[0].last_sync_ms, 0);
    cr_assert_eq(peers[0].pending_ops, 8, "acked nothing: all 8 ops pending");
    kith_peers_free(peers, n);

    kith_dot e[2] = {{a < b ? a : b, 0}, {a < b ? b : a, 0}};
    e[a < b ? 0 : 1].seq = 3;
    e[a < b ? 1 : 0].seq = 7;
    kith_vv acked = {2, e};
    cr_assert_eq(kith_peer_record(A, b, &acked, 42, NULL), 0);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(peers[0].failures, 0);
    cr_assert_str_eq(peers[0].last_error, "");
    cr_assert_gt(peers[0].last_sync_ms, 1700000000000ll);
    cr_assert_eq(peers[0].cursor, 42);
    cr_assert_eq(peers[0].acked.len, 2);
    cr_assert_eq(peers[0].acked.entries[0].origin, e[0].origin);
    cr_assert_eq(peers[0].acked.entries[1].seq, e[1].seq);
    cr_assert_eq(peers[0].pending_ops, 5, "A holds 8 of its own, B acked 3");
    kith_peers_free(peers, n);

    /* A failure keeps what was acknowledged; an unsorted vector is refused. */
    cr_assert_eq(kith_peer_record(A, b, NULL, 0, "timeout"), 0);
    kith_dot bad[2] = {e[1], e[0]};
    kith_vv badvv = {2, bad};
    cr_assert_eq(kith_peer_record(A, b, &badvv, 1, NULL), KITH_EINVAL);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(peers[0].failures, 1);
    cr_assert_str_eq(peers[0].last_error, "timeout");
    cr_assert_eq(peers[0].cursor, 42);
    cr_assert_eq(peers[0].acked.len, 2);
    kith_peers_free(peers, n);
}

Test(peer, forked_origin_refused_until_trusted_again)
{
    uint8_t pb[32], got[32];
    MDB_txn *txn;
    kith_peer *peers = NULL;
    size_t n = 0;

    pk_of(B, pb);
    cr_assert_eq(kith_trust_add(A, pb, "phone", NULL), 0);
    cr_assert_eq(kith__mdb_begin(A, 0, &txn), 0);
    cr_assert_eq(kith__trusted_key(A, txn, kith_replica_id(B), got), 0);
    cr_assert_eq(memcmp(got, pb, 32), 0);
    cr_assert_eq(kith__trusted_key(A, txn, kith_replica_id(A), got), 0, "self is trusted");
    cr_assert_eq(kith__trusted_key(A, txn, kith_replica_id(C), got), KITH_EUNTRUSTED);
    cr_assert_eq(kith__peer_mark_forked(A, txn, kith_replica_id(B)), 0);
    cr_assert_eq(kith__trusted_key(A, txn, kith_replica_id(B), got), KITH_EUNTRUSTED);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(A);

    cr_assert_not(kith_is_trusted(A, pb));
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert(peers[0].forked);
    cr_assert(peers[0].trusted);
    cr_assert_str_eq(peers[0].name, "phone");
    kith_peers_free(peers, n);
    cr_assert_eq(kith_trust_add(A, pb, NULL, NULL), 0);
    cr_assert(kith_is_trusted(A, pb), "trusting again clears the fork mark");
}

Test(peer, damaged_record_is_corrupt)
{
    uint8_t pb[32], key[8];
    MDB_txn *txn;
    MDB_val k = {8, key}, v = {10, pb};
    kith_peer *peers = NULL;
    size_t n = 0;

    pk_of(B, pb);
    kith__be64_put(key, kith_replica_id(B));
    cr_assert_eq(kith__mdb_begin(A, 0, &txn), 0);
    cr_assert_eq(mdb_put(txn, A->peers, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(A);
    cr_assert_eq(kith_peers_get(A, &peers, &n), KITH_ECORRUPT);
    cr_assert_null(peers);
    cr_assert_not(kith_is_trusted(A, pb));
}

Test(peer, untrusted_batches_are_refused)
{
    uint8_t pb[32];
    kith_buf buf = {0};
    kith_apply_info info;
    int rc;

    pk_of(B, pb);
    write_contact(B, "from b");
    kith_batch_opts all = {0};
    cr_assert_eq(kith_batch_create(B, &all, &buf, NULL), 0);
    rc = kith_batch_apply(A, buf.data, buf.len, &info);
    cr_assert_eq(rc, KITH_EUNTRUSTED, "untrusted batch gave %s", kith_errname(rc));
    cr_assert_eq(vv_total(A), 0, "a refused batch changed the replica");

    cr_assert_eq(kith_trust_add(A, pb, NULL, NULL), 0);
    rc = kith_batch_apply(A, buf.data, buf.len, &info);
    cr_assert_eq(rc, 0, "trusted batch: %s (%s)", kith_strerror(rc), kith_errmsg(A));
    cr_assert_eq(info.ops_new, 2);
    cr_assert_eq(vv_total(A), 2);
    kith_free(buf.data);

    /* Trust withdrawn: B's next ops are refused, what was applied stays. */
    cr_assert_eq(kith_trust_remove(A, kith_replica_id(B)), 0);
    write_contact(B, "again");
    kith_vv since;
    cr_assert_eq(kith_vv_get(A, &since), 0);
    kith_batch_opts opts = {.since = &since};
    cr_assert_eq(kith_batch_create(B, &opts, &buf, NULL), 0);
    kith_vv_free(&since);
    rc = kith_batch_apply(A, buf.data, buf.len, &info);
    cr_assert_eq(rc, KITH_EUNTRUSTED, "after trust_remove: %s", kith_errname(rc));
    cr_assert_eq(vv_total(A), 2);
    kith_free(buf.data);
}

/* KITH_FAILING_AFTER failures in a row mark a peer failing; a success clears the mark; a
 * daemon's own threshold (kith_peer_record_ex) counts the same failures. */
Test(peer, failing_after_consecutive_failures)
{
    uint8_t pb[32];
    kith_peer *peers = NULL;
    size_t n = 0;
    uint64_t b = kith_replica_id(B);

    pk_of(B, pb);
    cr_assert_eq(kith_trust_add(A, pb, NULL, NULL), 0);
    for (int i = 1; i <= KITH_FAILING_AFTER; i++) {
        cr_assert_eq(kith_peer_record(A, b, NULL, 0, "connection refused"), 0);
        cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
        cr_assert_eq(peers[0].failures, (uint32_t)i);
        cr_assert_eq(peers[0].failing, i >= KITH_FAILING_AFTER, "after %d failures", i);
        cr_assert_str_eq(peers[0].last_error, "connection refused");
        kith_peers_free(peers, n);
    }
    cr_assert_eq(kith_peer_record(A, b, NULL, 0, NULL), 0);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert(!peers[0].failing, "a success clears it");
    cr_assert_eq(peers[0].failures, 0);
    kith_peers_free(peers, n);

    cr_assert_eq(kith_peer_record_ex(A, b, NULL, 0, "timeout", 2), 0);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert(!peers[0].failing);
    kith_peers_free(peers, n);
    cr_assert_eq(kith_peer_record_ex(A, b, NULL, 0, "timeout", 2), 0);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert(peers[0].failing, "two failures with a threshold of 2");
    cr_assert_str_eq(peers[0].last_error, "timeout");
    kith_peers_free(peers, n);
    cr_assert_eq(kith_peer_record_ex(A, 12345, NULL, 0, "x", 2), KITH_ENOTFOUND);
}

/* Batch from `from` of what `to` lacks, applied to `to`. */
static void
relay(kith_replica *from, kith_replica *to)
{
    kith_batch_opts opts = {0};
    kith_buf buf = {0};
    kith_vv vv = {0};

    cr_assert_eq(kith_vv_get(to, &vv), 0);
    opts.since = &vv;
    cr_assert_eq(kith_batch_create(from, &opts, &buf, NULL), 0);
    cr_assert_eq(kith_batch_apply(to, buf.data, buf.len, NULL), 0, "%s", kith_errmsg(to));
    kith_free(buf.data);
    kith_vv_free(&vv);
}

static const kith_peer *
peer_of(const kith_peer *peers, size_t n, kith_replica *r)
{
    for (size_t i = 0; i < n; i++)
        if (peers[i].id == kith_replica_id(r))
            return &peers[i];
    cr_assert_fail("no peer record");
    return NULL;
}

static void
trust_all(void)
{
    kith_replica *rs[3] = {A, B, C};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            uint8_t pk[32];
            if (i == j)
                continue;
            pk_of(rs[j], pk);
            cr_assert_eq(kith_trust_add(rs[i], pk, NULL, NULL), 0);
        }
}

/* proves NET-19: A's ops reach C through B. C's record of A must not count them as pending for A
 * (A made them), nor as pending for B (B sent them). */
Test(peer, pending_drops_for_ops_relayed_by_a_third_replica)
{
    kith_peer *peers = NULL;
    size_t n = 0;

    trust_all();
    for (int i = 0; i < 4; i++)
        write_contact(A, "a"); /* 8 ops */
    write_contact(C, "c");     /* 2 ops */
    relay(A, B);
    relay(B, C);
    cr_assert_eq(kith_peers_get(C, &peers, &n), 0);
    cr_assert_eq(peer_of(peers, n, A)->pending_ops, 2, "A lacks only C's 2 ops, not its own 8");
    cr_assert_eq(peer_of(peers, n, B)->pending_ops, 2, "B sent A's 8 ops: it holds them");
    kith_peers_free(peers, n);

    /* C's ops reach A through B: C cannot know that until A says so (a session's
     * handshake, or a batch from A that carries them) */
    relay(C, B);
    relay(B, A);
    cr_assert_eq(kith_peers_get(C, &peers, &n), 0);
    cr_assert_eq(peer_of(peers, n, A)->pending_ops, 2);
    kith_peers_free(peers, n);
}

/* NET-19: a bundle written by A and applied by C shows that A holds everything in it,
 * including ops A got from B. */
Test(peer, pending_drops_for_ops_in_a_bundle_from_the_peer)
{
    char path[128];
    kith_peer *peers = NULL;
    size_t n = 0;

    trust_all();
    write_contact(A, "a");
    write_contact(B, "b");
    write_contact(B, "b");
    relay(B, A);
    snprintf(path, sizeof path, "%s/a.bundle", dir);
    cr_assert_eq(kith_bundle_write(A, NULL, path, NULL), 0);
    cr_assert_eq(kith_bundle_apply(C, path, NULL), 0, "%s", kith_errmsg(C));
    cr_assert_eq(kith_peers_get(C, &peers, &n), 0);
    cr_assert_eq(peer_of(peers, n, A)->pending_ops, 0, "A wrote the bundle: it holds all 6");
    cr_assert_eq(kith__vv_get(&peer_of(peers, n, A)->acked, kith_replica_id(B)), 4);
    cr_assert_eq(peer_of(peers, n, B)->pending_ops, 2, "B lacks A's 2 ops, holds its own 4");
    kith_peers_free(peers, n);
}

/* The schema of B as A's record of it says, with the record's raw size. */
static void
schema_of_b(uint64_t *version, uint8_t digest[KITH_HASH_BYTES], size_t *record_bytes)
{
    kith_peer *peers = NULL;
    size_t n = 0;
    uint8_t key[8];
    MDB_val k = {8, key}, v;
    MDB_txn *txn;

    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(n, 1);
    *version = peers[0].schema_version;
    memcpy(digest, peers[0].schema_digest, KITH_HASH_BYTES);
    kith_peers_free(peers, n);
    kith__be64_put(key, kith_replica_id(B));
    cr_assert_eq(kith__view_begin(A, &txn), 0);
    cr_assert_eq(mdb_get(txn, A->peers, &k, &v), 0);
    *record_bytes = v.mv_size;
    kith__view_end(A, txn);
}

Test(peer, schema_told_in_a_handshake_is_kept)
{
    uint8_t pb[32], d1[KITH_HASH_BYTES], d2[KITH_HASH_BYTES], zeros[KITH_HASH_BYTES] = {0};
    uint8_t got[KITH_HASH_BYTES];
    uint64_t b = kith_replica_id(B), version;
    size_t size;

    pk_of(B, pb);
    memset(d1, 0x11, sizeof d1);
    memset(d2, 0x22, sizeof d2);
    cr_assert_eq(kith_trust_add(A, pb, "phone", NULL), 0);
    schema_of_b(&version, got, &size);
    cr_assert_eq(version, 0, "never told: version 0");
    cr_assert_arr_eq(got, zeros, sizeof zeros, "never told: zero digest");

    cr_assert_eq(kith__peer_record_schema(A, b, 7, d1), 1);
    schema_of_b(&version, got, &size);
    cr_assert_eq(version, 7);
    cr_assert_arr_eq(got, d1, sizeof d1);
    cr_assert_eq(kith__peer_record_schema(A, b, 7, d1), 0, "the same again writes nothing");

    /* the rest of the record's life keeps it */
    cr_assert_eq(kith_peer_record(A, b, NULL, 5, NULL), 0);
    cr_assert_eq(kith_peer_record(A, b, NULL, 5, "timeout"), 0);
    cr_assert_eq(kith_trust_add(A, pb, "tablet", "tcp://127.0.0.1:9"), 0);
    cr_assert_eq(kith_trust_remove(A, b), 0);
    schema_of_b(&version, got, &size);
    cr_assert_eq(version, 7);
    cr_assert_arr_eq(got, d1, sizeof d1);

    /* a peer may go back to an older schema (an app downgraded): the record follows */
    cr_assert_eq(kith__peer_record_schema(A, b, 3, d2), 1);
    schema_of_b(&version, got, &size);
    cr_assert_eq(version, 3);
    cr_assert_arr_eq(got, d2, sizeof d2);

    cr_assert_eq(kith__peer_record_schema(A, kith_replica_id(C), 1, d1), KITH_ENOTFOUND);
    cr_assert_eq(kith__peer_record_schema(A, b, 1, NULL), KITH_EINVAL);
}

/* A record as kith 0.1 wrote it: no schema fields after the acknowledged vector. */
Test(peer, record_without_schema_fields_reads_as_unknown)
{
    uint8_t pb[32], rec[32 + 4 + 8 + 8 + 4 + 1 + 3 + 2 + 2 + 4 + 16 + 39], key[8];
    uint8_t got[KITH_HASH_BYTES], zeros[KITH_HASH_BYTES] = {0}, d[KITH_HASH_BYTES];
    uint64_t b = kith_replica_id(B), version;
    MDB_val k = {8, key}, v = {0, rec};
    kith_peer *peers = NULL;
    size_t n = 0, size, old_size;
    MDB_txn *txn;
    uint8_t *p = rec;

    pk_of(B, pb);
    memset(rec, 0, sizeof rec);
    memcpy(p, pb, 32);
    p += 32;
    p[3] = KITH__PEER_TRUSTED;
    p += 4;
    kith__be64_put(p, 9); /* cursor */
    p += 8 + 8 + 4;       /* never synced, no failures */
    *p++ = 3;
    memcpy(p, "old", 3);
    p += 3 + 2 + 2; /* no address, no error */
    p[3] = 1;       /* one acknowledged entry */
    p += 4;
    kith__dot_put(p, (kith_dot){b, 4});
    p += 16;
    old_size = (size_t)(p - rec);
    v.mv_size = old_size;
    kith__be64_put(key, b);
    cr_assert_eq(kith__mdb_begin(A, 0, &txn), 0);
    cr_assert_eq(mdb_put(txn, A->peers, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(A);

    cr_assert(kith_is_trusted(A, pb));
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(peers[0].name, "old");
    cr_assert_eq(peers[0].cursor, 9);
    cr_assert_eq(peers[0].acked.len, 1);
    cr_assert_eq(peers[0].acked.entries[0].seq, 4);
    cr_assert_eq(peers[0].schema_version, 0);
    cr_assert_arr_eq(peers[0].schema_digest, zeros, sizeof zeros);
    cr_assert_eq(peers[0].clock_checked_ms, 0, "no clock measured");
    kith_peers_free(peers, n);

    /* written back whole at its next change, the vector intact, with the tails of 0.2.0
     * (schema) and 0.3.0 (clock) */
    memset(d, 0x5a, sizeof d);
    cr_assert_eq(kith__peer_record_schema(A, b, 2, d), 1);
    schema_of_b(&version, got, &size);
    cr_assert_eq(size, old_size + 8 + KITH_HASH_BYTES + 16);
    cr_assert_eq(version, 2);
    cr_assert_arr_eq(got, d, sizeof d);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(peers[0].acked.entries[0].seq, 4);
    kith_peers_free(peers, n);

    /* a tail of any other length is damage */
    v.mv_size = old_size + 8 + KITH_HASH_BYTES - 1;
    cr_assert_eq(kith__mdb_begin(A, 0, &txn), 0);
    cr_assert_eq(mdb_put(txn, A->peers, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(A);
    cr_assert_eq(kith_peers_get(A, &peers, &n), KITH_ECORRUPT);
}

/* A record as kith 0.2.0 wrote it (schema tail, no clock) reads as never measured; the first
 * measurement is kept, a reconnect that finds the same figure writes nothing, and crossing
 * the tolerance is told once. */
/* proves NET-26 */
Test(peer, clock_offset_is_kept_and_crossing_the_tolerance_told_once)
{
    uint8_t pb[32], d[KITH_HASH_BYTES];
    uint64_t b = kith_replica_id(B), version;
    uint8_t key[8];
    MDB_val k = {8, key}, v;
    MDB_txn *txn;
    kith_peer *peers = NULL;
    size_t n = 0, size;

    kith_replica_pubkey(B, pb);
    cr_assert_eq(kith_trust_add(A, pb, "b", NULL), 0);
    memset(d, 0x11, sizeof d);
    cr_assert_eq(kith__peer_record_schema(A, b, 1, d), 1);
    schema_of_b(&version, d, &size);
    /* cut the clock tail off: the record kith 0.2.0 wrote */
    kith__be64_put(key, b);
    cr_assert_eq(kith__mdb_begin(A, 0, &txn), 0);
    cr_assert_eq(mdb_get(txn, A->peers, &k, &v), 0);
    uint8_t rec[1024];
    cr_assert_lt(v.mv_size, sizeof rec);
    memcpy(rec, v.mv_data, v.mv_size);
    v.mv_data = rec;
    v.mv_size -= 16;
    cr_assert_eq(mdb_put(txn, A->peers, &k, &v, 0), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(A);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(peers[0].clock_checked_ms, 0);
    cr_assert_eq(peers[0].clock_offset_ms, 0);
    cr_assert_eq(peers[0].schema_version, 1, "the schema tail still reads");
    kith_peers_free(peers, n);

    /* within the tolerance: recorded, nothing told */
    cr_assert_eq(kith__peer_record_clock(A, b, 1200, 1000000), 0);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(peers[0].clock_offset_ms, 1200);
    cr_assert_eq(peers[0].clock_checked_ms, 1000000);
    kith_peers_free(peers, n);
    /* the same figure a little later is not written again */
    cr_assert_eq(kith__peer_record_clock(A, b, 1500, 1060000), 0);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(peers[0].clock_checked_ms, 1000000);
    kith_peers_free(peers, n);
    /* beyond the tolerance: told once, then kept quiet while it stays there */
    cr_assert_eq(kith__peer_record_clock(A, b, -(KITH_CLOCK_TOLERANCE_MS + 2000), 1100000), 1);
    cr_assert_eq(kith__peer_record_clock(A, b, -(KITH_CLOCK_TOLERANCE_MS + 2100), 1200000), 0);
    cr_assert_eq(kith__peer_record_clock(A, b, -(KITH_CLOCK_TOLERANCE_MS + 9000), 1300000), 0);
    cr_assert_eq(kith_peers_get(A, &peers, &n), 0);
    cr_assert_eq(peers[0].clock_offset_ms, -(KITH_CLOCK_TOLERANCE_MS + 9000));
    kith_peers_free(peers, n);
    /* back within it, then beyond again: told again */
    cr_assert_eq(kith__peer_record_clock(A, b, 0, 1400000), 0);
    cr_assert_eq(kith__peer_record_clock(A, b, KITH_CLOCK_TOLERANCE_MS + 1, 1500000), 1);
    cr_assert_eq(kith__peer_record_clock(A, 12345, 0, 1500000), KITH_ENOTFOUND);
}
