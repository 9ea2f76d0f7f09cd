# SPDX-License-Identifier: Apache-2.0
"""Prints a TCP port free on 127.0.0.1, below the kernel's ephemeral range (32768 and up).

A test often takes several ports before binding any; a port from the ephemeral range could
meanwhile become the local end of an outgoing connection (a KBS replica's to its database).
free_port in lib.sh and shim-lib.sh calls this and also keeps the test from being given one
port twice."""
import random
import socket

while True:
    port = random.randint(20000, 32000)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
