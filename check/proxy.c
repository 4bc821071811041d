/*
 * proxy.c — a TCP proxy for every directed link between the checker's daemons (spec/check.md
 * "Faults"). Replica i records peer j at the address of link i→j, so every byte of
 * the session i opens to j passes here, still CURVE-encrypted end to end. Per link the
 * checker can block (a partition: connections are refused and open ones closed), delay each
 * chunk of bytes, or cut the open connections mid-stream; the target follows the daemon's
 * endpoint, which changes at every restart.
 *
 * One acceptor thread polls the listening sockets; each accepted connection gets a thread
 * that copies both ways until either side closes or the link changes under it. Every socket
 * binds 127.0.0.1 port 0 and keeps it for the whole run: no port is probed and bound later.
 */
#include "check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct ck_link {
    int lfd;      /* listening socket */
    char ep[64];  /* its endpoint, "tcp://127.0.0.1:PORT" */
    int blocked;  /* partition: refuse and close (atomic) */
    int delay_ms; /* wait before forwarding each chunk (atomic) */
    unsigned gen; /* bumped to cut the open connections (atomic) */
    int to;       /* the replica it leads to */
};

struct ck_proxy {
    int n;
    struct ck_link *links;      /* n * n, [from * n + to]; the diagonal unused */
    int ports[CK_MAX_REPLICAS]; /* where each replica's daemon listens, 0 while down (atomic) */
    int stop;                   /* (atomic) */
    int active;                 /* connection threads alive (atomic) */
    pthread_t acceptor;
};

struct conn {
    struct ck_proxy *p;
    struct ck_link *l;
    int a, b; /* accepted side, daemon side */
    unsigned gen;
};

static int
ld(const int *x)
{
    return __atomic_load_n(x, __ATOMIC_ACQUIRE);
}

static void
st(int *x, int v)
{
    __atomic_store_n(x, v, __ATOMIC_RELEASE);
}

static int
listen_any(char ep[64])
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    snprintf(ep, 64, "tcp://127.0.0.1:%d", ntohs(sa.sin_port));
    return fd;
}

static int
dial(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool
send_all(int fd, const char *buf, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        buf += w;
        n -= (size_t)w;
    }
    return true;
}

/* Copy both ways until a side closes, the link is blocked or cut, or the proxy stops. */
static void *
conn_main(void *arg)
{
    struct conn *c = arg;
    static const size_t cap = 64 * 1024;
    char *buf = malloc(cap);

    while (buf && !ld(&c->p->stop) && !ld(&c->l->blocked) &&
           __atomic_load_n(&c->l->gen, __ATOMIC_ACQUIRE) == c->gen) {
        struct pollfd pf[2] = {{c->a, POLLIN, 0}, {c->b, POLLIN, 0}};
        int rc = poll(pf, 2, 100);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc <= 0)
            continue;
        bool ok = true;
        for (int k = 0; k < 2 && ok; k++) {
            if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = recv(pf[k].fd, buf, cap, 0);
            if (r <= 0) {
                ok = false;
                break;
            }
            int delay = ld(&c->l->delay_ms);
            if (delay > 0)
                ck_sleep_ms(delay);
            ok = send_all(k == 0 ? c->b : c->a, buf, (size_t)r);
        }
        if (!ok)
            break;
    }
    free(buf);
    close(c->a);
    close(c->b);
    __atomic_fetch_sub(&c->p->active, 1, __ATOMIC_ACQ_REL);
    free(c);
    return NULL;
}

static void
accept_one(struct ck_proxy *p, struct ck_link *l)
{
    int a = accept4(l->lfd, NULL, NULL, SOCK_CLOEXEC);
    int port = ld(&p->ports[l->to]);

    if (a < 0)
        return;
    if (ld(&l->blocked) || port == 0) {
        close(a); /* partitioned, or the daemon is down: as a refused connection */
        return;
    }
    struct conn *c = calloc(1, sizeof(*c));
    int b = dial(port);
    if (c == NULL || b < 0) {
        free(c);
        close(a);
        if (b >= 0)
            close(b);
        return;
    }
    c->p = p;
    c->l = l;
    c->a = a;
    c->b = b;
    c->gen = __atomic_load_n(&l->gen, __ATOMIC_ACQUIRE);
    __atomic_fetch_add(&p->active, 1, __ATOMIC_ACQ_REL);
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &at, conn_main, c) != 0) {
        __atomic_fetch_sub(&p->active, 1, __ATOMIC_ACQ_REL);
        close(a);
        close(b);
        free(c);
    }
    pthread_attr_destroy(&at);
}

static void *
acceptor_main(void *arg)
{
    struct ck_proxy *p = arg;
    int n = p->n, nl = n * (n - 1);
    struct pollfd *pf = calloc((size_t)nl, sizeof(*pf));
    struct ck_link **which = calloc((size_t)nl, sizeof(*which));

    if (pf == NULL || which == NULL)
        goto out;
    for (int i = 0, k = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j) {
                which[k] = &p->links[i * n + j];
                pf[k].fd = which[k]->lfd;
                pf[k++].events = POLLIN;
            }
    while (!ld(&p->stop)) {
        int rc = poll(pf, (nfds_t)nl, 100);
        if (rc <= 0)
            continue;
        for (int k = 0; k < nl; k++)
            if (pf[k].revents & POLLIN)
                accept_one(p, which[k]);
    }
out:
    free(pf);
    free(which);
    return NULL;
}

int
ck_proxy_start(int n, struct ck_proxy **out)
{
    struct ck_proxy *p = calloc(1, sizeof(*p));
    int rc = -ENOMEM;

    *out = NULL;
    if (p == NULL)
        return rc;
    p->n = n;
    p->links = calloc((size_t)(n * n), sizeof(*p->links));
    if (p->links == NULL)
        goto out_free;
    for (int i = 0; i < n * n; i++)
        p->links[i].lfd = -1;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            struct ck_link *l = &p->links[i * n + j];
            l->to = j;
            if (i == j)
                continue;
            l->lfd = listen_any(l->ep);
            if (l->lfd < 0) {
                rc = l->lfd;
                goto out_close;
            }
        }
    rc = pthread_create(&p->acceptor, NULL, acceptor_main, p);
    if (rc != 0) {
        rc = -rc;
        goto out_close;
    }
    *out = p;
    return 0;
out_close:
    for (int i = 0; i < n * n; i++)
        if (p->links[i].lfd >= 0)
            close(p->links[i].lfd);
out_free:
    free(p->links);
    free(p);
    return rc;
}

const char *
ck_proxy_ep(struct ck_proxy *p, int from, int to)
{
    return p->links[from * p->n + to].ep;
}

void
ck_proxy_target(struct ck_proxy *p, int to, const char *endpoint)
{
    const char *colon = strrchr(endpoint, ':');
    st(&p->ports[to], colon ? (int)strtol(colon + 1, NULL, 10) : 0);
    /* connections to the old daemon are dead anyway; close them now */
    for (int i = 0; i < p->n; i++)
        if (i != to)
            ck_proxy_cut(p, i, to);
}

void
ck_proxy_block(struct ck_proxy *p, int from, int to, bool blocked)
{
    st(&p->links[from * p->n + to].blocked, blocked);
}

void
ck_proxy_delay(struct ck_proxy *p, int from, int to, int ms)
{
    st(&p->links[from * p->n + to].delay_ms, ms);
}

void
ck_proxy_cut(struct ck_proxy *p, int from, int to)
{
    __atomic_fetch_add(&p->links[from * p->n + to].gen, 1, __ATOMIC_ACQ_REL);
}

void
ck_proxy_stop(struct ck_proxy *p)
{
    if (p == NULL)
        return;
    st(&p->stop, 1);
    pthread_join(p->acceptor, NULL);
    for (int i = 0; i < 100 && ld(&p->active) > 0; i++)
        ck_sleep_ms(20);
    for (int i = 0; i < p->n * p->n; i++)
        if (p->links[i].lfd >= 0)
            close(p->links[i].lfd);
    if (ld(&p->active) == 0) {
        free(p->links);
        free(p);
    } /* else a thread still holds it: leave it rather than free under it */
}
