/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test driver for crypto-interop.sh: exposes src/crypto on the command line so that its
 * output can be checked by independent tools (jose, openssl) and theirs by it. The
 * "gcm-open" subcommand deliberately does NOT use src/crypto: it opens the A256GCM part of a
 * JWE with a CEK recovered elsewhere (openssl pkeyutl), through EVP directly.
 *
 *   crypto_tool jwk KEYFILE [ALG [private]]   JWK of a PEM key (public unless "private"; ALG "" =
 * none) crypto_tool seal JWKFILE INFILE           flattened JWE of INFILE for the JWK (its "alg")
 *   crypto_tool open KEYFILE JWEFILE          plaintext of a JWE (key: PEM or JWK)
 *   crypto_tool gcm-open CEKFILE JWEFILE      plaintext using the raw 32-byte CEK in CEKFILE
 *   crypto_tool get JSONFILE MEMBER           a string member of a JSON object
 *   crypto_tool sign KEYFILE ALG INFILE       compact JWS of INFILE
 *   crypto_tool verify KEYFILE JWSFILE        payload of a JWS whose signature verifies
 *
 * Exit status: 0 ok, the CLI codes of cl_err_exit_code() on failure, 2 on usage.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "crypto/crypto.h"

#define MAX_FILE (16u << 20)

static int fail(const struct cl_err *err)
{
    fprintf(stderr, "crypto_tool: %s (%s)\n", err->msg, cl_err_name(err->code));
    return cl_err_exit_code(err->code);
}

static cl_bytes *slurp(const char *path, size_t *len, struct cl_err *err)
{
    cl_bytes *b = cl_file_read(path, MAX_FILE, len, err);
    if (!b)
        cl_err_prefix(err, "%s", path);
    return b;
}

static json_t *read_json(const char *path, struct cl_err *err)
{
    size_t len = 0;
    CL_AUTO(cl_bytes) *b = slurp(path, &len, err);
    return b ? cl_json_parse((const char *)b, len, 32, err) : NULL;
}

/* A key from a PEM file (private first, then public) or a JWK file. */
static cl_pkey *read_key(const char *path, struct cl_err *err)
{
    size_t len = 0;
    CL_AUTO(cl_bytes) *b = slurp(path, &len, err);
    if (!b)
        return NULL;
    size_t i = 0;
    while (i < len && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t'))
        i++;
    if (i < len && b[i] == '{') {
        CL_AUTO(json_t) *j = cl_json_parse((const char *)b, len, 32, err);
        return j ? cl_jwk_to_pkey(j, err) : NULL;
    }
    cl_pkey *k = cl_pkey_from_pem((const char *)b, len, true, err);
    return k ? k : cl_pkey_from_pem((const char *)b, len, false, err);
}

static int write_all(const void *buf, size_t len)
{
    return fwrite(buf, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : 1;
}

static int print_json(const json_t *j)
{
    CL_AUTO(cl_str) *s = cl_json_compact(j);
    return s ? write_all(s, strlen(s)) || write_all("\n", 1) : 1;
}

static int cmd_jwk(int argc, char **argv, struct cl_err *err)
{
    CL_AUTO(cl_pkey) *k = read_key(argv[0], err);
    if (!k)
        return fail(err);
    bool priv = argc > 2 && strcmp(argv[2], "private") == 0;
    CL_AUTO(json_t) *j = cl_jwk_from_pkey(k, priv, argc > 1 && argv[1][0] ? argv[1] : NULL, err);
    return j ? print_json(j) : fail(err);
}

static int cmd_seal(char **argv, struct cl_err *err)
{
    CL_AUTO(json_t) *jwk = read_json(argv[0], err);
    size_t len = 0;
    CL_AUTO(cl_bytes) *pt = jwk ? slurp(argv[1], &len, err) : NULL;
    if (!pt)
        return fail(err);
    CL_AUTO(json_t) *jwe = cl_jwe_encrypt(jwk, pt, len, err);
    return jwe ? print_json(jwe) : fail(err);
}

static int cmd_open(char **argv, struct cl_err *err)
{
    CL_AUTO(cl_pkey) *k = read_key(argv[0], err);
    CL_AUTO(json_t) *jwe = k ? read_json(argv[1], err) : NULL;
    if (!jwe)
        return fail(err);
    CL_AUTO(cl_secret) *pt = cl_jwe_decrypt(jwe, k, err);
    return pt ? write_all(pt->data, pt->len) : fail(err);
}

/* b64url member into a new buffer, independent of the module's JWE code. */
static cl_bytes *member(const json_t *o, const char *name, size_t *len, struct cl_err *err)
{
    const char *s = NULL;
    if (cl_json_get_str(o, name, &s, err) < 0)
        return NULL;
    return cl_b64_decode(s, strlen(s), CL_B64_URL, MAX_FILE, len, err);
}

static int cmd_gcm_open(char **argv, struct cl_err *err)
{
    size_t cek_len = 0, iv_len = 0, ct_len = 0, tag_len = 0;
    CL_AUTO(cl_bytes) *cek = slurp(argv[0], &cek_len, err);
    CL_AUTO(json_t) *jwe = cek ? read_json(argv[1], err) : NULL;
    if (!jwe)
        return fail(err);
    const char *prot = NULL;
    CL_AUTO(cl_bytes) *iv = member(jwe, "iv", &iv_len, err);
    CL_AUTO(cl_bytes) *ct = iv ? member(jwe, "ciphertext", &ct_len, err) : NULL;
    CL_AUTO(cl_bytes) *tag = ct ? member(jwe, "tag", &tag_len, err) : NULL;
    if (!tag || cl_json_get_str(jwe, "protected", &prot, err) < 0)
        return fail(err);
    if (cek_len != 32 || iv_len != 12 || tag_len != 16) {
        fprintf(stderr, "crypto_tool: bad sizes cek=%zu iv=%zu tag=%zu\n", cek_len, iv_len,
                tag_len);
        return 3;
    }
    CL_AUTO(cl_bytes) *pt = malloc(ct_len + 1);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0,
        ok =
            pt && ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
            EVP_DecryptInit_ex(ctx, NULL, NULL, cek, iv) == 1 &&
            EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)prot, (int)strlen(prot)) == 1 &&
            EVP_DecryptUpdate(ctx, pt, &n, ct, (int)ct_len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
    int m = 0;
    ok = ok && EVP_DecryptFinal_ex(ctx, pt + n, &m) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        fprintf(stderr, "crypto_tool: AES-256-GCM open failed\n");
        return 4;
    }
    return write_all(pt, (size_t)n + (size_t)m);
}

static int cmd_get(char **argv, struct cl_err *err)
{
    CL_AUTO(json_t) *j = read_json(argv[0], err);
    const char *s = NULL;
    if (!j || cl_json_get_str(j, argv[1], &s, err) < 0)
        return fail(err);
    return write_all(s, strlen(s));
}

static int cmd_sign(char **argv, struct cl_err *err)
{
    CL_AUTO(cl_pkey) *k = read_key(argv[0], err);
    size_t len = 0;
    CL_AUTO(cl_bytes) *pt = k ? slurp(argv[2], &len, err) : NULL;
    if (!pt)
        return fail(err);
    CL_AUTO(cl_str) *jws = cl_jws_sign(k, argv[1], NULL, pt, len, err);
    return jws ? write_all(jws, strlen(jws)) : fail(err);
}

static int cmd_verify(char **argv, struct cl_err *err)
{
    CL_AUTO(cl_pkey) *k = read_key(argv[0], err);
    size_t len = 0;
    CL_AUTO(cl_bytes) *text = k ? slurp(argv[1], &len, err) : NULL;
    if (!text)
        return fail(err);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    struct cl_jws jws;
    if (cl_jws_parse((const char *)text, len, &jws, err) < 0)
        return fail(err);
    int rc = cl_jws_verify(&jws, k, err) < 0 ? fail(err) : write_all(jws.payload, jws.payload_len);
    cl_jws_clear(&jws);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int min_args, max_args;
    } cmds[] = {{"jwk", 1, 3}, {"seal", 2, 2}, {"open", 2, 2},  {"gcm-open", 2, 2},
                {"get", 2, 2}, {"sign", 3, 3}, {"verify", 2, 2}};
    struct cl_err err = {0};
    for (size_t i = 0; argc >= 2 && i < CL_ARRAY_LEN(cmds); i++) {
        if (strcmp(argv[1], cmds[i].name) != 0)
            continue;
        int n = argc - 2;
        if (n < cmds[i].min_args || n > cmds[i].max_args)
            break;
        char **a = argv + 2;
        switch (i) {
        case 0:
            return cmd_jwk(n, a, &err);
        case 1:
            return cmd_seal(a, &err);
        case 2:
            return cmd_open(a, &err);
        case 3:
            return cmd_gcm_open(a, &err);
        case 4:
            return cmd_get(a, &err);
        case 5:
            return cmd_sign(a, &err);
        default:
            return cmd_verify(a, &err);
        }
    }
    fprintf(stderr,
            "usage: crypto_tool jwk|seal|open|gcm-open|get|sign|verify ARGS (see the source)\n");
    return 2;
}
