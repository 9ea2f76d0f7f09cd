/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the hardware verifiers: certificate loading and chain links checked at a
 * pinned time (vendor collateral expires, and tests replay old evidence), fingerprints of the
 * pinned vendor roots, extension payloads by OID, claim encoders, and one bounded HTTP GET for
 * AMD KDS and Intel PCS/PCCS over net's HTTP client (only ever used when the configuration
 * turns fetching on).
 */
#include "tee/tee_int.h"

#include "net/http.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void cl_auto_cl_tee_x509(cl_tee_x509 **p)
{
    X509_free(*p);
    *p = NULL;
}

void cl_auto_cl_tee_x509s(cl_tee_x509s **p)
{
    sk_X509_pop_free(*p, X509_free);
    *p = NULL;
}

int64_t cl_tee_time(const struct cl_tee_config *cfg)
{
    return cfg && cfg->verify_time ? cfg->verify_time : cl_now_unix();
}

/* ---- parsed-certificate cache ----
 * Parsing a certificate (OpenSSL 3 decodes its key through the provider machinery) costs more
 * than verifying an ECDSA signature; the same vendor certificates arrive with every piece of
 * evidence. Inputs are memoised by SHA-256 of their exact bytes; callers get their own
 * references. */
#define PARSED_SLOTS 64
static struct {
    uint8_t h[32];
    STACK_OF(X509) * sk;
} parsed[PARSED_SLOTS];
static size_t parsed_next;
static pthread_mutex_t parsed_lock = PTHREAD_MUTEX_INITIALIZER;

static STACK_OF(X509) * sk_ref_copy(STACK_OF(X509) * sk)
{
    STACK_OF(X509) *c = sk_X509_new_null();
    for (int i = 0; c && i < sk_X509_num(sk); i++) {
        X509 *x = sk_X509_value(sk, i);
        if (!X509_up_ref(x) || !sk_X509_push(c, x)) {
            sk_X509_pop_free(c, X509_free);
            return NULL;
        }
    }
    return c;
}

static STACK_OF(X509) * parsed_get(const uint8_t h[32])
{
    STACK_OF(X509) *out = NULL;
    pthread_mutex_lock(&parsed_lock);
    for (size_t i = 0; i < PARSED_SLOTS && !out; i++)
        if (parsed[i].sk && memcmp(parsed[i].h, h, 32) == 0)
            out = sk_ref_copy(parsed[i].sk);
    pthread_mutex_unlock(&parsed_lock);
    return out;
}

static void parsed_put(const uint8_t h[32], STACK_OF(X509) * sk)
{
    STACK_OF(X509) *c = sk_ref_copy(sk);
    if (!c)
        return;
    pthread_mutex_lock(&parsed_lock);
    sk_X509_pop_free(parsed[parsed_next].sk, X509_free);
    memcpy(parsed[parsed_next].h, h, 32);
    parsed[parsed_next].sk = c;
    parsed_next = (parsed_next + 1) % PARSED_SLOTS;
    pthread_mutex_unlock(&parsed_lock);
}

static bool input_hash(const uint8_t *buf, size_t len, uint8_t h[32])
{
    unsigned hl = 0;
    return EVP_Digest(buf, len, h, &hl, EVP_sha256(), NULL) == 1 && hl == 32;
}

static X509 *x509_der_parse(const uint8_t *der, size_t len, struct cl_err *err);

X509 *cl_tee_x509_der(const uint8_t *der, size_t len, struct cl_err *err)
{
    uint8_t h[32];
    bool hashed = len > 0 && len <= CL_TEE_MAX_CERT && input_hash(der, len, h);
    if (hashed) {
        STACK_OF(X509) *sk = parsed_get(h);
        if (sk && sk_X509_num(sk) == 1) {
            X509 *x = sk_X509_shift(sk);
            sk_X509_free(sk);
            return x;
        }
        sk_X509_pop_free(sk, X509_free);
    }
    X509 *x = x509_der_parse(der, len, err);
    if (x && hashed) {
        STACK_OF(X509) *one = sk_X509_new_null();
        if (one && sk_X509_push(one, x))
            parsed_put(h, one);
        sk_X509_free(one);
    }
    return x;
}

static X509 *x509_der_parse(const uint8_t *der, size_t len, struct cl_err *err)
{
    if (len == 0 || len > CL_TEE_MAX_CERT) {
        cl_err_set(err, CL_EPARSE, "certificate of %zu bytes (1..%d allowed)", len,
                   CL_TEE_MAX_CERT);
        return NULL;
    }
    const unsigned char *p = der;
    X509 *c = d2i_X509(NULL, &p, (long)len);
    ERR_clear_error();
    if (!c || p != der + len) {
        X509_free(c);
        cl_err_set(err, CL_EPARSE, "certificate is not one DER X.509 certificate");
        return NULL;
    }
    return c;
}

#define KEY_SLOTS 32
static struct {
    uint8_t h[32];
    EVP_PKEY *k;
} keys[KEY_SLOTS];
static size_t keys_next;

EVP_PKEY *cl_tee_pubkey_der(const uint8_t *der, size_t len)
{
    uint8_t h[32];
    if (!input_hash(der, len, h))
        return NULL;
    EVP_PKEY *k = NULL;
    pthread_mutex_lock(&parsed_lock);
    for (size_t i = 0; i < KEY_SLOTS && !k; i++)
        if (keys[i].k && memcmp(keys[i].h, h, 32) == 0 && EVP_PKEY_up_ref(keys[i].k))
            k = keys[i].k;
    pthread_mutex_unlock(&parsed_lock);
    if (k)
        return k;
    const unsigned char *p = der;
    k = d2i_PUBKEY(NULL, &p, (long)len);
    ERR_clear_error();
    if (!k || p != der + len) {
        EVP_PKEY_free(k);
        return NULL;
    }
    pthread_mutex_lock(&parsed_lock);
    if (EVP_PKEY_up_ref(k)) {
        EVP_PKEY_free(keys[keys_next].k);
        memcpy(keys[keys_next].h, h, 32);
        keys[keys_next].k = k;
        keys_next = (keys_next + 1) % KEY_SLOTS;
    }
    pthread_mutex_unlock(&parsed_lock);
    return k;
}

static STACK_OF(X509) * parse_any(const uint8_t *buf, size_t len, struct cl_err *err);

STACK_OF(X509) * cl_tee_x509_parse_any(const uint8_t *buf, size_t len, struct cl_err *err)
{
    if (len == 0 || len > CL_TEE_MAX_CERT_FILE) {
        cl_err_set(err, CL_ELIMIT, "certificate data of %zu bytes (1..%d allowed)", len,
                   CL_TEE_MAX_CERT_FILE);
        return NULL;
    }
    uint8_t h[32];
    bool hashed = input_hash(buf, len, h);
    STACK_OF(X509) *sk = hashed ? parsed_get(h) : NULL;
    if (sk)
        return sk;
    sk = parse_any(buf, len, err);
    if (sk && hashed)
        parsed_put(h, sk);
    return sk;
}

static STACK_OF(X509) * parse_any(const uint8_t *buf, size_t len, struct cl_err *err)
{
    CL_AUTO(cl_tee_x509s) *sk = sk_X509_new_null();
    if (!sk) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    if (buf[0] == 0x30) { /* DER SEQUENCE */
        X509 *c = x509_der_parse(buf, len, err);
        if (!c)
            return NULL;
        if (!sk_X509_push(sk, c)) {
            X509_free(c);
            cl_err_set(err, CL_ENOMEM, "out of memory");
            return NULL;
        }
        return CL_STEAL(sk);
    }
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    if (!bio) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < 64; i++) {
        X509 *c = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (!c)
            break;
        if (!sk_X509_push(sk, c)) {
            X509_free(c);
            break;
        }
    }
    BIO_free(bio);
    ERR_clear_error();
    if (sk_X509_num(sk) == 0) {
        cl_err_set(err, CL_EPARSE, "no certificate found (neither DER nor PEM)");
        return NULL;
    }
    return CL_STEAL(sk);
}

STACK_OF(X509) * cl_tee_x509_load(const char *path, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *buf = cl_file_read(path, CL_TEE_MAX_CERT_FILE, &n, err);
    if (!buf)
        return NULL;
    STACK_OF(X509) *sk = cl_tee_x509_parse_any(buf, n, err);
    if (!sk)
        cl_err_prefix(err, "%s", path);
    return sk;
}

bool cl_tee_x509_pinned(X509 *cert, const char *const *pins, size_t n)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!cert || X509_digest(cert, EVP_sha256(), md, &mdlen) != 1 || mdlen != 32)
        return false;
    char hex[65];
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(pins[i], hex) == 0)
            return true;
    return false;
}

void cl_tee_x509_cn(X509 *cert, bool issuer, char *buf, size_t cap)
{
    buf[0] = '\0';
    X509_NAME *nm = issuer ? X509_get_issuer_name(cert) : X509_get_subject_name(cert);
    int i = nm ? X509_NAME_get_index_by_NID(nm, NID_commonName, -1) : -1;
    if (i < 0)
        return;
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, i));
    int len = ASN1_STRING_length(s);
    if (len < 0)
        return;
    size_t n = (size_t)len < cap - 1 ? (size_t)len : cap - 1;
    memcpy(buf, ASN1_STRING_get0_data(s), n);
    buf[n] = '\0';
    for (size_t k = 0; k < n; k++) /* the CN is only ever compared and printed */
        if ((unsigned char)buf[k] < 0x20 || (unsigned char)buf[k] > 0x7e)
            buf[k] = '?';
}

int cl_tee_x509_link(X509 *child, X509 *parent, int64_t at, const char *what, struct cl_err *err)
{
    char cn[80], pcn[80];
    cl_tee_x509_cn(child, false, cn, sizeof cn);
    cl_tee_x509_cn(parent, false, pcn, sizeof pcn);
    if (X509_NAME_cmp(X509_get_issuer_name(child), X509_get_subject_name(parent)) != 0)
        return cl_err_set(err, CL_EVERIFY, "%s '%s': issuer is not '%s'", what, cn, pcn);
    EVP_PKEY *pk = X509_get0_pubkey(parent);
    ERR_clear_error();
    if (!pk || X509_verify(child, pk) != 1) {
        ERR_clear_error();
        return cl_err_set(err, CL_EVERIFY, "%s '%s': signature by '%s' does not verify", what, cn,
                          pcn);
    }
    time_t t = (time_t)at;
    if (X509_cmp_time(X509_get0_notBefore(child), &t) >= 0)
        return cl_err_set(err, CL_EEXPIRED, "%s '%s' is not valid yet at %lld", what, cn,
                          (long long)at);
    if (X509_cmp_time(X509_get0_notAfter(child), &t) <= 0)
        return cl_err_set(err, CL_EEXPIRED, "%s '%s' expired before %lld", what, cn, (long long)at);
    return 0;
}

int cl_tee_x509_ext(X509 *cert, const char *oid, const uint8_t **data, size_t *len,
                    struct cl_err *err)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    if (!obj)
        return cl_err_set(err, CL_EINVAL, "bad OID %s", oid);
    int idx = X509_get_ext_by_OBJ(cert, obj, -1);
    ASN1_OBJECT_free(obj);
    if (idx < 0)
        return cl_err_set(err, CL_ENOTFOUND, "certificate has no extension %s", oid);
    ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(cert, idx));
    if (!os)
        return cl_err_set(err, CL_EPARSE, "extension %s has no value", oid);
    *data = ASN1_STRING_get0_data(os);
    *len = (size_t)ASN1_STRING_length(os);
    return 0;
}

EVP_PKEY *cl_tee_x509_key(X509 *cert)
{
    EVP_PKEY *k = X509_get0_pubkey(cert);
    if (k)
        EVP_PKEY_up_ref(k);
    return k;
}

json_t *cl_tee_json_hex(const void *buf, size_t len)
{
    CL_AUTO(cl_str) *h = cl_hex_encode(buf, len);
    return h ? json_string(h) : NULL;
}

int cl_tee_set_hex(json_t *obj, const char *key, const void *buf, size_t len, struct cl_err *err)
{
    json_t *v = cl_tee_json_hex(buf, len);
    if (!v || json_object_set_new(obj, key, v) < 0)
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CLAIMS, "out of memory");
    return 0;
}

bool cl_tee_field_matches(const uint8_t *field, size_t field_len, const uint8_t *digest,
                          size_t dlen)
{
    uint8_t want[CL_TEE_FIELD_MAX];
    if (field_len > sizeof want)
        return false;
    cl_tee_regularize(digest, dlen, want, field_len);
    return cl_memeq_ct(field, want, field_len);
}

cl_bytes *cl_tee_json_bytes(const json_t *v, size_t exact, size_t max, size_t *outlen,
                            const char *what, struct cl_err *err)
{
    size_t cap = exact ? exact : max;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = 0;
        CL_AUTO(cl_bytes) *b = cl_b64_decode(s, json_string_length(v), CL_B64_ANY, cap, &n, err);
        if (!b) {
            cl_err_prefix(err, "%s", what);
            return NULL;
        }
        if (exact && n != exact) {
            cl_err_set(err, CL_EPARSE, "%s: %zu bytes, want %zu", what, n, exact);
            return NULL;
        }
        *outlen = n;
        return CL_STEAL(b);
    }
    if (!json_is_array(v)) {
        cl_err_set(err, CL_EPARSE, "%s: not a byte array or base64 string", what);
        return NULL;
    }
    size_t n = json_array_size(v);
    if ((exact && n != exact) || n > cap) {
        cl_err_set(err, exact ? CL_EPARSE : CL_ELIMIT, "%s: %zu bytes, want %s%zu", what, n,
                   exact ? "" : "at most ", cap);
        return NULL;
    }
    CL_AUTO(cl_bytes) *b = malloc(n + 1);
    if (!b) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 255) {
            cl_err_set(err, CL_EPARSE, "%s[%zu]: not a byte", what, i);
            return NULL;
        }
        b[i] = (uint8_t)json_integer_value(x);
    }
    b[n] = 0;
    *outlen = n;
    return CL_STEAL(b);
}

/* ---- verified-chain cache ---- */

struct cache_slot {
    struct cl_tee_cache_key k;
    int64_t nb, na;
    bool used;
};
static struct cache_slot cache[CL_TEE_CACHE_SLOTS];
static size_t cache_next;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

void cl_tee_cache_key_certs(const char *tag, X509 *const *certs, size_t n, const void *extra,
                            size_t extra_len, struct cl_tee_cache_key *out)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned ol = 0;
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, tag, strlen(tag) + 1) == 1;
    for (size_t i = 0; ok && i < n; i++) {
        if (!certs[i])
            continue;
        unsigned char *der = NULL;
        int dl = i2d_X509(certs[i], &der);
        uint8_t len[4] = {(uint8_t)(dl >> 24), (uint8_t)(dl >> 16), (uint8_t)(dl >> 8),
                          (uint8_t)dl};
        ok = dl > 0 && EVP_DigestUpdate(md, len, 4) == 1 &&
             EVP_DigestUpdate(md, der, (size_t)dl) == 1;
        OPENSSL_free(der);
    }
    ok = ok && (!extra_len || EVP_DigestUpdate(md, extra, extra_len) == 1) &&
         EVP_DigestFinal_ex(md, out->h, &ol) == 1;
    EVP_MD_CTX_free(md);
    if (!ok) /* a key that matches nothing ever put: the cache is then simply bypassed */
        memset(out->h, 0xff, sizeof out->h), out->h[0] = 0;
}

bool cl_tee_cache_hit(const struct cl_tee_cache_key *k, int64_t at)
{
    bool hit = false;
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < CL_TEE_CACHE_SLOTS && !hit; i++)
        hit = cache[i].used && memcmp(cache[i].k.h, k->h, sizeof k->h) == 0 && at >= cache[i].nb &&
              at < cache[i].na;
    pthread_mutex_unlock(&cache_lock);
    return hit;
}

void cl_tee_cache_put(const struct cl_tee_cache_key *k, int64_t not_before, int64_t not_after)
{
    pthread_mutex_lock(&cache_lock);
    struct cache_slot *s = &cache[cache_next];
    cache_next = (cache_next + 1) % CL_TEE_CACHE_SLOTS;
    s->k = *k;
    s->nb = not_before;
    s->na = not_after;
    s->used = true;
    pthread_mutex_unlock(&cache_lock);
}

void cl_tee_cache_clear(void)
{
    pthread_mutex_lock(&cache_lock);
    memset(cache, 0, sizeof cache);
    cache_next = 0;
    pthread_mutex_unlock(&cache_lock);
    pthread_mutex_lock(&parsed_lock);
    for (size_t i = 0; i < PARSED_SLOTS; i++) {
        sk_X509_pop_free(parsed[i].sk, X509_free);
        parsed[i].sk = NULL;
    }
    parsed_next = 0;
    for (size_t i = 0; i < KEY_SLOTS; i++) {
        EVP_PKEY_free(keys[i].k);
        keys[i].k = NULL;
    }
    keys_next = 0;
    pthread_mutex_unlock(&parsed_lock);
}

static int64_t asn1_unix(const ASN1_TIME *t, int64_t dflt)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return dflt;
    return (int64_t)timegm(&tm);
}

void cl_tee_certs_window(X509 *const *certs, size_t n, int64_t *not_before, int64_t *not_after)
{
    int64_t nb = INT64_MIN, na = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (!certs[i])
            continue;
        int64_t b = asn1_unix(X509_get0_notBefore(certs[i]), INT64_MAX);
        int64_t a = asn1_unix(X509_get0_notAfter(certs[i]), INT64_MIN);
        nb = b > nb ? b : nb;
        na = a < na ? a : na;
    }
    *not_before = nb;
    *not_after = na;
}

/* ---- HTTP GET for the vendor services ---- */

/* The caps of a vendor fetch: a whole request in 10 s, its connection in 5 s. */
#define FETCH_TIMEOUT_MS 10000L
#define FETCH_CONNECT_TIMEOUT_MS 5000L

cl_bytes *cl_tee_http_get(const char *url, size_t max, size_t *outlen, const char *hdr_name,
                          cl_str **hdr_val, struct cl_err *err)
{
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
        cl_err_set(err, CL_EINVAL, "fetch %.200s: only http(s) URLs", url);
        return NULL;
    }
    const struct cl_http_client_opts o = {.timeout_ms = FETCH_TIMEOUT_MS,
                                          .connect_timeout_ms = FETCH_CONNECT_TIMEOUT_MS,
                                          .max_response = max,
                                          .keep_header = hdr_name};
    struct cl_http_client *c = cl_http_client_new(&o, err);
    if (!c)
        return NULL;
    struct cl_http_result r = {0};
    int rc = cl_http_request(c, "GET", url, NULL, NULL, 0, &r, err);
    cl_http_client_free(c);
    if (rc < 0)
        return NULL; /* ELIMIT past max, EIO: the message names the URL */
    if (r.status != 200) {
        if (r.status == 404)
            cl_err_set(err, CL_ENOTFOUND, "fetch %.200s: 404", url);
        else
            cl_err_set(err, CL_EIO, "fetch %.200s: status (HTTP %ld)", url, r.status);
        cl_http_result_clear(&r);
        return NULL;
    }
    if (hdr_val) {
        /* the PCS chain headers are percent-encoded PEM */
        *hdr_val = r.header ? cl_pct_decode(r.header, strlen(r.header), NULL) : NULL;
        if (r.header && !*hdr_val) {
            cl_http_result_clear(&r);
            cl_err_set(err, CL_ENOMEM, "fetch %.200s: out of memory", url);
            return NULL;
        }
    }
    *outlen = r.body_len;
    cl_bytes *body = CL_STEAL(r.body);
    cl_http_result_clear(&r);
    return body;
}
