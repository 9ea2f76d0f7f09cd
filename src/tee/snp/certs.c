/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SEV-SNP certificate chain: find the VEK (VCEK or VLEK) and its ASK/ASVK and ARK among
 * the certificates that came with the evidence, the cache folder and — only when the
 * configuration turns it on — AMD's Key Distribution Service (answers are written to the
 * cache); then check every link at the configured time, with the ARK trusted only by its
 * pinned SHA-256 fingerprint. Then the report signature and the TCB the VEK certifies.
 *
 * Cache folder layout (the paths of the KDS URLs they stand for):
 *   <cache>/<Product>/cert_chain.pem        ASK + ARK        (/vcek/v1/<Product>/cert_chain)
 *   <cache>/<Product>/vlek_cert_chain.pem   ASVK + ARK       (/vlek/v1/<Product>/cert_chain)
 *   <cache>/vcek/<hwid>/<tcb>_vcek.der      one VCEK per TCB (/vcek/v1/<Product>/<hwid>?...)
 *   <cache>/vcek/<hwid>/vcek.der            fallback, any TCB
 * where <hwid> is the lowercase hex chip id (Turin: its first 8 bytes) and <tcb> is
 * "bl03_tee00_snp08_ucode115" (Turin adds "_fmc..").
 */
#include "tee/snp/snp.h"
#include "tee/tee_int.h"

#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "crypto/crypto.h"

/* SHA-256 of the DER of ARK-Milan, ARK-Genoa and ARK-Turin, as AMD's KDS serves them. */
const char *const cl_snp_ark_pins[] = {
    "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd", /* ARK-Milan */
    "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1", /* ARK-Genoa */
    "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a", /* ARK-Turin */
};
const size_t cl_snp_ark_npins = CL_ARRAY_LEN(cl_snp_ark_pins);

#define KDS_DEFAULT "https://kdsintf.amd.com"
#define OID_TCB_BL "1.3.6.1.4.1.3704.1.3.1"
#define OID_TCB_TEE "1.3.6.1.4.1.3704.1.3.2"
#define OID_TCB_SNP "1.3.6.1.4.1.3704.1.3.3"
#define OID_TCB_UCODE "1.3.6.1.4.1.3704.1.3.8"
#define OID_TCB_FMC "1.3.6.1.4.1.3704.1.3.9"
#define OID_HWID "1.3.6.1.4.1.3704.1.4"

enum role { R_OTHER, R_ARK, R_ASK, R_ASVK, R_VCEK, R_VLEK };

static enum role role_of(X509 *c, enum cl_snp_product *p)
{
    char cn[80];
    cl_tee_x509_cn(c, false, cn, sizeof cn);
    static const enum cl_snp_product prods[] = {CL_SNP_MILAN, CL_SNP_GENOA, CL_SNP_TURIN};
    for (size_t i = 0; i < CL_ARRAY_LEN(prods); i++) {
        const char *name = cl_snp_product_name(prods[i]);
        char want[40];
        snprintf(want, sizeof want, "ARK-%s", name);
        if (strcmp(cn, want) == 0)
            return (*p = prods[i], R_ARK);
        snprintf(want, sizeof want, "SEV-%s", name);
        if (strcmp(cn, want) == 0)
            return (*p = prods[i], R_ASK);
        snprintf(want, sizeof want, "SEV-VLEK-%s", name);
        if (strcmp(cn, want) == 0)
            return (*p = prods[i], R_ASVK);
    }
    if (strcmp(cn, "SEV-VCEK") == 0 || strcmp(cn, "VCEK") == 0)
        return R_VCEK;
    if (strcmp(cn, "SEV-VLEK") == 0 || strcmp(cn, "VLEK") == 0)
        return R_VLEK;
    return R_OTHER;
}

/* The product a VEK's issuer names ("SEV-Milan", "SEV-VLEK-Genoa", ...). */
static enum cl_snp_product product_of_issuer(X509 *vek)
{
    char cn[80];
    cl_tee_x509_cn(vek, true, cn, sizeof cn);
    static const enum cl_snp_product prods[] = {CL_SNP_MILAN, CL_SNP_GENOA, CL_SNP_TURIN};
    for (size_t i = 0; i < CL_ARRAY_LEN(prods); i++) {
        char a[40], b[40];
        snprintf(a, sizeof a, "SEV-%s", cl_snp_product_name(prods[i]));
        snprintf(b, sizeof b, "SEV-VLEK-%s", cl_snp_product_name(prods[i]));
        if (strcmp(cn, a) == 0 || strcmp(cn, b) == 0)
            return prods[i];
    }
    return CL_SNP_UNKNOWN;
}

/* Appends copies of every certificate of src (may be NULL) to dst. */
static int pool_add(STACK_OF(X509) * dst, STACK_OF(X509) * src, struct cl_err *err)
{
    for (int i = 0; src && i < sk_X509_num(src); i++) {
        X509 *c = sk_X509_value(src, i);
        if (sk_X509_num(dst) >= 64 || !X509_up_ref(c))
            return cl_err_stage(err, CL_ELIMIT, CL_TEE_STAGE_CHAIN, "too many SNP certificates");
        if (!sk_X509_push(dst, c)) {
            X509_free(c);
            return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CHAIN, "out of memory");
        }
    }
    return 0;
}

/* Adds the certificates of a cache file; an absent file is not an error. */
static int pool_add_file(STACK_OF(X509) * dst, const char *path, struct cl_err *err)
{
    struct cl_err e = {0};
    CL_AUTO(cl_tee_x509s) *sk = cl_tee_x509_load(path, &e);
    if (!sk) {
        if (e.code == CL_ENOTFOUND)
            return 0;
        if (err)
            *err = e;
        err->stage = CL_TEE_STAGE_CHAIN;
        return e.code;
    }
    return pool_add(dst, sk, err);
}

static void hwid_hex(const struct cl_snp_report *r, enum cl_snp_product p, char *out, size_t cap)
{
    size_t n = p == CL_SNP_TURIN ? 8 : 64;
    out[0] = '\0';
    for (size_t i = 0; i < n && 2 * i + 2 < cap; i++)
        snprintf(out + 2 * i, 3, "%02x", r->chip_id[i]);
}

static void tcb_name(const struct cl_snp_report *r, enum cl_snp_product p, char *out, size_t cap)
{
    struct cl_snp_tcb t = cl_snp_tcb_decode(r->reported_tcb, p);
    int n = snprintf(out, cap, "bl%02u_tee%02u_snp%02u_ucode%02u", t.bootloader, t.tee, t.snp,
                     t.microcode);
    if (p == CL_SNP_TURIN && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, "_fmc%02u", t.fmc);
}

static bool all_zero(const uint8_t *b, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= b[i];
    return acc == 0;
}

/* KDS answers waiting to be written to the cache: only once the whole chain verified, so that a
 * bad answer is never kept. */
struct pending {
    char path[2][4096];
    cl_bytes *body[2];
    size_t len[2];
    size_t n;
};

static void pending_clear(struct pending *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->body[i]);
    p->n = 0;
}

static void pending_write(struct pending *p)
{
    for (size_t i = 0; i < p->n; i++) {
        /* the cache is only ever an optimisation: a failure to write it is logged, not fatal */
        struct cl_err we = {0};
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", p->path[i]);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        if (cl_mkdir_p(dir, 0755, &we) < 0 ||
            cl_file_write_atomic(p->path[i], p->body[i], p->len[i], 0644, &we) < 0)
            cl_warn("SNP certificate cache %s: %s", p->path[i], we.msg);
    }
}

/* Fetches url into the pool; the answer is queued for the cache file `cache_path` (may be NULL). */
static int kds_fetch(STACK_OF(X509) * pool, const char *url, const char *cache_path,
                     struct pending *pend, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *body = cl_tee_http_get(url, CL_TEE_MAX_CERT_FILE, &n, NULL, NULL, err);
    if (!body) {
        err->stage = CL_TEE_STAGE_CHAIN;
        return cl_err_prefix(err, "AMD KDS");
    }
    CL_AUTO(cl_tee_x509s) *sk = cl_tee_x509_parse_any(body, n, err);
    if (!sk) {
        err->stage = CL_TEE_STAGE_CHAIN;
        return cl_err_prefix(err, "AMD KDS answer %.200s", url);
    }
    if (cache_path && pend->n < 2) {
        snprintf(pend->path[pend->n], sizeof pend->path[0], "%s", cache_path);
        pend->len[pend->n] = n;
        pend->body[pend->n++] = CL_STEAL(body);
    }
    return pool_add(pool, sk, err);
}

struct chain {
    X509 *vek, *mid, *ark; /* borrowed from the pool */
};

/* Picks the VEK for the report's signer. */
static X509 *find_vek(STACK_OF(X509) * pool, enum cl_snp_signer s)
{
    for (int i = 0; i < sk_X509_num(pool); i++) {
        enum cl_snp_product p = CL_SNP_UNKNOWN;
        enum role r = role_of(sk_X509_value(pool, i), &p);
        if ((s == CL_SNP_VCEK && r == R_VCEK) || (s == CL_SNP_VLEK && r == R_VLEK))
            return sk_X509_value(pool, i);
    }
    return NULL;
}

/* The certificate of `role` for `prod` whose subject is `child`'s issuer. */
static X509 *find_issuer(STACK_OF(X509) * pool, X509 *child, enum role want,
                         enum cl_snp_product prod)
{
    X509 *any = NULL;
    for (int i = 0; i < sk_X509_num(pool); i++) {
        X509 *c = sk_X509_value(pool, i);
        enum cl_snp_product p = CL_SNP_UNKNOWN;
        if (role_of(c, &p) == want && p == prod &&
            X509_NAME_cmp(X509_get_issuer_name(child), X509_get_subject_name(c)) == 0) {
            /* an ARK is only ever the pinned one; a look-alike is kept to name the refusal */
            if (want != R_ARK || cl_tee_x509_pinned(c, cl_snp_ark_pins, cl_snp_ark_npins))
                return c;
            any = any ? any : c;
        }
    }
    return any;
}

static int build_chain(const struct cl_snp_report *r, STACK_OF(X509) * supplied,
                       const struct cl_tee_config *cfg, STACK_OF(X509) * pool, struct chain *ch,
                       enum cl_snp_product *prod, struct pending *pend, struct cl_err *err)
{
    enum cl_snp_signer signer = cl_snp_signer_of(r);
    const char *cache = cfg ? cfg->snp_cert_cache : NULL;
    bool online = cfg && cfg->snp_kds_online;
    const char *kds = cfg && cfg->snp_kds_url ? cfg->snp_kds_url : KDS_DEFAULT;
    char path[4096], url[4096], hwid[130], tcb[64];
    int rc;
    if ((rc = pool_add(pool, supplied, err)) < 0)
        return rc;
    *prod = cl_snp_product_of(r);
    /* ---- the VEK ---- */
    ch->vek = find_vek(pool, signer);
    if (!ch->vek && signer == CL_SNP_VCEK && !all_zero(r->chip_id, sizeof r->chip_id)) {
        enum cl_snp_product hp = *prod == CL_SNP_UNKNOWN ? CL_SNP_MILAN : *prod;
        hwid_hex(r, hp, hwid, sizeof hwid);
        tcb_name(r, hp, tcb, sizeof tcb);
        if (cache) {
            snprintf(path, sizeof path, "%s/vcek/%s/%s_vcek.der", cache, hwid, tcb);
            if ((rc = pool_add_file(pool, path, err)) < 0)
                return rc;
            if (!find_vek(pool, signer)) {
                snprintf(path, sizeof path, "%s/vcek/%s/vcek.der", cache, hwid);
                if ((rc = pool_add_file(pool, path, err)) < 0)
                    return rc;
            }
            ch->vek = find_vek(pool, signer);
        }
        if (!ch->vek && online && *prod != CL_SNP_UNKNOWN) {
            struct cl_snp_tcb t = cl_snp_tcb_decode(r->reported_tcb, *prod);
            char fmc[16] = "";
            if (*prod == CL_SNP_TURIN)
                snprintf(fmc, sizeof fmc, "fmcSPL=%02u&", t.fmc);
            snprintf(url, sizeof url,
                     "%s/vcek/v1/%s/%s?%sblSPL=%02u&teeSPL=%02u&snpSPL=%02u&ucodeSPL=%02u", kds,
                     cl_snp_product_name(*prod), hwid, fmc, t.bootloader, t.tee, t.snp,
                     t.microcode);
            if (cache)
                snprintf(path, sizeof path, "%s/vcek/%s/%s_vcek.der", cache, hwid, tcb);
            if ((rc = kds_fetch(pool, url, cache ? path : NULL, pend, err)) < 0)
                return rc;
            ch->vek = find_vek(pool, signer);
        }
    }
    if (!ch->vek)
        return cl_err_stage(err, CL_ENOTFOUND, CL_TEE_STAGE_CHAIN,
                            "no %s certificate for this report: not in the evidence%s%s",
                            signer == CL_SNP_VCEK ? "VCEK" : "VLEK",
                            cache ? " nor in the cache" : "",
                            online ? " nor at AMD KDS" : " (KDS fetching is off)");
    if (EVP_PKEY_get_base_id(X509_get0_pubkey(ch->vek)) != EVP_PKEY_EC ||
        EVP_PKEY_get_bits(X509_get0_pubkey(ch->vek)) != 384)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN, "the %s key is not EC P-384",
                            signer == CL_SNP_VCEK ? "VCEK" : "VLEK");
    /* ---- the generation: from CPUID, else (version 2) from the VEK's issuer ---- */
    enum cl_snp_product ip = product_of_issuer(ch->vek);
    if (*prod == CL_SNP_UNKNOWN)
        *prod = ip;
    if (*prod == CL_SNP_UNKNOWN)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_CHAIN,
                            "cannot tell the processor generation (CPUID %#x/%#x)", r->cpuid_fam,
                            r->cpuid_mod);
    /* ---- ASK/ASVK and ARK ---- */
    enum role mid_role = signer == CL_SNP_VCEK ? R_ASK : R_ASVK;
    const char *chain_file = signer == CL_SNP_VCEK ? "cert_chain.pem" : "vlek_cert_chain.pem";
    ch->mid = find_issuer(pool, ch->vek, mid_role, *prod);
    if (!ch->mid && cache) {
        snprintf(path, sizeof path, "%s/%s/%s", cache, cl_snp_product_name(*prod), chain_file);
        if ((rc = pool_add_file(pool, path, err)) < 0)
            return rc;
        ch->mid = find_issuer(pool, ch->vek, mid_role, *prod);
    }
    if (!ch->mid && online) {
        snprintf(url, sizeof url, "%s/%s/v1/%s/cert_chain", kds,
                 signer == CL_SNP_VCEK ? "vcek" : "vlek", cl_snp_product_name(*prod));
        snprintf(path, sizeof path, "%s/%s/%s", cache ? cache : "", cl_snp_product_name(*prod),
                 chain_file);
        if ((rc = kds_fetch(pool, url, cache ? path : NULL, pend, err)) < 0)
            return rc;
        ch->mid = find_issuer(pool, ch->vek, mid_role, *prod);
    }
    char icn[80];
    cl_tee_x509_cn(ch->vek, true, icn, sizeof icn);
    if (!ch->mid)
        return cl_err_stage(err, CL_ENOTFOUND, CL_TEE_STAGE_CHAIN, "no %s certificate '%s' for %s",
                            mid_role == R_ASK ? "ASK" : "ASVK", icn, cl_snp_product_name(*prod));
    ch->ark = find_issuer(pool, ch->mid, R_ARK, *prod);
    if (!ch->ark && cache) {
        snprintf(path, sizeof path, "%s/%s/cert_chain.pem", cache, cl_snp_product_name(*prod));
        if ((rc = pool_add_file(pool, path, err)) < 0)
            return rc;
        ch->ark = find_issuer(pool, ch->mid, R_ARK, *prod);
    }
    if (!ch->ark)
        return cl_err_stage(err, CL_ENOTFOUND, CL_TEE_STAGE_CHAIN, "no ARK certificate for %s",
                            cl_snp_product_name(*prod));
    return 0;
}

static int check_chain(const struct chain *ch, int64_t at, struct cl_err *err)
{
    if (!cl_tee_x509_pinned(ch->ark, cl_snp_ark_pins, cl_snp_ark_npins))
        return cl_err_stage(
            err, CL_EVERIFY, CL_TEE_STAGE_CHAIN,
            "the ARK certificate is not one of AMD's pinned root keys (SHA-256 fingerprint)");
    X509 *const certs[] = {ch->ark, ch->mid, ch->vek};
    struct cl_tee_cache_key key;
    cl_tee_cache_key_certs("snp-chain", certs, 3, NULL, 0, &key);
    if (cl_tee_cache_hit(&key, at))
        return 0;
    int rc;
    if ((rc = cl_tee_x509_link(ch->ark, ch->ark, at, "ARK", err)) < 0 ||
        (rc = cl_tee_x509_link(ch->mid, ch->ark, at, "ASK", err)) < 0 ||
        (rc = cl_tee_x509_link(ch->vek, ch->mid, at, "VEK", err)) < 0) {
        err->stage = CL_TEE_STAGE_CHAIN;
        return rc;
    }
    int64_t nb = 0, na = 0;
    cl_tee_certs_window(certs, 3, &nb, &na);
    cl_tee_cache_put(&key, nb, na);
    return 0;
}

static int check_signature(const struct cl_snp_report *r, X509 *vek, struct cl_err *err)
{
    /* r and s are 72-byte little-endian fields; P-384 needs 48 big-endian bytes each */
    uint8_t sig[96];
    for (size_t i = 0; i < 72; i++) {
        if (i >= 48 && (r->sig_r[i] | r->sig_s[i]))
            return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                                "SNP report signature: r or s out of range");
        if (i < 48) {
            sig[47 - i] = r->sig_r[i];
            sig[95 - i] = r->sig_s[i];
        }
    }
    EVP_PKEY *k = X509_get0_pubkey(vek);
    struct cl_err e = {0};
    if (cl_sig_verify(k, "ES384", r->raw, CL_SNP_SIGNED_SIZE, sig, sizeof sig, &e) < 0)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_SIGNATURE,
                            "SNP report signature does not verify with the %s",
                            cl_snp_signer_of(r) == CL_SNP_VCEK ? "VCEK" : "VLEK");
    return 0;
}

/* An extension whose payload is one DER INTEGER in 0..255. */
static int ext_u8(X509 *c, const char *oid, const char *what, int *out, struct cl_err *err)
{
    const uint8_t *d = NULL;
    size_t n = 0;
    if (cl_tee_x509_ext(c, oid, &d, &n, err) < 0) {
        err->stage = CL_TEE_STAGE_TCB;
        return cl_err_prefix(err, "VEK %s", what);
    }
    const unsigned char *p = d;
    ASN1_INTEGER *ai = d2i_ASN1_INTEGER(NULL, &p, (long)n);
    int64_t v = -1;
    bool ok = ai && p == d + n && ASN1_INTEGER_get_int64(&v, ai) == 1 && v >= 0 && v <= 255;
    ASN1_INTEGER_free(ai);
    if (!ok)
        return cl_err_stage(err, CL_EPARSE, CL_TEE_STAGE_TCB,
                            "VEK %s extension is not an integer 0..255", what);
    *out = (int)v;
    return 0;
}

int cl_snp_check_tcb(const struct cl_snp_report *r, X509 *vek, enum cl_snp_product p,
                     struct cl_err *err)
{
    CL_TEE_ERR(err);
    struct cl_snp_tcb t = cl_snp_tcb_decode(r->reported_tcb, p);
    const struct {
        const char *oid, *what;
        int reported;
    } f[] = {
        {OID_TCB_BL, "bootloader", t.bootloader},
        {OID_TCB_TEE, "tee", t.tee},
        {OID_TCB_SNP, "snp", t.snp},
        {OID_TCB_UCODE, "microcode", t.microcode},
        {OID_TCB_FMC, "fmc", t.fmc},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(f); i++) {
        if (strcmp(f[i].what, "fmc") == 0 && p != CL_SNP_TURIN)
            continue;
        int v = -1;
        if (ext_u8(vek, f[i].oid, f[i].what, &v, err) < 0)
            return err->code;
        if (v != f[i].reported)
            return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB,
                                "reported TCB %s SVN %d differs from %d in the certificate",
                                f[i].what, f[i].reported, v);
    }
    if (cl_snp_signer_of(r) != CL_SNP_VCEK || all_zero(r->chip_id, sizeof r->chip_id))
        return 0;
    const uint8_t *d = NULL;
    size_t n = 0;
    struct cl_err e = {0};
    if (cl_tee_x509_ext(vek, OID_HWID, &d, &n, &e) < 0)
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB, "VCEK has no hwID extension");
    /* two encodings in the field: the raw id, or a DER OCTET STRING around it */
    if (n >= 2 && d[0] == 0x04 && (size_t)d[1] == n - 2 && (n - 2 == 64 || n - 2 == 8)) {
        d += 2;
        n -= 2;
    }
    if ((n != 64 && n != 8) || !cl_memeq_ct(d, r->chip_id, n))
        return cl_err_stage(err, CL_EVERIFY, CL_TEE_STAGE_TCB,
                            "VCEK hwID differs from the report's CHIP_ID");
    return 0;
}

int cl_snp_verify_hw(const struct cl_snp_report *r, STACK_OF(X509) * supplied,
                     const struct cl_tee_config *cfg, enum cl_snp_product *product_out,
                     struct cl_err *err)
{
    CL_TEE_ERR(err);
    CL_AUTO(cl_tee_x509s) *pool = sk_X509_new_null();
    if (!pool)
        return cl_err_stage(err, CL_ENOMEM, CL_TEE_STAGE_CHAIN, "out of memory");
    struct chain ch = {0};
    enum cl_snp_product p = CL_SNP_UNKNOWN;
    struct pending pend __attribute__((cleanup(pending_clear))) = {0};
    int rc;
    if ((rc = build_chain(r, supplied, cfg, pool, &ch, &p, &pend, err)) < 0 ||
        (rc = check_chain(&ch, cl_tee_time(cfg), err)) < 0 ||
        (rc = check_signature(r, ch.vek, err)) < 0 ||
        (rc = cl_snp_check_tcb(r, ch.vek, p, err)) < 0)
        return rc;
    pending_write(&pend);
    if (product_out)
        *product_out = p;
    return 0;
}
