#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Instructions per RCAR handshake inside the KBS's request handler: cloister-kbs runs under
# callgrind (collection on only inside on_request, so start-up and idle polling do not count),
# bench/kbs_load drives one client for BENCH_SECONDS, and the total is divided by the
# handshakes it completed. A figure independent of the machine's noise, to set beside the
# CPU-time figures of bench/kbs_handshake.sh.
#
# usage: bench/kbs_callgrind.sh [BUILD]     BENCH_SECONDS (15)
# Needs valgrind (not installed by scripts/deps.sh; not part of `make bench`).
set -eu
BUILD=${1:-build}
SECS=${BENCH_SECONDS:-15}
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null 2>&1 || { echo "kbs_callgrind: valgrind is not installed" >&2; exit 1; }
T=$(mktemp -d /tmp/cloister-callgrind.XXXXXX)
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT INT TERM
. bench/kbs-lib.sh
kbs_bench_keys
kbs_bench_start S "$BUILD" # writes the configuration and uploads the secret
kill "$PID_S"
wait "$PID_S" 2>/dev/null || true
PIDS=""
valgrind --tool=callgrind --collect-atstart=no --toggle-collect=on_request \
	--callgrind-out-file="$T/cg.out" "$BUILD/src/cmd/cloister-kbs" -q -c "$T/S.toml" > "$T/vg.log" 2>&1 &
PIDS=$!
i=0
until curl -fsS "$URL_S/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 300 ] || { echo "cloister-kbs under callgrind did not start" >&2; cat "$T/vg.log" >&2; exit 1; }
	sleep 0.2
done
"$BUILD/bench/kbs_load" "$URL_S" bench/key/one 1 "$SECS" > "$T/load"
kill "$PIDS"
wait "$PIDS" 2>/dev/null || true
PIDS=""
hs=$(sed -n 's/.*handshakes=\([0-9]*\).*/\1/p' "$T/load")
ir=$(callgrind_annotate "$T/cg.out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
echo "== cloister-kbs under callgrind, one client, ${SECS}s, $(date -u '+%F %H:%M') UTC ($BUILD)"
cat "$T/load"
echo "instructions inside on_request: $ir over $hs handshakes (and the few /healthz polls):" \
	"$(python3 -c "print(f'{$ir / $hs / 1e6:.2f} M per handshake')")"
