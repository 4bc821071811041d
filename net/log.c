/*
 * log.c — the daemon's voice: level-filtered lines on stderr, with journald's "<N>" prefixes
 * when stderr is the journal ($JOURNAL_STREAM set), or one JSON object per line; systemd's
 * readiness datagram ($NOTIFY_SOCKET) without linking libsystemd; and two small helpers
 * (monotonic milliseconds, hex) that the other files of net/ share.
 *
 * A line is formatted into one buffer and written with one fwrite under the stream lock, so
 * lines from the ZAP thread and the main loop never interleave; an app's on_log callback is
 * called one line at a time under a lock of the log's own.
 */
#include "net.h"

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

void
kith__log_init(struct kith__log *log, int level, bool json)
{
    log->level = level > 0 ? level : KITH_LOG_INFO;
    log->json = json;
    log->journal = getenv("JOURNAL_STREAM") != NULL;
    log->fn = NULL;
    log->arg = NULL;
}

int
kith__log_to(struct kith__log *log, void (*fn)(void *arg, int level, const char *line), void *arg)
{
    if (fn != NULL && pthread_mutex_init(&log->fn_lock, NULL) != 0)
        return KITH_ENOMEM;
    log->fn = fn;
    log->arg = arg;
    return 0;
}

void
kith__log_close(struct kith__log *log)
{
    if (log->fn != NULL)
        pthread_mutex_destroy(&log->fn_lock);
    log->fn = NULL;
}

static const char *
level_name(int level)
{
    switch (level) {
    case KITH_LOG_ERROR:
        return "error";
    case KITH_LOG_WARNING:
        return "warning";
    case KITH_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void
kith__log(const struct kith__log *log, int level, const char *fmt, ...)
{
    char msg[1024], line[2048];
    va_list ap;
    int n;

    if (!log || level > log->level)
        return;
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (log->fn) {
        /* a lock of the log's own, not stderr's: the app's callback may wait for a thread of
         * its own that writes to stderr */
        pthread_mutex_lock((pthread_mutex_t *)&log->fn_lock);
        log->fn(log->arg, level, msg);
        pthread_mutex_unlock((pthread_mutex_t *)&log->fn_lock);
        return;
    }
    if (log->json) {
        struct timespec ts;
        char when[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(when + w, sizeof(when) - w, ".%03ldZ", (long)(ts.tv_nsec / 1000000));
        json_t *o =
            json_pack("{s:s, s:s, s:s}", "time", when, "level", level_name(level), "msg", msg);
        char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(o);
        if (!text)
            return;
        n = snprintf(line, sizeof(line), "%s\n", text);
        free(text);
    } else if (log->journal) {
        n = snprintf(line, sizeof(line), "<%d>%s\n", level, msg);
    } else {
        n = snprintf(line, sizeof(line), "kith: %s: %s\n", level_name(level), msg);
    }
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line)) {
        n = (int)sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    flockfile(stderr);
    fwrite(line, 1, (size_t)n, stderr);
    fflush(stderr);
    funlockfile(stderr);
}

void
kith__sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    size_t len;
    int fd;

    if (!path || (path[0] != '/' && path[0] != '@'))
        return;
    len = strlen(path);
    if (len >= sizeof(sa.sun_path))
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    (void)sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    close(fd);
}

int64_t
kith__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
kith__hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}
