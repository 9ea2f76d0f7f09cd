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

/* Nesting accepted in input and data documents (--max-input-depth; 0: CL_REGO_MAX_INPUT_DEPTH). */
static size_t input_depth;

/* print() output of `policy eval` and `policy test` goes to stderr, as opa's does. */
static void print_to_stderr(void *ctx, const char *file, int line, const char *msg)
{
    (void)ctx;
    (void)file;
    (void)line;
    fprintf(stderr, "%s\n", msg);
}

static const char *const help_main =
    "Usage: cloister policy COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  eval    evaluate a query against policies and data (like `opa eval`)\n"
    "  test    run OPA test files (test_ rules in .rego files, like `opa test`) or Kata\n"
    "          agent-policy case files (cases.jsonl) and report pass/fail\n"
    "  bench   time a query, or every Kata request kind, in `opa bench` terms\n"
    "\n"
    "`cloister policy COMMAND --help` describes each command.\n";

static const char *const help_eval =
    "Usage: cloister policy eval [-d FILE|DIR]... [-b DIR]... [-i INPUT.json | -I] [--v0]\n"
    "                            [--strict] [-f json|values|bindings|pretty] QUERY\n"
    "\n"
    "Loads every .rego file (policies) and .json file (data, merged at the top level) named\n"
    "with -d (directories are walked), evaluates QUERY and prints the result set as `opa eval`\n"
    "does: {\"result\": [{\"expressions\": [{\"value\", \"text\", \"location\"}], "
    "\"bindings\"}]},\n"
    "{} when undefined, {\"errors\": [...]} on an error. print() output goes to stderr.\n"
    "opa's flag names are accepted: --data, --bundle, --input, --stdin-input,\n"
    "--strict-builtin-errors, --v0-compatible, --v1-compatible, --format.\n"
    "\n"
    "  -d, --data PATH      policy (.rego) or data (.json) file or directory (repeatable)\n"
    "  -b, --bundle DIR     bundle directory: .rego files, and data.json files placed at the\n"
    "                       path of their directory (a/b/data.json is data.a.b) (repeatable)\n"
    "  -i, --input FILE     input document (JSON)\n"
    "  -I, --stdin-input    read the input document from stdin\n"
    "      --v0, --v0-compatible   parse policies as Rego v0 (`p { ... }`, `p[x] { ... }`)\n"
    "      --v1-compatible         parse policies as Rego v1 (the default)\n"
    "      --strict, --strict-builtin-errors   builtin errors end the query\n"
    "      --max-input-depth N     nesting accepted in input and data documents (default\n"
    "                       1000, at most 2000)\n"
    "  -f, --format FMT     json (default), values (one JSON value per line), bindings (the\n"
    "                       bindings of each result) or pretty (values, or a table of bindings)\n"
    "\n"
    "Input and data documents are read as opa reads them: invalid UTF-8 becomes U+FFFD.\n";

static const char *const help_test =
    "Usage: cloister policy test [-v] [--v0] [-d PATH]... PATH...   (OPA test files)\n"
    "       cloister policy test [-v] [--v1] [--policy FILE] [PATH...]   (Kata case files)\n"
    "\n"
    "OPA tests (`opa test`): when a PATH is a .rego file or a directory holding a *_test.rego\n"
    "file, every .rego and .json file under the PATHs is loaded (as `policy eval -d`) and every\n"
    "rule named test_* is evaluated: it passes when it is defined and not false, fails when it\n"
    "is false or undefined, and is an error when evaluation fails; todo_test_* rules are skipped.\n"
    "Policies are Rego v1 unless --v0 is given. Failing tests are listed (every test with -v),\n"
    "then PASS/FAIL/ERROR/SKIPPED counts. Exit status 0 when every test passes, 2 when one\n"
    "fails or errs, 1 when the files do not load.\n"
    "\n"
    "Kata cases: runs Kata agent-policy cases the way the agent decides. A PATH is a cases.jsonl\n"
    "file (its policy is policy.rego in the same directory unless --policy is given), a\n"
    "directory holding both, or a directory of such directories. Default:\n"
    "$CLOISTER_VECTORS/kata-policy/regorus-kata.\n"
    "Each line of a cases file is {\"ep\": REQUEST, \"input\": {...}, \"want\": bool}; cases run\n"
    "in order on one engine with data {\"pstate\": {}}: data.agent_policy.REQUEST must be\n"
    "true/false or {\"allowed\", \"ops\"} (ops, a JSON Patch, are applied to the data when\n"
    "allowed); undefined is an error.\n"
    "\n"
    "  --policy FILE   the policy for every cases file\n"
    "  --v1            Kata policies are Rego v1 (default: v0, as the regorus Kata policies)\n"
    "  --v0            OPA test files are Rego v0 (default: v1)\n"
    "  -d, --data PATH more policy or data files for OPA tests\n"
    "  -v              print every failing case (Kata) or every test (OPA)\n"
    "Kata: exit status 0 when every case passes, 1 otherwise.\n";

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
    const char *bundle; /* root of the bundle being loaded (data.json files placed by path) */
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
    CL_AUTO(json_t) *j = cl_rego_json_parse((const char *)text, n, input_depth, err);
    if (!j)
        return cl_err_prefix(err, "%s", path);
    if (L->bundle) {
        /* a bundle's data.json sits at the path of its directory under the bundle root */
        const char *rel = path + strlen(L->bundle);
        while (*rel == '/')
            rel++;
        const char *slash = strrchr(rel, '/');
        size_t dl = slash ? (size_t)(slash - rel) : 0;
        json_t *v = json_incref(j);
        while (dl) {
            const char *seg = rel + dl;
            while (seg > rel && seg[-1] != '/')
                seg--;
            json_t *o = json_object();
            json_object_setn_new(o, seg, (size_t)(rel + dl - seg), v);
            v = o;
            dl = seg > rel ? (size_t)(seg - 1 - rel) : 0;
        }
        if (!json_is_object(v)) {
            json_decref(v);
            return cl_err_set(err, CL_EPARSE, "%s: data at the bundle root must be a JSON object",
                              path);
        }
        merge_data(L->data, v);
        json_decref(v);
        return 0;
    }
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
            bool want = has_suffix(nm, ".rego") ||
                        (L->bundle ? strcmp(nm, "data.json") == 0 : has_suffix(nm, ".json"));
            if (stat(full, &cs) == 0 && (S_ISDIR(cs.st_mode) || want))
                rc = load_path(L, full, depth + 1, err);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static struct cl_rego *load_all(char **paths, size_t n, char **bundles, size_t nb, bool v0,
                                bool strict, struct cl_err *err)
{
    struct cl_rego_opts o = {.strict_builtin_errors = strict, .print = print_to_stderr};
    struct loader L = {cl_rego_new(&o), json_object(), v0, 0, NULL};
    int rc = L.e ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = load_path(&L, paths[i], 0, err);
    for (size_t i = 0; i < nb && rc == 0; i++) {
        struct stat st;
        if (stat(bundles[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = cl_err_set(err, CL_ENOTFOUND, "%s: not a bundle directory", bundles[i]);
            break;
        }
        L.bundle = bundles[i];
        rc = load_path(&L, bundles[i], 0, err);
        L.bundle = NULL;
    }
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
    json_t *j = cl_rego_json_parse((const char *)text, n, input_depth, err);
    if (!j)
        cl_err_prefix(err, "%s", path);
    return j;
}

static json_t *read_json_stdin(struct cl_err *err)
{
    struct cl_sbuf_local {
        char *s;
        size_t len, cap;
    } b = {0};
    for (;;) {
        if (b.len == b.cap) {
            if (b.cap >= MAX_DATA_FILE) {
                free(b.s);
                return cl_err_set(err, CL_ELIMIT, "stdin: input larger than %u bytes",
                                  MAX_DATA_FILE),
                       NULL;
            }
            b.cap = b.cap ? b.cap * 2 : 65536;
            char *ns = realloc(b.s, b.cap);
            if (!ns) {
                free(b.s);
                return cl_err_set(err, CL_ENOMEM, "stdin: out of memory"), NULL;
            }
            b.s = ns;
        }
        size_t got = fread(b.s + b.len, 1, b.cap - b.len, stdin);
        b.len += got;
        if (got == 0)
            break;
    }
    if (ferror(stdin)) {
        free(b.s);
        return cl_err_set(err, CL_EIO, "stdin: read error"), NULL;
    }
    json_t *j = cl_rego_json_parse(b.s ? b.s : "", b.len, input_depth, err);
    free(b.s);
    if (!j)
        cl_err_prefix(err, "stdin");
    return j;
}

/* Text of a value as a table cell: compact JSON (sets as arrays). */
static cl_str *cell_text(const struct cl_rv *v)
{
    return cl_rv_to_json_text(v);
}

/* Columns a UTF-8 text takes (one per character). */
static size_t text_width(const char *t)
{
    size_t n = 0;
    for (; *t; t++)
        n += ((unsigned char)*t & 0xC0) != 0x80;
    return n;
}

static void put_cell(const char *t, size_t w)
{
    printf("| %s ", t);
    for (size_t k = text_width(t); k < w; k++)
        putchar(' ');
}

/* -f bindings: the bindings of each result as indented JSON. -f pretty: the values of
 * expressions when no variable is bound, else a table with one column per variable, as opa. */
static int put_bindings_or_pretty(const struct cl_rego_query *q, const struct cl_rv *rows,
                                  bool pretty)
{
    size_t n = rows->u.arr.len;
    if (!pretty) {
        for (size_t i = 0; i < n; i++) {
            const struct cl_rv *b = cl_rv_obj_get_str(rows->u.arr.items[i], "bindings");
            if (b) {
                put_json(stdout, b, 0);
                fputc('\n', stdout);
            }
        }
        return 0;
    }
    if (!n) {
        printf("undefined\n");
        return 0;
    }
    const struct cl_rv *b0 = cl_rv_obj_get_str(rows->u.arr.items[0], "bindings");
    if (!b0 || !b0->u.obj.len) {
        for (size_t i = 0; i < n; i++) {
            const struct cl_rv *ex = cl_rv_obj_get_str(rows->u.arr.items[i], "expressions");
            for (size_t j = 0; ex && j < ex->u.arr.len; j++) {
                put_json(stdout, ex->u.arr.items[j], 0);
                fputc('\n', stdout);
            }
        }
        (void)q;
        return 0;
    }
    size_t nc = b0->u.obj.len;
    size_t *w = calloc(nc, sizeof *w);
    if (!w)
        return 1;
    for (size_t c = 0; c < nc; c++)
        w[c] = text_width(b0->u.obj.keys[c]->u.str.s);
    for (size_t i = 0; i < n; i++) {
        const struct cl_rv *b = cl_rv_obj_get_str(rows->u.arr.items[i], "bindings");
        for (size_t c = 0; b && c < nc; c++) {
            const struct cl_rv *v = cl_rv_obj_get(b, b0->u.obj.keys[c]);
            CL_AUTO(cl_str) *t = v ? cell_text(v) : NULL;
            if (t && text_width(t) > w[c])
                w[c] = text_width(t);
        }
    }
    for (int part = 0; part < 2; part++) {
        for (size_t c = 0; c < nc; c++) {
            printf("+");
            for (size_t k = 0; k < w[c] + 2; k++)
                putchar('-');
        }
        printf("+\n");
        if (part)
            break;
        for (size_t c = 0; c < nc; c++)
            put_cell(b0->u.obj.keys[c]->u.str.s, w[c]);
        printf("|\n");
    }
    for (size_t i = 0; i < n; i++) {
        const struct cl_rv *b = cl_rv_obj_get_str(rows->u.arr.items[i], "bindings");
        for (size_t c = 0; c < nc; c++) {
            const struct cl_rv *v = b ? cl_rv_obj_get(b, b0->u.obj.keys[c]) : NULL;
            CL_AUTO(cl_str) *t = v ? cell_text(v) : NULL;
            put_cell(t ? t : "", w[c]);
        }
        printf("|\n");
    }
    for (size_t c = 0; c < nc; c++) {
        printf("+");
        for (size_t k = 0; k < w[c] + 2; k++)
            putchar('-');
    }
    printf("+\n");
    free(w);
    return 0;
}

/* ---- eval ---- */

struct eopts {
    char *data[MAX_FILES];
    size_t ndata;
    char *bundles[MAX_FILES];
    size_t nbundles;
    bool stdin_input;
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
        {"data", required_argument, NULL, 'd'},
        {"input", required_argument, NULL, 'i'},
        {"format", required_argument, NULL, 'f'},
        {"v0", no_argument, NULL, '0'},
        {"v1", no_argument, NULL, '1'},
        {"strict", no_argument, NULL, 's'},
        {"kata", no_argument, NULL, 'k'},
        {"policy", required_argument, NULL, 'p'},
        {"count", required_argument, NULL, 'n'},
        {"verbose", no_argument, NULL, 'v'},
        {"clock", required_argument, NULL, 'c'},
        {"prints", required_argument, NULL, 'P'},
        {"bundle", required_argument, NULL, 'b'},
        {"stdin-input", no_argument, NULL, 'I'},
        {"strict-builtin-errors", no_argument, NULL, 's'},
        {"v0-compatible", no_argument, NULL, '0'},
        {"v1-compatible", no_argument, NULL, '1'},
        {"max-input-depth", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "d:b:i:If:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            if (o->ndata == MAX_FILES) {
                fprintf(stderr, "cloister policy: more than %d -d options\n", MAX_FILES);
                return 2;
            }
            o->data[o->ndata++] = optarg;
            break;
        case 'b':
            if (o->nbundles == MAX_FILES) {
                fprintf(stderr, "cloister policy: more than %d -b options\n", MAX_FILES);
                return 2;
            }
            o->bundles[o->nbundles++] = optarg;
            break;
        case 'I':
            o->stdin_input = true;
            break;
        case 'D': {
            char *end = NULL;
            long v = strtol(optarg, &end, 10);
            if (!end || *end || v < 1 || v > CL_REGO_MAX_INPUT_DEPTH_LIMIT) {
                fprintf(stderr,
                        "cloister policy: --max-input-depth must be an integer from 1 to %d, not "
                        "'%s'\n",
                        CL_REGO_MAX_INPUT_DEPTH_LIMIT, optarg);
                return 2;
            }
            input_depth = (size_t)v;
            break;
        }
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
    bool bindings = o.format && strcmp(o.format, "bindings") == 0;
    bool pretty = o.format && strcmp(o.format, "pretty") == 0;
    if (o.format && !values && !bindings && !pretty && strcmp(o.format, "json") != 0) {
        fprintf(
            stderr,
            "cloister policy eval: --format must be json, values, bindings or pretty, not '%s'\n",
            o.format);
        return 2;
    }
    if (o.input && o.stdin_input) {
        fprintf(stderr, "cloister policy eval: --input and --stdin-input exclude each other\n");
        return 2;
    }
    values = values || bindings || pretty; /* errors as text on stderr */
    struct cl_err err = {0};
    __attribute__((cleanup(cl_auto_cl_rego))) struct cl_rego *e =
        load_all(o.data, o.ndata, o.bundles, o.nbundles, o.v0, o.strict, &err);
    CL_AUTO(json_t) *input = NULL;
    bool input_ok = true;
    if (e && o.input)
        input_ok = (input = read_json_file(o.input, &err)) != NULL;
    else if (e && o.stdin_input)
        input_ok = (input = read_json_stdin(&err)) != NULL;
    __attribute__((cleanup(cl_auto_cl_rego_query))) struct cl_rego_query *q =
        e && input_ok ? cl_rego_prepare(e, o.query, &err) : NULL;
    struct cl_rv *rows = NULL;
    struct cl_rego_eval_opts eo = {.strict_builtin_errors = o.strict};
    if (!q || cl_rego_query_eval_rv(q, input, &eo, &rows, &err) < 0) {
        if (values)
            cl_cli_errf("cloister policy eval: %s", err.msg);
        else
            put_error(&err);
        return cl_err_exit_code(err.code ? err.code : CL_EINVAL);
    }
    if (bindings || pretty) {
        int prc = put_bindings_or_pretty(q, rows, pretty);
        cl_rv_decref(rows);
        return prc;
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
            CL_AUTO(json_t) *c = cl_rego_json_parse(p, len, input_depth, err);
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

/* An OPA test tree: a .rego file, or a directory with a *_test.rego file somewhere beneath. */
static bool has_opa_tests(const char *path, int depth)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    if (!S_ISDIR(st.st_mode))
        return has_suffix(path, ".rego");
    if (depth >= MAX_DIR_DEPTH)
        return false;
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, alphasort);
    bool found = false;
    for (int i = 0; i < n; i++) {
        const char *nm = names[i]->d_name;
        if (!found && nm[0] != '.') {
            if (has_suffix(nm, "_test.rego")) {
                found = true;
            } else {
                CL_AUTO(cl_str) *full = cl_strdupf("%s/%s", path, nm);
                struct stat cs;
                if (stat(full, &cs) == 0 && S_ISDIR(cs.st_mode))
                    found = has_opa_tests(full, depth + 1);
            }
        }
        free(names[i]);
    }
    free(names);
    return found;
}

static bool is_test_name(const char *ref, const char *prefix)
{
    const char *last = strrchr(ref, '.');
    return last && strncmp(last + 1, prefix, strlen(prefix)) == 0;
}

/* `opa test`: every test_ rule of the loaded modules, one evaluation each. */
static int run_opa_tests(struct eopts *o)
{
    struct cl_err err = {0};
    char *paths[2 * MAX_FILES];
    size_t np = 0;
    for (size_t i = 0; i < o->ndata; i++)
        paths[np++] = o->data[i];
    for (size_t i = 0; i < o->npaths && np < CL_ARRAY_LEN(paths); i++)
        paths[np++] = o->paths[i];
    struct cl_rego *e = load_all(paths, np, o->bundles, o->nbundles, o->v0, false, &err);
    if (!e) {
        cl_cli_errf("cloister policy test: %s", err.msg);
        return 1;
    }
    json_t *refs = cl_rego_rule_refs(e);
    long pass = 0, fail = 0, errs = 0, skip = 0;
    size_t i;
    json_t *r;
    json_array_foreach(refs, i, r)
    {
        const char *ref = json_string_value(r);
        if (is_test_name(ref, "todo_test_")) {
            skip++;
            if (o->verbose)
                printf("%s: SKIPPED\n", ref);
            continue;
        }
        if (!is_test_name(ref, "test_"))
            continue;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cl_err_clear(&err);
        json_t *v = cl_rego_eval_ref(e, ref, NULL, &err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double us = (double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
        const char *verdict;
        if (!v && err.code) {
            errs++;
            verdict = "ERROR";
        } else if (!v || json_is_false(v)) {
            fail++;
            verdict = "FAIL";
        } else {
            pass++;
            verdict = "PASS";
        }
        if (o->verbose || strcmp(verdict, "PASS") != 0) {
            printf("%s: %s (%.0fµs)\n", ref, verdict, us);
            if (!v && err.code)
                cl_cli_linef(stdout, "  %s", err.msg);
        }
        json_decref(v);
    }
    json_decref(refs);
    cl_rego_free(e);
    long total = pass + fail + errs + skip;
    if (!total) {
        fprintf(stderr, "cloister policy test: no test_ rules found\n");
        return 1;
    }
    printf("--------------------------------------------------------------------------------\n");
    if (pass)
        printf("PASS: %ld/%ld\n", pass, total);
    if (fail)
        printf("FAIL: %ld/%ld\n", fail, total);
    if (errs)
        printf("ERROR: %ld/%ld\n", errs, total);
    if (skip)
        printf("SKIPPED: %ld/%ld\n", skip, total);
    return fail || errs ? 2 : 0;
}

static int cmd_test(int argc, char **argv)
{
    struct eopts o;
    int rc = parse_opts(argc, argv, &o, help_test, false);
    if (rc >= 0)
        return rc;
    bool opa = o.ndata > 0;
    for (size_t i = 0; i < o.npaths && !opa; i++)
        opa = has_opa_tests(o.paths[i], 0);
    if (opa)
        return run_opa_tests(&o);
    struct cl_err err = {0};
    struct ksuite *suites = NULL;
    size_t ns = 0;
    if (collect_all(&o, &suites, &ns, &err) < 0) {
        cl_cli_errf("cloister policy test: %s", err.msg);
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
            cl_cli_linef(stdout, "FAIL %s: %s", s->name, err.msg);
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
        load_all(o->data, o->ndata, o->bundles, o->nbundles, o->v0, o->strict, &err);
    CL_AUTO(json_t) *input = NULL;
    if (e && o->input && !(input = read_json_file(o->input, &err)))
        e = NULL;
    __attribute__((cleanup(cl_auto_cl_rego_query))) struct cl_rego_query *q =
        e ? cl_rego_prepare(e, o->query, &err) : NULL;
    if (!q) {
        cl_cli_errf("cloister policy bench: %s", err.msg);
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
        cl_cli_errf("cloister policy bench: %s", err.msg);
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
            cl_cli_errf("cloister policy bench: %s", err.msg);
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
        cl_cli_errf("cloister policy bench: %s: %s", s->name, err.msg);
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
        cl_cli_errf("cloister policy bench: %s", err.msg);
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
