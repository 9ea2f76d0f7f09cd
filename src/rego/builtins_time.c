/* SPDX-License-Identifier: Apache-2.0 */
/*
 * time.* builtins with the semantics of OPA, which are those of Go's time package: layouts
 * written with the reference time "Mon Jan 2 15:04:05 MST 2006" for parsing and formatting,
 * Go's duration syntax, IANA time zones read from the system's TZif files (with the POSIX TZ
 * rule at their end for times past the last transition), Go's calendar normalisation for
 * time.add_date, and the valid range of int64 nanoseconds since the epoch.
 *
 * Time zones are loaded once per name and kept for the life of the process (the set of names
 * is the set of zone files, so the cache is bounded); names are checked the way Go checks them
 * before a file is opened.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rego/builtins.h"
#include "rego/sbuf.h"

#define OUT(v) (*out = (v), 0)
#define S(v) ((v)->u.str.s)
#define L(v) ((v)->u.str.len)

#define CL_REGO_MAX_TZFILE (1u << 20)
#define CL_REGO_MAX_TZCACHE 1024

static const int64_t alpha = INT64_MIN, omega = INT64_MAX;

/* ---- calendar ---- */

static int64_t floordiv(int64_t a, int64_t b)
{
    return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}
static int64_t floormod(int64_t a, int64_t b)
{
    int64_t r = a % b;
    return r != 0 && (r < 0) != (b < 0) ? r + b : r;
}

static bool is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static const int days_before[13] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365};

static int days_in(int month, int64_t year)
{
    if (month == 2 && is_leap(year))
        return 29;
    return days_before[month] - days_before[month - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (|y| well within int64 / 400). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floordiv(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floordiv(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* ---- time zones ---- */

struct tz_zone {
    int32_t off;
    bool dst;
    char abbr[16];
};

struct tz {
    char name[256];
    size_t nzone, ntx;
    struct tz_zone *zones;
    int64_t *tx_when;
    uint8_t *tx_idx;
    char extend[128];
    struct tz *next; /* cache list */
};

/* UTC: no zones, name "UTC". */
static struct tz tz_utc = {.name = "UTC"};

struct tz_info {
    const char *name;
    int off;
    int64_t start, end;
};

/* ---- POSIX TZ rules (the TZif footer) ---- */

struct tz_rule {
    int kind; /* 'J' julian, 'D' day of year, 'M' month.week.day */
    int day, week, mon, time;
};

static bool tzs_num(const char **s, int min, int max, int *out)
{
    const char *p = *s;
    int n = 0;
    if (!*p)
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');
        if (n > max)
            return false;
    }
    if (p == *s || n < min)
        return false;
    *s = p;
    *out = n;
    return true;
}

static bool tzs_name(const char **s, const char **name, size_t *len)
{
    const char *p = *s;
    if (!*p)
        return false;
    if (*p == '<') {
        const char *q = strchr(p, '>');
        if (!q)
            return false;
        *name = p + 1;
        *len = (size_t)(q - p - 1);
        *s = q + 1;
        return true;
    }
    size_t i = 0;
    for (; p[i]; i++)
        if ((p[i] >= '0' && p[i] <= '9') || p[i] == ',' || p[i] == '-' || p[i] == '+')
            break;
    if (i < 3)
        return false;
    *name = p;
    *len = i;
    *s = p + i;
    return true;
}

static bool tzs_offset(const char **s, int *out)
{
    const char *p = *s;
    bool neg = false;
    if (!*p)
        return false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    int h, m, sec, off;
    if (!tzs_num(&p, 0, 24 * 7, &h))
        return false;
    off = h * 3600;
    if (*p == ':') {
        p++;
        if (!tzs_num(&p, 0, 59, &m))
            return false;
        off += m * 60;
        if (*p == ':') {
            p++;
            if (!tzs_num(&p, 0, 59, &sec))
                return false;
            off += sec;
        }
    }
    *out = neg ? -off : off;
    *s = p;
    return true;
}

static bool tzs_rule(const char **s, struct tz_rule *r)
{
    const char *p = *s;
    memset(r, 0, sizeof *r);
    if (*p == 'J') {
        p++;
        r->kind = 'J';
        if (!tzs_num(&p, 1, 365, &r->day))
            return false;
    } else if (*p == 'M') {
        p++;
        r->kind = 'M';
        if (!tzs_num(&p, 1, 12, &r->mon) || *p++ != '.' || !tzs_num(&p, 1, 5, &r->week) ||
            *p++ != '.' || !tzs_num(&p, 0, 6, &r->day))
            return false;
    } else {
        r->kind = 'D';
        if (!tzs_num(&p, 0, 365, &r->day))
            return false;
    }
    r->time = 2 * 3600;
    if (*p == '/') {
        p++;
        if (!tzs_offset(&p, &r->time))
            return false;
    }
    *s = p;
    return true;
}

static int64_t tz_rule_time(int64_t year, const struct tz_rule *r, int off)
{
    int64_t s = 0;
    switch (r->kind) {
    case 'J':
        s = (int64_t)(r->day - 1) * 86400;
        if (is_leap(year) && r->day >= 60)
            s += 86400;
        break;
    case 'D':
        s = (int64_t)r->day * 86400;
        break;
    default: {
        int m1 = (r->mon + 9) % 12 + 1;
        int64_t yy0 = year - (r->mon <= 2);
        int64_t yy1 = yy0 / 100, yy2 = yy0 % 100;
        int64_t dow = ((26 * m1 - 2) / 10 + 1 + yy2 + yy2 / 4 + yy1 / 4 - 2 * yy1) % 7;
        if (dow < 0)
            dow += 7;
        int64_t d = r->day - dow;
        if (d < 0)
            d += 7;
        for (int i = 1; i < r->week; i++) {
            if (d + 7 >= days_in(r->mon, year))
                break;
            d += 7;
        }
        d += days_before[r->mon - 1];
        if (is_leap(year) && r->mon > 2)
            d++;
        s = d * 86400;
    }
    }
    return s + r->time - off;
}

/* Zone in effect at sec according to a POSIX TZ string, as Go's tzset computes it. */
static bool tz_posix(const char *spec, int64_t last_tx, int64_t sec, struct tz_info *out,
                     char *namebuf, size_t namecap)
{
    const char *s = spec, *stdn, *dstn;
    size_t stdl, dstl;
    int stdoff, dstoff;
    if (!tzs_name(&s, &stdn, &stdl) || !tzs_offset(&s, &stdoff))
        return false;
    stdoff = -stdoff;
    if (!*s || *s == ',') {
        snprintf(namebuf, namecap, "%.*s", (int)stdl, stdn);
        *out = (struct tz_info){namebuf, stdoff, last_tx, omega};
        return true;
    }
    if (!tzs_name(&s, &dstn, &dstl))
        return false;
    if (!*s || *s == ',') {
        dstoff = stdoff + 3600;
    } else {
        if (!tzs_offset(&s, &dstoff))
            return false;
        dstoff = -dstoff;
    }
    if (!*s)
        s = ",M3.2.0,M11.1.0";
    if (*s != ',' && *s != ';')
        return false;
    s++;
    struct tz_rule r1, r2;
    if (!tzs_rule(&s, &r1) || *s++ != ',' || !tzs_rule(&s, &r2) || *s)
        return false;
    int64_t days = floordiv(sec, 86400), year;
    int mo, dd;
    civil_from_days(days, &year, &mo, &dd);
    int64_t yday = days - days_from_civil(year, 1, 1) + 1;
    int64_t ysec = (yday - 1) * 86400 + sec % 86400;
    int64_t ystart = sec - ysec;
    int64_t start = tz_rule_time(year, &r1, stdoff), end = tz_rule_time(year, &r2, dstoff);
    if (end < start) {
        int64_t t = start;
        start = end;
        end = t;
        const char *tn = stdn;
        stdn = dstn;
        dstn = tn;
        size_t tl = stdl;
        stdl = dstl;
        dstl = tl;
        int to = stdoff;
        stdoff = dstoff;
        dstoff = to;
    }
    if (ysec < start) {
        snprintf(namebuf, namecap, "%.*s", (int)stdl, stdn);
        *out = (struct tz_info){namebuf, stdoff, ystart, start + ystart};
    } else if (ysec >= end) {
        snprintf(namebuf, namecap, "%.*s", (int)stdl, stdn);
        *out = (struct tz_info){namebuf, stdoff, end + ystart, ystart + 365 * 86400};
    } else {
        snprintf(namebuf, namecap, "%.*s", (int)dstl, dstn);
        *out = (struct tz_info){namebuf, dstoff, start + ystart, end + ystart};
    }
    return true;
}

/* Zone in effect at unix second sec (Go's Location.lookup). namebuf receives names that come
 * from the POSIX rule. */
static struct tz_info tz_lookup(const struct tz *z, int64_t sec, char *namebuf, size_t namecap)
{
    if (z->nzone == 0)
        return (struct tz_info){"UTC", 0, alpha, omega};
    if (z->ntx == 0 || sec < z->tx_when[0]) {
        /* the zone before the first transition: the first standard-time zone that is not
         * used later, as Go picks it */
        size_t zi = 0;
        bool first_used = false;
        for (size_t i = 0; i < z->ntx; i++)
            first_used = first_used || z->tx_idx[i] == 0;
        if (first_used) {
            bool found = false;
            if (z->ntx > 0 && z->zones[z->tx_idx[0]].dst)
                for (size_t k = z->tx_idx[0]; k-- > 0 && !found;)
                    if (!z->zones[k].dst) {
                        zi = k;
                        found = true;
                    }
            for (size_t k = 0; k < z->nzone && !found; k++)
                if (!z->zones[k].dst) {
                    zi = k;
                    found = true;
                }
            if (!found)
                zi = 0;
        }
        return (struct tz_info){z->zones[zi].abbr, z->zones[zi].off, alpha,
                                z->ntx ? z->tx_when[0] : omega};
    }
    size_t lo = 0, hi = z->ntx;
    int64_t end = omega;
    while (hi - lo > 1) {
        size_t m = (lo + hi) / 2;
        if (sec < z->tx_when[m]) {
            end = z->tx_when[m];
            hi = m;
        } else {
            lo = m;
        }
    }
    const struct tz_zone *zone = &z->zones[z->tx_idx[lo]];
    struct tz_info r = {zone->abbr, zone->off, z->tx_when[lo], end};
    struct tz_info e;
    if (lo == z->ntx - 1 && z->extend[0] && tz_posix(z->extend, r.start, sec, &e, namebuf, namecap))
        return e;
    return r;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void tz_free(struct tz *z)
{
    if (!z)
        return;
    free(z->zones);
    free(z->tx_when);
    free(z->tx_idx);
    free(z);
}

/* Parses TZif data (versions 1-3; the 64-bit part when present) like Go's
 * LoadLocationFromTZData. NULL when malformed. */
static struct tz *tz_parse(const char *name, const uint8_t *buf, size_t len)
{
    struct cl_cursor c = cl_cursor_init(buf, len);
    const uint8_t *p;
    uint32_t n[6];
    if (cl_cursor_take(&c, 20, &p) < 0 || memcmp(p, "TZif", 4) != 0 ||
        (p[4] != 0 && p[4] != '2' && p[4] != '3'))
        return NULL;
    int version = p[4] == 0 ? 1 : p[4] - '0';
    for (int i = 0; i < 6; i++)
        if (cl_cursor_be32(&c, &n[i]) < 0)
            return NULL;
    /* counts: isutc, isstd, leap, time, type, char */
    size_t size = 4;
    if (version > 1) {
        uint64_t skip =
            (uint64_t)n[3] * 5 + (uint64_t)n[4] * 6 + n[5] + (uint64_t)n[2] * 8 + n[1] + n[0];
        if (skip > cl_cursor_left(&c) || cl_cursor_skip(&c, (size_t)skip) < 0 ||
            cl_cursor_take(&c, 20, &p) < 0 || memcmp(p, "TZif", 4) != 0)
            return NULL;
        for (int i = 0; i < 6; i++)
            if (cl_cursor_be32(&c, &n[i]) < 0)
                return NULL;
        size = 8;
    }
    size_t left = cl_cursor_left(&c);
    if (n[4] == 0 || n[3] > left / (size + 1) || n[4] > left / 6 || n[5] > left)
        return NULL;
    const uint8_t *txt, *txz, *zd, *ab;
    if (cl_cursor_take(&c, n[3] * size, &txt) < 0 || cl_cursor_take(&c, n[3], &txz) < 0 ||
        cl_cursor_take(&c, (size_t)n[4] * 6, &zd) < 0 || cl_cursor_take(&c, n[5], &ab) < 0 ||
        (uint64_t)n[2] * (size + 4) > cl_cursor_left(&c) ||
        cl_cursor_skip(&c, n[2] * (size + 4)) < 0 || cl_cursor_skip(&c, n[1]) < 0 ||
        cl_cursor_skip(&c, n[0]) < 0)
        return NULL;
    struct tz *z = cl_xcalloc(1, sizeof *z);
    snprintf(z->name, sizeof z->name, "%s", name);
    const uint8_t *rest = c.buf + c.off;
    size_t rl = cl_cursor_left(&c);
    if (rl > 2 && rest[0] == '\n' && rest[rl - 1] == '\n' && rl - 2 < sizeof z->extend)
        memcpy(z->extend, rest + 1, rl - 2);
    z->nzone = n[4];
    z->zones = cl_xcalloc(z->nzone, sizeof *z->zones);
    for (size_t i = 0; i < z->nzone; i++) {
        const uint8_t *q = zd + i * 6;
        z->zones[i].off = (int32_t)be32(q);
        z->zones[i].dst = q[4] != 0;
        if (q[5] >= n[5]) {
            tz_free(z);
            return NULL;
        }
        size_t k = 0;
        for (size_t j = q[5]; j < n[5] && ab[j] && k + 1 < sizeof z->zones[i].abbr; j++)
            z->zones[i].abbr[k++] = (char)ab[j];
    }
    z->ntx = n[3];
    z->tx_when = cl_xcalloc(z->ntx + 1, sizeof *z->tx_when);
    z->tx_idx = cl_xcalloc(z->ntx + 1, 1);
    for (size_t i = 0; i < z->ntx; i++) {
        if (size == 8)
            z->tx_when[i] = (int64_t)((uint64_t)be32(txt + i * 8) << 32 | be32(txt + i * 8 + 4));
        else
            z->tx_when[i] = (int32_t)be32(txt + i * 4);
        if (txz[i] >= z->nzone) {
            tz_free(z);
            return NULL;
        }
        z->tx_idx[i] = txz[i];
    }
    if (z->ntx == 0) { /* one zone for all time (Etc/GMT+3 and friends) */
        z->ntx = 1;
        z->tx_when[0] = alpha;
        z->tx_idx[0] = 0;
    }
    return z;
}

static pthread_mutex_t tz_mu = PTHREAD_MUTEX_INITIALIZER;
static struct tz *tz_cache;
static size_t tz_cached;

static struct tz *tz_read(const char *name, const char *path)
{
    struct cl_err err = {0};
    size_t len;
    CL_AUTO(cl_bytes) *buf = cl_file_read(path, CL_REGO_MAX_TZFILE, &len, &err);
    return buf ? tz_parse(name, buf, len) : NULL;
}

static struct tz *tz_load_file(const char *name)
{
    static const char *const dirs[] = {"/usr/share/zoneinfo/", "/usr/share/lib/zoneinfo/",
                                       "/usr/lib/locale/TZ/", "/etc/zoneinfo/"};
    char path[512];
    const char *env = getenv("ZONEINFO");
    if (env && *env) {
        snprintf(path, sizeof path, "%s/%s", env, name);
        struct tz *z = tz_read(name, path);
        if (z)
            return z;
    }
    for (size_t i = 0; i < CL_ARRAY_LEN(dirs); i++) {
        snprintf(path, sizeof path, "%s%s", dirs[i], name);
        struct tz *z = tz_read(name, path);
        if (z)
            return z;
    }
    return NULL;
}

/* Go's time.Local: $TZ (unset: /etc/localtime; empty or unloadable: UTC). */
static struct tz *tz_load_local(void)
{
    const char *tz = getenv("TZ");
    struct tz *z = NULL;
    if (!tz) {
        z = tz_read("Local", "/etc/localtime");
    } else if (*tz) {
        if (*tz == ':')
            tz++;
        z = *tz == '/' ? tz_read("Local", tz) : strstr(tz, "..") ? NULL : tz_load_file(tz);
    }
    if (z)
        snprintf(z->name, sizeof z->name, "Local");
    return z;
}

/* Go's LoadLocation. Returns a zone that lives as long as the process, or NULL with the
 * message in msg. */
static const struct tz *tz_get(const char *name, size_t len, char *msg, size_t msgcap)
{
    if (len == 0 || (len == 3 && memcmp(name, "UTC", 3) == 0))
        return &tz_utc;
    bool local = len == 5 && memcmp(name, "Local", 5) == 0;
    if (!local && (memmem(name, len, "..", 2) || name[0] == '/' || name[0] == '\\')) {
        snprintf(msg, msgcap, "time: invalid location name");
        return NULL;
    }
    if (len >= sizeof tz_utc.name || memchr(name, 0, len)) {
        snprintf(msg, msgcap, "unknown time zone %.*s", (int)(len > 64 ? 64 : len), name);
        return NULL;
    }
    char key[256];
    memcpy(key, name, len);
    key[len] = 0;
    pthread_mutex_lock(&tz_mu);
    /* an allocation failing under the lock waits for memory rather than abandoning the
     * evaluation with the lock held (sbuf.h) */
    jmp_buf *oom_jmp = cl_rg_oom_jmp;
    cl_rg_oom_jmp = NULL;
    struct tz *z = tz_cache;
    while (z && strcmp(z->name, key) != 0)
        z = z->next;
    if (!z) {
        z = local ? tz_load_local() : tz_load_file(key);
        if (local && !z) {
            z = cl_xcalloc(1, sizeof *z);
            snprintf(z->name, sizeof z->name, "Local"); /* no zones: UTC */
        }
        if (z && tz_cached < CL_REGO_MAX_TZCACHE) {
            z->next = tz_cache;
            tz_cache = z;
            tz_cached++;
        } else if (z) {
            /* cache full (cannot happen with real zone names): keep it anyway, leaked on
             * purpose since callers hold it without reference counting */
            z->next = tz_cache;
            tz_cache = z;
        }
    }
    cl_rg_oom_jmp = oom_jmp;
    pthread_mutex_unlock(&tz_mu);
    if (!z)
        snprintf(msg, msgcap, "unknown time zone %.100s", key);
    return z;
}

/* ---- instants ---- */

struct gtime {
    int64_t sec;  /* unix seconds */
    int32_t nsec; /* [0, 1e9) */
    const struct tz *loc;
};

struct fields {
    int64_t year;
    int month, day, hour, min, sec, yday, wday;
    int32_t nsec;
    int off;
    char zname[64];
};

static void time_fields(const struct gtime *t, struct fields *f)
{
    char nb[64];
    struct tz_info zi = tz_lookup(t->loc, t->sec, nb, sizeof nb);
    snprintf(f->zname, sizeof f->zname, "%s", zi.name);
    f->off = zi.off;
    int64_t local = t->sec + zi.off;
    int64_t days = floordiv(local, 86400), sod = floormod(local, 86400);
    civil_from_days(days, &f->year, &f->month, &f->day);
    f->hour = (int)(sod / 3600);
    f->min = (int)(sod / 60 % 60);
    f->sec = (int)(sod % 60);
    f->nsec = t->nsec;
    f->yday = (int)(days - days_from_civil(f->year, 1, 1) + 1);
    f->wday = (int)floormod(days + 4, 7);
}

static struct gtime from_ns(int64_t ns, const struct tz *loc)
{
    struct gtime t = {floordiv(ns, 1000000000), (int32_t)floormod(ns, 1000000000), loc};
    return t;
}

/* t as int64 nanoseconds, or false when outside [1677-09-21, 2262-04-11] */
static bool to_ns(const struct gtime *t, int64_t *out)
{
    int64_t r, sec = t->sec, nsec = t->nsec;
    if (sec < 0 && nsec > 0) { /* keep the intermediate in range near the minimum */
        sec++;
        nsec -= 1000000000;
    }
    if (__builtin_mul_overflow(sec, (int64_t)1000000000, &r) || __builtin_add_overflow(r, nsec, &r))
        return false;
    *out = r;
    return true;
}

/* Go's norm: moves whole multiples of base from lo into hi. */
static bool norm(int64_t *hi, int64_t *lo, int64_t base)
{
    if (*lo == INT64_MIN)
        return false;
    if (*lo < 0) {
        int64_t n = (-*lo - 1) / base + 1;
        if (__builtin_sub_overflow(*hi, n, hi))
            return false;
        *lo += n * base;
    }
    if (*lo >= base) {
        int64_t n = *lo / base;
        if (__builtin_add_overflow(*hi, n, hi))
            return false;
        *lo -= n * base;
    }
    return true;
}

/* Go's time.Date: wall clock fields in loc (any values, normalised) to an instant. false
 * when the result is far outside any representable time. */
static bool make_date(int64_t year, int64_t month, int64_t day, int64_t hour, int64_t min,
                      int64_t sec, int64_t nsec, const struct tz *loc, struct gtime *out)
{
    int64_t m;
    if (__builtin_sub_overflow(month, (int64_t)1, &m) || !norm(&year, &m, 12) ||
        !norm(&sec, &nsec, 1000000000) || !norm(&min, &sec, 60) || !norm(&hour, &min, 60) ||
        !norm(&day, &hour, 24))
        return false;
    if (year < -100000000 || year > 100000000)
        return false;
    int64_t d = days_from_civil(year, (int)m + 1, 1), unix;
    if (__builtin_add_overflow(d, day, &d) || __builtin_sub_overflow(d, (int64_t)1, &d) ||
        __builtin_mul_overflow(d, (int64_t)86400, &unix) ||
        __builtin_add_overflow(unix, hour * 3600 + min * 60 + sec, &unix))
        return false;
    char nb[64];
    struct tz_info zi = tz_lookup(loc, unix, nb, sizeof nb);
    if (zi.off != 0) {
        int64_t utc = unix - zi.off;
        if (utc < zi.start || utc >= zi.end)
            zi = tz_lookup(loc, utc, nb, sizeof nb);
        unix -= zi.off;
    }
    *out = (struct gtime){unix, (int32_t)nsec, loc};
    return true;
}

/* ---- Go layouts ---- */

enum std {
    STD_NONE = 0,
    STD_LONG_MONTH,
    STD_MONTH,
    STD_NUM_MONTH,
    STD_ZERO_MONTH,
    STD_LONG_WEEKDAY,
    STD_WEEKDAY,
    STD_DAY,
    STD_UNDER_DAY,
    STD_ZERO_DAY,
    STD_UNDER_YEARDAY,
    STD_ZERO_YEARDAY,
    STD_HOUR,
    STD_HOUR12,
    STD_ZERO_HOUR12,
    STD_MINUTE,
    STD_ZERO_MINUTE,
    STD_SECOND,
    STD_ZERO_SECOND,
    STD_LONG_YEAR,
    STD_YEAR,
    STD_PM,
    STD_pm,
    STD_TZ,
    STD_ISO8601_TZ,
    STD_ISO8601_SECONDS_TZ,
    STD_ISO8601_SHORT_TZ,
    STD_ISO8601_COLON_TZ,
    STD_ISO8601_COLON_SECONDS_TZ,
    STD_NUM_TZ,
    STD_NUM_SECONDS_TZ,
    STD_NUM_SHORT_TZ,
    STD_NUM_COLON_TZ,
    STD_NUM_COLON_SECONDS_TZ,
    STD_FRAC0,
    STD_FRAC9,
};

struct chunk {
    size_t prefix; /* bytes of literal text before the element */
    enum std std;
    size_t stdlen; /* bytes of the element in the layout */
    int digits;    /* fractional seconds: number of digits */
    char sep;      /* fractional seconds: '.' or ',' */
};

static bool lower_at(const char *s, size_t n, size_t i)
{
    return i < n && s[i] >= 'a' && s[i] <= 'z';
}
static bool digit_at(const char *s, size_t n, size_t i)
{
    return i < n && s[i] >= '0' && s[i] <= '9';
}
static bool has(const char *s, size_t n, size_t i, const char *lit)
{
    size_t k = strlen(lit);
    return n - i >= k && memcmp(s + i, lit, k) == 0;
}

/* Go's nextStdChunk: finds the first layout element at or after the start of s. */
static struct chunk next_chunk(const char *s, size_t n)
{
    struct chunk c = {n, STD_NONE, 0, 0, 0};
#define FOUND(st, len)                                                                             \
    do {                                                                                           \
        c.prefix = i;                                                                              \
        c.std = (st);                                                                              \
        c.stdlen = (len);                                                                          \
        return c;                                                                                  \
    } while (0)
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case 'J':
            if (has(s, n, i, "Jan")) {
                if (has(s, n, i, "January"))
                    FOUND(STD_LONG_MONTH, 7);
                if (!lower_at(s, n, i + 3))
                    FOUND(STD_MONTH, 3);
            }
            break;
        case 'M':
            if (has(s, n, i, "Mon")) {
                if (has(s, n, i, "Monday"))
                    FOUND(STD_LONG_WEEKDAY, 6);
                if (!lower_at(s, n, i + 3))
                    FOUND(STD_WEEKDAY, 3);
            }
            if (has(s, n, i, "MST"))
                FOUND(STD_TZ, 3);
            break;
        case '0':
            if (i + 1 < n && s[i + 1] >= '1' && s[i + 1] <= '6') {
                static const enum std x[] = {STD_ZERO_MONTH,  STD_ZERO_DAY,    STD_ZERO_HOUR12,
                                             STD_ZERO_MINUTE, STD_ZERO_SECOND, STD_YEAR};
                FOUND(x[s[i + 1] - '1'], 2);
            }
            if (has(s, n, i, "002"))
                FOUND(STD_ZERO_YEARDAY, 3);
            break;
        case '1':
            if (i + 1 < n && s[i + 1] == '5')
                FOUND(STD_HOUR, 2);
            FOUND(STD_NUM_MONTH, 1);
        case '2':
            if (has(s, n, i, "2006"))
                FOUND(STD_LONG_YEAR, 4);
            FOUND(STD_DAY, 1);
        case '_':
            if (i + 1 < n && s[i + 1] == '2') {
                if (has(s, n, i + 1, "2006")) { /* a literal '_' then the year */
                    c.prefix = i + 1;
                    c.std = STD_LONG_YEAR;
                    c.stdlen = 4;
                    return c;
                }
                FOUND(STD_UNDER_DAY, 2);
            }
            if (has(s, n, i, "__2"))
                FOUND(STD_UNDER_YEARDAY, 3);
            break;
        case '3':
            FOUND(STD_HOUR12, 1);
        case '4':
            FOUND(STD_MINUTE, 1);
        case '5':
            FOUND(STD_SECOND, 1);
        case 'P':
            if (i + 1 < n && s[i + 1] == 'M')
                FOUND(STD_PM, 2);
            break;
        case 'p':
            if (i + 1 < n && s[i + 1] == 'm')
                FOUND(STD_pm, 2);
            break;
        case '-':
            if (has(s, n, i, "-070000"))
                FOUND(STD_NUM_SECONDS_TZ, 7);
            if (has(s, n, i, "-07:00:00"))
                FOUND(STD_NUM_COLON_SECONDS_TZ, 9);
            if (has(s, n, i, "-0700"))
                FOUND(STD_NUM_TZ, 5);
            if (has(s, n, i, "-07:00"))
                FOUND(STD_NUM_COLON_TZ, 6);
            if (has(s, n, i, "-07"))
                FOUND(STD_NUM_SHORT_TZ, 3);
            break;
        case 'Z':
            if (has(s, n, i, "Z070000"))
                FOUND(STD_ISO8601_SECONDS_TZ, 7);
            if (has(s, n, i, "Z07:00:00"))
                FOUND(STD_ISO8601_COLON_SECONDS_TZ, 9);
            if (has(s, n, i, "Z0700"))
                FOUND(STD_ISO8601_TZ, 5);
            if (has(s, n, i, "Z07:00"))
                FOUND(STD_ISO8601_COLON_TZ, 6);
            if (has(s, n, i, "Z07"))
                FOUND(STD_ISO8601_SHORT_TZ, 3);
            break;
        case '.':
        case ',':
            if (i + 1 < n && (s[i + 1] == '0' || s[i + 1] == '9')) {
                char ch = s[i + 1];
                size_t j = i + 1;
                while (j < n && s[j] == ch)
                    j++;
                if (!digit_at(s, n, j)) {
                    c.prefix = i;
                    c.std = ch == '0' ? STD_FRAC0 : STD_FRAC9;
                    c.stdlen = j - i;
                    c.digits = (int)((j - (i + 1)) & 0xfff);
                    c.sep = s[i];
                    return c;
                }
            }
            break;
        default:
            break;
        }
    }
#undef FOUND
    return c;
}

static const char *const long_months[] = {"January",   "February", "March",    "April",
                                          "May",       "June",     "July",     "August",
                                          "September", "October",  "November", "December"};
static const char *const short_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const long_days[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};
static const char *const short_days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

static void add_int(struct cl_sbuf *b, int64_t x, int width)
{
    char tmp[32];
    bool neg = x < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    int k = 0;
    do {
        tmp[k++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u);
    if (neg)
        cl_sbuf_addc(b, '-');
    for (int i = k; i < width; i++)
        cl_sbuf_addc(b, '0');
    while (k > 0)
        cl_sbuf_addc(b, tmp[--k]);
}

/* Go's Time.Format, by group of layout element: year, month, weekday and day fields. */
static void fmt_date(struct cl_sbuf *b, const struct fields *f, const struct chunk *c)
{
    switch (c->std) {
    case STD_YEAR:
        add_int(b, (f->year < 0 ? -f->year : f->year) % 100, 2);
        break;
    case STD_LONG_YEAR:
        add_int(b, f->year, 4);
        break;
    case STD_MONTH:
        cl_sbuf_adds(b, short_months[f->month - 1]);
        break;
    case STD_LONG_MONTH:
        cl_sbuf_adds(b, long_months[f->month - 1]);
        break;
    case STD_NUM_MONTH:
        add_int(b, f->month, 0);
        break;
    case STD_ZERO_MONTH:
        add_int(b, f->month, 2);
        break;
    case STD_WEEKDAY:
        cl_sbuf_adds(b, short_days[f->wday]);
        break;
    case STD_LONG_WEEKDAY:
        cl_sbuf_adds(b, long_days[f->wday]);
        break;
    case STD_DAY:
        add_int(b, f->day, 0);
        break;
    case STD_UNDER_DAY:
        if (f->day < 10)
            cl_sbuf_addc(b, ' ');
        add_int(b, f->day, 0);
        break;
    case STD_ZERO_DAY:
        add_int(b, f->day, 2);
        break;
    case STD_UNDER_YEARDAY:
        if (f->yday < 100) {
            cl_sbuf_addc(b, ' ');
            if (f->yday < 10)
                cl_sbuf_addc(b, ' ');
        }
        add_int(b, f->yday, 0);
        break;
    case STD_ZERO_YEARDAY:
        add_int(b, f->yday, 3);
        break;
    default:
        break;
    }
}

/* Hour, minute, second and AM/PM. */
static void fmt_clock(struct cl_sbuf *b, const struct fields *f, const struct chunk *c)
{
    switch (c->std) {
    case STD_HOUR:
        add_int(b, f->hour, 2);
        break;
    case STD_HOUR12:
    case STD_ZERO_HOUR12: {
        int hr = f->hour % 12;
        add_int(b, hr == 0 ? 12 : hr, c->std == STD_HOUR12 ? 0 : 2);
        break;
    }
    case STD_MINUTE:
        add_int(b, f->min, 0);
        break;
    case STD_ZERO_MINUTE:
        add_int(b, f->min, 2);
        break;
    case STD_SECOND:
        add_int(b, f->sec, 0);
        break;
    case STD_ZERO_SECOND:
        add_int(b, f->sec, 2);
        break;
    case STD_PM:
        cl_sbuf_adds(b, f->hour >= 12 ? "PM" : "AM");
        break;
    case STD_pm:
        cl_sbuf_adds(b, f->hour >= 12 ? "pm" : "am");
        break;
    default:
        break;
    }
}

/* Zone offsets and names. */
static void fmt_zone(struct cl_sbuf *b, const struct fields *f, const struct chunk *c)
{
    switch (c->std) {
    case STD_ISO8601_TZ:
    case STD_ISO8601_COLON_TZ:
    case STD_ISO8601_SECONDS_TZ:
    case STD_ISO8601_SHORT_TZ:
    case STD_ISO8601_COLON_SECONDS_TZ:
    case STD_NUM_TZ:
    case STD_NUM_COLON_TZ:
    case STD_NUM_SECONDS_TZ:
    case STD_NUM_SHORT_TZ:
    case STD_NUM_COLON_SECONDS_TZ: {
        bool iso = c->std >= STD_ISO8601_TZ && c->std <= STD_ISO8601_COLON_SECONDS_TZ;
        if (f->off == 0 && iso) {
            cl_sbuf_addc(b, 'Z');
            break;
        }
        int zone = f->off / 60, abs = f->off;
        if (zone < 0) {
            cl_sbuf_addc(b, '-');
            zone = -zone;
            abs = -abs;
        } else {
            cl_sbuf_addc(b, '+');
        }
        add_int(b, zone / 60, 2);
        bool colon = c->std == STD_ISO8601_COLON_TZ || c->std == STD_NUM_COLON_TZ ||
                     c->std == STD_ISO8601_COLON_SECONDS_TZ || c->std == STD_NUM_COLON_SECONDS_TZ;
        if (colon)
            cl_sbuf_addc(b, ':');
        if (c->std != STD_NUM_SHORT_TZ && c->std != STD_ISO8601_SHORT_TZ)
            add_int(b, zone % 60, 2);
        if (c->std == STD_ISO8601_SECONDS_TZ || c->std == STD_NUM_SECONDS_TZ ||
            c->std == STD_NUM_COLON_SECONDS_TZ || c->std == STD_ISO8601_COLON_SECONDS_TZ) {
            if (c->std == STD_NUM_COLON_SECONDS_TZ || c->std == STD_ISO8601_COLON_SECONDS_TZ)
                cl_sbuf_addc(b, ':');
            add_int(b, abs % 60, 2);
        }
        break;
    }
    case STD_TZ:
        if (f->zname[0]) {
            cl_sbuf_adds(b, f->zname);
        } else {
            int zone = f->off / 60;
            cl_sbuf_addc(b, zone < 0 ? '-' : '+');
            if (zone < 0)
                zone = -zone;
            add_int(b, zone / 60, 2);
            add_int(b, zone % 60, 2);
        }
        break;
    default:
        break;
    }
}

/* Fractional seconds. */
static void fmt_frac(struct cl_sbuf *b, const struct fields *f, const struct chunk *c)
{
    switch (c->std) {
    case STD_FRAC0:
    case STD_FRAC9: {
        bool trim = c->std == STD_FRAC9;
        if (trim && (c->digits == 0 || f->nsec == 0))
            break;
        size_t start = b->len;
        cl_sbuf_addc(b, c->sep);
        add_int(b, f->nsec, 9);
        if (c->digits < 9)
            b->len -= (size_t)(9 - c->digits);
        if (trim) {
            while (b->len > start && b->s[b->len - 1] == '0')
                b->len--;
            if (b->len > start && b->s[b->len - 1] == c->sep)
                b->len--;
        }
        break;
    }
    default:
        break;
    }
}

/* Go's Time.Format */
static void format_time(struct cl_sbuf *b, const struct gtime *t, const char *lay, size_t n)
{
    struct fields f;
    time_fields(t, &f);
    while (n > 0) {
        struct chunk c = next_chunk(lay, n);
        cl_sbuf_add(b, lay, c.prefix);
        if (c.std == STD_NONE)
            break;
        lay += c.prefix + c.stdlen;
        n -= c.prefix + c.stdlen;
        if (c.std == STD_FRAC0 || c.std == STD_FRAC9)
            fmt_frac(b, &f, &c);
        else if (c.std >= STD_TZ && c.std <= STD_NUM_COLON_SECONDS_TZ)
            fmt_zone(b, &f, &c);
        else if ((c.std >= STD_HOUR && c.std <= STD_ZERO_SECOND) || c.std == STD_PM ||
                 c.std == STD_pm)
            fmt_clock(b, &f, &c);
        else
            fmt_date(b, &f, &c);
    }
}

/* Go's time package quote(): double quotes, backslash before '"' and '\\', other bytes outside
 * printable ASCII as \xNN. */
static void go_quote(struct cl_sbuf *b, const char *s, size_t n)
{
    cl_sbuf_addc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x80 || ch < ' ') {
            cl_sbuf_addf(b, "\\x%02x", ch);
        } else {
            if (ch == '"' || ch == '\\')
                cl_sbuf_addc(b, '\\');
            cl_sbuf_addc(b, (char)ch);
        }
    }
    cl_sbuf_addc(b, '"');
}

struct perr {
    struct cl_sbuf msg;
};

static void parse_error(struct cl_sbuf *m, const char *layout, size_t ln, const char *value,
                        size_t vn, const char *lelem, size_t lelen, const char *velem, size_t velen,
                        const char *extra)
{
    cl_sbuf_adds(m, "parsing time ");
    go_quote(m, value, vn);
    if (extra) {
        cl_sbuf_adds(m, extra);
        return;
    }
    cl_sbuf_adds(m, " as ");
    go_quote(m, layout, ln);
    cl_sbuf_adds(m, ": cannot parse ");
    go_quote(m, velem, velen);
    cl_sbuf_adds(m, " as ");
    go_quote(m, lelem, lelen);
}

/* leading decimal digits as Go's leadingInt: false on overflow beyond 2^63 */
static bool leading_int(const char *s, size_t n, uint64_t *x, size_t *used)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (1ULL << 63) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > (1ULL << 63))
            return false;
    }
    *x = v;
    *used = i;
    return true;
}

/* Go's time.atoi: optional sign, digits, nothing else ("" is 0). */
static bool go_atoi(const char *s, size_t n, int64_t *out)
{
    bool neg = false;
    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        s++;
        n--;
    }
    uint64_t q;
    size_t used;
    if (!leading_int(s, n, &q, &used) || used != n)
        return false;
    *out = neg ? -(int64_t)q : (int64_t)q;
    return true;
}

static bool getnum(const char **v, size_t *n, bool fixed, int64_t *out)
{
    if (!digit_at(*v, *n, 0))
        return false;
    if (!digit_at(*v, *n, 1)) {
        if (fixed)
            return false;
        *out = (*v)[0] - '0';
        (*v)++;
        (*n)--;
        return true;
    }
    *out = ((*v)[0] - '0') * 10 + ((*v)[1] - '0');
    *v += 2;
    *n -= 2;
    return true;
}

static bool getnum3(const char **v, size_t *n, bool fixed, int64_t *out)
{
    int64_t x = 0;
    size_t i = 0;
    for (; i < 3 && digit_at(*v, *n, i); i++)
        x = x * 10 + ((*v)[i] - '0');
    if (i == 0 || (fixed && i != 3))
        return false;
    *out = x;
    *v += i;
    *n -= i;
    return true;
}

static bool match_fold(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c1 = (unsigned char)a[i], c2 = (unsigned char)b[i];
        if (c1 != c2) {
            c1 |= 0x20;
            c2 |= 0x20;
            if (c1 != c2 || c1 < 'a' || c1 > 'z')
                return false;
        }
    }
    return true;
}

static bool lookup_name(const char *const *tab, size_t ntab, const char **v, size_t *n,
                        int64_t *out)
{
    for (size_t i = 0; i < ntab; i++) {
        size_t k = strlen(tab[i]);
        if (*n >= k && match_fold(*v, tab[i], k)) {
            *out = (int64_t)i;
            *v += k;
            *n -= k;
            return true;
        }
    }
    return false;
}

static bool comma_or_period(char ch)
{
    return ch == '.' || ch == ',';
}

/* Go's parseNanoseconds: value starts with the separator; nbytes includes it. */
static bool parse_nanos(const char *v, size_t nbytes, int64_t *ns, const char **rangeerr)
{
    if (!comma_or_period(v[0]))
        return false;
    if (nbytes > 10)
        nbytes = 10;
    if (!go_atoi(v + 1, nbytes - 1, ns))
        return false;
    if (*ns < 0) {
        *rangeerr = "fractional second";
        return true;
    }
    for (size_t i = 0; i < 10 - nbytes; i++)
        *ns *= 10;
    return true;
}

/* Go's parseSignedOffset: length of a "+hh"/"-hh" offset (hh <= 12) or 0 */
static size_t signed_offset_len(const char *v, size_t n)
{
    if (n == 0 || (v[0] != '-' && v[0] != '+'))
        return 0;
    uint64_t x;
    size_t used;
    if (!leading_int(v + 1, n - 1, &x, &used) || used == 0 || x > 12)
        return 0;
    return 1 + used;
}

/* Go's parseTimeZone: length of a time zone abbreviation at the start of v, or 0 */
static size_t tz_abbr_len(const char *v, size_t n)
{
    if (n < 3)
        return 0;
    if (n >= 4 && (memcmp(v, "ChST", 4) == 0 || memcmp(v, "MeST", 4) == 0))
        return 4;
    if (memcmp(v, "GMT", 3) == 0)
        return n == 3 ? 3 : 3 + signed_offset_len(v + 3, n - 3);
    if (v[0] == '+' || v[0] == '-')
        return signed_offset_len(v, n);
    size_t up = 0;
    while (up < 6 && up < n && v[up] >= 'A' && v[up] <= 'Z')
        up++;
    switch (up) {
    case 5:
        return v[4] == 'T' ? 5 : 0;
    case 4:
        return v[3] == 'T' || memcmp(v, "WITA", 4) == 0 ? 4 : 0;
    case 3:
        return 3;
    default:
        return 0;
    }
}

/* Go's skip: literal layout text must match; a space matches any run of spaces. */
static bool skip_prefix(const char **v, size_t *vn, const char *p, size_t pn)
{
    while (pn > 0) {
        if (*p == ' ') {
            if (*vn > 0 && **v != ' ')
                return false;
            while (pn > 0 && *p == ' ') {
                p++;
                pn--;
            }
            while (*vn > 0 && **v == ' ') {
                (*v)++;
                (*vn)--;
            }
            continue;
        }
        if (*vn == 0 || **v != *p)
            return false;
        p++;
        pn--;
        (*v)++;
        (*vn)--;
    }
    return true;
}

/* What parse_time has read so far (Go's time.Parse locals). */
struct tparse {
    const char *v; /* the value not yet read */
    size_t vrem;
    const char *rangeerr; /* a field out of range, named */
    bool am, pm;
    int64_t year, month, day, yday, hour, min, sec, nsec;
    bool z_utc;
    int64_t zone_off; /* -1: none */
    const char *zname;
    size_t znl;
};

static void tp_skip(struct tparse *p, size_t n)
{
    p->v += n;
    p->vrem -= n;
}

/* Year, month, weekday, day and day-of-year fields. */
static bool tp_date(struct tparse *p, enum std std)
{
    int64_t x;
    bool ok = true;
    switch (std) {
    case STD_YEAR:
        if (p->vrem < 2 || !go_atoi(p->v, 2, &p->year))
            return false;
        tp_skip(p, 2);
        p->year += p->year >= 69 ? 1900 : 2000;
        break;
    case STD_LONG_YEAR:
        if (p->vrem < 4 || !digit_at(p->v, p->vrem, 0) || !go_atoi(p->v, 4, &p->year))
            return false;
        tp_skip(p, 4);
        break;
    case STD_MONTH:
    case STD_LONG_MONTH:
        ok = lookup_name(std == STD_MONTH ? short_months : long_months, 12, &p->v, &p->vrem,
                         &p->month);
        p->month++;
        break;
    case STD_NUM_MONTH:
    case STD_ZERO_MONTH:
        ok = getnum(&p->v, &p->vrem, std == STD_ZERO_MONTH, &p->month);
        if (ok && (p->month <= 0 || p->month > 12))
            p->rangeerr = "month";
        break;
    case STD_WEEKDAY:
    case STD_LONG_WEEKDAY:
        ok = lookup_name(std == STD_WEEKDAY ? short_days : long_days, 7, &p->v, &p->vrem, &x);
        break;
    case STD_DAY:
    case STD_UNDER_DAY:
    case STD_ZERO_DAY:
        if (std == STD_UNDER_DAY && p->vrem > 0 && p->v[0] == ' ')
            tp_skip(p, 1);
        ok = getnum(&p->v, &p->vrem, std == STD_ZERO_DAY, &p->day);
        break;
    case STD_UNDER_YEARDAY:
    case STD_ZERO_YEARDAY:
        for (int i = 0; i < 2; i++)
            if (std == STD_UNDER_YEARDAY && p->vrem > 0 && p->v[0] == ' ')
                tp_skip(p, 1);
        ok = getnum3(&p->v, &p->vrem, std == STD_ZERO_YEARDAY, &p->yday);
        break;
    default:
        break;
    }
    return ok;
}

/* Seconds, with a fractional part in the value that the layout (lay: what follows) lacks. */
static bool tp_seconds(struct tparse *p, enum std std, const char *lay, size_t lrem)
{
    if (!getnum(&p->v, &p->vrem, std == STD_ZERO_SECOND, &p->sec))
        return false;
    if (p->sec < 0 || p->sec >= 60) {
        p->rangeerr = "second";
        return true;
    }
    if (p->vrem >= 2 && comma_or_period(p->v[0]) && digit_at(p->v, p->vrem, 1)) {
        struct chunk nx = next_chunk(lay, lrem);
        if (nx.std == STD_FRAC0 || nx.std == STD_FRAC9)
            return true;
        size_t k = 2;
        while (k < p->vrem && digit_at(p->v, p->vrem, k))
            k++;
        bool ok = parse_nanos(p->v, k, &p->nsec, &p->rangeerr);
        tp_skip(p, k);
        return ok;
    }
    return true;
}

/* Hour, minute, second, AM/PM fields. */
static bool tp_clock(struct tparse *p, enum std std, const char *lay, size_t lrem)
{
    bool ok = true;
    switch (std) {
    case STD_HOUR:
        ok = getnum(&p->v, &p->vrem, false, &p->hour);
        if (p->hour < 0 || p->hour >= 24)
            p->rangeerr = "hour";
        break;
    case STD_HOUR12:
    case STD_ZERO_HOUR12:
        ok = getnum(&p->v, &p->vrem, std == STD_ZERO_HOUR12, &p->hour);
        if (p->hour < 0 || p->hour > 12)
            p->rangeerr = "hour";
        break;
    case STD_MINUTE:
    case STD_ZERO_MINUTE:
        ok = getnum(&p->v, &p->vrem, std == STD_ZERO_MINUTE, &p->min);
        if (p->min < 0 || p->min >= 60)
            p->rangeerr = "minute";
        break;
    case STD_SECOND:
    case STD_ZERO_SECOND:
        return tp_seconds(p, std, lay, lrem);
    case STD_PM:
    case STD_pm:
        if (p->vrem < 2)
            return false;
        if (memcmp(p->v, std == STD_PM ? "PM" : "pm", 2) == 0)
            p->pm = true;
        else if (memcmp(p->v, std == STD_PM ? "AM" : "am", 2) == 0)
            p->am = true;
        else
            ok = false;
        tp_skip(p, 2);
        break;
    default:
        break;
    }
    return ok;
}

/* A numeric zone offset: its text width and where hours, minutes and seconds sit ("00" for
 * the parts the layout leaves out), by layout element. */
struct tz_shape {
    size_t width;
    int mm, ss; /* offsets of minutes and seconds in the value, -1: "00" */
    int colon1, colon2;
};

static struct tz_shape tz_shape(enum std std)
{
    switch (std) {
    case STD_ISO8601_COLON_TZ:
    case STD_NUM_COLON_TZ:
        return (struct tz_shape){6, 4, -1, 3, -1};
    case STD_NUM_SHORT_TZ:
    case STD_ISO8601_SHORT_TZ:
        return (struct tz_shape){3, -1, -1, -1, -1};
    case STD_ISO8601_COLON_SECONDS_TZ:
    case STD_NUM_COLON_SECONDS_TZ:
        return (struct tz_shape){9, 4, 7, 3, 6};
    case STD_ISO8601_SECONDS_TZ:
    case STD_NUM_SECONDS_TZ:
        return (struct tz_shape){7, 3, 5, -1, -1};
    default:
        return (struct tz_shape){5, 3, -1, -1, -1};
    }
}

/* "+hh[:]mm[:]ss" and its shorter forms (and "Z" for the ISO 8601 ones). */
static bool tp_num_zone(struct tparse *p, enum std std)
{
    if (std >= STD_ISO8601_TZ && std <= STD_ISO8601_COLON_SECONDS_TZ && p->vrem >= 1 &&
        p->v[0] == 'Z') {
        tp_skip(p, 1);
        p->z_utc = true;
        return true;
    }
    struct tz_shape sh = tz_shape(std);
    if (p->vrem < sh.width || (sh.colon1 >= 0 && p->v[sh.colon1] != ':') ||
        (sh.colon2 >= 0 && p->v[sh.colon2] != ':'))
        return false;
    char sign = p->v[0];
    const char *hh = p->v + 1, *mm = sh.mm >= 0 ? p->v + sh.mm : "00",
               *ss = sh.ss >= 0 ? p->v + sh.ss : "00";
    tp_skip(p, sh.width);
    int64_t hr = 0, mi = 0, se = 0;
    size_t two = 2;
    const char *q = hh;
    bool ok = getnum(&q, &two, true, &hr);
    two = 2, q = mm;
    ok = ok && getnum(&q, &two, true, &mi);
    two = 2, q = ss;
    ok = ok && getnum(&q, &two, true, &se);
    if (hr > 24)
        p->rangeerr = "time zone offset hour";
    if (mi > 60)
        p->rangeerr = "time zone offset minute";
    if (se > 60)
        p->rangeerr = "time zone offset second";
    p->zone_off = (hr * 60 + mi) * 60 + se;
    if (sign == '-')
        p->zone_off = -p->zone_off;
    else if (sign != '+')
        ok = false;
    return ok;
}

/* A zone abbreviation ("UTC", "PST", "GMT+3"). */
static bool tp_zone_name(struct tparse *p)
{
    if (p->vrem >= 3 && memcmp(p->v, "UTC", 3) == 0) {
        p->z_utc = true;
        tp_skip(p, 3);
        return true;
    }
    size_t k = tz_abbr_len(p->v, p->vrem);
    if (k == 0)
        return false;
    p->zname = p->v;
    p->znl = k;
    tp_skip(p, k);
    return true;
}

/* Fractional seconds: a fixed number of digits (FRAC0, "0"s in the layout) or as many as
 * there are (FRAC9, "9"s, optional). */
static bool tp_frac(struct tparse *p, const struct chunk *c)
{
    size_t nd;
    if (c->std == STD_FRAC0) {
        nd = 1 + (size_t)c->digits;
        if (p->vrem < nd)
            return false;
    } else {
        if (p->vrem < 2 || !comma_or_period(p->v[0]) || p->v[1] < '0' || p->v[1] > '9')
            return true;
        size_t i = 0;
        while (i + 1 < p->vrem && p->v[i + 1] >= '0' && p->v[i + 1] <= '9')
            i++;
        nd = 1 + i;
    }
    bool ok = parse_nanos(p->v, nd, &p->nsec, &p->rangeerr);
    tp_skip(p, nd);
    return ok;
}

/* One layout element; lay/lrem: the layout after it. */
static bool tp_field(struct tparse *p, const struct chunk *c, const char *lay, size_t lrem)
{
    if (c->std == STD_FRAC0 || c->std == STD_FRAC9)
        return tp_frac(p, c);
    if (c->std == STD_TZ)
        return tp_zone_name(p);
    if (c->std >= STD_ISO8601_TZ && c->std <= STD_NUM_COLON_SECONDS_TZ)
        return tp_num_zone(p, c->std);
    if ((c->std >= STD_HOUR && c->std <= STD_ZERO_SECOND) || c->std == STD_PM || c->std == STD_pm)
        return tp_clock(p, c->std, lay, lrem);
    return tp_date(p, c->std);
}

/* The day-of-year read resolved into month and day (they must agree when also read). */
static int tp_yday(struct tparse *p, struct cl_sbuf *m, const char *layout, size_t ln,
                   const char *value, size_t vn)
{
    int64_t d = 0, mo = 0, yday = p->yday;
    if (is_leap(p->year)) {
        if (yday == 31 + 29) {
            mo = 2;
            d = 29;
        } else if (yday > 31 + 29) {
            yday--;
        }
    }
    const char *why = NULL;
    if (yday < 1 || yday > 365) {
        why = ": day-of-year out of range";
    } else {
        if (mo == 0) {
            mo = (yday - 1) / 31 + 1;
            if (days_before[mo] < yday)
                mo++;
            d = yday - days_before[mo - 1];
        }
        if (p->month >= 0 && p->month != mo)
            why = ": day-of-year does not match month";
        else if (p->day >= 0 && p->day != d)
            why = ": day-of-year does not match day";
    }
    if (why) {
        parse_error(m, layout, ln, value, vn, NULL, 0, NULL, 0, why);
        return -1;
    }
    p->month = mo;
    p->day = d;
    return 0;
}

/* The fields read made into an instant. */
static int tp_finish(struct tparse *p, struct cl_sbuf *m, const char *layout, size_t ln,
                     const char *value, size_t vn, struct gtime *out)
{
    if (p->pm && p->hour < 12)
        p->hour += 12;
    else if (p->am && p->hour == 12)
        p->hour = 0;
    if (p->yday >= 0) {
        if (tp_yday(p, m, layout, ln, value, vn) < 0)
            return -1;
    } else {
        if (p->month < 0)
            p->month = 1;
        if (p->day < 0)
            p->day = 1;
    }
    if (p->day < 1 || p->day > days_in((int)p->month, p->year)) {
        parse_error(m, layout, ln, value, vn, NULL, 0, NULL, 0, ": day out of range");
        return -1;
    }
    if (!make_date(p->year, p->month, p->day, p->hour, p->min, p->sec, p->nsec, &tz_utc, out))
        return -1;
    if (p->z_utc)
        return 0;
    if (p->zone_off != -1) {
        out->sec -= p->zone_off;
    } else if (p->zname && p->znl > 3 && memcmp(p->zname, "GMT", 3) == 0) {
        /* an unknown abbreviation means UTC, except GMT+h / GMT-h */
        int64_t h = 0;
        if (go_atoi(p->zname + 3, p->znl - 3, &h))
            out->sec -= h * 3600;
    }
    return 0;
}

/* Go's time.Parse with UTC as default location (and as Local for zone abbreviations).
 * Returns 0 with *out, or -1 with the message in m. */
static int parse_time(const char *layout, size_t ln, const char *value, size_t vn,
                      struct gtime *out, struct cl_sbuf *m)
{
    const char *lay = layout;
    size_t lrem = ln;
    struct tparse p = {.v = value, .vrem = vn, .month = -1, .day = -1, .yday = -1, .zone_off = -1};
    for (;;) {
        struct chunk c = next_chunk(lay, lrem);
        const char *stdstr = lay + c.prefix;
        if (!skip_prefix(&p.v, &p.vrem, lay, c.prefix)) {
            parse_error(m, layout, ln, value, vn, lay, c.prefix, p.v, p.vrem, NULL);
            return -1;
        }
        if (c.std == STD_NONE) {
            if (p.vrem == 0)
                break;
            struct cl_sbuf ex = {0};
            cl_sbuf_adds(&ex, ": extra text: ");
            go_quote(&ex, p.v, p.vrem);
            cl_sbuf_addc(&ex, 0);
            parse_error(m, layout, ln, value, vn, NULL, 0, NULL, 0, ex.s);
            cl_sbuf_free(&ex);
            return -1;
        }
        lay += c.prefix + c.stdlen;
        lrem -= c.prefix + c.stdlen;
        const char *hold = p.v;
        size_t holdn = p.vrem;
        bool ok = tp_field(&p, &c, lay, lrem);
        if (p.rangeerr) {
            struct cl_sbuf ex = {0};
            cl_sbuf_addf(&ex, ": %s out of range", p.rangeerr);
            cl_sbuf_addc(&ex, 0);
            parse_error(m, layout, ln, value, vn, NULL, 0, NULL, 0, ex.s);
            cl_sbuf_free(&ex);
            return -1;
        }
        if (!ok) {
            parse_error(m, layout, ln, value, vn, stdstr, c.stdlen, hold, holdn, NULL);
            return -1;
        }
    }
    return tp_finish(&p, m, layout, ln, value, vn, out);
}

/* The layout names OPA accepts besides Go layouts. */
static const char *named_layout(const char *s, size_t n)
{
    static const char *const names[][2] = {
        {"ANSIC", "Mon Jan _2 15:04:05 2006"},
        {"UnixDate", "Mon Jan _2 15:04:05 MST 2006"},
        {"RubyDate", "Mon Jan 02 15:04:05 -0700 2006"},
        {"RFC822", "02 Jan 06 15:04 MST"},
        {"RFC822Z", "02 Jan 06 15:04 -0700"},
        {"RFC850", "Monday, 02-Jan-06 15:04:05 MST"},
        {"RFC1123", "Mon, 02 Jan 2006 15:04:05 MST"},
        {"RFC1123Z", "Mon, 02 Jan 2006 15:04:05 -0700"},
        {"RFC3339", "2006-01-02T15:04:05Z07:00"},
        {"RFC3339Nano", "2006-01-02T15:04:05.999999999Z07:00"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(names); i++)
        if (strlen(names[i][0]) == n && memcmp(names[i][0], s, n) == 0)
            return names[i][1];
    return NULL;
}

/* ---- durations ---- */

/* Go's time.ParseDuration; -1 with the message in m. */
static int parse_duration(const char *orig, size_t on, int64_t *out, struct cl_sbuf *m)
{
    const char *s = orig;
    size_t n = on;
    bool neg = false;
    uint64_t d = 0;
    if (n > 0 && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        s++;
        n--;
    }
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 0;
    }
    if (n == 0)
        goto invalid;
    while (n > 0) {
        uint64_t v = 0, f = 0;
        double scale = 1;
        if (!(s[0] == '.' || (s[0] >= '0' && s[0] <= '9')))
            goto invalid;
        size_t used;
        if (!leading_int(s, n, &v, &used))
            goto invalid;
        bool pre = used > 0;
        s += used;
        n -= used;
        bool post = false;
        if (n > 0 && s[0] == '.') {
            s++;
            n--;
            size_t i = 0;
            bool overflow = false;
            for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
                if (overflow)
                    continue;
                if (f > ((UINT64_C(1) << 63) - 1) / 10) {
                    overflow = true;
                    continue;
                }
                uint64_t y = f * 10 + (uint64_t)(s[i] - '0');
                if (y > (UINT64_C(1) << 63)) {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10;
            }
            post = i > 0;
            s += i;
            n -= i;
        }
        if (!pre && !post)
            goto invalid;
        size_t i = 0;
        while (i < n && s[i] != '.' && !(s[i] >= '0' && s[i] <= '9'))
            i++;
        if (i == 0) {
            cl_sbuf_adds(m, "time: missing unit in duration ");
            go_quote(m, orig, on);
            return -1;
        }
        static const struct {
            const char *name;
            uint64_t mult;
        } units[] = {
            {"ns", 1},       {"us", 1000},      {"\xc2\xb5s", 1000},   {"\xce\xbcs", 1000},
            {"ms", 1000000}, {"s", 1000000000}, {"m", 60000000000ULL}, {"h", 3600000000000ULL}};
        uint64_t unit = 0;
        for (size_t k = 0; k < CL_ARRAY_LEN(units); k++)
            if (strlen(units[k].name) == i && memcmp(units[k].name, s, i) == 0)
                unit = units[k].mult;
        if (!unit) {
            cl_sbuf_adds(m, "time: unknown unit ");
            go_quote(m, s, i);
            cl_sbuf_adds(m, " in duration ");
            go_quote(m, orig, on);
            return -1;
        }
        s += i;
        n -= i;
        if (v > (UINT64_C(1) << 63) / unit)
            goto invalid;
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > (UINT64_C(1) << 63))
                goto invalid;
        }
        d += v;
        if (d > (UINT64_C(1) << 63))
            goto invalid;
    }
    if (neg) {
        *out = (int64_t)(0 - d);
        return 0;
    }
    if (d > (UINT64_C(1) << 63) - 1)
        goto invalid;
    *out = (int64_t)d;
    return 0;
invalid:
    cl_sbuf_adds(m, "time: invalid duration ");
    go_quote(m, orig, on);
    return -1;
}

/* ---- builtins ---- */

static int err_sbuf(struct cl_rego_bctx *c, struct cl_sbuf *m)
{
    int rc = cl_rego_bi_error(c, "%.*s", (int)(m->len > 300 ? 300 : m->len), m->s ? m->s : "");
    cl_sbuf_free(m);
    return rc;
}

static int out_ns(struct cl_rego_bctx *c, const struct gtime *t, struct cl_rv **out)
{
    int64_t ns;
    if (!to_ns(t, &ns))
        return cl_rego_bi_error(c, "time outside of valid range");
    return OUT(cl_rv_int(ns));
}

static const char tz_want[] = "either number (ns) or [number (ns), string (tz)]";

/* OPA's tzTime: a number of ns, or [ns, tz, layout]; *layout (may be NULL) gets the layout. */
static int tz_time(struct cl_rego_bctx *c, const struct cl_rv *a, struct gtime *t,
                   const struct cl_rv **layout)
{
    const struct tz *loc = &tz_utc;
    const struct cl_rv *num = a;
    if (layout)
        *layout = NULL;
    if (a->type == CL_RV_ARRAY) {
        if (a->u.arr.len == 0)
            return cl_rego_bi_type_error(c, 0, tz_want, a);
        num = a->u.arr.items[0];
        if (num->type != CL_RV_NUMBER)
            return cl_rego_bi_type_error(c, 0, "number", num);
        if (a->u.arr.len > 1) {
            const struct cl_rv *tzv = a->u.arr.items[1];
            if (tzv->type != CL_RV_STRING)
                return cl_rego_bi_type_error(c, 0, "string", tzv);
            char msg[128];
            loc = tz_get(S(tzv), L(tzv), msg, sizeof msg);
            if (!loc)
                return cl_rego_bi_error(c, "%s", msg);
        }
        if (a->u.arr.len > 2) {
            const struct cl_rv *lv = a->u.arr.items[2];
            if (lv->type != CL_RV_STRING)
                return cl_rego_bi_type_error(c, 0, "string", lv);
            if (layout)
                *layout = lv;
        }
    } else if (a->type != CL_RV_NUMBER) {
        return cl_rego_bi_type_error(c, 0, tz_want, a);
    }
    int64_t ns;
    if (!cl_rv_as_int(num, &ns))
        return cl_rego_bi_error(c, "timestamp too big");
    *t = from_ns(ns, loc);
    return 0;
}

static int bi_now_ns(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    (void)a;
    return OUT(cl_rv_int(cl_rego_bi_now_ns(c)));
}

static int bi_parse_ns(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_STRING) < 0)
        return -1;
    const char *lay = named_layout(S(a[0]), L(a[0]));
    size_t ln = lay ? strlen(lay) : L(a[0]);
    if (!lay)
        lay = S(a[0]);
    struct cl_sbuf m = {0};
    struct gtime t;
    if (parse_time(lay, ln, S(a[1]), L(a[1]), &t, &m) < 0) {
        if (!m.len)
            cl_sbuf_adds(&m, "time outside of valid range");
        return err_sbuf(c, &m);
    }
    return out_ns(c, &t, out);
}

static int bi_parse_rfc3339_ns(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    static const char lay[] = "2006-01-02T15:04:05Z07:00";
    struct cl_sbuf m = {0};
    struct gtime t;
    if (parse_time(lay, strlen(lay), S(a[0]), L(a[0]), &t, &m) < 0) {
        if (!m.len)
            cl_sbuf_adds(&m, "time outside of valid range");
        return err_sbuf(c, &m);
    }
    return out_ns(c, &t, out);
}

static int bi_parse_duration_ns(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    struct cl_sbuf m = {0};
    int64_t d;
    if (parse_duration(S(a[0]), L(a[0]), &d, &m) < 0)
        return err_sbuf(c, &m);
    return OUT(cl_rv_int(d));
}

static int bi_format(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    struct gtime t;
    const struct cl_rv *lv;
    if (tz_time(c, a[0], &t, &lv) < 0)
        return -1;
    const char *lay = "2006-01-02T15:04:05.999999999Z07:00";
    size_t ln = strlen(lay);
    if (lv && L(lv) > 0) {
        const char *named = named_layout(S(lv), L(lv));
        lay = named ? named : S(lv);
        ln = named ? strlen(named) : L(lv);
    }
    /* the output grows with the layout: at most ~12 bytes per layout byte */
    if (cl_rego_bi_reserve(c, ln * 12 + 64) < 0)
        return -2;
    struct cl_sbuf b = {0};
    format_time(&b, &t, lay, ln);
    struct cl_rv *r = cl_rv_str(b.s ? b.s : "", b.len);
    cl_sbuf_free(&b);
    return OUT(r);
}

static int bi_date(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    struct gtime t;
    if (tz_time(c, a[0], &t, NULL) < 0)
        return -1;
    struct fields f;
    time_fields(&t, &f);
    struct cl_rv *r = cl_rv_array(3);
    cl_rv_array_push(r, cl_rv_int(f.year));
    cl_rv_array_push(r, cl_rv_int(f.month));
    cl_rv_array_push(r, cl_rv_int(f.day));
    return OUT(r);
}

static int bi_clock(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    struct gtime t;
    if (tz_time(c, a[0], &t, NULL) < 0)
        return -1;
    struct fields f;
    time_fields(&t, &f);
    struct cl_rv *r = cl_rv_array(3);
    cl_rv_array_push(r, cl_rv_int(f.hour));
    cl_rv_array_push(r, cl_rv_int(f.min));
    cl_rv_array_push(r, cl_rv_int(f.sec));
    return OUT(r);
}

static int bi_weekday(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    struct gtime t;
    if (tz_time(c, a[0], &t, NULL) < 0)
        return -1;
    struct fields f;
    time_fields(&t, &f);
    return OUT(cl_rv_strz(long_days[f.wday]));
}

static int bi_add_date(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    struct gtime t;
    if (tz_time(c, a[0], &t, NULL) < 0)
        return -1;
    int64_t dy, dm, dd;
    if (cl_rego_bi_want_int(c, a, 1, &dy) < 0 || cl_rego_bi_want_int(c, a, 2, &dm) < 0 ||
        cl_rego_bi_want_int(c, a, 3, &dd) < 0)
        return -1;
    struct fields f;
    time_fields(&t, &f);
    int64_t y, m, d;
    struct gtime r;
    if (__builtin_add_overflow(f.year, dy, &y) ||
        __builtin_add_overflow((int64_t)f.month, dm, &m) ||
        __builtin_add_overflow((int64_t)f.day, dd, &d) ||
        !make_date(y, m, d, f.hour, f.min, f.sec, f.nsec, t.loc, &r))
        return cl_rego_bi_error(c, "time outside of valid range");
    return out_ns(c, &r, out);
}

static int bi_diff(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    struct gtime t1, t2;
    if (tz_time(c, a[0], &t1, NULL) < 0 || tz_time(c, a[1], &t2, NULL) < 0)
        return -1;
    t2.loc = t1.loc;
    if (t1.sec > t2.sec || (t1.sec == t2.sec && t1.nsec > t2.nsec)) {
        struct gtime tmp = t1;
        t1 = t2;
        t2 = tmp;
    }
    struct fields f1, f2;
    time_fields(&t1, &f1);
    time_fields(&t2, &f2);
    int64_t year = f2.year - f1.year, month = f2.month - f1.month, day = f2.day - f1.day;
    int64_t hour = f2.hour - f1.hour, min = f2.min - f1.min, sec = f2.sec - f1.sec;
    if (sec < 0) {
        sec += 60;
        min--;
    }
    if (min < 0) {
        min += 60;
        hour--;
    }
    if (hour < 0) {
        hour += 24;
        day--;
    }
    if (day < 0) {
        day += days_in(f1.month, f1.year);
        month--;
    }
    if (month < 0) {
        month += 12;
        year--;
    }
    struct cl_rv *r = cl_rv_array(6);
    int64_t parts[6] = {year, month, day, hour, min, sec};
    for (int i = 0; i < 6; i++)
        cl_rv_array_push(r, cl_rv_int(parts[i]));
    return OUT(r);
}

const struct cl_rego_builtin cl_rego_builtins_time[] = {
    {"time.now_ns", 0, bi_now_ns, 0},
    {"time.parse_ns", 2, bi_parse_ns, 0},
    {"time.parse_rfc3339_ns", 1, bi_parse_rfc3339_ns, 0},
    {"time.parse_duration_ns", 1, bi_parse_duration_ns, 0},
    {"time.format", 1, bi_format, 0},
    {"time.date", 1, bi_date, 0},
    {"time.clock", 1, bi_clock, 0},
    {"time.weekday", 1, bi_weekday, 0},
    {"time.add_date", 4, bi_add_date, 0},
    {"time.diff", 2, bi_diff, 0},
    {NULL, 0, NULL, 0},
};
