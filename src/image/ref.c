/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image references in the Docker grammar, normalised as the container tools do: a first
 * component with a '.' or ':' (or "localhost") names the registry, otherwise the image is on
 * docker.io, where one-component names live under library/. The tag defaults to "latest"
 * unless a digest is given.
 */
#include "image/image_int.h"

#include <string.h>

#define MAX_NAME 255 /* registry + "/" + repository */
#define MAX_TAG 128

void cl_image_ref_clear(struct cl_image_ref *r)
{
    if (!r)
        return;
    free(r->registry);
    free(r->repository);
    free(r->tag);
    free(r->digest);
    memset(r, 0, sizeof *r);
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* path-component: [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static bool component_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0 || !is_lower_alnum(s[0]))
        return false;
    while (i < n) {
        while (i < n && is_lower_alnum(s[i]))
            i++;
        if (i == n)
            return true;
        /* a separator */
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < n && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < n && s[i] == '-')
                i++;
        } else {
            return false;
        }
        if (i == n || !is_lower_alnum(s[i]))
            return false;
    }
    return true;
}

/* host: labels of [A-Za-z0-9-] separated by '.', or [v6], then an optional :port */
static bool registry_ok(const char *s, size_t n)
{
    size_t i = 0;
    if (n == 0)
        return false;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return false;
        for (const char *p = s + 1; p < close; p++)
            if (!(is_alnum(*p) || *p == ':' || *p == '.'))
                return false;
        i = (size_t)(close - s) + 1;
    } else {
        bool label_start = true;
        while (i < n && s[i] != ':') {
            char c = s[i];
            if (c == '.') {
                if (label_start)
                    return false;
                label_start = true;
            } else if (is_alnum(c) || (c == '-' && !label_start)) {
                label_start = false;
            } else {
                return false;
            }
            i++;
        }
        if (label_start)
            return false;
    }
    if (i == n)
        return true;
    if (s[i] != ':' || i + 1 == n)
        return false;
    for (size_t k = i + 1; k < n; k++)
        if (!(s[k] >= '0' && s[k] <= '9'))
            return false;
    return n - i - 1 <= 5;
}

static bool tag_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_TAG)
        return false;
    if (!(is_alnum(s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(is_alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return false;
    return true;
}

static cl_str *dupn(const char *s, size_t n)
{
    cl_str *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* work is a writable copy of s, cut in place. */
static int ref_parse(char *work, const char *s, struct cl_image_ref *out, struct cl_err *err)
{
    struct cl_image_ref r = {0};
    int rc = 0;

    /* ---- @digest ---- */
    char *at = strchr(work, '@');
    if (at) {
        *at = 0;
        struct cl_image_digest d;
        if ((rc = cl_image_digest_parse(at + 1, &d, "image reference digest", err)) < 0)
            goto fail;
        if (!(r.digest = strdup(d.str)))
            goto oom;
    }
    /* ---- :tag (after the last '/') ---- */
    char *slash = strrchr(work, '/');
    char *colon = strrchr(slash ? slash : work, ':');
    if (colon) {
        *colon = 0;
        if (!tag_ok(colon + 1)) {
            rc = cl_err_set(err, CL_EPARSE, "image reference '%.200s': bad tag '%.130s'", s,
                            colon + 1);
            goto fail;
        }
        if (!(r.tag = strdup(colon + 1)))
            goto oom;
    } else if (!r.digest) {
        if (!(r.tag = strdup("latest")))
            goto oom;
    }
    /* ---- registry / repository ---- */
    const char *name = work;
    const char *first_slash = strchr(name, '/');
    const char *repo = name;
    if (first_slash) {
        size_t fl = (size_t)(first_slash - name);
        if (memchr(name, '.', fl) || memchr(name, ':', fl) ||
            (fl == 9 && memcmp(name, "localhost", 9) == 0) || name[0] == '[') {
            if (!registry_ok(name, fl)) {
                rc = cl_err_set(err, CL_EPARSE, "image reference '%.200s': bad registry '%.*s'", s,
                                (int)fl, name);
                goto fail;
            }
            if (!(r.registry = dupn(name, fl)))
                goto oom;
            repo = first_slash + 1;
        }
    }
    if (!r.registry && !(r.registry = strdup("docker.io")))
        goto oom;
    /* index.docker.io and registry-1.docker.io are docker.io */
    if (strcmp(r.registry, "index.docker.io") == 0 ||
        strcmp(r.registry, "registry-1.docker.io") == 0) {
        free(r.registry);
        if (!(r.registry = strdup("docker.io")))
            goto oom;
    }
    if (!*repo) {
        rc = cl_err_set(err, CL_EPARSE, "image reference '%.200s': no repository", s);
        goto fail;
    }
    for (const char *p = repo;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!component_ok(p, n)) {
            rc = cl_err_set(err, CL_EPARSE,
                            "image reference '%.200s': repository component '%.*s' is not "
                            "lowercase [a-z0-9._-]",
                            s, (int)(n > 64 ? 64 : n), p);
            goto fail;
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (strcmp(r.registry, "docker.io") == 0 && !strchr(repo, '/'))
        r.repository = cl_strdupf("library/%s", repo);
    else
        r.repository = strdup(repo);
    if (!r.repository)
        goto oom;
    if (strlen(r.registry) + 1 + strlen(r.repository) > MAX_NAME) {
        rc = cl_err_set(err, CL_ELIMIT, "image reference '%.200s': name longer than %d characters",
                        s, MAX_NAME);
        goto fail;
    }
    *out = r;
    return 0;
oom:
    rc = cl_err_set(err, CL_ENOMEM, "image reference: out of memory");
fail:
    cl_image_ref_clear(&r);
    return rc;
}

int cl_image_ref_parse(const char *s, struct cl_image_ref *out, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (!s || !*s)
        return cl_err_set(err, CL_EPARSE, "image reference: empty");
    size_t len = strlen(s);
    if (len > CL_IMAGE_MAX_REF)
        return cl_err_set(err, CL_ELIMIT, "image reference: longer than %d characters",
                          CL_IMAGE_MAX_REF);
    CL_AUTO(cl_str) *work = dupn(s, len);
    if (!work)
        return cl_err_set(err, CL_ENOMEM, "image reference: out of memory");
    return ref_parse(work, s, out, err);
}

cl_str *cl_image_ref_string(const struct cl_image_ref *r)
{
    return cl_strdupf("%s/%s%s%s%s%s", r->registry, r->repository, r->tag ? ":" : "",
                      r->tag ? r->tag : "", r->digest ? "@" : "", r->digest ? r->digest : "");
}

cl_str *cl_image_ref_name(const struct cl_image_ref *r)
{
    return cl_strdupf("%s/%s", r->registry, r->repository);
}
