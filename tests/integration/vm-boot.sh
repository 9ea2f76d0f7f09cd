#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The guest image boots under QEMU (TCG) with a per-boot swtpm and reaches its ready line:
# /dev/tpm0 seen, cloister-aa serving with the tpm attester, cloister-cdh serving, root on
# tmpfs; then, without an agent in the build, a clean power off, and with one, a
# grpc.Health/Check answered over the virtio-serial port. Twin: without a vTPM cloister-aa
# refuses to start (no TEE), the guest says it is not ready and powers off (with an agent
# built: because the agent, given a bad TCP port, exits). Then the image is
# rebuilt elsewhere and must have the same bytes; twin: another SOURCE_DATE_EPOCH gives
# other bytes. Builds the image first (scripts/guest-image.sh does nothing when its inputs
# have not changed).
. "$(dirname "$0")/lib.sh"

command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 is not installed"
command -v swtpm >/dev/null 2>&1 && command -v swtpm_setup >/dev/null 2>&1 ||
    fail "swtpm and swtpm_setup are needed for the vTPM (packages swtpm, swtpm-tools)"
BOOT_TIMEOUT=${VM_BOOT_TIMEOUT:-180}
G=$BUILD/guest

"$SRC/scripts/guest-image.sh" "$BUILD" >"$T/build1.log" 2>&1 || { cat "$T/build1.log"; fail "guest-image.sh"; }
for f in vmlinuz initrd.img runtime.toml manifest.txt; do [ -s "$G/$f" ] || fail "$G/$f missing"; done
grep -q "^initrd = \"$G/initrd.img\"$" "$G/runtime.toml" || fail "runtime.toml does not name $G/initrd.img"
# the kernel command line the shim will use
KPARAMS=$(sed -n 's/^kernel_params = "\(.*\)"$/\1/p' "$G/runtime.toml")
for p in no_timer_check cloister.net=10.0.2.15/24,10.0.2.2; do
    case " $KPARAMS " in *" $p "*) ;; *) fail "runtime.toml kernel_params '$KPARAMS': no $p" ;; esac
done
grep -q '^extra_args = \[.*"virtio-rng-pci,rng=rng0"\]$' "$G/runtime.toml" || fail "runtime.toml: no virtio-rng in extra_args"
ok "image at $G ($(wc -c <"$G/initrd.img") bytes initrd)"

# boot NAME TPM(0|1) EXTRA_KERNEL_PARAMS [HOOK]: boots until the guest powers off; console
# in $T/NAME.console, boot-to-ready seconds in $T/NAME.ready_s. With HOOK, the function HOOK
# runs once the guest is ready (agent socket $T/NAME/agent.sock), then QEMU is stopped.
boot() {
    name=$1 tpm=$2 params=$3 hook=${4:-}
    dir=$T/$name
    mkdir -p "$dir"
    set -- -machine q35 -accel tcg -m 512 -smp 1 -nographic -nodefaults -no-reboot \
        -serial "file:$T/$name.raw" -kernel "$G/vmlinuz" -initrd "$G/initrd.img" \
        -append "$KPARAMS $params" \
        -device virtio-serial-pci -chardev "socket,id=agent,path=$dir/agent.sock,server=on,wait=off" \
        -device virtserialport,chardev=agent,name=agent.0 \
        -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= \
        -object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0
    if [ "$tpm" = 1 ]; then
        swtpm_setup --tpm2 --tpmstate "$dir" --overwrite >"$dir/swtpm_setup.log" 2>&1 ||
            fail "swtpm_setup: $(tail -3 "$dir/swtpm_setup.log")"
        # --ctrl unixio: swtpm exits when QEMU closes the control channel
        swtpm socket --tpm2 --tpmstate "dir=$dir" --ctrl "type=unixio,path=$dir/vtpm.sock" --log level=0 &
        PIDS="$PIDS $!"
        i=0
        until [ -S "$dir/vtpm.sock" ]; do
            i=$((i + 1)); [ $i -lt 100 ] || fail "swtpm did not create $dir/vtpm.sock"; sleep 0.05
        done
        set -- "$@" -chardev "socket,id=chrtpm,path=$dir/vtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm \
            -device tpm-tis,tpmdev=tpm0
    fi
    : >"$T/$name.raw"
    t0=$(date +%s.%N)
    timeout "$BOOT_TIMEOUT" qemu-system-x86_64 "$@" >"$T/$name.qemu.log" 2>&1 &
    qpid=$!
    PIDS="$PIDS $qpid"
    ready="" stopped=0
    while kill -0 $qpid 2>/dev/null; do
        if [ -z "$ready" ] && grep -q '^cloister-guest: \(not \)\{0,1\}ready' "$T/$name.raw"; then
            ready=$(date +%s.%N)
            if [ -n "$hook" ]; then
                $hook "$name" "$dir"
                kill $qpid
                stopped=1
            fi
        fi
        sleep 0.1
    done
    wait $qpid && rc=0 || rc=$?
    [ $stopped = 0 ] || rc=0
    t1=$(date +%s.%N)
    # the serial console ends lines with CR LF; the firmware writes escape sequences
    tr -d '\r\033' <"$T/$name.raw" >"$T/$name.console"
    sed 's/^/  | /' "$T/$name.console"
    [ $rc -ne 124 ] || fail "$name: no power off within ${BOOT_TIMEOUT}s"
    [ $rc -eq 0 ] || fail "$name: qemu exited with status $rc: $(cat "$T/$name.qemu.log")"
    [ -n "$ready" ] || ready=$t1
    awk "BEGIN { printf \"%.1f\", $ready - $t0 }" >"$T/$name.ready_s"
    echo "  $name: ready after $(cat "$T/$name.ready_s") s, QEMU gone after $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s"
}

expect() { # expect NAME PATTERN WHAT
    grep -q "$2" "$T/$1.console" || fail "$1: $3 (no line matching '$2' on the console)"
    ok "$1: $3"
}
refuse() { # refuse NAME PATTERN WHAT
    if grep -q "$2" "$T/$1.console"; then fail "$1: $3 (console has '$2')"; fi
    ok "$1: $3"
}

# The agent, when built, answers grpc.Health/Check over the virtio-serial port (through QEMU's
# unix socket, as the shim reaches it); then QEMU is stopped. Without an agent the init stops
# the daemons and powers off by itself (cloister.halt_when_ready=1).
agent_check() { # agent_check NAME DIR
    i=0
    until "$CLI_BIN" agent-ctl --addr "unix://$2/agent.sock" --timeout 3000 Check >"$T/$1.check" 2>&1; do
        i=$((i + 1))
        [ $i -lt 20 ] || { cat "$T/$1.check"; fail "$1: the agent did not answer Check over agent.0"; }
        sleep 0.5
    done
    grep -q '"status": 1' "$T/$1.check" || fail "$1: Check answered $(cat "$T/$1.check"), not SERVING (1)"
    ok "$1: cloister-agent answers grpc.Health/Check SERVING over the virtio-serial port"
}

# --- boot with a vTPM ---------------------------------------------------------------------
if [ -x "$BUILD/src/cmd/cloister-agent" ]; then
    boot tpm 1 "" agent_check
else
    boot tpm 1 "cloister.halt_when_ready=1"
fi
expect tpm '^cloister-guest: root on tmpfs$' "root moved to tmpfs (runc can pivot_root)"
expect tpm '^cloister-guest: TPM: /dev/tpm0 present$' "vTPM seen as /dev/tpm0"
expect tpm '^cloister-guest: eth0 10.0.2.15/24 via 10.0.2.2$' "eth0 configured from cloister.net"
expect tpm '^cloister-aa: .*TEE tpm, serving on unix:///run/confidential-containers/attestation-agent/' \
    "cloister-aa serving with the tpm attester"
expect tpm '^cloister-guest: cloister-aa up' "cloister-aa socket up"
expect tpm '^cloister-cdh: .*serving on unix:///run/confidential-containers/cdh.sock' "cloister-cdh serving"
expect tpm '^cloister-guest: cloister-cdh up' "cloister-cdh socket up"
if [ -x "$BUILD/src/cmd/cloister-agent" ]; then
    expect tpm '^cloister-guest: cloister-agent started on serial:/dev/vport[0-9]*p[0-9]* ' "agent on the agent.0 port"
    expect tpm '^cloister-guest: ready$' "ready"
else
    expect tpm '^cloister-guest: ready (no agent)$' "ready (no agent in this build)"
fi
if [ ! -x "$BUILD/src/cmd/cloister-agent" ]; then
    expect tpm '^cloister-aa: .*signal 15, stopping' "cloister-aa stopped by the init"
    expect tpm '^cloister-cdh: .*signal 15, stopping' "cloister-cdh stopped by the init"
    expect tpm '^cloister-guest: power off (halt_when_ready)$' "init powered off"
fi
refuse tpm 'Kernel panic\|not loaded\|could not be applied' "no panic, module or network failure"
# an ASan build puts sanitized daemons in the image: their reports reach the console
refuse tpm 'Sanitizer\|runtime error:' "no sanitizer report"

# --- twin: no vTPM --------------------------------------------------------------------------
# With an agent built, it gets a TCP port it must refuse: the VM is the pod, so the agent's
# exit powers it off.
if [ -x "$BUILD/src/cmd/cloister-agent" ]; then
    boot notpm 0 "cloister.debug=1 cloister.agent=tcp:99999"
    expect notpm '^cloister-guest: cloister-agent started on tcp://0.0.0.0:99999 ' "agent given TCP port 99999"
    expect notpm '^cloister-guest: power off (cloister-agent exited with status [1-9][0-9]*)$' \
        "the agent's exit powers the VM off"
else
    boot notpm 0 "cloister.debug=1 cloister.halt_when_ready=1"
    expect notpm '^cloister-guest: power off (halt_when_ready)$' "init powered off"
fi
expect notpm '^cloister-guest: debug logging on$' "cloister.debug=1 seen"
expect notpm '^cloister-guest: TPM: none$' "no TPM without a vTPM"
expect notpm '^cloister-aa: .*no TEE found' "cloister-aa refuses to run without a TEE"
expect notpm '^cloister-guest: cloister-aa failed: exited with status [1-9]' "the init reports it"
expect notpm '^cloister-guest: not ready' "not ready"
expect notpm '^cloister-cdh: .*signal 15, stopping' "cloister-cdh stopped by the init"
refuse notpm 'Sanitizer\|runtime error:' "no sanitizer report"

# --- reproducibility ----------------------------------------------------------------------
epoch=$(sed -n 's/^source_date_epoch //p' "$G/manifest.txt")
want=$(sha256sum <"$G/initrd.img" | cut -d' ' -f1)
SOURCE_DATE_EPOCH=$epoch TZ=Asia/Tokyo "$SRC/scripts/guest-image.sh" --force --out "$T/again" "$BUILD" \
    >"$T/build2.log" 2>&1 || { cat "$T/build2.log"; fail "second build"; }
got=$(sha256sum <"$T/again/initrd.img" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "rebuild: initrd.img sha256 $got, first build $want"
cmp -s "$T/again/vmlinuz" "$G/vmlinuz" || fail "rebuild: vmlinuz differs"
ok "rebuilt in another directory and time zone: same initrd.img ($want)"
# twin, and --cdh-toml: another epoch and another cdh.toml give other bytes, the archive's
# times are the new epoch and its cdh.toml is the one given
printf '# test image\nsocket = "unix:///run/confidential-containers/cdh.sock"\n' >"$T/cdh-test.toml"
SOURCE_DATE_EPOCH=$((epoch + 1)) "$SRC/scripts/guest-image.sh" --force --out "$T/later" \
    --cdh-toml "$T/cdh-test.toml" "$BUILD" >"$T/build3.log" 2>&1 || { cat "$T/build3.log"; fail "third build"; }
other=$(sha256sum <"$T/later/initrd.img" | cut -d' ' -f1)
[ "$other" != "$want" ] || fail "SOURCE_DATE_EPOCH+1 and --cdh-toml gave the same initrd.img"
mkdir "$T/later/x"
(cd "$T/later/x" && zcat ../initrd.img | cpio -id --quiet --preserve-modification-time init etc/cloister/cdh.toml) ||
    fail "cannot unpack the third initrd.img"
[ "$(stat -c %Y "$T/later/x/init")" = $((epoch + 1)) ] || fail "/init time $(stat -c %Y "$T/later/x/init"), not $((epoch + 1))"
cmp -s "$T/later/x/etc/cloister/cdh.toml" "$T/cdh-test.toml" || fail "--cdh-toml: the image has another cdh.toml"
ok "SOURCE_DATE_EPOCH+1 and --cdh-toml: other bytes ($other), file times from the epoch, the given cdh.toml"
echo "figures: initrd.img $(wc -c <"$G/initrd.img") bytes; boot to ready $(cat "$T/tpm.ready_s") s (vTPM, TCG)"
