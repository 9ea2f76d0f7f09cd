/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The agent's actions (agent_int.h): one function per AgentService RPC that the runtime
 * serves, each unpacking nothing (the service hands over the decoded request), calling the
 * runtime with plain values and packing the response. The table at the end is what the
 * service dispatches on; an RPC that is not in it is answered UNIMPLEMENTED.
 */
#include "agent.h"
#include "net/ttrpc.h"
#include "rt_int.h"

#include "agent.pb-c.h"
#include "types.pb-c.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int empty(cl_bytes **resp, size_t *len)
{
    *resp = NULL;
    *len = 0;
    return 0;
}

static const char *str(const char *s)
{
    return s ? s : "";
}

/* Storages as plain values (borrowed from the request); *out new. */
static int storages(Grpc__Storage *const *in, size_t n, struct cl_agent_storage **out,
                    struct cl_err *err)
{
    *out = NULL;
    if (n > 64)
        return cl_err_set(err, CL_ELIMIT, "more than 64 storages");
    if (n == 0)
        return 0;
    *out = calloc(n, sizeof **out);
    if (!*out)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        (*out)[i] = (struct cl_agent_storage){str(in[i]->driver), str(in[i]->source),
                                              str(in[i]->fstype), str(in[i]->mount_point)};
    return 0;
}

/* ---- sandbox ---- */

static int a_create_sandbox(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                            size_t *len, struct cl_err *err)
{
    const Grpc__CreateSandboxRequest *r = (const Grpc__CreateSandboxRequest *)m;
    if (r->n_kernel_modules)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "CreateSandbox: kernel_modules are not loaded by this agent");
    if (r->guest_hook_path && *r->guest_hook_path)
        return cl_err_set(err, CL_EUNSUPPORTED, "CreateSandbox: guest hooks are not supported");
    struct cl_agent_storage *sp = NULL;
    if (storages(r->storages, r->n_storages, &sp, err) < 0)
        return err->code;
    struct cl_agent_sandbox s = {
        str(r->hostname), (const char *const *)r->dns, r->n_dns, str(r->sandbox_id), sp,
        r->n_storages};
    int rc = cl_agent_rt_sandbox_create(rt, &s, err);
    free(sp);
    if (rc < 0)
        return cl_err_prefix(err, "CreateSandbox");
    return empty(resp, len);
}

static int a_destroy_sandbox(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                             size_t *len, struct cl_err *err)
{
    (void)m;
    if (cl_agent_rt_sandbox_destroy(rt, err) < 0)
        return cl_err_prefix(err, "DestroySandbox");
    return empty(resp, len);
}

/* ---- containers ---- */

static int a_create_container(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                              size_t *len, struct cl_err *err)
{
    const Grpc__CreateContainerRequest *r = (const Grpc__CreateContainerRequest *)m;
    if (r->n_devices)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "CreateContainer: devices are not supported by this agent");
    if (r->n_shared_mounts)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "CreateContainer: shared_mounts are not supported by this agent");
    if (!r->oci)
        return cl_err_set(err, CL_EINVAL, "CreateContainer: OCI spec missing");
    CL_AUTO(json_t) *spec = cl_agent_oci_to_json(&r->oci->base, err);
    if (!spec)
        return cl_err_prefix(err, "CreateContainer");
    CL_AUTO(cl_str) *text = json_dumps(spec, JSON_COMPACT);
    if (!text)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    struct cl_agent_storage *sp = NULL;
    if (storages(r->storages, r->n_storages, &sp, err) < 0)
        return err->code;
    struct cl_agent_create c = {str(r->container_id), str(r->exec_id), text, strlen(text), sp,
                                r->n_storages};
    int rc = cl_agent_rt_create(rt, &c, err);
    free(sp);
    if (rc < 0)
        return cl_err_prefix(err, "CreateContainer %s", str(r->container_id));
    return empty(resp, len);
}

static int a_start_container(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                             size_t *len, struct cl_err *err)
{
    const Grpc__StartContainerRequest *r = (const Grpc__StartContainerRequest *)m;
    if (cl_agent_rt_start(rt, str(r->container_id), err) < 0)
        return cl_err_prefix(err, "StartContainer");
    return empty(resp, len);
}

static int a_remove_container(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                              size_t *len, struct cl_err *err)
{
    const Grpc__RemoveContainerRequest *r = (const Grpc__RemoveContainerRequest *)m;
    if (cl_agent_rt_remove(rt, str(r->container_id), r->timeout, err) < 0)
        return cl_err_prefix(err, "RemoveContainer");
    return empty(resp, len);
}

static int a_update_container(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                              size_t *len, struct cl_err *err)
{
    const Grpc__UpdateContainerRequest *r = (const Grpc__UpdateContainerRequest *)m;
    if (!r->resources)
        return cl_err_set(err, CL_EINVAL, "UpdateContainer: resources missing");
    CL_AUTO(json_t) *res = cl_agent_oci_to_json(&r->resources->base, err);
    CL_AUTO(cl_str) *text = res ? json_dumps(res, JSON_COMPACT) : NULL;
    if (!text)
        return cl_err_prefix(err, "UpdateContainer");
    if (cl_agent_rt_update(rt, str(r->container_id), text, strlen(text), err) < 0)
        return cl_err_prefix(err, "UpdateContainer");
    return empty(resp, len);
}

static int a_pause_container(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                             size_t *len, struct cl_err *err)
{
    const Grpc__PauseContainerRequest *r = (const Grpc__PauseContainerRequest *)m;
    if (cl_agent_rt_pause(rt, str(r->container_id), true, err) < 0)
        return cl_err_prefix(err, "PauseContainer");
    return empty(resp, len);
}

static int a_resume_container(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                              size_t *len, struct cl_err *err)
{
    const Grpc__ResumeContainerRequest *r = (const Grpc__ResumeContainerRequest *)m;
    if (cl_agent_rt_pause(rt, str(r->container_id), false, err) < 0)
        return cl_err_prefix(err, "ResumeContainer");
    return empty(resp, len);
}

static int a_exec_process(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                          size_t *len, struct cl_err *err)
{
    const Grpc__ExecProcessRequest *r = (const Grpc__ExecProcessRequest *)m;
    if (!r->process)
        return cl_err_set(err, CL_EINVAL, "ExecProcess: process missing");
    CL_AUTO(json_t) *proc = cl_agent_oci_to_json(&r->process->base, err);
    if (!proc)
        return cl_err_prefix(err, "ExecProcess");
    CL_AUTO(cl_str) *text = json_dumps(proc, JSON_COMPACT);
    if (!text)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    if (cl_agent_rt_exec(rt, str(r->container_id), str(r->exec_id), text, strlen(text), err) < 0)
        return cl_err_prefix(err, "ExecProcess");
    return empty(resp, len);
}

static int a_signal_process(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                            size_t *len, struct cl_err *err)
{
    const Grpc__SignalProcessRequest *r = (const Grpc__SignalProcessRequest *)m;
    if (r->signal > 64)
        return cl_err_set(err, CL_EINVAL, "SignalProcess: signal %u out of range", r->signal);
    if (cl_agent_rt_signal(rt, str(r->container_id), str(r->exec_id), (int)r->signal, err) < 0)
        return cl_err_prefix(err, "SignalProcess");
    return empty(resp, len);
}

static int a_wait_process(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                          size_t *len, struct cl_err *err)
{
    const Grpc__WaitProcessRequest *r = (const Grpc__WaitProcessRequest *)m;
    int status = 0;
    if (cl_agent_rt_wait(rt, str(r->container_id), str(r->exec_id), &status, err) < 0)
        return cl_err_prefix(err, "WaitProcess");
    Grpc__WaitProcessResponse out;
    grpc__wait_process_response__init(&out);
    out.status = status;
    return cl_ttrpc_pack(&out.base, resp, len, err);
}

/* ---- stdio ---- */

static int a_write_stdin(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                         size_t *len, struct cl_err *err)
{
    const Grpc__WriteStreamRequest *r = (const Grpc__WriteStreamRequest *)m;
    size_t w = 0;
    if (cl_agent_rt_write(rt, str(r->container_id), str(r->exec_id), r->data.data, r->data.len, &w,
                          err) < 0)
        return cl_err_prefix(err, "WriteStdin");
    Grpc__WriteStreamResponse out;
    grpc__write_stream_response__init(&out);
    out.len = (uint32_t)w;
    return cl_ttrpc_pack(&out.base, resp, len, err);
}

static int read_stream(struct cl_agent_rt *rt, const ProtobufCMessage *m, bool err_stream,
                       cl_bytes **resp, size_t *len, struct cl_err *err)
{
    const Grpc__ReadStreamRequest *r = (const Grpc__ReadStreamRequest *)m;
    CL_AUTO(cl_bytes) *data = NULL;
    size_t n = 0;
    if (cl_agent_rt_read(rt, str(r->container_id), str(r->exec_id), err_stream, r->len, &data, &n,
                         err) < 0)
        return cl_err_prefix(err, "%s", err_stream ? "ReadStderr" : "ReadStdout");
    Grpc__ReadStreamResponse out;
    grpc__read_stream_response__init(&out);
    out.data.data = data;
    out.data.len = n;
    return cl_ttrpc_pack(&out.base, resp, len, err);
}

static int a_read_stdout(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                         size_t *len, struct cl_err *err)
{
    return read_stream(rt, m, false, resp, len, err);
}

static int a_read_stderr(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                         size_t *len, struct cl_err *err)
{
    return read_stream(rt, m, true, resp, len, err);
}

static int a_close_stdin(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                         size_t *len, struct cl_err *err)
{
    const Grpc__CloseStdinRequest *r = (const Grpc__CloseStdinRequest *)m;
    if (cl_agent_rt_close_stdin(rt, str(r->container_id), str(r->exec_id), err) < 0)
        return cl_err_prefix(err, "CloseStdin");
    return empty(resp, len);
}

static int a_tty_win_resize(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                            size_t *len, struct cl_err *err)
{
    const Grpc__TtyWinResizeRequest *r = (const Grpc__TtyWinResizeRequest *)m;
    if (cl_agent_rt_resize(rt, str(r->container_id), str(r->exec_id), r->row, r->column, err) < 0)
        return cl_err_prefix(err, "TtyWinResize");
    return empty(resp, len);
}

/* ---- cgroups ---- */

static int a_stats_container(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                             size_t *len, struct cl_err *err)
{
    const Grpc__StatsContainerRequest *r = (const Grpc__StatsContainerRequest *)m;
    struct cl_agent_stats s;
    if (cl_agent_rt_stats(rt, str(r->container_id), &s, err) < 0)
        return cl_err_prefix(err, "StatsContainer");
    Grpc__CpuUsage cu;
    grpc__cpu_usage__init(&cu);
    cu.total_usage = s.cpu_total_ns;
    cu.usage_in_kernelmode = s.cpu_kernel_ns;
    cu.usage_in_usermode = s.cpu_user_ns;
    Grpc__CpuStats cpu;
    grpc__cpu_stats__init(&cpu);
    cpu.cpu_usage = &cu;
    Grpc__MemoryData md;
    grpc__memory_data__init(&md);
    md.usage = s.mem_usage;
    md.max_usage = s.mem_max_usage;
    md.failcnt = s.mem_failcnt;
    md.limit = s.mem_limit;
    Grpc__MemoryStats mem;
    grpc__memory_stats__init(&mem);
    mem.cache = s.mem_cache;
    mem.usage = &md;
    mem.use_hierarchy = true;
    Grpc__PidsStats pids;
    grpc__pids_stats__init(&pids);
    pids.current = s.pids_current;
    pids.limit = s.pids_limit;
    Grpc__CgroupStats cg;
    grpc__cgroup_stats__init(&cg);
    cg.cpu_stats = &cpu;
    cg.memory_stats = &mem;
    cg.pids_stats = &pids;
    Grpc__StatsContainerResponse out;
    grpc__stats_container_response__init(&out);
    out.cgroup_stats = &cg;
    /* the sandbox's interfaces: every container shares the sandbox's network */
    struct cl_agent_netstat *ns = NULL;
    size_t nn = 0;
    struct cl_err e2 = {0};
    if (cl_agent_net_stats(&ns, &nn, &e2) < 0)
        cl_debug("agent: StatsContainer without network statistics: %s", e2.msg);
    Grpc__NetworkStats *nsv = calloc(nn ? nn : 1, sizeof *nsv);
    Grpc__NetworkStats **nsp = calloc(nn ? nn : 1, sizeof *nsp);
    for (size_t i = 0; nsv && nsp && i < nn; i++) {
        grpc__network_stats__init(&nsv[i]);
        nsv[i].name = ns[i].name;
        nsv[i].rx_bytes = ns[i].rx_bytes;
        nsv[i].rx_packets = ns[i].rx_packets;
        nsv[i].rx_errors = ns[i].rx_errors;
        nsv[i].rx_dropped = ns[i].rx_dropped;
        nsv[i].tx_bytes = ns[i].tx_bytes;
        nsv[i].tx_packets = ns[i].tx_packets;
        nsv[i].tx_errors = ns[i].tx_errors;
        nsv[i].tx_dropped = ns[i].tx_dropped;
        nsp[i] = &nsv[i];
    }
    if (nsv && nsp) {
        out.network_stats = nsp;
        out.n_network_stats = nn;
    }
    int rc = cl_ttrpc_pack(&out.base, resp, len, err);
    free(nsv), free(nsp), free(ns);
    return rc;
}

static int a_get_oom_event(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                           size_t *len, struct cl_err *err)
{
    (void)m;
    CL_AUTO(cl_str) *cid = NULL;
    if (cl_agent_rt_oom_wait(rt, &cid, err) < 0)
        return cl_err_prefix(err, "GetOOMEvent");
    Grpc__OOMEvent out;
    grpc__oomevent__init(&out);
    out.container_id = cid;
    return cl_ttrpc_pack(&out.base, resp, len, err);
}

/* ---- files and the guest ---- */

static int a_copy_file(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                       size_t *len, struct cl_err *err)
{
    const Grpc__CopyFileRequest *r = (const Grpc__CopyFileRequest *)m;
    struct cl_agent_copy c = {str(r->path), r->file_size, r->file_mode, r->dir_mode, r->uid,
                              r->gid,       r->offset,    r->data.data, r->data.len};
    if (cl_agent_rt_copy_file(rt, &c, err) < 0)
        return cl_err_prefix(err, "CopyFile");
    return empty(resp, len);
}

static int a_get_guest_details(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                               size_t *len, struct cl_err *err)
{
    (void)rt;
    const Grpc__GuestDetailsRequest *r = (const Grpc__GuestDetailsRequest *)m;
    Grpc__GuestDetailsResponse out;
    grpc__guest_details_response__init(&out);
    if (r->mem_block_size) {
        size_t n = 0;
        struct cl_err e = {0};
        CL_AUTO(cl_bytes) *b =
            cl_file_read("/sys/devices/system/memory/block_size_bytes", 64, &n, &e);
        if (b)
            out.mem_block_size_bytes = strtoull((const char *)b, NULL, 16);
    }
    struct stat st;
    if (r->mem_hotplug_probe)
        out.support_mem_hotplug_probe = stat("/sys/devices/system/memory/probe", &st) == 0;
    static const char *const handlers[] = {CL_AGENT_STORAGE_GUEST_PULL, "local", "ephemeral"};
    Grpc__AgentDetails d;
    grpc__agent_details__init(&d);
    d.version = (char *)CL_AGENT_VERSION;
    d.init_daemon = getpid() == 1;
    d.storage_handlers = (char **)(uintptr_t)handlers;
    d.n_storage_handlers = CL_ARRAY_LEN(handlers);
    d.supports_seccomp = true; /* runc with libseccomp */
    out.agent_details = &d;
    return cl_ttrpc_pack(&out.base, resp, len, err);
}

/* ---- network ---- */

static Types__Interface *iface_pb(const struct cl_agent_iface *f, Types__IPAddress *ips,
                                  Types__IPAddress **ipp, char masks[][4], Types__Interface *out)
{
    types__interface__init(out);
    out->name = (char *)(uintptr_t)f->name;
    out->device = (char *)(uintptr_t)f->name;
    out->hwaddr = (char *)(uintptr_t)f->hwaddr;
    out->mtu = f->mtu;
    out->raw_flags = f->flags;
    for (size_t i = 0; i < f->naddrs; i++) {
        types__ipaddress__init(&ips[i]);
        ips[i].family = f->addrs[i].family == 6 ? TYPES__IPFAMILY__v6 : TYPES__IPFAMILY__v4;
        ips[i].address = (char *)(uintptr_t)f->addrs[i].address;
        snprintf(masks[i], 4, "%u", f->addrs[i].prefix);
        ips[i].mask = masks[i];
        ipp[i] = &ips[i];
    }
    out->n_ipaddresses = f->naddrs;
    out->ipaddresses = ipp;
    return out;
}

static int a_update_interface(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                              size_t *len, struct cl_err *err)
{
    (void)rt;
    const Grpc__UpdateInterfaceRequest *r = (const Grpc__UpdateInterfaceRequest *)m;
    const Types__Interface *in = r->interface;
    if (!in)
        return cl_err_set(err, CL_EINVAL, "UpdateInterface: interface missing");
    if (in->n_ipaddresses > CL_AGENT_MAX_ADDRS)
        return cl_err_set(err, CL_ELIMIT, "UpdateInterface: more than %d addresses",
                          CL_AGENT_MAX_ADDRS);
    struct cl_agent_iface want, got;
    memset(&want, 0, sizeof want);
    if (strlen(str(in->name)) >= sizeof want.name ||
        strlen(str(in->hwaddr)) >= sizeof want.hwaddr || in->mtu > UINT32_MAX)
        return cl_err_set(err, CL_EINVAL, "UpdateInterface: name, hwAddr or mtu out of range");
    strcpy(want.name, str(in->name));
    strcpy(want.hwaddr, str(in->hwaddr));
    want.mtu = (uint32_t)in->mtu;
    for (size_t i = 0; i < in->n_ipaddresses; i++) {
        const Types__IPAddress *a = in->ipaddresses[i];
        uint64_t pfx = 0;
        if (strlen(str(a->address)) >= sizeof want.addrs[i].address ||
            cl_parse_u64(str(a->mask), 0, 128, &pfx, "IPAddresses[].mask", err) < 0)
            return cl_err_set(err, CL_EINVAL,
                              "UpdateInterface: IPAddresses[%zu] address or mask invalid", i);
        want.addrs[i].family = a->family == TYPES__IPFAMILY__v6 ? 6 : 4;
        strcpy(want.addrs[i].address, str(a->address));
        want.addrs[i].prefix = (unsigned)pfx;
    }
    want.naddrs = in->n_ipaddresses;
    if (cl_agent_net_update(&want, &got, err) < 0)
        return cl_err_prefix(err, "UpdateInterface");
    Types__IPAddress ips[CL_AGENT_MAX_ADDRS], *ipp[CL_AGENT_MAX_ADDRS];
    char masks[CL_AGENT_MAX_ADDRS][4];
    Types__Interface out;
    return cl_ttrpc_pack(&iface_pb(&got, ips, ipp, masks, &out)->base, resp, len, err);
}

static int a_list_interfaces(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                             size_t *len, struct cl_err *err)
{
    (void)rt;
    (void)m;
    struct cl_agent_iface *all = NULL;
    size_t n = 0;
    if (cl_agent_net_list(&all, &n, err) < 0)
        return cl_err_prefix(err, "ListInterfaces");
    Types__IPAddress(*ips)[CL_AGENT_MAX_ADDRS] = calloc(n ? n : 1, sizeof *ips);
    Types__IPAddress *(*ipp)[CL_AGENT_MAX_ADDRS] = calloc(n ? n : 1, sizeof *ipp);
    char(*masks)[CL_AGENT_MAX_ADDRS][4] = calloc(n ? n : 1, sizeof *masks);
    Types__Interface *ifs = calloc(n ? n : 1, sizeof *ifs);
    Types__Interface **ifp = calloc(n ? n : 1, sizeof *ifp);
    int rc = 0;
    if (!ips || !ipp || !masks || !ifs || !ifp) {
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++)
            ifp[i] = iface_pb(&all[i], ips[i], ipp[i], masks[i], &ifs[i]);
        Grpc__Interfaces out;
        grpc__interfaces__init(&out);
        out.n_interfaces = n;
        out.interfaces = ifp;
        rc = cl_ttrpc_pack(&out.base, resp, len, err);
    }
    free(ips), free(ipp), free(masks), free(ifs), free(ifp), free(all);
    return rc;
}

static int routes_reply(cl_bytes **resp, size_t *len, const char *what, struct cl_err *err)
{
    struct cl_agent_route *all = NULL;
    size_t n = 0;
    if (cl_agent_net_routes(&all, &n, err) < 0)
        return cl_err_prefix(err, "%s", what);
    Types__Route *rs = calloc(n ? n : 1, sizeof *rs);
    Types__Route **rp = calloc(n ? n : 1, sizeof *rp);
    int rc = 0;
    if (!rs || !rp) {
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            types__route__init(&rs[i]);
            rs[i].dest = all[i].dest;
            rs[i].gateway = all[i].gateway;
            rs[i].device = all[i].device;
            rs[i].source = all[i].source;
            rs[i].scope = (uint32_t)all[i].scope;
            rs[i].family = all[i].family == 6 ? TYPES__IPFAMILY__v6 : TYPES__IPFAMILY__v4;
            rp[i] = &rs[i];
        }
        Grpc__Routes out;
        grpc__routes__init(&out);
        out.n_routes = n;
        out.routes = rp;
        rc = cl_ttrpc_pack(&out.base, resp, len, err);
    }
    free(rs), free(rp), free(all);
    return rc;
}

static int a_list_routes(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                         size_t *len, struct cl_err *err)
{
    (void)rt;
    (void)m;
    return routes_reply(resp, len, "ListRoutes", err);
}

static int a_update_routes(struct cl_agent_rt *rt, const ProtobufCMessage *m, cl_bytes **resp,
                           size_t *len, struct cl_err *err)
{
    (void)rt;
    const Grpc__UpdateRoutesRequest *r = (const Grpc__UpdateRoutesRequest *)m;
    size_t n = r->routes ? r->routes->n_routes : 0;
    if (n > CL_AGENT_MAX_ROUTES)
        return cl_err_set(err, CL_ELIMIT, "UpdateRoutes: more than %d routes", CL_AGENT_MAX_ROUTES);
    struct cl_agent_route *want = calloc(n ? n : 1, sizeof *want);
    if (!want)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const Types__Route *ro = r->routes->routes[i];
        struct cl_agent_route *w = &want[i];
        if (strlen(str(ro->dest)) >= sizeof w->dest ||
            strlen(str(ro->gateway)) >= sizeof w->gateway ||
            strlen(str(ro->device)) >= sizeof w->device ||
            strlen(str(ro->source)) >= sizeof w->source || ro->scope > 255) {
            rc =
                cl_err_set(err, CL_EINVAL, "UpdateRoutes: routes[%zu] has a field out of range", i);
            break;
        }
        strcpy(w->dest, str(ro->dest));
        strcpy(w->gateway, str(ro->gateway));
        strcpy(w->device, str(ro->device));
        strcpy(w->source, str(ro->source));
        w->scope = (int)ro->scope;
        w->family = ro->family == TYPES__IPFAMILY__v6 ? 6 : 4;
    }
    if (rc == 0 && cl_agent_net_set_routes(want, n, err) < 0)
        rc = cl_err_prefix(err, "UpdateRoutes");
    free(want);
    return rc < 0 ? rc : routes_reply(resp, len, "UpdateRoutes", err);
}

const struct cl_agent_action cl_agent_actions[] = {
    {"CreateSandbox", a_create_sandbox},
    {"DestroySandbox", a_destroy_sandbox},
    {"CreateContainer", a_create_container},
    {"StartContainer", a_start_container},
    {"RemoveContainer", a_remove_container},
    {"ExecProcess", a_exec_process},
    {"UpdateContainer", a_update_container},
    {"PauseContainer", a_pause_container},
    {"ResumeContainer", a_resume_container},
    {"SignalProcess", a_signal_process},
    {"WaitProcess", a_wait_process},
    {"WriteStdin", a_write_stdin},
    {"ReadStdout", a_read_stdout},
    {"ReadStderr", a_read_stderr},
    {"CloseStdin", a_close_stdin},
    {"TtyWinResize", a_tty_win_resize},
    {"StatsContainer", a_stats_container},
    {"GetOOMEvent", a_get_oom_event},
    {"CopyFile", a_copy_file},
    {"GetGuestDetails", a_get_guest_details},
    {"UpdateInterface", a_update_interface},
    {"ListInterfaces", a_list_interfaces},
    {"UpdateRoutes", a_update_routes},
    {"ListRoutes", a_list_routes},
    {NULL, NULL},
};
const size_t cl_agent_nactions = CL_ARRAY_LEN(cl_agent_actions) - 1;
