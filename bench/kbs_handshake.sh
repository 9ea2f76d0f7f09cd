#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Server CPU of one full RCAR handshake against its crypto floor, several rounds in one run.
#
# usage: bench/kbs_handshake.sh [BUILD]
#   BENCH_RUNS (5)      rounds; each = kbs_load for BENCH_SECONDS, then `openssl speed`
#   BENCH_CLIENTS (4)   concurrent clients
#   BENCH_SECONDS (10)  seconds of load per round
#   BENCH_STORE (LocalFs) storage_type of the KBS (LocalFs or Memory)
#
# `cloister-kbs` on loopback, P-256 token key, sample TEE; `bench/kbs_load` runs full
# handshakes (auth + attest + resource with a JWE answer) and reads the server's CPU time
# from /proc. The floor of one handshake, from `openssl speed` right after each round:
# one ES256 sign (the token), one ES256 verify (the token at the resource request), one
# ECDH P-256 derive and one P-256 key generation (the JWE's ECDH-ES ephemeral key; `openssl
# speed` has no key-generation figure, so it is counted as one ES256 sign: both are one
# fixed-base scalar multiplication, the sign adds a modular inversion), AES-256-GCM of
# 256 bytes. Prints each round, then the median and the range of the ratio.
set -eu
BUILD=${1:-build}
RUNS=${BENCH_RUNS:-5}
CLIENTS=${BENCH_CLIENTS:-4}
SECS=${BENCH_SECONDS:-10}
STORE=${BENCH_STORE:-LocalFs}
cd "$(dirname "$0")/.."
LOAD=$BUILD/bench/kbs_load
T=$(mktemp -d /tmp/cloister-bench.XXXXXX)
PIDS=""
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT INT TERM

. bench/kbs-lib.sh
kbs_bench_keys
kbs_bench_start S "$BUILD" "$STORE"
URL=$URL_S
PID=$PID_S
echo "== cloister-kbs full handshakes (auth + attest + resource, JWE answer), $STORE store, $CLIENTS clients, ${SECS}s x $RUNS rounds, $(date -u '+%F %H:%M') UTC"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$LOAD" "$URL" bench/key/one "$CLIENTS" 2 "$PID" > /dev/null # warm-up: caches, page cache, arenas
r=1
while [ "$r" -le "$RUNS" ]; do
	"$LOAD" "$URL" bench/key/one "$CLIENTS" "$SECS" "$PID" > "$T/load.$r"
	openssl speed -seconds 2 ecdsap256 ecdhp256 2>/dev/null > "$T/speed.$r" || true
	openssl speed -seconds 1 -bytes 256 -evp aes-256-gcm 2>/dev/null > "$T/aes.$r" || true
	cut -d' ' -f1-3 /proc/loadavg > "$T/loadavg.$r"
	r=$((r + 1))
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$T" "$RUNS" <<'PY'
import re, statistics, sys
d, runs = sys.argv[1], int(sys.argv[2])
def grab(path, pat, group=1):
    m = re.search(pat, open(path).read(), re.M)
    return float(m.group(group)) if m else 0.0
rows = []
for r in range(1, runs + 1):
    sp, aes, ld = f"{d}/speed.{r}", f"{d}/aes.{r}", f"{d}/load.{r}"
    sign = grab(sp, r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([0-9.]+)")
    verify = grab(sp, r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+[0-9.]+\s+([0-9.]+)")
    ecdh = grab(sp, r"256 bits ecdh \(nistp256\)\s+\S+s\s+([0-9.]+)")
    aes_k = grab(aes, r"^(?:AES-256-GCM|aes-256-gcm)\s+([0-9.]+)k")
    cpu = grab(ld, r"server_cpu_us_per_handshake=([0-9.]+)")
    rate = grab(ld, r"rate=([0-9.]+)")
    user = grab(ld, r"server_user_us=([0-9.]+)")
    sys_ = grab(ld, r"server_sys_us=([0-9.]+)")
    if not (sign and verify and ecdh and cpu):
        print(f"round {r}: incomplete ({open(ld).read().strip()})")
        continue
    floor = 2e6 / sign + 1e6 / verify + 1e6 / ecdh + (256 / (aes_k * 1000) * 1e6 if aes_k else 0)
    la = open(f"{d}/loadavg.{r}").read().split()[0]
    rows.append((cpu / floor, cpu, floor, rate))
    print(f"round {r}: {rate:.0f} handshakes/s, server CPU {cpu:.1f} us/handshake "
          f"(user {user:.0f}, system {sys_:.0f}), floor {floor:.1f} us "
          f"(sign {sign:.0f}/s, verify {verify:.0f}/s, ECDH {ecdh:.0f}/s, AES-GCM {aes_k:.0f} kB/s), "
          f"ratio {cpu / floor:.2f}x, load {la}")
if rows:
    med = lambda i: statistics.median(x[i] for x in rows)
    rng = lambda i, f: f"{f(min(x[i] for x in rows))}-{f(max(x[i] for x in rows))}"
    print(f"median of {len(rows)}: server CPU {med(1):.0f} us ({rng(1, lambda v: f'{v:.0f}')}), "
          f"floor {med(2):.0f} us ({rng(2, lambda v: f'{v:.0f}')}), "
          f"ratio {med(0):.2f}x ({rng(0, lambda v: f'{v:.2f}')}), "
          f"{med(3):.0f} handshakes/s (goal: ratio <= 2.5x)")
PY
