/*
 * replica.c — replicas for the store and sync scenarios, through the public API only
 * (include/kith.h): a source replica holding N ops written the way an app writes them, and
 * fresh receivers that trust it.
 *
 * The source's history: contacts created in transactions of 50 (DOC_ADD and a 20-byte name:
 * 2 ops each), one contact per 4 ops of the total up to 10,000, then random writes of 20-byte
 * values to name, phone, company or notes of a random contact, in transactions of 10 ops, until
 * it holds exactly N ops. Name writes move the contacts.name index, so the receivers maintain
 * it. The source is written with KITH_NOSYNC (set-up, not measured), then closed.
 */
#include "replica.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOCS_PER_TXN 50u
#define OPS_PER_TXN 10u
#define MAX_DOCS 10000u

static const char *const fields[] = {"name", "phone", "company", "notes"};

static int
fail(kith_replica *r, const char *what, int rc)
{
    fprintf(stderr, "kith-bench: %s: %s%s%s\n", what, kith_strerror(rc), r ? ": " : "",
            r ? kith_errmsg(r) : "");
    return -1;
}

static void
fill_value(char *v, uint64_t *seed)
{
    for (int j = 0; j < BENCH_VALUE_BYTES; j++)
        v[j] = (char)('a' + bench_rand(seed) % 26);
}

int
bench_source_make(const struct bench_opts *o, uint64_t n, struct bench_source *src)
{
    kith_replica *r = NULL;
    kith_txn *t = NULL;
    kith_docid *docs = NULL;
    char v[BENCH_VALUE_BYTES];
    uint64_t seed = 1234 + n, done = 0;
    int rc;

    memset(src, 0, sizeof *src);
    if (n < 2)
        return -1;
    if (bench_tmpdir(o, "source", src->dir, sizeof src->dir) != 0)
        return -1;
    uint32_t ndocs = (uint32_t)(n / 4 < MAX_DOCS ? n / 4 : MAX_DOCS);
    if (ndocs == 0)
        ndocs = 1;
    docs = calloc(ndocs, sizeof *docs);
    if (docs == NULL)
        return -1;
    rc = kith_open(src->dir, KITH_CREATE | KITH_NOSYNC, &r);
    if (rc < 0) {
        fail(NULL, "open source", rc);
        goto out;
    }
    rc = kith_schema_apply(r, kith_schema_crm(), strlen(kith_schema_crm()));
    if (rc < 0) {
        fail(r, "declare the schema", rc);
        goto out;
    }
    for (uint32_t i = 0; i < ndocs && rc == 0; i += DOCS_PER_TXN) {
        rc = kith_txn_begin(r, KITH_TXN_WRITE, &t);
        for (uint32_t j = i; rc == 0 && j < ndocs && j < i + DOCS_PER_TXN && done + 2 <= n; j++) {
            kith_value val = {.type = KITH_TYPE_STRING, .u.s = {v, BENCH_VALUE_BYTES}};
            fill_value(v, &seed);
            rc = kith_doc_create(t, "contacts", &docs[j]);
            if (rc == 0)
                rc = kith_field_set(t, "contacts", &docs[j], "name", &val);
            done += 2;
        }
        if (rc == 0)
            rc = kith_txn_commit(&t);
        kith_txn_abort(&t);
    }
    while (rc == 0 && done < n) {
        rc = kith_txn_begin(r, KITH_TXN_WRITE, &t);
        for (uint32_t i = 0; rc == 0 && i < OPS_PER_TXN && done < n; i++, done++) {
            uint64_t x = bench_rand(&seed);
            kith_value val = {.type = KITH_TYPE_STRING, .u.s = {v, BENCH_VALUE_BYTES}};
            fill_value(v, &seed);
            rc = kith_field_set(t, "contacts", &docs[x % ndocs], fields[(x >> 32) % 4], &val);
        }
        if (rc == 0)
            rc = kith_txn_commit(&t);
        kith_txn_abort(&t);
    }
    if (rc < 0) {
        fail(r, "write source", rc);
        goto out;
    }
    kith_replica_pubkey(r, src->pk);
    src->id = kith_replica_id(r);
    src->ops = done;
    src->ndocs = ndocs;
out:
    kith_close(r);
    free(docs);
    return rc < 0 ? -1 : 0;
}

int
bench_source_batches(struct bench_source *src, size_t max_ops)
{
    kith_replica *r = NULL;
    kith_batch_opts opts = {.max_ops = max_ops};
    int rc = kith_open(src->dir, 0, &r);
    if (rc < 0)
        return fail(NULL, "open source", rc);
    for (;;) {
        kith_batch_info info;
        kith_buf *p;
        if (src->nbatches == sizeof src->batches / sizeof src->batches[0]) {
            rc = -1;
            break;
        }
        p = &src->batches[src->nbatches];
        rc = kith_batch_create(r, &opts, p, &info);
        if (rc < 0) {
            fail(r, "batch create", rc);
            break;
        }
        src->nbatches++;
        src->batch_ops += info.ops;
        src->batch_bytes += p->len;
        if (!info.has_more)
            break;
        opts.cursor = info.next_cursor;
    }
    kith_close(r);
    if (rc == 0 && src->batch_ops != src->ops) {
        fprintf(stderr, "kith-bench: batches hold %llu ops, the source %llu\n",
                (unsigned long long)src->batch_ops, (unsigned long long)src->ops);
        rc = -1;
    }
    return rc < 0 ? -1 : 0;
}

void
bench_source_free(struct bench_source *src)
{
    for (size_t i = 0; i < src->nbatches; i++)
        kith_free(src->batches[i].data);
    if (src->dir[0])
        bench_rmtree(src->dir);
    memset(src, 0, sizeof *src);
}

int
bench_receiver_open(const struct bench_opts *o, const struct bench_source *src, unsigned flags,
                    char *dir, size_t cap, kith_replica **out)
{
    int rc;
    *out = NULL;
    if (bench_tmpdir(o, "replica", dir, cap) != 0)
        return -1;
    rc = kith_open(dir, KITH_CREATE | flags, out);
    if (rc < 0)
        return fail(NULL, "open replica", rc);
    rc = kith_schema_apply(*out, kith_schema_crm(), strlen(kith_schema_crm()));
    if (rc < 0) {
        fail(*out, "declare the schema", rc);
        kith_close(*out);
        *out = NULL;
        return -1;
    }
    if (src != NULL) {
        rc = kith_trust_add(*out, src->pk, "source", NULL);
        if (rc < 0) {
            fail(*out, "trust", rc);
            kith_close(*out);
            *out = NULL;
            return -1;
        }
    }
    return 0;
}
