#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cloister-agent driven by `cloister agent-ctl`, both real binaries: the policy comes from an
# init-data block-device image made by `cloister initdata encode --image` (padded to sectors
# as a disk would be); decisions, statuses and exit codes; SetPolicy replacing the policy and
# a bad SetPolicy leaving it; a tampered init-data image stopping the agent; Health.
. "$(dirname "$0")/lib.sh"

AGENT_BIN=$BUILD/src/cmd/cloister-agent
[ -x "$AGENT_BIN" ] || fail "cloister-agent not built at $AGENT_BIN"
CTL="$CLI_BIN agent-ctl"
SOCK="$T/agent.sock"

$AGENT_BIN --help | grep -q -- "--initdata-device" || fail "cloister-agent --help"
$CTL --help | grep -q "agent-ctl --addr" || fail "agent-ctl --help"
$CTL list | grep -q "grpc.AgentService.CopyFile(CopyFileRequest)" || fail "agent-ctl list"
ok "--help and list"

cat > "$T/policy.rego" <<'EOF2'
package agent_policy

default AllowRequestsFailingPolicy := false
default CreateContainerRequest := false
default SetPolicyRequest := true
default StartContainerRequest := true

CreateContainerRequest if {
    input.container_id == "good"
    input.OCI.Process.Args == ["/pause"]
    print("create of", input.container_id, "allowed")
}
EOF2
python3 - "$T/policy.rego" "$T/initdata.toml" <<'EOF2'
import sys
pol = open(sys.argv[1]).read()
open(sys.argv[2], "w").write('version = "0.1.0"\nalgorithm = "sha384"\n\n[data]\n"policy.rego" = \'\'\'\n' + pol + "'''\n")
EOF2
$CLI_BIN initdata encode "$T/initdata.toml" --image "$T/img.raw" || fail "initdata encode"
# a disk is whole sectors: pad with zeros
python3 - "$T/img.raw" <<'EOF2'
import sys
b = open(sys.argv[1], "rb").read()
open(sys.argv[1], "wb").write(b + b"\0" * (4096 - len(b) % 4096))
EOF2

start_agent() {
    "$AGENT_BIN" --listen "unix:$SOCK" --gate-only "$@" >>"$T/agent.log" 2>&1 &
    AGENT_PID=$!
    PIDS="$PIDS $AGENT_PID"
    i=0
    while ! $CTL --addr "unix:$SOCK" Check >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 100 ] || { cat "$T/agent.log"; fail "agent did not start"; }
        kill -0 $AGENT_PID 2>/dev/null || { cat "$T/agent.log"; fail "agent exited"; }
        sleep 0.1
    done
}

start_agent --initdata-device "$T/img.raw"
grep -q "init-data from $T/img.raw" "$T/agent.log" || fail "init-data not read"

$CTL --addr "unix:$SOCK" Check > "$T/check.json" || fail "Check"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == {"status": 1}' "$T/check.json" || fail "Check result"
$CTL --addr "unix:$SOCK" Version | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["agent_version"]' ||
    fail "Version"
ok "Health answers (SERVING, version)"

# allowed: the gate-only agent answers UNIMPLEMENTED after the allow (agent-ctl exit 6)
set +e
$CTL --addr "unix:$SOCK" CreateContainer '{"container_id":"good","OCI":{"Process":{"Args":["/pause"]}}}' 2>"$T/e1"
rc=$?
set -e
[ $rc = 6 ] && grep -q "status 12 UNIMPLEMENTED.*allowed by policy" "$T/e1" || fail "allowed create: rc=$rc $(cat "$T/e1")"
ok "allowed CreateContainer passes the gate"

# tamper twins: other id, other args → PERMISSION_DENIED (exit 5), the prints appended
for req in '{"container_id":"evil","OCI":{"Process":{"Args":["/pause"]}}}' \
           '{"container_id":"good","OCI":{"Process":{"Args":["/bin/sh"]}}}'; do
    set +e
    $CTL --addr "unix:$SOCK" CreateContainer "$req" 2>"$T/e2"
    rc=$?
    set -e
    [ $rc = 5 ] && grep -q "status 7 PERMISSION_DENIED: CreateContainerRequest is blocked by policy" "$T/e2" ||
        fail "denied create: rc=$rc $(cat "$T/e2")"
done
ok "tampered CreateContainer requests denied with PERMISSION_DENIED"

# undefined in the policy → INTERNAL (exit 1), not an allow
set +e
$CTL --addr "unix:$SOCK" ExecProcess '{}' 2>"$T/e3"; rc=$?
$CTL --addr "unix:$SOCK" CreateContainer '{"no_such_field":1}' 2>"$T/e4"; rc4=$?
set -e
[ $rc = 1 ] && grep -q "status 13 INTERNAL: ExecProcessRequest: internal error" "$T/e3" || fail "undefined: $(cat "$T/e3")"
[ $rc4 = 2 ] && grep -q "no_such_field: no such field" "$T/e4" || fail "unknown key: rc=$rc4 $(cat "$T/e4")"
ok "undefined request is INTERNAL; agent-ctl refuses unknown keys by name"

# SetPolicy: a parse error is INVALID_ARGUMENT and the old policy stays
set +e
$CTL --addr "unix:$SOCK" SetPolicy '{"policy":"package agent_policy\ndefault CreateContainerRequest := "}' 2>"$T/e5"
rc=$?
set -e
[ $rc = 3 ] && grep -q "status 3 INVALID_ARGUMENT" "$T/e5" || fail "bad SetPolicy: rc=$rc $(cat "$T/e5")"
set +e
$CTL --addr "unix:$SOCK" CreateContainer '{"container_id":"good","OCI":{"Process":{"Args":["/pause"]}}}' 2>/dev/null
rc=$?
set -e
[ $rc = 6 ] || fail "old policy lost after a bad SetPolicy (rc=$rc)"
printf '{"policy": %s}' "$(python3 -c 'import json; print(json.dumps("package agent_policy\ndefault CreateContainerRequest := false\n"))')" > "$T/setpolicy.json"
$CTL --addr "unix:$SOCK" SetPolicy "@$T/setpolicy.json" >/dev/null || fail "SetPolicy"
set +e
$CTL --addr "unix:$SOCK" CreateContainer '{"container_id":"good","OCI":{"Process":{"Args":["/pause"]}}}' 2>/dev/null
rc=$?
$CTL --addr "unix:$SOCK" SetPolicy "@$T/setpolicy.json" 2>"$T/e6"; rc6=$?
set -e
[ $rc = 5 ] || fail "new policy not in force (rc=$rc)"
# the new policy does not define SetPolicyRequest: a further SetPolicy is refused (INTERNAL)
[ $rc6 = 1 ] || fail "SetPolicy under a policy without it: rc=$rc6 $(cat "$T/e6")"
ok "SetPolicy: bad text refused and old policy kept; good text replaces it"

kill $AGENT_PID; wait $AGENT_PID 2>/dev/null || true

# tamper twin of the init-data image: one flipped byte in the gzip stream stops the agent
python3 - "$T/img.raw" "$T/bad.raw" <<'EOF2'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[16 + 40] ^= 0xff
open(sys.argv[2], "wb").write(bytes(b))
EOF2
set +e
"$AGENT_BIN" --listen "unix:$T/bad.sock" --gate-only --initdata-device "$T/bad.raw" >"$T/bad.log" 2>&1
rc=$?
set -e
[ $rc != 0 ] && grep -q "$T/bad.raw" "$T/bad.log" || fail "tampered init-data: rc=$rc $(cat "$T/bad.log")"
ok "tampered init-data image stops the agent (rc=$rc)"

# --policy FILE wins over init-data; a policy that does not parse stops the agent
printf 'package agent_policy\ndefault CreateContainerRequest := true\n' > "$T/allow.rego"
start_agent --initdata-device "$T/img.raw" --policy "$T/allow.rego"
set +e
$CTL --addr "unix:$SOCK" CreateContainer '{"container_id":"evil"}' 2>/dev/null; rc=$?
set -e
[ $rc = 6 ] || fail "--policy did not win over init-data (rc=$rc)"
kill $AGENT_PID; wait $AGENT_PID 2>/dev/null || true
printf 'package agent_policy\ndefault X := \n' > "$T/broken.rego"
set +e
"$AGENT_BIN" --listen "unix:$T/b2.sock" --policy "$T/broken.rego" >"$T/b2.log" 2>&1; rc=$?
set -e
[ $rc = 3 ] && grep -q "rego_parse_error" "$T/b2.log" || fail "broken --policy: rc=$rc $(cat "$T/b2.log")"
ok "--policy wins over init-data; an unparsable policy stops the agent (exit 3)"

# the same agent over tcp (the guest's _insecure TCP path) answers the same way
PORT=$(free_port)
"$AGENT_BIN" --listen "tcp://127.0.0.1:$PORT" --gate-only --policy "$T/policy.rego" >>"$T/agent.log" 2>&1 &
TCP_PID=$!
PIDS="$PIDS $TCP_PID"
i=0
until $CTL --addr "tcp://127.0.0.1:$PORT" Check >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "agent on tcp did not start"; sleep 0.1
done
set +e
$CTL --addr "tcp://127.0.0.1:$PORT" CreateContainer '{"container_id":"evil"}' 2>/dev/null; rc=$?
set -e
[ $rc = 5 ] || fail "tcp: denied create rc=$rc"
ok "tcp transport: Health and the gate"

# serial: the guest's transport (virtio-serial port). A pty stands in for the port; the host
# side is spoken by python3 (an independent ttrpc encoder): Health/Check, then a request the
# policy denies, each answered on the right stream.
python3 - "$AGENT_BIN" "$T/policy.rego" "$T" <<'EOF2' || fail "serial transport"
import os, pty, struct, subprocess, sys, time, tty, select
agent, policy, tmp = sys.argv[1:4]
master, slave = pty.openpty()
tty.setraw(master); tty.setraw(slave)
path = os.ttyname(slave)
log = open(os.path.join(tmp, "serial.log"), "w")
p = subprocess.Popen([agent, "--listen", "serial:" + path, "--gate-only", "--policy", policy],
                     stdout=log, stderr=log)
def field(n, b):  # length-delimited protobuf field
    return bytes([n << 3 | 2, len(b)]) + b
def call(stream, service, method, payload=b""):
    req = field(1, service.encode()) + field(2, method.encode()) + (field(3, payload) if payload else b"")
    os.write(master, struct.pack(">IIBB", len(req), stream, 1, 0) + req)
    buf, deadline = b"", time.time() + 20
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if r:
            buf += os.read(master, 65536)
        if len(buf) >= 10:
            n, sid, typ, _ = struct.unpack(">IIBB", buf[:10])
            if len(buf) >= 10 + n:
                assert sid == stream and typ == 2, (sid, typ)
                return buf[10:10 + n]
    raise SystemExit("no response on stream %d" % stream)
def status(resp):  # ttrpc.Response{1: Status{1: code, 2: message}, 2: payload}
    code, payload, i = 0, b"", 0
    while i < len(resp):
        key, ln = resp[i], resp[i + 1]
        body = resp[i + 2:i + 2 + ln]
        if key == 0x0a and len(body) >= 2 and body[0] == 0x08:
            code = body[1]
        if key == 0x12:
            payload = body
        i += 2 + ln
    return code, payload
time.sleep(0.5)
try:
    code, payload = status(call(1, "grpc.Health", "Check"))
    assert code == 0 and payload == b"\x08\x01", (code, payload)
    # CreateContainerRequest{container_id: "evil"}: the policy denies it → PERMISSION_DENIED (7)
    code, _ = status(call(3, "grpc.AgentService", "CreateContainer", field(1, b"evil")))
    assert code == 7, code
finally:
    p.terminate(); p.wait(10)
EOF2
ok "serial transport (pty): Health and a denial, spoken by an independent encoder"

# vsock: Kata's transport. The agent must bind vsock://-1:PORT; a call needs vsock loopback
# (CID 1), which this host may lack — then only the bind is checked.
if [ -e /dev/vsock ]; then
    VPORT=$(( $(free_port) % 30000 + 20000 ))
    "$AGENT_BIN" --listen "vsock://-1:$VPORT" --gate-only --policy "$T/policy.rego" >"$T/vsock.log" 2>&1 &
    VS_PID=$!
    PIDS="$PIDS $VS_PID"
    i=0
    until grep -q "listening on vsock://-1:$VPORT" "$T/vsock.log"; do
        i=$((i + 1)); [ $i -lt 50 ] || fail "agent on vsock: $(cat "$T/vsock.log")"
        kill -0 $VS_PID 2>/dev/null || fail "agent on vsock exited: $(cat "$T/vsock.log")"
        sleep 0.1
    done
    if $CTL --timeout 2000 --addr "vsock://1:$VPORT" Check >/dev/null 2>&1; then
        set +e
        $CTL --addr "vsock://1:$VPORT" CreateContainer '{"container_id":"evil"}' 2>/dev/null; rc=$?
        set -e
        [ $rc = 5 ] || fail "vsock: denied create rc=$rc"
        ok "vsock transport: Health and the gate (loopback)"
    else
        ok "vsock transport: bound (no vsock loopback on this host for a call)"
    fi
fi
