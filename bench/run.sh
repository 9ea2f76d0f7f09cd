#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `make bench`: full-handshake load against cloister-kbs on loopback with the crypto floor of one
# handshake from `openssl speed` in the same run (bench/kbs_handshake.sh), then the other
# blocks below. docs/benchmarks.md records the figures.
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
T=$(mktemp -d /tmp/cloister-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM

# KBS handshakes against their crypto floor, several rounds (block maintained with src/kbs and
# src/crypto; figures in docs/benchmarks.md "KBS").
./bench/kbs_handshake.sh "$BUILD"

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

# ---------------------------------------------------------------------------------------------
# Redis store (block maintained with src/store; figures in docs/benchmarks.md "Redis store"):
# one client's SET / GET of 32 B, 64 KiB and 1 MiB and fresh connections over redis:// and
# rediss:// (bench/store_bench), each beside redis-benchmark on the same redis-server 7.
./bench/store_redis.sh "$BUILD"

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
