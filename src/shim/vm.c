// SPDX-License-Identifier: Apache-2.0
/*
 * One pod's VM: a per-VM swtpm (vTPM, `-tpmdev emulator`), QEMU with the kernel and initrd
 * of runtime.toml, the agent channel (virtio-serial port "agent.0" on a unix socket, vsock,
 * or TCP through user-mode hostfwd with the _insecure switch), user-mode networking and the
 * init-data disk. Everything lives in the VM's state folder (pidfiles, sockets, console log)
 * so that `delete` can clean up after a shim that was killed.
 *
 * Lifetime: children are started through spawn.c (PR_SET_PDEATHSIG from the main thread:
 * they die with the shim); a monitor thread is the only one that reaps QEMU, and it tells
 * the owner when QEMU went away; cl_shim_vm_stop asks QEMU to stop, then kills its process
 * group, reaps swtpm and removes the folder.
 */
#include "aa/aa.h"
#include "crypto/crypto.h"
#include "shim/shim.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GUEST_NET "cloister.net=10.0.2.15/24,10.0.2.2"
#define BASE_CMDLINE "console=ttyS0 quiet panic=-1 " GUEST_NET
#define STOP_GRACE_MS 2000
#define SOCKET_WAIT_MS 5000

struct cl_shim_vm {
    struct cl_shim_vm_opts o;
    char *dir;
    pid_t qemu, swtpm;
    struct cl_shim_agent *agent;
    pthread_t monitor;
    bool have_monitor;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool exited;
    int status;
    bool reaped; /* QEMU reaped (by the monitor or cl_shim_vm_halt) */
};

/* ---- small helpers ---- */

static void msleep(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static cl_str *path_in(const char *dir, const char *name)
{
    return cl_strdupf("%s/%s", dir, name);
}

static int write_text(const char *path, const char *text, struct cl_err *err)
{
    return cl_file_write_atomic(path, text, strlen(text), 0600, err);
}

/* The last line(s) of the console log, for error messages: what the guest said last. */
static void console_tail(const char *dir, char *out, size_t cap)
{
    out[0] = 0;
    CL_AUTO(cl_str) *p = path_in(dir, "console.log");
    int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > (off_t)cap - 1 ? end - (off_t)cap + 1 : 0;
    ssize_t n = pread(fd, out, cap - 1, start);
    close(fd);
    if (n <= 0)
        return;
    /* printable text only: escape sequences (SeaBIOS clears the screen) dropped, line
     * ends shown as '|', other control bytes as spaces, runs of blanks squeezed */
    size_t o = 0;
    bool esc = false;
    for (ssize_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)out[i];
        if (esc) {
            esc = !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z'));
            continue;
        }
        if (ch == 0x1b) {
            esc = true;
            continue;
        }
        char put = ch == '\n' ? '|' : (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
        if (put == ' ' && o && (out[o - 1] == ' ' || out[o - 1] == '|'))
            continue;
        out[o++] = put;
    }
    out[o] = 0;
}

int cl_shim_vm_accel(enum cl_shim_kvm kvm, const char *dev, bool *use_kvm, struct cl_err *err)
{
    if (!dev)
        dev = "/dev/kvm";
    if (kvm == CL_SHIM_KVM_OFF) {
        *use_kvm = false;
        return 0;
    }
    int fd = open(dev, O_RDWR | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    if (kvm == CL_SHIM_KVM_ON && fd < 0)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "hypervisor.kvm = \"on\" but %s cannot be opened: %s", dev,
                          strerror(errno));
    *use_kvm = fd >= 0;
    if (!*use_kvm)
        cl_info("%s not usable: the VM runs under TCG (slow, no hardware isolation)", dev);
    return 0;
}

/* ---- QEMU's command line ---- */

struct argv_b {
    char **v;
    size_t n, cap;
    bool oom;
};

static void add(struct argv_b *b, const char *s)
{
    if (b->oom)
        return;
    if (b->n + 2 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        char **v = realloc(b->v, cap * sizeof *v);
        if (!v) {
            b->oom = true;
            return;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n] = s ? strdup(s) : NULL;
    if (!b->v[b->n]) {
        b->oom = true;
        return;
    }
    b->v[++b->n] = NULL;
}

CL_PRINTF(2, 3) static void addf(struct argv_b *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    if (!s) {
        b->oom = true;
        return;
    }
    add(b, s);
    free(s);
}

void cl_shim_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

char **cl_shim_vm_argv(const struct cl_shim_vm_opts *o, const char *tpm_sock,
                       const char *initdata_img, unsigned vsock_cid, unsigned tcp_port,
                       struct cl_err *err)
{
    const struct cl_shim_config *c = o->cfg;
    struct argv_b b = {0};
    add(&b, c->qemu);
    add(&b, "-name");
    addf(&b, "cloister,debug-threads=off");
    add(&b, "-machine");
    add(&b, c->machine);
    add(&b, "-accel");
    add(&b, o->accel_kvm ? "kvm" : "tcg");
    if (o->accel_kvm) {
        add(&b, "-cpu");
        add(&b, "host");
    }
    add(&b, "-m");
    addf(&b, "%uM", c->memory_mib);
    add(&b, "-smp");
    addf(&b, "%u", c->vcpus);
    add(&b, "-nodefaults");
    add(&b, "-no-user-config");
    add(&b, "-nographic");
    add(&b, "-no-reboot");
    add(&b, "-kernel");
    add(&b, c->kernel);
    add(&b, "-initrd");
    add(&b, c->initrd);
    const char *agent_arg = c->transport == CL_SHIM_AGENT_SERIAL  ? "cloister.agent=serial"
                            : c->transport == CL_SHIM_AGENT_VSOCK ? "cloister.agent=vsock:1024"
                                                                  : "cloister.agent=tcp:1024";
    add(&b, "-append");
    addf(&b, "%s %s%s%s", BASE_CMDLINE, agent_arg, c->kernel_params[0] ? " " : "",
         c->kernel_params);
    add(&b, "-serial");
    addf(&b, "file:%s/console.log", o->dir);

    /* the agent channel */
    if (c->transport == CL_SHIM_AGENT_SERIAL) {
        add(&b, "-device");
        add(&b, "virtio-serial-pci,id=vser0");
        add(&b, "-chardev");
        addf(&b, "socket,id=agent,path=%s/agent.sock,server=on,wait=off", o->dir);
        add(&b, "-device");
        add(&b, "virtserialport,bus=vser0.0,chardev=agent,name=agent.0");
    } else if (c->transport == CL_SHIM_AGENT_VSOCK) {
        add(&b, "-device");
        addf(&b, "vhost-vsock-pci,guest-cid=%u", vsock_cid);
    }
    add(&b, "-netdev");
    if (c->transport == CL_SHIM_AGENT_TCP_INSECURE)
        addf(&b, "user,id=net0,hostfwd=tcp:127.0.0.1:%u-:%u", tcp_port, CL_SHIM_AGENT_PORT);
    else
        add(&b, "user,id=net0");
    add(&b, "-device");
    add(&b, "virtio-net-pci,netdev=net0,romfile=");
    add(&b, "-object");
    add(&b, "rng-random,id=rng0,filename=/dev/urandom");
    add(&b, "-device");
    add(&b, "virtio-rng-pci,rng=rng0");

    if (tpm_sock) {
        add(&b, "-chardev");
        addf(&b, "socket,id=chrtpm,path=%s", tpm_sock);
        add(&b, "-tpmdev");
        add(&b, "emulator,id=tpm0,chardev=chrtpm");
        add(&b, "-device");
        add(&b, "tpm-tis,tpmdev=tpm0");
    }
    if (initdata_img) {
        add(&b, "-drive");
        addf(&b, "file=%s,if=virtio,format=raw,readonly=on,media=disk", initdata_img);
    }
    for (size_t i = 0; i < c->nextra_args; i++)
        add(&b, c->extra_args[i]);
    if (b.oom) {
        cl_shim_argv_free(b.v);
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    return b.v;
}

/* ---- init-data ---- */

int cl_shim_initdata_disk(const char *annotation, const char *path, uint8_t digest[32],
                          struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    size_t tlen = 0;
    CL_AUTO(cl_bytes) *text =
        cl_aa_initdata_annotation_decode(annotation, strlen(annotation), &tlen, err);
    if (!text)
        return cl_err_prefix(err, "annotation %s", CL_SHIM_ANN_INITDATA);
    struct cl_aa_initdata d;
    if (cl_aa_initdata_parse((const char *)text, tlen, &d, err) < 0)
        return cl_err_prefix(err, "annotation %s", CL_SHIM_ANN_INITDATA);
    enum cl_hash alg = d.alg;
    cl_aa_initdata_clear(&d);
    /* The guest's AA binds the document's digest into the vTPM's SHA-256 PCR bank, which
     * takes 32-byte digests only: another algorithm would boot a guest whose AA refuses to
     * start (no attestation at all). Refused here, before a VM boots, by name. */
    if (alg != CL_HASH_SHA256)
        return cl_err_set(err, CL_EINVAL,
                          "annotation %s: init-data algorithm is not sha256; the vTPM binds "
                          "SHA-256 digests only (algorithm = \"sha256\")",
                          CL_SHIM_ANN_INITDATA);
    if (cl_digest(CL_HASH_SHA256, text, tlen, digest, err) < 0)
        return err->code;
    size_t ilen = 0;
    CL_AUTO(cl_bytes) *img = cl_aa_initdata_image_encode(text, tlen, &ilen, err);
    if (!img)
        return cl_err_prefix(err, "init-data disk");
    size_t padded = (ilen + 511) / 512 * 512;
    cl_bytes *p = realloc(img, padded);
    if (!p)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    img = p;
    memset(img + ilen, 0, padded - ilen);
    return cl_file_write_atomic(path, img, padded, 0600, err);
}

/* ---- start / stop ---- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Reaps pid if it exited; true while it runs. Only for children no other thread reaps. */
static bool alive_unreaped(pid_t pid, int *status)
{
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
        if (status)
            *status = st;
        return false;
    }
    return r == 0;
}

static void kill_group(pid_t pid, int sig)
{
    if (pid > 0 && kill(-pid, sig) < 0)
        kill(pid, sig);
}

/* swtpm: state in <dir>/vtpm, control socket <dir>/vtpm.sock; it exits when QEMU does. */
static int start_swtpm(struct cl_shim_vm *vm, const char *log_path, struct cl_err *err)
{
    const struct cl_shim_config *c = vm->o.cfg;
    CL_AUTO(cl_str) *state = path_in(vm->dir, "vtpm");
    CL_AUTO(cl_str) *sock = path_in(vm->dir, "vtpm.sock");
    CL_AUTO(cl_str) *state_arg = cl_strdupf("dir=%s", state ? state : "");
    CL_AUTO(cl_str) *ctrl_arg = cl_strdupf("type=unixio,path=%s", sock ? sock : "");
    CL_AUTO(cl_str) *log_arg = cl_strdupf("file=%s,level=1", log_path);
    if (!state || !sock || !state_arg || !ctrl_arg || !log_arg)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    if (mkdir(state, 0700) < 0 && errno != EEXIST)
        return cl_err_stage(err, CL_EIO, "vtpm", "vtpm: mkdir %s: %s", state, strerror(errno));
    char *argv[] = {c->swtpm, "socket", "--tpm2", "--tpmstate", state_arg,
                    "--ctrl", ctrl_arg, "--log",  log_arg,      NULL};
    struct cl_shim_child ch = {.argv = argv, .out_fd = -1};
    if (cl_shim_spawn(&ch, err) < 0)
        return cl_err_prefix(err, "vtpm");
    vm->swtpm = ch.pid;
    CL_AUTO(cl_str) *pidtext = cl_strdupf("%d\n", (int)ch.pid);
    CL_AUTO(cl_str) *pidfile = path_in(vm->dir, "swtpm.pid");
    if (pidtext && pidfile && write_text(pidfile, pidtext, err) < 0)
        return err->code;
    for (unsigned waited = 0; access(sock, F_OK) != 0; waited += 20) {
        int st = 0;
        if (!alive_unreaped(vm->swtpm, &st)) {
            vm->swtpm = 0;
            return cl_err_stage(err, CL_EIO, "vtpm",
                                "vtpm: swtpm exited (status %d) before its socket appeared; see %s",
                                st, log_path);
        }
        if (waited >= SOCKET_WAIT_MS)
            return cl_err_stage(err, CL_EEXPIRED, "vtpm", "vtpm: %s did not appear within %d ms",
                                sock, SOCKET_WAIT_MS);
        msleep(20);
    }
    return 0;
}

static void *monitor_main(void *arg)
{
    struct cl_shim_vm *vm = arg;
    int st = 0;
    while (waitpid(vm->qemu, &st, 0) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&vm->lock);
    vm->exited = true;
    vm->status = st;
    pthread_cond_broadcast(&vm->cond);
    void (*on_exit)(void *, int) = vm->o.on_exit;
    pthread_mutex_unlock(&vm->lock);
    if (on_exit)
        on_exit(vm->o.ctx, st);
    return NULL;
}

static bool qemu_running(void *ctx)
{
    struct cl_shim_vm *vm = ctx;
    pthread_mutex_lock(&vm->lock);
    bool up = !vm->exited;
    pthread_mutex_unlock(&vm->lock);
    return up;
}

static unsigned free_tcp_port(struct cl_err *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    unsigned port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    if (!port)
        cl_err_set(err, CL_EIO, "no free loopback port for the agent's hostfwd");
    return port;
}

static int check_files(const struct cl_shim_config *c, struct cl_err *err)
{
    static const struct {
        const char *key;
        size_t off;
        int mode;
    } files[] = {
        {"hypervisor.kernel", offsetof(struct cl_shim_config, kernel), R_OK},
        {"hypervisor.initrd", offsetof(struct cl_shim_config, initrd), R_OK},
        {"hypervisor.path", offsetof(struct cl_shim_config, qemu), X_OK},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(files); i++) {
        const char *path = *(char *const *)((const char *)c + files[i].off);
        if (access(path, files[i].mode) != 0)
            return cl_err_stage(err, CL_ENOTFOUND, "vm-config", "%s %s: %s", files[i].key, path,
                                strerror(errno));
    }
    return 0;
}

static int write_pid(const char *dir, const char *name, pid_t pid, struct cl_err *err)
{
    CL_AUTO(cl_str) *text = cl_strdupf("%d\n", (int)pid);
    CL_AUTO(cl_str) *path = path_in(dir, name);
    if (!text || !path)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    return write_text(path, text, err);
}

/* The init-data disk, and the digest / expected PCR value beside it. *img_out new. */
static int prepare_initdata(const char *dir, const char *annotation, cl_str **img_out,
                            struct cl_err *err)
{
    uint8_t digest[32], pcr[64] = {0}, expect[32];
    CL_AUTO(cl_str) *img = path_in(dir, "initdata.img");
    CL_AUTO(cl_str) *dpath = path_in(dir, "initdata.digest");
    if (!img || !dpath)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    if (cl_shim_initdata_disk(annotation, img, digest, err) < 0)
        return err->code;
    /* PCR = SHA-256(zeros || digest): one extend from reset */
    memcpy(pcr + 32, digest, 32);
    if (cl_digest(CL_HASH_SHA256, pcr, sizeof pcr, expect, err) < 0)
        return err->code;
    CL_AUTO(cl_str) *hex = cl_hex_encode(digest, sizeof digest);
    CL_AUTO(cl_str) *pcrhex = cl_hex_encode(expect, sizeof expect);
    CL_AUTO(cl_str) *text =
        hex && pcrhex ? cl_strdupf("sha256:%s\npcr%d:%s\n", hex, CL_SHIM_INITDATA_PCR, pcrhex)
                      : NULL;
    if (!text)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    if (write_text(dpath, text, err) < 0)
        return err->code;
    cl_info("init-data sha256 %s: the guest extends it into PCR%d (expected PCR%d sha256 %s)", hex,
            CL_SHIM_INITDATA_PCR, CL_SHIM_INITDATA_PCR, pcrhex);
    *img_out = CL_STEAL(img);
    return 0;
}

/* QEMU with its output in qemu.log, its pidfile, and the monitor thread. */
static int spawn_qemu(struct cl_shim_vm *vm, char **argv, struct cl_err *err)
{
    CL_AUTO(cl_str) *log = path_in(vm->dir, "qemu.log");
    if (!log)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return cl_err_set(err, CL_EIO, "vm: %s: %s", log, strerror(errno));
    struct cl_shim_child ch = {.argv = argv, .out_fd = fd};
    int rc = cl_shim_spawn(&ch, err);
    close(fd);
    if (rc < 0)
        return cl_err_prefix(err, "vm");
    vm->qemu = ch.pid;
    if (pthread_create(&vm->monitor, NULL, monitor_main, vm) != 0)
        return cl_err_set(err, CL_EIO, "vm: cannot start the monitor thread");
    vm->have_monitor = true;
    return write_pid(vm->dir, "qemu.pid", vm->qemu, err);
}

static cl_str *agent_address(const struct cl_shim_vm *vm, unsigned cid, unsigned tcp_port)
{
    switch (vm->o.cfg->transport) {
    case CL_SHIM_AGENT_SERIAL:
        return cl_strdupf("unix://%s/agent.sock", vm->dir);
    case CL_SHIM_AGENT_VSOCK:
        return cl_strdupf("vsock://%u:%u", cid, CL_SHIM_AGENT_PORT);
    case CL_SHIM_AGENT_TCP_INSECURE:
        return cl_strdupf("tcp://127.0.0.1:%u", tcp_port);
    }
    return NULL;
}

/* Rewrites err for a boot that did not reach the agent: the reason, then the console tail. */
static void boot_failed(struct cl_shim_vm *vm, struct cl_err *err)
{
    char tail[240];
    console_tail(vm->dir, tail, sizeof tail);
    if (!qemu_running(vm)) {
        cl_err_stage(err, CL_EIO, "vm-boot",
                     "vm: QEMU exited (wait status %d) before the agent answered; console: %s",
                     vm->status, tail[0] ? tail : "(empty)");
        return;
    }
    char msg[CL_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", err->msg);
    /* Some hosts open /dev/kvm and then hang a Linux guest (nested without support): say
     * which accelerator ran, and what to set when it was KVM. */
    cl_err_stage(err, err->code ? err->code : CL_EIO, err->stage ? err->stage : "agent-ready",
                 "vm: %s%s; console: %s", msg,
                 vm->o.accel_kvm ? " (under KVM: if this host's KVM cannot run guests, set "
                                   "hypervisor.kvm = \"off\")"
                                 : "",
                 tail[0] ? tail : "(empty)");
}

struct cl_shim_vm *cl_shim_vm_start(const struct cl_shim_vm_opts *o, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    const struct cl_shim_config *c = o->cfg;
    uint64_t t0 = cl_now_mono_ns(), t_spawned = 0;
    struct cl_shim_vm *vm = calloc(1, sizeof *vm);
    if (!vm || !(vm->dir = strdup(o->dir))) {
        free(vm);
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    vm->o = *o;
    vm->o.dir = vm->dir;
    pthread_mutex_init(&vm->lock, NULL);
    pthread_cond_init(&vm->cond, NULL);
    cl_str *img = NULL, *tpm_sock = NULL, *swtpm_log = NULL, *addr = NULL;
    char **argv = NULL;
    unsigned tcp_port = 0, cid = 0;
    bool ok = false;

    if (cl_mkdir_p(vm->dir, 0700, err) < 0 || check_files(c, err) < 0)
        goto out;
    if (o->initdata && prepare_initdata(vm->dir, o->initdata, &img, err) < 0)
        goto out;
    if (c->tpm) {
        swtpm_log = path_in(vm->dir, "swtpm.log");
        tpm_sock = path_in(vm->dir, "vtpm.sock");
        if (!swtpm_log || !tpm_sock) {
            cl_err_set(err, CL_ENOMEM, "out of memory");
            goto out;
        }
        if (start_swtpm(vm, swtpm_log, err) < 0)
            goto out;
    }
    if (c->transport == CL_SHIM_AGENT_TCP_INSECURE) {
        cl_insecure("agent.channel = \"tcp_insecure\"",
                    "the agent channel is plain TCP through a loopback port forward; any local "
                    "user can reach it");
        if (!(tcp_port = free_tcp_port(err)))
            goto out;
    } else if (c->transport == CL_SHIM_AGENT_VSOCK) {
        uint32_t r = 0;
        if (cl_random(&r, sizeof r, err) < 0)
            goto out;
        cid = 3 + r % 0x7ffffff0u;
    }
    if (!(argv = cl_shim_vm_argv(&vm->o, tpm_sock, img, cid, tcp_port, err)) ||
        spawn_qemu(vm, argv, err) < 0)
        goto out;
    t_spawned = cl_now_mono_ns();
    if (!(addr = agent_address(vm, cid, tcp_port))) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        goto out;
    }
    vm->agent = cl_shim_agent_connect(addr, c->boot_timeout_s * 1000u, c->call_timeout_s * 1000u,
                                      qemu_running, vm, err);
    if (!vm->agent) {
        boot_failed(vm, err);
        goto out;
    }
    cl_info("vm %s: QEMU pid %d (%s), agent ready in %.2f s (spawn %.2f s)", vm->dir, (int)vm->qemu,
            o->accel_kvm ? "kvm" : "tcg", (double)(cl_now_mono_ns() - t0) / 1e9,
            (double)(t_spawned - t0) / 1e9);
    ok = true;
out:
    free(img);
    free(tpm_sock);
    free(swtpm_log);
    free(addr);
    cl_shim_argv_free(argv);
    if (ok)
        return vm;
    struct cl_err keep = *err;
    pthread_mutex_lock(&vm->lock);
    vm->o.on_exit = NULL; /* a VM that never started reports nothing */
    pthread_mutex_unlock(&vm->lock);
    cl_shim_vm_stop(vm);
    *err = keep;
    return NULL;
}

struct cl_shim_agent *cl_shim_vm_agent(struct cl_shim_vm *vm)
{
    return vm->agent;
}
pid_t cl_shim_vm_pid(const struct cl_shim_vm *vm)
{
    return vm->qemu;
}

int cl_shim_vm_wait(struct cl_shim_vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    while (!vm->exited)
        pthread_cond_wait(&vm->cond, &vm->lock);
    int st = vm->status;
    pthread_mutex_unlock(&vm->lock);
    return st;
}

/* Waits up to ms for the monitor to see QEMU exit; true when it did. */
static bool wait_exited(struct cl_shim_vm *vm, unsigned ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&vm->lock);
    while (!vm->exited)
        if (pthread_cond_timedwait(&vm->cond, &vm->lock, &dl) == ETIMEDOUT)
            break;
    bool done = vm->exited;
    pthread_mutex_unlock(&vm->lock);
    return done;
}

void cl_shim_vm_halt(struct cl_shim_vm *vm)
{
    if (!vm || vm->qemu <= 0)
        return;
    if (vm->have_monitor) {
        kill_group(vm->qemu, SIGTERM);
        if (!wait_exited(vm, STOP_GRACE_MS)) {
            cl_warn("vm: QEMU pid %d did not stop in %d ms; SIGKILL", (int)vm->qemu, STOP_GRACE_MS);
            kill_group(vm->qemu, SIGKILL);
        }
        pthread_join(vm->monitor, NULL);
        vm->have_monitor = false;
    } else if (!vm->reaped) {
        kill_group(vm->qemu, SIGKILL);
        while (waitpid(vm->qemu, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    vm->reaped = true;
    /* anything left in its process group (the group only: the pid itself may be reused) */
    kill(-vm->qemu, SIGKILL);
}

void cl_shim_vm_stop(struct cl_shim_vm *vm)
{
    if (!vm)
        return;
    cl_shim_vm_halt(vm);
    cl_shim_agent_free(vm->agent);
    vm->agent = NULL;
    if (vm->swtpm > 0) {
        bool reaped = false;
        for (int i = 0; i < 50 && !reaped;
             i++) { /* swtpm leaves by itself once QEMU closed its socket */
            reaped = !alive_unreaped(vm->swtpm, NULL);
            if (!reaped)
                msleep(20);
        }
        if (!reaped) {
            kill_group(vm->swtpm, SIGKILL);
            while (waitpid(vm->swtpm, NULL, 0) < 0 && errno == EINTR)
                ;
        }
    }
    rm_rf(vm->dir);
    pthread_mutex_destroy(&vm->lock);
    pthread_cond_destroy(&vm->cond);
    free(vm->dir);
    free(vm);
}

/* ---- cleanup after a crashed shim ---- */

static bool cmdline_mentions(pid_t pid, const char *dir)
{
    char p[64], buf[8192];
    snprintf(p, sizeof p, "/proc/%d/cmdline", (int)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == 0)
            buf[i] = ' ';
    buf[n] = 0;
    return strstr(buf, dir) != NULL;
}

/* What cl_shim_vm_dir makes: an absolute path whose last part is 24 lowercase hex digits. A
 * marker file naming anything else (a bundle edited by hand, "/") is never removed. */
static bool vm_dir_shaped(const char *dir)
{
    const char *base = strrchr(dir, '/');
    if (dir[0] != '/' || !base || strstr(dir, "/../") || strlen(base + 1) != 24)
        return false;
    for (const char *c = base + 1; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

int cl_shim_vm_cleanup_dir(const char *dir)
{
    if (!vm_dir_shaped(dir)) {
        cl_warn("delete: '%.200s' is not a VM folder of this shim; left alone", dir);
        return 0;
    }
    static const char *const pidfiles[] = {"qemu.pid", "swtpm.pid"};
    int killed = 0;
    for (size_t i = 0; i < CL_ARRAY_LEN(pidfiles); i++) {
        CL_AUTO(cl_str) *p = path_in(dir, pidfiles[i]);
        size_t n = 0;
        CL_AUTO(cl_bytes) *text = p ? cl_file_read(p, 32, &n, NULL) : NULL;
        if (!text)
            continue;
        char *nl = strchr((char *)text, '\n');
        if (nl)
            *nl = 0;
        uint64_t pid = 0;
        if (cl_parse_u64((char *)text, 2, 4194304, &pid, pidfiles[i], NULL) < 0)
            continue;
        /* only a process that is still this VM's: a pid may have been reused */
        if (cmdline_mentions((pid_t)pid, dir)) {
            kill((pid_t)pid, SIGKILL);
            killed++;
            cl_info("delete: killed %s %llu left by a dead shim", pidfiles[i],
                    (unsigned long long)pid);
        }
    }
    rm_rf(dir);
    return killed;
}
