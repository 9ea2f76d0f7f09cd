/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent: picks the attester, binds init-data at start, answers evidence, hands out KBS
 * tokens from a cache (one RCAR per token lifetime, the TEE key kept with its token), and
 * records runtime measurements durably: the event goes to a write-ahead file (fsync) before
 * the register is extended, then into the log (fsync), then the write-ahead file goes away.
 * A write-ahead file found at start is replayed into the log at its recorded offset.
 * Evidence is taken under the same lock as extends, so that a quote and the event log it
 * travels with (TDX cc_eventlog) describe the same register values.
 */
#include "aa/aa.h"
#include "kbs/kbs_client.h"
#include "net/http.h"
#include "tee/tdx/tdx.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct cl_aa {
    const struct cl_aa_config *cfg;
    struct cl_aa_platform platform;
    const struct cl_aa_attester *att;
    struct cl_aa_initdata initdata;
    bool have_initdata;
    pthread_mutex_t token_lock;
    cl_str *token;
    cl_pkey *tee_key;
    int64_t token_exp;
    pthread_mutex_t log_lock;
    char *log_path, *wal_path;
};

const char *cl_aa_tee(const struct cl_aa *aa)
{
    return aa->att->tee;
}

/* ---- event log files ---- */

static int fsync_path_dir(const char *path)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    char *s = strrchr(dir, '/');
    if (!s)
        return 0;
    *s = 0;
    int fd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

/* Writes buf at offset off of path (created 0600), truncating what follows, then fsync. */
static int write_at(const char *path, uint64_t off, const void *buf, size_t len, struct cl_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return cl_err_set(err, CL_EIO, "%s: %s", path, strerror(errno));
    int rc = 0;
    if (ftruncate(fd, (off_t)off) < 0 || pwrite(fd, buf, len, (off_t)off) != (ssize_t)len ||
        fsync(fd) < 0)
        rc = cl_err_set(err, CL_EIO, "%s: %s", path, strerror(errno));
    close(fd);
    return rc;
}

static int wal_write(struct cl_aa *aa, uint64_t off, const uint8_t *entry, size_t len,
                     struct cl_err *err)
{
    CL_AUTO(cl_bytes) *rec = malloc(8 + len);
    if (!rec)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    for (int i = 0; i < 8; i++)
        rec[i] = (uint8_t)(off >> (56 - 8 * i));
    memcpy(rec + 8, entry, len);
    if (write_at(aa->wal_path, 0, rec, 8 + len, err) < 0)
        return err->code;
    return fsync_path_dir(aa->wal_path) < 0
               ? cl_err_set(err, CL_EIO, "fsync of %s's folder failed", aa->wal_path)
               : 0;
}

/* A write-ahead record left by a crash: put its entry at its offset (the register extend
 * before the crash may or may not have happened; the log keeps the event either way). */
static int wal_recover(struct cl_aa *aa, struct cl_err *err)
{
    size_t n = 0;
    struct cl_err e = {0};
    CL_AUTO(cl_bytes) *rec = cl_file_read(aa->wal_path, CL_AA_MAX_EVENT_TEXT + 256, &n, &e);
    if (!rec)
        return e.code == CL_ENOTFOUND
                   ? 0
                   : cl_err_set(err, e.code, "event log write-ahead record: %s", e.msg);
    struct cl_cursor c = cl_cursor_init(rec, n);
    uint64_t off = 0;
    if (cl_cursor_be64(&c, &off) < 0 || cl_cursor_left(&c) < 16 || off > CL_AA_MAX_EVENTLOG) {
        cl_warn("event log: discarding a torn write-ahead record %s", aa->wal_path);
        unlink(aa->wal_path);
        return 0;
    }
    cl_warn("event log: replaying the write-ahead record at offset %llu (the register extend may "
            "be missing)",
            (unsigned long long)off);
    if (write_at(aa->log_path, off, rec + 8, n - 8, err) < 0)
        return err->code;
    unlink(aa->wal_path);
    return 0;
}

static unsigned ccmr_of(const struct cl_aa *aa, unsigned pcr)
{
    return strcmp(aa->att->tee, "tdx") == 0 ? cl_tdx_pcr_to_ccmr(pcr) : pcr;
}

int cl_aa_extend(struct cl_aa *aa, const char *domain, const char *operation, const char *content,
                 int64_t pcr, enum cl_aa_extend_result *result, struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    if (!aa->cfg->enable_eventlog) {
        *result = CL_AA_EXTEND_NOT_ENABLED;
        return 0;
    }
    if (!aa->att->extend) {
        *result = CL_AA_EXTEND_NOT_SUPPORTED;
        return 0;
    }
    if (cl_aa_event_check(domain, operation, content, err) < 0)
        return err->code;
    if (pcr > 23)
        return cl_err_set(err, CL_EINVAL, "register index %lld is out of range 0..23",
                          (long long)pcr);
    unsigned reg = pcr < 0 ? aa->cfg->init_pcr : (unsigned)pcr;
    CL_AUTO(cl_str) *text = cl_strdupf("%s %s %s", domain, operation, content);
    if (!text)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    uint8_t digest[CL_HASH_MAX];
    size_t elen = 0;
    /* upstream's entry names the register of init_pcr whatever the request asked for */
    CL_AUTO(cl_bytes) *entry = cl_aa_aael_entry(ccmr_of(aa, aa->cfg->init_pcr),
                                                aa->att->eventlog_hash, text, &elen, digest, err);
    if (!entry)
        return err->code;
    pthread_mutex_lock(&aa->log_lock);
    int rc = 0;
    struct stat st;
    uint64_t off = stat(aa->log_path, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (off + elen > CL_AA_MAX_EVENTLOG)
        rc = cl_err_set(err, CL_ELIMIT, "event log %s is full (%d bytes)", aa->log_path,
                        CL_AA_MAX_EVENTLOG);
    if (rc == 0)
        rc = wal_write(aa, off, entry, elen, err);
    if (rc == 0)
        rc = aa->att->extend(&aa->platform, reg, digest, cl_hash_len(aa->att->eventlog_hash), err);
    if (rc == 0)
        rc = write_at(aa->log_path, off, entry, elen, err);
    if (rc == 0)
        unlink(aa->wal_path);
    else if (off + elen <= CL_AA_MAX_EVENTLOG)
        unlink(aa->wal_path); /* nothing was extended or the log write failed loudly */
    pthread_mutex_unlock(&aa->log_lock);
    if (rc == 0)
        *result = CL_AA_EXTEND_OK;
    return rc;
}

/* ---- evidence, init-data ---- */

cl_str *cl_aa_get_evidence(struct cl_aa *aa, const uint8_t *rd, size_t len, struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    if (len > CL_AA_MAX_RUNTIME_DATA) {
        cl_err_set(err, CL_ELIMIT, "runtime data of %zu bytes exceeds %d", len,
                   CL_AA_MAX_RUNTIME_DATA);
        return NULL;
    }
    if (aa->att->insecure)
        cl_insecure("allow_sample_attester_insecure",
                    "evidence from the sample attester proves nothing");
    pthread_mutex_lock(&aa->log_lock);
    CL_AUTO(json_t) *ev = aa->att->evidence(&aa->platform, rd, len, err);
    pthread_mutex_unlock(&aa->log_lock);
    if (!ev)
        return NULL;
    cl_str *s = cl_json_compact(ev);
    if (!s)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return s;
}

int cl_aa_bind_init_data(struct cl_aa *aa, const uint8_t *digest, size_t len, struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    if (len == 0 || len > CL_HASH_MAX)
        return cl_err_set(err, CL_EINVAL, "init-data digest of %zu bytes (1..%d expected)", len,
                          CL_HASH_MAX);
    if (!aa->att->bind_init_data)
        return cl_err_set(err, CL_EUNSUPPORTED, "the %s attester cannot bind init-data",
                          aa->att->tee);
    return aa->att->bind_init_data(&aa->platform, digest, len, err);
}

static int load_initdata(struct cl_aa *aa, const struct cl_aa_opts *o, struct cl_err *err)
{
    uint8_t digest[CL_HASH_MAX];
    size_t dlen = 0;
    if (o->initdata_toml_path) {
        size_t n = 0;
        CL_AUTO(cl_bytes) *text = cl_file_read(o->initdata_toml_path, CL_AA_INITDATA_MAX, &n, err);
        if (!text || cl_aa_initdata_parse((const char *)text, n, &aa->initdata, err) < 0)
            return cl_err_prefix(err, "%s", o->initdata_toml_path);
        aa->have_initdata = true;
        memcpy(digest, aa->initdata.digest, aa->initdata.digest_len);
        dlen = aa->initdata.digest_len;
    } else if (o->initdata_digest_b64) {
        size_t n = 0;
        CL_AUTO(cl_bytes) *d = cl_b64_decode(o->initdata_digest_b64, strlen(o->initdata_digest_b64),
                                             CL_B64_ANY, CL_HASH_MAX, &n, err);
        if (!d)
            return cl_err_prefix(err, "--initdata-digest");
        memcpy(digest, d, n);
        dlen = n;
    } else {
        return 0;
    }
    int rc = cl_aa_bind_init_data(aa, digest, dlen, err);
    if (rc == CL_EUNSUPPORTED) {
        cl_warn("init-data: %s; the KBS checks it from the attestation request only", err->msg);
        return 0;
    }
    return rc;
}

/* ---- tokens ---- */

static json_t *evidence_cb(void *ctx, const uint8_t *rd, size_t len, struct cl_err *err)
{
    struct cl_aa *aa = ctx;
    if (aa->att->insecure)
        cl_insecure("allow_sample_attester_insecure",
                    "attesting to the KBS with the sample attester");
    pthread_mutex_lock(&aa->log_lock);
    json_t *ev = aa->att->evidence(&aa->platform, rd, len, err);
    pthread_mutex_unlock(&aa->log_lock);
    return ev;
}

/* Device evidence (GPUs) for the KBS handshake: "" when the VM has none. */
static cl_str *additional_cb(void *ctx, const uint8_t *rd, size_t len, struct cl_err *err)
{
    (void)ctx;
    return cl_aa_additional_evidence(rd, len, err);
}

void cl_aa_token_invalidate(struct cl_aa *aa)
{
    pthread_mutex_lock(&aa->token_lock);
    free(aa->token);
    EVP_PKEY_free(aa->tee_key);
    aa->token = NULL;
    aa->tee_key = NULL;
    pthread_mutex_unlock(&aa->token_lock);
}

static cl_str *kbs_token(struct cl_aa *aa, struct cl_err *err)
{
    if (!aa->cfg->kbs_url) {
        cl_err_set(err, CL_ENOTFOUND,
                   "token type kbs: no [token_configs.kbs] in the configuration");
        return NULL;
    }
    pthread_mutex_lock(&aa->token_lock);
    int64_t now = cl_now_unix();
    if (aa->token && (aa->token_exp == 0 || aa->token_exp - CL_AA_TOKEN_LEEWAY_S <= now)) {
        free(aa->token);
        EVP_PKEY_free(aa->tee_key);
        aa->token = NULL;
        aa->tee_key = NULL;
    }
    int rc = 0;
    if (!aa->token) {
        struct cl_kbs_client_opts ko = {
            .url = aa->cfg->kbs_url,
            .ca_pem = aa->cfg->kbs_cert,
            .tee = aa->att->tee,
            .key_kind = aa->cfg->tee_key_algorithm,
            .init_data = aa->have_initdata ? aa->initdata.text : NULL,
            .evidence = evidence_cb,
            .additional = additional_cb,
            .evidence_ctx = aa,
            .tries = CL_AA_RCAR_TRIES,
            .timeout_ms = CL_AA_KBS_TIMEOUT_MS,
            .max_response = 1u << 20,
        };
        rc = cl_kbs_client_handshake(&ko, &aa->token, &aa->tee_key, &aa->token_exp, err);
        if (rc == 0)
            cl_info("new KBS token (exp %lld)", (long long)aa->token_exp);
    } else {
        cl_debug("KBS token from the cache (exp %lld)", (long long)aa->token_exp);
    }
    cl_str *out = NULL;
    if (rc == 0) {
        CL_AUTO(cl_str) *pem = cl_kbs_tee_key_pem(aa->tee_key, err);
        CL_AUTO(json_t) *j =
            pem ? json_pack("{s:s, s:s}", "token", aa->token, "tee_keypair", pem) : NULL;
        out = j ? cl_json_compact(j) : NULL;
        if (pem)
            explicit_bzero(pem, strlen(pem));
        if (!out && pem)
            cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    pthread_mutex_unlock(&aa->token_lock);
    return out;
}

static cl_str *coco_as_token(struct cl_aa *aa, struct cl_err *err);

cl_str *cl_aa_get_token(struct cl_aa *aa, const char *type, struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    if (strcmp(type, "kbs") == 0)
        return kbs_token(aa, err);
    if (strcmp(type, CL_AA_TOKEN_KBS_REFRESH) == 0) {
        cl_aa_token_invalidate(aa);
        return kbs_token(aa, err);
    }
    if (strcmp(type, "coco_as") == 0)
        return coco_as_token(aa, err);
    cl_err_set(err, CL_ENOTFOUND, "token type '%.32s' is not supported (kbs, coco_as)", type);
    return NULL;
}

static cl_str *coco_as_token(struct cl_aa *aa, struct cl_err *err)
{
    if (!aa->cfg->coco_as_url) {
        cl_err_set(err, CL_ENOTFOUND,
                   "token type coco_as: no [token_configs.coco_as] in the configuration");
        return NULL;
    }
    CL_AUTO(json_t) *ev = evidence_cb(aa, NULL, 0, err);
    CL_AUTO(cl_str) *evtext = ev ? cl_json_compact(ev) : NULL;
    CL_AUTO(cl_str) *ev64 = evtext ? cl_b64_encode(evtext, strlen(evtext), CL_B64_URL) : NULL;
    CL_AUTO(json_t) *body = ev64 ? json_pack("{s:[{s:s, s:s}], s:[]}", "verification_requests",
                                             "tee", aa->att->tee, "evidence", ev64, "policy_ids")
                                 : NULL;
    CL_AUTO(cl_str) *text = body ? cl_json_compact(body) : NULL;
    CL_AUTO(cl_str) *url = cl_strdupf("%s/attestation", aa->cfg->coco_as_url);
    if (!text || !url) {
        if (ev)
            cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    struct cl_http_client_opts ho = {.timeout_ms = CL_AA_KBS_TIMEOUT_MS, .max_response = 1u << 20};
    struct cl_http_client *h = cl_http_client_new(&ho, err);
    if (!h)
        return NULL;
    static const char *const hdrs[] = {"Content-Type: application/json", NULL};
    struct cl_http_result r = {0};
    int rc = cl_http_request(h, "POST", url, hdrs, text, strlen(text), &r, err);
    cl_http_client_free(h);
    cl_str *out = NULL;
    if (rc == 0 && r.status != 200)
        cl_err_set(err, CL_EIO, "coco_as: HTTP %ld", r.status);
    else if (rc == 0)
        out = strndup((const char *)r.body, r.body_len);
    cl_http_result_clear(&r);
    return out;
}

/* ---- life cycle ---- */

struct cl_aa *cl_aa_new(const struct cl_aa_opts *o, struct cl_err *err)
{
    struct cl_err local_err;
    if (!err)
        err = &local_err; /* callers may pass NULL; the code below reads err->code */
    const struct cl_aa_config *cfg = o->cfg;
    const struct cl_aa_attester *att = NULL;
    struct cl_aa_platform plat = o->platform;
    if (cfg->tpm_tcti)
        plat.tpm_tcti = cfg->tpm_tcti;
    if (cfg->attester) {
        att = cl_aa_attester_find(cfg->attester);
        if (!att) {
            cl_err_set(err, CL_EINVAL,
                       "attester '%.32s' is not in this build (tdx, snp, tpm, sample)",
                       cfg->attester);
            return NULL;
        }
        /* upstream aborts when a detected attester cannot be instantiated; a named one that is
         * not there is the same failure, found now rather than at the first evidence */
        if (!att->insecure && !att->detect(&plat)) {
            cl_err_set(err, CL_ENOTFOUND,
                       "attester '%s' was asked for but its device is not available here",
                       att->tee);
            return NULL;
        }
    } else {
        att = cl_aa_attester_detect(&plat);
    }
    if (!att) {
        if (!cfg->allow_sample_attester_insecure) {
            cl_err_set(err, CL_EDENIED,
                       "no TEE found (tdx, snp, tpm) and the sample attester is refused: it proves "
                       "nothing (set "
                       "allow_sample_attester_insecure = true in aa.toml for tests)");
            return NULL;
        }
        att = cl_aa_attester_find("sample");
    }
    if (att->insecure) {
        if (!cfg->allow_sample_attester_insecure) {
            cl_err_set(err, CL_EDENIED,
                       "the sample attester proves nothing and is refused unless "
                       "allow_sample_attester_insecure = true");
            return NULL;
        }
        cl_insecure("allow_sample_attester_insecure",
                    "the attestation agent runs with the sample attester");
    }
    if (strcmp(att->tee, "tpm") == 0) {
        cl_warn("tpm attester: the evidence proves the TPM's PCRs (measured boot), not a TEE's "
                "memory protection");
        if (cfg->enable_eventlog && cfg->init_pcr >= 17 && cfg->init_pcr <= 22)
            cl_warn("tpm attester: init_pcr %u cannot be extended from locality 0; runtime "
                    "measurements will "
                    "fail (set [eventlog_config] init_pcr = 23)",
                    cfg->init_pcr);
    }
    struct cl_aa *aa = calloc(1, sizeof *aa);
    if (!aa) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    aa->cfg = cfg;
    aa->platform = plat;
    aa->att = att;
    pthread_mutex_init(&aa->token_lock, NULL);
    pthread_mutex_init(&aa->log_lock, NULL);
    const char *lp = cfg->eventlog_path ? cfg->eventlog_path : CL_AA_EVENTLOG_PATH;
    aa->log_path = strdup(lp);
    aa->wal_path =
        cl_strdupf("%.*s/.wal_event_entry", (int)(strrchr(lp, '/') ? strrchr(lp, '/') - lp : 1),
                   strrchr(lp, '/') ? lp : ".");
    if (!aa->log_path || !aa->wal_path) {
        cl_aa_free(aa);
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    /* the AAEL travels in the evidence (TDX cc_eventlog) only when this agent keeps it */
    aa->platform.aael_path = cfg->enable_eventlog ? aa->log_path : NULL;
    if (load_initdata(aa, o, err) < 0) {
        cl_aa_free(aa);
        return NULL;
    }
    if (cfg->enable_eventlog) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s", aa->log_path);
        char *s = strrchr(dir, '/');
        if (s && s != dir)
            *s = 0;
        if ((s && cl_mkdir_p(dir, 0700, err) < 0) || wal_recover(aa, err) < 0) {
            cl_aa_free(aa);
            return NULL;
        }
    }
    return aa;
}

void cl_aa_free(struct cl_aa *aa)
{
    if (!aa)
        return;
    free(aa->token);
    EVP_PKEY_free(aa->tee_key);
    cl_aa_initdata_clear(&aa->initdata);
    free(aa->log_path);
    free(aa->wal_path);
    pthread_mutex_destroy(&aa->token_lock);
    pthread_mutex_destroy(&aa->log_lock);
    free(aa);
}
