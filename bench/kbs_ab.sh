#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Same-time A/B of two cloister-kbs builds: both servers run at once (LocalFs store, P-256
# token key, sample TEE, worker_count = 2, as bench/kbs_handshake.sh), and bench/kbs_load
# alternates between them, so a machine whose speed drifts affects both alike. Prints the
# server CPU per handshake of every round and the median of each build.
#
# usage: bench/kbs_ab.sh BUILD_A BUILD_B
#   BENCH_ROUNDS (10)  alternating rounds
#   BENCH_SECONDS (3)  seconds of load per round and build
#   BENCH_CLIENTS (4)  concurrent clients
set -eu
A=${1:?usage: bench/kbs_ab.sh BUILD_A BUILD_B}
B=${2:?usage: bench/kbs_ab.sh BUILD_A BUILD_B}
ROUNDS=${BENCH_ROUNDS:-10}
SECS=${BENCH_SECONDS:-3}
CLIENTS=${BENCH_CLIENTS:-4}
LOAD=$(cd "$B" && pwd)/bench/kbs_load
cd "$(dirname "$0")/.."
T=$(mktemp -d /tmp/cloister-ab.XXXXXX)
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT INT TERM

openssl genpkey -algorithm ed25519 -out "$T/admin.key" 2>/dev/null
openssl pkey -in "$T/admin.key" -pubout -out "$T/admin.pub" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$T/as.key"
head -c 32 /dev/urandom > "$T/secret"

start() { # NAME BUILD: starts a server, sets URL_NAME and PID_NAME
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	cat > "$T/$1.toml" <<CFG
[http_server]
sockets = ["127.0.0.1:$port"]
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
dir_path = "$T/store-$1"
CFG
	"$2/src/cmd/cloister-kbs" -q -c "$T/$1.toml" > "$T/$1.log" 2>&1 &
	pid=$!
	PIDS="$PIDS $pid"
	i=0; until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done
	"$2/src/cmd/cloister" kbs set-resource --url "http://127.0.0.1:$port" --admin-key "$T/admin.key" \
		--path bench/key/one --file "$T/secret" > /dev/null
	"$LOAD" "http://127.0.0.1:$port" bench/key/one "$CLIENTS" 2 "$pid" > /dev/null # warm-up
	eval "URL_$1=http://127.0.0.1:$port PID_$1=$pid"
}
start A "$A"
start B "$B"
echo "== A/B, $CLIENTS clients, $ROUNDS rounds of ${SECS}s each, $(date -u '+%F %H:%M') UTC; A = $A, B = $B"
r=1
while [ "$r" -le "$ROUNDS" ]; do
	for n in A B; do
		eval "u=\$URL_$n p=\$PID_$n"
		"$LOAD" "$u" bench/key/one "$CLIENTS" "$SECS" "$p" | sed 's/.*server_cpu_us_per_handshake=//' >> "$T/res.$n"
	done
	r=$((r + 1))
done
for n in A B; do
	printf '%s: server CPU per handshake %s us; median %s us\n' "$n" "$(tr '\n' ' ' < "$T/res.$n")" \
		"$(sort -n "$T/res.$n" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
