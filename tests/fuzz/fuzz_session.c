/*
 * fuzz_session.c — libFuzzer target for the sync session state machine as a server meets it
 * (net/session.c, spec/protocol.md "Session"): a run of frames from a trusted peer fed to
 * kith__session_input over a real scratch replica, with the pumping, anti-entropy, pings and
 * ticks the daemon interleaves, and a send function that may start failing. fuzz_wire covers
 * the decoder alone; here decoded messages reach the handlers: handshake checks, batches
 * applied (kith_batch_apply on real LMDB), ACKs against the window, DONE, REFUSE, BYE.
 *
 * Any sequence must end without a crash, a leak, a large allocation or a broken invariant:
 * every frame the session sends decodes, at most KITH__WIRE_WINDOW batches are in flight, an
 * open session has a peer, the last batch applied only moves forward, and a closed session
 * stays closed and silent.
 *
 * Input: one flags byte, then frames, each a 16-bit big-endian length and that many bytes
 * (the last one may be cut short). Flags: 0x01 the harness first sends the peer's valid
 * HELLO (the fuzzer cannot make its key); 0x02 pump after every frame; 0x04 anti-entropy
 * (announce) after every frame; 0x08 tick and ping after every frame; 0xf0 the send function
 * fails from that send on (0: never).
 *
 * The replica holds two commits of its own and the peer's three, trusts the peer, and is the
 * same for every input: both keys are fixed, and should a batch change it, it is put back.
 * Seeds: tests/fuzz/corpus/session/, written by `KITH_FUZZ_WRITE_SEEDS=DIR fuzz_session`
 * with batches the peer signed (regenerate them after a change of the batch or wire format).
 */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The server replica and what a fresh copy of it is. */
static struct {
    char root[64]; /* scratch directory, removed at exit */
    char dir[96];  /* the server replica */
    kith_replica *r;
    uint8_t *pristine; /* data.mdb as set up, to put back after an input changed it */
    size_t pristine_len;
    uint8_t peer_pk[KITH_PUBKEY_BYTES];
    uint8_t peer_curve[32]; /* its CURVE key, as the ZAP handler would see it */
    uint64_t peer_id;
    uint8_t *hello; /* the peer's HELLO, holding nothing, made once */
    size_t hello_len;
    struct kith__peerstate peer;
    unsigned sends, fail_from; /* sends made by this input; fail from this one (0: never) */
} h;

static void
die(const char *what, int rc)
{
    fprintf(stderr, "fuzz_session: %s: %s\n", what, kith_strerror(rc));
    abort();
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
cleanup(void)
{
    kith_close(h.r);
    h.r = NULL;
    nftw(h.root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A replica in `dir` whose key is derived from `tag`, so ids and signatures are the same in
 * every run (a key file without data is a creation to finish, spec/storage.md "Files"). */
static void
key_of(uint8_t tag, uint8_t pk[KITH_PUBKEY_BYTES], uint8_t sk[64])
{
    uint8_t seed[32];
    memset(seed, tag, sizeof seed);
    crypto_sign_seed_keypair(pk, sk, seed);
}

static kith_replica *
replica_with_key(const char *dir, uint8_t tag, uint8_t pk[KITH_PUBKEY_BYTES])
{
    uint8_t sk[64];
    char path[160];
    kith_replica *r = NULL;
    int fd, rc;

    key_of(tag, pk, sk);
    if (mkdir(dir, 0700) != 0)
        die(dir, -errno);
    snprintf(path, sizeof path, "%s/key", dir);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, sk, sizeof sk) != (ssize_t)sizeof sk || close(fd) != 0)
        die(path, -errno);
    if ((rc = kith_open(dir, KITH_CREATE | KITH_NOSYNC, &r)) < 0)
        die("kith_open", rc);
    if ((rc = kith_schema_apply(r, kith_schema_crm(), strlen(kith_schema_crm()))) < 0)
        die("kith_schema_apply", rc);
    return r;
}

/* A contact with a name, in its own commit. */
static void
add_contact(kith_replica *r, const char *name, const char *tag)
{
    kith_txn *t = NULL;
    kith_docid d;
    kith_value v = {.type = KITH_TYPE_STRING, .u.s = {name, strlen(name)}};
    int rc;
    if ((rc = kith_txn_begin(r, KITH_TXN_WRITE, &t)) < 0 ||
        (rc = kith_doc_create(t, "contacts", &d)) < 0 ||
        (rc = kith_field_set(t, "contacts", &d, "name", &v)) < 0 ||
        (rc = kith_set_add(t, "contacts", &d, "tags", tag, strlen(tag))) < 0 ||
        (rc = kith_txn_commit(&t)) < 0)
        die("writing a contact", rc);
}

static char *
data_path(void)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", h.dir);
    return path;
}

static void
save_pristine(void)
{
    struct stat st;
    int fd;
    kith_close(h.r);
    h.r = NULL;
    fd = open(data_path(), O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0)
        die("data.mdb", -errno);
    h.pristine_len = (size_t)st.st_size;
    h.pristine = malloc(h.pristine_len);
    if (h.pristine == NULL || read(fd, h.pristine, h.pristine_len) != (ssize_t)h.pristine_len ||
        close(fd) != 0)
        die("reading data.mdb", KITH_ENOMEM);
}

static void
open_pristine(void)
{
    int fd, rc;
    kith_close(h.r);
    h.r = NULL;
    fd = open(data_path(), O_WRONLY | O_TRUNC);
    if (fd < 0 || write(fd, h.pristine, h.pristine_len) != (ssize_t)h.pristine_len ||
        close(fd) != 0)
        die("restoring data.mdb", -errno);
    if ((rc = kith_open(h.dir, KITH_NOSYNC, &h.r)) < 0)
        die("kith_open", rc);
}

/* ---- the session's surroundings --------------------------------------------------------- */

/* Every frame the session sends must decode; the send fails when the input says so. */
static int
send_frame(void *ctx, void *data, size_t len)
{
    struct kith__msg m;
    (void)ctx;
    h.sends++;
    if (kith__wire_decode(data, len, &m) != 0)
        abort(); /* the session sent a frame it would itself refuse */
    kith__wire_clear(&m);
    free(data);
    if (h.fail_from != 0 && h.sends >= h.fail_from)
        return KITH_EBUSY;
    return 0;
}

static struct kith__peerstate *
find_peer(void *ctx, uint64_t id, const uint8_t pk[KITH_PUBKEY_BYTES])
{
    (void)ctx;
    if (id != h.peer_id || memcmp(pk, h.peer_pk, KITH_PUBKEY_BYTES) != 0)
        abort(); /* the handshake let another replica through */
    h.peer.id = id;
    memcpy(h.peer.pk, pk, KITH_PUBKEY_BYTES);
    return &h.peer;
}

/* Encode m into a malloc'd frame. */
static uint8_t *
encode(const struct kith__msg *m, size_t *len)
{
    msgpack_sbuffer sb;
    int rc;
    msgpack_sbuffer_init(&sb);
    if ((rc = kith__wire_encode(m, &sb)) < 0)
        die("kith__wire_encode", rc);
    *len = sb.size;
    return (uint8_t *)msgpack_sbuffer_release(&sb);
}

/* The peer's HELLO, saying it holds `vv`. */
static uint8_t *
peer_hello(const kith_vv *vv, size_t *len)
{
    uint8_t digest[KITH_HASH_BYTES];
    struct kith__msg m;
    memset(&m, 0, sizeof m);
    memset(digest, 0x5c, sizeof digest); /* any schema: the handshake records, never compares */
    m.type = KITH__MSG_HELLO;
    m.proto = KITH__WIRE_PROTO;
    m.id = h.peer_id;
    m.pk = h.peer_pk;
    m.schema_version = 3;
    m.schema_digest = digest;
    m.vv = *vv;
    return encode(&m, len);
}

static void
check(const struct kith__session *s, uint64_t *recv_seq)
{
    if (s->nwin > KITH__WIRE_WINDOW || (s->state == KITH__SS_OPEN && s->peer == NULL) ||
        s->recv_seq < *recv_seq)
        abort();
    *recv_seq = s->recv_seq;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct kith__session s;
    uint64_t recv_seq = 0;
    bool changed = false;
    unsigned flags;

    if (size < 1)
        return 0;
    flags = data[0];
    data++;
    size--;
    memset(&h.peer, 0, sizeof h.peer);
    h.sends = 0;
    h.fail_from = flags >> 4;
    kith__session_init_server(&s, h.r, NULL, find_peer, NULL, send_frame, NULL);
    /* what the daemon's ZAP handler saw: the peer's key, so that its HELLO is admitted */
    memcpy(s.zap_curve, h.peer_curve, 32);
    s.has_zap_curve = true;

    if (flags & 0x01)
        (void)kith__session_input(&s, h.hello, h.hello_len);
    while (size >= 2) {
        size_t len = (size_t)data[0] << 8 | data[1];
        data += 2;
        size -= 2;
        if (len > size)
            len = size;
        (void)kith__session_input(&s, data, len);
        check(&s, &recv_seq);
        data += len;
        size -= len;
        if (flags & 0x02)
            (void)kith__session_pump(&s);
        if (flags & 0x04)
            (void)kith__session_announce(&s);
        if (flags & 0x08) {
            kith__session_tick(&s);
            (void)kith__session_ping(&s);
        }
        check(&s, &recv_seq);
        changed |= s.applied;
        s.applied = false;
    }
    (void)kith__session_finished(&s);
    kith__session_close(&s, 0, false, true, "end of input");
    if (s.state != KITH__SS_CLOSED)
        abort();
    /* closed stays closed: a frame after the end is refused and answered with nothing */
    unsigned before = h.sends;
    uint8_t ping[] = {0x92, KITH__MSG_PING, 0x01};
    if (kith__session_input(&s, ping, sizeof ping) == 0 || h.sends != before ||
        s.state != KITH__SS_CLOSED)
        abort();
    kith__peerstate_clear(&h.peer);
    if (changed)
        open_pristine();
    return 0;
}

/* ---- seeds ------------------------------------------------------------------------------ */

struct seed {
    uint8_t buf[1 << 16];
    size_t len;
};

static void
seed_frame(struct seed *sd, const uint8_t *frame, size_t len)
{
    if (len > 0xffff || sd->len + 2 + len > sizeof sd->buf)
        die("a seed frame is too long", KITH_ETOOBIG);
    sd->buf[sd->len++] = (uint8_t)(len >> 8);
    sd->buf[sd->len++] = (uint8_t)len;
    memcpy(sd->buf + sd->len, frame, len);
    sd->len += len;
}

static void
seed_msg(struct seed *sd, const struct kith__msg *m)
{
    size_t len;
    uint8_t *f = encode(m, &len);
    seed_frame(sd, f, len);
    free(f);
}

static void
seed_write(const char *dir, const char *name, const struct seed *sd)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(sd->buf, 1, sd->len, f) != sd->len || fclose(f) != 0)
        die(path, -errno);
}

/* A batch of the server's of what `since` lacks, from `cursor` (max_ops 0: no limit). */
static kith_buf
server_batch(const kith_vv *since, uint64_t cursor, size_t max_ops, kith_batch_info *info)
{
    kith_batch_opts o = {since, cursor, max_ops, 0};
    kith_buf b = {NULL, 0};
    int rc = kith_batch_create(h.r, &o, &b, info);
    if (rc < 0)
        die("kith_batch_create", rc);
    return b;
}

/* The peer's three commits, made once by make_peer (KITH_FUZZ_PRINT_PEER=1 prints them):
 * fixed bytes, since the clock that stamps ops differs from run to run. */
static const uint8_t peer_ops[] = {
#include "fuzz_session_peer.inc"
};

/* The peer, with key 'P' and three contacts: its whole log as a batch, printed as C. */
static void
print_peer(void)
{
    char pdir[128];
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_buf b = {NULL, 0};
    kith_batch_opts o = {NULL, 0, 0, 0};
    kith_replica *p;
    int rc;

    snprintf(pdir, sizeof pdir, "%s/peer", h.root);
    p = replica_with_key(pdir, 'P', pk);
    add_contact(p, "Ada Lovelace", "math");
    add_contact(p, "Charles Babbage", "engines");
    add_contact(p, "Mary Somerville", "physics");
    if ((rc = kith_batch_create(p, &o, &b, NULL)) < 0)
        die("kith_batch_create", rc);
    printf("/* the peer's batch for fuzz_session.c: KITH_FUZZ_PRINT_PEER=1 fuzz_session */\n");
    for (size_t i = 0; i < b.len; i++)
        printf("0x%02x,%s", b.data[i], i % 12 == 11 || i + 1 == b.len ? "\n" : " ");
    kith_free(b.data);
    kith_close(p);
}

static void
write_seeds(const char *out)
{
    kith_vv svv = {0, NULL}, none = {0, NULL}, pvv = {0, NULL};
    kith_dot sdot = {0, 0}, pdot = {0, 0};
    kith_batch_info i1, i2;
    struct kith__msg m;
    struct seed sd;
    uint8_t *f;
    size_t len;
    int rc;

    /* the peer's ops as the server holds them, relayed: what lacks them and nothing else */
    if ((rc = kith_vv_get(h.r, &svv)) < 0)
        die("kith_vv_get", rc);
    for (size_t i = 0; i < svv.len; i++)
        *(svv.entries[i].origin == h.peer_id ? &pdot : &sdot) = svv.entries[i];
    kith_vv own = {1, &sdot};
    pvv = (kith_vv){1, &pdot};
    kith_buf all = server_batch(&own, 0, 0, NULL);
    kith_buf first = server_batch(&own, 0, 1, &i1);
    kith_buf rest = server_batch(&own, i1.next_cursor, 0, &i2);

    /* the handshake alone, made by the harness and sent as a frame */
    sd.len = 0;
    sd.buf[sd.len++] = 0x01;
    seed_write(out, "hello", &sd);
    sd.len = 0;
    sd.buf[sd.len++] = 0x00;
    f = peer_hello(&pvv, &len);
    seed_frame(&sd, f, len);
    free(f);
    seed_write(out, "hello-frame", &sd);

    /* the peer's ops in one batch, then in two, then DONE */
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_BATCH;
    m.seq = 1;
    m.vv = pvv;
    m.data = all.data;
    m.len = all.len;
    sd.len = 0;
    sd.buf[sd.len++] = 0x03;
    seed_msg(&sd, &m);
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_DONE;
    m.vv = pvv;
    seed_msg(&sd, &m);
    seed_write(out, "batch-done", &sd);

    sd.len = 0;
    sd.buf[sd.len++] = 0x03;
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_BATCH;
    m.seq = 1;
    m.has_more = true;
    m.vv = pvv;
    m.data = first.data;
    m.len = first.len;
    seed_msg(&sd, &m);
    m.seq = 2;
    m.has_more = false;
    m.data = rest.data;
    m.len = rest.len;
    seed_msg(&sd, &m);
    seed_write(out, "two-batches", &sd);

    /* our batch acknowledged, keep-alives, the peer's DONE and BYE */
    sd.len = 0;
    sd.buf[sd.len++] = 0x0b;
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_ACK;
    m.seq = 1;
    m.vv = svv;
    seed_msg(&sd, &m);
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_PING;
    m.nonce = 7;
    seed_msg(&sd, &m);
    m.type = KITH__MSG_PONG;
    seed_msg(&sd, &m);
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_DONE;
    m.vv = none;
    seed_msg(&sd, &m);
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_BYE;
    seed_msg(&sd, &m);
    seed_write(out, "ack-ping-done-bye", &sd);

    /* anti-entropy with a send that fails on the third frame */
    sd.len = 0;
    sd.buf[sd.len++] = 0x37;
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_DONE;
    m.vv = none;
    seed_msg(&sd, &m);
    seed_msg(&sd, &m);
    seed_write(out, "announce-send-fails", &sd);

    /* the peer refuses; a WELCOME where none belongs; a batch out of order */
    sd.len = 0;
    sd.buf[sd.len++] = 0x01;
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_REFUSE;
    m.code = KITH_EBADSIG;
    m.reason = "signature does not verify";
    m.reason_len = strlen(m.reason);
    seed_msg(&sd, &m);
    seed_write(out, "refuse", &sd);

    sd.len = 0;
    sd.buf[sd.len++] = 0x00;
    f = peer_hello(&none, &len);
    f[1] = KITH__MSG_WELCOME; /* [0] is the array header, [1] the type */
    seed_frame(&sd, f, len);
    free(f);
    seed_write(out, "welcome-to-server", &sd);

    sd.len = 0;
    sd.buf[sd.len++] = 0x01;
    memset(&m, 0, sizeof m);
    m.type = KITH__MSG_BATCH;
    m.seq = 2;
    m.vv = pvv;
    m.data = rest.data;
    m.len = rest.len;
    seed_msg(&sd, &m);
    seed_write(out, "batch-out-of-order", &sd);

    kith_free(all.data);
    kith_free(first.data);
    kith_free(rest.data);
    kith_vv_free(&svv);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *seeds = getenv("KITH_FUZZ_WRITE_SEEDS");
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    uint8_t pk[KITH_PUBKEY_BYTES], sk[64];
    int rc;

    (void)argc;
    (void)argv;
    snprintf(h.root, sizeof h.root, "%s/kith-fuzz-session.XXXXXX", base);
    if (mkdtemp(h.root) == NULL)
        die(h.root, -errno);
    atexit(cleanup);
    if (getenv("KITH_FUZZ_PRINT_PEER") != NULL) {
        print_peer();
        exit(0);
    }
    snprintf(h.dir, sizeof h.dir, "%s/server", h.root);
    h.r = replica_with_key(h.dir, 'S', pk);
    key_of('P', h.peer_pk, sk);
    h.peer_id = kith_id_from_pubkey(h.peer_pk);
    if ((rc = kith_trust_add(h.r, h.peer_pk, "peer", NULL)) < 0)
        die("kith_trust_add", rc);
    add_contact(h.r, "Grace Hopper", "navy");
    add_contact(h.r, "Alan Turing", "bletchley");
    /* The server holds the peer's ops already: the seeds' batches are then known, and apply
     * checks them without changing the replica, so it need not be put back (a reopen costs
     * as much as a hundred inputs). A batch of new ops would need the peer's secret key. */
    if ((rc = kith_batch_apply(h.r, peer_ops, sizeof peer_ops, NULL)) < 0)
        die("applying the peer's ops", rc);
    if (seeds != NULL) {
        write_seeds(seeds);
        exit(0);
    }
    kith_vv none = {0, NULL};
    h.hello = peer_hello(&none, &h.hello_len);
    if ((rc = kith_curve_public(h.peer_pk, h.peer_curve)) < 0)
        die("kith_curve_public", rc);
    save_pristine();
    open_pristine();
    return 0;
}
