/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A shared library opened with dlopen() on first use, its functions resolved from a table.
 * The one helper behind net/lazy_curl.c, net/lazy_mhd.c, tee/tpm/tss2_dl.c,
 * cdh/cryptsetup_dl.c and aa/nvidia.c: a library that a process may never need (libcurl,
 * libmicrohttpd, tss2, libcryptsetup, NVML) is not mapped until it is, and a library that is
 * absent, or lacks one of the functions, is refused as a whole with a message naming it and
 * the missing symbol.
 *
 * A file that forwards a library's functions lists them once in an X-macro,
 *   X(return type, name, parameters, arguments, value when the library is missing)
 *   V(name, parameters, arguments)            for the ones returning nothing,
 * and expands it with CL_LAZY_FIELD / CL_LAZY_SYM / CL_LAZY_FORWARD below, after defining
 * CL_LAZY_NAME: its function table is then CL_LAZY_FN (<name>_fn) and its struct cl_lazylib
 * CL_LAZY_LIB (<name>_lib).
 */
#ifndef CL_BASE_LAZY_H
#define CL_BASE_LAZY_H

#include "base/base.h"

#include <pthread.h>
#include <stddef.h>

/* One function of a library: its symbol name and the function pointer dlsym() fills. */
struct cl_lazysym {
    const char *name;
    void *slot;
    size_t size;
};

#define CL_LAZY_MAX_SYMS 32

struct cl_lazylib {
    const char *dflt;              /* soname opened when none is set */
    const char *what;              /* for messages: "libcurl, the HTTP client" */
    const char *ctx;               /* message prefix ("TPM: "), or NULL */
    const struct cl_lazysym *syms; /* all resolved at open: the slots change only when */
    size_t nsyms;                  /* every one is there, so a forwarder never sees NULL */
    bool warn;                     /* log the failure once (WARN) */
    int absent_code;               /* code when the library cannot be opened (0: EUNSUPPORTED;
                                      a missing symbol is always EUNSUPPORTED) */
    pthread_mutex_t lock;          /* PTHREAD_MUTEX_INITIALIZER */
    /* state, kept by lazy.c */
    const char *soname; /* set by cl_lazy_soname_set; NULL: dflt */
    bool ready, failed; /* read without the lock: __atomic */
    int code;           /* the failure's code */
    char why[384];      /* the failure, written before `failed` is published */
};

/* Opens lib and fills every slot, or keeps the first failure for the life of the process
 * (the message names the library and the loader's reason, or the missing symbol; with
 * lib->warn, one WARN line says it): 0, or lib's failure code with that message. Thread-safe; one
 * atomic load once loaded. */
CL_MUST_CHECK int cl_lazy_load(struct cl_lazylib *lib, struct cl_err *err);
/* Whether lib is (or can now be) loaded; for forwarders. */
bool cl_lazy_have(struct cl_lazylib *lib);
/* Tests and configuration: the name the next load opens (NULL: lib->dflt); forgets a failure.
 * A library already open stays mapped (its functions may be running). */
void cl_lazy_soname_set(struct cl_lazylib *lib, const char *name);

/* X-macro expanders (see the top of this file). */
#define CL_LAZY_CAT_(a, b) a##b
#define CL_LAZY_CAT(a, b) CL_LAZY_CAT_(a, b)
#define CL_LAZY_FN CL_LAZY_CAT(CL_LAZY_NAME, _fn)
#define CL_LAZY_LIB CL_LAZY_CAT(CL_LAZY_NAME, _lib)
#define CL_LAZY_FIELD(ret, name, params, args, ...) __typeof__(&name) name;
#define CL_LAZY_FIELD_V(name, params, args) __typeof__(&name) name;
#define CL_LAZY_SYM(ret, name, params, args, ...) {#name, &CL_LAZY_FN.name, sizeof CL_LAZY_FN.name},
#define CL_LAZY_SYM_V(name, params, args) {#name, &CL_LAZY_FN.name, sizeof CL_LAZY_FN.name},
/* for functions forwarded by hand (variadic ones): the field and the symbol only */
#define CL_LAZY_FIELD_H(name) __typeof__(&name) name;
#define CL_LAZY_SYM_H(name) {#name, &CL_LAZY_FN.name, sizeof CL_LAZY_FN.name},
#define CL_LAZY_FORWARD(ret, name, params, args, fail)                                             \
    ret(name) params                                                                               \
    {                                                                                              \
        if (!cl_lazy_have(&CL_LAZY_LIB))                                                           \
            return fail;                                                                           \
        return CL_LAZY_FN.name args;                                                               \
    }
#define CL_LAZY_FORWARD_V(name, params, args)                                                      \
    void(name) params                                                                              \
    {                                                                                              \
        if (cl_lazy_have(&CL_LAZY_LIB))                                                            \
            CL_LAZY_FN.name args;                                                                  \
    }

#endif
