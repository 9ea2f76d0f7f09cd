/* SPDX-License-Identifier: Apache-2.0 */
/* A library opened on first use, its functions resolved from a table (see base/lazy.h). */
#include "base/lazy.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* Opens and resolves; called with the lock held. 0 or the failure (in lib->why). */
static int open_lib(struct cl_lazylib *lib)
{
    const char *name = lib->soname ? lib->soname : lib->dflt;
    const char *ctx = lib->ctx ? lib->ctx : "";
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(lib->why, sizeof lib->why, "%s%s (%s) cannot be loaded: %s", ctx, name, lib->what,
                 why ? why : "unknown reason");
        return lib->absent_code ? lib->absent_code : CL_EUNSUPPORTED;
    }
    void *found[CL_LAZY_MAX_SYMS];
    const char *missing = NULL;
    if (lib->nsyms > CL_LAZY_MAX_SYMS)
        missing = "(more functions than CL_LAZY_MAX_SYMS)";
    for (size_t i = 0; i < lib->nsyms && !missing; i++)
        if (!(found[i] = dlsym(h, lib->syms[i].name)))
            missing = lib->syms[i].name;
    if (missing) {
        snprintf(lib->why, sizeof lib->why, "%s%s (%s) has no %s: not the ABI this build expects",
                 ctx, name, lib->what, missing);
        dlclose(h);
        return CL_EUNSUPPORTED;
    }
    for (size_t i = 0; i < lib->nsyms; i++) /* POSIX: dlsym() results convert to functions */
        memcpy(lib->syms[i].slot, &found[i], lib->syms[i].size);
    return 0;
}

int cl_lazy_load(struct cl_lazylib *lib, struct cl_err *err)
{
    if (__atomic_load_n(&lib->ready, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&lib->lock);
    if (!lib->ready && !lib->failed) {
        int rc = open_lib(lib);
        if (rc < 0) {
            lib->code = rc;
            if (lib->warn)
                cl_warn("%s", lib->why);
            __atomic_store_n(&lib->failed, true, __ATOMIC_RELEASE);
        } else {
            __atomic_store_n(&lib->ready, true, __ATOMIC_RELEASE);
        }
    }
    int rc = lib->ready ? 0 : lib->code;
    pthread_mutex_unlock(&lib->lock);
    return rc == 0 ? 0 : cl_err_set(err, rc, "%s", lib->why);
}

bool cl_lazy_have(struct cl_lazylib *lib)
{
    return __atomic_load_n(&lib->ready, __ATOMIC_ACQUIRE) || cl_lazy_load(lib, NULL) == 0;
}

void cl_lazy_soname_set(struct cl_lazylib *lib, const char *name)
{
    pthread_mutex_lock(&lib->lock);
    lib->soname = name;
    __atomic_store_n(&lib->ready, false, __ATOMIC_RELEASE);
    __atomic_store_n(&lib->failed, false, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&lib->lock);
}
