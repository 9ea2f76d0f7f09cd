/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the runtime's files (runtime.c, container.c, process.c, sandbox.c,
 * copyfile.c, actions.c); not part of the agent's interface. */
#ifndef CL_AGENT_RT_INT_H
#define CL_AGENT_RT_INT_H

#include <limits.h>
#include <pthread.h>

#include "runtime.h"
#include "json/json.h"

#define RT_ORPHANS 64 /* statuses of children reaped before anyone claimed them */

struct cl_rt_proc {
    unsigned refs;                        /* under rt->lock; the container's list holds one */
    char exec_id[CL_AGENT_RT_MAX_ID + 1]; /* "" for the init */
    pid_t pid;                            /* 0 until known */
    bool tty;
    bool exited;
    bool waited;               /* an exec whose status was handed out */
    bool removed;              /* the container is going away: readers and writers give up */
    int status;                /* exit code or 128 + signal */
    int in_fd, out_fd, err_fd; /* the agent's ends, -1 when closed; a tty: in = out = pty */
    int wake[2];               /* pipe: written to wake blocked readers and writers */
    pthread_mutex_t in_lock;   /* serialises WriteStdin / CloseStdin */
    pthread_mutex_t out_lock, err_lock;
    struct cl_rt_proc *next; /* the container's exec list */
};

enum cl_rt_state { RT_CREATED, RT_RUNNING, RT_STOPPED };

struct cl_rt_ctr {
    char id[CL_AGENT_RT_MAX_ID + 1];
    char bundle[PATH_MAX];
    enum cl_rt_state state;
    bool busy;      /* being created or removed: other calls see it as absent */
    unsigned users; /* calls working on it without rt->lock (exec); teardown waits for 0 */
    struct cl_rt_proc *init;
    struct cl_rt_proc *execs;
    uint64_t oom_seen;
    struct cl_rt_ctr *next;
};

struct cl_rt_child {
    pid_t pid;
    int status; /* raw wait status */
    bool done;
};

struct cl_agent_rt {
    char run_dir[PATH_MAX / 4]; /* short: bundle paths and socket paths hang off it */
    char runc[PATH_MAX];
    char runc_root[PATH_MAX + 32];
    char shared_dir[PATH_MAX + 32];
    char cdh_addr[512];
    char cgroup_parent[256];
    pthread_mutex_t lock; /* containers, processes, children, orphans */
    pthread_cond_t cond;  /* broadcast on every reaped child and state change */
    struct cl_rt_ctr *ctrs;
    size_t nctrs;
    bool sandbox;
    bool stopping; /* the reaper ends */
    bool closing;  /* blocked calls (wait, OOM, stdio) give up */
    pthread_t reaper;
    bool reaper_started;
    unsigned long spawn_gen;       /* bumped on every spawn: wakes a reaper that had no child */
    struct cl_rt_child *waits[64]; /* helpers (runc) being waited for */
    struct {
        pid_t pid;
        int status;
    } orphans[RT_ORPHANS];
    size_t norphans, orphan_next;
};

/* Runs argv (argv[0] searched in PATH) with stdio fds (-1 → /dev/null) and waits for it
 * (up to timeout_ms, then SIGKILL). *status = raw wait status. */
CL_MUST_CHECK int cl_rt_run(struct cl_agent_rt *rt, char *const argv[], const int fds[3],
                            long timeout_ms, int *status, struct cl_err *err);
/* Runs a runc subcommand: argv after "runc --root R --log L"; on failure the error names the
 * command and quotes runc's last log line. log may be NULL. */
CL_MUST_CHECK int cl_rt_runc(struct cl_agent_rt *rt, const char *log, const int fds[3],
                             char *const args[], struct cl_err *err);
/* Claims the status of a child the reaper already collected (returns true), under rt->lock. */
bool cl_rt_orphan_take(struct cl_agent_rt *rt, pid_t pid, int *status);
/* 0 for an exit code, 128 + signal for a signal death. */
int cl_rt_exit_code(int wstatus);

/* Lookups under rt->lock. A container that is busy is not found. */
struct cl_rt_ctr *cl_rt_ctr_find(struct cl_agent_rt *rt, const char *cid);
/* Finds the process (exec_id "" or equal to the cid: the init) and takes a reference. */
CL_MUST_CHECK int cl_rt_proc_get(struct cl_agent_rt *rt, const char *cid, const char *exec_id,
                                 struct cl_rt_proc **out, struct cl_err *err);
void cl_rt_proc_put(struct cl_agent_rt *rt, struct cl_rt_proc *p);
/* New process with pipes (tty false) or no fds yet (tty true). */
struct cl_rt_proc *cl_rt_proc_new(const char *exec_id, struct cl_err *err);
/* Marks removed, wakes blocked readers; the last reference frees (under rt->lock). */
void cl_rt_proc_release_locked(struct cl_agent_rt *rt, struct cl_rt_proc *p);
/* Registers a pid learnt from a pid file; picks up an orphaned status. Under rt->lock. */
void cl_rt_proc_set_pid_locked(struct cl_agent_rt *rt, struct cl_rt_proc *p, pid_t pid);
/* Reads a pid file runc wrote. */
CL_MUST_CHECK int cl_rt_read_pid(const char *path, pid_t *pid, struct cl_err *err);
/* Listens on a fresh unix socket (console socket) at path; returns the fd. */
int cl_rt_console_listen(const char *path, struct cl_err *err);
/* Accepts runc's connection and receives the pty master (SCM_RIGHTS). */
int cl_rt_console_recv(int lfd, struct cl_err *err);

/* Removes a tree without following symlinks or crossing mounts. */
int cl_rt_rmtree(const char *path);
/* Removes a container whose record is busy (create failed or remove): runc delete, reaping,
 * unmount, bundle. Called without rt->lock. */
void cl_rt_ctr_teardown(struct cl_agent_rt *rt, struct cl_rt_ctr *c, unsigned timeout_s);
void cl_rt_ctr_free(struct cl_agent_rt *rt, struct cl_rt_ctr *c);

/* Starts a process with runc: args = the runc command up to the container id (create, or
 * exec --detach --process F); records the pid and the stdio (pipes, or the pty when tty). */
CL_MUST_CHECK int cl_agent_proc_spawn(struct cl_agent_rt *rt, struct cl_rt_ctr *c,
                                      struct cl_rt_proc *p, bool tty, const char *const *args,
                                      struct cl_err *err);

/* cgroup folder of a container for a controller ("memory", "cpuacct", "pids"; v2: ""). */
void cl_rt_cgroup_path(const struct cl_agent_rt *rt, const char *cid, const char *ctl, char *out,
                       size_t cap, bool *v2);

#endif
