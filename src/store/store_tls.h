/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TLS under a client library that only knows a plain file descriptor (hiredis 0.14, which has
 * no TLS of its own), private to src/store. cl_store_tls_connect makes a verified TLS
 * connection to host:port and hands back one end of a socketpair; a relay thread pumps bytes
 * between the other end and the TLS connection. The library reads and writes that fd as if it
 * were the server's socket. Closing the fd ends the relay (close_notify sent); when the TLS
 * connection fails or the server closes it, the library reads EOF on the fd (its writes still
 * succeed and are dropped: no SIGPIPE) until it closes it.
 */
#ifndef CL_STORE_TLS_H
#define CL_STORE_TLS_H

#include "base/base.h"

/* Bytes buffered in each direction of a relay. */
#define CL_STORE_TLS_BUF (16u * 1024)

/* What every connection of one store verifies with: the CAs, the optional client
 * certificate. Shared, read-only, by the store's connections (and their relay threads). */
struct cl_store_tls_ctx;
/* ca_file: PEM CAs the server's chain must end in (NULL: the system's default paths).
 * cert_file and key_file: PEM client certificate (chain) and its key, both or neither.
 * what names the client in messages ("Redis TLS"), borrowed (a literal). TLS 1.2 minimum.
 * Returns new, or NULL with EINVAL naming the file that does not load. */
struct cl_store_tls_ctx *cl_store_tls_ctx_new(const char *what, const char *ca_file,
                                              const char *cert_file, const char *key_file,
                                              struct cl_err *err);
void cl_store_tls_ctx_free(struct cl_store_tls_ctx *ctx);

/* One relayed connection. */
struct cl_store_tls;
/* TCP connect to host:port and the TLS handshake, both within timeout_ms; the server's chain
 * is verified against the context's CAs and its certificate must name host (a DNS name, or
 * the address when host is an IP literal; SNI is sent for names). On success starts the
 * relay and returns it (new) with *fd the plaintext end (the caller's: closing it ends the
 * relay). Errors name the stage: EIO "<what>: connect host:port: ...", EVERIFY "<what>:
 * handshake with host:port: certificate verify failed (...)", EIO for other handshake
 * failures. ctx borrowed, must outlive the connection. */
struct cl_store_tls *cl_store_tls_connect(const struct cl_store_tls_ctx *ctx, const char *host,
                                          int port, unsigned timeout_ms, int *fd,
                                          struct cl_err *err);
/* Waits for the relay to end — the caller closes *fd first, else this waits for the server
 * to close — and frees t (NULL is a no-op). why[cap] (may be NULL) gets the reason the TLS
 * side ended by itself ("the server closed the connection", an alert the server sent), or ""
 * when the caller's close ended it. */
void cl_store_tls_close(struct cl_store_tls *t, char *why, size_t cap);

#endif
