/* SPDX-License-Identifier: Apache-2.0 */
/*
 * registries.conf (containers-registries.conf v2, the subset image-rs reads): per-prefix
 * location remapping, mirrors (tried first), insecure registries (plain HTTP or unchecked
 * TLS, logged on every use) and blocked prefixes. The longest matching prefix wins; a match
 * must end at the end of the name or before a '/'.
 */
#include "image/image_int.h"
#include "toml/toml.h"

#include <string.h>

#define MAX_ENDPOINTS 8

struct cl_image_regconf {
    json_t *registries; /* array of validated [[registry]] tables */
    json_t *insecure;   /* array of host strings added by cl_image_regconf_add_insecure */
};

void cl_image_regconf_free(struct cl_image_regconf *c)
{
    if (!c)
        return;
    json_decref(c->registries);
    json_decref(c->insecure);
    free(c);
}

static bool key_in(const char *k, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

static int check_table(json_t *t, const char *where, const char *const *keys, size_t nkeys,
                       const char *const *bools, size_t nbools, struct cl_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(t, k, v)
    {
        if (!key_in(k, keys, nkeys))
            return cl_err_set(err, CL_EPARSE, "registries.conf %s: unknown key '%.64s'", where, k);
        bool want_bool = key_in(k, bools, nbools);
        if (want_bool && !json_is_boolean(v))
            return cl_err_set(err, CL_EPARSE, "registries.conf %s: '%s' must be a boolean", where,
                              k);
        if (!want_bool && strcmp(k, "mirror") != 0 && !json_is_string(v))
            return cl_err_set(err, CL_EPARSE, "registries.conf %s: '%s' must be a string", where,
                              k);
    }
    return 0;
}

struct cl_image_regconf *cl_image_regconf_parse(const char *toml, size_t len, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    CL_AUTO(json_t) *doc = cl_toml_parse(toml, len, err);
    if (!doc) {
        cl_err_prefix(err, "registries.conf");
        return NULL;
    }
    static const char *const top_keys[] = {"unqualified-search-registries", "short-name-mode",
                                           "registry", "aliases", "credential-helpers"};
    static const char *const reg_keys[] = {"prefix",  "location", "insecure",
                                           "blocked", "mirror",   "mirror-by-digest-only"};
    static const char *const reg_bools[] = {"insecure", "blocked", "mirror-by-digest-only"};
    static const char *const mir_keys[] = {"location", "insecure", "pull-from-mirror"};
    static const char *const mir_bools[] = {"insecure"};
    const char *k;
    json_t *v;
    json_object_foreach(doc, k, v)
    {
        if (!key_in(k, top_keys, CL_ARRAY_LEN(top_keys))) {
            cl_err_set(err, CL_EPARSE, "registries.conf: unknown key '%.64s'", k);
            return NULL;
        }
    }
    json_t *regs = json_object_get(doc, "registry");
    if (regs && !json_is_array(regs)) {
        cl_err_set(err, CL_EPARSE,
                   "registries.conf: 'registry' must be an array of tables ([[registry]])");
        return NULL;
    }
    size_t i;
    json_array_foreach(regs, i, v)
    {
        char where[32];
        snprintf(where, sizeof where, "registry[%zu]", i);
        if (!json_is_object(v)) {
            cl_err_set(err, CL_EPARSE, "registries.conf %s: not a table", where);
            return NULL;
        }
        if (check_table(v, where, reg_keys, CL_ARRAY_LEN(reg_keys), reg_bools,
                        CL_ARRAY_LEN(reg_bools), err) < 0)
            return NULL;
        const char *prefix = json_string_value(json_object_get(v, "prefix"));
        const char *loc = json_string_value(json_object_get(v, "location"));
        if ((!prefix || !*prefix) && (!loc || !*loc)) {
            cl_err_set(err, CL_EPARSE, "registries.conf %s: needs 'prefix' or 'location'", where);
            return NULL;
        }
        if (prefix && prefix[0] == '*' && prefix[1] != '.') {
            cl_err_set(err, CL_EPARSE, "registries.conf %s: a wildcard prefix must be '*.domain'",
                       where);
            return NULL;
        }
        json_t *mirrors = json_object_get(v, "mirror");
        if (mirrors && !json_is_array(mirrors)) {
            cl_err_set(err, CL_EPARSE, "registries.conf %s: 'mirror' must be an array of tables",
                       where);
            return NULL;
        }
        size_t j;
        json_t *m;
        json_array_foreach(mirrors, j, m)
        {
            char mw[80];
            snprintf(mw, sizeof mw, "registry[%zu].mirror[%zu]", i, j);
            if (!json_is_object(m)) {
                cl_err_set(err, CL_EPARSE, "registries.conf %s: not a table", mw);
                return NULL;
            }
            if (check_table(m, mw, mir_keys, CL_ARRAY_LEN(mir_keys), mir_bools,
                            CL_ARRAY_LEN(mir_bools), err) < 0)
                return NULL;
            if (!json_string_value(json_object_get(m, "location"))) {
                cl_err_set(err, CL_EPARSE, "registries.conf %s: 'location' is required", mw);
                return NULL;
            }
        }
        if (json_array_size(mirrors) > MAX_ENDPOINTS - 1) {
            cl_err_set(err, CL_ELIMIT, "registries.conf %s: more than %d mirrors", where,
                       MAX_ENDPOINTS - 1);
            return NULL;
        }
    }
    struct cl_image_regconf *c = calloc(1, sizeof *c);
    if (!c || !(c->insecure = json_array())) {
        free(c);
        cl_err_set(err, CL_ENOMEM, "registries.conf: out of memory");
        return NULL;
    }
    c->registries = regs ? json_incref(regs) : json_array();
    return c;
}

int cl_image_regconf_add_insecure(struct cl_image_regconf *c, const char *host, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (!c || !host || !*host)
        return cl_err_set(err, CL_EINVAL, "insecure registry: no host");
    if (json_array_append_new(c->insecure, json_string(host)) < 0)
        return cl_err_set(err, CL_ENOMEM, "insecure registry: out of memory");
    return 0;
}

void cl_image_endpoint_clear(struct cl_image_endpoint *e)
{
    if (!e)
        return;
    free(e->host);
    free(e->repository);
    memset(e, 0, sizeof *e);
}

/* Length of the match of prefix against name ("registry/repository"), or 0. */
static size_t prefix_match(const char *prefix, const char *name, const char *registry)
{
    if (prefix[0] == '*' && prefix[1] == '.') {
        /* *.example.com matches hosts below example.com (port ignored) */
        size_t hl = strcspn(registry, ":");
        size_t sl = strlen(prefix + 1);
        if (hl > sl && memcmp(registry + hl - sl, prefix + 1, sl) == 0)
            return strlen(registry);
        return 0;
    }
    size_t pl = strlen(prefix);
    if (strncmp(name, prefix, pl) != 0)
        return 0;
    if (name[pl] != 0 && name[pl] != '/')
        return 0;
    return pl;
}

static bool host_insecure(const struct cl_image_regconf *c, const char *host)
{
    if (!c)
        return false;
    size_t i;
    json_t *v;
    json_array_foreach(c->insecure, i, v)
    {
        if (strcmp(json_string_value(v), host) == 0)
            return true;
    }
    return false;
}

/* location + rest → host and repository of an endpoint */
static int endpoint_from(const char *location, const char *rest, bool insecure, bool mirror,
                         struct cl_image_endpoint *e, struct cl_err *err)
{
    const char *slash = strchr(location, '/');
    size_t hl = slash ? (size_t)(slash - location) : strlen(location);
    const char *lrepo = slash ? slash + 1 : "";
    e->host = cl_strdupf("%.*s", (int)hl, location);
    if (*lrepo && *rest)
        e->repository = cl_strdupf("%s/%s", lrepo, rest);
    else
        e->repository = strdup(*lrepo ? lrepo : rest);
    e->insecure = insecure;
    e->mirror = mirror;
    if (!e->host || !e->repository) {
        cl_image_endpoint_clear(e);
        return cl_err_set(err, CL_ENOMEM, "registry endpoint: out of memory");
    }
    if (!*e->repository || hl == 0) {
        cl_image_endpoint_clear(e);
        return cl_err_set(err, CL_EPARSE, "registry endpoint '%.200s': no host or repository",
                          location);
    }
    if (strcmp(e->host, "docker.io") == 0) {
        free(e->host);
        if (!(e->host = strdup("registry-1.docker.io"))) {
            cl_image_endpoint_clear(e);
            return cl_err_set(err, CL_ENOMEM, "registry endpoint: out of memory");
        }
    }
    return 0;
}

static int resolve(const struct cl_image_regconf *conf, const struct cl_image_ref *ref,
                   const char *name, struct cl_image_endpoint out[8], size_t *n, struct cl_err *err)
{
    const json_t *best = NULL;
    size_t best_len = 0;
    size_t i;
    json_t *r;
    if (conf) {
        json_array_foreach(conf->registries, i, r)
        {
            const char *prefix = json_string_value(json_object_get(r, "prefix"));
            if (!prefix || !*prefix)
                prefix = json_string_value(json_object_get(r, "location"));
            size_t ml = prefix_match(prefix, name, ref->registry);
            if (ml > best_len) {
                best = r;
                best_len = ml;
            }
        }
    }
    size_t cnt = 0;
    int rc;
    if (!best) {
        bool insecure = host_insecure(conf, ref->registry);
        if ((rc = endpoint_from(ref->registry, ref->repository, insecure, false, &out[0], err)) < 0)
            return rc;
        *n = 1;
        return 0;
    }
    if (json_is_true(json_object_get(best, "blocked")))
        return cl_err_set(err, CL_EDENIED, "registries.conf: '%.200s' is blocked", name);
    const char *prefix = json_string_value(json_object_get(best, "prefix"));
    const char *location = json_string_value(json_object_get(best, "location"));
    bool wildcard = prefix && prefix[0] == '*';
    /* with a wildcard, the whole name is kept; otherwise what follows the prefix */
    const char *rest = wildcard ? name : name + best_len;
    if (*rest == '/')
        rest++;
    if (!location || !*location)
        location = prefix;
    bool by_digest = ref->digest != NULL;
    bool digest_only = json_is_true(json_object_get(best, "mirror-by-digest-only"));
    json_t *m;
    json_array_foreach(json_object_get(best, "mirror"), i, m)
    {
        const char *pfm = json_string_value(json_object_get(m, "pull-from-mirror"));
        bool m_digest_only = digest_only || (pfm && strcmp(pfm, "digest-only") == 0);
        bool m_tag_only = pfm && strcmp(pfm, "tag-only") == 0;
        if ((m_digest_only && !by_digest) || (m_tag_only && by_digest))
            continue;
        const char *mloc = json_string_value(json_object_get(m, "location"));
        bool mi = json_is_true(json_object_get(m, "insecure"));
        if (wildcard) {
            /* a wildcard's mirrors get the whole name after their location */
            if ((rc = endpoint_from(mloc, ref->repository, mi, true, &out[cnt], err)) < 0)
                goto fail;
        } else if ((rc = endpoint_from(mloc, rest, mi, true, &out[cnt], err)) < 0) {
            goto fail;
        }
        out[cnt].insecure = out[cnt].insecure || host_insecure(conf, out[cnt].host);
        cnt++;
    }
    bool li = json_is_true(json_object_get(best, "insecure"));
    if (wildcard)
        rc = endpoint_from(location == prefix ? ref->registry : location, ref->repository, li,
                           false, &out[cnt], err);
    else
        rc = endpoint_from(location, rest, li, false, &out[cnt], err);
    if (rc < 0)
        goto fail;
    out[cnt].insecure = out[cnt].insecure || host_insecure(conf, out[cnt].host);
    cnt++;
    *n = cnt;
    return 0;
fail:
    for (size_t k = 0; k < cnt; k++)
        cl_image_endpoint_clear(&out[k]);
    return rc;
}

int cl_image_regconf_resolve(const struct cl_image_regconf *conf, const struct cl_image_ref *ref,
                             struct cl_image_endpoint out[8], size_t *n, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    CL_AUTO(cl_str) *name = cl_image_ref_name(ref);
    if (!name)
        return cl_err_set(err, CL_ENOMEM, "registry endpoint: out of memory");
    return resolve(conf, ref, name, out, n, err);
}
