/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seam inside cloister-agent between the request path (service.c: unpack → serde JSON →
 * policy gate, owned by the agent-policy side) and the container actions (runc, stdio,
 * CopyFile, network, image pull: runtime.c and friends, owned by the agent-runtime side).
 * The service calls an action only after the policy allowed the request; ReadStdout and
 * ReadStderr are the exception (action first, then the gate, data cleared on deny).
 * SetPolicy, grpc.Health and the policy itself belong to the service, never to an action.
 *
 * An RPC with no entry in cl_agent_actions is answered UNIMPLEMENTED after the gate.
 */
#ifndef CL_AGENT_INT_H
#define CL_AGENT_INT_H

#include <protobuf-c/protobuf-c.h>

#include "base/base.h"

/* Sandbox, containers and processes: opaque to the service. */
struct cl_agent_rt;

/* Filled by cloister-agent's command line; every string borrowed for the runtime's life. */
struct cl_agent_rt_config {
    const char *run_dir;  /* "/run/kata-containers" */
    const char *runc;     /* "runc" */
    const char *cdh_addr; /* "unix:///run/confidential-containers/cdh.sock" */
};

/* Returns new or NULL (err says why: the run folder, runc, ...). */
struct cl_agent_rt *cl_agent_rt_new(const struct cl_agent_rt_config *cfg, struct cl_err *err);
/* Wakes every blocked call (WaitProcess, GetOOMEvent, stdio) and makes new ones fail, so that
 * the ttrpc server can be stopped before cl_agent_rt_free. Idempotent; NULL is fine. */
void cl_agent_rt_shutdown(struct cl_agent_rt *rt);
/* NULL is fine. Stops every process the runtime started. */
void cl_agent_rt_free(struct cl_agent_rt *rt);

/*
 * An action runs after the gate allowed the request. req is the unpacked request (borrowed,
 * of the RPC's request type); *resp = packed response message (new; NULL with *resp_len 0
 * for google.protobuf.Empty). Returns 0 or a negative CL_E* with err set; the ttrpc server
 * maps the code to a status (INTERFACES.md §1). Called from several threads at once.
 */
typedef int (*cl_agent_act_fn)(struct cl_agent_rt *rt, const ProtobufCMessage *req, cl_bytes **resp,
                               size_t *resp_len, struct cl_err *err);

struct cl_agent_action {
    const char *method; /* RPC name: "CreateContainer" */
    cl_agent_act_fn fn;
};

/* By RPC name; cl_agent_nactions entries (the array may hold a terminator beyond them). */
extern const struct cl_agent_action cl_agent_actions[];
extern const size_t cl_agent_nactions;

#endif
