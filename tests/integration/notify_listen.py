#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Plays systemd's side of sd_notify for a test: owns a datagram socket, logs each message.

usage: notify_listen.py SOCKET LOG [PROBE_URL]

SOCKET is a path or "@name" (abstract namespace), as NOTIFY_SOCKET gives it. Each datagram
becomes one LOG line, its assignments joined by '|'. When a datagram carries READY=1 and
PROBE_URL is given, the URL is fetched at once and the line ends with ' probe=ok' or
' probe=fail': READY=1 must mean the daemon already answers. LOG.bound appears once the
socket is bound. Runs until killed.
"""
import os
import socket
import sys
import urllib.request


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    name, log = sys.argv[1], sys.argv[2]
    probe = sys.argv[3] if len(sys.argv) > 3 else None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name[1:] if name.startswith("@") else name)
    open(log + ".bound", "w").close()
    while True:
        data = s.recv(4096)
        line = data.decode("utf-8", "replace").replace("\n", "|")
        if probe and "READY=1" in data.decode("utf-8", "replace").split("\n"):
            try:
                with urllib.request.urlopen(probe, timeout=2) as r:
                    line += " probe=ok" if r.status == 200 else f" probe=fail({r.status})"
            except OSError as e:
                line += f" probe=fail({e})"
        with open(log, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


if __name__ == "__main__":
    sys.exit(main())
