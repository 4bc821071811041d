/*
 * test_crash.c — crash safety by killing. A child process opens a replica and commits a
 * numbered stream of transactions (a contact with its name and notes, now and then an edit
 * of an earlier one), reporting each number through a pipe once kith_txn_commit returned.
 * The parent kills it with SIGKILL at a random moment (KITH_SEED replays the moments), then
 * reopens the replica: kith_verify must find it sound, every reported transaction must be
 * there, and no transaction may be there in part. Several rounds run on one replica, which
 * starts from a small map so that growth happens under the kills too.
 */
#include "kith_test.h"
#include "store.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OPS_PER_TXN 3 /* DOC_ADD, name, notes */

/* The child: commit transactions numbered from `first` until killed. Never returns. */
static void
child_run(const char *dir, unsigned flags, int first, int fd, uint64_t seed)
{
    kith_replica *r = NULL;
    char notes[4096], name[64];
    uint64_t st = seed;

    if (kith_open(dir, flags, &r) != 0)
        _exit(2);
    memset(notes, 'x', sizeof notes);
    for (int i = first;; i++) {
        kith_txn *t = NULL;
        kith_docid id;
        kith_value v = {.type = KITH_TYPE_STRING};
        if (kith_txn_begin(r, KITH_TXN_WRITE, &t) != 0)
            _exit(3);
        snprintf(name, sizeof name, "txn-%d", i);
        v.u.s.ptr = name;
        v.u.s.len = strlen(name);
        if (kith_doc_create(t, "contacts", &id) != 0 ||
            kith_field_set(t, "contacts", &id, "name", &v) != 0)
            _exit(4);
        v.u.s.ptr = notes;
        v.u.s.len = 100 + kt_below(&st, 3000);
        if (kith_field_set(t, "contacts", &id, "notes", &v) != 0)
            _exit(5);
        if (kith_txn_commit(&t) != 0)
            _exit(6);
        if (write(fd, &i, sizeof i) != (ssize_t)sizeof i)
            _exit(7);
    }
}

struct found {
    int max_name;      /* highest txn number present */
    int count;         /* contacts */
    int without_notes; /* contacts whose notes are missing: a partial transaction */
    uint8_t *seen;     /* seen[i] for txn-i */
    int cap;
};

static void
scan(kith_replica *r, struct found *f)
{
    kith_txn *t = NULL;
    kith_iter *it = NULL;
    kith_docid d;

    memset(f->seen, 0, (size_t)f->cap);
    f->max_name = 0;
    f->count = 0;
    f->without_notes = 0;
    cr_assert_eq(kith_txn_begin(r, KITH_TXN_READ, &t), 0);
    cr_assert_eq(kith_iter_docs(t, "contacts", &it), 0);
    while (kith_iter_next(it, &d) == 0) {
        kith_value name, notes;
        char buf[64];
        int n;
        cr_assert_eq(kith_field_get(t, "contacts", &d, "name", &name), 0);
        cr_assert_eq(kith_field_get(t, "contacts", &d, "notes", &notes), 0);
        cr_assert_eq(name.type, KITH_TYPE_STRING);
        cr_assert_lt(name.u.s.len, sizeof buf);
        memcpy(buf, name.u.s.ptr, name.u.s.len);
        buf[name.u.s.len] = '\0';
        cr_assert_eq(sscanf(buf, "txn-%d", &n), 1, "name %s", buf);
        cr_assert(n > 0 && n < f->cap);
        cr_assert_eq(f->seen[n], 0, "txn-%d twice", n);
        f->seen[n] = 1;
        if (n > f->max_name)
            f->max_name = n;
        f->count++;
        if (notes.type != KITH_TYPE_STRING)
            f->without_notes++;
    }
    kith_iter_close(it);
    kith_txn_abort(&t);
}

static uint64_t
own_applied(kith_replica *r)
{
    kith_vv vv = {0};
    uint64_t seq = 0;
    cr_assert_eq(kith_vv_get(r, &vv), 0);
    for (size_t i = 0; i < vv.len; i++)
        if (vv.entries[i].origin == kith_replica_id(r))
            seq = vv.entries[i].seq;
    kith_vv_free(&vv);
    return seq;
}

Test(crash, sigkill_keeps_whole_committed_transactions, .timeout = 300)
{
    struct kt_replica k = kt_new_flags(KITH_NOSYNC, 512 << 10);
    uint64_t seed = kt_seed(), st = seed;
    int rounds = kt_cases(6), next = 1;
    struct found f = {.cap = 1 << 20};

    f.seen = calloc((size_t)f.cap, 1);
    cr_assert_not_null(f.seen);
    kith_close(k.r);
    k.r = NULL;
    for (int round = 0; round < rounds; round++) {
        int fds[2], status, last = next - 1, got;
        /* the last round is durable (fsync at every commit), the others not */
        unsigned flags = round == rounds - 1 ? 0 : KITH_NOSYNC;
        int wait_for = 1 + (int)kt_below(&st, round == rounds - 1 ? 20 : 300);
        pid_t pid;

        cr_assert_eq(pipe(fds), 0);
        pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            close(fds[0]);
            child_run(k.dir, flags, next, fds[1], seed + (uint64_t)round);
        }
        close(fds[1]);
        /* let it commit `wait_for` transactions, then kill it somewhere in the next ones */
        for (int n = 0; n < wait_for && read(fds[0], &got, sizeof got) == sizeof got; n++)
            last = got;
        struct timespec ts = {0, (long)kt_below(&st, 3000000)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "round %d: the child ended by itself (status %d, KITH_SEED=%llu)", round, status,
                  (unsigned long long)seed);
        while (read(fds[0], &got, sizeof got) == sizeof got)
            last = got;
        close(fds[0]);

        cr_assert_eq(kith_open(k.dir, 0, &k.r), 0, "round %d: reopen failed", round);
        kith_verify_report rep;
        cr_assert_eq(kith_verify(k.r, &rep), 0);
        cr_assert_eq(rep.problems, 0, "round %d: %s (KITH_SEED=%llu)", round, rep.first_problem,
                     (unsigned long long)seed);
        scan(k.r, &f);
        for (int i = 1; i <= last; i++)
            cr_assert(f.seen[i], "round %d: reported txn-%d is missing (KITH_SEED=%llu)", round, i,
                      (unsigned long long)seed);
        /* at most the one the child committed but had no time to report */
        cr_assert_leq(f.max_name, last + 1, "round %d (KITH_SEED=%llu)", round,
                      (unsigned long long)seed);
        cr_assert_eq(f.count, f.max_name, "round %d: a hole in the numbers", round);
        cr_assert_eq(f.without_notes, 0, "round %d: a partial transaction", round);
        cr_assert_eq(own_applied(k.r), (uint64_t)f.count * OPS_PER_TXN);
        next = f.max_name + 1;
        kith_close(k.r);
        k.r = NULL;
    }
    cr_assert_gt(next, rounds, "too few transactions were committed to test anything");
    free(f.seen);
    kt_free(&k);
}
