/*
 * txn.c — transactions, the local write calls, and observers.
 *
 * A write transaction is one LMDB write transaction and becomes one commit: each write is
 * validated (schema, live document, live reference), turned into an op that records what its
 * author saw (the register dot it replaces, the element or membership dots it observed), and
 * applied at once through the applier (store/apply.c) so that later reads in the transaction
 * see it; the op is also appended to the commit being built. kith_txn_commit encodes the
 * commit, extends the replica's own hash chain, writes the log, the apply order, the origins
 * record and the clock, and commits LMDB. One HLC is taken per commit, at its first write.
 *
 * When LMDB reports MDB_MAP_FULL, the LMDB transaction is dead: it is aborted, the map grown,
 * a new one begun, and the ops built so far applied again (their values live in blocks that
 * never move, so they survive). If another process committed to this replica's own origin in
 * between, the seqs already handed out are stale and the commit fails with KITH_EBUSY.
 * Observers are called after the LMDB commit returned, outside any LMDB transaction.
 * spec/storage.md "Transactions" and "Map growth".
 */
#include "schema.h"
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GROWTHS 24
#define MEM_BLOCK 8192

/* ---- stable memory ---------------------------------------------------------------------- */

struct kith__mem_block {
    struct kith__mem_block *next;
    size_t used, cap;
    _Alignas(16) uint8_t data[];
};

void *
kith__mem_alloc(struct kith__mem *m, size_t n)
{
    struct kith__mem_block *b = m->head;

    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > MEM_BLOCK ? n : MEM_BLOCK;
        b = malloc(sizeof *b + cap);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = m->head;
        m->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

void
kith__mem_free(struct kith__mem *m)
{
    struct kith__mem_block *b = m->head;

    while (b != NULL) {
        struct kith__mem_block *next = b->next;
        free(b);
        b = next;
    }
    m->head = NULL;
}

/* ---- events --------------------------------------------------------------------------- */

int
kith__event_doc(struct kith__event_log *ev, const char *collection, kith_dot doc)
{
    kith_changed_doc *d;

    if (ev->ndocs > 0) {
        d = &ev->docs[ev->ndocs - 1];
        if (d->collection == collection && kith__docid_to_dot(&d->doc).seq == doc.seq &&
            kith__docid_to_dot(&d->doc).origin == doc.origin)
            return 0;
    }
    if (ev->ndocs == ev->capdocs) {
        size_t cap = ev->capdocs ? ev->capdocs * 2 : 16;
        d = realloc(ev->docs, cap * sizeof *d);
        if (d == NULL)
            return KITH_ENOMEM;
        ev->docs = d;
        ev->capdocs = cap;
    }
    d = &ev->docs[ev->ndocs++];
    d->collection = collection;
    kith__docid_from_dot(&d->doc, doc);
    return 0;
}

int
kith__event_conflict(struct kith__event_log *ev, uint64_t conflict_id)
{
    if (ev->nconflicts == ev->capconflicts) {
        size_t cap = ev->capconflicts ? ev->capconflicts * 2 : 8;
        uint64_t *p = realloc(ev->conflicts, cap * sizeof *p);
        if (p == NULL)
            return KITH_ENOMEM;
        ev->conflicts = p;
        ev->capconflicts = cap;
    }
    ev->conflicts[ev->nconflicts++] = conflict_id;
    return 0;
}

static int
changed_cmp(const void *pa, const void *pb)
{
    const kith_changed_doc *a = pa, *b = pb;
    int c = strcmp(a->collection, b->collection);

    return c != 0 ? c : memcmp(a->doc.bytes, b->doc.bytes, KITH_DOCID_BYTES);
}

void
kith__event_report(kith_replica *r, struct kith__event_log *ev, int source)
{
    kith_change_fn on_change = r->on_change;
    kith_conflict_fn on_conflict = r->on_conflict;
    void *ctx = r->observer_ctx;

    if (on_change != NULL && ev->ndocs > 0) {
        size_t n = 0;
        qsort(ev->docs, ev->ndocs, sizeof ev->docs[0], changed_cmp);
        for (size_t i = 0; i < ev->ndocs; i++)
            if (n == 0 || changed_cmp(&ev->docs[n - 1], &ev->docs[i]) != 0)
                ev->docs[n++] = ev->docs[i];
        kith_change ch = {.source = source, .ndocs = n, .docs = ev->docs};
        on_change(ctx, &ch);
    }
    if (on_conflict != NULL && ev->nconflicts > 0) {
        MDB_txn *txn;
        if (kith__mdb_begin(r, MDB_RDONLY, &txn) == 0) {
            for (size_t i = 0; i < ev->nconflicts; i++) {
                kith_conflict c;
                uint8_t kb[8];
                MDB_val k = {8, kb}, v;
                kith__be64_put(kb, ev->conflicts[i]);
                if (kith__mdb_get(txn, r->conflicts, &k, &v) != 0)
                    continue;
                if (kith__conflict_decode(r, txn, ev->conflicts[i], v.mv_data, v.mv_size, &c) == 0)
                    on_conflict(ctx, &c);
            }
            mdb_txn_abort(txn);
            kith__mdb_end(r);
        }
    }
    ev->ndocs = 0;
    ev->nconflicts = 0;
}

void
kith__event_free(struct kith__event_log *ev)
{
    free(ev->docs);
    free(ev->conflicts);
    memset(ev, 0, sizeof *ev);
}

void
kith_observe(kith_replica *r, kith_change_fn on_change, kith_conflict_fn on_conflict, void *ctx)
{
    if (r == NULL)
        return;
    r->on_change = on_change;
    r->on_conflict = on_conflict;
    r->observer_ctx = ctx;
}

/* ---- begin / abort ----------------------------------------------------------------------- */

/* The transaction this thread has open, of any replica. A second one would deadlock on the
 * writer lock, or break LMDB's one-transaction-per-thread rule; kith_txn_begin refuses it. */
static _Thread_local const kith_txn *thread_txn;

bool
kith__txn_open_here(void)
{
    return thread_txn != NULL;
}

int
kith_txn_begin(kith_replica *r, unsigned flags, kith_txn **out)
{
    kith_txn *t;
    int rc;

    if (out == NULL)
        return KITH_EINVAL;
    *out = NULL;
    if (r == NULL || (flags & ~(unsigned)KITH_TXN_WRITE) != 0)
        return KITH_EINVAL;
    if ((flags & KITH_TXN_WRITE) && (r->flags & KITH_RDONLY))
        return kith__fail(r, KITH_EREADONLY, "replica opened read-only");
    if (thread_txn != NULL)
        return kith__fail(r, KITH_EBADTXN,
                          "this thread has a transaction open already; commit or abort it "
                          "before beginning another");
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return KITH_ENOMEM;
    t->r = r;
    t->flags = flags;
    if (flags & KITH_TXN_WRITE) {
        /* before the resize lock: a thread waiting here holds nothing growth needs */
        pthread_mutex_lock(&r->wlock);
        t->holds_wlock = true;
    }
    rc = kith__mdb_begin(r, (flags & KITH_TXN_WRITE) ? 0 : MDB_RDONLY, &t->txn);
    if (rc < 0) {
        if (t->holds_wlock)
            pthread_mutex_unlock(&r->wlock);
        free(t);
        return rc;
    }
    t->holds_resize = true;
    thread_txn = t;
    *out = t;
    return 0;
}

/* Release the LMDB side: applier, LMDB txn (aborted unless already gone), resize lock. */
static void
txn_release(kith_txn *t)
{
    if (t->ap_open) {
        kith__apply_end(&t->ap);
        t->ap_open = false;
    }
    if (t->txn != NULL) {
        mdb_txn_abort(t->txn);
        t->txn = NULL;
    }
    if (t->holds_resize) {
        kith__mdb_end(t->r);
        t->holds_resize = false;
    }
}

/* Let the next transaction of this thread, and the next local write transaction of this
 * process, begin. */
static void
txn_unlock(kith_txn *t)
{
    if (thread_txn == t)
        thread_txn = NULL;
    if (t->holds_wlock) {
        pthread_mutex_unlock(&t->r->wlock);
        t->holds_wlock = false;
    }
}

static void
txn_free(kith_txn *t)
{
    txn_release(t);
    txn_unlock(t);
    kith__mem_free(&t->mem);
    free(t->commit.ops);
    kith__event_free(&t->events);
    kith__wbuf_free(&t->enc);
    free(t->resolved);
    free(t->names);
    free(t->jmarks);
    free(t);
}

void
kith_txn_abort(kith_txn **txn)
{
    if (txn == NULL || *txn == NULL)
        return;
    txn_free(*txn);
    *txn = NULL;
}

/* ---- the commit being built ----------------------------------------------------------- */

/* Open the applier and check that this replica's own origin is where the commit begins. */
static int
applier_open(kith_txn *t)
{
    struct kith__origin_slot *own;
    int rc = kith__apply_begin(&t->ap, t->r, t->txn,
                               t->r->on_change || t->r->on_conflict ? &t->events : NULL);

    if (rc < 0)
        return rc;
    t->ap_open = true;
    own = kith__apply_origin(&t->ap, t->r->id, &rc);
    if (own == NULL)
        return rc;
    /* A replica restored from a copy does not sign seqs it used before (RESTORE-2): checked
     * in every LMDB transaction the commit runs in, the first and any begun after the map
     * grew, since a daemon may mark the replica in between. */
    if ((rc = kith__restored_refuse(t->r, t->txn, own->st.have)) < 0 ||
        (rc = kith__group_refuse_write(t->r, t->txn)) < 0) /* a removed replica: GRP-16 */
        return rc;
    if (!t->started) {
        uint64_t hlc;
        rc = kith__meta_get_u64(t->r, t->txn, "hlc", &hlc);
        if (rc < 0)
            return rc;
        t->base_applied = own->st.applied;
        t->commit.origin = t->r->id;
        t->commit.first_seq = own->st.applied + 1;
        t->commit.hlc = kith__hlc_tick(hlc, (uint64_t)kith__replica_now_ms(t->r));
        t->started = true;
    } else if (t->commit.origin != t->r->id) {
        return kith__fail(t->r, KITH_EBUSY,
                          "the replica took a new key during the transaction (kith_rekey)");
    } else if (own->st.applied != t->base_applied) {
        return kith__fail(t->r, KITH_EBUSY,
                          "another process wrote to this replica during the transaction");
    }
    return 0;
}

/*
 * MDB_MAP_FULL: abort the LMDB transaction, grow the map, begin again and apply every op
 * built so far. Assumes t is a started write transaction.
 */
static int
grow_and_replay(kith_txn *t)
{
    kith_replica *r = t->r;
    int rc = MDB_MAP_FULL;

    for (int tries = 0; rc == MDB_MAP_FULL; tries++) {
        if (tries == MAX_GROWTHS)
            return kith__fail(r, -ENOSPC, "the map cannot grow any further");
        txn_release(t);
        t->events.ndocs = t->events.nconflicts = 0;
        rc = kith__map_grow(r);
        if (rc < 0)
            return rc;
        rc = kith__mdb_begin(r, 0, &t->txn);
        if (rc < 0)
            return rc;
        t->holds_resize = true;
        rc = applier_open(t);
        if (rc < 0)
            return rc;
        for (uint32_t i = 0; i < t->commit.nops && rc == 0; i++) {
            kith_dot dot = {t->commit.origin, t->commit.first_seq + i};
            rc = kith__apply_op(&t->ap, t->commit.hlc, dot, &t->commit.ops[i]);
            if (rc == 0)
                rc = kith__apply_flush(&t->ap);
        }
    }
    return rc;
}

/* Mark the transaction failed after a write error, and pass the code on. */
static int
txn_failed(kith_txn *t, int rc)
{
    t->failed = true;
    return rc;
}

/* What a write or read knows of its collection and field: the declarations (NULL when not
 * declared) and the local numbers. */
struct target {
    const struct kith__coll_decl *cd;
    const struct kith__field_decl *fd;
    const char *cname, *fname; /* names as the caller gave them */
    uint8_t coll, field;
};

/* The declared schema as the transaction sees it. */
static int
txn_schema(kith_txn *t, const struct kith__sschema **ss)
{
    if (t->ap_open) {
        *ss = t->ap.schema;
        return 0;
    }
    return kith__schema_current(t->r, t->txn, ss);
}

static struct kith__names_cache *
txn_names(kith_txn *t)
{
    return t->ap_open ? &t->ap.names : NULL;
}

/* Check that t can take a write, start the commit at the first one, and find the declared
 * collection. */
static int
write_prepare(kith_txn *t, const char *collection, struct target *tg)
{
    int rc;

    if (t == NULL)
        return KITH_EINVAL;
    if (t->failed)
        return KITH_EBADTXN;
    if (!(t->flags & KITH_TXN_WRITE))
        return kith__fail(t->r, KITH_EREADONLY, "write in a read transaction");
    if (collection == NULL)
        return txn_failed(t, KITH_EINVAL);
    if (!t->ap_open) {
        rc = applier_open(t);
        if (rc == MDB_MAP_FULL)
            rc = grow_and_replay(t);
        if (rc < 0)
            return txn_failed(t, rc);
    }
    memset(tg, 0, sizeof *tg);
    tg->cname = collection;
    if (t->ap.schema->decl)
        tg->cd = kith__schema_find(t->ap.schema->decl, collection, strlen(collection));
    if (tg->cd == NULL)
        return txn_failed(t,
                          kith__fail(t->r, KITH_ENOTFOUND, "no collection named %s", collection));
    /* a declaration numbers its names when it is stored (store/schema.c): nothing to write */
    rc = kith__names_get(t->r, t->txn, &t->ap.names, KITH__NAME_COLL, 0, collection,
                         strlen(collection), false, &tg->coll);
    if (rc == KITH_ENOTFOUND)
        rc = kith__fail(t->r, KITH_ECORRUPT, "%s is declared but has no number", collection);
    return rc < 0 ? txn_failed(t, rc) : 0;
}

static const char *
crdt_use(kith__crdt crdt)
{
    switch (crdt) {
    case KITH__CRDT_SET:
        return "a set field (use set add/remove)";
    case KITH__CRDT_COUNTER:
        return "a counter field (use counter add)";
    case KITH__CRDT_FLAG:
        return "a flag field (use flag set)";
    default:
        return "not a set field";
    }
}

/* Find the declared field of a write and check its kind. */
static int
field_prepare(kith_txn *t, struct target *tg, const char *field, kith__crdt want)
{
    int rc;

    if (field == NULL)
        return txn_failed(t, KITH_EINVAL);
    tg->fname = field;
    tg->fd = kith__coll_field(tg->cd, field, strlen(field));
    if (tg->fd == NULL)
        return txn_failed(
            t, kith__fail(t->r, KITH_ENOTFOUND, "%s has no field %s", tg->cd->name, field));
    if (tg->fd->crdt != want)
        return txn_failed(t,
                          kith__fail(t->r, KITH_ESCHEMA, "%s: %s", field, crdt_use(tg->fd->crdt)));
    rc = kith__names_get(t->r, t->txn, &t->ap.names, KITH__NAME_FIELD, tg->coll, field,
                         strlen(field), false, &tg->field);
    if (rc == KITH_ENOTFOUND)
        rc = kith__fail(t->r, KITH_ECORRUPT, "%s.%s is declared but has no number", tg->cd->name,
                        field);
    return rc < 0 ? txn_failed(t, rc) : 0;
}

/* A name of the commit being built: its index in t->names. Names are the schema's strings,
 * so one pointer is one name; a transaction uses few, and the encoder dedups any repeat. */
static int
name_push(kith_txn *t, const char *name, uint16_t *index)
{
    uint32_t n = t->commit.nnames;
    for (uint32_t i = 0; i < n; i++)
        if (t->names[i].ptr == name) {
            *index = (uint16_t)i;
            return 0;
        }
    if (n == UINT16_MAX)
        return KITH_ETOOBIG;
    if (n == t->capnames) {
        uint32_t cap = t->capnames ? t->capnames * 2 : 16;
        struct kith__name *names = realloc(t->names, cap * sizeof *names);
        if (names == NULL)
            return KITH_ENOMEM;
        t->names = names;
        t->capnames = cap;
        t->commit.names = names;
    }
    t->names[n].ptr = name;
    t->names[n].len = (uint32_t)strlen(name);
    *index = (uint16_t)n;
    t->commit.nnames = n + 1;
    return 0;
}

/* Append `op` to the commit and apply it now (with its membership touch written). The op's
 * views must be stable (t->mem or the schema's names). Returns its dot in *dot. */
static int
op_push(kith_txn *t, const struct target *tg, struct kith__op *op, kith_dot *dot)
{
    int rc;

    if (t->commit.nops == KITH__MAX_COMMIT_OPS)
        return txn_failed(t, kith__fail(t->r, KITH_ETOOBIG, "more than %u ops in a transaction",
                                        KITH__MAX_COMMIT_OPS));
    if (t->commit.nops == t->capops) {
        uint32_t cap = t->capops ? t->capops * 2 : 8;
        struct kith__op *ops = realloc(t->commit.ops, cap * sizeof *ops);
        if (ops == NULL)
            return txn_failed(t, KITH_ENOMEM);
        t->commit.ops = ops;
        t->capops = cap;
    }
    op->coll = tg->coll;
    op->field = tg->fd ? tg->field : 0;
    if ((rc = name_push(t, tg->cd->name, &op->cname)) < 0 ||
        (tg->fd && (rc = name_push(t, tg->fd->name, &op->fname)) < 0))
        return txn_failed(t, rc);
    t->commit.ops[t->commit.nops] = *op;
    dot->origin = t->commit.origin;
    dot->seq = t->commit.first_seq + t->commit.nops;
    t->commit.nops++;
    rc = kith__apply_op(&t->ap, t->commit.hlc, *dot, op);
    if (rc == 0)
        rc = kith__apply_flush(&t->ap);
    if (rc == MDB_MAP_FULL)
        rc = grow_and_replay(t);
    if (rc < 0)
        return txn_failed(t, rc);
    return 0;
}

/* ---- reads shared by writes ------------------------------------------------------------- */

/* The dots under `key` in `dbi`: *n dots as a view (NULL, 0 when absent). */
static int
dots_get(kith_txn *t, MDB_dbi dbi, MDB_cursor *c, const uint8_t *key, size_t klen,
         const uint8_t **dots, size_t *n)
{
    MDB_val k = {klen, (void *)key}, v;
    int rc;

    *dots = NULL;
    *n = 0;
    if (dbi == KITH__DBI_FREE)
        return 0;
    /* in a write transaction, through the applier's cursor: the write that follows finds
     * the cursor on this key and skips the search */
    rc = c ? kith__mdb_cursor_get(c, &k, &v, MDB_SET) : kith__mdb_get(t->txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return kith__mdb_err(rc);
    if (v.mv_size == 0 || v.mv_size % KITH__DOT_BYTES != 0)
        return kith__fail(t->r, KITH_ECORRUPT, "%s: dot set of %zu bytes",
                          kith__dbi_name(t->r, dbi), v.mv_size);
    *dots = v.mv_data;
    *n = v.mv_size / KITH__DOT_BYTES;
    return 0;
}

/* The membership dots of a document: *n dots as a view (NULL, 0 when not live). */
static int
membership(kith_txn *t, int coll, kith_dot doc, const uint8_t **dots, size_t *n)
{
    uint8_t kb[17];

    kb[0] = (uint8_t)coll;
    kith__dot_put(kb + 1, doc);
    return dots_get(t, t->r->docs, t->ap_open ? t->ap.docs_c : NULL, kb, sizeof kb, dots, n);
}

static int
doc_live(kith_txn *t, int coll, const kith_docid *doc)
{
    const uint8_t *dots;
    size_t n;
    int rc = membership(t, coll, kith__docid_to_dot(doc), &dots, &n);

    return rc < 0 ? rc : n > 0;
}

/* Copy n dots (byte form) into stable memory as kith_dot. */
static kith_dot *
dots_copy(kith_txn *t, const uint8_t *dots, size_t n)
{
    kith_dot *out = kith__mem_alloc(&t->mem, n * sizeof *out);

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++)
        out[i] = kith__dot_get(dots + i * KITH__DOT_BYTES);
    return out;
}

/* Is the document of collection `coll_name` that `ref` names live? 1, 0, or an error. */
static int
ref_live(kith_txn *t, const char *coll_name, const kith_docid *ref)
{
    uint8_t coll;
    int rc = kith__names_get(t->r, t->txn, txn_names(t), KITH__NAME_COLL, 0, coll_name,
                             strlen(coll_name), false, &coll);
    if (rc == KITH_ENOTFOUND)
        return 0;
    return rc < 0 ? rc : doc_live(t, coll, ref);
}

/* ---- documents -------------------------------------------------------------------------- */

int
kith_doc_create(kith_txn *t, const char *collection, kith_docid *out)
{
    struct kith__op op;
    struct target tg;
    kith_dot dot;
    int rc;

    if (out == NULL)
        return t ? txn_failed(t, KITH_EINVAL) : KITH_EINVAL;
    rc = write_prepare(t, collection, &tg);
    if (rc < 0)
        return rc;
    memset(&op, 0, sizeof op);
    op.kind = KITH_OP_DOC_ADD;
    op.doc.origin = t->commit.origin;
    op.doc.seq = t->commit.first_seq + t->commit.nops;
    rc = op_push(t, &tg, &op, &dot);
    if (rc < 0)
        return rc;
    kith__docid_from_dot(out, dot);
    return 0;
}

int
kith_doc_delete(kith_txn *t, const char *collection, const kith_docid *doc)
{
    struct kith__op op;
    struct target tg;
    const uint8_t *dots;
    kith_dot dot;
    size_t n;
    int rc;

    if (doc == NULL)
        return t ? txn_failed(t, KITH_EINVAL) : KITH_EINVAL;
    rc = write_prepare(t, collection, &tg);
    if (rc < 0)
        return rc;
    memset(&op, 0, sizeof op);
    op.doc = kith__docid_to_dot(doc);
    rc = membership(t, tg.coll, op.doc, &dots, &n);
    if (rc < 0)
        return txn_failed(t, rc);
    if (n == 0) {
        char hex[KITH_DOCID_HEX + 1];
        kith_docid_format(doc, hex);
        return txn_failed(
            t, kith__fail(t->r, KITH_ENOTFOUND, "%s %s does not exist", collection, hex));
    }
    op.kind = KITH_OP_DOC_REMOVE;
    op.observed = dots_copy(t, dots, n);
    op.nobserved = (uint32_t)n;
    if (op.observed == NULL)
        return txn_failed(t, KITH_ENOMEM);
    return op_push(t, &tg, &op, &dot);
}

/* The local number of a collection for a read: declared or seen in ops. */
static int
read_coll(kith_txn *t, const char *collection, uint8_t *coll)
{
    int rc;

    if (t->failed)
        return KITH_EBADTXN;
    rc = kith__names_get(t->r, t->txn, txn_names(t), KITH__NAME_COLL, 0, collection,
                         strlen(collection), false, coll);
    if (rc == KITH_ENOTFOUND)
        return kith__fail(t->r, KITH_ENOTFOUND, "no collection named %s", collection);
    return rc;
}

int
kith_doc_exists(kith_txn *t, const char *collection, const kith_docid *doc)
{
    uint8_t coll;
    int rc;

    if (t == NULL || collection == NULL || doc == NULL)
        return KITH_EINVAL;
    if ((rc = read_coll(t, collection, &coll)) < 0)
        return rc;
    return doc_live(t, coll, doc);
}

/* ---- fields ----------------------------------------------------------------------------- */

/* Check that the document exists; KITH_ENOTFOUND with a message otherwise. */
static int
doc_must_live(kith_txn *t, int coll, const char *collection, const kith_docid *doc)
{
    int rc = doc_live(t, coll, doc);
    char hex[KITH_DOCID_HEX + 1];

    if (rc < 0)
        return rc;
    if (rc == 1)
        return 0;
    kith_docid_format(doc, hex);
    return kith__fail(t->r, KITH_ENOTFOUND, "%s %s does not exist", collection, hex);
}

/* Copy a value's bytes into the transaction's stable memory. */
static int
value_copy(kith_txn *t, kith_value *v)
{
    if (v->type == KITH_TYPE_STRING || v->type == KITH_TYPE_DATE || v->type == KITH_TYPE_ENUM ||
        v->type == KITH_TYPE_BYTES) {
        char *copy = kith__mem_alloc(&t->mem, v->u.s.len + 1);
        if (copy == NULL)
            return KITH_ENOMEM;
        if (v->u.s.len > 0)
            memcpy(copy, v->u.s.ptr, v->u.s.len);
        copy[v->u.s.len] = '\0';
        v->u.s.ptr = copy;
    }
    return 0;
}

int
kith_field_set(kith_txn *t, const char *collection, const kith_docid *doc, const char *field,
               const kith_value *v)
{
    struct kith__op op;
    struct target tg;
    char why[200];
    uint8_t kb[18];
    MDB_val k = {sizeof kb, kb}, rv;
    kith_dot dot;
    int rc;

    if (doc == NULL || v == NULL)
        return t ? txn_failed(t, KITH_EINVAL) : KITH_EINVAL;
    if ((rc = write_prepare(t, collection, &tg)) < 0 ||
        (rc = field_prepare(t, &tg, field, KITH__CRDT_LWW)) < 0)
        return rc;
    why[0] = '\0';
    rc = kith__field_check(tg.fd, v, why, sizeof why);
    if (rc < 0)
        return txn_failed(t, kith__fail(t->r, KITH_ESCHEMA, "%s", why[0] ? why : field));
    rc = doc_must_live(t, tg.coll, collection, doc);
    if (rc < 0)
        return txn_failed(t, rc);
    if (v->type == KITH_TYPE_REF) {
        rc = tg.fd->ref ? ref_live(t, tg.fd->ref, &v->u.ref) : 0;
        if (rc == 0) {
            char hex[KITH_DOCID_HEX + 1];
            kith_docid_format(&v->u.ref, hex);
            return txn_failed(t, kith__fail(t->r, KITH_ESCHEMA, "%s: no %s %s", field,
                                            tg.fd->ref ? tg.fd->ref : "?", hex));
        }
        if (rc < 0)
            return txn_failed(t, rc);
    }
    memset(&op, 0, sizeof op);
    op.kind = KITH_OP_FIELD_SET;
    op.doc = kith__docid_to_dot(doc);
    op.value = *v;
    if (value_copy(t, &op.value) < 0)
        return txn_failed(t, KITH_ENOMEM);
    kb[0] = tg.coll;
    kith__dot_put(kb + 1, op.doc);
    kb[17] = tg.field;
    rc = kith__mdb_cursor_get(t->ap.regs_c, &k, &rv, MDB_SET); /* apply finds the cursor here */
    if (rc == 0 && rv.mv_size >= KITH__REG_HDR_BYTES) {
        op.replaced.origin = kith__be64_get((const uint8_t *)rv.mv_data + 8);
        op.replaced.seq = kith__be64_get((const uint8_t *)rv.mv_data + 16);
    } else if (rc != MDB_NOTFOUND) {
        return txn_failed(t, rc == 0 ? KITH_ECORRUPT : kith__mdb_err(rc));
    }
    return op_push(t, &tg, &op, &dot);
}

int
kith_counter_add(kith_txn *t, const char *collection, const kith_docid *doc, const char *field,
                 int64_t delta)
{
    struct kith__op op;
    struct target tg;
    kith_dot dot;
    int rc;

    if (doc == NULL)
        return t ? txn_failed(t, KITH_EINVAL) : KITH_EINVAL;
    if ((rc = write_prepare(t, collection, &tg)) < 0 ||
        (rc = field_prepare(t, &tg, field, KITH__CRDT_COUNTER)) < 0)
        return rc;
    if ((rc = doc_must_live(t, tg.coll, collection, doc)) < 0)
        return txn_failed(t, rc);
    if (delta == 0)
        return 0; /* adds nothing: writes nothing */
    memset(&op, 0, sizeof op);
    op.kind = KITH_OP_COUNTER_ADD;
    op.doc = kith__docid_to_dot(doc);
    op.value.type = KITH_TYPE_INT;
    op.value.u.i = delta;
    return op_push(t, &tg, &op, &dot);
}

int
kith_flag_set(kith_txn *t, const char *collection, const kith_docid *doc, const char *field,
              bool on)
{
    struct kith__op op;
    struct target tg;
    const uint8_t *dots;
    uint8_t kb[18];
    kith_dot dot;
    size_t n;
    int rc;

    if (doc == NULL)
        return t ? txn_failed(t, KITH_EINVAL) : KITH_EINVAL;
    if ((rc = write_prepare(t, collection, &tg)) < 0 ||
        (rc = field_prepare(t, &tg, field, KITH__CRDT_FLAG)) < 0)
        return rc;
    if ((rc = doc_must_live(t, tg.coll, collection, doc)) < 0)
        return txn_failed(t, rc);
    memset(&op, 0, sizeof op);
    op.doc = kith__docid_to_dot(doc);
    kb[0] = tg.coll;
    kith__dot_put(kb + 1, op.doc);
    kb[17] = tg.field;
    if ((rc = dots_get(t, t->r->flagdb, NULL, kb, sizeof kb, &dots, &n)) < 0)
        return txn_failed(t, rc);
    if (!on && n == 0)
        return 0; /* clearing a clear flag writes nothing */
    op.kind = on ? KITH_OP_FLAG_ENABLE : KITH_OP_FLAG_DISABLE;
    if (n > 0 && (op.observed = dots_copy(t, dots, n)) == NULL)
        return txn_failed(t, KITH_ENOMEM);
    op.nobserved = (uint32_t)n;
    return op_push(t, &tg, &op, &dot);
}

/* ---- reads -------------------------------------------------------------------------------- */

/* A register's value into *out (NULL type when never set): 0, or an error. *found says
 * whether there was a register. */
static int
reg_get(kith_txn *t, uint8_t coll, const kith_docid *doc, uint8_t field, kith_value *out,
        bool *found)
{
    uint8_t kb[18];
    MDB_val k = {sizeof kb, kb}, v;
    int rc;

    *found = false;
    kb[0] = coll;
    memcpy(kb + 1, doc->bytes, KITH_DOCID_BYTES);
    kb[17] = field;
    rc = kith__mdb_get(t->txn, t->r->regs, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return kith__mdb_err(rc);
    if (v.mv_size < KITH__REG_HDR_BYTES + 1)
        return kith__fail(t->r, KITH_ECORRUPT, "regs: short register");
    if ((t->flags & KITH_TXN_WRITE) && v.mv_size > KITH__REG_HDR_BYTES + 1) {
        /* a later write in this transaction may move the page: hand out a copy */
        void *copy = kith__mem_alloc(&t->mem, v.mv_size);
        if (copy == NULL)
            return KITH_ENOMEM;
        memcpy(copy, v.mv_data, v.mv_size);
        v.mv_data = copy;
    }
    *found = true;
    rc = kith__value_load((const uint8_t *)v.mv_data + KITH__REG_HDR_BYTES,
                          v.mv_size - KITH__REG_HDR_BYTES, out);
    return rc < 0 ? kith__fail(t->r, rc, "regs: bad value") : 0;
}

/* A counter's value: the sum of its origins' totals. *found: any total exists. */
static int
counter_get(kith_txn *t, uint8_t coll, const kith_docid *doc, uint8_t field, int64_t *out,
            bool *found)
{
    uint8_t kb[KITH__COUNT_KEY_BYTES];
    MDB_val k = {sizeof kb, kb}, v;
    MDB_cursor *c;
    uint64_t sum = 0;
    int rc;

    *out = 0;
    *found = false;
    if (t->r->counts == KITH__DBI_FREE)
        return 0;
    if ((rc = kith__mdb_cursor_open(t->txn, t->r->counts, &c)) != 0)
        return kith__mdb_err(rc);
    kb[0] = coll;
    memcpy(kb + 1, doc->bytes, KITH_DOCID_BYTES);
    kb[17] = field;
    memset(kb + 18, 0, 8);
    for (rc = kith__mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = kith__mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != sizeof kb || memcmp(k.mv_data, kb, 18) != 0)
            break;
        if (v.mv_size != 8) {
            rc = KITH_ECORRUPT;
            break;
        }
        sum += kith__be64_get(v.mv_data);
        *found = true;
    }
    mdb_cursor_close(c);
    if (rc == KITH_ECORRUPT)
        return kith__fail(t->r, rc, "counts: total of another size than 8 bytes");
    if (rc != 0 && rc != MDB_NOTFOUND)
        return kith__mdb_err(rc);
    memcpy(out, &sum, sizeof sum); /* two's complement: the wrapped sum as int64 */
    return 0;
}

int
kith__field_read(kith_txn *t, uint8_t coll, const kith_docid *doc, uint8_t field, int crdt,
                 kith_value *out, int *kind)
{
    const uint8_t *dots;
    uint8_t kb[18];
    size_t n;
    bool found = false;
    int rc;

    memset(out, 0, sizeof *out);
    if (crdt < 0 || crdt == KITH__CRDT_LWW) {
        if ((rc = reg_get(t, coll, doc, field, out, &found)) < 0)
            return rc;
        if (found || crdt == KITH__CRDT_LWW) {
            *kind = KITH__CRDT_LWW;
            return found;
        }
    }
    if (crdt < 0 || crdt == KITH__CRDT_COUNTER) {
        int64_t sum;
        if ((rc = counter_get(t, coll, doc, field, &sum, &found)) < 0)
            return rc;
        if (found || crdt == KITH__CRDT_COUNTER) {
            out->type = KITH_TYPE_INT;
            out->u.i = sum;
            *kind = KITH__CRDT_COUNTER;
            return found;
        }
    }
    kb[0] = coll;
    memcpy(kb + 1, doc->bytes, KITH_DOCID_BYTES);
    kb[17] = field;
    if (crdt < 0 || crdt == KITH__CRDT_FLAG) {
        if ((rc = dots_get(t, t->r->flagdb, NULL, kb, sizeof kb, &dots, &n)) < 0)
            return rc;
        if (n > 0 || crdt == KITH__CRDT_FLAG) {
            out->type = KITH_TYPE_BOOL;
            out->u.b = n > 0;
            *kind = KITH__CRDT_FLAG;
            return n > 0;
        }
    }
    if (crdt == KITH__CRDT_SET) {
        out->type = KITH_TYPE_SET;
        *kind = KITH__CRDT_SET;
        return 1;
    }
    return 0;
}

int
kith_field_get(kith_txn *t, const char *collection, const kith_docid *doc, const char *field,
               kith_value *out)
{
    const struct kith__sschema *ss;
    const struct kith__coll_decl *cd = NULL;
    const struct kith__field_decl *fd = NULL;
    uint8_t coll, f;
    int rc, kind;

    if (t == NULL || collection == NULL || doc == NULL || field == NULL || out == NULL)
        return KITH_EINVAL;
    memset(out, 0, sizeof *out);
    if ((rc = read_coll(t, collection, &coll)) < 0 || (rc = txn_schema(t, &ss)) < 0)
        return rc;
    if (ss->decl && (cd = kith__schema_find(ss->decl, collection, strlen(collection))))
        fd = kith__coll_field(cd, field, strlen(field));
    if (fd && fd->crdt == KITH__CRDT_SET)
        return kith__fail(t->r, KITH_ESCHEMA, "%s: a set field (use set add/remove)", field);
    rc = kith__names_get(t->r, t->txn, txn_names(t), KITH__NAME_FIELD, coll, field, strlen(field),
                         false, &f);
    if (rc == KITH_ENOTFOUND)
        return kith__fail(t->r, KITH_ENOTFOUND, "%s has no field %s", collection, field);
    if (rc < 0)
        return rc;
    if ((rc = doc_must_live(t, coll, collection, doc)) < 0)
        return rc;
    rc = kith__field_read(t, coll, doc, f, fd ? (int)fd->crdt : -1, out, &kind);
    return rc < 0 ? rc : 0;
}

/* ---- sets --------------------------------------------------------------------------------- */

static int
set_write(kith_txn *t, const char *collection, const kith_docid *doc, const char *field,
          const char *elem, size_t len, bool add)
{
    struct kith__op op;
    struct target tg;
    kith_value ev = {.type = KITH_TYPE_STRING};
    char why[200];
    uint8_t kb[511];
    MDB_val k, v;
    kith_dot dot;
    char *copy;
    int rc;

    if (doc == NULL || (elem == NULL && len > 0))
        return t ? txn_failed(t, KITH_EINVAL) : KITH_EINVAL;
    if ((rc = write_prepare(t, collection, &tg)) < 0 ||
        (rc = field_prepare(t, &tg, field, KITH__CRDT_SET)) < 0)
        return rc;
    why[0] = '\0';
    ev.u.s.ptr = elem ? elem : "";
    ev.u.s.len = len;
    rc = kith__field_check(tg.fd, &ev, why, sizeof why);
    if (rc < 0)
        return txn_failed(t, kith__fail(t->r, KITH_ESCHEMA, "%s", why[0] ? why : field));
    if (18 + len > sizeof kb || len > KITH__MAX_ELEM_BYTES)
        return txn_failed(
            t, kith__fail(t->r, KITH_ESCHEMA, "%s: element of %zu bytes is too long", field, len));
    rc = doc_must_live(t, tg.coll, collection, doc);
    if (rc < 0)
        return txn_failed(t, rc);
    if (add && tg.fd->ref != NULL) {
        /* a set of references: each added element names a live document */
        char hex[KITH_DOCID_HEX + 1];
        kith_docid ref;
        memcpy(hex, elem, len < KITH_DOCID_HEX ? len : KITH_DOCID_HEX);
        hex[len < KITH_DOCID_HEX ? len : KITH_DOCID_HEX] = '\0';
        rc = kith_docid_parse(hex, &ref) < 0 ? 0 : ref_live(t, tg.fd->ref, &ref);
        if (rc == 0)
            return txn_failed(
                t, kith__fail(t->r, KITH_ESCHEMA, "%s: no %s %s", field, tg.fd->ref, hex));
        if (rc < 0)
            return txn_failed(t, rc);
    }
    memset(&op, 0, sizeof op);
    op.kind = add ? KITH_OP_SET_ADD : KITH_OP_SET_REMOVE;
    op.doc = kith__docid_to_dot(doc);
    kb[0] = tg.coll;
    kith__dot_put(kb + 1, op.doc);
    kb[17] = tg.field;
    if (len > 0)
        memcpy(kb + 18, elem, len);
    k.mv_size = 18 + len;
    k.mv_data = kb;
    rc = kith__mdb_get(t->txn, t->r->elems, &k, &v);
    if (rc == MDB_NOTFOUND) {
        if (!add)
            return 0; /* removing an absent element writes nothing */
    } else if (rc != 0) {
        return txn_failed(t, kith__mdb_err(rc));
    } else {
        if (v.mv_size == 0 || v.mv_size % KITH__DOT_BYTES != 0)
            return txn_failed(t, kith__fail(t->r, KITH_ECORRUPT, "elems: bad dot set"));
        op.nobserved = (uint32_t)(v.mv_size / KITH__DOT_BYTES);
        op.observed = dots_copy(t, v.mv_data, op.nobserved);
        if (op.observed == NULL)
            return txn_failed(t, KITH_ENOMEM);
    }
    copy = kith__mem_alloc(&t->mem, len + 1);
    if (copy == NULL)
        return txn_failed(t, KITH_ENOMEM);
    if (len > 0)
        memcpy(copy, elem, len);
    copy[len] = '\0';
    op.value.type = KITH_TYPE_STRING;
    op.value.u.s.ptr = copy;
    op.value.u.s.len = len;
    return op_push(t, &tg, &op, &dot);
}

int
kith_set_add(kith_txn *t, const char *collection, const kith_docid *doc, const char *field,
             const char *elem, size_t len)
{
    return set_write(t, collection, doc, field, elem, len, true);
}

int
kith_set_remove(kith_txn *t, const char *collection, const kith_docid *doc, const char *field,
                const char *elem, size_t len)
{
    return set_write(t, collection, doc, field, elem, len, false);
}

/* ---- commit ------------------------------------------------------------------------------ */

/*
 * Write what a local commit adds besides its ops' effects: the log entry, the apply order,
 * the own origins record, the clock and counters. Assumes the ops are applied in t->txn and
 * t->enc holds the commit's encoding.
 */
static int
commit_write(kith_txn *t)
{
    kith_replica *r = t->r;
    struct kith__origin_slot *own;
    uint8_t kb[16], ob[16], chain[KITH_HASH_BYTES];
    uint64_t order, hlc, last = t->commit.first_seq + t->commit.nops - 1;
    MDB_val k = {16, kb}, v, ok = {8, ob}, ov = {16, kb};
    int rc;

    own = kith__apply_origin(&t->ap, r->id, &rc);
    if (own == NULL)
        return rc;
    if (own->st.applied != t->commit.first_seq - 1 || own->st.have != own->st.applied)
        return kith__fail(r, KITH_EBUSY, "own origin moved during the transaction");
    if ((rc = kith__meta_get_u64(r, t->txn, "order", &order)) < 0 ||
        (rc = kith__meta_get_u64(r, t->txn, "hlc", &hlc)) < 0)
        return rc;
    order++;
    kith__chain_next(own->st.head, t->enc.data, t->enc.len, chain);
    kith__be64_put(kb, r->id);
    kith__be64_put(kb + 8, t->commit.first_seq);
    v.mv_size = KITH__LOG_HDR_BYTES + t->enc.len;
    v.mv_data = NULL;
    rc = kith__mdb_put(t->txn, r->log, &k, &v, MDB_RESERVE | MDB_NOOVERWRITE);
    if (rc != 0)
        return rc == MDB_MAP_FULL ? rc
                                  : kith__fail(r, kith__mdb_err(rc), "log: %s", mdb_strerror(rc));
    {
        uint8_t *p = v.mv_data;
        p[0] = (uint8_t)(t->commit.nops >> 24);
        p[1] = (uint8_t)(t->commit.nops >> 16);
        p[2] = (uint8_t)(t->commit.nops >> 8);
        p[3] = (uint8_t)t->commit.nops;
        memcpy(p + 4, chain, KITH_HASH_BYTES);
        kith__be64_put(p + 36, order);
        memcpy(p + KITH__LOG_HDR_BYTES, t->enc.data, t->enc.len);
    }
    kith__be64_put(ob, order);
    rc = kith__mdb_put(t->txn, r->order, &ok, &ov, MDB_APPEND);
    if (rc != 0)
        return rc == MDB_MAP_FULL ? rc
                                  : kith__fail(r, kith__mdb_err(rc), "order: %s", mdb_strerror(rc));
    own->st.applied = own->st.have = last;
    memcpy(own->st.head, chain, KITH_HASH_BYTES);
    own->dirty = true;
    if (t->commit.hlc > hlc)
        hlc = t->commit.hlc;
    if ((rc = kith__meta_put_u64(r, t->txn, "order", order)) < 0 ||
        (rc = kith__meta_put_u64(r, t->txn, "hlc", hlc)) < 0)
        return rc;
    return kith__apply_finish(&t->ap);
}

int
kith_txn_commit(kith_txn **txn)
{
    kith_txn *t;
    kith_replica *r;
    int rc;

    if (txn == NULL || *txn == NULL)
        return KITH_EINVAL;
    t = *txn;
    *txn = NULL;
    r = t->r;
    if (t->failed) {
        txn_free(t);
        return KITH_EBADTXN;
    }
    if (!(t->flags & KITH_TXN_WRITE) ||
        (t->commit.nops == 0 && t->nresolved == 0 && t->njmarks == 0)) {
        txn_free(t); /* a read, or a write transaction that wrote nothing: nothing to commit */
        return 0;
    }
    if (t->commit.nops == 0) {
        /* Only local records changed (conflicts resolved): no commit, no log entry. A write
         * that made no op may have opened the applier: its cursors close before LMDB frees
         * them with the transaction. */
        rc = kith__conflicts_mark(t);
        if (rc == 0)
            rc = kith__journal_mark(t);
        if (rc == 0) {
            if (t->ap_open) {
                kith__apply_end(&t->ap);
                t->ap_open = false;
            }
            rc = kith__mdb_err(kith__mdb_txn_commit(t->txn));
            t->txn = NULL;
        }
        goto out_free;
    }
    t->commit.format = 2;
    rc = kith__commit_encode(&t->commit, &t->enc);
    if (rc < 0) {
        rc = kith__fail(r, rc, "cannot encode the commit");
        goto out_free;
    }
#ifdef KITH_CHECK_BREAK_ACK
    /* kith-check's dropped acknowledgement (spec/check.md "Hooks inside the library"): one commit
     * in 97 of this process is acknowledged (0) but rolled back, as a store that acked before
     * making it durable and then lost it would. */
    static unsigned commits_seen;
    if (__atomic_add_fetch(&commits_seen, 1, __ATOMIC_RELAXED) % 97 == 0) {
        rc = 0;
        goto out_free;
    }
#endif
    for (int tries = 0;; tries++) {
        rc = commit_write(t);
        if (rc == 0)
            rc = kith__conflicts_mark(t);
        if (rc == 0)
            rc = kith__journal_mark(t);
        if (rc == 0) {
            kith__apply_end(&t->ap);
            t->ap_open = false;
            rc = kith__mdb_txn_commit(t->txn); /* frees the txn, even when it fails */
            t->txn = NULL;
            kith__mdb_end(r);
            t->holds_resize = false;
            if (rc == 0)
                break;
        }
        if (rc != MDB_MAP_FULL || tries == MAX_GROWTHS) {
            rc = rc == MDB_MAP_FULL ? -ENOSPC : kith__mdb_err(rc);
            kith__fail(r, rc, "commit of %016llx:%llu failed: %s", (unsigned long long)r->id,
                       (unsigned long long)t->commit.first_seq, kith_strerror(rc));
            goto out_free;
        }
        rc = grow_and_replay(t);
        if (rc < 0)
            goto out_free;
    }
    txn_unlock(t); /* observers may begin transactions of their own */
    kith__event_report(r, &t->events, KITH_CHANGE_LOCAL);
out_free:
    txn_free(t);
    return rc;
}
