/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containerd-shim-cloister-v2: containerd's runtime v2 shim for Cloister. One shim process
 * per pod sandbox (Kata's model): the first container of a sandbox boots a QEMU VM running
 * cloister-agent; later containers of the same pod (CRI annotations) are created in that VM.
 * containerd talks to the shim over ttrpc (containerd.task.v2.Task, protos/containerd/); the
 * shim talks to the agent over ttrpc (grpc.AgentService, protos/kata/) through the VM's
 * virtio-serial port (or vsock on real hosts, or TCP through user-mode networking with the
 * `_insecure` switch). See docs/shim.md.
 *
 * Pieces: config.c (runtime.toml), bundle.c (addresses, the bundle's config.json and its
 * annotations, runtime options), spec.c (OCI config.json → the agent's protobuf Spec),
 * vm.c (QEMU + swtpm + init-data disk), agent.c (the agent client), events.c (publishing
 * task events through containerd's publish binary), task.c (the Task service), io.c (stdio
 * relay between containerd's FIFOs and the agent's stream RPCs), spawn.c (children are
 * started from the main thread so that PR_SET_PDEATHSIG outlives request threads).
 */
#ifndef CL_SHIM_H
#define CL_SHIM_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#include "base/base.h"

/* ---- limits ---- */

#define CL_SHIM_MAX_CONFIG (256u * 1024)   /* runtime.toml bytes */
#define CL_SHIM_MAX_BUNDLE_SPEC (4u << 20) /* bundle config.json bytes */
#define CL_SHIM_MAX_EXTRA_ARGS 64          /* hypervisor.extra_args elements */
#define CL_SHIM_MAX_ID 256                 /* container / exec / sandbox id bytes */
#define CL_SHIM_MAX_CONTAINERS 256         /* containers in one sandbox */
#define CL_SHIM_MAX_PROCS 1024             /* processes (init + exec) in one sandbox */
#define CL_SHIM_IO_CHUNK (32u * 1024)      /* bytes asked per ReadStdout/ReadStderr */
#define CL_SHIM_MAX_EVENTS 4096            /* queued events not yet published */

#define CL_SHIM_AGENT_PORT 1024 /* vsock / tcp port the agent listens on */
#define CL_SHIM_DEFAULT_CONFIG "/etc/cloister/runtime.toml"
#define CL_SHIM_CONFIG_ENV "CLOISTER_RUNTIME_CONFIG"
#define CL_SHIM_SOCKET_DIR "/run/containerd/s"   /* where containerd's own shims put sockets */
#define CL_SHIM_GUEST_RUN "/run/kata-containers" /* the agent's run folder in the guest */
#define CL_SHIM_INITDATA_PCR 8                   /* SHA-256 PCR the guest AA extends */

/* CRI annotations. */
#define CL_SHIM_ANN_CONTAINER_TYPE                                                                 \
    "io.kubernetes.cri.container-type" /* "sandbox" | "container"                                  \
                                        */
#define CL_SHIM_ANN_SANDBOX_ID "io.kubernetes.cri.sandbox-id"
#define CL_SHIM_ANN_IMAGE_NAME "io.kubernetes.cri.image-name"
#define CL_SHIM_ANN_INITDATA "io.katacontainers.config.hypervisor.cc_init_data"

/* ---- runtime.toml (config.c) ---- */

enum cl_shim_kvm { CL_SHIM_KVM_AUTO = 0, CL_SHIM_KVM_ON, CL_SHIM_KVM_OFF };
enum cl_shim_transport {
    CL_SHIM_AGENT_SERIAL = 0,
    CL_SHIM_AGENT_VSOCK,
    CL_SHIM_AGENT_TCP_INSECURE
};

/* Every string owned (cl_shim_config_clear). Defaults: cl_shim_config_defaults. */
struct cl_shim_config {
    /* [hypervisor] */
    char *qemu;           /* path = "/usr/bin/qemu-system-x86_64" */
    char *kernel;         /* kernel = "/usr/share/cloister/vmlinuz" */
    char *initrd;         /* initrd = "/usr/share/cloister/initrd.img" */
    char *kernel_params;  /* kernel_params: appended to the fixed command line */
    char *machine;        /* machine = "q35" */
    unsigned vcpus;       /* vcpus = 1 (1..64) */
    unsigned memory_mib;  /* memory_mib = 1024 (128..262144) */
    enum cl_shim_kvm kvm; /* kvm = "auto" | "on" | "off" */
    char **extra_args;    /* extra_args = ["-device", "..."]: appended to QEMU's argv */
    size_t nextra_args;
    /* [agent] */
    enum cl_shim_transport transport; /* channel = "serial" | "vsock" | "tcp_insecure" */
    unsigned boot_timeout_s;          /* boot_timeout_s = 60: VM start to Health.Check OK */
    unsigned call_timeout_s;          /* call_timeout_s = 60: one agent call (not Wait) */
    /* [tpm] */
    bool tpm;    /* enabled = true: a vTPM on a per-VM swtpm */
    char *swtpm; /* swtpm = "/usr/bin/swtpm" */
    /* [runtime] */
    char *state_dir; /* state_dir = "/run/cloister/shim": one folder per VM below */
    char *log_level; /* log_level = "info" */
};

void cl_shim_config_defaults(struct cl_shim_config *cfg);
void cl_shim_config_clear(struct cl_shim_config *cfg);
/* Parses runtime.toml text (borrowed) over the defaults already in cfg. Unknown tables or
 * keys, wrong types, out-of-range numbers, relative paths and unknown enum values are
 * refused with EPARSE naming the key ("runtime.toml: 'hypervisor.vcpus' must be 1..64").
 * cfg is left as it was on failure. */
CL_MUST_CHECK int cl_shim_config_parse(const char *text, size_t len, struct cl_shim_config *cfg,
                                       struct cl_err *err);
/* The file to read: option_path (the ConfigPath runtime option) if set, else
 * $CLOISTER_RUNTIME_CONFIG, else CL_SHIM_DEFAULT_CONFIG. Returns borrowed. */
const char *cl_shim_config_path(const char *option_path);
/* Reads and parses path (ENOTFOUND when absent, naming it). */
CL_MUST_CHECK int cl_shim_config_load(const char *path, struct cl_shim_config *cfg,
                                      struct cl_err *err);

/* ---- addresses, bundles, options (bundle.c) ---- */

/* containerd's grouping address for (containerd address, namespace, group id):
 * "unix://<dir>/<hex sha256(address "/" ns "/" id)>", dir = CL_SHIM_SOCKET_DIR unless
 * socket_dir is set. Returns new or NULL (EINVAL for an empty part, ELIMIT when the path
 * would not fit sun_path). */
cl_str *cl_shim_socket_address(const char *socket_dir, const char *ctrd_address, const char *ns,
                               const char *id, struct cl_err *err);
/* The per-sandbox state folder: "<state_dir>/<first 24 hex of sha256(ns "/" id)>". New. */
cl_str *cl_shim_vm_dir(const char *state_dir, const char *ns, const char *sandbox_id,
                       struct cl_err *err);
/* Checks an id from containerd (container, exec, sandbox): 1..CL_SHIM_MAX_ID bytes of
 * [A-Za-z0-9_.-], not starting with '.' (ids end up in paths). EINVAL naming `what`. */
CL_MUST_CHECK int cl_shim_id_check(const char *id, const char *what, struct cl_err *err);

/* What the shim needs from a bundle's config.json. */
enum cl_shim_ctype { CL_SHIM_STANDALONE = 0, CL_SHIM_POD_SANDBOX, CL_SHIM_POD_CONTAINER };
struct cl_shim_bundle {
    json_t *spec; /* owned: the whole config.json */
    enum cl_shim_ctype ctype;
    const char *sandbox_id; /* borrowed from spec; NULL for standalone */
    const char *image;      /* borrowed: io.kubernetes.cri.image-name, or NULL */
    const char *initdata;   /* borrowed: the cc_init_data annotation, or NULL */
};
/* Parses config.json text (borrowed): a JSON object, annotations (if any) an object of
 * strings; container-type must be "sandbox" or "container" when present, and a pod
 * container needs a sandbox-id (checked with cl_shim_id_check). EPARSE naming the field. */
CL_MUST_CHECK int cl_shim_bundle_parse(const char *text, size_t len, struct cl_shim_bundle *out,
                                       struct cl_err *err);
/* Reads <dir>/config.json and parses it. */
CL_MUST_CHECK int cl_shim_bundle_load(const char *dir, struct cl_shim_bundle *out,
                                      struct cl_err *err);
void cl_shim_bundle_clear(struct cl_shim_bundle *b);
/* The id that names the shim and VM: the sandbox id for pod containers, else own_id. */
const char *cl_shim_bundle_group(const struct cl_shim_bundle *b, const char *own_id);

/* The ConfigPath of a runtime options Any (type URL ending "runtimeoptions.v1.Options");
 * *out new or NULL when the Any is of another type or has none. EPARSE for bad bytes. */
CL_MUST_CHECK int cl_shim_options_config_path(const char *type_url, const uint8_t *value,
                                              size_t len, cl_str **out, struct cl_err *err);

/* ---- OCI spec for the guest (spec.c) ---- */

/* Builds the agent's Spec (a packed-ready Grpc__Spec, returned as ProtobufCMessage to keep
 * protoc-c headers out of this one) from config.json, rewritten for guest pull:
 * Root.Path = CL_SHIM_GUEST_RUN/<cid>/rootfs; bind mounts of host files are dropped (the
 * guest cannot see them); the network namespace path is cleared (the VM has its own);
 * hooks are dropped (they are host binaries). Free with cl_shim_spec_free. NULL on error
 * (EPARSE naming the field). */
struct ProtobufCMessage;
struct ProtobufCMessage *cl_shim_spec_from_oci(const json_t *spec, const char *cid,
                                               struct cl_err *err);
/* An OCI process (JSON, as Exec's spec Any carries it) → the agent's Process. */
struct ProtobufCMessage *cl_shim_process_from_oci(const json_t *proc, struct cl_err *err);
void cl_shim_spec_free(struct ProtobufCMessage *m);

/* ---- children (spawn.c) ---- */

/* How a child is started: argv[0] is the program; stdout/stderr to out_fd (-1: /dev/null);
 * in a new process group; PR_SET_PDEATHSIG(SIGKILL) so that it dies with the shim. */
struct cl_shim_child {
    char *const *argv;
    int out_fd;
    pid_t pid; /* set by cl_shim_spawn */
};
/* Runs the spawn loop on the calling thread (the main thread) until cl_shim_spawner_stop;
 * children started through it die with the process, not with a request thread. */
void cl_shim_spawner_run(void);
void cl_shim_spawner_stop(void);
/* Starts a child: on the spawner thread when it runs, else directly. EIO naming argv[0]. */
CL_MUST_CHECK int cl_shim_spawn(struct cl_shim_child *c, struct cl_err *err);

/* ---- VM (vm.c) ---- */

struct cl_shim_vm;
/* What one VM needs beyond the configuration. */
struct cl_shim_vm_opts {
    const struct cl_shim_config *cfg; /* borrowed for the VM's life */
    const char *dir;                  /* state folder (created 0700) */
    const char *initdata;             /* the cc_init_data annotation (base64 gzip) or NULL */
    bool accel_kvm;                   /* resolved from cfg->kvm by cl_shim_vm_accel */
    /* Called once from the monitor thread when QEMU exits (wait status), unless the VM is
     * being stopped by cl_shim_vm_start's own failure path. */
    void (*on_exit)(void *ctx, int status);
    void *ctx;
};
/* Resolves kvm = auto|on|off against /dev/kvm: auto uses KVM when /dev/kvm opens read-write,
 * on requires it (EUNSUPPORTED naming /dev/kvm otherwise), off never. */
CL_MUST_CHECK int cl_shim_vm_accel(enum cl_shim_kvm kvm, const char *dev, bool *use_kvm,
                                   struct cl_err *err);
/* QEMU's argv for opts (NULL-terminated, new; cl_shim_argv_free). The kernel command line
 * and the channel follow INTERFACES.md §5. tpm_sock/initdata_img may be NULL. */
char **cl_shim_vm_argv(const struct cl_shim_vm_opts *o, const char *tpm_sock,
                       const char *initdata_img, unsigned vsock_cid, unsigned tcp_port,
                       struct cl_err *err);
void cl_shim_argv_free(char **argv);
/* Writes the init-data disk from the annotation: the image format the agent scans for
 * ("initdata" || u64 LE length || gzip), zero-padded to 512 bytes. *digest gets the
 * SHA-256 of the TOML text (what the guest extends into PCR CL_SHIM_INITDATA_PCR). */
CL_MUST_CHECK int cl_shim_initdata_disk(const char *annotation, const char *path,
                                        uint8_t digest[32], struct cl_err *err);
/* Boots: swtpm (when enabled), QEMU, then waits for the agent (connect + Health.Check)
 * within boot_timeout_s. Returns new or NULL; on failure nothing is left running. */
struct cl_shim_vm *cl_shim_vm_start(const struct cl_shim_vm_opts *o, struct cl_err *err);
/* The agent client of a started VM (borrowed). */
struct cl_shim_agent *cl_shim_vm_agent(struct cl_shim_vm *vm);
pid_t cl_shim_vm_pid(const struct cl_shim_vm *vm);
/* Blocks until QEMU exits (a monitor thread calls it). Returns its wait status. */
int cl_shim_vm_wait(struct cl_shim_vm *vm);
/* Stops QEMU (SIGTERM to its process group, SIGKILL after 2 s) and waits until it is
 * reaped; agent calls in flight then fail. The VM's agent stays allocated (threads that
 * used it are joined before cl_shim_vm_stop). Idempotent; NULL is fine. */
void cl_shim_vm_halt(struct cl_shim_vm *vm);
/* Halts, frees the agent client (no call may still run on it), reaps swtpm, removes the
 * state folder and frees. Safe after the VM died. NULL is fine. */
void cl_shim_vm_stop(struct cl_shim_vm *vm);
/* For `delete` after a crashed shim: kills what the pidfiles in dir name (only when
 * /proc/PID/cmdline mentions dir), removes dir. A dir not shaped as cl_shim_vm_dir makes it
 * (absolute, last part 24 hex digits) is left alone. Returns how many processes were killed. */
int cl_shim_vm_cleanup_dir(const char *dir);

/* ---- agent client (agent.c) ---- */

struct cl_shim_agent;
/* Connects to address and waits until Health.Check answers SERVING: calls that get no
 * answer in time are retried on the same connection (the multiplexed client discards their
 * late answers); a connection that fails is made again; until deadline_ms (EEXPIRED, stage
 * "agent-ready") or until alive(ctx) says the VM is gone (EIO). alive may be NULL. */
struct cl_shim_agent *cl_shim_agent_connect(const char *address, unsigned deadline_ms,
                                            unsigned call_timeout_ms, bool (*alive)(void *ctx),
                                            void *ctx, struct cl_err *err);
void cl_shim_agent_free(struct cl_shim_agent *a);
/* One call to grpc.AgentService/<method>: req packed here; *resp unpacked with resp_desc
 * (NULL for Empty). timeout_ms 0 = the configured call timeout, UINT32_MAX = none (Wait).
 * A non-OK status becomes the CL_E* of INTERFACES.md §1 with "agent <method>: <message>". */
struct ProtobufCMessageDescriptor;
CL_MUST_CHECK int cl_shim_agent_call(struct cl_shim_agent *a, const char *method,
                                     const struct ProtobufCMessage *req,
                                     const struct ProtobufCMessageDescriptor *resp_desc,
                                     unsigned timeout_ms, struct ProtobufCMessage **resp,
                                     struct cl_err *err);
/* True once a transport failure was seen (the VM or the channel is gone). */
bool cl_shim_agent_dead(struct cl_shim_agent *a);

/* ---- events (events.c) ---- */

struct cl_shim_events;
/* Publishes through `<publish_binary> --address <address> publish --topic T --namespace NS`
 * with the Any on stdin, in order, from one thread. publish_binary NULL: events are only
 * logged (tests). Returns new or NULL. */
struct cl_shim_events *cl_shim_events_new(const char *publish_binary, const char *address,
                                          const char *ns, struct cl_err *err);
/* Queues topic + message (packed now). Drops (and logs) beyond CL_SHIM_MAX_EVENTS. */
void cl_shim_events_post(struct cl_shim_events *ev, const char *topic,
                         const struct ProtobufCMessage *msg);
/* Publishes what is queued and stops the publisher; later posts are dropped (logged). The
 * object stays valid for threads that still post. NULL is fine. */
void cl_shim_events_drain(struct cl_shim_events *ev);
/* Drains, then frees (no other thread may use ev any more). NULL is fine. */
void cl_shim_events_free(struct cl_shim_events *ev);

/* ---- the Task service (task.c) ---- */

struct cl_shim;
struct cl_shim_opts {
    const char *ns;             /* -namespace */
    const char *address;        /* -address: containerd's grpc socket */
    const char *publish_binary; /* -publish-binary */
    const char *id;             /* -id: the group (sandbox) id this shim serves */
    const char *socket;         /* the address this shim serves (unix://...) */
};
struct cl_shim *cl_shim_new(const struct cl_shim_opts *o, struct cl_err *err);
/* Serves the Task service on o->socket (writes one byte to ready_fd, then closes it, once
 * listening; -1 for none); returns after Shutdown (or a fatal error), with the VM stopped,
 * every child reaped and the events published. Request threads may still be running: the
 * caller exits the process (the daemon does); it does not free s. Runs the spawner on the
 * calling thread (call from main). */
int cl_shim_serve(struct cl_shim *s, int ready_fd, struct cl_err *err);
void cl_shim_free(struct cl_shim *s);

#endif
