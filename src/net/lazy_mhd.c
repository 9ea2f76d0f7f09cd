/* SPDX-License-Identifier: Apache-2.0 */
/* libmicrohttpd opened on first use: the forwarders of the MHD_* functions net/http_server.c
 * calls (see net/lazy.c for why and how). */
#include "net/http.h"
#include "net/lazy.h"

#include <microhttpd.h>
#include <stdarg.h>

/* The ABI <microhttpd.h> describes (Debian 12: libmicrohttpd12). */
#define MHD_SONAME "libmicrohttpd.so.12"

#define MHD_FUNCS(X, V)                                                                            \
    X(struct MHD_Daemon *, MHD_start_daemon_va,                                                    \
      (unsigned int flags, uint16_t port, MHD_AcceptPolicyCallback apc, void *apc_cls,             \
       MHD_AccessHandlerCallback dh, void *dh_cls, va_list ap),                                    \
      (flags, port, apc, apc_cls, dh, dh_cls, ap), NULL)                                           \
    V(MHD_stop_daemon, (struct MHD_Daemon * daemon), (daemon))                                     \
    X(enum MHD_Result, MHD_is_feature_supported, (enum MHD_FEATURE feature), (feature), MHD_NO)    \
    X(int, MHD_get_connection_values,                                                              \
      (struct MHD_Connection * connection, enum MHD_ValueKind kind, MHD_KeyValueIterator iterator, \
       void *iterator_cls),                                                                        \
      (connection, kind, iterator, iterator_cls), -1)                                              \
    X(const char *, MHD_lookup_connection_value,                                                   \
      (struct MHD_Connection * connection, enum MHD_ValueKind kind, const char *key),              \
      (connection, kind, key), NULL)                                                               \
    X(enum MHD_Result, MHD_queue_response,                                                         \
      (struct MHD_Connection * connection, unsigned int status_code,                               \
       struct MHD_Response *response),                                                             \
      (connection, status_code, response), MHD_NO)                                                 \
    X(struct MHD_Response *, MHD_create_response_from_buffer,                                      \
      (size_t size, void *buffer, enum MHD_ResponseMemoryMode mode), (size, buffer, mode), NULL)   \
    X(struct MHD_Response *, MHD_create_response_from_buffer_with_free_callback,                   \
      (size_t size, void *buffer, MHD_ContentReaderFreeCallback crfc), (size, buffer, crfc), NULL) \
    V(MHD_destroy_response, (struct MHD_Response * response), (response))                          \
    X(enum MHD_Result, MHD_add_response_header,                                                    \
      (struct MHD_Response * response, const char *header, const char *content),                   \
      (response, header, content), MHD_NO)
#define MHD_BY_HAND(X) X(MHD_get_connection_info)

#define VFIELD(name) __typeof__(&name) name;
#define MVSYM(name) {#name, &mhd_fn.name, sizeof mhd_fn.name},
static struct {
    MHD_FUNCS(FIELD, FIELD_V)
    MHD_BY_HAND(VFIELD)
} mhd_fn;

static struct lazylib mhd_lib = {.dflt = MHD_SONAME,
                                 .what = "libmicrohttpd, the HTTP server",
                                 .lock = PTHREAD_MUTEX_INITIALIZER};

#define fn mhd_fn
static const struct lazysym mhd_syms[] = {MHD_FUNCS(SYM, SYM_V) MHD_BY_HAND(MVSYM)};

int cl_net_mhd_load(struct cl_err *err)
{
    return cl_net_lazy_load(&mhd_lib, mhd_syms, CL_ARRAY_LEN(mhd_syms), err);
}

void cl_net_mhd_soname_set(const char *soname)
{
    cl_net_lazy_soname_set(&mhd_lib, soname);
}

static bool have(void)
{
    return __atomic_load_n(&mhd_lib.ready, __ATOMIC_ACQUIRE) || cl_net_mhd_load(NULL) == 0;
}

MHD_FUNCS(FORWARD, FORWARD_V)

struct MHD_Daemon *(MHD_start_daemon)(unsigned int flags, uint16_t port,
                                      MHD_AcceptPolicyCallback apc, void *apc_cls,
                                      MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
    if (!have())
        return NULL;
    va_list ap;
    va_start(ap, dh_cls);
    struct MHD_Daemon *d = fn.MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
    va_end(ap);
    return d;
}

const union MHD_ConnectionInfo *(MHD_get_connection_info)(struct MHD_Connection *connection,
                                                          enum MHD_ConnectionInfoType info_type,
                                                          ...)
{
    if (!have())
        return NULL;
    /* no information type of this microhttpd reads the variadic part */
    return fn.MHD_get_connection_info(connection, info_type);
}
#undef fn
