/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shim's pure parts: runtime.toml (defaults, every key, one refusal per key kind, by
 * name), the socket address and VM folder derivations (against sha256sum-computed values),
 * id checks, the bundle's CRI annotations, the runtime options Any, the OCI spec rewrite
 * and conversion for the guest, QEMU's command line, and the init-data disk (read back
 * with the AA's decoder; a tampered annotation refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aa/aa.h"
#include "agent.pb-c.h"
#include "cd_runtimeoptions.pb-c.h"
#include "crypto/crypto.h"
#include "oci.pb-c.h"
#include "shim/shim.h"

/* ---- runtime.toml ---- */

static void test_config_defaults_and_keys(void **state)
{
    struct cl_shim_config c;
    cl_shim_config_defaults(&c);
    assert_string_equal(c.qemu, "/usr/bin/qemu-system-x86_64");
    assert_int_equal(c.vcpus, 1);
    assert_int_equal(c.kvm, CL_SHIM_KVM_AUTO);
    assert_int_equal(c.transport, CL_SHIM_AGENT_SERIAL);
    assert_true(c.tpm);
    static const char text[] =
        "[hypervisor]\n"
        "path = \"/opt/qemu\"\nkernel = \"/k\"\ninitrd = \"/i\"\n"
        "kernel_params = \"loglevel=7\"\nmachine = \"pc\"\nvcpus = 2\nmemory_mib = 768\n"
        "kvm = \"off\"\nextra_args = [\"-device\", \"virtio-balloon\"]\n"
        "[agent]\nchannel = \"tcp_insecure\"\nboot_timeout_s = 30\ncall_timeout_s = 9\n"
        "[tpm]\nenabled = false\nswtpm = \"/s\"\n"
        "[runtime]\nstate_dir = \"/tmp/st\"\nlog_level = \"debug\"\n";
    assert_int_equal(cl_shim_config_parse(text, strlen(text), &c, NULL), 0);
    assert_string_equal(c.qemu, "/opt/qemu");
    assert_string_equal(c.kernel, "/k");
    assert_string_equal(c.initrd, "/i");
    assert_string_equal(c.kernel_params, "loglevel=7");
    assert_string_equal(c.machine, "pc");
    assert_int_equal(c.vcpus, 2);
    assert_int_equal(c.memory_mib, 768);
    assert_int_equal(c.kvm, CL_SHIM_KVM_OFF);
    assert_int_equal(c.nextra_args, 2);
    assert_string_equal(c.extra_args[1], "virtio-balloon");
    assert_int_equal(c.transport, CL_SHIM_AGENT_TCP_INSECURE);
    assert_int_equal(c.boot_timeout_s, 30);
    assert_int_equal(c.call_timeout_s, 9);
    assert_false(c.tpm);
    assert_string_equal(c.swtpm, "/s");
    assert_string_equal(c.state_dir, "/tmp/st");
    assert_string_equal(c.log_level, "debug");
    cl_shim_config_clear(&c);
}

static void test_config_refusals(void **state)
{
    static const struct {
        const char *text;
        const char *names; /* must appear in the message */
    } cases[] = {
        {"[hypervisor]\nvcpu = 2\n", "'hypervisor.vcpu'"},
        {"[hypervisr]\n", "'hypervisr'"},
        {"hypervisor = 1\n", "'hypervisor' must be a table"},
        {"[hypervisor]\nvcpus = 0\n", "'hypervisor.vcpus' must be an integer 1..64"},
        {"[hypervisor]\nvcpus = 65\n", "'hypervisor.vcpus'"},
        {"[hypervisor]\nvcpus = \"2\"\n", "'hypervisor.vcpus'"},
        {"[hypervisor]\nmemory_mib = 64\n", "'hypervisor.memory_mib'"},
        {"[hypervisor]\nkernel = \"vmlinuz\"\n", "'hypervisor.kernel' must be an absolute path"},
        {"[hypervisor]\npath = 3\n", "'hypervisor.path' must be a string"},
        {"[hypervisor]\nkvm = \"yes\"\n", "'hypervisor.kvm'"},
        {"[hypervisor]\nkvm = true\n", "'hypervisor.kvm'"},
        {"[hypervisor]\nextra_args = \"-s\"\n", "'hypervisor.extra_args' must be an array"},
        {"[hypervisor]\nextra_args = [1]\n", "'hypervisor.extra_args' element 0"},
        {"[agent]\nchannel = \"vsock2\"\n", "'agent.channel'"},
        {"[agent]\nboot_timeout_s = 0\n", "'agent.boot_timeout_s'"},
        {"[tpm]\nenabled = \"yes\"\n", "'tpm.enabled' must be true or false"},
        {"[runtime]\nlog_level = \"trace\"\n", "'runtime.log_level'"},
        {"[runtime]\nstate_dir = \"run\"\n", "'runtime.state_dir'"},
        {"[hypervisor\n", "runtime.toml"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(cases); i++) {
        struct cl_shim_config c;
        cl_shim_config_defaults(&c);
        struct cl_err err = {0};
        int rc = cl_shim_config_parse(cases[i].text, strlen(cases[i].text), &c, &err);
        if (rc != CL_EPARSE || !strstr(err.msg, cases[i].names))
            fail_msg("case %zu: rc %d msg '%s' (want '%s')", i, rc, err.msg, cases[i].names);
        /* a refused file leaves the configuration as it was */
        assert_int_equal(c.vcpus, 1);
        assert_string_equal(c.kernel, "/usr/share/cloister/vmlinuz");
        cl_shim_config_clear(&c);
    }
    /* 65 extra args: the cap */
    char big[2048] = "[hypervisor]\nextra_args = [";
    for (int i = 0; i < 65; i++)
        strcat(big, i ? ",\"x\"" : "\"x\"");
    strcat(big, "]\n");
    struct cl_shim_config c;
    cl_shim_config_defaults(&c);
    assert_int_equal(cl_shim_config_parse(big, strlen(big), &c, NULL), CL_ELIMIT);
    cl_shim_config_clear(&c);
}

static void test_config_path_and_load(void **state)
{
    unsetenv(CL_SHIM_CONFIG_ENV);
    assert_string_equal(cl_shim_config_path(NULL), CL_SHIM_DEFAULT_CONFIG);
    setenv(CL_SHIM_CONFIG_ENV, "/env/rt.toml", 1);
    assert_string_equal(cl_shim_config_path(""), "/env/rt.toml");
    assert_string_equal(cl_shim_config_path("/opt/rt.toml"), "/opt/rt.toml");
    unsetenv(CL_SHIM_CONFIG_ENV);
    struct cl_shim_config c;
    cl_shim_config_defaults(&c);
    struct cl_err err = {0};
    assert_int_equal(cl_shim_config_load("/nonexistent/runtime.toml", &c, &err), CL_ENOTFOUND);
    assert_non_null(strstr(err.msg, "/nonexistent/runtime.toml"));
    cl_shim_config_clear(&c);
}

/* The example in deploy/ is what the docs show: it must parse, and give the defaults. */
static void test_config_deploy_example(void **state)
{
    const char *src = getenv("CLOISTER_SRC");
    if (!src)
        skip();
    char path[512];
    snprintf(path, sizeof path, "%s/deploy/containerd/runtime.toml", src);
    struct cl_shim_config c, d;
    cl_shim_config_defaults(&c);
    cl_shim_config_defaults(&d);
    struct cl_err err = {0};
    if (cl_shim_config_load(path, &c, &err) < 0)
        fail_msg("%s", err.msg);
    assert_string_equal(c.kernel, d.kernel);
    assert_int_equal(c.memory_mib, d.memory_mib);
    assert_int_equal(c.boot_timeout_s, d.boot_timeout_s);
    assert_string_equal(c.state_dir, d.state_dir);
    cl_shim_config_clear(&c);
    cl_shim_config_clear(&d);
}

/* ---- names ---- */

static void test_socket_address(void **state)
{
    CL_AUTO(cl_str) *a =
        cl_shim_socket_address(NULL, "/run/containerd/containerd.sock", "default", "abc", NULL);
    assert_non_null(a);
    /* printf '%s' /run/containerd/containerd.sock/default/abc | sha256sum */
    assert_string_equal(a, "unix:///run/containerd/s/"
                           "8cb244a719603fe00870d5ce1d8e1f1db43a654cb993d107df1f1ae23ddffa59");
    /* twin: another namespace, another address */
    CL_AUTO(cl_str) *b =
        cl_shim_socket_address(NULL, "/run/containerd/containerd.sock", "k8s.io", "abc", NULL);
    assert_non_null(b);
    assert_string_not_equal(a, b);
    struct cl_err err = {0};
    assert_null(cl_shim_socket_address(NULL, "/x", "", "abc", &err));
    assert_int_equal(err.code, CL_EINVAL);
    char longdir[120];
    memset(longdir, 'd', sizeof longdir - 1);
    longdir[0] = '/';
    longdir[sizeof longdir - 1] = 0;
    assert_null(cl_shim_socket_address(longdir, "/x", "ns", "abc", &err));
    assert_int_equal(err.code, CL_ELIMIT);

    /* printf '%s' vm/k8s.io/sb1 | sha256sum | cut -c1-24 */
    CL_AUTO(cl_str) *d = cl_shim_vm_dir("/run/cloister/shim", "k8s.io", "sb1", NULL);
    assert_string_equal(d, "/run/cloister/shim/13133ce13dc87d254f283b51");
    assert_null(cl_shim_vm_dir("relative", "k8s.io", "sb1", &err));
}

static void test_id_check(void **state)
{
    assert_int_equal(cl_shim_id_check("abc-1_2.3", "id", NULL), 0);
    static const char *const bad[] = {"", ".hidden", "a/b", "a b", "../x", "a\nb"};
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++)
        assert_int_equal(cl_shim_id_check(bad[i], "id", NULL), CL_EINVAL);
    char big[CL_SHIM_MAX_ID + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(cl_shim_id_check(big, "id", NULL), CL_EINVAL);
}

/* ---- bundles ---- */

static void test_bundle(void **state)
{
    struct cl_shim_bundle b;
    static const char lone[] =
        "{\"ociVersion\":\"1.0.2\",\"annotations\":{\"io.kubernetes.cri.image-name\":\"r/x:1\"}}";
    assert_int_equal(cl_shim_bundle_parse(lone, strlen(lone), &b, NULL), 0);
    assert_int_equal(b.ctype, CL_SHIM_STANDALONE);
    assert_string_equal(b.image, "r/x:1");
    assert_string_equal(cl_shim_bundle_group(&b, "c1"), "c1");
    cl_shim_bundle_clear(&b);

    static const char sb[] = "{\"annotations\":{\"io.kubernetes.cri.container-type\":\"sandbox\","
                             "\"io.kubernetes.cri.sandbox-id\":\"pod1\","
                             "\"io.katacontainers.config.hypervisor.cc_init_data\":\"H4sI\"}}";
    assert_int_equal(cl_shim_bundle_parse(sb, strlen(sb), &b, NULL), 0);
    assert_int_equal(b.ctype, CL_SHIM_POD_SANDBOX);
    assert_string_equal(cl_shim_bundle_group(&b, "pod1"), "pod1");
    assert_string_equal(b.initdata, "H4sI");
    cl_shim_bundle_clear(&b);

    static const char ct[] = "{\"annotations\":{\"io.kubernetes.cri.container-type\":\"container\","
                             "\"io.kubernetes.cri.sandbox-id\":\"pod1\"}}";
    assert_int_equal(cl_shim_bundle_parse(ct, strlen(ct), &b, NULL), 0);
    assert_int_equal(b.ctype, CL_SHIM_POD_CONTAINER);
    assert_string_equal(cl_shim_bundle_group(&b, "c2"), "pod1");
    cl_shim_bundle_clear(&b);

    static const struct {
        const char *text, *names;
    } bad[] = {
        {"[]", "not a JSON object"},
        {"{\"annotations\":[]}", "'annotations' must be an object"},
        {"{\"annotations\":{\"a\":1}}", "annotation 'a' must be a string"},
        {"{\"annotations\":{\"io.kubernetes.cri.container-type\":\"pod\"}}", "container-type"},
        {"{\"annotations\":{\"io.kubernetes.cri.container-type\":\"container\"}}", "sandbox-id"},
        {"{\"annotations\":{\"io.kubernetes.cri.container-type\":\"container\","
         "\"io.kubernetes.cri.sandbox-id\":\"../etc\"}}",
         "sandbox-id"},
        {"{", "config.json"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        struct cl_err err = {0};
        int rc = cl_shim_bundle_parse(bad[i].text, strlen(bad[i].text), &b, &err);
        if (rc >= 0 || !strstr(err.msg, bad[i].names))
            fail_msg("case %zu: rc %d msg '%s'", i, rc, err.msg);
    }
}

static void test_options(void **state)
{
    Runtimeoptions__V1__Options o;
    runtimeoptions__v1__options__init(&o);
    o.config_path = "/etc/cloister/other.toml";
    uint8_t buf[128];
    size_t n = runtimeoptions__v1__options__pack(&o, buf);
    cl_str *p = NULL;
    assert_int_equal(cl_shim_options_config_path("runtimeoptions.v1.Options", buf, n, &p, NULL), 0);
    assert_string_equal(p, "/etc/cloister/other.toml");
    free(p);
    /* another type: ignored */
    assert_int_equal(cl_shim_options_config_path("containerd.runc.v1.Options", buf, n, &p, NULL),
                     0);
    assert_null(p);
    /* twin: a relative path is refused, garbage is refused */
    o.config_path = "rt.toml";
    n = runtimeoptions__v1__options__pack(&o, buf);
    assert_int_equal(cl_shim_options_config_path("type.googleapis.com/runtimeoptions.v1.Options",
                                                 buf, n, &p, NULL),
                     CL_EPARSE);
    static const uint8_t junk[] = {0x12, 0x50, 'x'};
    assert_int_equal(
        cl_shim_options_config_path("runtimeoptions.v1.Options", junk, sizeof junk, &p, NULL),
        CL_EPARSE);
}

/* ---- the guest's spec ---- */

static const char oci_spec[] =
    "{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"terminal\":false,\"user\":{\"uid\":0,\"gid\":0,"
    "\"additionalGids\":[10]},\"args\":[\"sh\",\"-c\",\"echo "
    "hi\"],\"env\":[\"PATH=/bin\"],\"cwd\":\"/\","
    "\"capabilities\":{\"bounding\":[\"CAP_KILL\"]},\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\","
    "\"hard\":1024,"
    "\"soft\":1024}],\"noNewPrivileges\":true,\"apparmorProfile\":\"cri-containerd.apparmor.d\","
    "\"oomScoreAdj\":5,\"umask\":18},\"root\":{\"path\":\"rootfs\",\"readonly\":true},\"hostname\":"
    "\"h\","
    "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
    "{\"destination\":\"/etc/hosts\",\"type\":\"bind\",\"source\":\"/var/lib/x/"
    "hosts\",\"options\":[\"rbind\"]},"
    "{\"destination\":\"/etc/resolv.conf\",\"source\":\"/r\",\"options\":[\"bind\",\"ro\"]}],"
    "\"hooks\":{\"prestart\":[{\"path\":\"/usr/bin/hook\"}]},"
    "\"annotations\":{\"io.kubernetes.cri.image-name\":\"r/x\"},"
    "\"linux\":{\"uidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":1}],"
    "\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"},\"resources\":{\"memory\":{\"limit\":1048576},"
    "\"pids\":{\"limit\":32},\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]},"
    "\"cgroupsPath\":\"/default/c1\",\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\","
    "\"path\":\"/var/run/netns/x\"},{\"type\":\"ipc\",\"path\":\"/proc/1/ns/ipc\"}],"
    "\"devices\":[{\"path\":\"/dev/fuse\",\"type\":\"c\",\"major\":10,\"minor\":229}],"
    "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"read\"],"
    "\"action\":\"SCMP_ACT_ALLOW\",\"errnoRet\":1}]},\"maskedPaths\":[\"/proc/kcore\"]}}";

static void test_spec_convert(void **state)
{
    CL_AUTO(json_t) *j = json_loads(oci_spec, 0, NULL);
    assert_non_null(j);
    ProtobufCMessage *m = cl_shim_spec_from_oci(j, "c1", NULL);
    assert_non_null(m);
    Grpc__Spec *s = (Grpc__Spec *)m;
    assert_string_equal(s->version, "1.0.2-dev");
    assert_string_equal(s->root->path, "/run/kata-containers/c1/rootfs");
    assert_true(s->root->readonly);
    assert_string_equal(s->hostname, "h");
    assert_int_equal(s->process->n_args, 3);
    assert_string_equal(s->process->args[2], "echo hi");
    assert_string_equal(s->process->env[0], "PATH=/bin");
    assert_int_equal(s->process->user->n_additionalgids, 1);
    assert_int_equal(s->process->user->additionalgids[0], 10);
    assert_string_equal(s->process->capabilities->bounding[0], "CAP_KILL");
    assert_int_equal(s->process->rlimits[0]->hard, 1024);
    assert_true(s->process->nonewprivileges);
    assert_int_equal(s->process->oomscoreadj, 5);
    assert_string_equal(s->process->apparmorprofile, ""); /* host LSM profile dropped */
    /* bind mounts of host files dropped, proc kept */
    assert_int_equal(s->n_mounts, 1);
    assert_string_equal(s->mounts[0]->destination, "/proc");
    assert_null(s->hooks);
    assert_int_equal(s->n_annotations, 1);
    assert_string_equal(s->annotations[0]->key, "io.kubernetes.cri.image-name");
    assert_int_equal(s->linux->uidmappings[0]->hostid, 1000);
    assert_string_equal(s->linux->sysctl[0]->value, "1");
    assert_int_equal(s->linux->resources->memory->limit, 1048576);
    assert_int_equal(s->linux->resources->pids->limit, 32);
    assert_string_equal(s->linux->cgroupspath, "/cloister/c1");
    /* network namespace dropped, host namespace paths cleared */
    assert_int_equal(s->linux->n_namespaces, 2);
    assert_string_equal(s->linux->namespaces[1]->type, "ipc");
    assert_string_equal(s->linux->namespaces[1]->path, "");
    assert_int_equal(s->linux->n_devices, 0);
    assert_string_equal(s->linux->seccomp->syscalls[0]->action, "SCMP_ACT_ALLOW");
    assert_int_equal(s->linux->seccomp->syscalls[0]->errno_ret_case,
                     GRPC__LINUX_SYSCALL__ERRNO_RET_ERRNORET);
    assert_int_equal(s->linux->seccomp->syscalls[0]->errnoret, 1);
    /* it packs and unpacks as the agent will read it */
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n);
    protobuf_c_message_pack(m, buf);
    Grpc__Spec *back = grpc__spec__unpack(NULL, n, buf);
    assert_non_null(back);
    assert_string_equal(back->root->path, "/run/kata-containers/c1/rootfs");
    grpc__spec__free_unpacked(back, NULL);
    free(buf);
    cl_shim_spec_free(m);
}

static void test_spec_refusals(void **state)
{
    static const struct {
        const char *text, *names;
    } bad[] = {
        {"{\"process\":{\"args\":\"sh\"}}", "'process.args' must be an array"},
        {"{\"process\":{\"terminal\":1}}", "'process.terminal' must be true or false"},
        {"{\"process\":{\"user\":{\"uid\":-1}}}", "'process.user.uid' = -1 is out of range"},
        {"{\"process\":{\"user\":{\"uid\":4294967296}}}", "'process.user.uid'"},
        {"{\"process\":[]}", "'process' must be an object"},
        {"{\"mounts\":{}}", "'mounts' must be an array"},
        {"{\"mounts\":[1]}", "'mounts[0]' must be an object"},
        {"{\"annotations\":{\"a\":2}}", "'annotations' must be a string"},
        {"{\"process\":{\"rlimits\":[],\"Rlimits\":[]}}", "names the field Rlimits a second time"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++) {
        CL_AUTO(json_t) *j = json_loads(bad[i].text, 0, NULL);
        assert_non_null(j);
        struct cl_err err = {0};
        ProtobufCMessage *m = cl_shim_spec_from_oci(j, "c1", &err);
        if (m || !strstr(err.msg, bad[i].names))
            fail_msg("case %zu: %s msg '%s'", i, m ? "accepted" : "refused", err.msg);
    }
    /* an exec process: converted alone */
    CL_AUTO(json_t) *p = json_loads("{\"args\":[\"id\"],\"cwd\":\"/\",\"terminal\":true}", 0, NULL);
    ProtobufCMessage *m = cl_shim_process_from_oci(p, NULL);
    assert_non_null(m);
    assert_string_equal(((Grpc__Process *)m)->args[0], "id");
    assert_true(((Grpc__Process *)m)->terminal);
    cl_shim_spec_free(m);
    CL_AUTO(json_t) *q = json_loads("[1]", 0, NULL);
    assert_null(cl_shim_process_from_oci(q, NULL));
}

/* ---- QEMU ---- */

static bool has_arg(char **argv, const char *want)
{
    for (size_t i = 0; argv[i]; i++)
        if (strcmp(argv[i], want) == 0)
            return true;
    return false;
}

static void test_vm_argv(void **state)
{
    struct cl_shim_config c;
    cl_shim_config_defaults(&c);
    free(c.kernel_params);
    c.kernel_params = strdup("debug");
    struct cl_shim_vm_opts o = {.cfg = &c, .dir = "/run/vm1", .accel_kvm = false};
    char **argv = cl_shim_vm_argv(&o, "/run/vm1/vtpm.sock", "/run/vm1/initdata.img", 0, 0, NULL);
    assert_non_null(argv);
    assert_string_equal(argv[0], "/usr/bin/qemu-system-x86_64");
    assert_true(has_arg(argv, "tcg"));
    assert_false(has_arg(argv, "kvm"));
    assert_true(has_arg(argv, "1024M"));
    assert_true(has_arg(argv, "-nodefaults"));
    assert_true(has_arg(
        argv,
        "console=ttyS0 quiet panic=-1 cloister.net=10.0.2.15/24,10.0.2.2 cloister.agent=serial "
        "debug"));
    assert_true(has_arg(argv, "socket,id=agent,path=/run/vm1/agent.sock,server=on,wait=off"));
    assert_true(has_arg(argv, "virtserialport,bus=vser0.0,chardev=agent,name=agent.0"));
    assert_true(has_arg(argv, "emulator,id=tpm0,chardev=chrtpm"));
    assert_true(has_arg(argv, "socket,id=chrtpm,path=/run/vm1/vtpm.sock"));
    assert_true(
        has_arg(argv, "file=/run/vm1/initdata.img,if=virtio,format=raw,readonly=on,media=disk"));
    assert_true(has_arg(argv, "file:/run/vm1/console.log"));
    cl_shim_argv_free(argv);

    /* tcp_insecure: the hostfwd to the agent's port and its kernel argument; kvm; no tpm */
    c.transport = CL_SHIM_AGENT_TCP_INSECURE;
    o.accel_kvm = true;
    argv = cl_shim_vm_argv(&o, NULL, NULL, 0, 40123, NULL);
    assert_true(has_arg(argv, "user,id=net0,hostfwd=tcp:127.0.0.1:40123-:1024"));
    assert_true(has_arg(argv, "kvm"));
    assert_true(has_arg(argv, "host"));
    assert_false(has_arg(argv, "emulator,id=tpm0,chardev=chrtpm"));
    assert_false(has_arg(argv, "virtio-serial-pci,id=vser0"));
    bool tcp_cmdline = false;
    for (size_t i = 0; argv[i]; i++)
        tcp_cmdline = tcp_cmdline || strstr(argv[i], "cloister.agent=tcp:1024") != NULL;
    assert_true(tcp_cmdline);
    cl_shim_argv_free(argv);
    c.transport = CL_SHIM_AGENT_VSOCK;
    argv = cl_shim_vm_argv(&o, NULL, NULL, 77, 0, NULL);
    assert_true(has_arg(argv, "vhost-vsock-pci,guest-cid=77"));
    cl_shim_argv_free(argv);
    cl_shim_config_clear(&c);

    /* kvm = on without a usable device is refused by name; off never touches it */
    bool use = true;
    struct cl_err err = {0};
    assert_int_equal(cl_shim_vm_accel(CL_SHIM_KVM_ON, "/nonexistent/kvm", &use, &err),
                     CL_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "/nonexistent/kvm"));
    assert_int_equal(cl_shim_vm_accel(CL_SHIM_KVM_AUTO, "/nonexistent/kvm", &use, NULL), 0);
    assert_false(use);
    assert_int_equal(cl_shim_vm_accel(CL_SHIM_KVM_OFF, "/dev/null", &use, NULL), 0);
    assert_false(use);
}

/* ---- init-data ---- */

static void test_initdata_disk(void **state)
{
    static const char text[] =
        "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n\"policy.rego\" = \"package x\"\n";
    CL_AUTO(cl_str) *ann = cl_aa_initdata_annotation_encode(text, strlen(text), NULL);
    assert_non_null(ann);
    char dir[] = "/tmp/test_shim.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/initdata.img", dir);
    uint8_t digest[32], want[32];
    assert_int_equal(cl_shim_initdata_disk(ann, path, digest, NULL), 0);
    assert_int_equal(cl_digest(CL_HASH_SHA256, text, strlen(text), want, NULL), 0);
    assert_memory_equal(digest, want, 32);
    size_t n = 0, tn = 0;
    CL_AUTO(cl_bytes) *img = cl_file_read(path, 1 << 20, &n, NULL);
    assert_non_null(img);
    assert_int_equal(n % 512, 0);
    assert_memory_equal(img, "initdata", 8);
    CL_AUTO(cl_bytes) *back = cl_aa_initdata_image_decode(img, n, &tn, NULL);
    assert_non_null(back);
    assert_int_equal(tn, strlen(text));
    assert_memory_equal(back, text, tn);
    unlink(path);

    /* twins: a flipped base64 character, and a document that is not init-data */
    CL_AUTO(cl_str) *bad = strdup(ann);
    size_t mid = strlen(bad) / 2; /* inside the deflate stream: gzip's CRC catches it */
    bad[mid] = bad[mid] == 'A' ? 'B' : 'A';
    struct cl_err err = {0};
    assert_true(cl_shim_initdata_disk(bad, path, digest, &err) < 0);
    assert_non_null(strstr(err.msg, CL_SHIM_ANN_INITDATA));
    static const char notid[] = "version = \"9\"\nalgorithm = \"sha256\"\n";
    CL_AUTO(cl_str) *ann2 = cl_aa_initdata_annotation_encode(notid, strlen(notid), NULL);
    assert_true(cl_shim_initdata_disk(ann2, path, digest, &err) < 0);
    assert_int_not_equal(access(path, F_OK), 0);
    /* valid init-data whose algorithm the vTPM cannot bind: refused by name, no disk */
    static const char sha384[] = "version = \"0.1.0\"\nalgorithm = \"sha384\"\n";
    CL_AUTO(cl_str) *ann3 = cl_aa_initdata_annotation_encode(sha384, strlen(sha384), NULL);
    assert_true(cl_shim_initdata_disk(ann3, path, digest, &err) < 0);
    assert_non_null(strstr(err.msg, "sha256"));
    assert_int_not_equal(access(path, F_OK), 0);
    rmdir(dir);
}

/* `delete`'s cleanup removes only folders shaped like the shim's own, and kills nothing that
 * does not name the folder. */
static void test_cleanup_dir(void **state)
{
    char base[] = "/tmp/test_shim_vm.XXXXXX";
    assert_non_null(mkdtemp(base));
    char dir[128], f[160];
    snprintf(dir, sizeof dir, "%s/0123456789abcdef01234567", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(f, sizeof f, "%s/qemu.pid", dir);
    /* our own pid: its command line does not name the folder, so it must survive */
    char pid[32];
    snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    assert_int_equal(cl_file_write_atomic(f, pid, strlen(pid), 0600, NULL), 0);
    assert_int_equal(cl_shim_vm_cleanup_dir(dir), 0);
    assert_int_not_equal(access(dir, F_OK), 0);
    /* twins: not the shape of a VM folder: left alone */
    static const char *const bad[] = {"/", "relative/0123456789abcdef01234567", "/tmp",
                                      "/tmp/0123456789ABCDEF01234567"};
    for (size_t i = 0; i < CL_ARRAY_LEN(bad); i++)
        assert_int_equal(cl_shim_vm_cleanup_dir(bad[i]), 0);
    assert_int_equal(access("/tmp", F_OK), 0);
    snprintf(dir, sizeof dir, "%s/keepme", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(cl_shim_vm_cleanup_dir(dir), 0);
    assert_int_equal(access(dir, F_OK), 0);
    rmdir(dir);
    rmdir(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults_and_keys),
        cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_config_path_and_load),
        cmocka_unit_test(test_config_deploy_example),
        cmocka_unit_test(test_socket_address),
        cmocka_unit_test(test_id_check),
        cmocka_unit_test(test_bundle),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_spec_convert),
        cmocka_unit_test(test_spec_refusals),
        cmocka_unit_test(test_vm_argv),
        cmocka_unit_test(test_initdata_disk),
        cmocka_unit_test(test_cleanup_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
