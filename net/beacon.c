/*
 * beacon.c — LAN discovery (spec/protocol.md "Discovery"): a small signed UDP datagram that
 * says "replica ID, key PK, reachable at ENDPOINT, at TIME", sent to the broadcast address of
 * every IPv4 interface that has one and to an IPv4 multicast group. A receiver checks the
 * layout, that the id belongs to the key, the signature (context "kith-bc1") and the time;
 * whether the key is trusted, and the rate limits, are the daemon's part. Nothing is contacted
 * on the word of a beacon alone: the daemon then connects with CURVE to that key, so a forged
 * endpoint leads nowhere.
 *
 *  offset  size  field
 *  0       8     magic "KITHBC01"
 *  8       8     replica id, big-endian
 *  16      32    Ed25519 public key
 *  48      8     wall-clock time in ms, big-endian
 *  56      2     endpoint length n, big-endian, 1..255
 *  58      n     endpoint, printable ASCII, "tcp://HOST:PORT" (HOST may be * or 0.0.0.0)
 *  58+n    64    kith_sign(key, "kith-bc1", bytes 0 .. 58+n)
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "KITHBC01"
#define HDR 58
#define MAX_SKEW_MS (10 * 60 * 1000)

static int64_t
wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t
get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

int
kith__beacon_open(uint16_t port)
{
    struct sockaddr_in sa;
    struct ip_mreq mreq;
    int fd, one = 1, ttl = 1, rc;

    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) != 0 ||
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) != 0 ||
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)) != 0) {
        rc = -errno;
        goto out_close;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        rc = -errno;
        goto out_close;
    }
    memset(&mreq, 0, sizeof(mreq));
    inet_pton(AF_INET, KITH__BEACON_GROUP, &mreq.imr_multiaddr);
    mreq.imr_interface.s_addr = htonl(INADDR_ANY);
    /* Without a multicast route (a bare namespace) joining fails; broadcast still works. */
    (void)setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq));
    return fd;
out_close:
    close(fd);
    return rc;
}

int
kith__beacon_build(kith_replica *r, const char *endpoint, int64_t time_ms,
                   uint8_t out[KITH__BEACON_MAX], size_t *len)
{
    uint8_t pk[KITH_PUBKEY_BYTES];
    size_t n = strlen(endpoint);
    int rc;

    if (n == 0 || n > 255 || HDR + n + KITH_SIG_BYTES > KITH__BEACON_MAX)
        return KITH_EINVAL;
    memcpy(out, MAGIC, 8);
    put64(out + 8, kith_replica_id(r));
    kith_replica_pubkey(r, pk);
    memcpy(out + 16, pk, sizeof(pk));
    put64(out + 48, (uint64_t)time_ms);
    out[56] = (uint8_t)(n >> 8);
    out[57] = (uint8_t)n;
    memcpy(out + HDR, endpoint, n);
    rc = kith_sign(r, "kith-bc1", out, HDR + n, out + HDR + n);
    if (rc < 0)
        return rc;
    *len = HDR + n + KITH_SIG_BYTES;
    return 0;
}

int
kith__beacon_send(int fd, kith_replica *r, uint16_t port, const char *endpoint)
{
    uint8_t buf[KITH__BEACON_MAX];
    struct ifaddrs *ifs = NULL;
    struct sockaddr_in to;
    size_t len;
    int rc, sent = 0;

    rc = kith__beacon_build(r, endpoint, wall_ms(), buf, &len);
    if (rc < 0)
        return rc;
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
                !(i->ifa_flags & IFF_BROADCAST) || !i->ifa_broadaddr)
                continue;
            to.sin_addr = ((struct sockaddr_in *)i->ifa_broadaddr)->sin_addr;
            if (sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)len)
                sent++;
        }
        freeifaddrs(ifs);
    }
    inet_pton(AF_INET, KITH__BEACON_GROUP, &to.sin_addr);
    if (sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) == (ssize_t)len)
        sent++;
    return sent ? 0 : -ENETUNREACH;
}

/* "tcp://HOST:PORT" with HOST "*" or "0.0.0.0": put the sender's address in its place. */
static int
fill_endpoint(const char *ep, size_t n, const struct in_addr *from, char *out, size_t cap)
{
    const char *host = ep + 6, *colon;
    char ip[INET_ADDRSTRLEN];

    if (n < 8 || memcmp(ep, "tcp://", 6) != 0)
        return KITH_EMALFORMED;
    colon = memchr(host, ':', n - 6);
    if (!colon)
        return KITH_EMALFORMED;
    size_t hlen = (size_t)(colon - host);
    if ((hlen == 1 && host[0] == '*') || (hlen == 7 && memcmp(host, "0.0.0.0", 7) == 0)) {
        if (!inet_ntop(AF_INET, from, ip, sizeof(ip)))
            return KITH_EMALFORMED;
        int w = snprintf(out, cap, "tcp://%s%.*s", ip, (int)(n - 6 - hlen), colon);
        return w > 0 && (size_t)w < cap ? 0 : KITH_EMALFORMED;
    }
    if (n >= cap)
        return KITH_EMALFORMED;
    memcpy(out, ep, n);
    out[n] = '\0';
    return 0;
}

int
kith__beacon_recv(int fd, struct kith__beacon_msg *out)
{
    uint8_t buf[KITH__BEACON_MAX + 1];
    struct sockaddr_in from;
    socklen_t flen = sizeof(from);
    ssize_t got;
    size_t n;
    int rc;

    got = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
    if (got < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if ((size_t)got < HDR + 1 + KITH_SIG_BYTES || (size_t)got > KITH__BEACON_MAX ||
        memcmp(buf, MAGIC, 8) != 0 || flen != sizeof(from) || from.sin_family != AF_INET)
        return KITH_EMALFORMED;
    n = ((size_t)buf[56] << 8) | buf[57];
    if (n == 0 || n > 255 || (size_t)got != HDR + n + KITH_SIG_BYTES)
        return KITH_EMALFORMED;
    for (size_t i = 0; i < n; i++)
        if (buf[HDR + i] < 0x21 || buf[HDR + i] > 0x7e)
            return KITH_EMALFORMED;
    out->id = get64(buf + 8);
    memcpy(out->pk, buf + 16, KITH_PUBKEY_BYTES);
    out->time_ms = (int64_t)get64(buf + 48);
    if (kith_id_from_pubkey(out->pk) != out->id)
        return KITH_EMALFORMED;
    rc = kith_sign_verify(out->pk, "kith-bc1", buf, HDR + n, buf + HDR + n);
    if (rc < 0)
        return KITH_EBADSIG;
    int64_t skew = wall_ms() - out->time_ms;
    if (skew > MAX_SKEW_MS || skew < -MAX_SKEW_MS)
        return KITH_EINVAL;
    return fill_endpoint((const char *)buf + HDR, n, &from.sin_addr, out->endpoint,
                         sizeof(out->endpoint));
}

bool
kith__beacon_rate_ok(struct kith__beacon_gate *g, int64_t now_ms)
{
    if (now_ms - g->bucket_start_ms >= 1000) {
        g->bucket_start_ms = now_ms;
        g->bucket_count = 0;
    }
    return ++g->bucket_count <= KITH__BEACON_PER_SEC;
}

int
kith__beacon_drop(int fd)
{
    uint8_t byte;
    ssize_t got = recv(fd, &byte, 1, 0); /* a datagram is consumed whole, whatever its size */
    if (got < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return 0;
}

bool
kith__beacon_admit(struct kith__beacon_gate *g, const struct kith__beacon_msg *b, uint64_t self,
                   int64_t now_ms)
{
    struct kith__beacon_seen *slot;

    if (b->id == self)
        return false;
    slot = &g->seen[b->id % KITH__BEACON_SLOTS];
    if (slot->id == b->id && (b->time_ms <= slot->last_time || now_ms - slot->last_ms < 1000))
        return false; /* replayed, or too frequent */
    slot->id = b->id;
    slot->last_ms = now_ms;
    slot->last_time = b->time_ms;
    return true;
}
