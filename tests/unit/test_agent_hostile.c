/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A hostile host against a running cloister-agent (the built binary, gate-only, with the
 * genpolicy CoCo rules when the vectors are present, else the default policy): oversized and
 * malformed frames, truncated protobuf, unknown services and methods, CopyFile paths that
 * escape, a 1 MB container id, huge maps and repeated floods. Each gets an error status (or a
 * dropped connection for frames that are not ttrpc), never a crash; after every case the
 * agent must still answer grpc.Health/Check, and it must exit cleanly at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cmocka.h>

#include "agent.pb-c.h"
#include "test_agent_util.h"

static struct agent_proc agent;
static char policy_path[1024];

static int setup(void **state)
{
    const char *root = vectors_root();
    const char *def[] = {"--gate-only", NULL};
    const char *pol[] = {"--gate-only", "--policy", policy_path, NULL};
    if (root)
        snprintf(policy_path, sizeof policy_path,
                 "%s/kata-policy/derived/synthetic-policy/policy-no-containers.rego", root);
    return agent_spawn(&agent, root ? pol : def);
}

static int teardown(void **state)
{
    return agent_stop(&agent) == 0 ? 0 : -1;
}

static void assert_healthy(void)
{
    int st;
    assert_int_equal(waitpid(agent.pid, &st, WNOHANG), 0); /* still running */
    if (!agent.c)
        agent_reconnect(&agent);
    int code = -1;
    char msg[CL_ERR_MSG_MAX];
    cl_bytes *resp = NULL;
    size_t rl = 0;
    if (agent_call_raw(&agent, CL_AGENT_HEALTH_SERVICE, "Check", "", 0, &code, msg, sizeof msg,
                       &resp, &rl) < 0) {
        agent_reconnect(&agent); /* the previous case may have cost the connection */
        assert_int_equal(agent_call_raw(&agent, CL_AGENT_HEALTH_SERVICE, "Check", "", 0, &code, msg,
                                        sizeof msg, &resp, &rl),
                         0);
    }
    assert_int_equal(code, 0);
    /* HealthCheckResponse{status: SERVING} = 08 01 */
    assert_int_equal(rl, 2);
    assert_int_equal(resp[1], 1);
    free(resp);
}

static int call(const char *method, const void *buf, size_t len, char *msg, size_t n)
{
    int code = -1;
    agent_call_raw(&agent, CL_AGENT_SERVICE, method, buf, len, &code, msg, n, NULL, NULL);
    return code;
}

static int raw_connect(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(strlen(agent.dir) + sizeof "/agent.sock" <= sizeof sa.sun_path);
    memcpy(sa.sun_path, agent.dir, strlen(agent.dir));
    memcpy(sa.sun_path + strlen(agent.dir), "/agent.sock", sizeof "/agent.sock");
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Writes bytes on a fresh connection and reads whatever comes back until the agent closes
 * or 5 s pass; returns the number of bytes read. */
static size_t raw_exchange(const void *buf, size_t len)
{
    int fd = raw_connect();
    (void)!write(fd, buf, len);
    shutdown(fd, SHUT_WR);
    uint8_t rb[4096];
    size_t total = 0;
    ssize_t r;
    while ((r = read(fd, rb, sizeof rb)) > 0)
        total += (size_t)r;
    close(fd);
    return total;
}

static void test_frames(void **state)
{
    /* oversized: a header declaring 5 MiB */
    uint8_t hdr[CL_TTRPC_HEADER_LEN];
    struct cl_ttrpc_hdr h = {5u << 20, 1, CL_TTRPC_REQUEST, 0};
    cl_ttrpc_hdr_encode(&h, hdr);
    raw_exchange(hdr, sizeof hdr);
    assert_healthy();
    /* a header announcing more than is ever sent, then a hang-up */
    h.length = 1000;
    cl_ttrpc_hdr_encode(&h, hdr);
    raw_exchange(hdr, sizeof hdr);
    assert_healthy();
    /* garbage that is not a ttrpc.Request */
    uint8_t junk[CL_TTRPC_HEADER_LEN + 16];
    h.length = 16;
    cl_ttrpc_hdr_encode(&h, junk);
    memset(junk + CL_TTRPC_HEADER_LEN, 0xff, 16);
    raw_exchange(junk, sizeof junk);
    assert_healthy();
    /* an even stream id and an unknown frame type */
    h.length = 0;
    h.stream_id = 2;
    cl_ttrpc_hdr_encode(&h, hdr);
    raw_exchange(hdr, sizeof hdr);
    h.stream_id = 3;
    h.type = 9;
    cl_ttrpc_hdr_encode(&h, hdr);
    raw_exchange(hdr, sizeof hdr);
    assert_healthy();
}

static void test_unknown_calls(void **state)
{
    char msg[600];
    int code = -1;
    agent_call_raw(&agent, "grpc.NoSuchService", "Check", "", 0, &code, msg, sizeof msg, NULL,
                   NULL);
    assert_true(code == CL_TTRPC_NOT_FOUND || code == CL_TTRPC_UNIMPLEMENTED ||
                code == CL_TTRPC_INVALID_ARGUMENT);
    assert_int_not_equal(call("PullImage", "", 0, msg, sizeof msg), 0); /* removed from the API */
    assert_int_not_equal(call("createcontainer", "", 0, msg, sizeof msg), 0);
    assert_healthy();
}

static void test_bad_protobuf(void **state)
{
    char msg[600];
    static const uint8_t trunc[] = {0x0a, 0x7f, 'a'}; /* container_id declares 127 bytes */
    assert_int_equal(call("CreateContainer", trunc, sizeof trunc, msg, sizeof msg),
                     CL_TTRPC_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "malformed protobuf"));
    static const uint8_t wiretype[] = {0x32, 0x05, 0x08, 0x01}; /* OCI = 6 holding a bad message */
    assert_int_not_equal(call("CreateContainer", wiretype, sizeof wiretype, msg, sizeof msg), 0);
    static const uint8_t group[] = {0x0b, 0x0c}; /* deprecated group wire types */
    assert_int_equal(call("StartContainer", group, sizeof group, msg, sizeof msg),
                     CL_TTRPC_INVALID_ARGUMENT);
    static const uint8_t badutf8[] = {0x0a, 0x02, 0xc3, 0x28};
    assert_int_equal(call("StartContainer", badutf8, sizeof badutf8, msg, sizeof msg),
                     CL_TTRPC_INVALID_ARGUMENT);
    assert_healthy();
}

static uint8_t *pack_json(const char *method, json_t *j, size_t *len)
{
    struct cl_err err = {0};
    ProtobufCMessage *m =
        cl_agent_json_to_pb(cl_agent_rpc_find(method)->req, j, CL_AGENT_J2P_STRICT, &err);
    if (!m)
        fail_msg("%s", err.msg);
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *w = malloc(*len + 1);
    *len = protobuf_c_message_pack(m, w);
    cl_agent_pb_free(m);
    return w;
}

static void test_big_values(void **state)
{
    char msg[600];
    /* a 1 MB container id: refused before the policy sees it */
    size_t idlen = 1u << 20;
    char *id = malloc(idlen + 1);
    memset(id, 'a', idlen);
    id[idlen] = 0;
    json_t *j = json_pack("{s:s}", "container_id", id);
    size_t len;
    uint8_t *w = pack_json("StartContainer", j, &len);
    assert_int_equal(call("StartContainer", w, len, msg, sizeof msg), CL_TTRPC_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "CL_AGENT_MAX_ID"));
    free(w);
    json_decref(j);
    free(id);
    assert_healthy();
    /* maps built as protobuf directly (agent-ctl's JSON walk caps them too): 200 000
     * annotations (3.6 MB on the wire) are refused before the policy (CL_AGENT_MAX_REPEATED);
     * 10 000 are decided */
    static const size_t counts[] = {200000, 10000};
    for (size_t c = 0; c < 2; c++) {
        size_t n = counts[c];
        Grpc__Spec spec;
        grpc__spec__init(&spec);
        Grpc__Spec__AnnotationsEntry *ents = calloc(n, sizeof *ents);
        Grpc__Spec__AnnotationsEntry **ptrs = calloc(n, sizeof *ptrs);
        char(*keys)[16] = calloc(n, 16);
        char v[] = "v";
        for (size_t i = 0; i < n; i++) {
            grpc__spec__annotations_entry__init(&ents[i]);
            snprintf(keys[i], 16, "k%u", (unsigned)(i % 10000000));
            ents[i].key = keys[i];
            ents[i].value = v;
            ptrs[i] = &ents[i];
        }
        spec.n_annotations = n;
        spec.annotations = ptrs;
        Grpc__CreateContainerRequest req;
        grpc__create_container_request__init(&req);
        req.oci = &spec;
        len = grpc__create_container_request__get_packed_size(&req);
        assert_true(len < CL_TTRPC_MAX_PAYLOAD);
        w = malloc(len);
        grpc__create_container_request__pack(&req, w);
        int code = call("CreateContainer", w, len, msg, sizeof msg);
        if (c == 0) {
            assert_int_equal(code, CL_TTRPC_RESOURCE_EXHAUSTED);
            assert_non_null(strstr(msg, "CL_AGENT_MAX_REPEATED"));
        } else {
            assert_true(code == CL_TTRPC_PERMISSION_DENIED || code == CL_TTRPC_UNIMPLEMENTED);
        }
        free(w);
        free(ents);
        free(ptrs);
        free(keys);
        assert_healthy();
    }
    /* a flood of empty repeated messages: the unpack budget refuses it */
    len = CL_TTRPC_MAX_PAYLOAD - 64;
    w = malloc(len);
    for (size_t i = 0; i + 1 < len; i += 2) {
        w[i] = 0x1a; /* CreateSandboxRequest.storages */
        w[i + 1] = 0;
    }
    assert_int_equal(call("CreateSandbox", w, len & ~(size_t)1, msg, sizeof msg),
                     CL_TTRPC_RESOURCE_EXHAUSTED);
    free(w);
    assert_healthy();
    /* a payload over the frame cap */
    len = CL_TTRPC_MAX_PAYLOAD + 1;
    w = calloc(1, len);
    int code = -1;
    agent_call_raw(&agent, CL_AGENT_SERVICE, "CreateContainer", w, len, &code, msg, sizeof msg,
                   NULL, NULL);
    assert_int_not_equal(code, 0);
    free(w);
    assert_healthy();
}

static void test_copyfile_escapes(void **state)
{
    if (!vectors_root())
        skip(); /* the default policy allows every path; the runtime confines them */
    static const char *const bad[] = {
        "{\"path\":\"/run/kata-containers/shared/containers/../../../etc/"
        "shadow\",\"file_mode\":33188}",
        "{\"path\":\"/etc/shadow\",\"file_mode\":33188}",
        "{\"path\":\"../shadow\",\"file_mode\":33188}",
        "{\"path\":\"/run/kata-containers/shared/containers/x/"
        "lnk\",\"file_mode\":41471,\"data\":\"/etc/shadow\"}",
        "{\"path\":\"/run/kata-containers/shared/containers/x/"
        "lnk\",\"file_mode\":41471,\"data\":\"../../../etc\"}",
        "{\"path\":\"/run/kata-containers/shared/containers/x\",\"file_mode\":8592}", /* a character
                                                                                         device */
    };
    char msg[600];
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        json_error_t je;
        json_t *j = json_loads(bad[i], 0, &je);
        size_t len;
        uint8_t *w = pack_json("CopyFile", j, &len);
        int code = call("CopyFile", w, len, msg, sizeof msg);
        if (code != CL_TTRPC_PERMISSION_DENIED)
            fail_msg("%s: status %d %s", bad[i], code, msg);
        free(w);
        json_decref(j);
    }
    assert_healthy();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames),           cmocka_unit_test(test_unknown_calls),
        cmocka_unit_test(test_bad_protobuf),     cmocka_unit_test(test_big_values),
        cmocka_unit_test(test_copyfile_escapes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
