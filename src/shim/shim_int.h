/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal to src/shim: the sandbox's containers and processes as task.c keeps them, and
 * the stdio relay (io.c) that runs beside each started process. One mutex (shim->lock)
 * guards every member below that is not marked otherwise; shim->cond is broadcast on every
 * process exit.
 */
#ifndef CL_SHIM_INT_H
#define CL_SHIM_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "shim/shim.h"

enum proc_state { PROC_CREATED = 1, PROC_RUNNING, PROC_STOPPED };

struct cl_shim_container;

struct cl_shim_proc {
    struct cl_shim_container *ct;
    char *exec_id; /* "" for the init process */
    char *stdin_path, *stdout_path, *stderr_path;
    bool terminal;
    enum proc_state state;
    uint32_t exit_status;
    int64_t exited_sec;
    int32_t exited_nsec;
    struct ProtobufCMessage *process; /* exec: the agent's Process (owned) until started */
    /* io.c: threads and FIFO ends (fds owned by the threads once started) */
    pthread_t t_out, t_err, t_in, t_wait;
    bool have_out, have_err, have_in, have_wait;
    atomic_bool stdin_close;   /* CloseIO asked: stop relaying stdin */
    unsigned waiters;          /* Wait calls blocked on this process (under shim->lock) */
    bool deleting;             /* a Delete owns it (a second Delete is refused) */
    pthread_mutex_t join_lock; /* serialises cl_shim_io_join */
    struct cl_shim_proc *next;
};

struct cl_shim_container {
    char *id;
    char *bundle;
    bool virtual_sandbox; /* the pod's sandbox ("pause") task: the VM itself, no guest process */
    struct cl_shim_proc *init;
    struct cl_shim_proc *execs;
    struct cl_shim_container *next;
};

struct cl_shim {
    char *ns, *address, *publish_binary, *group_id, *socket;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_mutex_t boot_lock; /* held while the VM boots (seconds): not the state lock */
    struct cl_shim_config cfg;
    bool have_cfg;
    struct cl_shim_vm *vm;
    atomic_int vm_pid; /* QEMU's pid once booted (kept after the VM stops: the tasks' pid) */
    char *vm_dir;
    atomic_bool vm_dead;
    int vm_status;
    struct cl_shim_events *events;
    struct cl_shim_container *containers;
    size_t ncontainers, nprocs;
    bool shutting_down;
    pthread_t oom_thread; /* GetOOMEvent loop → /tasks/oom */
    bool have_oom;
    unsigned agent_refs; /* cl_shim_agent_get references not yet put */
    bool vm_stopping;    /* the shim itself stops the VM: its exit is no error */
};

/* io.c: starts the relay threads of p (stdout/stderr from the agent to the FIFOs, stdin
 * from its FIFO to the agent) and the waiter thread, which calls WaitProcess, waits for the
 * output relays to drain, records the exit and publishes TaskExit. Called with the lock
 * not held; p is not freed while its threads run (Delete joins them). */
int cl_shim_io_start(struct cl_shim *s, struct cl_shim_proc *p, struct cl_err *err);
/* Joins p's threads (after its exit). Lock not held. */
void cl_shim_io_join(struct cl_shim_proc *p);
/* Records an exit under the lock (once): state, status, time, broadcast. True if it was
 * this call that recorded it. */
bool cl_shim_proc_exited_locked(struct cl_shim *s, struct cl_shim_proc *p, uint32_t status);
/* Publishes TaskExit for p (lock not held). */
void cl_shim_publish_exit(struct cl_shim *s, struct cl_shim_proc *p);
/* The agent of the running VM with a reference (NULL when none or dead; lock not held):
 * every get is followed by a put; stopping the VM waits for the references to go. */
struct cl_shim_agent *cl_shim_agent_get(struct cl_shim *s);
void cl_shim_agent_put(struct cl_shim *s, struct cl_shim_agent *ag);

/* stats.c: the Stats answer for container id (a packed StatsResponse, new). */
int cl_shim_stats(struct cl_shim *s, const char *id, cl_bytes **resp, size_t *resp_len,
                  struct cl_err *err);

#endif
