#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Guest side: GetResource latency through the REST bridge (what a container sees on
# 127.0.0.1:8006), with cloister-kbs, cloister-aa and cloister-cdh on loopback and unix sockets.
#   cold   every request runs a full RCAR: before each one the agent drops its token and the
#          hub its token and cache (SIGHUP to both); the request then goes hub → agent GetToken
#          → auth + evidence + attest → resource → JWE opened with the new TEE key
#   warm   the token is cached; the resource cache is off (ttl 0), so each request is a Bearer
#          GET to the KBS and a JWE opened by the hub
#   cached the hub's resource cache answers
# With the sample attester, and with the tpm attester on swtpm when swtpm is installed.
# Also the footprint inside the TEE: stripped binaries and idle resident memory.
# Usage: bench/guest.sh [BUILD] ; BENCH_GUEST_N (warm/cached requests, default 300),
# BENCH_GUEST_COLD (cold requests, default 40).
set -eu
BUILD=${1:-build}
N=${BENCH_GUEST_N:-300}
COLD=${BENCH_GUEST_COLD:-40}
cd "$(dirname "$0")/.."
KBS=$BUILD/src/cmd/cloister-kbs
AA=$BUILD/src/cmd/cloister-aa
CDH=$BUILD/src/cmd/cloister-cdh
CLI=$BUILD/src/cmd/cloister
T=$(mktemp -d /tmp/cloister-bench-guest.XXXXXX)
PIDS=""
trap 'for p in $PIDS; do kill $p 2>/dev/null || true; done; for p in $PIDS; do wait $p 2>/dev/null || true; done; rm -rf "$T"' EXIT INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { i=0; until eval "$1" >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 200 ] || { echo "bench: $2 did not start" >&2; exit 1; }; sleep 0.05; done; }

# ---- the KBS ----
. bench/kbs-lib.sh # the handshake bench's KBS: keys, config, the secret at bench/key/one
kbs_bench_keys
KBS_BENCH_FLAGS="" # the reply lines count the handshakes below
kbs_bench_start K "$BUILD"
URL=$URL_K
"$CLI" kbs set-resource-policy --url "$URL" --admin-key "$T/admin.key" \
    --file policies/resource/allow_all.rego >/dev/null

# run_stack NAME AA_TOML_EXTRA: one agent and two hubs (cache off / on), then the client
run_stack() {
    name=$1
    cat > "$T/aa-$name.toml" <<EOF
$2
[token_configs.kbs]
url = "$URL"
EOF
    "$AA" -q -a "unix://$T/aa-$name.sock" -c "$T/aa-$name.toml" > "$T/aa-$name.log" 2>&1 &
    AA_PID=$!
    PIDS="$PIDS $AA_PID"
    wait_for "[ -S $T/aa-$name.sock ]" "cloister-aa ($name)"
    for ttl in 0 300; do
        rp=$(port)
        cat > "$T/cdh-$name-$ttl.toml" <<EOF
socket = "unix://$T/cdh-$name-$ttl.sock"
[aa]
aa_socket = "unix://$T/aa-$name.sock"
[kbc]
name = "cc_kbc"
url = "$URL"
resource_cache_ttl = $ttl
[rest]
address = "127.0.0.1:$rp"
EOF
        "$CDH" -q -c "$T/cdh-$name-$ttl.toml" > "$T/cdh-$name-$ttl.log" 2>&1 &
        PIDS="$PIDS $!"
        eval "CDH_PID_$ttl=$!"
        eval "REST_$ttl=http://127.0.0.1:$rp"
        wait_for "curl -fsS http://127.0.0.1:$rp/info" "cloister-cdh ($name)"
    done
    auths0=$(grep -c 'POST /kbs/v0/auth' "$T/K.log" || true)
    python3 - "$name" "$REST_0" "$REST_300" "$AA_PID" "$CDH_PID_0" "$N" "$COLD" "$T/secret" <<'PY'
import http.client, os, signal, statistics, sys, time, urllib.parse
name, rest0, rest300, aa_pid, cdh_pid, n, cold, secret = sys.argv[1:9]
aa_pid, cdh_pid, n, cold = int(aa_pid), int(cdh_pid), int(n), int(cold)
want = open(secret, "rb").read()
def conn(url):
    u = urllib.parse.urlsplit(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)
def get(c):
    t0 = time.perf_counter()
    c.request("GET", "/cdh/resource/bench/key/one")
    r = c.getresponse(); body = r.read()
    dt = (time.perf_counter() - t0) * 1e3
    if r.status != 200 or body != want:
        sys.exit(f"bench: GET answered {r.status}: {body[:200]!r}")
    return dt
def report(label, xs):
    xs = sorted(xs)
    p = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]
    print(f"{name:6} {label:7} n={len(xs):4}  p50 {p(0.5):7.2f} ms  p90 {p(0.9):7.2f} ms  "
          f"mean {statistics.mean(xs):7.2f} ms  min {xs[0]:7.2f} ms")
c0, c300 = conn(rest0), conn(rest300)
get(c0); get(c300)                                  # warm-up: one token, one cached entry
cold_ms = []
for _ in range(cold):
    os.kill(aa_pid, signal.SIGHUP); os.kill(cdh_pid, signal.SIGHUP)
    time.sleep(0.05)                                 # both daemons have acted on the signal
    cold_ms.append(get(c0))
report("cold", cold_ms)
report("warm", [get(c0) for _ in range(n)])
report("cached", [get(c300) for _ in range(n)])
PY
    auths=$(( $(grep -c 'POST /kbs/v0/auth' "$T/K.log" || true) - auths0 ))
    echo "$name   RCAR handshakes seen by the KBS during the run: $auths (cold requests: $COLD)"
    kill "$AA_PID" "$CDH_PID_0" "$CDH_PID_300" 2>/dev/null || true
}

echo "== Guest: GetResource through the REST bridge ($BUILD, $(date -u +%F))"
run_stack sample "allow_sample_attester_insecure = true
tpm_tcti = \"none\""
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
    run_stack tpm "tpm_tcti = \"swtpm:host=127.0.0.1,port=$SP\""
else
    echo "tpm    skipped: swtpm is not installed"
fi

# ---- footprint: stripped binaries, shared libraries beyond libc, idle resident memory ----
echo "== Guest: footprint ($BUILD)"
total=0
for b in "$AA" "$CDH"; do
    strip -o "$T/stripped" "$b"
    sz=$(stat -c %s "$T/stripped")
    total=$((total + sz))
    printf '%-14s stripped %8d bytes\n' "$(basename "$b")" "$sz"
done
printf '%-14s stripped %8d bytes (%.2f MiB)\n' "together" "$total" "$(echo "$total / 1048576" | bc -l)"
ldd "$AA" "$CDH" | awk '/=>/ {print $3}' | sort -u | grep -v -E '/libc\.so|/libm\.so|/libpthread|/libdl\.so|/ld-linux|/librt\.so' \
    > "$T/libs" || true
libsz=0
while read -r l; do libsz=$((libsz + $(stat -L -c %s "$l"))); done < "$T/libs"
printf 'shared libraries beyond libc: %d, %.2f MiB on disk\n' "$(wc -l < "$T/libs")" "$(echo "$libsz / 1048576" | bc -l)"
"$AA" -q -a "unix://$T/idle-aa.sock" -c "$T/aa-sample.toml" > /dev/null 2>&1 &
APID=$!; PIDS="$PIDS $APID"
wait_for "[ -S $T/idle-aa.sock ]" "idle cloister-aa"
sed "s|cdh-sample-0.sock|idle-cdh.sock|; s|address = .*|address = \"127.0.0.1:$(port)\"|; s|aa-sample.sock|idle-aa.sock|" \
    "$T/cdh-sample-0.toml" > "$T/idle-cdh.toml"
"$CDH" -q -c "$T/idle-cdh.toml" > /dev/null 2>&1 &
CPID=$!; PIDS="$PIDS $CPID"
wait_for "[ -S $T/idle-cdh.sock ]" "idle cloister-cdh"
sleep 1
ra=$(awk '/VmRSS/ {print $2}' /proc/$APID/status)
rc=$(awk '/VmRSS/ {print $2}' /proc/$CPID/status)
printf 'idle RSS: cloister-aa %d KiB, cloister-cdh %d KiB, together %.2f MiB\n' "$ra" "$rc" \
    "$(echo "($ra + $rc) / 1024" | bc -l)"
# RSS counts every mapped page of the shared libraries; the private part is each process's own
pa=$(awk '/^Private_(Clean|Dirty)/ {s += $2} END {print s}' /proc/$APID/smaps_rollup)
pc=$(awk '/^Private_(Clean|Dirty)/ {s += $2} END {print s}' /proc/$CPID/smaps_rollup)
printf 'idle private memory: cloister-aa %d KiB, cloister-cdh %d KiB, together %.2f MiB\n' "$pa" "$pc" \
    "$(echo "($pa + $pc) / 1024" | bc -l)"
