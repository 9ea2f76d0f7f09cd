#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Three cloister-kbs replicas on one real database (PostgreSQL 15 by default,
# CLOISTER_TEST_STORE=Redis for Redis): one client's auth, attest and resource requests each go
# to a different replica; a token minted by one is accepted by the others; a resource policy set
# through one is enforced by all, and so are an attestation policy and a reference value; two
# replicas racing one challenge give one token; the tables
# and keys are trustee's (checked with psql / redis-cli).
. "$(dirname "$0")/lib.sh"
export CLOISTER_TEST_STORE=${CLOISTER_TEST_STORE:-Postgres}
need jose

make_admin_key
# (lib.sh's helpers use $i themselves: the replica number is $r)
for r in 1 2 3; do
    eval "P$r=$(free_port)"
    eval "write_config \"\$T/kbs$r.toml\" \"\$P$r\""
done
for r in 1 2 3; do
    start_kbs "$T/kbs$r.toml"
    eval "U$r=\$URL; K$r=\$KBS_PID"
done
ok "three replicas on one $CLOISTER_TEST_STORE"

# ---- trustee's layout, read with the database's own client ----
head -c 48 /dev/urandom | base64 > "$T/secret"
"$CLI_BIN" kbs set-resource --url "$U1" --admin-key "$T/admin.key" --path default/key/one --file "$T/secret" \
    || fail "set-resource through replica 1"
if [ "$CLOISTER_TEST_STORE" = Postgres ]; then
    got=$(psql_q "SELECT convert_from(value, 'UTF8') FROM repository WHERE key = 'default/key/one'")
    [ "$got" = "$(cat "$T/secret")" ] || fail "table repository does not hold the secret under its key"
    cols=$(psql_q "SELECT string_agg(column_name || ' ' || data_type, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = 'repository'")
    [ "$cols" = "key text,value bytea" ] || fail "repository table columns: $cols"
    ok "psql: table repository (key text, value bytea) holds the secret"
else
    got=$(redis-cli -p "$RD_PORT" --raw GET repository:default/key/one)
    [ "$got" = "$(cat "$T/secret")" ] || fail "redis key repository:default/key/one does not hold the secret"
    ok "redis-cli: key repository:default/key/one holds the secret"
fi

# ---- one handshake over three replicas (independent client: curl + python3 + jose) ----
jose jwk gen -i '{"kty":"EC","crv":"P-256"}' -o "$T/tee.jwk"
jose jwk pub -i "$T/tee.jwk" -o "$T/tee.pub.jwk"
auth() { # auth URL JAR: challenge in $T/chal.$2
    curl -sS -c "$T/$2" -o "$T/chal.$2" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d '{"version":"0.4.0","tee":"sample","extra-params":{}}' "$1/kbs/v0/auth"
}
evidence() { # evidence JAR OUT [NONCE-OVERRIDE]
    python3 - "$T/chal.$1" "$T/tee.pub.jwk" "$2" "${3:-}" <<'PY'
import base64, hashlib, json, sys
nonce = sys.argv[4] or json.load(open(sys.argv[1]))["nonce"]
jwk = json.load(open(sys.argv[2])); jwk = {k: jwk[k] for k in ("kty", "crv", "x", "y")}
jwk["alg"] = "ECDH-ES+A256KW"
rd = {"tee-pubkey": jwk, "nonce": nonce, "additional-evidence": ""}
canon = json.dumps(rd, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
ev = {"svn": "1", "report_data": base64.b64encode(hashlib.sha384(canon.encode()).digest()).decode()}
json.dump({"runtime-data": {"nonce": nonce, "tee-pubkey": jwk},
           "tee-evidence": {"primary_evidence": ev, "additional_evidence": ""}}, open(sys.argv[3], "w"))
PY
}
attest() { # attest URL JAR OUT: status
    curl -sS -b "$T/$2" -o "$3" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data @"$T/att.$2" "$1/kbs/v0/attest"
}

st=$(auth "$U1" jar1); expect_status 200 "$st" "auth on replica 1"
evidence jar1 "$T/att.jar1"
st=$(attest "$U2" jar1 "$T/tok1"); expect_status 200 "$st" "attest on replica 2"
URL=$U3; st=$(http GET /kbs/v0/resource/default/key/one -b "$T/jar1")
expect_status 200 "$st" "resource on replica 3"
jose jwe dec -i "$T/body" -k "$T/tee.jwk" -O "$T/got" || fail "jose could not open the JWE from replica 3"
cmp -s "$T/secret" "$T/got" || fail "secret from replica 3 differs"
ok "auth (1) → attest (2) → resource (3): jose opens the secret"

# tamper twin: a session id no replica issued
# (the first hex digit changed: to 0 when it is f, else to f — always a different id)
sed -e 's/\(kbs-session-id\t\)f/\1X/' -e 's/\(kbs-session-id\t\)[0-9a-e]/\1f/' -e 's/\(kbs-session-id\t\)X/\10/' "$T/jar1" > "$T/jarx"
cmp -s "$T/jar1" "$T/jarx" && fail "the tampered cookie jar equals the original"
cp "$T/att.jar1" "$T/att.jarx"
st=$(attest "$U3" jarx "$T/tokx")
[ "$st" = 401 ] || fail "attest with an unknown session id: status $st"
ok "attest with a session id no replica issued is refused"

# ---- a token minted by one replica is accepted by the others ----
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$T/tok1")
for u in "$U1" "$U3"; do
    URL=$u; st=$(http GET /kbs/v0/resource/default/key/one -H "Authorization: Bearer $TOKEN")
    expect_status 200 "$st" "replica-2 token as Bearer on $u"
done
"$CLI_BIN" kbs get-resource --url "$U3" --attest-url "$U1" --path default/key/one > "$T/got2" \
    || fail "passport: token from replica 1, resource from replica 3"
cmp -s "$T/secret" "$T/got2" || fail "passport secret differs"
ok "cloister kbs get-resource: token from replica 1 presented to replica 3"
# tamper twin: the same token with its signature altered
BAD=$(python3 -c 'import sys; t=sys.argv[1]; s=t[-1]; print(t[:-5] + ("AAAA" if t[-5:-1] != "AAAA" else "BBBB") + s)' "$TOKEN")
URL=$U2; st=$(http GET /kbs/v0/resource/default/key/one -H "Authorization: Bearer $BAD")
[ "$st" = 401 ] || fail "altered token accepted: $st"
ok "a token with an altered signature is refused"

# ---- a resource policy set through one replica is enforced by all ----
printf 'package policy\ndefault allow := false\n' > "$T/deny.rego"
"$CLI_BIN" kbs set-resource-policy --url "$U2" --admin-key "$T/admin.key" --file "$T/deny.rego" \
    || fail "set-resource-policy through replica 2"
for u in "$U1" "$U2" "$U3"; do
    URL=$u; st=$(http GET /kbs/v0/resource/default/key/one -H "Authorization: Bearer $TOKEN")
    [ "$st" = 401 ] || fail "deny-all policy (set on replica 2) not enforced by $u: $st"
done
ok "deny-all policy set on replica 2 is enforced by replicas 1, 2 and 3 on the next request"
printf 'package policy\ndefault allow := true\n' > "$T/allow.rego"
"$CLI_BIN" kbs set-resource-policy --url "$U3" --admin-key "$T/admin.key" --file "$T/allow.rego" \
    || fail "set-resource-policy through replica 3"
URL=$U1; st=$(http GET /kbs/v0/resource/default/key/one -H "Authorization: Bearer $TOKEN")
expect_status 200 "$st" "allow policy set on replica 3, request on replica 1"

# ---- an attestation policy and a reference value set through one replica are enforced by
# all on their next request (the stored version is read per attestation, no cache to wait for)
vector() { # vector AUTH-URL ATTEST-URL JAR: prints "<instance-identity> <hardware>" of cpu0
    st=$(auth "$1" "$3"); [ "$st" = 200 ] || fail "auth on $1: $st"
    evidence "$3" "$T/att.$3"
    st=$(attest "$2" "$3" "$T/vec.$3"); [ "$st" = 200 ] || fail "attest on $2: $st $(cat "$T/vec.$3")"
    python3 - "$T/vec.$3" <<'PY'
import base64, json, sys
t = json.load(open(sys.argv[1]))["token"].split(".")[1]; t += "=" * (-len(t) % 4)
v = json.loads(base64.urlsafe_b64decode(t))["submods"]["cpu0"]["ear.trustworthiness-vector"]
print(v["instance-identity"], v["hardware"])
PY
}
att_policy() { # att_policy FILE IDENTITY: hardware 2 only while reference value replica_marker holds "m1"
    cat > "$1" <<REGO
package policy
import rego.v1
default hardware := 97
hardware := 2 if {
    rv := query_reference_value("replica_marker")
    rv != null
    "m1" in rv
}
trust_claims := {"instance-identity": $2, "hardware": hardware}
REGO
}
v=$(vector "$U1" "$U2" jarv0)
case "$v" in "17 "*) fail "identity 17 before any upload: $v" ;; esac
ok "replica 2 appraised with the built-in attestation policy (now cached there): $v"
att_policy "$T/att17.rego" 17
"$CLI_BIN" kbs set-attestation-policy --url "$U1" --admin-key "$T/admin.key" --file "$T/att17.rego" --id default_cpu \
    || fail "set-attestation-policy through replica 1"
v=$(vector "$U3" "$U2" jarv1)
[ "$v" = "17 97" ] || fail "attestation policy set on replica 1 not applied by replica 2 (vector $v)"
ok "attestation policy set through replica 1 applied by replica 2 on its next attestation"
"$CLI_BIN" kbs set-reference-value --url "$U1" --admin-key "$T/admin.key" --name replica_marker --value m1 \
    || fail "set-reference-value through replica 1"
v=$(vector "$U1" "$U2" jarv2)
[ "$v" = "17 2" ] || fail "reference value set on replica 1 not used by replica 2 (vector $v)"
v=$(vector "$U2" "$U3" jarv3)
[ "$v" = "17 2" ] || fail "reference value set on replica 1 not used by replica 3 (vector $v)"
ok "reference value set through replica 1 used by replicas 2 and 3 on their next attestation"
# tamper twins: the old reference value and the old policy no longer apply anywhere
"$CLI_BIN" kbs set-reference-value --url "$U3" --admin-key "$T/admin.key" --name replica_marker --value m2 \
    || fail "set-reference-value through replica 3"
v=$(vector "$U3" "$U2" jarv4)
[ "$v" = "17 97" ] || fail "replaced reference value still honoured by replica 2 (vector $v)"
att_policy "$T/att18.rego" 18
"$CLI_BIN" kbs set-attestation-policy --url "$U3" --admin-key "$T/admin.key" --file "$T/att18.rego" --id default_cpu \
    || fail "set-attestation-policy through replica 3"
for u in "$U1" "$U2"; do
    v=$(vector "$U3" "$u" "jarv5${u##*:}")
    [ "$v" = "18 97" ] || fail "replaced attestation policy still applied by $u (vector $v)"
done
ok "tamper twins: a replaced reference value and a replaced attestation policy apply nowhere"
# written behind every replica's back, straight into trustee's table / key: still enforced
att_policy "$T/att19.rego" 19
if [ "$CLOISTER_TEST_STORE" = Postgres ]; then
    psql_q "UPDATE attestation_service_policy SET value = convert_to('$(sed "s/'/''/g" "$T/att19.rego")', 'UTF8') WHERE key = 'default_cpu.rego'" > /dev/null \
        || fail "psql update of the attestation policy"
else
    redis-cli -p "$RD_PORT" -x SET attestation_service_policy:default_cpu.rego < "$T/att19.rego" > /dev/null \
        || fail "redis-cli SET of the attestation policy"
fi
v=$(vector "$U1" "$U2" jarv6)
[ "$v" = "19 97" ] || fail "policy written with the database's own client not applied by replica 2 (vector $v)"
ok "a policy written straight into the database is applied on the next attestation"

# ---- a challenge is used once, across replicas ----
for round in 1 2 3 4 5; do
    st=$(auth "$U1" jarr); [ "$st" = 200 ] || fail "auth for race $round: $st"
    evidence jarr "$T/att.jarr"
    attest "$U2" jarr "$T/race.a" > "$T/race.sa" &
    pa=$!
    attest "$U3" jarr "$T/race.b" > "$T/race.sb" &
    pb=$!
    wait $pa; wait $pb
    [ "$(cat "$T/race.sa")" = 200 ] && [ "$(cat "$T/race.sb")" = 200 ] \
        || fail "race $round: statuses $(cat "$T/race.sa") $(cat "$T/race.sb")"
    cmp -s "$T/race.a" "$T/race.b" || fail "race $round: two replicas returned two different tokens"
done
ok "five races of one challenge on two replicas: both answers carry the one token"
st=$(attest "$U1" jarr "$T/race.c"); expect_status 200 "$st" "replayed attest on a third replica"
cmp -s "$T/race.a" "$T/race.c" || fail "replayed attest minted a new token"
ok "a replayed attest returns the stored token, mints none"
# tamper twin: a fresh session attested with another session's nonce
st=$(auth "$U2" jarn); [ "$st" = 200 ] || fail "auth: $st"
OLD=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nonce"])' "$T/chal.jarr")
evidence jarn "$T/att.jarn" "$OLD"
st=$(attest "$U3" jarn "$T/tokn")
[ "$st" = 401 ] || fail "attest with a replayed nonce: $st"
grep -q 'nonce does not match' "$T/tokn" || fail "replayed nonce refusal does not say why: $(cat "$T/tokn")"
ok "a nonce replayed into another session is refused"

# ---- sessions are in kbs_protocol_session with their expiry ----
if [ "$CLOISTER_TEST_STORE" = Postgres ]; then
    n=$(psql_q "SELECT count(*) FROM kbs_protocol_session")
    [ "$n" -ge 7 ] || fail "kbs_protocol_session holds $n sessions"
    ok "psql: $n sessions in table kbs_protocol_session"
else
    ttl=$(redis-cli -p "$RD_PORT" --scan --pattern 'kbs_protocol_session:*' | head -1 | xargs redis-cli -p "$RD_PORT" TTL)
    [ "$ttl" -gt 0 ] || fail "session key has no expiry (TTL $ttl)"
    ok "redis-cli: session keys kbs_protocol_session:<id> expire (TTL $ttl s)"
fi
# the store's own cases (compare-and-set races, expiring values, purge) on this database
if [ "$CLOISTER_TEST_STORE" = Postgres ] && [ -x "$BUILD/tests/unit/test_store_shared" ]; then
    CLOISTER_TEST_PG_URL="postgresql://cloister:$PG_PASS@127.0.0.1:$PG_PORT/kbsdb" \
        "$BUILD/tests/unit/test_store_shared" > "$T/unit.log" 2>&1 || { cat "$T/unit.log"; fail "test_store_shared on PostgreSQL"; }
    grep -q 'Postgres: not available' "$T/unit.log" && fail "test_store_shared skipped Postgres"
    ok "test_store_shared: compare-and-set race, expiring values and one-statement purge on PostgreSQL (URL form)"
fi
echo "PASS"
