/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registries.d: where simple-signing signatures live (the "lookaside" store) and whether
 * cosign attachments are used, per registry namespace. YAML documents are read with libyaml
 * into JSON (depth and node visits capped, so aliases cannot expand without bound), merged
 * file by file (a namespace defined twice is an error, as in containers/image).
 */
#include "image/image_int.h"

#include <dirent.h>
#include <string.h>
#include <yaml.h>

#define MAX_YAML (1u * 1024 * 1024)
#define MAX_YAML_DEPTH 16
#define MAX_YAML_VISITS 100000
#define MAX_FILES 256

struct cl_image_lookaside {
    json_t *default_docker; /* object or NULL */
    json_t *docker;         /* object: namespace → object */
};

void cl_image_lookaside_free(struct cl_image_lookaside *l)
{
    if (!l)
        return;
    json_decref(l->default_docker);
    json_decref(l->docker);
    free(l);
}

static json_t *node_to_json(yaml_document_t *doc, yaml_node_t *n, int depth, size_t *visits,
                            struct cl_err *err)
{
    if (!n) {
        cl_err_set(err, CL_EPARSE, "registries.d: dangling YAML node");
        return NULL;
    }
    if (depth > MAX_YAML_DEPTH || ++*visits > MAX_YAML_VISITS) {
        cl_err_set(err, CL_ELIMIT, "registries.d: YAML deeper than %d or larger than %d nodes",
                   MAX_YAML_DEPTH, MAX_YAML_VISITS);
        return NULL;
    }
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        const char *v = (const char *)n->data.scalar.value;
        size_t len = n->data.scalar.length;
        if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
            if ((len == 4 && strcmp(v, "true") == 0))
                return json_true();
            if ((len == 5 && strcmp(v, "false") == 0))
                return json_false();
            if (len == 0 || (len == 1 && v[0] == '~') || (len == 4 && strcmp(v, "null") == 0))
                return json_null();
        }
        json_t *s = json_stringn(v, len);
        if (!s)
            cl_err_set(err, CL_EPARSE, "registries.d: YAML scalar is not UTF-8");
        return s;
    }
    case YAML_SEQUENCE_NODE: {
        CL_AUTO(json_t) *a = json_array();
        if (!a)
            break;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            json_t *v = node_to_json(doc, yaml_document_get_node(doc, *it), depth + 1, visits, err);
            if (!v || json_array_append_new(a, v) < 0)
                return NULL;
        }
        return CL_STEAL(a);
    }
    case YAML_MAPPING_NODE: {
        CL_AUTO(json_t) *o = json_object();
        if (!o)
            break;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(doc, p->key);
            if (!k || k->type != YAML_SCALAR_NODE) {
                cl_err_set(err, CL_EPARSE, "registries.d: a mapping key is not a scalar");
                return NULL;
            }
            CL_AUTO(cl_str) *key =
                strndup((const char *)k->data.scalar.value, k->data.scalar.length);
            if (!key || strlen(key) != k->data.scalar.length) {
                cl_err_set(err, CL_EPARSE, "registries.d: bad mapping key");
                return NULL;
            }
            if (json_object_get(o, key)) {
                cl_err_set(err, CL_EPARSE, "registries.d: key '%.64s' appears twice", key);
                return NULL;
            }
            json_t *v =
                node_to_json(doc, yaml_document_get_node(doc, p->value), depth + 1, visits, err);
            if (!v || json_object_set_new(o, key, v) < 0)
                return NULL;
        }
        return CL_STEAL(o);
    }
    default:
        cl_err_set(err, CL_EPARSE, "registries.d: empty YAML node");
        return NULL;
    }
    cl_err_set(err, CL_ENOMEM, "registries.d: out of memory");
    return NULL;
}

static json_t *yaml_to_json(const char *text, size_t len, struct cl_err *err)
{
    if (len > MAX_YAML) {
        cl_err_set(err, CL_ELIMIT, "registries.d: larger than %u bytes", MAX_YAML);
        return NULL;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        cl_err_set(err, CL_ENOMEM, "registries.d: out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        cl_err_set(err, CL_EPARSE, "registries.d: YAML line %zu: %.100s",
                   parser.problem_mark.line + 1, parser.problem ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        return NULL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    json_t *out = NULL;
    size_t visits = 0;
    if (!root)
        out = json_object(); /* an empty file */
    else
        out = node_to_json(&doc, root, 0, &visits, err);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (out && !json_is_object(out)) {
        json_decref(out);
        cl_err_set(err, CL_EPARSE, "registries.d: the document is not a mapping");
        return NULL;
    }
    return out;
}

static int check_entry(const json_t *e, const char *where, struct cl_err *err)
{
    if (!json_is_object(e))
        return cl_err_set(err, CL_EPARSE, "registries.d %s: not a mapping", where);
    static const char *const keys[] = {"lookaside", "lookaside-staging", "sigstore",
                                       "sigstore-staging", "use-sigstore-attachments"};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)e, k, v)
    {
        bool known = false;
        for (size_t i = 0; i < CL_ARRAY_LEN(keys); i++)
            known = known || strcmp(k, keys[i]) == 0;
        if (!known)
            return cl_err_set(err, CL_EPARSE, "registries.d %s: unknown key '%.64s'", where, k);
        bool want_bool = strcmp(k, "use-sigstore-attachments") == 0;
        if (want_bool ? !json_is_boolean(v) : !json_is_string(v))
            return cl_err_set(err, CL_EPARSE, "registries.d %s: '%s' has the wrong type", where, k);
    }
    return 0;
}

static int merge(struct cl_image_lookaside *l, const json_t *doc, const char *name,
                 struct cl_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)doc, k, v)
    {
        if (strcmp(k, "default-docker") == 0) {
            /* the same definition in two files is fine (image-rs merges them); two
             * different ones would make the answer depend on file order */
            if (l->default_docker && !json_equal(l->default_docker, v))
                return cl_err_set(err, CL_EPARSE,
                                  "registries.d %s: default-docker is defined twice", name);
            if (check_entry(v, "default-docker", err) < 0)
                return CL_EPARSE;
            if (!l->default_docker)
                l->default_docker = json_incref(v);
        } else if (strcmp(k, "docker") == 0) {
            if (!json_is_object(v))
                return cl_err_set(err, CL_EPARSE, "registries.d %s: 'docker' is not a mapping",
                                  name);
            const char *ns;
            json_t *e;
            json_object_foreach(v, ns, e)
            {
                json_t *have = json_object_get(l->docker, ns);
                if (have && !json_equal(have, e))
                    return cl_err_set(err, CL_EPARSE,
                                      "registries.d %s: namespace '%.100s' is defined twice", name,
                                      ns);
                if (check_entry(e, ns, err) < 0 || json_object_set(l->docker, ns, e) < 0)
                    return err ? err->code : CL_EPARSE;
            }
        } else {
            return cl_err_set(err, CL_EPARSE, "registries.d %s: unknown key '%.64s'", name, k);
        }
    }
    return 0;
}

static struct cl_image_lookaside *lookaside_new(struct cl_err *err)
{
    struct cl_image_lookaside *l = calloc(1, sizeof *l);
    if (!l || !(l->docker = json_object())) {
        free(l);
        cl_err_set(err, CL_ENOMEM, "registries.d: out of memory");
        return NULL;
    }
    return l;
}

struct cl_image_lookaside *cl_image_lookaside_parse(const char *yaml, size_t len,
                                                    struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    struct cl_image_lookaside *l = lookaside_new(err);
    if (!l)
        return NULL;
    CL_AUTO(json_t) *doc = yaml_to_json(yaml, len, err);
    if (!doc || merge(l, doc, "(text)", err) < 0) {
        cl_image_lookaside_free(l);
        return NULL;
    }
    return l;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct cl_image_lookaside *cl_image_lookaside_load(const char *dir, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    struct cl_image_lookaside *l = lookaside_new(err);
    if (!l)
        return NULL;
    DIR *d = opendir(dir);
    if (!d)
        return l; /* no configuration */
    char *names[MAX_FILES];
    size_t n = 0;
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);
        if (nl < 6 || strcmp(de->d_name + nl - 5, ".yaml") != 0 || de->d_name[0] == '.')
            continue;
        if (n == MAX_FILES) {
            rc = cl_err_set(err, CL_ELIMIT, "registries.d %s: more than %d files", dir, MAX_FILES);
            break;
        }
        if (!(names[n++] = strdup(de->d_name))) {
            n--;
            rc = cl_err_set(err, CL_ENOMEM, "registries.d: out of memory");
            break;
        }
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_str);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        CL_AUTO(cl_str) *path = cl_strdupf("%s/%s", dir, names[i]);
        size_t len = 0;
        CL_AUTO(cl_bytes) *txt = path ? cl_file_read(path, MAX_YAML, &len, err) : NULL;
        CL_AUTO(json_t) *doc = txt ? yaml_to_json((const char *)txt, len, err) : NULL;
        if (!doc || merge(l, doc, names[i], err) < 0) {
            rc = err ? err->code : CL_EPARSE;
            if (path)
                cl_err_prefix(err, "%s", path);
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    if (rc < 0) {
        cl_image_lookaside_free(l);
        return NULL;
    }
    return l;
}

json_t *cl_image_lookaside_json(const struct cl_image_lookaside *l)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if ((l->default_docker && json_object_set(o, "default-docker", l->default_docker) < 0) ||
        (json_object_size(l->docker) && json_object_set(o, "docker", l->docker) < 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The first entry among the scopes of ref (then default-docker) that sets one of keys. */
static const json_t *lookup(const struct cl_image_lookaside *l, const struct cl_image_ref *ref,
                            const char *const *keys, size_t nkeys)
{
    size_t n = 0;
    CL_AUTO(cl_str) *scopes = cl_image_scopes(ref, &n);
    const char *sc = scopes;
    for (size_t i = 0; sc && i < n; i++, sc += strlen(sc) + 1) {
        const json_t *e = json_object_get(l->docker, sc);
        for (size_t k = 0; e && k < nkeys; k++)
            if (json_object_get(e, keys[k]))
                return e;
    }
    for (size_t k = 0; l->default_docker && k < nkeys; k++)
        if (json_object_get(l->default_docker, keys[k]))
            return l->default_docker;
    return NULL;
}

cl_str *cl_image_lookaside_url(const struct cl_image_lookaside *l, const struct cl_image_ref *ref,
                               bool *use_sigstore)
{
    *use_sigstore = false;
    if (!l)
        return NULL;
    static const char *const att[] = {"use-sigstore-attachments"};
    static const char *const urls[] = {"lookaside", "sigstore"};
    const json_t *a = lookup(l, ref, att, 1);
    *use_sigstore = a && json_is_true(json_object_get(a, "use-sigstore-attachments"));
    const json_t *e = lookup(l, ref, urls, 2);
    if (!e)
        return NULL;
    const char *url = json_string_value(json_object_get(e, "lookaside"));
    if (!url)
        url = json_string_value(json_object_get(e, "sigstore"));
    return url ? strdup(url) : NULL;
}
