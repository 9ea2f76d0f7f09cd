/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's container runtime: the sandbox, its containers and their processes, run with
 * runc (`runc create/start/exec/kill/delete --bundle`), stdio through pipes (or a pty received
 * over runc's --console-socket) that the agent holds, exit statuses collected by the agent
 * itself (it is the child subreaper of everything runc starts), cgroup statistics and OOM
 * kills read from the container's cgroup (v2, or v1 controllers on a hybrid host), CopyFile
 * confined to the shared folder, and guest image pull through cloister-cdh
 * (api.ImagePullService/PullImage).
 *
 * Layout under run_dir (default /run/kata-containers):
 *   <cid>/config.json, <cid>/rootfs        the bundle runc runs (rootfs left there by cdh)
 *   <cid>/runc.log                         runc's own log (quoted in errors)
 *   .runc/                                 runc --root (state of every container)
 *   shared/containers/                     where CopyFile may write (nowhere else)
 *   sandbox/                               hostname, resolv.conf of CreateSandbox
 * The cgroup of a container is /<cgroup_parent>/<cid> (cgroupfs manager).
 *
 * Everything here is thread-safe: the ttrpc server runs the requests of one connection
 * concurrently; blocking calls (ReadStdout, WaitProcess, GetOOMEvent) hold no lock while
 * they wait, and RemoveContainer / cl_agent_rt_free wake them.
 *
 * Child processes: cl_agent_rt_new makes the process a child subreaper and a reaper thread
 * collects every child of the process (waitid P_ALL). Nothing else in the same process may
 * wait for its own children (the agent daemon spawns none), and one runtime at a time lives
 * in a process (two reapers would take each other's children).
 */
#ifndef CL_AGENT_RUNTIME_H
#define CL_AGENT_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent_int.h"
#include "base/base.h"

#define CL_AGENT_RT_MAX_ID 128          /* container and exec ids, bytes */
#define CL_AGENT_MAX_CONTAINERS 256     /* containers of one sandbox */
#define CL_AGENT_MAX_EXECS 64           /* exec processes alive per container */
#define CL_AGENT_MAX_READ (1u << 20)    /* ReadStdout/ReadStderr answer, bytes */
#define CL_AGENT_MAX_WRITE (1u << 20)   /* WriteStdin data, bytes */
#define CL_AGENT_MAX_SPEC (1u << 20)    /* config.json written from the request */
#define CL_AGENT_MAX_COPY (64ull << 20) /* CopyFile file_size */
#define CL_AGENT_MAX_HOSTNAME 64
#define CL_AGENT_MAX_DNS 16
#define CL_AGENT_RUNC_TIMEOUT_MS 60000   /* one runc command */
#define CL_AGENT_PULL_TIMEOUT_MS 1800000 /* one image pull through cdh */
#define CL_AGENT_STOP_TIMEOUT_MS 10000   /* RemoveContainer: wait for the init to be reaped */
#define CL_AGENT_DEFAULT_RUN_DIR "/run/kata-containers"
#define CL_AGENT_DEFAULT_CDH "unix:///run/confidential-containers/cdh.sock"
#define CL_AGENT_DEFAULT_CGROUP_PARENT "cloister"
#define CL_AGENT_STORAGE_GUEST_PULL "image_guest_pull"

/* ---- plain requests (actions.c fills them from the protobuf messages) ---- */

/* A storage of CreateContainer / CreateSandbox (every string borrowed). */
struct cl_agent_storage {
    const char *driver; /* "image_guest_pull", "local", "ephemeral" */
    const char *source; /* image reference for image_guest_pull */
    const char *fstype;
    const char *mount_point;
};

struct cl_agent_create {
    const char *cid;
    const char *exec_id;
    const char *spec_json; /* OCI runtime-spec JSON (see cl_agent_oci_to_json) */
    size_t spec_len;
    const struct cl_agent_storage *storages;
    size_t nstorages;
};

struct cl_agent_sandbox {
    const char *hostname;
    const char *const *dns; /* "nameserver 10.0.2.3", "search x" ... */
    size_t ndns;
    const char *sandbox_id;
    const struct cl_agent_storage *storages;
    size_t nstorages;
};

struct cl_agent_copy {
    const char *path;
    int64_t file_size;
    uint32_t file_mode; /* S_IFREG|S_IFDIR|S_IFLNK + permission bits */
    uint32_t dir_mode;  /* parents created with this mode */
    int32_t uid, gid;   /* -1 = leave */
    int64_t offset;
    const uint8_t *data; /* file bytes at offset, or the symlink target */
    size_t len;
};

struct cl_agent_stats {
    uint64_t cpu_total_ns, cpu_user_ns, cpu_kernel_ns;
    uint64_t mem_usage, mem_max_usage, mem_limit, mem_failcnt, mem_cache;
    uint64_t pids_current, pids_limit;
    bool v2; /* read from a cgroup v2 folder */
};

/* cl_agent_rt_shutdown (agent_int.h) wakes every blocked call (WaitProcess, GetOOMEvent,
 * stdio) and makes blocked waits fail, so that the ttrpc server can be stopped before
 * cl_agent_rt_free. Idempotent. */

/* ---- sandbox ---- */

/* CreateSandbox: hostname (sethostname in the agent's UTS namespace), resolv.conf from dns
 * (run_dir/sandbox/resolv.conf), storages (local / ephemeral only). EEXISTS when a sandbox
 * exists. */
CL_MUST_CHECK int cl_agent_rt_sandbox_create(struct cl_agent_rt *rt,
                                             const struct cl_agent_sandbox *s, struct cl_err *err);
/* DestroySandbox: removes every container (as RemoveContainer) and forgets the sandbox. */
CL_MUST_CHECK int cl_agent_rt_sandbox_destroy(struct cl_agent_rt *rt, struct cl_err *err);

/* ---- containers ---- */

/* CreateContainer: checks the ids, pulls the image through cdh for an image_guest_pull
 * storage (bundle run_dir/<cid>, rootfs at <bundle>/rootfs), writes config.json from the spec
 * (root, cgroupsPath and rlimits rewritten, host hooks and namespace paths dropped) and runs
 * `runc create`. The init process waits for StartContainer. On failure nothing stays: no
 * runc state, no bundle. EEXISTS for a known id, EINVAL for a bad id or spec. */
CL_MUST_CHECK int cl_agent_rt_create(struct cl_agent_rt *rt, const struct cl_agent_create *c,
                                     struct cl_err *err);
/* StartContainer: `runc start`. */
CL_MUST_CHECK int cl_agent_rt_start(struct cl_agent_rt *rt, const char *cid, struct cl_err *err);
/* RemoveContainer: `runc delete --force`, waits for the init to be reaped (timeout_s, 0 →
 * CL_AGENT_STOP_TIMEOUT_MS), wakes every blocked reader, unmounts and removes the bundle. */
CL_MUST_CHECK int cl_agent_rt_remove(struct cl_agent_rt *rt, const char *cid, unsigned timeout_s,
                                     struct cl_err *err);
/* UpdateContainer: `runc update --resources <file>` with a runtime-spec linux.resources object
 * (JSON). PauseContainer / ResumeContainer: `runc pause` / `runc resume` (the freezer). */
CL_MUST_CHECK int cl_agent_rt_update(struct cl_agent_rt *rt, const char *cid,
                                     const char *resources_json, size_t len, struct cl_err *err);
CL_MUST_CHECK int cl_agent_rt_pause(struct cl_agent_rt *rt, const char *cid, bool pause,
                                    struct cl_err *err);
/* ExecProcess: process_json is the OCI "process" object (JSON). `runc exec --detach`. */
CL_MUST_CHECK int cl_agent_rt_exec(struct cl_agent_rt *rt, const char *cid, const char *exec_id,
                                   const char *process_json, size_t len, struct cl_err *err);
/* SignalProcess: kill(2) on the process (exec_id "" = the init) unless it was reaped. */
CL_MUST_CHECK int cl_agent_rt_signal(struct cl_agent_rt *rt, const char *cid, const char *exec_id,
                                     int sig, struct cl_err *err);
/* WaitProcess: blocks until the process exits; *status = exit code, or 128 + signal. An exec
 * process is forgotten once waited for. */
CL_MUST_CHECK int cl_agent_rt_wait(struct cl_agent_rt *rt, const char *cid, const char *exec_id,
                                   int *status, struct cl_err *err);

/* ---- stdio ---- */

/* ReadStdout / ReadStderr: up to cap bytes (≤ CL_AGENT_MAX_READ), blocking until some data
 * arrive; at end of stream EIO "end of stream" (the shim stops copying). *out new. */
CL_MUST_CHECK int cl_agent_rt_read(struct cl_agent_rt *rt, const char *cid, const char *exec_id,
                                   bool stderr_, size_t cap, cl_bytes **out, size_t *len,
                                   struct cl_err *err);
/* WriteStdin: writes all of data (blocking while the pipe is full); *written = len. */
CL_MUST_CHECK int cl_agent_rt_write(struct cl_agent_rt *rt, const char *cid, const char *exec_id,
                                    const uint8_t *data, size_t len, size_t *written,
                                    struct cl_err *err);
/* CloseStdin: closes the stdin pipe (a terminal gets ^D). */
CL_MUST_CHECK int cl_agent_rt_close_stdin(struct cl_agent_rt *rt, const char *cid,
                                          const char *exec_id, struct cl_err *err);
/* TtyWinResize: TIOCSWINSZ on the pty; EINVAL when the process has no terminal. */
CL_MUST_CHECK int cl_agent_rt_resize(struct cl_agent_rt *rt, const char *cid, const char *exec_id,
                                     unsigned rows, unsigned cols, struct cl_err *err);

/* ---- cgroups ---- */

CL_MUST_CHECK int cl_agent_rt_stats(struct cl_agent_rt *rt, const char *cid,
                                    struct cl_agent_stats *out, struct cl_err *err);
/* GetOOMEvent: blocks until a container's cgroup counts a new OOM kill; *cid new. */
CL_MUST_CHECK int cl_agent_rt_oom_wait(struct cl_agent_rt *rt, cl_str **cid, struct cl_err *err);

/* ---- files ---- */

/* CopyFile, confined to run_dir/shared/containers: the path must be absolute, lie under that
 * folder, and have no "." or ".." part; it is then opened beneath the folder
 * (openat2 RESOLVE_BENEATH: symlinks may not lead out). Directories (S_IFDIR) are created,
 * symlinks (S_IFLNK) made with data as the target, regular files written at offset. EDENIED
 * for a path outside the folder. */
CL_MUST_CHECK int cl_agent_rt_copy_file(struct cl_agent_rt *rt, const struct cl_agent_copy *c,
                                        struct cl_err *err);
/* The confinement check alone (no file system access), for tests. */
CL_MUST_CHECK int cl_agent_copy_path_check(const char *root, const char *path, const char **rel,
                                           struct cl_err *err);

/* ---- network (netif.c, rtnetlink) ---- */

#define CL_AGENT_MAX_ADDRS 16   /* addresses per interface */
#define CL_AGENT_MAX_IFACES 64  /* interfaces listed */
#define CL_AGENT_MAX_ROUTES 256 /* routes listed or set */

struct cl_agent_ipaddr {
    int family; /* 4 or 6 */
    char address[46];
    unsigned prefix;
};

struct cl_agent_iface {
    int index;
    char name[16];
    char hwaddr[18]; /* "aa:bb:cc:dd:ee:ff" */
    uint32_t mtu;
    uint32_t flags; /* IFF_* */
    struct cl_agent_ipaddr addrs[CL_AGENT_MAX_ADDRS];
    size_t naddrs;
};

struct cl_agent_route {
    char dest[64]; /* "a.b.c.d/len"; "" = default */
    char gateway[46];
    char device[16];
    char source[46];
    int scope;
    int family; /* 4 or 6 */
};

struct cl_agent_netstat {
    char name[16];
    uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
    uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
};
/* Counters of the sandbox's interfaces but lo, from /proc/net/dev (*out new array, at most
 * CL_AGENT_MAX_IFACES). */
CL_MUST_CHECK int cl_agent_net_stats(struct cl_agent_netstat **out, size_t *n, struct cl_err *err);
/* Links with their addresses (*out new array). */
CL_MUST_CHECK int cl_agent_net_list(struct cl_agent_iface **out, size_t *n, struct cl_err *err);
/* UpdateInterface: the link whose MAC is want->hwaddr (else named want->name) gets want's
 * name and MTU (0 = keep), its addresses replaced by want's, and is brought up; *got = the
 * result. ENOTFOUND when no link matches. */
CL_MUST_CHECK int cl_agent_net_update(const struct cl_agent_iface *want, struct cl_agent_iface *got,
                                      struct cl_err *err);
/* The main table's unicast routes (*out new array). */
CL_MUST_CHECK int cl_agent_net_routes(struct cl_agent_route **out, size_t *n, struct cl_err *err);
/* UpdateRoutes: replaces the main table's unicast routes with want (link routes first). */
CL_MUST_CHECK int cl_agent_net_set_routes(const struct cl_agent_route *want, size_t n,
                                          struct cl_err *err);

/* ---- OCI spec ---- */

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
/* A grpc.Spec or grpc.Process (oci.proto) as runtime-spec JSON (new): capitalised proto names
 * become the spec's names (Version → ociVersion, UIDMappings → uidMappings, OOMScoreAdj →
 * oomScoreAdj, Pagesize → pageSize, errnoret → errnoRet), default values are left out,
 * Solaris and Windows dropped, maps become objects. */
json_t *cl_agent_oci_to_json(const ProtobufCMessage *m, struct cl_err *err);
/* Checks a runtime-spec process object (args non-empty), caps its rlimits at the agent's own
 * hard limits, and drops an AppArmor profile / SELinux label this kernel does not enforce. */
CL_MUST_CHECK int cl_agent_process_fix(json_t *proc, struct cl_err *err);
/* A CreateSandbox / CreateContainer storage other than image_guest_pull: local (a folder)
 * or ephemeral (tmpfs), mount_point beneath run_dir; EUNSUPPORTED for other drivers. */
CL_MUST_CHECK int cl_agent_storage_setup(struct cl_agent_rt *rt, const struct cl_agent_storage *s,
                                         struct cl_err *err);

/* ---- helpers shared by the runtime's files ---- */

/* `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most CL_AGENT_RT_MAX_ID bytes; EINVAL naming `what`. */
CL_MUST_CHECK int cl_agent_id_check(const char *id, const char *what, struct cl_err *err);
/* The run folder (borrowed). */
const char *cl_agent_rt_run_dir(const struct cl_agent_rt *rt);

#endif
