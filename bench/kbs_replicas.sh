#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Full RCAR handshakes (auth + attest + resource) against 1, 2 and 3 cloister-kbs replicas on one
# PostgreSQL 15 (started here, tests/integration/store-lib.sh), and the same load on LocalFs for
# comparison. Each replica gets BENCH_CLIENTS clients of bench/kbs_load; the rate is the sum,
# p99 the worst replica's, server CPU per handshake the replicas' CPU over all handshakes, and
# database CPU per handshake the PostgreSQL processes' CPU (utime + stime) over all handshakes.
# Usage: bench/kbs_replicas.sh [BUILD]   (docs/benchmarks.md records the figures)
set -eu
BUILD=$(cd "${1:-build}" && pwd)
CLIENTS=${BENCH_CLIENTS:-2}
SECONDS_=${BENCH_SECONDS:-8}
cd "$(dirname "$0")/.."
CLOISTER_BUILD=$BUILD CLOISTER_SRC=$(pwd)
export CLOISTER_BUILD CLOISTER_SRC
. tests/integration/lib.sh
. tests/integration/store-lib.sh
LOAD=$BUILD/bench/kbs_load
make_admin_key

pg_cpu_ticks() { # sum of utime + stime of every postgres process
    for p in $(pgrep -u postgres -f "$PGD" 2>/dev/null; pgrep -u postgres postgres 2>/dev/null); do
        awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null
    done | sort -u | awk '{s += $1} END {print s + 0}'
}

run() { # run LABEL N: N replicas on $STORE_TOML; prints one line
    label=$1; n=$2; urls=""; pids=""
    for r in $(seq 1 "$n"); do
        p=$(free_port)
        write_config "$T/b$label$r.toml" "$p"
        sed -i 's/^insecure_http = true/insecure_http = true\nworker_count = 2/' "$T/b$label$r.toml"
        sed -i 's/^allow_sample_tee_insecure = true/allow_sample_tee_insecure = true\nmax_sessions = 1000000/' "$T/b$label$r.toml"
        start_kbs "$T/b$label$r.toml"
        urls="$urls $URL"; pids="$pids $KBS_PID"
    done
    first=$(echo "$urls" | awk '{print $1}')
    head -c 32 /dev/urandom > "$T/secret"
    "$CLI_BIN" kbs set-resource --url "$first" --admin-key "$T/admin.key" --path bench/key/one --file "$T/secret"
    db0=$( [ "$label" = pg ] && pg_cpu_ticks || echo 0)
    i=0
    for u in $urls; do
        i=$((i + 1)); pid=$(echo "$pids" | awk -v k="$i" '{print $k}')
        "$LOAD" "$u" bench/key/one "$CLIENTS" "$SECONDS_" "$pid" > "$T/load.$label.$n.$i" &
    done
    wait_loads=$(jobs -p | tr '\n' ' ')
    sleep $((SECONDS_ + 1)); for j in $wait_loads; do case " $PIDS " in *" $j "*) ;; *) wait "$j" 2>/dev/null || true ;; esac; done
    db1=$( [ "$label" = pg ] && pg_cpu_ticks || echo 0)
    python3 - "$label" "$n" "$db0" "$db1" "$(getconf CLK_TCK)" "$T"/load."$label"."$n".* <<'PY'
import re, sys
label, n, db0, db1, hz = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
hs = rate = cpu = 0.0; p99 = 0.0; errs = 0
for f in sys.argv[6:]:
    t = open(f).read()
    g = lambda k: float(re.search(k + r"=([0-9.]+)", t).group(1))
    h = g("handshakes"); hs += h; rate += g("rate"); p99 = max(p99, g("p99_ms")); errs += int(g("errors"))
    cpu += g("server_cpu_us_per_handshake") * h
db_us = (db1 - db0) / hz * 1e6 / hs if hs and label == "pg" else 0
print(f"{'PostgreSQL' if label == 'pg' else 'LocalFs'} replicas={n} handshakes/s={rate:.1f} p99_ms={p99:.1f} "
      f"errors={errs} server_cpu_us_per_handshake={cpu / hs if hs else 0:.0f} db_cpu_us_per_handshake={db_us:.0f}")
PY
    for p in $pids; do kill "$p"; wait "$p" 2>/dev/null || true; done
}

echo "== cloister-kbs replicas on one PostgreSQL 15, $CLIENTS clients per replica, ${SECONDS_}s, $(date -u +%F), $(nproc) cores"
start_store Postgres
for n in 1 2 3; do run pg "$n"; done
unset CLOISTER_TEST_STORE
STORE_TOML=""
run fs 1
