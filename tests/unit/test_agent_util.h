/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers for the agent tests that talk to a real cloister-agent process: spawn the built
 * binary on a unix socket in a fresh folder, connect a ttrpc client, send a request written
 * as serde JSON and classify the answer. Header-only (static functions) so that each test
 * program stays one file plus this.
 */
#ifndef TEST_AGENT_UTIL_H
#define TEST_AGENT_UTIL_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "net/ttrpc.h"
#include "json/json.h"

struct agent_proc {
    pid_t pid;
    char dir[256];
    char addr[300];
    struct cl_ttrpc_client *c;
};

static inline const char *agent_bin(void)
{
    static char path[1024];
    const char *b = getenv("CLOISTER_BUILD");
    snprintf(path, sizeof path, "%s/src/cmd/cloister-agent", b ? b : "build");
    return path;
}

static inline const char *vectors_root(void)
{
    const char *v = getenv("CLOISTER_VECTORS");
    if (!v || !*v)
        v = getenv("CLOISTER_VECTORS_DEFAULT");
    static char probe[1024];
    struct stat st;
    snprintf(probe, sizeof probe, "%s/kata-policy", v ? v : "/nonexistent");
    return v && stat(probe, &st) == 0 ? v : NULL;
}

static inline void agent_connect(struct agent_proc *a)
{
    struct cl_err err = {0};
    for (int i = 0; i < 200 && !a->c; i++) {
        a->c = cl_ttrpc_client_connect(a->addr, &err);
        if (!a->c) {
            int st;
            if (waitpid(a->pid, &st, WNOHANG) == a->pid) {
                a->pid = 0;
                return;
            }
            usleep(25000);
        }
    }
}

/* Starts cloister-agent with extra args (NULL-terminated). 0 or -1. */
static inline int agent_spawn(struct agent_proc *a, const char *const *extra)
{
    memset(a, 0, sizeof *a);
    snprintf(a->dir, sizeof a->dir, "/tmp/cl-agent-test-XXXXXX");
    if (!mkdtemp(a->dir))
        return -1;
    snprintf(a->addr, sizeof a->addr, "unix:%s/agent.sock", a->dir);
    const char *argv[32] = {agent_bin(), "--listen", a->addr, "-q"};
    size_t n = 4;
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    a->pid = fork();
    if (a->pid < 0)
        return -1;
    if (a->pid == 0) {
        /* a failed assertion must not leave the agent holding the test's output open */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    agent_connect(a);
    return a->c ? 0 : -1;
}

/* Reconnects after the agent dropped the connection (hostile frames). */
static inline void agent_reconnect(struct agent_proc *a)
{
    cl_ttrpc_client_free(a->c);
    a->c = NULL;
    agent_connect(a);
}

/* Stops the agent; returns its exit status (or -1 when it died of a signal). */
static inline int agent_stop(struct agent_proc *a)
{
    int st = 0, rc = -1;
    cl_ttrpc_client_free(a->c);
    a->c = NULL;
    if (a->pid > 0) {
        kill(a->pid, SIGTERM);
        if (waitpid(a->pid, &st, 0) == a->pid)
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    char sock[320];
    snprintf(sock, sizeof sock, "%s/agent.sock", a->dir);
    unlink(sock);
    rmdir(a->dir);
    return rc;
}

enum verdict { V_ALLOW, V_DENY, V_ERROR, V_OTHER };
CL_UNUSED static const char *const verdict_names[] = {"allow", "deny", "error", "other"};

/* One unary call with raw payload; *code = the ttrpc status (0 OK), -1 on transport failure. */
static inline int agent_call_raw(struct agent_proc *a, const char *service, const char *method,
                                 const void *buf, size_t len, int *code, char *msg, size_t msglen,
                                 cl_bytes **resp, size_t *resp_len)
{
    struct cl_err err = {0};
    cl_bytes *r = NULL;
    cl_str *m = NULL;
    size_t rl = 0;
    int rc = cl_ttrpc_call_status(a->c, service, method, buf, len, 30000, &r, &rl, code, &m, &err);
    if (rc < 0)
        *code = -1;
    if (msg && msglen) {
        const char *src = rc < 0 ? err.msg : m ? m : "";
        size_t n = strnlen(src, msglen - 1);
        memcpy(msg, src, n);
        msg[n] = 0;
    }
    free(m);
    if (resp) {
        *resp = r;
        *resp_len = rl;
    } else {
        free(r);
    }
    return rc;
}

/* Sends request JSON `req` as the RPC whose request message is `kind`, against a --gate-only
 * agent: UNIMPLEMENTED "allowed by policy" = allow, PERMISSION_DENIED = deny, INTERNAL = error. */
static inline enum verdict agent_decide(struct agent_proc *a, const char *kind, const json_t *req,
                                        char *msg, size_t msglen)
{
    const struct cl_agent_rpc *rpc = cl_agent_rpc_by_request(kind);
    struct cl_err err = {0};
    if (!rpc) {
        snprintf(msg, msglen, "no RPC takes %s", kind);
        return V_OTHER;
    }
    ProtobufCMessage *m = cl_agent_json_to_pb(rpc->req, req, CL_AGENT_J2P_LENIENT, &err);
    if (!m) {
        snprintf(msg, msglen, "json_to_pb: %s", err.msg);
        return V_OTHER;
    }
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *wire = malloc(n ? n : 1);
    n = protobuf_c_message_pack(m, wire);
    cl_agent_pb_free(m);
    int code = 0;
    agent_call_raw(a, CL_AGENT_SERVICE, rpc->method, wire, n, &code, msg, msglen, NULL, NULL);
    free(wire);
    if (code == CL_TTRPC_UNIMPLEMENTED && strstr(msg, "allowed by policy"))
        return V_ALLOW;
    if (code == CL_TTRPC_PERMISSION_DENIED)
        return V_DENY;
    if (code == CL_TTRPC_INTERNAL)
        return V_ERROR;
    return V_OTHER;
}

#endif
