/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pull engine: endpoints → manifest (index → platform) → config → signature policy
 * (every pull) → layer keys → layers, `concurrency` at a time, each through
 *
 *   download (digest + HMAC while spooling) → verified blob → decrypt → decompress
 *            → diff_id hash → confined untar into a staging folder → rename into place
 *
 * Layered mode shares layers between images by diff_id and records the image for the agent;
 * flat mode applies the layers in order to one staging tree renamed to the target at the
 * end. Nothing half-written is ever visible under its final name.
 */
#include "image/image_int.h"
#include "net/http_stream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define COSIGN_SIG_TYPE "application/vnd.dev.cosign.simplesigning.v1+json"
#define COSIGN_SIG_ANN "dev.cosignproject.cosign/signature"

enum job_state { JOB_PENDING, JOB_RUNNING, JOB_FETCHED, JOB_DONE, JOB_FAILED };

struct job {
    const struct cl_image_desc *desc;
    const struct cl_image_digest *diff_id;
    struct cl_image_layer_key key;
    bool has_key;
    bool cached;
    enum job_state state;
    char blob[CL_IMAGE_DIGEST_STR + 8];
};

struct pull {
    const struct cl_image_pull_opts *o;
    struct cl_image_ref ref;
    struct cl_image_registry *reg;
    struct cl_image_endpoint ep;
    struct cl_image_manifest manifest;
    struct cl_image_config config;
    cl_bytes *manifest_raw, *config_raw;
    size_t manifest_len, config_len;
    struct job *jobs;
    size_t njobs;
    int blobs_fd, layers_fd, rootfd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t next;
    bool abort;
    int first_rc;
    struct cl_err first_err;
    uint64_t bytes_done, bytes_total;
    size_t layers_done;
    struct cl_image_unpack_stats stats;
    struct cl_image_pull_result *out;
};

/* ---- progress ---- */

static void emit(struct pull *p, enum cl_image_event ev, size_t layer, const char *digest,
                 const char *msg)
{
    if (!p->o->progress)
        return;
    struct cl_image_progress pr = {
        .ev = ev,
        .layer = layer,
        .nlayers = p->njobs,
        .digest = digest,
        .layer_size = layer < p->njobs ? p->jobs[layer].desc->size : 0,
        .bytes_done = p->bytes_done,
        .bytes_total = p->bytes_total,
        .layers_done = p->layers_done,
        .message = msg,
    };
    p->o->progress(p->o->progress_ctx, &pr);
}

static void on_bytes(void *ctx, uint64_t n)
{
    struct pull *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->bytes_done += n;
    emit(p, CL_IMAGE_EV_LAYER_BYTES, SIZE_MAX, NULL, NULL);
    pthread_mutex_unlock(&p->mu);
}

static void on_retry(void *ctx, const char *why)
{
    struct pull *p = ctx;
    pthread_mutex_lock(&p->mu);
    emit(p, CL_IMAGE_EV_RETRY, SIZE_MAX, NULL, why);
    pthread_mutex_unlock(&p->mu);
}

static void event(struct pull *p, enum cl_image_event ev, size_t layer, const char *digest)
{
    pthread_mutex_lock(&p->mu);
    if (ev == CL_IMAGE_EV_LAYER_DONE || ev == CL_IMAGE_EV_LAYER_CACHED)
        p->layers_done++;
    emit(p, ev, layer, digest, NULL);
    pthread_mutex_unlock(&p->mu);
}

/* ---- signatures for the policy ---- */

struct memsink {
    uint8_t *buf;
    size_t len, max;
};

static int memsink_data(void *ctx, const uint8_t *buf, size_t len, struct cl_err *err)
{
    struct memsink *m = ctx;
    if (len > m->max - m->len)
        return cl_err_set(err, CL_ELIMIT, "signature larger than %zu bytes", m->max);
    uint8_t *nb = realloc(m->buf, m->len + len + 1);
    if (!nb)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    m->buf = nb;
    memcpy(m->buf + m->len, buf, len);
    m->len += len;
    return 0;
}

/* One lookaside signature: 1 found, 0 none at this index, <0 error. */
static int lookaside_get(const char *url, struct cl_http_stream *http, cl_bytes **out, size_t *len,
                         struct cl_err *err)
{
    if (strncmp(url, "file://", 7) == 0) {
        cl_bytes *b = cl_file_read(url + 7, CL_IMAGE_MAX_SIGNATURE, len, err);
        if (b) {
            *out = b;
            return 1;
        }
        return err && err->code == CL_ENOTFOUND ? 0 : (err ? err->code : CL_EIO);
    }
    struct memsink m = {.max = CL_IMAGE_MAX_SIGNATURE};
    struct cl_http_stream_req req = {.url = url,
                                     .follow_redirects = true,
                                     .on_data = memsink_data,
                                     .ctx = &m,
                                     .timeout_ms = cl_image_deadline_ms(CL_IMAGE_DEADLINE_BASE_MS,
                                                                        CL_IMAGE_MIN_RATE,
                                                                        CL_IMAGE_MAX_SIGNATURE)};
    struct cl_http_stream_result res = {0};
    int rc = cl_http_stream_do(http, &req, &res, err);
    long st = res.status;
    cl_http_stream_result_clear(&res);
    if (rc < 0 || st != 200) {
        free(m.buf);
        if (rc < 0)
            return rc;
        return st == 404 ? 0 : cl_err_set(err, CL_EIO, "lookaside %.200s: HTTP %ld", url, st);
    }
    *out = m.buf ? m.buf : calloc(1, 1);
    *len = m.len;
    return *out ? 1 : cl_err_set(err, CL_ENOMEM, "out of memory");
}

static int simple_sigs(void *ctx, const struct cl_image_digest *digest, cl_bytes ***sigs,
                       size_t **lens, size_t *n, struct cl_err *err)
{
    struct pull *p = ctx;
    *sigs = NULL;
    *lens = NULL;
    *n = 0;
    bool use_sigstore = false;
    CL_AUTO(cl_str) *base = cl_image_lookaside_url(p->o->lookaside, &p->ref, &use_sigstore);
    if (!base)
        return 0;
    if (strncmp(base, "file://", 7) != 0 && strncmp(base, "http://", 7) != 0 &&
        strncmp(base, "https://", 8) != 0)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "lookaside '%.200s': only file://, http:// and https://", base);
    struct cl_http_stream *http = NULL;
    if (strncmp(base, "file://", 7) != 0 && !(http = cl_http_stream_new(NULL, err)))
        return err ? err->code : CL_EIO;
    cl_bytes **s = calloc(CL_IMAGE_MAX_SIGNATURES, sizeof *s);
    size_t *l = calloc(CL_IMAGE_MAX_SIGNATURES, sizeof *l);
    int rc = s && l ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
    size_t cnt = 0;
    while (rc == 0 && cnt < CL_IMAGE_MAX_SIGNATURES) {
        CL_AUTO(cl_str) *url = cl_strdupf("%s/%s@%s=%s/signature-%zu", base, p->ref.repository,
                                          cl_hash_name(digest->alg), digest->hex, cnt + 1);
        if (!url) {
            rc = cl_err_set(err, CL_ENOMEM, "out of memory");
            break;
        }
        struct cl_err e = {0};
        int got = lookaside_get(url, http, &s[cnt], &l[cnt], &e);
        if (got < 0) {
            if (err)
                *err = e;
            rc = got;
        } else if (got == 0) {
            break;
        } else {
            cnt++;
        }
    }
    cl_http_stream_free(http);
    if (rc < 0) {
        for (size_t i = 0; s && i < cnt; i++)
            free(s[i]);
        free(s);
        free(l);
        return rc;
    }
    *sigs = s;
    *lens = l;
    *n = cnt;
    return 0;
}

static int cosign_sigs(void *ctx, const struct cl_image_digest *digest, cl_bytes ***payloads,
                       size_t **lens, cl_str ***sigs, size_t *n, struct cl_err *err)
{
    struct pull *p = ctx;
    *payloads = NULL;
    *lens = NULL;
    *sigs = NULL;
    *n = 0;
    char tag[CL_IMAGE_DIGEST_STR + 16];
    snprintf(tag, sizeof tag, "%s-%s.sig", cl_hash_name(digest->alg), digest->hex);
    cl_bytes *body = NULL;
    size_t blen = 0;
    cl_str *ct = NULL;
    struct cl_image_digest got;
    struct cl_err e = {0};
    int rc = cl_image_registry_manifest(p->reg, tag, &body, &blen, &ct, &got, &e);
    if (rc == CL_ENOTFOUND)
        return 0;
    if (rc < 0) {
        if (err)
            *err = e;
        return rc;
    }
    struct cl_image_manifest m = {0};
    rc = cl_image_manifest_parse_any(body, blen, ct, true, &m, err);
    free(body);
    free(ct);
    if (rc < 0)
        return cl_err_prefix(err, "cosign signature manifest %s", tag);
    if (m.kind != CL_IMAGE_MANIFEST) {
        cl_image_manifest_clear(&m);
        return cl_err_set(err, CL_EPARSE, "cosign signature %s: not an image manifest", tag);
    }
    size_t cap = m.nlayers < CL_IMAGE_MAX_SIGNATURES ? m.nlayers : CL_IMAGE_MAX_SIGNATURES;
    cl_bytes **pl = calloc(cap + 1, sizeof *pl);
    size_t *ll = calloc(cap + 1, sizeof *ll);
    cl_str **ss = calloc(cap + 1, sizeof *ss);
    size_t cnt = 0;
    rc = pl && ll && ss ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < m.nlayers && cnt < cap; i++) {
        const struct cl_image_desc *d = &m.layers[i];
        const char *sig = json_string_value(json_object_get(d->annotations, COSIGN_SIG_ANN));
        if (strcmp(d->media_type, COSIGN_SIG_TYPE) != 0 || !sig)
            continue;
        if ((rc = cl_image_registry_blob_mem(p->reg, d, CL_IMAGE_MAX_SIGNATURE, &pl[cnt], err)) < 0)
            break;
        ll[cnt] = (size_t)d->size;
        if (!(ss[cnt] = strdup(sig))) {
            free(pl[cnt]);
            rc = cl_err_set(err, CL_ENOMEM, "out of memory");
            break;
        }
        cnt++;
    }
    cl_image_manifest_clear(&m);
    if (rc < 0) {
        for (size_t i = 0; i < cnt; i++) {
            free(pl[i]);
            free(ss[i]);
        }
        free(pl);
        free(ll);
        free(ss);
        return rc;
    }
    *payloads = pl;
    *lens = ll;
    *sigs = ss;
    *n = cnt;
    return 0;
}

/* ---- layers ---- */

/* The decompression cap of a layer: the caller's, or the default lowered to what the target
 * filesystem can hold, less 1/16 for its own metadata, so that a layer which cannot fit is
 * refused by the cap before it has filled the disk (or, on a tmpfs, the VM's memory). */
static uint64_t layer_cap(const struct pull *p, int rootfd)
{
    if (p->o->max_layer_bytes)
        return p->o->max_layer_bytes;
    uint64_t cap = CL_IMAGE_DEFAULT_MAX_LAYER;
    struct statvfs sv;
    if (fstatvfs(rootfd, &sv) == 0 && sv.f_frsize > 0) {
        uint64_t freeb = (uint64_t)sv.f_bavail;
        freeb = freeb > UINT64_MAX / sv.f_frsize ? UINT64_MAX : freeb * sv.f_frsize;
        uint64_t fit = freeb - freeb / 16;
        if (fit < cap) {
            cap = fit;
            cl_info("layer decompression cap lowered to %llu bytes: the target has %llu bytes "
                    "free (--max-layer-bytes sets it)",
                    (unsigned long long)cap, (unsigned long long)freeb);
        }
    }
    return cap;
}

static int open_layer_src(struct pull *p, struct job *j, int fd, int rootfd,
                          struct cl_image_fd_src *fsrc, struct cl_image_src **dec,
                          struct cl_image_src **dz, struct cl_image_hash_src *hs,
                          struct cl_err *err)
{
    cl_image_fd_src_init(fsrc, fd);
    struct cl_image_src *s = &fsrc->src;
    if (j->has_key) {
        if (!(*dec = cl_image_decrypt_new(s, &j->key, err)))
            return err ? err->code : CL_ENOMEM;
        s = *dec;
    }
    if (!(*dz = cl_image_decompress_new(s, j->desc->compression, layer_cap(p, rootfd), err)))
        return err ? err->code : CL_ENOMEM;
    return cl_image_hash_src_init(hs, *dz, j->diff_id->alg, err);
}

/* Unpacks the verified blob of job j into rootfd and checks the diff_id. */
static int unpack_layer(struct pull *p, struct job *j, int rootfd,
                        const struct cl_image_unpack_opts *uo, struct cl_err *err)
{
    int fd = openat(p->blobs_fd, j->blob, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return cl_err_set(err, CL_EIO, "layer %s: open blob: %s", j->desc->digest.str,
                          strerror(errno));
    struct cl_image_fd_src fsrc;
    struct cl_image_src *dec = NULL, *dz = NULL;
    struct cl_image_hash_src hs = {0};
    struct cl_image_unpack_stats st = {0};
    int rc = open_layer_src(p, j, fd, rootfd, &fsrc, &dec, &dz, &hs, err);
    if (rc == 0)
        rc = cl_image_unpack(rootfd, &hs.src, uo, &st, err);
    if (rc == 0) {
        struct cl_image_digest got;
        if ((rc = cl_image_hasher_final(&hs.h, &got, err)) == 0 &&
            !cl_image_digest_eq(&got, j->diff_id))
            rc = cl_err_stage(err, CL_EVERIFY, "diff_id",
                              "layer %s: uncompressed content hashes to %s, the config "
                              "says %s",
                              j->desc->digest.str, got.str, j->diff_id->str);
    }
    if (rc < 0 && err)
        cl_err_prefix(err, "layer %s", j->desc->digest.str);
    cl_image_hasher_free(&hs.h);
    cl_image_decompress_free(dz);
    cl_image_decrypt_free(dec);
    close(fd);
    pthread_mutex_lock(&p->mu);
    p->stats.entries += st.entries;
    p->stats.files += st.files;
    p->stats.dirs += st.dirs;
    p->stats.symlinks += st.symlinks;
    p->stats.hardlinks += st.hardlinks;
    p->stats.whiteouts += st.whiteouts;
    p->stats.skipped_devices += st.skipped_devices;
    p->stats.bytes += st.bytes;
    p->stats.userxattr = p->stats.userxattr || st.userxattr;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

static int fetch_layer(struct pull *p, struct job *j, struct cl_err *err)
{
    struct cl_image_blob_mac mac = {0};
    if (j->has_key) {
        mac.key = j->key.symkey;
        mac.expect = j->key.hmac;
    }
    return cl_image_registry_blob_file(p->reg, j->desc, p->blobs_fd, j->blob,
                                       j->has_key ? &mac : NULL, on_bytes, p, err);
}

/* Layered mode: one layer from download to layers/<alg>/<hex>. */
static int layered_layer(struct pull *p, size_t i, struct cl_err *err)
{
    struct job *j = &p->jobs[i];
    const char *hex = j->diff_id->hex;
    if (faccessat(p->layers_fd, hex, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
        j->cached = true;
        event(p, CL_IMAGE_EV_LAYER_CACHED, i, j->desc->digest.str);
        return 0;
    }
    event(p, CL_IMAGE_EV_LAYER_START, i, j->desc->digest.str);
    int rc = fetch_layer(p, j, err);
    if (rc < 0)
        return rc;
    event(p, CL_IMAGE_EV_LAYER_VERIFIED, i, j->desc->digest.str);
    uint8_t rnd[6];
    if ((rc = cl_random(rnd, sizeof rnd, err)) < 0)
        return rc;
    char staging[CL_IMAGE_DIGEST_STR + 40];
    snprintf(staging, sizeof staging, ".tmp-%.16s-%02x%02x%02x%02x%02x%02x", hex, rnd[0], rnd[1],
             rnd[2], rnd[3], rnd[4], rnd[5]);
    if (mkdirat(p->layers_fd, staging, 0755) < 0)
        return cl_err_set(err, CL_EIO, "layer staging %s: %s", staging, strerror(errno));
    int sfd = openat(p->layers_fd, staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    struct cl_image_unpack_opts uo = {
        .whiteouts = CL_IMAGE_WH_OVERLAY,
        .same_owner = p->o->same_owner,
        .allow_devices = p->o->allow_devices,
    };
    rc = sfd < 0 ? cl_err_set(err, CL_EIO, "layer staging: %s", strerror(errno))
                 : unpack_layer(p, j, sfd, &uo, err);
    if (sfd >= 0)
        close(sfd);
    if (rc == 0 && renameat(p->layers_fd, staging, p->layers_fd, hex) < 0) {
        if (errno != EEXIST && errno != ENOTEMPTY)
            rc = cl_err_set(err, CL_EIO, "layer %s: rename: %s", hex, strerror(errno));
        /* another pull stored the same layer first: theirs stays */
    }
    struct cl_err e2 = {0};
    if (faccessat(p->layers_fd, staging, F_OK, AT_SYMLINK_NOFOLLOW) == 0 &&
        cl_image_rmtree(p->layers_fd, staging, &e2) < 0)
        cl_warn("layer staging %s: %s", staging, e2.msg);
    if (rc == 0 && !p->o->keep_blobs)
        unlinkat(p->blobs_fd, j->blob, 0);
    if (rc == 0)
        event(p, CL_IMAGE_EV_LAYER_DONE, i, j->desc->digest.str);
    return rc;
}

static void *worker(void *arg)
{
    struct pull *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        if (p->abort || p->next >= p->njobs) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        size_t i = p->next++;
        p->jobs[i].state = JOB_RUNNING;
        pthread_mutex_unlock(&p->mu);
        struct cl_err e = {0};
        int rc;
        if (p->o->mode == CL_IMAGE_LAYERED) {
            rc = layered_layer(p, i, &e);
        } else {
            event(p, CL_IMAGE_EV_LAYER_START, i, p->jobs[i].desc->digest.str);
            rc = fetch_layer(p, &p->jobs[i], &e);
            if (rc == 0)
                event(p, CL_IMAGE_EV_LAYER_VERIFIED, i, p->jobs[i].desc->digest.str);
        }
        pthread_mutex_lock(&p->mu);
        p->jobs[i].state = rc < 0                           ? JOB_FAILED
                           : p->o->mode == CL_IMAGE_LAYERED ? JOB_DONE
                                                            : JOB_FETCHED;
        if (rc < 0 && !p->abort) {
            p->abort = true;
            p->first_rc = rc;
            p->first_err = e;
        }
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Flat mode: apply each fetched layer in order while later ones download. */
static int flat_apply(struct pull *p, struct cl_err *err)
{
    for (size_t i = 0; i < p->njobs; i++) {
        struct job *j = &p->jobs[i];
        pthread_mutex_lock(&p->mu);
        while (!p->abort && j->state != JOB_FETCHED)
            pthread_cond_wait(&p->cv, &p->mu);
        bool stop = p->abort;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            return CL_EIO; /* the worker's error is reported */
        struct cl_image_unpack_opts uo = {
            .whiteouts = CL_IMAGE_WH_APPLY,
            .same_owner = p->o->same_owner,
            .allow_devices = p->o->allow_devices,
        };
        int rc = 0;
        if (i > 0 && (rc = cl_image_unpack_layer_start(p->rootfd, &uo.layer_start_ns, err)) < 0)
            return rc;
        if ((rc = unpack_layer(p, j, p->rootfd, &uo, err)) < 0)
            return rc;
        unlinkat(p->blobs_fd, j->blob, 0);
        pthread_mutex_lock(&p->mu);
        j->state = JOB_DONE;
        pthread_mutex_unlock(&p->mu);
        event(p, CL_IMAGE_EV_LAYER_DONE, i, j->desc->digest.str);
    }
    return 0;
}

static int run_layers(struct pull *p, struct cl_err *err)
{
    unsigned n = p->o->concurrency ? p->o->concurrency : CL_IMAGE_DEFAULT_CONCURRENCY;
    if (n > CL_IMAGE_MAX_CONCURRENCY)
        n = CL_IMAGE_MAX_CONCURRENCY;
    if (n > p->njobs)
        n = (unsigned)p->njobs;
    pthread_t th[CL_IMAGE_MAX_CONCURRENCY];
    unsigned started = 0;
    int rc = 0;
    for (; started < n; started++) {
        if (pthread_create(&th[started], NULL, worker, p) != 0) {
            pthread_mutex_lock(&p->mu);
            p->abort = true;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
            rc = cl_err_set(err, CL_EIO, "pull: cannot start a download thread");
            break;
        }
    }
    if (rc == 0 && p->o->mode == CL_IMAGE_FLAT) {
        struct cl_err e = {0};
        int fr = flat_apply(p, &e);
        if (fr < 0) {
            pthread_mutex_lock(&p->mu);
            if (!p->abort) {
                p->abort = true;
                p->first_rc = fr;
                p->first_err = e;
            }
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (rc == 0 && p->abort) {
        rc = p->first_rc;
        if (err)
            *err = p->first_err;
    }
    return rc;
}

/* ---- resolving the image ---- */

static int fetch_manifest(struct pull *p, struct cl_err *err)
{
    const char *want = p->ref.digest ? p->ref.digest : p->ref.tag;
    cl_str *ct = NULL;
    struct cl_image_digest dg;
    int rc =
        cl_image_registry_manifest(p->reg, want, &p->manifest_raw, &p->manifest_len, &ct, &dg, err);
    if (rc < 0)
        return rc;
    rc = cl_image_manifest_parse(p->manifest_raw, p->manifest_len, ct, &p->manifest, err);
    free(ct);
    if (rc < 0)
        return rc;
    if (p->manifest.kind == CL_IMAGE_INDEX) {
        const char *os, *arch, *variant;
        cl_image_platform(&os, &arch, &variant);
        if (p->o->os)
            os = p->o->os;
        if (p->o->arch) {
            arch = p->o->arch;
            variant = p->o->variant;
        }
        size_t which = 0;
        if ((rc = cl_image_index_select(&p->manifest, os, arch, variant, &which, err)) < 0)
            return rc;
        p->out->from_index = true;
        p->out->index_digest = dg;
        struct cl_image_digest inst = p->manifest.layers[which].digest;
        cl_image_manifest_clear(&p->manifest);
        free(p->manifest_raw);
        p->manifest_raw = NULL;
        if ((rc = cl_image_registry_manifest(p->reg, inst.str, &p->manifest_raw, &p->manifest_len,
                                             &ct, &dg, err)) < 0)
            return rc;
        rc = cl_image_manifest_parse(p->manifest_raw, p->manifest_len, ct, &p->manifest, err);
        free(ct);
        if (rc < 0)
            return rc;
        if (p->manifest.kind != CL_IMAGE_MANIFEST)
            return cl_err_set(err, CL_EPARSE, "index entry %s is not an image manifest", inst.str);
    }
    p->out->manifest_digest = dg;
    return 0;
}

static int resolve(struct pull *p, struct cl_err *err)
{
    struct cl_image_endpoint eps[8];
    size_t neps = 0;
    int rc = cl_image_regconf_resolve(p->o->regconf, &p->ref, eps, &neps, err);
    if (rc < 0)
        return rc;
    char tried[CL_ERR_MSG_MAX] = "";
    size_t toff = 0;
    rc = CL_ENOTFOUND;
    for (size_t i = 0; i < neps; i++) {
        struct cl_err e = {0};
        struct cl_image_registry_opts ro = p->o->registry;
        if (!ro.on_retry) {
            ro.on_retry = on_retry;
            ro.retry_ctx = p;
        }
        struct cl_image_registry *reg = cl_image_registry_new(&eps[i], &ro, &e);
        if (reg) {
            cl_image_registry_free(p->reg);
            p->reg = reg;
            cl_image_manifest_clear(&p->manifest);
            free(p->manifest_raw);
            p->manifest_raw = NULL;
            rc = fetch_manifest(p, &e);
        } else {
            rc = e.code;
        }
        if (rc == 0) {
            cl_image_endpoint_clear(&p->ep);
            p->ep = eps[i];
            memset(&eps[i], 0, sizeof eps[i]);
            break;
        }
        int w = snprintf(tried + toff, sizeof tried - toff, "%s%s: %s", toff ? "; " : "",
                         eps[i].host, e.msg);
        if (w > 0)
            toff = (size_t)w < sizeof tried - toff ? toff + (size_t)w : sizeof tried - 1;
        if (err)
            *err = e;
        /* a manifest that fails its digest is an attack, not a reason to ask elsewhere */
        if (rc == CL_EVERIFY)
            break;
    }
    for (size_t i = 0; i < neps; i++)
        cl_image_endpoint_clear(&eps[i]);
    if (rc < 0 && neps > 1 && err)
        cl_err_set(err, rc, "pull %s: every endpoint failed: %s", p->ref.repository, tried);
    return rc;
}

static int fetch_config(struct pull *p, struct cl_err *err)
{
    int rc = cl_image_registry_blob_mem(p->reg, &p->manifest.config, CL_IMAGE_MAX_CONFIG,
                                        &p->config_raw, err);
    if (rc < 0)
        return cl_err_prefix(err, "image config");
    p->config_len = (size_t)p->manifest.config.size;
    if ((rc = cl_image_config_parse(p->config_raw, p->config_len, &p->config, err)) < 0)
        return rc;
    p->out->config_digest = p->manifest.config.digest;
    if (p->config.ndiff_ids != p->manifest.nlayers)
        return cl_err_set(err, CL_EPARSE, "image: %zu layers but %zu diff_ids in the config",
                          p->manifest.nlayers, p->config.ndiff_ids);
    const char *os, *arch, *variant;
    cl_image_platform(&os, &arch, &variant);
    if (p->o->os)
        os = p->o->os;
    if (strcmp(p->config.os, os) != 0)
        return cl_err_set(err, CL_EUNSUPPORTED, "image is for os '%.32s', not '%s'", p->config.os,
                          os);
    return 0;
}

/* ---- stores ---- */

static int open_dir(int at, const char *path, int *fd, struct cl_err *err)
{
    if (mkdirat(at, path, 0700) < 0 && errno != EEXIST)
        return cl_err_set(err, CL_EIO, "mkdir %s: %s", path, strerror(errno));
    *fd = openat(at, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (*fd < 0)
        return cl_err_set(err, CL_EIO, "open %s: %s", path, strerror(errno));
    return 0;
}

static cl_str *layer_path(const char *dir, const struct cl_image_digest *d)
{
    return cl_strdupf("%s/layers/%s/%s", dir, cl_hash_name(d->alg), d->hex);
}

/* images/<alg>/<hex>/{manifest.json,config.json,image.json}, written in a staging folder */
static int write_image(struct pull *p, const char *dir, struct cl_err *err)
{
    char adir[4096];
    if (!realpath(dir, adir))
        return cl_err_set(err, CL_EIO, "%s: %s", dir, strerror(errno));
    /* lowerdir: top layer first */
    size_t cap = 64 + p->njobs * (strlen(adir) + 160);
    CL_AUTO(cl_str) *lower = calloc(1, cap);
    CL_AUTO(json_t) *layers = json_array();
    if (!lower || !layers)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    size_t off = 0;
    for (size_t i = p->njobs; i-- > 0;) {
        CL_AUTO(cl_str) *lp = layer_path(adir, p->jobs[i].diff_id);
        if (!lp)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        int w = snprintf(lower + off, cap - off, "%s%s", off ? ":" : "", lp);
        if (w < 0 || (size_t)w >= cap - off)
            return cl_err_set(err, CL_ELIMIT, "lowerdir too long");
        off += (size_t)w;
    }
    for (size_t i = 0; i < p->njobs; i++) {
        CL_AUTO(cl_str) *lp = layer_path(adir, p->jobs[i].diff_id);
        json_t *l = json_pack(
            "{s:s, s:s, s:s, s:I, s:b, s:s?}", "digest", p->jobs[i].desc->digest.str, "diff_id",
            p->jobs[i].diff_id->str, "media_type", p->jobs[i].desc->media_type, "size",
            (json_int_t)p->jobs[i].desc->size, "encrypted", p->jobs[i].desc->encrypted, "path", lp);
        if (!l || json_array_append_new(layers, l) < 0)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    CL_AUTO(cl_str) *reftxt = cl_image_ref_string(&p->ref);
    CL_AUTO(json_t) *img = json_pack(
        "{s:s?, s:s, s:s, s:s, s:O, s:s, s:b}", "reference", reftxt, "manifest_digest",
        p->out->manifest_digest.str, "config_digest", p->out->config_digest.str, "registry",
        p->ep.host, "layers", layers, "lowerdir", lower, "userxattr", p->stats.userxattr);
    if (!img)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    if (p->out->from_index &&
        json_object_set_new(img, "index_digest", json_string(p->out->index_digest.str)) < 0)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    CL_AUTO(cl_str) *imgtxt = json_dumps(img, JSON_INDENT(2) | JSON_SORT_KEYS);
    CL_AUTO(cl_str) *idir =
        cl_strdupf("%s/images/%s", dir, cl_hash_name(p->out->manifest_digest.alg));
    CL_AUTO(cl_str) * final = cl_strdupf("%s/%s", idir ? idir : "", p->out->manifest_digest.hex);
    CL_AUTO(cl_str) *mpath = cl_strdupf("%s/manifest.json", final ? final : "");
    CL_AUTO(cl_str) *cpath = cl_strdupf("%s/config.json", final ? final : "");
    CL_AUTO(cl_str) *ipath = cl_strdupf("%s/image.json", final ? final : "");
    if (!imgtxt || !idir || !final || !mpath || !cpath || !ipath)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    int rc;
    if ((rc = cl_mkdir_p(final, 0700, err)) < 0 ||
        (rc = cl_file_write_atomic(mpath, p->manifest_raw, p->manifest_len, 0600, err)) < 0 ||
        (rc = cl_file_write_atomic(cpath, p->config_raw, p->config_len, 0600, err)) < 0 ||
        (rc = cl_file_write_atomic(ipath, imgtxt, strlen(imgtxt), 0600, err)) < 0)
        return rc;
    p->out->lowerdir = CL_STEAL(lower);
    return 0;
}

/* ---- the whole pull ---- */

static int keys_for_layers(struct pull *p, struct cl_err *err)
{
    for (size_t i = 0; i < p->njobs; i++) {
        struct job *j = &p->jobs[i];
        j->desc = &p->manifest.layers[i];
        j->diff_id = &p->config.diff_ids[i];
        snprintf(j->blob, sizeof j->blob, "%s-%s", cl_hash_name(j->desc->digest.alg),
                 j->desc->digest.hex);
        p->bytes_total += j->desc->size;
        if (!j->desc->encrypted)
            continue;
        int rc = cl_image_layer_key_open(j->desc, p->o->decrypt, &j->key, err);
        if (rc < 0)
            return rc;
        j->has_key = true;
    }
    return 0;
}

/* 1 empty or absent, 0 has entries, -1 error (errno set). */
static int is_empty_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 1 : -1;
    int empty = 1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

static int pull_run(struct pull *p, const char *refstr, const char *dir, struct cl_err *err)
{
    const struct cl_image_pull_opts *o = p->o;
    int rc = cl_image_ref_parse(refstr, &p->ref, err);
    if (rc < 0)
        return rc;
    if (!o->policy)
        return cl_err_stage(err, CL_EDENIED, "policy", "no signature policy: pulling is denied");
    if (o->mode == CL_IMAGE_FLAT) {
        int e = is_empty_dir(dir);
        if (e < 0)
            return cl_err_set(err, CL_EIO, "%s: %s", dir, strerror(errno));
        if (e == 0)
            return cl_err_set(err, CL_EEXISTS, "%s: exists and is not empty", dir);
    }
    /* ---- manifest, config, policy ---- */
    if ((rc = resolve(p, err)) < 0)
        return rc;
    event(p, CL_IMAGE_EV_MANIFEST, SIZE_MAX, p->out->manifest_digest.str);
    if ((rc = fetch_config(p, err)) < 0)
        return rc;
    struct cl_image_sigsrc src = {
        .ref = &p->ref,
        .manifest_digest = &p->out->manifest_digest,
        .index_digest = p->out->from_index ? &p->out->index_digest : NULL,
        .simple_sigs = simple_sigs,
        .cosign_sigs = cosign_sigs,
        .ctx = p,
        .resources = o->resources,
    };
    if ((rc = cl_image_policy_check(o->policy, &src, err)) < 0)
        return rc;
    event(p, CL_IMAGE_EV_POLICY, SIZE_MAX, p->out->manifest_digest.str);
    /* ---- keys before any layer byte ---- */
    p->njobs = p->manifest.nlayers;
    p->jobs = calloc(p->njobs ? p->njobs : 1, sizeof *p->jobs);
    if (!p->jobs)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    if ((rc = keys_for_layers(p, err)) < 0)
        return rc;
    p->out->nlayers = p->njobs;
    /* ---- stores ---- */
    if (o->mode == CL_IMAGE_LAYERED) {
        int dfd = -1, lfd = -1;
        if ((rc = cl_mkdir_p(dir, 0700, err)) < 0 || (rc = open_dir(AT_FDCWD, dir, &dfd, err)) < 0)
            return rc;
        rc = open_dir(dfd, "blobs", &lfd, err);
        if (rc == 0) {
            rc = open_dir(lfd, "sha256", &p->blobs_fd, err);
            close(lfd);
        }
        if (rc == 0 && (rc = open_dir(dfd, "layers", &lfd, err)) == 0) {
            rc = open_dir(lfd, "sha256", &p->layers_fd, err);
            close(lfd);
        }
        /* sha512 diff_ids get their own folder */
        if (rc == 0 && p->njobs && p->jobs[0].diff_id->alg == CL_HASH_SHA512) {
            close(p->layers_fd);
            p->layers_fd = -1;
            if ((rc = open_dir(dfd, "layers", &lfd, err)) == 0) {
                rc = open_dir(lfd, "sha512", &p->layers_fd, err);
                close(lfd);
            }
        }
        close(dfd);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < p->njobs; i++)
            if (p->jobs[i].diff_id->alg != p->jobs[0].diff_id->alg)
                return cl_err_set(err, CL_EUNSUPPORTED, "image mixes diff_id algorithms");
        if ((rc = run_layers(p, err)) < 0)
            return rc;
        for (size_t i = 0; i < p->njobs; i++)
            p->out->layers_cached += p->jobs[i].cached;
        if ((rc = write_image(p, dir, err)) < 0)
            return rc;
    } else {
        /* <parent>/.<name>.pull/{blobs,rootfs}: blobs survive a failure for resuming */
        CL_AUTO(cl_str) *d1 = strdup(dir);
        CL_AUTO(cl_str) *d2 = strdup(dir);
        if (!d1 || !d2)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        const char *parent = dirname(d1);
        const char *base = basename(d2);
        CL_AUTO(cl_str) *work = cl_strdupf("%s/.%s.pull", parent, base);
        if (!work)
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        int wfd = -1;
        if ((rc = open_dir(AT_FDCWD, work, &wfd, err)) < 0)
            return rc;
        struct cl_err e2 = {0};
        if (cl_image_rmtree(wfd, "rootfs", &e2) < 0) {
            close(wfd);
            if (err)
                *err = e2;
            return e2.code;
        }
        rc = open_dir(wfd, "blobs", &p->blobs_fd, err);
        if (rc == 0)
            rc = open_dir(wfd, "rootfs", &p->rootfd, err);
        if (rc == 0 && fchmod(p->rootfd, 0755) < 0)
            rc = cl_err_set(err, CL_EIO, "chmod rootfs: %s", strerror(errno));
        if (rc == 0)
            rc = run_layers(p, err);
        if (rc == 0) {
            CL_AUTO(cl_str) *staged = cl_strdupf("%s/rootfs", work);
            rmdir(dir); /* an empty target folder is replaced */
            if (!staged || rename(staged, dir) < 0)
                rc = cl_err_set(err, CL_EIO, "rename the finished rootfs to %s: %s", dir,
                                strerror(errno));
        } else {
            /* no half-written rootfs stays behind; verified blobs do */
            if (cl_image_rmtree(wfd, "rootfs", &e2) < 0)
                cl_warn("pull: removing the staging rootfs: %s", e2.msg);
        }
        close(wfd);
        if (rc == 0) {
            int pfd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
            CL_AUTO(cl_str) *wname = cl_strdupf(".%s.pull", base);
            if (pfd >= 0 && wname && cl_image_rmtree(pfd, wname, &e2) < 0)
                cl_warn("pull: removing %s: %s", wname, e2.msg);
            if (pfd >= 0)
                close(pfd);
        }
        if (rc < 0)
            return rc;
    }
    p->out->bytes_downloaded = p->bytes_done;
    p->out->stats = p->stats;
    p->out->config_json =
        p->config_raw ? strndup((const char *)p->config_raw, p->config_len) : NULL;
    return 0;
}

void cl_image_pull_result_clear(struct cl_image_pull_result *r)
{
    if (!r)
        return;
    free(r->lowerdir);
    free(r->config_json);
    memset(r, 0, sizeof *r);
}

int cl_image_pull(const char *ref, const char *dir, const struct cl_image_pull_opts *opts,
                  struct cl_image_pull_result *out, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (!ref || !dir || !opts || !out)
        return cl_err_set(err, CL_EINVAL,
                          "pull: reference, folder, options and result are required");
    struct cl_image_pull_result res = {0};
    struct pull p = {.o = opts, .blobs_fd = -1, .layers_fd = -1, .rootfd = -1, .out = &res};
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    int rc = pull_run(&p, ref, dir, err);
    for (size_t i = 0; p.jobs && i < p.njobs; i++)
        cl_image_layer_key_clear(&p.jobs[i].key);
    free(p.jobs);
    if (p.blobs_fd >= 0)
        close(p.blobs_fd);
    if (p.layers_fd >= 0)
        close(p.layers_fd);
    if (p.rootfd >= 0)
        close(p.rootfd);
    cl_image_registry_free(p.reg);
    cl_image_endpoint_clear(&p.ep);
    cl_image_manifest_clear(&p.manifest);
    cl_image_config_clear(&p.config);
    free(p.manifest_raw);
    free(p.config_raw);
    cl_image_ref_clear(&p.ref);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    if (rc < 0) {
        cl_image_pull_result_clear(&res);
        return rc;
    }
    *out = res;
    return 0;
}
