#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Passport mode: a guest attests at an "attestation KBS" whose token signer has a certificate
# chain, then presents the EAR token as a Bearer token to a "resource KBS" that only trusts
# that chain's CA (attestation_token.trusted_certs_paths). Twins: a resource KBS without the CA
# refuses; a token signed under another CA is refused; a stolen token presented by a client
# with another TEE key yields a JWE that client cannot open.
. "$(dirname "$0")/lib.sh"

make_admin_key
mkca() { # mkca NAME → $T/NAME-ca.pem, $T/NAME-signer.key, $T/NAME-chain.pem
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1-ca.key" -out "$T/$1-ca.pem" \
        -days 30 -subj "/CN=$1 token CA" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$T/$1-signer.key"
    openssl req -new -key "$T/$1-signer.key" -subj "/CN=$1 attestation service" -out "$T/$1.csr" 2>/dev/null
    printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' > "$T/$1.ext"
    openssl x509 -req -in "$T/$1.csr" -CA "$T/$1-ca.pem" -CAkey "$T/$1-ca.key" -CAcreateserial -days 7 \
        -extfile "$T/$1.ext" -out "$T/$1-leaf.pem" 2>/dev/null
    cat "$T/$1-leaf.pem" "$T/$1-ca.pem" > "$T/$1-chain.pem"
}
mkca good
mkca rogue

# attestation KBS (signs with the good chain) and a rogue attestation KBS (another CA)
PA=$(free_port)
write_config "$T/att.toml" "$PA" "
[attestation_service.attestation_token_broker.signer]
key_path = \"$T/good-signer.key\"
cert_path = \"$T/good-chain.pem\""
start_kbs "$T/att.toml"; ATT_URL=$URL
PR=$(free_port)
write_config "$T/rogue.toml" "$PR" "
[attestation_service.attestation_token_broker.signer]
key_path = \"$T/rogue-signer.key\"
cert_path = \"$T/rogue-chain.pem\""
sed -i "s|$T/store|$T/rogue-store|; s|$T/resources|$T/rogue-resources|" "$T/rogue.toml"
start_kbs "$T/rogue.toml"; ROGUE_URL=$URL

# resource KBS: trusts only the good CA; has the secret
PS=$(free_port)
write_config "$T/res.toml" "$PS" "
[attestation_token]
trusted_certs_paths = [\"$T/good-ca.pem\"]"
sed -i "s|$T/store|$T/res-store|; s|$T/resources|$T/res-resources|" "$T/res.toml"
start_kbs "$T/res.toml"; RES_URL=$URL
printf 'passport secret' > "$T/secret"
"$CLI_BIN" kbs set-resource --url "$RES_URL" --admin-key "$T/admin.key" --path p/k/s --file "$T/secret" || fail "set-resource"

"$CLI_BIN" kbs get-resource --url "$RES_URL" --attest-url "$ATT_URL" --path p/k/s > "$T/got" || fail "passport fetch"
cmp -s "$T/got" "$T/secret" || fail "passport secret differs"
ok "token from the attestation KBS accepted by the resource KBS (x5c chain to the trusted CA)"

if "$CLI_BIN" kbs get-resource --url "$RES_URL" --attest-url "$ROGUE_URL" --path p/k/s > /dev/null 2> "$T/err"; then
    fail "token signed under another CA accepted"
fi
grep -q 'TokenVerifierError' "$T/err" || fail "rogue token error: $(cat "$T/err")"
ok "token whose chain ends at another CA refused"

# a resource KBS without any trust material for foreign tokens
PN=$(free_port)
write_config "$T/none.toml" "$PN"
sed -i "s|$T/store|$T/none-store|; s|$T/resources|$T/none-resources|" "$T/none.toml"
start_kbs "$T/none.toml"; NONE_URL=$URL
"$CLI_BIN" kbs set-resource --url "$NONE_URL" --admin-key "$T/admin.key" --path p/k/s --file "$T/secret" || fail "set"
if "$CLI_BIN" kbs get-resource --url "$NONE_URL" --attest-url "$ATT_URL" --path p/k/s > /dev/null 2>&1; then
    fail "resource KBS without trusted_certs_paths accepted a foreign token"
fi
ok "a KBS that does not trust the attestation KBS's CA refuses its tokens"

# a stolen token: presented by someone else, the JWE is sealed to the token's TEE key
"$CLI_BIN" kbs attest --url "$ATT_URL" > "$T/stolen" || fail "attest"
st=$(curl -sS -o "$T/jwe" -w '%{http_code}' -H "Authorization: Bearer $(cat "$T/stolen")" "$RES_URL/kbs/v0/resource/p/k/s")
expect_status 200 "$st" "stolen token presented (the KBS cannot tell)"
if command -v jose >/dev/null 2>&1; then
    jose jwk gen -i '{"kty":"EC","crv":"P-256"}' -o "$T/thief.jwk"
    if jose jwe dec -i "$T/jwe" -k "$T/thief.jwk" -O "$T/x" 2>/dev/null; then fail "a different TEE key opened the JWE"; fi
    ok "the JWE is sealed to the token's TEE key: another key cannot open it"
fi
# the token's certificate chain is in the header (x5c)
python3 - "$T/stolen" <<'PY' || fail "no x5c in the token header"
import base64, json, sys
h = open(sys.argv[1]).read().split(".")[0]; h += "=" * (-len(h) % 4)
assert len(json.loads(base64.urlsafe_b64decode(h))["jwk"]["x5c"]) == 2
PY
ok "token header carries the x5c chain"
echo PASS
