/*
 * daemon.c — kith-check's hidden daemon mode (spec/check.md "A run"). The checker re-runs
 * its own executable as
 *
 *   kith-check --daemon DIR FD SKEW_MS FAULT_SEED DROP DUP HOLD LOG_LEVEL
 *
 * for every replica: open DIR, give it the clock offset SKEW_MS, turn the message-fault table
 * on (DROP, DUP, HOLD per mille, when any is non-zero), and run kith_serve on a port the
 * kernel picks, writing the endpoint it bound to FD (64 bytes) once it listens. SIGUSR1 turns
 * the faults off (the heal); SIGTERM stops the daemon cleanly (exit 0). Its peers are the
 * trusted peer records the checker wrote, whose addresses are the checker's proxies.
 */
#include "check.h"
#include "fault.h"
#include "store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
write_endpoint(void *arg, const char *endpoint)
{
    int fd = *(int *)arg;
    char buf[64] = {0};

    snprintf(buf, sizeof(buf), "%s", endpoint);
    if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
        _exit(4);
    close(fd);
}

static void
on_usr1(int sig)
{
    (void)sig;
    kith__fault_disable();
}

int
ck_daemon_main(int argc, char **argv)
{
    kith_replica *r;
    kith_serve_opts o;
    int fd, rc;

    if (argc != 10)
        return 2;
    fd = (int)strtol(argv[3], NULL, 10);
    rc = kith_open(argv[2], KITH_NOSYNC, &r);
    if (rc < 0) {
        fprintf(stderr, "kith-check daemon: cannot open the replica: %s\n", kith_strerror(rc));
        return 3;
    }
    kith__replica_set_clock_offset(r, strtoll(argv[4], NULL, 10));
    unsigned drop = (unsigned)strtoul(argv[6], NULL, 10);
    unsigned dup = (unsigned)strtoul(argv[7], NULL, 10);
    unsigned hold = (unsigned)strtoul(argv[8], NULL, 10);
    if (drop + dup + hold > 0)
        kith__fault_enable(strtoull(argv[5], NULL, 10), drop, dup, hold);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);

    memset(&o, 0, sizeof(o));
    o.listen = "tcp://127.0.0.1:*";
    o.interval_ms = 1000;
    o.timeout_ms = 3000;
    o.log_level = (int)strtol(argv[9], NULL, 10);
    o.on_listen = write_endpoint;
    o.on_listen_arg = &fd;
    rc = kith_serve(r, &o);
    uint64_t nd, nu, nh;
    kith__fault_counts(&nd, &nu, &nh);
    /* the checker reads this line from the log to count message faults */
    fprintf(stderr,
            "kith-check daemon: stopped (%s), faults dropped=%llu duplicated=%llu "
            "reordered=%llu\n",
            rc == 0 ? "ok" : kith_errname(rc), (unsigned long long)nd, (unsigned long long)nu,
            (unsigned long long)nh);
    kith_close(r);
    return rc == 0 ? 0 : 1;
}
