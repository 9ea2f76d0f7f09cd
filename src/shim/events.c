// SPDX-License-Identifier: Apache-2.0
/*
 * Task events to containerd: each event is packed into a google.protobuf.Any (type URL =
 * the message's full name, "containerd.events.TaskExit") and handed to containerd's
 * publish command (`<publish-binary> --address <grpc address> publish --topic <topic>
 * --namespace <ns>`, the Any on stdin), which forwards it to the events service. One thread
 * publishes the queue in order, so TaskCreate precedes TaskStart precedes TaskExit as the
 * runtime v2 contract asks. A publish that fails is logged and dropped (containerd may be
 * restarting); it never blocks a Task call.
 */
#include "shim/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cd_wellknown.pb-c.h"

#define PUBLISH_TIMEOUT_S 10

struct event {
    struct event *next;
    char *topic;
    uint8_t *any;
    size_t len;
};

struct cl_shim_events {
    char *binary, *address, *ns;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct event *head, *tail;
    size_t n;
    bool stopping;
    bool drained; /* cl_shim_events_drain ran: posts are dropped */
    pthread_t thread;
};

static void publish_one(struct cl_shim_events *ev, const struct event *e)
{
    if (!ev->binary) {
        cl_info("event %s (%zu bytes; no publish binary)", e->topic, e->len);
        return;
    }
    int in[2];
    if (pipe2(in, O_CLOEXEC) < 0) {
        cl_warn("event %s: pipe: %s", e->topic, strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 1);
        execl(ev->binary, ev->binary, "--address", ev->address, "publish", "--topic", e->topic,
              "--namespace", ev->ns, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    if (pid < 0) {
        close(in[1]);
        cl_warn("event %s: fork: %s", e->topic, strerror(errno));
        return;
    }
    size_t off = 0;
    while (off < e->len) {
        ssize_t w = write(in[1], e->any + off, e->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(in[1]);
    int st = 0;
    for (int i = 0; i < PUBLISH_TIMEOUT_S * 10; i++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return;
        if (i == PUBLISH_TIMEOUT_S * 10 - 1) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            cl_warn("event %s: publish did not finish in %d s; killed", e->topic,
                    PUBLISH_TIMEOUT_S);
            return;
        }
        usleep(100000);
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        cl_warn("event %s: %s publish failed (status %d)", e->topic, ev->binary, st);
    else
        cl_debug("event %s published", e->topic);
}

static void *publisher(void *arg)
{
    struct cl_shim_events *ev = arg;
    pthread_mutex_lock(&ev->lock);
    for (;;) {
        while (!ev->head && !ev->stopping)
            pthread_cond_wait(&ev->cond, &ev->lock);
        struct event *e = ev->head;
        if (!e)
            break;
        ev->head = e->next;
        if (!ev->head)
            ev->tail = NULL;
        ev->n--;
        pthread_mutex_unlock(&ev->lock);
        publish_one(ev, e);
        free(e->topic);
        free(e->any);
        free(e);
        pthread_mutex_lock(&ev->lock);
    }
    pthread_mutex_unlock(&ev->lock);
    return NULL;
}

struct cl_shim_events *cl_shim_events_new(const char *publish_binary, const char *address,
                                          const char *ns, struct cl_err *err)
{
    struct cl_shim_events *ev = calloc(1, sizeof *ev);
    if (!ev) {
        cl_err_set(err, CL_ENOMEM, "out of memory");
        return NULL;
    }
    ev->binary = publish_binary && *publish_binary ? strdup(publish_binary) : NULL;
    ev->address = strdup(address ? address : "");
    ev->ns = strdup(ns ? ns : "default");
    pthread_mutex_init(&ev->lock, NULL);
    pthread_cond_init(&ev->cond, NULL);
    if (!ev->address || !ev->ns || (publish_binary && *publish_binary && !ev->binary) ||
        pthread_create(&ev->thread, NULL, publisher, ev) != 0) {
        free(ev->binary);
        free(ev->address);
        free(ev->ns);
        free(ev);
        cl_err_set(err, CL_EIO, "events: cannot start the publisher");
        return NULL;
    }
    return ev;
}

void cl_shim_events_post(struct cl_shim_events *ev, const char *topic, const ProtobufCMessage *msg)
{
    size_t vlen = protobuf_c_message_get_packed_size(msg);
    uint8_t *val = malloc(vlen ? vlen : 1);
    CL_AUTO(cl_str) *url = cl_strdupf("%s", msg->descriptor->name);
    struct event *e = calloc(1, sizeof *e);
    if (!val || !url || !e) {
        free(val);
        free(e);
        cl_warn("event %s dropped: out of memory", topic);
        return;
    }
    protobuf_c_message_pack(msg, val);
    Google__Protobuf__Any any;
    google__protobuf__any__init(&any);
    any.type_url = url;
    any.value.data = val;
    any.value.len = vlen;
    e->len = google__protobuf__any__get_packed_size(&any);
    e->any = malloc(e->len ? e->len : 1);
    e->topic = strdup(topic);
    if (!e->any || !e->topic) {
        free(val);
        free(e->any);
        free(e->topic);
        free(e);
        cl_warn("event %s dropped: out of memory", topic);
        return;
    }
    google__protobuf__any__pack(&any, e->any);
    free(val);
    pthread_mutex_lock(&ev->lock);
    if (ev->n >= CL_SHIM_MAX_EVENTS || ev->drained) {
        bool late = ev->drained;
        pthread_mutex_unlock(&ev->lock);
        if (late)
            cl_warn("event %s dropped: the shim is exiting", topic);
        else
            cl_warn("event %s dropped: %d events already queued", topic, CL_SHIM_MAX_EVENTS);
        free(e->any);
        free(e->topic);
        free(e);
        return;
    }
    if (ev->tail)
        ev->tail->next = e;
    else
        ev->head = e;
    ev->tail = e;
    ev->n++;
    pthread_cond_signal(&ev->cond);
    pthread_mutex_unlock(&ev->lock);
}

void cl_shim_events_drain(struct cl_shim_events *ev)
{
    if (!ev)
        return;
    pthread_mutex_lock(&ev->lock);
    bool first = !ev->drained;
    ev->stopping = true;
    ev->drained = true;
    pthread_cond_signal(&ev->cond);
    pthread_mutex_unlock(&ev->lock);
    if (first)
        pthread_join(ev->thread, NULL);
}

void cl_shim_events_free(struct cl_shim_events *ev)
{
    if (!ev)
        return;
    cl_shim_events_drain(ev);
    pthread_mutex_destroy(&ev->lock);
    pthread_cond_destroy(&ev->cond);
    free(ev->binary);
    free(ev->address);
    free(ev->ns);
    free(ev);
}
