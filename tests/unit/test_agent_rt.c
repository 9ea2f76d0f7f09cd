/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Agent runtime pieces that need no container: the oci.proto → runtime-spec JSON walk (name
 * mapping, defaults left out, maps, the errnoret oneof, Kata's -1 device wildcard), process
 * checks (rlimits capped, empty args refused), id checks, the CopyFile confinement (one case
 * per refusal) and CopyFile itself on a real folder (files, offsets, folders, symlinks, and
 * the refusals: overrun, unknown type, a planted symlink). The container life cycle runs in
 * tests/integration/agent-run.sh against runc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtime.h"

#include "agent.pb-c.h"
#include "oci.pb-c.h"

/* ---- oci.proto → JSON ---- */

static void test_oci_json(void **state)
{
    (void)state;
    Grpc__Spec spec;
    grpc__spec__init(&spec);
    spec.version = (char *)"1.0.2";
    spec.hostname = (char *)"h";
    Grpc__Process proc;
    grpc__process__init(&proc);
    char *args[] = {(char *)"/bin/sh", (char *)"-c", (char *)"true"};
    proc.args = args;
    proc.n_args = 3;
    proc.oomscoreadj = 100;
    Grpc__User user;
    grpc__user__init(&user);
    user.gid = 7;
    proc.user = &user;
    spec.process = &proc;
    Grpc__Linux lx;
    grpc__linux__init(&lx);
    Grpc__LinuxIDMapping idm;
    grpc__linux_idmapping__init(&idm);
    idm.hostid = 1000;
    idm.containerid = 0;
    idm.size = 1;
    Grpc__LinuxIDMapping *idms[] = {&idm};
    lx.uidmappings = idms;
    lx.n_uidmappings = 1;
    Grpc__LinuxResources res;
    grpc__linux_resources__init(&res);
    Grpc__LinuxDeviceCgroup dev;
    grpc__linux_device_cgroup__init(&dev);
    dev.major = -1;
    dev.minor = -1;
    dev.access = (char *)"rwm";
    Grpc__LinuxDeviceCgroup *devs[] = {&dev};
    res.devices = devs;
    res.n_devices = 1;
    Grpc__LinuxHugepageLimit hp;
    grpc__linux_hugepage_limit__init(&hp);
    hp.pagesize = (char *)"2MB";
    hp.limit = 4096;
    Grpc__LinuxHugepageLimit *hps[] = {&hp};
    res.hugepagelimits = hps;
    res.n_hugepagelimits = 1;
    lx.resources = &res;
    Grpc__LinuxSeccomp sc;
    grpc__linux_seccomp__init(&sc);
    sc.defaultaction = (char *)"SCMP_ACT_ERRNO";
    Grpc__LinuxSyscall s1, s2;
    grpc__linux_syscall__init(&s1);
    grpc__linux_syscall__init(&s2);
    s1.action = (char *)"SCMP_ACT_ERRNO";
    s1.errno_ret_case = GRPC__LINUX_SYSCALL__ERRNO_RET_ERRNORET;
    s1.errnoret = 1;
    s2.action = (char *)"SCMP_ACT_ALLOW"; /* the tamper twin: oneof unset */
    Grpc__LinuxSyscall *scs[] = {&s1, &s2};
    sc.syscalls = scs;
    sc.n_syscalls = 2;
    lx.seccomp = &sc;
    spec.linux = &lx;
    Grpc__Spec__AnnotationsEntry ae;
    grpc__spec__annotations_entry__init(&ae);
    ae.key = (char *)"io.kubernetes.cri.image-name";
    ae.value = (char *)"busybox";
    Grpc__Spec__AnnotationsEntry *aes[] = {&ae};
    spec.annotations = aes;
    spec.n_annotations = 1;

    struct cl_err err = {0};
    json_t *j = cl_agent_oci_to_json(&spec.base, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "ociVersion")), "1.0.2");
    assert_null(json_object_get(j, "Version"));
    json_t *p = json_object_get(j, "process");
    assert_int_equal(json_array_size(json_object_get(p, "args")), 3);
    assert_int_equal(json_integer_value(json_object_get(p, "oomScoreAdj")), 100);
    assert_null(json_object_get(p, "terminal")); /* false: left out */
    assert_null(json_object_get(json_object_get(p, "user"), "uid"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(p, "user"), "gid")), 7);
    json_t *l = json_object_get(j, "linux");
    json_t *m = json_array_get(json_object_get(l, "uidMappings"), 0);
    assert_int_equal(json_integer_value(json_object_get(m, "hostID")), 1000);
    assert_null(json_object_get(m, "containerID")); /* 0 */
    json_t *r = json_object_get(l, "resources");
    json_t *d = json_array_get(json_object_get(r, "devices"), 0);
    assert_null(json_object_get(d, "major")); /* -1: any */
    assert_string_equal(json_string_value(json_object_get(d, "access")), "rwm");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(r, "hugepageLimits"), 0), "pageSize")),
                        "2MB");
    json_t *sys = json_object_get(json_object_get(l, "seccomp"), "syscalls");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(sys, 0), "errnoRet")), 1);
    assert_null(json_object_get(json_array_get(sys, 1), "errnoRet"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "annotations"),
                                                          "io.kubernetes.cri.image-name")),
                        "busybox");
    assert_null(json_object_get(j, "solaris"));
    json_decref(j);
    assert_null(cl_agent_oci_to_json(NULL, &err));
    assert_int_equal(err.code, CL_EINVAL);
}

/* ---- process checks ---- */

static void test_process_fix(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    struct cl_err err = {0};
    json_t *p =
        json_pack("{s:[s],s:[{s:s,s:I,s:I}]}", "args", "/bin/true", "rlimits", "type",
                  "RLIMIT_NOFILE", "hard", (json_int_t)1 << 40, "soft", (json_int_t)1 << 40);
    assert_int_equal(cl_agent_process_fix(p, &err), 0);
    json_t *r = json_array_get(json_object_get(p, "rlimits"), 0);
    if (rl.rlim_max != RLIM_INFINITY) {
        assert_int_equal(json_integer_value(json_object_get(r, "hard")), (json_int_t)rl.rlim_max);
        assert_int_equal(json_integer_value(json_object_get(r, "soft")), (json_int_t)rl.rlim_max);
    }
    assert_string_equal(json_string_value(json_object_get(p, "cwd")), "/");
    json_decref(p);
    /* LSM settings this kernel does not enforce are dropped (runc would refuse them) */
    p = json_pack("{s:[s],s:s,s:s}", "args", "/bin/true", "apparmorProfile",
                  "cri-containerd.apparmor.d", "selinuxLabel", "system_u:system_r:container_t:s0");
    assert_int_equal(cl_agent_process_fix(p, &err), 0);
    struct stat st;
    if (stat("/sys/fs/selinux/enforce", &st) != 0)
        assert_null(json_object_get(p, "selinuxLabel"));
    FILE *aa = fopen("/sys/module/apparmor/parameters/enabled", "r");
    if (!aa)
        assert_null(json_object_get(p, "apparmorProfile"));
    else
        fclose(aa);
    json_decref(p);
    /* one case per refusal */
    const char *bad[] = {
        "{\"args\":[]}",
        "{}",
        "{\"args\":[\"x\"],\"rlimits\":[{\"type\":\"RLIMIT_BOGUS\",\"hard\":1,\"soft\":1}]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        assert_non_null(b);
        assert_int_equal(cl_agent_process_fix(b, &err), CL_EINVAL);
        json_decref(b);
    }
    assert_int_equal(cl_agent_process_fix(NULL, &err), CL_EINVAL);
}

static void test_ids(void **state)
{
    (void)state;
    const char *good[] = {"c1", "a", "abc-DEF_1.2", "0abc"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(cl_agent_id_check(good[i], "id", NULL), 0);
    char longid[CL_AGENT_RT_MAX_ID + 2];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    const char *bad[] = {"", "-x", ".x", "_x", "a/b", "..", "a b", "a\nb", "x;y", longid};
    struct cl_err err = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cl_agent_id_check(bad[i], "id", &err), CL_EINVAL);
    assert_int_equal(cl_agent_id_check(NULL, "id", &err), CL_EINVAL);
}

/* ---- CopyFile confinement ---- */

static void test_copy_path(void **state)
{
    (void)state;
    const char *root = "/run/kata-containers/shared/containers";
    const char *rel = NULL;
    struct cl_err err = {0};
    assert_int_equal(
        cl_agent_copy_path_check(root, "/run/kata-containers/shared/containers/a/b", &rel, &err),
        0);
    assert_string_equal(rel, "a/b");
    assert_int_equal(
        cl_agent_copy_path_check(
            root, "/run/kata-containers/shared/containers/sb-1_x.y/resolv.conf", &rel, &err),
        0);
    const struct {
        const char *path;
        int code;
    } bad[] = {
        {"", CL_EINVAL},
        {"relative/path", CL_EDENIED},
        {"/etc/passwd", CL_EDENIED},
        {"/run/kata-containers/shared/containers", CL_EDENIED},
        {"/run/kata-containers/shared/containers/", CL_EDENIED},
        {"/run/kata-containers/shared/containersX/a", CL_EDENIED},
        {"/run/kata-containers/shared/containers/../x", CL_EDENIED},
        {"/run/kata-containers/shared/containers/a/../../x", CL_EDENIED},
        {"/run/kata-containers/shared/containers/./a", CL_EDENIED},
        {"/run/kata-containers/shared/containers/a//b", CL_EDENIED},
        {"/run/kata-containers/shared/containers/a/", CL_EDENIED},
        {"/run/kata-containers/shared/containers/a/..", CL_EDENIED},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_int_equal(cl_agent_copy_path_check(root, bad[i].path, &rel, &err), bad[i].code);
    }
    assert_int_equal(cl_agent_copy_path_check(root, NULL, &rel, &err), CL_EINVAL);
}

/* ---- CopyFile on a real folder ---- */

struct fixture {
    char dir[64];
    char shared[128];
    struct cl_agent_rt *rt;
};

static int setup_rt(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    strcpy(f.dir, "/tmp/cl-agent-rt.XXXXXX");
    if (!mkdtemp(f.dir))
        return -1;
    snprintf(f.shared, sizeof f.shared, "%s/shared/containers", f.dir);
    struct cl_agent_rt_config cfg = {
        .run_dir = f.dir, .runc = "runc", .cdh_addr = "unix:///nonexistent"};
    struct cl_err err = {0};
    f.rt = cl_agent_rt_new(&cfg, &err);
    if (!f.rt)
        fprintf(stderr, "runtime: %s\n", err.msg);
    *state = &f;
    return 0;
}

static int teardown_rt(void **state)
{
    struct fixture *f = *state;
    cl_agent_rt_free(f->rt);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int copy(struct fixture *f, const char *rel, uint32_t mode, int64_t size, int64_t off,
                const char *data, struct cl_err *err)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", f->shared, rel);
    struct cl_agent_copy c = {
        path, size, mode, 0750, -1, -1, off, (const uint8_t *)data, data ? strlen(data) : 0};
    return cl_agent_rt_copy_file(f->rt, &c, err);
}

static void test_copy_file(void **state)
{
    struct fixture *f = *state;
    if (!f->rt)
        skip(); /* no runc here: cl_agent_rt_new refused */
    struct cl_err err = {0};
    char p[256], buf[64] = "";
    /* a file in two pieces, parents created with dir_mode */
    assert_int_equal(copy(f, "sb/etc/hosts", S_IFREG | 0640, 10, 0, "12345", &err), 0);
    assert_int_equal(copy(f, "sb/etc/hosts", S_IFREG | 0640, 10, 5, "67890", &err), 0);
    snprintf(p, sizeof p, "%s/sb/etc/hosts", f->shared);
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    assert_non_null(fgets(buf, sizeof buf, fp));
    fclose(fp);
    assert_string_equal(buf, "1234567890");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);
    snprintf(p, sizeof p, "%s/sb/etc", f->shared);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0750);
    /* offset 0 starts the file again */
    assert_int_equal(copy(f, "sb/etc/hosts", S_IFREG | 0640, 2, 0, "ab", &err), 0);
    snprintf(p, sizeof p, "%s/sb/etc/hosts", f->shared);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 2);
    /* a folder, a symlink (kept as a link) */
    assert_int_equal(copy(f, "sb/dir", S_IFDIR | 0700, 0, 0, NULL, &err), 0);
    assert_int_equal(copy(f, "sb/dir", S_IFDIR | 0700, 0, 0, NULL, &err), 0); /* again: fine */
    assert_int_equal(copy(f, "sb/link", S_IFLNK | 0777, 0, 0, "/etc", &err), 0);
    snprintf(p, sizeof p, "%s/sb/link", f->shared);
    assert_int_equal(lstat(p, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    /* refusals, one per branch */
    assert_int_equal(copy(f, "sb/link/passwd", S_IFREG | 0644, 1, 0, "x", &err), CL_EDENIED);
    assert_int_equal(access("/etc/passwd", F_OK), 0); /* untouched, obviously; and: */
    assert_int_equal(copy(f, "sb/link", S_IFREG | 0644, 1, 0, "x", &err),
                     CL_EDENIED); /* O_NOFOLLOW */
    assert_int_equal(copy(f, "sb/x", S_IFREG | 0644, 3, 2, "abc", &err), CL_EINVAL); /* overrun */
    assert_int_equal(copy(f, "sb/x", S_IFREG | 0644, 3, -1, "a", &err),
                     CL_EINVAL); /* negative offset */
    assert_int_equal(copy(f, "sb/x", S_IFREG | 0644, -1, 0, "", &err), CL_ELIMIT);
    assert_int_equal(copy(f, "sb/x", S_IFREG | 0644, (int64_t)CL_AGENT_MAX_COPY + 1, 0, "", &err),
                     CL_ELIMIT);
    assert_int_equal(copy(f, "sb/fifo", S_IFIFO | 0644, 0, 0, NULL, &err), CL_EINVAL);
    assert_int_equal(copy(f, "sb/l2", S_IFLNK | 0777, 0, 0, "", &err), CL_EINVAL);
    assert_int_equal(copy(f, "sb/../escape", S_IFREG | 0644, 1, 0, "x", &err), CL_EDENIED);
    snprintf(p, sizeof p, "%s/shared/escape", f->dir);
    assert_int_equal(access(p, F_OK), -1);
    struct cl_agent_copy out = {"/tmp/cl-agent-rt-outside", 1, S_IFREG | 0644, 0, -1, -1, 0,
                                (const uint8_t *)"x",       1};
    assert_int_equal(cl_agent_rt_copy_file(f->rt, &out, &err), CL_EDENIED);
    assert_int_equal(access("/tmp/cl-agent-rt-outside", F_OK), -1);
}

/* Calls on containers that do not exist are refused by name, never by a crash. */
static void test_absent(void **state)
{
    struct fixture *f = *state;
    if (!f->rt)
        skip();
    struct cl_err err = {0};
    int st = 0;
    cl_bytes *b = NULL;
    size_t n = 0;
    assert_int_equal(cl_agent_rt_start(f->rt, "nope", &err), CL_ENOTFOUND);
    assert_int_equal(cl_agent_rt_wait(f->rt, "nope", "", &st, &err), CL_ENOTFOUND);
    assert_int_equal(cl_agent_rt_signal(f->rt, "nope", "", 9, &err), CL_ENOTFOUND);
    assert_int_equal(cl_agent_rt_signal(f->rt, "nope", "", 99, &err), CL_EINVAL);
    assert_int_equal(cl_agent_rt_read(f->rt, "nope", "", false, 10, &b, &n, &err), CL_ENOTFOUND);
    assert_int_equal(cl_agent_rt_remove(f->rt, "nope", 0, &err), CL_ENOTFOUND);
    assert_int_equal(cl_agent_rt_remove(f->rt, "../x", 0, &err), CL_EINVAL);
    struct cl_agent_stats s;
    assert_int_equal(cl_agent_rt_stats(f->rt, "nope", &s, &err), CL_ENOTFOUND);
    /* the run folder's own entries are not container ids */
    const char *sp0 = "{\"process\":{\"args\":[\"/bin/true\"]}}";
    const char *reserved[] = {"sandbox", "shared", "image"};
    for (size_t i = 0; i < 3; i++) {
        struct cl_agent_create r = {reserved[i], reserved[i], sp0, strlen(sp0), NULL, 0};
        assert_int_equal(cl_agent_rt_create(f->rt, &r, &err), CL_EINVAL);
    }
    /* a spec that is not JSON, a rootfs that is not there */
    struct cl_agent_create c = {"c1", "c1", "{", 1, NULL, 0};
    assert_int_equal(cl_agent_rt_create(f->rt, &c, &err), CL_EPARSE);
    const char *spec = "{\"process\":{\"args\":[\"/bin/true\"]}}";
    struct cl_agent_create c2 = {"c1", "c1", spec, strlen(spec), NULL, 0};
    assert_int_equal(cl_agent_rt_create(f->rt, &c2, &err), CL_EINVAL);
    char bundle[128];
    snprintf(bundle, sizeof bundle, "%s/c1", f->dir);
    assert_int_equal(access(bundle, F_OK), -1); /* nothing left behind */
    /* an image_guest_pull storage with a foreign mount point, an unknown driver */
    struct cl_agent_storage bad_mp = {"image_guest_pull", "busybox", "overlay", "/elsewhere"};
    struct cl_agent_create c3 = {"c1", "c1", spec, strlen(spec), &bad_mp, 1};
    assert_int_equal(cl_agent_rt_create(f->rt, &c3, &err), CL_EINVAL);
    struct cl_agent_storage bad_drv = {"virtio-fs", "x", "", "/x"};
    struct cl_agent_create c4 = {"c1", "c1", spec, strlen(spec), &bad_drv, 1};
    assert_int_equal(cl_agent_rt_create(f->rt, &c4, &err), CL_EUNSUPPORTED);
    struct cl_agent_storage no_cdh = {"image_guest_pull", "busybox", "overlay", ""};
    struct cl_agent_create c5 = {"c1", "c1", spec, strlen(spec), &no_cdh, 1};
    assert_int_equal(cl_agent_rt_create(f->rt, &c5, &err), CL_EIO);
    assert_non_null(strstr(err.msg, "confidential data hub"));
    assert_int_equal(access(bundle, F_OK), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oci_json),
        cmocka_unit_test(test_process_fix),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_copy_path),
        cmocka_unit_test_setup_teardown(test_copy_file, setup_rt, teardown_rt),
        cmocka_unit_test_setup_teardown(test_absent, setup_rt, teardown_rt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
