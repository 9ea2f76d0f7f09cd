/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cloister initdata ...`: the init-data document on the host side: its digest (what SNP
 * HOSTDATA / TDX MRCONFIGID / PCR8 must hold), the pod annotation value and the block-device
 * image, and back.
 */
#include "aa/aa.h"
#include "cmd/cli.h"

#include <stdio.h>
#include <string.h>

static const char *const help_text =
    "Usage: cloister initdata COMMAND [OPTIONS]\n"
    "\n"
    "  digest FILE [--base64] [--field snp|tdx]\n"
    "        HASH(algorithm)(exact bytes of FILE), checked as init-data first; hex unless\n"
    "        --base64 (the form cloister-aa -i takes); --field pads/truncates to HOSTDATA (32)\n"
    "        or MRCONFIGID (48)\n"
    "  encode FILE [--image OUT]   print base64(gzip(FILE)) (the pod annotation), or write the\n"
    "                              block-device image ('initdata' || u64 LE length || gzip)\n"
    "  decode --annotation B64 | --image FILE    print the TOML\n";

static int fail(const struct cl_err *e, const char *what)
{
    cl_cli_errf("cloister initdata %s: %s", what, e->msg);
    return cl_err_exit_code(e->code);
}

static const char *flag(int argc, char **argv, const char *name)
{
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static bool has(int argc, char **argv, const char *name)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

static int digest(int argc, char **argv)
{
    struct cl_err e = {0};
    if (argc < 3) {
        fputs(help_text, stderr);
        return 2;
    }
    size_t n = 0;
    CL_AUTO(cl_bytes) *t = cl_file_read(argv[2], CL_AA_INITDATA_MAX, &n, &e);
    struct cl_aa_initdata d;
    if (!t || cl_aa_initdata_parse((const char *)t, n, &d, &e) < 0)
        return fail(&e, "digest");
    uint8_t out[CL_HASH_MAX];
    size_t len = d.digest_len;
    memcpy(out, d.digest, len);
    const char *field = flag(argc, argv, "--field");
    if (field) {
        size_t fl = strcmp(field, "snp") == 0 ? 32 : strcmp(field, "tdx") == 0 ? 48 : 0;
        if (!fl) {
            cl_aa_initdata_clear(&d);
            fputs("cloister initdata digest: --field is snp or tdx\n", stderr);
            return 2;
        }
        memset(out, 0, sizeof out);
        memcpy(out, d.digest, len < fl ? len : fl);
        len = fl;
    }
    cl_aa_initdata_clear(&d);
    CL_AUTO(cl_str) *s =
        has(argc, argv, "--base64") ? cl_b64_encode(out, len, CL_B64_STD) : cl_hex_encode(out, len);
    if (!s)
        return 1;
    printf("%s\n", s);
    return 0;
}

static int encode(int argc, char **argv)
{
    struct cl_err e = {0};
    if (argc < 3) {
        fputs(help_text, stderr);
        return 2;
    }
    size_t n = 0;
    CL_AUTO(cl_bytes) *t = cl_file_read(argv[2], CL_AA_INITDATA_MAX, &n, &e);
    struct cl_aa_initdata d;
    if (!t || cl_aa_initdata_parse((const char *)t, n, &d, &e) < 0)
        return fail(&e, "encode");
    cl_aa_initdata_clear(&d);
    const char *img = flag(argc, argv, "--image");
    if (img) {
        size_t il = 0;
        CL_AUTO(cl_bytes) *b = cl_aa_initdata_image_encode(t, n, &il, &e);
        if (!b || cl_file_write_atomic(img, b, il, 0644, &e) < 0)
            return fail(&e, "encode");
        return 0;
    }
    CL_AUTO(cl_str) *a = cl_aa_initdata_annotation_encode(t, n, &e);
    if (!a)
        return fail(&e, "encode");
    printf("%s\n", a);
    return 0;
}

static int decode(int argc, char **argv)
{
    struct cl_err e = {0};
    const char *ann = flag(argc, argv, "--annotation"), *img = flag(argc, argv, "--image");
    size_t n = 0;
    CL_AUTO(cl_bytes) *out = NULL;
    if (ann) {
        out = cl_aa_initdata_annotation_decode(ann, strlen(ann), &n, &e);
    } else if (img) {
        size_t il = 0;
        CL_AUTO(cl_bytes) *b = cl_file_read(img, 4u << 20, &il, &e);
        out = b ? cl_aa_initdata_image_decode(b, il, &n, &e) : NULL;
    } else {
        fputs(help_text, stderr);
        return 2;
    }
    if (!out)
        return fail(&e, "decode");
    return fwrite(out, 1, n, stdout) == n ? 0 : 7;
}

int cl_cli_initdata(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(help_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "digest") == 0)
        return digest(argc, argv);
    if (strcmp(argv[1], "encode") == 0)
        return encode(argc, argv);
    if (strcmp(argv[1], "decode") == 0)
        return decode(argc, argv);
    fprintf(stderr, "cloister initdata: unknown command '%s'\n\n%s", argv[1], help_text);
    return 2;
}
