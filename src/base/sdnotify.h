/* SPDX-License-Identifier: Apache-2.0 */
/* systemd's readiness protocol (sd_notify) without libsystemd: one datagram of
 * newline-separated KEY=VALUE assignments to the AF_UNIX socket named by $NOTIFY_SOCKET
 * (a path, or "@name" in the abstract namespace). docs/operations.md says why it is not
 * libsystemd. */
#ifndef CL_BASE_SDNOTIFY_H
#define CL_BASE_SDNOTIFY_H

#include "base/base.h"

/* Longest state string sent (systemd reads one datagram; its own messages are far shorter). */
#define CL_SD_MAX_STATE 1024

/* Sends `state` (borrowed; e.g. "READY=1\nSTATUS=listening") when $NOTIFY_SOCKET is set.
 * Returns 1 when sent, 0 when the process is not under a notify-type supervisor, or
 * CL_EINVAL (socket name not a path or "@name", state too long) / CL_EIO (socket or send
 * failed) with `err` naming NOTIFY_SOCKET. */
CL_MUST_CHECK int cl_sd_notify(const char *state, struct cl_err *err);

/* The same, logging a failure as a warning instead of returning it: the daemons keep serving
 * when the supervisor cannot be told (systemd then times the start out, which it reports). */
void cl_sd_notify_or_warn(const char *state);

/* "RELOADING=1\nMONOTONIC_USEC=<now>" — the form systemd 253's Type=notify-reload needs and
 * older systemd accepts. */
void cl_sd_notify_reloading(void);

#endif
