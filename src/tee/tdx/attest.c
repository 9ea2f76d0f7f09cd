/* SPDX-License-Identifier: Apache-2.0 */
/*
 * TDX attester (guest side): quotes through configfs-tsm (a report entry per request, the
 * generation checked so that a racing writer is noticed), read back with the quote parser of
 * this folder; MRCONFIGID binding of init-data; RTMR extend through the kernel's sysfs
 * measurement files; the evidence in trustee's tdx shape.
 */
#include "tee/tdx/tdx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"

#define MRCONFIGID_LEN 48

static bool exists(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0;
}

/* ---- sysfs/configfs attributes ---- */

static int write_attr(const char *dir, const char *name, const void *buf, size_t len,
                      struct cl_err *err)
{
    char path[512];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return cl_err_set(err, CL_EINVAL, "path %.64s/%s is too long", dir, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_CREAT, 0600);
    if (fd < 0)
        return cl_err_set(err, CL_EIO, "%s: %s", path, strerror(errno));
    ssize_t w = write(fd, buf, len);
    int saved = errno;
    close(fd);
    if (w != (ssize_t)len)
        return cl_err_set(err, CL_EIO, "%s: short write (%s)", path,
                          w < 0 ? strerror(saved) : "partial");
    return 0;
}

static cl_bytes *read_attr(const char *dir, const char *name, size_t max, size_t *len,
                           struct cl_err *err)
{
    char path[512];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        cl_err_set(err, CL_EINVAL, "path %.64s/%s is too long", dir, name);
        return NULL;
    }
    return cl_file_read(path, max, len, err);
}

/* ---- configfs-tsm report entries ---- */

static int tsm_entry_new(const struct cl_tdx_guest *g, char *entry, size_t cap, struct cl_err *err)
{
    static unsigned counter;
    uint8_t rnd[6];
    if (cl_random(rnd, sizeof rnd, err) < 0)
        return err ? err->code : CL_EIO;
    if (snprintf(entry, cap, "%s/cloister-%d-%u-%02x%02x%02x%02x%02x%02x", g->tsm_report_dir,
                 (int)getpid(), __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED), rnd[0], rnd[1],
                 rnd[2], rnd[3], rnd[4], rnd[5]) >= (int)cap)
        return cl_err_set(err, CL_EINVAL, "configfs-tsm folder %.64s... is too long",
                          g->tsm_report_dir);
    if (mkdir(entry, 0700) < 0)
        return cl_err_set(err, CL_EIO, "configfs-tsm: cannot create %s: %s", entry,
                          strerror(errno));
    if (g->tsm_hook && g->tsm_hook(entry, 0, g->tsm_hook_ctx) < 0) {
        rmdir(entry);
        return cl_err_set(err, CL_EIO, "configfs-tsm: %s: report entry not set up", entry);
    }
    return 0;
}

static void tsm_entry_drop(const struct cl_tdx_guest *g, const char *entry)
{
    if (g->tsm_hook)
        (void)g->tsm_hook(entry, 2, g->tsm_hook_ctx);
    rmdir(entry);
}

static int tsm_provider_is(const char *entry, const char *want, struct cl_err *err)
{
    size_t n = 0;
    CL_AUTO(cl_bytes) *prov = read_attr(entry, "provider", 64, &n, err);
    if (!prov)
        return cl_err_prefix(err, "configfs-tsm provider");
    while (n && (prov[n - 1] == '\n' || prov[n - 1] == ' '))
        prov[--n] = 0;
    if (strcmp((const char *)prov, want) != 0)
        return cl_err_set(err, CL_EUNSUPPORTED, "configfs-tsm provider is '%.32s', not %s", prov,
                          want);
    return 0;
}

/* The entry's generation after one report: 1, else another writer raced it. */
static int tsm_generation_one(const char *entry, struct cl_err *err)
{
    size_t gl = 0;
    uint64_t g = 0;
    CL_AUTO(cl_bytes) *gen = read_attr(entry, "generation", 32, &gl, err);
    if (!gen)
        return err->code;
    while (gl && gen[gl - 1] == '\n')
        gen[--gl] = 0;
    if (cl_parse_u64((const char *)gen, 0, UINT32_MAX, &g, "configfs-tsm generation", err) < 0)
        return err->code;
    if (g != 1)
        return cl_err_set(err, CL_EIO,
                          "configfs-tsm: generation %llu: another writer raced this report entry",
                          (unsigned long long)g);
    return 0;
}

/* One quote for 64 bytes of report data, through its own report entry; returns new. */
static cl_bytes *tsm_quote(const struct cl_tdx_guest *g, const uint8_t rd[CL_TDX_REPORT_DATA_LEN],
                           size_t *qlen, struct cl_err *err)
{
    char entry[512];
    if (tsm_entry_new(g, entry, sizeof entry, err) < 0)
        return NULL;
    cl_bytes *q = NULL;
    if (tsm_provider_is(entry, "tdx_guest", err) < 0 ||
        write_attr(entry, "inblob", rd, CL_TDX_REPORT_DATA_LEN, err) < 0)
        goto out;
    if (g->tsm_hook && g->tsm_hook(entry, 1, g->tsm_hook_ctx) < 0) {
        cl_err_set(err, CL_EIO, "configfs-tsm: %s: no report produced", entry);
        goto out;
    }
    q = read_attr(entry, "outblob", CL_TDX_MAX_TSM_QUOTE, qlen, err);
    if (!q) {
        cl_err_prefix(err, "configfs-tsm outblob");
        goto out;
    }
    if (tsm_generation_one(entry, err) < 0) {
        free(q);
        q = NULL;
    }
out:
    tsm_entry_drop(g, entry);
    return q;
}

bool cl_tdx_guest_detect(const struct cl_tdx_guest *g)
{
    if (exists(g->guest_dev) && !exists(g->tsm_report_dir))
        return true;
    if (!exists(g->tsm_report_dir))
        return false;
    char entry[512];
    if (tsm_entry_new(g, entry, sizeof entry, NULL) < 0)
        return false;
    bool ok = tsm_provider_is(entry, "tdx_guest", NULL) == 0;
    tsm_entry_drop(g, entry);
    return ok;
}

/* A quote for a report-data field already regularised; *body gets its parsed TD report. */
static cl_bytes *quote_field(const struct cl_tdx_guest *g,
                             const uint8_t field[CL_TDX_REPORT_DATA_LEN], size_t *qlen,
                             struct cl_tdx_quote *parsed, struct cl_err *err)
{
    cl_bytes *q = tsm_quote(g, field, qlen, err);
    if (!q)
        return NULL;
    int rc = cl_tdx_quote_parse_head(q, *qlen, parsed, err);
    if (rc < 0)
        cl_err_prefix(err, "tdx: configfs-tsm outblob");
    else if (parsed->sgx)
        rc = cl_err_set(err, CL_EPARSE, "tdx: configfs-tsm outblob is an SGX quote, not a TD's");
    if (rc < 0) {
        free(q);
        return NULL;
    }
    return q;
}

cl_bytes *cl_tdx_guest_quote(const struct cl_tdx_guest *g, const uint8_t *rd, size_t len,
                             size_t *qlen, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (len > CL_TDX_REPORT_DATA_LEN) {
        cl_err_set(err, CL_EINVAL, "tdx: report data of %zu bytes exceeds %d", len,
                   CL_TDX_REPORT_DATA_LEN);
        return NULL;
    }
    uint8_t field[CL_TDX_REPORT_DATA_LEN];
    cl_tee_regularize(rd, len, field, sizeof field);
    struct cl_tdx_quote parsed;
    memset(&parsed, 0, sizeof parsed);
    cl_bytes *q = quote_field(g, field, qlen, &parsed, err);
    if (q && memcmp(parsed.body.report_data, field, sizeof field) != 0) {
        cl_err_set(err, CL_EVERIFY, "tdx: the quote does not carry the report data asked for");
        free(q);
        return NULL;
    }
    return q;
}

json_t *cl_tdx_evidence_json(const uint8_t *quote, size_t qlen, const char *cc_eventlog_b64,
                             size_t max_evidence, struct cl_err *err)
{
    CL_AUTO(cl_str) *b64 = cl_b64_encode(quote, qlen, CL_B64_STD);
    if (!b64) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    size_t total = strlen(b64) + (cc_eventlog_b64 ? strlen(cc_eventlog_b64) : 0);
    if (cc_eventlog_b64 && total + 64 > max_evidence) {
        cl_err_set(err, CL_ELIMIT,
                   "tdx: quote and cc_eventlog (%zu base64 bytes) exceed the evidence limit of %zu",
                   total, max_evidence);
        return NULL;
    }
    json_t *ev = json_pack("{s:s?, s:s}", "cc_eventlog", cc_eventlog_b64, "quote", b64);
    if (!ev)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return ev;
}

int cl_tdx_guest_check_mrconfigid(const struct cl_tdx_guest *g, const uint8_t *digest, size_t len,
                                  struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    uint8_t zero[CL_TDX_REPORT_DATA_LEN] = {0}, want[MRCONFIGID_LEN];
    size_t qlen = 0;
    struct cl_tdx_quote parsed;
    memset(&parsed, 0, sizeof parsed);
    CL_AUTO(cl_bytes) *q = quote_field(g, zero, &qlen, &parsed, err);
    if (!q)
        return err->code;
    cl_tee_regularize(digest, len, want, sizeof want);
    if (!cl_memeq_ct(parsed.body.mr_config_id, want, sizeof want))
        return cl_err_stage(
            err, CL_EVERIFY, CL_TEE_STAGE_INIT_DATA,
            "tdx: init-data digest is inconsistent with that of the current platform (MRCONFIGID)");
    return 0;
}

unsigned cl_tdx_pcr_to_ccmr(unsigned pcr)
{
    if (pcr == 1 || pcr == 7)
        return 1;
    if (pcr >= 2 && pcr <= 6)
        return 2;
    if (pcr >= 8 && pcr <= 15)
        return 3;
    return 4;
}

int cl_tdx_guest_extend(const struct cl_tdx_guest *g, unsigned pcr, const uint8_t *digest,
                        size_t len, struct cl_err *err)
{
    if (!exists(g->measurements))
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "tdx: %s is absent (kernel 6.16+ needed to extend RTMRs)",
                          g->measurements);
    uint8_t field[48];
    cl_tee_regularize(digest, len, field, sizeof field);
    char name[32];
    snprintf(name, sizeof name, "rtmr%u:sha384", cl_tdx_pcr_to_ccmr(pcr) - 1);
    return write_attr(g->measurements, name, field, sizeof field, err);
}
