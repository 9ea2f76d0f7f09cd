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
 * whole (base/lazy.h). cl_tee_tpm_tss2_load() gives the clear error; the forwarders, called
 * without it, answer like a failed call (a NOT_IMPLEMENTED return code).
 */
#include "tee/tpm/tpm.h"

#include "base/lazy.h"

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#define ESYS_FAIL TSS2_ESYS_RC_NOT_IMPLEMENTED
#define MU_FAIL ((TSS2_RC)(TSS2_MU_RC_LAYER | TSS2_BASE_RC_NOT_IMPLEMENTED))
#define TCTI_FAIL TSS2_TCTI_RC_NOT_IMPLEMENTED

/* X(return type, name, parameters, arguments, value when the library is missing);
 * V(name, parameters, arguments) for functions returning nothing; one list per library. */
#define ESYS_FUNCS(X, V)                                                                           \
    X(TSS2_RC, Esys_Initialize,                                                                    \
      (ESYS_CONTEXT * *esys_context, TSS2_TCTI_CONTEXT * tcti, TSS2_ABI_VERSION * abiVersion),     \
      (esys_context, tcti, abiVersion), ESYS_FAIL)                                                 \
    V(Esys_Finalize, (ESYS_CONTEXT * *context), (context))                                         \
    V(Esys_Free, (void *ptr), (ptr))                                                               \
    X(TSS2_RC, Esys_SetTimeout, (ESYS_CONTEXT * esys_context, int32_t timeout),                    \
      (esys_context, timeout), ESYS_FAIL)                                                          \
    X(TSS2_RC, Esys_Startup, (ESYS_CONTEXT * esysContext, TPM2_SU startupType),                    \
      (esysContext, startupType), ESYS_FAIL)                                                       \
    X(TSS2_RC, Esys_FlushContext, (ESYS_CONTEXT * esysContext, ESYS_TR flushHandle),               \
      (esysContext, flushHandle), ESYS_FAIL)                                                       \
    X(TSS2_RC, Esys_CreatePrimary,                                                                 \
      (ESYS_CONTEXT * esysContext, ESYS_TR primaryHandle, ESYS_TR shandle1, ESYS_TR shandle2,      \
       ESYS_TR shandle3, const TPM2B_SENSITIVE_CREATE *inSensitive, const TPM2B_PUBLIC *inPublic,  \
       const TPM2B_DATA *outsideInfo, const TPML_PCR_SELECTION *creationPCR,                       \
       ESYS_TR *objectHandle, TPM2B_PUBLIC **outPublic, TPM2B_CREATION_DATA **creationData,        \
       TPM2B_DIGEST **creationHash, TPMT_TK_CREATION **creationTicket),                            \
      (esysContext, primaryHandle, shandle1, shandle2, shandle3, inSensitive, inPublic,            \
       outsideInfo, creationPCR, objectHandle, outPublic, creationData, creationHash,              \
       creationTicket),                                                                            \
      ESYS_FAIL)                                                                                   \
    X(TSS2_RC, Esys_PCR_Read,                                                                      \
      (ESYS_CONTEXT * esysContext, ESYS_TR shandle1, ESYS_TR shandle2, ESYS_TR shandle3,           \
       const TPML_PCR_SELECTION *pcrSelectionIn, UINT32 *pcrUpdateCounter,                         \
       TPML_PCR_SELECTION **pcrSelectionOut, TPML_DIGEST **pcrValues),                             \
      (esysContext, shandle1, shandle2, shandle3, pcrSelectionIn, pcrUpdateCounter,                \
       pcrSelectionOut, pcrValues),                                                                \
      ESYS_FAIL)                                                                                   \
    X(TSS2_RC, Esys_PCR_Extend,                                                                    \
      (ESYS_CONTEXT * esysContext, ESYS_TR pcrHandle, ESYS_TR shandle1, ESYS_TR shandle2,          \
       ESYS_TR shandle3, const TPML_DIGEST_VALUES *digests),                                       \
      (esysContext, pcrHandle, shandle1, shandle2, shandle3, digests), ESYS_FAIL)                  \
    X(TSS2_RC, Esys_Quote,                                                                         \
      (ESYS_CONTEXT * esysContext, ESYS_TR signHandle, ESYS_TR shandle1, ESYS_TR shandle2,         \
       ESYS_TR shandle3, const TPM2B_DATA *qualifyingData, const TPMT_SIG_SCHEME *inScheme,        \
       const TPML_PCR_SELECTION *PCRselect, TPM2B_ATTEST **quoted, TPMT_SIGNATURE **signature),    \
      (esysContext, signHandle, shandle1, shandle2, shandle3, qualifyingData, inScheme, PCRselect, \
       quoted, signature),                                                                         \
      ESYS_FAIL)
#define MU_FUNCS(X, V)                                                                             \
    X(TSS2_RC, Tss2_MU_TPMS_ATTEST_Unmarshal,                                                      \
      (uint8_t const buffer[], size_t buffer_size, size_t *offset, TPMS_ATTEST *dest),             \
      (buffer, buffer_size, offset, dest), MU_FAIL)                                                \
    X(TSS2_RC, Tss2_MU_TPMT_SIGNATURE_Marshal,                                                     \
      (TPMT_SIGNATURE const *src, uint8_t buffer[], size_t buffer_size, size_t *offset),           \
      (src, buffer, buffer_size, offset), MU_FAIL)                                                 \
    X(TSS2_RC, Tss2_MU_TPMT_SIGNATURE_Unmarshal,                                                   \
      (uint8_t const buffer[], size_t buffer_size, size_t *offset, TPMT_SIGNATURE *dest),          \
      (buffer, buffer_size, offset, dest), MU_FAIL)
#define TCTILDR_FUNCS(X, V)                                                                        \
    X(TSS2_RC, Tss2_TctiLdr_Initialize, (const char *nameConf, TSS2_TCTI_CONTEXT **context),       \
      (nameConf, context), TCTI_FAIL)                                                              \
    V(Tss2_TctiLdr_Finalize, (TSS2_TCTI_CONTEXT * *context), (context))
#define RC_FUNCS(X, V)                                                                             \
    X(const char *, Tss2_RC_Decode, (TSS2_RC rc), (rc), "(the tss2 libraries cannot be loaded)")

/* One function table (<CL_LAZY_NAME>_fn), library (<CL_LAZY_NAME>_lib) and set of forwarders
 * per tss2 library. */
#define TSS2_LIB(LIST, so)                                                                         \
    static struct {                                                                                \
        LIST(CL_LAZY_FIELD, CL_LAZY_FIELD_V)                                                       \
    } CL_LAZY_FN;                                                                                  \
    static const struct cl_lazysym CL_LAZY_CAT(CL_LAZY_NAME,                                       \
                                               _syms)[] = {LIST(CL_LAZY_SYM, CL_LAZY_SYM_V)};      \
    static struct cl_lazylib CL_LAZY_LIB = {.dflt = so,                                            \
                                            .what = "tss2",                                        \
                                            .ctx = "TPM: ",                                        \
                                            .syms = CL_LAZY_CAT(CL_LAZY_NAME, _syms),              \
                                            .nsyms =                                               \
                                                CL_ARRAY_LEN(CL_LAZY_CAT(CL_LAZY_NAME, _syms)),    \
                                            .lock = PTHREAD_MUTEX_INITIALIZER};                    \
    LIST(CL_LAZY_FORWARD, CL_LAZY_FORWARD_V)

/* The ABIs the tss2 headers describe (Debian 12: tpm2-tss 3.2). */
#define CL_LAZY_NAME esys
TSS2_LIB(ESYS_FUNCS, "libtss2-esys.so.0")
#undef CL_LAZY_NAME
#define CL_LAZY_NAME mu
TSS2_LIB(MU_FUNCS, "libtss2-mu.so.0")
#undef CL_LAZY_NAME
#define CL_LAZY_NAME tctildr
TSS2_LIB(TCTILDR_FUNCS, "libtss2-tctildr.so.0")
#undef CL_LAZY_NAME
#define CL_LAZY_NAME rc
TSS2_LIB(RC_FUNCS, "libtss2-rc.so.0")
#undef CL_LAZY_NAME

static struct {
    unsigned bit;
    struct cl_lazylib *lib;
} const libs[] = {{CL_TPM_TSS2_ESYS, &esys_lib},
                  {CL_TPM_TSS2_MU, &mu_lib},
                  {CL_TPM_TSS2_TCTILDR, &tctildr_lib},
                  {CL_TPM_TSS2_RC, &rc_lib}};

int cl_tee_tpm_tss2_load(unsigned which, struct cl_err *err)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(libs); i++)
        if (which & libs[i].bit) {
            int rc = cl_lazy_load(libs[i].lib, err);
            if (rc < 0)
                return rc;
        }
    return 0;
}

void cl_tee_tpm_tss2_soname_set(unsigned which, const char *name)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(libs); i++)
        if (which & libs[i].bit)
            cl_lazy_soname_set(libs[i].lib, name);
}
