/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz surface: the HTTP front door (src/net/http_server.c on libmicrohttpd). Each input is
 * sent as raw bytes over a socket to one server started for the process (any path answers
 * 200 "ok"), and the reply is read until the server closes or stays silent for 200 ms. It
 * must hold: the server answers or closes (it never dies), every reply starts with a status
 * line, and a request refused for its framing (400 BadRequest) is the last thing answered on
 * its connection, so nothing hidden behind it is ever served.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/http.h"

static struct cl_http_server *srv;
static uint16_t port;

static void h_ok(void *ctx, const struct cl_http_req *req, struct cl_http_resp *resp)
{
    (void)ctx;
    (void)req;
    cl_http_reply(resp, 200, "text/plain", "ok", 2);
}

static const struct cl_http_route routes[] = {{"*", "/*", h_ok}};

static void stop(void)
{
    cl_http_server_stop(srv);
}

static void setup(void)
{
    if (srv)
        return;
    cl_log_set_level(CL_LOG_ERROR);
    const char *socks[] = {"127.0.0.1:0"};
    struct cl_http_server_opts o = {.sockets = socks,
                                    .nsockets = 1,
                                    .threads = 1,
                                    .max_body = 4096,
                                    .timeout_s = 2,
                                    .request_timeout_s = 2};
    struct cl_err e = {0};
    srv = cl_http_server_start(&o, routes, 1, NULL, NULL, &e);
    if (!srv) {
        fprintf(stderr, "fuzz_http_request: %s\n", e.msg);
        abort();
    }
    port = cl_http_server_port(srv, 0);
    atexit(stop);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        fprintf(stderr, "the server does not accept connections\n");
        abort();
    }
    for (size_t off = 0; off < size;) {
        ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* closed early: what came back is checked below */
        off += (size_t)w;
    }
    static char out[1 << 16];
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (len == sizeof out - 1 || poll(&p, 1, 200) <= 0)
            break;
        ssize_t r = recv(fd, out + len, sizeof out - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    out[len] = 0;
    close(fd);
    if (len && strncmp(out, "HTTP/1.", 7) != 0) {
        fprintf(stderr, "a reply without a status line: %.80s\n", out);
        abort();
    }
    const char *bad = strstr(out, "\"type\":\"BadRequest\"");
    if (bad && strstr(bad, "HTTP/1.")) {
        fprintf(stderr, "something was answered after a framing refusal\n");
        abort();
    }
    return 0;
}
