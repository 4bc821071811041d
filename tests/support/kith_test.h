/*
 * kith_test.h — helpers shared by the Criterion tests: temporary replica directories (made
 * with mkdtemp under /tmp, removed by kt_free), opening and pairing replicas, a seeded
 * generator (KITH_SEED replays a run, KITH_CASES scales it), and moving ops between two
 * replicas with a batch. Every helper asserts on failure, so a test reads as its steps.
 *
 *   struct kt_replica a = kt_new(), b = kt_new();   // fresh replicas, trusting no one
 *   kt_trust_pair(&a, &b);                           // each trusts the other's key
 *   kith_docid c = kt_contact(a.r, "Ada");           // one committed contact
 *   kt_sync(&a, &b);                                 // b applies what it lacks from a
 *   kt_free(&a); kt_free(&b);                        // close and remove the directories
 */
#ifndef KITH_TEST_H
#define KITH_TEST_H

#include "kith.h"

#include <stddef.h>
#include <stdint.h>

struct kt_replica {
    char *dir;  /* the replica's directory (under a mkdtemp directory) */
    char *root; /* the mkdtemp directory itself, removed by kt_free */
    kith_replica *r;
};

/* A new replica (KITH_CREATE | KITH_NOSYNC) in a fresh temporary directory. */
struct kt_replica kt_new(void);
/* The same with other open flags and an initial map size (0: the default). */
struct kt_replica kt_new_flags(unsigned flags, size_t mapsize);
/* Close (if open) and open again with `flags`. */
void kt_reopen(struct kt_replica *k, unsigned flags);
/* Copy a file byte for byte (the copy mode 0600, as kith makes its files). */
void kt_copy_file(const char *from, const char *to);
/* A copy of f's directory (data.mdb and key: a backup restored elsewhere, the same origin)
 * opened as a replica of its own, KITH_NOSYNC; f is closed around the copy and opened again
 * with KITH_NOSYNC. */
struct kt_replica kt_copy_of(struct kt_replica *f);
/* Close the replica and remove its directory tree. */
void kt_free(struct kt_replica *k);

/* A fresh temporary directory (free() it; remove it with kt_rmtree). */
char *kt_tmpdir(void);
void kt_rmtree(const char *path);

/* a trusts b's key and b trusts a's. */
void kt_trust_pair(struct kt_replica *a, struct kt_replica *b);

/* Batch from `from` of everything `to` lacks, applied to `to`; returns the apply info. */
kith_apply_info kt_sync(struct kt_replica *from, struct kt_replica *to);

/* A STRING value viewing s (no copy). */
kith_value kt_str(const char *s);
/* Begin a write or read transaction (asserts success). */
kith_txn *kt_wbegin(kith_replica *r);
kith_txn *kt_rbegin(kith_replica *r);
/* Commit t (asserts success, naming the error). */
void kt_commit(kith_txn *t);

/* Create a contact with this name in its own transaction; returns its id. */
kith_docid kt_contact(kith_replica *r, const char *name);
/* Set a string field in its own transaction (asserts success). */
void kt_set_str(kith_replica *r, const char *coll, const kith_docid *doc, const char *field,
                const char *value);
/* The string value of a field ("" for NULL) copied into buf. */
const char *kt_get_str(kith_replica *r, const char *coll, const kith_docid *doc, const char *field,
                       char *buf, size_t cap);

/* The export of a replica as a NUL-terminated string (free()). */
char *kt_export(kith_replica *r);

/* Seeded generator: kt_seed() reads KITH_SEED (else picks one) and prints it to stderr;
 * kt_cases(d) reads KITH_CASES (else d). kt_next/kt_below draw from a splitmix64 state. */
uint64_t kt_seed(void);
int kt_cases(int dflt);
uint64_t kt_next(uint64_t *state);
uint64_t kt_below(uint64_t *state, uint64_t n);

#endif /* KITH_TEST_H */
