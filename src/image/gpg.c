/* SPDX-License-Identifier: Apache-2.0 */
/*
 * GPG simple signing through gpgme: the policy's public keys go into a throw-away keyring (a
 * fresh GNUPGHOME per verification, removed afterwards), so that "made by a key in the
 * keyring" means "made by a key the policy names" and nothing from the host's keyrings is
 * ever trusted. Also the cosign signature check (ECDSA, RSA or Ed25519 over the payload).
 */
#include "image/image_int.h"

#include <errno.h>
#include <fcntl.h>
#include <gpgme.h>
#include <openssl/err.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void gpgme_setup(void)
{
    gpgme_check_version(NULL);
}

static int gpg_verify_in(const char *home, const uint8_t *keyring, size_t klen, const uint8_t *sig,
                         size_t slen, cl_bytes **payload, size_t *plen, struct cl_err *err)
{
    gpgme_ctx_t ctx = NULL;
    gpgme_data_t kd = NULL, sd = NULL, pd = NULL;
    int rc = 0;
    gpgme_error_t ge;
    if ((ge = gpgme_new(&ctx)) != 0 ||
        (ge = gpgme_set_protocol(ctx, GPGME_PROTOCOL_OpenPGP)) != 0 ||
        (ge = gpgme_ctx_set_engine_info(ctx, GPGME_PROTOCOL_OpenPGP, NULL, home)) != 0) {
        rc = cl_err_set(err, CL_EIO, "gpg: setup: %s", gpgme_strerror(ge));
        goto out;
    }
    if ((ge = gpgme_data_new_from_mem(&kd, (const char *)keyring, klen, 0)) != 0 ||
        (ge = gpgme_op_import(ctx, kd)) != 0) {
        rc = cl_err_set(err, CL_EPARSE, "gpg: importing the policy's keys: %s", gpgme_strerror(ge));
        goto out;
    }
    gpgme_import_result_t ir = gpgme_op_import_result(ctx);
    if (!ir || ir->imported + ir->unchanged == 0) {
        rc = cl_err_set(err, CL_EPARSE, "gpg: the policy's key data holds no usable public key");
        goto out;
    }
    if ((ge = gpgme_data_new_from_mem(&sd, (const char *)sig, slen, 0)) != 0 ||
        (ge = gpgme_data_new(&pd)) != 0) {
        rc = cl_err_set(err, CL_ENOMEM, "gpg: %s", gpgme_strerror(ge));
        goto out;
    }
    ge = gpgme_op_verify(ctx, sd, NULL, pd);
    if (ge) {
        rc = cl_err_stage(err, CL_EVERIFY, "signature", "gpg: not a signed message: %s",
                          gpgme_strerror(ge));
        goto out;
    }
    gpgme_verify_result_t vr = gpgme_op_verify_result(ctx);
    if (!vr || !vr->signatures) {
        rc = cl_err_stage(err, CL_EVERIFY, "signature", "gpg: the message carries no signature");
        goto out;
    }
    if (vr->signatures->next) {
        rc = cl_err_stage(err, CL_EVERIFY, "signature",
                          "gpg: more than one signature in one message");
        goto out;
    }
    gpgme_signature_t s = vr->signatures;
    if (gpgme_err_code(s->status) == GPG_ERR_NO_PUBKEY) {
        rc = cl_err_stage(err, CL_EVERIFY, "signature",
                          "gpg: signed by %.40s, which is not one of the policy's keys",
                          s->fpr ? s->fpr : "?");
        goto out;
    }
    if (gpgme_err_code(s->status) != GPG_ERR_NO_ERROR) {
        rc = cl_err_stage(err, CL_EVERIFY, "signature",
                          "gpg: signature by %.40s does not verify: %s", s->fpr ? s->fpr : "?",
                          gpgme_strerror(s->status));
        goto out;
    }
    if (s->summary & (GPGME_SIGSUM_RED | GPGME_SIGSUM_KEY_REVOKED | GPGME_SIGSUM_KEY_EXPIRED |
                      GPGME_SIGSUM_SIG_EXPIRED)) {
        rc = cl_err_stage(err, CL_EVERIFY, "signature",
                          "gpg: signature by %.40s is revoked or expired", s->fpr ? s->fpr : "?");
        goto out;
    }
    /* the throw-away keyring holds only the policy's keys */
    gpgme_key_t key = NULL;
    if (!s->fpr || gpgme_get_key(ctx, s->fpr, &key, 0) != 0 || !key) {
        rc = cl_err_stage(err, CL_EVERIFY, "signature",
                          "gpg: signed by %.40s, which is not one of the policy's keys",
                          s->fpr ? s->fpr : "?");
        goto out;
    }
    gpgme_key_unref(key);
    size_t n = 0;
    char *mem = gpgme_data_release_and_get_mem(pd, &n);
    pd = NULL;
    if (!mem || n > CL_IMAGE_MAX_SIGNATURE) {
        gpgme_free(mem);
        rc = cl_err_set(err, CL_ELIMIT, "gpg: signed payload missing or larger than %u bytes",
                        CL_IMAGE_MAX_SIGNATURE);
        goto out;
    }
    cl_bytes *copy = malloc(n + 1);
    if (!copy) {
        gpgme_free(mem);
        rc = cl_err_set(err, CL_ENOMEM, "gpg: out of memory");
        goto out;
    }
    memcpy(copy, mem, n);
    copy[n] = 0;
    gpgme_free(mem);
    *payload = copy;
    *plen = n;
out:
    gpgme_data_release(kd);
    gpgme_data_release(sd);
    gpgme_data_release(pd);
    gpgme_release(ctx);
    return rc;
}

int cl_image_gpg_verify(const uint8_t *keyring, size_t klen, const uint8_t *sig, size_t slen,
                        cl_bytes **payload, size_t *plen, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (!keyring || !klen || !sig || !slen)
        return cl_err_set(err, CL_EINVAL, "gpg: keys and signature are required");
    if (slen > CL_IMAGE_MAX_SIGNATURE)
        return cl_err_set(err, CL_ELIMIT, "gpg: signature larger than %u bytes",
                          CL_IMAGE_MAX_SIGNATURE);
    pthread_once(&g_once, gpgme_setup);
    const char *tmp = getenv("TMPDIR");
    char home[512];
    snprintf(home, sizeof home, "%s/cloister-gpg-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(home))
        return cl_err_set(err, CL_EIO, "gpg: temporary keyring %s: %s", home, strerror(errno));
    int rc = gpg_verify_in(home, keyring, klen, sig, slen, payload, plen, err);
    /* gpg leaves its agent socket and keyring behind: all of it goes */
    char *slash = strrchr(home, '/');
    *slash = 0;
    int dfd = open(home, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        struct cl_err e = {0};
        if (cl_image_rmtree(dfd, slash + 1, &e) < 0)
            cl_warn("gpg: removing the temporary keyring: %s", e.msg);
        close(dfd);
    }
    return rc;
}

/* ---- cosign ---- */

int cl_image_cosign_verify(const char *pem, size_t pemlen, const uint8_t *payload, size_t plen,
                           const char *sig_b64, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    CL_AUTO(cl_pkey) *key = cl_pkey_from_pem(pem, pemlen, false, err);
    if (!key)
        return cl_err_prefix(err, "cosign public key");
    size_t slen = 0;
    CL_AUTO(cl_bytes) *sig = cl_b64_decode(sig_b64, strlen(sig_b64), CL_B64_ANY, 16384, &slen, err);
    if (!sig)
        return cl_err_prefix(err, "cosign signature");
    const EVP_MD *md = EVP_sha256();
    int id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_ED25519) {
        md = NULL;
    } else if (id == EVP_PKEY_EC) {
        int bits = EVP_PKEY_get_bits(key);
        md = bits > 384 ? EVP_sha512() : bits > 256 ? EVP_sha384() : EVP_sha256();
    } else if (id != EVP_PKEY_RSA) {
        return cl_err_set(err, CL_EUNSUPPORTED, "cosign: key type is not EC, RSA or Ed25519");
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return cl_err_set(err, CL_ENOMEM, "cosign: out of memory");
    int ok = EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1 &&
             EVP_DigestVerify(ctx, sig, slen, payload, plen) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    if (!ok)
        return cl_err_stage(err, CL_EVERIFY, "signature",
                            "cosign: signature does not verify with the policy's key");
    return 0;
}
