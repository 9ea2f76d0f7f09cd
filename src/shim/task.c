// SPDX-License-Identifier: Apache-2.0
/*
 * The containerd.task.v2.Task service of one sandbox shim. containerd calls it on the socket
 * `start` printed; requests run concurrently (a Wait blocks for the life of a process while
 * Kill, Exec and State go on). The first Create boots the VM (vm.c) and creates the sandbox in
 * the agent; each Create of a real container sends the agent a guest-pull storage and the
 * rewritten OCI spec (INTERFACES.md §4); the pod's sandbox task itself is the VM (no guest
 * process: it runs until killed or until the VM dies). Handlers are listed in one table at the
 * end; every refusal names the container and the step.
 */
#include "net/ttrpc.h"
#include "shim/shim_int.h"

#include <errno.h>
#include <protobuf-c/protobuf-c.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.pb-c.h"
#include "cd_events.pb-c.h"
#include "cd_shim.pb-c.h"
#include "json/json.h"

#define TASK_SERVICE "containerd.task.v2.Task"
#define GUEST_PULL_DRIVER "image_guest_pull"
#define SHIM_VERSION "cloister-shim 0.1.0"

/* ---- lookup ---- */

static struct cl_shim_container *find_ct(struct cl_shim *s, const char *id)
{
    for (struct cl_shim_container *c = s->containers; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    return NULL;
}

static struct cl_shim_proc *find_proc(struct cl_shim *s, const char *id, const char *exec_id,
                                      struct cl_err *err)
{
    struct cl_shim_container *c = find_ct(s, id);
    if (!c) {
        cl_err_set(err, CL_ENOTFOUND, "container %.128s: not found in this shim", id);
        return NULL;
    }
    if (!exec_id || !*exec_id)
        return c->init;
    for (struct cl_shim_proc *p = c->execs; p; p = p->next)
        if (strcmp(p->exec_id, exec_id) == 0)
            return p;
    cl_err_set(err, CL_ENOTFOUND, "container %.128s: exec %.128s not found", id, exec_id);
    return NULL;
}

struct cl_shim_agent *cl_shim_agent_get(struct cl_shim *s)
{
    pthread_mutex_lock(&s->lock);
    struct cl_shim_agent *ag = s->vm && !atomic_load(&s->vm_dead) ? cl_shim_vm_agent(s->vm) : NULL;
    if (ag)
        s->agent_refs++;
    pthread_mutex_unlock(&s->lock);
    return ag;
}

void cl_shim_agent_put(struct cl_shim *s, struct cl_shim_agent *ag)
{
    if (!ag)
        return;
    pthread_mutex_lock(&s->lock);
    s->agent_refs--;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static uint32_t task_pid(struct cl_shim *s)
{
    /* Kata's convention: the task's pid is the hypervisor's (a host pid containerd can see) */
    return (uint32_t)atomic_load(&s->vm_pid);
}

static void proc_free(struct cl_shim_proc *p)
{
    if (!p)
        return;
    cl_shim_spec_free(p->process);
    free(p->exec_id);
    free(p->stdin_path);
    free(p->stdout_path);
    free(p->stderr_path);
    pthread_mutex_destroy(&p->join_lock);
    free(p);
}

static struct cl_shim_proc *proc_new(struct cl_shim_container *ct, const char *exec_id,
                                     const char *in, const char *out, const char *errp,
                                     bool terminal)
{
    struct cl_shim_proc *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->ct = ct;
    p->exec_id = strdup(exec_id ? exec_id : "");
    p->stdin_path = strdup(in ? in : "");
    p->stdout_path = strdup(out ? out : "");
    p->stderr_path = strdup(errp ? errp : "");
    p->terminal = terminal;
    p->state = PROC_CREATED;
    pthread_mutex_init(&p->join_lock, NULL);
    if (!p->exec_id || !p->stdin_path || !p->stdout_path || !p->stderr_path) {
        proc_free(p);
        return NULL;
    }
    return p;
}

static void ct_free(struct cl_shim_container *c)
{
    if (!c)
        return;
    proc_free(c->init);
    while (c->execs) {
        struct cl_shim_proc *n = c->execs->next;
        proc_free(c->execs);
        c->execs = n;
    }
    free(c->id);
    free(c->bundle);
    free(c);
}

/* ---- packing helpers ---- */

#define UNPACK(type, fn, name)                                                                     \
    type *name = fn##__unpack(NULL, req_len, req);                                                 \
    if (!name)                                                                                     \
        return cl_err_set(err, CL_EPARSE, "%s: request is not a " #type, __func__ + 5);

static void ts_of(const struct cl_shim_proc *p, Google__Protobuf__Timestamp *ts)
{
    ts->seconds = p->exited_sec;
    ts->nanos = p->exited_nsec;
}

/* ---- the VM ---- */

static void vm_exited(void *ctx, int status)
{
    struct cl_shim *s = ctx;
    atomic_store(&s->vm_dead, true);
    /* The pod's sandbox tasks have no waiter of their own: they end with the VM. */
    struct cl_shim_proc *ended[CL_SHIM_MAX_CONTAINERS];
    size_t n = 0;
    pthread_mutex_lock(&s->lock);
    s->vm_status = status;
    if (!s->vm_stopping)
        cl_error(
            "the sandbox VM exited (wait status %d): every process in it is reported as exited",
            status);
    for (struct cl_shim_container *c = s->containers; c; c = c->next)
        if (c->virtual_sandbox && c->init && n < CL_ARRAY_LEN(ended) &&
            cl_shim_proc_exited_locked(s, c->init, 255))
            ended[n++] = c->init;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++)
        cl_shim_publish_exit(s, ended[i]);
}

/* GetOOMEvent blocks in the agent until a container of the sandbox hits its memory limit;
 * each answer becomes /tasks/oom. Ends when the agent cannot answer (VM gone). */
static void *oom_main(void *arg)
{
    struct cl_shim *s = arg;
    for (;;) {
        struct cl_shim_agent *ag = cl_shim_agent_get(s);
        if (!ag)
            break;
        Grpc__GetOOMEventRequest req;
        grpc__get_oomevent_request__init(&req);
        ProtobufCMessage *resp = NULL;
        struct cl_err e = {0};
        int rc = cl_shim_agent_call(ag, "GetOOMEvent", &req.base, &grpc__oomevent__descriptor,
                                    UINT32_MAX, &resp, &e);
        cl_shim_agent_put(s, ag);
        if (rc < 0) {
            cl_debug("GetOOMEvent: %s; no more OOM events", e.msg);
            break;
        }
        Containerd__Events__TaskOOM ev;
        containerd__events__task_oom__init(&ev);
        ev.container_id = ((Grpc__OOMEvent *)resp)->container_id;
        cl_warn("container %s: out of memory in the guest", ev.container_id);
        cl_shim_events_post(s->events, "/tasks/oom", &ev.base);
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    return NULL;
}

/* Boots the VM for the first container (boot_lock held by the caller). */
static int boot_vm(struct cl_shim *s, const Containerd__Task__V2__CreateTaskRequest *r,
                   const struct cl_shim_bundle *b, struct cl_err *err)
{
    CL_AUTO(cl_str) *opt_path = NULL;
    if (r->options && cl_shim_options_config_path(r->options->type_url, r->options->value.data,
                                                  r->options->value.len, &opt_path, err) < 0)
        return err->code;
    const char *path = cl_shim_config_path(opt_path);
    if (s->have_cfg) /* an earlier boot failed */
        cl_shim_config_clear(&s->cfg);
    cl_shim_config_defaults(&s->cfg);
    s->have_cfg = true;
    if (cl_shim_config_load(path, &s->cfg, err) < 0)
        return err->code;
    /* runtime.toml's log_level, unless containerd asked for -debug */
    static const struct {
        const char *name;
        enum cl_log_level level;
    } levels[] = {{"error", CL_LOG_ERROR},
                  {"warn", CL_LOG_WARN},
                  {"info", CL_LOG_INFO},
                  {"debug", CL_LOG_DEBUG}};
    for (size_t i = 0; i < CL_ARRAY_LEN(levels); i++)
        if (strcmp(s->cfg.log_level, levels[i].name) == 0 && cl_log_get_level() != CL_LOG_DEBUG)
            cl_log_set_level(levels[i].level);
    bool use_kvm = false;
    if (cl_shim_vm_accel(s->cfg.kvm, NULL, &use_kvm, err) < 0)
        return err->code;
    s->vm_dir = cl_shim_vm_dir(s->cfg.state_dir, s->ns, s->group_id, err);
    if (!s->vm_dir)
        return err->code;
    /* `delete` finds the VM's folder from the bundle after a crash */
    CL_AUTO(cl_str) *marker = cl_strdupf("%s/cloister.vmdir", r->bundle);
    if (!marker || cl_file_write_atomic(marker, s->vm_dir, strlen(s->vm_dir), 0600, err) < 0)
        return err->code;
    struct cl_shim_vm_opts o = {
        .cfg = &s->cfg,
        .dir = s->vm_dir,
        .initdata = b->initdata,
        .accel_kvm = use_kvm,
        .on_exit = vm_exited,
        .ctx = s,
    };
    cl_info("booting the VM of sandbox %s (config %s, %s)", s->group_id, path,
            use_kvm ? "kvm" : "tcg");
    struct cl_shim_vm *vm = cl_shim_vm_start(&o, err);
    if (!vm)
        return err->code;
    const char *hostname = json_string_value(json_object_get(b->spec, "hostname"));
    Grpc__CreateSandboxRequest cs;
    grpc__create_sandbox_request__init(&cs);
    cs.hostname = (char *)(uintptr_t)(hostname ? hostname : "");
    cs.sandbox_id = s->group_id;
    if (cl_shim_agent_call(cl_shim_vm_agent(vm), "CreateSandbox", &cs.base, NULL, 0, NULL, err) <
        0) {
        cl_shim_vm_stop(vm);
        return err->code;
    }
    pthread_mutex_lock(&s->lock);
    s->vm = vm;
    s->vm_stopping = false;
    atomic_store(&s->vm_dead, false); /* a pod may boot again after its VM was stopped */
    atomic_store(&s->vm_pid, (int)cl_shim_vm_pid(vm));
    pthread_mutex_unlock(&s->lock);
    s->have_oom = pthread_create(&s->oom_thread, NULL, oom_main, s) == 0;
    return 0;
}

/* ---- Create ---- */

static int need_image(const char *cid, const struct cl_shim_bundle *b, struct cl_err *err)
{
    if (b->image && *b->image)
        return 0;
    return cl_err_stage(err, CL_EINVAL, "create",
                        "container %s: the annotation %s names no image; the guest pulls the image "
                        "itself (CRI sets it; with ctr pass --annotation %s=REF)",
                        cid, CL_SHIM_ANN_IMAGE_NAME, CL_SHIM_ANN_IMAGE_NAME);
}

static int guest_create(struct cl_shim *s, const char *cid, const struct cl_shim_bundle *b,
                        struct cl_err *err)
{
    if (need_image(cid, b, err) < 0)
        return err->code;
    struct ProtobufCMessage *spec = cl_shim_spec_from_oci(b->spec, cid, err);
    if (!spec)
        return cl_err_prefix(err, "container %s", cid);
    CL_AUTO(cl_str) *mnt = cl_strdupf("%s/%s/rootfs", CL_SHIM_GUEST_RUN, cid);
    json_t *anns = json_object_get(b->spec, "annotations");
    json_t *meta = anns ? json_pack("{s:O}", "metadata", anns) : json_pack("{s:{}}", "metadata");
    CL_AUTO(cl_str) *meta_txt = meta ? cl_json_compact(meta) : NULL;
    json_decref(meta);
    CL_AUTO(cl_str) *opt = meta_txt ? cl_strdupf("image_guest_pull=%s", meta_txt) : NULL;
    if (!mnt || !opt) {
        cl_shim_spec_free(spec);
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    }
    Grpc__Storage st;
    grpc__storage__init(&st);
    st.driver = GUEST_PULL_DRIVER;
    st.source = (char *)(uintptr_t)b->image;
    st.fstype = "overlay";
    st.mount_point = mnt;
    char *opts[] = {opt};
    st.driver_options = opts;
    st.n_driver_options = 1;
    Grpc__Storage *sts[] = {&st};
    Grpc__CreateContainerRequest cc;
    grpc__create_container_request__init(&cc);
    cc.container_id = (char *)(uintptr_t)cid;
    cc.exec_id = (char *)(uintptr_t)cid;
    cc.storages = sts;
    cc.n_storages = 1;
    cc.oci = (Grpc__Spec *)spec;
    uint64_t t0 = cl_now_mono_ns();
    struct cl_shim_agent *ag = cl_shim_agent_get(s);
    int rc = ag ? cl_shim_agent_call(ag, "CreateContainer", &cc.base, NULL, 0, NULL, err)
                : cl_err_stage(err, CL_EIO, "create", "the sandbox VM is gone");
    cl_shim_agent_put(s, ag);
    cl_shim_spec_free(spec);
    if (rc < 0)
        return cl_err_prefix(err, "container %s", cid);
    cl_info("container %s created in the guest (image %s pulled and unpacked there) in %.2f s", cid,
            b->image, (double)(cl_now_mono_ns() - t0) / 1e9);
    return 0;
}

static int h_create(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp,
                    size_t *resp_len, struct cl_err *err)
{
    struct cl_shim *s = ctx;
    UNPACK(Containerd__Task__V2__CreateTaskRequest, containerd__task__v2__create_task_request, r);
    struct cl_shim_bundle b = {0};
    struct cl_shim_container *ct = NULL;
    int rc = 0;
    if ((rc = cl_shim_id_check(r->id, "container id", err)) < 0)
        goto out;
    if (r->checkpoint && *r->checkpoint) {
        rc = cl_err_set(err, CL_EUNSUPPORTED,
                        "container %s: restoring from a checkpoint is not supported", r->id);
        goto out;
    }
    if ((rc = cl_shim_bundle_load(r->bundle, &b, err)) < 0)
        goto out;
    const char *group = cl_shim_bundle_group(&b, r->id);
    if (strcmp(group, s->group_id) != 0) {
        rc = cl_err_set(err, CL_EINVAL, "container %s belongs to sandbox %s, not to this shim's %s",
                        r->id, group, s->group_id);
        goto out;
    }
    ct = calloc(1, sizeof *ct);
    if (!ct || !(ct->id = strdup(r->id)) || !(ct->bundle = strdup(r->bundle)) ||
        !(ct->init = proc_new(ct, "", r->stdin, r->stdout, r->stderr, r->terminal))) {
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
        goto out;
    }
    ct->virtual_sandbox = b.ctype == CL_SHIM_POD_SANDBOX;

    pthread_mutex_lock(&s->lock);
    bool dup = find_ct(s, r->id) != NULL, full = s->ncontainers >= CL_SHIM_MAX_CONTAINERS;
    pthread_mutex_unlock(&s->lock);
    if (dup || full) {
        rc = dup ? cl_err_set(err, CL_EEXISTS, "container %s already exists", r->id)
                 : cl_err_set(err, CL_ELIMIT, "sandbox %s already holds %d containers", s->group_id,
                              CL_SHIM_MAX_CONTAINERS);
        goto out;
    }

    /* refuse what cannot work before paying for a VM boot */
    if (!ct->virtual_sandbox && (rc = need_image(r->id, &b, err)) < 0)
        goto out;
    pthread_mutex_lock(&s->boot_lock);
    if (!s->vm)
        rc = boot_vm(s, r, &b, err);
    pthread_mutex_unlock(&s->boot_lock);
    if (rc < 0)
        goto out;
    if (atomic_load(&s->vm_dead)) {
        rc = cl_err_stage(err, CL_EIO, "create",
                          "container %s: the sandbox VM is gone (wait status %d)", r->id,
                          s->vm_status);
        goto out;
    }
    if (!ct->virtual_sandbox && (rc = guest_create(s, r->id, &b, err)) < 0)
        goto out;

    pthread_mutex_lock(&s->lock);
    ct->next = s->containers;
    s->containers = ct;
    s->ncontainers++;
    pthread_mutex_unlock(&s->lock);

    Containerd__Events__TaskCreate ev;
    containerd__events__task_create__init(&ev);
    Containerd__Events__TaskIO io;
    containerd__events__task_io__init(&io);
    io.stdin = r->stdin;
    io.stdout = r->stdout;
    io.stderr = r->stderr;
    io.terminal = r->terminal;
    ev.container_id = r->id;
    ev.bundle = r->bundle;
    ev.rootfs = (Containerd__Types__Mount **)r->rootfs;
    ev.n_rootfs = r->n_rootfs;
    ev.io = &io;
    ev.pid = task_pid(s);
    cl_shim_events_post(s->events, "/tasks/create", &ev.base);
    ct = NULL;

    Containerd__Task__V2__CreateTaskResponse out;
    containerd__task__v2__create_task_response__init(&out);
    out.pid = task_pid(s);
    rc = cl_ttrpc_pack(&out.base, resp, resp_len, err);
out:
    if (rc < 0)
        cl_warn("Create %s => %s: %s", r->id, cl_err_name(rc), err->msg);
    ct_free(ct);
    cl_shim_bundle_clear(&b);
    containerd__task__v2__create_task_request__free_unpacked(r, NULL);
    return rc;
}

/* ---- Start ---- */

static int start_proc_on(struct cl_shim *s, struct cl_shim_agent *ag, struct cl_shim_proc *p,
                         struct cl_err *err)
{
    if (!ag)
        return cl_err_stage(err, CL_EIO, "start", "container %s: the sandbox VM is gone",
                            p->ct->id);
    if (!p->exec_id[0]) {
        Grpc__StartContainerRequest sc;
        grpc__start_container_request__init(&sc);
        sc.container_id = p->ct->id;
        if (cl_shim_agent_call(ag, "StartContainer", &sc.base, NULL, 0, NULL, err) < 0)
            return cl_err_prefix(err, "container %s", p->ct->id);
    } else {
        Grpc__ExecProcessRequest ep;
        grpc__exec_process_request__init(&ep);
        ep.container_id = p->ct->id;
        ep.exec_id = p->exec_id;
        ep.process = (Grpc__Process *)p->process;
        if (cl_shim_agent_call(ag, "ExecProcess", &ep.base, NULL, 0, NULL, err) < 0)
            return cl_err_prefix(err, "container %s exec %s", p->ct->id, p->exec_id);
    }
    return cl_shim_io_start(s, p, err);
}

static int start_proc(struct cl_shim *s, struct cl_shim_proc *p, struct cl_err *err)
{
    struct cl_shim_agent *ag = cl_shim_agent_get(s);
    int rc = start_proc_on(s, ag, p, err);
    cl_shim_agent_put(s, ag);
    return rc;
}

static int h_start(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp, size_t *resp_len,
                   struct cl_err *err)
{
    struct cl_shim *s = ctx;
    UNPACK(Containerd__Task__V2__StartRequest, containerd__task__v2__start_request, r);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    struct cl_shim_proc *p = find_proc(s, r->id, r->exec_id, err);
    if (!p)
        rc = err->code;
    else if (p->state != PROC_CREATED)
        rc = cl_err_set(err, CL_EINVAL, "container %s: process %s was already started", r->id,
                        r->exec_id[0] ? r->exec_id : "init");
    else
        p->state = PROC_RUNNING; /* claimed: a second Start is refused */
    pthread_mutex_unlock(&s->lock);
    if (rc < 0)
        goto out;
    if (!p->ct->virtual_sandbox && (rc = start_proc(s, p, err)) < 0) {
        pthread_mutex_lock(&s->lock);
        if (p->state == PROC_RUNNING)
            p->state = PROC_CREATED;
        pthread_mutex_unlock(&s->lock);
        goto out;
    }
    if (!p->exec_id[0]) {
        Containerd__Events__TaskStart ev;
        containerd__events__task_start__init(&ev);
        ev.container_id = r->id;
        ev.pid = task_pid(s);
        cl_shim_events_post(s->events, "/tasks/start", &ev.base);
    } else {
        Containerd__Events__TaskExecStarted ev;
        containerd__events__task_exec_started__init(&ev);
        ev.container_id = r->id;
        ev.exec_id = r->exec_id;
        ev.pid = task_pid(s);
        cl_shim_events_post(s->events, "/tasks/exec-started", &ev.base);
    }
    Containerd__Task__V2__StartResponse out;
    containerd__task__v2__start_response__init(&out);
    out.pid = task_pid(s);
    rc = cl_ttrpc_pack(&out.base, resp, resp_len, err);
out:
    if (rc < 0)
        cl_warn("Start %s/%s => %s: %s", r->id, r->exec_id, cl_err_name(rc), err->msg);
    containerd__task__v2__start_request__free_unpacked(r, NULL);
    return rc;
}

/* ---- Exec ---- */

static int h_exec(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp, size_t *resp_len,
                  struct cl_err *err)
{
    struct cl_shim *s = ctx;
    UNPACK(Containerd__Task__V2__ExecProcessRequest, containerd__task__v2__exec_process_request, r);
    int rc = 0;
    struct cl_shim_proc *p = NULL;
    json_t *pj = NULL;
    if ((rc = cl_shim_id_check(r->exec_id, "exec id", err)) < 0)
        goto out;
    if (!r->spec || !r->spec->value.data) {
        rc = cl_err_set(err, CL_EINVAL, "exec %s: no process spec", r->exec_id);
        goto out;
    }
    pj = cl_json_parse((const char *)r->spec->value.data, r->spec->value.len, CL_JSON_MAX_DEPTH,
                       err);
    struct ProtobufCMessage *proc = pj ? cl_shim_process_from_oci(pj, err) : NULL;
    if (!proc) {
        rc = cl_err_prefix(err, "exec %s spec", r->exec_id);
        goto out;
    }
    ((Grpc__Process *)proc)->terminal = r->terminal;
    pthread_mutex_lock(&s->lock);
    struct cl_shim_container *ct = find_ct(s, r->id);
    struct cl_err e2 = {0};
    if (!ct)
        rc = cl_err_set(err, CL_ENOTFOUND, "container %s: not found in this shim", r->id);
    else if (ct->virtual_sandbox)
        rc = cl_err_set(err, CL_EUNSUPPORTED,
                        "container %s is the pod sandbox (the VM): nothing to exec in", r->id);
    else if (find_proc(s, r->id, r->exec_id, &e2))
        rc = cl_err_set(err, CL_EEXISTS, "container %s: exec %s already exists", r->id, r->exec_id);
    else if (s->nprocs >= CL_SHIM_MAX_PROCS)
        rc = cl_err_set(err, CL_ELIMIT, "sandbox %s: %d processes already", s->group_id,
                        CL_SHIM_MAX_PROCS);
    else if (!(p = proc_new(ct, r->exec_id, r->stdin, r->stdout, r->stderr, r->terminal)))
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    if (rc == 0 && p && ct) {
        p->process = proc;
        p->next = ct->execs;
        ct->execs = p;
        s->nprocs++;
    }
    pthread_mutex_unlock(&s->lock);
    if (rc < 0) {
        cl_shim_spec_free(proc);
        goto out;
    }
    Containerd__Events__TaskExecAdded ev;
    containerd__events__task_exec_added__init(&ev);
    ev.container_id = r->id;
    ev.exec_id = r->exec_id;
    cl_shim_events_post(s->events, "/tasks/exec-added", &ev.base);
    *resp = NULL;
    *resp_len = 0;
out:
    if (rc < 0)
        cl_warn("Exec %s/%s => %s: %s", r->id, r->exec_id, cl_err_name(rc), err->msg);
    json_decref(pj);
    containerd__task__v2__exec_process_request__free_unpacked(r, NULL);
    return rc;
}

/* ---- State, Pids, Wait, Connect ---- */

static Containerd__V1__Types__Status status_of(enum proc_state st)
{
    switch (st) {
    case PROC_CREATED:
        return CONTAINERD__V1__TYPES__STATUS__CREATED;
    case PROC_RUNNING:
        return CONTAINERD__V1__TYPES__STATUS__RUNNING;
    case PROC_STOPPED:
        return CONTAINERD__V1__TYPES__STATUS__STOPPED;
    }
    return CONTAINERD__V1__TYPES__STATUS__UNKNOWN;
}

static int h_state(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp, size_t *resp_len,
                   struct cl_err *err)
{
    struct cl_shim *s = ctx;
    UNPACK(Containerd__Task__V2__StateRequest, containerd__task__v2__state_request, r);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    struct cl_shim_proc *p = find_proc(s, r->id, r->exec_id, err);
    if (!p) {
        rc = err->code;
    } else {
        Containerd__Task__V2__StateResponse out;
        containerd__task__v2__state_response__init(&out);
        Google__Protobuf__Timestamp ts;
        google__protobuf__timestamp__init(&ts);
        out.id = p->exec_id[0] ? p->exec_id : p->ct->id;
        out.bundle = p->ct->bundle;
        out.pid = task_pid(s);
        out.status = status_of(p->state);
        out.stdin = p->stdin_path;
        out.stdout = p->stdout_path;
        out.stderr = p->stderr_path;
        out.terminal = p->terminal;
        out.exec_id = p->exec_id;
        if (p->state == PROC_STOPPED) {
            out.exit_status = p->exit_status;
            ts_of(p, &ts);
            out.exited_at = &ts;
        }
        rc = cl_ttrpc_pack(&out.base, resp, resp_len, err);
    }
    pthread_mutex_unlock(&s->lock);
    containerd__task__v2__state_request__free_unpacked(r, NULL);
    return rc;
}

static int h_pids(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp, size_t *resp_len,
                  struct cl_err *err)
{
    struct cl_shim *s = ctx;
    UNPACK(Containerd__Task__V2__PidsRequest, containerd__task__v2__pids_request, r);
    pthread_mutex_lock(&s->lock);
    bool found = find_ct(s, r->id) != NULL;
    pthread_mutex_unlock(&s->lock);
    int rc;
    if (!found) {
        rc = cl_err_set(err, CL_ENOTFOUND, "container %s: not found in this shim", r->id);
    } else {
        /* The guest's pids mean nothing on the host; like Kata, the one host process that
         * runs the container: the hypervisor. */
        Containerd__V1__Types__ProcessInfo pi;
        containerd__v1__types__process_info__init(&pi);
        pi.pid = task_pid(s);
        Containerd__V1__Types__ProcessInfo *pis[] = {&pi};
        Containerd__Task__V2__PidsResponse out;
        containerd__task__v2__pids_response__init(&out);
        out.processes = pis;
        out.n_processes = 1;
        rc = cl_ttrpc_pack(&out.base, resp, resp_len, err);
    }
    containerd__task__v2__pids_request__free_unpacked(r, NULL);
    return rc;
}

static int h_wait(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp, size_t *resp_len,
                  struct cl_err *err)
{
    struct cl_shim *s = ctx;
    UNPACK(Containerd__Task__V2__WaitRequest, containerd__task__v2__wait_request, r);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    struct cl_shim_proc *p = find_proc(s, r->id, r->exec_id, err);
    if (!p) {
        rc = err->code;
    } else {
        /* p stays allocated while waiters > 0: Delete waits for them before freeing */
        p->waiters++;
        while (p->state != PROC_STOPPED)
            pthread_cond_wait(&s->cond, &s->lock);
        p->waiters--;
        pthread_cond_broadcast(&s->cond);
        Containerd__Task__V2__WaitResponse out;
        containerd__task__v2__wait_response__init(&out);
        Google__Protobuf__Timestamp ts;
        google__protobuf__timestamp__init(&ts);
        out.exit_status = p->exit_status;
        ts_of(p, &ts);
        out.exited_at = &ts;
        rc = cl_ttrpc_pack(&out.base, resp, resp_len, err);
    }
    pthread_mutex_unlock(&s->lock);
    containerd__task__v2__wait_request__free_unpacked(r, NULL);
    return rc;
}

static int h_connect(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp,
                     size_t *resp_len, struct cl_err *err)
{
    struct cl_shim *s = ctx;
    UNPACK(Containerd__Task__V2__ConnectRequest, containerd__task__v2__connect_request, r);
    Containerd__Task__V2__ConnectResponse out;
    containerd__task__v2__connect_response__init(&out);
    out.shim_pid = (uint32_t)getpid();
    out.task_pid = task_pid(s);
    out.version = SHIM_VERSION;
    containerd__task__v2__connect_request__free_unpacked(r, NULL);
    return cl_ttrpc_pack(&out.base, resp, resp_len, err);
}

/* ---- Kill, ResizePty, CloseIO, Pause, Resume ---- */

static int h_kill(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp, size_t *resp_len,
                  struct cl_err *err)
{
    struct cl_shim *s = ctx;
    UNPACK(Containerd__Task__V2__KillRequest, containerd__task__v2__kill_request, r);
    int rc = 0;
    bool ended = false;
    pthread_mutex_lock(&s->lock);
    struct cl_shim_proc *p = find_proc(s, r->id, r->exec_id, err);
    enum proc_state st = p ? p->state : PROC_STOPPED;
    bool virt = p && p->ct->virtual_sandbox;
    if (!p)
        rc = err->code;
    else if (virt && st != PROC_STOPPED &&
             (r->signal == SIGKILL || r->signal == SIGTERM || r->signal == SIGINT))
        ended = cl_shim_proc_exited_locked(s, p, 128 + r->signal); /* the sandbox "process" ends */
    pthread_mutex_unlock(&s->lock);
    if (ended)
        cl_shim_publish_exit(s, p);
    if (rc == 0 && !virt && st != PROC_STOPPED) {
        struct cl_shim_agent *ag = cl_shim_agent_get(s);
        Grpc__SignalProcessRequest sp;
        grpc__signal_process_request__init(&sp);
        sp.container_id = r->id;
        sp.exec_id = r->all ? "" : r->exec_id;
        sp.signal = r->signal;
        if (!ag)
            rc = cl_err_stage(err, CL_EIO, "kill", "container %s: the sandbox VM is gone", r->id);
        else if (st == PROC_CREATED && !r->exec_id[0])
            rc = cl_err_set(err, CL_EINVAL, "container %s: not started", r->id);
        else
            rc = cl_shim_agent_call(ag, "SignalProcess", &sp.base, NULL, 0, NULL, err);
        cl_shim_agent_put(s, ag);
    }
    if (rc < 0)
        cl_warn("Kill %s/%s signal %u => %s: %s", r->id, r->exec_id, r->signal, cl_err_name(rc),
                err->msg);
    *resp = NULL;
    *resp_len = 0;
    containerd__task__v2__kill_request__free_unpacked(r, NULL);
    return rc;
}

static int h_resize(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp,
                    size_t *resp_len, struct cl_err *err)
{
    struct cl_shim *s = ctx;
    UNPACK(Containerd__Task__V2__ResizePtyRequest, containerd__task__v2__resize_pty_request, r);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    struct cl_shim_proc *p = find_proc(s, r->id, r->exec_id, err);
    bool virt = p && p->ct->virtual_sandbox;
    if (!p)
        rc = err->code;
    pthread_mutex_unlock(&s->lock);
    struct cl_shim_agent *ag = rc == 0 && !virt ? cl_shim_agent_get(s) : NULL;
    if (rc == 0 && !virt) {
        Grpc__TtyWinResizeRequest tr;
        grpc__tty_win_resize_request__init(&tr);
        tr.container_id = r->id;
        tr.exec_id = r->exec_id;
        tr.row = r->height;
        tr.column = r->width;
        rc =
            ag ? cl_shim_agent_call(ag, "TtyWinResize", &tr.base, NULL, 0, NULL, err)
               : cl_err_stage(err, CL_EIO, "resize", "container %s: the sandbox VM is gone", r->id);
    }
    cl_shim_agent_put(s, ag);
    *resp = NULL;
    *resp_len = 0;
    containerd__task__v2__resize_pty_request__free_unpacked(r, NULL);
    return rc;
}

static int h_closeio(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp,
                     size_t *resp_len, struct cl_err *err)
{
    struct cl_shim *s = ctx;
    UNPACK(Containerd__Task__V2__CloseIORequest, containerd__task__v2__close_iorequest, r);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    struct cl_shim_proc *p = find_proc(s, r->id, r->exec_id, err);
    if (!p)
        rc = err->code;
    else if (r->stdin)
        atomic_store(&p->stdin_close, true); /* the relay drains, then sends CloseStdin */
    pthread_mutex_unlock(&s->lock);
    *resp = NULL;
    *resp_len = 0;
    containerd__task__v2__close_iorequest__free_unpacked(r, NULL);
    return rc;
}

static int pause_call(struct cl_shim *s, struct cl_shim_agent *ag, const char *id, bool pause,
                      struct cl_err *err);

static int pause_resume(struct cl_shim *s, const char *id, bool pause, struct cl_err *err)
{
    pthread_mutex_lock(&s->lock);
    struct cl_shim_container *ct = find_ct(s, id);
    bool virt = ct && ct->virtual_sandbox;
    pthread_mutex_unlock(&s->lock);
    if (!ct)
        return cl_err_set(err, CL_ENOTFOUND, "container %s: not found in this shim", id);
    if (virt)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "container %s is the pod sandbox: pause its containers", id);
    struct cl_shim_agent *ag = cl_shim_agent_get(s);
    if (!ag)
        return cl_err_stage(err, CL_EIO, "pause", "container %s: the sandbox VM is gone", id);
    int rc = pause_call(s, ag, id, pause, err);
    cl_shim_agent_put(s, ag);
    return rc;
}

static int pause_call(struct cl_shim *s, struct cl_shim_agent *ag, const char *id, bool pause,
                      struct cl_err *err)
{
    Grpc__PauseContainerRequest pr;
    grpc__pause_container_request__init(&pr);
    Grpc__ResumeContainerRequest rr;
    grpc__resume_container_request__init(&rr);
    pr.container_id = rr.container_id = (char *)(uintptr_t)id;
    if (cl_shim_agent_call(ag, pause ? "PauseContainer" : "ResumeContainer",
                           pause ? &pr.base : &rr.base, NULL, 0, NULL, err) < 0)
        return err->code;
    if (pause) {
        Containerd__Events__TaskPaused ev;
        containerd__events__task_paused__init(&ev);
        ev.container_id = (char *)(uintptr_t)id;
        cl_shim_events_post(s->events, "/tasks/paused", &ev.base);
    } else {
        Containerd__Events__TaskResumed ev;
        containerd__events__task_resumed__init(&ev);
        ev.container_id = (char *)(uintptr_t)id;
        cl_shim_events_post(s->events, "/tasks/resumed", &ev.base);
    }
    return 0;
}

static int h_pause(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp, size_t *resp_len,
                   struct cl_err *err)
{
    UNPACK(Containerd__Task__V2__PauseRequest, containerd__task__v2__pause_request, r);
    int rc = pause_resume(ctx, r->id, true, err);
    containerd__task__v2__pause_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

static int h_resume(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp,
                    size_t *resp_len, struct cl_err *err)
{
    UNPACK(Containerd__Task__V2__ResumeRequest, containerd__task__v2__resume_request, r);
    int rc = pause_resume(ctx, r->id, false, err);
    containerd__task__v2__resume_request__free_unpacked(r, NULL);
    *resp = NULL;
    *resp_len = 0;
    return rc;
}

/* ---- Delete, Shutdown ---- */

static bool has_waiters(const struct cl_shim_container *c)
{
    if (c->init && c->init->waiters)
        return true;
    for (const struct cl_shim_proc *e = c->execs; e; e = e->next)
        if (e->waiters)
            return true;
    return false;
}

static void publish_delete(struct cl_shim *s, const char *cid, const char *exec_id,
                           const struct cl_shim_proc *p)
{
    Containerd__Events__TaskDelete ev;
    containerd__events__task_delete__init(&ev);
    Google__Protobuf__Timestamp ts;
    google__protobuf__timestamp__init(&ts);
    ev.container_id = (char *)(uintptr_t)cid;
    ev.id = (char *)(uintptr_t)(exec_id[0] ? exec_id : cid);
    ev.pid = task_pid(s);
    ev.exit_status = p->exit_status;
    ts_of(p, &ts);
    ev.exited_at = &ts;
    cl_shim_events_post(s->events, "/tasks/delete", &ev.base);
}

/* Joins the threads of every process still known (their agent calls fail once QEMU is
 * gone), so that the agent client can be freed. Lock not held. */
static void join_all(struct cl_shim *s)
{
    for (;;) {
        struct cl_shim_proc *todo = NULL;
        pthread_mutex_lock(&s->lock);
        for (struct cl_shim_container *c = s->containers; c && !todo; c = c->next) {
            if (c->init && (c->init->have_wait || c->init->have_in))
                todo = c->init;
            for (struct cl_shim_proc *e = c->execs; e && !todo; e = e->next)
                if (e->have_wait || e->have_in)
                    todo = e;
        }
        pthread_mutex_unlock(&s->lock);
        if (!todo)
            break;
        cl_shim_io_join(todo);
    }
}

static void stop_vm(struct cl_shim *s)
{
    pthread_mutex_lock(&s->boot_lock);
    pthread_mutex_lock(&s->lock);
    struct cl_shim_vm *vm = s->vm;
    s->vm_stopping = true;
    pthread_mutex_unlock(&s->lock);
    if (vm) {
        struct cl_shim_agent *ag = atomic_load(&s->vm_dead) ? NULL : cl_shim_vm_agent(vm);
        Grpc__DestroySandboxRequest ds;
        grpc__destroy_sandbox_request__init(&ds);
        struct cl_err e = {0};
        if (ag && cl_shim_agent_call(ag, "DestroySandbox", &ds.base, NULL, 5000, NULL, &e) < 0)
            cl_info("DestroySandbox: %s (the VM is stopped anyway)", e.msg);
        cl_shim_vm_halt(vm);
        atomic_store(&s->vm_dead, true);
        join_all(s);
        if (s->have_oom) {
            pthread_join(s->oom_thread, NULL);
            s->have_oom = false;
        }
        pthread_mutex_lock(&s->lock);
        while (s->agent_refs) /* calls in flight fail now that QEMU is gone */
            pthread_cond_wait(&s->cond, &s->lock);
        s->vm = NULL;
        pthread_mutex_unlock(&s->lock);
        cl_shim_vm_stop(vm);
        cl_info("sandbox %s: VM stopped", s->group_id);
    }
    pthread_mutex_unlock(&s->boot_lock);
}

static int h_delete(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp,
                    size_t *resp_len, struct cl_err *err)
{
    struct cl_shim *s = ctx;
    UNPACK(Containerd__Task__V2__DeleteRequest, containerd__task__v2__delete_request, r);
    int rc = 0;
    struct cl_shim_proc *p = NULL;
    struct cl_shim_container *gone = NULL;
    pthread_mutex_lock(&s->lock);
    p = find_proc(s, r->id, r->exec_id, err);
    if (!p)
        rc = err->code;
    else if (p->state == PROC_RUNNING)
        rc = cl_err_set(err, CL_EINVAL, "container %s: process %s is still running (kill it first)",
                        r->id, r->exec_id[0] ? r->exec_id : "init");
    else if (!r->exec_id[0]) {
        for (struct cl_shim_proc *e = p->ct->execs; e && rc == 0; e = e->next)
            if (e->state == PROC_RUNNING)
                rc = cl_err_set(err, CL_EINVAL, "container %s: exec %s is still running", r->id,
                                e->exec_id);
    }
    if (rc == 0 && p->deleting)
        rc = cl_err_set(err, CL_ENOTFOUND, "container %s: process %s is being deleted", r->id,
                        r->exec_id[0] ? r->exec_id : "init");
    if (rc == 0) {
        p->deleting = true;
        if (p->state == PROC_CREATED) /* never started: reported as exited now */
            cl_shim_proc_exited_locked(s, p, 0);
    }
    pthread_mutex_unlock(&s->lock);
    if (rc < 0)
        goto out;
    cl_shim_io_join(p);

    Containerd__Task__V2__DeleteResponse out;
    containerd__task__v2__delete_response__init(&out);
    Google__Protobuf__Timestamp ts;
    google__protobuf__timestamp__init(&ts);
    out.pid = task_pid(s);
    out.exit_status = p->exit_status;
    ts_of(p, &ts);
    out.exited_at = &ts;
    if ((rc = cl_ttrpc_pack(&out.base, resp, resp_len, err)) < 0)
        goto out;
    publish_delete(s, r->id, r->exec_id, p);

    if (r->exec_id[0]) {
        pthread_mutex_lock(&s->lock);
        while (p->waiters) /* Wait calls still reading p */
            pthread_cond_wait(&s->cond, &s->lock);
        for (struct cl_shim_proc **pp = &p->ct->execs; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                s->nprocs--;
                break;
            }
        pthread_mutex_unlock(&s->lock);
        proc_free(p);
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    bool virt = p->ct->virtual_sandbox;
    pthread_mutex_unlock(&s->lock);
    struct cl_shim_agent *ag = virt ? NULL : cl_shim_agent_get(s);
    if (ag) {
        Grpc__RemoveContainerRequest rm;
        grpc__remove_container_request__init(&rm);
        rm.container_id = r->id;
        struct cl_err e = {0};
        if (cl_shim_agent_call(ag, "RemoveContainer", &rm.base, NULL, 0, NULL, &e) < 0)
            cl_warn("container %s: RemoveContainer: %s", r->id, e.msg);
        cl_shim_agent_put(s, ag);
    }
    pthread_mutex_lock(&s->lock);
    while (has_waiters(p->ct))
        pthread_cond_wait(&s->cond, &s->lock);
    for (struct cl_shim_container **cp = &s->containers; *cp; cp = &(*cp)->next)
        if (strcmp((*cp)->id, r->id) == 0) {
            gone = *cp;
            *cp = gone->next;
            s->ncontainers--;
            break;
        }
    pthread_mutex_unlock(&s->lock);
    /* the container that owns the VM (the pod's sandbox, or a lone container) takes it along */
    if (strcmp(r->id, s->group_id) == 0)
        stop_vm(s);
    for (struct cl_shim_proc *e = gone ? gone->execs : NULL; e; e = e->next)
        cl_shim_io_join(e);
    ct_free(gone);
out:
    if (rc < 0)
        cl_warn("Delete %s/%s => %s: %s", r->id, r->exec_id, cl_err_name(rc), err->msg);
    containerd__task__v2__delete_request__free_unpacked(r, NULL);
    return rc;
}

static int h_shutdown(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp,
                      size_t *resp_len, struct cl_err *err)
{
    struct cl_shim *s = ctx;
    UNPACK(Containerd__Task__V2__ShutdownRequest, containerd__task__v2__shutdown_request, r);
    pthread_mutex_lock(&s->lock);
    bool go = r->now || s->ncontainers == 0;
    if (go)
        s->shutting_down = true;
    pthread_mutex_unlock(&s->lock);
    containerd__task__v2__shutdown_request__free_unpacked(r, NULL);
    if (go) {
        cl_info("Shutdown: the shim of sandbox %s exits", s->group_id);
        cl_shim_spawner_stop(); /* the main thread leaves its loop and tears down */
    }
    *resp = NULL;
    *resp_len = 0;
    return 0;
}

/* ---- not implemented ---- */

static int h_unsupported(const char *what, struct cl_err *err)
{
    return cl_err_set(err, CL_EUNSUPPORTED, "%s is not supported by the Cloister shim", what);
}

static int h_checkpoint(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp,
                        size_t *resp_len, struct cl_err *err)
{
    return h_unsupported("Checkpoint (a confidential VM's memory does not leave it)", err);
}

static int h_update(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp,
                    size_t *resp_len, struct cl_err *err)
{
    return h_unsupported("Update (resources are fixed at VM boot)", err);
}

static int h_stats(void *ctx, const uint8_t *req, size_t req_len, cl_bytes **resp, size_t *resp_len,
                   struct cl_err *err)
{
    UNPACK(Containerd__Task__V2__StatsRequest, containerd__task__v2__stats_request, r);
    int rc = cl_shim_stats(ctx, r->id, resp, resp_len, err);
    containerd__task__v2__stats_request__free_unpacked(r, NULL);
    return rc;
}

static const struct cl_ttrpc_method methods[] = {
    {TASK_SERVICE, "State", h_state},       {TASK_SERVICE, "Create", h_create},
    {TASK_SERVICE, "Start", h_start},       {TASK_SERVICE, "Delete", h_delete},
    {TASK_SERVICE, "Pids", h_pids},         {TASK_SERVICE, "Pause", h_pause},
    {TASK_SERVICE, "Resume", h_resume},     {TASK_SERVICE, "Checkpoint", h_checkpoint},
    {TASK_SERVICE, "Kill", h_kill},         {TASK_SERVICE, "Exec", h_exec},
    {TASK_SERVICE, "ResizePty", h_resize},  {TASK_SERVICE, "CloseIO", h_closeio},
    {TASK_SERVICE, "Update", h_update},     {TASK_SERVICE, "Wait", h_wait},
    {TASK_SERVICE, "Stats", h_stats},       {TASK_SERVICE, "Connect", h_connect},
    {TASK_SERVICE, "Shutdown", h_shutdown},
};

/* ---- the shim object ---- */

struct cl_shim *cl_shim_new(const struct cl_shim_opts *o, struct cl_err *err)
{
    struct cl_shim *s = calloc(1, sizeof *s);
    if (!s) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    s->ns = strdup(o->ns ? o->ns : "default");
    s->address = strdup(o->address ? o->address : "");
    s->publish_binary = strdup(o->publish_binary ? o->publish_binary : "");
    s->group_id = strdup(o->id ? o->id : "");
    s->socket = strdup(o->socket ? o->socket : "");
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_mutex_init(&s->boot_lock, NULL);
    if (!s->ns || !s->address || !s->publish_binary || !s->group_id || !s->socket) {
        cl_shim_free(s);
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    s->events = cl_shim_events_new(s->publish_binary, s->address, s->ns, err);
    if (!s->events) {
        cl_shim_free(s);
        return NULL;
    }
    return s;
}

int cl_shim_serve(struct cl_shim *s, int ready_fd, struct cl_err *err)
{
    struct cl_ttrpc_server *srv =
        cl_ttrpc_server_start(s->socket, methods, CL_ARRAY_LEN(methods), s, err);
    if (!srv) {
        if (ready_fd >= 0)
            close(ready_fd);
        return cl_err_prefix(err, "shim socket");
    }
    /* containerd keeps one connection for the shim's life: never close it for idleness */
    cl_ttrpc_server_set_idle_timeout(srv, 0);
    cl_info("serving %s for sandbox %s (namespace %s)", s->socket, s->group_id, s->ns);
    if (ready_fd >= 0) {
        if (write(ready_fd, "1", 1) != 1)
            cl_warn("could not tell `start` that the shim is ready");
        close(ready_fd);
    }
    cl_shim_spawner_run();

    /* Shutdown: let the answer reach containerd, then stop everything we started. */
    struct timespec ts = {0, 100 * 1000000};
    nanosleep(&ts, NULL);
    stop_vm(s);
    pthread_mutex_lock(&s->lock);
    for (struct cl_shim_container *c = s->containers; c; c = c->next) {
        cl_shim_proc_exited_locked(s, c->init, 255);
        for (struct cl_shim_proc *p = c->execs; p; p = p->next)
            cl_shim_proc_exited_locked(s, p, 255);
    }
    pthread_mutex_unlock(&s->lock);
    char path[CL_TTRPC_MAX_ADDRESS];
    if (cl_ttrpc_address_path(s->socket, path, NULL) == 0)
        unlink(path);
    cl_shim_events_drain(s->events);
    /* Not cl_ttrpc_server_stop: it would wait for handlers containerd may never end (a
     * Wait on a connection it keeps open); the process exits right after this. */
    (void)srv;
    return 0;
}

void cl_shim_free(struct cl_shim *s)
{
    if (!s)
        return;
    cl_shim_events_free(s->events);
    while (s->containers) {
        struct cl_shim_container *n = s->containers->next;
        ct_free(s->containers);
        s->containers = n;
    }
    if (s->have_cfg)
        cl_shim_config_clear(&s->cfg);
    free(s->vm_dir);
    free(s->ns);
    free(s->address);
    free(s->publish_binary);
    free(s->group_id);
    free(s->socket);
    free(s);
}
