#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The footprint of the guest daemons inside a TEE, measured precisely:
#   1. time from process start to first token: the script execs cloister-aa, connects to its
#      socket as soon as it appears and asks GetToken("kbs") over ttrpc (a full RCAR with
#      cloister-kbs on loopback); sample attester, and tpm on swtpm when swtpm is installed
#   2. stripped size of cloister-aa and cloister-cdh, and of every shared library beyond libc
#      they pull in: those the loader maps at start (ldd) and those loaded on first use
#      (dlopen: the sonames named in the binaries, with their own ldd chains)
#   3. idle memory of each daemon from /proc/PID/smaps_rollup (RSS, PSS, private, anonymous)
#      1 s after both answer, and the RSS by mapping (which libraries' pages are resident)
#   4. the same after first use (one resource through the REST bridge: a token in the agent,
#      a KBS request in the hub), which is what a guest that has fetched its secrets holds
# Usage: bench/guest_footprint.sh [BUILD] ; BENCH_FOOT_N (runs per attester, default 10),
# BENCH_FOOT_TOP (mappings listed per process, default 12).
set -eu
BUILD=${1:-build}
N=${BENCH_FOOT_N:-10}
TOP=${BENCH_FOOT_TOP:-12}
cd "$(dirname "$0")/.."
KBS=$BUILD/src/cmd/cloister-kbs
AA=$BUILD/src/cmd/cloister-aa
CDH=$BUILD/src/cmd/cloister-cdh
CLI=$BUILD/src/cmd/cloister
for b in "$KBS" "$AA" "$CDH" "$CLI"; do
    [ -x "$b" ] || { echo "guest_footprint: $b is not built" >&2; exit 1; }
done
T=$(mktemp -d /tmp/cloister-bench-foot.XXXXXX)
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null || true; done; for p in $PIDS; do wait $p 2>/dev/null || true; done; rm -rf "$T"' EXIT INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { i=0; until eval "$1" >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 400 ] || { echo "guest_footprint: $2 did not start" >&2; exit 1; }; sleep 0.025; done; }
mib() { echo "$1" | awk '{printf "%.2f", $1 / 1048576}'; }

# ---- the KBS, one resource, a policy that releases it ----
. bench/kbs-lib.sh # the handshake bench's KBS: keys, config, the secret at bench/key/one
kbs_bench_keys
kbs_bench_start K "$BUILD"
URL=$URL_K
"$CLI" kbs set-resource-policy --url "$URL" --admin-key "$T/admin.key" \
    --file policies/resource/allow_all.rego >/dev/null

cat > "$T/aa-sample.toml" <<EOF
allow_sample_attester_insecure = true
tpm_tcti = "none"
[token_configs.kbs]
url = "$URL"
EOF

# ---- 1. time from process start to first token ----
# first_token NAME AA_TOML: N runs of exec → socket → GetToken("kbs") answered
first_token() {
    python3 - "$1" "$AA" "$2" "$T" "$N" <<'PY'
import os, socket, statistics, struct, subprocess, sys, time
name, aa, cfg, tdir, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
def pb_bytes(field, b):
    n, v = len(b), b""
    while True:
        v += bytes([(n & 0x7f) | (0x80 if n > 0x7f else 0)]); n >>= 7
        if not n: break
    return bytes([field << 3 | 2]) + v + b
def recv_exact(s, k):
    b = b""
    while len(b) < k:
        c = s.recv(k - len(b))
        if not c: raise SystemExit(f"guest_footprint: {name}: the agent closed the connection")
        b += c
    return b
req = (pb_bytes(1, b"attestation_agent.AttestationAgentService") + pb_bytes(2, b"GetToken")
       + pb_bytes(3, pb_bytes(1, b"kbs")))
xs = []
for i in range(n):
    sock = f"{tdir}/ft-{name}-{i}.sock"
    t0 = time.perf_counter()
    p = subprocess.Popen([aa, "-q", "-a", "unix://" + sock, "-c", cfg], stdout=subprocess.DEVNULL,
                         stderr=open(f"{tdir}/ft-{name}.log", "ab"))
    try:
        while True:
            if p.poll() is not None:
                raise SystemExit(f"guest_footprint: {name}: cloister-aa exited ({p.returncode})")
            try:
                s = socket.socket(socket.AF_UNIX); s.connect(sock); break
            except OSError:
                s.close(); time.sleep(0.0005)
        s.settimeout(120)
        s.sendall(struct.pack(">IIBB", len(req), 1, 1, 0) + req)
        ln, sid, typ, _ = struct.unpack(">IIBB", recv_exact(s, 10))
        body = recv_exact(s, ln)
        dt = (time.perf_counter() - t0) * 1e3
        # Response{status=1, payload=2}: the payload is {"token":"<JWT>","tee_keypair":...}
        if b'{"token":"eyJ' not in body:
            raise SystemExit(f"guest_footprint: {name}: GetToken failed: {body[:300]!r}")
        xs.append(dt)
        s.close()
    finally:
        p.terminate(); p.wait()
xs.sort()
print(f"{name:7} n={len(xs):3}  p50 {xs[len(xs) // 2]:8.1f} ms  min {xs[0]:8.1f} ms  max {xs[-1]:8.1f} ms")
PY
}

echo "== Guest footprint ($BUILD, $(date -u +%F), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
echo "-- time from process start to first token (exec cloister-aa → GetToken(\"kbs\") answered, RCAR included)"
first_token sample "$T/aa-sample.toml"
if command -v swtpm >/dev/null 2>&1; then
    mkdir -p "$T/tpm"
    SP=$(python3 -c '
import socket
for _ in range(200):
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError: pass
    finally: a.close(); b.close()
')
    swtpm socket --tpm2 --tpmstate dir="$T/tpm" --server type=tcp,port="$SP",bindaddr=127.0.0.1 \
        --ctrl type=tcp,port=$((SP + 1)),bindaddr=127.0.0.1 --flags not-need-init,startup-clear > "$T/swtpm.log" 2>&1 &
    PIDS="$PIDS $!"
    wait_for "python3 -c \"import socket; socket.create_connection(('127.0.0.1', $SP), 1)\"" swtpm
    printf 'tpm_tcti = "swtpm:host=127.0.0.1,port=%s"\n[token_configs.kbs]\nurl = "%s"\n' "$SP" "$URL" > "$T/aa-tpm.toml"
    first_token tpm "$T/aa-tpm.toml"
else
    echo "tpm     skipped: swtpm is not installed"
fi

# ---- 2. stripped sizes: our binaries, the libraries they map at start and on first use ----
echo "-- stripped size"
total=0
for b in "$AA" "$CDH"; do
    strip -o "$T/stripped" "$b"
    sz=$(stat -c %s "$T/stripped")
    total=$((total + sz))
    printf '%-13s %9d bytes\n' "$(basename "$b")" "$sz"
done
printf '%-13s %9d bytes = %s MiB (goal: < 2 MiB)\n' "ours" "$total" "$(mib $total)"
notlibc='/libc\.so|/libm\.so|/libpthread|/libdl\.so|/ld-linux|/librt\.so|linux-vdso'
libs_of() { ldd "$@" 2>/dev/null | awk '/=>/ && $3 ~ /^\// {print $3}' | grep -v -E "$notlibc" | sort -u; }
# the sonames a binary dlopens are string literals in it: every "libX.so.N" that the loader does
# not map at start, found with ldconfig
dlopened() {
    strings -a "$1" | grep -E '^lib[A-Za-z0-9_+.-]+\.so\.[0-9]+$' | sort -u | while read -r so; do
        ldd "$1" | grep -q "^[[:space:]]*$so " && continue
        ldconfig -p | awk -v so="$so" '$1 == so && /x86-64|x86_64/ {print $NF; exit}'
    done
}
sized() { # sized LABEL FILE...: stripped size of each library (one line), and the total
    label=$1; shift
    sum=0; n=0; names=""
    for l in "$@"; do
        strip -o "$T/lib" "$l" 2>/dev/null || cp "$l" "$T/lib"
        s=$(stat -c %s "$T/lib"); sum=$((sum + s)); n=$((n + 1))
        names="$names $(basename "$l" | sed 's/\.so.*//'):$((s / 1024))K"
    done
    printf '%s: %d libraries, %s MiB stripped\n' "$label" "$n" "$(mib $sum)"
    [ -n "$names" ] && echo "$names" | fold -s -w 100 | sed 's/^/   /'
    return 0
}
for b in "$AA" "$CDH"; do
    libs_of "$b" > "$T/at-start"
    # shellcheck disable=SC2046
    sized "$(basename "$b") maps at start" $(cat "$T/at-start")
    dlopened "$b" > "$T/dl"
    if [ -s "$T/dl" ]; then
        # shellcheck disable=SC2046
        { cat "$T/dl"; libs_of $(cat "$T/dl"); } | sort -u | grep -v -x -F -f "$T/at-start" > "$T/on-use" || true
        # shellcheck disable=SC2046
        sized "$(basename "$b") loads on first use (dlopen, with their chains)" $(cat "$T/on-use")
    fi
done
{ dlopened "$AA"; dlopened "$CDH"; } | sort -u > "$T/dl"
# shellcheck disable=SC2046
{ cat "$T/dl"; libs_of "$AA" "$CDH" $(cat "$T/dl"); } | sort -u > "$T/all"
# shellcheck disable=SC2046
sized "both, every library that may be loaded" $(cat "$T/all")

# ---- 3. idle memory, 4. after first use ----
"$AA" -q -a "unix://$T/idle-aa.sock" -c "$T/aa-sample.toml" > "$T/idle-aa.log" 2>&1 &
APID=$!; PIDS="$PIDS $APID"
wait_for "[ -S $T/idle-aa.sock ]" "idle cloister-aa"
RP=$(port)
cat > "$T/idle-cdh.toml" <<EOF
socket = "unix://$T/idle-cdh.sock"
[aa]
aa_socket = "unix://$T/idle-aa.sock"
[kbc]
name = "cc_kbc"
url = "$URL"
[rest]
address = "127.0.0.1:$RP"
EOF
"$CDH" -q -c "$T/idle-cdh.toml" > "$T/idle-cdh.log" 2>&1 &
CPID=$!; PIDS="$PIDS $CPID"
wait_for "[ -S $T/idle-cdh.sock ]" "idle cloister-cdh"
# the bridge listens (read from /proc/net/tcp: a connection would be a first use)
wait_for "grep -qi ' 0100007F:$(printf %04X "$RP") 00000000:0000 0A ' /proc/net/tcp" "REST bridge"
sleep 1
memory() { # memory LABEL
    python3 - "$1" "$TOP" "$APID" cloister-aa "$CPID" cloister-cdh <<'PY'
import collections, os, sys
label, top, procs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def rollup(pid):
    d = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        p = line.split()
        if p[0].endswith(":") and len(p) >= 2 and p[1].isdigit():
            d[p[0][:-1]] = int(p[1])
    d["Private"] = d.get("Private_Clean", 0) + d.get("Private_Dirty", 0)
    return d
def by_mapping(pid):
    agg, cur = collections.defaultdict(lambda: [0, 0, 0]), None
    for line in open(f"/proc/{pid}/smaps"):
        p = line.split()
        if not p[0].endswith(":"):
            name = p[5] if len(p) > 5 else "[anon]"
            cur = os.path.basename(name) if name.startswith("/") else name
        elif p[0] == "Rss:": agg[cur][0] += int(p[1])
        elif p[0] == "Pss:": agg[cur][1] += int(p[1])
        elif p[0] in ("Private_Clean:", "Private_Dirty:"): agg[cur][2] += int(p[1])
    return agg
tot = collections.Counter()
print(f"-- {label}: /proc/PID/smaps_rollup (KiB)")
print(f"{'':13} {'RSS':>7} {'PSS':>7} {'private':>8} {'anon':>7} {'threads':>8}")
for pid, name in zip(procs[::2], procs[1::2]):
    d = rollup(pid)
    th = next(l.split()[1] for l in open(f"/proc/{pid}/status") if l.startswith("Threads:"))
    print(f"{name:13} {d['Rss']:7d} {d['Pss']:7d} {d['Private']:8d} {d['Anonymous']:7d} {th:>8}")
    for k in ("Rss", "Pss", "Private", "Anonymous"): tot[k] += d[k]
print(f"{'together':13} {tot['Rss']:7d} {tot['Pss']:7d} {tot['Private']:8d} {tot['Anonymous']:7d}"
      f"   RSS {tot['Rss'] / 1024:.2f} MiB (goal: < 8 MiB), PSS {tot['Pss'] / 1024:.2f} MiB")
for pid, name in zip(procs[::2], procs[1::2]):
    agg = by_mapping(pid)
    rows = sorted(((v, k) for k, v in agg.items() if v[0]), reverse=True)
    print(f"   {name} RSS by mapping (rss/pss/private KiB), {len(rows)} mappings:")
    line = ""
    for v, k in rows[:top]:
        line += f" {k.replace('.so', '')}={v[0]}/{v[1]}/{v[2]}"
    rest = [v for v, _ in rows[top:]]
    if rest:
        line += f" +{len(rest)} others={sum(r[0] for r in rest)}/{sum(r[1] for r in rest)}/{sum(r[2] for r in rest)}"
    import textwrap
    print(textwrap.fill(line.strip(), 100, initial_indent="     ", subsequent_indent="     "))
PY
}
memory "idle (1 s after both answer)"
curl -fsS -o "$T/got" "http://127.0.0.1:$RP/cdh/resource/bench/key/one" || { echo "guest_footprint: GetResource failed" >&2; exit 1; }
cmp -s "$T/got" "$T/secret" || { echo "guest_footprint: GetResource returned other bytes" >&2; exit 1; }
sleep 1
memory "after first use (one resource through the REST bridge: RCAR in the agent, KBS GET in the hub)"
