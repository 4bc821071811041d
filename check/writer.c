/*
 * writer.c — kith-check's hidden writer mode (spec/check.md "Faults", `writer`): a second
 * process that writes to one replica, as an app would, until the checker kills it with
 * SIGKILL at a moment the schedule picked, in the middle of a transaction or of a commit.
 *
 *   kith-check --writer DIR FD SEED SKEW_MS
 *
 * It runs the checker's own workload on that one replica (creating and editing its own
 * documents), and after every commit that kith_txn_commit acknowledged it writes the commit's
 * seqs and values to FD as one line (ck_work_ack_text), in one write(2) of less than
 * PIPE_BUF bytes, so the checker reads whole lines or nothing. What the checker read must
 * then be in every replica at the end: an acknowledged write survives a crash of its writer.
 */
#include "check.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
ck_writer_main(int argc, char **argv)
{
    kith_replica *r;
    struct ck_work *w;
    struct ck_result *res;
    char line[4000];
    size_t sent = 0;
    int rc;

    if (argc != 6)
        return 2;
    int fd = (int)strtol(argv[3], NULL, 10);
    uint64_t seed = strtoull(argv[4], NULL, 10);
    rc = kith_open(argv[2], KITH_NOSYNC, &r);
    if (rc < 0) {
        fprintf(stderr, "kith-check writer: cannot open the replica: %s\n", kith_strerror(rc));
        return 3;
    }
    kith__replica_set_clock_offset(r, strtoll(argv[5], NULL, 10));
    res = calloc(1, sizeof(*res));
    if (res == NULL || ck_work_new(1, &r, seed, &w) < 0)
        return 4;
    for (;;) {
        ck_work_step(w, res);
        if (!ck_work_ok(w, res)) {
            fprintf(stderr, "kith-check writer: %s\n", res->failure);
            return 9;
        }
        for (; sent < ck_work_nacks(w); sent++) {
            int len = ck_work_ack_text(w, sent, line, sizeof(line));
            if (len > 0 && write(fd, line, (size_t)len) != len)
                return 5;
        }
        ck_sleep_ms(1 + (int)(seed++ % 4));
    }
}
