/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hygon's binary certificates and the SM2 links between them. Two formats (layouts derived
 * from the bytes of trustee's vectors and documented in docs/verifiers.md):
 *   CA certificate (HRK, HSK), 832 bytes: version, key id, certifying key id, key usage, the
 *     SM2 key (curve, x, y, user id) and one signature over [0, 0x240);
 *   CSV certificate (CEK, PEK), 2084 bytes: version, firmware API version, key usage and
 *     algorithm, the SM2 key (curve, x, y, user id, sid) and two signature slots, each naming
 *     the usage of the key that signed [0, 0x414).
 * Coordinates and signature halves are 72-byte fields holding 32 little-endian bytes; the
 * padding must be zero. SM2 signatures use SM3 and the signer's user id as distinguishing id.
 */
#include "tee/csv/csv.h"
#include "tee/tee_int.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <string.h>

const char *const cl_csv_hrk_pins[] = {
    /* HYGON-SSD-HRK, key id 3ae86a9701355cce333a589de21583d7 */
    "296efa97580464aca0ab5eefe42199ee05862182508d1629f29cf4dc175b10cd",
};
const size_t cl_csv_hrk_npins = CL_ARRAY_LEN(cl_csv_hrk_pins);

/* A 72-byte little-endian field → 32 big-endian bytes; the padding must be zero. */
static int coord(struct cl_cursor *c, uint8_t out[32], const char *what, struct cl_err *err)
{
    const uint8_t *p;
    if (cl_cursor_take(c, CL_CSV_COORD, &p) < 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "%s truncated", what);
    for (size_t i = 32; i < CL_CSV_COORD; i++)
        if (p[i])
            return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                                "%s: non-zero padding at byte %zu", what, i);
    for (size_t i = 0; i < 32; i++)
        out[i] = p[31 - i];
    return 0;
}

/* curve, x, y, uid_size, user_id (404 bytes) */
static int pubkey(struct cl_cursor *c, struct cl_csv_pubkey *k, const char *what,
                  struct cl_err *err)
{
    uint16_t uid_len;
    int rc;
    if (cl_cursor_le32(c, &k->curve) < 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "%s key truncated", what);
    if (k->curve != CL_CSV_CURVE_SM2)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "%s key: curve %u (want SM2, %d)",
                            what, k->curve, CL_CSV_CURVE_SM2);
    if ((rc = coord(c, k->x, what, err)) < 0 || (rc = coord(c, k->y, what, err)) < 0)
        return rc;
    if (cl_cursor_le16(c, &uid_len) < 0 || cl_cursor_copy(c, k->uid, sizeof k->uid) < 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "%s user id truncated", what);
    if (uid_len > sizeof k->uid)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "%s user id of %u bytes (at most %zu)", what, uid_len, sizeof k->uid);
    k->uid_len = uid_len;
    return 0;
}

static int sig_rs(struct cl_cursor *c, struct cl_csv_sig *s, const char *what, struct cl_err *err)
{
    int rc;
    if ((rc = coord(c, s->r, what, err)) < 0 || (rc = coord(c, s->s, what, err)) < 0)
        return rc;
    return 0;
}

int cl_csv_ca_cert_parse(const uint8_t *buf, size_t len, struct cl_csv_ca_cert *out,
                         struct cl_err *err)
{
    if (len != CL_CSV_CA_CERT_SIZE)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CSV CA certificate of %zu bytes (want %d)", len, CL_CSV_CA_CERT_SIZE);
    struct cl_csv_ca_cert x;
    memset(&x, 0, sizeof x);
    struct cl_cursor c = cl_cursor_init(buf, len);
    int rc;
    if (cl_cursor_le32(&c, &x.version) < 0 || cl_cursor_copy(&c, x.key_id, 16) < 0 ||
        cl_cursor_copy(&c, x.certifying_id, 16) < 0 || cl_cursor_le32(&c, &x.usage) < 0 ||
        cl_cursor_skip(&c, 24) < 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CSV CA certificate header truncated");
    if (x.version != 1)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CSV CA certificate version %u (want 1)", x.version);
    if ((rc = pubkey(&c, &x.key, "CSV CA certificate", err)) < 0)
        return rc;
    struct cl_cursor s = cl_cursor_init(buf + CL_CSV_CA_SIGNED, len - CL_CSV_CA_SIGNED);
    if ((rc = sig_rs(&s, &x.sig, "CSV CA certificate signature", err)) < 0)
        return rc;
    memcpy(x.raw, buf, len);
    *out = x;
    return 0;
}

int cl_csv_cert_parse(const uint8_t *buf, size_t len, struct cl_csv_cert *out, struct cl_err *err)
{
    if (len != CL_CSV_CERT_SIZE)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CSV certificate of %zu bytes (want %d)", len, CL_CSV_CERT_SIZE);
    struct cl_csv_cert x;
    memset(&x, 0, sizeof x);
    struct cl_cursor c = cl_cursor_init(buf, len);
    int rc;
    if (cl_cursor_le32(&c, &x.version) < 0 || cl_cursor_u8(&c, &x.api_major) < 0 ||
        cl_cursor_u8(&c, &x.api_minor) < 0 || cl_cursor_skip(&c, 2) < 0 ||
        cl_cursor_le32(&c, &x.usage) < 0 || cl_cursor_le32(&c, &x.algo) < 0)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "CSV certificate header truncated");
    if (x.version != 1)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CSV certificate version %u (want 1)", x.version);
    if (x.algo != CL_CSV_ALGO_SM2_SM3)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "CSV certificate key algorithm %u (want SM2, %d)", x.algo,
                            CL_CSV_ALGO_SM2_SM3);
    if ((rc = pubkey(&c, &x.key, "CSV certificate", err)) < 0)
        return rc;
    for (size_t i = 0; i < 2; i++) {
        struct cl_cursor s = cl_cursor_init(buf + CL_CSV_CERT_SIGNED + 520 * i, 520);
        if (cl_cursor_le32(&s, &x.sig[i].usage) < 0 || cl_cursor_le32(&s, &x.sig[i].algo) < 0 ||
            (rc = sig_rs(&s, &x.sig[i], "CSV certificate signature", err)) < 0)
            return rc < 0 ? rc
                          : cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                                         "CSV certificate signature truncated");
    }
    memcpy(x.raw, buf, len);
    *out = x;
    return 0;
}

/* ---- serde JSON of a CSV certificate → its binary image ---- */

static int put_u(uint8_t *b, size_t off, size_t width, const json_t *v, const char *what,
                 struct cl_err *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (width < 8 && (uint64_t)json_integer_value(v) >> (8 * width)))
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE,
                            "%s: not a %zu-byte unsigned integer", what, width);
    uint64_t x = (uint64_t)json_integer_value(v);
    for (size_t i = 0; i < width; i++)
        b[off + i] = (uint8_t)(x >> (8 * i));
    return 0;
}

static int put_bytes(uint8_t *b, size_t off, size_t n, const json_t *v, const char *what,
                     struct cl_err *err)
{
    size_t got = 0;
    CL_AUTO(cl_bytes) *x = cl_tee_json_bytes(v, n, n, &got, what, err);
    if (!x) {
        err->stage = CL_TEE_STAGE_PARSE;
        return err->code;
    }
    memcpy(b + off, x, n);
    return 0;
}

static const json_t *jget(const json_t *o, const char *path)
{
    char key[32];
    const json_t *v = o;
    while (v && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        path += n + (path[n] == '.');
    }
    return v;
}

int cl_csv_cert_from_json(const json_t *v, struct cl_csv_cert *out, const char *what,
                          struct cl_err *err)
{
    CL_TEE_ERR(err);
    if (!json_is_object(v)) {
        size_t n = 0;
        CL_AUTO(cl_bytes) *b = cl_tee_json_bytes(v, CL_CSV_CERT_SIZE, 0, &n, what, err);
        if (!b) {
            err->stage = CL_TEE_STAGE_PARSE;
            return err->code;
        }
        return cl_csv_cert_parse(b, n, out, err);
    }
    /* field → offset in the binary image, as the 2084-byte layout places it */
    static const struct {
        const char *path;
        size_t off, width; /* width 0: a byte array of n bytes */
        size_t n;
    } body[] = {
        {"body.ver", 0x00, 4, 0},
        {"body.data.firmware.major", 0x04, 1, 0},
        {"body.data.firmware.minor", 0x05, 1, 0},
        {"body.data.reserved1", 0x06, 2, 0},
        {"body.data.pubkey.usage", 0x08, 4, 0},
        {"body.data.pubkey.algo", 0x0c, 4, 0},
        {"body.data.pubkey.key.g", 0x10, 4, 0},
        {"body.data.pubkey.key.x", 0x14, 0, 72},
        {"body.data.pubkey.key.y", 0x5c, 0, 72},
        {"body.data.uid_size", 0xa4, 2, 0},
        {"body.data.user_id", 0xa6, 0, 254},
        {"body.data.sid", 0x1a4, 0, 16},
        {"body.data.reserved2", 0x1b4, 0, 608},
    };
    static const struct {
        const char *path;
        size_t off, width, n;
    } sig[] = {
        {"usage", 0, 4, 0},         {"algo", 4, 4, 0},          {"signature.r", 8, 0, 72},
        {"signature.s", 80, 0, 72}, {"_reserved", 152, 0, 368},
    };
    uint8_t b[CL_CSV_CERT_SIZE] = {0};
    char name[96];
    int rc;
    for (size_t i = 0; i < CL_ARRAY_LEN(body); i++) {
        snprintf(name, sizeof name, "%s.%s", what, body[i].path);
        const json_t *f = jget(v, body[i].path);
        rc = body[i].width ? put_u(b, body[i].off, body[i].width, f, name, err)
                           : put_bytes(b, body[i].off, body[i].n, f, name, err);
        if (rc < 0)
            return rc;
    }
    const json_t *sigs = json_object_get(v, "sigs");
    if (!json_is_array(sigs) || json_array_size(sigs) != 2)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_PARSE, "%s.sigs: want an array of 2",
                            what);
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < CL_ARRAY_LEN(sig); i++) {
            snprintf(name, sizeof name, "%s.sigs[%zu].%s", what, k, sig[i].path);
            const json_t *f = jget(json_array_get(sigs, k), sig[i].path);
            size_t off = CL_CSV_CERT_SIGNED + 520 * k + sig[i].off;
            rc = sig[i].width ? put_u(b, off, sig[i].width, f, name, err)
                              : put_bytes(b, off, sig[i].n, f, name, err);
            if (rc < 0)
                return rc;
        }
    return cl_csv_cert_parse(b, sizeof b, out, err);
}

/* ---- SM2 ---- */

static EVP_PKEY *sm2_key(const struct cl_csv_pubkey *k)
{
    uint8_t pt[65];
    pt[0] = 0x04;
    memcpy(pt + 1, k->x, 32);
    memcpy(pt + 33, k->y, 32);
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "SM2", NULL);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)(uintptr_t) "SM2", 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt),
        OSSL_PARAM_construct_end(),
    };
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

int cl_csv_sm2_verify(const struct cl_csv_pubkey *key, const uint8_t *data, size_t len,
                      const struct cl_csv_sig *sig, struct cl_err *err)
{
    int rc = CL_EVERIFY;
    unsigned char *der = NULL;
    EVP_MD_CTX *mctx = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    ECDSA_SIG *es = NULL;
    EVP_PKEY *pkey = sm2_key(key);
    if (!pkey) {
        cl_err_set(err, CL_EVERIFY, "SM2 public key is not a point of the curve");
        goto out;
    }
    es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig->r, 32, NULL), *s = BN_bin2bn(sig->s, 32, NULL);
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
        goto out;
    }
    int dlen = i2d_ECDSA_SIG(es, &der);
    mctx = EVP_MD_CTX_new();
    pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (dlen <= 0 || !mctx || !pctx) {
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
        goto out;
    }
    if (EVP_PKEY_CTX_set1_id(pctx, key->uid, key->uid_len) <= 0) {
        rc = cl_err_set(err, CL_EVERIFY, "SM2 distinguishing id refused");
        goto out;
    }
    EVP_MD_CTX_set_pkey_ctx(mctx, pctx);
    if (EVP_DigestVerifyInit_ex(mctx, NULL, "SM3", NULL, NULL, pkey, NULL) <= 0 ||
        EVP_DigestVerify(mctx, der, (size_t)dlen, data, len) != 1) {
        rc = cl_err_set(err, CL_EVERIFY, "SM2/SM3 signature does not verify");
        goto out;
    }
    rc = 0;
out:
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_CTX_free(pctx); /* EVP_MD_CTX_set_pkey_ctx does not hand it over */
    ECDSA_SIG_free(es);
    OPENSSL_free(der);
    EVP_PKEY_free(pkey);
    return rc;
}

/* ---- the chain ---- */

static int chain_link(const struct cl_csv_pubkey *signer, const uint8_t *data, size_t len,
                      const struct cl_csv_sig *sig, const char *what, struct cl_err *err)
{
    if (cl_csv_sm2_verify(signer, data, len, sig, err) < 0) {
        err->stage = CL_TEE_STAGE_CHAIN;
        return cl_err_prefix(err, "%s", what);
    }
    return 0;
}

/* The signature slot of cert made by a key of `usage` (SM2/SM3), or NULL. */
static const struct cl_csv_sig *slot(const struct cl_csv_cert *c, uint32_t usage)
{
    for (size_t i = 0; i < 2; i++)
        if (c->sig[i].usage == usage && c->sig[i].algo == CL_CSV_ALGO_SM2_SM3)
            return &c->sig[i];
    return NULL;
}

int cl_csv_verify_chain(const struct cl_csv_ca_cert *hrk, const struct cl_csv_ca_cert *hsk,
                        const struct cl_csv_cert *cek, const struct cl_csv_cert *pek,
                        struct cl_err *err)
{
    CL_TEE_ERR(err);
    int rc;
    if (memcmp(hrk->key_id, hrk->certifying_id, 16) != 0)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                            "HRK is not self-certified (key id ≠ certifying id)");
    if ((rc = chain_link(&hrk->key, hrk->raw, CL_CSV_CA_SIGNED, &hrk->sig, "HRK self-signature",
                         err)) < 0)
        return rc;
    if (memcmp(hsk->certifying_id, hrk->key_id, 16) != 0)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                            "HSK is not certified by this HRK (certifying id)");
    if (hsk->usage == hrk->usage)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN, "HSK has the HRK's key usage 0x%x",
                            hsk->usage);
    if ((rc = chain_link(&hrk->key, hsk->raw, CL_CSV_CA_SIGNED, &hsk->sig,
                         "HSK signature by the HRK", err)) < 0)
        return rc;
    if (cek->usage != CL_CSV_USAGE_CEK)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN, "CEK key usage 0x%x (want 0x%x)",
                            cek->usage, CL_CSV_USAGE_CEK);
    const struct cl_csv_sig *s = slot(cek, hsk->usage);
    if (!s)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                            "CEK carries no signature by the HSK (usage 0x%x)", hsk->usage);
    if ((rc = chain_link(&hsk->key, cek->raw, CL_CSV_CERT_SIGNED, s, "CEK signature by the HSK",
                         err)) < 0)
        return rc;
    if (pek->usage != CL_CSV_USAGE_PEK)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN, "PEK key usage 0x%x (want 0x%x)",
                            pek->usage, CL_CSV_USAGE_PEK);
    if (!(s = slot(pek, CL_CSV_USAGE_CEK)))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                            "PEK carries no signature by the CEK");
    return chain_link(&cek->key, pek->raw, CL_CSV_CERT_SIGNED, s, "PEK signature by the CEK", err);
}
