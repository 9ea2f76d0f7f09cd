#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A container end to end through the real daemons, in namespaces of its own
# (unshare --mount --net --uts --ipc --pid --fork): a loopback docker-registry with a busybox
# image (rootfs from /bin/busybox of busybox-static, pushed with skopeo), cloister-cdh serving
# api.ImagePullService under an [image] policy, cloister-agent with runc, and every call made
# with `cloister agent-ctl` over ttrpc:
#   CreateSandbox → CreateContainer (image_guest_pull) → StartContainer → ReadStdout/ReadStderr
#   → WaitProcess exit code → RemoveContainer (bundle, runc state and overlay gone);
#   stdin (WriteStdin/CloseStdin), ExecProcess, SignalProcess, StatsContainer, a terminal
#   (pty, TtyWinResize), CopyFile into the shared folder and its refusals (../, outside,
#   through a planted symlink), GetGuestDetails;
#   tamper twins: an image the cdh policy rejects, and an agent policy that forbids an image
#   or a command: PERMISSION_DENIED and nothing created (no bundle, no runc state).
set -eu
AGENT_LIB_DIR=$(cd "$(dirname "$0")" && pwd)
. "$AGENT_LIB_DIR/agent-run-lib.sh"

start_agent "$T/allow.rego"

# ---- sandbox ----
must CreateSandbox '{"hostname": "sandbox-1", "sandbox_id": "sb1", "dns": ["nameserver 10.0.2.3"]}'
[ "$(hostname)" = sandbox-1 ] || fail "the agent's hostname is $(hostname)"
grep -q 'nameserver 10.0.2.3' "$RUN/sandbox/resolv.conf" || fail "resolv.conf not written"
ok "CreateSandbox set the hostname and resolv.conf"
expect 1 CreateSandbox '{"hostname": "again"}' "a second CreateSandbox is refused"

# ---- a container: guest pull, output, exit code ----
container_json c1 '["/bin/sh", "-c", "echo hello from $(hostname); echo to-stderr >&2; exit 3"]' > "$T/c1.json"
t0=$(date +%s%N)
must CreateContainer "@$T/c1.json"
t1=$(date +%s%N)
ok "CreateContainer with image_guest_pull of $IMAGE ($(( (t1 - t0) / 1000000 )) ms)"
grep -q "$RUN/c1/rootfs" /proc/mounts || fail "the rootfs is not an overlay mount"
[ -x "$RUN/c1/rootfs/bin/busybox" ] || fail "busybox missing from the pulled rootfs"
runc --root "$RUN/.runc" list | grep -q '^c1 .*created' || fail "runc does not list c1 as created"
ok "the pulled layers are mounted at $RUN/c1/rootfs and runc holds c1 created"
jq -e '.OCI' "$T/c1.json" >/dev/null
jq -e '.root.path == "'"$RUN"'/c1/rootfs" and (.linux.namespaces | map(.type) | sort == ["ipc", "mount", "pid", "uts"])
       and .linux.cgroupsPath == "/'"$CLOISTER_AGENT_CGROUP_PARENT"'/c1"
       and .process.rlimits[0].hard <= '"$(ulimit -Hn)" "$RUN/c1/config.json" >/dev/null \
    || { cat "$RUN/c1/config.json"; fail "config.json not rewritten as documented"; }
ok "config.json: root, cgroupsPath, no network namespace, rlimits capped at $(ulimit -Hn)"
expect 1 CreateContainer "@$T/c1.json" "CreateContainer of an existing id is refused"
jq 'del(.OCI.Linux.Namespaces)' "$T/c1.json" | jq '.container_id = "c0" | .exec_id = "c0" | .storages[0].mount_point = "'"$RUN"'/c0/rootfs" | .OCI.Root.Path = "'"$RUN"'/c0/rootfs"' > "$T/c0.json"
must CreateContainer "@$T/c0.json"
jq -e '.linux.namespaces | map(.type) | sort == ["ipc", "mount", "pid", "uts"]' "$RUN/c0/config.json" >/dev/null \
    || fail "a spec without namespaces: $(jq -c .linux.namespaces "$RUN/c0/config.json")"
must RemoveContainer '{"container_id": "c0"}'
ok "a spec without namespaces still gets mount, pid, ipc and uts"
must StartContainer '{"container_id": "c1"}'
read_all c1 "" ReadStdout
[ "$(cat "$T/stream")" = "hello from c1" ] || fail "stdout was '$(cat "$T/stream")'"
ok "ReadStdout: $(cat "$T/stream")"
read_all c1 "" ReadStderr
[ "$(cat "$T/stream")" = "to-stderr" ] || fail "stderr was '$(cat "$T/stream")'"
ok "ReadStderr: $(cat "$T/stream")"
must WaitProcess '{"container_id": "c1", "exec_id": ""}'
[ "$(jq .status "$T/ctl.out")" = 3 ] || fail "WaitProcess: $(cat "$T/ctl.out")"
ok "WaitProcess: exit status 3"
must RemoveContainer '{"container_id": "c1"}'
[ ! -e "$RUN/c1" ] || fail "the bundle survived RemoveContainer"
grep -q "$RUN/c1/rootfs" /proc/mounts && fail "the overlay survived RemoveContainer"
runc --root "$RUN/.runc" list | grep -q '^c1 ' && fail "runc still knows c1"
ok "RemoveContainer: bundle, overlay and runc state gone"
expect 6 StartContainer '{"container_id": "c1"}' "a removed container is not found"

# ---- stdin, exec, signals, stats ----
container_json c2 '["/bin/cat"]' > "$T/c2.json"
must CreateContainer "@$T/c2.json"
must StartContainer '{"container_id": "c2"}'
must WriteStdin "{\"container_id\": \"c2\", \"exec_id\": \"\", \"data\": [$(bytes 'ping
')]}"
[ "$(jq .len "$T/ctl.out")" = 5 ] || fail "WriteStdin: $(cat "$T/ctl.out")"
must ReadStdout '{"container_id": "c2", "exec_id": "", "len": 100}'
[ "$(jq -j '.data | implode' "$T/ctl.out")" = "ping" ] || fail "cat echoed $(cat "$T/ctl.out")"
ok "WriteStdin → cat → ReadStdout"
must ExecProcess '{"container_id": "c2", "exec_id": "e1", "process": {"Args": ["/bin/sh", "-c", "echo exec-ok; exit 7"], "Env": ["PATH=/bin"], "Cwd": "/"}}'
read_all c2 e1 ReadStdout
[ "$(cat "$T/stream")" = exec-ok ] || fail "exec printed '$(cat "$T/stream")'"
must WaitProcess '{"container_id": "c2", "exec_id": "e1"}'
[ "$(jq .status "$T/ctl.out")" = 7 ] || fail "WaitProcess e1: $(cat "$T/ctl.out")"
ok "ExecProcess: output and exit status 7"
must ExecProcess '{"container_id": "c2", "exec_id": "t1", "process": {"Terminal": true, "Args": ["/bin/tty"], "Env": ["PATH=/bin"], "Cwd": "/"}}'
read_all c2 t1 ReadStdout
tr -d '\r' < "$T/stream" | grep -q '^/dev/pts/' || fail "exec with a terminal printed '$(cat "$T/stream")'"
must WaitProcess '{"container_id": "c2", "exec_id": "t1"}'
ok "ExecProcess with a terminal: $(tr -d '\r' < "$T/stream")"
must ExecProcess '{"container_id": "c2", "exec_id": "e3", "process": {"Args": ["/bin/sleep", "600"], "Env": ["PATH=/bin"]}}'
expect 1 ExecProcess '{"container_id": "c2", "exec_id": "e3", "process": {"Args": ["/bin/true"]}}' "an exec id still running is refused"
must SignalProcess '{"container_id": "c2", "exec_id": "e3", "signal": 15}'
must WaitProcess '{"container_id": "c2", "exec_id": "e3"}'
[ "$(jq .status "$T/ctl.out")" = 143 ] || fail "exec after SIGTERM: $(cat "$T/ctl.out")"
ok "SignalProcess SIGTERM to an exec stays SIGTERM: status 143"
expect 3 ExecProcess '{"container_id": "c2", "exec_id": "e2", "process": {"Args": []}}' "ExecProcess with no args is refused"
must StatsContainer '{"container_id": "c2"}'
mem=$(jq '.cgroup_stats.memory_stats.usage.usage' "$T/ctl.out")
cpu=$(jq '.cgroup_stats.cpu_stats.cpu_usage.total_usage' "$T/ctl.out")
pids=$(jq '.cgroup_stats.pids_stats.current' "$T/ctl.out")
[ "$mem" -gt 0 ] && [ "$pids" -ge 1 ] || fail "StatsContainer: $(cat "$T/ctl.out")"
ok "StatsContainer: memory $mem bytes, cpu $cpu ns, $pids pids"
must UpdateContainer '{"container_id": "c2", "resources": {"Memory": {"Limit": 67108864}, "Pids": {"Limit": 50}}}'
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    lim=$(cat "/sys/fs/cgroup/$CLOISTER_AGENT_CGROUP_PARENT/c2/memory.max")
else
    lim=$(cat "/sys/fs/cgroup/memory/$CLOISTER_AGENT_CGROUP_PARENT/c2/memory.limit_in_bytes")
fi
[ "$lim" = 67108864 ] || fail "UpdateContainer: the memory limit is $lim"
must StatsContainer '{"container_id": "c2"}'
[ "$(jq .cgroup_stats.pids_stats.limit "$T/ctl.out")" = 50 ] || fail "UpdateContainer: pids limit $(jq .cgroup_stats.pids_stats "$T/ctl.out")"
ok "UpdateContainer: memory limit 64 MiB and pids limit 50 in the cgroup"
must PauseContainer '{"container_id": "c2"}'
runc --root "$RUN/.runc" list | grep -q '^c2 .*paused' || fail "PauseContainer: $(runc --root "$RUN/.runc" list)"
must ResumeContainer '{"container_id": "c2"}'
runc --root "$RUN/.runc" list | grep -q '^c2 .*running' || fail "ResumeContainer: $(runc --root "$RUN/.runc" list)"
ok "PauseContainer / ResumeContainer freeze and thaw c2"
expect 6 PauseContainer '{"container_id": "nope"}' "PauseContainer of an unknown container"
must CloseStdin '{"container_id": "c2", "exec_id": ""}'
must WaitProcess '{"container_id": "c2", "exec_id": ""}'
[ "$(jq .status "$T/ctl.out")" = 0 ] || fail "cat after CloseStdin: $(cat "$T/ctl.out")"
ok "CloseStdin ends cat: status 0"
must RemoveContainer '{"container_id": "c2"}'

container_json c3 '["/bin/sleep", "600"]' > "$T/c3.json"
must CreateContainer "@$T/c3.json"
must StartContainer '{"container_id": "c3"}'
must SignalProcess '{"container_id": "c3", "exec_id": "", "signal": 15}'
must WaitProcess '{"container_id": "c3", "exec_id": ""}'
[ "$(jq .status "$T/ctl.out")" = 137 ] || fail "sleep after SIGTERM: $(cat "$T/ctl.out")"
ok "SignalProcess SIGTERM to an init that does not catch it (pid 1 would ignore it) kills it: status 137"
container_json c3b '["/bin/sh", "-c", "trap \"exit 42\" TERM; echo ready; while :; do sleep 0.1; done"]' > "$T/c3b.json"
must CreateContainer "@$T/c3b.json"
must StartContainer '{"container_id": "c3b"}'
must ReadStdout '{"container_id": "c3b", "exec_id": "", "len": 100}'
must SignalProcess '{"container_id": "c3b", "exec_id": "", "signal": 15}'
must WaitProcess '{"container_id": "c3b", "exec_id": ""}'
[ "$(jq .status "$T/ctl.out")" = 42 ] || fail "an init with a TERM trap: $(cat "$T/ctl.out")"
ok "an init that traps SIGTERM gets SIGTERM: status 42"
must RemoveContainer '{"container_id": "c3b"}'
must SignalProcess '{"container_id": "c3", "exec_id": "", "signal": 15}'
ok "SignalProcess to an exited process is a no-op"
must RemoveContainer '{"container_id": "c3"}'

# ---- a terminal ----
container_json c4 '["/bin/sh", "-c", "sleep 1; stty size; tty"]' true > "$T/c4.json"
must CreateContainer "@$T/c4.json"
must TtyWinResize '{"container_id": "c4", "exec_id": "", "row": 33, "column": 77}'
must StartContainer '{"container_id": "c4"}'
read_all c4 "" ReadStdout
tr -d '\r' < "$T/stream" > "$T/tty.out"
grep -q '^33 77$' "$T/tty.out" && grep -q '^/dev/pts/' "$T/tty.out" || fail "terminal output: $(cat "$T/tty.out")"
ok "terminal: pty received over --console-socket, TtyWinResize 33x77 seen by stty"
must WaitProcess '{"container_id": "c4", "exec_id": ""}'
must RemoveContainer '{"container_id": "c4"}'

# ---- CopyFile: the shared folder only ----
must CopyFile "{\"path\": \"$SHARED/sb1/hosts\", \"file_size\": 9, \"file_mode\": 33188, \"dir_mode\": 493, \"uid\": 0, \"gid\": 0, \"offset\": 0, \"data\": [$(bytes '127.0.0.1')]}"
[ "$(cat "$SHARED/sb1/hosts")" = 127.0.0.1 ] || fail "CopyFile content"
[ "$(stat -c %a "$SHARED/sb1/hosts")" = 644 ] || fail "CopyFile mode"
ok "CopyFile wrote $SHARED/sb1/hosts (mode 644)"
expect 5 CopyFile "{\"path\": \"$SHARED/../../escape\", \"file_size\": 1, \"file_mode\": 33188, \"data\": [65]}" "CopyFile with .. is refused"
[ ! -e "$RUN/escape" ] || fail "CopyFile escaped with .."
expect 5 CopyFile "{\"path\": \"$T/outside\", \"file_size\": 1, \"file_mode\": 33188, \"data\": [65]}" "CopyFile outside the shared folder is refused"
[ ! -e "$T/outside" ] || fail "CopyFile wrote outside"
must CopyFile "{\"path\": \"$SHARED/link\", \"file_mode\": 41471, \"data\": [$(bytes "$T")]}"
[ -L "$SHARED/link" ] || fail "CopyFile symlink not made"
expect 5 CopyFile "{\"path\": \"$SHARED/link/through\", \"file_size\": 1, \"file_mode\": 33188, \"data\": [65]}" "CopyFile through a planted symlink is refused"
[ ! -e "$T/through" ] || fail "CopyFile followed the symlink out"

# ---- guest details, and a container the cdh policy rejects ----
must GetGuestDetails '{"mem_block_size": true, "mem_hotplug_probe": true}'
jq -e '.agent_details.storage_handlers | index("image_guest_pull")' "$T/ctl.out" >/dev/null || fail "GetGuestDetails: $(cat "$T/ctl.out")"
ok "GetGuestDetails names image_guest_pull"
container_json c5 '["/bin/true"]' false "$REG/other/busybox:1" > "$T/c5.json"
expect 1 CreateContainer "@$T/c5.json" "an image the cdh signature policy rejects"
grep -q 'reject' "$T/ctl.err" || fail "the refusal does not name the policy"
[ ! -e "$RUN/c5" ] || fail "a bundle stayed after the refused pull"

# ---- OOM: a container over its memory limit; GetOOMEvent blocks meanwhile (other calls go on) ----
"$CLI" agent-ctl --addr "unix://$T/agent.sock" --timeout 120000 GetOOMEvent '{}' > "$T/oom.out" 2> "$T/oom.err" &
OOM_PID=$!
container_json c9 '["/bin/sh", "-c", "x=$(head -c 200000000 /dev/zero | tr \\\\0 a); echo survived"]' > "$T/c9.json"
jq '.OCI.Linux.Resources = {"Memory": {"Limit": 16777216, "Swap": 16777216}}' "$T/c9.json" > "$T/c9m.json"
must CreateContainer "@$T/c9m.json"
must StartContainer '{"container_id": "c9"}'
must WaitProcess '{"container_id": "c9", "exec_id": ""}'
st=$(jq .status "$T/ctl.out")
wait "$OOM_PID" || { cat "$T/oom.err"; fail "GetOOMEvent failed"; }
[ "$(jq -r .container_id "$T/oom.out")" = c9 ] || fail "GetOOMEvent: $(cat "$T/oom.out")"
ok "GetOOMEvent named c9 (its shell ended with status $st) while other calls were served"
must RemoveContainer '{"container_id": "c9"}'

# ---- network: UpdateInterface (found by MAC), UpdateRoutes, List* ----
ip link add v0 type veth peer name v1
ip link set v1 up
MAC=$(ip -o link show v0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
must UpdateInterface "{\"interface\": {\"name\": \"eth0\", \"hwAddr\": \"$MAC\", \"mtu\": 1400,
    \"IPAddresses\": [{\"family\": 0, \"address\": \"10.9.0.2\", \"mask\": \"24\"}]}}"
jq -e '.name == "eth0" and .mtu == 1400 and .IPAddresses[0].address == "10.9.0.2"' "$T/ctl.out" >/dev/null \
    || fail "UpdateInterface answer: $(cat "$T/ctl.out")"
ip -o addr show eth0 | grep -q 'inet 10.9.0.2/24' || fail "eth0 has no 10.9.0.2/24: $(ip -o addr show eth0)"
ip -o link show eth0 | grep -q "mtu 1400" || fail "eth0 mtu: $(ip -o link show eth0)"
ip link show eth0 | grep -q 'state UP\|,UP' || fail "eth0 is not up"
ok "UpdateInterface: v0 (by MAC $MAC) renamed eth0, mtu 1400, 10.9.0.2/24, up (checked with ip)"
must UpdateRoutes '{"routes": {"Routes": [{"dest": "10.9.0.0/24", "device": "eth0", "scope": 253, "source": "10.9.0.2"},
    {"dest": "", "gateway": "10.9.0.1", "device": "eth0"}, {"dest": "192.168.77.0/24", "gateway": "10.9.0.5", "device": "eth0"}]}}'
ip route | grep -q '^default via 10.9.0.1 dev eth0' || fail "no default route: $(ip route)"
ip route | grep -q '^192.168.77.0/24 via 10.9.0.5 dev eth0' || fail "no 192.168.77.0/24 route: $(ip route)"
jq -e '[.Routes[] | select(.gateway == "10.9.0.1")] | length == 1' "$T/ctl.out" >/dev/null || fail "UpdateRoutes answer: $(cat "$T/ctl.out")"
ok "UpdateRoutes: default via 10.9.0.1 and 192.168.77.0/24 via 10.9.0.5 (checked with ip route)"
must ListInterfaces '{}'
jq -e '.Interfaces | map(.name) | index("eth0")' "$T/ctl.out" >/dev/null || fail "ListInterfaces: $(cat "$T/ctl.out")"
must ListRoutes '{}'
jq -e '.Routes | map(.gateway) | index("10.9.0.5")' "$T/ctl.out" >/dev/null || fail "ListRoutes: $(cat "$T/ctl.out")"
ok "ListInterfaces and ListRoutes report them"
expect 6 UpdateInterface '{"interface": {"name": "eth1", "hwAddr": "02:00:00:00:00:99"}}' "UpdateInterface of an unknown MAC"
expect 3 UpdateRoutes '{"routes": {"Routes": [{"dest": "10.1.0.0/16", "gateway": "not-an-ip", "device": "eth0"}]}}' "UpdateRoutes with a bad gateway"
ip route | grep -q '^default via 10.9.0.1 dev eth0' || fail "a refused UpdateRoutes removed the routes: $(ip route)"
ok "the refused UpdateRoutes left the routes as they were"

# ---- four containers created, started, read and removed at once (one connection each) ----
for i in 1 2 3 4; do
    container_json "p$i" "[\"/bin/echo\", \"parallel-$i\"]" > "$T/p$i.json"
    "$CLI" agent-ctl --addr "unix://$T/agent.sock" --timeout 120000 CreateContainer "@$T/p$i.json" > "$T/p$i.out" 2>&1 &
    eval "PP$i=\$!"
done
for i in 1 2 3 4; do eval "wait \$PP$i" || { cat "$T/p$i.out"; fail "parallel CreateContainer p$i"; }; done
for i in 1 2 3 4; do must StartContainer "{\"container_id\": \"p$i\"}"; done
for i in 1 2 3 4; do
    read_all "p$i" "" ReadStdout
    [ "$(cat "$T/stream")" = "parallel-$i" ] || fail "p$i printed '$(cat "$T/stream")'"
done
for i in 1 2 3 4; do "$CLI" agent-ctl --addr "unix://$T/agent.sock" RemoveContainer "{\"container_id\": \"p$i\"}" > /dev/null 2>&1 & eval "PP$i=\$!"; done
for i in 1 2 3 4; do eval "wait \$PP$i" || fail "parallel RemoveContainer p$i"; done
for i in 1 2 3 4; do [ ! -e "$RUN/p$i" ] || fail "p$i left its bundle"; done
ok "four containers created, run and removed concurrently"

# ---- an encrypted image: the layer key unwrapped by the hub's key provider ----
container_json c10 '["/bin/echo", "decrypted"]' false "$REG/test/busybox:enc" > "$T/c10.json"
must CreateContainer "@$T/c10.json"
must StartContainer '{"container_id": "c10"}'
read_all c10 "" ReadStdout
[ "$(cat "$T/stream")" = decrypted ] || fail "encrypted image printed '$(cat "$T/stream")'"
ok "an image whose layer only the hub's key provider can open runs: $(cat "$T/stream")"
must RemoveContainer '{"container_id": "c10"}'
container_json c11 '["/bin/echo", "never"]' false "$REG/test/busybox:enc-other" > "$T/c11.json"
expect 1 CreateContainer "@$T/c11.json" "an image encrypted under a KEK the hub does not have"
grep -q 'image-kek/2' "$T/ctl.err" || fail "the refusal does not name the missing key"
[ ! -e "$RUN/c11" ] || fail "a bundle stayed after the failed decryption"

# ---- a registry that wants credentials: from the hub's containers-auth.json ----
container_json c12 '["/bin/echo", "authenticated"]' false "$AREG/test/busybox:1" > "$T/c12.json"
must CreateContainer "@$T/c12.json"
must StartContainer '{"container_id": "c12"}'
read_all c12 "" ReadStdout
[ "$(cat "$T/stream")" = authenticated ] || fail "the authenticated pull printed '$(cat "$T/stream")'"
ok "pull with Basic credentials from authenticated_registry_credentials_uri: $(cat "$T/stream")"
must RemoveContainer '{"container_id": "c12"}'
printf '{"auths":{"%s":{"auth":"%s"}}}' "$AREG" "$(printf alice:wrong | base64)" > "$T/auth.json"
expect 1 CreateContainer "@$T/c12.json" "the same pull with a wrong password"
[ ! -e "$RUN/c12" ] || fail "a bundle stayed after the refused pull"

# ---- the agent policy forbids an image or a command: nothing created ----
stop_agent
start_agent "$T/deny.rego"
container_json c6 '["/bin/echo", "forbidden"]' > "$T/c6.json"
expect 5 CreateContainer "@$T/c6.json" "policy forbids the command"
container_json c7 '["/bin/echo", "ok"]' false "$REG/test/busybox:forbidden" > "$T/c7.json"
expect 5 CreateContainer "@$T/c7.json" "policy forbids the image"
for c in c6 c7; do
    [ ! -e "$RUN/$c" ] || fail "$c: a bundle was created although the policy said no"
    runc --root "$RUN/.runc" list | grep -q "^$c " && fail "$c: runc state although the policy said no"
done
grep -q PERMISSION_DENIED "$T/ctl.err" || fail "no PERMISSION_DENIED status"
ok "denied CreateContainer left no bundle and no runc state"
container_json c8 '["/bin/echo", "allowed"]' > "$T/c8.json"
must CreateContainer "@$T/c8.json"
must StartContainer '{"container_id": "c8"}'
read_all c8 "" ReadStdout
[ "$(cat "$T/stream")" = allowed ] || fail "allowed container printed '$(cat "$T/stream")'"
ok "the same policy allows another command: $(cat "$T/stream")"
must StatsContainer '{"container_id": "c8"}'
jq -e '.network_stats | map(.name) | index("eth0")' "$T/ctl.out" >/dev/null || fail "StatsContainer network: $(cat "$T/ctl.out")"
jq -e '.network_stats | map(.name) | index("lo") | not' "$T/ctl.out" >/dev/null || fail "lo in the network statistics"
ok "StatsContainer reports the sandbox's interfaces (eth0, not lo)"
must DestroySandbox '{}'
[ ! -e "$RUN/c8" ] || fail "DestroySandbox left c8"
ok "DestroySandbox removed every container"
stop_agent
sanitizers_clean
cg_cleanup
echo "PASS"
