/*
 * test_net_flood.c — a daemon under a connection flood (spec/protocol.md "Daemon", NET-21 to
 * NET-23). Hundreds of TCP connections that send a ZMTP greeting, or nothing, and then stay
 * idle must not starve a trusted peer: `kith serve` raises its descriptor limit to the hard
 * one; a connection that has not finished its handshake is closed after the handshake
 * interval; at most a fixed number of them are kept, and fewer when descriptors run low, the
 * oldest going first, while a connection that finished its handshake is never shed; the
 * daemon says so in its log. Each test runs the daemon in a child process, so that its
 * descriptors can be limited and counted in /proc/PID/fd.
 *
 * The flood is raw sockets of this process, which raises its own limit to the hard one (a
 * hard limit too low for 1,000 connections scales the flood down, and says so).
 */
#include "kith_test.h"
#include "net_test.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define FLOOD 1000

/* ---- the daemon as a child process ----------------------------------------------------- */

struct proc {
    pid_t pid;
    int errfd;          /* the read end of the child's stderr */
    pthread_t reader;   /* copies errfd into log */
    pthread_mutex_t mu; /* guards log */
    char log[1 << 16];  /* the child's stderr, truncated at the capacity */
    size_t len;
    char ep[64]; /* where it listens */
};

static struct proc *running; /* reaped by the fini of every test */

static void *
read_stderr(void *arg)
{
    struct proc *p = arg;
    char buf[4096];
    ssize_t n;
    while ((n = read(p->errfd, buf, sizeof(buf))) > 0) {
        pthread_mutex_lock(&p->mu);
        size_t room = sizeof(p->log) - 1 - p->len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(p->log + p->len, buf, take);
        p->len += take;
        p->log[p->len] = '\0';
        pthread_mutex_unlock(&p->mu);
        if (getenv("KITH_TEST_LOG"))
            (void)!write(2, buf, (size_t)n);
    }
    return NULL;
}

static bool
log_has(struct proc *p, const char *needle)
{
    pthread_mutex_lock(&p->mu);
    bool found = strstr(p->log, needle) != NULL;
    pthread_mutex_unlock(&p->mu);
    return found;
}

/* The endpoint in the daemon's "listening on EP" line, once it is there. */
static bool
log_endpoint(struct proc *p)
{
    pthread_mutex_lock(&p->mu);
    const char *at = strstr(p->log, "listening on ");
    bool found = false;
    if (at) {
        at += strlen("listening on ");
        size_t n = strcspn(at, " \n\"");
        if (at[n] != '\0' && n > 0 && n < sizeof(p->ep)) {
            memcpy(p->ep, at, n);
            p->ep[n] = '\0';
            found = true;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

static void
close_from(int lowest)
{
    struct rlimit rl;
    int top = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? (int)rl.rlim_cur : 65536;
    for (int fd = lowest; fd < top; fd++)
        close(fd);
}

/* Start a child with its stderr captured and RLIMIT_NOFILE set to (soft, hard). The child runs
 * `body`, which must not return. */
static struct proc *
spawn(rlim_t soft, rlim_t hard, void (*body)(void *), void *arg)
{
    struct proc *p = calloc(1, sizeof(*p));
    int fds[2];
    cr_assert(p);
    cr_assert_eq(pipe(fds), 0);
    pthread_mutex_init(&p->mu, NULL);
    pid_t parent = getpid();
    p->pid = fork();
    cr_assert(p->pid >= 0);
    if (p->pid == 0) {
        struct rlimit rl = {soft, hard};
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(5);
        if (dup2(fds[1], 2) < 0)
            _exit(6);
        close_from(3);
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            _exit(7);
        body(arg);
        _exit(8);
    }
    close(fds[1]);
    p->errfd = fds[0];
    cr_assert_eq(pthread_create(&p->reader, NULL, read_stderr, p), 0);
    running = p;
    int64_t end = kith__mono_ms() + 10000;
    while (!log_endpoint(p)) {
        cr_assert(kith__mono_ms() < end, "the daemon did not listen: %s", p->log);
        nt_sleep_ms(2);
    }
    return p;
}

/* Stop the child with SIGTERM (SIGKILL after 5 s) and return its wait status. */
static int
proc_stop(struct proc *p)
{
    int status = -1;
    kill(p->pid, SIGTERM);
    int64_t end = kith__mono_ms() + 5000;
    while (waitpid(p->pid, &status, WNOHANG) == 0) {
        if (kith__mono_ms() > end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            break;
        }
        nt_sleep_ms(5);
    }
    pthread_join(p->reader, NULL);
    close(p->errfd);
    running = NULL;
    return status;
}

static void
reap(void)
{
    if (running) {
        kill(running->pid, SIGKILL);
        waitpid(running->pid, NULL, 0);
        running = NULL;
    }
}

struct cli_args {
    const char *dir;
};

/* `kith --dir DIR serve --listen tcp://127.0.0.1:*` */
static void
run_cli(void *arg)
{
    struct cli_args *a = arg;
    const char *bin = getenv("KITH_BIN");
    if (!bin)
        _exit(9);
    execl(bin, "kith", "--dir", a->dir, "serve", "--listen", "tcp://127.0.0.1:*", (char *)NULL);
    _exit(10);
}

struct lib_args {
    const char *dir;
    int handshake_ms;
};

/* kith_serve on tcp://127.0.0.1:* with this handshake interval, logging to stderr. */
static void
run_lib(void *arg)
{
    struct lib_args *a = arg;
    kith_replica *r;
    kith_serve_opts o;
    if (kith_open(a->dir, KITH_NOSYNC, &r) < 0)
        _exit(3);
    memset(&o, 0, sizeof(o));
    o.listen = "tcp://127.0.0.1:*";
    o.handshake_ms = a->handshake_ms;
    int rc = kith_serve(r, &o);
    kith_close(r);
    _exit(rc == 0 ? 0 : 1);
}

static int
count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    int n = 0;
    cr_assert(d, "%s: %s", path, strerror(errno));
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* The soft limit of open files of `pid`, from /proc/PID/limits. */
static long
soft_nofile(pid_t pid)
{
    char path[64], line[256];
    long soft = -1;
    snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "Max open files", 14) == 0)
            soft = strtol(line + 14, NULL, 10);
    fclose(f);
    return soft;
}

/* ---- the flood --------------------------------------------------------------------------- */

/* Raise this process's soft limit to the hard one; the connections the flood can afford. */
static int
flood_size(void)
{
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    int n = FLOOD;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < FLOOD + 200) {
        n = (int)rl.rlim_max - 200;
        cr_log_warn("hard limit of %ld descriptors: a flood of %d, not %d", (long)rl.rlim_max, n,
                    FLOOD);
    }
    return n;
}

struct flood {
    int *fd;
    int n;
    int connected; /* connections established (the greeting sent, if any) */
};

/* The first 64 bytes a ZMTP 3.0 CURVE client sends: a greeting, and nothing after it. */
static const uint8_t greeting[64] = {0xff, 0, 0, 0,   0,   0,   0,   0,  1,
                                     0x7f, 3, 0, 'C', 'U', 'R', 'V', 'E'};

/* Open n connections to ep; those with `greet` send a greeting once connected. Returns once
 * every connect has finished, or after 5 s. */
static struct flood
flood_open(const char *ep, int n, bool greet)
{
    struct flood f = {calloc((size_t)n, sizeof(int)), n, 0};
    struct pollfd *pf = calloc((size_t)n, sizeof(*pf));
    struct sockaddr_in sa;
    const char *colon = strrchr(ep, ':');
    cr_assert(f.fd && pf && colon);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)strtol(colon + 1, NULL, 10));
    for (int i = 0; i < n; i++) {
        f.fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        cr_assert(f.fd[i] >= 0, "socket %d: %s", i, strerror(errno));
        int rc = connect(f.fd[i], (struct sockaddr *)&sa, sizeof(sa));
        cr_assert(rc == 0 || errno == EINPROGRESS, "connect %d: %s", i, strerror(errno));
        pf[i] = (struct pollfd){f.fd[i], POLLOUT, 0};
    }
    int pending = n;
    int64_t end = kith__mono_ms() + 5000;
    while (pending > 0 && kith__mono_ms() < end) {
        if (poll(pf, (nfds_t)n, 50) <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            int err = 0;
            socklen_t len = sizeof(err);
            cr_assert_eq(getsockopt(f.fd[i], SOL_SOCKET, SO_ERROR, &err, &len), 0);
            if (err == 0) {
                f.connected++;
                if (greet)
                    cr_assert_eq(send(f.fd[i], greeting, sizeof(greeting), MSG_NOSIGNAL),
                                 (ssize_t)sizeof(greeting));
            }
            pf[i].fd = -1;
            pending--;
        }
    }
    free(pf);
    return f;
}

/* Connections the daemon has closed: EOF or a reset, seen without waiting. */
static int
flood_closed(struct flood *f)
{
    int closed = 0;
    for (int i = 0; i < f->n; i++) {
        char buf[256];
        ssize_t r;
        while ((r = recv(f->fd[i], buf, sizeof(buf), MSG_DONTWAIT)) > 0)
            ;
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            closed++;
    }
    return closed;
}

static void
flood_close(struct flood *f)
{
    for (int i = 0; i < f->n; i++)
        close(f->fd[i]);
    free(f->fd);
}

/* good syncs with the daemon serving b at ep within 5 s, and receives what b wrote. Returns
 * the time it took, in ms. */
static int64_t
trusted_sync(struct kt_replica *good, struct kt_replica *b, const char *ep, const kith_docid *doc)
{
    uint8_t pk[KITH_PUBKEY_BYTES];
    kith_sync_info info;
    kith_replica_pubkey(b->r, pk);
    int64_t t0 = kith__mono_ms();
    int rc = kith_sync(good->r, ep, pk, 5000, &info);
    int64_t took = kith__mono_ms() - t0;
    cr_assert_eq(rc, 0, "the trusted peer's sync: %s after %lld ms", kith_strerror(rc),
                 (long long)took);
    cr_assert(info.converged);
    cr_assert(has_doc(good->r, doc));
    return took;
}

/* ---- tests ----------------------------------------------------------------------------- */

/* proves NET-21 */
Test(flood, serve_raises_its_limit_and_a_trusted_peer_syncs_past_1000_idle_connections,
     .fini = reap)
{
    struct kt_replica b = kt_new(), good = kt_new();
    kt_trust_pair(&good, &b);
    kith_docid doc = kt_contact(b.r, "served under a flood");
    int n = flood_size();
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);

    struct cli_args a = {b.dir};
    struct proc *p = spawn(64, rl.rlim_max, run_cli, &a);
    cr_assert_eq(soft_nofile(p->pid), (long)rl.rlim_max,
                 "kith serve kept a soft limit of %ld descriptors (hard %ld)", soft_nofile(p->pid),
                 (long)rl.rlim_max);
    int base = count_fds(p->pid);
    struct flood f = flood_open(p->ep, n / 2, true), g = flood_open(p->ep, n - n / 2, false);
    int held = count_fds(p->pid) - base;
    int64_t took = trusted_sync(&good, &b, p->ep, &doc);
    cr_log_info("%d of %d idle connections open, the daemon holding %d beyond its %d "
                "descriptors; the trusted peer synced in %lld ms",
                f.connected + g.connected, n, held, base, (long long)took);
    flood_close(&f);
    flood_close(&g);
    int status = proc_stop(p);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "kith serve: status %d", status);
    free(p);
    kt_free(&good);
    kt_free(&b);
}

/* proves NET-22, NET-23 */
Test(flood, few_descriptors_shed_idle_connections_and_say_so, .fini = reap)
{
    struct kt_replica b = kt_new(), good = kt_new();
    kt_trust_pair(&good, &b);
    kith_docid doc = kt_contact(b.r, "served with 64 descriptors");
    int n = flood_size();

    struct cli_args a = {b.dir};
    struct proc *p = spawn(64, 64, run_cli, &a); /* the hard limit too: nothing to raise */
    int base = count_fds(p->pid);
    struct flood f = flood_open(p->ep, n / 2, true), g = flood_open(p->ep, n - n / 2, false);
    int used = count_fds(p->pid);
    int64_t took = trusted_sync(&good, &b, p->ep, &doc);
    cr_log_info("with 64 descriptors (%d in use before the flood, %d after), %d of %d idle "
                "connections open: the trusted peer synced in %lld ms",
                base, used, f.connected + g.connected, n, (long long)took);
    int64_t end = kith__mono_ms() + 5000;
    while (!log_has(p, "file descriptors")) {
        cr_assert(kith__mono_ms() < end, "the daemon said nothing of its descriptors:\n%s", p->log);
        nt_sleep_ms(10);
    }
    flood_close(&f);
    flood_close(&g);
    int status = proc_stop(p);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "kith serve: status %d", status);
    free(p);
    kt_free(&good);
    kt_free(&b);
}

/* proves NET-22: a connection that sends a greeting, or nothing, is closed after the handshake
 * interval (2 s), not libzmq's 30 s */
Test(flood, idle_connection_closed_after_the_handshake_interval, .fini = reap)
{
    struct kt_replica b = kt_new();
    struct cli_args a = {b.dir};
    struct proc *p = spawn(1024, 1024, run_cli, &a);
    int64_t t0 = kith__mono_ms();
    struct flood f = flood_open(p->ep, 1, true), g = flood_open(p->ep, 1, false);
    cr_assert_eq(f.connected + g.connected, 2);
    while (flood_closed(&f) + flood_closed(&g) < 2) {
        cr_assert(kith__mono_ms() - t0 < 5000, "idle connections still open after 5 s");
        nt_sleep_ms(20);
    }
    cr_log_info("idle connections closed after %lld ms", (long long)(kith__mono_ms() - t0));
    flood_close(&f);
    flood_close(&g);
    proc_stop(p);
    free(p);
    kt_free(&b);
}

/* proves NET-23: with descriptors to spare and a handshake interval long enough not to
 * matter, the daemon still keeps at most KITH__PREAUTH_MAX connections that have not finished
 * their handshake, closing the oldest first */
Test(flood, at_most_64_pre_handshake_connections_are_kept, .fini = reap)
{
    struct kt_replica b = kt_new(), good = kt_new();
    kt_trust_pair(&good, &b);
    kith_docid doc = kt_contact(b.r, "served past the cap");
    int n = flood_size() / 2;

    struct lib_args a = {b.dir, 60000};
    struct proc *p = spawn(4096, 4096, run_lib, &a);
    int base = count_fds(p->pid);
    struct flood f = flood_open(p->ep, n, true);
    int held = count_fds(p->pid) - base;
    int64_t end = kith__mono_ms() + 10000;
    while (held > KITH__PREAUTH_MAX) {
        cr_assert(kith__mono_ms() < end, "the daemon holds %d connections of %d", held, n);
        nt_sleep_ms(10);
        held = count_fds(p->pid) - base;
    }
    /* the oldest were closed, the newest kept */
    end = kith__mono_ms() + 10000;
    while (flood_closed(&f) < n - KITH__PREAUTH_MAX) {
        cr_assert(kith__mono_ms() < end, "%d of %d connections closed", flood_closed(&f), n);
        nt_sleep_ms(10);
    }
    /* ten more: ten of the older ones make room for them */
    struct flood g = flood_open(p->ep, 10, true);
    end = kith__mono_ms() + 10000;
    while (flood_closed(&f) < n - KITH__PREAUTH_MAX + 10) {
        cr_assert(kith__mono_ms() < end, "%d of %d older connections closed", flood_closed(&f), n);
        nt_sleep_ms(10);
    }
    cr_assert_eq(flood_closed(&g), 0, "the newest connections were closed");
    int64_t took = trusted_sync(&good, &b, p->ep, &doc);
    cr_log_info("%d connections, %d held beyond the daemon's %d descriptors; the trusted peer "
                "synced in %lld ms",
                n, held, base, (long long)took);
    end = kith__mono_ms() + 15000;
    while (!log_has(p, "at most 64 are kept")) {
        cr_assert(kith__mono_ms() < end, "the daemon did not say it shed connections:\n%s", p->log);
        nt_sleep_ms(10);
    }
    flood_close(&f);
    flood_close(&g);
    int status = proc_stop(p);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "kith_serve: status %d", status);
    free(p);
    kt_free(&good);
    kt_free(&b);
}

/* A DEALER of x's keys connected to the daemon serving `server` at ep, returned once its CURVE
 * handshake has finished (the daemon admitted it), before it sends anything. */
static void
raw_connect_admitted(struct raw *raw, struct kt_replica *x, kith_replica *server, const char *ep)
{
    uint8_t pub[32], sec[32], srv[32], pk[KITH_PUBKEY_BYTES];
    int linger = 0, never = -1;
    raw->x = x;
    raw->zctx = zmq_ctx_new();
    cr_assert(raw->zctx);
    cr_assert_eq(kith_curve_keys(x->r, pub, sec), 0);
    kith_replica_pubkey(server, pk);
    cr_assert_eq(kith_curve_public(pk, srv), 0);
    raw->sock = zmq_socket(raw->zctx, ZMQ_DEALER);
    cr_assert(raw->sock);
    cr_assert_eq(zmq_setsockopt(raw->sock, ZMQ_LINGER, &linger, sizeof(linger)), 0);
    /* no reconnecting: a shed connection must stay gone for the test to see it */
    cr_assert_eq(zmq_setsockopt(raw->sock, ZMQ_RECONNECT_IVL, &never, sizeof(never)), 0);
    cr_assert_eq(zmq_setsockopt(raw->sock, ZMQ_CURVE_SERVERKEY, srv, 32), 0);
    cr_assert_eq(zmq_setsockopt(raw->sock, ZMQ_CURVE_PUBLICKEY, pub, 32), 0);
    cr_assert_eq(zmq_setsockopt(raw->sock, ZMQ_CURVE_SECRETKEY, sec, 32), 0);
    cr_assert_eq(
        zmq_socket_monitor(raw->sock, "inproc://flood-raw-mon", ZMQ_EVENT_HANDSHAKE_SUCCEEDED), 0);
    void *mon = zmq_socket(raw->zctx, ZMQ_PAIR);
    cr_assert(mon);
    cr_assert_eq(zmq_connect(mon, "inproc://flood-raw-mon"), 0);
    cr_assert_eq(zmq_connect(raw->sock, ep), 0);
    zmq_pollitem_t it = {mon, 0, ZMQ_POLLIN, 0};
    cr_assert_eq(zmq_poll(&it, 1, 5000), 1, "no CURVE handshake within 5 s");
    cr_assert_eq(zmq_socket_monitor(raw->sock, NULL, 0), 0);
    zmq_close(mon);
}

/* proves NET-23: shedding never touches a connection that finished its handshake, even one
 * that has sent nothing since and is the oldest the daemon knows */
Test(flood, a_silent_admitted_connection_is_not_shed, .fini = reap)
{
    struct kt_replica b = kt_new(), x = kt_new();
    kt_trust_pair(&x, &b);
    int n = flood_size() / 4;

    struct lib_args a = {b.dir, 60000};
    struct proc *p = spawn(4096, 4096, run_lib, &a);
    struct raw raw;
    raw_connect_admitted(&raw, &x, b.r, p->ep);
    struct flood f = flood_open(p->ep, n, true);
    int64_t end = kith__mono_ms() + 10000;
    while (flood_closed(&f) < n - KITH__PREAUTH_MAX) {
        cr_assert(kith__mono_ms() < end, "%d of %d connections closed", flood_closed(&f), n);
        nt_sleep_ms(10);
    }
    /* HELLO, not waiting: a connection that is gone (it does not reconnect) refuses it */
    struct kith__msg m;
    uint8_t pk[KITH_PUBKEY_BYTES], digest[KITH_HASH_BYTES];
    msgpack_sbuffer sb;
    memset(&m, 0, sizeof(m));
    kith_replica_pubkey(x.r, pk);
    cr_assert_eq(kith_schema_info(x.r, &m.schema_version, digest), 0);
    m.type = KITH__MSG_HELLO;
    m.proto = KITH__WIRE_PROTO;
    m.id = kith_replica_id(x.r);
    m.pk = pk;
    m.schema_digest = digest;
    cr_assert_eq(kith_vv_get(x.r, &m.vv), 0);
    msgpack_sbuffer_init(&sb);
    cr_assert_eq(kith__wire_encode(&m, &sb), 0);
    kith_vv_free(&m.vv);
    cr_assert_eq(zmq_send(raw.sock, sb.data, sb.size, ZMQ_DONTWAIT), (int)sb.size,
                 "the admitted connection was shed: %s", zmq_strerror(zmq_errno()));
    msgpack_sbuffer_destroy(&sb);
    raw_expect(&raw, KITH__MSG_WELCOME, 3000, &m);
    kith__wire_clear(&m);
    raw_close(&raw);
    flood_close(&f);
    int status = proc_stop(p);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "kith_serve: status %d", status);
    free(p);
    kt_free(&x);
    kt_free(&b);
}

/* proves NET-21: the systemd unit gives the daemon descriptors enough for a flood */
Test(flood, systemd_unit_sets_the_descriptor_limit)
{
    char path[512], line[256];
    bool found = false;
    snprintf(path, sizeof(path), "%s/examples/systemd/kith.service.in", KITH_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "LimitNOFILE=", 12) == 0)
            found = strtol(line + 12, NULL, 10) >= 4096;
    fclose(f);
    cr_assert(found, "kith.service sets no LimitNOFILE of 4096 or more");
}
