/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OPA conformance runner: walks $CLOISTER_VECTORS/opa/v1/FOLDER/NAME.yaml, runs every case
 * with OPA's runner semantics (see the README next to the vectors) and prints pass/fail/skip
 * per folder and in total. Skips come from tests/conformance/rego-skips.txt (each with a
 * reason); the run fails when the pass count drops below tests/conformance/rego-threshold.txt.
 * Arguments: optional folder names to run only those; CLOISTER_REGO_VERBOSE=1 prints each
 * failure.
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <yaml.h>

#include "rego/rego.h"
#include "json/json.h"

static int verbose;

/* ---- YAML to JSON ---- */

static json_t *scalar_json(const yaml_node_t *n)
{
    const char *s = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_stringn(s, len);
    if (!strcmp(s, "null") || !strcmp(s, "~") || len == 0)
        return json_null();
    if (!strcmp(s, "true"))
        return json_true();
    if (!strcmp(s, "false"))
        return json_false();
    char *end = NULL;
    long long ll = strtoll(s, &end, 10);
    if (end && *end == 0 && end != s)
        return json_integer(ll);
    double d = strtod(s, &end);
    if (end && *end == 0 && end != s)
        return json_real(d);
    return json_stringn(s, len);
}

static json_t *node_json(yaml_document_t *doc, yaml_node_t *n, int depth)
{
    if (!n || depth > 200)
        return json_null();
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return scalar_json(n);
    case YAML_SEQUENCE_NODE: {
        json_t *a = json_array();
        for (yaml_node_item_t *i = n->data.sequence.items.start; i < n->data.sequence.items.top;
             i++)
            json_array_append_new(a, node_json(doc, yaml_document_get_node(doc, *i), depth + 1));
        return a;
    }
    case YAML_MAPPING_NODE: {
        json_t *o = json_object();
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            if (!k || k->type != YAML_SCALAR_NODE)
                continue;
            json_object_setn_new(o, (const char *)k->data.scalar.value, k->data.scalar.length,
                                 node_json(doc, yaml_document_get_node(doc, p->value), depth + 1));
        }
        return o;
    }
    default:
        return json_null();
    }
}

static json_t *load_yaml(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    yaml_parser_t p;
    yaml_document_t doc;
    json_t *out = NULL;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    if (yaml_parser_load(&p, &doc)) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root)
            out = node_json(&doc, root, 0);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&p);
    fclose(f);
    return out;
}

/* ---- skips ---- */

struct skip {
    char *kind, *name, *reason;
};
static struct skip *skips;
static size_t nskips;

static void load_skips(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[2048];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        char *t1 = strchr(line, '\t');
        if (!t1)
            continue;
        *t1 = 0;
        char *t2 = strchr(t1 + 1, '\t');
        if (!t2)
            continue;
        *t2 = 0;
        skips = realloc(skips, (nskips + 1) * sizeof *skips);
        skips[nskips].kind = strdup(line);
        skips[nskips].name = strdup(t1 + 1);
        skips[nskips].reason = strdup(t2 + 1);
        nskips++;
    }
    fclose(f);
}

static const char *skip_reason(const char *folder, const char *note)
{
    for (size_t i = 0; i < nskips; i++) {
        if (!strcmp(skips[i].kind, "folder") && !strcmp(skips[i].name, folder))
            return skips[i].reason;
        if (!strcmp(skips[i].kind, "note") && note && !strcmp(skips[i].name, note))
            return skips[i].reason;
    }
    return NULL;
}

/* ---- comparison ---- */

static int cmp_rv(const void *a, const void *b)
{
    return cl_rv_compare(*(struct cl_rv *const *)a, *(struct cl_rv *const *)b);
}

/* The elements of array a in order (takes a; returns new). */
static struct cl_rv *sorted(struct cl_rv *a)
{
    size_t n = cl_rv_len(a);
    struct cl_rv **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return a;
    for (size_t i = 0; i < n; i++)
        v[i] = cl_rv_item(a, i);
    qsort(v, n, sizeof *v, cmp_rv);
    struct cl_rv *r = cl_rv_array(n);
    for (size_t i = 0; i < n; i++)
        cl_rv_array_push(r, cl_rv_incref(v[i]));
    free(v);
    cl_rv_decref(a);
    return r;
}

/* Normalises a row (object of bindings): JSON round trip (sets -> arrays), sorted arrays if asked.
 */
static struct cl_rv *norm_row(json_t *j, bool sort_bindings)
{
    struct cl_rv *r = cl_rv_from_json(j);
    if (sort_bindings && cl_rv_is(r, CL_RV_OBJECT)) {
        for (size_t i = 0; i < cl_rv_len(r); i++) {
            struct cl_rv *v = cl_rv_obj_val(r, i);
            if (cl_rv_is(v, CL_RV_ARRAY) && cl_rv_len(v) > 1)
                cl_rv_obj_put(r, cl_rv_incref(cl_rv_obj_key(r, i)), sorted(cl_rv_incref(v)));
        }
    }
    return r;
}

static bool rows_equal(json_t *want, struct cl_rv *rows, bool sort_bindings, char **got_text)
{
    size_t n = json_array_size(want);
    struct cl_rv *w = cl_rv_array(n), *g = cl_rv_array(cl_rv_len(rows));
    for (size_t i = 0; i < n; i++)
        cl_rv_array_push(w, norm_row(json_array_get(want, i), sort_bindings));
    json_t *gj = json_array();
    for (size_t i = 0; i < cl_rv_len(rows); i++) {
        json_t *b = cl_rv_to_json(cl_rv_obj_get_str(cl_rv_item(rows, i), "bindings"));
        cl_rv_array_push(g, norm_row(b, sort_bindings));
        json_array_append_new(gj, b);
    }
    w = sorted(w);
    g = sorted(g);
    bool eq = cl_rv_equal(w, g);
    if (!eq && got_text)
        *got_text = json_dumps(gj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(gj);
    cl_rv_decref(w);
    cl_rv_decref(g);
    return eq;
}

/* ---- test builtins of OPA's runner ---- */

/* test.sleep(duration): "10ms", "1s", ... (at most one second). */
static int bi_test_sleep(struct cl_rego_bctx *ctx, struct cl_rv *const *args, struct cl_rv **out)
{
    if (cl_rego_bi_want(ctx, args, 0, CL_RV_STRING) < 0)
        return -1;
    char *end = NULL;
    double v = strtod(cl_rv_str_get(args[0], NULL), &end);
    double scale = !strcmp(end, "ms")   ? 1e6
                   : !strcmp(end, "us") ? 1e3
                   : !strcmp(end, "ns") ? 1
                   : !strcmp(end, "s")  ? 1e9
                                        : -1;
    if (scale < 0 || v < 0 || v * scale > 1e9)
        return cl_rego_bi_error(ctx, "invalid duration %s", cl_rv_str_get(args[0], NULL));
    struct timespec ts = {(time_t)(v * scale / 1e9), (long)fmod(v * scale, 1e9)};
    nanosleep(&ts, NULL);
    *out = cl_rv_null();
    return 0;
}

/* ---- one case ---- */

enum result { PASS, FAIL, SKIP };

static struct cl_rv *eval_input_term(const char *text, struct cl_err *err)
{
    struct cl_rego *e = cl_rego_new(NULL);
    char *q = cl_strdupf("cl_input_term := %s", text);
    struct cl_rv *rows = NULL, *out = NULL;
    if (cl_rego_eval_query_rv(e, q, NULL, NULL, &rows, err) == 0 && cl_rv_len(rows) == 1) {
        struct cl_rv *b = cl_rv_obj_get_str(cl_rv_item(rows, 0), "bindings");
        out = cl_rv_incref(cl_rv_obj_get_str(b, "cl_input_term"));
    }
    cl_rv_decref(rows);
    free(q);
    cl_rego_free(e);
    return out;
}

static enum result run_case(const char *folder, json_t *c, char *why, size_t whylen)
{
    const char *note = json_string_value(json_object_get(c, "note"));
    const char *reason = skip_reason(folder, note);
    if (reason) {
        snprintf(why, whylen, "%s", reason);
        return SKIP;
    }
    const char *query = json_string_value(json_object_get(c, "query"));
    json_t *modules = json_object_get(c, "modules");
    json_t *data = json_object_get(c, "data");
    json_t *input = json_object_get(c, "input");
    const char *input_term = json_string_value(json_object_get(c, "input_term"));
    json_t *want = json_object_get(c, "want_result");
    json_t *want_defined = json_object_get(c, "want_defined");
    const char *want_error = json_string_value(json_object_get(c, "want_error"));
    const char *want_code = json_string_value(json_object_get(c, "want_error_code"));
    bool strict = json_is_true(json_object_get(c, "strict_error"));
    bool sort_b = json_is_true(json_object_get(c, "sort_bindings"));
    struct cl_err err = {0};
    enum result res = FAIL;
    struct cl_rego_opts opts = {.strict_builtin_errors = strict};
    struct cl_rego *e = cl_rego_new(&opts);
    struct cl_rv *rows = NULL, *in_term = NULL;
    size_t i;
    json_t *m;
    int rc = cl_rego_register_builtin(e, "test.sleep", 1, bi_test_sleep, NULL, &err);
    json_array_foreach(modules, i, m)
    {
        char name[32];
        snprintf(name, sizeof name, "test-%zu.rego", i);
        rc = cl_rego_add_module(e, name, json_string_value(m), json_string_length(m), false, &err);
        if (rc < 0)
            break;
    }
    if (rc == 0 && data)
        rc = cl_rego_set_data(e, data, &err);
    if (rc == 0 && input_term) {
        in_term = eval_input_term(input_term, &err);
        if (!in_term)
            rc = -1;
    }
    if (rc == 0) {
        struct cl_rego_eval_opts eo = {.strict_builtin_errors = strict, .input_value = in_term};
        rc = cl_rego_eval_query_rv(e, query, in_term ? NULL : input, &eo, &rows, &err);
    }
    char code[64];
    cl_rego_err_code(&err, code, sizeof code);
    if (want_error || want_code) {
        if (rc == 0) {
            snprintf(why, whylen, "expected error %s, got success",
                     want_code ? want_code : want_error);
        } else if (want_code && strcmp(code, want_code) != 0) {
            snprintf(why, whylen, "expected %s, got: %s", want_code, err.msg);
        } else if (want_error && !strstr(err.msg, want_error)) {
            snprintf(why, whylen, "expected text '%s', got: %s", want_error, err.msg);
        } else {
            res = PASS;
        }
        goto out;
    }
    if (rc < 0) {
        snprintf(why, whylen, "error: %s", err.msg);
        goto out;
    }
    if (want_defined) {
        bool def = cl_rv_len(rows) > 0;
        if (def != json_is_true(want_defined)) {
            snprintf(why, whylen, "want_defined %d, got %zu rows", json_is_true(want_defined),
                     cl_rv_len(rows));
            goto out;
        }
    }
    if (want) {
        char *got = NULL;
        if (!rows_equal(want, rows, sort_b, &got)) {
            char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
            snprintf(why, whylen, "want %.300s got %.300s", w ? w : "?", got ? got : "?");
            free(w);
            free(got);
            goto out;
        }
    }
    res = PASS;
out:
    cl_rv_decref(rows);
    cl_rv_decref(in_term);
    cl_rego_free(e);
    return res;
}

/* ---- walking ---- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **list_dir(const char *path, size_t *n, bool dirs)
{
    DIR *d = opendir(path);
    char **out = NULL;
    *n = 0;
    if (!d)
        return NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *full = cl_strdupf("%s/%s", path, de->d_name);
        struct stat st;
        bool isdir = stat(full, &st) == 0 && S_ISDIR(st.st_mode);
        free(full);
        size_t l = strlen(de->d_name);
        if (dirs ? !isdir : (isdir || l < 5 || strcmp(de->d_name + l - 5, ".yaml")))
            continue;
        out = realloc(out, (*n + 1) * sizeof *out);
        out[(*n)++] = strdup(de->d_name);
    }
    closedir(d);
    if (*n)
        qsort(out, *n, sizeof *out, cmp_str);
    return out;
}

int main(int argc, char **argv)
{
    const char *vec = getenv("CLOISTER_VECTORS");
    if (!vec || !*vec)
        vec = getenv("CLOISTER_VECTORS_DEFAULT");
    if (!vec) {
        fprintf(stderr, "CLOISTER_VECTORS not set: skipping\n");
        return 77;
    }
    char *root = cl_strdupf("%s/opa/v1", vec);
    struct stat st;
    if (stat(root, &st) != 0) {
        fprintf(stderr, "%s absent: skipping\n", root);
        free(root);
        return 77;
    }
    verbose = getenv("CLOISTER_REGO_VERBOSE") != NULL;
    const char *src = getenv("CLOISTER_SRC");
    char *skp = cl_strdupf("%s/tests/conformance/rego-skips.txt", src ? src : ".");
    char *thr = cl_strdupf("%s/tests/conformance/rego-threshold.txt", src ? src : ".");
    load_skips(skp);
    long threshold = 0;
    FILE *tf = fopen(thr, "r");
    if (tf) {
        if (fscanf(tf, "%ld", &threshold) != 1)
            threshold = 0;
        fclose(tf);
    }
    size_t nf;
    char **folders = list_dir(root, &nf, true);
    long tp = 0, tfail = 0, ts = 0;
    for (size_t fi = 0; fi < nf; fi++) {
        if (argc > 1) {
            bool want = false;
            for (int a = 1; a < argc; a++)
                want |= !strcmp(argv[a], folders[fi]);
            if (!want) {
                free(folders[fi]);
                continue;
            }
        }
        char *dir = cl_strdupf("%s/%s", root, folders[fi]);
        size_t nfiles;
        char **files = list_dir(dir, &nfiles, false);
        long p = 0, f = 0, s = 0;
        for (size_t k = 0; k < nfiles; k++) {
            char *path = cl_strdupf("%s/%s", dir, files[k]);
            json_t *doc = load_yaml(path);
            json_t *cases = json_object_get(doc, "cases");
            size_t ci;
            json_t *c;
            json_array_foreach(cases, ci, c)
            {
                char why[1024] = "";
                enum result r = run_case(folders[fi], c, why, sizeof why);
                if (r == PASS)
                    p++;
                else if (r == SKIP)
                    s++;
                else {
                    f++;
                    if (verbose)
                        printf("FAIL %s [%s]: %s\n", json_string_value(json_object_get(c, "note")),
                               files[k], why);
                }
            }
            json_decref(doc);
            free(path);
            free(files[k]);
        }
        free(files);
        printf("%-40s pass %4ld fail %4ld skip %4ld\n", folders[fi], p, f, s);
        tp += p;
        tfail += f;
        ts += s;
        free(dir);
        free(folders[fi]);
    }
    free(folders);
    printf("TOTAL pass %ld fail %ld skip %ld (threshold %ld)\n", tp, tfail, ts, threshold);
    for (size_t i = 0; i < nskips; i++) {
        free(skips[i].kind);
        free(skips[i].name);
        free(skips[i].reason);
    }
    free(skips);
    free(root);
    free(skp);
    free(thr);
    if (argc > 1)
        return 0;
    return tp >= threshold ? 0 : 1;
}
