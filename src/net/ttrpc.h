/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttrpc (containerd's small RPC protocol), as guest-components, containerd shims and the
 * Kata agent speak it: frames of a 10-byte header {u32 BE payload length, u32 BE stream id,
 * u8 type, u8 flags} and a payload of at most CL_TTRPC_MAX_PAYLOAD bytes; a request frame
 * carries a protobuf ttrpc.Request {service, method, payload, timeout_nano, metadata}, the
 * response frame a ttrpc.Response {status {code, message}, payload}. The declared length is
 * checked against the cap before anything is allocated.
 *
 * Transports (addresses): "unix:PATH", "unix://PATH", "/PATH"; "vsock://CID:PORT" (CID -1 =
 * any, servers only); "tcp://HOST:PORT" with a numeric IPv4 or [IPv6] host (whether TCP is
 * acceptable is the caller's decision); "serial:/dev/PATH" (servers only): a character
 * device, e.g. a virtio-serial port, served as one connection that survives the host side
 * going away and coming back.
 *
 * Server: a method table of {service, method, handler}; at most CL_TTRPC_MAX_CONNS
 * connections, each with one reader thread; every request runs on its own worker thread (at
 * most CL_TTRPC_MAX_INFLIGHT per connection; the reader stops reading while that many run),
 * so a handler that blocks (WaitProcess) does not hold up the others. Responses are written
 * whole under a per-connection write lock, in completion order. Handlers must be
 * thread-safe. Unknown methods get NOT_FOUND "/<service>/<method> is not supported", as
 * upstream's servers answer. Handlers receive and return the inner protobuf bytes.
 *
 * Client: calls from several threads on one client are multiplexed on its connection (each
 * call its own odd stream id); one reader thread per client routes responses by stream id.
 */
#ifndef CL_NET_TTRPC_H
#define CL_NET_TTRPC_H

#include "base/base.h"

#include <stdint.h>

#define CL_TTRPC_HEADER_LEN 10
#define CL_TTRPC_MAX_PAYLOAD (4u << 20) /* 4 MiB, ttrpc's own limit */
#define CL_TTRPC_MAX_CONNS 64           /* concurrent connections per server */
#define CL_TTRPC_MAX_INFLIGHT 64        /* requests running at once on one connection */
#define CL_TTRPC_FRAME_TIMEOUT_MS 30000 /* once a frame has begun, the rest must follow */
/* A connection with no handler running that completed no frame for this long is closed
 * (socket servers only; cl_ttrpc_server_set_idle_timeout changes it, 0 disables). */
#define CL_TTRPC_IDLE_TIMEOUT_MS 30000
#define CL_TTRPC_SERIAL_REPOLL_MS 80 /* serial: how often a hung-up device is polled again */
#define CL_TTRPC_MAX_NAME 256        /* service and method names */
#define CL_TTRPC_MAX_ADDRESS 108     /* sun_path */
#define CL_TTRPC_DEFAULT_CALL_TIMEOUT_MS 50000u /* upstream's */

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
CL_MUST_CHECK int cl_ttrpc_hdr_parse(const uint8_t *buf, size_t len, struct cl_ttrpc_hdr *out,
                                     struct cl_err *err);
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
CL_MUST_CHECK int cl_ttrpc_request_decode(const uint8_t *buf, size_t len,
                                          struct cl_ttrpc_request *out, struct cl_err *err);
void cl_ttrpc_request_clear(struct cl_ttrpc_request *r);
/* Encodes a ttrpc.Request / ttrpc.Response; returns new bytes or NULL (ENOMEM). */
cl_bytes *cl_ttrpc_request_encode(const char *service, const char *method, const void *payload,
                                  size_t len, int64_t timeout_nano, size_t *outlen,
                                  struct cl_err *err);
cl_bytes *cl_ttrpc_response_encode(int code, const char *message, const void *payload, size_t len,
                                   size_t *outlen, struct cl_err *err);
/* Packs a protobuf message for a ttrpc payload: *out (new) and *outlen; ELIMIT above
 * CL_TTRPC_MAX_PAYLOAD, ENOMEM. The one packing helper of the ttrpc services and clients. */
struct ProtobufCMessage;
CL_MUST_CHECK int cl_ttrpc_pack(const struct ProtobufCMessage *m, cl_bytes **out, size_t *outlen,
                                struct cl_err *err);
/* A service's answer to a request payload that does not decode: EPARSE, "<prefix><method>: the
 * request is not a valid protobuf message" (prefix: the service's upstream error tag). */
int cl_ttrpc_bad_request(struct cl_err *err, const char *prefix, const char *method);
/* Decodes a ttrpc.Response: *code, *message (new, may be empty) and the payload (new). */
CL_MUST_CHECK int cl_ttrpc_response_decode(const uint8_t *buf, size_t len, int *code,
                                           cl_str **message, cl_bytes **payload,
                                           size_t *payload_len, struct cl_err *err);

/* ---- addresses ---- */

enum cl_ttrpc_transport {
    CL_TTRPC_UNIX = 1,
    CL_TTRPC_VSOCK,
    CL_TTRPC_TCP,
    CL_TTRPC_SERIAL,
};

#define CL_TTRPC_VSOCK_CID_ANY UINT32_MAX /* "vsock://-1:PORT" */

/* A parsed address. path: unix socket path or serial device; cid/port: vsock; host/port:
 * tcp (host numeric, without brackets; family AF_INET or AF_INET6). */
struct cl_ttrpc_addr {
    enum cl_ttrpc_transport transport;
    char path[CL_TTRPC_MAX_ADDRESS];
    uint32_t cid;
    uint32_t port;
    char host[64];
    int family;
};

/*
 * Parses any address form listed at the top of this file. Every refusal is EINVAL with a
 * message quoting the address and naming the part at fault (scheme, path length, CID, port,
 * host). Parsing only: no socket is made, no file is looked at. out written on success.
 */
CL_MUST_CHECK int cl_ttrpc_address_parse(const char *address, struct cl_ttrpc_addr *out,
                                         struct cl_err *err);
/* The unix socket path of a unix address into out[CL_TTRPC_MAX_ADDRESS]; EINVAL for other
 * transports or a malformed address. */
CL_MUST_CHECK int cl_ttrpc_address_path(const char *address, char *out, struct cl_err *err);

/* Maps a handler's CL_E* to the status the server answers (table in cl_ttrpc_handler) and a
 * status back to a CL_E* (NOT_FOUND/UNIMPLEMENTED → ENOTFOUND, PERMISSION_DENIED → EDENIED,
 * INVALID_ARGUMENT → EINVAL, RESOURCE_EXHAUSTED → ELIMIT, DEADLINE_EXCEEDED → EEXPIRED,
 * other non-OK → EIO; OK → 0). */
int cl_ttrpc_status_of_err(int cl_code);
int cl_ttrpc_err_of_status(int status);

/* ---- server ---- */

/*
 * A handler gets the request's inner payload (borrowed) and writes a new response payload
 * (may be NULL with *resp_len 0 for an empty message). It may run on several threads at once.
 * On failure it returns a negative CL_E* with err set; the server answers with err->msg and
 * the status: EDENIED → PERMISSION_DENIED (7), ENOTFOUND → NOT_FOUND (5), EPARSE/EINVAL →
 * INVALID_ARGUMENT (3), EUNSUPPORTED → UNIMPLEMENTED (12), ELIMIT → RESOURCE_EXHAUSTED (8),
 * EEXPIRED → DEADLINE_EXCEEDED (4), anything else INTERNAL (13).
 */
typedef int (*cl_ttrpc_handler)(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp,
                                size_t *resp_len, struct cl_err *err);

struct cl_ttrpc_method {
    const char *service; /* "attestation_agent.AttestationAgentService" */
    const char *method;  /* "GetEvidence" */
    cl_ttrpc_handler fn;
};

struct cl_ttrpc_server;
/*
 * Serves address on background threads. unix: creates the socket's parent folder, removes a
 * stale socket file (refuses, EEXISTS, anything else in the way), socket mode 0600. vsock /
 * tcp: binds and listens (tcp port 0 picks a free port: see cl_ttrpc_server_address).
 * serial: opens the device once (O_RDWR|O_NOCTTY) and serves it as one connection whose host
 * side may disconnect and come back: a partial frame is dropped, responses of the old
 * session are discarded, the device is polled again every CL_TTRPC_SERIAL_REPOLL_MS; a
 * protocol violation discards input until the host hangs up. Socket connections that stay
 * idle for CL_TTRPC_IDLE_TIMEOUT_MS are closed: a server whose peer keeps one long-lived,
 * sometimes quiet connection (containerd facing a shim) calls
 * cl_ttrpc_server_set_idle_timeout(srv, 0) right after start. methods and ctx are borrowed
 * for the server's lifetime. Returns new or NULL (EINVAL for the address, EEXISTS, EIO
 * naming the address).
 */
struct cl_ttrpc_server *cl_ttrpc_server_start(const char *address,
                                              const struct cl_ttrpc_method *methods,
                                              size_t nmethods, void *ctx, struct cl_err *err);
/* Serves an open fd (taken: closed by cl_ttrpc_server_stop) the way a serial: address is
 * served: one connection surviving host hang-ups. For a device opened elsewhere and for
 * tests (a pty master whose slave is the "host"). */
struct cl_ttrpc_server *cl_ttrpc_server_start_serial_fd(int fd,
                                                        const struct cl_ttrpc_method *methods,
                                                        size_t nmethods, void *ctx,
                                                        struct cl_err *err);
/* The address served, as a string the client accepts (tcp: with the bound port). Borrowed. */
const char *cl_ttrpc_server_address(const struct cl_ttrpc_server *srv);
/* Idle timeout for this server's socket connections, in ms (0: never close idle peers).
 * Applies to waits that start after the call. Serial connections are never idle-closed. */
void cl_ttrpc_server_set_idle_timeout(struct cl_ttrpc_server *srv, unsigned ms);
/* Stops accepting, closes every connection, waits for running handlers (a handler that
 * never returns blocks this), removes the unix socket file and frees. NULL is fine. */
void cl_ttrpc_server_stop(struct cl_ttrpc_server *srv);

/*
 * Serves one connection on fd until the peer closes it or sends something that is not
 * ttrpc (the fd is not closed here), dispatching requests concurrently like the server.
 * Returns only after every handler it started has finished. Used by tests and fuzzers with
 * a socketpair. Returns 0 when the peer closed cleanly, <0 when the connection was dropped
 * for a protocol violation or an I/O error.
 */
int cl_ttrpc_serve_fd(int fd, const struct cl_ttrpc_method *methods, size_t nmethods, void *ctx);

/* ---- client ---- */

struct cl_ttrpc_client;
/* Connects to a unix, vsock or tcp address (serial is server-only: EINVAL). Returns new or
 * NULL (EINVAL for the address, EIO naming it). */
struct cl_ttrpc_client *cl_ttrpc_client_connect(const char *address, struct cl_err *err);
/* The same, retried every 50 ms while the peer is not there yet (refused, no such socket,
 * no route) until timeout_ms has passed; an address that does not parse fails at once. */
struct cl_ttrpc_client *cl_ttrpc_client_connect_retry(const char *address, unsigned timeout_ms,
                                                      struct cl_err *err);
/* A client over an already connected fd (taken: closed by cl_ttrpc_client_free). */
struct cl_ttrpc_client *cl_ttrpc_client_from_fd(int fd, struct cl_err *err);
/* Closes the connection and frees. No call may be running on c. NULL is fine. */
void cl_ttrpc_client_free(struct cl_ttrpc_client *c);

/*
 * One unary call; safe from several threads at once on one client (multiplexed).
 * req borrowed. timeout_ms bounds this call (0 → CL_TTRPC_DEFAULT_CALL_TIMEOUT_MS) and is
 * sent as timeout_nano. Returns 0 when a response arrived: *code and *msg (new, may be "")
 * are its status, *resp (new, NUL-terminated, *resp_len may be 0) its payload, whatever the
 * code. Returns <0 without a response: EIO for a transport failure (the client is then dead
 * and every pending call on it fails; reconnect) or "no answer in time" (the client stays
 * usable; a late answer is discarded), ELIMIT for a request or response over
 * CL_TTRPC_MAX_PAYLOAD, EPARSE for a response that is not a ttrpc.Response.
 */
CL_MUST_CHECK int cl_ttrpc_call_status(struct cl_ttrpc_client *c, const char *service,
                                       const char *method, const void *req, size_t req_len,
                                       unsigned timeout_ms, cl_bytes **resp, size_t *resp_len,
                                       int *code, cl_str **msg, struct cl_err *err);
/*
 * cl_ttrpc_call_status, with a non-OK status turned into an error whose message is
 * "/<service>/<method>: <status message>": ENOTFOUND for NOT_FOUND and UNIMPLEMENTED, EIO
 * otherwise. *resp new on success.
 */
CL_MUST_CHECK int cl_ttrpc_call(struct cl_ttrpc_client *c, const char *service, const char *method,
                                const void *req, size_t req_len, unsigned timeout_ms,
                                cl_bytes **resp, size_t *resp_len, struct cl_err *err);
/* The status code of the last call on this client (CL_TTRPC_OK after success, -1 after a
 * failure without a response). Per client: with concurrent callers it is whichever call
 * finished last; use cl_ttrpc_call_status there. */
int cl_ttrpc_client_last_code(const struct cl_ttrpc_client *c);

#endif
