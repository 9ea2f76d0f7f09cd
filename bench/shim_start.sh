#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Pod start to container output through containerd-shim-cloister-v2 (QEMU under TCG here):
# a private containerd, busybox in a loopback registry, the guest image from
# `make guest-image` (the setup of tests/integration/shim-lib.sh). Each run is a fresh
# `ctr run` (its own VM) of a container that prints one line; measured on the host from the
# ctr invocation to that line, and split with the shim's and the guest's own log lines:
#   spawn      ctr run → QEMU started by the shim (containerd, shim start, Create, swtpm)
#   vm         QEMU started → the agent answers Health.Check (= boot + agent)
#   boot       QEMU started → first guest daemon log line (firmware, kernel, initrd, init)
#   agent      → the agent answers Health.Check (aa/cdh/agent start, virtio-serial handshake)
#   pull       the guest's cdh pulls and unpacks the image (from its own log)
#   create     CreateContainer in total (pull + runc create), shim's view
#   run        → the container's line reaches ctr (Start, runc start, stdio relay)
# Usage: bench/shim_start.sh [BUILD] (BENCH_RUNS, default 3; BENCH_TPM=0 boots without the
# vTPM). Needs root and the test peers.
set -eu
BUILD=${1:-build}
RUNS=${BENCH_RUNS:-3}
cd "$(dirname "$0")/.."
export CLOISTER_SRC=$PWD CLOISTER_BUILD=$PWD/$BUILD
# shellcheck source=../tests/integration/shim-lib.sh
. tests/integration/shim-lib.sh
setup_all
if [ "${BENCH_TPM:-1}" = 0 ]; then
    printf '[tpm]\nenabled = false\n' >> "$T/runtime.toml"
fi
echo "guest image $GUEST, vTPM ${BENCH_TPM:-1}, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

epoch() { date +%s.%N; }
# secs_of "2026-12-07T12:01:51.145Z" → epoch seconds (the logs' UTC timestamps)
secs_of() { date -u -d "$(echo "$1" | sed 's/Z$//; s/T/ /')" +%s.%N; }
fmt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

printf 'run  total  spawn  vm     boot  agent  pull  create  run\n'
i=0
while [ $i -lt "$RUNS" ]; do
    i=$((i + 1))
    id=b$i
    # the console log lives in the VM's folder, which goes away with the VM: copy it meanwhile
    (while :; do for f in "$T"/vm/*/console.log; do [ -f "$f" ] && cp "$f" "$T/console-$id.log"; done; sleep 0.2; done) &
    copier=$!
    lines_before=$(wc -l < "$T/ctrd.log")
    t0=$(epoch)
    $CTR run --runtime $RUNTIME --annotation io.kubernetes.cri.image-name=$GIMAGE "$IMAGE" $id echo ready \
        | while read -r l; do [ "$l" = ready ] && epoch > "$T/t_out"; done
    t_out=$(cat "$T/t_out")
    kill $copier 2>/dev/null || true
    wait $copier 2>/dev/null || true
    $CTR c rm $id > /dev/null
    tail -n +"$((lines_before + 1))" "$T/ctrd.log" > "$T/run.log"
    t_spawn=$(secs_of "$(grep -m1 'started /usr/bin/qemu-system' "$T/run.log" | cut -d' ' -f1)")
    t_ready=$(secs_of "$(grep -m1 'agent ready in' "$T/run.log" | cut -d' ' -f1)")
    t_created=$(secs_of "$(grep -m1 'created in the guest' "$T/run.log" | cut -d' ' -f1)")
    create=$(grep -m1 'created in the guest' "$T/run.log" | sed 's/.* in \([0-9.]*\) s.*/\1/')
    first_guest=$(grep -m1 -aoE 'cloister-(aa|cdh|agent): [0-9]{4}-[0-9-]+T[0-9:.]+Z' "$T/console-$id.log" 2>/dev/null \
        | cut -d' ' -f2 || true)
    pull=$(grep -m1 'cdh: pulled' "$T/console-$id.log" 2>/dev/null \
        | sed 's/.* in \([0-9]*\) ms.*/\1/' || true)
    if [ -n "$first_guest" ]; then
        t_guest=$(secs_of "$first_guest")
        boot=$(fmt "$t_spawn" "$t_guest")
        agent=$(fmt "$t_guest" "$t_ready")
    else
        boot=?; agent=?
    fi
    [ -n "$pull" ] && pull=$(awk -v m="$pull" 'BEGIN { printf "%.2f", m / 1000 }') || pull=?
    printf '%-4s %-6s %-6s %-6s %-5s %-6s %-5s %-7s %s\n' $i "$(fmt "$t0" "$t_out")" "$(fmt "$t0" "$t_spawn")" \
        "$(fmt "$t_spawn" "$t_ready")" "$boot" "$agent" "$pull" "$create" "$(fmt "$t_created" "$t_out")"
done
