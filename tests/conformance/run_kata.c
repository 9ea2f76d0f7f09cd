/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Kata agent policy conformance: evaluates the Kata vectors the way the agent does.
 *   1. regorus-kata/<dir>/cases.jsonl against <dir>/policy.rego (Rego v0): every decision.
 *   2. derived/genpolicy-testcases-normalized/<dir>/testcases.json against
 *      derived/synthetic-policy/policy-no-containers.rego (Rego v1), in order on one engine,
 *      applying the JSON-Patch state ops of allowed requests to the data document.
 *   3. the kata/kata-opa default policies: allow-all, allow-all-except-exec-process,
 *      allow-set-policy (an undefined decision is an error, never an allow).
 * Prints pass/fail per group; exits 1 on any failure, 77 when the vectors are absent.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "rego/rego.h"
#include "json/json.h"

static int verbose;

enum decision { DENY, ALLOW, ERROR };

/* The agent's gate: value true/false, or {"allowed": bool, "ops": [...]} with ops applied to
 * the whole data document when allowed; undefined or any other shape is an error. */
static enum decision gate(struct cl_rego *e, const char *ep, const json_t *input, char *why,
                          size_t whylen)
{
    char q[256];
    snprintf(q, sizeof q, "data.agent_policy.%s", ep);
    struct cl_err err = {0};
    json_t *results = NULL;
    if (cl_rego_eval_query(e, q, input, &results, &err) < 0) {
        snprintf(why, whylen, "%s", err.msg);
        return ERROR;
    }
    enum decision d = ERROR;
    if (json_array_size(results) != 1) {
        snprintf(why, whylen, "%zu results", json_array_size(results));
        goto out;
    }
    json_t *v = json_object_get(
        json_array_get(json_object_get(json_array_get(results, 0), "expressions"), 0), "value");
    if (json_is_boolean(v)) {
        d = json_is_true(v) ? ALLOW : DENY;
    } else if (json_is_object(v) && json_is_boolean(json_object_get(v, "allowed"))) {
        d = json_is_true(json_object_get(v, "allowed")) ? ALLOW : DENY;
        json_t *ops = json_object_get(v, "ops");
        if (d == ALLOW && ops) {
            json_t *data = cl_rego_get_data(e);
            if (cl_rego_json_patch(&data, ops, &err) < 0 || cl_rego_set_data(e, data, &err) < 0) {
                snprintf(why, whylen, "state patch: %s", err.msg);
                d = ERROR;
            }
            json_decref(data);
        }
    } else {
        snprintf(why, whylen, "unexpected result type");
    }
out:
    json_decref(results);
    return d;
}

static struct cl_rego *load(const char *path, bool v0)
{
    struct cl_err err = {0};
    size_t n;
    char *text = (char *)cl_file_read(path, 32u << 20, &n, &err);
    if (!text) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    struct cl_rego *e = cl_rego_new(NULL);
    json_t *data = json_pack("{s:{}}", "pstate");
    if (cl_rego_add_module(e, "agent_policy", text, n, v0, &err) < 0 ||
        cl_rego_set_data(e, data, &err) < 0 || cl_rego_compile(e, &err) < 0) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        cl_rego_free(e);
        e = NULL;
    }
    json_decref(data);
    free(text);
    return e;
}

static long total_pass, total_fail;

static void report(const char *group, long p, long f)
{
    printf("%-48s pass %4ld fail %4ld\n", group, p, f);
    total_pass += p;
    total_fail += f;
}

static void run_regorus(const char *root)
{
    char *dirp = cl_strdupf("%s/kata-policy/regorus-kata", root);
    DIR *d = opendir(dirp);
    struct dirent *de;
    char *names[64];
    size_t nn = 0;
    while (d && (de = readdir(d)) && nn < 64) {
        if (de->d_name[0] == '.' || strstr(de->d_name, ".rego"))
            continue;
        names[nn++] = strdup(de->d_name);
    }
    if (d)
        closedir(d);
    for (size_t i = 0; i < nn; i++) {
        char *pol = cl_strdupf("%s/%s/policy.rego", dirp, names[i]);
        char *cases = cl_strdupf("%s/%s/cases.jsonl", dirp, names[i]);
        struct cl_rego *e = load(pol, true);
        long p = 0, f = 0;
        FILE *cf = fopen(cases, "r");
        char *line = NULL;
        size_t cap = 0;
        while (e && cf && getline(&line, &cap, cf) > 0) {
            json_error_t je;
            json_t *c = json_loads(line, 0, &je);
            if (!c)
                continue;
            const char *ep = json_string_value(json_object_get(c, "ep"));
            char why[600] = "";
            enum decision dd = gate(e, ep, json_object_get(c, "input"), why, sizeof why);
            bool want = json_is_true(json_object_get(c, "want"));
            if (dd != ERROR && (dd == ALLOW) == want) {
                p++;
            } else {
                f++;
                if (verbose)
                    printf("FAIL %s seq %lld %s: got %s %s\n", names[i],
                           (long long)json_integer_value(json_object_get(c, "seq")), ep,
                           dd == ERROR   ? "error"
                           : dd == ALLOW ? "allow"
                                         : "deny",
                           why);
            }
            json_decref(c);
        }
        free(line);
        if (cf)
            fclose(cf);
        if (!e)
            f++;
        char *g = cl_strdupf("regorus-kata/%s", names[i]);
        report(g, p, f);
        free(g);
        cl_rego_free(e);
        free(pol);
        free(cases);
        free(names[i]);
    }
    free(dirp);
}

static void run_genpolicy(const char *root)
{
    static const char *dirs[] = {"copyfile", "addarpneighbors", "updateinterface", "updateroutes",
                                 "createsandbox"};
    char *pol =
        cl_strdupf("%s/kata-policy/derived/synthetic-policy/policy-no-containers.rego", root);
    for (size_t i = 0; i < CL_ARRAY_LEN(dirs); i++) {
        char *tc =
            cl_strdupf("%s/kata-policy/derived/genpolicy-testcases-normalized/%s/testcases.json",
                       root, dirs[i]);
        struct cl_rego *e = load(pol, false);
        json_error_t je;
        json_t *cases = json_load_file(tc, 0, &je);
        long p = 0, f = 0;
        size_t k;
        json_t *c;
        json_array_foreach(cases, k, c)
        {
            const char *kind = json_string_value(json_object_get(c, "kind"));
            char why[600] = "";
            enum decision dd =
                e ? gate(e, kind, json_object_get(c, "request"), why, sizeof why) : ERROR;
            bool want = json_is_true(json_object_get(c, "allowed"));
            if ((dd == ALLOW) == want) {
                p++;
            } else {
                f++;
                if (verbose)
                    printf("FAIL %s #%zu %s (%s): got %s %s\n", dirs[i], k, kind,
                           json_string_value(json_object_get(c, "description")),
                           dd == ERROR   ? "error"
                           : dd == ALLOW ? "allow"
                                         : "deny",
                           why);
            }
        }
        if (!cases)
            f++;
        char *g = cl_strdupf("genpolicy/%s", dirs[i]);
        report(g, p, f);
        free(g);
        json_decref(cases);
        cl_rego_free(e);
        free(tc);
    }
    free(pol);
}

static void run_defaults(const char *root)
{
    struct {
        const char *file, *ep;
        enum decision want;
    } checks[] = {
        {"allow-all.rego", "CreateContainerRequest", ALLOW},
        {"allow-all.rego", "ExecProcessRequest", ALLOW},
        {"allow-all.rego", "SetPolicyRequest", ALLOW},
        {"allow-all-except-exec-process.rego", "ExecProcessRequest", DENY},
        {"allow-all-except-exec-process.rego", "CreateContainerRequest", ALLOW},
        {"allow-set-policy.rego", "SetPolicyRequest", ALLOW},
        {"allow-set-policy.rego", "CreateContainerRequest", ERROR},
        {"allow-set-policy.rego", "ExecProcessRequest", ERROR},
    };
    long p = 0, f = 0;
    json_t *in = json_object();
    for (size_t i = 0; i < CL_ARRAY_LEN(checks); i++) {
        char *path = cl_strdupf("%s/kata-policy/kata/kata-opa/%s", root, checks[i].file);
        struct cl_rego *e = load(path, false);
        char why[600] = "";
        enum decision d = e ? gate(e, checks[i].ep, in, why, sizeof why) : ERROR;
        if (e && d == checks[i].want) {
            p++;
        } else {
            f++;
            if (verbose)
                printf("FAIL %s %s: got %d %s\n", checks[i].file, checks[i].ep, (int)d, why);
        }
        cl_rego_free(e);
        free(path);
    }
    json_decref(in);
    report("kata-opa defaults", p, f);
}

int main(void)
{
    const char *vec = getenv("CLOISTER_VECTORS");
    if (!vec || !*vec)
        vec = getenv("CLOISTER_VECTORS_DEFAULT");
    struct stat st;
    char *probe = cl_strdupf("%s/kata-policy", vec ? vec : "/nonexistent");
    if (!vec || stat(probe, &st) != 0) {
        fprintf(stderr, "kata-policy vectors absent: skipping\n");
        free(probe);
        return 77;
    }
    free(probe);
    verbose = getenv("CLOISTER_REGO_VERBOSE") != NULL;
    run_regorus(vec);
    run_genpolicy(vec);
    run_defaults(vec);
    printf("TOTAL pass %ld fail %ld\n", total_pass, total_fail);
    return total_fail ? 1 : 0;
}
