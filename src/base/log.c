/* SPDX-License-Identifier: Apache-2.0 */
/* Logging to stderr: one line per event, level, time and the file:line that logged it. */
#include "base/base.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum cl_log_level g_level = CL_LOG_INFO;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

void cl_log_set_level(enum cl_log_level lvl) { g_level = lvl; }
enum cl_log_level cl_log_get_level(void) { return g_level; }

void cl_log_at(enum cl_log_level lvl, const char *file, int line, const char *fmt, ...)
{
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    if (lvl > g_level)
        return;
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    pthread_mutex_lock(&g_lock);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s (%s:%d)\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            names[lvl], msg, base, line);
    pthread_mutex_unlock(&g_lock);
}
