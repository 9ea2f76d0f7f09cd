// SPDX-License-Identifier: Apache-2.0
/*
 * Stats: the agent's StatsContainer (the container's cgroup in the guest) mapped onto
 * containerd's cgroup v1 Metrics (pids, CPU usage and throttling, memory usage/swap/kernel
 * and the named counters of memory.stat), returned as an Any of type
 * "io.containerd.cgroups.v1.Metrics".
 */
#include "shim/shim_int.h"

#include <protobuf-c/protobuf-c.h>
#include <string.h>

#include "agent.pb-c.h"
#include "cd_metrics.pb-c.h"
#include "cd_shim.pb-c.h"

static void mem_entry(const Grpc__MemoryData *d, Io__Containerd__Cgroups__V1__MemoryEntry *e)
{
    if (!d)
        return;
    e->usage = d->usage;
    e->max = d->max_usage;
    e->failcnt = d->failcnt;
    e->limit = d->limit;
}

/* memory.stat keys → MemoryStat fields */
static const struct {
    const char *key;
    size_t off;
} mem_keys[] = {
#define M(k, f)                                                                                    \
    {                                                                                              \
        k, offsetof(Io__Containerd__Cgroups__V1__MemoryStat, f)                                    \
    }
    M("cache", cache),
    M("rss", rss),
    M("rss_huge", rss_huge),
    M("mapped_file", mapped_file),
    M("dirty", dirty),
    M("writeback", writeback),
    M("pgpgin", pg_pg_in),
    M("pgpgout", pg_pg_out),
    M("pgfault", pg_fault),
    M("pgmajfault", pg_maj_fault),
    M("inactive_anon", inactive_anon),
    M("active_anon", active_anon),
    M("inactive_file", inactive_file),
    M("active_file", active_file),
    M("unevictable", unevictable),
#undef M
};

int cl_shim_stats(struct cl_shim *s, const char *id, cl_bytes **resp, size_t *resp_len,
                  struct cl_err *err)
{
    pthread_mutex_lock(&s->lock);
    struct cl_shim_container *ct = NULL;
    for (struct cl_shim_container *c = s->containers; c; c = c->next)
        if (strcmp(c->id, id) == 0)
            ct = c;
    bool virt = ct && ct->virtual_sandbox;
    pthread_mutex_unlock(&s->lock);
    if (!ct)
        return cl_err_set(err, CL_ENOTFOUND, "container %s: not found in this shim", id);
    if (virt)
        return cl_err_set(err, CL_EUNSUPPORTED,
                          "container %s is the pod sandbox: ask its containers", id);
    struct cl_shim_agent *ag = cl_shim_agent_get(s);
    if (!ag)
        return cl_err_stage(err, CL_EIO, "stats", "container %s: the sandbox VM is gone", id);
    Grpc__StatsContainerRequest sr;
    grpc__stats_container_request__init(&sr);
    sr.container_id = (char *)(uintptr_t)id;
    ProtobufCMessage *out = NULL;
    int crc = cl_shim_agent_call(ag, "StatsContainer", &sr.base,
                                 &grpc__stats_container_response__descriptor, 0, &out, err);
    cl_shim_agent_put(s, ag);
    if (crc < 0)
        return err->code;
    const Grpc__StatsContainerResponse *r = (const Grpc__StatsContainerResponse *)out;
    const Grpc__CgroupStats *cg = r->cgroup_stats;

    Io__Containerd__Cgroups__V1__Metrics m;
    io__containerd__cgroups__v1__metrics__init(&m);
    Io__Containerd__Cgroups__V1__PidsStat pids;
    io__containerd__cgroups__v1__pids_stat__init(&pids);
    Io__Containerd__Cgroups__V1__CPUStat cpu;
    io__containerd__cgroups__v1__cpustat__init(&cpu);
    Io__Containerd__Cgroups__V1__CPUUsage usage;
    io__containerd__cgroups__v1__cpuusage__init(&usage);
    Io__Containerd__Cgroups__V1__Throttle thr;
    io__containerd__cgroups__v1__throttle__init(&thr);
    Io__Containerd__Cgroups__V1__MemoryStat mem;
    io__containerd__cgroups__v1__memory_stat__init(&mem);
    Io__Containerd__Cgroups__V1__MemoryEntry mu;
    io__containerd__cgroups__v1__memory_entry__init(&mu);
    Io__Containerd__Cgroups__V1__MemoryEntry ms;
    io__containerd__cgroups__v1__memory_entry__init(&ms);
    Io__Containerd__Cgroups__V1__MemoryEntry mk;
    io__containerd__cgroups__v1__memory_entry__init(&mk);
    if (cg && cg->pids_stats) {
        pids.current = cg->pids_stats->current;
        pids.limit = cg->pids_stats->limit;
        m.pids = &pids;
    }
    if (cg && cg->cpu_stats) {
        const Grpc__CpuUsage *u = cg->cpu_stats->cpu_usage;
        if (u) {
            usage.total = u->total_usage;
            usage.kernel = u->usage_in_kernelmode;
            usage.user = u->usage_in_usermode;
            usage.per_cpu = u->percpu_usage;
            usage.n_per_cpu = u->n_percpu_usage;
            cpu.usage = &usage;
        }
        const Grpc__ThrottlingData *t = cg->cpu_stats->throttling_data;
        if (t) {
            thr.periods = t->periods;
            thr.throttled_periods = t->throttled_periods;
            thr.throttled_time = t->throttled_time;
            cpu.throttling = &thr;
        }
        m.cpu = &cpu;
    }
    if (cg && cg->memory_stats) {
        const Grpc__MemoryStats *g = cg->memory_stats;
        mem.cache = g->cache;
        mem_entry(g->usage, &mu);
        mem_entry(g->swap_usage, &ms);
        mem_entry(g->kernel_usage, &mk);
        mem.usage = &mu;
        mem.swap = &ms;
        mem.kernel = &mk;
        for (size_t i = 0; i < g->n_stats; i++)
            for (size_t k = 0; k < CL_ARRAY_LEN(mem_keys); k++)
                if (g->stats[i]->key && strcmp(g->stats[i]->key, mem_keys[k].key) == 0)
                    *(uint64_t *)((char *)&mem + mem_keys[k].off) = g->stats[i]->value;
        m.memory = &mem;
    }
    size_t n = io__containerd__cgroups__v1__metrics__get_packed_size(&m);
    CL_AUTO(cl_bytes) *packed = malloc(n ? n : 1);
    int rc = 0;
    if (!packed) {
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    } else {
        io__containerd__cgroups__v1__metrics__pack(&m, packed);
        Google__Protobuf__Any any;
        google__protobuf__any__init(&any);
        any.type_url = "io.containerd.cgroups.v1.Metrics";
        any.value.data = packed;
        any.value.len = n;
        Containerd__Task__V2__StatsResponse sresp;
        containerd__task__v2__stats_response__init(&sresp);
        sresp.stats = &any;
        size_t rl = containerd__task__v2__stats_response__get_packed_size(&sresp);
        *resp = malloc(rl ? rl : 1);
        if (!*resp)
            rc = cl_err_set(err, CL_ENOMEM, "out of memory");
        else
            *resp_len = containerd__task__v2__stats_response__pack(&sresp, *resp);
    }
    protobuf_c_message_free_unpacked(out, NULL);
    return rc;
}
