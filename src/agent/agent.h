/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister-agent: a drop-in for the Kata Containers agent as Confidential Containers runs it.
 * It serves the ttrpc services grpc.AgentService and grpc.Health (protos/kata/) and
 * filters every AgentService request through a Rego policy the way Kata's agent does:
 *
 *   ttrpc frame → unpack (pbjson.h, budgeted) → serde JSON → policy gate → action (agent_int.h)
 *
 * The gate queries data.agent_policy.<RequestMessage> with the request JSON as input; the
 * value is a boolean or {"allowed": bool, "ops": [RFC 6902]}; the ops are applied to the
 * whole data document when the request is allowed, before the action runs. Undefined is an
 * error (INTERNAL) unless data.agent_policy.AllowRequestsFailingPolicy is true; a denial is
 * PERMISSION_DENIED "<Request> is blocked by policy: <prints>" and nothing is done.
 *
 * Everything the host sends is bounded by the limits below, by pbjson.h's, and by ttrpc's
 * 4 MiB frame cap.
 */
#ifndef CL_AGENT_H
#define CL_AGENT_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>

#include "agent/pbjson.h"
#include "base/base.h"

#define CL_AGENT_SERVICE "grpc.AgentService"
#define CL_AGENT_HEALTH_SERVICE "grpc.Health"
#define CL_AGENT_DEFAULT_LISTEN "vsock://-1:1024" /* Kata's agent port */
#define CL_AGENT_VERSION "0.1.0"

#define CL_AGENT_MAX_POLICY (16u << 20) /* bytes of policy text (file, init-data, SetPolicy) */
#define CL_AGENT_MAX_PRINTS (64u << 10) /* bytes of print() output kept per decision */
#define CL_AGENT_MAX_ID 4096            /* bytes of a container/exec id before the gate */
#define CL_AGENT_MAX_INITDATA_SCAN 64   /* /dev/vd* devices looked at */

/* Failure stages (cl_err.stage) besides pbjson.h's decode and json. */
#define CL_AGENT_STAGE_POLICY "policy"
#define CL_AGENT_STAGE_ACTION "action"
#define CL_AGENT_STAGE_INITDATA "initdata"

/* ---- the RPC table ---- */

struct cl_agent_rpc {
    const char *method;                    /* "CreateContainer" */
    const ProtobufCMessageDescriptor *req; /* its request message; req->short_name = policy entry */
    const ProtobufCMessageDescriptor *resp; /* its response message */
};
extern const struct cl_agent_rpc cl_agent_rpcs[];
extern const size_t cl_agent_nrpcs;
/* By RPC name; NULL when unknown. Returns borrowed. */
const struct cl_agent_rpc *cl_agent_rpc_find(const char *method);
/* The first RPC whose request message is named `message` ("ReadStreamRequest"). */
const struct cl_agent_rpc *cl_agent_rpc_by_request(const char *message);

/* ---- the policy (policy.c) ---- */

struct cl_agent_policy;

/*
 * Compiles policy text (borrowed) into a new engine with data {"pstate": {}}: Rego v1 first,
 * then v0 with a warning. `origin` names the source in logs ("--policy /etc/x.rego").
 * Returns new, or NULL with EPARSE (rego_parse_error ... line:col), EINVAL (compile error) or
 * ELIMIT (beyond CL_AGENT_MAX_POLICY).
 */
struct cl_agent_policy *cl_agent_policy_new(const char *text, size_t len, const char *origin,
                                            struct cl_err *err);
void cl_agent_policy_free(struct cl_agent_policy *p);

/*
 * The gate for one request: `entry` = request message name, input borrowed. 0 = allowed (and
 * the state ops applied); CL_EDENIED with "<entry> is blocked by policy: <prints>"; CL_EVERIFY
 * "<entry>: internal error ..." for an undefined value, an engine error, an unexpected value
 * shape or a failing state patch (the ttrpc server answers INTERNAL). Thread-safe: decisions
 * are serialised, as upstream's are.
 */
CL_MUST_CHECK int cl_agent_policy_check(struct cl_agent_policy *p, const char *entry,
                                        const json_t *input, struct cl_err *err);
/*
 * SetPolicy: builds a new engine from text and swaps it in atomically (decisions in flight
 * finish on the old one, later ones see the new one; pstate starts empty). On any error the
 * old policy stays: EPARSE/EINVAL as cl_agent_policy_new.
 */
CL_MUST_CHECK int cl_agent_policy_replace(struct cl_agent_policy *p, const char *text, size_t len,
                                          const char *origin, struct cl_err *err);
/* Whether data.agent_policy.AllowRequestsFailingPolicy evaluated to true (read at load). */
bool cl_agent_policy_allows_failures(struct cl_agent_policy *p);
/* The current data document (returns new); tests read pstate through it. */
json_t *cl_agent_policy_data(struct cl_agent_policy *p);

/* The compiled-in default policy text (returns new): every request in cl_agent_rpcs allowed,
 * AllowRequestsFailingPolicy false — Kata's allow-all, without the entries that file lacks. */
cl_str *cl_agent_default_policy(void);

/* ---- init-data (initdata.c) ---- */

/*
 * Finds the init-data block device: `device` when non-NULL, else the first /dev/vd* (sorted,
 * at most CL_AGENT_MAX_INITDATA_SCAN) that starts with "initdata". Reads and parses it with
 * the attestation agent's init-data code (src/aa/initdata.c) and returns its policy.rego value
 * in *policy (new; NULL when the document has none). ENOTFOUND when no device carries the
 * magic; EPARSE/ELIMIT for a device that does but is malformed (never silently skipped).
 */
CL_MUST_CHECK int cl_agent_initdata_policy(const char *device, cl_str **policy, size_t *len,
                                           struct cl_err *err);

/* ---- the daemon (service.c) ---- */

struct cl_agent_action; /* agent_int.h */

struct cl_agent_opts {
    const char *listen;          /* ttrpc address; NULL: CL_AGENT_DEFAULT_LISTEN */
    const char *policy_file;     /* --policy */
    const char *initdata_device; /* --initdata-device (tests); NULL: scan /dev/vd* */
    bool gate_only;              /* --gate-only: decide, never act (allowed → UNIMPLEMENTED) */
    const char *run_dir;         /* passed to the runtime */
    const char *runc;
    const char *cdh_addr;
    /* Tests of the service's ordering only: an action table used instead of the linked
     * cl_agent_actions (NULL: the linked one). */
    const struct cl_agent_action *actions;
    size_t nactions;
};

struct cl_agent;
/* Loads the policy in upstream's order (--policy, init-data policy.rego, the compiled-in
 * default), creates the runtime and starts serving. Returns new or NULL. */
struct cl_agent *cl_agent_start(const struct cl_agent_opts *opts, struct cl_err *err);
void cl_agent_stop(struct cl_agent *a);

#endif
