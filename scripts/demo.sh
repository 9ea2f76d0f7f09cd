#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `make demo`: Cloister's main job on embedded defaults. Starts cloister-kbs on loopback with a
# filesystem store in a temporary folder, stores a secret through the admin API, fetches it
# through the full attestation handshake (sample TEE), and stops everything it started.
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
KBS=$BUILD/src/cmd/cloister-kbs
CLI=$BUILD/src/cmd/cloister
T=$(mktemp -d /tmp/cloister-demo.XXXXXX)
KBS_PID=""
cleanup() {
    [ -n "$KBS_PID" ] && kill "$KBS_PID" 2>/dev/null && wait "$KBS_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT INT TERM
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT

step "1. The workload owner makes an admin key (Ed25519) and a token-signing key (P-256)"
openssl genpkey -algorithm ed25519 -out "$T/admin.key" 2>/dev/null
openssl pkey -in "$T/admin.key" -pubout -out "$T/admin.pub" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$T/as.key"
echo "   admin public key: $T/admin.pub"

step "2. Start cloister-kbs on $URL (filesystem store in $T/store)"
cat > "$T/kbs.toml" <<CFG
[http_server]
sockets = ["127.0.0.1:$PORT"]
insecure_http = true

[admin]
type = "Simple"
[[admin.personas]]
id = "owner"
public_key_path = "$T/admin.pub"

[attestation_service]
type = "coco_as_builtin"
allow_sample_tee_insecure = true   # no TEE hardware here: the demo uses the sample TEE
[attestation_service.attestation_token_broker.signer]
key_path = "$T/as.key"

[storage_backend]
storage_type = "LocalFs"
[storage_backend.backends.local_fs]
dir_path = "$T/store"

[[plugins]]
name = "resource"
type = "LocalFs"
dir_path = "$T/store"
CFG
sed 's/^/   | /' "$T/kbs.toml"
"$KBS" -c "$T/kbs.toml" > "$T/kbs.log" 2>&1 &
KBS_PID=$!
i=0
until curl -fsS "$URL/healthz" > /dev/null 2>&1; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat "$T/kbs.log"; exit 1; }; sleep 0.1
done
echo "   up (pid $KBS_PID)"

step "3. The owner registers reference values and stores a secret (admin API, signed JWT)"
"$CLI" kbs set-reference-value --url "$URL" --admin-key "$T/admin.key" --name launch_digest --value abcde
"$CLI" kbs set-reference-value --url "$URL" --admin-key "$T/admin.key" --name svn --value 1
"$CLI" kbs set-reference-value --url "$URL" --admin-key "$T/admin.key" --name major_version --value 1 --as-integer --single
"$CLI" kbs set-reference-value --url "$URL" --admin-key "$T/admin.key" --name minimum_minor_version --value 4 --as-integer --single
printf 'the database password is hunter2\n' > "$T/secret"
"$CLI" kbs set-resource --url "$URL" --admin-key "$T/admin.key" --path default/db/password --file "$T/secret"
echo "   stored default/db/password ($(wc -c < "$T/secret") bytes)"

step "4. A guest attests (RCAR: auth → evidence → EAR token) and fetches the secret sealed to its key"
"$CLI" kbs get-resource --url "$URL" --path default/db/password --out "$T/fetched" -v
echo "   fetched: $(cat "$T/fetched")"
cmp -s "$T/secret" "$T/fetched" && echo "   identical to what the owner stored"

step "5. A request without attestation is refused"
curl -s "$URL/kbs/v0/resource/default/db/password"; echo

step "6. What the KBS logged (peer METHOD path => status (file.c:LINE))"
grep -E '=> [0-9]{3}' "$T/kbs.log" | sed 's/^/   /' | tail -12
echo
echo "Demo done; cloister-kbs stopped and $T removed."
