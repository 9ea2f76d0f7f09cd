#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Requests whose framing a proxy and cloister-kbs could read differently are answered 400 and
# the connection closed: the request hidden behind them is never served. Raw bytes over a
# socket (python3), against the real daemon.
REGRESS_WITH=integration
. "$(dirname "$0")/../lib.sh"
make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
start_kbs "$T/kbs.toml"

python3 - "$PORT" <<'PY' || fail "a hidden request was served"
import re, socket, sys
port = int(sys.argv[1])
HIDDEN = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
CHUNKED = b"%x\r\n" % len(HIDDEN) + HIDDEN + b"\r\n0\r\n\r\n"
AUTH = b"POST /kbs/v0/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"

def exchange(raw):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(3)
    s.sendall(raw)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        out += b"<still open>"
    s.close()
    return out

cases = {
    "two Content-Length": AUTH + b"Content-Length: 0\r\nContent-Length: %d\r\n\r\n" % len(HIDDEN) + HIDDEN,
    "Content-Length with chunked": AUTH + b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED,
    "Transfer-Encoding with a space": AUTH + b"Transfer-Encoding : chunked\r\n\r\n" + CHUNKED,
    "bare CR": AUTH + b"X-A: a\rTransfer-Encoding: chunked\r\n\r\n" + CHUNKED,
    "bare LF": AUTH + b"X-A: a\nContent-Length: 0\r\n\r\n" + HIDDEN,
    "NUL in a header": AUTH + b"X-A: a\0b\r\nContent-Length: 0\r\n\r\n" + HIDDEN,
}
bad = 0
for name, raw in cases.items():
    out = exchange(raw)
    statuses = re.findall(rb"HTTP/1\.[01] (\d\d\d)", out)
    served = b"kbs_http_requests_total" in out
    if statuses != [b"400"] or served or b"<still open>" in out:
        print("FAIL %s: statuses %s, hidden request served: %s" % (name, statuses, served))
        bad = 1
    else:
        print("ok - %s: 400, connection closed, nothing else served" % name)
# the twin: a well-framed chunked request and a pipelined second one are both served
out = exchange(AUTH + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + HIDDEN[:-2] + b"Connection: close\r\n\r\n")
if re.findall(rb"HTTP/1\.[01] (\d\d\d)", out) != [b"401", b"200"]:
    print("FAIL twin: %r" % out[:300])
    bad = 1
else:
    print("ok - well-framed chunked request and a pipelined one: 401 then 200")
sys.exit(bad)
PY
kill -0 "$KBS_PID" || fail "cloister-kbs died"
grep -q '=> 400 (http_server.c:' "$T/kbs.log" || fail "refusals not logged with the check's line"
echo PASS
