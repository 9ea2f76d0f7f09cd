#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A pod as the CRI plugin makes it, driven with ctr and the CRI annotations: the sandbox task
# (container-type "sandbox") boots the VM; two containers (container-type "container", same
# sandbox-id) start in that VM through the same shim; exec into one (same boot_id as the
# other, not the host's); Pids, Stats (ctr task metrics), a tty resize, kill; the VM goes away
# with the pod's sandbox task. Init-data: the sandbox carries the cc_init_data annotation
# whose policy.rego denies one exec id: the guest agent read the disk the shim made (that
# exec is refused, PERMISSION_DENIED named) and the shim recorded the digest and the PCR 8
# value the guest's vTPM should show. A terminal exec (ctr -t under script(1)) exercises
# the pty path and ResizePty. Twin: a container naming a sandbox whose shim is not running
# is refused by `start` (no VM booted). Events: containerd's event stream (ctr events) shows
# the shim's /tasks/* events in order.
. "$(dirname "$0")/shim-lib.sh"

setup_all
host_boot=$(cat /proc/sys/kernel/random/boot_id)
ann() { echo "--annotation io.kubernetes.cri.container-type=$1 --annotation io.kubernetes.cri.sandbox-id=pod1"; }
$CTR events > "$T/events.txt" 2>&1 &
EVPID=$!
PIDS="$PIDS $EVPID"

# ---- init-data: an agent policy that allows everything the shim asks but one exec id ----
{
    printf 'version = "0.1.0"\nalgorithm = "sha256"\n\n[data]\n"policy.rego" = \047\047\047\n'
    printf 'package agent_policy\n\ndefault AllowRequestsFailingPolicy := false\n'
    for r in CreateSandbox DestroySandbox CreateContainer StartContainer RemoveContainer SignalProcess \
        WaitProcess ReadStream WriteStream CloseStdin TtyWinResize StatsContainer; do
        printf 'default %sRequest := true\n' $r
    done
    printf 'default ExecProcessRequest := false\n\nExecProcessRequest if {\n    input.exec_id != "e-denied"\n}\n'
    printf '\047\047\047\n'
} > "$T/initdata.toml"
INITDATA=$("$BUILD/src/cmd/cloister" initdata encode "$T/initdata.toml") || fail "cloister initdata encode"
want_digest=$(sha256sum < "$T/initdata.toml" | cut -d' ' -f1)
want_pcr8=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(bytes(32) + bytes.fromhex(sys.argv[1])).hexdigest())' "$want_digest")

# ---- the sandbox, then two containers in its VM ----
# shellcheck disable=SC2046
$CTR run -d --runtime $RUNTIME $(ann sandbox) --annotation "io.katacontainers.config.hypervisor.cc_init_data=$INITDATA" \
    "$IMAGE" pod1 > "$T/pod1.out" 2>&1 || fail "sandbox task: $(cat "$T/pod1.out")"
grep -q "^sha256:$want_digest\$" "$T"/vm/*/initdata.digest || fail "init-data digest not recorded: $(cat "$T"/vm/*/initdata.digest)"
grep -q "^pcr8:$want_pcr8\$" "$T"/vm/*/initdata.digest || fail "expected PCR 8 not recorded"
ok "init-data disk attached; digest $want_digest and expected PCR 8 recorded"
[ "$(qemu_pids | wc -l)" = 1 ] || fail "the sandbox did not boot exactly one VM"
vm_pid=$(qemu_pids)
# shellcheck disable=SC2046
$CTR run -d --runtime $RUNTIME $(ann container) --annotation io.kubernetes.cri.image-name=$GIMAGE \
    "$IMAGE" ca sleep 300 > "$T/ca.out" 2>&1 || fail "container ca: $(cat "$T/ca.out")"
rc=0
# shellcheck disable=SC2046
$CTR run --runtime $RUNTIME $(ann container) --annotation io.kubernetes.cri.image-name=$GIMAGE \
    "$IMAGE" cb sh -c 'cat /proc/sys/kernel/random/boot_id' > "$T/cb.out" 2>&1 || rc=$?
[ $rc = 0 ] || fail "container cb: rc $rc $(cat "$T/cb.out")"
[ "$(qemu_pids)" = "$vm_pid" ] || fail "the pod's containers did not share the VM (QEMU: $(qemu_pids))"
ok "sandbox + 2 containers in one VM (QEMU pid $vm_pid)"

# ---- exec into ca: the same VM as cb ----
$CTR task exec --exec-id e1 ca cat /proc/sys/kernel/random/boot_id > "$T/e1.out" 2>&1 || fail "exec: $(cat "$T/e1.out")"
[ "$(cat "$T/e1.out")" = "$(cat "$T/cb.out")" ] || fail "exec boot_id $(cat "$T/e1.out") != cb's $(cat "$T/cb.out")"
[ "$(cat "$T/e1.out")" != "$host_boot" ] || fail "exec ran on the host"
ok "exec into ca: boot_id $(cat "$T/e1.out"), the same as cb's, not the host's"
rc=0
$CTR task exec --exec-id e2 ca sh -c 'exit 7' > /dev/null 2>&1 || rc=$?
[ $rc = 7 ] || fail "exec exit code $rc (want 7)"
ok "exec exit code relayed"
rc=0
$CTR task exec --exec-id e-denied ca true > "$T/denied.out" 2>&1 || rc=$?
[ $rc != 0 ] || fail "the init-data policy did not deny exec e-denied"
grep -qi 'denied' "$T/denied.out" || fail "the denial is not named: $(cat "$T/denied.out")"
ok "the guest agent enforces the init-data policy (exec e-denied refused: $(head -c 160 "$T/denied.out"))"
pcr8=$($CTR task exec --exec-id e-pcr ca cat /sys/class/tpm/tpm0/pcr-sha256/8 2>/dev/null | tr 'A-F' 'a-f' || true)
if [ "$pcr8" = "$want_pcr8" ]; then
    ok "the guest's vTPM PCR 8 holds the init-data digest"
else
    echo "note: the guest's PCR 8 reads '$pcr8', not the expected $want_pcr8 (the guest binds init-data into the vTPM; see docs/shim.md)"
fi
script -qec "$CTR task exec -t --exec-id e-tty ca tty" /dev/null > "$T/tty.out" 2>&1 \
    || fail "terminal exec: $(cat "$T/tty.out")"
grep -q '/dev/pts/' "$T/tty.out" || fail "terminal exec has no pty: $(cat "$T/tty.out")"
grep -q 'Task/ResizePty => OK' "$T/ctrd.log" || fail "ctr -t's ResizePty did not reach the guest"
ok "terminal exec: $(grep -o '/dev/pts/[0-9]*' "$T/tty.out"), ResizePty relayed as TtyWinResize"

# ---- Pids, Stats, State ----
$CTR task ps ca > "$T/ps.out" 2>&1 || fail "ctr task ps: $(cat "$T/ps.out")"
grep -q "$vm_pid" "$T/ps.out" || fail "Pids does not report the VM's pid: $(cat "$T/ps.out")"
$CTR task metrics ca > "$T/metrics.out" 2>&1 || fail "ctr task metrics: $(cat "$T/metrics.out")"
grep -q 'pids.current' "$T/metrics.out" || fail "metrics without pids: $(cat "$T/metrics.out")"
grep -q 'memory.usage_in_bytes' "$T/metrics.out" || fail "metrics without memory: $(cat "$T/metrics.out")"
ok "Pids (the VM's pid) and Stats (cgroup v1 metrics from the guest) answered"
$CTR task ls > "$T/ls.out"
grep -Eq '^pod1 +[0-9]+ +RUNNING' "$T/ls.out" || fail "pod1 not RUNNING: $(cat "$T/ls.out")"
grep -Eq '^ca +[0-9]+ +RUNNING' "$T/ls.out" || fail "ca not RUNNING: $(cat "$T/ls.out")"
grep -q '^cb ' "$T/ls.out" && fail "cb's task was not deleted after it ended: $(cat "$T/ls.out")"
ok "ctr task ls: pod1 and ca RUNNING, cb (ended, deleted by ctr run) gone"

# ---- kill ca, remove the containers, then the sandbox: the VM goes away ----
$CTR task kill -s KILL ca || fail "kill ca"
i=0
until $CTR task ls | grep -Eq '^ca +[0-9]+ +STOPPED'; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "ca did not stop after SIGKILL"; sleep 0.1
done
ok "kill: ca stopped"
$CTR task rm ca > /dev/null || fail "task rm ca"
$CTR c rm ca cb || fail "c rm"
[ "$(qemu_pids)" = "$vm_pid" ] || fail "the VM went away before its sandbox"
$CTR task kill -s KILL pod1 || fail "kill pod1"
i=0
until $CTR task ls | grep -Eq '^pod1 +[0-9]+ +STOPPED'; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "pod1 did not stop"; sleep 0.1
done
$CTR task rm pod1 > /dev/null || fail "task rm pod1"
$CTR c rm pod1 || fail "c rm pod1"
expect_no_vm "after the pod's sandbox was removed"
[ -z "$($CTR task ls -q)" ] || fail "tasks left: $($CTR task ls -q)"
ok "the VM went away with the pod"

# ---- twin: a container of a sandbox with no shim ----
rc=0
$CTR run --runtime $RUNTIME --annotation io.kubernetes.cri.container-type=container \
    --annotation io.kubernetes.cri.sandbox-id=nopod --annotation io.kubernetes.cri.image-name=$GIMAGE \
    "$IMAGE" cz true > "$T/cz.out" 2>&1 || rc=$?
[ $rc != 0 ] || fail "a container of a missing sandbox was accepted"
grep -q 'sandbox nopod, whose shim is not running' "$T/cz.out" || fail "unclear refusal: $(cat "$T/cz.out")"
expect_no_vm "after the orphan container"
ok "a container of a sandbox with no shim: refused"
$CTR c rm cz > /dev/null 2>&1 || true

# ---- events, in order, from containerd's own stream ----
sleep 1
kill "$EVPID" 2>/dev/null || true
for topic in /tasks/create /tasks/start /tasks/exec-added /tasks/exec-started /tasks/exit /tasks/delete; do
    grep -q "$topic" "$T/events.txt" || fail "no $topic event: $(cat "$T/events.txt")"
done
first_create=$(grep -n '/tasks/create' "$T/events.txt" | head -1 | cut -d: -f1)
first_start=$(grep -n '/tasks/start' "$T/events.txt" | head -1 | cut -d: -f1)
first_exit=$(grep -n '/tasks/exit' "$T/events.txt" | head -1 | cut -d: -f1)
[ "$first_create" -lt "$first_start" ] && [ "$first_start" -lt "$first_exit" ] || fail "events out of order"
ok "events published through containerd (create < start < exit; exec-added, exec-started, delete)"
