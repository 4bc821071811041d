/*
 * wire.c — encoder, guard and decoder of the sync protocol's messages (wire.h has the table,
 * spec/protocol.md "Messages" the prose). The guard walks msgpack's byte grammar with a
 * small stack of counts, so that msgpack-c, which reserves storage for whatever count a header
 * claims, only ever sees frames whose counts the bytes can back. The decoder then insists on
 * one exact shape per type; there are no optional fields, so one message has one encoding
 * apart from msgpack's choice of integer widths. HELLO and WELCOME have one shape per
 * protocol this kith speaks (2, 3, 4 and 5); one of another version is read only as far as its
 * version number (wire.h), so that a peer running another kith is told so instead of being
 * refused as malformed.
 */
#include "wire.h"
#include "core.h" /* kith__utf8_valid */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *
kith__wire_name(int type)
{
    switch (type) {
    case KITH__MSG_HELLO:
        return "HELLO";
    case KITH__MSG_WELCOME:
        return "WELCOME";
    case KITH__MSG_REFUSE:
        return "REFUSE";
    case KITH__MSG_BATCH:
        return "BATCH";
    case KITH__MSG_ACK:
        return "ACK";
    case KITH__MSG_DONE:
        return "DONE";
    case KITH__MSG_PING:
        return "PING";
    case KITH__MSG_PONG:
        return "PONG";
    case KITH__MSG_BYE:
        return "BYE";
    case KITH__MSG_JOIN:
        return "JOIN";
    case KITH__MSG_JOINED:
        return "JOINED";
    case KITH__MSG_FETCH:
        return "FETCH";
    case KITH__MSG_FETCHED:
        return "FETCHED";
    default:
        return "?";
    }
}

/* ---- the guard ----------------------------------------------------------------------- */

static uint64_t
be_get(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/*
 * Size of the header of the object starting with byte `b` (after the type byte: `extra`
 * bytes of length or value), and what follows it: `payload` bytes to skip (read from the
 * header when `lenbytes` > 0), or `children` nested objects. Returns false for 0xc1.
 */
struct hdr {
    size_t extra;    /* fixed bytes after the type byte */
    size_t lenbytes; /* of which this many give a length/count (big-endian) */
    bool is_count;   /* the length counts objects (array), or pairs (map) */
    bool is_map;
    size_t fixlen; /* length/count carried in the type byte itself */
    bool has_fix;
    size_t payload_add; /* ext: one type byte beyond the length */
};

static bool
classify(uint8_t b, struct hdr *h)
{
    memset(h, 0, sizeof(*h));
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return true;
    if (b >= 0x80 && b <= 0x8f) {
        h->is_count = h->is_map = h->has_fix = true;
        h->fixlen = b & 0x0fu;
        return true;
    }
    if (b >= 0x90 && b <= 0x9f) {
        h->is_count = h->has_fix = true;
        h->fixlen = b & 0x0fu;
        return true;
    }
    if (b >= 0xa0 && b <= 0xbf) {
        h->has_fix = true;
        h->fixlen = b & 0x1fu;
        return true;
    }
    switch (b) {
    case 0xc4:
    case 0xd9:
        h->extra = h->lenbytes = 1;
        return true; /* bin8, str8 */
    case 0xc5:
    case 0xda:
        h->extra = h->lenbytes = 2;
        return true; /* bin16, str16 */
    case 0xc6:
    case 0xdb:
        h->extra = h->lenbytes = 4;
        return true; /* bin32, str32 */
    case 0xc7:
        h->extra = h->lenbytes = 1;
        h->payload_add = 1;
        return true; /* ext8 */
    case 0xc8:
        h->extra = h->lenbytes = 2;
        h->payload_add = 1;
        return true; /* ext16 */
    case 0xc9:
        h->extra = h->lenbytes = 4;
        h->payload_add = 1;
        return true; /* ext32 */
    case 0xca:
        h->extra = 4;
        return true; /* float32 */
    case 0xcb:
        h->extra = 8;
        return true; /* float64 */
    case 0xcc:
    case 0xd0:
        h->extra = 1;
        return true;
    case 0xcd:
    case 0xd1:
        h->extra = 2;
        return true;
    case 0xce:
    case 0xd2:
        h->extra = 4;
        return true;
    case 0xcf:
    case 0xd3:
        h->extra = 8;
        return true;
    case 0xd4:
        h->extra = 2;
        return true; /* fixext 1..16 + type */
    case 0xd5:
        h->extra = 3;
        return true;
    case 0xd6:
        h->extra = 5;
        return true;
    case 0xd7:
        h->extra = 9;
        return true;
    case 0xd8:
        h->extra = 17;
        return true;
    case 0xdc:
        h->extra = h->lenbytes = 2;
        h->is_count = true;
        return true; /* array16 */
    case 0xdd:
        h->extra = h->lenbytes = 4;
        h->is_count = true;
        return true; /* array32 */
    case 0xde:
        h->extra = h->lenbytes = 2;
        h->is_count = h->is_map = true;
        return true;
    case 0xdf:
        h->extra = h->lenbytes = 4;
        h->is_count = h->is_map = true;
        return true;
    default:
        return false; /* 0xc1 */
    }
}

int
kith__wire_guard(const uint8_t *p, size_t len, int max_depth, size_t max_objects)
{
    size_t pending[16]; /* objects still to read at each open level */
    int depth = 0;
    size_t off = 0, objects = 0;

    if (!p || len == 0 || max_depth < 1 || max_depth > 15)
        return KITH_EMALFORMED;
    pending[0] = 1;
    while (depth >= 0) {
        if (pending[depth] == 0) {
            depth--;
            continue;
        }
        pending[depth]--;
        if (off >= len || ++objects > max_objects)
            return KITH_EMALFORMED;
        struct hdr h;
        uint8_t b = p[off++];
        if (!classify(b, &h) || len - off < h.extra)
            return KITH_EMALFORMED;
        uint64_t n = h.has_fix ? h.fixlen : be_get(p + off, h.lenbytes);
        off += h.extra;
        if (h.is_count) {
            uint64_t items = h.is_map ? 2 * n : n;
            /* every object takes at least one byte */
            if (items > len - off)
                return KITH_EMALFORMED;
            if (items == 0)
                continue;
            if (depth + 1 >= max_depth)
                return KITH_EMALFORMED;
            pending[++depth] = (size_t)items;
        } else if (h.has_fix || h.lenbytes) {
            uint64_t skip = n + h.payload_add;
            if (skip > len - off)
                return KITH_EMALFORMED;
            off += (size_t)skip;
        }
    }
    return off == len ? 0 : KITH_EMALFORMED;
}

/* ---- encoding ------------------------------------------------------------------------ */

static int
pack_vv(msgpack_packer *pk, const kith_vv *vv)
{
    size_t n = vv ? vv->len : 0;
    if (n > KITH__WIRE_MAX_ORIGINS)
        return KITH_EINVAL;
    if (msgpack_pack_array(pk, 2 * n) != 0)
        return KITH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (msgpack_pack_uint64(pk, vv->entries[i].origin) != 0 ||
            msgpack_pack_uint64(pk, vv->entries[i].seq) != 0)
            return KITH_ENOMEM;
    }
    return 0;
}

static int
pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    if (msgpack_pack_bin(pk, n) != 0 || msgpack_pack_bin_body(pk, p, n) != 0)
        return KITH_ENOMEM;
    return 0;
}

int
kith__wire_encode(const struct kith__msg *m, msgpack_sbuffer *out)
{
    msgpack_packer pk;
    int rc = 0;

    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    switch (m->type) {
    case KITH__MSG_HELLO:
    case KITH__MSG_WELCOME: {
        static const uint8_t zeros[KITH_HASH_BYTES];
        bool v3 = m->proto >= 3, v4 = m->proto >= 4, v5 = m->proto >= 5;
        if (m->proto < KITH__WIRE_PROTO_MIN || m->proto > KITH__WIRE_PROTO) {
            /* another version's: its number is all this one can say of it (wire.h) */
            if (msgpack_pack_array(&pk, 2) != 0 || msgpack_pack_int(&pk, m->type) != 0 ||
                msgpack_pack_uint32(&pk, m->proto) != 0)
                return KITH_ENOMEM;
            return 0;
        }
        if (!m->pk || !m->schema_digest || (v3 && m->vv.len > 0 && !m->heads))
            return KITH_EINVAL;
        if (msgpack_pack_array(&pk, v5   ? 12
                                    : v4 ? 11
                                    : v3 ? 9
                                         : 7) != 0 ||
            msgpack_pack_int(&pk, m->type) != 0 || msgpack_pack_uint32(&pk, m->proto) != 0 ||
            msgpack_pack_uint64(&pk, m->id) != 0)
            return KITH_ENOMEM;
        if ((rc = pack_bin(&pk, m->pk, KITH_PUBKEY_BYTES)) < 0)
            return rc;
        if (msgpack_pack_uint64(&pk, m->schema_version) != 0)
            return KITH_ENOMEM;
        if ((rc = pack_bin(&pk, m->schema_digest, KITH_HASH_BYTES)) < 0)
            return rc;
        if ((rc = pack_vv(&pk, &m->vv)) < 0 || !v3)
            return rc;
        if ((rc = pack_bin(&pk, m->vv.len ? m->heads : (const uint8_t *)"",
                           m->vv.len * KITH_HASH_BYTES)) < 0)
            return rc;
        if (msgpack_pack_uint64(&pk, m->clock_ms) != 0)
            return KITH_ENOMEM;
        if (!v4)
            return 0;
        if ((rc = pack_bin(&pk, m->group ? m->group : zeros, KITH__WIRE_GROUP_BYTES)) < 0 ||
            (rc = pack_bin(&pk, m->gdigest ? m->gdigest : zeros, KITH_HASH_BYTES)) < 0 || !v5)
            return rc;
        return pack_bin(&pk, m->pdigest ? m->pdigest : zeros, KITH_HASH_BYTES);
    }
    case KITH__MSG_FETCH:
        if (m->nsamples == 0 || m->nsamples > KITH__WIRE_MAX_SAMPLES || !m->samples || !m->chains)
            return KITH_EINVAL;
        for (size_t i = 0; i < m->nsamples; i++)
            if (m->samples[i] == 0 || (i > 0 && m->samples[i] >= m->samples[i - 1]))
                return KITH_EINVAL;
        if (msgpack_pack_array(&pk, 4) != 0 || msgpack_pack_int(&pk, m->type) != 0 ||
            msgpack_pack_uint64(&pk, m->origin) != 0 || msgpack_pack_array(&pk, m->nsamples) != 0)
            return KITH_ENOMEM;
        for (size_t i = 0; i < m->nsamples; i++)
            if (msgpack_pack_uint64(&pk, m->samples[i]) != 0)
                return KITH_ENOMEM;
        return pack_bin(&pk, m->chains, m->nsamples * KITH_HASH_BYTES);
    case KITH__MSG_FETCHED:
        if ((m->len > 0 && !m->data) || m->len > KITH__WIRE_MAX_FRAME - KITH__WIRE_MAX_CONTROL)
            return KITH_EINVAL;
        if (msgpack_pack_array(&pk, 4) != 0 || msgpack_pack_int(&pk, m->type) != 0 ||
            msgpack_pack_uint64(&pk, m->origin) != 0 || msgpack_pack_uint64(&pk, m->after) != 0)
            return KITH_ENOMEM;
        return pack_bin(&pk, m->len ? m->data : (const uint8_t *)"", m->len);
    case KITH__MSG_JOIN:
        if (!m->join_pk || !m->mac || !m->name || m->name_len == 0 ||
            m->name_len > KITH__WIRE_MAX_NAME)
            return KITH_EINVAL;
        if (msgpack_pack_array(&pk, 4) != 0 || msgpack_pack_int(&pk, m->type) != 0)
            return KITH_ENOMEM;
        if ((rc = pack_bin(&pk, m->join_pk, KITH_PUBKEY_BYTES)) < 0)
            return rc;
        if (msgpack_pack_str(&pk, m->name_len) != 0 ||
            msgpack_pack_str_body(&pk, m->name, m->name_len) != 0)
            return KITH_ENOMEM;
        return pack_bin(&pk, m->mac, KITH_HASH_BYTES);
    case KITH__MSG_JOINED:
        if (!m->group || m->nrecords == 0 || m->nrecords > KITH__WIRE_MAX_RECORDS || !m->records ||
            !m->record_lens)
            return KITH_EINVAL;
        for (size_t i = 0; i < m->nrecords; i++)
            if (m->record_lens[i] == 0 || m->record_lens[i] > KITH__WIRE_MAX_RECORD)
                return KITH_EINVAL;
        if (msgpack_pack_array(&pk, 3) != 0 || msgpack_pack_int(&pk, m->type) != 0)
            return KITH_ENOMEM;
        if ((rc = pack_bin(&pk, m->group, KITH__WIRE_GROUP_BYTES)) < 0)
            return rc;
        if (msgpack_pack_array(&pk, m->nrecords) != 0)
            return KITH_ENOMEM;
        for (size_t i = 0; i < m->nrecords; i++)
            if ((rc = pack_bin(&pk, m->records[i], m->record_lens[i])) < 0)
                return rc;
        return 0;
    case KITH__MSG_REFUSE: {
        size_t n = m->reason ? m->reason_len : 0;
        if (n > KITH__WIRE_MAX_REASON)
            n = KITH__WIRE_MAX_REASON; /* a reason is advice: cut, never refuse to refuse */
        if (msgpack_pack_array(&pk, 3) != 0 || msgpack_pack_int(&pk, m->type) != 0 ||
            msgpack_pack_int32(&pk, m->code) != 0 || msgpack_pack_str(&pk, n) != 0 ||
            msgpack_pack_str_body(&pk, n ? m->reason : "", n) != 0)
            return KITH_ENOMEM;
        return 0;
    }
    case KITH__MSG_BATCH:
        if (!m->data || m->len == 0 || m->seq == 0 ||
            m->len > KITH__WIRE_MAX_FRAME - KITH__WIRE_MAX_CONTROL)
            return KITH_EINVAL;
        if (msgpack_pack_array(&pk, 5) != 0 || msgpack_pack_int(&pk, m->type) != 0 ||
            msgpack_pack_uint64(&pk, m->seq) != 0 ||
            (m->has_more ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)) != 0)
            return KITH_ENOMEM;
        if ((rc = pack_vv(&pk, &m->vv)) < 0)
            return rc;
        return pack_bin(&pk, m->data, m->len);
    case KITH__MSG_ACK:
        if (m->seq == 0)
            return KITH_EINVAL;
        if (msgpack_pack_array(&pk, 3) != 0 || msgpack_pack_int(&pk, m->type) != 0 ||
            msgpack_pack_uint64(&pk, m->seq) != 0)
            return KITH_ENOMEM;
        return pack_vv(&pk, &m->vv);
    case KITH__MSG_DONE:
        if (msgpack_pack_array(&pk, 2) != 0 || msgpack_pack_int(&pk, m->type) != 0)
            return KITH_ENOMEM;
        return pack_vv(&pk, &m->vv);
    case KITH__MSG_PING:
    case KITH__MSG_PONG:
        if (msgpack_pack_array(&pk, 2) != 0 || msgpack_pack_int(&pk, m->type) != 0 ||
            msgpack_pack_uint64(&pk, m->nonce) != 0)
            return KITH_ENOMEM;
        return 0;
    case KITH__MSG_BYE:
        if (msgpack_pack_array(&pk, 1) != 0 || msgpack_pack_int(&pk, m->type) != 0)
            return KITH_ENOMEM;
        return 0;
    default:
        return KITH_EINVAL;
    }
}

/* ---- decoding ------------------------------------------------------------------------ */

static bool
get_u64(const msgpack_object *o, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *out = o->via.u64;
    return true;
}

static bool
get_bin(const msgpack_object *o, size_t want, const uint8_t **out)
{
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != want)
        return false;
    *out = (const uint8_t *)o->via.bin.ptr;
    return true;
}

/* A vv array: even length, origins strictly ascending and non-zero, seqs >= 1. */
static int
get_vv(const msgpack_object *o, kith_vv *out)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size % 2 != 0 ||
        o->via.array.size / 2 > KITH__WIRE_MAX_ORIGINS)
        return KITH_EMALFORMED;
    size_t n = o->via.array.size / 2;
    out->len = 0;
    out->entries = NULL;
    if (n == 0)
        return 0;
    out->entries = malloc(n * sizeof(*out->entries));
    if (!out->entries)
        return KITH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint64_t origin, seq;
        if (!get_u64(&o->via.array.ptr[2 * i], &origin) ||
            !get_u64(&o->via.array.ptr[2 * i + 1], &seq) || seq == 0 || origin == 0 ||
            (i > 0 && origin <= out->entries[i - 1].origin))
            return KITH_EMALFORMED; /* entries freed by kith__wire_clear */
        out->entries[i].origin = origin;
        out->entries[i].seq = seq;
        out->len = i + 1;
    }
    return 0;
}

int
kith__wire_decode(const void *frame, size_t len, struct kith__msg *m)
{
    const msgpack_object *a;
    size_t off = 0;
    uint64_t u;
    int rc;

    memset(m, 0, sizeof(*m));
    if (!frame || len == 0)
        return KITH_EMALFORMED;
    if (len > KITH__WIRE_MAX_FRAME)
        return KITH_ETOOBIG;
    /* Two objects per vv entry, a handful of fields; a BATCH's bin is one object. */
    rc = kith__wire_guard(frame, len, KITH__WIRE_MAX_DEPTH, 2 * KITH__WIRE_MAX_ORIGINS + 16);
    if (rc < 0)
        return rc;
    msgpack_unpacked_init(&m->unpacked);
    m->has_unpacked = true;
    if (msgpack_unpack_next(&m->unpacked, frame, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len)
        return KITH_EMALFORMED;
    const msgpack_object *root = &m->unpacked.data;
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < 1)
        return KITH_EMALFORMED;
    a = root->via.array.ptr;
    size_t n = root->via.array.size;
    if (!get_u64(&a[0], &u) || u < KITH__MSG_HELLO || u > KITH__MSG_FETCHED)
        return KITH_EMALFORMED;
    m->type = (int)u;
    if (m->type == KITH__MSG_HELLO || m->type == KITH__MSG_WELCOME) {
        if (len > KITH__WIRE_MAX_HELLO)
            return KITH_ETOOBIG;
    } else if (m->type != KITH__MSG_BATCH && m->type != KITH__MSG_JOINED &&
               m->type != KITH__MSG_FETCHED && len > KITH__WIRE_MAX_CONTROL) {
        return KITH_ETOOBIG;
    }

    switch (m->type) {
    case KITH__MSG_HELLO:
    case KITH__MSG_WELCOME:
        if (n < 2 || !get_u64(&a[1], &u) || u > UINT32_MAX)
            return KITH_EMALFORMED;
        m->proto = (uint32_t)u;
        if (m->proto < KITH__WIRE_PROTO_MIN || m->proto > KITH__WIRE_PROTO)
            return 0; /* another version's layout: the session refuses it by its number */
        if (n != (m->proto == 5   ? 12u
                  : m->proto == 4 ? 11u
                  : m->proto == 3 ? 9u
                                  : 7u) ||
            !get_u64(&a[2], &m->id) || !get_bin(&a[3], KITH_PUBKEY_BYTES, &m->pk) ||
            !get_u64(&a[4], &m->schema_version) ||
            !get_bin(&a[5], KITH_HASH_BYTES, &m->schema_digest))
            return KITH_EMALFORMED;
        if ((rc = get_vv(&a[6], &m->vv)) < 0 || m->proto == 2)
            return rc;
        /* one head per vv entry, nothing more or less: an origin without an entry has none */
        if (a[7].type != MSGPACK_OBJECT_BIN || a[7].via.bin.size != m->vv.len * KITH_HASH_BYTES ||
            !get_u64(&a[8], &m->clock_ms))
            return KITH_EMALFORMED;
        m->heads = m->vv.len ? (const uint8_t *)a[7].via.bin.ptr : NULL;
        if (m->proto == 3)
            return 0;
        if (!get_bin(&a[9], KITH__WIRE_GROUP_BYTES, &m->group) ||
            !get_bin(&a[10], KITH_HASH_BYTES, &m->gdigest) ||
            (m->proto >= 5 && !get_bin(&a[11], KITH_HASH_BYTES, &m->pdigest)))
            return KITH_EMALFORMED;
        return 0;
    case KITH__MSG_FETCH: {
        const msgpack_object *sq;
        if (n != 4 || !get_u64(&a[1], &m->origin) || a[2].type != MSGPACK_OBJECT_ARRAY ||
            a[2].via.array.size == 0 || a[2].via.array.size > KITH__WIRE_MAX_SAMPLES ||
            !get_bin(&a[3], a[2].via.array.size * KITH_HASH_BYTES, &m->chains))
            return KITH_EMALFORMED;
        sq = a[2].via.array.ptr;
        m->nsamples = a[2].via.array.size;
        if ((m->owned_samples = malloc(m->nsamples * sizeof *m->owned_samples)) == NULL)
            return KITH_ENOMEM;
        m->samples = m->owned_samples;
        for (size_t i = 0; i < m->nsamples; i++)
            if (!get_u64(&sq[i], &m->owned_samples[i]) || m->owned_samples[i] == 0 ||
                (i > 0 && m->owned_samples[i] >= m->owned_samples[i - 1]))
                return KITH_EMALFORMED;
        return 0;
    }
    case KITH__MSG_FETCHED:
        if (n != 4 || !get_u64(&a[1], &m->origin) || !get_u64(&a[2], &m->after) ||
            a[3].type != MSGPACK_OBJECT_BIN)
            return KITH_EMALFORMED;
        m->data = a[3].via.bin.size ? (const uint8_t *)a[3].via.bin.ptr : NULL;
        m->len = a[3].via.bin.size;
        return 0;
    case KITH__MSG_JOIN:
        if (n != 4 || !get_bin(&a[1], KITH_PUBKEY_BYTES, &m->join_pk) ||
            a[2].type != MSGPACK_OBJECT_STR || a[2].via.str.size == 0 ||
            a[2].via.str.size > KITH__WIRE_MAX_NAME ||
            memchr(a[2].via.str.ptr, 0, a[2].via.str.size) != NULL ||
            !kith__utf8_valid(a[2].via.str.ptr, a[2].via.str.size) ||
            !get_bin(&a[3], KITH_HASH_BYTES, &m->mac))
            return KITH_EMALFORMED;
        m->name = a[2].via.str.ptr;
        m->name_len = a[2].via.str.size;
        return 0;
    case KITH__MSG_JOINED: {
        const msgpack_object *recs;
        if (n != 3 || !get_bin(&a[1], KITH__WIRE_GROUP_BYTES, &m->group) ||
            a[2].type != MSGPACK_OBJECT_ARRAY || a[2].via.array.size == 0 ||
            a[2].via.array.size > KITH__WIRE_MAX_RECORDS)
            return KITH_EMALFORMED;
        recs = a[2].via.array.ptr;
        m->nrecords = a[2].via.array.size;
        m->owned_records = calloc(m->nrecords, sizeof(*m->owned_records));
        m->owned_lens = calloc(m->nrecords, sizeof(*m->owned_lens));
        if (!m->owned_records || !m->owned_lens)
            return KITH_ENOMEM;
        m->records = m->owned_records;
        m->record_lens = m->owned_lens;
        for (size_t i = 0; i < m->nrecords; i++) {
            if (recs[i].type != MSGPACK_OBJECT_BIN || recs[i].via.bin.size == 0 ||
                recs[i].via.bin.size > KITH__WIRE_MAX_RECORD)
                return KITH_EMALFORMED;
            m->owned_records[i] = (const uint8_t *)recs[i].via.bin.ptr;
            m->owned_lens[i] = recs[i].via.bin.size;
        }
        return 0;
    }
    case KITH__MSG_REFUSE:
        if (n != 3 || a[2].type != MSGPACK_OBJECT_STR || a[2].via.str.size > KITH__WIRE_MAX_REASON)
            return KITH_EMALFORMED;
        if (a[1].type == MSGPACK_OBJECT_NEGATIVE_INTEGER && a[1].via.i64 >= INT32_MIN)
            m->code = (int32_t)a[1].via.i64;
        else if (a[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER && a[1].via.u64 <= INT32_MAX)
            m->code = (int32_t)a[1].via.u64;
        else
            return KITH_EMALFORMED;
        m->reason = a[2].via.str.ptr;
        m->reason_len = a[2].via.str.size;
        return 0;
    case KITH__MSG_BATCH:
        if (n != 5 || !get_u64(&a[1], &m->seq) || m->seq == 0 ||
            a[2].type != MSGPACK_OBJECT_BOOLEAN || a[4].type != MSGPACK_OBJECT_BIN ||
            a[4].via.bin.size == 0)
            return KITH_EMALFORMED;
        m->has_more = a[2].via.boolean;
        m->data = (const uint8_t *)a[4].via.bin.ptr;
        m->len = a[4].via.bin.size;
        return get_vv(&a[3], &m->vv);
    case KITH__MSG_ACK:
        if (n != 3 || !get_u64(&a[1], &m->seq) || m->seq == 0)
            return KITH_EMALFORMED;
        return get_vv(&a[2], &m->vv);
    case KITH__MSG_DONE:
        if (n != 2)
            return KITH_EMALFORMED;
        return get_vv(&a[1], &m->vv);
    case KITH__MSG_PING:
    case KITH__MSG_PONG:
        if (n != 2 || !get_u64(&a[1], &m->nonce))
            return KITH_EMALFORMED;
        return 0;
    case KITH__MSG_BYE:
        return n == 1 ? 0 : KITH_EMALFORMED;
    default:
        return KITH_EMALFORMED;
    }
}

void
kith__wire_clear(struct kith__msg *m)
{
    if (!m)
        return;
    if (m->has_unpacked)
        msgpack_unpacked_destroy(&m->unpacked);
    free(m->vv.entries);
    free(m->owned_records);
    free(m->owned_lens);
    free(m->owned_samples);
    memset(m, 0, sizeof(*m));
}

/* ---- version vectors ----------------------------------------------------------------- */

static uint64_t
vv_find(const kith_vv *vv, uint64_t origin)
{
    size_t lo = 0, hi = vv ? vv->len : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (vv->entries[mid].origin < origin)
            lo = mid + 1;
        else if (vv->entries[mid].origin > origin)
            hi = mid;
        else
            return vv->entries[mid].seq;
    }
    return 0;
}

int
kith__netvv_merge(kith_vv *dst, const kith_vv *src)
{
    size_t i = 0, j = 0, k = 0;
    size_t cap = dst->len + (src ? src->len : 0);
    kith_dot *e;

    if (!src || src->len == 0)
        return 0;
    e = malloc(cap * sizeof(*e));
    if (!e)
        return KITH_ENOMEM;
    while (i < dst->len || j < src->len) {
        if (j >= src->len || (i < dst->len && dst->entries[i].origin < src->entries[j].origin))
            e[k++] = dst->entries[i++];
        else if (i >= dst->len || src->entries[j].origin < dst->entries[i].origin)
            e[k++] = src->entries[j++];
        else {
            e[k] = dst->entries[i];
            if (src->entries[j].seq > e[k].seq)
                e[k].seq = src->entries[j].seq;
            k++, i++, j++;
        }
    }
    free(dst->entries);
    dst->entries = e;
    dst->len = k;
    return 0;
}

int
kith__netvv_set(kith_vv *dst, const kith_vv *src)
{
    kith_dot *e = NULL;
    size_t n = src ? src->len : 0;
    if (n) {
        e = malloc(n * sizeof(*e));
        if (!e)
            return KITH_ENOMEM;
        memcpy(e, src->entries, n * sizeof(*e));
    }
    free(dst->entries);
    dst->entries = e;
    dst->len = n;
    return 0;
}

bool
kith__netvv_ahead(const kith_vv *a, const kith_vv *b)
{
    for (size_t i = 0; a && i < a->len; i++)
        if (a->entries[i].seq > vv_find(b, a->entries[i].origin))
            return true;
    return false;
}

bool
kith__netvv_equal(const kith_vv *a, const kith_vv *b)
{
    return !kith__netvv_ahead(a, b) && !kith__netvv_ahead(b, a);
}

void
kith__netvv_clear(kith_vv *vv)
{
    if (!vv)
        return;
    free(vv->entries);
    vv->entries = NULL;
    vv->len = 0;
}
