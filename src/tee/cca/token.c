/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CCA attestation token: the tag-399 collection {44234: platform COSE_Sign1, 44241: realm
 * COSE_Sign1}, the claims of each (read through tables of {key, kind, field}), the realm
 * signature by the RAK carried in the realm token, the platform challenge that binds the RAK,
 * the platform signature by a CPAK from the trust-anchor store, the appraisal against a
 * reference-value store, and the claims in trustee's names.
 */
#include "crypto/crypto.h"
#include "tee/cca/cca.h"
#include "tee/tee_int.h"

#include <stddef.h>
#include <string.h>

/* ---- claim tables ---- */

enum kind { K_BSTR, K_TSTR, K_UINT, K_SW, K_REMS };

struct claim_def {
    int64_t key;
    enum kind kind;
    size_t off;
    size_t min, max; /* string lengths */
    bool required;
    const char *name;
};

#define PF(f) offsetof(struct cl_cca_platform, f)
static const struct claim_def platform_defs[] = {
    {265, K_TSTR, PF(profile), 1, 256, true, "cca-platform-profile"},
    {10, K_BSTR, PF(challenge), 32, 64, true, "cca-platform-challenge"},
    {2396, K_BSTR, PF(implementation_id), 32, 32, true, "cca-platform-implementation-id"},
    {256, K_BSTR, PF(instance_id), 33, 33, true, "cca-platform-instance-id"},
    {2401, K_BSTR, PF(config), 0, 4096, true, "cca-platform-config"},
    {2395, K_UINT, PF(lifecycle), 0, 0, true, "cca-platform-lifecycle"},
    {2399, K_SW, 0, 0, 0, true, "cca-platform-sw-components"},
    {2400, K_TSTR, PF(service), 0, 1024, false, "cca-platform-service-indicator"},
    {2402, K_TSTR, PF(hash_algo), 1, 32, true, "cca-platform-hash-algo-id"},
};

#define RF(f) offsetof(struct cl_cca_realm, f)
static const struct claim_def realm_defs[] = {
    {10, K_BSTR, RF(challenge), 64, 64, true, "cca-realm-challenge"},
    {44235, K_BSTR, RF(personalization), 64, 64, true, "cca-realm-personalization-value"},
    {44236, K_TSTR, RF(rak_hash_algo), 1, 32, true, "cca-realm-public-key-hash-algo-id"},
    {44237, K_BSTR, RF(rak), 97, 97, true, "cca-realm-public-key"},
    {44238, K_BSTR, RF(rim), 32, 64, true, "cca-realm-initial-measurement"},
    {44239, K_REMS, 0, 32, 64, true, "cca-realm-extensible-measurements"},
    {44240, K_TSTR, RF(hash_algo), 1, 32, true, "cca-realm-hash-algo-id"},
    {265, K_TSTR, RF(profile), 1, 256, false, "cca-realm-profile"},
};

#define SF(f) offsetof(struct cl_cca_sw_component, f)
static const struct claim_def sw_defs[] = {
    {1, K_TSTR, SF(type), 0, 64, false, "measurement-type"},
    {2, K_BSTR, SF(measurement), 32, 64, true, "measurement-value"},
    {4, K_TSTR, SF(version), 0, 64, false, "version"},
    {5, K_BSTR, SF(signer_id), 32, 64, true, "signer-id"},
    {6, K_TSTR, SF(hash_algo), 1, 32, false, "hash-algo-id"},
};

/* RFC 3629 UTF-8 (no overlong forms, no surrogates, at most U+10FFFF): CBOR text strings must
 * be, and the claims are JSON strings. */
static bool utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = p[i];
        size_t len = b < 0x80             ? 1
                     : (b & 0xe0) == 0xc0 ? 2
                     : (b & 0xf0) == 0xe0 ? 3
                     : (b & 0xf8) == 0xf0 ? 4
                                          : 0;
        if (!len || len > n - i)
            return false;
        uint32_t cp = len == 1 ? b : len == 2 ? b & 0x1fu : len == 3 ? b & 0x0fu : b & 0x07u;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3fu);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static int read_string(struct cl_cca_cbor *c, const struct claim_def *d, struct cl_cca_bytes *out,
                       struct cl_err *err)
{
    struct cl_cca_cbor_item it;
    int rc;
    if ((rc = cl_cca_cbor_expect(c, d->kind == K_TSTR ? CL_CCA_CBOR_TSTR : CL_CCA_CBOR_BSTR, &it,
                                 d->name, err)) < 0)
        return rc;
    if (it.val < d->min || it.val > d->max)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CCA claim %s: %llu bytes (want %zu..%zu)", d->name,
                            (unsigned long long)it.val, d->min, d->max);
    if (d->kind == K_TSTR && !utf8_valid(it.data, (size_t)it.val))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "CCA claim %s: text is not UTF-8",
                            d->name);
    out->p = it.data;
    out->n = (size_t)it.val;
    return 0;
}

typedef int (*special_fn)(struct cl_cca_cbor *c, void *obj, const struct claim_def *d,
                          struct cl_err *err);

/* Reads a claims map into obj by the table; duplicate and missing mandatory claims refused,
 * unknown claims skipped. */
static int read_map(struct cl_cca_cbor *c, const struct claim_def *defs, size_t ndefs, void *obj,
                    special_fn special, const char *what, struct cl_err *err)
{
    struct cl_cca_cbor_item m;
    int rc;
    if ((rc = cl_cca_cbor_expect(c, CL_CCA_CBOR_MAP, &m, what, err)) < 0)
        return rc;
    bool seen[16] = {0};
    for (uint64_t i = 0; i < m.val; i++) {
        int64_t key;
        if ((rc = cl_cca_cbor_int_key(c, &key, what, err)) < 0)
            return rc;
        size_t k = 0;
        while (k < ndefs && defs[k].key != key)
            k++;
        if (k == ndefs) {
            if ((rc = cl_cca_cbor_skip(c, what, err)) < 0)
                return rc;
            continue;
        }
        if (seen[k])
            return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "%s: claim %s given twice",
                                what, defs[k].name);
        seen[k] = true;
        const struct claim_def *d = &defs[k];
        if (d->kind == K_BSTR || d->kind == K_TSTR) {
            rc = read_string(c, d, (struct cl_cca_bytes *)((uint8_t *)obj + d->off), err);
        } else if (d->kind == K_UINT) {
            struct cl_cca_cbor_item it;
            rc = cl_cca_cbor_expect(c, CL_CCA_CBOR_UINT, &it, d->name, err);
            if (rc == 0)
                *(uint64_t *)(void *)((uint8_t *)obj + d->off) = it.val;
        } else {
            rc = special(c, obj, d, err);
        }
        if (rc < 0)
            return rc;
    }
    for (size_t k = 0; k < ndefs; k++)
        if (defs[k].required && !seen[k])
            return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "%s: claim %s missing", what,
                                defs[k].name);
    return 0;
}

static int platform_special(struct cl_cca_cbor *c, void *obj, const struct claim_def *d,
                            struct cl_err *err)
{
    struct cl_cca_platform *p = obj;
    struct cl_cca_cbor_item a;
    int rc;
    if ((rc = cl_cca_cbor_expect(c, CL_CCA_CBOR_ARRAY, &a, d->name, err)) < 0)
        return rc;
    if (a.val == 0 || a.val > CL_CCA_MAX_SW_COMPONENTS)
        return cl_err_stage(err, a.val ? CL_ELIMIT : CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CCA claim %s: %llu entries (1..%d)", d->name,
                            (unsigned long long)a.val, CL_CCA_MAX_SW_COMPONENTS);
    for (uint64_t i = 0; i < a.val; i++) {
        memset(&p->sw[i], 0, sizeof p->sw[i]);
        if ((rc = read_map(c, sw_defs, CL_ARRAY_LEN(sw_defs), &p->sw[i], NULL, d->name, err)) < 0)
            return rc;
    }
    p->nsw = (size_t)a.val;
    return 0;
}

static int realm_special(struct cl_cca_cbor *c, void *obj, const struct claim_def *d,
                         struct cl_err *err)
{
    struct cl_cca_realm *r = obj;
    struct cl_cca_cbor_item a;
    int rc;
    if ((rc = cl_cca_cbor_expect(c, CL_CCA_CBOR_ARRAY, &a, d->name, err)) < 0)
        return rc;
    if (a.val != 4)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CCA claim %s: %llu entries (want 4)", d->name,
                            (unsigned long long)a.val);
    for (size_t i = 0; i < 4; i++) {
        struct claim_def one = *d;
        one.kind = K_BSTR;
        if ((rc = read_string(c, &one, &r->rem[i], err)) < 0)
            return rc;
    }
    r->nrem = 4;
    return 0;
}

/* ---- COSE_Sign1 ---- */

static int read_cose(const uint8_t *buf, size_t len, struct cl_cca_cose_sign1 *out,
                     const char *what, struct cl_err *err)
{
    struct cl_cca_cbor c = cl_cca_cbor_init(buf, len);
    struct cl_cca_cbor_item it;
    int rc;
    if ((rc = cl_cca_cbor_head(&c, &it, what, err)) < 0)
        return rc;
    if (it.major == CL_CCA_CBOR_TAG) {
        if (it.val != CL_CCA_COSE_TAG_SIGN1)
            return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                                "%s: CBOR tag %llu (want COSE_Sign1, 18)", what,
                                (unsigned long long)it.val);
        if ((rc = cl_cca_cbor_head(&c, &it, what, err)) < 0)
            return rc;
    }
    if (it.major != CL_CCA_CBOR_ARRAY || it.val != 4)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "%s: not a COSE_Sign1 array of 4",
                            what);
    struct cl_cca_cbor_item prot, payload, sig;
    if ((rc = cl_cca_cbor_expect(&c, CL_CCA_CBOR_BSTR, &prot, what, err)) < 0)
        return rc;
    if ((rc = cl_cca_cbor_expect(&c, CL_CCA_CBOR_MAP, &it, what, err)) < 0)
        return rc;
    for (uint64_t i = 0; i < 2 * it.val; i++) /* unprotected header: carries nothing we use */
        if ((rc = cl_cca_cbor_skip(&c, what, err)) < 0)
            return rc;
    if ((rc = cl_cca_cbor_expect(&c, CL_CCA_CBOR_BSTR, &payload, what, err)) < 0 ||
        (rc = cl_cca_cbor_expect(&c, CL_CCA_CBOR_BSTR, &sig, what, err)) < 0)
        return rc;
    if (c.off != c.len)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "%s: %zu bytes after the COSE_Sign1", what, c.len - c.off);
    /* protected header: a map with the algorithm (label 1) */
    struct cl_cca_cbor ph = cl_cca_cbor_init(prot.data, (size_t)prot.val);
    if ((rc = cl_cca_cbor_expect(&ph, CL_CCA_CBOR_MAP, &it, what, err)) < 0)
        return rc;
    bool have_alg = false;
    int64_t alg = 0;
    for (uint64_t i = 0; i < it.val; i++) {
        struct cl_cca_cbor_item k;
        if ((rc = cl_cca_cbor_head(&ph, &k, what, err)) < 0)
            return rc;
        if (k.major == CL_CCA_CBOR_UINT && k.val == 1) {
            if (have_alg)
                return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "%s: alg given twice",
                                    what);
            if ((rc = cl_cca_cbor_int_key(&ph, &alg, what, err)) < 0)
                return rc;
            have_alg = true;
        } else if ((rc = cl_cca_cbor_skip(&ph, what, err)) < 0) {
            return rc;
        }
    }
    if (ph.off != ph.len)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "%s: bytes after the protected header", what);
    if (!have_alg)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "%s: protected header has no alg",
                            what);
    if (alg != -7 && alg != -35 && alg != -36)
        return cl_err_stage(err, CL_EUNSUPPORTED, CL_TEE_STAGE_PARSE,
                            "%s: COSE alg %lld (want ES256/ES384/ES512)", what, (long long)alg);
    *out = (struct cl_cca_cose_sign1){{prot.data, (size_t)prot.val},
                                      {payload.data, (size_t)payload.val},
                                      {sig.data, (size_t)sig.val},
                                      alg};
    return 0;
}

static size_t put_head(uint8_t *p, uint8_t major, uint64_t v)
{
    if (v < 24) {
        p[0] = (uint8_t)(major << 5 | v);
        return 1;
    }
    size_t n = v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
    p[0] = (uint8_t)(major << 5 | (n == 1 ? 24 : n == 2 ? 25 : n == 4 ? 26 : 27));
    for (size_t i = 0; i < n; i++)
        p[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return 1 + n;
}

cl_bytes *cl_cca_cose_tbs(const struct cl_cca_cose_sign1 *s, size_t *outlen)
{
    static const char ctx[] = "Signature1";
    size_t cap = 1 + 1 + (sizeof ctx - 1) + 9 + s->protected_hdr.n + 1 + 9 + s->payload.n;
    uint8_t *b = malloc(cap);
    if (!b)
        return NULL;
    size_t o = put_head(b, CL_CCA_CBOR_ARRAY, 4);
    o += put_head(b + o, CL_CCA_CBOR_TSTR, sizeof ctx - 1);
    memcpy(b + o, ctx, sizeof ctx - 1);
    o += sizeof ctx - 1;
    o += put_head(b + o, CL_CCA_CBOR_BSTR, s->protected_hdr.n);
    if (s->protected_hdr.n)
        memcpy(b + o, s->protected_hdr.p, s->protected_hdr.n);
    o += s->protected_hdr.n;
    o += put_head(b + o, CL_CCA_CBOR_BSTR, 0); /* external_aad */
    o += put_head(b + o, CL_CCA_CBOR_BSTR, s->payload.n);
    if (s->payload.n)
        memcpy(b + o, s->payload.p, s->payload.n);
    o += s->payload.n;
    *outlen = o;
    return b;
}

/* ---- token ---- */

int cl_cca_token_parse(const uint8_t *buf, size_t len, struct cl_cca_token *out, struct cl_err *err)
{
    if (len > CL_CCA_MAX_TOKEN)
        return cl_err_stage(err, CL_ELIMIT, CL_TEE_STAGE_PARSE, "CCA token of %zu bytes (limit %d)",
                            len, CL_CCA_MAX_TOKEN);
    struct cl_cca_token t;
    memset(&t, 0, sizeof t);
    struct cl_cca_cbor c = cl_cca_cbor_init(buf, len);
    struct cl_cca_cbor_item it;
    int rc;
    if ((rc = cl_cca_cbor_expect(&c, CL_CCA_CBOR_TAG, &it, "CCA token", err)) < 0)
        return rc;
    if (it.val != CL_CCA_TAG_COLLECTION)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CCA token: CBOR tag %llu (want 399)", (unsigned long long)it.val);
    if ((rc = cl_cca_cbor_expect(&c, CL_CCA_CBOR_MAP, &it, "CCA token", err)) < 0)
        return rc;
    struct cl_cca_cbor_item pt = {0}, rt = {0};
    for (uint64_t i = 0; i < it.val; i++) {
        int64_t key;
        if ((rc = cl_cca_cbor_int_key(&c, &key, "CCA token", err)) < 0)
            return rc;
        struct cl_cca_cbor_item *slot = key == CL_CCA_KEY_PLATFORM ? &pt
                                        : key == CL_CCA_KEY_REALM  ? &rt
                                                                   : NULL;
        if (!slot)
            return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                                "CCA token: unknown collection member %lld", (long long)key);
        if (slot->data)
            return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                                "CCA token: member %lld given twice", (long long)key);
        if ((rc = cl_cca_cbor_expect(&c, CL_CCA_CBOR_BSTR, slot, "CCA token member", err)) < 0)
            return rc;
    }
    if (c.off != c.len)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CCA token: %zu bytes after the collection", c.len - c.off);
    if (!pt.data || !rt.data)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "CCA token: %s token missing",
                            pt.data ? "realm" : "platform");
    if ((rc = read_cose(pt.data, (size_t)pt.val, &t.platform_cose, "CCA platform token", err)) <
            0 ||
        (rc = read_cose(rt.data, (size_t)rt.val, &t.realm_cose, "CCA realm token", err)) < 0)
        return rc;
    struct cl_cca_cbor pc = cl_cca_cbor_init(t.platform_cose.payload.p, t.platform_cose.payload.n);
    if ((rc = read_map(&pc, platform_defs, CL_ARRAY_LEN(platform_defs), &t.platform,
                       platform_special, "CCA platform claims", err)) < 0)
        return rc;
    struct cl_cca_cbor rc2 = cl_cca_cbor_init(t.realm_cose.payload.p, t.realm_cose.payload.n);
    if ((rc = read_map(&rc2, realm_defs, CL_ARRAY_LEN(realm_defs), &t.realm, realm_special,
                       "CCA realm claims", err)) < 0)
        return rc;
    if (pc.off != pc.len || rc2.off != rc2.len)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CCA token: bytes after a claims map");
    /* the profiles whose claim set this parser reads (the CCA platform token profile of Arm's
     * CCA security model, in its original and its tag form) */
    static const char *const profiles[] = {"http://arm.com/CCA-SSD/1.0.0",
                                           "tag:arm.com,2023:cca_platform#1.0.0"};
    bool known = false;
    for (size_t i = 0; i < CL_ARRAY_LEN(profiles); i++)
        known = known || (t.platform.profile.n == strlen(profiles[i]) &&
                          memcmp(t.platform.profile.p, profiles[i], t.platform.profile.n) == 0);
    if (!known)
        return cl_err_stage(err, CL_EUNSUPPORTED, CL_TEE_STAGE_PARSE,
                            "CCA platform profile '%.*s' is not supported",
                            (int)(t.platform.profile.n > 80 ? 80 : t.platform.profile.n),
                            (const char *)t.platform.profile.p);
    if (t.realm.rak.p[0] != 0x04)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CCA realm public key is not an uncompressed point");
    size_t cl = t.platform.challenge.n;
    if (cl != 32 && cl != 48 && cl != 64)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CCA platform challenge of %zu bytes", cl);
    *out = t;
    return 0;
}

/* ---- signatures ---- */

static const char *alg_name(int64_t alg)
{
    return alg == -7 ? "ES256" : alg == -35 ? "ES384" : "ES512";
}

static int verify_cose(const struct cl_cca_cose_sign1 *s, cl_pkey *key, const char *what,
                       const char *stage, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *tbs = cl_cca_cose_tbs(s, &n);
    if (!tbs)
        return cl_err_stage(err, CL_ENOMEM, stage, "out of memory");
    if (cl_sig_verify(key, alg_name(s->alg), tbs, n, s->signature.p, s->signature.n, err) < 0) {
        err->stage = stage;
        err->code = CL_EVERIFY;
        cl_err_prefix(err, "%s signature", what);
        return CL_EVERIFY;
    }
    return 0;
}

/* A P-384 public key from an uncompressed point (0x04 ‖ x ‖ y), through its JWK. */
static cl_pkey *p384_from_point(const uint8_t *pt, size_t n, struct cl_err *err)
{
    if (n != 97 || pt[0] != 0x04) {
        cl_err_set(err, CL_EPARSE, "not an uncompressed P-384 point");
        return NULL;
    }
    CL_AUTO(cl_str) *x = cl_b64_encode(pt + 1, 48, CL_B64_URL);
    CL_AUTO(cl_str) *y = cl_b64_encode(pt + 49, 48, CL_B64_URL);
    if (!x || !y) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    CL_AUTO(json_t) *jwk =
        json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-384", "x", x, "y", y);
    if (!jwk) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    return cl_jwk_to_pkey(jwk, err);
}

int cl_cca_verify_realm(const struct cl_cca_token *t, struct cl_err *err)
{
    CL_TEE_ERR(err);
    CL_AUTO(cl_pkey) *rak = p384_from_point(t->realm.rak.p, t->realm.rak.n, err);
    if (!rak) {
        err->stage = CL_TEE_STAGE_SIGNATURE;
        return cl_err_prefix(err, "CCA realm public key");
    }
    int rc;
    if ((rc = verify_cose(&t->realm_cose, rak, "CCA realm token", CL_TEE_STAGE_SIGNATURE, err)) < 0)
        return rc;
    /* The platform token's challenge is the digest of the RAK point; the digest is the one
     * whose length the challenge has (the example token declares sha-512 for the RAK hash yet
     * carries a SHA-256 challenge, so the declared name is not relied on). */
    size_t cl = t->platform.challenge.n;
    enum cl_hash h = cl == 32 ? CL_HASH_SHA256 : cl == 48 ? CL_HASH_SHA384 : CL_HASH_SHA512;
    uint8_t d[CL_HASH_MAX];
    if ((rc = cl_digest(h, t->realm.rak.p, t->realm.rak.n, d, err)) < 0)
        return rc;
    if (!cl_memeq_ct(d, t->platform.challenge.p, cl))
        return cl_err_stage(
            err, CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
            "CCA platform challenge is not the %s of the realm attestation key (tokens not bound)",
            cl_hash_name(h));
    return 0;
}

static bool hex_equals(const json_t *v, const struct cl_cca_bytes *b)
{
    const char *s = json_string_value(v);
    uint8_t buf[512];
    size_t n = 0;
    if (!s || cl_hex_decode(s, strlen(s), buf, sizeof buf, &n, NULL) < 0)
        return false;
    return b->p && n == b->n && memcmp(buf, b->p, n) == 0;
}

int cl_cca_verify_platform(const struct cl_cca_token *t, const json_t *ta_store, struct cl_err *err)
{
    CL_TEE_ERR(err);
    if (!json_is_array(ta_store))
        return cl_err_stage(err, CL_EINVAL, CL_TEE_STAGE_CHAIN,
                            "CCA trust-anchor store is not a JSON array");
    size_t i;
    json_t *e;
    json_array_foreach(ta_store, i, e)
    {
        if (!hex_equals(json_object_get(e, "instance-id"), &t->platform.instance_id))
            continue;
        json_t *impl = json_object_get(e, "implementation-id");
        if (impl && !hex_equals(impl, &t->platform.implementation_id))
            return cl_err_stage(
                err, CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                "CCA trust anchor for this instance id has another implementation id");
        CL_AUTO(cl_pkey) *cpak = cl_jwk_to_pkey(json_object_get(e, "pkey"), err);
        if (!cpak) {
            err->stage = CL_TEE_STAGE_CHAIN;
            return cl_err_prefix(err, "CCA trust-anchor store entry %zu 'pkey'", i);
        }
        return verify_cose(&t->platform_cose, cpak, "CCA platform token (CPAK)", CL_TEE_STAGE_CHAIN,
                           err);
    }
    CL_AUTO(cl_str) *hex = cl_hex_encode(t->platform.instance_id.p, t->platform.instance_id.n);
    return cl_err_stage(err, CL_ENOTFOUND, CL_TEE_STAGE_CHAIN,
                        "no CCA trust anchor (CPAK) for instance id %s", hex ? hex : "?");
}

/* ---- appraisal ---- */

static bool sw_matches(const struct cl_cca_sw_component *s, const json_t *rv)
{
    if (!hex_equals(json_object_get(rv, "measurement-value"), &s->measurement) ||
        !hex_equals(json_object_get(rv, "signer-id"), &s->signer_id))
        return false;
    const char *type = json_string_value(json_object_get(rv, "component-type"));
    if (type && s->type.p)
        return strlen(type) == s->type.n && memcmp(type, s->type.p, s->type.n) == 0;
    return !type && !s->type.p;
}

static int appraise_platform(const struct cl_cca_platform *p, const json_t *list,
                             struct cl_err *err)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (!hex_equals(json_object_get(e, "implementation-id"), &p->implementation_id))
            continue;
        json_t *cfg = json_object_get(e, "platform-configuration");
        if (cfg && !hex_equals(cfg, &p->config))
            return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB,
                                "CCA platform configuration differs from the reference");
        json_t *sw = json_object_get(e, "sw-components");
        for (size_t k = 0; k < p->nsw; k++) {
            bool found = false;
            size_t j;
            json_t *r;
            json_array_foreach(sw, j, r) found = found || sw_matches(&p->sw[k], r);
            if (!found)
                return cl_err_stage(
                    err, CL_EVERIFY, CL_TEE_STAGE_TCB,
                    "CCA platform software component %zu (%.*s) matches no reference value", k,
                    (int)p->sw[k].type.n, p->sw[k].type.p ? (const char *)p->sw[k].type.p : "");
        }
        return 0;
    }
    return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB,
                        "no CCA platform reference values for this implementation id");
}

static int appraise_realm(const struct cl_cca_realm *r, const json_t *list, struct cl_err *err)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (!hex_equals(json_object_get(e, "initial-measurement"), &r->rim))
            continue;
        json_t *pv = json_object_get(e, "personalization-value");
        if (pv && !hex_equals(pv, &r->personalization))
            continue;
        json_t *rems = json_object_get(e, "extensible-measurements");
        bool ok = true;
        if (rems) {
            ok = json_array_size(rems) == r->nrem;
            for (size_t k = 0; ok && k < r->nrem; k++)
                ok = hex_equals(json_array_get(rems, k), &r->rem[k]);
        }
        if (ok)
            return 0;
    }
    return cl_err_stage(
        err, CL_EVERIFY, CL_TEE_STAGE_TCB,
        "CCA realm measurements (RIM, REMs, personalisation value) match no reference value");
}

int cl_cca_appraise(const struct cl_cca_token *t, const json_t *rv_store, struct cl_err *err)
{
    CL_TEE_ERR(err);
    json_t *plat = json_object_get(rv_store, "platform"),
           *realm = json_object_get(rv_store, "realm");
    if (!json_is_array(plat) || !json_is_array(realm))
        return cl_err_stage(err, CL_EINVAL, CL_TEE_STAGE_TCB,
                            "CCA reference-value store needs 'platform' and 'realm' arrays");
    int rc;
    if ((rc = appraise_platform(&t->platform, plat, err)) < 0)
        return rc;
    return appraise_realm(&t->realm, realm, err);
}

/* ---- claims ---- */

static json_t *b64(const struct cl_cca_bytes *b)
{
    CL_AUTO(cl_str) *s = cl_b64_encode(b->p ? b->p : (const uint8_t *)"", b->n, CL_B64_STD);
    return s ? json_string(s) : NULL;
}

static json_t *text(const struct cl_cca_bytes *b)
{
    return json_stringn(b->p ? (const char *)b->p : "", b->n);
}

static json_t *claims_oom(struct cl_err *err)
{
    cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    return NULL;
}

json_t *cl_cca_claims(const struct cl_cca_token *t, struct cl_err *err)
{
    const struct cl_cca_platform *p = &t->platform;
    const struct cl_cca_realm *r = &t->realm;
    CL_AUTO(json_t) *sw = json_array();
    CL_AUTO(json_t) *rems = json_array();
    CL_AUTO(json_t) *plat = NULL;
    CL_AUTO(json_t) *realm = NULL;
    CL_AUTO(json_t) *c = NULL;
    if (!sw || !rems)
        return claims_oom(err);
    for (size_t i = 0; i < p->nsw; i++) {
        const struct cl_cca_sw_component *s = &p->sw[i];
        json_t *o = json_object();
        if (!o || json_array_append_new(sw, o) < 0)
            return claims_oom(err);
        bool ok = true;
        if (s->type.p)
            ok = json_object_set_new(o, "measurement-type", text(&s->type)) == 0 && ok;
        ok = json_object_set_new(o, "measurement-value", b64(&s->measurement)) == 0 && ok;
        ok = json_object_set_new(o, "signer-id", b64(&s->signer_id)) == 0 && ok;
        if (s->version.p)
            ok = json_object_set_new(o, "version", text(&s->version)) == 0 && ok;
        if (s->hash_algo.p)
            ok = json_object_set_new(o, "hash-algo-id", text(&s->hash_algo)) == 0 && ok;
        if (!ok)
            return claims_oom(err);
    }
    for (size_t i = 0; i < r->nrem; i++)
        if (json_array_append_new(rems, b64(&r->rem[i])) < 0)
            return claims_oom(err);
    plat = json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:I, s:O, s:o}", "cca-platform-profile", text(&p->profile),
        "cca-platform-implementation-id", b64(&p->implementation_id), "cca-platform-instance-id",
        b64(&p->instance_id), "cca-platform-challenge", b64(&p->challenge), "cca-platform-config",
        b64(&p->config), "cca-platform-lifecycle", (json_int_t)p->lifecycle,
        "cca-platform-sw-components", sw, "cca-platform-hash-algo-id", text(&p->hash_algo));
    if (!plat || (p->service.p && json_object_set_new(plat, "cca-platform-service-indicator",
                                                      text(&p->service)) < 0))
        return claims_oom(err);
    realm = json_pack("{s:o, s:o, s:o, s:O, s:o, s:o, s:o}", "cca-realm-challenge",
                      b64(&r->challenge), "cca-realm-personalization-value",
                      b64(&r->personalization), "cca-realm-initial-measurement", b64(&r->rim),
                      "cca-realm-extensible-measurements", rems, "cca-realm-hash-algo-id",
                      text(&r->hash_algo), "cca-realm-public-key", b64(&r->rak),
                      "cca-realm-public-key-hash-algo-id", text(&r->rak_hash_algo));
    if (!realm ||
        (r->profile.p && json_object_set_new(realm, "cca-realm-profile", text(&r->profile)) < 0))
        return claims_oom(err);
    c = json_pack("{s:O, s:O}", "platform", plat, "realm", realm);
    if (!c)
        return claims_oom(err);
    if (cl_tee_set_hex(c, "report_data", r->challenge.p, r->challenge.n, err) < 0 ||
        cl_tee_set_hex(c, "init_data", r->personalization.p, r->personalization.n, err) < 0)
        return NULL;
    return CL_STEAL(c);
}
