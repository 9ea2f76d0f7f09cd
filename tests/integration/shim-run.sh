#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `ctr run --runtime io.containerd.cloister.v2` against a private containerd 1.6: the shim
# boots a QEMU VM (TCG here) with the guest image and a per-VM swtpm, the guest pulls busybox
# from the loopback registry itself, runc runs it in the VM. Checked: stdout and stderr come
# back through the shim, the exit code too, the process ran in the VM (its boot_id is not the
# host's), stdin reaches the process (and its end: `cat` ends), and afterwards no QEMU/swtpm,
# no task, no VM folder is left. A second VM uses the agent channel "tcp_insecure" (user-mode
# hostfwd), which must work and be logged as INSECURE. Twins (no VM booted):
# a runtime.toml with an unknown key given as ConfigPath (ctr --runtime-config-path), and a
# container without the image annotation; both refused by name.
. "$(dirname "$0")/shim-lib.sh"

setup_all
host_boot=$(cat /proc/sys/kernel/random/boot_id)

# ---- one container, one VM ----
rc=0
printf 'line-from-host\nsecond line\n' | $CTR run --runtime $RUNTIME --annotation io.kubernetes.cri.image-name=$GIMAGE \
    "$IMAGE" c1 sh -c 'echo hello from the guest; cat /proc/sys/kernel/random/boot_id; echo to-stderr >&2;
        cat > /tmp/in; echo "stdin: $(wc -l < /tmp/in) lines, first: $(head -n1 /tmp/in)"; exit 3' \
    > "$T/c1.out" 2> "$T/c1.err" || rc=$?
[ $rc = 3 ] || { cat "$T/c1.out" "$T/c1.err"; fail "ctr run exit code $rc (want the task's 3)"; }
ok "the task's exit code (3) came back through the shim"
grep -q '^hello from the guest$' "$T/c1.out" || fail "stdout missing: $(cat "$T/c1.out")"
grep -q '^to-stderr$' "$T/c1.err" || fail "stderr missing: $(cat "$T/c1.err")"
grep -q 'to-stderr' "$T/c1.out" && fail "stderr leaked into stdout"
ok "stdout and stderr relayed separately"
grep -q '^stdin: 2 lines, first: line-from-host$' "$T/c1.out" || fail "stdin not relayed: $(cat "$T/c1.out")"
ok "stdin relayed to the guest process, and its end (cat returned)"
guest_boot=$(sed -n 2p "$T/c1.out")
echo "$guest_boot" | grep -Eq '^[0-9a-f-]{36}$' || fail "no boot_id from the guest: '$guest_boot'"
[ "$guest_boot" != "$host_boot" ] || fail "the process ran on the host (same boot_id)"
ok "the process ran in the VM (boot_id $guest_boot, host $host_boot)"
grep -q 'agent ready in' "$T/ctrd.log" || fail "the shim log did not reach containerd's log"
expect_no_vm "after ctr run"
[ -z "$($CTR task ls -q)" ] || fail "tasks left: $($CTR task ls -q)"
[ -z "$(ls -A "$T/vm" 2>/dev/null)" ] || fail "VM folder left: $(ls "$T/vm")"
$CTR c rm c1 || fail "ctr c rm c1"
ok "no QEMU, swtpm, task or VM folder left"

# ---- the _insecure TCP channel through slirp's hostfwd ----
write_runtime_config "$T/tcp.toml"
sed -i 's|^\[agent\]$|[agent]\nchannel = "tcp_insecure"|' "$T/tcp.toml"
$CTR run --rm --runtime $RUNTIME --runtime-config-path "$T/tcp.toml" \
    --annotation io.kubernetes.cri.image-name=$GIMAGE "$IMAGE" c4 echo over-tcp > "$T/c4.out" 2>&1 \
    || fail "tcp_insecure run: $(cat "$T/c4.out")"
grep -q '^over-tcp$' "$T/c4.out" || fail "tcp_insecure output: $(cat "$T/c4.out")"
grep -q 'INSECURE agent.channel = "tcp_insecure"' "$T/ctrd.log" || fail "the insecure channel was not logged"
expect_no_vm "after the tcp_insecure run"
ok "agent channel tcp_insecure (hostfwd to the guest's port 1024) works and is logged as INSECURE"

# ---- twins: refused before any VM boots ----
printf '[hypervisor]\nvcpu = 2\n' > "$T/bad.toml"
rc=0
$CTR run --runtime $RUNTIME --runtime-config-path "$T/bad.toml" \
    --annotation io.kubernetes.cri.image-name=$GIMAGE "$IMAGE" c2 true > "$T/c2.out" 2>&1 || rc=$?
[ $rc != 0 ] || fail "a runtime.toml with an unknown key was accepted"
grep -q "unknown key 'hypervisor.vcpu'" "$T/c2.out" || fail "the refusal does not name the key: $(cat "$T/c2.out")"
ok "ConfigPath runtime option read; unknown key refused by name"
$CTR c rm c2 >/dev/null 2>&1 || true

rc=0
$CTR run --runtime $RUNTIME "$IMAGE" c3 true > "$T/c3.out" 2>&1 || rc=$?
[ $rc != 0 ] || fail "a container with no image annotation was accepted"
grep -q 'io.kubernetes.cri.image-name' "$T/c3.out" || fail "the refusal does not name the annotation: $(cat "$T/c3.out")"
ok "no image annotation: refused by name"
$CTR c rm c3 >/dev/null 2>&1 || true
expect_no_vm "after the refusals"
[ -z "$($CTR task ls -q)" ] || fail "tasks left after the refusals"
ok "no VM booted for the refusals"
