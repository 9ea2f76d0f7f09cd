/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Containers: the OCI spec of the request turned into runc's config.json, the guest image
 * pull through cloister-cdh, and the runc life cycle (create, start, delete).
 *
 * config.json is the request's spec with these changes, so that a host cannot steer the
 * guest through it: root.path is the bundle's rootfs (or a folder pushed into the shared
 * folder); linux.cgroupsPath is /<cgroup parent>/<cid>; namespace paths (host paths) are
 * dropped and the network namespace is the agent's (the sandbox's); host hooks are dropped;
 * rlimits are capped at the agent's own hard limits (raising them needs CAP_SYS_RESOURCE).
 */
#include "rt_int.h"

#include "api.pb-c.h"
#include "net/ttrpc.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the OCI spec: protobuf (oci.proto, capitalised names) → runtime-spec JSON ---- */

/* "UIDMappings" → "uidMappings", "OOMScoreAdj" → "oomScoreAdj", "HostID" → "hostID",
 * "CPU" → "cpu", "L3CacheSchema" → "l3CacheSchema"; the spec's own spellings otherwise. */
static void oci_name(const char *msg, const char *field, char *out, size_t cap)
{
    static const struct {
        const char *msg, *field, *json;
    } special[] = {
        {"grpc.Spec", "Version", "ociVersion"},
        {"grpc.LinuxHugepageLimit", "Pagesize", "pageSize"},
        {"grpc.LinuxSyscall", "errnoret", "errnoRet"},
    };
    for (size_t i = 0; i < CL_ARRAY_LEN(special); i++)
        if (strcmp(msg, special[i].msg) == 0 && strcmp(field, special[i].field) == 0) {
            snprintf(out, cap, "%s", special[i].json);
            return;
        }
    size_t n = strlen(field), run = 0;
    while (run < n && field[run] >= 'A' && field[run] <= 'Z')
        run++;
    size_t low = run;
    if (run > 1 && run < n && field[run] >= 'a' && field[run] <= 'z')
        low = run - 1; /* the last capital starts the next word */
    snprintf(out, cap, "%s", field);
    for (size_t i = 0; i < low && i < cap - 1; i++)
        out[i] = (char)(out[i] - 'A' + 'a');
}

static bool is_map_entry(const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *d = f->descriptor;
    size_t n = d ? strlen(d->name) : 0;
    return f->type == PROTOBUF_C_TYPE_MESSAGE && d && d->n_fields == 2 && n > 5 &&
           strcmp(d->name + n - 5, "Entry") == 0 && strcmp(d->fields[0].name, "key") == 0 &&
           strcmp(d->fields[1].name, "value") == 0;
}

static json_t *msg_json(const ProtobufCMessage *m, int depth);

/* One value of type f->type at p; NULL for a default value (left out of the JSON). */
static json_t *scalar_json(const ProtobufCFieldDescriptor *f, const void *p, bool keep_default,
                           int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v = *(const int32_t *)p;
        return v || keep_default ? json_integer(v) : NULL;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t v = *(const uint32_t *)p;
        return v || keep_default ? json_integer((json_int_t)v) : NULL;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v = *(const int64_t *)p;
        /* -1 is Kata's "any" for device majors and minors: left out like 0 */
        return (v && v != -1) || keep_default ? json_integer(v) : NULL;
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)p;
        /* JSON integers are signed 64-bit here; larger values (unlimited) saturate */
        return v || keep_default ? json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v) : NULL;
    }
    case PROTOBUF_C_TYPE_BOOL: {
        protobuf_c_boolean v = *(const protobuf_c_boolean *)p;
        return v || keep_default ? json_boolean(v) : NULL;
    }
    case PROTOBUF_C_TYPE_FLOAT:
        return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s && (*s || keep_default) ? json_string(s) : NULL;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return NULL; /* oci.proto has none */
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub ? msg_json(sub, depth + 1) : NULL;
    }
    }
    return NULL;
}

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

static json_t *msg_json(const ProtobufCMessage *m, int depth)
{
    if (depth > 16)
        return NULL;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_t *o = json_object();
    for (unsigned i = 0; o && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (strcmp(f->name, "Solaris") == 0 || strcmp(f->name, "Windows") == 0)
            continue;
        const char *member = (const char *)m + f->offset;
        char name[96];
        oci_name(d->name, f->name, name, sizeof name);
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(const void *)((const char *)m + f->quantifier_offset);
            const char *arr = *(char *const *)(const void *)member;
            if (n == 0 || !arr)
                continue;
            if (is_map_entry(f)) {
                v = json_object();
                for (size_t k = 0; v && k < n; k++) {
                    const ProtobufCMessage *e = ((ProtobufCMessage *const *)(const void *)arr)[k];
                    const ProtobufCFieldDescriptor *kf = &e->descriptor->fields[0];
                    const ProtobufCFieldDescriptor *vf = &e->descriptor->fields[1];
                    const char *key = *(char *const *)(const void *)((const char *)e + kf->offset);
                    json_t *val = scalar_json(vf, (const char *)e + vf->offset, true, depth);
                    if (key && val)
                        json_object_set_new(v, key, val);
                    else
                        json_decref(val);
                }
            } else {
                v = json_array();
                for (size_t k = 0; v && k < n; k++) {
                    json_t *e = scalar_json(f, arr + k * elem_size(f), true, depth);
                    json_array_append_new(v, e ? e : json_object());
                }
            }
        } else {
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                uint32_t which =
                    *(const uint32_t *)(const void *)((const char *)m + f->quantifier_offset);
                if (which != f->id)
                    continue;
                v = scalar_json(f, member, true, depth);
            } else {
                v = scalar_json(f, member, false, depth);
            }
        }
        if (v)
            json_object_set_new(o, name, v);
    }
    return o;
}

json_t *cl_agent_oci_to_json(const ProtobufCMessage *m, struct cl_err *err)
{
    json_t *j = m ? msg_json(m, 0) : NULL;
    if (!j)
        cl_err_set(err, m ? CL_ENOMEM : CL_EINVAL, m ? "out of memory" : "OCI spec missing");
    return j;
}

/* ---- config.json from the request's spec ---- */

static const struct {
    const char *name;
    int res;
} rlimit_names[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

/* True when the guest kernel enforces AppArmor / SELinux. */
static bool apparmor_on(void)
{
    char b[4] = "";
    FILE *f = fopen("/sys/module/apparmor/parameters/enabled", "re");
    bool on = f && fgets(b, sizeof b, f) && b[0] == 'Y';
    if (f)
        fclose(f);
    return on;
}

static bool selinux_on(void)
{
    struct stat st;
    return stat("/sys/fs/selinux/enforce", &st) == 0;
}

/* Caps every rlimit of a process object at the agent's hard limit. */
int cl_agent_process_fix(json_t *proc, struct cl_err *err)
{
    if (!json_is_object(proc))
        return cl_err_set(err, CL_EINVAL, "OCI.Process missing");
    json_t *args = json_object_get(proc, "args");
    if (!json_is_array(args) || json_array_size(args) == 0)
        return cl_err_set(err, CL_EINVAL, "OCI.Process.Args is empty");
    if (!json_object_get(proc, "cwd"))
        json_object_set_new(proc, "cwd", json_string("/"));
    if (!json_object_get(proc, "user"))
        json_object_set_new(proc, "user", json_object());
    /* CRI names the host's LSM profiles; a guest without that LSM cannot apply them (runc
     * refuses to start) and has nothing to confine with them */
    if (json_object_get(proc, "apparmorProfile") && !apparmor_on()) {
        cl_info("agent: apparmorProfile dropped: AppArmor is not enabled here");
        json_object_del(proc, "apparmorProfile");
    }
    if (json_object_get(proc, "selinuxLabel") && !selinux_on()) {
        cl_info("agent: selinuxLabel dropped: SELinux is not enabled here");
        json_object_del(proc, "selinuxLabel");
    }
    json_t *rl = json_object_get(proc, "rlimits");
    size_t i;
    json_t *r;
    json_array_foreach(rl, i, r)
    {
        const char *type = json_string_value(json_object_get(r, "type"));
        int res = -1;
        for (size_t k = 0; type && k < CL_ARRAY_LEN(rlimit_names); k++)
            if (strcmp(type, rlimit_names[k].name) == 0)
                res = rlimit_names[k].res;
        if (res < 0)
            return cl_err_set(err, CL_EINVAL, "OCI.Process.Rlimits[%zu]: unknown type '%.32s'", i,
                              type ? type : "");
        struct rlimit cur;
        if (getrlimit(res, &cur) < 0)
            continue;
        const char *keys[] = {"hard", "soft"};
        for (int k = 0; k < 2; k++) {
            json_int_t v = json_integer_value(json_object_get(r, keys[k]));
            if (cur.rlim_max != RLIM_INFINITY && (uint64_t)v > cur.rlim_max)
                json_object_set_new(r, keys[k], json_integer((json_int_t)cur.rlim_max));
        }
    }
    return 0;
}

static int spec_fix(struct cl_agent_rt *rt, struct cl_rt_ctr *c, json_t *spec, bool *tty,
                    struct cl_err *err)
{
    if (!json_is_object(spec))
        return cl_err_set(err, CL_EINVAL, "OCI spec is not an object");
    if (!json_object_get(spec, "ociVersion"))
        json_object_set_new(spec, "ociVersion", json_string("1.0.2"));
    json_t *proc = json_object_get(spec, "process");
    if (cl_agent_process_fix(proc, err) < 0)
        return err->code;
    *tty = json_is_true(json_object_get(proc, "terminal"));
    /* ---- root: the bundle's rootfs, or a tree pushed beneath the shared folder ---- */
    char rootfs[PATH_MAX + 16];
    snprintf(rootfs, sizeof rootfs, "%s/rootfs", c->bundle);
    json_t *root = json_object_get(spec, "root");
    const char *rp = json_string_value(json_object_get(root, "path"));
    const char *use = rootfs;
    const char *rel = NULL;
    struct cl_err e2 = {0};
    if (rp && *rp && strcmp(rp, "rootfs") != 0 && strcmp(rp, rootfs) != 0) {
        if (cl_agent_copy_path_check(rt->shared_dir, rp, &rel, &e2) < 0)
            return cl_err_set(err, CL_EINVAL, "OCI.Root.Path '%.200s' is neither %s nor beneath %s",
                              rp, rootfs, rt->shared_dir);
        use = rp;
    }
    json_t *nroot = json_object();
    json_object_set_new(nroot, "path", json_string(use));
    if (json_is_true(json_object_get(root, "readonly")))
        json_object_set_new(nroot, "readonly", json_true());
    json_object_set_new(spec, "root", nroot);
    /* ---- host-side things that mean nothing here ---- */
    if (json_object_get(spec, "hooks")) {
        cl_info("agent: container %s: OCI hooks dropped (host paths)", c->id);
        json_object_del(spec, "hooks");
    }
    json_t *linux_ = json_object_get(spec, "linux");
    if (!linux_) {
        linux_ = json_object();
        json_object_set_new(spec, "linux", linux_);
    }
    if (!json_is_object(linux_))
        return cl_err_set(err, CL_EINVAL, "OCI.Linux is not an object");
    if (json_object_get(linux_, "mountLabel") && !selinux_on())
        json_object_del(linux_, "mountLabel");
    char cg[512];
    snprintf(cg, sizeof cg, "/%s/%s", rt->cgroup_parent, c->id);
    json_object_set_new(linux_, "cgroupsPath", json_string(cg));
    /* namespaces: new ones for the container (host paths mean nothing here), always at least
     * mount, pid, ipc and uts; never network (the sandbox's, the agent's own) */
    json_t *ns = json_object_get(linux_, "namespaces");
    json_t *keep = json_array();
    static const char *const must[] = {"mount", "pid", "ipc", "uts"};
    bool have[CL_ARRAY_LEN(must)] = {false};
    size_t i;
    json_t *n;
    json_array_foreach(ns, i, n)
    {
        const char *t = json_string_value(json_object_get(n, "type"));
        if (!t || strcmp(t, "network") == 0)
            continue;
        for (size_t k = 0; k < CL_ARRAY_LEN(must); k++)
            have[k] = have[k] || strcmp(t, must[k]) == 0;
        json_array_append_new(keep, json_pack("{s:s}", "type", t));
    }
    for (size_t k = 0; k < CL_ARRAY_LEN(must); k++)
        if (!have[k])
            json_array_append_new(keep, json_pack("{s:s}", "type", must[k]));
    json_object_set_new(linux_, "namespaces", keep);
    return 0;
}

/* ---- guest pull through cdh ---- */

static int pull_image(struct cl_agent_rt *rt, struct cl_rt_ctr *c, const struct cl_agent_storage *s,
                      struct cl_err *err)
{
    char want[PATH_MAX + 16];
    snprintf(want, sizeof want, "%s/rootfs", c->bundle);
    if (!s->source || !*s->source)
        return cl_err_set(err, CL_EINVAL, "storage %s: source (the image reference) is empty",
                          s->driver);
    if (s->mount_point && *s->mount_point && strcmp(s->mount_point, want) != 0)
        return cl_err_set(err, CL_EINVAL, "storage %s: mount_point '%.200s' is not %s", s->driver,
                          s->mount_point, want);
    Api__ImagePullRequest in;
    api__image_pull_request__init(&in);
    in.image_url = (char *)(uintptr_t)s->source;
    in.bundle_path = c->bundle;
    size_t n = api__image_pull_request__get_packed_size(&in);
    CL_AUTO(cl_bytes) *req = malloc(n ? n : 1);
    if (!req)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    api__image_pull_request__pack(&in, req);
    struct cl_ttrpc_client *cl = cl_ttrpc_client_connect(rt->cdh_addr, err);
    if (!cl)
        return cl_err_prefix(err, "image pull: confidential data hub at %s", rt->cdh_addr);
    CL_AUTO(cl_bytes) *resp = NULL;
    size_t rlen = 0;
    uint64_t t0 = cl_now_mono_ns();
    int rc = cl_ttrpc_call(cl, "api.ImagePullService", "PullImage", req, n,
                           CL_AGENT_PULL_TIMEOUT_MS, &resp, &rlen, err);
    cl_ttrpc_client_free(cl);
    if (rc < 0)
        return cl_err_prefix(err, "image pull of %.200s", s->source);
    Api__ImagePullResponse *r = api__image_pull_response__unpack(NULL, rlen, resp);
    cl_info("agent: container %s: image %s pulled (%s) in %llu ms", c->id, s->source,
            r && r->manifest_digest ? r->manifest_digest : "?",
            (unsigned long long)((cl_now_mono_ns() - t0) / 1000000));
    if (r)
        api__image_pull_response__free_unpacked(r, NULL);
    struct stat st;
    if (stat(want, &st) < 0 || !S_ISDIR(st.st_mode))
        return cl_err_set(err, CL_EIO, "image pull of %.200s: no rootfs at %s afterwards",
                          s->source, want);
    return 0;
}

/* A path under the run folder (storages may not point elsewhere). */
static int under_run_dir(struct cl_agent_rt *rt, const char *p, struct cl_err *err)
{
    size_t n = strlen(rt->run_dir);
    if (!p || strncmp(p, rt->run_dir, n) != 0 || p[n] != '/' || strstr(p, "/../") ||
        strstr(p, "/./") || (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0))
        return cl_err_set(err, CL_EINVAL, "storage mount_point '%.200s' is not beneath %s",
                          p ? p : "", rt->run_dir);
    return 0;
}

int cl_agent_storage_setup(struct cl_agent_rt *rt, const struct cl_agent_storage *s,
                           struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (!s->driver)
        return cl_err_set(err, CL_EINVAL, "storage: driver missing");
    if (strcmp(s->driver, "local") == 0) {
        if (under_run_dir(rt, s->mount_point, err) < 0)
            return err->code;
        return cl_mkdir_p(s->mount_point, 0755, err);
    }
    if (strcmp(s->driver, "ephemeral") == 0) {
        if (under_run_dir(rt, s->mount_point, err) < 0 || cl_mkdir_p(s->mount_point, 0755, err) < 0)
            return err->code;
        if (mount("tmpfs", s->mount_point, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") < 0)
            return cl_err_set(err, CL_EIO, "storage ephemeral: mount tmpfs on %s: %s",
                              s->mount_point, strerror(errno));
        return 0;
    }
    return cl_err_set(err, CL_EUNSUPPORTED, "storage driver '%.64s' is not supported here",
                      s->driver);
}

/* ---- life cycle ---- */

void cl_rt_ctr_free(struct cl_agent_rt *rt, struct cl_rt_ctr *c)
{
    pthread_mutex_lock(&rt->lock);
    cl_rt_proc_release_locked(rt, c->init);
    for (struct cl_rt_proc *p = c->execs, *nx; p; p = nx) {
        nx = p->next;
        cl_rt_proc_release_locked(rt, p);
    }
    pthread_mutex_unlock(&rt->lock);
    free(c);
}

static void unlink_ctr_locked(struct cl_agent_rt *rt, struct cl_rt_ctr *c)
{
    for (struct cl_rt_ctr **pp = &rt->ctrs; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            rt->nctrs--;
            return;
        }
}

void cl_rt_ctr_teardown(struct cl_agent_rt *rt, struct cl_rt_ctr *c, unsigned timeout_s)
{
    struct cl_err e = {0};
    char log[PATH_MAX + 16];
    snprintf(log, sizeof log, "%s/runc.log", c->bundle);
    char *del[] = {(char *)"delete", (char *)"--force", c->id, NULL};
    if (cl_rt_runc(rt, log, NULL, del, &e) < 0)
        cl_debug("agent: container %s: %s", c->id, e.msg);
    /* the init (and every exec) must be reaped before the record goes */
    pthread_mutex_lock(&rt->lock);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_s ? timeout_s : CL_AGENT_STOP_TIMEOUT_MS / 1000;
    for (;;) {
        bool alive = c->users > 0 || (c->init && c->init->pid > 0 && !c->init->exited);
        for (struct cl_rt_proc *p = c->execs; p; p = p->next)
            alive = alive || (p->pid > 0 && !p->exited);
        if (!alive)
            break;
        if (pthread_cond_timedwait(&rt->cond, &rt->lock, &dl) == ETIMEDOUT) {
            cl_warn("agent: container %s: processes still running after delete", c->id);
            break;
        }
    }
    unlink_ctr_locked(rt, c);
    pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
    char rootfs[PATH_MAX + 16];
    snprintf(rootfs, sizeof rootfs, "%s/rootfs", c->bundle);
    while (umount2(rootfs, MNT_DETACH) == 0)
        ;
    cl_rt_rmtree(c->bundle);
    cl_rt_ctr_free(rt, c);
}

/* mine: the agent's ends (stdin write, stdout read, stderr read); fds: the container's. */
static int make_pipes(int mine[3], int fds[3], struct cl_err *err)
{
    int in[2], out[2], er[2];
    if (pipe2(in, O_CLOEXEC) < 0)
        return cl_err_set(err, CL_EIO, "pipe: %s", strerror(errno));
    if (pipe2(out, O_CLOEXEC) < 0) {
        close(in[0]), close(in[1]);
        return cl_err_set(err, CL_EIO, "pipe: %s", strerror(errno));
    }
    if (pipe2(er, O_CLOEXEC) < 0) {
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        return cl_err_set(err, CL_EIO, "pipe: %s", strerror(errno));
    }
    mine[0] = in[1];
    mine[1] = out[0];
    mine[2] = er[0];
    fds[0] = in[0];
    fds[1] = out[1];
    fds[2] = er[1];
    return 0;
}

int cl_agent_proc_spawn(struct cl_agent_rt *rt, struct cl_rt_ctr *c, struct cl_rt_proc *p, bool tty,
                        const char *const *args, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    char log[PATH_MAX + 16], pidf[PATH_MAX + 160], sock[PATH_MAX + 160];
    snprintf(log, sizeof log, "%s/runc.log", c->bundle);
    snprintf(pidf, sizeof pidf, "%s/%s.pid", c->bundle, p->exec_id[0] ? p->exec_id : "init");
    snprintf(sock, sizeof sock, "%s/%s.tty", c->bundle, p->exec_id[0] ? p->exec_id : "init");
    int fds[3] = {-1, -1, -1}, mine[3] = {-1, -1, -1}, lfd = -1;
    char *argv[24];
    size_t n = 0;
    for (; n < 16 && args[n]; n++)
        argv[n] = (char *)(uintptr_t)args[n];
    argv[n++] = (char *)"--pid-file";
    argv[n++] = pidf;
    if (tty) {
        if ((lfd = cl_rt_console_listen(sock, err)) < 0)
            return err->code;
        argv[n++] = (char *)"--console-socket";
        argv[n++] = sock;
    } else if (make_pipes(mine, fds, err) < 0) {
        return err->code;
    }
    argv[n++] = c->id;
    argv[n] = NULL;
    int rc = cl_rt_runc(rt, log, fds, argv, err);
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (rc == 0 && tty) {
        int m = cl_rt_console_recv(lfd, err);
        if (m < 0)
            rc = m;
        else
            mine[0] = mine[1] = m; /* the pty is stdin and stdout */
    }
    if (lfd >= 0) {
        close(lfd);
        unlink(sock);
    }
    pid_t pid = 0;
    if (rc == 0 && cl_rt_read_pid(pidf, &pid, err) < 0)
        rc = err->code;
    unlink(pidf);
    if (rc < 0) {
        for (int i = 0; i < 3; i++)
            if (mine[i] >= 0 && !(i == 1 && mine[1] == mine[0]))
                close(mine[i]);
        return rc;
    }
    /* published under the lock: readers take their reference under it */
    pthread_mutex_lock(&rt->lock);
    p->in_fd = mine[0];
    p->out_fd = mine[1];
    p->err_fd = mine[2];
    p->tty = tty;
    cl_rt_proc_set_pid_locked(rt, p, pid);
    pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
    return 0;
}

/* The bundle of a claimed container: storages (the image first), config.json, runc create.
 * On failure the caller tears everything down. */
static int bundle_setup(struct cl_agent_rt *rt, struct cl_rt_ctr *c,
                        const struct cl_agent_create *req, json_t *spec, struct cl_err *err)
{
    if (mkdir(c->bundle, 0700) < 0)
        return cl_err_set(err, CL_EIO, "bundle %s: %s", c->bundle, strerror(errno));
    /* ---- storages ---- */
    for (size_t i = 0; i < req->nstorages; i++) {
        const struct cl_agent_storage *s = &req->storages[i];
        int rc = s->driver && strcmp(s->driver, CL_AGENT_STORAGE_GUEST_PULL) == 0
                     ? pull_image(rt, c, s, err)
                     : cl_agent_storage_setup(rt, s, err);
        if (rc < 0)
            return cl_err_prefix(err, "storages[%zu]", i);
    }
    /* ---- config.json ---- */
    bool tty = false;
    if (spec_fix(rt, c, spec, &tty, err) < 0)
        return err->code;
    const char *rootp = json_string_value(json_object_get(json_object_get(spec, "root"), "path"));
    struct stat st;
    if (!rootp || stat(rootp, &st) < 0 || !S_ISDIR(st.st_mode))
        return cl_err_set(err, CL_EINVAL, "rootfs %s does not exist (no image_guest_pull storage?)",
                          rootp ? rootp : "");
    CL_AUTO(cl_str) *text = json_dumps(spec, JSON_COMPACT);
    if (!text)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    char cfg[PATH_MAX + 16];
    snprintf(cfg, sizeof cfg, "%s/config.json", c->bundle);
    if (cl_file_write_atomic(cfg, text, strlen(text), 0600, err) < 0)
        return err->code;
    /* ---- runc create ---- */
    const char *args[] = {"create", "--bundle", c->bundle, NULL};
    return cl_agent_proc_spawn(rt, c, c->init, tty, args, err);
}

int cl_agent_rt_create(struct cl_agent_rt *rt, const struct cl_agent_create *req,
                       struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (cl_agent_id_check(req->cid, "container_id", err) < 0)
        return err->code;
    /* names of the run folder's own entries (the image store is cdh's default work_dir) */
    static const char *const reserved[] = {"sandbox", "shared", "image"};
    for (size_t i = 0; i < CL_ARRAY_LEN(reserved); i++)
        if (strcmp(req->cid, reserved[i]) == 0)
            return cl_err_set(err, CL_EINVAL,
                              "container_id '%s' is reserved (a folder of the run folder)",
                              req->cid);
    if (req->spec_len > CL_AGENT_MAX_SPEC)
        return cl_err_set(err, CL_ELIMIT, "OCI spec of %zu bytes exceeds %u", req->spec_len,
                          CL_AGENT_MAX_SPEC);
    CL_AUTO(json_t) *spec = json_loadb(req->spec_json, req->spec_len, JSON_REJECT_DUPLICATES, NULL);
    if (!spec)
        return cl_err_set(err, CL_EPARSE, "OCI spec is not JSON");
    struct cl_rt_ctr *c = calloc(1, sizeof *c);
    if (!c)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    snprintf(c->id, sizeof c->id, "%s", req->cid);
    snprintf(c->bundle, sizeof c->bundle, "%s/%s", rt->run_dir, req->cid);
    c->busy = true;
    if (!(c->init = cl_rt_proc_new("", err))) {
        free(c);
        return err->code;
    }
    /* ---- claim the id ---- */
    pthread_mutex_lock(&rt->lock);
    bool taken = false;
    for (struct cl_rt_ctr *o = rt->ctrs; o; o = o->next)
        taken = taken || strcmp(o->id, c->id) == 0;
    bool full = rt->nctrs >= CL_AGENT_MAX_CONTAINERS;
    if (!taken && !full) {
        c->next = rt->ctrs;
        rt->ctrs = c;
        rt->nctrs++;
    }
    pthread_mutex_unlock(&rt->lock);
    if (taken || full) {
        cl_rt_ctr_free(rt, c);
        return taken
                   ? cl_err_set(err, CL_EEXISTS, "container '%s' already exists", req->cid)
                   : cl_err_set(err, CL_ELIMIT, "more than %d containers", CL_AGENT_MAX_CONTAINERS);
    }
    struct stat st;
    if (lstat(c->bundle, &st) == 0) {
        cl_err_set(err, CL_EEXISTS, "bundle %s already exists", c->bundle);
        pthread_mutex_lock(&rt->lock);
        unlink_ctr_locked(rt, c);
        pthread_mutex_unlock(&rt->lock);
        cl_rt_ctr_free(rt, c);
        return err->code;
    }
    int rc = bundle_setup(rt, c, req, spec, err);
    if (rc < 0) {
        cl_rt_ctr_teardown(rt, c, 2);
        return rc;
    }
    pthread_mutex_lock(&rt->lock);
    c->busy = false;
    c->state = RT_CREATED;
    pthread_mutex_unlock(&rt->lock);
    cl_info("agent: container %s created (init pid %d)", c->id, (int)c->init->pid);
    return 0;
}

int cl_agent_rt_start(struct cl_agent_rt *rt, const char *cid, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (cl_agent_id_check(cid, "container_id", err) < 0)
        return err->code;
    pthread_mutex_lock(&rt->lock);
    struct cl_rt_ctr *c = cl_rt_ctr_find(rt, cid);
    bool ok = c && c->state == RT_CREATED;
    char log[PATH_MAX + 16] = "";
    if (c)
        snprintf(log, sizeof log, "%s/runc.log", c->bundle);
    pthread_mutex_unlock(&rt->lock);
    if (!c)
        return cl_err_set(err, CL_ENOTFOUND, "container '%s' does not exist", cid);
    if (!ok)
        return cl_err_set(err, CL_EINVAL, "container '%s' is not in the created state", cid);
    char *args[] = {(char *)"start", (char *)(uintptr_t)cid, NULL};
    if (cl_rt_runc(rt, log, NULL, args, err) < 0)
        return err->code;
    pthread_mutex_lock(&rt->lock);
    if ((c = cl_rt_ctr_find(rt, cid)) && c->state == RT_CREATED)
        c->state = RT_RUNNING;
    pthread_mutex_unlock(&rt->lock);
    return 0;
}

int cl_agent_rt_remove(struct cl_agent_rt *rt, const char *cid, unsigned timeout_s,
                       struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (cl_agent_id_check(cid, "container_id", err) < 0)
        return err->code;
    pthread_mutex_lock(&rt->lock);
    struct cl_rt_ctr *c = cl_rt_ctr_find(rt, cid);
    if (c) {
        c->busy = true;
        /* wake blocked readers and writers now: nothing more will come */
        struct cl_rt_proc *ps[2] = {c->init, c->execs};
        for (int k = 0; k < 2; k++)
            for (struct cl_rt_proc *p = ps[k]; p; p = k ? p->next : NULL)
                if (p->wake[1] >= 0 && write(p->wake[1], "x", 1) < 0)
                    cl_debug("agent: wake pipe full");
        pthread_cond_broadcast(&rt->cond);
    }
    pthread_mutex_unlock(&rt->lock);
    if (!c)
        return cl_err_set(err, CL_ENOTFOUND, "container '%s' does not exist", cid);
    cl_rt_ctr_teardown(rt, c, timeout_s);
    cl_info("agent: container %s removed", cid);
    return 0;
}

/* ---- update, pause, resume ---- */

/* The bundle's runc log of a known container (copied out under the lock). */
static int known(struct cl_agent_rt *rt, const char *cid, char log[PATH_MAX + 16],
                 char bundle[PATH_MAX], struct cl_err *err)
{
    if (cl_agent_id_check(cid, "container_id", err) < 0)
        return err->code;
    pthread_mutex_lock(&rt->lock);
    struct cl_rt_ctr *c = cl_rt_ctr_find(rt, cid);
    if (c) {
        snprintf(log, PATH_MAX + 16, "%s/runc.log", c->bundle);
        snprintf(bundle, PATH_MAX, "%s", c->bundle);
    }
    pthread_mutex_unlock(&rt->lock);
    return c ? 0 : cl_err_set(err, CL_ENOTFOUND, "container '%s' does not exist", cid);
}

int cl_agent_rt_update(struct cl_agent_rt *rt, const char *cid, const char *resources_json,
                       size_t len, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    char log[PATH_MAX + 16], bundle[PATH_MAX], path[PATH_MAX + 32];
    if (known(rt, cid, log, bundle, err) < 0)
        return err->code;
    if (len > CL_AGENT_MAX_SPEC)
        return cl_err_set(err, CL_ELIMIT, "resources of %zu bytes exceed %u", len,
                          CL_AGENT_MAX_SPEC);
    CL_AUTO(json_t) *res = json_loadb(resources_json, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(res))
        return cl_err_set(err, CL_EPARSE, "resources are not a JSON object");
    CL_AUTO(cl_str) *text = json_dumps(res, JSON_COMPACT);
    if (!text)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    snprintf(path, sizeof path, "%s/resources.json", bundle);
    if (cl_file_write_atomic(path, text, strlen(text), 0600, err) < 0)
        return err->code;
    char *args[] = {(char *)"update", (char *)"--resources", path, (char *)(uintptr_t)cid, NULL};
    int rc = cl_rt_runc(rt, log, NULL, args, err);
    unlink(path);
    return rc;
}

int cl_agent_rt_pause(struct cl_agent_rt *rt, const char *cid, bool pause, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    char log[PATH_MAX + 16], bundle[PATH_MAX];
    if (known(rt, cid, log, bundle, err) < 0)
        return err->code;
    char *args[] = {(char *)(pause ? "pause" : "resume"), (char *)(uintptr_t)cid, NULL};
    return cl_rt_runc(rt, log, NULL, args, err);
}
