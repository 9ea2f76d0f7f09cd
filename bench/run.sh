#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `make bench`: full-handshake load against cloister-kbs on loopback, and in the same run the
# crypto floor of one handshake from `openssl speed` (ES256 sign + verify, one ECDH P-256,
# AES-256-GCM). Prints one summary block; docs/benchmarks.md records the figures.
set -eu
BUILD=${1:-build}
CLIENTS=${BENCH_CLIENTS:-4}
SECONDS_=${BENCH_SECONDS:-10}
cd "$(dirname "$0")/.."
KBS=$BUILD/src/cmd/cloister-kbs
LOAD=$BUILD/bench/kbs_load
T=$(mktemp -d /tmp/cloister-bench.XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$T"' EXIT INT TERM

openssl genpkey -algorithm ed25519 -out "$T/admin.key" 2>/dev/null
openssl pkey -in "$T/admin.key" -pubout -out "$T/admin.pub" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$T/as.key"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
cat > "$T/kbs.toml" <<CFG
[http_server]
sockets = ["127.0.0.1:$PORT"]
insecure_http = true
worker_count = 2
[admin]
type = "Simple"
[[admin.personas]]
id = "bench"
public_key_path = "$T/admin.pub"
[attestation_service]
type = "coco_as_builtin"
allow_sample_tee_insecure = true
max_sessions = 1000000
[attestation_service.attestation_token_broker.signer]
key_path = "$T/as.key"
[storage_backend]
storage_type = "LocalFs"
[storage_backend.backends.local_fs]
dir_path = "$T/store"
CFG
"$KBS" -q -c "$T/kbs.toml" > "$T/kbs.log" 2>&1 &
PID=$!
i=0; until curl -fsS "$URL/healthz" >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done
head -c 32 /dev/urandom > "$T/secret"
$BUILD/src/cmd/cloister kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path bench/key/one --file "$T/secret"

echo "== cloister-kbs full handshakes (auth + attest + resource), $CLIENTS clients, ${SECONDS_}s, $(date -u +%F)"
"$LOAD" "$URL" bench/key/one "$CLIENTS" "$SECONDS_" "$PID" | tee "$T/load"

echo "== crypto floor (openssl speed, same machine, same run)"
openssl speed -seconds 3 ecdsap256 ecdhp256 2>/dev/null > "$T/speed" || true
openssl speed -seconds 1 -bytes 256 -evp aes-256-gcm 2>/dev/null > "$T/aes" || true
sign=$(awk '/256 bits ecdsa \(nistp256\)/ {print $7}' "$T/speed")
verify=$(awk '/256 bits ecdsa \(nistp256\)/ {print $8}' "$T/speed")
ecdh=$(awk '/256 bits ecdh \(nistp256\)/ {print $6}' "$T/speed")
aes=$(awk '/^AES-256-GCM|^aes-256-gcm/ {v=$NF; sub(/k$/,"",v); print v}' "$T/aes")
python3 - "$sign" "$verify" "$ecdh" "${aes:-0}" "$T/load" <<'PY'
import re, sys
sign, verify, ecdh, aes_kbps = (float(x or 0) for x in sys.argv[1:5])
floor_us = 1e6 / sign + 1e6 / verify + 1e6 / ecdh + (256 / (aes_kbps * 1000) * 1e6 if aes_kbps else 0)
print(f"ES256 sign {sign:.0f}/s, verify {verify:.0f}/s, ECDH P-256 {ecdh:.0f}/s, AES-256-GCM(256 B) {aes_kbps:.0f} kB/s")
print(f"floor per handshake: {floor_us:.1f} us (sign + verify + ECDH + AES-GCM)")
m = re.search(r"server_cpu_us_per_handshake=([0-9.]+)", open(sys.argv[5]).read())
if m:
    cpu = float(m.group(1))
    print(f"server CPU per handshake: {cpu:.1f} us = {cpu / floor_us:.2f} x the crypto floor (goal: within 3x)")
PY

echo "== policy evaluation per request (attestation policy on the sample TEE, resource policy)"
"$BUILD/bench/policy_bench" . 20000

# ---------------------------------------------------------------------------------------------
# Rego engine (block maintained with src/rego; figures recorded in docs/benchmarks.md "Rego").
# Kata agent policies: the regorus-kata vectors, every request kind in `opa bench` terms, plus
# policy load time and engine memory; then the KBS resource-policy decision (prepared query).
VEC=${CLOISTER_VECTORS:-${CLOISTER_VECTORS_DEFAULT:-$(cd .. && pwd)/shared/vectors}}
if [ -d "$VEC/kata-policy/regorus-kata" ]; then
	echo "== Rego: Kata agent policies (regorus-kata), $BUILD/src/cmd/cloister policy bench --kata, $(date -u +%F)"
	"$BUILD/src/cmd/cloister" policy bench --kata --count "${BENCH_REGO_COUNT:-200}" "$VEC/kata-policy/regorus-kata" |
		sed -n '/^all policies/,$p'
else
	echo "== Rego: Kata agent policies skipped ($VEC/kata-policy/regorus-kata absent)"
fi
echo "== Rego: KBS resource-policy decision ($BUILD/bench/rego_bench policies/resource/default.rego)"
"$BUILD/bench/rego_bench" policies/resource/default.rego

# Image pull: cloister vs skopeo copy + umoci unpack vs the sha256sum + gzip floor.
./bench/image_pull.sh "$BUILD"

# TEE verifiers (block maintained with src/tee; figures in docs/benchmarks.md "TEE evidence"):
# full verifications per second per core of trustee's vectors (chains cached), next to the
# signature checks each one needs from `openssl speed` in the same run.
if [ -d "$VEC/trustee" ]; then
	echo "== TEE evidence verification ($BUILD/bench/tee_bench), $(date -u +%F)"
	"$BUILD/bench/tee_bench" "$VEC" 3
	openssl speed -seconds 3 ecdsap384 ecdsap256 rsa2048 2>/dev/null > "$T/tee-speed" || true
	awk '/384 bits ecdsa \(nistp384\)/ {printf "floor SNP: one ECDSA P-384 verify  %s/s\n", $8}
	     /256 bits ecdsa \(nistp256\)/ {printf "floor TDX: two ECDSA P-256 verifies %.0f/s\n", $8 / 2}
	     /^rsa 2048 bits/ {printf "floor TPM: one RSA-2048 verify      %s/s\n", $7}' "$T/tee-speed"
else
	echo "== TEE evidence verification skipped ($VEC/trustee absent)"
fi

# CCA and CSV (block maintained with src/tee/cca and src/tee/csv; docs/benchmarks.md "TEE
# evidence"): verifications per second per core next to their verifies from `openssl speed`.
if [ -d "$VEC/trustee" ]; then
	echo "== CCA / CSV evidence verification ($BUILD/bench/cca_csv_bench), $(date -u +%F)"
	"$BUILD/bench/cca_csv_bench" "$VEC" 3
	openssl speed -seconds 3 ecdsap384 sm2 2>/dev/null > "$T/cca-csv-speed" || true
	awk '/384 bits ecdsa \(nistp384\)/ {printf "floor CCA: two ECDSA P-384 verifies %.0f/s\n", $8 / 2}
	     /256 bits SM2 \(CurveSM2\)/ {printf "floor CSV: one SM2 verify %s/s; chain: four %.0f/s\n", $8, $8 / 4}' \
		"$T/cca-csv-speed"
fi

# ---------------------------------------------------------------------------------------------
# Guest side (block maintained with src/aa and src/cdh; figures in docs/benchmarks.md "Guest"):
# GetResource through the REST bridge cold (full RCAR per request) and warm (cached token),
# sample and tpm (swtpm) attesters, and the footprint of cloister-aa + cloister-cdh.
./bench/guest.sh "$BUILD"

# ---------------------------------------------------------------------------------------------
# Guest footprint (block maintained with src/aa and src/cdh; figures in docs/benchmarks.md
# "Guest"): time from process start to first token, stripped sizes of cloister-aa,
# cloister-cdh and the libraries they map at start or load on use, idle RSS/PSS/private of
# each daemon and the RSS by mapping, idle and after first use.
./bench/guest_footprint.sh "$BUILD"

# ---------------------------------------------------------------------------------------------
# Agent policy gate (block maintained with src/agent; figures in docs/agent.md "Cost"):
# decision latency inside cloister-agent per request kind, decode + serde JSON + Rego, on a
# recorded scenario with its generated policy and on the genpolicy testcases.
if [ -d "$VEC/kata-policy" ]; then
	echo "== cloister-agent policy decisions (decode + JSON + Rego), $(date -u +%F)"
	"$BUILD/bench/agent_bench" "$VEC" "${BENCH_AGENT_ITERS:-2000}"
else
	echo "== agent policy decisions skipped ($VEC/kata-policy absent)"
fi

# ---------------------------------------------------------------------------------------------
# Agent runtime (block maintained with src/agent runtime; figures in docs/agent-runtime.md
# "Figures"): CreateContainer end to end (guest pull through cloister-cdh from a loopback
# registry, runc), Start, Wait, Remove, each through agent-ctl. Needs root and runc.
echo "== cloister-agent containers (runc, guest pull), $(date -u +%F)"
BENCH_N=${BENCH_AGENT_CONTAINERS:-20} sh ./bench/agent_create.sh "$BUILD" 2>/dev/null \
	| grep -v '^ok - ' || echo "agent_create skipped (needs root, runc, docker-registry, skopeo, umoci)"
