/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sandbox (hostname, DNS, sandbox storages, teardown) and what is read from the
 * containers' cgroups: statistics and OOM kills. cgroup v2 when /sys/fs/cgroup is a v2
 * mount (the guest), else the v1 controllers of a hybrid host (memory, cpuacct, pids).
 */
#include "rt_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define OOM_POLL_MS 200

int cl_agent_rt_sandbox_create(struct cl_agent_rt *rt, const struct cl_agent_sandbox *s,
                               struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (s->hostname && strlen(s->hostname) > CL_AGENT_MAX_HOSTNAME)
        return cl_err_set(err, CL_EINVAL, "hostname longer than %d bytes", CL_AGENT_MAX_HOSTNAME);
    if (s->ndns > CL_AGENT_MAX_DNS)
        return cl_err_set(err, CL_ELIMIT, "more than %d dns lines", CL_AGENT_MAX_DNS);
    for (size_t i = 0; i < s->ndns; i++)
        if (strchr(s->dns[i], '\n') || strlen(s->dns[i]) > 256)
            return cl_err_set(err, CL_EINVAL, "dns[%zu]: one line of at most 256 bytes", i);
    pthread_mutex_lock(&rt->lock);
    bool had = rt->sandbox;
    rt->sandbox = true;
    pthread_mutex_unlock(&rt->lock);
    if (had)
        return cl_err_set(err, CL_EEXISTS, "the sandbox already exists");
    int rc = 0;
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/sandbox", rt->run_dir);
    if (cl_mkdir_p(dir, 0755, err) < 0) {
        rc = err->code;
        goto out;
    }
    if (s->hostname && *s->hostname) {
        if (sethostname(s->hostname, strlen(s->hostname)) < 0) {
            rc = cl_err_set(err, CL_EIO, "sethostname '%s': %s", s->hostname, strerror(errno));
            goto out;
        }
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/hostname", dir);
        CL_AUTO(cl_str) *t = cl_strdupf("%s\n", s->hostname);
        if (!t || (rc = cl_file_write_atomic(p, t, strlen(t), 0644, err)) < 0) {
            rc = t ? rc : cl_err_set(err, CL_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (s->ndns) {
        size_t cap = 1;
        for (size_t i = 0; i < s->ndns; i++)
            cap += strlen(s->dns[i]) + 1;
        CL_AUTO(cl_str) *t = malloc(cap);
        if (!t) {
            rc = cl_err_set(err, CL_ENOMEM, "out of memory");
            goto out;
        }
        t[0] = 0;
        for (size_t i = 0; i < s->ndns; i++)
            strcat(strcat(t, s->dns[i]), "\n");
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/resolv.conf", dir);
        if ((rc = cl_file_write_atomic(p, t, strlen(t), 0644, err)) < 0)
            goto out;
    }
    for (size_t i = 0; i < s->nstorages && rc == 0; i++)
        if ((rc = cl_agent_storage_setup(rt, &s->storages[i], err)) < 0)
            cl_err_prefix(err, "storages[%zu]", i);
out:
    if (rc < 0) {
        pthread_mutex_lock(&rt->lock);
        rt->sandbox = false;
        pthread_mutex_unlock(&rt->lock);
        return rc;
    }
    cl_info("agent: sandbox %s created",
            s->sandbox_id && *s->sandbox_id ? s->sandbox_id : "(no id)");
    return 0;
}

int cl_agent_rt_sandbox_destroy(struct cl_agent_rt *rt, struct cl_err *err)
{
    (void)err;
    for (;;) {
        pthread_mutex_lock(&rt->lock);
        struct cl_rt_ctr *c = rt->ctrs;
        while (c && c->busy)
            c = c->next;
        char id[CL_AGENT_RT_MAX_ID + 1] = "";
        if (c)
            snprintf(id, sizeof id, "%s", c->id);
        bool busy_left = !c && rt->ctrs;
        pthread_mutex_unlock(&rt->lock);
        if (!c && !busy_left)
            break;
        if (!c) { /* a create or remove in flight: let it finish */
            usleep(20000);
            continue;
        }
        struct cl_err e = {0};
        if (cl_agent_rt_remove(rt, id, 0, &e) < 0 && e.code != CL_ENOTFOUND)
            cl_warn("agent: destroy sandbox: %s", e.msg);
    }
    pthread_mutex_lock(&rt->lock);
    rt->sandbox = false;
    pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
    static const char *const files[] = {"sandbox/hostname", "sandbox/resolv.conf", "sandbox"};
    for (size_t i = 0; i < CL_ARRAY_LEN(files); i++) {
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/%s", rt->run_dir, files[i]);
        if (i + 1 < CL_ARRAY_LEN(files))
            (void)unlink(p);
        else
            (void)rmdir(p);
    }
    return 0;
}

/* ---- cgroup files ---- */

static bool read_u64(const char *dir, const char *file, uint64_t *v)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    FILE *f = fopen(p, "re");
    if (!f)
        return false;
    char buf[64] = "";
    bool ok = fgets(buf, sizeof buf, f) != NULL;
    fclose(f);
    if (!ok)
        return false;
    if (strncmp(buf, "max", 3) == 0) {
        *v = UINT64_MAX;
        return true;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(buf, &end, 10);
    if (errno || end == buf)
        return false;
    *v = x;
    return true;
}

/* "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control). */
static bool read_key(const char *dir, const char *file, const char *key, uint64_t *v)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, file);
    FILE *f = fopen(p, "re");
    if (!f)
        return false;
    char line[256];
    bool found = false;
    size_t kl = strlen(key);
    while (!found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
            char *end = NULL;
            unsigned long long x = strtoull(line + kl + 1, &end, 10);
            if (end != line + kl + 1) {
                *v = x;
                found = true;
            }
        }
    }
    fclose(f);
    return found;
}

int cl_agent_rt_stats(struct cl_agent_rt *rt, const char *cid, struct cl_agent_stats *out,
                      struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (cl_agent_id_check(cid, "container_id", err) < 0)
        return err->code;
    pthread_mutex_lock(&rt->lock);
    bool found = cl_rt_ctr_find(rt, cid) != NULL;
    pthread_mutex_unlock(&rt->lock);
    if (!found)
        return cl_err_set(err, CL_ENOTFOUND, "container '%s' does not exist", cid);
    struct cl_agent_stats s;
    memset(&s, 0, sizeof s);
    char mem[PATH_MAX], cpu[PATH_MAX], pids[PATH_MAX];
    bool v2 = false;
    cl_rt_cgroup_path(rt, cid, "memory", mem, sizeof mem, &v2);
    cl_rt_cgroup_path(rt, cid, "cpuacct", cpu, sizeof cpu, &v2);
    cl_rt_cgroup_path(rt, cid, "pids", pids, sizeof pids, &v2);
    s.v2 = v2;
    bool any;
    if (v2) {
        uint64_t us = 0;
        any = read_key(cpu, "cpu.stat", "usage_usec", &us);
        s.cpu_total_ns = us * 1000;
        if (read_key(cpu, "cpu.stat", "user_usec", &us))
            s.cpu_user_ns = us * 1000;
        if (read_key(cpu, "cpu.stat", "system_usec", &us))
            s.cpu_kernel_ns = us * 1000;
        any = read_u64(mem, "memory.current", &s.mem_usage) || any;
        (void)read_u64(mem, "memory.peak", &s.mem_max_usage);
        (void)read_u64(mem, "memory.max", &s.mem_limit);
        (void)read_key(mem, "memory.events", "max", &s.mem_failcnt);
        (void)read_key(mem, "memory.stat", "file", &s.mem_cache);
    } else {
        uint64_t ticks = 0;
        any = read_u64(cpu, "cpuacct.usage", &s.cpu_total_ns);
        /* cpuacct.stat counts USER_HZ ticks */
        long hz = sysconf(_SC_CLK_TCK);
        if (read_key(cpu, "cpuacct.stat", "user", &ticks) && hz > 0)
            s.cpu_user_ns = ticks * (1000000000ull / (uint64_t)hz);
        if (read_key(cpu, "cpuacct.stat", "system", &ticks) && hz > 0)
            s.cpu_kernel_ns = ticks * (1000000000ull / (uint64_t)hz);
        any = read_u64(mem, "memory.usage_in_bytes", &s.mem_usage) || any;
        (void)read_u64(mem, "memory.max_usage_in_bytes", &s.mem_max_usage);
        (void)read_u64(mem, "memory.limit_in_bytes", &s.mem_limit);
        (void)read_u64(mem, "memory.failcnt", &s.mem_failcnt);
        (void)read_key(mem, "memory.stat", "cache", &s.mem_cache);
    }
    (void)read_u64(pids, "pids.current", &s.pids_current);
    (void)read_u64(pids, "pids.max", &s.pids_limit);
    if (!any)
        return cl_err_set(err, CL_ENOTFOUND, "container '%s': no cgroup statistics under %s", cid,
                          mem);
    *out = s;
    return 0;
}

/* OOM kills counted by the container's memory cgroup so far. */
static uint64_t oom_kills(struct cl_agent_rt *rt, const char *cid)
{
    char mem[PATH_MAX];
    bool v2 = false;
    uint64_t n = 0;
    cl_rt_cgroup_path(rt, cid, "memory", mem, sizeof mem, &v2);
    if (!read_key(mem, v2 ? "memory.events" : "memory.oom_control", "oom_kill", &n))
        n = 0;
    return n;
}

int cl_agent_rt_oom_wait(struct cl_agent_rt *rt, cl_str **cid, struct cl_err *err)
{
    pthread_mutex_lock(&rt->lock);
    while (!rt->closing) {
        for (struct cl_rt_ctr *c = rt->ctrs; c; c = c->next) {
            if (c->busy)
                continue;
            /* reading a small cgroup file under the lock: no other blocking I/O here */
            uint64_t n = oom_kills(rt, c->id);
            if (n > c->oom_seen) {
                c->oom_seen = n;
                *cid = strdup(c->id);
                pthread_mutex_unlock(&rt->lock);
                return *cid ? 0 : cl_err_set(err, CL_ENOMEM, "out of memory");
            }
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += OOM_POLL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&rt->cond, &rt->lock, &ts);
    }
    pthread_mutex_unlock(&rt->lock);
    return cl_err_set(err, CL_EIO, "agent stopping");
}
