/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tss2 libraries, opened on first use. Only a TPM quote (attester) or a TPM evidence
 * verification needs them; linked at start, libtss2-esys, -mu, -sys, -tctildr and -rc cost
 * every process that carries tee/ (the guest daemons among them) about 0.4 MiB of resident
 * memory whether a TPM is used or not. This file defines the tss2 functions tee/tpm and
 * aa/tpm.c call, with the prototypes of the tss2 headers (the compiler checks each one
 * against the headers the build found with pkg-config), and forwards each to its library,
 * opened with dlopen() the first time one of its functions is needed. All symbols of a
 * library are resolved when it is opened, so a library without one of them is refused as a
 * whole. cl_tee_tpm_tss2_load() gives the clear error; the forwarders, called without it,
 * answer like a failed call (a NOT_IMPLEMENTED return code).
 */
#include "tee/tpm/tpm.h"

#include <dlfcn.h>
#include <pthread.h>
#include <string.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

enum { ESYS, MU, TCTILDR, RC, NLIBS };
static const unsigned lib_bit[NLIBS] = {CL_TPM_TSS2_ESYS, CL_TPM_TSS2_MU, CL_TPM_TSS2_TCTILDR,
                                        CL_TPM_TSS2_RC};

/* The ABIs the tss2 headers describe (Debian 12: tpm2-tss 3.2). */
static const char *const default_soname[NLIBS] = {"libtss2-esys.so.0", "libtss2-mu.so.0",
                                                  "libtss2-tctildr.so.0", "libtss2-rc.so.0"};

#define ESYS_FAIL TSS2_ESYS_RC_NOT_IMPLEMENTED
#define MU_FAIL ((TSS2_RC)(TSS2_MU_RC_LAYER | TSS2_BASE_RC_NOT_IMPLEMENTED))
#define TCTI_FAIL TSS2_TCTI_RC_NOT_IMPLEMENTED

/* X(library, return type, name, parameters, arguments, value when the library is missing);
 * V(library, name, parameters, arguments) for functions returning nothing. */
#define TSS2_FUNCS(X, V)                                                                           \
    X(ESYS, TSS2_RC, Esys_Initialize,                                                              \
      (ESYS_CONTEXT * *esys_context, TSS2_TCTI_CONTEXT * tcti, TSS2_ABI_VERSION * abiVersion),     \
      (esys_context, tcti, abiVersion), ESYS_FAIL)                                                 \
    V(ESYS, Esys_Finalize, (ESYS_CONTEXT * *context), (context))                                   \
    V(ESYS, Esys_Free, (void *ptr), (ptr))                                                         \
    X(ESYS, TSS2_RC, Esys_SetTimeout, (ESYS_CONTEXT * esys_context, int32_t timeout),              \
      (esys_context, timeout), ESYS_FAIL)                                                          \
    X(ESYS, TSS2_RC, Esys_Startup, (ESYS_CONTEXT * esysContext, TPM2_SU startupType),              \
      (esysContext, startupType), ESYS_FAIL)                                                       \
    X(ESYS, TSS2_RC, Esys_FlushContext, (ESYS_CONTEXT * esysContext, ESYS_TR flushHandle),         \
      (esysContext, flushHandle), ESYS_FAIL)                                                       \
    X(ESYS, TSS2_RC, Esys_CreatePrimary,                                                           \
      (ESYS_CONTEXT * esysContext, ESYS_TR primaryHandle, ESYS_TR shandle1, ESYS_TR shandle2,      \
       ESYS_TR shandle3, const TPM2B_SENSITIVE_CREATE *inSensitive, const TPM2B_PUBLIC *inPublic,  \
       const TPM2B_DATA *outsideInfo, const TPML_PCR_SELECTION *creationPCR,                       \
       ESYS_TR *objectHandle, TPM2B_PUBLIC **outPublic, TPM2B_CREATION_DATA **creationData,        \
       TPM2B_DIGEST **creationHash, TPMT_TK_CREATION **creationTicket),                            \
      (esysContext, primaryHandle, shandle1, shandle2, shandle3, inSensitive, inPublic,            \
       outsideInfo, creationPCR, objectHandle, outPublic, creationData, creationHash,              \
       creationTicket),                                                                            \
      ESYS_FAIL)                                                                                   \
    X(ESYS, TSS2_RC, Esys_PCR_Read,                                                                \
      (ESYS_CONTEXT * esysContext, ESYS_TR shandle1, ESYS_TR shandle2, ESYS_TR shandle3,           \
       const TPML_PCR_SELECTION *pcrSelectionIn, UINT32 *pcrUpdateCounter,                         \
       TPML_PCR_SELECTION **pcrSelectionOut, TPML_DIGEST **pcrValues),                             \
      (esysContext, shandle1, shandle2, shandle3, pcrSelectionIn, pcrUpdateCounter,                \
       pcrSelectionOut, pcrValues),                                                                \
      ESYS_FAIL)                                                                                   \
    X(ESYS, TSS2_RC, Esys_PCR_Extend,                                                              \
      (ESYS_CONTEXT * esysContext, ESYS_TR pcrHandle, ESYS_TR shandle1, ESYS_TR shandle2,          \
       ESYS_TR shandle3, const TPML_DIGEST_VALUES *digests),                                       \
      (esysContext, pcrHandle, shandle1, shandle2, shandle3, digests), ESYS_FAIL)                  \
    X(ESYS, TSS2_RC, Esys_Quote,                                                                   \
      (ESYS_CONTEXT * esysContext, ESYS_TR signHandle, ESYS_TR shandle1, ESYS_TR shandle2,         \
       ESYS_TR shandle3, const TPM2B_DATA *qualifyingData, const TPMT_SIG_SCHEME *inScheme,        \
       const TPML_PCR_SELECTION *PCRselect, TPM2B_ATTEST **quoted, TPMT_SIGNATURE **signature),    \
      (esysContext, signHandle, shandle1, shandle2, shandle3, qualifyingData, inScheme, PCRselect, \
       quoted, signature),                                                                         \
      ESYS_FAIL)                                                                                   \
    X(MU, TSS2_RC, Tss2_MU_TPMS_ATTEST_Unmarshal,                                                  \
      (uint8_t const buffer[], size_t buffer_size, size_t *offset, TPMS_ATTEST *dest),             \
      (buffer, buffer_size, offset, dest), MU_FAIL)                                                \
    X(MU, TSS2_RC, Tss2_MU_TPMT_SIGNATURE_Marshal,                                                 \
      (TPMT_SIGNATURE const *src, uint8_t buffer[], size_t buffer_size, size_t *offset),           \
      (src, buffer, buffer_size, offset), MU_FAIL)                                                 \
    X(MU, TSS2_RC, Tss2_MU_TPMT_SIGNATURE_Unmarshal,                                               \
      (uint8_t const buffer[], size_t buffer_size, size_t *offset, TPMT_SIGNATURE *dest),          \
      (buffer, buffer_size, offset, dest), MU_FAIL)                                                \
    X(TCTILDR, TSS2_RC, Tss2_TctiLdr_Initialize,                                                   \
      (const char *nameConf, TSS2_TCTI_CONTEXT **context), (nameConf, context), TCTI_FAIL)         \
    V(TCTILDR, Tss2_TctiLdr_Finalize, (TSS2_TCTI_CONTEXT * *context), (context))                   \
    X(RC, const char *, Tss2_RC_Decode, (TSS2_RC rc), (rc), "(the tss2 libraries cannot be loaded)")

/* the function table (fn) changes only when every symbol of a library is there: a forwarder
 * never sees a NULL */
#define FIELD(lib, ret, name, params, args, ...) __typeof__(&name) name;
#define FIELD_V(lib, name, params, args) __typeof__(&name) name;
struct funcs {
    TSS2_FUNCS(FIELD, FIELD_V)
};
static struct funcs fn;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool ready[NLIBS];         /* read without the lock: __atomic */
static const char *soname[NLIBS]; /* NULL: default_soname */

static void resolve(void *h, const char *name, void *slot, size_t size, const char **missing)
{
    void *p = dlsym(h, name);
    if (!p && !*missing)
        *missing = name;
    memcpy(slot, &p, size); /* POSIX: a dlsym() result converts to a function pointer */
}

/* Opens library `lib` and resolves its functions; called with the lock held. */
static int open_lib(int lib, struct cl_err *err)
{
    const char *name = soname[lib] ? soname[lib] : default_soname[lib];
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        return cl_err_set(err, CL_EUNSUPPORTED, "TPM: %s (tss2) cannot be loaded: %s", name,
                          why ? why : "unknown reason");
    }
    const char *missing = NULL;
    struct funcs got = fn; /* the other libraries' entries stay */
#define RESOLVE(l, ret, name, params, args, ...)                                                   \
    if (l == lib)                                                                                  \
        resolve(h, #name, &got.name, sizeof got.name, &missing);
#define RESOLVE_V(l, name, params, args)                                                           \
    if (l == lib)                                                                                  \
        resolve(h, #name, &got.name, sizeof got.name, &missing);
    TSS2_FUNCS(RESOLVE, RESOLVE_V)
    if (missing) {
        dlclose(h);
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "TPM: %s has no %s (not the tss2 ABI this build expects)", name, missing);
    }
    fn = got;
    __atomic_store_n(&ready[lib], true, __ATOMIC_RELEASE);
    return 0;
}

int cl_tee_tpm_tss2_load(unsigned libs, struct cl_err *err)
{
    bool all = true;
    for (int i = 0; i < NLIBS; i++)
        if ((libs & lib_bit[i]) && !__atomic_load_n(&ready[i], __ATOMIC_ACQUIRE))
            all = false;
    if (all)
        return 0;
    int rc = 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < NLIBS && rc == 0; i++)
        if ((libs & lib_bit[i]) && !ready[i])
            rc = open_lib(i, err);
    pthread_mutex_unlock(&lock);
    return rc;
}

void cl_tee_tpm_tss2_soname_set(unsigned libs, const char *name)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < NLIBS; i++) {
        if (libs & lib_bit[i]) {
            soname[i] = name;
            /* a library already open stays mapped; the next call opens the new name */
            __atomic_store_n(&ready[i], false, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&lock);
}

static bool have(int lib)
{
    return __atomic_load_n(&ready[lib], __ATOMIC_ACQUIRE) ||
           cl_tee_tpm_tss2_load(lib_bit[lib], NULL) == 0;
}

#define FORWARD(lib, ret, name, params, args, fail)                                                \
    ret(name) params                                                                               \
    {                                                                                              \
        if (!have(lib))                                                                            \
            return fail;                                                                           \
        return fn.name args;                                                                       \
    }
#define FORWARD_V(lib, name, params, args)                                                         \
    void(name) params                                                                              \
    {                                                                                              \
        if (have(lib))                                                                             \
            fn.name args;                                                                          \
    }
TSS2_FUNCS(FORWARD, FORWARD_V)
