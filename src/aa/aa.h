/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attestation agent: evidence from the TEE (attester table: tdx through configfs-tsm,
 * snp through /dev/sev-guest, tpm, and the sample attester, which is refused unless the
 * configuration says `_insecure`), KBS tokens through the RCAR handshake of the KBS client
 * (kbs/kbs_client.h, the attester as its evidence callback; cached with their TEE key pair
 * until the token expires), runtime measurements in the AAEL event log
 * (TCG2 entries, written durably through a write-ahead record), init-data (parse, digest over
 * the exact bytes, the annotation and block-device forms, binding checks), and the ttrpc
 * service `attestation_agent.AttestationAgentService` with guest-components' names.
 *
 * Also the client side that other guest processes use (the data hub, the REST bridge).
 */
#ifndef CL_AA_H
#define CL_AA_H

#include "base/base.h"
#include "crypto/crypto.h"
#include "net/ttrpc.h"
#include "json/json.h"

#define CL_AA_DEFAULT_SOCKET                                                                       \
    "unix:///run/confidential-containers/attestation-agent/attestation-agent.sock"
#define CL_AA_SERVICE "attestation_agent.AttestationAgentService"
#define CL_AA_EVENTLOG_PATH "/run/attestation-agent/eventlog"
#define CL_AA_DEFAULT_INIT_PCR 17
#define CL_AA_MAX_CONFIG 1048576       /* aa.toml bytes */
#define CL_AA_MAX_RUNTIME_DATA 65536   /* GetEvidence runtime data bytes */
#define CL_AA_MAX_EVIDENCE (3u << 20)  /* evidence JSON bytes (fits one ttrpc frame) */
#define CL_AA_MAX_EVENT_TEXT 4096      /* one AAEL "<domain> <operation> <content>" */
#define CL_AA_MAX_EVENTLOG (16u << 20) /* AAEL file bytes */
#define CL_AA_RCAR_TRIES 5             /* RCAR attempts, 1 s apart (upstream's) */
#define CL_AA_TOKEN_LEEWAY_S 30        /* a cached token is renewed this long before exp */
#define CL_AA_KBS_TIMEOUT_MS 60000
#define CL_AA_TSM_REPORT_DIR "/sys/kernel/config/tsm/report"
#define CL_AA_SEV_GUEST_DEV "/dev/sev-guest"
#define CL_AA_SEV_GUEST_SYSFS "/sys/devices/platform/sev-guest"
#define CL_AA_CCEL_PATH "/sys/firmware/acpi/tables/data/CCEL"
/* CCEL ACPI table bytes */
#define CL_AA_MAX_CCEL (8u << 20)
/* the PCR that init-data is extended into */
#define CL_AA_TPM_INIT_DATA_PCR 8
/* one TPM command (tcti-device honours it; tcti-swtpm blocks) */
#define CL_AA_TPM_TIMEOUT_MS 30000

/* ---- aa.toml ---- */

struct cl_aa_config {
    /* [token_configs.kbs] */
    char *kbs_url;
    char *kbs_cert;          /* PEM text of the KBS TLS root, or NULL */
    char *tee_key_algorithm; /* "ECDH-ES+A256KW-P256" (default), "-P521", "RSA-OAEP-256" */
    /* [token_configs.coco_as] */
    char *coco_as_url;
    /* [eventlog_config] */
    unsigned init_pcr;    /* 17 */
    bool enable_eventlog; /* false */
    /* [log] */
    char *log_level; /* "info" */
    /* Cloister's own keys */
    bool allow_sample_attester_insecure; /* top-level; the sample attester proves nothing */
    char *eventlog_path;                 /* [eventlog_config] path; default CL_AA_EVENTLOG_PATH */
    char *attester;                      /* top-level; force one attester instead of detection */
    char *tpm_tcti;                      /* top-level; the TPM's TCTI ("device:/dev/tpmrm0",
                                          * "swtpm:host=127.0.0.1,port=2321"); default: probe devices */
};

/* Parses aa.toml text (an empty text gives the defaults). Unknown keys are warned about by
 * dotted path and ignored (upstream's parser ignores them silently); a known key of the wrong type
 * is EPARSE naming it. */
CL_MUST_CHECK int cl_aa_config_parse(const char *text, size_t len, struct cl_aa_config *cfg,
                                     struct cl_err *err);
CL_MUST_CHECK int cl_aa_config_load(const char *path, struct cl_aa_config *cfg, struct cl_err *err);
void cl_aa_config_defaults(struct cl_aa_config *cfg);
void cl_aa_config_clear(struct cl_aa_config *cfg);
/* The configuration in force in aa.toml's structure, defaults filled in (--check). New. */
json_t *cl_aa_config_effective(const struct cl_aa_config *cfg);

/* ---- init-data ---- */

#define CL_AA_INITDATA_MAX 65536        /* TOML bytes, after gunzip */
#define CL_AA_INITDATA_MAGIC "initdata" /* block-device image: magic || u64 LE len || gzip */

struct cl_aa_initdata {
    cl_str *text; /* owned: the exact bytes */
    size_t len;
    enum cl_hash alg;
    uint8_t digest[CL_HASH_MAX];
    size_t digest_len;
    json_t *data; /* owned: the [data] table (strings) */
};
/* Parses init-data TOML: version "0.1.0", algorithm sha256|sha384|sha512, an optional [data]
 * table whose values are strings; digest = HASH(algorithm)(text). Takes a copy of text. */
CL_MUST_CHECK int cl_aa_initdata_parse(const char *text, size_t len, struct cl_aa_initdata *out,
                                       struct cl_err *err);
void cl_aa_initdata_clear(struct cl_aa_initdata *d);
/* base64(gzip(text)): the pod annotation value. Returns new or NULL. */
cl_str *cl_aa_initdata_annotation_encode(const void *text, size_t len, struct cl_err *err);
/* The inverse; the gunzipped text is capped at CL_AA_INITDATA_MAX (ELIMIT). Returns new. */
cl_bytes *cl_aa_initdata_annotation_decode(const char *b64, size_t b64len, size_t *outlen,
                                           struct cl_err *err);
/* Block-device image: "initdata" || u64 LE gzip length || gzip(text). Returns new. */
cl_bytes *cl_aa_initdata_image_encode(const void *text, size_t len, size_t *outlen,
                                      struct cl_err *err);
/* Reads an image (trailing bytes after the gzip stream, e.g. sector padding, are ignored;
 * the declared length is checked against the image before anything is inflated). */
cl_bytes *cl_aa_initdata_image_decode(const uint8_t *img, size_t len, size_t *outlen,
                                      struct cl_err *err);

/* ---- attesters ---- */

/* Where the attesters look; defaults are the real paths, tests point them at fake trees. */
struct cl_aa_platform {
    const char *tsm_report_dir; /* configfs-tsm report folder */
    const char *sev_guest_dev;
    const char *sev_guest_sysfs;
    const char *tdx_guest_dev;    /* /dev/tdx_guest */
    const char *tdx_measurements; /* /sys/devices/virtual/misc/tdx_guest/measurements */
    const char *tpm_device;       /* AA_TPM_DEVICE or NULL (probe /dev/tpmrm0, /dev/tpm0..2) */
    const char *tpm_tcti;         /* a TCTI string (wins over tpm_device), or NULL */
    const char *ccel_path;        /* the CCEL ACPI table (TDX cc_eventlog) */
    const char *aael_path;        /* the AAEL file, or NULL when the event log is off */
    /* Test hook for a fake configfs-tsm tree: called after the AA created a report entry
     * (phase 0) and after it wrote inblob (phase 1), to play the kernel's part. */
    int (*tsm_hook)(const char *entry_dir, int phase, void *ctx);
    void *tsm_hook_ctx;
};
/* The real paths, with CLOISTER_TSM_REPORT_DIR / CLOISTER_SEV_GUEST_DEV / AA_TPM_DEVICE /
 * CLOISTER_TPM_TCTI taken from the environment when set. */
void cl_aa_platform_default(struct cl_aa_platform *p);

struct cl_aa_attester {
    const char *tee; /* kbs-types id: "tdx", "snp", "tpm", "sample" */
    bool insecure;   /* refused unless allow_sample_attester_insecure */
    bool (*detect)(const struct cl_aa_platform *p);
    /* Evidence for report data rd[len] (each attester pads, or refuses what does not fit).
     * Returns new JSON. */
    json_t *(*evidence)(const struct cl_aa_platform *p, const uint8_t *rd, size_t len,
                        struct cl_err *err);
    /* Checks (TEE with a launch-time field) or measures (TPM) the init-data digest; NULL when
     * the platform cannot bind init-data. */
    int (*bind_init_data)(const struct cl_aa_platform *p, const uint8_t *digest, size_t len,
                          struct cl_err *err);
    /* Extends measurement register `index` (a PCR number) with digest; NULL when the platform
     * has no runtime registers. alg set to the register bank's hash. */
    int (*extend)(const struct cl_aa_platform *p, unsigned pcr, const uint8_t *digest, size_t len,
                  struct cl_err *err);
    enum cl_hash eventlog_hash;
};

/* Detection in upstream's order (tdx, snp, tpm); NULL when no TEE is found (the caller then
 * decides about the sample attester). tpm is detected when a TCTI is configured or a TPM
 * device exists, and the attestation key can be derived on it. */
const struct cl_aa_attester *cl_aa_attester_detect(const struct cl_aa_platform *p);
/* By kbs-types id, or NULL when this build has none. */
const struct cl_aa_attester *cl_aa_attester_find(const char *tee);

/* TDX `cc_eventlog`, as upstream assembles it: the CCEL table's events (up to the 0xFF/0x00
 * padding, found by the same parser the verifier uses), or without a CCEL a 69-byte
 * EV_NO_ACTION Spec ID header listing SHA-384 and SM3, then the AAEL file bytes, then eight
 * 0xFF. ccel or aael may be NULL (not both: EINVAL). EPARSE when the CCEL does not parse.
 * Returns new bytes. */
cl_bytes *cl_aa_cc_eventlog(const uint8_t *ccel, size_t ccel_len, const uint8_t *aael,
                            size_t aael_len, size_t *outlen, struct cl_err *err);
/* Reads the CCEL and AAEL files named by the platform (each may be absent) and returns the
 * base64 cc_eventlog (new), or NULL with *err cleared (code 0) when neither exists. */
cl_str *cl_aa_cc_eventlog_b64(const struct cl_aa_platform *p, struct cl_err *err);

/* The TCTI the tpm attester uses (tpm_tcti, else "device:" + tpm_device, else the first of
 * /dev/tpmrm0, /dev/tpm0..2 that exists) into buf; false when there is none. */
bool cl_aa_tpm_tcti(const struct cl_aa_platform *p, char *buf, size_t cap);

/* ---- event log (AAEL) ---- */

/* TCG2 entry for "<domain> <operation> <content>" extending register `mr` (EV_EVENT_TAG,
 * TaggedEvent "AAEL"), digest = HASH(tagged event). Returns new bytes. */
cl_bytes *cl_aa_aael_entry(unsigned mr, enum cl_hash h, const char *text, size_t *outlen,
                           uint8_t *digest, struct cl_err *err);
/* Each field is non-empty printable ASCII; domain and operation carry no space; content no
 * newline. EINVAL naming the field. */
CL_MUST_CHECK int cl_aa_event_check(const char *domain, const char *operation, const char *content,
                                    struct cl_err *err);

/* ---- the agent ---- */

struct cl_aa;
struct cl_aa_opts {
    const struct cl_aa_config *cfg; /* borrowed for the agent's lifetime */
    struct cl_aa_platform platform;
    const char *initdata_toml_path;  /* --initdata-toml */
    const char *initdata_digest_b64; /* --initdata-digest (when no TOML) */
};
/* Picks the attester (configured, detected, or sample when allowed), reads and binds the
 * init-data (a mismatch refuses to start), opens the event log. Returns new or NULL. */
struct cl_aa *cl_aa_new(const struct cl_aa_opts *opts, struct cl_err *err);
void cl_aa_free(struct cl_aa *aa);
const char *cl_aa_tee(const struct cl_aa *aa);
/* Evidence JSON text (new) for runtime data. */
cl_str *cl_aa_get_evidence(struct cl_aa *aa, const uint8_t *rd, size_t len, struct cl_err *err);

/* ---- NVIDIA GPUs (nvidia.c): NVML opened with dlopen on first use ---- */
#define CL_AA_NVML_SONAME "libnvidia-ml.so.1" /* CLOISTER_NVML_LIBRARY overrides it */
#define CL_AA_NVIDIA_MAX_GPUS 16
/* {"device_evidence_list": [...]} of every GPU in confidential-computing mode, the SPDM nonce
 * being rd truncated (or zero-padded) to 32 bytes (new). ENOTFOUND when there is no NVML, no GPU
 * or confidential computing is off; EIO/EUNSUPPORTED/EPARSE when NVML misbehaves. */
json_t *cl_aa_nvidia_evidence(const uint8_t *rd, size_t len, struct cl_err *err);
/* The additional_evidence text of the KBS protocol: {"nvidia": {...}} when a GPU answered,
 * "" when there is none (new). */
cl_str *cl_aa_additional_evidence(const uint8_t *rd, size_t len, struct cl_err *err);
/* token_type "kbs": {"token":"<JWT>","tee_keypair":"<PEM>"} (new), from the cache while
 * the token is valid; "coco_as": the AS reply. ENOTFOUND for an unknown or unconfigured
 * type. */
cl_str *cl_aa_get_token(struct cl_aa *aa, const char *token_type, struct cl_err *err);
/* Cloister's own token type: drop the cached KBS token, then as "kbs". The data hub asks
 * for it when the KBS refuses a cached token (e.g. the KBS restarted with a new key). */
#define CL_AA_TOKEN_KBS_REFRESH "kbs-refresh"
/* Drops the cached KBS token (the next GetToken runs RCAR again). */
void cl_aa_token_invalidate(struct cl_aa *aa);
enum cl_aa_extend_result {
    CL_AA_EXTEND_OK = 0,
    CL_AA_EXTEND_NOT_SUPPORTED = 1,
    CL_AA_EXTEND_NOT_ENABLED = 2
};
/* Records and extends a runtime measurement; pcr < 0 → init_pcr. */
CL_MUST_CHECK int cl_aa_extend(struct cl_aa *aa, const char *domain, const char *operation,
                               const char *content, int64_t pcr, enum cl_aa_extend_result *result,
                               struct cl_err *err);
/* Checks a digest against the platform (BindInitData / CheckInitData). */
CL_MUST_CHECK int cl_aa_bind_init_data(struct cl_aa *aa, const uint8_t *digest, size_t len,
                                       struct cl_err *err);

/* The ttrpc method table serving `aa` (ctx = the struct cl_aa). */
extern const struct cl_ttrpc_method cl_aa_methods[];
extern const size_t cl_aa_nmethods;

/* ---- client side for other guest processes ---- */

struct cl_ttrpc_client;
/* GetToken(type) over ttrpc; *out new (the Token bytes). */
CL_MUST_CHECK int cl_aa_client_get_token(struct cl_ttrpc_client *c, const char *type,
                                         cl_bytes **out, size_t *outlen, struct cl_err *err);
CL_MUST_CHECK int cl_aa_client_get_evidence(struct cl_ttrpc_client *c, const uint8_t *rd,
                                            size_t len, bool additional, cl_bytes **out,
                                            size_t *outlen, struct cl_err *err);
CL_MUST_CHECK int cl_aa_client_get_tee(struct cl_ttrpc_client *c, cl_str **tee, struct cl_err *err);
CL_MUST_CHECK int cl_aa_client_extend(struct cl_ttrpc_client *c, const char *domain,
                                      const char *operation, const char *content, int *result,
                                      struct cl_err *err);

#endif
