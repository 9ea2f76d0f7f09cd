#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# trustee's current admin configuration: authorization_mode = "AuthenticatedAuthorization"
# with [admin.authentication.bearer_jwt] identity_providers (issuer, audience, public key) and
# [admin.authorization.regex_acl] per role. Tokens are minted independently with openssl
# (tests/integration/jwt.py). Positive: an admin token uploads a resource; a "policy" role may
# set the resource policy and nothing else. Twins: wrong issuer, wrong audience, no role,
# expired, another key, a flipped signature byte, a role without an ACL — all 401, the store
# untouched.
. "$(dirname "$0")/lib.sh"

openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$T/idp.key" 2>/dev/null
openssl pkey -in "$T/idp.key" -pubout -out "$T/idp.pub" 2>/dev/null
openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.key" 2>/dev/null
PORT=$(free_port)
cat > "$T/kbs.toml" <<CFG
[http_server]
sockets = ["127.0.0.1:$PORT"]
insecure_http = true

[admin]
authorization_mode = "AuthenticatedAuthorization"

[admin.authentication.bearer_jwt]
identity_providers = [
    { issuer = "issuer", audience = "kbs", public_key_uri = "file://$T/idp.pub" },
]

[admin.authorization.regex_acl]
acls = [
    { role = "admin", allowed_endpoints = "^/kbs/.+\$" },
    { role = "policy", allowed_endpoints = "^/kbs/v0/resource-policy\$" },
]

[attestation_service]
type = "coco_as_builtin"
allow_sample_tee_insecure = true

[storage_backend]
storage_type = "LocalFs"

[storage_backend.backends.local_fs]
dir_path = "$T/store"

[[plugins]]
name = "resource"
storage_backend_type = "kvstorage"
CFG
"$KBS_BIN" -c "$T/kbs.toml" --check > /dev/null 2> "$T/err" || fail "--check: $(cat "$T/err")"
start_kbs "$T/kbs.toml"
now=$(date +%s)
# mint KEY CLAIMS_JSON
mint() { python3 "$SRC/tests/integration/jwt.py" "$1" '{"alg":"ES256","typ":"JWT"}' "$2"; }
claims() { # claims ISS AUD ROLE EXP
    printf '{"iss":"%s","aud":"%s","role":"%s","iat":%s,"exp":%s}' "$1" "$2" "$3" "$now" "$4"
}
put() { http POST "/kbs/v0/resource/$1" --data-binary "$2" -H "Authorization: Bearer $3"; }

admin=$(mint "$T/idp.key" "$(claims issuer kbs admin $((now + 300)))")
expect_status 200 "$(put a/b/c one "$admin")" "admin role token from the identity provider uploads a resource"
"$CLI_BIN" kbs get-resource --url "$URL" --path a/b/c > "$T/got" || fail "get-resource"
[ "$(cat "$T/got")" = one ] || fail "uploaded secret differs"
ok "the uploaded secret is released"
grep -q "admin role 'admin': POST /kbs/v0/resource/a/b/c" "$T/kbs.log" || fail "role not logged"

pol=$(mint "$T/idp.key" "$(claims issuer kbs policy $((now + 300)))")
b64=$(base64 -w0 < "$SRC/policies/resource/allow_all.rego" | tr '+/' '-_' | tr -d '=')
expect_status 200 "$(http POST /kbs/v0/resource-policy -d "{\"policy\":\"$b64\"}" -H "Authorization: Bearer $pol")" \
    "policy role sets the resource policy (its ACL matches)"
expect_status 401 "$(put a/b/c two "$pol")" "policy role refused on /kbs/v0/resource (no ACL entry matches)"
grep -q "role 'policy' is not allowed" "$T/body" || fail "ACL refusal not explained: $(cat "$T/body")"

expect_status 401 "$(put a/b/c two "$(mint "$T/idp.key" "$(claims other kbs admin $((now + 300)))")")" "wrong issuer"
expect_status 401 "$(put a/b/c two "$(mint "$T/idp.key" "$(claims issuer kbs2 admin $((now + 300)))")")" "wrong audience"
expect_status 401 "$(put a/b/c two "$(mint "$T/idp.key" "$(claims issuer kbs root $((now + 300)))")")" "role without ACL"
expect_status 401 "$(put a/b/c two "$(mint "$T/idp.key" "$(claims issuer kbs admin $((now - 600)))")")" "expired token"
expect_status 401 "$(put a/b/c two "$(mint "$T/other.key" "$(claims issuer kbs admin $((now + 300)))")")" "token of another key"
expect_status 401 "$(put a/b/c two "$(mint "$T/idp.key" "{\"iss\":\"issuer\",\"aud\":\"kbs\",\"exp\":$((now + 300))}")")" \
    "token without a role claim"
sig=${admin##*.}
first=$(printf %s "$sig" | cut -c1)
[ "$first" = A ] && flip=B || flip=A
expect_status 401 "$(put a/b/c two "${admin%.*}.$flip${sig#?}")" "flipped signature byte"
"$CLI_BIN" kbs get-resource --url "$URL" --path a/b/c > "$T/got" || fail "get-resource"
[ "$(cat "$T/got")" = one ] || fail "a refused upload changed the store"
ok "the refused uploads left the store as it was"
