#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Token keys over https: attestation_token.trusted_jwk_sets = an https JWKS URL, or an OpenID
# issuer (/.well-known/openid-configuration → jwks_uri), and an identity provider's https
# public_key_uri; served by a loopback python https server whose certificate comes from a test
# CA given in CLOISTER_JWKS_CA_FILE. Positive: a token signed by the served key (kid as-1) is
# accepted; a rotated-in key (as-2) is picked up by the reload an unknown kid triggers; an
# admin token verified with the https PEM key uploads a resource. Twins: the wrong CA, an
# oversized JWKS, plain http (all refused at --check, naming the key); an unknown kid (401),
# and a second unknown kid within the rate limit fetches nothing.
. "$(dirname "$0")/lib.sh"
python3 -c 'import cryptography' 2>/dev/null || skip "python3-cryptography is not installed"

# ---- a test CA, a server certificate for 127.0.0.1, and another CA ----
for ca in ca wrongca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$ca.key" \
        -out "$T/$ca.crt" -days 1 -subj "/CN=test $ca" 2>/dev/null
done
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/srv.key" \
    -out "$T/srv.csr" -subj /CN=127.0.0.1 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > "$T/san.ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial \
    -out "$T/srv.crt" -days 1 -extfile "$T/san.ext" 2>/dev/null

# ---- keys: as-1 served from the start, as-2 rotated in later, as-3 never served ----
for k in as1 as2 as3 idp; do
    openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$T/$k.key" 2>/dev/null
done
jwk() { python3 - "$1" "$2" <<'PY'
import base64, json, sys
from cryptography.hazmat.primitives.serialization import load_pem_private_key
k = load_pem_private_key(open(sys.argv[1], "rb").read(), None).public_key().public_numbers()
b = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()
print(json.dumps({"kty": "EC", "crv": "P-256", "kid": sys.argv[2], "x": b(k.x), "y": b(k.y)}))
PY
}
WWW=$T/www
mkdir -p "$WWW/issuer/.well-known" "$WWW/keys"
printf '{"keys":[%s]}' "$(jwk "$T/as1.key" as-1)" > "$WWW/jwks.json"
cp "$WWW/jwks.json" "$WWW/keys/set.json"
python3 -c 'import json; print(json.dumps({"keys": [], "pad": "x" * 300000}))' > "$WWW/big.json"
openssl pkey -in "$T/idp.key" -pubout -out "$WWW/idp.pem" 2>/dev/null

# ---- the https server (every request logged as one line of $T/https.log) ----
HPORT=$(free_port)
cat > "$T/srv.py" <<'PY'
import functools, http.server, ssl, sys
port, www, cert, key, log = sys.argv[1:6]
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        with open(log, "a") as f:
            f.write(self.path + "\n")
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), functools.partial(H, directory=www))
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
PY
python3 "$T/srv.py" "$HPORT" "$WWW" "$T/srv.crt" "$T/srv.key" "$T/https.log" 2> "$T/srv.err" &
PIDS="$PIDS $!"
H=https://127.0.0.1:$HPORT
i=0
until curl -fsS --cacert "$T/ca.crt" -o /dev/null "$H/jwks.json" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || fail "the https JWKS server did not start: $(cat "$T/srv.err")"; sleep 0.1
done
: > "$T/https.log"
printf '{"issuer":"%s/issuer","jwks_uri":"%s/keys/set.json"}' "$H" "$H" \
    > "$WWW/issuer/.well-known/openid-configuration"

make_admin_key
# check_refused WHAT SOURCE CA GREP: --check with trusted_jwk_sets = [SOURCE] fails naming it
check_refused() {
    write_config "$T/bad.toml" "$(free_port)" "[attestation_token]
trusted_jwk_sets = [\"$2\"]"
    rc=0
    CLOISTER_JWKS_CA_FILE=$3 "$KBS_BIN" -c "$T/bad.toml" --check > /dev/null 2> "$T/err" || rc=$?
    [ $rc != 0 ] || fail "$1: --check passed"
    grep -q "trusted_jwk_sets\[0\]" "$T/err" || fail "$1: the key is not named: $(cat "$T/err")"
    grep -q "$4" "$T/err" || fail "$1: no '$4' in: $(cat "$T/err")"
    ok "$1 refused at --check (exit $rc)"
}
check_refused "a JWKS server whose CA is not trusted" "$H/jwks.json" "$T/wrongca.crt" "GET $H/jwks.json"
check_refused "an oversized JWKS" "$H/big.json" "$T/ca.crt" "limit\|larger\|exceed"
check_refused "a plain http:// JWKS" "http://127.0.0.1:$HPORT/jwks.json" "$T/ca.crt" "use https://"

# ---- a KBS trusting the https JWKS, and the https PEM key for admin tokens ----
export CLOISTER_JWKS_CA_FILE="$T/ca.crt"
teekey=$(python3 -c '
import base64, json
from cryptography.hazmat.primitives.asymmetric import ec
k = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
b = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()
print(json.dumps({"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW", "x": b(k.x), "y": b(k.y)}))')
PORT=$(free_port)
cat > "$T/kbs.toml" <<CFG
[http_server]
sockets = ["127.0.0.1:$PORT"]
insecure_http = true

[admin]
authorization_mode = "AuthenticatedAuthorization"

[admin.authentication.bearer_jwt]
identity_providers = [
    { issuer = "issuer", audience = "kbs", public_key_uri = "$H/idp.pem" },
]

[admin.authorization.regex_acl]
acls = [ { role = "admin", allowed_endpoints = "^/kbs/.+\$" } ]

[attestation_service]
type = "coco_as_builtin"

[storage_backend]
storage_type = "LocalFs"

[storage_backend.backends.local_fs]
dir_path = "$T/store"

[policy_engine]
policy_path = "$SRC/policies/resource/allow_all.rego"

[attestation_token]
trusted_jwk_sets = ["$H/jwks.json", "$H/issuer"]
CFG
"$KBS_BIN" -c "$T/kbs.toml" --check > /dev/null 2> "$T/err" || fail "--check: $(cat "$T/err")"
grep -q '^/issuer/.well-known/openid-configuration' "$T/https.log" || fail "no OpenID discovery: $(cat "$T/https.log")"
grep -q '^/keys/set.json' "$T/https.log" || fail "the discovered jwks_uri was not fetched"
ok "--check fetched the JWKS, the discovery document and its jwks_uri, and the PEM key"
start_kbs "$T/kbs.toml"
now=$(date +%s)
admin=$(python3 "$SRC/tests/integration/jwt.py" "$T/idp.key" '{"alg":"ES256","typ":"JWT"}' \
    "{\"iss\":\"issuer\",\"aud\":\"kbs\",\"role\":\"admin\",\"iat\":$now,\"exp\":$((now + 300))}")
expect_status 200 "$(http POST /kbs/v0/resource/r/k/v --data-binary 'jwks secret' -H "Authorization: Bearer $admin")" \
    "admin token verified with the https public_key_uri"
forged=$(python3 "$SRC/tests/integration/jwt.py" "$T/as3.key" '{"alg":"ES256","typ":"JWT"}' \
    "{\"iss\":\"issuer\",\"aud\":\"kbs\",\"role\":\"admin\",\"iat\":$now,\"exp\":$((now + 300))}")
expect_status 401 "$(http POST /kbs/v0/resource/r/k/w --data-binary x -H "Authorization: Bearer $forged")" \
    "admin token signed by another key"

tok() { python3 "$SRC/tests/integration/jwt.py" "$1" "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"$2\"}" \
    "{\"exp\":$((now + 300)),\"iat\":$now,\"tee-pubkey\":$teekey}"; }
expect_status 200 "$(http GET /kbs/v0/resource/r/k/v -H "Authorization: Bearer $(tok "$T/as1.key" as-1)")" \
    "token with kid as-1 verified by the https JWKS"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert "ciphertext" in d' "$T/body" ||
    fail "the release is not a JWE"
expect_status 401 "$(http GET /kbs/v0/resource/r/k/v -H "Authorization: Bearer $(tok "$T/as2.key" as-1)")" \
    "another key under kid as-1"

# rotation: the server now also serves as-2; a token naming it makes the KBS reload
printf '{"keys":[%s,%s]}' "$(jwk "$T/as1.key" as-1)" "$(jwk "$T/as2.key" as-2)" > "$WWW/jwks.json.new"
mv "$WWW/jwks.json.new" "$WWW/jwks.json"
before=$(grep -c '^/jwks.json' "$T/https.log")
expect_status 200 "$(http GET /kbs/v0/resource/r/k/v -H "Authorization: Bearer $(tok "$T/as2.key" as-2)")" \
    "a rotated-in kid (as-2) is picked up by the reload"
after=$(grep -c '^/jwks.json' "$T/https.log")
[ "$after" = $((before + 1)) ] || fail "the unknown kid did not reload the JWKS once ($before → $after)"
for _ in 1 2 3; do
    expect_status 401 "$(http GET /kbs/v0/resource/r/k/v -H "Authorization: Bearer $(tok "$T/as3.key" as-3)")" \
        "a kid no source has (as-3)"
done
grep -q "in no attestation_token.trusted_jwk_sets" "$T/body" || fail "kid refusal not explained: $(cat "$T/body")"
[ "$(grep -c '^/jwks.json' "$T/https.log")" = "$after" ] ||
    fail "unknown kids within the rate limit fetched the JWKS again"
ok "unknown kids within $((30)) s fetch nothing more (rate limit)"
