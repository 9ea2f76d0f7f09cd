#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Rego policies in the KBS: resource policies (trustee's samples written for Cloister under
# policies/resource/) and attestation policies, uploaded through the admin API; a malformed
# upload is refused with its position and the old policy stays in force.
. "$(dirname "$0")/lib.sh"

make_admin_key
PORT=$(free_port)
write_config "$T/kbs.toml" "$PORT"
start_kbs "$T/kbs.toml"
A="--url $URL --admin-key $T/admin.key"
P="$SRC/policies"
printf 'v' > "$T/v"
"$CLI_BIN" kbs set-resource $A --path r/k/v --file "$T/v" || fail "set-resource"
get() { "$CLI_BIN" kbs get-resource --url "$URL" --path r/k/v > /dev/null 2> "$T/err"; }

get || fail "default policy + allow_sample_tee_insecure releases to the sample TEE"
ok "built-in default resource policy releases (sample allowed by the switch)"

"$CLI_BIN" kbs set-resource-policy $A --file "$P/resource/deny_all.rego" || fail "upload deny_all"
if get; then fail "deny_all released"; fi
grep -q PolicyDeny "$T/err" || fail "denial is not PolicyDeny: $(cat "$T/err")"
ok "deny_all.rego denies"

# without reference values the sample appraisal is contraindicated
"$CLI_BIN" kbs set-resource-policy $A --file "$P/resource/not_contraindicated.rego" || fail "upload not_contraindicated"
if get; then fail "released to a contraindicated appraisal"; fi
ok "not_contraindicated.rego denies a contraindicated submod"
"$CLI_BIN" kbs set-resource-policy $A --file "$P/resource/affirming.rego" || fail "upload affirming"
if get; then fail "affirming released without reference values"; fi
for rv in "launch_digest abcde" "svn 1"; do
    set -- $rv; "$CLI_BIN" kbs set-reference-value $A --name "$1" --value "$2" || fail "rv $1"
done
"$CLI_BIN" kbs set-reference-value $A --name major_version --value 1 --as-integer --single || fail "rv"
"$CLI_BIN" kbs set-reference-value $A --name minimum_minor_version --value 4 --as-integer --single || fail "rv"
get || fail "affirming.rego with matching reference values: $(cat "$T/err")"
ok "affirming.rego releases once the appraisal is affirming"

# malformed upload: refused with a position, old policy still active
printf 'package policy\n\nallow if {\n' > "$T/bad.rego"
if "$CLI_BIN" kbs set-resource-policy $A --file "$T/bad.rego" 2> "$T/err"; then fail "malformed policy accepted"; fi
grep -q 'rego_parse_error' "$T/err" || fail "no rego_parse_error: $(cat "$T/err")"
grep -Eq 'resource-policy.rego:[0-9]+:[0-9]+' "$T/err" || fail "parse error without position: $(cat "$T/err")"
get || fail "old policy lost after a refused upload"
ok "malformed resource policy refused with its position; the old one stays"

# an older trustee-style policy in Rego v0 syntax is accepted (with a warning)
printf 'package policy\n\ndefault allow = false\n\nallow {\n    data.plugin == "resource"\n}\n' > "$T/v0.rego"
"$CLI_BIN" kbs set-resource-policy $A --file "$T/v0.rego" || fail "Rego v0 policy refused"
grep -q 'parsed as Rego v0' "$T/kbs.log" || fail "no warning for a v0 policy"
get || fail "v0 allow policy denied"
ok "a Rego v0 resource policy (older trustee samples) is accepted with a warning"

# a policy that reads the request data: only repository "r", only tag "v", query flag
cat > "$T/paths.rego" <<'REGO'
package policy
import rego.v1
default allow := false
allow if {
    data.plugin == "resource"
    data["resource-path"][0] == "r"
    data["resource-path"][2] == "v"
}
REGO
"$CLI_BIN" kbs set-resource-policy $A --file "$T/paths.rego" || fail "upload paths policy"
printf 'w' > "$T/w"
"$CLI_BIN" kbs set-resource $A --path r/k/w --file "$T/w" || fail "set r/k/w"
get || fail "paths policy denied r/k/v"
if "$CLI_BIN" kbs get-resource --url "$URL" --path r/k/w > /dev/null 2>&1; then fail "paths policy released r/k/w"; fi
ok "data[\"resource-path\"] reaches the policy"

# init-data pinned by the resource policy: the token carries the digest of the exact bytes
printf 'version = "0.1.0"\nalgorithm = "sha384"\n\n[data]\n"aa.toml" = "[token_configs]"\n' > "$T/init-a.toml"
printf 'version = "0.1.0"\nalgorithm = "sha384"\n\n[data]\n"aa.toml" = "[token_configs] "\n' > "$T/init-b.toml"
DIGEST=$(python3 -c 'import base64,hashlib,sys; print(base64.b64encode(hashlib.sha384(open(sys.argv[1],"rb").read()).digest()).decode())' "$T/init-a.toml")
cat > "$T/pin.rego" <<REGO
package policy
import rego.v1
default allow := false
allow if {
    data.plugin == "resource"
    input.submods.cpu0["ear.veraison.annotated-evidence"].init_data == "$DIGEST"
}
REGO
"$CLI_BIN" kbs set-resource-policy $A --file "$T/pin.rego" || fail "upload init-data pinning policy"
"$CLI_BIN" kbs get-resource --url "$URL" --path r/k/v --init-data "$T/init-a.toml" > /dev/null || fail "pinned init-data refused"
if "$CLI_BIN" kbs get-resource --url "$URL" --path r/k/v --init-data "$T/init-b.toml" > /dev/null 2>&1; then
    fail "a different init-data (one byte) was released to"
fi
if "$CLI_BIN" kbs get-resource --url "$URL" --path r/k/v > /dev/null 2>&1; then fail "no init-data was released to"; fi
ok "a policy pinning the init-data digest releases to it and refuses a one-byte change or none"

# attestation policy: a custom default_cpu that recognises everything
"$CLI_BIN" kbs set-resource-policy $A --file "$P/resource/affirming.rego" || fail "affirming again"
cat > "$T/att.rego" <<'REGO'
package policy
import rego.v1
trust_claims := {"executables": 2, "hardware": 2, "configuration": 2}
REGO
"$CLI_BIN" kbs set-attestation-policy $A --file "$T/att.rego" --id default_cpu || fail "upload attestation policy"
"$CLI_BIN" kbs attest --url "$URL" > "$T/tok" || fail "attest with the custom policy"
python3 - "$T/tok" <<'PY' || fail "custom attestation policy not applied"
import base64, json, sys
p = open(sys.argv[1]).read().split(".")[1]; p += "=" * (-len(p) % 4)
c = json.loads(base64.urlsafe_b64decode(p))["submods"]["cpu0"]
assert c["ear.trustworthiness-vector"]["hardware"] == 2 and c["ear.trustworthiness-vector"]["file-system"] == 0, c
assert c["ear.status"] == "affirming"
PY
ok "uploaded attestation policy default_cpu is applied"
printf 'package policy\ntrust_claims := {"bogus": 1}\n' > "$T/att-bad.rego"
"$CLI_BIN" kbs set-attestation-policy $A --file "$T/att-bad.rego" --id default_cpu || fail "upload att-bad (it compiles)"
if "$CLI_BIN" kbs attest --url "$URL" > /dev/null 2> "$T/err"; then fail "token issued with a non-AR4SI claim"; fi
grep -q "stage 'policy'" "$T/err" || fail "bad trust claim error does not name the policy stage: $(cat "$T/err")"
ok "a policy emitting a non-AR4SI claim fails attestation at stage 'policy'"
printf 'package policy\ntrust_claims := {\n' > "$T/att-bad2.rego"
if "$CLI_BIN" kbs set-attestation-policy $A --file "$T/att-bad2.rego" --id default_cpu 2> "$T/err"; then fail "malformed attestation policy accepted"; fi
grep -q 'rego_parse_error' "$T/err" || fail "no rego_parse_error: $(cat "$T/err")"
ok "malformed attestation policy refused"
# restart: uploaded policies are persistent
stop_kbs
start_kbs "$T/kbs.toml"
if "$CLI_BIN" kbs attest --url "$URL" > /dev/null 2>&1; then fail "stored attestation policy lost on restart"; fi
printf '%s' "$(cat "$T/att.rego")" > "$T/att2.rego"
"$CLI_BIN" kbs set-attestation-policy $A --file "$T/att2.rego" --id default_cpu || fail "re-upload"
get || fail "stored affirming resource policy + good attestation policy after restart"
ok "policies persist across restarts"
echo PASS
