/*
 * test_groups_net.c — device groups over the network (spec/groups.md GRP-14): a member syncs
 * with another member's daemon on loopback with no pairwise trust on either side, both ways;
 * once removed, it can no longer connect, and the daemon takes none of its later ops. A member
 * heard of at an address is recorded without pairwise trust and dialled (NET-37, NET-38).
 */
#include "net_test.h"

static uint64_t
seq_at(kith_replica *r, uint64_t origin)
{
    kith_vv vv;
    uint64_t s = 0;

    cr_assert_eq(kith_vv_get(r, &vv), 0);
    for (size_t i = 0; i < vv.len; i++)
        if (vv.entries[i].origin == origin)
            s = vv.entries[i].seq;
    kith_vv_free(&vv);
    return s;
}

struct all {
    uint8_t *p[64];
    size_t len[64];
    size_t n;
};

static int
keep(void *ctx, const uint8_t *rec, size_t len)
{
    struct all *a = ctx;
    cr_assert_lt(a->n, 64);
    a->p[a->n] = malloc(len);
    memcpy(a->p[a->n], rec, len);
    a->len[a->n++] = len;
    return 0;
}

/* `member` admits `joiner`: an ADD, and the joiner adopts the group from member's records. */
static void
admit(kith_replica *member, kith_replica *joiner, const char *name)
{
    uint8_t pk[KITH_PUBKEY_BYTES], gid[16], digest[32];
    struct all s = {.n = 0};
    MDB_txn *txn;

    kith_replica_pubkey(joiner, pk);
    cr_assert_eq(kith__mdb_begin(member, 0, &txn), 0);
    cr_assert_eq(kith__group_add_member(member, txn, pk, name, strlen(name)), 0);
    cr_assert_eq(kith__group_summary(member, txn, gid, digest), 1);
    cr_assert_eq(kith__group_collect(member, txn, keep, &s), 0);
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(member);
    cr_assert_eq(kith__mdb_begin(joiner, 0, &txn), 0);
    int rc = kith__group_adopt(joiner, txn, gid, (const uint8_t *const *)s.p, s.len, s.n);
    cr_assert_eq(rc, 0, "adopt: %s (%s)", kith_strerror(rc), kith_errmsg(joiner));
    cr_assert_eq(mdb_txn_commit(txn), 0);
    kith__mdb_end(joiner);
    for (size_t i = 0; i < s.n; i++)
        free(s.p[i]);
}

Test(groups_net, members_sync_with_no_pairwise_trust_and_a_removed_one_cannot_connect)
{
    struct node b;
    struct kt_replica a = kt_new();
    kith_sync_info info;
    uint8_t pb[KITH_PUBKEY_BYTES], pa[KITH_PUBKEY_BYTES];

    node_init(&b);
    cr_assert_eq(kith_group_create(b.k.r, "home", "b"), 0);
    admit(b.k.r, a.r, "a");
    kith_replica_pubkey(b.k.r, pb);
    kith_replica_pubkey(a.r, pa);
    kt_contact(a.r, "Ada");
    kt_contact(b.k.r, "Grace");
    node_start(&b);

    int rc = kith_sync(a.r, b.ep, pb, 5000, &info);
    cr_assert_eq(rc, 0, "kith_sync: %s (%s)", kith_strerror(rc), kith_errmsg(a.r));
    cr_assert(info.converged);
    cr_assert(info.ops_sent > 0 && info.ops_received > 0);
    uint64_t held = seq_at(b.k.r, kith_replica_id(a.r));
    cr_assert_gt(held, 0);
    kith_peer *peers = NULL;
    size_t n = 0;
    cr_assert_eq(kith_peers_get(b.k.r, &peers, &n), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_not(peers[i].trusted, "the daemon trusts nobody pairwise");
    kith_peers_free(peers, n);

    /* b removes a while its daemon runs; a writes on, and can no longer connect */
    cr_assert_eq(kith_device_remove(b.k.r, kith_replica_id(a.r)), 0, "%s", kith_errmsg(b.k.r));
    cr_assert_not(kith_is_trusted(b.k.r, pa));
    kt_contact(a.r, "after the removal");
    rc = kith_sync(a.r, b.ep, pb, 2000, &info);
    cr_assert_neq(rc, 0, "a removed member's sync is refused");
    cr_assert_eq(seq_at(b.k.r, kith_replica_id(a.r)), held, "nothing of it after its removal");
    node_free(&b);
    kt_free(&a);
}

/* Is there a peer record of `id` at r? Its trusted flag and address in *trusted and addr. */
static bool
peer_of(kith_replica *r, uint64_t id, bool *trusted, char addr[256])
{
    kith_peer *peers = NULL;
    size_t n = 0;
    bool found = false;

    cr_assert_eq(kith_peers_get(r, &peers, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (peers[i].id == id) {
            found = true;
            *trusted = peers[i].trusted;
            snprintf(addr, 256, "%s", peers[i].addr);
        }
    kith_peers_free(peers, n);
    return found;
}

/* A member heard at an address (as a beacon tells it, net/links.c) is recorded without pairwise
 * trust, and the daemon dials it with no address given: every member whose address is known,
 * not only the one that invited it (GRP-14, NET-37). */
Test(groups_net, a_member_heard_of_is_recorded_untrusted_and_dialled)
{
    struct node m, j;
    struct kt_replica stranger = kt_new();
    uint8_t pm[KITH_PUBKEY_BYTES], ps[KITH_PUBKEY_BYTES];
    bool trusted = true;
    char addr[256];

    node_init(&m);
    node_init(&j);
    cr_assert_eq(kith_group_create(m.k.r, "home", "m"), 0);
    admit(m.k.r, j.k.r, "j");
    kith_replica_pubkey(m.k.r, pm);
    kith_replica_pubkey(stranger.r, ps);
    kith_docid doc = kt_contact(j.k.r, "dialled by j");
    node_start(&m);
    /* j hears of m at m's address: a record, no trust */
    cr_assert_eq(kith__peer_member_addr(j.k.r, pm, m.ep), 0, "%s", kith_errmsg(j.k.r));
    cr_assert(peer_of(j.k.r, kith_replica_id(m.k.r), &trusted, addr));
    cr_assert_not(trusted, "a member needs no pairwise trust");
    cr_assert_str_eq(addr, m.ep);
    /* a key outside the group is not recorded so */
    cr_assert_eq(kith__peer_member_addr(j.k.r, ps, "tcp://127.0.0.1:9"), KITH_EUNTRUSTED);
    cr_assert_not(peer_of(j.k.r, kith_replica_id(stranger.r), &trusted, addr));
    /* j's daemon, given no peer, dials m and syncs */
    node_start(&j);
    cr_assert(wait_doc(m.k.r, &doc, 10000), "j's daemon did not dial m");
    node_stop(&j);
    cr_assert(peer_of(j.k.r, kith_replica_id(m.k.r), &trusted, addr));
    cr_assert_not(trusted, "syncing made no pairwise trust either");
    /* a pairwise trust the member has is left as it is by a new address */
    cr_assert_eq(kith_trust_add(j.k.r, pm, NULL, NULL), 0);
    cr_assert_eq(kith__peer_member_addr(j.k.r, pm, "tcp://127.0.0.1:7"), 0);
    cr_assert(peer_of(j.k.r, kith_replica_id(m.k.r), &trusted, addr));
    cr_assert(trusted);
    cr_assert_str_eq(addr, "tcp://127.0.0.1:7");
    node_free(&m);
    node_free(&j);
    kt_free(&stranger);
}
