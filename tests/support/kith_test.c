/*
 * kith_test.c — the shared test helpers declared in kith_test.h. They assert with Criterion,
 * so they are for tests only.
 */

#include "kith_test.h"
#include "store.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *
kt_tmpdir(void)
{
    char *p = strdup("/tmp/kith-test-XXXXXX");

    cr_assert_not_null(p);
    cr_assert_not_null(mkdtemp(p), "mkdtemp failed");
    return p;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
kt_rmtree(const char *path)
{
    if (path != NULL)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct kt_replica
kt_new_flags(unsigned flags, size_t mapsize)
{
    struct kt_replica k;
    size_t n;
    int rc;

    k.root = kt_tmpdir();
    n = strlen(k.root) + 16;
    k.dir = malloc(n);
    cr_assert_not_null(k.dir);
    snprintf(k.dir, n, "%s/replica", k.root);
    rc = kith__open_sized(k.dir, flags | KITH_CREATE, mapsize, &k.r);
    cr_assert_eq(rc, 0, "kith_open(%s): %s", k.dir, kith_strerror(rc));
    rc = kith_schema_apply(k.r, kith_schema_crm(), strlen(kith_schema_crm()));
    cr_assert_eq(rc, 0, "declaring the CRM schema: %s", kith_errmsg(k.r));
    return k;
}

struct kt_replica
kt_new(void)
{
    return kt_new_flags(KITH_NOSYNC, 0);
}

void
kt_reopen(struct kt_replica *k, unsigned flags)
{
    int rc;

    kith_close(k->r);
    k->r = NULL;
    rc = kith_open(k->dir, flags, &k->r);
    cr_assert_eq(rc, 0, "reopen %s: %s", k->dir, kith_strerror(rc));
}

void
kt_copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out;
    char buf[65536];
    size_t n;

    cr_assert_not_null(in, "%s: %s", from, strerror(errno));
    out = fopen(to, "wb");
    cr_assert_not_null(out, "%s: %s", to, strerror(errno));
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        cr_assert_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    cr_assert_eq(fclose(out), 0);
    cr_assert_eq(chmod(to, 0600), 0);
}

struct kt_replica
kt_copy_of(struct kt_replica *f)
{
    struct kt_replica c = {0};
    char from[1024], to[1024];
    size_t len;

    kith_close(f->r);
    f->r = NULL;
    c.root = kt_tmpdir();
    len = strlen(c.root) + 16;
    c.dir = malloc(len);
    cr_assert_not_null(c.dir);
    snprintf(c.dir, len, "%s/replica", c.root);
    cr_assert_eq(mkdir(c.dir, 0700), 0);
    static const char *const files[] = {"data.mdb", "key"};
    for (size_t i = 0; i < 2; i++) {
        snprintf(from, sizeof from, "%s/%s", f->dir, files[i]);
        snprintf(to, sizeof to, "%s/%s", c.dir, files[i]);
        kt_copy_file(from, to);
    }
    kt_reopen(f, KITH_NOSYNC);
    kt_reopen(&c, KITH_NOSYNC);
    return c;
}

void
kt_free(struct kt_replica *k)
{
    kith_close(k->r);
    k->r = NULL;
    kt_rmtree(k->root);
    free(k->root);
    free(k->dir);
    k->root = k->dir = NULL;
}

void
kt_trust_pair(struct kt_replica *a, struct kt_replica *b)
{
    uint8_t pa[KITH_PUBKEY_BYTES], pb[KITH_PUBKEY_BYTES];
    int rc;

    kith_replica_pubkey(a->r, pa);
    kith_replica_pubkey(b->r, pb);
    rc = kith_trust_add(a->r, pb, "b", NULL);
    cr_assert_eq(rc, 0, "trust: %s", kith_strerror(rc));
    rc = kith_trust_add(b->r, pa, "a", NULL);
    cr_assert_eq(rc, 0, "trust: %s", kith_strerror(rc));
}

kith_apply_info
kt_sync(struct kt_replica *from, struct kt_replica *to)
{
    kith_batch_opts opts = {0};
    kith_apply_info info = {0};
    kith_vv vv = {0};
    kith_buf buf = {0};
    int rc = kith_vv_get(to->r, &vv);

    cr_assert_eq(rc, 0, "vv_get: %s", kith_strerror(rc));
    opts.since = &vv;
    rc = kith_batch_create(from->r, &opts, &buf, NULL);
    cr_assert_eq(rc, 0, "batch_create: %s (%s)", kith_strerror(rc), kith_errmsg(from->r));
    rc = kith_batch_apply(to->r, buf.data, buf.len, &info);
    cr_assert_eq(rc, 0, "batch_apply: %s (%s)", kith_strerror(rc), kith_errmsg(to->r));
    kith_free(buf.data);
    kith_vv_free(&vv);
    return info;
}

kith_docid
kt_contact(kith_replica *r, const char *name)
{
    kith_txn *t = NULL;
    kith_docid id;
    kith_value v = {.type = KITH_TYPE_STRING};
    int rc = kith_txn_begin(r, KITH_TXN_WRITE, &t);

    cr_assert_eq(rc, 0, "begin: %s", kith_strerror(rc));
    rc = kith_doc_create(t, "contacts", &id);
    cr_assert_eq(rc, 0, "create: %s (%s)", kith_strerror(rc), kith_errmsg(r));
    v.u.s.ptr = name;
    v.u.s.len = strlen(name);
    rc = kith_field_set(t, "contacts", &id, "name", &v);
    cr_assert_eq(rc, 0, "set name: %s (%s)", kith_strerror(rc), kith_errmsg(r));
    rc = kith_txn_commit(&t);
    cr_assert_eq(rc, 0, "commit: %s (%s)", kith_strerror(rc), kith_errmsg(r));
    return id;
}

kith_value
kt_str(const char *s)
{
    kith_value v = {.type = KITH_TYPE_STRING};
    v.u.s.ptr = s;
    v.u.s.len = strlen(s);
    return v;
}

kith_txn *
kt_wbegin(kith_replica *r)
{
    kith_txn *t = NULL;
    int rc = kith_txn_begin(r, KITH_TXN_WRITE, &t);
    cr_assert_eq(rc, 0, "begin: %s", kith_strerror(rc));
    return t;
}

kith_txn *
kt_rbegin(kith_replica *r)
{
    kith_txn *t = NULL;
    int rc = kith_txn_begin(r, KITH_TXN_READ, &t);
    cr_assert_eq(rc, 0, "begin: %s", kith_strerror(rc));
    return t;
}

void
kt_commit(kith_txn *t)
{
    int rc = kith_txn_commit(&t);
    cr_assert_eq(rc, 0, "commit: %s", kith_strerror(rc));
}

void
kt_set_str(kith_replica *r, const char *coll, const kith_docid *doc, const char *field,
           const char *value)
{
    kith_txn *t = NULL;
    kith_value v = {.type = KITH_TYPE_STRING};
    int rc = kith_txn_begin(r, KITH_TXN_WRITE, &t);

    cr_assert_eq(rc, 0);
    v.u.s.ptr = value;
    v.u.s.len = strlen(value);
    rc = kith_field_set(t, coll, doc, field, &v);
    cr_assert_eq(rc, 0, "set %s: %s (%s)", field, kith_strerror(rc), kith_errmsg(r));
    rc = kith_txn_commit(&t);
    cr_assert_eq(rc, 0, "commit: %s (%s)", kith_strerror(rc), kith_errmsg(r));
}

const char *
kt_get_str(kith_replica *r, const char *coll, const kith_docid *doc, const char *field, char *buf,
           size_t cap)
{
    kith_txn *t = NULL;
    kith_value v;
    int rc = kith_txn_begin(r, KITH_TXN_READ, &t);

    cr_assert_eq(rc, 0);
    rc = kith_field_get(t, coll, doc, field, &v);
    cr_assert_eq(rc, 0, "get %s: %s", field, kith_strerror(rc));
    buf[0] = '\0';
    if (v.type == KITH_TYPE_STRING) {
        size_t n = v.u.s.len < cap - 1 ? v.u.s.len : cap - 1;
        memcpy(buf, v.u.s.ptr, n);
        buf[n] = '\0';
    }
    kith_txn_abort(&t);
    return buf;
}

char *
kt_export(kith_replica *r)
{
    kith_buf b = {0};
    char *s;
    int rc = kith_export_json(r, &b);

    cr_assert_eq(rc, 0, "export: %s", kith_strerror(rc));
    s = malloc(b.len + 1);
    cr_assert_not_null(s);
    memcpy(s, b.data, b.len);
    s[b.len] = '\0';
    kith_free(b.data);
    return s;
}

uint64_t
kt_seed(void)
{
    const char *e = getenv("KITH_SEED");
    uint64_t seed;

    if (e != NULL && *e != '\0')
        seed = strtoull(e, NULL, 0);
    else
        seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    fprintf(stderr, "KITH_SEED=%llu\n", (unsigned long long)seed);
    return seed;
}

int
kt_cases(int dflt)
{
    const char *e = getenv("KITH_CASES");
    long n = e != NULL ? strtol(e, NULL, 10) : 0;

    return n > 0 && n < 1000000 ? (int)n : dflt;
}

uint64_t
kt_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t
kt_below(uint64_t *state, uint64_t n)
{
    return n == 0 ? 0 : kt_next(state) % n;
}
