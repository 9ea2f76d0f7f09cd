/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttrpc (containerd's small RPC protocol), as guest-components speaks it over unix sockets:
 * frames of a 10-byte header {u32 BE payload length, u32 BE stream id, u8 type, u8 flags}
 * and a payload of at most CL_TTRPC_MAX_PAYLOAD bytes; a request frame carries a protobuf
 * ttrpc.Request {service, method, payload, timeout_nano, metadata}, the response frame a
 * ttrpc.Response {status {code, message}, payload}. The declared length is checked against
 * the cap before anything is allocated.
 *
 * Server: a method table of {service, method, handler}; one thread per connection (at most
 * CL_TTRPC_MAX_CONNS), requests on a connection answered in order. Unknown methods get
 * NOT_FOUND "/<service>/<method> is not supported", as upstream's servers answer. Handlers
 * receive and return the inner protobuf bytes; they decode them with protobuf-c.
 *
 * Client: one connection, calls serialised by a mutex (thread-safe), odd stream ids.
 */
#ifndef CL_NET_TTRPC_H
#define CL_NET_TTRPC_H

#include "base/base.h"

#define CL_TTRPC_HEADER_LEN 10
#define CL_TTRPC_MAX_PAYLOAD (4u << 20)   /* 4 MiB, ttrpc's own limit */
#define CL_TTRPC_MAX_CONNS 64             /* concurrent connections per server */
#define CL_TTRPC_FRAME_TIMEOUT_MS 30000   /* once a frame has begun, the rest must follow */
#define CL_TTRPC_MAX_NAME 256             /* service and method names */
#define CL_TTRPC_MAX_ADDRESS 108          /* sun_path */

enum cl_ttrpc_type {
    CL_TTRPC_REQUEST = 1,
    CL_TTRPC_RESPONSE = 2,
    CL_TTRPC_DATA = 3,
};

/* gRPC status codes, which ttrpc reuses. */
enum cl_ttrpc_code {
    CL_TTRPC_OK = 0,
    CL_TTRPC_CANCELLED = 1,
    CL_TTRPC_UNKNOWN = 2,
    CL_TTRPC_INVALID_ARGUMENT = 3,
    CL_TTRPC_DEADLINE_EXCEEDED = 4,
    CL_TTRPC_NOT_FOUND = 5,
    CL_TTRPC_PERMISSION_DENIED = 7,
    CL_TTRPC_RESOURCE_EXHAUSTED = 8,
    CL_TTRPC_UNIMPLEMENTED = 12,
    CL_TTRPC_INTERNAL = 13,
    CL_TTRPC_UNAVAILABLE = 14,
};

struct cl_ttrpc_hdr {
    uint32_t length;
    uint32_t stream_id;
    uint8_t type;
    uint8_t flags;
};

/* Reads a header from buf[len] (at least CL_TTRPC_HEADER_LEN bytes). EPARSE when short,
 * ELIMIT when the declared length exceeds CL_TTRPC_MAX_PAYLOAD. out written on success. */
CL_MUST_CHECK int cl_ttrpc_hdr_parse(const uint8_t *buf, size_t len, struct cl_ttrpc_hdr *out, struct cl_err *err);
void cl_ttrpc_hdr_encode(const struct cl_ttrpc_hdr *h, uint8_t out[CL_TTRPC_HEADER_LEN]);

/* A decoded ttrpc.Request; every member owned. */
struct cl_ttrpc_request {
    cl_str *service;
    cl_str *method;
    cl_bytes *payload;
    size_t payload_len;
    int64_t timeout_nano;
};
/* Decodes a request frame's payload (protobuf). Names are checked: non-empty, at most
 * CL_TTRPC_MAX_NAME bytes, printable ASCII. EPARSE otherwise. */
CL_MUST_CHECK int cl_ttrpc_request_decode(const uint8_t *buf, size_t len, struct cl_ttrpc_request *out,
                                          struct cl_err *err);
void cl_ttrpc_request_clear(struct cl_ttrpc_request *r);
/* Encodes a ttrpc.Request / ttrpc.Response; returns new bytes or NULL (ENOMEM). */
cl_bytes *cl_ttrpc_request_encode(const char *service, const char *method, const void *payload, size_t len,
                                  int64_t timeout_nano, size_t *outlen, struct cl_err *err);
cl_bytes *cl_ttrpc_response_encode(int code, const char *message, const void *payload, size_t len, size_t *outlen,
                                   struct cl_err *err);
/* Decodes a ttrpc.Response: *code, *message (new, may be empty) and the payload (new). */
CL_MUST_CHECK int cl_ttrpc_response_decode(const uint8_t *buf, size_t len, int *code, cl_str **message,
                                           cl_bytes **payload, size_t *payload_len, struct cl_err *err);

/* Parses a unix socket address: "unix:///path", "unix://path" or "/path". Copies the path
 * into out[CL_TTRPC_MAX_ADDRESS]. EINVAL for other schemes (vsock is not implemented yet:
 * EUNSUPPORTED) or a path that does not fit. */
CL_MUST_CHECK int cl_ttrpc_address_path(const char *address, char *out, struct cl_err *err);

/* ---- server ---- */

/*
 * A handler gets the request's inner payload (borrowed) and writes a new response payload
 * (may be NULL with *resp_len 0 for an empty message). On failure it returns a negative
 * CL_E* with err set; the server answers INTERNAL with err->msg (ENOTFOUND → NOT_FOUND,
 * EPARSE/EINVAL → INVALID_ARGUMENT, EUNSUPPORTED → UNIMPLEMENTED), as upstream answers.
 */
typedef int (*cl_ttrpc_handler)(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp, size_t *resp_len,
                                struct cl_err *err);

struct cl_ttrpc_method {
    const char *service; /* "attestation_agent.AttestationAgentService" */
    const char *method;  /* "GetEvidence" */
    cl_ttrpc_handler fn;
};

struct cl_ttrpc_server;
/* Creates the socket's parent folder, removes a stale socket file, binds and listens (mode
 * 0600 on the socket), and serves on a background thread. methods and ctx are borrowed for
 * the server's lifetime. Returns new or NULL (EINVAL, EIO naming the path). */
struct cl_ttrpc_server *cl_ttrpc_server_start(const char *address, const struct cl_ttrpc_method *methods,
                                              size_t nmethods, void *ctx, struct cl_err *err);
/* Stops accepting, closes every connection, waits for running handlers, removes the socket
 * file and frees. NULL is fine. */
void cl_ttrpc_server_stop(struct cl_ttrpc_server *srv);

/*
 * Serves one connection on fd until the peer closes it or sends something that is not
 * ttrpc (the fd is not closed here). Used by the server threads and by tests and fuzzers
 * with a socketpair. Returns 0 when the peer closed cleanly, <0 when the connection was
 * dropped for a protocol violation.
 */
int cl_ttrpc_serve_fd(int fd, const struct cl_ttrpc_method *methods, size_t nmethods, void *ctx);

/* ---- client ---- */

struct cl_ttrpc_client;
/* Connects to a unix socket address. Returns new or NULL (EIO naming the path). */
struct cl_ttrpc_client *cl_ttrpc_client_connect(const char *address, struct cl_err *err);
/* A client over an already connected fd (taken: closed by cl_ttrpc_client_free). */
struct cl_ttrpc_client *cl_ttrpc_client_from_fd(int fd, struct cl_err *err);
void cl_ttrpc_client_free(struct cl_ttrpc_client *c);
/*
 * One unary call. req borrowed; *resp new (NULL when the answer is an empty message).
 * timeout_ms bounds the whole call (0 → 50000, upstream's). A non-OK status becomes an error
 * whose message is "/<service>/<method>: <status message>": ENOTFOUND for NOT_FOUND and
 * UNIMPLEMENTED, EIO otherwise; a transport failure is EIO and leaves the client unusable
 * (reconnect). A response larger than CL_TTRPC_MAX_PAYLOAD is refused with ELIMIT.
 */
CL_MUST_CHECK int cl_ttrpc_call(struct cl_ttrpc_client *c, const char *service, const char *method,
                                const void *req, size_t req_len, unsigned timeout_ms, cl_bytes **resp,
                                size_t *resp_len, struct cl_err *err);
/* The status code of the last failed call on this client (CL_TTRPC_OK after success, -1
 * after a transport failure). */
int cl_ttrpc_client_last_code(const struct cl_ttrpc_client *c);

#endif
