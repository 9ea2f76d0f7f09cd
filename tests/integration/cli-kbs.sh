#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `cloister kbs` against a real cloister-kbs: kbs-client's argument order and names, every
# exit status of docs/cli.md that a KBS can cause (each positive beside its tamper twin), the
# errors that say what to do (URL ending in /kbs/v0, http vs https), and escaped messages.
. "$(dirname "$0")/lib.sh"

CLI=$CLI_BIN
# an ES256 admin key, so that tests can mint their own (expired) admin tokens with jwt.py
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/admin.key" 2>/dev/null
openssl pkey -in "$T/admin.key" -pubout -out "$T/admin.pub" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.key" 2>/dev/null
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
start_kbs "$T/kbs.toml"
printf 'top secret\n' > "$T/secret"

# expect_rc WANT WHAT CMD...: runs CMD, checks its exit status; stderr in $T/err
expect_rc() {
    want=$1 what=$2
    shift 2
    set +e
    "$@" > "$T/out" 2> "$T/err"
    got=$?
    set -e
    [ "$got" = "$want" ] || { cat "$T/err"; fail "$what: exit $got, wanted $want"; }
    ok "$what => exit $got"
}

# ---- kbs-client's order and names ----
expect_rc 0 "kbs-client order: config --auth-private-key set-resource --resource-file" \
    "$CLI" kbs --url "$URL" config --auth-private-key "$T/admin.key" \
    set-resource --path default/cli/one --resource-file "$T/secret"
expect_rc 5 "kbs-client order with a key the KBS does not know" \
    "$CLI" kbs --url "$URL" config --auth-private-key "$T/other.key" \
    set-resource --path default/cli/two --resource-file "$T/secret"
expect_rc 0 "kbs-client order: get-resource prints base64" \
    "$CLI" kbs --url "$URL" get-resource --path default/cli/one
[ "$(cat "$T/out")" = "$(base64 -w0 < "$T/secret")" ] || fail "get-resource output is not the base64 secret"
ok "kbs-client get-resource output is the secret in base64"
expect_rc 0 "Cloister order: get-resource writes the raw bytes" \
    "$CLI" kbs get-resource --url "$URL" --path default/cli/one
cmp -s "$T/out" "$T/secret" || fail "Cloister-order get-resource is not the raw secret"
expect_rc 0 "kbs-client --url=URL form and attest" "$CLI" kbs --url="$URL" attest
grep -q '^ey' "$T/out" || fail "attest printed no token"
cat > "$T/allow.rego" <<'EOF'
package policy
default allow := true
EOF
expect_rc 0 "kbs-client set-resource-policy --policy-file" \
    "$CLI" kbs --url "$URL" config --auth-private-key "$T/admin.key" \
    set-resource-policy --policy-file "$T/allow.rego"
printf 'package policy\nallow if {\n' > "$T/broken.rego"
expect_rc 3 "a resource policy the KBS cannot parse is malformed input" \
    "$CLI" kbs --url "$URL" config --auth-private-key "$T/admin.key" \
    set-resource-policy --policy-file "$T/broken.rego"
expect_rc 0 "kbs-client set-attestation-policy --type rego --id" \
    "$CLI" kbs --url "$URL" config --auth-private-key "$T/admin.key" \
    set-attestation-policy --policy-file "$SRC/policies/attestation/default_cpu.rego" \
    --type rego --id default_cpu
expect_rc 0 "set-sample-reference-value NAME VALUE" \
    "$CLI" kbs --url "$URL" --auth-private-key "$T/admin.key" set-sample-reference-value svn 7
expect_rc 0 "get-reference-value reads it back" \
    "$CLI" kbs get-reference-value --url "$URL" --admin-key "$T/admin.key" --name svn
grep -q '"7"' "$T/out" || fail "reference value svn is not [\"7\"]: $(cat "$T/out")"
expect_rc 2 "set-sample-reference-value without an admin key" \
    "$CLI" kbs --url "$URL" set-sample-reference-value svn 8
expect_rc 2 "kbs-client --tee-key-file is refused by name" \
    "$CLI" kbs --url "$URL" get-resource --path default/cli/one --tee-key-file "$T/admin.key"
grep -q -- '--tee-key-file' "$T/err" || fail "the refusal does not name --tee-key-file"
expect_rc 2 "options and no command" "$CLI" kbs --url "$URL" config --auth-private-key "$T/admin.key"

# ---- exit statuses ----
expect_rc 6 "a resource the KBS does not hold is not found" \
    "$CLI" kbs get-resource --url "$URL" --path default/cli/missing
grep -q 'not found' "$T/err" || fail "no 'not found' in: $(cat "$T/err")"
expect_rc 6 "deleting a resource the KBS does not hold is not found" \
    "$CLI" kbs delete-resource --url "$URL" --admin-key "$T/admin.key" --path default/cli/missing
now=$(date +%s)
expired=$(python3 "$SRC/tests/integration/jwt.py" "$T/admin.key" '{"alg":"ES256","typ":"JWT"}' \
    "{\"sub\":\"admin\",\"iat\":$((now - 7200)),\"exp\":$((now - 3600))}")
fresh=$(python3 "$SRC/tests/integration/jwt.py" "$T/admin.key" '{"alg":"ES256","typ":"JWT"}' \
    "{\"sub\":\"admin\",\"iat\":$now,\"exp\":$((now + 300))}")
expect_rc 0 "an admin token in its lifetime" \
    "$CLI" kbs get-resource-policy --url "$URL" --token "$fresh"
expect_rc 9 "an admin token past its exp is expired" \
    "$CLI" kbs get-resource-policy --url "$URL" --token "$expired"
grep -q 'expired' "$T/err" || fail "no 'expired' in: $(cat "$T/err")"
forged=$(python3 "$SRC/tests/integration/jwt.py" "$T/other.key" '{"alg":"ES256","typ":"JWT"}' \
    "{\"sub\":\"admin\",\"iat\":$now,\"exp\":$((now + 300))}")
expect_rc 5 "an admin token signed by another key is denied" \
    "$CLI" kbs get-resource-policy --url "$URL" --token "$forged"
expect_rc 0 "get-resource under an allow policy" \
    "$CLI" kbs get-resource --url "$URL" --path default/cli/one --out "$T/got"
expect_rc 0 "set the deny-all policy" "$CLI" kbs set-resource-policy --url "$URL" \
    --admin-key "$T/admin.key" --file "$SRC/policies/resource/deny_all.rego"
expect_rc 5 "a policy denial is denied" \
    "$CLI" kbs get-resource --url "$URL" --path default/cli/one
expect_rc 2 "an unknown command is a usage error" "$CLI" kbs frobnicate --url "$URL"

# ---- errors that say what to do ----
expect_rc 2 "a URL ending in /kbs/v0" \
    "$CLI" kbs get-resource --url "$URL/kbs/v0/" --path default/cli/one
grep -q -- "--url $URL\$" "$T/err" || fail "the error does not give the URL to use: $(cat "$T/err")"
expect_rc 2 "a URL that is not http(s)" "$CLI" kbs attest --url "ftp://127.0.0.1:$PORT"
expect_rc 7 "https:// to a plain-HTTP KBS" \
    "$CLI" kbs attest --url "https://127.0.0.1:$PORT"
grep -q 'hint: .*plain HTTP.*http://' "$T/err" || fail "no plain-HTTP hint: $(cat "$T/err")"
dead=$(free_port)
expect_rc 7 "nothing listening" "$CLI" kbs attest --url "http://127.0.0.1:$dead"
grep -q 'hint: is cloister-kbs running' "$T/err" || fail "no listening hint: $(cat "$T/err")"

# an https KBS reached with http://
TPORT=$(free_port)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tls.key" \
    -out "$T/tls.crt" -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
write_config "$T/tls.toml" "$TPORT"
sed -i "s|^insecure_http = true|private_key = \"$T/tls.key\"\ncertificate = \"$T/tls.crt\"|" "$T/tls.toml"
"$KBS_BIN" -c "$T/tls.toml" >> "$T/kbs.log" 2>&1 &
PIDS="$PIDS $!"
i=0
until curl -fsS --cacert "$T/tls.crt" "https://127.0.0.1:$TPORT/healthz" > /dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "the https KBS did not come up"; sleep 0.1
done
expect_rc 0 "https KBS with its CA" \
    "$CLI" kbs attest --url "https://127.0.0.1:$TPORT" --cert-file "$T/tls.crt"
expect_rc 7 "http:// to an https KBS" "$CLI" kbs attest --url "http://127.0.0.1:$TPORT"
grep -q 'hint: .*https://' "$T/err" || fail "no https hint: $(cat "$T/err")"
expect_rc 7 "https KBS without its CA" "$CLI" kbs attest --url "https://127.0.0.1:$TPORT"
grep -q 'hint: .*--ca-file' "$T/err" || fail "no --ca-file hint: $(cat "$T/err")"

# ---- control bytes from the server are escaped ----
expect_rc 2 "a path with an escape sequence is refused by the client" \
    "$CLI" kbs get-resource --url "$URL" --path "$(printf 'default/cli/a\033[2Jb')"
if grep -q "$(printf '\033')" "$T/err"; then fail "an ESC byte reached the terminal"; fi
grep -q 'x1b' "$T/err" || fail "the ESC byte is not shown escaped: $(cat "$T/err")"
ok "control bytes in messages are escaped"
