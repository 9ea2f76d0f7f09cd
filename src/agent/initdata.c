// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's side of init-data: find the block device the host attached (magic "initdata"
 * at offset 0), read it, and hand back its policy.rego — or, run once by the guest init
 * before the attestation agent starts, write the document and its aa.toml / cdh.toml /
 * policy.rego out as files (docs/coco.md). Framing, inflation and TOML parsing
 * are the attestation agent's (src/aa/initdata.c) — one parser for the format.
 *
 * A device that carries the magic but is malformed is an error, not "no init-data": silently
 * falling back to the allow-all default would fail open.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aa/aa.h"
#include "agent.h"
#include "toml/toml.h"

/* magic + u64 length + gzip of at most CL_AA_INITDATA_MAX (deflate adds little) */
#define IMAGE_MAX (16 + CL_AA_INITDATA_MAX + 4096)

/* Reads the first IMAGE_MAX bytes of a device; *has_magic tells whether it starts with it. */
static cl_bytes *read_head(const char *path, size_t *len, bool *has_magic, struct cl_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cl_err_stage(err, CL_EIO, CL_AGENT_STAGE_INITDATA, "%s: %s", path, strerror(errno)),
               NULL;
    cl_bytes *buf = malloc(IMAGE_MAX);
    size_t n = 0;
    while (buf && n < IMAGE_MAX) {
        ssize_t r = read(fd, buf + n, IMAGE_MAX - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!buf)
        return cl_err_set(err, CL_ENOMEM, "out of memory"), NULL;
    *has_magic = n >= 8 && memcmp(buf, CL_AA_INITDATA_MAGIC, 8) == 0;
    *len = n;
    return buf;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* First /dev/vd* carrying the magic; ENOTFOUND when none does. */
static cl_bytes *scan(size_t *len, cl_str **found, struct cl_err *err)
{
    DIR *d = opendir("/dev");
    if (!d)
        return cl_err_stage(err, CL_ENOTFOUND, CL_AGENT_STAGE_INITDATA, "no /dev"), NULL;
    char *names[CL_AGENT_MAX_INITDATA_SCAN];
    size_t nn = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nn < CL_AGENT_MAX_INITDATA_SCAN)
        if (strncmp(de->d_name, "vd", 2) == 0 && (names[nn] = cl_strdupf("/dev/%s", de->d_name)))
            nn++;
    closedir(d);
    qsort(names, nn, sizeof *names, cmp_names);
    cl_bytes *img = NULL;
    for (size_t i = 0; i < nn; i++) {
        bool magic = false;
        struct cl_err e = {0};
        if (!img) {
            cl_bytes *b = read_head(names[i], len, &magic, &e);
            if (b && magic) {
                img = b;
                *found = names[i];
                names[i] = NULL;
            } else {
                free(b);
            }
        }
        free(names[i]);
    }
    if (!img)
        cl_err_stage(err, CL_ENOTFOUND, CL_AGENT_STAGE_INITDATA,
                     "no /dev/vd* device starts with 'initdata'");
    return img;
}

/* Reads, inflates and parses the init-data of `device` (or the scanned one): *text (new) is
 * the exact TOML bytes, *doc its parse. ENOTFOUND when no device carries the magic. */
static int load(const char *device, cl_bytes **text, size_t *tlen, struct cl_aa_initdata *doc,
                cl_str **where, struct cl_err *err)
{
    size_t len = 0;
    CL_AUTO(cl_str) *path = NULL;
    CL_AUTO(cl_bytes) *img = NULL;
    if (device) {
        bool magic = false;
        img = read_head(device, &len, &magic, err);
        if (!img)
            return err->code;
        if (!magic)
            return cl_err_stage(err, CL_ENOTFOUND, CL_AGENT_STAGE_INITDATA,
                                "%s: no 'initdata' magic", device);
        path = cl_strdupf("%s", device);
    } else if (!(img = scan(&len, &path, err))) {
        return err->code;
    }
    CL_AUTO(cl_bytes) *t = cl_aa_initdata_image_decode(img, len, tlen, err);
    if (!t)
        return cl_err_prefix(err, "%s", path ? path : "init-data");
    if (cl_aa_initdata_parse((const char *)t, *tlen, doc, err) < 0)
        return cl_err_prefix(err, "%s", path ? path : "init-data");
    *text = CL_STEAL(t);
    *where = CL_STEAL(path);
    return 0;
}

int cl_agent_initdata_policy(const char *device, cl_str **policy, size_t *plen, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    size_t tlen = 0;
    CL_AUTO(cl_str) *path = NULL;
    CL_AUTO(cl_bytes) *text = NULL;
    struct cl_aa_initdata doc = {0};
    int rc = load(device, &text, &tlen, &doc, &path, err);
    if (rc < 0)
        return rc;
    json_t *pol = json_object_get(doc.data, "policy.rego");
    *policy = NULL;
    *plen = 0;
    if (pol) {
        size_t n = json_string_length(pol);
        *policy = malloc(n + 1);
        if (!*policy) {
            cl_aa_initdata_clear(&doc);
            return cl_err_set(err, CL_ENOMEM, "out of memory");
        }
        memcpy(*policy, json_string_value(pol), n + 1);
        *plen = n;
    }
    cl_info("init-data from %s (%zu bytes of TOML)%s", path ? path : "?", tlen,
            pol ? ", with policy.rego" : ", no policy.rego");
    cl_aa_initdata_clear(&doc);
    return 0;
}

/* The data entries written out as files of their own, as upstream's agent does. A TOML entry
 * is parsed before it is written, so a guest never starts a daemon on a file it cannot read
 * (the daemon would exit, and the boot would look like a daemon bug). */
static const struct {
    const char *key;
    bool toml;
} extracted[] = {
    {"aa.toml", true},
    {"cdh.toml", true},
    {"policy.rego", false},
};

int cl_agent_initdata_extract(const char *device, const char *dir, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    size_t tlen = 0;
    CL_AUTO(cl_str) *path = NULL;
    CL_AUTO(cl_bytes) *text = NULL;
    struct cl_aa_initdata doc = {0};
    int rc = load(device, &text, &tlen, &doc, &path, err);
    if (rc < 0)
        return rc;
    /* every entry checked before anything is written: a refusal writes nothing */
    for (size_t i = 0; rc == 0 && i < sizeof extracted / sizeof *extracted; i++) {
        json_t *v = json_object_get(doc.data, extracted[i].key);
        if (!v || !extracted[i].toml)
            continue;
        struct cl_err te = {0};
        CL_AUTO(json_t) *parsed = cl_toml_parse(json_string_value(v), json_string_length(v), &te);
        if (!parsed)
            rc = cl_err_stage(err, te.code ? te.code : CL_EPARSE, CL_AGENT_STAGE_INITDATA,
                              "%s: data.'%s' is not TOML: %s", path, extracted[i].key, te.msg);
    }
    if (rc == 0 && cl_mkdir_p(dir, 0700, err) < 0)
        rc = cl_err_prefix(err, "init-data folder");
    if (rc == 0 && chmod(dir, 0700) < 0)
        rc = cl_err_stage(err, CL_EIO, CL_AGENT_STAGE_INITDATA, "%s: %s", dir, strerror(errno));
    for (size_t i = 0; rc == 0 && i < sizeof extracted / sizeof *extracted; i++) {
        json_t *v = json_object_get(doc.data, extracted[i].key);
        if (!v)
            continue;
        CL_AUTO(cl_str) *out = cl_strdupf("%s/%s", dir, extracted[i].key);
        rc = out ? cl_file_write_atomic(out, json_string_value(v), json_string_length(v), 0600, err)
                 : cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    /* initdata.toml last: its presence tells the init that the others are complete */
    CL_AUTO(cl_str) *out = cl_strdupf("%s/initdata.toml", dir);
    if (rc == 0)
        rc = out ? cl_file_write_atomic(out, text, tlen, 0600, err)
                 : cl_err_set(err, CL_ENOMEM, "out of memory");
    if (rc == 0) {
        char hex[2 * CL_HASH_MAX + 1];
        for (size_t i = 0; i < doc.digest_len; i++)
            snprintf(hex + 2 * i, 3, "%02x", doc.digest[i]);
        cl_info("init-data from %s: %zu bytes, %s %s, written to %s", path, tlen,
                cl_hash_name(doc.alg), hex, dir);
    }
    cl_aa_initdata_clear(&doc);
    return rc;
}
