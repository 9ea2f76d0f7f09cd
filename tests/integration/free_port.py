# SPDX-License-Identifier: Apache-2.0
"""Prints a TCP port free on 127.0.0.1, below the kernel's ephemeral range (32768 and up).

A test often takes several ports before binding any; a port from the ephemeral range could
meanwhile become the local end of an outgoing connection (a KBS replica's to its database).

usage: free_port.py [LEDGER]
With LEDGER (a file, one port per line), a port listed there is never printed, and the one
printed is appended: one test is never given the same port twice. free_port in lib.sh and
shim-lib.sh calls it with $T/.ports-given."""
import random
import socket
import sys

ledger = sys.argv[1] if len(sys.argv) > 1 else None
given = set()
if ledger:
    try:
        with open(ledger) as f:
            given = {line.strip() for line in f}
    except FileNotFoundError:
        pass

while True:
    port = random.randint(20000, 32000)
    if str(port) in given:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    if ledger:
        with open(ledger, "a") as f:
            f.write(f"{port}\n")
    print(port)
    break
