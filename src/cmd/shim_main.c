// SPDX-License-Identifier: Apache-2.0
/*
 * containerd-shim-cloister-v2: the runtime v2 shim binary containerd runs for
 * `--runtime io.containerd.cloister.v2` (and CRI runtime_type "io.containerd.cloister.v2").
 *
 *   start   (cwd = the bundle) prints the ttrpc address of the shim serving this container's
 *           sandbox, starting that shim (a daemon) if this is the sandbox's first container;
 *   delete  (cwd = the bundle) cleans up after a shim containerd cannot reach any more (QEMU
 *           and swtpm left running, the VM's folder) and prints a DeleteResponse;
 *   -v      prints the version.
 *
 * containerd passes Go-style flags (-namespace ns, --address=..., -debug) before the command.
 * Nothing but the address may reach stdout/stderr of `start`: containerd reads the combined
 * output as the address. The daemon logs to the `log` FIFO containerd opened in the bundle.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cd_shim.pb-c.h"
#include "net/ttrpc.h"
#include "shim/shim.h"

#define VERSION "0.1.0"

struct args {
    const char *ns, *address, *publish_binary, *id, *bundle, *cmd;
    bool debug, version, help;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: containerd-shim-cloister-v2 [flags] start|delete\n"
            "\n"
            "containerd's runtime v2 shim for Cloister confidential containers: one shim and one\n"
            "QEMU VM per pod sandbox, containers pulled and run inside the VM by cloister-agent.\n"
            "containerd runs it; see docs/shim.md.\n"
            "\n"
            "Commands (run with the bundle as working directory):\n"
            "  start    start the sandbox's shim if needed; print its ttrpc address\n"
            "  delete   clean up after a shim that is gone; print a DeleteResponse\n"
            "\n"
            "Flags (one or two dashes, '-flag value' or '-flag=value'):\n"
            "  -namespace NS          containerd namespace\n"
            "  -address ADDR          containerd's grpc socket\n"
            "  -publish-binary PATH   containerd binary used to publish events\n"
            "  -id ID                 container id\n"
            "  -bundle DIR            bundle (delete; default: the working directory)\n"
            "  -debug                 debug logging\n"
            "  -v                     print the version\n"
            "  -h, --help             this text\n"
            "\n"
            "Runtime configuration: the ConfigPath runtime option, else $%s, else %s.\n"
            "Exit status: 0 ok, 1 failure (the reason on stderr / the log FIFO), 2 usage.\n",
            CL_SHIM_CONFIG_ENV, CL_SHIM_DEFAULT_CONFIG);
}

static int parse_args(int argc, char **argv, struct args *a)
{
    static const char *const with_value[] = {"namespace", "address", "publish-binary",
                                             "id",        "bundle",  "socket"};
    for (int i = 1; i < argc; i++) {
        char *arg = argv[i];
        if (arg[0] != '-') {
            if (a->cmd) {
                fprintf(stderr, "containerd-shim-cloister-v2: unexpected argument '%s'\n", arg);
                return -1;
            }
            a->cmd = arg;
            continue;
        }
        char *name = arg + (arg[1] == '-' ? 2 : 1);
        char *eq = strchr(name, '=');
        char namebuf[64];
        const char *val = NULL;
        if (eq) {
            size_t n = (size_t)(eq - name);
            if (n >= sizeof namebuf)
                return -1;
            memcpy(namebuf, name, n);
            namebuf[n] = 0;
            name = namebuf;
            val = eq + 1;
        }
        if (strcmp(name, "debug") == 0 || strcmp(name, "v") == 0 || strcmp(name, "version") == 0 ||
            strcmp(name, "h") == 0 || strcmp(name, "help") == 0) {
            if (name[0] == 'd')
                a->debug = !val || strcmp(val, "false") != 0;
            else if (name[0] == 'v')
                a->version = true;
            else
                a->help = true;
            continue;
        }
        bool known = false;
        for (size_t k = 0; k < CL_ARRAY_LEN(with_value); k++)
            known = known || strcmp(name, with_value[k]) == 0;
        if (!known) {
            fprintf(stderr, "containerd-shim-cloister-v2: unknown flag '%s'\n", arg);
            return -1;
        }
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "containerd-shim-cloister-v2: flag '%s' needs a value\n", arg);
                return -1;
            }
            val = argv[++i];
        }
        if (strcmp(name, "namespace") == 0)
            a->ns = val;
        else if (strcmp(name, "address") == 0)
            a->address = val;
        else if (strcmp(name, "publish-binary") == 0)
            a->publish_binary = val;
        else if (strcmp(name, "id") == 0)
            a->id = val;
        else if (strcmp(name, "bundle") == 0)
            a->bundle = val;
        /* -socket: older containerd passes it; the address is derived instead */
    }
    return 0;
}

/* True when a shim already listens on the unix address. */
static bool listening(const char *address)
{
    char path[CL_TTRPC_MAX_ADDRESS];
    if (cl_ttrpc_address_path(address, path, NULL) < 0)
        return false;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path) + 1);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

static int write_file(const char *name, const char *text)
{
    struct cl_err err = {0};
    if (cl_file_write_atomic(name, text, strlen(text), 0644, &err) < 0) {
        fprintf(stderr, "containerd-shim-cloister-v2: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* The daemon: stderr to the bundle's log FIFO, serve until Shutdown. Never returns. */
static void daemon_main(const struct args *a, const char *group, const char *address, int ready_fd)
{
    setsid();
    signal(SIGPIPE, SIG_IGN);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
    }
    /* containerd holds the FIFO open read-write, so this does not block; writes stay
     * non-blocking so that a full FIFO (containerd restarting) drops lines, not the shim */
    int logfd = open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (logfd >= 0)
        dup2(logfd, 2);
    else if (devnull >= 0)
        dup2(devnull, 2);
    cl_log_set_level(a->debug ? CL_LOG_DEBUG : CL_LOG_INFO);
    struct cl_err err = {0};
    struct cl_shim_opts o = {
        .ns = a->ns,
        .address = a->address,
        .publish_binary = a->publish_binary,
        .id = group,
        .socket = address,
    };
    struct cl_shim *s = cl_shim_new(&o, &err);
    int rc = s ? cl_shim_serve(s, ready_fd, &err) : -1;
    if (rc < 0)
        cl_error("shim of sandbox %s: %s", group, err.msg);
    /* not cl_shim_free: request threads containerd still holds may be running; the VM is
     * stopped and the events published, the process ends here */
    _exit(rc < 0 ? 1 : 0);
}

static int cmd_start(const struct args *a)
{
    if (!a->id || !a->ns || !a->address) {
        fprintf(stderr,
                "containerd-shim-cloister-v2 start: -id, -namespace and -address are required\n");
        return 2;
    }
    struct cl_err err = {0};
    struct cl_shim_bundle b = {0};
    if (cl_shim_id_check(a->id, "-id", &err) < 0 || cl_shim_bundle_load(".", &b, &err) < 0) {
        fprintf(stderr, "containerd-shim-cloister-v2 start: %s\n", err.msg);
        return 1;
    }
    CL_AUTO(cl_str) *group = strdup(cl_shim_bundle_group(&b, a->id));
    bool pod_container = b.ctype == CL_SHIM_POD_CONTAINER;
    cl_shim_bundle_clear(&b);
    CL_AUTO(cl_str) *address =
        group ? cl_shim_socket_address(NULL, a->address, a->ns, group, &err) : NULL;
    if (!address) {
        fprintf(stderr, "containerd-shim-cloister-v2 start: %s\n",
                group ? err.msg : "out of memory");
        return 1;
    }
    if (listening(address)) { /* a later container of the pod, or containerd retrying */
        if (write_file("address", address) < 0)
            return 1;
        printf("%s", address);
        return 0;
    }
    if (pod_container) {
        fprintf(stderr,
                "containerd-shim-cloister-v2 start: container %s belongs to sandbox %s, whose shim "
                "is not running\n",
                a->id, group);
        return 1;
    }
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        fprintf(stderr, "containerd-shim-cloister-v2 start: pipe: %s\n", strerror(errno));
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "containerd-shim-cloister-v2 start: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        close(pfd[0]);
        daemon_main(a, group, address, pfd[1]);
    }
    close(pfd[1]);
    /* the daemon writes one byte once it listens, or closes the pipe on failure */
    char ok = 0;
    ssize_t r;
    do
        r = read(pfd[0], &ok, 1);
    while (r < 0 && errno == EINTR);
    close(pfd[0]);
    if (r != 1) {
        fprintf(
            stderr,
            "containerd-shim-cloister-v2 start: the shim for %s did not start (see the shim log)\n",
            group);
        return 1;
    }
    CL_AUTO(cl_str) *pidtext = cl_strdupf("%d", (int)pid);
    if (!pidtext || write_file("shim.pid", pidtext) < 0 || write_file("address", address) < 0)
        return 1;
    printf("%s", address);
    return 0;
}

static int cmd_delete(const struct args *a)
{
    const char *bundle = a->bundle ? a->bundle : ".";
    /* The VM's folder, when this container owned the VM (written by Create). */
    CL_AUTO(cl_str) *marker = cl_strdupf("%s/cloister.vmdir", bundle);
    size_t n = 0;
    CL_AUTO(cl_bytes) *dir = marker ? cl_file_read(marker, 4096, &n, NULL) : NULL;
    int killed = 0;
    if (dir && n > 1 && dir[0] == '/' && strstr((char *)dir, "..") == NULL)
        killed = cl_shim_vm_cleanup_dir((char *)dir);
    /* the shim never mounts the rootfs (the guest pulls the image), but make sure */
    CL_AUTO(cl_str) *rootfs = cl_strdupf("%s/rootfs", bundle);
    if (rootfs && umount2(rootfs, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
        fprintf(stderr, "containerd-shim-cloister-v2 delete: umount %s: %s\n", rootfs,
                strerror(errno));
    if (killed)
        fprintf(stderr, "containerd-shim-cloister-v2 delete %s: %d process(es) of its VM killed\n",
                a->id ? a->id : "?", killed);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    Google__Protobuf__Timestamp ts;
    google__protobuf__timestamp__init(&ts);
    ts.seconds = now.tv_sec;
    ts.nanos = (int32_t)now.tv_nsec;
    Containerd__Task__V2__DeleteResponse out;
    containerd__task__v2__delete_response__init(&out);
    out.exit_status = 128 + SIGKILL;
    out.exited_at = &ts;
    uint8_t buf[64];
    size_t len = containerd__task__v2__delete_response__pack(&out, buf);
    return fwrite(buf, 1, len, stdout) == len ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    if (parse_args(argc, argv, &a) < 0) {
        usage(stderr);
        return 2;
    }
    if (a.help) {
        usage(stdout);
        return 0;
    }
    if (a.version) {
        printf("containerd-shim-cloister-v2 %s (Task API containerd.task.v2)\n", VERSION);
        return 0;
    }
    if (!a.cmd) {
        usage(stderr);
        return 2;
    }
    if (!a.ns)
        a.ns = getenv("NAMESPACE");
    if (strcmp(a.cmd, "start") == 0)
        return cmd_start(&a);
    if (strcmp(a.cmd, "delete") == 0)
        return cmd_delete(&a);
    fprintf(stderr, "containerd-shim-cloister-v2: unknown command '%s' (start or delete)\n", a.cmd);
    return 2;
}
