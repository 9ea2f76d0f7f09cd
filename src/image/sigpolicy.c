/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containers-policy.json: parsing (every member checked, unknown ones refused), scope lookup
 * for the "docker" transport, and evaluation. Requirement types are one table of {name,
 * check-at-parse, evaluate}; all requirements of the matching scope must pass; a signature
 * counts only when its key is one the requirement names, its payload names this image's
 * manifest digest, and its identity satisfies signedIdentity.
 */
#include "image/image_int.h"

#include <string.h>

#define MAX_SCOPES 64
#define MAX_SCOPE_LEN 600
#define MAX_KEY_PATHS 32

struct cl_image_policy {
    json_t *doc;
};

void cl_image_policy_free(struct cl_image_policy *p)
{
    if (!p)
        return;
    json_decref(p->doc);
    free(p);
}

/* ---- scopes ---- */

cl_str *cl_image_scopes(const struct cl_image_ref *ref, size_t *n)
{
    size_t cap = MAX_SCOPES * MAX_SCOPE_LEN, off = 0, cnt = 0;
    cl_str *buf = malloc(cap);
    if (!buf)
        return NULL;
#define PUSH(...)                                                                                  \
    do {                                                                                           \
        if (cnt < MAX_SCOPES) {                                                                    \
            int w_ = snprintf(buf + off, cap - off, __VA_ARGS__);                                  \
            if (w_ > 0 && (size_t)w_ < cap - off) {                                                \
                off += (size_t)w_ + 1;                                                             \
                cnt++;                                                                             \
            }                                                                                      \
        }                                                                                          \
    } while (0)
    if (ref->digest)
        PUSH("%s/%s@%s", ref->registry, ref->repository, ref->digest);
    if (ref->tag)
        PUSH("%s/%s:%s", ref->registry, ref->repository, ref->tag);
    /* repository, then each parent namespace, then the host */
    char name[MAX_SCOPE_LEN];
    snprintf(name, sizeof name, "%s/%s", ref->registry, ref->repository);
    for (;;) {
        PUSH("%s", name);
        char *slash = strrchr(name, '/');
        if (!slash)
            break;
        *slash = 0;
    }
    /* *.domain wildcards from the host without its port */
    char host[MAX_SCOPE_LEN];
    snprintf(host, sizeof host, "%s", ref->registry);
    host[strcspn(host, ":")] = 0;
    for (char *dot = strchr(host, '.'); dot; dot = strchr(dot + 1, '.'))
        PUSH("*%s", dot);
#undef PUSH
    *n = cnt;
    return buf;
}

const json_t *cl_image_policy_scope(const struct cl_image_policy *p, const struct cl_image_ref *ref,
                                    const char **scope_name)
{
    json_t *docker = json_object_get(json_object_get(p->doc, "transports"), "docker");
    if (docker) {
        size_t n = 0;
        CL_AUTO(cl_str) *scopes = cl_image_scopes(ref, &n);
        const char *s = scopes;
        for (size_t i = 0; s && i < n; i++, s += strlen(s) + 1) {
            json_t *reqs = json_object_get(docker, s);
            if (reqs) {
                if (scope_name) {
                    /* the key of the object outlives the scope list */
                    const char *k;
                    json_t *v;
                    json_object_foreach(docker, k, v)
                    {
                        if (v == reqs)
                            *scope_name = k;
                    }
                }
                return reqs;
            }
        }
        json_t *empty = json_object_get(docker, "");
        if (empty) {
            if (scope_name)
                *scope_name = "\"\"";
            return empty;
        }
    }
    if (scope_name)
        *scope_name = "default";
    return json_object_get(p->doc, "default");
}

/* ---- parsing ---- */

static int only_keys(const json_t *o, const char *where, const char *const *keys, size_t n,
                     struct cl_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)(uintptr_t)o, k, v)
    {
        bool ok = false;
        for (size_t i = 0; i < n; i++)
            ok = ok || strcmp(k, keys[i]) == 0;
        if (!ok)
            return cl_err_set(err, CL_EPARSE, "policy %s: unknown member '%.64s'", where, k);
    }
    return 0;
}

static int need_str(const json_t *o, const char *key, const char *where, struct cl_err *err)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s || !*s)
        return cl_err_set(err, CL_EPARSE, "policy %s: '%s' must be a non-empty string", where, key);
    return 0;
}

static int check_identity(const json_t *id, const char *where, struct cl_err *err)
{
    if (!id)
        return 0;
    if (!json_is_object(id))
        return cl_err_set(err, CL_EPARSE, "policy %s: signedIdentity is not an object", where);
    const char *t = json_string_value(json_object_get(id, "type"));
    if (!t)
        return cl_err_set(err, CL_EPARSE, "policy %s: signedIdentity has no 'type'", where);
    if (strcmp(t, "matchExact") == 0 || strcmp(t, "matchRepoDigestOrExact") == 0 ||
        strcmp(t, "matchRepository") == 0) {
        static const char *const k[] = {"type"};
        return only_keys(id, where, k, 1, err);
    }
    if (strcmp(t, "exactReference") == 0) {
        static const char *const k[] = {"type", "dockerReference"};
        struct cl_image_ref r;
        int rc;
        if ((rc = only_keys(id, where, k, 2, err)) < 0 ||
            (rc = need_str(id, "dockerReference", where, err)) < 0)
            return rc;
        if ((rc = cl_image_ref_parse(json_string_value(json_object_get(id, "dockerReference")), &r,
                                     err)) < 0)
            return cl_err_prefix(err, "policy %s: dockerReference", where);
        cl_image_ref_clear(&r);
        return 0;
    }
    if (strcmp(t, "exactRepository") == 0) {
        static const char *const k[] = {"type", "dockerRepository"};
        int rc;
        if ((rc = only_keys(id, where, k, 2, err)) < 0)
            return rc;
        return need_str(id, "dockerRepository", where, err);
    }
    if (strcmp(t, "remapIdentity") == 0) {
        static const char *const k[] = {"type", "prefix", "signedPrefix"};
        int rc;
        if ((rc = only_keys(id, where, k, 3, err)) < 0 ||
            (rc = need_str(id, "prefix", where, err)) < 0)
            return rc;
        return need_str(id, "signedPrefix", where, err);
    }
    return cl_err_set(err, CL_EPARSE, "policy %s: signedIdentity type '%.64s' is unknown", where,
                      t);
}

static int one_key_source(const json_t *r, const char *where, struct cl_err *err)
{
    int n = !!json_object_get(r, "keyPath") + !!json_object_get(r, "keyPaths") +
            !!json_object_get(r, "keyData");
    if (n != 1)
        return cl_err_set(err, CL_EPARSE,
                          "policy %s: exactly one of keyPath, keyPaths, keyData is needed", where);
    json_t *kp = json_object_get(r, "keyPaths");
    if (kp) {
        if (!json_is_array(kp) || json_array_size(kp) == 0 || json_array_size(kp) > MAX_KEY_PATHS)
            return cl_err_set(err, CL_EPARSE, "policy %s: keyPaths must list 1 to %d paths", where,
                              MAX_KEY_PATHS);
        size_t i;
        json_t *v;
        json_array_foreach(kp, i, v)
        {
            if (!json_is_string(v) || !*json_string_value(v))
                return cl_err_set(err, CL_EPARSE, "policy %s: keyPaths[%zu] is not a path", where,
                                  i);
        }
        return 0;
    }
    return need_str(r, json_object_get(r, "keyPath") ? "keyPath" : "keyData", where, err);
}

static int check_accept(const json_t *r, const char *where, struct cl_err *err)
{
    static const char *const k[] = {"type"};
    return only_keys(r, where, k, 1, err);
}

static int check_signed_by(const json_t *r, const char *where, struct cl_err *err)
{
    static const char *const k[] = {"type",     "keyType", "keyPath",
                                    "keyPaths", "keyData", "signedIdentity"};
    int rc;
    if ((rc = only_keys(r, where, k, CL_ARRAY_LEN(k), err)) < 0)
        return rc;
    const char *kt = json_string_value(json_object_get(r, "keyType"));
    if (!kt || strcmp(kt, "GPGKeys") != 0)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "policy %s: keyType '%.32s' is not supported (GPGKeys only)", where,
                          kt ? kt : "");
    if ((rc = one_key_source(r, where, err)) < 0)
        return rc;
    return check_identity(json_object_get(r, "signedIdentity"), where, err);
}

static int check_sigstore(const json_t *r, const char *where, struct cl_err *err)
{
    static const char *const k[] = {"type",
                                    "keyPath",
                                    "keyPaths",
                                    "keyData",
                                    "fulcio",
                                    "rekorPublicKeyPath",
                                    "rekorPublicKeyData",
                                    "signedIdentity"};
    int rc;
    if ((rc = only_keys(r, where, k, CL_ARRAY_LEN(k), err)) < 0)
        return rc;
    if (json_object_get(r, "fulcio") || json_object_get(r, "rekorPublicKeyPath") ||
        json_object_get(r, "rekorPublicKeyData"))
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "policy %s: fulcio and rekor are not supported (keys only)", where);
    if ((rc = one_key_source(r, where, err)) < 0)
        return rc;
    const json_t *id = json_object_get(r, "signedIdentity");
    if ((rc = check_identity(id, where, err)) < 0)
        return rc;
    const char *t = json_string_value(json_object_get(id, "type"));
    if (t && strcmp(t, "matchRepository") != 0 && strcmp(t, "exactRepository") != 0 &&
        strcmp(t, "matchRepoDigestOrExact") != 0 && strcmp(t, "matchExact") != 0 &&
        strcmp(t, "exactReference") != 0 && strcmp(t, "remapIdentity") != 0)
        return cl_err_set(err, CL_EPARSE, "policy %s: signedIdentity '%s' is not allowed here",
                          where, t);
    return 0;
}

/* ---- evaluation ---- */

struct req_type;
typedef int (*eval_fn)(const json_t *r, const struct cl_image_sigsrc *src, const char *where,
                       struct cl_err *err);
static int eval_accept(const json_t *r, const struct cl_image_sigsrc *src, const char *where,
                       struct cl_err *err);
static int eval_reject(const json_t *r, const struct cl_image_sigsrc *src, const char *where,
                       struct cl_err *err);
static int eval_signed_by(const json_t *r, const struct cl_image_sigsrc *src, const char *where,
                          struct cl_err *err);
static int eval_sigstore(const json_t *r, const struct cl_image_sigsrc *src, const char *where,
                         struct cl_err *err);

static const struct req_type {
    const char *name;
    int (*check)(const json_t *r, const char *where, struct cl_err *err);
    eval_fn eval;
} req_types[] = {
    {"insecureAcceptAnything", check_accept, eval_accept},
    {"reject", check_accept, eval_reject},
    {"signedBy", check_signed_by, eval_signed_by},
    {"sigstoreSigned", check_sigstore, eval_sigstore},
};

static const struct req_type *find_type(const json_t *r)
{
    const char *t = json_string_value(json_object_get(r, "type"));
    for (size_t i = 0; t && i < CL_ARRAY_LEN(req_types); i++)
        if (strcmp(t, req_types[i].name) == 0)
            return &req_types[i];
    return NULL;
}

static int check_reqs(const json_t *reqs, const char *where, struct cl_err *err)
{
    if (!json_is_array(reqs))
        return cl_err_set(err, CL_EPARSE, "policy %s: not an array of requirements", where);
    /* as in containers/image: an empty list would silently allow everything */
    if (json_array_size(reqs) == 0)
        return cl_err_set(err, CL_EPARSE, "policy %s: the list of requirements must not be empty",
                          where);
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        char w[160];
        snprintf(w, sizeof w, "%.120s[%zu]", where, i);
        if (!json_is_object(r))
            return cl_err_set(err, CL_EPARSE, "policy %s: not an object", w);
        const struct req_type *t = find_type(r);
        if (!t)
            return cl_err_set(err, CL_EPARSE, "policy %s: requirement type '%.64s' is unknown", w,
                              json_string_value(json_object_get(r, "type"))
                                  ? json_string_value(json_object_get(r, "type"))
                                  : "(none)");
        int rc = t->check(r, w, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

struct cl_image_policy *cl_image_policy_parse(const char *json, size_t len, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (len > CL_IMAGE_MAX_POLICY) {
        cl_err_set(err, CL_ELIMIT, "policy: larger than %u bytes", CL_IMAGE_MAX_POLICY);
        return NULL;
    }
    CL_AUTO(json_t) *doc = cl_json_parse(json, len, 16, err);
    if (!doc) {
        cl_err_prefix(err, "policy");
        return NULL;
    }
    if (!json_is_object(doc)) {
        cl_err_set(err, CL_EPARSE, "policy: not a JSON object");
        return NULL;
    }
    static const char *const top[] = {"default", "transports"};
    if (only_keys(doc, "(top)", top, 2, err) < 0)
        return NULL;
    json_t *def = json_object_get(doc, "default");
    if (!def) {
        cl_err_set(err, CL_EPARSE, "policy: 'default' is required");
        return NULL;
    }
    if (check_reqs(def, "default", err) < 0)
        return NULL;
    json_t *tr = json_object_get(doc, "transports");
    if (tr) {
        if (!json_is_object(tr)) {
            cl_err_set(err, CL_EPARSE, "policy: 'transports' is not an object");
            return NULL;
        }
        const char *tn;
        json_t *scopes;
        json_object_foreach(tr, tn, scopes)
        {
            if (!json_is_object(scopes)) {
                cl_err_set(err, CL_EPARSE, "policy: transports.%.64s is not an object", tn);
                return NULL;
            }
            const char *sn;
            json_t *reqs;
            json_object_foreach(scopes, sn, reqs)
            {
                char w[200];
                snprintf(w, sizeof w, "%.32s[%.150s]", tn, sn);
                if (check_reqs(reqs, w, err) < 0)
                    return NULL;
            }
        }
    }
    struct cl_image_policy *p = calloc(1, sizeof *p);
    if (!p) {
        cl_err_set(err, CL_ENOMEM, "policy: out of memory");
        return NULL;
    }
    p->doc = CL_STEAL(doc);
    return p;
}

static int eval_accept(const json_t *r, const struct cl_image_sigsrc *src, const char *where,
                       struct cl_err *err)
{
    (void)r;
    (void)src;
    (void)where;
    (void)err;
    return 0;
}

static int eval_reject(const json_t *r, const struct cl_image_sigsrc *src, const char *where,
                       struct cl_err *err)
{
    (void)r;
    (void)src;
    return cl_err_stage(err, CL_EDENIED, "policy", "policy %s: rejects this image", where);
}

/* ---- identities ---- */

/* The reference text of r: "reg/repo:tag" or "reg/repo@digest" (tag wins when both). */
static cl_str *ref_text(const struct cl_image_ref *r)
{
    if (r->tag)
        return cl_strdupf("%s/%s:%s", r->registry, r->repository, r->tag);
    return cl_strdupf("%s/%s@%s", r->registry, r->repository, r->digest ? r->digest : "");
}

static int identity_check(const struct cl_image_ref *img, const char *signed_ref, const json_t *sid,
                          const char *default_identity, struct cl_err *err)
{
    struct cl_image_ref sref;
    int rc = cl_image_ref_parse(signed_ref, &sref, err);
    if (rc < 0)
        return cl_err_stage(err, CL_EVERIFY, "identity",
                            "signature names an invalid reference '%.200s'", signed_ref);
    const char *t = json_string_value(json_object_get(sid, "type"));
    if (!t)
        t = default_identity;
    CL_AUTO(cl_str) *img_name = cl_image_ref_name(img);
    CL_AUTO(cl_str) *s_name = cl_image_ref_name(&sref);
    CL_AUTO(cl_str) *img_full = ref_text(img);
    CL_AUTO(cl_str) *s_full = ref_text(&sref);
    /* a signature's own reference may not carry a digest: it signs the manifest by digest */
    bool s_has_digest = sref.digest != NULL;
    cl_image_ref_clear(&sref);
    if (!img_name || !s_name || !img_full || !s_full)
        return cl_err_set(err, CL_ENOMEM, "identity: out of memory");
    bool ok = false;
    if (strcmp(t, "matchRepository") == 0) {
        ok = strcmp(img_name, s_name) == 0;
    } else if (strcmp(t, "matchExact") == 0) {
        ok = !s_has_digest && img->tag && strcmp(img_full, s_full) == 0;
    } else if (strcmp(t, "matchRepoDigestOrExact") == 0) {
        if (img->tag)
            ok = !s_has_digest && strcmp(img_full, s_full) == 0;
        else
            ok = strcmp(img_name, s_name) == 0;
    } else if (strcmp(t, "exactReference") == 0) {
        struct cl_image_ref want;
        if ((rc = cl_image_ref_parse(json_string_value(json_object_get(sid, "dockerReference")),
                                     &want, err)) < 0)
            return rc;
        CL_AUTO(cl_str) *w = ref_text(&want);
        cl_image_ref_clear(&want);
        ok = w && strcmp(w, s_full) == 0;
    } else if (strcmp(t, "exactRepository") == 0) {
        struct cl_image_ref want;
        CL_AUTO(cl_str) *text =
            cl_strdupf("%s", json_string_value(json_object_get(sid, "dockerRepository")));
        if (!text || (rc = cl_image_ref_parse(text, &want, err)) < 0)
            return cl_err_stage(err, CL_EVERIFY, "identity",
                                "exactRepository: bad dockerRepository");
        CL_AUTO(cl_str) *w = cl_image_ref_name(&want);
        cl_image_ref_clear(&want);
        ok = w && strcmp(w, s_name) == 0;
    } else if (strcmp(t, "remapIdentity") == 0) {
        const char *prefix = json_string_value(json_object_get(sid, "prefix"));
        const char *sprefix = json_string_value(json_object_get(sid, "signedPrefix"));
        size_t pl = strlen(prefix);
        CL_AUTO(cl_str) *mapped = NULL;
        if (strncmp(img_full, prefix, pl) == 0 && (img_full[pl] == 0 || img_full[pl] == '/' ||
                                                   img_full[pl] == ':' || img_full[pl] == '@'))
            mapped = cl_strdupf("%s%s", sprefix, img_full + pl);
        else
            mapped = strdup(img_full);
        struct cl_image_ref m;
        if (!mapped || (rc = cl_image_ref_parse(mapped, &m, err)) < 0)
            return cl_err_stage(err, CL_EVERIFY, "identity",
                                "remapIdentity: the remapped reference is invalid");
        CL_AUTO(cl_str) *mf = ref_text(&m);
        CL_AUTO(cl_str) *mn = cl_image_ref_name(&m);
        bool tagged = m.tag != NULL;
        cl_image_ref_clear(&m);
        ok = mf && mn &&
             (tagged ? (!s_has_digest && strcmp(mf, s_full) == 0) : strcmp(mn, s_name) == 0);
    } else {
        return cl_err_set(err, CL_EPARSE, "identity: unknown type '%.64s'", t);
    }
    if (!ok)
        return cl_err_stage(err, CL_EVERIFY, "identity",
                            "signature is for '%.200s', not '%.200s' (%s)", signed_ref, img_full,
                            t);
    return 0;
}

int cl_image_sig_payload_check(const uint8_t *payload, size_t plen, const char *type,
                               const struct cl_image_sigsrc *src, const json_t *signed_identity,
                               const char *default_identity, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    CL_AUTO(json_t) *doc = cl_json_parse((const char *)payload, plen, 8, err);
    if (!doc)
        return cl_err_stage(err, CL_EVERIFY, "payload", "signature payload is not JSON: %.200s",
                            err ? err->msg : "");
    json_t *crit = json_object_get(doc, "critical");
    const char *t = json_string_value(json_object_get(crit, "type"));
    const char *dg = json_string_value(
        json_object_get(json_object_get(crit, "image"), "docker-manifest-digest"));
    const char *ident =
        json_string_value(json_object_get(json_object_get(crit, "identity"), "docker-reference"));
    if (!json_is_object(crit) || !t || !dg || !ident)
        return cl_err_stage(
            err, CL_EVERIFY, "payload",
            "signature payload lacks critical.type, critical.image.docker-manifest-digest or "
            "critical.identity.docker-reference");
    if (strcmp(t, type) != 0)
        return cl_err_stage(err, CL_EVERIFY, "payload",
                            "signature payload type '%.64s' is not '%s'", t, type);
    /* critical members are all understood, or the signature does not count */
    static const char *const ck[] = {"type", "image", "identity"};
    if (only_keys(crit, "signature critical", ck, 3, err) < 0)
        return cl_err_stage(err, CL_EVERIFY, "payload", "%s",
                            err ? err->msg : "unknown critical member");
    struct cl_image_digest d;
    if (cl_image_digest_parse(dg, &d, "signed digest", err) < 0)
        return cl_err_stage(err, CL_EVERIFY, "payload", "signature names a malformed digest");
    bool digest_ok = (src->manifest_digest && cl_image_digest_eq(&d, src->manifest_digest)) ||
                     (src->index_digest && cl_image_digest_eq(&d, src->index_digest));
    if (!digest_ok)
        return cl_err_stage(err, CL_EVERIFY, "payload", "signature is for manifest %s, not %s",
                            d.str, src->manifest_digest ? src->manifest_digest->str : "?");
    return identity_check(src->ref, ident, signed_identity, default_identity, err);
}

/* ---- keys ---- */

/* Concatenated key material of a requirement (keyData is base64; keyPath/keyPaths files or
 * kbs:// resources). raw_pem_ok: keyData may also be PEM text (image-rs reads it so). */
static struct cl_secret *req_keys(const json_t *r, const struct cl_image_sigsrc *src,
                                  bool raw_pem_ok, struct cl_err *err)
{
    const char *data = json_string_value(json_object_get(r, "keyData"));
    if (data) {
        if (raw_pem_ok && strncmp(data, "-----BEGIN", 10) == 0)
            return cl_secret_from(data, strlen(data));
        struct cl_secret *s = cl_b64_decode_secret(data, strlen(data), CL_B64_ANY, err);
        if (!s)
            cl_err_prefix(err, "policy keyData");
        return s;
    }
    json_t *paths = json_object_get(r, "keyPaths");
    json_t *one = json_object_get(r, "keyPath");
    size_t n = paths ? json_array_size(paths) : 1;
    struct cl_secret *parts[MAX_KEY_PATHS] = {0};
    size_t total = 0;
    struct cl_secret *out = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *p = json_string_value(paths ? json_array_get(paths, i) : one);
        parts[i] = cl_image_resource_load(src->resources, p, CL_IMAGE_MAX_KEY_FILE, err);
        if (!parts[i]) {
            cl_err_prefix(err, "policy key %.200s", p);
            goto out;
        }
        total += parts[i]->len + 1;
    }
    out = cl_secret_new(total);
    if (!out) {
        cl_err_set(err, CL_ENOMEM, "policy keys: out of memory");
        goto out;
    }
    total = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(out->data + total, parts[i]->data, parts[i]->len);
        total += parts[i]->len;
        out->data[total++] = '\n';
    }
out:
    for (size_t i = 0; i < n; i++)
        cl_secret_free(parts[i]);
    return out;
}

/* ---- signedBy (GPG simple signing) ---- */

static void free_blobs(cl_bytes **b, size_t *lens, cl_str **s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b)
            free(b[i]);
        if (s)
            free(s[i]);
    }
    free(b);
    free(lens);
    free(s);
}

static int eval_signed_by(const json_t *r, const struct cl_image_sigsrc *src, const char *where,
                          struct cl_err *err)
{
    if (!src->simple_sigs)
        return cl_err_stage(err, CL_EDENIED, "policy",
                            "policy %s: a signature is required and none can be fetched", where);
    CL_AUTO(cl_secret) *keys = req_keys(r, src, false, err);
    if (!keys)
        return err ? err->code : CL_EINVAL;
    const struct cl_image_digest *digests[2] = {src->manifest_digest, src->index_digest};
    size_t seen = 0;
    struct cl_err last = {0};
    for (size_t d = 0; d < 2; d++) {
        if (!digests[d])
            continue;
        cl_bytes **sigs = NULL;
        size_t *lens = NULL, n = 0;
        int rc = src->simple_sigs(src->ctx, digests[d], &sigs, &lens, &n, err);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n && seen < CL_IMAGE_MAX_SIGNATURES; i++, seen++) {
            cl_bytes *payload = NULL;
            size_t plen = 0;
            struct cl_err e = {0};
            rc = cl_image_gpg_verify(keys->data, keys->len, sigs[i], lens[i], &payload, &plen, &e);
            if (rc == 0) {
                rc = cl_image_sig_payload_check(payload, plen, "atomic container signature", src,
                                                json_object_get(r, "signedIdentity"),
                                                "matchRepoDigestOrExact", &e);
                free(payload);
            }
            if (rc == 0) {
                free_blobs(sigs, lens, NULL, n);
                return 0;
            }
            if (rc == CL_ENOMEM || rc == CL_EIO) {
                free_blobs(sigs, lens, NULL, n);
                if (err)
                    *err = e;
                return rc;
            }
            last = e;
        }
        free_blobs(sigs, lens, NULL, n);
    }
    if (seen == 0)
        return cl_err_stage(err, CL_EDENIED, "signature",
                            "policy %s: a signature was required, but no signature exists", where);
    return cl_err_stage(err, CL_EVERIFY, "signature",
                        "policy %s: none of %zu signature(s) is acceptable: %.300s", where, seen,
                        last.msg);
}

/* ---- sigstoreSigned (cosign keys) ---- */

static int eval_sigstore(const json_t *r, const struct cl_image_sigsrc *src, const char *where,
                         struct cl_err *err)
{
    if (!src->cosign_sigs)
        return cl_err_stage(err, CL_EDENIED, "policy",
                            "policy %s: a sigstore signature is required and none can be "
                            "fetched",
                            where);
    CL_AUTO(cl_secret) *keys = req_keys(r, src, true, err);
    if (!keys)
        return err ? err->code : CL_EINVAL;
    const struct cl_image_digest *digests[2] = {src->manifest_digest, src->index_digest};
    size_t seen = 0;
    struct cl_err last = {0};
    for (size_t d = 0; d < 2; d++) {
        if (!digests[d])
            continue;
        cl_bytes **payloads = NULL;
        size_t *lens = NULL, n = 0;
        cl_str **sigs = NULL;
        int rc = src->cosign_sigs(src->ctx, digests[d], &payloads, &lens, &sigs, &n, err);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n && seen < CL_IMAGE_MAX_SIGNATURES; i++, seen++) {
            struct cl_err e = {0};
            rc = cl_image_cosign_verify((const char *)keys->data, keys->len, payloads[i], lens[i],
                                        sigs[i], &e);
            if (rc == 0)
                rc = cl_image_sig_payload_check(
                    payloads[i], lens[i], "cosign container image signature", src,
                    json_object_get(r, "signedIdentity"), "matchRepository", &e);
            if (rc == 0) {
                free_blobs(payloads, lens, sigs, n);
                return 0;
            }
            last = e;
        }
        free_blobs(payloads, lens, sigs, n);
    }
    if (seen == 0)
        return cl_err_stage(err, CL_EDENIED, "signature",
                            "policy %s: a sigstore signature was required, but none "
                            "exists",
                            where);
    return cl_err_stage(err, CL_EVERIFY, "signature",
                        "policy %s: none of %zu sigstore signature(s) is acceptable: "
                        "%.300s",
                        where, seen, last.msg);
}

int cl_image_policy_check(const struct cl_image_policy *p, const struct cl_image_sigsrc *src,
                          struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (!p)
        return cl_err_stage(err, CL_EDENIED, "policy", "no signature policy: pulling is denied");
    if (!src || !src->ref)
        return cl_err_set(err, CL_EINVAL, "policy check: no image");
    const char *scope = NULL;
    const json_t *reqs = cl_image_policy_scope(p, src->ref, &scope);
    if (!json_is_array(reqs))
        return cl_err_stage(err, CL_EDENIED, "policy", "policy: no requirements for this image");
    /* every listed requirement must pass (the parser refused empty lists) */
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r)
    {
        const struct req_type *t = find_type(r);
        char where[256];
        snprintf(where, sizeof where, "scope %.150s, requirement %zu (%s)", scope, i,
                 t ? t->name : "?");
        if (!t)
            return cl_err_stage(err, CL_EDENIED, "policy", "policy %s: unknown requirement", where);
        int rc = t->eval(r, src, where, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}
