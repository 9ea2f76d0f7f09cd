# SPDX-License-Identifier: Apache-2.0
# Shared helpers for the shim's VM tests (shim-*.sh): a private containerd (config, root,
# state and sockets in the test folder, CRI disabled, the shim on its PATH), a busybox image
# (busybox-static) in a loopback docker-registry, the guest image from `make guest-image`
# with a test cdh.toml appended to its initrd, and the checks for leaked QEMU processes.
# Sourced, not run. Each VM scenario costs 10-20 s under TCG: keep them few.
set -eu

SRC=${CLOISTER_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${CLOISTER_BUILD:-$SRC/build}
SHIM_BIN=$BUILD/src/cmd/containerd-shim-cloister-v2
GUEST=${CLOISTER_GUEST_DIR:-$BUILD/guest}
T=$(mktemp -d /tmp/cloister-shim.XXXXXX)
PIDS=""
CTRD_PID=""
. "$SRC/tests/integration/swtpm-lib.sh" # swtpm_ports, start_swtpm

# Processes (QEMU, swtpm, shims) whose command line names this test's folder.
our_pids() {
    for d in /proc/[0-9]*; do
        tr '\0' ' ' < "$d/cmdline" 2>/dev/null | grep -q "$T/" && echo "${d#/proc/}"
    done 2>/dev/null || true
}
# (a process may exit between the listing and the read: neither that nor a last pid that is
# not QEMU may fail the caller's x=$(qemu_pids) under set -e)
qemu_pids() {
    for p in $(our_pids); do
        tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q '^/usr/bin/qemu-system' && echo "$p"
    done 2>/dev/null || true
}
cleanup() {
    # tasks first (their VMs), then containerd, the registry; then anything left of ours
    if [ -n "$CTRD_PID" ] && kill -0 "$CTRD_PID" 2>/dev/null; then
        for t in $($CTR task ls -q 2>/dev/null); do $CTR task kill -s KILL "$t" >/dev/null 2>&1 || true; done
        sleep 1
        for t in $($CTR task ls -q 2>/dev/null); do $CTR task rm -f "$t" >/dev/null 2>&1 || true; done
        for c in $($CTR c ls -q 2>/dev/null); do $CTR c rm "$c" >/dev/null 2>&1 || true; done
        kill "$CTRD_PID" 2>/dev/null || true
        wait "$CTRD_PID" 2>/dev/null || true
    fi
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    for p in $(our_pids); do kill -9 "$p" 2>/dev/null || true; done
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT INT TERM

skip() { echo "SKIP: $*"; exit 77; }
fail() {
    echo "FAIL: $*"
    for l in "$T"/ctrd.log "$T"/vm/*/console.log "$T"/vm/*/qemu.log; do
        [ -f "$l" ] && { echo "--- $l"; tail -25 "$l"; }
    done
    exit 1
}
ok() { echo "ok - $*"; }
need() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c is not installed"; done; }

[ "$(id -u)" = 0 ] || skip "containerd and the shim's state folders need root"
need containerd ctr qemu-system-x86_64 swtpm docker-registry skopeo umoci python3 curl cpio gzip
[ -x /bin/busybox ] || skip "/bin/busybox (busybox-static) is missing"
[ -x "$SHIM_BIN" ] || fail "containerd-shim-cloister-v2 not built at $SHIM_BIN"
# The guest image of this build (scripts/guest-image.sh does nothing when its inputs have not
# changed); a test run on a clean checkout builds it here rather than skipping.
if [ -z "${CLOISTER_GUEST_DIR:-}" ]; then
    "$SRC/scripts/guest-image.sh" "$BUILD" >"$T/guest-image.log" 2>&1 || { tail -20 "$T/guest-image.log"; fail "scripts/guest-image.sh $BUILD"; }
fi
[ -f "$GUEST/vmlinuz" ] && [ -f "$GUEST/initrd.img" ] || fail "no guest image in $GUEST (make guest-image)"
grep -q cloister-agent "$GUEST/manifest.txt" 2>/dev/null || fail "the guest image in $GUEST has no cloister-agent"

# (as lib.sh's: below the ephemeral range, never a port this test was given before)
free_port() {
    python3 "$SRC/tests/integration/free_port.py" "${T:?}/.ports-given"
}

# expect_no_vm WHAT: no QEMU or swtpm of this test left (waits up to 5 s for a stopping VM)
expect_no_vm() {
    i=0
    while [ -n "$(qemu_pids)" ] || pgrep -f "swtpm socket.*$T/" >/dev/null; do
        i=$((i + 1)); [ $i -lt 50 ] || fail "$1: QEMU/swtpm still running: $(qemu_pids)"; sleep 0.1
    done
}

# ---- registry and image ----
start_registry() {
    port=$(free_port)
    cat > "$T/registry.yml" <<CFG
version: 0.1
log: {level: warn, fields: {service: registry}}
storage: {filesystem: {rootdirectory: $T/registry}}
http: {addr: 127.0.0.1:$port}
CFG
    docker-registry serve "$T/registry.yml" > "$T/registry.log" 2>&1 &
    PIDS="$PIDS $!"
    REG=127.0.0.1:$port
    GREG=10.0.2.2:$port   # the same registry seen from the guest (slirp's gateway)
    i=0
    until curl -s -o /dev/null "http://$REG/v2/"; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "docker-registry did not start"; sleep 0.1
    done
}

# A busybox image: $REG/test/busybox:1 (host name) = $GREG/test/busybox:1 (guest name).
make_busybox() {
    mkdir -p "$T/rootfs/bin" "$T/rootfs/etc" "$T/rootfs/tmp"
    cp /bin/busybox "$T/rootfs/bin/busybox"
    for a in sh echo cat sleep ls hostname id true false wc env tty stty; do ln -s busybox "$T/rootfs/bin/$a"; done
    tar -C "$T/rootfs" -cf "$T/busybox.tar" . || fail "tar of the busybox rootfs"
    { umoci init --layout "$T/oci" && umoci new --image "$T/oci:bb" &&
        umoci raw add-layer --image "$T/oci:bb" "$T/busybox.tar" &&
        umoci config --image "$T/oci:bb" --config.cmd /bin/sh; } > "$T/umoci.log" 2>&1 || fail "umoci: $(cat "$T/umoci.log")"
    skopeo copy -q --dest-tls-verify=false "oci:$T/oci:bb" "docker://$REG/test/busybox:1" > "$T/skopeo.log" 2>&1 \
        || fail "skopeo push"
    IMAGE=$REG/test/busybox:1
    GIMAGE=$GREG/test/busybox:1
}

# ---- the guest: the image's kernel and initrd, plus a test cdh.toml (registry over HTTP,
# signature policy accepting the test repository) appended as a second initramfs archive:
# the kernel unpacks both, later files win. ----
guest_initrd() {
    mkdir -p "$T/overlay/etc/cloister"
    cat > "$T/overlay/etc/cloister/cdh.toml" <<C
socket = "unix:///run/confidential-containers/cdh.sock"
[aa]
aa_socket = "unix:///run/confidential-containers/attestation-agent/attestation-agent.sock"
[image]
image_security_policy = '''{"default": [{"type": "reject"}], "transports": {"docker": {"$GREG/test": [{"type": "insecureAcceptAnything"}]}}}'''
[image.registry_config]
[[image.registry_config.registry]]
location = "$GREG"
insecure = true
C
    (cd "$T/overlay" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$T/overlay.cpio.gz" \
        || fail "cpio of the guest overlay"
    cat "$GUEST/initrd.img" "$T/overlay.cpio.gz" > "$T/initrd.img" || fail "initrd"
}

# write_runtime_config FILE [extra TOML lines]
# kvm: off unless SHIM_KVM says otherwise (auto|on). On the test machines /dev/kvm opens but a
# Linux guest hangs under it (docs/guest-image.md), and "auto" would pick it.
write_runtime_config() {
    cat > "$1" <<R
[hypervisor]
path = "/usr/bin/qemu-system-x86_64"
kernel = "$GUEST/vmlinuz"
initrd = "$T/initrd.img"
machine = "q35"
vcpus = 1
memory_mib = 512
kvm = "${SHIM_KVM:-off}"
[agent]
boot_timeout_s = ${BOOT_TIMEOUT:-60}
[runtime]
state_dir = "$T/vm"
log_level = "debug"
${2:-}
R
}

# ---- containerd ----
start_containerd() {
    mkdir -p "$T/ctrd"
    cat > "$T/ctrd/config.toml" <<C
version = 2
root = "$T/ctrd/root"
state = "$T/ctrd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/ctrd/containerd.sock"
[ttrpc]
  address = "$T/ctrd/containerd.sock.ttrpc"
[debug]
  level = "info"
C
    PATH="$BUILD/src/cmd:$PATH" containerd --config "$T/ctrd/config.toml" >> "$T/ctrd.log" 2>&1 &
    CTRD_PID=$!
    CTR="ctr --address $T/ctrd/containerd.sock"
    i=0
    until $CTR version >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || fail "containerd did not start"; sleep 0.1
    done
}
stop_containerd() {
    kill "$CTRD_PID" 2>/dev/null || true
    wait "$CTRD_PID" 2>/dev/null || true
}

# The common setup: registry, image, guest, containerd with the image pulled.
setup_all() {
    start_registry
    make_busybox
    guest_initrd
    write_runtime_config "$T/runtime.toml"
    export CLOISTER_RUNTIME_CONFIG="$T/runtime.toml"
    start_containerd
    $CTR image pull --plain-http "$IMAGE" > "$T/pull.log" 2>&1 || fail "ctr image pull"
}

RUNTIME=io.containerd.cloister.v2
