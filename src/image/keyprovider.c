/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ocicrypt key-provider protocol over a command (the "cmd" providers of an
 * OCICRYPT_KEYPROVIDER_CONFIG file): one process per unwrap, the request JSON on its stdin,
 * the answer JSON on its stdout (bounded, with a timeout). optsdata comes back as base64 (Go
 * ocicrypt) or as an array of numbers (ocicrypt-rs, cloister-cdh); both are accepted.
 * cloister-cdh's own unwrap plugs in through cl_image_unwrap_fn the same way.
 */
#include "image/image_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ANSWER (1u * 1024 * 1024)
#define MAX_ARGS 32

static int run_cmd(const struct cl_image_keyprovider_cmd *cmd, const char *input, cl_bytes **out,
                   size_t *outlen, struct cl_err *err)
{
    int in[2] = {-1, -1}, outp[2] = {-1, -1};
    const char *argv[MAX_ARGS + 2];
    size_t na = 0;
    argv[na++] = cmd->path;
    for (size_t i = 0; cmd->args && cmd->args[i]; i++) {
        if (na > MAX_ARGS)
            return cl_err_set(err, CL_ELIMIT, "key provider %s: more than %d arguments", cmd->path,
                              MAX_ARGS);
        argv[na++] = cmd->args[i];
    }
    argv[na] = NULL;
    /* stdin is a socket so that writing to a provider that exited early fails with EPIPE
     * (MSG_NOSIGNAL) instead of raising SIGPIPE in the caller */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0)
        return cl_err_set(err, CL_EIO, "key provider: socketpair: %s", strerror(errno));
    if (pipe2(outp, O_CLOEXEC) < 0) {
        close(in[0]);
        close(in[1]);
        return cl_err_set(err, CL_EIO, "key provider: pipe: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]);
        close(in[1]);
        close(outp[0]);
        close(outp[1]);
        return cl_err_set(err, CL_EIO, "key provider: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        if (dup2(in[0], 0) < 0 || dup2(outp[1], 1) < 0)
            _exit(127);
        execv(cmd->path, (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(in[0]);
    close(outp[1]);
    size_t ilen = strlen(input), ioff = 0, olen = 0;
    uint8_t *buf = malloc(MAX_ANSWER + 1);
    int rc = buf ? 0 : cl_err_set(err, CL_ENOMEM, "key provider: out of memory");
    long timeout = cmd->timeout_ms > 0 ? cmd->timeout_ms : 30000;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int wfd = in[1], rfd = outp[0];
    while (rc == 0 && rfd >= 0) {
        if (wfd >= 0 && ioff == ilen) {
            close(wfd);
            wfd = -1;
        }
        struct pollfd pf[2] = {{rfd, POLLIN, 0}, {wfd, POLLOUT, 0}};
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent >= timeout) {
            rc = cl_err_set(err, CL_EIO, "key provider %s: no answer within %ld ms", cmd->path,
                            timeout);
            break;
        }
        int pr = poll(pf, wfd >= 0 ? 2 : 1, (int)(timeout - spent));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0) {
            rc = cl_err_set(err, CL_EIO, "key provider: poll: %s", strerror(errno));
            break;
        }
        if (wfd >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = send(wfd, input + ioff, ilen - ioff, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                ioff += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                ioff = ilen; /* the provider closed its stdin: let it answer */
        }
        if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            if (olen >= MAX_ANSWER) {
                rc = cl_err_set(err, CL_ELIMIT, "key provider %s: answer larger than %u bytes",
                                cmd->path, MAX_ANSWER);
                break;
            }
            ssize_t r = read(rfd, buf + olen, MAX_ANSWER - olen);
            if (r < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (r <= 0) {
                close(rfd);
                rfd = -1;
            } else {
                olen += (size_t)r;
            }
        }
    }
    if (wfd >= 0)
        close(wfd);
    if (rfd >= 0)
        close(rfd);
    if (rc < 0)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        rc = cl_err_set(err, CL_EVERIFY, "key provider %s: exited with status %d", cmd->path,
                        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    if (rc < 0) {
        if (buf)
            cl_free_wipe(buf, MAX_ANSWER + 1);
        return rc;
    }
    buf[olen] = 0;
    *out = buf;
    *outlen = olen;
    return 0;
}

/* {"keyunwrapresults":{"optsdata": "<b64>" | [n, ...]}} */
static struct cl_secret *answer_optsdata(const uint8_t *ans, size_t len, struct cl_err *err)
{
    CL_AUTO(json_t) *doc = cl_json_parse((const char *)ans, len, 8, err);
    if (!doc) {
        cl_err_prefix(err, "key provider answer");
        return NULL;
    }
    json_t *od = json_object_get(json_object_get(doc, "keyunwrapresults"), "optsdata");
    if (json_is_string(od)) {
        const char *s = json_string_value(od);
        struct cl_secret *r = cl_b64_decode_secret(s, strlen(s), CL_B64_ANY, err);
        if (!r)
            cl_err_prefix(err, "key provider answer optsdata");
        return r;
    }
    if (json_is_array(od)) {
        size_t n = json_array_size(od);
        struct cl_secret *r = cl_secret_new(n);
        if (!r) {
            cl_err_set(err, CL_ENOMEM, "key provider: out of memory");
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *v = json_array_get(od, i);
            json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
            if (x < 0 || x > 255) {
                cl_secret_free(r);
                cl_err_set(err, CL_EPARSE, "key provider answer: optsdata[%zu] is not a byte", i);
                return NULL;
            }
            r->data[i] = (uint8_t)x;
        }
        return r;
    }
    cl_err_set(err, CL_EPARSE, "key provider answer: no keyunwrapresults.optsdata");
    return NULL;
}

int cl_image_keyprovider_cmd_unwrap(void *ctx, const char *provider, const uint8_t *wrapped,
                                    size_t len, struct cl_secret **optsdata, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    const struct cl_image_keyprovider_cmd *cmd = ctx;
    if (!cmd || !cmd->path)
        return cl_err_set(err, CL_EINVAL, "key provider: no command");
    if (cmd->name && provider && strcmp(cmd->name, provider) != 0)
        return cl_err_set(err, CL_ENOTFOUND, "key provider '%.64s' is not configured", provider);
    CL_AUTO(cl_str) *b64 = cl_b64_encode(wrapped, len, CL_B64_STD);
    CL_AUTO(cl_str) *input =
        b64 ? cl_strdupf("{\"op\":\"keyunwrap\",\"keywrapparams\":{\"ec\":null,\"optsdata\":null},"
                         "\"keyunwrapparams\":{\"dc\":{\"Parameters\":{}},\"annotation\":\"%s\"}}",
                         b64)
            : NULL;
    if (!input)
        return cl_err_set(err, CL_ENOMEM, "key provider: out of memory");
    cl_bytes *ans = NULL;
    size_t alen = 0;
    int rc = run_cmd(cmd, input, &ans, &alen, err);
    if (rc < 0)
        return rc;
    struct cl_secret *r = answer_optsdata(ans, alen, err);
    cl_free_wipe(ans, MAX_ANSWER + 1);
    if (!r)
        return err ? err->code : CL_EPARSE;
    *optsdata = r;
    return 0;
}

int cl_image_keyprovider_set_unwrap(void *ctx, const char *provider, const uint8_t *wrapped,
                                    size_t len, struct cl_secret **optsdata, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    const struct cl_image_keyprovider_set *set = ctx;
    int rc = cl_err_set(err, CL_ENOTFOUND, "key provider '%.64s' is not configured",
                        provider ? provider : "");
    /* ocicrypt sends the annotation to the provider that carries its name; a set with one
     * provider of another name still gets it (ocicrypt-rs does the same with the first) */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; set && i < set->n; i++) {
            bool named = set->cmds[i].name && provider && strcmp(set->cmds[i].name, provider) == 0;
            if ((pass == 0) != named)
                continue;
            struct cl_image_keyprovider_cmd c = set->cmds[i];
            c.name = NULL;
            rc = cl_image_keyprovider_cmd_unwrap(&c, provider, wrapped, len, optsdata, err);
            if (rc == 0)
                return 0;
        }
    }
    return rc;
}

void cl_image_keyprovider_cmds_free(struct cl_image_keyprovider_cmd *cmds, size_t n)
{
    if (!cmds)
        return;
    for (size_t i = 0; i < n; i++) {
        free((char *)(uintptr_t)cmds[i].name);
        free((char *)(uintptr_t)cmds[i].path);
        if (cmds[i].args) {
            for (size_t k = 0; cmds[i].args[k]; k++)
                free((char *)(uintptr_t)cmds[i].args[k]);
            free((void *)(uintptr_t)cmds[i].args);
        }
    }
    free(cmds);
}

struct cl_image_keyprovider_cmd *cl_image_keyprovider_config_load(const char *path, size_t *n,
                                                                  struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    size_t len = 0;
    CL_AUTO(cl_bytes) *txt = cl_file_read(path, 1u << 20, &len, err);
    if (!txt)
        return NULL;
    CL_AUTO(json_t) *doc = cl_json_parse((const char *)txt, len, 8, err);
    if (!doc) {
        cl_err_prefix(err, "%s", path);
        return NULL;
    }
    json_t *kps = json_object_get(doc, "key-providers");
    if (!json_is_object(kps)) {
        cl_err_set(err, CL_EPARSE, "%s: 'key-providers' is not an object", path);
        return NULL;
    }
    size_t cap = json_object_size(kps), cnt = 0;
    struct cl_image_keyprovider_cmd *cmds = calloc(cap ? cap : 1, sizeof *cmds);
    if (!cmds) {
        cl_err_set(err, CL_ENOMEM, "key providers: out of memory");
        return NULL;
    }
    const char *name;
    json_t *v;
    json_object_foreach(kps, name, v)
    {
        json_t *cmd = json_object_get(v, "cmd");
        if (!cmd) {
            cl_warn("%s: key provider '%.64s' is not a cmd provider; skipped (grpc/ttrpc/native "
                    "providers are "
                    "reached through cloister-cdh)",
                    path, name);
            continue;
        }
        const char *p = json_string_value(json_object_get(cmd, "path"));
        json_t *args = json_object_get(cmd, "args");
        if (!p || (args && !json_is_array(args)) || json_array_size(args) > MAX_ARGS) {
            cl_image_keyprovider_cmds_free(cmds, cnt);
            cl_err_set(err, CL_EPARSE,
                       "%s: key provider '%.64s': cmd needs a 'path' and at most %d 'args'", path,
                       name, MAX_ARGS);
            return NULL;
        }
        struct cl_image_keyprovider_cmd *c = &cmds[cnt++];
        c->name = strdup(name);
        c->path = strdup(p);
        const char **a = calloc(json_array_size(args) + 1, sizeof *a);
        c->args = a;
        bool ok = c->name && c->path && a;
        for (size_t i = 0; ok && i < json_array_size(args); i++) {
            const char *s = json_string_value(json_array_get(args, i));
            ok = s && (a[i] = strdup(s));
        }
        if (!ok) {
            cl_image_keyprovider_cmds_free(cmds, cnt);
            cl_err_set(err, CL_EPARSE, "%s: key provider '%.64s': bad args", path, name);
            return NULL;
        }
    }
    *n = cnt;
    return cmds;
}

/* ---- resources: kbs://, file://, paths ---- */

struct cl_secret *cl_image_resource_load(const struct cl_image_resources *res, const char *where,
                                         size_t max, struct cl_err *err)
{
    CL_IMAGE_ERR_LOCAL(err);
    if (!where || !*where) {
        cl_err_set(err, CL_EINVAL, "resource: empty location");
        return NULL;
    }
    if (strncmp(where, "kbs://", 6) == 0 || strncmp(where, "kbs+", 4) == 0) {
        if (!res || !res->fetch) {
            cl_err_set(err, CL_EINVAL, "resource %.200s: no KBS access is configured", where);
            return NULL;
        }
        struct cl_secret *s = NULL;
        int rc = res->fetch(res->ctx, where, &s, err);
        if (rc < 0)
            return NULL;
        if (!s) {
            cl_err_set(err, CL_ENOTFOUND, "resource %.200s: nothing returned", where);
            return NULL;
        }
        if (s->len > max) {
            cl_secret_free(s);
            cl_err_set(err, CL_ELIMIT, "resource %.200s: larger than %zu bytes", where, max);
            return NULL;
        }
        return s;
    }
    const char *path = where;
    if (strncmp(where, "file://", 7) == 0)
        path = where + 7;
    else if (strstr(where, "://")) {
        cl_err_set(err, CL_EUNSUPPORTED,
                   "resource %.200s: only kbs://, file:// and paths are supported", where);
        return NULL;
    }
    size_t len = 0;
    cl_bytes *b = cl_file_read(path, max, &len, err);
    if (!b)
        return NULL;
    struct cl_secret *s = cl_secret_from(b, len);
    cl_free_wipe(b, len);
    if (!s)
        cl_err_set(err, CL_ENOMEM, "resource: out of memory");
    return s;
}
