/*
 * contacts.c — the smallest useful embedding of kith: two replicas of one user's contacts,
 * a concurrent edit on each, a bundle carried both ways, and the app told which edit was
 * overruled. Uses only the public header.
 *
 *   contacts DIR     (DIR: an empty directory for the two replicas)
 */
#include <kith.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
check(int rc, const char *what)
{
    if (rc < 0)
        fprintf(stderr, "contacts: %s: %s\n", what, kith_strerror(rc));
    return rc;
}

static void
on_conflict(void *ctx, const kith_conflict *c)
{
    (void)ctx;
    printf("overruled: %s.%s: \"%.*s\" lost to \"%.*s\"\n", c->collection, c->field,
           (int)c->loser.u.s.len, c->loser.u.s.ptr, (int)c->winner.u.s.len, c->winner.u.s.ptr);
}

static int
set_phone(kith_replica *r, const kith_docid *id, const char *phone)
{
    kith_txn *t = NULL;
    kith_value v = {.type = KITH_TYPE_STRING, .u.s = {phone, strlen(phone)}};
    int rc = kith_txn_begin(r, KITH_TXN_WRITE, &t);
    if (rc < 0)
        return rc;
    rc = kith_field_set(t, "contacts", id, "phone", &v);
    if (rc < 0) {
        kith_txn_abort(&t);
        return rc;
    }
    return kith_txn_commit(&t);
}

static int
carry(kith_replica *from, kith_replica *to, const char *file)
{
    int rc = kith_bundle_write(from, NULL, file, NULL);
    if (rc == 0)
        rc = kith_bundle_apply(to, file, NULL);
    return rc;
}

int
main(int argc, char **argv)
{
    char pa[4096], pb[4096], bundle[4096];
    kith_replica *a = NULL, *b = NULL;
    kith_txn *t = NULL;
    kith_docid id;
    uint8_t pk[KITH_PUBKEY_BYTES];
    int rc;

    if (argc != 2) {
        fprintf(stderr, "usage: contacts DIR\n");
        return 2;
    }
    snprintf(pa, sizeof pa, "%s/phone", argv[1]);
    snprintf(pb, sizeof pb, "%s/laptop", argv[1]);
    snprintf(bundle, sizeof bundle, "%s/bundle", argv[1]);
    if (check(kith_open(pa, KITH_CREATE, &a), "open phone") < 0 ||
        check(kith_open(pb, KITH_CREATE, &b), "open laptop") < 0)
        goto out;
    /* The app declares its schema each time it opens a replica, as it would migrate one;
     * declaring what is declared already changes nothing. */
    if (check(kith_schema_apply(a, kith_schema_crm(), strlen(kith_schema_crm())), "schema") < 0 ||
        check(kith_schema_apply(b, kith_schema_crm(), strlen(kith_schema_crm())), "schema") < 0)
        goto out;
    kith_observe(b, NULL, on_conflict, NULL);

    /* Pair the two devices: each trusts the other's key. */
    kith_replica_pubkey(a, pk);
    if (check(kith_trust_add(b, pk, "phone", NULL), "trust") < 0)
        goto out;
    kith_replica_pubkey(b, pk);
    if (check(kith_trust_add(a, pk, "laptop", NULL), "trust") < 0)
        goto out;

    /* The phone creates a contact; the laptop gets it by bundle. */
    kith_value name = {.type = KITH_TYPE_STRING, .u.s = {"Ada Lovelace", 12}};
    if (check(kith_txn_begin(a, KITH_TXN_WRITE, &t), "begin") < 0 ||
        check(kith_doc_create(t, "contacts", &id), "create") < 0 ||
        check(kith_field_set(t, "contacts", &id, "name", &name), "set name") < 0) {
        kith_txn_abort(&t);
        goto out;
    }
    if (check(kith_txn_commit(&t), "commit") < 0 || check(carry(a, b, bundle), "bundle") < 0)
        goto out;

    /* Both edit the phone number while apart, then meet again. */
    if (check(set_phone(a, &id, "+44 20 7946 0001"), "edit on phone") < 0 ||
        check(set_phone(b, &id, "+44 20 7946 0002"), "edit on laptop") < 0 ||
        check(carry(a, b, bundle), "bundle") < 0 || check(carry(b, a, bundle), "bundle") < 0)
        goto out;

    kith_buf ea = {0}, eb = {0};
    if (check(kith_export_json(a, &ea), "export") == 0 &&
        check(kith_export_json(b, &eb), "export") == 0) {
        bool same = ea.len == eb.len && memcmp(ea.data, eb.data, ea.len) == 0;
        printf("replicas converged: %s\n", same ? "yes" : "NO");
        rc = same ? 0 : 1;
    } else {
        rc = 1;
    }
    kith_free(ea.data);
    kith_free(eb.data);
    kith_close(a);
    kith_close(b);
    return rc;
out:
    kith_close(a);
    kith_close(b);
    return 1;
}
