#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Faults, one VM each: (1) containerd restarted while a task runs: the shim and its VM survive,
# the new containerd finds the task RUNNING and execs into it; then QEMU is killed under the
# shim: the task is reported STOPPED (exit 255), removed cleanly, nothing leaks. (2) The shim
# is SIGKILLed: its VM dies with it (PR_SET_PDEATHSIG), containerd runs `delete`, which
# removes the VM folder; `ctr task ls` is true and nothing leaks. (3) The agent never answers
# (the guest listens on TCP while the shim speaks virtio-serial): Create fails within the
# boot timeout with an error that names the stage, and no QEMU is left.
. "$(dirname "$0")/shim-lib.sh"

setup_all
run_d() { # run_d ID [ctr run flags...]: a detached `sleep 300` in its own VM
    id=$1; shift
    $CTR run -d --runtime $RUNTIME --annotation io.kubernetes.cri.image-name=$GIMAGE "$@" "$IMAGE" "$id" sleep 300 \
        > "$T/$id.out" 2>&1 || fail "ctr run -d $id: $(cat "$T/$id.out")"
}
task_state() { $CTR task ls | awk -v id="$1" '$1 == id { print $3 }'; }
wait_state() { # wait_state ID STATE WHAT
    i=0
    until [ "$(task_state "$1")" = "$2" ]; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "$3: $1 is '$(task_state "$1")', not $2"; sleep 0.1
    done
}

# ---- (1) containerd restarted, then QEMU killed ----
run_d c1
vm1=$(qemu_pids)
[ -n "$vm1" ] || fail "no VM for c1"
stop_containerd
[ "$(qemu_pids)" = "$vm1" ] || fail "the VM did not survive containerd's exit"
start_containerd
wait_state c1 RUNNING "after containerd's restart"
$CTR task exec --exec-id e1 c1 echo still-here > "$T/e1.out" 2>&1 || fail "exec after restart: $(cat "$T/e1.out")"
grep -q still-here "$T/e1.out" || fail "exec output after restart: $(cat "$T/e1.out")"
ok "containerd restarted: c1 still RUNNING in the same VM, exec works"

kill -9 "$vm1"
wait_state c1 STOPPED "after QEMU was killed"
grep -q 'the sandbox VM exited' "$T/ctrd.log" || fail "the shim did not log the VM's death"
rc=0
$CTR task exec --exec-id e2 c1 true > "$T/e2.out" 2>&1 || rc=$?
[ $rc != 0 ] || fail "exec into a dead VM succeeded"
$CTR task rm c1 > "$T/rm1.out" 2>&1 || fail "task rm c1: $(cat "$T/rm1.out")"
$CTR c rm c1 || fail "c rm c1"
expect_no_vm "after QEMU was killed"
[ -z "$(ls -A "$T/vm" 2>/dev/null)" ] || fail "VM folder left: $(ls "$T/vm")"
ok "QEMU killed under the shim: c1 STOPPED, exec refused, removed, nothing left"

# ---- (2) the shim SIGKILLed ----
run_d c2
vm2=$(qemu_pids)
pidf="$T/ctrd/state/io.containerd.runtime.v2.task/default/c2/shim.pid"
i=0
until [ -s "$pidf" ]; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "no shim.pid for c2: $(ls "$(dirname "$pidf")" 2>&1)"; sleep 0.1
done
shim=$(cat "$pidf")
kill -0 "$shim" || fail "no shim pid for c2"
kill -9 "$shim"
i=0
while kill -0 "$vm2" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "QEMU $vm2 outlived its shim"; sleep 0.1
done
ok "the shim killed: its QEMU died with it"
i=0
until [ "$(task_state c2)" != RUNNING ]; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "containerd still reports c2 RUNNING"; sleep 0.1
done
$CTR task rm -f c2 > /dev/null 2>&1 || true
$CTR c rm c2 || fail "c rm c2"
expect_no_vm "after the shim was killed"
[ -z "$($CTR task ls -q)" ] || fail "tasks left: $($CTR task ls -q)"
i=0
while [ -n "$(ls -A "$T/vm" 2>/dev/null)" ]; do
    i=$((i + 1)); [ $i -lt 50 ] || fail "delete did not remove the VM folder: $(ls "$T/vm")"; sleep 0.1
done
ok "containerd cleaned up through \`delete\`: task gone, VM folder removed, nothing leaked"

# ---- (3) the agent never answers ----
BOOT_TIMEOUT=12 write_runtime_config "$T/noagent.toml" ""
sed -i 's|^machine = |kernel_params = "cloister.agent=tcp:1024"\nmachine = |' "$T/noagent.toml"
rc=0
t0=$(date +%s)
$CTR run --runtime $RUNTIME --runtime-config-path "$T/noagent.toml" \
    --annotation io.kubernetes.cri.image-name=$GIMAGE "$IMAGE" c3 true > "$T/c3.out" 2>&1 || rc=$?
t1=$(date +%s)
[ $rc != 0 ] || fail "a VM whose agent never answers was accepted"
grep -q 'did not answer Health.Check within 12000 ms' "$T/c3.out" || fail "unclear error: $(cat "$T/c3.out")"
[ $((t1 - t0)) -lt 40 ] || fail "the failure took $((t1 - t0)) s"
$CTR c rm c3 > /dev/null 2>&1 || true
expect_no_vm "after the agent timeout"
[ -z "$($CTR task ls -q)" ] || fail "tasks left: $($CTR task ls -q)"
ok "agent not answering: refused after the boot timeout ($((t1 - t0)) s), named, no QEMU left"
