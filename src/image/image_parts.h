/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The image puller's parts: manifests and configs, the registry client, the layer pipeline
 * (sources, decompression, the tar reader, the confined unpack), ocicrypt layer keys and the
 * signature checks. Internal to src/image; its tests and fuzzers include it to reach the
 * pieces directly. Users of the module see only image/image.h (the pull API).
 */
#ifndef CL_IMAGE_PARTS_H
#define CL_IMAGE_PARTS_H

#include "image/image.h"

/* ---- manifests, indexes, configs ---- */

enum cl_image_compression { CL_IMAGE_COMP_NONE, CL_IMAGE_COMP_GZIP, CL_IMAGE_COMP_ZSTD };

struct cl_image_desc {
    const char *media_type; /* borrowed from the document */
    struct cl_image_digest digest;
    uint64_t size;
    const json_t *annotations; /* borrowed object or NULL */
    /* layers: */
    enum cl_image_compression compression;
    bool encrypted;
    /* index entries: */
    const char *os, *arch, *variant; /* borrowed or NULL */
};

enum cl_image_manifest_kind { CL_IMAGE_MANIFEST, CL_IMAGE_INDEX };

struct cl_image_manifest {
    enum cl_image_manifest_kind kind;
    json_t *doc;                  /* owned */
    const char *media_type;       /* borrowed: from the document, else the Content-Type */
    struct cl_image_desc config;  /* manifest only */
    struct cl_image_desc *layers; /* owned array: manifest layers or index entries */
    size_t nlayers;
};
/*
 * Parses an OCI image manifest or index, or a Docker schema-2 manifest or manifest list.
 * content_type (may be NULL) is the registry's Content-Type, used when the document has no
 * mediaType; the two must agree when both are present. Layer media types: OCI tar, tar+gzip,
 * tar+zstd (and their nondistributable forms), Docker rootfs.diff.tar.gzip (and foreign),
 * each with "+encrypted" for ocicrypt. Schema 1, unknown media types and more than
 * CL_IMAGE_MAX_LAYERS layers are refused. On failure *out is left zeroed.
 */
CL_MUST_CHECK int cl_image_manifest_parse(const void *buf, size_t len, const char *content_type,
                                          struct cl_image_manifest *out, struct cl_err *err);
void cl_image_manifest_clear(struct cl_image_manifest *m);
/* Picks the index entry for os/arch/variant (variant NULL matches any; "arm64" defaults to
 * variant "v8"). ENOTFOUND listing what the index offers. */
CL_MUST_CHECK int cl_image_index_select(const struct cl_image_manifest *idx, const char *os,
                                        const char *arch, const char *variant, size_t *which,
                                        struct cl_err *err);
/* The running platform in OCI words ("linux", "amd64"/"arm64"/..., variant or NULL). */
void cl_image_platform(const char **os, const char **arch, const char **variant);

struct cl_image_config {
    json_t *doc;                      /* owned */
    const char *os, *arch;            /* borrowed */
    struct cl_image_digest *diff_ids; /* owned array */
    size_t ndiff_ids;
};
/* Parses an image config: "os", "architecture", "rootfs": {"type": "layers", "diff_ids"}. */
CL_MUST_CHECK int cl_image_config_parse(const void *buf, size_t len, struct cl_image_config *out,
                                        struct cl_err *err);
void cl_image_config_clear(struct cl_image_config *c);

/* ---- registries.conf endpoints ---- */

/* Where to fetch an image from: mirrors first, then the (possibly remapped) location. */
struct cl_image_endpoint {
    cl_str *host;       /* "127.0.0.1:5000" (docker.io is served by registry-1.docker.io) */
    cl_str *repository; /* repository on that host (remapped by prefix → location) */
    bool insecure;
    bool mirror;
};
/* Resolves ref through conf (NULL = no configuration: the reference's own registry over
 * HTTPS). EDENIED when a matching rule is blocked. Returns the count in *n (at most 8);
 * free each with cl_image_endpoint_clear. */
CL_MUST_CHECK int cl_image_regconf_resolve(const struct cl_image_regconf *conf,
                                           const struct cl_image_ref *ref,
                                           struct cl_image_endpoint out[8], size_t *n,
                                           struct cl_err *err);
void cl_image_endpoint_clear(struct cl_image_endpoint *e);

/* ---- registry client ---- */

struct cl_image_registry;
/* One endpoint (host + repository) with its own auth state; shared by the pull's threads.
 * Returns new or NULL. */
struct cl_image_registry *cl_image_registry_new(const struct cl_image_endpoint *ep,
                                                const struct cl_image_registry_opts *opts,
                                                struct cl_err *err);
void cl_image_registry_free(struct cl_image_registry *r);

/* The deadline of one attempt at a GET that may carry up to max bytes: base_ms plus max at
 * min_rate bytes per second (> 0), capped at LONG_MAX. Registry requests and lookaside
 * signatures alike. */
long cl_image_deadline_ms(long base_ms, unsigned long min_rate, uint64_t max);

/* GET /v2/<repo>/manifests/<reference> (tag or digest), at most CL_IMAGE_MAX_MANIFEST bytes.
 * The body's digest is returned in *digest; when reference is a digest the body must hash to
 * it (EVERIFY), and a Docker-Content-Digest header must agree with the body. ENOTFOUND for
 * 404 (also for a tag-listing tag that does not exist). */
CL_MUST_CHECK int cl_image_registry_manifest(struct cl_image_registry *r, const char *reference,
                                             cl_bytes **body, size_t *len, cl_str **content_type,
                                             struct cl_image_digest *digest, struct cl_err *err);
/* A small blob (config, signature payload) into memory, checked against desc's digest and
 * size; at most max bytes. */
CL_MUST_CHECK int cl_image_registry_blob_mem(struct cl_image_registry *r,
                                             const struct cl_image_desc *desc, size_t max,
                                             cl_bytes **body, struct cl_err *err);

/* Progress: called with the byte count of each chunk as it arrives. */
typedef void (*cl_image_bytes_fn)(void *ctx, uint64_t n);

/* Extra check computed over the blob bytes while they stream (the ocicrypt HMAC). */
struct cl_image_blob_mac {
    const struct cl_secret *key; /* HMAC-SHA256 key */
    const uint8_t *expect;       /* 32 bytes */
};

/*
 * Downloads a blob into dirfd/<name>.partial, resuming a partial file left by an earlier
 * attempt (Range request; a server that answers 200 restarts it), retrying transport errors
 * and 5xx up to the retry cap, with every byte hashed as it is written. When the size and
 * digest match (and the MAC, if given, in constant time), the file is renamed dirfd/<name>.
 * EVERIFY (digest, size or MAC mismatch: the partial file is removed), ELIMIT (more bytes than
 * the descriptor declares), EIO, ENOTFOUND.
 */
CL_MUST_CHECK int cl_image_registry_blob_file(struct cl_image_registry *r,
                                              const struct cl_image_desc *desc, int dirfd,
                                              const char *name, const struct cl_image_blob_mac *mac,
                                              cl_image_bytes_fn progress, void *progress_ctx,
                                              struct cl_err *err);

/* ---- layer pipeline pieces (exposed for tests and fuzzing) ---- */

/* A pull source: fills buf with up to cap bytes; *got = 0 means end of stream. */
struct cl_image_src {
    int (*read)(struct cl_image_src *self, uint8_t *buf, size_t cap, size_t *got,
                struct cl_err *err);
};

/* Decompressing source over `inner` (borrowed); gzip accepts several members, zstd several
 * frames; the stream must start with the format's magic. At most `max_out` bytes come out
 * (ELIMIT beyond: the decompression-bomb cap). Returns new or NULL. */
struct cl_image_src *cl_image_decompress_new(struct cl_image_src *inner,
                                             enum cl_image_compression comp, uint64_t max_out,
                                             struct cl_err *err);
void cl_image_decompress_free(struct cl_image_src *s);
/* Source over a memory buffer (borrowed) and over a file descriptor (borrowed). */
struct cl_image_mem_src {
    struct cl_image_src src;
    const uint8_t *buf;
    size_t len, off;
};
void cl_image_mem_src_init(struct cl_image_mem_src *m, const void *buf, size_t len);

/* ---- tar reader ---- */

enum cl_image_tar_type {
    CL_TAR_REG = '0',
    CL_TAR_LINK = '1',
    CL_TAR_SYMLINK = '2',
    CL_TAR_CHR = '3',
    CL_TAR_BLK = '4',
    CL_TAR_DIR = '5',
    CL_TAR_FIFO = '6',
};

struct cl_image_tar_xattr {
    const char *name; /* borrowed from the reader, valid until the next entry */
    const uint8_t *value;
    size_t len;
};

struct cl_image_tar_entry {
    enum cl_image_tar_type type;
    char path[CL_IMAGE_MAX_PATH + 1]; /* as in the archive (pax/GNU long names applied) */
    char link[CL_IMAGE_MAX_PATH + 1]; /* hard link or symlink target */
    uint64_t size;                    /* data bytes (regular files) */
    uint32_t mode;                    /* permission bits incl. setuid/setgid/sticky */
    uint64_t uid, gid;
    int64_t mtime;
    uint32_t mtime_nsec;
    uint32_t devmajor, devminor;
    size_t nxattrs;
    struct cl_image_tar_xattr xattrs[CL_IMAGE_MAX_XATTRS];
};

struct cl_image_tar;
/* Reader over src (borrowed). Returns new or NULL. */
struct cl_image_tar *cl_image_tar_new(struct cl_image_src *src, struct cl_err *err);
void cl_image_tar_free(struct cl_image_tar *t);
/* Next entry (borrowed, valid until the next call): 1 with *e set, 0 at the end of the
 * archive (the rest of the stream is then read and dropped, so a hash over src covers it),
 * <0 on error: EPARSE (checksum, bad numbers, truncation, a zero block followed by more, pax
 * records), EUNSUPPORTED (sparse and unknown entry types), ELIMIT (paths, pax headers,
 * xattrs beyond the caps). Unread data of the previous entry is skipped. */
CL_MUST_CHECK int cl_image_tar_next(struct cl_image_tar *t, struct cl_image_tar_entry **e,
                                    struct cl_err *err);
/* Data of the current entry: *got = 0 at its end. */
CL_MUST_CHECK int cl_image_tar_read(struct cl_image_tar *t, uint8_t *buf, size_t cap, size_t *got,
                                    struct cl_err *err);

/* ---- confined unpack ---- */

enum cl_image_whiteouts {
    CL_IMAGE_WH_OVERLAY, /* keep as overlayfs markers: 0:0 char device, opaque xattr */
    CL_IMAGE_WH_APPLY,   /* apply to what lower layers left in the same tree (flat rootfs) */
};

struct cl_image_unpack_opts {
    enum cl_image_whiteouts whiteouts;
    bool same_owner;        /* chown entries to their uid/gid (root) */
    bool allow_devices;     /* create char/block devices; otherwise they are skipped */
    uint64_t max_entries;   /* 0 → CL_IMAGE_DEFAULT_MAX_ENTRIES */
    int64_t layer_start_ns; /* CL_IMAGE_WH_APPLY: entries changed at or after this instant
                               (CLOCK_REALTIME) belong to this layer (set by the caller
                               with cl_image_unpack_layer_start) */
};

/* Marks the start of a layer applied into the tree rootfd: waits until the file system's
 * ctime has moved on, so that everything earlier layers changed is strictly older than
 * *start. */
CL_MUST_CHECK int cl_image_unpack_layer_start(int rootfd, int64_t *start, struct cl_err *err);

/*
 * Unpacks the tar stream of src into the directory rootfd (an O_PATH or O_RDONLY directory
 * descriptor, borrowed). Entry paths are relative to the root ("/" and "./" prefixes are
 * dropped); a ".." component is refused (EPARSE); every lookup is openat2 with
 * RESOLVE_IN_ROOT, so symlinks and hard links resolve inside the root whatever they say.
 * Regular files, directories (merged when present), symlinks, hard links, FIFOs, devices (see
 * allow_devices), modes, ownership, mtimes, xattrs (user.*, security.capability; trusted.* and
 * other namespaces are dropped), OCI whiteouts per opts. Stats (may be NULL) are filled as it
 * goes. On error the tree is left as it is: the caller unpacks into a staging directory.
 */
CL_MUST_CHECK int cl_image_unpack(int rootfd, struct cl_image_src *src,
                                  const struct cl_image_unpack_opts *opts,
                                  struct cl_image_unpack_stats *stats, struct cl_err *err);
/* Removes dirfd/name and everything below it, in constant memory; ENOENT is success. */
CL_MUST_CHECK int cl_image_rmtree(int dirfd, const char *name, struct cl_err *err);

/* ---- ocicrypt layer keys ---- */

#define CL_IMAGE_ENC_CIPHER "AES_256_CTR_HMAC_SHA256"

/* The unwrapped private options of an encrypted layer. */
struct cl_image_layer_key {
    struct cl_secret *symkey; /* owned, 32 bytes */
    uint8_t nonce[16];
    uint8_t hmac[32];                    /* from the public options */
    struct cl_image_digest plain_digest; /* digest of the decrypted (compressed) layer */
};
void cl_image_layer_key_clear(struct cl_image_layer_key *k);

/* Finds and opens the layer key of an encrypted descriptor: the JWE recipients
 * (org.opencontainers.image.enc.keys.jwe; RSA-OAEP, RSA-OAEP-256, ECDH-ES+A256KW with
 * A256GCM) with each private key, else the key providers
 * (org.opencontainers.image.enc.keys.provider.<name>), and checks the public options
 * (cipher, hmac). EVERIFY when no key opens it ("encrypted for another key"), EPARSE for
 * malformed annotations, EUNSUPPORTED for other schemes (pkcs7, pgp, pkcs11). */
CL_MUST_CHECK int cl_image_layer_key_open(const struct cl_image_desc *desc,
                                          const struct cl_image_decrypt *dc,
                                          struct cl_image_layer_key *out, struct cl_err *err);
/* AES-256-CTR decrypting source over inner (borrowed) with the layer key (borrowed). The
 * caller has already checked the HMAC over the whole ciphertext (the blob download does); the
 * plaintext is hashed as it flows and checked against plain_digest at the end (EVERIFY).
 * Returns new or NULL. */
struct cl_image_src *cl_image_decrypt_new(struct cl_image_src *inner,
                                          const struct cl_image_layer_key *key, struct cl_err *err);
void cl_image_decrypt_free(struct cl_image_src *s);

/* Encrypts (for tests and tools): AES-256-CTR with a fresh key and nonce, returns the layer
 * key (with hmac of the ciphertext) and the ciphertext (new). */
CL_MUST_CHECK int cl_image_encrypt_buf(const void *plain, size_t len,
                                       struct cl_image_layer_key *key, cl_bytes **ct,
                                       struct cl_err *err);
/* The private options JSON {"symkey","digest","cipheroptions":{"nonce"}} (new secret) and the
 * public options JSON {"cipher","hmac","cipheroptions":{}} (new string) of a layer key. */
struct cl_secret *cl_image_layer_key_privopts(const struct cl_image_layer_key *k,
                                              struct cl_err *err);
cl_str *cl_image_layer_key_pubopts(const struct cl_image_layer_key *k, struct cl_err *err);

/* ---- signature checks ---- */

/* The requirements that apply to ref ("docker" transport scopes: the full reference, the
 * repository and its parent namespaces, the registry host, "*.domain" wildcards, then
 * "default"), as a JSON array (borrowed from the policy). */
const json_t *cl_image_policy_scope(const struct cl_image_policy *p, const struct cl_image_ref *ref,
                                    const char **scope_name);

/* What the policy check needs to know about the image, and how to get its signatures. */
struct cl_image_sigsrc {
    const struct cl_image_ref *ref;
    const struct cl_image_digest *manifest_digest; /* the image manifest */
    const struct cl_image_digest *index_digest;    /* the index it came from, or NULL */
    /* Simple-signing signatures of `digest` (lookaside); return new blobs in *sigs (each
     * freed with free, array too) or 0 signatures. */
    int (*simple_sigs)(void *ctx, const struct cl_image_digest *digest, cl_bytes ***sigs,
                       size_t **lens, size_t *n, struct cl_err *err);
    /* Cosign signatures attached as <repo>:<alg>-<hex>.sig: payloads and base64 signatures. */
    int (*cosign_sigs)(void *ctx, const struct cl_image_digest *digest, cl_bytes ***payloads,
                       size_t **lens, cl_str ***sigs, size_t *n, struct cl_err *err);
    void *ctx;
    const struct cl_image_resources *resources; /* kbs:// key paths */
};
/* Evaluates every requirement that applies (all must pass): 0 when allowed, EDENIED for
 * reject / a missing signature, EVERIFY for a signature that does not verify or names
 * another image, with the scope and requirement named in err. */
CL_MUST_CHECK int cl_image_policy_check(const struct cl_image_policy *p,
                                        const struct cl_image_sigsrc *src, struct cl_err *err);

/* GPG simple signing: verifies an OpenPGP signed message against the public keys in
 * keyring (armored or binary, possibly several keys) and returns the signed payload (new).
 * EVERIFY when the signature is bad or made by a key that is not in the keyring. */
CL_MUST_CHECK int cl_image_gpg_verify(const uint8_t *keyring, size_t klen, const uint8_t *sig,
                                      size_t slen, cl_bytes **payload, size_t *plen,
                                      struct cl_err *err);
/* Cosign: verifies base64 signature `sig_b64` over payload with a PEM public key. */
CL_MUST_CHECK int cl_image_cosign_verify(const char *pem, size_t pemlen, const uint8_t *payload,
                                         size_t plen, const char *sig_b64, struct cl_err *err);
/* Checks a signature payload ({"critical": {"type", "image": {"docker-manifest-digest"},
 * "identity": {"docker-reference"}}, "optional": {...}}) against the image: type must be
 * `type`, the digest one of the given ones, the identity per signedIdentity (NULL = the
 * requirement's default: matchRepoDigestOrExact for GPG, matchRepository for cosign).
 * EVERIFY naming the mismatch. */
CL_MUST_CHECK int cl_image_sig_payload_check(const uint8_t *payload, size_t plen, const char *type,
                                             const struct cl_image_sigsrc *src,
                                             const json_t *signed_identity,
                                             const char *default_identity, struct cl_err *err);

/* The lookaside base URL for ref (new) or NULL when none is configured; *use_sigstore tells
 * whether cosign attachments are enabled for it. */
cl_str *cl_image_lookaside_url(const struct cl_image_lookaside *l, const struct cl_image_ref *ref,
                               bool *use_sigstore);

#endif
