// SPDX-License-Identifier: Apache-2.0
/*
 * cloister-agent's request path: one ttrpc method table over every grpc.AgentService RPC
 * plus grpc.Health, and the order in which a request is handled:
 *
 *   unpack (budgeted) → id length check → serde JSON (CopyFile: its policy form) →
 *   policy gate (state patch applied on allow) → action from agent_int.h's table
 *
 * with upstream's exceptions: ReadStdout/ReadStderr run the action first and clear the data
 * when the policy denies; SetPolicy is the service's own (gate, then an atomic swap); Health
 * is never gated. Every reply is logged as "METHOD => status (file:line)" naming the check
 * that chose it.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "agent.h"
#include "agent.pb-c.h"
#include "agent_int.h"
#include "health.pb-c.h"
#include "net/ttrpc.h"
#include "types.pb-c.h"
#include "json/json.h"

/* ---- the RPC table ---- */

#define EMPTY google__protobuf__empty__descriptor
/* X(method, request descriptor, response descriptor), in agent.proto's order. */
#define AGENT_RPCS(X)                                                                              \
    X(CreateContainer, grpc__create_container_request__descriptor, EMPTY)                          \
    X(StartContainer, grpc__start_container_request__descriptor, EMPTY)                            \
    X(RemoveContainer, grpc__remove_container_request__descriptor, EMPTY)                          \
    X(ExecProcess, grpc__exec_process_request__descriptor, EMPTY)                                  \
    X(SignalProcess, grpc__signal_process_request__descriptor, EMPTY)                              \
    X(WaitProcess, grpc__wait_process_request__descriptor,                                         \
      grpc__wait_process_response__descriptor)                                                     \
    X(UpdateContainer, grpc__update_container_request__descriptor, EMPTY)                          \
    X(UpdateEphemeralMounts, grpc__update_ephemeral_mounts_request__descriptor, EMPTY)             \
    X(StatsContainer, grpc__stats_container_request__descriptor,                                   \
      grpc__stats_container_response__descriptor)                                                  \
    X(PauseContainer, grpc__pause_container_request__descriptor, EMPTY)                            \
    X(ResumeContainer, grpc__resume_container_request__descriptor, EMPTY)                          \
    X(RemoveStaleVirtiofsShareMounts,                                                              \
      grpc__remove_stale_virtiofs_share_mounts_request__descriptor, EMPTY)                         \
    X(GetDiagnosticData, grpc__get_diagnostic_data_request__descriptor,                            \
      grpc__get_diagnostic_data_response__descriptor)                                              \
    X(WriteStdin, grpc__write_stream_request__descriptor, grpc__write_stream_response__descriptor) \
    X(ReadStdout, grpc__read_stream_request__descriptor, grpc__read_stream_response__descriptor)   \
    X(ReadStderr, grpc__read_stream_request__descriptor, grpc__read_stream_response__descriptor)   \
    X(CloseStdin, grpc__close_stdin_request__descriptor, EMPTY)                                    \
    X(TtyWinResize, grpc__tty_win_resize_request__descriptor, EMPTY)                               \
    X(UpdateInterface, grpc__update_interface_request__descriptor, types__interface__descriptor)   \
    X(UpdateRoutes, grpc__update_routes_request__descriptor, grpc__routes__descriptor)             \
    X(ListInterfaces, grpc__list_interfaces_request__descriptor, grpc__interfaces__descriptor)     \
    X(ListRoutes, grpc__list_routes_request__descriptor, grpc__routes__descriptor)                 \
    X(AddARPNeighbors, grpc__add_arpneighbors_request__descriptor, EMPTY)                          \
    X(GetIPTables, grpc__get_iptables_request__descriptor,                                         \
      grpc__get_iptables_response__descriptor)                                                     \
    X(SetIPTables, grpc__set_iptables_request__descriptor,                                         \
      grpc__set_iptables_response__descriptor)                                                     \
    X(GetMetrics, grpc__get_metrics_request__descriptor, grpc__metrics__descriptor)                \
    X(MemAgentMemcgSet, grpc__mem_agent_memcg_config__descriptor, EMPTY)                           \
    X(MemAgentCompactSet, grpc__mem_agent_compact_config__descriptor, EMPTY)                       \
    X(CreateSandbox, grpc__create_sandbox_request__descriptor, EMPTY)                              \
    X(DestroySandbox, grpc__destroy_sandbox_request__descriptor, EMPTY)                            \
    X(OnlineCPUMem, grpc__online_cpumem_request__descriptor, EMPTY)                                \
    X(ReseedRandomDev, grpc__reseed_random_dev_request__descriptor, EMPTY)                         \
    X(GetGuestDetails, grpc__guest_details_request__descriptor,                                    \
      grpc__guest_details_response__descriptor)                                                    \
    X(MemHotplugByProbe, grpc__mem_hotplug_by_probe_request__descriptor, EMPTY)                    \
    X(SetGuestDateTime, grpc__set_guest_date_time_request__descriptor, EMPTY)                      \
    X(CopyFile, grpc__copy_file_request__descriptor, EMPTY)                                        \
    X(GetOOMEvent, grpc__get_oomevent_request__descriptor, grpc__oomevent__descriptor)             \
    X(AddSwap, grpc__add_swap_request__descriptor, EMPTY)                                          \
    X(AddSwapPath, grpc__add_swap_path_request__descriptor, EMPTY)                                 \
    X(GetVolumeStats, grpc__volume_stats_request__descriptor,                                      \
      grpc__volume_stats_response__descriptor)                                                     \
    X(ResizeVolume, grpc__resize_volume_request__descriptor, EMPTY)                                \
    X(SetPolicy, grpc__set_policy_request__descriptor, EMPTY)

#define RPC_ENTRY(m, rq, rs) {#m, &rq, &rs},
const struct cl_agent_rpc cl_agent_rpcs[] = {AGENT_RPCS(RPC_ENTRY)};
const size_t cl_agent_nrpcs = CL_ARRAY_LEN(cl_agent_rpcs);

#define RPC_INDEX(m, rq, rs) RPC_##m,
enum { AGENT_RPCS(RPC_INDEX) RPC_COUNT };

const struct cl_agent_rpc *cl_agent_rpc_find(const char *method)
{
    for (size_t i = 0; i < cl_agent_nrpcs; i++)
        if (strcmp(cl_agent_rpcs[i].method, method) == 0)
            return &cl_agent_rpcs[i];
    return NULL;
}

const struct cl_agent_rpc *cl_agent_rpc_by_request(const char *message)
{
    for (size_t i = 0; i < cl_agent_nrpcs; i++)
        if (strcmp(cl_agent_rpcs[i].req->short_name, message) == 0)
            return &cl_agent_rpcs[i];
    return NULL;
}

/* ---- the daemon ---- */

struct cl_agent {
    struct cl_agent_policy *policy;
    struct cl_agent_rt *rt;
    bool gate_only;
    cl_agent_act_fn act[RPC_COUNT];
    struct cl_ttrpc_server *srv;
};

static void log_reply(const char *method, int rc, const struct cl_err *err)
{
    if (rc == 0)
        cl_debug("%s => OK", method);
    else
        cl_info("%s => %s %s (%s:%d)", method, cl_err_name(rc), err->msg,
                err->file ? err->file : "?", err->line);
}

/* Ids travel into logs, paths and every policy regex: a host cannot make them huge. */
static int check_ids(const ProtobufCMessage *m, struct cl_err *err)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
            continue;
        if (strcmp(f->name, "container_id") != 0 && strcmp(f->name, "exec_id") != 0 &&
            strcmp(f->name, "sandbox_id") != 0)
            continue;
        const char *s = *(const char *const *)((const uint8_t *)m + f->offset);
        size_t n = s ? strnlen(s, CL_AGENT_MAX_ID + 1) : 0;
        if (n > CL_AGENT_MAX_ID)
            return cl_err_stage(err, CL_EINVAL, CL_AGENT_STAGE_DECODE,
                                "%s.%s: longer than %u bytes (CL_AGENT_MAX_ID)", d->short_name,
                                f->name, CL_AGENT_MAX_ID);
    }
    return 0;
}

/* Kata's agent gates CopyFile on PolicyCopyFileRequest: the file type spelled out, a
 * symlink's target as text, never the data. */
static json_t *copyfile_input(const Grpc__CopyFileRequest *r, struct cl_err *err)
{
    const char *type = "Unknown";
    switch (r->file_mode & S_IFMT) {
    case S_IFREG:
        type = "Regular";
        break;
    case S_IFDIR:
        type = "Directory";
        break;
    case S_IFLNK:
        type = "Symlink";
        break;
    }
    json_t *target = json_null();
    if (strcmp(type, "Symlink") == 0) {
        json_decref(target);
        target =
            r->data.len ? json_stringn((const char *)r->data.data, r->data.len) : json_string("");
        if (!target || (r->data.len && memchr(r->data.data, 0, r->data.len))) {
            json_decref(target);
            cl_err_stage(err, CL_EVERIFY, CL_AGENT_STAGE_JSON,
                         "CopyFileRequest: the symlink target is not UTF-8 text");
            return NULL;
        }
    }
    json_t *j =
        json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "path", r->path, "file_type",
                  type, "symlink_target", target, "file_size", (json_int_t)r->file_size,
                  "file_mode", (json_int_t)r->file_mode, "dir_mode", (json_int_t)r->dir_mode, "uid",
                  (json_int_t)r->uid, "gid", (json_int_t)r->gid, "offset", (json_int_t)r->offset);
    if (!j)
        cl_err_stage(err, CL_EPARSE, CL_AGENT_STAGE_JSON, "CopyFileRequest: path is not UTF-8");
    return j;
}

static json_t *policy_input(const ProtobufCMessage *m, struct cl_err *err)
{
    if (m->descriptor == &grpc__copy_file_request__descriptor)
        return copyfile_input((const Grpc__CopyFileRequest *)m, err);
    return cl_agent_pb_to_json(m, err);
}

static int set_policy(struct cl_agent *a, const Grpc__SetPolicyRequest *r, const json_t *input,
                      struct cl_err *err)
{
    int rc = cl_agent_policy_check(a->policy, "SetPolicyRequest", input, err);
    if (rc < 0)
        return rc;
    rc = cl_agent_policy_replace(a->policy, r->policy, strlen(r->policy), "SetPolicy", err);
    if (rc < 0 && rc != CL_ELIMIT && rc != CL_ENOMEM)
        err->code = rc = CL_EINVAL; /* INVALID_ARGUMENT: the text, not the agent, is at fault */
    return rc;
}

/* Response with ReadStreamResponse.data cleared: the redacted answer of a denied read. */
static int redacted_read(cl_bytes **resp, size_t *resp_len, struct cl_err *err)
{
    Grpc__ReadStreamResponse r;
    grpc__read_stream_response__init(&r);
    *resp_len = grpc__read_stream_response__get_packed_size(&r);
    *resp = NULL;
    return 0;
}

static int dispatch(struct cl_agent *a, unsigned idx, const uint8_t *req, size_t len,
                    cl_bytes **resp, size_t *resp_len, struct cl_err *err)
{
    const struct cl_agent_rpc *rpc = &cl_agent_rpcs[idx];
    const char *entry = rpc->req->short_name;
    *resp = NULL;
    *resp_len = 0;
    ProtobufCMessage *m = cl_agent_pb_unpack(rpc->req, req, len, err);
    if (!m)
        return err->code;
    int rc = check_ids(m, err);
    json_t *input = NULL;
    if (rc == 0) {
        input = policy_input(m, err);
        if (!input)
            rc = err->code;
    }
    cl_agent_act_fn act = a->act[idx];
    if (rc < 0) {
        /* unpacked, but not a request the gate can read */
    } else if (idx == RPC_SetPolicy) {
        rc = set_policy(a, (const Grpc__SetPolicyRequest *)m, input, err);
    } else if (idx == RPC_ReadStdout || idx == RPC_ReadStderr) {
        /* upstream's order: read first, then redact what the policy refuses */
        if (!act || a->gate_only) {
            rc = cl_err_stage(err, CL_EUNSUPPORTED, CL_AGENT_STAGE_ACTION,
                              "%s: no action in this agent", rpc->method);
        } else if ((rc = act(a->rt, m, resp, resp_len, err)) == 0) {
            struct cl_err pe = {0};
            int prc = cl_agent_policy_check(a->policy, entry, input, &pe);
            if (prc < 0) {
                cl_info("%s => OK, data redacted: %s", rpc->method, pe.msg);
                free(*resp);
                rc = redacted_read(resp, resp_len, err);
            }
        }
    } else if ((rc = cl_agent_policy_check(a->policy, entry, input, err)) < 0) {
        /* denied or undecidable: nothing is done */
    } else if (a->gate_only) {
        rc = cl_err_stage(err, CL_EUNSUPPORTED, CL_AGENT_STAGE_ACTION,
                          "%s: allowed by policy; gate-only agent", rpc->method);
    } else if (!act) {
        rc = cl_err_stage(err, CL_EUNSUPPORTED, CL_AGENT_STAGE_ACTION,
                          "%s: no action in this agent", rpc->method);
    } else {
        rc = act(a->rt, m, resp, resp_len, err);
    }
    log_reply(rpc->method, rc, err);
    json_decref(input);
    cl_agent_pb_free(m);
    return rc;
}

#define RPC_HANDLER(m, rq, rs)                                                                     \
    static int h_##m(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len, \
                     struct cl_err *err)                                                           \
    {                                                                                              \
        return dispatch(ctx, RPC_##m, req, len, resp, resp_len, err);                              \
    }
AGENT_RPCS(RPC_HANDLER)

/* ---- grpc.Health: never gated ---- */

static int h_check(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                   struct cl_err *err)
{
    ProtobufCMessage *m = cl_agent_pb_unpack(&grpc__check_request__descriptor, req, len, err);
    if (!m)
        return err->code;
    cl_agent_pb_free(m);
    Grpc__HealthCheckResponse r;
    grpc__health_check_response__init(&r);
    r.status = GRPC__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    return cl_ttrpc_pack(&r.base, resp, resp_len, err);
}

static int h_version(void *ctx, const uint8_t *req, size_t len, cl_bytes **resp, size_t *resp_len,
                     struct cl_err *err)
{
    ProtobufCMessage *m = cl_agent_pb_unpack(&grpc__check_request__descriptor, req, len, err);
    if (!m)
        return err->code;
    cl_agent_pb_free(m);
    Grpc__VersionCheckResponse r;
    grpc__version_check_response__init(&r);
    char gv[] = "ttrpc", av[] = CL_AGENT_VERSION;
    r.grpc_version = gv;
    r.agent_version = av;
    return cl_ttrpc_pack(&r.base, resp, resp_len, err);
}

#define METHOD_ENTRY(m, rq, rs) {CL_AGENT_SERVICE, #m, h_##m},
static const struct cl_ttrpc_method methods[] = {
    AGENT_RPCS(METHOD_ENTRY){CL_AGENT_HEALTH_SERVICE, "Check", h_check},
    {CL_AGENT_HEALTH_SERVICE, "Version", h_version},
};

/* ---- start / stop ---- */

/* Upstream's order: --policy FILE, init-data policy.rego, the compiled-in default. */
static struct cl_agent_policy *load_policy(const struct cl_agent_opts *o, struct cl_err *err)
{
    if (o->policy_file) {
        size_t n = 0;
        CL_AUTO(cl_bytes) *text = cl_file_read(o->policy_file, CL_AGENT_MAX_POLICY, &n, err);
        if (!text)
            return cl_err_prefix(err, "--policy"), NULL;
        CL_AUTO(cl_str) *origin = cl_strdupf("--policy %s", o->policy_file);
        return cl_agent_policy_new((const char *)text, n, origin ? origin : "--policy", err);
    }
    CL_AUTO(cl_str) *text = NULL;
    size_t n = 0;
    struct cl_err ie = {0};
    int rc = cl_agent_initdata_policy(o->initdata_device, &text, &n, &ie);
    if (rc < 0 && rc != CL_ENOTFOUND) {
        if (err)
            *err = ie;
        return NULL;
    }
    if (rc == 0 && text)
        return cl_agent_policy_new(text, n, "init-data policy.rego", err);
    cl_info("no policy in --policy or init-data (%s): the compiled-in default allows every request",
            rc < 0 ? ie.msg : "init-data has no policy.rego");
    CL_AUTO(cl_str) *def = cl_agent_default_policy();
    if (!def)
        return cl_err_set(err, CL_ENOMEM, "out of memory"), NULL;
    return cl_agent_policy_new(def, strlen(def), "the compiled-in default", err);
}

struct cl_agent *cl_agent_start(const struct cl_agent_opts *o, struct cl_err *err)
{
    struct cl_agent *a = calloc(1, sizeof *a);
    if (!a)
        return cl_err_set(err, CL_ENOMEM, "out of memory"), NULL;
    a->gate_only = o->gate_only;
    const struct cl_agent_action *acts = o->actions ? o->actions : cl_agent_actions;
    size_t nacts = o->actions ? o->nactions : cl_agent_nactions;
    for (size_t i = 0; i < nacts; i++) {
        const struct cl_agent_rpc *rpc = cl_agent_rpc_find(acts[i].method);
        if (!rpc) {
            cl_err_set(err, CL_EINVAL, "action table: no RPC named %s", acts[i].method);
            goto fail;
        }
        a->act[rpc - cl_agent_rpcs] = acts[i].fn;
    }
    if (!(a->policy = load_policy(o, err)))
        goto fail;
    if (!o->gate_only) {
        struct cl_agent_rt_config cfg = {
            .run_dir = o->run_dir ? o->run_dir : "/run/kata-containers",
            .runc = o->runc ? o->runc : "runc",
            .cdh_addr = o->cdh_addr ? o->cdh_addr : "unix:///run/confidential-containers/cdh.sock",
        };
        if (!(a->rt = cl_agent_rt_new(&cfg, err)))
            goto fail;
    }
    const char *listen = o->listen ? o->listen : CL_AGENT_DEFAULT_LISTEN;
    if (!(a->srv = cl_ttrpc_server_start(listen, methods, CL_ARRAY_LEN(methods), a, err)))
        goto fail;
    cl_info("cloister-agent %s listening on %s%s", CL_AGENT_VERSION, listen,
            o->gate_only ? " (gate only)" : "");
    return a;
fail:
    cl_agent_stop(a);
    return NULL;
}

void cl_agent_stop(struct cl_agent *a)
{
    if (!a)
        return;
    /* blocked calls (WaitProcess, GetOOMEvent) return before the server waits for them */
    if (a->rt)
        cl_agent_rt_shutdown(a->rt);
    cl_ttrpc_server_stop(a->srv);
    cl_agent_rt_free(a->rt);
    cl_agent_policy_free(a->policy);
    free(a);
}
