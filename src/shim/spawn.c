// SPDX-License-Identifier: Apache-2.0
/*
 * Starting children (QEMU, swtpm) so that they cannot outlive the shim. PR_SET_PDEATHSIG
 * fires when the *thread* that forked exits, not the process; a Task request runs on a ttrpc
 * worker thread that ends with the request (or with containerd's connection, when containerd
 * restarts), which would take the VM with it. So requests hand the fork to the main thread,
 * which lives as long as the shim; when the shim dies for any reason (SIGKILL included) the
 * kernel kills every child it started. Each child also gets its own process group so that
 * it can be stopped with everything it forked.
 */
#include "shim/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

struct job {
    struct cl_shim_child *c;
    int rc;
    int errnum;
    bool done;
    struct job *next;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
static struct job *g_jobs;
static bool g_running, g_stop;
static pthread_t g_main;

/* fork + exec; in the child only async-signal-safe calls. */
static int do_spawn(struct cl_shim_child *c, int *errnum)
{
    int ep[2];
    if (pipe2(ep, O_CLOEXEC) < 0) {
        *errnum = errno;
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(ep[0]);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the shim died between fork and prctl */
            _exit(127);
        setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0)
            dup2(devnull, 0);
        int out = c->out_fd >= 0 ? c->out_fd : devnull;
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        execv(c->argv[0], c->argv);
        int e = errno;
        if (write(ep[1], &e, sizeof e) < 0)
            _exit(126);
        _exit(127);
    }
    close(ep[1]);
    if (pid < 0) {
        *errnum = errno;
        close(ep[0]);
        return -1;
    }
    int e = 0;
    ssize_t r;
    do
        r = read(ep[0], &e, sizeof e);
    while (r < 0 && errno == EINTR);
    close(ep[0]);
    if (r == (ssize_t)sizeof e) { /* exec failed: the child already exited */
        *errnum = e;
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return -1;
    }
    c->pid = pid;
    return 0;
}

void cl_shim_spawner_run(void)
{
    pthread_mutex_lock(&g_lock);
    g_running = true;
    g_main = pthread_self();
    while (!g_stop) {
        while (!g_jobs && !g_stop)
            pthread_cond_wait(&g_cond, &g_lock);
        while (g_jobs) {
            struct job *j = g_jobs;
            g_jobs = j->next;
            pthread_mutex_unlock(&g_lock);
            j->rc = do_spawn(j->c, &j->errnum);
            pthread_mutex_lock(&g_lock);
            j->done = true;
            pthread_cond_broadcast(&g_cond);
        }
    }
    g_running = false;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

void cl_shim_spawner_stop(void)
{
    pthread_mutex_lock(&g_lock);
    g_stop = true;
    pthread_cond_broadcast(&g_cond);
    pthread_mutex_unlock(&g_lock);
}

int cl_shim_spawn(struct cl_shim_child *c, struct cl_err *err)
{
    struct job j = {.c = c};
    pthread_mutex_lock(&g_lock);
    if (g_running && !g_stop && !pthread_equal(pthread_self(), g_main)) {
        j.next = g_jobs;
        g_jobs = &j;
        pthread_cond_broadcast(&g_cond);
        while (!j.done && g_running)
            pthread_cond_wait(&g_cond, &g_lock);
        if (!j.done) { /* the spawner stopped before taking the job */
            for (struct job **p = &g_jobs; *p; p = &(*p)->next)
                if (*p == &j) {
                    *p = j.next;
                    break;
                }
            pthread_mutex_unlock(&g_lock);
            return cl_err_set(err, CL_EIO, "spawn %s: the shim is shutting down", c->argv[0]);
        }
        pthread_mutex_unlock(&g_lock);
    } else {
        pthread_mutex_unlock(&g_lock);
        j.rc = do_spawn(c, &j.errnum);
    }
    if (j.rc < 0)
        return cl_err_set(err, CL_EIO, "spawn %s: %s", c->argv[0], strerror(j.errnum));
    cl_debug("started %s (pid %d)", c->argv[0], (int)c->pid);
    return 0;
}
