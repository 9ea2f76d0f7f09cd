/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attester table and detection in upstream's order. tdx: quotes through configfs-tsm
 * (a report entry per request, generation checked so that a racing writer is noticed),
 * MRCONFIGID binding, RTMR extend through the kernel's sysfs measurement files. snp: reports
 * through /dev/sev-guest (SNP_GET_REPORT at VMPL 0), HOSTDATA binding, the report rendered in
 * the sev crate's JSON shape; compiled and unit-tested on synthetic reports, not on hardware.
 * tpm (in tpm.c): a TPM 2.0 quote, after snp as upstream detects it. sample: no hardware root
 * at all, refused unless the configuration allows it.
 */
#include "aa/aa.h"
#include "aa/aa_internal.h"
#include "tee/tee.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sev-guest.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define TDX_REPORT_DATA_LEN 64
#define TDX_MRCONFIGID_LEN 48
#define TDX_MAX_QUOTE (1u << 20)
#define SNP_REPORT_DATA_LEN 64
#define SNP_HOSTDATA_LEN 32

void cl_aa_platform_default(struct cl_aa_platform *p)
{
    memset(p, 0, sizeof *p);
    const char *e;
    p->tsm_report_dir = (e = getenv("CLOISTER_TSM_REPORT_DIR")) && *e ? e : CL_AA_TSM_REPORT_DIR;
    p->sev_guest_dev = (e = getenv("CLOISTER_SEV_GUEST_DEV")) && *e ? e : CL_AA_SEV_GUEST_DEV;
    p->sev_guest_sysfs = CL_AA_SEV_GUEST_SYSFS;
    p->tdx_guest_dev = "/dev/tdx_guest";
    p->tdx_measurements = "/sys/devices/virtual/misc/tdx_guest/measurements";
    p->tpm_device = (e = getenv("AA_TPM_DEVICE")) && *e ? e : NULL;
    p->tpm_tcti = (e = getenv("CLOISTER_TPM_TCTI")) && *e ? e : NULL;
    p->ccel_path = CL_AA_CCEL_PATH;
    p->aael_path = NULL;
}

static bool exists(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0;
}

/* ---- small file helpers for sysfs/configfs attributes ---- */

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

/* ---- sample ---- */

static bool sample_detect(const struct cl_aa_platform *p)
{
    return true;
}

static json_t *sample_evidence(const struct cl_aa_platform *p, const uint8_t *rd, size_t len,
                               struct cl_err *err)
{
    return cl_tee_sample_evidence("sample", rd, len, err);
}

/* ---- tdx (configfs-tsm) ---- */

static int tsm_entry_new(const struct cl_aa_platform *p, char *entry, size_t cap,
                         struct cl_err *err)
{
    static unsigned counter;
    uint8_t rnd[6];
    if (cl_random(rnd, sizeof rnd, err) < 0)
        return err->code;
    if (snprintf(entry, cap, "%s/cloister-%d-%u-%02x%02x%02x%02x%02x%02x", p->tsm_report_dir,
                 (int)getpid(), __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED), rnd[0], rnd[1],
                 rnd[2], rnd[3], rnd[4], rnd[5]) >= (int)cap)
        return cl_err_set(err, CL_EINVAL, "configfs-tsm folder %.64s... is too long",
                          p->tsm_report_dir);
    if (mkdir(entry, 0700) < 0)
        return cl_err_set(err, CL_EIO, "configfs-tsm: cannot create %s: %s", entry,
                          strerror(errno));
    if (p->tsm_hook && p->tsm_hook(entry, 0, p->tsm_hook_ctx) < 0) {
        rmdir(entry);
        return cl_err_set(err, CL_EIO, "configfs-tsm: %s: report entry not set up", entry);
    }
    return 0;
}

static void tsm_entry_drop(const struct cl_aa_platform *p, const char *entry)
{
    if (p->tsm_hook)
        (void)p->tsm_hook(entry, 2, p->tsm_hook_ctx);
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

/* One quote for 64 bytes of report data; returns new. */
static cl_bytes *tdx_quote(const struct cl_aa_platform *p, const uint8_t rd[TDX_REPORT_DATA_LEN],
                           size_t *qlen, struct cl_err *err)
{
    char entry[512];
    if (tsm_entry_new(p, entry, sizeof entry, err) < 0)
        return NULL;
    cl_bytes *q = NULL;
    size_t gl = 0;
    CL_AUTO(cl_bytes) *gen = NULL;
    uint64_t g = 0;
    if (tsm_provider_is(entry, "tdx_guest", err) < 0 ||
        write_attr(entry, "inblob", rd, TDX_REPORT_DATA_LEN, err) < 0)
        goto out;
    if (p->tsm_hook && p->tsm_hook(entry, 1, p->tsm_hook_ctx) < 0) {
        cl_err_set(err, CL_EIO, "configfs-tsm: %s: no report produced", entry);
        goto out;
    }
    q = read_attr(entry, "outblob", TDX_MAX_QUOTE, qlen, err);
    if (!q) {
        cl_err_prefix(err, "configfs-tsm outblob");
        goto out;
    }
    gen = read_attr(entry, "generation", 32, &gl, err);
    while (gen && gl && (gen[gl - 1] == '\n'))
        gen[--gl] = 0;
    if (!gen ||
        cl_parse_u64((const char *)gen, 0, UINT32_MAX, &g, "configfs-tsm generation", err) < 0 ||
        g != 1) {
        if (gen && g != 1)
            cl_err_set(err, CL_EIO,
                       "configfs-tsm: generation %llu: another writer raced this report entry",
                       (unsigned long long)g);
        free(q);
        q = NULL;
    }
out:
    tsm_entry_drop(p, entry);
    return q;
}

int cl_aa_tdx_quote_fields(const uint8_t *quote, size_t len, const uint8_t **report_data,
                           const uint8_t **mrconfigid, struct cl_err *err)
{
    struct cl_cursor c = cl_cursor_init(quote, len);
    uint16_t version = 0;
    if (cl_cursor_le16(&c, &version) < 0 || cl_cursor_skip(&c, 46) < 0)
        return cl_err_set(err, CL_EPARSE, "TDX quote: header truncated");
    if (version == 5) {
        uint16_t body_type = 0;
        uint32_t body_size = 0;
        if (cl_cursor_le16(&c, &body_type) < 0 || cl_cursor_le32(&c, &body_size) < 0)
            return cl_err_set(err, CL_EPARSE, "TDX quote v5: body descriptor truncated");
        if (body_type != 2 && body_type != 3)
            return cl_err_set(err, CL_EPARSE, "TDX quote v5: body type %u is not a TD report",
                              body_type);
    } else if (version != 4) {
        return cl_err_set(err, CL_EPARSE, "TDX quote: version %u (4 or 5 expected)", version);
    }
    const uint8_t *body = NULL;
    if (cl_cursor_take(&c, 584, &body) < 0)
        return cl_err_set(err, CL_EPARSE, "TDX quote: TD report body truncated");
    *mrconfigid = body + 184;
    *report_data = body + 520;
    return 0;
}

static bool tdx_detect(const struct cl_aa_platform *p)
{
    if (exists(p->tdx_guest_dev) && !exists(p->tsm_report_dir))
        return true;
    if (!exists(p->tsm_report_dir))
        return false;
    char entry[512];
    if (tsm_entry_new(p, entry, sizeof entry, NULL) < 0)
        return false;
    bool ok = tsm_provider_is(entry, "tdx_guest", NULL) == 0;
    tsm_entry_drop(p, entry);
    return ok;
}

static json_t *tdx_evidence(const struct cl_aa_platform *p, const uint8_t *rd, size_t len,
                            struct cl_err *err)
{
    if (len > TDX_REPORT_DATA_LEN) {
        cl_err_set(err, CL_EINVAL, "tdx: report data of %zu bytes exceeds %d", len,
                   TDX_REPORT_DATA_LEN);
        return NULL;
    }
    uint8_t field[TDX_REPORT_DATA_LEN];
    cl_tee_regularize(rd, len, field, sizeof field);
    size_t qlen = 0;
    CL_AUTO(cl_bytes) *q = tdx_quote(p, field, &qlen, err);
    if (!q)
        return NULL;
    const uint8_t *qrd = NULL, *mrc = NULL;
    if (cl_aa_tdx_quote_fields(q, qlen, &qrd, &mrc, err) < 0)
        return NULL;
    if (memcmp(qrd, field, sizeof field) != 0) {
        cl_err_set(err, CL_EVERIFY, "tdx: the quote does not carry the report data asked for");
        return NULL;
    }
    CL_AUTO(cl_str) *b64 = cl_b64_encode(q, qlen, CL_B64_STD);
    if (!b64) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    CL_AUTO(cl_str) *log = cl_aa_cc_eventlog_b64(p, err);
    if (!log && err && err->code)
        return NULL;
    if (log && strlen(log) + strlen(b64) > CL_AA_MAX_EVIDENCE - 64) {
        cl_err_set(err, CL_ELIMIT,
                   "tdx: quote and cc_eventlog (%zu base64 bytes) exceed the evidence limit of %u",
                   strlen(log) + strlen(b64), CL_AA_MAX_EVIDENCE);
        return NULL;
    }
    json_t *ev = json_pack("{s:s?, s:s}", "cc_eventlog", log, "quote", b64);
    if (!ev)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return ev;
}

static int tdx_bind(const struct cl_aa_platform *p, const uint8_t *digest, size_t len,
                    struct cl_err *err)
{
    uint8_t zero[TDX_REPORT_DATA_LEN] = {0}, want[TDX_MRCONFIGID_LEN];
    size_t qlen = 0;
    CL_AUTO(cl_bytes) *q = tdx_quote(p, zero, &qlen, err);
    if (!q)
        return err->code;
    const uint8_t *qrd = NULL, *mrc = NULL;
    if (cl_aa_tdx_quote_fields(q, qlen, &qrd, &mrc, err) < 0)
        return err->code;
    cl_tee_regularize(digest, len, want, sizeof want);
    if (!cl_memeq_ct(mrc, want, sizeof want))
        return cl_err_stage(
            err, CL_EVERIFY, "init-data",
            "tdx: init-data digest is inconsistent with that of the current platform (MRCONFIGID)");
    return 0;
}

/* PCR → CCMR (RTMR index + 1) as upstream maps them. */
static unsigned tdx_ccmr(unsigned pcr)
{
    if (pcr == 1 || pcr == 7)
        return 1;
    if (pcr >= 2 && pcr <= 6)
        return 2;
    if (pcr >= 8 && pcr <= 15)
        return 3;
    return 4;
}

static int tdx_extend(const struct cl_aa_platform *p, unsigned pcr, const uint8_t *digest,
                      size_t len, struct cl_err *err)
{
    if (!exists(p->tdx_measurements))
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "tdx: %s is absent (kernel 6.16+ needed to extend RTMRs)",
                          p->tdx_measurements);
    uint8_t field[48];
    cl_tee_regularize(digest, len, field, sizeof field);
    char name[32];
    snprintf(name, sizeof name, "rtmr%u:sha384", tdx_ccmr(pcr) - 1);
    return write_attr(p->tdx_measurements, name, field, sizeof field, err);
}

/* ---- snp (/dev/sev-guest) ---- */

static bool snp_detect(const struct cl_aa_platform *p)
{
    return exists(p->sev_guest_sysfs) && exists(p->sev_guest_dev);
}

static int snp_report(const struct cl_aa_platform *p, const uint8_t rd[SNP_REPORT_DATA_LEN],
                      uint8_t report[CL_AA_SNP_REPORT_LEN], struct cl_err *err)
{
    int fd = open(p->sev_guest_dev, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return cl_err_set(err, CL_EIO, "snp: %s: %s", p->sev_guest_dev, strerror(errno));
    struct snp_report_req req;
    memset(&req, 0, sizeof req);
    memcpy(req.user_data, rd, SNP_REPORT_DATA_LEN);
    req.vmpl = 0;
    struct snp_report_resp resp;
    memset(&resp, 0, sizeof resp);
    struct snp_guest_request_ioctl io;
    memset(&io, 0, sizeof io);
    io.msg_version = 1;
    io.req_data = (uint64_t)(uintptr_t)&req;
    io.resp_data = (uint64_t)(uintptr_t)&resp;
    int r = ioctl(fd, SNP_GET_REPORT, &io);
    int saved = errno;
    close(fd);
    if (r < 0)
        return cl_err_set(err, CL_EIO, "snp: SNP_GET_REPORT: %s (firmware error %#llx)",
                          strerror(saved), (unsigned long long)io.exitinfo2);
    /* msg_report_rsp: u32 status, u32 report size, 24 reserved, then the report */
    struct cl_cursor c = cl_cursor_init(resp.data, sizeof resp.data);
    uint32_t status = 0, size = 0;
    if (cl_cursor_le32(&c, &status) < 0 || cl_cursor_le32(&c, &size) < 0 ||
        cl_cursor_skip(&c, 24) < 0)
        return cl_err_set(err, CL_EPARSE, "snp: report response truncated");
    if (status != 0)
        return cl_err_set(err, CL_EIO, "snp: firmware status %#x", status);
    if (size < CL_AA_SNP_REPORT_LEN || cl_cursor_copy(&c, report, CL_AA_SNP_REPORT_LEN) < 0)
        return cl_err_set(err, CL_EPARSE, "snp: report of %u bytes (%d expected)", size,
                          CL_AA_SNP_REPORT_LEN);
    return 0;
}

static json_t *bytes_array(const uint8_t *p, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer(p[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static uint64_t le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* TcbVersion: Milan/Genoa {bootloader, tee, _, snp, microcode}; Turin (family 0x1A) adds fmc. */
static json_t *tcb_json(const uint8_t *p, bool turin)
{
    if (turin)
        return json_pack("{s:i, s:i, s:i, s:i, s:i}", "fmc", p[0], "bootloader", p[1], "tee", p[2],
                         "snp", p[3], "microcode", p[7]);
    return json_pack("{s:n, s:i, s:i, s:i, s:i}", "fmc", "bootloader", p[0], "tee", p[1], "snp",
                     p[6], "microcode", p[7]);
}

json_t *cl_aa_snp_report_json(const uint8_t *r, size_t len, struct cl_err *err)
{
    if (len < CL_AA_SNP_REPORT_LEN) {
        cl_err_set(err, CL_EPARSE, "snp: report of %zu bytes (%d expected)", len,
                   CL_AA_SNP_REPORT_LEN);
        return NULL;
    }
    uint32_t version = (uint32_t)le(r, 4);
    bool v3 = version >= 3, v5 = version >= 5;
    bool turin = v3 && r[0x188] == 0x1A;
    json_t *o = json_object();
    if (!o)
        return NULL;
#define SET(k, v) (json_object_set_new(o, (k), (v)) == 0)
#define NUM(off, n) json_integer((json_int_t)le(r + (off), (n)))
    bool ok = SET("version", NUM(0x00, 4)) && SET("guest_svn", NUM(0x04, 4)) &&
              SET("policy", json_integer((json_int_t)le(r + 0x08, 8))) &&
              SET("family_id", bytes_array(r + 0x10, 16)) &&
              SET("image_id", bytes_array(r + 0x20, 16)) && SET("vmpl", NUM(0x30, 4)) &&
              SET("sig_algo", NUM(0x34, 4)) && SET("current_tcb", tcb_json(r + 0x38, turin)) &&
              SET("plat_info", NUM(0x40, 8)) && SET("key_info", NUM(0x48, 4)) &&
              SET("report_data", bytes_array(r + 0x50, 64)) &&
              SET("measurement", bytes_array(r + 0x90, 48)) &&
              SET("host_data", bytes_array(r + 0xC0, 32)) &&
              SET("id_key_digest", bytes_array(r + 0xE0, 48)) &&
              SET("author_key_digest", bytes_array(r + 0x110, 48)) &&
              SET("report_id", bytes_array(r + 0x140, 32)) &&
              SET("report_id_ma", bytes_array(r + 0x160, 32)) &&
              SET("reported_tcb", tcb_json(r + 0x180, turin)) &&
              SET("cpuid_fam_id", v3 ? json_integer(r[0x188]) : json_null()) &&
              SET("cpuid_mod_id", v3 ? json_integer(r[0x189]) : json_null()) &&
              SET("cpuid_step", v3 ? json_integer(r[0x18A]) : json_null()) &&
              SET("chip_id", bytes_array(r + 0x1A0, 64)) &&
              SET("committed_tcb", tcb_json(r + 0x1E0, turin)) &&
              SET("current", json_pack("{s:i, s:i, s:i}", "major", r[0x1EA], "minor", r[0x1E9],
                                       "build", r[0x1E8])) &&
              SET("committed", json_pack("{s:i, s:i, s:i}", "major", r[0x1EE], "minor", r[0x1ED],
                                         "build", r[0x1EC])) &&
              SET("launch_tcb", tcb_json(r + 0x1F0, turin)) &&
              SET("launch_mit_vector", v5 ? NUM(0x1F8, 8) : json_null()) &&
              SET("current_mit_vector", v5 ? NUM(0x200, 8) : json_null()) &&
              SET("signature", json_pack("{s:o, s:o}", "r", bytes_array(r + 0x2A0, 72), "s",
                                         bytes_array(r + 0x2E8, 72)));
#undef SET
#undef NUM
    if (!ok) {
        json_decref(o);
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    return o;
}

static json_t *snp_evidence(const struct cl_aa_platform *p, const uint8_t *rd, size_t len,
                            struct cl_err *err)
{
    if (len > SNP_REPORT_DATA_LEN) {
        cl_err_set(err, CL_EINVAL, "snp: report data of %zu bytes exceeds %d", len,
                   SNP_REPORT_DATA_LEN);
        return NULL;
    }
    uint8_t field[SNP_REPORT_DATA_LEN], report[CL_AA_SNP_REPORT_LEN];
    cl_tee_regularize(rd, len, field, sizeof field);
    if (snp_report(p, field, report, err) < 0)
        return NULL;
    json_t *r = cl_aa_snp_report_json(report, sizeof report, err);
    json_t *ev = r ? json_pack("{s:o, s:n}", "attestation_report", r, "cert_chain") : NULL;
    if (r && !ev)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return ev;
}

static int snp_bind(const struct cl_aa_platform *p, const uint8_t *digest, size_t len,
                    struct cl_err *err)
{
    uint8_t zero[SNP_REPORT_DATA_LEN] = {0}, report[CL_AA_SNP_REPORT_LEN], want[SNP_HOSTDATA_LEN];
    if (snp_report(p, zero, report, err) < 0)
        return err->code;
    cl_tee_regularize(digest, len, want, sizeof want);
    if (!cl_memeq_ct(report + 0xC0, want, sizeof want))
        return cl_err_stage(
            err, CL_EVERIFY, "init-data",
            "snp: init-data digest is inconsistent with that of the current platform (HOSTDATA)");
    return 0;
}

/* ---- the table, in detection order ---- */

static const struct cl_aa_attester attesters[] = {
    {"tdx", false, tdx_detect, tdx_evidence, tdx_bind, tdx_extend, CL_HASH_SHA384},
    {"snp", false, snp_detect, snp_evidence, snp_bind, NULL, CL_HASH_SHA384},
    {"tpm", false, cl_aa_tpm_detect, cl_aa_tpm_evidence, cl_aa_tpm_bind, cl_aa_tpm_extend,
     CL_HASH_SHA256},
    {"sample", true, sample_detect, sample_evidence, NULL, NULL, CL_HASH_SHA384},
};

const struct cl_aa_attester *cl_aa_attester_detect(const struct cl_aa_platform *p)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(attesters); i++)
        if (!attesters[i].insecure && attesters[i].detect(p))
            return &attesters[i];
    return NULL;
}

const struct cl_aa_attester *cl_aa_attester_find(const char *tee)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(attesters); i++)
        if (strcmp(attesters[i].tee, tee) == 0)
            return &attesters[i];
    return NULL;
}
