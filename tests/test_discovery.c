/*
 * test_discovery.c — LAN discovery for real (spec/protocol.md "Discovery"): two network
 * namespaces joined by a veth pair that the test creates and removes, a daemon in each with
 * --discover, replicas that trust each other's key but know no address. Each hears the other's
 * signed beacon, records its address, connects and syncs: both end with the same export, and
 * each peer record holds the other's address as seen on the wire. A third replica that nobody
 * trusts beacons too and is never contacted. Skipped, with the reason, where namespaces cannot
 * be made (not root, no iproute2, no CAP_NET_ADMIN).
 */
#include "kith_test.h"
#include "net_test.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>

static char ns_a[32], ns_b[32], veth_a[16], veth_b[16];
static pid_t kids[3];
static bool made;

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return rc == 0 ? 0 : -1;
}

static void
teardown(void)
{
    for (int i = 0; i < 3; i++)
        if (kids[i] > 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
            kids[i] = 0;
        }
    if (made) {
        (void)sh("ip netns del %s 2>/dev/null", ns_a);
        (void)sh("ip netns del %s 2>/dev/null", ns_b);
        made = false;
    }
}

/* Two namespaces, a veth pair between them, 10.231.x.1 and .2; false when not allowed. */
static bool
make_namespaces(void)
{
    int pid = (int)getpid();
    snprintf(ns_a, sizeof(ns_a), "kith-da-%d", pid);
    snprintf(ns_b, sizeof(ns_b), "kith-db-%d", pid);
    snprintf(veth_a, sizeof(veth_a), "kva%d", pid % 100000);
    snprintf(veth_b, sizeof(veth_b), "kvb%d", pid % 100000);
    if (geteuid() != 0 || sh("command -v ip >/dev/null 2>&1") != 0)
        return false;
    if (sh("ip netns add %s 2>/dev/null", ns_a) != 0)
        return false;
    made = true;
    cr_assert_eq(sh("ip netns add %s", ns_b), 0);
    cr_assert_eq(sh("ip link add %s type veth peer name %s", veth_a, veth_b), 0);
    cr_assert_eq(
        sh("ip link set %s netns %s && ip link set %s netns %s", veth_a, ns_a, veth_b, ns_b), 0);
    cr_assert_eq(sh("ip -n %s addr add 10.231.0.1/24 brd + dev %s && ip -n %s link set %s up && "
                    "ip -n %s link set lo up",
                    ns_a, veth_a, ns_a, veth_a, ns_a),
                 0);
    cr_assert_eq(sh("ip -n %s addr add 10.231.0.2/24 brd + dev %s && ip -n %s link set %s up && "
                    "ip -n %s link set lo up",
                    ns_b, veth_b, ns_b, veth_b, ns_b),
                 0);
    return true;
}

/* A daemon with discovery in namespace `ns`, on the replica in `dir`. */
static pid_t
spawn(const char *ns, const char *dir, const char *listen)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char path[128];
        snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
            _exit(4);
        close(fd);
        kith_replica *r;
        if (kith_open(dir, KITH_NOSYNC, &r) < 0)
            _exit(3);
        kith_serve_opts o;
        memset(&o, 0, sizeof(o));
        o.listen = listen;
        o.discover = true;
        o.interval_ms = 1000;
        o.timeout_ms = 3000;
        o.log_level = nt_log_level();
        int rc = kith_serve(r, &o);
        kith_close(r);
        _exit(rc == 0 ? 0 : 1);
    }
    return pid;
}

static bool
exports_equal(const char *da, const char *db)
{
    kith_replica *a, *b;
    cr_assert_eq(kith_open(da, 0, &a), 0);
    cr_assert_eq(kith_open(db, 0, &b), 0);
    char *x = kt_export(a), *y = kt_export(b);
    bool same = strcmp(x, y) == 0;
    free(x);
    free(y);
    kith_close(a);
    kith_close(b);
    return same;
}

static void
expect_addr(const char *dir, uint64_t id, const char *addr)
{
    kith_replica *r;
    kith_peer *peers;
    size_t n;
    bool found = false;
    cr_assert_eq(kith_open(dir, 0, &r), 0);
    cr_assert_eq(kith_peers_get(r, &peers, &n), 0);
    for (size_t i = 0; i < n; i++)
        if (peers[i].id == id) {
            found = true;
            cr_assert_str_eq(peers[i].addr, addr);
        }
    cr_assert(found);
    kith_peers_free(peers, n);
    kith_close(r);
}

/* Has the replica in `dir` recorded an address for peer `id`? */
static bool
addr_known(const char *dir, uint64_t id)
{
    kith_replica *r;
    kith_peer *peers;
    size_t n;
    bool known = false;
    cr_assert_eq(kith_open(dir, 0, &r), 0);
    cr_assert_eq(kith_peers_get(r, &peers, &n), 0);
    for (size_t i = 0; i < n; i++)
        known |= peers[i].id == id && peers[i].addr[0] != '\0';
    kith_peers_free(peers, n);
    kith_close(r);
    return known;
}

/* proves NET-17 */
Test(discovery, two_namespaces_find_each_other, .fini = teardown, .timeout = 60)
{
    if (!make_namespaces())
        cr_skip_test("cannot create network namespaces here (needs root and iproute2): "
                     "discovery not tested");
    struct kt_replica a = kt_new(), b = kt_new(), stranger = kt_new();
    kt_trust_pair(&a, &b);
    kith_docid ca = kt_contact(a.r, "found by beacon");
    kt_contact(b.r, "also found");
    kt_contact(stranger.r, "nobody trusts me");
    uint64_t ida = kith_replica_id(a.r), idb = kith_replica_id(b.r);
    uint64_t ids = kith_replica_id(stranger.r);
    kith_close(a.r);
    kith_close(b.r);
    kith_close(stranger.r);
    a.r = b.r = stranger.r = NULL;

    kids[0] = spawn(ns_a, a.dir, "tcp://0.0.0.0:7461");
    kids[1] = spawn(ns_b, b.dir, "tcp://0.0.0.0:7461");
    /* the stranger shares a's namespace, on another port */
    kids[2] = spawn(ns_a, stranger.dir, "tcp://0.0.0.0:7471");

    bool same = false;
    int64_t end = kith__mono_ms() + 20000;
    while (!same && kith__mono_ms() < end) {
        nt_sleep_ms(200);
        /* one side's discovery may sync both before the other has heard a beacon: wait for
         * both to have recorded the other's address too */
        same = exports_equal(a.dir, b.dir) && addr_known(a.dir, idb) && addr_known(b.dir, ida);
    }
    cr_assert(same, "a and b did not find each other within 20 s");

    for (int i = 0; i < 3; i++) {
        int status;
        cr_assert_eq(kill(kids[i], SIGTERM), 0);
        cr_assert_eq(waitpid(kids[i], &status, 0), kids[i]);
        kids[i] = 0;
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "daemon %d: status %d", i, status);
    }
    expect_addr(a.dir, idb, "tcp://10.231.0.2:7461");
    expect_addr(b.dir, ida, "tcp://10.231.0.1:7461");

    /* the stranger's ops are nowhere, and nobody recorded it */
    kt_reopen(&a, 0);
    kt_reopen(&b, 0);
    cr_assert(has_doc(b.r, &ca));
    char *eb = kt_export(b.r);
    cr_assert_null(strstr(eb, "nobody trusts me"));
    free(eb);
    kith_peer *peers;
    size_t n;
    cr_assert_eq(kith_peers_get(b.r, &peers, &n), 0);
    for (size_t i = 0; i < n; i++)
        cr_assert_neq(peers[i].id, ids);
    kith_peers_free(peers, n);
    kt_free(&a);
    kt_free(&b);
    kt_free(&stranger);
}

/* ---- the beacon itself, on 127.0.0.1 (unicast: nothing leaves the machine) ------------ */

static int64_t
wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
send_to(int port, const void *p, size_t n)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to;
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(sendto(fd, p, n, 0, (struct sockaddr *)&to, sizeof(to)), (ssize_t)n);
    close(fd);
}

static int
recv_one(int fd, struct kith__beacon_msg *b)
{
    for (int i = 0; i < 200; i++) {
        int rc = kith__beacon_recv(fd, b);
        if (rc != -EAGAIN)
            return rc;
        nt_sleep_ms(5);
    }
    return -EAGAIN;
}

/* proves NET-17 */
Test(beacon, signed_checked_and_gated)
{
    struct kt_replica a = kt_new();
    struct kith__beacon_msg b;
    struct kith__beacon_gate gate;
    uint8_t buf[KITH__BEACON_MAX];
    size_t len;
    int port = 0, fd = -1;

    for (int tries = 0; tries < 20 && fd < 0; tries++) {
        port = 20000 + (int)(randombytes_uniform(40000));
        fd = kith__beacon_open((uint16_t)port);
    }
    cr_assert(fd >= 0);
    memset(&gate, 0, sizeof(gate));

    /* good: the wildcard host becomes the sender's address */
    cr_assert_eq(kith__beacon_build(a.r, "tcp://*:7461", wall_now(), buf, &len), 0);
    send_to(port, buf, len);
    cr_assert_eq(recv_one(fd, &b), 0);
    cr_assert_eq(b.id, kith_replica_id(a.r));
    cr_assert_str_eq(b.endpoint, "tcp://127.0.0.1:7461");
    cr_assert(kith__beacon_admit(&gate, &b, 1, kith__mono_ms()));
    /* the same beacon again: a replay */
    send_to(port, buf, len);
    cr_assert_eq(recv_one(fd, &b), 0);
    cr_assert(!kith__beacon_admit(&gate, &b, 1, kith__mono_ms() + 5000));
    /* our own */
    cr_assert(!kith__beacon_admit(&gate, &b, kith_replica_id(a.r), kith__mono_ms()));

    /* a forged endpoint: the signature no longer holds */
    buf[60] ^= 1;
    send_to(port, buf, len);
    cr_assert_eq(recv_one(fd, &b), KITH_EBADSIG);
    buf[60] ^= 1;
    /* another id in front of the key */
    buf[9] ^= 1;
    send_to(port, buf, len);
    cr_assert_eq(recv_one(fd, &b), KITH_EMALFORMED);
    buf[9] ^= 1;
    /* cut short, and garbage */
    send_to(port, buf, len - 1);
    cr_assert_eq(recv_one(fd, &b), KITH_EMALFORMED);
    send_to(port, "KITHBC01 and then nonsense", 26);
    cr_assert_eq(recv_one(fd, &b), KITH_EMALFORMED);
    /* an hour old */
    cr_assert_eq(kith__beacon_build(a.r, "tcp://10.0.0.1:7461", wall_now() - 3600000, buf, &len),
                 0);
    send_to(port, buf, len);
    cr_assert_eq(recv_one(fd, &b), KITH_EINVAL);

    /* the rate limit counts every datagram within a second */
    int64_t now = kith__mono_ms() + 100000;
    int passed = 0;
    for (int i = 0; i < 200; i++)
        passed += kith__beacon_rate_ok(&gate, now);
    cr_assert_eq(passed, KITH__BEACON_PER_SEC);
    cr_assert(kith__beacon_rate_ok(&gate, now + 1000));
    close(fd);
    kt_free(&a);
}
