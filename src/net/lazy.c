/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libcurl and libmicrohttpd, opened on first use. Linked at start, libcurl maps its whole
 * chain (GnuTLS via librtmp, Kerberos, LDAP, libssh2, nghttp2, brotli, zstd, ...) and
 * libmicrohttpd maps GnuTLS and p11-kit, whose constructors run at load time: together about
 * 4 MiB of resident memory in a process that has not sent or served one request yet. In the
 * guest that is most of what the two daemons hold when idle.
 *
 * lazy_curl.c and lazy_mhd.c define the curl_* and MHD_* functions net/ (and tee/common.c)
 * call, with the prototypes of <curl/curl.h> and <microhttpd.h> (the compiler checks each
 * against the headers found with pkg-config), and forward them to the library opened here
 * with dlopen() the first time one is needed; they are separate objects, so a binary that
 * only makes requests does not carry the server's. All symbols of a library are resolved
 * when it is opened, so a library without one of them is refused as a whole. A library that
 * cannot be opened stays refused for the life of the process (one WARN line names it and the
 * loader's reason); cl_net_curl_load() and cl_net_mhd_load() return that reason, and the
 * forwarders answer like a failed call (curl_easy_strerror() then gives the reason too).
 *
 * The variadic entry points are forwarded by type: curl_easy_setopt() reads its argument as
 * the option number's range says (long, pointer, function pointer, curl_off_t),
 * curl_easy_getinfo() and curl_share_setopt() likewise, MHD_start_daemon() goes through
 * MHD_start_daemon_va().
 */
#include "net/lazy.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int cl_net_lazy_load(struct lazylib *lib, const struct lazysym *syms, size_t n, struct cl_err *err)
{
    if (__atomic_load_n(&lib->ready, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&lib->lock);
    if (!lib->ready && !lib->failed) {
        const char *name = lib->soname ? lib->soname : lib->dflt;
        void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        const char *missing = NULL;
        void *found[CL_NET_LAZY_MAX_SYMS];
        if (n > CL_NET_LAZY_MAX_SYMS)
            missing = "(more functions than CL_NET_LAZY_MAX_SYMS)";
        for (size_t i = 0; h && i < n && !missing; i++)
            if (!(found[i] = dlsym(h, syms[i].name)))
                missing = syms[i].name;
        /* the slots change only when every symbol is there: a forwarder never sees a NULL */
        for (size_t i = 0; h && !missing && i < n; i++)
            memcpy(syms[i].slot, &found[i],
                   syms[i].size); /* POSIX: dlsym() results convert to functions */
        if (!h) {
            const char *why = dlerror();
            snprintf(lib->why, sizeof lib->why, "%s (%s) cannot be loaded: %s", name, lib->what,
                     why ? why : "unknown reason");
        } else if (missing) {
            snprintf(lib->why, sizeof lib->why, "%s (%s) has no %s: not the ABI this build expects",
                     name, lib->what, missing);
            dlclose(h);
        }
        if (!h || missing) {
            cl_warn("%s", lib->why);
            __atomic_store_n(&lib->failed, true, __ATOMIC_RELEASE);
        } else {
            __atomic_store_n(&lib->ready, true, __ATOMIC_RELEASE);
        }
    }
    bool ok = lib->ready;
    pthread_mutex_unlock(&lib->lock);
    return ok ? 0 : cl_err_set(err, CL_EUNSUPPORTED, "%s", lib->why);
}

void cl_net_lazy_soname_set(struct lazylib *lib, const char *name)
{
    pthread_mutex_lock(&lib->lock);
    lib->soname = name;
    /* a library already open stays mapped (its functions may be running); the next call
     * opens the new name */
    __atomic_store_n(&lib->ready, false, __ATOMIC_RELEASE);
    __atomic_store_n(&lib->failed, false, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&lib->lock);
}
