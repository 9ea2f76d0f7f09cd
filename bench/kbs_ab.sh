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

. bench/kbs-lib.sh
kbs_bench_keys
start() { # NAME BUILD: a server, warmed up
	kbs_bench_start "$1" "$2"
	eval "\"\$LOAD\" \"\$URL_$1\" bench/key/one \"\$CLIENTS\" 2 \"\$PID_$1\"" > /dev/null # warm-up
}
start A "$A"
start B "$B"
echo "== A/B, $CLIENTS clients, $ROUNDS rounds of ${SECS}s each, $(date -u '+%F %H:%M') UTC; A = $A, B = $B"
r=1
while [ "$r" -le "$ROUNDS" ]; do
	for n in A B; do
		eval "u=\$URL_$n p=\$PID_$n"
		"$LOAD" "$u" bench/key/one "$CLIENTS" "$SECS" "$p" | sed 's/.*server_cpu_us_per_handshake=\([0-9.]*\).*/\1/' >> "$T/res.$n"
	done
	r=$((r + 1))
done
for n in A B; do
	printf '%s: server CPU per handshake %s us; median %s us\n' "$n" "$(tr '\n' ' ' < "$T/res.$n")" \
		"$(sort -n "$T/res.$n" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
