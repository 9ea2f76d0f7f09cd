// SPDX-License-Identifier: Apache-2.0
/*
 * The shim's client of cloister-agent (grpc.AgentService and grpc.Health over ttrpc). One
 * multiplexed ttrpc connection per VM: a WaitProcess that blocks for the life of a container
 * shares it with every other call. The channel is a virtio-serial port on this machine: the
 * host end (QEMU's unix socket) accepts before the guest listens, so "connected" means
 * nothing until Health.Check answers; the handshake retries Check with fresh calls (short
 * timeouts) until the boot deadline, and the client discards answers to calls it gave up on.
 */
#include "net/ttrpc.h"
#include "shim/shim.h"

#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "health.pb-c.h"

#define AGENT_SERVICE "grpc.AgentService"
#define HEALTH_SERVICE "grpc.Health"
#define CHECK_TIMEOUT_MS 1500u

struct cl_shim_agent {
    struct cl_ttrpc_client *c;
    unsigned call_timeout_ms;
    atomic_bool dead;
};

static int health_check(struct cl_ttrpc_client *c, unsigned timeout_ms, struct cl_err *err)
{
    Grpc__CheckRequest req;
    grpc__check_request__init(&req);
    uint8_t buf[64];
    size_t len = grpc__check_request__pack(&req, buf);
    CL_AUTO(cl_bytes) *resp = NULL;
    size_t resp_len = 0;
    int code = 0;
    CL_AUTO(cl_str) *msg = NULL;
    if (cl_ttrpc_call_status(c, HEALTH_SERVICE, "Check", buf, len, timeout_ms, &resp, &resp_len,
                             &code, &msg, err) < 0)
        return err->code;
    if (code != CL_TTRPC_OK)
        return cl_err_set(err, cl_ttrpc_err_of_status(code), "agent Health.Check: status %d: %s",
                          code, msg);
    Grpc__HealthCheckResponse *r = grpc__health_check_response__unpack(NULL, resp_len, resp);
    if (!r)
        return cl_err_set(err, CL_EPARSE,
                          "agent Health.Check: answer is not a HealthCheckResponse");
    int status = r->status;
    grpc__health_check_response__free_unpacked(r, NULL);
    if (status != GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING)
        return cl_err_set(err, CL_EIO, "agent Health.Check: status %d, not SERVING", status);
    return 0;
}

static bool no_answer(const struct cl_err *err)
{
    return strstr(err->msg, "no answer in time") != NULL;
}

struct cl_shim_agent *cl_shim_agent_connect(const char *address, unsigned deadline_ms,
                                            unsigned call_timeout_ms, bool (*alive)(void *ctx),
                                            void *ctx, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    uint64_t end = cl_now_mono_ns() + (uint64_t)deadline_ms * 1000000u;
    struct cl_ttrpc_client *c = NULL;
    unsigned tries = 0, connects = 0;
    for (;;) {
        if (alive && !alive(ctx)) {
            cl_ttrpc_client_free(c);
            cl_err_stage(err, CL_EIO, "agent-ready",
                         "the VM went away before the agent answered (%u tries)", tries);
            return NULL;
        }
        uint64_t now = cl_now_mono_ns();
        if (now >= end) {
            cl_ttrpc_client_free(c);
            cl_err_stage(
                err, CL_EEXPIRED, "agent-ready",
                "agent at %s did not answer Health.Check within %u ms (%u tries, %u connections)",
                address, deadline_ms, tries, connects);
            return NULL;
        }
        if (!c) {
            /* short attempts, so that a dead VM is noticed between them */
            unsigned left = (unsigned)((end - now) / 1000000u);
            c = cl_ttrpc_client_connect_retry(address, left < 500 ? left : 500, err);
            if (!c) {
                if (err->code == CL_EINVAL) {
                    cl_err_prefix(err, "agent channel");
                    return NULL;
                }
                continue;
            }
            connects++;
        }
        tries++;
        if (health_check(c, CHECK_TIMEOUT_MS, err) == 0)
            break;
        if (!no_answer(err)) { /* the connection failed (slirp closes it while the guest boots) */
            cl_debug("agent handshake: %s; connecting again", err->msg);
            cl_ttrpc_client_free(c);
            c = NULL;
            struct timespec ts = {0, 100 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    struct cl_shim_agent *a = calloc(1, sizeof *a);
    if (!a) {
        cl_ttrpc_client_free(c);
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    a->c = c;
    a->call_timeout_ms = call_timeout_ms;
    cl_debug("agent at %s ready after %u Health.Check tries", address, tries);
    return a;
}

void cl_shim_agent_free(struct cl_shim_agent *a)
{
    if (!a)
        return;
    cl_ttrpc_client_free(a->c);
    free(a);
}

bool cl_shim_agent_dead(struct cl_shim_agent *a)
{
    return atomic_load(&a->dead);
}

int cl_shim_agent_call(struct cl_shim_agent *a, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *resp_desc, unsigned timeout_ms,
                       ProtobufCMessage **resp, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (resp)
        *resp = NULL;
    if (atomic_load(&a->dead))
        return cl_err_stage(err, CL_EIO, "agent", "agent %s: the agent channel is closed (VM gone)",
                            method);
    size_t len = 0;
    CL_AUTO(cl_bytes) *buf = NULL;
    if (cl_ttrpc_pack(req, &buf, &len, err) < 0)
        return cl_err_prefix(err, "agent %s: request", method);
    if (timeout_ms == 0)
        timeout_ms = a->call_timeout_ms;
    CL_AUTO(cl_bytes) *out = NULL;
    size_t out_len = 0;
    int code = 0;
    CL_AUTO(cl_str) *msg = NULL;
    if (cl_ttrpc_call_status(a->c, AGENT_SERVICE, method, buf, len, timeout_ms, &out, &out_len,
                             &code, &msg, err) < 0) {
        if (err->code == CL_EIO && !no_answer(err))
            atomic_store(&a->dead, true);
        return cl_err_prefix(err, "agent %s", method);
    }
    if (code != CL_TTRPC_OK)
        return cl_err_stage(err, cl_ttrpc_err_of_status(code), "agent", "agent %s: %s", method,
                            msg ? msg : "");
    if (resp_desc && resp) {
        *resp = protobuf_c_message_unpack(resp_desc, NULL, out_len, out);
        if (!*resp)
            return cl_err_set(err, CL_EPARSE, "agent %s: answer is not a %s", method,
                              resp_desc->short_name);
    }
    return 0;
}
