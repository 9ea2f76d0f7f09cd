// SPDX-License-Identifier: Apache-2.0
/*
 * The stand-in runtime of cloister-agent while the container actions live elsewhere: no
 * action at all, so every gated RPC that the policy allows is answered UNIMPLEMENTED by the
 * service. Built only when src/agent/runtime.c is absent; the runtime's own table replaces
 * this file (see agent_int.h).
 */
#include "agent_int.h"

struct cl_agent_rt {
    int unused;
};

/* A terminator only: standard C has no empty arrays. */
const struct cl_agent_action cl_agent_actions[] = {{NULL, NULL}};
const size_t cl_agent_nactions = 0;

struct cl_agent_rt *cl_agent_rt_new(const struct cl_agent_rt_config *cfg, struct cl_err *err)
{
    struct cl_agent_rt *rt = calloc(1, sizeof *rt);
    if (!rt)
        cl_err_set(err, CL_ENOMEM, "agent runtime: out of memory");
    return rt;
}

void cl_agent_rt_shutdown(struct cl_agent_rt *rt) {}

void cl_agent_rt_free(struct cl_agent_rt *rt)
{
    free(rt);
}
