/* SPDX-License-Identifier: Apache-2.0 */
/*
 * crypto.* builtins with OPA's semantics on OpenSSL 3: digests and HMACs (hex results),
 * crypto.hmac.equal in constant time, X.509 certificates, certificate requests, key pairs
 * and private keys returned in the JSON shape of Go's crypto/x509 types (the field names a
 * policy reads: Subject.CommonName, DNSNames, URIStrings, NotAfter, ...), chain verification
 * with the first certificate as the trust anchor, and private keys as JWKs.
 *
 * Inputs are PEM or base64 text decoded the way Go decodes them (builtins_crypto.h), so error
 * texts such as "illegal base64 data at input byte 4" are OPA's.
 */
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "rego/builtins.h"
#include "rego/builtins_crypto.h"
#include "rego/sbuf.h"

#define OUT(v) (*out = (v), 0)
#define S(v) ((v)->u.str.s)
#define L(v) ((v)->u.str.len)

/* ---- Go's base64 ---- */

static int b64val(unsigned char c, bool url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

uint8_t *cl_rego_go_b64_decode(const char *s, size_t n, bool url, size_t *outlen, size_t *bad)
{
    const unsigned char *src = (const unsigned char *)s;
    uint8_t *out = cl_xmalloc(n / 4 * 3 + 4);
    size_t si = 0, o = 0;
    for (;;) {
        uint8_t d[4] = {0};
        int dlen = 4;
        bool garbage = false;
        for (int j = 0; j < 4; j++) {
            if (si == n) {
                if (j == 0)
                    goto done;
                *bad = si - (size_t)j;
                goto fail;
            }
            unsigned char in = src[si++];
            int v = b64val(in, url);
            if (v >= 0) {
                d[j] = (uint8_t)v;
                continue;
            }
            if (in == '\n' || in == '\r') {
                j--;
                continue;
            }
            if (in != '=' || j < 2) {
                *bad = si - 1;
                goto fail;
            }
            if (j == 2) { /* "==" expected: the first '=' is consumed */
                while (si < n && (src[si] == '\n' || src[si] == '\r'))
                    si++;
                if (si == n) {
                    *bad = n;
                    goto fail;
                }
                if (src[si] != '=') {
                    *bad = si - 1;
                    goto fail;
                }
                si++;
            }
            while (si < n && (src[si] == '\n' || src[si] == '\r'))
                si++;
            if (si < n) {
                garbage = true;
                *bad = si;
            }
            dlen = j;
            break;
        }
        uint32_t val = (uint32_t)d[0] << 18 | (uint32_t)d[1] << 12 | (uint32_t)d[2] << 6 | d[3];
        uint8_t b[3] = {(uint8_t)(val >> 16), (uint8_t)(val >> 8), (uint8_t)val};
        for (int k = 0; k < dlen - 1; k++)
            out[o++] = b[k];
        if (garbage)
            goto fail;
        if (dlen < 4)
            break;
    }
done:
    out[o] = 0;
    *outlen = o;
    return out;
fail:
    free(out);
    return NULL;
}

/* ---- Go's pem.Decode ---- */

/* Go's getLine: the line without its end (and trailing spaces/tabs); *next after it. */
static void get_line(const char *s, size_t n, size_t *linelen, size_t *next)
{
    const char *nl = memchr(s, '\n', n);
    size_t i = nl ? (size_t)(nl - s) : n, j = nl ? i + 1 : n;
    if (nl && i > 0 && s[i - 1] == '\r')
        i--;
    while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t'))
        i--;
    *linelen = i;
    *next = j;
}

static const char *find_bytes(const char *h, size_t hn, const char *needle)
{
    size_t k = strlen(needle);
    return k <= hn ? memmem(h, hn, needle, k) : NULL;
}

bool cl_rego_pem_decode(const char *s, size_t n, struct cl_rego_pem *blk, size_t *restoff)
{
    static const char start[] = "\n-----BEGIN ", end[] = "\n-----END ", eol[] = "-----";
    memset(blk, 0, sizeof *blk);
    size_t pos = 0; /* rest = s + pos */
    for (;;) {
        const char *rest = s + pos;
        size_t rn = n - pos;
        if (rn >= sizeof start - 2 && memcmp(rest, start + 1, sizeof start - 2) == 0) {
            pos += sizeof start - 2;
        } else {
            const char *f = find_bytes(rest, rn, start);
            if (!f)
                return false;
            pos = (size_t)(f - s) + sizeof start - 1;
        }
        size_t tl, next;
        get_line(s + pos, n - pos, &tl, &next);
        const char *type = s + pos;
        pos += next;
        if (tl < 5 || memcmp(type + tl - 5, eol, 5) != 0)
            continue;
        tl -= 5;
        /* headers: "key: value" lines */
        size_t nh = 0;
        bool truncated = false;
        for (;;) {
            if (pos == n) {
                truncated = true;
                break;
            }
            size_t ll, nx;
            get_line(s + pos, n - pos, &ll, &nx);
            if (!memchr(s + pos, ':', ll))
                break;
            nh++;
            pos += nx;
        }
        if (truncated)
            return false;
        rest = s + pos;
        rn = n - pos;
        size_t endi, trailer;
        if (nh == 0 && rn >= sizeof end - 2 && memcmp(rest, end + 1, sizeof end - 2) == 0) {
            endi = 0;
            trailer = sizeof end - 2;
        } else {
            const char *f = find_bytes(rest, rn, end);
            if (!f)
                continue;
            endi = (size_t)(f - rest);
            trailer = endi + sizeof end - 1;
        }
        size_t need = tl + 5;
        if (rn - trailer < need)
            continue;
        const char *et = rest + trailer;
        if (memcmp(et, type, tl) != 0 || memcmp(et + tl, eol, 5) != 0)
            continue;
        size_t ll, nx;
        get_line(et + need, rn - trailer - need, &ll, &nx);
        if (ll != 0)
            continue;
        /* base64 body without spaces and tabs */
        char *body = cl_xmalloc(endi + 1);
        size_t bl = 0;
        for (size_t i = 0; i < endi; i++)
            if (rest[i] != ' ' && rest[i] != '\t')
                body[bl++] = rest[i];
        size_t dl, badoff;
        uint8_t *der = cl_rego_go_b64_decode(body, bl, false, &dl, &badoff);
        free(body);
        if (!der)
            continue;
        if (tl >= sizeof blk->type) {
            free(der);
            continue;
        }
        memcpy(blk->type, type, tl);
        blk->type[tl] = 0;
        blk->der = der;
        blk->len = dl;
        blk->nheaders = nh;
        /* the rest starts after the END line */
        size_t at = pos + endi + sizeof end - 2;
        get_line(s + at, n - at, &ll, &nx);
        *restoff = at + nx;
        return true;
    }
}

void cl_rego_pem_free(struct cl_rego_pem *blk)
{
    free(blk->der);
    blk->der = NULL;
}

/* ---- small helpers ---- */

static struct cl_rv *hex_rv(const uint8_t *b, size_t n)
{
    char *h = cl_hex_encode(b, n);
    struct cl_rv *r = cl_rv_strz(h ? h : "");
    free(h);
    return r;
}

static struct cl_rv *b64_rv(const uint8_t *b, size_t n, bool url)
{
    char *t = cl_b64_encode(b ? (const void *)b : "", n, url ? CL_B64_URL : CL_B64_STD);
    struct cl_rv *r = cl_rv_strz(t ? t : "");
    free(t);
    return r;
}

/* Go's []byte in JSON: base64, null when absent */
static struct cl_rv *bytes_rv(const uint8_t *b, size_t n)
{
    return b ? b64_rv(b, n, false) : cl_rv_null();
}

static struct cl_rv *bn_rv(const BIGNUM *bn)
{
    if (!bn)
        return cl_rv_null();
    char *dec = BN_bn2dec(bn);
    struct cl_rv *r = dec ? cl_rv_number_parse(dec, strlen(dec)) : NULL;
    OPENSSL_free(dec);
    return r ? r : cl_rv_null();
}

static struct cl_rv *pkey_bn_rv(const EVP_PKEY *pk, const char *param)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
        return cl_rv_null();
    struct cl_rv *r = bn_rv(bn);
    BN_clear_free(bn);
    return r;
}

/* OID as Go's asn1.ObjectIdentifier: an array of integers */
static struct cl_rv *oid_rv(const ASN1_OBJECT *o)
{
    char txt[256];
    struct cl_rv *r = cl_rv_array(8);
    int n = OBJ_obj2txt(txt, sizeof txt, o, 1);
    if (n <= 0 || (size_t)n >= sizeof txt)
        return r;
    for (char *p = txt; *p;) {
        char *e;
        long long v = strtoll(p, &e, 10);
        cl_rv_array_push(r, cl_rv_int(v));
        p = *e == '.' ? e + 1 : e;
        if (e == p && *p)
            break;
    }
    return r;
}

static struct cl_rv *oid_text_rv(const ASN1_OBJECT *o)
{
    char txt[256];
    int n = OBJ_obj2txt(txt, sizeof txt, o, 1);
    return cl_rv_strz(n > 0 && (size_t)n < sizeof txt ? txt : "");
}

static struct cl_rv *asn1_string_rv(const ASN1_STRING *s)
{
    unsigned char *u = NULL;
    int n = ASN1_STRING_to_UTF8(&u, s);
    if (n < 0)
        return cl_rv_null();
    struct cl_rv *r = cl_rv_str((const char *)u, (size_t)n);
    OPENSSL_free(u);
    return r;
}

/* Appends v to the array in *slot (created on first use: Go's nil slices are null). */
static void list_add(struct cl_rv **slot, struct cl_rv *v)
{
    if (!*slot)
        *slot = cl_rv_array(4);
    cl_rv_array_push(*slot, v);
}

static void put_list(struct cl_rv *obj, const char *k, struct cl_rv *list)
{
    cl_rv_obj_put_str(obj, k, list ? list : cl_rv_null());
}

/* ---- DER walking for the raw parts Go exposes ---- */

/* One TLV at p[0..n): *hdr header bytes, *len content bytes. */
static bool der_tlv(const uint8_t *p, size_t n, size_t *hdr, size_t *len)
{
    if (n < 2)
        return false;
    size_t i = 1;
    if ((p[0] & 0x1f) == 0x1f) {
        while (i < n && (p[i] & 0x80))
            i++;
        i++;
    }
    if (i >= n)
        return false;
    uint8_t l = p[i++];
    size_t v = 0;
    if (l & 0x80) {
        int k = l & 0x7f;
        if (k == 0 || k > 4 || (size_t)k > n - i)
            return false;
        for (int j = 0; j < k; j++)
            v = v << 8 | p[i++];
    } else {
        v = l;
    }
    if (v > n - i)
        return false;
    *hdr = i;
    *len = v;
    return true;
}

struct raw_parts {
    const uint8_t *tbs, *issuer, *subject, *spki;
    size_t tbs_len, issuer_len, subject_len, spki_len;
};

/* Certificate (or CSR when csr) DER -> the raw TBS, issuer, subject and SPKI. */
static bool raw_parts(const uint8_t *der, size_t n, bool csr, struct raw_parts *r)
{
    size_t h, l;
    memset(r, 0, sizeof *r);
    if (!der_tlv(der, n, &h, &l))
        return false;
    const uint8_t *p = der + h;
    size_t left = l;
    if (!der_tlv(p, left, &h, &l))
        return false;
    r->tbs = p;
    r->tbs_len = h + l;
    p += h;
    left = l;
    /* fields of the TBS in order */
    int field = 0;
    while (left > 0 && der_tlv(p, left, &h, &l)) {
        size_t tot = h + l;
        if (csr) { /* version, subject, spki */
            if (field == 1) {
                r->subject = p;
                r->subject_len = tot;
            } else if (field == 2) {
                r->spki = p;
                r->spki_len = tot;
            }
        } else {
            if (field == 0 && p[0] != 0xa0)
                field = 1; /* no explicit version */
            if (field == 3) {
                r->issuer = p;
                r->issuer_len = tot;
            } else if (field == 5) {
                r->subject = p;
                r->subject_len = tot;
            } else if (field == 6) {
                r->spki = p;
                r->spki_len = tot;
            }
        }
        field++;
        p += tot;
        left -= tot;
    }
    return true;
}

/* ---- Go JSON shapes ---- */

/* pkix.Name */
static struct cl_rv *name_rv(const X509_NAME *nm)
{
    struct cl_rv *country = NULL, *org = NULL, *ou = NULL, *loc = NULL, *prov = NULL,
                 *street = NULL, *postal = NULL, *names = NULL;
    struct cl_rv *cn = NULL, *serial = NULL;
    int cnt = X509_NAME_entry_count(nm);
    for (int i = 0; i < cnt; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(nm, i);
        const ASN1_OBJECT *o = X509_NAME_ENTRY_get_object(e);
        const ASN1_STRING *d = X509_NAME_ENTRY_get_data(e);
        struct cl_rv *v = asn1_string_rv(d);
        struct cl_rv *atv = cl_rv_object();
        cl_rv_obj_put_str(atv, "Type", oid_rv(o));
        cl_rv_obj_put_str(atv, "Value", cl_rv_incref(v));
        list_add(&names, atv);
        if (v->type != CL_RV_STRING) {
            cl_rv_decref(v);
            continue;
        }
        switch (OBJ_obj2nid(o)) {
        case NID_commonName:
            cl_rv_decref(cn);
            cn = v;
            break;
        case NID_serialNumber:
            cl_rv_decref(serial);
            serial = v;
            break;
        case NID_countryName:
            list_add(&country, v);
            break;
        case NID_organizationName:
            list_add(&org, v);
            break;
        case NID_organizationalUnitName:
            list_add(&ou, v);
            break;
        case NID_localityName:
            list_add(&loc, v);
            break;
        case NID_stateOrProvinceName:
            list_add(&prov, v);
            break;
        case NID_streetAddress:
            list_add(&street, v);
            break;
        case NID_postalCode:
            list_add(&postal, v);
            break;
        default:
            cl_rv_decref(v);
        }
    }
    struct cl_rv *r = cl_rv_object();
    put_list(r, "Country", country);
    put_list(r, "Organization", org);
    put_list(r, "OrganizationalUnit", ou);
    put_list(r, "Locality", loc);
    put_list(r, "Province", prov);
    put_list(r, "StreetAddress", street);
    put_list(r, "PostalCode", postal);
    cl_rv_obj_put_str(r, "SerialNumber", serial ? serial : cl_rv_strz(""));
    cl_rv_obj_put_str(r, "CommonName", cn ? cn : cl_rv_strz(""));
    put_list(r, "Names", names);
    cl_rv_obj_put_str(r, "ExtraNames", cl_rv_null());
    return r;
}

static struct cl_rv *time_rv(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return cl_rv_strz("0001-01-01T00:00:00Z");
    return cl_rv_strf("%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                      tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Go's x509.PublicKeyAlgorithm and the key as Go marshals it. */
static void public_key_rv(const EVP_PKEY *pk, struct cl_rv *obj, const char *algkey,
                          const char *keykey)
{
    int alg = 0;
    struct cl_rv *key = NULL;
    switch (pk ? EVP_PKEY_get_base_id(pk) : 0) {
    case EVP_PKEY_RSA:
        alg = 1;
        key = cl_rv_object();
        cl_rv_obj_put_str(key, "N", pkey_bn_rv(pk, OSSL_PKEY_PARAM_RSA_N));
        cl_rv_obj_put_str(key, "E", pkey_bn_rv(pk, OSSL_PKEY_PARAM_RSA_E));
        break;
    case EVP_PKEY_DSA:
        alg = 2;
        key = cl_rv_object();
        {
            struct cl_rv *params = cl_rv_object();
            cl_rv_obj_put_str(params, "P", pkey_bn_rv(pk, OSSL_PKEY_PARAM_FFC_P));
            cl_rv_obj_put_str(params, "Q", pkey_bn_rv(pk, OSSL_PKEY_PARAM_FFC_Q));
            cl_rv_obj_put_str(params, "G", pkey_bn_rv(pk, OSSL_PKEY_PARAM_FFC_G));
            cl_rv_obj_put_str(key, "Parameters", params);
            cl_rv_obj_put_str(key, "Y", pkey_bn_rv(pk, OSSL_PKEY_PARAM_PUB_KEY));
        }
        break;
    case EVP_PKEY_EC:
        alg = 3;
        key = cl_rv_object();
        cl_rv_obj_put_str(key, "Curve", cl_rv_object());
        cl_rv_obj_put_str(key, "X", pkey_bn_rv(pk, OSSL_PKEY_PARAM_EC_PUB_X));
        cl_rv_obj_put_str(key, "Y", pkey_bn_rv(pk, OSSL_PKEY_PARAM_EC_PUB_Y));
        break;
    case EVP_PKEY_ED25519: {
        alg = 4;
        uint8_t raw[32];
        size_t rl = sizeof raw;
        key =
            EVP_PKEY_get_raw_public_key(pk, raw, &rl) == 1 ? b64_rv(raw, rl, false) : cl_rv_null();
        break;
    }
    default:
        key = cl_rv_null();
    }
    cl_rv_obj_put_str(obj, algkey, cl_rv_int(alg));
    cl_rv_obj_put_str(obj, keykey, key);
}

/* Go's x509.SignatureAlgorithm */
static int sig_alg(int nid, const X509_ALGOR *alg)
{
    switch (nid) {
    case NID_md2WithRSAEncryption:
        return 1;
    case NID_md5WithRSAEncryption:
        return 2;
    case NID_sha1WithRSAEncryption:
        return 3;
    case NID_sha256WithRSAEncryption:
        return 4;
    case NID_sha384WithRSAEncryption:
        return 5;
    case NID_sha512WithRSAEncryption:
        return 6;
    case NID_dsaWithSHA1:
        return 7;
    case NID_dsa_with_SHA256:
        return 8;
    case NID_ecdsa_with_SHA1:
        return 9;
    case NID_ecdsa_with_SHA256:
        return 10;
    case NID_ecdsa_with_SHA384:
        return 11;
    case NID_ecdsa_with_SHA512:
        return 12;
    case NID_ED25519:
        return 16;
    case NID_rsassaPss: {
        /* the hash of the PSS parameters decides */
        const ASN1_OBJECT *obj;
        int ptype;
        const void *pval;
        X509_ALGOR_get0(&obj, &ptype, &pval, alg);
        if (ptype != V_ASN1_SEQUENCE)
            return 0;
        const ASN1_STRING *seq = pval;
        const unsigned char *pp = ASN1_STRING_get0_data(seq);
        RSA_PSS_PARAMS *pss = d2i_RSA_PSS_PARAMS(NULL, &pp, ASN1_STRING_length(seq));
        int r = 0;
        if (pss && pss->hashAlgorithm) {
            int h = OBJ_obj2nid(pss->hashAlgorithm->algorithm);
            r = h == NID_sha256 ? 13 : h == NID_sha384 ? 14 : h == NID_sha512 ? 15 : 0;
        }
        RSA_PSS_PARAMS_free(pss);
        return r;
    }
    default:
        return 0;
    }
}

static struct cl_rv *ip_rv(const unsigned char *b, int n)
{
    char buf[64];
    if (n == 4)
        snprintf(buf, sizeof buf, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
    else if (n == 16 && !memcmp(b, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12))
        snprintf(buf, sizeof buf, "%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
    else if (n == 16) {
        struct cl_sbuf sb = {0};
        uint16_t g[8];
        for (int i = 0; i < 8; i++)
            g[i] = (uint16_t)(b[2 * i] << 8 | b[2 * i + 1]);
        int zs = -1, ze = -1;
        for (int i = 0; i < 8; i++) {
            int j = i;
            while (j < 8 && g[j] == 0)
                j++;
            if (j - i >= 2 && j - i > ze - zs) {
                zs = i;
                ze = j;
            }
        }
        for (int i = 0; i < 8; i++) {
            if (i == zs) {
                cl_sbuf_adds(&sb, "::");
                i = ze;
                if (i >= 8)
                    break;
            } else if (i > 0) {
                cl_sbuf_addc(&sb, ':');
            }
            cl_sbuf_addf(&sb, "%x", g[i]);
        }
        struct cl_rv *r = cl_rv_str(sb.s ? sb.s : "", sb.len);
        cl_sbuf_free(&sb);
        return r;
    } else {
        return cl_rv_strz("?");
    }
    return cl_rv_strz(buf);
}

/* Go's url.URL as encoding/json writes it, from a parse of the URI's components. */
static struct cl_rv *url_rv(const char *s, size_t n)
{
    struct cl_rv *u = cl_rv_object();
    const char *p = s, *e = s + n;
    const char *scheme_end = NULL;
    for (const char *q = p; q < e; q++) {
        char c = *q;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            continue;
        if (q > p && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
            continue;
        if (c == ':' && q > p)
            scheme_end = q;
        break;
    }
    const char *frag = memchr(p, '#', (size_t)(e - p));
    const char *fe = frag ? frag : e;
    struct cl_rv *scheme = cl_rv_strz(""), *opaque = cl_rv_strz(""), *host = cl_rv_strz(""),
                 *path = cl_rv_strz("");
    struct cl_rv *query = cl_rv_strz(""), *user = cl_rv_null();
    bool force_query = false;
    if (scheme_end) {
        cl_rv_decref(scheme);
        char *lower = cl_xstrndup(p, (size_t)(scheme_end - p));
        for (char *c = lower; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        scheme = cl_rv_strz(lower);
        free(lower);
        p = scheme_end + 1;
    }
    const char *qm = memchr(p, '?', (size_t)(fe - p));
    const char *pe = qm ? qm : fe;
    if (qm) {
        cl_rv_decref(query);
        query = cl_rv_str(qm + 1, (size_t)(fe - qm - 1));
        force_query = fe == qm + 1;
    }
    if (scheme_end && (pe - p < 1 || *p != '/')) {
        cl_rv_decref(opaque);
        opaque = cl_rv_str(p, (size_t)(pe - p));
    } else {
        if (pe - p >= 2 && p[0] == '/' && p[1] == '/') {
            const char *a = p + 2, *ae = memchr(a, '/', (size_t)(pe - a));
            if (!ae)
                ae = pe;
            const char *at = NULL;
            for (const char *q = a; q < ae; q++)
                if (*q == '@')
                    at = q;
            if (at) {
                cl_rv_decref(user);
                user = cl_rv_object();
                a = at + 1;
            }
            cl_rv_decref(host);
            host = cl_rv_str(a, (size_t)(ae - a));
            p = ae;
        }
        cl_rv_decref(path);
        path = cl_rv_str(p, (size_t)(pe - p));
    }
    cl_rv_obj_put_str(u, "Scheme", scheme);
    cl_rv_obj_put_str(u, "Opaque", opaque);
    cl_rv_obj_put_str(u, "User", user);
    cl_rv_obj_put_str(u, "Host", host);
    cl_rv_obj_put_str(u, "Path", path);
    cl_rv_obj_put_str(u, "RawPath", cl_rv_strz(""));
    cl_rv_obj_put_str(u, "OmitHost", cl_rv_bool(false));
    cl_rv_obj_put_str(u, "ForceQuery", cl_rv_bool(force_query));
    cl_rv_obj_put_str(u, "RawQuery", query);
    cl_rv_obj_put_str(u, "Fragment",
                      frag ? cl_rv_str(frag + 1, (size_t)(e - frag - 1)) : cl_rv_strz(""));
    cl_rv_obj_put_str(u, "RawFragment", cl_rv_strz(""));
    return u;
}

static struct cl_rv *ia5_rv(const ASN1_IA5STRING *s)
{
    return cl_rv_str((const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
}

/* Subject alternative names into the Go fields. */
static void sans_rv(const GENERAL_NAMES *gens, struct cl_rv **dns, struct cl_rv **email,
                    struct cl_rv **ips, struct cl_rv **uris, struct cl_rv **uristrs)
{
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        switch (g->type) {
        case GEN_DNS:
            list_add(dns, ia5_rv(g->d.dNSName));
            break;
        case GEN_EMAIL:
            list_add(email, ia5_rv(g->d.rfc822Name));
            break;
        case GEN_IPADD:
            list_add(ips, ip_rv(ASN1_STRING_get0_data(g->d.iPAddress),
                                ASN1_STRING_length(g->d.iPAddress)));
            break;
        case GEN_URI: {
            const char *u = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
            size_t ul = (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier);
            if (uris)
                list_add(uris, url_rv(u, ul));
            if (uristrs)
                list_add(uristrs, cl_rv_str(u, ul));
            break;
        }
        default:
            break;
        }
    }
}

static const struct {
    int nid;
    int go;
} eku_map[] = {
    {NID_anyExtendedKeyUsage, 0}, {NID_server_auth, 1},    {NID_client_auth, 2}, {NID_code_sign, 3},
    {NID_email_protect, 4},       {NID_ipsecEndSystem, 5}, {NID_ipsecTunnel, 6}, {NID_ipsecUser, 7},
    {NID_time_stamp, 8},          {NID_OCSP_sign, 9},      {NID_ms_sgc, 10},     {NID_ns_sgc, 11},
    {NID_ms_code_com, 12},
};

static int eku_go(const ASN1_OBJECT *o)
{
    int nid = OBJ_obj2nid(o);
    for (size_t i = 0; i < CL_ARRAY_LEN(eku_map); i++)
        if (eku_map[i].nid == nid)
            return eku_map[i].go;
    char txt[64];
    if (OBJ_obj2txt(txt, sizeof txt, o, 1) > 0 && strcmp(txt, "1.3.6.1.4.1.311.61.1.1") == 0)
        return 13;
    return -1;
}

static struct cl_rv *ipnet_rv(const ASN1_OCTET_STRING *s)
{
    const unsigned char *b = ASN1_STRING_get0_data(s);
    int n = ASN1_STRING_length(s);
    struct cl_rv *r = cl_rv_object();
    if (n == 8 || n == 32) {
        cl_rv_obj_put_str(r, "IP", ip_rv(b, n / 2));
        cl_rv_obj_put_str(r, "Mask", b64_rv(b + n / 2, (size_t)(n / 2), false));
    } else {
        cl_rv_obj_put_str(r, "IP", cl_rv_null());
        cl_rv_obj_put_str(r, "Mask", cl_rv_null());
    }
    return r;
}

static void subtrees_rv(const STACK_OF(GENERAL_SUBTREE) * st, struct cl_rv **dns,
                        struct cl_rv **ips, struct cl_rv **emails, struct cl_rv **uris)
{
    for (int i = 0; st && i < sk_GENERAL_SUBTREE_num(st); i++) {
        const GENERAL_NAME *g = sk_GENERAL_SUBTREE_value(st, i)->base;
        switch (g->type) {
        case GEN_DNS:
            list_add(dns, ia5_rv(g->d.dNSName));
            break;
        case GEN_IPADD:
            list_add(ips, ipnet_rv(g->d.iPAddress));
            break;
        case GEN_EMAIL:
            list_add(emails, ia5_rv(g->d.rfc822Name));
            break;
        case GEN_URI:
            list_add(uris, ia5_rv(g->d.uniformResourceIdentifier));
            break;
        default:
            break;
        }
    }
}

/* The DER of the certificate and of its parts. */
static void cert_raw(struct cl_rv *r, X509 *x)
{
    unsigned char *der = NULL;
    int dl = i2d_X509(x, &der);
    struct raw_parts rp = {0};
    if (dl > 0)
        raw_parts(der, (size_t)dl, false, &rp);
    cl_rv_obj_put_str(r, "Raw", dl > 0 ? b64_rv(der, (size_t)dl, false) : cl_rv_null());
    cl_rv_obj_put_str(r, "RawTBSCertificate", bytes_rv(rp.tbs, rp.tbs_len));
    cl_rv_obj_put_str(r, "RawSubjectPublicKeyInfo", bytes_rv(rp.spki, rp.spki_len));
    cl_rv_obj_put_str(r, "RawSubject", bytes_rv(rp.subject, rp.subject_len));
    cl_rv_obj_put_str(r, "RawIssuer", bytes_rv(rp.issuer, rp.issuer_len));
    OPENSSL_free(der);
}

/* Signature, public key, version, serial, names and validity. */
static void cert_identity(struct cl_rv *r, X509 *x)
{
    const ASN1_BIT_STRING *sig;
    const X509_ALGOR *salg;
    X509_get0_signature(&sig, &salg, x);
    cl_rv_obj_put_str(r, "Signature",
                      b64_rv(ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig), false));
    cl_rv_obj_put_str(r, "SignatureAlgorithm", cl_rv_int(sig_alg(X509_get_signature_nid(x), salg)));
    public_key_rv(X509_get0_pubkey(x), r, "PublicKeyAlgorithm", "PublicKey");
    cl_rv_obj_put_str(r, "Version", cl_rv_int(X509_get_version(x) + 1));
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    cl_rv_obj_put_str(r, "SerialNumber", bn_rv(serial));
    BN_free(serial);
    cl_rv_obj_put_str(r, "Issuer", name_rv(X509_get_issuer_name(x)));
    cl_rv_obj_put_str(r, "Subject", name_rv(X509_get_subject_name(x)));
    cl_rv_obj_put_str(r, "NotBefore", time_rv(X509_get0_notBefore(x)));
    cl_rv_obj_put_str(r, "NotAfter", time_rv(X509_get0_notAfter(x)));
}

/* Key usage bits in Go's order, extended key usages known to Go and the others. */
static void cert_usage(struct cl_rv *r, X509 *x)
{
    uint32_t ku = X509_get_key_usage(x);
    int64_t goku = 0;
    if (ku != UINT32_MAX) {
        static const uint32_t bits[9] = {
            KU_DIGITAL_SIGNATURE, KU_NON_REPUDIATION, KU_KEY_ENCIPHERMENT,
            KU_DATA_ENCIPHERMENT, KU_KEY_AGREEMENT,   KU_KEY_CERT_SIGN,
            KU_CRL_SIGN,          KU_ENCIPHER_ONLY,   KU_DECIPHER_ONLY};
        for (int i = 0; i < 9; i++)
            if (ku & bits[i])
                goku |= 1 << i;
    }
    cl_rv_obj_put_str(r, "KeyUsage", cl_rv_int(goku));

    struct cl_rv *eku = NULL, *ueku = NULL;
    EXTENDED_KEY_USAGE *ekus = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
    for (int i = 0; ekus && i < sk_ASN1_OBJECT_num(ekus); i++) {
        const ASN1_OBJECT *o = sk_ASN1_OBJECT_value(ekus, i);
        int g = eku_go(o);
        if (g >= 0)
            list_add(&eku, cl_rv_int(g));
        else
            list_add(&ueku, oid_rv(o));
    }
    EXTENDED_KEY_USAGE_free(ekus);
    put_list(r, "ExtKeyUsage", eku);
    put_list(r, "UnknownExtKeyUsage", ueku);
}

/* Every extension as it is (Id, Critical, Value). */
static void cert_extensions(struct cl_rv *r, X509 *x)
{
    struct cl_rv *exts = NULL;
    for (int i = 0; i < X509_get_ext_count(x); i++) {
        X509_EXTENSION *e = X509_get_ext(x, i);
        struct cl_rv *eo = cl_rv_object();
        const ASN1_OCTET_STRING *d = X509_EXTENSION_get_data(e);
        cl_rv_obj_put_str(eo, "Id", oid_rv(X509_EXTENSION_get_object(e)));
        cl_rv_obj_put_str(eo, "Critical", cl_rv_bool(X509_EXTENSION_get_critical(e) > 0));
        cl_rv_obj_put_str(eo, "Value",
                          b64_rv(ASN1_STRING_get0_data(d), (size_t)ASN1_STRING_length(d), false));
        list_add(&exts, eo);
    }
    put_list(r, "Extensions", exts);
    cl_rv_obj_put_str(r, "ExtraExtensions", cl_rv_null());
    cl_rv_obj_put_str(r, "UnhandledCriticalExtensions", cl_rv_null());
}

/* Basic constraints and the key identifiers. */
static void cert_constraints(struct cl_rv *r, X509 *x)
{
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
    int64_t maxpath = 0;
    if (bc) {
        maxpath = -1;
        if (bc->pathlen)
            maxpath = ASN1_INTEGER_get(bc->pathlen);
    }
    cl_rv_obj_put_str(r, "BasicConstraintsValid", cl_rv_bool(bc != NULL));
    cl_rv_obj_put_str(r, "IsCA", cl_rv_bool(bc && bc->ca));
    cl_rv_obj_put_str(r, "MaxPathLen", cl_rv_int(maxpath));
    cl_rv_obj_put_str(r, "MaxPathLenZero", cl_rv_bool(bc && maxpath == 0));
    BASIC_CONSTRAINTS_free(bc);

    const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(x),
                            *akid = X509_get0_authority_key_id(x);
    cl_rv_obj_put_str(
        r, "SubjectKeyId",
        skid ? b64_rv(ASN1_STRING_get0_data(skid), (size_t)ASN1_STRING_length(skid), false)
             : cl_rv_null());
    cl_rv_obj_put_str(
        r, "AuthorityKeyId",
        akid ? b64_rv(ASN1_STRING_get0_data(akid), (size_t)ASN1_STRING_length(akid), false)
             : cl_rv_null());
}

/* Where to check revocation and find the issuer: OCSP, CA issuers, CRL distribution points. */
static void cert_access(struct cl_rv *r, X509 *x)
{
    struct cl_rv *ocsp = NULL, *issuing = NULL;
    AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(x, NID_info_access, NULL, NULL);
    for (int i = 0; aia && i < sk_ACCESS_DESCRIPTION_num(aia); i++) {
        const ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
        if (ad->location->type != GEN_URI)
            continue;
        int m = OBJ_obj2nid(ad->method);
        if (m == NID_ad_OCSP)
            list_add(&ocsp, ia5_rv(ad->location->d.uniformResourceIdentifier));
        else if (m == NID_ad_ca_issuers)
            list_add(&issuing, ia5_rv(ad->location->d.uniformResourceIdentifier));
    }
    AUTHORITY_INFO_ACCESS_free(aia);
    put_list(r, "OCSPServer", ocsp);
    put_list(r, "IssuingCertificateURL", issuing);

    struct cl_rv *crl = NULL;
    CRL_DIST_POINTS *dps = X509_get_ext_d2i(x, NID_crl_distribution_points, NULL, NULL);
    for (int i = 0; dps && i < sk_DIST_POINT_num(dps); i++) {
        const DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
        if (!dp->distpoint || dp->distpoint->type != 0)
            continue;
        const GENERAL_NAMES *fn = dp->distpoint->name.fullname;
        for (int j = 0; j < sk_GENERAL_NAME_num(fn); j++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(fn, j);
            if (g->type == GEN_URI)
                list_add(&crl, ia5_rv(g->d.uniformResourceIdentifier));
        }
    }
    CRL_DIST_POINTS_free(dps);
    put_list(r, "CRLDistributionPoints", crl);
}

/* Subject alternative names (URIStrings too when asked, as OPA adds them). */
static void cert_alt_names(struct cl_rv *r, X509 *x, bool with_uri_strings)
{
    struct cl_rv *dns = NULL, *email = NULL, *ips = NULL, *uris = NULL, *uristrs = NULL;
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    sans_rv(sans, &dns, &email, &ips, &uris, &uristrs);
    GENERAL_NAMES_free(sans);
    put_list(r, "DNSNames", dns);
    put_list(r, "EmailAddresses", email);
    put_list(r, "IPAddresses", ips);
    put_list(r, "URIs", uris);
    if (with_uri_strings)
        put_list(r, "URIStrings", uristrs);
    else
        cl_rv_decref(uristrs);
}

/* Name constraints, permitted and excluded. */
static void cert_name_constraints(struct cl_rv *r, X509 *x)
{
    struct cl_rv *pdns = NULL, *edns = NULL, *pip = NULL, *eip = NULL, *pem = NULL, *eem = NULL,
                 *puri = NULL, *euri = NULL;
    int nccrit = 0;
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(x, NID_name_constraints, &nccrit, NULL);
    if (nc) {
        subtrees_rv(nc->permittedSubtrees, &pdns, &pip, &pem, &puri);
        subtrees_rv(nc->excludedSubtrees, &edns, &eip, &eem, &euri);
    }
    NAME_CONSTRAINTS_free(nc);
    cl_rv_obj_put_str(r, "PermittedDNSDomainsCritical", cl_rv_bool(nc && nccrit > 0));
    put_list(r, "PermittedDNSDomains", pdns);
    put_list(r, "ExcludedDNSDomains", edns);
    put_list(r, "PermittedIPRanges", pip);
    put_list(r, "ExcludedIPRanges", eip);
    put_list(r, "PermittedEmailAddresses", pem);
    put_list(r, "ExcludedEmailAddresses", eem);
    put_list(r, "PermittedURIDomains", puri);
    put_list(r, "ExcludedURIDomains", euri);
}

/* Certificate policies; the policy constraints Go reports and this does not read. */
static void cert_policies(struct cl_rv *r, X509 *x)
{
    struct cl_rv *polids = NULL, *pols = NULL;
    CERTIFICATEPOLICIES *cps = X509_get_ext_d2i(x, NID_certificate_policies, NULL, NULL);
    for (int i = 0; cps && i < sk_POLICYINFO_num(cps); i++) {
        const POLICYINFO *pi = sk_POLICYINFO_value(cps, i);
        list_add(&polids, oid_rv(pi->policyid));
        list_add(&pols, oid_text_rv(pi->policyid));
    }
    CERTIFICATEPOLICIES_free(cps);
    put_list(r, "PolicyIdentifiers", polids);
    put_list(r, "Policies", pols);
    cl_rv_obj_put_str(r, "InhibitAnyPolicy", cl_rv_int(0));
    cl_rv_obj_put_str(r, "InhibitAnyPolicyZero", cl_rv_bool(false));
    cl_rv_obj_put_str(r, "InhibitPolicyMapping", cl_rv_int(0));
    cl_rv_obj_put_str(r, "InhibitPolicyMappingZero", cl_rv_bool(false));
    cl_rv_obj_put_str(r, "RequireExplicitPolicy", cl_rv_int(0));
    cl_rv_obj_put_str(r, "RequireExplicitPolicyZero", cl_rv_bool(false));
    cl_rv_obj_put_str(r, "PolicyMappings", cl_rv_null());
}

/* Go's x509.Certificate as JSON; with_uri_strings adds OPA's URIStrings. */
static struct cl_rv *cert_rv(X509 *x, bool with_uri_strings)
{
    struct cl_rv *r = cl_rv_object();
    cert_raw(r, x);
    cert_identity(r, x);
    cert_usage(r, x);
    cert_extensions(r, x);
    cert_constraints(r, x);
    cert_access(r, x);
    cert_alt_names(r, x, with_uri_strings);
    cert_name_constraints(r, x);
    cert_policies(r, x);
    return r;
}

/* ---- certificate inputs ---- */

struct certs {
    X509 **v;
    size_t n;
};

static void certs_free(struct certs *c)
{
    for (size_t i = 0; i < c->n; i++)
        X509_free(c->v[i]);
    free(c->v);
    c->v = NULL;
    c->n = 0;
}

/* Parsers below report failures as a message in msg (callers decide whether that is an
 * error or OPA's "not verified"). */
#define MSG(...) (snprintf(msg, CL_ERR_MSG_MAX, __VA_ARGS__), -1)

/* x509.ParseCertificates: a concatenation of DER certificates */
static int parse_der_certs(const uint8_t *der, size_t n, struct certs *out, char *msg)
{
    while (n > 0) {
        const unsigned char *p = der;
        X509 *x = d2i_X509(NULL, &p, (long)(n > LONG_MAX ? LONG_MAX : n));
        if (!x) {
            certs_free(out);
            return MSG("x509: malformed certificate");
        }
        out->v = cl_xrealloc(out->v, (out->n + 1) * sizeof *out->v);
        out->v[out->n++] = x;
        n -= (size_t)(p - der);
        der = p;
    }
    return 0;
}

/* OPA's getX509CertsFromPem */
static int parse_pem_certs(const char *s, size_t n, struct certs *out, char *msg)
{
    struct cl_sbuf der = {0};
    while (n > 0) {
        struct cl_rego_pem blk;
        size_t rest;
        if (!cl_rego_pem_decode(s, n, &blk, &rest))
            break;
        if (strcmp(blk.type, "CERTIFICATE") != 0) {
            (void)MSG("PEM block type is '%s', expected CERTIFICATE", blk.type);
            cl_rego_pem_free(&blk);
            cl_sbuf_free(&der);
            return -1;
        }
        cl_sbuf_add(&der, blk.der, blk.len);
        cl_rego_pem_free(&blk);
        s += rest;
        n -= rest;
    }
    int rc = parse_der_certs((const uint8_t *)der.s, der.len, out, msg);
    cl_sbuf_free(&der);
    return rc;
}

static bool has_prefix(const char *s, size_t n, const char *p)
{
    return n >= strlen(p) && memcmp(s, p, strlen(p)) == 0;
}

static int b64_error(struct cl_rego_bctx *c, size_t bad)
{
    return cl_rego_bi_error(c, "illegal base64 data at input byte %zu", bad);
}

/* OPA's getX509CertsFromString: PEM, or base64 of PEM or DER */
static int parse_certs_input(const struct cl_rv *v, struct certs *out, char *msg)
{
    memset(out, 0, sizeof *out);
    if (has_prefix(S(v), L(v), "-----BEGIN"))
        return parse_pem_certs(S(v), L(v), out, msg);
    size_t n, bad;
    uint8_t *b = cl_rego_go_b64_decode(S(v), L(v), false, &n, &bad);
    if (!b)
        return MSG("illegal base64 data at input byte %zu", bad);
    int rc = has_prefix((const char *)b, n, "-----BEGIN")
                 ? parse_pem_certs((const char *)b, n, out, msg)
                 : parse_der_certs(b, n, out, msg);
    free(b);
    return rc;
}

static int bi_x509_parse_certificates(struct cl_rego_bctx *c, struct cl_rv *const *a,
                                      struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    if (cl_rego_bi_reserve(c, L(a[0]) * 8) < 0)
        return -2;
    struct certs cs;
    char msg[CL_ERR_MSG_MAX];
    if (parse_certs_input(a[0], &cs, msg) < 0)
        return cl_rego_bi_error(c, "%s", msg);
    struct cl_rv *r = cl_rv_array(cs.n);
    for (size_t i = 0; i < cs.n; i++)
        cl_rv_array_push(r, cert_rv(cs.v[i], true));
    certs_free(&cs);
    return OUT(r);
}

/* ---- chain verification ---- */

struct verify_opts {
    const char *dns;
    size_t dnslen;
    bool has_time;
    int64_t time_ns;
    int usages[16];
    size_t nusages;
};

/* Go's checkChainForKeyUsage: every certificate with extended key usages must allow one of
 * the requested usages (none requested: server authentication). */
static bool chain_allows(STACK_OF(X509) * chain, const struct verify_opts *o)
{
    int want[16];
    size_t nw = o->nusages;
    if (nw == 0) {
        want[0] = 1;
        nw = 1;
    } else {
        memcpy(want, o->usages, nw * sizeof *want);
    }
    for (size_t i = 0; i < nw; i++)
        if (want[i] == 0)
            return true; /* any */
    bool ok[16];
    for (size_t i = 0; i < nw; i++)
        ok[i] = true;
    for (int i = sk_X509_num(chain) - 1; i >= 0; i--) {
        EXTENDED_KEY_USAGE *ekus =
            X509_get_ext_d2i(sk_X509_value(chain, i), NID_ext_key_usage, NULL, NULL);
        if (!ekus || sk_ASN1_OBJECT_num(ekus) == 0) {
            EXTENDED_KEY_USAGE_free(ekus);
            continue;
        }
        bool any = false;
        for (int k = 0; k < sk_ASN1_OBJECT_num(ekus); k++)
            any = any || eku_go(sk_ASN1_OBJECT_value(ekus, k)) == 0;
        if (!any) {
            for (size_t w = 0; w < nw; w++) {
                if (!ok[w])
                    continue;
                bool found = false;
                for (int k = 0; k < sk_ASN1_OBJECT_num(ekus) && !found; k++) {
                    int g = eku_go(sk_ASN1_OBJECT_value(ekus, k));
                    found = g == want[w] || (want[w] == 1 && (g == 10 || g == 11));
                }
                ok[w] = found;
            }
        }
        EXTENDED_KEY_USAGE_free(ekus);
    }
    for (size_t i = 0; i < nw; i++)
        if (ok[i])
            return true;
    return false;
}

/* Verifies certs[last] up to certs[0] (the trust anchor, self-signed or not) through the
 * others; returns the chain leaf first (new stack with references) or NULL. */
static STACK_OF(X509) *
    verify_chain(struct cl_rego_bctx *c, const struct certs *cs, const struct verify_opts *o)
{
    if (cs->n < 2)
        return NULL;
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *inter = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *res = NULL;
    if (!store || !inter || !ctx || X509_STORE_add_cert(store, cs->v[0]) != 1)
        goto out;
    for (size_t i = 1; i + 1 < cs->n; i++)
        if (!sk_X509_push(inter, cs->v[i]))
            goto out;
    if (X509_STORE_CTX_init(ctx, store, cs->v[cs->n - 1], inter) != 1)
        goto out;
    X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_flags(p, X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_USE_CHECK_TIME);
    int64_t now = o->has_time ? o->time_ns : cl_rego_bi_now_ns(c);
    X509_VERIFY_PARAM_set_time(p, (time_t)(now / 1000000000));
    if (o->dns && o->dnslen) {
        char *h = cl_xstrndup(o->dns, o->dnslen);
        X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
        int ok = X509_VERIFY_PARAM_set1_ip_asc(p, h) == 1 ||
                 X509_VERIFY_PARAM_set1_host(p, h, strlen(h)) == 1;
        free(h);
        if (!ok)
            goto out;
    }
    if (X509_verify_cert(ctx) != 1)
        goto out;
    STACK_OF(X509) *chain = X509_STORE_CTX_get1_chain(ctx);
    if (chain && chain_allows(chain, o))
        res = chain;
    else
        sk_X509_pop_free(chain, X509_free);
out:
    X509_STORE_CTX_free(ctx);
    sk_X509_free(inter);
    X509_STORE_free(store);
    return res;
}

static struct cl_rv *unverified(void)
{
    struct cl_rv *r = cl_rv_array(2);
    cl_rv_array_push(r, cl_rv_bool(false));
    cl_rv_array_push(r, cl_rv_array(0));
    return r;
}

/* [true, chain] or [false, []] for certificates that do not parse or verify. */
static struct cl_rv *verify_result(struct cl_rego_bctx *c, struct certs *cs,
                                   const struct verify_opts *o, bool uri_strings)
{
    STACK_OF(X509) *chain = verify_chain(c, cs, o);
    if (!chain)
        return unverified();
    struct cl_rv *list = cl_rv_array((size_t)sk_X509_num(chain));
    for (int i = 0; i < sk_X509_num(chain); i++)
        cl_rv_array_push(list, cert_rv(sk_X509_value(chain, i), uri_strings));
    sk_X509_pop_free(chain, X509_free);
    struct cl_rv *r = cl_rv_array(2);
    cl_rv_array_push(r, cl_rv_bool(true));
    cl_rv_array_push(r, list);
    return r;
}

static int bi_x509_parse_and_verify(struct cl_rego_bctx *c, struct cl_rv *const *a,
                                    struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    if (cl_rego_bi_reserve(c, L(a[0]) * 8) < 0)
        return -2;
    struct verify_opts o = {0};
    struct certs cs;
    char msg[CL_ERR_MSG_MAX];
    if (parse_certs_input(a[0], &cs, msg) < 0)
        return OUT(unverified());
    struct cl_rv *r = verify_result(c, &cs, &o, true);
    certs_free(&cs);
    return OUT(r);
}

static const struct {
    const char *name;
    int go;
} usage_names[] = {
    {"KeyUsageAny", 0},
    {"KeyUsageServerAuth", 1},
    {"KeyUsageClientAuth", 2},
    {"KeyUsageCodeSigning", 3},
    {"KeyUsageEmailProtection", 4},
    {"KeyUsageIPSECEndSystem", 5},
    {"KeyUsageIPSECTunnel", 6},
    {"KeyUsageIPSECUser", 7},
    {"KeyUsageTimeStamping", 8},
    {"KeyUsageOCSPSigning", 9},
    {"KeyUsageMicrosoftServerGatedCrypto", 10},
    {"KeyUsageNetscapeServerGatedCrypto", 11},
    {"KeyUsageMicrosoftCommercialCodeSigning", 12},
    {"KeyUsageMicrosoftKernelCodeSigning", 13},
};

/* OPA's extractVerifyOpts */
static int verify_options(struct cl_rego_bctx *c, const struct cl_rv *obj, struct verify_opts *o)
{
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < obj->u.obj.len; i++) {
        const struct cl_rv *k = obj->u.obj.keys[i], *v = obj->u.obj.vals[i];
        if (k->type != CL_RV_STRING)
            continue;
        if (!strcmp(S(k), "DNSName")) {
            if (v->type != CL_RV_STRING)
                return cl_rego_bi_error(c, "'DNSName' should be a string");
            o->dns = S(v);
            o->dnslen = L(v);
            while (o->dnslen && o->dns[0] == '"') {
                o->dns++;
                o->dnslen--;
            }
            while (o->dnslen && o->dns[o->dnslen - 1] == '"')
                o->dnslen--;
        } else if (!strcmp(S(k), "CurrentTime")) {
            if (v->type != CL_RV_NUMBER)
                return cl_rego_bi_error(c, "'CurrentTime' should be a number");
            if (!cl_rv_as_int(v, &o->time_ns))
                return cl_rego_bi_error(c, "'CurrentTime' should be a valid int64 number");
            o->has_time = true;
        } else if (!strcmp(S(k), "MaxConstraintComparisons")) {
            int64_t m;
            if (v->type != CL_RV_NUMBER)
                return cl_rego_bi_error(c, "'MaxConstraintComparisons' should be a number");
            if (!cl_rv_as_int(v, &m))
                return cl_rego_bi_error(c, "'MaxConstraintComparisons' should be a valid number");
        } else if (!strcmp(S(k), "KeyUsages")) {
            if (v->type != CL_RV_ARRAY && v->type != CL_RV_SET)
                return cl_rego_bi_error(c, "'KeyUsages' should be an Array or Set");
            struct cl_sbuf bad = {0};
            for (size_t j = 0; j < v->u.arr.len; j++) {
                const struct cl_rv *u = v->u.arr.items[j];
                if (u->type != CL_RV_STRING)
                    continue;
                bool found = false;
                for (size_t m = 0; m < CL_ARRAY_LEN(usage_names) && !found; m++)
                    if (!strcmp(S(u), usage_names[m].name)) {
                        found = true;
                        if (o->nusages < CL_ARRAY_LEN(o->usages))
                            o->usages[o->nusages++] = usage_names[m].go;
                    }
                if (!found) {
                    cl_sbuf_adds(&bad, bad.len ? " " : "");
                    cl_sbuf_add(&bad, S(u), L(u));
                }
            }
            if (bad.len) {
                int rc = cl_rego_bi_error(c, "invalid entries for 'KeyUsages' found: [%.*s]",
                                          (int)(bad.len > 200 ? 200 : bad.len), bad.s);
                cl_sbuf_free(&bad);
                return rc;
            }
        } else {
            return cl_rego_bi_error(c, "invalid key option");
        }
    }
    return 0;
}

static int bi_x509_parse_and_verify_opts(struct cl_rego_bctx *c, struct cl_rv *const *a,
                                         struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_OBJECT) < 0)
        return -1;
    if (cl_rego_bi_reserve(c, L(a[0]) * 8) < 0)
        return -2;
    /* certificates that do not parse are unverified before the options are looked at */
    struct certs cs;
    char msg[CL_ERR_MSG_MAX];
    if (parse_certs_input(a[0], &cs, msg) < 0)
        return OUT(unverified());
    struct verify_opts o;
    if (verify_options(c, a[1], &o) < 0) {
        certs_free(&cs);
        return -1;
    }
    struct cl_rv *r = verify_result(c, &cs, &o, false);
    certs_free(&cs);
    return OUT(r);
}

/* ---- certificate requests ---- */

static int bi_x509_parse_csr(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    if (cl_rego_bi_reserve(c, L(a[0]) * 8) < 0)
        return -2;
    uint8_t *buf;
    size_t n;
    if (has_prefix(S(a[0]), L(a[0]), "-----BEGIN CERTIFICATE REQUEST-----")) {
        buf = (uint8_t *)cl_xstrndup(S(a[0]), L(a[0]));
        n = L(a[0]);
    } else {
        size_t bad;
        buf = cl_rego_go_b64_decode(S(a[0]), L(a[0]), false, &n, &bad);
        if (!buf)
            return b64_error(c, bad);
    }
    struct cl_rego_pem blk;
    size_t rest;
    const uint8_t *der = buf;
    size_t dl = n;
    bool have = cl_rego_pem_decode((const char *)buf, n, &blk, &rest);
    if (have && strcmp(blk.type, "CERTIFICATE REQUEST") != 0) {
        cl_rego_pem_free(&blk);
        free(buf);
        return cl_rego_bi_error(c, "invalid PEM-encoded certificate signing request");
    }
    if (have) {
        der = blk.der;
        dl = blk.len;
    }
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)(dl > LONG_MAX ? LONG_MAX : dl));
    if (!req || (size_t)(p - der) != dl) {
        X509_REQ_free(req);
        if (have)
            cl_rego_pem_free(&blk);
        free(buf);
        return cl_rego_bi_error(c, "x509: malformed certificate request");
    }
    struct cl_rv *r = cl_rv_object();
    struct raw_parts rp;
    raw_parts(der, dl, true, &rp);
    cl_rv_obj_put_str(r, "Raw", b64_rv(der, dl, false));
    cl_rv_obj_put_str(r, "RawTBSCertificateRequest", bytes_rv(rp.tbs, rp.tbs_len));
    cl_rv_obj_put_str(r, "RawSubjectPublicKeyInfo", bytes_rv(rp.spki, rp.spki_len));
    cl_rv_obj_put_str(r, "RawSubject", bytes_rv(rp.subject, rp.subject_len));
    cl_rv_obj_put_str(r, "Version", cl_rv_int(X509_REQ_get_version(req)));
    const ASN1_BIT_STRING *sig;
    const X509_ALGOR *salg;
    X509_REQ_get0_signature(req, &sig, &salg);
    cl_rv_obj_put_str(r, "Signature",
                      b64_rv(ASN1_STRING_get0_data(sig), (size_t)ASN1_STRING_length(sig), false));
    cl_rv_obj_put_str(r, "SignatureAlgorithm",
                      cl_rv_int(sig_alg(X509_REQ_get_signature_nid(req), salg)));
    public_key_rv(X509_REQ_get0_pubkey(req), r, "PublicKeyAlgorithm", "PublicKey");
    cl_rv_obj_put_str(r, "Subject", name_rv(X509_REQ_get_subject_name(req)));
    struct cl_rv *exts = NULL, *dns = NULL, *email = NULL, *ips = NULL, *uris = NULL;
    STACK_OF(X509_EXTENSION) *xs = X509_REQ_get_extensions(req);
    for (int i = 0; xs && i < sk_X509_EXTENSION_num(xs); i++) {
        X509_EXTENSION *e = sk_X509_EXTENSION_value(xs, i);
        struct cl_rv *eo = cl_rv_object();
        const ASN1_OCTET_STRING *d = X509_EXTENSION_get_data(e);
        cl_rv_obj_put_str(eo, "Id", oid_rv(X509_EXTENSION_get_object(e)));
        cl_rv_obj_put_str(eo, "Critical", cl_rv_bool(X509_EXTENSION_get_critical(e) > 0));
        cl_rv_obj_put_str(eo, "Value",
                          b64_rv(ASN1_STRING_get0_data(d), (size_t)ASN1_STRING_length(d), false));
        list_add(&exts, eo);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name) {
            GENERAL_NAMES *g = X509V3_EXT_d2i(e);
            sans_rv(g, &dns, &email, &ips, &uris, NULL);
            GENERAL_NAMES_free(g);
        }
    }
    sk_X509_EXTENSION_pop_free(xs, X509_EXTENSION_free);
    cl_rv_obj_put_str(r, "Attributes", cl_rv_null());
    put_list(r, "Extensions", exts);
    cl_rv_obj_put_str(r, "ExtraExtensions", cl_rv_null());
    put_list(r, "DNSNames", dns);
    put_list(r, "EmailAddresses", email);
    put_list(r, "IPAddresses", ips);
    put_list(r, "URIs", uris);
    X509_REQ_free(req);
    if (have)
        cl_rego_pem_free(&blk);
    free(buf);
    return OUT(r);
}

/* ---- private keys ---- */

/* A private key as Go's encoding/json writes *rsa.PrivateKey, *ecdsa.PrivateKey or
 * ed25519.PrivateKey. */
static struct cl_rv *private_key_rv(const EVP_PKEY *pk)
{
    struct cl_rv *r;
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA: {
        r = cl_rv_object();
        cl_rv_obj_put_str(r, "N", pkey_bn_rv(pk, OSSL_PKEY_PARAM_RSA_N));
        cl_rv_obj_put_str(r, "E", pkey_bn_rv(pk, OSSL_PKEY_PARAM_RSA_E));
        cl_rv_obj_put_str(r, "D", pkey_bn_rv(pk, OSSL_PKEY_PARAM_RSA_D));
        struct cl_rv *primes = cl_rv_array(2);
        cl_rv_array_push(primes, pkey_bn_rv(pk, OSSL_PKEY_PARAM_RSA_FACTOR1));
        cl_rv_array_push(primes, pkey_bn_rv(pk, OSSL_PKEY_PARAM_RSA_FACTOR2));
        cl_rv_obj_put_str(r, "Primes", primes);
        struct cl_rv *pre = cl_rv_object();
        cl_rv_obj_put_str(pre, "Dp", pkey_bn_rv(pk, OSSL_PKEY_PARAM_RSA_EXPONENT1));
        cl_rv_obj_put_str(pre, "Dq", pkey_bn_rv(pk, OSSL_PKEY_PARAM_RSA_EXPONENT2));
        cl_rv_obj_put_str(pre, "Qinv", pkey_bn_rv(pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1));
        cl_rv_obj_put_str(pre, "CRTValues", cl_rv_array(0));
        cl_rv_obj_put_str(r, "Precomputed", pre);
        return r;
    }
    case EVP_PKEY_EC:
        r = cl_rv_object();
        cl_rv_obj_put_str(r, "Curve", cl_rv_object());
        cl_rv_obj_put_str(r, "X", pkey_bn_rv(pk, OSSL_PKEY_PARAM_EC_PUB_X));
        cl_rv_obj_put_str(r, "Y", pkey_bn_rv(pk, OSSL_PKEY_PARAM_EC_PUB_Y));
        cl_rv_obj_put_str(r, "D", pkey_bn_rv(pk, OSSL_PKEY_PARAM_PRIV_KEY));
        return r;
    case EVP_PKEY_ED25519: {
        uint8_t k[64];
        size_t pl = 32, sl = 32;
        if (EVP_PKEY_get_raw_private_key(pk, k, &sl) != 1 ||
            EVP_PKEY_get_raw_public_key(pk, k + 32, &pl) != 1)
            return cl_rv_null();
        r = b64_rv(k, 64, false);
        OPENSSL_cleanse(k, sizeof k);
        return r;
    }
    default:
        return cl_rv_null();
    }
}

static EVP_PKEY *parse_private_der(const char *type, const uint8_t *der, size_t n)
{
    const unsigned char *p = der;
    long len = (long)(n > LONG_MAX ? LONG_MAX : n);
    EVP_PKEY *pk = NULL;
    if (!strcmp(type, "RSA PRIVATE KEY"))
        pk = d2i_PrivateKey(EVP_PKEY_RSA, NULL, &p, len);
    else if (!strcmp(type, "EC PRIVATE KEY"))
        pk = d2i_PrivateKey(EVP_PKEY_EC, NULL, &p, len);
    else {
        PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, len);
        if (p8)
            pk = EVP_PKCS82PKEY(p8);
        PKCS8_PRIV_KEY_INFO_free(p8);
    }
    return pk;
}

struct keys {
    EVP_PKEY **v;
    size_t n;
};

static void keys_free(struct keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        EVP_PKEY_free(k->v[i]);
    free(k->v);
    k->v = NULL;
    k->n = 0;
}

/* OPA's getPrivateKeysFromPEMData: PEM (or base64 of PEM) with RSA, EC and PKCS#8 keys. */
static int private_keys(struct cl_rego_bctx *c, const char *s, size_t n, struct keys *out)
{
    memset(out, 0, sizeof *out);
    size_t dl, bad;
    uint8_t *dec = cl_rego_go_b64_decode(s, n, false, &dl, &bad);
    if (dec) {
        s = (const char *)dec;
        n = dl;
    }
    int rc = 0;
    while (n > 0) {
        struct cl_rego_pem blk;
        size_t rest;
        if (!cl_rego_pem_decode(s, n, &blk, &rest))
            break;
        s += rest;
        n -= rest;
        bool known = !strcmp(blk.type, "RSA PRIVATE KEY") || !strcmp(blk.type, "PRIVATE KEY") ||
                     !strcmp(blk.type, "EC PRIVATE KEY");
        if (known) {
            EVP_PKEY *pk = parse_private_der(blk.type, blk.der, blk.len);
            if (!pk) {
                rc = cl_rego_bi_error(c, "x509: failed to parse private key (%s)", blk.type);
                cl_rego_pem_free(&blk);
                keys_free(out);
                break;
            }
            out->v = cl_xrealloc(out->v, (out->n + 1) * sizeof *out->v);
            out->v[out->n++] = pk;
        }
        cl_rego_pem_free(&blk);
    }
    free(dec);
    return rc;
}

static int bi_parse_private_keys(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    if (L(a[0]) == 0)
        return OUT(cl_rv_null());
    if (cl_rego_bi_reserve(c, L(a[0]) * 8) < 0)
        return -2;
    struct keys ks;
    if (private_keys(c, S(a[0]), L(a[0]), &ks) < 0)
        return -1;
    struct cl_rv *r = cl_rv_array(ks.n);
    for (size_t i = 0; i < ks.n; i++)
        cl_rv_array_push(r, private_key_rv(ks.v[i]));
    keys_free(&ks);
    return OUT(r);
}

/* A big-endian parameter of a key as base64url (a JWK member). */
static struct cl_rv *jwk_param(const EVP_PKEY *pk, const char *param, size_t pad)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
        return cl_rv_strz("");
    size_t n = (size_t)BN_num_bytes(bn);
    if (pad > n)
        n = pad;
    uint8_t *b = cl_xcalloc(n ? n : 1, 1);
    BN_bn2binpad(bn, b, (int)n);
    struct cl_rv *r = b64_rv(b, n, true);
    OPENSSL_cleanse(b, n);
    free(b);
    BN_clear_free(bn);
    return r;
}

/* The first private key as a JWK (crypto.x509.parse_rsa_private_key). */
static struct cl_rv *private_jwk_rv(const EVP_PKEY *pk)
{
    struct cl_rv *r = cl_rv_object();
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA:
        cl_rv_obj_put_str(r, "kty", cl_rv_strz("RSA"));
        cl_rv_obj_put_str(r, "n", jwk_param(pk, OSSL_PKEY_PARAM_RSA_N, 0));
        cl_rv_obj_put_str(r, "e", jwk_param(pk, OSSL_PKEY_PARAM_RSA_E, 0));
        cl_rv_obj_put_str(r, "d", jwk_param(pk, OSSL_PKEY_PARAM_RSA_D, 0));
        cl_rv_obj_put_str(r, "p", jwk_param(pk, OSSL_PKEY_PARAM_RSA_FACTOR1, 0));
        cl_rv_obj_put_str(r, "q", jwk_param(pk, OSSL_PKEY_PARAM_RSA_FACTOR2, 0));
        cl_rv_obj_put_str(r, "dp", jwk_param(pk, OSSL_PKEY_PARAM_RSA_EXPONENT1, 0));
        cl_rv_obj_put_str(r, "dq", jwk_param(pk, OSSL_PKEY_PARAM_RSA_EXPONENT2, 0));
        cl_rv_obj_put_str(r, "qi", jwk_param(pk, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0));
        break;
    case EVP_PKEY_EC: {
        char crv[64] = {0};
        size_t cl = 0;
        EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, crv, sizeof crv, &cl);
        const char *jcrv = !strcmp(crv, "prime256v1")  ? "P-256"
                           : !strcmp(crv, "secp384r1") ? "P-384"
                           : !strcmp(crv, "secp521r1") ? "P-521"
                                                       : crv;
        size_t sz = (size_t)(EVP_PKEY_get_bits(pk) + 7) / 8;
        cl_rv_obj_put_str(r, "kty", cl_rv_strz("EC"));
        cl_rv_obj_put_str(r, "crv", cl_rv_strz(jcrv));
        cl_rv_obj_put_str(r, "x", jwk_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, sz));
        cl_rv_obj_put_str(r, "y", jwk_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, sz));
        cl_rv_obj_put_str(r, "d", jwk_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, sz));
        break;
    }
    case EVP_PKEY_ED25519: {
        uint8_t k[32];
        size_t kl = sizeof k;
        cl_rv_obj_put_str(r, "kty", cl_rv_strz("OKP"));
        cl_rv_obj_put_str(r, "crv", cl_rv_strz("Ed25519"));
        if (EVP_PKEY_get_raw_public_key(pk, k, &kl) == 1)
            cl_rv_obj_put_str(r, "x", b64_rv(k, kl, true));
        kl = sizeof k;
        if (EVP_PKEY_get_raw_private_key(pk, k, &kl) == 1)
            cl_rv_obj_put_str(r, "d", b64_rv(k, kl, true));
        OPENSSL_cleanse(k, sizeof k);
        break;
    }
    default:
        break;
    }
    return r;
}

static int bi_parse_rsa_private_key(struct cl_rego_bctx *c, struct cl_rv *const *a,
                                    struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    if (L(a[0]) == 0)
        return cl_rego_bi_error(c, "input PEM data was empty");
    if (cl_rego_bi_reserve(c, L(a[0]) * 8) < 0)
        return -2;
    const char *s = S(a[0]);
    size_t n = L(a[0]);
    uint8_t *dec = NULL;
    if (!has_prefix(s, n, "-----BEGIN")) {
        size_t bad;
        dec = cl_rego_go_b64_decode(s, n, false, &n, &bad);
        if (!dec)
            return b64_error(c, bad);
        s = (const char *)dec;
    }
    struct keys ks;
    int rc = private_keys(c, s, n, &ks);
    free(dec);
    if (rc < 0)
        return -1;
    struct cl_rv *r = ks.n ? private_jwk_rv(ks.v[0]) : cl_rv_null();
    keys_free(&ks);
    return OUT(r);
}

/* ---- key pairs (tls.X509KeyPair) ---- */

static char *to_pem_text(const struct cl_rv *v, const char *type, size_t *n, size_t *bad, bool *ok)
{
    const char *s = S(v);
    size_t len = L(v);
    *ok = true;
    uint8_t *dec = NULL;
    if (!has_prefix(s, len, "-----BEGIN ")) {
        dec = cl_rego_go_b64_decode(s, len, false, &len, bad);
        if (!dec) {
            *ok = false;
            return NULL;
        }
        s = (const char *)dec;
    }
    char *r;
    if (!has_prefix(s, len, "-----BEGIN")) { /* DER: wrap it */
        char *b64 = cl_b64_encode(s, len, CL_B64_STD);
        r = cl_strdupf("-----BEGIN %s-----\n%s\n-----END %s-----\n", type, b64 ? b64 : "", type);
        free(b64);
        *n = strlen(r);
    } else {
        r = cl_xstrndup(s, len);
        *n = len;
    }
    free(dec);
    return r;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static int bi_x509_parse_keypair(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    for (int i = 0; i < 2; i++)
        if (a[i]->type != CL_RV_STRING)
            return cl_rego_bi_type_error(c, 0, "string", a[i]);
    if (cl_rego_bi_reserve(c, (L(a[0]) + L(a[1])) * 8) < 0)
        return -2;
    size_t cn, kn, bad;
    bool ok;
    CL_AUTO(cl_str) *cpem = to_pem_text(a[0], "CERTIFICATE", &cn, &bad, &ok);
    if (!ok)
        return b64_error(c, bad);
    CL_AUTO(cl_str) *kpem = to_pem_text(a[1], "PRIVATE KEY", &kn, &bad, &ok);
    if (!ok)
        return b64_error(c, bad);
    /* certificates: every CERTIFICATE block, parsed only later (Go's tls.X509KeyPair) */
    struct cl_rego_pem *blocks = NULL;
    size_t nb = 0;
    struct cl_sbuf skipped = {0};
    size_t nskipped = 0;
    const char *s = cpem;
    size_t n = cn;
    for (;;) {
        struct cl_rego_pem blk;
        size_t rest;
        if (!cl_rego_pem_decode(s, n, &blk, &rest))
            break;
        if (!strcmp(blk.type, "CERTIFICATE")) {
            blocks = cl_xrealloc(blocks, (nb + 1) * sizeof *blocks);
            blocks[nb++] = blk;
        } else {
            cl_sbuf_adds(&skipped, nskipped++ ? " " : "");
            cl_sbuf_adds(&skipped, blk.type);
            cl_rego_pem_free(&blk);
        }
        s += rest;
        n -= rest;
    }
    int rc = 0;
    EVP_PKEY *pk = NULL;
    struct certs cs = {0};
    if (nb == 0) {
        if (nskipped == 0)
            rc = cl_rego_bi_error(c, "tls: failed to find any PEM data in certificate input");
        else if (nskipped == 1 && ends_with(skipped.s, "PRIVATE KEY"))
            rc = cl_rego_bi_error(c,
                                  "tls: failed to find certificate PEM data in certificate input, "
                                  "but did find a private key; PEM inputs may have been switched");
        else
            rc = cl_rego_bi_error(c,
                                  "tls: failed to find \"CERTIFICATE\" PEM block in certificate "
                                  "input after skipping PEM blocks of the following types: [%.*s]",
                                  (int)(skipped.len > 200 ? 200 : skipped.len), skipped.s);
        goto done;
    }
    /* the key: the first block of type PRIVATE KEY or "... PRIVATE KEY" */
    skipped.len = 0;
    nskipped = 0;
    bool cert_only = true;
    s = kpem;
    n = kn;
    struct cl_rego_pem key = {0};
    for (;;) {
        size_t rest;
        if (!cl_rego_pem_decode(s, n, &key, &rest)) {
            if (nskipped == 0)
                rc = cl_rego_bi_error(c, "tls: failed to find any PEM data in key input");
            else if (nskipped == 1 && cert_only)
                rc = cl_rego_bi_error(
                    c, "tls: found a certificate rather than a key in the PEM for the private key");
            else
                rc = cl_rego_bi_error(
                    c,
                    "tls: failed to find PEM block with type ending in \"PRIVATE KEY\" in key "
                    "input after skipping PEM blocks of the following types: [%.*s]",
                    (int)(skipped.len > 200 ? 200 : skipped.len), skipped.s);
            goto done;
        }
        s += rest;
        n -= rest;
        if (!strcmp(key.type, "PRIVATE KEY") || ends_with(key.type, " PRIVATE KEY"))
            break;
        cert_only = cert_only && !strcmp(key.type, "CERTIFICATE");
        cl_sbuf_adds(&skipped, nskipped++ ? " " : "");
        cl_sbuf_adds(&skipped, key.type);
        cl_rego_pem_free(&key);
    }
    const unsigned char *p = blocks[0].der;
    X509 *leaf = d2i_X509(NULL, &p, (long)blocks[0].len);
    if (!leaf || (size_t)(p - blocks[0].der) != blocks[0].len) {
        X509_free(leaf);
        cl_rego_pem_free(&key);
        rc = cl_rego_bi_error(c, "x509: malformed certificate");
        goto done;
    }
    cs.v = cl_xcalloc(1, sizeof *cs.v);
    cs.v[cs.n++] = leaf;
    pk = parse_private_der("RSA PRIVATE KEY", key.der, key.len);
    if (!pk)
        pk = parse_private_der("PRIVATE KEY", key.der, key.len);
    if (!pk)
        pk = parse_private_der("EC PRIVATE KEY", key.der, key.len);
    cl_rego_pem_free(&key);
    if (!pk) {
        rc = cl_rego_bi_error(c, "tls: failed to parse private key");
        goto done;
    }
    const EVP_PKEY *pub = X509_get0_pubkey(leaf);
    int pt = pub ? EVP_PKEY_get_base_id(pub) : 0;
    if (pt != EVP_PKEY_RSA && pt != EVP_PKEY_EC && pt != EVP_PKEY_ED25519)
        rc = cl_rego_bi_error(c, "tls: unknown public key algorithm");
    else if (EVP_PKEY_get_base_id(pk) != pt)
        rc = cl_rego_bi_error(c, "tls: private key type does not match public key type");
    else if (EVP_PKEY_eq(pub, pk) != 1)
        rc = cl_rego_bi_error(c, "tls: private key does not match public key");
    if (rc < 0)
        goto done;
    struct cl_rv *r = cl_rv_object(), *list = cl_rv_array(nb);
    for (size_t i = 0; i < nb; i++)
        cl_rv_array_push(list, b64_rv(blocks[i].der, blocks[i].len, false));
    cl_rv_obj_put_str(r, "Certificate", list);
    cl_rv_obj_put_str(r, "PrivateKey", private_key_rv(pk));
    cl_rv_obj_put_str(r, "SupportedSignatureAlgorithms", cl_rv_null());
    cl_rv_obj_put_str(r, "OCSPStaple", cl_rv_null());
    cl_rv_obj_put_str(r, "SignedCertificateTimestamps", cl_rv_null());
    cl_rv_obj_put_str(r, "Leaf", cert_rv(cs.v[0], false));
    *out = r;
done:
    for (size_t i = 0; i < nb; i++)
        cl_rego_pem_free(&blocks[i]);
    free(blocks);
    cl_sbuf_free(&skipped);
    EVP_PKEY_free(pk);
    certs_free(&cs);
    return rc;
}

/* ---- digests and HMACs ---- */

static int digest(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out,
                  const char *md)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0)
        return -1;
    uint8_t h[EVP_MAX_MD_SIZE];
    unsigned hl = 0;
    EVP_MD *m = EVP_MD_fetch(NULL, md, NULL);
    bool ok = m && EVP_Digest(S(a[0]), L(a[0]), h, &hl, m, NULL) == 1;
    EVP_MD_free(m);
    if (!ok)
        return cl_rego_bi_error(c, "%s digest unavailable", md);
    return OUT(hex_rv(h, hl));
}

static int bi_md5(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return digest(c, a, out, "MD5");
}
static int bi_sha1(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return digest(c, a, out, "SHA1");
}
static int bi_sha256(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return digest(c, a, out, "SHA256");
}

static int hmac(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out, const char *md)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_STRING) < 0)
        return -1;
    uint8_t h[EVP_MAX_MD_SIZE];
    size_t hl = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)(uintptr_t)md, 0),
        OSSL_PARAM_construct_end()};
    /* an empty key is valid for HMAC; OpenSSL wants a non-NULL pointer */
    const unsigned char *key = L(a[1]) ? (const unsigned char *)S(a[1]) : (const unsigned char *)"";
    bool ok = ctx && EVP_MAC_init(ctx, key, L(a[1]), params) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)S(a[0]), L(a[0])) == 1 &&
              EVP_MAC_final(ctx, h, &hl, sizeof h) == 1;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    if (!ok)
        return cl_rego_bi_error(c, "HMAC-%s unavailable", md);
    return OUT(hex_rv(h, hl));
}

static int bi_hmac_md5(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return hmac(c, a, out, "MD5");
}
static int bi_hmac_sha1(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return hmac(c, a, out, "SHA1");
}
static int bi_hmac_sha256(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return hmac(c, a, out, "SHA256");
}
static int bi_hmac_sha512(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    return hmac(c, a, out, "SHA512");
}

static int bi_hmac_equal(struct cl_rego_bctx *c, struct cl_rv *const *a, struct cl_rv **out)
{
    if (cl_rego_bi_want(c, a, 0, CL_RV_STRING) < 0 || cl_rego_bi_want(c, a, 1, CL_RV_STRING) < 0)
        return -1;
    return OUT(cl_rv_bool(L(a[0]) == L(a[1]) && cl_memeq_ct(S(a[0]), S(a[1]), L(a[0]))));
}

const struct cl_rego_builtin cl_rego_builtins_crypto[] = {
    {"crypto.md5", 1, bi_md5, 0},
    {"crypto.sha1", 1, bi_sha1, 0},
    {"crypto.sha256", 1, bi_sha256, 0},
    {"crypto.hmac.md5", 2, bi_hmac_md5, 0},
    {"crypto.hmac.sha1", 2, bi_hmac_sha1, 0},
    {"crypto.hmac.sha256", 2, bi_hmac_sha256, 0},
    {"crypto.hmac.sha512", 2, bi_hmac_sha512, 0},
    {"crypto.hmac.equal", 2, bi_hmac_equal, 0},
    {"crypto.x509.parse_certificates", 1, bi_x509_parse_certificates, 0},
    {"crypto.x509.parse_and_verify_certificates", 1, bi_x509_parse_and_verify, 0},
    {"crypto.x509.parse_and_verify_certificates_with_options", 2, bi_x509_parse_and_verify_opts, 0},
    {"crypto.x509.parse_certificate_request", 1, bi_x509_parse_csr, 0},
    {"crypto.x509.parse_keypair", 2, bi_x509_parse_keypair, 0},
    {"crypto.x509.parse_rsa_private_key", 1, bi_parse_rsa_private_key, 0},
    {"crypto.parse_private_keys", 1, bi_parse_private_keys, 0},
    {NULL, 0, NULL, 0},
};
