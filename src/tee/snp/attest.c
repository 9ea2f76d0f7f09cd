/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SEV-SNP attester (guest side): reports through /dev/sev-guest (SNP_GET_REPORT at VMPL 0),
 * read with the report parser of this folder, HOSTDATA binding of init-data, and the evidence
 * in the sev crate's JSON shape. Compiled and unit-tested on synthetic reports, not on
 * hardware.
 */
#include "tee/snp/snp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sev-guest.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"

static bool exists(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0;
}

bool cl_snp_guest_detect(const struct cl_snp_guest *g)
{
    return exists(g->sysfs) && exists(g->dev);
}

/* The firmware's MSG_REPORT_RSP: u32 status, u32 report size, 24 reserved, the report. */
static int report_rsp(const uint8_t *rsp, size_t len, struct cl_snp_report *out, struct cl_err *err)
{
    struct cl_cursor c = cl_cursor_init(rsp, len);
    uint32_t status = 0, size = 0;
    const uint8_t *report = NULL;
    if (cl_cursor_le32(&c, &status) < 0 || cl_cursor_le32(&c, &size) < 0 ||
        cl_cursor_skip(&c, 24) < 0)
        return cl_err_set(err, CL_EPARSE, "snp: report response truncated");
    if (status != 0)
        return cl_err_set(err, CL_EIO, "snp: firmware status %#x", status);
    if (size < CL_SNP_REPORT_SIZE || cl_cursor_take(&c, CL_SNP_REPORT_SIZE, &report) < 0)
        return cl_err_set(err, CL_EPARSE, "snp: report of %u bytes (%d expected)", size,
                          CL_SNP_REPORT_SIZE);
    if (cl_snp_report_parse(report, CL_SNP_REPORT_SIZE, out, err) < 0)
        return cl_err_prefix(err, "snp: SNP_GET_REPORT");
    return 0;
}

static int report_field(const struct cl_snp_guest *g, const uint8_t rd[CL_SNP_REPORT_DATA_LEN],
                        struct cl_snp_report *out, struct cl_err *err)
{
    int fd = open(g->dev, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return cl_err_set(err, CL_EIO, "snp: %s: %s", g->dev, strerror(errno));
    struct snp_report_req req;
    memset(&req, 0, sizeof req);
    memcpy(req.user_data, rd, CL_SNP_REPORT_DATA_LEN);
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
    return report_rsp(resp.data, sizeof resp.data, out, err);
}

int cl_snp_guest_report(const struct cl_snp_guest *g, const uint8_t *rd, size_t len,
                        struct cl_snp_report *out, struct cl_err *err)
{
    if (len > CL_SNP_REPORT_DATA_LEN)
        return cl_err_set(err, CL_EINVAL, "snp: report data of %zu bytes exceeds %d", len,
                          CL_SNP_REPORT_DATA_LEN);
    uint8_t field[CL_SNP_REPORT_DATA_LEN];
    cl_tee_regularize(rd, len, field, sizeof field);
    return report_field(g, field, out, err);
}

json_t *cl_snp_evidence_json(const struct cl_snp_report *r, struct cl_err *err)
{
    json_t *j = cl_snp_report_to_json(r);
    json_t *ev = j ? json_pack("{s:o, s:n}", "attestation_report", j, "cert_chain") : NULL;
    if (!ev)
        cl_err_set(err, CL_ENOMEM, "out of memory");
    return ev;
}

int cl_snp_guest_check_hostdata(const struct cl_snp_guest *g, const uint8_t *digest, size_t len,
                                struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    uint8_t zero[CL_SNP_REPORT_DATA_LEN] = {0}, want[CL_SNP_HOSTDATA_LEN];
    struct cl_snp_report r;
    if (report_field(g, zero, &r, err) < 0)
        return err->code;
    cl_tee_regularize(digest, len, want, sizeof want);
    if (!cl_memeq_ct(r.host_data, want, sizeof want))
        return cl_err_stage(
            err, CL_EVERIFY, CL_TEE_STAGE_INIT_DATA,
            "snp: init-data digest is inconsistent with that of the current platform (HOSTDATA)");
    return 0;
}
