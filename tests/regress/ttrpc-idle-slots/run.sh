#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# With its connection table full of idle peers, cloister-aa still answers a new client (the
# longest-idle connection is closed to make room) and stays up; the most recent idle peer
# is left alone and still answers. The ttrpc client here is python's own framing.
REGRESS_WITH=integration
. "$(dirname "$0")/../lib.sh"
AA_BIN=$BUILD/src/cmd/cloister-aa
[ -x "$AA_BIN" ] || fail "cloister-aa not built"
cat >"$T/aa.toml" <<CONF
allow_sample_attester_insecure = true
[eventlog_config]
enable_eventlog = false
CONF
"$AA_BIN" -a "unix://$T/aa.sock" -c "$T/aa.toml" >>"$T/aa.log" 2>&1 &
AA_PID=$!
PIDS="$PIDS $AA_PID"
i=0
until [ -S "$T/aa.sock" ]; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "cloister-aa did not come up: $(tail -3 "$T/aa.log")"
    kill -0 "$AA_PID" 2>/dev/null || fail "cloister-aa exited: $(tail -3 "$T/aa.log")"
    sleep 0.05
done

python3 - "$T/aa.sock" <<'PY' || fail "idle slots: $(tail -5 "$T/aa.log")"
import socket, struct, sys, time
MAX_CONNS = 64  # CL_TTRPC_MAX_CONNS
SVC, METHOD = "attestation_agent.AttestationAgentService", "GetTeeType"

def conn():
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(5); return s

def pb_str(field, v):
    b = v.encode(); return bytes([field << 3 | 2, len(b)]) + b

def call(s, stream):
    req = pb_str(1, SVC) + pb_str(2, METHOD)
    s.sendall(struct.pack(">IIBB", len(req), stream, 1, 0) + req)
    h = b""
    while len(h) < 10:
        c = s.recv(10 - len(h))
        if not c: return None
        h += c
    n, sid, typ, _ = struct.unpack(">IIBB", h)
    b = b""
    while len(b) < n: b += s.recv(n - len(b))
    assert sid == stream and typ == 2, (sid, typ)
    return b

idle = []
for i in range(MAX_CONNS):
    s = conn()
    if i % 2:                      # half made a call before going quiet
        assert b"sample" in call(s, 1)
    idle.append(s)
    time.sleep(0.005)
time.sleep(0.3)
t0 = time.time()
s = conn()                         # before the fix: closed at once, "64 connections open"
r = call(s, 1)
assert r is not None and b"sample" in r, "the new client got no answer"
print("new client answered in %.3f s with the table full of idle peers" % (time.time() - t0))
idle[0].settimeout(2)
assert idle[0].recv(1) == b"", "the longest-idle connection is still open"
print("the longest-idle connection was closed")
assert b"sample" in call(idle[-1], 3), "the most recent idle connection lost"   # twin
print("the most recent idle connection still answers")
PY
kill -0 "$AA_PID" || fail "cloister-aa died"
grep -q "closing the one idle for" "$T/aa.log" || fail "no log line names the eviction: $(tail -3 "$T/aa.log")"
ok "a full table of idle peers does not lock a new client out; cloister-aa is up"
