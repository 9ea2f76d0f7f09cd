#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Faults under load on three replicas sharing one real database (PostgreSQL 15 by default,
# CLOISTER_TEST_STORE=Redis for Redis): three client loops run full handshakes and one admin
# loop writes resources while replica 2 is killed with SIGKILL and the database is restarted.
# Afterwards every admin write that answered 200 is in the database (read with psql /
# redis-cli), no request outlived its deadline, and replicas 1 and 3 serve again without being
# restarted. Bounded: about 12 s of load.
. "$(dirname "$0")/lib.sh"
export CLOISTER_TEST_STORE=${CLOISTER_TEST_STORE:-Postgres}
LOAD_S=${LOAD_S:-12}
DEADLINE_S=15 # every client call is cut at this; a cut call is a hang and fails the test

make_admin_key
for r in 1 2 3; do
    eval "P$r=$(free_port)"
    eval "write_config \"\$T/kbs$r.toml\" \"\$P$r\""
done
for r in 1 2 3; do
    start_kbs "$T/kbs$r.toml"
    eval "U$r=\$URL; K$r=\$KBS_PID"
done
head -c 32 /dev/urandom | base64 > "$T/secret"
"$CLI_BIN" kbs set-resource --url "$U1" --admin-key "$T/admin.key" --path default/key/one --file "$T/secret" \
    || fail "set-resource"
END=$(( $(date +%s) + LOAD_S ))

client() { # client N: handshakes, attest and resource on different replicas
    n=0
    while [ "$(date +%s)" -lt "$END" ]; do
        n=$((n + 1))
        case $(( (n + $1) % 3 )) in 0) a=$U1; b=$U3 ;; 1) a=$U2; b=$U1 ;; *) a=$U3; b=$U2 ;; esac
        set +e
        timeout "$DEADLINE_S" "$CLI_BIN" kbs get-resource --url "$b" --attest-url "$a" --path default/key/one \
            > "$T/c$1.out" 2>>"$T/c$1.err"
        rc=$?
        set -e
        echo "$(date +%s) $rc" >> "$T/c$1.log"
    done
}
admin() {
    n=0
    while [ "$(date +%s)" -lt "$END" ]; do
        n=$((n + 1))
        case $((n % 3)) in 0) u=$U1 ;; 1) u=$U2 ;; *) u=$U3 ;; esac
        echo "value-$n" > "$T/w$n"
        set +e
        timeout "$DEADLINE_S" "$CLI_BIN" kbs set-resource --url "$u" --admin-key "$T/admin.key" \
            --path "default/fault/w$n" --file "$T/w$n" 2>>"$T/admin.err"
        rc=$?
        set -e
        echo "$n $rc" >> "$T/admin.log"
        [ $rc = 0 ] && echo "$n" >> "$T/admin.ok"
    done
}
for c in 1 2 3; do client $c & eval "C$c=\$!"; done
admin & AD=$!

sleep 2
kill -9 "$K2"; wait "$K2" 2>/dev/null || true
ok "replica 2 killed with SIGKILL under load"
sleep 2
T_RESTART=$(date +%s)
if [ "$CLOISTER_TEST_STORE" = Postgres ]; then restart_postgres; else restart_redis; fi
ok "$CLOISTER_TEST_STORE restarted under load"
wait "$C1" "$C2" "$C3" "$AD" 2>/dev/null || true

# ---- nothing hung ----
if cat "$T"/c?.log "$T/admin.log" | awk '{print $2}' | grep -qx 124; then
    fail "a request was cut at ${DEADLINE_S}s (hung): $(grep -h ' 124$' "$T"/c?.log "$T/admin.log" | head -3)"
fi
total=$(cat "$T"/c?.log | wc -l); good=$(cat "$T"/c?.log | awk '$2 == 0' | wc -l)
ok "no request hung: $good of $total handshakes succeeded during the faults, the rest failed within ${DEADLINE_S}s"

# ---- every acknowledged admin write is in the database ----
[ -s "$T/admin.ok" ] || fail "no admin write succeeded at all"
nok=0
for n in $(cat "$T/admin.ok"); do
    if [ "$CLOISTER_TEST_STORE" = Postgres ]; then
        v=$(psql_q "SELECT convert_from(value, 'UTF8') FROM repository WHERE key = 'default/fault/w$n'")
    else
        v=$(redis-cli -p "$RD_PORT" --raw GET "repository:default/fault/w$n")
    fi
    [ "$v" = "value-$n" ] || fail "admin write w$n answered 200 but the database holds '$v'"
    nok=$((nok + 1))
done
ok "all $nok admin writes that answered 200 are in $CLOISTER_TEST_STORE ($(wc -l < "$T/admin.log") attempted)"

# ---- replicas 1 and 3 recovered without a restart ----
kill -0 "$K1" && kill -0 "$K3" || fail "a surviving replica died"
for u in "$U1" "$U3"; do
    tries=0
    until "$CLI_BIN" kbs get-resource --url "$u" --path default/key/one > "$T/after" 2>"$T/after.err"; do
        tries=$((tries + 1)); [ $tries -lt 20 ] || fail "$u did not recover: $(cat "$T/after.err")"; sleep 0.5
    done
    cmp -s "$T/secret" "$T/after" || fail "$u: secret after recovery differs"
done
late=$(cat "$T"/c?.log | awk -v t="$T_RESTART" '$1 > t + 1 && $2 == 0' | wc -l)
ok "replicas 1 and 3 serve full handshakes again, same processes ($late handshakes succeeded after the restart)"

# ---- a replacement replica joins and sees everything ----
start_kbs "$T/kbs2.toml"
last=$(tail -1 "$T/admin.ok")
"$CLI_BIN" kbs get-resource --url "$URL" --attest-url "$U1" --path "default/fault/w$last" > "$T/last" \
    || fail "restarted replica 2: fetch of the last acknowledged write"
cmp -s "$T/w$last" "$T/last" || fail "restarted replica 2 serves another value for w$last"
ok "replica 2, restarted, serves the last acknowledged write (w$last)"
echo "PASS"
