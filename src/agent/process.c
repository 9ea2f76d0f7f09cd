/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Processes: exec (`runc exec --detach --process`), signals (kill(2) on a pid the reaper has
 * not collected yet, so it cannot have been reused), waiting, and the stdio streams.
 *
 * A blocked read or write holds a reference on the process, never rt->lock; it polls its fd
 * together with the process's wake pipe, which RemoveContainer writes to, so a removal
 * never waits for a reader and a reader never sees a closed fd.
 */
#include "rt_int.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

int cl_agent_rt_exec(struct cl_agent_rt *rt, const char *cid, const char *exec_id,
                     const char *process_json, size_t len, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (cl_agent_id_check(cid, "container_id", err) < 0 ||
        cl_agent_id_check(exec_id, "exec_id", err) < 0)
        return err->code;
    if (strcmp(exec_id, cid) == 0)
        return cl_err_set(err, CL_EINVAL, "exec_id '%s' is the container's own id", exec_id);
    if (len > CL_AGENT_MAX_SPEC)
        return cl_err_set(err, CL_ELIMIT, "process of %zu bytes exceeds %u", len,
                          CL_AGENT_MAX_SPEC);
    CL_AUTO(json_t) *proc = json_loadb(process_json, len, JSON_REJECT_DUPLICATES, NULL);
    if (!proc)
        return cl_err_set(err, CL_EPARSE, "process is not JSON");
    if (cl_agent_process_fix(proc, err) < 0)
        return err->code;
    bool tty = json_is_true(json_object_get(proc, "terminal"));
    struct cl_rt_proc *p = cl_rt_proc_new(exec_id, err);
    if (!p)
        return err->code;
    /* ---- register the exec under its container ---- */
    pthread_mutex_lock(&rt->lock);
    struct cl_rt_ctr *c = cl_rt_ctr_find(rt, cid);
    int rc = 0;
    size_t n = 0;
    bool dup = false;
    /* execs waited for earlier are forgotten now */
    for (struct cl_rt_proc **pp = c ? &c->execs : NULL; pp && *pp;) {
        struct cl_rt_proc *e = *pp;
        if (e->waited) {
            *pp = e->next;
            cl_rt_proc_release_locked(rt, e);
            continue;
        }
        dup = dup || strcmp(e->exec_id, exec_id) == 0;
        n++;
        pp = &e->next;
    }
    if (!c)
        rc = cl_err_set(err, CL_ENOTFOUND, "container '%s' does not exist", cid);
    else if (c->state != RT_RUNNING)
        rc = cl_err_set(err, CL_EINVAL, "container '%s' is not running", cid);
    else if (dup)
        rc = cl_err_set(err, CL_EEXISTS, "container '%s' already has a process '%s'", cid, exec_id);
    else if (n >= CL_AGENT_MAX_EXECS)
        rc = cl_err_set(err, CL_ELIMIT, "container '%s' has %d exec processes", cid,
                        CL_AGENT_MAX_EXECS);
    if (rc == 0) {
        c->users++;
        p->next = c->execs;
        c->execs = p;
        p->refs++; /* ours, for the spawn below */
    }
    pthread_mutex_unlock(&rt->lock);
    if (rc < 0) {
        pthread_mutex_lock(&rt->lock);
        cl_rt_proc_release_locked(rt, p);
        pthread_mutex_unlock(&rt->lock);
        return rc;
    }
    char path[PATH_MAX + 160];
    snprintf(path, sizeof path, "%s/%s.process.json", c->bundle, exec_id);
    CL_AUTO(cl_str) *text = json_dumps(proc, JSON_COMPACT);
    if (!text)
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    else if ((rc = cl_file_write_atomic(path, text, strlen(text), 0600, err)) == 0) {
        const char *args[] = {"exec", "--detach", "--process", path, NULL};
        rc = cl_agent_proc_spawn(rt, c, p, tty, args, err);
    }
    unlink(path);
    pthread_mutex_lock(&rt->lock);
    c->users--;
    if (rc < 0) {
        for (struct cl_rt_proc **pp = &c->execs; *pp; pp = &(*pp)->next)
            if (*pp == p) {
                *pp = p->next;
                cl_rt_proc_release_locked(rt, p); /* the list's reference */
                break;
            }
    }
    pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
    cl_rt_proc_put(rt, p);
    return rc < 0 ? cl_err_prefix(err, "exec %s in %s", exec_id, cid) : 0;
}

/* Whether pid has a handler for sig (SigCgt of /proc/<pid>/status). */
static bool catches(pid_t pid, int sig)
{
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return true; /* unknown: leave the signal as asked */
    bool yes = true;
    while (fgets(line, sizeof line, f)) {
        unsigned long long mask = 0;
        if (sscanf(line, "SigCgt: %llx", &mask) == 1) {
            yes = (mask >> (sig - 1)) & 1;
            break;
        }
    }
    fclose(f);
    return yes;
}

int cl_agent_rt_signal(struct cl_agent_rt *rt, const char *cid, const char *exec_id, int sig,
                       struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (sig < 0 || sig > 64)
        return cl_err_set(err, CL_EINVAL, "signal %d out of range", sig);
    struct cl_rt_proc *p = NULL;
    if (cl_rt_proc_get(rt, cid, exec_id, &p, err) < 0)
        return err->code;
    int rc = 0;
    pthread_mutex_lock(&rt->lock);
    /* The init is pid 1 of its namespace: the kernel drops a SIGTERM it has no handler for,
     * and `kill` (containerd's stop) would hang until its timeout. As Kata's agent does, a
     * SIGTERM to an init that does not catch it becomes SIGKILL. */
    if (sig == SIGTERM && !p->exec_id[0] && !p->exited && p->pid > 0 && !catches(p->pid, SIGTERM))
        sig = SIGKILL;
    /* an exited process is a no-op (containerd kills after exit); the pid is ours until reaped */
    if (!p->exited && p->pid > 0 && kill(p->pid, sig) < 0 && errno != ESRCH)
        rc = cl_err_set(err, CL_EIO, "kill %d: %s", (int)p->pid, strerror(errno));
    else if (p->pid <= 0)
        rc = cl_err_set(err, CL_EINVAL, "process '%s' of '%s' has not started", exec_id, cid);
    pthread_mutex_unlock(&rt->lock);
    cl_rt_proc_put(rt, p);
    return rc;
}

int cl_agent_rt_wait(struct cl_agent_rt *rt, const char *cid, const char *exec_id, int *status,
                     struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    struct cl_rt_proc *p = NULL;
    if (cl_rt_proc_get(rt, cid, exec_id, &p, err) < 0)
        return err->code;
    int rc = 0;
    pthread_mutex_lock(&rt->lock);
    while (!p->exited && !p->removed && !rt->closing)
        pthread_cond_wait(&rt->cond, &rt->lock);
    if (p->exited) {
        *status = p->status;
        p->waited = true; /* forgotten at the next exec (its stdio may still be drained) */
    } else {
        rc = cl_err_set(err, CL_ENOTFOUND, "container '%s' was removed while waiting", cid);
    }
    pthread_mutex_unlock(&rt->lock);
    cl_rt_proc_put(rt, p);
    return rc;
}

/* ---- stdio ---- */

/* Polls fd for ev together with the wake pipe. 1 = ready, 0 = woken (removed), <0 error. */
static int wait_fd(struct cl_rt_proc *p, int fd, short ev, struct cl_err *err)
{
    for (;;) {
        struct pollfd pf[2] = {{.fd = fd, .events = ev}, {.fd = p->wake[0], .events = POLLIN}};
        int n = poll(pf, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return cl_err_set(err, CL_EIO, "poll: %s", strerror(errno));
        if (pf[1].revents)
            return 0;
        if (pf[0].revents)
            return 1;
    }
}

int cl_agent_rt_read(struct cl_agent_rt *rt, const char *cid, const char *exec_id, bool stderr_,
                     size_t cap, cl_bytes **out, size_t *len, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    const char *what = stderr_ ? "stderr" : "stdout";
    if (cap == 0)
        return cl_err_set(err, CL_EINVAL, "%s: len is 0", what);
    if (cap > CL_AGENT_MAX_READ)
        cap = CL_AGENT_MAX_READ;
    struct cl_rt_proc *p = NULL;
    if (cl_rt_proc_get(rt, cid, exec_id, &p, err) < 0)
        return err->code;
    pthread_mutex_t *lk = stderr_ ? &p->err_lock : &p->out_lock;
    int fd = stderr_ ? p->err_fd : p->out_fd;
    int rc = 0;
    CL_AUTO(cl_bytes) *buf = NULL;
    ssize_t n = 0;
    pthread_mutex_lock(lk);
    if (fd < 0) {
        rc = cl_err_set(err, CL_EIO, "%s: end of stream (%s)", what,
                        p->tty ? "a terminal has no stderr" : "closed");
    } else if (!(buf = malloc(cap))) {
        rc = cl_err_set(err, CL_ENOMEM, "out of memory");
    } else {
        for (;;) {
            int w = wait_fd(p, fd, POLLIN, err);
            if (w < 0) {
                rc = w;
                break;
            }
            if (w == 0) {
                rc = cl_err_set(err, CL_EIO, "%s: end of stream (container removed)", what);
                break;
            }
            n = read(fd, buf, cap);
            if (n < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            /* a pty whose last holder closed answers EIO: that is its end of stream */
            if (n == 0 || (n < 0 && errno == EIO && p->tty)) {
                rc = cl_err_set(err, CL_EIO, "%s: end of stream", what);
            } else if (n < 0) {
                rc = cl_err_set(err, CL_EIO, "%s: read: %s", what, strerror(errno));
            }
            break;
        }
    }
    pthread_mutex_unlock(lk);
    cl_rt_proc_put(rt, p);
    if (rc < 0)
        return rc;
    *out = CL_STEAL(buf);
    *len = (size_t)n;
    return 0;
}

int cl_agent_rt_write(struct cl_agent_rt *rt, const char *cid, const char *exec_id,
                      const uint8_t *data, size_t len, size_t *written, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (len > CL_AGENT_MAX_WRITE)
        return cl_err_set(err, CL_ELIMIT, "stdin: %zu bytes exceed %u", len, CL_AGENT_MAX_WRITE);
    struct cl_rt_proc *p = NULL;
    if (cl_rt_proc_get(rt, cid, exec_id, &p, err) < 0)
        return err->code;
    int rc = 0;
    size_t off = 0;
    pthread_mutex_lock(&p->in_lock);
    if (p->in_fd < 0)
        rc = cl_err_set(err, CL_EINVAL, "stdin of '%s' is closed",
                        exec_id && *exec_id ? exec_id : cid);
    while (rc == 0 && off < len) {
        int w = wait_fd(p, p->in_fd, POLLOUT, err);
        if (w <= 0) {
            rc = w < 0 ? w : cl_err_set(err, CL_EIO, "stdin: container removed");
            break;
        }
        ssize_t n = write(p->in_fd, data + off, len - off);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            rc = cl_err_set(err, CL_EIO, "stdin: write: %s", strerror(errno));
        else
            off += (size_t)n;
    }
    pthread_mutex_unlock(&p->in_lock);
    cl_rt_proc_put(rt, p);
    *written = off;
    return rc;
}

int cl_agent_rt_close_stdin(struct cl_agent_rt *rt, const char *cid, const char *exec_id,
                            struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    struct cl_rt_proc *p = NULL;
    if (cl_rt_proc_get(rt, cid, exec_id, &p, err) < 0)
        return err->code;
    int rc = 0;
    pthread_mutex_lock(&p->in_lock);
    if (p->tty) {
        /* the pty is also stdout: end the input with ^D instead of closing it */
        if (write(p->in_fd, "\x04", 1) < 0)
            rc = cl_err_set(err, CL_EIO, "stdin: %s", strerror(errno));
    } else if (p->in_fd >= 0) {
        close(p->in_fd);
        p->in_fd = -1;
    }
    pthread_mutex_unlock(&p->in_lock);
    cl_rt_proc_put(rt, p);
    return rc;
}

int cl_agent_rt_resize(struct cl_agent_rt *rt, const char *cid, const char *exec_id, unsigned rows,
                       unsigned cols, struct cl_err *err)
{
    CL_ERR_OR_LOCAL(err);
    if (rows > 65535 || cols > 65535)
        return cl_err_set(err, CL_EINVAL, "window size %ux%u out of range", rows, cols);
    struct cl_rt_proc *p = NULL;
    if (cl_rt_proc_get(rt, cid, exec_id, &p, err) < 0)
        return err->code;
    int rc = 0;
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    if (!p->tty)
        rc = cl_err_set(err, CL_EINVAL, "process '%s' of '%s' has no terminal", exec_id, cid);
    else if (ioctl(p->out_fd, TIOCSWINSZ, &ws) < 0)
        rc = cl_err_set(err, CL_EIO, "TIOCSWINSZ: %s", strerror(errno));
    cl_rt_proc_put(rt, p);
    return rc;
}
