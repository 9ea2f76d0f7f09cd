/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz surface: what a registry sends before any layer: manifests, indexes (with platform
 * selection) and image configs. The first byte picks the Content-Type the registry claims;
 * the rest is the document. Whatever is accepted must be self-consistent: counts within the
 * caps, digests that re-parse to themselves, layer flags that match the media type.
 */
#include <stdio.h>
#include <string.h>

#include "image/image_int.h"

static const char *const ctypes[] = {
    NULL,
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/json",
    "text/plain",
    "",
};

static void check_desc(const struct cl_image_desc *d)
{
    struct cl_image_digest again;
    if (cl_image_digest_parse(d->digest.str, &again, NULL, NULL) < 0 ||
        !cl_image_digest_eq(&again, &d->digest)) {
        fprintf(stderr, "digest does not re-parse: %s\n", d->digest.str);
        abort();
    }
    if (d->encrypted && !strstr(d->media_type, "+encrypted")) {
        fprintf(stderr, "encrypted flag without +encrypted: %s\n", d->media_type);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *ct = ctypes[data[0] % CL_ARRAY_LEN(ctypes)];
    const uint8_t *doc = data + 1;
    size_t len = size - 1;
    cl_log_set_level(CL_LOG_ERROR);
    struct cl_err e = {0};
    struct cl_image_manifest m;
    if (cl_image_manifest_parse(doc, len, ct, &m, &e) == 0) {
        size_t cap = m.kind == CL_IMAGE_INDEX ? CL_IMAGE_MAX_INDEX_ENTRIES : CL_IMAGE_MAX_LAYERS;
        if (m.nlayers > cap) {
            fprintf(stderr, "more entries than the cap\n");
            abort();
        }
        for (size_t i = 0; i < m.nlayers; i++)
            check_desc(&m.layers[i]);
        if (m.kind == CL_IMAGE_MANIFEST)
            check_desc(&m.config);
        size_t which = 0;
        if (m.kind == CL_IMAGE_INDEX &&
            cl_image_index_select(&m, "linux", "amd64", NULL, &which, &e) == 0 &&
            which >= m.nlayers) {
            fprintf(stderr, "selected entry out of range\n");
            abort();
        }
        cl_image_manifest_clear(&m);
    } else if (!e.msg[0]) {
        fprintf(stderr, "refusal without a message\n");
        abort();
    }
    struct cl_image_manifest any;
    if (cl_image_manifest_parse_any(doc, len, ct, true, &any, NULL) == 0)
        cl_image_manifest_clear(&any);
    struct cl_image_config c;
    if (cl_image_config_parse(doc, len, &c, NULL) == 0) {
        if (c.ndiff_ids > CL_IMAGE_MAX_LAYERS || !c.os || !c.arch) {
            fprintf(stderr, "config accepted inconsistently\n");
            abort();
        }
        cl_image_config_clear(&c);
    }
    return 0;
}
