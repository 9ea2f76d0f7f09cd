/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by net/lazy_curl.c and net/lazy_mhd.c: a library opened with dlopen() on first use,
 * and the X-macros that declare, resolve and forward its functions. Not part of the module's
 * interface. */
#ifndef CL_NET_LAZY_H
#define CL_NET_LAZY_H

#include "base/base.h"

#include <pthread.h>
#include <stddef.h>

struct lazylib {
    const char *dflt, *soname, *what;
    pthread_mutex_t lock;
    bool ready, failed; /* read without the lock: __atomic */
    char why[384];      /* written once, before `failed` is published */
};

#define CL_NET_LAZY_MAX_SYMS 32

struct lazysym {
    const char *name;
    void *slot; /* a function pointer, filled from dlsym() */
    size_t size;
};

/* Opens lib and fills every slot, or keeps the first failure (message in lib->why, one WARN
 * line): 0 or EUNSUPPORTED with that message. Thread-safe; cheap once loaded. */
CL_MUST_CHECK int cl_net_lazy_load(struct lazylib *lib, const struct lazysym *syms, size_t n,
                                   struct cl_err *err);
/* Tests: the name the next load opens (NULL: lib->dflt); forgets a failure. */
void cl_net_lazy_soname_set(struct lazylib *lib, const char *name);

#define FIELD(ret, name, params, args, ...) __typeof__(&name) name;
#define FIELD_V(name, params, args) __typeof__(&name) name;
#define SYM(ret, name, params, args, ...) {#name, &fn.name, sizeof fn.name},
#define SYM_V(name, params, args) {#name, &fn.name, sizeof fn.name},
#define FORWARD(ret, name, params, args, fail)                                                     \
    ret(name) params                                                                               \
    {                                                                                              \
        if (!have())                                                                               \
            return fail;                                                                           \
        return fn.name args;                                                                       \
    }
#define FORWARD_V(name, params, args)                                                              \
    void(name) params                                                                              \
    {                                                                                              \
        if (have())                                                                                \
            fn.name args;                                                                          \
    }

#endif
