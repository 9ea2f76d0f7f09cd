/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Streaming HTTP GET/HEAD on libcurl, for bodies of any size (registry blobs): the body of a
 * 2xx reply is handed to a callback chunk by chunk and never buffered here; a non-2xx body is
 * kept (first CL_HTTP_STREAM_MAX_ERROR_BODY bytes) for the error message. Selected response
 * headers are captured (each at most CL_HTTP_STREAM_MAX_HEADER bytes; a reply with more than
 * CL_HTTP_STREAM_MAX_HEADER_BYTES of headers is refused). Redirects are followed only when
 * asked (at most 5, http/https only; curl sends the caller's Authorization header to the first
 * host only).
 *
 * A cl_http_stream is shared by threads: every request gets its own easy handle, and
 * connections and DNS answers are shared through a locked curl share object.
 */
#ifndef CL_NET_HTTP_STREAM_H
#define CL_NET_HTTP_STREAM_H

#include "base/base.h"

#define CL_HTTP_STREAM_MAX_HEADER 8192        /* one captured header value */
#define CL_HTTP_STREAM_MAX_HEADER_BYTES 65536 /* all response headers of one reply */
#define CL_HTTP_STREAM_MAX_ERROR_BODY 4096    /* kept from a non-2xx body */
#define CL_HTTP_STREAM_MAX_REDIRECTS 5

/* Headers captured from the final reply (after redirects). */
enum cl_http_stream_hdr {
    CL_HTTP_HDR_WWW_AUTHENTICATE,
    CL_HTTP_HDR_CONTENT_TYPE,
    CL_HTTP_HDR_CONTENT_LENGTH,
    CL_HTTP_HDR_CONTENT_RANGE,
    CL_HTTP_HDR_DOCKER_CONTENT_DIGEST,
    CL_HTTP_HDR_LOCATION,
    CL_HTTP_HDR_COUNT
};

struct cl_http_stream_opts {
    const char *ca_file;     /* PEM bundle replacing the system store, or NULL */
    long connect_timeout_ms; /* 0 → 10000 */
    long low_speed_time_s;   /* abort when below 1 byte/s for this long; 0 → 30 */
    long timeout_ms;         /* whole request; 0 → none (blobs may be large) */
};

struct cl_http_stream;
/* Returns new or NULL (EIO when curl cannot start, EUNSUPPORTED when libcurl cannot be loaded,
 * ENOMEM). */
struct cl_http_stream *cl_http_stream_new(const struct cl_http_stream_opts *opts,
                                          struct cl_err *err);
void cl_http_stream_free(struct cl_http_stream *s);

/* Called with each chunk of a 2xx body; return 0 to go on, a negative CL_E* to stop (the
 * request then fails with that code and the callback's err message). */
typedef int (*cl_http_stream_data_fn)(void *ctx, const uint8_t *buf, size_t len,
                                      struct cl_err *err);

/* Called once before the first byte of a 2xx body (and not at all for other statuses or an
 * empty body) with the status and the captured headers (indexed by cl_http_stream_hdr, NULL
 * when absent); a negative CL_E* stops the request like on_data does. */
typedef int (*cl_http_stream_start_fn)(void *ctx, long status, cl_str *const *headers,
                                       struct cl_err *err);

struct cl_http_stream_req {
    const char *method; /* "GET" (default when NULL) or "HEAD" */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    bool follow_redirects;
    bool tls_verify_off_insecure;     /* skip TLS peer and host checks (logged by the caller) */
    cl_http_stream_start_fn on_start; /* may be NULL */
    cl_http_stream_data_fn on_data;   /* may be NULL: the 2xx body is then discarded */
    void *ctx;
    long timeout_ms; /* this whole request; 0 → the stream's timeout_ms */
};

struct cl_http_stream_result {
    long status;
    cl_str *header[CL_HTTP_HDR_COUNT]; /* owned, NULL when absent */
    cl_bytes *error_body;              /* owned: start of a non-2xx body, NUL-terminated */
    size_t error_body_len;
    uint64_t body_bytes; /* bytes handed to on_data */
};
void cl_http_stream_result_clear(struct cl_http_stream_result *r);

/* Performs one request. Any HTTP status is a success here (check out->status); out is
 * written on success and must be cleared. EINVAL (bad request fields, a header with CR/LF),
 * ELIMIT (headers too large), EIO (transport, TLS, timeouts), or the callback's code. */
CL_MUST_CHECK int cl_http_stream_do(struct cl_http_stream *s, const struct cl_http_stream_req *req,
                                    struct cl_http_stream_result *out, struct cl_err *err);

#endif
