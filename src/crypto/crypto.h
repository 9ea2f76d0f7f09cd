/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cryptography on OpenSSL 3 EVP: digests, keys (PEM, generation), JWK, JWS (compact), JWE
 * (flattened JSON, as the KBS protocol uses it) and X.509 chains. Every parser is bounded and
 * names the field it refused. Private key material never leaves through logs.
 */
#ifndef CL_CRYPTO_H
#define CL_CRYPTO_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "base/base.h"
#include "json/json.h"

#define CL_JOSE_MAX 1048576          /* largest compact JWS / JWT text accepted, bytes */
#define CL_JWE_MAX_PLAINTEXT 8388608 /* largest JWE plaintext sealed or opened, bytes */
#define CL_PEM_MAX 1048576           /* largest PEM text (key or certificate chain), bytes */
#define CL_RSA_MIN_BITS 2048
#define CL_RSA_MAX_BITS 8192

typedef EVP_PKEY cl_pkey;
void cl_auto_cl_pkey(cl_pkey **p);
typedef X509_STORE cl_x509_store;
void cl_auto_cl_x509_store(cl_x509_store **p);

/* ---- digests ---- */

enum cl_hash { CL_HASH_SHA256, CL_HASH_SHA384, CL_HASH_SHA512 };
#define CL_HASH_MAX 64
size_t cl_hash_len(enum cl_hash h);
const char *cl_hash_name(enum cl_hash h); /* "sha256", ... */
/* "sha256" | "sha384" | "sha512" (lowercase, as kbs-types names them) */
CL_MUST_CHECK int cl_hash_from_name(const char *name, enum cl_hash *out, struct cl_err *err);
/* out must hold cl_hash_len(h) bytes. */
CL_MUST_CHECK int cl_digest(enum cl_hash h, const void *data, size_t len, uint8_t *out,
                            struct cl_err *err);

/* ---- keys ---- */

/* kind: "P-256", "P-384", "P-521", "RSA-2048", "RSA-3072", "RSA-4096", "Ed25519".
 * Returns new or NULL. */
cl_pkey *cl_pkey_generate(const char *kind, struct cl_err *err);
/* PEM (public: SubjectPublicKeyInfo or a certificate; private: PKCS#8 / traditional).
 * Returns new or NULL. */
cl_pkey *cl_pkey_from_pem(const char *pem, size_t len, bool private_key, struct cl_err *err);
cl_pkey *cl_pkey_load_pem(const char *path, bool private_key, struct cl_err *err);
/* Returns a new PEM string (PKCS#8 when private) or NULL. A private PEM is key material:
 * release it with cl_free_wipe(pem, strlen(pem)). */
cl_str *cl_pkey_to_pem(cl_pkey *key, bool private_key, struct cl_err *err);
/* True when both hold the same public key. */
bool cl_pkey_public_equal(cl_pkey *a, cl_pkey *b);

/* ---- JWK (RFC 7517/7518/8037) ---- */

/* Public (or private, when include_private) JWK of key. EC coordinates are fixed-length
 * big-endian (32/48/66 bytes). Members: kty, crv, x, y (EC); kty, n, e (RSA); kty, crv, x
 * (OKP Ed25519); plus "alg" when alg is non-NULL. Returns new or NULL. */
json_t *cl_jwk_from_pkey(cl_pkey *key, bool include_private, const char *alg, struct cl_err *err);
/* Key from a JWK: EC P-256/P-384/P-521 (point checked on the curve, coordinate lengths
 * exact), RSA (CL_RSA_MIN_BITS..CL_RSA_MAX_BITS, e odd and > 1), OKP Ed25519. Private members
 * used when present. Returns new or NULL with the offending member named. */
cl_pkey *cl_jwk_to_pkey(const json_t *jwk, struct cl_err *err);
/* RFC 7638 thumbprint (SHA-256) as base64url. Returns new or NULL. */
cl_str *cl_jwk_thumbprint(const json_t *jwk, struct cl_err *err);

/* ---- JWS compact (RFC 7515) ---- */

/* Algorithms: ES256, ES384, ES512, EdDSA (Ed25519), RS256, RS384, RS512, PS256, PS384,
 * PS512. "none" and HMAC algorithms are never accepted for verification. */

/* Signs payload; header = {"alg": alg} merged with extra_header (borrowed, may be NULL;
 * members of extra_header other than "alg" are kept in their order after "alg"). The key
 * type must fit alg. Returns the new compact serialisation or NULL. */
cl_str *cl_jws_sign(cl_pkey *key, const char *alg, const json_t *extra_header, const void *payload,
                    size_t payload_len, struct cl_err *err);
/* The two halves of cl_jws_sign, for a signer whose header never changes (the attestation
 * service's tokens): the base64url protected header cl_jws_sign would write, then a signature
 * over "<h64>.<payload>" with it. h64 must come from cl_jws_header_b64 with the same alg. */
cl_str *cl_jws_header_b64(const char *alg, const json_t *extra_header, struct cl_err *err);
cl_str *cl_jws_sign_h64(cl_pkey *key, const char *alg, const char *h64, const void *payload,
                        size_t payload_len, struct cl_err *err);

struct cl_jws {
    json_t *header;    /* owned: decoded protected header (an object) */
    const char *alg;   /* borrowed from header */
    cl_bytes *payload; /* owned: decoded payload */
    size_t payload_len;
    cl_str *signing_input; /* owned: "<b64 header>.<b64 payload>" */
    cl_bytes *sig;         /* owned: decoded signature */
    size_t sig_len;
};
/* Splits and decodes a compact JWS (at most CL_JOSE_MAX bytes, exactly three parts,
 * base64url without padding, header a JSON object with a string "alg"). Does NOT verify.
 * On failure *out is left zeroed. */
CL_MUST_CHECK int cl_jws_parse(const char *compact, size_t len, struct cl_jws *out,
                               struct cl_err *err);
/* cl_jws_parse for a verifier that knows one header well: when the header part is exactly
 * known_h64, the header is known_hdr (a new reference; the object that text encodes, as
 * cl_jws_header_b64 wrote it) instead of a decode and a parse. Any other header is parsed. */
CL_MUST_CHECK int cl_jws_parse_known(const char *compact, size_t len, const char *known_h64,
                                     const json_t *known_hdr, struct cl_jws *out,
                                     struct cl_err *err);
void cl_jws_clear(struct cl_jws *jws);
/* Verifies the signature with key; the header alg must be one of the list above and fit
 * the key type and curve. ES* signatures are the raw r||s form of RFC 7518. EVERIFY on a
 * bad signature. */
CL_MUST_CHECK int cl_jws_verify(const struct cl_jws *jws, cl_pkey *key, struct cl_err *err);
/* Raw signature helpers used by JWS (and by TEE verifiers): ES* raw r||s, RSA, EdDSA. */
CL_MUST_CHECK int cl_sig_sign(cl_pkey *key, const char *alg, const void *data, size_t len,
                              cl_bytes **sig, size_t *sig_len, struct cl_err *err);
CL_MUST_CHECK int cl_sig_verify(cl_pkey *key, const char *alg, const void *data, size_t len,
                                const void *sig, size_t sig_len, struct cl_err *err);

/* ---- JWE flattened JSON (RFC 7516), as the KBS protocol seals resources ---- */

/*
 * Seals plaintext to the public JWK `recipient` (borrowed). The key-management algorithm is
 * the JWK's "alg": "ECDH-ES+A256KW" (crv P-256 or P-521), "RSA-OAEP-256", "RSA1_5"
 * (deprecated: logs a warning). Content encryption is A256GCM with a random 96-bit IV and
 * AAD = ASCII of the base64url protected header. The protected header is emitted exactly as
 * the guest client re-serialises it: compact, "alg" then "enc" then the other members sorted
 * by name ("epk" with members crv, kty, x, y). Returns a new object
 * {protected, encrypted_key, iv, ciphertext, tag} or NULL (EUNSUPPORTED for other algs).
 */
json_t *cl_jwe_encrypt(const json_t *recipient, const void *plaintext, size_t len,
                       struct cl_err *err);
/* The same JWE as its compact JSON text (new), members in the order above: what a server
 * sends, without building the object. */
cl_str *cl_jwe_encrypt_text(const json_t *recipient, const void *plaintext, size_t len,
                            struct cl_err *err);
/* Opens a flattened JWE with the private key; the tag is checked before any plaintext is
 * returned. AAD recomputed from the received protected string (plus "." aad when present).
 * The JOSE header is the union of "protected", "unprotected" and the per-recipient "header"
 * (libjose puts "alg"/"epk" there); a name in two of them is refused. EVERIFY for a wrong
 * key, a foreign-curve epk or a bad tag (RSA1_5 padding failures look like a bad tag);
 * EPARSE for malformed members (off-curve epk included); EUNSUPPORTED for other algs.
 * Returns new or NULL. */
struct cl_secret *cl_jwe_decrypt(const json_t *jwe, cl_pkey *priv, struct cl_err *err);

/* ---- X.509 ---- */

/* Trust store from PEM files (each may hold several certificates). Returns new or NULL. */
cl_x509_store *cl_x509_store_load(const char *const *paths, size_t n, struct cl_err *err);
/* Adds one certificate (PEM text) to the store. */
CL_MUST_CHECK int cl_x509_store_add_pem(cl_x509_store *st, const char *pem, size_t len,
                                        struct cl_err *err);
/* Verifies a JWK "x5c" array (standard or url-safe base64 DER; first = leaf, the rest
 * untrusted intermediates) against store at time `at` (0 = now). On success returns the leaf
 * public key (new) in *leaf. EVERIFY with OpenSSL's reason otherwise. */
CL_MUST_CHECK int cl_x509_verify_x5c(const json_t *x5c, cl_x509_store *store, int64_t at,
                                     cl_pkey **leaf, struct cl_err *err);
/* Loads a PEM chain file and returns it as a JSON x5c array (standard base64 DER). */
json_t *cl_x509_pem_to_x5c(const char *path, struct cl_err *err);

#endif
