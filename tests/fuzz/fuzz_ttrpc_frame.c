/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ttrpc frames and the protobuf messages inside them: the input is written to one end of a
 * socketpair and served by the real connection loop (requests dispatched concurrently on
 * worker threads, as in the daemons), through an echo handler. The same bytes, cut at the
 * first NUL, also go through the address parser.
 */
#include "net/ttrpc.h"

#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int h_echo(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                  struct cl_err *err)
{
    *resp = malloc(len ? len : 1);
    if (!*resp)
        return cl_err_set(err, CL_ENOMEM, "oom");
    if (len)
        memcpy(*resp, req, len);
    *resp_len = len;
    return 0;
}

static const struct cl_ttrpc_method methods[] = {{"f.S", "Echo", h_echo}};

static void *drain(void *arg)
{
    int fd = *(int *)arg;
    uint8_t buf[4096];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        cl_log_set_level(CL_LOG_ERROR);
        quiet = true;
    }
    /* the address parser */
    char addr[600];
    size_t alen = size < sizeof addr - 1 ? size : sizeof addr - 1;
    memcpy(addr, data, alen);
    addr[alen] = 0;
    struct cl_ttrpc_addr a;
    if (cl_ttrpc_address_parse(addr, &a, NULL) == 0 &&
        (strlen(a.path) >= CL_TTRPC_MAX_ADDRESS || (a.transport == CL_TTRPC_TCP && a.port > 65535)))
        abort();
    /* the codecs alone */
    struct cl_ttrpc_hdr h;
    if (cl_ttrpc_hdr_parse(data, size, &h, NULL) == 0 && h.length > CL_TTRPC_MAX_PAYLOAD)
        abort();
    struct cl_ttrpc_request r;
    if (cl_ttrpc_request_decode(data, size, &r, NULL) == 0)
        cl_ttrpc_request_clear(&r);
    int code = 0;
    cl_str *msg = NULL;
    cl_bytes *p = NULL;
    size_t pl = 0;
    if (cl_ttrpc_response_decode(data, size, &code, &msg, &p, &pl, NULL) == 0) {
        free(msg);
        free(p);
    }
    /* the serving loop */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 0;
    pthread_t th;
    pthread_create(&th, NULL, drain, &sv[0]);
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(sv[0], data + off, size - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    shutdown(sv[0], SHUT_WR);
    (void)cl_ttrpc_serve_fd(sv[1], methods, 1, NULL);
    shutdown(sv[1], SHUT_RDWR);
    pthread_join(th, NULL);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
