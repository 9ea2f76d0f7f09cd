/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl, opened on first use (base/lazy.h). Linked at start, libcurl maps its whole chain
 * (GnuTLS via librtmp, Kerberos, LDAP, libssh2, nghttp2, brotli, zstd, ...), whose
 * constructors run at load time: with libmicrohttpd (lazy_mhd.c) about 4 MiB of resident
 * memory in a process that has not sent or served one request yet. This file defines the
 * curl_* functions net/ calls, with the prototypes of <curl/curl.h> (the compiler checks each
 * against the header pkg-config found), and forwards them; a separate object from
 * lazy_mhd.c, so a binary that only makes requests does not carry the server's. A library
 * that cannot be opened stays refused for the life of the process; the forwarders answer
 * like a failed call (curl_easy_strerror() then gives the reason).
 *
 * The variadic entry points are forwarded by type: curl_easy_setopt() reads its argument as
 * the option number's range says (long, pointer, function pointer, curl_off_t),
 * curl_easy_getinfo() and curl_share_setopt() likewise.
 */
#define CURL_DISABLE_TYPECHECK 1 /* the forwarders define curl_easy_setopt itself */
#include "base/lazy.h"
#include "net/http.h"

#include <curl/curl.h>
#include <stdarg.h>

/* The ABI <curl/curl.h> describes (Debian 12: libcurl4). */
#define CURL_SONAME "libcurl.so.4"

/* X(return type, name, parameters, arguments, value when libcurl is missing); V for void.
 * CURL_BY_HAND: resolved with the rest, forwarded by hand below (variadic, or a failure of
 * their own). */
#define CURL_FUNCS(X, V)                                                                           \
    X(CURLcode, curl_global_init, (long flags), (flags), CURLE_FAILED_INIT)                        \
    X(CURL *, curl_easy_init, (void), (), NULL)                                                    \
    X(CURLcode, curl_easy_perform, (CURL * curl), (curl), CURLE_FAILED_INIT)                       \
    V(curl_easy_cleanup, (CURL * curl), (curl))                                                    \
    X(struct curl_slist *, curl_slist_append, (struct curl_slist * list, const char *data),        \
      (list, data), NULL)                                                                          \
    V(curl_slist_free_all, (struct curl_slist * list), (list))                                     \
    X(char *, curl_easy_unescape, (CURL * handle, const char *string, int length, int *outlength), \
      (handle, string, length, outlength), NULL)                                                   \
    V(curl_free, (void *p), (p))                                                                   \
    X(CURLSH *, curl_share_init, (void), (), NULL)                                                 \
    X(CURLSHcode, curl_share_cleanup, (CURLSH * share), (share), CURLSHE_NOT_BUILT_IN)
#define CURL_BY_HAND(X)                                                                            \
    X(curl_easy_setopt) X(curl_easy_getinfo) X(curl_share_setopt) X(curl_easy_strerror)

static struct {
    CURL_FUNCS(CL_LAZY_FIELD, CL_LAZY_FIELD_V)
    CURL_BY_HAND(CL_LAZY_FIELD_H)
} curl_fn;

#define CL_LAZY_NAME curl
static const struct cl_lazysym curl_syms[] = {CURL_FUNCS(CL_LAZY_SYM, CL_LAZY_SYM_V)
                                                  CURL_BY_HAND(CL_LAZY_SYM_H)};
static struct cl_lazylib curl_lib = {.dflt = CURL_SONAME,
                                     .what = "libcurl, the HTTP client",
                                     .syms = curl_syms,
                                     .warn = true,
                                     .nsyms = CL_ARRAY_LEN(curl_syms),
                                     .lock = PTHREAD_MUTEX_INITIALIZER};

int cl_net_curl_load(struct cl_err *err)
{
    return cl_lazy_load(&curl_lib, err);
}

void cl_net_curl_soname_set(const char *soname)
{
    cl_lazy_soname_set(&curl_lib, soname);
}

CURL_FUNCS(CL_LAZY_FORWARD, CL_LAZY_FORWARD_V)

const char *(curl_easy_strerror)(CURLcode code)
{
    if (!cl_lazy_have(&curl_lib))
        return curl_lib.why; /* the only failure a caller can see without libcurl */
    return curl_fn.curl_easy_strerror(code);
}

CURLcode(curl_easy_setopt)(CURL *curl, CURLoption option, ...)
{
    if (!cl_lazy_have(&curl_lib))
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, option);
    CURLcode rc;
    /* curl's option numbers carry their argument type: the range a number is in */
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        long v = va_arg(ap, long);
        rc = curl_fn.curl_easy_setopt(curl, option, v);
    } else if (option < CURLOPTTYPE_FUNCTIONPOINT || option >= CURLOPTTYPE_BLOB) {
        void *v = va_arg(ap, void *);
        rc = curl_fn.curl_easy_setopt(curl, option, v);
    } else if (option < CURLOPTTYPE_OFF_T) {
        void (*v)(void) = va_arg(ap, void (*)(void));
        rc = curl_fn.curl_easy_setopt(curl, option, v);
    } else {
        curl_off_t v = va_arg(ap, curl_off_t);
        rc = curl_fn.curl_easy_setopt(curl, option, v);
    }
    va_end(ap);
    return rc;
}

CURLcode(curl_easy_getinfo)(CURL *curl, CURLINFO info, ...)
{
    if (!cl_lazy_have(&curl_lib))
        return CURLE_FAILED_INIT;
    va_list ap;
    va_start(ap, info);
    void *out = va_arg(ap, void *); /* every CURLINFO type answers through a pointer */
    va_end(ap);
    return curl_fn.curl_easy_getinfo(curl, info, out);
}

CURLSHcode(curl_share_setopt)(CURLSH *share, CURLSHoption option, ...)
{
    if (!cl_lazy_have(&curl_lib))
        return CURLSHE_NOT_BUILT_IN;
    va_list ap;
    va_start(ap, option);
    CURLSHcode rc;
    switch (option) {
    case CURLSHOPT_SHARE:
    case CURLSHOPT_UNSHARE: {
        int v = va_arg(ap, int); /* a curl_lock_data, read by libcurl as int */
        rc = curl_fn.curl_share_setopt(share, option, v);
        break;
    }
    case CURLSHOPT_LOCKFUNC: {
        curl_lock_function v = va_arg(ap, curl_lock_function);
        rc = curl_fn.curl_share_setopt(share, option, v);
        break;
    }
    case CURLSHOPT_UNLOCKFUNC: {
        curl_unlock_function v = va_arg(ap, curl_unlock_function);
        rc = curl_fn.curl_share_setopt(share, option, v);
        break;
    }
    case CURLSHOPT_USERDATA: {
        void *v = va_arg(ap, void *);
        rc = curl_fn.curl_share_setopt(share, option, v);
        break;
    }
    default:
        rc = CURLSHE_BAD_OPTION; /* one this file does not know the argument type of */
        break;
    }
    va_end(ap);
    return rc;
}
