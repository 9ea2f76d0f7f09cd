/* SPDX-License-Identifier: Apache-2.0 */
/* Integer parsing with range and trailing-junk checks, formatted strings, RNG and clocks. */
#include "base/base.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int cl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, const char *what,
                 struct cl_err *err)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return cl_err_set(err, CL_EPARSE, "%s: '%s' is not a number", what, s ? s : "");
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0')
        return cl_err_set(err, CL_EPARSE, "%s: '%s' is not a number", what, s);
    if (v < min || v > max)
        return cl_err_set(err, CL_EINVAL, "%s: %llu is outside [%llu, %llu]", what, v,
                          (unsigned long long)min, (unsigned long long)max);
    *out = v;
    return 0;
}

int cl_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, const char *what,
                 struct cl_err *err)
{
    if (!s || !*s || *s == ' ' || *s == '+')
        return cl_err_set(err, CL_EPARSE, "%s: '%s' is not a number", what, s ? s : "");
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0')
        return cl_err_set(err, CL_EPARSE, "%s: '%s' is not a number", what, s);
    if (v < min || v > max)
        return cl_err_set(err, CL_EINVAL, "%s: %lld is outside [%lld, %lld]", what, v,
                          (long long)min, (long long)max);
    *out = v;
    return 0;
}

cl_str *cl_strdupf(const char *fmt, ...)
{
    /* Formatted once into a stack buffer and copied: vasprintf grows its buffer from 100
     * bytes by realloc, which showed in the KBS's profile for tokens and JWE headers. The
     * stack copy is wiped: callers format bearer tokens with it. */
    char buf[1024];
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : malloc((size_t)n + 1);
    if (s && (size_t)n < sizeof buf)
        memcpy(s, buf, (size_t)n + 1);
    else if (s && vsnprintf(s, (size_t)n + 1, fmt, again) != n) {
        free(s);
        s = NULL;
    }
    va_end(again);
    explicit_bzero(buf, n > 0 && (size_t)n < sizeof buf ? (size_t)n : sizeof buf);
    return s;
}

cl_str *cl_strcat_new(const char *first, ...)
{
    va_list ap;
    size_t total = 0;
    va_start(ap, first);
    for (const char *p = first; p; p = va_arg(ap, const char *))
        if (!cl_add_ok(total, strlen(p), &total)) {
            va_end(ap);
            return NULL;
        }
    va_end(ap);
    char *out = total < SIZE_MAX ? malloc(total + 1) : NULL;
    if (!out)
        return NULL;
    char *w = out;
    va_start(ap, first);
    for (const char *p = first; p; p = va_arg(ap, const char *)) {
        size_t n = strlen(p);
        memcpy(w, p, n);
        w += n;
    }
    va_end(ap);
    *w = 0;
    return out;
}

int cl_random(void *buf, size_t n, struct cl_err *err)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return cl_err_set(err, CL_EIO, "getrandom: %s", strerror(errno));
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

uint64_t cl_now_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t cl_now_unix(void)
{
    return (int64_t)time(NULL);
}
