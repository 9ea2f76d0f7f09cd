/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cloister-aa's NVIDIA evidence (src/aa/nvidia.c) against a stand-in of libnvidia-ml built by
 * meson (tests/unit/nvml_standin.c) that replays trustee's captured Hopper report and chain:
 * the library is opened on first use, the requested nonce reaches NVML, the evidence has the
 * shape trustee's nvidia verifier reads and verifies with the verifier (with the captured
 * nonce; with ours it is refused at bind — the stand-in cannot sign), and every way NVML can be
 * absent or misbehave gives "" or a named error. NVML is opened once per process, so each case
 * runs in a child process.
 */
#include "tee_test.h"

#include <dlfcn.h>
#include <sys/wait.h>

#include "aa/aa.h"
#include "net/ttrpc.h"
#include "tee/nvidia/nvidia.h"

#define ND "deps/verifier/test_data/nvidia/"

static const uint8_t captured[32] = {
    0x93, 0x1d, 0x8d, 0xd0, 0xad, 0xd2, 0x03, 0xac, 0x3d, 0x8b, 0x4f, 0xbd, 0xe7, 0x5e, 0x11, 0x52,
    0x78, 0xee, 0xfc, 0xdc, 0xea, 0xc5, 0xb8, 0x76, 0x71, 0xa7, 0x48, 0xf3, 0x23, 0x64, 0xdf, 0xcb};

static int setup(void **state)
{
    (void)state;
    tt_require_vectors();
    if (!getenv("CLOISTER_NVML_STANDIN")) {
        fprintf(stderr, "CLOISTER_NVML_STANDIN not set: skipping\n");
        exit(77);
    }
    setenv("NVML_STANDIN_REPORT", tt_path(ND "hopperAttestationReport.txt"), 1);
    setenv("NVML_STANDIN_CERTS", tt_path(ND "hopper_cert_chain_case1.txt"), 1);
    return 0;
}

/* Runs fn in a child with env name=value pairs set; the child's failures fail the test. */
static void in_child(void (*fn)(void), const char *const *env)
{
    fflush(NULL);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        setenv("CLOISTER_NVML_LIBRARY", getenv("CLOISTER_NVML_STANDIN"), 1);
        for (size_t i = 0; env && env[i]; i += 2)
            setenv(env[i], env[i + 1], 1);
        fn();
        fflush(NULL);
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(p, &st, 0), p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("child case failed (status %#x)", st);
}

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

static uint8_t rd48[48];

static void case_evidence(void)
{
    for (int i = 0; i < 48; i++)
        rd48[i] = (uint8_t)(0xa0 + i);
    struct cl_err e = {0};
    json_t *ev = cl_aa_nvidia_evidence(rd48, 48, &e);
    if (!ev)
        fprintf(stderr, "%s\n", e.msg);
    CHECK(ev);
    /* the nonce NVML was asked for: the runtime data digest truncated to 32 bytes */
    void *h = dlopen(getenv("CLOISTER_NVML_STANDIN"), RTLD_NOW | RTLD_NOLOAD);
    CHECK(h);
    const uint8_t *last = dlsym(h, "nvml_standin_last_nonce");
    CHECK(last && memcmp(last, rd48, 32) == 0);
    json_t *d = json_array_get(json_object_get(ev, "device_evidence_list"), 0);
    CHECK(json_array_size(json_object_get(ev, "device_evidence_list")) == 1);
    CHECK(strcmp(json_string_value(json_object_get(d, "arch")), "HOPPER") == 0);
    CHECK(strcmp(json_string_value(json_object_get(d, "uuid")), "GPU-standin-1") == 0);
    /* trustee's verifier shape: verified with the captured nonce, refused with ours */
    const struct cl_tee_verifier *v = cl_tee_verifier_find("nvidia");
    struct cl_tee_config cfg = {.verify_time = TT_TIME};
    struct cl_tee_verify_in in = {ev, captured, 32, NULL, 0, &cfg};
    json_t *claims = NULL;
    CHECK(v->verify(&in, &claims, &e) == 0);
    CHECK(strcmp(json_string_value(json_object_get(claims, "uuid")), "GPU-standin-1") == 0);
    CHECK(strcmp(json_string_value(
                     json_object_get(json_object_get(claims, "config"), "driver_version")),
                 "550.90.07") == 0);
    json_decref(claims);
    claims = NULL;
    struct cl_tee_verify_in ours = {ev, rd48, 48, NULL, 0, &cfg};
    CHECK(v->verify(&ours, &claims, &e) != 0 && strcmp(e.stage, CL_TEE_STAGE_BIND) == 0);
    /* the additional_evidence text of the KBS protocol */
    cl_str *text = cl_aa_additional_evidence(rd48, 48, &e);
    CHECK(text);
    json_t *doc = json_loads(text, 0, NULL);
    CHECK(doc && json_equal(json_object_get(doc, "nvidia"), ev));
    json_decref(doc);
    free(text);
    /* and over ttrpc, as the data hub asks cloister-aa: GetAdditionalEvidence */
    char sock[64];
    snprintf(sock, sizeof sock, "unix:/tmp/cl-aa-nvml-%d.sock", (int)getpid());
    struct cl_ttrpc_server *srv =
        cl_ttrpc_server_start(sock, cl_aa_methods, cl_aa_nmethods, NULL, &e);
    CHECK(srv);
    struct cl_ttrpc_client *cli = cl_ttrpc_client_connect(sock, &e);
    CHECK(cli);
    cl_bytes *out = NULL;
    size_t outlen = 0;
    CHECK(cl_aa_client_get_evidence(cli, rd48, 48, true, &out, &outlen, &e) == 0);
    json_t *wire = json_loadb((const char *)out, outlen, 0, NULL);
    CHECK(wire && json_equal(json_object_get(wire, "nvidia"), ev));
    json_decref(wire);
    free(out);
    cl_ttrpc_client_free(cli);
    cl_ttrpc_server_stop(srv);
    unlink(sock + 5);
    json_decref(ev);
}

static void case_two_gpus(void)
{
    struct cl_err e = {0};
    json_t *ev = cl_aa_nvidia_evidence(captured, 32, &e);
    CHECK(ev && json_array_size(json_object_get(ev, "device_evidence_list")) == 2);
    const struct cl_tee_verifier *v = cl_tee_verifier_find("nvidia");
    struct cl_tee_config cfg = {.verify_time = TT_TIME};
    struct cl_tee_verify_in in = {ev, captured, 32, NULL, 0, &cfg};
    json_t *claims = NULL;
    CHECK(v->verify(&in, &claims, &e) == 0 && json_is_array(claims) &&
          json_array_size(claims) == 2);
    json_decref(claims);
    json_decref(ev);
}

/* no GPU to attest: the empty string, as with no device attester at all */
static void case_empty(void)
{
    struct cl_err e = {0};
    CHECK(!cl_aa_nvidia_evidence(captured, 32, &e) && e.code == CL_ENOTFOUND);
    cl_str *text = cl_aa_additional_evidence(captured, 32, &e);
    CHECK(text && strcmp(text, "") == 0);
    free(text);
}

static int want_code;

/* NVML present but wrong: a named error, not "" */
static void case_error(void)
{
    struct cl_err e = {0};
    CHECK(!cl_aa_nvidia_evidence(captured, 32, &e));
    if (e.code != want_code)
        fprintf(stderr, "got %s: %s\n", cl_err_name(e.code), e.msg);
    CHECK(e.code == want_code);
    CHECK(!cl_aa_additional_evidence(captured, 32, &e));
}

static void test_nvml(void **state)
{
    (void)state;
    in_child(case_evidence, NULL);
    static const char *const two[] = {"NVML_STANDIN_GPUS", "2", NULL};
    in_child(case_two_gpus, two);
    static const char *const cc_off[] = {"NVML_STANDIN_CC", "0", NULL};
    in_child(case_empty, cc_off);
    static const char *const no_gpu[] = {"NVML_STANDIN_GPUS", "0", NULL};
    in_child(case_empty, no_gpu);
    static const char *const no_lib[] = {"CLOISTER_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1",
                                         NULL};
    in_child(case_empty, no_lib);
    want_code = CL_EUNSUPPORTED; /* a library without the NVML symbols */
    static const char *const not_nvml[] = {"CLOISTER_NVML_LIBRARY", "libz.so.1", NULL};
    in_child(case_error, not_nvml);
    want_code = CL_EPARSE; /* a chain size beyond its array */
    static const char *const oversize[] = {"NVML_STANDIN_OVERSIZE", "1", NULL};
    in_child(case_error, oversize);
    want_code = CL_ELIMIT;
    static const char *const many[] = {"NVML_STANDIN_GPUS", "17", NULL};
    in_child(case_error, many);
    want_code = CL_EIO; /* nvmlInit fails: no captured report to replay */
    static const char *const no_report[] = {"NVML_STANDIN_REPORT", "/nonexistent", NULL};
    in_child(case_error, no_report);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nvml),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
