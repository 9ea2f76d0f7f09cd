#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A client that drips one header byte every second (well within the 30 s idle timeout) loses
# its connection at the whole-request deadline (request_timeout = 3 here), while a client that
# sends whole requests is served on the same server, also one whose request follows a pause
# shorter than the deadline on a kept-alive connection.
REGRESS_WITH=integration
. "$(dirname "$0")/../lib.sh"
make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
sed -i 's/^insecure_http = true/insecure_http = true\nrequest_timeout = 3/' "$T/kbs.toml"
start_kbs "$T/kbs.toml"

python3 - "$PORT" <<'PY' || fail "slow-header client"
import socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))
req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Drip: " + b"a" * 60 + b"\r\n\r\n"
t0 = time.time()
closed = None
for i, b in enumerate(req):
    try:
        s.send(bytes([b]))
        s.settimeout(1.0)
        if s.recv(1) == b"":
            closed = time.time() - t0
            break
    except socket.timeout:
        continue
    except OSError:
        closed = time.time() - t0
        break
    else:
        print("FAIL: the server answered a request it should not have finished reading")
        sys.exit(1)
if closed is None or closed > 6:
    print("FAIL: the dripping connection is still open after %.1f s" % (time.time() - t0))
    sys.exit(1)
print("ok - dripping client cut off after %.1f s" % closed)
# the twin: whole requests, kept alive across a 2 s pause, are served
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
first = s.recv(4096)
time.sleep(2)
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
second = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    second += d
if not first.startswith(b"HTTP/1.1 200") or not second.startswith(b"HTTP/1.1 200"):
    print("FAIL: whole requests: %r / %r" % (first[:40], second[:40]))
    sys.exit(1)
print("ok - whole requests on a kept-alive connection served")
PY
grep -q 'no whole request within 3 s: connection closed' "$T/kbs.log" || fail "the cut-off is not logged"
kill -0 "$KBS_PID" || fail "cloister-kbs died"
echo PASS
