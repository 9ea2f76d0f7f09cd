/* SPDX-License-Identifier: Apache-2.0 */
/* libmicrohttpd opened on first use: the forwarders of the MHD_* functions net/http_server.c
 * calls (base/lazy.h; why: net/lazy_curl.c). */
#include "base/lazy.h"
#include "net/http.h"

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

static struct {
    MHD_FUNCS(CL_LAZY_FIELD, CL_LAZY_FIELD_V)
    MHD_BY_HAND(CL_LAZY_FIELD_H)
} mhd_fn;

#define CL_LAZY_NAME mhd
static const struct cl_lazysym mhd_syms[] = {MHD_FUNCS(CL_LAZY_SYM, CL_LAZY_SYM_V)
                                                 MHD_BY_HAND(CL_LAZY_SYM_H)};
static struct cl_lazylib mhd_lib = {.dflt = MHD_SONAME,
                                    .what = "libmicrohttpd, the HTTP server",
                                    .syms = mhd_syms,
                                    .warn = true,
                                    .nsyms = CL_ARRAY_LEN(mhd_syms),
                                    .lock = PTHREAD_MUTEX_INITIALIZER};

int cl_net_mhd_load(struct cl_err *err)
{
    return cl_lazy_load(&mhd_lib, err);
}

void cl_net_mhd_soname_set(const char *soname)
{
    cl_lazy_soname_set(&mhd_lib, soname);
}

MHD_FUNCS(CL_LAZY_FORWARD, CL_LAZY_FORWARD_V)

struct MHD_Daemon *(MHD_start_daemon)(unsigned int flags, uint16_t port,
                                      MHD_AcceptPolicyCallback apc, void *apc_cls,
                                      MHD_AccessHandlerCallback dh, void *dh_cls, ...)
{
    if (!cl_lazy_have(&mhd_lib))
        return NULL;
    va_list ap;
    va_start(ap, dh_cls);
    struct MHD_Daemon *d = mhd_fn.MHD_start_daemon_va(flags, port, apc, apc_cls, dh, dh_cls, ap);
    va_end(ap);
    return d;
}

const union MHD_ConnectionInfo *(MHD_get_connection_info)(struct MHD_Connection *connection,
                                                          enum MHD_ConnectionInfoType info_type,
                                                          ...)
{
    if (!cl_lazy_have(&mhd_lib))
        return NULL;
    /* no information type of this microhttpd reads the variadic part */
    return mhd_fn.MHD_get_connection_info(connection, info_type);
}
