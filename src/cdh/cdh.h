/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The confidential data hub: KBS resources by `kbs:///repo/type/tag` URI (through the
 * attestation agent's token and TEE key, with a resource cache that expires and can be
 * emptied), sealed secrets (`sealed.<JWS>`, signature checked with a key fetched from the KBS
 * before anything else is done), the ocicrypt key-provider unwrap of image layer keys, secure
 * mounts (LUKS2 through libcryptsetup), the ttrpc services `api.*` and
 * `keyprovider.KeyProviderService` with guest-components' names, and the REST bridge
 * (api-server-rest) for containers on 127.0.0.1:8006.
 */
#ifndef CL_CDH_H
#define CL_CDH_H

#include "base/base.h"
#include "crypto/crypto.h"
#include "net/ttrpc.h"
#include "json/json.h"

#define CL_CDH_DEFAULT_SOCKET "unix:///run/confidential-containers/cdh.sock"
#define CL_CDH_DEFAULT_REST "127.0.0.1:8006"
#define CL_CDH_MAX_CONFIG 1048576
#define CL_CDH_MAX_CREDENTIALS 32
#define CL_CDH_CREDENTIAL_PREFIX "/run/confidential-containers/cdh/kbs"
#define CL_CDH_SEALED_KEY_DIR "/run/confidential-containers/cdh/sealed-secret"
#define CL_CDH_LUKS_HEADER_DIR "/run/confidential-containers/cdh/luks-headers"
#define CL_CDH_MAX_URI 1024
#define CL_CDH_MAX_SEGMENTS 16
#define CL_CDH_MAX_SEGMENT 128
#define CL_CDH_MAX_RESOURCE (3u << 20) /* one resource (fits a ttrpc answer) */
#define CL_CDH_CACHE_MAX 256           /* cached resources */
#define CL_CDH_CACHE_TTL_DEFAULT 300   /* seconds; 0 disables the cache */
#define CL_CDH_MAX_SEALED 65536        /* sealed secret text */
#define CL_CDH_MAX_KEYPROVIDER 1048576 /* keyprovider JSON */
#define CL_CDH_GET_TRIES 3             /* resource attempts (upstream's) */
#define CL_CDH_OFFLINE_MAX 16777216    /* offline_fs_kbc file */

/* ---- cdh.toml ---- */

struct cl_cdh_credential {
    char *resource_uri;
    char *path;
};

/* [image] (upstream's ImageConfig keys), read by the image pull service (image.c). */
#define CL_CDH_IMAGE_WORK_DIR "/run/kata-containers/image"
#define CL_CDH_MAX_ROOT_CERTS 16
struct cl_cdh_image_config {
    char *work_dir;            /* layer store; default CL_CDH_IMAGE_WORK_DIR */
    char *policy_uri;          /* image_security_policy_uri: kbs://, file:// or a path */
    char *policy;              /* image_security_policy (inline; the URI wins) */
    char *sigstore_config_uri; /* registries.d YAML (lookaside) */
    char *sigstore_config;     /* inline YAML */
    char *auth_uri;            /* authenticated_registry_credentials_uri (containers-auth.json) */
    char *registry_config_uri; /* registry_configuration_uri (registries.conf TOML) */
    char *registry_config;     /* [image.registry_config] turned back into TOML text (wins) */
    long max_concurrent;       /* max_concurrent_layer_downloads_per_image, 1..16 (3) */
    char *extra_root_certs[CL_CDH_MAX_ROOT_CERTS]; /* extra_root_certificates (PEM) */
    size_t ncerts;
    char *https_proxy, *http_proxy, *no_proxy; /* [image.image_pull_proxy] */
};

struct cl_cdh_config {
    char *socket;
    bool skip_verification_insecure; /* skip_sealed_secret_verification_insecure */
    char *aa_socket;                 /* [aa] aa_socket */
    char *kbc_name;                  /* [kbc] name: cc_kbc | offline_fs_kbc */
    char *kbc_url;                   /* [kbc] url */
    char *kbs_cert;                  /* [kbc] kbs_cert (PEM text) */
    struct cl_cdh_credential creds[CL_CDH_MAX_CREDENTIALS];
    size_t ncreds;
    char *log_level;
    /* Cloister's own keys */
    char *rest_address;   /* [rest] address; "" or "none" disables the bridge */
    char *rest_features;  /* [rest] features: resource | attestation | all */
    long cache_ttl_s;     /* [kbc] resource_cache_ttl */
    char *sealed_key_dir; /* local verification keys (kid not a kbs:// URI) */
    char *luks_header_dir;
    char **offline_files;             /* [kbc] offline_files, NULL-terminated */
    struct cl_cdh_image_config image; /* [image] */
};

/* Parses cdh.toml text; unknown keys refused by dotted path and file:line (EINVAL, exit 2;
 * upstream would ignore them), known keys type- and bound-checked (EINVAL naming the key).
 * Credential paths must lie under CL_CDH_CREDENTIAL_PREFIX without . or .. parts. The upstream key
 * skip_sealed_secret_verification = true is refused: the switch is spelled
 * skip_sealed_secret_verification_insecure here. */
CL_MUST_CHECK int cl_cdh_config_parse(const char *text, size_t len, struct cl_cdh_config *cfg,
                                      struct cl_err *err);
CL_MUST_CHECK int cl_cdh_config_load(const char *path, struct cl_cdh_config *cfg,
                                     struct cl_err *err);
void cl_cdh_config_defaults(struct cl_cdh_config *cfg);
void cl_cdh_config_clear(struct cl_cdh_config *cfg);
/* The configuration in force in cdh.toml's structure, defaults filled in (for --check).
 * Returns new; [image] registry_config is shown as the registries.conf text it became. */
json_t *cl_cdh_config_effective(const struct cl_cdh_config *cfg);
/* For --check: the files the configuration names (kbc.offline_files, file:// URIs of [image])
 * open, and its certificates (kbc.kbs_cert, image.extra_root_certificates) parse. */
CL_MUST_CHECK int cl_cdh_config_check_files(const struct cl_cdh_config *cfg, struct cl_err *err);

/* ---- resource URIs ---- */

struct cl_cdh_uri {
    char plugin[64];            /* "resource" for kbs:// */
    char path[CL_CDH_MAX_URI];  /* segments joined by '/', no leading slash */
    char query[CL_CDH_MAX_URI]; /* without '?', may be empty */
    size_t nsegments;
};
/* kbs[+plugin]://[host[:port]]/<seg>/<seg>...[?query]. Segments: 1..CL_CDH_MAX_SEGMENT
 * bytes of [A-Za-z0-9._-], never "." or ".."; the resource plugin needs exactly three.
 * EINVAL naming the problem. The host part is ignored (the KBS comes from the config). */
CL_MUST_CHECK int cl_cdh_uri_parse(const char *uri, struct cl_cdh_uri *out, struct cl_err *err);
/* True when s looks like a resource URI (kbs:// or kbs+name://). */
bool cl_cdh_is_uri(const char *s);

/* ---- the hub ---- */

struct cl_cdh;
/* Loads offline resources, provisions [[credentials]] files. cfg borrowed for the hub's
 * lifetime. Returns new or NULL. */
struct cl_cdh *cl_cdh_new(const struct cl_cdh_config *cfg, struct cl_err *err);
void cl_cdh_free(struct cl_cdh *cdh);
/* The resource behind a kbs:// URI (new secret), from the cache when fresh. ENOTFOUND,
 * EDENIED, EIO (KBS down or garbage, after CL_CDH_GET_TRIES attempts). */
CL_MUST_CHECK int cl_cdh_get_resource(struct cl_cdh *cdh, const char *uri, struct cl_secret **out,
                                      struct cl_err *err);
/* Empties the resource cache and drops the cached token. */
void cl_cdh_cache_invalidate(struct cl_cdh *cdh);
/* Counters for tests and logs. */
struct cl_cdh_stats {
    unsigned long kbs_fetches, cache_hits, tokens;
};
void cl_cdh_stats(struct cl_cdh *cdh, struct cl_cdh_stats *out);
/* The attestation agent's socket address (borrowed). */
const char *cl_cdh_aa_socket(const struct cl_cdh *cdh);

/* ---- sealed secrets ---- */

struct cl_cdh_sealed {
    json_t *header;    /* owned: the JWS protected header */
    json_t *payload;   /* owned: the payload object (vault or envelope) */
    cl_str *kid;       /* owned */
    struct cl_jws jws; /* the parsed signature (cleared with the struct) */
};
/* Splits "sealed.<JWS>", parses header (alg must be ES256, kid a non-empty string) and
 * payload (version "0.1.0", type vault|envelope with every required field). Does NOT
 * verify. With legacy_unsigned, also accepts the pre-2026 four-part unsigned form (only
 * when verification is skipped). */
CL_MUST_CHECK int cl_cdh_sealed_parse(const char *text, size_t len, bool legacy_unsigned,
                                      struct cl_cdh_sealed *out, struct cl_err *err);
void cl_cdh_sealed_clear(struct cl_cdh_sealed *s);
/* Verifies the ES256 signature with a P-256 public key (EVERIFY when it does not verify). */
CL_MUST_CHECK int cl_cdh_sealed_verify(const struct cl_cdh_sealed *s, cl_pkey *key,
                                       struct cl_err *err);
/* Full unseal in the hub: parse, fetch the verification key named by kid (kbs:// URI → KBS;
 * else a file confined to the sealed-secret key folder), verify, then resolve: vault → the
 * named resource; envelope → the key provider's DEK, then A256GCM/A256CTR. Returns new. */
CL_MUST_CHECK int cl_cdh_unseal(struct cl_cdh *cdh, const char *text, size_t len,
                                struct cl_secret **out, struct cl_err *err);
/* Host side: signs payload (a vault or envelope object) as sealed.<JWS> with an ES256 key
 * and kid. Returns new text. */
cl_str *cl_cdh_seal(const json_t *payload, cl_pkey *key, const char *kid, struct cl_err *err);
/* Envelope host side: encrypts plaintext under a fresh DEK (A256GCM) and wraps the DEK with
 * the 32-byte KEK (A256GCM, the "kbs" envelope provider of this implementation: key_id is
 * the KEK's kbs:// URI). Returns the envelope payload object (new). */
json_t *cl_cdh_envelope_make(const char *key_id, const struct cl_secret *kek, const void *plaintext,
                             size_t len, struct cl_err *err);

/* ---- image layer keys (ocicrypt key provider) ---- */

/* Decrypts with a 32-byte key: "A256GCM" (iv 12, data = ciphertext||tag) or "A256CTR" (iv
 * 16, no integrity). Returns new. */
CL_MUST_CHECK int cl_cdh_decrypt(const char *wrap_type, const struct cl_secret *key,
                                 const uint8_t *iv, size_t ivlen, const uint8_t *data, size_t len,
                                 struct cl_secret **out, struct cl_err *err);
/* A keyunwrap request (JSON) → the keyunwrapresults JSON text (new, optsdata as an array of
 * numbers, as ocicrypt-rs expects). The annotation packet's kid is fetched through the hub. */
CL_MUST_CHECK int cl_cdh_unwrap_key(struct cl_cdh *cdh, const uint8_t *input, size_t len,
                                    cl_bytes **out, size_t *outlen, struct cl_err *err);
/* Host side: wraps PLBCO bytes with kek as an annotation packet {kid, wrapped_data, iv,
 * wrap_type A256GCM}. Returns the packet JSON (new). */
json_t *cl_cdh_wrap_key(const char *kid, const struct cl_secret *kek, const void *optsdata,
                        size_t len, struct cl_err *err);

/* ---- secure mount ---- */

/* SecureMount(volume_type, options, flags, mount_point). block-device + luks2 formats the
 * device (a detached header for sourceType empty) and opens it; device-mapper is needed to
 * open: without it EUNSUPPORTED after the format. */
struct cl_cdh_mount_req {
    const char *volume_type;
    const json_t *options; /* borrowed: string → string */
    const char *mount_point;
};
CL_MUST_CHECK int cl_cdh_secure_mount(struct cl_cdh *cdh, const struct cl_cdh_mount_req *req,
                                      struct cl_err *err);
/* LUKS2 format of a device or image file with cryptsetup's library, parameters as upstream
 * (aes-xts-plain64, 4096-byte sectors, optional hmac-sha256 integrity); header_path NULL →
 * header on the device. */
CL_MUST_CHECK int cl_cdh_luks_format(const char *device, const char *header_path,
                                     const struct cl_secret *key, bool integrity,
                                     struct cl_err *err);
/* True when the kernel has device-mapper and /dev/mapper/control can be opened (what the
 * open step of a secure mount needs). */
bool cl_cdh_dm_available(void);
/* Checks that path holds a LUKS2 header that key opens (keyslot check, no device-mapper). */
CL_MUST_CHECK int cl_cdh_luks_check(const char *device, const char *header_path,
                                    const struct cl_secret *key, struct cl_err *err);
/* libcryptsetup is opened (dlopen) on the first secure mount, not at start. 0 once it is
 * loaded; EUNSUPPORTED naming the library and the loader's reason when it cannot be (the
 * three calls above check this first and fail with that message). Thread-safe. */
CL_MUST_CHECK int cl_cdh_cryptsetup_load(struct cl_err *err);
/* For tests: the name the next load opens (NULL: libcryptsetup.so.12); a library already
 * loaded stays mapped but is opened again under the new name at the next call. */
void cl_cdh_cryptsetup_soname_set(const char *soname);

/* ---- image pull (ImagePullService) ---- */

/* PullImage: pulls image_url with src/image under the [image] configuration (signature
 * policy, none = deny; registry configuration; credentials; encrypted layers opened through
 * this hub's key provider) into the layer store, mounts the layers as an overlay at
 * <bundle_path>/rootfs (upper and work folders in the bundle) and extends the runtime
 * measurement "github.com/confidential-containers PullImage" through the attestation agent
 * when it is there. bundle_path must be absolute without "." or ".." parts. Pulls are
 * serialised. *digest = the manifest digest (new). */
CL_MUST_CHECK int cl_cdh_pull_image(struct cl_cdh *cdh, const char *image_url,
                                    const char *bundle_path, cl_str **digest, struct cl_err *err);
/* Exports [image.image_pull_proxy] as https_proxy / http_proxy / no_proxy (libcurl reads
 * them). Call once before any thread starts: setenv is not thread-safe. */
void cl_cdh_image_env(const struct cl_cdh_config *cfg);
/* Client side (the agent, tests). *digest new. */
CL_MUST_CHECK int cl_cdh_client_pull_image(struct cl_ttrpc_client *c, const char *image_url,
                                           const char *bundle_path, unsigned timeout_ms,
                                           cl_str **digest, struct cl_err *err);

/* ---- services ---- */

extern const struct cl_ttrpc_method cl_cdh_methods[];
extern const size_t cl_cdh_nmethods;

/* Client calls to a hub over ttrpc (the CLI, tests, kata-agent's role). *out new. */
CL_MUST_CHECK int cl_cdh_client_unseal(struct cl_ttrpc_client *c, const char *text,
                                       struct cl_secret **out, struct cl_err *err);
CL_MUST_CHECK int cl_cdh_client_get_resource(struct cl_ttrpc_client *c, const char *uri,
                                             struct cl_secret **out, struct cl_err *err);
/* json: the keyprovider input; *out: the keyprovider output JSON. */
CL_MUST_CHECK int cl_cdh_client_unwrap_key(struct cl_ttrpc_client *c, const char *json,
                                           struct cl_secret **out, struct cl_err *err);

struct cl_http_server;
/* The REST bridge on address ("127.0.0.1:8006"); loopback peers only (403 otherwise).
 * features: "resource", "attestation" or "all". */
struct cl_http_server *cl_cdh_rest_start(struct cl_cdh *cdh, const char *address,
                                         const char *features, struct cl_err *err);

#endif
