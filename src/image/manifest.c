/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI and Docker schema-2 manifests, indexes (manifest lists) and image configs: bounded JSON
 * parsing, the media-type table (compression and encryption of each layer type), descriptor
 * checks (digest syntax, size range) and platform selection in an index.
 */
#include "image/image_int.h"

#include <string.h>
#include <sys/utsname.h>

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

static const struct {
    const char *type;
    enum cl_image_manifest_kind kind;
} manifest_types[] = {
    {MT_OCI_MANIFEST, CL_IMAGE_MANIFEST},
    {MT_DOCKER_MANIFEST, CL_IMAGE_MANIFEST},
    {MT_OCI_INDEX, CL_IMAGE_INDEX},
    {MT_DOCKER_LIST, CL_IMAGE_INDEX},
};

static const char *const config_types[] = {
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
};

static const struct {
    const char *type;
    enum cl_image_compression comp;
    bool encrypted;
} layer_types[] = {
    {"application/vnd.oci.image.layer.v1.tar", CL_IMAGE_COMP_NONE, false},
    {"application/vnd.oci.image.layer.v1.tar+gzip", CL_IMAGE_COMP_GZIP, false},
    {"application/vnd.oci.image.layer.v1.tar+zstd", CL_IMAGE_COMP_ZSTD, false},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar", CL_IMAGE_COMP_NONE, false},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", CL_IMAGE_COMP_GZIP, false},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", CL_IMAGE_COMP_ZSTD, false},
    {"application/vnd.docker.image.rootfs.diff.tar.gzip", CL_IMAGE_COMP_GZIP, false},
    {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", CL_IMAGE_COMP_GZIP, false},
    {"application/vnd.oci.image.layer.v1.tar+encrypted", CL_IMAGE_COMP_NONE, true},
    {"application/vnd.oci.image.layer.v1.tar+gzip+encrypted", CL_IMAGE_COMP_GZIP, true},
    {"application/vnd.oci.image.layer.v1.tar+zstd+encrypted", CL_IMAGE_COMP_ZSTD, true},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+encrypted", CL_IMAGE_COMP_NONE, true},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip+encrypted", CL_IMAGE_COMP_GZIP,
     true},
    {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd+encrypted", CL_IMAGE_COMP_ZSTD,
     true},
};

void cl_image_manifest_clear(struct cl_image_manifest *m)
{
    if (!m)
        return;
    json_decref(m->doc);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

void cl_image_config_clear(struct cl_image_config *c)
{
    if (!c)
        return;
    json_decref(c->doc);
    free(c->diff_ids);
    memset(c, 0, sizeof *c);
}

/* Strips parameters: "application/json; charset=utf-8" compares as "application/json". */
static bool type_eq(const char *a, const char *b)
{
    size_t n = strcspn(a, "; \t");
    return strlen(b) == n && strncmp(a, b, n) == 0;
}

/* A required member that is missing makes the document malformed, not "not found". */
static int as_parse(int rc, struct cl_err *err)
{
    if (rc != CL_ENOTFOUND)
        return rc;
    if (err)
        err->code = CL_EPARSE;
    return CL_EPARSE;
}

/* ---- descriptors ---- */

enum desc_kind { DESC_CONFIG, DESC_LAYER, DESC_ENTRY, DESC_ANY };

static int parse_desc(const json_t *o, enum desc_kind kind, size_t i, struct cl_image_desc *d,
                      struct cl_err *err)
{
    const char *what = kind == DESC_CONFIG ? "config" : kind == DESC_ENTRY ? "manifests" : "layers";
    char where[48];
    if (kind == DESC_CONFIG)
        snprintf(where, sizeof where, "config");
    else
        snprintf(where, sizeof where, "%s[%zu]", what, i);
    if (!json_is_object(o))
        return cl_err_set(err, CL_EPARSE, "manifest %s: not an object", where);
    memset(d, 0, sizeof *d);
    const char *digest = NULL;
    json_int_t size = 0;
    int rc;
    if ((rc = cl_json_get_str(o, "mediaType", &d->media_type, err)) < 0 ||
        (rc = cl_json_get_str(o, "digest", &digest, err)) < 0 ||
        (rc = cl_json_get_int(o, "size", &size, err)) < 0) {
        cl_err_prefix(err, "manifest %s", where);
        return as_parse(rc, err);
    }
    if (size < 0)
        return cl_err_set(err, CL_EPARSE, "manifest %s: 'size' %lld is negative", where,
                          (long long)size);
    d->size = (uint64_t)size;
    if ((rc = cl_image_digest_parse(digest, &d->digest, "digest", err)) < 0)
        return cl_err_prefix(err, "manifest %s", where);
    json_t *ann = json_object_get(o, "annotations");
    if (ann) {
        if (!json_is_object(ann))
            return cl_err_set(err, CL_EPARSE, "manifest %s: 'annotations' is not an object", where);
        const char *k;
        json_t *v;
        json_object_foreach(ann, k, v)
        {
            if (!json_is_string(v))
                return cl_err_set(err, CL_EPARSE, "manifest %s: annotation '%.64s' is not a string",
                                  where, k);
        }
        d->annotations = ann;
    }
    switch (kind) {
    case DESC_CONFIG:
        for (size_t k = 0; k < CL_ARRAY_LEN(config_types); k++)
            if (type_eq(d->media_type, config_types[k]))
                return 0;
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "manifest config: media type '%.100s' is not an image config",
                          d->media_type);
    case DESC_LAYER:
        for (size_t k = 0; k < CL_ARRAY_LEN(layer_types); k++) {
            if (type_eq(d->media_type, layer_types[k].type)) {
                d->compression = layer_types[k].comp;
                d->encrypted = layer_types[k].encrypted;
                return 0;
            }
        }
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "manifest %s: layer media type '%.100s' is not supported", where,
                          d->media_type);
    case DESC_ANY:
        return 0;
    case DESC_ENTRY:
        break;
    }
    /* index entry: platform is optional (an entry without it never matches a platform) */
    json_t *pf = json_object_get(o, "platform");
    if (pf) {
        if (!json_is_object(pf))
            return cl_err_set(err, CL_EPARSE, "index %s: 'platform' is not an object", where);
        if ((rc = cl_json_get_str(pf, "os", &d->os, err)) < 0 ||
            (rc = cl_json_get_str(pf, "architecture", &d->arch, err)) < 0 ||
            (rc = cl_json_opt_str(pf, "variant", &d->variant, err)) < 0) {
            cl_err_prefix(err, "index %s platform", where);
            return as_parse(rc, err);
        }
    }
    return 0;
}

static int parse_desc_array(const json_t *doc, const char *key, enum desc_kind kind, size_t max,
                            struct cl_image_desc **out, size_t *n, struct cl_err *err)
{
    json_t *arr = NULL;
    int rc = cl_json_get_arr(doc, key, &arr, err);
    if (rc < 0) {
        cl_err_prefix(err, "manifest");
        return as_parse(rc, err);
    }
    size_t cnt = json_array_size(arr);
    if (cnt > max)
        return cl_err_set(err, CL_ELIMIT, "manifest: %zu %s, more than %zu", cnt, key, max);
    struct cl_image_desc *ds = calloc(cnt ? cnt : 1, sizeof *ds);
    if (!ds)
        return cl_err_set(err, CL_ENOMEM, "manifest: out of memory");
    for (size_t i = 0; i < cnt; i++) {
        if ((rc = parse_desc(json_array_get(arr, i), kind, i, &ds[i], err)) < 0) {
            free(ds);
            return rc;
        }
    }
    *out = ds;
    *n = cnt;
    return 0;
}

int cl_image_manifest_parse_any(const void *buf, size_t len, const char *content_type,
                                bool any_layers, struct cl_image_manifest *out, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (len > CL_IMAGE_MAX_MANIFEST)
        return cl_err_set(err, CL_ELIMIT, "manifest: %zu bytes, more than %u", len,
                          CL_IMAGE_MAX_MANIFEST);
    struct cl_image_manifest m = {0};
    m.doc = cl_json_parse(buf, len, CL_IMAGE_MAX_JSON_DEPTH, err);
    if (!m.doc)
        return cl_err_prefix(err, "manifest");
    int rc = 0;
    if (!json_is_object(m.doc)) {
        rc = cl_err_set(err, CL_EPARSE, "manifest: not a JSON object");
        goto fail;
    }
    json_int_t schema = 0;
    if ((rc = cl_json_get_int(m.doc, "schemaVersion", &schema, err)) < 0) {
        cl_err_prefix(err, "manifest");
        rc = as_parse(rc, err);
        goto fail;
    }
    if (schema != 2) {
        rc =
            cl_err_set(err, CL_EUNSUPPORTED,
                       "manifest: schemaVersion %lld is not supported (only 2)", (long long)schema);
        goto fail;
    }
    const char *doc_type = NULL;
    if ((rc = cl_json_opt_str(m.doc, "mediaType", &doc_type, err)) < 0) {
        cl_err_prefix(err, "manifest");
        goto fail;
    }
    if (doc_type && content_type && *content_type && !type_eq(content_type, doc_type) &&
        !type_eq(content_type, "application/json") &&
        !type_eq(content_type, "application/octet-stream")) {
        rc = cl_err_set(err, CL_EPARSE,
                        "manifest: mediaType '%.100s' but the registry says '%.100s'", doc_type,
                        content_type);
        goto fail;
    }
    const char *type = doc_type ? doc_type : content_type;
    bool known = false;
    if (type) {
        for (size_t i = 0; i < CL_ARRAY_LEN(manifest_types); i++) {
            if (type_eq(type, manifest_types[i].type)) {
                m.kind = manifest_types[i].kind;
                m.media_type = manifest_types[i].type;
                known = true;
            }
        }
    }
    if (!known) {
        /* OCI allows a manifest without mediaType; a registry may serve it as JSON */
        if (!doc_type && (!type || type_eq(type, "application/json") ||
                          type_eq(type, "application/octet-stream"))) {
            bool has_manifests = json_object_get(m.doc, "manifests") != NULL;
            bool has_layers = json_object_get(m.doc, "layers") != NULL;
            if (has_manifests == has_layers) {
                rc = cl_err_set(
                    err, CL_EPARSE,
                    "manifest: no mediaType and neither only 'layers' nor only 'manifests'");
                goto fail;
            }
            m.kind = has_manifests ? CL_IMAGE_INDEX : CL_IMAGE_MANIFEST;
            m.media_type = has_manifests ? MT_OCI_INDEX : MT_OCI_MANIFEST;
        } else {
            rc = cl_err_set(err, CL_EUNSUPPORTED, "manifest: media type '%.100s' is not supported",
                            type ? type : "");
            goto fail;
        }
    }
    if (m.kind == CL_IMAGE_INDEX) {
        if (json_object_get(m.doc, "layers") || json_object_get(m.doc, "config")) {
            rc = cl_err_set(err, CL_EPARSE, "index: has 'layers' or 'config'");
            goto fail;
        }
        if ((rc = parse_desc_array(m.doc, "manifests", DESC_ENTRY, CL_IMAGE_MAX_INDEX_ENTRIES,
                                   &m.layers, &m.nlayers, err)) < 0)
            goto fail;
    } else {
        if (json_object_get(m.doc, "manifests")) {
            rc = cl_err_set(err, CL_EPARSE, "manifest: has 'manifests'");
            goto fail;
        }
        json_t *cfg = json_object_get(m.doc, "config");
        if (!cfg) {
            rc = cl_err_set(err, CL_EPARSE, "manifest: 'config' is missing");
            goto fail;
        }
        if ((rc = parse_desc(cfg, any_layers ? DESC_ANY : DESC_CONFIG, 0, &m.config, err)) < 0)
            goto fail;
        if ((rc = parse_desc_array(m.doc, "layers", any_layers ? DESC_ANY : DESC_LAYER,
                                   CL_IMAGE_MAX_LAYERS, &m.layers, &m.nlayers, err)) < 0)
            goto fail;
    }
    *out = m;
    return 0;
fail:
    cl_image_manifest_clear(&m);
    return rc;
}

int cl_image_manifest_parse(const void *buf, size_t len, const char *content_type,
                            struct cl_image_manifest *out, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    return cl_image_manifest_parse_any(buf, len, content_type, false, out, err);
}

/* ---- platforms ---- */

void cl_image_platform(const char **os, const char **arch, const char **variant)
{
    static const struct {
        const char *machine, *arch, *variant;
    } map[] = {
        {"x86_64", "amd64", NULL},    {"aarch64", "arm64", NULL},   {"armv7l", "arm", "v7"},
        {"armv6l", "arm", "v6"},      {"ppc64le", "ppc64le", NULL}, {"s390x", "s390x", NULL},
        {"riscv64", "riscv64", NULL}, {"i686", "386", NULL},        {"i386", "386", NULL},
    };
    struct utsname u;
    *os = "linux";
    *arch = "amd64";
    *variant = NULL;
    if (uname(&u) != 0)
        return;
    for (size_t i = 0; i < CL_ARRAY_LEN(map); i++) {
        if (strcmp(u.machine, map[i].machine) == 0) {
            *arch = map[i].arch;
            *variant = map[i].variant;
            return;
        }
    }
}

static const char *norm_variant(const char *arch, const char *variant)
{
    if (!variant && arch && strcmp(arch, "arm64") == 0)
        return "v8";
    return variant;
}

int cl_image_index_select(const struct cl_image_manifest *idx, const char *os, const char *arch,
                          const char *variant, size_t *which, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (idx->kind != CL_IMAGE_INDEX)
        return cl_err_set(err, CL_EINVAL, "index select: not an index");
    const char *want_v = norm_variant(arch, variant);
    for (size_t i = 0; i < idx->nlayers; i++) {
        const struct cl_image_desc *d = &idx->layers[i];
        if (!d->os || !d->arch || strcmp(d->os, os) != 0 || strcmp(d->arch, arch) != 0)
            continue;
        bool manifest_type = false;
        for (size_t k = 0; k < CL_ARRAY_LEN(manifest_types); k++)
            if (manifest_types[k].kind == CL_IMAGE_MANIFEST &&
                type_eq(d->media_type, manifest_types[k].type))
                manifest_type = true;
        if (!manifest_type)
            continue;
        const char *have_v = norm_variant(d->arch, d->variant);
        if (variant && (!have_v || strcmp(have_v, want_v) != 0))
            continue;
        *which = i;
        return 0;
    }
    char offers[256] = "";
    size_t off = 0;
    for (size_t i = 0; i < idx->nlayers && off < sizeof offers - 1; i++) {
        const struct cl_image_desc *d = &idx->layers[i];
        int n = snprintf(offers + off, sizeof offers - off, "%s%.20s/%.20s%s%.10s", i ? ", " : "",
                         d->os ? d->os : "?", d->arch ? d->arch : "?", d->variant ? "/" : "",
                         d->variant ? d->variant : "");
        if (n < 0)
            break;
        off += (size_t)n;
        if (off >= sizeof offers)
            off = sizeof offers - 1;
    }
    return cl_err_set(err, CL_ENOTFOUND, "index: no manifest for %s/%s%s%s (offers: %s)", os, arch,
                      variant ? "/" : "", variant ? variant : "", offers[0] ? offers : "nothing");
}

/* ---- config ---- */

int cl_image_config_parse(const void *buf, size_t len, struct cl_image_config *out,
                          struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (len > CL_IMAGE_MAX_CONFIG)
        return cl_err_set(err, CL_ELIMIT, "image config: %zu bytes, more than %u", len,
                          CL_IMAGE_MAX_CONFIG);
    struct cl_image_config c = {0};
    c.doc = cl_json_parse(buf, len, CL_IMAGE_MAX_JSON_DEPTH, err);
    if (!c.doc)
        return cl_err_prefix(err, "image config");
    int rc = 0;
    json_t *rootfs = NULL, *ids = NULL;
    const char *type = NULL;
    if (!json_is_object(c.doc)) {
        rc = cl_err_set(err, CL_EPARSE, "image config: not a JSON object");
        goto fail;
    }
    if ((rc = cl_json_get_str(c.doc, "os", &c.os, err)) < 0 ||
        (rc = cl_json_get_str(c.doc, "architecture", &c.arch, err)) < 0 ||
        (rc = cl_json_get_obj(c.doc, "rootfs", &rootfs, err)) < 0 ||
        (rc = cl_json_get_str(rootfs, "type", &type, err)) < 0 ||
        (rc = cl_json_get_arr(rootfs, "diff_ids", &ids, err)) < 0) {
        cl_err_prefix(err, "image config");
        rc = as_parse(rc, err);
        goto fail;
    }
    if (strcmp(type, "layers") != 0) {
        rc =
            cl_err_set(err, CL_EPARSE, "image config: rootfs.type '%.32s' is not \"layers\"", type);
        goto fail;
    }
    size_t n = json_array_size(ids);
    if (n > CL_IMAGE_MAX_LAYERS) {
        rc = cl_err_set(err, CL_ELIMIT, "image config: %zu diff_ids, more than %d", n,
                        CL_IMAGE_MAX_LAYERS);
        goto fail;
    }
    c.diff_ids = calloc(n ? n : 1, sizeof *c.diff_ids);
    if (!c.diff_ids) {
        rc = cl_err_set(err, CL_ENOMEM, "image config: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(ids, i));
        if (!s) {
            rc = cl_err_set(err, CL_EPARSE, "image config: diff_ids[%zu] is not a string", i);
            goto fail;
        }
        if ((rc = cl_image_digest_parse(s, &c.diff_ids[i], "diff_id", err)) < 0) {
            cl_err_prefix(err, "image config: diff_ids[%zu]", i);
            goto fail;
        }
    }
    c.ndiff_ids = n;
    *out = c;
    return 0;
fail:
    cl_image_config_clear(&c);
    return rc;
}
