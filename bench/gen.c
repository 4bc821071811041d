/*
 * gen.c — deterministic streams of commits for the core scenarios (codec, verification):
 * FIELD_SET ops of one origin on the string fields of 10,000 contacts (name, phone, company,
 * notes), 20-byte values, random (document, field) choices, each op naming the dot it replaced
 * at its author (the previous write to that register, or none), in commits of a fixed size.
 * Commits are of format 2: each names "contacts" and its fields through one shared name table.
 * The documents are taken to be created by the same origin's first seqs, so every dot fits the
 * model and the encoder and decoder see what a real replica writes.
 */
#include "gen.h"

#include <stdlib.h>
#include <string.h>

/* The name table of every commit: the collection, then the fields written. */
static const struct kith__name names[] = {
    {"contacts", 8}, {"name", 4}, {"phone", 5}, {"company", 7}, {"notes", 5}};

#define NSTRING_FIELDS (sizeof names / sizeof names[0] - 1)

int
bench_stream_fields(struct bench_stream *s, uint64_t origin, uint64_t nops, uint32_t per_commit,
                    uint32_t ndocs, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    if (per_commit == 0 || ndocs == 0 || nops == 0)
        return -1;
    size_t ncommits = (size_t)((nops + per_commit - 1) / per_commit);
    kith_dot *last = calloc((size_t)ndocs * NSTRING_FIELDS, sizeof *last);
    s->commits = calloc(ncommits, sizeof *s->commits);
    s->ops = calloc((size_t)nops, sizeof *s->ops);
    s->values = malloc((size_t)nops * BENCH_VALUE_BYTES);
    if (last == NULL || s->commits == NULL || s->ops == NULL || s->values == NULL) {
        free(last);
        bench_stream_free(s);
        return -1;
    }
    s->origin = origin;
    s->nops = nops;
    s->ncommits = ncommits;
    s->ndocs = ndocs;
    uint64_t seq = (uint64_t)ndocs + 1; /* seqs 1..ndocs created the documents */
    uint64_t hlc = (uint64_t)1764000000000 << 16;
    uint64_t done = 0;
    for (size_t ci = 0; ci < ncommits; ci++) {
        struct kith__commit *c = &s->commits[ci];
        uint32_t k = (uint32_t)(nops - done < per_commit ? nops - done : per_commit);
        c->origin = origin;
        c->first_seq = seq;
        c->hlc = ++hlc;
        c->format = 2;
        c->nops = k;
        c->nnames = (uint32_t)(sizeof names / sizeof names[0]);
        c->names = names;
        c->ops = &s->ops[done];
        for (uint32_t i = 0; i < k; i++) {
            struct kith__op *op = &c->ops[i];
            uint64_t r = bench_rand(&seed);
            uint32_t doc = (uint32_t)(r % ndocs);
            uint32_t f = (uint32_t)((r >> 32) % NSTRING_FIELDS);
            char *v = s->values + (done + i) * BENCH_VALUE_BYTES;
            for (int j = 0; j < BENCH_VALUE_BYTES; j++)
                v[j] = (char)('a' + (bench_rand(&seed) % 26));
            op->kind = KITH_OP_FIELD_SET;
            op->coll = 0; /* the numbers of a receiver that numbered the names in table order */
            op->field = (uint8_t)(1 + f);
            op->cname = 0;
            op->fname = (uint16_t)(1 + f);
            op->doc = (kith_dot){origin, 1 + (uint64_t)doc};
            op->replaced = last[(size_t)doc * NSTRING_FIELDS + f];
            op->value.type = KITH_TYPE_STRING;
            op->value.u.s.ptr = v;
            op->value.u.s.len = BENCH_VALUE_BYTES;
            last[(size_t)doc * NSTRING_FIELDS + f] = (kith_dot){origin, seq + i};
        }
        seq += k;
        done += k;
    }
    free(last);
    return 0;
}

void
bench_stream_free(struct bench_stream *s)
{
    free(s->commits);
    free(s->ops);
    free(s->values);
    memset(s, 0, sizeof *s);
}

int
bench_stream_encode(const struct bench_stream *s, struct bench_encoded *e)
{
    memset(e, 0, sizeof *e);
    e->off = calloc(s->ncommits + 1, sizeof *e->off);
    if (e->off == NULL)
        return -1;
    for (size_t i = 0; i < s->ncommits; i++) {
        e->off[i] = e->buf.len;
        if (kith__commit_encode(&s->commits[i], &e->buf) != 0) {
            bench_encoded_free(e);
            return -1;
        }
    }
    e->off[s->ncommits] = e->buf.len;
    e->ncommits = s->ncommits;
    return 0;
}

void
bench_encoded_free(struct bench_encoded *e)
{
    kith__wbuf_free(&e->buf);
    free(e->off);
    memset(e, 0, sizeof *e);
}
