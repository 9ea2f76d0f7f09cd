#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Admin API and configuration switches: reference values (register, read, typed values,
# appraisal reflected in the EAR trust vector), resource set/delete, policy ids, the admin
# API closed without personas, and the sample TEE refused unless allow_sample_tee_insecure.
. "$(dirname "$0")/lib.sh"

make_admin_key
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$T/admin-ec.key"
openssl pkey -in "$T/admin-ec.key" -pubout -out "$T/admin-ec.pub"
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT" "
[[admin.personas]]
id = \"ec-admin\"
public_key_path = \"$T/admin-ec.pub\""
start_kbs "$T/kbs.toml"
printf ec > "$T/ec"
"$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin-ec.key" --path ec/admin/ok --file "$T/ec" \
    || fail "admin call with an ES256 token of an EC persona"
grep -q "admin 'ec-admin'" "$T/kbs.log" || fail "the EC persona is not named in the log"
ok "EC (ES256) admin persona accepted and named in the log"
st=$(http GET /.well-known/jwks.json); expect_status 200 "$st" "JWKS of the token key"
python3 -c 'import json,sys; k=json.load(open(sys.argv[1]))["keys"][0]; assert k["kty"]=="EC" and k["crv"]=="P-256" and k["alg"]=="ES256"' "$T/body" \
    || fail "JWKS shape"
A="--url $URL --admin-key $T/admin.key"

# Token appraisal without reference values: contraindicated (hardware not recognised)
"$CLI_BIN" kbs attest --url "$URL" > "$T/tok1" || fail "attest"
status_of() { python3 -c 'import sys,json,base64; p=open(sys.argv[1]).read().split(".")[1]; p+="="*(-len(p)%4); c=json.loads(base64.urlsafe_b64decode(p))["submods"]["cpu0"]; print(c["ear.status"], c["ear.trustworthiness-vector"]["executables"], c["ear.trustworthiness-vector"]["hardware"], c["ear.trustworthiness-vector"]["configuration"])' "$1"; }
[ "$(status_of "$T/tok1")" = "contraindicated 33 97 2" ] || fail "appraisal without RVs: $(status_of "$T/tok1")"
ok "no reference values: executables 33, hardware 97 → contraindicated"

"$CLI_BIN" kbs set-reference-value $A --name launch_digest --value abcde || fail "rv launch_digest"
"$CLI_BIN" kbs set-reference-value $A --name svn --value 1 || fail "rv svn"
"$CLI_BIN" kbs set-reference-value $A --name major_version --value 1 --as-integer --single || fail "rv major"
"$CLI_BIN" kbs set-reference-value $A --name minimum_minor_version --value 4 --as-integer --single || fail "rv minor"
[ "$("$CLI_BIN" kbs get-reference-value $A --name launch_digest)" = '["abcde"]' ] || fail "get-reference-value"
ok "reference values registered and read back"
"$CLI_BIN" kbs attest --url "$URL" > "$T/tok2" || fail "attest 2"
[ "$(status_of "$T/tok2")" = "affirming 3 2 2" ] || fail "appraisal with RVs: $(status_of "$T/tok2")"
ok "matching reference values → affirming (3, 2, 2)"
"$CLI_BIN" kbs set-reference-value $A --name minimum_minor_version --value 5 --as-integer --single || fail "rv minor 5"
"$CLI_BIN" kbs attest --url "$URL" > "$T/tok3" || fail "attest 3"
[ "$(status_of "$T/tok3")" = "contraindicated 3 97 2" ] || fail "appraisal with a wrong RV: $(status_of "$T/tok3")"
ok "a reference value the claims do not meet → hardware 97"
# expired reference values never match: the store record is rewritten with a past expiry
f="$T/store/reference_value/launch_digest"
[ -f "$f" ] || fail "reference value file not where docs/kbs.md says ($f)"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r["expiration"]="2020-01-01T00:00:00Z"; json.dump(r,open(sys.argv[1],"w"))' "$f"
if "$CLI_BIN" kbs get-reference-value $A --name launch_digest > /dev/null 2>&1; then fail "expired reference value returned"; fi
"$CLI_BIN" kbs attest --url "$URL" > "$T/tok4" || fail "attest 4"
[ "$(status_of "$T/tok4" | cut -d' ' -f2)" = 33 ] || fail "expired RV still matched"
ok "an expired reference value is not returned and does not match"

# resources: set, overwrite, delete, delete again
printf one > "$T/r1"; printf two > "$T/r2"
"$CLI_BIN" kbs set-resource $A --path a/b/c --file "$T/r1" || fail "set"
"$CLI_BIN" kbs set-resource $A --path a/b/c --file "$T/r2" || fail "overwrite"
[ "$("$CLI_BIN" kbs get-resource --url "$URL" --path a/b/c)" = two ] || fail "overwrite not visible"
"$CLI_BIN" kbs delete-resource $A --path a/b/c || fail "delete"
if "$CLI_BIN" kbs delete-resource $A --path a/b/c 2>/dev/null; then fail "second delete succeeded"; fi
if "$CLI_BIN" kbs get-resource --url "$URL" --path a/b/c >/dev/null 2>&1; then fail "deleted resource released"; fi
ok "resource set / overwrite / delete"
[ "$("$CLI_BIN" kbs get-resource-policy $A)" = '["resource-policy"]' ] || fail "get-resource-policy ids"
ok "GET resource-policy returns the policy ids"
stop_kbs

# admin API closed when no persona is configured
PORT=$(free_port)
write_config "$T/closed.toml" "$PORT"
python3 - "$T/closed.toml" <<'PY'
import sys
t = open(sys.argv[1]).read()
t = t.replace('[[admin.personas]]\nid = "admin"\n', '').replace('public_key_path = "%s"\n' % (sys.argv[1].rsplit("/", 1)[0] + "/admin.pub"), '')
open(sys.argv[1], "w").write(t)
PY
grep -q personas "$T/closed.toml" && fail "test setup: persona still present"
start_kbs "$T/closed.toml"
if "$CLI_BIN" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path a/b/c --file "$T/r1" 2>"$T/err"; then fail "admin call accepted without personas"; fi
grep -q 'disabled' "$T/err" || fail "closed admin API error lacks detail: $(cat "$T/err")"
ok "admin API denies everything when no persona is configured"
stop_kbs

# the sample TEE is refused without allow_sample_tee_insecure
PORT=$(free_port)
write_config "$T/nosample.toml" "$PORT"
sed -i '/allow_sample_tee_insecure/d' "$T/nosample.toml"
start_kbs "$T/nosample.toml"
if "$CLI_BIN" kbs attest --url "$URL" > /dev/null 2> "$T/err"; then fail "sample TEE accepted without the switch"; fi
grep -q 'allow_sample_tee_insecure' "$T/err" || fail "refusal does not name the switch: $(cat "$T/err")"
ok "sample TEE refused unless allow_sample_tee_insecure"
stop_kbs

# configuration errors name the key
printf '[http_server]\nsockets = "127.0.0.1:1"\ninsecure_http = true\n' > "$T/bad.toml"
if "$KBS_BIN" -c "$T/bad.toml" 2> "$T/err"; then fail "bad config accepted"; fi
grep -q 'http_server.sockets' "$T/err" || fail "config error does not name the key: $(cat "$T/err")"
printf '[http_server]\ninsecure_http = tru\n' > "$T/bad.toml"
if "$KBS_BIN" -c "$T/bad.toml" 2> "$T/err"; then fail "bad TOML accepted"; fi
grep -q 'line 2' "$T/err" || fail "TOML error does not name the line: $(cat "$T/err")"
ok "configuration errors name the key or the line"
"$KBS_BIN" --help | grep -q 'config-file' || fail "--help"
"$CLI_BIN" kbs --help | grep -q 'get-resource' || fail "cloister kbs --help"
echo PASS
