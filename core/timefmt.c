/*
 * timefmt.c — times as text: ISO 8601 in, ISO 8601 UTC with milliseconds out.
 *
 * A kith time is a count of milliseconds since 1970-01-01T00:00:00Z on the proleptic
 * Gregorian calendar, without leap seconds. The calendar arithmetic is written out here
 * (days from a civil date and back) rather than taken from timegm/strptime, so that the
 * result never depends on the process's time zone, locale or C library, and so that the same
 * text gives the same number on every replica. spec/data-model.md "Times" lists the forms.
 *
 * Accepted (parse): "YYYY-MM-DD" (midnight UTC), and
 *   "YYYY-MM-DDThh:mm[:ss[.f]]" followed by "Z" or an offset "+hh:mm", "-hh:mm", "+hhmm",
 *   "+hh"; 'T' and 'Z' may be lower case; f is 1 to 9 digits, of which the milliseconds are
 *   kept (truncated). Year 0001..9999, and the instant must fall in those years in UTC.
 * Produced (format): "YYYY-MM-DDThh:mm:ss.sssZ"; years outside 0000..9999 get a sign and as
 *   many digits as they need ("+10000-01-01T…", "-0001-12-31T…"), so every int64 formats.
 * Spans of time (kith_duration_format) are for people, not parsers: the two largest units
 *   ("2 h 13 min"), as `kith status` and the daemon's log say how far a clock runs ahead.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

#define MS_PER_DAY 86400000LL
#define TIME_MIN_MS (-62135596800000LL) /* 0001-01-01T00:00:00.000Z */
#define TIME_MAX_MS (253402300799999LL) /* 9999-12-31T23:59:59.999Z */

/* Days in a 400-year cycle of the Gregorian calendar. */
#define DAYS_PER_ERA 146097LL
/* Days from 0000-03-01 to 1970-01-01. */
#define EPOCH_SHIFT 719468LL

/*
 * Counting years from March ("March years") puts the leap day at the end of the year, so a
 * month's offset within the year no longer depends on the year. march_year_start(y) is the
 * number of days from 0000-03-01 to the first of March of year y (y >= 0).
 */
static int64_t
march_year_start(int64_t y)
{
    return 365 * y + y / 4 - y / 100 + y / 400;
}

/* Days from 1 March to the first of month mp (0 = March … 11 = February): 31/30 days in a
 * repeating five-month pattern, which (153 * mp + 2) / 5 reproduces exactly. */
static int64_t
march_month_start(unsigned mp)
{
    return (153 * (int64_t)mp + 2) / 5;
}

/* Days since 1970-01-01 of the civil date y-m-d (y >= 1, a valid date). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t my = m <= 2 ? y - 1 : y; /* January and February close the previous March year */
    unsigned mp = m >= 3 ? m - 3 : m + 9;
    return march_year_start(my) + march_month_start(mp) + (int64_t)d - 1 - EPOCH_SHIFT;
}

/* The civil date of `days` since 1970-01-01, for any int64 day count that comes from ms. */
static void
civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t z = days + EPOCH_SHIFT; /* days since 0000-03-01 */
    int64_t eras = 0;
    if (z < 0) { /* move into non-negative years by whole 400-year cycles */
        eras = (-z) / DAYS_PER_ERA + 1;
        z += eras * DAYS_PER_ERA;
    }
    int64_t my = z * 400 / DAYS_PER_ERA; /* an estimate, off by at most one */
    while (march_year_start(my + 1) <= z)
        my++;
    while (march_year_start(my) > z)
        my--;
    int64_t doy = z - march_year_start(my);
    unsigned mp = (unsigned)((5 * doy + 2) / 153);
    *d = (unsigned)(doy - march_month_start(mp) + 1);
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = my + (*m <= 2 ? 1 : 0) - 400 * eras;
}

static bool
is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned
days_in_month(int64_t y, unsigned m)
{
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : mdays[m - 1];
}

/* Read exactly n digits at *p into *out, advancing *p. */
static bool
digits(const char **p, unsigned n, unsigned *out)
{
    unsigned v = 0;
    for (unsigned i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (unsigned)(c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

int
kith__time_parse(const char *text, int64_t *ms)
{
    if (!text || !ms)
        return KITH_EINVAL;
    const char *p = text;
    unsigned y, mo, d, h = 0, mi = 0, s = 0, frac_ms = 0;
    int64_t offset_min = 0;

    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return KITH_EINVAL;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return KITH_EINVAL;
    if (*p != '\0') {
        if (*p != 'T' && *p != 't')
            return KITH_EINVAL;
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
            return KITH_EINVAL;
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &s))
                return KITH_EINVAL;
            if (*p == '.' || *p == ',') {
                p++;
                unsigned n = 0;
                while (*p >= '0' && *p <= '9') {
                    if (n < 3)
                        frac_ms = frac_ms * 10 + (unsigned)(*p - '0');
                    n++;
                    p++;
                }
                if (n < 1 || n > 9)
                    return KITH_EINVAL;
                for (; n < 3; n++)
                    frac_ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || s > 59)
            return KITH_EINVAL;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            unsigned oh, om = 0;
            p++;
            if (!digits(&p, 2, &oh))
                return KITH_EINVAL;
            if (*p == ':') {
                p++;
                if (!digits(&p, 2, &om))
                    return KITH_EINVAL;
            } else if (*p >= '0' && *p <= '9') {
                if (!digits(&p, 2, &om))
                    return KITH_EINVAL;
            }
            if (oh > 23 || om > 59)
                return KITH_EINVAL;
            offset_min = sign * (int64_t)(oh * 60 + om);
        } else {
            return KITH_EINVAL; /* no zone: a local time we cannot place */
        }
        if (*p != '\0')
            return KITH_EINVAL;
    }
    int64_t t = days_from_civil(y, mo, d) * MS_PER_DAY +
                ((int64_t)h * 3600 + (int64_t)mi * 60 + s) * 1000 + frac_ms - offset_min * 60000;
    if (t < TIME_MIN_MS || t > TIME_MAX_MS)
        return KITH_EINVAL;
    *ms = t;
    return 0;
}

void
kith__time_format(int64_t ms, char out[32])
{
    /* floor division, so that times before 1970 count back from the day they fall in */
    int64_t days = ms / MS_PER_DAY;
    int64_t rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    unsigned msec = (unsigned)(rem % 1000);
    unsigned sec = (unsigned)(rem / 1000 % 60);
    unsigned min = (unsigned)(rem / 60000 % 60);
    unsigned hour = (unsigned)(rem / 3600000);
    /* The longest real output is 30 bytes (a nine-digit year with its sign); the compiler
     * cannot see the ranges of m and d, hence the roomier buffer. */
    char buf[64];
    if (y >= 0 && y <= 9999)
        snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)y, m, d, hour,
                 min, sec, msec);
    else
        snprintf(buf, sizeof buf, "%+05lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)y, m, d,
                 hour, min, sec, msec);
    size_t n = strnlen(buf, 31);
    memcpy(out, buf, n);
    out[n] = '\0';
}

void
kith_time_format(int64_t ms, char out[32])
{
    kith__time_format(ms, out);
}

int
kith_time_parse(const char *text, int64_t *ms)
{
    if (!text || !ms)
        return KITH_EINVAL;
    return kith__time_parse(text, ms);
}

void
kith_duration_format(int64_t ms, char out[32])
{
    static const struct {
        const char *name;
        uint64_t ms;
    } units[] = {{"d", 86400000u}, {"h", 3600000u}, {"min", 60000u}, {"s", 1000u}, {"ms", 1u}};

    const size_t nunits = sizeof units / sizeof units[0];
    const char *sign = ms < 0 ? "-" : "";
    uint64_t left = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    char text[64]; /* at most 24 bytes are written ("-106751991167 d 23 h"); room to spare */
    size_t i = 0, n;

    while (i + 1 < nunits && left < units[i].ms)
        i++;
    if (i + 1 < nunits && units[i].ms > 1000u && left % units[i].ms >= units[i + 1].ms)
        snprintf(text, sizeof text, "%s%llu %s %llu %s", sign,
                 (unsigned long long)(left / units[i].ms), units[i].name,
                 (unsigned long long)(left % units[i].ms / units[i + 1].ms), units[i + 1].name);
    else
        snprintf(text, sizeof text, "%s%llu %s", sign, (unsigned long long)(left / units[i].ms),
                 units[i].name);
    n = strlen(text);
    if (n > 31)
        n = 31;
    memcpy(out, text, n);
    out[n] = '\0';
}
