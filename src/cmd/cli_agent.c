/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cloister agent-ctl`: drive a Kata-API agent (cloister-agent or Kata's own) by hand or
 * from a script, as Kata's agent-ctl does: a request written as JSON in the policy's serde
 * shape (or any subset of it) is turned into protobuf, sent over ttrpc, and the response is
 * printed as JSON. A non-OK status is printed with its code and name and sets the exit status.
 */
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "cmd/cli.h"
#include "health.pb-c.h"
#include "net/ttrpc.h"
#include "json/json.h"

static const char *const help_text =
    "Usage: cloister agent-ctl --addr ADDR [--timeout MS] CALL [JSON | @FILE | -]\n"
    "       cloister agent-ctl list\n"
    "\n"
    "Sends one request to an agent serving grpc.AgentService / grpc.Health over ttrpc.\n"
    "  --addr ADDR    unix:PATH, vsock://CID:PORT or tcp://HOST:PORT\n"
    "  --timeout MS   whole-call deadline (default 50000)\n"
    "  CALL           an AgentService RPC (CreateContainer, CopyFile, ...), or Check / Version\n"
    "                 (grpc.Health)\n"
    "  JSON           the request in the Kata agent's serde JSON shape; missing keys take\n"
    "                 defaults, unknown keys are refused by name; enums by number or name,\n"
    "                 bytes as [0..255] or a string. Default {}. @FILE reads a file, - stdin.\n"
    "\n"
    "Prints the response as JSON. Exit status: 0 OK; for a non-OK status the line\n"
    "'status CODE NAME: message' goes to stderr and the status is 5 (PERMISSION_DENIED),\n"
    "6 (NOT_FOUND, UNIMPLEMENTED), 3 (INVALID_ARGUMENT), 8 (RESOURCE_EXHAUSTED), 1 otherwise;\n"
    "7 when the agent cannot be reached, 2 for usage errors.\n";

#define MAX_REQUEST_JSON (CL_TTRPC_MAX_PAYLOAD * 8u)

static const char *code_name(int code)
{
    static const char *const names[] = {"OK",
                                        "CANCELLED",
                                        "UNKNOWN",
                                        "INVALID_ARGUMENT",
                                        "DEADLINE_EXCEEDED",
                                        "NOT_FOUND",
                                        "ALREADY_EXISTS",
                                        "PERMISSION_DENIED",
                                        "RESOURCE_EXHAUSTED",
                                        "FAILED_PRECONDITION",
                                        "ABORTED",
                                        "OUT_OF_RANGE",
                                        "UNIMPLEMENTED",
                                        "INTERNAL",
                                        "UNAVAILABLE",
                                        "DATA_LOSS",
                                        "UNAUTHENTICATED"};
    return code >= 0 && (size_t)code < CL_ARRAY_LEN(names) ? names[code] : "?";
}

static int status_exit(int code)
{
    switch (code) {
    case CL_TTRPC_PERMISSION_DENIED:
        return cl_err_exit_code(CL_EDENIED);
    case CL_TTRPC_NOT_FOUND:
    case CL_TTRPC_UNIMPLEMENTED:
        return cl_err_exit_code(CL_ENOTFOUND);
    case CL_TTRPC_INVALID_ARGUMENT:
        return cl_err_exit_code(CL_EPARSE);
    case CL_TTRPC_RESOURCE_EXHAUSTED:
        return cl_err_exit_code(CL_ELIMIT);
    default:
        return 1;
    }
}

static json_t *read_request(const char *arg, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *buf = NULL;
    if (strcmp(arg, "-") == 0)
        buf = cl_file_read("/dev/stdin", MAX_REQUEST_JSON, &n, err);
    else if (arg[0] == '@')
        buf = cl_file_read(arg + 1, MAX_REQUEST_JSON, &n, err);
    else
        return cl_json_parse(arg, strlen(arg), CL_AGENT_MAX_DEPTH * 2, err);
    if (!buf)
        return NULL;
    return cl_json_parse((const char *)buf, n, CL_AGENT_MAX_DEPTH * 2, err);
}

int cl_cli_agent(int argc, char **argv)
{
    const char *addr = NULL, *call = NULL, *reqarg = "{}";
    unsigned timeout_ms = 0;
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(help_text, stdout);
            return 0;
        } else if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc) {
            addr = argv[++i];
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            uint64_t v = 0;
            struct cl_err e = {0};
            if (cl_parse_u64(argv[++i], 1, 3600000, &v, "--timeout", &e) < 0) {
                cl_cli_errf("cloister agent-ctl: %s", e.msg);
                return 2;
            }
            timeout_ms = (unsigned)v;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "cloister agent-ctl: unknown option '%s'\n\n%s", argv[i], help_text);
            return 2;
        } else if (pos == 0) {
            call = argv[i];
            pos++;
        } else if (pos == 1) {
            reqarg = argv[i];
            pos++;
        } else {
            fprintf(stderr, "cloister agent-ctl: unexpected argument '%s'\n\n%s", argv[i],
                    help_text);
            return 2;
        }
    }
    if (call && strcmp(call, "list") == 0) {
        for (size_t i = 0; i < cl_agent_nrpcs; i++)
            printf("%s.%s(%s) -> %s\n", CL_AGENT_SERVICE, cl_agent_rpcs[i].method,
                   cl_agent_rpcs[i].req->short_name, cl_agent_rpcs[i].resp->name);
        printf("%s.Check(CheckRequest) -> grpc.HealthCheckResponse\n", CL_AGENT_HEALTH_SERVICE);
        printf("%s.Version(CheckRequest) -> grpc.VersionCheckResponse\n", CL_AGENT_HEALTH_SERVICE);
        return 0;
    }
    if (!addr || !call) {
        fputs(help_text, stderr);
        return 2;
    }
    const char *service = CL_AGENT_SERVICE;
    const ProtobufCMessageDescriptor *reqd, *respd;
    const struct cl_agent_rpc *rpc = cl_agent_rpc_find(call);
    if (rpc) {
        reqd = rpc->req;
        respd = rpc->resp;
    } else if (strcmp(call, "Check") == 0 || strcmp(call, "Version") == 0) {
        service = CL_AGENT_HEALTH_SERVICE;
        reqd = &grpc__check_request__descriptor;
        respd = strcmp(call, "Check") == 0 ? &grpc__health_check_response__descriptor
                                           : &grpc__version_check_response__descriptor;
    } else {
        fprintf(stderr, "cloister agent-ctl: no RPC named '%s' (cloister agent-ctl list)\n", call);
        return 2;
    }
    struct cl_err e = {0};
    CL_AUTO(json_t) *j = read_request(reqarg, &e);
    if (!j) {
        cl_cli_errf("cloister agent-ctl: request: %s", e.msg);
        return cl_err_exit_code(e.code);
    }
    ProtobufCMessage *m = cl_agent_json_to_pb(reqd, j, CL_AGENT_J2P_STRICT, &e);
    if (!m) {
        cl_cli_errf("cloister agent-ctl: request %s: %s", reqd->short_name, e.msg);
        return cl_err_exit_code(e.code);
    }
    size_t n = protobuf_c_message_get_packed_size(m);
    CL_AUTO(cl_bytes) *wire = malloc(n ? n : 1);
    if (!wire) {
        cl_agent_pb_free(m);
        return 1;
    }
    n = protobuf_c_message_pack(m, wire);
    cl_agent_pb_free(m);
    struct cl_ttrpc_client *c = cl_ttrpc_client_connect(addr, &e);
    if (!c) {
        cl_cli_errf("cloister agent-ctl: %s", e.msg);
        return cl_err_exit_code(CL_EIO);
    }
    CL_AUTO(cl_bytes) *resp = NULL;
    CL_AUTO(cl_str) *msg = NULL;
    size_t resp_len = 0;
    int code = -1;
    int rc = cl_ttrpc_call_status(c, service, call, wire, n, timeout_ms, &resp, &resp_len, &code,
                                  &msg, &e);
    cl_ttrpc_client_free(c);
    if (rc < 0) {
        cl_cli_errf("cloister agent-ctl: %s", e.msg);
        return cl_err_exit_code(CL_EIO);
    }
    if (code != CL_TTRPC_OK) {
        cl_cli_errf("status %d %s: %s", code, code_name(code), msg ? msg : "");
        return status_exit(code);
    }
    ProtobufCMessage *r =
        cl_agent_pb_unpack(respd, resp ? resp : (const uint8_t *)"", resp_len, &e);
    if (!r) {
        cl_cli_errf("cloister agent-ctl: response: %s", e.msg);
        return cl_err_exit_code(e.code);
    }
    CL_AUTO(json_t) *out = cl_agent_pb_to_json(r, &e);
    cl_agent_pb_free(r);
    if (!out) {
        cl_cli_errf("cloister agent-ctl: response: %s", e.msg);
        return cl_err_exit_code(e.code);
    }
    char *text = json_dumps(out, JSON_INDENT(1) | JSON_ENCODE_ANY);
    if (text)
        puts(text);
    free(text);
    return 0;
}
