/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The tpm attester against a real TPM simulator: swtpm is started per test on unix sockets
 * in a scratch folder (the test skips when swtpm is not installed). Evidence is checked by
 * the tpm verifier (nonce bound, another nonce refused), init-data is extended into PCR8
 * once (a restart finds it there, another digest is refused, a sha384 digest cannot be
 * bound), runtime measurements extend the SHA-256 bank (PCR23 recomputed here; PCR17 is
 * refused at locality 0 with a hint), the agent picks the attester and records AAEL entries,
 * and a TPM that went away gives clean errors. Also the TCTI resolution table, and the
 * tss2 libraries missing (they are opened on first use): every entry says which one.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>

#include "aa/aa.h"
#include "tee/tee.h"
#include "tee/tpm/tpm.h"

extern char **environ;

struct sim {
    pid_t pid;
    char dir[64];
    char tcti[128];
};

static bool on_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", d, prog);
        if (access(p, X_OK) == 0)
            return true;
    }
    return false;
}

static int sim_start(void **state)
{
    if (!on_path("swtpm")) {
        *state = NULL;
        return 0;
    }
    struct sim *s = calloc(1, sizeof *s);
    assert_non_null(s);
    snprintf(s->dir, sizeof s->dir, "/tmp/cl-aatpm-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    char state_arg[128], server[160], ctrl[160];
    snprintf(state_arg, sizeof state_arg, "dir=%s", s->dir);
    snprintf(server, sizeof server, "type=unixio,path=%s/s", s->dir);
    snprintf(ctrl, sizeof ctrl, "type=unixio,path=%s/s.ctrl", s->dir);
    char *const argv[] = {"swtpm",
                          "socket",
                          "--tpm2",
                          "--tpmstate",
                          state_arg,
                          "--server",
                          server,
                          "--ctrl",
                          ctrl,
                          "--flags",
                          "not-need-init,startup-clear",
                          NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    assert_int_equal(posix_spawnp(&s->pid, "swtpm", &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    char sock[128];
    snprintf(sock, sizeof sock, "%s/s", s->dir);
    struct stat st;
    for (int i = 0; i < 100 && stat(sock, &st) != 0; i++)
        usleep(50000);
    assert_int_equal(stat(sock, &st), 0);
    snprintf(s->tcti, sizeof s->tcti, "swtpm:path=%s/s", s->dir);
    *state = s;
    return 0;
}

static void sim_kill(struct sim *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

static int sim_stop(void **state)
{
    struct sim *s = *state;
    if (!s)
        return 0;
    sim_kill(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s->dir);
    free(s);
    return 0;
}

#define NEED_SIM(state)                                                                            \
    struct sim *sim = *(state);                                                                    \
    if (!sim) {                                                                                    \
        fprintf(stderr, "swtpm is not installed: the TPM simulator cases are skipped\n");          \
        skip();                                                                                    \
    }

static void platform_for(struct cl_aa_platform *p, const char *tcti)
{
    cl_aa_platform_default(p);
    p->tsm_report_dir = "/nonexistent";
    p->tdx_guest_dev = "/nonexistent";
    p->sev_guest_sysfs = "/nonexistent";
    p->tpm_device = NULL;
    p->tpm_tcti = tcti;
}

/* Verifies evidence with the tpm verifier; returns the code, claims in *claims when asked. */
static int verify(const json_t *ev, const uint8_t *rd, size_t rdlen, const uint8_t *init,
                  json_t **claims, struct cl_err *e)
{
    const struct cl_tee_verifier *v = cl_tee_verifier_find("tpm");
    assert_non_null(v);
    struct cl_tee_verify_in in = {.evidence = ev,
                                  .report_data = rd,
                                  .report_data_len = rdlen,
                                  .init_data_digest = init,
                                  .init_data_len = init ? 32 : 0};
    json_t *c = NULL;
    int rc = v->verify(&in, &c, e);
    if (claims)
        *claims = c;
    else
        json_decref(c);
    return rc;
}

static void pcr_of(const json_t *ev, int i, uint8_t out[32])
{
    const char *h = json_string_value(
        json_array_get(json_object_get(json_object_get(ev, "tpm_quote"), "pcrs"), (size_t)i));
    size_t n = 0;
    assert_non_null(h);
    assert_int_equal(cl_hex_decode(h, strlen(h), out, 32, &n, NULL), 0);
    assert_int_equal(n, 32);
}

static void sha256_extend(uint8_t reg[32], const uint8_t d[32])
{
    uint8_t buf[64];
    memcpy(buf, reg, 32);
    memcpy(buf + 32, d, 32);
    assert_int_equal(cl_digest(CL_HASH_SHA256, buf, sizeof buf, reg, NULL), 0);
}

/* ---- cases ---- */

static void test_tcti_table(void **state)
{
    struct cl_aa_platform p;
    char buf[64];
    platform_for(&p, "swtpm:host=127.0.0.1,port=2321");
    p.tpm_device = "/dev/tpm9";
    assert_true(cl_aa_tpm_tcti(&p, buf, sizeof buf));
    assert_string_equal(buf, "swtpm:host=127.0.0.1,port=2321"); /* tcti wins */
    p.tpm_tcti = NULL;
    assert_true(cl_aa_tpm_tcti(&p, buf, sizeof buf));
    assert_string_equal(buf, "device:/dev/tpm9");
    p.tpm_tcti = "none";
    assert_false(cl_aa_tpm_tcti(&p, buf, sizeof buf));
    p.tpm_tcti = "swtpm:path=/a/very/long/path/that/does/not/fit/in/the/small/buffer/given";
    assert_false(cl_aa_tpm_tcti(&p, buf, sizeof buf));
    /* no TPM at all: each entry says so */
    const struct cl_aa_attester *a = cl_aa_attester_find("tpm");
    uint8_t d[32] = {0};
    struct cl_err e = {0};
    p.tpm_tcti = "none";
    assert_null(a->evidence(&p, d, sizeof d, &e));
    assert_int_equal(e.code, CL_ENOTFOUND);
    assert_int_equal(a->bind_init_data(&p, d, sizeof d, &e), CL_ENOTFOUND);
    assert_int_equal(a->extend(&p, 23, d, sizeof d, &e), CL_ENOTFOUND);
    /* nothing there: not detected, and the agent does not start without the sample switch */
    platform_for(&p, "swtpm:path=/nonexistent/s");
    assert_false(cl_aa_attester_find("tpm")->detect(&p));
    assert_null(cl_aa_attester_detect(&p));
}

static void test_evidence_verifies(void **state)
{
    NEED_SIM(state);
    struct cl_aa_platform p;
    platform_for(&p, sim->tcti);
    const struct cl_aa_attester *a = cl_aa_attester_detect(&p);
    assert_non_null(a);
    assert_string_equal(a->tee, "tpm");
    assert_int_equal(a->eventlog_hash, CL_HASH_SHA256);
    uint8_t rd[48];
    for (size_t i = 0; i < sizeof rd; i++)
        rd[i] = (uint8_t)(i * 7 + 1);
    struct cl_err e = {0};
    CL_AUTO(json_t) *ev = a->evidence(&p, rd, sizeof rd, &e);
    if (!ev)
        fail_msg("%s", e.msg);
    /* trustee's shape */
    assert_true(json_is_string(json_object_get(ev, "ak_public")));
    json_t *q = json_object_get(ev, "tpm_quote");
    assert_true(json_is_string(json_object_get(q, "signature")));
    assert_true(json_is_string(json_object_get(q, "message")));
    assert_int_equal(json_array_size(json_object_get(q, "pcrs")), 24);
    CL_AUTO(json_t) *claims = NULL;
    if (verify(ev, rd, sizeof rd, NULL, &claims, &e) != 0)
        fail_msg("verify: %s", e.msg);
    /* the nonce slot holds the report data cut to 32 bytes */
    CL_AUTO(cl_str) *want = cl_hex_encode(rd, 32);
    assert_string_equal(json_string_value(json_object_get(claims, "report_data")), want);
    /* tamper twin: another nonce */
    rd[0] ^= 1;
    assert_int_equal(verify(ev, rd, sizeof rd, NULL, NULL, &e), CL_EVERIFY);
    assert_string_equal(e.stage, "bind");
    /* the same TPM gives the same AK (an owner enrols it once) */
    CL_AUTO(json_t) *ev2 = a->evidence(&p, rd, sizeof rd, &e);
    assert_non_null(ev2);
    assert_true(json_equal(json_object_get(ev, "ak_public"), json_object_get(ev2, "ak_public")));
}

static void test_bind_init_data(void **state)
{
    NEED_SIM(state);
    struct cl_aa_platform p;
    platform_for(&p, sim->tcti);
    const struct cl_aa_attester *a = cl_aa_attester_find("tpm");
    uint8_t d[48];
    memset(d, 0x42, sizeof d);
    struct cl_err e = {0};
    /* sha384 init-data cannot be extended into a SHA-256 PCR */
    assert_int_equal(a->bind_init_data(&p, d, 48, &e), CL_EINVAL);
    assert_non_null(strstr(e.msg, "sha256"));
    assert_int_equal(a->bind_init_data(&p, d, 32, &e), 0);
    /* a restart on the same boot: already there, not extended twice */
    assert_int_equal(a->bind_init_data(&p, d, 32, &e), 0);
    uint8_t rd[32] = {1};
    CL_AUTO(json_t) *ev = a->evidence(&p, rd, sizeof rd, &e);
    assert_non_null(ev);
    if (verify(ev, rd, sizeof rd, d, NULL, &e) != 0)
        fail_msg("verify with init-data: %s", e.msg);
    uint8_t pcr8[32], want[32] = {0};
    pcr_of(ev, 8, pcr8);
    sha256_extend(want, d);
    assert_memory_equal(pcr8, want, 32);
    /* another init-data: the platform is inconsistent with it */
    uint8_t other[32];
    memset(other, 0x43, sizeof other);
    assert_int_equal(a->bind_init_data(&p, other, 32, &e), CL_EVERIFY);
    assert_non_null(strstr(e.msg, "inconsistent"));
    assert_int_equal(verify(ev, rd, sizeof rd, other, NULL, &e), CL_EVERIFY);
    assert_string_equal(e.stage, "init-data");
}

static void test_extend(void **state)
{
    NEED_SIM(state);
    struct cl_aa_platform p;
    platform_for(&p, sim->tcti);
    const struct cl_aa_attester *a = cl_aa_attester_find("tpm");
    struct cl_err e = {0};
    uint8_t rd[32] = {0}, d[32], before[32], after[32];
    memset(d, 0x5c, sizeof d);
    CL_AUTO(json_t) *ev1 = a->evidence(&p, rd, sizeof rd, &e);
    assert_non_null(ev1);
    pcr_of(ev1, 23, before);
    assert_int_equal(a->extend(&p, 23, d, sizeof d, &e), 0);
    CL_AUTO(json_t) *ev2 = a->evidence(&p, rd, sizeof rd, &e);
    assert_non_null(ev2);
    pcr_of(ev2, 23, after);
    sha256_extend(before, d);
    assert_memory_equal(before, after, 32);
    /* one rejection per branch */
    assert_int_equal(a->extend(&p, 24, d, sizeof d, &e), CL_EINVAL);
    assert_int_equal(a->extend(&p, 23, d, 48, &e), CL_EINVAL);
    assert_int_equal(a->extend(&p, 17, d, sizeof d, &e), CL_EIO);
    assert_non_null(strstr(e.msg, "locality"));
}

static void test_agent(void **state)
{
    NEED_SIM(state);
    char dir[] = "/tmp/cl-aatpm-log-XXXXXX";
    assert_non_null(mkdtemp(dir));
    CL_AUTO(cl_str) *toml =
        cl_strdupf("attester = \"tpm\"\ntpm_tcti = \"%s\"\n[eventlog_config]\n"
                   "enable_eventlog = true\ninit_pcr = 23\npath = \"%s/eventlog\"\n",
                   sim->tcti, dir);
    struct cl_aa_config c;
    struct cl_err e = {0};
    assert_int_equal(cl_aa_config_parse(toml, strlen(toml), &c, &e), 0);
    assert_string_equal(c.tpm_tcti, sim->tcti);
    struct cl_aa_opts o = {.cfg = &c};
    platform_for(&o.platform, NULL); /* the TCTI comes from aa.toml */
    struct cl_aa *aa = cl_aa_new(&o, &e);
    if (!aa)
        fail_msg("%s", e.msg);
    assert_string_equal(cl_aa_tee(aa), "tpm");
    CL_AUTO(cl_str) *ev1 = cl_aa_get_evidence(aa, (const uint8_t *)"n", 1, &e);
    assert_non_null(ev1);
    CL_AUTO(json_t) *j1 = cl_json_parse(ev1, strlen(ev1), 8, NULL);
    uint8_t reg[32], now[32];
    pcr_of(j1, 23, reg);
    enum cl_aa_extend_result r = CL_AA_EXTEND_NOT_ENABLED;
    assert_int_equal(cl_aa_extend(aa, "github.com/confidential-containers", "PullImage",
                                  "{\"image\":\"x\"}", -1, &r, &e),
                     0);
    assert_int_equal(r, CL_AA_EXTEND_OK);
    /* the AAEL entry names PCR23 and SHA-256; its digest is what went into the PCR */
    uint8_t dg[32];
    size_t el = 0;
    CL_AUTO(cl_bytes) *entry = cl_aa_aael_entry(
        23, CL_HASH_SHA256, "github.com/confidential-containers PullImage {\"image\":\"x\"}", &el,
        dg, NULL);
    assert_non_null(entry);
    char lp[128];
    snprintf(lp, sizeof lp, "%s/eventlog", dir);
    size_t ln = 0;
    CL_AUTO(cl_bytes) *log = cl_file_read(lp, 1u << 20, &ln, NULL);
    assert_non_null(log);
    assert_int_equal(ln, el);
    assert_memory_equal(log, entry, el);
    CL_AUTO(cl_str) *ev2 = cl_aa_get_evidence(aa, (const uint8_t *)"n", 1, &e);
    CL_AUTO(json_t) *j2 = cl_json_parse(ev2, strlen(ev2), 8, NULL);
    pcr_of(j2, 23, now);
    sha256_extend(reg, dg);
    assert_memory_equal(reg, now, 32);
    /* the TPM goes away: clean errors, and the agent is still there when it returns */
    sim_kill(sim);
    CL_AUTO(cl_str) *dead = cl_aa_get_evidence(aa, (const uint8_t *)"n", 1, &e);
    assert_null(dead);
    assert_int_equal(e.code, CL_EIO);
    assert_non_null(strstr(e.msg, "tpm"));
    assert_int_not_equal(cl_aa_extend(aa, "d", "o", "c", -1, &r, &e), 0);
    assert_int_equal(e.code, CL_EIO);
    cl_aa_free(aa);
    /* forced but absent: refused at start */
    struct cl_aa *aa2 = cl_aa_new(&o, &e);
    assert_null(aa2);
    assert_int_equal(e.code, CL_ENOTFOUND);
    cl_aa_config_clear(&c);
    unlink(lp);
    rmdir(dir);
}

/* The tss2 libraries are opened on first use: with one of them missing (or a library that is
 * not tss2), every attester entry and the verifier's parsers fail with EUNSUPPORTED naming it,
 * before any TPM is contacted; the forwarders called directly answer NOT_IMPLEMENTED. */
static void test_tss2_absent(void **state)
{
    struct cl_aa_platform p;
    platform_for(&p, "swtpm:path=/nonexistent/tpm");
    const struct cl_aa_attester *a = cl_aa_attester_find("tpm");
    assert_non_null(a);
    struct {
        unsigned lib;
        const char *soname, *msg;
    } cases[] = {
        {CL_TPM_TSS2_ESYS, "libcloister-absent-esys.so.0",
         "libcloister-absent-esys.so.0 (tss2) cannot be loaded"},
        {CL_TPM_TSS2_MU, "libcloister-absent-mu.so.0",
         "libcloister-absent-mu.so.0 (tss2) cannot be loaded"},
        {CL_TPM_TSS2_TCTILDR, "libcloister-absent-ldr.so.0",
         "libcloister-absent-ldr.so.0 (tss2) cannot be loaded"},
        {CL_TPM_TSS2_RC, "libcloister-absent-rc.so.0",
         "libcloister-absent-rc.so.0 (tss2) cannot be loaded"},
        {CL_TPM_TSS2_ESYS, "libz.so.1", "libz.so.1 (tss2) has no Esys_Initialize"},
    };
    uint8_t rd[32] = {0}, d[32] = {0}, junk[16] = {0};
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        cl_tee_tpm_tss2_soname_set(cases[i].lib, cases[i].soname);
        struct cl_err e = {0};
        assert_int_equal(cl_tee_tpm_tss2_load(cases[i].lib, &e), CL_EUNSUPPORTED);
        if (!strstr(e.msg, cases[i].msg))
            fail_msg("case %zu: '%s'", i, e.msg);
        memset(&e, 0, sizeof e);
        json_t *ev = a->evidence(&p, rd, sizeof rd, &e);
        assert_null(ev);
        assert_int_equal(e.code, CL_EUNSUPPORTED);
        assert_non_null(strstr(e.msg, cases[i].soname));
        assert_false(a->detect(&p));
        memset(&e, 0, sizeof e);
        assert_int_equal(a->extend(&p, 23, d, sizeof d, &e), CL_EUNSUPPORTED);
        assert_non_null(strstr(e.msg, cases[i].soname));
        memset(&e, 0, sizeof e);
        assert_int_equal(a->bind_init_data(&p, d, sizeof d, &e), CL_EUNSUPPORTED);
        assert_non_null(strstr(e.msg, cases[i].soname));
        size_t n = 0;
        assert_null(cl_tee_tpm_ak_public(p.tpm_tcti, &n, NULL));
        /* the verifier's parsers need tss2-mu only */
        struct cl_tpm_quote_info qi;
        memset(&e, 0, sizeof e);
        int rc = cl_tpm_attest_parse(junk, sizeof junk, &qi, &e);
        if (cases[i].lib == CL_TPM_TSS2_MU) {
            assert_int_equal(rc, CL_EUNSUPPORTED);
            assert_non_null(strstr(e.msg, cases[i].soname));
        } else {
            assert_int_equal(rc, CL_EPARSE); /* parsed (and refused) by the real tss2-mu */
        }
        /* the forwarders, called without a load first */
        if (cases[i].lib == CL_TPM_TSS2_ESYS) {
            ESYS_CONTEXT *ctx = NULL;
            assert_int_equal(Esys_Initialize(&ctx, NULL, NULL), TSS2_ESYS_RC_NOT_IMPLEMENTED);
            assert_null(ctx);
            Esys_Free(NULL); /* no-op, no crash */
        }
        if (cases[i].lib == CL_TPM_TSS2_RC)
            assert_non_null(
                strstr(Tss2_RC_Decode(TSS2_ESYS_RC_NOT_IMPLEMENTED), "cannot be loaded"));
        cl_tee_tpm_tss2_soname_set(cases[i].lib, NULL);
    }
    /* a configured tpm attester whose libraries are missing: the agent refuses to start */
    cl_tee_tpm_tss2_soname_set(CL_TPM_TSS2_ESYS, "libcloister-absent-esys.so.0");
    struct cl_aa_config c;
    struct cl_err e = {0};
    const char *toml = "attester = \"tpm\"\ntpm_tcti = \"swtpm:path=/nonexistent/tpm\"\n";
    assert_int_equal(cl_aa_config_parse(toml, strlen(toml), &c, &e), 0);
    struct cl_aa_opts o = {.cfg = &c};
    platform_for(&o.platform, NULL);
    assert_null(cl_aa_new(&o, &e));
    assert_int_equal(e.code, CL_ENOTFOUND);
    cl_aa_config_clear(&c);
    cl_tee_tpm_tss2_soname_set(CL_TPM_TSS2_ALL, NULL);
    memset(&e, 0, sizeof e);
    if (cl_tee_tpm_tss2_load(CL_TPM_TSS2_ALL, &e) != 0)
        fail_msg("%s", e.msg);
}

int main(void)
{
    cl_log_set_level(CL_LOG_ERROR);
    setenv("TSS2_LOG", "all+none", 0); /* tss2's own stderr lines would drown the report */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcti_table),
        cmocka_unit_test(test_tss2_absent),
        cmocka_unit_test_setup_teardown(test_evidence_verifies, sim_start, sim_stop),
        cmocka_unit_test_setup_teardown(test_bind_init_data, sim_start, sim_stop),
        cmocka_unit_test_setup_teardown(test_extend, sim_start, sim_stop),
        cmocka_unit_test_setup_teardown(test_agent, sim_start, sim_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
