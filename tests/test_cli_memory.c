/*
 * test_cli_memory.c — a listing's memory does not grow with the list (spec/cli.md CLI-11).
 *
 * Each test fills a replica through the library (fast: thousands of contacts per commit),
 * runs the real `kith` binary on it and reads the child's peak resident set from wait4().
 * The bound is what streaming allows: the peak of a command that lists nothing (`kith id`,
 * libraries and start-up) plus the whole data file, which the listing maps and may touch
 * every page of, plus a little slack. A listing that holds its elements exceeds it: when
 * lists were collected before printing, `contact ls --json` of 100,000 contacts peaked at
 * 177 MB and the table at 72 MB against a bound of 65 MB, `log --json` of 100,000 ops at
 * 219 MB against 25 MB. Under AddressSanitizer the quarantine keeps freed memory resident,
 * so the bounds are not checked there.
 *   KITH_BIN   the kith binary (ctest sets it; default build/kith)
 */
#include "kith_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define SLACK_KB (8 * 1024) /* what a listing may hold beyond a command that lists nothing */
/* Contacts listed: under the sanitizers, which check no bound, only enough to list them all */
#define NCONTACTS (SANITIZED ? 10000 : 100000)
#define PER_COMMIT 10000

/* n contacts, each with a name, an e-mail address and a tag: four ops apiece. */
static void
fill(kith_replica *r, int n)
{
    for (int i = 0; i < n;) {
        kith_txn *t = kt_wbegin(r);
        for (int j = 0; j < PER_COMMIT && i < n; j++, i++) {
            char name[32], email[32];
            kith_docid d;
            snprintf(name, sizeof name, "Contact %07d", (int)(((long)i * 7919) % n));
            snprintf(email, sizeof email, "c%d@example.org", i);
            kith_value vn = kt_str(name), ve = kt_str(email);
            cr_assert_eq(kith_doc_create(t, "contacts", &d), 0);
            cr_assert_eq(kith_field_set(t, "contacts", &d, "name", &vn), 0);
            cr_assert_eq(kith_field_set(t, "contacts", &d, "email", &ve), 0);
            cr_assert_eq(kith_set_add(t, "contacts", &d, "tags", "vip", 3), 0);
        }
        kt_commit(t);
    }
}

/* A replica of n contacts, closed so that the CLI has it to itself. */
static struct kt_replica
replica_of(int n)
{
    struct kt_replica k = kt_new();
    fill(k.r, n);
    kith_close(k.r);
    k.r = NULL;
    return k;
}

static const char *
kith_bin(void)
{
    const char *bin = getenv("KITH_BIN");
    return bin != NULL && bin[0] != '\0' ? bin : KITH_BINARY_DIR "/kith";
}

/* Run `kith --dir DIR args...` with stdout into `out`; assert exit 0; its peak RSS in KB. */
static long
peak_kb(const char *dir, const char *out, const char *const *args)
{
    const char *argv[16] = {"kith", "--dir", dir};
    size_t n = 3;
    struct rusage ru;
    int status;
    pid_t pid;

    for (; *args != NULL && n < 15; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
            _exit(126);
        execv(kith_bin(), (char *const *)argv);
        _exit(127);
    }
    cr_assert_eq(wait4(pid, &status, 0, &ru), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "kith %s %s: status %d", argv[3],
              argv[4] != NULL ? argv[4] : "", status);
    return ru.ru_maxrss;
}

static long
file_kb(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    return (long)(st.st_size / 1024);
}

/* How many times `needle` occurs in the file `path`. */
static size_t
count_in(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    size_t n = 0, len = strlen(needle), have = 0;
    char buf[1 << 16];

    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    /* the last len-1 bytes of a block go in front of the next, so that a match may
     * straddle two reads; being shorter than the needle, they hold no match of their own */
    for (size_t got; (got = fread(buf + have, 1, sizeof buf - have, f)) > 0;) {
        size_t end = have + got;
        for (const char *p = buf; (p = memmem(p, (size_t)(buf + end - p), needle, len)) != NULL;
             p += len)
            n++;
        have = end >= len ? len - 1 : end;
        memmove(buf, buf + end - have, have);
    }
    fclose(f);
    return n;
}

/* Assert that listing `args` on `k` peaks within the streaming bound. */
static void
assert_flat(const struct kt_replica *k, const char *const *args, const char *what)
{
    static const char *const id[] = {"id", NULL};
    char out[512];
    long base, peak, bound;

    snprintf(out, sizeof out, "%s/out", k->root);
    base = peak_kb(k->dir, out, id);
    peak = peak_kb(k->dir, out, args);
    bound = base + file_kb(k->dir, "data.mdb") + SLACK_KB;
    cr_log_info("%s: peak %ld KB, bound %ld KB (kith id %ld KB)", what, peak, bound, base);
    if (!SANITIZED)
        cr_expect_leq(peak, bound, "%s: peak RSS %ld KB, above %ld KB", what, peak, bound);
}

Test(cli_memory, contact_ls_is_written_as_it_is_read, .timeout = 240)
{
    static const char *const json[] = {"contact", "ls", "--json", NULL};
    static const char *const table[] = {"contact", "ls", NULL};
    struct kt_replica k = replica_of(NCONTACTS);
    char out[512];

    snprintf(out, sizeof out, "%s/out", k.root);
    assert_flat(&k, json, "contact ls --json");
    cr_expect_eq(count_in(out, "\n    {\n      \"birthday\": "), NCONTACTS);
    cr_expect_eq(count_in(out, "{\n  \"contacts\": [\n"), 1);
    cr_expect_eq(count_in(out, "\n    }\n  ]\n}\n"), 1);
    assert_flat(&k, table, "contact ls");
    cr_expect_eq(count_in(out, "@example.org"), NCONTACTS);
    kt_free(&k);
}

Test(cli_memory, log_json_is_written_as_it_is_read, .timeout = 120)
{
    static const char *const args[] = {"log", "--json", NULL};
    struct kt_replica k = replica_of(NCONTACTS / 4);
    char out[512];

    assert_flat(&k, args, "log --json");
    snprintf(out, sizeof out, "%s/out", k.root);
    cr_expect_eq(count_in(out, "\n      \"applied\": "), NCONTACTS); /* four ops each */
    kt_free(&k);
}

/* `kith ls`, for any collection: the table reads the documents three times (the columns of
 * undeclared fields, the widths, the rows), the JSON once. */
Test(cli_memory, generic_ls_is_written_as_it_is_read, .timeout = 240)
{
    static const char *const json[] = {"ls", "contacts", "--json", NULL};
    static const char *const table[] = {"ls", "contacts", "--index", "name", NULL};
    struct kt_replica k = replica_of(NCONTACTS);
    char out[512];

    snprintf(out, sizeof out, "%s/out", k.root);
    assert_flat(&k, json, "ls contacts --json");
    cr_expect_eq(count_in(out, "\n    {\n      \"birthday\": "), NCONTACTS);
    cr_expect_eq(count_in(out, "{\n  \"contacts\": [\n"), 1);
    assert_flat(&k, table, "ls contacts --index name");
    cr_expect_eq(count_in(out, "@example.org"), NCONTACTS);
    kt_free(&k);
}
