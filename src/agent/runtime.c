/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime's ground: configuration, the reaper thread that collects every child of the
 * agent (runc helpers and, as child subreaper, every container process runc leaves behind),
 * running runc with its error quoted from its log, process records with their reference
 * counts, the console socket that receives a pty from runc, and tree removal.
 *
 * Why one reaper: runc create and runc exec --detach leave the container's processes
 * orphaned; as subreaper the agent inherits them, and only a waitid(P_ALL) loop sees their
 * exits. The helpers the agent runs itself are registered in `waits` before the reaper can
 * see them (spawned under the lock the reaper needs to record an exit), and a process whose
 * pid is learnt later from a pid file finds its status in the orphan ring if it was quicker.
 */
#include "rt_int.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- small helpers ---- */

int cl_agent_id_check(const char *id, const char *what, struct cl_err *err)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > CL_AGENT_RT_MAX_ID)
        return cl_err_set(err, CL_EINVAL, "%s: must be 1..%d bytes", what, CL_AGENT_RT_MAX_ID);
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
            return cl_err_set(err, CL_EINVAL, "%s '%.64s': character %zu (%#x) not allowed", what,
                              id, i, (unsigned char)c);
    }
    return 0;
}

const char *cl_agent_rt_run_dir(const struct cl_agent_rt *rt)
{
    return rt->run_dir;
}

int cl_rt_exit_code(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 255;
}

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static bool past(const struct timespec *ts)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > ts->tv_sec || (now.tv_sec == ts->tv_sec && now.tv_nsec >= ts->tv_nsec);
}

/* ---- the reaper ---- */

static void record_exit(struct cl_agent_rt *rt, pid_t pid, int wstatus)
{
    for (size_t i = 0; i < CL_ARRAY_LEN(rt->waits); i++) {
        if (rt->waits[i] && rt->waits[i]->pid == pid) {
            rt->waits[i]->status = wstatus;
            rt->waits[i]->done = true;
            return;
        }
    }
    for (struct cl_rt_ctr *c = rt->ctrs; c; c = c->next) {
        struct cl_rt_proc *ps[2] = {c->init, c->execs};
        for (int k = 0; k < 2; k++) {
            for (struct cl_rt_proc *p = ps[k]; p; p = k ? p->next : NULL) {
                if (p->pid == pid && !p->exited) {
                    p->exited = true;
                    p->status = cl_rt_exit_code(wstatus);
                    if (p == c->init)
                        c->state = RT_STOPPED;
                    return;
                }
            }
        }
    }
    rt->orphans[rt->orphan_next].pid = pid;
    rt->orphans[rt->orphan_next].status = wstatus;
    rt->orphan_next = (rt->orphan_next + 1) % RT_ORPHANS;
    if (rt->norphans < RT_ORPHANS)
        rt->norphans++;
}

bool cl_rt_orphan_take(struct cl_agent_rt *rt, pid_t pid, int *status)
{
    for (size_t i = 0; i < rt->norphans; i++) {
        if (rt->orphans[i].pid == pid) {
            *status = rt->orphans[i].status;
            rt->orphans[i].pid = 0;
            return true;
        }
    }
    return false;
}

/* Blocks in waitid until a child ends (no polling while containers run); with no child at
 * all, sleeps until the next spawn. cl_agent_rt_free wakes a blocked waitid by forking a
 * child that exits at once. */
static void *reaper_main(void *arg)
{
    struct cl_agent_rt *rt = arg;
    pthread_mutex_lock(&rt->lock);
    while (!rt->stopping) {
        unsigned long gen = rt->spawn_gen;
        pthread_mutex_unlock(&rt->lock);
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int r = waitid(P_ALL, 0, &si, WEXITED | WNOWAIT);
        int e = errno, st = 0;
        pid_t pid = r == 0 && si.si_pid > 0 ? waitpid(si.si_pid, &st, 0) : -1;
        pthread_mutex_lock(&rt->lock);
        if (pid > 0) {
            record_exit(rt, pid, st);
            pthread_cond_broadcast(&rt->cond);
        } else if (r < 0 && e == ECHILD) {
            while (rt->spawn_gen == gen && !rt->stopping)
                pthread_cond_wait(&rt->cond, &rt->lock);
        }
    }
    pthread_mutex_unlock(&rt->lock);
    return NULL;
}

/* ---- running helpers ---- */

int cl_rt_run(struct cl_agent_rt *rt, char *const argv[], const int fds[3], long timeout_ms,
              int *status, struct cl_err *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int i = 0; i < 3; i++) {
        int fd = fds ? fds[i] : -1;
        if (fd < 0)
            posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
        else /* glibc clears FD_CLOEXEC when fd == i */
            posix_spawn_file_actions_adddup2(&fa, fd, i);
    }
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    struct cl_rt_child ch = {0};
    size_t slot = SIZE_MAX;
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < CL_ARRAY_LEN(rt->waits); i++)
        if (!rt->waits[i]) {
            slot = i;
            break;
        }
    int rc = 0;
    if (slot == SIZE_MAX) {
        rc = cl_err_set(err, CL_ELIMIT, "%s: more than %zu helpers at once", argv[0],
                        CL_ARRAY_LEN(rt->waits));
    } else {
        int e = posix_spawnp(&ch.pid, argv[0], &fa, &at, argv, environ);
        if (e != 0) {
            rc = cl_err_set(err, e == ENOENT ? CL_ENOTFOUND : CL_EIO, "%s: cannot run: %s", argv[0],
                            strerror(e));
        } else {
            rt->waits[slot] = &ch;
            rt->spawn_gen++;
            pthread_cond_broadcast(&rt->cond);
            struct timespec dl;
            deadline_in(&dl, timeout_ms > 0 ? timeout_ms : CL_AGENT_RUNC_TIMEOUT_MS);
            bool killed = false;
            while (!ch.done) {
                pthread_cond_timedwait(&rt->cond, &rt->lock, &dl);
                if (!ch.done && past(&dl)) {
                    if (killed) /* the reaper stopped: nobody will collect it */
                        break;
                    kill(ch.pid, SIGKILL);
                    killed = true;
                    deadline_in(&dl, 5000);
                }
            }
            rt->waits[slot] = NULL;
            if (killed)
                rc = cl_err_set(err, CL_EEXPIRED, "%s: no answer within %ld ms, killed", argv[0],
                                timeout_ms > 0 ? timeout_ms : CL_AGENT_RUNC_TIMEOUT_MS);
            *status = ch.status;
        }
    }
    pthread_mutex_unlock(&rt->lock);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return rc;
}

/* The message of runc's last error line (its --log-format json log); "" when none. */
static void runc_log_tail(const char *log, char *out, size_t cap)
{
    out[0] = 0;
    int fd = log ? open(log, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0)
        return;
    char buf[8192];
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)sizeof buf - 1 ? end - (off_t)sizeof buf + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, from);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = 0;
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *lvl = json_string_value(json_object_get(j, "level"));
        const char *msg = json_string_value(json_object_get(j, "msg"));
        if (msg && lvl && (strcmp(lvl, "error") == 0 || strcmp(lvl, "fatal") == 0))
            snprintf(out, cap, "%s", msg);
        json_decref(j);
    }
}

int cl_rt_runc(struct cl_agent_rt *rt, const char *log, const int fds[3], char *const args[],
               struct cl_err *err)
{
    char *argv[32];
    size_t n = 0;
    argv[n++] = rt->runc;
    argv[n++] = (char *)"--root";
    argv[n++] = rt->runc_root;
    if (log) {
        argv[n++] = (char *)"--log";
        argv[n++] = (char *)(uintptr_t)log;
        argv[n++] = (char *)"--log-format";
        argv[n++] = (char *)"json";
    }
    for (size_t i = 0; args[i]; i++) {
        if (n >= CL_ARRAY_LEN(argv) - 1)
            return cl_err_set(err, CL_EINVAL, "runc: too many arguments");
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    int st = 0;
    if (cl_rt_run(rt, argv, fds, CL_AGENT_RUNC_TIMEOUT_MS, &st, err) < 0)
        return cl_err_prefix(err, "runc %s", args[0]);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    char why[400];
    runc_log_tail(log, why, sizeof why);
    return cl_err_stage(err, CL_EIO, "runc", "runc %s failed (exit %d)%s%s", args[0],
                        cl_rt_exit_code(st), why[0] ? ": " : "", why);
}

/* ---- process records ---- */

struct cl_rt_ctr *cl_rt_ctr_find(struct cl_agent_rt *rt, const char *cid)
{
    for (struct cl_rt_ctr *c = rt->ctrs; c; c = c->next)
        if (!c->busy && strcmp(c->id, cid) == 0)
            return c;
    return NULL;
}

int cl_rt_proc_get(struct cl_agent_rt *rt, const char *cid, const char *exec_id,
                   struct cl_rt_proc **out, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (cl_agent_id_check(cid, "container_id", err) < 0)
        return err->code;
    if (exec_id && *exec_id && cl_agent_id_check(exec_id, "exec_id", err) < 0)
        return err->code;
    pthread_mutex_lock(&rt->lock);
    struct cl_rt_ctr *c = cl_rt_ctr_find(rt, cid);
    struct cl_rt_proc *p = NULL;
    if (c) {
        if (!exec_id || !*exec_id || strcmp(exec_id, cid) == 0)
            p = c->init;
        for (struct cl_rt_proc *e = c->execs; e && !p; e = e->next)
            if (strcmp(e->exec_id, exec_id) == 0)
                p = e;
    }
    if (p)
        p->refs++;
    pthread_mutex_unlock(&rt->lock);
    if (!c)
        return cl_err_set(err, CL_ENOTFOUND, "container '%s' does not exist", cid);
    if (!p)
        return cl_err_set(err, CL_ENOTFOUND, "container '%s' has no process '%s'", cid, exec_id);
    *out = p;
    return 0;
}

static void closefd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void proc_free(struct cl_rt_proc *p)
{
    if (p->tty && p->out_fd == p->in_fd)
        p->in_fd = -1;
    closefd(&p->in_fd);
    closefd(&p->out_fd);
    closefd(&p->err_fd);
    closefd(&p->wake[0]);
    closefd(&p->wake[1]);
    pthread_mutex_destroy(&p->in_lock);
    pthread_mutex_destroy(&p->out_lock);
    pthread_mutex_destroy(&p->err_lock);
    free(p);
}

void cl_rt_proc_put(struct cl_agent_rt *rt, struct cl_rt_proc *p)
{
    pthread_mutex_lock(&rt->lock);
    bool last = --p->refs == 0;
    pthread_mutex_unlock(&rt->lock);
    if (last)
        proc_free(p);
}

void cl_rt_proc_release_locked(struct cl_agent_rt *rt, struct cl_rt_proc *p)
{
    (void)rt;
    if (!p)
        return;
    p->removed = true;
    if (p->wake[1] >= 0) {
        ssize_t w = write(p->wake[1], "x", 1);
        (void)w;
    }
    if (--p->refs == 0)
        proc_free(p);
}

struct cl_rt_proc *cl_rt_proc_new(const char *exec_id, struct cl_err *err)
{
    struct cl_rt_proc *p = calloc(1, sizeof *p);
    if (!p) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    p->refs = 1;
    snprintf(p->exec_id, sizeof p->exec_id, "%s", exec_id ? exec_id : "");
    p->in_fd = p->out_fd = p->err_fd = -1;
    p->wake[0] = p->wake[1] = -1;
    pthread_mutex_init(&p->in_lock, NULL);
    pthread_mutex_init(&p->out_lock, NULL);
    pthread_mutex_init(&p->err_lock, NULL);
    if (pipe2(p->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        cl_err_set(err, CL_EIO, "pipe: %s", strerror(errno));
        proc_free(p);
        return NULL;
    }
    return p;
}

void cl_rt_proc_set_pid_locked(struct cl_agent_rt *rt, struct cl_rt_proc *p, pid_t pid)
{
    int st = 0;
    p->pid = pid;
    if (cl_rt_orphan_take(rt, pid, &st)) {
        p->exited = true;
        p->status = cl_rt_exit_code(st);
    }
}

int cl_rt_read_pid(const char *path, pid_t *pid, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    size_t n = 0;
    CL_AUTO(cl_bytes) *b = cl_file_read(path, 64, &n, err);
    if (!b)
        return cl_err_prefix(err, "pid file");
    uint64_t v = 0;
    char *nl = strchr((char *)b, '\n');
    if (nl)
        *nl = 0;
    if (cl_parse_u64((const char *)b, 1, INT32_MAX, &v, "pid file", err) < 0)
        return err->code;
    *pid = (pid_t)v;
    return 0;
}

/* ---- console socket ---- */

int cl_rt_console_listen(const char *path, struct cl_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return cl_err_set(err, CL_EINVAL, "console socket path '%.64s...' too long", path);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cl_err_set(err, CL_EIO, "console socket: %s", strerror(errno));
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1) < 0) {
        int e = errno;
        close(fd);
        return cl_err_set(err, CL_EIO, "console socket %s: %s", path, strerror(e));
    }
    return fd;
}

int cl_rt_console_recv(int lfd, struct cl_err *err)
{
    int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (cfd < 0)
        return cl_err_set(err, CL_EIO, "console socket: runc did not connect: %s", strerror(errno));
    char name[256];
    struct iovec iov = {name, sizeof name};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } cm;
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof cm.buf};
    ssize_t n = recvmsg(cfd, &mh, MSG_CMSG_CLOEXEC);
    close(cfd);
    struct cmsghdr *h = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL;
    if (!h || h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS ||
        h->cmsg_len != CMSG_LEN(sizeof(int)))
        return cl_err_set(err, CL_EIO, "console socket: no pty received from runc");
    int fd;
    memcpy(&fd, CMSG_DATA(h), sizeof fd);
    return fd;
}

/* ---- tree removal ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP || flag == FTW_D)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

int cl_rt_rmtree(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* ---- cgroups ---- */

void cl_rt_cgroup_path(const struct cl_agent_rt *rt, const char *cid, const char *ctl, char *out,
                       size_t cap, bool *v2)
{
    struct stat st;
    *v2 = stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
    if (*v2)
        snprintf(out, cap, "/sys/fs/cgroup/%s/%s", rt->cgroup_parent, cid);
    else
        snprintf(out, cap, "/sys/fs/cgroup/%s/%s/%s", ctl, rt->cgroup_parent, cid);
}

/* ---- life cycle ---- */

static int copy_cfg(char *dst, size_t cap, const char *v, const char *def, const char *what,
                    struct cl_err *err)
{
    const char *s = v && *v ? v : def;
    if (strlen(s) >= cap)
        return cl_err_set(err, CL_EINVAL, "agent runtime: %s longer than %zu bytes", what, cap - 1);
    strcpy(dst, s);
    return 0;
}

struct cl_agent_rt *cl_agent_rt_new(const struct cl_agent_rt_config *cfg, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    struct cl_agent_rt *rt = calloc(1, sizeof *rt);
    if (!rt) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&rt->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rt->cond, &ca);
    pthread_condattr_destroy(&ca);
    const char *cg = getenv("CLOISTER_AGENT_CGROUP_PARENT");
    if (copy_cfg(rt->run_dir, sizeof rt->run_dir, cfg ? cfg->run_dir : NULL,
                 CL_AGENT_DEFAULT_RUN_DIR, "run_dir", err) < 0 ||
        copy_cfg(rt->runc, sizeof rt->runc, cfg ? cfg->runc : NULL, "runc", "runc", err) < 0 ||
        copy_cfg(rt->cdh_addr, sizeof rt->cdh_addr, cfg ? cfg->cdh_addr : NULL,
                 CL_AGENT_DEFAULT_CDH, "cdh_addr", err) < 0 ||
        copy_cfg(rt->cgroup_parent, sizeof rt->cgroup_parent, cg, CL_AGENT_DEFAULT_CGROUP_PARENT,
                 "CLOISTER_AGENT_CGROUP_PARENT", err) < 0)
        goto fail;
    if (rt->run_dir[0] != '/') {
        cl_err_set(err, CL_EINVAL, "agent runtime: run_dir '%s' is not absolute", rt->run_dir);
        goto fail;
    }
    if (strstr(rt->cgroup_parent, "..")) {
        cl_err_set(err, CL_EINVAL, "agent runtime: cgroup parent '%s' has '..'", rt->cgroup_parent);
        goto fail;
    }
    snprintf(rt->runc_root, sizeof rt->runc_root, "%s/.runc", rt->run_dir);
    snprintf(rt->shared_dir, sizeof rt->shared_dir, "%s/shared/containers", rt->run_dir);
    if (cl_mkdir_p(rt->run_dir, 0711, err) < 0 || cl_mkdir_p(rt->runc_root, 0700, err) < 0 ||
        cl_mkdir_p(rt->shared_dir, 0755, err) < 0) {
        cl_err_prefix(err, "agent runtime: run folder");
        goto fail;
    }
    /* Containers runc leaves behind become our children, so that we can wait for them. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
        cl_err_set(err, CL_EIO, "agent runtime: PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&rt->reaper, NULL, reaper_main, rt) != 0) {
        cl_err_set(err, CL_EIO, "agent runtime: cannot start the reaper thread");
        goto fail;
    }
    rt->reaper_started = true;
    char *ver[] = {rt->runc, (char *)"--version", NULL};
    int st = 0;
    if (cl_rt_run(rt, ver, NULL, 10000, &st, err) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        if (!err || !err->code)
            cl_err_set(err, CL_ENOTFOUND, "agent runtime: '%s --version' failed", rt->runc);
        cl_err_prefix(err, "agent runtime: OCI runtime");
        cl_agent_rt_free(rt);
        return NULL;
    }
    return rt;
fail:
    cl_agent_rt_free(rt);
    return NULL;
}

void cl_agent_rt_shutdown(struct cl_agent_rt *rt)
{
    pthread_mutex_lock(&rt->lock);
    rt->closing = true;
    for (struct cl_rt_ctr *c = rt->ctrs; c; c = c->next) {
        struct cl_rt_proc *ps[2] = {c->init, c->execs};
        for (int k = 0; k < 2; k++)
            for (struct cl_rt_proc *p = ps[k]; p; p = k ? p->next : NULL)
                if (p->wake[1] >= 0 && write(p->wake[1], "x", 1) < 0)
                    cl_debug("agent: wake pipe full");
    }
    pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
}

void cl_agent_rt_free(struct cl_agent_rt *rt)
{
    if (!rt)
        return;
    if (rt->reaper_started)
        cl_agent_rt_shutdown(rt);
    if (rt->reaper_started) {
        struct cl_err e = {0};
        if (cl_agent_rt_sandbox_destroy(rt, &e) < 0)
            cl_warn("agent runtime: teardown: %s", e.msg);
        pthread_mutex_lock(&rt->lock);
        rt->stopping = true;
        pthread_cond_broadcast(&rt->cond);
        pthread_mutex_unlock(&rt->lock);
        pid_t waker = fork(); /* ends a waitid blocked on children that live on */
        if (waker == 0)       /* the raw exit: no atexit handlers, no sanitizer finalisation */
            syscall(SYS_exit_group, 0);
        pthread_join(rt->reaper, NULL);
        if (waker > 0) /* unless the reaper collected it already (then ECHILD at once) */
            (void)waitpid(waker, NULL, 0);
        /* the folders made at start go when empty (what CopyFile pushed stays) */
        char p[PATH_MAX + 32];
        snprintf(p, sizeof p, "%s/shared", rt->run_dir);
        (void)rmdir(rt->shared_dir);
        (void)rmdir(p);
        (void)rmdir(rt->runc_root);
    }
    pthread_mutex_destroy(&rt->lock);
    pthread_cond_destroy(&rt->cond);
    free(rt);
}
