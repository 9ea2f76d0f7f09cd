/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy decision latency inside cloister-agent, per request kind: the recorded requests of
 * a regorus-kata scenario (real generated policy) and the genpolicy testcases (current
 * rules.rego, synthetic policy data), encoded to protobuf once, then timed through what the
 * agent does before an action: unpack (budgeted) → serde JSON → policy gate. Prints p50 and
 * p99 per kind and for each stage on the largest kind.
 *
 * usage: agent_bench VECTORS_DIR [ITERATIONS] [SCENARIO]
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "json/json.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct sample {
    const struct cl_agent_rpc *rpc;
    uint8_t *wire;
    size_t len;
};

/* The CopyFile vectors are in the policy form; the wire carries mode bits and data. */
static json_t *wire_json(const char *kind, const json_t *req)
{
    json_t *w = json_deep_copy(req);
    if (strcmp(kind, "CopyFileRequest") == 0) {
        const char *t = json_string_value(json_object_get(req, "file_type"));
        json_int_t bits = !t                            ? 0
                          : strcmp(t, "Regular") == 0   ? 0100000
                          : strcmp(t, "Directory") == 0 ? 0040000
                          : strcmp(t, "Symlink") == 0   ? 0120000
                                                        : 0;
        json_int_t mode = json_integer_value(json_object_get(req, "file_mode"));
        json_object_set_new(w, "file_mode", json_integer(t ? (mode & 07777) | bits : mode));
        json_t *target = json_object_get(req, "symlink_target");
        if (json_is_string(target))
            json_object_set(w, "data", target);
    }
    return w;
}

static int encode(const char *kind, const json_t *req, struct sample *s)
{
    struct cl_err err = {0};
    s->rpc = cl_agent_rpc_by_request(kind);
    if (!s->rpc)
        return -1;
    json_t *w = wire_json(kind, req);
    ProtobufCMessage *m = cl_agent_json_to_pb(s->rpc->req, w, CL_AGENT_J2P_LENIENT, &err);
    json_decref(w);
    if (!m)
        return -1;
    s->len = protobuf_c_message_get_packed_size(m);
    s->wire = malloc(s->len + 1);
    s->len = protobuf_c_message_pack(m, s->wire);
    cl_agent_pb_free(m);
    return 0;
}

/* One decision as the service makes it; CopyFile's policy form is built by the service and
 * timed here through the plain JSON walk (same cost class). */
static void decide(struct cl_agent_policy *p, const struct sample *s, uint64_t t[3])
{
    struct cl_err err = {0};
    uint64_t t0 = now_ns();
    ProtobufCMessage *m = cl_agent_pb_unpack(s->rpc->req, s->wire, s->len, &err);
    uint64_t t1 = now_ns();
    json_t *in = m ? cl_agent_pb_to_json(m, &err) : NULL;
    uint64_t t2 = now_ns();
    if (in)
        (void)!cl_agent_policy_check(p, s->rpc->req->short_name, in, &err);
    uint64_t t3 = now_ns();
    t[0] = t1 - t0;
    t[1] = t2 - t1;
    t[2] = t3 - t2;
    json_decref(in);
    cl_agent_pb_free(m);
}

static void run(const char *title, const char *policy_path, struct sample *ss, size_t n,
                size_t iters)
{
    struct cl_err err = {0};
    size_t plen = 0;
    cl_bytes *text = cl_file_read(policy_path, CL_AGENT_MAX_POLICY, &plen, &err);
    struct cl_agent_policy *p =
        text ? cl_agent_policy_new((const char *)text, plen, policy_path, &err) : NULL;
    free(text);
    if (!p) {
        fprintf(stderr, "%s: %s\n", policy_path, err.msg);
        return;
    }
    printf("== %s\n", title);
    /* one row per kind: every sample of that kind, round robin, iters decisions in all */
    const char *done[64];
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        const char *kind = ss[i].rpc->req->short_name;
        bool seen = false;
        for (size_t k = 0; k < nd; k++)
            seen |= strcmp(done[k], kind) == 0;
        if (seen || nd == 64)
            continue;
        done[nd++] = kind;
        size_t idx[512], ni = 0;
        for (size_t j = 0; j < n && ni < 512; j++)
            if (strcmp(ss[j].rpc->req->short_name, kind) == 0)
                idx[ni++] = j;
        uint64_t *tot = malloc(iters * sizeof *tot), *st[3];
        for (int k = 0; k < 3; k++)
            st[k] = malloc(iters * sizeof *st[k]);
        size_t bytes = 0;
        for (size_t it = 0; it < iters; it++) {
            uint64_t t[3];
            const struct sample *s = &ss[idx[it % ni]];
            decide(p, s, t);
            bytes += s->len;
            tot[it] = t[0] + t[1] + t[2];
            for (int k = 0; k < 3; k++)
                st[k][it] = t[k];
        }
        qsort(tot, iters, sizeof *tot, cmp_u64);
        for (int k = 0; k < 3; k++)
            qsort(st[k], iters, sizeof *st[k], cmp_u64);
        printf("%-30s n=%-3zu %6zu B  p50 %8.1f us  p99 %8.1f us   (decode %.1f, json %.1f, rego "
               "%.1f us p50)\n",
               kind, ni, bytes / iters, (double)tot[iters / 2] / 1e3,
               (double)tot[iters * 99 / 100] / 1e3, (double)st[0][iters / 2] / 1e3,
               (double)st[1][iters / 2] / 1e3, (double)st[2][iters / 2] / 1e3);
        free(tot);
        for (int k = 0; k < 3; k++)
            free(st[k]);
    }
    cl_agent_policy_free(p);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: agent_bench VECTORS_DIR [ITERATIONS] [SCENARIO]\n");
        return 2;
    }
    size_t iters = argc > 2 ? (size_t)atol(argv[2]) : 300;
    if (iters < 10)
        iters = 10;
    const char *scenario = argc > 3 ? argv[3] : "pod-exec";
    cl_log_set_level(CL_LOG_ERROR);
    static struct sample ss[2048];
    size_t n = 0;
    char path[1024], pol[1024];

    /* a real generated policy and the requests recorded with it */
    snprintf(path, sizeof path, "%s/kata-policy/regorus-kata/%s/cases.jsonl", argv[1], scenario);
    snprintf(pol, sizeof pol, "%s/kata-policy/regorus-kata/%s/policy.rego", argv[1], scenario);
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    while (f && getline(&line, &cap, f) > 0 && n < 2048) {
        json_error_t je;
        json_t *c = json_loads(line, 0, &je);
        const char *ep = json_string_value(json_object_get(c, "ep"));
        if (ep && encode(ep, json_object_get(c, "input"), &ss[n]) == 0)
            n++;
        json_decref(c);
    }
    free(line);
    if (f)
        fclose(f);
    char title[256];
    snprintf(title, sizeof title,
             "regorus-kata/%s (Rego v0 generated policy), %zu decisions per kind", scenario, iters);
    run(title, pol, ss, n, iters);
    for (size_t i = 0; i < n; i++)
        free(ss[i].wire);

    /* current rules.rego with synthetic policy data: the genpolicy testcases it can decide */
    n = 0;
    static const char *const dirs[] = {"copyfile", "addarpneighbors", "updateinterface",
                                       "updateroutes", "createsandbox"};
    for (size_t d = 0; d < CL_ARRAY_LEN(dirs); d++) {
        snprintf(path, sizeof path,
                 "%s/kata-policy/derived/genpolicy-testcases-normalized/%s/testcases.json", argv[1],
                 dirs[d]);
        json_error_t je;
        json_t *cases = json_load_file(path, 0, &je);
        size_t k;
        json_t *c;
        json_array_foreach(cases, k, c)
        {
            if (n < 2048 && encode(json_string_value(json_object_get(c, "kind")),
                                   json_object_get(c, "request"), &ss[n]) == 0)
                n++;
        }
        json_decref(cases);
    }
    snprintf(pol, sizeof pol, "%s/kata-policy/derived/synthetic-policy/policy-no-containers.rego",
             argv[1]);
    snprintf(title, sizeof title,
             "genpolicy rules.rego (v1, synthetic data), %zu decisions per kind", iters);
    run(title, pol, ss, n, iters);
    for (size_t i = 0; i < n; i++)
        free(ss[i].wire);
    return 0;
}
