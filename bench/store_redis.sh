#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The Redis store (src/store/store_redis.c; rediss:// through store_tls.c's relay) against
# redis-benchmark, one client each, same server, same run. A redis-server 7 started here in a
# temporary folder (no persistence: the client side is what is measured) with a plaintext
# port and a TLS port (self-signed CA, server certificate for localhost, client certificates
# required). For redis:// and rediss://localhost, bench/store_bench times sequential SETs then
# GETs of 32 B, 64 KiB and 1 MiB values, and fresh connections (store open + first GET); then
# `redis-benchmark -c 1 -P 1 -t get,set -d SIZE -n N --csv` (and `-k 0 -t get` for
# connections, one new connection per GET) on the same port. Each figure is printed with its
# ratio to redis-benchmark's (latency: ours / peer, lower is better; ops/s: ours / peer,
# higher is better). A fresh connection is compared as a full cycle (ours: open, GET, close;
# redis-benchmark -k 0: 1 / its requests per second).
# Usage: bench/store_redis.sh [BUILD]   (docs/benchmarks.md "Redis store" records the figures)
# BENCH_STORE_N scales the counts (default 1: 20000 of 32 B, 1000 of 64 KiB, 500 of 1 MiB,
# 1000 connections).
set -eu
BUILD=$(cd "${1:-build}" && pwd)
BIN=$BUILD/bench/store_bench
SCALE=${BENCH_STORE_N:-1}
for c in redis-server redis-benchmark redis-cli openssl; do
	if ! command -v "$c" >/dev/null 2>&1; then
		echo "== Redis store skipped ($c is not installed)"
		exit 0
	fi
done
[ -x "$BIN" ] || { echo "store_bench not built at $BIN" >&2; exit 1; }
T=$(mktemp -d /tmp/cloister-bench-redis.XXXXXX)
RD_PID=""
cleanup() {
	if [ -n "$RD_PID" ]; then kill "$RD_PID" 2>/dev/null || true; wait "$RD_PID" 2>/dev/null || true; fi
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ---- a CA, a server certificate for localhost, a client certificate (as the TLS test) ----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj "/CN=cloister bench ca" -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null
cert() { # cert NAME SUBJECT EXTENSIONS: $T/NAME.pem + .key, signed by the CA
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
		-keyout "$T/$1.key" -out "$T/$1.csr" 2>/dev/null
	printf '%s\n' "$3" > "$T/$1.ext"
	openssl x509 -req -in "$T/$1.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
		-extfile "$T/$1.ext" -out "$T/$1.pem" 2>/dev/null
}
cert server /CN=localhost 'subjectAltName=DNS:localhost'
cert client /CN=cloister-kbs 'extendedKeyUsage=clientAuth'

# ---- redis-server 7: plaintext and TLS ports ----
PORT=$(free_port)
TLS_PORT=$(free_port)
redis-server --port "$PORT" --tls-port "$TLS_PORT" --bind 127.0.0.1 --tls-cert-file "$T/server.pem" \
	--tls-key-file "$T/server.key" --tls-ca-cert-file "$T/ca.pem" --tls-auth-clients yes \
	--dir "$T" --save "" --appendonly no --daemonize no > "$T/redis.log" 2>&1 &
RD_PID=$!
i=0
until redis-cli -p "$PORT" ping >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "redis-server did not come up: $(tail -5 "$T/redis.log")" >&2; exit 1; }
	sleep 0.1
done
TLS_ARGS="--tls --cacert $T/ca.pem --cert $T/client.pem --key $T/client.key"
echo "== Redis store, one client: bench/store_bench against redis-benchmark, $(date -u '+%F %H:%M') UTC," \
	"redis-server $(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/'), load $(cut -d' ' -f1-3 /proc/loadavg)"

# peer MODE CSV_OUT ARGS...: redis-benchmark on the plaintext or TLS port, one client
peer() {
	mode=$1; out=$2; shift 2
	if [ "$mode" = tls ]; then
		# shellcheck disable=SC2086 # TLS_ARGS is a word list
		redis-benchmark -h localhost -p "$TLS_PORT" $TLS_ARGS -c 1 --csv --precision 3 "$@" > "$out" 2>/dev/null
	else
		redis-benchmark -h 127.0.0.1 -p "$PORT" -c 1 --csv --precision 3 "$@" > "$out" 2>/dev/null
	fi
}

# compare LABEL OURS_LINE PEER_CSV_ROW: one line with both and the ratios
compare() {
	printf '%s\n%s\n' "$2" "$3" | awk -v label="$1" '
	NR == 1 { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] } }
	NR == 2 { gsub(/"/, ""); split($0, p, ",")
		  pr = p[2]; p50 = p[5] * 1000; p99 = p[7] * 1000
		  printf "%-22s store p50 %8.1f us p99 %8.1f us %8.0f ops/s | redis-benchmark p50 %8.1f us p99 %8.1f us %8.0f ops/s | ratio p50 %.2fx p99 %.2fx ops/s %.2fx\n",
			 label, f["p50_us"], f["p99_us"], f["ops_s"], p50, p99, pr,
			 f["p50_us"] / p50, f["p99_us"] / p99, f["ops_s"] / pr }'
}

for mode in plain tls; do
	if [ "$mode" = tls ]; then
		URL="rediss://localhost:$TLS_PORT"
		export CLOISTER_REDIS_CA_FILE="$T/ca.pem" CLOISTER_REDIS_CERT_FILE="$T/client.pem" \
			CLOISTER_REDIS_KEY_FILE="$T/client.key"
	else
		URL="redis://127.0.0.1:$PORT"
	fi
	for sz_n in 32:20000 65536:1000 1048576:500; do
		size=${sz_n%%:*}; n=$((${sz_n#*:} * SCALE))
		"$BIN" "$URL" "$size" "$n" > "$T/ours"
		peer "$mode" "$T/peer" -P 1 -t get,set -d "$size" -n "$n"
		for op in set get; do
			OP=$(echo "$op" | tr '[:lower:]' '[:upper:]')
			compare "${URL%%:*}:// $OP $size B" "$(grep "^$op " "$T/ours")" "$(grep "^\"$OP\"" "$T/peer")"
		done
	done
	n=$((1000 * SCALE))
	"$BIN" "$URL" connect "$n" > "$T/ours"
	# redis-benchmark's key still holds the last SET's 1 MiB: put 32 B back for its GETs
	redis-cli -p "$PORT" SET key:__rand_int__ 0123456789abcdef0123456789abcdef >/dev/null
	peer "$mode" "$T/peer" -k 0 -t get -n "$n"
	printf '%s\n%s\n' "$(grep '^connect_cycle ' "$T/ours")" "$(grep '^"GET"' "$T/peer")" | awk -v label="${URL%%:*}:// connect" -v first="$(grep '^connect ' "$T/ours")" '
	NR == 1 { split($3, kv, "="); ours = kv[2] }
	NR == 2 { gsub(/"/, ""); split($0, p, ","); peer = 1e6 / p[2]
		  split(first, w, " "); split(w[4], a, "="); split(w[5], b, "=")
		  printf "%-22s store open+GET p50 %.1f us p99 %.1f us, open+GET+close %.1f us | redis-benchmark -k 0 connect+GET+close %.1f us | ratio %.2fx\n",
			 label, a[2], b[2], ours, peer, ours / peer }'
	unset CLOISTER_REDIS_CA_FILE CLOISTER_REDIS_CERT_FILE CLOISTER_REDIS_KEY_FILE
done
