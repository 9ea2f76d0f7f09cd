/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cloister's image puller (the guest side's image-rs): image references, the registry client
 * (distribution API v2: anonymous, basic and bearer-token auth, mirrors, retries, resumable
 * blob downloads checked against their digests), OCI and Docker manifests and indexes, the
 * signature policy (containers-policy.json: insecureAcceptAnything, reject, signedBy with GPG
 * simple signing, sigstoreSigned with cosign keys), encrypted layers (ocicrypt: JWE recipient
 * keys and key-provider unwrap through a callback), and the layer pipeline
 *
 *   download → digest (+ HMAC of an encrypted blob) → [verified blob on disk]
 *            → decrypt → decompress (gzip, zstd) → diff_id hash → confined untar
 *
 * in fixed memory whatever the layer size. No stage sees a byte that the stage before it has
 * not verified: a blob is spooled to disk while its digest (and, when encrypted, its HMAC)
 * is computed, and only a blob whose digest and HMAC both matched is read back to be
 * decrypted and unpacked. Every path is resolved with openat2(RESOLVE_IN_ROOT).
 *
 * Layers land in a store shared between images (layers/sha256/<diff_id hex>/, the overlay
 * layout the agent mounts: whiteouts as 0:0 character devices and the opaque xattr), or,
 * with CL_IMAGE_FLAT, are applied in order into one root filesystem (as umoci unpack does).
 */
#ifndef CL_IMAGE_H
#define CL_IMAGE_H

#include <jansson.h>

#include "base/base.h"
#include "crypto/crypto.h"

/* ---- limits ---- */

#define CL_IMAGE_MAX_REF 1024                    /* whole image reference text */
#define CL_IMAGE_MAX_MANIFEST (4u * 1024 * 1024) /* manifest or index bytes */
#define CL_IMAGE_MAX_CONFIG (16u * 1024 * 1024)  /* image config bytes */
#define CL_IMAGE_MAX_LAYERS 512                  /* layers of one image */
#define CL_IMAGE_DEADLINE_BASE_MS 60000L         /* a GET's deadline: this, plus ... */
#define CL_IMAGE_MIN_RATE (64ul * 1024)          /* ... its bytes at this many per second */
#define CL_IMAGE_MAX_INDEX_ENTRIES 1024          /* manifests listed by one index */
#define CL_IMAGE_MAX_JSON_DEPTH 32
#define CL_IMAGE_MAX_PATH 4096              /* tar entry path or link target, bytes */
#define CL_IMAGE_MAX_PAX (1u * 1024 * 1024) /* one pax extended header (or GNU long name) */
#define CL_IMAGE_MAX_XATTRS 128             /* xattrs of one entry */
#define CL_IMAGE_MAX_XATTR_VALUE 65536
#define CL_IMAGE_MAX_DIR_TIMES 65536 /* directory mtimes restored per layer */
/* Decompressed bytes per layer (the bomb cap) when the caller sets none: 8 GiB, above the
 * largest layers of common images (a few GiB for CUDA or model layers); a pull also lowers it
 * to 15/16 of the free space of the filesystem the layer unpacks into: inside a small VM the
 * free space (on a tmpfs, the memory) is what a bomb would exhaust. */
#define CL_IMAGE_DEFAULT_MAX_LAYER (8ull << 30)
#define CL_IMAGE_DEFAULT_MAX_ENTRIES (4u << 20) /* tar entries per layer */
#define CL_IMAGE_DEFAULT_CONCURRENCY 3
#define CL_IMAGE_MAX_CONCURRENCY 16
#define CL_IMAGE_DEFAULT_RETRIES 3
#define CL_IMAGE_MAX_RETRIES 10
#define CL_IMAGE_MAX_TOKEN 65536                  /* bearer token response bytes */
#define CL_IMAGE_MAX_SIGNATURES 64                /* signatures examined per image */
#define CL_IMAGE_MAX_SIGNATURE (4u * 1024 * 1024) /* one signature or payload blob */
#define CL_IMAGE_MAX_POLICY (4u * 1024 * 1024)
#define CL_IMAGE_MAX_KEY_FILE (4u * 1024 * 1024)

/* ---- digests ---- */

#define CL_IMAGE_DIGEST_STR 136 /* "sha512:" + 128 hex + NUL, rounded */
struct cl_image_digest {
    enum cl_hash alg; /* CL_HASH_SHA256 or CL_HASH_SHA512 */
    uint8_t raw[CL_HASH_MAX];
    size_t len;                    /* bytes of raw */
    char str[CL_IMAGE_DIGEST_STR]; /* "sha256:<lowercase hex>" */
    char hex[2 * CL_HASH_MAX + 1]; /* the hex part alone (a copy: the struct is copied freely) */
};
/* "sha256:<64 lowercase hex>" or "sha512:<128 lowercase hex>"; EPARSE otherwise, naming what. */
CL_MUST_CHECK int cl_image_digest_parse(const char *s, struct cl_image_digest *out,
                                        const char *what, struct cl_err *err);
/* Digest of a buffer. */
CL_MUST_CHECK int cl_image_digest_of(enum cl_hash alg, const void *buf, size_t len,
                                     struct cl_image_digest *out, struct cl_err *err);
bool cl_image_digest_eq(const struct cl_image_digest *a, const struct cl_image_digest *b);

/* ---- references ---- */

/* A normalised reference: "busybox" → registry "docker.io", repository "library/busybox",
 * tag "latest". The registry is the first component when it has a '.' or ':' or is
 * "localhost"; a reference with a digest keeps its tag too (the digest wins for pulling). */
struct cl_image_ref {
    cl_str *registry;   /* "docker.io", "127.0.0.1:5000" */
    cl_str *repository; /* "library/busybox" (lowercase path components) */
    cl_str *tag;        /* NULL when the reference has only a digest */
    cl_str *digest;     /* "sha256:..." or NULL */
};
CL_MUST_CHECK int cl_image_ref_parse(const char *s, struct cl_image_ref *out, struct cl_err *err);
void cl_image_ref_clear(struct cl_image_ref *r);
/* "registry/repository[:tag][@digest]" (new). */
cl_str *cl_image_ref_string(const struct cl_image_ref *r);
/* "registry/repository" (new). */
cl_str *cl_image_ref_name(const struct cl_image_ref *r);

/* ---- registries.conf (v2 TOML subset) ---- */

struct cl_image_regconf;
/* Parses registries.conf: unqualified-search-registries (ignored: references are always
 * normalised to docker.io, as the guest sees only fully qualified names), [[registry]]
 * prefix, location, insecure, blocked, [[registry.mirror]] location, insecure. Unknown keys
 * are refused. Returns new or NULL. */
struct cl_image_regconf *cl_image_regconf_parse(const char *toml, size_t len, struct cl_err *err);
void cl_image_regconf_free(struct cl_image_regconf *c);
/* Marks host[:port] insecure (plain HTTP or unchecked TLS), like an insecure = true entry. */
CL_MUST_CHECK int cl_image_regconf_add_insecure(struct cl_image_regconf *c, const char *host,
                                                struct cl_err *err);

/* ---- registry client ---- */

struct cl_image_creds {
    const char *username; /* NULL = anonymous */
    const char *password;
};

struct cl_image_registry_opts {
    const char *ca_file; /* PEM bundle for HTTPS registries, NULL = system store */
    struct cl_image_creds creds;
    unsigned retries;      /* transport errors, 5xx, 429: 0 → CL_IMAGE_DEFAULT_RETRIES */
    long low_speed_time_s; /* stall timeout; 0 → 30 */
    /* Deadline of one GET (each attempt): deadline_base_ms plus the bytes it may carry at
     * min_rate bytes/s, so that a registry that trickles (never stalling) cannot hold a
     * pull forever. 0 → CL_IMAGE_DEADLINE_BASE_MS, CL_IMAGE_MIN_RATE. */
    long deadline_base_ms;
    unsigned long min_rate;
    long retry_delay_ms;                          /* first backoff; doubles; 0 → 200 */
    void (*on_retry)(void *ctx, const char *why); /* told before each retry; may be NULL */
    void *retry_ctx;
};

/* ---- what an unpack did (in the pull result) ---- */

struct cl_image_unpack_stats {
    uint64_t entries, files, dirs, symlinks, hardlinks, whiteouts, skipped_devices, bytes;
    bool userxattr; /* opaque markers went to user.overlay.* (mount with userxattr) */
};

/* ---- ocicrypt ---- */

/* Key-provider unwrap (the ocicrypt keyprovider protocol; cloister-cdh plugs in here):
 * given the provider name from the annotation key and the decoded wrapped bytes, return the
 * private options JSON (PrivateLayerBlockCipherOptions) as a new secret. */
typedef int (*cl_image_unwrap_fn)(void *ctx, const char *provider, const uint8_t *wrapped,
                                  size_t len, struct cl_secret **optsdata, struct cl_err *err);

struct cl_image_decrypt {
    cl_pkey *const *jwe_keys; /* borrowed private keys (RSA, EC P-256/P-521) */
    size_t njwe_keys;
    cl_image_unwrap_fn unwrap; /* NULL: key-provider layers cannot be opened */
    void *unwrap_ctx;
};

/* The ocicrypt keyprovider "cmd" protocol: runs path (with args) per unwrap, JSON on stdin
 * and stdout (optsdata as base64 or as an array of numbers). `cmd` is borrowed and lives as
 * long as the callback is used; usable as a cl_image_unwrap_fn with ctx = the cmd. */
struct cl_image_keyprovider_cmd {
    const char *name; /* provider name the command serves; NULL = any */
    const char *path;
    const char *const *args; /* NULL-terminated, may be NULL */
    long timeout_ms;         /* 0 → 30000 */
};
int cl_image_keyprovider_cmd_unwrap(void *ctx, const char *provider, const uint8_t *wrapped,
                                    size_t len, struct cl_secret **optsdata, struct cl_err *err);
/* Loads an ocicrypt keyprovider config ({"key-providers": {name: {"cmd": {...}}}}) and
 * returns the cmd providers (new array of *n, strings owned by the array; free with
 * cl_image_keyprovider_cmds_free). grpc/ttrpc/native entries are skipped with a warning. */
struct cl_image_keyprovider_cmd *cl_image_keyprovider_config_load(const char *path, size_t *n,
                                                                  struct cl_err *err);
void cl_image_keyprovider_cmds_free(struct cl_image_keyprovider_cmd *cmds, size_t n);
/* Tries each cmd provider (ctx = struct cl_image_keyprovider_set) in order. */
struct cl_image_keyprovider_set {
    const struct cl_image_keyprovider_cmd *cmds;
    size_t n;
};
int cl_image_keyprovider_set_unwrap(void *ctx, const char *provider, const uint8_t *wrapped,
                                    size_t len, struct cl_secret **optsdata, struct cl_err *err);

/* ---- resources behind kbs:/// URIs ---- */

/* Fetches a resource named by a kbs:///repo/type/tag URI (cloister-cdh or the KBS client plug
 * in here). Returns the bytes as a new secret. */
typedef int (*cl_image_resource_fn)(void *ctx, const char *uri, struct cl_secret **out,
                                    struct cl_err *err);

struct cl_image_resources {
    cl_image_resource_fn fetch; /* NULL: kbs:// URIs are refused */
    void *ctx;
};
/* Reads `where`: a kbs:// URI through res, a file:// URI or a plain path from disk; at most
 * max bytes. Returns a new secret or NULL. */
struct cl_secret *cl_image_resource_load(const struct cl_image_resources *res, const char *where,
                                         size_t max, struct cl_err *err);

/* ---- signature policy ---- */

struct cl_image_policy;
/* Parses containers-policy.json: {"default": [req...], "transports": {"docker": {scope:
 * [req...]}, ...}}. Requirements: insecureAcceptAnything, reject, signedBy (keyType GPGKeys;
 * keyPath, keyPaths or keyData; signedIdentity), sigstoreSigned (keyPath or keyData;
 * signedIdentity; fulcio/rekor are refused as unsupported). signedIdentity: matchExact,
 * matchRepoDigestOrExact, matchRepository, exactReference, exactRepository, remapIdentity.
 * Unknown types or members are refused (fail closed). Returns new or NULL. */
struct cl_image_policy *cl_image_policy_parse(const char *json, size_t len, struct cl_err *err);
void cl_image_policy_free(struct cl_image_policy *p);
/* registries.d lookaside configuration (YAML files). */
struct cl_image_lookaside;
/* Loads every *.yaml in dir (missing dir = empty config). Returns new or NULL. */
struct cl_image_lookaside *cl_image_lookaside_load(const char *dir, struct cl_err *err);
struct cl_image_lookaside *cl_image_lookaside_parse(const char *yaml, size_t len,
                                                    struct cl_err *err);
void cl_image_lookaside_free(struct cl_image_lookaside *l);
/* ---- pulling ---- */

enum cl_image_mode {
    CL_IMAGE_LAYERED, /* dir is a store: layers/sha256/<diff_id>/, images/<manifest>/ */
    CL_IMAGE_FLAT,    /* dir is a new root filesystem, every layer applied in order */
};

enum cl_image_event {
    CL_IMAGE_EV_MANIFEST, /* manifest resolved (digest in ev->digest) */
    CL_IMAGE_EV_POLICY,   /* policy accepted */
    CL_IMAGE_EV_LAYER_START,
    CL_IMAGE_EV_LAYER_BYTES,
    CL_IMAGE_EV_LAYER_VERIFIED,
    CL_IMAGE_EV_LAYER_DONE,
    CL_IMAGE_EV_LAYER_CACHED,
    CL_IMAGE_EV_RETRY,
};

struct cl_image_progress {
    enum cl_image_event ev;
    size_t layer; /* index in the manifest */
    size_t nlayers;
    const char *digest;  /* layer or manifest digest */
    uint64_t layer_size; /* compressed size */
    uint64_t bytes_done; /* all layers so far */
    uint64_t bytes_total;
    size_t layers_done;
    const char *message; /* CL_IMAGE_EV_RETRY */
};
/* Called from the pull's threads, one call at a time. */
typedef void (*cl_image_progress_fn)(void *ctx, const struct cl_image_progress *p);

struct cl_image_pull_opts {
    enum cl_image_mode mode;
    const struct cl_image_policy *policy;       /* required: no policy → EDENIED */
    const struct cl_image_lookaside *lookaside; /* may be NULL */
    const struct cl_image_regconf *regconf;     /* may be NULL */
    struct cl_image_registry_opts registry;
    const struct cl_image_decrypt *decrypt;     /* may be NULL */
    const struct cl_image_resources *resources; /* may be NULL */
    const char *os, *arch, *variant;            /* NULL → the running platform */
    unsigned concurrency;                       /* 0 → CL_IMAGE_DEFAULT_CONCURRENCY */
    uint64_t max_layer_bytes;                   /* decompressed; 0 → the lower of
                                                   CL_IMAGE_DEFAULT_MAX_LAYER and 15/16 of
                                                   the target filesystem's free space */
    bool same_owner;                            /* chown (default off; the CLI sets it for root) */
    bool allow_devices;
    bool keep_blobs; /* keep verified blobs in dir/blobs (layered) */
    cl_image_progress_fn progress;
    void *progress_ctx;
};

struct cl_image_pull_result {
    struct cl_image_digest manifest_digest;
    struct cl_image_digest config_digest;
    bool from_index;
    struct cl_image_digest index_digest;
    size_t nlayers, layers_cached;
    uint64_t bytes_downloaded;
    cl_str *lowerdir;    /* layered: overlay lowerdir (top layer first), new */
    cl_str *config_json; /* the image config (new) */
    struct cl_image_unpack_stats stats;
};
void cl_image_pull_result_clear(struct cl_image_pull_result *r);

/*
 * Pulls ref into dir. Order: resolve endpoints → manifest (index → platform) → config →
 * signature policy (every pull; a cached image is checked again) → layer keys (encrypted
 * layers, before any layer byte is fetched) → layers, `concurrency` at a time. Layered: each
 * layer is unpacked into a staging folder and renamed into layers/sha256/<diff_id hex> when
 * complete and verified (a layer already there is reused); then images/<manifest hex>/ holds
 * manifest.json, config.json and image.json. Flat: dir must not exist or be empty; layers are
 * applied in order into a staging folder next to it that is renamed to dir at the end. On any
 * error nothing half-written stays visible (verified partial blobs stay in dir/blobs or next
 * to the flat target, so that the next pull resumes them).
 */
CL_MUST_CHECK int cl_image_pull(const char *ref, const char *dir,
                                const struct cl_image_pull_opts *opts,
                                struct cl_image_pull_result *out, struct cl_err *err);

#endif
