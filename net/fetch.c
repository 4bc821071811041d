/*
 * fetch.c — a fork found in a session is proven in that session (spec/protocol.md NET-33..35,
 * decisions.md D-24). A proof needs both histories from a point they share; the handshake
 * shows only each side's chain head, and a batch run that starts past the parting point
 * (its base differs) shows the other history without that point. So in protocol 5 the side
 * that finds a difference asks the peer for its history: FETCH names the origin and, at
 * commit ends of its own log spaced ever wider below the suspect seq (at or below S, S - 1,
 * S - 3, S - 7, ...), its chain hashes; the peer answers FETCHED with its run of the origin
 * from the highest of those points it holds alike, as a batch. Applying that batch is the
 * ordinary apply: a run that differs from the log after a shared commit is a fork, recorded
 * from the origin's signed head, and kith__proof_from_batch makes the proof in the same
 * transaction; a proof that settles the fork is settled right after. The samples cost one
 * small frame, and the run sent overshoots the parting point by at most its own distance
 * from S, so a fork of a few edits costs a few commits whatever the history's length.
 *
 * Heads are only the peer's word: in protocol 5 a difference of heads records nothing. What
 * records a fork is the fetched run, verified from the origin's signature; a peer that lies
 * about a head can only send the true history (nothing differs) or nothing.
 *
 * Proofs then travel as before (NET-32), but only where they differ: the handshake of
 * protocol 5 carries the digest of the proofs held, and a side sends its proofs when the
 * peer's digest is another, or when its own changed during the session.
 */
#include "net.h"
#include "store.h" /* kith__heads_differ, kith__chain_*, kith__batch_*, kith__proof_digest */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How many times this session asked for `origin` (at most twice: once to prove the fork,
 * once more for the kept history after setting ours aside). */
static unsigned
asked(const struct kith__session *s, uint64_t origin)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->nfetched; i++)
        n += s->fetched[i] == origin;
    return n;
}

static int fetch_send(struct kith__session *s, uint64_t origin, uint64_t from);

int
kith__fetch_ask(struct kith__session *s, uint64_t origin, uint64_t from)
{
    if (s->state != KITH__SS_OPEN || s->proto < 5 || asked(s, origin) > 0 ||
        s->nfetched == KITH__FETCH_MAX)
        return 0;
    return fetch_send(s, origin, from);
}

/*
 * A fork this replica settled by setting its own history aside, while the peer still counts
 * that history as held here (what a peer holds only grows in a session, NET-8): ask for the
 * peer's history from the shared seq, so that the kept one arrives in this session (a run
 * of another is set aside again, FORK-10).
 */
static void
fetch_kept(struct kith__session *s)
{
    kith_fork *f = NULL;
    kith_vv mine = {0, NULL};
    size_t n = 0;

    if (s->state != KITH__SS_OPEN || s->proto < 5 || kith_forks_get(s->r, &f, &n) < 0)
        return;
    if (n > 0 && kith_vv_get(s->r, &mine) == 0) {
        for (size_t i = 0; i < n && s->state == KITH__SS_OPEN; i++) {
            uint64_t o = f[i].origin;
            if (!f[i].has_proof || o == kith_replica_id(s->r) ||
                f[i].holds == KITH_FORK_HOLDS_WINNER || asked(s, o) > 1 ||
                s->nfetched == KITH__FETCH_MAX ||
                kith__vv_get(&s->peer->known, o) <= kith__vv_get(&mine, o))
                continue;
            (void)fetch_send(s, o, f[i].proof_seq);
        }
        kith_vv_free(&mine);
    }
    kith_forks_free(f, n);
}

void
kith__fetch_kept_after_batch(struct kith__session *s)
{
    size_t n = 0;

    (void)kith__fork_notes_told(s->r, &n);
    if (n > 0)
        fetch_kept(s);
}

static int
fetch_send(struct kith__session *s, uint64_t origin, uint64_t from)
{
    uint64_t seqs[KITH__WIRE_MAX_SAMPLES];
    uint8_t chains[KITH__WIRE_MAX_SAMPLES * KITH_HASH_BYTES];
    struct kith__msg m;
    size_t n = 0;
    char who[96];
    int rc;

    s->fetched[s->nfetched++] = origin;
    rc = kith__chain_samples(s->r, origin, from, seqs, chains, KITH__WIRE_MAX_SAMPLES, &n);
    if (rc < 0) {
        kith__log(s->log, KITH_LOG_WARNING, "peer %s: cannot read the chain of %016llx: %s (%s)",
                  kith__session_peer_name(s, who, sizeof who), (unsigned long long)origin,
                  kith_strerror(rc), kith_errmsg(s->r));
        return 0;
    }
    if (n == 0) {
        /* nothing of ours ends at or below `from`: ask for the whole run, by naming seq 1
         * with the zero hash, which no history has there (it is the chain before seq 1) */
        n = 1;
        seqs[0] = 1;
        memset(chains, 0, KITH_HASH_BYTES);
    }
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_FETCH;
    m.origin = origin;
    m.nsamples = n;
    m.samples = seqs;
    m.chains = chains;
    rc = kith__session_send(s, &m);
    if (rc < 0) {
        kith__session_close(s, rc, false, false, "could not send FETCH: %s", kith_strerror(rc));
        return rc;
    }
    s->fetch_out++;
    kith__log(s->log, KITH_LOG_INFO,
              "peer %s holds another history of origin %016llx (from seq %llu down): asking "
              "for it, from a point both hold",
              kith__session_peer_name(s, who, sizeof who), (unsigned long long)origin,
              (unsigned long long)from);
    return 0;
}

void
kith__fetch_suspects(struct kith__session *s, const kith_vv *vv, const uint8_t *heads)
{
    struct kith__head_diff *d = NULL;
    size_t n = 0;
    char who[96];
    int rc = kith__heads_differ(s->r, vv, heads, &d, &n);

    if (rc < 0) {
        kith__log(s->log, KITH_LOG_WARNING, "peer %s: could not compare chain heads: %s (%s)",
                  kith__session_peer_name(s, who, sizeof who), kith_strerror(rc),
                  kith_errmsg(s->r));
        return;
    }
    s->diverged |= n > 0;
    for (size_t i = 0; i < n && s->state == KITH__SS_OPEN; i++)
        if (!d[i].has_proof)
            (void)kith__fetch_ask(s, d[i].origin, d[i].seq);
    free(d);
}

int
kith__fetch_answer(struct kith__session *s, const struct kith__msg *m)
{
    kith_vv since = {0, NULL};
    kith_batch_opts opts;
    kith_batch_info info;
    kith_buf buf = {NULL, 0};
    struct kith__build_opts xo = {KITH__BATCH_FORMAT_FOR_PROTO(s->proto), false, false};
    struct kith__msg out;
    uint64_t after = 0;
    char who[96];
    int rc;

    rc = kith__chain_shared(s->r, m->origin, m->samples, m->chains, m->nsamples, &after);
    if (rc == 0)
        rc = kith_vv_get(s->r, &since);
    if (rc < 0) {
        kith__session_close(s, rc, true, false, "could not answer FETCH: %s (%s)",
                            kith_strerror(rc), kith_errmsg(s->r));
        return rc;
    }
    /* everything we hold but the origin's run after the shared point: that alone is sent */
    for (size_t i = 0; i < since.len; i++)
        if (since.entries[i].origin == m->origin && since.entries[i].seq > after)
            since.entries[i].seq = after;
    memset(&opts, 0, sizeof opts);
    memset(&info, 0, sizeof info);
    opts.since = &since;
    opts.max_ops = KITH__WIRE_BATCH_OPS;
    opts.max_bytes = KITH__WIRE_BATCH_BYTES;
    rc = kith__batch_create(s->r, &opts, &xo, &buf, &info, NULL);
    kith_vv_free(&since);
    if (rc < 0) {
        kith__session_close(s, rc, true, false, "could not answer FETCH: %s (%s)",
                            kith_strerror(rc), kith_errmsg(s->r));
        return rc;
    }
    memset(&out, 0, sizeof out);
    out.type = KITH__MSG_FETCHED;
    out.origin = m->origin;
    out.after = after;
    if (info.ops > 0) {
        out.data = buf.data;
        out.len = buf.len;
    }
    rc = kith__session_send(s, &out);
    kith_free(buf.data);
    if (rc < 0) {
        kith__session_close(s, rc, false, false, "could not send FETCHED: %s", kith_strerror(rc));
        return rc;
    }
    /* the peer applies it and then says DONE again: wait for that one (NET-34) */
    s->peer_done = false;
    s->stats.ops_sent += info.ops;
    kith__log(s->log, KITH_LOG_DEBUG,
              "peer %s asked for origin %016llx: %llu ops sent after seq %llu, the highest "
              "point both hold",
              kith__session_peer_name(s, who, sizeof who), (unsigned long long)m->origin,
              (unsigned long long)info.ops, (unsigned long long)after);
    return 0;
}

void
kith__fetch_proofs_check(struct kith__session *s)
{
    static const uint8_t none[KITH_HASH_BYTES];
    uint8_t d[KITH_HASH_BYTES];

    if (s->proto < 4 || kith__proof_digest(s->r, d) < 0 ||
        memcmp(d, s->pdigest, KITH_HASH_BYTES) == 0)
        return;
    memcpy(s->pdigest, d, KITH_HASH_BYTES);
    if (memcmp(d, none, KITH_HASH_BYTES) == 0)
        return;
    s->proofs_due = true;
    s->want = true;
    s->done_sent = false;
}

void
kith__log_forks_told(struct kith__session *s, const char *how)
{
    size_t n = 0;
    const uint64_t *told = kith__fork_notes_told(s->r, &n);
    kith_fork *f = NULL;
    size_t nf = 0;
    char who[96], win[17];

    if (n == 0 || kith_forks_get(s->r, &f, &nf) < 0)
        return;
    kith__session_peer_name(s, who, sizeof who);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < nf; j++) {
            const kith_fork *k = &f[j];
            if (k->origin != told[i])
                continue;
            if (!k->has_proof) {
                kith__log(s->log, KITH_LOG_WARNING,
                          "origin %016llx has forked: %s from peer %s shows its signed history "
                          "that differs from this replica's at seq %llu; that origin's run was "
                          "set aside, the others applied",
                          (unsigned long long)k->origin, how, who, (unsigned long long)k->seq);
                continue;
            }
            kith__hex(k->winner, 8, win);
            kith__log(s->log, KITH_LOG_WARNING,
                      "origin %016llx has forked after seq %llu (%s from peer %s): proven, the "
                      "history kept everywhere is %s…, and this replica holds %s",
                      (unsigned long long)k->origin, (unsigned long long)k->proof_seq, how, who,
                      win,
                      k->holds == KITH_FORK_HOLDS_WINNER  ? "it"
                      : k->holds == KITH_FORK_HOLDS_LOSER ? "the other one (its own origin: "
                                                            "it waits for a new key)"
                                                          : "neither now (the other one, if "
                                                            "any, went to the journal)");
        }
    kith_forks_free(f, nf);
}

int
kith__fetch_take(struct kith__session *s, const struct kith__msg *m)
{
    kith_apply_info info;
    char who[96];
    int rc;

    if (s->fetch_out == 0) {
        kith__session_close(s, KITH_EPROTO, true, false, "FETCHED for no FETCH");
        return KITH_EPROTO;
    }
    s->fetch_out--;
    memset(&info, 0, sizeof info);
    if (m->len > 0) {
        rc = kith__batch_apply(s->r, m->data, m->len, &info, NULL);
        if (rc < 0) {
            kith__session_close(
                s, rc, true, false, "history of %016llx fetched is refused: %s (%s)",
                (unsigned long long)m->origin, kith_strerror(rc), kith_errmsg(s->r));
            return rc;
        }
        s->stats.ops_received += info.ops_new + info.ops_known;
        if (info.ops_new || info.ops_applied)
            s->applied = true;
        if (info.forks > 0) {
            s->diverged = true;
            s->stats.forks += info.forks;
        }
        kith__log_forks_told(s, "its history fetched");
        /* a proof made for a fork recorded before (at a run's base, or by an older peer's
         * handshake) settles it now, not at the next batch */
        rc = kith__history_set_aside(s->r, NULL, 0, NULL, NULL);
        if (rc < 0)
            kith__log(s->log, KITH_LOG_WARNING, "peer %s: settling the fork of %016llx: %s (%s)",
                      kith__session_peer_name(s, who, sizeof who), (unsigned long long)m->origin,
                      kith_strerror(rc), kith_errmsg(s->r));
    }
    kith__log(s->log, KITH_LOG_DEBUG,
              "peer %s answered for origin %016llx after seq %llu: %zu bytes, %llu forks",
              kith__session_peer_name(s, who, sizeof who), (unsigned long long)m->origin,
              (unsigned long long)m->after, m->len, (unsigned long long)info.forks);
    /* the kept history, when ours went aside; a new proof goes to the peer, and our DONE is
     * said again after it (NET-34) */
    fetch_kept(s);
    kith__fetch_proofs_check(s);
    s->done_sent = false;
    s->want = true;
    return 0;
}
