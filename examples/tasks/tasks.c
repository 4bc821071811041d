/*
 * tasks.c — a shared task board, an app with a schema of its own (not the CRM): it declares
 * its collection at every open, as an app runs its migrations, and uses the kinds a board
 * needs: a register for the title and the due time, an add-wins set of labels, a counter of
 * votes (concurrent votes add up) and an enable-wins flag for "done" (a tick on one device
 * against an untick on another: ticked). Two replicas edit one task concurrently, swap
 * bundles, and end up the same; the board is listed through the app's own index.
 *
 *   tasks DIR     (DIR: an empty directory for the two replicas)
 */
#include <kith.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char schema[] = "{\"collections\":{\"tasks\":{"
                             "\"fields\":{"
                             "\"title\":{\"type\":\"string\",\"required\":true,\"max\":200},"
                             "\"due\":{\"type\":\"time\"},"
                             "\"labels\":{\"type\":\"string\",\"crdt\":\"set\",\"max\":32},"
                             "\"votes\":{\"type\":\"integer\",\"crdt\":\"counter\"},"
                             "\"done\":{\"type\":\"boolean\",\"crdt\":\"flag\"}},"
                             "\"indexes\":{\"by_due\":[\"due\"]}}}}";

static int
check(int rc, kith_replica *r, const char *what)
{
    if (rc < 0)
        fprintf(stderr, "tasks: %s: %s%s%s\n", what, kith_strerror(rc), r ? ": " : "",
                r ? kith_errmsg(r) : "");
    return rc;
}

static int
open_board(const char *dir, kith_replica **out)
{
    int rc = kith_open(dir, KITH_CREATE, out);
    if (check(rc, NULL, dir) < 0)
        return rc;
    return check(kith_schema_apply(*out, schema, strlen(schema)), *out, "declare the board");
}

static int
add_task(kith_replica *r, const char *title, int64_t due_ms, kith_docid *id)
{
    kith_txn *t = NULL;
    kith_value v = {.type = KITH_TYPE_STRING, .u.s = {title, strlen(title)}};
    kith_value due = {.type = KITH_TYPE_TIME, .u.i = due_ms};
    int rc = kith_txn_begin(r, KITH_TXN_WRITE, &t);
    if (rc == 0 && (rc = kith_doc_create(t, "tasks", id)) == 0 &&
        (rc = kith_field_set(t, "tasks", id, "title", &v)) == 0)
        rc = kith_field_set(t, "tasks", id, "due", &due);
    if (rc < 0) {
        kith_txn_abort(&t);
        return check(rc, r, "add a task");
    }
    return check(kith_txn_commit(&t), r, "commit");
}

/* One device's edit of a task: votes, a label, and a tick or an untick. */
static int
edit(kith_replica *r, const kith_docid *id, int64_t votes, const char *label, bool done)
{
    kith_txn *t = NULL;
    int rc = kith_txn_begin(r, KITH_TXN_WRITE, &t);
    if (rc == 0 && (rc = kith_counter_add(t, "tasks", id, "votes", votes)) == 0 &&
        (rc = kith_set_add(t, "tasks", id, "labels", label, strlen(label))) == 0)
        rc = kith_flag_set(t, "tasks", id, "done", done);
    if (rc < 0) {
        kith_txn_abort(&t);
        return check(rc, r, "edit");
    }
    return check(kith_txn_commit(&t), r, "commit");
}

static int
carry(kith_replica *from, kith_replica *to, const char *file)
{
    int rc = kith_bundle_write(from, NULL, file, NULL);
    if (rc == 0)
        rc = kith_bundle_apply(to, file, NULL);
    return check(rc, to, "carry a bundle");
}

/* The board by due time, through the app's index. */
static int
print_board(kith_replica *r, const char *who)
{
    kith_txn *t = NULL;
    kith_iter *it = NULL;
    kith_docid id;
    int rc = kith_txn_begin(r, KITH_TXN_READ, &t);
    if (rc == 0)
        rc = kith_iter_index(t, "tasks.by_due", NULL, NULL, NULL, &it);
    while (rc == 0 && (rc = kith_iter_next(it, &id)) == 0) {
        kith_value title, votes, done;
        char due[32];
        kith_iter *labels = NULL;
        const char *e;
        size_t n;
        kith_value dv;
        if ((rc = kith_field_get(t, "tasks", &id, "title", &title)) < 0 ||
            (rc = kith_field_get(t, "tasks", &id, "votes", &votes)) < 0 ||
            (rc = kith_field_get(t, "tasks", &id, "done", &done)) < 0 ||
            (rc = kith_field_get(t, "tasks", &id, "due", &dv)) < 0)
            break;
        kith_time_format(dv.u.i, due);
        printf("%s: %s  \"%.*s\"  votes %lld  done: %s  labels:", who, due, (int)title.u.s.len,
               title.u.s.ptr, (long long)votes.u.i, done.u.b ? "yes" : "no");
        if ((rc = kith_iter_set(t, "tasks", &id, "labels", &labels)) < 0)
            break;
        while (kith_iter_next_elem(labels, &e, &n) == 0)
            printf(" %.*s", (int)n, e);
        kith_iter_close(labels);
        printf("\n");
    }
    kith_iter_close(it);
    kith_txn_abort(&t);
    return rc == KITH_ENOTFOUND ? 0 : check(rc, r, "list the board");
}

int
main(int argc, char **argv)
{
    char pa[4096], pb[4096], bundle[4096];
    kith_replica *a = NULL, *b = NULL;
    kith_buf ea = {0}, eb = {0};
    kith_docid plan, ship;
    uint8_t pk[KITH_PUBKEY_BYTES];
    int rc = -1;

    if (argc != 2) {
        fprintf(stderr, "usage: tasks DIR\n");
        return 2;
    }
    snprintf(pa, sizeof pa, "%s/phone", argv[1]);
    snprintf(pb, sizeof pb, "%s/laptop", argv[1]);
    snprintf(bundle, sizeof bundle, "%s/bundle", argv[1]);
    if (open_board(pa, &a) < 0 || open_board(pb, &b) < 0)
        goto out;
    kith_replica_pubkey(a, pk);
    if (check(kith_trust_add(b, pk, "phone", NULL), b, "trust") < 0)
        goto out;
    kith_replica_pubkey(b, pk);
    if (check(kith_trust_add(a, pk, "laptop", NULL), a, "trust") < 0)
        goto out;

    if (add_task(a, "ship the release", 1767225600000, &ship) < 0 ||
        add_task(a, "plan the sprint", 1765000000000, &plan) < 0 ||
        edit(a, &ship, 0, "release", true) < 0 || carry(a, b, bundle) < 0)
        goto out;
    /* apart: the phone votes once and ticks it again; the laptop votes twice and unticks it */
    if (edit(a, &ship, 1, "urgent", true) < 0 || edit(b, &ship, 2, "q4", false) < 0)
        goto out;
    if (carry(a, b, bundle) < 0 || carry(b, a, bundle) < 0)
        goto out;
    if (print_board(a, "phone") < 0 || print_board(b, "laptop") < 0)
        goto out;
    if (check(kith_export_json(a, &ea), a, "export") < 0 ||
        check(kith_export_json(b, &eb), b, "export") < 0)
        goto out;
    printf("replicas converged: %s\n",
           ea.len == eb.len && memcmp(ea.data, eb.data, ea.len) == 0 ? "yes" : "no");
    rc = 0;
out:
    kith_free(ea.data);
    kith_free(eb.data);
    kith_close(a);
    kith_close(b);
    return rc < 0 ? 1 : 0;
}
