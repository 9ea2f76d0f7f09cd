/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cloister policy ...`: the Rego engine from the command line, in `opa` vocabulary.
 *   eval   loads policies and data (-d), evaluates a query, prints results like `opa eval`;
 *   test   runs Kata agent-policy case files (cases.jsonl next to a policy.rego) the way the
 *          agent decides: true/false or {allowed, ops}, ops applied to the policy state;
 *   bench  repeats a prepared query and reports like `opa bench` (samples, ns/op, B/op,
 *          allocs/op, percentiles), or with --kata every request kind of the case files plus
 *          the policy load time and the engine's memory.
 */
#include "cmd/cli.h"
#include "rego/rego.h"
#include "json/json.h"

#include <dirent.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_FILES 256
#define MAX_DIR_DEPTH 8
#define MAX_DATA_FILE (64u << 20)
#define MAX_CASES_FILE (64u << 20)

/* Wall time by default (as `opa bench`); --clock cpu measures the thread's CPU time, which
 * other processes on a shared machine do not inflate. */
static clockid_t bench_clock = CLOCK_MONOTONIC;

/* print() while benchmarking: none (stripped at compile time), lazy (gathered as values into a
 * sink, as the agent gathers them for its denial message) or text (rendered at every call by
 * an eager hook). */
enum bench_prints { PRINTS_NONE, PRINTS_LAZY, PRINTS_TEXT };
static enum bench_prints bench_prints = PRINTS_NONE;
static struct cl_rego_prints *bench_sink;
static size_t bench_print_bytes;

static void bench_on_print(void *ctx, const char *file, int line, const char *msg)
{
    (void)ctx;
    (void)file;
    (void)line;
    bench_print_bytes += strlen(msg);
}

static const char *const help_main =
    "Usage: cloister policy COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  eval    evaluate a query against policies and data (like `opa eval`)\n"
    "  test    run Kata agent-policy case files (cases.jsonl) and report pass/fail\n"
    "  bench   time a query, or every Kata request kind, in `opa bench` terms\n"
    "\n"
    "`cloister policy COMMAND --help` describes each command.\n";

static const char *const help_eval =
    "Usage: cloister policy eval [-d FILE|DIR]... [-i INPUT.json] [--v0] [--strict]\n"
    "                            [-f json|values] QUERY\n"
    "\n"
    "Loads every .rego file (policies) and .json file (data, merged at the top level) named\n"
    "with -d (directories are walked), evaluates QUERY and prints the result set as `opa eval`\n"
    "does: {\"result\": [{\"expressions\": [{\"value\", \"text\", \"location\"}], "
    "\"bindings\"}]},\n"
    "{} when undefined, {\"errors\": [...]} on an error.\n"
    "\n"
    "  -d, --data PATH      policy (.rego) or data (.json) file or directory (repeatable)\n"
    "  -i, --input FILE     input document (JSON)\n"
    "      --v0             parse policies as Rego v0 (`p { ... }`, `p[x] { ... }`)\n"
    "      --strict         builtin errors end the query (strict-builtin-errors)\n"
    "  -f, --format FMT     json (default) or values (one JSON value per line)\n";

static const char *const help_test =
    "Usage: cloister policy test [-v] [--v1] [--policy FILE] [PATH...]\n"
    "\n"
    "Runs Kata agent-policy cases the way the agent decides. A PATH is a cases.jsonl file (its\n"
    "policy is policy.rego in the same directory unless --policy is given), a directory holding\n"
    "both, or a directory of such directories. Default: "
    "$CLOISTER_VECTORS/kata-policy/regorus-kata.\n"
    "Each line of a cases file is {\"ep\": REQUEST, \"input\": {...}, \"want\": bool}; cases run "
    "in\n"
    "order on one engine with data {\"pstate\": {}}: data.agent_policy.REQUEST must be true/false\n"
    "or {\"allowed\", \"ops\"} (ops, a JSON Patch, are applied to the data when allowed);\n"
    "undefined is an error.\n"
    "\n"
    "  --policy FILE   the policy for every cases file\n"
    "  --v1            policies are Rego v1 (default: v0, as the regorus Kata policies)\n"
    "  -v              print every failing case\n"
    "Exit status 0 when every case passes, 1 otherwise.\n";

static const char *const help_bench =
    "Usage: cloister policy bench [-d FILE|DIR]... [-i INPUT.json] [--v0] [--count N] QUERY\n"
    "       cloister policy bench --kata [--v1] [--policy FILE] [--count N] [PATH...]\n"
    "\n"
    "The first form prepares QUERY once and evaluates it repeatedly (loading, parsing and\n"
    "compiling excluded, as `opa bench`), then prints samples, ns/op, B/op, allocs/op and the\n"
    "latency percentiles. The second form takes Kata case files as `policy test` does and, per\n"
    "policy, times the load (parse + compile) and every request kind (each case evaluated --count\n"
    "times with the policy state it sees in order), and prints the engine's memory.\n"
    "\n"
    "  --count N       repetitions of each evaluation (default 2000; --kata: 200 per case)\n"
    "  --clock C       wall (default, as opa bench) or cpu (the thread's CPU time: steady on a\n"
    "                  shared machine)\n"
    "  --prints MODE   print() calls: none (default: removed at compile time), lazy (gathered as\n"
    "                  values, as the Kata agent gathers them, and dropped after each decision)\n"
    "                  or text (rendered to text at every call by a print hook)\n"
    "  --v0, --v1      policy syntax (eval form default v1, --kata default v0)\n"
    "  -f, --format    pretty (default) or json\n";

/* ---- output of Rego values as indented JSON (sets as arrays, exact numbers) ---- */

static void put_indent(FILE *f, int n)
{
    for (int i = 0; i < n; i++)
        fputs("  ", f);
}

static void put_json(FILE *f, const struct cl_rv *v, int ind)
{
    switch (v->type) {
    case CL_RV_ARRAY:
    case CL_RV_SET:
        if (!v->u.arr.len) {
            fputs("[]", f);
            return;
        }
        fputs("[\n", f);
        for (size_t i = 0; i < v->u.arr.len; i++) {
            put_indent(f, ind + 1);
            put_json(f, v->u.arr.items[i], ind + 1);
            fputs(i + 1 < v->u.arr.len ? ",\n" : "\n", f);
        }
        put_indent(f, ind);
        fputc(']', f);
        return;
    case CL_RV_OBJECT:
        if (!v->u.obj.len) {
            fputs("{}", f);
            return;
        }
        fputs("{\n", f);
        for (size_t i = 0; i < v->u.obj.len; i++) {
            const struct cl_rv *k = v->u.obj.keys[i];
            put_indent(f, ind + 1);
            CL_AUTO(cl_str) *kt = cl_rv_to_json_text(k);
            if (k->type == CL_RV_STRING) {
                fputs(kt, f);
            } else { /* a non-string key is written as the string of its JSON text */
                struct cl_rv *ks = cl_rv_strz(kt);
                CL_AUTO(cl_str) *kq = cl_rv_to_json_text(ks);
                cl_rv_decref(ks);
                fputs(kq, f);
            }
            fputs(": ", f);
            put_json(f, v->u.obj.vals[i], ind + 1);
            fputs(i + 1 < v->u.obj.len ? ",\n" : "\n", f);
        }
        put_indent(f, ind);
        fputc('}', f);
        return;
    default: {
        CL_AUTO(cl_str) *t = cl_rv_to_json_text(v);
        fputs(t, f);
    }
    }
}

static void put_json_string(FILE *f, const char *s, size_t n)
{
    struct cl_rv *v = cl_rv_str(s, n);
    CL_AUTO(cl_str) *t = cl_rv_to_json_text(v);
    cl_rv_decref(v);
    fputs(t, f);
}

/* {"errors": [{"code", "message"}]} as `opa eval` reports them. */
static void put_error(const struct cl_err *e)
{
    char code[64];
    cl_rego_err_code(e, code, sizeof code);
    printf("{\n  \"errors\": [\n    {\n      \"code\": ");
    put_json_string(stdout, code[0] ? code : "rego_error", strlen(code[0] ? code : "rego_error"));
    printf(",\n      \"message\": ");
    put_json_string(stdout, e->msg, strlen(e->msg));
    printf("\n    }\n  ]\n}\n");
}

/* ---- loading policies and data ---- */

struct loader {
    struct cl_rego *e;
    json_t *data;
    bool v0;
    size_t nfiles;
};

static void merge_data(json_t *dst, json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v)
    {
        json_t *old = json_object_get(dst, k);
        if (json_is_object(old) && json_is_object(v))
            merge_data(old, v);
        else
            json_object_set(dst, k, v);
    }
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int load_file(struct loader *L, const char *path, struct cl_err *err)
{
    if (++L->nfiles > MAX_FILES)
        return cl_err_set(err, CL_ELIMIT, "%s: more than %d files", path, MAX_FILES);
    bool rego = has_suffix(path, ".rego");
    size_t n = 0;
    CL_AUTO(cl_bytes) *text =
        cl_file_read(path, rego ? CL_REGO_MAX_POLICY : MAX_DATA_FILE, &n, err);
    if (!text)
        return err->code;
    if (rego)
        return cl_rego_add_module(L->e, path, (const char *)text, n, L->v0, err);
    CL_AUTO(json_t) *j = cl_json_parse((const char *)text, n, CL_REGO_MAX_INPUT_DEPTH, err);
    if (!j)
        return cl_err_prefix(err, "%s", path);
    if (!json_is_object(j))
        return cl_err_set(err, CL_EPARSE, "%s: data must be a JSON object", path);
    merge_data(L->data, j);
    return 0;
}

static int load_path(struct loader *L, const char *path, int depth, struct cl_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return cl_err_set(err, CL_ENOTFOUND, "%s: no such file or directory", path);
    if (!S_ISDIR(st.st_mode))
        return load_file(L, path, err);
    if (depth >= MAX_DIR_DEPTH)
        return cl_err_set(err, CL_ELIMIT, "%s: directories nested deeper than %d", path,
                          MAX_DIR_DEPTH);
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0)
        return cl_err_set(err, CL_EIO, "%s: cannot list the directory", path);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (rc == 0 && nm[0] != '.') {
            CL_AUTO(cl_str) *full = cl_strdupf("%s/%s", path, nm);
            struct stat cs;
            if (stat(full, &cs) == 0 &&
                (S_ISDIR(cs.st_mode) || has_suffix(nm, ".rego") || has_suffix(nm, ".json")))
                rc = load_path(L, full, depth + 1, err);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static struct cl_rego *load_all(char **paths, size_t n, bool v0, bool strict, struct cl_err *err)
{
    struct cl_rego_opts o = {.strict_builtin_errors = strict};
    struct loader L = {cl_rego_new(&o), json_object(), v0, 0};
    int rc = L.e ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = load_path(&L, paths[i], 0, err);
    if (rc == 0)
        rc = cl_rego_set_data(L.e, L.data, err);
    if (rc == 0)
        rc = cl_rego_compile(L.e, err);
    json_decref(L.data);
    if (rc < 0) {
        cl_rego_free(L.e);
        return NULL;
    }
    return L.e;
}

static json_t *read_json_file(const char *path, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *text = cl_file_read(path, MAX_DATA_FILE, &n, err);
    if (!text)
        return NULL;
    json_t *j = cl_json_parse((const char *)text, n, CL_REGO_MAX_INPUT_DEPTH, err);
    if (!j)
        cl_err_prefix(err, "%s", path);
    return j;
}

/* ---- eval ---- */

struct eopts {
    char *data[MAX_FILES];
    size_t ndata;
    const char *input, *format, *query;
    bool v0, v1, strict, kata, verbose;
    const char *policy;
    long count;
    char **paths;
    size_t npaths;
};

static int parse_opts(int argc, char **argv, struct eopts *o, const char *help, bool want_query)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},   {"input", required_argument, NULL, 'i'},
        {"format", required_argument, NULL, 'f'}, {"v0", no_argument, NULL, '0'},
        {"v1", no_argument, NULL, '1'},           {"strict", no_argument, NULL, 's'},
        {"kata", no_argument, NULL, 'k'},         {"policy", required_argument, NULL, 'p'},
        {"count", required_argument, NULL, 'n'},  {"verbose", no_argument, NULL, 'v'},
        {"clock", required_argument, NULL, 'c'},  {"prints", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "d:i:f:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            if (o->ndata == MAX_FILES) {
                fprintf(stderr, "cloister policy: more than %d -d options\n", MAX_FILES);
                return 2;
            }
            o->data[o->ndata++] = optarg;
            break;
        case 'i':
            o->input = optarg;
            break;
        case 'f':
            o->format = optarg;
            break;
        case '0':
            o->v0 = true;
            break;
        case '1':
            o->v1 = true;
            break;
        case 's':
            o->strict = true;
            break;
        case 'k':
            o->kata = true;
            break;
        case 'p':
            o->policy = optarg;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'c':
            if (strcmp(optarg, "cpu") == 0) {
                bench_clock = CLOCK_THREAD_CPUTIME_ID;
            } else if (strcmp(optarg, "wall") != 0) {
                fprintf(stderr, "cloister policy: --clock must be wall or cpu, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'P':
            if (strcmp(optarg, "lazy") == 0) {
                bench_prints = PRINTS_LAZY;
            } else if (strcmp(optarg, "text") == 0) {
                bench_prints = PRINTS_TEXT;
            } else if (strcmp(optarg, "none") != 0) {
                fprintf(stderr, "cloister policy: --prints must be none, lazy or text, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case 'n': {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (!end || *end || v < 1 || v > 100000000) {
                fprintf(
                    stderr,
                    "cloister policy: --count must be an integer from 1 to 100000000, not '%s'\n",
                    optarg);
                return 2;
            }
            o->count = v;
            break;
        }
        case 'h':
            fputs(help, stdout);
            return 0;
        default:
            fputs(help, stderr);
            return 2;
        }
    }
    if (o->v0 && o->v1) {
        fprintf(stderr, "cloister policy: --v0 and --v1 exclude each other\n");
        return 2;
    }
    if (want_query && !o->kata) {
        if (optind != argc - 1) {
            fprintf(stderr, "cloister policy: exactly one QUERY expected\n\n%s", help);
            return 2;
        }
        o->query = argv[optind];
    } else {
        o->paths = argv + optind;
        o->npaths = (size_t)(argc - optind);
    }
    return -1;
}

static int cmd_eval(int argc, char **argv)
{
    struct eopts o;
    int rc = parse_opts(argc, argv, &o, help_eval, true);
    if (rc >= 0)
        return rc;
    bool values = o.format && strcmp(o.format, "values") == 0;
    if (o.format && !values && strcmp(o.format, "json") != 0) {
        fprintf(stderr, "cloister policy eval: --format must be json or values, not '%s'\n",
                o.format);
        return 2;
    }
    struct cl_err err = {0};
    __attribute__((cleanup(cl_auto_cl_rego))) struct cl_rego *e =
        load_all(o.data, o.ndata, o.v0, o.strict, &err);
    CL_AUTO(json_t) *input = NULL;
    if (e && o.input && !(input = read_json_file(o.input, &err)))
        e = NULL; /* cleanup frees it */
    __attribute__((cleanup(cl_auto_cl_rego_query))) struct cl_rego_query *q =
        e ? cl_rego_prepare(e, o.query, &err) : NULL;
    struct cl_rv *rows = NULL;
    struct cl_rego_eval_opts eo = {.strict_builtin_errors = o.strict};
    if (!q || cl_rego_query_eval_rv(q, input, &eo, &rows, &err) < 0) {
        if (values)
            fprintf(stderr, "cloister policy eval: %s\n", err.msg);
        else
            put_error(&err);
        return cl_err_exit_code(err.code ? err.code : CL_EINVAL);
    }
    if (values) {
        for (size_t i = 0; i < rows->u.arr.len; i++) {
            const struct cl_rv *ex = cl_rv_obj_get_str(rows->u.arr.items[i], "expressions");
            for (size_t j = 0; ex && j < ex->u.arr.len; j++) {
                put_json(stdout, ex->u.arr.items[j], 0);
                fputc('\n', stdout);
            }
        }
        cl_rv_decref(rows);
        return 0;
    }
    if (!rows->u.arr.len) {
        printf("{}\n");
        cl_rv_decref(rows);
        return 0;
    }
    printf("{\n  \"result\": [\n");
    for (size_t i = 0; i < rows->u.arr.len; i++) {
        const struct cl_rv *row = rows->u.arr.items[i];
        const struct cl_rv *ex = cl_rv_obj_get_str(row, "expressions");
        const struct cl_rv *b = cl_rv_obj_get_str(row, "bindings");
        printf("    {\n      \"expressions\": [\n");
        for (size_t j = 0; ex && j < ex->u.arr.len; j++) {
            size_t tl = 0;
            int line = 0, col = 0;
            const char *text = cl_rego_query_expr(q, j, &tl, &line, &col);
            printf("        {\n          \"value\": ");
            put_json(stdout, ex->u.arr.items[j], 5);
            printf(",\n          \"text\": ");
            put_json_string(stdout, text, tl);
            printf(",\n          \"location\": {\n            \"row\": %d,\n            \"col\": "
                   "%d\n          }\n",
                   line, col);
            printf("        }%s\n", j + 1 < ex->u.arr.len ? "," : "");
        }
        printf("      ]");
        if (b && b->u.obj.len) {
            printf(",\n      \"bindings\": ");
            put_json(stdout, b, 3);
        }
        printf("\n    }%s\n", i + 1 < rows->u.arr.len ? "," : "");
    }
    printf("  ]\n}\n");
    cl_rv_decref(rows);
    return 0;
}

/* ---- Kata case files ---- */

struct kcase {
    char *ep;
    json_t *input;
    struct cl_rv *input_rv;
    bool want;
};

struct ksuite {
    char *name;   /* what is printed */
    char *policy; /* policy path */
    struct kcase *cases;
    size_t n;
};

static void suite_free(struct ksuite *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->cases[i].ep);
        json_decref(s->cases[i].input);
        cl_rv_decref(s->cases[i].input_rv);
    }
    free(s->cases);
    free(s->name);
    free(s->policy);
}

static int read_cases(const char *path, struct ksuite *s, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *text = cl_file_read(path, MAX_CASES_FILE, &n, err);
    if (!text)
        return err->code;
    const char *p = (const char *)text, *end = p + n;
    size_t lineno = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        if (len) {
            CL_AUTO(json_t) *c = cl_json_parse(p, len, CL_REGO_MAX_INPUT_DEPTH, err);
            if (!c)
                return cl_err_prefix(err, "%s:%zu", path, lineno);
            const char *ep = json_string_value(json_object_get(c, "ep"));
            json_t *input = json_object_get(c, "input");
            json_t *want = json_object_get(c, "want");
            if (!ep || !input || !json_is_boolean(want))
                return cl_err_set(
                    err, CL_EPARSE,
                    "%s:%zu: a case needs \"ep\" (string), \"input\" and \"want\" (bool)", path,
                    lineno);
            if (strspn(ep, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
                strlen(ep))
                return cl_err_set(err, CL_EPARSE,
                                  "%s:%zu: \"ep\" must be a request name, not '%.64s'", path,
                                  lineno, ep);
            struct kcase *nc = realloc(s->cases, (s->n + 1) * sizeof *nc);
            if (!nc)
                return cl_err_set(err, CL_ENOMEM, "out of memory");
            s->cases = nc;
            s->cases[s->n++] = (struct kcase){strdup(ep), json_incref(input),
                                              cl_rv_from_json(input), json_is_true(want)};
        }
        p += len + 1;
    }
    return 0;
}

static char *dir_of(const char *path)
{
    const char *sl = strrchr(path, '/');
    return sl ? strndup(path, (size_t)(sl - path)) : strdup(".");
}

/* Collects the suites named by PATH (see help_test). */
static int collect(const char *path, const char *policy, int depth, struct ksuite **out,
                   size_t *nout, struct cl_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return cl_err_set(err, CL_ENOTFOUND, "%s: no such file or directory", path);
    if (!S_ISDIR(st.st_mode)) {
        struct ksuite s = {0};
        CL_AUTO(cl_str) *dir = dir_of(path);
        s.policy = policy ? strdup(policy) : cl_strdupf("%s/policy.rego", dir);
        const char *base = strrchr(dir, '/');
        s.name = strdup(base ? base + 1 : dir);
        int rc = read_cases(path, &s, err);
        struct ksuite *ns = rc == 0 ? realloc(*out, (*nout + 1) * sizeof *ns) : NULL;
        if (!ns) {
            suite_free(&s);
            return rc < 0 ? rc : cl_err_set(err, CL_ENOMEM, "out of memory");
        }
        *out = ns;
        (*out)[(*nout)++] = s;
        return 0;
    }
    CL_AUTO(cl_str) *cases = cl_strdupf("%s/cases.jsonl", path);
    if (stat(cases, &st) == 0)
        return collect(cases, policy, depth, out, nout, err);
    if (depth >= 2)
        return 0;
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0)
        return cl_err_set(err, CL_EIO, "%s: cannot list the directory", path);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (rc == 0 && names[i]->d_name[0] != '.') {
            CL_AUTO(cl_str) *sub = cl_strdupf("%s/%s", path, names[i]->d_name);
            CL_AUTO(cl_str) *sc = cl_strdupf("%s/cases.jsonl", sub);
            if (stat(sc, &st) == 0)
                rc = collect(sc, policy, depth + 1, out, nout, err);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static int collect_all(struct eopts *o, struct ksuite **out, size_t *nout, struct cl_err *err)
{
    *out = NULL;
    *nout = 0;
    if (o->npaths == 0) {
        const char *vec = getenv("CLOISTER_VECTORS");
        if (!vec || !*vec)
            return cl_err_set(err, CL_EINVAL, "no PATH given and CLOISTER_VECTORS is not set");
        CL_AUTO(cl_str) *def = cl_strdupf("%s/kata-policy/regorus-kata", vec);
        return collect(def, o->policy, 0, out, nout, err);
    }
    for (size_t i = 0; i < o->npaths; i++) {
        int rc = collect(o->paths[i], o->policy, 0, out, nout, err);
        if (rc < 0)
            return rc;
    }
    if (!*nout)
        return cl_err_set(err, CL_ENOTFOUND, "no cases.jsonl found");
    return 0;
}

static struct cl_rego *load_kata(const char *policy, bool v0, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *text = cl_file_read(policy, CL_REGO_MAX_POLICY, &n, err);
    if (!text)
        return NULL;
    struct cl_rego_opts ro = {0};
    if (bench_prints == PRINTS_LAZY) {
        if (!bench_sink)
            bench_sink = cl_rego_prints_new();
        ro.prints = bench_sink;
    } else if (bench_prints == PRINTS_TEXT) {
        ro.print = bench_on_print;
    }
    struct cl_rego *e = cl_rego_new(&ro);
    CL_AUTO(json_t) *data = json_pack("{s:{}}", "pstate");
    if (!e || !data) {
        cl_rego_free(e);
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    if (cl_rego_add_module(e, policy, (const char *)text, n, v0, err) < 0 ||
        cl_rego_set_data(e, data, err) < 0 || cl_rego_compile(e, err) < 0) {
        cl_rego_free(e);
        return NULL;
    }
    return e;
}

/* One prepared query per request kind, created on first use. */
struct epq {
    char *ep;
    struct cl_rego_query *q;
};

struct kengine {
    struct cl_rego *e;
    struct epq *qs;
    size_t nq;
};

static void kengine_free(struct kengine *k)
{
    for (size_t i = 0; i < k->nq; i++) {
        cl_rego_query_free(k->qs[i].q);
        free(k->qs[i].ep);
    }
    free(k->qs);
    cl_rego_free(k->e);
}

static struct cl_rego_query *ep_query(struct kengine *k, const char *ep, struct cl_err *err)
{
    for (size_t i = 0; i < k->nq; i++)
        if (strcmp(k->qs[i].ep, ep) == 0)
            return k->qs[i].q;
    CL_AUTO(cl_str) *text = cl_strdupf("data.agent_policy.%s", ep);
    struct cl_rego_query *q = cl_rego_prepare(k->e, text, err);
    if (!q)
        return NULL;
    struct epq *n = realloc(k->qs, (k->nq + 1) * sizeof *n);
    if (!n) {
        cl_rego_query_free(q);
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    k->qs = n;
    k->qs[k->nq++] = (struct epq){strdup(ep), q};
    return q;
}

enum decision { DENY, ALLOW, DERROR };

/* The agent's gate on one evaluation's rows; applies state ops when allowed. */
static enum decision gate(struct cl_rego *e, const struct cl_rv *rows, char *why, size_t whylen)
{
    if (rows->u.arr.len != 1) {
        snprintf(why, whylen, rows->u.arr.len ? "%zu results" : "undefined decision",
                 rows->u.arr.len);
        return DERROR;
    }
    const struct cl_rv *ex = cl_rv_obj_get_str(rows->u.arr.items[0], "expressions");
    const struct cl_rv *v = ex && ex->u.arr.len == 1 ? ex->u.arr.items[0] : NULL;
    if (v && v->type == CL_RV_BOOL)
        return v->u.b ? ALLOW : DENY;
    const struct cl_rv *allowed =
        v && v->type == CL_RV_OBJECT ? cl_rv_obj_get_str(v, "allowed") : NULL;
    if (!allowed || allowed->type != CL_RV_BOOL) {
        snprintf(why, whylen,
                 "the decision is neither a boolean nor {\"allowed\": bool, \"ops\": [...]}");
        return DERROR;
    }
    const struct cl_rv *ops = cl_rv_obj_get_str(v, "ops");
    if (allowed->u.b && ops) {
        struct cl_err err = {0};
        CL_AUTO(json_t) *jops = cl_rv_to_json(ops);
        json_t *data = cl_rego_get_data(e);
        int rc = cl_rego_json_patch(&data, jops, &err);
        if (rc == 0)
            rc = cl_rego_set_data(e, data, &err);
        json_decref(data);
        if (rc < 0) {
            snprintf(why, whylen, "state patch: %s", err.msg);
            return DERROR;
        }
    }
    return allowed->u.b ? ALLOW : DENY;
}

static enum decision decide(struct kengine *k, const struct kcase *c, char *why, size_t whylen)
{
    struct cl_err err = {0};
    struct cl_rego_query *q = ep_query(k, c->ep, &err);
    struct cl_rv *rows = NULL;
    struct cl_rego_eval_opts eo = {.input_value = c->input_rv};
    if (!q || cl_rego_query_eval_rv(q, NULL, &eo, &rows, &err) < 0) {
        snprintf(why, whylen, "%s", err.msg);
        return DERROR;
    }
    enum decision d = gate(k->e, rows, why, whylen);
    cl_rv_decref(rows);
    return d;
}

static int cmd_test(int argc, char **argv)
{
    struct eopts o;
    int rc = parse_opts(argc, argv, &o, help_test, false);
    if (rc >= 0)
        return rc;
    struct cl_err err = {0};
    struct ksuite *suites = NULL;
    size_t ns = 0;
    if (collect_all(&o, &suites, &ns, &err) < 0) {
        fprintf(stderr, "cloister policy test: %s\n", err.msg);
        for (size_t i = 0; i < ns; i++)
            suite_free(&suites[i]);
        free(suites);
        return cl_err_exit_code(err.code);
    }
    long tp = 0, tf = 0;
    for (size_t i = 0; i < ns; i++) {
        struct ksuite *s = &suites[i];
        struct kengine k = {load_kata(s->policy, !o.v1, &err), NULL, 0};
        long p = 0, f = 0;
        if (!k.e) {
            printf("FAIL %s: %s\n", s->name, err.msg);
            f = (long)s->n;
        }
        for (size_t j = 0; k.e && j < s->n; j++) {
            char why[600] = "";
            enum decision d = decide(&k, &s->cases[j], why, sizeof why);
            if (d != DERROR && (d == ALLOW) == s->cases[j].want) {
                p++;
                continue;
            }
            f++;
            if (o.verbose)
                printf("FAIL %s case %zu %s: want %s, got %s%s%s\n", s->name, j + 1, s->cases[j].ep,
                       s->cases[j].want ? "allow" : "deny",
                       d == DERROR  ? "error"
                       : d == ALLOW ? "allow"
                                    : "deny",
                       why[0] ? ": " : "", why);
        }
        kengine_free(&k);
        printf("%-40s pass %4ld fail %4ld\n", s->name, p, f);
        tp += p;
        tf += f;
        suite_free(s);
    }
    free(suites);
    printf("%-40s pass %4ld fail %4ld\n", "TOTAL", tp, tf);
    return tf ? 1 : 0;
}

/* ---- bench ---- */

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct stats {
    size_t n;
    uint64_t *lat;
    uint64_t allocs, bytes;
};

static uint64_t pct(const struct stats *s, double p)
{
    size_t i = (size_t)ceil(p / 100.0 * (double)s->n);
    return s->lat[i ? i - 1 : 0];
}

static double mean_ns(const struct stats *s)
{
    double sum = 0;
    for (size_t i = 0; i < s->n; i++)
        sum += (double)s->lat[i];
    return s->n ? sum / (double)s->n : 0;
}

static void print_table(const struct stats *s, bool json)
{
    qsort(s->lat, s->n, sizeof *s->lat, cmp_u64);
    double mean = mean_ns(s), var = 0;
    for (size_t i = 0; i < s->n; i++)
        var += ((double)s->lat[i] - mean) * ((double)s->lat[i] - mean);
    double sd = s->n > 1 ? sqrt(var / (double)(s->n - 1)) : 0;
    struct {
        const char *k;
        double v;
    } rows[] = {
        {"samples", (double)s->n},
        {"ns/op", mean},
        {"B/op", (double)s->bytes / (double)s->n},
        {"allocs/op", (double)s->allocs / (double)s->n},
        {"histogram_timer_rego_query_eval_ns_min", (double)s->lat[0]},
        {"histogram_timer_rego_query_eval_ns_max", (double)s->lat[s->n - 1]},
        {"histogram_timer_rego_query_eval_ns_mean", mean},
        {"histogram_timer_rego_query_eval_ns_stddev", sd},
        {"histogram_timer_rego_query_eval_ns_median", (double)pct(s, 50)},
        {"histogram_timer_rego_query_eval_ns_75%", (double)pct(s, 75)},
        {"histogram_timer_rego_query_eval_ns_90%", (double)pct(s, 90)},
        {"histogram_timer_rego_query_eval_ns_95%", (double)pct(s, 95)},
        {"histogram_timer_rego_query_eval_ns_99%", (double)pct(s, 99)},
        {"histogram_timer_rego_query_eval_ns_99.9%", (double)pct(s, 99.9)},
        {"histogram_timer_rego_query_eval_ns_count", (double)s->n},
    };
    if (json) {
        printf("{\n");
        for (size_t i = 0; i < CL_ARRAY_LEN(rows); i++)
            printf("  \"%s\": %.0f%s\n", rows[i].k, rows[i].v,
                   i + 1 < CL_ARRAY_LEN(rows) ? "," : "");
        printf("}\n");
        return;
    }
    const char *line = "+--------------------------------------------+--------------+\n";
    fputs(line, stdout);
    for (size_t i = 0; i < CL_ARRAY_LEN(rows); i++)
        printf("| %-42s | %12.0f |\n", rows[i].k, rows[i].v);
    fputs(line, stdout);
}

static int bench_query(struct eopts *o, bool json)
{
    struct cl_err err = {0};
    __attribute__((cleanup(cl_auto_cl_rego))) struct cl_rego *e =
        load_all(o->data, o->ndata, o->v0, o->strict, &err);
    CL_AUTO(json_t) *input = NULL;
    if (e && o->input && !(input = read_json_file(o->input, &err)))
        e = NULL;
    __attribute__((cleanup(cl_auto_cl_rego_query))) struct cl_rego_query *q =
        e ? cl_rego_prepare(e, o->query, &err) : NULL;
    if (!q) {
        fprintf(stderr, "cloister policy bench: %s\n", err.msg);
        return cl_err_exit_code(err.code ? err.code : CL_EINVAL);
    }
    struct cl_rv *in = input ? cl_rv_from_json(input) : NULL;
    struct cl_rego_eval_opts eo = {.strict_builtin_errors = o->strict, .input_value = in};
    size_t n = o->count ? (size_t)o->count : 2000;
    struct stats s = {n, calloc(n, sizeof(uint64_t)), 0, 0};
    int rc = s.lat ? 0 : cl_err_set(&err, CL_ENOMEM, "out of memory");
    for (size_t i = 0; i < n + n / 10 && rc == 0; i++) { /* the first tenth warms up */
        struct cl_rv *rows = NULL;
        uint64_t a0 = cl_rv_allocs, b0 = cl_rv_alloc_bytes, t0 = mono_ns();
        rc = cl_rego_query_eval_rv(q, NULL, &eo, &rows, &err);
        uint64_t dt = mono_ns() - t0;
        cl_rv_decref(rows);
        if (i >= n / 10) {
            s.lat[i - n / 10] = dt;
            s.allocs += cl_rv_allocs - a0;
            s.bytes += cl_rv_alloc_bytes - b0;
        }
    }
    cl_rv_decref(in);
    if (rc < 0) {
        free(s.lat);
        fprintf(stderr, "cloister policy bench: %s\n", err.msg);
        return cl_err_exit_code(rc);
    }
    print_table(&s, json);
    free(s.lat);
    return 0;
}

/* Per request kind of one suite. */
struct epstat {
    const char *ep;
    struct stats s;
    size_t cap;
};

static long rss_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            v = strtol(line + fl + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* All policies together: latencies per request kind, load times, largest engine. */
struct agg {
    struct epstat *eps;
    size_t neps;
    uint64_t loads[256];
    size_t nloads;
    size_t max_engine;
};

static int agg_add(struct agg *a, const char *ep, const struct stats *x)
{
    struct epstat *st = NULL;
    for (size_t i = 0; i < a->neps && !st; i++)
        if (strcmp(a->eps[i].ep, ep) == 0)
            st = &a->eps[i];
    if (!st) {
        struct epstat *ne = realloc(a->eps, (a->neps + 1) * sizeof *ne);
        if (!ne)
            return CL_ENOMEM;
        a->eps = ne;
        st = &a->eps[a->neps++];
        memset(st, 0, sizeof *st);
        st->ep = strdup(ep);
        if (!st->ep)
            return CL_ENOMEM;
    }
    uint64_t *nl = realloc(st->s.lat, (st->s.n + x->n) * sizeof *nl);
    if (!nl)
        return CL_ENOMEM;
    memcpy(nl + st->s.n, x->lat, x->n * sizeof *nl);
    st->s.lat = nl;
    st->s.n += x->n;
    st->s.allocs += x->allocs;
    st->s.bytes += x->bytes;
    return 0;
}

static void agg_print(struct agg *a, bool json)
{
    qsort(a->loads, a->nloads, sizeof *a->loads, cmp_u64);
    uint64_t load_med = a->nloads ? a->loads[a->nloads / 2] : 0;
    long hwm = rss_kib("VmHWM");
    if (json) {
        printf("  \"summary\": {\"load_ns_median\": %llu, \"max_engine_bytes\": %zu, \"hwm_kib\": "
               "%ld, \"requests\": [",
               (unsigned long long)load_med, a->max_engine, hwm);
    } else {
        printf("all policies: load (parse + compile) median %.2f ms; largest engine %.1f KiB; "
               "process peak RSS %ld KiB\n",
               (double)load_med / 1e6, (double)a->max_engine / 1024.0, hwm);
        printf("  %-30s %8s %10s %10s %10s %10s %10s\n", "request", "samples", "ns/op", "p50",
               "p99", "allocs/op", "B/op");
    }
    for (size_t i = 0; i < a->neps; i++) {
        struct stats *x = &a->eps[i].s;
        qsort(x->lat, x->n, sizeof *x->lat, cmp_u64);
        if (json)
            printf("%s\n    {\"request\": \"%s\", \"samples\": %zu, \"ns_per_op\": %.0f, "
                   "\"p50_ns\": %llu, "
                   "\"p99_ns\": %llu, \"allocs_per_op\": %.1f, \"bytes_per_op\": %.0f}",
                   i ? "," : "", a->eps[i].ep, x->n, mean_ns(x), (unsigned long long)pct(x, 50),
                   (unsigned long long)pct(x, 99), (double)x->allocs / (double)x->n,
                   (double)x->bytes / (double)x->n);
        else
            printf("  %-30s %8zu %10.0f %10llu %10llu %10.1f %10.0f\n", a->eps[i].ep, x->n,
                   mean_ns(x), (unsigned long long)pct(x, 50), (unsigned long long)pct(x, 99),
                   (double)x->allocs / (double)x->n, (double)x->bytes / (double)x->n);
        free((char *)(uintptr_t)a->eps[i].ep);
        free(x->lat);
    }
    if (json)
        printf("]}\n");
    free(a->eps);
}

static int bench_suite(struct ksuite *s, bool v0, size_t count, bool json, bool *first,
                       struct agg *agg)
{
    struct cl_err err = {0};
    /* load: parse + compile, best of a few and median */
    uint64_t lat[21];
    int64_t mem0 = cl_rv_bytes_live;
    struct kengine k = {NULL, NULL, 0};
    for (size_t i = 0; i < CL_ARRAY_LEN(lat); i++) {
        cl_rego_free(k.e);
        uint64_t t0 = mono_ns();
        k.e = load_kata(s->policy, v0, &err);
        lat[i] = mono_ns() - t0;
        if (!k.e) {
            fprintf(stderr, "cloister policy bench: %s\n", err.msg);
            return cl_err_exit_code(err.code);
        }
    }
    qsort(lat, CL_ARRAY_LEN(lat), sizeof *lat, cmp_u64);
    size_t engine_bytes = cl_rego_memory(k.e);
    if (agg->nloads < CL_ARRAY_LEN(agg->loads))
        agg->loads[agg->nloads++] = lat[CL_ARRAY_LEN(lat) / 2];
    if (engine_bytes > agg->max_engine)
        agg->max_engine = engine_bytes;
    (void)mem0;
    struct epstat *eps = NULL;
    size_t neps = 0;
    int rc = 0;
    for (size_t j = 0; j < s->n && rc == 0; j++) {
        const struct kcase *c = &s->cases[j];
        struct cl_rego_query *q = ep_query(&k, c->ep, &err);
        if (!q) {
            rc = err.code;
            break;
        }
        struct epstat *st = NULL;
        for (size_t i = 0; i < neps && !st; i++)
            if (strcmp(eps[i].ep, c->ep) == 0)
                st = &eps[i];
        if (!st) {
            struct epstat *ne = realloc(eps, (neps + 1) * sizeof *ne);
            if (!ne) {
                rc = CL_ENOMEM;
                break;
            }
            eps = ne;
            st = &eps[neps++];
            memset(st, 0, sizeof *st);
            st->ep = c->ep;
        }
        if (st->s.n + count > st->cap) {
            size_t ncap = (st->s.n + count) * 2;
            uint64_t *nl = realloc(st->s.lat, ncap * sizeof *nl);
            if (!nl) {
                rc = CL_ENOMEM;
                break;
            }
            st->s.lat = nl;
            st->cap = ncap;
        }
        struct cl_rego_eval_opts eo = {.input_value = c->input_rv};
        for (size_t r = 0; r < count + 1 && rc == 0; r++) { /* the first run warms up */
            struct cl_rv *rows = NULL;
            uint64_t a0 = cl_rv_allocs, b0 = cl_rv_alloc_bytes, t0 = mono_ns();
            rc = cl_rego_query_eval_rv(q, NULL, &eo, &rows, &err);
            cl_rego_prints_reset(bench_sink);
            uint64_t dt = mono_ns() - t0;
            cl_rv_decref(rows);
            if (r) {
                st->s.lat[st->s.n++] = dt;
                st->s.allocs += cl_rv_allocs - a0;
                st->s.bytes += cl_rv_alloc_bytes - b0;
            }
        }
        char why[600];
        if (rc == 0 && decide(&k, c, why, sizeof why) == DERROR)
            fprintf(stderr, "cloister policy bench: %s case %zu %s: %s\n", s->name, j + 1, c->ep,
                    why);
    }
    if (rc < 0) {
        fprintf(stderr, "cloister policy bench: %s: %s\n", s->name, err.msg);
    } else {
        long rss = rss_kib("VmRSS"), hwm = rss_kib("VmHWM");
        if (json) {
            printf("%s  {\"policy\": \"%s\", \"load_ns_median\": %llu, \"load_ns_min\": %llu, "
                   "\"engine_bytes\": %zu, "
                   "\"rss_kib\": %ld, \"hwm_kib\": %ld, \"requests\": [",
                   *first ? "" : ",\n", s->name, (unsigned long long)lat[CL_ARRAY_LEN(lat) / 2],
                   (unsigned long long)lat[0], engine_bytes, rss, hwm);
            for (size_t i = 0; i < neps; i++) {
                struct stats *x = &eps[i].s;
                qsort(x->lat, x->n, sizeof *x->lat, cmp_u64);
                printf("%s\n    {\"request\": \"%s\", \"samples\": %zu, \"ns_per_op\": %.0f, "
                       "\"p50_ns\": %llu, "
                       "\"p99_ns\": %llu, \"allocs_per_op\": %.1f, \"bytes_per_op\": %.0f}",
                       i ? "," : "", eps[i].ep, x->n, mean_ns(x), (unsigned long long)pct(x, 50),
                       (unsigned long long)pct(x, 99), (double)x->allocs / (double)x->n,
                       (double)x->bytes / (double)x->n);
            }
            printf("]}");
        } else {
            printf("%s: load (parse + compile) median %.2f ms, min %.2f ms; engine %.1f KiB; "
                   "process RSS %ld KiB "
                   "(peak %ld KiB)\n",
                   s->name, (double)lat[CL_ARRAY_LEN(lat) / 2] / 1e6, (double)lat[0] / 1e6,
                   (double)engine_bytes / 1024.0, rss, hwm);
            printf("  %-30s %8s %10s %10s %10s %10s %10s\n", "request", "samples", "ns/op", "p50",
                   "p99", "allocs/op", "B/op");
            for (size_t i = 0; i < neps; i++) {
                struct stats *x = &eps[i].s;
                qsort(x->lat, x->n, sizeof *x->lat, cmp_u64);
                printf("  %-30s %8zu %10.0f %10llu %10llu %10.1f %10.0f\n", eps[i].ep, x->n,
                       mean_ns(x), (unsigned long long)pct(x, 50), (unsigned long long)pct(x, 99),
                       (double)x->allocs / (double)x->n, (double)x->bytes / (double)x->n);
            }
        }
        *first = false;
    }
    for (size_t i = 0; i < neps; i++) {
        if (rc == 0 && agg_add(agg, eps[i].ep, &eps[i].s) < 0)
            rc = CL_ENOMEM;
        free(eps[i].s.lat);
    }
    free(eps);
    kengine_free(&k);
    return rc < 0 ? cl_err_exit_code(rc) : 0;
}

static int cmd_bench(int argc, char **argv)
{
    struct eopts o;
    int rc = parse_opts(argc, argv, &o, help_bench, true);
    if (rc >= 0)
        return rc;
    bool json = o.format && strcmp(o.format, "json") == 0;
    if (o.format && !json && strcmp(o.format, "pretty") != 0) {
        fprintf(stderr, "cloister policy bench: --format must be pretty or json, not '%s'\n",
                o.format);
        return 2;
    }
    if (!o.kata)
        return bench_query(&o, json);
    struct cl_err err = {0};
    struct ksuite *suites = NULL;
    size_t ns = 0;
    rc = collect_all(&o, &suites, &ns, &err);
    if (rc < 0)
        fprintf(stderr, "cloister policy bench: %s\n", err.msg);
    bool first = true;
    struct agg agg = {0};
    if (json && rc == 0)
        printf("{\n  \"policies\": [\n");
    for (size_t i = 0; i < ns; i++) {
        if (rc == 0)
            rc =
                bench_suite(&suites[i], !o.v1, o.count ? (size_t)o.count : 200, json, &first, &agg);
        suite_free(&suites[i]);
    }
    free(suites);
    if (json && rc == 0)
        printf("\n  ],\n");
    if (rc == 0)
        agg_print(&agg, json);
    else
        for (size_t i = 0; i < agg.neps; i++) {
            free((char *)(uintptr_t)agg.eps[i].ep);
            free(agg.eps[i].s.lat);
        }
    if (rc != 0)
        free(agg.eps);
    if (json && rc == 0)
        printf("}\n");
    cl_rego_prints_free(bench_sink);
    bench_sink = NULL;
    return rc < 0 ? cl_err_exit_code(rc) : rc;
}

int cl_cli_policy(int argc, char **argv)
{
    if (argc < 2) {
        fputs(help_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(help_main, stdout);
        return 0;
    }
    if (!strcmp(cmd, "eval"))
        return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "test"))
        return cmd_test(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return cmd_bench(argc - 1, argv + 1);
    fprintf(stderr, "cloister policy: unknown command '%s'\n\n%s", cmd, help_main);
    return 2;
}
