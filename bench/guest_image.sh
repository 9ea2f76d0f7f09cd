#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Guest image figures: initrd size (compressed and unpacked), and boot-to-ready time under
# QEMU TCG with a per-boot swtpm, RUNS boots (default 3), the machine type from runtime.toml
# or BENCH_MACHINE. Ready = the init's "cloister-guest: ready" line on the serial console
# (cloister-aa and cloister-cdh serving). docs/guest-image.md records the figures.
set -eu
BUILD=${1:-build}
RUNS=${BENCH_RUNS:-3}
cd "$(dirname "$0")/.."
G=$BUILD/guest
./scripts/guest-image.sh "$BUILD" >/dev/null
KPARAMS=$(sed -n 's/^kernel_params = "\(.*\)"$/\1/p' "$G/runtime.toml")
MACHINE=${BENCH_MACHINE:-$(sed -n 's/^machine = "\(.*\)".*/\1/p' "$G/runtime.toml")}
T=$(mktemp -d /tmp/cloister-bench-guest.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM

gz=$(wc -c <"$G/initrd.img")
raw=$(zcat "$G/initrd.img" | wc -c)
files=$(zcat "$G/initrd.img" | cpio -it --quiet | wc -l)
echo "initrd.img: $gz bytes gzip, $raw bytes unpacked, $files entries; vmlinuz $(wc -c <"$G/vmlinuz") bytes"

i=0
times=""
while [ $i -lt "$RUNS" ]; do
    i=$((i + 1))
    d=$T/run$i
    mkdir -p "$d"
    swtpm_setup --tpm2 --tpmstate "$d" --overwrite >/dev/null 2>&1
    swtpm socket --tpm2 --tpmstate "dir=$d" --ctrl "type=unixio,path=$d/vtpm.sock" --log level=0 &
    until [ -S "$d/vtpm.sock" ]; do sleep 0.05; done
    : >"$d/console"
    t0=$(date +%s.%N)
    timeout 180 qemu-system-x86_64 -machine "$MACHINE" -accel tcg -m 512 -smp 1 -nographic -nodefaults \
        -no-reboot -serial "file:$d/console" -kernel "$G/vmlinuz" -initrd "$G/initrd.img" \
        -append "$KPARAMS cloister.halt_when_ready=1" \
        -chardev "socket,id=chrtpm,path=$d/vtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
        -device virtio-serial-pci -chardev "socket,id=agent,path=$d/agent.sock,server=on,wait=off" \
        -device virtserialport,chardev=agent,name=agent.0 \
        -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= \
        -object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0 >/dev/null 2>&1 &
    q=$!
    ready=""
    while kill -0 $q 2>/dev/null; do
        [ -z "$ready" ] && grep -q '^cloister-guest: ready' "$d/console" && ready=$(date +%s.%N)
        sleep 0.05
    done
    wait $q || { echo "run $i: qemu failed"; exit 1; }
    wait 2>/dev/null || true
    [ -n "$ready" ] || { echo "run $i: no ready line"; tr -d '\r' <"$d/console"; exit 1; }
    s=$(awk "BEGIN { printf \"%.2f\", $ready - $t0 }")
    guest=$(tr -d '\r' <"$d/console" | sed -n 's/^cloister-guest: up \([0-9.]*\) s, \([0-9]*\) kB available$/\1 s after the kernel started, \2 kB available/p')
    echo "run $i ($MACHINE): boot to ready $s s (guest: ${guest:-no figures line})"
    times="$times $s"
done
echo "$times" | tr ' ' '\n' | sed '/^$/d' | sort -n |
    awk -v m="$MACHINE" '{ v[NR] = $1; s += $1 } END { printf "boot to ready (%s, TCG, %d runs): median %.2f s, mean %.2f s, min %.2f s, max %.2f s\n", m, NR, v[int((NR + 1) / 2)], s / NR, v[1], v[NR] }'
