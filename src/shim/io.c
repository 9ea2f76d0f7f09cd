// SPDX-License-Identifier: Apache-2.0
/*
 * Stdio relay and exit waiting for one process in the guest. containerd hands the shim FIFO
 * paths (its reader already has stdout/stderr open, a writer may have stdin); the agent
 * hands out the process's streams through ReadStdout / ReadStderr (blocking until data, an
 * error at end of stream) and WriteStdin / CloseStdin. One thread per stream, plus a waiter
 * that blocks in WaitProcess on the shared (multiplexed) agent connection.
 *
 * Ordering, which ctr and the CRI depend on: the exit is recorded and TaskExit published
 * only after both output relays drained and closed their FIFOs, so a client that saw the
 * exit has already seen every byte of output.
 */
#include "shim/shim_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <protobuf-c/protobuf-c.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.pb-c.h"
#include "cd_events.pb-c.h"

#define EXIT_VM_GONE 255 /* what a process "exits" with when its VM went away */

struct relay {
    struct cl_shim *s;
    struct cl_shim_proc *p;
    bool err_stream;
};

/* Opens a FIFO for writing without waiting for a reader (O_RDWR never blocks on a FIFO);
 * the reader still sees EOF when this end closes, as nobody else writes. */
static int open_out(const char *path)
{
    if (!path || !*path)
        return -1;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        cl_warn("stdio: %s: %s (output discarded)", path, strerror(errno));
    return fd;
}

static void *out_main(void *arg)
{
    struct relay *r = arg;
    struct cl_shim_proc *p = r->p;
    const char *path = r->err_stream ? p->stderr_path : p->stdout_path;
    const char *method = r->err_stream ? "ReadStderr" : "ReadStdout";
    int fd = open_out(path);
    struct cl_shim_agent *ag = cl_shim_agent_get(r->s);
    while (ag) {
        Grpc__ReadStreamRequest req;
        grpc__read_stream_request__init(&req);
        req.container_id = p->ct->id;
        req.exec_id = p->exec_id;
        req.len = CL_SHIM_IO_CHUNK;
        ProtobufCMessage *resp = NULL;
        struct cl_err err = {0};
        if (cl_shim_agent_call(ag, method, &req.base, &grpc__read_stream_response__descriptor,
                               UINT32_MAX, &resp, &err) < 0) {
            cl_debug("stdio %s/%s %s ended: %s", p->ct->id, p->exec_id, method, err.msg);
            break;
        }
        Grpc__ReadStreamResponse *rr = (Grpc__ReadStreamResponse *)resp;
        size_t n = rr->data.len;
        if (fd >= 0 && n && cl_write_all(fd, rr->data.data, n) < 0) {
            cl_warn("stdio %s/%s: writing %s: %s (output discarded from here)", p->ct->id,
                    p->exec_id, path, strerror(errno));
            close(fd);
            fd = -1;
        }
        protobuf_c_message_free_unpacked(resp, NULL);
        if (n == 0)
            break; /* an empty read is the end of the stream */
    }
    if (fd >= 0)
        close(fd);
    cl_shim_agent_put(r->s, ag);
    free(r);
    return NULL;
}

static void close_stdin(struct cl_shim_agent *ag, struct cl_shim_proc *p)
{
    Grpc__CloseStdinRequest req;
    grpc__close_stdin_request__init(&req);
    req.container_id = p->ct->id;
    req.exec_id = p->exec_id;
    struct cl_err err = {0};
    if (cl_shim_agent_call(ag, "CloseStdin", &req.base, NULL, 0, NULL, &err) < 0)
        cl_debug("stdio %s/%s: CloseStdin: %s", p->ct->id, p->exec_id, err.msg);
}

static void *in_main(void *arg)
{
    struct relay *r = arg;
    struct cl_shim_proc *p = r->p;
    struct cl_shim_agent *ag = cl_shim_agent_get(r->s);
    /* O_NONBLOCK so the open does not wait for a writer. Until a writer opens the FIFO,
     * poll reports nothing; after the last writer closed it reports POLLHUP and read
     * returns 0: the end of stdin. */
    int fd = open(p->stdin_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        cl_warn("stdio: %s: %s (stdin not relayed)", p->stdin_path, strerror(errno));
        cl_shim_agent_put(r->s, ag);
        free(r);
        return NULL;
    }
    uint8_t *buf = malloc(CL_SHIM_IO_CHUNK);
    while (ag && buf && !atomic_load(&p->stdin_close)) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int pr = poll(&pfd, 1, 200);
        if (pr < 0 && errno != EINTR)
            break;
        if (pr <= 0)
            continue;
        ssize_t n = read(fd, buf, CL_SHIM_IO_CHUNK);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            break;
        size_t off = 0;
        while (off < (size_t)n) {
            Grpc__WriteStreamRequest req;
            grpc__write_stream_request__init(&req);
            req.container_id = p->ct->id;
            req.exec_id = p->exec_id;
            req.data.data = buf + off;
            req.data.len = (size_t)n - off;
            ProtobufCMessage *resp = NULL;
            struct cl_err err = {0};
            if (cl_shim_agent_call(ag, "WriteStdin", &req.base,
                                   &grpc__write_stream_response__descriptor, 0, &resp, &err) < 0) {
                cl_debug("stdio %s/%s WriteStdin: %s", p->ct->id, p->exec_id, err.msg);
                off = SIZE_MAX;
                break;
            }
            uint32_t w = ((Grpc__WriteStreamResponse *)resp)->len;
            protobuf_c_message_free_unpacked(resp, NULL);
            if (w == 0 || w > (size_t)n - off) { /* no progress, or more than was sent */
                off = SIZE_MAX;
                break;
            }
            off += w;
        }
        if (off == SIZE_MAX)
            break;
    }
    free(buf);
    close(fd);
    if (ag)
        close_stdin(ag, p);
    cl_shim_agent_put(r->s, ag);
    free(r);
    return NULL;
}

static void now_ts(int64_t *sec, int32_t *nsec)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *sec = ts.tv_sec;
    *nsec = (int32_t)ts.tv_nsec;
}

bool cl_shim_proc_exited_locked(struct cl_shim *s, struct cl_shim_proc *p, uint32_t status)
{
    if (p->state == PROC_STOPPED)
        return false;
    p->state = PROC_STOPPED;
    p->exit_status = status;
    now_ts(&p->exited_sec, &p->exited_nsec);
    pthread_cond_broadcast(&s->cond);
    return true;
}

void cl_shim_publish_exit(struct cl_shim *s, struct cl_shim_proc *p)
{
    Containerd__Events__TaskExit ev;
    containerd__events__task_exit__init(&ev);
    Google__Protobuf__Timestamp ts;
    google__protobuf__timestamp__init(&ts);
    ev.container_id = p->ct->id;
    ev.id = p->exec_id[0] ? p->exec_id : p->ct->id;
    ev.pid = (uint32_t)atomic_load(&s->vm_pid);
    ev.exit_status = p->exit_status;
    ts.seconds = p->exited_sec;
    ts.nanos = p->exited_nsec;
    ev.exited_at = &ts;
    cl_shim_events_post(s->events, "/tasks/exit", &ev.base);
}

static void *wait_main(void *arg)
{
    struct relay *r = arg;
    struct cl_shim *s = r->s;
    struct cl_shim_proc *p = r->p;
    struct cl_shim_agent *ag = cl_shim_agent_get(s);
    uint32_t status = EXIT_VM_GONE;
    if (ag) {
        Grpc__WaitProcessRequest req;
        grpc__wait_process_request__init(&req);
        req.container_id = p->ct->id;
        req.exec_id = p->exec_id;
        ProtobufCMessage *resp = NULL;
        struct cl_err err = {0};
        if (cl_shim_agent_call(ag, "WaitProcess", &req.base,
                               &grpc__wait_process_response__descriptor, UINT32_MAX, &resp,
                               &err) == 0) {
            int32_t st = ((Grpc__WaitProcessResponse *)resp)->status;
            status = (uint32_t)st;
            protobuf_c_message_free_unpacked(resp, NULL);
        } else {
            cl_warn("process %s/%s: WaitProcess failed: %s; reported as exit status %d", p->ct->id,
                    p->exec_id, err.msg, EXIT_VM_GONE);
        }
    }
    cl_shim_agent_put(s, ag);
    /* every byte of output reaches the FIFOs before the exit is visible */
    if (p->have_out)
        pthread_join(p->t_out, NULL);
    if (p->have_err)
        pthread_join(p->t_err, NULL);
    pthread_mutex_lock(&s->lock);
    p->have_out = p->have_err = false;
    bool first = cl_shim_proc_exited_locked(s, p, status);
    pthread_mutex_unlock(&s->lock);
    atomic_store(&p->stdin_close, true);
    if (first)
        cl_shim_publish_exit(s, p);
    cl_info("process %s/%s exited with status %u", p->ct->id, p->exec_id[0] ? p->exec_id : "init",
            status);
    free(r);
    return NULL;
}

static int start_thread(struct cl_shim *s, struct cl_shim_proc *p, bool err_stream,
                        void *(*fn)(void *), pthread_t *t, bool *have, struct cl_err *err)
{
    struct relay *r = calloc(1, sizeof *r);
    if (!r)
        return cl_err_set(err, CL_ENOMEM, "out of memory");
    r->s = s;
    r->p = p;
    r->err_stream = err_stream;
    if (pthread_create(t, NULL, fn, r) != 0) {
        free(r);
        return cl_err_set(err, CL_EIO, "stdio: cannot start a relay thread");
    }
    *have = true;
    return 0;
}

int cl_shim_io_start(struct cl_shim *s, struct cl_shim_proc *p, struct cl_err *err)
{
    if (start_thread(s, p, false, out_main, &p->t_out, &p->have_out, err) < 0)
        return err->code;
    if (!p->terminal && start_thread(s, p, true, out_main, &p->t_err, &p->have_err, err) < 0)
        return err->code;
    if (p->stdin_path && *p->stdin_path &&
        start_thread(s, p, false, in_main, &p->t_in, &p->have_in, err) < 0)
        return err->code;
    return start_thread(s, p, false, wait_main, &p->t_wait, &p->have_wait, err);
}

void cl_shim_io_join(struct cl_shim_proc *p)
{
    /* Delete and the VM's stop may both join: one at a time, each thread once */
    pthread_mutex_lock(&p->join_lock);
    if (p->have_wait)
        pthread_join(p->t_wait, NULL); /* joins the output relays itself */
    p->have_wait = false;
    atomic_store(&p->stdin_close, true);
    if (p->have_in)
        pthread_join(p->t_in, NULL);
    p->have_in = false;
    pthread_mutex_unlock(&p->join_lock);
}
