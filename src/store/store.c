/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store front end: picks a backend from the table by name, validates every namespace and
 * key before a backend (and so the filesystem) sees it, caps values, and sorts list results.
 */
#include "store/store.h"

#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "store/store_backend.h"

static const struct cl_store_backend *const backends[] = {
    &cl_store_backend_memory,
    &cl_store_backend_localfs,
    &cl_store_backend_postgres,
    &cl_store_backend_redis,
};

struct cl_store {
    const struct cl_store_backend *be;
    void *impl;
    struct cl_store_seal *seal; /* encryption at rest of seal_ns, or NULL */
    char *seal_ns;
};

static bool sealed_ns(const struct cl_store *s, const char *ns)
{
    return s->seal && strcmp(ns, s->seal_ns) == 0;
}

/* Copy of an untrusted name fit for an error line: printable ASCII only, at most 64 chars. */
static void quote_name(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; s[i] && o + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (i == 64) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
    }
    out[o] = '\0';
}

static bool name_char_ok(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '/';
}

/* One rule per branch, so that the message says which rule refused. `what` is "key" or
 * "namespace". */
static int name_check(const char *s, const char *what, struct cl_err *err)
{
    char q[80];
    if (!s)
        return cl_err_set(err, CL_EINVAL, "store %s: missing", what);
    size_t n = strnlen(s, CL_STORE_MAX_KEY + 1);
    if (n == 0)
        return cl_err_set(err, CL_EINVAL, "store %s: empty", what);
    quote_name(s, q, sizeof q);
    if (n > CL_STORE_MAX_KEY)
        return cl_err_set(err, CL_EINVAL, "store %s \"%s\": longer than %d characters", what, q,
                          CL_STORE_MAX_KEY);
    for (size_t i = 0; i < n; i++) {
        if (!name_char_ok((unsigned char)s[i]))
            return cl_err_set(err, CL_EINVAL,
                              "store %s \"%s\": character 0x%02x at offset %zu is not one of "
                              "[A-Za-z0-9-_./]",
                              what, q, (unsigned char)s[i], i);
    }
    if (s[0] == '/')
        return cl_err_set(err, CL_EINVAL, "store %s \"%s\": starts with '/'", what, q);
    /* Segments between slashes: none empty ("a//b", "a/"), none "." or "..". */
    const char *seg = s;
    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);
        if (len == 0)
            return cl_err_set(err, CL_EINVAL, "store %s \"%s\": empty path segment", what, q);
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return cl_err_set(err, CL_EINVAL, "store %s \"%s\": path segment \"%.*s\"", what, q,
                              (int)len, seg);
        if (!slash)
            break;
        seg = slash + 1;
    }
    return 0;
}

bool cl_store_key_valid(const char *key)
{
    return name_check(key, "key", NULL) == 0;
}
bool cl_store_ns_valid(const char *ns)
{
    return name_check(ns, "namespace", NULL) == 0;
}

static int check_ns(const struct cl_store *s, const char *ns, struct cl_err *err)
{
    if (!s)
        return cl_err_set(err, CL_EINVAL, "store: not open");
    return name_check(ns, "namespace", err);
}

static int check_names(const struct cl_store *s, const char *ns, const char *key,
                       struct cl_err *err)
{
    int rc = check_ns(s, ns, err);
    return rc < 0 ? rc : name_check(key, "key", err);
}

struct cl_store *cl_store_open(const char *type, const char *dir, struct cl_err *err)
{
    struct cl_store_opts o = {.type = type, .dir = dir};
    return cl_store_open_opts(&o, err);
}

struct cl_store *cl_store_open_opts(const struct cl_store_opts *o, struct cl_err *err)
{
    const char *type = o ? o->type : NULL;
    if (!type) {
        cl_err_set(err, CL_EINVAL, "store type: missing");
        return NULL;
    }
    const struct cl_store_backend *be = NULL;
    for (size_t i = 0; i < CL_ARRAY_LEN(backends); i++) {
        if (strcasecmp(type, backends[i]->name) == 0 ||
            (backends[i]->alias && strcasecmp(type, backends[i]->alias) == 0)) {
            be = backends[i];
            break;
        }
    }
    if (!be) {
        char q[80];
        quote_name(type, q, sizeof q);
        cl_err_set(err, CL_EINVAL,
                   "store type \"%s\": unknown (Memory, LocalFs, Postgres or Redis)", q);
        return NULL;
    }
    struct cl_store *s = calloc(1, sizeof *s);
    if (!s) {
        cl_err_set(err, CL_ENOMEM, "store: out of memory");
        return NULL;
    }
    s->be = be;
    s->impl = be->open(o, err);
    if (!s->impl) {
        free(s);
        return NULL;
    }
    if (o->seal_key_path) {
        if (!o->seal_ns || !cl_store_ns_valid(o->seal_ns)) {
            cl_err_set(err, CL_EINVAL, "store encryption: namespace missing or invalid");
            cl_store_close(s);
            return NULL;
        }
        s->seal = cl_store_seal_new(o->seal_key_path, o->seal_old_paths, o->nseal_old, err);
        s->seal_ns = strdup(o->seal_ns);
        if (!s->seal || !s->seal_ns) {
            cl_store_close(s);
            return NULL;
        }
    }
    return s;
}

void cl_store_close(struct cl_store *s)
{
    if (!s)
        return;
    s->be->close(s->impl);
    cl_store_seal_free(s->seal);
    free(s->seal_ns);
    free(s);
}

int cl_store_set(struct cl_store *s, const char *ns, const char *key, const void *data, size_t len,
                 bool overwrite, struct cl_err *err)
{
    int rc = check_names(s, ns, key, err);
    if (rc < 0)
        return rc;
    if (len > CL_STORE_MAX_VALUE)
        return cl_err_set(err, CL_ELIMIT, "store value for \"%s\": %zu bytes, more than %u", key,
                          len, CL_STORE_MAX_VALUE);
    if (!data && len > 0)
        return cl_err_set(err, CL_EINVAL, "store value for \"%s\": missing", key);
    if (sealed_ns(s, ns)) {
        uint8_t *sealed = NULL;
        size_t slen = 0;
        rc = cl_store_seal_wrap(s->seal, ns, key, data ? data : "", len, &sealed, &slen, err);
        if (rc < 0)
            return rc;
        rc = s->be->set(s->impl, ns, key, sealed, slen, overwrite, 0, err);
        free(sealed);
        return rc;
    }
    return s->be->set(s->impl, ns, key, data ? data : "", len, overwrite, 0, err);
}

int cl_store_reseal(struct cl_store *s, const char *ns, size_t *n, struct cl_err *err)
{
    int rc = check_ns(s, ns, err);
    if (rc < 0)
        return rc;
    if (!sealed_ns(s, ns))
        return cl_err_set(err, CL_EINVAL, "store reseal: namespace \"%s\" is not encrypted", ns);
    char **keys = NULL;
    size_t nk = 0, cnt = 0;
    if ((rc = s->be->list(s->impl, ns, &keys, &nk, err)) < 0)
        return rc;
    for (size_t i = 0; i < nk && rc >= 0; i++) {
        size_t len = 0, nlen = 0;
        uint8_t *nv = NULL;
        cl_bytes *v = s->be->get(s->impl, ns, keys[i], &len, err);
        if (!v) {
            rc = err && err->code == CL_ENOTFOUND ? 0 : (err ? err->code : CL_EIO);
            continue;
        }
        rc = cl_store_seal_rewrap(s->seal, keys[i], v, len, &nv, &nlen, err);
        if (rc == 0) {
            rc = s->be->cas ? s->be->cas(s->impl, ns, keys[i], v, len, nv, nlen, err)
                            : s->be->set(s->impl, ns, keys[i], nv, nlen, true, 0, err);
            if (rc == 0)
                cnt++;
            else if (rc == CL_EEXISTS || rc == CL_ENOTFOUND)
                rc = 0; /* changed meanwhile (re-uploaded or re-wrapped by another replica) */
            free(nv);
        }
        free(v);
    }
    cl_store_list_free(keys, nk);
    if (n)
        *n = cnt;
    return rc < 0 ? rc : 0;
}

const char *cl_store_type_canonical(const char *type)
{
    for (size_t i = 0; type && i < CL_ARRAY_LEN(backends); i++)
        if (strcasecmp(type, backends[i]->name) == 0 ||
            (backends[i]->alias && strcasecmp(type, backends[i]->alias) == 0))
            return backends[i]->name;
    return NULL;
}

bool cl_store_shared(const struct cl_store *s)
{
    return s && s->be->shared;
}
const char *cl_store_type(const struct cl_store *s)
{
    return s ? s->be->name : NULL;
}

int cl_store_cas(struct cl_store *s, const char *ns, const char *key, const void *old_data,
                 size_t old_len, const void *new_data, size_t new_len, struct cl_err *err)
{
    int rc = check_names(s, ns, key, err);
    if (rc < 0)
        return rc;
    if (new_len > CL_STORE_MAX_VALUE || old_len > CL_STORE_MAX_VALUE)
        return cl_err_set(err, CL_ELIMIT, "store value for \"%s\": more than %u bytes", key,
                          CL_STORE_MAX_VALUE);
    if ((!old_data && old_len) || (!new_data && new_len))
        return cl_err_set(err, CL_EINVAL, "store compare-and-set of \"%s\": missing value", key);
    if (!s->be->cas)
        return cl_err_set(err, CL_EUNSUPPORTED, "store %s: no compare-and-set", s->be->name);
    return s->be->cas(s->impl, ns, key, old_data ? old_data : "", old_len, new_data ? new_data : "",
                      new_len, err);
}

int cl_store_set_expiring(struct cl_store *s, const char *ns, const char *key, const void *data,
                          size_t len, bool overwrite, int64_t expires_unix, struct cl_err *err)
{
    int rc = check_names(s, ns, key, err);
    if (rc < 0)
        return rc;
    if (expires_unix <= 0)
        return cl_err_set(err, CL_EINVAL, "store expiry of \"%s\": %" PRId64 " is not a time", key,
                          expires_unix);
    if (len > CL_STORE_MAX_VALUE - CL_STORE_EXP_DIGITS)
        return cl_err_set(err, CL_ELIMIT, "store value for \"%s\": %zu bytes, too many", key, len);
    if (!data && len > 0)
        return cl_err_set(err, CL_EINVAL, "store value for \"%s\": missing", key);
    uint8_t *buf = malloc(CL_STORE_EXP_DIGITS + len + 1);
    if (!buf)
        return cl_err_set(err, CL_ENOMEM, "store: out of memory");
    snprintf((char *)buf, CL_STORE_EXP_DIGITS + 1, "%0*" PRId64, CL_STORE_EXP_DIGITS, expires_unix);
    if (len)
        memcpy(buf + CL_STORE_EXP_DIGITS, data, len);
    rc = s->be->set(s->impl, ns, key, buf, CL_STORE_EXP_DIGITS + len, overwrite, expires_unix, err);
    explicit_bzero(buf, CL_STORE_EXP_DIGITS + len);
    free(buf);
    return rc;
}

int cl_store_expiring_split(const uint8_t *v, size_t len, int64_t *expires_unix,
                            size_t *payload_off)
{
    if (!v || len < CL_STORE_EXP_DIGITS)
        return CL_EPARSE;
    int64_t t = 0;
    for (size_t i = 0; i < CL_STORE_EXP_DIGITS; i++) {
        if (v[i] < '0' || v[i] > '9')
            return CL_EPARSE;
        if (t > (INT64_MAX - 9) / 10)
            return CL_EPARSE;
        t = t * 10 + (v[i] - '0');
    }
    *expires_unix = t;
    *payload_off = CL_STORE_EXP_DIGITS;
    return 0;
}

int cl_store_purge_expired(struct cl_store *s, const char *ns, int64_t now_unix, size_t *n,
                           struct cl_err *err)
{
    int rc = check_ns(s, ns, err);
    if (rc < 0)
        return rc;
    size_t cnt = 0;
    if (s->be->purge) {
        char bound[CL_STORE_EXP_DIGITS + 1];
        snprintf(bound, sizeof bound, "%0*" PRId64, CL_STORE_EXP_DIGITS,
                 now_unix < 0 ? 0 : now_unix);
        rc = s->be->purge(s->impl, ns, bound, &cnt, err);
        if (n)
            *n = cnt;
        return rc;
    }
    char **keys = NULL;
    size_t nk = 0;
    rc = s->be->list(s->impl, ns, &keys, &nk, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < nk; i++) {
        size_t len = 0, off = 0;
        int64_t exp = 0;
        cl_bytes *v = s->be->get(s->impl, ns, keys[i], &len, NULL);
        if (v && cl_store_expiring_split(v, len, &exp, &off) == 0 && exp <= now_unix &&
            s->be->del(s->impl, ns, keys[i], NULL) == 0)
            cnt++;
        free(v);
    }
    cl_store_list_free(keys, nk);
    if (n)
        *n = cnt;
    return 0;
}

cl_bytes *cl_store_get(struct cl_store *s, const char *ns, const char *key, size_t *len,
                       struct cl_err *err)
{
    if (check_names(s, ns, key, err) < 0)
        return NULL;
    size_t n = 0;
    cl_bytes *v = s->be->get(s->impl, ns, key, &n, err);
    if (v && sealed_ns(s, ns)) {
        cl_bytes *p = NULL;
        size_t pn = 0;
        int rc = cl_store_seal_open(s->seal, ns, key, v, n, &p, &pn, err);
        free(v);
        if (rc < 0)
            return NULL;
        v = p;
        n = pn;
    }
    if (v && len)
        *len = n;
    return v;
}

int cl_store_delete(struct cl_store *s, const char *ns, const char *key, struct cl_err *err)
{
    int rc = check_names(s, ns, key, err);
    if (rc < 0)
        return rc;
    return s->be->del(s->impl, ns, key, err);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cl_store_list(struct cl_store *s, const char *ns, char ***keys, size_t *n, struct cl_err *err)
{
    int rc = check_ns(s, ns, err);
    if (rc < 0)
        return rc;
    if (!keys || !n)
        return cl_err_set(err, CL_EINVAL, "store list: missing output");
    char **k = NULL;
    size_t cnt = 0;
    rc = s->be->list(s->impl, ns, &k, &cnt, err);
    if (rc < 0)
        return rc;
    if (cnt > 1)
        qsort(k, cnt, sizeof *k, cmp_str);
    *keys = k;
    *n = cnt;
    return 0;
}

void cl_store_list_free(char **keys, size_t n)
{
    if (!keys)
        return;
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
}

bool cl_store_version_eq(const struct cl_store_version *a, const struct cl_store_version *b)
{
    return a->known && b->known && a->present == b->present && a->len == b->len &&
           memcmp(a->v, b->v, a->len) == 0;
}

/* The generic version: get + SHA-256 here (Memory, LocalFs). */
static int version_by_get(struct cl_store *s, const char *ns, const char *key, const uint8_t *have,
                          size_t have_len, uint8_t *ver, size_t *vlen, cl_bytes **val, size_t *len,
                          struct cl_err *err)
{
    cl_bytes *v = s->be->get(s->impl, ns, key, len, err);
    if (!v)
        return err->code;
    SHA256(v, *len, ver);
    *vlen = SHA256_DIGEST_LENGTH;
    if (have && have_len == SHA256_DIGEST_LENGTH && memcmp(have, ver, have_len) == 0) {
        free(v);
        return 0;
    }
    *val = v;
    return 1;
}

int cl_store_get_if_changed(struct cl_store *s, const char *ns, const char *key,
                            struct cl_store_version *have, cl_bytes **val, size_t *len,
                            struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    int rc = check_names(s, ns, key, err);
    if (rc < 0)
        return rc;
    if (!have || !val)
        return cl_err_set(err, CL_EINVAL, "store version read of \"%s\": missing output", key);
    *val = NULL;
    const uint8_t *hv = have->known && have->present ? have->v : NULL;
    size_t hl = hv ? have->len : 0, vlen = 0, n = 0;
    uint8_t ver[CL_STORE_VERSION_MAX];
    cl_bytes *v = NULL;
    rc = s->be->get_if_changed
             ? s->be->get_if_changed(s->impl, ns, key, hv, hl, ver, &vlen, &v, &n, err)
             : version_by_get(s, ns, key, hv, hl, ver, &vlen, &v, &n, err);
    if (rc == CL_ENOTFOUND) {
        bool was_absent = have->known && !have->present;
        *have = (struct cl_store_version){.known = true};
        return was_absent ? 0 : 1;
    }
    if (rc <= 0)
        return rc;
    if (vlen == 0 || vlen > CL_STORE_VERSION_MAX) {
        free(v);
        return cl_err_set(err, CL_EIO, "store version of \"%s\": %zu bytes", key, vlen);
    }
    if (sealed_ns(s, ns)) {
        cl_bytes *p = NULL;
        size_t pn = 0;
        rc = cl_store_seal_open(s->seal, ns, key, v, n, &p, &pn, err);
        free(v);
        if (rc < 0)
            return rc;
        v = p;
        n = pn;
    }
    have->known = have->present = true;
    have->len = (uint8_t)vlen;
    memcpy(have->v, ver, vlen);
    *val = v;
    if (len)
        *len = n;
    return 1;
}
