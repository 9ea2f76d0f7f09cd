/* SPDX-License-Identifier: Apache-2.0 */
/* sd_notify in one function: systemd's Type=notify units learn that a daemon is ready (its
 * socket bound, its store and policy checked), reloading or stopping from a datagram the
 * daemon sends to $NOTIFY_SOCKET. Written here rather than linked from libsystemd so the
 * daemons' trusted code does not grow by a library of 845 kB (with libgcrypt, libcap and
 * three compression libraries behind it) for ~40 lines of protocol. */
#include "base/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int cl_sd_notify(const char *state, struct cl_err *err)
{
    const char *name = getenv("NOTIFY_SOCKET");
    if (!name || !*name)
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(name), len = strlen(state);
    if ((name[0] != '/' && name[0] != '@') || n < 2 || n >= sizeof sa.sun_path)
        return cl_err_set(err, CL_EINVAL,
                          "NOTIFY_SOCKET '%.108s' is not an absolute path or @abstract name "
                          "shorter than %zu bytes",
                          name, sizeof sa.sun_path);
    if (len > CL_SD_MAX_STATE)
        return cl_err_set(err, CL_EINVAL, "sd_notify state of %zu bytes exceeds %d", len,
                          CL_SD_MAX_STATE);
    memcpy(sa.sun_path, name, n);
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (name[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract: no terminating NUL counted */
    else
        salen++;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return cl_err_set(err, CL_EIO, "NOTIFY_SOCKET: socket: %s", strerror(errno));
    ssize_t w = sendto(fd, state, len, MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
    int e = errno;
    close(fd);
    if (w < 0 || (size_t)w != len)
        return cl_err_set(err, CL_EIO, "NOTIFY_SOCKET '%s': send: %s", name,
                          w < 0 ? strerror(e) : "short datagram");
    return 1;
}

void cl_sd_notify_or_warn(const char *state)
{
    struct cl_err err = {0};
    if (cl_sd_notify(state, &err) < 0)
        cl_warn("sd_notify: %s", err.msg);
}

void cl_sd_notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[80];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    cl_sd_notify_or_warn(msg);
}
