#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Image pull benchmark (`make bench`, or alone: bench/image_pull.sh BUILD [MiB]). Builds a
# multi-layer image of about 500 MiB of mixed files (incompressible and compressible data,
# big and many small files), pushes it plain and JWE-encrypted to a loopback docker-registry,
# then times in the same run:
#   cloister image pull --flat          (plain, encrypted) and the layered store
#   skopeo copy docker:// oci: + umoci unpack   (plain, encrypted)
#   the floor: sha256sum + gzip -dc of the same layer blobs
# Prints wall time, CPU time (user+sys) and peak RSS of each, and the ratios against the goals
# (2x faster than skopeo + umoci, 70% of the floor's throughput, peak RSS under 64 MiB).
set -eu
BUILD=${1:-build}
MIB=${2:-${BENCH_IMAGE_MIB:-500}}
cd "$(dirname "$0")/.."
CLI=$(pwd)/$BUILD/src/cmd/cloister
[ -x "$CLI" ] || { echo "image bench: $CLI not built"; exit 1; }
for c in docker-registry skopeo umoci python3 openssl curl /usr/bin/time; do
    command -v "$c" >/dev/null 2>&1 || { echo "image bench: $c missing, skipped"; exit 0; }
done
if [ "$(id -u)" != 0 ]; then echo "image bench: umoci unpack needs root, skipped"; exit 0; fi
T=$(mktemp -d /tmp/cloister-imgbench.XXXXXX)
REGPID=""
trap '[ -n "$REGPID" ] && kill $REGPID 2>/dev/null; [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"' EXIT INT TERM

# ---- the image: 5 layers of about MIB/5 each ----
python3 - "$T" "$MIB" <<'PY'
import io, os, random, sys, tarfile
T, mib = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
words = [("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10)))).encode() for _ in range(5000)]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rnd.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:n])
per = (mib << 20) // 5
for l in range(5):
    with tarfile.open(f"{T}/layer{l}.tar", "w", format=tarfile.PAX_FORMAT) as tf:
        def add(name, data, mode=0o644):
            ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = mode; ti.mtime = 1700000000
            tf.addfile(ti, io.BytesIO(data))
        left = per
        # a third incompressible (binaries, media), the rest text in files of mixed sizes
        big = per // 3
        while big > 0:
            n = min(big, 16 << 20)
            add(f"l{l}/bin/blob{big}.bin", os.urandom(n), 0o755)
            big -= n
            left -= n
        i = 0
        while left > 0:
            n = min(left, rnd.choice([200, 1500, 4000, 20000, 120000, 1 << 20]))
            add(f"l{l}/share/d{i % 97}/f{i}.txt", text(n))
            left -= n
            i += 1
        if l == 4:
            ti = tarfile.TarInfo("l0/share/d0/.wh.f0.txt"); tf.addfile(ti)
PY
umoci init --layout "$T/oci" >/dev/null
umoci new --image "$T/oci:bench" >/dev/null
for l in 0 1 2 3 4; do umoci raw add-layer --image "$T/oci:bench" "$T/layer$l.tar"; rm "$T/layer$l.tar"; done

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$T/reg.yml" <<CFG
version: 0.1
log: {level: error, fields: {service: registry}}
storage: {filesystem: {rootdirectory: $T/reg}}
http: {addr: 127.0.0.1:$PORT}
CFG
docker-registry serve "$T/reg.yml" > "$T/reg.log" 2>&1 &
REGPID=$!
REG=127.0.0.1:$PORT
i=0; until curl -s -o /dev/null "http://$REG/v2/"; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done
openssl genrsa -out "$T/key.pem" 2048 2>/dev/null
openssl rsa -in "$T/key.pem" -pubout -out "$T/pub.pem" 2>/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$T/oci:bench" "docker://$REG/bench/plain:1"
skopeo copy -q --dest-tls-verify=false --encryption-key "jwe:$T/pub.pem" "oci:$T/oci:bench" "docker://$REG/bench/enc:1"
rm -rf "$T/oci"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$T/policy.json"
mkdir -p "$T/containers"
echo '{"default":[{"type":"insecureAcceptAnything"}]}' > "$T/containers/policy.json"
sync

# ---- measurements ----
# measure NAME CMD...: appends "NAME wall cpu rss_kib" to $T/results
measure() {
    name=$1; shift
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    /usr/bin/time -f "%e %U %S %M" -o "$T/time" "$@" > "$T/out" 2>&1 || { cat "$T/out"; echo "image bench: $name failed"; exit 1; }
    read -r wall user sys rss < "$T/time"
    echo "$name $wall $(echo "$user + $sys" | bc) $rss" >> "$T/results"
}
# two-step tools: wall and CPU add up, RSS is the larger of the two
measure2() {
    pair=$1; c1=$2; c2=$3   # (measure sets $name: sh has no locals)
    measure "$pair.1" sh -c "$c1"
    measure "$pair.2" sh -c "$c2"
    python3 - "$T/results" "$pair" <<'PY'
import sys
path, name = sys.argv[1], sys.argv[2]
rows = [l.split() for l in open(path)]
a = [r for r in rows if r[0] == name + ".1"][0]
b = [r for r in rows if r[0] == name + ".2"][0]
rows = [r for r in rows if r[0] not in (name + ".1", name + ".2")]
rows.append([name, f"{float(a[1]) + float(b[1]):.2f}", f"{float(a[2]) + float(b[2]):.2f}", str(max(int(a[3]), int(b[3])))])
open(path, "w").write("".join(" ".join(r) + "\n" for r in rows))
PY
}
: > "$T/results"
P="--policy $T/policy.json --registry-insecure $REG -q"
measure cloister-flat "$CLI" image pull "$REG/bench/plain:1" "$T/c-flat" --flat $P
measure cloister-layered "$CLI" image pull "$REG/bench/plain:1" "$T/c-store" $P
measure cloister-flat-enc "$CLI" image pull "$REG/bench/enc:1" "$T/c-enc" --flat $P --decryption-key "$T/key.pem"
rm -rf "$T/c-flat" "$T/c-store" "$T/c-enc"
SK="skopeo --policy $T/containers/policy.json copy -q --src-tls-verify=false"
measure2 skopeo+umoci "$SK docker://$REG/bench/plain:1 oci:$T/s-oci:x" "umoci unpack --image $T/s-oci:x $T/s-bundle"
rm -rf "$T/s-bundle"
measure2 skopeo+umoci-enc "$SK --decryption-key $T/key.pem docker://$REG/bench/enc:1 oci:$T/s-enc:x" \
    "umoci unpack --image $T/s-enc:x $T/s-bundle-enc"
rm -rf "$T/s-bundle-enc" "$T/s-enc"
layers=$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1]+"/index.json")); import os
m=json.load(open(sys.argv[1]+"/blobs/sha256/"+i["manifests"][0]["digest"][7:]))
print(" ".join(sys.argv[1]+"/blobs/sha256/"+l["digest"][7:] for l in m["layers"]))' "$T/s-oci")
measure2 floor "sha256sum $layers > /dev/null" "for f in $layers; do gzip -dc \$f > /dev/null; done"
bytes=$(du -cb $layers | tail -1 | cut -f1)

# ---- report ----
python3 - "$T/results" "$bytes" "$MIB" <<'PY'
import sys
rows = {r[0]: (float(r[1]), float(r[2]), int(r[3])) for r in (l.split() for l in open(sys.argv[1]))}
blob = int(sys.argv[2])
print(f"== image pull: {sys.argv[3]} MiB image in 5 layers, {blob / 2**20:.0f} MiB of gzip blobs, loopback registry")
print(f"{'':22} {'wall s':>8} {'cpu s':>8} {'peak RSS':>10} {'MiB/s (blobs)':>14}")
for k in ("cloister-flat", "cloister-layered", "cloister-flat-enc", "skopeo+umoci", "skopeo+umoci-enc", "floor"):
    w, c, r = rows[k]
    print(f"{k:22} {w:8.2f} {c:8.2f} {r / 1024:8.1f} MiB {blob / 2**20 / w:12.1f}")
cf, su, fl = rows["cloister-flat"], rows["skopeo+umoci"], rows["floor"]
ce, se = rows["cloister-flat-enc"], rows["skopeo+umoci-enc"]
print(f"speed-up vs skopeo+umoci: plain {su[0] / cf[0]:.2f}x, encrypted {se[0] / ce[0]:.2f}x (goal >= 2x)")
print(f"throughput vs the floor (sha256sum + gzip -dc): {fl[0] / cf[0] * 100:.0f}% (goal >= 70%)")
peak = max(rows[k][2] for k in ("cloister-flat", "cloister-layered", "cloister-flat-enc"))
print(f"cloister peak RSS: {peak / 1024:.1f} MiB (goal < 64 MiB)")
PY
