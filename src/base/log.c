/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Logging to stderr: one line per event, level, time and the file:line that logged it. The
 * message is escaped here, for every caller: arguments often carry peer text (a URL, a TEE
 * name, a resource path), and a raw LF in one would write a second, forged line, an ESC would
 * reach the terminal of whoever reads the log.
 */
#include "base/base.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum cl_log_level g_level = CL_LOG_INFO;
static bool g_json;

void cl_log_set_json(bool on)
{
    g_json = on;
}
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

void cl_log_set_level(enum cl_log_level lvl)
{
    g_level = lvl;
}
enum cl_log_level cl_log_get_level(void)
{
    return g_level;
}

/* Code points that move the cursor, end a line or reorder text on a terminal. */
static bool cp_is_control(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e ||
           cp == 0x200f || cp == 0x061c;
}

size_t cl_log_escape(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    if (cap == 0)
        return 0;
    const unsigned char *s = (const unsigned char *)(in ? in : "");
    size_t o = 0;
    while (*s) {
        char tmp[16];
        size_t tn, adv;
        uint32_t cp = 0;
        size_t sl = *s >= 0x80 ? cl_utf8_seq(s, strnlen((const char *)s, 4), &cp) : 0;
        if (*s >= 0x20 && *s < 0x7f && *s != '\\') {
            tmp[0] = (char)*s, tn = 1, adv = 1;
        } else if (sl && !cp_is_control(cp)) {
            memcpy(tmp, s, sl), tn = sl, adv = sl;
        } else if (sl) {
            tn = (size_t)snprintf(tmp, sizeof tmp, "\\u{%04x}", (unsigned)cp), adv = sl;
        } else {
            tmp[0] = '\\', tmp[1] = 'x', tmp[2] = hex[*s >> 4], tmp[3] = hex[*s & 15];
            tn = 4, adv = 1;
        }
        /* room for this piece, and for "..." should the next one not fit */
        if (tn + 3 >= cap - o) {
            size_t k = cap - 1 - o < 3 ? cap - 1 - o : 3;
            memcpy(out + o, "...", k);
            o += k;
            break;
        }
        memcpy(out + o, tmp, tn);
        o += tn;
        s += adv;
    }
    out[o] = '\0';
    return o;
}

CL_PRINTF(5, 0)
static void log_v(enum cl_log_level lvl, const char *file, int line, uint64_t held, const char *fmt,
                  va_list ap)
{
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    char msg[2048], esc[CL_LOG_MAX_LINE];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (held && n >= 0 && (size_t)n < sizeof msg)
        snprintf(msg + n, sizeof msg - (size_t)n, " [%" PRIu64 " more since the last line]", held);
    cl_log_escape(msg, esc, sizeof esc);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    if (g_json) {
        /* the escaped message holds no control bytes; only " and \ need escaping for JSON */
        char js[2 * CL_LOG_MAX_LINE];
        size_t o = 0;
        for (const char *p = esc; *p && o + 2 < sizeof js; p++) {
            if (*p == '"' || *p == '\\')
                js[o++] = '\\';
            js[o++] = *p;
        }
        js[o] = 0;
        pthread_mutex_lock(&g_lock);
        fprintf(stderr,
                "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"msg\":\"%s\","
                "\"src\":\"%s:%d\"}\n",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                ts.tv_nsec / 1000000, names[lvl], js, base, line);
        pthread_mutex_unlock(&g_lock);
        return;
    }
    pthread_mutex_lock(&g_lock);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s (%s:%d)\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            names[lvl], esc, base, line);
    pthread_mutex_unlock(&g_lock);
}

void cl_log_at(enum cl_log_level lvl, const char *file, int line, const char *fmt, ...)
{
    if (lvl > g_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_v(lvl, file, line, 0, fmt, ap);
    va_end(ap);
}

void cl_log_limited_at(struct cl_log_limit *lim, enum cl_log_level lvl, const char *file, int line,
                       const char *fmt, ...)
{
    if (lvl > g_level)
        return;
    uint64_t now = cl_now_mono_ns();
    uint64_t next = atomic_load(&lim->next_ns);
    if ((next && now < next) ||
        !atomic_compare_exchange_strong(&lim->next_ns, &next, now + CL_LOG_LIMIT_NS)) {
        atomic_fetch_add(&lim->held, 1); /* in the window, or another thread logs this one */
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    log_v(lvl, file, line, atomic_exchange(&lim->held, 0), fmt, ap);
    va_end(ap);
}
